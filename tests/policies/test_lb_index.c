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
 * draws exactly. Some runs use backups and max_fails so that lb_pick
 * hides servers and the tracked instance falls back to the scan and back.
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
} pair;

static const lb_request req0 = { .id = 1 };

/* Applies one change to server i of both views and tells the tracked one. */
static void changed(pair *p, int i)
{
    p->b[i] = p->a[i];
    lb_changed(p->ta, &p->va, i);
}

static void pick(pair *p, double now)
{
    p->va.now_s = p->vb.now_s = now;
    int sa = lb_pick(p->ta, &p->va, &req0);
    int sb = lb_pick(p->tb, &p->vb, &req0);
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

static void complete(pair *p, double now)
{
    if (p->n_inflight == 0)
        return;
    int k = (int)gsl_rng_uniform_int(p->ops, (unsigned long)p->n_inflight);
    int s = p->inflight[k];
    p->inflight[k] = p->inflight[--p->n_inflight];
    double u = gsl_rng_uniform(p->ops);
    lb_result res = u < 0.03 ? LB_ERROR : u < 0.05 ? LB_HTTP_5XX : LB_OK;
    p->a[s].active--;
    changed(p, s);
    p->va.now_s = p->vb.now_s = now;
    lb_on_done(p->ta, &p->va, s, 0.01, res);
    lb_on_done(p->tb, &p->vb, s, 0.01, res);
}

/* One random run of `steps` operations on n servers. weights: 0 all 1,
 * 1 all 3, 2 mixed integers; extras: backups and max_fails. */
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
    p->ta = lb_create(policy, n, p->ra);
    p->tb = lb_create(policy, n, p->rb);
    CU_ASSERT_PTR_NOT_NULL_FATAL(p->ta);
    CU_ASSERT_PTR_NOT_NULL_FATAL(p->tb);
    lb_track(p->ta, &p->va);
    double now = 0.0;
    for (int step = 0; step < steps && p->differ == 0; step++) {
        double u = gsl_rng_uniform(p->ops);
        int i = (int)gsl_rng_uniform_int(p->ops, (unsigned long)n);
        now += 0.001;
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
        } else if (u < 0.99) {   /* every weight back to one value */
            for (int j = 0; j < n; j++) {
                p->a[j].weight = weights == 1 ? 3.0 : 1.0;
                changed(p, j);
            }
        } else {                 /* a burst of picks with nothing completing */
            for (int k = 0; k < 8; k++)
                pick(p, now);
        }
    }
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

static void oracle(const char *policy)
{
    static const int sizes[] = { 1, 2, 3, 7, 16, 64 };
    long total = 0;
    for (unsigned long seed = 1; seed <= 6; seed++)
        for (int k = 0; k < (int)(sizeof sizes / sizeof sizes[0]); k++)
            for (int weights = 0; weights < 3; weights++)
                for (int extras = 0; extras < 2; extras++) {
                    long picks = 0;
                    long d = run(policy, seed * 100 + (unsigned long)k, sizes[k], 3000, weights,
                                 extras, &picks);
                    if (d != 0)
                        fprintf(stderr, "  (seed %lu, n %d, weights %d, extras %d)\n", seed,
                                sizes[k], weights, extras);
                    CU_ASSERT_EQUAL(d, 0);
                    total += picks;
                }
    CU_ASSERT(total > 100000);   /* the sequences did pick */
}

static void test_least_conn(void) { oracle("least_conn"); }
static void test_weighted_round_robin(void) { oracle("weighted_round_robin"); }
static void test_p2c(void) { oracle("p2c_least_request"); }
static void test_random(void) { oracle("random"); }
static void test_random_two(void) { oracle("random_two_least_conn"); }
static void test_round_robin(void) { oracle("round_robin"); }
static void test_first(void) { oracle("first"); }

/* The tracked instance really uses its index: a change it is not told of
 * goes unseen. Three idle servers of weight 1: least_conn picks 0 (the
 * smooth WRR tie-break), and server 0 then carries a load the caller did
 * not report, so the tracked instance still sees all three tied. */
static void test_index_is_used(void)
{
    lb_server_view s[3] = { { .up = 1, .weight = 1 }, { .up = 1, .weight = 1 },
                            { .up = 1, .weight = 1 } };
    lb_view v = { .n = 3, .servers = s };
    lb *b = lb_create("least_conn", 3, NULL);
    CU_ASSERT_PTR_NOT_NULL_FATAL(b);
    lb_track(b, &v);
    CU_ASSERT_EQUAL(lb_pick(b, &v, &req0), 0);
    s[1].active = 5;   /* not reported: the index keeps server 1 idle */
    s[0].active = 1;
    lb_changed(b, &v, 0);
    /* the scan would see {2} alone at 0; the index sees 1 and 2 tied, and
     * smooth WRR over them (currents 1, 1 after the first pick's -3 on 0)
     * takes the first of the largest: 1 */
    CU_ASSERT_EQUAL(lb_pick(b, &v, &req0), 1);
    lb_destroy(b);
}

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

int main(void)
{
    CU_pSuite suite;
    unsigned int failures;
    struct {
        const char *name;
        CU_TestFunc fn;
    } tests[] = {
        { "fenwick tree: k-th and weighted find", test_fenwick },
        { "least_conn: index = scan", test_least_conn },
        { "weighted_round_robin: index = scan", test_weighted_round_robin },
        { "p2c_least_request: index = scan", test_p2c },
        { "random: index = scan", test_random },
        { "random_two_least_conn: index = scan", test_random_two },
        { "round_robin: index = scan", test_round_robin },
        { "first: index = scan", test_first },
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
