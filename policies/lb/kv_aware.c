/*
 * kv_aware.c - llm-d's weighted scorers (the Gateway API inference
 * extension's endpoint picker, which llm-d-inference-scheduler builds on):
 * each eligible server scores
 *     prefix_weight x prefix-match share
 *   + queue_weight  x queue score
 *   + kv_weight     x (1 - KV usage)
 * and the highest score wins, a tie by a uniform draw among the tied.
 * Defaults 2, 1, 1: llm-d's scorer weights, as inference-sim BLIS
 * docs/guide/routing.md gives its default profile ("llm-d parity").
 *
 * Each term, in kubernetes-sigs/gateway-api-inference-extension
 * pkg/epp/scheduling/framework/plugins/:
 * - prefixcachescorer/plugin.go, Score: blocks of the request's prompt the
 *   server is believed to hold, counted from the first, over the request's
 *   blocks (0 without blocks); the belief is the scorer's own LRU index of
 *   the hashes it sent to each server (indexer.go, added in PreRequest for
 *   the chosen server), bounded per server (lruCapacityPerServer, 31250);
 * - queuescorer/queue.go: (max - waiting) / (max - min) over the candidates'
 *   waiting requests (llm_waiting), 1 for all when they are all equal;
 * - kvcacheutilizationscorer/kvcache_utilization.go: 1 - KV usage
 *   (llm_kv_usage);
 * - picker/max_score_picker.go: shuffles the candidates, then a stable sort
 *   by score, so ties are broken uniformly at random; here by reservoir
 *   sampling over the tied, one draw per tie met, none without ties.
 *
 * Simplifications: the prefix index is the shared one of policies/lb_llm.h
 * over the trace's hash blocks; it evicts a request's deepest blocks first,
 * where the scorer's LRU gets a request's blocks in prompt order and so
 * drops the first block first. BLIS's default prefix scorer reads the
 * servers' real KV caches (precise-prefix-cache); this one is the
 * approximate, router-side kind. The signals are the view's, current, not
 * scraped every 50 ms. A server switched off and replaced in its slot keeps
 * its index.
 * Fallback (policies/lb_llm.h): when no eligible server has waiting
 * requests, KV usage or a prefix match (a batch pool, an idle LLM pool with
 * a new prefix) every score ties and nginx least_conn picks instead.
 * O(n x matched blocks) per pick.
 */
#include "lb.h"
#include "lb_llm.h"

#include <stdlib.h>

#define KA_DEFAULT_BLOCKS 31250   /* GIE prefix plugin DefaultLRUCapacityPerServer */

struct ka_state {
    gsl_rng *rng;        /* borrowed */
    lb_wrr wrr;          /* the fallback's smooth WRR */
    lb_prefix *index;
    double w_prefix, w_queue, w_kv;
};

static void *ka_init(int n_servers, gsl_rng *rng, const lb_params *params)
{
    struct ka_state *st;

    if (!rng)
        return NULL;
    st = calloc(1, sizeof *st);
    if (!st)
        return NULL;
    st->index = lb_prefix_new(params->prefix_blocks > 0 ? params->prefix_blocks
                                                         : KA_DEFAULT_BLOCKS);
    if (!st->index || (n_servers > 0 && !lb_wrr_reserve(&st->wrr, n_servers))) {
        lb_prefix_free(st->index);
        free(st);
        return NULL;
    }
    st->rng = rng;
    st->w_prefix = params->prefix_weight;
    st->w_queue = params->queue_weight;
    st->w_kv = params->kv_weight;
    return st;
}

static void ka_destroy(void *state)
{
    struct ka_state *st = state;

    lb_wrr_free(&st->wrr);
    lb_prefix_free(st->index);
    free(st);
}

static int ka_pick(void *state, const lb_view *view, const lb_request *req)
{
    struct ka_state *st = state;
    const lb_server_view *s = view->servers;
    const uint64_t *hashes = req ? req->hashes : NULL;
    int n_hashes = hashes && req->n_hashes > 0 ? req->n_hashes : 0;
    int lo = 0, hi = 0, any = 0, signal = 0, best = -1;
    double best_score = 0;
    unsigned long tied = 0;

    for (int i = 0; i < view->n; i++) {
        if (!lb_server_eligible(&s[i]))
            continue;
        if (!any || s[i].llm_waiting < lo)
            lo = s[i].llm_waiting;
        if (!any || s[i].llm_waiting > hi)
            hi = s[i].llm_waiting;
        any = 1;
        signal |= s[i].llm_waiting != 0 || s[i].llm_kv_usage != 0.0 ||
                  (n_hashes > 0 && lb_prefix_match(st->index, i, hashes, 1) > 0);
    }
    if (!any)
        return -1;
    if (!signal)
        best = lb_llm_least_conn(&st->wrr, view);
    for (int i = 0; signal && i < view->n; i++) {
        if (!lb_server_eligible(&s[i]))
            continue;
        double prefix = n_hashes > 0
            ? (double)lb_prefix_match(st->index, i, hashes, n_hashes) / n_hashes : 0.0;
        double queue = hi == lo ? 1.0 : (double)(hi - s[i].llm_waiting) / (double)(hi - lo);
        double score = st->w_prefix * prefix + st->w_queue * queue +
                       st->w_kv * (1.0 - s[i].llm_kv_usage);
        if (best < 0 || score > best_score) {
            best = i;
            best_score = score;
            tied = 1;
        } else if (score == best_score && gsl_rng_uniform_int(st->rng, ++tied) == 0) {
            best = i;   /* each of the k tied so far is kept with chance 1/k */
        }
    }
    if (n_hashes > 0 && best >= 0)   /* the scorer's PreRequest */
        lb_prefix_insert(st->index, best, hashes, n_hashes);
    return best;
}

static void ka_done(void *state, const lb_view *view, int server, double latency_s,
                    lb_result result)
{
    struct ka_state *st = state;

    (void)latency_s;
    if (result == LB_ERROR)   /* the fallback's effective weight, as least_conn */
        lb_wrr_failed(&st->wrr, view, server);
}

const struct lb_ops lb_kv_aware = {
    .name = "kv_aware",
    .summary = "max of prefix_weight x prefix share + queue_weight x queue score + kv_weight x free KV, random among ties (llm-d scorers)",
    .init_with = ka_init,
    .pick = ka_pick,
    .on_done = ka_done,
    .destroy = ka_destroy,
};
