/*
 * store.c - the time-series store: series keyed by their full label set,
 * samples appended in time order, old samples dropped.
 *
 * Memory is bounded by the retention window: a series keeps the samples
 * newer than (newest sample in the store - retention), where retention is
 * what the rules read (mon_rules_retention_s: the largest range or lookback
 * + offset of any selector). Trimming happens on append for that series and
 * for every series in mon_store_trim(), which the rule evaluator calls, so a
 * series that stops receiving samples empties too. Series are never freed
 * before the store (their handles stay valid); their number is bounded by
 * the simulated topology.
 */
#include "mon_internal.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

mon_store *mon_store_create(double retention_s)
{
    mon_store *s = calloc(1, sizeof *s);
    if (!s)
        return NULL;
    s->retention_s = retention_s;
    s->newest_ms = INT64_MIN;
    s->sorted = 1;
    return s;
}

void mon_store_set_retention(mon_store *s, double retention_s)
{
    s->retention_s = retention_s;
}

double mon_store_retention(const mon_store *s)
{
    return s->retention_s;
}

void mon_store_destroy(mon_store *s)
{
    if (!s)
        return;
    for (size_t i = 0; i < s->n; i++) {
        mon_labels_free(&s->series[i]->labels);
        free(s->series[i]->pts);
        free(s->series[i]);
    }
    free(s->series);
    mon_map_free(&s->by_key);
    for (size_t i = 0; i < s->n_families; i++) {
        free(s->families[i].name);
        free(s->families[i].help);
    }
    free(s->families);
    free(s);
}

void mon_store_describe(mon_store *s, const char *family, mon_metric_type type, const char *help)
{
    mon_family *f = NULL;
    for (size_t i = 0; i < s->n_families && !f; i++)
        if (!strcmp(s->families[i].name, family))
            f = &s->families[i];
    if (!f) {
        s->families = mon_xrealloc(s->families, (s->n_families + 1) * sizeof *s->families);
        f = &s->families[s->n_families++];
        f->name = mon_strdup(family);
    } else {
        free(f->help);
    }
    f->type = type;
    f->help = help ? mon_strdup(help) : NULL;
}

/* name is family + suffix, the suffix one of the NULL-terminated list */
static int has_suffix(const char *name, const char *family, const char *const *suffixes)
{
    size_t n = strlen(family);
    if (strncmp(name, family, n))
        return 0;
    for (; *suffixes; suffixes++)
        if (!strcmp(name + n, *suffixes))
            return 1;
    return 0;
}

const mon_family *mon_store_family(const mon_store *s, const char *name)
{
    static const char *const gauge[] = { "", NULL };
    static const char *const counter[] = { "_total", NULL };
    static const char *const histogram[] = { "_bucket", "_sum", "_count", NULL };
    for (size_t i = 0; i < s->n_families; i++) {
        const mon_family *f = &s->families[i];
        const char *const *sfx = f->type == MON_METRIC_COUNTER     ? counter
                                 : f->type == MON_METRIC_HISTOGRAM ? histogram
                                                                   : gauge;
        if (has_suffix(name, f->name, sfx))
            return f;
    }
    return NULL;
}

mon_series *mon_store_series(mon_store *s, const mon_labels *ls)
{
    mon_labels sorted;
    mon_labels_copy(&sorted, ls);
    mon_labels_sort(&sorted);
    /* Empty values mean "no label" in Prometheus. */
    for (int i = sorted.n - 1; i >= 0; i--)
        if (!*sorted.v[i].value)
            mon_labels_del(&sorted, sorted.v[i].name);
    char *key = mon_labels_key(&sorted);
    mon_series *se = mon_map_get(&s->by_key, key);
    if (se) {
        free(key);
        mon_labels_free(&sorted);
        return se;
    }
    se = calloc(1, sizeof *se);
    if (!se)
        abort();
    se->labels = sorted;
    se->store = s;
    mon_grow((void **)&s->series, sizeof *s->series, &s->cap, s->n);
    se->index = s->n;
    s->series[s->n++] = se;
    mon_map_put(&s->by_key, key, se);
    free(key);
    if (s->n > 1 && mon_labels_cmp(&s->series[s->n - 2]->labels, &se->labels) > 0)
        s->sorted = 0;
    return se;
}

mon_series *mon_store_series_text(mon_store *s, const char *text, mon_error *err)
{
    mon_labels ls = { 0, NULL };
    if (mon_labels_parse(text, &ls, err))
        return NULL;
    mon_series *se = mon_store_series(s, &ls);
    mon_labels_free(&ls);
    return se;
}

const mon_labels *mon_series_labels(const mon_series *se)
{
    return &se->labels;
}

static int64_t cutoff_ms(const mon_store *s)
{
    if (!isfinite(s->retention_s) || s->newest_ms == INT64_MIN)
        return INT64_MIN;
    return s->newest_ms - mon_ms(s->retention_s);
}

static void trim_series(mon_series *se, int64_t cut)
{
    while (se->start < se->end && se->pts[se->start].t < cut)
        se->start++;
    if (se->start == se->end)
        se->start = se->end = 0;
    else if (se->start > 64 && se->start * 2 > se->end) {
        memmove(se->pts, se->pts + se->start, (se->end - se->start) * sizeof *se->pts);
        se->end -= se->start;
        se->start = 0;
    }
}

int mon_series_append(mon_series *se, double t_s, double v)
{
    int64_t t = mon_ms(t_s);
    if (se->end > se->start && se->pts[se->end - 1].t >= t)
        return -1;
    mon_store *s = se->store;
    mon_grow((void **)&se->pts, sizeof *se->pts, &se->cap, se->end);
    se->pts[se->end].t = t;
    se->pts[se->end].v = v;
    se->end++;
    if (s) {
        if (t > s->newest_ms)
            s->newest_ms = t;
        trim_series(se, cutoff_ms(s));
    }
    return 0;
}

int mon_store_add(mon_store *s, const char *series_text, double t_s, double v)
{
    mon_series *se = mon_store_series_text(s, series_text, NULL);
    if (!se)
        return -1;
    return mon_series_append(se, t_s, v);
}

void mon_store_trim(mon_store *s)
{
    int64_t cut = cutoff_ms(s);
    if (cut == INT64_MIN)
        return;
    for (size_t i = 0; i < s->n; i++)
        trim_series(s->series[i], cut);
}

size_t mon_store_n_series(const mon_store *s)
{
    return s->n;
}

size_t mon_store_n_samples(const mon_store *s)
{
    size_t k = 0;
    for (size_t i = 0; i < s->n; i++)
        k += s->series[i]->end - s->series[i]->start;
    return k;
}

static int series_cmp(const void *a, const void *b)
{
    const mon_series *x = *(mon_series *const *)a, *y = *(mon_series *const *)b;
    return mon_labels_cmp(&x->labels, &y->labels);
}

size_t mon_store_select(const mon_store *cs, const mon_matcher *ms, int n, mon_series ***out)
{
    mon_store *s = (mon_store *)cs;
    if (!s->sorted) {
        qsort(s->series, s->n, sizeof *s->series, series_cmp);
        for (size_t i = 0; i < s->n; i++)
            s->series[i]->index = i;
        s->sorted = 1;
    }
    mon_series **r = NULL;
    size_t k = 0, cap = 0;
    for (size_t i = 0; i < s->n; i++) {
        if (!mon_matchers_match(ms, n, &s->series[i]->labels))
            continue;
        mon_grow((void **)&r, sizeof *r, &cap, k);
        r[k++] = s->series[i];
    }
    *out = r;
    return k;
}

/* ---- staleness ---- */

/* value.StaleNaN (model/value/value.go): a NaN with a payload no
 * computation produces. */
#define STALE_BITS 0x7ff0000000000002ull

double mon_stale_nan(void)
{
    uint64_t b = STALE_BITS;
    double d;
    memcpy(&d, &b, sizeof d);
    return d;
}

int mon_is_stale(double v)
{
    uint64_t b;
    memcpy(&b, &v, sizeof b);
    return b == STALE_BITS;
}

double mon_store_newest_s(const mon_store *s)
{
    return s->newest_ms == INT64_MIN ? NAN : (double)s->newest_ms / 1000.0;
}
