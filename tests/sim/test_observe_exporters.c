/*
 * test_observe_exporters.c - the node memory, GPU memory and network
 * exporters of a run, read back from its --openmetrics export.
 *
 * One node with two GPUs; deterministic 2 s batches of up to 4 requests
 * (max_wait 100 ms); the model holds 16 GiB of weights and 20 MiB per
 * request in a running batch on 80 GiB GPUs; the host has 256 GiB, 8 GiB
 * in use while up and 1 MiB per queued request; requests are 4 KB in and
 * 1 KB out; scrapes every 10 s. Arrivals (a trace): 8 at 9.0 s, so each
 * GPU runs a batch of 4 over [9, 11]; 3 at 9.5 s, which wait in the
 * node's queue until 11; 2 at 40 s. The node crashes at 25 s and is back
 * (no start-up delays) at 35 s. So:
 * - at 10 s: DCGM_FI_DEV_FB_USED = 16384 + 4 x 20 = 16464 MiB on each GPU,
 *   FB_FREE = 81920 - 16464 = 65456, FB_TOTAL = 81920; MemAvailable =
 *   256 GiB - 8 GiB - 3 MiB; received 11 x 4000 B, transmitted 0 (nothing
 *   completed yet);
 * - at 20 s: everything done: FB_USED 16384 (the weights), MemAvailable
 *   256 - 8 GiB, received 44000 B, transmitted 11 x 1000 B;
 * - at 30 s: the node is down: up 0, no exporter sample;
 * - at 50 s: the counters started again from 0 at the crash: received
 *   2 x 4000 B, transmitted 2 x 1000 B.
 * Without models.<m>.memory and host_memory, no GPU or node memory series
 * is exported at all (no model behind them); the network counters are.
 *
 * node_exporter's CPU view in the same run: one CPU per GPU, busy as the
 * GPUs are: 2 of 20 GPU-seconds busy before the scrape at 10 s (the two
 * batches over [9, 10]), 4 of 20 before 20 s (the rest of them to 11 and
 * the queued three's batch over [11, 13]), so node_cpu_seconds_total
 * {mode="user"} 1 then 3 per CPU, idle 9 then 17; DCGM_FI_DEV_GPU_UTIL 10
 * (%), DCGM_FI_DEV_POWER_USAGE 70 + 630 x 0.1 then x 0.2 W (the default
 * gpu_type h100's idle and busy draw), DCGM_FI_DEV_SM_CLOCK 1980 MHz while
 * busy, 210 idle. After the reboot at 35 s, node_boot_time_seconds moves
 * to 35 s and the CPU counters start again. A busy run fires
 * node_exporter's classic CPU rule; an idle one does not; a rule selecting
 * a metric the scenario never exports is warned about at load.
 */
#include "testutil.h"

#include <CUnit/Basic.h>

#include <math.h>

static char *tmp;

static const char *scenario_fmt =
    "name: exporters\n"
    "seed: 1\n"
    "duration: 1m\n"
    "models:\n"
    "  m:\n"
    "    service: {distribution: deterministic, mean: 2s}\n"
    "    batch: {max_size: 4, max_wait: 100ms}\n"
    "%s"
    "pools:\n"
    "  gpu:\n"
    "    model: m\n"
    "    replicas: 1\n"
    "    gpus_per_node: 2\n"
    "%s"
    "traffic:\n"
    "  - name: api\n"
    "    pool: gpu\n"
    "    size: 4KB\n"
    "    response_size: 1KB\n"
    "    arrivals: {process: trace, trace: trace.csv}\n"
    "chaos:\n"
    "  - {fault: node_crash, at: 25s, target: gpu/0, recover_after: 10s}\n"
    "monitoring: {scrape_interval: 10s}\n";

static const char *memory_keys = "    memory: {weights: 16GiB, per_request: 20MiB}\n";
static const char *pool_keys =
    "    gpu_memory: 80GiB\n"
    "    host_memory: {total: 256GiB, base: 8GiB, per_queued_request: 1MiB}\n";

#define GIB 1073741824.0
#define MIB 1048576.0

/* Runs the scenario with these extra keys; the --openmetrics text, or NULL. */
static char *run(const char *name, const char *model_keys, const char *pool_extra)
{
    char path[4300], out[4300], om[4300], log[4300], text[4096];
    snprintf(text, sizeof text, scenario_fmt, model_keys, pool_extra);
    snprintf(path, sizeof path, "%s/%s.yaml", tmp, name);
    tu_write(path, text);
    snprintf(out, sizeof out, "%s/%s", tmp, name);
    snprintf(om, sizeof om, "%s/%s.om", tmp, name);
    snprintf(log, sizeof log, "%s/%s.log", tmp, name);
    int rc = tu_sh(log, "'%s' run '%s' --quiet --out '%s' --openmetrics '%s' --series", tu_bin(), path,
                   out, om);
    CU_ASSERT_EQUAL(rc, 0);
    if (rc) {
        char *t = tu_read(log);
        fprintf(stderr, "\n%s\n", t ? t : "");
        free(t);
        return NULL;
    }
    return tu_read(om);
}

#define NODE "node=\"gpu/0\",pool=\"gpu\""
#define RX "node_network_receive_bytes_total{device=\"eth0\"," NODE "}"
#define TX "node_network_transmit_bytes_total{device=\"eth0\"," NODE "}"
#define FB(name, g) "DCGM_FI_DEV_FB_" name "{gpu=\"" #g "\"," NODE "}"

static void test_memory_and_network(void)
{
    char *om = run("full", memory_keys, pool_keys);
    CU_ASSERT_PTR_NOT_NULL_FATAL(om);

    /* a batch of 4 running on each GPU, 3 requests queued */
    CU_ASSERT_EQUAL(tu_om_sample(om, FB("USED", 0), 10), 16384 + 4 * 20);
    CU_ASSERT_EQUAL(tu_om_sample(om, FB("USED", 1), 10), 16384 + 4 * 20);
    CU_ASSERT_EQUAL(tu_om_sample(om, FB("FREE", 0), 10), 81920 - 16464);
    CU_ASSERT_EQUAL(tu_om_sample(om, FB("TOTAL", 1), 10), 81920);
    CU_ASSERT_EQUAL(tu_om_sample(om, "node_memory_MemTotal_bytes{" NODE "}", 10), 256 * GIB);
    CU_ASSERT_EQUAL(tu_om_sample(om, "node_memory_MemAvailable_bytes{" NODE "}", 10),
                    256 * GIB - 8 * GIB - 3 * MIB);
    CU_ASSERT_EQUAL(tu_om_sample(om, RX, 10), 11 * 4000);
    CU_ASSERT_EQUAL(tu_om_sample(om, TX, 10), 0);

    /* all 11 done: the weights stay, the queue is empty */
    CU_ASSERT_EQUAL(tu_om_sample(om, FB("USED", 0), 20), 16384);
    CU_ASSERT_EQUAL(tu_om_sample(om, FB("FREE", 1), 20), 81920 - 16384);
    CU_ASSERT_EQUAL(tu_om_sample(om, "node_memory_MemAvailable_bytes{" NODE "}", 20),
                    256 * GIB - 8 * GIB);
    CU_ASSERT_EQUAL(tu_om_sample(om, RX, 20), 11 * 4000);
    CU_ASSERT_EQUAL(tu_om_sample(om, TX, 20), 11 * 1000);

    /* down: a failed scrape, no exporter sample */
    CU_ASSERT_EQUAL(tu_om_sample(om, "up{" NODE "}", 30), 0);
    CU_ASSERT(isnan(tu_om_sample(om, RX, 30)));
    CU_ASSERT(isnan(tu_om_sample(om, FB("USED", 0), 30)));

    /* rebooted: counters from 0, the model loaded again */
    CU_ASSERT_EQUAL(tu_om_sample(om, "up{" NODE "}", 50), 1);
    CU_ASSERT_EQUAL(tu_om_sample(om, RX, 50), 2 * 4000);
    CU_ASSERT_EQUAL(tu_om_sample(om, TX, 50), 2 * 1000);
    CU_ASSERT_EQUAL(tu_om_sample(om, FB("USED", 1), 50), 16384);
    free(om);
}

static void test_no_model_no_series(void)
{
    char *om = run("plain", "", "");
    CU_ASSERT_PTR_NOT_NULL_FATAL(om);
    CU_ASSERT_PTR_NULL(strstr(om, "DCGM_FI_DEV_FB"));
    CU_ASSERT_PTR_NULL(strstr(om, "node_memory_"));
    CU_ASSERT_EQUAL(tu_om_sample(om, RX, 20), 11 * 4000);
    CU_ASSERT_EQUAL(tu_om_sample(om, TX, 20), 11 * 1000);
    free(om);
    /* GPU memory without a declared capacity: used only */
    om = run("used-only", memory_keys, "");
    CU_ASSERT_PTR_NOT_NULL_FATAL(om);
    CU_ASSERT_EQUAL(tu_om_sample(om, FB("USED", 0), 10), 16464);
    CU_ASSERT_PTR_NULL(strstr(om, "DCGM_FI_DEV_FB_FREE"));
    CU_ASSERT_PTR_NULL(strstr(om, "DCGM_FI_DEV_FB_TOTAL"));
    free(om);
}


static void test_node_exporter_and_dcgm(void)
{
    char *om = run("full", memory_keys, pool_keys);
    CU_ASSERT_PTR_NOT_NULL_FATAL(om);
    for (int c = 0; c < 2; c++) {
        char user[256], idle[256];
        snprintf(user, sizeof user, "node_cpu_seconds_total{cpu=\"%d\",mode=\"user\"," NODE "}", c);
        snprintf(idle, sizeof idle, "node_cpu_seconds_total{cpu=\"%d\",mode=\"idle\"," NODE "}", c);
        CU_ASSERT_DOUBLE_EQUAL(tu_om_sample(om, user, 10), 1.0, 1e-9);
        CU_ASSERT_DOUBLE_EQUAL(tu_om_sample(om, idle, 10), 9.0, 1e-9);
        CU_ASSERT_DOUBLE_EQUAL(tu_om_sample(om, user, 20), 3.0, 1e-9);
        CU_ASSERT_DOUBLE_EQUAL(tu_om_sample(om, idle, 20), 17.0, 1e-9);
        /* rebooted at 35: from 0 again, 15 s up at 50, 2 GPU-s run since */
        CU_ASSERT_DOUBLE_EQUAL(tu_om_sample(om, user, 40), 0.0, 1e-9);
        CU_ASSERT_DOUBLE_EQUAL(tu_om_sample(om, user, 50), 1.0, 1e-9);
        CU_ASSERT_DOUBLE_EQUAL(tu_om_sample(om, user, 50) + tu_om_sample(om, idle, 50), 15.0, 1e-9);
    }
    CU_ASSERT_DOUBLE_EQUAL(tu_om_sample(om, "node_boot_time_seconds{" NODE "}", 20), 0, 1e-6);
    CU_ASSERT_DOUBLE_EQUAL(tu_om_sample(om, "node_boot_time_seconds{" NODE "}", 50), 35, 1e-6);
    CU_ASSERT_EQUAL(tu_om_sample(om, "DCGM_FI_DEV_GPU_UTIL{gpu=\"1\"," NODE "}", 10), 10);
    CU_ASSERT_DOUBLE_EQUAL(tu_om_sample(om, "DCGM_FI_DEV_POWER_USAGE{gpu=\"0\"," NODE "}", 10),
                           70 + 630 * 0.1, 1e-9);
    CU_ASSERT_DOUBLE_EQUAL(tu_om_sample(om, "DCGM_FI_DEV_POWER_USAGE{gpu=\"0\"," NODE "}", 20),
                           70 + 630 * 0.2, 1e-9);
    CU_ASSERT_EQUAL(tu_om_sample(om, "DCGM_FI_DEV_SM_CLOCK{gpu=\"0\"," NODE "}", 10), 1980);
    CU_ASSERT_EQUAL(tu_om_sample(om, "DCGM_FI_DEV_SM_CLOCK{gpu=\"0\"," NODE "}", 40), 210);
    /* 8 + 3 requests at 9-9.5 s on two GPUs: the load average is up */
    CU_ASSERT(tu_om_sample(om, "node_load1{" NODE "}", 10) > 0);
    CU_ASSERT_EQUAL(tu_om_sample(om, "kube_deployment_status_replicas{deployment=\"gpu\","
                                     "namespace=\"default\"}", 10), 1);
    /* HELP and TYPE as the exporters write them */
    CU_ASSERT_PTR_NOT_NULL(strstr(om, "# HELP node_cpu_seconds Seconds the CPUs spent in each mode.\n"
                                      "# TYPE node_cpu_seconds counter\n"));
    CU_ASSERT_PTR_NOT_NULL(strstr(om, "# TYPE DCGM_FI_DEV_GPU_UTIL gauge\n"));
    free(om);
}

/* The busy or idle scenario with node_exporter's classic CPU rule. */
static const char *busy_fmt =
    "name: cpu-rule\n"
    "seed: 1\n"
    "duration: 5m\n"
    "models:\n"
    "  m: {service: {distribution: deterministic, mean: 1s}, batch: {max_size: 1, max_wait: 0s}}\n"
    "pools:\n"
    "  gpu: {model: m, replicas: 2, gpus_per_node: 2, queue_capacity: 100000}\n"
    "traffic:\n"
    "  - {name: api, pool: gpu, arrivals: {process: deterministic, rate: %s}}\n"
    "monitoring:\n"
    "  scrape_interval: 15s\n"
    "  evaluation_interval: 15s\n"
    "  rules: cpu-rules.yml\n";

static const char *cpu_rules =
    "groups:\n"
    "  - name: node\n"
    "    rules:\n"
    "      - alert: NodeCPUBusy\n"
    "        expr: avg(rate(node_cpu_seconds_total{mode!=\"idle\"}[1m])) > 0.7\n"
    "      - alert: Typo\n"
    "        expr: node_cpu_utilization > 0.9 or absent(up)\n";

static cJSON *run_cpu_rule(const char *name, const char *qps, char **log_text)
{
    char path[4300], out[4300], log[4300], text[4096];
    snprintf(text, sizeof text, busy_fmt, qps);
    snprintf(path, sizeof path, "%s/%s.yaml", tmp, name);
    tu_write(path, text);
    snprintf(out, sizeof out, "%s/%s", tmp, name);
    snprintf(log, sizeof log, "%s/%s.log", tmp, name);
    int rc = tu_sh(log, "'%s' run '%s' --quiet --out '%s'", tu_bin(), path, out);
    CU_ASSERT_EQUAL(rc, 0);
    *log_text = tu_read(log);
    return tu_summary(out);
}

static void test_cpu_rule_fires_when_busy(void)
{
    char path[4300];
    snprintf(path, sizeof path, "%s/cpu-rules.yml", tmp);
    tu_write(path, cpu_rules);
    char *log;
    /* 8 qps of 1 s requests on 4 GPUs: saturated from the first seconds */
    cJSON *j = run_cpu_rule("busy", "8", &log);
    CU_ASSERT_PTR_NOT_NULL_FATAL(j);
    const cJSON *a, *busy = NULL;
    cJSON_ArrayForEach(a, cJSON_GetObjectItemCaseSensitive(j, "alerts"))
    {
        const cJSON *n = cJSON_GetObjectItemCaseSensitive(a, "name");
        if (cJSON_IsString(n) && !strcmp(n->valuestring, "NodeCPUBusy"))
            busy = a;
    }
    CU_ASSERT_PTR_NOT_NULL(busy);
    if (busy)
        CU_ASSERT(tu_num(busy, "firing_at") <= 60);
    /* one warning, for the rule with the misspelt name, with its place */
    CU_ASSERT_PTR_NOT_NULL(log);
    if (log) {
        CU_ASSERT_PTR_NOT_NULL(strstr(log, "cpu-rules.yml:6:"));
        CU_ASSERT_PTR_NOT_NULL(strstr(log, "warning: rule \"Typo\" selects node_cpu_utilization, "
                                           "which this scenario never produces"));
        CU_ASSERT_PTR_NULL(strstr(log, "NodeCPUBusy\" selects"));
    }
    free(log);
    cJSON_Delete(j);
    /* 0.2 qps of 1 s requests on 4 GPUs: 5% busy, never above 0.7 */
    j = run_cpu_rule("idle", "0.2", &log);
    CU_ASSERT_PTR_NOT_NULL_FATAL(j);
    cJSON_ArrayForEach(a, cJSON_GetObjectItemCaseSensitive(j, "alerts"))
    {
        const cJSON *n = cJSON_GetObjectItemCaseSensitive(a, "name");
        CU_ASSERT(!cJSON_IsString(n) || strcmp(n->valuestring, "NodeCPUBusy") != 0);
    }
    free(log);
    cJSON_Delete(j);
}

/* `validate` warns of the same rule as a run does, with its place, and
 * of nothing else; a vLLM series in a scenario with no LLM pool is never
 * produced either. It stays a warning: validate exits 0. */
static void test_validate_warns_unproduced(void)
{
    char path[4300], log[4300], text[4096];
    snprintf(path, sizeof path, "%s/cpu-rules.yml", tmp);
    tu_write(path, cpu_rules);
    snprintf(path, sizeof path, "%s/llm-rules.yml", tmp);
    tu_write(path, "groups:\n"
                   "  - name: llm\n"
                   "    rules:\n"
                   "      - alert: Waiting\n"
                   "        expr: sum(vllm:num_requests_waiting) > 10\n");
    snprintf(text, sizeof text, busy_fmt, "8");
    snprintf(text + strlen(text), sizeof text - strlen(text), "  rules: [cpu-rules.yml, llm-rules.yml]\n");
    /* the format ends with a `rules:` line; the list above replaces it */
    char *last = strstr(text, "  rules: cpu-rules.yml\n");
    CU_ASSERT_PTR_NOT_NULL_FATAL(last);
    memmove(last, last + strlen("  rules: cpu-rules.yml\n"),
            strlen(last + strlen("  rules: cpu-rules.yml\n")) + 1);
    snprintf(path, sizeof path, "%s/validate.yaml", tmp);
    tu_write(path, text);
    snprintf(log, sizeof log, "%s/validate.log", tmp);
    CU_ASSERT_EQUAL(tu_sh(log, "'%s' validate '%s'", tu_bin(), path), 0);
    char *out = tu_read(log);
    CU_ASSERT_PTR_NOT_NULL_FATAL(out);
    CU_ASSERT_PTR_NOT_NULL(strstr(out, ": ok ("));
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "cpu-rules.yml:6:"));
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "warning: rule \"Typo\" selects node_cpu_utilization, "
                                       "which this scenario never produces"));
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "llm-rules.yml:4:"));
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "warning: rule \"Waiting\" selects "
                                       "vllm:num_requests_waiting, which this scenario never "
                                       "produces"));
    CU_ASSERT_PTR_NULL(strstr(out, "NodeCPUBusy\" selects"));
    free(out);
}

/* The last scrape as the exporters' /metrics (out/metrics.prom, written
 * with --series) passes Debian's promtool 2.42 `check metrics`: it parses,
 * and its linter finds nothing but node_exporter's own camelCase memory
 * names (MemTotal, MemAvailable), which it flags in node_exporter's output
 * too. */
static void test_promtool_check_metrics(void)
{
    if (tu_sh("/dev/null", "promtool --version") != 0) {
        printf("SKIPPED: promtool not found (apt-get install prometheus)\n");
        return;
    }
    char *om = run("plain-check", "", "");
    free(om);
    char log[4300];
    snprintf(log, sizeof log, "%s/check-plain.log", tmp);
    CU_ASSERT_EQUAL(tu_sh(log, "promtool check metrics < '%s/plain-check/metrics.prom'", tmp), 0);
    char *text = tu_read(log);
    CU_ASSERT_PTR_NOT_NULL(text);
    if (text)
        CU_ASSERT_STRING_EQUAL(text, "");
    free(text);
    om = run("full-check", memory_keys, pool_keys);
    free(om);
    snprintf(log, sizeof log, "%s/check-full.log", tmp);
    CU_ASSERT_EQUAL(tu_sh(log, "promtool check metrics < '%s/full-check/metrics.prom'", tmp), 3);
    text = tu_read(log);
    CU_ASSERT_PTR_NOT_NULL(text);
    if (text)
        CU_ASSERT_STRING_EQUAL(text, "node_memory_MemAvailable_bytes metric names should be written in "
                                     "'snake_case' not 'camelCase'\n"
                                     "node_memory_MemTotal_bytes metric names should be written in "
                                     "'snake_case' not 'camelCase'\n");
    free(text);
    /* and it is the scrape: the counters, HELP and TYPE as an exporter shows them */
    char path[4300];
    snprintf(path, sizeof path, "%s/full-check/metrics.prom", tmp);
    text = tu_read(path);
    CU_ASSERT_PTR_NOT_NULL_FATAL(text);
    CU_ASSERT_PTR_NOT_NULL(strstr(text, "# TYPE node_cpu_seconds_total counter\n"));
    CU_ASSERT_PTR_NOT_NULL(strstr(text, "\nup{node=\"gpu/0\",pool=\"gpu\"} 1\n"));
    free(text);
}

int main(void)
{
    tmp = tu_tmpdir();
    if (!tmp)
        return 1;
    char path[4300];
    snprintf(path, sizeof path, "%s/trace.csv", tmp);
    tu_write(path, "t\n9\n9\n9\n9\n9\n9\n9\n9\n9.5\n9.5\n9.5\n40\n40\n");
    if (CU_initialize_registry() != CUE_SUCCESS)
        return 1;
    CU_pSuite s = CU_add_suite("observe_exporters", NULL, NULL);
    CU_add_test(s, "GPU memory, node memory and network bytes", test_memory_and_network);
    CU_add_test(s, "no memory model, no memory series", test_no_model_no_series);
    CU_add_test(s, "node_exporter CPU, boot time, load; DCGM utilisation, power, clock",
                test_node_exporter_and_dcgm);
    CU_add_test(s, "node_exporter's CPU rule fires when busy; unexported names warned",
                test_cpu_rule_fires_when_busy);
    CU_add_test(s, "validate warns of unexported names", test_validate_warns_unproduced);
    CU_add_test(s, "promtool check metrics on the last scrape", test_promtool_check_metrics);
    CU_basic_set_mode(CU_BRM_VERBOSE);
    CU_basic_run_tests();
    int failures = (int)CU_get_number_of_failures();
    CU_cleanup_registry();
    if (!failures)
        tu_rm_rf(tmp);
    free(tmp);
    return failures;
}
