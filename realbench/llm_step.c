/*
 * llm_step.c - fleetsim's alpha_beta LLM step model, measured: a stack of
 * decoder layers (llm_layer.c) run on this CPU as an LLM engine runs one
 * scheduler step (a batch of prefill chunks and decode tokens over their
 * cached context), in FP32, FP16 or INT8, checked against FP32, timed over
 * a grid of step compositions, and the least squares fit (GSL) of
 *
 *   step_s = overhead_s + per_prefill_token_s x prefill tokens
 *          + per_decode_seq_s x decoding sequences
 *          + per_context_token_s x context tokens read
 *          + per_prefill_attention_s x prefill attention pairs
 *
 * (the pairs: the causal query-key products of each prefill chunk of n
 * tokens on c cached ones, n (c + (n + 1) / 2), which grow with the square
 * of the chunk and which no other term covers)
 * to the measured steps, the model sim/base/llm_model.c (llm_step_s) costs
 * a step with. Each precision's fit goes into a calibration profile under
 * "llm_step".precisions.<p> (schema in realbench/README.md), which a
 * scenario reads with models.<m>.llm.step: {model: alpha_beta,
 * calibration: P.json, precision: int8}.
 */
#include "llm_layer.h"
#include "realbench.h"

#include <cjson/cJSON.h>
#include <gsl/gsl_multifit.h>
#include <gsl/gsl_sort.h>
#include <gsl/gsl_statistics_double.h>

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static const char *const PREC_NAMES[RB_LLM_N_PREC] = {"fp32", "fp16", "int8"};

const char *rb_llm_precision_name(rb_llm_precision p)
{
    return (unsigned)p < RB_LLM_N_PREC ? PREC_NAMES[p] : "?";
}

int rb_llm_precision_parse(const char *name, rb_llm_precision *out)
{
    for (int p = 0; p < RB_LLM_N_PREC; p++)
        if (!strcmp(name, PREC_NAMES[p])) {
            *out = (rb_llm_precision)p;
            return 0;
        }
    return -1;
}

void rb_llm_opts_default(rb_llm_opts *o)
{
    static const int prefill[] = {16, 64, 256, 1024, 2048}, decode[] = {1, 16, 64, 256},
                     contexts[] = {128, 512, 2048};
    memset(o, 0, sizeof *o);
    o->layers = 2;
    o->d_model = 64;
    o->d_ff = 256;
    o->heads = 4;
    o->kv_heads = 2;
    o->reps = 5;
    o->warmup = 1;
    o->seed = 42;
    o->precision = RB_LLM_FP32;
    o->n_prefill = (int)(sizeof prefill / sizeof *prefill);
    memcpy(o->prefill, prefill, sizeof prefill);
    o->n_decode = (int)(sizeof decode / sizeof *decode);
    memcpy(o->decode, decode, sizeof decode);
    o->n_contexts = (int)(sizeof contexts / sizeof *contexts);
    memcpy(o->contexts, contexts, sizeof contexts);
}

/* ---- the fit ---------------------------------------------------------- */

enum { NCOEF = 5 }; /* overhead, prefill token, decode seq, context token, attention pair */

/* Least squares over the active coefficients (1 in active[]); 0 and
 * coef[] set (0 for the inactive ones), or -1 when GSL fails or the steps
 * do not determine them (singular values below 1e-12 of the largest).
 * w NULL: each row divided by its own latency (relative residuals); else
 * step i weighted by w[i] (gsl_multifit_wlinear). */
static int fit_active(const rb_llm_step *steps, int n, const double *w, const int active[NCOEF],
                      double coef[NCOEF])
{
    int cols[NCOEF], p = 0;
    for (int a = 0; a < NCOEF; a++)
        if (active[a])
            cols[p++] = a;
    if (p == 0 || n <= p)
        return -1;
    gsl_matrix *X = gsl_matrix_alloc((size_t)n, (size_t)p);
    gsl_vector *y = gsl_vector_alloc((size_t)n), *c = gsl_vector_alloc((size_t)p);
    gsl_vector *wv = w ? gsl_vector_alloc((size_t)n) : NULL;
    gsl_matrix *cov = gsl_matrix_alloc((size_t)p, (size_t)p);
    gsl_multifit_linear_workspace *ws = gsl_multifit_linear_alloc((size_t)n, (size_t)p);
    /* w NULL: each row divided by its latency, the residuals minimised are
     * relative, so a 0.1 ms decode step counts as much as a 50 ms prefill
     * (step times span three decades; absolute residuals would leave the
     * overhead to the noise of the longest steps) */
    for (int i = 0; i < n; i++) {
        double s = w ? 1.0 : 1.0 / steps[i].latency_s;
        double x[NCOEF] = {1, steps[i].prefill_tokens, steps[i].decode_seqs,
                           steps[i].context_tokens, steps[i].prefill_attention_pairs};
        for (int k = 0; k < p; k++)
            gsl_matrix_set(X, (size_t)i, (size_t)k, x[cols[k]] * s);
        gsl_vector_set(y, (size_t)i, w ? steps[i].latency_s : 1.0);
        if (w)
            gsl_vector_set(wv, (size_t)i, w[i]);
    }
    double chisq;
    int rc = w ? gsl_multifit_wlinear(X, wv, y, c, cov, &chisq, ws)
               : gsl_multifit_linear(X, y, c, cov, &chisq, ws);
    if (rc == 0 && gsl_multifit_linear_rank(1e-12, ws) != (size_t)p)
        rc = -1;
    for (int a = 0; a < NCOEF; a++)
        coef[a] = 0;
    for (int k = 0; rc == 0 && k < p; k++)
        coef[cols[k]] = gsl_vector_get(c, (size_t)k);
    gsl_multifit_linear_free(ws);
    gsl_matrix_free(cov);
    gsl_vector_free(c);
    gsl_vector_free(y);
    if (wv)
        gsl_vector_free(wv);
    gsl_matrix_free(X);
    return rc == 0 ? 0 : -1;
}

/* The fit with coefficients held >= 0 (w as fit_active's), and its
 * residual sd and r^2 on the steps' own scale. */
static int fit_nonneg(const rb_llm_step *steps, int n, const double *w, rb_llm_fit *fit)
{
    int active[NCOEF] = {1, 1, 1, 1, 1};
    double coef[NCOEF];
    int any_pairs = 0;
    memset(fit, 0, sizeof *fit);
    if (n < 5)
        return -1;
    for (int i = 0; i < n; i++)
        any_pairs |= steps[i].prefill_attention_pairs > 0;
    if (!any_pairs) /* steps that do not count the pairs (an older CSV): four terms */
        active[4] = 0;
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
        if (fit_active(steps, n, w, active, coef))
            return -1;
        int worst = -1;
        for (int a = 0; a < NCOEF; a++)
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
    fit->per_prefill_attention_s = coef[4];
    /* on the steps' own scale: residual sd and r^2 in seconds */
    double mean = 0, sse = 0, sst = 0;
    int p = 0;
    for (int a = 0; a < NCOEF; a++)
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

int rb_llm_fit_steps(const rb_llm_step *steps, int n, rb_llm_fit *fit)
{
    return fit_nonneg(steps, n, NULL, fit);
}

int rb_llm_fit_steps_mean(const rb_llm_step *steps, int n, rb_llm_fit *fit, int *iterations)
{
    if (iterations)
        *iterations = 0;
    if (rb_llm_fit_steps(steps, n, fit))
        return -1;
    double *w = calloc((size_t)n, sizeof *w);
    if (!w)
        return -1;
    /* Iteratively reweighted least squares: step i weighted by 1 / f_i^2,
     * f_i the last fit's time for it. A step's time is its mean times a
     * factor of mean 1 and a given cv (the noise fleetsim's step model
     * multiplies by, sim/base/llm_noise.h), so its variance is cv^2 f_i^2:
     * these are the weights of generalised least squares, which fits the
     * mean. Dividing by the measured time instead (rb_llm_fit_steps)
     * weights the steps that ran slow less than those that ran fast, and
     * fits exp(-2 s^2) times the mean for lognormal noise of log-sd s. */
    int rc = 0, it;
    for (it = 1; it <= 100; it++) {
        for (int i = 0; i < n; i++) {
            double f = rb_llm_fit_apply(fit, &steps[i]);
            f = f > 0 ? f : steps[i].latency_s; /* a fit that gives it no time */
            w[i] = 1.0 / (f * f);
        }
        rb_llm_fit next;
        if (fit_nonneg(steps, n, w, &next)) {
            rc = -1;
            break;
        }
        double change = 0;
        for (int i = 0; i < n; i++) {
            double a = rb_llm_fit_apply(fit, &steps[i]), b = rb_llm_fit_apply(&next, &steps[i]);
            change = fmax(change, fabs(b - a) / (b > 0 ? b : steps[i].latency_s));
        }
        *fit = next;
        if (change < 1e-9)
            break;
    }
    free(w);
    if (iterations)
        *iterations = it > 100 ? 100 : it;
    return rc;
}

double rb_llm_fit_apply(const rb_llm_fit *f, const rb_llm_step *s)
{
    return f->overhead_s + f->per_prefill_token_s * s->prefill_tokens +
           f->per_decode_seq_s * s->decode_seqs + f->per_context_token_s * s->context_tokens +
           f->per_prefill_attention_s * s->prefill_attention_pairs;
}

void rb_llm_fit_by_kind(const rb_llm_fit *f, const rb_llm_step *s, size_t n,
                        rb_llm_kind_fit out[2])
{
    memset(out, 0, 2 * sizeof *out);
    for (size_t i = 0; i < n; i++) {
        rb_llm_kind_fit *k = &out[s[i].prefill_tokens > 0 ? RB_LLM_WITH_PREFILL
                                                          : RB_LLM_DECODE_ONLY];
        double m = rb_llm_fit_apply(f, &s[i]), e = (s[i].latency_s - m) / s[i].latency_s;
        k->steps++;
        k->measured_s += s[i].latency_s;
        k->model_s += m;
        k->rel_mean += e;
        k->rel_rms += e * e;
    }
    for (int k = 0; k < 2; k++)
        if (out[k].steps > 0) {
            out[k].rel_mean /= (double)out[k].steps;
            out[k].rel_rms = sqrt(out[k].rel_rms / (double)out[k].steps);
        }
}

static void kind_json(cJSON *o, const char *name, const rb_llm_kind_fit *k)
{
    cJSON *j = cJSON_AddObjectToObject(o, name);
    cJSON_AddNumberToObject(j, "steps", (double)k->steps);
    cJSON_AddNumberToObject(j, "measured_s", k->measured_s);
    cJSON_AddNumberToObject(j, "model_s", k->model_s);
    cJSON_AddNumberToObject(j, "measured_over_model",
                            k->model_s > 0 ? k->measured_s / k->model_s : 0);
    cJSON_AddNumberToObject(j, "rel_mean", k->rel_mean);
    cJSON_AddNumberToObject(j, "rel_rms", k->rel_rms);
}

cJSON *rb_llm_fit_by_kind_json(const rb_llm_fit *f, const rb_llm_step *s, size_t n)
{
    rb_llm_kind_fit k[2], all = {0};
    rb_llm_fit_by_kind(f, s, n, k);
    for (int i = 0; i < 2; i++) {
        all.steps += k[i].steps;
        all.measured_s += k[i].measured_s;
        all.model_s += k[i].model_s;
        all.rel_mean += k[i].rel_mean * (double)k[i].steps;
        all.rel_rms += k[i].rel_rms * k[i].rel_rms * (double)k[i].steps;
    }
    if (all.steps > 0) {
        all.rel_mean /= (double)all.steps;
        all.rel_rms = sqrt(all.rel_rms / (double)all.steps);
    }
    cJSON *j = cJSON_CreateObject();
    kind_json(j, "decode_only", &k[RB_LLM_DECODE_ONLY]);
    kind_json(j, "with_prefill", &k[RB_LLM_WITH_PREFILL]);
    kind_json(j, "all", &all);
    return j;
}

/* ---- the grid, the check, the timing ----------------------------------- */

int rb_llm_grid(const rb_llm_opts *o, rb_llm_grid_step **out)
{
    *out = NULL;
    if (o->n_prefill < 1 || o->n_decode < 1 || o->n_contexts < 1 ||
        o->n_prefill > RB_LLM_GRID_MAX || o->n_decode > RB_LLM_GRID_MAX ||
        o->n_contexts > RB_LLM_GRID_MAX)
        return -1;
    int cap = o->n_prefill + o->n_contexts * (2 + o->n_decode);
    rb_llm_grid_step *g = calloc((size_t)cap, sizeof *g);
    if (!g)
        return -1;
    int n = 0, mid_p = o->prefill[o->n_prefill / 2], mid_d = o->decode[o->n_decode / 2];
    for (int i = 0; i < o->n_prefill; i++)
        g[n++] = (rb_llm_grid_step){ 1, o->prefill[i], 0, 0, 0 };
    for (int c = 0; c < o->n_contexts; c++)
        g[n++] = (rb_llm_grid_step){ 1, mid_p, o->contexts[c], 0, 0 };
    for (int c = 0; c < o->n_contexts; c++)
        for (int i = 0; i < o->n_decode; i++)
            g[n++] = (rb_llm_grid_step){ 0, 0, 0, o->decode[i], o->contexts[c] };
    for (int c = 0; c < o->n_contexts; c++)
        g[n++] = (rb_llm_grid_step){ 1, o->prefill[0], 0, mid_d, o->contexts[c] };
    *out = g;
    return n;
}

/* The chunks of one grid step; the step's composition as the fit counts
 * it. ch holds n_prefill + n_decode entries. */
static int grid_chunks(const rb_llm_grid_step *g, rb_llm_chunk *ch, rb_llm_step *s)
{
    int k = 0;
    memset(s, 0, sizeof *s);
    for (int i = 0; i < g->n_prefill; i++) {
        ch[k++] = (rb_llm_chunk){ g->prefill_n, g->prefill_c };
        s->prefill_tokens += g->prefill_n;
        s->context_tokens += g->prefill_c;
        s->prefill_attention_pairs +=
            (double)g->prefill_n * (g->prefill_c + (g->prefill_n + 1.0) / 2.0);
    }
    for (int i = 0; i < g->n_decode; i++) {
        ch[k++] = (rb_llm_chunk){ 1, g->decode_c };
        s->decode_seqs += 1;
        s->context_tokens += g->decode_c;
    }
    return k;
}

static int bad_opts(const rb_llm_opts *o, FILE *err)
{
    if (o->layers < 1 || o->d_model < 1 || o->d_ff < 1 || o->heads < 1 || o->kv_heads < 1 ||
        o->reps < 1 || o->warmup < 0) {
        fprintf(err, "realbench llm-step: layers, d-model, d-ff, heads, kv-heads and reps must "
                     "be >= 1\n");
        return 2;
    }
    if (o->d_model % o->heads || o->heads % o->kv_heads) {
        fprintf(err, "realbench llm-step: d-model must be a multiple of heads, and heads of "
                     "kv-heads\n");
        return 2;
    }
    if ((unsigned)o->precision >= RB_LLM_N_PREC) {
        fprintf(err, "realbench llm-step: unknown precision\n");
        return 2;
    }
    const int *lists[] = {o->prefill, o->decode, o->contexts};
    const int counts[] = {o->n_prefill, o->n_decode, o->n_contexts};
    for (int l = 0; l < 3; l++) {
        int bad = counts[l] < 1 || counts[l] > RB_LLM_GRID_MAX;
        for (int i = 0; !bad && i < counts[l]; i++)
            bad = lists[l][i] < 1 || lists[l][i] > (1 << 20) ||
                  (i && lists[l][i] <= lists[l][i - 1]);
        if (bad) {
            fprintf(err, "realbench llm-step: --prefill, --decode and --contexts are 1 to %d "
                         "ascending sizes >= 1\n", RB_LLM_GRID_MAX);
            return 2;
        }
    }
    return 0;
}

/* The bounds, set against the error the arithmetic makes. FP16: every
 * GEMM operand and the KV cache rounded to half (relative error <= 2^-11
 * each), a few such roundings per layer, sums in FP32: 4e-4 to 8e-4 of the
 * output's scale measured (1 to 8 layers, d_model 64 to 256); bound 5e-3.
 * INT8: each operand rounded to 1/254 of its row's largest value, ~7
 * quantised products per layer, errors that add at random: 0.010 to 0.016
 * measured on the same shapes; bound 0.05. Beyond these is a wrong kernel,
 * not rounding (a swapped scale or index gives errors of order 1). */
double rb_llm_error_bound(rb_llm_precision p)
{
    return p == RB_LLM_FP16 ? 5e-3 : p == RB_LLM_INT8 ? 5e-2 : 1e-5;
}

int rb_llm_check(const rb_llm_opts *o, double *rel_err, FILE *err)
{
    *rel_err = INFINITY;
    int rc = bad_opts(o, err);
    if (rc)
        return rc;
    /* a prefill chunk on cached context, decode at three contexts, and the
     * two mixed; then a second step over the cache the first wrote */
    static const rb_llm_chunk a[] = {{24, 40}, {1, 7}, {1, 63}, {1, 100}};
    static const rb_llm_chunk b[] = {{1, 64}, {9, 0}};
    rb_llm_net *ref = rb_llm_net_new(o, RB_LLM_FP32, 32, 128);
    rb_llm_net *got = rb_llm_net_new(o, o->precision, 32, 128);
    if (!ref || !got) {
        fprintf(err, "realbench llm-step: out of memory\n");
        rb_llm_net_free(ref);
        rb_llm_net_free(got);
        return 1;
    }
    double worst = 0;
    for (int s = 0; s < 2; s++) {
        const rb_llm_chunk *ch = s ? b : a;
        int n = s ? 2 : 4;
        rb_llm_net_step(ref, ch, n);
        rb_llm_net_step(got, ch, n);
        size_t nr, ng;
        const float *yr = rb_llm_net_output(ref, &nr), *yg = rb_llm_net_output(got, &ng);
        double scale = 0, e = 0;
        for (size_t i = 0; i < nr && nr == ng; i++) {
            scale = fmax(scale, fabs(yr[i]));
            e = fmax(e, fabs((double)yg[i] - yr[i]));
        }
        double rel = nr == ng && nr > 0 && scale > 0 && isfinite(e) ? e / scale : INFINITY;
        worst = fmax(worst, rel);
    }
    rb_llm_net_free(ref);
    rb_llm_net_free(got);
    *rel_err = worst;
    if (!(worst <= rb_llm_error_bound(o->precision))) {
        fprintf(err, "realbench llm-step: %s output differs from FP32 by %.3g of its scale "
                     "(bound %.3g)\n", rb_llm_precision_name(o->precision), worst,
                rb_llm_error_bound(o->precision));
        return 4;
    }
    return 0;
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

int rb_llm_bench(const rb_llm_opts *o, rb_llm_step **out, int *n_out, FILE *log, FILE *err)
{
    *out = NULL;
    *n_out = 0;
    int rc = bad_opts(o, err);
    if (rc)
        return rc;
    rb_llm_grid_step *grid = NULL;
    int n_grid = rb_llm_grid(o, &grid);
    if (n_grid < 0) {
        fprintf(err, "realbench llm-step: out of memory\n");
        return 1;
    }
    int max_tokens = 0, max_ctx = 0, max_chunks = 0;
    for (int g = 0; g < n_grid; g++) {
        int t = grid[g].n_prefill * grid[g].prefill_n + grid[g].n_decode;
        int c = grid[g].prefill_c + grid[g].prefill_n;
        if (grid[g].decode_c + 1 > c)
            c = grid[g].decode_c + 1;
        max_tokens = t > max_tokens ? t : max_tokens;
        max_ctx = c > max_ctx ? c : max_ctx;
        if (grid[g].n_prefill + grid[g].n_decode > max_chunks)
            max_chunks = grid[g].n_prefill + grid[g].n_decode;
    }
    rb_llm_net *m = rb_llm_net_new(o, o->precision, max_tokens, max_ctx);
    rb_llm_step *steps = calloc((size_t)n_grid, sizeof *steps);
    double *t = malloc(sizeof *t * (size_t)o->reps);
    rb_llm_chunk *ch = malloc(sizeof *ch * (size_t)max_chunks);
    rc = m && steps && t && ch ? 0 : 1;
    for (int g = 0; !rc && g < n_grid; g++) {
        rb_llm_step *s = &steps[g];
        int k = grid_chunks(&grid[g], ch, s);
        for (int r = 0; r < o->warmup; r++)
            rb_llm_net_step(m, ch, k);
        for (int r = 0; r < o->reps; r++) {
            double t0 = now_s();
            rb_llm_net_step(m, ch, k);
            t[r] = now_s() - t0;
        }
        gsl_sort(t, 1, (size_t)o->reps);
        s->latency_s = gsl_stats_median_from_sorted_data(t, 1, (size_t)o->reps);
        s->reps = o->reps;
        if (log && !o->quiet)
            fprintf(log, "  %s step %2d: prefill %5.0f tokens, decode %3.0f seqs, context "
                    "%7.0f: %.6f s\n", rb_llm_precision_name(o->precision), g,
                    s->prefill_tokens, s->decode_seqs, s->context_tokens, s->latency_s);
    }
    free(t);
    free(ch);
    free(grid);
    rb_llm_net_free(m);
    if (rc) {
        free(steps);
        fprintf(err, "realbench llm-step: out of memory\n");
        return 1;
    }
    *out = steps;
    *n_out = n_grid;
    return 0;
}

/* ---- the profile's "llm_step" ----------------------------------------- */

static const char *const COEF[] = {"overhead_s", "per_prefill_token_s", "per_decode_seq_s",
                                   "per_context_token_s", "per_prefill_attention_s"};

cJSON *rb_llm_step_json(const rb_llm_opts *o, const char *device_kind, const char *impl,
                        const rb_llm_step *steps, int n, const rb_llm_fit *fit,
                        double check_err, double check_bound)
{
    cJSON *j = cJSON_CreateObject();
    cJSON *k = cJSON_AddObjectToObject(j, "kernel");
    char what[160];
    snprintf(what, sizeof what, "decoder layer stack: QKV, attention over the cached context, "
             "output projection, MLP (%s, %s)", rb_llm_precision_name(o->precision),
             !strcmp(device_kind, "cpu") ? "one thread" : device_kind);
    cJSON_AddStringToObject(k, "what", what);
    cJSON_AddStringToObject(k, "precision", rb_llm_precision_name(o->precision));
    cJSON_AddNumberToObject(k, "layers", o->layers);
    cJSON_AddNumberToObject(k, "d_model", o->d_model);
    cJSON_AddNumberToObject(k, "d_ff", o->d_ff);
    cJSON_AddNumberToObject(k, "heads", o->heads);
    cJSON_AddNumberToObject(k, "kv_heads", o->kv_heads);
    cJSON_AddStringToObject(k, "impl", impl);
    if (check_err >= 0) {
        cJSON *c = cJSON_AddObjectToObject(k, "check");
        cJSON_AddStringToObject(c, "against", "fp32");
        cJSON_AddNumberToObject(c, "max_rel_err", check_err);
        cJSON_AddNumberToObject(c, "bound", check_bound);
    }
    double coef[NCOEF] = {fit->overhead_s, fit->per_prefill_token_s, fit->per_decode_seq_s,
                          fit->per_context_token_s, fit->per_prefill_attention_s};
    for (int a = 0; a < NCOEF; a++)
        cJSON_AddNumberToObject(j, COEF[a], coef[a]);
    cJSON_AddNumberToObject(j, "residual_sd_s", fit->residual_sd_s);
    cJSON_AddNumberToObject(j, "r2", fit->r2);
    cJSON_AddStringToObject(j, "method", "gsl_multifit_linear on the medians, rows divided by "
                            "their latency (relative residuals); a coefficient below 0 fixed "
                            "at 0 and the rest refitted");
    cJSON *z = cJSON_AddArrayToObject(j, "fixed_at_zero");
    for (int a = 0; a < NCOEF; a++)
        if (fit->zeroed & (1 << a))
            cJSON_AddItemToArray(z, cJSON_CreateString(COEF[a]));
    cJSON *st = cJSON_AddObjectToObject(j, "steps");
    const char *names[] = {"prefill_tokens", "decode_seqs", "context_tokens", "latency_s",
                           "reps", "fitted_s", "rel_residual", "prefill_attention_pairs"};
    for (int a = 0; a < 8; a++) {
        cJSON *arr = cJSON_AddArrayToObject(st, names[a]);
        for (int i = 0; i < n; i++) {
            double f = rb_llm_fit_apply(fit, &steps[i]);
            double v = a == 0 ? steps[i].prefill_tokens
                       : a == 1 ? steps[i].decode_seqs
                       : a == 2 ? steps[i].context_tokens
                       : a == 3 ? steps[i].latency_s
                       : a == 4 ? steps[i].reps
                       : a == 5 ? f
                       : a == 6 ? (steps[i].latency_s - f) / steps[i].latency_s
                                : steps[i].prefill_attention_pairs;
            cJSON_AddItemToArray(arr, cJSON_CreateNumber(v));
        }
    }
    return j;
}

void rb_llm_step_put(cJSON *root, const char *name, cJSON *section)
{
    cJSON *ls = cJSON_GetObjectItemCaseSensitive(root, "llm_step");
    if (!cJSON_IsObject(ls)) {
        cJSON_DeleteItemFromObjectCaseSensitive(root, "llm_step");
        ls = cJSON_AddObjectToObject(root, "llm_step");
    }
    cJSON *pr = cJSON_GetObjectItemCaseSensitive(ls, "precisions");
    if (!cJSON_IsObject(pr)) {
        cJSON_DeleteItemFromObjectCaseSensitive(ls, "precisions");
        pr = cJSON_AddObjectToObject(ls, "precisions");
    }
    int top = !strcmp(name, "fp32") || !cJSON_GetObjectItemCaseSensitive(ls, COEF[0]);
    if (top) /* the top level, as profiles without precisions have it */
        for (const cJSON *x = section->child; x; x = x->next) {
            cJSON_DeleteItemFromObjectCaseSensitive(ls, x->string);
            cJSON_AddItemToObject(ls, x->string, cJSON_Duplicate(x, 1));
        }
    cJSON_DeleteItemFromObjectCaseSensitive(pr, name);
    cJSON_AddItemToObject(pr, name, section);
    /* "precisions" last, after the top level's fields */
    cJSON_DetachItemViaPointer(ls, pr);
    cJSON_AddItemToObject(ls, "precisions", pr);
}
