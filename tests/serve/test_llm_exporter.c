/*
 * test_llm_exporter.c - the vllm:* series that a scrape of an LLM pool's
 * nodes publishes (observe.c, fed by serve/llm.c), read back from a run's
 * --openmetrics export: names, types, labels, exact values, histogram
 * buckets, the reset when the node's host goes down; the same samples as a
 * scrape body through `promtool check metrics`, and an alert rule over them
 * through `promtool test rules` (the promtool steps are skipped, with a
 * message, without promtool).
 *
 * One request: alpha_beta steps of 15 ms + 100 us per prompt token + 1 ms
 * per decode sequence, no network time. 100 prompt and 10 output tokens
 * sent at 0 s: the prefill step gives the first token at TTFT 25 ms, nine
 * 16 ms decode steps the rest (ITL 16 ms, TPOT 16 ms, E2E 169 ms). The node
 * crashes at 12 s and is back at 22 s (no start-up delays); a request of
 * 60 prompt and 4 output tokens at 25 s (TTFT 21 ms) finds every counter
 * started again from 0. Scrapes every 10 s.
 *
 * A backlog: a node of two single-GPU replicas with max_num_seqs 2 and
 * 1000 KV blocks gets six requests of 100 prompt and 1000 output tokens at
 * 0 s; the node puts three on each replica (lowest 4 x waiting + running
 * first), so at the 10 s scrape 4 run and 2 wait. On each replica the two
 * prompts take a 35 ms step, then decode steps of 17 ms: 586 have ended by
 * 10 s (587 tokens each) and the 587th runs, its KV 100 + 587 = 687 tokens
 * in 43 blocks of 16, so each replica holds 86 of its 1000 blocks: the
 * node's mean 0.086 (a sum would be 0.172). The first answers end at
 * 0.035 + 999 x 0.017 = 17.018 s, and the waiting requests run:
 * `vllm:num_requests_waiting > 1` fires at the 10 s evaluation and resolves
 * at 20 s.
 */
#include "testutil.h"

#include <CUnit/Basic.h>

#include <math.h>

static char *tmp;
static int have_promtool;

static const char *model_fmt =
    "models:\n"
    "  m:\n"
    "    llm:\n"
    "      config: {hidden_size: 4096, num_hidden_layers: 32, num_attention_heads: 32,\n"
    "               num_key_value_heads: 8, intermediate_size: 14336, vocab_size: 128256}\n"
    "      step: {model: alpha_beta, overhead: 15ms, per_prefill_token: 100us,\n"
    "             per_decode_seq: 1ms}\n"
    "%s"
    "pools:\n"
    "  p:\n"
    "    model: m\n"
    "    replicas: 1\n"
    "    gpus_per_node: %d\n"
    "    gpu: H100-SXM\n"
    "    link: {latency: 0s}\n"
    "traffic:\n"
    "  - name: t\n"
    "    pool: p\n"
    "    size: 0B\n"
    "    response_size: 0B\n"
    "    tokens: {trace: %s}\n";

static void show_log(const char *log)
{
    char *t = tu_read(log);
    fprintf(stderr, "\n%s\n", t ? t : "");
    free(t);
}

/* Writes NAME.yaml (head, the model and pool with these keys and GPUs, the
 * trace, then tail) into tmp and runs it with --openmetrics NAME.om and any
 * extra options; the export's text, or NULL. */
static char *run(const char *name, const char *head, const char *model_extra, int gpus,
                 const char *trace, const char *tail, const char *extra)
{
    char path[4300], out[4300], om[4300], log[4300], text[8192];
    int at = snprintf(text, sizeof text, "%s", head);
    at += snprintf(text + at, sizeof text - (size_t)at, model_fmt, model_extra, gpus, trace);
    snprintf(text + at, sizeof text - (size_t)at, "%s", tail);
    snprintf(path, sizeof path, "%s/%s.yaml", tmp, name);
    tu_write(path, text);
    snprintf(out, sizeof out, "%s/%s", tmp, name);
    snprintf(om, sizeof om, "%s/%s.om", tmp, name);
    snprintf(log, sizeof log, "%s/%s.log", tmp, name);
    int rc = tu_sh(log, "cd '%s' && '%s' run '%s' --quiet --out '%s' --openmetrics '%s' %s", tmp,
                   tu_bin(), path, out, om, extra ? extra : "");
    CU_ASSERT_EQUAL(rc, 0);
    if (rc) {
        show_log(log);
        return NULL;
    }
    return tu_read(om);
}

#define L "model_name=\"m\",node=\"p/0\",pool=\"p\""
#define S(name) "vllm:" name "{" L "}"
#define STOP "vllm:request_success_total{finished_reason=\"stop\"," L "}"
#define BKT(h, le) "vllm:" h "_bucket{le=\"" le "\"," L "}"

/* The vllm:* samples of an export at sim time t_s as the node's /metrics
 * would serve them: the Prometheus text format that vLLM's
 * prometheus_client writes, a counter's HELP and TYPE under its sample
 * name (x_total), no timestamps. malloc'd. */
static char *scrape_body(const char *om, int t_s)
{
    char stamp[32], help[1024] = "";
    snprintf(stamp, sizeof stamp, " %d.000", 1700000000 + t_s);
    size_t sl = strlen(stamp), cap = strlen(om) + 4096, at = 0;
    char *out = malloc(cap);
    out[0] = '\0';
    for (const char *line = om; *line;) {
        const char *end = strchr(line, '\n');
        size_t len = end ? (size_t)(end - line) : strlen(line);
        if (!strncmp(line, "# HELP vllm:", 12) && len < sizeof help) {
            memcpy(help, line, len);
            help[len] = '\0';
        } else if (!strncmp(line, "# TYPE vllm:", 12)) {
            char fam[256] = "", type[32] = "";
            sscanf(line, "# TYPE %255s %31s", fam, type);
            const char *sfx = !strcmp(type, "counter") ? "_total" : "";
            const char *text = strlen(help) > 7 + strlen(fam) ? help + 7 + strlen(fam) : "";
            at += (size_t)snprintf(out + at, cap - at, "# HELP %s%s%s\n# TYPE %s%s %s\n", fam, sfx,
                                   text, fam, sfx, type);
        } else if (!strncmp(line, "vllm:", 5) && len > sl && !strncmp(line + len - sl, stamp, sl)) {
            at += (size_t)snprintf(out + at, cap - at, "%.*s\n", (int)(len - sl), line);
        }
        line += len + (end ? 1 : 0);
    }
    return out;
}

/* `promtool check metrics` on the scrape body: vLLM's names have colons,
 * which promlint reserves for recording rules, so that is the one problem
 * it may report (as it does for vLLM's own /metrics); with the colon
 * replaced, none. */
static void check_metrics(const char *om, int t_s)
{
    char body[4300], log[4300];
    snprintf(body, sizeof body, "%s/body-%d.prom", tmp, t_s);
    snprintf(log, sizeof log, "%s/check-%d.log", tmp, t_s);
    char *text = scrape_body(om, t_s);
    CU_ASSERT_PTR_NOT_NULL(strstr(text, "# TYPE vllm:prompt_tokens_total counter\n"));
    CU_ASSERT_PTR_NOT_NULL(strstr(text, "# TYPE vllm:time_to_first_token_seconds histogram\n"));
    tu_write(body, text);
    free(text);
    if (!have_promtool)
        return;
    int rc = tu_sh(log, "promtool check metrics < '%s'", body);
    CU_ASSERT(rc == 0 || rc == 3);
    char *out = tu_read(log);
    int lines = 0, other = 0;
    for (char *l = out ? strtok(out, "\n") : NULL; l; l = strtok(NULL, "\n")) {
        lines++;
        size_t n = strlen(l);
        const char *want = "metric names should not contain ':'";
        if (n < strlen(want) || strcmp(l + n - strlen(want), want))
            other++;
    }
    CU_ASSERT_EQUAL(other, 0);
    if (other)
        show_log(log);
    CU_ASSERT(lines > 0);
    free(out);
    rc = tu_sh(log, "sed 's/vllm:/vllm_/g' '%s' | promtool check metrics", body);
    CU_ASSERT_EQUAL(rc, 0);
    if (rc)
        show_log(log);
}

static void test_one_request_and_a_crash(void)
{
    char trace[4300];
    snprintf(trace, sizeof trace, "%s/one.csv", tmp);
    tu_write(trace, "arrived_at,num_prefill_tokens,num_decode_tokens\n0.0,100,10\n25.0,60,4\n");
    char *om = run("one", "name: one\nduration: 40s\n", "      enable_prefix_caching: true\n", 1,
                   trace,
                   "chaos:\n"
                   "  - {fault: node_crash, at: 12s, target: p/0, recover_after: 10s}\n"
                   "monitoring: {scrape_interval: 10s}\n",
                   NULL);
    CU_ASSERT_PTR_NOT_NULL_FATAL(om);

    /* vLLM's families and types; the names vLLM retired are not there */
    static const char *const types[] = {
        "vllm:num_requests_running gauge",
        "vllm:num_requests_waiting gauge",
        "vllm:kv_cache_usage_perc gauge",
        "vllm:num_preemptions counter",
        "vllm:prompt_tokens counter",
        "vllm:generation_tokens counter",
        "vllm:request_success counter",
        "vllm:prefix_cache_queries counter",
        "vllm:prefix_cache_hits counter",
        "vllm:time_to_first_token_seconds histogram",
        "vllm:inter_token_latency_seconds histogram",
        "vllm:request_time_per_output_token_seconds histogram",
        "vllm:e2e_request_latency_seconds histogram",
    };
    for (size_t i = 0; i < sizeof types / sizeof *types; i++) {
        char line[128];
        snprintf(line, sizeof line, "\n# TYPE %s\n", types[i]);
        CU_ASSERT_PTR_NOT_NULL(strstr(om, line));
        if (!strstr(om, line))
            fprintf(stderr, "\n  missing: %s", line + 1);
    }
    CU_ASSERT_PTR_NULL(strstr(om, "vllm:gpu_cache_usage_perc"));
    CU_ASSERT_PTR_NULL(strstr(om, "vllm:time_per_output_token_seconds"));
    CU_ASSERT_PTR_NOT_NULL(strstr(om, "\n# HELP vllm:prompt_tokens "));

    /* t = 0: every series there, at 0 */
    CU_ASSERT_EQUAL(tu_om_sample(om, S("prompt_tokens_total"), 0), 0);
    CU_ASSERT_EQUAL(tu_om_sample(om, STOP, 0), 0);
    CU_ASSERT_EQUAL(tu_om_sample(om, S("time_to_first_token_seconds_count"), 0), 0);

    /* t = 10: the first request, done */
    CU_ASSERT_EQUAL(tu_om_sample(om, S("prompt_tokens_total"), 10), 100);
    CU_ASSERT_EQUAL(tu_om_sample(om, S("generation_tokens_total"), 10), 10);
    CU_ASSERT_EQUAL(tu_om_sample(om, STOP, 10), 1);
    static const char *const others[] = { "length", "abort", "error", "repetition" };
    for (int i = 0; i < 4; i++) {
        char s[256];
        snprintf(s, sizeof s, "vllm:request_success_total{finished_reason=\"%s\"," L "}",
                 others[i]);
        CU_ASSERT_EQUAL(tu_om_sample(om, s, 10), 0);
    }
    CU_ASSERT_EQUAL(tu_om_sample(om, S("num_preemptions_total"), 10), 0);
    CU_ASSERT_EQUAL(tu_om_sample(om, S("num_requests_running"), 10), 0);
    CU_ASSERT_EQUAL(tu_om_sample(om, S("num_requests_waiting"), 10), 0);
    CU_ASSERT_EQUAL(tu_om_sample(om, S("kv_cache_usage_perc"), 10), 0);
    CU_ASSERT_EQUAL(tu_om_sample(om, S("prefix_cache_queries_total"), 10), 100);
    CU_ASSERT_EQUAL(tu_om_sample(om, S("prefix_cache_hits_total"), 10), 0);
    /* TTFT 25 ms: in (0.02, 0.04] */
    CU_ASSERT_EQUAL(tu_om_sample(om, BKT("time_to_first_token_seconds", "0.02"), 10), 0);
    CU_ASSERT_EQUAL(tu_om_sample(om, BKT("time_to_first_token_seconds", "0.04"), 10), 1);
    CU_ASSERT_EQUAL(tu_om_sample(om, BKT("time_to_first_token_seconds", "2560.0"), 10), 1);
    CU_ASSERT_EQUAL(tu_om_sample(om, BKT("time_to_first_token_seconds", "+Inf"), 10), 1);
    CU_ASSERT_EQUAL(tu_om_sample(om, S("time_to_first_token_seconds_count"), 10), 1);
    CU_ASSERT_DOUBLE_EQUAL(tu_om_sample(om, S("time_to_first_token_seconds_sum"), 10), 0.025,
                           1e-9);
    /* nine gaps of 16 ms: in (0.01, 0.025] */
    CU_ASSERT_EQUAL(tu_om_sample(om, BKT("inter_token_latency_seconds", "0.01"), 10), 0);
    CU_ASSERT_EQUAL(tu_om_sample(om, BKT("inter_token_latency_seconds", "0.025"), 10), 9);
    CU_ASSERT_EQUAL(tu_om_sample(om, S("inter_token_latency_seconds_count"), 10), 9);
    CU_ASSERT_DOUBLE_EQUAL(tu_om_sample(om, S("inter_token_latency_seconds_sum"), 10), 9 * 0.016,
                           1e-9);
    CU_ASSERT_EQUAL(tu_om_sample(om, BKT("request_time_per_output_token_seconds", "0.01"), 10),
                    0);
    CU_ASSERT_EQUAL(tu_om_sample(om, BKT("request_time_per_output_token_seconds", "0.025"), 10),
                    1);
    CU_ASSERT_DOUBLE_EQUAL(tu_om_sample(om, S("request_time_per_output_token_seconds_sum"), 10),
                           0.016, 1e-9);
    /* E2E 169 ms: in (0, 0.3] */
    CU_ASSERT_EQUAL(tu_om_sample(om, BKT("e2e_request_latency_seconds", "0.3"), 10), 1);
    CU_ASSERT_EQUAL(tu_om_sample(om, S("e2e_request_latency_seconds_count"), 10), 1);
    CU_ASSERT_DOUBLE_EQUAL(tu_om_sample(om, S("e2e_request_latency_seconds_sum"), 10),
                           0.025 + 9 * 0.016, 1e-9);

    /* t = 20: down; a failed scrape, no vllm sample */
    CU_ASSERT_EQUAL(tu_om_sample(om, "up{node=\"p/0\",pool=\"p\"}", 20), 0);
    CU_ASSERT(isnan(tu_om_sample(om, S("prompt_tokens_total"), 20)));
    CU_ASSERT(isnan(tu_om_sample(om, BKT("time_to_first_token_seconds", "+Inf"), 20)));

    /* t = 30: a new process: everything from 0, then the second request */
    CU_ASSERT_EQUAL(tu_om_sample(om, "up{node=\"p/0\",pool=\"p\"}", 30), 1);
    CU_ASSERT_EQUAL(tu_om_sample(om, S("prompt_tokens_total"), 30), 60);
    CU_ASSERT_EQUAL(tu_om_sample(om, S("generation_tokens_total"), 30), 4);
    CU_ASSERT_EQUAL(tu_om_sample(om, STOP, 30), 1);
    CU_ASSERT_EQUAL(tu_om_sample(om, S("prefix_cache_queries_total"), 30), 60);
    CU_ASSERT_EQUAL(tu_om_sample(om, S("time_to_first_token_seconds_count"), 30), 1);
    CU_ASSERT_EQUAL(tu_om_sample(om, BKT("time_to_first_token_seconds", "0.04"), 30), 1);
    CU_ASSERT_DOUBLE_EQUAL(tu_om_sample(om, S("time_to_first_token_seconds_sum"), 30), 0.021,
                           1e-9);
    CU_ASSERT_EQUAL(tu_om_sample(om, S("inter_token_latency_seconds_count"), 30), 3);
    CU_ASSERT_EQUAL(tu_om_sample(om, S("e2e_request_latency_seconds_count"), 30), 1);

    check_metrics(om, 10);
    if (have_promtool) {
        char log[4300];
        snprintf(log, sizeof log, "%s/one-tsdb.log", tmp);
        int rc = tu_sh(log, "promtool tsdb create-blocks-from openmetrics '%s/one.om' '%s/tsdb'",
                       tmp, tmp);
        CU_ASSERT_EQUAL(rc, 0);
        if (rc)
            show_log(log);
    }
    free(om);
}

static const char *backlog_rules =
    "groups:\n"
    "  - name: vllm\n"
    "    rules:\n"
    "      - alert: VLLMQueueBacklog\n"
    "        expr: vllm:num_requests_waiting > 1\n"
    "        labels: {severity: warning}\n"
    "        annotations: {summary: \"{{ $value }} requests waiting on {{ $labels.node }}\"}\n"
    "      - record: model_name:vllm_generation_tokens:rate30s\n"
    "        expr: sum by (model_name) (rate(vllm:generation_tokens_total[30s]))\n";

static void test_backlog_and_rules(void)
{
    char trace[4300], path[4300], pt[4300], log[4300];
    snprintf(trace, sizeof trace, "%s/backlog.csv", tmp);
    tu_write(trace, "arrived_at,num_prefill_tokens,num_decode_tokens\n"
                    "0.0,100,1000\n0.0,100,1000\n0.0,100,1000\n"
                    "0.0,100,1000\n0.0,100,1000\n0.0,100,1000\n");
    snprintf(path, sizeof path, "%s/rules.yml", tmp);
    tu_write(path, backlog_rules);
    snprintf(pt, sizeof pt, "%s/promtool/test.yml", tmp);
    tu_sh(NULL, "mkdir -p '%s/promtool'", tmp);
    char extra[4400];
    snprintf(extra, sizeof extra, "--promtool-test '%s'", pt);
    char *om = run("backlog", "name: backlog\nduration: 60s\n",
                   "      max_num_seqs: 2\n      kv_blocks: 1000\n", 2, trace,
                   "monitoring: {scrape_interval: 10s, evaluation_interval: 10s,\n"
                   "             rules: rules.yml}\n",
                   extra);
    CU_ASSERT_PTR_NOT_NULL_FATAL(om);

    /* the node sums its replicas' counts and averages their KV usage */
    CU_ASSERT_EQUAL(tu_om_sample(om, S("num_requests_running"), 10), 4);
    CU_ASSERT_EQUAL(tu_om_sample(om, S("num_requests_waiting"), 10), 2);
    CU_ASSERT_DOUBLE_EQUAL(tu_om_sample(om, S("kv_cache_usage_perc"), 10), 0.086, 1e-12);
    CU_ASSERT_EQUAL(tu_om_sample(om, S("prompt_tokens_total"), 10), 400);
    CU_ASSERT_EQUAL(tu_om_sample(om, S("num_requests_waiting"), 20), 0);
    CU_ASSERT_EQUAL(tu_om_sample(om, STOP, 50), 6);
    CU_ASSERT_EQUAL(tu_om_sample(om, S("generation_tokens_total"), 50), 6000);

    snprintf(path, sizeof path, "%s/backlog", tmp);
    cJSON *j = tu_summary(path);
    CU_ASSERT_PTR_NOT_NULL_FATAL(j);
    const cJSON *alerts = cJSON_GetObjectItemCaseSensitive(j, "alerts");
    const cJSON *a = cJSON_GetArrayItem(alerts, 0);
    CU_ASSERT_EQUAL(cJSON_GetArraySize(alerts), 1);
    CU_ASSERT_STRING_EQUAL(cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(a, "name")),
                           "VLLMQueueBacklog");
    CU_ASSERT_EQUAL(tu_num(a, "firing_at"), 10);
    CU_ASSERT_EQUAL(tu_num(a, "resolved_at"), 20);
    cJSON_Delete(j);

    check_metrics(om, 10);
    free(om);
    char *test = tu_read(pt);
    CU_ASSERT_PTR_NOT_NULL_FATAL(test);
    CU_ASSERT_PTR_NOT_NULL(strstr(test, "alertname: \"VLLMQueueBacklog\""));
    CU_ASSERT_PTR_NOT_NULL(strstr(test, "series: \"vllm:num_requests_waiting{"));
    free(test);
    if (!have_promtool)
        return;
    snprintf(log, sizeof log, "%s/promtool.log", tmp);
    tu_sh(NULL, "cp '%s/rules.yml' '%s/promtool/'", tmp, tmp);
    int rc = tu_sh(log, "cd '%s/promtool' && promtool test rules test.yml", tmp);
    CU_ASSERT_EQUAL(rc, 0);
    if (rc)
        show_log(log);
}

/* A pool of the batch server has no vllm:* series. */
static void test_batch_pool_has_none(void)
{
    char path[4300], out[4300], om[4300], log[4300];
    snprintf(path, sizeof path, "%s/batch.yaml", tmp);
    tu_write(path, "name: batch\n"
                   "duration: 30s\n"
                   "models:\n"
                   "  m: {service: {distribution: deterministic, mean: 100ms}}\n"
                   "pools:\n"
                   "  p: {model: m, replicas: 1, gpus_per_node: 1}\n"
                   "traffic:\n"
                   "  - {name: t, pool: p, arrivals: {process: deterministic, rate: 1}}\n"
                   "monitoring: {scrape_interval: 10s}\n");
    snprintf(out, sizeof out, "%s/batch", tmp);
    snprintf(om, sizeof om, "%s/batch.om", tmp);
    snprintf(log, sizeof log, "%s/batch.log", tmp);
    int rc = tu_sh(log, "'%s' run '%s' --quiet --out '%s' --openmetrics '%s'", tu_bin(), path, out,
                   om);
    CU_ASSERT_EQUAL_FATAL(rc, 0);
    char *text = tu_read(om);
    CU_ASSERT_PTR_NOT_NULL_FATAL(text);
    CU_ASSERT_PTR_NOT_NULL(strstr(text, "\nup{node=\"p/0\",pool=\"p\"} 1 "));
    CU_ASSERT_PTR_NULL(strstr(text, "vllm:"));
    free(text);
}

int main(void)
{
    tmp = tu_tmpdir();
    if (!tmp)
        return 1;
    have_promtool = tu_sh("/dev/null", "promtool --version") == 0;
    if (!have_promtool)
        printf("test_llm_exporter: SKIPPED the promtool checks: promtool not found "
               "(Debian: apt-get install prometheus)\n");
    if (CU_initialize_registry() != CUE_SUCCESS)
        return 1;
    CU_pSuite s = CU_add_suite("llm_exporter", NULL, NULL);
    CU_add_test(s, "one request, then a crash: values, buckets, types, reset",
                test_one_request_and_a_crash);
    CU_add_test(s, "a backlog: node sums and means, an alert on vllm:num_requests_waiting",
                test_backlog_and_rules);
    CU_add_test(s, "a batch pool has no vllm:* series", test_batch_pool_has_none);
    CU_basic_set_mode(CU_BRM_VERBOSE);
    CU_basic_run_tests();
    int failures = (int)CU_get_number_of_failures();
    CU_cleanup_registry();
    if (!failures)
        tu_rm_rf(tmp);
    free(tmp);
    return failures;
}
