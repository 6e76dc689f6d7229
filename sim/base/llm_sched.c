/*
 * llm_sched.c - one LLM replica's iteration-level scheduler after vLLM's v1
 * scheduler (vllm/v1/core/sched/scheduler.py, Scheduler.schedule) and its
 * KV cache manager (vllm/v1/core/kv_cache_manager.py, block_pool.py,
 * single_type_kv_cache_manager.py, kv_cache_utils.py).
 *
 * A step gives running sequences their tokens first, in admission order,
 * preempting the last running sequence (recompute) when KV blocks run out;
 * then, if nothing was preempted, admits waiting sequences FCFS while the
 * token budget and max_num_seqs allow. KV blocks come from a pool with one
 * free queue in eviction order (least recently freed first, a request's
 * tail blocks ahead of its head blocks); with prefix caching a full prompt
 * block carries a content key and stays findable after it is freed until
 * its id is handed out again. Everything is preallocated at
 * llm_sched_new except the per-sequence block tables, which grow by
 * doubling and are freed when a sequence ends.
 *
 * With anonymous_blocks, a scheduler whose blocks cannot carry keys yet
 * keeps counts only (at 400 replicas the per-block state is 480 MB, and
 * each block taken or freed was a cache miss on it); block ids, the free
 * queue and the key table appear with the first sequence that has
 * hashes, and stay from then on (ids_assign).
 *
 * Differences from vLLM, on purpose: no null block (num_blocks ids are all
 * usable), no max_model_len cap, no speculative, encoder, LoRA, watermark
 * or priority paths; of the KV connector paths only the decode side's
 * asynchronous load (reservations, llm_sched_reserve); output tokens are never keyed
 * (the caller's hashes name prompt content only).
 */
#include "llm_sched.h"

#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct llm_sched {
    llm_sched_config cfg;
    int bs;                     /* block_size, tokens */
    int nb;                     /* num_blocks */
    int ids;                    /* 1: block ids kept (the arrays below exist); 0: counts only */
    /* per block; what taking a block from the free queue and giving it
     * back touch sits together (one cache line, not four) */
    struct llm_block {
        int ref;                /* holders among running sequences */
        int qprev, qnext;       /* free queue links (-1 ends); valid while ref == 0 */
        int key_off;            /* token offset in its hash block of its key; -1: no key */
    } *blk;
    uint64_t *key_hash;         /* prefix-cache key: caller's hash (and key_off) */
    int *hnext;                 /* next block in the same bucket */
    int *hprev;                 /* previous one (-1: the bucket's first) */
    /* free queue: head is evicted / handed out first (LRU) */
    int qhead, qtail;
    long n_free;
    /* prefix-cache table: buckets of block chains, oldest entry first */
    int *bucket;
    int *btail;                 /* each bucket's last block: O(1) inserts however long
                                   the chain of duplicates grows */
    uint64_t bucket_mask;
    long n_keyed;
    /* queues */
    llm_seq *whead, *wtail;
    int n_waiting;
    void (*watch)(void *ctx);   /* llm_sched_watch */
    void *watch_ctx;
    llm_seq **running;          /* admission order, max_num_seqs slots */
    int n_running;
    /* finished sequences keeping their blocks (hold_kv), linked by prev/next */
    llm_seq *hhead;
    int n_held;
    /* reservations for KV caches on their way (prev/next), and sequences
     * whose KV cache landed in them, waiting for admission */
    llm_seq *rhead;
    int n_reserved;
    llm_seq *lhead, *ltail;
    int n_landed;
    int *hit;                   /* scratch: blocks found by a lookup */
    /* counters */
    unsigned long preemptions;
    unsigned long pq, ph;       /* prefix queries / hits, first admissions */
    unsigned long ppq, pph;     /* the same at readmissions after preemption */
};

/* n_waiting or n_landed moved: the watcher hears of it. */
static void waiting_changed(const llm_sched *s)
{
    if (s->watch)
        s->watch(s->watch_ctx);
}

static void *xmalloc(size_t n)
{
    void *p = malloc(n ? n : 1);

    if (!p) {
        fputs("llm_sched: out of memory\n", stderr);
        abort();
    }
    return p;
}

static int ceil_div(long a, long b)
{
    return (int)((a + b - 1) / b);
}

/* ---- prefix-cache keys ------------------------------------------------ */

/* Key of block k of q: its tokens [k*bs, (k+1)*bs) lie inside hash block j
 * = k*bs / hash_block_tokens and inside the prompt; then hashes[j] names
 * their whole prefix [0, (j+1)*hash_block_tokens) or the prompt, and
 * (hashes[j], k*bs - j*hash_block_tokens) names [0, (k+1)*bs) exactly, as
 * vLLM's chained block hash does (kv_cache_utils.py hash_block_tokens).
 * The pair is kept whole, so distinct keys never collide. Blocks past the
 * hashed prefix, or straddling two hash blocks, have no key: only full
 * blocks are hashed (kv_cache_utils.py hash_request_tokens, and
 * request.block_hashes in later versions: len(tokens) // block_size
 * blocks), so a shared prefix of S tokens followed by tokens of the
 * request's own is shared in its floor(S / block_size) full blocks; the
 * block that mixes both hashes differently for every request. */
static int block_key(const llm_sched *s, const llm_seq *q, int k, uint64_t *h, int *off)
{
    long hbt = q->hash_block_tokens, start = (long)k * s->bs, end = start + s->bs, j;

    if (!q->hashes || hbt <= 0)
        return 0;
    j = start / hbt;
    if (j >= q->n_hashes || end > (j + 1) * hbt || end > q->prompt_tokens)
        return 0;
    *h = q->hashes[j];
    *off = (int)(start - j * hbt);
    return 1;
}

static uint64_t key_bucket(const llm_sched *s, uint64_t h, int off)
{
    /* splitmix64 finaliser over the pair */
    uint64_t x = h ^ ((uint64_t)(unsigned)off * 0x9E3779B97F4A7C15ULL);

    x ^= x >> 30;
    x *= 0xBF58476D1CE4E5B9ULL;
    x ^= x >> 27;
    x *= 0x94D049BB133111EBULL;
    x ^= x >> 31;
    return x & s->bucket_mask;
}

/* The first cached block under (h, off), -1 if none. Duplicates (two
 * sequences that computed the same block) are kept, and the oldest is
 * returned, as BlockPool.get_cached_block returns the first in its dict. */
static int key_find(const llm_sched *s, uint64_t h, int off)
{
    for (int b = s->bucket[key_bucket(s, h, off)]; b >= 0; b = s->hnext[b])
        if (s->key_hash[b] == h && s->blk[b].key_off == off)
            return b;
    return -1;
}

/* Appended at the chain's end, so the chain stays oldest first. */
static void key_insert(llm_sched *s, int b, uint64_t h, int off)
{
    uint64_t i = key_bucket(s, h, off);
    int t = s->btail[i];

    assert(s->blk[b].key_off < 0);
    if (t >= 0)
        s->hnext[t] = b;
    else
        s->bucket[i] = b;
    s->hprev[b] = t;
    s->btail[i] = b;
    s->hnext[b] = -1;
    s->key_hash[b] = h;
    s->blk[b].key_off = off;
    s->n_keyed++;
}

/* BlockPool._maybe_evict_cached_block: a block handed out again loses its
 * key. */
static void key_remove(llm_sched *s, int b)
{
    uint64_t i;
    int pv, nx;

    if (s->blk[b].key_off < 0)
        return;
    i = key_bucket(s, s->key_hash[b], s->blk[b].key_off);
    pv = s->hprev[b];
    nx = s->hnext[b];
    if (pv >= 0)
        s->hnext[pv] = nx;
    else
        s->bucket[i] = nx;
    if (nx >= 0)
        s->hprev[nx] = pv;
    else
        s->btail[i] = pv;
    s->hnext[b] = s->hprev[b] = -1;
    s->blk[b].key_off = -1;
    s->n_keyed--;
}

/* ---- free queue (kv_cache_utils.py FreeKVCacheBlockQueue) ------------- */

static void queue_remove(llm_sched *s, int b)
{
    int p = s->blk[b].qprev, n = s->blk[b].qnext;

    if (p >= 0)
        s->blk[p].qnext = n;
    else
        s->qhead = n;
    if (n >= 0)
        s->blk[n].qprev = p;
    else
        s->qtail = p;
    s->blk[b].qprev = s->blk[b].qnext = -1;
    s->n_free--;
}

static void queue_append(llm_sched *s, int b)
{
    s->blk[b].qprev = s->qtail;
    s->blk[b].qnext = -1;
    if (s->qtail >= 0)
        s->blk[s->qtail].qnext = b;
    else
        s->qhead = b;
    s->qtail = b;
    s->n_free++;
}

/* ---- block tables ----------------------------------------------------- */

static void table_reserve(llm_seq *q, int n)
{
    int cap;

    if (n <= q->blocks_cap)
        return;
    cap = q->blocks_cap ? 2 * q->blocks_cap : 8;
    if (cap < n)
        cap = n;
    q->blocks = realloc(q->blocks, sizeof *q->blocks * (size_t)cap);
    if (!q->blocks) {
        fputs("llm_sched: out of memory\n", stderr);
        abort();
    }
    q->blocks_cap = cap;
}

static void table_drop(llm_seq *q)
{
    free(q->blocks);
    q->blocks = NULL;
    q->blocks_cap = 0;
    q->n_blocks = 0;
}

/* BlockPool.get_new_blocks: n blocks from the head of the free queue, each
 * losing any prefix-cache key it still had. */
static void take_new(llm_sched *s, llm_seq *q, int n)
{
    if (!s->ids) {
        s->n_free -= n;
        q->n_blocks += n;
        return;
    }
    table_reserve(q, q->n_blocks + n);
    for (int i = 0; i < n; i++) {
        int b = s->qhead;

        assert(b >= 0 && s->blk[b].ref == 0);
        queue_remove(s, b);
        if (s->n_keyed > 0) /* else no block has a key */
            key_remove(s, b);
        s->blk[b].ref = 1;
        q->blocks[q->n_blocks++] = b;
    }
}

/* SingleTypeKVCacheManager.free: blocks are released in reverse order, so
 * a request's tail blocks are evicted before its head blocks; a block
 * whose last holder let go joins the tail of the free queue keeping its
 * key (BlockPool.free_blocks). */
static void release(llm_sched *s, llm_seq *q)
{
    if (!s->ids) {
        s->n_free += q->n_blocks;
        q->n_blocks = 0;
        return;
    }
    for (int i = q->n_blocks - 1; i >= 0; i--) {
        int b = q->blocks[i];

        assert(s->blk[b].ref > 0);
        if (--s->blk[b].ref == 0)
            queue_append(s, b);
    }
    q->n_blocks = 0;
}

/* KVCacheManager.allocate_slots' commit: blocks [from_tokens/bs,
 * to_tokens/bs) are full once this step has run and get their keys now,
 * at schedule time, so a sequence admitted later in the same step can
 * already hit them (SingleTypeKVCacheManager.cache_blocks with
 * num_tokens_to_cache = min(computed + new, request.num_tokens)). The
 * blocks below from_tokens/bs were keyed by earlier steps or are hits. */
static void cache_blocks(llm_sched *s, llm_seq *q, int from_tokens, int to_tokens)
{
    uint64_t h;
    int off;

    if (!s->cfg.enable_prefix_caching || !s->ids)
        return;   /* no sequence has hashes yet: nothing to key */
    for (int k = from_tokens / s->bs; k < to_tokens / s->bs; k++) {
        if (!block_key(s, q, k, &h, &off))
            break;
        key_insert(s, q->blocks[k], h, off);
    }
}

/* Blocks for a running sequence to hold computed + n tokens; 0 (nothing
 * changed) when the free queue is short (allocate_slots returning None). */
static int grow(llm_sched *s, llm_seq *q, int n)
{
    int need = ceil_div((long)q->computed + n, s->bs) - q->n_blocks;

    if (need <= 0)
        return 1;
    if (need > s->n_free)
        return 0;
    take_new(s, q, need);
    return 1;
}

/* ---- queues ----------------------------------------------------------- */

static void waiting_unlink(llm_sched *s, llm_seq *q)
{
    if (q->prev)
        q->prev->next = q->next;
    else
        s->whead = q->next;
    if (q->next)
        q->next->prev = q->prev;
    else
        s->wtail = q->prev;
    q->prev = q->next = NULL;
    s->n_waiting--;
    waiting_changed(s);
}

static void waiting_prepend(llm_sched *s, llm_seq *q)
{
    q->prev = NULL;
    q->next = s->whead;
    if (s->whead)
        s->whead->prev = q;
    else
        s->wtail = q;
    s->whead = q;
    s->n_waiting++;
    waiting_changed(s);
}

static void landed_unlink(llm_sched *s, llm_seq *q)
{
    if (q->prev)
        q->prev->next = q->next;
    else
        s->lhead = q->next;
    if (q->next)
        q->next->prev = q->prev;
    else
        s->ltail = q->prev;
    q->prev = q->next = NULL;
    s->n_landed--;
    waiting_changed(s);
}

/* Unlinks q from a list of prev/next links headed by *head. */
static void list_unlink(llm_seq **head, llm_seq *q)
{
    if (q->prev)
        q->prev->next = q->next;
    else
        *head = q->next;
    if (q->next)
        q->next->prev = q->prev;
    q->prev = q->next = NULL;
}

/* Scheduler._preempt_request: blocks freed, computed reset, back to the
 * head of waiting; the output so far is kept and is recomputed with the
 * prompt on readmission (request.num_tokens includes it). */
static void preempt(llm_sched *s, llm_seq *q)
{
    release(s, q);
    q->computed = 0;
    q->state = LLM_WAITING;
    q->preemptions++;
    s->preemptions++;
    waiting_prepend(s, q);
}

static void push_item(llm_step *st, llm_seq *q, int n)
{
    llm_sched_item *it = &st->items[st->n++];

    it->seq = q;
    it->n_new = n;
    it->context = q->computed;
    /* one token on top of the whole prompt and all earlier output */
    it->decode = q->generated > 0 && q->computed == q->prompt_tokens + q->generated - 1;
    st->tokens += n;
}

/* ---- public ----------------------------------------------------------- */

/* The per-block state, every block free and without key, the free queue
 * ordered by block id (FreeKVCacheBlockQueue's initial order). */
static void ids_alloc(llm_sched *s)
{
    size_t nb = (size_t)s->nb, nbk = 1;

    while (nbk < nb)
        nbk <<= 1;
    s->blk = xmalloc(nb * sizeof *s->blk);
    s->key_hash = xmalloc(nb * sizeof *s->key_hash);
    s->hnext = xmalloc(nb * sizeof *s->hnext);
    s->hprev = xmalloc(nb * sizeof *s->hprev);
    s->hit = xmalloc(nb * sizeof *s->hit);
    s->bucket = xmalloc(nbk * sizeof *s->bucket);
    s->btail = xmalloc(nbk * sizeof *s->btail);
    s->bucket_mask = nbk - 1;
    for (size_t i = 0; i < nbk; i++)
        s->bucket[i] = s->btail[i] = -1;
    s->qhead = s->qtail = -1;
    s->n_free = 0;
    for (int b = 0; b < s->nb; b++) {
        s->blk[b].ref = 0;
        s->key_hash[b] = 0;
        s->blk[b].key_off = -1;
        s->hnext[b] = s->hprev[b] = -1;
        queue_append(s, b);
    }
    s->ids = 1;
}

/* Block tables for the blocks counted so far: q's n_blocks become ids,
 * taken from the head of the free queue; held blocks have no key, so
 * which ids they get changes nothing but the names. */
static void ids_give(llm_sched *s, llm_seq *q)
{
    int n = q->n_blocks;

    q->n_blocks = 0;
    take_new(s, q, n);
}

/* From counts to ids, before a sequence with hashes is added: the running
 * and held sequences' blocks get ids 0, 1, ... in admission order, the
 * free ones follow in id order. With no key anywhere, any such naming
 * leaves every later step the same as ids kept from the start would: the
 * free queue's order only matters once blocks carry keys. */
static void ids_assign(llm_sched *s)
{
    long n_free = s->n_free;

    ids_alloc(s);
    for (int i = 0; i < s->n_running; i++)
        ids_give(s, s->running[i]);
    for (llm_seq *q = s->hhead; q; q = q->next)
        ids_give(s, q);
    for (llm_seq *q = s->rhead; q; q = q->next) /* decode-side reservations */
        ids_give(s, q);
    for (llm_seq *q = s->lhead; q; q = q->next)
        ids_give(s, q);
    assert(s->n_free == n_free);
    (void)n_free;
}

llm_sched *llm_sched_new(const llm_sched_config *cfg)
{
    llm_sched *s;

    if (!cfg || cfg->block_size < 1 || cfg->num_blocks < 1 || cfg->num_blocks > 0x7fffffffL ||
        cfg->max_num_seqs < 1 || cfg->max_num_batched_tokens < 1 || cfg->long_prefill_threshold < 0)
        return NULL;
    s = calloc(1, sizeof *s);
    if (!s)
        return NULL;
    s->cfg = *cfg;
    s->bs = cfg->block_size;
    s->nb = (int)cfg->num_blocks;
    s->running = xmalloc((size_t)cfg->max_num_seqs * sizeof *s->running);
    if (cfg->anonymous_blocks) {
        s->qhead = s->qtail = -1;
        s->n_free = s->nb;
    } else {
        ids_alloc(s);
    }
    return s;
}

void llm_sched_free(llm_sched *s)
{
    if (!s)
        return;
    for (llm_seq *q = s->whead; q; q = q->next)
        table_drop(q);
    for (int i = 0; i < s->n_running; i++)
        table_drop(s->running[i]);
    for (llm_seq *q = s->hhead; q; q = q->next)
        table_drop(q);
    free(s->blk);
    free(s->key_hash);
    free(s->hnext);
    free(s->hprev);
    free(s->hit);
    free(s->bucket);
    free(s->btail);
    free(s->running);
    free(s);
}

llm_step *llm_step_new(const llm_sched *s)
{
    llm_step *st = calloc(1, sizeof *st);

    if (!st)
        return NULL;
    st->items = xmalloc((size_t)s->cfg.max_num_seqs * sizeof *st->items);
    st->preempted = xmalloc((size_t)s->cfg.max_num_seqs * sizeof *st->preempted);
    return st;
}

void llm_step_free(llm_step *st)
{
    if (!st)
        return;
    free(st->items);
    free(st->preempted);
    free(st);
}

void llm_sched_add(llm_sched *s, llm_seq *q)
{
    llm_sched_add_prefilled(s, q, 0, 0);
}

void llm_sched_add_prefilled(llm_sched *s, llm_seq *q, int kv_tokens, int generated)
{
    if (!s->ids && s->cfg.enable_prefix_caching && q->hashes && q->n_hashes > 0 &&
        q->hash_block_tokens > 0)
        ids_assign(s);   /* its blocks may be keyed */
    q->computed = 0;
    q->generated = generated;
    q->kv_tokens = kv_tokens;
    q->n_blocks = 0;
    q->blocks = NULL;
    q->blocks_cap = 0;
    q->cached_tokens = 0;
    q->preemptions = 0;
    q->state = LLM_WAITING;
    q->next = NULL;
    q->prev = s->wtail;
    if (s->wtail)
        s->wtail->next = q;
    else
        s->whead = q;
    s->wtail = q;
    s->n_waiting++;
    waiting_changed(s);
}

/* The decode side's reservation (KVCacheManager.allocate_slots for the
 * remote tokens, delay_cache_blocks: the blocks get no prefix-cache key
 * until the sequence is admitted with them). */
int llm_sched_reserve(llm_sched *s, llm_seq *r, int tokens)
{
    int need = ceil_div(tokens > 0 ? tokens : 1, s->bs);

    if (need > s->n_free)
        return 0;
    r->computed = r->generated = r->kv_tokens = 0;
    r->n_blocks = r->blocks_cap = 0;
    r->blocks = NULL;
    take_new(s, r, need);
    r->state = LLM_RESERVED;
    r->prev = NULL;
    r->next = s->rhead;
    if (s->rhead)
        s->rhead->prev = r;
    s->rhead = r;
    s->n_reserved++;
    return 1;
}

void llm_sched_add_landed(llm_sched *s, llm_seq *q, llm_seq *r, int kv_tokens, int generated)
{
    assert(r->state == LLM_RESERVED);
    list_unlink(&s->rhead, r);
    s->n_reserved--;
    q->computed = 0;
    q->generated = generated;
    q->kv_tokens = kv_tokens;
    q->blocks = r->blocks;
    q->n_blocks = r->n_blocks;
    q->blocks_cap = r->blocks_cap;
    r->blocks = NULL;
    r->n_blocks = r->blocks_cap = 0;
    r->state = LLM_ABORTED;
    q->cached_tokens = 0;
    q->preemptions = 0;
    q->state = LLM_LANDED;
    q->next = NULL;
    q->prev = s->ltail;
    if (s->ltail)
        s->ltail->next = q;
    else
        s->lhead = q;
    s->ltail = q;
    s->n_landed++;
    waiting_changed(s);
}

int llm_sched_reserved(const llm_sched *s)
{
    return s->n_reserved;
}

llm_seq *llm_sched_reserved_head(const llm_sched *s)
{
    return s->rhead;
}

llm_seq *llm_sched_landed_head(const llm_sched *s)
{
    return s->lhead;
}

/* Number of blocks of q found in the prefix cache, at most max_blocks,
 * into s->hit (FullAttentionManager.find_longest_cache_hit: the longest
 * run of hits from the first block, stopping at the first miss). */
static int lookup(llm_sched *s, const llm_seq *q, int max_blocks)
{
    int n = 0;
    uint64_t h;
    int off;

    for (int k = 0; k < max_blocks; k++) {
        int b;

        if (!block_key(s, q, k, &h, &off) || (b = key_find(s, h, off)) < 0)
            break;
        s->hit[n++] = b;
    }
    return n;
}

/* The waiting head's admission (Scheduler.schedule, second loop); 0 when
 * it must stop admitting. */
static int admit(llm_sched *s, llm_step *st, int *budget, llm_seq *q)
{
    int have = q->n_blocks;                       /* a landed sequence's reservation */
    int ntok = q->prompt_tokens + q->generated;   /* request.num_tokens */
    int thr = s->cfg.long_prefill_threshold, nh = 0, hit_tokens, n, need;
    int brought = q->kv_tokens > 0; /* its KV came with it: allocated, not computed */

    /* KVCacheManager.get_computed_blocks: full blocks only, and at most
     * num_tokens - 1 tokens, so a prompt that hits whole still computes
     * its last token (for the logits): that recomputes the whole last
     * block, since computed tokens must stay block-aligned. */
    if (!brought && s->cfg.enable_prefix_caching && s->ids)
        nh = lookup(s, q, (ntok - 1) / s->bs);
    hit_tokens = !brought ? nh * s->bs : q->kv_tokens < ntok ? q->kv_tokens : ntok - 1;
    n = ntok - hit_tokens;
    if (thr > 0 && n > thr)
        n = thr;
    /* without chunked prefill a prompt that does not fit stops admission */
    if (!s->cfg.chunked_prefill && n > *budget)
        return 0;
    if (n > *budget)
        n = *budget;
    /* SingleTypeKVCacheManager.get_num_blocks_to_allocate: new blocks, plus
     * the hits that sit in the free queue (ref 0) and leave it when taken */
    need = ceil_div((long)hit_tokens + n, s->bs) - nh - have;
    for (int i = 0; i < nh; i++)
        need += s->blk[s->hit[i]].ref == 0;
    if (need > s->n_free)
        return 0;   /* no preemption for admissions: stop */

    if (q->state == LLM_LANDED)
        landed_unlink(s, q);
    else
        waiting_unlink(s, q);
    if (s->ids)
        table_reserve(q, ceil_div((long)hit_tokens + n, s->bs));
    /* BlockPool.touch before get_new_blocks, so taking new blocks cannot
     * evict the hits */
    for (int i = 0; i < nh; i++) {
        int b = s->hit[i];

        if (s->blk[b].ref++ == 0)
            queue_remove(s, b);
        q->blocks[q->n_blocks++] = b;
    }
    if (ceil_div((long)hit_tokens + n, s->bs) - nh - have > 0)
        take_new(s, q, ceil_div((long)hit_tokens + n, s->bs) - nh - have);
    q->computed = hit_tokens;
    if (brought) {
        /* the blocks it brought are full prompt blocks like any other: keyed
         * for later prefix hits; no lookup was made, so none is counted */
        q->kv_tokens = 0;
        q->cached_tokens = 0;
        cache_blocks(s, q, 0, hit_tokens + n < ntok ? hit_tokens + n : ntok);
    } else {
        q->cached_tokens = hit_tokens;
        cache_blocks(s, q, hit_tokens, hit_tokens + n < ntok ? hit_tokens + n : ntok);
    }
    /* record_prefix_cache_stats at admission, num_tokens and hits, split
     * by whether the request was preempted before (stats.py) */
    if (s->cfg.enable_prefix_caching && !brought) {
        if (q->preemptions > 0) {
            s->ppq += (unsigned long)ntok;
            s->pph += (unsigned long)hit_tokens;
        } else {
            s->pq += (unsigned long)ntok;
            s->ph += (unsigned long)hit_tokens;
        }
    }
    q->state = LLM_RUNNING;
    s->running[s->n_running++] = q;
    push_item(st, q, n);
    *budget -= n;
    return 1;
}

int llm_sched_schedule(llm_sched *s, llm_step *st)
{
    int budget = s->cfg.max_num_batched_tokens, thr = s->cfg.long_prefill_threshold;

    st->n = st->tokens = st->n_preempted = 0;
    /* 1) running sequences, in admission order, while budget remains */
    for (int i = 0; i < s->n_running && budget > 0; i++) {
        llm_seq *q = s->running[i];
        int n = q->prompt_tokens + q->generated - q->computed, ok;

        assert(n > 0);
        if (thr > 0 && n > thr)
            n = thr;
        if (n > budget)
            n = budget;
        /* no blocks: preempt the last running sequence and retry; stop when
         * that is q itself (FCFS branch of the allocate_slots loop) */
        for (;;) {
            llm_seq *v;

            if ((ok = grow(s, q, n)))
                break;
            v = s->running[--s->n_running];
            preempt(s, v);
            st->preempted[st->n_preempted++] = v;
            if (v == q)
                break;
        }
        if (!ok)
            break;
        cache_blocks(s, q, q->computed, q->computed + n);
        push_item(st, q, n);
        budget -= n;
    }
    /* 2) waiting sequences, only in a step that preempted nothing */
    if (st->n_preempted == 0) {
        int stop = 0;
        while (s->lhead && budget > 0 && s->n_running < s->cfg.max_num_seqs)
            if (!admit(s, st, &budget, s->lhead)) {
                stop = 1;
                break;
            }
        while (!stop && s->whead && budget > 0 && s->n_running < s->cfg.max_num_seqs)
            if (!admit(s, st, &budget, s->whead))
                break;
    }
    return st->n;
}

void llm_sched_step_done(llm_sched *s, const llm_step *st, llm_seq **first, int *n_first,
                         llm_seq **done, int *n_done)
{
    int j = 0, ended = 0;

    *n_first = *n_done = 0;
    for (int i = 0; i < st->n; i++) {
        llm_seq *q = st->items[i].seq;

        if (q->state != LLM_RUNNING)
            continue;   /* aborted since the step was formed */
        q->computed += st->items[i].n_new;
        assert(q->computed <= q->prompt_tokens + q->generated);
        if (q->computed < q->prompt_tokens + q->generated)
            continue;   /* a prefill chunk short of the end */
        /* every token known is computed: the step sampled the next one */
        if (++q->generated == 1)
            first[(*n_first)++] = q;
        if (q->generated >= q->output_tokens && q->hold_kv) {
            /* its KV cache stays until it has been sent on */
            q->state = LLM_HELD;
            q->prev = NULL;
            q->next = s->hhead;
            if (s->hhead)
                s->hhead->prev = q;
            s->hhead = q;
            s->n_held++;
            done[(*n_done)++] = q;
            ended++;
        } else if (q->generated >= q->output_tokens) {
            release(s, q);
            table_drop(q);
            q->state = LLM_DONE;
            done[(*n_done)++] = q;
            ended++;
        }
    }
    if (!ended)
        return;
    /* keep the survivors in admission order (utils.remove_all) */
    for (int i = 0; i < s->n_running; i++)
        if (s->running[i]->state == LLM_RUNNING)
            s->running[j++] = s->running[i];
    s->n_running = j;
}

void llm_sched_abort(llm_sched *s, llm_seq *q)
{
    if (q->state == LLM_WAITING) {
        waiting_unlink(s, q);
    } else if (q->state == LLM_RUNNING) {
        int i = 0;

        while (i < s->n_running && s->running[i] != q)
            i++;
        assert(i < s->n_running);
        memmove(&s->running[i], &s->running[i + 1],
                sizeof *s->running * (size_t)(s->n_running - i - 1));
        s->n_running--;
        release(s, q);
    } else if (q->state == LLM_HELD) {
        list_unlink(&s->hhead, q);
        s->n_held--;
        release(s, q);
    } else if (q->state == LLM_RESERVED) {
        list_unlink(&s->rhead, q);
        s->n_reserved--;
        release(s, q);
    } else if (q->state == LLM_LANDED) {
        landed_unlink(s, q);
        release(s, q);
    } else {
        return;
    }
    table_drop(q);
    q->state = LLM_ABORTED;
}

int llm_sched_fits(const llm_sched *s, const llm_seq *q)
{
    long most = (long)q->prompt_tokens + q->output_tokens - 1;

    if (q->prompt_tokens < 1 || q->output_tokens < 1)
        return 0;
    if (ceil_div(most, s->bs) > s->nb)
        return 0;
    if (!s->cfg.chunked_prefill) {
        long n = most;

        if (s->cfg.long_prefill_threshold > 0 && n > s->cfg.long_prefill_threshold)
            n = s->cfg.long_prefill_threshold;
        if (n > s->cfg.max_num_batched_tokens)
            return 0;
    }
    return 1;
}

/* llm_sched_check's last part: the waiting queue's links and states. */
static int check_queues(const llm_sched *s)
{
    int waiting = 0;

    for (const llm_seq *q = s->whead, *p = NULL; q; p = q, q = q->next) {
        if (q->prev != p || q->state != LLM_WAITING || q->n_blocks != 0 || q->computed != 0 ||
            ++waiting > s->n_waiting)
            return 6;
        if (!q->next && q != s->wtail)
            return 6;
    }
    if (waiting != s->n_waiting || s->n_running > s->cfg.max_num_seqs)
        return 6;
    return 0;
}

/* llm_sched_check without block ids: the running, held, reserved and
 * landed sequences' counts against the free count, no table and no key
 * anywhere. */
static int check_counts(const llm_sched *s)
{
    long used = 0;
    int n_held = 0;

    if (s->n_free < 0 || s->n_free > s->nb)
        return 1;
    for (int i = 0; i < s->n_running; i++) {
        const llm_seq *q = s->running[i];

        if (q->state != LLM_RUNNING || (long)q->n_blocks * s->bs < q->computed || q->blocks ||
            q->computed >= q->prompt_tokens + q->generated || q->generated >= q->output_tokens)
            return 3;
        used += q->n_blocks;
    }
    for (const llm_seq *q = s->hhead; q; q = q->next) {
        if (q->state != LLM_HELD || ++n_held > s->n_held || (q->next && q->next->prev != q) ||
            q->blocks)
            return 7;
        used += q->n_blocks;
    }
    if (n_held != s->n_held)
        return 7;
    int n_res = 0, n_land = 0;
    for (const llm_seq *q = s->rhead; q; q = q->next) {
        if (q->state != LLM_RESERVED || ++n_res > s->n_reserved ||
            (q->next && q->next->prev != q) || q->blocks)
            return 8;
        used += q->n_blocks;
    }
    for (const llm_seq *q = s->lhead, *p = NULL; q; p = q, q = q->next) {
        if (q->state != LLM_LANDED || q->prev != p || ++n_land > s->n_landed ||
            (!q->next && q != s->ltail) || q->blocks)
            return 8;
        used += q->n_blocks;
    }
    if (n_res != s->n_reserved || n_land != s->n_landed)
        return 8;
    if (used + s->n_free != s->nb)
        return 4;
    if (s->n_keyed)
        return 5;
    return 0;
}

int llm_sched_check(const llm_sched *s)
{
    int *holders, rc = 0, nq = 0, prev = -1;
    long used = 0, keyed = 0;

    if (!s->ids)
        return (rc = check_counts(s)) != 0 ? rc : check_queues(s);
    /* free queue: linked both ways, every member unheld */
    for (int b = s->qhead; b >= 0; b = s->blk[b].qnext) {
        if (b >= s->nb || s->blk[b].qprev != prev || s->blk[b].ref != 0 || ++nq > s->nb)
            return 1;
        prev = b;
    }
    if (prev != s->qtail || nq != s->n_free)
        return 1;
    /* reference counts equal the running block tables' holders */
    holders = calloc((size_t)s->nb, sizeof *holders);
    if (!holders)
        return 99;
    for (int i = 0; i < s->n_running && !rc; i++) {
        const llm_seq *q = s->running[i];

        if (q->state != LLM_RUNNING || (long)q->n_blocks * s->bs < q->computed ||
            q->n_blocks > q->blocks_cap || q->computed >= q->prompt_tokens + q->generated ||
            q->generated >= q->output_tokens)
            rc = 3;
        for (int k = 0; k < q->n_blocks && !rc; k++) {
            int b = q->blocks[k], off;
            uint64_t h;

            if (b < 0 || b >= s->nb)
                rc = 3;
            else if (holders[b]++ && s->blk[b].key_off < 0)
                rc = 3;   /* only cached blocks are shared */
            /* a keyed block holds the content its position says */
            else if (s->blk[b].key_off >= 0 &&
                     (!block_key(s, q, k, &h, &off) || h != s->key_hash[b] ||
                      off != s->blk[b].key_off))
                rc = 5;
        }
    }
    int n_held = 0;
    for (const llm_seq *q = s->hhead; q && !rc; q = q->next) {
        if (q->state != LLM_HELD || ++n_held > s->n_held || (q->next && q->next->prev != q))
            rc = 7;
        for (int k = 0; k < q->n_blocks && !rc; k++) {
            int b = q->blocks[k];
            if (b < 0 || b >= s->nb || (holders[b]++ && s->blk[b].key_off < 0))
                rc = 3;
        }
    }
    if (!rc && n_held != s->n_held)
        rc = 7;
    /* reservations and landed sequences: their blocks, unshared */
    int n_res = 0, n_land = 0;
    for (const llm_seq *q = s->rhead; q && !rc; q = q->next) {
        if (q->state != LLM_RESERVED || ++n_res > s->n_reserved || (q->next && q->next->prev != q))
            rc = 8;
        for (int k = 0; k < q->n_blocks && !rc; k++) {
            int b = q->blocks[k];
            if (b < 0 || b >= s->nb || holders[b]++)
                rc = 8;
        }
    }
    for (const llm_seq *q = s->lhead, *p = NULL; q && !rc; p = q, q = q->next) {
        if (q->state != LLM_LANDED || q->prev != p || ++n_land > s->n_landed ||
            (!q->next && q != s->ltail))
            rc = 8;
        for (int k = 0; k < q->n_blocks && !rc; k++) {
            int b = q->blocks[k];
            if (b < 0 || b >= s->nb || holders[b]++)
                rc = 8;
        }
    }
    if (!rc && (n_res != s->n_reserved || n_land != s->n_landed))
        rc = 8;
    for (int b = 0; b < s->nb && !rc; b++) {
        if (holders[b] != s->blk[b].ref)
            rc = 2;
        used += s->blk[b].ref > 0;
    }
    free(holders);
    if (rc)
        return rc;
    /* used + free = num_blocks */
    if (used + s->n_free != s->nb)
        return 4;
    /* prefix-cache table: each keyed block found under its key's bucket */
    for (uint64_t i = 0; i <= s->bucket_mask; i++) {
        int last = -1;
        for (int b = s->bucket[i]; b >= 0; last = b, b = s->hnext[b]) {
            if (s->blk[b].key_off < 0 || key_bucket(s, s->key_hash[b], s->blk[b].key_off) != i ||
                s->hprev[b] != last || ++keyed > s->nb)
                return 5;
        }
        if (s->btail[i] != last)
            return 5;
    }
    for (int b = 0; b < s->nb; b++)
        keyed -= s->blk[b].key_off >= 0;
    if (keyed != 0 || (!s->cfg.enable_prefix_caching && s->n_keyed) ||
        (s->n_keyed > s->nb))
        return 5;
    return check_queues(s);
}

void llm_sched_watch(llm_sched *s, void (*fn)(void *ctx), void *ctx)
{
    s->watch = fn;
    s->watch_ctx = ctx;
}

int llm_sched_waiting(const llm_sched *s)
{
    return s->n_waiting + s->n_landed;
}

int llm_sched_running(const llm_sched *s)
{
    return s->n_running;
}

llm_seq *llm_sched_running_at(const llm_sched *s, int i)
{
    return i >= 0 && i < s->n_running ? s->running[i] : NULL;
}

llm_seq *llm_sched_waiting_head(const llm_sched *s)
{
    return s->whead;
}

long llm_sched_blocks_used(const llm_sched *s)
{
    return s->nb - s->n_free;
}

int llm_sched_held(const llm_sched *s)
{
    return s->n_held;
}

llm_seq *llm_sched_held_head(const llm_sched *s)
{
    return s->hhead;
}

long llm_sched_blocks_free(const llm_sched *s)
{
    return s->n_free;
}

long llm_sched_blocks_cached(const llm_sched *s)
{
    return s->n_keyed;
}

unsigned long llm_sched_preemptions(const llm_sched *s)
{
    return s->preemptions;
}

unsigned long llm_sched_prefix_queries(const llm_sched *s)
{
    return s->pq;
}

unsigned long llm_sched_prefix_hits(const llm_sched *s)
{
    return s->ph;
}

unsigned long llm_sched_prefix_preempted_queries(const llm_sched *s)
{
    return s->ppq;
}

unsigned long llm_sched_prefix_preempted_hits(const llm_sched *s)
{
    return s->pph;
}
