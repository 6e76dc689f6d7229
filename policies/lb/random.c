/*
 * random.c - weighted random: each request goes to an eligible server drawn
 * with probability proportional to its weight. Memoryless, so it shows what
 * load balancing costs when the balancer knows nothing about load.
 * Draws exactly one gsl_rng_uniform() per pick that has an eligible server
 * (none when there is none), so a run is reproducible from the rng's seed.
 * O(n) per pick, two passes over the view, except on a tracked view (lb.h)
 * with integer weights: O(log n), the eligible servers' weights in a
 * Fenwick tree (lb_index.h) whose exact integer sums find the server the
 * scan finds for the same draw.
 */
#include "lb.h"
#include "lb_index.h"

#include <gsl/gsl_rng.h>
#include <stdlib.h>

struct random_state {
    gsl_rng *rng;        /* borrowed */
    int tracked;   /* between LB_TRACK_START and LB_TRACK_STOP (lb.h) */
    int valid;           /* weights holds the tracked view's eligible servers */
    lb_fenwick weights;  /* an eligible server's weight, else 0 */
};

static void *random_init(int n_servers, gsl_rng *rng)
{
    struct random_state *st;

    (void)n_servers;
    if (!rng)
        return NULL;   /* lb_create fails */
    st = calloc(1, sizeof *st);
    if (st)
        st->rng = rng;
    return st;
}

static void random_destroy(void *state)
{
    struct random_state *st = state;

    lb_fenwick_free(&st->weights);
    free(st);
}

/* Server i's entry; 0 if its weight is not one the tree sums exactly. */
static int random_place(struct random_state *st, const lb_server_view *s, int i)
{
    if (!lb_index_weight_ok(s->weight))
        return 0;
    lb_fenwick_set(&st->weights, i, lb_server_eligible(s) ? s->weight : 0.0);
    return 1;
}

static void random_change(void *state, const lb_view *view, int server)
{
    struct random_state *st = state;

    if (server < 0) {   /* LB_TRACK_START / LB_TRACK_STOP */
        st->tracked = server == LB_TRACK_START;
        st->valid = 0;
        return;
    }

    if (st->valid && (server >= st->weights.n || !random_place(st, &view->servers[server], server)))
        st->valid = 0;
}

static int random_build(struct random_state *st, const lb_view *view)
{
    if (view->n <= 0 || !lb_fenwick_reset(&st->weights, view->n))
        return 0;
    for (int i = 0; i < view->n; i++)
        if (!random_place(st, &view->servers[i], i))
            return 0;
    st->valid = 1;
    return 1;
}

static int random_pick(void *state, const lb_view *view, const lb_request *req)
{
    struct random_state *st = state;
    gsl_rng *rng = st->rng;
    double total_weight = 0.0, u, acc = 0.0;
    int last = -1;

    (void)req;
    if (!st->tracked || (st->valid && st->weights.n != view->n))
        st->valid = 0;
    if (st->tracked && !st->valid)
        random_build(st, view);
    if (st->valid) {
        if (!(st->weights.total > 0.0))
            return -1;
        u = gsl_rng_uniform(rng) * st->weights.total;
        int i = lb_fenwick_find(&st->weights, u);
        /* u rounded up to the total: the last eligible one */
        return i >= 0 ? i : lb_fenwick_last(&st->weights);
    }
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
    .on_change = random_change,
};
