/*
 * least_conn.c - nginx's least_conn: each request goes to the eligible server
 * with the fewest active requests relative to its weight; servers tied at
 * that minimum share requests by smooth weighted round robin. This is what
 * an `upstream { least_conn; ... }` block does, so a scenario can be checked
 * against the nginx configuration it models.
 *
 * Semantics follow nginx src/http/modules/ngx_http_upstream_least_conn_module.c
 * (ngx_http_upstream_get_least_conn_peer): the comparison uses the
 * configured weight, the tie-break the effective weight, which a failure
 * (lb_on_done LB_ERROR; not a 5xx passed on) lowers by weight / max_fails
 * as in round robin.
 * backup, down and max_fails / fail_timeout come from lb_pick (policies/lb.c).
 * O(n) per pick.
 */
#include "lb.h"
#include "lb_wrr.h"

#include <stdlib.h>

static void *lc_init(int n_servers, gsl_rng *rng)
{
    lb_wrr *w = calloc(1, sizeof *w);

    (void)rng;
    if (w && n_servers > 0 && !lb_wrr_reserve(w, n_servers)) {
        free(w);
        return NULL;
    }
    return w;
}

static void lc_destroy(void *state)
{
    lb_wrr_free(state);
    free(state);
}

/* a carries fewer active requests per unit of weight than b. Cross-multiplied
 * as nginx does (peer->conns * best->weight < best->conns * peer->weight),
 * so a server with no active requests always compares below a busy one. */
static int lc_less(const lb_server_view *a, const lb_server_view *b)
{
    return a->active * b->weight < b->active * a->weight;
}

static int lc_equal(const lb_server_view *a, const lb_server_view *b)
{
    return a->active * b->weight == b->active * a->weight;
}

static int lc_tied(const lb_view *view, int i, const void *ctx)
{
    return lc_equal(&view->servers[i], ctx);
}

static int lc_pick(void *state, const lb_view *view, const lb_request *req)
{
    const lb_server_view *s = view->servers;
    int best = -1, many = 0, tie;

    (void)req;
    /* Pass 1: the first eligible server at the minimum, and whether another
     * server ties with it. */
    for (int i = 0; i < view->n; i++) {
        if (!lb_server_eligible(&s[i]))
            continue;
        if (best < 0 || lc_less(&s[i], &s[best])) {
            best = i;
            many = 0;
        } else if (lc_equal(&s[i], &s[best])) {
            many = 1;
        }
    }
    if (best < 0 || !many)
        return best;
    /* Pass 2, only among the tied servers from the first one on: smooth
     * weighted round robin. Servers not tied keep their current_weight
     * untouched, as in nginx. */
    tie = lb_wrr_pick(state, view, best, lc_tied, &s[best]);
    return tie >= 0 ? tie : best;   /* -1: no memory for the tie-break state */
}

static void lc_done(void *state, const lb_view *view, int server, double latency_s,
                    lb_result result)
{
    (void)latency_s;
    if (result == LB_ERROR)   /* nginx NGX_PEER_FAILED; a 5xx passed on is not */
        lb_wrr_failed(state, view, server);
}

const struct lb_ops lb_least_conn = {
    .name = "least_conn",
    .summary = "fewest active requests per weight, ties by smooth weighted round robin (nginx least_conn)",
    .init = lc_init,
    .pick = lc_pick,
    .on_done = lc_done,
    .destroy = lc_destroy,
};
