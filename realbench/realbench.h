/*
 * realbench.h - service times measured from real inference kernels.
 *
 * A model (realbench/models/NAME.yaml) is compiled into a list of GEMM ops with
 * the shapes the model really computes. The CPU benchmark runs them with INT8
 * (int8 x int8 -> int32, requantised between layers) and FP32 kernels on a
 * thread pool; the CUDA benchmark (realbench/cuda/rb_cuda_bench.cu, a separate
 * program that needs only nvcc) runs them with cuBLASLt / cuBLAS / a dp4a
 * kernel and writes raw timings as CSV. Both feed the same raw-measurement
 * structure, from which a calibration profile (JSON, schema in
 * realbench/README.md) is built: per precision the median and spread by batch
 * size, a least-squares fit latency = alpha + beta * batch, and speedups.
 * Every function that can fail returns 0 on success and writes its message to
 * the FILE *err it is given; nothing here exits or aborts.
 */
#ifndef FLEETSIM_REALBENCH_H
#define FLEETSIM_REALBENCH_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "rb_quant.h"

typedef struct cJSON cJSON;

/* ---- models ------------------------------------------------------------ */

/* One GEMM of the model: for each of G groups, C[M][N] = A[M][K] * B[N][K]^T
 * (both operands K-contiguous). Per batch of b items:
 *   b_weight: B is a weight matrix shared by all items, G = 1, M = b * m;
 *   else:     B is an activation of each group,       G = b * groups, M = m. */
typedef struct {
    char name[32];
    int groups;      /* independent products per item (attention heads) */
    int m, n, k;     /* rows per item (1 dense, seq_len transformer), cols, depth */
    int b_weight;    /* 1: B is a weight matrix */
    int a_from_prev; /* 1: A is the previous op's output (same element count) */
    rb_act act;      /* applied to the output (softmax: per row of n) */
    int shift;       /* INT8 requantisation shift, see rb_quant.h */
} rb_op;

typedef struct {
    char *name;
    char *file; /* the YAML it came from, as given */
    int n_ops;
    rb_op *ops;
} rb_model;

/* Parses a model YAML; on error prints `file:line:col: message` to err. */
rb_model *rb_model_load(const char *path, FILE *err);
void rb_model_free(rb_model *m);
/* Multiply-accumulates of one item (one request) through the whole model. */
double rb_model_macs_per_item(const rb_model *m);
/* Plain-text shapes for the standalone CUDA benchmark (format in README). */
int rb_model_write_shapes(const rb_model *m, FILE *out);
const char *rb_act_name(rb_act a);

static inline int rb_op_groups(const rb_op *op, int batch)
{
    return op->b_weight ? 1 : batch * op->groups;
}
static inline int rb_op_rows(const rb_op *op, int batch)
{
    return op->b_weight ? batch * op->m : op->m;
}

/* ---- CPU kernels --------------------------------------------------------- */

/* C[m][n] = sum_k A[m][k] * B[n][k] for 0 <= m < M and n0 <= n < n1; A and B
 * rows are K long, C rows ldc long. Written so that GCC -O3 vectorises it. */
void rb_gemm_s8(const int8_t *A, const int8_t *B, int32_t *C, int ldc, int M, int K,
                int n0, int n1);
void rb_gemm_f32(const float *A, const float *B, float *C, int ldc, int M, int K,
                 int n0, int n1);
/* Plain triple loops used to check the kernels (FP32 accumulates in double). */
void rb_gemm_s8_ref(const int8_t *A, const int8_t *B, int32_t *C, int M, int N, int K);
void rb_gemm_f32_ref(const float *A, const float *B, float *C, int M, int N, int K);

/* A fixed pool of threads that run one job at a time. */
typedef struct rb_pool rb_pool;
typedef void rb_pool_fn(void *arg, int tid, int nthreads);
rb_pool *rb_pool_new(int nthreads);
void rb_pool_free(rb_pool *p);
int rb_pool_size(const rb_pool *p);
/* Runs fn(arg, tid, n) on every thread (tid 0 is the caller) and waits. */
void rb_pool_run(rb_pool *p, rb_pool_fn *fn, void *arg);
int rb_pool_pin(rb_pool *p, int cpu0);

/* Real-time scheduling for timing on a machine shared with other work: the
 * calling thread, and every thread it creates afterwards (they inherit it),
 * runs SCHED_FIFO at the lowest real-time priority, so other processes'
 * threads cannot take its CPU while it computes. Needs CAP_SYS_NICE; when it
 * is refused, rb_rt_enter returns -1 and writes why (nothing changed).
 * rb_rt_leave restores the policy the thread had. */
typedef struct {
    int active, policy, priority;
} rb_rt;
int rb_rt_enter(rb_rt *rt, char *why, size_t why_len);
void rb_rt_leave(rb_rt *rt);

/* CPU affinity, the layout `serve --pin` and `cpu --pin` share: the load
 * generator on CPU 0, worker k's pool on CPUs 1 + k * threads .. (one CPU per
 * thread). rb_pin_self pins the calling thread to one CPU; rb_pool_pin pins
 * the calling thread (the pool's tid 0) to cpu0 and helper t to cpu0 + t.
 * 0 on success, -1 when the CPUs are not there or the call is refused. */
int rb_pin_self(int cpu);

typedef enum { RB_INT8 = 0, RB_FP32 = 1 } rb_cpu_precision;
const char *rb_cpu_precision_name(rb_cpu_precision p);

/* A model instantiated on the CPU for batches up to max_batch: weights,
 * `rotate` input buffer sets, activations. Inputs are random (GSL, seeded). */
typedef struct rb_cpu_net rb_cpu_net;
rb_cpu_net *rb_cpu_net_new(const rb_model *m, rb_cpu_precision prec, int max_batch,
                           int rotate, unsigned long seed, FILE *err);
void rb_cpu_net_free(rb_cpu_net *n);
/* One forward pass of `batch` items on input set `rot` (mod rotate). */
void rb_cpu_net_forward(rb_cpu_net *n, rb_pool *pool, int batch, int rot);
/* Runs the forward pass and checks every op's product against the reference
 * (exact for INT8, |err| <= tol * sum|a*b| for FP32); 0 when all match. */
int rb_cpu_net_check(rb_cpu_net *n, rb_pool *pool, int batch, FILE *err);
/* The final op's output of the last forward pass (int8_t* or float*). */
const void *rb_cpu_net_output(const rb_cpu_net *n, size_t *count);

/* ---- raw measurements and profiles -------------------------------------- */

typedef struct {
    char precision[32]; /* profile key: int8, int8_dp4a, fp16, bf16, fp32 */
    char impl[32];      /* how: cpu-dot, cublaslt, dp4a, cublas */
    int batch;
    size_t n;
    double *samples_s;  /* every timed repetition, seconds */
} rb_series;

/* meta: a cJSON object with device, model, created, settings, ... */
typedef struct {
    cJSON *meta;
    int n_series;
    rb_series *series;
} rb_raw;

void rb_raw_init(rb_raw *r);
void rb_raw_free(rb_raw *r);
/* Appends a copy of samples as a series. */
int rb_raw_add(rb_raw *r, const char *precision, const char *impl, int batch,
               const double *samples_s, size_t n);
/* Sets meta[dotted.path] = value; a value that parses fully as a number is
 * stored as a number, else as a string. */
int rb_raw_set_meta(rb_raw *r, const char *dotted_key, const char *value);
/* CSV: `# key=value` header lines, then precision,impl,batch,rep,latency_s. */
int rb_raw_write_csv(const rb_raw *r, FILE *out);
int rb_raw_read_csv(rb_raw *r, const char *path, FILE *err);

typedef struct {
    double alpha_s, beta_s, residual_sd_s, r2;
} rb_fit;
/* Least squares latency = alpha + beta * batch (GSL); 0 on success. */
int rb_fit_linear(const int *batch, const double *latency_s, int n, rb_fit *fit);

/* Profile JSON from raw measurements (caller cJSON_Delete's it). */
cJSON *rb_profile_build(const rb_raw *raw, FILE *err);
int rb_profile_write(const cJSON *profile, const char *path, FILE *err);
cJSON *rb_profile_read(const char *path, FILE *err);

/* ---- CPU benchmark -------------------------------------------------------- */

typedef struct {
    const char *model_path;
    int *batches;
    int n_batches;
    int reps;      /* timed repetitions per batch (>= 30 by default) */
    int warmup;    /* untimed repetitions first */
    int rotate;    /* input buffer sets */
    int threads;   /* 0 = online cores */
    int precisions; /* bit mask of 1 << rb_cpu_precision */
    unsigned long seed;
    double budget_s; /* whole run; batches that would exceed it are skipped (0 = none) */
    int quiet;
    /* Serving conditions (defaults: 1 worker, back to back, ascending batches):
     * workers: instances timed at once, each its own network and pool of
     *   `threads` threads (as `realbench serve --workers`);
     * duty: 0 back to back; in (0, 1] each worker sleeps after every pass
     *   so that it is busy that fraction of the time, as a serving worker at
     *   that load is (a thread that sleeps is scheduled differently from one
     *   that never does when other processes share the cores);
     * interleave: rounds over all batch sizes in a shuffled order instead of
     *   all repetitions of one size after another, so that interference from
     *   other work falls on every size alike and the sizes follow one another
     *   as they do in a serving loop;
     * center_mean: the profile's latency_s is the mean, not the median (the
     *   mean sets a queue's load; recorded as settings.center). */
    int workers;
    double duty;
    int interleave;
    int center_mean;
    int realtime; /* rb_rt_enter for the whole benchmark (settings.sched says what ran) */
    int pin;      /* worker k's threads on CPUs 1 + k * threads.., as serve --pin */
} rb_cpu_opts;

void rb_cpu_opts_default(rb_cpu_opts *o);
/* Checks then benchmarks every precision and batch into raw (meta included). */
int rb_cpu_bench(const rb_cpu_opts *o, rb_raw *raw, FILE *log, FILE *err);
/* Fills device.* meta for this CPU. */
void rb_cpu_device_meta(rb_raw *raw, int threads);

/* ---- LLM steps (llm_step.c) ------------------------------------------------ */

/* One measured (or given) scheduler step: its composition, as fleetsim's
 * alpha_beta step model counts it, and its time. */
typedef struct {
    double prefill_tokens;  /* new tokens of sequences still in their prompt */
    double decode_seqs;     /* sequences decoding one token */
    double context_tokens;  /* cached tokens the step's sequences read */
    double latency_s;
    int reps;               /* repetitions behind latency_s (their median) */
    /* causal query-key pairs of the prefill chunks' attention: the sum over
     * chunks of n (c + (n + 1) / 2) (llm_prefill_attention_pairs) */
    double prefill_attention_pairs;
} rb_llm_step;

/* step_s = overhead_s + per_prefill_token_s x prefill_tokens
 *        + per_decode_seq_s x decode_seqs + per_context_token_s x context_tokens
 *        + per_prefill_attention_s x prefill_attention_pairs */
typedef struct {
    double overhead_s, per_prefill_token_s, per_decode_seq_s, per_context_token_s;
    double per_prefill_attention_s;
    double residual_sd_s, r2;
    int zeroed;  /* bit i: coefficient i (in the order above) came out < 0, fixed at 0 */
} rb_llm_fit;

/* Least squares over the steps (gsl_multifit_linear, relative residuals),
 * coefficients held >= 0 (one below 0 is fixed at 0, the rest refitted);
 * the attention term only when some step has prefill_attention_pairs > 0;
 * 0, or -1 for fewer than 5 steps, a latency that is not > 0, or steps that
 * do not determine the coefficients. */
int rb_llm_fit_steps(const rb_llm_step *steps, int n, rb_llm_fit *fit);
/* The same model fitted to the steps' mean times, for single timings with
 * noise (a loop's record) rather than medians: iteratively reweighted
 * least squares (gsl_multifit_wlinear), each step weighted by 1 / f^2, f
 * the previous fit's time for it (starting from rb_llm_fit_steps), until
 * no step's fitted time moves by 1e-9 of itself (at most 100 rounds;
 * *iterations, when not NULL, says how many ran). Coefficients held >= 0
 * as rb_llm_fit_steps holds them. 0, or -1 as rb_llm_fit_steps. */
int rb_llm_fit_steps_mean(const rb_llm_step *steps, int n, rb_llm_fit *fit, int *iterations);
double rb_llm_fit_apply(const rb_llm_fit *fit, const rb_llm_step *step);

/* How a fit does on steps of each kind: [RB_LLM_DECODE_ONLY] the steps
 * without prefill tokens, [RB_LLM_WITH_PREFILL] the rest. measured_s and
 * model_s: the steps' times added up, measured and fitted (their ratio is
 * how much slower the steps ran than the fit says); rel_mean and rel_rms:
 * the mean and root mean square of (measured - fitted) / measured. */
enum { RB_LLM_DECODE_ONLY = 0, RB_LLM_WITH_PREFILL = 1 };
typedef struct {
    long steps;
    double measured_s, model_s, rel_mean, rel_rms;
} rb_llm_kind_fit;
void rb_llm_fit_by_kind(const rb_llm_fit *fit, const rb_llm_step *steps, size_t n,
                        rb_llm_kind_fit out[2]);
/* {"decode_only": {...}, "with_prefill": {...}, "all": {...}}, each with
 * steps, measured_s, model_s, measured_over_model, rel_mean, rel_rms. */
cJSON *rb_llm_fit_by_kind_json(const rb_llm_fit *fit, const rb_llm_step *steps, size_t n);

/* The precisions of the layer stack (llm_layer.c): FP32; FP16 weights, KV
 * cache and GEMM operands with FP32 sums; INT8 weights (per row),
 * activations and KV cache (per token), int32 sums. */
typedef enum { RB_LLM_FP32 = 0, RB_LLM_FP16, RB_LLM_INT8, RB_LLM_N_PREC } rb_llm_precision;
const char *rb_llm_precision_name(rb_llm_precision p);
/* "fp32", "fp16", "int8": 0, else -1. */
int rb_llm_precision_parse(const char *name, rb_llm_precision *out);

enum { RB_LLM_GRID_MAX = 16 };
typedef struct {
    int layers, d_model, d_ff, heads, kv_heads; /* the stack (2, 64, 256, 4, 2) */
    int reps, warmup;           /* timed and untimed passes per step (5, 1) */
    unsigned long seed;
    int quiet;
    rb_llm_precision precision; /* what rb_llm_bench times */
    /* The grid (rb_llm_grid): prefill chunk sizes, decode batch sizes and
     * cached context lengths, each ascending, at most RB_LLM_GRID_MAX. */
    int prefill[RB_LLM_GRID_MAX], n_prefill;
    int decode[RB_LLM_GRID_MAX], n_decode;
    int contexts[RB_LLM_GRID_MAX], n_contexts;
} rb_llm_opts;
void rb_llm_opts_default(rb_llm_opts *o);

/* One step of the grid: n_prefill chunks of prefill_n tokens on prefill_c
 * cached, and n_decode sequences decoding at context decode_c. */
typedef struct {
    int n_prefill, prefill_n, prefill_c, n_decode, decode_c;
} rb_llm_grid_step;
/* The grid from the options: every prefill size alone (c = 0); the middle
 * prefill size on every context; every decode batch at every context; and
 * per context the smallest prefill chunk (c = 0) beside the middle decode
 * batch (chunked prefill's mixed step). *out malloc'd; its count, or -1. */
int rb_llm_grid(const rb_llm_opts *o, rb_llm_grid_step **out);

/* The error bound of each precision's check (rb_llm_check): the largest
 * |y - y_fp32| over the output, relative to the largest |y_fp32|. */
double rb_llm_error_bound(rb_llm_precision p);
/* Runs a few steps (prefill chunks on cached context, decode at several
 * contexts, mixed) through the stack in o->precision and in FP32 from the
 * same seed, and compares the outputs. The relative error goes into
 * *rel_err; 0 when within rb_llm_error_bound, 4 when not (message on err),
 * 1 out of memory, 2 bad options. */
int rb_llm_check(const rb_llm_opts *o, double *rel_err, FILE *err);

/* Times the grid in o->precision on this CPU; *steps malloc'd. 0, 1
 * (failure) or 2 (bad options). */
int rb_llm_bench(const rb_llm_opts *o, rb_llm_step **steps, int *n, FILE *log, FILE *err);
/* One precision's section of the profile's "llm_step": kernel (with the
 * check's error and bound when check_err >= 0), the fit, method, the steps
 * with the fitted time and relative residual of each. */
cJSON *rb_llm_step_json(const rb_llm_opts *o, const char *device_kind, const char *impl,
                        const rb_llm_step *steps, int n, const rb_llm_fit *fit,
                        double check_err, double check_bound);
/* Puts one precision's section into the profile root's "llm_step" (made
 * if missing) under precisions.<name>, and copies its coefficients to
 * llm_step's top level when name is fp32 or no top level is there yet
 * (profiles before precisions were measured have only the top level). */
void rb_llm_step_put(cJSON *root, const char *name, cJSON *section);

/* An LLM model file (realbench/models/NAME.yaml with an `llm` mapping):
 * its shape into o. 0; 1 when the file is a model file without `llm` (a
 * batch model); 2 on an error, printed as file:line:col. */
int rb_llm_model_load(const char *path, rb_llm_opts *o, char *name, size_t name_len, FILE *err);

/* ---- step noise and the LLM closed loop (llm_loop.c) ------------------------ */

/* The noise of a long run of steps at one composition: the steps' cv, the
 * lag-1 autocorrelation of their log times and the correlation time it
 * gives, -dt / ln(lag1), dt the mean step (back to back: start to start). */
typedef struct {
    double cv, lag1, correlation_s, dt_s, mean_s, median_s;
    size_t steps;
} rb_llm_noise;
/* 0, or -1 for fewer than 10 steps or a time that is not > 0. lag1 <= 0
 * gives correlation_s 0 (no memory seen); lag1 >= 1 is an error (-1). */
int rb_llm_noise_fit(const double *step_s, size_t n, rb_llm_noise *out);
/* Times n steps of one composition (16 sequences decoding on 512 cached
 * tokens each) back to back, after o->warmup untimed ones; *step_s malloc'd.
 * 0, or 1 when out of memory. */
int rb_llm_noise_record(const rb_llm_opts *o, size_t n, double **step_s);
/* The profile's llm_step.noise: cv, correlation_s, lag1, dt_s, steps,
 * composition, method. */
cJSON *rb_llm_noise_json(const rb_llm_noise *nz);
/* The slow component of the step noise, fitted on a loop's record: the
 * measured over fitted step time averaged over windows of W seconds of
 * busy time (sum of measured / sum of fitted within a window; windows do
 * not cross runs, a run's last partial window is dropped), for each W in
 * RB_LLM_SLOW_W. The sum over runs of the squared deviations of the window
 * means from their run's mean is set against its expectation when the
 * factor is the sum of the fast component (fixed: fast_cv,
 * fast_correlation_s, the profile's llm_step.noise) and a slow OU of
 * variance cv^2 and correlation time tau: per component,
 * v sum_runs m (g(W) - g(m W)), m the run's windows and
 * g(W) = 2 (tau/W)^2 (W/tau - 1 + exp(-W/tau)) the variance of an OU's
 * mean over W (per unit variance). cv^2 is the least-squares solution on
 * the relative residuals for each tau of a log grid (1 ms .. 30 s), tau
 * the one of least residual. */
#define RB_LLM_SLOW_NW 6
extern const double RB_LLM_SLOW_W[RB_LLM_SLOW_NW];
typedef struct {
    double cv, correlation_s;        /* the slow component; cv 0 when none is seen */
    double fast_cv, fast_correlation_s;
    double ss[RB_LLM_SLOW_NW];       /* the observed sums of squares */
    double model_ss[RB_LLM_SLOW_NW]; /* their expectation under the fit */
    int windows[RB_LLM_SLOW_NW];     /* windows of each W, all runs */
    double rms_rel;                  /* rms relative residual of the fit */
} rb_llm_slow_noise;
/* run[i] tells the steps' runs apart (consecutive steps of one run share
 * it). 0, or -1 when fewer than 2 windows of the largest W fit in one run
 * or a time is not > 0. */
int rb_llm_slow_noise_fit(const double *latency_s, const double *fitted_s, const int *run,
                          size_t n, double fast_cv, double fast_correlation_s,
                          rb_llm_slow_noise *out);
/* llm_step.noise.slow: cv, correlation_s, the windows and the method. */
cJSON *rb_llm_slow_noise_json(const rb_llm_slow_noise *s);
/* `realbench llm-slow-noise RECORD.csv PROFILE.json`: fits the slow
 * component on a loop's calibration-steps.csv and writes it into the
 * profile's llm_step.noise.slow. */
int rb_llm_slow_noise_main(int argc, char **argv);
/* `realbench llm-loop ...`: a real continuous-batching loop under Poisson
 * load beside fleetsim's prediction of it. */
int rb_llm_loop_main(int argc, char **argv);

/* ---- command line ---------------------------------------------------------- */

/* `realbench <cmd> ...`: cpu, cuda, llm-step, serve, profile, shapes. */
int rb_main(int argc, char **argv);
/* `realbench serve ...` (serve.c): closed-loop serving test. */
int rb_serve_main(int argc, char **argv);
/* `realbench fidelity ...` (fidelity.c): fleetsim's prediction of a serving
 * run from the calibration measured with it, and the errors. */
int rb_fidelity_main(int argc, char **argv);
/* A serving run's hand-offs per request (fleetsim-serve/1 handoff_s: the
 * generator's lateness plus the batch's dispatch), which fleetsim gets as
 * the pool's round trip; NAN when the run does not report them. */
double rb_serve_handoff_s(const cJSON *serve);
/* `BIN run YAML --out OUTDIR` with stdout and stderr into LOGPATH: its
 * exit status, or -1 when it could not be run or did not exit. */
int rb_run_fleetsim(const char *bin, const char *yaml, const char *outdir, const char *logpath);
/* `fleetsim calibrate --device cuda|cpu --model M.yaml --out P.json
 * [--batches 1,2,4] [--reps N]`; argv[0] is the command name. Exit status:
 * 0 ok, 2 bad input, 1 failure, 3 no CUDA device. */
int rb_calibrate_main(int argc, char **argv);

/* Parses "1,2,4" or "1-512" (powers of two); malloc'd array, NULL on error. */
int *rb_parse_batches(const char *s, int *n);

#endif
