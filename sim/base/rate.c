/*
 * rate.c - piecewise-linear arrival-rate profiles and their integral.
 *
 * A profile is a list of points {at, qps, ramp}: from `at` the rate moves
 * linearly from its value at that instant to `qps` over `ramp` seconds, then
 * holds until the next point (a ramp cut short by the next point stops where
 * it is). The rate is 0 before the first point. Arrivals use time rescaling
 * (Cinlar): a unit-rate renewal process in "operational time" Lambda(t) =
 * integral of the rate, mapped back through Lambda^-1, is a non-homogeneous
 * process with exactly this rate; for Poisson this is exact, like thinning,
 * but costs one variate per arrival whatever the peak-to-base ratio.
 *
 * A repeating profile (`repeat: 24h`) is the profile cut at its period P and
 * replayed from t = 0 every P seconds: its rate at t is the rate at t mod P,
 * its integral k whole periods plus the part into the current one, so a run
 * of any length costs one period's segments. A flash crowd on a repeating
 * profile unrolls the periods up to the end of its window into plain
 * segments (the head); the periods after the head repeat, times the factors
 * of any crowd that never ends (tail_factor).
 */
#include "rate.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    double t0, t1;   /* [t0, t1); t1 may be INFINITY */
    double r0, r1;   /* rate at t0 and t1 (linear in between) */
    double cum0;     /* Lambda(t0) */
} seg;

struct sim_rate {
    seg *s;             /* a plain profile; a repeating one: the unrolled head */
    int n;
    double period_s;    /* 0: the profile does not repeat */
    seg *b;             /* a repeating profile's one period, [0, period_s) */
    int nb;
    double period_cum;  /* the integral over one period */
    double head_end_s;  /* the head covers [0, head_end_s), whole periods */
    double head_cum;
    double tail_factor; /* the rate after the head is the period's times this */
};

static double seg_rate(const seg *g, double t)
{
    if (!isfinite(g->t1) || g->t1 <= g->t0)
        return g->r0;
    return g->r0 + (g->r1 - g->r0) * (t - g->t0) / (g->t1 - g->t0);
}

static double seg_area(const seg *g, double t)
{
    return 0.5 * (g->r0 + seg_rate(g, t)) * (t - g->t0);
}

static void push(sim_rate *r, int *cap, double t0, double t1, double r0, double r1)
{
    if (t1 <= t0)
        return;
    if (r->n == *cap) {
        *cap = *cap ? 2 * *cap : 8;
        r->s = realloc(r->s, sizeof *r->s * (size_t)*cap);
    }
    r->s[r->n++] = (seg){ t0, t1, r0, r1, 0 };
}

static double recompute_segs(seg *s, int n)
{
    double cum = 0;
    for (int i = 0; i < n; i++) {
        s[i].cum0 = cum;
        if (isfinite(s[i].t1))
            cum += seg_area(&s[i], s[i].t1);
    }
    return cum;
}

static void recompute(sim_rate *r)
{
    r->head_cum = recompute_segs(r->s, r->n);
}

/* Splits the segment holding t so that t becomes a segment start. */
static void split_at(sim_rate *r, double t)
{
    for (int i = 0; i < r->n; i++) {
        seg *g = &r->s[i];
        if (t > g->t0 && t < g->t1) {
            double rt = seg_rate(g, t);
            r->s = realloc(r->s, sizeof *r->s * (size_t)(r->n + 1));
            g = &r->s[i];
            memmove(g + 2, g + 1, sizeof *g * (size_t)(r->n - i - 1));
            g[1] = (seg){ t, g->t1, rt, g->r1, 0 };
            g->t1 = t;
            g->r1 = rt;
            r->n++;
            return;
        }
    }
}

sim_rate *sim_rate_new(const sc_rate_point *pts, int n)
{
    sim_rate *r = calloc(1, sizeof *r);
    int cap = 0;
    double cur = 0;   /* rate at the current instant */
    double t = 0;
    if (n > 0 && pts[0].at_s > 0)
        push(r, &cap, 0, pts[0].at_s, 0, 0);
    for (int i = 0; i < n; i++) {
        double start = pts[i].at_s;
        double next = i + 1 < n ? pts[i + 1].at_s : INFINITY;
        t = start;
        if (pts[i].ramp_s > 0) {
            double end = start + pts[i].ramp_s;
            if (end > next) { /* cut short: stop at the value reached */
                double at_next = cur + (pts[i].qps - cur) * (next - start) / pts[i].ramp_s;
                push(r, &cap, start, next, cur, at_next);
                cur = at_next;
                continue;
            }
            push(r, &cap, start, end, cur, pts[i].qps);
            t = end;
        }
        cur = pts[i].qps;
        push(r, &cap, t, next, cur, cur);
    }
    if (r->n == 0)
        push(r, &cap, 0, INFINITY, 0, 0);
    recompute(r);
    return r;
}

sim_rate *sim_rate_new_repeating(const sc_rate_point *pts, int n, double period_s)
{
    sim_rate *one = sim_rate_new(pts, n);
    if (!(period_s > 0) || one == NULL)
        return one;
    /* one period: the plain profile's segments cut at period_s */
    sim_rate *r = calloc(1, sizeof *r);
    if (r == NULL) {
        sim_rate_free(one);
        return NULL;
    }
    r->b = one->s;
    for (int i = 0; i < one->n && one->s[i].t0 < period_s; i++) {
        seg *g = &one->s[i];
        if (!(g->t1 <= period_s)) {
            g->r1 = seg_rate(g, period_s);
            g->t1 = period_s;
        }
        r->nb = i + 1;
    }
    free(one);
    r->period_s = period_s;
    r->period_cum = recompute_segs(r->b, r->nb);
    r->tail_factor = 1;
    return r;
}

double sim_rate_period(const sim_rate *r)
{
    return r->period_s;
}

/* Makes the head of a repeating profile cover [0, t_s) at least, in whole
 * periods, each a copy of the period times tail_factor. */
static void unroll_to(sim_rate *r, double t_s)
{
    if (t_s <= r->head_end_s)
        return;
    double periods = ceil((t_s - r->head_end_s) / r->period_s);
    int cap = r->n;
    for (double k = 0; k < periods; k++) {
        double base = r->head_end_s + k * r->period_s;
        for (int i = 0; i < r->nb; i++) {
            const seg *g = &r->b[i];
            push(r, &cap, base + g->t0, base + g->t1, g->r0 * r->tail_factor,
                 g->r1 * r->tail_factor);
        }
    }
    r->head_end_s += periods * r->period_s;
    recompute(r);
}

void sim_rate_scale(sim_rate *r, double t0_s, double t1_s, double factor)
{
    if (r->period_s > 0) {
        unroll_to(r, isfinite(t1_s) ? t1_s : t0_s);
        if (!isfinite(t1_s))
            r->tail_factor *= factor;
    }
    split_at(r, t0_s);
    if (isfinite(t1_s))
        split_at(r, t1_s);
    for (int i = 0; i < r->n; i++) {
        if (r->s[i].t0 >= t0_s && r->s[i].t0 < t1_s) {
            r->s[i].r0 *= factor;
            r->s[i].r1 *= factor;
        }
    }
    recompute(r);
}

void sim_rate_free(sim_rate *r)
{
    if (!r)
        return;
    free(r->s);
    free(r->b);
    free(r);
}

static const seg *find(const seg *s, int n, double t)
{
    int lo = 0, hi = n - 1;
    if (n == 0 || t < s[0].t0)
        return NULL;
    while (lo < hi) {
        int mid = (lo + hi + 1) / 2;
        if (s[mid].t0 <= t)
            lo = mid;
        else
            hi = mid - 1;
    }
    return &s[lo];
}

static double segs_at(const seg *s, int n, double t_s)
{
    const seg *g = find(s, n, t_s);
    return g ? seg_rate(g, t_s) : 0;
}

static double segs_cumulative(const seg *s, int n, double t_s)
{
    const seg *g = find(s, n, t_s);
    if (!g)
        return 0;
    if (isfinite(g->t1) && t_s > g->t1)
        t_s = g->t1;
    return g->cum0 + seg_area(g, t_s);
}

/* Where a repeating profile's time t (past the head) falls: whole periods
 * k after the head and x into the next. */
static void period_of(const sim_rate *r, double t_s, double *k, double *x)
{
    *k = floor((t_s - r->head_end_s) / r->period_s);
    *x = t_s - r->head_end_s - *k * r->period_s;
    if (*x < 0)
        *x = 0;
    if (*x >= r->period_s) { /* rounding at a period's end */
        *k += 1;
        *x = 0;
    }
}

double sim_rate_at(const sim_rate *r, double t_s)
{
    if (r->period_s <= 0 || t_s < r->head_end_s)
        return segs_at(r->s, r->n, t_s);
    double k, x;
    period_of(r, t_s, &k, &x);
    return r->tail_factor * segs_at(r->b, r->nb, x);
}

double sim_rate_cumulative(const sim_rate *r, double t_s)
{
    if (r->period_s <= 0 || t_s < r->head_end_s)
        return segs_cumulative(r->s, r->n, t_s);
    double k, x;
    period_of(r, t_s, &k, &x);
    return r->head_cum + r->tail_factor * (k * r->period_cum + segs_cumulative(r->b, r->nb, x));
}

static double segs_inverse(const seg *s, int n, double target)
{
    if (n == 0)
        return INFINITY;
    if (target <= 0)
        return s[0].t0;
    /* last segment whose start is below target */
    int lo = 0, hi = n - 1;
    while (lo < hi) {
        int mid = (lo + hi + 1) / 2;
        if (s[mid].cum0 < target)
            lo = mid;
        else
            hi = mid - 1;
    }
    for (int i = lo; i < n; i++) {
        const seg *g = &s[i];
        double d = target - g->cum0;
        double end = isfinite(g->t1) ? g->cum0 + seg_area(g, g->t1) : INFINITY;
        if (target > end)
            continue;
        double k = isfinite(g->t1) ? (g->r1 - g->r0) / (g->t1 - g->t0) : 0;
        double disc = g->r0 * g->r0 + 2 * k * d;
        if (disc < 0)
            disc = 0;
        double den = g->r0 + sqrt(disc);
        if (den <= 0) /* zero rate throughout: never reached here */
            continue;
        double x = 2 * d / den;
        double t = g->t0 + x;
        if (isfinite(g->t1) && t > g->t1)
            t = g->t1;
        return t;
    }
    return INFINITY;
}

double sim_rate_inverse(const sim_rate *r, double target)
{
    if (r->period_s <= 0)
        return segs_inverse(r->s, r->n, target);
    if (target <= r->head_cum)
        return target <= 0 ? 0 : segs_inverse(r->s, r->n, target);
    if (!(r->tail_factor > 0) || !(r->period_cum > 0))
        return INFINITY;
    /* k whole periods, then rest in (0, period_cum] into the next */
    double rest = (target - r->head_cum) / r->tail_factor;
    double k = ceil(rest / r->period_cum) - 1;
    if (k < 0)
        k = 0;
    rest -= k * r->period_cum;
    if (rest > r->period_cum) {
        k += 1;
        rest -= r->period_cum;
    }
    double x = segs_inverse(r->b, r->nb, rest);
    if (!(x < r->period_s))
        x = r->period_s;
    return r->head_end_s + k * r->period_s + x;
}
