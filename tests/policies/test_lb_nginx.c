/*
 * test_lb_nginx.c - the nginx semantics every policy gets from lb_pick
 * (backup, down, max_fails / fail_timeout, "all peers failed" reset,
 * LB_BUSY vs LB_NO_UPSTREAM), and weighted_round_robin against nginx's
 * smooth weighted round robin, on hand-built views.
 *
 * Expected sequences are worked by hand from
 * src/http/ngx_http_upstream_round_robin.c, or produced by a reference
 * model in this file written from that source with nginx's integer
 * arithmetic (ref_*), independent of policies/lb_wrr.c.
 */
#include "lb.h"

#include <CUnit/Basic.h>
#include <CUnit/CUnit.h>
#include <gsl/gsl_rng.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#define N_OF(a) ((int)(sizeof(a) / sizeof((a)[0])))

static const lb_request req0 = { .id = 1 };

static lb_server_view up(double weight)
{
    return (lb_server_view){ .up = 1, .weight = weight };
}

static void expect_sequence(lb *b, lb_view *v, const int *want, int n)
{
    for (int k = 0; k < n; k++) {
        int got = lb_pick(b, v, &req0);
        if (got != want[k])
            fprintf(stderr, "\n  pick %d: got %d, want %d\n", k, got, want[k]);
        CU_ASSERT_EQUAL(got, want[k]);
    }
}

/* ---- reference: nginx ngx_http_upstream_get_peer / free, integers ---- */

typedef struct {
    int weight, effective, current, max_fails, fails;
} ref_peer;

static int ref_pick(ref_peer *p, int n)
{
    int best = -1, total = 0;

    for (int i = 0; i < n; i++) {
        p[i].current += p[i].effective;
        total += p[i].effective;
        if (p[i].effective < p[i].weight)
            p[i].effective++;
        if (best == -1 || p[i].current > p[best].current)
            best = i;
    }
    p[best].current -= total;
    return best;
}

static void ref_fail(ref_peer *p)
{
    p->fails++;
    if (p->max_fails)
        p->effective -= p->weight / p->max_fails;
    if (p->effective < 0)
        p->effective = 0;
}

/* ---- weighted_round_robin ---- */

static void test_wrr_5_1_1(void)
{
    lb_server_view s[] = { up(5), up(1), up(1) };
    lb_view v = { 3, s, 0.0 };
    lb *b = lb_create("weighted_round_robin", 3, NULL);
    const int want[] = { 0, 0, 1, 0, 2, 0, 0,   0, 0, 1, 0, 2, 0, 0 };   /* a a b a c a a */

    CU_ASSERT_PTR_NOT_NULL_FATAL(b);
    expect_sequence(b, &v, want, N_OF(want));
    lb_destroy(b);
}

/* Over a whole number of periods (sum of weights) the shares are exact. */
static void test_wrr_shares_equal_weights(void)
{
    lb_server_view s[] = { up(3), up(7), up(2), up(8) };
    lb_view v = { 4, s, 0.0 };
    lb *b = lb_create("weighted_round_robin", 4, NULL);
    int hits[4] = { 0 };
    int longest_run = 0, run = 0, last = -1;

    CU_ASSERT_PTR_NOT_NULL_FATAL(b);
    for (int k = 0; k < 20 * 50; k++) {
        int got = lb_pick(b, &v, &req0);
        CU_ASSERT_FATAL(got >= 0 && got < 4);
        hits[got]++;
        run = got == last ? run + 1 : 1;
        last = got;
        if (run > longest_run)
            longest_run = run;
    }
    CU_ASSERT_EQUAL(hits[0], 150);
    CU_ASSERT_EQUAL(hits[1], 350);
    CU_ASSERT_EQUAL(hits[2], 100);
    CU_ASSERT_EQUAL(hits[3], 400);
    /* smooth: never more than two in a row with these weights (8 of 20) */
    CU_ASSERT(longest_run <= 2);
    lb_destroy(b);
}

/* One failure on a (weight 4, max_fails 2) costs it 4/2 = 2 of effective
 * weight, given back one per pick:
 *   pick 1: cw a 4, b 1 -> a (a -1)      failure: eff a = 2
 *   pick 2: a -1+2 = 1, b 2 -> b (b -1)  eff a = 3
 *   pick 3: a 4, b 0 -> a (a 0)          eff a = 4
 *   pick 4: a 4, b 1 -> a (a -1); pick 5: a 3, b 2 -> a; pick 6: a 2, b 3 -> b
 * Without the failure pick 2 would have been a. */
static void test_wrr_effective_weight_recovery(void)
{
    lb_server_view s[] = { up(4), up(1) };
    lb_view v = { 2, s, 0.0 };
    lb *b = lb_create("weighted_round_robin", 2, NULL);
    const int after[] = { 1, 0, 0, 0, 1 };

    CU_ASSERT_PTR_NOT_NULL_FATAL(b);
    s[0].max_fails = 2;
    s[0].fail_timeout_s = 10;
    CU_ASSERT_EQUAL(lb_pick(b, &v, &req0), 0);
    lb_on_done(b, &v, 0, 0.1, LB_ERROR);
    expect_sequence(b, &v, after, N_OF(after));
    lb_destroy(b);
}

/* A 5xx passed on to the client (LB_HTTP_5XX) is no failure to nginx
 * (freed with state 0): the effective weight stays 4 and the picks after
 * the first are round robin's own a b a a a, not the b a a a b above. */
static void test_wrr_5xx_keeps_effective_weight(void)
{
    lb_server_view s[] = { up(4), up(1) };
    lb_view v = { 2, s, 0.0 };
    lb *b = lb_create("weighted_round_robin", 2, NULL);
    const int after[] = { 0, 1, 0, 0, 0 };

    CU_ASSERT_PTR_NOT_NULL_FATAL(b);
    s[0].max_fails = 2;
    s[0].fail_timeout_s = 10;
    CU_ASSERT_EQUAL(lb_pick(b, &v, &req0), 0);
    lb_on_done(b, &v, 0, 0.001, LB_HTTP_5XX);
    expect_sequence(b, &v, after, N_OF(after));
    lb_destroy(b);
}

/* Long random runs of picks and failures against the integer reference.
 * max_fails is high so that no server goes out (that is lb.c's part, tested
 * below); what is compared is current and effective weight. */
static void test_wrr_matches_reference_with_failures(void)
{
    enum { N = 5, PICKS = 20000 };
    const int weights[N] = { 7, 3, 1, 5, 2 };
    const int max_fails[N] = { 1000, 1, 1000, 2, 3 };   /* penalties 0, 3, 0, 2, 0 */
    lb_server_view s[N];
    ref_peer ref[N];
    lb_view v = { N, s, 0.0 };
    gsl_rng *rng = gsl_rng_alloc(gsl_rng_mt19937);
    lb *b = lb_create("weighted_round_robin", N, NULL);
    int mismatches = 0, failures = 0;

    CU_ASSERT_PTR_NOT_NULL_FATAL(b);
    gsl_rng_set(rng, 7);
    for (int i = 0; i < N; i++) {
        s[i] = up(weights[i]);
        ref[i] = (ref_peer){ weights[i], weights[i], 0, max_fails[i], 0 };
    }
    for (int k = 0; k < PICKS; k++) {
        int got = lb_pick(b, &v, &req0), want = ref_pick(ref, N);
        mismatches += got != want;
        if (gsl_rng_uniform(rng) < 0.05) {   /* a failure; the reference's
                                                 fails never reach max_fails
                                                 in lb.c's sense: reset them */
            failures++;
            ref_fail(&ref[want]);
            s[want].max_fails = max_fails[want];
            lb_on_done(b, &v, got, 0.1, LB_ERROR);
            s[want].max_fails = 0;   /* keep lb.c's passive health out of it */
        }
    }
    CU_ASSERT_EQUAL(mismatches, 0);
    CU_ASSERT(failures > 500);
    lb_destroy(b);
    gsl_rng_free(rng);
}

/* ---- backup and down ---- */

static void test_backup_only_when_primaries_unavailable(void)
{
    lb_server_view s[] = { up(3), up(2), up(1) };
    lb_view v = { 3, s, 0.0 };
    lb *b = lb_create("weighted_round_robin", 3, NULL);
    int hits[3] = { 0 };

    CU_ASSERT_PTR_NOT_NULL_FATAL(b);
    s[2].backup = 1;
    for (int k = 0; k < 1000; k++)
        hits[lb_pick(b, &v, &req0)]++;
    CU_ASSERT_EQUAL(hits[2], 0);       /* nothing while a primary is up */
    CU_ASSERT_EQUAL(hits[0], 600);
    CU_ASSERT_EQUAL(hits[1], 400);
    s[0].up = 0;                       /* one primary left: still no backup */
    for (int k = 0; k < 100; k++)
        CU_ASSERT_EQUAL(lb_pick(b, &v, &req0), 1);
    s[1].down = 1;                     /* every primary out: everything to the backup */
    for (int k = 0; k < 100; k++)
        CU_ASSERT_EQUAL(lb_pick(b, &v, &req0), 2);
    s[1].down = 0;                     /* primaries at max_conns count as unavailable too */
    s[1].max_conns = 4;
    s[1].active = 4;
    CU_ASSERT_EQUAL(lb_pick(b, &v, &req0), 2);
    s[2].max_conns = 1;                /* the backup full as well: wait */
    s[2].active = 1;
    CU_ASSERT_EQUAL(lb_pick(b, &v, &req0), LB_BUSY);
    s[2].up = 0;                       /* a primary is full, nothing else: still wait */
    CU_ASSERT_EQUAL(lb_pick(b, &v, &req0), LB_BUSY);
    s[1].up = 0;                       /* nothing at all: 502 */
    CU_ASSERT_EQUAL(lb_pick(b, &v, &req0), LB_NO_UPSTREAM);
    s[0].up = 1;                       /* back: primaries first again */
    CU_ASSERT_EQUAL(lb_pick(b, &v, &req0), 0);
    lb_destroy(b);
}

/* Backups share among themselves by their own weights. */
static void test_backups_share_by_weight(void)
{
    lb_server_view s[] = { up(1), up(5), up(1), up(1) };
    lb_view v = { 4, s, 0.0 };
    lb *b = lb_create("weighted_round_robin", 4, NULL);
    const int want[] = { 1, 1, 2, 1, 3, 1, 1 };

    CU_ASSERT_PTR_NOT_NULL_FATAL(b);
    s[0].down = 1;
    s[1].backup = s[2].backup = s[3].backup = 1;
    expect_sequence(b, &v, want, N_OF(want));
    lb_destroy(b);
}

static void test_down_never_used_by_any_policy(void)
{
    gsl_rng *rng = gsl_rng_alloc(gsl_rng_mt19937);

    for (const struct lb_ops *const *p = lb_registry; *p; p++) {
        lb_server_view s[] = { up(1), up(1), up(1) };
        lb_view v = { 3, s, 0.0 };
        lb *b = lb_create((*p)->name, 3, rng);
        int bad = 0;

        CU_ASSERT_PTR_NOT_NULL_FATAL(b);
        s[1].down = 1;
        s[2].backup = 1;
        for (int k = 0; k < 200; k++) {
            lb_request r = { .id = (unsigned long)k, .key = (unsigned long)k * 7919 };
            int got = lb_pick(b, &v, &r);
            bad += got != 0;   /* 1 is down, 2 a backup while 0 is up */
        }
        if (bad)
            fprintf(stderr, "\n  %s: %d picks not on server 0\n", (*p)->name, bad);
        CU_ASSERT_EQUAL(bad, 0);
        s[0].up = 0;
        CU_ASSERT_EQUAL(lb_pick(b, &v, &req0), 2);
        s[2].down = 1;
        CU_ASSERT_EQUAL(lb_pick(b, &v, &req0), LB_NO_UPSTREAM);
        lb_destroy(b);
    }
    gsl_rng_free(rng);
}

/* ---- passive health: max_fails / fail_timeout ---- */

static void at(lb_view *v, double t)
{
    v->now_s = t;
}

static void test_max_fails_takes_out_for_fail_timeout(void)
{
    lb_server_view s[] = { up(1), up(1) };
    lb_view v = { 2, s, 0.0 };
    lb *b = lb_create("weighted_round_robin", 2, NULL);

    CU_ASSERT_PTR_NOT_NULL_FATAL(b);
    s[0].max_fails = s[1].max_fails = 2;
    s[0].fail_timeout_s = s[1].fail_timeout_s = 10;
    at(&v, 1.0);
    lb_on_done(b, &v, 0, 0.1, LB_ERROR);     /* one failure of 2: still in */
    at(&v, 1.5);
    {
        int seen0 = 0;
        for (int k = 0; k < 4; k++)
            seen0 |= lb_pick(b, &v, &req0) == 0;
        CU_ASSERT(seen0);
    }
    at(&v, 2.0);
    lb_on_done(b, &v, 0, 0.1, LB_ERROR);     /* second failure: out until 12 */
    for (double t = 2.0; t <= 12.0; t += 0.5) {
        at(&v, t);
        CU_ASSERT_EQUAL(lb_pick(b, &v, &req0), 1);
    }
    at(&v, 12.01);                    /* fail_timeout over: back in turn */
    {
        int seen0 = 0;
        for (int k = 0; k < 4; k++)
            seen0 |= lb_pick(b, &v, &req0) == 0;
        CU_ASSERT(seen0);
    }
    /* That pick re-checked it (checked = 12.01) but the count stands until
     * a success: one more failure takes it out again at once. */
    at(&v, 12.5);
    lb_on_done(b, &v, 0, 0.1, LB_ERROR);
    at(&v, 13.0);
    for (int k = 0; k < 4; k++)
        CU_ASSERT_EQUAL(lb_pick(b, &v, &req0), 1);
    lb_destroy(b);
}

/* A success clears the count only after a re-check (nginx: accessed <
 * checked), i.e. a pick more than fail_timeout after the last failure. */
static void test_fail_count_cleared_by_success_after_recheck(void)
{
    lb_server_view s[] = { up(1), up(1) };
    lb_view v = { 2, s, 0.0 };
    lb *b1 = lb_create("weighted_round_robin", 2, NULL);
    lb *b2 = lb_create("weighted_round_robin", 2, NULL);

    CU_ASSERT_PTR_NOT_NULL_FATAL(b1);
    CU_ASSERT_PTR_NOT_NULL_FATAL(b2);
    s[0].max_fails = s[1].max_fails = 2;
    s[0].fail_timeout_s = s[1].fail_timeout_s = 10;
    for (int k = 0; k < 2; k++) {
        lb *b = k ? b2 : b1;
        at(&v, 0.0);
        lb_on_done(b, &v, 0, 0.1, LB_ERROR);  /* fails = 1 */
        at(&v, 5.0);
        lb_on_done(b, &v, 0, 0.1, LB_OK);  /* success within fail_timeout: count stays */
    }
    /* b1: a pick at 20 re-checks server 0, then a success clears the count */
    at(&v, 20.0);
    while (lb_pick(b1, &v, &req0) != 0)
        ;
    lb_on_done(b1, &v, 0, 0.1, LB_OK);
    at(&v, 21.0);
    lb_on_done(b1, &v, 0, 0.1, LB_ERROR);     /* fails = 1 again: in */
    lb_on_done(b2, &v, 0, 0.1, LB_ERROR);     /* b2: fails = 2: out */
    at(&v, 21.5);
    {
        int seen0_b1 = 0, seen0_b2 = 0;
        for (int k = 0; k < 4; k++) {
            seen0_b1 |= lb_pick(b1, &v, &req0) == 0;
            seen0_b2 |= lb_pick(b2, &v, &req0) == 0;
        }
        CU_ASSERT(seen0_b1);
        CU_ASSERT(!seen0_b2);
    }
    lb_destroy(b1);
    lb_destroy(b2);
}

/* Every server out: 502, and the failure counts are reset ("all peers
 * failed, mark them as live for quick recovery"), so the next request is
 * routed again. */
static void test_all_failed_reset(void)
{
    lb_server_view s[] = { up(1), up(1), up(1) };
    lb_view v = { 3, s, 0.0 };
    lb *b = lb_create("least_conn", 3, NULL);

    CU_ASSERT_PTR_NOT_NULL_FATAL(b);
    for (int i = 0; i < 3; i++) {
        s[i].max_fails = 1;
        s[i].fail_timeout_s = 30;
    }
    s[2].backup = 1;
    at(&v, 1.0);
    lb_on_done(b, &v, 0, 0.1, LB_ERROR);
    lb_on_done(b, &v, 1, 0.1, LB_ERROR);
    CU_ASSERT_EQUAL(lb_pick(b, &v, &req0), 2);   /* the backup */
    lb_on_done(b, &v, 2, 0.1, LB_ERROR);
    at(&v, 2.0);
    CU_ASSERT_EQUAL(lb_pick(b, &v, &req0), LB_NO_UPSTREAM);
    /* reset: primaries first. Their failures left both at effective weight
     * 1 - 1/1 = 0, recovering one per pick: current weights go 0 0 (0 wins
     * the tie, gives back 0), 1 1 (0 again, gives back 2), -1+1 1+1 -> 1. */
    {
        const int want[] = { 0, 0, 1, 0, 1 };
        expect_sequence(b, &v, want, N_OF(want));
    }
    lb_destroy(b);
}

/* nginx ignores max_fails when the upstream has a single server. */
static void test_single_server_never_out(void)
{
    lb_server_view s[] = { up(1) };
    lb_view v = { 1, s, 0.0 };
    lb *b = lb_create("weighted_round_robin", 1, NULL);

    CU_ASSERT_PTR_NOT_NULL_FATAL(b);
    s[0].max_fails = 1;
    s[0].fail_timeout_s = 10;
    for (int k = 0; k < 5; k++) {
        lb_on_done(b, &v, 0, 0.1, LB_ERROR);
        CU_ASSERT_EQUAL(lb_pick(b, &v, &req0), 0);
    }
    lb_destroy(b);
}

/* ---- least_conn: the effective weight in its tie-break ---- */

static void test_lc_tie_uses_effective_weight(void)
{
    lb_server_view s[] = { up(4), up(1) };
    lb_view v = { 2, s, 0.0 };
    lb *b = lb_create("least_conn", 2, NULL);
    const int after[] = { 1, 0, 0, 0, 1 };   /* as in the round robin case */

    CU_ASSERT_PTR_NOT_NULL_FATAL(b);
    s[0].max_fails = 2;
    s[0].fail_timeout_s = 10;
    CU_ASSERT_EQUAL(lb_pick(b, &v, &req0), 0);   /* all idle: always tied */
    lb_on_done(b, &v, 0, 0.1, LB_ERROR);
    expect_sequence(b, &v, after, N_OF(after));
    lb_destroy(b);
}

/* ---- parameters ---- */

static void test_params(void)
{
    lb_params p = lb_params_default();

    CU_ASSERT_EQUAL(p.choice_count, 2);
    CU_ASSERT_DOUBLE_EQUAL(p.active_request_bias, 1.0, 0);
    CU_ASSERT_DOUBLE_EQUAL(p.decay_s, 10.0, 0);
    CU_ASSERT_EQUAL(p.hash_mode, LB_HASH_CONSISTENT);
    CU_ASSERT_PTR_NULL(lb_params_invalid(&p));
    p.choice_count = 1;
    CU_ASSERT_PTR_NOT_NULL(lb_params_invalid(&p));
    CU_ASSERT_PTR_NULL(lb_create_with("p2c_least_request", 2, NULL, &p));
    p = lb_params_default();
    p.decay_s = 0;
    CU_ASSERT_PTR_NOT_NULL(lb_params_invalid(&p));
    p = lb_params_default();
    p.active_request_bias = -1;
    CU_ASSERT_PTR_NOT_NULL(lb_params_invalid(&p));
    p = lb_params_default();
    p.hash_mode = 7;
    CU_ASSERT_PTR_NOT_NULL(lb_params_invalid(&p));
    {
        lb *b = lb_create_with("weighted_round_robin", 2, NULL, NULL);
        CU_ASSERT_PTR_NOT_NULL(b);
        lb_destroy(b);
    }
}

int main(void)
{
    const struct {
        const char *name;
        CU_TestFunc fn;
    } tests[] = {
        { "wrr: 5,1,1 gives a a b a c a a", test_wrr_5_1_1 },
        { "wrr: shares equal weights, smooth", test_wrr_shares_equal_weights },
        { "wrr: effective weight after a failure", test_wrr_effective_weight_recovery },
        { "wrr: a 5xx passed on is no failure", test_wrr_5xx_keeps_effective_weight },
        { "wrr: 20000 picks with failures = nginx reference", test_wrr_matches_reference_with_failures },
        { "backup: only when every primary is unavailable", test_backup_only_when_primaries_unavailable },
        { "backup: backups share by weight", test_backups_share_by_weight },
        { "down: never used, by any policy", test_down_never_used_by_any_policy },
        { "max_fails: out for fail_timeout", test_max_fails_takes_out_for_fail_timeout },
        { "max_fails: count cleared by a success after re-check", test_fail_count_cleared_by_success_after_recheck },
        { "all failed: 502 and reset", test_all_failed_reset },
        { "single server: max_fails ignored", test_single_server_never_out },
        { "least_conn: tie-break on effective weight", test_lc_tie_uses_effective_weight },
        { "lb_params: defaults and checks", test_params },
    };
    CU_pSuite suite;
    int failed;

    if (CU_initialize_registry() != CUE_SUCCESS)
        return 1;
    suite = CU_add_suite("lb_nginx", NULL, NULL);
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
