/*
 * test_promql.c - the store and the PromQL subset against values worked out
 * by hand from Prometheus 2.42's functions.go, quantile.go and engine.go:
 * rate/increase/delta extrapolation with counter resets, lookback and
 * staleness, histogram_quantile interpolation, aggregation, vector
 * matching, and parse errors with their columns.
 */
#include "mon.h"

#include <CUnit/Basic.h>
#include <CUnit/CUnit.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define EPS 1e-12

static mon_store *st;

static void add(const char *series, double t, double v)
{
    CU_ASSERT_EQUAL_FATAL(mon_store_add(st, series, t, v), 0);
}

/* Value of the sample whose labels print as `want` ("{a=\"x\"}"), or NAN;
 * *n gets the vector length. */
static double q(const char *expr, double t, const char *want, int *n)
{
    mon_value v;
    mon_error err = { "" };
    if (mon_query(expr, st, t, &v, &err)) {
        fprintf(stderr, "\n  %s: %s\n", expr, err.msg);
        CU_FAIL("query failed");
        return NAN;
    }
    double r = NAN;
    if (v.type == MON_VAL_SCALAR) {
        r = v.scalar;
        if (n)
            *n = 1;
    } else {
        if (n)
            *n = v.n;
        for (int i = 0; i < v.n; i++) {
            char buf[512];
            mon_labels_str(&v.v[i].labels, buf, sizeof buf);
            if (!want || !strcmp(buf, want))
                r = v.v[i].v;
        }
    }
    mon_value_free(&v);
    return r;
}

static const char *qerr(const char *expr, double t)
{
    static mon_error err;
    mon_value v;
    if (mon_query(expr, st, t, &v, &err) == 0) {
        mon_value_free(&v);
        return "";
    }
    return err.msg;
}

static void setup(void)
{
    st = mon_store_create(INFINITY);
}

static void teardown(void)
{
    mon_store_destroy(st);
    st = NULL;
}

/* ---- rate family -------------------------------------------------------- */

static void test_rate_extrapolation(void)
{
    setup();
    /* Samples at 10, 25, 40, 55 s: 5, 20, 35, 50; rate(c[1m]) at 60 s.
     * Range [0, 60]. increase raw 45, sampled 45 s, average gap 15 s
     * (threshold 16.5 s). To start 10 s, but the zero point is 45*(5/45)
     * = 5 s back, so 5 s; to end 5 s. Interval 45+5+5 = 55 s:
     * increase 45*55/45 = 55, rate 55/60. */
    add("c", 10, 5);
    add("c", 25, 20);
    add("c", 40, 35);
    add("c", 55, 50);
    CU_ASSERT_DOUBLE_EQUAL(q("increase(c[1m])", 60, "{}", NULL), 55.0, 1e-9);
    CU_ASSERT_DOUBLE_EQUAL(q("rate(c[1m])", 60, "{}", NULL), 55.0 / 60.0, EPS);
    /* delta does not clamp at zero: to start 10 s < 16.5 s, interval 60:
     * 45*60/45 = 60. */
    CU_ASSERT_DOUBLE_EQUAL(q("delta(c[1m])", 60, "{}", NULL), 60.0, 1e-9);
    /* irate: last two points, (50-35)/15 */
    CU_ASSERT_DOUBLE_EQUAL(q("irate(c[1m])", 60, "{}", NULL), 1.0, EPS);
    teardown();
}

static void test_rate_counter_reset(void)
{
    setup();
    /* 10, 20, 5, 15 at 0, 15, 30, 45; at 60 with [1m]: range [0, 60].
     * raw 15-10 = 5, reset adds 20: 25. To start 0, to end 15 (< 16.5, so
     * extrapolated), zero point 45*(10/25) = 18 s is not shorter than 0.
     * Interval 45+0+15 = 60: increase 25*60/45 = 33.33.., rate /60. */
    add("c", 0, 10);
    add("c", 15, 20);
    add("c", 30, 5);
    add("c", 45, 15);
    CU_ASSERT_DOUBLE_EQUAL(q("increase(c[1m])", 60, "{}", NULL), 25.0 * 60.0 / 45.0, 1e-9);
    CU_ASSERT_DOUBLE_EQUAL(q("rate(c[1m])", 60, "{}", NULL), 25.0 / 45.0, 1e-12);
    /* irate over a reset: the last value (15-5: no reset at the end) */
    CU_ASSERT_DOUBLE_EQUAL(q("irate(c[1m])", 60, "{}", NULL), 10.0 / 15.0, EPS);
    CU_ASSERT_DOUBLE_EQUAL(q("irate(c[1m])", 30, "{}", NULL), 5.0 / 15.0, EPS);
    teardown();
}

static void test_rate_far_from_boundary(void)
{
    setup();
    /* Only two samples, at 30 and 45 s (0 and 15), rate(c[2m]) at 120:
     * to start 30 s, but the zero point is 0 s back: 0; to end 75 s >=
     * 16.5, so half a gap (7.5). Interval 22.5: increase 22.5. */
    add("c", 30, 0);
    add("c", 45, 15);
    CU_ASSERT_DOUBLE_EQUAL(q("increase(c[2m])", 120, "{}", NULL), 22.5, 1e-9);
    CU_ASSERT_DOUBLE_EQUAL(q("rate(c[2m])", 120, "{}", NULL), 22.5 / 120.0, EPS);
    /* one sample in range: no result */
    int n = -1;
    q("rate(c[10s])", 46, NULL, &n);
    CU_ASSERT_EQUAL(n, 0);
    /* the left boundary is included (2.42): [30,45] has both samples */
    CU_ASSERT_DOUBLE_EQUAL(q("count_over_time(c[15s])", 45, "{}", NULL), 2.0, 0);
    teardown();
}

static void test_over_time(void)
{
    setup();
    add("g{a=\"1\"}", 0, 1);
    add("g{a=\"1\"}", 15, 4);
    add("g{a=\"1\"}", 30, 2);
    add("g{a=\"1\"}", 45, 5);
    CU_ASSERT_DOUBLE_EQUAL(q("avg_over_time(g[1m])", 45, "{a=\"1\"}", NULL), 3.0, EPS);
    CU_ASSERT_DOUBLE_EQUAL(q("sum_over_time(g[1m])", 45, "{a=\"1\"}", NULL), 12.0, EPS);
    CU_ASSERT_DOUBLE_EQUAL(q("max_over_time(g[30s])", 45, "{a=\"1\"}", NULL), 5.0, EPS);
    CU_ASSERT_DOUBLE_EQUAL(q("min_over_time(g[30s])", 45, "{a=\"1\"}", NULL), 2.0, EPS);
    CU_ASSERT_DOUBLE_EQUAL(q("max_over_time(g[1m] offset 30s)", 45, "{a=\"1\"}", NULL), 4.0, EPS);
    teardown();
}

/* ---- selection ---------------------------------------------------------- */

static void test_lookback_and_staleness(void)
{
    setup();
    add("up{node=\"a\"}", 0, 1);
    add("up{node=\"b\"}", 0, 1);
    add("up{node=\"b\"}", 60, mon_stale_nan());
    CU_ASSERT_DOUBLE_EQUAL(q("up{node=\"a\"}", 300, "up{node=\"a\"}", NULL), 1.0, 0);
    int n = -1;
    q("up{node=\"a\"}", 300.001, NULL, &n);
    CU_ASSERT_EQUAL(n, 0);
    q("up{node=\"b\"}", 30, NULL, &n);
    CU_ASSERT_EQUAL(n, 1);
    q("up{node=\"b\"}", 61, NULL, &n); /* stale marker hides it at once */
    CU_ASSERT_EQUAL(n, 0);
    q("up offset 4m", 299, NULL, &n);
    CU_ASSERT_EQUAL(n, 2);
    /* regex matchers are anchored */
    q("up{node=~\"a|b\"}", 30, NULL, &n);
    CU_ASSERT_EQUAL(n, 2);
    q("up{node=~\"a.\"}", 30, NULL, &n);
    CU_ASSERT_EQUAL(n, 0);
    q("up{node!~\"b\"}", 30, NULL, &n);
    CU_ASSERT_EQUAL(n, 1);
    q("{__name__=~\"u.\", node!=\"a\"}", 30, NULL, &n);
    CU_ASSERT_EQUAL(n, 1);
    teardown();
}

static void test_retention(void)
{
    st = mon_store_create(600);
    for (int i = 0; i <= 200; i++)
        add("g", i * 15.0, i);
    /* newest 3000 s, keep >= 2400 s: 41 samples */
    CU_ASSERT_EQUAL(mon_store_n_samples(st), 41);
    CU_ASSERT_EQUAL(mon_store_add(st, "g", 3000, 1), -1); /* out of order */
    /* a series that stops is emptied by trim */
    add("h", 0, 1);
    mon_store_trim(st);
    CU_ASSERT_EQUAL(mon_store_n_samples(st), 41);
    teardown();
}

/* ---- RE2 matchers -------------------------------------------------------- */

/* Number of series of x whose label a matches (1) or not (0) per matcher. */
static int re_hits(const char *re, const char *value)
{
    char sel[256];
    int n = -1;
    snprintf(sel, sizeof sel, "x{a=\"%s\", a=~\"%s\"}", value, re);
    q(sel, 10, NULL, &n);
    return n;
}

/* What Go's regexp (RE2) answers, anchored as Prometheus anchors
 * (^(?:re)$), where POSIX ERE answered otherwise (issue: "5\\d\\d" never
 * matched 503). */
static void test_re2_matchers(void)
{
    setup();
    static const char *const values[] = {"503", "5dd", "abc", "x1", "d", "\xc3\xa9", "AbC", "", "a\nb"};
    for (size_t i = 0; i < sizeof values / sizeof *values; i++) {
        char series[64];
        if (strchr(values[i], '\n'))
            snprintf(series, sizeof series, "x{a=\"a\\nb\"}");
        else
            snprintf(series, sizeof series, "x{a=\"%s\"}", values[i]);
        add(series, 0, 1);
    }
    CU_ASSERT_EQUAL(re_hits("5\\\\d\\\\d", "503"), 1);
    CU_ASSERT_EQUAL(re_hits("5\\\\d\\\\d", "5dd"), 0);
    CU_ASSERT_EQUAL(re_hits("\\\\D+", "abc"), 1);
    CU_ASSERT_EQUAL(re_hits("\\\\D+", "503"), 0);
    CU_ASSERT_EQUAL(re_hits("x[\\\\d]", "x1"), 1);
    CU_ASSERT_EQUAL(re_hits("\\\\x64", "d"), 1);
    CU_ASSERT_EQUAL(re_hits(".", "\xc3\xa9"), 1);          /* one code point */
    CU_ASSERT_EQUAL(re_hits("[^0-9]", "\xc3\xa9"), 1);
    CU_ASSERT_EQUAL(re_hits("..", "\xc3\xa9"), 0);
    CU_ASSERT_EQUAL(re_hits("\\\\p{L}", "\xc3\xa9"), 1);
    CU_ASSERT_EQUAL(re_hits("(?i)abc", "AbC"), 1);
    CU_ASSERT_EQUAL(re_hits("abc", "AbC"), 0);
    CU_ASSERT_EQUAL(re_hits("(?:ab)c", "abc"), 1);
    CU_ASSERT_EQUAL(re_hits("b", "abc"), 0);                /* anchored */
    CU_ASSERT_EQUAL(re_hits("a|abc", "abc"), 1);            /* ^(?:a|abc)$, not ^a|abc$ */
    int n = -1;
    q("x{a=~\"a.b\"}", 10, NULL, &n);                       /* . is not \n */
    CU_ASSERT_EQUAL(n, 0);
    q("x{a=~\"(?s)a.b\"}", 10, NULL, &n);
    CU_ASSERT_EQUAL(n, 1);
    q("x{a!~\".+\"}", 10, NULL, &n);                        /* "" and "a\nb" */
    CU_ASSERT_EQUAL(n, 2);
    q("x{a=~\"\\\\d{3}|\\\\pL\"}", 10, NULL, &n);            /* 503, d, é */
    CU_ASSERT_EQUAL(n, 3);
    /* what RE2 refuses */
    CU_ASSERT_PTR_NOT_NULL(strstr(qerr("x{a=~\"(a)\\\\1\"}", 10), "invalid regular expression \"(a)\\1\": invalid escape sequence: \\1"));
    CU_ASSERT_PTR_NOT_NULL(strstr(qerr("x{a=~\"(?=a)\"}", 10), "invalid regular expression"));
    CU_ASSERT_PTR_NOT_NULL(strstr(qerr("x{a=~\"[[:foo:]]\"}", 10), "invalid regular expression"));
    CU_ASSERT_PTR_NOT_NULL(strstr(qerr("x{a=~\"a(\"}", 10), "missing )"));
    teardown();
}

/* ---- histogram_quantile --------------------------------------------------- */

static void test_histogram_quantile(void)
{
    setup();
    add("h_bucket{le=\"0.1\",pool=\"p\"}", 0, 10);
    add("h_bucket{le=\"0.5\",pool=\"p\"}", 0, 30);
    add("h_bucket{le=\"1\",pool=\"p\"}", 0, 45);
    add("h_bucket{le=\"+Inf\",pool=\"p\"}", 0, 50);
    /* q=0.9: rank 45, first bucket with count >= 45 is le=1: 0.5 + 0.5*(15/15) */
    CU_ASSERT_DOUBLE_EQUAL(q("histogram_quantile(0.9, h_bucket)", 0, "{pool=\"p\"}", NULL), 1.0, EPS);
    /* q=0.5: rank 25 in (0.1, 0.5]: 0.1 + 0.4*(15/20) = 0.4 */
    CU_ASSERT_DOUBLE_EQUAL(q("histogram_quantile(0.5, h_bucket)", 0, "{pool=\"p\"}", NULL), 0.4, EPS);
    /* q=0.05: rank 2.5 in the first bucket, from 0: 0.1*2.5/10 */
    CU_ASSERT_DOUBLE_EQUAL(q("histogram_quantile(0.05, h_bucket)", 0, "{pool=\"p\"}", NULL), 0.025, EPS);
    /* q=0.99: rank 49.5 falls in +Inf: the highest finite bound */
    CU_ASSERT_DOUBLE_EQUAL(q("histogram_quantile(0.99, h_bucket)", 0, "{pool=\"p\"}", NULL), 1.0, EPS);
    CU_ASSERT(isinf(q("histogram_quantile(2, h_bucket)", 0, "{pool=\"p\"}", NULL)));
    /* no +Inf bucket: NaN */
    add("x_bucket{le=\"1\"}", 0, 3);
    CU_ASSERT(isnan(q("histogram_quantile(0.5, x_bucket)", 0, "{}", NULL)));
    /* non-monotonic counts are made monotonic: le=0.5 count 5 < 10 -> 10 */
    add("m_bucket{le=\"0.1\"}", 0, 10);
    add("m_bucket{le=\"0.5\"}", 0, 5);
    add("m_bucket{le=\"+Inf\"}", 0, 20);
    /* rank 10 -> first bucket (count >= 10): 0.1*10/10 */
    CU_ASSERT_DOUBLE_EQUAL(q("histogram_quantile(0.5, m_bucket)", 0, "{}", NULL), 0.1, EPS);
    teardown();
}

/* ---- aggregation and operators ----------------------------------------------- */

static void load_cpu(void)
{
    add("cpu{pool=\"a\",node=\"1\"}", 0, 0.2);
    add("cpu{pool=\"a\",node=\"2\"}", 0, 0.6);
    add("cpu{pool=\"b\",node=\"3\"}", 0, 0.9);
    add("cap{pool=\"a\"}", 0, 10);
    add("cap{pool=\"b\"}", 0, 20);
}

static void test_aggregation(void)
{
    setup();
    load_cpu();
    int n;
    CU_ASSERT_DOUBLE_EQUAL(q("sum by (pool) (cpu)", 0, "{pool=\"a\"}", &n), 0.8, EPS);
    CU_ASSERT_EQUAL(n, 2);
    CU_ASSERT_DOUBLE_EQUAL(q("avg(cpu) by (pool)", 0, "{pool=\"a\"}", NULL), 0.4, EPS);
    CU_ASSERT_DOUBLE_EQUAL(q("max without (node) (cpu)", 0, "{pool=\"b\"}", NULL), 0.9, EPS);
    CU_ASSERT_DOUBLE_EQUAL(q("min(cpu)", 0, "{}", NULL), 0.2, EPS);
    CU_ASSERT_DOUBLE_EQUAL(q("count(cpu)", 0, "{}", NULL), 3, 0);
    CU_ASSERT_DOUBLE_EQUAL(q("sum by (__name__) (cpu)", 0, "cpu{}", NULL), 0.2 + 0.6 + 0.9, EPS);
    teardown();
}

static void test_vector_matching(void)
{
    setup();
    load_cpu();
    int n;
    /* group_left: each node's cpu times its pool's capacity, keeping node */
    CU_ASSERT_DOUBLE_EQUAL(q("cpu * on (pool) group_left cap", 0, "{node=\"2\", pool=\"a\"}", &n),
                           6.0, 1e-12);
    CU_ASSERT_EQUAL(n, 3);
    /* group_left(label) copies the label from the one side */
    add("info{pool=\"a\",tier=\"gold\"}", 0, 1);
    CU_ASSERT_DOUBLE_EQUAL(q("cpu * on (pool) group_left (tier) info", 0,
                             "{node=\"1\", pool=\"a\", tier=\"gold\"}", NULL), 0.2, EPS);
    /* one-to-one with on(): the result keeps only the on labels */
    CU_ASSERT_DOUBLE_EQUAL(q("sum by (pool) (cpu) / on (pool) cap", 0, "{pool=\"b\"}", NULL), 0.045, EPS);
    /* ignoring */
    CU_ASSERT_DOUBLE_EQUAL(q("sum by (pool) (cpu) / ignoring (x) cap", 0, "{pool=\"a\"}", NULL), 0.08, EPS);
    /* many-to-many without group_left is an error naming the side */
    CU_ASSERT_PTR_NOT_NULL(strstr(qerr("cap * on (pool) cpu", 0), "many-to-many matching not allowed"));
    CU_ASSERT_PTR_NOT_NULL(strstr(qerr("cap / on (pool) group_left cpu", 0), "duplicate series"));
    /* group_right mirrors group_left */
    CU_ASSERT_DOUBLE_EQUAL(q("cap * on (pool) group_right cpu", 0, "{node=\"3\", pool=\"b\"}", NULL), 18.0, 1e-12);
    teardown();
}

static void test_comparison_and_sets(void)
{
    setup();
    load_cpu();
    int n;
    /* filter keeps the left value and the metric name */
    CU_ASSERT_DOUBLE_EQUAL(q("cpu > 0.5", 0, "cpu{node=\"2\", pool=\"a\"}", &n), 0.6, EPS);
    CU_ASSERT_EQUAL(n, 2);
    /* bool: 0/1 for every element, name dropped */
    CU_ASSERT_DOUBLE_EQUAL(q("cpu > bool 0.5", 0, "{node=\"1\", pool=\"a\"}", &n), 0.0, 0);
    CU_ASSERT_EQUAL(n, 3);
    /* scalar on the left: the vector's value is kept */
    CU_ASSERT_DOUBLE_EQUAL(q("0.5 < cpu", 0, "cpu{node=\"3\", pool=\"b\"}", &n), 0.9, EPS);
    CU_ASSERT_EQUAL(n, 2);
    CU_ASSERT_DOUBLE_EQUAL(q("2 > bool 1", 0, NULL, NULL), 1.0, 0);
    /* and / or / unless match on all labels but the name */
    add("hot{pool=\"a\",node=\"2\"}", 0, 1);
    q("cpu and hot", 0, NULL, &n);
    CU_ASSERT_EQUAL(n, 1);
    q("cpu unless hot", 0, NULL, &n);
    CU_ASSERT_EQUAL(n, 2);
    q("cpu or hot", 0, NULL, &n);
    CU_ASSERT_EQUAL(n, 3);
    q("cpu and on (pool) hot", 0, NULL, &n);
    CU_ASSERT_EQUAL(n, 2);
    /* arithmetic drops the name; precedence */
    CU_ASSERT_DOUBLE_EQUAL(q("1 + 2 * 3 ^ 2", 0, NULL, NULL), 19.0, 0);
    CU_ASSERT_DOUBLE_EQUAL(q("-2 ^ 2", 0, NULL, NULL), -4.0, 0);
    CU_ASSERT_DOUBLE_EQUAL(q("2 ^ 3 ^ 2", 0, NULL, NULL), 512.0, 0);
    CU_ASSERT_DOUBLE_EQUAL(q("cap{pool=\"a\"} * 2 - 1", 0, "{pool=\"a\"}", NULL), 19.0, 0);
    teardown();
}

static void test_scalar_vector_absent_time(void)
{
    setup();
    load_cpu();
    int n;
    CU_ASSERT_DOUBLE_EQUAL(q("scalar(cap{pool=\"b\"})", 0, NULL, NULL), 20.0, 0);
    CU_ASSERT(isnan(q("scalar(cap)", 0, NULL, NULL)));
    CU_ASSERT_DOUBLE_EQUAL(q("vector(3)", 0, "{}", &n), 3.0, 0);
    CU_ASSERT_DOUBLE_EQUAL(q("time()", 90, NULL, NULL), 90.0, 0);
    q("absent(cpu)", 0, NULL, &n);
    CU_ASSERT_EQUAL(n, 0);
    CU_ASSERT_DOUBLE_EQUAL(q("absent(nope{job=\"x\", a=~\"y\", b=\"1\", b=\"2\"})", 0, "{job=\"x\"}", &n), 1.0, 0);
    CU_ASSERT_EQUAL(n, 1);
    CU_ASSERT_DOUBLE_EQUAL(q("absent(sum(nope))", 0, "{}", &n), 1.0, 0);
    teardown();
}

/* ---- errors -------------------------------------------------------------- */

static void expect_err(const char *expr, const char *want)
{
    mon_error err = { "" };
    mon_expr *e = mon_expr_parse(expr, &err);
    CU_ASSERT_PTR_NULL(e);
    if (!strstr(err.msg, want))
        fprintf(stderr, "\n  %s: got \"%s\", want \"%s\"\n", expr, err.msg, want);
    CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, want));
    mon_expr_free(e);
}

static void test_parse_errors(void)
{
    expect_err("rate(x[5m]", "1:11: parse error: unexpected end of input");
    expect_err("sum(x) by (a", "1:13:");
    expect_err("limitk(3, x)", "1:1: parse error: aggregation \"limitk\" is not supported: it is newer "
               "than Prometheus 2.42, whose PromQL fleetsim follows");
    expect_err("histogram_count(x)", "1:1: parse error: function \"histogram_count\" is not supported: it "
               "reads native histograms, which fleetsim does not model (its series are floats)");
    expect_err("topk(x)", "wrong number of arguments for aggregate expression provided, expected 2, got 1");
    expect_err("topk(\"a\", x)", "expected type scalar in aggregation parameter, got string");
    expect_err("count_values(1, x)", "expected type string in aggregation parameter, got scalar");
    expect_err("sum(1, x)", "expected 1, got 2");
    expect_err("round(x, 1, 2)", "expected at most 2 argument(s) in call to \"round\", got 3");
    expect_err("label_join(x, \"a\")", "expected at least 3 argument(s) in call to \"label_join\", got 2");
    expect_err("x @ start", "1:10: parse error: unexpected end of input, expected \"(\"");
    expect_err("x @ 1 @ 2", "@ <timestamp> may not be set multiple times");
    expect_err("sum(x) @ 1", "@ modifier must be preceded by an instant vector selector");
    expect_err("x @ Inf", "timestamp out of bounds for @ modifier");
    expect_err("rate(x[5m:1m] offset 1m offset 2m)", "offset may not be set multiple times");
    expect_err("rate(x[5m:1m][5m:1m])", "subquery is only allowed on instant vector, got range vector");
    expect_err("\"a\" + 1", "binary expression must contain only scalar and instant vector types");
    expect_err("-\"a\"", "unary expression only allowed on expressions of type scalar or instant vector, got string");
    /* Go's number literals */
    expect_err("0x1p3", "bad number or duration syntax");
    expect_err("1e400", "error parsing number: strconv.ParseFloat: parsing \"1e400\": value out of range");
    expect_err("0x1.8", "error parsing number");
    expect_err("1_000", "bad number or duration syntax");
    expect_err("\"\\400\"", "octal escape above");
    expect_err("\"\\ud800\"", "bad \\u escape");
    expect_err("foo_bar(x)", "unknown function with name \"foo_bar\"");
    expect_err("rate(x)", "1:6: parse error: expected type range vector in call to function \"rate\", got instant vector");
    expect_err("1 > 2", "comparisons between scalars must use BOOL modifier");
    expect_err("x + bool y", "bool modifier can only be used on comparison operators");
    expect_err("x{a=\"1\"", "1:8:");
    expect_err("x{a=~\"(\"}", "invalid regular expression");
    /* what RE2 refuses and glibc would take (found by fuzzing: "gp++u"
     * made regcomp use gigabytes); each message as Go's regexp/syntax */
    expect_err("x{a=~\"gp++u\"}", "1:6: parse error: invalid regular expression \"gp++u\": "
               "invalid nested repetition operator: `++`");
    expect_err("x{a=~\"a{2}{3}\"}", "1:6: parse error: invalid regular expression \"a{2}{3}\": "
               "invalid nested repetition operator: `{2}{3}`");
    expect_err("x{a=~\"a{1001}\"}", "1:6: parse error: invalid regular expression \"a{1001}\": "
               "invalid repeat count: `{1001}`");
    expect_err("x{a=~\"(a{100}){100}\"}", "1:6: parse error: invalid regular expression "
               "\"(a{100}){100}\": invalid repeat count: `{100}`");
    expect_err("x{a=~\"a)|(b\"}", "1:6: parse error: invalid regular expression \"a)|(b\": "
               "unexpected ): `a)|(b`");
    static const char *const fine[] = {"x{a=~\"(a{10}){100}\"}", "x{a=~\"a+?b*?\"}",
                                       "x{a=~\"[+*]+\"}", "x{a=~\"a\\\\++\"}",
                                       "x{a=~\"[]a]*|b{,3}\"}", "x{a=~\"((((a+)+)+)+)+\"}",
                                       /* RE2 compiles nested repetitions in
                                        * linear time (glibc's regcomp took
                                        * seconds on these) */
                                       "x{a=~\"((((((((((((((((((((a+)+)+)+)+)+)+)+)+)+)+)+)+)+)+)+)+)+)+)+)+\"}",
                                       "x{a=~\"(((((()+)+)+)+)+)+\"}"};
    for (size_t i = 0; i < sizeof fine / sizeof *fine; i++) {
        mon_error fe;
        mon_expr *fx = mon_expr_parse(fine[i], &fe);
        if (!fx)
            fprintf(stderr, "\n  %s: %s\n", fine[i], fe.msg);
        CU_ASSERT_PTR_NOT_NULL(fx);
        mon_expr_free(fx);
    }
    expect_err("{a=\"\"}", "vector selector must contain at least one non-empty matcher");
    expect_err("x[5]", "1:3: parse error: unexpected \"5\" in range, expected duration");
    expect_err("x and\n  )", "2:3: parse error: unexpected \")\"");
    /* beyond Go's time.Duration (int64 ns, 106751.99 days), as Prometheus
     * refuses it; found by fuzzing (the sum overflowed an int64) */
    expect_err("rate(x[233333333333d])",
               "1:8: parse error: duration out of range: \"233333333333d\"");
    expect_err("x offset 106751d23h47m16s855ms",
               "1:10: parse error: duration out of range: \"106751d23h47m16s855ms\"");
    expect_err("x[99999999999999999999999ms]",
               "1:3: parse error: duration out of range: \"99999999999999999999999ms\"");
    mon_error big_err;
    mon_expr *big = mon_expr_parse("x offset 106751d23h47m16s854ms", &big_err);
    CU_ASSERT_PTR_NOT_NULL(big);
    if (big)
        CU_ASSERT_DOUBLE_EQUAL(mon_expr_lookback_s(big), 9223372036.854 + 300, 1e-3);
    mon_expr_free(big);
    double d = 0;
    CU_ASSERT_EQUAL(mon_parse_duration("1y2w3d4h5m6s7ms", &d), 0);
    CU_ASSERT_DOUBLE_EQUAL(d, 365 * 86400 + 14 * 86400 + 3 * 86400 + 4 * 3600 + 5 * 60 + 6.007, 1e-9);
    CU_ASSERT_EQUAL(mon_parse_duration("292y", &d), 0);
    CU_ASSERT_EQUAL(mon_parse_duration("293y", &d), -2);
    CU_ASSERT_EQUAL(mon_parse_duration("5x", &d), -1);
    /* durations */
    double s;
    CU_ASSERT_EQUAL(mon_parse_duration("1h30m", &s), 0);
    CU_ASSERT_DOUBLE_EQUAL(s, 5400, 0);
    CU_ASSERT_EQUAL(mon_parse_duration("250ms", &s), 0);
    CU_ASSERT_DOUBLE_EQUAL(s, 0.25, 0);
    CU_ASSERT_EQUAL(mon_parse_duration("30m1h", &s), -1);
    CU_ASSERT_EQUAL(mon_parse_duration("5", &s), -1);
    /* lookback for retention */
    mon_error err;
    mon_expr *e = mon_expr_parse("rate(x[1h] offset 5m) > on() group_left up", &err);
    CU_ASSERT_PTR_NOT_NULL_FATAL(e);
    CU_ASSERT_DOUBLE_EQUAL(mon_expr_lookback_s(e), 3900, 0);
    mon_expr_free(e);
}

/* ---- the semantics the issue found different from Prometheus ----------- */

static void test_prometheus_semantics(void)
{
    setup();
    add("a{k=\"1\"}", 0, 1);
    add("b{k=\"1\", x=\"1\"}", 0, 2);
    add("b{k=\"1\", x=\"2\"}", 0, 3);
    add("g", 0, 10);
    add("g", 60, 20);
    add("g", 120, 40);
    int n = -1;
    /* an empty side gives an empty result, even when the other side has
     * duplicates for the match group (engine.go VectorBinop) */
    q("nope + on(k) b", 60, NULL, &n);
    CU_ASSERT_EQUAL(n, 0);
    CU_ASSERT_STRING_EQUAL(qerr("a + on(k) b", 60), "found duplicate series for the match group "
                           "{k=\"1\"} on the right hand-side of the operation: [b{k=\"1\", x=\"2\"}, "
                           "b{k=\"1\", x=\"1\"}];many-to-many matching not allowed: "
                           "matching labels must be unique on one side");
    /* histogram_quantile reads le as strconv.ParseFloat: "0x1p1" is 2,
     * " 1" (a space) and "nan(1)" are no bound and their buckets skipped;
     * with only 2 and +Inf (10 each) the median is 1 */
    add("h_bucket{le=\"0x1p1\"}", 0, 10);
    add("h_bucket{le=\" 1\"}", 0, 10);
    add("h_bucket{le=\"nan(1)\"}", 0, 10);
    add("h_bucket{le=\"+Inf\"}", 0, 10);
    CU_ASSERT_DOUBLE_EQUAL(q("histogram_quantile(0.5, h_bucket)", 0, NULL, NULL), 1, 0);
    /* Go's number literals: ParseInt base 0 first */
    CU_ASSERT_DOUBLE_EQUAL(q("010", 0, NULL, NULL), 8, 0);
    CU_ASSERT_DOUBLE_EQUAL(q("0x1f", 0, NULL, NULL), 31, 0);
    CU_ASSERT_DOUBLE_EQUAL(q("09", 0, NULL, NULL), 9, 0);
    CU_ASSERT_DOUBLE_EQUAL(q("1e-400", 0, NULL, NULL), 0, 0);
    /* ^ is Go's math.Pow, its special cases included */
    CU_ASSERT_DOUBLE_EQUAL(q("2 ^ 3 ^ 2", 0, NULL, NULL), 512, 0);
    CU_ASSERT(isinf(q("-0 ^ -3", 0, NULL, NULL)) && q("-0 ^ -3", 0, NULL, NULL) < 0);
    CU_ASSERT_DOUBLE_EQUAL(q("(-1) ^ Inf", 0, NULL, NULL), 1, 0);
    CU_ASSERT(isnan(q("(-8) ^ (1/3)", 0, NULL, NULL)));
    /* string escapes as strconv.Unquote: \u, octal; the label value is é */
    add("s{v=\"\xc3\xa9\"}", 0, 5);
    CU_ASSERT_DOUBLE_EQUAL(q("s{v=\"\\u00e9\"}", 0, NULL, NULL), 5, 0);
    CU_ASSERT_DOUBLE_EQUAL(q("s{v=\"\\303\\251\"}", 0, NULL, NULL), 5, 0);
    CU_ASSERT_DOUBLE_EQUAL(q("s{v=`\xc3\xa9`}", 0, NULL, NULL), 5, 0);
    /* negative offset reads ahead; @ fixes the time */
    CU_ASSERT_DOUBLE_EQUAL(q("g offset -1m", 60, NULL, NULL), 40, 0);
    CU_ASSERT_DOUBLE_EQUAL(q("g @ 60", 500, NULL, NULL), 20, 0);
    /* deriv and predict_linear over g: 0, 10, 40 at 0, 60, 120 s; least
     * squares slope 30/120 = 0.25/s, intercept at t = 120: 70/3 + 0.25*60 */
    CU_ASSERT_DOUBLE_EQUAL(q("deriv(g[2m])", 120, NULL, NULL), 0.25, 1e-12);
    CU_ASSERT_DOUBLE_EQUAL(q("predict_linear(g[2m], 3600)", 120, NULL, NULL),
                           70.0 / 3 + 0.25 * 60 + 0.25 * 3600, 1e-9);
    /* a subquery: max of g's 1m-rate at each 1m step over 2m */
    CU_ASSERT_DOUBLE_EQUAL(q("max_over_time(rate(g[1m])[2m:1m])", 120, NULL, NULL), 20.0 / 60, 1e-12);
    /* label_replace with RE2 groups, $1 and ${1} */
    mon_value v;
    mon_error err;
    CU_ASSERT_EQUAL(mon_query("label_replace(b, \"y\", \"v${1}-$2\", \"x\", \"(\\\\d)()\")", st, 0, &v, &err), 0);
    CU_ASSERT_EQUAL(v.n, 2);
    CU_ASSERT_STRING_EQUAL(mon_labels_get(&v.v[0].labels, "y"), "v1-");
    mon_value_free(&v);
    /* a range query with @ end(): every step reads g at the end, 120 s */
    mon_expr *e = mon_expr_parse("g @ end()", &err);
    CU_ASSERT_EQUAL_FATAL(mon_expr_eval_range(e, st, 0, 120, 60, &v, &err), 0);
    CU_ASSERT_EQUAL(v.nm, 1);
    if (v.nm == 1) {
        CU_ASSERT_EQUAL(v.m[0].n, 3);
        for (int i = 0; i < v.m[0].n; i++)
            CU_ASSERT_DOUBLE_EQUAL(v.m[0].pts[i].v, 40, 0);
    }
    mon_value_free(&v);
    mon_expr_free(e);
    teardown();
}

/* mon_store_dump / mon_store_load (fleetsim query's series.txt): exact
 * values, escapes and staleness markers survive the trip. */
static void test_dump_load(void)
{
    setup();
    add("m{a=\"x \\\"q\\\" \\\\ \\n\"}", 0, 0.1);
    add("m{a=\"x \\\"q\\\" \\\\ \\n\"}", 15, 1e-300);
    add("m{a=\"x \\\"q\\\" \\\\ \\n\"}", 30, mon_stale_nan());
    add("n", 0, -INFINITY);
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    CU_ASSERT_EQUAL(mon_store_dump(st, f), 0);
    fclose(f);
    mon_store *back = mon_store_create(INFINITY);
    f = fmemopen(buf, len, "r");
    mon_error err;
    CU_ASSERT_EQUAL(mon_store_load(back, f, &err), 0);
    fclose(f);
    mon_store *orig = st;
    st = back;
    int n = -1;
    CU_ASSERT_EQUAL(q("m", 0, NULL, NULL), 0.1);
    CU_ASSERT_EQUAL(q("m", 15, NULL, NULL), 1e-300);
    q("m", 30, NULL, &n); /* stale: gone at once */
    CU_ASSERT_EQUAL(n, 0);
    CU_ASSERT(isinf(q("n", 0, NULL, NULL)));
    CU_ASSERT_EQUAL(mon_store_n_samples(back), 4);
    CU_ASSERT_EQUAL(mon_store_newest_s(back), 30);
    mon_store_destroy(orig);
    free(buf);
    teardown();
}

static void test_fmt_go(void)
{
    char b[64];
    CU_ASSERT_STRING_EQUAL(mon_fmt_go(0.95, b, sizeof b), "0.95");
    CU_ASSERT_STRING_EQUAL(mon_fmt_go(100000, b, sizeof b), "100000");
    CU_ASSERT_STRING_EQUAL(mon_fmt_go(1e6, b, sizeof b), "1e+06");
    CU_ASSERT_STRING_EQUAL(mon_fmt_go(1234567, b, sizeof b), "1.234567e+06");
    CU_ASSERT_STRING_EQUAL(mon_fmt_go(0.0001, b, sizeof b), "0.0001");
    CU_ASSERT_STRING_EQUAL(mon_fmt_go(0.00001234, b, sizeof b), "1.234e-05");
    CU_ASSERT_STRING_EQUAL(mon_fmt_go(-2.5, b, sizeof b), "-2.5");
    CU_ASSERT_STRING_EQUAL(mon_fmt_go(1.0 / 3, b, sizeof b), "0.3333333333333333");
    CU_ASSERT_STRING_EQUAL(mon_fmt_go(120, b, sizeof b), "120");
    CU_ASSERT_STRING_EQUAL(mon_fmt_go(INFINITY, b, sizeof b), "+Inf");
}

int main(void)
{
    if (CU_initialize_registry() != CUE_SUCCESS)
        return 1;
    CU_pSuite s = CU_add_suite("promql", NULL, NULL);
    CU_add_test(s, "rate extrapolation", test_rate_extrapolation);
    CU_add_test(s, "rate over a counter reset", test_rate_counter_reset);
    CU_add_test(s, "rate far from the range boundary", test_rate_far_from_boundary);
    CU_add_test(s, "*_over_time and offset", test_over_time);
    CU_add_test(s, "lookback delta, staleness, matchers", test_lookback_and_staleness);
    CU_add_test(s, "store retention", test_retention);
    CU_add_test(s, "RE2 matchers", test_re2_matchers);
    CU_add_test(s, "store dump and load", test_dump_load);
    CU_add_test(s, "Prometheus semantics: empty sides, literals, pow, @, offset, subquery", test_prometheus_semantics);
    CU_add_test(s, "histogram_quantile", test_histogram_quantile);
    CU_add_test(s, "aggregation by/without", test_aggregation);
    CU_add_test(s, "vector matching", test_vector_matching);
    CU_add_test(s, "comparisons, bool, set operators", test_comparison_and_sets);
    CU_add_test(s, "scalar, vector, absent, time", test_scalar_vector_absent_time);
    CU_add_test(s, "parse errors with positions", test_parse_errors);
    CU_add_test(s, "Go float formatting", test_fmt_go);
    CU_basic_set_mode(CU_BRM_NORMAL);
    CU_basic_run_tests();
    unsigned fails = CU_get_number_of_failures();
    CU_cleanup_registry();
    return fails != 0;
}
