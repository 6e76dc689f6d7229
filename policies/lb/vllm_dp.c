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
 * picks. O(n) per pick.
 */
#include "lb.h"
#include "lb_llm.h"

#include <stdlib.h>

static void *dp_init(int n_servers, gsl_rng *rng)
{
    lb_wrr *w = calloc(1, sizeof *w);

    (void)rng;
    if (w && n_servers > 0 && !lb_wrr_reserve(w, n_servers)) {
        free(w);
        return NULL;
    }
    return w;
}

static void dp_destroy(void *state)
{
    lb_wrr_free(state);
    free(state);
}

static long long dp_score(const lb_server_view *s)
{
    return 4LL * s->llm_waiting + s->llm_running;
}

static int dp_pick(void *state, const lb_view *view, const lb_request *req)
{
    const lb_server_view *s = view->servers;
    int best = -1, loaded = 0;

    (void)req;
    for (int i = 0; i < view->n; i++) {
        if (!lb_server_eligible(&s[i]))
            continue;
        loaded |= dp_score(&s[i]) != 0;
        if (best < 0 || dp_score(&s[i]) < dp_score(&s[best]))
            best = i;
    }
    if (best < 0 || loaded)
        return best;
    return lb_llm_least_conn(state, view);
}

static void dp_done(void *state, const lb_view *view, int server, double latency_s,
                    lb_result result)
{
    (void)latency_s;
    if (result == LB_ERROR)   /* the fallback's effective weight, as least_conn */
        lb_wrr_failed(state, view, server);
}

const struct lb_ops lb_vllm_dp = {
    .name = "vllm_dp",
    .summary = "lowest 4 x waiting + running, ties to the lowest index; least_conn when all are 0 (vLLM data-parallel DPLBAsyncMPClient)",
    .init = dp_init,
    .pick = dp_pick,
    .on_done = dp_done,
    .destroy = dp_destroy,
};
