/*
 * peak_ewma.c - peak-EWMA load with power of two choices, as Finagle's
 * PeakEwma balancer and linkerd2-proxy (tower's load::peak_ewma) do it.
 *
 * Each server keeps an RTT estimate. A response with RTT r at time t, the
 * estimate last updated at t0: if r is above the estimate it becomes the
 * estimate at once (the "peak"); otherwise
 * estimate = estimate * w + r * (1 - w) with w = exp(-(t - t0) / decay).
 * Reading the load first decays the estimate towards 0 the same way (an
 * update with r = 0), so a server that stopped answering slowly is tried
 * again. The load is estimate * (active + 1): pending requests weigh the
 * cost. A server starts at default_rtt.
 *
 * Every result is an observation, whatever its status: tower drops the RTT
 * handle when the response future resolves, with any response
 * (tower/src/load/completion.rs, CompleteOnResponse), and Finagle's
 * PeakEwma node ends its metric when the service is closed or failed to
 * open, whatever the answer (`respond { _ => metric.end(ts) }`,
 * `case Throw(_) => metric.end(ts)`). So a server that answers 503 at once
 * because its queue is full (LB_HTTP_5XX) pulls its estimate down and
 * looks lightly loaded.
 *
 * Pick: two distinct servers drawn uniformly among the eligible ones; the
 * lower load wins, the first drawn on a tie (tower::balance::p2c). Weights
 * are ignored. Two gsl_rng_uniform_int() per pick.
 *
 * Upstream uses the metric only under power of two choices (or Finagle's
 * aperture, p2c over a window): Finagle's PeakEwma
 * (finagle-core/src/main/scala/com/twitter/finagle/loadbalancer/PeakEwma.scala)
 * is mixed into p2c/P2CPeakEwma.scala and aperture/AperturePeakEwma.scala,
 * linkerd2-proxy runs tower::balance::p2c over tower/src/load/peak_ewma.rs,
 * and Envoy's contrib peak_ewma policy is "a variant of the Power of Two
 * Choices". Each reads the load of the two servers drawn, decayed to now,
 * at the pick; none keeps the servers ordered by it, which would need an
 * event per server as its estimate decays. fleetsim does the same, so only the draw needs an
 * index: O(n) per pick on an untracked view (the list of eligible servers),
 * O(log n) on a tracked one (lb.h), draw k being the k-th eligible server in
 * index order from a Fenwick tree (lb_index.h's lb_elig_index): the same
 * servers from the same draws.
 */
#include "lb.h"
#include "lb_index.h"

#include <math.h>
#include <stdlib.h>

struct pe_state {
    gsl_rng *rng;      /* borrowed */
    double decay_s, default_rtt_s;
    int cap;
    int *cand;         /* scratch: eligible servers */
    struct pe_est {    /* per server, read and written together */
        double rtt_s;  /* the estimate */
        double at_s;   /* when it was last updated; NAN: not yet seen */
    } *est;
    lb_elig_index ix;  /* the eligible servers of a tracked view */
};

static void *pe_init(int n_servers, gsl_rng *rng, const lb_params *params)
{
    struct pe_state *st;

    (void)n_servers;
    if (!rng)
        return NULL;
    st = calloc(1, sizeof *st);
    if (!st)
        return NULL;
    st->rng = rng;
    st->decay_s = params->decay_s;
    st->default_rtt_s = params->default_rtt_s;
    return st;
}

static void pe_destroy(void *state)
{
    struct pe_state *st = state;

    free(st->cand);
    free(st->est);
    lb_elig_index_free(&st->ix);
    free(st);
}

static void pe_change(void *state, const lb_view *view, int server)
{
    lb_elig_index_change(&((struct pe_state *)state)->ix, view, server);
}

static int pe_reserve(struct pe_state *st, int n)
{
    int *c;
    struct pe_est *e;

    if (n <= st->cap)
        return 1;
    c = realloc(st->cand, (size_t)n * sizeof *c);
    if (!c)
        return 0;
    st->cand = c;
    e = realloc(st->est, (size_t)n * sizeof *e);
    if (!e)
        return 0;
    st->est = e;
    for (int i = st->cap; i < n; i++)
        e[i] = (struct pe_est){ 0.0, NAN };
    st->cap = n;
    return 1;
}

/* tower RttEstimate::update: an observation of rtt at time now. */
static double observe(struct pe_state *st, int i, double now, double rtt)
{
    struct pe_est *e = &st->est[i];

    if (isnan(e->at_s)) {   /* first seen: the default estimate */
        e->rtt_s = st->default_rtt_s;
        e->at_s = now;
    }
    double elapsed = now - e->at_s;
    double w = exp(-(elapsed > 0 ? elapsed : 0) / st->decay_s);
    e->rtt_s = rtt > e->rtt_s ? rtt : e->rtt_s * w + rtt * (1.0 - w);
    e->at_s = now;
    return e->rtt_s;
}

static double load(struct pe_state *st, const lb_view *view, int i)
{
    return observe(st, i, view->now_s, 0.0) * (view->servers[i].active + 1.0);
}

static int pe_pick(void *state, const lb_view *view, const lb_request *req)
{
    struct pe_state *st = state;
    int m = 0, a, b;

    (void)req;
    if (!pe_reserve(st, view->n)) {
        for (int i = 0; i < view->n; i++)   /* no memory: any eligible one */
            if (lb_server_eligible(&view->servers[i]))
                return i;
        return -1;
    }
    int indexed = lb_elig_index_ready(&st->ix, view);
    if (indexed) {
        m = (int)st->ix.elig.total;   /* a count of ones: exact */
    } else {
        for (int i = 0; i < view->n; i++)
            if (lb_server_eligible(&view->servers[i]))
                st->cand[m++] = i;
    }
    if (m == 0)
        return -1;
    /* two distinct indices (Floyd's sample of 2 of m) */
    if (m > 1) {
        a = (int)gsl_rng_uniform_int(st->rng, (unsigned long)m);
        b = (int)gsl_rng_uniform_int(st->rng, (unsigned long)(m - 1));
        if (b >= a)
            b++;
    } else {
        a = b = 0;
    }
    /* candidate k: the k-th eligible server in index order */
    a = indexed ? lb_fenwick_find(&st->ix.elig, (double)a) : st->cand[a];
    b = indexed ? lb_fenwick_find(&st->ix.elig, (double)b) : st->cand[b];
    if (m == 1)
        return a;
    return load(st, view, a) <= load(st, view, b) ? a : b;
}

static void pe_done(void *state, const lb_view *view, int server, double latency_s,
                    lb_result result)
{
    struct pe_state *st = state;

    (void)result;
    if (pe_reserve(st, view->n))
        observe(st, server, view->now_s, latency_s > 0 ? latency_s : 0.0);
}

const struct lb_ops lb_peak_ewma = {
    .name = "peak_ewma",
    .summary = "two random servers, lower peak-EWMA RTT x (active + 1) wins (Finagle / linkerd peak EWMA)",
    .init_with = pe_init,
    .pick = pe_pick,
    .on_done = pe_done,
    .destroy = pe_destroy,
    .on_change = pe_change,
};
