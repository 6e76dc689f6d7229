/*
 * llm_model.h - what an LLM replica costs, from the model's shape and the GPU:
 * the Hugging Face config.json reader, precisions, the GPU catalog, weight
 * and KV-cache bytes, KV capacity in blocks, and the time of one scheduler
 * step (roofline or fitted alpha-beta). Pure functions: no SimGrid, no
 * globals, so the closed forms are tested on their own.
 * Formulas and constants: docs/llm-serving.md (sources: BLIS
 * sim/latency/roofline.go and kv_capacity.go, vLLM, DistServe).
 */
#ifndef FLEETSIM_LLM_MODEL_H
#define FLEETSIM_LLM_MODEL_H

#include <stddef.h>

typedef enum { LLM_FP32 = 0, LLM_FP16, LLM_BF16, LLM_FP8, LLM_INT8, LLM_INT4 } llm_precision;

/* "fp32", "fp16", "bf16", "fp8", "int8", "int4": 0, or -1 for another name. */
int llm_precision_parse(const char *name, llm_precision *out);
const char *llm_precision_name(llm_precision p);
double llm_precision_bytes(llm_precision p); /* 4, 2, 2, 1, 1, 0.5 */

/* A transformer's shape, as config.json gives it (0 where a field is absent
 * and does not apply). */
typedef struct {
    char name[64];                 /* "model_type" or the file's stem */
    int hidden_size;               /* hidden_size */
    int num_layers;                /* num_hidden_layers */
    int num_heads;                 /* num_attention_heads */
    int num_kv_heads;              /* num_key_value_heads (= num_heads when absent) */
    int head_dim;                  /* head_dim (= hidden_size / num_heads when absent) */
    int intermediate_size;         /* intermediate_size: the dense MLP's */
    int vocab_size;                /* vocab_size */
    int tie_word_embeddings;       /* tie_word_embeddings */
    /* MoE (DeepSeek-V3 names; Mixtral's num_local_experts too) */
    int n_routed_experts;          /* 0 = dense */
    int n_shared_experts;
    int experts_per_token;         /* num_experts_per_tok */
    int moe_intermediate_size;
    int first_dense_layers;        /* first_k_dense_replace */
    /* device-limited routing (DeepSeek-V3): the routed experts form n_group
     * groups and a token's experts come from at most topk_group of them;
     * 0 = no limit */
    int n_group;                   /* n_group */
    int topk_group;                /* topk_group */
    /* MLA (DeepSeek): the KV cache holds a latent per token and layer */
    int kv_lora_rank;              /* 0 = standard attention */
    int qk_rope_head_dim;
    int q_lora_rank, qk_nope_head_dim, v_head_dim; /* MLA projection sizes, for the weights */
} llm_shape;

/* Reads a config.json's text (cJSON). 0 on success; -1 with a message in
 * err (naming the field) for JSON that does not parse, a required field
 * missing (hidden_size, num_hidden_layers, num_attention_heads,
 * intermediate_size, vocab_size) or a value that is not a positive integer. */
int llm_shape_parse(const char *json, llm_shape *out, char *err, size_t err_len);
/* Same, from a file; err names the file. */
int llm_shape_load(const char *path, llm_shape *out, char *err, size_t err_len);
/* Checks a shape given inline (the same rules as the parser). */
int llm_shape_check(const llm_shape *s, char *err, size_t err_len);

/* Parameters: all of them (weights held), and those one token uses. */
double llm_params_total(const llm_shape *s);
double llm_params_active(const llm_shape *s);

/* A GPU: peak dense tensor throughput per precision (FLOP/s; 0 = not
 * supported), memory, power and price. */
typedef struct {
    const char *name;              /* "H100-SXM" */
    double flops_fp32, flops_fp16, flops_fp8, flops_int8; /* fp16 row also bf16; fp32 = TF32 */
    double hbm_bytes;
    double hbm_Bps;
    double power_w;                /* board power at full load */
    double idle_w;
    double price_per_hour;
    double mfu_prefill, mfu_decode; /* achieved share of peak (BLIS hardware_config.json) */
    double nvlink_Bps;             /* GPU-to-GPU bandwidth inside a node, one direction */
} llm_gpu;

/* The catalog (A100-80G, H100-SXM, H800, H200, B200, L40S at least), matched
 * case-insensitively, also by the scenario's gpu_type ("a100", "h100", ...);
 * NULL for an unknown name. llm_gpu_names lists them. */
const llm_gpu *llm_gpu_find(const char *name);
extern const llm_gpu *const llm_gpu_catalog[]; /* NULL-terminated */
/* "A100-80G, H100-SXM, ...": the catalog's names, for error messages. */
const char *llm_gpu_names(void);
double llm_gpu_flops(const llm_gpu *g, llm_precision p); /* fp16 for bf16, int8 for int4 */

typedef enum { LLM_STEP_ROOFLINE = 0, LLM_STEP_ALPHA_BETA } llm_step_kind;

/* What a step's time needs of the replica that does not change from step
 * to step (llm_perf_prepare): each is computed by the same expression the
 * step would use, so a prepared replica's step times are the unprepared
 * ones, bit for bit. */
typedef struct {
    int ready;                     /* set by llm_perf_prepare */
    double peak_flops;             /* the GEMMs' peak (gemm_peak) */
    double mfu_prefill, mfu_decode; /* the MFUs in effect (1 where not > 0) */
    double n_params;               /* parameters one token multiplies through */
    double attn;                   /* attention FLOPs per (token, context token) */
    double kv_bytes;               /* KV bytes per token */
    double act_bytes;              /* activation bytes per token */
    double layer_params;           /* the layers' parameters less the MoE experts' */
    double weight_bytes;           /* weights one step reads (a dense model's) */
    double ep_held;                /* routed experts one GPU of the EP group holds, per layer */
} llm_perf_cache;

/* One replica: a model on tp GPUs, at its precisions. */
typedef struct {
    llm_shape shape;
    llm_precision weights, activations, kv;
    int tp;                        /* tensor_parallel >= 1 */
    llm_gpu gpu;
    llm_step_kind kind;
    double mfu_prefill, mfu_decode; /* roofline; default the GPU's */
    double overhead_s;              /* fixed time per step (both kinds) */
    /* alpha_beta: step = overhead + prefill_token_s * prefill tokens +
     * decode_seq_s * decode sequences + context_token_s * context tokens read
     * + prefill_attention_pair_s * prefill attention pairs, the last being
     * the causal query-key products of the step's prefill chunks,
     * sum of n (c + (n + 1) / 2) (llm_prefill_attention_pairs) */
    double prefill_token_s, decode_seq_s, context_token_s;
    double prefill_attention_pair_s; /* s per query-key pair; 0 = no such term */
    /* Expert parallelism (MoE models; docs/llm-serving.md "Expert
     * parallelism"): the replica is a group of ep GPUs (ep > 1; 0 or 1 =
     * none, tp alone) that each hold the attention, dense and shared-expert
     * weights and (routed + redundant) / ep routed experts; attention runs
     * data-parallel (each GPU its share of the sequences) and every MoE
     * layer sends each token's hidden state to its k experts and back
     * (all-to-all), over NVLink inside a node of gpus_per_node GPUs and
     * over interconnect_Bps per GPU between nodes. tp must be 1. */
    int ep;
    int redundant_experts;          /* extra copies of hot routed experts in the group */
    int gpus_per_node;              /* physical GPUs per node of the group (>= 1) */
    double interconnect_Bps;        /* inter-node bandwidth per GPU, one direction */
    llm_perf_cache cache;           /* llm_perf_prepare; ignored while not ready */
} llm_perf;

/* A replica of shape s on tp GPUs g: bf16 weights, activations and KV,
 * roofline, the GPU's MFUs, no overhead. */
void llm_perf_init(llm_perf *p, const llm_shape *s, const llm_gpu *g, int tp);
/* Computes the constants a step's time needs once (p->cache), so that
 * llm_step_s and llm_step_parts do not count the parameters at every step.
 * Call it after the last change to p's other fields; until then (and
 * after llm_perf_init, which clears the cache) they compute everything. */
void llm_perf_prepare(llm_perf *p);
/* 0 if the replica can be costed: the shape's rules, tp >= 1 dividing the
 * heads, a GPU with bandwidth and FLOPs at the weights' precision, MFUs in
 * (0, 1], times >= 0; -1 with a message in err otherwise. */
int llm_perf_check(const llm_perf *p, char *err, size_t err_len);

/* Routed experts a step of `tokens` tokens touches in each MoE layer, in
 * expectation, each token choosing k of N uniformly:
 * N * (1 - ((N - k) / N)^tokens); k at 1 token, N as tokens grow; 0 for a
 * dense model. */
double llm_moe_experts_touched(const llm_shape *s, double tokens);

/* Bytes of all the weights (every TP rank together). */
double llm_weight_bytes(const llm_perf *p);
/* KV-cache bytes one token takes on the replica (all ranks together):
 * dense 2 * L * kv_heads * head_dim * kv bytes; MLA L * (kv_lora_rank +
 * qk_rope_head_dim) * kv bytes (replicated on every rank, so x tp). */
double llm_kv_bytes_per_token(const llm_perf *p);
/* The KV cache of one token as content, each byte once: what a KV transfer
 * between replicas sends (disaggregation). Dense: llm_kv_bytes_per_token
 * (the ranks hold disjoint heads); MLA: one rank's copy of the latent. */
double llm_kv_transfer_bytes_per_token(const llm_perf *p);
/* KV blocks of block_size tokens that fit in the replica's memory at
 * gpu_memory_utilization (BLIS kv_capacity.go); <= 0 when the weights do
 * not fit, and err says by how much (-1 for arguments out of range, 0 when
 * nothing fits). */
long llm_kv_blocks(const llm_perf *p, double gpu_memory_utilization, int block_size, char *err,
                   size_t err_len);

/* One sequence's part of a step: n new tokens computed with c tokens
 * already in its cache; decode = 1 for a decode token (n = 1 after the
 * prompt), 0 for prompt (prefill) tokens. */
typedef struct {
    int n;
    long c;
    int decode;
} llm_chunk;

/* The query-key products of causal attention over a prefill chunk of n new
 * tokens on c cached ones: new token i (1..n) attends to the c cached
 * tokens and to the first i new ones, itself included, so
 * n c + n (n + 1) / 2 = n (c + (n + 1) / 2); 0 for n <= 0. */
double llm_prefill_attention_pairs(int n, long c);
/* The time of one step running these chunks together (> 0 for n_chunks >= 1). */
double llm_step_s(const llm_perf *p, const llm_chunk *chunks, int n_chunks);
/* The roofline's parts, for tests and --trace-steps: compute and memory time. */
void llm_step_parts(const llm_perf *p, const llm_chunk *chunks, int n_chunks, double *compute_s,
                    double *memory_s);
/* A token's copies sent across nodes per MoE layer: k (ep - g) / ep, or
 * fewer under device-limited routing (shape's n_group / topk_group). */
double llm_ep_nodes_off(const llm_perf *p);
/* An expert-parallel replica's all-to-all time for a step of `tokens`
 * tokens (dispatch and combine over every MoE layer); 0 without EP. */
double llm_ep_comm_s(const llm_perf *p, double tokens);
/* GPUs of one replica: tp, or ep when expert-parallel. */
int llm_perf_gpus(const llm_perf *p);

#endif
