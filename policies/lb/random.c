/*
 * random.c - weighted random: each request goes to an eligible server drawn
 * with probability proportional to its weight. Memoryless, so it shows what
 * load balancing costs when the balancer knows nothing about load.
 * Draws exactly one gsl_rng_uniform() per pick that has an eligible server
 * (none when there is none), so a run is reproducible from the rng's seed.
 * O(n) per pick: two passes over the view.
 */
#include "lb.h"

#include <gsl/gsl_rng.h>

static void *random_init(int n_servers, gsl_rng *rng)
{
    (void)n_servers;
    return rng;   /* the whole state; NULL (no rng) makes lb_create fail */
}

/* The state is the borrowed rng: not ours to free (a NULL destroy would). */
static void random_destroy(void *state)
{
    (void)state;
}

static int random_pick(void *state, const lb_view *view, const lb_request *req)
{
    gsl_rng *rng = state;
    double total_weight = 0.0, u, acc = 0.0;
    int last = -1;

    (void)req;
    for (int i = 0; i < view->n; i++)
        if (lb_server_eligible(&view->servers[i]))
            total_weight += view->servers[i].weight;
    if (!(total_weight > 0.0))
        return -1;
    u = gsl_rng_uniform(rng) * total_weight;   /* in [0, total_weight) */
    for (int i = 0; i < view->n; i++) {
        if (!lb_server_eligible(&view->servers[i]))
            continue;
        acc += view->servers[i].weight;
        last = i;
        if (u < acc)
            return i;
    }
    /* u * total rounded up to the last partial sum: the last eligible one. */
    return last;
}

const struct lb_ops lb_random = {
    .name = "random",
    .summary = "eligible server drawn at random, proportional to weight",
    .init = random_init,
    .pick = random_pick,
    .destroy = random_destroy,
};
