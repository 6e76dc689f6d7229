/*
 * test_chaos2.c - fault starts (`after`, `when`), bandwidth cuts, retry
 * storms, stale metrics and profile files, run through the fleetsim binary on small
 * deterministic scenarios whose results are computed by hand below.
 *
 * Common ground: deterministic arrivals at 10 QPS from a rate point at
 * 0.05 s (a deterministic process's first arrival is one gap later), so the
 * arrivals are at 0.15, 0.25, ... s, and deterministic 10 ms service. Fault
 * times fall between arrivals, so no result depends on the order of ties.
 */
#include "testutil.h"

#include <CUnit/Basic.h>

#include <math.h>

/* ---------- running and reading back ---------- */

/* Writes `yaml` (and the HPA manifest, for the autoscaled case) to a fresh
 * directory and runs it; results in DIR/out, stderr in DIR/log. */
static char *run_yaml_with(const char *yaml, const char *file, const char *text, int *rc)
{
    char *dir = tu_tmpdir();
    char path[4096], log[4096];
    if (file) {
        snprintf(path, sizeof path, "%s/%s", dir, file);
        tu_write(path, text);
    }
    snprintf(path, sizeof path, "%s/hpa.yaml", dir);
    tu_write(path, "apiVersion: autoscaling/v2\n"
                   "kind: HorizontalPodAutoscaler\n"
                   "metadata: {name: t}\n"
                   "spec:\n"
                   "  scaleTargetRef: {apiVersion: apps/v1, kind: Deployment, name: t}\n"
                   "  minReplicas: 1\n"
                   "  maxReplicas: 6\n"
                   "  metrics:\n"
                   "    - type: Resource\n"
                   "      resource: {name: cpu, target: {type: Utilization, averageUtilization: 50}}\n");
    snprintf(path, sizeof path, "%s/s.yaml", dir);
    snprintf(log, sizeof log, "%s/log", dir);
    tu_write(path, yaml);
    *rc = tu_sh(log, "'%s' run '%s' --quiet --out '%s/out'", tu_bin(), path, dir);
    return dir;
}

static char *run_yaml(const char *yaml, int *rc)
{
    return run_yaml_with(yaml, NULL, NULL, rc);
}

static char *log_of(const char *dir)
{
    char log[4096];
    snprintf(log, sizeof log, "%s/log", dir);
    return tu_read(log);
}

/* Every request in exactly one bucket, overall, after warm-up and per pool. */
static void assert_conserved(const cJSON *j)
{
    double gen = tu_num(j, "requests.generated");
    CU_ASSERT(gen > 0);
    CU_ASSERT_EQUAL(gen, tu_sum_buckets(j, "requests"));
    CU_ASSERT_EQUAL(tu_num(j, "measured.generated"), tu_sum_buckets(j, "measured"));
    const cJSON *p;
    cJSON_ArrayForEach(p, cJSON_GetObjectItemCaseSensitive(j, "pools"))
        CU_ASSERT_EQUAL(tu_num(p, "requests.generated"), tu_sum_buckets(p, "requests"));
}

static const cJSON *fault_at(const cJSON *j, int i)
{
    return cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(j, "faults"), i);
}

static int n_faults(const cJSON *j)
{
    return cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(j, "faults"));
}

static const char *str_of(const cJSON *o, const char *key)
{
    const cJSON *s = cJSON_GetObjectItemCaseSensitive(o, key);
    return cJSON_IsString(s) ? s->valuestring : "";
}

#define HEAD                                                                   \
    "interval: 1s\n"                                                           \
    "models:\n"                                                                \
    "  m: {service: {distribution: deterministic, mean: 10ms}}\n"

/* ---------- when: the offered load crosses a threshold ---------- */

/* 10 QPS until 20 s, then 30 QPS: the arrivals after the step are at
 * 20 + (m + 0.5) / 30 s, m = 0, 1, ... (the step leaves half a gap of
 * operational time). `when: {offered_qps_above: 20, window: 2s}` fires at
 * the first arrival with more than 20 x 2 = 40 arrivals in the last 2 s:
 * at m = 30 (t = 21.01667 s) the window (19.01667, 21.01667] holds the 31
 * arrivals m = 0..30 and the 10 of 19.05 ... 19.95 s = 41; at m = 29 it held
 * 30 + 10 = 40, not more. The latency fault then lasts 5 s; the partition
 * is `after: 7s`: 7 s after the latency fault's start (known only at run
 * time), for 1 s, failing the 30 arrivals of that second (retries cannot
 * help: the whole pool is cut off). The condition holds on afterwards, but
 * the fault fires once. */
static const char *WHEN =
    "name: when\n"
    "duration: 40s\n" HEAD
    "pools:\n"
    "  p: {model: m, replicas: 2, link: {latency: 1ms, bandwidth: 1GBps}}\n"
    "traffic:\n"
    "  - {name: t, pool: p, size: 0B, response_size: 0B,\n"
    "     arrivals: {process: deterministic, rate: [{at: 0.05s, qps: 10}, {at: 20s, qps: 30}]}}\n"
    "load_balancer: {policy: round_robin}\n"
    "chaos:\n"
    "  - {when: {offered_qps_above: %s, window: 2s}, fault: network_latency, latency: 100ms,\n"
    "     duration: 5s}\n"
    "  - {after: 7s, fault: partition, duration: 1s}\n";

static void test_when_offered_load(void)
{
    char yaml[4096];
    snprintf(yaml, sizeof yaml, WHEN, "20");
    int rc;
    char *dir = run_yaml(yaml, &rc);
    CU_ASSERT_EQUAL(rc, 0);
    cJSON *j = tu_out_summary(dir);
    CU_ASSERT_PTR_NOT_NULL_FATAL(j);
    assert_conserved(j);
    CU_ASSERT_EQUAL(n_faults(j), 2); /* once, though the load stays above */
    const double t0 = 20 + 30.5 / 30;
    const cJSON *lat = fault_at(j, 0), *part = fault_at(j, 1);
    CU_ASSERT_STRING_EQUAL(str_of(lat, "kind"), "network_latency");
    CU_ASSERT_DOUBLE_EQUAL(tu_num(lat, "start_s"), t0, 1e-9);
    CU_ASSERT_DOUBLE_EQUAL(tu_num(lat, "end_s"), t0 + 5, 1e-9);
    CU_ASSERT_STRING_EQUAL(str_of(part, "kind"), "partition");
    CU_ASSERT_DOUBLE_EQUAL(tu_num(part, "start_s"), t0 + 7, 1e-9);
    CU_ASSERT_DOUBLE_EQUAL(tu_num(part, "end_s"), t0 + 8, 1e-9);
    /* 0.15 ... 19.95 s (199) + 20.0167 ... 39.9833 s (600) */
    CU_ASSERT_EQUAL(tu_num(j, "requests.generated"), 799);
    CU_ASSERT_EQUAL(tu_num(j, "requests.failed"), 30);
    /* during the latency fault: 10 ms + 2 x (1 ms + 100 ms) */
    CU_ASSERT_DOUBLE_EQUAL(tu_num(j, "latency_s.max"), 0.212, 1e-9);
    cJSON_Delete(j);
    /* the load the condition watched: 10 QPS, then 30 from the step */
    double off[64];
    int n = tu_ts_column(dir, "offered_qps", off, 64);
    CU_ASSERT_EQUAL(n, 40);
    for (int i = 1; i < n; i++)
        CU_ASSERT_EQUAL(off[i], i < 20 ? 10 : 30);
    tu_done(dir);

    /* 30 QPS never exceeds 40: neither fault starts (the second waits for
     * the first) */
    snprintf(yaml, sizeof yaml, WHEN, "40");
    dir = run_yaml(yaml, &rc);
    CU_ASSERT_EQUAL(rc, 0);
    j = tu_out_summary(dir);
    CU_ASSERT_PTR_NOT_NULL_FATAL(j);
    assert_conserved(j);
    CU_ASSERT_EQUAL(n_faults(j), 0);
    CU_ASSERT_EQUAL(tu_num(j, "requests.failed"), 0);
    CU_ASSERT_DOUBLE_EQUAL(tu_num(j, "latency_s.max"), 0.012, 1e-9);
    cJSON_Delete(j);
    tu_done(dir);
}

/* `after` a fault with a fixed start is fixed at load: 5 s + 3 s = 8 s,
 * then 8 s + 0 s; a flash crowd can be `after` such a fault (its rate
 * profile is built before the run): x2 over [8, 10) s adds 20 arrivals. */
static void test_after_fixed(void)
{
    const char *yaml =
        "name: after\n"
        "duration: 20s\n" HEAD
        "pools:\n"
        "  p: {model: m, replicas: 2, link: {latency: 1ms, bandwidth: 1GBps}}\n"
        "traffic:\n"
        "  - {name: t, pool: p, size: 0B, response_size: 0B,\n"
        "     arrivals: {process: deterministic, rate: [{at: 0.05s, qps: 10}]}}\n"
        "chaos:\n"
        "  - {at: 5.02s, fault: slowdown, factor: 0.5, target: p/0, duration: 1s}\n"
        "  - {after: 3s, fault: gpu_error, target: p/1, duration: 1s}\n"
        "  - {after: 0s, fault: flash_crowd, factor: 2, duration: 2s}\n";
    int rc;
    char *dir = run_yaml(yaml, &rc);
    CU_ASSERT_EQUAL(rc, 0);
    cJSON *j = tu_out_summary(dir);
    CU_ASSERT_PTR_NOT_NULL_FATAL(j);
    assert_conserved(j);
    CU_ASSERT_EQUAL_FATAL(n_faults(j), 3);
    double starts[3] = { 0 };
    for (int i = 0; i < 3; i++) {
        const cJSON *f = fault_at(j, i);
        int k = !strcmp(str_of(f, "kind"), "slowdown") ? 0 : !strcmp(str_of(f, "kind"), "gpu_error") ? 1 : 2;
        starts[k] = tu_num(f, "start_s");
    }
    CU_ASSERT_DOUBLE_EQUAL(starts[0], 5.02, 1e-9);
    CU_ASSERT_DOUBLE_EQUAL(starts[1], 8.02, 1e-9);
    CU_ASSERT_DOUBLE_EQUAL(starts[2], 8.02, 1e-9);
    /* 0.15 ... 19.95 s = 199, plus 20 from the doubled 2 s */
    CU_ASSERT_EQUAL(tu_num(j, "requests.generated"), 219);
    cJSON_Delete(j);
    tu_done(dir);
}

/* Start keys are checked at load: exactly one of at, after, when; `after`
 * needs a fault before it with a start; a flash crowd takes no `when`. */
static void test_start_errors(void)
{
    static const struct {
        const char *chaos;
        const char *msg;
    } cases[] = {
        { "  - {at: 1s, when: {offered_qps_above: 5}, fault: partition}\n",
          "give one of at, after, when" },
        { "  - {fault: partition, duration: 1s}\n", "partition needs at, after or when" },
        { "  - {after: 1s, fault: partition}\n", "no fault before this one" },
        { "  - {fault: random_crash, mtbf: 10s, mttr: 1s}\n  - {after: 1s, fault: partition}\n",
          "has no start" },
        { "  - {when: {offered_qps_above: 5}, fault: flash_crowd, factor: 2}\n",
          "flash_crowd does not take when" },
        { "  - {when: {offered_qps_above: 5}, fault: partition}\n"
          "  - {after: 1s, fault: flash_crowd, factor: 2}\n",
          "start known before the run" },
        { "  - {at: 15s, fault: partition}\n  - {after: 6s, fault: gpu_error}\n",
          "not before the end of the run" },
        { "  - {when: {qps: 5}, fault: partition}\n", "qps" },
        { "  - {at: 1s, fault: bandwidth_cut, factor: 1.5}\n", "factor" },
        { "  - {at: 1s, fault: retry_storm}\n", "retry_storm needs attempts" },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char yaml[4096];
        snprintf(yaml, sizeof yaml,
                 "name: bad\nduration: 20s\n" HEAD "pools:\n  p: {model: m, replicas: 1}\n"
                 "traffic:\n  - {name: t, pool: p, arrivals: {process: poisson, rate: 1}}\n"
                 "chaos:\n%s",
                 cases[i].chaos);
        int rc;
        char *dir = run_yaml(yaml, &rc);
        char *log = log_of(dir);
        CU_ASSERT_EQUAL(rc, 2);
        CU_ASSERT_PTR_NOT_NULL(log);
        if (log && !strstr(log, cases[i].msg))
            fprintf(stderr, "\ncase %zu: expected \"%s\" in:\n%s", i, cases[i].msg, log);
        CU_ASSERT(log && strstr(log, cases[i].msg));
        free(log);
        tu_done(dir);
    }
}

/* ---------- bandwidth cut ---------- */

/* 4 MB requests over a 100 MB/s link: 40 ms of transfer, so a request takes
 * 10 ms + 2 x 1 ms + 40 ms = 52 ms. Cut to x0.25 over [10.02, 15.02) s, the
 * transfer takes 160 ms: 172 ms for the 50 requests routed then (10.05 ...
 * 14.95 s). With a 100 ms client timeout exactly those 50 time out. */
static const char *BW =
    "name: bw\n"
    "duration: 30s\n" HEAD
    "pools:\n"
    "  p: {model: m, replicas: 1, timeout: %s, link: {latency: 1ms, bandwidth: 100MBps}}\n"
    "traffic:\n"
    "  - {name: t, pool: p, size: 4MB, response_size: 0B,\n"
    "     arrivals: {process: deterministic, rate: [{at: 0.05s, qps: 10}]}}\n"
    "chaos:\n"
    "  - {at: 10.02s, fault: bandwidth_cut, factor: 0.25, target: p, duration: 5s}\n";

static void test_bandwidth_cut(void)
{
    char yaml[4096];
    snprintf(yaml, sizeof yaml, BW, "1s");
    int rc;
    char *dir = run_yaml(yaml, &rc);
    CU_ASSERT_EQUAL(rc, 0);
    cJSON *j = tu_out_summary(dir);
    CU_ASSERT_PTR_NOT_NULL_FATAL(j);
    assert_conserved(j);
    CU_ASSERT_EQUAL(tu_num(j, "requests.generated"), 299);
    CU_ASSERT_EQUAL(tu_num(j, "requests.completed"), 299);
    CU_ASSERT_DOUBLE_EQUAL(tu_num(j, "latency_s.max"), 0.172, 1e-9);
    CU_ASSERT_DOUBLE_EQUAL(tu_num(j, "latency_s.mean"), (249 * 0.052 + 50 * 0.172) / 299, 1e-9);
    const cJSON *f = fault_at(j, 0);
    CU_ASSERT_STRING_EQUAL(str_of(f, "kind"), "bandwidth_cut");
    CU_ASSERT_DOUBLE_EQUAL(tu_num(f, "end_s"), 15.02, 1e-9);
    cJSON_Delete(j);
    double p50[64];
    int n = tu_ts_column(dir, "latency_p50_s", p50, 64);
    CU_ASSERT_EQUAL(n, 30);
    for (int i = 1; i < n; i++) /* interval i = [i, i + 1) s */
        CU_ASSERT_DOUBLE_EQUAL(p50[i], i >= 10 && i < 15 ? 0.172 : 0.052, 1e-3);
    tu_done(dir);

    snprintf(yaml, sizeof yaml, BW, "100ms");
    dir = run_yaml(yaml, &rc);
    CU_ASSERT_EQUAL(rc, 0);
    j = tu_out_summary(dir);
    CU_ASSERT_PTR_NOT_NULL_FATAL(j);
    assert_conserved(j);
    CU_ASSERT_EQUAL(tu_num(j, "requests.timed_out"), 50);
    CU_ASSERT_EQUAL(tu_num(j, "requests.completed"), 249);
    CU_ASSERT_EQUAL(tu_num(fault_at(j, 0), "requests.timed_out"), 50);
    cJSON_Delete(j);
    tu_done(dir);
}

/* ---------- retry storm ---------- */

/* The balancer is down over [10.02, 20.02) s: each of the 100 arrivals
 * 10.05 ... 19.95 s fails at once. With the storm, its client resends it
 * 1 s later, then 2 s after that failure, then 4 s after that one (3
 * retries, backoff 1 s x 2^k):
 *   retry 1 at 11.05 ... 20.95 s: the 90 before 20.02 s fail again;
 *   retry 2 at 13.05 ... 21.95 s: 70 fail again;
 *   retry 3 at 17.05 ... 23.95 s: 30 fail, and those are out of retries.
 * So 30 requests fail instead of 100, each counted once; offered load
 * (arrivals + client retries per second) climbs 10, 20, 30, 40 QPS during
 * the outage, and the retries of the last failures arrive until 23.95 s. */
static const char *STORM =
    "name: storm\n"
    "duration: 40s\n" HEAD
    "pools:\n"
    "  p: {model: m, replicas: 1, link: {latency: 1ms, bandwidth: 1GBps}}\n"
    "traffic:\n"
    "  - {name: t, pool: p, size: 0B, response_size: 0B,\n"
    "     arrivals: {process: deterministic, rate: [{at: 0.05s, qps: 10}]}}\n"
    "chaos:\n"
    "  - {at: 10.02s, fault: lb_failure, duration: 10s}\n"
    "%s";

static void test_retry_storm(void)
{
    char yaml[4096];
    snprintf(yaml, sizeof yaml, STORM,
             "  - {after: 0s, fault: retry_storm, attempts: 3, backoff: 1s, multiplier: 2}\n");
    int rc;
    char *dir = run_yaml(yaml, &rc);
    CU_ASSERT_EQUAL(rc, 0);
    cJSON *j = tu_out_summary(dir);
    CU_ASSERT_PTR_NOT_NULL_FATAL(j);
    assert_conserved(j);
    CU_ASSERT_EQUAL(tu_num(j, "requests.generated"), 399);
    CU_ASSERT_EQUAL(tu_num(j, "requests.failed"), 30);
    CU_ASSERT_EQUAL(tu_num(j, "requests.completed"), 369);
    /* attempts that reached a server: one per completed request */
    CU_ASSERT_EQUAL(tu_num(j, "attempts"), 369);
    /* a retried request's latency runs from its first send: the last
     * successful retry (retry 3 of 16.95 s, at 23.95 s) took 7 s + 12 ms */
    CU_ASSERT_DOUBLE_EQUAL(tu_num(j, "latency_s.max"), 7.012, 1e-9);
    cJSON_Delete(j);
    double off[64];
    int n = tu_ts_column(dir, "offered_qps", off, 64);
    CU_ASSERT_EQUAL(n, 40);
    double sum = 0;
    for (int i = 1; i < n; i++) {
        double want = 10 + 10 * (i >= 11 && i <= 20) + 10 * (i >= 13 && i <= 21) +
                      10 * (i >= 17 && i <= 23);
        if (off[i] != want)
            fprintf(stderr, "\ninterval %d: offered %g, expected %g\n", i, off[i], want);
        CU_ASSERT_EQUAL(off[i], want);
        sum += off[i];
    }
    CU_ASSERT_EQUAL(sum + off[0], 399 + 100 + 90 + 70);
    tu_done(dir);

    /* without the storm: the 100 fail once each, offered stays at 10 */
    snprintf(yaml, sizeof yaml, STORM, "");
    dir = run_yaml(yaml, &rc);
    CU_ASSERT_EQUAL(rc, 0);
    j = tu_out_summary(dir);
    CU_ASSERT_PTR_NOT_NULL_FATAL(j);
    assert_conserved(j);
    CU_ASSERT_EQUAL(tu_num(j, "requests.failed"), 100);
    cJSON_Delete(j);
    n = tu_ts_column(dir, "offered_qps", off, 64);
    for (int i = 1; i < n; i++)
        CU_ASSERT_EQUAL(off[i], 10);
    tu_done(dir);
}

/* Under overload the storm amplifies: two nodes of 100 QPS each at 150 QPS
 * (Poisson), short queues; one crashes for 10 s, and the survivor rejects
 * about a third of what arrives. Each rejected request comes back (5
 * retries, 100 ms x 1.5^k), is likely rejected again, and so on: more than
 * twice the arrival rate reaches the pool while the node is down.
 * Conservation holds whatever the interleaving. */
static void test_retry_storm_conserves(void)
{
    const char *yaml =
        "name: storm2\n"
        "duration: 60s\n" HEAD
        "pools:\n"
        "  p: {model: m, replicas: 2, queue_capacity: 5, timeout: 200ms,\n"
        "      health_check: {interval: 2s, fall: 2, timeout: 1s}}\n"
        "traffic:\n"
        "  - {name: t, pool: p, arrivals: {process: poisson, rate: 150}}\n"
        "chaos:\n"
        "  - {at: 0s, fault: retry_storm, attempts: 5, backoff: 100ms, multiplier: 1.5}\n"
        "  - {at: 20s, fault: node_crash, target: p/0, duration: 10s}\n";
    int rc;
    char *dir = run_yaml(yaml, &rc);
    CU_ASSERT_EQUAL(rc, 0);
    cJSON *j = tu_out_summary(dir);
    CU_ASSERT_PTR_NOT_NULL_FATAL(j);
    assert_conserved(j);
    double gen = tu_num(j, "requests.generated");
    cJSON_Delete(j);
    double off[64];
    int n = tu_ts_column(dir, "offered_qps", off, 64);
    CU_ASSERT_EQUAL_FATAL(n, 60);
    double before = 0, during = 0, total = 0;
    for (int i = 0; i < n; i++) {
        total += off[i];
        if (i >= 5 && i < 15)
            before += off[i] / 10;
        if (i >= 21 && i < 30)
            during += off[i] / 9;
    }
    CU_ASSERT(before > 140 && before < 160); /* no storm without errors */
    CU_ASSERT(during > 2 * before);
    CU_ASSERT(total > gen);
    tu_done(dir);
}

/* The shipped experiment: the crash comes with the spike (the 10 s mean of
 * a ramp 1 -> 520 QPS over [300, 330) s passes 400 QPS at about 328 s), the
 * clients' retries drive the offered load far above the arrivals while the
 * survivor is overloaded, and the hypothesis fails with a verdict. */
static void test_shipped_retry_storm(void)
{
    char path[4096], log[4096];
    snprintf(path, sizeof path, "%s/scenarios/chaos/retry-storm.yaml", tu_src());
    char *dir = tu_tmpdir();
    snprintf(log, sizeof log, "%s/log", dir);
    int rc = tu_sh(log, "'%s' run '%s' --quiet --out '%s/out'", tu_bin(), path, dir);
    CU_ASSERT_EQUAL(rc, 1);
    cJSON *j = tu_out_summary(dir);
    CU_ASSERT_PTR_NOT_NULL_FATAL(j);
    assert_conserved(j);
    const cJSON *crash = NULL, *f;
    cJSON_ArrayForEach(f, cJSON_GetObjectItemCaseSensitive(j, "faults"))
        if (!strcmp(str_of(f, "kind"), "node_crash"))
            crash = f;
    CU_ASSERT_PTR_NOT_NULL_FATAL(crash);
    double t0 = tu_num(crash, "start_s");
    CU_ASSERT(t0 > 325 && t0 < 332);
    CU_ASSERT(tu_num(j, "availability") < 0.999);
    const cJSON *met = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(j, "hypothesis"), "met");
    CU_ASSERT(cJSON_IsFalse(met));
    cJSON_Delete(j);
    char *text = log_of(dir);
    CU_ASSERT(text && strstr(text, "FAIL"));
    free(text);
    double off[256];
    int n = tu_ts_column(dir, "offered_qps", off, 256);
    CU_ASSERT_EQUAL_FATAL(n, 120);
    double peak = 0;
    for (int i = 0; i < n; i++)
        peak = fmax(peak, off[i]);
    CU_ASSERT(peak > 2 * 520);
    tu_done(dir);
}

/* ---------- profile files ---------- */

/* A speed profile at half speed over [5.02, 7.02) s, looping with a period
 * of 7.02 + 2.98 = 10 s: slow again over [15.02, 17.02) and [25.02, 27.02).
 * A request routed then takes 2 x 10 ms + 2 ms (2 s of 10 QPS: 20 per
 * span, 60 in all). */
static void test_speed_profile(void)
{
    const char *yaml =
        "name: speed\n"
        "duration: 30s\n" HEAD
        "pools:\n"
        "  p: {model: m, replicas: 1, link: {latency: 1ms, bandwidth: 1GBps}}\n"
        "traffic:\n"
        "  - {name: t, pool: p, size: 0B, response_size: 0B,\n"
        "     arrivals: {process: deterministic, rate: [{at: 0.05s, qps: 10}]}}\n"
        "chaos:\n"
        "  - {fault: speed_profile, target: p, file: speed.txt}\n";
    int rc;
    char *dir = run_yaml_with(yaml, "speed.txt",
                              "# half speed 2 s out of 10\n0 1\n5.02 0.5\n7.02 1\nLOOPAFTER 2.98\n",
                              &rc);
    CU_ASSERT_EQUAL(rc, 0);
    cJSON *j = tu_out_summary(dir);
    CU_ASSERT_PTR_NOT_NULL_FATAL(j);
    assert_conserved(j);
    CU_ASSERT_EQUAL(tu_num(j, "requests.completed"), 299);
    CU_ASSERT_DOUBLE_EQUAL(tu_num(j, "latency_s.max"), 0.022, 1e-9);
    CU_ASSERT_DOUBLE_EQUAL(tu_num(j, "latency_s.mean"), (239 * 0.012 + 60 * 0.022) / 299, 1e-9);
    CU_ASSERT_EQUAL_FATAL(n_faults(j), 3);
    for (int i = 0; i < 3; i++) {
        CU_ASSERT_STRING_EQUAL(str_of(fault_at(j, i), "kind"), "speed_profile");
        CU_ASSERT_DOUBLE_EQUAL(tu_num(fault_at(j, i), "start_s"), 5.02 + 10 * i, 1e-9);
        CU_ASSERT_DOUBLE_EQUAL(tu_num(fault_at(j, i), "end_s"), 7.02 + 10 * i, 1e-9);
    }
    cJSON_Delete(j);
    double p50[64];
    int n = tu_ts_column(dir, "latency_p50_s", p50, 64);
    CU_ASSERT_EQUAL(n, 30);
    for (int i = 1; i < n; i++)
        CU_ASSERT_DOUBLE_EQUAL(p50[i], i % 10 == 5 || i % 10 == 6 ? 0.022 : 0.012, 1e-3);
    tu_done(dir);
}

/* A state profile's off span is a crash: test_chaos's deterministic crash
 * (two nodes, round robin, 50 ms service, checks every 2 s with fall 2 and
 * a 1 s timeout, retries off) with p/1 off over [10.47, 20.47) s by profile
 * instead of a node_crash fault gives the same result: the request in
 * service at 10.47 s and the 22 routed to p/1 until the probes mark it
 * down at 15 s fail, 23 of 299; it reboots through the lifecycle at the 1. */
static const char *STATE =
    "name: state\n"
    "duration: 30s\n"
    "interval: 1s\n"
    "models:\n"
    "  m: {service: {distribution: deterministic, mean: 50ms}}\n"
    "pools:\n"
    "  p:\n"
    "    model: m\n"
    "    replicas: 2\n"
    "    link: {latency: 1ms, bandwidth: 1GBps}\n"
    "    health_check: {interval: 2s, fall: 2, timeout: 1s}\n"
    "traffic:\n"
    "  - {name: t, pool: p, size: 0B, response_size: 0B,\n"
    "     arrivals: {process: deterministic, rate: [{at: 0.05s, qps: 10}]}}\n"
    "load_balancer: {policy: round_robin, retries: {on: off}}\n"
    "chaos:\n"
    "  - {fault: state_profile, target: p/1, file: state.txt}\n";

static void test_state_profile_is_a_crash(void)
{
    int rc;
    char *dir = run_yaml_with(STATE, "state.txt", "0 1\n10.47 0\n20.47 1\n", &rc);
    CU_ASSERT_EQUAL(rc, 0);
    cJSON *j = tu_out_summary(dir);
    CU_ASSERT_PTR_NOT_NULL_FATAL(j);
    assert_conserved(j);
    CU_ASSERT_EQUAL(tu_num(j, "requests.generated"), 299);
    CU_ASSERT_EQUAL(tu_num(j, "requests.failed"), 23);
    CU_ASSERT_EQUAL(tu_num(j, "requests.completed"), 276);
    CU_ASSERT_EQUAL(tu_num(j, "attempt_errors"), 23);
    CU_ASSERT_EQUAL_FATAL(n_faults(j), 1);
    const cJSON *f = fault_at(j, 0);
    CU_ASSERT_STRING_EQUAL(str_of(f, "kind"), "state_profile");
    CU_ASSERT_STRING_EQUAL(str_of(f, "target"), "p/1");
    CU_ASSERT_DOUBLE_EQUAL(tu_num(f, "start_s"), 10.47, 1e-9);
    CU_ASSERT_DOUBLE_EQUAL(tu_num(f, "end_s"), 20.47, 1e-9);
    CU_ASSERT_EQUAL(tu_num(f, "requests.failed"), 23);
    cJSON_Delete(j);
    char path[4096];
    snprintf(path, sizeof path, "%s/out/events.jsonl", dir);
    char *ev = tu_read(path);
    CU_ASSERT_PTR_NOT_NULL_FATAL(ev);
    CU_ASSERT_PTR_NOT_NULL(strstr(ev, "{\"t_s\":10.47,\"type\":\"node_state\",\"subject\":\"p/1\","
                                      "\"detail\":\"ready -> failed\"}"));
    CU_ASSERT_PTR_NOT_NULL(strstr(ev, "{\"t_s\":15,\"type\":\"health_down\",\"subject\":\"p/1\""));
    CU_ASSERT_PTR_NOT_NULL(strstr(ev, "{\"t_s\":20.47,\"type\":\"node_state\",\"subject\":\"p/1\","
                                      "\"detail\":\"failed -> starting\"}"));
    free(ev);
    tu_done(dir);

    /* looping: off over [5.47, 7.47) s every 10 s, three times in 30 s;
     * each time the request in service at the crash and the 10 routed to
     * p/1 in the next 2 s fail (the probe of 6 s fails at 7 s: one, not two
     * in a row), 11 a span */
    dir = run_yaml_with(STATE, "state.txt", "0 1\n5.47 0\n7.47 1\nLOOPAFTER 2.53\n", &rc);
    CU_ASSERT_EQUAL(rc, 0);
    j = tu_out_summary(dir);
    CU_ASSERT_PTR_NOT_NULL_FATAL(j);
    assert_conserved(j);
    CU_ASSERT_EQUAL(tu_num(j, "requests.failed"), 33);
    CU_ASSERT_EQUAL_FATAL(n_faults(j), 3);
    for (int i = 0; i < 3; i++) {
        CU_ASSERT_DOUBLE_EQUAL(tu_num(fault_at(j, i), "start_s"), 5.47 + 10 * i, 1e-9);
        CU_ASSERT_EQUAL(tu_num(fault_at(j, i), "requests.failed"), 11);
    }
    cJSON_Delete(j);
    tu_done(dir);
}

/* Profile files are checked at load, with the file's line. */
#define C10 "cccccccccc"
#define C100 C10 C10 C10 C10 C10 C10 C10 C10 C10 C10
#define LONG_COMMENT "# " C100 C100 C100 C100 C100 C100 C100 "\n" /* 703 characters */
static void test_profile_errors(void)
{
    static const struct {
        const char *kind, *text, *msg;
    } cases[] = {
        { "speed_profile", "0 1\n5 0.5\n4 1\n", "p.txt:3: expected `TIME VALUE` with TIME ascending" },
        { "speed_profile", "0 1.5\n", "p.txt:1: a speed share is in (0, 1], got 1.5" },
        { "state_profile", "# x\n0 1\n1 0.5\n", "p.txt:3: a state is 0 (off) or 1 (on), got 0.5" },
        { "state_profile", "# nothing\n", "has no `TIME VALUE` line" },
        { "state_profile", "0 1\nLOOPAFTER -1\n", "p.txt:2: LOOPAFTER needs a delay >= 0" },
        /* a comment longer than any line buffer is still one line */
        { "speed_profile", LONG_COMMENT "0 1\n1 2\n", "p.txt:3: a speed share is in (0, 1], got 2" },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char yaml[2048];
        snprintf(yaml, sizeof yaml,
                 "name: bad\nduration: 20s\n" HEAD "pools:\n  p: {model: m, replicas: 1}\n"
                 "traffic:\n  - {name: t, pool: p, arrivals: {process: poisson, rate: 1}}\n"
                 "chaos:\n  - {fault: %s, file: p.txt}\n",
                 cases[i].kind);
        int rc;
        char *dir = run_yaml_with(yaml, "p.txt", cases[i].text, &rc);
        char *log = log_of(dir);
        CU_ASSERT_EQUAL(rc, 2);
        if (log && !strstr(log, cases[i].msg))
            fprintf(stderr, "\ncase %zu: expected \"%s\" in:\n%s", i, cases[i].msg, log);
        CU_ASSERT(log && strstr(log, cases[i].msg));
        free(log);
        tu_done(dir);
    }
    /* a missing file, and a start key on a profile */
    int rc;
    char *dir = run_yaml("name: bad\nduration: 20s\n" HEAD "pools:\n  p: {model: m, replicas: 1}\n"
                         "traffic:\n  - {name: t, pool: p, arrivals: {process: poisson, rate: 1}}\n"
                         "chaos:\n  - {fault: state_profile, file: nope.txt}\n"
                         "  - {fault: speed_profile, file: nope.txt, at: 1s}\n",
                         &rc);
    char *log = log_of(dir);
    CU_ASSERT_EQUAL(rc, 2);
    CU_ASSERT(log && strstr(log, "cannot read profile \"nope.txt\""));
    CU_ASSERT(log && strstr(log, "speed_profile does not take at"));
    free(log);
    tu_done(dir);
}

/* ---------- stale metrics ---------- */

/* The HPA (50% CPU target, 15 s sync, 15 s metrics windows) on one 100 QPS
 * node at 30 QPS, stepping to 170 QPS at 300 s: it scales up at the first
 * sync that sees the step. With the pool's metrics stale over [290, 410) s
 * every pod's metrics are missing and it cannot: its first scale-up comes
 * after 410 s, once a fresh 15 s sample exists, i.e. at least the stale
 * period's remaining 110 s after the step, however the two runs' syncs
 * line up. */
static const char *HPA =
    "name: stale\n"
    "duration: 600s\n"
    "interval: 5s\n"
    "models:\n"
    "  m: {service: {distribution: deterministic, mean: 10ms}}\n"
    "pools:\n"
    "  p:\n"
    "    model: m\n"
    "    replicas: 1\n"
    "    max_replicas: 6\n"
    "    queue_capacity: 200\n"
    "    timeout: 2s\n"
    "    lifecycle: {provision: 20s, start: 5s, load: 10s, warmup: 5s}\n"
    "traffic:\n"
    "  - name: t\n"
    "    pool: p\n"
    "    arrivals: {process: poisson, rate: [{at: 0s, qps: 30}, {at: 300s, qps: 170}]}\n"
    "autoscaler: {policy: hpa, manifest: hpa.yaml}\n"
    "%s";

static double first_scale_up(const char *dir)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/out/events.jsonl", dir);
    char *text = tu_read(path);
    if (!text)
        return NAN;
    double t = NAN;
    char *save = NULL;
    for (char *line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        cJSON *e = cJSON_Parse(line);
        if (e && !strcmp(str_of(e, "type"), "scale") && strstr(str_of(e, "detail"), "1 -> ")) {
            t = tu_num(e, "t_s");
            cJSON_Delete(e);
            break;
        }
        cJSON_Delete(e);
    }
    free(text);
    return t;
}

static void test_stale_metrics_delay_hpa(void)
{
    char yaml[4096];
    snprintf(yaml, sizeof yaml, HPA, "");
    int rc;
    char *fresh = run_yaml(yaml, &rc);
    CU_ASSERT_EQUAL(rc, 0);
    snprintf(yaml, sizeof yaml, HPA,
             "chaos:\n  - {at: 290s, fault: stale_metrics, target: p, duration: 120s}\n");
    char *stale = run_yaml(yaml, &rc);
    CU_ASSERT_EQUAL(rc, 0);
    double t_fresh = first_scale_up(fresh), t_stale = first_scale_up(stale);
    fprintf(stderr, "\nfirst scale-up: %g s fresh, %g s with stale metrics\n", t_fresh, t_stale);
    /* fresh: within a metrics window and a sync of the step */
    CU_ASSERT(t_fresh > 300 && t_fresh <= 300 + 15 + 15 + 1e-9);
    /* stale: not before the stale period ends, then as fast as fresh metrics allow */
    CU_ASSERT(t_stale >= 410);
    CU_ASSERT(t_stale <= 410 + 15 + 15 + 1e-9);
    CU_ASSERT(t_stale - t_fresh >= 410 - (300 + 15 + 15));
    cJSON *j = tu_out_summary(stale);
    CU_ASSERT_PTR_NOT_NULL_FATAL(j);
    assert_conserved(j);
    cJSON *k = tu_out_summary(fresh);
    CU_ASSERT_PTR_NOT_NULL_FATAL(k);
    /* the late scale-up costs requests */
    CU_ASSERT(tu_num(j, "requests.completed") < tu_num(k, "requests.completed"));
    cJSON_Delete(j);
    cJSON_Delete(k);
    tu_done(fresh);
    tu_done(stale);
}

/* The scraper too: with scrapes every 15 s and the pool's metrics stale
 * over [40, 70) s, its node and pool series have no sample at 45 and 60 s
 * and pick up at 75 s with the utilisation of one scrape interval (10 QPS x
 * 10 ms = 0.1), while the per-class request counters (the ingress) go on. */
static void test_stale_metrics_scrapes(void)
{
    const char *yaml =
        "name: stale-scrape\n"
        "duration: 120s\n"
        "interval: 5s\n"
        "models:\n"
        "  m: {service: {distribution: deterministic, mean: 10ms}}\n"
        "pools:\n"
        "  p: {model: m, replicas: 1}\n"
        "traffic:\n"
        "  - {name: t, pool: p, arrivals: {process: deterministic, rate: 10}}\n"
        "monitoring:\n"
        "  scrape_interval: 15s\n"
        "chaos:\n"
        "  - {at: 40s, fault: stale_metrics, target: p, duration: 30s}\n";
    char *dir = tu_tmpdir();
    char path[4096], log[4096], om[4096];
    snprintf(path, sizeof path, "%s/s.yaml", dir);
    snprintf(log, sizeof log, "%s/log", dir);
    snprintf(om, sizeof om, "%s/om.txt", dir);
    tu_write(path, yaml);
    int rc = tu_sh(log, "'%s' run '%s' --quiet --out '%s/out' --openmetrics '%s'", tu_bin(), path,
                   dir, om);
    CU_ASSERT_EQUAL(rc, 0);
    char *text = tu_read(om);
    CU_ASSERT_PTR_NOT_NULL_FATAL(text);
    static const struct {
        const char *series;
        int n;
        double t[8];
    } want[] = {
        { "node_gpu_utilisation{node=\"p/0\",pool=\"p\"} ", 6, { 0, 15, 30, 75, 90, 105 } },
        { "up{node=\"p/0\",pool=\"p\"} ", 6, { 0, 15, 30, 75, 90, 105 } },
        { "fleetsim_replicas{pool=\"p\"} ", 6, { 0, 15, 30, 75, 90, 105 } },
        { "fleetsim_requests_total{class=\"t\",code=\"200\",pool=\"p\"} ", 8,
          { 0, 15, 30, 45, 60, 75, 90, 105 } },
    };
    for (size_t w = 0; w < sizeof want / sizeof want[0]; w++) {
        int n = 0;
        size_t len = strlen(want[w].series);
        for (const char *p = text; (p = strstr(p, want[w].series)); p += len) {
            if (p != text && p[-1] != '\n')
                continue;
            double v = 0, t = 0;
            CU_ASSERT_EQUAL(sscanf(p + len, "%lf %lf", &v, &t), 2);
            if (n < want[w].n)
                CU_ASSERT_DOUBLE_EQUAL(t - 1700000000.0, want[w].t[n], 1e-6);
            if (w == 0 && n == 3)
                CU_ASSERT_DOUBLE_EQUAL(v, 0.1, 1e-9);
            n++;
        }
        if (n != want[w].n)
            fprintf(stderr, "\n%s: %d samples, expected %d\n", want[w].series, n, want[w].n);
        CU_ASSERT_EQUAL(n, want[w].n);
    }
    free(text);
    tu_done(dir);
}

int main(void)
{
    if (CU_initialize_registry() != CUE_SUCCESS)
        return 1;
    CU_pSuite s = CU_add_suite("chaos2", NULL, NULL);
    CU_add_test(s, "when: starts at the first arrival over the threshold, once",
                test_when_offered_load);
    CU_add_test(s, "after a fault with a fixed start", test_after_fixed);
    CU_add_test(s, "start keys are checked at load", test_start_errors);
    CU_add_test(s, "bandwidth cut scales the transfer time", test_bandwidth_cut);
    CU_add_test(s, "retry storm: exact resends, one outcome per request", test_retry_storm);
    CU_add_test(s, "retry storm under overload amplifies and conserves",
                test_retry_storm_conserves);
    CU_add_test(s, "shipped retry-storm.yaml: amplification and a failed verdict",
                test_shipped_retry_storm);
    CU_add_test(s, "speed profile: SimGrid's speed_file, looping", test_speed_profile);
    CU_add_test(s, "state profile: off is a crash, on a reboot", test_state_profile_is_a_crash);
    CU_add_test(s, "profile files are checked at load", test_profile_errors);
    CU_add_test(s, "stale metrics hold back the HPA", test_stale_metrics_delay_hpa);
    CU_add_test(s, "stale metrics: no scrapes of the pool's series", test_stale_metrics_scrapes);
    CU_basic_set_mode(CU_BRM_VERBOSE);
    CU_basic_run_tests();
    unsigned fails = CU_get_number_of_failures();
    CU_cleanup_registry();
    return fails != 0;
}
