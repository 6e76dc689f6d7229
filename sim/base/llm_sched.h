/*
 * llm_sched.h - one LLM replica's iteration-level scheduler, as vLLM's v1
 * scheduler does it (vllm/v1/core/sched/scheduler.py): a waiting queue and
 * a running list, a token budget per step (max_num_batched_tokens),
 * max_num_seqs, chunked prefill, a KV cache in blocks with preemption by
 * recompute, and prefix caching over block content hashes
 * (vllm/v1/core/kv_cache_manager.py, block_pool.py). Plain state, no
 * SimGrid, no clock: the server model asks for a step, runs it for the time
 * llm_step_s gives, and reports it done.
 */
#ifndef FLEETSIM_LLM_SCHED_H
#define FLEETSIM_LLM_SCHED_H

#include <stdint.h>

typedef struct llm_seq {
    /* set by the caller before llm_sched_add */
    unsigned long id;
    int prompt_tokens;          /* >= 1 */
    int output_tokens;          /* >= 1: tokens to generate */
    /* prefix identity of the prompt: hashes[j] names the content of
     * prompt tokens [0, (j+1) * hash_block_tokens) (chained, as Mooncake's
     * hash_ids and vLLM's block hashes are); NULL = nothing shared */
    const uint64_t *hashes;
    int n_hashes;
    int hash_block_tokens;      /* a multiple of the scheduler's block_size, or
                                   the blocks up to the first that straddles two
                                   hash blocks are keyed (a system prompt: one
                                   hash of its length) */
    void *user;
    /* prefill/decode disaggregation (0 otherwise): hold_kv, on a prefill
     * replica: a sequence that produced its last token keeps its KV blocks
     * (state LLM_HELD) until the caller releases them with llm_sched_abort,
     * once its KV cache has been sent on. kv_tokens: set by
     * llm_sched_add_prefilled, the prompt tokens whose KV arrived with the
     * sequence; its first admission takes blocks for them without computing
     * them (a preemption drops them: recompute) */
    int hold_kv;
    int kv_tokens;
    /* kept by the scheduler */
    int computed;               /* tokens whose KV is computed (num_computed_tokens) */
    int generated;              /* output tokens produced */
    int n_blocks;               /* KV blocks held */
    int *blocks;                /* their ids (owned by the scheduler) */
    int blocks_cap;
    int cached_tokens;          /* prompt tokens found in the prefix cache at its last admission */
    int preemptions;
    int state;                  /* LLM_WAITING, LLM_RUNNING, LLM_DONE, ... */
    struct llm_seq *prev, *next; /* in the waiting queue */
} llm_seq;

/* LLM_RESERVED: blocks allocated for a KV cache still on its way from a
 * prefill replica (vLLM's WAITING_FOR_REMOTE_KVS); LLM_LANDED: that KV
 * cache arrived, the sequence holds the blocks and waits for admission. */
enum { LLM_WAITING = 0, LLM_RUNNING, LLM_DONE, LLM_ABORTED, LLM_HELD, LLM_RESERVED, LLM_LANDED };

typedef struct {
    int max_num_batched_tokens;  /* token budget per step */
    int max_num_seqs;            /* running at most */
    int block_size;              /* tokens per KV block (16) */
    long num_blocks;             /* KV capacity */
    int long_prefill_threshold;  /* most prompt tokens one request gets per step (0 = budget) */
    int enable_prefix_caching;
    int chunked_prefill;         /* 0: a prompt is prefilled whole or not admitted */
    /* 1: no block ids are kept while no block can carry a prefix-cache key
     * (prefix caching off, or no sequence with hashes added yet), only
     * counts: taking and freeing blocks touch no per-block state, and the
     * per-block tables are not allocated. The first sequence with hashes
     * (prefix caching on) gives every held block an id and orders the free
     * ones; blocks without keys are interchangeable, so every step, count
     * and statistic is the same as with ids kept throughout. Meanwhile
     * seq->blocks stays NULL (seq->n_blocks counts). 0: ids always. */
    int anonymous_blocks;
} llm_sched_config;

/* What one step runs: per scheduled sequence its new tokens and cached
 * context; and the sequences preempted to make room (already back at the
 * head of waiting, blocks freed). */
typedef struct {
    llm_seq *seq;
    int n_new;
    int context;                 /* seq->computed when scheduled */
    int decode;                  /* 1: a decode token (all prompt and earlier output computed) */
} llm_sched_item;

typedef struct {
    llm_sched_item *items;       /* max_num_seqs slots */
    int n;
    int tokens;                  /* sum of n_new */
    llm_seq **preempted;         /* max_num_seqs slots */
    int n_preempted;
} llm_step;

typedef struct llm_sched llm_sched;

llm_sched *llm_sched_new(const llm_sched_config *cfg);
void llm_sched_free(llm_sched *s);
/* fn(ctx) after every change of llm_sched_waiting (a sequence added,
 * admitted, preempted back, aborted while waiting, landed); NULL: none. */
void llm_sched_watch(llm_sched *s, void (*fn)(void *ctx), void *ctx);
llm_step *llm_step_new(const llm_sched *s);
void llm_step_free(llm_step *st);

/* Appends seq to the waiting queue (computed = generated = 0, no block
 * table yet). seq stays the caller's; the scheduler holds it until it is
 * done or aborted, and frees the block table it grew then. */
void llm_sched_add(llm_sched *s, llm_seq *seq);
/* Appends seq, whose first `generated` output tokens were produced and
 * whose first kv_tokens prompt tokens were computed elsewhere (a decode
 * replica taking a request a prefill replica ran): its first admission
 * allocates blocks for those tokens and the next one and computes only
 * what is left, as a sequence whose prompt was found in a cache does. */
void llm_sched_add_prefilled(llm_sched *s, llm_seq *seq, int kv_tokens, int generated);
/* Prefill/decode disaggregation, the decode side, as vLLM's scheduler does
 * it with a KV connector that loads asynchronously (vllm/v1/core/sched/
 * scheduler.py, Scheduler.schedule: get_num_new_matched_tokens, then
 * allocate_slots for the remote tokens, then WAITING_FOR_REMOTE_KVS until
 * the connector reports the load finished). llm_sched_reserve allocates
 * the blocks for `tokens` tokens to r (a caller-owned sequence used only
 * as the holder: state LLM_RESERVED) before the transfer starts; 0 and
 * nothing changed when the free queue is short. A reserved sequence is
 * never preempted (vLLM preempts only running requests). When the KV
 * cache lands, llm_sched_add_landed gives r's blocks to seq (r is left
 * empty, LLM_ABORTED; the caller frees it) and seq waits in state
 * LLM_LANDED; landed sequences are admitted before the waiting queue
 * (they hold their blocks: admitting them first is what keeps a fleet of
 * reservations from starving a replica whose running sequences were all
 * preempted). A reservation given up (the transfer failed) is dropped
 * with llm_sched_abort. */
int llm_sched_reserve(llm_sched *s, llm_seq *r, int tokens);
void llm_sched_add_landed(llm_sched *s, llm_seq *seq, llm_seq *r, int kv_tokens, int generated);
int llm_sched_reserved(const llm_sched *s);          /* reservations held */
llm_seq *llm_sched_reserved_head(const llm_sched *s); /* one of them (->next: the others), or NULL */
llm_seq *llm_sched_landed_head(const llm_sched *s);   /* landed, admission order (->next) */
/* Forms the next step into st; returns st->n (0 = nothing to run). */
int llm_sched_schedule(llm_sched *s, llm_step *st);
/* The step st ran: advances each sequence; a sequence whose computed
 * tokens reach prompt + generated produces a token (generated++). Those
 * that produced their first token this step go to first[], those that
 * finished (generated == output_tokens; blocks freed, removed) to done[];
 * both arrays have max_num_seqs slots. A finished sequence with hold_kv
 * keeps its blocks, in state LLM_HELD, until llm_sched_abort. */
void llm_sched_step_done(llm_sched *s, const llm_step *st, llm_seq **first, int *n_first,
                         llm_seq **done, int *n_done);
/* Removes seq (waiting, running or held) and frees its blocks: a cancelled
 * request or a client that gave up. A sequence aborted between
 * llm_sched_schedule and llm_sched_step_done is skipped by step_done (its
 * memory must stay valid until then). */
void llm_sched_abort(llm_sched *s, llm_seq *seq);

/* State for metrics and tests. */
int llm_sched_waiting(const llm_sched *s);       /* waiting queue plus landed sequences */
int llm_sched_running(const llm_sched *s);
llm_seq *llm_sched_running_at(const llm_sched *s, int i); /* in admission order */
llm_seq *llm_sched_waiting_head(const llm_sched *s);
long llm_sched_blocks_used(const llm_sched *s);  /* held by running, held, reserved and landed sequences */
int llm_sched_held(const llm_sched *s);          /* finished sequences holding their KV (hold_kv) */
llm_seq *llm_sched_held_head(const llm_sched *s); /* one of them (->next: the others), or NULL */
long llm_sched_blocks_free(const llm_sched *s);  /* free, cached or not: used + free = num_blocks */
unsigned long llm_sched_preemptions(const llm_sched *s);
/* prefix cache: prompt tokens looked up and found at first admissions
 * (vLLM's PrefixCacheStats queries / hits); readmissions after a
 * preemption look up prompt + generated tokens and are counted apart
 * (preempted_queries / preempted_hits), as vllm/v1/metrics/stats.py does */
unsigned long llm_sched_prefix_queries(const llm_sched *s);
unsigned long llm_sched_prefix_hits(const llm_sched *s);
unsigned long llm_sched_prefix_preempted_queries(const llm_sched *s);
unsigned long llm_sched_prefix_preempted_hits(const llm_sched *s);
long llm_sched_blocks_cached(const llm_sched *s); /* blocks holding a prefix-cache key, held or free */

/* 1 when seq can ever run alone on this replica: its longest KV
 * (prompt + output - 1 tokens) fits num_blocks, and without chunked
 * prefill a recompute of that many tokens (capped by
 * long_prefill_threshold) fits the token budget (vLLM rejects longer
 * requests against max_model_len). A sequence that
 * does not fit would wait or be preempted forever. */
int llm_sched_fits(const llm_sched *s, const llm_seq *seq);
/* Checks the internal invariants: blocks held + free = num_blocks, the
 * free queue, reference counts against the running sequences' block
 * tables, the prefix-cache table, queue membership. 0 when they hold, else
 * a positive code naming the first one broken. O(num_blocks); for tests. */
int llm_sched_check(const llm_sched *s);

#endif
