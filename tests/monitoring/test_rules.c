/*
 * test_rules.c - rule files and the alert state machine (rules/alerting.go
 * timelines worked out by hand: for, keep_firing_for, a pending alert that
 * clears), templates, recording rules with staleness, load errors with
 * file:line:col, SLO rule generation, and Alertmanager timing (group_wait,
 * group_interval, repeat_interval), send_resolved, routing with continue
 * and inhibition.
 */
#include "mon.h"

#include <CUnit/Basic.h>
#include <CUnit/CUnit.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static mon_rules *load(const char *text)
{
    mon_error err = { "" };
    mon_rules *r = mon_rules_load_string(text, "rules.yml", 60, &err);
    if (!r)
        fprintf(stderr, "\n  %s\n", err.msg);
    CU_ASSERT_PTR_NOT_NULL(r);
    return r;
}

/* Feeds g = vals[i] at i*60 s and evaluates at the same times. */
static void run(mon_rules *r, mon_store *s, const double *vals, int n)
{
    for (int i = 0; i < n; i++) {
        if (!isnan(vals[i]))
            mon_store_add(s, "g{node=\"n1\"}", i * 60.0, vals[i]);
        CU_ASSERT(mon_rules_eval(r, s, i * 60.0) >= 0);
    }
}

static void expect_tr(const mon_rules *r, size_t i, double t, mon_alert_state from,
                      mon_alert_state to)
{
    size_t n;
    const mon_transition *tr = mon_rules_transitions(r, &n);
    CU_ASSERT_FATAL(i < n);
    if (tr[i].t_s != t || tr[i].from != from || tr[i].to != to)
        fprintf(stderr, "\n  transition %zu: t=%g %d->%d, want t=%g %d->%d\n", i, tr[i].t_s,
                tr[i].from, tr[i].to, t, from, to);
    CU_ASSERT_EQUAL(tr[i].t_s, t);
    CU_ASSERT_EQUAL(tr[i].from, from);
    CU_ASSERT_EQUAL(tr[i].to, to);
}

static void test_for(void)
{
    mon_rules *r = load("groups:\n"
                        "  - name: g\n"
                        "    rules:\n"
                        "      - alert: A\n"
                        "        expr: g > 1\n"
                        "        for: 2m\n"
                        "        labels: {severity: warning}\n");
    mon_store *s = mon_store_create(mon_rules_retention_s(r));
    double v[] = { 0, 2, 2, 2, 2, 0, 0 };
    run(r, s, v, 7);
    size_t n;
    mon_rules_transitions(r, &n);
    CU_ASSERT_EQUAL(n, 3);
    expect_tr(r, 0, 60, MON_ALERT_INACTIVE, MON_ALERT_PENDING);
    expect_tr(r, 1, 180, MON_ALERT_PENDING, MON_ALERT_FIRING);
    expect_tr(r, 2, 300, MON_ALERT_FIRING, MON_ALERT_INACTIVE);
    const mon_alert_record *rec = mon_rules_alerts(r, &n);
    CU_ASSERT_EQUAL_FATAL(n, 1);
    CU_ASSERT_STRING_EQUAL(rec[0].alertname, "A");
    CU_ASSERT_STRING_EQUAL(rec[0].severity, "warning");
    CU_ASSERT_EQUAL(rec[0].pending_at, 60);
    CU_ASSERT_EQUAL(rec[0].firing_at, 180);
    CU_ASSERT_EQUAL(rec[0].resolved_at, 300);
    /* ALERTS series written while active, stale after */
    mon_value val;
    mon_error e;
    CU_ASSERT_EQUAL(mon_query("ALERTS{alertstate=\"firing\"}", s, 240, &val, &e), 0);
    CU_ASSERT_EQUAL(val.n, 1);
    mon_value_free(&val);
    CU_ASSERT_EQUAL(mon_query("ALERTS", s, 300, &val, &e), 0);
    CU_ASSERT_EQUAL(val.n, 0);
    mon_value_free(&val);
    CU_ASSERT_EQUAL(mon_rules_next_eval(r), 420);
    CU_ASSERT_EQUAL(mon_rules_eval(r, s, 100), -1); /* back in time */
    mon_store_destroy(s);
    mon_rules_free(r);
}

static void test_keep_firing_for(void)
{
    mon_rules *r = load("groups:\n"
                        "  - name: g\n"
                        "    rules:\n"
                        "      - alert: K\n"
                        "        expr: g > 1\n"
                        "        keep_firing_for: 2m\n");
    mon_store *s = mon_store_create(INFINITY);
    /* true only at 60: fires at once (for 0), kept through 120 and 180
     * (keep_firing_since 120), resolved at 240 when 120 s have passed */
    double v[] = { 0, 2, 0, 0, 0, 0 };
    run(r, s, v, 6);
    size_t n;
    mon_rules_transitions(r, &n);
    CU_ASSERT_EQUAL(n, 3);
    expect_tr(r, 0, 60, MON_ALERT_INACTIVE, MON_ALERT_PENDING);
    expect_tr(r, 1, 60, MON_ALERT_PENDING, MON_ALERT_FIRING);
    expect_tr(r, 2, 240, MON_ALERT_FIRING, MON_ALERT_INACTIVE);
    mon_store_destroy(s);
    mon_rules_free(r);
}

static void test_pending_clears_and_refires(void)
{
    mon_rules *r = load("groups:\n"
                        "  - name: g\n"
                        "    rules:\n"
                        "      - alert: P\n"
                        "        expr: g > 1\n"
                        "        for: 5m\n");
    mon_store *s = mon_store_create(INFINITY);
    double v[] = { 0, 2, 2, 0, 2, 0 };
    run(r, s, v, 6);
    size_t n;
    mon_rules_transitions(r, &n);
    CU_ASSERT_EQUAL(n, 4);
    expect_tr(r, 0, 60, MON_ALERT_INACTIVE, MON_ALERT_PENDING);
    expect_tr(r, 1, 180, MON_ALERT_PENDING, MON_ALERT_INACTIVE);
    expect_tr(r, 2, 240, MON_ALERT_INACTIVE, MON_ALERT_PENDING);
    expect_tr(r, 3, 300, MON_ALERT_PENDING, MON_ALERT_INACTIVE);
    const mon_alert_record *rec = mon_rules_alerts(r, &n);
    CU_ASSERT_EQUAL_FATAL(n, 2);
    CU_ASSERT(isnan(rec[0].firing_at));
    CU_ASSERT_EQUAL(rec[0].resolved_at, 180);
    CU_ASSERT_EQUAL(rec[1].pending_at, 240);
    mon_store_destroy(s);
    mon_rules_free(r);
}

static void expect_load_error(const char *text, const char *want)
{
    mon_error err = { "" };
    mon_rules *r = mon_rules_load_string(text, "rules.yml", 60, &err);
    CU_ASSERT_PTR_NULL(r);
    if (!strstr(err.msg, want))
        fprintf(stderr, "\n  got \"%s\", want \"%s\"\n", err.msg, want);
    CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, want));
    mon_rules_free(r);
}

static void test_templates(void)
{
    mon_labels ls = { 0, NULL };
    mon_labels_set(&ls, "node", "n1");
    mon_error e;
    char *x = mon_template_expand("{{ $labels.node }} at {{ $value }}", &ls, 0.95, &e);
    CU_ASSERT_STRING_EQUAL(x, "n1 at 0.95");
    free(x);
    x = mon_template_expand("{{$value|humanize}} {{ .Labels.nope }} {{- \"!\" }}", &ls, 1234567, &e);
    CU_ASSERT_STRING_EQUAL(x, "1.235M !");
    free(x);
    x = mon_template_expand("{{ $value | humanizePercentage }}", &ls, 0.9512, &e);
    CU_ASSERT_STRING_EQUAL(x, "95.12%");
    free(x);
    x = mon_template_expand("{{ $value | humanize }}", &ls, 0.0025, &e);
    CU_ASSERT_STRING_EQUAL(x, "2.5m");
    free(x);
    /* text/template: if/else if/else, range over $labels, with, variables,
     * printf and comparisons, Prometheus's humanize family */
    static const struct {
        const char *tmpl, *want;
        double value;
    } cases[] = {
        { "{{ if gt $value 0.9 }}crit{{ else if gt $value 0.5 }}warn{{ else }}ok{{ end }}", "warn", 0.7 },
        { "{{ if gt $value 0.9 }}crit{{ else if gt $value 0.5 }}warn{{ else }}ok{{ end }}", "crit", 0.95 },
        { "{{ if gt $value 0.9 }}crit{{ else if gt $value 0.5 }}warn{{ else }}ok{{ end }}", "ok", 0.1 },
        { "{{ range $k, $v := $labels }}{{ $k }}={{ $v }};{{ end }}", "node=gpu/1;pool=gpu;", 0 },
        { "{{ range .Labels }}[{{ . }}]{{ end }}", "[gpu/1][gpu]", 0 },
        { "{{ with $labels.pool }}pool {{ . }}{{ else }}none{{ end }}", "pool gpu", 0 },
        { "{{ with $labels.nope }}x{{ else }}none{{ end }}", "none", 0 },
        { "{{ $n := $labels.node }}{{ printf \"%s at %.1f%%\" $n (mul100 $value) }}", NULL, 0 },
        { "{{ printf \"%s at %.2f\" $labels.node $value }}", "gpu/1 at 0.50", 0.5 },
        { "{{ printf \"%d/%v/%5.1f|%-4s|\" 3 $value $value \"ab\" }}", "3/0.25/  0.2|ab  |", 0.25 },
        { "{{ printf \"%d\" $value }}", "%!d(float64=1.5)", 1.5 },
        { "{{ printf \"%s %s\" \"a\" }}", "a %!s(MISSING)", 0 },
        { "{{ $value | humanizeDuration }}", "1d 2h 3m 4s", 93784 },
        { "{{ humanizeDuration 0.0125 }}", "12.5ms", 0 },
        { "{{ humanizeDuration 45.5 }}", "45.5s", 0 },
        { "{{ 1536 | humanize1024 }}", "1.5ki", 0 },
        { "{{ humanizeTimestamp 1435065584.128 }}", "2015-06-23 13:19:44.128 +0000 UTC", 0 },
        { "{{ title \"hello world\" }} {{ len $labels }} {{ index $labels \"pool\" }}", "Hello World 2 gpu", 0 },
        { "{{ if and (eq $labels.pool \"gpu\") (not (eq $labels.node \"x\")) }}y{{ end }}", "y", 0 },
        { "{{ if match \"^gpu/[0-9]$\" $labels.node }}m{{ end }}{{ if match \"pu/\" $labels.node }}u{{ end }}", "mu", 0 },
        { "{{ $x := 1 }}{{ if true }}{{ $x = 2 }}{{ end }}{{ $x }}", "2", 0 },
        { "{{ print 1 2 \"a\" 3 }}|{{ println \"z\" }}", "1 2a3|z\n", 0 },
        { "{{ \"10.0.0.1:9100\" | stripPort }} {{ \"node1.example.com:9100\" | stripDomain }}", "10.0.0.1 node1:9100", 0 },
        { "{{ parseDuration \"1m30s\" }}", "90", 0 },
        /* Go's ReplaceAllString: $1 and ${name}; no replacement for an
         * empty match right after a match; ^ only at the text's start; the
         * search moves on by a whole UTF-8 character */
        { "{{ reReplaceAll \"gpu/([0-9])\" \"node-$1\" $labels.node }}", "node-1", 0 },
        { "{{ reReplaceAll \"(?P<p>[a-z]+)\" \"<${p}>\" $labels.node }}", "<gpu>/1", 0 },
        { "{{ reReplaceAll \"a*\" \"X\" \"baaac\" }}", "XbXcX", 0 },
        { "{{ reReplaceAll \"^g\" \"G\" \"gg\" }}", "Gg", 0 },
        { "{{ reReplaceAll \"\" \"-\" \"\xc3\xa9" "\" }}", "-\xc3\xa9" "-", 0 },
        /* match is a search of the whole text: ^ does not match after a newline */
        { "{{ if match \"^foo\" \"bar\\nfoo\" }}y{{ else }}n{{ end }}", "n", 0 },
        { "{{ if match \"o$\" \"bar\\nfoo\" }}y{{ else }}n{{ end }}", "y", 0 },
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        if (!cases[i].want)
            continue;
        mon_labels l2;
        mon_labels_parse("{pool=\"gpu\", node=\"gpu/1\"}", &l2, &e);
        char *got = mon_template_expand(cases[i].tmpl, &l2, cases[i].value, &e);
        if (!got || strcmp(got, cases[i].want))
            fprintf(stderr, "\n  %s: got \"%s\" (%s), want \"%s\"\n", cases[i].tmpl, got ? got : "",
                    got ? "" : e.msg, cases[i].want);
        CU_ASSERT_PTR_NOT_NULL(got);
        if (got)
            CU_ASSERT_STRING_EQUAL(got, cases[i].want);
        free(got);
        mon_labels_free(&l2);
    }
    /* Go's errors: an int and a float do not compare; what is refused */
    CU_ASSERT_PTR_NULL(mon_template_expand("{{ if gt $value 1 }}x{{ end }}", &ls, 2, &e));
    CU_ASSERT_STRING_EQUAL(e.msg, "template: error calling gt: incompatible types for comparison");
    CU_ASSERT_EQUAL(mon_template_check("{{ query \"up\" | first | value }}", &e), -1);
    CU_ASSERT_STRING_EQUAL(e.msg, "template function \"query\" is not supported: it runs a PromQL "
                                  "query, which fleetsim's templates do not");
    CU_ASSERT_EQUAL(mon_template_check("{{ nosuch 1 }}", &e), -1);
    CU_ASSERT_STRING_EQUAL(e.msg, "template: function \"nosuch\" not defined");
    CU_ASSERT_EQUAL(mon_template_check("{{ if 1 }}x", &e), -1);
    CU_ASSERT_EQUAL(mon_template_check("{{ end }}", &e), -1);
    CU_ASSERT_PTR_NULL(mon_template_expand("{{ $value ", &ls, 1, &e));
    /* found by fuzzing: the pipeline was read from an uninitialised pointer */
    CU_ASSERT_PTR_NULL(mon_template_expand("x {{ \"abc }} y", &ls, 1, &e));
    CU_ASSERT_STRING_EQUAL(e.msg, "template: unterminated quoted string");
    CU_ASSERT_PTR_NULL(mon_template_expand("{{ $value | \"a\\\" }}", &ls, 1, &e));
    CU_ASSERT_STRING_EQUAL(e.msg, "template: unterminated quoted string");
    x = mon_template_expand("{{ \"a|b\" | toUpper }}", &ls, 1, &e);
    CU_ASSERT_STRING_EQUAL(x, "A|B");
    free(x);
    /* a "}}" in a string or a comment does not end the action (text/template) */
    x = mon_template_expand("<{{ \"a}}b\" | toUpper }}>{{/* c }} d */}}", &ls, 1, &e);
    CU_ASSERT_STRING_EQUAL(x, "<A}}B>");
    free(x);
    mon_labels_free(&ls);

    /* annotations follow the value every evaluation */
    expect_load_error("groups:\n"
                      "  - name: g\n"
                      "    rules:\n"
                      "      - alert: T\n"
                      "        expr: g > 1\n"
                      "        labels: {severity: '{{ if }}'}\n",
                      "rules.yml:6:28: labels \"severity\": template: missing value for if");
    expect_load_error("groups:\n"
                      "  - name: g\n"
                      "    rules:\n"
                      "      - alert: T\n"
                      "        expr: g > 1\n"
                      "        annotations: {summary: '{{\"ls.po }}'}\n",
                      "rules.yml:6:32: annotations \"summary\": template: unterminated quoted string");
    mon_rules *r;
    r = load("groups:\n"
             "  - name: g\n"
             "    rules:\n"
             "      - alert: T\n"
             "        expr: g > 1\n"
             "        annotations: {summary: '{{ $labels.node }} is {{ $value }}'}\n");
    mon_store *s = mon_store_create(INFINITY);
    double v[] = { 2, 3 };
    run(r, s, v, 2);
    size_t n;
    const mon_transition *tr = mon_rules_transitions(r, &n);
    CU_ASSERT_EQUAL_FATAL(n, 2);
    CU_ASSERT_STRING_EQUAL(tr[1].annotations.v[0].value, "n1 is 2");
    mon_store_destroy(s);
    mon_rules_free(r);
}

static void test_recording(void)
{
    mon_rules *r = load("groups:\n"
                        "  - name: rec\n"
                        "    interval: 30s\n"
                        "    rules:\n"
                        "      - record: node:g:double\n"
                        "        expr: g * 2\n"
                        "        labels: {src: rule}\n"
                        "      - alert: Big\n"
                        "        expr: node:g:double > 5\n");
    mon_store *s = mon_store_create(INFINITY);
    mon_store_add(s, "g{node=\"n1\"}", 0, 3);
    CU_ASSERT_EQUAL(mon_rules_eval(r, s, 0), 2); /* the alert sees the record at once */
    mon_value v;
    mon_error e;
    CU_ASSERT_EQUAL(mon_query("node:g:double", s, 0, &v, &e), 0);
    CU_ASSERT_EQUAL_FATAL(v.n, 1);
    CU_ASSERT_EQUAL(v.v[0].v, 6);
    CU_ASSERT_STRING_EQUAL(mon_labels_get(&v.v[0].labels, "src"), "rule");
    mon_value_free(&v);
    CU_ASSERT_EQUAL(mon_rules_next_eval(r), 30);
    /* g goes stale: the recorded series gets a staleness marker */
    mon_store_add(s, "g{node=\"n1\"}", 30, mon_stale_nan());
    mon_rules_eval(r, s, 30);
    CU_ASSERT_EQUAL(mon_query("node:g:double", s, 31, &v, &e), 0);
    CU_ASSERT_EQUAL(v.n, 0);
    mon_value_free(&v);
    CU_ASSERT_DOUBLE_EQUAL(mon_rules_retention_s(r), 300 + 30, 0);
    mon_store_destroy(s);
    mon_rules_free(r);
}

static void test_load_errors(void)
{
    expect_load_error("groups:\n  - name: g\n    rules:\n      - alert: A\n        exprr: up\n",
                      "rules.yml:5:9: unknown key \"exprr\" in rule");
    expect_load_error("groups:\n  - name: g\n    rules:\n      - alert: A\n        expr: rate(x[5m]\n",
                      "rules.yml:5:25: could not parse expression: parse error: unexpected end of input");
    expect_load_error("groups:\n  - name: g\n    rules:\n      - alert: A\n        expr: limitk(1, x)\n",
                      "rules.yml:5:15: could not parse expression: parse error: aggregation \"limitk\" "
                      "is not supported: it is newer than Prometheus 2.42");
    expect_load_error("groups:\n  - name: g\n    rules:\n      - record: a-b\n        expr: x\n",
                      "rules.yml:4:17: invalid recording rule name: a-b");
    expect_load_error("groups:\n  - name: g\n    rules:\n      - record: ab\n        expr: x\n        for: 1m\n",
                      "rules.yml:6:14: invalid field 'for' in recording rule");
    expect_load_error("groups:\n  - name: g\n  - name: g\n", "rules.yml:3:11: groupname: \"g\" is repeated");
    expect_load_error("groups:\n  - name: g\n    rules:\n      - alert: A\n        expr: x\n        for: 5x\n",
                      "rules.yml:6:14: for: not a valid duration string");
    expect_load_error("groups:\n  - name: g\n    rules:\n      - alert: A\n        expr: x\n        for: 1111111111111111m\n",
                      "rules.yml:6:14: for: duration out of range: \"1111111111111111m\" (at most about 292 years)");
    expect_load_error("groups:\n  - name: g\n    rules:\n      - expr: x\n",
                      "rules.yml:4:9: one of 'record' or 'alert' must be set");
    expect_load_error("groups: [\n", "rules.yml:2:1:");
    /* the shipped seed rules load */
    char path[4096];
    const char *src = getenv("FLEETSIM_SRC");
    snprintf(path, sizeof path, "%s/scenarios/prometheus/seed-alerts.yml", src ? src : "..");
    mon_error err;
    mon_rules *r = mon_rules_load(path, 60, &err);
    CU_ASSERT_PTR_NOT_NULL(r);
    if (r)
        CU_ASSERT_EQUAL(mon_rules_n_alerting(r), 4);
    mon_rules_free(r);
}

static void test_slo_rules(void)
{
    mon_slo slo = { .name = "availability", .objective = 0.9999,
                    .errors = "fleetsim_requests_total{code=~\"5..\"}",
                    .total = "fleetsim_requests_total", .by = "pool" };
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    mon_error err;
    CU_ASSERT_EQUAL(mon_slo_write_rules(f, &slo, 1, &err), 0);
    fclose(f);
    mon_rules *r = load(buf);
    CU_ASSERT_PTR_NOT_NULL_FATAL(r);
    CU_ASSERT_EQUAL(mon_rules_n_alerting(r), 3);
    /* 3d window + 5 min lookback... */
    CU_ASSERT(mon_rules_retention_s(r) >= 3 * 86400);
    /* 1% errors in pool a for an hour: the 14.4x and 6x pairs need
     * 0.144% and 0.06%: both page; 1x (0.01%) tickets. */
    mon_store *s = mon_store_create(mon_rules_retention_s(r));
    for (int i = 0; i <= 240; i++) {
        double t = i * 15.0;
        mon_store_add(s, "fleetsim_requests_total{code=\"200\",pool=\"a\"}", t, 99.0 * i);
        mon_store_add(s, "fleetsim_requests_total{code=\"503\",pool=\"a\"}", t, 1.0 * i);
        if (i % 4 == 0)
            mon_rules_eval(r, s, t);
    }
    size_t n;
    const mon_alert_record *rec = mon_rules_alerts(r, &n);
    int fired = 0;
    for (size_t i = 0; i < n; i++)
        fired += !isnan(rec[i].firing_at);
    CU_ASSERT_EQUAL(fired, 3);
    /* the 14.4x pair fires on the first evaluation with 2 samples in 5m */
    CU_ASSERT_EQUAL(rec[0].firing_at, 60);
    mon_store_destroy(s);
    mon_rules_free(r);
    free(buf);
    slo.objective = 1.5;
    f = open_memstream(&buf, &len);
    CU_ASSERT_EQUAL(mon_slo_write_rules(f, &slo, 1, &err), -1);
    fclose(f);
    free(buf);
}

/* A latency SLO from a histogram: the error ratio is 1 - good / total.
 * 10% of requests slower than 1 s against 99%: a burn of 10x, so the 6x
 * and 1x pairs fire (on the first evaluation with two samples in 5m) and
 * 14.4x does not. */
static void test_slo_latency_rules(void)
{
    mon_slo slo = { .name = "latency", .objective = 0.99,
                    .good = "fleetsim_request_duration_seconds_bucket{le=\"1\"}",
                    .total = "fleetsim_request_duration_seconds_count", .by = "pool",
                    .what = "Share of requests slower than 1s" };
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    mon_error err;
    CU_ASSERT_EQUAL(mon_slo_write_rules(f, &slo, 1, &err), 0);
    fclose(f);
    CU_ASSERT_PTR_NOT_NULL(strstr(buf, "        expr: 1 - (sum by (pool) (rate("
                                       "fleetsim_request_duration_seconds_bucket{le=\"1\"}[30m])) "
                                       "/ sum by (pool) (rate("
                                       "fleetsim_request_duration_seconds_count[30m])))\n"));
    CU_ASSERT_PTR_NOT_NULL(strstr(buf, "description: \"Share of requests slower than 1s over 6h is"));
    CU_ASSERT_PTR_NOT_NULL(strstr(buf, "          slo: latency\n          severity: critical\n"));
    mon_rules *r = load(buf);
    CU_ASSERT_PTR_NOT_NULL_FATAL(r);
    CU_ASSERT_EQUAL(mon_rules_n_alerting(r), 3);
    mon_store *s = mon_store_create(mon_rules_retention_s(r));
    for (int i = 0; i <= 240; i++) {
        double t = i * 15.0;
        mon_store_add(s, "fleetsim_request_duration_seconds_bucket{le=\"1\",pool=\"a\"}", t, 90.0 * i);
        mon_store_add(s, "fleetsim_request_duration_seconds_bucket{le=\"+Inf\",pool=\"a\"}", t,
                      100.0 * i);
        mon_store_add(s, "fleetsim_request_duration_seconds_count{pool=\"a\"}", t, 100.0 * i);
        if (i % 4 == 0)
            mon_rules_eval(r, s, t);
    }
    size_t n;
    const mon_alert_record *rec = mon_rules_alerts(r, &n);
    int fired = 0;
    for (size_t i = 0; i < n; i++) {
        if (isnan(rec[i].firing_at))
            continue;
        fired++;
        const char *lw = mon_labels_get(&rec[i].labels, "long_window");
        CU_ASSERT(!strcmp(lw, "6h") || !strcmp(lw, "3d"));
        CU_ASSERT_STRING_EQUAL(mon_labels_get(&rec[i].labels, "slo"), "latency");
        CU_ASSERT_STRING_EQUAL(mon_labels_get(&rec[i].labels, "pool"), "a");
        CU_ASSERT_EQUAL(rec[i].firing_at, 60);
        CU_ASSERT(isnan(rec[i].resolved_at));
    }
    CU_ASSERT_EQUAL(fired, 2);
    mon_store_destroy(s);
    mon_rules_free(r);
    free(buf);
    /* exactly one of errors and good */
    slo.errors = "fleetsim_requests_total{code=~\"5..\"}";
    f = open_memstream(&buf, &len);
    CU_ASSERT_EQUAL(mon_slo_write_rules(f, &slo, 1, &err), -1);
    fclose(f);
    free(buf);
    slo.errors = slo.good = NULL;
    f = open_memstream(&buf, &len);
    CU_ASSERT_EQUAL(mon_slo_write_rules(f, &slo, 1, &err), -1);
    fclose(f);
    free(buf);
}

/* ---- Alertmanager ---- */

static mon_am *am_load(const char *text)
{
    mon_error err = { "" };
    mon_am *am = mon_am_load_string(text, "am.yml", &err);
    if (!am)
        fprintf(stderr, "\n  %s\n", err.msg);
    CU_ASSERT_PTR_NOT_NULL(am);
    return am;
}

static void put(mon_am *am, const char *series, double start, double end, double t)
{
    mon_labels ls;
    mon_error e;
    CU_ASSERT_EQUAL_FATAL(mon_labels_parse(series, &ls, &e), 0);
    mon_am_put(am, &ls, start, end, t);
    mon_labels_free(&ls);
}

static void test_am_timing(void)
{
    mon_am *am = am_load("global: {smtp_smarthost: 'smtp:25', smtp_from: a@b}\n"
                         "route:\n"
                         "  receiver: hook\n"
                         "  group_by: [alertname]\n"
                         "  group_wait: 30s\n"
                         "  group_interval: 5m\n"
                         "  repeat_interval: 1h\n"
                         "receivers:\n"
                         "  - name: hook\n"
                         "    webhook_configs: [{url: 'http://x'}]\n"
                         "    email_configs: [{to: a@b}]\n");
    size_t n;
    put(am, "{alertname=\"A\",node=\"1\"}", 0, NAN, 0);
    CU_ASSERT_EQUAL(mon_am_next_flush(am), 30);
    CU_ASSERT_EQUAL(mon_am_advance(am, 29), 0);
    CU_ASSERT_EQUAL(mon_am_advance(am, 30), 2); /* webhook + email */
    const mon_notification *nt = mon_am_notifications(am, &n);
    CU_ASSERT_EQUAL(nt[0].t_s, 30);
    CU_ASSERT_STRING_EQUAL(nt[0].integration, "webhook");
    CU_ASSERT_STRING_EQUAL(nt[1].integration, "email");
    CU_ASSERT_EQUAL(nt[0].n_alerts, 1);
    CU_ASSERT_STRING_EQUAL(mon_labels_get(&nt[0].group_labels, "alertname"), "A");
    /* a second alert of the group waits for the next group_interval tick */
    put(am, "{alertname=\"A\",node=\"2\"}", 60, NAN, 60);
    CU_ASSERT_EQUAL(mon_am_advance(am, 329), 0);
    CU_ASSERT_EQUAL(mon_am_advance(am, 330), 2);
    nt = mon_am_notifications(am, &n);
    CU_ASSERT_EQUAL(nt[2].t_s, 330);
    CU_ASSERT_EQUAL(nt[2].n_alerts, 2);
    /* nothing new: repeat_interval 1h after 330 is 3930; notify only at a
     * flush strictly later than that (needsUpdate: ts before now-repeat):
     * 3930 is not, 4230 is */
    CU_ASSERT_EQUAL(mon_am_advance(am, 3930), 0);
    CU_ASSERT_EQUAL(mon_am_advance(am, 4230), 2);
    nt = mon_am_notifications(am, &n);
    CU_ASSERT_EQUAL(nt[4].t_s, 4230);
    /* node 1 resolves: webhook (send_resolved by default) tells at the next
     * tick, email (off by default) stays quiet */
    put(am, "{alertname=\"A\",node=\"1\"}", 0, 4300, 4300);
    CU_ASSERT_EQUAL(mon_am_advance(am, 4530), 1);
    nt = mon_am_notifications(am, &n);
    CU_ASSERT_STRING_EQUAL(nt[6].integration, "webhook");
    CU_ASSERT_EQUAL(nt[6].t_s, 4530);
    CU_ASSERT_EQUAL(nt[6].n_alerts, 2);
    CU_ASSERT_EQUAL(nt[6].n_firing, 1);
    CU_ASSERT_EQUAL(nt[6].alerts[1].resolved, 1);
    /* all resolved: both integrations had firing alerts logged, so both
     * are told (email filters the resolved alerts out: nothing to send) */
    put(am, "{alertname=\"A\",node=\"2\"}", 60, 4600, 4600);
    CU_ASSERT_EQUAL(mon_am_advance(am, 4830), 1);
    CU_ASSERT_EQUAL(mon_am_next_flush(am), INFINITY); /* group gone */
    mon_am_free(am);
}

static void test_am_routing_and_inhibition(void)
{
    char path[4096];
    const char *src = getenv("FLEETSIM_SRC");
    snprintf(path, sizeof path, "%s/scenarios/prometheus/alertmanager.yml", src ? src : "..");
    mon_error err;
    mon_am *am = mon_am_load(path, &err);
    CU_ASSERT_PTR_NOT_NULL_FATAL(am);
    mon_labels ls;
    char buf[256];
    mon_labels_parse("{severity=\"critical\",pool=\"a\"}", &ls, &err);
    CU_ASSERT_STRING_EQUAL(mon_am_receivers_for(am, &ls, buf, sizeof buf), "sms-and-chat");
    mon_labels_free(&ls);
    mon_labels_parse("{severity=\"info\"}", &ls, &err);
    CU_ASSERT_STRING_EQUAL(mon_am_receivers_for(am, &ls, buf, sizeof buf), "email");
    mon_labels_free(&ls);
    /* warning for node a/1 and b/3; critical for a/1 inhibits only a/1 */
    put(am, "{alertname=\"HighCPU\",severity=\"warning\",pool=\"a\",node=\"1\"}", 0, NAN, 0);
    put(am, "{alertname=\"HighCPU\",severity=\"warning\",pool=\"b\",node=\"3\"}", 0, NAN, 0);
    put(am, "{alertname=\"CriticalCPU\",severity=\"critical\",pool=\"a\",node=\"1\"}", 0, NAN, 0);
    mon_am_advance(am, 30);
    size_t n;
    const mon_notification *nt = mon_am_notifications(am, &n);
    int email_a = 0, email_b = 0, sms = 0, chat = 0;
    for (size_t i = 0; i < n; i++) {
        if (!strcmp(nt[i].receiver, "email")) {
            email_a += !strcmp(mon_labels_get(&nt[i].group_labels, "pool"), "a");
            email_b += !strcmp(mon_labels_get(&nt[i].group_labels, "pool"), "b");
        }
        sms += !strcmp(nt[i].integration, "webhook");
        chat += !strcmp(nt[i].integration, "slack");
    }
    CU_ASSERT_EQUAL(email_a, 0);
    CU_ASSERT_EQUAL(email_b, 1);
    CU_ASSERT_EQUAL(sms, 1);
    CU_ASSERT_EQUAL(chat, 1);
    mon_am_free(am);

    /* continue: both routes get it */
    am = am_load("route:\n"
                 "  receiver: def\n"
                 "  routes:\n"
                 "    - match: {team: x}\n"
                 "      receiver: one\n"
                 "      continue: true\n"
                 "    - match_re: {team: 'x|y'}\n"
                 "      receiver: two\n"
                 "    - matchers: ['team=\"x\"']\n"
                 "      receiver: three\n"
                 "receivers: [{name: def}, {name: one}, {name: two}, {name: three}]\n");
    mon_labels_parse("{team=\"x\"}", &ls, &err);
    CU_ASSERT_STRING_EQUAL(mon_am_receivers_for(am, &ls, buf, sizeof buf), "one,two");
    mon_labels_free(&ls);
    mon_am_free(am);
    CU_ASSERT_PTR_NULL(mon_am_load_string("route: {receiver: nope}\nreceivers: [{name: a}]\n", "am.yml", &err));
    CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, "am.yml:1:8: undefined receiver \"nope\""));
    /* what amtool check-config refuses: an email receiver with no SMTP
     * smarthost (the fuzz seed routes.yml), no from, a Slack one with no URL */
    CU_ASSERT_PTR_NULL(mon_am_load_string("route: {receiver: a}\nreceivers:\n  - name: a\n"
                                          "    email_configs: [{to: x@y}]\n", "am.yml", &err));
    CU_ASSERT_STRING_EQUAL(err.msg, "am.yml:4:21: no global SMTP smarthost set");
    CU_ASSERT_PTR_NULL(mon_am_load_string("global: {smtp_smarthost: 'h:25'}\nroute: {receiver: a}\n"
                                          "receivers:\n  - name: a\n    email_configs: [{to: x@y}]\n",
                                          "am.yml", &err));
    CU_ASSERT_STRING_EQUAL(err.msg, "am.yml:5:21: no global SMTP from set");
    CU_ASSERT_PTR_NULL(mon_am_load_string("route: {receiver: a}\nreceivers:\n  - name: a\n"
                                          "    slack_configs: [{channel: '#x'}]\n", "am.yml", &err));
    CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, "no global Slack API URL set"));
    mon_am *ok = mon_am_load_string("global: {smtp_smarthost: 'h:25', smtp_from: a@b, slack_api_url: 'http://s'}\n"
                                    "route: {receiver: a}\nreceivers:\n  - name: a\n"
                                    "    email_configs: [{to: x@y}]\n    slack_configs: [{channel: '#x'}]\n",
                                    "am.yml", &err);
    CU_ASSERT_PTR_NOT_NULL(ok);
    mon_am_free(ok);
    /* found by fuzzing: the duration overflowed an int64 while it was read */
    CU_ASSERT_PTR_NULL(mon_am_load_string("route:\n  receiver: p\n  repeat_interval: 1111111111111111m\n"
                                          "receivers: [{name: p}]\n", "am.yml", &err));
    CU_ASSERT_STRING_EQUAL(err.msg, "am.yml:3:20: repeat_interval: duration out of range: "
                           "\"1111111111111111m\" (at most about 292 years)");
    /* found by fuzzing: glibc's regcomp took gigabytes on a nested repetition */
    CU_ASSERT_PTR_NULL(mon_am_load_string("route:\n  receiver: p\n  routes:\n"
                                          "    - match_re: {pool: 'gp++u|cpu'}\n      receiver: p\n"
                                          "receivers: [{name: p}]\n", "am.yml", &err));
    CU_ASSERT_STRING_EQUAL(err.msg, "am.yml:4:24: invalid regular expression \"gp++u|cpu\": "
                           "invalid nested repetition operator: `++`");
}

/* Rules -> Alertmanager through mon_am_sync, as the engine drives them. */
static void test_rules_to_am(void)
{
    mon_rules *r = load("groups:\n"
                        "  - name: g\n"
                        "    rules:\n"
                        "      - alert: Down\n"
                        "        expr: up == 0\n"
                        "        for: 1m\n"
                        "        labels: {severity: page}\n");
    mon_am *am = am_load("route: {receiver: p, group_wait: 10s, group_by: [alertname]}\n"
                         "receivers: [{name: p, pagerduty_configs: [{routing_key: k}]}]\n");
    mon_store *s = mon_store_create(INFINITY);
    double ups[] = { 1, 0, 0, 0, 1, 1, 1 };
    for (int i = 0; i < 7; i++) {
        double t = i * 60.0;
        mon_store_add(s, "up{node=\"a\"}", t, ups[i]);
        mon_rules_eval(r, s, t);
        mon_am_sync(am, r, t);
        mon_am_advance(am, t);
        /* the engine wakes for flushes between evaluations too */
        while (mon_am_next_flush(am) < t + 60)
            mon_am_advance(am, mon_am_next_flush(am));
    }
    size_t n;
    const mon_notification *nt = mon_am_notifications(am, &n);
    /* pending 60, firing 120, flush 130; resolved 240, next tick 130+300 */
    CU_ASSERT_EQUAL_FATAL(n, 1);
    CU_ASSERT_EQUAL(nt[0].t_s, 130);
    mon_am_advance(am, 430);
    nt = mon_am_notifications(am, &n);
    CU_ASSERT_EQUAL_FATAL(n, 2);
    CU_ASSERT_EQUAL(nt[1].t_s, 430);
    CU_ASSERT_EQUAL(nt[1].n_firing, 0);
    CU_ASSERT_EQUAL(nt[1].alerts[0].ends_at, 240);
    mon_store_destroy(s);
    mon_rules_free(r);
    mon_am_free(am);
}

/* A subquery without a step steps at the global evaluation_interval, as
 * Prometheus's rule engine does: over [t - 2m, t], 5 points at 30 s, 3 at
 * the default 1m. */
static void test_subquery_default_step(void)
{
    const char *text = "groups:\n  - name: g\n    rules:\n"
                       "      - record: n\n        expr: count_over_time(x[2m:])\n";
    mon_error err;
    double want[2] = { 5, 3 };
    double iv[2] = { 30, 60 };
    for (int k = 0; k < 2; k++) {
        mon_store *s = mon_store_create(INFINITY);
        for (int t = 0; t <= 240; t += 15)
            mon_store_add(s, "x", t, 1);
        mon_rules *r = mon_rules_load_string(text, "rules.yml", iv[k], &err);
        CU_ASSERT_PTR_NOT_NULL_FATAL(r);
        mon_rules_eval(r, s, 240);
        mon_value v;
        CU_ASSERT_EQUAL(mon_query("n", s, 240, &v, &err), 0);
        CU_ASSERT_EQUAL(v.n, 1);
        if (v.n == 1)
            CU_ASSERT_EQUAL(v.v[0].v, want[k]);
        mon_value_free(&v);
        mon_rules_free(r);
        mon_store_destroy(s);
    }
}

int main(void)
{
    if (CU_initialize_registry() != CUE_SUCCESS)
        return 1;
    CU_pSuite s = CU_add_suite("rules", NULL, NULL);
    CU_add_test(s, "for: pending -> firing -> resolved", test_for);
    CU_add_test(s, "keep_firing_for", test_keep_firing_for);
    CU_add_test(s, "pending that clears, then again", test_pending_clears_and_refires);
    CU_add_test(s, "templates", test_templates);
    CU_add_test(s, "subquery default step", test_subquery_default_step);
    CU_add_test(s, "recording rules and staleness", test_recording);
    CU_add_test(s, "load errors with file:line:col", test_load_errors);
    CU_add_test(s, "SLO burn-rate rules", test_slo_rules);
    CU_add_test(s, "latency SLO burn-rate rules", test_slo_latency_rules);
    CU_add_test(s, "Alertmanager group_wait/interval/repeat", test_am_timing);
    CU_add_test(s, "Alertmanager routing and inhibition", test_am_routing_and_inhibition);
    CU_add_test(s, "rules to Alertmanager", test_rules_to_am);
    CU_basic_set_mode(CU_BRM_NORMAL);
    CU_basic_run_tests();
    unsigned fails = CU_get_number_of_failures();
    CU_cleanup_registry();
    return fails != 0;
}
