/*
 * test_hist.c - the latency histogram against exact sample statistics.
 *
 * Quantiles of 100,000 exponential and lognormal samples must be within
 * rel_err of the exact sample quantiles (gsl_stats_quantile_from_sorted_data);
 * count, mean, min and max are exact; merging equals adding everything to one
 * histogram; the number of bins follows from min, max and rel_err alone.
 */
#include "hist.h"

#include <CUnit/Basic.h>
#include <CUnit/CUnit.h>
#include <gsl/gsl_randist.h>
#include <gsl/gsl_rng.h>
#include <gsl/gsl_sort.h>
#include <gsl/gsl_statistics_double.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

enum { N_SAMPLES = 100000 };
static const double REL_ERR = 0.01;
static const double LO = 1e-4, HI = 1e3;   /* seconds: 100 us to 17 min */

static size_t bins_formula(double min, double max, double rel_err)
{
    return (size_t)ceil(log(max / min) / log1p(2.0 * rel_err));
}

static double rel_diff(double got, double want)
{
    return fabs(got - want) / fabs(want);
}

/* Fills x with n samples; dist 0 = exponential, mean 100 ms; 1 = lognormal,
 * median 200 ms, sigma 1 (heavy tail). */
static void draw(double *x, size_t n, int dist, unsigned long seed)
{
    gsl_rng *rng = gsl_rng_alloc(gsl_rng_mt19937);

    gsl_rng_set(rng, seed);
    for (size_t i = 0; i < n; i++)
        x[i] = dist == 0 ? gsl_ran_exponential(rng, 0.1)
                         : gsl_ran_lognormal(rng, log(0.2), 1.0);
    gsl_rng_free(rng);
}

static void check_against_samples(int dist, const char *label)
{
    double *x = malloc(N_SAMPLES * sizeof *x);
    sim_hist *h = sim_hist_new(LO, HI, REL_ERR);
    const double qs[] = { 0.5, 0.9, 0.99, 0.999 };
    size_t bins;

    CU_ASSERT_PTR_NOT_NULL_FATAL(x);
    CU_ASSERT_PTR_NOT_NULL_FATAL(h);
    bins = sim_hist_bins(h);
    draw(x, N_SAMPLES, dist, 20240601 + (unsigned long)dist);
    for (size_t i = 0; i < N_SAMPLES; i++)
        sim_hist_add(h, x[i]);
    /* Memory is the bins, fixed before the first sample. */
    CU_ASSERT_EQUAL(sim_hist_bins(h), bins);
    CU_ASSERT_EQUAL(bins, bins_formula(LO, HI, REL_ERR));

    CU_ASSERT_EQUAL(sim_hist_count(h), N_SAMPLES);
    /* The mean comes from the samples: equal up to summation order. */
    CU_ASSERT(rel_diff(sim_hist_mean(h), gsl_stats_mean(x, 1, N_SAMPLES)) < 1e-12);
    gsl_sort(x, 1, N_SAMPLES);
    CU_ASSERT_DOUBLE_EQUAL(sim_hist_min(h), x[0], 0.0);
    CU_ASSERT_DOUBLE_EQUAL(sim_hist_max(h), x[N_SAMPLES - 1], 0.0);
    CU_ASSERT_DOUBLE_EQUAL(sim_hist_quantile(h, 0.0), x[0], 0.0);
    CU_ASSERT_DOUBLE_EQUAL(sim_hist_quantile(h, 1.0), x[N_SAMPLES - 1], 0.0);

    for (size_t k = 0; k < sizeof qs / sizeof qs[0]; k++) {
        double want = gsl_stats_quantile_from_sorted_data(x, 1, N_SAMPLES, qs[k]);
        double got = sim_hist_quantile(h, qs[k]);
        double err = rel_diff(got, want);
        if (!(err <= REL_ERR))
            fprintf(stderr, "\n  %s q=%g: histogram %.6g, exact %.6g, rel err %.3g\n",
                    label, qs[k], got, want, err);
        CU_ASSERT(err <= REL_ERR);
    }
    sim_hist_free(h);
    free(x);
}

static void test_quantiles_exponential(void)
{
    check_against_samples(0, "exponential");
}

static void test_quantiles_lognormal(void)
{
    check_against_samples(1, "lognormal");
}

static void test_bins(void)
{
    const struct { double min, max, rel_err; } shapes[] = {
        { 1e-4, 1e3, 0.01 }, { 1e-6, 60.0, 0.001 }, { 0.5, 2.0, 0.1 }, { 1.0, 1.01, 0.01 },
    };

    for (size_t k = 0; k < sizeof shapes / sizeof shapes[0]; k++) {
        sim_hist *h = sim_hist_new(shapes[k].min, shapes[k].max, shapes[k].rel_err);
        double lo, hi, prev_hi = shapes[k].min;
        size_t n, c;

        CU_ASSERT_PTR_NOT_NULL_FATAL(h);
        n = sim_hist_bins(h);
        CU_ASSERT_EQUAL(n, bins_formula(shapes[k].min, shapes[k].max, shapes[k].rel_err));
        for (size_t i = 0; i < n; i++) {
            CU_ASSERT_EQUAL_FATAL(sim_hist_bin(h, i, &lo, &hi, &c), 0);
            CU_ASSERT_DOUBLE_EQUAL(lo, prev_hi, 0.0);   /* contiguous */
            /* Relative width <= 2 rel_err, so the geometric midpoint is
             * within rel_err of every value in the bin (up to rounding). */
            CU_ASSERT(hi / lo - 1.0 <= 2.0 * shapes[k].rel_err * (1.0 + 1e-9));
            CU_ASSERT(sqrt(hi / lo) - 1.0 <= shapes[k].rel_err * (1.0 + 1e-9));
            CU_ASSERT_EQUAL(c, 0);
            prev_hi = hi;
        }
        CU_ASSERT_DOUBLE_EQUAL(prev_hi, shapes[k].max, 0.0);
        CU_ASSERT_EQUAL(sim_hist_bin(h, n, &lo, &hi, &c), -1);
        sim_hist_free(h);
    }
}

/* The O(1) bin lookup lands where a binary search over the edges would,
 * including on the edges themselves ([lo, hi) bins). */
static void test_add_bin_index(void)
{
    sim_hist *h = sim_hist_new(1e-3, 10.0, 0.005);
    size_t n, bad = 0;

    CU_ASSERT_PTR_NOT_NULL_FATAL(h);
    n = sim_hist_bins(h);
    for (size_t i = 0; i < n; i++) {
        double lo, hi, x[3];

        sim_hist_bin(h, i, &lo, &hi, NULL);
        x[0] = lo;
        x[1] = sqrt(lo * hi);
        x[2] = nextafter(hi, 0.0);
        for (int p = 0; p < 3; p++) {
            size_t c;
            sim_hist_reset(h);
            sim_hist_add(h, x[p]);
            sim_hist_bin(h, i, NULL, NULL, &c);
            bad += c != 1;
        }
    }
    CU_ASSERT_EQUAL(bad, 0);
    sim_hist_free(h);
}

/* Values added one after another, near and far from the last one's bin
 * (the remembered bin is tried first), each land in the bin whose edges
 * hold it: edges, just below edges, and jumps, up and down. */
static void test_add_sequence_bins(void)
{
    sim_hist *h = sim_hist_new(1e-3, 10.0, 0.005);
    size_t n, bad = 0, total = 0;

    CU_ASSERT_PTR_NOT_NULL_FATAL(h);
    n = sim_hist_bins(h);
    /* bin i then bin n-1-i, each at its low edge and just below its high
     * edge: every step moves the value to another bin */
    for (size_t i = 0; i < n; i++) {
        size_t k[2] = { i, n - 1 - i };
        for (int side = 0; side < 2; side++)
            for (int e = 0; e < 2; e++) {
                double lo, hi, x;
                size_t before, after;
                sim_hist_bin(h, k[side], &lo, &hi, NULL);
                x = e == 0 ? lo : nextafter(hi, 0.0);
                sim_hist_bin(h, k[side], NULL, NULL, &before);
                sim_hist_add(h, x);
                sim_hist_bin(h, k[side], NULL, NULL, &after);
                bad += after != before + 1;
                total++;
            }
    }
    CU_ASSERT_EQUAL(bad, 0);
    CU_ASSERT_EQUAL(sim_hist_count(h), total);
    sim_hist_free(h);
}

/* sim_hist_add_n(h, x, n) is n calls of sim_hist_add(h, x): the same bins,
 * count, extremes, quantiles and, bit for bit, the same mean (the sum is
 * still added to n times in order). */
static void test_add_n(void)
{
    sim_hist *a = sim_hist_new(1e-4, 1e3, REL_ERR), *b = sim_hist_new(1e-4, 1e3, REL_ERR);
    /* values whose repeated sums round: 0.1 is not a binary fraction */
    const double xs[] = { 0.1, 0.1, 0.0123456789, 3.3, 0.1, 7e-5, 2e3 };
    const size_t ns[] = { 1, 7, 1000, 3, 0, 13, 2 };

    CU_ASSERT_PTR_NOT_NULL_FATAL(a);
    CU_ASSERT_PTR_NOT_NULL_FATAL(b);
    for (size_t i = 0; i < sizeof xs / sizeof xs[0]; i++) {
        sim_hist_add_n(a, xs[i], ns[i]);
        for (size_t k = 0; k < ns[i]; k++)
            sim_hist_add(b, xs[i]);
    }
    CU_ASSERT_EQUAL(sim_hist_count(a), 1 + 7 + 1000 + 3 + 13 + 2);
    CU_ASSERT_EQUAL(sim_hist_count(a), sim_hist_count(b));
    CU_ASSERT(sim_hist_mean(a) == sim_hist_mean(b));
    /* the inputs tell the orders apart: n x added one by one is not n * x
     * added once, so an add_n that multiplied would fail the mean above */
    double one_by_one = 0, multiplied = 0;
    for (size_t i = 0; i < sizeof xs / sizeof xs[0]; i++) {
        for (size_t k = 0; k < ns[i]; k++)
            one_by_one += xs[i];
        multiplied += (double)ns[i] * xs[i];
    }
    CU_ASSERT(one_by_one != multiplied);
    CU_ASSERT(sim_hist_mean(a) == one_by_one / (double)sim_hist_count(a));
    CU_ASSERT(sim_hist_min(a) == sim_hist_min(b));
    CU_ASSERT(sim_hist_max(a) == sim_hist_max(b));
    for (size_t i = 0; i < sim_hist_bins(a); i++) {
        size_t ca, cb;
        sim_hist_bin(a, i, NULL, NULL, &ca);
        sim_hist_bin(b, i, NULL, NULL, &cb);
        CU_ASSERT_EQUAL(ca, cb);
    }
    const double qs[] = { 0.01, 0.5, 0.9, 0.99, 0.999 };
    for (size_t i = 0; i < sizeof qs / sizeof qs[0]; i++)
        CU_ASSERT(sim_hist_quantile(a, qs[i]) == sim_hist_quantile(b, qs[i]));
    sim_hist_free(a);
    sim_hist_free(b);
}

static void test_out_of_range(void)
{
    sim_hist *h = sim_hist_new(1e-3, 1e2, REL_ERR);
    size_t c, n;

    CU_ASSERT_PTR_NOT_NULL_FATAL(h);
    n = sim_hist_bins(h);
    sim_hist_add(h, 1e-9);
    sim_hist_add(h, 0.0);
    sim_hist_add(h, 1e6);
    sim_hist_add(h, 1e2);   /* the top edge belongs to the last bin */
    CU_ASSERT_EQUAL(sim_hist_count(h), 4);
    sim_hist_bin(h, 0, NULL, NULL, &c);
    CU_ASSERT_EQUAL(c, 2);
    sim_hist_bin(h, n - 1, NULL, NULL, &c);
    CU_ASSERT_EQUAL(c, 2);
    CU_ASSERT_DOUBLE_EQUAL(sim_hist_min(h), 0.0, 0.0);
    CU_ASSERT_DOUBLE_EQUAL(sim_hist_max(h), 1e6, 0.0);
    CU_ASSERT_DOUBLE_EQUAL(sim_hist_quantile(h, 1.0), 1e6, 0.0);
    CU_ASSERT_DOUBLE_EQUAL(sim_hist_quantile(h, 0.0), 0.0, 0.0);
    for (double q = 0.05; q < 1.0; q += 0.1) {
        double x = sim_hist_quantile(h, q);
        CU_ASSERT(x >= 0.0 && x <= 1e6);
    }
    sim_hist_free(h);
}

static void test_empty_and_reset(void)
{
    sim_hist *h = sim_hist_new(LO, HI, REL_ERR);
    sim_hist *fresh = sim_hist_new(LO, HI, REL_ERR);

    CU_ASSERT_PTR_NOT_NULL_FATAL(h);
    CU_ASSERT_PTR_NOT_NULL_FATAL(fresh);
    CU_ASSERT_EQUAL(sim_hist_count(h), 0);
    CU_ASSERT_DOUBLE_EQUAL(sim_hist_mean(h), 0.0, 0.0);
    CU_ASSERT_DOUBLE_EQUAL(sim_hist_min(h), 0.0, 0.0);
    CU_ASSERT_DOUBLE_EQUAL(sim_hist_max(h), 0.0, 0.0);
    CU_ASSERT_DOUBLE_EQUAL(sim_hist_quantile(h, 0.0), 0.0, 0.0);
    CU_ASSERT_DOUBLE_EQUAL(sim_hist_quantile(h, 0.5), 0.0, 0.0);
    CU_ASSERT_DOUBLE_EQUAL(sim_hist_quantile(h, 1.0), 0.0, 0.0);

    for (int i = 1; i <= 1000; i++)
        sim_hist_add(h, i * 1e-3);
    CU_ASSERT(sim_hist_quantile(h, 0.5) > 0.0);   /* fills the pdf cache */
    sim_hist_reset(h);
    CU_ASSERT_EQUAL(sim_hist_count(h), 0);
    CU_ASSERT_DOUBLE_EQUAL(sim_hist_mean(h), 0.0, 0.0);
    CU_ASSERT_DOUBLE_EQUAL(sim_hist_quantile(h, 0.5), 0.0, 0.0);
    for (size_t i = 0; i < sim_hist_bins(h); i++) {
        size_t c;
        sim_hist_bin(h, i, NULL, NULL, &c);
        CU_ASSERT_EQUAL_FATAL(c, 0);
    }
    /* After a reset it behaves as new, cache included. */
    for (int i = 0; i < 10; i++) {
        sim_hist_add(h, 0.05 * (i + 1));
        sim_hist_add(fresh, 0.05 * (i + 1));
    }
    CU_ASSERT_DOUBLE_EQUAL(sim_hist_quantile(h, 0.5), sim_hist_quantile(fresh, 0.5), 0.0);
    CU_ASSERT_DOUBLE_EQUAL(sim_hist_min(h), 0.05, 0.0);
    sim_hist_free(h);
    sim_hist_free(fresh);
}

/* A quantile after more samples reflects them: the cached pdf is rebuilt. */
static void test_cache_invalidated(void)
{
    sim_hist *a = sim_hist_new(LO, HI, REL_ERR);
    sim_hist *b = sim_hist_new(LO, HI, REL_ERR);
    double before;

    CU_ASSERT_PTR_NOT_NULL_FATAL(a);
    CU_ASSERT_PTR_NOT_NULL_FATAL(b);
    for (int i = 0; i < 100; i++)
        sim_hist_add(a, 0.01);
    before = sim_hist_quantile(a, 0.5);
    CU_ASSERT(rel_diff(before, 0.01) <= REL_ERR);
    for (int i = 0; i < 300; i++)
        sim_hist_add(a, 1.0);
    CU_ASSERT(rel_diff(sim_hist_quantile(a, 0.5), 1.0) <= REL_ERR);
    for (int i = 0; i < 1000; i++)
        sim_hist_add(b, 0.001);
    CU_ASSERT(rel_diff(sim_hist_quantile(b, 0.5), 0.001) <= REL_ERR);
    CU_ASSERT_EQUAL(sim_hist_merge(a, b), 0);
    CU_ASSERT(rel_diff(sim_hist_quantile(a, 0.5), 0.001) <= REL_ERR);
    sim_hist_free(a);
    sim_hist_free(b);
}

static void test_merge(void)
{
    double *x = malloc(N_SAMPLES * sizeof *x);
    sim_hist *all = sim_hist_new(LO, HI, REL_ERR);
    sim_hist *a = sim_hist_new(LO, HI, REL_ERR);
    sim_hist *b = sim_hist_new(LO, HI, REL_ERR);
    sim_hist *other = sim_hist_new(LO, HI, 0.02);
    sim_hist *empty = sim_hist_new(LO, HI, REL_ERR);
    const double qs[] = { 0.0, 0.1, 0.5, 0.9, 0.99, 0.999, 1.0 };

    CU_ASSERT_PTR_NOT_NULL_FATAL(x);
    CU_ASSERT_FATAL(all && a && b && other && empty);
    draw(x, N_SAMPLES, 1, 7);
    for (size_t i = 0; i < N_SAMPLES; i++) {
        sim_hist_add(all, x[i]);
        sim_hist_add(i % 3 ? a : b, x[i]);
    }
    CU_ASSERT_EQUAL(sim_hist_merge(a, b), 0);
    CU_ASSERT_EQUAL(sim_hist_merge(a, empty), 0);
    CU_ASSERT_EQUAL(sim_hist_count(a), sim_hist_count(all));
    CU_ASSERT(rel_diff(sim_hist_mean(a), sim_hist_mean(all)) < 1e-12);
    CU_ASSERT_DOUBLE_EQUAL(sim_hist_min(a), sim_hist_min(all), 0.0);
    CU_ASSERT_DOUBLE_EQUAL(sim_hist_max(a), sim_hist_max(all), 0.0);
    for (size_t i = 0; i < sim_hist_bins(a); i++) {
        size_t ca, call;
        sim_hist_bin(a, i, NULL, NULL, &ca);
        sim_hist_bin(all, i, NULL, NULL, &call);
        CU_ASSERT_EQUAL_FATAL(ca, call);
    }
    /* Same bins, same counts: the same quantiles, to the bit. */
    for (size_t k = 0; k < sizeof qs / sizeof qs[0]; k++)
        CU_ASSERT_DOUBLE_EQUAL(sim_hist_quantile(a, qs[k]), sim_hist_quantile(all, qs[k]), 0.0);

    /* Merging into an empty one copies; different shapes are refused. */
    CU_ASSERT_EQUAL(sim_hist_merge(empty, all), 0);
    CU_ASSERT_EQUAL(sim_hist_count(empty), N_SAMPLES);
    CU_ASSERT_DOUBLE_EQUAL(sim_hist_quantile(empty, 0.99), sim_hist_quantile(all, 0.99), 0.0);
    CU_ASSERT_NOT_EQUAL(sim_hist_merge(other, all), 0);
    CU_ASSERT_EQUAL(sim_hist_count(other), 0);

    sim_hist_free(all);
    sim_hist_free(a);
    sim_hist_free(b);
    sim_hist_free(other);
    sim_hist_free(empty);
    free(x);
}

static void test_bad_arguments(void)
{
    CU_ASSERT_PTR_NULL(sim_hist_new(0.0, 1.0, 0.01));
    CU_ASSERT_PTR_NULL(sim_hist_new(-1.0, 1.0, 0.01));
    CU_ASSERT_PTR_NULL(sim_hist_new(1.0, 1.0, 0.01));
    CU_ASSERT_PTR_NULL(sim_hist_new(2.0, 1.0, 0.01));
    CU_ASSERT_PTR_NULL(sim_hist_new(1.0, 2.0, 0.0));
    CU_ASSERT_PTR_NULL(sim_hist_new(1.0, 2.0, -0.01));
    CU_ASSERT_PTR_NULL(sim_hist_new(NAN, 2.0, 0.01));
    CU_ASSERT_PTR_NULL(sim_hist_new(1.0, INFINITY, 0.01));
    CU_ASSERT_PTR_NULL(sim_hist_new(1.0, 2.0, NAN));
    CU_ASSERT_PTR_NULL(sim_hist_new(1e-300, 1e300, 1e-9));   /* absurd bin count */
    sim_hist_free(NULL);
}

int main(void)
{
    const struct {
        const char *name;
        CU_TestFunc fn;
    } tests[] = {
        { "bins: count formula, log spacing, relative width", test_bins },
        { "add: O(1) bin index matches the edges", test_add_bin_index },
        { "add: a sequence across bins, last bin tried first", test_add_sequence_bins },
        { "add_n equals n adds, mean bit for bit", test_add_n },
        { "quantiles: exponential, 100k samples", test_quantiles_exponential },
        { "quantiles: lognormal, 100k samples", test_quantiles_lognormal },
        { "values outside [min, max]", test_out_of_range },
        { "empty and reset", test_empty_and_reset },
        { "quantile cache invalidated", test_cache_invalidated },
        { "merge equals adding all", test_merge },
        { "bad arguments", test_bad_arguments },
    };
    CU_pSuite suite;
    int failed;

    if (CU_initialize_registry() != CUE_SUCCESS)
        return 1;
    suite = CU_add_suite("hist", NULL, NULL);
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
