/*
 * test_weights.c - dynamic balancer weights from GPU utilisation: a node
 * slowed to 30% speed gets weight 1 once its utilisation over the window
 * passes the threshold, at the tick the window arithmetic gives; its weight
 * comes back after the slowdown ends; the run loses far fewer requests than
 * the same run with static weights.
 */
#include "testutil.h"

#include <CUnit/Basic.h>

#include <string.h>

/* Two nodes of 100 QPS (10 ms, deterministic), 80 QPS Poisson split 4:4 by
 * nginx weighted round robin: 40 QPS each, 40% busy. At 60 s p/1 drops to
 * 30% speed (33 ms a request, 30 QPS) and is overloaded: 100% busy from
 * then on. The loop ticks every 10 s over a 30 s window: at 80 s p/1's
 * window [50, 80] is 10 s at 40% and 20 s at 100% = 80%, not above 85%; at
 * 90 s it is 100%: weight 4 -> 1. p/0 then takes 4/5 = 64 QPS (64%) and p/1
 * 16 QPS (53% at 30% speed): no rule matches either (hysteresis). The
 * slowdown ends at 300 s: p/1 at 16 QPS is 16% busy, so its window falls
 * below 30% at 320 s (28%) or, by Poisson chance, 330 s (16%): restored. */
static const char *SCENARIO =
    "name: dw\n"
    "duration: 600s\n"
    "interval: 10s\n"
    "models:\n"
    "  m: {service: {distribution: deterministic, mean: 10ms}}\n"
    "pools:\n"
    "  p: {model: m, replicas: 2, queue_capacity: 100, timeout: 2s}\n"
    "traffic:\n"
    "  - {name: t, pool: p, arrivals: {process: poisson, rate: 80}}\n"
    "load_balancer:\n"
    "  policy: weighted_round_robin\n"
    "  servers: {p/0: {weight: 4}, p/1: {weight: 4}}\n"
    "%s"
    "chaos:\n"
    "  - {fault: slowdown, at: 60s, target: p/1, factor: 0.3, duration: 240s}\n";

static const char *RULES =
    "  dynamic_weights:\n"
    "    period: 10s\n"
    "    window: 30s\n"
    "    rules: [{above: 85%, weight: 1}, {below: 30%, weight: restore}]\n";

static char *run(const char *rules, int *rc)
{
    char *dir = tu_tmpdir();
    char path[4096], yaml[4096], log[4096];
    snprintf(yaml, sizeof yaml, SCENARIO, rules);
    snprintf(path, sizeof path, "%s/s.yaml", dir);
    tu_write(path, yaml);
    snprintf(log, sizeof log, "%s/log", dir);
    *rc = tu_sh(log, "'%s' run '%s' --quiet --out '%s/out'", tu_bin(), path, dir);
    return dir;
}

static double lost(const char *dir)
{
    char out[4096];
    snprintf(out, sizeof out, "%s/out", dir);
    cJSON *j = tu_summary(out);
    if (!j)
        return -1;
    double v = tu_num(j, "requests.timed_out") + tu_num(j, "requests.rejected") +
               tu_num(j, "requests.failed");
    cJSON_Delete(j);
    return v;
}

static void test_dynamic_weights(void)
{
    int rc1, rc2;
    char *with = run(RULES, &rc1);
    char *without = run("", &rc2);
    CU_ASSERT_EQUAL_FATAL(rc1, 0);
    CU_ASSERT_EQUAL_FATAL(rc2, 0);
    char path[4096];
    snprintf(path, sizeof path, "%s/out/events.jsonl", with);
    char *ev = tu_read(path);
    CU_ASSERT_PTR_NOT_NULL_FATAL(ev);
    int n = 0;
    double t_down = -1, t_up = -1;
    char *save = NULL;
    for (char *line = strtok_r(ev, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        if (!strstr(line, "\"type\":\"weight\""))
            continue;
        n++;
        CU_ASSERT_PTR_NOT_NULL(strstr(line, "\"subject\":\"p/1\""));
        double t = atof(strstr(line, "\"t_s\":") + 6);
        if (strstr(line, "\"detail\":\"4 -> 1"))
            t_down = t;
        else if (strstr(line, "\"detail\":\"1 -> 4"))
            t_up = t;
    }
    printf("\n    weight 4 -> 1 at %g s, 1 -> 4 at %g s", t_down, t_up);
    CU_ASSERT_EQUAL(n, 2);
    CU_ASSERT_DOUBLE_EQUAL(t_down, 90, 1e-9);
    CU_ASSERT(t_up == 320 || t_up == 330);
    free(ev);
    /* static weights keep feeding the slow node half the traffic: it is
     * 33% overloaded for 240 s; dynamic weights stop that after 30 s */
    double lw = lost(with), lo = lost(without);
    printf(", lost %.0f with, %.0f without", lw, lo);
    CU_ASSERT(lo > 10 * 240); /* the excess 10 QPS for 240 s at least */
    CU_ASSERT(lw >= 0 && lw < lo / 5);
    tu_rm_rf(with);
    tu_rm_rf(without);
    free(with);
    free(without);
}

int main(void)
{
    if (CU_initialize_registry() != CUE_SUCCESS)
        return 1;
    CU_pSuite s = CU_add_suite("weights", NULL, NULL);
    CU_add_test(s, "dynamic weights from GPU utilisation", test_dynamic_weights);
    CU_basic_set_mode(CU_BRM_VERBOSE);
    CU_basic_run_tests();
    unsigned fails = CU_get_number_of_failures();
    CU_cleanup_registry();
    return fails != 0;
}
