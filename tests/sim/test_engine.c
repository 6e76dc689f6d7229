/*
 * test_engine.c - whole runs through the fleetsim binary: determinism,
 * request conservation under overload, the bank before/after pair, batching
 * arithmetic, exit codes and output files; when a run drops SimGrid's
 * stack guard pages.
 */
#include "engine.h"
#include "scenario.h"
#include "testutil.h"

#include <CUnit/Basic.h>

#include <math.h>

static const char *OVERLOAD =
    "name: overload\n"
    "duration: 600s\n"
    "interval: 30s\n"
    "models:\n"
    "  m:\n"
    "    service: {distribution: exponential, base: 20ms, per_item: 5ms}\n"
    "    batch: {max_size: 8, max_wait: 10ms}\n"
    "pools:\n"
    "  p:\n"
    "    model: m\n"
    "    replicas: 2\n"
    "    gpus_per_node: 2\n"
    "    queue_capacity: 50\n"
    "    timeout: 300ms\n"
    "traffic:\n"
    "  - name: t\n"
    "    pool: p\n"
    "    arrivals: {process: gamma, cv: 2, rate: [{at: 0s, qps: 100}, {at: 100s, qps: 2000, ramp: 60s}]}\n"
    "load_balancer: {policy: random}\n";

static void test_conservation_under_overload(void)
{
    int rc;
    char *dir = tu_run_yaml(OVERLOAD, NULL, &rc);
    CU_ASSERT_EQUAL(rc, 0);
    cJSON *j = tu_out_summary(dir);
    CU_ASSERT_PTR_NOT_NULL_FATAL(j);
    double gen = tu_num(j, "requests.generated");
    CU_ASSERT(gen > 100000);
    CU_ASSERT_EQUAL(gen, tu_sum_buckets(j, "requests"));
    CU_ASSERT_EQUAL(tu_num(j, "measured.generated"), tu_sum_buckets(j, "measured"));
    CU_ASSERT_EQUAL(gen, tu_sum_buckets(j, "pools.p.requests"));
    /* 2000 QPS against ~4 GPUs x 8 / 60 ms ~ 530 QPS: both error kinds appear */
    CU_ASSERT(tu_num(j, "requests.rejected") > 1000);
    CU_ASSERT(tu_num(j, "requests.timed_out") > 100);
    CU_ASSERT(tu_num(j, "availability") < 0.6);
    /* a completed request never exceeded the client timeout */
    CU_ASSERT(tu_num(j, "latency_s.max") <= 0.300 + 1e-9);
    cJSON_Delete(j);
    /* saturated from the ramp on: all 4 GPUs busy in the last interval */
    char p[4096];
    snprintf(p, sizeof p, "%s/out/timeseries.csv", dir);
    char *csv = tu_read(p);
    CU_ASSERT_PTR_NOT_NULL_FATAL(csv);
    char *last = csv + strlen(csv) - 1;
    *last = '\0';
    last = strrchr(csv, '\n') + 1;
    double f[11] = { 0 };
    CU_ASSERT_EQUAL(sscanf(last, "%lf,%lf,%lf,%lf,%lf,%lf,%lf,%lf,%lf,%lf,%lf", &f[0], &f[1], &f[2],
                           &f[3], &f[4], &f[5], &f[6], &f[7], &f[8], &f[9], &f[10]), 11);
    CU_ASSERT_DOUBLE_EQUAL(f[0], 570, 1e-9);  /* last interval starts at 570 s */
    CU_ASSERT(f[1] > 1900 && f[1] < 2100);    /* offered QPS */
    CU_ASSERT(f[9] > 3.95 && f[9] <= 4.0);    /* busy GPUs */
    CU_ASSERT_EQUAL(f[10], 2);                /* replicas */
    free(csv);
    tu_rm_rf(dir);
    free(dir);
}

/* Removes the wall_time_s and peak_rss_mb lines, measures of the machine
 * and the only values allowed to differ. */
static void strip_line(char *text, const char *key)
{
    char *p = strstr(text, key);
    if (!p)
        return;
    char *e = strchr(p, '\n');
    if (e)
        memmove(p, e + 1, strlen(e + 1) + 1);
}

static void strip_wall_time(char *text)
{
    strip_line(text, "\"wall_time_s\"");
    strip_line(text, "\"peak_rss_mb\"");
}

static void test_determinism(void)
{
    int rc1, rc2, rc3;
    char *a = tu_run_yaml(OVERLOAD, "--seed 7", &rc1);
    char *b = tu_run_yaml(OVERLOAD, "--seed 7", &rc2);
    char *c = tu_run_yaml(OVERLOAD, "--seed 8", &rc3);
    CU_ASSERT(rc1 == 0 && rc2 == 0 && rc3 == 0);
    char pa[4096], pb[4096], pc[4096];
    snprintf(pa, sizeof pa, "%s/out/summary.json", a);
    snprintf(pb, sizeof pb, "%s/out/summary.json", b);
    snprintf(pc, sizeof pc, "%s/out/summary.json", c);
    char *ta = tu_read(pa), *tb = tu_read(pb), *tc = tu_read(pc);
    CU_ASSERT_PTR_NOT_NULL_FATAL(ta);
    CU_ASSERT_PTR_NOT_NULL_FATAL(tb);
    CU_ASSERT_PTR_NOT_NULL_FATAL(tc);
    strip_wall_time(ta);
    strip_wall_time(tb);
    strip_wall_time(tc);
    CU_ASSERT_STRING_EQUAL(ta, tb);
    CU_ASSERT(strcmp(ta, tc) != 0);
    snprintf(pa, sizeof pa, "%s/out/timeseries.csv", a);
    snprintf(pb, sizeof pb, "%s/out/timeseries.csv", b);
    char *sa = tu_read(pa), *sb = tu_read(pb);
    CU_ASSERT(sa && sb && !strcmp(sa, sb));
    free(sa);
    free(sb);
    free(ta);
    free(tb);
    free(tc);
    tu_rm_rf(a);
    tu_rm_rf(b);
    tu_rm_rf(c);
    free(a);
    free(b);
    free(c);
}

/* Deterministic arrivals and service: every number is known exactly. The
 * rate starts at 0.05 s, so arrivals come at 0.15, 0.25, ... 99.95 s (999 of
 * them: a deterministic process's first arrival is one gap after its start).
 * One node, batch 4 with a window longer than the gap: each batch holds 4
 * requests arriving 0.1 s apart and runs 0.2 + 0.05 * 4 = 0.4 s from the 4th
 * arrival, so latencies are 0.7, 0.6, 0.5, 0.4 s (+ 2 x 1 ms link), and the
 * GPU is busy from 0.45 s on. At the end 4 requests run in a batch started
 * at 99.65 s and 3 wait for a 4th: 7 in flight. */
static void test_batching_exact(void)
{
    const char *yaml =
        "name: batch\n"
        "duration: 100s\n"
        "interval: 10s\n"
        "models:\n"
        "  m:\n"
        "    service: {distribution: deterministic, base: 200ms, per_item: 50ms}\n"
        "    batch: {max_size: 4, max_wait: 1s}\n"
        "pools:\n"
        "  p: {model: m, replicas: 1, link: {latency: 1ms, bandwidth: 1GBps}}\n"
        "traffic:\n"
        "  - {name: t, pool: p, size: 0B, response_size: 0B,\n"
        "     arrivals: {process: deterministic, rate: [{at: 0.05s, qps: 10}]}}\n";
    int rc;
    char *dir = tu_run_yaml(yaml, NULL, &rc);
    CU_ASSERT_EQUAL(rc, 0);
    cJSON *j = tu_out_summary(dir);
    CU_ASSERT_PTR_NOT_NULL_FATAL(j);
    CU_ASSERT_EQUAL(tu_num(j, "requests.generated"), 999);
    CU_ASSERT_EQUAL(tu_num(j, "requests.completed"), 992);
    CU_ASSERT_EQUAL(tu_num(j, "requests.in_flight_at_end"), 7);
    CU_ASSERT_DOUBLE_EQUAL(tu_num(j, "latency_s.mean"), 0.552, 1e-6);
    CU_ASSERT_DOUBLE_EQUAL(tu_num(j, "latency_s.max"), 0.702, 1e-6);
    /* busy from 0.45 s to the end: 248 batches of 0.4 s and 0.35 s of the last */
    CU_ASSERT_DOUBLE_EQUAL(tu_num(j, "pools.p.utilization"), (248 * 0.4 + 0.35) / 100, 1e-6);
    cJSON_Delete(j);
    tu_rm_rf(dir);
    free(dir);
}

static void test_bank_before_after(void)
{
    /* the day's expected arrivals: the integral of the scenario's own profile */
    char path[4096];
    snprintf(path, sizeof path, "%s/scenarios/bank-peak.yaml", tu_src());
    sc_scenario *sc = sc_load(path, NULL, 0, stderr);
    CU_ASSERT_PTR_NOT_NULL_FATAL(sc);
    sim_rate *rate = sim_rate_new(sc->traffic[0].rate, sc->traffic[0].n_rate);
    double expect = sim_rate_cumulative(rate, sc->duration_s);
    sim_rate_free(rate);
    sc_free(sc);
    CU_ASSERT(expect > 95000 && expect < 105000); /* about 100,000 a day */
    char *dir = tu_tmpdir();
    const char *names[] = { "bank-single-node", "bank-peak" };
    double avail[2], errors[2];
    for (int i = 0; i < 2; i++) {
        char log[4096];
        snprintf(log, sizeof log, "%s/log%d", dir, i);
        int rc = tu_sh(log, "'%s' run '%s/scenarios/%s.yaml' --quiet --out '%s/%d'", tu_bin(),
                       tu_src(), names[i], dir, i);
        CU_ASSERT_EQUAL_FATAL(rc, 0);
        char out[4096];
        snprintf(out, sizeof out, "%s/%d", dir, i);
        cJSON *j = tu_summary(out);
        CU_ASSERT_PTR_NOT_NULL_FATAL(j);
        double gen = tu_num(j, "requests.generated");
        CU_ASSERT(fabs(gen - expect) < 4 * sqrt(expect)); /* Poisson count, 4 sigma */
        avail[i] = tu_num(j, "availability");
        errors[i] = tu_num(j, "requests.rejected") + tu_num(j, "requests.timed_out") +
                    tu_num(j, "requests.failed");
        cJSON_Delete(j);
    }
    CU_ASSERT(errors[0] > 1000);   /* before: visible 503/504s at the spike */
    CU_ASSERT(avail[0] < 0.99);
    CU_ASSERT_EQUAL(errors[1], 0); /* after: the spike is absorbed */
    CU_ASSERT_EQUAL(avail[1], 1.0);
    tu_rm_rf(dir);
    free(dir);
}

static void test_exit_codes(void)
{
    char *dir = tu_tmpdir();
    char path[4096], log[4096];
    snprintf(path, sizeof path, "%s/bad.yaml", dir);
    snprintf(log, sizeof log, "%s/log", dir);
    tu_write(path, "name: x\nduration: 10s\nmodels:\n  m:\n    service: {mean: -1s}\n");
    CU_ASSERT_EQUAL(tu_sh(log, "'%s' run '%s' --quiet", tu_bin(), path), 2);
    char *msg = tu_read(log);
    CU_ASSERT_PTR_NOT_NULL(msg);
    if (msg) { /* file:line:col of the offending value */
        char want[4200];
        snprintf(want, sizeof want, "%s:5:", path);
        CU_ASSERT_PTR_NOT_NULL(strstr(msg, want));
        free(msg);
    }
    CU_ASSERT_EQUAL(tu_sh(log, "'%s' run /nonexistent.yaml", tu_bin()), 2);
    CU_ASSERT_EQUAL(tu_sh(log, "'%s' frobnicate", tu_bin()), 2);
    CU_ASSERT_EQUAL(tu_sh(log, "'%s' run '%s/scenarios/bank-peak.yaml' --seed -3", tu_bin(), tu_src()), 2);
    CU_ASSERT_EQUAL(tu_sh(log, "'%s' validate '%s/scenarios/bank-peak.yaml' --set pools.gpu.replicas=abc",
                          tu_bin(), tu_src()), 2);
    CU_ASSERT_EQUAL(tu_sh(log, "'%s' validate '%s/scenarios/bank-peak.yaml'", tu_bin(), tu_src()), 0);
    CU_ASSERT_EQUAL(tu_sh(log, "'%s' list", tu_bin()), 0);
    msg = tu_read(log);
    CU_ASSERT(msg && strstr(msg, "least_conn") && strstr(msg, "round_robin") && strstr(msg, "random"));
    free(msg);
    CU_ASSERT_EQUAL(tu_sh(log, "'%s' --help", tu_bin()), 0);
    msg = tu_read(log);
    CU_ASSERT(msg && strstr(msg, "validate") && strstr(msg, "calibrate"));
    free(msg);
    tu_rm_rf(dir);
    free(dir);
}

static void test_outputs(void)
{
    int rc;
    char *dir = tu_run_yaml(OVERLOAD, "--set duration=120s", &rc);
    CU_ASSERT_EQUAL(rc, 0);
    char p[4096];
    snprintf(p, sizeof p, "%s/out/timeseries.csv", dir);
    char *csv = tu_read(p);
    CU_ASSERT_PTR_NOT_NULL_FATAL(csv);
    /* header + 4 intervals of 30 s */
    int lines = 0;
    for (char *c = csv; *c; c++)
        lines += *c == '\n';
    CU_ASSERT_EQUAL(lines, 5);
    CU_ASSERT(!strncmp(csv, "time_s,offered_qps,completed,rejected,failed,timed_out", 53));
    free(csv);
    snprintf(p, sizeof p, "%s/out/events.jsonl", dir);
    char *ev = tu_read(p);
    CU_ASSERT(ev && strstr(ev, "\"run_start\"") && strstr(ev, "\"run_end\""));
    free(ev);
    cJSON *j = tu_out_summary(dir);
    CU_ASSERT_PTR_NOT_NULL_FATAL(j);
    CU_ASSERT_EQUAL(tu_num(j, "sim_time_s"), 120);
    /* the process's peak resident set: SimGrid and the world take some MB,
     * and this four-GPU run far less than a GB */
    double rss_mb = tu_num(j, "peak_rss_mb");
    CU_ASSERT(rss_mb > 1 && rss_mb < 1024);
    const char *keys[] = { "scenario", "seed", "wall_time_s", "peak_rss_mb", "requests", "latency_s", "availability",
                           "throughput_qps", "pools", "cost", "alerts", "scaling_events", "faults" };
    for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++)
        CU_ASSERT_PTR_NOT_NULL(cJSON_GetObjectItemCaseSensitive(j, keys[i]));
    /* energy: 4 GPUs between 50 W idle and 700 W busy for 120 s */
    double kwh = tu_num(j, "cost.energy_kwh");
    CU_ASSERT(kwh > 4 * 70 * 120 / 3.6e6 && kwh <= 4 * 700 * 120 / 3.6e6 + 1e-9);
    CU_ASSERT_DOUBLE_EQUAL(tu_num(j, "cost.gpu_hours"), 4 * 120 / 3600.0, 1e-9);
    cJSON_Delete(j);
    tu_rm_rf(dir);
    free(dir);
}

/* The peak interval's busy share counts the GPUs that could serve during
 * it, not those left at its end: two nodes, 1 s requests, 4 req/s over
 * [20, 30) s, gpu/1 crashes at 25 s. In the interval 14.75 GPU-seconds
 * are busy of 15 serving (2 x 5 + 1 x 5): 98.3%, not 1.475 / 1 node. */
static void test_peak_busy_share(void)
{
    int rc;
    char *dir = tu_run_yaml(
        "name: p\n"
        "duration: 60s\n"
        "interval: 10s\n"
        "models:\n"
        "  m: {service: {distribution: deterministic, mean: 1s}}\n"
        "pools:\n"
        "  gpu: {model: m, replicas: 2, queue_capacity: 1000, timeout: 100s,\n"
        "        link: {latency: 0s, bandwidth: 100Gbps}}\n"
        "traffic:\n"
        "  - {name: x, pool: gpu, size: 0B, response_size: 0B, arrivals: {process: deterministic,\n"
        "     rate: [{at: 0s, qps: 1}, {at: 20s, qps: 4}, {at: 30s, qps: 1}]}}\n"
        "load_balancer: {policy: round_robin, retries: {on: off}}\n"
        "chaos:\n"
        "  - {fault: node_crash, target: gpu/1, at: 25s}\n",
        NULL, &rc);
    cJSON *j = tu_out_summary(dir);
    CU_ASSERT_PTR_NOT_NULL_FATAL(j);
    CU_ASSERT_DOUBLE_EQUAL(tu_num(j, "peak.t_s"), 20, 0);
    CU_ASSERT_DOUBLE_EQUAL(tu_num(j, "peak.offered_qps"), 4, 1e-12);
    CU_ASSERT_DOUBLE_EQUAL(tu_num(j, "peak.pools.gpu.busy_gpus"), 1.475, 1e-9);
    CU_ASSERT_DOUBLE_EQUAL(tu_num(j, "peak.pools.gpu.utilization"), 14.75 / 15, 1e-9);
    CU_ASSERT_EQUAL(tu_num(j, "peak.pools.gpu.replicas"), 1);
    cJSON_Delete(j);
    tu_done(dir);
}

/* Guard pages go only when the actors' stacks would pass the mapping
 * limit: the 10,000 x 8 GPU fleet (80,000 batch-server actors) at Linux's
 * default, not the million-QPS fleet (1,250 x 8); the bound is one actor
 * per GPU slot + 4 per pool + 1 per traffic class + 64, taken twice, plus
 * 10,000 reserved mappings. */
static void test_unguarded_stacks(void)
{
    sc_pool pool;
    memset(&pool, 0, sizeof pool);
    sc_scenario sc;
    memset(&sc, 0, sizeof sc);
    sc.pools = &pool;
    sc.n_pools = 1;
    sc.n_traffic = 1;
    pool.replicas = 10000;
    pool.gpus_per_node = pool.node_gpus = 8;
    CU_ASSERT_EQUAL(sim_unguarded_stacks(&sc, 65530), 1);
    CU_ASSERT_EQUAL(sim_unguarded_stacks(&sc, 1000000), 0); /* a raised limit */
    pool.replicas = 1250;
    CU_ASSERT_EQUAL(sim_unguarded_stacks(&sc, 65530), 0);
    /* the boundary: 100 x 1 GPU: 2 x (100 + 4 + 1 + 64) + 10,000 = 10,338 */
    pool.replicas = 100;
    pool.gpus_per_node = pool.node_gpus = 1;
    CU_ASSERT_EQUAL(sim_unguarded_stacks(&sc, 10338), 0);
    CU_ASSERT_EQUAL(sim_unguarded_stacks(&sc, 10337), 1);
    /* slots, not replicas: an autoscaled pool may grow to max_replicas */
    pool.max_replicas = 40000;
    pool.gpus_per_node = pool.node_gpus = 8;
    CU_ASSERT_EQUAL(sim_unguarded_stacks(&sc, 65530), 1);
}

int main(void)
{
    if (CU_initialize_registry() != CUE_SUCCESS)
        return 1;
    CU_pSuite s = CU_add_suite("engine", NULL, NULL);
    CU_add_test(s, "conservation under overload", test_conservation_under_overload);
    CU_add_test(s, "same seed, same results", test_determinism);
    CU_add_test(s, "the peak interval's busy share", test_peak_busy_share);
    CU_add_test(s, "batching arithmetic", test_batching_exact);
    CU_add_test(s, "bank: before fails, after holds", test_bank_before_after);
    CU_add_test(s, "exit codes and messages", test_exit_codes);
    CU_add_test(s, "output files", test_outputs);
    CU_add_test(s, "stack guard pages dropped past the mapping limit", test_unguarded_stacks);
    CU_basic_set_mode(CU_BRM_VERBOSE);
    CU_basic_run_tests();
    unsigned fails = CU_get_number_of_failures();
    CU_cleanup_registry();
    return fails != 0;
}
