/*
 * test_lb_llm.c - the token-aware policies on hand-built views of LLM
 * servers: least_tokens, vllm_dp, prefix_affinity, kv_aware, and the
 * prefix index and least_conn fallback they share (policies/lb_llm.h).
 *
 * Each case states the scores the upstream rule gives and the pick they
 * force; ties are checked where the rule is deterministic (the lowest index)
 * and, for kv_aware's uniform draw among the tied, against the exact
 * probability with a binomial bound of 4 standard deviations (fixed seeds).
 */
#include "lb.h"
#include "lb_llm.h"

#include <CUnit/Basic.h>
#include <CUnit/CUnit.h>
#include <gsl/gsl_rng.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#define N_OF(a) ((int)(sizeof(a) / sizeof((a)[0])))

static const lb_request req0 = { .id = 1 };

/* An LLM server: active requests at the balancer, waiting and running
 * sequences, KV usage and outstanding tokens as the engines report them. */
static lb_server_view llm(int active, int waiting, int running, double kv, double tokens)
{
    return (lb_server_view){ .up = 1, .active = active, .weight = 1, .llm_waiting = waiting,
                             .llm_running = running, .llm_kv_usage = kv,
                             .outstanding_tokens = tokens };
}

/* A batch server: no LLM fields. */
static lb_server_view batch(double weight, int active)
{
    return (lb_server_view){ .up = 1, .active = active, .weight = weight };
}

/* A request of n blocks of 16 tokens whose prompt is exactly those blocks. */
static lb_request prompt(const uint64_t *hashes, int n)
{
    return (lb_request){ .id = 7, .input_tokens = 16 * n, .output_tokens = 8,
                         .hashes = hashes, .n_hashes = n, .hash_block_tokens = 16 };
}

static gsl_rng *seeded(unsigned long seed)
{
    gsl_rng *r = gsl_rng_alloc(gsl_rng_mt19937);
    gsl_rng_set(r, seed);
    return r;
}

/* |hits - n p| within 4 binomial standard deviations */
static int binomial_ok(int hits, int n, double p)
{
    double sd = sqrt(n * p * (1.0 - p));
    if (fabs(hits - n * p) > 4.0 * sd)
        fprintf(stderr, "\n  %d of %d, expected %.1f +- %.1f\n", hits, n, n * p, 4 * sd);
    return fabs(hits - n * p) <= 4.0 * sd;
}

static lb *create(const char *name, int n, gsl_rng *rng, const lb_params *p)
{
    lb *b = lb_create_with(name, n, rng, p);
    CU_ASSERT_PTR_NOT_NULL(b);
    return b;
}

/* ---- least_tokens ---- */

static void test_least_tokens(void)
{
    lb_server_view s[] = { llm(0, 0, 2, 0.3, 500), llm(9, 3, 2, 0.9, 120), llm(1, 0, 1, 0.1, 300) };
    lb_view v = { 3, s, 0.0 };
    lb *b = create("least_tokens", 3, NULL, NULL);

    if (!b)
        return;
    /* the fewest tokens wins, whatever the active count or KV */
    CU_ASSERT_EQUAL(lb_pick(b, &v, &req0), 1);
    /* a tie goes to the lowest index, every time (Python's min) */
    s[2].outstanding_tokens = 120;
    for (int k = 0; k < 5; k++)
        CU_ASSERT_EQUAL(lb_pick(b, &v, &req0), 1);
    s[0].outstanding_tokens = 120;
    CU_ASSERT_EQUAL(lb_pick(b, &v, &req0), 0);
    /* a server that may not take it is skipped */
    s[0].max_conns = 1;
    s[0].active = 1;
    CU_ASSERT_EQUAL(lb_pick(b, &v, &req0), 1);
    s[1].up = 0;
    CU_ASSERT_EQUAL(lb_pick(b, &v, &req0), 2);
    /* one idle server among busy ones: 0 tokens is the minimum, even with
     * more active requests (the rule reads tokens only) */
    lb_server_view t[] = { llm(5, 0, 0, 0, 0), llm(0, 0, 0, 0, 0), llm(0, 1, 0, 0.2, 40) };
    lb_view w = { 3, t, 0.0 };
    CU_ASSERT_EQUAL(lb_pick(b, &w, &req0), 0);
    lb_destroy(b);
}

/* ---- vllm_dp ---- */

static void test_vllm_dp(void)
{
    /* scores 4 x 1 + 0 = 4, 0 + 3 = 3, 0 + 5 = 5 */
    lb_server_view s[] = { llm(1, 1, 0, 0.5, 900), llm(3, 0, 3, 0.9, 9000), llm(5, 0, 5, 0.1, 10) };
    lb_view v = { 3, s, 0.0 };
    lb *b = create("vllm_dp", 3, NULL, NULL);

    if (!b)
        return;
    CU_ASSERT_EQUAL(lb_pick(b, &v, &req0), 1);
    /* one waiting weighs four running: 4 x 1 + 0 ties 0 + 4, the first wins */
    s[1].llm_running = 4;
    CU_ASSERT_EQUAL(lb_pick(b, &v, &req0), 0);
    s[0].llm_waiting = 2;   /* 8 against 4 and 5 */
    CU_ASSERT_EQUAL(lb_pick(b, &v, &req0), 1);
    /* ties at 5: server 0 (4 x 1 + 1) and server 2 (0 + 5) -> 0, repeatedly */
    s[0].llm_waiting = 1;
    s[0].llm_running = 1;
    s[1].llm_running = 6;
    for (int k = 0; k < 5; k++)
        CU_ASSERT_EQUAL(lb_pick(b, &v, &req0), 0);
    s[0].up = 0;
    CU_ASSERT_EQUAL(lb_pick(b, &v, &req0), 2);
    /* one server with nothing waiting or running wins at 0 */
    s[0].up = 1;
    s[1].llm_running = 0;
    s[1].llm_kv_usage = 0;
    CU_ASSERT_EQUAL(lb_pick(b, &v, &req0), 1);
    lb_destroy(b);
}

/* ---- prefix index ---- */

static void test_prefix_index(void)
{
    const uint64_t a[] = { 1, 2, 3, 4 }, b[] = { 1, 2, 5 }, c[] = { 6 };
    const uint64_t d[] = { 11, 12, 13, 14, 15, 16 };
    lb_prefix *p = lb_prefix_new(4);

    CU_ASSERT_PTR_NULL(lb_prefix_new(0));
    CU_ASSERT_PTR_NOT_NULL_FATAL(p);
    CU_ASSERT_EQUAL(lb_prefix_match(p, 3, a, 4), 0);   /* never seen */
    CU_ASSERT_EQUAL(lb_prefix_size(p, 3), 0);
    CU_ASSERT(lb_prefix_insert(p, 0, a, 4));
    CU_ASSERT_EQUAL(lb_prefix_size(p, 0), 4);
    CU_ASSERT_EQUAL(lb_prefix_match(p, 0, a, 4), 4);
    CU_ASSERT_EQUAL(lb_prefix_match(p, 0, b, 3), 2);   /* counted from the first */
    CU_ASSERT_EQUAL(lb_prefix_match(p, 1, a, 4), 0);   /* per server */
    /* full: 5 evicts the least recent, the deepest block 4, not the prefix */
    CU_ASSERT(lb_prefix_insert(p, 0, b, 3));
    CU_ASSERT_EQUAL(lb_prefix_size(p, 0), 4);
    CU_ASSERT_EQUAL(lb_prefix_match(p, 0, a, 4), 3);
    CU_ASSERT_EQUAL(lb_prefix_match(p, 0, b, 3), 3);
    /* recency now 1, 2, 5, 3: 6 evicts 3 */
    CU_ASSERT(lb_prefix_insert(p, 0, c, 1));
    CU_ASSERT_EQUAL(lb_prefix_match(p, 0, a, 4), 2);
    CU_ASSERT_EQUAL(lb_prefix_match(p, 0, b, 3), 3);
    CU_ASSERT_EQUAL(lb_prefix_match(p, 0, c, 1), 1);
    /* longer than the capacity: its first 4 blocks, the old ones gone */
    CU_ASSERT(lb_prefix_insert(p, 0, d, 6));
    CU_ASSERT_EQUAL(lb_prefix_size(p, 0), 4);
    CU_ASSERT_EQUAL(lb_prefix_match(p, 0, d, 6), 4);
    CU_ASSERT_EQUAL(lb_prefix_match(p, 0, a, 1), 0);
    lb_prefix_free(p);

    /* growth and rehashing: small integers (Mooncake hash_ids) and large */
    p = lb_prefix_new(100000);
    CU_ASSERT_PTR_NOT_NULL_FATAL(p);
    uint64_t many[3000];
    for (int j = 0; j < N_OF(many); j++)
        many[j] = j < 1500 ? (uint64_t)j : 0x9e3779b97f4a7c15ULL * (uint64_t)j;
    CU_ASSERT(lb_prefix_insert(p, 7, many, N_OF(many)));
    CU_ASSERT_EQUAL(lb_prefix_size(p, 7), N_OF(many));
    CU_ASSERT_EQUAL(lb_prefix_match(p, 7, many, N_OF(many)), N_OF(many));
    CU_ASSERT_EQUAL(lb_prefix_size(p, 6), 0);
    CU_ASSERT(lb_prefix_insert(p, 7, many, 10));   /* touching adds nothing */
    CU_ASSERT_EQUAL(lb_prefix_size(p, 7), N_OF(many));
    lb_prefix_free(p);
}

/* Servers holding a hash (ascending, gone on eviction) and the chain check
 * behind lb_prefix_known: a request's hashes that follow other hashes than
 * before, or a hash touched at another depth, turn the shortcut off. */
static int holders_are(const lb_prefix *p, uint64_t h, const int *want, int n)
{
    const int *s;
    int got = lb_prefix_holders(p, h, &s);
    if (got != n)
        return 0;
    for (int k = 0; k < n; k++)
        if (s[k] != want[k])
            return 0;
    return 1;
}

static void test_prefix_holders(void)
{
    const uint64_t a[] = { 1 }, ab[] = { 1, 2 }, dc[] = { 4, 3 }, ac[] = { 1, 3 }, ax[] = { 1, 9 };
    const uint64_t b[] = { 2 }, xy[] = { 7, 8 }, ee[] = { 5, 5 };
    lb_prefix *p = lb_prefix_new(2);
    CU_ASSERT_PTR_NOT_NULL_FATAL(p);
    CU_ASSERT_EQUAL(lb_prefix_known(p, ab, 2), 0);
    CU_ASSERT(lb_prefix_insert(p, 5, a, 1));
    CU_ASSERT(lb_prefix_insert(p, 2, a, 1));
    CU_ASSERT(lb_prefix_insert(p, 7, ab, 2));
    CU_ASSERT(holders_are(p, 1, (const int[]){ 2, 5, 7 }, 3));
    CU_ASSERT(holders_are(p, 2, (const int[]){ 7 }, 1));
    CU_ASSERT_EQUAL(lb_prefix_known(p, ab, 2), 2);
    CU_ASSERT_EQUAL(lb_prefix_known(p, ax, 2), 1);   /* 9 held by none */
    CU_ASSERT(lb_prefix_insert(p, 1, dc, 2));
    CU_ASSERT_EQUAL(lb_prefix_known(p, dc, 2), 2);
    /* 3 is held, but after 4: whoever holds it need not hold 1 */
    CU_ASSERT_EQUAL(lb_prefix_known(p, ac, 2), -1);
    CU_ASSERT_EQUAL(lb_prefix_known(p, b, 1), -1);   /* 2 as a first block */
    /* capacity 2: 7 and 8 evict server 5's 1, then it holds none */
    CU_ASSERT(lb_prefix_insert(p, 5, xy, 2));
    CU_ASSERT(holders_are(p, 1, (const int[]){ 2, 7 }, 2));
    CU_ASSERT(lb_prefix_insert(p, 2, xy, 2));
    CU_ASSERT(lb_prefix_insert(p, 7, xy, 2));
    CU_ASSERT(holders_are(p, 1, NULL, 0));
    CU_ASSERT(holders_are(p, 2, NULL, 0));
    CU_ASSERT_EQUAL(lb_prefix_known(p, ab, 2), 0);
    CU_ASSERT(holders_are(p, 7, (const int[]){ 2, 5, 7 }, 3));
    /* a hash touched at another depth than it was put in at: off for good */
    CU_ASSERT(lb_prefix_insert(p, 3, ab, 2));
    CU_ASSERT(lb_prefix_insert(p, 3, b, 1));
    CU_ASSERT_EQUAL(lb_prefix_known(p, dc, 2), -1);
    CU_ASSERT(holders_are(p, 2, (const int[]){ 3 }, 1));   /* holders stay exact */
    lb_prefix_free(p);

    /* a repeated hash: 5 after 5 */
    p = lb_prefix_new(4);
    CU_ASSERT_PTR_NOT_NULL_FATAL(p);
    CU_ASSERT(lb_prefix_insert(p, 0, ee, 2));
    CU_ASSERT_EQUAL(lb_prefix_known(p, a, 1), -1);
    CU_ASSERT(holders_are(p, 5, (const int[]){ 0 }, 1));
    lb_prefix_free(p);
}

/* ---- prefix_affinity ---- */

static const uint64_t P_A[] = { 1, 2, 3, 4 }, P_B[] = { 10, 11, 12, 13 };
static const uint64_t P_C[] = { 20, 21, 22, 23 };

/* An instance over v in which server 0 got B and server 1 got A (both
 * routed as "smallest tree", ties to the lowest index). */
static lb *pa_planted(lb_view *v, const lb_params *p)
{
    lb_request rb = prompt(P_B, 4), ra = prompt(P_A, 4);
    lb *b = create("prefix_affinity", v->n, NULL, p);
    if (!b)
        return NULL;
    CU_ASSERT_EQUAL(lb_pick(b, v, &rb), 0);
    CU_ASSERT_EQUAL(lb_pick(b, v, &ra), 1);
    return b;
}

/* A request that shares a prefix goes where that prefix went before; new
 * prompts go to the smallest tree. */
static void test_prefix_affinity_sticks(void)
{
    lb_server_view s[] = { llm(0, 0, 0, 0, 0), llm(0, 0, 0, 0, 0), llm(0, 0, 0, 0, 0) };
    lb_view v = { 3, s, 0.0 };
    const uint64_t a2[] = { 1, 2, 3, 9 };
    lb_request ra = prompt(P_A, 4), rb = prompt(P_B, 4), rc = prompt(P_C, 4);
    lb_request ra2 = prompt(a2, 4);
    lb *b = create("prefix_affinity", 3, NULL, NULL);

    if (!b)
        return;
    /* empty trees: smallest tree, lowest index on ties: 0, then 1, then 2 */
    CU_ASSERT_EQUAL(lb_pick(b, &v, &ra), 0);
    CU_ASSERT_EQUAL(lb_pick(b, &v, &rb), 1);
    CU_ASSERT_EQUAL(lb_pick(b, &v, &rc), 2);
    /* the same prompt and one sharing 3 of 4 blocks (rate 0.75) go back to
     * where A went, though it is the busiest (not imbalanced: 20 - 0 <= 32) */
    s[0].active = 20;
    CU_ASSERT_EQUAL(lb_pick(b, &v, &ra), 0);
    CU_ASSERT_EQUAL(lb_pick(b, &v, &ra2), 0);
    CU_ASSERT_EQUAL(lb_pick(b, &v, &rc), 2);
    CU_ASSERT_EQUAL(lb_pick(b, &v, &rb), 1);
    /* a server that cannot take it is no candidate: no eligible server
     * matches, so the smallest eligible tree: servers 1 and 2 hold 4 hashes
     * each, the lower index wins */
    s[0].up = 0;
    CU_ASSERT_EQUAL(lb_pick(b, &v, &ra), 1);
    /* server 1 now holds A as well: back up, the tie goes to server 0 */
    s[0].up = 1;
    CU_ASSERT_EQUAL(lb_pick(b, &v, &ra), 0);
    s[0].up = 0;
    CU_ASSERT_EQUAL(lb_pick(b, &v, &ra), 1);
    lb_destroy(b);
}

/* match rate > cache_threshold, strictly; the rate is over the prompt's
 * tokens, not only its whole blocks. */
static void test_prefix_affinity_match_rate(void)
{
    lb_server_view s[] = { llm(0, 0, 0, 0, 0), llm(0, 0, 0, 0, 0), llm(0, 0, 0, 0, 0) };
    lb_view v = { 3, s, 0.0 };
    const uint64_t half[] = { 1, 2, 7, 8 }, three[] = { 1, 2, 3 };
    lb_request rh = prompt(half, 4), r3 = prompt(three, 3);
    lb_params p = lb_params_default();
    lb *b = pa_planted(&v, NULL);

    if (!b)
        return;
    /* sizes 4, 4, 0. 2 of 4 blocks on server 1: rate 0.5, not above 0.5:
     * the smallest tree, server 2 */
    CU_ASSERT_EQUAL(lb_pick(b, &v, &rh), 2);
    lb_destroy(b);
    /* 3 whole blocks (48 tokens) of a 100-token prompt: 0.48 -> server 2;
     * of a 48-token prompt: 1.0 -> server 1 */
    b = pa_planted(&v, NULL);
    if (!b)
        return;
    r3.input_tokens = 100;
    CU_ASSERT_EQUAL(lb_pick(b, &v, &r3), 2);
    lb_destroy(b);
    b = pa_planted(&v, NULL);
    if (!b)
        return;
    r3.input_tokens = 48;
    CU_ASSERT_EQUAL(lb_pick(b, &v, &r3), 1);
    lb_destroy(b);
    /* cache_threshold 0.4: the half match is enough */
    p.cache_threshold = 0.4;
    b = pa_planted(&v, &p);
    if (!b)
        return;
    CU_ASSERT_EQUAL(lb_pick(b, &v, &rh), 1);
    lb_destroy(b);
}

/* One pick by a fresh planted instance (A on server 1) at the given loads. */
static int pa_pick_at(int active0, int active1, const lb_params *p)
{
    lb_server_view s[] = { llm(0, 0, 0, 0, 0), llm(0, 0, 0, 0, 0) };
    lb_view v = { 2, s, 0.0 };
    lb_request ra = prompt(P_A, 4);
    lb *b = pa_planted(&v, p);
    int got;

    if (!b)
        return -9;
    s[0].active = active0;
    s[1].active = active1;
    got = lb_pick(b, &v, &ra);
    lb_destroy(b);
    return got;
}

/* Imbalanced when max - min > 32 and max > 1.1 x min, both strict: then
 * the least active, else the prefix (server 1). */
static void test_prefix_affinity_imbalance(void)
{
    lb_params p = lb_params_default();

    CU_ASSERT_EQUAL(pa_pick_at(320, 352, NULL), 1);   /* 32: not > 32 */
    CU_ASSERT_EQUAL(pa_pick_at(320, 353, NULL), 0);   /* 33 > 32, 353 > 352 */
    CU_ASSERT_EQUAL(pa_pick_at(400, 440, NULL), 1);   /* 440 not > 1.1 x 400 */
    CU_ASSERT_EQUAL(pa_pick_at(400, 441, NULL), 0);
    CU_ASSERT_EQUAL(pa_pick_at(0, 32, NULL), 1);
    CU_ASSERT_EQUAL(pa_pick_at(0, 33, NULL), 0);      /* any max > 1.1 x 0 */
    CU_ASSERT_EQUAL(pa_pick_at(33, 0, NULL), 1);      /* the prefix is also least loaded */
    /* the thresholds are parameters */
    p.balance_abs_threshold = 10;
    p.balance_rel_threshold = 2.0;
    CU_ASSERT_EQUAL(pa_pick_at(15, 30, &p), 1);       /* 15 > 10, 30 not > 2 x 15 */
    CU_ASSERT_EQUAL(pa_pick_at(15, 31, &p), 0);
    CU_ASSERT_EQUAL(pa_pick_at(0, 10, &p), 1);        /* 10 not > 10 */
    CU_ASSERT_EQUAL(pa_pick_at(0, 11, &p), 0);
    /* a server at max_conns counts for the imbalance but is not picked;
     * one that is down counts for neither */
    {
        lb_server_view s[] = { llm(0, 0, 0, 0, 0), llm(0, 0, 0, 0, 0), llm(0, 0, 0, 0, 0) };
        lb_view v = { 3, s, 0.0 };
        lb_request ra = prompt(P_A, 4);
        lb *b = pa_planted(&v, NULL);
        if (!b)
            return;
        s[0].active = 5;
        s[1].active = 3;
        s[2].active = 100;
        s[2].max_conns = 100;
        CU_ASSERT_EQUAL(lb_pick(b, &v, &ra), 1);   /* imbalanced: least active of 0, 1 */
        s[1].active = 6;
        CU_ASSERT_EQUAL(lb_pick(b, &v, &ra), 0);
        s[2].down = 1;                              /* balanced again: the prefix */
        CU_ASSERT_EQUAL(lb_pick(b, &v, &ra), 0);   /* both hold A now: lowest index */
        lb_destroy(b);
    }
}

/* ---- kv_aware ---- */

static void test_kv_aware_weights(void)
{
    /* queue scores (4 - w) / 4: 0, 1, 0.5; free KV: 0.9, 0.1, 0.8 */
    lb_server_view s[] = { llm(0, 4, 1, 0.1, 0), llm(0, 0, 1, 0.9, 0), llm(0, 2, 1, 0.2, 0) };
    lb_view v = { 3, s, 0.0 };
    gsl_rng *rng = seeded(11);
    lb_params p = lb_params_default();
    lb *b = create("kv_aware", 3, rng, NULL);

    if (!b)
        return;
    /* 0.9, 1.1, 1.3 */
    CU_ASSERT_EQUAL(lb_pick(b, &v, &req0), 2);
    lb_destroy(b);
    p.kv_weight = 0;       /* queue only: 0, 1, 0.5 */
    b = create("kv_aware", 3, rng, &p);
    if (b)
        CU_ASSERT_EQUAL(lb_pick(b, &v, &req0), 1);
    lb_destroy(b);
    p.kv_weight = 1;
    p.queue_weight = 0;    /* free KV only */
    b = create("kv_aware", 3, rng, &p);
    if (b)
        CU_ASSERT_EQUAL(lb_pick(b, &v, &req0), 0);
    lb_destroy(b);
    p.queue_weight = 3;    /* 0.9, 3.1, 2.3 */
    b = create("kv_aware", 3, rng, &p);
    if (b)
        CU_ASSERT_EQUAL(lb_pick(b, &v, &req0), 1);
    lb_destroy(b);
    /* equal queues score 1 each (GIE's neutral score): KV decides */
    {
        lb_server_view t[] = { llm(0, 5, 1, 0.4, 0), llm(0, 5, 1, 0.2, 0) };
        lb_view w = { 2, t, 0.0 };
        b = create("kv_aware", 2, rng, NULL);
        if (b)
            CU_ASSERT_EQUAL(lb_pick(b, &w, &req0), 1);
        lb_destroy(b);
    }
    gsl_rng_free(rng);
}

/* The prefix share counts twice: a full match beats an idle server, half a
 * match does not. */
static void test_kv_aware_prefix(void)
{
    lb_server_view s[] = { llm(0, 2, 1, 0.5, 0), llm(0, 0, 1, 0.5, 0), llm(0, 2, 1, 0.5, 0) };
    lb_view v = { 3, s, 0.0 };
    const uint64_t half[] = { 1, 2, 8, 9 };
    lb_request ra = prompt(P_A, 4), rh = prompt(half, 4);
    gsl_rng *rng = seeded(12);
    lb *b = create("kv_aware", 3, rng, NULL);

    if (!b)
        return;
    /* plant: queue scores 0, 1, 0 -> server 1 gets A */
    CU_ASSERT_EQUAL(lb_pick(b, &v, &ra), 1);
    /* now 0 + 1 + 1 = 2, 2 x 1 + 0 + 0.5 = 2.5, 0 + 0.5 + 0.5 = 1 */
    s[0] = llm(0, 0, 1, 0.0, 0);
    s[1] = llm(0, 2, 1, 0.5, 0);
    s[2] = llm(0, 1, 1, 0.5, 0);
    CU_ASSERT_EQUAL(lb_pick(b, &v, &ra), 1);
    /* half of it: 2, 2 x 0.5 + 0 + 0.5 = 1.5, 1 -> server 0 */
    CU_ASSERT_EQUAL(lb_pick(b, &v, &rh), 0);
    /* which now holds all of it: 2 x 1 + 0 + 0.5 = 2.5 beats half a match
     * on a lighter server, 2 x 0.5 + 0.5 + 0.8 = 2.3, and 0 + 1 + 0.5 */
    s[0] = llm(0, 2, 1, 0.5, 0);
    s[1] = llm(0, 1, 1, 0.2, 0);
    s[2] = llm(0, 0, 1, 0.5, 0);
    CU_ASSERT_EQUAL(lb_pick(b, &v, &rh), 0);
    lb_destroy(b);
    gsl_rng_free(rng);
}

/* Equal scores: uniform among the tied eligible servers, never another. */
static void test_kv_aware_ties(void)
{
    lb_server_view s[] = { llm(0, 3, 2, 0.5, 0), llm(0, 3, 2, 0.5, 0), llm(0, 3, 2, 0.6, 0),
                           llm(0, 3, 2, 0.5, 0), llm(0, 3, 2, 0.5, 0) };
    lb_view v = { 5, s, 0.0 };
    gsl_rng *rng = seeded(13);
    lb *b = create("kv_aware", 5, rng, NULL);
    int hits[5] = { 0 }, n = 8000;

    if (!b)
        return;
    s[4].up = 0;
    for (int k = 0; k < n; k++) {
        int got = lb_pick(b, &v, &req0);
        CU_ASSERT_FATAL(got >= 0 && got < 5);
        hits[got]++;
    }
    CU_ASSERT_EQUAL(hits[2], 0);   /* more KV used */
    CU_ASSERT_EQUAL(hits[4], 0);   /* not up */
    for (int i = 0; i < 2; i++)
        CU_ASSERT(binomial_ok(hits[i], n, 1.0 / 3.0));
    CU_ASSERT(binomial_ok(hits[3], n, 1.0 / 3.0));
    lb_destroy(b);
    gsl_rng_free(rng);
}

/* ---- fallback: no LLM signal, nginx least_conn ---- */

/* On a batch pool every policy picks exactly as least_conn does, through a
 * run of picks, completions and failures that exercises the smooth weighted
 * round robin among ties and the effective weight. */
static void test_batch_fallback_is_least_conn(void)
{
    const char *names[] = { "least_tokens", "vllm_dp", "prefix_affinity", "kv_aware" };
    gsl_rng *rng = seeded(21), *drive = seeded(22);

    for (int p = 0; p < N_OF(names); p++) {
        lb_server_view a[] = { batch(1, 0), batch(2, 0), batch(1, 0), batch(3, 0) };
        lb_server_view c[] = { batch(1, 0), batch(2, 0), batch(1, 0), batch(3, 0) };
        lb_view va = { 4, a, 0.0 }, vc = { 4, c, 0.0 };
        lb *ref = lb_create("least_conn", 4, NULL), *b = lb_create(names[p], 4, rng);
        int same = 1;

        CU_ASSERT_PTR_NOT_NULL_FATAL(ref);
        CU_ASSERT_PTR_NOT_NULL_FATAL(b);
        for (int i = 0; i < 4; i++)
            a[i].max_fails = c[i].max_fails = 3;
        gsl_rng_set(drive, 22);
        for (int k = 0; k < 400; k++) {
            va.now_s = vc.now_s = k * 0.01;
            if (gsl_rng_uniform(drive) < 0.6) {
                int x = lb_pick(ref, &vc, &req0), y = lb_pick(b, &va, &req0);
                same &= x == y;
                if (x >= 0) {
                    c[x].active++;
                    a[x].active++;
                }
            } else {
                int i = (int)gsl_rng_uniform_int(drive, 4);
                if (c[i].active == 0)
                    continue;
                lb_result r = gsl_rng_uniform(drive) < 0.2 ? LB_ERROR : LB_OK;
                c[i].active--;
                a[i].active--;
                lb_on_done(ref, &vc, i, 0.1, r);
                lb_on_done(b, &va, i, 0.1, r);
            }
        }
        if (!same)
            fprintf(stderr, "\n  %s differs from least_conn\n", names[p]);
        CU_ASSERT(same);
        lb_destroy(ref);
        lb_destroy(b);
    }
    gsl_rng_free(rng);
    gsl_rng_free(drive);
}

/* The signal each policy ranks by, 0 on every server: least_conn among
 * (active 2, 0, 0) alternates 1, 2, 1, 2; any signal switches the rule on. */
static void test_fallback_on_zero_fields(void)
{
    const char *names[] = { "least_tokens", "vllm_dp", "prefix_affinity", "kv_aware" };
    const int want[] = { 1, 2, 1, 2 };
    gsl_rng *rng = seeded(23);

    for (int p = 0; p < N_OF(names); p++) {
        lb_server_view s[] = { llm(2, 0, 0, 0, 0), llm(0, 0, 0, 0, 0), llm(0, 0, 0, 0, 0) };
        lb_view v = { 3, s, 0.0 };
        lb *b = lb_create(names[p], 3, rng);

        CU_ASSERT_PTR_NOT_NULL_FATAL(b);
        for (int k = 0; k < N_OF(want); k++)
            CU_ASSERT_EQUAL(lb_pick(b, &v, &req0), want[k]);
        lb_destroy(b);
    }
    /* least_tokens: running requests without tokens left are no signal;
     * tokens are */
    {
        lb_server_view s[] = { llm(2, 0, 3, 0.4, 0), llm(0, 0, 1, 0, 0), llm(0, 0, 0, 0, 0) };
        lb_view v = { 3, s, 0.0 };
        lb *b = lb_create("least_tokens", 3, NULL);
        CU_ASSERT_PTR_NOT_NULL_FATAL(b);
        CU_ASSERT_EQUAL(lb_pick(b, &v, &req0), 1);
        CU_ASSERT_EQUAL(lb_pick(b, &v, &req0), 2);
        s[1].outstanding_tokens = 10;
        s[2].outstanding_tokens = 20;
        CU_ASSERT_EQUAL(lb_pick(b, &v, &req0), 0);
        lb_destroy(b);
    }
    /* vllm_dp: KV usage or tokens without sequences are no signal */
    {
        lb_server_view s[] = { llm(2, 0, 0, 0.3, 50), llm(0, 0, 0, 0, 0), llm(0, 0, 0, 0, 0) };
        lb_view v = { 3, s, 0.0 };
        lb *b = lb_create("vllm_dp", 3, NULL);
        CU_ASSERT_PTR_NOT_NULL_FATAL(b);
        CU_ASSERT_EQUAL(lb_pick(b, &v, &req0), 1);
        s[1].llm_running = 1;
        s[2].llm_waiting = 1;
        CU_ASSERT_EQUAL(lb_pick(b, &v, &req0), 0);
        lb_destroy(b);
    }
    /* kv_aware: a new prompt on an idle pool goes by least_conn, and is
     * remembered where it went: the next one with that prompt follows it */
    {
        lb_server_view s[] = { llm(2, 0, 0, 0, 0), llm(0, 0, 0, 0, 0), llm(0, 0, 0, 0, 0) };
        lb_view v = { 3, s, 0.0 };
        lb_request ra = prompt(P_A, 4);
        lb *b = lb_create("kv_aware", 3, rng);
        CU_ASSERT_PTR_NOT_NULL_FATAL(b);
        CU_ASSERT_EQUAL(lb_pick(b, &v, &ra), 1);
        for (int k = 0; k < 3; k++)
            CU_ASSERT_EQUAL(lb_pick(b, &v, &ra), 1);   /* 2 + 1 + 1 against 1 + 1 */
        lb_destroy(b);
    }
    /* prefix_affinity: no hashes, least_conn whatever the LLM fields say */
    {
        lb_server_view s[] = { llm(2, 0, 0, 0, 0), llm(1, 9, 9, 0.9, 999), llm(1, 0, 0, 0, 0) };
        lb_view v = { 3, s, 0.0 };
        lb *b = lb_create("prefix_affinity", 3, NULL);
        CU_ASSERT_PTR_NOT_NULL_FATAL(b);
        CU_ASSERT_EQUAL(lb_pick(b, &v, &req0), 1);
        CU_ASSERT_EQUAL(lb_pick(b, &v, &req0), 2);
        lb_destroy(b);
    }
    gsl_rng_free(rng);
}

/* Parameters: defaults, bounds, and a NULL instance for bad ones. */
static void test_params(void)
{
    lb_params p = lb_params_default();
    gsl_rng *rng = seeded(31);

    CU_ASSERT_DOUBLE_EQUAL(p.cache_threshold, 0.5, 0);
    CU_ASSERT_EQUAL(p.balance_abs_threshold, 32);
    CU_ASSERT_DOUBLE_EQUAL(p.balance_rel_threshold, 1.1, 0);
    CU_ASSERT_EQUAL(p.prefix_blocks, 0);
    CU_ASSERT_DOUBLE_EQUAL(p.prefix_weight, 2, 0);
    CU_ASSERT_DOUBLE_EQUAL(p.queue_weight, 1, 0);
    CU_ASSERT_DOUBLE_EQUAL(p.kv_weight, 1, 0);
    CU_ASSERT_PTR_NULL(lb_params_invalid(&p));
    p.cache_threshold = 1.01;
    CU_ASSERT_STRING_EQUAL(lb_params_invalid(&p), "cache_threshold: expected a number from 0 to 1");
    CU_ASSERT_PTR_NULL(lb_create_with("prefix_affinity", 2, NULL, &p));
    p = lb_params_default();
    p.balance_abs_threshold = -1;
    CU_ASSERT_PTR_NOT_NULL(lb_params_invalid(&p));
    p = lb_params_default();
    p.balance_rel_threshold = NAN;
    CU_ASSERT_PTR_NOT_NULL(lb_params_invalid(&p));
    p = lb_params_default();
    p.prefix_blocks = -5;
    CU_ASSERT_PTR_NOT_NULL(lb_params_invalid(&p));
    p = lb_params_default();
    p.queue_weight = -1;
    CU_ASSERT_STRING_EQUAL(lb_params_invalid(&p), "queue_weight: expected a number >= 0");
    CU_ASSERT_PTR_NULL(lb_create_with("kv_aware", 2, rng, &p));
    p = lb_params_default();
    p.prefix_weight = INFINITY;
    CU_ASSERT_PTR_NOT_NULL(lb_params_invalid(&p));
    /* kv_aware draws among ties: no rng, no instance */
    CU_ASSERT_PTR_NULL(lb_create("kv_aware", 2, NULL));
    /* prefix_blocks bounds the index: with 4, A then B on one server
     * leaves B only, and A counts as new */
    {
        lb_server_view s[] = { llm(0, 0, 0, 0, 0), llm(0, 0, 0, 0, 0) };
        lb_view v = { 2, s, 0.0 };
        lb_request ra = prompt(P_A, 4), rb = prompt(P_B, 4);
        lb *b;
        p = lb_params_default();
        p.prefix_blocks = 4;
        p.cache_threshold = 0;
        b = lb_create_with("prefix_affinity", 2, NULL, &p);
        CU_ASSERT_PTR_NOT_NULL_FATAL(b);
        CU_ASSERT_EQUAL(lb_pick(b, &v, &ra), 0);
        CU_ASSERT_EQUAL(lb_pick(b, &v, &rb), 1);   /* rate 0, not > 0: smallest */
        CU_ASSERT_EQUAL(lb_pick(b, &v, &ra), 0);   /* any match > 0 */
        s[0].up = 0;
        CU_ASSERT_EQUAL(lb_pick(b, &v, &rb), 1);
        CU_ASSERT_EQUAL(lb_pick(b, &v, &ra), 1);   /* server 1 now evicts B */
        s[0].up = 1;
        CU_ASSERT_EQUAL(lb_pick(b, &v, &rb), 0);   /* sizes 4, 4, no match: lowest */
        lb_destroy(b);
    }
    gsl_rng_free(rng);
}

int main(void)
{
    const struct {
        const char *name;
        CU_TestFunc fn;
    } tests[] = {
        { "least_tokens: fewest tokens, lowest index", test_least_tokens },
        { "vllm_dp: 4 x waiting + running, lowest index", test_vllm_dp },
        { "prefix index: LRU, deepest first", test_prefix_index },
        { "prefix index: holders, and the chain check", test_prefix_holders },
        { "prefix_affinity: a shared prefix sticks", test_prefix_affinity_sticks },
        { "prefix_affinity: match rate threshold", test_prefix_affinity_match_rate },
        { "prefix_affinity: imbalance thresholds", test_prefix_affinity_imbalance },
        { "kv_aware: weighted scores", test_kv_aware_weights },
        { "kv_aware: prefix share", test_kv_aware_prefix },
        { "kv_aware: random among ties", test_kv_aware_ties },
        { "fallback: batch pool = least_conn", test_batch_fallback_is_least_conn },
        { "fallback: zero fields", test_fallback_on_zero_fields },
        { "parameters", test_params },
    };
    CU_pSuite suite;
    int failed;

    if (CU_initialize_registry() != CUE_SUCCESS)
        return 1;
    suite = CU_add_suite("lb_llm", NULL, NULL);
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
    failed = CU_get_number_of_failures() != 0;
    CU_cleanup_registry();
    return failed;
}
