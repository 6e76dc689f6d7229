/*
 * test_lb_index.c - the balancing policies' indexes (lb_track / lb_changed,
 * policies/lb_index.c) against the scan each policy makes of a view it
 * reads whole.
 *
 * Two instances of one policy, with rngs of one seed, get the same random
 * sequence of picks, completions (successes, errors, 5xx), health changes,
 * weight changes (integer and not), max_conns changes and scale out/in
 * (a block of servers going up or down): one on a tracked view told of
 * every change, one on an untracked copy it must read whole each pick (the
 * scan, as before the indexes). Every pick must name the same server:
 * the indexes keep each policy's tie rules, current weights and random
 * draws exactly. Some runs use backups and max_fails, and some also Envoy
 * outlier detection (ejections, panic mode), retries that hide a server and
 * forgotten servers: lb_pick then keeps its masked mirror of the tracked
 * view by events on one side and walks and copies the view on the other,
 * and the ejection and panic counts must agree too. The token policies'
 * runs also change the LLM load fields; hash's requests carry random keys.
 * jsq's one-draw tie-break is enumerated against a generator set by hand.
 * Exact: any difference is a failure.
 */
#include "lb.h"
#include "lb_index.h"

#include <CUnit/Basic.h>
#include <CUnit/CUnit.h>
#include <gsl/gsl_rng.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_N 64
#define MAX_INFLIGHT 4096

typedef struct {
    lb_server_view a[MAX_N], b[MAX_N];  /* tracked view, untracked copy */
    lb_view va, vb;
    lb *ta, *tb;
    gsl_rng *ra, *rb, *ops;
    int inflight[MAX_INFLIGHT];
    int n_inflight;
    long picks, differ, indexed_picks;
    double failure_scale;   /* times the usual error and 5xx rates */
} pair;

static const lb_request req0 = { .id = 1 };

/* Whether runs also change the LLM load fields (outstanding_tokens,
 * llm_waiting, llm_running), often back to 0 so that the token policies'
 * least_conn fallback is taken too; and llm_kv_usage when llm_kv is set. */
static int llm_fields, llm_kv;

/* prefix_affinity's and kv_aware's runs: requests carry prefix hashes
 * (prompts), chained (each hash always after the same one: six documents
 * over three shared openings, 1 to 8 blocks of 16 tokens) or, with
 * unchained set, each run's later part drawn from six values at random
 * (repeats, a hash after different ones), which turns the holders' shortcut
 * off; one request in eight has none (the least_conn fallback). The
 * policies' parameters per run: lb_params_default(), or (small) an
 * imbalance at 2 more active, a 0.3 cache threshold and 6 hashes per
 * server, so that evictions and both branches come often. */
static int prompts, unchained, small_prefix;

/* least_time's runs: answers take 1 ms to 6 s (its averages, rounded to
 * 20 ms and capped at 5 s, spread over many tie sets) and the clock runs
 * 5 ms a step, so that servers not picked for fail_timeout + 1 s have their
 * averages halved (its estimates change with time alone). */
static int vary_latency;

/* lb_params.hash_mode of the runs. */
static int hash_mode = LB_HASH_CONSISTENT;

/* Over every run: the outlier detector did eject and panic. */
static unsigned long outlier_panics, outlier_ejections;

/* Applies one change to server i of both views and tells the tracked one. */
static void changed(pair *p, int i)
{
    p->b[i] = p->a[i];
    lb_changed(p->ta, &p->va, i);
}

static void pick_req(pair *p, double now, const lb_request *req)
{
    p->va.now_s = p->vb.now_s = now;
    int sa = lb_pick(p->ta, &p->va, req);
    int sb = lb_pick(p->tb, &p->vb, req);
    p->picks++;
    if (sa != sb) {
        if (p->differ++ == 0)
            fprintf(stderr, "\n  %s: pick %ld: tracked %d, scan %d\n", lb_name(p->ta), p->picks, sa,
                    sb);
        return;
    }
    if (sa >= 0 && p->n_inflight < MAX_INFLIGHT) {
        p->a[sa].active++;
        changed(p, sa);
        p->inflight[p->n_inflight++] = sa;
    }
}

static void pick(pair *p, double now)
{
    lb_request r = { .id = 1, .key = gsl_rng_get(p->ops) };   /* hash's key */
    uint64_t h[8];
    if (prompts && gsl_rng_uniform(p->ops) < 0.875) {
        int doc = (int)gsl_rng_uniform_int(p->ops, 6);
        int n = 1 + (int)gsl_rng_uniform_int(p->ops, 8);
        int mess = unchained && p->picks > 400;
        for (int j = 0; j < n; j++)
            h[j] = mess ? gsl_rng_uniform_int(p->ops, 6)
                        : 1000u * (uint64_t)(j < 2 ? doc / 2 : 3 + doc) + (uint64_t)j;
        r.hashes = h;
        r.n_hashes = n;
        r.hash_block_tokens = 16;
        r.input_tokens = 16 * n - (int)gsl_rng_uniform_int(p->ops, 16);
        r.output_tokens = 10;
    }
    pick_req(p, now, &r);
}

/* A retry as the engine makes it: server i (already tried) shown as not up
 * for this pick only, and named in the request's hidden list. */
static void pick_retry(pair *p, double now, int i)
{
    if (!p->a[i].up) {
        pick(p, now);
        return;
    }
    const int hidden[1] = { i };
    lb_request r = { .id = 2, .hidden = hidden, .n_hidden = 1 };
    p->a[i].up = 0;
    changed(p, i);
    pick_req(p, now, &r);
    p->a[i].up = 1;
    changed(p, i);
}

static void complete(pair *p, double now)
{
    if (p->n_inflight == 0)
        return;
    int k = (int)gsl_rng_uniform_int(p->ops, (unsigned long)p->n_inflight);
    int s = p->inflight[k];
    p->inflight[k] = p->inflight[--p->n_inflight];
    double u = gsl_rng_uniform(p->ops);
    double f = p->failure_scale;
    lb_result res = u < 0.03 * f ? LB_ERROR : u < 0.05 * f ? LB_HTTP_5XX : LB_OK;
    p->a[s].active--;
    changed(p, s);
    p->va.now_s = p->vb.now_s = now;
    double latency_s = vary_latency ? 0.001 * (double)(1 + gsl_rng_uniform_int(p->ops, 6000)) : 0.01;
    lb_on_done(p->ta, &p->va, s, latency_s, res);
    lb_on_done(p->tb, &p->vb, s, latency_s, res);
}

/* One random run of `steps` operations on n servers. weights: 0 all 1,
 * 1 all 3, 2 mixed integers; extras: 1 backups and max_fails, 2 those and
 * Envoy outlier detection (ejections, panic mode) with failures three times
 * as frequent, retries that hide a server and servers forgotten. */
static long run(const char *policy, unsigned long seed, int n, int steps, int weights, int extras,
                long *picks)
{
    pair *p = calloc(1, sizeof *p);
    CU_ASSERT_PTR_NOT_NULL_FATAL(p);
    p->ops = gsl_rng_alloc(gsl_rng_mt19937);
    p->ra = gsl_rng_alloc(gsl_rng_mt19937);
    p->rb = gsl_rng_alloc(gsl_rng_mt19937);
    gsl_rng_set(p->ops, seed);
    gsl_rng_set(p->ra, seed + 1000);
    gsl_rng_set(p->rb, seed + 1000);
    for (int i = 0; i < n; i++) {
        lb_server_view *v = &p->a[i];
        v->up = gsl_rng_uniform(p->ops) < 0.9;
        v->weight = weights == 0 ? 1.0 : weights == 1 ? 3.0 : (double)(1 + gsl_rng_uniform_int(p->ops, 3));
        if (extras) {
            v->backup = i >= n - 2 && n > 3;
            v->max_fails = 2;
            v->fail_timeout_s = 0.5;
        }
        p->b[i] = *v;
    }
    p->va = (lb_view){ .n = n, .servers = p->a };
    p->vb = (lb_view){ .n = n, .servers = p->b };
    lb_params prm = lb_params_default();
    prm.hash_mode = hash_mode;
    if (small_prefix) {
        prm.balance_abs_threshold = 2;
        prm.cache_threshold = 0.3;
        prm.prefix_blocks = 6;
    }
    p->failure_scale = 1.0;
    if (extras == 2) {
        prm.outlier.enabled = 1;
        prm.outlier.consecutive_5xx = 2;
        prm.outlier.interval_s = 0.05;
        prm.outlier.base_ejection_time_s = 0.1;
        prm.outlier.max_ejection_time_s = 0.4;
        prm.outlier.max_ejection_percent = 60;
        prm.outlier.enforcing_consecutive_5xx = 70;   /* draws from the policy's rng too */
        p->failure_scale = 3.0;
    }
    p->ta = lb_create_with(policy, n, p->ra, &prm);
    p->tb = lb_create_with(policy, n, p->rb, &prm);
    CU_ASSERT_PTR_NOT_NULL_FATAL(p->ta);
    CU_ASSERT_PTR_NOT_NULL_FATAL(p->tb);
    lb_track(p->ta, &p->va);
    double now = 0.0;
    for (int step = 0; step < steps && p->differ == 0; step++) {
        double u = gsl_rng_uniform(p->ops);
        int i = (int)gsl_rng_uniform_int(p->ops, (unsigned long)n);
        now += vary_latency ? 0.005 : 0.001;
        if (u < 0.55) {
            pick(p, now);
        } else if (u < 0.90) {
            complete(p, now);
        } else if (u < 0.94) {   /* health: up or not */
            p->a[i].up = !p->a[i].up;
            changed(p, i);
        } else if (u < 0.96) {   /* weight change: integer, back, or not an integer */
            double w[] = { 1.0, 2.0, 3.0, 1.5, p->a[(i + 1) % n].weight };
            p->a[i].weight = w[gsl_rng_uniform_int(p->ops, 5)];
            changed(p, i);
        } else if (u < 0.975) {  /* max_conns: off or near the load */
            p->a[i].max_conns = gsl_rng_uniform(p->ops) < 0.5 ? 0 : p->a[i].active + 1;
            changed(p, i);
        } else if (u < 0.985) {  /* scale in or out: the last k servers */
            int k = 1 + (int)gsl_rng_uniform_int(p->ops, (unsigned long)(n / 2 + 1));
            int up = gsl_rng_uniform(p->ops) < 0.5;
            for (int j = n - k; j < n; j++) {
                if (j < 0 || p->a[j].up == up)
                    continue;
                p->a[j].up = up;
                changed(p, j);
            }
        } else if (u < 0.99 && llm_fields && gsl_rng_uniform(p->ops) < 0.7) {
            /* LLM load: small integers, 0 half the time; or all back to 0 */
            if (gsl_rng_uniform(p->ops) < 0.1) {
                for (int j = 0; j < n; j++) {
                    p->a[j].outstanding_tokens = 0.0;
                    p->a[j].llm_waiting = p->a[j].llm_running = 0;
                    p->a[j].llm_kv_usage = 0.0;
                    changed(p, j);
                }
            } else {
                int z = gsl_rng_uniform(p->ops) < 0.5;
                p->a[i].outstanding_tokens = z ? 0.0 : (double)gsl_rng_uniform_int(p->ops, 6) * 100.0;
                p->a[i].llm_waiting = z ? 0 : (int)gsl_rng_uniform_int(p->ops, 3);
                p->a[i].llm_running = z ? 0 : (int)gsl_rng_uniform_int(p->ops, 5);
                if (llm_kv)
                    p->a[i].llm_kv_usage = z ? 0.0 : (double)gsl_rng_uniform_int(p->ops, 4) / 4.0;
                changed(p, i);
            }
        } else if (u < 0.99) {   /* every weight back to one value */
            for (int j = 0; j < n; j++) {
                p->a[j].weight = weights == 1 ? 3.0 : 1.0;
                changed(p, j);
            }
        } else if (extras == 2 && gsl_rng_uniform(p->ops) < 0.5) {
            if (gsl_rng_uniform(p->ops) < 0.8) {
                pick_retry(p, now, i);
            } else {   /* a new replica in slot i */
                lb_forget(p->ta, i);
                lb_forget(p->tb, i);
            }
        } else {                 /* a burst of picks with nothing completing */
            for (int k = 0; k < 8; k++)
                pick(p, now);
        }
    }
    if (lb_outlier_panics(p->ta) != lb_outlier_panics(p->tb) ||
        lb_outlier_ejections(p->ta) != lb_outlier_ejections(p->tb)) {
        fprintf(stderr, "\n  %s: panics %lu / %lu, ejections %lu / %lu\n", policy,
                lb_outlier_panics(p->ta), lb_outlier_panics(p->tb), lb_outlier_ejections(p->ta),
                lb_outlier_ejections(p->tb));
        p->differ++;
    }
    outlier_panics += lb_outlier_panics(p->ta);
    outlier_ejections += lb_outlier_ejections(p->ta);
    long differ = p->differ;
    *picks = p->picks;
    lb_destroy(p->ta);
    lb_destroy(p->tb);
    gsl_rng_free(p->ops);
    gsl_rng_free(p->ra);
    gsl_rng_free(p->rb);
    free(p);
    return differ;
}

/* Every combination of size, weights and extras over `seeds` seeds. */
static long oracle_seeds(const char *policy, unsigned long seeds)
{
    static const int sizes[] = { 1, 2, 3, 7, 16, 64 };
    long total = 0;
    for (unsigned long seed = 1; seed <= seeds; seed++)
        for (int k = 0; k < (int)(sizeof sizes / sizeof sizes[0]); k++)
            for (int weights = 0; weights < 3; weights++)
                for (int extras = 0; extras < 3; extras++) {
                    long picks = 0;
                    long d = run(policy, seed * 100 + (unsigned long)k, sizes[k], 3000, weights,
                                 extras, &picks);
                    if (d != 0)
                        fprintf(stderr, "  (seed %lu, n %d, weights %d, extras %d)\n", seed,
                                sizes[k], weights, extras);
                    CU_ASSERT_EQUAL(d, 0);
                    total += picks;
                }
    return total;
}

static void oracle(const char *policy)
{
    CU_ASSERT(oracle_seeds(policy, 6) > 100000);   /* the sequences did pick */
}

/* The outlier runs of one policy did eject servers and pick in panic mode
 * (else the comparison above proves nothing about them). */
static void test_outlier_exercised(void)
{
    outlier_panics = outlier_ejections = 0;
    oracle("round_robin");
    fprintf(stderr, " (%lu ejections, %lu panic picks) ", outlier_ejections, outlier_panics);
    CU_ASSERT(outlier_ejections > 100);
    CU_ASSERT(outlier_panics > 100);
}

static void test_least_conn(void) { oracle("least_conn"); }
static void test_weighted_round_robin(void) { oracle("weighted_round_robin"); }
static void test_p2c(void) { oracle("p2c_least_request"); }
static void test_random(void) { oracle("random"); }
static void test_random_two(void) { oracle("random_two_least_conn"); }
static void test_round_robin(void) { oracle("round_robin"); }
static void test_first(void) { oracle("first"); }
static void test_jsq(void) { oracle("jsq"); }
static void test_peak_ewma(void) { oracle("peak_ewma"); }
static void test_least_time(void)
{
    vary_latency = 1;
    oracle("least_time");
    vary_latency = 0;
}
static void test_hash(void)
{
    const int modes[] = { LB_HASH_CONSISTENT, LB_HASH_PLAIN, LB_HASH_IP };
    /* one seed per mode: the consistent ring is rebuilt on each weight
     * change, in both instances */
    for (int m = 0; m < 3; m++) {
        hash_mode = modes[m];
        CU_ASSERT(oracle_seeds("hash", 1) > 15000);
    }
    hash_mode = LB_HASH_CONSISTENT;
}
static void test_least_tokens(void)
{
    llm_fields = 1;
    oracle("least_tokens");
    llm_fields = 0;
}
static void test_vllm_dp(void)
{
    llm_fields = 1;
    oracle("vllm_dp");
    llm_fields = 0;
}

/* prefix_affinity and kv_aware over prompts, chained and not, with both
 * parameter sets; kv_aware also with KV usage (llm_kv), and without any
 * LLM load, where every pick without a prefix match is least_conn's. */
static void prompt_oracle(const char *policy, int load)
{
    prompts = 1;
    llm_fields = llm_kv = load;
    for (int k = 0; k < 4; k++) {
        unchained = k & 1;
        small_prefix = k >> 1;
        CU_ASSERT(oracle_seeds(policy, 2) > 30000);
    }
    prompts = unchained = small_prefix = llm_fields = llm_kv = 0;
}
static void test_prefix_affinity(void) { prompt_oracle("prefix_affinity", 0); }
static void test_kv_aware(void)
{
    prompt_oracle("kv_aware", 0);
    prompt_oracle("kv_aware", 1);
}

/* A generator whose next number is set by hand: gsl_rng_uniform_int(r, k)
 * then returns whatever the test wants. */
static unsigned long fixed_get(void *state) { return *(unsigned long *)state; }
static double fixed_get_double(void *state) { return (double)*(unsigned long *)state / 4294967296.0; }
static void fixed_set(void *state, unsigned long seed) { *(unsigned long *)state = seed; }
static const gsl_rng_type fixed_type = { "fixed", 0xffffffffUL, 0, sizeof(unsigned long),
                                         fixed_set, fixed_get, fixed_get_double };

/* jsq's tie-break enumerated: servers 1, 3, 4, 6 tie at the fewest active
 * (2), 5 is at max_conns, 2 is down. Draw r of gsl_rng_uniform_int(rng, 4)
 * must give the r-th of them in index order, on the tracked view and on an
 * untracked copy: a bijection from the four equally likely draws to the
 * four tied servers, so each is chosen with chance exactly 1/4, as by
 * Envoy's reservoir sampling. Without a tie no number is drawn. */
static void test_jsq_ties_enumerated(void)
{
    lb_server_view s[7];
    for (int i = 0; i < 7; i++)
        s[i] = (lb_server_view){ .up = 1, .weight = 1, .active = 2 };
    s[0].active = 3;
    s[2].up = 0;
    s[2].active = 0;
    s[5].active = 1;
    s[5].max_conns = 1;
    lb_server_view copy[7];
    memcpy(copy, s, sizeof s);
    lb_view vt = { .n = 7, .servers = s }, vu = { .n = 7, .servers = copy };
    gsl_rng *rng = gsl_rng_alloc(&fixed_type);
    CU_ASSERT_PTR_NOT_NULL_FATAL(rng);
    lb *bt = lb_create("jsq", 7, rng), *bu = lb_create("jsq", 7, rng);
    CU_ASSERT_PTR_NOT_NULL_FATAL(bt);
    CU_ASSERT_PTR_NOT_NULL_FATAL(bu);
    lb_track(bt, &vt);
    const int tied[4] = { 1, 3, 4, 6 };
    const unsigned long scale = 0xffffffffUL / 4;   /* GSL's uniform_int bucket */
    for (int r = 0; r < 4; r++) {
        gsl_rng_set(rng, (unsigned long)r * scale);
        CU_ASSERT_EQUAL(gsl_rng_uniform_int(rng, 4), (unsigned long)r);
        CU_ASSERT_EQUAL(lb_pick(bt, &vt, &req0), tied[r]);
        CU_ASSERT_EQUAL(lb_pick(bu, &vu, &req0), tied[r]);
    }
    /* server 4 drops to 1 active: alone at the minimum, picked with no draw
     * (a generator that would fail the test if read: it returns 3 of 4) */
    s[4].active = copy[4].active = 1;
    lb_changed(bt, &vt, 4);
    gsl_rng_set(rng, 3 * scale);
    CU_ASSERT_EQUAL(lb_pick(bt, &vt, &req0), 4);
    CU_ASSERT_EQUAL(lb_pick(bu, &vu, &req0), 4);
    CU_ASSERT_EQUAL(gsl_rng_get(rng), 3 * scale);   /* still unread */
    lb_destroy(bt);
    lb_destroy(bu);
    gsl_rng_free(rng);
}

/* The segment tree's answers on a hand-built set of keys. */
static void test_mintree(void)
{
    lb_mintree t = { 0 };
    CU_ASSERT_FATAL(lb_mintree_reset(&t, 6));
    CU_ASSERT_EQUAL(lb_mintree_ties(&t), 0);
    CU_ASSERT_EQUAL(lb_mintree_nth(&t, 0), -1);
    double k[6] = { 5, 2, 7, 2, INFINITY, 2 };
    for (int i = 0; i < 6; i++)
        lb_mintree_set(&t, i, k[i]);
    CU_ASSERT_EQUAL(lb_mintree_least(&t), 2.0);
    CU_ASSERT_EQUAL(lb_mintree_ties(&t), 3);
    CU_ASSERT_EQUAL(t.finite, 5);
    CU_ASSERT_EQUAL(lb_mintree_nth(&t, 0), 1);
    CU_ASSERT_EQUAL(lb_mintree_nth(&t, 1), 3);
    CU_ASSERT_EQUAL(lb_mintree_nth(&t, 2), 5);
    CU_ASSERT_EQUAL(lb_mintree_nth(&t, 3), -1);
    lb_mintree_set(&t, 3, 1.0);   /* a new minimum, alone */
    CU_ASSERT_EQUAL(lb_mintree_least(&t), 1.0);
    CU_ASSERT_EQUAL(lb_mintree_ties(&t), 1);
    CU_ASSERT_EQUAL(lb_mintree_nth(&t, 0), 3);
    lb_mintree_set(&t, 3, INFINITY);   /* out: back to the three at 2 less one */
    CU_ASSERT_EQUAL(lb_mintree_ties(&t), 2);
    CU_ASSERT_EQUAL(lb_mintree_nth(&t, 1), 5);
    CU_ASSERT_EQUAL(t.finite, 4);
    lb_mintree_free(&t);
}

/* The tracked instance really uses its index: a change it is not told of
 * goes unseen. Three idle servers of weight 1: the policy picks 0 (the
 * smooth WRR tie-break), and server 1 then carries a load the caller did
 * not report, so the tracked instance still sees it tied with 2. For
 * least_conn the key is the active count; for least_time the estimate
 * 20 x (1 + active) (never picked: averages halved away). */
static void index_is_used(const char *policy)
{
    lb_server_view s[3] = { { .up = 1, .weight = 1 }, { .up = 1, .weight = 1 },
                            { .up = 1, .weight = 1 } };
    lb_view v = { .n = 3, .servers = s };
    lb *b = lb_create(policy, 3, NULL);
    CU_ASSERT_PTR_NOT_NULL_FATAL(b);
    lb_track(b, &v);
    CU_ASSERT_EQUAL(lb_pick(b, &v, &req0), 0);
    s[1].active = 5;   /* not reported: the index keeps server 1 idle */
    s[0].active = 1;
    lb_changed(b, &v, 0);
    /* the scan would see {2} alone at the least key; the index sees 1 and
     * 2 tied, and smooth WRR over them (currents 1, 1 after the first
     * pick's -3 on 0) takes the first of the largest: 1 */
    CU_ASSERT_EQUAL(lb_pick(b, &v, &req0), 1);
    lb_destroy(b);
}

static void test_index_is_used(void) { index_is_used("least_conn"); }
static void test_least_time_index_is_used(void) { index_is_used("least_time"); }

/* Fenwick find: the k-th eligible server and a weighted draw's landing. */
static void test_fenwick(void)
{
    lb_fenwick f = { 0 };
    CU_ASSERT_FATAL(lb_fenwick_reset(&f, 10));
    double w[10] = { 0, 2, 0, 1, 3, 0, 0, 4, 0, 0 };
    for (int i = 0; i < 10; i++)
        lb_fenwick_set(&f, i, w[i]);
    CU_ASSERT_EQUAL(f.total, 10.0);
    CU_ASSERT_EQUAL(lb_fenwick_find(&f, 0.0), 1);
    CU_ASSERT_EQUAL(lb_fenwick_find(&f, 1.999), 1);
    CU_ASSERT_EQUAL(lb_fenwick_find(&f, 2.0), 3);
    CU_ASSERT_EQUAL(lb_fenwick_find(&f, 3.0), 4);
    CU_ASSERT_EQUAL(lb_fenwick_find(&f, 5.5), 4);
    CU_ASSERT_EQUAL(lb_fenwick_find(&f, 6.0), 7);
    CU_ASSERT_EQUAL(lb_fenwick_find(&f, 9.99), 7);
    CU_ASSERT_EQUAL(lb_fenwick_find(&f, 10.0), -1);
    CU_ASSERT_EQUAL(lb_fenwick_last(&f), 7);
    CU_ASSERT_EQUAL(lb_fenwick_prefix(&f, 4), 3.0);
    lb_fenwick_set(&f, 7, 0.0);
    CU_ASSERT_EQUAL(lb_fenwick_last(&f), 4);
    CU_ASSERT_EQUAL(lb_fenwick_find(&f, 5.9), 4);
    CU_ASSERT_EQUAL(lb_fenwick_find(&f, 6.0), -1);
    lb_fenwick_free(&f);
}

/* The first i whose prefix sum through i passes u, by summing: what
 * lb_fenwick_find answers. */
static int brute_find(const double *v, int n, double u)
{
    double sum = 0.0;
    for (int i = 0; i < n; i++) {
        sum += v[i];
        if (sum > u)
            return i;
    }
    return -1;
}

/* Every value 1 (all servers eligible, or weights 1): the tree is skipped,
 * and the answers must stay the summing ones as values leave 1 and return. */
static void test_fenwick_all_ones(void)
{
    enum { N = 37 };
    double v[N];
    lb_fenwick f = { 0 };
    CU_ASSERT_FATAL(lb_fenwick_reset(&f, N));
    for (int i = 0; i < N; i++) {
        v[i] = 1.0;
        lb_fenwick_set(&f, i, 1.0);
    }
    CU_ASSERT_EQUAL(f.n_one, N);
    for (int round = 0; round < 3; round++) {
        if (round == 1) {   /* one server out, one weighted 3 */
            v[5] = 0.0;
            v[20] = 3.0;
        } else if (round == 2) {
            v[5] = 1.0;
            v[20] = 1.0;
        }
        lb_fenwick_set(&f, 5, v[5]);
        lb_fenwick_set(&f, 20, v[20]);
        CU_ASSERT_EQUAL(f.n_one, round == 1 ? N - 2 : N);
        for (double u = -0.5; u < N + 3; u += 0.25)
            CU_ASSERT_EQUAL(lb_fenwick_find(&f, u), u < f.total ? brute_find(v, N, u < 0 ? 0 : u) : -1);
        double sum = 0.0;
        for (int i = 0; i <= N; i++) {
            CU_ASSERT_EQUAL(lb_fenwick_prefix(&f, i), sum);
            if (i < N)
                sum += v[i];
        }
        CU_ASSERT_EQUAL(lb_fenwick_last(&f), N - 1);
    }
    lb_fenwick_free(&f);
}

int main(void)
{
    CU_pSuite suite;
    unsigned int failures;
    struct {
        const char *name;
        CU_TestFunc fn;
    } tests[] = {
        { "fenwick tree: k-th and weighted find", test_fenwick },
        { "fenwick tree: all values 1 answer without the tree as with it", test_fenwick_all_ones },
        { "least_conn: index = scan", test_least_conn },
        { "weighted_round_robin: index = scan", test_weighted_round_robin },
        { "p2c_least_request: index = scan", test_p2c },
        { "random: index = scan", test_random },
        { "random_two_least_conn: index = scan", test_random_two },
        { "round_robin: index = scan", test_round_robin },
        { "first: index = scan", test_first },
        { "outlier detection and panic mode: ejections and panic picks happen", test_outlier_exercised },
        { "jsq: index = scan", test_jsq },
        { "jsq: one draw, the r-th tied server (enumerated)", test_jsq_ties_enumerated },
        { "segment tree: least key, ties, r-th tied", test_mintree },
        { "peak_ewma: index = scan", test_peak_ewma },
        { "least_time: index = scan (varied answers, halvings)", test_least_time },
        { "least_time: a tracked view's index is what it picks from", test_least_time_index_is_used },
        { "hash (consistent, plain, ip): index = scan", test_hash },
        { "least_tokens: index = scan", test_least_tokens },
        { "vllm_dp: index = scan", test_vllm_dp },
        { "prefix_affinity: trees and holders = scan (chained hashes and not)",
          test_prefix_affinity },
        { "kv_aware: counts and holders = scan", test_kv_aware },
        { "least_conn: a tracked view's index is what it picks from", test_index_is_used },
    };

    if (CU_initialize_registry() != CUE_SUCCESS)
        return 1;
    suite = CU_add_suite("lb_index", NULL, NULL);
    if (!suite) {
        CU_cleanup_registry();
        return 1;
    }
    for (size_t i = 0; i < sizeof tests / sizeof tests[0]; i++) {
        if (!CU_add_test(suite, tests[i].name, tests[i].fn)) {
            CU_cleanup_registry();
            return 1;
        }
    }
    CU_basic_set_mode(CU_BRM_VERBOSE);
    CU_basic_run_tests();
    failures = CU_get_number_of_failures();
    CU_cleanup_registry();
    return failures ? 1 : 0;
}
