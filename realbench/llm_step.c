/*
 * llm_step.c - fleetsim's alpha_beta LLM step model, measured: a small
 * transformer layer stack run on this CPU as an LLM engine runs one
 * scheduler step (a batch of prefill chunks and decode tokens over their
 * cached context), timed over a grid of step compositions, and the least
 * squares fit (GSL) of
 *
 *   step_s = overhead_s + per_prefill_token_s x prefill tokens
 *          + per_decode_seq_s x decoding sequences
 *          + per_context_token_s x context tokens read
 *
 * to the measured steps, the model sim/serve/llm_model.c (llm_step_s) costs
 * a step with. The fit goes into a calibration profile under "llm_step"
 * (schema in realbench/README.md), which a scenario reads with
 * models.<m>.llm.step: {model: alpha_beta, calibration: P.json}.
 *
 * The kernel, per layer: the tokens of the step (T rows of d_model) times
 * the QKV weights; per sequence, its queries against the keys of its whole
 * context (cached + new: scores n x (c + n)) and the scores times the
 * values (stored transposed); the output projection and a two-matrix MLP
 * (ReLU between). FP32, one thread, the kernels of kernels.c. Layer norms,
 * softmax and sampling are not modelled (elementwise, small beside the
 * GEMMs), nor multiple heads (the same multiply-adds as one head of
 * d_model). The KV cache is a buffer of random values as long as the
 * longest context: only its size and reads matter for the time.
 */
#include "realbench.h"

#include <cjson/cJSON.h>
#include <gsl/gsl_multifit.h>
#include <gsl/gsl_rng.h>
#include <gsl/gsl_sort.h>
#include <gsl/gsl_statistics_double.h>

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

void rb_llm_opts_default(rb_llm_opts *o)
{
    memset(o, 0, sizeof *o);
    o->layers = 2;
    o->d_model = 128;
    o->d_ff = 512;
    o->reps = 7;
    o->warmup = 2;
    o->seed = 42;
}

/* ---- the fit ---------------------------------------------------------- */

/* Least squares over the active coefficients (1 in active[]); 0 and
 * coef[] set (0 for the inactive ones), or -1 when GSL fails or the steps
 * do not determine them (singular values below 1e-12 of the largest). */
static int fit_active(const rb_llm_step *steps, int n, const int active[4], double coef[4])
{
    int cols[4], p = 0;
    for (int a = 0; a < 4; a++)
        if (active[a])
            cols[p++] = a;
    if (p == 0 || n <= p)
        return -1;
    gsl_matrix *X = gsl_matrix_alloc((size_t)n, (size_t)p);
    gsl_vector *y = gsl_vector_alloc((size_t)n), *c = gsl_vector_alloc((size_t)p);
    gsl_matrix *cov = gsl_matrix_alloc((size_t)p, (size_t)p);
    gsl_multifit_linear_workspace *w = gsl_multifit_linear_alloc((size_t)n, (size_t)p);
    /* each row divided by its latency: the residuals minimised are
     * relative, so a 0.1 ms decode step counts as much as a 50 ms prefill
     * (step times span three decades; absolute residuals would leave the
     * overhead to the noise of the longest steps) */
    for (int i = 0; i < n; i++) {
        double s = 1.0 / steps[i].latency_s;
        double x[4] = {1, steps[i].prefill_tokens, steps[i].decode_seqs,
                       steps[i].context_tokens};
        for (int k = 0; k < p; k++)
            gsl_matrix_set(X, (size_t)i, (size_t)k, x[cols[k]] * s);
        gsl_vector_set(y, (size_t)i, 1.0);
    }
    double chisq;
    int rc = gsl_multifit_linear(X, y, c, cov, &chisq, w);
    if (rc == 0 && gsl_multifit_linear_rank(1e-12, w) != (size_t)p)
        rc = -1;
    for (int a = 0; a < 4; a++)
        coef[a] = 0;
    for (int k = 0; rc == 0 && k < p; k++)
        coef[cols[k]] = gsl_vector_get(c, (size_t)k);
    gsl_multifit_linear_free(w);
    gsl_matrix_free(cov);
    gsl_vector_free(c);
    gsl_vector_free(y);
    gsl_matrix_free(X);
    return rc == 0 ? 0 : -1;
}

int rb_llm_fit_steps(const rb_llm_step *steps, int n, rb_llm_fit *fit)
{
    int active[4] = {1, 1, 1, 1};
    double coef[4];
    memset(fit, 0, sizeof *fit);
    if (n < 5)
        return -1;
    for (int i = 0; i < n; i++)
        if (!(steps[i].latency_s > 0) || !isfinite(steps[i].latency_s))
            return -1;
    /* A time is never negative: a coefficient the fit puts below 0 (its
     * true value within the noise of 0, as a CPU loop's fixed cost is) is
     * fixed at 0 and the others fitted again, the most negative first,
     * until none is (the active-set step of non-negative least squares,
     * Lawson & Hanson; GSL has no NNLS). Steps from coefficients >= 0
     * never take this path. */
    for (;;) {
        if (fit_active(steps, n, active, coef))
            return -1;
        int worst = -1;
        for (int a = 0; a < 4; a++)
            if (active[a] && coef[a] < 0 && (worst < 0 || coef[a] < coef[worst]))
                worst = a;
        if (worst < 0)
            break;
        active[worst] = 0;
        fit->zeroed |= 1 << worst;
    }
    fit->overhead_s = coef[0];
    fit->per_prefill_token_s = coef[1];
    fit->per_decode_seq_s = coef[2];
    fit->per_context_token_s = coef[3];
    /* on the steps' own scale: residual sd and r^2 in seconds */
    double mean = 0, sse = 0, sst = 0;
    int p = 0;
    for (int a = 0; a < 4; a++)
        p += active[a];
    for (int i = 0; i < n; i++)
        mean += steps[i].latency_s / n;
    for (int i = 0; i < n; i++) {
        double e = steps[i].latency_s - rb_llm_fit_apply(fit, &steps[i]);
        sse += e * e;
        sst += (steps[i].latency_s - mean) * (steps[i].latency_s - mean);
    }
    fit->residual_sd_s = sqrt(sse / (n - p));
    fit->r2 = sst > 0 ? 1 - sse / sst : 1;
    return 0;
}

double rb_llm_fit_apply(const rb_llm_fit *f, const rb_llm_step *s)
{
    return f->overhead_s + f->per_prefill_token_s * s->prefill_tokens +
           f->per_decode_seq_s * s->decode_seqs + f->per_context_token_s * s->context_tokens;
}

/* ---- the kernel ------------------------------------------------------- */

/* One sequence's part of a step, as fleetsim's llm_chunk: n new tokens on
 * c cached ones; decode = 1 for one token after the whole prompt. */
typedef struct {
    int n, c, decode;
} chunk;

typedef struct {
    int L, d, f, max_tokens, max_ctx;
    float *wqkv, *wo, *w1, *w2;   /* per layer, consecutive */
    float *x, *qkv, *q, *att, *o, *h, *y;
    float *kcache, *vtcache;      /* [max_ctx][d], [d][max_ctx] (any ctx reads a prefix) */
    float *scores;                /* [max_tokens][max_ctx] */
} net;

static float *rnd(gsl_rng *r, size_t n)
{
    float *p = malloc(sizeof *p * (n ? n : 1));
    for (size_t i = 0; p && i < n; i++)
        p[i] = (float)(gsl_rng_uniform(r) - 0.5) * 0.1f;
    return p;
}

static void net_free(net *m)
{
    free(m->wqkv);
    free(m->wo);
    free(m->w1);
    free(m->w2);
    free(m->x);
    free(m->qkv);
    free(m->q);
    free(m->att);
    free(m->o);
    free(m->h);
    free(m->y);
    free(m->kcache);
    free(m->vtcache);
    free(m->scores);
}

static int net_init(net *m, const rb_llm_opts *o, int max_tokens, int max_ctx)
{
    gsl_rng *r = gsl_rng_alloc(gsl_rng_mt19937);
    gsl_rng_set(r, o->seed);
    size_t L = (size_t)o->layers, d = (size_t)o->d_model, f = (size_t)o->d_ff;
    size_t T = (size_t)max_tokens, C = (size_t)max_ctx;
    *m = (net){ .L = o->layers, .d = o->d_model, .f = o->d_ff, .max_tokens = max_tokens,
                .max_ctx = max_ctx };
    m->wqkv = rnd(r, L * 3 * d * d);
    m->wo = rnd(r, L * d * d);
    m->w1 = rnd(r, L * f * d);
    m->w2 = rnd(r, L * d * f);
    m->x = rnd(r, T * d);
    m->qkv = rnd(r, T * 3 * d);
    m->q = rnd(r, T * d);
    m->att = rnd(r, T * d);
    m->o = rnd(r, T * d);
    m->h = rnd(r, T * f);
    m->y = rnd(r, T * d);
    m->kcache = rnd(r, C * d);
    m->vtcache = rnd(r, d * C);
    m->scores = rnd(r, T * C);
    gsl_rng_free(r);
    int ok = m->wqkv && m->wo && m->w1 && m->w2 && m->x && m->qkv && m->q && m->att && m->o &&
             m->h && m->y && m->kcache && m->vtcache && m->scores;
    if (!ok)
        net_free(m);
    return ok ? 0 : -1;
}

/* One step of the chunks through every layer. Every layer reads the same
 * input x and writes y: fed back, step after step, the values would shrink
 * into subnormal floats, which the CPU computes many times slower. */
static void net_step(net *m, const chunk *ch, int n_ch)
{
    int d = m->d, f = m->f, T = 0;
    for (int i = 0; i < n_ch; i++)
        T += ch[i].n;
    for (int l = 0; l < m->L; l++) {
        const float *wqkv = m->wqkv + (size_t)l * 3 * d * d, *wo = m->wo + (size_t)l * d * d;
        const float *w1 = m->w1 + (size_t)l * f * d, *w2 = m->w2 + (size_t)l * d * f;
        rb_gemm_f32(m->x, wqkv, m->qkv, 3 * d, T, d, 0, 3 * d);
        for (int i = 0, row = 0; i < n_ch; row += ch[i].n, i++) {
            int n = ch[i].n, ctx = ch[i].c + ch[i].n;
            for (int r = 0; r < n; r++) /* the queries, contiguous */
                memcpy(m->q + (size_t)r * d, m->qkv + (size_t)(row + r) * 3 * d,
                       sizeof(float) * (size_t)d);
            rb_gemm_f32(m->q, m->kcache, m->scores, ctx, n, d, 0, ctx);
            rb_gemm_f32(m->scores, m->vtcache, m->att + (size_t)row * d, d, n, ctx, 0, d);
        }
        rb_gemm_f32(m->att, wo, m->o, d, T, d, 0, d);
        rb_gemm_f32(m->o, w1, m->h, f, T, d, 0, f);
        for (size_t k = 0; k < (size_t)T * f; k++)
            m->h[k] = m->h[k] > 0 ? m->h[k] : 0;
        rb_gemm_f32(m->h, w2, m->y, d, T, f, 0, d);
    }
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* The grid: prefill alone (whole prompts, and chunks on cached context),
 * decode alone (batch x context), and the two mixed, as chunked prefill
 * mixes them. Each row: prefill chunk count, its n and c; decode count,
 * their context. */
static const struct {
    int n_prefill, prefill_n, prefill_c, n_decode, decode_c;
} GRID[] = {
    {1, 32, 0, 0, 0},     {1, 64, 0, 0, 0},     {1, 128, 0, 0, 0},   {1, 256, 0, 0, 0},
    {2, 64, 0, 0, 0},     {1, 64, 256, 0, 0},   {1, 64, 768, 0, 0},  {1, 128, 512, 0, 0},
    {0, 0, 0, 1, 128},    {0, 0, 0, 1, 1024},   {0, 0, 0, 4, 128},   {0, 0, 0, 4, 512},
    {0, 0, 0, 16, 128},   {0, 0, 0, 16, 512},   {0, 0, 0, 16, 1024}, {0, 0, 0, 32, 256},
    {0, 0, 0, 32, 1024},  {0, 0, 0, 64, 128},   {1, 64, 0, 8, 512},  {1, 128, 256, 16, 256},
    {1, 32, 0, 32, 1024}, {2, 32, 128, 4, 128},
};
enum { N_GRID = sizeof GRID / sizeof GRID[0] };

int rb_llm_bench(const rb_llm_opts *o, rb_llm_step **out, int *n_out, FILE *log, FILE *err)
{
    *out = NULL;
    *n_out = 0;
    if (o->layers < 1 || o->d_model < 1 || o->d_ff < 1 || o->reps < 1 || o->warmup < 0) {
        fprintf(err, "realbench llm-step: layers, d-model, d-ff and reps must be >= 1\n");
        return 2;
    }
    int max_tokens = 0, max_ctx = 0;
    for (int g = 0; g < N_GRID; g++) {
        int t = GRID[g].n_prefill * GRID[g].prefill_n + GRID[g].n_decode;
        int c = GRID[g].prefill_c + GRID[g].prefill_n;
        if (GRID[g].decode_c + 1 > c)
            c = GRID[g].decode_c + 1;
        max_tokens = t > max_tokens ? t : max_tokens;
        max_ctx = c > max_ctx ? c : max_ctx;
    }
    net m;
    if (net_init(&m, o, max_tokens, max_ctx)) {
        fprintf(err, "realbench llm-step: out of memory\n");
        return 1;
    }
    rb_llm_step *steps = calloc(N_GRID, sizeof *steps);
    double *t = malloc(sizeof *t * (size_t)o->reps);
    chunk ch[128];
    for (int g = 0; g < N_GRID && steps && t; g++) {
        int k = 0;
        rb_llm_step *s = &steps[g];
        for (int i = 0; i < GRID[g].n_prefill; i++) {
            ch[k++] = (chunk){ GRID[g].prefill_n, GRID[g].prefill_c, 0 };
            s->prefill_tokens += GRID[g].prefill_n;
            s->context_tokens += GRID[g].prefill_c;
        }
        for (int i = 0; i < GRID[g].n_decode; i++) {
            ch[k++] = (chunk){ 1, GRID[g].decode_c, 1 };
            s->decode_seqs += 1;
            s->context_tokens += GRID[g].decode_c;
        }
        for (int r = 0; r < o->warmup; r++)
            net_step(&m, ch, k);
        for (int r = 0; r < o->reps; r++) {
            double t0 = now_s();
            net_step(&m, ch, k);
            t[r] = now_s() - t0;
        }
        gsl_sort(t, 1, (size_t)o->reps);
        s->latency_s = gsl_stats_median_from_sorted_data(t, 1, (size_t)o->reps);
        s->reps = o->reps;
        if (log && !o->quiet)
            fprintf(log, "  step %2d: prefill %4.0f tokens, decode %3.0f seqs, context %6.0f: "
                    "%.6f s\n", g, s->prefill_tokens, s->decode_seqs, s->context_tokens,
                    s->latency_s);
    }
    free(t);
    net_free(&m);
    if (!steps) {
        fprintf(err, "realbench llm-step: out of memory\n");
        return 1;
    }
    *out = steps;
    *n_out = N_GRID;
    return 0;
}

/* ---- the profile's "llm_step" ----------------------------------------- */

cJSON *rb_llm_step_json(const rb_llm_opts *o, const rb_llm_step *steps, int n,
                        const rb_llm_fit *fit)
{
    cJSON *j = cJSON_CreateObject();
    cJSON *k = cJSON_AddObjectToObject(j, "kernel");
    cJSON_AddStringToObject(k, "what", "transformer layer stack: QKV, attention over the "
                            "cached context, output projection, MLP (FP32, one thread)");
    cJSON_AddNumberToObject(k, "layers", o->layers);
    cJSON_AddNumberToObject(k, "d_model", o->d_model);
    cJSON_AddNumberToObject(k, "d_ff", o->d_ff);
    cJSON_AddStringToObject(k, "impl", "cpu-fp32-dot");
    cJSON_AddNumberToObject(j, "overhead_s", fit->overhead_s);
    cJSON_AddNumberToObject(j, "per_prefill_token_s", fit->per_prefill_token_s);
    cJSON_AddNumberToObject(j, "per_decode_seq_s", fit->per_decode_seq_s);
    cJSON_AddNumberToObject(j, "per_context_token_s", fit->per_context_token_s);
    cJSON_AddNumberToObject(j, "residual_sd_s", fit->residual_sd_s);
    cJSON_AddNumberToObject(j, "r2", fit->r2);
    cJSON_AddStringToObject(j, "method", "gsl_multifit_linear on the medians, rows divided by "
                            "their latency (relative residuals); a coefficient below 0 fixed "
                            "at 0 and the rest refitted");
    cJSON *z = cJSON_AddArrayToObject(j, "fixed_at_zero");
    static const char *const coef[] = {"overhead_s", "per_prefill_token_s", "per_decode_seq_s",
                                       "per_context_token_s"};
    for (int a = 0; a < 4; a++)
        if (fit->zeroed & (1 << a))
            cJSON_AddItemToArray(z, cJSON_CreateString(coef[a]));
    cJSON *st = cJSON_AddObjectToObject(j, "steps");
    const char *names[] = {"prefill_tokens", "decode_seqs", "context_tokens", "latency_s",
                           "reps"};
    for (int a = 0; a < 5; a++) {
        cJSON *arr = cJSON_AddArrayToObject(st, names[a]);
        for (int i = 0; i < n; i++) {
            double v = a == 0 ? steps[i].prefill_tokens
                       : a == 1 ? steps[i].decode_seqs
                       : a == 2 ? steps[i].context_tokens
                       : a == 3 ? steps[i].latency_s
                                : steps[i].reps;
            cJSON_AddItemToArray(arr, cJSON_CreateNumber(v));
        }
    }
    return j;
}

/* ---- the layer stack for other loops (llm_loop.c) --------------------- */

struct rb_llm_net {
    net m;
    chunk *ch;
    int cap;
};

rb_llm_net *rb_llm_net_new(const rb_llm_opts *o, int max_tokens, int max_ctx)
{
    rb_llm_net *x = calloc(1, sizeof *x);
    if (!x || net_init(&x->m, o, max_tokens, max_ctx)) {
        free(x);
        return NULL;
    }
    return x;
}

void rb_llm_net_step(rb_llm_net *x, const rb_llm_chunk *ch, int n)
{
    if (n > x->cap) {
        chunk *c = realloc(x->ch, sizeof *c * (size_t)n);
        if (!c)
            return;
        x->ch = c;
        x->cap = n;
    }
    for (int i = 0; i < n; i++)
        x->ch[i] = (chunk){ ch[i].n, ch[i].c, ch[i].decode };
    net_step(&x->m, x->ch, n);
}

void rb_llm_net_free(rb_llm_net *x)
{
    if (!x)
        return;
    net_free(&x->m);
    free(x->ch);
    free(x);
}
