/*
 * promql_eval.c - evaluation of PromQL against the store, as Prometheus
 * 2.42's promql/engine.go and promql/functions.go do it, step by step where
 * the floating-point order matters (rate extrapolation, incremental avg,
 * Kahan sums, Welford variance, Go's math.Pow), so results match promtool
 * to the last bit.
 *
 * Selection rules of 2.42 (engine.go): an instant selector takes the newest
 * sample at or before its reference time and at or after 5m (lookback
 * delta) before it, unless that sample is a staleness marker; a range
 * selector takes the samples in [ref - range, ref], both ends included,
 * stale markers skipped. The reference time is the evaluation time, or the
 * @ time (a timestamp, or the query's start() or end()), minus the offset
 * (which may be negative). A subquery evaluates its expression at the
 * multiples of its step in [ref - range, ref] (engine.go, SubqueryExpr),
 * the default step being the global evaluation_interval for rules (1m,
 * Prometheus's default, for other queries).
 */
#include "mon_internal.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* Prometheus's global evaluation_interval default: a subquery's step
 * when it gives none (noStepSubqueryIntervalFn). */
#define DEFAULT_STEP_MS 60000

#ifndef M_PI
#define M_PI 3.14159265358979323846
#endif

typedef struct {
    const mon_store *store;
    int64_t t;                /* evaluation time; a subquery's step inside one */
    int64_t q_start, q_end;   /* the query's start and end, for @ start()/end() */
    int64_t default_step_ms;  /* a subquery's step when it gives none */
    mon_error *err;
    int failed;
} ctx;

static void fail(ctx *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void fail(ctx *c, const char *fmt, ...)
{
    if (c->failed)
        return;
    c->failed = 1;
    if (c->err) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(c->err->msg, sizeof c->err->msg, fmt, ap);
        va_end(ap);
    }
}

static void rseries_free(mon_rseries *m, int n)
{
    for (int i = 0; i < n; i++) {
        mon_labels_free(&m[i].labels);
        free(m[i].pts);
    }
    free(m);
}

void mon_value_free(mon_value *v)
{
    if (!v)
        return;
    for (int i = 0; i < v->n; i++)
        mon_labels_free(&v->v[i].labels);
    free(v->v);
    rseries_free(v->m, v->nm);
    free(v->str);
    v->v = NULL;
    v->n = 0;
    v->m = NULL;
    v->nm = 0;
    v->str = NULL;
}

/* Takes ls (leaves it empty). */
static void vec_push(mon_value *v, mon_labels *ls, double x)
{
    v->v = mon_xrealloc(v->v, (size_t)(v->n + 1) * sizeof *v->v);
    v->v[v->n].labels = *ls;
    v->v[v->n].v = x;
    v->n++;
    ls->n = 0;
    ls->v = NULL;
}

static void vec_push_copy(mon_value *v, const mon_labels *ls, double x)
{
    mon_labels c;
    mon_labels_copy(&c, ls);
    vec_push(v, &c, x);
}

/* "vector cannot contain metrics with the same labelset" (engine.go). */
static void check_unique(ctx *c, const mon_value *v)
{
    if (v->type != MON_VAL_VECTOR || v->n < 2)
        return;
    mon_map seen = { 0 };
    for (int i = 0; i < v->n && !c->failed; i++) {
        char *k = mon_labels_key(&v->v[i].labels);
        if (mon_map_get(&seen, k))
            fail(c, "vector cannot contain metrics with the same labelset");
        else
            mon_map_put(&seen, k, (void *)1);
        free(k);
    }
    mon_map_free(&seen);
}

static const mon_node *unparen(const mon_node *n)
{
    while (n->kind == MON_N_PAREN)
        n = n->lhs;
    return n;
}

/* The reference time of a selector or subquery: @ or the evaluation
 * time, minus the offset. */
static int64_t ref_time(const ctx *c, const mon_node *n)
{
    int64_t at = n->at == MON_AT_TS      ? n->at_ms
                 : n->at == MON_AT_START ? c->q_start
                 : n->at == MON_AT_END   ? c->q_end
                                         : c->t;
    return at - n->offset_ms;
}

/* ---- Go's numerics ---- */

/* math.Max / math.Min: NaN wins, +0 > -0. */
static double go_max(double x, double y)
{
    if (isinf(x) && x > 0)
        return x;
    if (isinf(y) && y > 0)
        return y;
    if (isnan(x) || isnan(y))
        return NAN;
    if (x == 0 && x == y)
        return signbit(x) ? y : x;
    return x > y ? x : y;
}

static double go_min(double x, double y)
{
    if (isinf(x) && x < 0)
        return x;
    if (isinf(y) && y < 0)
        return y;
    if (isnan(x) || isnan(y))
        return NAN;
    if (x == 0 && x == y)
        return signbit(x) ? x : y;
    return x < y ? x : y;
}

static int is_odd_int(double x)
{
    if (fabs(x) >= 9007199254740992.0) /* 1<<53: every such float is even */
        return 0;
    double xi;
    double xf = modf(x, &xi);
    return xf == 0 && ((int64_t)xi & 1) == 1;
}

/* Go's math.Pow (math/pow.go) step for step: the special cases, then
 * x**yf by exp/log and x**yi by repeated squaring on frexp's mantissa,
 * which gives other last digits than C's correctly rounded pow. */
double mon_go_pow(double x, double y)
{
    if (y == 0 || x == 1)
        return 1;
    if (y == 1)
        return x;
    if (isnan(x) || isnan(y))
        return NAN;
    if (x == 0) {
        if (y < 0)
            return signbit(x) && is_odd_int(y) ? -INFINITY : INFINITY;
        if (y > 0)
            return signbit(x) && is_odd_int(y) ? x : 0;
    }
    if (isinf(y)) {
        if (x == -1)
            return 1;
        if ((fabs(x) < 1) == (y > 0))
            return 0;
        return INFINITY;
    }
    if (isinf(x)) {
        if (x < 0)
            return mon_go_pow(1 / x, -y); /* Pow(-0, -y) */
        if (y < 0)
            return 0;
        if (y > 0)
            return INFINITY;
    }
    if (y == 0.5)
        return sqrt(x);
    if (y == -0.5)
        return 1 / sqrt(x);
    double yi;
    double yf = modf(fabs(y), &yi);
    if (yf != 0 && x < 0)
        return NAN;
    if (yi >= 9223372036854775808.0) {
        if (x == -1)
            return 1;
        if ((fabs(x) < 1) == (y > 0))
            return 0;
        return INFINITY;
    }
    double a1 = 1.0;
    int ae = 0;
    if (yf != 0) {
        if (yf > 0.5) {
            yf--;
            yi++;
        }
        a1 = exp(yf * log(x));
    }
    int xe;
    double x1 = frexp(x, &xe);
    for (int64_t i = (int64_t)yi; i != 0; i >>= 1) {
        if (xe < -(1 << 12) || (1 << 12) < xe) {
            ae += xe;
            break;
        }
        if ((i & 1) == 1) {
            a1 *= x1;
            ae += xe;
        }
        x1 *= x1;
        xe *= 2; /* Go: xe <<= 1, defined for negatives there */
        if (x1 < .5) {
            x1 += x1;
            xe--;
        }
    }
    if (y < 0) {
        a1 = 1 / a1;
        ae = -ae;
    }
    return ldexp(a1, ae);
}

/* strconv.FormatFloat(v, 'f', -1, 64): the shortest digits that read back,
 * never an exponent (count_values). */
char *mon_fmt_f(double v, char *buf, size_t len)
{
    if (isnan(v)) {
        snprintf(buf, len, "NaN");
        return buf;
    }
    if (isinf(v)) {
        snprintf(buf, len, v > 0 ? "+Inf" : "-Inf");
        return buf;
    }
    char e[40];
    for (int p = 1; p <= 17; p++) {
        snprintf(e, sizeof e, "%.*e", p - 1, v);
        if (strtod(e, NULL) == v)
            break;
    }
    /* e: [-]d.ddddde[+-]xx -> fixed */
    char digits[32];
    int nd = 0, neg = e[0] == '-';
    const char *q = e + neg;
    for (; *q && *q != 'e'; q++)
        if (*q != '.')
            digits[nd++] = *q;
    int exp10 = atoi(q + 1);
    while (nd > 1 && digits[nd - 1] == '0')
        nd--;
    char out[400];
    size_t k = 0;
    if (neg)
        out[k++] = '-';
    int point = exp10 + 1; /* digits before the decimal point */
    if (point <= 0) {
        out[k++] = '0';
        out[k++] = '.';
        for (int i = 0; i < -point; i++)
            out[k++] = '0';
        for (int i = 0; i < nd; i++)
            out[k++] = digits[i];
    } else {
        for (int i = 0; i < point; i++)
            out[k++] = i < nd ? digits[i] : '0';
        if (nd > point) {
            out[k++] = '.';
            for (int i = point; i < nd; i++)
                out[k++] = digits[i];
        }
    }
    out[k] = '\0';
    snprintf(buf, len, "%s", out);
    return buf;
}

/* kahanSumInc (functions.go), Neumaier's variant. */
static double kahan_inc(double inc, double sum, double *c)
{
    double t = sum + inc;
    if (fabs(sum) >= fabs(inc))
        *c += (sum - t) + inc;
    else
        *c += (inc - t) + sum;
    return t;
}

/* ---- selectors ---- */

/* The first of se's live points from index `from` on whose time is after
 * t (se->end when none is): points are in time order. */
static size_t first_after(const mon_series *se, size_t from, int64_t t)
{
    size_t a = from, b = se->end;
    while (a < b) {
        size_t m = a + (b - a) / 2;
        if (se->pts[m].t <= t)
            a = m + 1;
        else
            b = m;
    }
    return a;
}

/* Instant selector; *ts (if given) gets each sample's own time. */
static void eval_selector(ctx *c, const mon_node *n, mon_value *out, int64_t **ts)
{
    mon_series **ss;
    size_t k = mon_store_select(c->store, n->matchers, n->n_matchers, &ss);
    int64_t ref = ref_time(c, n);
    int64_t lo = ref - mon_ms(MON_LOOKBACK_S);
    out->type = MON_VAL_VECTOR;
    for (size_t i = 0; i < k; i++) {
        const mon_series *se = ss[i];
        /* newest point <= ref */
        size_t a = first_after(se, se->start, ref);
        if (a == se->start)
            continue;
        const mon_point *p = &se->pts[a - 1];
        if (p->t < lo || mon_is_stale(p->v))
            continue;
        if (ts) {
            *ts = mon_xrealloc(*ts, (size_t)(out->n + 1) * sizeof **ts);
            (*ts)[out->n] = p->t;
        }
        vec_push_copy(out, &se->labels, p->v);
    }
    free(ss);
}

static void matrix_add(mon_value *m, const mon_labels *ls, mon_point *pts, int np)
{
    m->m = mon_xrealloc(m->m, (size_t)(m->nm + 1) * sizeof *m->m);
    mon_labels_copy(&m->m[m->nm].labels, ls);
    m->m[m->nm].pts = pts;
    m->m[m->nm].n = np;
    m->nm++;
}

/* Range selector: the samples in [ref - range, ref]. */
static void eval_matrix(ctx *c, const mon_node *n, mon_value *out)
{
    const mon_node *sel = n->sel;
    mon_series **ss;
    size_t k = mon_store_select(c->store, sel->matchers, sel->n_matchers, &ss);
    int64_t maxt = ref_time(c, sel), mint = maxt - n->range_ms;
    out->type = MON_VAL_MATRIX;
    for (size_t i = 0; i < k; i++) {
        const mon_series *se = ss[i];
        /* the points in [mint, maxt] (times in integer ms: >= mint is
         * > mint - 1), allocated once: a point at a time was quadratic in
         * the range under ASan */
        size_t a = first_after(se, se->start, mint - 1);
        size_t e = first_after(se, a, maxt);
        if (e == a)
            continue;
        mon_point *pts = mon_xrealloc(NULL, (e - a) * sizeof *pts);
        int np = 0;
        for (size_t j = a; j < e; j++)
            if (!mon_is_stale(se->pts[j].v))
                pts[np++] = se->pts[j];
        if (np)
            matrix_add(out, &se->labels, pts, np);
        else
            free(pts);
    }
    free(ss);
}

static void eval_node(ctx *c, const mon_node *n, mon_value *out);

/* Appends an instant result v at ts to the matrix out: each series (a
 * scalar as one series without labels) to the series of out with its
 * labels, found through idx (labels key -> index + 1). */
static void matrix_append(mon_value *out, mon_map *idx, const mon_value *v, int64_t ts)
{
    mon_labels none = { 0, NULL };
    int cnt = v->type == MON_VAL_SCALAR ? 1 : v->n;
    for (int i = 0; i < cnt; i++) {
        const mon_labels *ls = v->type == MON_VAL_SCALAR ? &none : &v->v[i].labels;
        char *key = mon_labels_key(ls);
        intptr_t at = (intptr_t)mon_map_get(idx, key);
        if (!at) {
            matrix_add(out, ls, NULL, 0);
            at = out->nm;
            mon_map_put(idx, key, (void *)at);
        }
        free(key);
        mon_rseries *rs = &out->m[at - 1];
        rs->pts = mon_xrealloc(rs->pts, (size_t)(rs->n + 1) * sizeof *rs->pts);
        rs->pts[rs->n].t = ts;
        rs->pts[rs->n].v = v->type == MON_VAL_SCALAR ? v->scalar : v->v[i].v;
        rs->n++;
    }
}

/* Subquery (engine.go, SubqueryExpr): the expression at the multiples of
 * the step from the first at or after ref - range up to ref. */
static void eval_subquery(ctx *c, const mon_node *n, mon_value *out)
{
    int64_t end = ref_time(c, n);
    int64_t step = n->step_ms ? n->step_ms : c->default_step_ms;
    int64_t lo = end - n->range_ms;
    int64_t start = step * (lo / step); /* Go's division truncates as C's */
    if (start < lo)
        start += step;
    out->type = MON_VAL_MATRIX;
    mon_map idx = { 0 };
    ctx sub = *c;
    for (int64_t ts = start; ts <= end && !sub.failed; ts += step) {
        sub.t = ts;
        mon_value v = { 0 };
        eval_node(&sub, n->lhs, &v);
        if (sub.failed) {
            mon_value_free(&v);
            break;
        }
        matrix_append(out, &idx, &v, ts);
        mon_value_free(&v);
    }
    mon_map_free(&idx);
    if (sub.failed) {
        c->failed = 1;
        mon_value_free(out);
    }
}

/* A range-vector argument (a range selector or a subquery, in parentheses
 * or not): its series and the range they were taken over. */
static void eval_range_arg(ctx *c, const mon_node *n, mon_value *out, int64_t *range_start,
                           int64_t *range_end, int64_t *range_ms)
{
    n = unparen(n);
    memset(out, 0, sizeof *out);
    if (n->kind == MON_N_MATRIX) {
        eval_matrix(c, n, out);
        *range_end = ref_time(c, n->sel);
    } else if (n->kind == MON_N_SUBQ) {
        eval_subquery(c, n, out);
        *range_end = ref_time(c, n);
    } else {
        fail(c, "expected a range vector selector or a subquery");
        return;
    }
    *range_ms = n->range_ms;
    *range_start = *range_end - n->range_ms;
}

/* ---- range functions (promql/functions.go) ---- */

/* extrapolatedRate, float samples only, exactly as functions.go computes it:
 * the counter-reset correction, then extrapolation to the range boundaries
 * when the first/last sample is within 1.1x the average spacing of them
 * (else by half a spacing), never extrapolating a counter below zero. */
static int extrapolated_rate(const mon_rseries *s, int64_t range_start, int64_t range_end,
                             int64_t range_ms, int is_counter, int is_rate, double *out)
{
    if (s->n < 2)
        return 0;
    const mon_point *pts = s->pts;
    double result = pts[s->n - 1].v - pts[0].v;
    if (is_counter) {
        double prev = pts[0].v;
        for (int i = 1; i < s->n; i++) {
            if (pts[i].v < prev)
                result += prev;
            prev = pts[i].v;
        }
    }
    double to_start = (double)(pts[0].t - range_start) / 1000;
    double to_end = (double)(range_end - pts[s->n - 1].t) / 1000;
    double sampled = (double)(pts[s->n - 1].t - pts[0].t) / 1000;
    double avg_gap = sampled / (double)(s->n - 1);
    if (is_counter && result > 0 && pts[0].v >= 0) {
        double to_zero = sampled * (pts[0].v / result);
        if (to_zero < to_start)
            to_start = to_zero;
    }
    double threshold = avg_gap * 1.1;
    double interval = sampled;
    if (to_start < threshold)
        interval += to_start;
    else
        interval += avg_gap / 2;
    if (to_end < threshold)
        interval += to_end;
    else
        interval += avg_gap / 2;
    /* 2.42 folds the division by the range into the factor first; the
     * order changes the last bit (31 * (1/60) != 31/60), and promtool
     * compares exactly. */
    double factor = interval / sampled;
    if (is_rate)
        factor /= (double)range_ms / 1000;
    *out = result * factor;
    return 1;
}

/* instantValue (irate, idelta). */
static int instant_value(const mon_rseries *s, int is_rate, double *out)
{
    if (s->n < 2)
        return 0;
    const mon_point *last = &s->pts[s->n - 1], *prev = &s->pts[s->n - 2];
    double r = is_rate && last->v < prev->v ? last->v : last->v - prev->v;
    int64_t dt = last->t - prev->t;
    if (dt == 0)
        return 0;
    if (is_rate)
        r /= (double)dt / 1000;
    *out = r;
    return 1;
}

/* linearRegression (functions.go): Kahan sums, exact for a constant. */
static void linear_regression(const mon_rseries *s, int64_t intercept_t, double *slope,
                              double *intercept)
{
    double n = 0, sx = 0, cx = 0, sy = 0, cy = 0, sxy = 0, cxy = 0, sx2 = 0, cx2 = 0;
    double init_y = s->pts[0].v;
    int const_y = 1;
    for (int i = 0; i < s->n; i++) {
        double v = s->pts[i].v;
        if (const_y && i > 0 && v != init_y)
            const_y = 0;
        n += 1.0;
        double x = (double)(s->pts[i].t - intercept_t) / 1e3;
        sx = kahan_inc(x, sx, &cx);
        sy = kahan_inc(v, sy, &cy);
        sxy = kahan_inc(x * v, sxy, &cxy);
        sx2 = kahan_inc(x * x, sx2, &cx2);
    }
    if (const_y) {
        if (isinf(init_y)) {
            *slope = *intercept = NAN;
            return;
        }
        *slope = 0;
        *intercept = init_y;
        return;
    }
    sx += cx;
    sy += cy;
    sxy += cxy;
    sx2 += cx2;
    double cov = sxy - sx * sy / n;
    double var = sx2 - sx * sx / n;
    *slope = cov / var;
    *intercept = sy / n - *slope * sx / n;
}

static int value_cmp_nan_first(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    if (isnan(x))
        return isnan(y) ? 0 : -1;
    if (isnan(y))
        return 1;
    return x < y ? -1 : x > y;
}

/* quantile (quantile.go): weighted between the two nearest ranks. Sorts
 * v. */
static double quantile(double q, double *v, int n)
{
    if (n == 0)
        return NAN;
    if (q < 0)
        return -INFINITY;
    if (q > 1)
        return INFINITY;
    qsort(v, (size_t)n, sizeof *v, value_cmp_nan_first);
    double fn = (double)n;
    double rank = q * (fn - 1);
    double lower = go_max(0, floor(rank));
    double upper = go_min(fn - 1, lower + 1);
    double weight = rank - floor(rank);
    if (isnan(lower) || isnan(upper)) /* q NaN: Go's int(NaN) reads index 0 on amd64 */
        return NAN;
    return v[(int)lower] * (1 - weight) + v[(int)upper] * weight;
}

/* holt_winters (functions.go, calcTrendValue). */
static double holt_winters(const mon_rseries *s, double sf, double tf)
{
    double s0 = 0, s1 = s->pts[0].v, b = s->pts[1].v - s->pts[0].v;
    for (int i = 1; i < s->n; i++) {
        double x = sf * s->pts[i].v;
        if (i - 1 != 0)
            b = tf * (s1 - s0) + (1 - tf) * b;
        double y = (1 - sf) * (s1 + b);
        s0 = s1;
        s1 = x + y;
    }
    return s1;
}

/* One series of a range function; 0 when it gives no sample. */
static int range_fn(mon_func_id id, const mon_rseries *s, int64_t range_start, int64_t range_end,
                    int64_t range_ms, int64_t now, const double *sargs, double *out)
{
    const mon_point *p = s->pts;
    switch (id) {
    case MON_F_RATE:
        return extrapolated_rate(s, range_start, range_end, range_ms, 1, 1, out);
    case MON_F_INCREASE:
        return extrapolated_rate(s, range_start, range_end, range_ms, 1, 0, out);
    case MON_F_DELTA:
        return extrapolated_rate(s, range_start, range_end, range_ms, 0, 0, out);
    case MON_F_IRATE:
        return instant_value(s, 1, out);
    case MON_F_IDELTA:
        return instant_value(s, 0, out);
    case MON_F_AVG_OT: {
        /* funcAvgOverTime: incremental mean, guarded against Inf. */
        double mean = 0, count = 0, c = 0;
        for (int i = 0; i < s->n; i++) {
            count++;
            if (isinf(mean)) {
                if (isinf(p[i].v) && (mean > 0) == (p[i].v > 0))
                    continue;
                if (!isinf(p[i].v) && !isnan(p[i].v))
                    continue;
            }
            mean = kahan_inc(p[i].v / count - mean / count, mean, &c);
        }
        *out = isinf(mean) ? mean : mean + c;
        return 1;
    }
    case MON_F_SUM_OT: {
        double sum = 0, c = 0;
        for (int i = 0; i < s->n; i++)
            sum = kahan_inc(p[i].v, sum, &c);
        *out = isinf(sum) ? sum : sum + c;
        return 1;
    }
    case MON_F_MAX_OT: {
        double m = p[0].v;
        for (int i = 0; i < s->n; i++)
            if (p[i].v > m || isnan(m))
                m = p[i].v;
        *out = m;
        return 1;
    }
    case MON_F_MIN_OT: {
        double m = p[0].v;
        for (int i = 0; i < s->n; i++)
            if (p[i].v < m || isnan(m))
                m = p[i].v;
        *out = m;
        return 1;
    }
    case MON_F_COUNT_OT:
        *out = (double)s->n;
        return 1;
    case MON_F_LAST_OT:
        *out = p[s->n - 1].v;
        return 1;
    case MON_F_PRESENT_OT:
        *out = 1;
        return 1;
    case MON_F_QUANTILE_OT: {
        double *v = mon_xrealloc(NULL, (size_t)s->n * sizeof *v);
        for (int i = 0; i < s->n; i++)
            v[i] = p[i].v;
        *out = quantile(sargs[0], v, s->n);
        free(v);
        return 1;
    }
    case MON_F_STDDEV_OT:
    case MON_F_STDVAR_OT: {
        double count = 0, mean = 0, cmean = 0, aux = 0, caux = 0;
        for (int i = 0; i < s->n; i++) {
            count++;
            double delta = p[i].v - (mean + cmean);
            mean = kahan_inc(delta / count, mean, &cmean);
            aux = kahan_inc(delta * (p[i].v - (mean + cmean)), aux, &caux);
        }
        *out = (aux + caux) / count;
        if (id == MON_F_STDDEV_OT)
            *out = sqrt(*out);
        return 1;
    }
    case MON_F_CHANGES:
    case MON_F_RESETS: {
        int k = 0;
        double prev = p[0].v;
        for (int i = 1; i < s->n; i++) {
            double cur = p[i].v;
            if (id == MON_F_RESETS ? cur < prev : (cur != prev && !(isnan(cur) && isnan(prev))))
                k++;
            prev = cur;
        }
        *out = k;
        return 1;
    }
    case MON_F_DERIV: {
        if (s->n < 2)
            return 0;
        double slope, icpt;
        linear_regression(s, p[0].t, &slope, &icpt);
        *out = slope;
        return 1;
    }
    case MON_F_PREDICT_LINEAR: {
        if (s->n < 2)
            return 0;
        double slope, icpt;
        linear_regression(s, now, &slope, &icpt);
        *out = slope * sargs[0] + icpt;
        return 1;
    }
    case MON_F_HOLT_WINTERS:
        if (s->n < 2)
            return 0;
        *out = holt_winters(s, sargs[0], sargs[1]);
        return 1;
    default:
        return 0;
    }
}

/* createLabelsForAbsentFunction (functions.go). */
static void absent_labels(const mon_node *arg, mon_labels *out)
{
    out->n = 0;
    out->v = NULL;
    arg = unparen(arg);
    const mon_node *sel = arg->kind == MON_N_SEL ? arg : arg->kind == MON_N_MATRIX ? arg->sel : NULL;
    if (!sel)
        return;
    mon_labels has = { 0, NULL };
    for (int i = 0; i < sel->n_matchers; i++) {
        const mon_matcher *m = &sel->matchers[i];
        if (!strcmp(m->name, MON_NAME))
            continue;
        if (m->type == MON_M_EQ && !*mon_labels_get(&has, m->name)) {
            mon_labels_set(out, m->name, m->value);
            mon_labels_set(&has, m->name, "x");
        } else {
            mon_labels_del(out, m->name);
        }
    }
    mon_labels_free(&has);
}

/* A function with a range-vector argument (functions.go via engine.go's
 * matrix path): one output sample per series with samples in the range,
 * the metric name dropped except by last_over_time. */
static void eval_range_call(ctx *c, const mon_node *n, mon_value *out)
{
    mon_func_id id = n->fn->id;
    int mi = id == MON_F_QUANTILE_OT ? 1 : 0;
    double sargs[2] = { 0, 0 };
    int ns = 0;
    for (int i = 0; i < n->n_args && !c->failed; i++) {
        if (i == mi)
            continue;
        mon_value a = { 0 };
        eval_node(c, n->args[i], &a);
        sargs[ns++] = a.scalar;
        mon_value_free(&a);
    }
    if (c->failed)
        return;
    if (id == MON_F_HOLT_WINTERS) {
        if (sargs[0] <= 0 || sargs[0] >= 1) {
            fail(c, "invalid smoothing factor. Expected: 0 < sf < 1, got: %f", sargs[0]);
            return;
        }
        if (sargs[1] <= 0 || sargs[1] >= 1) {
            fail(c, "invalid trend factor. Expected: 0 < tf < 1, got: %f", sargs[1]);
            return;
        }
    }
    mon_value m;
    int64_t rs = 0, re = 0, rms = 0;
    eval_range_arg(c, n->args[mi], &m, &rs, &re, &rms);
    if (c->failed) {
        mon_value_free(&m);
        return;
    }
    if (id == MON_F_ABSENT_OT) {
        if (m.nm == 0) {
            mon_labels ls;
            absent_labels(n->args[0], &ls);
            vec_push(out, &ls, 1);
        }
        mon_value_free(&m);
        return;
    }
    for (int i = 0; i < m.nm; i++) {
        double v;
        if (!range_fn(id, &m.m[i], rs, re, rms, c->t, sargs, &v))
            continue;
        mon_labels ls = m.m[i].labels;
        m.m[i].labels.n = 0;
        m.m[i].labels.v = NULL;
        if (id != MON_F_LAST_OT)
            mon_labels_del(&ls, MON_NAME);
        vec_push(out, &ls, v);
    }
    mon_value_free(&m);
    check_unique(c, out);
}

/* ---- histogram_quantile (promql/quantile.go bucketQuantile) ---- */

typedef struct {
    double upper, count;
} bucket;

static int bucket_cmp(const void *a, const void *b)
{
    double x = ((const bucket *)a)->upper, y = ((const bucket *)b)->upper;
    return x < y ? -1 : x > y;
}

double mon_bucket_quantile(double q, bucket *b, int n);
double mon_bucket_quantile(double q, bucket *b, int n)
{
    if (isnan(q))
        return NAN;
    if (q < 0)
        return -INFINITY;
    if (q > 1)
        return INFINITY;
    qsort(b, (size_t)n, sizeof *b, bucket_cmp);
    if (!n || !isinf(b[n - 1].upper) || b[n - 1].upper < 0)
        return NAN;
    /* coalesceBuckets: merge buckets with the same upper bound */
    int k = 0;
    bucket last = b[0];
    for (int i = 1; i < n; i++) {
        if (b[i].upper == last.upper) {
            last.count += b[i].count;
        } else {
            b[k++] = last;
            last = b[i];
        }
    }
    b[k++] = last;
    n = k;
    /* ensureMonotonic */
    double max = -INFINITY;
    for (int i = 0; i < n; i++) {
        if (b[i].count > max)
            max = b[i].count;
        else if (b[i].count < max)
            b[i].count = max;
    }
    if (n < 2)
        return NAN;
    double observations = b[n - 1].count;
    if (observations == 0)
        return NAN;
    double rank = q * observations;
    /* sort.Search over the first n-1 buckets: first with count >= rank */
    int lo = 0, hi = n - 1;
    while (lo < hi) {
        int m = lo + (hi - lo) / 2;
        if (b[m].count >= rank)
            hi = m;
        else
            lo = m + 1;
    }
    int i = lo;
    if (i == n - 1)
        return b[n - 2].upper;
    if (i == 0 && b[0].upper <= 0)
        return b[0].upper;
    double start = 0, end = b[i].upper, count = b[i].count;
    if (i > 0) {
        start = b[i - 1].upper;
        count -= b[i - 1].count;
        rank -= b[i - 1].count;
    }
    return start + (end - start) * (rank / count);
}

/* le as strconv.ParseFloat reads it ("+Inf", "1e3", "0x1p3"; not " 1"). */
static int parse_le(const char *s, double *out)
{
    const char *why;
    return mon_go_float(s, out, &why);
}

static void histogram_quantile(double q, mon_value *in, mon_value *out)
{
    mon_map groups = { 0 };
    typedef struct {
        mon_labels labels;
        bucket *b;
        int n;
    } hist;
    hist *hs = NULL;
    int nh = 0;
    for (int i = 0; i < in->n; i++) {
        double le;
        if (parse_le(mon_labels_get(&in->v[i].labels, "le"), &le))
            continue;
        mon_labels ls;
        mon_labels_copy(&ls, &in->v[i].labels);
        mon_labels_del(&ls, "le");
        char *key = mon_labels_key(&ls);
        intptr_t at = (intptr_t)mon_map_get(&groups, key);
        if (!at) {
            hs = mon_xrealloc(hs, (size_t)(nh + 1) * sizeof *hs);
            mon_labels_del(&ls, MON_NAME);
            hs[nh].labels = ls;
            hs[nh].b = NULL;
            hs[nh].n = 0;
            at = ++nh;
            mon_map_put(&groups, key, (void *)at);
        } else {
            mon_labels_free(&ls);
        }
        free(key);
        hist *h = &hs[at - 1];
        h->b = mon_xrealloc(h->b, (size_t)(h->n + 1) * sizeof *h->b);
        h->b[h->n].upper = le;
        h->b[h->n].count = in->v[i].v;
        h->n++;
    }
    for (int i = 0; i < nh; i++) {
        double v = mon_bucket_quantile(q, hs[i].b, hs[i].n);
        vec_push(out, &hs[i].labels, v);
        free(hs[i].b);
    }
    free(hs);
    mon_map_free(&groups);
}

/* ---- aggregation (engine.go aggregation) ---- */

typedef struct {
    mon_labels labels;
    double value, mean;
    int count;
    /* topk, bottomk: a heap of input indexes; quantile: the values */
    int *heap;
    int nheap;
    double *vals;
    int nvals;
} group;

/* container/heap over input indexes, ordered by less(). topk keeps a
 * min-heap (vectorByValueHeap: NaN least), bottomk a max-heap
 * (vectorByReverseValueHeap: NaN greatest there, i.e. least of its
 * order). */
typedef struct {
    const mon_value *in;
    int reverse;
} heap_ord;

static int heap_less(const heap_ord *o, int a, int b)
{
    double x = o->in->v[a].v, y = o->in->v[b].v;
    if (isnan(x))
        return 1;
    return o->reverse ? x > y : x < y;
}

static void heap_up(const heap_ord *o, int *h, int j)
{
    for (;;) {
        int i = (j - 1) / 2;
        if (i == j || !heap_less(o, h[j], h[i]))
            break;
        int t = h[i];
        h[i] = h[j];
        h[j] = t;
        j = i;
    }
}

static void heap_down(const heap_ord *o, int *h, int i0, int n)
{
    int i = i0;
    for (;;) {
        int j1 = 2 * i + 1;
        if (j1 >= n || j1 < 0)
            break;
        int j = j1;
        int j2 = j1 + 1;
        if (j2 < n && heap_less(o, h[j2], h[j1]))
            j = j2;
        if (!heap_less(o, h[j], h[i]))
            break;
        int t = h[i];
        h[i] = h[j];
        h[j] = t;
        i = j;
    }
}

static const heap_ord *sort_ord;
/* sort.Sort(sort.Reverse(heap)): by !less, ties keep input order. */
static int heap_sort_cmp(const void *a, const void *b)
{
    int x = *(const int *)a, y = *(const int *)b;
    if (heap_less(sort_ord, y, x))
        return -1;
    if (heap_less(sort_ord, x, y))
        return 1;
    return x < y ? -1 : x > y;
}

static void eval_agg(ctx *c, const mon_node *n, mon_value *out)
{
    out->type = MON_VAL_VECTOR;
    mon_value in = { 0 }, par = { 0 };
    if (n->param)
        eval_node(c, n->param, &par);
    if (!c->failed)
        eval_node(c, n->lhs, &in);
    if (c->failed)
        goto done;
    int64_t k = 0;
    double q = 0;
    const char *value_label = NULL;
    switch (n->agg) {
    case MON_AGG_TOPK:
    case MON_AGG_BOTTOMK:
        /* convertibleToInt64 */
        if (isnan(par.scalar) || par.scalar > 9223372036854774784.0 ||
            par.scalar < -9223372036854775808.0) {
            fail(c, "Scalar value %s overflows int64", isnan(par.scalar) ? "NaN" : "out of range");
            goto done;
        }
        k = (int64_t)par.scalar;
        if (k < 1)
            goto done;
        break;
    case MON_AGG_QUANTILE:
        q = par.scalar;
        break;
    case MON_AGG_COUNT_VALUES:
        value_label = par.str;
        if (!mon_valid_label_name(value_label)) {
            fail(c, "invalid label name \"%s\"", value_label);
            goto done;
        }
        break;
    default:
        break;
    }
    mon_map idx = { 0 };
    group *g = NULL;
    int ng = 0;
    heap_ord ord = { &in, n->agg == MON_AGG_BOTTOMK };
    for (int i = 0; i < in.n; i++) {
        mon_labels metric;
        mon_labels_copy(&metric, &in.v[i].labels);
        if (value_label) {
            char vb[400];
            mon_fmt_f(in.v[i].v, vb, sizeof vb);
            mon_labels_set(&metric, value_label, vb);
        }
        mon_labels ls;
        mon_labels_copy(&ls, &metric);
        if (n->without) {
            for (int j = 0; j < n->n_grouping; j++)
                mon_labels_del(&ls, n->grouping[j]);
            mon_labels_del(&ls, MON_NAME);
        } else {
            /* by (...): count_values keeps its label too */
            int ngr = n->n_grouping;
            char **gr = mon_xrealloc(NULL, (size_t)(ngr + 1) * sizeof *gr);
            for (int j = 0; j < ngr; j++)
                gr[j] = n->grouping[j];
            if (value_label)
                gr[ngr++] = (char *)value_label;
            mon_labels_keep(&ls, gr, ngr);
            free(gr);
        }
        mon_labels_free(&metric);
        char *key = mon_labels_key(&ls);
        intptr_t at = (intptr_t)mon_map_get(&idx, key);
        double v = in.v[i].v;
        if (!at) {
            g = mon_xrealloc(g, (size_t)(ng + 1) * sizeof *g);
            g[ng] = (group){ .labels = ls, .value = v, .mean = v, .count = 1 };
            group *gr = &g[ng];
            switch (n->agg) {
            case MON_AGG_STDDEV:
            case MON_AGG_STDVAR:
                gr->value = 0;
                break;
            case MON_AGG_TOPK:
            case MON_AGG_BOTTOMK:
                gr->heap = mon_xrealloc(NULL, (size_t)(k < in.n ? k : in.n) * sizeof *gr->heap);
                gr->heap[0] = i;
                gr->nheap = 1;
                break;
            case MON_AGG_QUANTILE:
                gr->vals = mon_xrealloc(NULL, (size_t)in.n * sizeof *gr->vals);
                gr->vals[0] = v;
                gr->nvals = 1;
                break;
            case MON_AGG_GROUP:
                gr->value = 1;
                break;
            default:
                break;
            }
            at = ++ng;
            mon_map_put(&idx, key, (void *)at);
            free(key);
            continue;
        }
        free(key);
        mon_labels_free(&ls);
        group *gr = &g[at - 1];
        switch (n->agg) {
        case MON_AGG_SUM:
            gr->value += v;
            break;
        case MON_AGG_AVG:
            /* incremental mean, dividing each term by the count */
            gr->count++;
            if (isinf(gr->mean)) {
                if (isinf(v) && (gr->mean > 0) == (v > 0))
                    break;
                if (!isinf(v) && !isnan(v))
                    break;
            }
            gr->mean += v / gr->count - gr->mean / gr->count;
            break;
        case MON_AGG_GROUP:
            break;
        case MON_AGG_COUNT:
        case MON_AGG_COUNT_VALUES:
            gr->count++;
            break;
        case MON_AGG_MAX:
            if (gr->value < v || isnan(gr->value))
                gr->value = v;
            break;
        case MON_AGG_MIN:
            if (gr->value > v || isnan(gr->value))
                gr->value = v;
            break;
        case MON_AGG_STDDEV:
        case MON_AGG_STDVAR: {
            gr->count++;
            double delta = v - gr->mean;
            gr->mean += delta / gr->count;
            gr->value += delta * (v - gr->mean);
            break;
        }
        case MON_AGG_TOPK:
        case MON_AGG_BOTTOMK: {
            double top = in.v[gr->heap[0]].v;
            int better = n->agg == MON_AGG_TOPK ? top < v : top > v;
            if ((int64_t)gr->nheap < k || better || isnan(top)) {
                if ((int64_t)gr->nheap == k) {
                    if (k == 1) {
                        gr->heap[0] = i;
                        break;
                    }
                    /* heap.Pop */
                    int last = gr->nheap - 1;
                    int t = gr->heap[0];
                    gr->heap[0] = gr->heap[last];
                    gr->heap[last] = t;
                    heap_down(&ord, gr->heap, 0, last);
                    gr->nheap--;
                }
                gr->heap[gr->nheap++] = i; /* heap.Push */
                heap_up(&ord, gr->heap, gr->nheap - 1);
            }
            break;
        }
        case MON_AGG_QUANTILE:
            gr->vals[gr->nvals++] = v;
            break;
        }
    }
    for (int i = 0; i < ng; i++) {
        group *gr = &g[i];
        double v = gr->value;
        switch (n->agg) {
        case MON_AGG_AVG:
            v = gr->mean;
            break;
        case MON_AGG_COUNT:
        case MON_AGG_COUNT_VALUES:
            v = gr->count;
            break;
        case MON_AGG_STDVAR:
            v = gr->value / gr->count;
            break;
        case MON_AGG_STDDEV:
            v = sqrt(gr->value / gr->count);
            break;
        case MON_AGG_QUANTILE:
            v = quantile(q, gr->vals, gr->nvals);
            free(gr->vals);
            break;
        case MON_AGG_TOPK:
        case MON_AGG_BOTTOMK:
            sort_ord = &ord;
            qsort(gr->heap, (size_t)gr->nheap, sizeof *gr->heap, heap_sort_cmp);
            for (int j = 0; j < gr->nheap; j++)
                vec_push_copy(out, &in.v[gr->heap[j]].labels, in.v[gr->heap[j]].v);
            free(gr->heap);
            mon_labels_free(&gr->labels);
            continue;
        default:
            break;
        }
        vec_push(out, &gr->labels, v);
    }
    free(g);
    mon_map_free(&idx);
    check_unique(c, out);
done:
    mon_value_free(&in);
    mon_value_free(&par);
}

/* ---- binary operators ---- */

static int is_cmp(mon_binop op)
{
    return op >= MON_OP_EQ && op <= MON_OP_LE;
}

/* vectorElemBinop: value and whether a comparison holds. */
static double elem_binop(mon_binop op, double l, double r, int *keep)
{
    *keep = 1;
    switch (op) {
    case MON_OP_ADD: return l + r;
    case MON_OP_SUB: return l - r;
    case MON_OP_MUL: return l * r;
    case MON_OP_DIV: return l / r;
    case MON_OP_POW: return mon_go_pow(l, r);
    case MON_OP_MOD: return fmod(l, r);
    case MON_OP_ATAN2: return atan2(l, r);
    case MON_OP_EQ: *keep = l == r; return l;
    case MON_OP_NE: *keep = l != r; return l;
    case MON_OP_GT: *keep = l > r; return l;
    case MON_OP_LT: *keep = l < r; return l;
    case MON_OP_GE: *keep = l >= r; return l;
    case MON_OP_LE: *keep = l <= r; return l;
    default: return NAN;
    }
}

/* shouldDropMetricName: arithmetic, not comparisons and not atan2. */
static int drops_name(mon_binop op)
{
    return op >= MON_OP_ADD && op != MON_OP_ATAN2;
}

static void vector_scalar(const mon_node *n, mon_value *vec, double s, int swap, mon_value *out)
{
    out->type = MON_VAL_VECTOR;
    for (int i = 0; i < vec->n; i++) {
        double l = vec->v[i].v, r = s;
        if (swap) {
            l = s;
            r = vec->v[i].v;
        }
        int keep;
        double v = elem_binop(n->op, l, r, &keep);
        if (is_cmp(n->op) && swap)
            v = r;
        if (n->return_bool) {
            v = keep ? 1.0 : 0.0;
            keep = 1;
        }
        if (!keep)
            continue;
        mon_labels ls = vec->v[i].labels;
        vec->v[i].labels.n = 0;
        vec->v[i].labels.v = NULL;
        if (drops_name(n->op) || n->return_bool)
            mon_labels_del(&ls, MON_NAME);
        vec_push(out, &ls, v);
    }
}

static char *sig_of(const mon_node *n, const mon_labels *ls)
{
    return mon_labels_sig(ls, n->on, n->match_labels, n->n_match);
}

/* VectorAnd, VectorOr, VectorUnless (engine.go). */
static void set_op(const mon_node *n, mon_value *l, mon_value *r, mon_value *out)
{
    out->type = MON_VAL_VECTOR;
    mon_map sigs = { 0 };
    mon_value *other = n->op == MON_OP_OR ? l : r;
    for (int i = 0; i < other->n; i++) {
        char *k = sig_of(n, &other->v[i].labels);
        mon_map_put(&sigs, k, (void *)1);
        free(k);
    }
    for (int i = 0; i < l->n; i++) {
        int take = 1;
        if (n->op != MON_OP_OR) {
            char *k = sig_of(n, &l->v[i].labels);
            int found = mon_map_get(&sigs, k) != NULL;
            free(k);
            take = n->op == MON_OP_AND ? found : !found;
        }
        if (take)
            vec_push(out, &l->v[i].labels, l->v[i].v);
    }
    if (n->op == MON_OP_OR)
        for (int i = 0; i < r->n; i++) {
            char *k = sig_of(n, &r->v[i].labels);
            if (!mon_map_get(&sigs, k))
                vec_push(out, &r->v[i].labels, r->v[i].v);
            free(k);
        }
    mon_map_free(&sigs);
}

/* resultMetric (engine.go). */
static void result_metric(const mon_node *n, const mon_labels *lhs, const mon_labels *rhs,
                          mon_labels *out)
{
    mon_labels_copy(out, lhs);
    if (drops_name(n->op))
        mon_labels_del(out, MON_NAME);
    if (n->card == MON_CARD_ONE_TO_ONE) {
        if (n->on) {
            mon_labels_keep(out, n->match_labels, n->n_match);
        } else {
            for (int i = 0; i < n->n_match; i++)
                mon_labels_del(out, n->match_labels[i]);
        }
    }
    for (int i = 0; i < n->n_include; i++)
        mon_labels_set(out, n->include[i], mon_labels_get(rhs, n->include[i]));
}

/* The labels a match group is made of, as Prometheus prints them in the
 * duplicate-series error (Labels.MatchLabels). */
static void match_labels(const mon_node *n, const mon_labels *ls, mon_labels *out)
{
    mon_labels_copy(out, ls);
    if (n->on) {
        mon_labels_keep(out, n->match_labels, n->n_match);
    } else {
        for (int i = 0; i < n->n_match; i++)
            mon_labels_del(out, n->match_labels[i]);
        mon_labels_del(out, MON_NAME);
    }
}

/* VectorBinop (engine.go): one-to-one, or many-to-one/one-to-many with
 * group_left/group_right, errors for the ambiguous cases as Prometheus
 * words them; an empty side matches nothing. */
static void vector_vector(ctx *c, const mon_node *n, mon_value *l, mon_value *r, mon_value *out)
{
    out->type = MON_VAL_VECTOR;
    if (l->n == 0 || r->n == 0)
        return; /* short-circuit: nothing is going to match */
    if (n->card == MON_CARD_ONE_TO_MANY) {
        mon_value *t = l;
        l = r;
        r = t;
    }
    mon_map right = { 0 };
    char buf[512], buf2[512], buf3[512];
    for (int i = 0; i < r->n && !c->failed; i++) {
        char *k = sig_of(n, &r->v[i].labels);
        intptr_t dup = (intptr_t)mon_map_get(&right, k);
        if (dup) {
            mon_labels ml;
            match_labels(n, &r->v[i].labels, &ml);
            fail(c, "found duplicate series for the match group %s on the %s hand-side of the "
                    "operation: [%s, %s];many-to-many matching not allowed: matching labels "
                    "must be unique on one side",
                 mon_labels_str(&ml, buf3, sizeof buf3),
                 n->card == MON_CARD_ONE_TO_MANY ? "left" : "right",
                 mon_labels_str(&r->v[i].labels, buf, sizeof buf),
                 mon_labels_str(&r->v[dup - 1].labels, buf2, sizeof buf2));
            mon_labels_free(&ml);
        } else {
            mon_map_put(&right, k, (void *)(intptr_t)(i + 1));
        }
        free(k);
    }
    mon_map matched = { 0 }; /* sig -> 1, or sig + result key -> 1 */
    for (int i = 0; i < l->n && !c->failed; i++) {
        char *k = sig_of(n, &l->v[i].labels);
        intptr_t at = (intptr_t)mon_map_get(&right, k);
        if (!at) {
            free(k);
            continue;
        }
        const mon_sample *rs = &r->v[at - 1];
        double vl = l->v[i].v, vr = rs->v;
        if (n->card == MON_CARD_ONE_TO_MANY) {
            vl = rs->v;
            vr = l->v[i].v;
        }
        int keep;
        double v = elem_binop(n->op, vl, vr, &keep);
        if (n->return_bool) {
            v = keep ? 1.0 : 0.0;
        } else if (!keep) {
            free(k);
            continue;
        }
        mon_labels m;
        result_metric(n, &l->v[i].labels, &rs->labels, &m);
        if (n->return_bool)
            mon_labels_del(&m, MON_NAME);
        if (n->card == MON_CARD_ONE_TO_ONE) {
            if (mon_map_get(&matched, k))
                fail(c, "multiple matches for labels: many-to-one matching must be explicit "
                        "(group_left/group_right)");
            mon_map_put(&matched, k, (void *)1);
        } else {
            char *mk = mon_labels_key(&m);
            size_t len = strlen(k) + strlen(mk) + 2;
            char *both = mon_xrealloc(NULL, len);
            snprintf(both, len, "%s\x01%s", k, mk);
            if (mon_map_get(&matched, both))
                fail(c, "multiple matches for labels: grouping labels must ensure unique matches");
            mon_map_put(&matched, both, (void *)1);
            free(both);
            free(mk);
        }
        free(k);
        vec_push(out, &m, v);
    }
    mon_map_free(&right);
    mon_map_free(&matched);
}

static void eval_bin(ctx *c, const mon_node *n, mon_value *out)
{
    mon_value l = { 0 }, r = { 0 };
    eval_node(c, n->lhs, &l);
    if (!c->failed)
        eval_node(c, n->rhs, &r);
    if (c->failed)
        goto done;
    if (l.type == MON_VAL_SCALAR && r.type == MON_VAL_SCALAR) {
        int keep;
        double v = elem_binop(n->op, l.scalar, r.scalar, &keep);
        out->type = MON_VAL_SCALAR;
        out->scalar = is_cmp(n->op) ? (keep ? 1.0 : 0.0) : v;
    } else if (l.type == MON_VAL_VECTOR && r.type == MON_VAL_SCALAR) {
        vector_scalar(n, &l, r.scalar, 0, out);
    } else if (l.type == MON_VAL_SCALAR) {
        vector_scalar(n, &r, l.scalar, 1, out);
    } else if (n->op <= MON_OP_UNLESS) {
        set_op(n, &l, &r, out);
    } else {
        vector_vector(c, n, &l, &r, out);
    }
    check_unique(c, out);
done:
    mon_value_free(&l);
    mon_value_free(&r);
}

/* ---- calls ---- */

/* Civil date of a Unix day (days since 1970-01-01), proleptic Gregorian
 * as Go's time package (H. Hinnant's days_from_civil inverse). */
static void civil(int64_t days, int64_t *y, int *m, int *d)
{
    days += 719468;
    int64_t era = (days >= 0 ? days : days - 146096) / 146097;
    int64_t doe = days - era * 146097;
    int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    int64_t mp = (5 * doy + 2) / 153;
    *d = (int)(doy - (153 * mp + 2) / 5 + 1);
    *m = (int)(mp < 10 ? mp + 3 : mp - 9);
    *y = yoe + era * 400 + (*m <= 2);
}

static int is_leap(int64_t y)
{
    return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

/* dateWrapper's functions of time.Unix(int64(v), 0).UTC(). */
static double date_fn(mon_func_id id, double v)
{
    /* Go's int64(float) on amd64: NaN and out-of-range give MinInt64 */
    int64_t sec = (isnan(v) || v >= 9223372036854775807.0 || v < -9223372036854775807.0)
                      ? INT64_MIN
                      : (int64_t)v;
    int64_t days = sec / 86400, rem = sec % 86400;
    if (rem < 0) {
        rem += 86400;
        days--;
    }
    int64_t y;
    int m, d;
    civil(days, &y, &m, &d);
    static const int mdays[] = { 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 };
    switch (id) {
    case MON_F_DAYS_IN_MONTH:
        return m == 2 && is_leap(y) ? 29 : mdays[m - 1];
    case MON_F_DAY_OF_MONTH:
        return d;
    case MON_F_DAY_OF_WEEK: {
        int64_t w = (days + 4) % 7; /* 1970-01-01 was a Thursday */
        return (double)(w < 0 ? w + 7 : w);
    }
    case MON_F_DAY_OF_YEAR: {
        int doy = d;
        for (int i = 0; i < m - 1; i++)
            doy += mdays[i] + (i == 1 && is_leap(y));
        return doy;
    }
    case MON_F_HOUR:
        return (double)(rem / 3600);
    case MON_F_MINUTE:
        return (double)(rem % 3600 / 60);
    case MON_F_MONTH:
        return m;
    case MON_F_YEAR:
        return (double)y;
    default:
        return NAN;
    }
}

static double simple_fn(mon_func_id id, double v)
{
    switch (id) {
    case MON_F_ABS: return fabs(v);
    case MON_F_CEIL: return ceil(v);
    case MON_F_FLOOR: return floor(v);
    case MON_F_EXP: return exp(v);
    case MON_F_SQRT: return sqrt(v);
    case MON_F_LN: return log(v);
    case MON_F_LOG2: return log2(v);
    case MON_F_LOG10: return log10(v);
    case MON_F_SIN: return sin(v);
    case MON_F_COS: return cos(v);
    case MON_F_TAN: return tan(v);
    case MON_F_ASIN: return asin(v);
    case MON_F_ACOS: return acos(v);
    case MON_F_ATAN: return atan(v);
    case MON_F_SINH: return sinh(v);
    case MON_F_COSH: return cosh(v);
    case MON_F_TANH: return tanh(v);
    case MON_F_ASINH: return asinh(v);
    case MON_F_ACOSH: return acosh(v);
    case MON_F_ATANH: return atanh(v);
    case MON_F_RAD: return v * M_PI / 180;
    case MON_F_DEG: return v * 180 / M_PI;
    case MON_F_SGN: return v < 0 ? -1 : v > 0 ? 1 : v;
    default: return NAN;
    }
}

static int is_range_fn(mon_func_id id)
{
    return (id >= MON_F_RATE && id <= MON_F_HOLT_WINTERS);
}

/* sort / sort_desc: by value, NaN last, ties in input order. */
static int sort_desc_flag;
static int sample_cmp(const void *a, const void *b)
{
    const mon_sample *x = a, *y = b;
    int xn = isnan(x->v), yn = isnan(y->v);
    if (xn || yn)
        return xn - yn;
    if (x->v == y->v)
        return 0;
    return (x->v < y->v) != sort_desc_flag ? -1 : 1;
}

static void stable_sort(mon_sample *v, int n, int desc)
{
    /* insertion sort keeps ties in order; vectors here are small */
    sort_desc_flag = desc;
    for (int i = 1; i < n; i++) {
        mon_sample t = v[i];
        int j = i - 1;
        while (j >= 0 && sample_cmp(&v[j], &t) > 0) {
            v[j + 1] = v[j];
            j--;
        }
        v[j + 1] = t;
    }
}

static void eval_label_fn(ctx *c, const mon_node *n, mon_value *vec, mon_value *out)
{
    mon_func_id id = n->fn->id;
    const char *dst = unparen(n->args[1])->str;
    if (id == MON_F_LABEL_REPLACE) {
        const char *repl = unparen(n->args[2])->str, *src = unparen(n->args[3])->str;
        const char *re_s = unparen(n->args[4])->str;
        char why[200];
        mon_re *re = mon_re_compile(re_s, why, sizeof why);
        if (!re) {
            fail(c, "invalid regular expression in label_replace(): %s", re_s);
            return;
        }
        if (!mon_valid_label_name(dst)) {
            mon_re_free(re);
            fail(c, "invalid destination label name in label_replace(): %s", dst);
            return;
        }
        for (int i = 0; i < vec->n; i++) {
            mon_labels *ls = &vec->v[i].labels;
            char *res;
            if (mon_re_expand(re, mon_labels_get(ls, src), repl, &res)) {
                mon_labels_set(ls, dst, *res ? res : NULL);
                free(res);
            }
            vec_push(out, ls, vec->v[i].v);
        }
        mon_re_free(re);
        return;
    }
    /* label_join */
    const char *sep = unparen(n->args[2])->str;
    for (int j = 3; j < n->n_args; j++)
        if (!mon_valid_label_name(unparen(n->args[j])->str)) {
            fail(c, "invalid source label name in label_join(): %s", unparen(n->args[j])->str);
            return;
        }
    if (!mon_valid_label_name(dst)) {
        fail(c, "invalid destination label name in label_join(): %s", dst);
        return;
    }
    for (int i = 0; i < vec->n; i++) {
        mon_labels *ls = &vec->v[i].labels;
        size_t len = 1;
        for (int j = 3; j < n->n_args; j++)
            len += strlen(mon_labels_get(ls, unparen(n->args[j])->str)) + strlen(sep);
        char *joined = mon_xrealloc(NULL, len);
        joined[0] = '\0';
        for (int j = 3; j < n->n_args; j++) {
            if (j > 3)
                strcat(joined, sep);
            strcat(joined, mon_labels_get(ls, unparen(n->args[j])->str));
        }
        mon_labels_set(ls, dst, *joined ? joined : NULL);
        free(joined);
        vec_push(out, ls, vec->v[i].v);
    }
}

static void eval_call(ctx *c, const mon_node *n, mon_value *out)
{
    out->type = MON_VAL_VECTOR;
    mon_func_id id = n->fn->id;
    if (is_range_fn(id)) {
        eval_range_call(c, n, out);
        return;
    }
    switch (id) {
    case MON_F_TIME:
        out->type = MON_VAL_SCALAR;
        out->scalar = (double)c->t / 1000.0;
        return;
    case MON_F_PI:
        out->type = MON_VAL_SCALAR;
        out->scalar = M_PI;
        return;
    case MON_F_TIMESTAMP: {
        /* a selector's samples keep their own time; anything else is at
         * the evaluation time */
        const mon_node *a = unparen(n->args[0]);
        mon_value v = { 0 };
        int64_t *ts = NULL;
        if (a->kind == MON_N_SEL)
            eval_selector(c, a, &v, &ts);
        else
            eval_node(c, a, &v);
        for (int i = 0; i < v.n && !c->failed; i++) {
            mon_labels_del(&v.v[i].labels, MON_NAME);
            vec_push(out, &v.v[i].labels, (double)(ts ? ts[i] : c->t) / 1000.0);
        }
        free(ts);
        mon_value_free(&v);
        check_unique(c, out);
        return;
    }
    default:
        break;
    }
    /* the other arguments: the vector (if any) first, then the scalars */
    mon_value vec = { 0 };
    double sargs[3] = { 0, 0, 0 };
    int ns = 0, have_vec = 0;
    for (int i = 0; i < n->n_args && !c->failed; i++) {
        mon_type t = mon_node_type(n->args[i]);
        if (t == MON_T_STRING)
            continue;
        mon_value a = { 0 };
        eval_node(c, n->args[i], &a);
        if (t == MON_T_VECTOR && !have_vec) {
            vec = a;
            have_vec = 1;
            continue;
        }
        if (ns < 3)
            sargs[ns++] = a.scalar;
        mon_value_free(&a);
    }
    if (c->failed)
        goto done;
    switch (id) {
    case MON_F_VECTOR: {
        mon_labels none = { 0, NULL };
        vec_push(out, &none, sargs[0]);
        break;
    }
    case MON_F_SCALAR:
        out->type = MON_VAL_SCALAR;
        out->scalar = vec.n == 1 ? vec.v[0].v : NAN;
        break;
    case MON_F_ABSENT:
        if (vec.n == 0) {
            mon_labels ls;
            absent_labels(n->args[0], &ls);
            vec_push(out, &ls, 1);
        }
        break;
    case MON_F_HQUANTILE:
        histogram_quantile(sargs[0], &vec, out);
        break;
    case MON_F_SORT:
    case MON_F_SORT_DESC:
        stable_sort(vec.v, vec.n, id == MON_F_SORT_DESC);
        for (int i = 0; i < vec.n; i++)
            vec_push(out, &vec.v[i].labels, vec.v[i].v);
        break;
    case MON_F_LABEL_REPLACE:
    case MON_F_LABEL_JOIN:
        eval_label_fn(c, n, &vec, out);
        break;
    case MON_F_CLAMP:
        if (sargs[1] < sargs[0])
            break;
        /* fall through */
    case MON_F_CLAMP_MIN:
    case MON_F_CLAMP_MAX:
    case MON_F_ROUND:
        for (int i = 0; i < vec.n; i++) {
            double v = vec.v[i].v;
            if (id == MON_F_CLAMP) {
                v = go_max(sargs[0], go_min(sargs[1], v));
            } else if (id == MON_F_CLAMP_MIN) {
                v = go_max(sargs[0], v);
            } else if (id == MON_F_CLAMP_MAX) {
                v = go_min(sargs[0], v);
            } else {
                double to = n->n_args >= 2 ? sargs[0] : 1;
                double inv = 1.0 / to;
                v = floor(v * inv + 0.5) / inv;
            }
            mon_labels_del(&vec.v[i].labels, MON_NAME);
            vec_push(out, &vec.v[i].labels, v);
        }
        break;
    case MON_F_DAYS_IN_MONTH:
    case MON_F_DAY_OF_MONTH:
    case MON_F_DAY_OF_WEEK:
    case MON_F_DAY_OF_YEAR:
    case MON_F_HOUR:
    case MON_F_MINUTE:
    case MON_F_MONTH:
    case MON_F_YEAR:
        if (!have_vec) {
            mon_labels none = { 0, NULL };
            /* time.Unix(enh.Ts/1000, 0): Go's division truncates */
            vec_push(out, &none, date_fn(id, (double)(c->t / 1000)));
            break;
        }
        for (int i = 0; i < vec.n; i++) {
            mon_labels_del(&vec.v[i].labels, MON_NAME);
            vec_push(out, &vec.v[i].labels, date_fn(id, vec.v[i].v));
        }
        break;
    default:
        for (int i = 0; i < vec.n; i++) {
            mon_labels_del(&vec.v[i].labels, MON_NAME);
            vec_push(out, &vec.v[i].labels, simple_fn(id, vec.v[i].v));
        }
        break;
    }
    check_unique(c, out);
done:
    mon_value_free(&vec);
}

static void eval_node(ctx *c, const mon_node *n, mon_value *out)
{
    memset(out, 0, sizeof *out);
    if (c->failed)
        return;
    switch (n->kind) {
    case MON_N_NUM:
        out->type = MON_VAL_SCALAR;
        out->scalar = n->num;
        return;
    case MON_N_STR:
        out->type = MON_VAL_STRING;
        out->str = mon_strdup(n->str);
        return;
    case MON_N_SEL:
        eval_selector(c, n, out, NULL);
        return;
    case MON_N_MATRIX:
        eval_matrix(c, n, out);
        return;
    case MON_N_SUBQ:
        eval_subquery(c, n, out);
        return;
    case MON_N_PAREN:
        eval_node(c, n->lhs, out);
        return;
    case MON_N_NEG:
        eval_node(c, n->lhs, out);
        if (out->type == MON_VAL_SCALAR) {
            out->scalar = -out->scalar;
        } else {
            for (int i = 0; i < out->n; i++) {
                out->v[i].v = -out->v[i].v;
                mon_labels_del(&out->v[i].labels, MON_NAME);
            }
            check_unique(c, out);
        }
        return;
    case MON_N_AGG:
        eval_agg(c, n, out);
        return;
    case MON_N_BIN:
        eval_bin(c, n, out);
        return;
    case MON_N_CALL:
        eval_call(c, n, out);
        return;
    }
}

int mon_expr_eval(const mon_expr *e, const mon_store *s, double t_s, mon_value *out,
                  mon_error *err)
{
    int64_t t = mon_ms(t_s);
    ctx c = { .store = s, .t = t, .q_start = t, .q_end = t, .err = err,
              .default_step_ms = e->default_step_ms > 0 ? e->default_step_ms : DEFAULT_STEP_MS };
    eval_node(&c, e->root, out);
    if (c.failed) {
        mon_value_free(out);
        return -1;
    }
    return 0;
}

int mon_expr_eval_range(const mon_expr *e, const mon_store *s, double start_s, double end_s,
                        double step_s, mon_value *out, mon_error *err)
{
    memset(out, 0, sizeof *out);
    out->type = MON_VAL_MATRIX;
    int64_t start = mon_ms(start_s), end = mon_ms(end_s), step = mon_ms(step_s);
    mon_type t = mon_node_type(e->root);
    if (t != MON_T_SCALAR && t != MON_T_VECTOR) {
        if (err)
            snprintf(err->msg, sizeof err->msg,
                     "invalid expression type \"%s\" for range query, must be Scalar or instant Vector",
                     t == MON_T_STRING ? "string" : "range vector");
        return -1;
    }
    if (step <= 0 || end < start) {
        if (err)
            snprintf(err->msg, sizeof err->msg, "a range query needs end >= start and a positive step");
        return -1;
    }
    ctx c = { .store = s, .q_start = start, .q_end = end, .err = err,
              .default_step_ms = e->default_step_ms > 0 ? e->default_step_ms : DEFAULT_STEP_MS };
    mon_map idx = { 0 };
    for (int64_t ts = start; ts <= end && !c.failed; ts += step) {
        c.t = ts;
        mon_value v = { 0 };
        eval_node(&c, e->root, &v);
        if (c.failed)
            break;
        matrix_append(out, &idx, &v, ts);
        mon_value_free(&v);
    }
    mon_map_free(&idx);
    if (c.failed) {
        mon_value_free(out);
        return -1;
    }
    return 0;
}

int mon_query(const char *text, const mon_store *s, double t_s, mon_value *out, mon_error *err)
{
    memset(out, 0, sizeof *out);
    mon_expr *e = mon_expr_parse(text, err);
    if (!e)
        return -1;
    int rc = mon_expr_eval(e, s, t_s, out, err);
    mon_expr_free(e);
    return rc;
}
