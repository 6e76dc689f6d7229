/*
 * round_robin.c - plain round robin: each request goes to the next eligible
 * server after the one picked last, cyclically, skipping servers that are
 * down or at max_conns. Weights are ignored (weighted smooth round robin is
 * a separate policy). The baseline to compare smarter policies against.
 * O(n) per pick at worst on an untracked view; O(log n) on a tracked one
 * (lb.h), the eligible servers counted in a Fenwick tree (lb_index.h).
 */
#include "lb.h"
#include "lb_index.h"

#include <stdlib.h>

struct rr_state {
    int last;   /* server picked last; -1 before the first pick */
    lb_elig_index ix;
};

static void *rr_init(int n_servers, gsl_rng *rng)
{
    struct rr_state *st = calloc(1, sizeof *st);

    (void)n_servers;
    (void)rng;
    if (st)
        st->last = -1;
    return st;
}

static void rr_destroy(void *state)
{
    struct rr_state *st = state;

    lb_elig_index_free(&st->ix);
    free(st);
}

static void rr_change(void *state, const lb_view *view, int server)
{
    lb_elig_index_change(&((struct rr_state *)state)->ix, view, server);
}

/* The first eligible server at or after start, else the first one; -1. */
static int rr_indexed(struct rr_state *st, int start)
{
    const lb_fenwick *elig = &st->ix.elig;
    double before = lb_fenwick_prefix(elig, start);
    int i = lb_fenwick_find(elig, before < elig->total ? before : 0.0);
    if (i >= 0)
        st->last = i;
    return i;
}

static int rr_pick(void *state, const lb_view *view, const lb_request *req)
{
    struct rr_state *st = state;
    int n = view->n;
    /* Start after the last pick; from 0 before the first one, after the
     * last server, or when the pool shrank below the last pick. */
    int start = st->last + 1 < n ? st->last + 1 : 0;

    (void)req;
    if (lb_elig_index_ready(&st->ix, view))
        return rr_indexed(st, start);
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
    .destroy = rr_destroy,
    .on_change = rr_change,
};
