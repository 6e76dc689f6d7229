/*
 * test_fidelity.c - does the simulator, given a measured profile, predict a
 * real serving loop?
 *
 * Per round (5) and per load L in {50%, 80%}:
 * 1. Measure the first half of an INT8 CPU profile of risk-mlp, batch sizes
 *    1..16, in the conditions of the serving loop that follows: the same
 *    worker count (1), threads per worker (cores - 1: one core is left to the
 *    load generator), batch sizes and rotation of inputs (4 sets); the worker
 *    busy a fraction L of the time (`--duty`: it sleeps between passes as a
 *    serving worker does), batch sizes interleaved in a shuffled order,
 *    latency_s = the mean (the mean sets the load), threads SCHED_FIFO
 *    (`--realtime`) on the CPUs the loop's worker uses (`--pin`).
 * 2. Run `realbench serve` (real queue, batcher max_size 16 / max_wait 5 ms,
 *    `--realtime --pin`: generator on CPU 0, worker on CPU 1..) at L times
 *    the capacity that half gives (workers * 16 / latency(16)), open-loop
 *    Poisson arrivals; then the profile's second half, the same way. The
 *    profile is both halves: it describes the machine over the run.
 * 3. After every measurement, run fleetsim ($FLEETSIM_BIN) on a scenario with
 *    that profile (service: {calibration, precision: int8}), the same batch
 *    settings, gpus_per_node = workers and Poisson arrivals at the same rate;
 *    the service-time noise is the profile's own spread: every repetition
 *    divided by the mean at its batch size, as empirical samples; the
 *    loop's hand-offs as the pool's round trip: the generator's lateness
 *    (its timer fires after the scheduled arrival, which the latency counts
 *    from) and the batch's dispatch (the worker's wake-up once a batch is
 *    due), both measured in the serving run (realbench/serve.c handoff_s).
 *    The queueing model has no threads to wake; on a virtual machine the two
 *    came to 30-60 us a request, 3-6% of the p50 at these loads.
 * 4. The median over the rounds of the signed relative error sim vs real
 *    must be within 5% at p50 and 10% at p99 (issue 7's bounds), per load.
 *
 * Why these conditions: on a machine whose cores are shared with other
 * processes, a benchmark that runs passes back to back is time-sliced against
 * them, while a serving worker that sleeps between batches gets the CPU
 * promptly when it wakes; measured that way the profile said batches took
 * 1.5-7x longer than they did in the loop (and medians hide it: the mean sets
 * the load). Pacing at the loop's duty cycle removes that difference;
 * SCHED_FIFO keeps other processes off the worker's CPU in both measurements
 * (when the machine refuses it the test says so and runs at the default
 * priority); pinning keeps the generator off it too, and keeps the real-time
 * worker below the kernel's real-time throttling on its CPU; measuring the
 * profile on both sides of the run follows slow drift of the machine's
 * speed; the median of rounds keeps one burst of interference (memory
 * traffic from the other core, the hypervisor) from deciding.
 *
 * FLEETSIM_FIDELITY_S: seconds per serving run (default 5);
 * FLEETSIM_FIDELITY_ROUNDS: rounds (default 5, odd). Without a fleetsim
 * binary the test says so and passes. In the sanitizer build (instrumented
 * code: its timings describe the sanitizers) one short round runs every step
 * and the bounds are not asserted, as tests/sim/test_supermarket.c does.
 */
#include "realbench.h"

#include <CUnit/Basic.h>
#include <cjson/cJSON.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

enum { MAX_ROUNDS = 9, N_LOADS = 2, MAX_BATCH = 16 };

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

/* The profile's int8 latency_s at batch b (NAN if absent). */
static double profile_at(const cJSON *p, int b)
{
    const cJSON *i8 = cJSON_GetObjectItemCaseSensitive(
        cJSON_GetObjectItemCaseSensitive(p, "precisions"), "int8");
    const cJSON *bs = cJSON_GetObjectItemCaseSensitive(i8, "batch");
    const cJSON *ls = cJSON_GetObjectItemCaseSensitive(i8, "latency_s");
    for (int i = 0; i < cJSON_GetArraySize(bs); i++)
        if ((int)cJSON_GetArrayItem(bs, i)->valuedouble == b)
            return cJSON_GetArrayItem(ls, i)->valuedouble;
    return NAN;
}

/* Noise samples for the simulator from raw CSVs: every repetition divided by
 * the mean of its batch size. Returns the count written, -1 on error. */
static int write_noise(const char *const *raw_csv, int n_csv, const char *out)
{
    static double x[MAX_BATCH + 1][4096];
    static int n[MAX_BATCH + 1];
    memset(n, 0, sizeof n);
    for (int c = 0; c < n_csv; c++) {
        FILE *f = fopen(raw_csv[c], "r");
        if (!f)
            return -1;
        char line[512], prec[32], impl[32];
        int b, rep;
        double v;
        while (fgets(line, sizeof line, f))
            if (sscanf(line, "%31[^,],%31[^,],%d,%d,%lf", prec, impl, &b, &rep, &v) == 5 &&
                b >= 1 && b <= MAX_BATCH && n[b] < 4096)
                x[b][n[b]++] = v;
        fclose(f);
    }
    FILE *o = fopen(out, "w");
    if (!o)
        return -1;
    int total = 0;
    for (int b = 1; b <= MAX_BATCH; b++) {
        double s = 0;
        for (int i = 0; i < n[b]; i++)
            s += x[b][i];
        for (int i = 0; i < n[b]; i++, total++)
            fprintf(o, "%.6f\n", x[b][i] / (s / n[b]));
    }
    return fclose(o) ? -1 : total;
}

/* Mean relative difference, weighted by batch count, between the loop's
 * measured service times and the profile: did the batches run as fast as
 * the profile said? (reported, not asserted) */
static double loop_vs_profile(const cJSON *real, const cJSON *prof)
{
    const cJSON *sv = cJSON_GetObjectItemCaseSensitive(real, "service_s");
    const cJSON *sb = cJSON_GetObjectItemCaseSensitive(sv, "batch");
    const cJSON *sm = cJSON_GetObjectItemCaseSensitive(sv, "mean");
    const cJSON *sc = cJSON_GetObjectItemCaseSensitive(sv, "count");
    double d = 0, c = 0;
    for (int i = 0; i < cJSON_GetArraySize(sb); i++) {
        int b = (int)cJSON_GetArrayItem(sb, i)->valuedouble;
        double w = cJSON_GetArrayItem(sc, i)->valuedouble, pl = profile_at(prof, b);
        if (isnan(pl))
            continue;
        d += w * (cJSON_GetArrayItem(sm, i)->valuedouble - pl) / pl;
        c += w;
    }
    return c > 0 ? d / c : NAN;
}

static int cmp_dbl(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double median_of(const double *v, int n)
{
    double c[MAX_ROUNDS];
    memcpy(c, v, (size_t)n * sizeof *c);
    qsort(c, (size_t)n, sizeof *c, cmp_dbl);
    return n % 2 ? c[n / 2] : (c[n / 2 - 1] + c[n / 2]) / 2;
}

/* dir/fidelity-K.yaml, K = round * N_LOADS + load */
static void write_scenario(int r, int li, const char *seed, const char *profile,
                           const char *noise, int workers, const char *qps, double handoff_s)
{
    char yaml[300];
    int k = r * N_LOADS + li;
    snprintf(yaml, sizeof yaml, "%s/fidelity-%d.yaml", dir, k);
    FILE *f = fopen(yaml, "w");
    CU_ASSERT_PTR_NOT_NULL_FATAL(f);
    fprintf(f, "name: fidelity-%d\nseed: %s\nduration: 30s\nmodels:\n  risk:\n"
               "    service: {calibration: %s, precision: int8,\n"
               "              noise: {distribution: empirical, samples: %s}}\n"
               "    batch: {max_size: 16, max_wait: 5ms}\n"
               "pools:\n  cpu: {model: risk, replicas: 1, gpus_per_node: %d, queue_capacity: 10000000,\n"
               "        timeout: 0s, link: {latency: %.9fs, bandwidth: 1000Gbps}}\n"
               "traffic:\n  - {name: load, pool: cpu, size: 0B, response_size: 0B,\n"
               "     arrivals: {process: poisson, rate: %s}}\n",
            k, seed, profile, noise, workers, handoff_s / 2, qps);
    fclose(f);
}

static void test_sim_predicts_serve(void)
{
    const char *bin = getenv("FLEETSIM_BIN");
    if (!bin || access(bin, X_OK)) {
        printf("\n  no fleetsim binary ($FLEETSIM_BIN); fidelity not measured\n");
        return;
    }
    const char *ds = getenv("FLEETSIM_FIDELITY_S"), *rs = getenv("FLEETSIM_FIDELITY_ROUNDS");
    double dur = ds ? atof(ds) : 5;
    int rounds = rs ? atoi(rs) : 5;
    if (!(dur >= 3))
        dur = 3;
    if (rounds < 1)
        rounds = 1;
    if (rounds > MAX_ROUNDS)
        rounds = MAX_ROUNDS;
#ifdef FLEETSIM_SANITIZE
    /* Instrumented code: its timings describe the sanitizers, not the
     * model, so this build runs the whole pipeline once, briefly, and checks
     * that every step works; the bounds are asserted by the normal build. */
    const int assert_bounds = 0;
    rounds = 1;
    dur = 3;
    char *reps_half = "5";
#else
    const int assert_bounds = 1;
    char *reps_half = "20"; /* repetitions per batch size in each half of a profile */
#endif
    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    const int workers = 1;
    char threads[24], wk[24], model[1200];
    snprintf(threads, sizeof threads, "%ld", cores > 1 ? cores - 1 : 1);
    snprintf(wk, sizeof wk, "%d", workers);
    snprintf(model, sizeof model, "%s/realbench/models/risk-mlp.yaml", src_dir);
    FILE *la = fopen("/proc/loadavg", "r");
    double load1 = NAN;
    if (la) {
        if (fscanf(la, "%lf", &load1) != 1)
            load1 = NAN;
        fclose(la);
    }
    printf("\n  %d round(s), %.0f s per serving run, %ld cores, load average %.2f at the start",
           rounds, dur, cores, load1);

    const double loads[N_LOADS] = {0.5, 0.8};
    double e50[N_LOADS][MAX_ROUNDS], e90[N_LOADS][MAX_ROUNDS], e99[N_LOADS][MAX_ROUNDS];
    double qps_of[N_LOADS][MAX_ROUNDS], drift[N_LOADS][MAX_ROUNDS][2];
    int done[N_LOADS] = {0, 0};
    for (int r = 0; r < rounds; r++) {
        for (int li = 0; li < N_LOADS; li++) {
            char profile[300], prof_a[300], prof_b[300], raw_a[300], raw_b[300], noise[300];
            char duty[32], seed[32], q[32], d[32], out[300];
            snprintf(profile, sizeof profile, "%s/profile-%d-%d.json", dir, r, li);
            snprintf(prof_a, sizeof prof_a, "%s/profile-%d-%d-before.json", dir, r, li);
            snprintf(prof_b, sizeof prof_b, "%s/profile-%d-%d-after.json", dir, r, li);
            snprintf(raw_a, sizeof raw_a, "%s/profile-%d-%d-before.csv", dir, r, li);
            snprintf(raw_b, sizeof raw_b, "%s/profile-%d-%d-after.csv", dir, r, li);
            snprintf(noise, sizeof noise, "%s/noise-%d-%d.csv", dir, r, li);
            snprintf(duty, sizeof duty, "%.2f", loads[li]);
            snprintf(seed, sizeof seed, "%d", 11 + 10 * r + li);
            /* 1. the profile, in the loop's conditions: its first half now */
            char *cpu[] = {"realbench", "cpu", "--model", model, "--out", prof_a, "--raw", raw_a,
                           "--precisions", "int8",
                           "--batches", "1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16",
                           "--reps", reps_half, "--warmup", "3", "--rotate", "4",
                           "--threads", threads, "--workers", wk, "--duty", duty, "--interleave",
                           "--center", "mean", "--realtime", "--pin", "--budget-s", "0", "--seed", seed,
                           "--quiet", NULL};
            const int ncpu = (int)(sizeof cpu / sizeof *cpu) - 1;
            CU_ASSERT_EQUAL_FATAL(rb_main(ncpu, cpu), 0);
            cJSON *pa = read_json(prof_a);
            CU_ASSERT_PTR_NOT_NULL_FATAL(pa);
            double lmax = profile_at(pa, MAX_BATCH);
            CU_ASSERT_FATAL(lmax > 0);

            /* 2. the serving loop at L times the capacity it gives */
            double qps = loads[li] * workers * MAX_BATCH / lmax;
            snprintf(q, sizeof q, "%.3f", qps);
            snprintf(d, sizeof d, "%.1f", dur);
            snprintf(out, sizeof out, "%s/serve-%d-%d.json", dir, r, li);
            char *serve[] = {"realbench", "serve", "--model", model, "--qps", q, "--duration-s", d,
                             "--warmup-s", "0.5", "--max-batch", "16", "--max-wait-ms", "5",
                             "--workers", wk, "--threads", threads, "--seed", seed, "--realtime", "--pin",
                             "--out", out, NULL};
            CU_ASSERT_EQUAL_FATAL(rb_main((int)(sizeof serve / sizeof *serve) - 1, serve), 0);
            cJSON *real = read_json(out);
            CU_ASSERT_PTR_NOT_NULL_FATAL(real);

            /* the profile's second half, right after; the simulator gets both */
            cpu[5] = prof_b;
            cpu[7] = raw_b;
            snprintf(seed, sizeof seed, "%d", 1011 + 10 * r + li);
            CU_ASSERT_EQUAL_FATAL(rb_main(ncpu, cpu), 0);
            char *merge[] = {"realbench", "profile", "--from-csv", raw_a, raw_b, "--out", profile,
                             NULL};
            CU_ASSERT_EQUAL_FATAL(rb_main((int)(sizeof merge / sizeof *merge) - 1, merge), 0);
            cJSON *prof = read_json(profile);
            CU_ASSERT_PTR_NOT_NULL_FATAL(prof);
            const char *raws[2] = {raw_a, raw_b};
            CU_ASSERT_FATAL(write_noise(raws, 2, noise) >= 16 * 2 * atoi(reps_half));

            /* 3. the scenario: the same batcher, workers and rate, and the
             * profile of both halves */
            double handoff = rb_serve_handoff_s(real);
            CU_ASSERT_FATAL(handoff >= 0);
            write_scenario(r, li, seed, profile, noise, workers, q, handoff);
            qps_of[li][r] = qps;
            drift[li][r][0] = loop_vs_profile(real, prof);
            drift[li][r][1] = loop_vs_profile(real, pa);
            cJSON_Delete(real);
            cJSON_Delete(prof);
            cJSON_Delete(pa);
        }
    }
    /* 4. the simulations, after every measurement (so that they cannot
     * disturb one), two at a time */
    const int n_sims = rounds * N_LOADS;
    for (int j = 0; j < n_sims; j += 2) {
        char cmd[4096] = "", one[1024];
        for (int k = j; k < j + 2 && k < n_sims; k++) {
            snprintf(one, sizeof one, "'%s' run '%s/fidelity-%d.yaml' --out '%s/sim-%d' "
                     "> '%s/sim-%d.log' 2>&1 & ", bin, dir, k, dir, k, dir, k);
            strncat(cmd, one, sizeof cmd - strlen(cmd) - 1);
        }
        strncat(cmd, "wait", sizeof cmd - strlen(cmd) - 1);
        CU_ASSERT_EQUAL(system(cmd), 0);
    }
    for (int r = 0; r < rounds; r++)
        for (int li = 0; li < N_LOADS; li++) {
            char path[400];
            snprintf(path, sizeof path, "%s/serve-%d-%d.json", dir, r, li);
            cJSON *real = read_json(path);
            snprintf(path, sizeof path, "%s/sim-%d/summary.json", dir, r * N_LOADS + li);
            cJSON *sim = read_json(path);
            CU_ASSERT_PTR_NOT_NULL(real);
            CU_ASSERT_PTR_NOT_NULL(sim);
            if (real && sim) {
                double r50 = num(real, "latency_s", "p50"), r90 = num(real, "latency_s", "p90"),
                       r99 = num(real, "latency_s", "p99");
                double s50 = num(sim, "latency_s", "p50"), s90 = num(sim, "latency_s", "p90"),
                       s99 = num(sim, "latency_s", "p99");
                int k = done[li]++;
                e50[li][k] = (s50 - r50) / r50;
                e90[li][k] = (s90 - r90) / r90;
                e99[li][k] = (s99 - r99) / r99;
                const char *sched = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(
                    cJSON_GetObjectItemCaseSensitive(real, "settings"), "sched"));
                int fifo = sched && !strncmp(sched, "SCHED_FIFO", 10);
                printf("\n  round %d load %.0f%% (%.0f QPS, util %.2f, mean batch %.1f): "
                       "ms real/sim p50 %.3f/%.3f (%+.1f%%) p90 %.3f/%.3f (%+.1f%%) "
                       "p99 %.3f/%.3f (%+.1f%%); loop service vs profile %+.1f%% "
                       "(vs its first half alone %+.1f%%); its speed over 0.5 s windows: "
                       "slowest %+.1f%%, fastest %+.1f%%%s%s",
                       r, loads[li] * 100, qps_of[li][r], num(real, "utilization", NULL),
                       num(real, "mean_batch_size", NULL), r50 * 1e3, s50 * 1e3, e50[li][k] * 100,
                       r90 * 1e3, s90 * 1e3, e90[li][k] * 100, r99 * 1e3, s99 * 1e3,
                       e99[li][k] * 100, drift[li][r][0] * 100, drift[li][r][1] * 100,
                       (num(real, "service_windows", "slowest") - 1) * 100,
                       (num(real, "service_windows", "fastest") - 1) * 100,
                       fifo ? "" : "; scheduling: ", fifo ? "" : sched ? sched : "?");
            }
            cJSON_Delete(sim);
            cJSON_Delete(real);
        }
    for (int li = 0; li < N_LOADS; li++) {
        CU_ASSERT_EQUAL(done[li], rounds);
        if (!done[li])
            continue;
        double m50 = median_of(e50[li], done[li]), m90 = median_of(e90[li], done[li]),
               m99 = median_of(e99[li], done[li]);
        printf("\n  load %.0f%%: median over %d round(s): p50 %+.1f%% (bound 5%%), "
               "p90 %+.1f%%, p99 %+.1f%% (bound 10%%)",
               loads[li] * 100, done[li], m50 * 100, m90 * 100, m99 * 100);
        if (assert_bounds) {
            CU_ASSERT(fabs(m50) <= 0.05);
            CU_ASSERT(fabs(m99) <= 0.10);
        } else {
            CU_ASSERT(isfinite(m50) && isfinite(m99)); /* every step ran and produced quantiles */
            printf(" (sanitizer build: bounds not asserted)");
        }
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
    const char *keep = getenv("FLEETSIM_FIDELITY_KEEP");
    if (keep && *keep)
        printf("files kept in %s\n", dir);
    else {
        snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
        if (system(cmd))
            failures++;
    }
    return failures != 0;
}
