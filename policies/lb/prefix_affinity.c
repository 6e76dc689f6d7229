/*
 * prefix_affinity.c - SGLang's cache-aware router (sgl-project/sglang
 * sgl-router/src/policies/cache_aware.rs, CacheAwarePolicy::select_worker;
 * defaults from sgl-router/src/policies/mod.rs, CacheAwareConfig).
 *
 * The load is each server's `active` requests: SGLang's Worker::load(), the
 * router's own count of requests in flight to a worker
 * (sgl-router/src/core/worker.rs). Over the servers that are up (at
 * max_conns or not):
 * 1. imbalanced, when max - min > balance_abs_threshold and
 *    max > balance_rel_threshold x min (both strict; 32 and 1.1): the
 *    eligible server with the fewest active requests, the lowest index on a
 *    tie (Rust's min_by_key keeps the first);
 * 2. otherwise, the eligible server whose prefix index holds the longest
 *    run of the request's hashes from the first; if the match rate
 *    (matched blocks x hash_block_tokens, at most the prompt, over the
 *    prompt's tokens) is above cache_threshold (0.5, strict), that server,
 *    else the eligible server with the smallest index (fewest hashes), the
 *    lowest index on a tie.
 * Either way the request's hashes then go into the chosen server's index,
 * as SGLang inserts the request text into the chosen worker's tree in both
 * branches.
 *
 * The index (policies/lb_llm.h) stands for SGLang's approximate radix tree:
 * per server, the prefix hashes the policy sent there, at block rather than
 * character granularity. The tree's global longest match, with a tenant of
 * the deepest node matched, is the longest per-server match, and a tenant's
 * char count is its number of hashes here. Simplifications:
 * - ties between servers with the same match or the same tree size go to
 *   the lowest index; SGLang takes the first tenant its DashMap yields;
 * - only eligible servers are candidates; SGLang may choose an unhealthy
 *   worker from the tree and then falls back to the first healthy one;
 * - the bound (prefix_blocks; SGLang's max_tree_size, 10000, here in
 *   hashes) holds at every insert, evicting the least recently used hashes,
 *   deepest first; SGLang evicts LRU leaves down to it every
 *   eviction_interval_secs (30 s), so its tree may exceed it in between;
 * - prefix_match's refresh of the matched tenant's access times, when the
 *   request then goes to another server, is not reproduced;
 * - a server switched off and replaced in its slot keeps its index: the
 *   view does not tell the policy (SGLang removes a removed worker's tenant).
 * Fallback (policies/lb_llm.h): a request without prefix hashes (a batch
 * request, or a trace without hash_ids) goes by nginx least_conn, since
 * SGLang would route every empty text to the same smallest tree.
 *
 * Cost: on a view it reads whole, O(n x matched blocks) per pick. On the
 * tracked view, segment trees (lb_index.h) keep the least and most active
 * of the servers up, the eligible server with the fewest active and the one
 * with the fewest hashes, and the longest match is the lowest eligible
 * holder of the deepest hash some server holds (lb_prefix_known): O(blocks
 * + log n), plus the holders passed over for not being eligible. Hashes
 * that are not chained (lb_llm.c) turn the match back into the walk over
 * every server; the trees stay.
 */
#include "lb.h"
#include "lb_llm.h"

#include <math.h>
#include <stdlib.h>

#define PA_DEFAULT_BLOCKS 10000   /* SGLang CacheAwareConfig max_tree_size */

struct pa_state {
    lb_wrr_index lc;     /* the fallback: nginx least_conn, indexed */
    lb_prefix *index;
    double cache_threshold;
    int abs_threshold;
    double rel_threshold;
    /* on the tracked view (valid: built from it whole since START) */
    int tracked, valid;
    lb_mintree up_lo;    /* active of the servers up and not down */
    lb_mintree up_hi;    /* minus that: the most active */
    lb_mintree el_active, el_size;  /* eligible servers' active, hashes */
};

static void *pa_init(int n_servers, gsl_rng *rng, const lb_params *params)
{
    struct pa_state *st = calloc(1, sizeof *st);

    (void)rng;
    if (!st)
        return NULL;
    st->lc.by_active = 1;
    st->index = lb_prefix_new(params->prefix_blocks > 0 ? params->prefix_blocks
                                                         : PA_DEFAULT_BLOCKS);
    if (!st->index || (n_servers > 0 && !lb_wrr_reserve(&st->lc.w, n_servers))) {
        lb_prefix_free(st->index);
        free(st);
        return NULL;
    }
    st->cache_threshold = params->cache_threshold;
    st->abs_threshold = params->balance_abs_threshold;
    st->rel_threshold = params->balance_rel_threshold;
    return st;
}

static void pa_destroy(void *state)
{
    struct pa_state *st = state;

    lb_wrr_index_free(&st->lc);
    lb_prefix_free(st->index);
    lb_mintree_free(&st->up_lo);
    lb_mintree_free(&st->up_hi);
    lb_mintree_free(&st->el_active);
    lb_mintree_free(&st->el_size);
    free(st);
}

/* Server i's keys in the trees. */
static void pa_place(struct pa_state *st, const lb_server_view *s, int i)
{
    int up = s->up && !s->down, elig = lb_server_eligible(s);
    lb_mintree_set(&st->up_lo, i, up ? s->active : INFINITY);
    lb_mintree_set(&st->up_hi, i, up ? -(double)s->active : INFINITY);
    lb_mintree_set(&st->el_active, i, elig ? s->active : INFINITY);
    lb_mintree_set(&st->el_size, i, elig ? lb_prefix_size(st->index, i) : INFINITY);
}

/* The trees hold this view: built now if they did not. */
static int pa_ready(struct pa_state *st, const lb_view *view)
{
    if (!st->tracked || (st->valid && st->up_lo.n != view->n))
        st->valid = 0;
    if (st->tracked && !st->valid && view->n > 0 && lb_mintree_reset(&st->up_lo, view->n) &&
        lb_mintree_reset(&st->up_hi, view->n) && lb_mintree_reset(&st->el_active, view->n) &&
        lb_mintree_reset(&st->el_size, view->n)) {
        for (int i = 0; i < view->n; i++)
            pa_place(st, &view->servers[i], i);
        st->valid = 1;
    }
    return st->valid;
}

static void pa_change(void *state, const lb_view *view, int server)
{
    struct pa_state *st = state;

    lb_wrr_index_change(&st->lc, view, server);
    if (lb_index_notice(&st->tracked, &st->valid, st->up_lo.n, server))
        pa_place(st, &view->servers[server], server);
}

/* SGLang's is_imbalanced, on the active requests of the servers that are up. */
static int pa_imbalanced(const struct pa_state *st, const lb_view *view)
{
    int lo = 0, hi = 0, any = 0;

    if (st->valid) {
        if (st->up_lo.finite == 0)
            return 0;
        lo = (int)lb_mintree_least(&st->up_lo);
        hi = -(int)lb_mintree_least(&st->up_hi);
        return (long long)hi - lo > st->abs_threshold && hi > st->rel_threshold * lo;
    }
    for (int i = 0; i < view->n; i++) {
        const lb_server_view *s = &view->servers[i];
        if (!s->up || s->down)
            continue;
        if (!any || s->active < lo)
            lo = s->active;
        if (!any || s->active > hi)
            hi = s->active;
        any = 1;
    }
    return any && (long long)hi - lo > st->abs_threshold && hi > st->rel_threshold * lo;
}

/* The share of the prompt the matched blocks cover, SGLang's match_rate
 * (matched characters / text characters). A trace's last block may be
 * partial (Mooncake: ceil(input / 512) hashes): capped at the prompt. */
static double pa_match_rate(const lb_request *req, int matched)
{
    if (req->hash_block_tokens <= 0 || req->input_tokens <= 0)
        return (double)matched / req->n_hashes;
    double covered = (double)matched * req->hash_block_tokens;
    return (covered < req->input_tokens ? covered : req->input_tokens) / req->input_tokens;
}

/* The balanced pick from the trees and the holders, when hashes are
 * chained: the same server as the walk below. */
static int pa_pick_known(struct pa_state *st, const lb_view *view, const lb_request *req,
                         int known)
{
    if (st->el_active.finite == 0)
        return -1;
    /* the longest match: the deepest hash an eligible server holds (its
     * holders match exactly that far: none holds the next one), the
     * lowest of them */
    for (int j = known; j >= 1; j--) {
        int h = lb_prefix_first_holder(st->index, req->hashes[j - 1], view);
        if (h >= 0)
            return pa_match_rate(req, j) > st->cache_threshold ? h
                                                               : lb_mintree_nth(&st->el_size, 0);
    }
    /* no match: a rate of 0 is not above a cache_threshold (0 to 1) */
    return lb_mintree_nth(&st->el_size, 0);
}

static int pa_pick(void *state, const lb_view *view, const lb_request *req)
{
    struct pa_state *st = state;
    const lb_server_view *s = view->servers;
    int pick = -1, known;

    if (!req || !req->hashes || req->n_hashes <= 0)
        return lb_llm_least_conn_ix(&st->lc, view);
    pa_ready(st, view);
    if (pa_imbalanced(st, view)) {
        pick = st->valid ? lb_mintree_nth(&st->el_active, 0) : -1;
        for (int i = 0; !st->valid && i < view->n; i++)
            if (lb_server_eligible(&s[i]) && (pick < 0 || s[i].active < s[pick].active))
                pick = i;
    } else if (st->valid && (known = lb_prefix_known(st->index, req->hashes, req->n_hashes)) >= 0) {
        pick = pa_pick_known(st, view, req, known);
    } else {
        int best = -1, best_len = 0, small = -1, small_size = 0;
        for (int i = 0; i < view->n; i++) {
            if (!lb_server_eligible(&s[i]))
                continue;
            int len = lb_prefix_match(st->index, i, req->hashes, req->n_hashes);
            int size = lb_prefix_size(st->index, i);
            if (best < 0 || len > best_len) {
                best = i;
                best_len = len;
            }
            if (small < 0 || size < small_size) {
                small = i;
                small_size = size;
            }
        }
        pick = best >= 0 && pa_match_rate(req, best_len) > st->cache_threshold ? best : small;
    }
    if (pick >= 0) {
        lb_prefix_insert(st->index, pick, req->hashes, req->n_hashes);
        if (st->valid)
            pa_place(st, &s[pick], pick);   /* its hash count */
    }
    return pick;
}

static void pa_done(void *state, const lb_view *view, int server, double latency_s,
                    lb_result result)
{
    struct pa_state *st = state;

    (void)latency_s;
    if (result != LB_ERROR)   /* the fallback's effective weight, as least_conn */
        return;
    lb_wrr_failed(&st->lc.w, view, server);
    lb_wrr_index_failed(&st->lc, server);
}

const struct lb_ops lb_prefix_affinity = {
    .name = "prefix_affinity",
    .summary = "least active when imbalanced, else the best prefix match above cache_threshold, else the smallest prefix tree (SGLang cache-aware router)",
    .init_with = pa_init,
    .pick = pa_pick,
    .on_done = pa_done,
    .destroy = pa_destroy,
    .on_change = pa_change,
};
