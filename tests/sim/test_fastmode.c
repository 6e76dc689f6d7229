/*
 * test_fastmode.c - simulation.mode fast against exact, end to end.
 *
 * Fast mode delivers each traffic class's arrivals once per arrival quantum
 * q, each request keeping its exact arrival time; so every arrival reaches
 * the balancer between 0 and q after it was made, and the bound the mode
 * states is that the mean latency moves by no more than that: fast - exact
 * in [0, q] (for one FIFO server it holds request by request: delaying each
 * arrival by at most q delays each departure by at most q, Lindley's
 * recursion being monotone and 1-Lipschitz; with routing and batching it is
 * the claim the runs test). Each case runs R seeds in both modes, the same
 * seed for a pair, and asserts the mean of the paired differences lies in
 * [-h, q + h], h the differences' own 99.9% Student-t half-width, which
 * shrinks as runs lengthen; it also asserts h under 3% of the exact mean
 * (test_queueing's precision), so runs too short to tell a wrong result
 * from noise fail. The pairs share their arrival times but not, once an
 * order of events differs, which node draws which service time, so on the
 * unbatched cases the differences have about twice a run's variance and q
 * is below what the runs resolve: there the test shows fast mode within the
 * runs' precision of exact; on the batched ones (bank-peak, batching) it
 * resolves the shift itself. Every run must
 * conserve requests and generate the same arrivals in both modes (the same
 * stream of arrival times). Cases: M/M/c with a central queue, JSQ(2) (p2c)
 * over per-node queues, a batched pool, and scenarios/bank-peak.yaml. Fast
 * mode's batch server (serve/batch_fast.c, no SimGrid executions) runs
 * every case; test_fast_server.c checks what it computes itself.
 */
#include "testutil.h"

#include <CUnit/Basic.h>
#include <gsl/gsl_cdf.h>
#include <gsl/gsl_statistics_double.h>

#include <math.h>

#define REPS 16

/* One run's mean latency and arrivals, conservation asserted. */
static double run_once(const char *log, const char *path, const char *out, int seed,
                       const char *mode, double q_s, double *generated)
{
    int rc = tu_sh(log, "'%s' run '%s' --quiet --seed %d --out '%s' --%s "
                   "--set simulation.arrival_quantum=%gs",
                   tu_bin(), path, seed, out, mode, q_s);
    CU_ASSERT_EQUAL_FATAL(rc, 0); /* 3 would be a conservation failure */
    cJSON *j = tu_summary(out);
    CU_ASSERT_PTR_NOT_NULL_FATAL(j);
    double gen = tu_num(j, "requests.generated");
    double ended = tu_num(j, "requests.completed") + tu_num(j, "requests.rejected") +
                   tu_num(j, "requests.failed") + tu_num(j, "requests.timed_out") +
                   tu_num(j, "requests.in_flight_at_end");
    CU_ASSERT_EQUAL(gen, ended);
    double mean = tu_num(j, "latency_s.mean");
    cJSON_Delete(j);
    *generated = gen;
    return mean;
}

/* Runs the scenario at path over REPS seeds in both modes and checks the
 * paired differences of mean latency against [0, q_s]. */
static void compare_modes(const char *what, const char *path, double q_s)
{
    double d[REPS], e[REPS];
    char *dir = tu_tmpdir();
    char out[4096], log[4096];
    snprintf(log, sizeof log, "%s/log", dir);
    for (int r = 0; r < REPS; r++) {
        double gen_e, gen_f;
        snprintf(out, sizeof out, "%s/exact%d", dir, r);
        e[r] = run_once(log, path, out, 201 + r, "exact", q_s, &gen_e);
        snprintf(out, sizeof out, "%s/fast%d", dir, r);
        double f = run_once(log, path, out, 201 + r, "fast", q_s, &gen_f);
        CU_ASSERT_EQUAL(gen_e, gen_f);
        d[r] = f - e[r];
    }
    tu_rm_rf(dir);
    free(dir);
    double mean_d = gsl_stats_mean(d, 1, REPS), mean_e = gsl_stats_mean(e, 1, REPS);
    double half = gsl_cdf_tdist_Pinv(0.9995, REPS - 1) * gsl_stats_sd(d, 1, REPS) / sqrt(REPS);
    printf("\n    %s: exact %.6f s, fast - exact %+.6f +- %.6f s (q = %g s)", what, mean_e, mean_d,
           half, q_s);
    CU_ASSERT(half < 0.03 * mean_e);
    CU_ASSERT(mean_d >= -half);
    CU_ASSERT(mean_d <= q_s + half);
}

static const char *TEMPLATE =
    "name: fast-%s\n"
    "seed: 1\n"
    "duration: %gs\n"
    "warmup: %gs\n"
    "interval: 100s\n"
    "models:\n"
    "  m:\n"
    "    service: %s\n"
    "%s"
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
    "%s";

static void generated_case(const char *name, const char *service, const char *batch, int servers,
                           double lambda, const char *policy, const char *lb_extra,
                           double duration_s, double q_s)
{
    char *dir = tu_tmpdir();
    char path[4096], yaml[4096];
    snprintf(path, sizeof path, "%s/s.yaml", dir);
    snprintf(yaml, sizeof yaml, TEMPLATE, name, duration_s, duration_s / 20, service, batch,
             servers, lambda, policy, lb_extra);
    tu_write(path, yaml);
    compare_modes(name, path, q_s);
    tu_rm_rf(dir);
    free(dir);
}

/* M/M/4 at rho 0.8, a central FIFO queue at the balancer (max_conns 1). */
static void test_mmc(void)
{
    generated_case("mmc", "{distribution: exponential, mean: 1s}", "", 4, 3.2, "least_conn",
                   "  max_conns: 1\n  queue: {capacity: 1000000}\n", 20000, 0.01);
}

/* JSQ(2): power of two choices (nginx's random two least_conn) over 16
 * per-node FIFO queues at rho 0.9. */
static void test_jsq2(void)
{
    generated_case("jsq2", "{distribution: exponential, mean: 1s}", "", 16, 14.4,
                   "random_two_least_conn", "", 4000, 0.01);
}

/* bench/scenarios/batched.yaml's model on 4 nodes at 80% of full-batch
 * capacity (4 x 16 / 47 ms = 1,361.7 QPS). */
static void test_batched(void)
{
    generated_case("batched", "{distribution: lognormal, cv: 0.3, base: 15ms, per_item: 2ms}",
                   "    batch: {max_size: 16, max_wait: 5ms}\n", 4, 1089.4, "least_conn", "", 60,
                   0.001);
}

/* The shipped bank case: a day with a 520 QPS peak on 3 batching nodes. */
static void test_bank(void)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/scenarios/bank-peak.yaml", tu_src());
    compare_modes("bank-peak", path, 0.001);
}

#define SMALL "name: k\nduration: 20s\nmodels: {m: {service: {distribution: deterministic, " \
              "mean: 10ms}, batch: {max_size: 16, max_wait: 5ms}}}\n" \
              "pools: {p: {model: m, replicas: 1}}\n" \
              "traffic: [{name: t, pool: p, arrivals: {process: poisson, rate: 500}}]\n"

/* The summary.json of a run of yaml with extra options, less its
 * wall_time_s and peak_rss_mb (measures of the machine, not results),
 * malloc'd. */
static char *summary_text(const char *yaml, const char *extra)
{
    int rc;
    char *dir = tu_run_yaml(yaml, extra, &rc);
    CU_ASSERT_EQUAL(rc, 0);
    char out[4096];
    snprintf(out, sizeof out, "%s/out", dir);
    cJSON *j = tu_summary(out);
    tu_done(dir);
    if (!j)
        return NULL;
    cJSON_DeleteItemFromObjectCaseSensitive(j, "wall_time_s");
    cJSON_DeleteItemFromObjectCaseSensitive(j, "peak_rss_mb");
    char *text = cJSON_PrintUnformatted(j);
    cJSON_Delete(j);
    return text;
}

/* Exact is the default and --exact gives its results byte for byte over a
 * file's mode: fast; --fast changes them; the keys are strict. */
static void test_key_and_flags(void)
{
    char *plain = summary_text(SMALL, NULL);
    char *exact = summary_text(SMALL "simulation: {mode: fast, arrival_quantum: 2ms}\n", "--exact");
    char *fast = summary_text(SMALL, "--fast");
    char *fast_file = summary_text(SMALL "simulation: {mode: fast}\n", NULL);
    CU_ASSERT_PTR_NOT_NULL_FATAL(plain);
    CU_ASSERT_PTR_NOT_NULL_FATAL(exact);
    CU_ASSERT_PTR_NOT_NULL_FATAL(fast);
    CU_ASSERT_PTR_NOT_NULL_FATAL(fast_file);
    CU_ASSERT_STRING_EQUAL(plain, exact);
    CU_ASSERT_STRING_NOT_EQUAL(plain, fast);
    CU_ASSERT_STRING_EQUAL(fast, fast_file);
    CU_ASSERT_PTR_NULL(strstr(plain, "\"simulation\""));
    CU_ASSERT_PTR_NOT_NULL(strstr(fast, "\"simulation\":{\"mode\":\"fast\",\"arrival_quantum_s\":0.001}"));
    free(plain);
    free(exact);
    free(fast);
    free(fast_file);
    /* compare passes --fast to every run, over the file's mode */
    char *dir = tu_tmpdir();
    char path[4096], log[4096], cmd_out[4096];
    snprintf(path, sizeof path, "%s/s.yaml", dir);
    snprintf(log, sizeof log, "%s/log", dir);
    snprintf(cmd_out, sizeof cmd_out, "%s/cmp", dir);
    tu_write(path, SMALL "simulation: {mode: exact}\n");
    CU_ASSERT_EQUAL(tu_sh(log, "'%s' compare '%s' --seeds 2 --jobs 1 --fast --out '%s'", tu_bin(),
                          path, cmd_out), 0);
    snprintf(path, sizeof path, "%s/cmp/compare.json", dir);
    char *cmp = tu_read(path);
    CU_ASSERT_PTR_NOT_NULL(cmp);
    CU_ASSERT(cmp && strstr(cmp, "\"simulation.mode=fast\""));
    free(cmp);
    snprintf(path, sizeof path, "%s/cmp/runs/v0-seed1/summary.json", dir);
    char *run = tu_read(path);
    CU_ASSERT(run && strstr(run, "\"mode\":\t\"fast\""));
    free(run);
    tu_rm_rf(dir);
    free(dir);
    CU_ASSERT(tu_expect_error(SMALL "simulation: {mode: quick}\n", NULL, "simulation.mode"));
    CU_ASSERT(tu_expect_error(SMALL "simulation: {mode: fast, quantum: 1ms}\n", NULL,
                              "unknown key \"quantum\""));
    CU_ASSERT(tu_expect_error(SMALL "simulation: {arrival_quantum: 0s}\n", NULL,
                              "simulation.arrival_quantum"));
    CU_ASSERT(tu_expect_error(SMALL, "--set simulation.arrival_quantum=fast",
                              "simulation.arrival_quantum"));
}

int main(void)
{
    if (CU_initialize_registry() != CUE_SUCCESS)
        return 1;
    CU_pSuite s = CU_add_suite("fastmode", NULL, NULL);
    CU_add_test(s, "simulation key and --fast/--exact", test_key_and_flags);
    CU_add_test(s, "M/M/c: fast within [0, q] of exact", test_mmc);
    CU_add_test(s, "JSQ(2): fast within [0, q] of exact", test_jsq2);
    CU_add_test(s, "batching: fast within [0, q] of exact", test_batched);
    CU_add_test(s, "bank-peak: fast within [0, q] of exact", test_bank);
    CU_basic_set_mode(CU_BRM_VERBOSE);
    CU_basic_run_tests();
    unsigned fails = CU_get_number_of_failures();
    CU_cleanup_registry();
    return fails != 0;
}
