/*
 * rules.c - Prometheus rule files: loading (rulefmt's checks, with
 * file:line:col), group scheduling, recording rules, and the alert state
 * machine of rules/alerting.go (Prometheus 2.42):
 *
 * - Each evaluation, every sample of the expression is an alert instance
 *   keyed by its labels (metric name dropped, rule labels templated and
 *   added, alertname set). A new instance is PENDING with active_at = now.
 * - PENDING becomes FIRING once now - active_at >= for (so for: 0 fires in
 *   the evaluation that created it).
 * - An instance missing from the result: PENDING ones are deleted; FIRING
 *   ones stay FIRING while now - keep_firing_since < keep_firing_for (the
 *   first missing evaluation sets keep_firing_since), else become INACTIVE
 *   with resolved_at = now, and are forgotten 15 minutes later
 *   (resolvedRetention). A result that returns while INACTIVE starts a new
 *   PENDING instance.
 * - Annotations and the value are refreshed every evaluation.
 *
 * Groups run at multiples of their interval from t = 0 (Prometheus adds a
 * per-group phase offset; promtool, like this, does not), rules in file
 * order, each rule's output written to the store before the next rule runs
 * (rules/group.go), with staleness markers for series a rule stopped
 * producing. Alerting rules write ALERTS{alertname, alertstate, ...} = 1.
 */
#include "mon_internal.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define RESOLVED_RETENTION_MS (15 * 60 * 1000)

typedef struct {
    char *key;                  /* labels key */
    mon_labels labels;
    mon_labels annotations;
    mon_alert_state state;
    int64_t active_at, fired_at, resolved_at, keep_since;  /* -1: unset */
    double value;
    size_t record;              /* index in r->records */
} alert;

typedef struct {
    int is_alert;
    char *name;
    mon_expr *expr;
    int64_t for_ms, keep_ms;
    mon_labels labels;          /* raw (templates) */
    mon_labels annotations;     /* raw */
    alert *active;
    int n_active;
    mon_series **prev;          /* series written at the last evaluation */
    int n_prev;
    char where[300];            /* file:line:col of the rule, for run-time errors */
} rule;

typedef struct {
    char *name;
    double interval_s;
    int64_t next_ms;
    rule *rules;
    int n;
} group;

typedef struct {
    int64_t t;
    int rule_index;             /* global index over alerting rules */
    mon_labels labels;
    mon_labels annotations;
} firing_entry;

struct mon_rules {
    char *file;
    group *g;
    int n;
    rule **alerting;            /* alerting rules in file order */
    int n_alerting;
    mon_transition *tr;
    size_t n_tr, cap_tr;
    mon_alert_record *records;
    size_t n_rec, cap_rec;
    char last_error[600];
    int64_t last_eval_ms;
    int keep_log;
    int64_t *log_times;
    size_t n_log_times, cap_log_times;
    firing_entry *log;
    size_t n_log, cap_log;
};

/* ---- loading ---- */

static const char *const group_keys[] = { "name", "interval", "rules", "limit", NULL };
static const char *const rule_keys[] = { "record", "alert", "expr", "for", "keep_firing_for",
                                         "labels", "annotations", NULL };

static int load_labels(mon_yaml *y, yaml_node_t *map, const char *what, int check_templates,
                       mon_labels *out)
{
    out->n = 0;
    out->v = NULL;
    if (!map || mon_yaml_is_null(map))
        return 0;
    if (map->type != YAML_MAPPING_NODE) {
        mon_yaml_err(y, map, "%s must be a mapping of names to strings", what);
        return -1;
    }
    for (yaml_node_pair_t *p = map->data.mapping.pairs.start; p < map->data.mapping.pairs.top; p++) {
        yaml_node_t *k = mon_yaml_node(y, p->key), *v = mon_yaml_node(y, p->value);
        const char *name = mon_yaml_str(y, k, what);
        const char *val = mon_yaml_str(y, v, what);
        if (!name || !val)
            return -1;
        if (!mon_valid_label_name(name)) {
            mon_yaml_err(y, k, "invalid label name in %s: \"%s\"", what, name);
            return -1;
        }
        if (check_templates) {
            mon_error e;
            if (mon_template_check(val, &e)) {
                mon_yaml_err(y, v, "%s \"%s\": %s", what, name, e.msg);
                return -1;
            }
        }
        if (*mon_labels_get(out, name)) {
            mon_yaml_err(y, k, "%s \"%s\" given twice", what, name);
            return -1;
        }
        mon_labels_push(out, name, val);
    }
    mon_labels_sort(out);
    return 0;
}

static void rule_free(rule *ru)
{
    free(ru->name);
    mon_expr_free(ru->expr);
    mon_labels_free(&ru->labels);
    mon_labels_free(&ru->annotations);
    for (int i = 0; i < ru->n_active; i++) {
        free(ru->active[i].key);
        mon_labels_free(&ru->active[i].labels);
        mon_labels_free(&ru->active[i].annotations);
    }
    free(ru->active);
    free(ru->prev);
}

static int load_rule(mon_yaml *y, yaml_node_t *n, rule *ru)
{
    memset(ru, 0, sizeof *ru);
    snprintf(ru->where, sizeof ru->where, "%s:%zu:%zu", y->file, n->start_mark.line + 1,
             n->start_mark.column + 1);
    if (mon_yaml_check_keys(y, n, "rule", rule_keys))
        return -1;
    yaml_node_t *rec = mon_yaml_get(y, n, "record"), *al = mon_yaml_get(y, n, "alert");
    yaml_node_t *ex = mon_yaml_get(y, n, "expr");
    if (rec && al) {
        mon_yaml_err(y, n, "only one of 'record' and 'alert' must be set");
        return -1;
    }
    if (!rec && !al) {
        mon_yaml_err(y, n, "one of 'record' or 'alert' must be set");
        return -1;
    }
    ru->is_alert = al != NULL;
    const char *name = mon_yaml_str(y, al ? al : rec, al ? "alert" : "record");
    if (!name)
        return -1;
    if (!*name) {
        mon_yaml_err(y, al ? al : rec, "field '%s' must be set in rule", al ? "alert" : "record");
        return -1;
    }
    if (rec && !mon_valid_metric_name(name)) {
        mon_yaml_err(y, rec, "invalid recording rule name: %s", name);
        return -1;
    }
    ru->name = mon_strdup(name);
    const char *text = ex ? mon_yaml_str(y, ex, "expr") : NULL;
    if (!ex || (text && !*text)) {
        mon_yaml_err(y, ex ? ex : n, "field 'expr' must be set in rule");
        return -1;
    }
    if (!text)
        return -1;
    mon_error e;
    ru->expr = mon_expr_parse(text, &e);
    if (!ru->expr) {
        /* A plain one-line scalar maps expression columns onto the file. */
        int line = 0, col = 0;
        if (sscanf(e.msg, "%d:%d:", &line, &col) == 2 && line == 1 &&
            ex->data.scalar.style == YAML_PLAIN_SCALAR_STYLE && !strchr(text, '\n')) {
            const char *msg = strstr(e.msg, "parse error");
            mon_error pe;
            mon_errf(&pe, "%s", msg ? msg : e.msg);
            yaml_node_t at = *ex;
            at.start_mark.column += (size_t)(col - 1);
            mon_yaml_err(y, &at, "could not parse expression: %s", pe.msg);
        } else {
            mon_yaml_err(y, ex, "could not parse expression: %s", e.msg);
        }
        return -1;
    }
    yaml_node_t *f = mon_yaml_get(y, n, "for"), *kf = mon_yaml_get(y, n, "keep_firing_for");
    yaml_node_t *an = mon_yaml_get(y, n, "annotations");
    if (rec && f) {
        mon_yaml_err(y, f, "invalid field 'for' in recording rule");
        return -1;
    }
    if (rec && kf) {
        mon_yaml_err(y, kf, "invalid field 'keep_firing_for' in recording rule");
        return -1;
    }
    if (rec && an) {
        mon_yaml_err(y, an, "invalid field 'annotations' in recording rule");
        return -1;
    }
    double s;
    if (f) {
        if (mon_yaml_duration(y, f, "for", &s))
            return -1;
        ru->for_ms = mon_ms(s);
    }
    if (kf) {
        if (mon_yaml_duration(y, kf, "keep_firing_for", &s))
            return -1;
        ru->keep_ms = mon_ms(s);
    }
    if (load_labels(y, mon_yaml_get(y, n, "labels"), "labels", ru->is_alert, &ru->labels))
        return -1;
    if (rec && *mon_labels_get(&ru->labels, MON_NAME)) {
        mon_yaml_err(y, n, "invalid recording rule label: __name__");
        return -1;
    }
    if (load_labels(y, an, "annotations", 1, &ru->annotations))
        return -1;
    return 0;
}

static mon_rules *load_doc(mon_yaml *y, double default_interval_s)
{
    mon_rules *r = calloc(1, sizeof *r);
    if (!r)
        abort();
    r->file = mon_strdup(y->file);
    r->last_eval_ms = INT64_MIN;
    yaml_node_t *root = mon_yaml_root(y);
    if (!root || mon_yaml_is_null(root))
        return r; /* an empty file has no groups */
    static const char *const top[] = { "groups", NULL };
    if (mon_yaml_check_keys(y, root, "rule file", top))
        goto fail;
    yaml_node_t *gs = mon_yaml_get(y, root, "groups");
    if (!gs || mon_yaml_is_null(gs))
        return r;
    if (gs->type != YAML_SEQUENCE_NODE) {
        mon_yaml_err(y, gs, "groups must be a sequence");
        goto fail;
    }
    for (yaml_node_item_t *it = gs->data.sequence.items.start; it < gs->data.sequence.items.top; it++) {
        yaml_node_t *gn = mon_yaml_node(y, *it);
        if (mon_yaml_check_keys(y, gn, "group", group_keys))
            goto fail;
        r->g = mon_xrealloc(r->g, (size_t)(r->n + 1) * sizeof *r->g);
        group *g = &r->g[r->n++];
        memset(g, 0, sizeof *g);
        g->interval_s = default_interval_s;
        yaml_node_t *nm = mon_yaml_get(y, gn, "name");
        const char *name = nm ? mon_yaml_str(y, nm, "name") : "";
        if (!name)
            goto fail;
        if (!*name) {
            mon_yaml_err(y, nm ? nm : gn, "groupname should not be empty");
            goto fail;
        }
        for (int i = 0; i < r->n - 1; i++)
            if (!strcmp(r->g[i].name, name)) {
                mon_yaml_err(y, nm, "groupname: \"%s\" is repeated in the same file", name);
                goto fail;
            }
        g->name = mon_strdup(name);
        yaml_node_t *iv = mon_yaml_get(y, gn, "interval");
        if (iv) {
            if (mon_yaml_duration(y, iv, "interval", &g->interval_s))
                goto fail;
            if (g->interval_s <= 0) {
                mon_yaml_err(y, iv, "interval must be positive");
                goto fail;
            }
        }
        yaml_node_t *rs = mon_yaml_get(y, gn, "rules");
        if (!rs || mon_yaml_is_null(rs))
            continue;
        if (rs->type != YAML_SEQUENCE_NODE) {
            mon_yaml_err(y, rs, "rules must be a sequence");
            goto fail;
        }
        for (yaml_node_item_t *ri = rs->data.sequence.items.start; ri < rs->data.sequence.items.top; ri++) {
            g->rules = mon_xrealloc(g->rules, (size_t)(g->n + 1) * sizeof *g->rules);
            int bad = load_rule(y, mon_yaml_node(y, *ri), &g->rules[g->n]);
            g->n++;
            if (bad)
                goto fail;
        }
    }
    /* a subquery without a step steps at the global evaluation_interval
     * (Prometheus sets the engine's default from it) */
    for (int i = 0; i < r->n; i++)
        for (int k = 0; k < r->g[i].n; k++)
            r->g[i].rules[k].expr->default_step_ms = mon_ms(default_interval_s);
    for (int i = 0; i < r->n; i++)
        for (int k = 0; k < r->g[i].n; k++)
            if (r->g[i].rules[k].is_alert) {
                r->alerting = mon_xrealloc(r->alerting, (size_t)(r->n_alerting + 1) * sizeof *r->alerting);
                r->alerting[r->n_alerting++] = &r->g[i].rules[k];
            }
    return r;
fail:
    mon_rules_free(r);
    return NULL;
}

mon_rules *mon_rules_load_string(const char *text, const char *name, double default_interval_s,
                                 mon_error *err)
{
    mon_yaml y;
    if (mon_yaml_open(&y, text, name, err))
        return NULL;
    mon_rules *r = load_doc(&y, default_interval_s);
    mon_yaml_close(&y);
    return r;
}

mon_rules *mon_rules_load(const char *path, double default_interval_s, mon_error *err)
{
    char *text = mon_read_file(path, err);
    if (!text)
        return NULL;
    mon_rules *r = mon_rules_load_string(text, path, default_interval_s, err);
    free(text);
    return r;
}

void mon_rules_free(mon_rules *r)
{
    if (!r)
        return;
    for (int i = 0; i < r->n; i++) {
        for (int k = 0; k < r->g[i].n; k++)
            rule_free(&r->g[i].rules[k]);
        free(r->g[i].rules);
        free(r->g[i].name);
    }
    free(r->g);
    free(r->alerting);
    for (size_t i = 0; i < r->n_tr; i++) {
        mon_labels_free(&r->tr[i].labels);
        mon_labels_free(&r->tr[i].annotations);
    }
    free(r->tr);
    for (size_t i = 0; i < r->n_rec; i++)
        mon_labels_free(&r->records[i].labels);
    free(r->records);
    for (size_t i = 0; i < r->n_log; i++) {
        mon_labels_free(&r->log[i].labels);
        mon_labels_free(&r->log[i].annotations);
    }
    free(r->log);
    free(r->log_times);
    free(r->file);
    free(r);
}

/* ---- queries ---- */

double mon_rules_retention_s(const mon_rules *r)
{
    double m = MON_LOOKBACK_S, slack = 0;
    for (int i = 0; i < r->n; i++) {
        slack = fmax(slack, r->g[i].interval_s);
        for (int k = 0; k < r->g[i].n; k++)
            m = fmax(m, mon_expr_lookback_s(r->g[i].rules[k].expr));
    }
    return m + slack;
}

double mon_rules_next_eval(const mon_rules *r)
{
    double t = INFINITY;
    for (int i = 0; i < r->n; i++)
        if (r->g[i].n)
            t = fmin(t, (double)r->g[i].next_ms / 1000.0);
    return t;
}

double mon_rules_common_interval(const mon_rules *r)
{
    double iv = -1;
    for (int i = 0; i < r->n; i++) {
        if (iv >= 0 && r->g[i].interval_s != iv)
            return -1;
        iv = r->g[i].interval_s;
    }
    return iv;
}

const mon_transition *mon_rules_transitions(const mon_rules *r, size_t *n)
{
    *n = r->n_tr;
    return r->tr;
}

const mon_alert_record *mon_rules_alerts(const mon_rules *r, size_t *n)
{
    *n = r->n_rec;
    return r->records;
}

const char *mon_rules_last_error(const mon_rules *r)
{
    return r->last_error;
}

int mon_rules_n_alerting(const mon_rules *r)
{
    return r->n_alerting;
}

const char *mon_rules_alerting_name(const mon_rules *r, int i)
{
    return i >= 0 && i < r->n_alerting ? r->alerting[i]->name : NULL;
}

void mon_rules_keep_firing_log(mon_rules *r, int on)
{
    r->keep_log = on;
}

/* ---- evaluation ---- */

static double sec(int64_t ms)
{
    return ms < 0 ? NAN : (double)ms / 1000.0;
}

static void transition(mon_rules *r, const rule *ru, const alert *a, mon_alert_state from,
                        int64_t t)
{
    mon_grow((void **)&r->tr, sizeof *r->tr, &r->cap_tr, r->n_tr);
    mon_transition *x = &r->tr[r->n_tr++];
    memset(x, 0, sizeof *x);
    x->t_s = sec(t);
    x->alertname = ru->name;
    mon_labels_copy(&x->labels, &a->labels);
    mon_labels_copy(&x->annotations, &a->annotations);
    x->severity = r->records[a->record].severity;
    x->from = from;
    x->to = a->state;
    x->value = a->value;
    x->pending_at = sec(a->active_at);
    x->firing_at = sec(a->fired_at);
    x->resolved_at = sec(a->resolved_at);
}

/* Writes one rule's output and stale-marks what it wrote last time. */
static void write_output(rule *ru, mon_store *s, mon_value *out, int64_t t)
{
    mon_series **now = NULL;
    int n_now = 0;
    for (int i = 0; i < out->n; i++) {
        mon_series *se = mon_store_series(s, &out->v[i].labels);
        se->derived = 1;
        mon_series_append(se, sec(t), out->v[i].v);
        now = mon_xrealloc(now, (size_t)(n_now + 1) * sizeof *now);
        now[n_now++] = se;
    }
    for (int i = 0; i < ru->n_prev; i++) {
        int still = 0;
        for (int k = 0; k < n_now && !still; k++)
            still = now[k] == ru->prev[i];
        if (!still)
            mon_series_append(ru->prev[i], sec(t), mon_stale_nan());
    }
    free(ru->prev);
    ru->prev = now;
    ru->n_prev = n_now;
}

static void rule_error(mon_rules *r, const rule *ru, const char *msg)
{
    snprintf(r->last_error, sizeof r->last_error, "%s: rule \"%s\": %s", ru->where, ru->name, msg);
}

/* EngineQueryFunc (rules/manager.go): a rule's result must be a vector or
 * a scalar. */
static int rule_eval(const rule *ru, mon_store *s, int64_t t, mon_value *v, mon_error *e)
{
    if (mon_expr_eval(ru->expr, s, sec(t), v, e))
        return -1;
    if (v->type != MON_VAL_VECTOR && v->type != MON_VAL_SCALAR) {
        mon_value_free(v);
        snprintf(e->msg, sizeof e->msg, "rule result is not a vector or scalar");
        return -1;
    }
    return 0;
}

static void to_vector(mon_value *v)
{
    if (v->type == MON_VAL_SCALAR) {
        double x = v->scalar;
        v->type = MON_VAL_VECTOR;
        v->v = mon_xrealloc(NULL, sizeof *v->v);
        v->v[0].labels.n = 0;
        v->v[0].labels.v = NULL;
        v->v[0].v = x;
        v->n = 1;
    }
}

static void eval_recording(mon_rules *r, rule *ru, mon_store *s, int64_t t)
{
    mon_value v;
    mon_error e;
    if (rule_eval(ru, s, t, &v, &e)) {
        rule_error(r, ru, e.msg);
        mon_value out = { .type = MON_VAL_VECTOR };
        write_output(ru, s, &out, t);
        return;
    }
    to_vector(&v);
    mon_map seen = { 0 };
    for (int i = 0; i < v.n; i++) {
        mon_labels_set(&v.v[i].labels, MON_NAME, ru->name);
        for (int k = 0; k < ru->labels.n; k++)
            mon_labels_set(&v.v[i].labels, ru->labels.v[k].name, ru->labels.v[k].value);
        char *key = mon_labels_key(&v.v[i].labels);
        if (mon_map_get(&seen, key)) {
            rule_error(r, ru, "vector contains metrics with the same labelset after applying rule labels");
            free(key);
            mon_value_free(&v);
            v.n = 0;
            break;
        }
        mon_map_put(&seen, key, (void *)1);
        free(key);
    }
    mon_map_free(&seen);
    write_output(ru, s, &v, t);
    mon_value_free(&v);
}

static char *expand_or_error(const char *tmpl, const mon_labels *ls, double v)
{
    mon_error e;
    char *x = mon_template_expand(tmpl, ls, v, &e);
    if (x)
        return x;
    /* rules/alerting.go: a failed expansion becomes the text of the error */
    size_t n = strlen(e.msg) + 40;
    x = mon_xrealloc(NULL, n);
    snprintf(x, n, "<error expanding template: %s>", e.msg);
    return x;
}

static int find_active(const rule *ru, const char *key)
{
    for (int i = 0; i < ru->n_active; i++)
        if (!strcmp(ru->active[i].key, key))
            return i;
    return -1;
}

static void new_record(mon_rules *r, const rule *ru, alert *a)
{
    mon_grow((void **)&r->records, sizeof *r->records, &r->cap_rec, r->n_rec);
    mon_alert_record *rec = &r->records[r->n_rec];
    rec->alertname = ru->name;
    mon_labels_copy(&rec->labels, &a->labels);
    /* points into the record's own label strings, which never move */
    rec->severity = mon_labels_get(&rec->labels, "severity");
    rec->pending_at = sec(a->active_at);
    rec->firing_at = NAN;
    rec->resolved_at = NAN;
    a->record = r->n_rec++;
}

static void remove_active(rule *ru, int i)
{
    free(ru->active[i].key);
    mon_labels_free(&ru->active[i].labels);
    mon_labels_free(&ru->active[i].annotations);
    ru->active[i] = ru->active[--ru->n_active];
}

static int key_in(char *const *keys, int n, const char *key)
{
    for (int k = 0; k < n; k++)
        if (!strcmp(keys[k], key))
            return 1;
    return 0;
}

static void free_results(char **keys, mon_labels *lbs, mon_labels *anns, int n)
{
    for (int i = 0; i < n; i++) {
        free(keys[i]);
        mon_labels_free(&lbs[i]);
        mon_labels_free(&anns[i]);
    }
    free(keys);
    free(lbs);
    free(anns);
}

static void alerts_sample(mon_value *out, const alert *a)
{
    mon_labels al;
    mon_labels_copy(&al, &a->labels);
    mon_labels_set(&al, MON_NAME, "ALERTS");
    mon_labels_set(&al, "alertstate", a->state == MON_ALERT_FIRING ? "firing" : "pending");
    out->v = mon_xrealloc(out->v, (size_t)(out->n + 1) * sizeof *out->v);
    out->v[out->n].labels = al;
    out->v[out->n].v = 1;
    out->n++;
}

/* AlertingRule.Eval (rules/alerting.go, 2.42). */
static void eval_alerting(mon_rules *r, rule *ru, int rule_index, mon_store *s, int64_t t)
{
    mon_value v;
    mon_error e;
    mon_value out = { .type = MON_VAL_VECTOR };
    if (rule_eval(ru, s, t, &v, &e)) {
        /* the rule is unhealthy this round; its alerts are left as they are */
        rule_error(r, ru, e.msg);
        write_output(ru, s, &out, t);
        return;
    }
    to_vector(&v);
    int nres = v.n;
    size_t sz = (size_t)(nres ? nres : 1);
    char **keys = calloc(sz, sizeof *keys);
    mon_labels *lbs = calloc(sz, sizeof *lbs);
    mon_labels *anns = calloc(sz, sizeof *anns);
    if (!keys || !lbs || !anns)
        abort();
    for (int i = 0; i < nres; i++) {
        mon_labels *metric = &v.v[i].labels;
        mon_labels_copy(&lbs[i], metric);
        mon_labels_del(&lbs[i], MON_NAME);
        for (int k = 0; k < ru->labels.n; k++) {
            char *x = expand_or_error(ru->labels.v[k].value, metric, v.v[i].v);
            mon_labels_set(&lbs[i], ru->labels.v[k].name, x);
            free(x);
        }
        mon_labels_set(&lbs[i], "alertname", ru->name);
        for (int k = 0; k < ru->annotations.n; k++) {
            char *x = expand_or_error(ru->annotations.v[k].value, metric, v.v[i].v);
            mon_labels_push(&anns[i], ru->annotations.v[k].name, x);
            free(x);
        }
        keys[i] = mon_labels_key(&lbs[i]);
        if (key_in(keys, i, keys[i])) {
            rule_error(r, ru, "vector contains metrics with the same labelset after applying alert labels");
            free_results(keys, lbs, anns, i + 1);
            mon_value_free(&v);
            write_output(ru, s, &out, t);
            return;
        }
    }
    /* new instances, or fresh value and annotations for known ones */
    for (int i = 0; i < nres; i++) {
        int at = find_active(ru, keys[i]);
        if (at >= 0 && ru->active[at].state != MON_ALERT_INACTIVE) {
            alert *a = &ru->active[at];
            a->value = v.v[i].v;
            mon_labels_free(&a->annotations);
            a->annotations = anns[i];
            anns[i].n = 0;
            anns[i].v = NULL;
            continue;
        }
        if (at >= 0)
            remove_active(ru, at);
        ru->active = mon_xrealloc(ru->active, (size_t)(ru->n_active + 1) * sizeof *ru->active);
        alert *a = &ru->active[ru->n_active++];
        *a = (alert){ .key = mon_strdup(keys[i]), .labels = lbs[i], .annotations = anns[i],
                      .state = MON_ALERT_PENDING, .active_at = t, .fired_at = -1,
                      .resolved_at = -1, .keep_since = -1, .value = v.v[i].v };
        lbs[i].n = anns[i].n = 0;
        lbs[i].v = anns[i].v = NULL;
        new_record(r, ru, a);
        transition(r, ru, a, MON_ALERT_INACTIVE, t);
    }
    for (int i = 0; i < ru->n_active;) {
        alert *a = &ru->active[i];
        if (!key_in(keys, nres, a->key)) {
            int keep = 0;
            if (a->state == MON_ALERT_FIRING && ru->keep_ms > 0) {
                if (a->keep_since < 0)
                    a->keep_since = t;
                if (t - a->keep_since < ru->keep_ms)
                    keep = 1;
            }
            if (a->state == MON_ALERT_PENDING) {
                /* a pending alert whose condition cleared is dropped */
                a->state = MON_ALERT_INACTIVE;
                a->value = NAN;
                r->records[a->record].resolved_at = sec(t);
                transition(r, ru, a, MON_ALERT_PENDING, t);
                remove_active(ru, i);
                continue;
            }
            if (a->resolved_at >= 0 && t - a->resolved_at > RESOLVED_RETENTION_MS) {
                remove_active(ru, i);
                continue;
            }
            if (a->state != MON_ALERT_INACTIVE && !keep) {
                mon_alert_state from = a->state;
                a->state = MON_ALERT_INACTIVE;
                a->resolved_at = t;
                a->value = NAN;
                r->records[a->record].resolved_at = sec(t);
                transition(r, ru, a, from, t);
            }
            if (!keep) {
                i++;
                continue;
            }
        } else {
            a->keep_since = -1;
        }
        if (a->state == MON_ALERT_PENDING && t - a->active_at >= ru->for_ms) {
            a->state = MON_ALERT_FIRING;
            a->fired_at = t;
            r->records[a->record].firing_at = sec(t);
            transition(r, ru, a, MON_ALERT_PENDING, t);
        }
        alerts_sample(&out, a);
        if (r->keep_log && a->state == MON_ALERT_FIRING) {
            mon_grow((void **)&r->log, sizeof *r->log, &r->cap_log, r->n_log);
            firing_entry *fe = &r->log[r->n_log++];
            fe->t = t;
            fe->rule_index = rule_index;
            mon_labels_copy(&fe->labels, &a->labels);
            mon_labels_copy(&fe->annotations, &a->annotations);
        }
        i++;
    }
    free_results(keys, lbs, anns, nres);
    mon_value_free(&v);
    write_output(ru, s, &out, t);
    mon_value_free(&out);
}

int mon_rules_eval(mon_rules *r, mon_store *s, double t_s)
{
    int64_t t = mon_ms(t_s);
    if (t < r->last_eval_ms)
        return -1;
    size_t before = r->n_tr;
    int any = 0;
    for (int gi = 0; gi < r->n; gi++) {
        group *g = &r->g[gi];
        if (!g->n || g->next_ms > t)
            continue;
        any = 1;
        for (int k = 0; k < g->n; k++) {
            rule *ru = &g->rules[k];
            if (ru->is_alert) {
                int idx = 0;
                while (r->alerting[idx] != ru)
                    idx++;
                eval_alerting(r, ru, idx, s, t);
            } else {
                eval_recording(r, ru, s, t);
            }
        }
        int64_t iv = mon_ms(g->interval_s);
        g->next_ms = (t / iv + 1) * iv;
    }
    if (any) {
        r->last_eval_ms = t;
        if (r->keep_log) {
            mon_grow((void **)&r->log_times, sizeof *r->log_times, &r->cap_log_times, r->n_log_times);
            r->log_times[r->n_log_times++] = t;
        }
        mon_store_trim(s);
    }
    return (int)(r->n_tr - before);
}

/* ---- access for the promtool writer (export.c) ---- */

size_t mon_rules_log_times(const mon_rules *r, const int64_t **times);
size_t mon_rules_log_times(const mon_rules *r, const int64_t **times)
{
    *times = r->log_times;
    return r->n_log_times;
}

/* The firing entries of one evaluation time, for one alerting rule. */
void mon_rules_log_each(const mon_rules *r, int64_t t, int rule_index,
                        void (*fn)(void *, const mon_labels *, const mon_labels *), void *arg);
void mon_rules_log_each(const mon_rules *r, int64_t t, int rule_index,
                        void (*fn)(void *, const mon_labels *, const mon_labels *), void *arg)
{
    for (size_t i = 0; i < r->n_log; i++)
        if (r->log[i].t == t && r->log[i].rule_index == rule_index)
            fn(arg, &r->log[i].labels, &r->log[i].annotations);
}

/* Active alerts for Alertmanager (alertmanager.c). */
void mon_rules_each_alert(const mon_rules *r,
                          void (*fn)(void *, const mon_labels *, mon_alert_state, double fired_at,
                                     double resolved_at),
                          void *arg);
void mon_rules_each_alert(const mon_rules *r,
                          void (*fn)(void *, const mon_labels *, mon_alert_state, double fired_at,
                                     double resolved_at),
                          void *arg)
{
    for (int i = 0; i < r->n_alerting; i++) {
        const rule *ru = r->alerting[i];
        for (int k = 0; k < ru->n_active; k++) {
            const alert *a = &ru->active[k];
            fn(arg, &a->labels, a->state, sec(a->fired_at), sec(a->resolved_at));
        }
    }
}

/* ---- what the rules read and write ---- */

static void each_name(const mon_node *n, void (*fn)(void *, const char *), void *arg)
{
    if (!n)
        return;
    if (n->kind == MON_N_SEL) {
        for (int i = 0; i < n->n_matchers; i++)
            if (!strcmp(n->matchers[i].name, MON_NAME) && n->matchers[i].type == MON_M_EQ)
                fn(arg, n->matchers[i].value);
        return;
    }
    each_name(n->sel, fn, arg);
    each_name(n->lhs, fn, arg);
    each_name(n->rhs, fn, arg);
    each_name(n->param, fn, arg);
    for (int i = 0; i < n->n_args; i++)
        each_name(n->args[i], fn, arg);
}

typedef struct {
    void (*fn)(void *, const char *, const char *, const char *);
    void *arg;
    const rule *ru;
} names_ctx;

static void name_cb(void *a, const char *metric)
{
    names_ctx *c = a;
    c->fn(c->arg, c->ru->where, c->ru->name, metric);
}

void mon_rules_each_selected(const mon_rules *r,
                             void (*fn)(void *arg, const char *where, const char *rule,
                                        const char *metric),
                             void *arg)
{
    for (int gi = 0; gi < r->n; gi++)
        for (int i = 0; i < r->g[gi].n; i++) {
            names_ctx c = { fn, arg, &r->g[gi].rules[i] };
            each_name(c.ru->expr->root, name_cb, &c);
        }
}

int mon_rules_records(const mon_rules *r, const char *metric)
{
    for (int gi = 0; gi < r->n; gi++)
        for (int i = 0; i < r->g[gi].n; i++)
            if (!r->g[gi].rules[i].is_alert && !strcmp(r->g[gi].rules[i].name, metric))
                return 1;
    return 0;
}
