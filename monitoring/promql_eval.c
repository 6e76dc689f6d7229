/*
 * promql_eval.c - instant evaluation of the PromQL subset against the store,
 * as Prometheus 2.42's promql/engine.go and promql/functions.go do it, step
 * by step where the floating-point order matters (rate extrapolation,
 * incremental avg), so results match promtool to the last bit.
 *
 * Selection rules of 2.42 (engine.go): an instant selector takes the newest
 * sample at or before t - offset and at or after t - offset - 5m (lookback
 * delta), unless that sample is a staleness marker; a range selector takes
 * the samples in [t - offset - range, t - offset], both ends included, stale
 * markers skipped.
 */
#include "mon_internal.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    mon_labels labels;
    mon_point *pts;
    int n;
} mseries;

typedef struct {
    mseries *s;
    int n;
} matrix;

typedef struct {
    const mon_store *store;
    int64_t t;
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

void mon_value_free(mon_value *v)
{
    if (!v)
        return;
    for (int i = 0; i < v->n; i++)
        mon_labels_free(&v->v[i].labels);
    free(v->v);
    v->v = NULL;
    v->n = 0;
}

static void vec_push(mon_value *v, mon_labels *ls, double x)
{
    v->v = mon_xrealloc(v->v, (size_t)(v->n + 1) * sizeof *v->v);
    v->v[v->n].labels = *ls;
    v->v[v->n].v = x;
    v->n++;
    ls->n = 0;
    ls->v = NULL;
}

static void matrix_free(matrix *m)
{
    for (int i = 0; i < m->n; i++) {
        mon_labels_free(&m->s[i].labels);
        free(m->s[i].pts);
    }
    free(m->s);
    m->s = NULL;
    m->n = 0;
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

/* ---- selectors ---- */

static void eval_selector(ctx *c, const mon_node *n, mon_value *out)
{
    mon_series **ss;
    size_t k = mon_store_select(c->store, n->matchers, n->n_matchers, &ss);
    int64_t ref = c->t - n->offset_ms;
    int64_t lo = ref - mon_ms(MON_LOOKBACK_S);
    out->type = MON_VAL_VECTOR;
    for (size_t i = 0; i < k; i++) {
        const mon_series *se = ss[i];
        /* newest point <= ref: binary search over the live points */
        size_t a = se->start, b = se->end;
        while (a < b) {
            size_t m = a + (b - a) / 2;
            if (se->pts[m].t <= ref)
                a = m + 1;
            else
                b = m;
        }
        if (a == se->start)
            continue;
        const mon_point *p = &se->pts[a - 1];
        if (p->t < lo || mon_is_stale(p->v))
            continue;
        mon_labels ls;
        mon_labels_copy(&ls, &se->labels);
        vec_push(out, &ls, p->v);
    }
    free(ss);
}

static void eval_matrix(ctx *c, const mon_node *n, matrix *out)
{
    const mon_node *sel = n->sel;
    mon_series **ss;
    size_t k = mon_store_select(c->store, sel->matchers, sel->n_matchers, &ss);
    int64_t maxt = c->t - sel->offset_ms, mint = maxt - n->range_ms;
    out->s = NULL;
    out->n = 0;
    for (size_t i = 0; i < k; i++) {
        const mon_series *se = ss[i];
        mon_point *pts = NULL;
        int np = 0;
        for (size_t j = se->start; j < se->end; j++) {
            const mon_point *p = &se->pts[j];
            if (p->t < mint || mon_is_stale(p->v))
                continue;
            if (p->t > maxt)
                break;
            pts = mon_xrealloc(pts, (size_t)(np + 1) * sizeof *pts);
            pts[np++] = *p;
        }
        if (!np)
            continue;
        out->s = mon_xrealloc(out->s, (size_t)(out->n + 1) * sizeof *out->s);
        mon_labels_copy(&out->s[out->n].labels, &se->labels);
        out->s[out->n].pts = pts;
        out->s[out->n].n = np;
        out->n++;
    }
    free(ss);
}

/* ---- range functions (promql/functions.go) ---- */

/* extrapolatedRate, float samples only, exactly as functions.go computes it:
 * the counter-reset correction, then extrapolation to the range boundaries
 * when the first/last sample is within 1.1x the average spacing of them
 * (else by half a spacing), never extrapolating a counter below zero. */
static int extrapolated_rate(const mseries *s, int64_t range_start, int64_t range_end,
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

/* instantValue (irate). */
static int instant_rate(const mseries *s, double *out)
{
    if (s->n < 2)
        return 0;
    const mon_point *last = &s->pts[s->n - 1], *prev = &s->pts[s->n - 2];
    double r = last->v < prev->v ? last->v : last->v - prev->v;
    int64_t dt = last->t - prev->t;
    if (dt == 0)
        return 0;
    *out = r / ((double)dt / 1000);
    return 1;
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

static double over_time(mon_func_id id, const mseries *s)
{
    const mon_point *p = s->pts;
    switch (id) {
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
        return isinf(mean) ? mean : mean + c;
    }
    case MON_F_SUM_OT: {
        double sum = 0, c = 0;
        for (int i = 0; i < s->n; i++)
            sum = kahan_inc(p[i].v, sum, &c);
        return isinf(sum) ? sum : sum + c;
    }
    case MON_F_MAX_OT: {
        double m = p[0].v;
        for (int i = 0; i < s->n; i++)
            if (p[i].v > m || isnan(m))
                m = p[i].v;
        return m;
    }
    case MON_F_MIN_OT: {
        double m = p[0].v;
        for (int i = 0; i < s->n; i++)
            if (p[i].v < m || isnan(m))
                m = p[i].v;
        return m;
    }
    case MON_F_COUNT_OT:
        return (double)s->n;
    default:
        return NAN;
    }
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

static int parse_le(const char *s, double *out)
{
    if (!*s)
        return -1;
    char *end;
    *out = strtod(s, &end);
    return *end ? -1 : 0;
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

/* ---- aggregation ---- */

typedef struct {
    mon_labels labels;
    double value, mean, count;
} group;

static void eval_node(ctx *c, const mon_node *n, mon_value *out);

static void eval_agg(ctx *c, const mon_node *n, mon_value *out)
{
    mon_value in = { 0 };
    eval_node(c, n->lhs, &in);
    out->type = MON_VAL_VECTOR;
    if (c->failed) {
        mon_value_free(&in);
        return;
    }
    mon_map idx = { 0 };
    group *g = NULL;
    int ng = 0;
    for (int i = 0; i < in.n; i++) {
        mon_labels ls;
        mon_labels_copy(&ls, &in.v[i].labels);
        if (n->without) {
            for (int k = 0; k < n->n_grouping; k++)
                mon_labels_del(&ls, n->grouping[k]);
            mon_labels_del(&ls, MON_NAME);
        } else {
            mon_labels_keep(&ls, n->grouping, n->n_grouping);
        }
        char *key = mon_labels_key(&ls);
        intptr_t at = (intptr_t)mon_map_get(&idx, key);
        double v = in.v[i].v;
        if (!at) {
            g = mon_xrealloc(g, (size_t)(ng + 1) * sizeof *g);
            g[ng] = (group){ .labels = ls, .value = v, .mean = v, .count = 1 };
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
            /* engine.go (2.42) aggregation AVG: incremental mean, dividing
             * each term by the count to avoid overflow. */
            gr->count++;
            if (isinf(gr->mean)) {
                if (isinf(v) && (gr->mean > 0) == (v > 0))
                    break;
                if (!isinf(v) && !isnan(v))
                    break;
            }
            gr->mean += v / gr->count - gr->mean / gr->count;
            break;
        case MON_AGG_COUNT:
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
        }
    }
    for (int i = 0; i < ng; i++) {
        double v = n->agg == MON_AGG_AVG ? g[i].mean
                   : n->agg == MON_AGG_COUNT ? g[i].count
                                             : g[i].value;
        vec_push(out, &g[i].labels, v);
    }
    free(g);
    mon_map_free(&idx);
    mon_value_free(&in);
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
    case MON_OP_POW: return pow(l, r);
    case MON_OP_MOD: return fmod(l, r);
    case MON_OP_EQ: *keep = l == r; return l;
    case MON_OP_NE: *keep = l != r; return l;
    case MON_OP_GT: *keep = l > r; return l;
    case MON_OP_LT: *keep = l < r; return l;
    case MON_OP_GE: *keep = l >= r; return l;
    case MON_OP_LE: *keep = l <= r; return l;
    default: return NAN;
    }
}

static int drops_name(mon_binop op)
{
    return op >= MON_OP_ADD;
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

/* VectorBinop (engine.go): one-to-one, or many-to-one/one-to-many with
 * group_left/group_right, errors for the ambiguous cases as Prometheus
 * words them. */
static void vector_vector(ctx *c, const mon_node *n, mon_value *l, mon_value *r, mon_value *out)
{
    out->type = MON_VAL_VECTOR;
    if (n->card == MON_CARD_ONE_TO_MANY) {
        mon_value *t = l;
        l = r;
        r = t;
    }
    mon_map right = { 0 };
    char buf[512], buf2[512];
    for (int i = 0; i < r->n && !c->failed; i++) {
        char *k = sig_of(n, &r->v[i].labels);
        intptr_t dup = (intptr_t)mon_map_get(&right, k);
        if (dup) {
            fail(c, "found duplicate series for the match group on the %s hand-side of the "
                    "operation: [%s, %s];many-to-many matching not allowed: matching labels "
                    "must be unique on one side",
                 n->card == MON_CARD_ONE_TO_MANY ? "left" : "right",
                 mon_labels_str(&r->v[i].labels, buf, sizeof buf),
                 mon_labels_str(&r->v[dup - 1].labels, buf2, sizeof buf2));
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

/* createLabelsForAbsentFunction (functions.go). */
static void absent_labels(const mon_node *arg, mon_labels *out)
{
    out->n = 0;
    out->v = NULL;
    const mon_node *sel = arg->kind == MON_N_SEL ? arg : NULL;
    if (!sel)
        return;
    mon_labels empty = { 0, NULL };
    for (int i = 0; i < sel->n_matchers; i++) {
        const mon_matcher *m = &sel->matchers[i];
        if (!strcmp(m->name, MON_NAME))
            continue;
        if (m->type == MON_M_EQ && !*mon_labels_get(out, m->name) &&
            !*mon_labels_get(&empty, m->name))
            mon_labels_set(out, m->name, m->value);
        else
            mon_labels_set(&empty, m->name, "x");
    }
    for (int i = 0; i < empty.n; i++)
        mon_labels_del(out, empty.v[i].name);
    mon_labels_free(&empty);
}

static void eval_call(ctx *c, const mon_node *n, mon_value *out)
{
    out->type = MON_VAL_VECTOR;
    mon_func_id id = n->fn->id;
    switch (id) {
    case MON_F_TIME:
        out->type = MON_VAL_SCALAR;
        out->scalar = (double)c->t / 1000.0;
        return;
    case MON_F_VECTOR: {
        mon_value a = { 0 };
        eval_node(c, n->args[0], &a);
        mon_labels none = { 0, NULL };
        if (!c->failed)
            vec_push(out, &none, a.scalar);
        return;
    }
    case MON_F_SCALAR: {
        mon_value a = { 0 };
        eval_node(c, n->args[0], &a);
        out->type = MON_VAL_SCALAR;
        out->scalar = a.n == 1 ? a.v[0].v : NAN;
        mon_value_free(&a);
        return;
    }
    case MON_F_ABSENT: {
        mon_value a = { 0 };
        eval_node(c, n->args[0], &a);
        if (!c->failed && a.n == 0) {
            mon_labels ls;
            absent_labels(n->args[0], &ls);
            vec_push(out, &ls, 1);
        }
        mon_value_free(&a);
        return;
    }
    case MON_F_HQUANTILE: {
        mon_value q = { 0 }, v = { 0 };
        eval_node(c, n->args[0], &q);
        if (!c->failed)
            eval_node(c, n->args[1], &v);
        if (!c->failed)
            histogram_quantile(q.scalar, &v, out);
        mon_value_free(&v);
        check_unique(c, out);
        return;
    }
    default:
        break;
    }
    /* range-vector functions */
    const mon_node *mn = n->args[0];
    while (mn->kind == MON_N_PAREN)
        mn = mn->lhs;
    if (mn->kind != MON_N_MATRIX) {
        fail(c, "function \"%s\" needs a range vector selector", n->fn->name);
        return;
    }
    matrix m;
    eval_matrix(c, mn, &m);
    int64_t range_end = c->t - mn->sel->offset_ms;
    int64_t range_start = range_end - mn->range_ms;
    for (int i = 0; i < m.n; i++) {
        double v;
        int ok = 1;
        switch (id) {
        case MON_F_RATE:
            ok = extrapolated_rate(&m.s[i], range_start, range_end, mn->range_ms, 1, 1, &v);
            break;
        case MON_F_INCREASE:
            ok = extrapolated_rate(&m.s[i], range_start, range_end, mn->range_ms, 1, 0, &v);
            break;
        case MON_F_DELTA:
            ok = extrapolated_rate(&m.s[i], range_start, range_end, mn->range_ms, 0, 0, &v);
            break;
        case MON_F_IRATE:
            ok = instant_rate(&m.s[i], &v);
            break;
        default:
            v = over_time(id, &m.s[i]);
            break;
        }
        if (!ok)
            continue;
        mon_labels ls = m.s[i].labels;
        m.s[i].labels.n = 0;
        m.s[i].labels.v = NULL;
        mon_labels_del(&ls, MON_NAME);
        vec_push(out, &ls, v);
    }
    matrix_free(&m);
    check_unique(c, out);
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
    case MON_N_SEL:
        eval_selector(c, n, out);
        return;
    case MON_N_MATRIX:
        fail(c, "a range vector cannot be the result of an expression here");
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
    ctx c = { .store = s, .t = mon_ms(t_s), .err = err };
    eval_node(&c, e->root, out);
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
