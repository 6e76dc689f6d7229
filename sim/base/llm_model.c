/*
 * llm_model.c - what an LLM replica costs, in closed form: the Hugging Face
 * config.json reader (cJSON), parameter counts (dense, MoE, MLA), the GPU
 * catalog, weight and KV-cache bytes, KV capacity in blocks after BLIS
 * sim/latency/kv_capacity.go, and the time of one scheduler step, either a
 * roofline after BLIS sim/latency/roofline.go or a fitted alpha-beta line,
 * with expert parallelism's per-GPU weights and all-to-all for MoE models
 * (docs/llm-serving.md "Expert parallelism").
 * No mutable state and no SimGrid: every function is a pure function of its
 * arguments (the catalog is constant), so the formulas are tested on their
 * own (tests/serve).
 *
 * Known limits, where they live: biases (Qwen's qkv bias) and the
 * multi-token-prediction module (DeepSeek's num_nextn_predict_layers) are
 * not counted; all weights are held at one precision (real fp8 checkpoints
 * keep embeddings and norms in bf16); no all-reduce time for TP > 1; a
 * dense model's KV heads are split across ranks even when there are fewer
 * heads than ranks (vLLM replicates them; BLIS makes the same approximation).
 */
#include "llm_model.h"

#include <cjson/cJSON.h>

#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <strings.h>

static const double GIB_BYTES = 1073741824.0; /* 2^30 */

static void set_err(char *err, size_t err_len, const char *fmt, ...)
{
    va_list ap;

    if (!err || err_len == 0)
        return;
    va_start(ap, fmt);
    vsnprintf(err, err_len, fmt, ap);
    va_end(ap);
}

/* ---- precisions ---- */

static const struct {
    const char *name;
    double bytes;
} PRECISIONS[] = {
    [LLM_FP32] = {"fp32", 4.0}, [LLM_FP16] = {"fp16", 2.0}, [LLM_BF16] = {"bf16", 2.0},
    [LLM_FP8] = {"fp8", 1.0},   [LLM_INT8] = {"int8", 1.0}, [LLM_INT4] = {"int4", 0.5},
};
enum { N_PRECISIONS = sizeof PRECISIONS / sizeof PRECISIONS[0] };

int llm_precision_parse(const char *name, llm_precision *out)
{
    if (!name)
        return -1;
    for (int i = 0; i < N_PRECISIONS; i++)
        if (strcasecmp(name, PRECISIONS[i].name) == 0) {
            if (out)
                *out = (llm_precision)i;
            return 0;
        }
    return -1;
}

const char *llm_precision_name(llm_precision p)
{
    return (unsigned)p < N_PRECISIONS ? PRECISIONS[p].name : "?";
}

double llm_precision_bytes(llm_precision p)
{
    return (unsigned)p < N_PRECISIONS ? PRECISIONS[p].bytes : 0.0;
}

/* ---- the shape: config.json ---- */

/* Reads an integer field. 1 = read, 0 = absent or null, -1 = present but not
 * an integer >= min (err set). */
static int get_int(const cJSON *root, const char *key, int min, int *out, const char *label,
                   char *err, size_t err_len)
{
    const cJSON *it = cJSON_GetObjectItemCaseSensitive(root, key);
    double v;

    if (!it || cJSON_IsNull(it))
        return 0;
    v = cJSON_IsNumber(it) ? it->valuedouble : NAN;
    if (!isfinite(v) || v != floor(v) || v < min || v > INT_MAX) {
        set_err(err, err_len, "%s: \"%s\" must be a %s integer", label, key,
                min > 0 ? "positive" : "non-negative");
        return -1;
    }
    *out = (int)v;
    return 1;
}

static int get_required(const cJSON *root, const char *key, int *out, const char *label,
                        char *err, size_t err_len)
{
    int r = get_int(root, key, 1, out, label, err, err_len);

    if (r == 0)
        set_err(err, err_len, "%s: \"%s\" missing", label, key);
    return r == 1 ? 0 : -1;
}

static int get_optional(const cJSON *root, const char *key, int *out, const char *label,
                        char *err, size_t err_len)
{
    return get_int(root, key, 0, out, label, err, err_len) < 0 ? -1 : 0;
}

static int check_shape(const llm_shape *s, const char *label, char *err, size_t err_len)
{
    const struct {
        const char *key;
        int v;
    } positive[] = {
        {"hidden_size", s->hidden_size},
        {"num_hidden_layers", s->num_layers},
        {"num_attention_heads", s->num_heads},
        {"intermediate_size", s->intermediate_size},
        {"vocab_size", s->vocab_size},
    }, non_negative[] = {
        {"num_key_value_heads", s->num_kv_heads},
        {"head_dim", s->head_dim},
        {"n_routed_experts", s->n_routed_experts},
        {"n_shared_experts", s->n_shared_experts},
        {"num_experts_per_tok", s->experts_per_token},
        {"moe_intermediate_size", s->moe_intermediate_size},
        {"first_k_dense_replace", s->first_dense_layers},
        {"n_group", s->n_group},
        {"topk_group", s->topk_group},
        {"kv_lora_rank", s->kv_lora_rank},
        {"qk_rope_head_dim", s->qk_rope_head_dim},
        {"q_lora_rank", s->q_lora_rank},
        {"qk_nope_head_dim", s->qk_nope_head_dim},
        {"v_head_dim", s->v_head_dim},
    };

    for (size_t i = 0; i < sizeof positive / sizeof positive[0]; i++)
        if (positive[i].v <= 0) {
            set_err(err, err_len, "%s: \"%s\" must be a positive integer", label,
                    positive[i].key);
            return -1;
        }
    for (size_t i = 0; i < sizeof non_negative / sizeof non_negative[0]; i++)
        if (non_negative[i].v < 0) {
            set_err(err, err_len, "%s: \"%s\" must be a non-negative integer", label,
                    non_negative[i].key);
            return -1;
        }
    if (s->num_kv_heads > 0 && s->num_heads % s->num_kv_heads != 0) {
        set_err(err, err_len,
                "%s: \"num_attention_heads\" (%d) must be a multiple of "
                "\"num_key_value_heads\" (%d)",
                label, s->num_heads, s->num_kv_heads);
        return -1;
    }
    if (s->head_dim == 0 && s->hidden_size % s->num_heads != 0) {
        set_err(err, err_len,
                "%s: \"hidden_size\" (%d) is not a multiple of \"num_attention_heads\" (%d): "
                "give \"head_dim\"",
                label, s->hidden_size, s->num_heads);
        return -1;
    }
    if (s->n_routed_experts > 0) {
        if (s->experts_per_token < 1 || s->experts_per_token > s->n_routed_experts) {
            set_err(err, err_len,
                    "%s: \"num_experts_per_tok\" must be between 1 and the %d routed experts",
                    label, s->n_routed_experts);
            return -1;
        }
        if (s->n_group > s->n_routed_experts || (s->n_group > 0 && s->topk_group > s->n_group) ||
            (s->topk_group > 0 && s->n_group == 0)) {
            set_err(err, err_len,
                    "%s: \"topk_group\" (%d) must be at most \"n_group\" (%d), itself at most "
                    "the %d routed experts",
                    label, s->topk_group, s->n_group, s->n_routed_experts);
            return -1;
        }
        if (s->first_dense_layers > s->num_layers) {
            set_err(err, err_len,
                    "%s: \"first_k_dense_replace\" (%d) exceeds \"num_hidden_layers\" (%d)", label,
                    s->first_dense_layers, s->num_layers);
            return -1;
        }
    }
    if (s->kv_lora_rank > 0) {
        const char *missing = s->qk_rope_head_dim <= 0   ? "qk_rope_head_dim"
                              : s->qk_nope_head_dim <= 0 ? "qk_nope_head_dim"
                              : s->v_head_dim <= 0       ? "v_head_dim"
                                                         : NULL;
        if (missing) {
            set_err(err, err_len, "%s: \"kv_lora_rank\" (MLA) needs a positive \"%s\"", label,
                    missing);
            return -1;
        }
    }
    return 0;
}

int llm_shape_check(const llm_shape *s, char *err, size_t err_len)
{
    if (!s) {
        set_err(err, err_len, "model shape: none given");
        return -1;
    }
    return check_shape(s, "model shape", err, err_len);
}

/* The parser proper; label prefixes every message ("config.json" or the
 * file's path). */
static int parse_shape(const char *json, const char *label, llm_shape *out, char *err,
                       size_t err_len)
{
    const char *end = NULL;
    cJSON *root;
    const cJSON *it;
    llm_shape s;
    int rc = -1;

    memset(&s, 0, sizeof s);
    if (!json) {
        set_err(err, err_len, "%s: no text", label);
        return -1;
    }
    root = cJSON_ParseWithOpts(json, &end, 1);
    if (!root) {
        int line = 1, col = 1;
        for (const char *c = json; end && c < end && *c; c++) {
            if (*c == '\n') {
                line++;
                col = 1;
            } else {
                col++;
            }
        }
        set_err(err, err_len, "%s: not valid JSON (line %d, column %d)", label, line, col);
        return -1;
    }
    if (!cJSON_IsObject(root)) {
        set_err(err, err_len, "%s: not a JSON object", label);
        goto done;
    }
    it = cJSON_GetObjectItemCaseSensitive(root, "model_type");
    snprintf(s.name, sizeof s.name, "%s",
             cJSON_IsString(it) && it->valuestring[0] ? it->valuestring : "model");

    if (get_required(root, "hidden_size", &s.hidden_size, label, err, err_len) ||
        get_required(root, "num_hidden_layers", &s.num_layers, label, err, err_len) ||
        get_required(root, "num_attention_heads", &s.num_heads, label, err, err_len) ||
        get_required(root, "intermediate_size", &s.intermediate_size, label, err, err_len) ||
        get_required(root, "vocab_size", &s.vocab_size, label, err, err_len))
        goto done;
    if (get_optional(root, "num_key_value_heads", &s.num_kv_heads, label, err, err_len) ||
        get_optional(root, "head_dim", &s.head_dim, label, err, err_len))
        goto done;

    it = cJSON_GetObjectItemCaseSensitive(root, "tie_word_embeddings");
    if (it && !cJSON_IsNull(it)) {
        if (!cJSON_IsBool(it)) {
            set_err(err, err_len, "%s: \"tie_word_embeddings\" must be true or false", label);
            goto done;
        }
        s.tie_word_embeddings = cJSON_IsTrue(it);
    }

    /* MoE: DeepSeek's names; Mixtral's num_local_experts and Qwen-MoE's
     * num_experts name the routed experts too (as BLIS kv_capacity.go
     * ExtractKVCapacityParams reads them). */
    {
        static const char *const routed_keys[] = {"n_routed_experts", "num_local_experts",
                                                  "num_experts"};
        for (size_t i = 0; i < sizeof routed_keys / sizeof routed_keys[0]; i++) {
            int r = get_int(root, routed_keys[i], 0, &s.n_routed_experts, label, err, err_len);
            if (r < 0)
                goto done;
            if (r > 0)
                break;
        }
    }
    if (get_optional(root, "n_shared_experts", &s.n_shared_experts, label, err, err_len) ||
        get_optional(root, "num_experts_per_tok", &s.experts_per_token, label, err, err_len) ||
        get_optional(root, "moe_intermediate_size", &s.moe_intermediate_size, label, err,
                     err_len) ||
        get_optional(root, "first_k_dense_replace", &s.first_dense_layers, label, err, err_len) ||
        get_optional(root, "n_group", &s.n_group, label, err, err_len) ||
        get_optional(root, "topk_group", &s.topk_group, label, err, err_len))
        goto done;
    /* Mixtral's experts are as wide as its intermediate_size. */
    if (s.n_routed_experts > 0 && s.moe_intermediate_size == 0)
        s.moe_intermediate_size = s.intermediate_size;

    /* MLA (q_lora_rank is null in DeepSeek-V2-Lite: no query down-projection). */
    if (get_optional(root, "kv_lora_rank", &s.kv_lora_rank, label, err, err_len) ||
        get_optional(root, "q_lora_rank", &s.q_lora_rank, label, err, err_len) ||
        get_optional(root, "qk_rope_head_dim", &s.qk_rope_head_dim, label, err, err_len) ||
        get_optional(root, "qk_nope_head_dim", &s.qk_nope_head_dim, label, err, err_len) ||
        get_optional(root, "v_head_dim", &s.v_head_dim, label, err, err_len))
        goto done;

    if (check_shape(&s, label, err, err_len))
        goto done;
    if (s.num_kv_heads == 0)
        s.num_kv_heads = s.num_heads;
    if (s.head_dim == 0)
        s.head_dim = s.hidden_size / s.num_heads;
    if (out)
        *out = s;
    rc = 0;
done:
    cJSON_Delete(root);
    return rc;
}

int llm_shape_parse(const char *json, llm_shape *out, char *err, size_t err_len)
{
    return parse_shape(json, "config.json", out, err, err_len);
}

int llm_shape_load(const char *path, llm_shape *out, char *err, size_t err_len)
{
    FILE *f;
    char *text;
    long n;
    int rc;
    llm_shape s;

    if (!path || !(f = fopen(path, "rb"))) {
        set_err(err, err_len, "%s: cannot open", path ? path : "(null)");
        return -1;
    }
    struct stat st; /* a directory opens, and its ftell is LONG_MAX */
    if (fstat(fileno(f), &st) != 0 || !S_ISREG(st.st_mode)) {
        fclose(f);
        set_err(err, err_len, "%s: not a regular file", path);
        return -1;
    }
    if (fseek(f, 0, SEEK_END) != 0 || (n = ftell(f)) < 0 || fseek(f, 0, SEEK_SET) != 0 ||
        !(text = malloc((size_t)n + 1))) {
        fclose(f);
        set_err(err, err_len, "%s: cannot read", path);
        return -1;
    }
    if (fread(text, 1, (size_t)n, f) != (size_t)n) {
        free(text);
        fclose(f);
        set_err(err, err_len, "%s: cannot read", path);
        return -1;
    }
    fclose(f);
    text[n] = '\0';
    rc = parse_shape(text, path, &s, err, err_len);
    free(text);
    if (rc == 0) {
        /* The file's stem names the model more precisely than its family
         * ("llama-3.1-8b" rather than "llama"). */
        const char *base = strrchr(path, '/');
        size_t len;

        base = base ? base + 1 : path;
        len = strlen(base);
        if (len > 5 && strcmp(base + len - 5, ".json") == 0)
            len -= 5;
        if (len > 0 && strcmp(base, "config.json") != 0)
            snprintf(s.name, sizeof s.name, "%.*s", (int)len, base);
        if (out)
            *out = s;
    }
    return rc;
}

/* ---- parameters ---- */

static double kv_heads(const llm_shape *s)
{
    return s->num_kv_heads > 0 ? s->num_kv_heads : s->num_heads;
}

static double head_dim(const llm_shape *s)
{
    return s->head_dim > 0 ? s->head_dim : (double)(s->hidden_size / s->num_heads);
}

static int is_mla(const llm_shape *s)
{
    return s->kv_lora_rank > 0;
}

static int moe_layers(const llm_shape *s)
{
    return s->n_routed_experts > 0 ? s->num_layers - s->first_dense_layers : 0;
}

/* One layer's attention weights. MLA (DeepSeek-V2/V3 modeling_deepseek.py):
 * q_a_proj d x q_lora + its norm + q_b_proj q_lora x h(nope + rope) (or
 * q_proj d x h(nope + rope) without q_lora), kv_a_proj_with_mqa
 * d x (kv_lora + rope) + its norm, kv_b_proj kv_lora x h(nope + v), o_proj
 * h v x d. Standard: q and o h d_h x d, k and v kv_heads d_h x d. */
static double attention_params(const llm_shape *s)
{
    double d = s->hidden_size, h = s->num_heads;

    if (is_mla(s)) {
        double qk = s->qk_nope_head_dim + s->qk_rope_head_dim, r = s->kv_lora_rank;
        double ql = s->q_lora_rank;
        double q = ql > 0 ? d * ql + ql + ql * h * qk : d * h * qk;
        double kv = d * (r + s->qk_rope_head_dim) + r +
                    r * h * (s->qk_nope_head_dim + s->v_head_dim);
        return q + kv + h * s->v_head_dim * d;
    }
    return 2.0 * d * h * head_dim(s) + 2.0 * d * kv_heads(s) * head_dim(s);
}

/* Parameters, given how many routed experts per MoE layer are counted
 * (all of them, the k one token uses, or the expected number a step
 * touches), with or without the input embedding table. Layers: attention +
 * 2 RMSNorms + a SwiGLU MLP of 3 matrices (dense layers) or routed +
 * shared experts of 3 matrices each + a router d x N (MoE layers); then the
 * final norm and lm_head (the same matrix as the input embedding when
 * tie_word_embeddings). Matches BLIS kv_capacity.go computeModelWeightBytes
 * for dense models (Llama-3.1-8B: 8,030,261,248). */
/* The layers' part that does not depend on the experts counted: attention
 * and norms of every layer, the dense layers' MLPs. */
static double layer_params(const llm_shape *s)
{
    double d = s->hidden_size;
    int moe = moe_layers(s), dense = s->num_layers - moe;
    double mlp_dense = 3.0 * d * s->intermediate_size;

    return s->num_layers * (attention_params(s) + 2.0 * d) + dense * mlp_dense;
}

/* params_counting from layer_params(s) (layers), in the same order of
 * additions, so a cached layers gives the same sum. */
static double params_from(const llm_shape *s, double layers, double routed_experts,
                          int with_input_embedding)
{
    double d = s->hidden_size, vocab_d = (double)s->vocab_size * d;
    int moe = moe_layers(s);
    double expert = 3.0 * d * s->moe_intermediate_size;
    double total = layers;

    if (moe > 0)
        total += moe * ((routed_experts + s->n_shared_experts) * expert + s->n_routed_experts * d);
    total += d + vocab_d; /* final norm, lm_head */
    if (with_input_embedding && !s->tie_word_embeddings)
        total += vocab_d;
    return total;
}

static double params_counting(const llm_shape *s, double routed_experts, int with_input_embedding)
{
    return params_from(s, layer_params(s), routed_experts, with_input_embedding);
}

double llm_params_total(const llm_shape *s)
{
    return params_counting(s, s->n_routed_experts, 1);
}

double llm_params_active(const llm_shape *s)
{
    return params_counting(s, s->experts_per_token, 1);
}

double llm_moe_experts_touched(const llm_shape *s, double tokens)
{
    double n = s->n_routed_experts, k = s->experts_per_token;

    if (n <= 0 || k <= 0 || tokens <= 0)
        return 0.0;
    return n * (1.0 - pow((n - k) / n, tokens));
}

/* ---- GPUs ---- */

/* Peak dense tensor throughput from NVIDIA's datasheets (the sparsity
 * figures halved); fp32 is TF32. Memory in GiB as BLIS's hardware_config.json
 * MemoryGiB has it (NVIDIA's "80GB" is 80 GiB of HBM; B200: the 180 GiB a
 * DGX B200 exposes per GPU, 1,440 GB for 8, not the 192 GiB on the package).
 * Board power from the datasheets. NVLink: one direction of the datasheet's
 * bidirectional figure (A100 600, H100/H200 900, B200 1,800 GB/s). Idle
 * draw and prices per GPU-hour for A100/H100/H200 are the scenario defaults of sim/scenario_pools.c
 * (scenarios/README.md: typical on-demand cloud list prices, 2025-26);
 * B200 and L40S are reasoned the same way: idle about a tenth of board
 * power as for Hopper, prices mid-range of 2025 on-demand lists (B200 about
 * $5-9, L40S about $0.9-2.3 per GPU-hour at Lambda, RunPod, CoreWeave, AWS).
 * A scenario overrides any of them. MFU: BLIS hardware_config.json for H100
 * and H200 (0.45 / 0.30) and A100 (0.38 / 0.18); B200 and L40S are not
 * calibrated upstream, so reasoned: B200 below Hopper (a larger peak to
 * fill, a younger software stack), L40S lower still (its 350 W limit caps
 * clocks under sustained tensor load). */
static const llm_gpu GPU_A100 = {
    .name = "A100-80G",
    .flops_fp32 = 156e12, .flops_fp16 = 312e12, .flops_fp8 = 0.0, .flops_int8 = 624e12,
    .hbm_bytes = 80.0 * 1073741824.0, .hbm_Bps = 2.039e12,
    .power_w = 400, .idle_w = 50, .price_per_hour = 2.00,
    .mfu_prefill = 0.38, .mfu_decode = 0.18, .nvlink_Bps = 300e9,
};
static const llm_gpu GPU_H100 = {
    .name = "H100-SXM",
    .flops_fp32 = 494.7e12, .flops_fp16 = 989.5e12, .flops_fp8 = 1979e12, .flops_int8 = 1979e12,
    .hbm_bytes = 80.0 * 1073741824.0, .hbm_Bps = 3.35e12,
    .power_w = 700, .idle_w = 70, .price_per_hour = 3.00,
    .mfu_prefill = 0.45, .mfu_decode = 0.30, .nvlink_Bps = 450e9,
};
/* The H800: the H100 SXM's compute and memory with NVLink cut to 400 GB/s
 * (both directions; 900 on the H100), the part DeepSeek-V3 was served on;
 * priced at the $2 per GPU-hour DeepSeek's inference-system overview
 * assumes. */
static const llm_gpu GPU_H800 = {
    .name = "H800",
    .flops_fp32 = 494.7e12, .flops_fp16 = 989.5e12, .flops_fp8 = 1979e12, .flops_int8 = 1979e12,
    .hbm_bytes = 80.0 * 1073741824.0, .hbm_Bps = 3.35e12,
    .power_w = 700, .idle_w = 70, .price_per_hour = 2.00,
    .mfu_prefill = 0.45, .mfu_decode = 0.30, .nvlink_Bps = 200e9,
};
static const llm_gpu GPU_H200 = {
    .name = "H200",
    .flops_fp32 = 494.7e12, .flops_fp16 = 989.5e12, .flops_fp8 = 1979e12, .flops_int8 = 1979e12,
    .hbm_bytes = 141.0 * 1073741824.0, .hbm_Bps = 4.8e12,
    .power_w = 700, .idle_w = 75, .price_per_hour = 3.80,
    .mfu_prefill = 0.45, .mfu_decode = 0.30, .nvlink_Bps = 450e9,
};
static const llm_gpu GPU_B200 = {
    .name = "B200",
    .flops_fp32 = 1125e12, .flops_fp16 = 2250e12, .flops_fp8 = 4500e12, .flops_int8 = 4500e12,
    .hbm_bytes = 180.0 * 1073741824.0, .hbm_Bps = 8.0e12,
    .power_w = 1000, .idle_w = 100, .price_per_hour = 6.00,
    .mfu_prefill = 0.40, .mfu_decode = 0.25, .nvlink_Bps = 900e9,
};
static const llm_gpu GPU_L40S = {
    .name = "L40S",
    .flops_fp32 = 183e12, .flops_fp16 = 362e12, .flops_fp8 = 733e12, .flops_int8 = 733e12,
    .hbm_bytes = 48.0 * 1073741824.0, .hbm_Bps = 0.864e12,
    .power_w = 350, .idle_w = 35, .price_per_hour = 1.50,
    .mfu_prefill = 0.35, .mfu_decode = 0.20, .nvlink_Bps = 32e9, /* no NVLink: PCIe 4.0 x16 */
};

const llm_gpu *const llm_gpu_catalog[] = {&GPU_A100, &GPU_H100, &GPU_H800, &GPU_H200,
                                          &GPU_B200, &GPU_L40S, NULL};

const char *llm_gpu_names(void)
{
    return "A100-80G, H100-SXM, H800, H200, B200, L40S";
}

const llm_gpu *llm_gpu_find(const char *name)
{
    /* The scenario's gpu_type names (sim/scenario_pools.c) and short forms. */
    static const struct {
        const char *alias;
        const llm_gpu *gpu;
    } ALIASES[] = {
        {"a100", &GPU_A100}, {"a100-80gb", &GPU_A100}, {"a100-sxm", &GPU_A100},
        {"h100", &GPU_H100}, {"h100-80gb", &GPU_H100},
    };

    if (!name)
        return NULL;
    for (int i = 0; llm_gpu_catalog[i]; i++)
        if (strcasecmp(name, llm_gpu_catalog[i]->name) == 0)
            return llm_gpu_catalog[i];
    for (size_t i = 0; i < sizeof ALIASES / sizeof ALIASES[0]; i++)
        if (strcasecmp(name, ALIASES[i].alias) == 0)
            return ALIASES[i].gpu;
    return NULL;
}

double llm_gpu_flops(const llm_gpu *g, llm_precision p)
{
    switch (p) {
    case LLM_FP32:
        return g->flops_fp32;
    case LLM_FP16:
    case LLM_BF16:
        return g->flops_fp16;
    case LLM_FP8:
        return g->flops_fp8;
    case LLM_INT8:
    case LLM_INT4:
        return g->flops_int8;
    }
    return 0.0;
}

/* The peak a step's GEMMs run at: the weights' precision where the GPU has
 * it (fp8 weights on fp8 tensor cores: vLLM's W8A8 fp8 quantises
 * activations on the fly), else 16-bit (fp8 weights on an A100 run as
 * weight-only FP8 Marlin, dequantised to fp16). int4 weights are
 * weight-only (AWQ / GPTQ, W4A16) and so run at 16-bit too. */
static double gemm_peak(const llm_perf *p)
{
    double f = p->weights == LLM_INT4 ? p->gpu.flops_fp16 : llm_gpu_flops(&p->gpu, p->weights);

    return f > 0.0 ? f : p->gpu.flops_fp16;
}

/* ---- a replica ---- */

void llm_perf_init(llm_perf *p, const llm_shape *s, const llm_gpu *g, int tp)
{
    memset(p, 0, sizeof *p);
    p->shape = *s;
    p->weights = p->activations = p->kv = LLM_BF16;
    p->tp = tp;
    p->gpu = *g;
    p->kind = LLM_STEP_ROOFLINE;
    p->mfu_prefill = g->mfu_prefill;
    p->mfu_decode = g->mfu_decode;
}

static double mfu_or_gpu(double mfu, double gpu_mfu)
{
    return mfu > 0.0 ? mfu : gpu_mfu;
}

int llm_perf_check(const llm_perf *p, char *err, size_t err_len)
{
    const llm_shape *s = &p->shape;
    double mp = mfu_or_gpu(p->mfu_prefill, p->gpu.mfu_prefill);
    double md = mfu_or_gpu(p->mfu_decode, p->gpu.mfu_decode);

    if (llm_shape_check(s, err, err_len))
        return -1;
    if ((unsigned)p->weights >= N_PRECISIONS || (unsigned)p->activations >= N_PRECISIONS ||
        (unsigned)p->kv >= N_PRECISIONS) {
        set_err(err, err_len, "precision out of range");
        return -1;
    }
    if (p->tp < 1) {
        set_err(err, err_len, "tensor_parallel must be >= 1 (got %d)", p->tp);
        return -1;
    }
    if (s->num_heads % p->tp != 0) {
        set_err(err, err_len, "num_attention_heads (%d) must be divisible by tensor_parallel (%d)",
                s->num_heads, p->tp);
        return -1;
    }
    /* BLIS kv_capacity.go: KV heads split evenly when there are at least
     * as many as ranks (fewer are replicated). */
    if (!is_mla(s) && kv_heads(s) >= p->tp && (int)kv_heads(s) % p->tp != 0) {
        set_err(err, err_len, "num_key_value_heads (%d) must be divisible by tensor_parallel (%d)",
                (int)kv_heads(s), p->tp);
        return -1;
    }
    if (p->ep > 1) {
        if (s->n_routed_experts <= 0 || moe_layers(s) <= 0) {
            set_err(err, err_len, "expert_parallel needs an MoE model (%s has no routed experts)",
                    s->name);
            return -1;
        }
        if (p->tp != 1) {
            set_err(err, err_len,
                    "expert_parallel runs attention data-parallel: tensor_parallel must be 1 "
                    "(got %d)", p->tp);
            return -1;
        }
        if (p->redundant_experts < 0 || p->gpus_per_node < 1) {
            set_err(err, err_len, "expert_parallel: redundant experts must be >= 0 and GPUs per "
                    "node >= 1");
            return -1;
        }
        if (p->ep > p->gpus_per_node && !(p->interconnect_Bps > 0.0)) {
            set_err(err, err_len,
                    "expert_parallel %d spans nodes of %d GPUs: the inter-node bandwidth "
                    "(interconnect) must be > 0", p->ep, p->gpus_per_node);
            return -1;
        }
        if (p->gpus_per_node > 1 && !(p->gpu.nvlink_Bps > 0.0)) {
            set_err(err, err_len, "expert_parallel: GPU %s needs its NVLink bandwidth",
                    p->gpu.name ? p->gpu.name : "?");
            return -1;
        }
    }
    if (!(p->gpu.hbm_Bps > 0.0) || !(p->gpu.hbm_bytes > 0.0)) {
        set_err(err, err_len, "GPU %s: memory size and bandwidth must be > 0",
                p->gpu.name ? p->gpu.name : "?");
        return -1;
    }
    if (!(gemm_peak(p) > 0.0)) {
        set_err(err, err_len, "GPU %s: no FLOP/s for %s weights", p->gpu.name ? p->gpu.name : "?",
                llm_precision_name(p->weights));
        return -1;
    }
    if (p->kind == LLM_STEP_ROOFLINE && !(mp > 0.0 && mp <= 1.0 && md > 0.0 && md <= 1.0)) {
        set_err(err, err_len, "mfu_prefill and mfu_decode must be in (0, 1] (got %g, %g)", mp, md);
        return -1;
    }
    if (!(p->overhead_s >= 0.0) || !(p->prefill_token_s >= 0.0) || !(p->decode_seq_s >= 0.0) ||
        !(p->context_token_s >= 0.0) || !(p->prefill_attention_pair_s >= 0.0)) {
        set_err(err, err_len, "step overhead and alpha-beta coefficients must be >= 0");
        return -1;
    }
    if (p->kind == LLM_STEP_ALPHA_BETA &&
        p->overhead_s + p->prefill_token_s + p->decode_seq_s + p->context_token_s +
                p->prefill_attention_pair_s <= 0.0) {
        set_err(err, err_len, "alpha_beta: every coefficient is 0, so a step would take no time");
        return -1;
    }
    return 0;
}

int llm_perf_gpus(const llm_perf *p)
{
    return p->ep > 1 ? p->ep : p->tp > 1 ? p->tp : 1;
}

/* Routed experts per MoE layer one GPU of the EP group holds. */
static double ep_held(const llm_perf *p)
{
    return (double)(p->shape.n_routed_experts + p->redundant_experts) / p->ep;
}

double llm_weight_bytes(const llm_perf *p)
{
    const llm_shape *s = &p->shape;

    /* EP: every GPU holds the non-expert weights and its share of the
     * routed experts (redundant copies included) */
    if (p->ep > 1)
        return p->ep * params_from(s, layer_params(s), ep_held(p), 1) *
               llm_precision_bytes(p->weights);
    return llm_params_total(s) * llm_precision_bytes(p->weights);
}

double llm_kv_bytes_per_token(const llm_perf *p)
{
    const llm_shape *s = &p->shape;
    double b = llm_precision_bytes(p->kv);
    int tp = p->tp > 1 ? p->tp : 1;

    if (is_mla(s))
        return (double)s->num_layers * (s->kv_lora_rank + s->qk_rope_head_dim) * b * tp;
    return 2.0 * s->num_layers * kv_heads(s) * head_dim(s) * b;
}

double llm_kv_transfer_bytes_per_token(const llm_perf *p)
{
    double b = llm_kv_bytes_per_token(p);
    return is_mla(&p->shape) && p->tp > 1 ? b / p->tp : b;
}

/* BLIS sim/latency/kv_capacity.go CalculateKVBlocks, with its TP basis as
 * fixed upstream (#1846, kv_capacity_tp_basis_test.go): the budget of all
 * tp GPUs, less the weights, one activation reserve per replica (5.5 GiB
 * dense, 8.0 GiB MoE) and a non-torch reserve per GPU (0.15 GiB alone,
 * 0.6 GiB with TP), divided by what one block costs on all tp GPUs. */
long llm_kv_blocks(const llm_perf *p, double gpu_memory_utilization, int block_size, char *err,
                   size_t err_len)
{
    int tp = llm_perf_gpus(p);
    double budget, weights, activation, non_torch, free_bytes, block_bytes, blocks;

    if (p->tp < 1 || block_size < 1 || !(gpu_memory_utilization > 0.0) ||
        gpu_memory_utilization > 1.0 || !(p->gpu.hbm_bytes > 0.0)) {
        set_err(err, err_len,
                "KV capacity needs tp >= 1, block_size >= 1, gpu_memory_utilization in (0, 1] "
                "and a GPU memory size");
        return -1;
    }
    budget = tp * p->gpu.hbm_bytes * gpu_memory_utilization;
    weights = llm_weight_bytes(p);
    activation = (p->shape.n_routed_experts > 0 ? 8.0 : 5.5) * GIB_BYTES;
    if (p->ep > 1) /* data-parallel attention: each GPU runs its own forward pass */
        activation *= p->ep;
    non_torch = tp * (tp == 1 ? 0.15 : 0.6) * GIB_BYTES;
    free_bytes = budget - weights - activation - non_torch;
    block_bytes = block_size * llm_kv_bytes_per_token(p);
    if (free_bytes <= 0.0) {
        set_err(err, err_len,
                "%s does not fit on %d x %s at %.2f: weights %.2f GiB + activations %.2f GiB + "
                "non-torch %.2f GiB exceed %.2f GiB by %.2f GiB",
                p->shape.name, tp, p->gpu.name ? p->gpu.name : "GPU", gpu_memory_utilization,
                weights / GIB_BYTES, activation / GIB_BYTES, non_torch / GIB_BYTES,
                budget / GIB_BYTES, -free_bytes / GIB_BYTES);
        return 0;
    }
    blocks = floor(free_bytes / block_bytes);
    if (blocks < 1.0) {
        set_err(err, err_len,
                "%s on %d x %s at %.2f: %.3f GiB left for the KV cache, less than one block "
                "of %d tokens (%.3f GiB)",
                p->shape.name, tp, p->gpu.name ? p->gpu.name : "GPU", gpu_memory_utilization,
                free_bytes / GIB_BYTES, block_size, block_bytes / GIB_BYTES);
        return 0;
    }
    return blocks > (double)LONG_MAX ? LONG_MAX : (long)blocks;
}

/* ---- one step ---- */

/* The roofline, after BLIS sim/latency/roofline.go (its single-crossover
 * form, rooflineStepTime at commit 0141c7e): every chunk of the step runs
 * in one forward pass, so the weights are read once; compute and memory
 * time are summed over chunks and divided by TP, and the step takes the
 * larger.
 *
 *   compute  F(n, c) = 2 n N + A n (c + (n - 1) / 2)  at peak x mfu
 *            (mfu_prefill for prompt chunks, mfu_decode for decode ones)
 *   memory   weights + sum kv_bytes (n + c) + L d act_bytes n   at HBM bandwidth
 *
 * N is the parameters a token multiplies through: the layers (attention,
 * norms, dense MLP or shared + k routed experts + router) and lm_head,
 * not the input embedding, which is a row lookup (no FLOPs, n rows read).
 * A is the attention's score and value products per (token, context token):
 * 4 L h d_h (QK^T and AV, 2 h d_h each, over all query heads); for MLA,
 * 2 L h (d_nope + d_rope + d_v) in the form vLLM uses for prefill (its
 * absorbed decode form does more, 2 h (576 + 512) per layer for DeepSeek-V3,
 * still far below the memory time at decode batch sizes). The
 * weights read are the same N set, except that an MoE layer reads every
 * expert the step's B tokens touch, N_eff = N (1 - ((N - k)/N)^B)
 * (llm_moe_experts_touched), not only k as roofline.go assumes (its B = 1
 * case). KV: the n new tokens written and the c cached ones read
 * (roofline.go's kv_cache_growth and kv_cache_access). Where roofline.go
 * differs and this follows the summary instead: it counts no lm_head, adds
 * softmax "sram_ops" (about 0.02% of the FLOPs at 1k tokens) and uses
 * d_h = hidden / heads; the lm_head is a full weight read each step and
 * the quoted floors below need it.
 *
 * Llama-3-8B bf16 on one H100 (N = 7,504,924,672; weights 15.01 GB; KV
 * 131,072 B per token): decode of one sequence at c = 1024 reads
 * 15.01e9 + 131,072 x 1025 + 262,144 B = 15.1445e9 B -> 4.5207 ms (3.1551 ms
 * on an H200); prefill of 1024 / 4096 tokens is compute-bound: 35.135 /
 * 147.947 ms; 256 sequences at c = 1024 read 49.47e9 B -> 14.767 ms.
 * llm-serving.md quotes 14.75 and 3.15: the same sums without the
 * activation term (256 x 262,144 B = 0.020 ms at batch 256) and the norm
 * weights give 14.7470 and 3.15495; this keeps both, as roofline.go keeps
 * its activations_tokens (derivation in tests/serve/test_llm_model.c). */
/* The constants of p's steps, by the expressions llm_step_parts has always
 * used (the cache must not change a result's last bit). */
static void fill_cache(const llm_perf *p, llm_perf_cache *k)
{
    const llm_shape *s = &p->shape;

    k->peak_flops = gemm_peak(p);
    k->mfu_prefill = mfu_or_gpu(p->mfu_prefill, p->gpu.mfu_prefill);
    k->mfu_decode = mfu_or_gpu(p->mfu_decode, p->gpu.mfu_decode);
    if (!(k->mfu_prefill > 0.0))
        k->mfu_prefill = 1.0;
    if (!(k->mfu_decode > 0.0))
        k->mfu_decode = 1.0;
    k->n_params = params_counting(s, s->experts_per_token, 0);
    k->attn = is_mla(s) ? 2.0 * s->num_layers * s->num_heads *
                              (s->qk_nope_head_dim + s->qk_rope_head_dim + s->v_head_dim)
                        : 4.0 * s->num_layers * s->num_heads * head_dim(s);
    k->kv_bytes = llm_kv_bytes_per_token(p);
    k->act_bytes = (double)s->num_layers * s->hidden_size * llm_precision_bytes(p->activations);
    k->layer_params = layer_params(s);
    /* a dense model reads the same weights every step (no experts touched) */
    k->weight_bytes =
        params_from(s, k->layer_params, 0.0, 0) * llm_precision_bytes(p->weights);
    k->ep_held = p->ep > 1 ? ep_held(p) : 0.0;
    k->ready = 1;
}

void llm_perf_prepare(llm_perf *p)
{
    fill_cache(p, &p->cache);
}

void llm_step_parts(const llm_perf *p, const llm_chunk *chunks, int n_chunks, double *compute_s,
                    double *memory_s)
{
    const llm_shape *s = &p->shape;
    int tp = p->tp > 1 ? p->tp : 1;
    llm_perf_cache local;
    const llm_perf_cache *k = &p->cache;
    double t_compute = 0.0, dynamic_bytes = 0.0, tokens = 0.0, weight_bytes;

    if (!k->ready) {
        fill_cache(p, &local);
        k = &local;
    }
    for (int i = 0; i < n_chunks; i++) {
        double n = chunks[i].n > 0 ? chunks[i].n : 0;
        double c = chunks[i].c > 0 ? (double)chunks[i].c : 0.0;
        double flops =
            2.0 * n * k->n_params + k->attn * n * (c + (n > 1.0 ? (n - 1.0) / 2.0 : 0.0));

        if (n <= 0.0)
            continue;
        t_compute += flops / (k->peak_flops * (chunks[i].decode ? k->mfu_decode : k->mfu_prefill));
        dynamic_bytes += k->kv_bytes * (n + c) + k->act_bytes * n;
        tokens += n;
    }
    if (p->ep > 1) {
        /* one GPU of the group: its share of the FLOPs and of the KV and
         * activations (attention data-parallel, the experts balanced by the
         * redundant copies), all the non-expert weights, and each routed
         * expert it holds as often as the step's tokens touch it */
        double held = k->ep_held * llm_moe_experts_touched(s, tokens) / s->n_routed_experts;

        weight_bytes = params_from(s, k->layer_params, held, 0) * llm_precision_bytes(p->weights);
        if (compute_s)
            *compute_s = t_compute / p->ep;
        if (memory_s)
            *memory_s = !(tokens > 0.0)
                            ? 0.0
                            : (weight_bytes + dynamic_bytes / p->ep) / p->gpu.hbm_Bps;
        return;
    }
    weight_bytes = moe_layers(s) > 0 ? params_from(s, k->layer_params,
                                                   llm_moe_experts_touched(s, tokens), 0) *
                                           llm_precision_bytes(p->weights)
                                     : k->weight_bytes;
    /* x / 1 is x: one TP rank needs no division */
    if (compute_s)
        *compute_s = tp > 1 ? t_compute / tp : t_compute;
    if (memory_s)
        *memory_s = !(tokens > 0.0) ? 0.0
                    : tp > 1        ? (weight_bytes + dynamic_bytes) / tp / p->gpu.hbm_Bps
                                    : (weight_bytes + dynamic_bytes) / p->gpu.hbm_Bps;
}

/* Expert parallelism's all-to-all (DeepEP's dispatch and combine): in each
 * MoE layer every GPU sends each of its tokens / ep tokens' hidden state to
 * the GPUs of its k routed experts (dispatch, in fp8 when the weights are
 * 8-bit, as DeepSeek-V3 quantises before dispatch, else at the
 * activations' precision) and receives the k results back (combine, at the
 * activations' precision). The experts are taken as spread uniformly over
 * the group, so of a token's k destinations (ep - g) / ep are on other
 * nodes (over interconnect_Bps) and (g - 1) / ep on other GPUs of its node
 * (over NVLink), g = min(gpus_per_node, ep); the two run at once, so the
 * layer takes the slower. Per GPU and direction:
 *   bytes = tokens / ep x k x d x (dispatch bytes + combine bytes)
 * and the off-node part is k (ep - g) / ep copies of a token's state.
 *
 * Device-limited routing (config.json's n_group, topk_group; DeepSeek-V3
 * technical report, 2.1.2 "Node-Limited Routing" and 3.2.2): the gate
 * picks topk_group of the n_group expert groups first and the k experts
 * only inside them (modeling_deepseek.py, MoEGate: group_mask), and a token
 * crosses InfiniBand once per target node, reaching the experts there over
 * NVLink. With the group's N = ep / g nodes, an expert group spans
 * max(1, N / n_group) nodes, so a token reaches at most
 * M = min(N, topk_group x max(1, N / n_group)) nodes, M (N - 1) / N of them
 * other than its own on average; the off-node copies are the fewer of that
 * and k (ep - g) / ep. */
double llm_ep_nodes_off(const llm_perf *p)
{
    const llm_shape *s = &p->shape;
    double e = p->ep, g, copies, nodes, m;

    if (p->ep <= 1)
        return 0.0;
    g = p->gpus_per_node < p->ep ? p->gpus_per_node : p->ep;
    if (g < 1.0)
        g = 1.0;
    copies = s->experts_per_token * (e - g) / e;
    if (s->n_group <= 0 || s->topk_group <= 0 || !(e > g))
        return copies;
    nodes = e / g;
    m = nodes / s->n_group;
    m = s->topk_group * (m > 1.0 ? m : 1.0);
    if (m > nodes)
        m = nodes;
    m = m * (nodes - 1.0) / nodes;
    return m < copies ? m : copies;
}

double llm_ep_comm_s(const llm_perf *p, double tokens)
{
    const llm_shape *s = &p->shape;
    double e, g, act, dispatch, bytes, off = 0.0, on = 0.0;

    if (p->ep <= 1 || !(tokens > 0.0) || moe_layers(s) <= 0)
        return 0.0;
    e = p->ep;
    g = p->gpus_per_node < p->ep ? p->gpus_per_node : p->ep;
    if (g < 1.0)
        g = 1.0;
    act = llm_precision_bytes(p->activations);
    dispatch = p->weights == LLM_FP8 || p->weights == LLM_INT8 ? 1.0 : act;
    bytes = tokens / e * s->experts_per_token * s->hidden_size * (dispatch + act);
    if (e > g && p->interconnect_Bps > 0.0) {
        if (s->n_group > 0 && s->topk_group > 0) /* bytes per copy x the copies sent */
            off = llm_ep_nodes_off(p) * (tokens / e * s->hidden_size * (dispatch + act)) /
                  p->interconnect_Bps;
        else
            off = (e - g) / e * bytes / p->interconnect_Bps;
    }
    if (g > 1.0 && p->gpu.nvlink_Bps > 0.0)
        on = (g - 1.0) / e * bytes / p->gpu.nvlink_Bps;
    return moe_layers(s) * (off > on ? off : on);
}

double llm_prefill_attention_pairs(int n, long c)
{
    double dn = n, dc = c > 0 ? (double)c : 0.0;

    return n > 0 ? dn * (dc + (dn + 1.0) / 2.0) : 0.0;
}

double llm_step_s(const llm_perf *p, const llm_chunk *chunks, int n_chunks)
{
    double t_compute, t_memory;

    if (n_chunks < 1)
        return 0.0;
    if (p->kind == LLM_STEP_ALPHA_BETA) {
        double prefill_tokens = 0.0, decode_seqs = 0.0, context = 0.0, pairs = 0.0, t;

        for (int i = 0; i < n_chunks; i++) {
            if (chunks[i].decode)
                decode_seqs += 1.0;
            else
                prefill_tokens += chunks[i].n > 0 ? chunks[i].n : 0;
            context += chunks[i].c > 0 ? (double)chunks[i].c : 0.0;
        }
        t = p->overhead_s + p->prefill_token_s * prefill_tokens +
            p->decode_seq_s * decode_seqs + p->context_token_s * context;
        /* Prefill attention grows with the square of a chunk's length: Vidur
         * predicts attn_prefill from kv_cache_size and
         * prefill_chunk_size_squared
         * (vidur/execution_time_predictor/sklearn_execution_time_predictor.py),
         * DistServe fits a + b sum n + c sum n^2 (estimators/time_estimator.py).
         * This counts the causal query-key pairs, which covers both the cached
         * and the square part. Added only when the coefficient is set, so
         * that a step without it keeps its last bit. */
        if (p->prefill_attention_pair_s > 0.0) {
            for (int i = 0; i < n_chunks; i++)
                if (!chunks[i].decode)
                    pairs += llm_prefill_attention_pairs(chunks[i].n, chunks[i].c);
            t += p->prefill_attention_pair_s * pairs;
        }
        return t;
    }
    llm_step_parts(p, chunks, n_chunks, &t_compute, &t_memory);
    if (p->ep > 1) {
        /* DeepSeek-V3 overlaps the all-to-all with the other micro-batch's
         * compute (two micro-batches per step), so the step takes the
         * longest of the three */
        double tokens = 0.0, t_comm;

        for (int i = 0; i < n_chunks; i++)
            tokens += chunks[i].n > 0 ? chunks[i].n : 0;
        t_comm = llm_ep_comm_s(p, tokens);
        if (t_comm > t_compute)
            t_compute = t_comm;
    }
    return (t_compute > t_memory ? t_compute : t_memory) + p->overhead_s;
}
