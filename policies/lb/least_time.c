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
 * modelled. O(n) per pick.
 */
#include "lb.h"
#include "lb_wrr.h"

#include <math.h>
#include <stdlib.h>

struct lt_state {
    lb_wrr wrr;
    int cap;
    unsigned long *avg_ms;   /* nginx peer->response_time */
    double *checked_s;       /* nginx peer->checked */
};

static void *lt_init(int n_servers, gsl_rng *rng)
{
    (void)n_servers;
    (void)rng;
    return calloc(1, sizeof(struct lt_state));
}

static void lt_destroy(void *state)
{
    struct lt_state *st = state;

    lb_wrr_free(&st->wrr);
    free(st->avg_ms);
    free(st->checked_s);
    free(st);
}

static int lt_reserve(struct lt_state *st, int n)
{
    unsigned long *a;
    double *c;

    if (n <= st->cap)
        return 1;
    a = realloc(st->avg_ms, (size_t)n * sizeof *a);
    if (!a)
        return 0;
    st->avg_ms = a;
    c = realloc(st->checked_s, (size_t)n * sizeof *c);
    if (!c)
        return 0;
    st->checked_s = c;
    for (int i = st->cap; i < n; i++) {
        a[i] = 0;
        c[i] = -INFINITY;
    }
    st->cap = n;
    return 1;
}

/* ngx_http_upstream_least_time_eta */
static double eta(const struct lt_state *st, const lb_view *view, int i)
{
    const lb_server_view *s = &view->servers[i];
    unsigned long rt = st->avg_ms[i];
    double since = view->now_s - st->checked_s[i];

    if (since > s->fail_timeout_s) {
        double shift = floor(since / (s->fail_timeout_s + 1.0));
        rt = shift < 64 ? rt >> (int)shift : 0;
    }
    if (rt > 5000)
        rt = 5000;
    else
        rt += 20 - rt % 20;
    return (double)rt * (1.0 + s->active);
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

static int lt_pick(void *state, const lb_view *view, const lb_request *req)
{
    struct lt_state *st = state;
    const lb_server_view *s = view->servers;
    int best = -1, many = 0, pick;
    double best_eta = 0.0;

    (void)req;
    if (!lt_reserve(st, view->n))
        return lb_wrr_pick(&st->wrr, view, 0, NULL, NULL);
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
        pick = lb_wrr_pick(&st->wrr, view, best, lt_tied, &t);
        if (pick < 0)
            pick = best;
    }
    if (view->now_s - st->checked_s[pick] > s[pick].fail_timeout_s)
        st->checked_s[pick] = view->now_s;
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
        st->checked_s[server] = view->now_s;
        lb_wrr_failed(&st->wrr, view, server);
        return;
    }
    v = latency_s > 0 ? (unsigned long)(latency_s * 1000.0) : 0;   /* a ms clock */
    st->avg_ms[server] = st->avg_ms[server]
                             ? (unsigned long)(0.5 + v * 0.05 + st->avg_ms[server] * 0.95)
                             : v;
}

const struct lb_ops lb_least_time = {
    .name = "least_time",
    .summary = "least average response time x (1 + active) per weight (nginx least_time last_byte)",
    .init = lt_init,
    .pick = lt_pick,
    .on_done = lt_done,
    .destroy = lt_destroy,
};
