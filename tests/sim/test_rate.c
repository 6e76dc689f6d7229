/*
 * test_rate.c - piecewise-linear rate profiles: rate, integral and inverse,
 * checked against hand-computed values; and the arrivals they drive, checked
 * as a Poisson process (counts per window against their exact means).
 */
#include "engine.h"

#include <CUnit/Basic.h>
#include <gsl/gsl_randist.h>
#include <gsl/gsl_rng.h>

#include <math.h>

/* 0 until 10 s; 10..20 s ramps 0 -> 100; holds 100; from 50 s ramps to 20
 * over 40 s but is cut at 60 s (at 80 QPS) by a step to 5. */
static const sc_rate_point PTS[] = {
    { 10, 100, 10 },
    { 50, 20, 40 },
    { 60, 5, 0 },
};

static void test_rate_values(void)
{
    sim_rate *r = sim_rate_new(PTS, 3);
    CU_ASSERT_DOUBLE_EQUAL(sim_rate_at(r, 5), 0, 1e-12);
    CU_ASSERT_DOUBLE_EQUAL(sim_rate_at(r, 15), 50, 1e-12);
    CU_ASSERT_DOUBLE_EQUAL(sim_rate_at(r, 30), 100, 1e-12);
    CU_ASSERT_DOUBLE_EQUAL(sim_rate_at(r, 55), 90, 1e-12);
    CU_ASSERT_DOUBLE_EQUAL(sim_rate_at(r, 60), 5, 1e-12);
    CU_ASSERT_DOUBLE_EQUAL(sim_rate_at(r, 1e6), 5, 1e-12);
    /* integrals: ramp 0->100 over 10 s = 500; hold 30 s = 3000; 100->80 over 10 s = 900 */
    CU_ASSERT_DOUBLE_EQUAL(sim_rate_cumulative(r, 10), 0, 1e-9);
    CU_ASSERT_DOUBLE_EQUAL(sim_rate_cumulative(r, 20), 500, 1e-9);
    CU_ASSERT_DOUBLE_EQUAL(sim_rate_cumulative(r, 50), 3500, 1e-9);
    CU_ASSERT_DOUBLE_EQUAL(sim_rate_cumulative(r, 60), 4400, 1e-9);
    CU_ASSERT_DOUBLE_EQUAL(sim_rate_cumulative(r, 100), 4600, 1e-9);
    sim_rate_free(r);
}

static void test_rate_inverse(void)
{
    sim_rate *r = sim_rate_new(PTS, 3);
    /* inside the first ramp: 5 t^2 = 125 -> t = 5 s after 10 s */
    CU_ASSERT_DOUBLE_EQUAL(sim_rate_inverse(r, 125), 15, 1e-9);
    for (double t = 10.5; t < 200; t += 3.7)
        CU_ASSERT_DOUBLE_EQUAL(sim_rate_inverse(r, sim_rate_cumulative(r, t)), t, 1e-7);
    sim_rate_free(r);
    /* a profile that drops to zero is never reached beyond its total */
    sc_rate_point stop[] = { { 0, 10, 0 }, { 100, 0, 0 } };
    r = sim_rate_new(stop, 2);
    CU_ASSERT_DOUBLE_EQUAL(sim_rate_inverse(r, 999), 99.9, 1e-9);
    CU_ASSERT(isinf(sim_rate_inverse(r, 1001)));
    sim_rate_free(r);
    /* no points at all: rate 0 everywhere */
    r = sim_rate_new(NULL, 0);
    CU_ASSERT_DOUBLE_EQUAL(sim_rate_at(r, 3), 0, 0);
    CU_ASSERT(isinf(sim_rate_inverse(r, 1)));
    sim_rate_free(r);
}

/* Unit exponential steps through the inverse give a Poisson process: the
 * count in each window is Poisson with mean Lambda(b) - Lambda(a). Over many
 * replications the chi-square of (count - mean)^2 / mean over windows must
 * stay below its 99.9% quantile. */
static void test_time_rescaled_poisson(void)
{
    sim_rate *r = sim_rate_new(PTS, 3);
    const double edges[] = { 10, 15, 20, 35, 50, 55, 60, 80 };
    const int nw = 7, reps = 400;
    double count[7] = { 0 };
    gsl_rng *g = gsl_rng_alloc(gsl_rng_mt19937);
    gsl_rng_set(g, 12345);
    for (int k = 0; k < reps; k++) {
        double op = 0;
        for (;;) {
            op += gsl_ran_exponential(g, 1.0);
            double t = sim_rate_inverse(r, op);
            if (t >= 80)
                break;
            for (int w = 0; w < nw; w++)
                if (t >= edges[w] && t < edges[w + 1])
                    count[w] += 1;
        }
    }
    double chi2 = 0;
    for (int w = 0; w < nw; w++) {
        double mean = reps * (sim_rate_cumulative(r, edges[w + 1]) - sim_rate_cumulative(r, edges[w]));
        chi2 += (count[w] - mean) * (count[w] - mean) / mean;
    }
    /* chi-square with 7 degrees of freedom: 99.9% quantile 24.32 */
    CU_ASSERT(chi2 < 24.32);
    gsl_rng_free(g);
    sim_rate_free(r);
}

/* A repeating profile is the profile cut at its period, replayed: PTS cut
 * at 100 s holds 5 QPS from 60 s, so one period integrates to 4600 and
 * the rate at 1015 s is the rate at 15 s. */
static void test_repeating(void)
{
    sim_rate *r = sim_rate_new_repeating(PTS, 3, 100);
    CU_ASSERT_DOUBLE_EQUAL(sim_rate_period(r), 100, 0);
    CU_ASSERT_DOUBLE_EQUAL(sim_rate_at(r, 15), 50, 1e-12);
    CU_ASSERT_DOUBLE_EQUAL(sim_rate_at(r, 1015), 50, 1e-9);
    CU_ASSERT_DOUBLE_EQUAL(sim_rate_at(r, 1005), 0, 1e-12);  /* 0 before the first point again */
    CU_ASSERT_DOUBLE_EQUAL(sim_rate_at(r, 1099), 5, 1e-12);
    CU_ASSERT_DOUBLE_EQUAL(sim_rate_cumulative(r, 100), 4600, 1e-9);
    CU_ASSERT_DOUBLE_EQUAL(sim_rate_cumulative(r, 1000), 46000, 1e-7);
    CU_ASSERT_DOUBLE_EQUAL(sim_rate_cumulative(r, 1020), 46500, 1e-7);
    CU_ASSERT_DOUBLE_EQUAL(sim_rate_cumulative(r, 30 * 100 + 50), 30 * 4600 + 3500, 1e-6);
    for (double t = 10.5; t < 3000; t += 37.3)
        if (fmod(t, 100) > 10) /* the rate is 0 on [0, 10) of each period: no inverse there */
            CU_ASSERT_DOUBLE_EQUAL(sim_rate_inverse(r, sim_rate_cumulative(r, t)), t, 1e-7);
    /* a target at a period's exact total is reached at its last nonzero instant */
    CU_ASSERT(sim_rate_inverse(r, 2 * 4600) <= 200 + 1e-9);
    CU_ASSERT(sim_rate_inverse(r, 2 * 4600) > 199);
    sim_rate_free(r);

    /* period 0 is the plain profile, value for value */
    sim_rate *a = sim_rate_new(PTS, 3), *b = sim_rate_new_repeating(PTS, 3, 0);
    CU_ASSERT_DOUBLE_EQUAL(sim_rate_period(b), 0, 0);
    for (double t = 0; t < 300; t += 1.7) {
        CU_ASSERT_EQUAL(sim_rate_at(a, t), sim_rate_at(b, t));
        CU_ASSERT_EQUAL(sim_rate_cumulative(a, t), sim_rate_cumulative(b, t));
        CU_ASSERT_EQUAL(sim_rate_inverse(a, 30 * t), sim_rate_inverse(b, 30 * t));
    }
    sim_rate_free(a);
    sim_rate_free(b);
}

/* A flash crowd on a repeating profile scales its window only; one that
 * never ends scales every later period. */
static void test_repeating_scaled(void)
{
    sim_rate *r = sim_rate_new_repeating(PTS, 3, 100);
    sim_rate_scale(r, 225, 245, 3); /* in the third period's hold at 100 QPS */
    CU_ASSERT_DOUBLE_EQUAL(sim_rate_at(r, 240), 300, 1e-9);
    CU_ASSERT_DOUBLE_EQUAL(sim_rate_at(r, 248), 100, 1e-9);
    CU_ASSERT_DOUBLE_EQUAL(sim_rate_at(r, 340), 100, 1e-9);
    CU_ASSERT_DOUBLE_EQUAL(sim_rate_cumulative(r, 1000), 46000 + 2 * 2000, 1e-6);
    sim_rate_scale(r, 520, INFINITY, 2);
    CU_ASSERT_DOUBLE_EQUAL(sim_rate_at(r, 515), 50, 1e-9);
    CU_ASSERT_DOUBLE_EQUAL(sim_rate_at(r, 525), 200, 1e-9);
    CU_ASSERT_DOUBLE_EQUAL(sim_rate_at(r, 9030), 200, 1e-9);
    /* to 500: 5 periods + 4000; 500..520 as before (500); after: doubled,
     * the rest of that period and 4 more */
    double at_1000 = 5 * 4600 + 4000 + 500 + 2 * (4600 - 500) + 4 * 2 * 4600;
    CU_ASSERT_DOUBLE_EQUAL(sim_rate_cumulative(r, 1000), at_1000, 1e-6);
    CU_ASSERT_DOUBLE_EQUAL(sim_rate_cumulative(r, 2000), at_1000 + 10 * 2 * 4600, 1e-6);
    for (double t = 10.5; t < 3000; t += 37.3)
        if (fmod(t, 100) > 10) /* the rate is 0 on [0, 10) of each period: no inverse there */
            CU_ASSERT_DOUBLE_EQUAL(sim_rate_inverse(r, sim_rate_cumulative(r, t)), t, 1e-7);
    sim_rate_free(r);
}

int main(void)
{
    if (CU_initialize_registry() != CUE_SUCCESS)
        return 1;
    CU_pSuite s = CU_add_suite("rate", NULL, NULL);
    CU_add_test(s, "rate and integral", test_rate_values);
    CU_add_test(s, "inverse", test_rate_inverse);
    CU_add_test(s, "time-rescaled Poisson counts", test_time_rescaled_poisson);
    CU_add_test(s, "repeating profile", test_repeating);
    CU_add_test(s, "repeating profile under a flash crowd", test_repeating_scaled);
    CU_basic_set_mode(CU_BRM_VERBOSE);
    CU_basic_run_tests();
    unsigned fails = CU_get_number_of_failures();
    CU_cleanup_registry();
    return fails != 0;
}
