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
 *
 * O(log n) per pick on a tracked view (lb.h) whose servers all have one
 * integer weight and no failure on record (no lowered effective weight):
 * the eligible servers sit in groups by active requests (lb_index.h's
 * lb_swrr), the least group is the tie set, and its smooth WRR pick is the
 * group's heap top. Otherwise, or on an untracked view, the O(n) scan below,
 * which is also the index's definition: both give the same server and
 * leave the same current_weight.
 */
#include "lb.h"
#include "lb_index.h"
#include "lb_wrr.h"

#include <stdlib.h>

static void *lc_init(int n_servers, gsl_rng *rng)
{
    lb_wrr_index *x = calloc(1, sizeof *x);

    (void)rng;
    if (!x)
        return NULL;
    x->by_active = 1;
    if (n_servers > 0 && !lb_wrr_reserve(&x->w, n_servers)) {
        free(x);
        return NULL;
    }
    return x;
}

static void lc_destroy(void *state)
{
    lb_wrr_index_free(state);
    free(state);
}

static void lc_change(void *state, const lb_view *view, int server)
{
    lb_wrr_index_change(state, view, server);
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

static int lc_scan(lb_wrr *w, const lb_view *view)
{
    const lb_server_view *s = view->servers;
    int best = -1, many = 0, tie;

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
    tie = lb_wrr_pick(w, view, best, lc_tied, &s[best]);
    return tie >= 0 ? tie : best;   /* -1: no memory for the tie-break state */
}

static int lc_pick(void *state, const lb_view *view, const lb_request *req)
{
    lb_wrr_index *x = state;

    (void)req;
    if (!lb_wrr_index_ready(x, view))
        return lc_scan(&x->w, view);
    return lb_wrr_index_least(x);
}

static void lc_done(void *state, const lb_view *view, int server, double latency_s,
                    lb_result result)
{
    lb_wrr_index *x = state;

    (void)latency_s;
    if (result != LB_ERROR)   /* nginx NGX_PEER_FAILED; a 5xx passed on is not */
        return;
    lb_wrr_failed(&x->w, view, server);
    lb_wrr_index_failed(x, server);
}

const struct lb_ops lb_least_conn = {
    .name = "least_conn",
    .summary = "fewest active requests per weight, ties by smooth weighted round robin (nginx least_conn)",
    .init = lc_init,
    .pick = lc_pick,
    .on_done = lc_done,
    .destroy = lc_destroy,
    .on_change = lc_change,
};
