/*
 * llm_layer.c - the decoder layer stack of `realbench llm-step` in three
 * precisions (llm_layer.h). Per layer and step of T tokens:
 *
 *   qkv = x Wqkv^T            (T x (d + 2 kv_heads dh))
 *   per chunk, per KV head:   its new K, V rows into the cache at c..c+n-1
 *   per chunk, per head h:    s = (q_h / sqrt(dh)) K_g^T  (n x ctx, g the
 *                             head's KV group), causal softmax (row r sees
 *                             c + r + 1 keys), a_h = p V_g
 *   x += a Wo^T;  x += relu(x W1^T) W2^T
 *
 * Layer norms and sampling are left out (elementwise, small beside the
 * GEMMs). Every GEMM has the one form C = A B^T (both operands
 * K-contiguous); the value product is an axpy over the cached rows.
 *
 * FP32: the kernels of kernels.c. FP16: weights and the KV cache stored as
 * IEEE half (_Float16; with F16C, GCC converts eight at a time), GEMM
 * activations rounded to half, products summed in FP32. INT8: weights
 * quantised symmetrically per output row (scale max|w|/127), activations
 * per token (per row) when they enter a GEMM, K and V per token as they are
 * written into the cache, the softmax probabilities per row with each
 * value row's scale folded in (p_t s_t); int8 x int8 products summed in
 * int32 (rb_gemm_s8), then scaled back to FP32. Softmax, the residual adds
 * and ReLU run in FP32 in every precision.
 */
#include "llm_layer.h"

#include <gsl/gsl_rng.h>

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* IEEE half: C's _Float16 where the compiler has it (GCC 12, clang 15 on
 * x86-64), else clang's __fp16, the same format as storage only (every
 * value is converted to float before arithmetic here either way). */
#if defined(__FLT16_MANT_DIG__)
typedef _Float16 f16;
#elif defined(__clang__)
typedef __fp16 f16;
#else
#error "no IEEE half-precision type (_Float16 or __fp16)"
#endif

enum { W_QKV, W_O, W_UP, W_DOWN, N_W };

struct rb_llm_net {
    rb_llm_precision prec;
    int L, d, f, H, Hkv, dh, kvd, dq, T, C;
    size_t wsize[N_W];   /* elements of one layer's matrix */
    int wrows[N_W];      /* its rows (N) */
    float *w32[N_W];     /* all layers consecutive (FP32: also the masters) */
    f16 *w16[N_W];
    int8_t *w8[N_W];
    float *ws[N_W];      /* INT8 per-row scales */
    /* KV cache [Hkv][C][dh] (and per-token scales [Hkv][C] for INT8) */
    float *k32, *v32;
    f16 *k16, *v16;
    int8_t *k8, *v8;
    float *ks, *vs;
    float *x, *cur, *qkv, *q, *sc, *att, *o, *h;
    f16 *a16;
    int8_t *a8;
    float *as;
    int32_t *acc;
    float *pw;        /* INT8 attention: one row of p_t s_t, */
    int8_t *p8;       /* its int8 form */
    int32_t *accv;    /* and the dh sums */
    int T_last;
};

/* ---- kernels ----------------------------------------------------------- */

static void dot_f16_1x4(const f16 *restrict a, const f16 *restrict b0, const f16 *restrict b1,
                        const f16 *restrict b2, const f16 *restrict b3, int K, float out[4])
{
    float s0 = 0, s1 = 0, s2 = 0, s3 = 0;
#pragma omp simd reduction(+ : s0, s1, s2, s3)
    for (int k = 0; k < K; k++) {
        float x = (float)a[k];
        s0 += x * (float)b0[k];
        s1 += x * (float)b1[k];
        s2 += x * (float)b2[k];
        s3 += x * (float)b3[k];
    }
    out[0] = s0, out[1] = s1, out[2] = s2, out[3] = s3;
}

static float dot_f16(const f16 *restrict a, const f16 *restrict b, int K)
{
    float s = 0;
#pragma omp simd reduction(+ : s)
    for (int k = 0; k < K; k++)
        s += (float)a[k] * (float)b[k];
    return s;
}

/* C[m][n] = sum_k A[m][k] B[n][k], n0 <= n < n1, as rb_gemm_f32. */
static void gemm_f16(const f16 *A, const f16 *B, float *C, int ldc, int M, int K, int n0, int n1)
{
    int n = n0;
    for (; n + 4 <= n1; n += 4) {
        const f16 *b0 = B + (size_t)n * K, *b1 = b0 + K, *b2 = b1 + K, *b3 = b2 + K;
        for (int m = 0; m < M; m++) {
            float o[4];
            dot_f16_1x4(A + (size_t)m * K, b0, b1, b2, b3, K, o);
            float *c = C + (size_t)m * ldc + n;
            c[0] = o[0], c[1] = o[1], c[2] = o[2], c[3] = o[3];
        }
    }
    for (; n < n1; n++)
        for (int m = 0; m < M; m++)
            C[(size_t)m * ldc + n] = dot_f16(A + (size_t)m * K, B + (size_t)n * K, K);
}

/* One row to int8, symmetric: q = round(x / s), s = max|x| / 127. */
static float quant_row(const float *restrict x, int8_t *restrict q, int K)
{
    float mx = 0;
    for (int k = 0; k < K; k++)
        mx = fabsf(x[k]) > mx ? fabsf(x[k]) : mx;
    float s = mx > 0 ? mx / 127.0f : 1.0f, inv = 1.0f / s;
    for (int k = 0; k < K; k++) {
        float v = x[k] * inv;
        q[k] = (int8_t)(v >= 0 ? (int)(v + 0.5f) : -(int)(-v + 0.5f));
    }
    return s;
}

/* The B operand of a GEMM in the net's precision: N rows of K. */
typedef struct {
    const float *f32;
    const f16 *h;
    const int8_t *s8;
    const float *scale; /* INT8: per row */
    int K;
} bmat;

static bmat weight(const rb_llm_net *m, int w, int layer)
{
    size_t off = (size_t)layer * m->wsize[w];
    int K = (int)(m->wsize[w] / (size_t)m->wrows[w]);
    return (bmat){ m->w32[w] ? m->w32[w] + off : NULL, m->w16[w] ? m->w16[w] + off : NULL,
                   m->w8[w] ? m->w8[w] + off : NULL,
                   m->ws[w] ? m->ws[w] + (size_t)layer * m->wrows[w] : NULL, K };
}

/* C[m][n] (row stride ldc) = A[m] . B[n] for n0 <= n < n1, A FP32 M x K. */
static void mm(rb_llm_net *m, const float *A, int M, bmat B, float *C, int ldc, int n0, int n1)
{
    int K = B.K;
    size_t mk = (size_t)M * K;
    switch (m->prec) {
    case RB_LLM_FP32:
        rb_gemm_f32(A, B.f32, C, ldc, M, K, n0, n1);
        break;
    case RB_LLM_FP16:
        for (size_t i = 0; i < mk; i++)
            m->a16[i] = (f16)A[i];
        gemm_f16(m->a16, B.h, C, ldc, M, K, n0, n1);
        break;
    default:
        for (int r = 0; r < M; r++)
            m->as[r] = quant_row(A + (size_t)r * K, m->a8 + (size_t)r * K, K);
        rb_gemm_s8(m->a8, B.s8, m->acc, n1, M, K, n0, n1);
        for (int r = 0; r < M; r++)
            for (int n = n0; n < n1; n++)
                C[(size_t)r * ldc + n] = (float)m->acc[(size_t)r * n1 + n] * m->as[r] * B.scale[n];
    }
}

/* ---- the net ------------------------------------------------------------- */

static float *rnd(gsl_rng *r, size_t n, double half_width)
{
    float *p = malloc(sizeof *p * (n ? n : 1));
    for (size_t i = 0; p && i < n; i++)
        p[i] = (float)((gsl_rng_uniform(r) * 2 - 1) * half_width);
    return p;
}

void rb_llm_net_free(rb_llm_net *m)
{
    if (!m)
        return;
    for (int w = 0; w < N_W; w++) {
        free(m->w32[w]);
        free(m->w16[w]);
        free(m->w8[w]);
        free(m->ws[w]);
    }
    void *bufs[] = {m->k32, m->v32, m->k16, m->v16, m->k8, m->v8, m->ks, m->vs, m->x,
                    m->cur, m->qkv, m->q, m->sc, m->att, m->o, m->h, m->a16, m->a8,
                    m->as, m->acc, m->pw, m->p8, m->accv};
    for (size_t i = 0; i < sizeof bufs / sizeof *bufs; i++)
        free(bufs[i]);
    free(m);
}

rb_llm_net *rb_llm_net_new(const rb_llm_opts *o, rb_llm_precision prec, int max_tokens,
                           int max_ctx)
{
    if (o->layers < 1 || o->d_model < 1 || o->d_ff < 1 || o->heads < 1 || o->kv_heads < 1 ||
        o->d_model % o->heads || o->heads % o->kv_heads || max_tokens < 1 || max_ctx < 1 ||
        (unsigned)prec >= RB_LLM_N_PREC)
        return NULL;
    rb_llm_net *m = calloc(1, sizeof *m);
    if (!m)
        return NULL;
    m->prec = prec;
    m->L = o->layers, m->d = o->d_model, m->f = o->d_ff, m->H = o->heads, m->Hkv = o->kv_heads;
    m->dh = m->d / m->H, m->kvd = m->Hkv * m->dh, m->dq = m->d + 2 * m->kvd;
    m->T = max_tokens, m->C = max_ctx;
    size_t L = (size_t)m->L, d = (size_t)m->d, f = (size_t)m->f, T = (size_t)m->T;
    size_t C = (size_t)m->C, dh = (size_t)m->dh, Hkv = (size_t)m->Hkv;
    int rows[N_W] = {m->dq, m->d, m->f, m->d}, cols[N_W] = {m->d, m->d, m->d, m->f};
    gsl_rng *r = gsl_rng_alloc(gsl_rng_mt19937);
    int ok = r != NULL;
    if (r)
        gsl_rng_set(r, o->seed);
    /* weights uniform with variance 1/K: a product keeps its input's size,
     * so values neither vanish into subnormals nor grow over the layers */
    for (int w = 0; ok && w < N_W; w++) {
        m->wrows[w] = rows[w];
        m->wsize[w] = (size_t)rows[w] * (size_t)cols[w];
        ok = (m->w32[w] = rnd(r, L * m->wsize[w], sqrt(3.0 / cols[w]))) != NULL;
    }
    /* input and cache values of the size the projections give them */
    if (ok) {
        m->x = rnd(r, T * d, 0.5);
        m->k32 = rnd(r, Hkv * C * dh, 0.5);
        m->v32 = rnd(r, Hkv * C * dh, 0.5);
    }
    if (r)
        gsl_rng_free(r);
    size_t wide = T * (size_t)(m->dq > m->f ? m->dq : m->f);
    size_t widest = wide > T * C ? wide : T * C;
    m->cur = malloc(sizeof(float) * T * d);
    m->qkv = malloc(sizeof(float) * T * (size_t)m->dq);
    m->q = malloc(sizeof(float) * T * dh);
    m->sc = malloc(sizeof(float) * T * C);
    m->att = malloc(sizeof(float) * T * d);
    m->o = malloc(sizeof(float) * T * d);
    m->h = malloc(sizeof(float) * T * f);
    ok = ok && m->x && m->k32 && m->v32 && m->cur && m->qkv && m->q && m->sc && m->att &&
         m->o && m->h;
    if (ok && prec == RB_LLM_FP16) {
        for (int w = 0; ok && w < N_W; w++) {
            size_t n = L * m->wsize[w];
            if ((m->w16[w] = malloc(sizeof(f16) * n)))
                for (size_t i = 0; i < n; i++)
                    m->w16[w][i] = (f16)m->w32[w][i];
            ok = m->w16[w] != NULL;
        }
        m->k16 = malloc(sizeof(f16) * Hkv * C * dh);
        m->v16 = malloc(sizeof(f16) * Hkv * C * dh);
        m->a16 = malloc(sizeof(f16) * widest);
        ok = ok && m->k16 && m->v16 && m->a16;
        for (size_t i = 0; ok && i < Hkv * C * dh; i++)
            m->k16[i] = (f16)m->k32[i], m->v16[i] = (f16)m->v32[i];
    } else if (ok && prec == RB_LLM_INT8) {
        for (int w = 0; ok && w < N_W; w++) {
            size_t nrows = L * (size_t)m->wrows[w], K = (size_t)cols[w];
            m->w8[w] = malloc(L * m->wsize[w]);
            m->ws[w] = malloc(sizeof(float) * nrows);
            ok = m->w8[w] && m->ws[w];
            for (size_t i = 0; ok && i < nrows; i++)
                m->ws[w][i] = quant_row(m->w32[w] + i * K, m->w8[w] + i * K, (int)K);
        }
        m->k8 = malloc(Hkv * C * dh);
        m->v8 = malloc(Hkv * C * dh);
        m->ks = malloc(sizeof(float) * Hkv * C);
        m->vs = malloc(sizeof(float) * Hkv * C);
        m->a8 = malloc(widest);
        m->as = malloc(sizeof(float) * T);
        m->acc = malloc(sizeof(int32_t) * widest);
        m->pw = malloc(sizeof(float) * C);
        m->p8 = malloc(C);
        m->accv = malloc(sizeof(int32_t) * dh);
        ok = ok && m->k8 && m->v8 && m->ks && m->vs && m->a8 && m->as && m->acc && m->pw &&
             m->p8 && m->accv;
        for (size_t i = 0; ok && i < Hkv * C; i++) {
            m->ks[i] = quant_row(m->k32 + i * dh, m->k8 + i * dh, (int)dh);
            m->vs[i] = quant_row(m->v32 + i * dh, m->v8 + i * dh, (int)dh);
        }
    }
    if (ok && prec != RB_LLM_FP32) { /* the masters are not what this precision reads */
        for (int w = 0; w < N_W; w++) {
            free(m->w32[w]);
            m->w32[w] = NULL;
        }
        free(m->k32);
        free(m->v32);
        m->k32 = m->v32 = NULL;
    }
    if (!ok) {
        rb_llm_net_free(m);
        return NULL;
    }
    return m;
}

/* The chunk's new keys and values (rows of qkv) into KV head g's cache. */
static void cache_write(rb_llm_net *m, const float *qkv, int n, int c, int g)
{
    size_t dh = (size_t)m->dh, base = (size_t)g * m->C;
    for (int r = 0; r < n; r++) {
        const float *k = qkv + (size_t)r * m->dq + m->d + (size_t)g * dh;
        const float *v = k + m->kvd;
        size_t pos = base + (size_t)(c + r);
        switch (m->prec) {
        case RB_LLM_FP32:
            memcpy(m->k32 + pos * dh, k, sizeof(float) * dh);
            memcpy(m->v32 + pos * dh, v, sizeof(float) * dh);
            break;
        case RB_LLM_FP16:
            for (size_t j = 0; j < dh; j++) {
                m->k16[pos * dh + j] = (f16)k[j];
                m->v16[pos * dh + j] = (f16)v[j];
            }
            break;
        default:
            m->ks[pos] = quant_row(k, m->k8 + pos * dh, (int)dh);
            m->vs[pos] = quant_row(v, m->v8 + pos * dh, (int)dh);
        }
    }
}

/* out[j] (j < dh) = sum_{t < len} p[t] V_g[t][j]. */
static void attend_values(rb_llm_net *m, const float *restrict p, int len, int g,
                          float *restrict out)
{
    int dh = m->dh;
    size_t base = (size_t)g * m->C * dh;
    for (int j = 0; j < dh; j++)
        out[j] = 0;
    if (m->prec == RB_LLM_FP32) {
        const float *v = m->v32 + base;
        for (int t = 0; t < len; t++) {
            float a = p[t];
            const float *restrict vr = v + (size_t)t * dh;
#pragma omp simd
            for (int j = 0; j < dh; j++)
                out[j] += a * vr[j];
        }
    } else if (m->prec == RB_LLM_FP16) {
        const f16 *v = m->v16 + base;
        for (int t = 0; t < len; t++) {
            float a = p[t];
            const f16 *restrict vr = v + (size_t)t * dh;
#pragma omp simd
            for (int j = 0; j < dh; j++)
                out[j] += a * (float)vr[j];
        }
    } else {
        /* p_t s_t (the value row's scale folded in), quantised as one row */
        const int8_t *v = m->v8 + base;
        const float *vs = m->vs + (size_t)g * m->C;
        for (int t = 0; t < len; t++)
            m->pw[t] = p[t] * vs[t];
        float s = quant_row(m->pw, m->p8, len);
        int32_t *restrict acc = m->accv;
        for (int j = 0; j < dh; j++)
            acc[j] = 0;
        for (int t = 0; t < len; t++) {
            int32_t a = m->p8[t];
            const int8_t *restrict vr = v + (size_t)t * dh;
#pragma omp simd
            for (int j = 0; j < dh; j++)
                acc[j] += a * vr[j];
        }
        for (int j = 0; j < dh; j++)
            out[j] = (float)acc[j] * s;
    }
}

/* KV head g's keys as the B operand of the scores: ctx rows of dh. */
static bmat keys(const rb_llm_net *m, int g)
{
    size_t base = (size_t)g * m->C * m->dh;
    return (bmat){ m->k32 ? m->k32 + base : NULL, m->k16 ? m->k16 + base : NULL,
                   m->k8 ? m->k8 + base : NULL, m->ks ? m->ks + (size_t)g * m->C : NULL,
                   m->dh };
}

/* Softmax of the first len scores of a row, in place. */
static void softmax_row(float *s, int len)
{
    float mx = s[0], sum = 0;
    for (int t = 1; t < len; t++)
        mx = s[t] > mx ? s[t] : mx;
    for (int t = 0; t < len; t++) {
        s[t] = expf(s[t] - mx);
        sum += s[t];
    }
    float inv = 1.0f / sum;
    for (int t = 0; t < len; t++)
        s[t] *= inv;
}

void rb_llm_net_step(rb_llm_net *m, const rb_llm_chunk *ch, int n_ch)
{
    int d = m->d, dh = m->dh, f = m->f, T = 0, group = m->H / m->Hkv;
    for (int i = 0; i < n_ch; i++)
        T += ch[i].n;
    for (int i = 0; i < n_ch; i++)
        if (ch[i].n < 1 || ch[i].c < 0 || ch[i].c + ch[i].n > m->C)
            T = m->T + 1;
    if (T > m->T || T < 1)
        return; /* the caller sized the net for its steps */
    float qscale = 1.0f / sqrtf((float)dh);
    memcpy(m->cur, m->x, sizeof(float) * (size_t)T * d);
    for (int l = 0; l < m->L; l++) {
        mm(m, m->cur, T, weight(m, W_QKV, l), m->qkv, m->dq, 0, m->dq);
        for (int i = 0, row = 0; i < n_ch; row += ch[i].n, i++) {
            int n = ch[i].n, c = ch[i].c, ctx = c + n;
            const float *qkv = m->qkv + (size_t)row * m->dq;
            for (int g = 0; g < m->Hkv; g++)
                cache_write(m, qkv, n, c, g);
            for (int h = 0; h < m->H; h++) {
                int g = h / group;
                for (int r = 0; r < n; r++)
                    for (int j = 0; j < dh; j++)
                        m->q[(size_t)r * dh + j] = qkv[(size_t)r * m->dq + h * dh + j] * qscale;
                mm(m, m->q, n, keys(m, g), m->sc, ctx, 0, ctx);
                for (int r = 0; r < n; r++) {
                    float *s = m->sc + (size_t)r * ctx;
                    softmax_row(s, c + r + 1); /* causal: the cache and new tokens up to r */
                    attend_values(m, s, c + r + 1, g,
                                  m->att + (size_t)(row + r) * d + (size_t)h * dh);
                }
            }
        }
        size_t td = (size_t)T * d, tf = (size_t)T * f;
        mm(m, m->att, T, weight(m, W_O, l), m->o, d, 0, d);
        for (size_t k = 0; k < td; k++)
            m->cur[k] += m->o[k];
        mm(m, m->cur, T, weight(m, W_UP, l), m->h, f, 0, f);
        for (size_t k = 0; k < tf; k++)
            m->h[k] = m->h[k] > 0 ? m->h[k] : 0;
        mm(m, m->h, T, weight(m, W_DOWN, l), m->o, d, 0, d);
        for (size_t k = 0; k < td; k++)
            m->cur[k] += m->o[k];
    }
    m->T_last = T;
}

const float *rb_llm_net_output(const rb_llm_net *m, size_t *count)
{
    *count = (size_t)m->T_last * m->d;
    return m->cur;
}
