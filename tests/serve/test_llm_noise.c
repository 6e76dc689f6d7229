/*
 * test_llm_noise.c - the AR(1) lognormal step-time factor (base/llm_noise.c)
 * against its definition: the log factors' lag-1 autocorrelation is
 * exp(-dt / correlation_s) and their sd is sqrt(ln(1 + cv^2)), the
 * factors' mean is 1 and their cv the one asked for, each within 5
 * standard errors of the estimate for the run's length (the AR(1)'s
 * dependence included); irregular spacings correlate as their own dt
 * says; and a plan read ahead then cut short leaves the same factors, bit
 * for bit, as steps drawn one at a time (what makes fleetsim's coalesced
 * and per-step modes agree). Two components (a fast and a slow one): mean
 * 1, the total cv, and the log factors' correlation at a short and a long
 * lag the variance-weighted sum of the components' exp(-dt / tau), from
 * independent triplets of steps; and the same bit for bit when plans are
 * cut short.
 */
#include "llm_noise.h"

#include <CUnit/Basic.h>
#include <CUnit/CUnit.h>
#include <gsl/gsl_rng.h>
#include <gsl/gsl_statistics_double.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

static gsl_rng *rng(unsigned long seed)
{
    gsl_rng *r = gsl_rng_alloc(gsl_rng_mt19937);
    gsl_rng_set(r, seed);
    return r;
}

/* n factors of steps starting every dt_s, one planned and committed at a time. */
static double *draw_regular(double cv, double tau_s, double dt_s, size_t n, unsigned long seed)
{
    llm_noise *nz = llm_noise_new(cv, tau_s, rng(seed));
    double *f = malloc(sizeof *f * n);
    for (size_t i = 0; i < n; i++) {
        llm_noise_plan(nz);
        f[i] = llm_noise_next(nz, (double)i * dt_s);
        llm_noise_commit(nz, 1);
    }
    CU_ASSERT_EQUAL(llm_noise_steps(nz), n);
    llm_noise_free(nz);
    return f;
}

static void check_within(const char *what, double got, double want, double se)
{
    if (!(fabs(got - want) <= 5 * se))
        fprintf(stderr, "\n  %s: %.6f, expected %.6f +- 5 x %.6f", what, got, want, se);
    CU_ASSERT(fabs(got - want) <= 5 * se);
}

static void test_stationary_moments(void)
{
    const size_t n = 200000;
    const double cv = 0.25, tau = 0.02, dt = 0.01, rho = exp(-dt / tau);
    double *f = draw_regular(cv, tau, dt, n, 11);
    double *y = malloc(sizeof *y * n);
    for (size_t i = 0; i < n; i++)
        y[i] = log(f[i]);
    double sigma = llm_noise_sigma(cv);
    /* lag-1 autocorrelation of an AR(1): se sqrt((1 - rho^2) / n) (Bartlett) */
    double r1 = gsl_stats_lag1_autocorrelation(y, 1, n);
    check_within("lag-1 autocorrelation of log factors", r1, rho, sqrt((1 - rho * rho) / n));
    /* sd of a Gaussian AR(1): se sigma sqrt((1 + rho^2) / (2 n (1 - rho^2))) */
    double sd = gsl_stats_sd(y, 1, n);
    check_within("sd of log factors", sd, sigma,
                 sigma * sqrt((1 + rho * rho) / (2.0 * n * (1 - rho * rho))));
    /* the factors: mean 1, se cv sqrt((1 + rho) / ((1 - rho) n)) */
    double m = gsl_stats_mean(f, 1, n);
    check_within("mean factor", m, 1.0, cv * sqrt((1 + rho) / ((1 - rho) * n)));
    /* their sd (the cv, as the mean is 1): the lognormal's kurtosis k
     * widens the sd's se to cv sqrt((k - 1) (1 + rho^2) / (1 - rho^2) / n) / 2 */
    double c2 = cv * cv;
    double kurt = 3 + c2 * c2 * c2 * c2 + 6 * c2 * c2 * c2 + 15 * c2 * c2 + 16 * c2;
    double cvh = gsl_stats_sd(f, 1, n) / m;
    check_within("cv of factors", cvh, cv,
                 cv * 0.5 * sqrt((kurt - 1) * (1 + rho * rho) / (1 - rho * rho) / n));
    free(y);
    free(f);
}

static void test_no_memory(void)
{
    const size_t n = 100000;
    double *f = draw_regular(0.1, 0, 0.01, n, 12);
    for (size_t i = 0; i < n; i++)
        f[i] = log(f[i]);
    check_within("lag-1 with correlation_s 0", gsl_stats_lag1_autocorrelation(f, 1, n), 0,
                 1 / sqrt((double)n));
    free(f);
}

/* Steps alternately 10 ms and 40 ms apart, correlation time 20 ms: the
 * pairs 10 ms apart correlate exp(-0.5), those 40 ms apart exp(-2). */
static void test_irregular_spacing(void)
{
    const size_t pairs = 100000;
    llm_noise *nz = llm_noise_new(0.2, 0.02, rng(13));
    double *a = malloc(sizeof *a * pairs), *b = malloc(sizeof *b * pairs);
    double *c = malloc(sizeof *c * pairs), t = 0;
    for (size_t i = 0; i < pairs; i++) {
        llm_noise_plan(nz);
        a[i] = log(llm_noise_next(nz, t));
        b[i] = log(llm_noise_next(nz, t + 0.01));
        llm_noise_commit(nz, 2);
        t += 0.05;
        if (i > 0)
            c[i - 1] = b[i - 1];
    }
    double near = exp(-0.5), far = exp(-2.0);
    /* Pearson's r over n pairs: se (1 - r^2) / sqrt(n); consecutive pairs
     * are 50 ms apart, correlated exp(-2.5): a dependence too small to widen it */
    check_within("pairs 10 ms apart", gsl_stats_correlation(a, 1, b, 1, pairs), near,
                 (1 - near * near) / sqrt((double)pairs));
    check_within("pairs 40 ms apart", gsl_stats_correlation(c, 1, a + 1, 1, pairs - 1), far,
                 (1 - far * far) / sqrt((double)pairs - 1));
    llm_noise_free(nz);
    free(a);
    free(b);
    free(c);
}

/* Plans of 1 to 40 steps, of which 1 to all run, give the factors that
 * steps planned one at a time give: bit for bit. */
static void test_plan_cut_short(void)
{
    const int n = 20000;
    double *one = draw_regular(0.3, 0.05, 0.004, (size_t)n, 14);
    llm_noise *nz = llm_noise_new(0.3, 0.05, rng(14));
    gsl_rng *pick = rng(99);
    int i = 0, diff = 0, cut = 0;
    while (i < n) {
        int want = 1 + (int)gsl_rng_uniform_int(pick, 40);
        int ran = 1 + (int)gsl_rng_uniform_int(pick, (unsigned long)want);
        cut += ran < want;
        llm_noise_plan(nz);
        for (int j = 0; j < want; j++) {
            double f = llm_noise_next(nz, (double)(i + j) * 0.004);
            if (j < ran && i + j < n)
                diff += f != one[i + j];
        }
        llm_noise_commit(nz, ran);
        i += ran;
    }
    CU_ASSERT_EQUAL(diff, 0);
    CU_ASSERT(cut > 100); /* plans were cut short */
    CU_ASSERT_EQUAL(llm_noise_steps(nz), (unsigned long)i);
    gsl_rng_free(pick);
    llm_noise_free(nz);
    free(one);
}

/* Two components, fast (cv 0.15, 5 ms) and slow (cv 0.12, 150 ms):
 * triplets of steps at t, t + 2 ms and t + 100 ms, the next triplet 20 s
 * later (133 slow correlation times: independent, exp(-133) apart). Over
 * the n triplets: the first steps' factors have mean 1 and
 * cv sqrt((1 + cv_f^2)(1 + cv_s^2) - 1); their logs have sd
 * sqrt(sigma_f^2 + sigma_s^2) and correlate with the second's and third's
 * logs (s_f^2 exp(-dt/tau_f) + s_s^2 exp(-dt/tau_s)) / (s_f^2 + s_s^2):
 * 0.79 at 2 ms, where the fast component still counts, and 0.20 at
 * 100 ms, where only the slow one does. Standard errors of independent
 * samples: cv / sqrt(n) for the mean, sigma / sqrt(2 n) for the sd,
 * (1 - r^2) / sqrt(n) for Pearson's r, and the lognormal's kurtosis for
 * the cv (as test_stationary_moments). */
static void test_two_components(void)
{
    const size_t n = 100000;
    const double cvf = 0.15, tf = 0.005, cvs = 0.12, ts = 0.15;
    llm_noise *nz = llm_noise_new(cvf, tf, rng(21));
    CU_ASSERT_EQUAL_FATAL(llm_noise_add(nz, cvs, ts, rng(22)), 0);
    double *f = malloc(sizeof *f * n), *a = malloc(sizeof *a * n);
    double *b = malloc(sizeof *b * n), *c = malloc(sizeof *c * n), t = 0;
    for (size_t i = 0; i < n; i++) {
        llm_noise_plan(nz);
        f[i] = llm_noise_next(nz, t);
        b[i] = log(llm_noise_next(nz, t + 0.002));
        c[i] = log(llm_noise_next(nz, t + 0.1));
        llm_noise_commit(nz, 3);
        a[i] = log(f[i]);
        t += 20;
    }
    gsl_rng *extra = rng(23); /* a third component is refused after drawing */
    CU_ASSERT_EQUAL(llm_noise_add(nz, 0.1, 1, extra), -1);
    gsl_rng_free(extra);
    double sf2 = pow(llm_noise_sigma(cvf), 2), ss2 = pow(llm_noise_sigma(cvs), 2);
    double sigma = sqrt(sf2 + ss2), cv = sqrt((1 + cvf * cvf) * (1 + cvs * cvs) - 1);
    double m = gsl_stats_mean(f, 1, n);
    check_within("two components: mean factor", m, 1.0, cv / sqrt((double)n));
    double c2 = cv * cv;
    double kurt = 3 + c2 * c2 * c2 * c2 + 6 * c2 * c2 * c2 + 15 * c2 * c2 + 16 * c2;
    check_within("two components: cv", gsl_stats_sd(f, 1, n) / m, cv,
                 cv * 0.5 * sqrt((kurt - 1) / (double)n));
    check_within("two components: sd of log factors", gsl_stats_sd(a, 1, n), sigma,
                 sigma / sqrt(2.0 * (double)n));
    double near = (sf2 * exp(-0.002 / tf) + ss2 * exp(-0.002 / ts)) / (sf2 + ss2);
    double far = (sf2 * exp(-0.1 / tf) + ss2 * exp(-0.1 / ts)) / (sf2 + ss2);
    check_within("two components: log correlation 2 ms apart",
                 gsl_stats_correlation(a, 1, b, 1, n), near, (1 - near * near) / sqrt((double)n));
    check_within("two components: log correlation 100 ms apart",
                 gsl_stats_correlation(a, 1, c, 1, n), far, (1 - far * far) / sqrt((double)n));
    /* the long lag tells the two apart: the fast component alone would give
     * exp(-20) there, the slow one alone exp(-0.667) */
    CU_ASSERT(far > 0.15 && far < 0.25);
    llm_noise_free(nz);
    free(f);
    free(a);
    free(b);
    free(c);
}

/* Two components: plans cut short give the factors of steps planned one
 * at a time, bit for bit; and the fast component alone draws what it
 * would without the slow one (the factor over the fast-only factor is the
 * slow component's, lognormal with its sigma). */
static void test_two_components_cut_short(void)
{
    const int n = 20000;
    llm_noise *one = llm_noise_new(0.3, 0.05, rng(31)), *fast = llm_noise_new(0.3, 0.05, rng(31));
    llm_noise_add(one, 0.2, 0.5, rng(32));
    double *f1 = malloc(sizeof *f1 * (size_t)n), *ls = malloc(sizeof *ls * (size_t)n);
    for (int i = 0; i < n; i++) {
        llm_noise_plan(one);
        llm_noise_plan(fast);
        f1[i] = llm_noise_next(one, i * 0.004);
        ls[i] = log(f1[i] / llm_noise_next(fast, i * 0.004));
        llm_noise_commit(one, 1);
        llm_noise_commit(fast, 1);
    }
    /* the slow log factor alone: lag-1 (4 ms apart) exp(-0.008), se
     * sqrt((1 - rho^2) / n) (Bartlett); any of the fast component's draws
     * left in it (lag-1 exp(-0.08)) would pull it far below */
    double rho = exp(-0.004 / 0.5);
    check_within("slow part of the factor: lag-1 of its log",
                 gsl_stats_lag1_autocorrelation(ls, 1, (size_t)n), rho,
                 sqrt((1 - rho * rho) / n));
    llm_noise *nz = llm_noise_new(0.3, 0.05, rng(31));
    llm_noise_add(nz, 0.2, 0.5, rng(32));
    gsl_rng *pick = rng(98);
    int i = 0, diff = 0, cut = 0;
    while (i < n) {
        int want = 1 + (int)gsl_rng_uniform_int(pick, 40);
        int ran = 1 + (int)gsl_rng_uniform_int(pick, (unsigned long)want);
        cut += ran < want;
        llm_noise_plan(nz);
        for (int j = 0; j < want; j++) {
            double f = llm_noise_next(nz, (double)(i + j) * 0.004);
            if (j < ran && i + j < n)
                diff += f != f1[i + j];
        }
        llm_noise_commit(nz, ran);
        i += ran;
    }
    CU_ASSERT_EQUAL(diff, 0);
    CU_ASSERT(cut > 100);
    gsl_rng_free(pick);
    llm_noise_free(nz);
    llm_noise_free(one);
    llm_noise_free(fast);
    free(f1);
    free(ls);
}

int main(void)
{
    if (CU_initialize_registry() != CUE_SUCCESS)
        return (int)CU_get_error();
    CU_pSuite s = CU_add_suite("llm_noise", NULL, NULL);
    CU_add_test(s, "stationary AR(1): lag-1, sd, mean, cv", test_stationary_moments);
    CU_add_test(s, "correlation_s 0: no memory", test_no_memory);
    CU_add_test(s, "irregular spacing: exp(-dt / correlation_s)", test_irregular_spacing);
    CU_add_test(s, "a plan cut short: the same factors", test_plan_cut_short);
    CU_add_test(s, "two components: mean, cv, short and long lags", test_two_components);
    CU_add_test(s, "two components: a plan cut short, the fast one unchanged",
                test_two_components_cut_short);
    CU_basic_set_mode(CU_BRM_VERBOSE);
    CU_basic_run_tests();
    int failures = (int)CU_get_number_of_failures();
    CU_cleanup_registry();
    return failures;
}
