/*
 * test_llm_serve.c - whole runs of the LLM server through the fleetsim
 * binary: one request alone (TTFT is its prefill step, TPOT its decode
 * steps, E2E = TTFT + (out - 1) x TPOT, exactly), requests batched together,
 * KV pressure and preemption, a client timeout, a crash, request
 * conservation, the scenario errors of the LLM keys, and the shipped chat
 * scenario.
 */
#include "llm_model.h"
#include "testutil.h"

#include <CUnit/Basic.h>

#include <math.h>

/* A scenario around one LLM pool; %s: the trace path, then extra model keys,
 * then extra pool keys. No network time: link latency 0, sizes 0. */
static char *scenario(const char *trace, const char *model_extra, const char *pool_extra,
                      const char *tail)
{
    static char buf[8192];
    snprintf(buf, sizeof buf,
             "name: llm\n"
             "duration: 60s\n"
             "models:\n"
             "  m:\n"
             "    llm:\n"
             "      config: {hidden_size: 4096, num_hidden_layers: 32, num_attention_heads: 32,\n"
             "               num_key_value_heads: 8, intermediate_size: 14336, vocab_size: 128256}\n"
             "%s"
             "pools:\n"
             "  p:\n"
             "    model: m\n"
             "    replicas: 1\n"
             "    gpus_per_node: 1\n"
             "    gpu: H100-SXM\n"
             "    link: {latency: 0s}\n"
             "%s"
             "traffic:\n"
             "  - name: t\n"
             "    pool: p\n"
             "    size: 0B\n"
             "    response_size: 0B\n"
             "    tokens: {trace: %s}\n"
             "%s",
             model_extra, pool_extra, trace, tail ? tail : "");
    return buf;
}

static char *write_trace(const char *rows)
{
    char *dir = tu_tmpdir();
    char path[4096];
    snprintf(path, sizeof path, "%s/trace.csv", dir);
    char text[8192];
    snprintf(text, sizeof text, "arrived_at,num_prefill_tokens,num_decode_tokens\n%s", rows);
    tu_write(path, text);
    return dir;
}

static const char *AB = "      step: {model: alpha_beta, overhead: 10ms, per_prefill_token: 100us,\n"
                        "             per_decode_seq: 1ms}\n";

/* One request of 100 prompt tokens and 10 output tokens: a 20 ms prefill
 * step (10 + 100 x 0.1) gives the first token, then nine 11 ms decode steps. */
static void test_one_request_alpha_beta(void)
{
    char *td = write_trace("0.0,100,10\n");
    char trace[4096];
    snprintf(trace, sizeof trace, "%s/trace.csv", td);
    int rc;
    char *dir = tu_run_yaml(scenario(trace, AB, "", NULL), NULL, &rc);
    CU_ASSERT_EQUAL(rc, 0);
    cJSON *j = tu_out_summary(dir);
    CU_ASSERT_PTR_NOT_NULL_FATAL(j);
    CU_ASSERT_EQUAL(tu_num(j, "requests.completed"), 1);
    CU_ASSERT_DOUBLE_EQUAL(tu_num(j, "pools.p.llm.ttft_s.mean"), 0.020, 1e-9);
    CU_ASSERT_DOUBLE_EQUAL(tu_num(j, "pools.p.llm.tpot_s.mean"), 0.011, 1e-9);
    CU_ASSERT_DOUBLE_EQUAL(tu_num(j, "pools.p.llm.itl_s.max"), 0.011, 1e-9);
    CU_ASSERT_DOUBLE_EQUAL(tu_num(j, "pools.p.llm.e2e_s.mean"), 0.020 + 9 * 0.011, 1e-9);
    CU_ASSERT_DOUBLE_EQUAL(tu_num(j, "latency_s.mean"), 0.020 + 9 * 0.011, 1e-9);
    CU_ASSERT_EQUAL(tu_num(j, "pools.p.llm.steps"), 10);
    CU_ASSERT_EQUAL(tu_num(j, "pools.p.llm.output_tokens"), 10);
    CU_ASSERT_EQUAL(tu_num(j, "pools.p.llm.input_tokens"), 100);
    cJSON_Delete(j);
    tu_done(dir);
    tu_done(td);
}

/* per_prefill_attention: 2 us per causal query-key pair of a prompt chunk.
 * One prompt of 100 tokens in one chunk: 100 x 101 / 2 = 5050 pairs, so
 * the prefill step is 10 + 100 x 0.1 + 5050 x 0.002 = 30.1 ms; decode
 * steps (no prompt chunk) stay 11 ms. With a token budget of 64 the prompt
 * is two chunks: 64 on 0 cached (64 x 65 / 2 = 2080 pairs: 10 + 6.4 +
 * 4.16 = 20.56 ms) and 36 on 64 cached (36 x (64 + 37 / 2) = 2970 pairs:
 * 10 + 3.6 + 5.94 = 19.54 ms), TTFT 40.1 ms: the pairs add up to the same
 * 5050, and each chunk pays its own overhead. */
static void test_one_request_prefill_attention(void)
{
    static const char *ab =
        "      step: {model: alpha_beta, overhead: 10ms, per_prefill_token: 100us,\n"
        "             per_decode_seq: 1ms, per_prefill_attention: 2us}\n";
    char *td = write_trace("0.0,100,10\n");
    char trace[4096], model[1024];
    snprintf(trace, sizeof trace, "%s/trace.csv", td);
    for (int chunked = 0; chunked < 2; chunked++) {
        double ttft = chunked ? 0.02056 + 0.01954 : 0.0301;
        int rc;
        snprintf(model, sizeof model, "%s%s", ab,
                 chunked ? "      max_num_batched_tokens: 64\n" : "");
        char *dir = tu_run_yaml(scenario(trace, model, "", NULL), NULL, &rc);
        CU_ASSERT_EQUAL(rc, 0);
        cJSON *j = tu_out_summary(dir);
        CU_ASSERT_PTR_NOT_NULL_FATAL(j);
        CU_ASSERT_EQUAL(tu_num(j, "requests.completed"), 1);
        CU_ASSERT_DOUBLE_EQUAL(tu_num(j, "pools.p.llm.ttft_s.mean"), ttft, 1e-9);
        CU_ASSERT_DOUBLE_EQUAL(tu_num(j, "pools.p.llm.tpot_s.mean"), 0.011, 1e-9);
        CU_ASSERT_DOUBLE_EQUAL(tu_num(j, "pools.p.llm.e2e_s.mean"), ttft + 9 * 0.011, 1e-9);
        CU_ASSERT_EQUAL(tu_num(j, "pools.p.llm.steps"), 10 + chunked);
        cJSON_Delete(j);
        tu_done(dir);
    }
    tu_done(td);
}

/* Two requests at once: one 30 ms prefill step for both prompts, then
 * decode steps of 12 ms (two sequences); the shorter answer (3 tokens) ends
 * first and the longer one's last steps are 11 ms again. */
static void test_two_requests_batched(void)
{
    char *td = write_trace("0.0,100,3\n0.0,100,5\n");
    char trace[4096];
    snprintf(trace, sizeof trace, "%s/trace.csv", td);
    int rc;
    char *dir = tu_run_yaml(scenario(trace, AB, "", NULL), NULL, &rc);
    CU_ASSERT_EQUAL(rc, 0);
    cJSON *j = tu_out_summary(dir);
    CU_ASSERT_PTR_NOT_NULL_FATAL(j);
    CU_ASSERT_EQUAL(tu_num(j, "requests.completed"), 2);
    CU_ASSERT_DOUBLE_EQUAL(tu_num(j, "pools.p.llm.ttft_s.mean"), 0.030, 1e-9);
    CU_ASSERT_DOUBLE_EQUAL(tu_num(j, "pools.p.llm.ttft_s.max"), 0.030, 1e-9);
    /* short: 30 + 2 x 12 = 54 ms; long: 30 + 2 x 12 + 2 x 11 = 76 ms */
    CU_ASSERT_DOUBLE_EQUAL(tu_num(j, "pools.p.llm.e2e_s.max"), 0.076, 1e-9);
    CU_ASSERT_DOUBLE_EQUAL(tu_num(j, "pools.p.llm.e2e_s.mean"), (0.054 + 0.076) / 2, 1e-9);
    CU_ASSERT_DOUBLE_EQUAL(tu_num(j, "pools.p.llm.tpot_s.mean"), (0.012 + 0.0115) / 2, 1e-9);
    CU_ASSERT_EQUAL(tu_num(j, "pools.p.llm.steps"), 5);
    cJSON_Delete(j);
    tu_done(dir);
    tu_done(td);
}

/* --trace-steps on the two requests above, by hand: the 30 ms prefill of
 * 200 prompt tokens; two 12 ms decode steps of both (contexts 100 + 100,
 * then 101 + 101; 7 blocks of 16 each for 101 and 102 tokens); then the
 * longer one alone at 102 and 103 for 11 ms (7 blocks). */
static void test_trace_steps_by_hand(void)
{
    char *td = write_trace("0.0,100,3\n0.0,100,5\n");
    char trace[4096], path[4096];
    snprintf(trace, sizeof trace, "%s/trace.csv", td);
    int rc;
    char *dir = tu_run_yaml(scenario(trace, AB, "", NULL), "--trace-steps steps.csv", &rc);
    CU_ASSERT_EQUAL(rc, 0);
    snprintf(path, sizeof path, "%s/steps.csv", dir);
    char *text = tu_read(path);
    CU_ASSERT_PTR_NOT_NULL_FATAL(text);
    CU_ASSERT_STRING_EQUAL(
        text, "time_s,pool,node,replica,step,duration_s,prefill_tokens,decode_requests,"
              "context_tokens,running,waiting,kv_blocks_used\n"
              "0.000000000,p,p/0,0,0,0.030000000,200,0,0,2,0,14\n"
              "0.030000000,p,p/0,0,1,0.012000000,0,2,200,2,0,14\n"
              "0.042000000,p,p/0,0,2,0.012000000,0,2,202,2,0,14\n"
              "0.054000000,p,p/0,0,3,0.011000000,0,1,102,1,0,7\n"
              "0.065000000,p,p/0,0,4,0.011000000,0,1,103,1,0,7\n");
    free(text);
    tu_done(dir);
    /* a file that cannot be written: refused before the run (4), saying which */
    dir = tu_run_yaml(scenario(trace, AB, "", NULL), "--trace-steps no/such/dir/steps.csv", &rc);
    CU_ASSERT_EQUAL(rc, 4);
    char *log = tu_log(dir);
    CU_ASSERT(log && strstr(log, "cannot write no/such/dir/steps.csv"));
    free(log);
    tu_done(dir);
    tu_done(td);
}

/* The roofline: one request's TTFT is its prefill step and its TPOT the
 * mean of its decode steps at growing context, as llm_step_s gives them. */
static void test_one_request_roofline(void)
{
    char *td = write_trace("0.0,1000,50\n");
    char trace[4096];
    snprintf(trace, sizeof trace, "%s/trace.csv", td);
    int rc;
    char *dir = tu_run_yaml(scenario(trace, "", "", NULL), "--trace-steps steps.csv", &rc);
    CU_ASSERT_EQUAL(rc, 0);
    cJSON *j = tu_out_summary(dir);
    CU_ASSERT_PTR_NOT_NULL_FATAL(j);
    llm_perf pf = { 0 };
    char err[256];
    CU_ASSERT_EQUAL_FATAL(
        llm_shape_parse("{\"hidden_size\": 4096, \"num_hidden_layers\": 32, "
                        "\"num_attention_heads\": 32, \"num_key_value_heads\": 8, "
                        "\"intermediate_size\": 14336, \"vocab_size\": 128256}",
                        &pf.shape, err, sizeof err),
        0);
    pf.weights = pf.activations = pf.kv = LLM_BF16;
    pf.tp = 1;
    pf.gpu = *llm_gpu_find("H100-SXM");
    pf.mfu_prefill = pf.gpu.mfu_prefill;
    pf.mfu_decode = pf.gpu.mfu_decode;
    llm_chunk c = { .n = 1000, .c = 0, .decode = 0 };
    double ttft = llm_step_s(&pf, &c, 1), decode = 0;
    for (int k = 0; k < 49; k++) {
        c = (llm_chunk){ .n = 1, .c = 1000 + k, .decode = 1 };
        decode += llm_step_s(&pf, &c, 1);
    }
    CU_ASSERT(ttft > 0.01 && decode > 0);
    CU_ASSERT_DOUBLE_EQUAL(tu_num(j, "pools.p.llm.ttft_s.mean"), ttft, 1e-9);
    CU_ASSERT_DOUBLE_EQUAL(tu_num(j, "pools.p.llm.tpot_s.mean"), decode / 49, 1e-9);
    CU_ASSERT_DOUBLE_EQUAL(tu_num(j, "pools.p.llm.e2e_s.mean"), ttft + decode, 1e-9);
    /* TPOT never below the time to read, once, every weight a step uses
     * (all but the input embedding table, which is looked up by row) */
    double read_bytes = llm_weight_bytes(&pf) - 128256.0 * 4096 * 2;
    CU_ASSERT(decode / 49 >= read_bytes / pf.gpu.hbm_Bps);
    CU_ASSERT(decode / 49 < 1.2 * read_bytes / pf.gpu.hbm_Bps); /* and near it at batch 1 */
    /* --trace-steps: the prefill step and the decode step at context 1010
     * last what llm_step_s gives (to the file's 1 ns, rounded: 0.5 ns) */
    char path[4096];
    snprintf(path, sizeof path, "%s/steps.csv", dir);
    FILE *f = fopen(path, "r");
    CU_ASSERT_PTR_NOT_NULL_FATAL(f);
    char line[512];
    int seen = 0;
    c = (llm_chunk){ .n = 1, .c = 1010, .decode = 1 };
    double step_1010 = llm_step_s(&pf, &c, 1);
    while (fgets(line, sizeof line, f)) {
        double t, dur;
        int step, prefill, decoding, ctx;
        if (sscanf(line, "%lf,p,p/0,0,%d,%lf,%d,%d,%d,", &t, &step, &dur, &prefill, &decoding,
                   &ctx) != 6)
            continue;
        if (step == 0) {
            CU_ASSERT(prefill == 1000 && decoding == 0 && ctx == 0);
            CU_ASSERT_DOUBLE_EQUAL(dur, ttft, 0.5e-9);
            seen++;
        } else if (step == 11) {
            CU_ASSERT(prefill == 0 && decoding == 1 && ctx == 1010);
            CU_ASSERT_DOUBLE_EQUAL(dur, step_1010, 0.5e-9);
            seen++;
        }
    }
    fclose(f);
    CU_ASSERT_EQUAL(seen, 2);
    cJSON_Delete(j);
    tu_done(dir);
    tu_done(td);
}

/* KV pressure: 8 blocks of 16 tokens hold 128 tokens; four requests of
 * 40 + 40 tokens cannot all run, so some are preempted and recomputed, and
 * every request still completes. */
static void test_kv_pressure_preempts(void)
{
    char *td = write_trace("0.0,40,40\n0.0,40,40\n0.0,40,40\n0.0,40,40\n");
    char trace[4096];
    snprintf(trace, sizeof trace, "%s/trace.csv", td);
    char model[512];
    snprintf(model, sizeof model, "%s      kv_blocks: 8\n", AB);
    int rc;
    char *dir = tu_run_yaml(scenario(trace, model, "", NULL), NULL, &rc);
    CU_ASSERT_EQUAL(rc, 0);
    cJSON *j = tu_out_summary(dir);
    CU_ASSERT_PTR_NOT_NULL_FATAL(j);
    CU_ASSERT_EQUAL(tu_num(j, "requests.completed"), 4);
    CU_ASSERT(tu_num(j, "pools.p.llm.preemptions") > 0);
    CU_ASSERT(tu_num(j, "pools.p.llm.kv_usage_max") <= 1.0);
    CU_ASSERT(tu_num(j, "pools.p.llm.kv_usage_max") > 0.9); /* it did fill */
    CU_ASSERT_EQUAL(tu_num(j, "pools.p.llm.output_tokens"), 160);
    cJSON_Delete(j);
    tu_done(dir);
    tu_done(td);
}

/* A client that gives up: a 10,000-token answer at 11 ms a token takes
 * 110 s; the 5 s timeout cancels it (504) and frees its blocks. */
static void test_timeout_cancels(void)
{
    char *td = write_trace("0.0,100,10000\n1.0,100,10\n");
    char trace[4096];
    snprintf(trace, sizeof trace, "%s/trace.csv", td);
    int rc;
    char *dir = tu_run_yaml(scenario(trace, AB, "    timeout: 5s\n", NULL), NULL, &rc);
    CU_ASSERT_EQUAL(rc, 0);
    cJSON *j = tu_out_summary(dir);
    CU_ASSERT_PTR_NOT_NULL_FATAL(j);
    CU_ASSERT_EQUAL(tu_num(j, "requests.timed_out"), 1);
    CU_ASSERT_EQUAL(tu_num(j, "requests.completed"), 1);
    CU_ASSERT_EQUAL(tu_num(j, "requests.generated"), tu_sum_buckets(j, "requests"));
    cJSON_Delete(j);
    tu_done(dir);
    tu_done(td);
}

/* Lognormal tokens at Poisson arrivals, a node crash at 20 s: every request
 * is accounted for, the crash's requests are retried or failed. */
static void test_conservation_with_crash(void)
{
    const char *yaml =
        "name: llm-crash\n"
        "duration: 60s\n"
        "models:\n"
        "  m:\n"
        "    llm: {config: %s/scenarios/models/llama-3.1-8b.json}\n"
        "pools:\n"
        "  p: {model: m, replicas: 2, gpus_per_node: 2, gpu: H100-SXM, timeout: 30s,\n"
        "      lifecycle: {start: 5s, load: 10s}}\n"
        "traffic:\n"
        "  - name: t\n"
        "    pool: p\n"
        "    arrivals: {process: poisson, rate: 20}\n"
        "    tokens: {input: {distribution: lognormal, mean: 1000, cv: 1, max: 8000},\n"
        "             output: {distribution: lognormal, mean: 200, cv: 1, max: 2000}}\n"
        "chaos:\n"
        "  - {at: 20s, fault: node_crash, target: p/0, recover_after: 10s}\n";
    char text[4096];
    snprintf(text, sizeof text, yaml, tu_src());
    int rc;
    char *dir = tu_run_yaml(text, NULL, &rc);
    CU_ASSERT_EQUAL(rc, 0);
    cJSON *j = tu_out_summary(dir);
    CU_ASSERT_PTR_NOT_NULL_FATAL(j);
    double gen = tu_num(j, "requests.generated");
    CU_ASSERT(gen > 900 && gen < 1500);
    CU_ASSERT_EQUAL(gen, tu_sum_buckets(j, "requests"));
    CU_ASSERT(tu_num(j, "requests.completed") > 0.5 * gen);
    CU_ASSERT(tu_num(j, "pools.p.llm.ttft_s.p50") > 0);
    CU_ASSERT(tu_num(j, "pools.p.llm.kv_usage_max") <= 1.0);
    cJSON_Delete(j);
    tu_done(dir);
}

static void test_errors(void)
{
    char *td = write_trace("0.0,100,10\n");
    char trace[4096];
    snprintf(trace, sizeof trace, "%s/trace.csv", td);
    char y[8192];
    snprintf(y, sizeof y, "%s", scenario(trace, "", "    tensor_parallel: 3\n", NULL));
    /* gpus_per_node 1 is not divisible by 3 */
    CU_ASSERT(tu_expect_error(y, NULL, "s.yaml:15:22: pools.p.tensor_parallel: tensor_parallel 3 "
                                       "does not divide gpus_per_node 1"));
    /* per_prefill_attention: alpha_beta only, a duration >= 0 */
    snprintf(y, sizeof y, "%s",
             scenario(trace, "      step: {model: roofline, per_prefill_attention: 1ns}\n", "",
                      NULL));
    CU_ASSERT(tu_expect_error(y, NULL, "s.yaml:8:31: models.m.llm.step: per_prefill_attention "
                                       "does not apply to model roofline"));
    snprintf(y, sizeof y, "%s",
             scenario(trace, "      step: {model: alpha_beta, per_prefill_attention: -1ns}\n",
                      "", NULL));
    CU_ASSERT(tu_expect_error(y, NULL, "s.yaml:8:56: models.m.llm.step.per_prefill_attention:"));
    snprintf(y, sizeof y, "%s",
             scenario(trace, "      step: {model: alpha_beta, per_prefill_attention: 0s}\n", "",
                      NULL));
    CU_ASSERT(tu_expect_error(y, NULL, "s.yaml:8:13: models.m.llm.step: alpha_beta needs "
                                       "overhead, per_prefill_token, per_decode_seq, "
                                       "per_context_token or per_prefill_attention > 0"));
    snprintf(y, sizeof y, "%s", scenario(trace, "", "", NULL));
    char *g = strstr(y, "gpu: H100-SXM");
    memcpy(g, "gpu: H900-XXX", 13);
    CU_ASSERT(tu_expect_error(y, NULL, "pools.p.gpu: unknown GPU \"H900-XXX\""));
    CU_ASSERT(tu_expect_error(
        "name: x\nduration: 1s\nmodels:\n  m: {service: {mean: 1s}}\npools:\n"
        "  p: {model: m, replicas: 1, tensor_parallel: 2}\n"
        "traffic:\n  - {name: t, pool: p, arrivals: {rate: 1}}\n",
        NULL, "s.yaml:6:30: pools.p: tensor_parallel applies to pools of an LLM model"));
    /* expert parallelism: an MoE model only, no tensor_parallel beside it,
     * whole nodes, and an interconnect when the group spans nodes */
    snprintf(y, sizeof y, "%s", scenario(trace, "", "    expert_parallel: 2\n", NULL));
    CU_ASSERT(tu_expect_error(y, NULL, "expert_parallel needs an MoE model"));
    {
        static const char *const ds =
            "name: x\nduration: 1s\nmodels:\n"
            "  m: {llm: {config: %s/scenarios/models/deepseek-v3.json, precision: fp8}}\n"
            "pools:\n  p: {model: m, replicas: 1, gpus_per_node: 8, gpu: H800, %s}\n"
            "traffic:\n  - {name: t, pool: p, arrivals: {rate: 1},\n"
            "     tokens: {input: 10, output: 10}}\n";
        static const struct {
            const char *keys, *want;
        } cases[] = {
            {"expert_parallel: 16", "s.yaml:6:76: pools.p: expert_parallel 16 spans 2 nodes: give "
                                    "interconnect"},
            {"expert_parallel: 12, interconnect: 400Gbps",
             "pools.p: expert_parallel 12 must be a multiple of gpus_per_node 8"},
            {"expert_parallel: 16, interconnect: 400Gbps, tensor_parallel: 2",
             "pools.p: tensor_parallel with expert_parallel"},
            {"interconnect: 400Gbps", "pools.p: redundant_experts and interconnect need "
                                      "expert_parallel"},
            {"expert_parallel: 16, interconnect: fast", "pools.p.interconnect"},
            {"expert_parallel: 16, interconnect: 400Gbps, rollout: {at: 1s, gpus_per_node: 8}",
             "a rollout of an expert_parallel pool is not modelled"},
        };
        for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
            char t[2048];
            snprintf(t, sizeof t, ds, tu_src(), cases[i].keys);
            CU_ASSERT(tu_expect_error(t, NULL, cases[i].want));
        }
    }
    CU_ASSERT(tu_expect_error(
        "name: x\nduration: 1s\nmodels:\n  m: {llm: {config: {hidden_size: 8}}}\npools:\n"
        "  p: {model: m, replicas: 1}\n"
        "traffic:\n  - {name: t, pool: p, arrivals: {rate: 1}, tokens: {input: 10, output: 10}}\n",
        NULL, "models.m.llm.config:"));
    CU_ASSERT(tu_expect_error(
        "name: x\nduration: 1s\nmodels:\n  m: {service: {mean: 1s}}\npools:\n"
        "  p: {model: m, replicas: 1}\n"
        "traffic:\n  - {name: t, pool: p, arrivals: {rate: 1}, tokens: {input: 10, output: 10}}\n",
        NULL, "traffic.t: tokens applies to traffic for a pool of an LLM model"));
    /* step.noise: strict keys, ranges, a profile without llm_step.noise */
    {
        char prof[4096];
        snprintf(prof, sizeof prof, "%s/p.json", td);
        tu_write(prof, "{\"schema\": \"fleetsim-calibration/1\", \"llm_step\": "
                       "{\"overhead_s\": 0.001, \"per_prefill_token_s\": 0, "
                       "\"per_decode_seq_s\": 0, \"per_context_token_s\": 0}}");
        static const char *const nm =
            "name: x\nduration: 1s\nmodels:\n"
            "  m: {llm: {config: %s/scenarios/models/llama-3.1-8b.json, step: {noise: %s}}}\n"
            "pools:\n  p: {model: m, replicas: 1, gpus_per_node: 1, gpu: H100-SXM}\n"
            "traffic:\n  - {name: t, pool: p, arrivals: {rate: 1}, tokens: {input: 10, output: 10}}\n";
        char noise_cal[4200];
        snprintf(noise_cal, sizeof noise_cal, "{calibration: %s}", prof);
        char noise_both[4200];
        snprintf(noise_both, sizeof noise_both, "{calibration: %s, cv: 0.1}", prof);
        char noise_cal_slow[4200];
        snprintf(noise_cal_slow, sizeof noise_cal_slow,
                 "{calibration: %s, slow: {cv: 0.1, correlation_s: 0.2}}", prof);
        char prof_slow[4096], noise_bad_slow[4200];
        snprintf(prof_slow, sizeof prof_slow, "%s/q.json", td);
        tu_write(prof_slow, "{\"schema\": \"fleetsim-calibration/1\", \"llm_step\": "
                            "{\"overhead_s\": 0.001, \"per_prefill_token_s\": 0, "
                            "\"per_decode_seq_s\": 0, \"per_context_token_s\": 0, \"noise\": "
                            "{\"cv\": 0.1, \"correlation_s\": 0.005, \"slow\": "
                            "{\"cv\": 0.1, \"correlation_s\": 0}}}}");
        snprintf(noise_bad_slow, sizeof noise_bad_slow, "{calibration: %s}", prof_slow);
        const struct {
            const char *noise, *want;
        } cases[] = {
            {"{cv: 0.1, memory: 1}", "models.m.llm.step.noise: unknown key \"memory\" "
                                     "(valid keys: cv, correlation_s, slow, calibration)"},
            {"{cv: 0.1, slow: {cv: 0.1}}",
             "models.m.llm.step.noise.slow: needs cv and correlation_s"},
            {"{cv: 0.1, slow: {cv: 0.1, correlation_s: 0}}",
             "models.m.llm.step.noise.slow.correlation_s: expected a number in (0, 1e+06]"},
            {"{cv: 0.1, slow: {cv: -1, correlation_s: 1}}",
             "models.m.llm.step.noise.slow.cv: expected a number in (0, 10]"},
            {"{cv: 0.1, slow: {cv: 0.1, correlation_s: 1, tau: 2}}",
             "models.m.llm.step.noise.slow: unknown key \"tau\""},
            {noise_cal_slow, "slow comes from calibration; give one or the other"},
            {noise_bad_slow, "llm_step.noise.slow.correlation_s must be a number > 0"},
            {"{correlation_s: 0.05}", "models.m.llm.step.noise: needs cv"},
            {"{cv: 0, correlation_s: 0.05}", "models.m.llm.step.noise.cv: expected a number in "
                                             "(0, 10]"},
            {"{cv: 0.1, correlation_s: -1}", "models.m.llm.step.noise.correlation_s"},
            {"0.1", "models.m.llm.step.noise"},
            {noise_cal, "has no llm_step.noise"},
            {noise_both, "cv comes from calibration; give one or the other"},
        };
        for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
            char t[8192];
            snprintf(t, sizeof t, nm, tu_src(), cases[i].noise);
            CU_ASSERT(tu_expect_error(t, NULL, cases[i].want));
        }
    }
    tu_done(td);
}

/* The shipped chat scenario, shortened: it runs, replays the trace and
 * reports token metrics and a verdict on its SLO. */
static void test_shipped_chat(void)
{
    char out[4096], log[4096];
    char *dir = tu_tmpdir();
    snprintf(out, sizeof out, "%s/out", dir);
    snprintf(log, sizeof log, "%s/log", dir);
    int rc = tu_sh(log, "'%s' run '%s/scenarios/llm-chat.yaml' --quiet --out '%s' --set duration=5m",
                   tu_bin(), tu_src(), out);
    CU_ASSERT(rc == 0);
    cJSON *j = tu_summary(out);
    CU_ASSERT_PTR_NOT_NULL_FATAL(j);
    double gen = tu_num(j, "requests.generated");
    CU_ASSERT(gen > 1000 && gen < 2500); /* 5.5 req/s for 5 min */
    CU_ASSERT_EQUAL(gen, tu_sum_buckets(j, "requests"));
    CU_ASSERT(tu_num(j, "pools.chat.llm.output_tokens_per_s") > 500);
    CU_ASSERT(tu_num(j, "pools.chat.llm.cost_per_million_output_tokens") > 0);
    cJSON *slo = cJSON_GetObjectItem(j, "slo");
    CU_ASSERT(cJSON_IsBool(cJSON_GetObjectItem(slo, "met")));
    cJSON_Delete(j);
    tu_done(dir);
}

/* Compares two summaries field by field: equal numbers and strings, except
 * wall_time_s, peak_rss_mb and energy_kwh (SimGrid's energy plugin sums power x time at
 * each change of a host's load: one execution or many give the same energy
 * up to the last bits, 1e-12 relative). Returns the number of differences. */
static int same_summary(const cJSON *a, const cJSON *b, const char *path)
{
    if (a->type != b->type) {
        fprintf(stderr, "\n  %s: types differ", path);
        return 1;
    }
    if (cJSON_IsNumber(a)) {
        double x = a->valuedouble, y = b->valuedouble;
        if (strstr(path, "wall_time_s") || strstr(path, "peak_rss_mb"))
            return 0;
        if (strstr(path, "energy_kwh") ? fabs(x - y) <= 1e-12 * fabs(x) : x == y)
            return 0;
        fprintf(stderr, "\n  %s: %.17g != %.17g", path, x, y);
        return 1;
    }
    if (cJSON_IsString(a))
        return strcmp(a->valuestring, b->valuestring) != 0;
    int d = 0;
    const cJSON *x = a->child, *y = b->child;
    for (; x && y; x = x->next, y = y->next) {
        char p[512];
        snprintf(p, sizeof p, "%s.%s", path, x->string ? x->string : "[]");
        d += same_summary(x, y, p);
    }
    return d + (x != NULL) + (y != NULL);
}

static size_t count_lines(const char *text)
{
    size_t n = 0;
    for (const char *c = text; c && *c; c++)
        n += *c == '\n';
    return n;
}

/* Runs yaml twice, coalesced (the default) and step by step, and expects
 * the same summary and the same --trace-steps file, byte for byte, with a
 * line per step the summary counts. Returns the coalesced summary (the
 * caller frees it). */
static cJSON *both_modes(const char *yaml, const char *model)
{
    int rc1, rc2;
    char set[256], path[4096];
    snprintf(set, sizeof set, "--trace-steps steps.csv --set models.%s.llm.coalesce_steps=false",
             model);
    char *d1 = tu_run_yaml(yaml, "--trace-steps steps.csv", &rc1);
    char *d2 = tu_run_yaml(yaml, set, &rc2);
    CU_ASSERT_EQUAL(rc1, 0);
    CU_ASSERT_EQUAL(rc2, 0);
    cJSON *a = tu_out_summary(d1), *b = tu_out_summary(d2);
    CU_ASSERT_PTR_NOT_NULL(a);
    CU_ASSERT_PTR_NOT_NULL(b);
    if (a && b)
        CU_ASSERT_EQUAL(same_summary(a, b, ""), 0);
    snprintf(path, sizeof path, "%s/steps.csv", d1);
    char *t1 = tu_read(path);
    snprintf(path, sizeof path, "%s/steps.csv", d2);
    char *t2 = tu_read(path);
    CU_ASSERT_PTR_NOT_NULL(t1);
    CU_ASSERT_PTR_NOT_NULL(t2);
    if (t1 && t2) {
        CU_ASSERT_STRING_EQUAL(t1, t2);
        if (a)
            CU_ASSERT_EQUAL(count_lines(t1), 1 + (size_t)tu_num(a, "pools.p.llm.steps"));
    }
    free(t1);
    free(t2);
    cJSON_Delete(b);
    tu_done(d1);
    tu_done(d2);
    return a;
}

/* One SimGrid activity per run of equal steps gives what one per step
 * gives: the Azure conversation trace on Llama-3.1-8B (a deterministic
 * input), Poisson arrivals of lognormal lengths against a KV cache small
 * enough to preempt, with client timeouts and a node crash (random
 * inputs: the same seed draws the same requests in both modes). */
static void test_coalesced_equals_per_step(void)
{
    char y[4096];
    snprintf(y, sizeof y,
             "name: trace\nduration: 10m\nwarmup: 30s\n"
             "models:\n  m: {llm: {config: %s/scenarios/models/llama-3.1-8b.json}}\n"
             "pools:\n  p: {model: m, replicas: 1, gpus_per_node: 2, gpu: H100-SXM}\n"
             "traffic:\n  - name: t\n    pool: p\n"
             "    tokens: {trace: %s/scenarios/traces/azure-2023-conversation.csv}\n",
             tu_src(), tu_src());
    cJSON *a = both_modes(y, "m");
    CU_ASSERT(tu_num(a, "requests.completed") > 2500); /* 4.8 req/s for 10 min */
    CU_ASSERT(tu_num(a, "pools.p.llm.steps") > 10000);
    cJSON_Delete(a);

    snprintf(y, sizeof y,
             "name: random\nduration: 5m\n"
             "models:\n  m: {llm: {config: %s/scenarios/models/llama-3.1-8b.json,\n"
             "                 kv_blocks: 600, max_num_seqs: 64}}\n"
             "pools:\n  p: {model: m, replicas: 2, gpus_per_node: 2, gpu: H200, timeout: 10s,\n"
             "              lifecycle: {start: 5s}}\n"
             "traffic:\n  - name: t\n    pool: p\n    arrivals: {process: poisson, rate: 12}\n"
             "    tokens: {input: {distribution: lognormal, mean: 800, cv: 1, max: 6000},\n"
             "             output: {distribution: lognormal, mean: 300, cv: 1.2, max: 3000}}\n"
             "chaos:\n  - {at: 100s, fault: node_crash, target: p/1, recover_after: 20s}\n",
             tu_src());
    a = both_modes(y, "m");
    CU_ASSERT(tu_num(a, "pools.p.llm.preemptions") > 0);
    CU_ASSERT(tu_num(a, "requests.timed_out") > 0);
    CU_ASSERT(tu_num(a, "requests.completed") > 1000);
    CU_ASSERT_EQUAL(tu_num(a, "requests.generated"), tu_sum_buckets(a, "requests"));
    cJSON_Delete(a);
}

/* With step noise (models.<m>.llm.step.noise) the coalesced mode draws
 * the same factors in the same order as the per-step mode: the same
 * summary and step trace, with preemptions, timeouts and a crash cutting
 * horizons short; and the noise changes the steps (the same run without
 * it has other step times). */
static void test_coalesced_equals_per_step_noise(void)
{
    static const char *fmt =
        "name: noisy\nduration: 5m\n"
        "models:\n  m: {llm: {config: %s/scenarios/models/llama-3.1-8b.json,\n"
        "                 kv_blocks: 600, max_num_seqs: 64%s}}\n"
        "pools:\n  p: {model: m, replicas: 2, gpus_per_node: 2, gpu: H200, timeout: 5s,\n"
        "              lifecycle: {start: 5s}}\n"
        "traffic:\n  - name: t\n    pool: p\n    arrivals: {process: poisson, rate: 12}\n"
        "    tokens: {input: {distribution: lognormal, mean: 800, cv: 1, max: 6000},\n"
        "             output: {distribution: lognormal, mean: 300, cv: 1.2, max: 3000}}\n"
        "chaos:\n  - {at: 100s, fault: node_crash, target: p/1, recover_after: 20s}\n";
    char y[4096];
    snprintf(y, sizeof y, fmt, tu_src(), ",\n step: {noise: {cv: 0.3, correlation_s: 0.05}}");
    cJSON *a = both_modes(y, "m");
    CU_ASSERT(tu_num(a, "pools.p.llm.preemptions") > 0);
    CU_ASSERT(tu_num(a, "requests.timed_out") > 0);
    CU_ASSERT(tu_num(a, "requests.completed") > 800);
    CU_ASSERT_EQUAL(tu_num(a, "requests.generated"), tu_sum_buckets(a, "requests"));
    /* a slow component beside the fast one: still the same in both modes,
     * and other steps than the fast one alone */
    snprintf(y, sizeof y, fmt, tu_src(),
             ",\n step: {noise: {cv: 0.3, correlation_s: 0.05, "
             "slow: {cv: 0.2, correlation_s: 2}}}");
    cJSON *s2 = both_modes(y, "m");
    CU_ASSERT_PTR_NOT_NULL(s2);
    if (a && s2)
        CU_ASSERT(tu_num(a, "pools.p.llm.steps") != tu_num(s2, "pools.p.llm.steps"));
    /* the same components from a profile's llm_step.noise (slow included):
     * the same run */
    {
        char *pd = tu_tmpdir(), prof[4096], ext[4200];
        snprintf(prof, sizeof prof, "%s/p.json", pd);
        tu_write(prof, "{\"schema\": \"fleetsim-calibration/1\", \"llm_step\": "
                       "{\"overhead_s\": 0.001, \"per_prefill_token_s\": 0, "
                       "\"per_decode_seq_s\": 0, \"per_context_token_s\": 0, \"noise\": "
                       "{\"cv\": 0.3, \"correlation_s\": 0.05, \"slow\": "
                       "{\"cv\": 0.2, \"correlation_s\": 2}}}}");
        snprintf(ext, sizeof ext, ",\n step: {noise: {calibration: %s}}", prof);
        snprintf(y, sizeof y, fmt, tu_src(), ext);
        int rcp;
        char *dp = tu_run_yaml(y, NULL, &rcp);
        cJSON *p2 = tu_out_summary(dp);
        CU_ASSERT_EQUAL(rcp, 0);
        CU_ASSERT_PTR_NOT_NULL(p2);
        if (p2 && s2)
            CU_ASSERT_EQUAL(same_summary(s2, p2, ""), 0);
        cJSON_Delete(p2);
        tu_done(dp);
        tu_done(pd);
    }
    cJSON_Delete(s2);
    snprintf(y, sizeof y, fmt, tu_src(), "");
    int rc;
    char *d = tu_run_yaml(y, NULL, &rc);
    cJSON *b = tu_out_summary(d);
    CU_ASSERT_EQUAL(rc, 0);
    CU_ASSERT_PTR_NOT_NULL(b);
    if (a && b)
        CU_ASSERT(tu_num(a, "pools.p.llm.steps") != tu_num(b, "pools.p.llm.steps"));
    cJSON_Delete(b);
    tu_done(d);
    cJSON_Delete(a);
}

/* alpha_beta with every term, the prefill attention pairs included, gives
 * the same summary and step trace coalesced and step by step (prefill
 * chunks of many lengths on many cached lengths, preemptions that
 * recompute, timeouts and a crash); and the attention term changes the
 * run (the same scenario without it has other TTFTs). */
static void test_coalesced_equals_per_step_prefill_attention(void)
{
    static const char *fmt =
        "name: abattn\nduration: 5m\n"
        "models:\n  m: {llm: {config: %s/scenarios/models/llama-3.1-8b.json,\n"
        "                 kv_blocks: 600, max_num_seqs: 64, max_num_batched_tokens: 512,\n"
        "                 step: {model: alpha_beta, overhead: 5ms, per_prefill_token: 20us,\n"
        "                        per_decode_seq: 300us, per_context_token: 20ns%s}}}\n"
        "pools:\n  p: {model: m, replicas: 2, gpus_per_node: 2, gpu: H200, timeout: 5s,\n"
        "              lifecycle: {start: 5s}}\n"
        "traffic:\n  - name: t\n    pool: p\n    arrivals: {process: poisson, rate: 12}\n"
        "    tokens: {input: {distribution: lognormal, mean: 800, cv: 1, max: 6000},\n"
        "             output: {distribution: lognormal, mean: 300, cv: 1.2, max: 3000}}\n"
        "chaos:\n  - {at: 100s, fault: node_crash, target: p/1, recover_after: 20s}\n";
    char y[4096];
    snprintf(y, sizeof y, fmt, tu_src(), ", per_prefill_attention: 2ns");
    cJSON *a = both_modes(y, "m");
    CU_ASSERT(tu_num(a, "pools.p.llm.preemptions") > 0);
    CU_ASSERT(tu_num(a, "requests.completed") > 800);
    CU_ASSERT_EQUAL(tu_num(a, "requests.generated"), tu_sum_buckets(a, "requests"));
    snprintf(y, sizeof y, fmt, tu_src(), "");
    int rc;
    char *d = tu_run_yaml(y, NULL, &rc);
    cJSON *b = tu_out_summary(d);
    CU_ASSERT_EQUAL(rc, 0);
    CU_ASSERT_PTR_NOT_NULL(b);
    if (a && b)
        CU_ASSERT(tu_num(a, "pools.p.llm.ttft_s.mean") > tu_num(b, "pools.p.llm.ttft_s.mean"));
    cJSON_Delete(b);
    tu_done(d);
    cJSON_Delete(a);
}

/* The time node p/0 of a run went from loading to warming after its
 * reboot (events.jsonl), or -1. */
static double reload_done_s(const char *dir)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/out/events.jsonl", dir);
    char *ev = tu_read(path);
    double t = -1;
    for (char *line = ev; line && *line; line = strchr(line, '\n') ? strchr(line, '\n') + 1 : NULL) {
        double x;
        if (strstr(line, "\"loading -> warming\"") && sscanf(line, "{\"t_s\":%lf", &x) == 1 &&
            (!strchr(line, '\n') || strstr(line, "loading -> warming") < strchr(line, '\n')))
            t = x;
    }
    free(ev);
    return t;
}

/* The model load reads the weights: Llama-3-8B's shape (8,030,261,248
 * parameters, test_llm_model.c) in bf16 is 16,060,522,496 bytes per
 * replica. A crash at 10 s for 5 s reboots the node at 15 s: the container
 * starts (1 s), then the load takes `load` (2 s) + the node's replicas'
 * weights / load_bandwidth. */
static void test_load_time_from_weights(void)
{
    static const char *fmt =
        "name: lt\n"
        "duration: 60s\n"
        "models:\n"
        "  m:\n"
        "    llm:\n"
        "      config: {hidden_size: 4096, num_hidden_layers: 32, num_attention_heads: 32,\n"
        "               num_key_value_heads: 8, intermediate_size: 14336, vocab_size: 128256}\n"
        "pools:\n"
        "  p:\n"
        "    model: m\n"
        "    replicas: 1\n"
        "    gpus_per_node: %d\n"
        "    tensor_parallel: %d\n"
        "    gpu: H100-SXM\n"
        "    lifecycle: {start: 1s, load: 2s, warmup: 500ms%s}\n"
        "traffic:\n"
        "  - {name: t, pool: p, arrivals: {process: deterministic, rate: 1}, tokens: {input: 16, output: 4}}\n"
        "chaos:\n"
        "  - {at: 10s, fault: node_crash, target: p/0, duration: 5s}\n";
    static const struct {
        int gpus, tp;
        const char *bw;
        double want_s;
    } cases[] = {
        /* no load_bandwidth: `load` alone, as before */
        { 2, 1, "", 16 + 2.0 },
        /* two TP-1 replicas on the node, 16 Gbps = 2e9 B/s: 2 x 8.030261248 s */
        { 2, 1, ", load_bandwidth: 16Gbps", 16 + 2.0 + 2 * 16060522496.0 / 2e9 },
        /* one TP-2 replica: its weights once, 8.030261248 s */
        { 2, 2, ", load_bandwidth: 2GB/s", 16 + 2.0 + 16060522496.0 / 2e9 },
        /* `default`: 2 GB/s, one replica */
        { 1, 1, ", load_bandwidth: default", 16 + 2.0 + 16060522496.0 / 2e9 },
        /* 500 MB/s: 32.121044992 s */
        { 1, 1, ", load_bandwidth: 500MB/s", 16 + 2.0 + 16060522496.0 / 5e8 },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char y[4096];
        int rc;
        snprintf(y, sizeof y, fmt, cases[i].gpus, cases[i].tp, cases[i].bw);
        char *dir = tu_run_yaml(y, NULL, &rc);
        CU_ASSERT_EQUAL(rc, 0);
        double t = reload_done_s(dir);
        if (fabs(t - cases[i].want_s) > 1e-9)
            fprintf(stderr, "\n  case %zu: loaded at %.9f s, want %.9f s", i, t, cases[i].want_s);
        CU_ASSERT_DOUBLE_EQUAL(t, cases[i].want_s, 1e-9);
        cJSON *j = tu_out_summary(dir);
        CU_ASSERT_PTR_NOT_NULL(j);
        if (j)
            CU_ASSERT_EQUAL(tu_num(j, "requests.generated"), tu_sum_buckets(j, "requests"));
        cJSON_Delete(j);
        tu_done(dir);
    }
    CU_ASSERT(tu_expect_error(
        "name: x\nduration: 1s\nmodels:\n  m: {service: {mean: 1s}}\npools:\n"
        "  p: {model: m, replicas: 1, lifecycle: {load_bandwidth: 1GB/s}}\n"
        "traffic:\n  - {name: t, pool: p, arrivals: {rate: 1}}\n",
        NULL, "s.yaml:6:42: pools.p: lifecycle.load_bandwidth applies to pools of an LLM model"));
    char y[4096];
    snprintf(y, sizeof y, fmt, 1, 1, ", load_bandwidth: fast");
    CU_ASSERT(tu_expect_error(y, NULL, "s.yaml:15:69: pools.p.lifecycle.load_bandwidth: expected a bandwidth > 0 (like 2GB/s, 25Gbps, or default), got \"fast\""));
    snprintf(y, sizeof y, fmt, 1, 1, ", load_bandwith: 1GB/s");
    CU_ASSERT(tu_expect_error(y, NULL, "unknown key \"load_bandwith\""));
}

int main(void)
{
    if (CU_initialize_registry() != CUE_SUCCESS)
        return CU_get_error();
    CU_pSuite s = CU_add_suite("llm_serve", NULL, NULL);
    CU_add_test(s, "one request, alpha_beta", test_one_request_alpha_beta);
    CU_add_test(s, "one request, alpha_beta with prefill attention",
                test_one_request_prefill_attention);
    CU_add_test(s, "two requests batched", test_two_requests_batched);
    CU_add_test(s, "--trace-steps, by hand", test_trace_steps_by_hand);
    CU_add_test(s, "one request, roofline", test_one_request_roofline);
    CU_add_test(s, "KV pressure preempts", test_kv_pressure_preempts);
    CU_add_test(s, "timeout cancels", test_timeout_cancels);
    CU_add_test(s, "conservation with a crash", test_conservation_with_crash);
    CU_add_test(s, "scenario errors", test_errors);
    CU_add_test(s, "shipped chat scenario", test_shipped_chat);
    CU_add_test(s, "coalesced steps equal per-step", test_coalesced_equals_per_step);
    CU_add_test(s, "coalesced steps equal per-step with step noise",
                test_coalesced_equals_per_step_noise);
    CU_add_test(s, "coalesced steps equal per-step with prefill attention",
                test_coalesced_equals_per_step_prefill_attention);
    CU_add_test(s, "model load time from the weights", test_load_time_from_weights);
    CU_basic_set_mode(CU_BRM_VERBOSE);
    CU_basic_run_tests();
    unsigned f = CU_get_number_of_failures();
    CU_cleanup_registry();
    return f ? 1 : 0;
}
