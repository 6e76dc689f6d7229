/*
 * least_time.c - nginx `least_time last_byte`: the server with the least
 * estimated time to finish its work, average response time times
 * (1 + active requests), relative to weight; ties by smooth weighted round
 * robin. Follows src/http/modules/ngx_http_upstream_least_time_module.c
 * (ngx_http_upstream_least_time_eta, ngx_http_upstream_free_least_time_peer):
 * - the average is in whole milliseconds, avg = v on the first response,
 *   then round(0.05 v + 0.95 avg) (ngx_http_upstream_response_time_avg);
 *   only successful requests update it ("only successful attempts are
 *   accounted"): not those freed with NGX_PEER_FAILED (LB_ERROR). A 5xx
 *   passed on to the client is freed with state 0 and its response time
 *   counts (LB_HTTP_5XX): a server that answers 503 at once because its
 *   queue is full looks fast;
 * - once per fail_timeout without a pick or failure, the average is halved
 *   ("to give chances to slow peers"): shifted right by
 *   (now - checked) / (fail_timeout + 1) seconds, where checked moves to
 *   now on a pick after fail_timeout and on a failure, as in round robin;
 * - averages above 5000 ms count as 5000 (all equally bad: least_conn);
 *   below, they are rounded up to the next multiple of 20 ms so that close
 *   servers tie and share by round robin;
 * - eta = rt * (1 + active); the least eta * other weight wins.
 * The `inflight` parameter (counting requests still running) is not
 * modelled.
 *
 * O(log n) per pick on a tracked view (lb.h) whose servers all have one
 * integer weight and no failure on record, as least_conn: the eligible
 * servers sit in groups by estimate (eta / 20, lb_index.h's lb_swrr with
 * the policy's own key), the least group is the tie set and its smooth WRR
 * pick the group's heap top. An estimate also changes with time alone (the
 * halving): each server's next halving time sits in a lb_mintree, and a
 * pick first places again the servers whose time has come. Otherwise, or
 * on an untracked view, the O(n) scan below, which is also the index's
 * definition: both give the same server and leave the same current_weight.
 */
#include "lb.h"
#include "lb_index.h"
#include "lb_wrr.h"

#include <math.h>
#include <stdlib.h>

struct lt_state {
    lb_wrr_index x;          /* x.w: the smooth WRR state of the ties */
    int cap;
    struct lt_peer {         /* per server, read together */
        unsigned long avg_ms; /* nginx peer->response_time */
        double checked_s;     /* nginx peer->checked */
    } *peer;
    lb_mintree next;         /* when each indexed estimate changes next */
    int *scratch;
};

static long lt_group(void *ctx, const lb_view *view, int i);

static void *lt_init(int n_servers, gsl_rng *rng)
{
    (void)n_servers;
    (void)rng;
    struct lt_state *st = calloc(1, sizeof *st);
    if (!st)
        return NULL;
    st->x.group = lt_group;
    st->x.group_ctx = st;
    return st;
}

static void lt_destroy(void *state)
{
    struct lt_state *st = state;

    lb_wrr_index_free(&st->x);
    lb_mintree_free(&st->next);
    free(st->peer);
    free(st->scratch);
    free(st);
}

static int lt_reserve(struct lt_state *st, int n)
{
    struct lt_peer *p;

    if (n <= st->cap)
        return 1;
    p = realloc(st->peer, (size_t)n * sizeof *p);
    if (!p)
        return 0;
    st->peer = p;
    int *sc = realloc(st->scratch, (size_t)n * sizeof *sc);
    if (!sc)
        return 0;
    st->scratch = sc;
    for (int i = st->cap; i < n; i++)
        p[i] = (struct lt_peer){ 0, -INFINITY };
    st->cap = n;
    return 1;
}

/* How many times server i's average is halved at the view's time. */
static double halvings(const struct lt_state *st, const lb_view *view, int i)
{
    double since = view->now_s - st->peer[i].checked_s;

    return since > view->servers[i].fail_timeout_s
               ? floor(since / (view->servers[i].fail_timeout_s + 1.0))
               : 0;
}

/* ngx_http_upstream_least_time_eta, with the average halved shift times */
static double eta_halved(const struct lt_state *st, const lb_view *view, int i, double shift)
{
    const lb_server_view *s = &view->servers[i];
    unsigned long rt = st->peer[i].avg_ms;

    rt = shift < 64 ? rt >> (int)shift : 0;
    if (rt > 5000)
        rt = 5000;
    else
        rt += 20 - rt % 20;
    return (double)rt * (1.0 + s->active);
}

static double eta(const struct lt_state *st, const lb_view *view, int i)
{
    return eta_halved(st, view, i, halvings(st, view, i));
}

struct tie {
    const struct lt_state *st;
    int best;
    double best_eta;
};

static int lt_tied(const lb_view *view, int i, const void *ctx)
{
    const struct tie *t = ctx;

    return eta(t->st, view, i) * view->servers[t->best].weight ==
           t->best_eta * view->servers[i].weight;
}

/* The index's key: server i's estimate in units of 20 ms (every estimate
 * is a multiple of 20), computed at the view's time; and, in st->next,
 * when the next halving may change it (never once the average is 0). */
static long lt_group(void *ctx, const lb_view *view, int i)
{
    struct lt_state *st = ctx;
    double shift = halvings(st, view, i);
    double at = INFINITY;

    if (shift < 63 && (st->peer[i].avg_ms >> (int)shift) != 0 && isfinite(st->peer[i].checked_s))
        at = st->peer[i].checked_s + (shift + 1.0) * (view->servers[i].fail_timeout_s + 1.0);
    if (i < st->next.n)
        lb_mintree_set(&st->next, i, at);
    return (long)(eta_halved(st, view, i, shift) / 20.0);
}

/* Places again the servers whose next halving time has come (less float
 * dust: one found early is placed with the same key, and its time stays
 * due for the next pick). */
static void lt_catch_up(struct lt_state *st, const lb_view *view)
{
    double slack = 1e-9 * (1.0 + fabs(view->now_s));
    int m = 0;

    while (lb_mintree_least(&st->next) <= view->now_s + slack) {
        int i = lb_mintree_nth(&st->next, 0);
        lb_mintree_set(&st->next, i, INFINITY);
        st->scratch[m++] = i;
    }
    for (int j = 0; j < m; j++)
        lb_wrr_index_change(&st->x, view, st->scratch[j]);
}

/* Server i's estimate changed outside a placement (a pick moved checked,
 * an answer moved the average): due at the next pick's catch-up. */
static void lt_touched(struct lt_state *st, int i)
{
    if (st->x.valid && i < st->next.n)
        lb_mintree_set(&st->next, i, -INFINITY);
}

static int lt_pick(void *state, const lb_view *view, const lb_request *req)
{
    struct lt_state *st = state;
    const lb_server_view *s = view->servers;
    int best = -1, many = 0, pick;
    double best_eta = 0.0;

    (void)req;
    if (!lt_reserve(st, view->n))
        return lb_wrr_pick(&st->x.w, view, 0, NULL, NULL);
    if (st->x.tracked && st->next.n != view->n) {
        lb_wrr_index_invalidate(&st->x);
        if (!lb_mintree_reset(&st->next, view->n))
            st->next.n = 0;
    }
    if (st->next.n == view->n && lb_wrr_index_ready(&st->x, view)) {
        lt_catch_up(st, view);
        if (st->x.valid) {
            pick = lb_wrr_index_least(&st->x);
            if (pick >= 0 && view->now_s - st->peer[pick].checked_s > s[pick].fail_timeout_s) {
                st->peer[pick].checked_s = view->now_s;
                lt_touched(st, pick);
            }
            return pick;
        }
    }
    for (int i = 0; i < view->n; i++) {
        if (!lb_server_eligible(&s[i]))
            continue;
        double e = eta(st, view, i);
        if (best < 0 || e * s[best].weight < best_eta * s[i].weight) {
            best = i;
            best_eta = e;
            many = 0;
        } else if (e * s[best].weight == best_eta * s[i].weight) {
            many = 1;
        }
    }
    if (best < 0)
        return -1;
    pick = best;
    if (many) {
        struct tie t = { st, best, best_eta };
        pick = lb_wrr_pick(&st->x.w, view, best, lt_tied, &t);
        if (pick < 0)
            pick = best;
    }
    if (view->now_s - st->peer[pick].checked_s > s[pick].fail_timeout_s)
        st->peer[pick].checked_s = view->now_s;
    return pick;
}

static void lt_done(void *state, const lb_view *view, int server, double latency_s,
                    lb_result result)
{
    struct lt_state *st = state;
    unsigned long v;

    if (!lt_reserve(st, view->n))
        return;
    if (result == LB_ERROR) {
        st->peer[server].checked_s = view->now_s;
        lb_wrr_failed(&st->x.w, view, server);
        lb_wrr_index_failed(&st->x, server);
        lt_touched(st, server);
        return;
    }
    v = latency_s > 0 ? (unsigned long)(latency_s * 1000.0) : 0;   /* a ms clock */
    unsigned long avg = st->peer[server].avg_ms;
    st->peer[server].avg_ms = avg ? (unsigned long)(0.5 + v * 0.05 + avg * 0.95) : v;
    lt_touched(st, server);
}

static void lt_change(void *state, const lb_view *view, int server)
{
    struct lt_state *st = state;

    if (server >= 0 && !lt_reserve(st, view->n)) {
        lb_wrr_index_invalidate(&st->x);
        return;
    }
    lb_wrr_index_change(&st->x, view, server);
}

const struct lb_ops lb_least_time = {
    .name = "least_time",
    .summary = "least average response time x (1 + active) per weight (nginx least_time last_byte)",
    .init = lt_init,
    .pick = lt_pick,
    .on_done = lt_done,
    .destroy = lt_destroy,
    .on_change = lt_change,
};
