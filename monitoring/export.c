/*
 * export.c - the store written out for the real tools: OpenMetrics text
 * (for `promtool tsdb create-blocks-from openmetrics`, then Prometheus and
 * Grafana) and `promtool test rules` files that state, at every evaluation
 * fleetsim ran, which alerts it says are firing, so promtool can confirm
 * the semantics are Prometheus's.
 */
#include "mon_internal.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void put_escaped(FILE *f, const char *s)
{
    for (; *s; s++) {
        if (*s == '\\')
            fputs("\\\\", f);
        else if (*s == '"')
            fputs("\\\"", f);
        else if (*s == '\n')
            fputs("\\n", f);
        else
            fputc(*s, f);
    }
}

static void put_series(FILE *f, const mon_labels *ls)
{
    fputs(mon_labels_get(ls, MON_NAME), f);
    int first = 1;
    for (int i = 0; i < ls->n; i++) {
        if (!strcmp(ls->v[i].name, MON_NAME))
            continue;
        fprintf(f, "%s%s=\"", first ? "{" : ",", ls->v[i].name);
        put_escaped(f, ls->v[i].value);
        fputc('"', f);
        first = 0;
    }
    if (!first)
        fputc('}', f);
}

/* A series and the family it is written under. */
typedef struct {
    const mon_series *se;
    const char *name;
    const char *family;
    const mon_family *desc;  /* NULL: type unknown, the family is the name */
} om_entry;

static int by_family(const void *a, const void *b)
{
    const om_entry *x = a, *y = b;
    int c = strcmp(x->family, y->family);
    if (!c)
        c = strcmp(x->name, y->name);
    return c ? c : mon_labels_cmp(&x->se->labels, &y->se->labels);
}

static const char *type_word(mon_metric_type t)
{
    switch (t) {
    case MON_METRIC_GAUGE:
        return "gauge";
    case MON_METRIC_COUNTER:
        return "counter";
    case MON_METRIC_HISTOGRAM:
        return "histogram";
    default:
        return "unknown";
    }
}

/* The store's series with their names and families, sorted so that each
 * family's series are contiguous (by_family); the caller frees it. */
static om_entry *by_families(const mon_store *s)
{
    om_entry *v = mon_xrealloc(NULL, (s->n ? s->n : 1) * sizeof *v);
    for (size_t i = 0; i < s->n; i++) {
        const char *name = mon_labels_get(&s->series[i]->labels, MON_NAME);
        const mon_family *d = mon_store_family(s, name);
        v[i] = (om_entry){ s->series[i], name, d ? d->name : name, d };
    }
    qsort(v, s->n, sizeof *v, by_family);
    return v;
}

/* A family described with mon_store_describe gets its type and HELP, and
 * its samples carry the OpenMetrics suffixes (x_total of counter x;
 * x_bucket, x_count, x_sum of histogram x). Any other family is written as
 * type "unknown" under its sample name, so any name is valid. Each
 * family's series are contiguous and each series' samples in time order. */
int mon_write_openmetrics(const mon_store *s, FILE *f, double epoch_s)
{
    om_entry *v = by_families(s);
    const char *family = NULL;
    for (size_t i = 0; i < s->n; i++) {
        const mon_series *se = v[i].se;
        if (!*v[i].name || se->start == se->end)
            continue;
        if (!family || strcmp(family, v[i].family)) {
            family = v[i].family;
            if (v[i].desc && v[i].desc->help) {
                fprintf(f, "# HELP %s ", family);
                put_escaped(f, v[i].desc->help);
                fputc('\n', f);
            }
            fprintf(f, "# TYPE %s %s\n", family,
                    type_word(v[i].desc ? v[i].desc->type : MON_METRIC_UNKNOWN));
        }
        for (size_t k = se->start; k < se->end; k++) {
            const mon_point *p = &se->pts[k];
            if (mon_is_stale(p->v))
                continue;
            char num[40];
            put_series(f, &se->labels);
            /* timestamps in seconds, to the millisecond */
            int64_t ms = p->t + mon_ms(epoch_s);
            fprintf(f, " %s %lld.%03lld\n", mon_fmt_num(p->v, num, sizeof num),
                    (long long)(ms / 1000), (long long)(ms % 1000));
        }
    }
    fputs("# EOF\n", f);
    free(v);
    return ferror(f) ? -1 : 0;
}

/* ---- one scrape in the Prometheus text format ---- */

/* What an exporter's /metrics would have shown at t: each series' newest
 * sample at or before t (within the lookback, not stale), without
 * timestamps, in the text format 0.0.4 that `promtool check metrics`
 * reads: a counter's TYPE names its _total sample. */
int mon_write_scrape(const mon_store *s, FILE *f, double t_s)
{
    int64_t t = mon_ms(t_s), lo = t - mon_ms(MON_LOOKBACK_S);
    om_entry *v = by_families(s);
    const char *family = NULL;
    for (size_t i = 0; i < s->n; i++) {
        const mon_series *se = v[i].se;
        const mon_point *p = NULL;
        for (size_t k = se->end; k > se->start; k--)
            if (se->pts[k - 1].t <= t) {
                p = &se->pts[k - 1];
                break;
            }
        if (!*v[i].name || !p || p->t < lo || mon_is_stale(p->v))
            continue;
        if (!family || strcmp(family, v[i].family)) {
            family = v[i].family;
            const char *type = type_word(v[i].desc ? v[i].desc->type : MON_METRIC_UNKNOWN);
            const char *shown = v[i].desc && v[i].desc->type == MON_METRIC_COUNTER ? v[i].name : family;
            if (!strcmp(type, "unknown"))
                type = "untyped";
            if (v[i].desc && v[i].desc->help) {
                fprintf(f, "# HELP %s ", shown);
                put_escaped(f, v[i].desc->help);
                fputc('\n', f);
            }
            fprintf(f, "# TYPE %s %s\n", shown, type);
        }
        char num[40];
        put_series(f, &se->labels);
        fprintf(f, " %s\n", mon_fmt_num(p->v, num, sizeof num));
    }
    free(v);
    return ferror(f) ? -1 : 0;
}

/* ---- the whole store as text (fleetsim run --series, fleetsim query) ---- */

/* One line per sample: the series as Prometheus prints it (name, then
 * labels with Go string escapes), the time in milliseconds and the value
 * in the shortest digits that read back ("stale" for a staleness marker,
 * which OpenMetrics cannot carry and PromQL needs). */
int mon_store_dump(const mon_store *s, FILE *f)
{
    for (size_t i = 0; i < s->n; i++) {
        const mon_series *se = s->series[i];
        for (size_t k = se->start; k < se->end; k++) {
            const mon_point *p = &se->pts[k];
            put_series(f, &se->labels);
            char num[40];
            fprintf(f, " %lld %s\n", (long long)p->t,
                    mon_is_stale(p->v) ? "stale" : mon_fmt_num(p->v, num, sizeof num));
        }
    }
    return ferror(f) ? -1 : 0;
}

int mon_store_load(mon_store *s, FILE *f, mon_error *err)
{
    char *line = NULL;
    size_t cap = 0;
    long lineno = 0;
    int rc = 0;
    mon_series *last = NULL;
    char *last_text = NULL;
    while (getline(&line, &cap, f) > 0) {
        lineno++;
        size_t n = strlen(line);
        while (n && (line[n - 1] == '\n' || line[n - 1] == '\r'))
            line[--n] = '\0';
        if (!n)
            continue;
        /* the last two fields are the time and the value */
        char *v = strrchr(line, ' ');
        char *t = NULL;
        if (v) {
            *v++ = '\0';
            t = strrchr(line, ' ');
        }
        if (!t) {
            mon_errf(err, "line %ld: expected `series t_ms value`", lineno);
            rc = -1;
            break;
        }
        *t++ = '\0';
        char *end;
        long long ms = strtoll(t, &end, 10);
        double val;
        const char *why;
        if (*end || end == t) {
            mon_errf(err, "line %ld: bad time \"%s\"", lineno, t);
            rc = -1;
            break;
        }
        if (!strcmp(v, "stale"))
            val = mon_stale_nan();
        else if (mon_go_float(v, &val, &why)) {
            mon_errf(err, "line %ld: bad value \"%s\": %s", lineno, v, why);
            rc = -1;
            break;
        }
        if (!last_text || strcmp(last_text, line)) {
            mon_error e;
            last = mon_store_series_text(s, line, &e);
            if (!last) {
                mon_errf(err, "line %ld: %s", lineno, e.msg);
                rc = -1;
                break;
            }
            free(last_text);
            last_text = mon_strdup(line);
        }
        if (mon_series_append(last, (double)ms / 1000.0, val)) {
            mon_errf(err, "line %ld: samples of a series out of time order", lineno);
            rc = -1;
            break;
        }
    }
    free(last_text);
    free(line);
    return rc;
}

/* ---- promtool test rules ---- */

size_t mon_rules_log_times(const mon_rules *r, const int64_t **times);
void mon_rules_log_each(const mon_rules *r, int64_t t, int rule_index,
                        void (*fn)(void *, const mon_labels *, const mon_labels *), void *arg);

static void yaml_str(FILE *f, const char *s)
{
    fputc('"', f);
    for (; *s; s++) {
        if (*s == '"' || *s == '\\')
            fprintf(f, "\\%c", *s);
        else if (*s == '\n')
            fputs("\\n", f);
        else if ((unsigned char)*s < 0x20)
            fprintf(f, "\\x%02x", (unsigned char)*s);
        else
            fputc(*s, f);
    }
    fputc('"', f);
}

static void series_text(FILE *f, const mon_labels *ls)
{
    /* promtool parses this with the PromQL series parser: name{a="b"} */
    char *buf = NULL;
    size_t len = 0;
    FILE *m = open_memstream(&buf, &len);
    put_series(m, ls);
    if (!*mon_labels_get(ls, MON_NAME)) {
        /* a series without a name: {a="b"} */
        fclose(m);
        free(buf);
        m = open_memstream(&buf, &len);
        fputc('{', m);
        for (int i = 0; i < ls->n; i++) {
            fprintf(m, "%s%s=\"", i ? "," : "", ls->v[i].name);
            put_escaped(m, ls->v[i].value);
            fputc('"', m);
        }
        fputc('}', m);
    }
    fclose(m);
    yaml_str(f, buf);
    free(buf);
}

static void duration(FILE *f, int64_t ms)
{
    if (ms % 1000)
        fprintf(f, "%lldms", (long long)ms);
    else
        fprintf(f, "%llds", (long long)(ms / 1000));
}

static void labels_map(FILE *f, const char *indent, const char *key, const mon_labels *ls,
                       const char *skip)
{
    int any = 0;
    for (int i = 0; i < ls->n; i++)
        any |= !skip || strcmp(ls->v[i].name, skip);
    if (!any)
        return;
    fprintf(f, "%s%s:\n", indent, key);
    for (int i = 0; i < ls->n; i++) {
        if (skip && !strcmp(ls->v[i].name, skip))
            continue;
        fprintf(f, "%*s%s: ", (int)strlen(indent) + 2, "", ls->v[i].name);
        yaml_str(f, ls->v[i].value);
        fputc('\n', f);
    }
}

static void alert_entry(void *arg, const mon_labels *labels, const mon_labels *annotations)
{
    FILE *f = arg;
    int any = 0;
    for (int i = 0; i < labels->n; i++)
        any |= strcmp(labels->v[i].name, "alertname") != 0;
    if (any)
        labels_map(f, "          - ", "exp_labels", labels, "alertname");
    else
        fputs("          - exp_labels: {}\n", f);
    labels_map(f, "            ", "exp_annotations", annotations, NULL);
}

typedef struct {
    FILE *f;
    int n;
} count_arg;

static void count_entry(void *arg, const mon_labels *l, const mon_labels *a)
{
    (void)l;
    (void)a;
    ((count_arg *)arg)->n++;
}

int mon_promtool_write(FILE *f, const mon_store *s, const mon_rules *r, const char *rule_file,
                       double interval_s, const mon_promtool_expr *exprs, int n_exprs,
                       mon_error *err)
{
    int64_t iv = mon_ms(interval_s);
    if (iv <= 0) {
        mon_errf(err, "promtool writer: interval must be positive");
        return -1;
    }
    double common = mon_rules_common_interval(r);
    if (common > 0 && mon_ms(common) % iv) {
        mon_errf(err, "promtool writer: the rules' evaluation interval %gs is not a multiple of the "
                      "series interval %gs", common, interval_s);
        return -1;
    }
    if (common < 0 && mon_rules_n_alerting(r)) {
        mon_errf(err, "promtool writer: promtool evaluates every group at one evaluation_interval, "
                      "but the groups' intervals differ");
        return -1;
    }
    fprintf(f, "# Written by fleetsim: the run's input series, and at each evaluation the alerts\n"
               "# fleetsim found firing. Check with: promtool test rules THIS_FILE\n");
    fputs("rule_files:\n  - ", f);
    yaml_str(f, rule_file);
    fputc('\n', f);
    fputs("evaluation_interval: ", f);
    duration(f, common > 0 ? mon_ms(common) : iv);
    fputs("\ntests:\n  - interval: ", f);
    duration(f, iv);
    fputs("\n    input_series:\n", f);
    for (size_t i = 0; i < s->n; i++) {
        const mon_series *se = s->series[i];
        if (se->derived || se->start == se->end)
            continue;
        if (se->pts[se->start].t < 0) {
            mon_errf(err, "promtool writer: sample before t = 0");
            return -1;
        }
        fputs("      - series: ", f);
        series_text(f, &se->labels);
        fputs("\n        values: '", f);
        int64_t slot = 0;
        for (size_t k = se->start; k < se->end; k++) {
            const mon_point *p = &se->pts[k];
            if (p->t % iv) {
                char b[512];
                mon_errf(err, "promtool writer: %s has a sample at %.3fs, off the %gs grid",
                         mon_labels_str(&se->labels, b, sizeof b), (double)p->t / 1000, interval_s);
                return -1;
            }
            for (; slot < p->t / iv; slot++)
                fputs(slot ? " _" : "_", f);
            /* runs of one value: v+0xN */
            size_t run = 1;
            while (k + run < se->end && se->pts[k + run].t == p->t + (int64_t)run * iv &&
                   !mon_is_stale(p->v) && memcmp(&se->pts[k + run].v, &p->v, sizeof p->v) == 0)
                run++;
            char num[40];
            if (slot)
                fputc(' ', f);
            if (mon_is_stale(p->v))
                fputs("stale", f);
            else if (run >= 3)
                fprintf(f, "%s+0x%zu", mon_fmt_num(p->v, num, sizeof num), run - 1);
            else
                fputs(mon_fmt_num(p->v, num, sizeof num), f);
            if (run >= 3) {
                k += run - 1;
                slot += (int64_t)run;
            } else {
                slot++;
            }
        }
        fputs("'\n", f);
    }
    const int64_t *times;
    size_t nt = mon_rules_log_times(r, &times);
    if (nt && mon_rules_n_alerting(r)) {
        fputs("    alert_rule_test:\n", f);
        /* promtool groups alerts by alertname: rules sharing a name are
         * one alert_rule_test */
        int na = mon_rules_n_alerting(r);
        for (size_t i = 0; i < nt; i++)
            for (int k = 0; k < na; k++) {
                const char *name = mon_rules_alerting_name(r, k);
                int seen = 0;
                for (int j = 0; j < k && !seen; j++)
                    seen = !strcmp(mon_rules_alerting_name(r, j), name);
                if (seen)
                    continue;
                fputs("      - eval_time: ", f);
                duration(f, times[i]);
                fputs("\n        alertname: ", f);
                yaml_str(f, name);
                count_arg c = { f, 0 };
                for (int j = k; j < na; j++)
                    if (!strcmp(mon_rules_alerting_name(r, j), name))
                        mon_rules_log_each(r, times[i], j, count_entry, &c);
                if (!c.n) {
                    fputs("\n        exp_alerts: []\n", f);
                    continue;
                }
                fputs("\n        exp_alerts:\n", f);
                for (int j = k; j < na; j++)
                    if (!strcmp(mon_rules_alerting_name(r, j), name))
                        mon_rules_log_each(r, times[i], j, alert_entry, f);
            }
    }
    if (n_exprs) {
        fputs("    promql_expr_test:\n", f);
        for (int i = 0; i < n_exprs; i++) {
            mon_value v;
            mon_error e;
            if (mon_query(exprs[i].expr, s, exprs[i].t_s, &v, &e)) {
                mon_errf(err, "promtool writer: %s: %s", exprs[i].expr, e.msg);
                return -1;
            }
            fputs("      - expr: ", f);
            yaml_str(f, exprs[i].expr);
            fputs("\n        eval_time: ", f);
            duration(f, mon_ms(exprs[i].t_s));
            char num[40];
            if (v.type == MON_VAL_SCALAR) {
                fprintf(f, "\n        exp_samples:\n          - labels: \"{}\"\n            value: %s\n",
                        mon_fmt_num(v.scalar, num, sizeof num));
            } else if (!v.n) {
                fputs("\n        exp_samples: []\n", f);
            } else {
                fputs("\n        exp_samples:\n", f);
                for (int k = 0; k < v.n; k++) {
                    fputs("          - labels: ", f);
                    series_text(f, &v.v[k].labels);
                    fprintf(f, "\n            value: %s\n", mon_fmt_num(v.v[k].v, num, sizeof num));
                }
            }
            mon_value_free(&v);
        }
    }
    return ferror(f) ? -1 : 0;
}
