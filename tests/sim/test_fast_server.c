/*
 * test_fast_server.c - fast mode's batch server (serve/batch_fast.c) on
 * what it computes itself rather than SimGrid: the energy of its batches,
 * a crash in the middle of one, a slowdown, a gpu_error and a drain, each
 * against a closed form and against exact mode on the same small scenario;
 * its clock, which sleeps unless a batch's end may set off another actor;
 * and the shipped chaos scenarios in fast mode (the same arrivals as exact
 * mode, requests conserved). Short runs: it also runs in the sanitizer
 * build, where the statistical comparisons of test_fastmode.c do not.
 */
#include "testutil.h"

#include <CUnit/Basic.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* summary.json of one run of yaml (--exact or --fast), or NULL-fails. */
static cJSON *run_mode(const char *yaml, int fast, char **dir)
{
    int rc;
    *dir = tu_run_yaml(yaml, fast ? "--fast" : "--exact", &rc);
    CU_ASSERT_EQUAL(rc, 0);
    char out[4096];
    snprintf(out, sizeof out, "%s/out", *dir);
    return tu_summary(out);
}

/* GPU-seconds busy in pool p of a summary */
static double busy_gpu_s(const cJSON *j)
{
    return tu_num(j, "pools.p.utilization") * tu_num(j, "pools.p.gpu_hours") * 3600;
}

/* Energy: fast mode's batch server runs no SimGrid executions and adds
 * its batches' energy itself, from SimGrid's Idle:Epsilon:AllCores model.
 * One node of g GPUs, one request at a time (deterministic arrivals every
 * 20 ms, 10 ms each, so one GPU at most is busy): with B the GPU-seconds
 * busy, the energy is g idle T + B (busy - idle)(1 + (g - 1) / g), in
 * both modes, to rounding. Then two GPUs overlapping (30 ms every 20 ms):
 * the modes differ only at the ends, by less than the node's full power
 * over one batch and one quantum. */
#define ENERGY "name: e\nduration: 100s\n" \
               "models: {m: {service: {distribution: deterministic, mean: %s}}}\n" \
               "pools: {p: {model: m, replicas: 1, gpus_per_node: %d,\n" \
               "            power: {idle_per_gpu: 100W, busy_per_gpu: 400W, off: 0W}}}\n" \
               "traffic: [{name: t, pool: p, arrivals: {process: deterministic, rate: 50}}]\n"

static double energy_j(const char *yaml, int fast, double *busy)
{
    char *dir;
    cJSON *j = run_mode(yaml, fast, &dir);
    CU_ASSERT_PTR_NOT_NULL_FATAL(j);
    double e = tu_num(j, "pools.p.energy_kwh") * 3.6e6;
    *busy = busy_gpu_s(j);
    cJSON_Delete(j);
    tu_done(dir);
    return e;
}

static void test_energy(void)
{
    char yaml[1024];
    const int g = 4;
    snprintf(yaml, sizeof yaml, ENERGY, "10ms", g);
    for (int fast = 0; fast < 2; fast++) {
        double busy;
        double e = energy_j(yaml, fast, &busy);
        double want = g * 100.0 * 100 + busy * 300.0 * (1 + (g - 1.0) / g);
        printf("\n    %s: %.3f J, closed form %.3f J (busy %.3f GPU-s)", fast ? "fast" : "exact", e,
               want, busy);
        CU_ASSERT(busy > 49 && busy < 51); /* 5,000 requests of 10 ms */
        CU_ASSERT(fabs(e - want) <= 1e-9 * want);
    }
    double busy_e, busy_f;
    snprintf(yaml, sizeof yaml, ENERGY, "30ms", 2);
    double e_exact = energy_j(yaml, 0, &busy_e), e_fast = energy_j(yaml, 1, &busy_f);
    printf("\n    overlapping: exact %.3f J, fast %.3f J", e_exact, e_fast);
    CU_ASSERT(busy_e > 149 && busy_e < 151);
    CU_ASSERT(fabs(e_fast - e_exact) <= 2 * 400.0 * (0.030 + 0.001));
}

/* A crash reaches fast mode's batch server as it reaches batch.c's
 * workers: one node of one GPU, a request every 200 ms served in 100 ms,
 * no retries; the node crashes at 1.05 s, during the service of the
 * request sent at 1.0 s, and stays down. The balancer does not know (no
 * health checks), so that request and every later one fail; the counts are
 * the same in both modes (fast mode's arrivals are 1 ms late, not enough
 * to move one across the crash), and the busy time ends at the crash. */
#define CRASH "name: c\nduration: 2s\n" \
              "models: {m: {service: {distribution: deterministic, mean: 100ms}}}\n" \
              "pools: {p: {model: m, replicas: 1}}\n" \
              "traffic: [{name: t, pool: p, arrivals: {process: deterministic, rate: 5}}]\n" \
              "load_balancer: {policy: least_conn, retries: {on: off}}\n" \
              "chaos: [{at: 1050ms, fault: node_crash, target: p/0}]\n"

static void test_crash(void)
{
    double counts[2][4], busy[2];
    for (int fast = 0; fast < 2; fast++) {
        char *dir;
        cJSON *j = run_mode(CRASH, fast, &dir);
        CU_ASSERT_PTR_NOT_NULL_FATAL(j);
        counts[fast][0] = tu_num(j, "requests.generated");
        counts[fast][1] = tu_num(j, "requests.completed");
        counts[fast][2] = tu_num(j, "requests.failed");
        counts[fast][3] = tu_num(j, "requests.in_flight_at_end");
        busy[fast] = busy_gpu_s(j);
        cJSON_Delete(j);
        tu_done(dir);
        printf("\n    %s: %g generated, %g completed, %g failed, %g held; busy %.4f s",
               fast ? "fast" : "exact", counts[fast][0], counts[fast][1], counts[fast][2],
               counts[fast][3], busy[fast]);
    }
    for (int k = 0; k < 4; k++)
        CU_ASSERT_EQUAL(counts[0][k], counts[1][k]);
    /* sent at 0.2, 0.4, ...: 0.2 to 0.8 answered, 1.0 to 1.8 failed */
    CU_ASSERT_EQUAL(counts[1][1], 4);
    CU_ASSERT_EQUAL(counts[1][2], 5);
    CU_ASSERT_EQUAL(counts[1][3], 0);
    /* four whole services and the one cut at 1.05 s, 49 or 50 ms in */
    CU_ASSERT(busy[1] > 0.4489 && busy[1] <= 0.4500 + 1e-9);
}

/* A slowdown to half speed at 1.05 s: one GPU, a request every 100 ms of
 * 10 ms; those sent from 1.1 s take 20 ms. Busy: 10 x 10 ms + 9 x 20 ms
 * in both modes (fast mode reads the speed when a batch starts; none runs
 * across the change), and the same energy (the slowed power state's). */
#define SLOW "name: s\nduration: 2s\n" \
             "models: {m: {service: {distribution: deterministic, mean: 10ms}}}\n" \
             "pools: {p: {model: m, replicas: 1}}\n" \
             "traffic: [{name: t, pool: p, arrivals: {process: deterministic, rate: 10}}]\n" \
             "chaos: [{at: 1050ms, fault: slowdown, target: p/0, factor: 0.5}]\n"

static void test_slowdown(void)
{
    double energy_j[2];
    for (int fast = 0; fast < 2; fast++) {
        char *dir;
        cJSON *j = run_mode(SLOW, fast, &dir);
        CU_ASSERT_PTR_NOT_NULL_FATAL(j);
        double busy = busy_gpu_s(j);
        energy_j[fast] = tu_num(j, "pools.p.energy_kwh") * 3.6e6;
        printf("\n    %s: busy %.6f s, %g completed, %.6f J", fast ? "fast" : "exact", busy,
               tu_num(j, "requests.completed"), energy_j[fast]);
        CU_ASSERT(fabs(busy - 0.28) < 1e-6);
        CU_ASSERT_EQUAL(tu_num(j, "requests.completed"), 19);
        cJSON_Delete(j);
        tu_done(dir);
    }
    /* the slowed batches draw the power state's wattage in both modes */
    CU_ASSERT(fabs(energy_j[1] - energy_j[0]) <= 1e-9 * energy_j[0]);
}

/* One node of one GPU, deterministic services of mean, arrivals at the
 * times of a trace (CSV text, written in tdir) and one fault. */
static void trace_scenario(char *yaml, size_t size, const char *tdir, const char *times,
                           const char *duration, const char *mean, const char *fault)
{
    char trace[4096];
    snprintf(trace, sizeof trace, "%s/arrivals.csv", tdir);
    tu_write(trace, times);
    snprintf(yaml, size,
             "name: o\nduration: %s\n"
             "models: {m: {service: {distribution: deterministic, mean: %s}}}\n"
             "pools: {p: {model: m, replicas: 1}}\n"
             "traffic: [{name: t, pool: p, arrivals: {process: trace, trace: '%s'}}]\n"
             "chaos: [%s]\n",
             duration, mean, trace, fault);
}

/* A fault reaches the batches in time order: two requests at 1 s on one
 * GPU, 10.4 ms each, the second started at 1.0104 s by the first one's end
 * (a timer of fast mode's server, handled at its quantum's end, 1.011 s);
 * a slowdown to half speed at 1.0107 s must find that batch already
 * started at full speed, so fast mode (which does not stretch a running
 * batch) is busy 2 x 10.4 ms; had the fault come first, the second batch
 * would take 20.8 ms. */
static void test_fault_in_order(void)
{
    char *tdir = tu_tmpdir(), yaml[8192];
    trace_scenario(yaml, sizeof yaml, tdir, "t\n1.0\n1.0\n", "2s", "10.4ms",
                   "{at: 1010.7ms, fault: slowdown, target: p/0, factor: 0.5}");
    char *dir;
    cJSON *j = run_mode(yaml, 1, &dir);
    CU_ASSERT_PTR_NOT_NULL_FATAL(j);
    printf("\n    fast: busy %.6f s, %g completed", busy_gpu_s(j), tu_num(j, "requests.completed"));
    CU_ASSERT_EQUAL(tu_num(j, "requests.completed"), 2);
    CU_ASSERT(fabs(busy_gpu_s(j) - 0.0208) < 1e-6);
    cJSON_Delete(j);
    tu_done(dir);
    tu_rm_rf(tdir);
    free(tdir);
}

/* A drain reaches a node whose GPUs are idle while another holds a batch
 * window open over waiting requests: one node of 2 GPUs, batches held up
 * to 500 ms, a request every 100 ms of 10 ms; a spot reclaim drains it at
 * 1.05 s, when the request of 1.0 s waits in GPU 0's window and GPU 1 is
 * idle. Each idle GPU steps once (waking them until none was idle never
 * ended: GPU 1 found the window and went idle again); the window's batch
 * runs, the node leaves, and the outcomes and busy time are exact mode's. */
#define DRAIN "name: d\nduration: 2s\n" \
              "models: {m: {service: {distribution: deterministic, mean: 10ms},\n" \
              "             batch: {max_size: 8, max_wait: 500ms}}}\n" \
              "pools: {p: {model: m, replicas: 1, gpus_per_node: 2}}\n" \
              "traffic: [{name: t, pool: p, arrivals: {process: deterministic, rate: 10}}]\n" \
              "chaos: [{at: 1050ms, fault: spot_reclaim, target: p/0, notice: 1s}]\n"

static void test_drain_with_window_open(void)
{
    double busy[2];
    for (int fast = 0; fast < 2; fast++) {
        char *dir;
        cJSON *j = run_mode(DRAIN, fast, &dir);
        CU_ASSERT_PTR_NOT_NULL_FATAL(j);
        busy[fast] = busy_gpu_s(j);
        printf("\n    %s: %g completed, %g failed, busy %.6f s", fast ? "fast" : "exact",
               tu_num(j, "requests.completed"), tu_num(j, "requests.failed"), busy[fast]);
        /* 0.1 to 1.0 s answered; the node is gone for 1.1 to 1.9 s */
        CU_ASSERT_EQUAL(tu_num(j, "requests.completed"), 10);
        CU_ASSERT_EQUAL(tu_num(j, "requests.failed"), 9);
        cJSON_Delete(j);
        tu_done(dir);
    }
    CU_ASSERT(fabs(busy[1] - busy[0]) < 1e-9);
}

/* With nothing set off by a batch's end, fast mode's clock sleeps and the
 * next reader catches up; a drain makes the node's switch-off wait for its
 * GPUs, and the clock must then hear of their ends. One GPU, requests at
 * 1 s and 5 s of 60 ms, a spot reclaim at 1.05 s: the node goes off when
 * the first request's batch ends (1.06 s, and the terminator's 1 us) in
 * both modes, fast mode at most a quantum later; not when the next arrival
 * catches the server up (5 s). */
static double off_time_s(const char *dir)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/out/events.jsonl", dir);
    char *ev = tu_read(path);
    CU_ASSERT_PTR_NOT_NULL_FATAL(ev);
    char *hit = strstr(ev, "\"draining -> off\"");
    double t = NAN;
    if (hit) {
        while (hit > ev && hit[-1] != '\n')
            hit--;
        sscanf(hit, "{\"t_s\":%lf", &t);
    }
    free(ev);
    return t;
}

static void test_drain_wakes_clock(void)
{
    char *tdir = tu_tmpdir(), yaml[8192];
    trace_scenario(yaml, sizeof yaml, tdir, "t\n1.0\n5.0\n", "10s", "60ms",
                   "{at: 1050ms, fault: spot_reclaim, target: p/0, notice: 5s}");
    for (int fast = 0; fast < 2; fast++) {
        char *dir;
        cJSON *j = run_mode(yaml, fast, &dir);
        CU_ASSERT_PTR_NOT_NULL_FATAL(j);
        double off = off_time_s(dir);
        printf("\n    %s: off at %.6f s", fast ? "fast" : "exact", off);
        CU_ASSERT(off >= 1.06 && off <= 1.06 + (fast ? 0.001 : 0) + 2e-6);
        cJSON_Delete(j);
        tu_done(dir);
    }
    tu_rm_rf(tdir);
    free(tdir);
}

/* gpu_error from 1.05 s: every batch started after it is answered 500 at
 * once (not retried), those before complete. */
#define GPU_ERROR "name: g\nduration: 2s\n" \
                  "models: {m: {service: {distribution: deterministic, mean: 10ms}}}\n" \
                  "pools: {p: {model: m, replicas: 1}}\n" \
                  "traffic: [{name: t, pool: p, arrivals: {process: deterministic, rate: 10}}]\n" \
                  "chaos: [{at: 1050ms, fault: gpu_error, target: p/0}]\n"

static void test_gpu_error(void)
{
    for (int fast = 0; fast < 2; fast++) {
        char *dir;
        cJSON *j = run_mode(GPU_ERROR, fast, &dir);
        CU_ASSERT_PTR_NOT_NULL_FATAL(j);
        CU_ASSERT_EQUAL(tu_num(j, "requests.completed"), 10);
        CU_ASSERT_EQUAL(tu_num(j, "requests.failed"), 9);
        CU_ASSERT(fabs(busy_gpu_s(j) - 0.1) < 1e-6);
        cJSON_Delete(j);
        tu_done(dir);
    }
}

/* The shipped chaos scenarios whose pools are batch pools, in fast mode:
 * crashes, drains, partitions, ejection, retries and slow nodes through
 * batch_fast.c; the same arrivals as exact mode, every request accounted
 * for (fleetsim exits 3 when conservation breaks; 1 is a failed
 * hypothesis, which several of these are written to show). */
static void test_shipped_chaos(void)
{
    static const char *const shipped[] = {
        "chaos/node-crash-at-peak", "chaos/slow-node",      "chaos/overload-ejection",
        "chaos/retry-storm",        "chaos/zone-outage",    "chaos/network-partition",
        NULL,
    };
    for (int i = 0; shipped[i]; i++) {
        double gen[2];
        for (int fast = 0; fast < 2; fast++) {
            char *dir = tu_tmpdir();
            char log[4096], out[4096];
            snprintf(log, sizeof log, "%s/log", dir);
            snprintf(out, sizeof out, "%s/out", dir);
            int rc = tu_sh(log, "'%s' run '%s/scenarios/%s.yaml' --quiet --%s --out '%s'",
                           tu_bin(), tu_src(), shipped[i], fast ? "fast" : "exact", out);
            CU_ASSERT(rc == 0 || rc == 1);
            cJSON *j = tu_summary(out);
            CU_ASSERT_PTR_NOT_NULL_FATAL(j);
            gen[fast] = tu_num(j, "requests.generated");
            double ended = tu_num(j, "requests.completed") + tu_num(j, "requests.rejected") +
                           tu_num(j, "requests.failed") + tu_num(j, "requests.timed_out") +
                           tu_num(j, "requests.in_flight_at_end");
            CU_ASSERT_EQUAL(gen[fast], ended);
            cJSON_Delete(j);
            tu_rm_rf(dir);
            free(dir);
        }
        printf("\n    %s: %g requests in both modes", shipped[i], gen[1]);
        CU_ASSERT_EQUAL(gen[0], gen[1]);
    }
}

int main(void)
{
    if (CU_initialize_registry() != CUE_SUCCESS)
        return 1;
    CU_pSuite s = CU_add_suite("fast_server", NULL, NULL);
    CU_add_test(s, "energy of its batches: SimGrid's model", test_energy);
    CU_add_test(s, "a crash mid-batch: the same outcomes in both modes", test_crash);
    CU_add_test(s, "a slowdown: batches started after it take longer", test_slowdown);
    CU_add_test(s, "gpu_error: 500 at once", test_gpu_error);
    CU_add_test(s, "a fault after a batch start it follows", test_fault_in_order);
    CU_add_test(s, "a drain while a batch window is open", test_drain_with_window_open);
    CU_add_test(s, "a drain wakes the clock for its GPUs' ends", test_drain_wakes_clock);
    CU_add_test(s, "shipped chaos scenarios in fast mode", test_shipped_chaos);
    CU_basic_set_mode(CU_BRM_VERBOSE);
    CU_basic_run_tests();
    unsigned fails = CU_get_number_of_failures();
    CU_cleanup_registry();
    return fails ? 1 : 0;
}
