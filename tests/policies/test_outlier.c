/*
 * test_outlier.c - Envoy outlier detection (consecutive 5xx) as lb_pick and
 * lb_on_done apply it to every policy, on hand-built views: the count that
 * ejects and what resets it, ejection times that grow with each ejection
 * and end at an interval tick, the backoff that shrinks while a server is
 * healthy and its cap, max_ejection_percent and always_eject_one_host,
 * partial enforcement against the same random draws, an ejected server
 * hidden from every registered policy, and a 5xx response (LB_HTTP_5XX, a
 * full queue's 503) that counts towards consecutive_5xx but not towards
 * nginx's max_fails.
 *
 * Every expected time is worked by hand from Envoy's
 * source/common/upstream/outlier_detection_impl.cc (ejectHost,
 * checkHostForUneject, onIntervalTimer): interval 10 s, base 30 s and max
 * 300 s unless a test says otherwise, ticks at 10, 20, 30 ... s.
 */
#include "lb.h"

#include <CUnit/Basic.h>
#include <CUnit/CUnit.h>
#include <gsl/gsl_rng.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

enum { MAXN = 20 };

static const lb_request req0 = { .id = 1 };

typedef struct {
    lb_server_view s[MAXN];
    lb_view v;
} pool;

static void pool_init(pool *p, int n)
{
    memset(p, 0, sizeof *p);
    for (int i = 0; i < n; i++)
        p->s[i] = (lb_server_view){ .up = 1, .weight = 1 };
    p->v = (lb_view){ n, p->s, 0.0 };
}

static lb_params od_params(void)
{
    lb_params pr = lb_params_default();
    pr.outlier.enabled = 1;
    return pr;
}

static lb *od_lb(const char *policy, int n, const lb_params *pr, gsl_rng *rng)
{
    lb *b = lb_create_with(policy, n, rng, pr);
    CU_ASSERT_PTR_NOT_NULL(b);
    return b;
}

/* k results of one server at time t */
static void results(lb *b, pool *p, int server, double t, int k, lb_result r)
{
    p->v.now_s = t;
    for (int i = 0; i < k; i++)
        lb_on_done(b, &p->v, server, 0.01, r);
}

static void fail(lb *b, pool *p, int server, double t, int k)
{
    results(b, p, server, t, k, LB_ERROR);
}

/* How many of k picks at time t went to server. */
static int picks_of(lb *b, pool *p, int server, double t, int k)
{
    int hits = 0;
    p->v.now_s = t;
    for (int i = 0; i < k; i++)
        hits += lb_pick(b, &p->v, &req0) == server;
    return hits;
}

static lb_outlier_host state(lb *b, int server, double t)
{
    lb_outlier_host h;
    memset(&h, 0, sizeof h);
    CU_ASSERT_EQUAL(lb_outlier_state(b, server, t, &h), 0);
    return h;
}

/* ---- counting ---- */

/* Ten servers (10% allows one ejection): the 5th failure in a row ejects,
 * the 4th does not; round robin over ten gives each 2 of 20 picks, and
 * over the nine left gives the ejected one none of 18. */
static void test_five_in_a_row_eject(void)
{
    pool p;
    pool_init(&p, 10);
    lb_params pr = od_params();
    lb *b = od_lb("round_robin", 10, &pr, NULL);
    CU_ASSERT_PTR_NOT_NULL_FATAL(b);

    fail(b, &p, 3, 1.0, 4);
    lb_outlier_host h = state(b, 3, 1.0);
    CU_ASSERT_EQUAL(h.ejected, 0);
    CU_ASSERT_EQUAL(h.consecutive_5xx, 4);
    CU_ASSERT_EQUAL(lb_outlier_ejections(b), 0);
    CU_ASSERT_EQUAL(picks_of(b, &p, 3, 1.0, 20), 2);

    fail(b, &p, 3, 2.0, 1);
    h = state(b, 3, 2.0);
    CU_ASSERT_EQUAL(h.ejected, 1);
    CU_ASSERT_EQUAL(h.num_ejections, 1);
    CU_ASSERT_EQUAL(h.consecutive_5xx, 0);          /* reset after the ejection */
    CU_ASSERT_DOUBLE_EQUAL(h.ejected_at_s, 2.0, 0);
    CU_ASSERT_DOUBLE_EQUAL(h.until_s, 40.0, 0);     /* 2 + 30 = 32: the tick at 40 */
    CU_ASSERT_EQUAL(lb_outlier_ejections(b), 1);
    CU_ASSERT_EQUAL(picks_of(b, &p, 3, 2.0, 18), 0);
    CU_ASSERT_EQUAL(picks_of(b, &p, 0, 2.0, 18), 2);
    lb_destroy(b);
}

/* A new replica in the slot of one that was ejected (lb_forget): picked at
 * once, no ejection on record, and its first failures count from zero. */
static void test_forget_new_replica(void)
{
    pool p;
    pool_init(&p, 10);
    lb_params pr = od_params();
    lb *b = od_lb("round_robin", 10, &pr, NULL);
    CU_ASSERT_PTR_NOT_NULL_FATAL(b);
    fail(b, &p, 3, 2.0, 5);
    CU_ASSERT_EQUAL(state(b, 3, 2.0).ejected, 1);
    CU_ASSERT_EQUAL(picks_of(b, &p, 3, 3.0, 18), 0);
    lb_forget(b, 3);
    lb_outlier_host h = state(b, 3, 3.0);
    CU_ASSERT_EQUAL(h.ejected, 0);
    CU_ASSERT_EQUAL(h.num_ejections, 0);
    CU_ASSERT_EQUAL(picks_of(b, &p, 3, 3.0, 20), 2);
    fail(b, &p, 3, 4.0, 4);
    CU_ASSERT_EQUAL(state(b, 3, 4.0).ejected, 0); /* 4 of 5: not yet */
    lb_destroy(b);
}

/* 4 failures, a success, 4 failures: not ejected (the success reset the
 * count, else the 5th failure overall would have ejected); one more is the
 * 5th in a row. */
static void test_success_resets_count(void)
{
    pool p;
    pool_init(&p, 10);
    lb_params pr = od_params();
    lb *b = od_lb("round_robin", 10, &pr, NULL);
    CU_ASSERT_PTR_NOT_NULL_FATAL(b);

    fail(b, &p, 7, 1.0, 4);
    results(b, &p, 7, 1.5, 1, LB_OK);
    CU_ASSERT_EQUAL(state(b, 7, 1.5).consecutive_5xx, 0);
    fail(b, &p, 7, 2.0, 4);
    lb_outlier_host h = state(b, 7, 2.0);
    CU_ASSERT_EQUAL(h.ejected, 0);
    CU_ASSERT_EQUAL(h.consecutive_5xx, 4);
    CU_ASSERT_EQUAL(lb_outlier_ejections(b), 0);
    CU_ASSERT_EQUAL(picks_of(b, &p, 7, 2.0, 20), 2);
    fail(b, &p, 7, 3.0, 1);
    CU_ASSERT_EQUAL(state(b, 7, 3.0).ejected, 1);
    CU_ASSERT_EQUAL(lb_outlier_ejections(b), 1);
    lb_destroy(b);
}

/* Off (the default) nothing is ejected, however many failures. */
static void test_off_by_default(void)
{
    pool p;
    pool_init(&p, 10);
    lb *b = lb_create("round_robin", 10, NULL);
    CU_ASSERT_PTR_NOT_NULL_FATAL(b);
    fail(b, &p, 1, 1.0, 50);
    CU_ASSERT_EQUAL(picks_of(b, &p, 1, 1.0, 20), 2);
    CU_ASSERT_EQUAL(lb_outlier_ejections(b), 0);
    lb_outlier_host h;
    CU_ASSERT_EQUAL(lb_outlier_state(b, 1, 1.0, &h), -1);
    lb_destroy(b);
}

/* Failures while ejected (requests already in flight) grow the count past
 * 5 without a second ejection or a longer one; the un-ejection resets it,
 * so 4 failures after it do not eject. */
static void test_uneject_resets_count(void)
{
    pool p;
    pool_init(&p, 10);
    lb_params pr = od_params();
    lb *b = od_lb("round_robin", 10, &pr, NULL);
    CU_ASSERT_PTR_NOT_NULL_FATAL(b);

    fail(b, &p, 0, 1.0, 5);                 /* out until 40 */
    fail(b, &p, 0, 2.0, 7);
    lb_outlier_host h = state(b, 0, 2.0);
    CU_ASSERT_EQUAL(h.consecutive_5xx, 7);
    CU_ASSERT_EQUAL(h.num_ejections, 1);
    CU_ASSERT_DOUBLE_EQUAL(h.until_s, 40.0, 0);
    CU_ASSERT_EQUAL(lb_outlier_ejections(b), 1);
    CU_ASSERT_EQUAL(state(b, 0, 40.0).consecutive_5xx, 0);
    fail(b, &p, 0, 41.0, 4);
    h = state(b, 0, 41.0);
    CU_ASSERT_EQUAL(h.ejected, 0);
    CU_ASSERT_EQUAL(h.consecutive_5xx, 4);
    lb_destroy(b);
}

/* ---- ejection time ---- */

/* A server that fails again as soon as it is back: 30 s, 60 s, 90 s, each
 * ending at the first tick after. Ejected at 5: back at 40 (35 -> 40); at
 * 41 for 60: back at 110 (101 -> 110); at 112 for 90: back at 210 (202 ->
 * 210). No tick passed between un-ejection and the next ejection at least
 * one interval after the un-ejection, so no backoff decrement. */
static void test_duration_grows_and_ends_at_tick(void)
{
    pool p;
    pool_init(&p, 10);
    lb_params pr = od_params();
    lb *b = od_lb("round_robin", 10, &pr, NULL);
    CU_ASSERT_PTR_NOT_NULL_FATAL(b);
    static const struct {
        double at_s, until_s;
        int backoff;
    } want[] = { { 5.0, 40.0, 1 }, { 41.0, 110.0, 2 }, { 112.0, 210.0, 3 } };

    for (int k = 0; k < 3; k++) {
        fail(b, &p, 0, want[k].at_s, 5);
        lb_outlier_host h = state(b, 0, want[k].at_s);
        CU_ASSERT_EQUAL(h.ejected, 1);
        CU_ASSERT_EQUAL(h.num_ejections, k + 1);
        CU_ASSERT_EQUAL(h.backoff, want[k].backoff);
        CU_ASSERT_DOUBLE_EQUAL(h.until_s, want[k].until_s, 0);
        /* hidden up to the tick, in turn again at it */
        CU_ASSERT_EQUAL(picks_of(b, &p, 0, want[k].until_s - 0.01, 18), 0);
        CU_ASSERT_EQUAL(state(b, 0, want[k].until_s - 0.01).ejected, 1);
        CU_ASSERT_EQUAL(picks_of(b, &p, 0, want[k].until_s, 20), 2);
        CU_ASSERT_EQUAL(state(b, 0, want[k].until_s).ejected, 0);
    }
    CU_ASSERT_EQUAL(lb_outlier_ejections(b), 3);
    lb_destroy(b);
}

/* SimGrid's clock carries float dust: a time a nanosecond short of a tick
 * is on it, a hundredth of a second is not. */
static void test_tick_float_dust(void)
{
    pool p;
    pool_init(&p, 10);
    lb_params pr = od_params();
    lb *b = od_lb("round_robin", 10, &pr, NULL);
    CU_ASSERT_PTR_NOT_NULL_FATAL(b);
    fail(b, &p, 4, 0.3, 5);                   /* 30.3 -> back at 40 */
    CU_ASSERT_EQUAL(state(b, 4, 39.99).ejected, 1);
    CU_ASSERT_EQUAL(state(b, 4, 40.0 - 1e-9).ejected, 0);
    /* ejected on a tick (4 is back, so 10% allows it) for a multiple of the
     * interval: back exactly base_ejection_time later, at 130 */
    fail(b, &p, 5, 100.0, 5);
    lb_outlier_host h = state(b, 5, 100.0);
    CU_ASSERT_EQUAL(h.ejected, 1);
    CU_ASSERT_DOUBLE_EQUAL(h.until_s, 130.0, 0);
    CU_ASSERT_EQUAL(state(b, 5, 129.99).ejected, 1);
    CU_ASSERT_EQUAL(state(b, 5, 130.0).ejected, 0);
    lb_destroy(b);
}

/* Envoy decrements ejectTimeBackoff at each tick at least one interval
 * after the un-ejection. Three ejections (backoff 3, back at 210); at 221
 * the tick at 220 has taken one step off: 2 + 1 = 3 -> 90 s -> 311 -> 320
 * (without the decrement: 4 -> 120 s -> 350). Back at 320; at 335 one tick
 * (330) has passed: backoff 2; at 365 four (330 ... 360): 0, so the next
 * ejection lasts 30 s again: 395 -> 400. */
static void test_backoff_decays_while_healthy(void)
{
    pool p;
    pool_init(&p, 10);
    lb_params pr = od_params();
    lb *b = od_lb("round_robin", 10, &pr, NULL);
    CU_ASSERT_PTR_NOT_NULL_FATAL(b);
    fail(b, &p, 0, 5.0, 5);
    fail(b, &p, 0, 41.0, 5);
    fail(b, &p, 0, 112.0, 5);
    CU_ASSERT_EQUAL(state(b, 0, 210.0).backoff, 3);   /* just back: no step yet */
    CU_ASSERT_EQUAL(state(b, 0, 219.9).backoff, 3);
    CU_ASSERT_EQUAL(state(b, 0, 220.0).backoff, 2);
    fail(b, &p, 0, 221.0, 5);
    lb_outlier_host h = state(b, 0, 221.0);
    CU_ASSERT_EQUAL(h.backoff, 3);
    CU_ASSERT_DOUBLE_EQUAL(h.until_s, 320.0, 0);
    CU_ASSERT_EQUAL(state(b, 0, 319.0).backoff, 3);  /* no steps while ejected */
    CU_ASSERT_EQUAL(state(b, 0, 335.0).backoff, 2);
    CU_ASSERT_EQUAL(state(b, 0, 365.0).backoff, 0);
    fail(b, &p, 0, 365.0, 5);
    h = state(b, 0, 365.0);
    CU_ASSERT_EQUAL(h.backoff, 1);
    CU_ASSERT_DOUBLE_EQUAL(h.until_s, 400.0, 0);
    CU_ASSERT_EQUAL(h.num_ejections, 5);
    lb_destroy(b);
}

/* max_ejection_time 60 s: 30, 60, 60, 60. The backoff grows while
 * backoff x 30 < 60 + 30, so it stops at 3, one step above 60 / 30. Back at
 * 250, two ticks (260, 270) take it to 1; at 275 it becomes 2: 60 s, back
 * at 340 (a backoff capped at 2 would give 1: 30 s, back at 310). */
static void test_max_ejection_time_caps(void)
{
    pool p;
    pool_init(&p, 10);
    lb_params pr = od_params();
    pr.outlier.max_ejection_time_s = 60;
    lb *b = od_lb("round_robin", 10, &pr, NULL);
    CU_ASSERT_PTR_NOT_NULL_FATAL(b);
    static const struct {
        double at_s, until_s;
        int backoff;
    } want[] = { { 1, 40, 1 }, { 41, 110, 2 }, { 111, 180, 3 }, { 181, 250, 3 }, { 275, 340, 2 } };
    for (int k = 0; k < 5; k++) {
        fail(b, &p, 0, want[k].at_s, 5);
        lb_outlier_host h = state(b, 0, want[k].at_s);
        CU_ASSERT_EQUAL(h.backoff, want[k].backoff);
        CU_ASSERT_DOUBLE_EQUAL(h.until_s, want[k].until_s, 0);
    }
    CU_ASSERT_EQUAL(state(b, 0, 270.0).backoff, 2);  /* what 275 found: 1 before its ++ */
    lb_destroy(b);
}

/* ---- how many may be out ---- */

/* Ten servers at 10%: the second ejection is refused (20% > 10%), and the
 * refused server's count is reset: 4 more failures do not eject it. Once
 * the first is back (40), one more failure makes 5 in a row: ejected, 40 +
 * 30 = 70, a tick. */
static void test_max_percent_blocks_second(void)
{
    pool p;
    pool_init(&p, 10);
    lb_params pr = od_params();
    lb *b = od_lb("round_robin", 10, &pr, NULL);
    CU_ASSERT_PTR_NOT_NULL_FATAL(b);

    fail(b, &p, 0, 1.0, 5);
    CU_ASSERT_EQUAL(state(b, 0, 1.0).ejected, 1);
    fail(b, &p, 1, 2.0, 5);
    lb_outlier_host h = state(b, 1, 2.0);
    CU_ASSERT_EQUAL(h.ejected, 0);
    CU_ASSERT_EQUAL(h.num_ejections, 0);
    CU_ASSERT_EQUAL(h.consecutive_5xx, 0);
    CU_ASSERT_EQUAL(lb_outlier_ejections(b), 1);
    CU_ASSERT_EQUAL(picks_of(b, &p, 1, 2.0, 18), 2);  /* nine in turn */
    CU_ASSERT_EQUAL(picks_of(b, &p, 0, 2.0, 18), 0);
    fail(b, &p, 1, 3.0, 4);
    CU_ASSERT_EQUAL(state(b, 1, 3.0).ejected, 0);
    fail(b, &p, 1, 40.0, 1);
    h = state(b, 1, 40.0);
    CU_ASSERT_EQUAL(h.ejected, 1);
    CU_ASSERT_DOUBLE_EQUAL(h.until_s, 70.0, 0);
    CU_ASSERT_EQUAL(lb_outlier_ejections(b), 2);
    lb_destroy(b);
}

/* 100 x (ejected + 1) / hosts <= percent: nine servers at 10% eject none
 * (11.1%), unless always_eject_one_host (then one, not two); twenty eject
 * two (10%), not three (15%); 0% ejects none. */
static void test_max_percent_rounding(void)
{
    static const struct {
        int n, percent, always, tries, ejected;
    } cases[] = {
        { 9, 10, 0, 1, 0 }, { 9, 10, 1, 2, 1 }, { 20, 10, 0, 3, 2 }, { 10, 0, 0, 1, 0 },
        { 10, 0, 1, 2, 1 }, { 3, 100, 0, 3, 3 }, { 3, 50, 0, 2, 1 }, { 4, 50, 0, 3, 2 },
    };
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        pool p;
        pool_init(&p, cases[c].n);
        lb_params pr = od_params();
        pr.outlier.max_ejection_percent = cases[c].percent;
        pr.outlier.always_eject_one_host = cases[c].always;
        lb *b = od_lb("round_robin", cases[c].n, &pr, NULL);
        CU_ASSERT_PTR_NOT_NULL_FATAL(b);
        for (int s = 0; s < cases[c].tries; s++)
            fail(b, &p, s, 1.0 + s, 5);
        if (lb_outlier_ejections(b) != (unsigned long)cases[c].ejected)
            fprintf(stderr, "\n  case %zu: %lu ejected, want %d\n", c, lb_outlier_ejections(b),
                    cases[c].ejected);
        CU_ASSERT_EQUAL(lb_outlier_ejections(b), (unsigned long)cases[c].ejected);
        int out = 0;
        for (int s = 0; s < cases[c].n; s++)
            out += state(b, s, 1.0 + cases[c].tries).ejected;
        CU_ASSERT_EQUAL(out, cases[c].ejected);
        lb_destroy(b);
    }
}

/* Twenty slots of which ten are up (a pool with max_replicas 20): 10%
 * of the ten allows one ejection, not two (counting the slots would allow
 * two). An ejected server counts while it is out, so it is still one of
 * ten when a server of the nine left is refused. */
static void test_max_percent_counts_servers_up(void)
{
    pool p;
    pool_init(&p, 20);
    for (int i = 10; i < 20; i++)
        p.s[i].up = 0;
    lb_params pr = od_params();
    lb *b = od_lb("round_robin", 20, &pr, NULL);
    CU_ASSERT_PTR_NOT_NULL_FATAL(b);
    fail(b, &p, 0, 1.0, 5);
    fail(b, &p, 1, 2.0, 5);
    CU_ASSERT_EQUAL(lb_outlier_ejections(b), 1);
    CU_ASSERT_EQUAL(state(b, 0, 2.0).ejected, 1);
    CU_ASSERT_EQUAL(state(b, 1, 2.0).ejected, 0);
    for (int i = 10; i < 20; i++)   /* scaled out to twenty: now two may be out */
        p.s[i].up = 1;
    fail(b, &p, 1, 3.0, 5);
    CU_ASSERT_EQUAL(state(b, 1, 3.0).ejected, 1);
    CU_ASSERT_EQUAL(lb_outlier_ejections(b), 2);
    lb_destroy(b);
}

/* ---- enforcement ---- */

/* enforcing_consecutive_5xx 0: detected, never enforced, count reset each
 * time. 50: each detection draws gsl_rng_uniform_int(rng, 100) < 50 from
 * the balancer's rng; a twin generator with the same seed predicts every
 * one (round_robin draws nothing, and no pick is made). */
static void test_enforcing(void)
{
    pool p;
    pool_init(&p, 10);
    lb_params pr = od_params();
    pr.outlier.enforcing_consecutive_5xx = 0;
    lb *b = od_lb("round_robin", 10, &pr, NULL);
    CU_ASSERT_PTR_NOT_NULL_FATAL(b);
    fail(b, &p, 2, 1.0, 15);
    CU_ASSERT_EQUAL(lb_outlier_ejections(b), 0);
    CU_ASSERT_EQUAL(state(b, 2, 1.0).consecutive_5xx, 0);
    lb_destroy(b);

    pr.outlier.enforcing_consecutive_5xx = 50;
    CU_ASSERT_PTR_NULL(lb_create_with("round_robin", 10, NULL, &pr));  /* needs an rng */
    gsl_rng *rng = gsl_rng_alloc(gsl_rng_mt19937), *twin = gsl_rng_alloc(gsl_rng_mt19937);
    gsl_rng_set(rng, 7);
    gsl_rng_set(twin, 7);
    pr.outlier.max_ejection_percent = 100;
    b = od_lb("round_robin", 10, &pr, rng);
    CU_ASSERT_PTR_NOT_NULL_FATAL(b);
    unsigned long want = 0;
    int differ = 0;
    for (int r = 0; r < 60; r++) {
        double t = 1000.0 * (r + 1);   /* every earlier ejection is over */
        int s = r % 10;
        fail(b, &p, s, t, 5);
        int enforced = gsl_rng_uniform_int(twin, 100) < 50;
        want += (unsigned long)enforced;
        differ += state(b, s, t).ejected != enforced;
    }
    CU_ASSERT_EQUAL(differ, 0);
    CU_ASSERT_EQUAL(lb_outlier_ejections(b), want);
    CU_ASSERT(want > 10 && want < 50);   /* both outcomes were exercised */
    lb_destroy(b);
    gsl_rng_free(rng);
    gsl_rng_free(twin);
}

/* ---- every policy ---- */

/* With server 2 ejected, no policy picks it in 200 picks; the others at
 * max_conns give LB_BUSY and the others not up LB_NO_UPSTREAM (the ejected
 * one is not available either); back at 40 it is the only choice there. */
static void test_every_policy_hides_ejected(void)
{
    gsl_rng *rng = gsl_rng_alloc(gsl_rng_mt19937);
    lb_params pr = od_params();
    pr.outlier.healthy_panic_threshold = 0; /* alone and ejected, it would be used in panic */
    for (const struct lb_ops *const *ops = lb_registry; *ops; ops++) {
        pool p;
        pool_init(&p, 10);
        gsl_rng_set(rng, 11);
        lb *b = lb_create_ops_with(*ops, 10, rng, &pr);
        CU_ASSERT_PTR_NOT_NULL_FATAL(b);
        fail(b, &p, 2, 1.0, 5);
        int hits = 0, none = 0;
        p.v.now_s = 2.0;
        for (int k = 0; k < 200; k++) {
            lb_request r = { .id = (unsigned long)k, .key = (unsigned long)k * 2654435761UL };
            int s = lb_pick(b, &p.v, &r);
            hits += s == 2;
            none += s < 0;
        }
        if (hits || none)
            fprintf(stderr, "\n  %s: %d picks of the ejected server, %d of none\n",
                    (*ops)->name, hits, none);
        CU_ASSERT_EQUAL(hits, 0);
        CU_ASSERT_EQUAL(none, 0);
        for (int i = 0; i < 10; i++) {
            p.s[i].max_conns = 1;
            p.s[i].active = i == 2 ? 0 : 1;
        }
        CU_ASSERT_EQUAL(lb_pick(b, &p.v, &req0), LB_BUSY);
        for (int i = 0; i < 10; i++)
            p.s[i].up = i == 2;
        CU_ASSERT_EQUAL(lb_pick(b, &p.v, &req0), LB_NO_UPSTREAM);
        p.v.now_s = 40.0;
        CU_ASSERT_EQUAL(lb_pick(b, &p.v, &req0), 2);
        lb_destroy(b);
    }
    gsl_rng_free(rng);
}

/* Envoy's panic mode at the default threshold (50%): 4 servers, ejections
 * allowed up to 100%. Two ejected leave 50% healthy, not below 50: round
 * robin uses the other two. A third ejected leaves 25%: every pick ignores
 * ejections and round robin takes all four in turn. At threshold 0 it
 * never panics (the last one takes every request); at 100 one ejection is
 * enough. */
static void test_panic_threshold(void)
{
    for (int th = 0; th <= 100; th += 50) {
        pool p;
        pool_init(&p, 4);
        lb_params pr = od_params();
        pr.outlier.max_ejection_percent = 100;
        pr.outlier.healthy_panic_threshold = th;
        lb *b = od_lb("round_robin", 4, &pr, NULL);
        CU_ASSERT_PTR_NOT_NULL_FATAL(b);
        fail(b, &p, 0, 1.0, 5);
        if (th == 100) { /* 75% healthy < 100% */
            CU_ASSERT_EQUAL(picks_of(b, &p, 0, 1.5, 8), 2);
            CU_ASSERT_EQUAL(lb_outlier_panics(b), 8);
            lb_destroy(b);
            continue;
        }
        fail(b, &p, 1, 1.0, 5);
        CU_ASSERT_EQUAL(picks_of(b, &p, 0, 1.5, 8), 0);
        CU_ASSERT_EQUAL(picks_of(b, &p, 2, 1.5, 8), 4);
        fail(b, &p, 2, 2.0, 5);
        CU_ASSERT_EQUAL(lb_outlier_ejections(b), 3);
        int hits[4] = { 0 };
        p.v.now_s = 2.5;
        for (int k = 0; k < 8; k++) {
            int s = lb_pick(b, &p.v, &req0);
            CU_ASSERT_FATAL(s >= 0 && s < 4);
            hits[s]++;
        }
        for (int s = 0; s < 4; s++)
            CU_ASSERT_EQUAL(hits[s], th == 0 ? (s == 3) * 8 : 2);
        CU_ASSERT_EQUAL(lb_outlier_panics(b), th == 0 ? 0 : 8);
        lb_destroy(b);
    }
}

/* A retry hides the servers it tried (not up for that pick); they are
 * still hosts to panic mode. 4 servers, server 0 ejected: a retry that
 * tried 1, 2 and 3 finds no server (75% healthy: no panic), where a view
 * that simply lacked them would panic and send it to the ejected one. */
static void test_panic_counts_hidden(void)
{
    pool p;
    pool_init(&p, 4);
    lb_params pr = od_params();
    pr.outlier.max_ejection_percent = 100;
    lb *b = od_lb("round_robin", 4, &pr, NULL);
    CU_ASSERT_PTR_NOT_NULL_FATAL(b);
    fail(b, &p, 0, 1.0, 5);
    p.v.now_s = 1.5;
    for (int i = 1; i < 4; i++)
        p.s[i].up = 0;
    const int tried[] = { 1, 2, 3 };
    lb_request retry = { .id = 2, .hidden = tried, .n_hidden = 3 };
    CU_ASSERT_EQUAL(lb_pick(b, &p.v, &retry), LB_NO_UPSTREAM);
    CU_ASSERT_EQUAL(lb_outlier_panics(b), 0);
    CU_ASSERT_EQUAL(lb_pick(b, &p.v, &req0), 0); /* 1, 2, 3 really down: panic */
    CU_ASSERT_EQUAL(lb_outlier_panics(b), 1);
    lb_destroy(b);
}

/* Outlier detection beside nginx's max_fails: each takes its own server
 * out, and with both out round robin shares the other eight. */
static void test_beside_max_fails(void)
{
    pool p;
    pool_init(&p, 10);
    for (int i = 0; i < 10; i++) {
        p.s[i].max_fails = 1;
        p.s[i].fail_timeout_s = 100;
    }
    lb_params pr = od_params();
    pr.outlier.consecutive_5xx = 2;
    lb *b = od_lb("round_robin", 10, &pr, NULL);
    CU_ASSERT_PTR_NOT_NULL_FATAL(b);
    fail(b, &p, 0, 1.0, 1);    /* nginx: out; outlier: 1 of 2 */
    fail(b, &p, 1, 1.0, 2);    /* both */
    CU_ASSERT_EQUAL(state(b, 0, 1.0).ejected, 0);
    CU_ASSERT_EQUAL(state(b, 1, 1.0).ejected, 1);
    CU_ASSERT_EQUAL(picks_of(b, &p, 0, 2.0, 16), 0);
    CU_ASSERT_EQUAL(picks_of(b, &p, 1, 2.0, 16), 0);
    CU_ASSERT_EQUAL(picks_of(b, &p, 9, 2.0, 16), 2);
    lb_destroy(b);
}

/* ---- a 5xx response (LB_HTTP_5XX): Envoy counts it, nginx does not ---- */

/* A server that answers 503 at once (its queue full) is a 5xx to Envoy
 * (putHttpResponseCode: is5xx): the 4th 503 in a row leaves it in, the 5th
 * ejects it, at 2 s until the tick at 40, exactly as five errors would. A
 * run of 503s and connection errors mixed counts as one run. */
static void test_503_counts_for_consecutive_5xx(void)
{
    pool p;
    pool_init(&p, 10);
    lb_params pr = od_params();
    pr.outlier.max_ejection_percent = 20;
    lb *b = od_lb("round_robin", 10, &pr, NULL);
    CU_ASSERT_PTR_NOT_NULL_FATAL(b);

    results(b, &p, 3, 1.0, 4, LB_HTTP_5XX);
    lb_outlier_host h = state(b, 3, 1.0);
    CU_ASSERT_EQUAL(h.ejected, 0);
    CU_ASSERT_EQUAL(h.consecutive_5xx, 4);
    CU_ASSERT_EQUAL(picks_of(b, &p, 3, 1.0, 20), 2);
    results(b, &p, 3, 2.0, 1, LB_HTTP_5XX);
    h = state(b, 3, 2.0);
    CU_ASSERT_EQUAL(h.ejected, 1);
    CU_ASSERT_EQUAL(h.num_ejections, 1);
    CU_ASSERT_DOUBLE_EQUAL(h.until_s, 40.0, 0);
    CU_ASSERT_EQUAL(lb_outlier_ejections(b), 1);
    CU_ASSERT_EQUAL(picks_of(b, &p, 3, 2.0, 18), 0);

    /* 503, error, 503, error, 503: the 5th ejects server 5 */
    for (int k = 0; k < 4; k++)
        results(b, &p, 5, 3.0, 1, k % 2 ? LB_ERROR : LB_HTTP_5XX);
    CU_ASSERT_EQUAL(state(b, 5, 3.0).consecutive_5xx, 4);
    CU_ASSERT_EQUAL(state(b, 5, 3.0).ejected, 0);
    results(b, &p, 5, 3.0, 1, LB_HTTP_5XX);
    CU_ASSERT_EQUAL(state(b, 5, 3.0).ejected, 1);   /* 2 of 10: 20% allowed */
    CU_ASSERT_EQUAL(lb_outlier_ejections(b), 2);
    lb_destroy(b);
}

/* nginx passes a 503 on to the client as a response (state 0, a success)
 * unless proxy_next_upstream lists http_503: with max_fails = 1 any number
 * of LB_HTTP_5XX leave the server in, and one LB_ERROR (what the engine
 * reports for a 503 when http_503 is listed) takes it out. A 5xx after the
 * re-check clears the failure, as any response does. */
static void test_503_not_nginx_failure(void)
{
    pool p;
    pool_init(&p, 3);
    for (int i = 0; i < 3; i++) {
        p.s[i].max_fails = 1;
        p.s[i].fail_timeout_s = 10;
    }
    lb *b = lb_create("round_robin", 3, NULL);
    CU_ASSERT_PTR_NOT_NULL_FATAL(b);
    results(b, &p, 0, 1.0, 50, LB_HTTP_5XX);
    CU_ASSERT_EQUAL(picks_of(b, &p, 0, 1.0, 9), 3);
    results(b, &p, 0, 2.0, 1, LB_ERROR);
    CU_ASSERT_EQUAL(picks_of(b, &p, 0, 2.0, 9), 0);   /* out until 12 */
    CU_ASSERT_EQUAL(picks_of(b, &p, 1, 2.0, 8), 4);
    /* at 13 a pick re-checks server 0 (fail_timeout passed); a 5xx then is
     * a success to nginx: the failure is cleared, it stays in at 13.5 */
    p.v.now_s = 13.0;
    int got = -1;
    for (int k = 0; k < 3 && got != 0; k++)
        got = lb_pick(b, &p.v, &req0);
    CU_ASSERT_EQUAL_FATAL(got, 0);
    results(b, &p, 0, 13.0, 1, LB_HTTP_5XX);
    CU_ASSERT_EQUAL(picks_of(b, &p, 0, 13.5, 9), 3);
    lb_destroy(b);

    /* The same 503s with outlier detection beside max_fails: Envoy's count
     * ejects server 0 at the 5th; nginx's never took it out. */
    pool_init(&p, 10);
    for (int i = 0; i < 10; i++) {
        p.s[i].max_fails = 1;
        p.s[i].fail_timeout_s = 10;
    }
    lb_params pr = od_params();
    b = od_lb("round_robin", 10, &pr, NULL);
    CU_ASSERT_PTR_NOT_NULL_FATAL(b);
    results(b, &p, 0, 1.0, 4, LB_HTTP_5XX);
    CU_ASSERT_EQUAL(picks_of(b, &p, 0, 1.0, 20), 2);
    results(b, &p, 0, 1.0, 1, LB_HTTP_5XX);
    CU_ASSERT_EQUAL(state(b, 0, 1.0).ejected, 1);
    CU_ASSERT_EQUAL(picks_of(b, &p, 0, 1.0, 18), 0);
    lb_destroy(b);
}

/* ---- parameters ---- */

static void test_params(void)
{
    lb_params d = lb_params_default();
    CU_ASSERT_EQUAL(d.outlier.enabled, 0);
    CU_ASSERT_EQUAL(d.outlier.consecutive_5xx, 5);
    CU_ASSERT_DOUBLE_EQUAL(d.outlier.interval_s, 10, 0);
    CU_ASSERT_DOUBLE_EQUAL(d.outlier.base_ejection_time_s, 30, 0);
    CU_ASSERT_DOUBLE_EQUAL(d.outlier.max_ejection_time_s, 300, 0);
    CU_ASSERT_EQUAL(d.outlier.max_ejection_percent, 10);
    CU_ASSERT_EQUAL(d.outlier.enforcing_consecutive_5xx, 100);
    CU_ASSERT_EQUAL(d.outlier.always_eject_one_host, 0);
    CU_ASSERT_EQUAL(d.outlier.healthy_panic_threshold, 50);
    lb_params p = od_params();
    CU_ASSERT_PTR_NULL(lb_params_invalid(&p));
    static const char *const msgs[] = {
        "outlier_detection.consecutive_5xx: expected an integer >= 1",
        "outlier_detection.interval: expected a duration > 0",
        "outlier_detection.base_ejection_time: expected a duration > 0",
        "outlier_detection.max_ejection_time: cannot be smaller than base_ejection_time",
        "outlier_detection.max_ejection_percent: expected an integer from 0 to 100",
        "outlier_detection.enforcing_consecutive_5xx: expected an integer from 0 to 100",
        "outlier_detection.healthy_panic_threshold: expected an integer from 0 to 100",
    };
    for (int k = 0; k < 7; k++) {
        p = od_params();
        switch (k) {
        case 0: p.outlier.consecutive_5xx = 0; break;
        case 1: p.outlier.interval_s = 0; break;
        case 2: p.outlier.base_ejection_time_s = NAN; break;
        case 3: p.outlier.max_ejection_time_s = 29.9; break;
        case 4: p.outlier.max_ejection_percent = 101; break;
        case 5: p.outlier.enforcing_consecutive_5xx = -1; break;
        case 6: p.outlier.healthy_panic_threshold = 101; break;
        }
        const char *m = lb_params_invalid(&p);
        CU_ASSERT_PTR_NOT_NULL(m);
        CU_ASSERT_STRING_EQUAL(m ? m : "", msgs[k]);
        CU_ASSERT_PTR_NULL(lb_create_with("round_robin", 3, NULL, &p));
        p.outlier.enabled = 0;                       /* off: not checked */
        CU_ASSERT_PTR_NULL(lb_params_invalid(&p));
    }
}

int main(void)
{
    const struct {
        const char *name;
        CU_TestFunc fn;
    } tests[] = {
        { "5 failures in a row eject, 4 do not", test_five_in_a_row_eject },
        { "a new replica in an ejected slot starts afresh", test_forget_new_replica },
        { "a success resets the count", test_success_resets_count },
        { "off by default", test_off_by_default },
        { "un-ejection resets the count", test_uneject_resets_count },
        { "ejection lasts 30, 60, 90 s and ends at a tick", test_duration_grows_and_ends_at_tick },
        { "ticks and float dust", test_tick_float_dust },
        { "backoff decays one step per healthy interval", test_backoff_decays_while_healthy },
        { "max_ejection_time caps, backoff one step above", test_max_ejection_time_caps },
        { "max_ejection_percent blocks the second of 10", test_max_percent_blocks_second },
        { "max_ejection_percent rounding, always_eject_one_host", test_max_percent_rounding },
        { "max_ejection_percent counts the servers up", test_max_percent_counts_servers_up },
        { "healthy_panic_threshold: panic mode uses every server", test_panic_threshold },
        { "panic mode counts a retry's hidden servers", test_panic_counts_hidden },
        { "enforcing_consecutive_5xx: 0 and 50", test_enforcing },
        { "every policy: an ejected server is not up", test_every_policy_hides_ejected },
        { "beside nginx max_fails", test_beside_max_fails },
        { "a 503 counts towards consecutive_5xx: the 5th ejects",
          test_503_counts_for_consecutive_5xx },
        { "a 503 is no failure to nginx max_fails by default", test_503_not_nginx_failure },
        { "parameters: defaults and checks", test_params },
    };
    if (CU_initialize_registry() != CUE_SUCCESS)
        return 1;
    CU_pSuite suite = CU_add_suite("outlier", NULL, NULL);
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
    int failed = CU_get_number_of_failures() != 0;
    CU_cleanup_registry();
    return failed;
}
