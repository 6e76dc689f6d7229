/*
 * test_llm_sched.c - the vLLM v1 scheduler model (llm_sched.c) on
 * hand-built states with exact expected steps: the token budget split
 * between running and waiting sequences, chunked prefill boundaries and the
 * first token, max_num_seqs, admission blocked by KV blocks, preemption
 * order and recompute, no admission in a step that preempted, prefix-cache
 * hits and LRU eviction of cached blocks, abort, the decode side's KV
 * reservations; then long randomized runs
 * (gsl_rng, fixed seeds) checking block and request conservation after
 * every step.
 */
#include "llm_sched.h"

#include <CUnit/Basic.h>
#include <gsl/gsl_rng.h>

#include <stdlib.h>
#include <string.h>

static llm_sched_config cfg_of(int budget, int max_seqs, long num_blocks)
{
    llm_sched_config c = {
        .max_num_batched_tokens = budget,
        .max_num_seqs = max_seqs,
        .block_size = 16,
        .num_blocks = num_blocks,
        .long_prefill_threshold = 0,
        .enable_prefix_caching = 0,
        .chunked_prefill = 1,
    };
    return c;
}

static void seq_init(llm_seq *q, unsigned long id, int prompt, int output)
{
    memset(q, 0, sizeof *q);
    q->id = id;
    q->prompt_tokens = prompt;
    q->output_tokens = output;
}

/* A scheduler and its step buffers, with the first/done arrays. */
typedef struct {
    llm_sched *s;
    llm_step *st;
    llm_seq *first[64], *done[64];
    int n_first, n_done;
    long nb;
    int budget;
} rig;

static void rig_open(rig *r, const llm_sched_config *c)
{
    memset(r, 0, sizeof *r);
    r->nb = c->num_blocks;
    r->budget = c->max_num_batched_tokens;
    r->s = llm_sched_new(c);
    CU_ASSERT_PTR_NOT_NULL_FATAL(r->s);
    r->st = llm_step_new(r->s);
    CU_ASSERT_PTR_NOT_NULL_FATAL(r->st);
}

static void rig_close(rig *r)
{
    llm_step_free(r->st);
    llm_sched_free(r->s);
}

static int sched(rig *r)
{
    int n = llm_sched_schedule(r->s, r->st);

    CU_ASSERT_EQUAL(llm_sched_check(r->s), 0);
    CU_ASSERT_EQUAL(llm_sched_blocks_used(r->s) + llm_sched_blocks_free(r->s), r->nb);
    CU_ASSERT(r->st->tokens <= r->budget);
    return n;
}

static void done(rig *r)
{
    llm_sched_step_done(r->s, r->st, r->first, &r->n_first, r->done, &r->n_done);
    CU_ASSERT_EQUAL(llm_sched_check(r->s), 0);
    CU_ASSERT_EQUAL(llm_sched_blocks_used(r->s) + llm_sched_blocks_free(r->s), r->nb);
}

/* The item of seq q in the last step, NULL if not scheduled. */
static const llm_sched_item *item_of(const rig *r, const llm_seq *q)
{
    for (int i = 0; i < r->st->n; i++)
        if (r->st->items[i].seq == q)
            return &r->st->items[i];
    return NULL;
}

/* budget 8192, three decoding sequences and a 10k prompt: the prompt gets
 * the 8189 tokens left, then the remaining 1811 with its first token */
static void test_budget_split(void)
{
    llm_sched_config c = cfg_of(8192, 256, 10000);
    llm_seq d[3], big;
    rig r;

    rig_open(&r, &c);
    for (int i = 0; i < 3; i++) {
        seq_init(&d[i], i, 100, 50);
        llm_sched_add(r.s, &d[i]);
    }
    CU_ASSERT_EQUAL(sched(&r), 3);
    CU_ASSERT_EQUAL(r.st->tokens, 300);
    done(&r);
    CU_ASSERT_EQUAL(r.n_first, 3);
    CU_ASSERT_EQUAL(d[0].generated, 1);

    seq_init(&big, 9, 10000, 4);
    llm_sched_add(r.s, &big);
    CU_ASSERT_EQUAL(sched(&r), 4);
    CU_ASSERT_EQUAL(r.st->tokens, 8192);
    for (int i = 0; i < 3; i++) {
        CU_ASSERT_PTR_EQUAL(r.st->items[i].seq, &d[i]);
        CU_ASSERT_EQUAL(r.st->items[i].n_new, 1);
        CU_ASSERT_EQUAL(r.st->items[i].context, 100);
        CU_ASSERT_EQUAL(r.st->items[i].decode, 1);
    }
    CU_ASSERT_PTR_EQUAL(r.st->items[3].seq, &big);
    CU_ASSERT_EQUAL(r.st->items[3].n_new, 8189);
    CU_ASSERT_EQUAL(r.st->items[3].context, 0);
    CU_ASSERT_EQUAL(r.st->items[3].decode, 0);
    /* 100 + 1 tokens: 7 blocks each; the chunk 8189 tokens: 512 blocks */
    CU_ASSERT_EQUAL(llm_sched_blocks_used(r.s), 3 * 7 + 512);
    done(&r);
    CU_ASSERT_EQUAL(r.n_first, 0);
    CU_ASSERT_EQUAL(big.computed, 8189);
    CU_ASSERT_EQUAL(big.generated, 0);

    CU_ASSERT_EQUAL(sched(&r), 4);
    CU_ASSERT_EQUAL(r.st->items[3].n_new, 1811);
    CU_ASSERT_EQUAL(r.st->items[3].context, 8189);
    CU_ASSERT_EQUAL(r.st->tokens, 3 + 1811);
    done(&r);
    CU_ASSERT_EQUAL(r.n_first, 1);
    CU_ASSERT_PTR_EQUAL(r.first[0], &big);
    CU_ASSERT_EQUAL(big.generated, 1);
    /* then a decode token on 10000 computed */
    CU_ASSERT_EQUAL(sched(&r), 4);
    CU_ASSERT_EQUAL(item_of(&r, &big)->n_new, 1);
    CU_ASSERT_EQUAL(item_of(&r, &big)->context, 10000);
    CU_ASSERT_EQUAL(item_of(&r, &big)->decode, 1);
    rig_close(&r);
}

/* a request alone: ceil(prompt / budget) prefill steps, the first token
 * at the last of them, then output - 1 decode steps */
static void test_alone(void)
{
    const int prompts[] = { 5000, 2048, 1, 4097 }, outputs[] = { 7, 1, 3, 2 };

    for (int t = 0; t < 4; t++) {
        llm_sched_config c = cfg_of(2048, 8, 1000);
        int p = prompts[t], o = outputs[t], steps = 0, first_at = 0, done_at = 0;
        int prefill = (p + 2047) / 2048;
        llm_seq q;
        rig r;

        rig_open(&r, &c);
        seq_init(&q, 1, p, o);
        llm_sched_add(r.s, &q);
        while (sched(&r) > 0) {
            steps++;
            if (steps <= prefill) {
                int want = steps < prefill ? 2048 : p - 2048 * (prefill - 1);
                CU_ASSERT_EQUAL(r.st->items[0].n_new, want);
                CU_ASSERT_EQUAL(r.st->items[0].context, 2048 * (steps - 1));
                CU_ASSERT_EQUAL(r.st->items[0].decode, 0);
            } else {
                CU_ASSERT_EQUAL(r.st->items[0].n_new, 1);
                CU_ASSERT_EQUAL(r.st->items[0].decode, 1);
            }
            done(&r);
            if (r.n_first)
                first_at = steps;
            if (r.n_done)
                done_at = steps;
        }
        CU_ASSERT_EQUAL(steps, prefill + o - 1);
        CU_ASSERT_EQUAL(first_at, prefill);
        CU_ASSERT_EQUAL(done_at, steps);
        CU_ASSERT_EQUAL(q.state, LLM_DONE);
        CU_ASSERT_EQUAL(q.generated, o);
        CU_ASSERT_EQUAL(llm_sched_blocks_used(r.s), 0);
        CU_ASSERT_EQUAL(llm_sched_running(r.s), 0);
        rig_close(&r);
    }
}

/* long_prefill_threshold caps each prompt's share; the rest of the budget
 * goes to the next sequence */
static void test_threshold(void)
{
    llm_sched_config c = cfg_of(2048, 8, 1000);
    llm_seq a, b, e;
    rig r;

    c.long_prefill_threshold = 1000;
    rig_open(&r, &c);
    seq_init(&a, 1, 2500, 2);
    seq_init(&b, 2, 2500, 2);
    seq_init(&e, 3, 2500, 2);
    llm_sched_add(r.s, &a);
    llm_sched_add(r.s, &b);
    llm_sched_add(r.s, &e);
    CU_ASSERT_EQUAL(sched(&r), 3);
    CU_ASSERT_EQUAL(r.st->items[0].n_new, 1000);
    CU_ASSERT_EQUAL(r.st->items[1].n_new, 1000);
    CU_ASSERT_EQUAL(r.st->items[2].n_new, 48);
    done(&r);
    CU_ASSERT_EQUAL(sched(&r), 3);
    CU_ASSERT_EQUAL(r.st->items[0].n_new, 1000);
    CU_ASSERT_EQUAL(r.st->items[1].n_new, 1000);
    CU_ASSERT_EQUAL(r.st->items[2].n_new, 48);
    CU_ASSERT_EQUAL(r.st->items[2].context, 48);
    done(&r);
    /* a and b have 500 left each; e gets the remaining 1000 */
    CU_ASSERT_EQUAL(sched(&r), 3);
    CU_ASSERT_EQUAL(r.st->items[0].n_new, 500);
    CU_ASSERT_EQUAL(r.st->items[1].n_new, 500);
    CU_ASSERT_EQUAL(r.st->items[2].n_new, 1000);
    done(&r);
    CU_ASSERT_EQUAL(r.n_first, 2);
    rig_close(&r);
}

/* without chunked prefill a prompt that does not fit the budget left
 * stops admission (the ones behind it wait too); with it, it is cut */
static void test_no_chunking(void)
{
    for (int chunked = 0; chunked <= 1; chunked++) {
        llm_sched_config c = cfg_of(100, 8, 1000);
        llm_seq a, b, e;
        rig r;

        c.chunked_prefill = chunked;
        rig_open(&r, &c);
        seq_init(&a, 1, 10, 5);
        llm_sched_add(r.s, &a);
        sched(&r);
        done(&r);
        seq_init(&b, 2, 100, 5);
        seq_init(&e, 3, 10, 5);
        llm_sched_add(r.s, &b);
        llm_sched_add(r.s, &e);
        if (!chunked) {
            CU_ASSERT_EQUAL(sched(&r), 1);
            CU_ASSERT_EQUAL(r.st->tokens, 1);
            CU_ASSERT_EQUAL(llm_sched_waiting(r.s), 2);
            CU_ASSERT_PTR_EQUAL(llm_sched_waiting_head(r.s), &b);
            CU_ASSERT_FALSE(llm_sched_fits(r.s, &b));
            CU_ASSERT_TRUE(llm_sched_fits(r.s, &e));
        } else {
            CU_ASSERT_EQUAL(sched(&r), 2);
            CU_ASSERT_EQUAL(r.st->items[1].n_new, 99);
            CU_ASSERT_EQUAL(r.st->tokens, 100);
            CU_ASSERT_EQUAL(llm_sched_waiting(r.s), 1);
            CU_ASSERT_TRUE(llm_sched_fits(r.s, &b));
        }
        rig_close(&r);
    }
}

/* max_num_seqs: the third waits until one of two finishes */
static void test_max_num_seqs(void)
{
    llm_sched_config c = cfg_of(8192, 2, 1000);
    llm_seq q[3];
    rig r;

    rig_open(&r, &c);
    seq_init(&q[0], 0, 10, 2);
    seq_init(&q[1], 1, 10, 5);
    seq_init(&q[2], 2, 10, 5);
    for (int i = 0; i < 3; i++)
        llm_sched_add(r.s, &q[i]);
    CU_ASSERT_EQUAL(sched(&r), 2);
    CU_ASSERT_EQUAL(llm_sched_running(r.s), 2);
    CU_ASSERT_EQUAL(llm_sched_waiting(r.s), 1);
    done(&r);
    CU_ASSERT_EQUAL(sched(&r), 2);   /* two decodes; still full */
    CU_ASSERT_EQUAL(llm_sched_waiting(r.s), 1);
    done(&r);
    CU_ASSERT_EQUAL(r.n_done, 1);
    CU_ASSERT_PTR_EQUAL(r.done[0], &q[0]);
    CU_ASSERT_EQUAL(q[0].state, LLM_DONE);
    CU_ASSERT_EQUAL(sched(&r), 2);
    CU_ASSERT_PTR_EQUAL(r.st->items[1].seq, &q[2]);
    CU_ASSERT_EQUAL(r.st->items[1].n_new, 10);
    CU_ASSERT_PTR_EQUAL(llm_sched_running_at(r.s, 0), &q[1]);
    CU_ASSERT_PTR_EQUAL(llm_sched_running_at(r.s, 1), &q[2]);
    rig_close(&r);
}

/* KV blocks: 10 of 16 tokens. a (100 tokens, 7 blocks) runs; b needs 4 and
 * waits, and c (1 block) behind it waits too: admission stops, FCFS. */
static void test_blocks_block_admission(void)
{
    llm_sched_config c = cfg_of(8192, 8, 10);
    llm_seq a, b, e;
    rig r;

    rig_open(&r, &c);
    seq_init(&a, 1, 100, 2);
    seq_init(&b, 2, 64, 1);
    seq_init(&e, 3, 16, 1);
    llm_sched_add(r.s, &a);
    llm_sched_add(r.s, &b);
    llm_sched_add(r.s, &e);
    CU_ASSERT_EQUAL(sched(&r), 1);
    CU_ASSERT_EQUAL(llm_sched_blocks_used(r.s), 7);
    CU_ASSERT_EQUAL(llm_sched_blocks_free(r.s), 3);
    CU_ASSERT_EQUAL(llm_sched_waiting(r.s), 2);
    done(&r);
    CU_ASSERT_EQUAL(sched(&r), 1);   /* a decodes at 100: still 7 blocks */
    CU_ASSERT_EQUAL(llm_sched_waiting(r.s), 2);
    done(&r);
    CU_ASSERT_EQUAL(r.n_done, 1);
    CU_ASSERT_EQUAL(llm_sched_blocks_used(r.s), 0);
    CU_ASSERT_EQUAL(llm_sched_preemptions(r.s), 0);
    CU_ASSERT_EQUAL(sched(&r), 2);
    CU_ASSERT_EQUAL(llm_sched_blocks_used(r.s), 5);
    /* blocks are handed out in free-queue order: the never-used 7, 8, 9
     * first, then a's, its tail block (6) freed first */
    CU_ASSERT_EQUAL(b.blocks[0], 7);
    CU_ASSERT_EQUAL(b.blocks[3], 6);
    CU_ASSERT_EQUAL(e.blocks[0], 5);
    done(&r);
    CU_ASSERT_EQUAL(r.n_done, 2);
    rig_close(&r);
}

/* Four one-block sequences fill 4 blocks. Each decode needs a second
 * block: a preempts d, b preempts c; c and d go back to waiting in that
 * order, with their output kept, and nothing is admitted that step. */
static void test_preemption_order(void)
{
    llm_sched_config c = cfg_of(8192, 8, 4);
    llm_seq q[4], late;
    rig r;

    rig_open(&r, &c);
    for (int i = 0; i < 4; i++) {
        seq_init(&q[i], i, 16, 3);
        llm_sched_add(r.s, &q[i]);
    }
    CU_ASSERT_EQUAL(sched(&r), 4);
    CU_ASSERT_EQUAL(llm_sched_blocks_free(r.s), 0);
    done(&r);
    CU_ASSERT_EQUAL(r.n_first, 4);
    /* a sequence waiting behind: never admitted in a preempting step */
    seq_init(&late, 9, 1, 1);
    llm_sched_add(r.s, &late);

    CU_ASSERT_EQUAL(sched(&r), 2);
    CU_ASSERT_PTR_EQUAL(r.st->items[0].seq, &q[0]);
    CU_ASSERT_PTR_EQUAL(r.st->items[1].seq, &q[1]);
    CU_ASSERT_EQUAL(r.st->items[0].decode, 1);
    CU_ASSERT_EQUAL(r.st->n_preempted, 2);
    CU_ASSERT_PTR_EQUAL(r.st->preempted[0], &q[3]);
    CU_ASSERT_PTR_EQUAL(r.st->preempted[1], &q[2]);
    CU_ASSERT_EQUAL(llm_sched_preemptions(r.s), 2);
    CU_ASSERT_EQUAL(llm_sched_running(r.s), 2);
    CU_ASSERT_EQUAL(llm_sched_waiting(r.s), 3);
    CU_ASSERT_PTR_EQUAL(llm_sched_waiting_head(r.s), &q[2]);
    CU_ASSERT_PTR_EQUAL(q[2].next, &q[3]);
    CU_ASSERT_PTR_EQUAL(q[3].next, &late);
    for (int i = 2; i < 4; i++) {
        CU_ASSERT_EQUAL(q[i].state, LLM_WAITING);
        CU_ASSERT_EQUAL(q[i].computed, 0);
        CU_ASSERT_EQUAL(q[i].n_blocks, 0);
        CU_ASSERT_EQUAL(q[i].generated, 1);
        CU_ASSERT_EQUAL(q[i].preemptions, 1);
    }
    CU_ASSERT_EQUAL(llm_sched_blocks_used(r.s), 4);
    CU_ASSERT_EQUAL(late.state, LLM_WAITING);
    done(&r);

    /* c needs 2 blocks for 17 tokens: none free, admission stops */
    CU_ASSERT_EQUAL(sched(&r), 2);
    CU_ASSERT_EQUAL(r.st->n_preempted, 0);
    CU_ASSERT_EQUAL(llm_sched_waiting(r.s), 3);
    done(&r);
    CU_ASSERT_EQUAL(r.n_done, 2);

    /* readmission recomputes prompt + generated = 17 tokens each */
    CU_ASSERT_EQUAL(sched(&r), 2);
    CU_ASSERT_PTR_EQUAL(r.st->items[0].seq, &q[2]);
    CU_ASSERT_EQUAL(r.st->items[0].n_new, 17);
    CU_ASSERT_EQUAL(r.st->items[0].context, 0);
    CU_ASSERT_EQUAL(r.st->items[0].decode, 0);
    CU_ASSERT_PTR_EQUAL(r.st->items[1].seq, &q[3]);
    CU_ASSERT_EQUAL(r.st->items[1].n_new, 17);
    CU_ASSERT_PTR_EQUAL(llm_sched_waiting_head(r.s), &late);
    done(&r);
    /* the recompute ends in a token, not a first token */
    CU_ASSERT_EQUAL(r.n_first, 0);
    CU_ASSERT_EQUAL(q[2].generated, 2);
    CU_ASSERT_EQUAL(q[2].computed, 17);
    CU_ASSERT_EQUAL(sched(&r), 2);   /* late needs 1 block: none free */
    CU_ASSERT_EQUAL(r.st->items[0].n_new, 1);
    CU_ASSERT_EQUAL(r.st->items[0].context, 17);
    done(&r);
    CU_ASSERT_EQUAL(r.n_done, 2);
    CU_ASSERT_EQUAL(q[2].generated, 3);
    CU_ASSERT_EQUAL(sched(&r), 1);
    CU_ASSERT_PTR_EQUAL(r.st->items[0].seq, &late);
    done(&r);
    CU_ASSERT_EQUAL(late.state, LLM_DONE);
    CU_ASSERT_EQUAL(llm_sched_preemptions(r.s), 2);
    rig_close(&r);
}

/* The last running sequence is the one that needs the block: it preempts
 * itself and the running loop stops. */
static void test_self_preemption(void)
{
    llm_sched_config c = cfg_of(8192, 8, 3);
    llm_seq a, b;
    rig r;

    rig_open(&r, &c);
    seq_init(&a, 1, 20, 4);   /* 2 blocks, room up to 32 tokens */
    seq_init(&b, 2, 16, 4);   /* 1 block, full */
    llm_sched_add(r.s, &a);
    llm_sched_add(r.s, &b);
    CU_ASSERT_EQUAL(sched(&r), 2);
    done(&r);
    CU_ASSERT_EQUAL(sched(&r), 1);
    CU_ASSERT_PTR_EQUAL(r.st->items[0].seq, &a);
    CU_ASSERT_EQUAL(r.st->n_preempted, 1);
    CU_ASSERT_PTR_EQUAL(r.st->preempted[0], &b);
    CU_ASSERT_EQUAL(b.preemptions, 1);
    CU_ASSERT_EQUAL(llm_sched_blocks_used(r.s), 2);
    CU_ASSERT_EQUAL(llm_sched_blocks_free(r.s), 1);
    done(&r);
    /* b (17 tokens, 2 blocks) cannot come back while a holds 2 of 3 */
    CU_ASSERT_EQUAL(sched(&r), 1);
    CU_ASSERT_EQUAL(llm_sched_waiting(r.s), 1);
    done(&r);
    CU_ASSERT_EQUAL(sched(&r), 1);
    done(&r);
    CU_ASSERT_EQUAL(r.n_done, 1);
    CU_ASSERT_PTR_EQUAL(r.done[0], &a);
    CU_ASSERT_EQUAL(sched(&r), 1);
    CU_ASSERT_EQUAL(r.st->items[0].n_new, 17);
    done(&r);
    rig_close(&r);
}

/* Prefix hits: 16-token blocks, 64-token hash blocks. a's 200-token prompt
 * keys 12 full blocks; b shares the first two hash blocks (8 blocks, 128
 * tokens) and computes only from there. */
static void test_prefix_hits(void)
{
    llm_sched_config c = cfg_of(8192, 8, 100);
    const uint64_t ha[] = { 11, 12, 13, 14 }, hb[] = { 11, 12, 99 };
    llm_seq a, b, whole, aligned;
    rig r;

    c.enable_prefix_caching = 1;
    rig_open(&r, &c);
    seq_init(&a, 1, 200, 3);
    a.hashes = ha;
    a.n_hashes = 4;
    a.hash_block_tokens = 64;
    llm_sched_add(r.s, &a);
    CU_ASSERT_EQUAL(sched(&r), 1);
    CU_ASSERT_EQUAL(r.st->items[0].n_new, 200);
    CU_ASSERT_EQUAL(llm_sched_prefix_queries(r.s), 200);
    CU_ASSERT_EQUAL(llm_sched_prefix_hits(r.s), 0);
    CU_ASSERT_EQUAL(llm_sched_blocks_used(r.s), 13);
    CU_ASSERT_EQUAL(llm_sched_blocks_cached(r.s), 12);
    done(&r);

    seq_init(&b, 2, 150, 2);
    b.hashes = hb;
    b.n_hashes = 3;
    b.hash_block_tokens = 64;
    llm_sched_add(r.s, &b);
    CU_ASSERT_EQUAL(sched(&r), 2);
    CU_ASSERT_EQUAL(item_of(&r, &b)->context, 128);
    CU_ASSERT_EQUAL(item_of(&r, &b)->n_new, 22);
    CU_ASSERT_EQUAL(b.computed, 128);
    CU_ASSERT_EQUAL(b.cached_tokens, 128);
    CU_ASSERT_EQUAL(r.st->tokens, 1 + 22);
    CU_ASSERT_EQUAL(llm_sched_prefix_queries(r.s), 350);
    CU_ASSERT_EQUAL(llm_sched_prefix_hits(r.s), 128);
    for (int k = 0; k < 8; k++)
        CU_ASSERT_EQUAL(b.blocks[k], a.blocks[k]);
    CU_ASSERT_NOT_EQUAL(b.blocks[8], a.blocks[8]);
    /* a 13 blocks + b 2 of its own; b keys block 8 = (99, 0) */
    CU_ASSERT_EQUAL(llm_sched_blocks_used(r.s), 15);
    CU_ASSERT_EQUAL(llm_sched_blocks_cached(r.s), 13);
    done(&r);
    CU_ASSERT_EQUAL(r.n_first, 1);
    CU_ASSERT_EQUAL(b.generated, 1);

    /* the same 200-token prompt: 12 blocks hit (192 tokens), 8 computed */
    seq_init(&whole, 3, 200, 1);
    whole.hashes = ha;
    whole.n_hashes = 4;
    whole.hash_block_tokens = 64;
    /* a block-aligned 192-token prompt: at most 191 tokens may hit, so
     * 11 blocks (176 tokens) and the whole last block is recomputed */
    seq_init(&aligned, 4, 192, 1);
    aligned.hashes = ha;
    aligned.n_hashes = 3;
    aligned.hash_block_tokens = 64;
    llm_sched_add(r.s, &whole);
    llm_sched_add(r.s, &aligned);
    CU_ASSERT_EQUAL(sched(&r), 4);
    int a_b11 = a.blocks[11], aligned_b11 = aligned.blocks[11];
    CU_ASSERT_NOT_EQUAL(a_b11, aligned_b11);
    CU_ASSERT_EQUAL(item_of(&r, &whole)->context, 192);
    CU_ASSERT_EQUAL(item_of(&r, &whole)->n_new, 8);
    CU_ASSERT_EQUAL(item_of(&r, &aligned)->context, 176);
    CU_ASSERT_EQUAL(item_of(&r, &aligned)->n_new, 16);
    CU_ASSERT_EQUAL(llm_sched_prefix_queries(r.s), 350 + 200 + 192);
    CU_ASSERT_EQUAL(llm_sched_prefix_hits(r.s), 128 + 192 + 176);
    done(&r);
    CU_ASSERT_EQUAL(r.n_done, 4);
    CU_ASSERT_EQUAL(a.generated, 3);
    CU_ASSERT_EQUAL(a.state, LLM_DONE);
    /* everything freed: the keyed blocks stay cached and evictable; aligned
     * keyed its recomputed last block again, a duplicate of a's block 11
     * (kept, as BlockPool does not de-duplicate) */
    CU_ASSERT_EQUAL(llm_sched_blocks_used(r.s), 0);
    CU_ASSERT_EQUAL(llm_sched_blocks_free(r.s), 100);
    CU_ASSERT_EQUAL(llm_sched_blocks_cached(r.s), 14);
    /* of two blocks under one key the older one is found (BlockPool's
     * get_cached_block takes the first of its dict) */
    seq_init(&whole, 5, 200, 1);
    whole.hashes = ha;
    whole.n_hashes = 4;
    whole.hash_block_tokens = 64;
    llm_sched_add(r.s, &whole);
    CU_ASSERT_EQUAL(sched(&r), 1);
    CU_ASSERT_EQUAL(whole.computed, 192);
    CU_ASSERT_EQUAL(whole.blocks[11], a_b11);
    done(&r);
    rig_close(&r);
}

/* LRU: 6 blocks, one hash per 16-token block. Freed blocks queue behind
 * the never-used ones, a sequence's tail block ahead of its head. */
static void test_prefix_lru(void)
{
    llm_sched_config c = cfg_of(8192, 8, 6);
    const uint64_t h12[] = { 1, 2 }, h34[] = { 3, 4 };
    llm_seq a, b, e, d, f;
    rig r;

    c.enable_prefix_caching = 1;
    rig_open(&r, &c);
    seq_init(&a, 1, 32, 1);
    a.hashes = h12;
    a.n_hashes = 2;
    a.hash_block_tokens = 16;
    llm_sched_add(r.s, &a);
    sched(&r);
    CU_ASSERT_EQUAL(a.blocks[0], 0);
    CU_ASSERT_EQUAL(a.blocks[1], 1);
    done(&r);   /* queue 2 3 4 5 1 0 */
    CU_ASSERT_EQUAL(a.state, LLM_DONE);
    CU_ASSERT_EQUAL(llm_sched_blocks_cached(r.s), 2);

    seq_init(&b, 2, 32, 1);
    b.hashes = h34;
    b.n_hashes = 2;
    b.hash_block_tokens = 16;
    llm_sched_add(r.s, &b);
    sched(&r);
    CU_ASSERT_EQUAL(b.blocks[0], 2);
    CU_ASSERT_EQUAL(b.blocks[1], 3);
    done(&r);   /* queue 4 5 1 0 3 2 */
    CU_ASSERT_EQUAL(llm_sched_blocks_cached(r.s), 4);

    /* 48 tokens without hashes take 4, 5 and 1, evicting a's (2, 0) */
    seq_init(&e, 3, 48, 1);
    llm_sched_add(r.s, &e);
    sched(&r);
    CU_ASSERT_EQUAL(e.blocks[0], 4);
    CU_ASSERT_EQUAL(e.blocks[1], 5);
    CU_ASSERT_EQUAL(e.blocks[2], 1);
    CU_ASSERT_EQUAL(llm_sched_blocks_cached(r.s), 3);
    done(&r);   /* queue 0 3 2 1 5 4 */

    /* a's prefix again, 33 tokens: block 0 still hits, block 1 was evicted;
     * the hit leaves the queue before 3 and 2 are taken (b's evicted) */
    seq_init(&d, 4, 33, 1);
    d.hashes = h12;
    d.n_hashes = 2;
    d.hash_block_tokens = 16;
    llm_sched_add(r.s, &d);
    sched(&r);
    CU_ASSERT_EQUAL(d.computed, 16);
    CU_ASSERT_EQUAL(r.st->items[0].n_new, 17);
    CU_ASSERT_EQUAL(d.blocks[0], 0);
    CU_ASSERT_EQUAL(d.blocks[1], 3);
    CU_ASSERT_EQUAL(d.blocks[2], 2);
    CU_ASSERT_EQUAL(llm_sched_prefix_queries(r.s), 32 + 32 + 48 + 33);
    CU_ASSERT_EQUAL(llm_sched_prefix_hits(r.s), 16);
    /* d keyed its block 1 as (2, 0) again: 0 and 3 keyed, b's gone */
    CU_ASSERT_EQUAL(llm_sched_blocks_cached(r.s), 2);
    done(&r);

    /* b's prefix is gone */
    seq_init(&f, 5, 33, 1);
    f.hashes = h34;
    f.n_hashes = 2;
    f.hash_block_tokens = 16;
    llm_sched_add(r.s, &f);
    sched(&r);
    CU_ASSERT_EQUAL(f.computed, 0);
    CU_ASSERT_EQUAL(llm_sched_prefix_hits(r.s), 16);
    done(&r);
    rig_close(&r);
}

/* Hits on blocks a running sequence holds share them (ref 2); a preempted
 * sequence readmitted hits its own cached prompt blocks, counted as a
 * preempted lookup. */
static void test_prefix_shared_and_resume(void)
{
    llm_sched_config c = cfg_of(8192, 8, 6);
    const uint64_t h[] = { 7, 8 };
    llm_seq a, b;
    rig r;

    c.enable_prefix_caching = 1;
    rig_open(&r, &c);
    seq_init(&a, 1, 48, 20);   /* 3 blocks, two keyed (32 tokens hashed) */
    a.hashes = h;
    a.n_hashes = 2;
    a.hash_block_tokens = 16;
    seq_init(&b, 2, 48, 20);
    b.hashes = h;
    b.n_hashes = 2;
    b.hash_block_tokens = 16;
    llm_sched_add(r.s, &a);
    llm_sched_add(r.s, &b);
    /* b is admitted in the same step and hits what a keys at schedule time */
    CU_ASSERT_EQUAL(sched(&r), 2);
    CU_ASSERT_EQUAL(item_of(&r, &b)->context, 32);
    CU_ASSERT_EQUAL(item_of(&r, &b)->n_new, 16);
    CU_ASSERT_EQUAL(llm_sched_blocks_used(r.s), 4);
    CU_ASSERT_EQUAL(llm_sched_prefix_hits(r.s), 32);
    done(&r);
    /* 48 -> 49 tokens: a takes a 4th block, b a 4th: free 0 */
    CU_ASSERT_EQUAL(sched(&r), 2);
    CU_ASSERT_EQUAL(llm_sched_blocks_free(r.s), 0);
    done(&r);
    /* up to 64 tokens fine; a at 64 + 1 needs a 5th: preempts b, whose own
     * blocks go back (the two shared stay with a) */
    for (int i = 0; i < 15; i++) {
        sched(&r);
        CU_ASSERT_EQUAL(r.st->n_preempted, 0);
        done(&r);
    }
    CU_ASSERT_EQUAL(a.computed, 64);
    CU_ASSERT_EQUAL(sched(&r), 1);
    CU_ASSERT_EQUAL(r.st->n_preempted, 1);
    CU_ASSERT_PTR_EQUAL(r.st->preempted[0], &b);
    CU_ASSERT_EQUAL(llm_sched_blocks_used(r.s), 5);
    CU_ASSERT_EQUAL(llm_sched_blocks_free(r.s), 1);
    done(&r);
    /* b resumes: 48 + 17 = 65 tokens, hits the 2 keyed blocks a holds and
     * needs 3 more of the 1 free: waits */
    CU_ASSERT_EQUAL(sched(&r), 1);
    CU_ASSERT_EQUAL(b.state, LLM_WAITING);
    CU_ASSERT_EQUAL(llm_sched_prefix_preempted_queries(r.s), 0);
    done(&r);
    /* a finishes at 20 tokens (67 computed, 5 blocks); then b comes back,
     * its hits now free-queue blocks counted against the free ones */
    while (a.state != LLM_DONE) {
        sched(&r);
        done(&r);
    }
    CU_ASSERT_EQUAL(sched(&r), 1);
    CU_ASSERT_EQUAL(b.computed, 32);
    CU_ASSERT_EQUAL(r.st->items[0].n_new, 48 + b.generated - 32);
    CU_ASSERT_EQUAL(llm_sched_prefix_preempted_queries(r.s), (unsigned long)(48 + b.generated));
    CU_ASSERT_EQUAL(llm_sched_prefix_preempted_hits(r.s), 32);
    CU_ASSERT_EQUAL(llm_sched_prefix_queries(r.s), 96);
    done(&r);
    rig_close(&r);
}

/* A sequence that preempts itself frees 2 blocks; its readmission chunk
 * (long_prefill_threshold 16) would need only 1, but nothing is admitted
 * in a step that preempted. */
static void test_no_admission_after_preemption(void)
{
    llm_sched_config c = cfg_of(8192, 8, 4);
    llm_seq a, b, late;
    rig r;

    c.long_prefill_threshold = 16;
    rig_open(&r, &c);
    seq_init(&a, 1, 16, 5);
    seq_init(&b, 2, 48, 5);
    llm_sched_add(r.s, &a);
    llm_sched_add(r.s, &b);
    CU_ASSERT_EQUAL(sched(&r), 2);
    done(&r);
    CU_ASSERT_EQUAL(sched(&r), 2);   /* a at 17 tokens, b at 32: 4 blocks */
    CU_ASSERT_EQUAL(llm_sched_blocks_free(r.s), 0);
    done(&r);
    seq_init(&late, 3, 1, 1);
    llm_sched_add(r.s, &late);
    CU_ASSERT_EQUAL(sched(&r), 1);
    CU_ASSERT_PTR_EQUAL(r.st->items[0].seq, &a);
    CU_ASSERT_EQUAL(r.st->n_preempted, 1);
    CU_ASSERT_PTR_EQUAL(r.st->preempted[0], &b);
    CU_ASSERT_EQUAL(llm_sched_blocks_free(r.s), 2);
    CU_ASSERT_EQUAL(b.state, LLM_WAITING);
    CU_ASSERT_EQUAL(late.state, LLM_WAITING);
    CU_ASSERT_EQUAL(llm_sched_waiting(r.s), 2);
    done(&r);
    /* the next step admits b's first 16 tokens, then late */
    CU_ASSERT_EQUAL(sched(&r), 3);
    CU_ASSERT_PTR_EQUAL(r.st->items[1].seq, &b);
    CU_ASSERT_EQUAL(r.st->items[1].n_new, 16);
    CU_ASSERT_PTR_EQUAL(r.st->items[2].seq, &late);
    done(&r);
    rig_close(&r);
}

/* A prompt prefilled in chunks keys each chunk's full blocks as it is
 * scheduled, so a later request hits all of them. */
static void test_prefix_chunks(void)
{
    llm_sched_config c = cfg_of(64, 8, 50);
    const uint64_t h[] = { 5, 6, 7 };
    llm_seq a, b;
    rig r;

    c.enable_prefix_caching = 1;
    rig_open(&r, &c);
    seq_init(&a, 1, 150, 2);
    a.hashes = h;
    a.n_hashes = 3;
    a.hash_block_tokens = 64;
    llm_sched_add(r.s, &a);
    sched(&r);
    CU_ASSERT_EQUAL(llm_sched_blocks_cached(r.s), 4);
    done(&r);
    sched(&r);
    CU_ASSERT_EQUAL(r.st->items[0].context, 64);
    CU_ASSERT_EQUAL(llm_sched_blocks_cached(r.s), 8);
    done(&r);
    sched(&r);   /* 22 tokens: block 8 full (144 <= 150), block 9 not */
    CU_ASSERT_EQUAL(llm_sched_blocks_cached(r.s), 9);
    done(&r);
    CU_ASSERT_EQUAL(a.generated, 1);
    seq_init(&b, 2, 150, 1);
    b.hashes = h;
    b.n_hashes = 3;
    b.hash_block_tokens = 64;
    llm_sched_add(r.s, &b);
    CU_ASSERT_EQUAL(sched(&r), 2);
    CU_ASSERT_EQUAL(item_of(&r, &b)->context, 144);
    CU_ASSERT_EQUAL(item_of(&r, &b)->n_new, 6);
    CU_ASSERT_EQUAL(llm_sched_prefix_hits(r.s), 144);
    done(&r);
    rig_close(&r);
}

static void test_abort(void)
{
    llm_sched_config c = cfg_of(8192, 8, 20);
    llm_seq a, b, e;
    rig r;

    rig_open(&r, &c);
    seq_init(&a, 1, 40, 5);
    seq_init(&b, 2, 40, 5);
    seq_init(&e, 3, 300, 5);   /* 19 blocks: waits */
    llm_sched_add(r.s, &a);
    llm_sched_add(r.s, &b);
    llm_sched_add(r.s, &e);
    CU_ASSERT_EQUAL(sched(&r), 2);
    CU_ASSERT_EQUAL(llm_sched_blocks_used(r.s), 6);
    done(&r);
    /* a waiting sequence */
    llm_sched_abort(r.s, &e);
    CU_ASSERT_EQUAL(e.state, LLM_ABORTED);
    CU_ASSERT_EQUAL(llm_sched_waiting(r.s), 0);
    CU_ASSERT_EQUAL(llm_sched_check(r.s), 0);
    /* a running one: its blocks come back, the order of the rest is kept */
    llm_sched_abort(r.s, &a);
    CU_ASSERT_EQUAL(a.state, LLM_ABORTED);
    CU_ASSERT_PTR_NULL(a.blocks);
    CU_ASSERT_EQUAL(llm_sched_running(r.s), 1);
    CU_ASSERT_PTR_EQUAL(llm_sched_running_at(r.s, 0), &b);
    CU_ASSERT_EQUAL(llm_sched_blocks_used(r.s), 3);
    CU_ASSERT_EQUAL(llm_sched_check(r.s), 0);
    /* aborting again does nothing; an abort between schedule and step_done
     * leaves the sequence untouched by step_done */
    llm_sched_abort(r.s, &a);
    CU_ASSERT_EQUAL(sched(&r), 1);
    llm_sched_abort(r.s, &b);
    done(&r);
    CU_ASSERT_EQUAL(b.computed, 40);
    CU_ASSERT_EQUAL(r.n_first + r.n_done, 0);
    CU_ASSERT_EQUAL(llm_sched_running(r.s), 0);
    CU_ASSERT_EQUAL(llm_sched_blocks_used(r.s), 0);
    CU_ASSERT_EQUAL(sched(&r), 0);
    rig_close(&r);
}

/* Randomized load: arrivals with shared prefixes from a few documents,
 * aborts, a small KV pool (preemptions), checks after every step; every
 * sequence added ends done or aborted, with its full output when done. */
static void random_run(llm_sched_config c, unsigned long seed, int n_seq, int want_preempt,
                       int want_hits)
{
    enum { DOCS = 4, HB = 64, MAXH = 32 };
    uint64_t doc[DOCS][MAXH];
    llm_seq *q = calloc((size_t)n_seq, sizeof *q);
    gsl_rng *g = gsl_rng_alloc(gsl_rng_mt19937);
    int added = 0, n_done = 0, n_abort = 0, steps = 0, bad = 0, max_prompt;
    unsigned long tokens = 0;
    rig r;

    gsl_rng_set(g, seed);
    rig_open(&r, &c);
    /* chained hashes: documents share their first hash block */
    for (int d = 0; d < DOCS; d++)
        for (int j = 0; j < MAXH; j++)
            doc[d][j] = j == 0 ? 1000 : 1000 + (uint64_t)(d + 1) * 100 + (uint64_t)j;
    max_prompt = c.chunked_prefill ? MAXH * HB : c.max_num_batched_tokens - 100;
    while ((added < n_seq || llm_sched_running(r.s) || llm_sched_waiting(r.s)) && steps < 200000) {
        /* arrivals */
        int arrivals = (int)gsl_rng_uniform_int(g, 3);
        for (int k = 0; k < arrivals && added < n_seq; k++) {
            llm_seq *s = &q[added];
            int d = (int)gsl_rng_uniform_int(g, DOCS);

            seq_init(s, (unsigned long)added, 1 + (int)gsl_rng_uniform_int(g, (unsigned long)max_prompt),
                     1 + (int)gsl_rng_uniform_int(g, 100));
            if (gsl_rng_uniform(g) < 0.8) {
                s->hashes = doc[d];
                s->n_hashes = (s->prompt_tokens + HB - 1) / HB;
                s->hash_block_tokens = HB;
            }
            if (!llm_sched_fits(r.s, s)) {
                s->state = LLM_ABORTED;   /* refused at the door */
                n_abort++;
                added++;
                continue;
            }
            llm_sched_add(r.s, s);
            added++;
        }
        /* an occasional abort of a waiting or running sequence */
        if (gsl_rng_uniform(g) < 0.02 && added > 0) {
            llm_seq *s = &q[gsl_rng_uniform_int(g, (unsigned long)added)];
            if (s->state == LLM_WAITING || s->state == LLM_RUNNING) {
                llm_sched_abort(r.s, s);
                n_abort++;
            }
        }
        llm_sched_schedule(r.s, r.st);
        if (llm_sched_check(r.s) != 0)
            bad++;
        if (r.st->tokens > c.max_num_batched_tokens || r.st->n > c.max_num_seqs)
            bad++;
        for (int i = 0; i < r.st->n; i++)
            if (r.st->items[i].n_new < 1 || r.st->items[i].seq->state != LLM_RUNNING)
                bad++;
        if (llm_sched_blocks_used(r.s) + llm_sched_blocks_free(r.s) != c.num_blocks)
            bad++;
        tokens += (unsigned long)r.st->tokens;
        done(&r);
        if (llm_sched_check(r.s) != 0)
            bad++;
        for (int i = 0; i < r.n_done; i++)
            if (r.done[i]->generated != r.done[i]->output_tokens || r.done[i]->state != LLM_DONE)
                bad++;
        n_done += r.n_done;
        steps++;
    }
    CU_ASSERT_EQUAL(bad, 0);
    CU_ASSERT_EQUAL(added, n_seq);
    CU_ASSERT_EQUAL(n_done + n_abort, n_seq);
    CU_ASSERT(n_done > n_seq / 2);
    CU_ASSERT_EQUAL(llm_sched_running(r.s), 0);
    CU_ASSERT_EQUAL(llm_sched_waiting(r.s), 0);
    CU_ASSERT_EQUAL(llm_sched_blocks_used(r.s), 0);
    CU_ASSERT_EQUAL(llm_sched_blocks_free(r.s), c.num_blocks);
    int ended = 0;
    for (int i = 0; i < n_seq; i++)
        ended += q[i].state == LLM_DONE || q[i].state == LLM_ABORTED;
    CU_ASSERT_EQUAL(ended, n_seq);
    if (want_preempt) {
        CU_ASSERT(llm_sched_preemptions(r.s) > 0);
    }
    if (want_hits) {
        CU_ASSERT(llm_sched_prefix_hits(r.s) > 0);
        CU_ASSERT(llm_sched_prefix_preempted_queries(r.s) > 0);
    } else {
        CU_ASSERT_EQUAL(llm_sched_prefix_queries(r.s), 0);
    }
    CU_ASSERT(tokens > 0);
    rig_close(&r);
    gsl_rng_free(g);
    free(q);
}

/* Disaggregation, prefill side: a prompt of 40 tokens that must produce one
 * token keeps its 3 blocks after its step (LLM_HELD), out of the running
 * list; a waiting prompt that needs them is not admitted until the held
 * sequence is aborted (its KV sent on). Decode side: a sequence added with
 * its 40 prompt tokens brought and 1 token generated is admitted with
 * ceil(41 / 16) = 3 blocks and runs one decode token at context 40. */
static void test_disaggregated(void)
{
    llm_sched_config c = cfg_of(8192, 8, 4);
    llm_seq a, b, d;
    rig r;

    rig_open(&r, &c);
    seq_init(&a, 1, 40, 1);
    a.hold_kv = 1;
    seq_init(&b, 2, 40, 1);   /* 3 blocks: cannot fit beside a's */
    llm_sched_add(r.s, &a);
    CU_ASSERT_EQUAL(sched(&r), 1);
    done(&r);
    CU_ASSERT_EQUAL(r.n_done, 1);
    CU_ASSERT_PTR_EQUAL(r.done[0], &a);
    CU_ASSERT_EQUAL(r.n_first, 1);
    CU_ASSERT_EQUAL(a.state, LLM_HELD);
    CU_ASSERT_EQUAL(a.generated, 1);
    CU_ASSERT_EQUAL(llm_sched_running(r.s), 0);
    CU_ASSERT_EQUAL(llm_sched_held(r.s), 1);
    CU_ASSERT_EQUAL(llm_sched_blocks_used(r.s), 3);
    llm_sched_add(r.s, &b);
    CU_ASSERT_EQUAL(sched(&r), 0);   /* 1 block free, 3 needed */
    llm_sched_abort(r.s, &a);
    CU_ASSERT_EQUAL(a.state, LLM_ABORTED);
    CU_ASSERT_EQUAL(llm_sched_held(r.s), 0);
    CU_ASSERT_EQUAL(llm_sched_blocks_used(r.s), 0);
    CU_ASSERT_EQUAL(llm_sched_check(r.s), 0);
    CU_ASSERT_EQUAL(sched(&r), 1);
    CU_ASSERT_EQUAL(r.st->items[0].n_new, 40);
    done(&r);
    rig_close(&r);

    c = cfg_of(8192, 8, 4);
    rig_open(&r, &c);
    seq_init(&d, 3, 40, 3);
    llm_sched_add_prefilled(r.s, &d, 40, 1);
    CU_ASSERT_EQUAL(llm_sched_waiting(r.s), 1);
    CU_ASSERT_EQUAL(sched(&r), 1);
    CU_ASSERT_EQUAL(r.st->items[0].n_new, 1);
    CU_ASSERT_EQUAL(r.st->items[0].context, 40);
    CU_ASSERT_EQUAL(r.st->items[0].decode, 1);
    CU_ASSERT_EQUAL(r.st->tokens, 1);
    CU_ASSERT_EQUAL(llm_sched_blocks_used(r.s), 3);
    done(&r);
    CU_ASSERT_EQUAL(d.generated, 2);
    CU_ASSERT_EQUAL(r.n_first, 0);   /* its first token came from the prefill side */
    CU_ASSERT_EQUAL(sched(&r), 1);
    CU_ASSERT_EQUAL(r.st->items[0].context, 41);
    done(&r);
    CU_ASSERT_EQUAL(r.n_done, 1);
    CU_ASSERT_EQUAL(d.state, LLM_DONE);
    CU_ASSERT_EQUAL(llm_sched_blocks_used(r.s), 0);
    rig_close(&r);
}

/* The decode side's reservations (vLLM's WAITING_FOR_REMOTE_KVS), 6
 * blocks of 16: w runs (40-token prompt, 3 blocks); r1 reserves 41 tokens
 * (3 blocks, the last free); r2 finds none. w decodes to 48 tokens, then
 * needs a 4th block and preempts itself: r1 keeps its blocks (a
 * reservation is never preempted). d lands in r1's blocks and is admitted
 * ahead of w (waiting first) with no new block; w (49 tokens, 4 blocks)
 * does not fit beside it. A reservation dropped, and a landed sequence
 * aborted, give their blocks back. used + free = 6 after every change. */
static void test_reservations(void)
{
    llm_sched_config c = cfg_of(8192, 8, 6);
    llm_seq w, r1, r2, r3, r4, d, e;
    rig r;

    rig_open(&r, &c);
    seq_init(&w, 1, 40, 20);
    seq_init(&r1, 0, 1, 1);
    seq_init(&r2, 0, 1, 1);
    seq_init(&r3, 0, 1, 1);
    seq_init(&r4, 0, 1, 1);
    seq_init(&d, 2, 40, 3);
    seq_init(&e, 3, 40, 3);
    llm_sched_add(r.s, &w);
    CU_ASSERT_EQUAL(sched(&r), 1);
    done(&r);
    CU_ASSERT_EQUAL(llm_sched_blocks_used(r.s), 3);
    CU_ASSERT_EQUAL(llm_sched_reserve(r.s, &r1, 41), 1);
    CU_ASSERT_EQUAL(r1.state, LLM_RESERVED);
    CU_ASSERT_EQUAL(r1.n_blocks, 3);
    CU_ASSERT_EQUAL(llm_sched_reserved(r.s), 1);
    CU_ASSERT_EQUAL(llm_sched_blocks_used(r.s), 6);
    CU_ASSERT_EQUAL(llm_sched_blocks_free(r.s), 0);
    CU_ASSERT_EQUAL(llm_sched_check(r.s), 0);
    CU_ASSERT_EQUAL(llm_sched_reserve(r.s, &r2, 17), 0);
    CU_ASSERT_EQUAL(r2.n_blocks, 0);
    CU_ASSERT_EQUAL(llm_sched_reserved(r.s), 1);
    CU_ASSERT_EQUAL(llm_sched_waiting(r.s), 0);
    for (int i = 0; i < 8; i++) { /* computed 40..47: 3 blocks hold them */
        CU_ASSERT_EQUAL(sched(&r), 1);
        CU_ASSERT_EQUAL(r.st->n_preempted, 0);
        done(&r);
    }
    CU_ASSERT_EQUAL(w.computed, 48);
    CU_ASSERT_EQUAL(sched(&r), 0);
    CU_ASSERT_EQUAL(r.st->n_preempted, 1);
    CU_ASSERT_PTR_EQUAL(r.st->preempted[0], &w);
    CU_ASSERT_EQUAL(w.state, LLM_WAITING);
    CU_ASSERT_EQUAL(r1.state, LLM_RESERVED);
    CU_ASSERT_EQUAL(r1.n_blocks, 3);
    CU_ASSERT_EQUAL(llm_sched_blocks_used(r.s), 3);
    llm_sched_add_landed(r.s, &d, &r1, 40, 1);
    CU_ASSERT_EQUAL(d.state, LLM_LANDED);
    CU_ASSERT_EQUAL(d.n_blocks, 3);
    CU_ASSERT_EQUAL(r1.n_blocks, 0);
    CU_ASSERT_EQUAL(llm_sched_reserved(r.s), 0);
    CU_ASSERT_EQUAL(llm_sched_waiting(r.s), 2);
    CU_ASSERT_PTR_EQUAL(llm_sched_landed_head(r.s), &d);
    CU_ASSERT_EQUAL(llm_sched_check(r.s), 0);
    CU_ASSERT_EQUAL(sched(&r), 1);
    CU_ASSERT_PTR_EQUAL(r.st->items[0].seq, &d);
    CU_ASSERT_EQUAL(r.st->items[0].n_new, 1);
    CU_ASSERT_EQUAL(r.st->items[0].context, 40);
    CU_ASSERT_EQUAL(r.st->items[0].decode, 1);
    CU_ASSERT_EQUAL(llm_sched_blocks_used(r.s), 3); /* no new block for d */
    CU_ASSERT_EQUAL(w.state, LLM_WAITING);        /* 49 tokens: 4 blocks, 3 free */
    done(&r);
    CU_ASSERT_EQUAL(d.generated, 2);
    /* a transfer that failed: its reservation is dropped */
    CU_ASSERT_EQUAL(llm_sched_reserve(r.s, &r3, 17), 1);
    CU_ASSERT_EQUAL(llm_sched_blocks_used(r.s), 5);
    llm_sched_abort(r.s, &r3);
    CU_ASSERT_EQUAL(r3.state, LLM_ABORTED);
    CU_ASSERT_EQUAL(llm_sched_reserved(r.s), 0);
    CU_ASSERT_EQUAL(llm_sched_blocks_used(r.s), 3);
    CU_ASSERT_EQUAL(llm_sched_check(r.s), 0);
    /* a landed sequence aborted (its replica crashed): its blocks back */
    CU_ASSERT_EQUAL(llm_sched_reserve(r.s, &r4, 41), 1);
    llm_sched_add_landed(r.s, &e, &r4, 40, 1);
    CU_ASSERT_EQUAL(llm_sched_blocks_used(r.s), 6);
    llm_sched_abort(r.s, &e);
    CU_ASSERT_EQUAL(e.state, LLM_ABORTED);
    CU_ASSERT_EQUAL(llm_sched_blocks_used(r.s), 3);
    CU_ASSERT_EQUAL(llm_sched_waiting(r.s), 1);
    CU_ASSERT_EQUAL(llm_sched_check(r.s), 0);
    llm_sched_abort(r.s, &d);
    llm_sched_abort(r.s, &w);
    CU_ASSERT_EQUAL(llm_sched_blocks_used(r.s), 0);
    free(r1.blocks);
    free(r2.blocks);
    free(r3.blocks);
    free(r4.blocks);
    rig_close(&r);
}

static void test_random_cached(void)
{
    llm_sched_config c = cfg_of(512, 16, 200);

    c.enable_prefix_caching = 1;
    c.long_prefill_threshold = 256;
    random_run(c, 12345, 3000, 1, 1);
}

static void test_random_plain(void)
{
    llm_sched_config c = cfg_of(1024, 32, 150);

    c.chunked_prefill = 0;
    random_run(c, 777, 3000, 1, 0);
}

int main(void)
{
    if (CU_initialize_registry() != CUE_SUCCESS)
        return 1;
    CU_pSuite s = CU_add_suite("llm_sched", NULL, NULL);
    CU_add_test(s, "budget split running / waiting", test_budget_split);
    CU_add_test(s, "a request alone", test_alone);
    CU_add_test(s, "long prefill threshold", test_threshold);
    CU_add_test(s, "no chunked prefill", test_no_chunking);
    CU_add_test(s, "max_num_seqs", test_max_num_seqs);
    CU_add_test(s, "admission blocked by KV blocks", test_blocks_block_admission);
    CU_add_test(s, "preemption order and recompute", test_preemption_order);
    CU_add_test(s, "self preemption", test_self_preemption);
    CU_add_test(s, "prefix hits", test_prefix_hits);
    CU_add_test(s, "prefix cache LRU eviction", test_prefix_lru);
    CU_add_test(s, "shared blocks and resume hits", test_prefix_shared_and_resume);
    CU_add_test(s, "no admission in a preempting step", test_no_admission_after_preemption);
    CU_add_test(s, "prefix keys of prefill chunks", test_prefix_chunks);
    CU_add_test(s, "abort", test_abort);
    CU_add_test(s, "disaggregation: held KV, prefilled admission", test_disaggregated);
    CU_add_test(s, "disaggregation: decode-side reservations", test_reservations);
    CU_add_test(s, "randomized, prefix caching", test_random_cached);
    CU_add_test(s, "randomized, no chunking", test_random_plain);
    CU_basic_set_mode(CU_BRM_VERBOSE);
    CU_basic_run_tests();
    unsigned fails = CU_get_number_of_failures();
    CU_cleanup_registry();
    return fails != 0;
}
