/*
 * test_llm_step.c - realbench's LLM step measurement: the least-squares fit
 * of the alpha_beta step model recovers the coefficients that made
 * synthetic steps (to within the rounding the design's conditioning
 * allows), holds coefficients at 0 rather than below, refuses steps that
 * do not determine them; on a loop-like record with noise proportional to
 * each step, the mean fit (iteratively reweighted) recovers them within
 * the standard errors the noise gives, where the relative fit is biased
 * low by the factor worked out in closed form; residuals split by step
 * kind as worked out by hand; the CPU
 * kernel runs the grid; `realbench
 * llm-step` writes a profile of its own or adds "llm_step" to one, and
 * profiles are checked on reading.
 */
#include "realbench.h"
#include "testutil.h"

#include <CUnit/Basic.h>
#include <float.h>
#include <gsl/gsl_blas.h>
#include <gsl/gsl_linalg.h>
#include <gsl/gsl_matrix.h>
#include <gsl/gsl_randist.h>
#include <gsl/gsl_rng.h>
#include <math.h>
#include <string.h>

/* Step compositions with every term varied on its own: prefill tokens,
 * decode sequences, context tokens (the grid realbench times, and more). */
static int synthetic(rb_llm_step *s, const double coef[4])
{
    static const double comp[][3] = {
        {32, 0, 0},   {64, 0, 0},    {256, 0, 0},   {64, 0, 768},  {128, 0, 512},
        {0, 1, 128},  {0, 1, 1024},  {0, 4, 2048},  {0, 16, 8192}, {0, 32, 32768},
        {0, 64, 8192}, {64, 8, 4096}, {32, 32, 32768}, {128, 16, 4352},
    };
    int n = (int)(sizeof comp / sizeof *comp);
    for (int i = 0; i < n; i++) {
        s[i] = (rb_llm_step){ .prefill_tokens = comp[i][0], .decode_seqs = comp[i][1],
                              .context_tokens = comp[i][2], .reps = 1 };
        s[i].latency_s = coef[0] + coef[1] * comp[i][0] + coef[2] * comp[i][1] +
                         coef[3] * comp[i][2];
    }
    return n;
}

/* What rounding allows each fitted coefficient. The fit solves the design
 * with rows over their latency; with columns scaled to unit norm (GSL
 * balances them so), a zero-residual least-squares solution z (z_a = c_a x
 * the norm of column a) is found to ||dz|| <~ cond x eps x ||z||, so c_a to
 * that over its column's norm. 16 covers the small constant factors. */
static void tolerances_k(const rb_llm_step *s, int n, const double *c, double *tol, int p)
{
    gsl_matrix *X = gsl_matrix_alloc((size_t)n, (size_t)p);
    gsl_matrix *V = gsl_matrix_alloc((size_t)p, (size_t)p);
    gsl_vector *S = gsl_vector_alloc((size_t)p), *w = gsl_vector_alloc((size_t)p);
    double norm[5], z = 0;
    for (int i = 0; i < n; i++) {
        double x[5] = {1, s[i].prefill_tokens, s[i].decode_seqs, s[i].context_tokens,
                       s[i].prefill_attention_pairs};
        for (int k = 0; k < p; k++)
            gsl_matrix_set(X, (size_t)i, (size_t)k, x[k] / s[i].latency_s);
    }
    for (size_t k = 0; k < (size_t)p; k++) {
        gsl_vector_view col = gsl_matrix_column(X, k);
        norm[k] = gsl_blas_dnrm2(&col.vector);
        gsl_vector_scale(&col.vector, 1 / norm[k]);
        z += c[k] * norm[k] * c[k] * norm[k];
    }
    gsl_linalg_SV_decomp(X, V, S, w);
    double cond = gsl_vector_get(S, 0) / gsl_vector_get(S, (size_t)p - 1);
    CU_ASSERT(cond < 1e4); /* a well-posed grid */
    for (int k = 0; k < p; k++)
        tol[k] = 16 * cond * DBL_EPSILON * sqrt(z) / norm[k];
    gsl_matrix_free(X);
    gsl_matrix_free(V);
    gsl_vector_free(S);
    gsl_vector_free(w);
}

static void tolerances(const rb_llm_step *s, int n, const double c[4], double tol[4])
{
    tolerances_k(s, n, c, tol, 4);
}

/* Steps of prefill chunks (n tokens on c cached), decode batches and mixed
 * steps, timed by all five terms, the prefill attention pairs
 * n (c + (n + 1) / 2) included: chunks of 32 to 1024 tokens alone, on
 * cached context, and beside decodes. */
static int synthetic5(rb_llm_step *s, const double coef[5])
{
    static const double comp[][4] = { /* prefill n, its cached c, decode seqs, their context */
        {32, 0, 0, 0},      {64, 0, 0, 0},       {256, 0, 0, 0},     {1024, 0, 0, 0},
        {64, 768, 0, 0},    {128, 512, 0, 0},    {256, 2048, 0, 0},  {0, 0, 1, 128},
        {0, 0, 1, 1024},    {0, 0, 4, 2048},     {0, 0, 16, 8192},   {0, 0, 32, 32768},
        {0, 0, 64, 8192},   {64, 0, 8, 4096},    {32, 1024, 32, 32768}, {128, 256, 16, 4096},
    };
    int n = (int)(sizeof comp / sizeof *comp);
    for (int i = 0; i < n; i++) {
        double pn = comp[i][0], pc = comp[i][1];
        s[i] = (rb_llm_step){ .prefill_tokens = pn, .decode_seqs = comp[i][2],
                              .context_tokens = pc + comp[i][3], .reps = 1,
                              .prefill_attention_pairs = pn * (pc + (pn + 1) / 2) };
        s[i].latency_s = coef[0] + coef[1] * s[i].prefill_tokens + coef[2] * s[i].decode_seqs +
                         coef[3] * s[i].context_tokens + coef[4] * s[i].prefill_attention_pairs;
    }
    return n;
}

/* The fit recovers five known coefficients, the prefill attention pair's
 * included, from steps they made: to rounding, r2 1. */
static void test_fit_recovers_attention(void)
{
    const double sets[][5] = {{5e-3, 1e-4, 5e-4, 2e-8, 1e-9},
                              {1e-6, 8e-6, 7.5e-6, 1.3e-7, 1.8e-7}, /* the CPU profile's */
                              {2e-2, 1e-6, 1e-3, 1e-9, 5e-11}};
    for (size_t k = 0; k < sizeof sets / sizeof *sets; k++) {
        rb_llm_step s[32];
        int n = synthetic5(s, sets[k]);
        CU_ASSERT_DOUBLE_EQUAL(s[4].prefill_attention_pairs, 64 * (768 + 32.5), 0);
        rb_llm_fit f;
        CU_ASSERT_EQUAL_FATAL(rb_llm_fit_steps(s, n, &f), 0);
        double tol[5];
        tolerances_k(s, n, sets[k], tol, 5);
        double got[5] = {f.overhead_s, f.per_prefill_token_s, f.per_decode_seq_s,
                         f.per_context_token_s, f.per_prefill_attention_s};
        for (int a = 0; a < 5; a++) {
            CU_ASSERT(tol[a] < 1e-8 * sets[k][a]);
            CU_ASSERT_DOUBLE_EQUAL(got[a], sets[k][a], tol[a]);
        }
        CU_ASSERT_EQUAL(f.zeroed, 0);
        CU_ASSERT_DOUBLE_EQUAL(f.r2, 1, 1e-9);
        CU_ASSERT_DOUBLE_EQUAL(rb_llm_fit_apply(&f, &s[6]), s[6].latency_s,
                               1e-12 * s[6].latency_s);
    }
    /* the same steps fitted without the pairs (four terms, as an older CSV
     * gives them) cannot follow the square: r2 below 1 */
    rb_llm_step s[32];
    int n = synthetic5(s, sets[1]);
    for (int i = 0; i < n; i++)
        s[i].prefill_attention_pairs = 0;
    rb_llm_fit f;
    CU_ASSERT_EQUAL_FATAL(rb_llm_fit_steps(s, n, &f), 0);
    CU_ASSERT_EQUAL(f.per_prefill_attention_s, 0);
    CU_ASSERT(f.r2 < 0.99);
}

static void test_fit_recovers(void)
{
    /* an 8B model's flavour of numbers: 5 ms a step, 0.1 ms a prompt
     * token, 0.5 ms a decoding sequence, 20 ns a context token */
    const double sets[][4] = {{5e-3, 1e-4, 5e-4, 2e-8}, {1e-6, 3e-5, 2e-5, 5e-8},
                              {2e-2, 1e-6, 1e-3, 1e-9}};
    for (size_t k = 0; k < sizeof sets / sizeof *sets; k++) {
        rb_llm_step s[32];
        int n = synthetic(s, sets[k]);
        rb_llm_fit f;
        CU_ASSERT_EQUAL_FATAL(rb_llm_fit_steps(s, n, &f), 0);
        double tol[4];
        tolerances(s, n, sets[k], tol);
        double got[4] = {f.overhead_s, f.per_prefill_token_s, f.per_decode_seq_s,
                         f.per_context_token_s};
        for (int a = 0; a < 4; a++) {
            CU_ASSERT(tol[a] < 1e-9 * sets[k][a]); /* "exactly", within rounding */
            CU_ASSERT_DOUBLE_EQUAL(got[a], sets[k][a], tol[a]);
        }
        CU_ASSERT_EQUAL(f.zeroed, 0);
        CU_ASSERT_DOUBLE_EQUAL(f.r2, 1, 1e-9);
        CU_ASSERT(f.residual_sd_s < 1e-9 * s[0].latency_s);
        CU_ASSERT_DOUBLE_EQUAL(rb_llm_fit_apply(&f, &s[5]), s[5].latency_s,
                               1e-12 * s[5].latency_s);
    }
}

/* Steps made with a negative fixed cost (as noise can make a CPU loop's
 * look): the overhead is held at 0 and the other three refitted, all >= 0;
 * a true 0 comes out as 0 (or within rounding of it, never below). */
static void test_fit_non_negative(void)
{
    rb_llm_step s[32];
    const double neg[4] = {-2e-4, 1e-4, 5e-4, 2e-8};
    int n = synthetic(s, neg);
    for (int i = 0; i < n; i++)
        CU_ASSERT(s[i].latency_s > 0);
    rb_llm_fit f;
    CU_ASSERT_EQUAL_FATAL(rb_llm_fit_steps(s, n, &f), 0);
    CU_ASSERT_EQUAL(f.zeroed, 1);
    CU_ASSERT_EQUAL(f.overhead_s, 0);
    CU_ASSERT(f.per_prefill_token_s > 0 && f.per_decode_seq_s > 0 && f.per_context_token_s > 0);
    CU_ASSERT(f.r2 < 1);
    const double zero[4] = {0, 1e-4, 5e-4, 2e-8};
    n = synthetic(s, zero);
    CU_ASSERT_EQUAL_FATAL(rb_llm_fit_steps(s, n, &f), 0);
    CU_ASSERT(f.overhead_s >= 0 && f.overhead_s < 1e-12);
    CU_ASSERT_DOUBLE_EQUAL(f.per_decode_seq_s, 5e-4, 1e-12);
}

static void test_fit_refuses(void)
{
    rb_llm_step s[32];
    const double c[4] = {5e-3, 1e-4, 5e-4, 2e-8};
    int n = synthetic(s, c);
    rb_llm_fit f;
    CU_ASSERT_EQUAL(rb_llm_fit_steps(s, 4, &f), -1); /* fewer steps than 5 */
    /* no context anywhere: its coefficient is not determined */
    for (int i = 0; i < n; i++)
        s[i].context_tokens = 0;
    CU_ASSERT_EQUAL(rb_llm_fit_steps(s, n, &f), -1);
    n = synthetic(s, c);
    s[3].latency_s = 0;
    CU_ASSERT_EQUAL(rb_llm_fit_steps(s, n, &f), -1);
}

/* A record as the closed loop makes one (llm_loop.c): decode-only steps of
 * 1 to 32 sequences on 20 to 700 cached tokens each, and steps with a
 * prompt chunk of 1 to 256 tokens on 0 to 400 cached beside up to 31
 * decodes; each step's time the five-term model's times a lognormal
 * factor of mean 1 and log-sd sigma (GSL, seeded): noise proportional to
 * the step, as fleetsim's step noise is (sim/base/llm_noise.h). */
static int loop_record(rb_llm_step *s, int n, const double coef[5], double sigma,
                       unsigned long seed)
{
    gsl_rng *r = gsl_rng_alloc(gsl_rng_mt19937);
    gsl_rng_set(r, seed);
    for (int i = 0; i < n; i++) {
        int prefill = gsl_rng_uniform(r) < 0.3;
        int d = (int)gsl_rng_uniform_int(r, 32) + !prefill;
        double ctx = 0;
        for (int k = 0; k < d; k++)
            ctx += 20 + (double)gsl_rng_uniform_int(r, 681);
        s[i] = (rb_llm_step){ .decode_seqs = d, .reps = 1 };
        if (prefill) {
            double pn = 1 + (double)gsl_rng_uniform_int(r, 256);
            double pc = gsl_rng_uniform(r) < 0.5 ? 0 : (double)gsl_rng_uniform_int(r, 401);
            s[i].prefill_tokens = pn;
            s[i].prefill_attention_pairs = pn * (pc + (pn + 1) / 2);
            ctx += pc;
        }
        s[i].context_tokens = ctx;
        s[i].latency_s = rb_llm_fit_apply(&(rb_llm_fit){ .overhead_s = coef[0],
                                                         .per_prefill_token_s = coef[1],
                                                         .per_decode_seq_s = coef[2],
                                                         .per_context_token_s = coef[3],
                                                         .per_prefill_attention_s = coef[4] },
                                          &s[i]) *
                         gsl_ran_lognormal(r, -sigma * sigma / 2, sigma);
    }
    gsl_rng_free(r);
    return n;
}

/* The fits on a loop's record whose steps have noise proportional to
 * their time (lognormal, mean 1, log-sd 0.3: cv 0.307). Generalised least
 * squares (rb_llm_fit_steps_mean) recovers the five coefficients that made
 * it, each within 5 standard errors, cv sqrt of the diagonal of
 * (X~' X~)^-1, X~ the rows x / f (f the true time); and each kind's sum
 * of measured over fitted times comes within 5 standard errors of 1: its
 * residuals' sum a'y - s' c^ (a the kind's indicator, s = X' a its column
 * sums) has variance cv^2 sum f^2 - s' Cov s, since the covariance of
 * a'y and s' c^ is s' Cov s for this weighting. The fit with rows
 * divided by the measured time (rb_llm_fit_steps) recovers instead
 * exp(-2 sigma^2) = 0.835 of each coefficient (E[1/u] / E[1/u^2] for the
 * factor u), within the same standard errors over that factor: the bias
 * the mean fit removes. */
static void test_fit_loop_record(void)
{
    /* the CPU loop's flavour: 20 us a step, 12 us a prompt token, 10 us a
     * decoding sequence, 0.1 us a context token, 0.11 us a pair */
    const double c[5] = {2e-5, 1.2e-5, 1e-5, 1e-7, 1.1e-7}, sigma = 0.3;
    const double cv = sqrt(exp(sigma * sigma) - 1), shrink = exp(-2 * sigma * sigma);
    const int n = 8000;
    rb_llm_step *s = malloc(sizeof *s * (size_t)n);
    loop_record(s, n, c, sigma, 17);
    rb_llm_fit f, g;
    int iters = 0;
    CU_ASSERT_EQUAL_FATAL(rb_llm_fit_steps_mean(s, n, &f, &iters), 0);
    CU_ASSERT(iters > 1 && iters < 100);
    CU_ASSERT_EQUAL(f.zeroed, 0);
    CU_ASSERT_EQUAL_FATAL(rb_llm_fit_steps(s, n, &g), 0);
    /* the covariance from the true model's rows */
    gsl_matrix *A = gsl_matrix_calloc(5, 5);
    double sum_x[2][5] = {{0}}, sum_f[2] = {0}, sum_f2[2] = {0};
    for (int i = 0; i < n; i++) {
        double x[5] = {1, s[i].prefill_tokens, s[i].decode_seqs, s[i].context_tokens,
                       s[i].prefill_attention_pairs};
        double fi = c[0] * x[0] + c[1] * x[1] + c[2] * x[2] + c[3] * x[3] + c[4] * x[4];
        int k = s[i].prefill_tokens > 0;
        for (int a = 0; a < 5; a++) {
            sum_x[k][a] += x[a];
            for (int b = 0; b < 5; b++)
                *gsl_matrix_ptr(A, (size_t)a, (size_t)b) += x[a] * x[b] / (fi * fi);
        }
        sum_f[k] += fi;
        sum_f2[k] += fi * fi;
    }
    gsl_linalg_cholesky_decomp1(A);
    gsl_linalg_cholesky_invert(A);
    gsl_matrix_scale(A, cv * cv); /* the coefficients' covariance */
    double got[5] = {f.overhead_s, f.per_prefill_token_s, f.per_decode_seq_s,
                     f.per_context_token_s, f.per_prefill_attention_s};
    double rel[5] = {g.overhead_s, g.per_prefill_token_s, g.per_decode_seq_s,
                     g.per_context_token_s, g.per_prefill_attention_s};
    for (int a = 0; a < 5; a++) {
        double se = sqrt(gsl_matrix_get(A, (size_t)a, (size_t)a));
        /* the record determines it (the decode term least: in decode-only
         * steps it moves with the context, 0.1 of it) */
        CU_ASSERT(se < 0.15 * c[a]);
        if (!(fabs(got[a] - c[a]) <= 5 * se))
            fprintf(stderr, "\n  coefficient %d: %.6g, made with %.6g +- 5 x %.3g", a, got[a],
                    c[a], se);
        CU_ASSERT(fabs(got[a] - c[a]) <= 5 * se);
        if (!(fabs(rel[a] - shrink * c[a]) <= 5 * se / shrink))
            fprintf(stderr, "\n  relative fit's coefficient %d: %.6g, expected %.6g +- 5 x %.3g",
                    a, rel[a], shrink * c[a], se / shrink);
        CU_ASSERT(fabs(rel[a] - shrink * c[a]) <= 5 * se / shrink);
    }
    rb_llm_kind_fit k[2];
    rb_llm_fit_by_kind(&f, s, (size_t)n, k);
    CU_ASSERT_EQUAL(k[0].steps + k[1].steps, n);
    CU_ASSERT(k[RB_LLM_DECODE_ONLY].steps > n / 2 && k[RB_LLM_WITH_PREFILL].steps > n / 5);
    for (int i = 0; i < 2; i++) {
        double var_fit = 0;
        for (int a = 0; a < 5; a++)
            for (int b = 0; b < 5; b++)
                var_fit += sum_x[i][a] * gsl_matrix_get(A, (size_t)a, (size_t)b) * sum_x[i][b];
        double tol = 5 * sqrt(cv * cv * sum_f2[i] - var_fit) / sum_f[i];
        CU_ASSERT(tol > 0 && tol < 0.05);
        CU_ASSERT_DOUBLE_EQUAL(k[i].measured_s / k[i].model_s, 1, tol);
    }
    gsl_matrix_free(A);
    free(s);
}

/* rb_llm_fit_by_kind by hand: a fit of 1 ms a step; decode-only steps of
 * 1 and 2 ms, a step with prefill of 0.5 ms. */
static void test_fit_by_kind(void)
{
    rb_llm_fit f = {.overhead_s = 1e-3};
    rb_llm_step s[3] = {{.decode_seqs = 4, .latency_s = 1e-3},
                        {.decode_seqs = 1, .context_tokens = 90, .latency_s = 2e-3},
                        {.prefill_tokens = 7, .decode_seqs = 3, .latency_s = 0.5e-3}};
    rb_llm_kind_fit k[2];
    rb_llm_fit_by_kind(&f, s, 3, k);
    CU_ASSERT_EQUAL(k[RB_LLM_DECODE_ONLY].steps, 2);
    CU_ASSERT_DOUBLE_EQUAL(k[RB_LLM_DECODE_ONLY].measured_s, 3e-3, 1e-15);
    CU_ASSERT_DOUBLE_EQUAL(k[RB_LLM_DECODE_ONLY].model_s, 2e-3, 1e-15);
    CU_ASSERT_DOUBLE_EQUAL(k[RB_LLM_DECODE_ONLY].rel_mean, 0.25, 1e-12); /* (0 + 0.5) / 2 */
    CU_ASSERT_DOUBLE_EQUAL(k[RB_LLM_DECODE_ONLY].rel_rms, sqrt(0.125), 1e-12);
    CU_ASSERT_EQUAL(k[RB_LLM_WITH_PREFILL].steps, 1);
    CU_ASSERT_DOUBLE_EQUAL(k[RB_LLM_WITH_PREFILL].rel_mean, -1, 1e-12); /* (0.5 - 1) / 0.5 */
    CU_ASSERT_DOUBLE_EQUAL(k[RB_LLM_WITH_PREFILL].measured_s / k[RB_LLM_WITH_PREFILL].model_s,
                           0.5, 1e-12);
    cJSON *j = rb_llm_fit_by_kind_json(&f, s, 3);
    const cJSON *all = cJSON_GetObjectItemCaseSensitive(j, "all");
    const cJSON *r = cJSON_GetObjectItemCaseSensitive(all, "measured_over_model");
    CU_ASSERT(cJSON_IsNumber(r) && fabs(r->valuedouble - 3.5 / 3) < 1e-12);
    r = cJSON_GetObjectItemCaseSensitive(all, "rel_mean");
    CU_ASSERT(cJSON_IsNumber(r) && fabs(r->valuedouble - (0 + 0.5 - 1) / 3) < 1e-12);
    cJSON_Delete(j);
}

/* A tiny stack and grid for the tests: one repetition. */
static void tiny(rb_llm_opts *o)
{
    rb_llm_opts_default(o);
    o->layers = 1;
    o->d_model = 16;
    o->d_ff = 32;
    o->heads = 2;
    o->kv_heads = 1;
    o->reps = 1;
    o->warmup = 0;
    o->quiet = 1;
    const int p[] = {16, 32, 64}, d[] = {1, 4, 8}, c[] = {16, 64};
    memcpy(o->prefill, p, sizeof p);
    o->n_prefill = 3;
    memcpy(o->decode, d, sizeof d);
    o->n_decode = 3;
    memcpy(o->contexts, c, sizeof c);
    o->n_contexts = 2;
}

/* The grid the options make: every prefill size alone, the middle one on
 * every context, every decode batch at every context, per context the
 * smallest chunk beside the middle decode batch. */
static void test_grid(void)
{
    rb_llm_opts o;
    tiny(&o);
    rb_llm_grid_step *g = NULL;
    int n = rb_llm_grid(&o, &g);
    CU_ASSERT_EQUAL_FATAL(n, 3 + 2 + 6 + 2);
    CU_ASSERT(g[0].n_prefill == 1 && g[0].prefill_n == 16 && g[0].prefill_c == 0 &&
              g[0].n_decode == 0);
    CU_ASSERT(g[4].prefill_n == 32 && g[4].prefill_c == 64); /* middle size on 64 cached */
    CU_ASSERT(g[5].n_prefill == 0 && g[5].n_decode == 1 && g[5].decode_c == 16);
    CU_ASSERT(g[10].n_decode == 8 && g[10].decode_c == 64);
    CU_ASSERT(g[12].prefill_n == 16 && g[12].prefill_c == 0 && g[12].n_decode == 4 &&
              g[12].decode_c == 64);
    free(g);
    /* the default: prefill chunks 16..2048, decode batches 1..256 */
    rb_llm_opts_default(&o);
    CU_ASSERT_EQUAL(o.prefill[0], 16);
    CU_ASSERT_EQUAL(o.prefill[o.n_prefill - 1], 2048);
    CU_ASSERT_EQUAL(o.decode[0], 1);
    CU_ASSERT_EQUAL(o.decode[o.n_decode - 1], 256);
    CU_ASSERT(o.n_contexts >= 3);
}

/* The kernel on a tiny model, one repetition, in every precision: every
 * step of the grid timed, a fit that succeeds. */
static void test_bench_runs(void)
{
    rb_llm_opts o;
    tiny(&o);
    for (int p = 0; p < RB_LLM_N_PREC; p++) {
        o.precision = (rb_llm_precision)p;
        rb_llm_step *s = NULL;
        int n = 0;
        CU_ASSERT_EQUAL_FATAL(rb_llm_bench(&o, &s, &n, NULL, stderr), 0);
        CU_ASSERT_EQUAL(n, 13);
        int prefill_only = 0, decode_only = 0, mixed = 0;
        for (int i = 0; i < n; i++) {
            CU_ASSERT(s[i].latency_s > 0);
            CU_ASSERT_EQUAL(s[i].reps, 1);
            prefill_only += s[i].prefill_tokens > 0 && s[i].decode_seqs == 0;
            decode_only += s[i].prefill_tokens == 0 && s[i].decode_seqs > 0;
            mixed += s[i].prefill_tokens > 0 && s[i].decode_seqs > 0;
        }
        CU_ASSERT(prefill_only == 5 && decode_only == 6 && mixed == 2);
        CU_ASSERT_EQUAL(s[0].prefill_tokens, 16);
        CU_ASSERT_EQUAL(s[0].context_tokens, 0);
        CU_ASSERT_EQUAL(s[10].decode_seqs, 8);
        CU_ASSERT_EQUAL(s[10].context_tokens, 8 * 64);
        rb_llm_fit f;
        CU_ASSERT_EQUAL(rb_llm_fit_steps(s, n, &f), 0);
        CU_ASSERT(f.overhead_s >= 0 && f.per_prefill_token_s >= 0 && f.per_decode_seq_s >= 0 &&
                  f.per_context_token_s >= 0);
        free(s);
    }
    FILE *devnull = fopen("/dev/null", "w");
    rb_llm_step *s = NULL;
    int n = 0;
    o.d_model = 0;
    CU_ASSERT_EQUAL(rb_llm_bench(&o, &s, &n, NULL, devnull), 2);
    tiny(&o);
    o.heads = 3; /* 16 is not a multiple of 3 */
    CU_ASSERT_EQUAL(rb_llm_bench(&o, &s, &n, NULL, devnull), 2);
    tiny(&o);
    o.decode[1] = 1; /* not ascending */
    CU_ASSERT_EQUAL(rb_llm_bench(&o, &s, &n, NULL, devnull), 2);
    fclose(devnull);
}

/* INT8 and FP16 outputs against FP32 from the same seed: within their
 * bounds, and not equal (they do round: a check that compared FP32 with
 * itself would pass anything); INT8 rounds more than FP16. FP32 against
 * itself: exactly equal (the same code on the same values). Shapes: the
 * default stack, and one with as many KV heads as heads and more layers. */
static void test_precision_check(void)
{
    rb_llm_opts o;
    for (int shape = 0; shape < 2; shape++) {
        rb_llm_opts_default(&o);
        if (shape) {
            o.layers = 4;
            o.d_model = 96;
            o.d_ff = 192;
            o.heads = 6;
            o.kv_heads = 6;
            o.seed = 7;
        }
        double e[RB_LLM_N_PREC];
        for (int p = 0; p < RB_LLM_N_PREC; p++) {
            o.precision = (rb_llm_precision)p;
            CU_ASSERT_EQUAL(rb_llm_check(&o, &e[p], stderr), 0);
            CU_ASSERT(e[p] <= rb_llm_error_bound(o.precision));
        }
        CU_ASSERT_EQUAL(e[RB_LLM_FP32], 0);
        CU_ASSERT(e[RB_LLM_FP16] > 1e-5); /* half's rounding shows */
        CU_ASSERT(e[RB_LLM_INT8] > 4 * e[RB_LLM_FP16]);
        CU_ASSERT(rb_llm_error_bound(RB_LLM_INT8) <= 0.05);
        CU_ASSERT(rb_llm_error_bound(RB_LLM_FP16) <= 5e-3);
    }
    FILE *devnull = fopen("/dev/null", "w");
    double e;
    o.heads = 5;
    CU_ASSERT_EQUAL(rb_llm_check(&o, &e, devnull), 2);
    fclose(devnull);
}

/* The profile's section: the fitted time and relative residual of every
 * step (steps made from known coefficients: fitted = measured, residual
 * within rounding of 0); put() keeps each precision and FP32 at the top. */
static void test_section_residuals(void)
{
    rb_llm_step s[32];
    const double c[4] = {5e-3, 1e-4, 5e-4, 2e-8};
    int n = synthetic(s, c);
    s[3].latency_s *= 1.1; /* one step 10% above the model */
    rb_llm_fit f;
    CU_ASSERT_EQUAL_FATAL(rb_llm_fit_steps(s, n, &f), 0);
    rb_llm_opts o;
    rb_llm_opts_default(&o);
    o.precision = RB_LLM_INT8;
    cJSON *j = rb_llm_step_json(&o, "cpu", "cpu-int8-dot-i32acc", s, n, &f, 0.01, 0.05);
    const cJSON *st = cJSON_GetObjectItem(j, "steps");
    const cJSON *fit = cJSON_GetObjectItem(st, "fitted_s"), *rr = cJSON_GetObjectItem(st, "rel_residual");
    CU_ASSERT_EQUAL_FATAL(cJSON_GetArraySize(fit), n);
    CU_ASSERT_EQUAL_FATAL(cJSON_GetArraySize(rr), n);
    for (int i = 0; i < n; i++) {
        double fi = cJSON_GetArrayItem(fit, i)->valuedouble;
        CU_ASSERT_DOUBLE_EQUAL(fi, rb_llm_fit_apply(&f, &s[i]), 1e-15);
        CU_ASSERT_DOUBLE_EQUAL(cJSON_GetArrayItem(rr, i)->valuedouble,
                               (s[i].latency_s - fi) / s[i].latency_s, 1e-15);
    }
    /* the perturbed step stands out from the rest */
    double r3 = cJSON_GetArrayItem(rr, 3)->valuedouble;
    CU_ASSERT(r3 > 0.03);
    CU_ASSERT(cJSON_GetNumberValue(cJSON_GetObjectItem(j, "r2")) < 1);
    const cJSON *k = cJSON_GetObjectItem(j, "kernel");
    CU_ASSERT_STRING_EQUAL(cJSON_GetStringValue(cJSON_GetObjectItem(k, "precision")), "int8");
    CU_ASSERT_EQUAL(cJSON_GetNumberValue(cJSON_GetObjectItem(cJSON_GetObjectItem(k, "check"),
                                                             "bound")), 0.05);
    /* put: int8 first (becomes the top level, none there yet), then fp32
     * replaces the top level; both stay under precisions */
    cJSON *root = cJSON_CreateObject();
    rb_llm_step_put(root, "int8", j);
    const cJSON *ls = cJSON_GetObjectItem(root, "llm_step");
    CU_ASSERT_EQUAL(cJSON_GetNumberValue(cJSON_GetObjectItem(ls, "overhead_s")), f.overhead_s);
    n = synthetic(s, c);
    rb_llm_fit f32;
    CU_ASSERT_EQUAL_FATAL(rb_llm_fit_steps(s, n, &f32), 0);
    o.precision = RB_LLM_FP32;
    rb_llm_step_put(root, "fp32", rb_llm_step_json(&o, "cpu", "cpu-fp32-dot", s, n, &f32, -1, 0));
    ls = cJSON_GetObjectItem(root, "llm_step");
    CU_ASSERT_EQUAL(cJSON_GetNumberValue(cJSON_GetObjectItem(ls, "overhead_s")), f32.overhead_s);
    const cJSON *pr = cJSON_GetObjectItem(ls, "precisions");
    CU_ASSERT_EQUAL(cJSON_GetArraySize(pr), 2);
    CU_ASSERT_EQUAL(cJSON_GetNumberValue(cJSON_GetObjectItem(cJSON_GetObjectItem(pr, "int8"),
                                                             "overhead_s")), f.overhead_s);
    CU_ASSERT(f.overhead_s != f32.overhead_s);
    cJSON_Delete(root);
}

static int run_cli(const char *a0, const char *a1, const char *a2, const char *a3,
                   const char *a4)
{
    char *argv[] = {"realbench", "llm-step", "--reps", "1", "--warmup", "1", "--layers", "1",
                    "--d-model", "16", "--d-ff", "32", "--heads", "2", "--kv-heads", "1",
                    "--prefill", "16,32,64", "--decode", "1,4,8", "--contexts", "16,64",
                    "--quiet", (char *)a0, (char *)a1,
                    (char *)a2, (char *)a3, (char *)a4, NULL};
    int argc = 0;
    while (argv[argc])
        argc++;
    return rb_main(argc, argv);
}

/* `realbench llm-step`: a profile of its own (schema, device, llm_step,
 * no precisions) that rb_profile_read accepts; --into keeps a batch
 * profile's precisions and adds llm_step. */
static void test_cli_profiles(void)
{
    char *dir = tu_tmpdir();
    char out[4096], into[4096], both[4096], rm[4096];
    snprintf(out, sizeof out, "%s/step.json", dir);
    snprintf(both, sizeof both, "%s/both.json", dir);
    snprintf(rm, sizeof rm, "%s/realbench/profiles/cpu-risk-mlp.json", tu_src());
    CU_ASSERT_EQUAL(run_cli("--out", out, NULL, NULL, NULL), 0);
    cJSON *p = rb_profile_read(out, stderr);
    CU_ASSERT_PTR_NOT_NULL_FATAL(p);
    CU_ASSERT_STRING_EQUAL(cJSON_GetStringValue(cJSON_GetObjectItem(p, "schema")),
                           "fleetsim-calibration/1");
    CU_ASSERT_PTR_NULL(cJSON_GetObjectItem(p, "precisions"));
    const cJSON *ls = cJSON_GetObjectItem(p, "llm_step");
    CU_ASSERT(cJSON_IsNumber(cJSON_GetObjectItem(ls, "per_decode_seq_s")));
    CU_ASSERT_EQUAL(cJSON_GetArraySize(cJSON_GetObjectItem(cJSON_GetObjectItem(ls, "steps"),
                                                           "latency_s")),
                    cJSON_GetArraySize(cJSON_GetObjectItem(cJSON_GetObjectItem(ls, "steps"),
                                                           "context_tokens")));
    CU_ASSERT_STRING_EQUAL(cJSON_GetStringValue(cJSON_GetObjectItem(
                               cJSON_GetObjectItem(ls, "device"), "kind")), "cpu");
    cJSON_Delete(p);
    snprintf(into, sizeof into, "%s", rm);
    CU_ASSERT_EQUAL(run_cli("--into", into, "--out", both, NULL), 0);
    p = rb_profile_read(both, stderr);
    CU_ASSERT_PTR_NOT_NULL_FATAL(p);
    CU_ASSERT_PTR_NOT_NULL(cJSON_GetObjectItem(cJSON_GetObjectItem(p, "precisions"), "int8"));
    CU_ASSERT_PTR_NOT_NULL(cJSON_GetObjectItem(p, "llm_step"));
    cJSON_Delete(p);
    /* a bad option, a missing --out */
    CU_ASSERT_EQUAL(run_cli("--layers", "x", "--out", out, NULL), 2);
    CU_ASSERT_EQUAL(run_cli(NULL, NULL, NULL, NULL, NULL), 2);
    /* on reading: llm_step's coefficients must be numbers */
    snprintf(into, sizeof into, "%s/bad.json", dir);
    tu_write(into, "{\"schema\": \"fleetsim-calibration/1\", \"llm_step\": {\"overhead_s\": 0, "
                   "\"per_prefill_token_s\": \"fast\", \"per_decode_seq_s\": 0, "
                   "\"per_context_token_s\": 0}}");
    FILE *devnull = fopen("/dev/null", "w");
    CU_ASSERT_PTR_NULL(rb_profile_read(into, devnull));
    tu_write(into, "{\"schema\": \"fleetsim-calibration/1\"}");
    CU_ASSERT_PTR_NULL(rb_profile_read(into, devnull));
    /* per_prefill_attention_s: optional (profiles fitted before it load),
     * a finite number where present */
    tu_write(into, "{\"schema\": \"fleetsim-calibration/1\", \"llm_step\": {\"overhead_s\": 0, "
                   "\"per_prefill_token_s\": 1e-5, \"per_decode_seq_s\": 0, "
                   "\"per_context_token_s\": 0}}");
    p = rb_profile_read(into, devnull);
    CU_ASSERT_PTR_NOT_NULL(p);
    cJSON_Delete(p);
    tu_write(into, "{\"schema\": \"fleetsim-calibration/1\", \"llm_step\": {\"overhead_s\": 0, "
                   "\"per_prefill_token_s\": 1e-5, \"per_decode_seq_s\": 0, "
                   "\"per_context_token_s\": 0, \"per_prefill_attention_s\": null}}");
    CU_ASSERT_PTR_NULL(rb_profile_read(into, devnull));
    fclose(devnull);
    tu_done(dir);
}

/* `fleetsim calibrate --device cpu --model` on an LLM model file: the
 * step measurement of that stack (the model's name and shape in the
 * kernel, each precision asked for); a scenario that names one of them
 * runs on its coefficients, one that names a precision the profile lacks
 * is refused at file:line:col with exit 2. A model file with an unknown
 * key is refused the same way. */
static void test_calibrate_llm(void)
{
    char *dir = tu_tmpdir();
    char prof[4096], log[4096], model[4096];
    snprintf(prof, sizeof prof, "%s/llm.json", dir);
    snprintf(log, sizeof log, "%s/cal.log", dir);
    int rc = tu_sh(log, "'%s' calibrate --device cpu --model '%s/realbench/models/tiny-llm.yaml' "
                   "--out '%s' --reps 1 --warmup 1 --prefill 16,32,64 --decode 1,4,8 "
                   "--contexts 16,64 --precision int8,fp32 --quiet", tu_bin(), tu_src(), prof);
    CU_ASSERT_EQUAL_FATAL(rc, 0);
    cJSON *p = rb_profile_read(prof, stderr);
    CU_ASSERT_PTR_NOT_NULL_FATAL(p);
    const cJSON *pr = cJSON_GetObjectItem(cJSON_GetObjectItem(p, "llm_step"), "precisions");
    CU_ASSERT_EQUAL(cJSON_GetArraySize(pr), 2);
    const cJSON *i8 = cJSON_GetObjectItem(pr, "int8"), *k = cJSON_GetObjectItem(i8, "kernel");
    CU_ASSERT_STRING_EQUAL(cJSON_GetStringValue(cJSON_GetObjectItem(k, "model")), "tiny-llm");
    CU_ASSERT_EQUAL(cJSON_GetNumberValue(cJSON_GetObjectItem(k, "layers")), 2);
    CU_ASSERT_EQUAL(cJSON_GetNumberValue(cJSON_GetObjectItem(k, "d_model")), 64);
    CU_ASSERT_EQUAL(cJSON_GetNumberValue(cJSON_GetObjectItem(k, "kv_heads")), 2);
    CU_ASSERT(cJSON_GetNumberValue(cJSON_GetObjectItem(cJSON_GetObjectItem(k, "check"),
                                                       "max_rel_err")) <= 0.05);
    CU_ASSERT_EQUAL(cJSON_GetArraySize(cJSON_GetObjectItem(cJSON_GetObjectItem(i8, "steps"),
                                                           "rel_residual")), 13);
    CU_ASSERT_PTR_NULL(cJSON_GetObjectItem(pr, "fp16"));
    cJSON_Delete(p);
    static const char *const fmt =
        "name: x\nduration: 2s\nmodels:\n  m:\n    llm:\n"
        "      config: {hidden_size: 4096, num_hidden_layers: 32, num_attention_heads: 32, "
        "num_key_value_heads: 8, intermediate_size: 14336, vocab_size: 128256}\n"
        "      step: {model: alpha_beta, calibration: %s, precision: %s}\n"
        "pools:\n  p: {model: m, replicas: 1, gpu: H100-SXM}\n"
        "traffic:\n  - {name: t, pool: p, arrivals: {rate: 5}, tokens: {input: 9, output: 9}}\n";
    char y[4096], msg[4096];
    snprintf(y, sizeof y, fmt, prof, "int8");
    char *out = tu_run_yaml(y, NULL, &rc);
    CU_ASSERT_EQUAL(rc, 0);
    tu_done(out);
    snprintf(y, sizeof y, fmt, prof, "fp16");
    snprintf(msg, sizeof msg, "s.yaml:7:%d: models.m.llm.step.calibration: \"%s\" has no LLM "
             "steps measured in fp16 (llm_step.precisions: int8, fp32;",
             (int)(strlen("      step: {model: alpha_beta, calibration: , precision: ") +
                   strlen(prof)) + 1, prof);
    CU_ASSERT(tu_expect_error(y, NULL, msg));
    /* a model file with a key the llm mapping does not have */
    snprintf(model, sizeof model, "%s/bad.yaml", dir);
    tu_write(model, "name: bad\nllm: {layers: 2, d_model: 64, d_ff: 256, heads: 4, experts: 8}\n");
    snprintf(log, sizeof log, "%s/bad.log", dir);
    rc = tu_sh(log, "'%s' calibrate --device cpu --model '%s' --out '%s/x.json'", tu_bin(), model,
               dir);
    CU_ASSERT_EQUAL(rc, 2);
    char *text = tu_read(log);
    snprintf(msg, sizeof msg, "%s:2:52: unknown key 'experts' in llm", model);
    CU_ASSERT(text && strstr(text, msg));
    free(text);
    tu_done(dir);
}

/* `realbench cuda-llm-step --from-csv`: the steps rb_cuda_bench --llm-step
 * writes (here made from known coefficients, one set per precision) are
 * fitted into a profile whose llm_step.precisions carry those coefficients
 * (within the rounding the fit test allows), the CSV's device (kind cuda),
 * the check's error and bound, and the implementation. A malformed line is
 * an error. */
static void test_cuda_steps_csv(void)
{
    char *dir = tu_tmpdir();
    char csv[4096], prof[4096], model[4096];
    snprintf(csv, sizeof csv, "%s/steps.csv", dir);
    snprintf(prof, sizeof prof, "%s/cuda.json", dir);
    snprintf(model, sizeof model, "%s/realbench/models/tiny-llm.yaml", tu_src());
    /* bf16's lines as files written before the pairs column (seven
     * numbers, four terms fitted); int8's with it (five terms) */
    const double c[2][5] = {{2e-5, 1e-7, 3e-6, 1e-9, 0}, {1.5e-5, 6e-8, 2.5e-6, 5e-10, 3e-11}};
    const char *names[2] = {"bf16", "int8"};
    FILE *f = fopen(csv, "w");
    CU_ASSERT_PTR_NOT_NULL_FATAL(f);
    fprintf(f, "# device.kind=\"cuda\"\n# device.name=\"NVIDIA H100 80GB HBM3\"\n"
               "# device.cores_or_sms=132\n"
               "kind,precision,impl,prefill_tokens,decode_seqs,context_tokens,reps,latency_s\n");
    rb_llm_step s[32];
    int n = 0;
    for (int k = 0; k < 2; k++) {
        n = k ? synthetic5(s, c[k]) : synthetic(s, c[k]);
        fprintf(f, "check,%s,%.6g,%.6g\n", names[k], k ? 0.012 : 0.004, k ? 0.05 : 0.03);
        for (int i = 0; i < n; i++) {
            fprintf(f, "step,%s,cublaslt-%s,%.0f,%.0f,%.0f,20,%.17g", names[k], names[k],
                    s[i].prefill_tokens, s[i].decode_seqs, s[i].context_tokens, s[i].latency_s);
            if (k)
                fprintf(f, ",%.0f", s[i].prefill_attention_pairs);
            fprintf(f, "\n");
        }
    }
    fclose(f);
    char *argv[] = {"realbench", "cuda-llm-step", "--model", model, "--from-csv", csv, "--out",
                    prof, NULL};
    CU_ASSERT_EQUAL_FATAL(rb_main(8, argv), 0);
    cJSON *p = rb_profile_read(prof, stderr);
    CU_ASSERT_PTR_NOT_NULL_FATAL(p);
    const cJSON *ls = cJSON_GetObjectItem(p, "llm_step"), *pr = cJSON_GetObjectItem(ls, "precisions");
    CU_ASSERT_STRING_EQUAL(cJSON_GetStringValue(cJSON_GetObjectItem(
                               cJSON_GetObjectItem(p, "device"), "kind")), "cuda");
    static const char *const coef[] = {"overhead_s", "per_prefill_token_s", "per_decode_seq_s",
                                       "per_context_token_s", "per_prefill_attention_s"};
    for (int k = 0; k < 2; k++) {
        const cJSON *sec = cJSON_GetObjectItem(pr, names[k]);
        CU_ASSERT_PTR_NOT_NULL_FATAL(sec);
        n = k ? synthetic5(s, c[k]) : synthetic(s, c[k]);
        double tol[5] = {0};
        tolerances_k(s, n, c[k], tol, k ? 5 : 4);
        for (int a = 0; a < 5; a++)
            CU_ASSERT_DOUBLE_EQUAL(cJSON_GetNumberValue(cJSON_GetObjectItem(sec, coef[a])),
                                   c[k][a], tol[a]);
        const cJSON *kern = cJSON_GetObjectItem(sec, "kernel");
        CU_ASSERT_STRING_EQUAL(cJSON_GetStringValue(cJSON_GetObjectItem(kern, "precision")),
                               names[k]);
        CU_ASSERT_STRING_EQUAL(cJSON_GetStringValue(cJSON_GetObjectItem(kern, "model")),
                               "tiny-llm");
        char impl[32];
        snprintf(impl, sizeof impl, "cublaslt-%s", names[k]);
        CU_ASSERT_STRING_EQUAL(cJSON_GetStringValue(cJSON_GetObjectItem(kern, "impl")), impl);
        CU_ASSERT_EQUAL(cJSON_GetNumberValue(cJSON_GetObjectItem(cJSON_GetObjectItem(kern, "check"),
                                                                 "max_rel_err")),
                        k ? 0.012 : 0.004);
        CU_ASSERT_STRING_EQUAL(cJSON_GetStringValue(cJSON_GetObjectItem(
                                   cJSON_GetObjectItem(sec, "device"), "name")),
                               "NVIDIA H100 80GB HBM3");
    }
    /* no fp32 measured: the top level is the first precision's */
    CU_ASSERT_EQUAL(cJSON_GetNumberValue(cJSON_GetObjectItem(ls, "overhead_s")),
                    cJSON_GetNumberValue(cJSON_GetObjectItem(cJSON_GetObjectItem(pr, "bf16"),
                                                             "overhead_s")));
    cJSON_Delete(p);
    f = fopen(csv, "a");
    fprintf(f, "step,bf16,x,1,2\n");
    fclose(f);
    CU_ASSERT_EQUAL(rb_main(8, argv), 1); /* "steps.csv:N: not a step or check line" */
    tu_done(dir);
}

int main(void)
{
    if (CU_initialize_registry() != CUE_SUCCESS)
        return CU_get_error();
    CU_pSuite s = CU_add_suite("llm_step", NULL, NULL);
    CU_add_test(s, "fit recovers known coefficients", test_fit_recovers);
    CU_add_test(s, "fit recovers the prefill attention coefficient",
                test_fit_recovers_attention);
    CU_add_test(s, "fit holds coefficients at 0", test_fit_non_negative);
    CU_add_test(s, "fit refuses undetermined steps", test_fit_refuses);
    CU_add_test(s, "fits on a loop's record with proportional noise", test_fit_loop_record);
    CU_add_test(s, "the fit's residuals by step kind", test_fit_by_kind);
    CU_add_test(s, "the grid", test_grid);
    CU_add_test(s, "the CPU kernel runs the grid", test_bench_runs);
    CU_add_test(s, "INT8 and FP16 against FP32", test_precision_check);
    CU_add_test(s, "the profile section's residuals", test_section_residuals);
    CU_add_test(s, "calibrate --model on an LLM model file", test_calibrate_llm);
    CU_add_test(s, "cuda-llm-step fits rb_cuda_bench's steps", test_cuda_steps_csv);
    CU_add_test(s, "realbench llm-step profiles", test_cli_profiles);
    CU_basic_set_mode(CU_BRM_VERBOSE);
    CU_basic_run_tests();
    unsigned f = CU_get_number_of_failures();
    CU_cleanup_registry();
    return f ? 1 : 0;
}
