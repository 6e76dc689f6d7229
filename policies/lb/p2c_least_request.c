/*
 * p2c_least_request.c - Envoy's LEAST_REQUEST load balancer
 * (source/extensions/load_balancing_policies/least_request/least_request_lb.cc
 * and the EDF scheduler of source/common/upstream/edf_scheduler.h).
 *
 * Equal weights (among the servers that can take the request): draw
 * choice_count servers uniformly at random, with replacement, and keep the
 * one with the fewest active requests; a later draw replaces the candidate
 * only if strictly fewer (unweightedHostPickNChoices). choice_count 2 is
 * the power of two choices.
 *
 * Unequal weights: earliest-deadline-first over dynamic weights
 * weight / (active + 1)^active_request_bias (hostWeight). Each server holds
 * a deadline; the earliest wins (lowest index on a tie), the scheduler's
 * clock moves to it, and the winner is re-added one period 1 / weight later
 * with its weight computed now. A server that was not a candidate is
 * re-added at the current clock when it comes back, as Envoy rebuilds the
 * schedule when hosts change. bias 0 is weighted round robin.
 *
 * One gsl_rng_uniform_int() per draw. Equal weights on a tracked view
 * (lb.h): O(log n) per pick, the eligible servers counted in a Fenwick
 * tree (lb_index.h) so that a draw k finds the k-th eligible server in
 * index order, the one the scan's candidate array holds at k. Unequal
 * weights, or an untracked view: O(n) per pick.
 */
#include "lb.h"
#include "lb_index.h"

#include <math.h>
#include <stdlib.h>

struct p2c_state {
    gsl_rng *rng;                /* borrowed */
    int choice_count;
    double bias;
    int cap;
    int *cand;                   /* scratch: eligible servers */
    double *deadline;            /* EDF deadlines */
    unsigned char *scheduled;    /* in the EDF schedule */
    double edf_now;
    /* the index of a tracked view whose servers all have one weight */
    int tracked;   /* between LB_TRACK_START and LB_TRACK_STOP (lb.h) */
    int valid;
    double weight;
    lb_fenwick elig;             /* 1 per eligible server */
    int *pending;                /* servers made ineligible since the last
                                    pick: EDF forgets them at the next one */
    unsigned char *is_pending;
    int n_pending;
};

static void *p2c_init(int n_servers, gsl_rng *rng, const lb_params *params)
{
    struct p2c_state *st;

    (void)n_servers;
    if (!rng)
        return NULL;
    st = calloc(1, sizeof *st);
    if (!st)
        return NULL;
    st->rng = rng;
    st->choice_count = params->choice_count;
    st->bias = params->active_request_bias;
    return st;
}

static void p2c_destroy(void *state)
{
    struct p2c_state *st = state;

    free(st->cand);
    free(st->deadline);
    free(st->scheduled);
    free(st->pending);
    free(st->is_pending);
    lb_fenwick_free(&st->elig);
    free(st);
}

static int p2c_reserve(struct p2c_state *st, int n)
{
    int *c;
    double *d;
    unsigned char *s;

    if (n <= st->cap)
        return 1;
    c = realloc(st->cand, (size_t)n * sizeof *c);
    if (!c)
        return 0;
    st->cand = c;
    d = realloc(st->deadline, (size_t)n * sizeof *d);
    if (!d)
        return 0;
    st->deadline = d;
    s = realloc(st->scheduled, (size_t)n * sizeof *s);
    if (!s)
        return 0;
    st->scheduled = s;
    c = realloc(st->pending, (size_t)n * sizeof *c);
    if (!c)
        return 0;
    st->pending = c;
    unsigned char *p = realloc(st->is_pending, (size_t)n * sizeof *p);
    if (!p)
        return 0;
    st->is_pending = p;
    for (int i = st->cap; i < n; i++)
        s[i] = p[i] = 0;
    st->cap = n;
    return 1;
}

/* Envoy hostWeight: weight / (active + 1)^bias. */
static double host_weight(const struct p2c_state *st, const lb_server_view *s)
{
    if (st->bias == 0.0)
        return s->weight;
    if (st->bias == 1.0)
        return s->weight / (s->active + 1.0);
    return s->weight / pow(s->active + 1.0, st->bias);
}

static void p2c_invalidate(struct p2c_state *st)
{
    st->valid = 0;
    for (int k = 0; k < st->n_pending; k++)
        st->is_pending[st->pending[k]] = 0;
    st->n_pending = 0;
}

/* The index from a tracked view, at a pick: as the scan does at a pick,
 * EDF forgets the servers that are not eligible. 0 when the weights
 * differ (or no memory): the scan's case. */
static int p2c_build(struct p2c_state *st, const lb_view *view)
{
    const lb_server_view *s = view->servers;

    for (int i = 1; i < view->n; i++)
        if (s[i].weight != s[0].weight)
            return 0;
    if (view->n <= 0 || !lb_fenwick_reset(&st->elig, view->n))
        return 0;
    st->weight = s[0].weight;
    for (int i = 0; i < view->n; i++) {
        if (lb_server_eligible(&s[i]))
            lb_fenwick_set(&st->elig, i, 1.0);
        else
            st->scheduled[i] = 0;
    }
    st->valid = 1;
    return 1;
}

static void p2c_change(void *state, const lb_view *view, int server)
{
    struct p2c_state *st = state;

    if (server < 0) {   /* LB_TRACK_START / LB_TRACK_STOP */
        st->tracked = server == LB_TRACK_START;
        p2c_invalidate(st);
        return;
    }
    const lb_server_view *s = &view->servers[server];

    if (!st->valid)
        return;
    if (server >= st->elig.n || s->weight != st->weight) {
        p2c_invalidate(st);
        return;
    }
    int on = lb_server_eligible(s);
    lb_fenwick_set(&st->elig, server, on ? 1.0 : 0.0);
    if (!on && !st->is_pending[server]) {
        st->is_pending[server] = 1;
        st->pending[st->n_pending++] = server;
    }
}

/* Equal weights from the index: the same draws, the same candidates. */
static int p2c_indexed(struct p2c_state *st, const lb_view *view)
{
    const lb_server_view *s = view->servers;
    int best = -1;

    for (int k = 0; k < st->n_pending; k++) {
        int i = st->pending[k];
        st->is_pending[i] = 0;
        if (!lb_server_eligible(&s[i]))
            st->scheduled[i] = 0;
    }
    st->n_pending = 0;
    unsigned long m = (unsigned long)st->elig.total;
    if (m == 0)
        return -1;
    for (int c = 0; c < st->choice_count; c++) {
        int i = lb_fenwick_find(&st->elig, (double)gsl_rng_uniform_int(st->rng, m));
        if (best < 0 || s[i].active < s[best].active)
            best = i;
    }
    return best;
}

static int p2c_pick(void *state, const lb_view *view, const lb_request *req)
{
    struct p2c_state *st = state;
    const lb_server_view *s = view->servers;
    int m = 0, equal = 1, best = -1;

    (void)req;
    if (!st->tracked || (st->valid && st->elig.n != view->n))
        p2c_invalidate(st);
    if (st->tracked && !st->valid && p2c_reserve(st, view->n))
        p2c_build(st, view);
    if (st->valid)
        return p2c_indexed(st, view);
    if (!p2c_reserve(st, view->n)) {
        for (int i = 0; i < view->n; i++)   /* no memory: any eligible one */
            if (lb_server_eligible(&s[i]))
                return i;
        return -1;
    }
    for (int i = 0; i < view->n; i++) {
        if (!lb_server_eligible(&s[i])) {
            st->scheduled[i] = 0;
            continue;
        }
        if (m > 0 && s[i].weight != s[st->cand[0]].weight)
            equal = 0;
        st->cand[m++] = i;
    }
    if (m == 0)
        return -1;
    if (equal) {
        for (int c = 0; c < st->choice_count; c++) {
            int i = st->cand[gsl_rng_uniform_int(st->rng, (unsigned long)m)];
            if (best < 0 || s[i].active < s[best].active)
                best = i;
        }
        return best;
    }
    for (int k = 0; k < m; k++) {
        int i = st->cand[k];
        if (!st->scheduled[i]) {
            st->deadline[i] = st->edf_now + 1.0 / host_weight(st, &s[i]);
            st->scheduled[i] = 1;
        }
        if (best < 0 || st->deadline[i] < st->deadline[best])
            best = i;
    }
    st->edf_now = st->deadline[best];
    st->deadline[best] = st->edf_now + 1.0 / host_weight(st, &s[best]);
    return best;
}

const struct lb_ops lb_p2c_least_request = {
    .name = "p2c_least_request",
    .summary = "best of choice_count random servers by active requests; EDF on weight/(active+1)^bias when weights differ (Envoy least_request)",
    .init_with = p2c_init,
    .pick = p2c_pick,
    .destroy = p2c_destroy,
    .on_change = p2c_change,
};
