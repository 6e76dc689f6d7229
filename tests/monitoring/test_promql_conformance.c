/*
 * test_promql_conformance.c - Prometheus 2.42's own PromQL test data
 * (promql/testdata/NAME.test, copied under tests/monitoring/promql-testdata/)
 * run through fleetsim's store and evaluator, as promql/test.go runs them:
 * `load <step>` lines of series descriptions (`1+2x3`, `_`, `stale`),
 * `clear`, and `eval[_fail|_ordered] instant at <duration> <expr>` with the
 * expected samples (or a scalar) below, compared with test.go's
 * almostEqual (relative error 1e-6). Each instant case is also run as a
 * range query from t-1m to t+1m by 1m and the point at t compared, as
 * test.go does. The cases left out, each with why, are in skipped[] below
 * and in the README next to the data.
 */
#include "mon.h"

#include <CUnit/Basic.h>
#include <CUnit/CUnit.h>
#include <ctype.h>
#include <stdarg.h>
#include <strings.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The cases left out: file and the line of the eval command. */
static const struct {
    const char *file;
    int line;
    const char *why;
} skipped[] = {
    { NULL, 0, NULL },
};

static int is_skipped(const char *file, int line, const char **why)
{
    for (size_t i = 0; skipped[i].file; i++)
        if (!strcmp(skipped[i].file, file) && skipped[i].line == line) {
            *why = skipped[i].why;
            return 1;
        }
    return 0;
}

/* ---- series descriptions (parser.ParseSeriesDesc) ---- */

typedef struct {
    int omitted;
    double v;
} seqval;

/* model.ParseDuration for the test's durations; -1 if bad. */
static int parse_dur_ms(const char *s, long long *ms)
{
    double sec;
    if (!strcmp(s, "0")) {
        *ms = 0;
        return 0;
    }
    if (mon_parse_duration(s, &sec))
        return -1;
    *ms = llround(sec * 1000);
    return 0;
}

/* A number as the series lexer reads it: Inf, NaN, decimal. */
static int read_num(const char **pp, double *out)
{
    const char *p = *pp;
    int neg = 0;
    if (*p == '+' || *p == '-') {
        neg = *p == '-';
        p++;
    }
    if (!strncasecmp(p, "inf", 3) && !isalnum((unsigned char)p[3])) {
        *out = neg ? -INFINITY : INFINITY;
        *pp = p + 3;
        return 0;
    }
    if (!strncasecmp(p, "nan", 3) && !isalnum((unsigned char)p[3])) {
        *out = NAN;
        *pp = p + 3;
        return 0;
    }
    /* decimal only (no hex in series descriptions: lexer.go) */
    const char *q = p;
    while (isdigit((unsigned char)*q))
        q++;
    if (*q == '.')
        for (q++; isdigit((unsigned char)*q); q++)
            ;
    if ((*q == 'e' || *q == 'E') && (isdigit((unsigned char)q[1]) ||
                                     ((q[1] == '+' || q[1] == '-') && isdigit((unsigned char)q[2])))) {
        q += 2;
        while (isdigit((unsigned char)*q))
            q++;
    }
    if (q == p || (*q && !isspace((unsigned char)*q) && *q != 'x' && *q != '+' && *q != '-'))
        return -1;
    char num[64];
    size_t len = (size_t)(q - p) < sizeof num - 1 ? (size_t)(q - p) : sizeof num - 1;
    memcpy(num, p, len);
    num[len] = '\0';
    double v = strtod(num, NULL);
    const char *end = q;
    *out = neg ? -v : v;
    *pp = end;
    return 0;
}

/* Parses the values after the series: items separated by spaces. */
static int parse_values(const char *p, seqval **out, int *n)
{
    *out = NULL;
    *n = 0;
    for (;;) {
        while (isspace((unsigned char)*p))
            p++;
        if (!*p)
            return 0;
        if (*p == '_') {
            long reps = 1;
            p++;
            if (*p == 'x') {
                reps = strtol(p + 1, (char **)&p, 10);
            }
            for (long i = 0; i < reps; i++) {
                *out = realloc(*out, (size_t)(*n + 1) * sizeof **out);
                (*out)[(*n)++] = (seqval){ 1, 0 };
            }
            continue;
        }
        double v;
        if (!strncmp(p, "stale", 5)) {
            v = mon_stale_nan();
            p += 5;
        } else if (read_num(&p, &v)) {
            return -1;
        }
        if (*p == 'x') { /* value x N: N+1 copies */
            long reps = strtol(p + 1, (char **)&p, 10);
            for (long i = 0; i <= reps; i++) {
                *out = realloc(*out, (size_t)(*n + 1) * sizeof **out);
                (*out)[(*n)++] = (seqval){ 0, v };
            }
            continue;
        }
        if (*p == '+' || *p == '-') { /* a+bxN: N+1 values, b added each time */
            double step;
            if (read_num(&p, &step) || *p != 'x')
                return -1;
            long reps = strtol(p + 1, (char **)&p, 10);
            *out = realloc(*out, (size_t)(*n + 1) * sizeof **out);
            (*out)[(*n)++] = (seqval){ 0, v };
            for (long i = 1; i <= reps; i++) {
                v += step;
                *out = realloc(*out, (size_t)(*n + 1) * sizeof **out);
                (*out)[(*n)++] = (seqval){ 0, v };
            }
            continue;
        }
        *out = realloc(*out, (size_t)(*n + 1) * sizeof **out);
        (*out)[(*n)++] = (seqval){ 0, v };
    }
}

/* Splits `name{labels} values`: *series_end points after the series. */
static int split_series(const char *line, mon_labels *ls, const char **rest)
{
    const char *p = line;
    while (*p && (isalnum((unsigned char)*p) || *p == '_' || *p == ':'))
        p++;
    if (*p == '{') {
        int inq = 0;
        for (p++; *p; p++) {
            if (inq) {
                if (*p == '\\' && p[1])
                    p++;
                else if (*p == '"')
                    inq = 0;
            } else if (*p == '"') {
                inq = 1;
            } else if (*p == '}') {
                p++;
                break;
            }
        }
    }
    size_t len = (size_t)(p - line);
    char *text = malloc(len + 1);
    memcpy(text, line, len);
    text[len] = '\0';
    mon_error err;
    int rc = len ? mon_labels_parse(text, ls, &err) : -1;
    if (!len) {
        ls->n = 0;
        ls->v = NULL;
    }
    free(text);
    *rest = p;
    return rc;
}

/* ---- the runner ---- */

static int almost_equal(double a, double b)
{
    const double min_normal = 2.2250738585072014e-308, eps = 0.000001;
    if (isnan(a) && isnan(b))
        return 1;
    if (a == b)
        return 1;
    double diff = fabs(a - b);
    if (a == 0 || b == 0 || diff < min_normal)
        return diff < eps * min_normal;
    return diff / (fabs(a) + fabs(b)) < eps;
}

typedef struct {
    mon_labels ls;
    double v;
} expect;

typedef struct {
    int run, failed, skipped;
} tally;

static char *trim(char *s)
{
    while (isspace((unsigned char)*s))
        s++;
    size_t n = strlen(s);
    while (n && isspace((unsigned char)s[n - 1]))
        s[--n] = '\0';
    if (*s == '#')
        *s = '\0';
    return s;
}

static void report(const char *file, int line, const char *expr, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static void report(const char *file, int line, const char *expr, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "\n  %s:%d: %s: ", file, line, expr);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
}

/* Compares a vector result with the expectations; 0 if it agrees. */
static int compare_vector(const char *file, int line, const char *expr, const mon_sample *v, int n,
                          const expect *ex, int nex, int ordered)
{
    char b1[512], b2[512];
    int *seen = calloc((size_t)nex + 1, sizeof *seen);
    int bad = 0;
    for (int i = 0; i < n && !bad; i++) {
        int k = -1;
        for (int j = 0; j < nex; j++)
            if (!mon_labels_cmp(&ex[j].ls, &v[i].labels))
                k = j;
        if (k < 0) {
            report(file, line, expr, "unexpected metric %s in result", mon_labels_str(&v[i].labels, b1, sizeof b1));
            bad = 1;
        } else if (ordered && k != i) {
            report(file, line, expr, "expected metric %s at position %d but was at %d",
                   mon_labels_str(&v[i].labels, b1, sizeof b1), k + 1, i + 1);
            bad = 1;
        } else if (!almost_equal(ex[k].v, v[i].v)) {
            report(file, line, expr, "expected %.17g for %s but got %.17g", ex[k].v,
                   mon_labels_str(&v[i].labels, b1, sizeof b1), v[i].v);
            bad = 1;
        } else {
            seen[k] = 1;
        }
    }
    for (int j = 0; j < nex && !bad; j++)
        if (!seen[j]) {
            report(file, line, expr, "expected metric %s with %.17g not found (%d in result)",
                   mon_labels_str(&ex[j].ls, b2, sizeof b2), ex[j].v, n);
            bad = 1;
        }
    free(seen);
    return bad;
}

static void run_eval(mon_store *st, const char *file, int line, const char *expr, long long t_ms,
                     int fail, int ordered, const expect *ex, int nex, int have_scalar,
                     double scalar, tally *ty)
{
    const char *why;
    if (is_skipped(file, line, &why)) {
        ty->skipped++;
        return;
    }
    ty->run++;
    mon_error err = { "" };
    mon_expr *e = mon_expr_parse(expr, &err);
    if (!e) {
        report(file, line, expr, "parse error: %s", err.msg);
        ty->failed++;
        return;
    }
    double t = (double)t_ms / 1000.0;
    mon_value v;
    int rc = mon_expr_eval(e, st, t, &v, &err);
    int bad = 0;
    if (rc) {
        if (!fail) {
            report(file, line, expr, "error: %s", err.msg);
            bad = 1;
        }
    } else if (fail) {
        report(file, line, expr, "expected an error, got none");
        bad = 1;
        mon_value_free(&v);
    } else {
        if (v.type == MON_VAL_MATRIX) {
            report(file, line, expr, "received range result on instant evaluation");
            bad = 1;
        } else if (v.type == MON_VAL_SCALAR) {
            if (!have_scalar || !almost_equal(scalar, v.scalar)) {
                report(file, line, expr, "expected scalar %.17g but got %.17g", scalar, v.scalar);
                bad = 1;
            }
        } else if (v.type == MON_VAL_VECTOR) {
            bad = compare_vector(file, line, expr, v.v, v.n, ex, nex, ordered);
        }
        mon_value_free(&v);
        /* test.go: the same in range mode, t-1m..t+1m by 1m, the point at t */
        if (!bad && !ordered) {
            mon_value r;
            if (mon_expr_eval_range(e, st, t - 60, t + 60, 60, &r, &err)) {
                report(file, line, expr, "error in range mode: %s", err.msg);
                bad = 1;
            } else {
                mon_sample *at = NULL;
                int nat = 0;
                for (int i = 0; i < r.nm; i++)
                    for (int j = 0; j < r.m[i].n; j++)
                        if (r.m[i].pts[j].t == t_ms) {
                            at = realloc(at, (size_t)(nat + 1) * sizeof *at);
                            at[nat].labels = r.m[i].labels;
                            at[nat].v = r.m[i].pts[j].v;
                            nat++;
                        }
                if (have_scalar) {
                    if (nat != 1 || !almost_equal(scalar, at[0].v)) {
                        report(file, line, expr, "range mode: expected scalar %.17g", scalar);
                        bad = 1;
                    }
                } else {
                    bad = compare_vector(file, line, expr, at, nat, ex, nex, 0);
                    if (bad)
                        fprintf(stderr, " (range mode)");
                }
                free(at);
                mon_value_free(&r);
            }
        }
    }
    if (bad)
        ty->failed++;
    mon_expr_free(e);
}

static void run_file(const char *name, tally *ty)
{
    const char *src = getenv("FLEETSIM_SRC");
    char path[1024];
    snprintf(path, sizeof path, "%s/tests/monitoring/promql-testdata/%s", src ? src : ".", name);
    FILE *f = fopen(path, "r");
    CU_ASSERT_PTR_NOT_NULL_FATAL(f);
    char **lines = NULL;
    int nl = 0;
    char buf[8192];
    while (fgets(buf, sizeof buf, f)) {
        lines = realloc(lines, (size_t)(nl + 1) * sizeof *lines);
        lines[nl++] = strdup(buf);
    }
    fclose(f);
    mon_store *st = mon_store_create(INFINITY);
    for (int i = 0; i < nl; i++) {
        char *l = trim(lines[i]);
        if (!*l)
            continue;
        if (!strncmp(l, "clear", 5)) {
            mon_store_destroy(st);
            st = mon_store_create(INFINITY);
            continue;
        }
        if (!strncmp(l, "load", 4)) {
            long long gap = 0;
            char *g = trim(l + 4);
            CU_ASSERT_EQUAL_FATAL(parse_dur_ms(g, &gap), 0);
            /* loadCmd.set: a series defined twice in one load keeps the
             * later definition */
            struct def {
                mon_labels ls;
                seqval *vals;
                int nv;
            } *defs = NULL;
            int nd = 0;
            while (i + 1 < nl && *trim(lines[i + 1])) {
                i++;
                char *d = trim(lines[i]);
                mon_labels ls;
                const char *rest;
                if (split_series(d, &ls, &rest)) {
                    report(name, i + 1, d, "bad series description");
                    ty->failed++;
                    continue;
                }
                seqval *vals;
                int nv;
                if (parse_values(rest, &vals, &nv)) {
                    report(name, i + 1, d, "bad series values");
                    ty->failed++;
                    mon_labels_free(&ls);
                    continue;
                }
                int k = 0;
                while (k < nd && mon_labels_cmp(&defs[k].ls, &ls))
                    k++;
                if (k == nd) {
                    defs = realloc(defs, (size_t)(nd + 1) * sizeof *defs);
                    defs[nd++].ls = ls;
                } else {
                    mon_labels_free(&ls);
                    free(defs[k].vals);
                }
                defs[k].vals = vals;
                defs[k].nv = nv;
            }
            for (int k = 0; k < nd; k++) {
                mon_series *se = mon_store_series(st, &defs[k].ls);
                for (int j = 0; j < defs[k].nv; j++)
                    if (!defs[k].vals[j].omitted)
                        mon_series_append(se, (double)(j * gap) / 1000.0, defs[k].vals[j].v);
                free(defs[k].vals);
                mon_labels_free(&defs[k].ls);
            }
            free(defs);
            continue;
        }
        if (!strncmp(l, "eval", 4)) {
            int line = i + 1, fail = 0, ordered = 0;
            char *p = l + 4;
            if (!strncmp(p, "_fail", 5)) {
                fail = 1;
                p += 5;
            } else if (!strncmp(p, "_ordered", 8)) {
                ordered = 1;
                p += 8;
            }
            p = trim(p);
            CU_ASSERT_EQUAL_FATAL(strncmp(p, "instant", 7), 0);
            p = trim(p + 7);
            long long t_ms = 0;
            if (!strncmp(p, "at ", 3)) {
                p = trim(p + 3);
                char *sp = p;
                while (*sp && !isspace((unsigned char)*sp))
                    sp++;
                char save = *sp;
                *sp = '\0';
                CU_ASSERT_EQUAL_FATAL(parse_dur_ms(p, &t_ms), 0);
                *sp = save;
                p = trim(sp);
            }
            const char *expr = p;
            expect *ex = NULL;
            int nex = 0, have_scalar = 0;
            double scalar = 0;
            while (i + 1 < nl && *trim(lines[i + 1])) {
                i++;
                char *d = trim(lines[i]);
                const char *why;
                double num;
                if (!mon_go_number(d, &num, &why)) {
                    have_scalar = 1;
                    scalar = num;
                    break;
                }
                mon_labels ls;
                const char *rest;
                seqval *vals = NULL;
                int nv = 0;
                if (split_series(d, &ls, &rest) || parse_values(rest, &vals, &nv) || nv != 1) {
                    report(name, i + 1, d, "bad expected sample");
                    ty->failed++;
                    free(vals);
                    continue;
                }
                ex = realloc(ex, (size_t)(nex + 1) * sizeof *ex);
                ex[nex].ls = ls;
                ex[nex].v = vals[0].v;
                nex++;
                free(vals);
            }
            run_eval(st, name, line, expr, t_ms, fail, ordered, ex, nex, have_scalar, scalar, ty);
            for (int k = 0; k < nex; k++)
                mon_labels_free(&ex[k].ls);
            free(ex);
            continue;
        }
        report(name, i + 1, l, "unknown command");
        ty->failed++;
    }
    mon_store_destroy(st);
    for (int i = 0; i < nl; i++)
        free(lines[i]);
    free(lines);
}

#define FILE_TEST(fn, file)                                                                  \
    static void fn(void)                                                                     \
    {                                                                                        \
        tally ty = { 0, 0, 0 };                                                              \
        run_file(file, &ty);                                                                 \
        fprintf(stderr, "\n  %s: %d cases run, %d failed, %d skipped\n", file, ty.run,     \
                ty.failed, ty.skipped);                                                      \
        CU_ASSERT(ty.run > 0);                                                               \
        CU_ASSERT_EQUAL(ty.failed, 0);                                                       \
    }

FILE_TEST(test_aggregators, "aggregators.test")
FILE_TEST(test_at_modifier, "at_modifier.test")
FILE_TEST(test_collision, "collision.test")
FILE_TEST(test_functions, "functions.test")
FILE_TEST(test_histograms, "histograms.test")
FILE_TEST(test_literals, "literals.test")
FILE_TEST(test_operators, "operators.test")
FILE_TEST(test_selectors, "selectors.test")
FILE_TEST(test_staleness, "staleness.test")
FILE_TEST(test_subquery, "subquery.test")
FILE_TEST(test_trig_functions, "trig_functions.test")

int main(void)
{
    if (CU_initialize_registry() != CUE_SUCCESS)
        return 1;
    CU_pSuite s = CU_add_suite("promql conformance (Prometheus 2.42 testdata)", NULL, NULL);
    CU_add_test(s, "aggregators.test", test_aggregators);
    CU_add_test(s, "at_modifier.test", test_at_modifier);
    CU_add_test(s, "collision.test", test_collision);
    CU_add_test(s, "functions.test", test_functions);
    CU_add_test(s, "histograms.test", test_histograms);
    CU_add_test(s, "literals.test", test_literals);
    CU_add_test(s, "operators.test", test_operators);
    CU_add_test(s, "selectors.test", test_selectors);
    CU_add_test(s, "staleness.test", test_staleness);
    CU_add_test(s, "subquery.test", test_subquery);
    CU_add_test(s, "trig_functions.test", test_trig_functions);
    CU_basic_set_mode(CU_BRM_NORMAL);
    CU_basic_run_tests();
    unsigned fails = CU_get_number_of_failures();
    CU_cleanup_registry();
    return fails ? 1 : 0;
}
