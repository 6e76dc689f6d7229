/*
 * first.c - HAProxy `balance first`: the eligible server with the lowest
 * index takes the request, so a server only receives requests once every
 * server before it is at max_conns. Weights are ignored. Meant for pools
 * with max_conns set: it packs load onto few servers so that the rest can
 * be scaled in. Without max_conns everything goes to the first server up.
 * (HAProxy configuration manual, `balance first`; src/lb_fas.c.) O(n) on
 * an untracked view; O(log n) on a tracked one (lb.h), the eligible servers
 * counted in a Fenwick tree (lb_index.h).
 */
#include "lb.h"
#include "lb_index.h"

#include <stdlib.h>

struct first_state {
    lb_elig_index ix;
};

static void *first_init(int n_servers, gsl_rng *rng)
{
    (void)n_servers;
    (void)rng;
    return calloc(1, sizeof(struct first_state));
}

static void first_destroy(void *state)
{
    struct first_state *st = state;

    lb_elig_index_free(&st->ix);
    free(st);
}

static void first_change(void *state, const lb_view *view, int server)
{
    lb_elig_index_change(&((struct first_state *)state)->ix, view, server);
}

static int first_pick(void *state, const lb_view *view, const lb_request *req)
{
    struct first_state *st = state;

    (void)req;
    if (lb_elig_index_ready(&st->ix, view))
        return lb_fenwick_find(&st->ix.elig, 0.0);
    for (int i = 0; i < view->n; i++)
        if (lb_server_eligible(&view->servers[i]))
            return i;
    return -1;
}

const struct lb_ops lb_first = {
    .name = "first",
    .summary = "lowest-numbered server below max_conns (HAProxy balance first)",
    .init = first_init,
    .pick = first_pick,
    .destroy = first_destroy,
    .on_change = first_change,
};
