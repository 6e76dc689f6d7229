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
 * One gsl_rng_uniform() per draw. O(n) per draw (a linear search where
 * nginx bisects precomputed ranges; the same server for the same number).
 */
#include "lb.h"
#include "lb_wrr.h"

#include <stdlib.h>

struct r2_state {
    gsl_rng *rng;   /* borrowed */
    lb_wrr wrr;     /* the fallback's state */
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
    free(st);
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
    for (int i = 0; i < view->n; i++)
        if (s[i].weight > 0.0)
            total += s[i].weight;
    if (view->n < 2 || !(total > 0.0))
        return lb_wrr_pick(&st->wrr, view, 0, NULL, NULL);
    for (int tries = 1; tries <= 20; tries++) {
        int i = peek(st->rng, view, total);
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
};
