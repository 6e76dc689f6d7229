/*
 * test_llm_model.c - the LLM replica's closed forms against numbers derived
 * by hand: the config.json reader on the shipped models and on bad input,
 * parameter counts against the published ones, KV bytes and blocks against
 * BLIS kv_capacity.go's arithmetic, the roofline floors quoted in
 * llm-serving.md, the compute/memory crossover, the MoE expert-coverage
 * formula and the alpha-beta line. Shipped files come from FLEETSIM_SRC.
 */
#include "llm_model.h"
#include "testutil.h"

#include <CUnit/Basic.h>
#include <CUnit/CUnit.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

static const double GIB = 1073741824.0;

static double rel_diff(double got, double want)
{
    return fabs(got - want) / fabs(want);
}

/* Loads scenarios/models/<stem>.json into s; fatal on failure. */
static int load_model(const char *stem, llm_shape *s)
{
    char path[1024], err[256] = "";
    int rc;

    snprintf(path, sizeof path, "%s/scenarios/models/%s.json", tu_src(), stem);
    rc = llm_shape_load(path, s, err, sizeof err);
    if (rc != 0)
        fprintf(stderr, "\n  %s\n", err);
    return rc;
}

static void perf_for(llm_perf *p, const char *stem, const char *gpu, int tp)
{
    llm_shape s;
    const llm_gpu *g = llm_gpu_find(gpu);

    memset(p, 0, sizeof *p);
    CU_ASSERT_EQUAL_FATAL(load_model(stem, &s), 0);
    CU_ASSERT_PTR_NOT_NULL_FATAL(g);
    llm_perf_init(p, &s, g, tp);
}

static double decode_batch_s(const llm_perf *p, int batch, long context)
{
    llm_chunk ch[1024];
    CU_ASSERT_FATAL(batch <= 1024);
    for (int i = 0; i < batch; i++)
        ch[i] = (llm_chunk){.n = 1, .c = context, .decode = 1};
    return llm_step_s(p, ch, batch);
}

static double prefill_s(const llm_perf *p, int tokens)
{
    llm_chunk ch = {.n = tokens, .c = 0, .decode = 0};
    return llm_step_s(p, &ch, 1);
}

/* ---- precisions ---- */

static void test_precisions(void)
{
    llm_precision p = LLM_FP32;

    CU_ASSERT_EQUAL(llm_precision_parse("bf16", &p), 0);
    CU_ASSERT_EQUAL(p, LLM_BF16);
    CU_ASSERT_EQUAL(llm_precision_parse("FP8", &p), 0);
    CU_ASSERT_EQUAL(p, LLM_FP8);
    CU_ASSERT_EQUAL(llm_precision_parse("int4", &p), 0);
    CU_ASSERT_EQUAL(p, LLM_INT4);
    CU_ASSERT_EQUAL(llm_precision_parse("fp4", &p), -1);
    CU_ASSERT_EQUAL(p, LLM_INT4); /* untouched on failure */
    CU_ASSERT_STRING_EQUAL(llm_precision_name(LLM_INT8), "int8");
    CU_ASSERT_STRING_EQUAL(llm_precision_name(LLM_FP16), "fp16");
    CU_ASSERT_EQUAL(llm_precision_bytes(LLM_FP32), 4.0);
    CU_ASSERT_EQUAL(llm_precision_bytes(LLM_BF16), 2.0);
    CU_ASSERT_EQUAL(llm_precision_bytes(LLM_FP8), 1.0);
    CU_ASSERT_EQUAL(llm_precision_bytes(LLM_INT4), 0.5);
}

/* ---- config.json ---- */

static void test_parse_llama_8b(void)
{
    llm_shape s;

    CU_ASSERT_EQUAL_FATAL(load_model("llama-3.1-8b", &s), 0);
    CU_ASSERT_STRING_EQUAL(s.name, "llama-3.1-8b");
    CU_ASSERT_EQUAL(s.hidden_size, 4096);
    CU_ASSERT_EQUAL(s.num_layers, 32);
    CU_ASSERT_EQUAL(s.num_heads, 32);
    CU_ASSERT_EQUAL(s.num_kv_heads, 8);
    CU_ASSERT_EQUAL(s.head_dim, 128); /* 4096 / 32: the file has no head_dim */
    CU_ASSERT_EQUAL(s.intermediate_size, 14336);
    CU_ASSERT_EQUAL(s.vocab_size, 128256);
    CU_ASSERT_EQUAL(s.tie_word_embeddings, 0);
    CU_ASSERT_EQUAL(s.n_routed_experts, 0);
    CU_ASSERT_EQUAL(s.kv_lora_rank, 0);
}

static void test_parse_llama_70b(void)
{
    llm_shape s;

    CU_ASSERT_EQUAL_FATAL(load_model("llama-3.1-70b", &s), 0);
    CU_ASSERT_STRING_EQUAL(s.name, "llama-3.1-70b");
    CU_ASSERT_EQUAL(s.hidden_size, 8192);
    CU_ASSERT_EQUAL(s.num_layers, 80);
    CU_ASSERT_EQUAL(s.num_heads, 64);
    CU_ASSERT_EQUAL(s.num_kv_heads, 8);
    CU_ASSERT_EQUAL(s.head_dim, 128);
    CU_ASSERT_EQUAL(s.intermediate_size, 28672);
    CU_ASSERT_EQUAL(s.vocab_size, 128256);
}

static void test_parse_deepseek_v3(void)
{
    llm_shape s;

    CU_ASSERT_EQUAL_FATAL(load_model("deepseek-v3", &s), 0);
    CU_ASSERT_STRING_EQUAL(s.name, "deepseek-v3");
    CU_ASSERT_EQUAL(s.hidden_size, 7168);
    CU_ASSERT_EQUAL(s.num_layers, 61);
    CU_ASSERT_EQUAL(s.num_heads, 128);
    CU_ASSERT_EQUAL(s.num_kv_heads, 128);
    CU_ASSERT_EQUAL(s.head_dim, 56); /* 7168 / 128; MLA uses its own sizes */
    CU_ASSERT_EQUAL(s.intermediate_size, 18432);
    CU_ASSERT_EQUAL(s.vocab_size, 129280);
    CU_ASSERT_EQUAL(s.n_routed_experts, 256);
    CU_ASSERT_EQUAL(s.n_shared_experts, 1);
    CU_ASSERT_EQUAL(s.experts_per_token, 8);
    CU_ASSERT_EQUAL(s.moe_intermediate_size, 2048);
    CU_ASSERT_EQUAL(s.first_dense_layers, 3);
    CU_ASSERT_EQUAL(s.kv_lora_rank, 512);
    CU_ASSERT_EQUAL(s.q_lora_rank, 1536);
    CU_ASSERT_EQUAL(s.qk_rope_head_dim, 64);
    CU_ASSERT_EQUAL(s.qk_nope_head_dim, 128);
    CU_ASSERT_EQUAL(s.v_head_dim, 128);
}

/* Mixtral-8x7B's published shape: num_local_experts is the routed experts,
 * each as wide as intermediate_size; 46,702,792,704 parameters, 12.9e9 per
 * token (2 of 8 experts). */
static const char MIXTRAL_JSON[] =
    "{\"model_type\": \"mixtral\", \"hidden_size\": 4096, \"intermediate_size\": 14336,"
    " \"num_attention_heads\": 32, \"num_hidden_layers\": 32, \"num_key_value_heads\": 8,"
    " \"num_local_experts\": 8, \"num_experts_per_tok\": 2, \"vocab_size\": 32000,"
    " \"tie_word_embeddings\": false, \"sliding_window\": null}";

static void test_parse_mixtral(void)
{
    llm_shape s;
    char err[256] = "";

    CU_ASSERT_EQUAL_FATAL(llm_shape_parse(MIXTRAL_JSON, &s, err, sizeof err), 0);
    CU_ASSERT_STRING_EQUAL(s.name, "mixtral");
    CU_ASSERT_EQUAL(s.n_routed_experts, 8);
    CU_ASSERT_EQUAL(s.experts_per_token, 2);
    CU_ASSERT_EQUAL(s.moe_intermediate_size, 14336);
    CU_ASSERT_EQUAL(s.first_dense_layers, 0);
    /* 32 x (attention 41,943,040 + norms 8,192 + 8 experts x 176,160,768 +
     * router 32,768) + final norm 4,096 + 2 x 32000 x 4096. */
    CU_ASSERT_DOUBLE_EQUAL(llm_params_total(&s), 46702792704.0, 0.5);
    /* The same with 2 experts. */
    CU_ASSERT_DOUBLE_EQUAL(llm_params_active(&s), 12879925248.0, 0.5);
}

/* Defaults: no num_key_value_heads = multi-head; no head_dim = hidden / heads. */
static void test_parse_defaults(void)
{
    llm_shape s;
    char err[256] = "";
    const char *json = "{\"hidden_size\": 768, \"num_hidden_layers\": 12,"
                       " \"num_attention_heads\": 12, \"intermediate_size\": 3072,"
                       " \"vocab_size\": 50257, \"tie_word_embeddings\": true}";

    CU_ASSERT_EQUAL_FATAL(llm_shape_parse(json, &s, err, sizeof err), 0);
    CU_ASSERT_STRING_EQUAL(s.name, "model");
    CU_ASSERT_EQUAL(s.num_kv_heads, 12);
    CU_ASSERT_EQUAL(s.head_dim, 64);
    CU_ASSERT_EQUAL(s.tie_word_embeddings, 1);
    /* Tied: the embedding is counted once. 12 x (4 x 768^2 + 2 x 768 +
     * 3 x 768 x 3072) + 768 + 50257 x 768 = 12 x 9,438,720 + 768 +
     * 38,597,376 = 151,862,784. */
    CU_ASSERT_DOUBLE_EQUAL(llm_params_total(&s), 151862784.0, 0.5);
}

static void expect_error(const char *json, const char *want)
{
    llm_shape s;
    char err[256] = "";

    CU_ASSERT_EQUAL(llm_shape_parse(json, &s, err, sizeof err), -1);
    if (!strstr(err, want)) {
        fprintf(stderr, "\n  error \"%s\" lacks \"%s\"\n", err, want);
        CU_FAIL("error message");
    }
}

#define BASE_FIELDS                                                                               \
    "\"num_attention_heads\": 32, \"intermediate_size\": 14336, \"vocab_size\": 128256"

static void test_parse_errors(void)
{
    expect_error("{\"hidden_size\": 4096,", "config.json: not valid JSON");
    expect_error("{\n  \"hidden_size\": 4096\n  \"x\": 1}", "(line 3");
    expect_error("[1, 2]", "config.json: not a JSON object");
    expect_error("{\"num_hidden_layers\": 32, " BASE_FIELDS "}",
                 "config.json: \"hidden_size\" missing");
    expect_error("{\"hidden_size\": 4096, " BASE_FIELDS "}",
                 "config.json: \"num_hidden_layers\" missing");
    expect_error("{\"hidden_size\": 4096, \"num_hidden_layers\": -32, " BASE_FIELDS "}",
                 "config.json: \"num_hidden_layers\" must be a positive integer");
    expect_error("{\"hidden_size\": 4096, \"num_hidden_layers\": 0, " BASE_FIELDS "}",
                 "\"num_hidden_layers\" must be a positive integer");
    expect_error("{\"hidden_size\": 4096.5, \"num_hidden_layers\": 32, " BASE_FIELDS "}",
                 "\"hidden_size\" must be a positive integer");
    expect_error("{\"hidden_size\": \"4096\", \"num_hidden_layers\": 32, " BASE_FIELDS "}",
                 "\"hidden_size\" must be a positive integer");
    expect_error("{\"hidden_size\": 1e12, \"num_hidden_layers\": 32, " BASE_FIELDS "}",
                 "\"hidden_size\" must be a positive integer");
    expect_error("{\"hidden_size\": 4096, \"num_hidden_layers\": 32, \"head_dim\": -1, "
                 BASE_FIELDS "}",
                 "\"head_dim\" must be a non-negative integer");
    expect_error("{\"hidden_size\": 4096, \"num_hidden_layers\": 32, \"num_key_value_heads\": 5, "
                 BASE_FIELDS "}",
                 "\"num_attention_heads\" (32) must be a multiple of \"num_key_value_heads\" (5)");
    expect_error("{\"hidden_size\": 4096, \"num_hidden_layers\": 32, \"tie_word_embeddings\": 1, "
                 BASE_FIELDS "}",
                 "\"tie_word_embeddings\" must be true or false");
    expect_error("{\"hidden_size\": 4100, \"num_hidden_layers\": 32, " BASE_FIELDS "}",
                 "give \"head_dim\"");
    expect_error("{\"hidden_size\": 4096, \"num_hidden_layers\": 32, \"n_routed_experts\": 8, "
                 "\"num_experts_per_tok\": 9, " BASE_FIELDS "}",
                 "\"num_experts_per_tok\" must be between 1 and the 8 routed experts");
    expect_error("{\"hidden_size\": 4096, \"num_hidden_layers\": 32, \"n_routed_experts\": 8, "
                 "\"num_experts_per_tok\": 2, \"n_group\": 4, \"topk_group\": 5, " BASE_FIELDS "}",
                 "\"topk_group\" (5) must be at most \"n_group\" (4)");
    expect_error("{\"hidden_size\": 4096, \"num_hidden_layers\": 32, \"n_routed_experts\": 8, "
                 "\"num_experts_per_tok\": 2, \"n_group\": -1, " BASE_FIELDS "}",
                 "\"n_group\" must be a non-negative integer");
    expect_error("{\"hidden_size\": 4096, \"num_hidden_layers\": 32, \"kv_lora_rank\": 512, "
                 "\"qk_nope_head_dim\": 128, \"v_head_dim\": 128, " BASE_FIELDS "}",
                 "needs a positive \"qk_rope_head_dim\"");
}

static void test_load_errors_name_the_file(void)
{
    llm_shape s;
    char err[512] = "", path[256];
    char *dir = tu_tmpdir();

    CU_ASSERT_PTR_NOT_NULL_FATAL(dir);
    snprintf(path, sizeof path, "%s/broken.json", dir);
    tu_write(path, "{\"hidden_size\": 4096}");
    CU_ASSERT_EQUAL(llm_shape_load(path, &s, err, sizeof err), -1);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, path));
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "\"num_hidden_layers\" missing"));
    remove(path);
    snprintf(path, sizeof path, "%s/absent.json", dir);
    CU_ASSERT_EQUAL(llm_shape_load(path, &s, err, sizeof err), -1);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, path));
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "cannot open"));
    rmdir(dir);
    free(dir);
}

static void test_shape_check_inline(void)
{
    llm_shape s = {.hidden_size = 4096, .num_layers = 32, .num_heads = 32,
                   .intermediate_size = 14336, .vocab_size = 128256};
    char err[256] = "";

    /* num_kv_heads and head_dim left 0: their defaults apply. */
    CU_ASSERT_EQUAL(llm_shape_check(&s, err, sizeof err), 0);
    CU_ASSERT_DOUBLE_EQUAL(llm_params_total(&s), 32 * (4.0 * 4096 * 4096 + 2 * 4096 +
                                                       3.0 * 4096 * 14336) +
                                                     4096 + 2.0 * 128256 * 4096,
                           0.5);
    s.vocab_size = 0;
    CU_ASSERT_EQUAL(llm_shape_check(&s, err, sizeof err), -1);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "\"vocab_size\" must be a positive integer"));
}

/* ---- parameters ---- */

static void test_params(void)
{
    llm_shape s8, s70, ds;

    CU_ASSERT_EQUAL_FATAL(load_model("llama-3.1-8b", &s8), 0);
    CU_ASSERT_EQUAL_FATAL(load_model("llama-3.1-70b", &s70), 0);
    CU_ASSERT_EQUAL_FATAL(load_model("deepseek-v3", &ds), 0);
    /* Llama-3.1-8B: 32 x 218,112,000 + 4,096 + 2 x 525,336,576 (the
     * safetensors total on the model card, and BLIS's count). */
    CU_ASSERT_DOUBLE_EQUAL(llm_params_total(&s8), 8030261248.0, 0.5);
    CU_ASSERT_DOUBLE_EQUAL(llm_params_active(&s8), 8030261248.0, 0.5);
    /* Llama-3.1-70B: 80 x 855,654,400 + 8,192 + 2 x 1,050,673,152. */
    CU_ASSERT_DOUBLE_EQUAL(llm_params_total(&s70), 70553706496.0, 0.5);
    /* DeepSeek-V3: 671B total, 37B activated (its technical report). */
    CU_ASSERT(rel_diff(llm_params_total(&ds), 671e9) < 0.005);
    CU_ASSERT(llm_params_active(&ds) > 36.5e9 && llm_params_active(&ds) < 38.0e9);
    /* By hand: 61 layers of MLA attention (187,107,328 with its two
     * low-rank norms) and 2 x 7,168 norms; 3 dense MLPs of 396,361,728;
     * 58 MoE layers of 257 x 44,040,192 (routed + shared experts) + router
     * 1,835,008; final norm; 2 x 926,679,040 embeddings. */
    CU_ASSERT_DOUBLE_EQUAL(llm_params_total(&ds),
                           61.0 * (187107328 + 2 * 7168) + 3.0 * 396361728 +
                               58.0 * (257.0 * 44040192 + 1835008) + 7168 + 2.0 * 926679040,
                           0.5);
}

/* ---- GPUs ---- */

static void test_gpu_catalog(void)
{
    const llm_gpu *h100 = llm_gpu_find("h100-sxm");
    const llm_gpu *a100 = llm_gpu_find("A100");
    const char *names = llm_gpu_names();
    int n = 0;

    CU_ASSERT_PTR_NOT_NULL_FATAL(h100);
    CU_ASSERT_PTR_NOT_NULL_FATAL(a100);
    CU_ASSERT_STRING_EQUAL(h100->name, "H100-SXM");
    CU_ASSERT_PTR_EQUAL(llm_gpu_find("h100"), h100); /* the scenario's gpu_type */
    CU_ASSERT_STRING_EQUAL(a100->name, "A100-80G");
    CU_ASSERT_PTR_NULL(llm_gpu_find("V100"));
    CU_ASSERT_PTR_NULL(llm_gpu_find(NULL));
    for (int i = 0; llm_gpu_catalog[i]; i++, n++) {
        CU_ASSERT_PTR_NOT_NULL(strstr(names, llm_gpu_catalog[i]->name));
        CU_ASSERT_PTR_EQUAL(llm_gpu_find(llm_gpu_catalog[i]->name), llm_gpu_catalog[i]);
        CU_ASSERT(llm_gpu_catalog[i]->hbm_Bps > 0 && llm_gpu_catalog[i]->flops_fp16 > 0);
    }
    CU_ASSERT(n >= 5);
    CU_ASSERT_PTR_NOT_NULL(llm_gpu_find("B200"));
    CU_ASSERT_PTR_NOT_NULL(llm_gpu_find("l40s"));
    CU_ASSERT_DOUBLE_EQUAL(llm_gpu_flops(h100, LLM_BF16), 989.5e12, 1.0);
    CU_ASSERT_DOUBLE_EQUAL(llm_gpu_flops(h100, LLM_FP8), 1979e12, 1.0);
    CU_ASSERT_DOUBLE_EQUAL(llm_gpu_flops(h100, LLM_FP32), 494.7e12, 1.0);
    CU_ASSERT_DOUBLE_EQUAL(llm_gpu_flops(a100, LLM_FP8), 0.0, 0.0);
    CU_ASSERT_DOUBLE_EQUAL(llm_gpu_flops(a100, LLM_INT4), 624e12, 1.0);
    CU_ASSERT_DOUBLE_EQUAL(h100->hbm_bytes, 80 * GIB, 1.0);
    CU_ASSERT_DOUBLE_EQUAL(llm_gpu_find("H200")->hbm_Bps, 4.8e12, 1.0);
    CU_ASSERT_DOUBLE_EQUAL(a100->mfu_prefill, 0.38, 1e-12);
    CU_ASSERT_DOUBLE_EQUAL(a100->mfu_decode, 0.18, 1e-12);
}

/* fp8 weights run at fp8 peak where the GPU has it, at 16-bit where not. */
static void test_gemm_precision(void)
{
    llm_perf h, a;
    double c16, c8, m;
    llm_chunk ch = {.n = 4096, .c = 0, .decode = 0};

    perf_for(&h, "llama-3.1-8b", "H100-SXM", 1);
    llm_step_parts(&h, &ch, 1, &c16, &m);
    h.weights = LLM_FP8;
    llm_step_parts(&h, &ch, 1, &c8, &m);
    CU_ASSERT(rel_diff(c8, c16 / 2.0) < 1e-12);
    perf_for(&a, "llama-3.1-8b", "A100-80G", 1);
    llm_step_parts(&a, &ch, 1, &c16, &m);
    a.weights = LLM_FP8;
    llm_step_parts(&a, &ch, 1, &c8, &m);
    CU_ASSERT(rel_diff(c8, c16) < 1e-12);
    a.weights = LLM_INT4; /* weight-only: 16-bit tensor cores */
    llm_step_parts(&a, &ch, 1, &c8, &m);
    CU_ASSERT(rel_diff(c8, c16) < 1e-12);
}

/* ---- KV cache ---- */

static void test_kv_bytes(void)
{
    llm_perf p;

    perf_for(&p, "llama-3.1-8b", "H100-SXM", 1);
    CU_ASSERT_DOUBLE_EQUAL(llm_kv_bytes_per_token(&p), 131072.0, 0.0); /* 2 x 32 x 8 x 128 x 2 */
    p.tp = 4; /* split across ranks: the replica's total does not change */
    CU_ASSERT_DOUBLE_EQUAL(llm_kv_bytes_per_token(&p), 131072.0, 0.0);
    p.kv = LLM_FP8;
    CU_ASSERT_DOUBLE_EQUAL(llm_kv_bytes_per_token(&p), 65536.0, 0.0);
    perf_for(&p, "llama-3.1-70b", "H100-SXM", 4);
    CU_ASSERT_DOUBLE_EQUAL(llm_kv_bytes_per_token(&p), 327680.0, 0.0); /* 2 x 80 x 8 x 128 x 2 */
    perf_for(&p, "deepseek-v3", "H200", 1);
    CU_ASSERT_DOUBLE_EQUAL(llm_kv_bytes_per_token(&p), 70272.0, 0.0); /* 61 x (512 + 64) x 2 */
    p.tp = 8; /* the latent is replicated on every rank */
    CU_ASSERT_DOUBLE_EQUAL(llm_kv_bytes_per_token(&p), 8 * 70272.0, 0.0);
    /* a transfer sends the latent once */
    CU_ASSERT_DOUBLE_EQUAL(llm_kv_transfer_bytes_per_token(&p), 70272.0, 0.0);
    perf_for(&p, "llama-3.1-70b", "H100-SXM", 4);
    CU_ASSERT_DOUBLE_EQUAL(llm_kv_transfer_bytes_per_token(&p), 327680.0, 0.0);
}

static void test_kv_blocks(void)
{
    llm_perf p;
    char err[512] = "";
    long b2, b4;

    /* Llama-3.1-8B bf16 on one H100 at 0.9, block 16:
     *   budget   80 GiB x 0.9           = 77,309,411,328 B
     *   weights  8,030,261,248 x 2      = 16,060,522,496 B (14.96 GiB)
     *   activations 5.5 GiB             =  5,905,580,032 B
     *   non-torch 0.15 GiB              =    161,061,273.6 B
     *   free                            = 55,182,247,526.4 B
     *   block    16 x 131,072           =      2,097,152 B
     *   blocks = floor(26,312.95) = 26,312 (BLIS's "~26.3K blocks" for
     *   this model and GPU, kv_capacity_tp_basis_test.go) */
    perf_for(&p, "llama-3.1-8b", "H100-SXM", 1);
    CU_ASSERT_EQUAL(llm_kv_blocks(&p, 0.9, 16, err, sizeof err), 26312);
    CU_ASSERT(llm_kv_blocks(&p, 0.8, 16, err, sizeof err) < 26312);
    CU_ASSERT_EQUAL(llm_kv_blocks(&p, 0.9, 32, err, sizeof err), 13156);
    /* TP basis (BLIS #1846): between TP 2 and 4 the weights and
     * activations cancel, so the step is 2 GPUs x (72 - 0.6) GiB / 2 MiB
     * per block = 73,113.6 blocks. */
    p.tp = 2;
    b2 = llm_kv_blocks(&p, 0.9, 16, err, sizeof err);
    p.tp = 4;
    b4 = llm_kv_blocks(&p, 0.9, 16, err, sizeof err);
    CU_ASSERT(fabs((double)(b4 - b2) - 73113.6) <= 2.0);

    /* Llama-3.1-70B bf16 (141.1 GB) does not fit on one H100. */
    perf_for(&p, "llama-3.1-70b", "H100-SXM", 1);
    err[0] = '\0';
    CU_ASSERT(llm_kv_blocks(&p, 0.9, 16, err, sizeof err) <= 0);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "does not fit"));
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "131.42 GiB")); /* the weights */
    /* DeepSeek-V3 fp8: 625 GiB of weights > 8 x 80 x 0.9 = 576 GiB; fits
     * on 8 H200s (1,015 GiB). */
    perf_for(&p, "deepseek-v3", "H100-SXM", 8);
    p.weights = LLM_FP8;
    CU_ASSERT(llm_kv_blocks(&p, 0.9, 16, err, sizeof err) <= 0);
    perf_for(&p, "deepseek-v3", "H200", 8);
    p.weights = LLM_FP8;
    {
        /* (8 x 141 x 0.9 GiB - weights - 8.0 GiB (MoE) - 8 x 0.6 GiB) /
         * (16 x 8 x 70,272 B). */
        double free_bytes = 8 * 141 * 0.9 * GIB - llm_params_total(&p.shape) - 8.0 * GIB -
                            8 * 0.6 * GIB;
        CU_ASSERT_EQUAL(llm_kv_blocks(&p, 0.9, 16, err, sizeof err),
                        (long)floor(free_bytes / (16.0 * 8 * 70272)));
    }
    CU_ASSERT_EQUAL(llm_kv_blocks(&p, 1.5, 16, err, sizeof err), -1);
    CU_ASSERT_EQUAL(llm_kv_blocks(&p, 0.9, 0, err, sizeof err), -1);
}

/* ---- roofline ---- */

/* The floors llm-serving.md quotes for Llama-3-8B bf16 on one GPU,
 * overhead 0, "1k context" = 1,024 tokens in the cache. By hand, with
 * N = 7,504,924,672 (the parameters less the input embedding) and
 * weights 2N = 15,009,849,344 B:
 *   decode, 1 seq:   (15,009,849,344 + 131,072 x 1,025 + 32 x 4,096 x 2) B
 *                    = 15,144,460,288 B / 3.35e12 = 4.52073 ms (H100),
 *                    / 4.8e12 = 3.15510 ms (H200)
 *   decode, 256:     (2N + 256 x 134,610,944) B / 3.35e12 = 14.76724 ms
 *                    (compute: 256 x 15.55e9 FLOP / (989.5e12 x 0.30) = 13.41 ms)
 *   prefill 1,024:   (2 x 1,024 N + 4 x 32 x 4,096 x 1,024 x 511.5) FLOP
 *                    / (989.5e12 x 0.45) = 35.1349 ms
 *   prefill 4,096:   the same with 4,096 and 2,047.5 = 147.9475 ms
 * Llama-3-70B TP4: (2 x 69,503,033,344 + 327,680 x 1,025 + 80 x 8,192 x 2)
 *                  / 4 / 3.35e12 = 10.39875 ms.
 * The document's 3.15 and 14.75 drop the activation term (L d bytes per
 * token, 0.020 ms for 256 tokens) and the norm weights: 3.15495 and
 * 14.7470. Each value is checked to the hand derivation and to the
 * document's figure within 0.2%. */
static void check_floor(double got_s, double hand_ms, double doc_ms, const char *what)
{
    if (!(rel_diff(got_s * 1e3, hand_ms) < 2e-5) || !(rel_diff(got_s * 1e3, doc_ms) < 2e-3)) {
        fprintf(stderr, "\n  %s: %.5f ms, by hand %.5f, document %.2f\n", what, got_s * 1e3,
                hand_ms, doc_ms);
        CU_FAIL("roofline floor");
    }
}

static void test_roofline_floors(void)
{
    llm_perf p;

    perf_for(&p, "llama-3.1-8b", "H100-SXM", 1);
    check_floor(decode_batch_s(&p, 1, 1024), 4.52073, 4.52, "8B decode 1 H100");
    check_floor(decode_batch_s(&p, 256, 1024), 14.76724, 14.75, "8B decode 256 H100");
    check_floor(prefill_s(&p, 1024), 35.1349, 35.1, "8B prefill 1k H100");
    check_floor(prefill_s(&p, 4096), 147.9475, 147.9, "8B prefill 4k H100");
    perf_for(&p, "llama-3.1-8b", "H200", 1);
    check_floor(decode_batch_s(&p, 1, 1024), 3.15510, 3.15, "8B decode 1 H200");
    perf_for(&p, "llama-3.1-70b", "H100-SXM", 4);
    check_floor(decode_batch_s(&p, 1, 1024), 10.39875, 10.40, "70B TP4 decode 1 H100");
}

/* The overhead is added to the roofline's max, once per step. */
static void test_overhead(void)
{
    llm_perf p;
    double t0;

    perf_for(&p, "llama-3.1-8b", "H100-SXM", 1);
    t0 = decode_batch_s(&p, 4, 512);
    p.overhead_s = 0.003;
    CU_ASSERT_DOUBLE_EQUAL(decode_batch_s(&p, 4, 512), t0 + 0.003, 1e-12);
    CU_ASSERT_EQUAL(llm_step_s(&p, NULL, 0), 0.0);
}

/* A step never beats streaming the weights it uses once: for a dense model
 * everything but the input embedding table, for DeepSeek-V3 at least the
 * active weights (k experts per layer). */
static void test_tpot_floor(void)
{
    static const char *const models[] = {"llama-3.1-8b", "llama-3.1-70b", "deepseek-v3"};
    static const char *const gpus[] = {"H100-SXM", "H200"};
    static const int tps[] = {1, 4, 8};

    for (int m = 0; m < 3; m++)
        for (int g = 0; g < 2; g++) {
            llm_perf p;
            double streamed, t;

            perf_for(&p, models[m], gpus[g], tps[m]);
            if (m == 2)
                p.weights = LLM_FP8;
            streamed = (llm_params_active(&p.shape) -
                        (double)p.shape.vocab_size * p.shape.hidden_size) *
                       llm_precision_bytes(p.weights);
            t = decode_batch_s(&p, 1, 0);
            CU_ASSERT(t >= streamed / (p.tp * p.gpu.hbm_Bps));
            if (m < 2) {
                /* Dense: within 8% of the whole weights (embedding table aside). */
                CU_ASSERT(t <= 1.08 * llm_weight_bytes(&p) / (p.tp * p.gpu.hbm_Bps));
            } else {
                /* MoE: one token reads 8 + 1 of 257 experts, far below all weights... */
                CU_ASSERT(t < 0.1 * llm_weight_bytes(&p) / (p.tp * p.gpu.hbm_Bps));
                /* ...a 1,024-sequence step touches nearly all of them. */
                CU_ASSERT(decode_batch_s(&p, 1024, 0) >
                          0.95 * llm_weight_bytes(&p) / (p.tp * p.gpu.hbm_Bps));
            }
        }
}

/* Decode at c = 0 on an H100: memory W / BW + b (kv + act) / BW against
 * compute b x 2N / (P x 0.30): W / BW = 4.4805 ms, one token's compute
 * 50.56 us, its KV and activations 0.117 us, so the roofline turns at
 * b* = 4.4805 / (0.05056 - 0.000117) = 88.8 sequences. */
static void test_compute_memory_switch(void)
{
    llm_perf p;
    llm_chunk ch[128];
    double tc, tm;

    perf_for(&p, "llama-3.1-8b", "H100-SXM", 1);
    for (int i = 0; i < 128; i++)
        ch[i] = (llm_chunk){.n = 1, .c = 0, .decode = 1};
    llm_step_parts(&p, ch, 1, &tc, &tm);
    CU_ASSERT(tm > 50 * tc);
    llm_step_parts(&p, ch, 88, &tc, &tm);
    CU_ASSERT(tm > tc);
    llm_step_parts(&p, ch, 89, &tc, &tm);
    CU_ASSERT(tc > tm);
    CU_ASSERT_DOUBLE_EQUAL(llm_step_s(&p, ch, 89), tc, 1e-15);
    llm_step_parts(&p, ch, 128, &tc, &tm);
    CU_ASSERT(tc > tm);
    /* A prompt is compute-bound from a few hundred tokens on. */
    ch[0] = (llm_chunk){.n = 512, .c = 0, .decode = 0};
    llm_step_parts(&p, ch, 1, &tc, &tm);
    CU_ASSERT(tc > 3 * tm);
    /* TP divides both. */
    {
        double tc1 = tc, tm1 = tm;
        p.tp = 2;
        llm_step_parts(&p, ch, 1, &tc, &tm);
        CU_ASSERT(rel_diff(tc, tc1 / 2) < 1e-12);
        CU_ASSERT(rel_diff(tm, tm1 / 2) < 1e-12);
    }
}

/* N_eff = N (1 - ((N - k) / N)^B): k for one token, N for many. */
static void test_moe_experts_touched(void)
{
    llm_shape ds, s8;
    llm_perf p;
    double tc, tm1, tm512;
    llm_chunk one = {.n = 1, .c = 0, .decode = 1}, many = {.n = 512, .c = 0, .decode = 0};

    CU_ASSERT_EQUAL_FATAL(load_model("deepseek-v3", &ds), 0);
    CU_ASSERT_EQUAL_FATAL(load_model("llama-3.1-8b", &s8), 0);
    CU_ASSERT_DOUBLE_EQUAL(llm_moe_experts_touched(&ds, 1), 8.0, 1e-12);
    CU_ASSERT_DOUBLE_EQUAL(llm_moe_experts_touched(&ds, 2), 256 * (1 - pow(248.0 / 256, 2)),
                           1e-12); /* 15.75 */
    CU_ASSERT_DOUBLE_EQUAL(llm_moe_experts_touched(&ds, 2), 15.75, 1e-12);
    CU_ASSERT_DOUBLE_EQUAL(llm_moe_experts_touched(&ds, 100000), 256.0, 1e-9);
    CU_ASSERT(llm_moe_experts_touched(&ds, 64) < llm_moe_experts_touched(&ds, 65));
    CU_ASSERT_EQUAL(llm_moe_experts_touched(&s8, 1000), 0.0);
    CU_ASSERT_EQUAL(llm_moe_experts_touched(&ds, 0), 0.0);

    /* The weights a step reads grow with the experts it touches: at 512
     * tokens 256 x (1 - (248/256)^512) = 255.99 experts per layer, i.e. 58
     * layers x 248 more experts x 44,040,192 params x 1 B (fp8) beyond one
     * token's. */
    llm_perf_init(&p, &ds, llm_gpu_find("H200"), 8);
    p.weights = LLM_FP8;
    llm_step_parts(&p, &one, 1, &tc, &tm1);
    llm_step_parts(&p, &many, 1, &tc, &tm512);
    {
        double extra_w = 58.0 * (llm_moe_experts_touched(&ds, 512) - 8.0) * 44040192.0;
        double extra_dyn = 511.0 * (8 * 70272.0 + 61.0 * 7168 * 2);
        CU_ASSERT(rel_diff((tm512 - tm1) * 8 * 4.8e12, extra_w + extra_dyn) < 1e-9);
    }
}

/* ---- alpha-beta ---- */

static void test_alpha_beta(void)
{
    llm_perf p;
    llm_chunk ch[] = {
        {.n = 100, .c = 0, .decode = 0},
        {.n = 50, .c = 200, .decode = 0},
        {.n = 1, .c = 1000, .decode = 1},
        {.n = 1, .c = 3000, .decode = 1},
    };

    perf_for(&p, "llama-3.1-8b", "H100-SXM", 1);
    p.kind = LLM_STEP_ALPHA_BETA;
    p.overhead_s = 0.002;
    p.prefill_token_s = 1e-4;
    p.decode_seq_s = 5e-4;
    p.context_token_s = 1e-7;
    /* 0.002 + 1e-4 x 150 + 5e-4 x 2 + 1e-7 x (0 + 200 + 1000 + 3000) */
    CU_ASSERT_DOUBLE_EQUAL(llm_step_s(&p, ch, 4), 0.01842, 1e-15);
    CU_ASSERT_DOUBLE_EQUAL(llm_step_s(&p, ch + 2, 1), 0.002 + 5e-4 + 1e-4, 1e-15);
    /* causal pairs by counting: 3 new tokens on 2 cached see 3, 4, 5 keys */
    CU_ASSERT_DOUBLE_EQUAL(llm_prefill_attention_pairs(3, 2), 12, 0);
    CU_ASSERT_DOUBLE_EQUAL(llm_prefill_attention_pairs(1, 0), 1, 0);
    CU_ASSERT_DOUBLE_EQUAL(llm_prefill_attention_pairs(0, 50), 0, 0);
    /* + 1 ns per prefill pair: 100 x 101 / 2 + 50 x (200 + 51 / 2) =
     * 5050 + 11275 = 16325 pairs (the decode chunks count none) */
    p.prefill_attention_pair_s = 1e-9;
    CU_ASSERT_DOUBLE_EQUAL(llm_step_s(&p, ch, 4), 0.01842 + 16325e-9, 1e-15);
    CU_ASSERT_DOUBLE_EQUAL(llm_step_s(&p, ch + 2, 1), 0.002 + 5e-4 + 1e-4, 1e-15);
    p.prefill_attention_pair_s = -1e-9;
    {
        char err[256] = "";
        CU_ASSERT_EQUAL(llm_perf_check(&p, err, sizeof err), -1);
    }
}

static void test_perf_check(void)
{
    llm_perf p;
    char err[256] = "";

    perf_for(&p, "llama-3.1-70b", "H100-SXM", 8);
    CU_ASSERT_EQUAL(llm_perf_check(&p, err, sizeof err), 0);
    p.tp = 3;
    CU_ASSERT_EQUAL(llm_perf_check(&p, err, sizeof err), -1);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "tensor_parallel (3)"));
    p.tp = 16; /* 8 KV heads on 16 ranks: replicated, allowed */
    CU_ASSERT_EQUAL(llm_perf_check(&p, err, sizeof err), 0);
    p.tp = 8;
    p.mfu_decode = 1.5;
    CU_ASSERT_EQUAL(llm_perf_check(&p, err, sizeof err), -1);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "mfu"));
    p.mfu_decode = 0; /* 0 = the GPU's */
    CU_ASSERT_EQUAL(llm_perf_check(&p, err, sizeof err), 0);
    p.kind = LLM_STEP_ALPHA_BETA;
    CU_ASSERT_EQUAL(llm_perf_check(&p, err, sizeof err), -1);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "alpha_beta"));
}

/* llm_perf_prepare only caches: every step time and both roofline parts
 * are the unprepared ones to the last bit, for a dense model at TP 1 and
 * 4 with fp8 weights, and an MoE model with MLA (whose weights read
 * depend on the step's tokens), over prefill, decode and mixed steps. */
static void test_prepare_same_bits(void)
{
    const struct {
        const char *stem, *gpu;
        int tp;
        llm_precision weights;
        double overhead_s;
    } cases[] = {
        {"llama-3.1-8b", "H100-SXM", 1, LLM_BF16, 0.002},
        {"llama-3.1-70b", "A100-80G", 4, LLM_FP8, 0.0},
        {"deepseek-v3", "H200", 8, LLM_FP8, 0.001},
    };
    llm_chunk ch[64];
    int differ = 0, steps = 0;

    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        llm_perf raw, prepared;
        perf_for(&raw, cases[k].stem, cases[k].gpu, cases[k].tp);
        raw.weights = cases[k].weights;
        raw.overhead_s = cases[k].overhead_s;
        prepared = raw;
        llm_perf_prepare(&prepared);
        CU_ASSERT(prepared.cache.ready && !raw.cache.ready);
        for (int n = 1; n <= 64; n++) {
            /* n - 1 decoders at contexts 1000 + 37 i, and one prefill chunk */
            for (int i = 0; i < n - 1; i++)
                ch[i] = (llm_chunk){.n = 1, .c = 1000 + 37 * i, .decode = 1};
            ch[n - 1] = (llm_chunk){.n = 17 * n, .c = 3 * n, .decode = 0};
            for (int first = 0; first < 2; first++) { /* with and without the prefill */
                int m = first ? n - 1 : n;
                double c1, m1, c2, m2;
                if (m < 1)
                    continue;
                llm_step_parts(&raw, ch, m, &c1, &m1);
                llm_step_parts(&prepared, ch, m, &c2, &m2);
                differ += c1 != c2 || m1 != m2 ||
                          llm_step_s(&raw, ch, m) != llm_step_s(&prepared, ch, m);
                steps++;
            }
        }
    }
    CU_ASSERT_EQUAL(steps, 3 * (64 + 63));
    CU_ASSERT_EQUAL(differ, 0);
}

/* Expert parallelism on a toy MoE small enough to add up by hand: d = 16,
 * 2 MoE layers (no dense ones), 2 heads of 8 (2 KV heads), 8 routed experts
 * of width 4 (k = 2) plus 1 shared, vocab 100, untied; fp8 weights, bf16
 * activations and KV; EP 4 over nodes of 2 GPUs with 4 redundant experts.
 *   attention per layer 4 x 16 x 16 = 1,024; layers 2 x (1,024 + 2 x 16)
 *   = 2,112; an expert 3 x 16 x 4 = 192; router 8 x 16 = 128; final norm
 *   16, lm_head 1,600, embedding 1,600. Counting r routed experts per
 *   layer: 2,112 + 2 x ((r + 1) x 192 + 128) + 16 + 1,600 = 4,368 + 384 r.
 *   Held per GPU: (8 + 4) / 4 = 3, so the group's weights are
 *   4 x (4,368 + 1,152 + 1,600) = 28,480 B.
 * A prefill chunk of 4 tokens (c = 0):
 *   FLOPs 2 x 4 x (4,368 + 768) + 4 x 2 x 2 x 8 x 4 x 3/2 = 41,856, at
 *   1e4 FLOP/s (mfu 1) over 4 GPUs: 1.0464 s;
 *   experts touched 8 (1 - (6/8)^4) = 5.46875, of which a GPU reads
 *   3 x 5.46875 / 8 = 2.05078125: 4,368 + 787.5 = 5,155.5 B of weights,
 *   plus (KV 128 B x 4 + activations 64 B x 4) / 4 = 192 B: at 1,000 B/s
 *   5.3475 s;
 *   all-to-all per GPU and layer: 4 / 4 tokens x 2 experts x 16 x
 *   (1 B fp8 dispatch + 2 B bf16 combine) = 96 B; off-node 2/4 of it at
 *   10 B/s = 4.8 s, on-node 1/4 at 20 B/s (NVLink) = 1.2 s; 2 layers x
 *   4.8 = 9.6 s, so the step is 9.6 s. With 100 B/s between nodes the
 *   NVLink share is the slower (2 x 1.2 = 2.4 s) and memory (5.3475 s)
 *   sets the step. */
static void test_expert_parallel(void)
{
    llm_shape s;
    llm_gpu g = {.name = "toy", .flops_fp16 = 1e4, .flops_fp8 = 1e4, .hbm_bytes = 1e12,
                 .hbm_Bps = 1000.0, .mfu_prefill = 1.0, .mfu_decode = 1.0, .nvlink_Bps = 20.0};
    llm_perf p;
    llm_chunk ch = {.n = 4, .c = 0, .decode = 0};
    double tc, tm;
    char err[256] = "";

    memset(&s, 0, sizeof s);
    snprintf(s.name, sizeof s.name, "toy-moe");
    s.hidden_size = 16;
    s.num_layers = 2;
    s.num_heads = 2;
    s.num_kv_heads = 2;
    s.head_dim = 8;
    s.intermediate_size = 32;
    s.vocab_size = 100;
    s.n_routed_experts = 8;
    s.n_shared_experts = 1;
    s.experts_per_token = 2;
    s.moe_intermediate_size = 4;
    llm_perf_init(&p, &s, &g, 1);
    p.weights = LLM_FP8;
    p.ep = 4;
    p.redundant_experts = 4;
    p.gpus_per_node = 2;
    p.interconnect_Bps = 10.0;
    CU_ASSERT_EQUAL(llm_perf_check(&p, err, sizeof err), 0);
    CU_ASSERT_EQUAL(llm_perf_gpus(&p), 4);
    CU_ASSERT_DOUBLE_EQUAL(llm_weight_bytes(&p), 28480.0, 1e-9);
    llm_step_parts(&p, &ch, 1, &tc, &tm);
    CU_ASSERT_DOUBLE_EQUAL(tc, 1.0464, 1e-12);
    CU_ASSERT_DOUBLE_EQUAL(tm, 5.3475, 1e-12);
    CU_ASSERT_DOUBLE_EQUAL(llm_ep_comm_s(&p, 4.0), 9.6, 1e-12);
    CU_ASSERT_DOUBLE_EQUAL(llm_step_s(&p, &ch, 1), 9.6, 1e-12);
    p.interconnect_Bps = 100.0;
    CU_ASSERT_DOUBLE_EQUAL(llm_ep_comm_s(&p, 4.0), 2.4, 1e-12);
    CU_ASSERT_DOUBLE_EQUAL(llm_step_s(&p, &ch, 1), 5.3475, 1e-12);
    llm_perf_prepare(&p); /* the cache gives the same */
    CU_ASSERT_DOUBLE_EQUAL(llm_step_s(&p, &ch, 1), 5.3475, 1e-12);
    /* a group inside one node has no off-node share: 3/4 x 96 B at 20 B/s */
    p.cache.ready = 0;
    p.gpus_per_node = 8;
    CU_ASSERT_DOUBLE_EQUAL(llm_ep_comm_s(&p, 4.0), 2.0 * 0.75 * 96.0 / 20.0, 1e-12);

    /* device-limited routing: 4 groups of 2 experts, each token's 2
     * experts from 1 group. The group's 2 nodes each hold 2 whole groups,
     * so a token reaches M = min(2, 1 x max(1, 2 / 4)) = 1 node, the other
     * one half the time: 0.5 copies cross nodes instead of k (E - g) / E =
     * 2 x 2 / 4 = 1. One copy is 4 / 4 tokens x 16 x 3 B = 48 B; at 5 B/s
     * between nodes: unlimited 1 x 48 / 5 = 9.6 s a layer, 19.2 s a step
     * (above memory, 5.3475 s); limited 0.5 x 48 / 5 = 4.8 s a layer,
     * 9.6 s a step (NVLink: 1/4 x 96 / 20 = 1.2 s a layer). */
    p.gpus_per_node = 2;
    p.cache.ready = 0;
    p.interconnect_Bps = 5.0;
    CU_ASSERT_DOUBLE_EQUAL(llm_ep_nodes_off(&p), 1.0, 1e-15);
    CU_ASSERT_DOUBLE_EQUAL(llm_ep_comm_s(&p, 4.0), 19.2, 1e-12);
    CU_ASSERT_DOUBLE_EQUAL(llm_step_s(&p, &ch, 1), 19.2, 1e-12);
    p.shape.n_group = 4;
    p.shape.topk_group = 1;
    CU_ASSERT_DOUBLE_EQUAL(llm_ep_nodes_off(&p), 0.5, 1e-15);
    CU_ASSERT_DOUBLE_EQUAL(llm_ep_comm_s(&p, 4.0), 9.6, 1e-12);
    CU_ASSERT_DOUBLE_EQUAL(llm_step_s(&p, &ch, 1), 9.6, 1e-12);
    /* a limit at or above the experts' spread changes nothing: 2 of 4
     * groups reach both nodes, 1 copy off the node as without it */
    p.shape.topk_group = 2;
    CU_ASSERT_DOUBLE_EQUAL(llm_ep_nodes_off(&p), 1.0, 1e-15);
    CU_ASSERT_DOUBLE_EQUAL(llm_ep_comm_s(&p, 4.0), 19.2, 1e-12);
    p.shape.n_group = 0;
    p.shape.topk_group = 0;
    p.interconnect_Bps = 100.0;

    /* refused: attention is data-parallel (tp 1); a dense model; no
     * inter-node bandwidth for a group wider than a node */
    p.gpus_per_node = 2;
    p.tp = 2;
    CU_ASSERT_EQUAL(llm_perf_check(&p, err, sizeof err), -1);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "tensor_parallel must be 1"));
    p.tp = 1;
    p.interconnect_Bps = 0.0;
    CU_ASSERT_EQUAL(llm_perf_check(&p, err, sizeof err), -1);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "interconnect"));
    p.interconnect_Bps = 100.0;
    p.shape.n_routed_experts = 0;
    CU_ASSERT_EQUAL(llm_perf_check(&p, err, sizeof err), -1);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "MoE"));
}

/* DeepSeek-V3's published layout: with 32 redundant experts a prefill GPU
 * (EP32) holds 9 routed experts per layer and a decode GPU (EP144) 2, so a
 * prefill GPU holds 58 layers x 7 experts x 44,040,192 params (fp8: bytes)
 * more; both fit an H800 with room for the KV cache. */
static void test_expert_parallel_deepseek(void)
{
    llm_perf pre, dec;
    char err[256] = "";

    perf_for(&pre, "deepseek-v3", "H800", 1);
    pre.weights = LLM_FP8;
    pre.redundant_experts = 32;
    pre.gpus_per_node = 8;
    pre.interconnect_Bps = 50e9;
    dec = pre;
    pre.ep = 32;
    dec.ep = 144;
    CU_ASSERT_EQUAL(llm_perf_check(&pre, err, sizeof err), 0);
    CU_ASSERT_EQUAL(llm_perf_check(&dec, err, sizeof err), 0);
    CU_ASSERT(rel_diff(llm_weight_bytes(&pre) / 32 - llm_weight_bytes(&dec) / 144,
                       58.0 * 7 * 44040192.0) < 1e-12);
    CU_ASSERT(llm_weight_bytes(&dec) / 144 < 80.0 * GIB);
    CU_ASSERT(llm_kv_blocks(&pre, 0.9, 16, err, sizeof err) > 0);
    CU_ASSERT(llm_kv_blocks(&dec, 0.9, 16, err, sizeof err) > 0);
    /* docs/deepseek-case.md's decode arithmetic (scripts/deepseek-case.sh
     * works it in awk): 18,828 sequences at context 4,989 on EP144 with a
     * 5 ms overhead. All-to-all 58 x 18,828 / 144 x 8 x 7,168 x 3 B x
     * 136/144 / 50 GB/s = 24.6425 ms, above compute (21.62 ms) and memory
     * (20.08 ms): 29.6425 ms. */
    {
        static llm_chunk ch[18828];
        for (int i = 0; i < 18828; i++)
            ch[i] = (llm_chunk){.n = 1, .c = 4989, .decode = 1};
        dec.overhead_s = 0.005;
        CU_ASSERT_DOUBLE_EQUAL(llm_ep_comm_s(&dec, 18828), 58.0 * 18828 / 144 * 8 * 7168 * 3 *
                                                               136 / 144 / 50e9, 1e-15);
        CU_ASSERT_DOUBLE_EQUAL(llm_step_s(&dec, ch, 18828), 0.0296425327, 1e-9);
        dec.overhead_s = 0.0;
    }
    /* config.json's device-limited routing, 8 groups, 4 per token: on
     * EP32 (4 nodes, 2 groups each) a token reaches at most 4 nodes, 3 of
     * them other than its own, where 8 experts spread uniformly would send
     * 8 x 24 / 32 = 6 copies off the node; on EP144 (18 nodes, a group
     * over 2.25) it reaches at most 9, 8.5 others on average, above
     * 8 x 136 / 144: no change there */
    CU_ASSERT_EQUAL(pre.shape.n_group, 8);
    CU_ASSERT_EQUAL(pre.shape.topk_group, 4);
    CU_ASSERT_DOUBLE_EQUAL(llm_ep_nodes_off(&pre), 3.0, 1e-15);
    CU_ASSERT_DOUBLE_EQUAL(llm_ep_nodes_off(&dec), 8.0 * 136 / 144, 1e-12);
    {
        llm_perf unlimited = pre;
        unlimited.shape.n_group = unlimited.shape.topk_group = 0;
        CU_ASSERT_DOUBLE_EQUAL(llm_ep_nodes_off(&unlimited), 6.0, 1e-15);
        /* 16,384 prompt tokens: 58 layers x 16384 / 32 x 7168 x 3 B x
         * copies / 50 GB/s */
        CU_ASSERT_DOUBLE_EQUAL(llm_ep_comm_s(&unlimited, 16384),
                               58.0 * 16384 / 32 * 7168 * 3 * 6 / 50e9, 1e-15);
        CU_ASSERT_DOUBLE_EQUAL(llm_ep_comm_s(&pre, 16384),
                               58.0 * 16384 / 32 * 7168 * 3 * 3 / 50e9, 1e-15);
    }
    /* the H800's NVLink is under half the H100's */
    CU_ASSERT_DOUBLE_EQUAL(llm_gpu_find("H800")->nvlink_Bps, 200e9, 0);
    CU_ASSERT_DOUBLE_EQUAL(llm_gpu_find("H100")->nvlink_Bps, 450e9, 0);
}

int main(void)
{
    CU_pSuite s;

    if (CU_initialize_registry() != CUE_SUCCESS)
        return CU_get_error();
    s = CU_add_suite("llm_model_shape", NULL, NULL);
    CU_add_test(s, "precisions", test_precisions);
    CU_add_test(s, "parse Llama-3.1-8B", test_parse_llama_8b);
    CU_add_test(s, "parse Llama-3.1-70B", test_parse_llama_70b);
    CU_add_test(s, "parse DeepSeek-V3", test_parse_deepseek_v3);
    CU_add_test(s, "parse Mixtral (num_local_experts)", test_parse_mixtral);
    CU_add_test(s, "parse defaults", test_parse_defaults);
    CU_add_test(s, "parse errors name the field", test_parse_errors);
    CU_add_test(s, "load errors name the file", test_load_errors_name_the_file);
    CU_add_test(s, "inline shape check", test_shape_check_inline);
    CU_add_test(s, "parameter counts", test_params);
    s = CU_add_suite("llm_model_gpu_kv", NULL, NULL);
    CU_add_test(s, "GPU catalog", test_gpu_catalog);
    CU_add_test(s, "GEMM precision", test_gemm_precision);
    CU_add_test(s, "KV bytes per token", test_kv_bytes);
    CU_add_test(s, "KV blocks (BLIS kv_capacity.go)", test_kv_blocks);
    CU_add_test(s, "perf check", test_perf_check);
    s = CU_add_suite("llm_model_step", NULL, NULL);
    CU_add_test(s, "roofline floors", test_roofline_floors);
    CU_add_test(s, "overhead", test_overhead);
    CU_add_test(s, "TPOT floor >= weights / (TP x BW)", test_tpot_floor);
    CU_add_test(s, "compute- vs memory-bound", test_compute_memory_switch);
    CU_add_test(s, "MoE experts touched", test_moe_experts_touched);
    CU_add_test(s, "alpha-beta", test_alpha_beta);
    CU_add_test(s, "prepared perf: the same step times, bit for bit", test_prepare_same_bits);
    CU_add_test(s, "expert parallelism: toy MoE by hand", test_expert_parallel);
    CU_add_test(s, "expert parallelism: DeepSeek-V3's layout", test_expert_parallel_deepseek);

    CU_basic_set_mode(CU_BRM_VERBOSE);
    CU_basic_run_tests();
    {
        int failures = (int)CU_get_number_of_failures();
        CU_cleanup_registry();
        return failures;
    }
}
