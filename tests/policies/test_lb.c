/*
 * test_lb.c - load-balancing policies on hand-built views, no SimGrid.
 *
 * Sequences are asserted exactly where a policy is deterministic (round
 * robin, least_conn against nginx's smooth weighted round robin); the random
 * policy is checked against a binomial bound derived from the number of
 * picks, and for reproducibility from its seed.
 */
#include "lb.h"

#include <CUnit/Basic.h>
#include <CUnit/CUnit.h>
#include <gsl/gsl_rng.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#define N_OF(a) ((int)(sizeof(a) / sizeof((a)[0])))

static const lb_request req0 = { .id = 1, .traffic_class = 0, .arrival_s = 0.0 };

static lb_server_view up(double weight, int active)
{
    return (lb_server_view){ .up = 1, .active = active, .max_conns = 0, .weight = weight };
}

static lb_view view_of(const lb_server_view *s, int n)
{
    return (lb_view){ .n = n, .servers = s, .now_s = 0.0 };
}

/* Picks n times from an unchanging view and checks the exact sequence. */
static void expect_sequence(lb *b, const lb_view *v, const int *want, int n)
{
    for (int k = 0; k < n; k++) {
        int got = lb_pick(b, v, &req0);
        if (got != want[k])
            fprintf(stderr, "\n  pick %d: got %d, want %d\n", k, got, want[k]);
        CU_ASSERT_EQUAL(got, want[k]);
    }
}

/* ---- registry and wrappers ---- */

static void test_registry_find(void)
{
    const char *names[] = { "round_robin", "weighted_round_robin", "random",
                            "random_two_least_conn", "least_conn", "least_time",
                            "p2c_least_request", "jsq", "peak_ewma", "hash", "first",
                            "least_tokens", "vllm_dp", "prefix_affinity", "kv_aware" };
    int count = 0;

    for (int i = 0; i < N_OF(names); i++) {
        const struct lb_ops *ops = lb_find(names[i]);
        CU_ASSERT_PTR_NOT_NULL_FATAL(ops);
        CU_ASSERT_STRING_EQUAL(ops->name, names[i]);
    }
    /* Every registered policy has what lb_create and `fleetsim list` need. */
    for (const struct lb_ops *const *p = lb_registry; *p; p++, count++) {
        CU_ASSERT_PTR_NOT_NULL((*p)->name);
        CU_ASSERT_PTR_NOT_NULL((*p)->summary);
        CU_ASSERT_PTR_NOT_NULL((*p)->pick);
        CU_ASSERT_PTR_EQUAL(lb_find((*p)->name), *p);
    }
    CU_ASSERT_EQUAL(count, N_OF(names));
    CU_ASSERT_PTR_NULL(lb_find("no_such_policy"));
    CU_ASSERT_PTR_NULL(lb_find(""));
    CU_ASSERT_PTR_NULL(lb_find(NULL));
    CU_ASSERT_PTR_NULL(lb_create("no_such_policy", 3, NULL));
}

static void test_registry_names(void)
{
    char buf[512], small[8];

    CU_ASSERT_STRING_EQUAL(lb_names(buf, sizeof buf),
                           "round_robin, weighted_round_robin, random, random_two_least_conn, "
                           "least_conn, least_time, p2c_least_request, jsq, peak_ewma, hash, first, "
                           "least_tokens, vllm_dp, prefix_affinity, kv_aware");
    /* Truncated, still a string. */
    CU_ASSERT_PTR_EQUAL(lb_names(small, sizeof small), small);
    CU_ASSERT_EQUAL(strlen(small), sizeof small - 1);
    CU_ASSERT_NSTRING_EQUAL(small, "round_robin", sizeof small - 1);
}

static void test_create_name_destroy(void)
{
    gsl_rng *rng = gsl_rng_alloc(gsl_rng_mt19937);

    for (const struct lb_ops *const *p = lb_registry; *p; p++) {
        lb *b = lb_create((*p)->name, 4, rng);
        CU_ASSERT_PTR_NOT_NULL_FATAL(b);
        CU_ASSERT_STRING_EQUAL(lb_name(b), (*p)->name);
        lb_destroy(b);
    }
    /* the randomised policies cannot start without an rng */
    CU_ASSERT_PTR_NULL(lb_create("random", 4, NULL));
    CU_ASSERT_PTR_NULL(lb_create("random_two_least_conn", 4, NULL));
    CU_ASSERT_PTR_NULL(lb_create("p2c_least_request", 4, NULL));
    CU_ASSERT_PTR_NULL(lb_create("jsq", 4, NULL));
    CU_ASSERT_PTR_NULL(lb_create("peak_ewma", 4, NULL));
    CU_ASSERT_PTR_NULL(lb_create("kv_aware", 4, NULL));
    /* the deterministic ones can */
    {
        const char *det[] = { "round_robin", "weighted_round_robin", "least_conn",
                              "least_time", "hash", "first", "least_tokens", "vllm_dp",
                              "prefix_affinity" };
        for (int i = 0; i < N_OF(det); i++) {
            lb *b = lb_create(det[i], 4, NULL);
            CU_ASSERT_PTR_NOT_NULL(b);
            lb_destroy(b);
        }
    }
    lb_destroy(NULL);
    gsl_rng_free(rng);
}

/* A policy with no optional methods, and one that gets it wrong. */
static int always_zero(void *state, const lb_view *view, const lb_request *req)
{
    (void)state;
    (void)view;
    (void)req;
    return 0;
}

static const struct lb_ops minimal_ops = { .name = "minimal", .pick = always_zero };

static void test_optional_ops(void)
{
    lb_server_view s[] = { up(1, 0) };
    lb_view v = view_of(s, 1);
    const struct lb_ops no_pick = { .name = "no_pick" };
    lb *b = lb_create_ops(&minimal_ops, 1, NULL);

    CU_ASSERT_PTR_NOT_NULL_FATAL(b);
    CU_ASSERT_EQUAL(lb_pick(b, &v, &req0), 0);
    lb_on_done(b, &v, 0, 0.5, LB_OK);   /* no on_done: nothing happens */
    lb_destroy(b);                  /* no init, no destroy: NULL state */
    CU_ASSERT_PTR_NULL(lb_create_ops(&no_pick, 1, NULL));
    CU_ASSERT_PTR_NULL(lb_create_ops(NULL, 1, NULL));
}

static void test_empty_pool(void)
{
    lb *b = lb_create("round_robin", 0, NULL);
    lb_view v = view_of(NULL, 0);

    CU_ASSERT_PTR_NOT_NULL_FATAL(b);
    CU_ASSERT_EQUAL(lb_pick(b, &v, &req0), LB_NO_UPSTREAM);   /* nothing to send to: 502 */
    lb_destroy(b);
}

#ifdef NDEBUG
/* Release builds route a buggy pick to the first eligible server rather than
 * drop the request (debug builds stop on an assert instead). */
static void test_bad_pick_fallback(void)
{
    lb_server_view s[] = { up(1, 0), up(1, 0) };
    lb_view v = view_of(s, 2);
    lb *b = lb_create_ops(&minimal_ops, 2, NULL);

    CU_ASSERT_PTR_NOT_NULL_FATAL(b);
    s[0].up = 0;   /* minimal still answers 0 */
    CU_ASSERT_EQUAL(lb_pick(b, &v, &req0), 1);
    s[1].up = 0;
    CU_ASSERT_EQUAL(lb_pick(b, &v, &req0), LB_NO_UPSTREAM);
    lb_destroy(b);
}
#endif

/* ---- round robin ---- */

static void test_rr_order(void)
{
    lb_server_view s[] = { up(1, 0), up(5, 9), up(1, 0) };   /* weights, load ignored */
    lb_view v = view_of(s, 3);
    lb *b = lb_create("round_robin", 3, NULL);
    const int want[] = { 0, 1, 2, 0, 1, 2, 0 };

    CU_ASSERT_PTR_NOT_NULL_FATAL(b);
    expect_sequence(b, &v, want, N_OF(want));
    lb_destroy(b);
}

static void test_rr_skips_down_and_full(void)
{
    lb_server_view s[] = { up(1, 0), up(1, 0), up(1, 0), up(1, 0) };
    lb_view v = view_of(s, 4);
    lb *b = lb_create("round_robin", 4, NULL);

    CU_ASSERT_PTR_NOT_NULL_FATAL(b);
    CU_ASSERT_EQUAL(lb_pick(b, &v, &req0), 0);
    s[1].up = 0;                         /* down */
    s[2].max_conns = 2;                  /* full */
    s[2].active = 2;
    {
        const int want[] = { 3, 0, 3, 0 };
        expect_sequence(b, &v, want, N_OF(want));
    }
    s[2].active = 1;                     /* below max_conns again */
    {
        /* Last pick was 0: continue after it, skipping 1. */
        const int want[] = { 2, 3, 0, 2 };
        expect_sequence(b, &v, want, N_OF(want));
    }
    s[1].up = 1;                         /* back: resumes after 2 */
    {
        const int want[] = { 3, 0, 1, 2 };
        expect_sequence(b, &v, want, N_OF(want));
    }
    lb_destroy(b);
}

static void test_rr_none_eligible(void)
{
    lb_server_view s[] = { up(1, 0), up(1, 3) };
    lb_view v = view_of(s, 2);
    lb *b = lb_create("round_robin", 2, NULL);

    CU_ASSERT_PTR_NOT_NULL_FATAL(b);
    s[0].up = 0;
    s[1].max_conns = 3;
    CU_ASSERT_EQUAL(lb_pick(b, &v, &req0), -1);
    CU_ASSERT_EQUAL(lb_pick(b, &v, &req0), -1);
    s[0].up = 1;
    CU_ASSERT_EQUAL(lb_pick(b, &v, &req0), 0);
    lb_destroy(b);
}

static void test_rr_pool_resized(void)
{
    lb_server_view s[] = { up(1, 0), up(1, 0), up(1, 0), up(1, 0), up(1, 0) };
    lb_view v = view_of(s, 5);
    lb *b = lb_create("round_robin", 2, NULL);   /* scaled out since */
    const int want5[] = { 0, 1, 2, 3, 4 };
    const int want2[] = { 0, 1, 0 };

    CU_ASSERT_PTR_NOT_NULL_FATAL(b);
    expect_sequence(b, &v, want5, N_OF(want5));
    v.n = 2;                                      /* and in again */
    expect_sequence(b, &v, want2, N_OF(want2));
    lb_destroy(b);
}

/* ---- least_conn ---- */

static void test_lc_min_active_per_weight(void)
{
    lb_server_view s[] = { up(1, 1), up(2, 1), up(1, 0) };
    lb_view v = view_of(s, 3);
    lb *b = lb_create("least_conn", 3, NULL);

    CU_ASSERT_PTR_NOT_NULL_FATAL(b);
    CU_ASSERT_EQUAL(lb_pick(b, &v, &req0), 2);   /* idle wins */
    s[0].active = 2;
    s[1].active = 3;
    s[2].active = 2;                             /* 2/1, 3/2, 2/1 */
    CU_ASSERT_EQUAL(lb_pick(b, &v, &req0), 1);
    s[1].active = 5;                             /* 2/1, 5/2, 2/1: tie 0 and 2 */
    {
        const int want[] = { 0, 2, 0, 2 };       /* equal weights alternate */
        expect_sequence(b, &v, want, N_OF(want));
    }
    /* Non-integer weights compare by cross-multiplication too. */
    s[0] = up(0.5, 1);
    s[1] = up(1.5, 2);
    s[2] = up(1.0, 1);                           /* 2, 1.33, 1 */
    CU_ASSERT_EQUAL(lb_pick(b, &v, &req0), 2);
    lb_destroy(b);
}

/* nginx's smooth weighted round robin over weights 5, 1, 1 gives
 * a a b a c a a (ngx_http_upstream_round_robin.c); least_conn uses it for
 * servers tied on active/weight, e.g. all idle. */
static void test_lc_ties_are_smooth_wrr(void)
{
    lb_server_view s[] = { up(5, 0), up(1, 0), up(1, 0) };
    lb_view v = view_of(s, 3);
    lb *b = lb_create("least_conn", 3, NULL);
    const int want[] = { 0, 0, 1, 0, 2, 0, 0,   0, 0, 1, 0, 2, 0, 0 };

    CU_ASSERT_PTR_NOT_NULL_FATAL(b);
    expect_sequence(b, &v, want, N_OF(want));
    /* Equal ratio, not equal count: 10/5 = 2/1 = 2/1 ties the same way. */
    s[0].active = 10;
    s[1].active = 2;
    s[2].active = 2;
    expect_sequence(b, &v, want, N_OF(want));
    lb_destroy(b);
}

/* Only the tied servers take part in the round robin: the others keep their
 * current weight, so the cycle resumes where it was once they tie again. */
static void test_lc_only_tied_servers_rotate(void)
{
    lb_server_view s[] = { up(5, 0), up(1, 0), up(1, 0) };
    lb_view v = view_of(s, 3);
    lb *b = lb_create("least_conn", 3, NULL);
    const int first3[] = { 0, 0, 1 };
    const int bc[] = { 2, 2 };
    const int rest[] = { 0, 0, 2, 0, 0, 1, 0,   0, 0, 2, 0, 0, 1, 0 };

    CU_ASSERT_PTR_NOT_NULL_FATAL(b);
    /* current weights a, b, c: 0 0 0 -> 1 -4 3 */
    expect_sequence(b, &v, first3, N_OF(first3));
    /* a busy (1/5 > 0): b and c tie at 0 and rotate alone from -4 3 -> -2 1 */
    s[0].active = 1;
    expect_sequence(b, &v, bc, N_OF(bc));
    /* a idle again, its current weight still 1: from 1 -2 1 the 5,1,1 cycle
     * is a a c a a b a, and comes back to 1 -2 1 after 7 picks */
    s[0].active = 0;
    expect_sequence(b, &v, rest, N_OF(rest));
    lb_destroy(b);
}

static void test_lc_skips_down_and_full(void)
{
    lb_server_view s[] = { up(1, 0), up(1, 4), up(1, 1) };
    lb_view v = view_of(s, 3);
    lb *b = lb_create("least_conn", 3, NULL);

    CU_ASSERT_PTR_NOT_NULL_FATAL(b);
    s[0].up = 0;                               /* idle but down */
    CU_ASSERT_EQUAL(lb_pick(b, &v, &req0), 2);
    s[2].max_conns = 1;                        /* least loaded but full */
    CU_ASSERT_EQUAL(lb_pick(b, &v, &req0), 1);
    s[1].max_conns = 4;
    CU_ASSERT_EQUAL(lb_pick(b, &v, &req0), -1);
    lb_destroy(b);
}

/* With the engine's bookkeeping (active + 1 on each pick), weights 2:1 give
 * a 2:1 share of in-flight requests. */
static void test_lc_follows_load(void)
{
    lb_server_view s[] = { up(2, 0), up(1, 0) };
    lb_view v = view_of(s, 2);
    lb *b = lb_create("least_conn", 2, NULL);
    /* 0/2=0/1 tie -> wrr a; 1/2 vs 0 -> b; 1/2 vs 1/1 -> a; 2/2=1/1 tie ->
     * wrr (cw a=-1+2=1, b=1+1=2) b; 2/2 vs 2/1 -> a; 3/2 vs 2/1 -> a */
    const int want[] = { 0, 1, 0, 1, 0, 0 };

    CU_ASSERT_PTR_NOT_NULL_FATAL(b);
    for (int k = 0; k < N_OF(want); k++) {
        int got = lb_pick(b, &v, &req0);
        CU_ASSERT_EQUAL(got, want[k]);
        if (got >= 0)
            s[got].active++;
    }
    CU_ASSERT_EQUAL(s[0].active, 4);
    CU_ASSERT_EQUAL(s[1].active, 2);
    lb_destroy(b);
}

static void test_lc_pool_grows(void)
{
    lb_server_view s[] = { up(1, 0), up(1, 0), up(1, 0), up(1, 0) };
    lb_view v = view_of(s, 4);
    lb *b = lb_create("least_conn", 1, NULL);
    const int want[] = { 0, 1, 2, 3, 0, 1, 2, 3 };

    CU_ASSERT_PTR_NOT_NULL_FATAL(b);
    expect_sequence(b, &v, want, N_OF(want));
    lb_destroy(b);
}

/* ---- random ---- */

static void test_random_weighted_share(void)
{
    enum { PICKS = 40000 };
    lb_server_view s[] = { up(3, 0), up(1, 0), up(100, 0) };
    lb_view v = view_of(s, 3);
    gsl_rng *rng = gsl_rng_alloc(gsl_rng_mt19937);
    lb *b;
    int hits[3] = { 0, 0, 0 };
    const double p = 0.75;
    /* Picks of server 0 are Binomial(n, p): accept within 4 standard
     * deviations, a false alarm about once in 16,000 runs. */
    const double bound = 4.0 * sqrt(PICKS * p * (1.0 - p));

    gsl_rng_set(rng, 12345);
    b = lb_create("random", 3, rng);
    CU_ASSERT_PTR_NOT_NULL_FATAL(b);
    s[2].up = 0;   /* the heavy one is down: never picked */
    for (int k = 0; k < PICKS; k++) {
        int got = lb_pick(b, &v, &req0);
        CU_ASSERT_FATAL(got == 0 || got == 1);
        hits[got]++;
    }
    CU_ASSERT_EQUAL(hits[2], 0);
    CU_ASSERT(fabs(hits[0] - PICKS * p) <= bound);
    CU_ASSERT_EQUAL(hits[0] + hits[1], PICKS);
    lb_destroy(b);
    gsl_rng_free(rng);
}

static void test_random_eligible_only(void)
{
    lb_server_view s[] = { up(1, 0), up(1, 2), up(1, 0), up(1, 0) };
    lb_view v = view_of(s, 4);
    gsl_rng *rng = gsl_rng_alloc(gsl_rng_mt19937);
    lb *b = lb_create("random", 4, rng);
    int hits[4] = { 0, 0, 0, 0 };

    CU_ASSERT_PTR_NOT_NULL_FATAL(b);
    s[0].up = 0;
    s[1].max_conns = 2;
    for (int k = 0; k < 1000; k++) {
        int got = lb_pick(b, &v, &req0);
        CU_ASSERT_FATAL(got >= 0 && got < 4);
        hits[got]++;
    }
    CU_ASSERT_EQUAL(hits[0], 0);
    CU_ASSERT_EQUAL(hits[1], 0);
    CU_ASSERT(hits[2] > 0 && hits[3] > 0);
    s[2].up = 0;
    s[3].up = 0;
    CU_ASSERT_EQUAL(lb_pick(b, &v, &req0), -1);
    lb_destroy(b);
    gsl_rng_free(rng);
}

static void test_random_same_seed_same_sequence(void)
{
    lb_server_view s[] = { up(1, 0), up(2, 0), up(3, 0), up(4, 0) };
    lb_view v = view_of(s, 4);
    gsl_rng *r1 = gsl_rng_alloc(gsl_rng_mt19937), *r2 = gsl_rng_alloc(gsl_rng_mt19937);
    lb *b1, *b2;
    int same = 1, differs_from_other_seed = 0;

    gsl_rng_set(r1, 42);
    gsl_rng_set(r2, 42);
    b1 = lb_create("random", 4, r1);
    b2 = lb_create("random", 4, r2);
    CU_ASSERT_PTR_NOT_NULL_FATAL(b1);
    CU_ASSERT_PTR_NOT_NULL_FATAL(b2);
    for (int k = 0; k < 1000; k++)
        same &= lb_pick(b1, &v, &req0) == lb_pick(b2, &v, &req0);
    CU_ASSERT(same);

    gsl_rng_set(r1, 42);
    gsl_rng_set(r2, 43);
    for (int k = 0; k < 1000; k++)
        differs_from_other_seed |= lb_pick(b1, &v, &req0) != lb_pick(b2, &v, &req0);
    CU_ASSERT(differs_from_other_seed);
    lb_destroy(b1);
    lb_destroy(b2);
    gsl_rng_free(r1);
    gsl_rng_free(r2);
}

int main(void)
{
    const struct {
        const char *name;
        CU_TestFunc fn;
    } tests[] = {
        { "registry: lb_find, unknown names", test_registry_find },
        { "registry: lb_names", test_registry_names },
        { "create, name, destroy every policy", test_create_name_destroy },
        { "optional ops handled by the wrappers", test_optional_ops },
        { "empty pool", test_empty_pool },
#ifdef NDEBUG
        { "ineligible pick falls back (release)", test_bad_pick_fallback },
#endif
        { "round_robin: order", test_rr_order },
        { "round_robin: skips down and full", test_rr_skips_down_and_full },
        { "round_robin: -1 when none eligible", test_rr_none_eligible },
        { "round_robin: pool resized", test_rr_pool_resized },
        { "least_conn: min active/weight", test_lc_min_active_per_weight },
        { "least_conn: ties are smooth WRR (5,1,1)", test_lc_ties_are_smooth_wrr },
        { "least_conn: only tied servers rotate", test_lc_only_tied_servers_rotate },
        { "least_conn: skips down and full", test_lc_skips_down_and_full },
        { "least_conn: follows load", test_lc_follows_load },
        { "least_conn: pool grows", test_lc_pool_grows },
        { "random: 3:1 share within 4 sigma", test_random_weighted_share },
        { "random: eligible only", test_random_eligible_only },
        { "random: same seed, same sequence", test_random_same_seed_same_sequence },
    };
    CU_pSuite suite;
    int failed;

    if (CU_initialize_registry() != CUE_SUCCESS)
        return 1;
    suite = CU_add_suite("lb", NULL, NULL);
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
