/*
 * jsq.c - join the shortest queue: a full scan for the server with the
 * fewest active requests, ties broken uniformly at random. This is Envoy's
 * least_request with selection_method FULL_SCAN
 * (source/extensions/load_balancing_policies/least_request/least_request_lb.cc,
 * unweightedHostPickFullScan: reservoir sampling over the tied hosts), and
 * the supermarket model's JSQ. Weights are ignored. Draws one random number
 * per tie met, none without ties. O(n) per pick.
 */
#include "lb.h"

static void *jsq_init(int n_servers, gsl_rng *rng)
{
    (void)n_servers;
    return rng;   /* the whole state; NULL (no rng) makes lb_create fail */
}

static void jsq_destroy(void *state)
{
    (void)state;   /* the rng is borrowed */
}

static int jsq_pick(void *state, const lb_view *view, const lb_request *req)
{
    gsl_rng *rng = state;
    const lb_server_view *s = view->servers;
    int best = -1;
    unsigned long tied = 0;

    (void)req;
    for (int i = 0; i < view->n; i++) {
        if (!lb_server_eligible(&s[i]))
            continue;
        if (best < 0 || s[i].active < s[best].active) {
            best = i;
            tied = 1;
        } else if (s[i].active == s[best].active) {
            /* each of the k tied so far ends up chosen with chance 1/k */
            if (gsl_rng_uniform_int(rng, ++tied) == 0)
                best = i;
        }
    }
    return best;
}

const struct lb_ops lb_jsq = {
    .name = "jsq",
    .summary = "fewest active requests over all servers, random among ties (Envoy least_request FULL_SCAN)",
    .init = jsq_init,
    .pick = jsq_pick,
    .destroy = jsq_destroy,
};
