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
 * O(n) per pick on an untracked view; O(log n) on a tracked one (lb.h): the
 * eligible servers' outstanding tokens in a segment tree (lb_index.h's
 * lb_min_index: the least, how many hold it, the first of them), and the
 * fallback from least_conn's index (lb_llm_least_conn_ix). The same server
 * as the scan, ties and fallback included.
 */
#include "lb.h"
#include "lb_llm.h"

#include <stdlib.h>

struct lt_state {
    lb_wrr_index lc;   /* the fallback: nginx least_conn, indexed */
    lb_min_index ix;   /* the eligible servers by outstanding tokens */
};

static double lt_key(const lb_server_view *s)
{
    return s->outstanding_tokens;
}

static void *lt_init(int n_servers, gsl_rng *rng)
{
    struct lt_state *st = calloc(1, sizeof *st);

    (void)rng;
    if (!st)
        return NULL;
    st->lc.by_active = 1;
    st->ix.key = lt_key;
    if (n_servers > 0 && !lb_wrr_reserve(&st->lc.w, n_servers)) {
        free(st);
        return NULL;
    }
    return st;
}

static void lt_destroy(void *state)
{
    struct lt_state *st = state;

    lb_wrr_index_free(&st->lc);
    lb_min_index_free(&st->ix);
    free(st);
}

static void lt_change(void *state, const lb_view *view, int server)
{
    struct lt_state *st = state;

    lb_wrr_index_change(&st->lc, view, server);
    lb_min_index_change(&st->ix, view, server);
}

static int lt_pick(void *state, const lb_view *view, const lb_request *req)
{
    struct lt_state *st = state;
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
        loaded |= s[i].outstanding_tokens != 0.0;
        if (best < 0 || s[i].outstanding_tokens < s[best].outstanding_tokens)
            best = i;
    }
    if (best < 0 || loaded)
        return best;
    return lb_llm_least_conn_ix(&st->lc, view);
}

static void lt_done(void *state, const lb_view *view, int server, double latency_s,
                    lb_result result)
{
    struct lt_state *st = state;

    (void)latency_s;
    if (result != LB_ERROR)   /* the fallback's effective weight, as least_conn */
        return;
    lb_wrr_failed(&st->lc.w, view, server);
    lb_wrr_index_failed(&st->lc, server);
}

const struct lb_ops lb_least_tokens = {
    .name = "least_tokens",
    .summary = "fewest outstanding tokens, ties to the lowest index; least_conn when all are 0 (Splitwise token-JSQ)",
    .init = lt_init,
    .pick = lt_pick,
    .on_done = lt_done,
    .destroy = lt_destroy,
    .on_change = lt_change,
};
