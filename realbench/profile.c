/*
 * profile.c - raw measurements (CSV) and calibration profiles (JSON).
 *
 * Raw measurements are every timed repetition per precision and batch, plus
 * metadata as a cJSON object. They come from the CPU benchmark directly or
 * from the CSV the CUDA benchmark writes: `# key=value` lines (dotted keys
 * become nested objects; a value in double quotes is a string, one that parses
 * fully as a number is a number), then `precision,impl,batch,rep,latency_s`
 * rows. Several CSVs can be read into one raw set (one per precision, say).
 * The profile holds, per precision and batch, the median (or, with
 * settings.center = "mean", the mean) as latency_s, the other of the two, and
 * the 10th/90th percentiles (GSL, from the sorted samples), and a
 * least-squares line latency = alpha + beta * batch through latency_s
 * (gsl_fit_linear) with
 * the residual standard deviation; and speedups between precisions.
 */
#include "realbench.h"

#include <cjson/cJSON.h>
#include <gsl/gsl_fit.h>
#include <gsl/gsl_sort.h>
#include <gsl/gsl_statistics_double.h>
#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

void rb_raw_init(rb_raw *r)
{
    memset(r, 0, sizeof *r);
    r->meta = cJSON_CreateObject();
}

void rb_raw_free(rb_raw *r)
{
    for (int i = 0; i < r->n_series; i++)
        free(r->series[i].samples_s);
    free(r->series);
    cJSON_Delete(r->meta);
    memset(r, 0, sizeof *r);
}

static rb_series *find_series(rb_raw *r, const char *prec, int batch, const char *impl, int create)
{
    for (int i = 0; i < r->n_series; i++)
        if (r->series[i].batch == batch && !strcmp(r->series[i].precision, prec))
            return &r->series[i];
    if (!create)
        return NULL;
    rb_series *s = realloc(r->series, (size_t)(r->n_series + 1) * sizeof *s);
    if (!s)
        return NULL;
    r->series = s;
    s = &r->series[r->n_series++];
    memset(s, 0, sizeof *s);
    snprintf(s->precision, sizeof s->precision, "%s", prec);
    snprintf(s->impl, sizeof s->impl, "%s", impl);
    s->batch = batch;
    return s;
}

int rb_raw_add(rb_raw *r, const char *precision, const char *impl, int batch,
               const double *samples_s, size_t n)
{
    rb_series *s = find_series(r, precision, batch, impl, 1);
    if (!s)
        return -1;
    double *x = realloc(s->samples_s, (s->n + n) * sizeof *x);
    if (!x && s->n + n)
        return -1;
    memcpy(x + s->n, samples_s, n * sizeof *x);
    s->samples_s = x;
    s->n += n;
    return 0;
}

static cJSON *value_of(const char *v)
{
    size_t len = strlen(v);
    if (len >= 2 && v[0] == '"' && v[len - 1] == '"') {
        char *s = strndup(v + 1, len - 2);
        cJSON *j = cJSON_CreateString(s ? s : "");
        free(s);
        return j;
    }
    char *end;
    double d = strtod(v, &end);
    if (len && !*end && isfinite(d))
        return cJSON_CreateNumber(d);
    return cJSON_CreateString(v);
}

int rb_raw_set_meta(rb_raw *r, const char *dotted_key, const char *value)
{
    char *key = strdup(dotted_key);
    if (!key)
        return -1;
    cJSON *obj = r->meta;
    char *save = NULL, *part = strtok_r(key, ".", &save);
    while (part) {
        char *next = strtok_r(NULL, ".", &save);
        if (!next) {
            cJSON *v = value_of(value);
            if (cJSON_GetObjectItemCaseSensitive(obj, part))
                cJSON_ReplaceItemInObjectCaseSensitive(obj, part, v);
            else
                cJSON_AddItemToObject(obj, part, v);
        } else {
            cJSON *child = cJSON_GetObjectItemCaseSensitive(obj, part);
            if (!cJSON_IsObject(child)) {
                cJSON_DeleteItemFromObjectCaseSensitive(obj, part);
                child = cJSON_AddObjectToObject(obj, part);
            }
            obj = child;
        }
        part = next;
    }
    free(key);
    return 0;
}

static void write_meta(const cJSON *o, const char *prefix, FILE *out)
{
    for (const cJSON *c = o->child; c; c = c->next) {
        char path[256];
        snprintf(path, sizeof path, "%s%s%s", prefix, *prefix ? "." : "", c->string);
        if (cJSON_IsObject(c))
            write_meta(c, path, out);
        else if (cJSON_IsString(c))
            fprintf(out, "# %s=\"%s\"\n", path, c->valuestring);
        else if (cJSON_IsNumber(c))
            fprintf(out, "# %s=%.17g\n", path, c->valuedouble);
    }
}

int rb_raw_write_csv(const rb_raw *r, FILE *out)
{
    fprintf(out, "# fleetsim-realbench-raw/1\n");
    write_meta(r->meta, "", out);
    fprintf(out, "precision,impl,batch,rep,latency_s\n");
    for (int i = 0; i < r->n_series; i++)
        for (size_t k = 0; k < r->series[i].n; k++)
            fprintf(out, "%s,%s,%d,%zu,%.9g\n", r->series[i].precision, r->series[i].impl,
                    r->series[i].batch, k, r->series[i].samples_s[k]);
    return ferror(out) ? -1 : 0;
}

int rb_raw_read_csv(rb_raw *r, const char *path, FILE *err)
{
    FILE *f = fopen(path, "r");
    if (!f) {
        fprintf(err, "%s: cannot open\n", path);
        return -1;
    }
    char *line = NULL; /* getline: no line is split, so line numbers stay right */
    size_t line_cap = 0;
    int ln = 0, bad = 0, header = 0;
    while (getline(&line, &line_cap, f) != -1) {
        ln++;
        line[strcspn(line, "\r\n")] = 0;
        if (!line[0])
            continue;
        if (line[0] == '#') {
            const char *s = line + 1 + (line[1] == ' ');
            const char *eq = strchr(s, '=');
            if (ln == 1 && strcmp(s, "fleetsim-realbench-raw/1")) {
                fprintf(err, "%s:1: not a realbench raw CSV (want '# fleetsim-realbench-raw/1')\n",
                        path);
                bad = 1;
                break;
            }
            if (eq && eq > s) {
                char *key = strndup(s, (size_t)(eq - s));
                if (!key || rb_raw_set_meta(r, key, eq + 1))
                    bad = 1;
                free(key);
            }
            continue;
        }
        if (!strcmp(line, "precision,impl,batch,rep,latency_s")) {
            header = 1;
            continue;
        }
        char prec[32], impl[32];
        int batch, rep, used = 0;
        double t;
        if (!header || sscanf(line, "%31[^,],%31[^,],%d,%d,%lf%n", prec, impl, &batch, &rep, &t,
                              &used) != 5 || line[used] || batch < 1 || !(t > 0)) {
            fprintf(err, "%s:%d: bad row '%s'\n", path, ln, line);
            bad = 1;
            continue;
        }
        if (rb_raw_add(r, prec, impl, batch, &t, 1))
            bad = 1;
    }
    free(line);
    fclose(f);
    if (!bad && !header) {
        fprintf(err, "%s: no 'precision,impl,batch,rep,latency_s' header\n", path);
        bad = 1;
    }
    return bad ? -1 : 0;
}

int rb_fit_linear(const int *batch, const double *latency_s, int n, rb_fit *fit)
{
    memset(fit, 0, sizeof *fit);
    if (n < 1)
        return -1;
    if (n == 1) { /* one point: a constant, exactly */
        fit->alpha_s = latency_s[0];
        fit->r2 = 1;
        return 0;
    }
    double *x = malloc((size_t)n * sizeof *x);
    if (!x)
        return -1;
    for (int i = 0; i < n; i++)
        x[i] = batch[i];
    double c0, c1, cov00, cov01, cov11, sumsq;
    int rc = gsl_fit_linear(x, 1, latency_s, 1, (size_t)n, &c0, &c1, &cov00, &cov01, &cov11, &sumsq);
    double var = n > 1 ? gsl_stats_variance(latency_s, 1, (size_t)n) * (n - 1) : 0;
    free(x);
    if (rc)
        return -1;
    fit->alpha_s = c0;
    fit->beta_s = c1;
    fit->residual_sd_s = n > 2 ? sqrt(sumsq / (n - 2)) : 0;
    fit->r2 = var > 0 ? 1 - sumsq / var : 1;
    return 0;
}

static int cmp_int(const void *a, const void *b)
{
    return (*(const int *)a > *(const int *)b) - (*(const int *)a < *(const int *)b);
}

/* Precisions in a stable order: known ones first, then any others. */
static int prec_list(const rb_raw *raw, const char **out, int max)
{
    static const char *known[] = {"int8", "int8_dp4a", "fp16", "bf16", "tf32", "fp32"};
    int n = 0;
    for (size_t k = 0; k < sizeof known / sizeof *known; k++)
        for (int i = 0; i < raw->n_series; i++)
            if (!strcmp(raw->series[i].precision, known[k])) {
                out[n++] = known[k];
                break;
            }
    for (int i = 0; i < raw->n_series && n < max; i++) {
        int seen = 0;
        for (int j = 0; j < n; j++)
            seen |= !strcmp(out[j], raw->series[i].precision);
        if (!seen)
            out[n++] = raw->series[i].precision;
    }
    return n;
}

static cJSON *num_array(const double *v, int n)
{
    cJSON *a = cJSON_CreateArray();
    for (int i = 0; i < n; i++)
        cJSON_AddItemToArray(a, isfinite(v[i]) ? cJSON_CreateNumber(v[i]) : cJSON_CreateNull());
    return a;
}

/* A batch cannot take less time than a smaller one on the same kernels:
 * a latency that falls as the batch grows is noise or a change of kernel,
 * and the simulator would read it as written (interpolating between the
 * batches). Warns for each fall, saying whether it is within the spread
 * of the repetitions (the 10-90% ranges of the two batches overlap). */
static void warn_not_monotone(FILE *err, const char *prec, const int *b, const double *lat,
                              const double *p10, const double *p90, int nb, const char *center)
{
    for (int k = 1; k < nb; k++)
        if (lat[k] < lat[k - 1])
            fprintf(err, "realbench: warning: %s latency is not monotone in batch size: batch %d "
                         "takes %.4g ms (%s), less than batch %d's %.4g ms, %s; fleetsim uses "
                         "the profile as written (more repetitions, --reps, may settle it)\n",
                    prec, b[k], 1e3 * lat[k], center, b[k - 1], 1e3 * lat[k - 1],
                    p90[k] < p10[k - 1] ? "beyond the spread of the repetitions (10-90% ranges "
                                          "apart)"
                                        : "within the spread of the repetitions");
}

cJSON *rb_profile_build(const rb_raw *raw, FILE *err)
{
    enum { MAXP = 32 };
    const char *precs[MAXP];
    int np = prec_list(raw, precs, MAXP);
    if (!np) {
        fprintf(err, "realbench: no measurements to build a profile from\n");
        return NULL;
    }
    cJSON *root = cJSON_CreateObject();
    cJSON_AddStringToObject(root, "schema", "fleetsim-calibration/1");
    /* metadata in a fixed order, then whatever else was recorded */
    static const char *first[] = {"device", "created", "model", "settings"};
    for (size_t i = 0; i < sizeof first / sizeof *first; i++) {
        cJSON *m = cJSON_GetObjectItemCaseSensitive(raw->meta, first[i]);
        if (m)
            cJSON_AddItemToObject(root, first[i], cJSON_Duplicate(m, 1));
    }
    for (cJSON *m = raw->meta->child; m; m = m->next) {
        /* what is built below is the measurement's, never a comment's */
        int skip = !strcmp(m->string, "schema") || !strcmp(m->string, "precisions") ||
                   !strcmp(m->string, "speedup");
        for (size_t i = 0; i < sizeof first / sizeof *first; i++)
            skip |= !strcmp(m->string, first[i]);
        if (!skip)
            cJSON_AddItemToObject(root, m->string, cJSON_Duplicate(m, 1));
    }
    /* latency_s: the median of the repetitions, or their mean when the raw
     * set says settings.center = "mean" (the mean is what sets a queue's load) */
    const char *center = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(
        cJSON_GetObjectItemCaseSensitive(raw->meta, "settings"), "center"));
    int use_mean = center && !strcmp(center, "mean");
    cJSON *pj = cJSON_AddObjectToObject(root, "precisions");
    /* union of batches, for the speedup table */
    int *all = malloc((size_t)raw->n_series * sizeof *all), nall = 0;
    for (int i = 0; all && i < raw->n_series; i++) {
        int seen = 0;
        for (int j = 0; j < nall; j++)
            seen |= all[j] == raw->series[i].batch;
        if (!seen)
            all[nall++] = raw->series[i].batch;
    }
    if (all)
        qsort(all, (size_t)nall, sizeof *all, cmp_int);
    double *med_all = calloc((size_t)np * (nall ? nall : 1), sizeof *med_all);
    if (!all || !med_all) {
        free(all), free(med_all), cJSON_Delete(root);
        fprintf(err, "realbench: out of memory\n");
        return NULL;
    }
    for (int p = 0; p < np; p++) {
        int nb = 0;
        int *b = malloc((size_t)nall * sizeof *b);
        double *med = malloc((size_t)nall * sizeof *med), *p10 = malloc((size_t)nall * sizeof *p10),
               *p90 = malloc((size_t)nall * sizeof *p90), *mn = malloc((size_t)nall * sizeof *mn),
               *mx = malloc((size_t)nall * sizeof *mx), *per = malloc((size_t)nall * sizeof *per),
               *mean = malloc((size_t)nall * sizeof *mean), *lat = malloc((size_t)nall * sizeof *lat);
        if (!b || !med || !p10 || !p90 || !mn || !mx || !per || !mean || !lat) {
            free(b), free(med), free(p10), free(p90), free(mn), free(mx), free(per), free(mean), free(lat);
            free(all), free(med_all), cJSON_Delete(root);
            fprintf(err, "realbench: out of memory\n");
            return NULL;
        }
        cJSON *reps = cJSON_CreateArray();
        const char *impl = "";
        for (int k = 0; k < nall; k++) {
            med_all[p * nall + k] = NAN;
            rb_series *s = find_series((rb_raw *)raw, precs[p], all[k], "", 0);
            if (!s || !s->n)
                continue;
            impl = s->impl;
            double *x = malloc(s->n * sizeof *x);
            if (!x)
                continue;
            memcpy(x, s->samples_s, s->n * sizeof *x);
            gsl_sort(x, 1, s->n);
            b[nb] = s->batch;
            med[nb] = gsl_stats_median_from_sorted_data(x, 1, s->n);
            mean[nb] = gsl_stats_mean(x, 1, s->n);
            lat[nb] = use_mean ? mean[nb] : med[nb];
            p10[nb] = gsl_stats_quantile_from_sorted_data(x, 1, s->n, 0.10);
            p90[nb] = gsl_stats_quantile_from_sorted_data(x, 1, s->n, 0.90);
            mn[nb] = x[0];
            mx[nb] = x[s->n - 1];
            per[nb] = lat[nb] / s->batch;
            med_all[p * nall + k] = lat[nb];
            cJSON_AddItemToArray(reps, cJSON_CreateNumber((double)s->n));
            nb++;
            free(x);
        }
        warn_not_monotone(err, precs[p], b, lat, p10, p90, nb, use_mean ? "mean" : "median");
        cJSON *o = cJSON_AddObjectToObject(pj, precs[p]);
        cJSON_AddStringToObject(o, "impl", impl);
        cJSON *ba = cJSON_AddArrayToObject(o, "batch");
        for (int k = 0; k < nb; k++)
            cJSON_AddItemToArray(ba, cJSON_CreateNumber(b[k]));
        cJSON_AddItemToObject(o, "latency_s", num_array(lat, nb));
        if (use_mean)
            cJSON_AddItemToObject(o, "median_s", num_array(med, nb));
        else
            cJSON_AddItemToObject(o, "mean_s", num_array(mean, nb));
        cJSON_AddItemToObject(o, "p10_s", num_array(p10, nb));
        cJSON_AddItemToObject(o, "p90_s", num_array(p90, nb));
        cJSON_AddItemToObject(o, "min_s", num_array(mn, nb));
        cJSON_AddItemToObject(o, "max_s", num_array(mx, nb));
        cJSON_AddItemToObject(o, "per_item_s", num_array(per, nb));
        cJSON_AddItemToObject(o, "reps", reps);
        rb_fit fit;
        if (!rb_fit_linear(b, lat, nb, &fit)) {
            cJSON *f = cJSON_AddObjectToObject(o, "fit");
            cJSON_AddNumberToObject(f, "alpha_s", fit.alpha_s);
            cJSON_AddNumberToObject(f, "beta_s", fit.beta_s);
            cJSON_AddNumberToObject(f, "residual_sd_s", fit.residual_sd_s);
            cJSON_AddNumberToObject(f, "r2", fit.r2);
            cJSON_AddStringToObject(f, "method", use_mean ? "gsl_fit_linear on the means, unweighted"
                                                          : "gsl_fit_linear on the medians, unweighted");
        }
        /* The unweighted line is ruled by the largest batches (its alpha can
         * even be negative); weighting by 1/latency^2 fits relative error,
         * which describes small batches better. */
        double *w = malloc((size_t)(nb ? nb : 1) * sizeof *w), *xb = malloc((size_t)(nb ? nb : 1) * sizeof *xb);
        double c0, c1, v00, v01, v11, chisq;
        if (w && xb && nb > 2) {
            for (int k = 0; k < nb; k++)
                w[k] = 1 / (lat[k] * lat[k]), xb[k] = b[k];
            if (!gsl_fit_wlinear(xb, 1, w, 1, lat, 1, (size_t)nb, &c0, &c1, &v00, &v01, &v11, &chisq)) {
                cJSON *f = cJSON_AddObjectToObject(o, "fit_relative");
                cJSON_AddNumberToObject(f, "alpha_s", c0);
                cJSON_AddNumberToObject(f, "beta_s", c1);
                cJSON_AddNumberToObject(f, "residual_sd_rel", sqrt(chisq / (nb - 2)));
                cJSON_AddStringToObject(f, "method", use_mean ? "gsl_fit_wlinear on the means, weights 1/latency^2"
                                                              : "gsl_fit_wlinear on the medians, weights 1/latency^2");
            }
        }
        free(w), free(xb);
        free(b), free(med), free(p10), free(p90), free(mn), free(mx), free(per), free(mean), free(lat);
    }
    /* speedup a_vs_b = latency(b) / latency(a): > 1 when a is faster */
    static const char *pairs[][2] = {{"int8", "fp32"},      {"int8", "fp16"},
                                     {"int8", "bf16"},      {"fp16", "fp32"},
                                     {"bf16", "fp32"},      {"tf32", "fp32"},
                                     {"int8_dp4a", "fp32"}, {"int8", "int8_dp4a"}};
    cJSON *sp = cJSON_AddObjectToObject(root, "speedup");
    cJSON *sb = cJSON_AddArrayToObject(sp, "batch");
    for (int k = 0; k < nall; k++)
        cJSON_AddItemToArray(sb, cJSON_CreateNumber(all[k]));
    double *ratio = malloc((size_t)(nall ? nall : 1) * sizeof *ratio);
    for (size_t q = 0; ratio && q < sizeof pairs / sizeof *pairs; q++) {
        int ia = -1, ib = -1;
        for (int p = 0; p < np; p++) {
            if (!strcmp(precs[p], pairs[q][0]))
                ia = p;
            if (!strcmp(precs[p], pairs[q][1]))
                ib = p;
        }
        if (ia < 0 || ib < 0)
            continue;
        for (int k = 0; k < nall; k++)
            ratio[k] = med_all[ib * nall + k] / med_all[ia * nall + k];
        char key[80];
        snprintf(key, sizeof key, "%s_vs_%s", pairs[q][0], pairs[q][1]);
        cJSON_AddItemToObject(sp, key, num_array(ratio, nall));
    }
    free(ratio);
    free(all);
    free(med_all);
    return root;
}

int rb_profile_write(const cJSON *profile, const char *path, FILE *err)
{
    char *s = cJSON_Print(profile);
    FILE *f = s ? fopen(path, "w") : NULL;
    int rc = 0;
    if (!f || fputs(s, f) < 0 || fputc('\n', f) == EOF)
        rc = -1;
    if (f && fclose(f))
        rc = -1;
    if (rc)
        fprintf(err, "%s: cannot write profile\n", path);
    free(s);
    return rc;
}

/* An array of n numbers (null allowed where nulls), or -1 if not. */
static int num_array_len(const cJSON *a, int nulls)
{
    if (!cJSON_IsArray(a))
        return -1;
    int n = 0;
    for (const cJSON *x = a->child; x; x = x->next, n++)
        if (!cJSON_IsNumber(x) && !(nulls && cJSON_IsNull(x)))
            return -1;
    return n;
}

/* The shape every reader of a profile relies on (the schema in README.md):
 * per precision, batch sizes (integers >= 1, strictly ascending) and as
 * many latency_s (> 0); the other per-batch arrays, where present, numbers
 * or null, one per batch; fit's members, where present, numbers; speedup,
 * where present, a batch array and one number or null per batch in each
 * ratio. 0, or -1 with "path: where: what" on err. */
static int check_profile(const cJSON *j, const char *path, FILE *err)
{
    const cJSON *pr = cJSON_GetObjectItemCaseSensitive(j, "precisions");
    const cJSON *ls = cJSON_GetObjectItemCaseSensitive(j, "llm_step");
    if (ls) {
        /* the fifth, per_prefill_attention_s, optional (0 when absent) */
        static const char *const coef[] = {"overhead_s", "per_prefill_token_s",
                                           "per_decode_seq_s", "per_context_token_s",
                                           "per_prefill_attention_s"};
        for (size_t i = 0; i < sizeof coef / sizeof *coef; i++) {
            const cJSON *x = cJSON_GetObjectItemCaseSensitive(ls, coef[i]);
            if (i == 4 && cJSON_IsObject(ls) && !x)
                continue;
            if (!cJSON_IsObject(ls) || !cJSON_IsNumber(x) || !isfinite(x->valuedouble)) {
                fprintf(err, "%s: llm_step.%s must be a finite number\n", path, coef[i]);
                return -1;
            }
        }
    }
    /* llm_step.precisions.<p>: each a section with the same four numbers */
    const cJSON *lp = cJSON_IsObject(ls) ? cJSON_GetObjectItemCaseSensitive(ls, "precisions")
                                         : NULL;
    if (lp && !cJSON_IsObject(lp)) {
        fprintf(err, "%s: llm_step.precisions must be an object of precisions\n", path);
        return -1;
    }
    for (const cJSON *o = lp ? lp->child : NULL; o; o = o->next) {
        static const char *const coef[] = {"overhead_s", "per_prefill_token_s",
                                           "per_decode_seq_s", "per_context_token_s",
                                           "per_prefill_attention_s"};
        for (size_t i = 0; i < sizeof coef / sizeof *coef; i++) {
            const cJSON *x = cJSON_GetObjectItemCaseSensitive(o, coef[i]);
            if (i == 4 && cJSON_IsObject(o) && !x)
                continue;
            if (!cJSON_IsObject(o) || !cJSON_IsNumber(x) || !isfinite(x->valuedouble)) {
                fprintf(err, "%s: llm_step.precisions.%s.%s must be a finite number\n", path,
                        o->string ? o->string : "", coef[i]);
                return -1;
            }
        }
    }
    if (ls && !pr)
        return 0; /* a profile of LLM steps alone */
    if (!cJSON_IsObject(pr) || !pr->child) {
        fprintf(err, "%s: \"precisions\" must be an object with one entry per precision\n", path);
        return -1;
    }
    for (const cJSON *o = pr->child; o; o = o->next) {
        const char *name = o->string ? o->string : "";
        if (!cJSON_IsObject(o)) {
            fprintf(err, "%s: precisions.%s must be an object\n", path, name);
            return -1;
        }
        const cJSON *b = cJSON_GetObjectItemCaseSensitive(o, "batch");
        int n = num_array_len(b, 0);
        double prev = 0;
        for (const cJSON *x = n > 0 ? b->child : NULL; x; x = x->next) {
            if (!(x->valuedouble > prev) || x->valuedouble > INT_MAX ||
                x->valuedouble != floor(x->valuedouble))
                n = -1;
            prev = x->valuedouble;
        }
        if (n < 1) {
            fprintf(err, "%s: precisions.%s.batch must be batch sizes (integers >= 1, strictly "
                    "ascending)\n", path, name);
            return -1;
        }
        const cJSON *l = cJSON_GetObjectItemCaseSensitive(o, "latency_s");
        int bad = num_array_len(l, 0) != n;
        for (const cJSON *x = bad ? NULL : l->child; x; x = x->next)
            bad |= !(x->valuedouble > 0) || !isfinite(x->valuedouble);
        if (bad) {
            fprintf(err, "%s: precisions.%s.latency_s must hold one number > 0 per batch size\n",
                    path, name);
            return -1;
        }
        for (const cJSON *a = o->child; a; a = a->next)
            if (cJSON_IsArray(a) && strcmp(a->string, "batch") && num_array_len(a, 1) != n) {
                fprintf(err, "%s: precisions.%s.%s must hold one number (or null) per batch "
                        "size\n", path, name, a->string);
                return -1;
            }
        const cJSON *f = cJSON_GetObjectItemCaseSensitive(o, "fit");
        static const char *const fit_keys[] = {"alpha_s", "beta_s", "residual_sd_s", "r2"};
        for (size_t i = 0; f && i < sizeof fit_keys / sizeof *fit_keys; i++) {
            const cJSON *x = cJSON_GetObjectItemCaseSensitive(f, fit_keys[i]);
            if (!cJSON_IsObject(f) || (x && !cJSON_IsNumber(x))) {
                fprintf(err, "%s: precisions.%s.fit.%s must be a number\n", path, name,
                        fit_keys[i]);
                return -1;
            }
        }
    }
    const cJSON *sp = cJSON_GetObjectItemCaseSensitive(j, "speedup");
    if (sp) {
        int n = cJSON_IsObject(sp) ? num_array_len(cJSON_GetObjectItemCaseSensitive(sp, "batch"), 0)
                                   : -1;
        if (n < 0) {
            fprintf(err, "%s: speedup must be an object with a batch array\n", path);
            return -1;
        }
        for (const cJSON *a = sp->child; a; a = a->next)
            if (num_array_len(a, 1) != n) {
                fprintf(err, "%s: speedup.%s must hold one number (or null) per batch size\n",
                        path, a->string);
                return -1;
            }
    }
    return 0;
}

cJSON *rb_profile_read(const char *path, FILE *err)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        fprintf(err, "%s: cannot open\n", path);
        return NULL;
    }
    size_t cap = 1 << 16, len = 0;
    char *buf = malloc(cap);
    for (size_t got; buf && (got = fread(buf + len, 1, cap - len - 1, f)) > 0;) {
        len += got;
        if (len + 1 == cap) {
            char *nb = realloc(buf, cap *= 2);
            if (!nb) {
                free(buf);
                buf = NULL;
            }
            buf = nb;
        }
    }
    fclose(f);
    if (!buf) {
        fprintf(err, "%s: out of memory\n", path);
        return NULL;
    }
    buf[len] = 0;
    cJSON *j = cJSON_Parse(buf);
    free(buf);
    if (!j || !cJSON_IsObject(j) ||
        !cJSON_IsString(cJSON_GetObjectItemCaseSensitive(j, "schema")) ||
        strcmp(cJSON_GetObjectItemCaseSensitive(j, "schema")->valuestring, "fleetsim-calibration/1")) {
        fprintf(err, "%s: not a fleetsim-calibration/1 profile\n", path);
        cJSON_Delete(j);
        return NULL;
    }
    if (check_profile(j, path, err)) {
        cJSON_Delete(j);
        return NULL;
    }
    return j;
}
