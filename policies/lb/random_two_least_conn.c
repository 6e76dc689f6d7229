/*
 * random_two_least_conn.c - nginx `random two least_conn`: draw two distinct
 * servers at random with probability proportional to weight, send the
 * request to the one with fewer active requests per weight; on a tie, to
 * the second drawn. The power of two choices (Mitzenmacher) with nginx's
 * details, from src/http/modules/ngx_http_upstream_random_module.c
 * (ngx_http_upstream_get_random2_peer):
 * - a draw lands on any server of the view by weight, and one that cannot
 *   take the request (or repeats the first) is drawn again;
 * - after 20 draws without two usable servers, or with fewer than two
 *   servers, nginx falls back to smooth weighted round robin.
 * One gsl_rng_uniform() per draw. O(n) per draw on an untracked view (a
 * linear search where nginx bisects precomputed ranges; the same server for
 * the same number); O(log n) on a tracked view (lb.h) with integer weights,
 * the weights in a Fenwick tree (lb_index.h) whose exact sums land a draw
 * where the linear search does. The fallback stays O(n).
 */
#include "lb.h"
#include "lb_index.h"
#include "lb_wrr.h"

#include <stdlib.h>

struct r2_state {
    gsl_rng *rng;   /* borrowed */
    lb_wrr wrr;     /* the fallback's state */
    int tracked;   /* between LB_TRACK_START and LB_TRACK_STOP (lb.h) */
    int valid;      /* weights holds the tracked view's weights */
    lb_fenwick weights;
};

static void *r2_init(int n_servers, gsl_rng *rng)
{
    struct r2_state *st;

    if (!rng)
        return NULL;
    st = calloc(1, sizeof *st);
    if (!st)
        return NULL;
    st->rng = rng;
    if (n_servers > 0 && !lb_wrr_reserve(&st->wrr, n_servers)) {
        free(st);
        return NULL;
    }
    return st;
}

static void r2_destroy(void *state)
{
    struct r2_state *st = state;

    lb_wrr_free(&st->wrr);
    lb_fenwick_free(&st->weights);
    free(st);
}

/* Server i's weight in the tree; 0 if not one it sums exactly. */
static int r2_place(struct r2_state *st, const lb_server_view *s, int i)
{
    if (!lb_index_weight_ok(s->weight))
        return 0;
    lb_fenwick_set(&st->weights, i, s->weight);
    return 1;
}

static void r2_change(void *state, const lb_view *view, int server)
{
    struct r2_state *st = state;

    if (server < 0) {   /* LB_TRACK_START / LB_TRACK_STOP */
        st->tracked = server == LB_TRACK_START;
        st->valid = 0;
        return;
    }

    if (st->valid && (server >= st->weights.n || !r2_place(st, &view->servers[server], server)))
        st->valid = 0;
}

static int r2_ready(struct r2_state *st, const lb_view *view)
{
    if (!st->tracked || (st->valid && st->weights.n != view->n))
        st->valid = 0;
    if (!st->tracked || st->valid)
        return st->valid;
    if (view->n <= 0 || !lb_fenwick_reset(&st->weights, view->n))
        return 0;
    for (int i = 0; i < view->n; i++)
        if (!r2_place(st, &view->servers[i], i))
            return 0;
    st->valid = 1;
    return 1;
}

/* peek from the tree: the same server for the same number */
static int peek_indexed(gsl_rng *rng, const lb_fenwick *f)
{
    int i = lb_fenwick_find(f, gsl_rng_uniform(rng) * f->total);
    return i >= 0 ? i : lb_fenwick_last(f);
}

/* nginx ngx_http_upstream_peek_random_peer: a server by weight. */
static int peek(gsl_rng *rng, const lb_view *view, double total)
{
    double x = gsl_rng_uniform(rng) * total, acc = 0.0;
    int last = 0;

    for (int i = 0; i < view->n; i++) {
        if (!(view->servers[i].weight > 0.0))
            continue;
        acc += view->servers[i].weight;
        last = i;
        if (x < acc)
            return i;
    }
    return last;
}

static int r2_pick(void *state, const lb_view *view, const lb_request *req)
{
    struct r2_state *st = state;
    const lb_server_view *s = view->servers;
    double total = 0.0;
    int prev = -1;

    (void)req;
    int indexed = r2_ready(st, view);
    if (indexed) {
        total = st->weights.total;
    } else {
        for (int i = 0; i < view->n; i++)
            if (s[i].weight > 0.0)
                total += s[i].weight;
    }
    if (view->n < 2 || !(total > 0.0))
        return lb_wrr_pick(&st->wrr, view, 0, NULL, NULL);
    for (int tries = 1; tries <= 20; tries++) {
        int i = indexed ? peek_indexed(st->rng, &st->weights) : peek(st->rng, view, total);
        if (i == prev || !lb_server_eligible(&s[i]))
            continue;
        if (prev >= 0)   /* the second wins ties */
            return s[i].active * s[prev].weight > s[prev].active * s[i].weight ? prev : i;
        prev = i;
    }
    return lb_wrr_pick(&st->wrr, view, 0, NULL, NULL);
}

static void r2_done(void *state, const lb_view *view, int server, double latency_s,
                    lb_result result)
{
    struct r2_state *st = state;

    (void)latency_s;
    if (result == LB_ERROR)   /* nginx NGX_PEER_FAILED; a 5xx passed on is not */
        lb_wrr_failed(&st->wrr, view, server);
}

const struct lb_ops lb_random_two_least_conn = {
    .name = "random_two_least_conn",
    .summary = "two servers drawn by weight, fewer active per weight wins, ties to the second (nginx random two least_conn)",
    .init = r2_init,
    .pick = r2_pick,
    .on_done = r2_done,
    .destroy = r2_destroy,
    .on_change = r2_change,
};
