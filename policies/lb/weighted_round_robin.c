/*
 * weighted_round_robin.c - nginx's default balancing method: smooth weighted
 * round robin, as src/http/ngx_http_upstream_round_robin.c does it
 * (ngx_http_upstream_get_peer, ngx_http_upstream_free_round_robin_peer).
 * Weights 5, 1, 1 give a a b a c a a: spread out, not a burst of five a's.
 *
 * A failed request (lb_on_done LB_ERROR) lowers the server's effective
 * weight by weight / max_fails; each pick in which it is a candidate gives
 * one back, so a server that failed earns its share back gradually. A 5xx
 * response passed on to the client (LB_HTTP_5XX) does not: nginx frees
 * that peer with state 0, as a success. backup,
 * down and max_fails / fail_timeout are applied by lb_pick for every policy
 * (policies/lb.c), as nginx's upstream code does around this method.
 *
 * O(n) per pick in nginx. Here O(log n) on a tracked view (lb.h) whose
 * servers all have one integer weight and no lowered effective weight:
 * every eligible server gains the same weight per pick, so the servers sit
 * in one heap by current_weight under a shared offset (lb_index.h) and the
 * pick is its top. Otherwise, or on an untracked view, nginx's O(n) walk,
 * with the same result.
 */
#include "lb.h"
#include "lb_index.h"
#include "lb_wrr.h"

#include <stdlib.h>

static void *wrr_init(int n_servers, gsl_rng *rng)
{
    lb_wrr_index *x = calloc(1, sizeof *x);

    (void)rng;
    if (x && n_servers > 0 && !lb_wrr_reserve(&x->w, n_servers)) {
        free(x);
        return NULL;
    }
    return x;
}

static void wrr_destroy(void *state)
{
    lb_wrr_index_free(state);
    free(state);
}

static void wrr_change(void *state, const lb_view *view, int server)
{
    lb_wrr_index_change(state, view, server);
}

static int wrr_pick(void *state, const lb_view *view, const lb_request *req)
{
    lb_wrr_index *x = state;

    (void)req;
    if (!lb_wrr_index_ready(x, view))
        return lb_wrr_pick(&x->w, view, 0, NULL, NULL);
    if (x->idx.members == 0)
        return -1;
    return lb_swrr_pick(&x->idx, &x->w, 0, x->weight);
}

static void wrr_done(void *state, const lb_view *view, int server, double latency_s,
                     lb_result result)
{
    lb_wrr_index *x = state;

    (void)latency_s;
    if (result != LB_ERROR)   /* nginx NGX_PEER_FAILED; a 5xx passed on is not */
        return;
    lb_wrr_failed(&x->w, view, server);
    lb_wrr_index_failed(x, server);
}

const struct lb_ops lb_weighted_round_robin = {
    .name = "weighted_round_robin",
    .summary = "nginx smooth weighted round robin with effective weights (nginx default)",
    .init = wrr_init,
    .pick = wrr_pick,
    .on_done = wrr_done,
    .destroy = wrr_destroy,
    .on_change = wrr_change,
};
