/*
 * test_llm_client.c - what an LLM client brings to the server: a deadline
 * on the first token (pools.<p>.ttft_timeout: cancelled before or at its
 * first token, bound by the whole answer's timeout after it; blocks freed,
 * requests conserved), shared system prompts (traffic.<c>.tokens.
 * system_prompt: prefix-cache hits on their full blocks, and what the
 * prefix_affinity balancer makes of them), and step coefficients read from
 * a realbench profile (models.<m>.llm.step.calibration); and the shipped
 * scenarios/llm-assistant.yaml. Whole runs through the fleetsim binary, on
 * step times computed here with llm_step_s.
 */
#include "llm_model.h"
#include "testutil.h"

#include <CUnit/Basic.h>

#include <math.h>

static const char *SHAPE_YAML =
    "{hidden_size: 4096, num_hidden_layers: 32, num_attention_heads: 32,\n"
    "               num_key_value_heads: 8, intermediate_size: 14336, vocab_size: 128256}";
static const char *SHAPE_JSON =
    "{\"hidden_size\": 4096, \"num_hidden_layers\": 32, \"num_attention_heads\": 32, "
    "\"num_key_value_heads\": 8, \"intermediate_size\": 14336, \"vocab_size\": 128256}";

/* The replica the scenarios below run: that shape in bf16 on one H100,
 * roofline at the GPU's MFUs. */
static llm_perf roofline(void)
{
    llm_perf pf;
    llm_shape s;
    char err[256];
    CU_ASSERT_EQUAL(llm_shape_parse(SHAPE_JSON, &s, err, sizeof err), 0);
    llm_perf_init(&pf, &s, llm_gpu_find("H100-SXM"), 1);
    return pf;
}

static double step1(const llm_perf *pf, int n, long c, int decode)
{
    llm_chunk ch = { .n = n, .c = c, .decode = decode };
    return llm_step_s(pf, &ch, 1);
}

/* One request alone: its prefill (chunks of `chunk` tokens) then its
 * decode steps; t[j] = the end of step j (t[0] = 0). Returns the steps. */
static int alone(const llm_perf *pf, int prompt, int out, int chunk, double *t, int cap)
{
    int j = 0, done = 0;
    t[0] = 0;
    while (done < prompt && j + 1 < cap) {
        int n = prompt - done < chunk ? prompt - done : chunk;
        t[j + 1] = t[j] + step1(pf, n, done, 0);
        done += n;
        j++;
    }
    for (int k = 1; k < out && j + 1 < cap; k++, j++)
        t[j + 1] = t[j] + step1(pf, 1, prompt + k - 1, 1);
    return j;
}

/* A scenario of one LLM pool on one H100 replica, no network time, its
 * requests replayed from a trace (rows "at,prompt,output"). */
static char *run(const char *rows, const char *model_extra, const char *pool_extra, int *rc,
                 char **trace_dir)
{
    *trace_dir = tu_tmpdir();
    char path[4096], text[8192];
    snprintf(path, sizeof path, "%s/trace.csv", *trace_dir);
    snprintf(text, sizeof text, "arrived_at,num_prefill_tokens,num_decode_tokens\n%s", rows);
    tu_write(path, text);
    static char y[8192];
    snprintf(y, sizeof y,
             "name: client\nduration: 60s\n"
             "models:\n  m:\n    llm:\n      config: %s\n%s"
             "pools:\n  p:\n    model: m\n    replicas: 1\n    gpus_per_node: 1\n"
             "    gpu: H100-SXM\n    link: {latency: 0s}\n%s"
             "traffic:\n  - name: t\n    pool: p\n    size: 0B\n    response_size: 0B\n"
             "    tokens: {trace: %s}\n",
             SHAPE_YAML, model_extra, pool_extra, path);
    return tu_run_yaml(y, NULL, rc);
}

/* ---- first-token deadline ---- */

/* A 1000-token prompt is one prefill step of T. A first-token deadline 1 ms
 * before T: the token would come too late, the request is cancelled
 * (timed out) and nothing of it is delivered; one with a single output
 * token (it finishes in that step) too. 1 ms after T: the request
 * completes although its whole answer takes far longer than the deadline. */
static void test_ttft_before_after_first_token(void)
{
    llm_perf pf = roofline();
    double t[64];
    int k = alone(&pf, 1000, 50, 8192, t, 64);
    CU_ASSERT_EQUAL_FATAL(k, 50);
    double T = t[1];
    CU_ASSERT(T > 0.01 && t[50] > 4 * T); /* the answer takes several times the prefill */
    char pool[256], *td;
    int rc;
    const char *rows[] = {"0.0,1000,50\n", "0.0,1000,1\n"};
    for (int i = 0; i < 2; i++) {
        snprintf(pool, sizeof pool, "    ttft_timeout: %.9fs\n", T - 0.001);
        char *dir = run(rows[i], "", pool, &rc, &td);
        CU_ASSERT_EQUAL(rc, 0);
        cJSON *j = tu_out_summary(dir);
        CU_ASSERT_PTR_NOT_NULL_FATAL(j);
        CU_ASSERT_EQUAL(tu_num(j, "requests.timed_out"), 1);
        CU_ASSERT_EQUAL(tu_num(j, "requests.completed"), 0);
        CU_ASSERT_EQUAL(tu_num(j, "requests.in_flight_at_end"), 0);
        CU_ASSERT_EQUAL(tu_num(j, "pools.p.llm.output_tokens"), 0);
        CU_ASSERT_EQUAL(tu_num(j, "pools.p.llm.input_tokens"), 0);
        CU_ASSERT_EQUAL(tu_num(j, "pools.p.llm.steps"), 1);
        CU_ASSERT_EQUAL(tu_num(j, "requests.generated"), tu_sum_buckets(j, "requests"));
        cJSON_Delete(j);
        tu_done(dir);
        tu_done(td);
    }
    /* just after the first token; a whole-answer timeout well above it */
    snprintf(pool, sizeof pool, "    ttft_timeout: %.9fs\n    timeout: 10s\n", T + 0.001);
    char *dir = run("0.0,1000,50\n", "", pool, &rc, &td);
    CU_ASSERT_EQUAL(rc, 0);
    cJSON *j = tu_out_summary(dir);
    CU_ASSERT_PTR_NOT_NULL_FATAL(j);
    CU_ASSERT_EQUAL(tu_num(j, "requests.completed"), 1);
    CU_ASSERT_EQUAL(tu_num(j, "requests.timed_out"), 0);
    CU_ASSERT_DOUBLE_EQUAL(tu_num(j, "pools.p.llm.ttft_s.mean"), T, 1e-9);
    CU_ASSERT_DOUBLE_EQUAL(tu_num(j, "pools.p.llm.e2e_s.mean"), t[50], 1e-9);
    CU_ASSERT_EQUAL(tu_num(j, "pools.p.llm.output_tokens"), 50);
    cJSON_Delete(j);
    tu_done(dir);
    tu_done(td);
    /* the whole answer's timeout still applies after the first token */
    snprintf(pool, sizeof pool, "    ttft_timeout: %.9fs\n    timeout: %.9fs\n", T + 0.001,
             (t[10] + t[11]) / 2);
    dir = run("0.0,1000,50\n", "", pool, &rc, &td);
    CU_ASSERT_EQUAL(rc, 0);
    j = tu_out_summary(dir);
    CU_ASSERT_PTR_NOT_NULL_FATAL(j);
    CU_ASSERT_EQUAL(tu_num(j, "requests.timed_out"), 1);
    CU_ASSERT_DOUBLE_EQUAL(tu_num(j, "pools.p.llm.ttft_s.mean"), T, 1e-9);
    CU_ASSERT_EQUAL(tu_num(j, "pools.p.llm.output_tokens"), 11); /* steps 1..11 */
    cJSON_Delete(j);
    tu_done(dir);
    tu_done(td);
}

/* max_num_seqs 1: the second of two requests sent together waits for the
 * whole first answer. A first-token deadline 1 ms after the first one's
 * TTFT cancels the second in the waiting queue (at the end of the step
 * during which its deadline passed); the first completes. */
static void test_ttft_cancels_waiting(void)
{
    llm_perf pf = roofline();
    double t[64];
    alone(&pf, 1000, 50, 8192, t, 64);
    char pool[256], *td;
    snprintf(pool, sizeof pool, "    ttft_timeout: %.9fs\n", t[1] + 0.001);
    int rc;
    char *dir = run("0.0,1000,50\n0.0,1000,50\n", "      max_num_seqs: 1\n", pool, &rc, &td);
    CU_ASSERT_EQUAL(rc, 0);
    cJSON *j = tu_out_summary(dir);
    CU_ASSERT_PTR_NOT_NULL_FATAL(j);
    CU_ASSERT_EQUAL(tu_num(j, "requests.completed"), 1);
    CU_ASSERT_EQUAL(tu_num(j, "requests.timed_out"), 1);
    CU_ASSERT_EQUAL(tu_num(j, "requests.generated"), tu_sum_buckets(j, "requests"));
    CU_ASSERT_EQUAL(tu_num(j, "pools.p.llm.steps"), 50); /* the first request's only */
    CU_ASSERT_EQUAL(tu_num(j, "pools.p.llm.output_tokens"), 50);
    CU_ASSERT_DOUBLE_EQUAL(tu_num(j, "pools.p.llm.e2e_s.max"), t[50], 1e-9);
    cJSON_Delete(j);
    tu_done(dir);
    tu_done(td);
}

/* Cancelled mid-prefill, its blocks come back. 64-token steps and 70 KV
 * blocks: a 1000-token prompt needs 16 prefill steps; its first-token
 * deadline falls between the ends of steps 8 and 9, so it is cancelled
 * at the end of step 9 holding 36 blocks (576 tokens). A second request,
 * sent at 1 s, needs 42 blocks (64 + 600 - 1 tokens): more than the 34
 * left if those 36 leaked. It completes, on time: its TTFT is its one
 * prefill step and it ends after 599 decode steps. */
static void test_ttft_frees_blocks(void)
{
    llm_perf pf = roofline();
    static double t[700], u[700];
    alone(&pf, 1000, 10, 64, t, 700);
    int k = alone(&pf, 64, 600, 64, u, 700);
    CU_ASSERT_EQUAL_FATAL(k, 600);
    double dl = (t[8] + t[9]) / 2;
    CU_ASSERT(u[1] < dl); /* the second request's first token is in time */
    char pool[256], *td;
    snprintf(pool, sizeof pool, "    ttft_timeout: %.9fs\n", dl);
    int rc;
    char *dir = run("0.0,1000,10\n1.0,64,600\n",
                    "      max_num_batched_tokens: 64\n      kv_blocks: 70\n", pool, &rc, &td);
    CU_ASSERT_EQUAL(rc, 0);
    cJSON *j = tu_out_summary(dir);
    CU_ASSERT_PTR_NOT_NULL_FATAL(j);
    CU_ASSERT_EQUAL(tu_num(j, "requests.timed_out"), 1);
    CU_ASSERT_EQUAL(tu_num(j, "requests.completed"), 1);
    CU_ASSERT_EQUAL(tu_num(j, "requests.in_flight_at_end"), 0);
    CU_ASSERT_EQUAL(tu_num(j, "requests.generated"), tu_sum_buckets(j, "requests"));
    CU_ASSERT_EQUAL(tu_num(j, "pools.p.llm.steps"), 9 + 600);
    CU_ASSERT_EQUAL(tu_num(j, "pools.p.llm.output_tokens"), 600);
    CU_ASSERT_EQUAL(tu_num(j, "pools.p.llm.preemptions"), 0);
    CU_ASSERT_DOUBLE_EQUAL(tu_num(j, "pools.p.llm.ttft_s.mean"), u[1], 1e-9);
    CU_ASSERT_DOUBLE_EQUAL(tu_num(j, "pools.p.llm.e2e_s.mean"), u[600], 1e-9);
    /* the peak: the second request's 42 blocks, not 36 + 42 */
    CU_ASSERT_DOUBLE_EQUAL(tu_num(j, "pools.p.llm.kv_usage_max"), 42.0 / 70, 1e-12);
    cJSON_Delete(j);
    tu_done(dir);
    tu_done(td);
}

/* Many requests at Poisson arrivals with a tight first-token deadline:
 * some are cancelled waiting, some mid-prefill, some complete; every one
 * ends in exactly one bucket, and coalesced steps give what single steps
 * give. */
static void test_ttft_conservation(void)
{
    char y[4096];
    snprintf(y, sizeof y,
             "name: ttft\nduration: 2m\n"
             "models:\n  m: {llm: {config: %s/scenarios/models/llama-3.1-8b.json,\n"
             "                 kv_blocks: 800, max_num_seqs: 32}}\n"
             "pools:\n  p: {model: m, replicas: 2, gpus_per_node: 1, gpu: H100-SXM,\n"
             "              ttft_timeout: 400ms, timeout: 20s}\n"
             "traffic:\n  - name: t\n    pool: p\n    arrivals: {process: poisson, rate: 15}\n"
             "    tokens: {input: {distribution: lognormal, mean: 2000, cv: 1, max: 8000},\n"
             "             output: {distribution: lognormal, mean: 200, cv: 1, max: 2000}}\n",
             tu_src());
    int rc1, rc2;
    char *d1 = tu_run_yaml(y, NULL, &rc1);
    char *d2 = tu_run_yaml(y, "--set models.m.llm.coalesce_steps=false", &rc2);
    CU_ASSERT_EQUAL(rc1, 0);
    CU_ASSERT_EQUAL(rc2, 0);
    cJSON *a = tu_out_summary(d1), *b = tu_out_summary(d2);
    CU_ASSERT_PTR_NOT_NULL_FATAL(a);
    CU_ASSERT_PTR_NOT_NULL_FATAL(b);
    CU_ASSERT_EQUAL(tu_num(a, "requests.generated"), tu_sum_buckets(a, "requests"));
    CU_ASSERT(tu_num(a, "requests.timed_out") > 0);
    CU_ASSERT(tu_num(a, "requests.completed") > 0);
    /* no delivered first token came after the deadline */
    CU_ASSERT(tu_num(a, "pools.p.llm.ttft_s.max") <= 0.4 * (1 + 0.005));
    const char *keys[] = {"requests.completed", "requests.timed_out", "pools.p.llm.steps",
                          "pools.p.llm.output_tokens", "pools.p.llm.ttft_s.p99"};
    for (size_t i = 0; i < sizeof keys / sizeof *keys; i++)
        CU_ASSERT_EQUAL(tu_num(a, keys[i]), tu_num(b, keys[i]));
    cJSON_Delete(a);
    cJSON_Delete(b);
    tu_done(d1);
    tu_done(d2);
}

static void test_ttft_errors(void)
{
    CU_ASSERT(tu_expect_error(
        "name: x\nduration: 1s\nmodels:\n  m: {service: {mean: 1s}}\npools:\n"
        "  p: {model: m, replicas: 1, ttft_timeout: 1s}\n"
        "traffic:\n  - {name: t, pool: p, arrivals: {rate: 1}}\n",
        NULL, "s.yaml:6:30: pools.p: ttft_timeout applies to pools of an LLM model"));
    char y[1024];
    snprintf(y, sizeof y,
             "name: x\nduration: 1s\nmodels:\n  m: {llm: {config: %s/scenarios/models/"
             "llama-3.1-8b.json}}\npools:\n  p: {model: m, replicas: 1, ttft_timeout: soon}\n"
             "traffic:\n  - {name: t, pool: p, arrivals: {rate: 1}, tokens: {input: 9, "
             "output: 9}}\n",
             tu_src());
    CU_ASSERT(tu_expect_error(y, NULL, "s.yaml:6:44: pools.p.ttft_timeout:"));
}

/* ---- shared system prompts ---- */

/* One LLM pool of `replicas` one-GPU nodes behind `policy`; requests of
 * a 100-token question after one of `prompts` system prompts of 1000
 * tokens. */
static cJSON *run_system(const char *policy, int replicas, int prompts, const char *arrivals,
                         int caching)
{
    char y[4096];
    snprintf(y, sizeof y,
             "name: sys\nduration: 60s\n"
             "models:\n  m: {llm: {config: %s/scenarios/models/llama-3.1-8b.json,\n"
             "                 enable_prefix_caching: %s}}\n"
             "pools:\n  p: {model: m, replicas: %d, gpus_per_node: 1, gpu: H100-SXM}\n"
             "load_balancer: {policy: %s}\n"
             "traffic:\n  - name: t\n    pool: p\n    arrivals: %s\n"
             "    tokens: {input: 100, output: 10,\n"
             "             system_prompt: {tokens: 1000, prompts: %d}}\n",
             tu_src(), caching ? "true" : "false", replicas, policy, arrivals, prompts);
    int rc;
    char *dir = tu_run_yaml(y, NULL, &rc);
    CU_ASSERT_EQUAL(rc, 0);
    cJSON *j = tu_out_summary(dir);
    tu_done(dir);
    return j;
}

/* One replica, one request a second (each done long before the next):
 * the first request of each system prompt finds nothing; every later one
 * finds the prompt's 62 full blocks (992 of its 1000 tokens; block 63
 * holds 8 of them and 8 of the question, so it differs per request) of
 * its 1100. With one prompt the hit rate is (N - 1) x 992 / (N x 1100);
 * with four, (N - 4) x 992 / (N x 1100) once all four came (59 draws). */
static void test_system_prompt_hits(void)
{
    int prompts[] = {1, 4};
    for (int i = 0; i < 2; i++) {
        cJSON *j = run_system("round_robin", 1, prompts[i],
                              "{process: deterministic, rate: 1}", 1);
        CU_ASSERT_PTR_NOT_NULL_FATAL(j);
        double n = tu_num(j, "requests.completed");
        CU_ASSERT_EQUAL(n, 59); /* at 1 s, 2 s, ... 59 s */
        CU_ASSERT_EQUAL(tu_num(j, "requests.generated"), n);
        CU_ASSERT_EQUAL(tu_num(j, "pools.p.llm.input_tokens"), n * 1100);
        CU_ASSERT_EQUAL(tu_num(j, "pools.p.llm.prefix_cache_queries"), n * 1100);
        CU_ASSERT_EQUAL(tu_num(j, "pools.p.llm.prefix_cache_hits"), (n - prompts[i]) * 992);
        cJSON_Delete(j);
    }
    /* without prefix caching nothing is looked up */
    cJSON *j = run_system("round_robin", 1, 4, "{process: deterministic, rate: 1}", 0);
    CU_ASSERT_PTR_NOT_NULL_FATAL(j);
    CU_ASSERT_EQUAL(tu_num(j, "pools.p.llm.prefix_cache_hits"), 0);
    cJSON_Delete(j);
}

/* Eight system prompts over four replicas at 8 requests a second.
 * prefix_affinity sends each prompt to one replica (a first one to the
 * smallest index, then wherever its match covers more than half the
 * prompt: 1000 of 1100 tokens), so each prompt is computed once: exactly
 * 8 requests miss. round_robin spreads every prompt over every replica:
 * between 9 and 32 (replica, prompt) first meetings miss. */
static void test_system_prompt_affinity(void)
{
    const char *arr = "{process: poisson, rate: 8}";
    cJSON *a = run_system("prefix_affinity", 4, 8, arr, 1);
    cJSON *r = run_system("round_robin", 4, 8, arr, 1);
    CU_ASSERT_PTR_NOT_NULL_FATAL(a);
    CU_ASSERT_PTR_NOT_NULL_FATAL(r);
    double qa = tu_num(a, "pools.p.llm.prefix_cache_queries");
    double qr = tu_num(r, "pools.p.llm.prefix_cache_queries");
    double ha = tu_num(a, "pools.p.llm.prefix_cache_hits");
    double hr = tu_num(r, "pools.p.llm.prefix_cache_hits");
    CU_ASSERT(qa > 300 * 1100 && qr > 300 * 1100);
    /* admissions (each queries its 1100 tokens), and those that missed */
    double na = qa / 1100, nr = qr / 1100;
    CU_ASSERT_EQUAL(na, floor(na));
    CU_ASSERT_EQUAL(ha, (na - 8) * 992);
    double miss_r = nr - hr / 992;
    CU_ASSERT_EQUAL(miss_r, floor(miss_r));
    CU_ASSERT(miss_r > 8 && miss_r <= 32);
    CU_ASSERT(ha / qa > hr / qr);
    cJSON_Delete(a);
    cJSON_Delete(r);
}

static void test_system_prompt_errors(void)
{
    char y[2048];
    const char *bad[][2] = {
        {"{input: 9, output: 9, system_prompt: {tokens: 0}}", "s.yaml:8:99: "
         "traffic.t.tokens.system_prompt.tokens:"},
        {"{input: 9, output: 9, system_prompt: {prompts: 2}}", "s.yaml:8:90: "
         "traffic.t.tokens.system_prompt: missing required key tokens"},
        {"{input: 9, output: 9, system_prompt: {tokens: 9, size: 2}}", "s.yaml:8:102: "
         "traffic.t.tokens.system_prompt: unknown key"},
        {"{trace: x.csv, system_prompt: {tokens: 9}}", "system_prompt does not apply with "
         "trace"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        snprintf(y, sizeof y,
                 "name: x\nduration: 1s\nmodels:\n  m: {llm: {config: %s/scenarios/models/"
                 "llama-3.1-8b.json}}\npools:\n  p: {model: m, replicas: 1}\n"
                 "traffic:\n  - {name: t, pool: p, arrivals: {rate: 1}, tokens: %s}\n",
                 tu_src(), bad[i][0]);
        CU_ASSERT(tu_expect_error(y, NULL, bad[i][1]));
    }
}

/* The shipped assistant scenario, shortened to 3 minutes: every request
 * accounted for; keeping an assistant on one node (prefix_affinity) hits
 * the prefix cache more, and gives a lower mean TTFT, than spreading every
 * assistant over every replica (round_robin) when all the system prompts do
 * not fit one replica's cache. */
static void test_shipped_assistant(void)
{
    double hit[2], ttft[2];
    const char *pol[] = {"prefix_affinity", "round_robin"};
    for (int i = 0; i < 2; i++) {
        char out[4096], log[4096];
        char *dir = tu_tmpdir();
        snprintf(out, sizeof out, "%s/out", dir);
        snprintf(log, sizeof log, "%s/log", dir);
        int rc = tu_sh(log, "'%s' run '%s/scenarios/llm-assistant.yaml' --quiet --out '%s' "
                       "--set duration=3m --set load_balancer.policy=%s",
                       tu_bin(), tu_src(), out, pol[i]);
        CU_ASSERT_EQUAL(rc, 0);
        cJSON *j = tu_summary(out);
        CU_ASSERT_PTR_NOT_NULL_FATAL(j);
        double gen = tu_num(j, "requests.generated");
        CU_ASSERT(gen > 6500 && gen < 7900); /* 40 a second for 3 minutes */
        CU_ASSERT_EQUAL(gen, tu_sum_buckets(j, "requests"));
        hit[i] = tu_num(j, "pools.assist.llm.prefix_cache_hits") /
                 tu_num(j, "pools.assist.llm.prefix_cache_queries");
        ttft[i] = tu_num(j, "pools.assist.llm.ttft_s.mean");
        cJSON_Delete(j);
        tu_done(dir);
    }
    CU_ASSERT(hit[0] > hit[1]);
    CU_ASSERT(ttft[0] < ttft[1]);
}

/* ---- step coefficients from a realbench profile ---- */

/* alpha_beta by hand: the step of one sequence; a prompt chunk of n
 * tokens on ctx cached ones also pays c[4] per causal query-key pair,
 * n (ctx + (n + 1) / 2). */
static double ab_step(const double c[5], int n, long ctx, int decode)
{
    double t = c[0] + (decode ? c[2] : c[1] * n) + c[3] * (double)ctx;
    if (!decode && c[4] > 0)
        t += c[4] * (n * ((double)ctx + (n + 1.0) / 2.0));
    return t;
}

/* One request (100 prompt tokens, 10 output) on coefficients read from a
 * profile: its TTFT is the prefill step, its E2E that plus nine decode
 * steps at context 100..108, each as the coefficients give it. */
static void expect_steps_prec(const char *profile, const char *prec, const double c[5])
{
    char model[4096], *td;
    snprintf(model, sizeof model, "      step: {model: alpha_beta, calibration: %s%s%s}\n",
             profile, prec ? ", precision: " : "", prec ? prec : "");
    int rc;
    char *dir = run("0.0,100,10\n", model, "", &rc, &td);
    CU_ASSERT_EQUAL(rc, 0);
    cJSON *j = tu_out_summary(dir);
    CU_ASSERT_PTR_NOT_NULL_FATAL(j);
    double ttft = ab_step(c, 100, 0, 0), e2e = ttft;
    for (int k = 1; k < 10; k++)
        e2e += ab_step(c, 1, 100 + k - 1, 1);
    CU_ASSERT_EQUAL(tu_num(j, "requests.completed"), 1);
    CU_ASSERT_DOUBLE_EQUAL(tu_num(j, "pools.p.llm.ttft_s.mean"), ttft, 1e-12 * ttft);
    CU_ASSERT_DOUBLE_EQUAL(tu_num(j, "pools.p.llm.e2e_s.mean"), e2e, 1e-12 * e2e);
    CU_ASSERT_DOUBLE_EQUAL(tu_num(j, "pools.p.llm.tpot_s.mean"), (e2e - ttft) / 9,
                           1e-12 * e2e);
    cJSON_Delete(j);
    tu_done(dir);
    tu_done(td);
}

static void expect_steps(const char *profile, const double c[5])
{
    expect_steps_prec(profile, NULL, c);
}

static void test_calibration_steps(void)
{
    /* a profile written here: 2 ms a step, 50 us a prompt token, 1 ms a
     * decoding sequence, 1 us a context token */
    char *pd = tu_tmpdir();
    char prof[4096];
    snprintf(prof, sizeof prof, "%s/llm.json", pd);
    tu_write(prof, "{\"schema\": \"fleetsim-calibration/1\", \"llm_step\": {\"overhead_s\": 0.002, "
                   "\"per_prefill_token_s\": 5e-05, \"per_decode_seq_s\": 0.001, "
                   "\"per_context_token_s\": 1e-06}}");
    /* (no per_prefill_attention_s, as profiles fitted before it: it is 0) */
    const double given[5] = {0.002, 5e-5, 0.001, 1e-6, 0};
    expect_steps(prof, given);
    CU_ASSERT_DOUBLE_EQUAL(ab_step(given, 100, 0, 0), 0.007, 1e-15);
    /* with it: 2 ns per prefill attention pair; the prompt's 100 tokens
     * make 100 x 101 / 2 = 5050 pairs, 10.1 us more on the first token */
    tu_write(prof, "{\"schema\": \"fleetsim-calibration/1\", \"llm_step\": {\"overhead_s\": 0.002, "
                   "\"per_prefill_token_s\": 5e-05, \"per_decode_seq_s\": 0.001, "
                   "\"per_context_token_s\": 1e-06, \"per_prefill_attention_s\": 2e-09}}");
    const double with[5] = {0.002, 5e-5, 0.001, 1e-6, 2e-9};
    expect_steps(prof, with);
    CU_ASSERT_DOUBLE_EQUAL(ab_step(with, 100, 0, 0), 0.007 + 5050 * 2e-9, 1e-15);
    /* the profile realbench measured on a CPU, committed */
    snprintf(prof, sizeof prof, "%s/realbench/profiles/cpu-llm-step.json", tu_src());
    char *text = tu_read(prof);
    CU_ASSERT_PTR_NOT_NULL_FATAL(text);
    cJSON *p = cJSON_Parse(text);
    free(text);
    const cJSON *ls = cJSON_GetObjectItem(p, "llm_step");
    const char *names[] = {"overhead_s", "per_prefill_token_s", "per_decode_seq_s",
                           "per_context_token_s", "per_prefill_attention_s"};
    double c[5];
    for (int i = 0; i < 5; i++) {
        c[i] = cJSON_GetNumberValue(cJSON_GetObjectItem(ls, names[i]));
        CU_ASSERT(c[i] >= 0);
    }
    cJSON_Delete(p);
    expect_steps(prof, c);
    tu_done(pd);
}

/* step.precision: the coefficients of llm_step.precisions.<p>, not the top
 * level's (which a profile keeps for readers that name no precision). */
static void test_calibration_precision(void)
{
    char *pd = tu_tmpdir();
    char prof[4096];
    snprintf(prof, sizeof prof, "%s/llm.json", pd);
    tu_write(prof, "{\"schema\": \"fleetsim-calibration/1\", \"llm_step\": {\"overhead_s\": 0.002, "
                   "\"per_prefill_token_s\": 5e-05, \"per_decode_seq_s\": 0.001, "
                   "\"per_context_token_s\": 1e-06, \"precisions\": {"
                   "\"fp32\": {\"overhead_s\": 0.002, \"per_prefill_token_s\": 5e-05, "
                   "\"per_decode_seq_s\": 0.001, \"per_context_token_s\": 1e-06}, "
                   "\"int8\": {\"overhead_s\": 0.003, \"per_prefill_token_s\": 2e-05, "
                   "\"per_decode_seq_s\": 0.0004, \"per_context_token_s\": 3e-07}}}}");
    const double fp32[5] = {0.002, 5e-5, 0.001, 1e-6, 0}, int8[5] = {0.003, 2e-5, 4e-4, 3e-7, 0};
    expect_steps_prec(prof, "int8", int8);
    expect_steps_prec(prof, "fp32", fp32);
    expect_steps(prof, fp32);
    tu_done(pd);
}

static void test_calibration_errors(void)
{
    char *pd = tu_tmpdir();
    char neg[4096], model[8192], y[8192];
    snprintf(neg, sizeof neg, "%s/neg.json", pd);
    tu_write(neg, "{\"schema\": \"fleetsim-calibration/1\", \"llm_step\": {\"overhead_s\": 0.002, "
                  "\"per_prefill_token_s\": -5e-05, \"per_decode_seq_s\": 0.001, "
                  "\"per_context_token_s\": 1e-06}}");
    char nega[4096];
    snprintf(nega, sizeof nega, "%s/nega.json", pd);
    tu_write(nega, "{\"schema\": \"fleetsim-calibration/1\", \"llm_step\": {\"overhead_s\": 0.002, "
                   "\"per_prefill_token_s\": 5e-05, \"per_decode_seq_s\": 0.001, "
                   "\"per_context_token_s\": 1e-06, \"per_prefill_attention_s\": \"fast\"}}");
    struct {
        const char *step, *msg;
    } bad[] = {
        {"{model: alpha_beta, calibration: %s/realbench/profiles/cpu-risk-mlp.json}",
         "s.yaml:8:46: models.m.llm.step.calibration: \"%s/realbench/profiles/cpu-risk-mlp.json\" "
         "has no LLM step measurements"},
        {"{model: alpha_beta, calibration: %s/no-such.json}",
         "s.yaml:8:46: models.m.llm.step.calibration: cannot read calibration profile"},
        {"{model: alpha_beta, calibration: %s, per_decode_seq: 1ms}",
         "s.yaml:8:%d: models.m.llm.step: per_decode_seq comes from calibration"},
        {"{calibration: %s}", "s.yaml:8:14: models.m.llm.step: calibration applies to model "
                              "alpha_beta"},
        {"{model: alpha_beta, calibration: %s}",
         "s.yaml:8:46: models.m.llm.step.calibration: \"%s\": llm_step.per_prefill_token_s must "
         "be a number >= 0"},
        {"{model: alpha_beta, calibration: %s}",
         "s.yaml:8:46: models.m.llm.step.calibration: \"%s\": llm_step.per_prefill_attention_s "
         "must be a number >= 0"},
        {"{model: alpha_beta, calibration: %s, per_prefill_attention: 1ns}",
         "s.yaml:8:%d: models.m.llm.step: per_prefill_attention comes from calibration"},
    };
    /* a precision the profile lacks: at the precision's value */
    char fp32[4096];
    snprintf(fp32, sizeof fp32, "%s/fp32.json", pd);
    tu_write(fp32, "{\"schema\": \"fleetsim-calibration/1\", \"llm_step\": {\"overhead_s\": 0.002, "
                   "\"per_prefill_token_s\": 5e-05, \"per_decode_seq_s\": 0.001, "
                   "\"per_context_token_s\": 1e-06, \"precisions\": {\"fp32\": {"
                   "\"overhead_s\": 0.002, \"per_prefill_token_s\": 5e-05, "
                   "\"per_decode_seq_s\": 0.001, \"per_context_token_s\": 1e-06}}}}");
    struct {
        const char *step, *msg;
    } badp[] = {
        {"{model: alpha_beta, calibration: %s, precision: int8}",
         "s.yaml:8:%d: models.m.llm.step.calibration: \"%s\" has no LLM steps measured in int8 "
         "(llm_step.precisions: fp32;"},
        {"{model: alpha_beta, calibration: %s, precision: fp16}",
         "s.yaml:8:%d: models.m.llm.step.calibration: \"%s\" has no LLM steps measured in fp16 "
         "(llm_step.precisions: none;"},
        {"{model: alpha_beta, per_decode_seq: 1ms, precision: int8}",
         "s.yaml:8:%d: models.m.llm.step: precision picks a section of the calibration "
         "profile"},
        {"{model: roofline, precision: int8}",
         "s.yaml:8:%d: models.m.llm.step: precision applies to model alpha_beta"},
    };
    for (size_t i = 0; i < sizeof badp / sizeof *badp; i++) {
        char step[4096], msg[4096];
        const char *prof = i == 1 ? neg : fp32;
        snprintf(step, sizeof step, badp[i].step, prof);
        /* the column of the precision's value (i < 2) or key */
        int col = (int)(strstr(step, "precision") - step) + 13 + (i < 2 ? 11 : 0);
        if (i < 2)
            snprintf(msg, sizeof msg, badp[i].msg, col, prof);
        else
            snprintf(msg, sizeof msg, badp[i].msg, col);
        snprintf(model, sizeof model, "      step: %s\n", step);
        snprintf(y, sizeof y,
                 "name: x\nduration: 1s\nmodels:\n  m:\n    llm:\n      config: %s\n%s"
                 "pools:\n  p: {model: m, replicas: 1, gpu: H100-SXM}\n"
                 "traffic:\n  - {name: t, pool: p, arrivals: {rate: 1}, tokens: {input: 9, "
                 "output: 9}}\n",
                 SHAPE_YAML, model);
        CU_ASSERT(tu_expect_error(y, NULL, msg));
    }
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        const char *arg = i == 0 || i == 1 ? tu_src() : i >= 5 ? nega : neg;
        char step[4096], msg[4096];
        snprintf(step, sizeof step, bad[i].step, arg);
        if (i == 2 || i == 6) /* the clashing key's column */
            snprintf(msg, sizeof msg, bad[i].msg,
                     (int)(strstr(step, i == 2 ? "per_decode_seq" : "per_prefill_attention") -
                           step) + 13);
        else
            snprintf(msg, sizeof msg, bad[i].msg, arg);
        snprintf(model, sizeof model, "      step: %s\n", step);
        snprintf(y, sizeof y,
                 "name: x\nduration: 1s\nmodels:\n  m:\n    llm:\n      config: %s\n%s"
                 "pools:\n  p: {model: m, replicas: 1, gpu: H100-SXM}\n"
                 "traffic:\n  - {name: t, pool: p, arrivals: {rate: 1}, tokens: {input: 9, "
                 "output: 9}}\n",
                 SHAPE_YAML, model);
        CU_ASSERT(tu_expect_error(y, NULL, msg));
    }
    tu_done(pd);
}

int main(void)
{
    if (CU_initialize_registry() != CUE_SUCCESS)
        return CU_get_error();
    CU_pSuite s = CU_add_suite("llm_client", NULL, NULL);
    CU_add_test(s, "ttft deadline before / after the first token",
                test_ttft_before_after_first_token);
    CU_add_test(s, "ttft deadline cancels a waiting request", test_ttft_cancels_waiting);
    CU_add_test(s, "ttft deadline frees the blocks", test_ttft_frees_blocks);
    CU_add_test(s, "ttft deadline: conservation", test_ttft_conservation);
    CU_add_test(s, "ttft_timeout errors", test_ttft_errors);
    CU_add_test(s, "system prompt: prefix-cache hits", test_system_prompt_hits);
    CU_add_test(s, "system prompt: prefix_affinity vs round_robin", test_system_prompt_affinity);
    CU_add_test(s, "system_prompt errors", test_system_prompt_errors);
    CU_add_test(s, "shipped assistant scenario", test_shipped_assistant);
    CU_add_test(s, "step coefficients from a profile", test_calibration_steps);
    CU_add_test(s, "step.precision picks a profile's section", test_calibration_precision);
    CU_add_test(s, "step.calibration errors", test_calibration_errors);
    CU_basic_set_mode(CU_BRM_VERBOSE);
    CU_basic_run_tests();
    unsigned f = CU_get_number_of_failures();
    CU_cleanup_registry();
    return f ? 1 : 0;
}
