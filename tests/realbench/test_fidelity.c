/*
 * test_fidelity.c - does the simulator, given a measured profile, predict a
 * real serving loop?
 *
 * 1. Measure an INT8 CPU profile of risk-mlp at every batch size 1..16 with
 *    the thread count the serving loop will use (cores - 1: one core is left
 *    to the load generator and batcher).
 * 2. Run `realbench serve` (real queue, batcher max_size 16 / max_wait 5 ms,
 *    one worker) at 50% and 80% of the capacity the profile gives
 *    (16 / latency(16)), open-loop Poisson arrivals.
 * 3. Run fleetsim ($FLEETSIM_BIN) on a scenario with the same profile, batch
 *    settings and arrival rate; the service-time noise is lognormal with the
 *    spread the profile measured at batch 16 (from its p10/p90).
 * 4. Require |sim - real| / real <= 5% at p50 and <= 10% at p99 (the bounds of
 *    issue 7).
 * The comparison only means something if the machine serves the loop as fast
 * as it ran the benchmark: when other work on a shared machine slows the
 * loop's batches (mean in-loop service time at batch 16 more than 5% off the
 * profile), the errors are printed and the bounds are not asserted. Runs
 * last FLEETSIM_FIDELITY_S seconds each (default 8); longer runs tighten p99.
 * FLEETSIM_FIDELITY_STRICT=1 asserts the bounds whatever the machine's state.
 * Without a fleetsim binary the test says so and passes.
 */
#include "realbench.h"

#include <CUnit/Basic.h>
#include <cjson/cJSON.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char src_dir[1024] = ".";
static char dir[256];

static cJSON *read_json(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    static char buf[1 << 20];
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = 0;
    return cJSON_Parse(buf);
}

static double num(const cJSON *o, const char *a, const char *b)
{
    o = cJSON_GetObjectItemCaseSensitive(o, a);
    if (b)
        o = cJSON_GetObjectItemCaseSensitive(o, b);
    return cJSON_IsNumber(o) ? o->valuedouble : NAN;
}

static void test_sim_predicts_serve(void)
{
    const char *bin = getenv("FLEETSIM_BIN");
    if (!bin || access(bin, X_OK)) {
        printf("\n  no fleetsim binary ($FLEETSIM_BIN); fidelity not measured\n");
        return;
    }
    const char *ds = getenv("FLEETSIM_FIDELITY_S");
    double dur = ds ? atof(ds) : 8;
    int strict = getenv("FLEETSIM_FIDELITY_STRICT") && !strcmp(getenv("FLEETSIM_FIDELITY_STRICT"), "1");
    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    char threads[24], model[1200], profile[300];
    snprintf(threads, sizeof threads, "%ld", cores > 1 ? cores - 1 : 1);
    snprintf(model, sizeof model, "%s/realbench/models/risk-mlp.yaml", src_dir);
    snprintf(profile, sizeof profile, "%s/profile.json", dir);

    char *cpu[] = {"realbench", "cpu", "--model", model, "--out", profile, "--precisions", "int8",
                   "--batches", "1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16", "--reps", "40",
                   "--threads", threads, "--quiet", NULL};
    CU_ASSERT_EQUAL_FATAL(rb_main(15, cpu), 0);
    cJSON *p = read_json(profile);
    CU_ASSERT_PTR_NOT_NULL_FATAL(p);
    const cJSON *i8 = cJSON_GetObjectItemCaseSensitive(
        cJSON_GetObjectItemCaseSensitive(p, "precisions"), "int8");
    int last = cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(i8, "batch")) - 1;
    double l16 = cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(i8, "latency_s"), last)->valuedouble;
    double p10 = cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(i8, "p10_s"), last)->valuedouble;
    double p90 = cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(i8, "p90_s"), last)->valuedouble;
    cJSON_Delete(p);
    /* lognormal: p90 / p10 = exp(2 * 1.2816 * sigma) */
    double sigma = log(p90 / p10) / (2 * 1.2815516);
    double cv = sqrt(exp(sigma * sigma) - 1);
    if (cv < 0.01)
        cv = 0.01;

    double loads[] = {0.5, 0.8};
    for (int li = 0; li < 2; li++) {
        double qps = loads[li] * 16 / l16;
        char q[32], d[32], out[300], simdir[300], yaml[300], cmd[2048];
        snprintf(q, sizeof q, "%.3f", qps);
        snprintf(d, sizeof d, "%.1f", dur);
        snprintf(out, sizeof out, "%s/serve-%d.json", dir, li);
        char *serve[] = {"realbench", "serve", "--model", model, "--qps", q, "--duration-s", d,
                         "--warmup-s", "1", "--max-batch", "16", "--max-wait-ms", "5",
                         "--threads", threads, "--seed", "7", "--out", out, NULL};
        CU_ASSERT_EQUAL_FATAL(rb_main(20, serve), 0);
        cJSON *real = read_json(out);
        CU_ASSERT_PTR_NOT_NULL_FATAL(real);

        snprintf(yaml, sizeof yaml, "%s/fidelity-%d.yaml", dir, li);
        FILE *f = fopen(yaml, "w");
        CU_ASSERT_PTR_NOT_NULL_FATAL(f);
        fprintf(f, "name: fidelity-%d\nseed: 7\nduration: 400s\nmodels:\n  risk:\n"
                   "    service: {calibration: %s, precision: int8, noise: {distribution: lognormal, cv: %.4f}}\n"
                   "    batch: {max_size: 16, max_wait: 5ms}\n"
                   "pools:\n  cpu: {model: risk, replicas: 1, gpus_per_node: 1, queue_capacity: 10000000,\n"
                   "        timeout: 0s, link: {latency: 0s, bandwidth: 1000Gbps}}\n"
                   "traffic:\n  - {name: load, pool: cpu, size: 0B, response_size: 0B,\n"
                   "     arrivals: {process: poisson, rate: %s}}\n",
                li, profile, cv, q);
        fclose(f);
        snprintf(simdir, sizeof simdir, "%s/sim-%d", dir, li);
        snprintf(cmd, sizeof cmd, "'%s' run '%s' --out '%s' > '%s.log' 2>&1", bin, yaml, simdir, simdir);
        int rc = system(cmd);
        CU_ASSERT_EQUAL(rc, 0);
        char sum[400];
        snprintf(sum, sizeof sum, "%s/summary.json", simdir);
        cJSON *sim = read_json(sum);
        CU_ASSERT_PTR_NOT_NULL(sim);
        if (rc || !sim) {
            cJSON_Delete(real);
            continue;
        }
        double e50 = (num(sim, "latency_s", "p50") - num(real, "latency_s", "p50")) / num(real, "latency_s", "p50");
        double e99 = (num(sim, "latency_s", "p99") - num(real, "latency_s", "p99")) / num(real, "latency_s", "p99");
        /* did the loop's batches run as fast as the benchmark said? */
        const cJSON *sv = cJSON_GetObjectItemCaseSensitive(real, "service_s");
        const cJSON *sb = cJSON_GetObjectItemCaseSensitive(sv, "batch");
        double s16 = NAN;
        for (int i = 0; i < cJSON_GetArraySize(sb); i++)
            if (cJSON_GetArrayItem(sb, i)->valuedouble == 16)
                s16 = cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(sv, "mean"), i)->valuedouble;
        double drift = isnan(s16) ? 0 : (s16 - l16) / l16;
        int quiet = fabs(drift) <= 0.05;
        printf("\n  load %.0f%% (%.0f QPS, %.0f s): p50 real %.3f ms sim %.3f ms (%+.1f%%), "
               "p99 real %.3f ms sim %.3f ms (%+.1f%%); batch-16 service in the loop %+.1f%% vs profile%s",
               loads[li] * 100, qps, dur, num(real, "latency_s", "p50") * 1e3,
               num(sim, "latency_s", "p50") * 1e3, e50 * 100, num(real, "latency_s", "p99") * 1e3,
               num(sim, "latency_s", "p99") * 1e3, e99 * 100, drift * 100,
               quiet || strict ? "" : " -> machine busy, bounds not asserted");
        if (quiet || strict) {
            CU_ASSERT(fabs(e50) <= 0.05);
            CU_ASSERT(fabs(e99) <= 0.10);
        }
        cJSON_Delete(sim);
        cJSON_Delete(real);
    }
    printf("\n");
}

int main(void)
{
    const char *s = getenv("FLEETSIM_SRC");
    if (s && *s)
        snprintf(src_dir, sizeof src_dir, "%s", s);
    else if (access("realbench/models/risk-mlp.yaml", R_OK))
        snprintf(src_dir, sizeof src_dir, "%s", "..");
    snprintf(dir, sizeof dir, "/tmp/test_fidelity_%d", (int)getpid());
    char cmd[300];
    snprintf(cmd, sizeof cmd, "mkdir -p '%s'", dir);
    if (system(cmd))
        return 1;
    if (CU_initialize_registry() != CUE_SUCCESS)
        return 1;
    CU_pSuite f = CU_add_suite("fidelity", NULL, NULL);
    CU_add_test(f, "fleetsim predicts realbench serve", test_sim_predicts_serve);
    CU_basic_set_mode(CU_BRM_VERBOSE);
    CU_basic_run_tests();
    int failures = (int)CU_get_number_of_failures();
    CU_cleanup_registry();
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd))
        failures++;
    return failures != 0;
}
