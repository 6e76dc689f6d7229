/*
 * least_tokens.c - Splitwise's token-JSQ: each request goes to the eligible
 * server with the fewest outstanding tokens (lb_server_view
 * outstanding_tokens: prompt tokens not yet computed plus output tokens not
 * yet generated). Mutinifni/splitwise-sim scheduler.py, TokenJSQScheduler:
 * min(instances, key=sched_pending_tokens), so a tie goes to the lowest
 * index, as here (Python's min keeps the first of equal keys).
 *
 * Differences: Splitwise counts a request's prompt_size + 1 tokens when it
 * schedules it (its own bookkeeping, at once); the view counts what the
 * server's engines still have to do, prompt and answer, from the moment the
 * node accepts the request. A request in flight on the link is not yet in
 * the count.
 * Fallback (policies/lb_llm.h): when every eligible server has 0
 * outstanding tokens (a batch pool, an idle LLM pool) the rule has nothing
 * to rank by, and nginx least_conn picks instead. O(n) per pick.
 */
#include "lb.h"
#include "lb_llm.h"

#include <stdlib.h>

static void *lt_init(int n_servers, gsl_rng *rng)
{
    lb_wrr *w = calloc(1, sizeof *w);

    (void)rng;
    if (w && n_servers > 0 && !lb_wrr_reserve(w, n_servers)) {
        free(w);
        return NULL;
    }
    return w;
}

static void lt_destroy(void *state)
{
    lb_wrr_free(state);
    free(state);
}

static int lt_pick(void *state, const lb_view *view, const lb_request *req)
{
    const lb_server_view *s = view->servers;
    int best = -1, loaded = 0;

    (void)req;
    for (int i = 0; i < view->n; i++) {
        if (!lb_server_eligible(&s[i]))
            continue;
        loaded |= s[i].outstanding_tokens != 0.0;
        if (best < 0 || s[i].outstanding_tokens < s[best].outstanding_tokens)
            best = i;
    }
    if (best < 0 || loaded)
        return best;
    return lb_llm_least_conn(state, view);
}

static void lt_done(void *state, const lb_view *view, int server, double latency_s,
                    lb_result result)
{
    (void)latency_s;
    if (result == LB_ERROR)   /* the fallback's effective weight, as least_conn */
        lb_wrr_failed(state, view, server);
}

const struct lb_ops lb_least_tokens = {
    .name = "least_tokens",
    .summary = "fewest outstanding tokens, ties to the lowest index; least_conn when all are 0 (Splitwise token-JSQ)",
    .init = lt_init,
    .pick = lt_pick,
    .on_done = lt_done,
    .destroy = lt_destroy,
};
