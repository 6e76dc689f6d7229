/*
 * vllm_dp.c - vLLM's data-parallel balancer: each request goes to the
 * eligible server with the lowest 4 x waiting + running (lb_server_view
 * llm_waiting, llm_running). vllm/v1/engine/core_client.py,
 * DPLBAsyncMPClient.get_core_engine_for_request: `score = waiting * 4 +
 * running`, scanned from eng_start_index and replaced only by a strictly
 * lower score, so a tie goes to the first engine scanned. The scan starts
 * at the client's own offset (0 for a single API server); here it starts at
 * server 0: the lowest index wins a tie.
 *
 * Not modelled: after each pick vLLM adds client_count to its local copy of
 * the chosen engine's waiting count, which the coordinator overwrites with
 * the engines' real counts every 100 ms (vllm/v1/engine/coordinator.py).
 * The view here is the servers' own count, kept as it changes, so there is
 * no 100 ms staleness to make up for; what remains is the link: a request
 * in flight to a server is not yet in its count (inference-sim BLIS
 * docs/guide/routing.md leaves the local increment out for the same reason).
 * Fallback (policies/lb_llm.h): when every eligible server has nothing
 * waiting or running (a batch pool, an idle LLM pool) nginx least_conn
 * picks.
 * The pick, its index and its fallback are lb_llm.h's lb_llm_keyed_*
 * (shared with least_tokens): O(n) per pick on an untracked view, O(log n) on a
 * tracked one, the same server either way, ties and fallback included.
 */
#include "lb.h"
#include "lb_llm.h"

/* an integer, exact as a double */
static double dp_key(const lb_server_view *s)
{
    return (double)(4LL * s->llm_waiting + s->llm_running);
}

static void *dp_init(int n_servers, gsl_rng *rng)
{
    (void)rng;
    return lb_llm_keyed_init(n_servers, dp_key);
}

const struct lb_ops lb_vllm_dp = {
    .name = "vllm_dp",
    .summary = "lowest 4 x waiting + running, ties to the lowest index; least_conn when all are 0 (vLLM data-parallel DPLBAsyncMPClient)",
    .init = dp_init,
    .pick = lb_llm_keyed_pick,
    .on_done = lb_llm_keyed_done,
    .destroy = lb_llm_keyed_destroy,
    .on_change = lb_llm_keyed_change,
};
