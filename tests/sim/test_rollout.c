/*
 * test_rollout.c - a vertical change by rolling update: three 1-GPU nodes
 * replaced by 2-GPU nodes one at a time (max_surge 1, max_unavailable 0):
 * ready replicas never below 3 nor above 4, every old node drained and
 * switched off, and the pool's throughput at saturation doubles.
 */
#include "testutil.h"

#include <CUnit/Basic.h>

#include <string.h>

/* 10 ms deterministic service: a GPU completes 100 requests a second. The
 * pool is saturated (700 QPS offered, no client timeout): 3 GPUs complete
 * 1500 requests per 5 s interval before, 6 GPUs 3000 after. A new node
 * takes 40 s (provision 20 + start 5 + load 10 + warm-up 5) from the
 * controller's decision; each old one drains as soon as its successor is
 * ready, so the rollout ends about 3 x 42 s after it began at 100 s. */
static const char *SCENARIO =
    "name: rollout\n"
    "duration: 400s\n"
    "interval: 5s\n"
    "models:\n"
    "  m: {service: {distribution: deterministic, mean: 10ms}}\n"
    "pools:\n"
    "  p:\n"
    "    model: m\n"
    "    replicas: 3\n"
    "    gpus_per_node: 1\n"
    "    gpu_type: a100\n"
    "    queue_capacity: 100\n"
    "    lifecycle: {provision: 20s, start: 5s, load: 10s, warmup: 5s}\n"
    "    rollout: {at: 100s, gpus_per_node: 2, gpu_type: h100, max_surge: 1, max_unavailable: 0}\n"
    "traffic:\n"
    "  - {name: t, pool: p, arrivals: {process: deterministic, rate: 700}}\n"
    "load_balancer: {policy: least_conn}\n";

static void test_rollout(void)
{
    char *dir = tu_tmpdir();
    char path[4096], log[4096];
    snprintf(path, sizeof path, "%s/s.yaml", dir);
    tu_write(path, SCENARIO);
    snprintf(log, sizeof log, "%s/log", dir);
    int rc = tu_sh(log, "'%s' run '%s' --quiet --out '%s/out'", tu_bin(), path, dir);
    CU_ASSERT_EQUAL_FATAL(rc, 0);

    /* events: each old node drained and off; the rollout ends */
    snprintf(path, sizeof path, "%s/out/events.jsonl", dir);
    char *ev = tu_read(path);
    CU_ASSERT_PTR_NOT_NULL_FATAL(ev);
    int drained = 0, off = 0, done = 0, ready_new = 0;
    double t_done = -1;
    char *save = NULL;
    for (char *line = strtok_r(ev, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        int old = strstr(line, "\"subject\":\"p/0\"") || strstr(line, "\"subject\":\"p/1\"") ||
                  strstr(line, "\"subject\":\"p/2\"");
        drained += old && strstr(line, "ready -> draining") != NULL;
        off += old && strstr(line, "draining -> off") != NULL;
        ready_new += !old && strstr(line, "warming -> ready") != NULL;
        if (strstr(line, "\"type\":\"rollout_done\"")) {
            done++;
            t_done = atof(strstr(line, "\"t_s\":") + 6);
        }
    }
    free(ev);
    printf("\n    rollout done at %g s", t_done);
    CU_ASSERT_EQUAL(drained, 3);
    CU_ASSERT_EQUAL(off, 3);
    CU_ASSERT_EQUAL(ready_new, 3);
    CU_ASSERT_EQUAL(done, 1);
    CU_ASSERT(t_done > 100 + 3 * 40 && t_done < 100 + 3 * 50);

    /* time series: ready replicas within [3, 4]; throughput 1500 -> 3000 */
    snprintf(path, sizeof path, "%s/out/timeseries.csv", dir);
    char *csv = tu_read(path);
    CU_ASSERT_PTR_NOT_NULL_FATAL(csv);
    int rows = 0, bounds_ok = 1, seen4 = 0;
    double before = -1, after = -1;
    save = NULL;
    strtok_r(csv, "\n", &save); /* header */
    for (char *line = strtok_r(NULL, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        double f[11];
        if (sscanf(line, "%lf,%lf,%lf,%lf,%lf,%lf,%lf,%lf,%lf,%lf,%lf", &f[0], &f[1], &f[2], &f[3],
                   &f[4], &f[5], &f[6], &f[7], &f[8], &f[9], &f[10]) != 11)
            continue;
        rows++;
        bounds_ok &= f[10] >= 3 && f[10] <= 4;
        seen4 |= f[10] == 4;
        if (f[0] == 50)
            before = f[2];
        if (f[0] == 350)
            after = f[2];
    }
    free(csv);
    printf(", completed per 5 s: %g before, %g after", before, after);
    CU_ASSERT_EQUAL(rows, 80);
    CU_ASSERT(bounds_ok);
    CU_ASSERT(seen4); /* the surge was used */
    CU_ASSERT_DOUBLE_EQUAL(before, 1500, 2);
    CU_ASSERT_DOUBLE_EQUAL(after, 3000, 2);
    tu_rm_rf(dir);
    free(dir);
}

int main(void)
{
    if (CU_initialize_registry() != CUE_SUCCESS)
        return 1;
    CU_pSuite s = CU_add_suite("rollout", NULL, NULL);
    CU_add_test(s, "rolling update to 2-GPU nodes", test_rollout);
    CU_basic_set_mode(CU_BRM_VERBOSE);
    CU_basic_run_tests();
    unsigned fails = CU_get_number_of_failures();
    CU_cleanup_registry();
    return fails != 0;
}
