/*
 * first.c - HAProxy `balance first`: the eligible server with the lowest
 * index takes the request, so a server only receives requests once every
 * server before it is at max_conns. Weights are ignored. Meant for pools
 * with max_conns set: it packs load onto few servers so that the rest can
 * be scaled in. Without max_conns everything goes to the first server up.
 * (HAProxy configuration manual, `balance first`; src/lb_fas.c.) O(n).
 */
#include "lb.h"

static int first_pick(void *state, const lb_view *view, const lb_request *req)
{
    (void)state;
    (void)req;
    for (int i = 0; i < view->n; i++)
        if (lb_server_eligible(&view->servers[i]))
            return i;
    return -1;
}

const struct lb_ops lb_first = {
    .name = "first",
    .summary = "lowest-numbered server below max_conns (HAProxy balance first)",
    .pick = first_pick,
};
