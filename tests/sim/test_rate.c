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

int main(void)
{
    if (CU_initialize_registry() != CUE_SUCCESS)
        return 1;
    CU_pSuite s = CU_add_suite("rate", NULL, NULL);
    CU_add_test(s, "rate and integral", test_rate_values);
    CU_add_test(s, "inverse", test_rate_inverse);
    CU_add_test(s, "time-rescaled Poisson counts", test_time_rescaled_poisson);
    CU_basic_set_mode(CU_BRM_VERBOSE);
    CU_basic_run_tests();
    unsigned fails = CU_get_number_of_failures();
    CU_cleanup_registry();
    return fails != 0;
}
