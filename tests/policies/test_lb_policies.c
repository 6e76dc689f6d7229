/*
 * test_lb_policies.c - each policy's choice rule and tie-breaking on
 * hand-built views: random_two_least_conn, p2c_least_request, jsq, hash
 * (plain, consistent, ip), least_time, peak_ewma, first.
 *
 * Randomised rules are checked where the outcome is forced (a rule that
 * must never pick a server), or against the exact probability of a tie
 * outcome with a binomial bound of 4 standard deviations derived from the
 * number of picks (a false alarm about once in 16,000 runs; the seeds are
 * fixed, so a run is reproducible). Hash outcomes were computed by an
 * independent implementation of nginx's formulas (Python zlib.crc32).
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

static lb_server_view srv(double weight, int active)
{
    return (lb_server_view){ .up = 1, .active = active, .weight = weight };
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

/* ---- random_two_least_conn ---- */

static void test_r2_never_the_most_loaded(void)
{
    lb_server_view s[] = { srv(1, 3), srv(1, 9), srv(1, 1), srv(1, 4) };
    lb_view v = { 4, s, 0.0 };
    gsl_rng *rng = seeded(1);
    lb *b = lb_create("random_two_least_conn", 4, rng);
    int hits[4] = { 0 };

    CU_ASSERT_PTR_NOT_NULL_FATAL(b);
    for (int k = 0; k < 6000; k++)
        hits[lb_pick(b, &v, &req0)]++;
    CU_ASSERT_EQUAL(hits[1], 0);   /* loses to whichever other server is drawn */
    /* server 2, the least loaded, wins whenever drawn: P = 1 - P(not drawn
     * in two distinct draws) = 1 - (3/4)(2/3) = 1/2; server 0 wins against
     * 1 and 3 only: P = 2 * (1/4)(1/3) * 2 = 1/3 */
    CU_ASSERT(binomial_ok(hits[2], 6000, 0.5));
    CU_ASSERT(binomial_ok(hits[0], 6000, 1.0 / 3.0));
    lb_destroy(b);
    gsl_rng_free(rng);
}

/* Equal load per weight: the second server drawn wins. With weights 3 and
 * 1, server 0 is chosen only when drawn second, i.e. when server 1 was drawn
 * first: probability 1/4. Per weight: 3 active on weight 3 ties 1 on 1. */
static void test_r2_ties_to_the_second(void)
{
    lb_server_view s[] = { srv(3, 3), srv(1, 1) };
    lb_view v = { 2, s, 0.0 };
    gsl_rng *rng = seeded(2);
    lb *b = lb_create("random_two_least_conn", 2, rng);
    int hits0 = 0;

    CU_ASSERT_PTR_NOT_NULL_FATAL(b);
    for (int k = 0; k < 8000; k++)
        hits0 += lb_pick(b, &v, &req0) == 0;
    CU_ASSERT(binomial_ok(hits0, 8000, 0.25));
    /* compared per weight: 4 on weight 3 is less than 2 on weight 1 */
    s[0].active = 4;
    s[1].active = 2;
    for (int k = 0; k < 100; k++)
        CU_ASSERT_EQUAL(lb_pick(b, &v, &req0), 0);
    lb_destroy(b);
    gsl_rng_free(rng);
}

/* Fewer than two usable servers: nginx's 20 draws fail and it falls back to
 * round robin, which still finds the one that is left. */
static void test_r2_fallback(void)
{
    lb_server_view s[] = { srv(1, 0), srv(1, 0), srv(1, 0) };
    lb_view v = { 3, s, 0.0 };
    gsl_rng *rng = seeded(3);
    lb *b = lb_create("random_two_least_conn", 3, rng);

    CU_ASSERT_PTR_NOT_NULL_FATAL(b);
    s[0].up = 0;
    s[2].max_conns = 1;
    s[2].active = 1;
    for (int k = 0; k < 50; k++)
        CU_ASSERT_EQUAL(lb_pick(b, &v, &req0), 1);
    s[1].up = 0;
    CU_ASSERT_EQUAL(lb_pick(b, &v, &req0), LB_BUSY);
    lb_destroy(b);
    gsl_rng_free(rng);
}

/* ---- p2c_least_request ---- */

static void test_p2c_choice_count(void)
{
    lb_server_view s[] = { srv(1, 5), srv(1, 2), srv(1, 7) };
    lb_view v = { 3, s, 0.0 };
    gsl_rng *rng = seeded(4);
    lb_params p = lb_params_default();
    lb *b2, *b50;
    int loaded = 0, ties_first = 0;

    b2 = lb_create_with("p2c_least_request", 3, rng, &p);
    p.choice_count = 50;   /* misses server 1 in all 50 draws: (2/3)^50 = 2e-9 */
    b50 = lb_create_with("p2c_least_request", 3, rng, &p);
    CU_ASSERT_PTR_NOT_NULL_FATAL(b2);
    CU_ASSERT_PTR_NOT_NULL_FATAL(b50);
    for (int k = 0; k < 1000; k++)
        CU_ASSERT_EQUAL(lb_pick(b50, &v, &req0), 1);
    /* two draws with replacement: server 2 only if both draws are 2 */
    for (int k = 0; k < 9000; k++)
        loaded += lb_pick(b2, &v, &req0) == 2;
    CU_ASSERT(binomial_ok(loaded, 9000, 1.0 / 9.0));
    /* ties keep the first draw, so all tied servers are equally likely */
    s[0].active = s[1].active = s[2].active = 1;
    for (int k = 0; k < 9000; k++)
        ties_first += lb_pick(b2, &v, &req0) == 0;
    CU_ASSERT(binomial_ok(ties_first, 9000, 1.0 / 3.0));
    lb_destroy(b2);
    lb_destroy(b50);
    gsl_rng_free(rng);
}

/* Unequal weights: EDF on weight / (active + 1)^bias. bias 0 is weighted
 * round robin: weights 2, 1 give deadlines a 0.5 b 1 -> a; a 1 b 1 -> a
 * (lower index); a 1.5 b 1 -> b; a 1.5 b 2 -> a; a 2 b 2 -> a; ... */
static void test_p2c_weighted_edf(void)
{
    lb_server_view s[] = { srv(2, 0), srv(1, 0) };
    lb_view v = { 2, s, 0.0 };
    gsl_rng *rng = seeded(5);
    lb_params p = lb_params_default();
    lb *b;
    const int want[] = { 0, 0, 1, 0, 0, 1, 0, 0, 1 };
    int hits0 = 0;

    p.active_request_bias = 0.0;
    b = lb_create_with("p2c_least_request", 2, rng, &p);
    CU_ASSERT_PTR_NOT_NULL_FATAL(b);
    for (int k = 0; k < N_OF(want); k++)
        CU_ASSERT_EQUAL(lb_pick(b, &v, &req0), want[k]);
    lb_destroy(b);
    /* bias 1 and a busy heavy server: its weight 2 / (3 + 1) = 0.5 against
     * 1 / 1: the light one gets two picks for each of the heavy one's */
    p.active_request_bias = 1.0;
    b = lb_create_with("p2c_least_request", 2, rng, &p);
    s[0].active = 3;
    for (int k = 0; k < 300; k++)
        hits0 += lb_pick(b, &v, &req0) == 0;
    CU_ASSERT(hits0 >= 99 && hits0 <= 101);
    lb_destroy(b);
    gsl_rng_free(rng);
}

/* ---- jsq ---- */

static void test_jsq(void)
{
    lb_server_view s[] = { srv(1, 2), srv(9, 1), srv(1, 1), srv(1, 3), srv(1, 1) };
    lb_view v = { 5, s, 0.0 };
    gsl_rng *rng = seeded(6);
    lb *b = lb_create("jsq", 5, rng);
    int hits[5] = { 0 };

    CU_ASSERT_PTR_NOT_NULL_FATAL(b);
    for (int k = 0; k < 9000; k++)
        hits[lb_pick(b, &v, &req0)]++;
    CU_ASSERT_EQUAL(hits[0] + hits[3], 0);   /* never a longer queue */
    for (int i = 1; i <= 4; i += i == 2 ? 2 : 1)   /* 1, 2, 4: weights ignored */
        CU_ASSERT(binomial_ok(hits[i], 9000, 1.0 / 3.0));
    s[2].active = 0;
    for (int k = 0; k < 100; k++)
        CU_ASSERT_EQUAL(lb_pick(b, &v, &req0), 2);
    lb_destroy(b);
    gsl_rng_free(rng);
}

/* ---- hash ---- */

static int pick_key(lb *b, lb_view *v, unsigned long key)
{
    lb_request r = { .id = key, .key = key };
    return lb_pick(b, v, &r);
}

static void test_hash_plain_matches_nginx_formula(void)
{
    lb_server_view s[] = { srv(1, 0), srv(1, 0), srv(1, 0) };
    lb_view v = { 3, s, 0.0 };
    lb_params p = lb_params_default();
    lb *b;
    const unsigned long keys[] = { 0, 1, 42, 1000, 123456789 };
    const int w111[] = { 2, 1, 2, 1, 1 }, w211[] = { 2, 0, 0, 2, 0 };
    const unsigned long on0[] = { 4, 6, 7, 10 };
    const int rehashed[] = { 2, 2, 1, 1 };

    p.hash_mode = LB_HASH_PLAIN;
    b = lb_create_with("hash", 3, NULL, &p);
    CU_ASSERT_PTR_NOT_NULL_FATAL(b);
    for (int i = 0; i < N_OF(keys); i++)
        CU_ASSERT_EQUAL(pick_key(b, &v, keys[i]), w111[i]);
    for (int i = 0; i < N_OF(on0); i++)
        CU_ASSERT_EQUAL(pick_key(b, &v, on0[i]), 0);
    s[0].up = 0;   /* rehash with the try number in front of the key */
    for (int i = 0; i < N_OF(on0); i++)
        CU_ASSERT_EQUAL(pick_key(b, &v, on0[i]), rehashed[i]);
    s[0].up = 1;
    s[0].weight = 2;
    for (int i = 0; i < N_OF(keys); i++)
        CU_ASSERT_EQUAL(pick_key(b, &v, keys[i]), w211[i]);
    lb_destroy(b);
}

static void test_hash_consistent_matches_ketama(void)
{
    lb_server_view s[] = { srv(1, 0), srv(1, 0), srv(1, 0) };
    lb_view v = { 3, s, 0.0 };
    lb *b = lb_create("hash", 3, NULL);   /* consistent by default */
    const unsigned long keys[] = { 0, 1, 42, 1000, 123456789 };
    const int by_index[] = { 0, 1, 2, 1, 2 };       /* names "0", "1", "2" */
    const int by_addr[] = { 0, 1, 1, 0, 0 };        /* "10.0.0.N:8000" */
    const int addr_1_down[] = { 0, 2, 2, 0, 0 };
    const int addr_w321[] = { 0, 1, 1, 0, 0 };

    CU_ASSERT_PTR_NOT_NULL_FATAL(b);
    for (int i = 0; i < N_OF(keys); i++)
        CU_ASSERT_EQUAL(pick_key(b, &v, keys[i]), by_index[i]);
    s[0].name = "10.0.0.1:8000";
    s[1].name = "10.0.0.2:8000";
    s[2].name = "10.0.0.3:8000";
    for (int i = 0; i < N_OF(keys); i++)
        CU_ASSERT_EQUAL(pick_key(b, &v, keys[i]), by_addr[i]);
    s[1].down = 1;
    for (int i = 0; i < N_OF(keys); i++)
        CU_ASSERT_EQUAL(pick_key(b, &v, keys[i]), addr_1_down[i]);
    s[1].down = 0;
    s[0].weight = 3;
    s[1].weight = 2;
    for (int i = 0; i < N_OF(keys); i++)
        CU_ASSERT_EQUAL(pick_key(b, &v, keys[i]), addr_w321[i]);
    lb_destroy(b);
}

/* Adding an 11th server to 10 moves the keys that land on its arcs, a
 * fraction 1/11 of the ring in expectation, and moves them only to it.
 * With 160 points per server the new server's share of the ring has a
 * relative standard deviation near 1/sqrt(160) = 8%; 40% (5 of those) plus
 * the sampling error of 20,000 keys (binomial, 2% relative) is the bound. */
static void test_hash_consistency_on_growth(void)
{
    enum { KEYS = 20000 };
    static char names[11][16];
    lb_server_view s[11];
    lb_view v10 = { 10, s, 0.0 }, v11 = { 11, s, 0.0 };
    lb *b = lb_create("hash", 10, NULL);
    int moved = 0, moved_elsewhere = 0, down_moved_wrong = 0;

    CU_ASSERT_PTR_NOT_NULL_FATAL(b);
    for (int i = 0; i < 11; i++) {
        snprintf(names[i], sizeof names[i], "10.0.1.%d:80", i + 1);
        s[i] = srv(1, 0);
        s[i].name = names[i];
    }
    /* one view at a time: the ring is rebuilt when the servers change */
    static int before[KEYS];
    for (unsigned long k = 0; k < KEYS; k++)
        before[k] = pick_key(b, &v10, k * 2654435761UL);
    for (unsigned long k = 0; k < KEYS; k++)
        CU_ASSERT_EQUAL(pick_key(b, &v10, k * 2654435761UL), before[k]);
    s[3].up = 0;   /* a server down moves its own keys only */
    for (unsigned long k = 0; k < KEYS; k++) {
        int now = pick_key(b, &v10, k * 2654435761UL);
        down_moved_wrong += before[k] != 3 && now != before[k];
        CU_ASSERT(now != 3);
    }
    s[3].up = 1;
    for (unsigned long k = 0; k < KEYS; k++) {
        int after = pick_key(b, &v11, k * 2654435761UL);
        if (after != before[k]) {
            moved++;
            moved_elsewhere += after != 10;
        }
    }
    printf("\n    keys moved by an 11th server: %.2f%% (1/11 = 9.09%%)", 100.0 * moved / KEYS);
    CU_ASSERT_EQUAL(moved_elsewhere, 0);
    CU_ASSERT_EQUAL(down_moved_wrong, 0);
    CU_ASSERT(fabs(moved - KEYS / 11.0) <= 0.42 * KEYS / 11.0);
    lb_destroy(b);
}

static void test_ip_hash(void)
{
    lb_server_view s[] = { srv(1, 0), srv(1, 0), srv(1, 0) };
    lb_view v = { 3, s, 0.0 };
    lb_params p = lb_params_default();
    lb *b;
    /* 10.0.0.1, 192.168.1.7, 8.8.8.8, 172.16.5.4 */
    const unsigned long ips[] = { 167772161UL, 3232235783UL, 134744072UL, 2886731012UL };
    const int want[] = { 0, 1, 2, 1 };

    p.hash_mode = LB_HASH_IP;
    b = lb_create_with("hash", 3, NULL, &p);
    CU_ASSERT_PTR_NOT_NULL_FATAL(b);
    for (int i = 0; i < N_OF(ips); i++)
        CU_ASSERT_EQUAL(pick_key(b, &v, ips[i]), want[i]);
    /* the last octet does not count */
    CU_ASSERT_EQUAL(pick_key(b, &v, ips[1] + 100), want[1]);
    lb_destroy(b);
}

/* ---- least_time ---- */

static void done_at(lb *b, lb_view *v, int server, double t, double latency, lb_result r)
{
    v->now_s = t;
    lb_on_done(b, v, server, latency, r);
}

static void test_least_time(void)
{
    lb_server_view s[] = { srv(1, 0), srv(1, 0), srv(1, 0) };
    lb_view v = { 3, s, 0.0 };
    lb *b = lb_create("least_time", 3, NULL);

    CU_ASSERT_PTR_NOT_NULL_FATAL(b);
    for (int i = 0; i < 3; i++)
        s[i].fail_timeout_s = 10;
    /* no data: all at 20 ms, a round-robin tie */
    {
        const int want[] = { 0, 1, 2, 0 };
        for (int k = 0; k < N_OF(want); k++)
            CU_ASSERT_EQUAL(lb_pick(b, &v, &req0), want[k]);
    }
    /* averages 100, 300, 50 ms (first response sets it) */
    done_at(b, &v, 0, 0.1, 0.100, LB_OK);
    done_at(b, &v, 1, 0.1, 0.300, LB_OK);
    done_at(b, &v, 2, 0.1, 0.050, LB_OK);
    v.now_s = 0.2;
    CU_ASSERT_EQUAL(lb_pick(b, &v, &req0), 2);   /* 60 x 1 */
    s[2].active = 2;                            /* 60 x 3 = 180 > 120 x 1 */
    CU_ASSERT_EQUAL(lb_pick(b, &v, &req0), 0);
    /* a failure does not feed the average; a success blends 5% */
    done_at(b, &v, 0, 0.3, 5.0, LB_ERROR);
    done_at(b, &v, 0, 0.3, 0.300, LB_OK);           /* round(0.05*300 + 0.95*100) = 110 -> 120 */
    s[2].active = 1;                            /* 60 x 2 = 120: ties with 0 */
    {
        int seen0 = 0, seen2 = 0;
        v.now_s = 0.4;
        for (int k = 0; k < 6; k++) {
            int got = lb_pick(b, &v, &req0);
            seen0 |= got == 0;
            seen2 |= got == 2;
            CU_ASSERT(got == 0 || got == 2);
        }
        CU_ASSERT(seen0 && seen2);
    }
    /* weight counts: eta 120 on weight 1 against 100-ms server 1... */
    s[1].weight = 3;                            /* 320 / 3 = 107 < 120 */
    CU_ASSERT_EQUAL(lb_pick(b, &v, &req0), 1);
    lb_destroy(b);
}

/* nginx frees a 5xx it passes on to the client with state 0, so least_time
 * averages its response time ("only successful attempts are accounted"
 * leaves out NGX_PEER_FAILED only): after both servers answered in 100 ms,
 * a 1-ms 503 from server 1 makes its average round(0.05 + 95) = 95 ms,
 * eta 100 against server 0's 120, and server 1 takes every pick. The same
 * 1-ms answer as a failure (LB_ERROR) leaves it at 100: a tie, shared. */
static void test_least_time_5xx_counts(void)
{
    for (int k = 0; k < 2; k++) {
        lb_server_view s[] = { srv(1, 0), srv(1, 0) };
        lb_view v = { 2, s, 0.0 };
        lb *b = lb_create("least_time", 2, NULL);
        CU_ASSERT_PTR_NOT_NULL_FATAL(b);
        s[0].fail_timeout_s = s[1].fail_timeout_s = 10;
        CU_ASSERT_EQUAL(lb_pick(b, &v, &req0), 0);
        CU_ASSERT_EQUAL(lb_pick(b, &v, &req0), 1);
        done_at(b, &v, 0, 0.1, 0.100, LB_OK);
        done_at(b, &v, 1, 0.1, 0.100, LB_OK);
        done_at(b, &v, 1, 0.2, 0.001, k == 0 ? LB_HTTP_5XX : LB_ERROR);
        int to1 = 0;
        v.now_s = 0.3;
        for (int i = 0; i < 4; i++)
            to1 += lb_pick(b, &v, &req0) == 1;
        CU_ASSERT_EQUAL(to1, k == 0 ? 4 : 2);
        lb_destroy(b);
    }
}

/* An idle server's average halves once per fail_timeout + 1 seconds since
 * it was last picked (or failed): server 0 at 4000 ms is never picked while
 * server 1 at 300 ms is, each time fail_timeout has passed, so server 1
 * stays at 300 >> 1 = 150 -> 160 while server 0 drops to 4000 >> k. */
static void test_least_time_decay(void)
{
    lb_server_view s[] = { srv(1, 0), srv(1, 0) };
    lb_view v = { 2, s, 0.0 };
    lb *b = lb_create("least_time", 2, NULL);
    const double t[] = { 0.5, 11, 22, 33, 44 };

    CU_ASSERT_PTR_NOT_NULL_FATAL(b);
    s[0].fail_timeout_s = s[1].fail_timeout_s = 10;
    CU_ASSERT_EQUAL(lb_pick(b, &v, &req0), 0);   /* no data: a tie, both picked at 0 */
    CU_ASSERT_EQUAL(lb_pick(b, &v, &req0), 1);
    done_at(b, &v, 0, 0.0, 4.000, LB_OK);
    done_at(b, &v, 1, 0.0, 0.300, LB_OK);
    /* 0: 4020, 2020, 1020, 520, 260 against 1: 320, 160, 160, 160, 160 */
    for (int k = 0; k < N_OF(t); k++) {
        v.now_s = t[k];
        CU_ASSERT_EQUAL(lb_pick(b, &v, &req0), 1);
    }
    v.now_s = 55;   /* 4000 >> 5 = 125 -> 140 < 160 */
    CU_ASSERT_EQUAL(lb_pick(b, &v, &req0), 0);
    lb_destroy(b);
}

/* ---- peak_ewma ---- */

static void test_peak_ewma(void)
{
    lb_server_view s[] = { srv(1, 0), srv(1, 0) };
    lb_view v = { 2, s, 0.0 };
    gsl_rng *rng = seeded(7);
    lb_params p = lb_params_default();
    lb *b;

    p.decay_s = 10.0;
    p.default_rtt_s = 0.030;
    b = lb_create_with("peak_ewma", 2, rng, &p);
    CU_ASSERT_PTR_NOT_NULL_FATAL(b);
    /* a peak is taken at once: server 0 answers in 1 s */
    done_at(b, &v, 0, 1.0, 1.0, LB_OK);
    done_at(b, &v, 1, 1.0, 0.2, LB_OK);     /* 0.2 > 0.03: also a peak */
    v.now_s = 1.0;
    for (int k = 0; k < 20; k++)        /* two servers: both always drawn */
        CU_ASSERT_EQUAL(lb_pick(b, &v, &req0), 1);
    /* pending requests weigh: 0.2 x (5 + 1) = 1.2 > 1.0 x 1 */
    s[1].active = 5;
    CU_ASSERT_EQUAL(lb_pick(b, &v, &req0), 0);
    /* a fast answer blends in: 1.0 e^-0 ... at t = 1 no time has passed,
     * w = 1, the estimate stays 1.0; 20 s later w = e^-2 */
    s[1].active = 0;
    done_at(b, &v, 0, 21.0, 0.010, LB_OK);  /* 1.0 e^-2 + 0.01 (1 - e^-2) = 0.144 */
    v.now_s = 21.0;                     /* server 1 decays: 0.2 e^-2 = 0.027 */
    CU_ASSERT_EQUAL(lb_pick(b, &v, &req0), 1);
    s[1].active = 5;                    /* 0.027 x 6 = 0.162 > 0.144 */
    CU_ASSERT_EQUAL(lb_pick(b, &v, &req0), 0);
    lb_destroy(b);
    gsl_rng_free(rng);
}

/* ---- first ---- */

static void test_first(void)
{
    lb_server_view s[] = { srv(1, 0), srv(5, 0), srv(1, 0) };
    lb_view v = { 3, s, 0.0 };
    lb *b = lb_create("first", 3, NULL);

    CU_ASSERT_PTR_NOT_NULL_FATAL(b);
    for (int i = 0; i < 3; i++)
        s[i].max_conns = 2;
    for (int k = 0; k < 6; k++) {
        int got = lb_pick(b, &v, &req0);
        CU_ASSERT_EQUAL(got, k / 2);    /* fills 0, then 1, then 2 */
        s[got].active++;
    }
    CU_ASSERT_EQUAL(lb_pick(b, &v, &req0), LB_BUSY);
    s[0].active = 1;
    CU_ASSERT_EQUAL(lb_pick(b, &v, &req0), 0);
    lb_destroy(b);
}

int main(void)
{
    const struct {
        const char *name;
        CU_TestFunc fn;
    } tests[] = {
        { "random_two_least_conn: never the most loaded", test_r2_never_the_most_loaded },
        { "random_two_least_conn: ties to the second", test_r2_ties_to_the_second },
        { "random_two_least_conn: round-robin fallback", test_r2_fallback },
        { "p2c_least_request: choice_count", test_p2c_choice_count },
        { "p2c_least_request: weighted EDF", test_p2c_weighted_edf },
        { "jsq: full scan, random ties", test_jsq },
        { "hash: plain = nginx formula", test_hash_plain_matches_nginx_formula },
        { "hash: consistent = ketama", test_hash_consistent_matches_ketama },
        { "hash: consistency on growth", test_hash_consistency_on_growth },
        { "hash: ip_hash", test_ip_hash },
        { "least_time: eta and ties", test_least_time },
        { "least_time: idle decay", test_least_time_decay },
        { "least_time: a 5xx passed on feeds the average", test_least_time_5xx_counts },
        { "peak_ewma: peak, pending, decay", test_peak_ewma },
        { "first: fills in order", test_first },
    };
    CU_pSuite suite;
    int failed;

    if (CU_initialize_registry() != CUE_SUCCESS)
        return 1;
    suite = CU_add_suite("lb_policies", NULL, NULL);
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
