/*
 * test_observe.c - monitoring inside a run, through the fleetsim binary.
 *
 * One node, one GPU, deterministic 100 ms service, deterministic arrivals
 * at 2 qps, 8 qps from 5m to 10m: the node's busy fraction is 0.2, then
 * 0.8, then 0.2 again. Scrapes and evaluations every 15 s from t = 0. So
 * `node_cpu_utilisation > 0.5` first holds at the scrape of 315 s (the
 * first whose interval (300, 315] is all at 8 qps): pending at 315, firing
 * at 375 (for: 1m), resolved at 615 (the scrape of (600, 615]), notified
 * at 405 (group_wait 30s). The node crashes at 845 s and comes back at
 * 965 s (no start-up delays): `up == 0` first at the scrape of 855,
 * firing at 885 (for: 30s), notified at 895 (its route's group_wait 10s),
 * resolved at 975. HighCPU fired with no fault active: a false positive.
 *
 * Also: the --promtool-test file passes `promtool test rules` (with the
 * generated burn-rate rules as a second rule file), the --openmetrics
 * file loads with `promtool tsdb create-blocks-from openmetrics` (both
 * skipped, with a message, without promtool), requests are conserved,
 * the run is reproducible, and bad rule files are load errors (exit 2).
 */
#include "testutil.h"

#include <CUnit/Basic.h>
#include <cjson/cJSON.h>

#include <math.h>

static char *tmp;
static char scen[4200];
static int have_promtool;

static const char *rules_text =
    "groups:\n"
    "  - name: node\n"
    "    rules:\n"
    "      - alert: HighCPU\n"
    "        expr: node_cpu_utilisation > 0.5\n"
    "        for: 1m\n"
    "        labels: {severity: warning}\n"
    "        annotations: {summary: \"CPU above 50% on {{ $labels.node }}\"}\n"
    "      - alert: NodeDown\n"
    "        expr: up == 0\n"
    "        for: 30s\n"
    "        labels: {severity: critical}\n"
    "        annotations: {summary: \"{{ $labels.node }} is down\"}\n";

static const char *am_text =
    "global: {smtp_smarthost: 'smtp.example.com:587', smtp_from: am@example.com}\n"
    "route:\n"
    "  receiver: team\n"
    "  group_by: [alertname]\n"
    "  group_wait: 30s\n"
    "  routes:\n"
    "    - matchers: ['severity=\"critical\"']\n"
    "      receiver: pager\n"
    "      group_wait: 10s\n"
    "receivers:\n"
    "  - name: team\n"
    "    email_configs: [{to: team@example.com}]\n"
    "  - name: pager\n"
    "    pagerduty_configs: [{routing_key: x}]\n";

static const char *scenario_text =
    "name: observe-test\n"
    "seed: 7\n"
    "duration: 20m\n"
    "models:\n"
    "  m: {service: {distribution: deterministic, mean: 100ms}}\n"
    "pools:\n"
    "  gpu: {model: m, replicas: 1, gpus_per_node: 1}\n"
    "traffic:\n"
    "  - name: api\n"
    "    pool: gpu\n"
    "    arrivals:\n"
    "      process: deterministic\n"
    "      rate: [{at: 0s, qps: 2}, {at: 5m, qps: 8}, {at: 10m, qps: 2}]\n"
    "slo: {availability: 0.999}\n"
    "chaos:\n"
    "  - {fault: node_crash, at: 845s, target: gpu/0, recover_after: 2m}\n"
    "monitoring:\n"
    "  scrape_interval: 15s\n"
    "  rules: rules.yml\n"
    "  alertmanager: am.yml\n"
    "  histogram_buckets: [50ms, 150ms, 1s]\n";

static const cJSON *alert_named(const cJSON *alerts, const char *name)
{
    const cJSON *a;
    cJSON_ArrayForEach(a, alerts)
    {
        const cJSON *n = cJSON_GetObjectItemCaseSensitive(a, "name");
        if (cJSON_IsString(n) && !strcmp(n->valuestring, name))
            return a;
    }
    return NULL;
}

static const char *str_at(const cJSON *o, const char *key)
{
    const cJSON *s = cJSON_GetObjectItemCaseSensitive(o, key);
    return cJSON_IsString(s) ? s->valuestring : "";
}

static int count_type(const char *events, const char *type)
{
    char pat[64];
    snprintf(pat, sizeof pat, "\"type\":\"%s\"", type);
    int n = 0;
    for (const char *p = events; (p = strstr(p, pat)); p++)
        n++;
    return n;
}

static void test_alert_timeline(void)
{
    char out[4300], log[4300];
    snprintf(out, sizeof out, "%s/run", tmp);
    snprintf(log, sizeof log, "%s/run.log", tmp);
    CU_ASSERT_EQUAL_FATAL(tu_sh(log, "'%s' run '%s' --out '%s' --quiet", tu_bin(), scen, out), 0);
    cJSON *j = tu_summary(out);
    CU_ASSERT_PTR_NOT_NULL_FATAL(j);
    const cJSON *alerts = cJSON_GetObjectItemCaseSensitive(j, "alerts");
    CU_ASSERT_EQUAL(cJSON_GetArraySize(alerts), 2);

    const cJSON *cpu = alert_named(alerts, "HighCPU");
    CU_ASSERT_PTR_NOT_NULL_FATAL(cpu);
    CU_ASSERT_STRING_EQUAL(str_at(cpu, "severity"), "warning");
    CU_ASSERT_STRING_EQUAL(str_at(cpu, "receiver"), "team");
    CU_ASSERT_EQUAL(tu_num(cpu, "pending_at"), 315);
    CU_ASSERT_EQUAL(tu_num(cpu, "firing_at"), 375);
    CU_ASSERT_EQUAL(tu_num(cpu, "resolved_at"), 615);
    CU_ASSERT_EQUAL(tu_num(cpu, "notified_at"), 405);
    CU_ASSERT_STRING_EQUAL(str_at(cpu, "summary"), "CPU above 50% on gpu/0");

    const cJSON *down = alert_named(alerts, "NodeDown");
    CU_ASSERT_PTR_NOT_NULL_FATAL(down);
    CU_ASSERT_STRING_EQUAL(str_at(down, "severity"), "critical");
    CU_ASSERT_STRING_EQUAL(str_at(down, "receiver"), "pager");
    CU_ASSERT_EQUAL(tu_num(down, "pending_at"), 855);
    CU_ASSERT_EQUAL(tu_num(down, "firing_at"), 885);
    CU_ASSERT_EQUAL(tu_num(down, "resolved_at"), 975);
    CU_ASSERT_EQUAL(tu_num(down, "notified_at"), 895);

    /* detection per fault, and noise */
    CU_ASSERT_EQUAL(tu_num(j, "alerting.alerts_fired"), 2);
    const cJSON *al = cJSON_GetObjectItemCaseSensitive(j, "alerting");
    const cJSON *faults = cJSON_GetObjectItemCaseSensitive(al, "faults");
    CU_ASSERT_EQUAL_FATAL(cJSON_GetArraySize(faults), 1);
    const cJSON *f = cJSON_GetArrayItem(faults, 0);
    CU_ASSERT_STRING_EQUAL(str_at(f, "first_alert"), "NodeDown");
    CU_ASSERT_EQUAL(tu_num(f, "detection_s"), 40);
    CU_ASSERT_EQUAL(tu_num(f, "notification_s"), 50);
    CU_ASSERT_STRING_EQUAL(str_at(f, "first_receiver"), "pager");
    CU_ASSERT_STRING_EQUAL(str_at(f, "first_integration"), "pagerduty");
    const cJSON *fp = cJSON_GetObjectItemCaseSensitive(al, "false_positives");
    CU_ASSERT_EQUAL_FATAL(cJSON_GetArraySize(fp), 1);
    CU_ASSERT_STRING_EQUAL(str_at(cJSON_GetArrayItem(fp, 0), "name"), "HighCPU");

    /* conservation, with the crash's 502s */
    double gen = tu_num(j, "requests.generated");
    double sum = tu_num(j, "requests.completed") + tu_num(j, "requests.rejected") +
                 tu_num(j, "requests.failed") + tu_num(j, "requests.timed_out") +
                 tu_num(j, "requests.in_flight_at_end");
    CU_ASSERT(gen > 0);
    CU_ASSERT_EQUAL(gen, sum);
    CU_ASSERT(tu_num(j, "requests.failed") > 0);
    cJSON_Delete(j);

    /* transitions and notifications in events.jsonl: pending, firing and
     * resolved for each alert; each alert's firing notification, and
     * NodeDown's resolution at the group's next flush (group_interval 5m
     * after 895): PagerDuty sends resolved alerts by default, email not */
    char path[4400];
    snprintf(path, sizeof path, "%s/events.jsonl", out);
    char *ev = tu_read(path);
    CU_ASSERT_PTR_NOT_NULL_FATAL(ev);
    CU_ASSERT_EQUAL(count_type(ev, "alert"), 6);
    CU_ASSERT_EQUAL(count_type(ev, "notification"), 3);
    CU_ASSERT_PTR_NOT_NULL(strstr(ev, "{\"t_s\":1195,\"type\":\"notification\",\"subject\":\"pager\","
                                      "\"detail\":\"pagerduty: 0 firing, 1 resolved"));
    CU_ASSERT_PTR_NOT_NULL(strstr(ev, "{\"t_s\":375,\"type\":\"alert\",\"subject\":\"HighCPU\","
                                      "\"detail\":\"pending -> firing"));
    CU_ASSERT_PTR_NOT_NULL(strstr(ev, "{\"t_s\":895,\"type\":\"notification\",\"subject\":\"pager\","
                                      "\"detail\":\"pagerduty: 1 firing"));

    /* same scenario, same seed: the same events */
    char out2[4300];
    snprintf(out2, sizeof out2, "%s/run2", tmp);
    CU_ASSERT_EQUAL_FATAL(tu_sh(log, "'%s' run '%s' --out '%s' --quiet", tu_bin(), scen, out2), 0);
    snprintf(path, sizeof path, "%s/events.jsonl", out2);
    char *ev2 = tu_read(path);
    CU_ASSERT_PTR_NOT_NULL_FATAL(ev2);
    CU_ASSERT_STRING_EQUAL(ev, ev2);
    free(ev);
    free(ev2);
}

static void show_log(const char *log)
{
    char *t = tu_read(log);
    fprintf(stderr, "\n%s\n", t ? t : "");
    free(t);
}

static void test_promtool_exports(void)
{
    char out[4300], log[4300], pt[4300], om[4300], tsdb[4300];
    snprintf(out, sizeof out, "%s/export", tmp);
    snprintf(log, sizeof log, "%s/export.log", tmp);
    snprintf(pt, sizeof pt, "%s/promtool/test.yml", tmp);
    snprintf(om, sizeof om, "%s/metrics.om", tmp);
    snprintf(tsdb, sizeof tsdb, "%s/tsdb", tmp);
    tu_sh(NULL, "mkdir -p '%s/promtool'", tmp);
    /* the burn-rate rules as a second rule file: the 2 minutes of 502s
     * burn a 99.9% budget far faster than 14.4x */
    int rc = tu_sh(log, "'%s' run '%s' --out '%s' --quiet --set monitoring.slo_rules=true "
                        "--promtool-test '%s' --openmetrics '%s'",
                   tu_bin(), scen, out, pt, om);
    if (rc)
        show_log(log);
    CU_ASSERT_EQUAL_FATAL(rc, 0);
    cJSON *j = tu_summary(out);
    CU_ASSERT_PTR_NOT_NULL_FATAL(j);
    CU_ASSERT_PTR_NOT_NULL(alert_named(cJSON_GetObjectItemCaseSensitive(j, "alerts"),
                                       "SLOErrorBudgetBurn"));
    cJSON_Delete(j);
    char *text = tu_read(pt);
    CU_ASSERT_PTR_NOT_NULL_FATAL(text);
    CU_ASSERT_PTR_NOT_NULL(strstr(text, "rules.yml\"\n  - \"test.slo-rules.yml\"\n"));
    CU_ASSERT_PTR_NOT_NULL(strstr(text, "alertname: \"SLOErrorBudgetBurn\""));
    CU_ASSERT_PTR_NOT_NULL(strstr(text, "alertname: \"NodeDown\""));
    free(text);
    text = tu_read(om);
    CU_ASSERT_PTR_NOT_NULL_FATAL(text);
    CU_ASSERT_PTR_NOT_NULL(strstr(text, "fleetsim_requests_total{class=\"api\",code=\"502\",pool=\"gpu\"}"));
    CU_ASSERT_PTR_NOT_NULL(strstr(text, "fleetsim_request_duration_seconds_bucket{class=\"api\",le=\"0.15\""));
    CU_ASSERT_PTR_NOT_NULL(strstr(text, "# EOF\n"));
    free(text);
    if (!have_promtool)
        return;
    rc = tu_sh(log, "cd '%s/promtool' && promtool test rules test.yml", tmp);
    if (rc)
        show_log(log);
    CU_ASSERT_EQUAL(rc, 0);
    rc = tu_sh(log, "promtool tsdb create-blocks-from openmetrics '%s' '%s'", om, tsdb);
    if (rc)
        show_log(log);
    CU_ASSERT_EQUAL(rc, 0);
}

/* A copy of text with the first `from` replaced by `to`. */
static char *with_replaced(const char *text, const char *from, const char *to)
{
    const char *at = strstr(text, from);
    size_t len = strlen(text) + strlen(to) + 1;
    char *out = malloc(len);
    snprintf(out, len, "%.*s%s%s", (int)(at - text), text, to, at + strlen(from));
    return out;
}

static void test_bad_inputs(void)
{
    char path[4300], log[4300], bad[4300];
    snprintf(log, sizeof log, "%s/bad.log", tmp);
    snprintf(path, sizeof path, "%s/broken.yml", tmp);
    tu_write(path, "groups:\n  - name: x\n    rules:\n      - alert: A\n        expr: up ==\n");
    snprintf(bad, sizeof bad, "%s/bad.yaml", tmp);
    char *text = with_replaced(scenario_text, "rules: rules.yml", "rules: [rules.yml, broken.yml]");
    tu_write(bad, text);
    free(text);
    CU_ASSERT_EQUAL(tu_sh(log, "'%s' validate '%s'", tu_bin(), bad), 2);
    char *msg = tu_read(log);
    CU_ASSERT_PTR_NOT_NULL_FATAL(msg);
    CU_ASSERT_PTR_NOT_NULL(strstr(msg, "broken.yml:5:"));
    free(msg);
    /* slo_rules without an availability objective */
    CU_ASSERT_EQUAL(tu_sh(log, "'%s' validate '%s' --set monitoring.slo_rules=true "
                               "--set slo.availability=1", tu_bin(), scen), 2);
    /* --promtool-test with no rules to test */
    snprintf(bad, sizeof bad, "%s/plain.yaml", tmp);
    text = with_replaced(scenario_text, "monitoring:\n", "unwatched:\n");
    *strstr(text, "unwatched:\n") = '\0';
    tu_write(bad, text);
    free(text);
    CU_ASSERT_EQUAL(tu_sh(log, "'%s' run '%s' --quiet --out '%s/x' --promtool-test '%s/t.yml'",
                          tu_bin(), bad, tmp, tmp), 2);
}

int main(void)
{
    tmp = tu_tmpdir();
    if (!tmp)
        return 1;
    char path[4300];
    snprintf(path, sizeof path, "%s/rules.yml", tmp);
    tu_write(path, rules_text);
    snprintf(path, sizeof path, "%s/am.yml", tmp);
    tu_write(path, am_text);
    snprintf(scen, sizeof scen, "%s/s.yaml", tmp);
    tu_write(scen, scenario_text);
    have_promtool = tu_sh("/dev/null", "promtool --version") == 0;
    if (!have_promtool)
        printf("test_observe: SKIPPED the promtool checks: promtool not found "
               "(Debian package prometheus; scripts/install-deps.sh)\n");
    if (CU_initialize_registry() != CUE_SUCCESS)
        return 1;
    CU_pSuite s = CU_add_suite("observe", NULL, NULL);
    CU_add_test(s, "alert timeline of a load step and a crash", test_alert_timeline);
    CU_add_test(s, "--promtool-test and --openmetrics pass promtool", test_promtool_exports);
    CU_add_test(s, "bad monitoring inputs exit 2", test_bad_inputs);
    CU_basic_set_mode(CU_BRM_VERBOSE);
    CU_basic_run_tests();
    int failures = (int)CU_get_number_of_failures();
    CU_cleanup_registry();
    if (!failures)
        tu_rm_rf(tmp);
    free(tmp);
    return failures;
}
