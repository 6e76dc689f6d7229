/*
 * test_supermarket.c - balancing policies under Poisson load against the
 * supermarket model (Mitzenmacher, "The Power of Two Choices in Randomized
 * Load Balancing", 1996/2001), running the fleetsim binary.
 *
 * n servers, each a FIFO queue with exponential service of mean 1, Poisson
 * arrivals at rate lambda * n. Sending each request to the shorter of two
 * random queues (random_two_least_conn: nginx's `random two least_conn`
 * with equal weights) gives, as n -> infinity, a fraction
 * s_i = lambda^(2^i - 1) of queues holding at least i requests, so by
 * Little's law the mean time in system is T = (1/lambda) sum_i s_i
 * (1.6145 at lambda = 0.7).
 *
 * Tolerances, derived rather than chosen:
 * - sampling: R independent replications (seeds); the 99.9% Student-t
 *   half-width of their means (GSL);
 * - finite n: the model is exact only as n -> infinity, and the error of
 *   mean-field expectations is O(1/n) (Gast, "Expected values estimated via
 *   mean-field approximation are 1/N-accurate", SIGMETRICS 2017). So the
 *   test also runs n = 20, measures that gap g20 = T(20) - T, and allows
 *   the n = 100 run a gap of g20 * 20 / 100 (plus both half-widths).
 * JSQ (full scan) has no closed form; with exponential service no router
 * beats one central queue, so M/M/n (Erlang C) bounds its mean from below,
 * and it must beat two choices.
 *
 * About 1.3 million simulated requests: too slow under the sanitizers, where
 * the test only checks that one short run of each policy conserves requests.
 */
#include "testutil.h"

#include <CUnit/Basic.h>
#include <gsl/gsl_cdf.h>
#include <gsl/gsl_sf_gamma.h>
#include <gsl/gsl_statistics_double.h>

#include <math.h>

#define REPS 10
#define LAMBDA 0.7

static const char *TEMPLATE =
    "name: supermarket\n"
    "duration: %gs\n"
    "warmup: 100s\n"
    "interval: 1000s\n"
    "models:\n"
    "  m:\n"
    "    service: {distribution: exponential, mean: 1s}\n"
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
    "    arrivals: {process: poisson, rate: %.6f}\n"
    "load_balancer:\n"
    "  policy: %s\n"
    "  max_conns: 0\n";

/* Mean sojourn of REPS runs and its 99.9% half-width. */
static void replicate(const char *policy, int n, double duration_s, double *mean, double *half)
{
    double w[REPS];
    char *dir = tu_tmpdir();
    char path[4096], out[4096], log[4096], yaml[2048];

    CU_ASSERT_PTR_NOT_NULL_FATAL(dir);
    snprintf(path, sizeof path, "%s/s.yaml", dir);
    snprintf(log, sizeof log, "%s/log", dir);
    snprintf(yaml, sizeof yaml, TEMPLATE, duration_s, n, LAMBDA * n, policy);
    tu_write(path, yaml);
    for (int r = 0; r < REPS; r++) {
        snprintf(out, sizeof out, "%s/out%d", dir, r);
        int rc = tu_sh(log, "'%s' run '%s' --quiet --seed %d --out '%s'", tu_bin(), path, 7 + r, out);
        CU_ASSERT_EQUAL_FATAL(rc, 0);
        cJSON *j = tu_summary(out);
        CU_ASSERT_PTR_NOT_NULL_FATAL(j);
        w[r] = tu_num(j, "latency_s.mean");
        CU_ASSERT_EQUAL(tu_num(j, "requests.rejected"), 0);
        CU_ASSERT_EQUAL(tu_num(j, "requests.failed"), 0);
        cJSON_Delete(j);
    }
    tu_rm_rf(dir);
    free(dir);
    *mean = gsl_stats_mean(w, 1, REPS);
    *half = gsl_cdf_tdist_Pinv(0.9995, REPS - 1) * gsl_stats_sd(w, 1, REPS) / sqrt(REPS);
}

/* The supermarket model's limit for two choices. */
static double two_choice_limit(double lambda)
{
    double sum = 0;
    for (int i = 1; i < 40; i++)
        sum += pow(lambda, pow(2.0, i) - 1.0);
    return sum / lambda;
}

/* M/M/c mean sojourn, service mean 1, arrival rate a = lambda * c. */
static double mmc_sojourn(int c, double a)
{
    double sum = 0;
    for (int k = 0; k < c; k++)
        sum += exp(k * log(a) - gsl_sf_lnfact((unsigned)k));
    double top = exp(c * log(a) - gsl_sf_lnfact((unsigned)c)) * c / (c - a);
    return top / (sum + top) / (c - a) + 1.0;
}

static double t2_100, h2_100;

static void test_two_choices(void)
{
    double limit = two_choice_limit(LAMBDA), t20, h20, gap20, allow;

    replicate("random_two_least_conn", 20, 4000, &t20, &h20);
    replicate("random_two_least_conn", 100, 800, &t2_100, &h2_100);
    gap20 = t20 - limit;
    allow = fmax(gap20 + h20, 0.0) * 20.0 / 100.0;
    printf("\n    limit T = %.4f; n=20: %.4f +- %.4f (gap %.2f%%); n=100: %.4f +- %.4f "
           "(gap %.2f%%, allowed %.2f%% + %.2f%%)",
           limit, t20, h20, 100 * gap20 / limit, t2_100, h2_100,
           100 * (t2_100 - limit) / limit, 100 * allow / limit, 100 * h2_100 / limit);
    /* the runs are long enough to tell a 3% error */
    CU_ASSERT(h2_100 < 0.03 * limit);
    CU_ASSERT(h20 < 0.03 * limit);
    /* finite n can only make it worse (both draws busy more often) */
    CU_ASSERT(gap20 > -h20);
    CU_ASSERT(fabs(t2_100 - limit) <= h2_100 + allow);
    /* and the two-choice gain is there: one random queue would be M/M/1 */
    CU_ASSERT(t2_100 < 1.0 / (1.0 - LAMBDA) - 1.0);
}

static void test_jsq(void)
{
    double t, h, lower = mmc_sojourn(100, LAMBDA * 100);

    replicate("jsq", 100, 300, &t, &h);
    printf("\n    JSQ n=100: %.4f +- %.4f; M/M/100 %.4f; two choices %.4f",
           t, h, lower, t2_100);
    CU_ASSERT(t >= lower - h);
    CU_ASSERT(t < t2_100 - h - h2_100);
}

#ifdef FLEETSIM_SANITIZE
static void test_smoke(void)
{
    char *dir = tu_tmpdir();
    char path[4096], out[4096], yaml[2048];
    const char *policies[] = { "random_two_least_conn", "jsq" };

    CU_ASSERT_PTR_NOT_NULL_FATAL(dir);
    snprintf(path, sizeof path, "%s/s.yaml", dir);
    snprintf(out, sizeof out, "%s/out", dir);
    for (int i = 0; i < 2; i++) {
        snprintf(yaml, sizeof yaml, TEMPLATE, 200.0, 10, LAMBDA * 10, policies[i]);
        tu_write(path, yaml);
        CU_ASSERT_EQUAL(tu_sh(NULL, "'%s' run '%s' --quiet --out '%s'", tu_bin(), path, out), 0);
    }
    tu_rm_rf(dir);
    free(dir);
}
#endif

int main(void)
{
    CU_pSuite suite;
    int failed;

    if (CU_initialize_registry() != CUE_SUCCESS)
        return 1;
    suite = CU_add_suite("supermarket", NULL, NULL);
#ifdef FLEETSIM_SANITIZE
    (void)test_two_choices;
    (void)test_jsq;
    if (!suite || !CU_add_test(suite, "short runs conserve requests (sanitizer build)", test_smoke)) {
#else
    if (!suite || !CU_add_test(suite, "random two least_conn vs the supermarket model", test_two_choices) ||
        !CU_add_test(suite, "jsq between M/M/n and two choices", test_jsq)) {
#endif
        CU_cleanup_registry();
        return 1;
    }
    CU_basic_set_mode(CU_BRM_VERBOSE);
    CU_basic_run_tests();
    failed = CU_get_number_of_failures() != 0;
    CU_cleanup_registry();
    return failed;
}
