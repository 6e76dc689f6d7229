/*
 * round_robin.c - plain round robin: each request goes to the next eligible
 * server after the one picked last, cyclically, skipping servers that are
 * down or at max_conns. Weights are ignored (weighted smooth round robin is
 * a separate policy). The baseline to compare smarter policies against.
 */
#include "lb.h"

#include <stdlib.h>

struct rr_state {
    int last;   /* server picked last; -1 before the first pick */
};

static void *rr_init(int n_servers, gsl_rng *rng)
{
    struct rr_state *st = malloc(sizeof *st);

    (void)n_servers;
    (void)rng;
    if (st)
        st->last = -1;
    return st;
}

static int rr_pick(void *state, const lb_view *view, const lb_request *req)
{
    struct rr_state *st = state;
    int n = view->n;
    /* Start after the last pick; from 0 before the first one, after the
     * last server, or when the pool shrank below the last pick. */
    int start = st->last + 1 < n ? st->last + 1 : 0;

    (void)req;
    for (int k = 0; k < n; k++) {
        int i = (start + k) % n;
        if (lb_server_eligible(&view->servers[i])) {
            st->last = i;
            return i;
        }
    }
    return -1;
}

const struct lb_ops lb_round_robin = {
    .name = "round_robin",
    .summary = "next eligible server in turn, weights ignored",
    .init = rr_init,
    .pick = rr_pick,
};
