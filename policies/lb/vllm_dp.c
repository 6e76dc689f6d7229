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
 * O(n) per pick on an untracked view; O(log n) on a tracked one (lb.h): the
 * eligible servers' scores in a segment tree (lb_index.h's lb_min_index:
 * the least, how many hold it, the first of them; integer scores, exact as
 * doubles), and the fallback from least_conn's index (lb_llm_least_conn_ix).
 * The same server as the scan, ties and fallback included.
 */
#include "lb.h"
#include "lb_llm.h"

#include <stdlib.h>

static long long dp_score(const lb_server_view *s)
{
    return 4LL * s->llm_waiting + s->llm_running;
}

struct dp_state {
    lb_wrr_index lc;   /* the fallback: nginx least_conn, indexed */
    lb_min_index ix;   /* the eligible servers by score */
};

static double dp_key(const lb_server_view *s)
{
    return (double)dp_score(s);
}

static void *dp_init(int n_servers, gsl_rng *rng)
{
    struct dp_state *st = calloc(1, sizeof *st);

    (void)rng;
    if (!st)
        return NULL;
    st->lc.by_active = 1;
    st->ix.key = dp_key;
    if (n_servers > 0 && !lb_wrr_reserve(&st->lc.w, n_servers)) {
        free(st);
        return NULL;
    }
    return st;
}

static void dp_destroy(void *state)
{
    struct dp_state *st = state;

    lb_wrr_index_free(&st->lc);
    lb_min_index_free(&st->ix);
    free(st);
}

static void dp_change(void *state, const lb_view *view, int server)
{
    struct dp_state *st = state;

    lb_wrr_index_change(&st->lc, view, server);
    lb_min_index_change(&st->ix, view, server);
}

static int dp_pick(void *state, const lb_view *view, const lb_request *req)
{
    struct dp_state *st = state;
    const lb_server_view *s = view->servers;
    int best = -1, loaded = 0;

    (void)req;
    if (lb_min_index_ready(&st->ix, view)) {
        /* the first server at the least key; loaded unless every
         * eligible server's key is 0 */
        const lb_mintree *t = &st->ix.t;
        if (t->finite == 0)
            return -1;
        if (lb_mintree_least(t) != 0.0 || lb_mintree_ties(t) < t->finite)
            return lb_mintree_nth(t, 0);
        return lb_llm_least_conn_ix(&st->lc, view);
    }
    for (int i = 0; i < view->n; i++) {
        if (!lb_server_eligible(&s[i]))
            continue;
        loaded |= dp_score(&s[i]) != 0;
        if (best < 0 || dp_score(&s[i]) < dp_score(&s[best]))
            best = i;
    }
    if (best < 0 || loaded)
        return best;
    return lb_llm_least_conn_ix(&st->lc, view);
}

static void dp_done(void *state, const lb_view *view, int server, double latency_s,
                    lb_result result)
{
    struct dp_state *st = state;

    (void)latency_s;
    if (result != LB_ERROR)   /* the fallback's effective weight, as least_conn */
        return;
    lb_wrr_failed(&st->lc.w, view, server);
    lb_wrr_index_failed(&st->lc, server);
}

const struct lb_ops lb_vllm_dp = {
    .name = "vllm_dp",
    .summary = "lowest 4 x waiting + running, ties to the lowest index; least_conn when all are 0 (vLLM data-parallel DPLBAsyncMPClient)",
    .init = dp_init,
    .pick = dp_pick,
    .on_done = dp_done,
    .destroy = dp_destroy,
    .on_change = dp_change,
};
