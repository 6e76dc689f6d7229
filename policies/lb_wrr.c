/*
 * lb_wrr.c - nginx's smooth weighted round robin with effective weights,
 * shared by the nginx-style policies (see lb_wrr.h).
 */
#include "lb_wrr.h"

#include <math.h>
#include <stdlib.h>

int lb_wrr_reserve(lb_wrr *w, int n)
{
    double *c, *d;

    if (n <= w->cap)
        return 1;
    c = realloc(w->current, (size_t)n * sizeof *c);
    if (!c)
        return 0;
    w->current = c;
    d = realloc(w->deficit, (size_t)n * sizeof *d);
    if (!d)
        return 0;
    w->deficit = d;
    for (int i = w->cap; i < n; i++) {
        c[i] = 0.0;
        d[i] = 0.0;
    }
    w->cap = n;
    return 1;
}

void lb_wrr_free(lb_wrr *w)
{
    free(w->current);
    free(w->deficit);
    w->current = w->deficit = NULL;
    w->cap = 0;
}

double lb_wrr_effective(const lb_wrr *w, const lb_server_view *s, int i)
{
    double e = i < w->cap ? s->weight - w->deficit[i] : s->weight;
    return e > 0.0 ? e : 0.0;
}

int lb_wrr_pick(lb_wrr *w, const lb_view *view, int from, lb_wrr_keep_fn *keep,
                const void *ctx)
{
    int best = -1;
    double total = 0.0;

    if (!lb_wrr_reserve(w, view->n))
        return -1;
    for (int i = from < 0 ? 0 : from; i < view->n; i++) {
        const lb_server_view *s = &view->servers[i];
        if (!lb_server_eligible(s) || (keep && !keep(view, i, ctx)))
            continue;
        double e = lb_wrr_effective(w, s, i);
        w->current[i] += e;
        total += e;
        /* effective_weight++ while below the weight */
        w->deficit[i] = w->deficit[i] > 1.0 ? w->deficit[i] - 1.0 : 0.0;
        if (best < 0 || w->current[i] > w->current[best])
            best = i;
    }
    if (best >= 0)
        w->current[best] -= total;
    return best;
}

void lb_wrr_failed(lb_wrr *w, const lb_view *view, int i)
{
    const lb_server_view *s = &view->servers[i];

    if (s->max_fails <= 0 || !lb_wrr_reserve(w, view->n))
        return;
    /* nginx: peer->effective_weight -= peer->weight / peer->max_fails,
     * integer division, then clamped at 0 */
    w->deficit[i] += floor(s->weight / s->max_fails);
    if (w->deficit[i] > s->weight)
        w->deficit[i] = s->weight;
}
