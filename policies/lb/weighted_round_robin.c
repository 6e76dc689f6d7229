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
 * O(n) per pick.
 */
#include "lb.h"
#include "lb_wrr.h"

#include <stdlib.h>

static void *wrr_init(int n_servers, gsl_rng *rng)
{
    lb_wrr *w = calloc(1, sizeof *w);

    (void)rng;
    if (w && n_servers > 0 && !lb_wrr_reserve(w, n_servers)) {
        free(w);
        return NULL;
    }
    return w;
}

static void wrr_destroy(void *state)
{
    lb_wrr_free(state);
    free(state);
}

static int wrr_pick(void *state, const lb_view *view, const lb_request *req)
{
    (void)req;
    return lb_wrr_pick(state, view, 0, NULL, NULL);
}

static void wrr_done(void *state, const lb_view *view, int server, double latency_s,
                     lb_result result)
{
    (void)latency_s;
    if (result == LB_ERROR)   /* nginx NGX_PEER_FAILED; a 5xx passed on is not */
        lb_wrr_failed(state, view, server);
}

const struct lb_ops lb_weighted_round_robin = {
    .name = "weighted_round_robin",
    .summary = "nginx smooth weighted round robin with effective weights (nginx default)",
    .init = wrr_init,
    .pick = wrr_pick,
    .on_done = wrr_done,
    .destroy = wrr_destroy,
};
