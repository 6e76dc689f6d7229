/*
 * test_observe_slo.c - burn-rate alerts of the latency SLO in a run
 * (monitoring.slo_rules with slo.latency_p99 and slo.availability).
 *
 * One node, one GPU, deterministic 100 ms service, deterministic arrivals
 * at 2 qps (at 0.5 s, 1 s, ...), latency 100 ms plus 204 us of network. At
 * 600.25 s (between two requests) the GPU slows to 25% of its speed: every
 * request from 600.5 s on takes 400 ms, slower than slo.latency_p99 =
 * 250 ms (which is not in histogram_buckets: the scenario adds it). No
 * request fails, so the availability SLO's alerts stay silent.
 *
 * Scrapes and evaluations every 15 s from 0, all counters 0 at t = 0. The
 * generated alerts have no `for:`, so each fires at the first evaluation
 * where both of its windows' slow-request ratios exceed burn x 1%. Every
 * window holds the run from its first sample up to t = 705 s, except the
 * 5m one, and rate()'s extrapolation is the same for the bucket and the
 * count (both start at 0), so a ratio is slow / finished requests over the
 * window's samples. At an evaluation t > 600, finished = 1200 fast (arrived
 * by 600 s) + slow, slow = those arrived at 600.5 ... t - 0.4:
 *   t = 615: 29 / 1229 = 2.4%   > 1%:   the 1x 3d/6h ticket fires
 *   t = 630: 59 / 1259 = 4.7%   < 6%;   t = 645: 89 / 1289 = 6.9% > 6%:
 *            the 6x 6h/30m page fires at 645 (30m window the same)
 *   t = 690: 179 / 1379 = 13.0% < 14.4%; t = 705: 209 / 1409 = 14.8%:
 *            the 14.4x 1h/5m page fires at 705 (5m: 209 / 600).
 * At 615 the exported bucket le="0.25" is 1200 and the count 1229.
 * With slo.latency_p99 = 500 ms the same run is within the objective and
 * no alert fires. The generated rule file passes `promtool check rules`
 * and the run's --promtool-test file `promtool test rules` (when promtool
 * is installed).
 */
#include "testutil.h"

#include <CUnit/Basic.h>
#include <cjson/cJSON.h>

#include <math.h>

static char *tmp;
static char scen[4200];
static int have_promtool;

static const char *scenario_text =
    "name: latency-slo\n"
    "seed: 1\n"
    "duration: 15m\n"
    "models:\n"
    "  m: {service: {distribution: deterministic, mean: 100ms}}\n"
    "pools:\n"
    "  gpu: {model: m, replicas: 1}\n"
    "traffic:\n"
    "  - name: api\n"
    "    pool: gpu\n"
    "    arrivals: {process: deterministic, rate: 2}\n"
    "slo: {latency_p99: 250ms, availability: 0.999}\n"
    "chaos:\n"
    "  - {fault: slowdown, at: 600250ms, target: gpu/0, factor: 0.25}\n"
    "monitoring:\n"
    "  scrape_interval: 15s\n"
    "  histogram_buckets: [50ms, 1s]\n"
    "  slo_rules: true\n";

static void show_log(const char *log)
{
    char *t = tu_read(log);
    fprintf(stderr, "\n%s\n", t ? t : "");
    free(t);
}

static const char *str_at(const cJSON *o, const char *key)
{
    const cJSON *s = cJSON_GetObjectItemCaseSensitive(o, key);
    return cJSON_IsString(s) ? s->valuestring : "";
}

/* The alert whose summary starts with prefix. */
static const cJSON *alert_with(const cJSON *alerts, const char *prefix)
{
    const cJSON *a;
    cJSON_ArrayForEach(a, alerts)
    {
        if (!strncmp(str_at(a, "summary"), prefix, strlen(prefix)))
            return a;
    }
    return NULL;
}

static void expect_alert(const cJSON *alerts, const char *summary, const char *severity,
                         double firing_at)
{
    const cJSON *a = alert_with(alerts, summary);
    CU_ASSERT_PTR_NOT_NULL(a);
    if (!a) {
        fprintf(stderr, "\n  no alert \"%s\"\n", summary);
        return;
    }
    CU_ASSERT_STRING_EQUAL(str_at(a, "name"), "SLOErrorBudgetBurn");
    CU_ASSERT_STRING_EQUAL(str_at(a, "severity"), severity);
    CU_ASSERT_EQUAL(tu_num(a, "pending_at"), firing_at);
    CU_ASSERT_EQUAL(tu_num(a, "firing_at"), firing_at);
    CU_ASSERT(isnan(tu_num(a, "resolved_at"))); /* the slowdown lasts to the end */
}

static void test_latency_burn(void)
{
    char out[4300], log[4300], pt[4300], om[4300];
    snprintf(out, sizeof out, "%s/slow", tmp);
    snprintf(log, sizeof log, "%s/slow.log", tmp);
    snprintf(pt, sizeof pt, "%s/promtool/test.yml", tmp);
    snprintf(om, sizeof om, "%s/slow.om", tmp);
    tu_sh(NULL, "mkdir -p '%s/promtool'", tmp);
    int rc = tu_sh(log, "'%s' run '%s' --quiet --out '%s' --promtool-test '%s' --openmetrics '%s'",
                   tu_bin(), scen, out, pt, om);
    if (rc)
        show_log(log);
    CU_ASSERT_EQUAL_FATAL(rc, 0);
    cJSON *j = tu_summary(out);
    CU_ASSERT_PTR_NOT_NULL_FATAL(j);
    CU_ASSERT_EQUAL(tu_num(j, "requests.failed"), 0);
    const cJSON *alerts = cJSON_GetObjectItemCaseSensitive(j, "alerts");
    CU_ASSERT_EQUAL(cJSON_GetArraySize(alerts), 3);
    expect_alert(alerts, "SLO latency: error budget burning 1x too fast", "warning", 615);
    expect_alert(alerts, "SLO latency: error budget burning 6x too fast", "critical", 645);
    expect_alert(alerts, "SLO latency: error budget burning 14.4x too fast", "critical", 705);
    CU_ASSERT_PTR_NULL(alert_with(alerts, "SLO availability"));
    cJSON_Delete(j);

    /* the series the ratios come from, with the added bucket */
    char *text = tu_read(om);
    CU_ASSERT_PTR_NOT_NULL_FATAL(text);
    CU_ASSERT_EQUAL(tu_om_sample(text, "fleetsim_request_duration_seconds_bucket{class=\"api\","
                                    "le=\"0.25\",pool=\"gpu\"}", 615), 1200);
    CU_ASSERT_EQUAL(tu_om_sample(text, "fleetsim_request_duration_seconds_count{class=\"api\","
                                    "pool=\"gpu\"}", 615), 1229);
    free(text);

    if (!have_promtool)
        return;
    rc = tu_sh(log, "cd '%s/promtool' && promtool check rules test.slo-rules.yml", tmp);
    if (rc)
        show_log(log);
    CU_ASSERT_EQUAL(rc, 0);
    rc = tu_sh(log, "cd '%s/promtool' && promtool test rules test.yml", tmp);
    if (rc)
        show_log(log);
    CU_ASSERT_EQUAL(rc, 0);
}

static void test_within_threshold(void)
{
    char out[4300], log[4300];
    snprintf(out, sizeof out, "%s/ok", tmp);
    snprintf(log, sizeof log, "%s/ok.log", tmp);
    int rc = tu_sh(log, "'%s' run '%s' --quiet --out '%s' --set slo.latency_p99=500ms", tu_bin(),
                   scen, out);
    if (rc)
        show_log(log);
    CU_ASSERT_EQUAL_FATAL(rc, 0);
    cJSON *j = tu_summary(out);
    CU_ASSERT_PTR_NOT_NULL_FATAL(j);
    CU_ASSERT_EQUAL(cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(j, "alerts")), 0);
    /* the run is the same: its p99 (400 ms) is within 500 ms */
    CU_ASSERT(tu_num(j, "latency_s.p99") > 0.4 && tu_num(j, "latency_s.p99") < 0.401);
    cJSON_Delete(j);
}

/* slo.latency_p99 written in ms is 0.7000000000000001 s in binary; the
 * histogram already has 0.7: no second bucket beside it, and the burn-rate
 * rules read le="0.7". */
static void test_threshold_meets_bucket(void)
{
    char dir[4300], yaml[4300], out[4300], log[4300], pt[4300], om[4300];
    snprintf(dir, sizeof dir, "%s/ms", tmp);
    tu_sh(NULL, "mkdir -p '%s'", dir);
    snprintf(yaml, sizeof yaml, "%s/s.yaml", dir);
    snprintf(out, sizeof out, "%s/out", dir);
    snprintf(log, sizeof log, "%s/log", dir);
    snprintf(pt, sizeof pt, "%s/test.yml", dir);
    snprintf(om, sizeof om, "%s/run.om", dir);
    char text[4200];
    snprintf(text, sizeof text, "%s", scenario_text);
    char *at = strstr(text, "slo: {latency_p99: 250ms");
    CU_ASSERT_PTR_NOT_NULL_FATAL(at);
    memcpy(at + strlen("slo: {latency_p99: "), "700ms", 5);
    at = strstr(text, "[50ms, 1s]");
    CU_ASSERT_PTR_NOT_NULL_FATAL(at);
    snprintf(at, sizeof text - (size_t)(at - text), "[50ms, 0.7, 1s]\n  slo_rules: true\n");
    tu_write(yaml, text);
    int rc = tu_sh(log, "'%s' run '%s' --quiet --out '%s' --promtool-test '%s' --openmetrics '%s'",
                   tu_bin(), yaml, out, pt, om);
    if (rc)
        show_log(log);
    CU_ASSERT_EQUAL_FATAL(rc, 0);
    char *m = tu_read(om);
    CU_ASSERT_PTR_NOT_NULL_FATAL(m);
    CU_ASSERT_PTR_NULL(strstr(m, "0.7000000000000001"));
    CU_ASSERT_EQUAL(tu_om_sample(m, "fleetsim_request_duration_seconds_bucket{class=\"api\","
                                    "le=\"0.7\",pool=\"gpu\"}", 615), 1229);
    free(m);
    char rules[4400];
    snprintf(rules, sizeof rules, "%s/test.slo-rules.yml", dir);
    char *r = tu_read(rules);
    CU_ASSERT_PTR_NOT_NULL_FATAL(r);
    CU_ASSERT_PTR_NOT_NULL(strstr(r, "fleetsim_request_duration_seconds_bucket{le=\"0.7\"}"));
    CU_ASSERT_PTR_NULL(strstr(r, "0.7000000000000001"));
    free(r);
}

int main(void)
{
    tmp = tu_tmpdir();
    if (!tmp)
        return 1;
    snprintf(scen, sizeof scen, "%s/s.yaml", tmp);
    tu_write(scen, scenario_text);
    have_promtool = tu_sh("/dev/null", "promtool --version") == 0;
    if (!have_promtool)
        printf("test_observe_slo: SKIPPED the promtool checks: promtool not found "
               "(Debian package prometheus; scripts/install-deps.sh)\n");
    if (CU_initialize_registry() != CUE_SUCCESS)
        return 1;
    CU_pSuite s = CU_add_suite("observe_slo", NULL, NULL);
    CU_add_test(s, "latency above the threshold burns the budget", test_latency_burn);
    CU_add_test(s, "latency within the threshold fires nothing", test_within_threshold);
    CU_add_test(s, "a threshold in ms meets the bucket it equals", test_threshold_meets_bucket);
    CU_basic_set_mode(CU_BRM_VERBOSE);
    CU_basic_run_tests();
    int failures = (int)CU_get_number_of_failures();
    CU_cleanup_registry();
    if (!failures)
        tu_rm_rf(tmp);
    free(tmp);
    return failures;
}
