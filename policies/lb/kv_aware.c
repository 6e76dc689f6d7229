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
 *
 * Cost: O(n x matched blocks) per pick that scores, on a view read whole.
 * On the tracked view the policy counts the eligible servers with waiting
 * requests or KV usage and finds an eligible holder of the request's first
 * hash among that hash's holders (lb_prefix_holders), so that a pick
 * without any signal (a batch pool, an idle LLM pool) goes to least_conn's
 * index in O(log n) without reading every server; a pick that scores takes
 * the least and most waiting from segment trees and reads each server's
 * match from the holders of the request's hashes while they are chained
 * (lb_prefix_known): one pass over the servers, O(n + holders), instead of
 * two and a lookup per server and block. Scoring stays a walk: the queue score is
 * normalised by the candidates' current extremes and mixed with KV usage
 * by weights, so the best server under one pick's normalisation is not
 * the best under the next one's, and no order kept between picks holds.
 */
#include "lb.h"
#include "lb_llm.h"

#include <math.h>
#include <stdlib.h>

#define KA_DEFAULT_BLOCKS 31250   /* GIE prefix plugin DefaultLRUCapacityPerServer */

struct ka_state {
    gsl_rng *rng;        /* borrowed */
    lb_wrr_index lc;     /* the fallback: nginx least_conn, indexed */
    lb_prefix *index;
    double w_prefix, w_queue, w_kv;
    /* on the tracked view (valid: built from it whole since START) */
    int tracked, valid;
    lb_mintree wlo, whi; /* eligible servers' waiting, and minus it (wlo's
                            finite count: the eligible servers) */
    unsigned char *signal; /* per server: eligible, with waiting requests or
                              KV usage */
    int n_signal;
    int *match;          /* per server: its match for the pick being scored
                            (from the holders), else 0 */
};

static void *ka_init(int n_servers, gsl_rng *rng, const lb_params *params)
{
    struct ka_state *st;

    if (!rng)
        return NULL;
    st = calloc(1, sizeof *st);
    if (!st)
        return NULL;
    st->lc.by_active = 1;
    st->index = lb_prefix_new(params->prefix_blocks > 0 ? params->prefix_blocks
                                                         : KA_DEFAULT_BLOCKS);
    if (!st->index || (n_servers > 0 && !lb_wrr_reserve(&st->lc.w, n_servers))) {
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

    lb_wrr_index_free(&st->lc);
    lb_prefix_free(st->index);
    free(st->signal);
    free(st->match);
    lb_mintree_free(&st->wlo);
    lb_mintree_free(&st->whi);
    free(st);
}

/* Server i in the trees and the signal count. */
static void ka_place(struct ka_state *st, const lb_server_view *s, int i)
{
    int elig = lb_server_eligible(s);
    int sig = elig && (s->llm_waiting != 0 || s->llm_kv_usage != 0.0);
    st->n_signal += sig - st->signal[i];
    st->signal[i] = (unsigned char)sig;
    lb_mintree_set(&st->wlo, i, elig ? s->llm_waiting : INFINITY);
    lb_mintree_set(&st->whi, i, elig ? -(double)s->llm_waiting : INFINITY);
}

/* The trees and counts hold this view: made now if they did not. */
static int ka_ready(struct ka_state *st, const lb_view *view)
{
    if (!st->tracked || (st->valid && st->wlo.n != view->n))
        st->valid = 0;
    if (st->tracked && !st->valid && view->n > 0) {
        unsigned char *signal = calloc((size_t)view->n, 1);
        int *match = calloc((size_t)view->n, sizeof *match);
        if (!signal || !match || !lb_mintree_reset(&st->wlo, view->n) ||
            !lb_mintree_reset(&st->whi, view->n)) {
            free(signal);
            free(match);
            return 0;
        }
        free(st->signal);
        free(st->match);
        st->signal = signal;
        st->match = match;
        st->n_signal = 0;
        for (int i = 0; i < view->n; i++)
            ka_place(st, &view->servers[i], i);
        st->valid = 1;
    }
    return st->valid;
}

static void ka_change(void *state, const lb_view *view, int server)
{
    struct ka_state *st = state;

    lb_wrr_index_change(&st->lc, view, server);
    if (lb_index_notice(&st->tracked, &st->valid, st->wlo.n, server))
        ka_place(st, &view->servers[server], server);
}

/* From the counts: 1 if some eligible server has a signal (waiting
 * requests, KV usage, the request's first hash), 0 if none has, -1 if the
 * holders are not known (then the walk decides). */
static int ka_signal(const struct ka_state *st, const lb_view *view, const uint64_t *hashes,
                     int n_hashes)
{
    if (st->n_signal > 0)
        return 1;
    if (n_hashes == 0)
        return 0;
    int h = lb_prefix_first_holder(st->index, hashes[0], view);
    return h >= 0 ? 1 : h == -2 ? -1 : 0;
}

/* Each holder of hashes[j] (j < known) matches the request up to j + 1 at
 * least (lb_prefix_known): st->match[i] = the deepest, or back to 0 (clear). */
static void ka_matches(struct ka_state *st, const lb_view *view, const uint64_t *hashes,
                       int known, int clear)
{
    for (int j = 0; j < known; j++) {
        const int *h;
        int n = lb_prefix_holders(st->index, hashes[j], &h);
        for (int k = 0; k < n && h[k] < view->n; k++)
            st->match[h[k]] = clear ? 0 : j + 1;
    }
}

static int ka_pick(void *state, const lb_view *view, const lb_request *req)
{
    struct ka_state *st = state;
    const lb_server_view *s = view->servers;
    const uint64_t *hashes = req ? req->hashes : NULL;
    int n_hashes = hashes && req->n_hashes > 0 ? req->n_hashes : 0;
    int lo = 0, hi = 0, any = 0, signal = 0, best = -1, known = -1;
    double best_score = 0;
    unsigned long tied = 0;

    if (ka_ready(st, view) && st->wlo.finite == 0)
        return -1;
    int sig = st->valid ? ka_signal(st, view, hashes, n_hashes) : -1;
    if (sig == 0) {
        best = lb_llm_least_conn_ix(&st->lc, view);
        if (n_hashes > 0 && best >= 0)
            lb_prefix_insert(st->index, best, hashes, n_hashes);
        return best;
    }
    if (sig == 1) {   /* the extremes from the trees, the walk below skipped */
        lo = (int)lb_mintree_least(&st->wlo);
        hi = -(int)lb_mintree_least(&st->whi);
        any = signal = 1;
    }
    for (int i = 0; sig != 1 && i < view->n; i++) {
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
        best = lb_llm_least_conn_ix(&st->lc, view);
    if (signal && st->valid && n_hashes > 0 &&
        (known = lb_prefix_known(st->index, hashes, n_hashes)) > 0)
        ka_matches(st, view, hashes, known, 0);
    for (int i = 0; signal && i < view->n; i++) {
        if (!lb_server_eligible(&s[i]))
            continue;
        int m = known >= 0 ? st->match[i]
                           : n_hashes > 0 ? lb_prefix_match(st->index, i, hashes, n_hashes) : 0;
        double prefix = n_hashes > 0 ? (double)m / n_hashes : 0.0;
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
    if (known > 0)
        ka_matches(st, view, hashes, known, 1);
    if (n_hashes > 0 && best >= 0)   /* the scorer's PreRequest */
        lb_prefix_insert(st->index, best, hashes, n_hashes);
    return best;
}

static void ka_done(void *state, const lb_view *view, int server, double latency_s,
                    lb_result result)
{
    struct ka_state *st = state;

    (void)latency_s;
    if (result != LB_ERROR)   /* the fallback's effective weight, as least_conn */
        return;
    lb_wrr_failed(&st->lc.w, view, server);
    lb_wrr_index_failed(&st->lc, server);
}

const struct lb_ops lb_kv_aware = {
    .name = "kv_aware",
    .summary = "max of prefix_weight x prefix share + queue_weight x queue score + kv_weight x free KV, random among ties (llm-d scorers)",
    .init_with = ka_init,
    .pick = ka_pick,
    .on_done = ka_done,
    .destroy = ka_destroy,
    .on_change = ka_change,
};
