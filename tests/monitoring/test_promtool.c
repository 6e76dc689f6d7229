/*
 * test_promtool.c - interoperability with the real Prometheus tools.
 *
 * Each case loads series into a store, evaluates a rule file with fleetsim
 * at every evaluation interval, and writes a `promtool test rules` file
 * stating which alerts fleetsim found firing at each evaluation (labels and
 * expanded annotations, so values printed by {{ $value }} must match to the
 * last digit) plus promql_expr_test entries with fleetsim's values. Debian's
 * promtool (2.42) must accept every file: that is the check that fleetsim's
 * alert semantics are Prometheus's. A file with one expectation changed
 * must fail, so the harness cannot pass vacuously. The OpenMetrics export,
 * with families typed by mon_store_describe (counter, histogram, gauge)
 * and the rest unknown, must load with `promtool tsdb create-blocks-from
 * openmetrics`.
 *
 * Skipped, with a message, only when promtool is not installed.
 */
#include "../testutil.h"
#include "mon.h"

#include <CUnit/Basic.h>
#include <CUnit/CUnit.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

static char *tmp;
static int have_promtool;

typedef struct {
    const char *series;
    const char *values;   /* one token per interval: number, "_" or "stale" */
} input;

typedef struct {
    const char *name;
    double interval_s;
    int steps;            /* evaluations at 0, iv, ..., steps*iv */
    const char *rules;
    input in[8];
    mon_promtool_expr exprs[6];
} tcase;

static const tcase cases[] = {
    { "for: pending then firing then resolved", 60, 8,
      "groups:\n- name: g\n  rules:\n  - alert: NodeDown\n    expr: up == 0\n    for: 2m\n"
      "    labels: {severity: critical}\n    annotations: {summary: '{{ $labels.node }} down'}\n",
      { { "up{node=\"a\",pool=\"p\"}", "1 0 0 0 0 1 1 0 0" },
        { "up{node=\"b\",pool=\"p\"}", "1 1 0 0 1 1 1 1 1" } },
      { { NULL, 0 } } },
    { "keep_firing_for", 60, 7,
      "groups:\n- name: g\n  rules:\n  - alert: Flap\n    expr: x > 5\n    keep_firing_for: 3m\n",
      { { "x", "0 9 0 0 9 0 0 0" } },
      { { NULL, 0 } } },
    { "rate over counter resets", 15, 20,
      "groups:\n- name: g\n  interval: 15s\n  rules:\n  - alert: Busy\n    expr: rate(c[1m]) > 0.5\n"
      "    annotations: {value: '{{ $value }}'}\n",
      { { "c{pool=\"p\"}", "0 10 25 3 20 40 41 5 18 30 30 30 31 2 9 40 80 120 1 3 4" } },
      { { "rate(c[1m])", 60 }, { "increase(c[2m])", 120 }, { "irate(c[1m])", 195 },
        { "rate(c[45s])", 300 }, { NULL, 0 } } },
    { "histogram_quantile", 60, 6,
      "groups:\n- name: g\n  rules:\n  - alert: SlowP90\n"
      "    expr: histogram_quantile(0.9, sum by (le, pool) (rate(h_bucket[2m]))) > 0.3\n"
      "    annotations: {p90: '{{ $value }}', human: '{{ $value | humanize }}s'}\n",
      { { "h_bucket{pool=\"p\",le=\"0.1\"}", "0 10 20 25 30 35 40" },
        { "h_bucket{pool=\"p\",le=\"0.5\"}", "0 30 60 70 80 100 120" },
        { "h_bucket{pool=\"p\",le=\"1\"}", "0 45 90 130 170 210 250" },
        { "h_bucket{pool=\"p\",le=\"+Inf\"}", "0 50 100 150 200 250 300" } },
      { { "histogram_quantile(0.5, rate(h_bucket[2m]))", 240 },
        { "histogram_quantile(0.99, h_bucket)", 120 }, { NULL, 0 } } },
    { "aggregation by and without", 60, 4,
      "groups:\n- name: g\n  rules:\n  - alert: PoolHot\n    expr: sum by (pool) (cpu) > 1\n"
      "    annotations: {total: '{{ $value }}'}\n"
      "  - alert: NodeHot\n    expr: max without (core) (cpu) >= 0.75\n",
      { { "cpu{pool=\"a\",node=\"1\",core=\"0\"}", "0.25 0.5 0.75 0.5 0.25" },
        { "cpu{pool=\"a\",node=\"1\",core=\"1\"}", "0.25 0.5 0.5 0.75 0.25" },
        { "cpu{pool=\"b\",node=\"2\",core=\"0\"}", "0.5 0.5 0.5 1 1" } },
      { { "avg by (pool) (cpu)", 120 }, { "count without (core) (cpu)", 60 },
        { "min(cpu)", 180 }, { NULL, 0 } } },
    { "absent", 60, 6,
      "groups:\n- name: g\n  rules:\n  - alert: NoTarget\n    expr: absent(up{job=\"api\"})\n"
      "    for: 1m\n    labels: {severity: disaster}\n",
      { { "up{job=\"api\"}", "1 1 _ _ _ _ 1" }, { "up{job=\"db\"}", "1 1 1 1 1 1 1" } },
      { { "absent(up{job=\"api\",x=~\"y\"})", 300 }, { "absent(up)", 60 }, { NULL, 0 } } },
    { "comparison with bool", 60, 4,
      "groups:\n- name: g\n  rules:\n  - alert: TwoHot\n    expr: sum(cpu > bool 0.5) >= 2\n"
      "    annotations: {n: '{{ $value }} hot'}\n",
      { { "cpu{node=\"1\"}", "0.6 0.6 0.2 0.9 0.9" }, { "cpu{node=\"2\"}", "0.1 0.7 0.7 0.8 0.3" } },
      { { "cpu > bool 0.5", 60 }, { "0.5 < cpu", 180 }, { "cpu == 0.7", 120 }, { NULL, 0 } } },
    { "templated annotations and labels", 60, 3,
      "groups:\n- name: g\n  rules:\n  - alert: Mem\n    expr: mem_bytes > 1e9\n"
      "    labels: {severity: warning, where: '{{ $labels.pool }}-{{ $labels.node }}'}\n"
      "    annotations:\n      summary: '{{ $labels.node }} uses {{ $value | humanize }}B'\n"
      "      ratio: '{{ $value | humanizePercentage }}'\n      raw: '{{ $value }}'\n"
      "      missing: '[{{ $labels.nope }}]'\n",
      { { "mem_bytes{pool=\"p\",node=\"n1\"}", "2e9 3.5e9 1234567890 0" },
        { "mem_bytes{pool=\"p\",node=\"n2\"}", "0.5 1e12 123456789012 7e9" } },
      { { NULL, 0 } } },
    { "vector matching with group_left", 60, 3,
      "groups:\n- name: g\n  rules:\n  - alert: Expensive\n"
      "    expr: cpu * on (pool) group_left (tier) price > 1\n    annotations: {cost: '{{ $value }}'}\n",
      { { "cpu{pool=\"a\",node=\"1\"}", "0.5 1 2 3" }, { "cpu{pool=\"a\",node=\"2\"}", "0.25 0.5 1 0" },
        { "cpu{pool=\"b\",node=\"3\"}", "1 1 1 1" },
        { "price{pool=\"a\",tier=\"gold\"}", "2 2 2 2" }, { "price{pool=\"b\",tier=\"std\"}", "0.5 0.5 0.5 0.5" } },
      { { "cpu / ignoring (node) group_left price", 60 }, { "sum by (pool) (cpu) * on (pool) price", 120 },
        { NULL, 0 } } },
    { "delta, irate, *_over_time, offset", 60, 6,
      "groups:\n- name: g\n  rules:\n  - alert: Rising\n    expr: g - g offset 2m > 3\n"
      "    annotations: {by: '{{ $value }}'}\n",
      { { "g{x=\"1\"}", "1 2 4 8 3 9 27" } },
      { { "delta(g[3m])", 300 }, { "avg_over_time(g[3m])", 240 }, { "max_over_time(g[2m])", 180 },
        { "min_over_time(g[5m] offset 1m)", 360 }, { "sum_over_time(g[10m])", 360 }, { NULL, 0 } } },
    { "staleness and gaps", 60, 10,
      "groups:\n- name: g\n  rules:\n  - alert: Gone\n    expr: absent(g)\n"
      "  - alert: Present\n    expr: g > 0\n",
      { { "g", "1 1 stale _ _ 1 _ _ _ _ _" } },
      { { "g", 240 }, { "count_over_time(g[5m])", 480 }, { NULL, 0 } } },
    { "recording rule feeding an alert", 60, 5,
      "groups:\n- name: g\n  rules:\n  - record: pool:errors:ratio\n"
      "    expr: sum by (pool) (rate(req{code=~\"5..\"}[2m])) / sum by (pool) (rate(req[2m]))\n"
      "  - alert: Errors\n    expr: pool:errors:ratio > 0.05\n    for: 1m\n"
      "    annotations: {ratio: '{{ $value | humanizePercentage }}', raw: '{{ $value }}'}\n",
      { { "req{pool=\"p\",code=\"200\"}", "0 100 200 300 400 500" },
        { "req{pool=\"p\",code=\"503\"}", "0 1 2 20 40 41" } },
      { { NULL, 0 } } },
    { "set operators", 60, 3,
      "groups:\n- name: g\n  rules:\n  - alert: HotAndUp\n    expr: cpu > 0.5 and on (node) up == 1\n"
      "  - alert: HotUnlessDrained\n    expr: cpu > 0.5 unless drained\n",
      { { "cpu{node=\"1\"}", "0.9 0.9 0.9 0.9" }, { "cpu{node=\"2\"}", "0.9 0.1 0.9 0.9" },
        { "up{node=\"1\"}", "1 0 1 1" }, { "up{node=\"2\"}", "1 1 1 1" }, { "drained{node=\"2\"}", "_ _ 1 1" } },
      { { "cpu or up", 60 }, { NULL, 0 } } },
    /* float summation order within a series: the incremental mean and
     * Kahan sums of functions.go; exact comparison catches another order.
     * (Across series Prometheus sums in series-creation order, which
     * promtool does not fix, so order-sensitive sums across series cannot
     * be compared exactly: max() keeps this alert order-free.) */
    { "floating-point order of *_over_time", 60, 5,
      "groups:\n- name: g\n  rules:\n  - alert: Avg\n    expr: max(avg_over_time(f[3m])) > 0\n"
      "    annotations: {v: '{{ $value }}'}\n",
      { { "f{i=\"1\"}", "0.1 0.7 1e16 0.3 0.1 0.2" }, { "f{i=\"2\"}", "0.2 0.1 1 0.3 0.7 0.3" },
        { "f{i=\"3\"}", "0.4 0.3 -1e16 0.3 1.1 0.1" } },
      { { "avg_over_time(f[5m])", 300 }, { "sum_over_time(f[5m])", 300 },
        { "avg_over_time(f[2m])", 180 }, { "sum_over_time(f[3m])", 240 }, { NULL, 0 } } },
    /* the rest of PromQL: range functions, aggregations, math, subqueries,
     * @ and negative offsets, against promtool's own values */
    { "range functions", 60, 6,
      "groups:\n- name: g\n  rules:\n  - alert: Trend\n    expr: predict_linear(g[5m], 3600) > 100\n"
      "    annotations: {v: '{{ $value }}'}\n",
      { { "g{x=\"1\"}", "1 2.5 4 8 3 9 27" }, { "g{x=\"2\"}", "5 5 5 4 4 3 3" } },
      { { "predict_linear(g[5m], 3600)", 360 }, { "deriv(g[4m])", 300 },
        { "quantile_over_time(0.9, g[5m])", 360 }, { "stddev_over_time(g[5m])", 360 },
        { "holt_winters(g[6m], 0.3, 0.6)", 360 }, { NULL, 0 } } },
    { "more range functions", 60, 6,
      "groups:\n- name: g\n  rules:\n  - alert: Flappy\n    expr: changes(g[5m]) > 3\n",
      { { "g{x=\"1\"}", "1 2.5 4 8 3 9 27" }, { "g{x=\"2\"}", "5 5 5 4 4 3 3" } },
      { { "changes(g[5m])", 360 }, { "resets(g[6m])", 360 }, { "stdvar_over_time(g[4m])", 300 },
        { "last_over_time(g[2m])", 240 }, { "idelta(g[3m])", 300 }, { NULL, 0 } } },
    { "aggregations", 60, 2,
      /* (Welford across series depends on their order, which promtool
       * does not fix: pairs of dyadic values keep it exact either way) */
      "groups:\n- name: g\n  rules:\n  - alert: Spread\n    expr: stddev by (pool) (cpu) > 0.3\n"
      "    annotations: {sd: '{{ $value }}'}\n",
      { { "cpu{node=\"1\",pool=\"a\"}", "0.125 0.875 0.375" }, { "cpu{node=\"2\",pool=\"a\"}", "0.75 0.25 0.4375" },
        { "cpu{node=\"3\",pool=\"b\"}", "0.5 0.5 0.75" }, { "cpu{node=\"4\",pool=\"b\"}", "1 0.0625 0.125" } },
      { { "topk(2, cpu)", 60 }, { "bottomk by (pool) (1, cpu)", 120 }, { "quantile by (pool) (0.3, cpu)", 60 },
        { "stdvar by (pool) (cpu)", 120 }, { "count_values(\"v\", cpu)", 120 }, { NULL, 0 } } },
    { "math and labels", 60, 2,
      /* exp, ln, sin, ... and ^ with a fractional exponent go through
       * Go's own math library, whose last digit differs from glibc's
       * (monitoring/README.md): not compared here */
      "groups:\n- name: g\n  rules:\n  - alert: Odd\n    expr: cpu ^ 3 > 0.5\n"
      "    annotations: {p: '{{ $value }}', t: '{{ printf \"%.3f\" $value }}'}\n",
      { { "cpu{node=\"1\"}", "0.1 0.9 0.35" }, { "cpu{node=\"2\"}", "0.7 2.2 3.3" } },
      { { "cpu ^ 3", 60 }, { "cpu ^ -7 + sqrt(cpu) + abs(-cpu)", 120 },
        { "(cpu atan2 0) + sgn(cpu - 1) + floor(cpu * 3) + ceil(cpu * 3)", 60 },
        { "label_replace(cpu, \"n\", \"node-$1\", \"node\", \"(\\\\d)\")", 0 },
        { "round(cpu * 7, 0.5) + clamp(cpu, 0.2, 0.8) + cpu % 0.3", 120 }, { NULL, 0 } } },
    { "subqueries, @, negative offset", 60, 6,
      "groups:\n- name: g\n  rules:\n  - alert: Burst\n    expr: max_over_time(rate(c[2m])[4m:1m]) > 0.5\n",
      { { "c{x=\"1\"}", "0 10 25 3 20 40 41" } },
      { { "max_over_time(rate(c[2m])[4m:1m])", 360 }, { "avg_over_time(c[3m:30s])", 300 },
        { "c @ 120", 360 }, { "rate(c[2m] @ 180)", 360 }, { "c offset -1m", 120 },
        { "timestamp(c) - time()", 200 } } },
    /* text/template and Prometheus's functions, as Go expands them */
    { "templates", 60, 2,
      "groups:\n- name: g\n  rules:\n  - alert: T\n    expr: lat > 0\n"
      "    labels: {sev: '{{ if gt $value 100.0 }}page{{ else if gt $value 10.0 }}ticket{{ else }}info{{ end }}'}\n"
      "    annotations:\n"
      "      all: '{{ range $k, $v := $labels }}{{ $k }}={{ $v }},{{ end }}'\n"
      "      dur: '{{ $value | humanizeDuration }} / {{ humanize1024 $value }} / {{ humanizeTimestamp $value }}'\n"
      "      fmt: '{{ printf \"%5.2f|%-6s|%d|%v|%q|%x\" $value $labels.pool 42 $value $labels.node 255 }}'\n"
      "      bad: '{{ printf \"%d %s\" $value }}'\n"
      "      with: '{{ with $labels.pool }}{{ . | toUpper }}{{ else }}none{{ end }}{{ with $labels.nope }}x{{ end }}'\n"
      "      misc: '{{ title \"hello world\" }} {{ len $labels }} {{ index $labels \"node\" }} {{ if and (eq $labels.pool \"p\") (ne $labels.node \"z\") }}y{{ end }}'\n"
      "      vars: '{{ $x := 1 }}{{ if true }}{{ $x = 2 }}{{ end }}{{ $x }} {{ print 1 2 \"a\" 3 }} {{ \"a:1\" | stripPort }}'\n"
      "      re: '{{ reReplaceAll \"a*\" \"X\" \"baaac\" }} {{ reReplaceAll \"(?P<n>[0-9]+)\" \"<${n}>\" $labels.node }} {{ reReplaceAll \"\" \"-\" \"\xc3\xa9" "\" }} {{ if match \"^foo\" \"bar\\nfoo\" }}y{{ else }}n{{ end }}'\n",
      { { "lat{pool=\"p\",node=\"n1\"}", "0.0125 93784 5000" },
        { "lat{pool=\"p\",node=\"n2\"}", "45.5 1536 1435065584.128" } },
      { { NULL, 0 } } },
    /* RE2 as Prometheus anchors it: \\d, \\D, classes, (?i), a UTF-8 dot */
    { "regular expressions", 60, 1,
      "groups:\n- name: g\n  rules:\n  - alert: FiveXX\n    expr: sum by (code) (req{code=~\"5\\\\d\\\\d\"}) > 0\n",
      { { "req{code=\"503\",who=\"\xc3\xa9\"}", "1 2" }, { "req{code=\"5dd\",who=\"ab\"}", "1 2" },
        { "req{code=\"200\",who=\"AB\"}", "1 2" }, { "req{code=\"404\",who=\"x1\"}", "1 2" } },
      { { "req{code=~\"[\\\\d]0\\\\D|\\\\x35\\\\d{2}\"}", 60 }, { "req{who=~\"(?i)ab\"}", 60 },
        { "req{who=~\".\"}", 60 }, { "req{who=~\"\\\\p{L}+\", who!~\"[a-z]+\"}", 60 },
        { "req{who=~\"(?:a|x)(b|1)\"}", 60 }, { NULL, 0 } } },
};

#define N_CASES ((int)(sizeof cases / sizeof cases[0]))

/* Loads one case into a store: values[k] at k*interval. */
static mon_store *load_inputs(const tcase *c)
{
    mon_store *s = mon_store_create(INFINITY);
    for (int i = 0; i < 8 && c->in[i].series; i++) {
        char buf[512];
        snprintf(buf, sizeof buf, "%s", c->in[i].values);
        int k = 0;
        for (char *tok = strtok(buf, " "); tok; tok = strtok(NULL, " "), k++) {
            if (!strcmp(tok, "_"))
                continue;
            double v = !strcmp(tok, "stale") ? mon_stale_nan() : strtod(tok, NULL);
            CU_ASSERT_EQUAL(mon_store_add(s, c->in[i].series, k * c->interval_s, v), 0);
        }
    }
    return s;
}

/* Writes rules + test file for case c into dir; returns 0 if written. */
static int write_case(const tcase *c, const char *dir, const char *test_file)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/rules.yml", dir);
    tu_write(path, c->rules);
    mon_error err = { "" };
    mon_rules *r = mon_rules_load(path, c->interval_s, &err);
    if (!r) {
        fprintf(stderr, "\n  %s: %s\n", c->name, err.msg);
        CU_FAIL("rules do not load");
        return -1;
    }
    mon_rules_keep_firing_log(r, 1);
    mon_store *s = load_inputs(c);
    for (int k = 0; k <= c->steps; k++)
        CU_ASSERT(mon_rules_eval(r, s, k * c->interval_s) >= 0);
    CU_ASSERT_STRING_EQUAL(mon_rules_last_error(r), "");
    int nx = 0;
    while (nx < 6 && c->exprs[nx].expr)
        nx++;
    FILE *f = fopen(test_file, "w");
    int rc = mon_promtool_write(f, s, r, "rules.yml", c->interval_s, c->exprs, nx, &err);
    fclose(f);
    if (rc)
        fprintf(stderr, "\n  %s: %s\n", c->name, err.msg);
    CU_ASSERT_EQUAL(rc, 0);
    mon_store_destroy(s);
    mon_rules_free(r);
    return rc;
}

static void test_cases(void)
{
    if (!have_promtool)
        return;
    for (int i = 0; i < N_CASES; i++) {
        char dir[4096], test_file[4200], log[4200];
        snprintf(dir, sizeof dir, "%s/case%02d", tmp, i);
        tu_sh(NULL, "mkdir -p '%s'", dir);
        snprintf(test_file, sizeof test_file, "%s/test.yml", dir);
        snprintf(log, sizeof log, "%s/promtool.log", dir);
        if (write_case(&cases[i], dir, test_file))
            continue;
        int st = tu_sh(log, "cd '%s' && promtool test rules test.yml", dir);
        if (st != 0) {
            char *out = tu_read(log);
            fprintf(stderr, "\n  case \"%s\": promtool test rules failed (%s):\n%s\n", cases[i].name,
                    test_file, out ? out : "");
            free(out);
        }
        CU_ASSERT_EQUAL(st, 0);
    }
}

/* A wrong expectation must make promtool fail. */
static void test_harness_detects_mismatch(void)
{
    if (!have_promtool)
        return;
    char dir[4096], test_file[4200], log[4200];
    snprintf(dir, sizeof dir, "%s/mismatch", tmp);
    tu_sh(NULL, "mkdir -p '%s'", dir);
    snprintf(test_file, sizeof test_file, "%s/test.yml", dir);
    snprintf(log, sizeof log, "%s/promtool.log", dir);
    CU_ASSERT_EQUAL_FATAL(write_case(&cases[0], dir, test_file), 0);
    /* claim node a is down with another summary */
    CU_ASSERT_EQUAL(tu_sh(NULL, "sed -i 's/summary: \"a down\"/summary: \"b down\"/' '%s'", test_file), 0);
    CU_ASSERT_NOT_EQUAL(tu_sh(log, "cd '%s' && promtool test rules test.yml", dir), 0);
}

static void test_seed_and_slo_rules_check(void)
{
    if (!have_promtool)
        return;
    char log[4200], path[4200];
    snprintf(log, sizeof log, "%s/check.log", tmp);
    CU_ASSERT_EQUAL(tu_sh(log, "promtool check rules '%s/scenarios/prometheus/seed-alerts.yml'", tu_src()), 0);
    mon_slo slo = { .name = "availability", .objective = 0.999,
                    .errors = "fleetsim_requests_total{code=~\"5..\"}",
                    .total = "fleetsim_requests_total", .by = "pool" };
    snprintf(path, sizeof path, "%s/slo.yml", tmp);
    FILE *f = fopen(path, "w");
    mon_error err;
    CU_ASSERT_EQUAL(mon_slo_write_rules(f, &slo, 1, &err), 0);
    fclose(f);
    CU_ASSERT_EQUAL(tu_sh(log, "promtool check rules '%s'", path), 0);
    /* both SLOs in one file: their alerts share a name and must differ in
     * labels, or promtool's lint reports duplicate rules */
    mon_slo both[2] = { slo,
                        { .name = "latency", .objective = 0.99,
                          .good = "fleetsim_request_duration_seconds_bucket{le=\"0.25\"}",
                          .total = "fleetsim_request_duration_seconds_count", .by = "pool" } };
    snprintf(path, sizeof path, "%s/slo-both.yml", tmp);
    f = fopen(path, "w");
    CU_ASSERT_EQUAL(mon_slo_write_rules(f, both, 2, &err), 0);
    fclose(f);
    CU_ASSERT_EQUAL(tu_sh(log, "promtool check rules '%s'", path), 0);
    snprintf(path, sizeof path, "%s/slo.yml", tmp);

    /* the generated rules, run by fleetsim on a burst of errors, checked by
     * promtool: 5% errors for 10 minutes against 99.9% */
    snprintf(path, sizeof path, "%s/slo/rules.yml", tmp);
    tu_sh(NULL, "mkdir -p '%s/slo' && cp '%s/slo.yml' '%s'", tmp, tmp, path);
    mon_rules *r = mon_rules_load(path, 60, &err);
    CU_ASSERT_PTR_NOT_NULL_FATAL(r);
    mon_rules_keep_firing_log(r, 1);
    mon_store *s = mon_store_create(INFINITY);
    double ok = 0, bad = 0;
    for (int k = 0; k <= 30; k++) {
        double t = k * 60.0;
        mon_store_add(s, "fleetsim_requests_total{code=\"200\",pool=\"gpu\"}", t, ok);
        mon_store_add(s, "fleetsim_requests_total{code=\"502\",pool=\"gpu\"}", t, bad);
        int burst = k >= 5 && k < 15;
        ok += burst ? 570 : 600;
        bad += burst ? 30 : 0;
        mon_rules_eval(r, s, t);
    }
    size_t n;
    const mon_alert_record *rec = mon_rules_alerts(r, &n);
    CU_ASSERT(n >= 2);
    snprintf(path, sizeof path, "%s/slo/test.yml", tmp);
    f = fopen(path, "w");
    CU_ASSERT_EQUAL(mon_promtool_write(f, s, r, "rules.yml", 60, NULL, 0, &err), 0);
    fclose(f);
    CU_ASSERT_EQUAL(tu_sh(log, "cd '%s/slo' && promtool test rules test.yml", tmp), 0);
    (void)rec;
    mon_store_destroy(s);
    mon_rules_free(r);
}

static void test_openmetrics_blocks(void)
{
    mon_store *s = mon_store_create(INFINITY);
    for (int k = 0; k < 240; k++) {
        double t = k * 15.0;
        mon_store_add(s, "node_cpu_utilisation{pool=\"gpu\",node=\"gpu/0\"}", t, 0.5 + 0.001 * k);
        mon_store_add(s, "up{pool=\"gpu\",node=\"gpu/0\"}", t, k < 100 ? 1 : 0);
        mon_store_add(s, "fleetsim_requests_total{code=\"200\",pool=\"gpu\",class=\"api\"}", t, 100.0 * k);
        mon_store_add(s, "fleetsim_request_duration_seconds_bucket{pool=\"gpu\",class=\"api\",le=\"+Inf\"}", t, 100.0 * k);
        mon_store_add(s, "fleetsim_request_duration_seconds_bucket{pool=\"gpu\",class=\"api\",le=\"0.5\"}", t, 90.0 * k);
        mon_store_add(s, "label_escape{v=\"a\\\"b\\\\c\"}", t, k % 2 ? NAN : 1.0 / 3);
    }
    mon_store_add(s, "up{pool=\"gpu\",node=\"gpu/1\"}", 0, 1);
    mon_store_add(s, "up{pool=\"gpu\",node=\"gpu/1\"}", 15, mon_stale_nan());
    /* typed families: a counter's samples x_total, a histogram's x_bucket */
    mon_store_describe(s, "fleetsim_requests", MON_METRIC_COUNTER, "old text");
    mon_store_describe(s, "fleetsim_requests", MON_METRIC_COUNTER, "Finished requests.");
    mon_store_describe(s, "fleetsim_request_duration_seconds", MON_METRIC_HISTOGRAM,
                       "Latency \\ \"quoted\"\nsecond line");
    mon_store_describe(s, "node_cpu_utilisation", MON_METRIC_GAUGE, NULL);
    char path[4200], dir[4200], log[4200];
    snprintf(path, sizeof path, "%s/metrics.om", tmp);
    snprintf(dir, sizeof dir, "%s/tsdb", tmp);
    snprintf(log, sizeof log, "%s/tsdb.log", tmp);
    FILE *f = fopen(path, "w");
    CU_ASSERT_EQUAL(mon_write_openmetrics(s, f, 1700000000), 0);
    fclose(f);
    mon_store_destroy(s);
    char *text = tu_read(path);
    CU_ASSERT_PTR_NOT_NULL_FATAL(text);
    CU_ASSERT_PTR_NOT_NULL(strstr(text, "up{node=\"gpu/0\",pool=\"gpu\"} 1 1700000000.000\n"));
    CU_ASSERT_PTR_NOT_NULL(strstr(text, "label_escape{v=\"a\\\"b\\\\c\"} NaN 1700000015.000\n"));
    CU_ASSERT_PTR_NOT_NULL(strstr(text, "# EOF\n"));
    CU_ASSERT_PTR_NOT_NULL(strstr(text, "\n# HELP fleetsim_requests Finished requests.\n"
                                        "# TYPE fleetsim_requests counter\n"
                                        "fleetsim_requests_total{"));
    CU_ASSERT_PTR_NOT_NULL(strstr(text, "# HELP fleetsim_request_duration_seconds Latency \\\\ "
                                        "\\\"quoted\\\"\\nsecond line\n"
                                        "# TYPE fleetsim_request_duration_seconds histogram\n"
                                        "fleetsim_request_duration_seconds_bucket{"));
    CU_ASSERT_PTR_NOT_NULL(strstr(text, "# TYPE node_cpu_utilisation gauge\nnode_cpu_utilisation{"));
    CU_ASSERT_PTR_NULL(strstr(text, "# HELP node_cpu_utilisation"));
    CU_ASSERT_PTR_NOT_NULL(strstr(text, "# TYPE up unknown\nup{"));
    CU_ASSERT_PTR_NOT_NULL(strstr(text, "# TYPE label_escape unknown\n"));
    free(text);
    if (!have_promtool)
        return;
    int st = tu_sh(log, "promtool tsdb create-blocks-from openmetrics '%s' '%s'", path, dir);
    if (st) {
        char *out = tu_read(log);
        fprintf(stderr, "\n%s\n", out ? out : "");
        free(out);
    }
    CU_ASSERT_EQUAL(st, 0);
}

int main(void)
{
    have_promtool = tu_sh("/dev/null", "promtool --version") == 0;
    if (!have_promtool)
        printf("test_promtool: SKIPPED the promtool checks: promtool not found "
               "(apt-get install prometheus, or run scripts/install-deps.sh)\n");
    tmp = tu_tmpdir();
    if (CU_initialize_registry() != CUE_SUCCESS || !tmp)
        return 1;
    CU_pSuite s = CU_add_suite("promtool", NULL, NULL);
    CU_add_test(s, "promtool test rules on fleetsim's alert timelines", test_cases);
    CU_add_test(s, "a wrong expectation fails", test_harness_detects_mismatch);
    CU_add_test(s, "seed and SLO rules: check and test", test_seed_and_slo_rules_check);
    CU_add_test(s, "OpenMetrics export loads into a TSDB", test_openmetrics_blocks);
    CU_basic_set_mode(CU_BRM_NORMAL);
    CU_basic_run_tests();
    unsigned fails = CU_get_number_of_failures();
    CU_cleanup_registry();
    if (!fails)
        tu_rm_rf(tmp);
    else
        fprintf(stderr, "test_promtool: files kept in %s\n", tmp);
    free(tmp);
    return fails != 0;
}
