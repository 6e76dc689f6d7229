/*
 * test_queueing.c - the engine against queueing theory, end to end.
 *
 * Each case runs the real fleetsim binary R times with independent seeds and
 * compares the mean sojourn time (arrival to completion, network time zero)
 * with the closed form: M/M/1 and M/M/c (a central FIFO queue at the
 * balancer, max_conns 1 per server) against Erlang C, M/D/1 against
 * Pollaczek-Khinchine. The tolerance is the replications' own 99.9% Student-t
 * confidence half-width (GSL), so it shrinks as runs lengthen; each case also
 * asserts that half-width is under 3% of the exact value, so a test whose
 * runs are too short to tell right from wrong fails instead of passing.
 */
#include "testutil.h"

#include <CUnit/Basic.h>
#include <gsl/gsl_cdf.h>
#include <gsl/gsl_sf_gamma.h>
#include <gsl/gsl_statistics_double.h>

#include <math.h>

#define REPS 16

static const char *TEMPLATE =
    "name: %s\n"
    "seed: 1\n"
    "duration: %gs\n"
    "warmup: %gs\n"
    "interval: 1000s\n"
    "models:\n"
    "  m:\n"
    "    service: {distribution: %s, mean: 1s}\n"
    "pools:\n"
    "  p:\n"
    "    model: m\n"
    "    replicas: %d\n"
    "    queue_capacity: 1000000\n"
    "    link: {latency: 0s, bandwidth: 10Gbps}\n"
    "traffic:\n"
    "  - name: t\n"
    "    pool: p\n"
    "    size: 0B\n"
    "    response_size: 0B\n"
    "    arrivals: {process: poisson, rate: %g}\n"
    "load_balancer:\n"
    "  policy: %s\n"
    "  max_conns: %d\n"
    "  queue: {capacity: %d}\n";

/* Erlang C: probability that an arrival waits in M/M/c with offered load a. */
static double erlang_c(int c, double a)
{
    double sum = 0;
    for (int k = 0; k < c; k++)
        sum += exp(k * log(a) - gsl_sf_lnfact((unsigned)k));
    double top = exp(c * log(a) - gsl_sf_lnfact((unsigned)c)) * c / (c - a);
    return top / (sum + top);
}

/* Runs REPS replications; returns the mean of their mean sojourn times and
 * the 99.9% confidence half-width. */
static void replicate(const char *name, const char *dist, int servers, double lambda,
                      const char *policy, int max_conns, int lb_queue, double duration_s,
                      double *mean, double *half)
{
    double w[REPS];
    char *dir = tu_tmpdir();
    char path[4096], out[4096], log[4096];
    snprintf(path, sizeof path, "%s/s.yaml", dir);
    snprintf(log, sizeof log, "%s/log", dir);
    char yaml[4096];
    snprintf(yaml, sizeof yaml, TEMPLATE, name, duration_s, duration_s / 20, dist, servers, lambda,
             policy, max_conns, lb_queue);
    tu_write(path, yaml);
    for (int r = 0; r < REPS; r++) {
        snprintf(out, sizeof out, "%s/out%d", dir, r);
        int rc = tu_sh(log, "'%s' run '%s' --quiet --seed %d --out '%s'", tu_bin(), path, 101 + r, out);
        CU_ASSERT_EQUAL_FATAL(rc, 0);
        cJSON *j = tu_summary(out);
        CU_ASSERT_PTR_NOT_NULL_FATAL(j);
        w[r] = tu_num(j, "latency_s.mean");
        /* nothing may be lost in a stable queue with room for everyone */
        CU_ASSERT_EQUAL(tu_num(j, "requests.rejected"), 0);
        CU_ASSERT_EQUAL(tu_num(j, "requests.timed_out"), 0);
        cJSON_Delete(j);
    }
    tu_rm_rf(dir);
    free(dir);
    *mean = gsl_stats_mean(w, 1, REPS);
    double sd = gsl_stats_sd(w, 1, REPS);
    *half = gsl_cdf_tdist_Pinv(0.9995, REPS - 1) * sd / sqrt(REPS);
}

static void check(const char *what, double got, double half, double exact)
{
    printf("\n    %s: simulated %.4f +- %.4f, exact %.4f (%.2f%%)", what, got, half, exact,
           100 * (got - exact) / exact);
    CU_ASSERT(half < 0.03 * exact);
    CU_ASSERT(fabs(got - exact) <= half);
}

static void test_mm1(void)
{
    double lambda = 0.7, mean, half;
    replicate("mm1", "exponential", 1, lambda, "round_robin", 0, 0, 150000, &mean, &half);
    check("M/M/1 rho=0.7 W", mean, half, 1.0 / (1.0 - lambda));
}

static void test_mmc(void)
{
    int c = 4;
    double lambda = 3.2, a = lambda / 1.0, mean, half;
    replicate("mmc", "exponential", c, lambda, "least_conn", 1, 1000000, 40000, &mean, &half);
    double exact = erlang_c(c, a) / (c * 1.0 - lambda) + 1.0;
    check("M/M/4 rho=0.8 W (Erlang C)", mean, half, exact);
}

static void test_md1(void)
{
    double lambda = 0.7, rho = lambda, mean, half;
    replicate("md1", "deterministic", 1, lambda, "round_robin", 0, 0, 150000, &mean, &half);
    double exact = 1.0 + rho / (2.0 * (1.0 - rho)); /* Pollaczek-Khinchine, service 1 s */
    check("M/D/1 rho=0.7 W (P-K)", mean, half, exact);
}

static void test_erlang_c_formula(void)
{
    /* c = 1 reduces to rho; a known table value: c=2, a=1 -> 1/3 */
    CU_ASSERT_DOUBLE_EQUAL(erlang_c(1, 0.7), 0.7, 1e-12);
    CU_ASSERT_DOUBLE_EQUAL(erlang_c(2, 1.0), 1.0 / 3.0, 1e-12);
}

int main(void)
{
    if (CU_initialize_registry() != CUE_SUCCESS)
        return 1;
    CU_pSuite s = CU_add_suite("queueing", NULL, NULL);
    CU_add_test(s, "Erlang C formula", test_erlang_c_formula);
    CU_add_test(s, "M/M/1 vs closed form", test_mm1);
    CU_add_test(s, "M/M/c vs Erlang C", test_mmc);
    CU_add_test(s, "M/D/1 vs Pollaczek-Khinchine", test_md1);
    CU_basic_set_mode(CU_BRM_VERBOSE);
    CU_basic_run_tests();
    unsigned fails = CU_get_number_of_failures();
    CU_cleanup_registry();
    return fails != 0;
}
