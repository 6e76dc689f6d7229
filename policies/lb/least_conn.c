/*
 * least_conn.c - nginx's least_conn: each request goes to the eligible server
 * with the fewest active requests relative to its weight; servers tied at
 * that minimum share requests by smooth weighted round robin. This is what
 * an `upstream { least_conn; ... }` block does, so a scenario can be checked
 * against the nginx configuration it models.
 *
 * Semantics follow nginx src/http/modules/ngx_http_upstream_least_conn_module.c
 * (ngx_http_upstream_get_least_conn_peer). Not modelled: max_fails /
 * fail_timeout (a failed server is `up = 0` in the view instead, so
 * effective_weight always equals weight) and the per-request `tried` bitmap.
 * O(n) per pick.
 */
#include "lb.h"

#include <stdlib.h>

struct lc_state {
    int cap;                  /* entries in current_weight */
    double *current_weight;   /* nginx peer->current_weight, by server */
};

static void *lc_init(int n_servers, gsl_rng *rng)
{
    struct lc_state *st = calloc(1, sizeof *st);

    (void)rng;
    if (!st)
        return NULL;
    if (n_servers > 0) {
        st->current_weight = calloc((size_t)n_servers, sizeof *st->current_weight);
        if (!st->current_weight) {
            free(st);
            return NULL;
        }
        st->cap = n_servers;
    }
    return st;
}

static void lc_destroy(void *state)
{
    struct lc_state *st = state;

    free(st->current_weight);
    free(st);
}

/* Room for n servers; new servers start at current_weight 0, as a server
 * added to an nginx upstream does. 0 when out of memory. */
static int lc_reserve(struct lc_state *st, int n)
{
    double *cw;

    if (n <= st->cap)
        return 1;
    cw = realloc(st->current_weight, (size_t)n * sizeof *cw);
    if (!cw)
        return 0;
    for (int i = st->cap; i < n; i++)
        cw[i] = 0.0;
    st->current_weight = cw;
    st->cap = n;
    return 1;
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

static int lc_pick(void *state, const lb_view *view, const lb_request *req)
{
    struct lc_state *st = state;
    const lb_server_view *s = view->servers;
    int best = -1, first, many = 0;
    double total = 0.0;

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
    if (!lc_reserve(st, view->n))
        return best;   /* no memory for the tie-break state: first at minimum */

    /* Pass 2, only among the tied servers from the first one on: smooth
     * weighted round robin. Each adds its weight to its current_weight; the
     * largest current_weight wins (strictly larger, so the lowest index wins
     * an equal one); the winner gives back the sum of the weights added.
     * Servers not tied keep their current_weight untouched, as in nginx. */
    first = best;
    for (int i = first; i < view->n; i++) {
        if (!lb_server_eligible(&s[i]) || !lc_equal(&s[i], &s[first]))
            continue;
        st->current_weight[i] += s[i].weight;
        total += s[i].weight;
        if (st->current_weight[i] > st->current_weight[best])
            best = i;
    }
    st->current_weight[best] -= total;
    return best;
}

const struct lb_ops lb_least_conn = {
    .name = "least_conn",
    .summary = "fewest active requests per weight, ties by smooth weighted round robin (nginx least_conn)",
    .init = lc_init,
    .pick = lc_pick,
    .destroy = lc_destroy,
};
