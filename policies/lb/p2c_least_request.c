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
 * One gsl_rng_uniform_int() per draw. On a tracked view (lb.h), O(log n)
 * per pick: the eligible servers counted in a Fenwick tree (lb_index.h),
 * so that a draw k finds the k-th eligible server in index order, the one
 * the scan's candidate array holds at k; the eligible servers' distinct
 * weights counted, so that "equal" needs no walk; the scheduled servers in
 * a heap by (deadline, index), the scan's EDF winner at its top, servers
 * that came back scheduled at the next EDF pick as the scan does. An
 * untracked view, or more than P2C_MAX_WEIGHTS distinct weights among the
 * eligible servers: the O(n) scan below.
 */
#include "lb.h"
#include "lb_index.h"

#include <math.h>
#include <stdlib.h>

#define P2C_MAX_WEIGHTS 16

struct p2c_state {
    gsl_rng *rng;                /* borrowed */
    int choice_count;
    double bias;
    int cap;
    int *cand;                   /* scratch: eligible servers */
    double *deadline;            /* EDF deadlines */
    unsigned char *scheduled;    /* in the EDF schedule */
    double edf_now;
    /* the index of the tracked view */
    int tracked;   /* between LB_TRACK_START and LB_TRACK_STOP (lb.h) */
    int valid;
    lb_fenwick elig;             /* 1 per eligible server */
    double *counted_w;           /* an eligible server's weight as counted */
    struct { double w; int n; } weights[P2C_MAX_WEIGHTS];
    int n_weights;               /* distinct weights of the eligible servers */
    int *pending;                /* servers made ineligible since the last
                                    pick: EDF forgets them at the next one */
    unsigned char *is_pending;
    int n_pending;
    int *tosched;                /* eligible servers EDF may not hold: it
                                    schedules them at its next pick */
    unsigned char *is_tosched;
    int n_tosched;
    int *heap, *hpos;            /* scheduled servers by (deadline, index) */
    int hlen;
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
    free(st->counted_w);
    free(st->tosched);
    free(st->is_tosched);
    free(st->heap);
    free(st->hpos);
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
    unsigned char *q = realloc(st->is_tosched, (size_t)n * sizeof *q);
    if (!q)
        return 0;
    st->is_tosched = q;
    d = realloc(st->counted_w, (size_t)n * sizeof *d);
    if (!d)
        return 0;
    st->counted_w = d;
    int **ints[] = { &st->tosched, &st->heap, &st->hpos };
    for (int k = 0; k < 3; k++) {
        c = realloc(*ints[k], (size_t)n * sizeof *c);
        if (!c)
            return 0;
        *ints[k] = c;
    }
    for (int i = st->cap; i < n; i++)
        s[i] = p[i] = q[i] = 0;
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

/* ---- the EDF heap: scheduled servers, earliest deadline first, the
 * lowest index on a tie (the scan's strict <) ---- */

static int edf_before(const struct p2c_state *st, int a, int b)
{
    return st->deadline[a] < st->deadline[b] || (st->deadline[a] == st->deadline[b] && a < b);
}

static void edf_place(struct p2c_state *st, int at, int i)
{
    st->heap[at] = i;
    st->hpos[i] = at;
}

static void edf_up(struct p2c_state *st, int at)
{
    int i = st->heap[at];
    while (at > 0 && edf_before(st, i, st->heap[(at - 1) / 2])) {
        edf_place(st, at, st->heap[(at - 1) / 2]);
        at = (at - 1) / 2;
    }
    edf_place(st, at, i);
}

static void edf_down(struct p2c_state *st, int at)
{
    int i = st->heap[at];
    for (;;) {
        int c = 2 * at + 1;
        if (c >= st->hlen)
            break;
        if (c + 1 < st->hlen && edf_before(st, st->heap[c + 1], st->heap[c]))
            c++;
        if (!edf_before(st, st->heap[c], i))
            break;
        edf_place(st, at, st->heap[c]);
        at = c;
    }
    edf_place(st, at, i);
}

static void edf_push(struct p2c_state *st, int i)
{
    edf_place(st, st->hlen++, i);
    edf_up(st, st->hlen - 1);
}

static void edf_remove(struct p2c_state *st, int i)
{
    int at = st->hpos[i];
    int last = st->heap[--st->hlen];
    if (at == st->hlen)
        return;
    edf_place(st, at, last);
    edf_up(st, at);
    edf_down(st, st->hpos[last]);
}

/* ---- the index ---- */

static void p2c_invalidate(struct p2c_state *st)
{
    st->valid = 0;
    for (int k = 0; k < st->n_pending; k++)
        st->is_pending[st->pending[k]] = 0;
    st->n_pending = 0;
    for (int k = 0; k < st->n_tosched; k++)
        st->is_tosched[st->tosched[k]] = 0;
    st->n_tosched = 0;
    st->hlen = 0;
}

/* One more (d = 1) or one fewer (d = -1) eligible server of weight w;
 * 0 when there are more distinct weights than the table holds. */
static int count_weight(struct p2c_state *st, double w, int d)
{
    for (int k = 0; k < st->n_weights; k++) {
        if (st->weights[k].w != w)
            continue;
        st->weights[k].n += d;
        if (st->weights[k].n == 0)
            st->weights[k] = st->weights[--st->n_weights];
        return 1;
    }
    if (d < 0 || st->n_weights == P2C_MAX_WEIGHTS)
        return 0;
    st->weights[st->n_weights].w = w;
    st->weights[st->n_weights++].n = 1;
    return 1;
}

static void want_scheduled(struct p2c_state *st, int i)
{
    if (!st->scheduled[i] && !st->is_tosched[i]) {
        st->is_tosched[i] = 1;
        st->tosched[st->n_tosched++] = i;
    }
}

/* The index from a tracked view, at a pick: as the scan does at a pick,
 * EDF forgets the servers that are not eligible. 0 with too many distinct
 * weights (or no memory): the scan's case. */
static int p2c_build(struct p2c_state *st, const lb_view *view)
{
    const lb_server_view *s = view->servers;

    if (view->n <= 0 || !lb_fenwick_reset(&st->elig, view->n))
        return 0;
    st->n_weights = 0;
    st->valid = 1;
    for (int i = 0; i < view->n; i++) {
        if (!lb_server_eligible(&s[i])) {
            st->scheduled[i] = 0;
            continue;
        }
        lb_fenwick_set(&st->elig, i, 1.0);
        st->counted_w[i] = s[i].weight;
        if (!count_weight(st, s[i].weight, 1)) {
            p2c_invalidate(st);
            return 0;
        }
        if (st->scheduled[i])
            edf_push(st, i);
        else
            want_scheduled(st, i);
    }
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
    if (server >= st->elig.n) {
        p2c_invalidate(st);
        return;
    }
    int was = st->elig.value[server] != 0.0, on = lb_server_eligible(s);
    /* Only its active count changed (most notices): nothing here depends
     * on it. An eligible server is already scheduled or to be, an
     * ineligible one already pending or forgotten. */
    if (was == on && (!on || st->counted_w[server] == s->weight))
        return;
    if ((was && !count_weight(st, st->counted_w[server], -1)) ||
        (on && !count_weight(st, s->weight, 1))) {
        p2c_invalidate(st);
        return;
    }
    st->counted_w[server] = s->weight;
    lb_fenwick_set(&st->elig, server, on ? 1.0 : 0.0);
    if (on) {
        want_scheduled(st, server);
    } else if (!st->is_pending[server]) {
        st->is_pending[server] = 1;
        st->pending[st->n_pending++] = server;
    }
}

/* The scan's pick from the index: the same draws, the same candidates,
 * the same deadlines. */
static int p2c_indexed(struct p2c_state *st, const lb_view *view)
{
    const lb_server_view *s = view->servers;
    int best = -1;

    for (int k = 0; k < st->n_pending; k++) {
        int i = st->pending[k];
        st->is_pending[i] = 0;
        if (!lb_server_eligible(&s[i]) && st->scheduled[i]) {
            st->scheduled[i] = 0;
            edf_remove(st, i);
        }
    }
    st->n_pending = 0;
    unsigned long m = (unsigned long)st->elig.total;
    if (m == 0)
        return -1;
    if (st->n_weights <= 1) {
        for (int c = 0; c < st->choice_count; c++) {
            int i = lb_fenwick_find(&st->elig, (double)gsl_rng_uniform_int(st->rng, m));
            if (best < 0 || s[i].active < s[best].active)
                best = i;
        }
        return best;
    }
    for (int k = 0; k < st->n_tosched; k++) {
        int i = st->tosched[k];
        st->is_tosched[i] = 0;
        if (!st->scheduled[i] && lb_server_eligible(&s[i])) {
            st->deadline[i] = st->edf_now + 1.0 / host_weight(st, &s[i]);
            st->scheduled[i] = 1;
            edf_push(st, i);
        }
    }
    st->n_tosched = 0;
    best = st->heap[0];
    st->edf_now = st->deadline[best];
    st->deadline[best] = st->edf_now + 1.0 / host_weight(st, &s[best]);
    edf_down(st, 0);
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
