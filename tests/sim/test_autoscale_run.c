/*
 * test_autoscale_run.c - the HPA driving a whole run through the node
 * lifecycle: replicas rise within the controller's reaction time plus the
 * lifecycle after the load crosses the target, the run has far fewer errors
 * than the same fleet without an autoscaler, and scale-down waits for the
 * stabilization window after the load falls.
 */
#include "testutil.h"

#include <CUnit/Basic.h>

#include <math.h>
#include <string.h>

/* One node serves 1 / 10 ms = 100 QPS (deterministic service, no batching).
 * Load: 30 QPS, then 170 QPS from 300 s to 900 s, then 30 QPS again. With
 * a 50% CPU target the HPA wants ceil(170/100 / 0.5) = 4 replicas. */
static const char *MANIFEST =
    "apiVersion: autoscaling/v2\n"
    "kind: HorizontalPodAutoscaler\n"
    "metadata: {name: t}\n"
    "spec:\n"
    "  scaleTargetRef: {apiVersion: apps/v1, kind: Deployment, name: t}\n"
    "  minReplicas: 1\n"
    "  maxReplicas: 6\n"
    "  metrics:\n"
    "    - type: Resource\n"
    "      resource: {name: cpu, target: {type: Utilization, averageUtilization: 50}}\n";

static const char *SCENARIO =
    "name: hpa-run\n"
    "duration: 1800s\n"
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
    "    arrivals: {process: poisson, rate: [{at: 0s, qps: 30}, {at: 300s, qps: 170},\n"
    "                                        {at: 900s, qps: 30}]}\n"
    "%s";

static char *run(const char *autoscaler, int *rc)
{
    char *dir = tu_tmpdir();
    char path[4096], yaml[4096], log[4096];
    snprintf(path, sizeof path, "%s/hpa.yaml", dir);
    tu_write(path, MANIFEST);
    snprintf(yaml, sizeof yaml, SCENARIO, autoscaler);
    snprintf(path, sizeof path, "%s/s.yaml", dir);
    tu_write(path, yaml);
    snprintf(log, sizeof log, "%s/log", dir);
    *rc = tu_sh(log, "'%s' run '%s' --quiet --out '%s/out'", tu_bin(), path, dir);
    return dir;
}

static double errors(const cJSON *j)
{
    return tu_num(j, "requests.rejected") + tu_num(j, "requests.failed") +
           tu_num(j, "requests.timed_out");
}

static void test_hpa_whole_run(void)
{
    int rc_fixed, rc_hpa;
    char *fixed = run("", &rc_fixed);
    char *hpa = run("autoscaler: {policy: hpa, manifest: hpa.yaml}\n", &rc_hpa);
    CU_ASSERT_EQUAL_FATAL(rc_fixed, 0);
    CU_ASSERT_EQUAL_FATAL(rc_hpa, 0);
    char out[4096];
    snprintf(out, sizeof out, "%s/out", fixed);
    cJSON *jf = tu_summary(out);
    snprintf(out, sizeof out, "%s/out", hpa);
    cJSON *jh = tu_summary(out);
    CU_ASSERT_PTR_NOT_NULL_FATAL(jf);
    CU_ASSERT_PTR_NOT_NULL_FATAL(jh);
    /* one node at 170 QPS against 100 QPS of capacity: at least the excess
     * 70 QPS for 600 s fails. With the HPA, errors are confined to the
     * reaction window: at most every request of the 90 s (30 s to decide,
     * 40 s of lifecycle, 20 s of slack) after the step. */
    double ef = errors(jf), eh = errors(jh);
    printf("\n    errors: fixed %.0f, hpa %.0f", ef, eh);
    CU_ASSERT(ef > 70 * 600);
    CU_ASSERT(eh < 170 * 90);
    CU_ASSERT(eh < ef / 5);
    CU_ASSERT_EQUAL(tu_num(jh, "pools.p.replicas_max"), 4);
    CU_ASSERT_EQUAL(tu_num(jh, "pools.p.replicas_min"), 1);

    /* scaling events: the first scale-up within a sync period (15 s) plus a
     * metrics window (15 s) of the step at 300 s; ready within that plus
     * the lifecycle (20 + 5 + 10 + 5 s) */
    const cJSON *ev = cJSON_GetObjectItemCaseSensitive(jh, "scaling_events");
    CU_ASSERT_FATAL(cJSON_IsArray(ev) && cJSON_GetArraySize(ev) >= 2);
    const cJSON *first = cJSON_GetArrayItem(ev, 0);
    double t_up = cJSON_GetObjectItem(first, "t_s")->valuedouble;
    CU_ASSERT(t_up > 300 && t_up <= 300 + 15 + 15);
    CU_ASSERT(cJSON_GetObjectItem(first, "to")->valuedouble > 1);
    /* the last event scales down, no sooner than the 300 s stabilization
     * window after the load fell at 900 s */
    const cJSON *last = cJSON_GetArrayItem(ev, cJSON_GetArraySize(ev) - 1);
    double t_down = cJSON_GetObjectItem(last, "t_s")->valuedouble;
    CU_ASSERT(cJSON_GetObjectItem(last, "to")->valuedouble < cJSON_GetObjectItem(last, "from")->valuedouble);
    CU_ASSERT(t_down >= 900 + 300);
    CU_ASSERT(t_down <= 900 + 300 + 15 + 15);

    /* the time series: 4 ready replicas before 300 + 30 + 40 + 5 s */
    snprintf(out, sizeof out, "%s/out/timeseries.csv", hpa);
    char *csv = tu_read(out);
    CU_ASSERT_PTR_NOT_NULL_FATAL(csv);
    double ready_at = -1;
    for (char *line = strchr(csv, '\n'); line && line[1]; line = strchr(line + 1, '\n')) {
        double f[11];
        if (sscanf(line + 1, "%lf,%lf,%lf,%lf,%lf,%lf,%lf,%lf,%lf,%lf,%lf", &f[0], &f[1], &f[2],
                   &f[3], &f[4], &f[5], &f[6], &f[7], &f[8], &f[9], &f[10]) == 11 &&
            f[10] >= 2 && ready_at < 0)
            ready_at = f[0];
    }
    printf(", second replica ready in the interval at %.0f s", ready_at);
    CU_ASSERT(ready_at >= 300 && ready_at <= 300 + 30 + 40 + 5);
    free(csv);
    cJSON_Delete(jf);
    cJSON_Delete(jh);
    tu_rm_rf(fixed);
    tu_rm_rf(hpa);
    free(fixed);
    free(hpa);
}

/* A scale-down that drains a node while one of its workers is forming a
 * batch and the others wait on it: the idle workers woken by the drain go
 * idle again, and the run must still end (it once spun forever at one
 * instant) with the node drained and off. */
static void test_drain_while_forming(void)
{
    const char *yaml =
        "name: drain-forming\n"
        "duration: 300s\n"
        "interval: 10s\n"
        "models:\n"
        "  m:\n"
        "    service: {distribution: exponential, base: 20ms, per_item: 5ms}\n"
        "    batch: {max_size: 8, max_wait: 10ms}\n"
        "pools:\n"
        "  p: {model: m, replicas: 2, max_replicas: 2, gpus_per_node: 4}\n"
        "traffic:\n"
        "  - {name: t, pool: p, arrivals: {process: poisson, rate: 150}}\n"
        "autoscaler: {policy: scheduled, schedule: \"00:00=2, 00:02=1\", period: 5s}\n";
    char *dir = tu_tmpdir();
    char path[4096], log[4096];
    snprintf(path, sizeof path, "%s/s.yaml", dir);
    tu_write(path, yaml);
    snprintf(log, sizeof log, "%s/log", dir);
    int rc = tu_sh(log, "timeout 120 '%s' run '%s' --quiet --out '%s/out'", tu_bin(), path, dir);
    CU_ASSERT_EQUAL(rc, 0);
    snprintf(path, sizeof path, "%s/out/events.jsonl", dir);
    char *ev = tu_read(path);
    CU_ASSERT_PTR_NOT_NULL_FATAL(ev);
    char *drain = strstr(ev, "\"subject\":\"p/1\",\"detail\":\"ready -> draining\"");
    CU_ASSERT_PTR_NOT_NULL(drain);
    CU_ASSERT(drain && strstr(drain, "\"subject\":\"p/1\",\"detail\":\"draining -> off\"") != NULL);
    free(ev);
    tu_rm_rf(dir);
    free(dir);
}

/* Knative scale to zero and back: 10 QPS until 300 s, nothing until 900 s,
 * 10 QPS again. The KPA scales to zero once its 60 s stable window has seen
 * no concurrency and the 30 s grace period passed (about 390 s). The first
 * request at 900.1 s finds no replica: it waits at the balancer (Knative's
 * activator) and asks the autoscaler at once (0 -> 1 at 900.1 s); the new
 * replica starts (5 s) and loads the model (10 s), so that request takes
 * 15 s + 20 ms, and nothing fails. */
static void test_kpa_scale_to_zero(void)
{
    const char *yaml =
        "name: kpa-zero\n"
        "duration: 1500s\n"
        "interval: 10s\n"
        "models:\n"
        "  m: {service: {distribution: deterministic, mean: 20ms}}\n"
        "pools:\n"
        "  p:\n"
        "    model: m\n"
        "    replicas: 1\n"
        "    max_replicas: 4\n"
        "    timeout: 60s\n"
        "    lifecycle: {start: 5s, load: 10s}\n"
        "traffic:\n"
        "  - {name: t, pool: p, arrivals: {process: deterministic,\n"
        "     rate: [{at: 0s, qps: 10}, {at: 300s, qps: 0}, {at: 900s, qps: 10}]}}\n"
        "autoscaler: {policy: kpa, target: 5, scale_to_zero_grace_period: 30s}\n";
    char *dir = tu_tmpdir();
    char path[4096], log[4096];
    snprintf(path, sizeof path, "%s/s.yaml", dir);
    tu_write(path, yaml);
    snprintf(log, sizeof log, "%s/log", dir);
    int rc = tu_sh(log, "timeout 120 '%s' run '%s' --quiet --out '%s/out'", tu_bin(), path, dir);
    CU_ASSERT_EQUAL_FATAL(rc, 0);
    cJSON *j = tu_out_summary(dir);
    CU_ASSERT_PTR_NOT_NULL_FATAL(j);
    CU_ASSERT_EQUAL(tu_num(j, "requests.generated"), 8999);
    CU_ASSERT_EQUAL(tu_num(j, "requests.completed"), 8999);
    CU_ASSERT_DOUBLE_EQUAL(tu_num(j, "latency_s.max"), 15.02, 0.01);
    CU_ASSERT_EQUAL(tu_num(j, "pools.p.replicas_min"), 0);
    const cJSON *ev = cJSON_GetObjectItemCaseSensitive(j, "scaling_events");
    double t_zero = -1, t_wake = -1;
    const cJSON *e;
    cJSON_ArrayForEach(e, ev)
    {
        double t = cJSON_GetObjectItem(e, "t_s")->valuedouble;
        int from = (int)cJSON_GetObjectItem(e, "from")->valuedouble;
        int to = (int)cJSON_GetObjectItem(e, "to")->valuedouble;
        if (to == 0 && t_zero < 0)
            t_zero = t;
        if (from == 0 && to > 0 && t > 600 && t_wake < 0)
            t_wake = t;
    }
    printf("\n    scaled to zero at %g s, woken at %g s", t_zero, t_wake);
    CU_ASSERT(t_zero > 300 + 60 && t_zero <= 300 + 60 + 30 + 5);
    CU_ASSERT_DOUBLE_EQUAL(t_wake, 900.1, 1e-6);
    cJSON_Delete(j);
    tu_done(dir);
}

/* The HPA on vLLM's metrics, fed by the engine. Every request takes
 * exactly 1 s on a replica (alpha_beta: a 0.1 s prefill step of 16 prompt
 * tokens, then nine 0.1 s decode steps for its 10 output tokens) and a
 * replica runs one at a time (max_num_seqs 1), so under 4 requests a second
 * on two replicas each has 1 running and the rest waiting. The metrics
 * sampler's first sample is its second tick (30 s): by then about 120
 * requests arrived and 60 finished, so each pod has 1 running and about
 * 29 waiting. */
static const char *LLM_SCENARIO =
    "name: llm-hpa-run\n"
    "duration: 60s\n"
    "interval: 5s\n"
    "models:\n"
    "  m:\n"
    "    llm:\n"
    "      config: {hidden_size: 4096, num_hidden_layers: 32, num_attention_heads: 32,\n"
    "               num_key_value_heads: 8, intermediate_size: 14336, vocab_size: 128256}\n"
    "      step: {model: alpha_beta, overhead: 0s, per_prefill_token: 6250us, per_decode_seq: 100ms}\n"
    "      max_num_seqs: 1\n"
    "pools:\n"
    "  p:\n"
    "    model: m\n"
    "    replicas: 2\n"
    "    max_replicas: 20\n"
    "    gpus_per_node: 1\n"
    "    gpu: H100-SXM\n"
    "    queue_capacity: 1000\n"
    "    lifecycle: {provision: 100s}\n"
    "traffic:\n"
    "  - {name: t, pool: p, arrivals: {process: deterministic, rate: 4},\n"
    "     tokens: {input: 16, output: 10}}\n"
    "load_balancer: {policy: least_conn}\n"
    "autoscaler: {policy: hpa, manifest: hpa.yaml}\n";

static const char *LLM_MANIFEST =
    "apiVersion: autoscaling/v2\n"
    "kind: HorizontalPodAutoscaler\n"
    "metadata: {name: t}\n"
    "spec:\n"
    "  minReplicas: 1\n"
    "  maxReplicas: 20\n"
    "  metrics:\n"
    "%s"
    "  behavior:\n"
    "    scaleUp: {policies: [{type: Pods, value: 100, periodSeconds: 15}]}\n";

/* The first scaling event of a run of LLM_SCENARIO under a manifest with
 * these metrics: its time and target. */
static void llm_hpa_first_event(const char *metrics, double *t_s, int *to)
{
    char *dir = tu_tmpdir();
    char path[4096], log[4096], text[4096];
    snprintf(path, sizeof path, "%s/hpa.yaml", dir);
    snprintf(text, sizeof text, LLM_MANIFEST, metrics);
    tu_write(path, text);
    snprintf(path, sizeof path, "%s/s.yaml", dir);
    tu_write(path, LLM_SCENARIO);
    snprintf(log, sizeof log, "%s/log", dir);
    *t_s = -1;
    *to = -1;
    int rc = tu_sh(log, "timeout 120 '%s' run '%s' --quiet --out '%s/out'", tu_bin(), path, dir);
    CU_ASSERT_EQUAL_FATAL(rc, 0);
    cJSON *j = tu_out_summary(dir);
    CU_ASSERT_PTR_NOT_NULL_FATAL(j);
    const cJSON *ev = cJSON_GetObjectItemCaseSensitive(j, "scaling_events");
    if (cJSON_IsArray(ev) && cJSON_GetArraySize(ev) > 0) {
        const cJSON *e = cJSON_GetArrayItem(ev, 0);
        *t_s = cJSON_GetObjectItem(e, "t_s")->valuedouble;
        *to = (int)cJSON_GetObjectItem(e, "to")->valuedouble;
        printf("\n    first event at %g s: %d -> %d (%s)", *t_s,
               (int)cJSON_GetObjectItem(e, "from")->valuedouble, *to,
               cJSON_GetObjectItem(e, "reason")->valuestring);
    }
    cJSON_Delete(j);
    tu_done(dir);
}

static void test_hpa_vllm_metrics(void)
{
    double t;
    int to;
    /* Pods vllm:num_requests_waiting, 16 per pod: 29 / 16 = 1.81 x 2 pods
     * = 3.6 -> 4 (any count from 27 to 31 waiting gives 4; the running
     * request counted as waiting would give ceil(30/16 x 2) = 4 too, but
     * the running count alone, 1, would scale down) */
    llm_hpa_first_event("  - type: Pods\n"
                        "    pods: {metric: {name: \"vllm:num_requests_waiting\"},\n"
                        "           target: {type: AverageValue, averageValue: \"16\"}}\n",
                        &t, &to);
    CU_ASSERT_DOUBLE_EQUAL(t, 30.0, 1e-9);
    CU_ASSERT_EQUAL(to, 4);
    /* External vllm:num_requests_running, the sum over the pods (1 + 1),
     * Value 300m: 2 / 0.3 = 6.67 x 2 ready pods = 13.3 -> 14 */
    llm_hpa_first_event("  - type: External\n"
                        "    external: {metric: {name: \"vllm:num_requests_running\"},\n"
                        "               target: {type: Value, value: 300m}}\n",
                        &t, &to);
    CU_ASSERT_DOUBLE_EQUAL(t, 30.0, 1e-9);
    CU_ASSERT_EQUAL(to, 14);
}

/* The sla_planner through a whole run: a load step on an LLM pool. The
 * profile the engine gives the planner is the pool's alpha_beta step: a
 * prompt of 90 tokens prefills in one 10 + 90 x 1 = 100 ms step (900
 * tokens/s); a decode step of b sequences takes 10 + b ms, so the largest
 * batch meeting the 50 ms ITL target is 40, 800 tokens/s. Every 30 s the
 * planner (no correction, the last interval's load predicted) wants
 * ceil(n x 90 / 30 / 900 + n x 11 / 30 / 800) replicas for n requests in
 * the interval: 2 a second (60 per interval) give 0.2 + 0.0275 -> 1; from
 * 60 s, 24 a second (720) give 2.4 + 0.33 = 2.73 -> 3 (any count from 660
 * to 790 gives 3). A step's budget of 180 tokens keeps the overloaded
 * replica's steps short (at most 190 ms), so requests still finish in every
 * interval: without a finished request (no OSL) the planner skips the
 * interval, as Dynamo's does. */
static const char *SLA_SCENARIO =
    "name: sla-run\n"
    "duration: 150s\n"
    "interval: 5s\n"
    "models:\n"
    "  m:\n"
    "    llm:\n"
    "      config: {hidden_size: 4096, num_hidden_layers: 32, num_attention_heads: 32,\n"
    "               num_key_value_heads: 8, intermediate_size: 14336, vocab_size: 128256}\n"
    "      step: {model: alpha_beta, overhead: 10ms, per_prefill_token: 1ms, per_decode_seq: 1ms}\n"
    "      max_num_batched_tokens: 180\n"
    "pools:\n"
    "  p:\n"
    "    model: m\n"
    "    replicas: 1\n"
    "    max_replicas: 6\n"
    "    gpus_per_node: 1\n"
    "    gpu: H100-SXM\n"
    "    queue_capacity: 5000\n"
    "    lifecycle: {provision: 20s}\n"
    "traffic:\n"
    "  - {name: t, pool: p, arrivals: {process: deterministic, rate: [{at: 0s, qps: 2}, {at: 60s, qps: 24}]},\n"
    "     tokens: {input: 90, output: 11}}\n"
    "load_balancer: {policy: least_conn}\n"
    "autoscaler: {policy: sla_planner, ttft: 1s, itl: 50ms, adjustment_interval: 30s%s}\n";

static cJSON *sla_run(const char *extra, char **dir_out)
{
    char yaml[4096];
    int rc;
    snprintf(yaml, sizeof yaml, SLA_SCENARIO, extra);
    char *dir = tu_run_yaml(yaml, NULL, &rc);
    CU_ASSERT_EQUAL(rc, 0);
    *dir_out = dir;
    return tu_out_summary(dir);
}

static void test_sla_planner_load_step(void)
{
    char *dir;
    cJSON *j = sla_run(", no_correction: true", &dir);
    CU_ASSERT_PTR_NOT_NULL_FATAL(j);
    const cJSON *ev = cJSON_GetObjectItemCaseSensitive(j, "scaling_events");
    CU_ASSERT_FATAL(cJSON_IsArray(ev) && cJSON_GetArraySize(ev) >= 1);
    const cJSON *e = cJSON_GetArrayItem(ev, 0);
    printf("\n    %g s: %d -> %d (%s)", cJSON_GetObjectItem(e, "t_s")->valuedouble,
           (int)cJSON_GetObjectItem(e, "from")->valuedouble,
           (int)cJSON_GetObjectItem(e, "to")->valuedouble,
           cJSON_GetObjectItem(e, "reason")->valuestring);
    /* nothing at 30 and 60 s (1 wanted, 1 there); 3 at the first sync
     * after the step, and no other change while the load holds */
    CU_ASSERT_DOUBLE_EQUAL(cJSON_GetObjectItem(e, "t_s")->valuedouble, 90.0, 1e-9);
    CU_ASSERT_EQUAL(cJSON_GetObjectItem(e, "from")->valuedouble, 1);
    CU_ASSERT_EQUAL(cJSON_GetObjectItem(e, "to")->valuedouble, 3);
    CU_ASSERT_EQUAL(cJSON_GetArraySize(ev), 1);
    CU_ASSERT_EQUAL(tu_num(j, "pools.p.replicas_max"), 3);
    CU_ASSERT_EQUAL(tu_num(j, "requests.generated"), tu_sum_buckets(j, "requests"));
    cJSON_Delete(j);
    tu_done(dir);

    /* with its correction factors the planner still sees the step at 90 s;
     * the queue the single replica built then (a TTFT far above the
     * profile's 100 ms) cannot raise the prefill share (min(1, factor)),
     * and the ITL factor only moves the decode share, so it wants at least
     * the 2.4 of prefill -> 3 */
    j = sla_run("", &dir);
    CU_ASSERT_PTR_NOT_NULL_FATAL(j);
    ev = cJSON_GetObjectItemCaseSensitive(j, "scaling_events");
    CU_ASSERT_FATAL(cJSON_IsArray(ev) && cJSON_GetArraySize(ev) >= 1);
    e = cJSON_GetArrayItem(ev, 0);
    printf("\n    %g s: %d -> %d (%s)", cJSON_GetObjectItem(e, "t_s")->valuedouble,
           (int)cJSON_GetObjectItem(e, "from")->valuedouble,
           (int)cJSON_GetObjectItem(e, "to")->valuedouble,
           cJSON_GetObjectItem(e, "reason")->valuestring);
    CU_ASSERT_DOUBLE_EQUAL(cJSON_GetObjectItem(e, "t_s")->valuedouble, 90.0, 1e-9);
    CU_ASSERT(cJSON_GetObjectItem(e, "to")->valuedouble >= 3);
    CU_ASSERT_PTR_NOT_NULL(strstr(cJSON_GetObjectItem(e, "reason")->valuestring, "correction TTFT"));
    cJSON_Delete(j);
    tu_done(dir);

    /* a pool of a batch model is refused at load */
    CU_ASSERT(tu_expect_error(
        "name: x\nduration: 1s\nmodels:\n  m: {service: {mean: 1s}}\npools:\n"
        "  p: {model: m, replicas: 1}\n"
        "traffic:\n  - {name: t, pool: p, arrivals: {rate: 1}}\n"
        "autoscaler: {policy: sla_planner, pool: p}\n",
        NULL, "s.yaml:9:41: autoscaler: autoscaling policy sla_planner scales LLM pools"));
    /* its keys are checked at load, with their position */
    char yaml[4096];
    snprintf(yaml, sizeof yaml, SLA_SCENARIO, ", load_predictor: arima");
    CU_ASSERT(tu_expect_error(yaml, NULL, "s.yaml:24:98: load_predictor: expected one of constant"));
}

int main(void)
{
    if (CU_initialize_registry() != CUE_SUCCESS)
        return 1;
    CU_pSuite s = CU_add_suite("autoscale_run", NULL, NULL);
    CU_add_test(s, "HPA through the node lifecycle", test_hpa_whole_run);
    CU_add_test(s, "drain while a batch is forming", test_drain_while_forming);
    CU_add_test(s, "KPA: scale to zero, buffered cold start", test_kpa_scale_to_zero);
    CU_add_test(s, "HPA on vLLM metrics from the engine", test_hpa_vllm_metrics);
    CU_add_test(s, "sla_planner scales up under a load step", test_sla_planner_load_step);
    CU_basic_set_mode(CU_BRM_VERBOSE);
    CU_basic_run_tests();
    unsigned fails = CU_get_number_of_failures();
    CU_cleanup_registry();
    return fails != 0;
}
