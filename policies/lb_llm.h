/*
 * lb_llm.h - what the token-aware policies share (least_tokens, vllm_dp,
 * prefix_affinity, kv_aware): the fallback they use where the view carries
 * no LLM load (a batch server's llm_* fields are 0), and the approximate
 * prefix index that prefix_affinity and kv_aware keep of what they sent to
 * each server. Internal to policies/.
 *
 * Fallback: nginx's least_conn rule, as policies/lb/least_conn.c applies it
 * (fewest active requests per weight, servers tied at that minimum by smooth
 * weighted round robin, a failure lowering the effective weight). Each
 * policy turns to it when it has nothing to rank by, which is always the
 * case on a batch pool: least_tokens and vllm_dp when their load signal is
 * 0 on every eligible server (an idle LLM pool too, where the upstream rule
 * would send every request to the first server), kv_aware when waiting
 * requests, KV usage and prefix matches are all 0, prefix_affinity when the
 * request has no prefix hashes.
 *
 * Prefix index: per server, a set of the prefix hashes (lb_request.hashes)
 * of the requests the policy routed there, bounded to `capacity` hashes and
 * evicted least recently used first. A request's hashes are touched from its
 * last block to its first, so a prefix is always more recent than the blocks
 * that extend it and eviction takes the deepest blocks first: the leaves of
 * the radix tree SGLang's router keeps (sgl-router/src/policies/tree.rs,
 * evict_tenant_by_size), and the tail blocks vLLM frees first
 * (vllm/v1/core/single_type_kv_cache_manager.py, free: "in reverse
 * order"). The balancer never sees a server's real cache: the index is what
 * it sent, as in SGLang's router and llm-d's approximate prefix-cache scorer.
 * Beside the sets, the servers holding each hash (lb_prefix_holders), so
 * that the longest match over all servers needs no walk over them while
 * hashes are chained (lb_prefix_known). O(1) expected per hash touched or
 * looked up, plus a shift of the hash's holder list when a server gains or
 * loses it.
 */
#ifndef FLEETSIM_LB_LLM_H
#define FLEETSIM_LB_LLM_H

#include "lb.h"
#include "lb_index.h"
#include "lb_wrr.h"

/* nginx least_conn over the eligible servers (policies/lb/least_conn.c):
 * -1 if none is eligible. w may run out of memory: then the first server
 * at the minimum. */
int lb_llm_least_conn(lb_wrr *w, const lb_view *view);

/* The same with least_conn's index (lb_index.h, x->by_active set): O(log n)
 * on a tracked view the index can hold, the scan above otherwise; the same
 * server and current weights either way. The policy forwards its change
 * notices to lb_wrr_index_change and a failure to lb_wrr_failed on x->w,
 * then lb_wrr_index_failed. */
int lb_llm_least_conn_ix(lb_wrr_index *x, const lb_view *view);

/* Policies that send each request to the eligible server with the least
 * key, ties to the lowest index, and to nginx least_conn when every
 * eligible server's key is 0 (least_tokens, vllm_dp): their state and ops.
 * O(n) per pick on an untracked view; O(log n) on a tracked one: the keys
 * in lb_index.h's lb_min_index, the fallback from least_conn's index. The
 * key must be exact as a double (integer counts are). */
typedef double (*lb_llm_key_fn)(const lb_server_view *s);
void *lb_llm_keyed_init(int n_servers, lb_llm_key_fn key);
int lb_llm_keyed_pick(void *state, const lb_view *view, const lb_request *req);
void lb_llm_keyed_done(void *state, const lb_view *view, int server, double latency_s,
                       lb_result result);
void lb_llm_keyed_destroy(void *state);
void lb_llm_keyed_change(void *state, const lb_view *view, int server);

/* Per-server LRU sets of prefix hashes. */
typedef struct lb_prefix lb_prefix;

/* capacity: hashes remembered per server, >= 1. NULL when out of memory. */
lb_prefix *lb_prefix_new(int capacity);
void lb_prefix_free(lb_prefix *p);
/* How many of hashes[0..n) server holds, counted from the first up to the
 * first it lacks. 0 for a server never seen. Changes nothing. */
int lb_prefix_match(const lb_prefix *p, int server, const uint64_t *hashes, int n);
/* Hashes server holds (its tree size). */
int lb_prefix_size(const lb_prefix *p, int server);
/* Server got a request with these hashes: each becomes the most recently
 * used, the first one most of all; the least recently used are evicted to
 * stay within capacity. Only the first `capacity` hashes are kept when n is
 * larger. 0 when out of memory (the index then misses these hashes). */
int lb_prefix_insert(lb_prefix *p, int server, const uint64_t *hashes, int n);
/* The servers holding h, ascending, in *servers (valid until the next
 * insert): how many, 0 when none, -1 when that is not known (an allocation
 * failed). O(1) expected. */
int lb_prefix_holders(const lb_prefix *p, uint64_t h, const int **servers);
/* The lowest server holding h that is eligible in view; -1 when none is,
 * -2 when the holders are not known (lb_prefix_holders). */
int lb_prefix_first_holder(const lb_prefix *p, uint64_t h, const lb_view *view);
/* While every set is prefix-closed (every request so far had its hashes
 * chained: each hash after the same one each time, lb_llm.c): how many of
 * hashes[0..n) from the first some server holds, a server holding the j-th
 * (from 1) of them then matching the request up to at least j. -1 when that
 * does not hold, or these hashes disagree with the earlier ones: then
 * ask lb_prefix_match of each server. O(hashes looked at). */
int lb_prefix_known(const lb_prefix *p, const uint64_t *hashes, int n);

#endif
