/*
 * jsq.c - join the shortest queue: the server with the fewest active
 * requests, ties broken uniformly at random; weights ignored. This is
 * Envoy's least_request with selection_method FULL_SCAN
 * (source/extensions/load_balancing_policies/least_request/least_request_lb.cc,
 * unweightedHostPickFullScan) and the supermarket model's JSQ.
 *
 * Envoy breaks ties by reservoir sampling: walking the hosts it draws one
 * random number per host tied with the running minimum, so its random
 * stream depends on every host. fleetsim draws once instead: with k servers
 * tied at the minimum, one gsl_rng_uniform_int(rng, k) = r picks the r-th of
 * them in index order (no draw when k = 1). Each tied server is chosen with
 * chance 1/k either way, the same distribution (tests/policies/
 * test_lb_index.c enumerates it), but not the same random numbers as
 * Envoy's walk. One draw is what lets a pick be O(log n): on a tracked view
 * (lb.h) the eligible servers' active counts sit in a segment tree
 * (lb_index.h's lb_mintree) that gives the minimum, the size of its tie set
 * and its r-th member; on an untracked view the O(n) scan below makes the
 * same pick from the same draw.
 */
#include "lb.h"
#include "lb_index.h"

#include <stdlib.h>

struct jsq_state {
    gsl_rng *rng;   /* borrowed */
    lb_min_index ix;
};

static double jsq_key(const lb_server_view *s)
{
    return (double)s->active;
}

static void *jsq_init(int n_servers, gsl_rng *rng)
{
    struct jsq_state *st;

    (void)n_servers;
    if (!rng)
        return NULL;
    st = calloc(1, sizeof *st);
    if (!st)
        return NULL;
    st->rng = rng;
    st->ix.key = jsq_key;
    return st;
}

static void jsq_destroy(void *state)
{
    struct jsq_state *st = state;

    lb_min_index_free(&st->ix);
    free(st);
}

static void jsq_change(void *state, const lb_view *view, int server)
{
    lb_min_index_change(&((struct jsq_state *)state)->ix, view, server);
}

/* The r-th of k tied: one draw when there is a choice. */
static int draw(gsl_rng *rng, int k)
{
    return k > 1 ? (int)gsl_rng_uniform_int(rng, (unsigned long)k) : 0;
}

static int jsq_pick(void *state, const lb_view *view, const lb_request *req)
{
    struct jsq_state *st = state;
    const lb_server_view *s = view->servers;
    int best = -1, tied = 0;

    (void)req;
    if (lb_min_index_ready(&st->ix, view)) {
        int k = lb_mintree_ties(&st->ix.t);
        return k > 0 ? lb_mintree_nth(&st->ix.t, draw(st->rng, k)) : -1;
    }
    /* the scan: the minimum and its tie count, then the r-th tied */
    for (int i = 0; i < view->n; i++) {
        if (!lb_server_eligible(&s[i]))
            continue;
        if (best < 0 || s[i].active < s[best].active) {
            best = i;
            tied = 1;
        } else if (s[i].active == s[best].active) {
            tied++;
        }
    }
    if (tied <= 1)
        return best;
    int r = draw(st->rng, tied);
    for (int i = best;; i++)
        if (lb_server_eligible(&s[i]) && s[i].active == s[best].active && r-- == 0)
            return i;
}

const struct lb_ops lb_jsq = {
    .name = "jsq",
    .summary = "fewest active requests over all servers, uniform among ties (Envoy least_request FULL_SCAN)",
    .init = jsq_init,
    .pick = jsq_pick,
    .destroy = jsq_destroy,
    .on_change = jsq_change,
};
