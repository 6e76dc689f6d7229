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
 * to rank by, and nginx least_conn picks instead.
 * The pick, its index and its fallback are lb_llm.h's lb_llm_keyed_*
 * (shared with vllm_dp): O(n) per pick on an untracked view, O(log n) on a
 * tracked one, the same server either way, ties and fallback included.
 */
#include "lb.h"
#include "lb_llm.h"

static double lt_key(const lb_server_view *s)
{
    return s->outstanding_tokens;
}

static void *lt_init(int n_servers, gsl_rng *rng)
{
    (void)rng;
    return lb_llm_keyed_init(n_servers, lt_key);
}

const struct lb_ops lb_least_tokens = {
    .name = "least_tokens",
    .summary = "fewest outstanding tokens, ties to the lowest index; least_conn when all are 0 (Splitwise token-JSQ)",
    .init = lt_init,
    .pick = lb_llm_keyed_pick,
    .on_done = lb_llm_keyed_done,
    .destroy = lb_llm_keyed_destroy,
    .on_change = lb_llm_keyed_change,
};
