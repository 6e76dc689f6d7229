/*
 * compare.c - run records, t-intervals, and compare.json / compare.md /
 * compare.html (see compare.h). Intervals use GSL's Student t quantile
 * (gsl_cdf_tdist_Pinv) and sample statistics (gsl_stats_*).
 */
#include "compare.h"
#include "report.h"
#include "svg.h"

#include <gsl/gsl_cdf.h>
#include <gsl/gsl_statistics_double.h>

#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#define MAX_SERIES_POINTS 2000

/* ---------- statistics ---------- */

void rp_ci95(const double *x, int n, rp_ci *out)
{
    double *v = malloc(sizeof *v * (size_t)(n > 0 ? n : 1));
    int m = 0;
    for (int i = 0; i < n; i++)
        if (!isnan(x[i]))
            v[m++] = x[i];
    memset(out, 0, sizeof *out);
    out->n = m;
    if (m == 0) {
        out->mean = out->sd = out->half = out->lo = out->hi = NAN;
    } else {
        out->mean = gsl_stats_mean(v, 1, (size_t)m);
        if (m >= 2) {
            out->sd = gsl_stats_sd_m(v, 1, (size_t)m, out->mean);
            out->half = gsl_cdf_tdist_Pinv(0.975, m - 1) * out->sd / sqrt(m);
            out->lo = out->mean - out->half;
            out->hi = out->mean + out->half;
        } else {
            out->sd = out->half = out->lo = out->hi = NAN;
        }
    }
    free(v);
}

int rp_ci_better(const rp_ci *a, const rp_ci *b, int better)
{
    if (a->n < 2 || b->n < 2 || isnan(a->half) || isnan(b->half))
        return 0;
    return better > 0 ? a->lo > b->hi : a->hi < b->lo;
}

/* ---------- metrics ---------- */

enum { F_PCT, F_LAT, F_COUNT, F_NUM, F_COST };

typedef struct {
    const char *key, *label;
    const char *path;          /* dotted path in summary.json; NULL: computed */
    int better;                /* +1 higher is better, -1 lower, 0 not ranked */
    int fmt;
    int llm;                   /* 1: from LLM pools, shown when a run has one;
                                  2: from priced pools, shown when a run has them */
} metric;

static const metric metrics[] = {
    { "availability", "availability", "availability", +1, F_PCT, 0 },
    { "latency_mean", "mean latency", "latency_s.mean", -1, F_LAT, 0 },
    { "latency_p50", "p50", "latency_s.p50", -1, F_LAT, 0 },
    { "latency_p99", "p99", "latency_s.p99", -1, F_LAT, 0 },
    { "errors", "errors", NULL, -1, F_COUNT, 0 },
    { "gpu_hours", "GPU-hours", "cost.gpu_hours", -1, F_NUM, 0 },
    { "energy_kwh", "energy kWh", "cost.energy_kwh", -1, F_NUM, 0 },
    { "peak_replicas", "peak replicas", NULL, 0, F_COUNT, 0 },
    /* LLM pools (summary.json pools.<name>.llm): the worst pool's TTFT,
     * TPOT and E2E p99 and goodput (the SLO holds only where every LLM
     * pool meets it, as rp_slo_met judges; a decode pool's requests count
     * at their prefill pool), the pools' output tokens per
     * second, their cost per million output tokens weighted by each pool's
     * output tokens, and their GPUs at the most replicas */
    { "ttft_p99", "TTFT p99", NULL, -1, F_LAT, 1 },
    { "tpot_p99", "TPOT p99", NULL, -1, F_LAT, 1 },
    { "e2e_p99", "E2E p99", NULL, -1, F_LAT, 1 },
    { "goodput", "goodput", NULL, +1, F_PCT, 1 },
    { "output_tps", "output tok/s", NULL, +1, F_NUM, 1 },
    { "cost_per_mtok", "cost / M output tokens", NULL, -1, F_COST, 1 },
    { "llm_gpus", "GPUs", NULL, 0, F_COUNT, 1 },
    /* Priced pools (summary.json pools.<name>.cost, a hybrid fleet): the
     * whole cost, and its parts: pools paid whether used or not
     * (billing amortised), pools paid by the hour used, and egress */
    { "money", "cost", "cost.money", -1, F_NUM, 2 },
    { "cost_amortised", "cost, amortised pools", NULL, -1, F_NUM, 2 },
    { "cost_used", "cost, pay-per-use pools", NULL, -1, F_NUM, 2 },
    { "cost_egress", "cost, egress", NULL, -1, F_NUM, 2 },
};
#define N_METRICS (int)(sizeof metrics / sizeof metrics[0])

static const cJSON *at(const cJSON *j, const char *path)
{
    char buf[256];
    snprintf(buf, sizeof buf, "%s", path);
    const cJSON *cur = j;
    char *save = NULL;
    for (char *tok = strtok_r(buf, ".", &save); tok && cur; tok = strtok_r(NULL, ".", &save))
        cur = cJSON_GetObjectItemCaseSensitive(cur, tok);
    return cur;
}

static double num_at(const cJSON *j, const char *path)
{
    const cJSON *x = at(j, path);
    return x && cJSON_IsNumber(x) ? x->valuedouble : NAN;
}

/* An LLM metric over the run's LLM pools; NAN when it has none, and for
 * the latencies when a pool finished no request (no p99 can hold then). */
static double llm_value(const cJSON *summary, const char *key)
{
    const cJSON *pools = cJSON_GetObjectItemCaseSensitive(summary, "pools");
    const cJSON *p;
    double v = NAN, tok = 0, weighted = 0;
    int n = 0;
    const char *lat = !strcmp(key, "ttft_p99")   ? "ttft_s.p99"
                      : !strcmp(key, "tpot_p99") ? "tpot_s.p99"
                      : !strcmp(key, "e2e_p99")  ? "e2e_s.p99"
                                                 : NULL;
    cJSON_ArrayForEach(p, pools)
    {
        const cJSON *l = cJSON_GetObjectItemCaseSensitive(p, "llm");
        if (!cJSON_IsObject(l))
            continue;
        double x;
        /* a decode pool's requests are judged at their prefill pool */
        const cJSON *role = cJSON_GetObjectItemCaseSensitive(l, "role");
        int decode = cJSON_IsString(role) && !strcmp(role->valuestring, "decode");
        if (decode && (lat || !strcmp(key, "goodput")))
            continue;
        if (lat) {
            x = num_at(l, "finished") > 0 ? num_at(l, lat) : NAN;
            v = n == 0 || isnan(x) || x > v ? x : v; /* the worst; NAN sticks */
        } else if (!strcmp(key, "goodput")) {
            x = num_at(l, "goodput");
            v = n == 0 || x < v ? x : v;
        } else if (!strcmp(key, "output_tps")) {
            v = (n == 0 ? 0 : v) + num_at(l, "output_tokens_per_s");
        } else if (!strcmp(key, "cost_per_mtok")) {
            double o = num_at(l, "output_tokens");
            tok += o;
            weighted += o * num_at(l, "cost_per_million_output_tokens");
            v = n == 0 ? num_at(l, "cost_per_million_output_tokens") : v;
        } else { /* llm_gpus */
            v = (n == 0 ? 0 : v) + num_at(p, "replicas_max") * num_at(p, "gpus_per_node");
        }
        n++;
    }
    if (!strcmp(key, "cost_per_mtok") && n > 1)
        v = tok > 0 ? weighted / tok : NAN;
    return v;
}

/* A part of the cost over the run's priced pools. */
static double cost_value(const cJSON *summary, const char *key)
{
    const cJSON *p;
    double v = 0;
    cJSON_ArrayForEach(p, cJSON_GetObjectItemCaseSensitive(summary, "pools"))
    {
        const cJSON *c = cJSON_GetObjectItemCaseSensitive(p, "cost");
        if (!cJSON_IsObject(c))
            continue;
        const char *billing = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(c, "billing"));
        int amortised = billing && !strcmp(billing, "amortised");
        if (!strcmp(key, "cost_egress"))
            v += num_at(c, "egress");
        else if (amortised == !strcmp(key, "cost_amortised"))
            v += num_at(c, "compute");
    }
    return v;
}

static double metric_value(const cJSON *summary, int m)
{
    const metric *mt = &metrics[m];
    if (mt->path)
        return num_at(summary, mt->path);
    if (mt->llm == 2)
        return cost_value(summary, mt->key);
    if (mt->llm)
        return llm_value(summary, mt->key);
    if (!strcmp(mt->key, "errors"))
        return num_at(summary, "measured.rejected") + num_at(summary, "measured.failed") +
               num_at(summary, "measured.timed_out");
    /* peak replicas: sum over pools of each pool's maximum */
    const cJSON *pools = cJSON_GetObjectItemCaseSensitive(summary, "pools");
    double sum = 0;
    const cJSON *p;
    cJSON_ArrayForEach(p, pools) sum += num_at(p, "replicas_max");
    return sum;
}

static int metric_index(const char *key)
{
    for (int m = 0; m < N_METRICS; m++)
        if (!strcmp(metrics[m].key, key))
            return m;
    return -1;
}

/* ---------- records ---------- */

static char *slurp(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    rp_buf b = { 0 };
    char chunk[8192];
    size_t got;
    while ((got = fread(chunk, 1, sizeof chunk, f)) > 0)
        rp_buf_add(&b, chunk, got);
    fclose(f);
    if (!b.s)
        rp_buf_add(&b, "", 0);
    return b.s;
}

/* A number rounded to 5 significant digits, so the JSON stays short. */
static double round5(double v)
{
    if (!isfinite(v))
        return v;
    char b[32];
    snprintf(b, sizeof b, "%.5g", v);
    return strtod(b, NULL);
}

static void add_array(cJSON *o, const char *key, const double *v, size_t n)
{
    cJSON *a = cJSON_AddArrayToObject(o, key);
    for (size_t i = 0; i < n; i++)
        cJSON_AddItemToArray(a, isnan(v[i]) ? cJSON_CreateNull() : cJSON_CreateNumber(round5(v[i])));
}

/* The run's time series, compacted to at most MAX_SERIES_POINTS rows:
 * rates are averaged over merged rows, p99 is the highest of them. */
static cJSON *series_from_csv(const char *path, double sim_time_s, FILE *err)
{
    char *text = slurp(path);
    if (!text) {
        fprintf(err, "fleetsim: cannot read %s: %s\n", path, strerror(errno));
        return NULL;
    }
    char *save = NULL, *line = strtok_r(text, "\n", &save);
    enum { C_T, C_OFF, C_DONE, C_REJ, C_FAIL, C_TOUT, C_P99, N_C };
    static const char *const names[N_C] = { "time_s",   "offered_qps", "completed",    "rejected",
                                            "failed",   "timed_out",   "latency_p99_s" };
    int col[N_C];
    for (int k = 0; k < N_C; k++)
        col[k] = -1;
    int n_cols = 0, rep_cols[256], n_rep = 0;
    char *hs = NULL;
    for (char *h = line ? strtok_r(line, ",", &hs) : NULL; h; h = strtok_r(NULL, ",", &hs), n_cols++) {
        for (int k = 0; k < N_C; k++)
            if (!strcmp(h, names[k]))
                col[k] = n_cols;
        size_t l = strlen(h);
        if (l > 9 && !strcmp(h + l - 9, ".replicas") && n_rep < 256)
            rep_cols[n_rep++] = n_cols;
    }
    for (int k = 0; k < N_C; k++)
        if (col[k] < 0) {
            fprintf(err, "fleetsim: %s: no column %s\n", path, names[k]);
            free(text);
            return NULL;
        }
    size_t cap = 1024, n = 0;
    double (*rows)[N_C + 1] = malloc(sizeof *rows * cap);
    double *vals = malloc(sizeof *vals * (size_t)(n_cols + 1));
    for (line = strtok_r(NULL, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        int c = 0;
        char *p = line;
        while (c <= n_cols && *p) {
            char *end;
            vals[c++] = strtod(p, &end);
            p = *end == ',' ? end + 1 : end;
            if (*end != ',')
                break;
        }
        if (c < n_cols)
            continue;
        if (n == cap)
            rows = realloc(rows, sizeof *rows * (cap *= 2));
        for (int k = 0; k < N_C; k++)
            rows[n][k] = vals[col[k]];
        double rep = 0;
        for (int k = 0; k < n_rep; k++)
            rep += vals[rep_cols[k]];
        rows[n][N_C] = rep;
        n++;
    }
    free(vals);
    free(text);
    double interval = n > 1 ? rows[1][C_T] - rows[0][C_T] : sim_time_s;
    size_t k = (n + MAX_SERIES_POINTS - 1) / MAX_SERIES_POINTS;
    if (k < 1)
        k = 1;
    size_t m = (n + k - 1) / k;
    double *t = calloc(m + 1, sizeof *t), *off = calloc(m + 1, sizeof *off),
           *served = calloc(m + 1, sizeof *served), *errs = calloc(m + 1, sizeof *errs),
           *p99 = calloc(m + 1, sizeof *p99), *rep = calloc(m + 1, sizeof *rep);
    for (size_t b = 0; b < m; b++) {
        size_t i0 = b * k, i1 = i0 + k < n ? i0 + k : n;
        double len = 0, offered = 0, done = 0, bad = 0, worst = NAN, reps = 0;
        for (size_t i = i0; i < i1; i++) {
            double l = fmin(interval, sim_time_s - rows[i][C_T]);
            if (!(l > 0))
                l = interval;
            len += l;
            offered += rows[i][C_OFF] * l;
            done += rows[i][C_DONE];
            bad += rows[i][C_REJ] + rows[i][C_FAIL] + rows[i][C_TOUT];
            if (rows[i][C_DONE] > 0 && (isnan(worst) || rows[i][C_P99] > worst))
                worst = rows[i][C_P99];
            reps += rows[i][N_C];
        }
        t[b] = rows[i0][C_T];
        off[b] = offered / len;
        served[b] = done / len;
        errs[b] = bad / len;
        p99[b] = worst;
        rep[b] = reps / (double)(i1 - i0);
    }
    cJSON *s = cJSON_CreateObject();
    cJSON_AddNumberToObject(s, "interval_s", interval * (double)k);
    cJSON_AddNumberToObject(s, "sim_time_s", sim_time_s);
    add_array(s, "t_s", t, m);
    add_array(s, "offered_qps", off, m);
    add_array(s, "served_qps", served, m);
    add_array(s, "errors_qps", errs, m);
    add_array(s, "p99_s", p99, m);
    add_array(s, "replicas", rep, m);
    free(t);
    free(off);
    free(served);
    free(errs);
    free(p99);
    free(rep);
    free(rows);
    return s;
}

cJSON *rp_run_record(const char *run_dir, int variant, const char *label, const char *scenario,
                     const char *const *sets, int n_sets, unsigned long seed, FILE *err)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/summary.json", run_dir);
    char *text = slurp(path);
    cJSON *summary = text ? cJSON_Parse(text) : NULL;
    free(text);
    if (!summary) {
        fprintf(err, "fleetsim: cannot read %s\n", path);
        return NULL;
    }
    snprintf(path, sizeof path, "%s/timeseries.csv", run_dir);
    cJSON *series = series_from_csv(path, num_at(summary, "sim_time_s"), err);
    if (!series) {
        cJSON_Delete(summary);
        return NULL;
    }
    cJSON *r = cJSON_CreateObject();
    cJSON_AddNumberToObject(r, "variant", variant);
    cJSON_AddStringToObject(r, "label", label);
    cJSON_AddStringToObject(r, "scenario", scenario);
    cJSON *s = cJSON_AddArrayToObject(r, "sets");
    for (int i = 0; i < n_sets; i++)
        cJSON_AddItemToArray(s, cJSON_CreateString(sets[i]));
    cJSON_AddNumberToObject(r, "seed", (double)seed);
    cJSON_AddItemToObject(r, "summary", summary);
    cJSON_AddItemToObject(r, "series", series);
    return r;
}

/* ---------- collecting records ---------- */

typedef struct {
    int index;
    char *label;
    cJSON **runs;
    int n_runs;
} variant;

struct rp_compare {
    variant *v;
    int n;
};

rp_compare *rp_compare_new(void)
{
    return calloc(1, sizeof(rp_compare));
}

void rp_compare_free(rp_compare *c)
{
    if (!c)
        return;
    for (int i = 0; i < c->n; i++) {
        for (int j = 0; j < c->v[i].n_runs; j++)
            cJSON_Delete(c->v[i].runs[j]);
        free(c->v[i].runs);
        free(c->v[i].label);
    }
    free(c->v);
    free(c);
}

int rp_compare_n_variants(const rp_compare *c)
{
    return c->n;
}

int rp_compare_add(rp_compare *c, const cJSON *rec, FILE *err)
{
    const cJSON *vi = cJSON_GetObjectItemCaseSensitive(rec, "variant");
    const cJSON *lab = cJSON_GetObjectItemCaseSensitive(rec, "label");
    const cJSON *seed = cJSON_GetObjectItemCaseSensitive(rec, "seed");
    const cJSON *sum = cJSON_GetObjectItemCaseSensitive(rec, "summary");
    if (!cJSON_IsNumber(vi) || !cJSON_IsString(lab) || !cJSON_IsNumber(seed) ||
        !cJSON_IsObject(sum)) {
        fprintf(err, "fleetsim: record without variant, label, seed or summary\n");
        return -1;
    }
    if (!(vi->valuedouble >= 0 && vi->valuedouble <= INT_MAX &&
          vi->valuedouble == floor(vi->valuedouble))) {
        fprintf(err, "fleetsim: record variant must be a whole number in [0, %d], got %g\n",
                INT_MAX, vi->valuedouble);
        return -1;
    }
    if (!(seed->valuedouble >= 0 && seed->valuedouble < 18446744073709551616.0 &&
          seed->valuedouble == floor(seed->valuedouble))) {
        fprintf(err, "fleetsim: record seed must be a whole number >= 0 (an unsigned 64-bit "
                "seed), got %g\n", seed->valuedouble);
        return -1;
    }
    int k = 0;
    while (k < c->n && c->v[k].index < vi->valueint)
        k++;
    if (k == c->n || c->v[k].index != vi->valueint) {
        c->v = realloc(c->v, sizeof *c->v * (size_t)(c->n + 1));
        memmove(&c->v[k + 1], &c->v[k], sizeof *c->v * (size_t)(c->n - k));
        c->v[k] = (variant){ vi->valueint, strdup(lab->valuestring), NULL, 0 };
        c->n++;
    } else if (strcmp(c->v[k].label, lab->valuestring) != 0) {
        fprintf(err, "fleetsim: variant %d is \"%s\" in one record and \"%s\" in another: "
                     "records from different sweeps?\n",
                vi->valueint, c->v[k].label, lab->valuestring);
        return -1;
    }
    variant *v = &c->v[k];
    for (int j = 0; j < v->n_runs; j++)
        if (num_at(v->runs[j], "seed") == seed->valuedouble) {
            fprintf(err, "fleetsim: variant \"%s\" seed %.0f appears twice\n", v->label,
                    seed->valuedouble);
            return -1;
        }
    /* kept in seed order, so shards merged in any order give identical output */
    int at_k = 0;
    while (at_k < v->n_runs && num_at(v->runs[at_k], "seed") < seed->valuedouble)
        at_k++;
    v->runs = realloc(v->runs, sizeof *v->runs * (size_t)(v->n_runs + 1));
    memmove(&v->runs[at_k + 1], &v->runs[at_k], sizeof *v->runs * (size_t)(v->n_runs - at_k));
    v->runs[at_k] = cJSON_Duplicate(rec, 1);
    v->n_runs++;
    return 0;
}

int rp_compare_load_jsonl(rp_compare *c, const char *path, FILE *err)
{
    char *text = slurp(path);
    if (!text) {
        fprintf(err, "fleetsim: cannot read %s: %s\n", path, strerror(errno));
        return -1;
    }
    int rc = 0, lineno = 0;
    char *save = NULL;
    for (char *line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        lineno++;
        if (!*line)
            continue;
        cJSON *j = cJSON_Parse(line);
        if (!j) {
            fprintf(err, "%s:%d: not a JSON record\n", path, lineno);
            rc = -1;
            break;
        }
        if (rp_compare_add(c, j, err) != 0) {
            fprintf(err, "%s:%d: record rejected\n", path, lineno);
            rc = -1;
        }
        cJSON_Delete(j);
        if (rc)
            break;
    }
    free(text);
    return rc;
}

/* ---------- statistics per variant ---------- */

/* A variant against the SLO its scenario sets (summary.json's `slo`):
 * MEETS when every seed met it and each target's 95% interval lies inside
 * the target; MISSES when some target's interval lies wholly outside it;
 * AT_RISK otherwise (a seed missed, or an interval straddles a target, or
 * one seed gives no interval). */
enum { SLO_NONE, SLO_MEETS, SLO_AT_RISK, SLO_MISSES };
static const char *const slo_words[] = { "none", "meets", "at risk", "misses" };

typedef struct {
    rp_ci ci[N_METRICS];
    double *values[N_METRICS];
    int best[N_METRICS];
    double slo_p99_s, slo_avail; /* targets; NAN = not set */
    double slo_ttft_s, slo_tpot_s, slo_e2e_s, slo_goodput; /* LLM targets; NAN = not set */
    int slo_verdict;
    int slo_met, slo_n;          /* seeds whose run met every target */
    double slo_p_lo;             /* one-sided 95% lower bound on P(a run meets it) */
    int hyp_held, hyp_n;         /* seeds whose chaos hypothesis held, of those declaring one */
} vstats;

/* The targets of a run's summary (NAN where unset); 0 when it sets none. */
static int slo_targets(const cJSON *summary, vstats *x)
{
    const cJSON *slo = cJSON_GetObjectItemCaseSensitive(summary, "slo");
    x->slo_p99_s = num_at(slo, "latency_p99_s");
    x->slo_avail = num_at(slo, "availability");
    x->slo_ttft_s = num_at(slo, "ttft_p99_s");
    x->slo_tpot_s = num_at(slo, "tpot_p99_s");
    x->slo_e2e_s = num_at(slo, "e2e_p99_s");
    x->slo_goodput = num_at(slo, "goodput");
    return !isnan(x->slo_p99_s) || !isnan(x->slo_avail) || !isnan(x->slo_ttft_s) ||
           !isnan(x->slo_tpot_s) || !isnan(x->slo_e2e_s) || !isnan(x->slo_goodput);
}

/* The targets as (metric, bound, better) triples: an upper bound for
 * latencies, a lower one for availability and goodput. */
typedef struct {
    int m;
    double bound;
    int better;
} slo_target;

static int slo_list(const vstats *x, slo_target *t)
{
    const struct {
        const char *key;
        double bound;
        int better;
    } all[] = { { "latency_p99", x->slo_p99_s, -1 }, { "availability", x->slo_avail, +1 },
                { "ttft_p99", x->slo_ttft_s, -1 },   { "tpot_p99", x->slo_tpot_s, -1 },
                { "e2e_p99", x->slo_e2e_s, -1 },     { "goodput", x->slo_goodput, +1 } };
    int n = 0;
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
        if (!isnan(all[i].bound))
            t[n++] = (slo_target){ metric_index(all[i].key), all[i].bound, all[i].better };
    return n;
}

static void slo_verdict(const variant *v, vstats *x)
{
    x->slo_verdict = SLO_NONE;
    if (v->n_runs == 0 || !slo_targets(cJSON_GetObjectItemCaseSensitive(v->runs[0], "summary"), x))
        return;
    slo_target t[6];
    int nt = slo_list(x, t);
    /* each run against the targets, as the run's own `slo.met` (rp_slo_met) */
    int k = 0;
    for (int j = 0; j < v->n_runs; j++) { /* a target that is set needs its value */
        int met = 1;
        for (int i = 0; i < nt; i++) {
            double y = x->values[t[i].m][j];
            met &= t[i].better < 0 ? y <= t[i].bound : y >= t[i].bound;
        }
        k += met;
    }
    x->slo_met = k;
    x->slo_n = v->n_runs;
    /* Clopper-Pearson: the p with P(Binomial(n, p) >= k) = 0.05 */
    x->slo_p_lo = k == 0 ? 0 : gsl_cdf_beta_Pinv(0.05, k, v->n_runs - k + 1);
    int outside = 0, inside = 1;
    for (int i = 0; i < nt; i++) {
        const rp_ci *ci = &x->ci[t[i].m];
        if (t[i].better < 0) {
            outside |= ci->lo > t[i].bound;
            inside &= ci->hi <= t[i].bound;
        } else {
            outside |= ci->hi < t[i].bound;
            inside &= ci->lo >= t[i].bound;
        }
    }
    x->slo_verdict = outside ? SLO_MISSES : inside && k == v->n_runs ? SLO_MEETS : SLO_AT_RISK;
}

/* A chaos experiment's steady-state hypothesis (summary.json's
 * `hypothesis.met`): the seeds whose run held it, of those declaring one. A
 * run whose hypothesis failed is a result, not a failed run. */
static void hypothesis_count(const variant *v, vstats *x)
{
    x->hyp_held = x->hyp_n = 0;
    for (int j = 0; j < v->n_runs; j++) {
        const cJSON *h = cJSON_GetObjectItemCaseSensitive(
            cJSON_GetObjectItemCaseSensitive(v->runs[j], "summary"), "hypothesis");
        const cJSON *met = cJSON_GetObjectItemCaseSensitive(h, "met");
        if (!cJSON_IsBool(met))
            continue;
        x->hyp_n++;
        x->hyp_held += cJSON_IsTrue(met);
    }
}

static int any_hypothesis(const rp_compare *c, const vstats *s)
{
    for (int i = 0; i < c->n; i++)
        if (s[i].hyp_n > 0)
            return 1;
    return 0;
}

/* "holds (3/3)", "fails (1/3)": held in every seed, or not. */
static void hypothesis_cell(char *buf, size_t n, const vstats *x)
{
    if (x->hyp_n == 0)
        snprintf(buf, n, "\xE2\x80\x93");
    else
        snprintf(buf, n, "%s (%d/%d)", x->hyp_held == x->hyp_n ? "holds" : "fails", x->hyp_held,
                 x->hyp_n);
}

/* The variant whose hypothesis held in every seed at the lowest mean
 * GPU-hours ("how many nodes make the outage survivable"), or -1. */
static int hypothesis_choice(const rp_compare *c, const vstats *s)
{
    const int GH = metric_index("gpu_hours");
    int best = -1;
    for (int i = 0; i < c->n; i++)
        if (s[i].hyp_n > 0 && s[i].hyp_held == s[i].hyp_n &&
            (best < 0 || s[i].ci[GH].mean < s[best].ci[GH].mean))
            best = i;
    return best;
}

/* The variant that meets its SLO at the lowest mean cost (GPU-hours), or
 * -1; between equal GPU-hours, the one with the lower cost per million
 * output tokens (LLM pools: it served more tokens for the same money). */
static int slo_choice(const rp_compare *c, const vstats *s)
{
    const int GH = metric_index("gpu_hours"), CPM = metric_index("cost_per_mtok");
    int best = -1;
    for (int i = 0; i < c->n; i++)
        if (s[i].slo_verdict == SLO_MEETS &&
            (best < 0 || s[i].ci[GH].mean < s[best].ci[GH].mean ||
             (s[i].ci[GH].mean == s[best].ci[GH].mean &&
              s[i].ci[CPM].mean < s[best].ci[CPM].mean)))
            best = i;
    return best;
}

static vstats *compute(const rp_compare *c, int *best_of)
{
    vstats *s = calloc((size_t)(c->n ? c->n : 1), sizeof *s);
    for (int i = 0; i < c->n; i++)
        for (int m = 0; m < N_METRICS; m++) {
            const variant *v = &c->v[i];
            s[i].values[m] = malloc(sizeof(double) * (size_t)(v->n_runs ? v->n_runs : 1));
            for (int j = 0; j < v->n_runs; j++)
                s[i].values[m][j] =
                    metric_value(cJSON_GetObjectItemCaseSensitive(v->runs[j], "summary"), m);
            rp_ci95(s[i].values[m], v->n_runs, &s[i].ci[m]);
        }
    for (int i = 0; i < c->n; i++) {
        slo_verdict(&c->v[i], &s[i]);
        hypothesis_count(&c->v[i], &s[i]);
    }
    for (int m = 0; m < N_METRICS; m++) {
        best_of[m] = -1;
        if (!metrics[m].better || c->n < 2)
            continue;
        int cand = -1;
        for (int i = 0; i < c->n; i++) {
            double x = s[i].ci[m].mean;
            if (isnan(x))
                continue;
            if (cand < 0 || (metrics[m].better > 0 ? x > s[cand].ci[m].mean
                                                   : x < s[cand].ci[m].mean))
                cand = i;
        }
        if (cand < 0)
            continue;
        int clear = 1;
        for (int i = 0; i < c->n; i++)
            if (i != cand && !rp_ci_better(&s[cand].ci[m], &s[i].ci[m], metrics[m].better))
                clear = 0;
        if (clear) {
            best_of[m] = cand;
            s[cand].best[m] = 1;
        }
    }
    return s;
}

/* 1 when some run has an LLM pool: its metrics are then shown. */
static int any_llm(const rp_compare *c)
{
    for (int i = 0; i < c->n; i++)
        for (int j = 0; j < c->v[i].n_runs; j++) {
            const cJSON *p;
            cJSON_ArrayForEach(p, at(c->v[i].runs[j], "summary.pools"))
            {
                if (cJSON_IsObject(cJSON_GetObjectItemCaseSensitive(p, "llm")))
                    return 1;
            }
        }
    return 0;
}

/* 1 when some run prices its pools (pools.<name>.cost). */
static int any_priced(const rp_compare *c)
{
    for (int i = 0; i < c->n; i++)
        for (int j = 0; j < c->v[i].n_runs; j++) {
            const cJSON *p;
            cJSON_ArrayForEach(p, at(c->v[i].runs[j], "summary.pools"))
            {
                if (cJSON_IsObject(cJSON_GetObjectItemCaseSensitive(p, "cost")))
                    return 1;
            }
        }
    return 0;
}

static int shown(const rp_compare *c, int m)
{
    return !metrics[m].llm || (metrics[m].llm == 1 ? any_llm(c) : any_priced(c));
}

static void stats_free(vstats *s, int n)
{
    for (int i = 0; i < n; i++)
        for (int m = 0; m < N_METRICS; m++)
            free(s[i].values[m]);
    free(s);
}

/* "99.9871% ± 0.0021%", "812.4 ms ± 3.1 ms", "1,106 ± 40" */
static void fmt_ci(char *buf, size_t n, int fmt, const rp_ci *ci)
{
    char a[48], h[48];
    if (isnan(ci->mean)) {
        snprintf(buf, n, "\xE2\x80\x93");
        return;
    }
    int has_half = !isnan(ci->half);
    switch (fmt) {
    case F_PCT: /* past 99% the nines matter: four decimals */
        snprintf(a, sizeof a, ci->mean == 1 ? "100%%" : ci->mean > 0.99 ? "%.4f%%" : "%.2f%%",
                 100 * ci->mean);
        snprintf(h, sizeof h, ci->half == 0 ? "0%%" : ci->mean > 0.99 ? "%.4f%%" : "%.2f%%",
                 100 * ci->half);
        break;
    case F_LAT:
        if (ci->mean < 1) {
            snprintf(a, sizeof a, "%.1f ms", ci->mean * 1e3);
            snprintf(h, sizeof h, "%.1f ms", ci->half * 1e3);
        } else {
            snprintf(a, sizeof a, "%.3f s", ci->mean);
            snprintf(h, sizeof h, "%.3f s", ci->half);
        }
        break;
    case F_COUNT:
        rp_fmt_count(a, sizeof a, ci->mean);
        rp_fmt_count(h, sizeof h, ci->half);
        break;
    case F_COST:
        snprintf(a, sizeof a, "%.3f", ci->mean);
        snprintf(h, sizeof h, "%.3f", ci->half);
        break;
    default:
        snprintf(a, sizeof a, "%.2f", ci->mean);
        snprintf(h, sizeof h, "%.2f", ci->half);
    }
    if (has_half)
        snprintf(buf, n, "%s \xC2\xB1 %s", a, h);
    else
        snprintf(buf, n, "%s", a);
}

/* ---------- compare.json ---------- */

static void ci_json(cJSON *o, const char *key, const rp_ci *ci, const double *values, int n)
{
    cJSON *x = cJSON_AddObjectToObject(o, key);
    cJSON_AddNumberToObject(x, "n", ci->n);
#define NUM_OR_NULL(k, v) (isnan(v) ? (void)cJSON_AddNullToObject(x, k) : (void)cJSON_AddNumberToObject(x, k, v))
    NUM_OR_NULL("mean", ci->mean);
    NUM_OR_NULL("sd", ci->sd);
    NUM_OR_NULL("ci95_lo", ci->lo);
    NUM_OR_NULL("ci95_hi", ci->hi);
    NUM_OR_NULL("half_width", ci->half);
#undef NUM_OR_NULL
    cJSON *a = cJSON_AddArrayToObject(x, "values");
    for (int i = 0; i < n; i++)
        cJSON_AddItemToArray(a, isnan(values[i]) ? cJSON_CreateNull() : cJSON_CreateNumber(values[i]));
}

static cJSON *compare_json(const rp_compare *c, const vstats *s, const int *best_of)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddNumberToObject(o, "confidence", 0.95);
    cJSON_AddStringToObject(o, "interval", "Student t over seeds: mean +/- t(0.975, n-1) * sd / sqrt(n)");
    cJSON *ms = cJSON_AddArrayToObject(o, "metrics");
    for (int m = 0; m < N_METRICS; m++) {
        if (!shown(c, m))
            continue;
        cJSON *x = cJSON_CreateObject();
        cJSON_AddStringToObject(x, "key", metrics[m].key);
        cJSON_AddStringToObject(x, "label", metrics[m].label);
        cJSON_AddStringToObject(x, "better", metrics[m].better > 0   ? "higher"
                                            : metrics[m].better < 0 ? "lower"
                                                                    : "none");
        cJSON_AddItemToArray(ms, x);
    }
    cJSON *vs = cJSON_AddArrayToObject(o, "variants");
    for (int i = 0; i < c->n; i++) {
        const variant *v = &c->v[i];
        cJSON *x = cJSON_CreateObject();
        cJSON_AddNumberToObject(x, "index", v->index);
        cJSON_AddStringToObject(x, "label", v->label);
        const cJSON *r0 = v->runs[0];
        const cJSON *sc = cJSON_GetObjectItemCaseSensitive(r0, "scenario");
        cJSON_AddStringToObject(x, "scenario", cJSON_IsString(sc) ? sc->valuestring : "");
        const cJSON *sets = cJSON_GetObjectItemCaseSensitive(r0, "sets");
        cJSON_AddItemToObject(x, "sets", sets ? cJSON_Duplicate(sets, 1) : cJSON_CreateArray());
        cJSON *seeds = cJSON_AddArrayToObject(x, "seeds");
        for (int j = 0; j < v->n_runs; j++)
            cJSON_AddItemToArray(seeds, cJSON_CreateNumber(num_at(v->runs[j], "seed")));
        cJSON *mo = cJSON_AddObjectToObject(x, "metrics");
        for (int m = 0; m < N_METRICS; m++)
            if (shown(c, m))
                ci_json(mo, metrics[m].key, &s[i].ci[m], s[i].values[m], v->n_runs);
        if (s[i].slo_verdict == SLO_NONE) {
            cJSON_AddNullToObject(x, "slo");
        } else {
            cJSON *so = cJSON_AddObjectToObject(x, "slo");
            if (isnan(s[i].slo_p99_s))
                cJSON_AddNullToObject(so, "latency_p99_s");
            else
                cJSON_AddNumberToObject(so, "latency_p99_s", s[i].slo_p99_s);
            if (isnan(s[i].slo_avail))
                cJSON_AddNullToObject(so, "availability");
            else
                cJSON_AddNumberToObject(so, "availability", s[i].slo_avail);
            /* the LLM targets, where set */
            const struct {
                const char *key;
                double v;
            } llm_t[] = { { "ttft_p99_s", s[i].slo_ttft_s }, { "tpot_p99_s", s[i].slo_tpot_s },
                          { "e2e_p99_s", s[i].slo_e2e_s }, { "goodput", s[i].slo_goodput } };
            for (size_t k = 0; k < sizeof llm_t / sizeof llm_t[0]; k++)
                if (!isnan(llm_t[k].v))
                    cJSON_AddNumberToObject(so, llm_t[k].key, llm_t[k].v);
            cJSON_AddStringToObject(so, "verdict", slo_words[s[i].slo_verdict]);
            cJSON_AddNumberToObject(so, "seeds_met", s[i].slo_met);
            cJSON_AddNumberToObject(so, "seeds", s[i].slo_n);
            cJSON_AddNumberToObject(so, "p_run_meets_lo95", s[i].slo_p_lo);
        }
        if (s[i].hyp_n == 0) {
            cJSON_AddNullToObject(x, "hypothesis");
        } else {
            cJSON *ho = cJSON_AddObjectToObject(x, "hypothesis");
            cJSON_AddStringToObject(ho, "verdict", s[i].hyp_held == s[i].hyp_n ? "holds" : "fails");
            cJSON_AddNumberToObject(ho, "seeds_held", s[i].hyp_held);
            cJSON_AddNumberToObject(ho, "seeds", s[i].hyp_n);
        }
        cJSON_AddItemToArray(vs, x);
    }
    int hchoice = hypothesis_choice(c, s);
    if (hchoice >= 0)
        cJSON_AddStringToObject(o, "hypothesis_choice", c->v[hchoice].label);
    int choice = slo_choice(c, s);
    if (choice >= 0)
        cJSON_AddStringToObject(o, "slo_choice", c->v[choice].label);
    else
        cJSON_AddNullToObject(o, "slo_choice");
    cJSON *best = cJSON_AddObjectToObject(o, "best");
    for (int m = 0; m < N_METRICS; m++) {
        if (!metrics[m].better || !shown(c, m))
            continue;
        if (best_of[m] >= 0)
            cJSON_AddStringToObject(best, metrics[m].key, c->v[best_of[m]].label);
        else
            cJSON_AddNullToObject(best, metrics[m].key);
    }
    return o;
}

/* ---------- reference figures ---------- */

static const char *str_at(const cJSON *j, const char *key)
{
    const cJSON *x = cJSON_GetObjectItemCaseSensitive(j, key);
    return cJSON_IsString(x) ? x->valuestring : NULL;
}

static int variant_by_label(const rp_compare *c, const char *label)
{
    for (int i = 0; label && i < c->n; i++)
        if (!strcmp(c->v[i].label, label))
            return i;
    return -1;
}

/* The simulated cell of a reference row for column k. */
static void ref_cell(char *buf, size_t n, const rp_compare *c, const vstats *s, const cJSON *ref,
                     const cJSON *row, int k)
{
    const cJSON *cols = cJSON_GetObjectItemCaseSensitive(ref, "columns");
    int vi = variant_by_label(c, str_at(cJSON_GetArrayItem(cols, k), "variant"));
    int m = metric_index(str_at(row, "metric") ? str_at(row, "metric") : "");
    if (vi < 0) {
        snprintf(buf, n, "not run");
        return;
    }
    if (m < 0) {
        snprintf(buf, n, "\xE2\x80\x93");
        return;
    }
    char v[96];
    fmt_ci(v, sizeof v, metrics[m].fmt, &s[vi].ci[m]);
    int v0 = variant_by_label(c, str_at(cJSON_GetArrayItem(cols, 0), "variant"));
    if (k > 0 && v0 >= 0 && cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(row, "relative")) &&
        s[v0].ci[m].mean != 0) {
        double ch = s[vi].ci[m].mean / s[v0].ci[m].mean - 1;
        snprintf(buf, n, "%s (%+.0f%%)", v, 100 * ch);
    } else {
        snprintf(buf, n, "%s", v);
    }
}

/* Markdown cell text: pipes would end the cell. */
static void md_text(rp_buf *o, const char *s)
{
    for (; s && *s; s++) {
        if (*s == '|')
            rp_buf_puts(o, "\\|");
        else if (*s == '\n')
            rp_buf_puts(o, " ");
        else
            rp_buf_add(o, s, 1);
    }
}

static void reference_md(rp_buf *o, const rp_compare *c, const vstats *s, const cJSON *ref)
{
    const cJSON *cols = cJSON_GetObjectItemCaseSensitive(ref, "columns");
    const cJSON *rows = cJSON_GetObjectItemCaseSensitive(ref, "rows");
    int nc = cJSON_GetArraySize(cols);
    rp_buf_puts(o, "\n## ");
    md_text(o, str_at(ref, "title") ? str_at(ref, "title") : "Reported vs simulated");
    rp_buf_puts(o, "\n\n");
    if (str_at(ref, "intro")) {
        rp_buf_puts(o, str_at(ref, "intro"));
        rp_buf_puts(o, "\n\n");
    }
    rp_buf_puts(o, "| figure |");
    for (int k = 0; k < nc; k++) {
        const char *l = str_at(cJSON_GetArrayItem(cols, k), "label");
        rp_buf_puts(o, " reported ");
        md_text(o, l);
        rp_buf_puts(o, " | fleetsim ");
        md_text(o, l);
        rp_buf_puts(o, " |");
    }
    rp_buf_puts(o, "\n|---|");
    for (int k = 0; k < nc; k++)
        rp_buf_puts(o, "---:|---:|");
    rp_buf_puts(o, "\n");
    const cJSON *row;
    cJSON_ArrayForEach(row, rows)
    {
        rp_buf_puts(o, "| ");
        md_text(o, str_at(row, "label"));
        rp_buf_puts(o, " |");
        const cJSON *rep = cJSON_GetObjectItemCaseSensitive(row, "reported");
        for (int k = 0; k < nc; k++) {
            char cell[160];
            ref_cell(cell, sizeof cell, c, s, ref, row, k);
            const cJSON *r = cJSON_GetArrayItem(rep, k);
            rp_buf_puts(o, " ");
            md_text(o, cJSON_IsString(r) && *r->valuestring ? r->valuestring : "\xE2\x80\x93");
            rp_buf_puts(o, " | ");
            md_text(o, cell);
            rp_buf_puts(o, " |");
        }
        rp_buf_puts(o, "\n");
    }
    rp_buf_puts(o, "\n");
    cJSON_ArrayForEach(row, rows)
    {
        if (!str_at(row, "note"))
            continue;
        rp_buf_puts(o, "**");
        rp_buf_puts(o, str_at(row, "label"));
        rp_buf_puts(o, ".** ");
        rp_buf_puts(o, str_at(row, "note"));
        rp_buf_puts(o, "\n\n");
    }
    if (str_at(ref, "outro")) {
        rp_buf_puts(o, str_at(ref, "outro"));
        rp_buf_puts(o, "\n");
    }
}

static void reference_html(rp_buf *o, const rp_compare *c, const vstats *s, const cJSON *ref)
{
    const cJSON *cols = cJSON_GetObjectItemCaseSensitive(ref, "columns");
    const cJSON *rows = cJSON_GetObjectItemCaseSensitive(ref, "rows");
    int nc = cJSON_GetArraySize(cols);
    rp_buf_puts(o, "<h2>");
    rp_buf_esc(o, str_at(ref, "title") ? str_at(ref, "title") : "Reported vs simulated");
    rp_buf_puts(o, "</h2>\n");
    if (str_at(ref, "intro")) {
        rp_buf_puts(o, "<p>");
        rp_buf_esc(o, str_at(ref, "intro"));
        rp_buf_puts(o, "</p>\n");
    }
    rp_buf_puts(o, "<table><thead><tr><th class=\"l\">figure</th>");
    for (int k = 0; k < nc; k++) {
        const char *l = str_at(cJSON_GetArrayItem(cols, k), "label");
        rp_buf_puts(o, "<th>reported ");
        rp_buf_esc(o, l);
        rp_buf_puts(o, "</th><th>fleetsim ");
        rp_buf_esc(o, l);
        rp_buf_puts(o, "</th>");
    }
    rp_buf_puts(o, "</tr></thead><tbody>\n");
    const cJSON *row;
    cJSON_ArrayForEach(row, rows)
    {
        rp_buf_puts(o, "<tr><td class=\"l\">");
        rp_buf_esc(o, str_at(row, "label"));
        rp_buf_puts(o, "</td>");
        const cJSON *rep = cJSON_GetObjectItemCaseSensitive(row, "reported");
        for (int k = 0; k < nc; k++) {
            char cell[160];
            ref_cell(cell, sizeof cell, c, s, ref, row, k);
            const cJSON *r = cJSON_GetArrayItem(rep, k);
            rp_buf_puts(o, "<td>");
            rp_buf_esc(o, cJSON_IsString(r) && *r->valuestring ? r->valuestring : "\xE2\x80\x93");
            rp_buf_puts(o, "</td><td>");
            rp_buf_esc(o, cell);
            rp_buf_puts(o, "</td>");
        }
        rp_buf_puts(o, "</tr>\n");
    }
    rp_buf_puts(o, "</tbody></table>\n");
    cJSON_ArrayForEach(row, rows)
    {
        if (!str_at(row, "note"))
            continue;
        rp_buf_puts(o, "<p><b>");
        rp_buf_esc(o, str_at(row, "label"));
        rp_buf_puts(o, ".</b> ");
        rp_buf_esc(o, str_at(row, "note"));
        rp_buf_puts(o, "</p>\n");
    }
    if (str_at(ref, "outro")) {
        rp_buf_puts(o, "<p>");
        rp_buf_esc(o, str_at(ref, "outro"));
        rp_buf_puts(o, "</p>\n");
    }
}

/* ---------- compare.md ---------- */

static void seeds_text(rp_buf *o, const rp_compare *c)
{
    double lo = -1, hi = -1; /* seeds are whole numbers >= 0 (rp_compare_add) */
    int same = 1;
    for (int i = 0; i < c->n; i++) {
        if (c->v[i].n_runs != c->v[0].n_runs)
            same = 0;
        for (int j = 0; j < c->v[i].n_runs; j++) {
            double s = num_at(c->v[i].runs[j], "seed");
            lo = lo < 0 || s < lo ? s : lo;
            hi = s > hi ? s : hi;
        }
    }
    rp_buf_printf(o, "%d variant%s, %s%d seed%s each (seeds %.0f\xE2\x80\x93%.0f)", c->n,
                  c->n == 1 ? "" : "s", same ? "" : "up to ", c->v[0].n_runs,
                  c->v[0].n_runs == 1 ? "" : "s", lo, hi);
}

static int any_slo(const rp_compare *c, const vstats *s)
{
    for (int i = 0; i < c->n; i++)
        if (s[i].slo_verdict != SLO_NONE)
            return 1;
    return 0;
}

/* "meets (5/5)", "at risk (4/5)", "misses (0/5)", or a dash: no SLO. */
static void slo_cell(char *buf, size_t n, const vstats *x)
{
    if (x->slo_verdict == SLO_NONE)
        snprintf(buf, n, "\xE2\x80\x93");
    else
        snprintf(buf, n, "%s (%d/%d)", slo_words[x->slo_verdict], x->slo_met, x->slo_n);
}

static void hypothesis_text(rp_buf *o, const rp_compare *c, const vstats *s, int md)
{
    int k = hypothesis_choice(c, s);
    rp_buf_puts(o, "Hypothesis (the chaos experiment's steady-state hypothesis; in brackets, the "
                   "seeds whose run held it): holds when it held in every seed. ");
    if (k < 0) {
        rp_buf_puts(o, "It held in every seed for no variant.");
        return;
    }
    rp_buf_puts(o, "Cheapest variant for which it held in every seed: ");
    rp_buf_puts(o, md ? "**" : "");
    if (md)
        md_text(o, c->v[k].label);
    else
        rp_buf_esc(o, c->v[k].label);
    rp_buf_puts(o, md ? "**" : "");
    char gh[96];
    fmt_ci(gh, sizeof gh, F_NUM, &s[k].ci[metric_index("gpu_hours")]);
    rp_buf_printf(o, " (%s GPU-hours).", gh);
}

/* What the SLO column means, and the cheapest variant that meets it. */
static void slo_text(rp_buf *o, const rp_compare *c, const vstats *s, int md)
{
    int k = slo_choice(c, s);
    rp_buf_puts(o, "SLO (the scenario's slo; in brackets, the seeds whose run met every target): "
                   "meets when every seed met it and each target's 95% interval lies inside "
                   "the target, misses when an interval lies wholly outside it, at risk "
                   "otherwise. ");
    if (k < 0) {
        rp_buf_puts(o, "No variant meets it.");
        return;
    }
    rp_buf_puts(o, "Cheapest variant that meets it: ");
    rp_buf_puts(o, md ? "**" : "");
    if (md)
        md_text(o, c->v[k].label);
    else
        rp_buf_esc(o, c->v[k].label);
    rp_buf_puts(o, md ? "**" : "");
    char gh[96];
    fmt_ci(gh, sizeof gh, F_NUM, &s[k].ci[metric_index("gpu_hours")]);
    rp_buf_printf(o, " (%s GPU-hours); %d of %d seeds met it, so a run meets it with probability "
                     "at least %.2f (one-sided 95%%, Clopper-Pearson): more seeds raise that bound.",
                  gh, s[k].slo_met, s[k].slo_n, s[k].slo_p_lo);
}

static void compare_md(rp_buf *o, const rp_compare *c, const vstats *s, const cJSON *ref)
{
    rp_buf_puts(o, "# fleetsim compare\n\n");
    seeds_text(o, c);
    rp_buf_puts(o, ". Each cell: mean \xC2\xB1 half-width of the 95% Student-t confidence "
                   "interval over the seeds. \xE2\x98\x85 marks the best variant for a metric "
                   "only where its interval does not overlap any other variant's.\n\n");
    int slo = any_slo(c, s), hyp = any_hypothesis(c, s);
    rp_buf_puts(o, "| variant |");
    int cols = slo + hyp;
    for (int m = 0; m < N_METRICS; m++)
        if (shown(c, m)) {
            rp_buf_printf(o, " %s |", metrics[m].label);
            cols++;
        }
    if (slo)
        rp_buf_puts(o, " SLO |");
    if (hyp)
        rp_buf_puts(o, " hypothesis |");
    rp_buf_puts(o, "\n|---|");
    for (int m = 0; m < cols; m++)
        rp_buf_puts(o, "---:|");
    rp_buf_puts(o, "\n");
    for (int i = 0; i < c->n; i++) {
        rp_buf_puts(o, "| ");
        md_text(o, c->v[i].label);
        rp_buf_puts(o, " |");
        for (int m = 0; m < N_METRICS; m++) {
            if (!shown(c, m))
                continue;
            char cell[96];
            fmt_ci(cell, sizeof cell, metrics[m].fmt, &s[i].ci[m]);
            rp_buf_printf(o, s[i].best[m] ? " **%s** \xE2\x98\x85 |" : " %s |", cell);
        }
        if (slo) {
            char cell[96];
            slo_cell(cell, sizeof cell, &s[i]);
            rp_buf_printf(o, " %s |", cell);
        }
        if (hyp) {
            char cell[96];
            hypothesis_cell(cell, sizeof cell, &s[i]);
            rp_buf_printf(o, " %s |", cell);
        }
        rp_buf_puts(o, "\n");
    }
    if (slo) {
        rp_buf_puts(o, "\n");
        slo_text(o, c, s, 1);
        rp_buf_puts(o, "\n");
    }
    if (hyp) {
        rp_buf_puts(o, "\n");
        hypothesis_text(o, c, s, 1);
        rp_buf_puts(o, "\n");
    }
    rp_buf_puts(o, "\nVariants:\n\n");
    for (int i = 0; i < c->n; i++) {
        const cJSON *r0 = c->v[i].runs[0];
        rp_buf_puts(o, "- **");
        md_text(o, c->v[i].label);
        rp_buf_puts(o, "**: `");
        rp_buf_puts(o, str_at(r0, "scenario") ? str_at(r0, "scenario") : "");
        rp_buf_puts(o, "`");
        const cJSON *x;
        cJSON_ArrayForEach(x, cJSON_GetObjectItemCaseSensitive(r0, "sets"))
        {
            if (cJSON_IsString(x)) {
                rp_buf_puts(o, " `--set ");
                rp_buf_puts(o, x->valuestring);
                rp_buf_puts(o, "`");
            }
        }
        rp_buf_puts(o, "\n");
    }
    if (ref)
        reference_md(o, c, s, ref);
}

/* ---------- compare.html ---------- */

static const char *const vcolors[] = { "#1f6feb", "#cf222e", "#2da44e", "#8250df", "#bf8700",
                                       "#1b7c83", "#bc4c00", "#6e7781", "#bf3989", "#0550ae" };
#define VCOLOR(i) vcolors[(i) % (int)(sizeof vcolors / sizeof vcolors[0])]

/* Mean over a variant's runs of one series, NAN-aware. */
static size_t mean_series(const variant *v, const char *key, double **t_out, double **y_out)
{
    size_t n = 0;
    for (int j = 0; j < v->n_runs; j++) {
        size_t m = (size_t)cJSON_GetArraySize(at(v->runs[j], "series.t_s"));
        n = j == 0 || m < n ? m : n;
    }
    double *t = calloc(n + 1, sizeof *t), *y = calloc(n + 1, sizeof *y);
    int *cnt = calloc(n + 1, sizeof *cnt);
    for (int j = 0; j < v->n_runs; j++) {
        const cJSON *ts = at(v->runs[j], "series.t_s");
        char path[64];
        snprintf(path, sizeof path, "series.%s", key);
        const cJSON *ys = at(v->runs[j], path);
        const cJSON *iv = at(v->runs[j], "series.interval_s");
        double half = cJSON_IsNumber(iv) ? iv->valuedouble / 2 : 0;
        size_t i = 0;
        const cJSON *a = ts ? ts->child : NULL, *b = ys ? ys->child : NULL;
        for (; i < n && a; i++, a = a->next, b = b ? b->next : NULL) {
            t[i] = a->valuedouble + half;
            if (b && cJSON_IsNumber(b)) {
                y[i] += b->valuedouble;
                cnt[i]++;
            }
        }
    }
    for (size_t i = 0; i < n; i++)
        y[i] = cnt[i] ? y[i] / cnt[i] : NAN;
    free(cnt);
    *t_out = t;
    *y_out = y;
    return n;
}

static void overlay(rp_buf *o, const rp_compare *c, const rp_axis *ax, const char *key,
                    const char *title, rp_unit unit, int with_offered)
{
    double top = 0;
    double **ts = calloc((size_t)c->n, sizeof *ts), **ys = calloc((size_t)c->n, sizeof *ys);
    size_t *ns = calloc((size_t)c->n, sizeof *ns);
    double *ot = NULL, *oy = NULL;
    size_t on = 0;
    if (with_offered && c->n > 0) {
        on = mean_series(&c->v[0], "offered_qps", &ot, &oy);
        for (size_t i = 0; i < on; i++)
            if (ot[i] >= ax->t0_s && ot[i] <= ax->t1_s && !isnan(oy[i]))
                top = fmax(top, oy[i]);
    }
    for (int i = 0; i < c->n; i++) {
        ns[i] = mean_series(&c->v[i], key, &ts[i], &ys[i]);
        for (size_t k = 0; k < ns[i]; k++)
            if (ts[i][k] >= ax->t0_s && ts[i][k] <= ax->t1_s && !isnan(ys[i][k]))
                top = fmax(top, ys[i][k]);
    }
    rp_buf_puts(o, "<div class=\"panel\"><h3>");
    rp_buf_esc(o, title);
    rp_buf_puts(o, "</h3>\n");
    rp_chart *ch = rp_chart_new(ax, 150, 0, rp_nice_ceil(top > 0 ? top * 1.05 : 1), unit, title);
    for (int i = 0; i < c->n; i++) {
        char id[32];
        snprintf(id, sizeof id, "%s.%d", key, i);
        rp_chart_line(ch, id, c->v[i].label, VCOLOR(i), ts[i], ys[i], ns[i], 0);
    }
    if (on) /* on top: where a variant serves everything its line hides under this one */
        rp_chart_line(ch, "offered", "offered (first variant)", "#57606a", ot, oy, on, 1);
    rp_chart_end(ch, o);
    rp_buf_puts(o, "</div>\n");
    for (int i = 0; i < c->n; i++) {
        free(ts[i]);
        free(ys[i]);
    }
    free(ts);
    free(ys);
    free(ns);
    free(ot);
    free(oy);
}

/* Where any variant has errors or the top half of the offered load; 0 when
 * that is most of the run. */
static int focus(const rp_compare *c, double *f0, double *f1, double *end)
{
    double first = NAN, last = NAN, max_off = 0, dur = 0, iv = 0;
    for (int i = 0; i < c->n; i++) {
        double *t, *off, *t2, *err;
        size_t n = mean_series(&c->v[i], "offered_qps", &t, &off);
        mean_series(&c->v[i], "errors_qps", &t2, &err);
        const cJSON *st = at(c->v[i].runs[0], "series.sim_time_s");
        const cJSON *ivj = at(c->v[i].runs[0], "series.interval_s");
        dur = fmax(dur, cJSON_IsNumber(st) ? st->valuedouble : 0);
        iv = cJSON_IsNumber(ivj) ? ivj->valuedouble : iv;
        for (size_t k = 0; k < n; k++)
            max_off = fmax(max_off, off[k]);
        for (size_t k = 0; k < n; k++)
            if (err[k] > 0 || (max_off > 0 && off[k] >= 0.5 * max_off)) {
                first = isnan(first) ? t[k] - iv / 2 : fmin(first, t[k] - iv / 2);
                last = isnan(last) ? t[k] + iv / 2 : fmax(last, t[k] + iv / 2);
            }
        free(t);
        free(off);
        free(t2);
        free(err);
    }
    *end = dur;
    if (isnan(first) || dur <= 0)
        return 0;
    double pad = fmax(fmax(0.5 * (last - first), 5 * iv), 120);
    *f0 = fmax(0, first - pad);
    *f1 = fmin(dur, last + pad);
    return *f1 - *f0 <= 0.25 * dur;
}

static void compare_html(rp_buf *o, const rp_compare *c, const vstats *s, const cJSON *ref)
{
    rp_html_open(o, "fleetsim compare");
    rp_buf_puts(o, "<header><h1>fleetsim compare</h1>\n<p class=\"meta\">");
    rp_buf buf = { 0 };
    seeds_text(&buf, c);
    rp_buf_esc(o, buf.s);
    rp_buf_free(&buf);
    rp_buf_puts(o, ". Cells: mean \xC2\xB1 half-width of the 95% Student-t interval over the "
                   "seeds; \xE2\x98\x85 best only where its interval overlaps no other "
                   "variant's.</p></header>\n<h2>Results</h2>\n");
    rp_buf_puts(o, "<table><thead><tr><th class=\"l\">variant</th>");
    for (int m = 0; m < N_METRICS; m++) {
        if (!shown(c, m))
            continue;
        rp_buf_puts(o, "<th>");
        rp_buf_esc(o, metrics[m].label);
        rp_buf_puts(o, "</th>");
    }
    int slo = any_slo(c, s), hyp = any_hypothesis(c, s);
    rp_buf_puts(o, slo ? "<th>SLO</th>" : "");
    rp_buf_puts(o, hyp ? "<th>hypothesis</th></tr></thead><tbody>\n" : "</tr></thead><tbody>\n");
    for (int i = 0; i < c->n; i++) {
        rp_buf_printf(o, "<tr><td class=\"l\"><span style=\"color:%s\">\xE2\x96\xA0</span> ",
                      VCOLOR(i));
        rp_buf_esc(o, c->v[i].label);
        rp_buf_puts(o, "</td>");
        for (int m = 0; m < N_METRICS; m++) {
            if (!shown(c, m))
                continue;
            char cell[96];
            fmt_ci(cell, sizeof cell, metrics[m].fmt, &s[i].ci[m]);
            char *pm = strstr(cell, " \xC2\xB1 "); /* mean, then the half-width below it */
            if (pm)
                *pm = '\0';
            rp_buf_puts(o, s[i].best[m] ? "<td class=\"best\">" : "<td>");
            rp_buf_esc(o, cell);
            rp_buf_puts(o, s[i].best[m] ? " \xE2\x98\x85" : "");
            if (pm) {
                rp_buf_puts(o, "<div class=\"ci\">");
                rp_buf_esc(o, pm + 1);
                rp_buf_puts(o, "</div>");
            }
            rp_buf_puts(o, "</td>");
        }
        if (slo) {
            char cell[96];
            slo_cell(cell, sizeof cell, &s[i]);
            rp_buf_puts(o, "<td>");
            rp_buf_esc(o, cell);
            rp_buf_puts(o, "</td>");
        }
        if (hyp) {
            char cell[96];
            hypothesis_cell(cell, sizeof cell, &s[i]);
            rp_buf_puts(o, "<td>");
            rp_buf_esc(o, cell);
            rp_buf_puts(o, "</td>");
        }
        rp_buf_puts(o, "</tr>\n");
    }
    rp_buf_puts(o, "</tbody></table>\n");
    if (slo) {
        rp_buf_puts(o, "<p>");
        slo_text(o, c, s, 0);
        rp_buf_puts(o, "</p>\n");
    }
    if (hyp) {
        rp_buf_puts(o, "<p>");
        hypothesis_text(o, c, s, 0);
        rp_buf_puts(o, "</p>\n");
    }
    if (ref)
        reference_html(o, c, s, ref);

    double f0, f1, end;
    int zoom = focus(c, &f0, &f1, &end);
    for (int pass = zoom ? 0 : 1; pass < 2 && c->n > 0; pass++) {
        rp_axis ax = pass == 0 ? rp_axis_make(f0, f1) : rp_axis_make(0, end);
        if (pass == 0) {
            char a[32], b[32];
            rp_fmt_time(a, sizeof a, f0, 7200);
            rp_fmt_time(b, sizeof b, f1, 7200);
            rp_buf_printf(o, "<h2>Peak window %s \xE2\x80\x93 %s (mean over seeds)</h2>\n", a, b);
        } else {
            rp_buf_puts(o, "<h2>Whole run (mean over seeds)</h2>\n");
        }
        overlay(o, c, &ax, "served_qps", "Served (completed) req/s", RP_UNIT_NUM, 1);
        overlay(o, c, &ax, "p99_s", "Latency p99", RP_UNIT_S, 0);
        overlay(o, c, &ax, "errors_qps", "Errors req/s (503 + 502 + 504)", RP_UNIT_NUM, 0);
        overlay(o, c, &ax, "replicas", "Ready replicas (all pools)", RP_UNIT_NUM, 0);
    }
    rp_buf_puts(o, "<h2>Variants</h2>\n<table><thead><tr><th class=\"l\">variant</th>"
                   "<th class=\"l\">scenario</th><th class=\"l\">overrides</th><th>runs</th>"
                   "</tr></thead><tbody>\n");
    for (int i = 0; i < c->n; i++) {
        const cJSON *r0 = c->v[i].runs[0];
        rp_buf_puts(o, "<tr><td class=\"l\">");
        rp_buf_esc(o, c->v[i].label);
        rp_buf_puts(o, "</td><td class=\"l\"><code>");
        rp_buf_esc(o, str_at(r0, "scenario"));
        rp_buf_puts(o, "</code></td><td class=\"l\">");
        const cJSON *x;
        cJSON_ArrayForEach(x, cJSON_GetObjectItemCaseSensitive(r0, "sets"))
        {
            if (cJSON_IsString(x)) {
                rp_buf_puts(o, "<code>");
                rp_buf_esc(o, x->valuestring);
                rp_buf_puts(o, "</code> ");
            }
        }
        rp_buf_printf(o, "</td><td>%d</td></tr>\n", c->v[i].n_runs);
    }
    rp_buf_puts(o, "</tbody></table>\n");
    rp_html_close(o);
}

const char *rp_compare_slo_choice(const rp_compare *c)
{
    if (c->n == 0)
        return NULL;
    int best_of[N_METRICS];
    vstats *s = compute(c, best_of);
    int k = slo_choice(c, s);
    stats_free(s, c->n);
    return k >= 0 ? c->v[k].label : NULL;
}

int rp_compare_write(const rp_compare *c, const char *dir, const cJSON *reference, FILE *err)
{
    if (c->n == 0) {
        fprintf(err, "fleetsim: nothing to compare (no runs)\n");
        return -1;
    }
    int best_of[N_METRICS];
    vstats *s = compute(c, best_of);
    char path[4096];
    int rc = 0;

    cJSON *j = compare_json(c, s, best_of);
    char *text = cJSON_Print(j);
    cJSON_Delete(j);
    snprintf(path, sizeof path, "%s/compare.json", dir);
    rp_buf b = { 0 };
    rp_buf_puts(&b, text);
    rp_buf_puts(&b, "\n");
    cJSON_free(text);
    if (rp_write_file(path, b.s, b.len) != 0)
        rc = -1;
    b.len = 0;

    if (rc == 0) {
        compare_md(&b, c, s, reference);
        snprintf(path, sizeof path, "%s/compare.md", dir);
        if (rp_write_file(path, b.s, b.len) != 0)
            rc = -1;
        b.len = 0;
    }
    if (rc == 0) {
        compare_html(&b, c, s, reference);
        snprintf(path, sizeof path, "%s/compare.html", dir);
        if (rp_write_file(path, b.s, b.len) != 0)
            rc = -1;
    }
    if (rc != 0)
        fprintf(err, "fleetsim: cannot write %s: %s\n", path, strerror(errno));
    rp_buf_free(&b);
    stats_free(s, c->n);
    return rc;
}
