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
    seg *s;
    int n;
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

static void recompute(sim_rate *r)
{
    double cum = 0;
    for (int i = 0; i < r->n; i++) {
        r->s[i].cum0 = cum;
        if (isfinite(r->s[i].t1))
            cum += seg_area(&r->s[i], r->s[i].t1);
    }
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

void sim_rate_scale(sim_rate *r, double t0_s, double t1_s, double factor)
{
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
    free(r);
}

static const seg *find(const sim_rate *r, double t)
{
    int lo = 0, hi = r->n - 1;
    if (t < r->s[0].t0)
        return NULL;
    while (lo < hi) {
        int mid = (lo + hi + 1) / 2;
        if (r->s[mid].t0 <= t)
            lo = mid;
        else
            hi = mid - 1;
    }
    return &r->s[lo];
}

double sim_rate_at(const sim_rate *r, double t_s)
{
    const seg *g = find(r, t_s);
    return g ? seg_rate(g, t_s) : 0;
}

double sim_rate_cumulative(const sim_rate *r, double t_s)
{
    const seg *g = find(r, t_s);
    if (!g)
        return 0;
    if (isfinite(g->t1) && t_s > g->t1)
        t_s = g->t1;
    return g->cum0 + seg_area(g, t_s);
}

double sim_rate_inverse(const sim_rate *r, double target)
{
    if (target <= 0)
        return r->s[0].t0;
    /* last segment whose start is below target */
    int lo = 0, hi = r->n - 1;
    while (lo < hi) {
        int mid = (lo + hi + 1) / 2;
        if (r->s[mid].cum0 < target)
            lo = mid;
        else
            hi = mid - 1;
    }
    for (int i = lo; i < r->n; i++) {
        const seg *g = &r->s[i];
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
