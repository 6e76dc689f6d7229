/*
 * scenario_monitoring.c - the `monitoring` section: how the run is watched
 * the way a Prometheus server and an Alertmanager would watch it
 * (scrape and evaluation intervals, the user's rule files and
 * alertmanager.yml, the request duration histogram's buckets, and whether
 * burn-rate rules generated from `slo` are evaluated too: availability from
 * the request counter, latency from the histogram bucket at
 * slo.latency_p99, which sc_monitoring_finish adds to the bounds).
 *
 * Rule files and alertmanager.yml are loaded here once, with the
 * monitoring library, so a mistake in them is a `file:line:col` error at
 * load time (exit 2), not a surprise mid-run; the engine loads them again
 * for the run (sim/observe.c).
 */
#include "mon.h"
#include "scenario.h"
#include "scenario_internal.h"

#include <yaml.h>

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* Prometheus client_golang's DefBuckets (prometheus/histogram.go). */
static const double DEFAULT_BUCKETS[] = { .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10 };

static int want_bool(sc_loader *L, const yaml_node_t *n, const char *path, int *out)
{
    static const char *const names[] = {"false", "true", NULL};
    return sc_want_enum(L, n, path, names, out);
}

/* The latency SLO of a p99 target: 99% of requests within slo.latency_p99,
 * so 1% of them may be slower (the SRE workbook's latency SLI: the share of
 * requests slower than the threshold, from the histogram bucket at it). */
#define SLO_LATENCY_OBJECTIVE 0.99

char *sc_slo_rules_text(const sc_scenario *sc, char *err, size_t errlen)
{
    const sc_slo *o = &sc->slo;
    if (o->availability >= 1) {
        snprintf(err, errlen, "slo_rules needs slo.availability below 1 (an error budget to "
                 "burn); it is 1");
        return NULL;
    }
    if (!(o->availability > 0) && !(o->latency_p99_s > 0)) {
        snprintf(err, errlen, "slo_rules needs slo.availability (below 1) or slo.latency_p99");
        return NULL;
    }
    mon_slo slos[2];
    int n = 0;
    if (o->availability > 0)
        slos[n++] = (mon_slo){ .name = "availability", .objective = o->availability,
                               .errors = "fleetsim_requests_total{code=~\"5..\"}",
                               .total = "fleetsim_requests_total", .by = "pool" };
    /* the bucket's le is written as the exporter writes it (Go's format) */
    char le[40], good[128], what[96];
    if (o->latency_p99_s > 0) {
        mon_fmt_go(o->latency_p99_s, le, sizeof le);
        snprintf(good, sizeof good, "fleetsim_request_duration_seconds_bucket{le=\"%s\"}", le);
        snprintf(what, sizeof what, "Share of requests slower than %ss", le);
        slos[n++] = (mon_slo){ .name = "latency", .objective = SLO_LATENCY_OBJECTIVE,
                               .good = good, .total = "fleetsim_request_duration_seconds_count",
                               .by = "pool", .what = what };
    }
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    mon_error e;
    int rc = f ? mon_slo_write_rules(f, slos, n, &e) : -1;
    if (f)
        fclose(f);
    if (rc != 0) {
        snprintf(err, errlen, "slo rules: %s", f ? e.msg : "out of memory");
        free(text);
        return NULL;
    }
    return text;
}

static void load_rules(sc_loader *L, yaml_node_t *n, const char *path, sc_monitoring *m)
{
    char p[SC_PATHLEN];
    int cnt = n->type == YAML_SEQUENCE_NODE
                  ? (int)(n->data.sequence.items.top - n->data.sequence.items.start)
                  : 1;
    m->rules = calloc((size_t)cnt, sizeof *m->rules);
    for (int i = 0; i < cnt; i++) {
        yaml_node_t *item = n;
        snprintf(p, sizeof p, "%s", path);
        if (n->type == YAML_SEQUENCE_NODE) {
            item = sc_node(L, n->data.sequence.items.start[i]);
            snprintf(p, sizeof p, "%s.%d", path, i);
        }
        char *rel = NULL;
        if (sc_want_str(L, item, p, 1, &rel))
            continue;
        char *full = sc_resolve(L, item, rel);
        free(rel);
        FILE *f = fopen(full, "r");
        struct stat st;
        if (!f || fstat(fileno(f), &st) != 0 || S_ISDIR(st.st_mode)) {
            sc_errn(L, item, "%s: cannot read rule file %s: %s", p, full,
                    f ? "it is a directory" : strerror(errno));
            if (f)
                fclose(f);
            free(full);
            continue;
        }
        fclose(f);
        mon_error e;
        mon_rules *r = mon_rules_load(full, m->evaluation_interval_s, &e);
        if (!r) {
            fprintf(L->err, "%s\n", e.msg);
            L->n_errors++;
            free(full);
            continue;
        }
        mon_rules_free(r);
        m->rules[m->n_rules++] = full;
    }
}

void sc_parse_monitoring(sc_loader *L, yaml_node_t *n, sc_scenario *sc)
{
    static const char *const keys[] = {"scrape_interval", "evaluation_interval", "rules",
                                       "alertmanager", "histogram_buckets", "slo_rules", NULL};
    sc_monitoring *m = &sc->monitoring;
    char buf[SC_SHOWLEN], p[SC_PATHLEN];

    if (sc_check_map(L, n, "monitoring", keys))
        return;
    m->enabled = 1;
    sc_kv si = sc_find(L, n, "scrape_interval"), ei = sc_find(L, n, "evaluation_interval");
    sc_kv rules = sc_find(L, n, "rules"), am = sc_find(L, n, "alertmanager");
    sc_kv hb = sc_find(L, n, "histogram_buckets"), slo = sc_find(L, n, "slo_rules");

    if (si.val)
        sc_want_dur(L, si.val, "monitoring.scrape_interval", 1, &m->scrape_interval_s);
    m->evaluation_interval_s = m->scrape_interval_s;
    if (ei.val)
        sc_want_dur(L, ei.val, "monitoring.evaluation_interval", 1, &m->evaluation_interval_s);
    if (hb.val) {
        if (hb.val->type != YAML_SEQUENCE_NODE ||
            hb.val->data.sequence.items.top == hb.val->data.sequence.items.start) {
            sc_errn(L, hb.val, "monitoring.histogram_buckets: expected a non-empty sequence of "
                    "durations, got %s", sc_show(hb.val, buf));
        } else {
            int cnt = (int)(hb.val->data.sequence.items.top - hb.val->data.sequence.items.start);
            free(m->buckets_s);
            m->buckets_s = calloc((size_t)cnt, sizeof *m->buckets_s);
            m->n_buckets = 0;
            for (int i = 0; i < cnt; i++) {
                yaml_node_t *it = sc_node(L, hb.val->data.sequence.items.start[i]);
                double v;
                snprintf(p, sizeof p, "monitoring.histogram_buckets.%d", i);
                if (sc_want_dur(L, it, p, 1, &v))
                    continue;
                if (m->n_buckets > 0 && v <= m->buckets_s[m->n_buckets - 1]) {
                    sc_errn(L, it, "%s: bucket bounds must be strictly ascending, got %s after %g s",
                            p, sc_show(it, buf), m->buckets_s[m->n_buckets - 1]);
                    continue;
                }
                m->buckets_s[m->n_buckets++] = v;
            }
        }
    }
    if (slo.val)
        want_bool(L, slo.val, "monitoring.slo_rules", &m->slo_rules);
    if (rules.val)
        load_rules(L, rules.val, "monitoring.rules", m);
    if (am.val) {
        char *rel = NULL;
        if (sc_want_str(L, am.val, "monitoring.alertmanager", 1, &rel) == 0) {
            char *full = sc_resolve(L, am.val, rel);
            FILE *f = fopen(full, "r");
            if (!f) {
                sc_errn(L, am.val, "monitoring.alertmanager: cannot read %s", full);
                free(full);
            } else {
                fclose(f);
                mon_error e;
                mon_am *a = mon_am_load(full, &e);
                if (!a) {
                    fprintf(L->err, "%s\n", e.msg);
                    L->n_errors++;
                    free(full);
                } else {
                    mon_am_free(a);
                    m->alertmanager = full;
                }
            }
        }
        free(rel);
    }
    if (m->slo_rules) {
        char err[600];
        char *text = sc_slo_rules_text(sc, err, sizeof err);
        mon_error e;
        mon_rules *r = text ? mon_rules_load_string(text, "slo-rules.yml",
                                                    m->evaluation_interval_s, &e)
                            : NULL;
        if (!text)
            sc_errn(L, slo.val, "monitoring.slo_rules: %s", err);
        else if (!r)
            sc_errn(L, slo.val, "monitoring.slo_rules: generated rules: %s", e.msg);
        mon_rules_free(r);
        free(text);
    }
}

/* After every section: the latency SLO's threshold is one of the
 * histogram's bounds (added in order when the buckets lack it), so its
 * burn-rate rules, and anyone's, can read the share of requests within it. */
void sc_monitoring_finish(sc_scenario *sc)
{
    sc_monitoring *m = &sc->monitoring;
    double t = sc->slo.latency_p99_s;
    if (!(t > 0) || m->buckets_s == NULL)
        return;
    /* A duration in a smaller unit carries binary dust (700ms is
     * 0.7000000000000001 s): the threshold is the nearest 15-digit decimal,
     * so it meets a bucket written as 0.7 and its le reads "0.7". */
    char dec[32];
    snprintf(dec, sizeof dec, "%.15g", t);
    t = sc->slo.latency_p99_s = strtod(dec, NULL);
    int at = 0;
    while (at < m->n_buckets && m->buckets_s[at] < t)
        at++;
    if (at < m->n_buckets && m->buckets_s[at] == t)
        return;
    double *b = realloc(m->buckets_s, sizeof *b * (size_t)(m->n_buckets + 1));
    if (b == NULL)
        return;
    memmove(b + at + 1, b + at, sizeof *b * (size_t)(m->n_buckets - at));
    b[at] = t;
    m->buckets_s = b;
    m->n_buckets++;
}

/* Defaults, whether or not the file has the section. */
void sc_monitoring_defaults(sc_scenario *sc)
{
    sc_monitoring *m = &sc->monitoring;
    m->scrape_interval_s = 15;  /* Prometheus's global scrape_interval in its example config */
    m->evaluation_interval_s = 15;
    m->n_buckets = (int)(sizeof DEFAULT_BUCKETS / sizeof DEFAULT_BUCKETS[0]);
    m->buckets_s = malloc(sizeof DEFAULT_BUCKETS);
    memcpy(m->buckets_s, DEFAULT_BUCKETS, sizeof DEFAULT_BUCKETS);
}

void sc_free_monitoring(sc_scenario *sc)
{
    sc_monitoring *m = &sc->monitoring;
    for (int i = 0; i < m->n_rules; i++)
        free(m->rules[i]);
    free(m->rules);
    free(m->alertmanager);
    free(m->buckets_s);
}
