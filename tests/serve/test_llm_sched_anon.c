/*
 * test_llm_sched_anon.c - the scheduler's anonymous blocks (llm_sched.c,
 * anonymous_blocks: counts only until a sequence with hashes is added)
 * against the same scheduler with block ids kept throughout, the
 * reference: two schedulers fed the same random arrivals, aborts and
 * disaggregated (held KV, prefilled) sequences must form the same steps
 * (sequences, new tokens, context, decode flag, preemptions in order),
 * finish and start the same sequences, and agree on every count and
 * prefix-cache statistic after every step. Runs where hashed sequences
 * start arriving mid-run check the switch from counts to ids with blocks
 * held; a run without prefix caching checks that no block table is ever
 * grown.
 */
#include "llm_sched.h"

#include <CUnit/Basic.h>
#include <gsl/gsl_rng.h>

#include <stdlib.h>
#include <string.h>

enum { MAX_SEQS = 16 };

typedef struct {
    llm_sched *s;
    llm_step *st;
    llm_seq *q;                 /* this scheduler's copies of the sequences */
    llm_seq *first[MAX_SEQS], *done[MAX_SEQS];
    int n_first, n_done;
} side;

static void side_open(side *d, llm_sched_config c, int anonymous, int n_seq)
{
    c.anonymous_blocks = anonymous;
    d->s = llm_sched_new(&c);
    CU_ASSERT_PTR_NOT_NULL_FATAL(d->s);
    d->st = llm_step_new(d->s);
    CU_ASSERT_PTR_NOT_NULL_FATAL(d->st);
    d->q = calloc((size_t)n_seq, sizeof *d->q);
    CU_ASSERT_PTR_NOT_NULL_FATAL(d->q);
}

static void side_close(side *d)
{
    llm_step_free(d->st);
    llm_sched_free(d->s);
    free(d->q);
}

/* Index of a sequence in its side's array: the two sides' steps compare by
 * index, their sequences being distinct copies. */
static long ix(const side *d, const llm_seq *q)
{
    return q - d->q;
}

/* Counts and statistics of the two schedulers differ: 1. */
static int counts_differ(const side *a, const side *b)
{
    return llm_sched_waiting(a->s) != llm_sched_waiting(b->s) ||
           llm_sched_running(a->s) != llm_sched_running(b->s) ||
           llm_sched_held(a->s) != llm_sched_held(b->s) ||
           llm_sched_blocks_used(a->s) != llm_sched_blocks_used(b->s) ||
           llm_sched_blocks_free(a->s) != llm_sched_blocks_free(b->s) ||
           llm_sched_blocks_cached(a->s) != llm_sched_blocks_cached(b->s) ||
           llm_sched_preemptions(a->s) != llm_sched_preemptions(b->s) ||
           llm_sched_prefix_queries(a->s) != llm_sched_prefix_queries(b->s) ||
           llm_sched_prefix_hits(a->s) != llm_sched_prefix_hits(b->s) ||
           llm_sched_prefix_preempted_queries(a->s) != llm_sched_prefix_preempted_queries(b->s) ||
           llm_sched_prefix_preempted_hits(a->s) != llm_sched_prefix_preempted_hits(b->s);
}

static int steps_differ(const side *a, const side *b)
{
    const llm_step *x = a->st, *y = b->st;

    if (x->n != y->n || x->tokens != y->tokens || x->n_preempted != y->n_preempted)
        return 1;
    for (int i = 0; i < x->n; i++)
        if (ix(a, x->items[i].seq) != ix(b, y->items[i].seq) || x->items[i].n_new != y->items[i].n_new ||
            x->items[i].context != y->items[i].context || x->items[i].decode != y->items[i].decode)
            return 1;
    for (int i = 0; i < x->n_preempted; i++)
        if (ix(a, x->preempted[i]) != ix(b, y->preempted[i]))
            return 1;
    return 0;
}

static int ends_differ(const side *a, const side *b)
{
    if (a->n_first != b->n_first || a->n_done != b->n_done)
        return 1;
    for (int i = 0; i < a->n_first; i++)
        if (ix(a, a->first[i]) != ix(b, b->first[i]))
            return 1;
    for (int i = 0; i < a->n_done; i++)
        if (ix(a, a->done[i]) != ix(b, b->done[i]))
            return 1;
    return 0;
}

/* What the comparison saw, for the assertions on coverage. */
typedef struct {
    int bad;                    /* steps or counts that differed, or a failed check */
    int steps;
    int tables_before;          /* anonymous side: block tables seen before the switch */
    int tables_after;           /* running sequences with a table after it */
    unsigned long held;         /* sequences that ended holding their KV */
    unsigned long prefilled;    /* added with their KV brought */
} outcome;

/* n_seq sequences; from sequence hashed_from on, 80% carry one of four
 * documents' chained hashes (none before: the anonymous side keeps counts
 * until the first of them); 10% hold their KV at the end (released a few
 * steps later), 10% arrive prefilled. */
static outcome compare_run(llm_sched_config c, unsigned long seed, int n_seq, int hashed_from)
{
    enum { DOCS = 4, HB = 64, MAXH = 32 };
    uint64_t doc[DOCS][MAXH];
    gsl_rng *g = gsl_rng_alloc(gsl_rng_mt19937);
    side a, b;                  /* a: ids throughout (the reference), b: anonymous */
    int added = 0, max_prompt, switched = 0;
    outcome o = {0};

    gsl_rng_set(g, seed);
    side_open(&a, c, 0, n_seq);
    side_open(&b, c, 1, n_seq);
    for (int d = 0; d < DOCS; d++)
        for (int j = 0; j < MAXH; j++)
            doc[d][j] = j == 0 ? 1000 : 1000 + (uint64_t)(d + 1) * 100 + (uint64_t)j;
    max_prompt = c.chunked_prefill ? MAXH * HB : c.max_num_batched_tokens - 100;
    while ((added < n_seq || llm_sched_running(a.s) || llm_sched_waiting(a.s) || llm_sched_held(a.s)) &&
           o.steps < 200000) {
        int arrivals = (int)gsl_rng_uniform_int(g, 3);

        for (int k = 0; k < arrivals && added < n_seq; k++, added++) {
            llm_seq *x = &a.q[added], *y = &b.q[added];
            int d = (int)gsl_rng_uniform_int(g, DOCS);
            double u = gsl_rng_uniform(g);

            x->id = (unsigned long)added;
            x->prompt_tokens = 1 + (int)gsl_rng_uniform_int(g, (unsigned long)max_prompt);
            x->output_tokens = 1 + (int)gsl_rng_uniform_int(g, 100);
            if (added >= hashed_from && gsl_rng_uniform(g) < 0.8) {
                x->hashes = doc[d];
                x->n_hashes = (x->prompt_tokens + HB - 1) / HB;
                x->hash_block_tokens = HB;
            }
            x->hold_kv = u < 0.1;
            *y = *x;
            if (!llm_sched_fits(a.s, x)) {
                x->state = y->state = LLM_ABORTED;
                continue;
            }
            if (!switched && x->hashes && c.enable_prefix_caching) {
                /* the switch to ids, with whatever the others hold */
                switched = 1;
                for (int i = 0; i < llm_sched_running(b.s); i++)
                    o.tables_before += llm_sched_running_at(b.s, i)->blocks != NULL;
            }
            if (u >= 0.9 && x->output_tokens > 1) {
                int kv = x->prompt_tokens;

                llm_sched_add_prefilled(a.s, x, kv, 1);
                llm_sched_add_prefilled(b.s, y, kv, 1);
                o.prefilled++;
            } else {
                llm_sched_add(a.s, x);
                llm_sched_add(b.s, y);
            }
        }
        /* an occasional abort of a waiting, running or held sequence; held
         * ones are released (their KV sent on) with probability 0.3 a step */
        if (gsl_rng_uniform(g) < 0.02 && added > 0) {
            long i = (long)gsl_rng_uniform_int(g, (unsigned long)added);

            if (a.q[i].state == LLM_WAITING || a.q[i].state == LLM_RUNNING) {
                llm_sched_abort(a.s, &a.q[i]);
                llm_sched_abort(b.s, &b.q[i]);
            }
        }
        if (llm_sched_held(a.s) && gsl_rng_uniform(g) < 0.3) {
            llm_seq *h = llm_sched_held_head(a.s);
            long i = ix(&a, h);

            llm_sched_abort(a.s, h);
            llm_sched_abort(b.s, &b.q[i]);
        }
        llm_sched_schedule(a.s, a.st);
        llm_sched_schedule(b.s, b.st);
        o.bad += steps_differ(&a, &b) || counts_differ(&a, &b);
        o.bad += llm_sched_check(a.s) != 0 || llm_sched_check(b.s) != 0;
        if (switched)
            for (int i = 0; i < llm_sched_running(b.s); i++)
                o.tables_after += llm_sched_running_at(b.s, i)->blocks != NULL;
        else
            for (int i = 0; i < llm_sched_running(b.s); i++)
                o.tables_before += llm_sched_running_at(b.s, i)->blocks != NULL;
        llm_sched_step_done(a.s, a.st, a.first, &a.n_first, a.done, &a.n_done);
        llm_sched_step_done(b.s, b.st, b.first, &b.n_first, b.done, &b.n_done);
        o.bad += ends_differ(&a, &b) || counts_differ(&a, &b);
        o.bad += llm_sched_check(a.s) != 0 || llm_sched_check(b.s) != 0;
        for (int i = 0; i < a.n_done; i++)
            o.held += a.done[i]->state == LLM_HELD;
        o.steps++;
    }
    for (int i = 0; i < n_seq; i++)
        o.bad += a.q[i].state != b.q[i].state || a.q[i].generated != b.q[i].generated ||
                 a.q[i].preemptions != b.q[i].preemptions || a.q[i].cached_tokens != b.q[i].cached_tokens;
    CU_ASSERT_EQUAL(added, n_seq);
    CU_ASSERT_EQUAL(llm_sched_blocks_used(b.s), 0);
    CU_ASSERT_EQUAL(llm_sched_blocks_free(b.s), c.num_blocks);
    side_close(&a);
    side_close(&b);
    gsl_rng_free(g);
    return o;
}

/* Prefix caching on, hashed sequences from the 500th on: the same steps
 * before and after the switch, which happens with blocks held, and prefix
 * hits and preemptions do occur. */
static void test_switch_mid_run(void)
{
    llm_sched_config c = {
        .max_num_batched_tokens = 512, .max_num_seqs = MAX_SEQS, .block_size = 16,
        .num_blocks = 200, .long_prefill_threshold = 256, .enable_prefix_caching = 1,
        .chunked_prefill = 1,
    };
    outcome o = compare_run(c, 4242, 3000, 500);

    CU_ASSERT_EQUAL(o.bad, 0);
    CU_ASSERT_EQUAL(o.tables_before, 0);
    CU_ASSERT(o.tables_after > 0);
    CU_ASSERT(o.held > 0);
    CU_ASSERT(o.prefilled > 0);
    CU_ASSERT(o.steps > 1000);
}

/* Hashed sequences from the first: ids from the first add. */
static void test_hashed_from_start(void)
{
    llm_sched_config c = {
        .max_num_batched_tokens = 1024, .max_num_seqs = MAX_SEQS, .block_size = 16,
        .num_blocks = 150, .enable_prefix_caching = 1, .chunked_prefill = 1,
    };
    outcome o = compare_run(c, 99, 2000, 0);

    CU_ASSERT_EQUAL(o.bad, 0);
    CU_ASSERT_EQUAL(o.tables_before, 0);
    CU_ASSERT(o.tables_after > 0);
}

/* Prefix caching off: hashes change nothing, no block table is ever grown
 * on the anonymous side, and the steps are the reference's, preemptions
 * and a prompt prefilled whole (no chunking) included. */
static void test_no_prefix_caching(void)
{
    llm_sched_config c = {
        .max_num_batched_tokens = 1024, .max_num_seqs = MAX_SEQS, .block_size = 16,
        .num_blocks = 150, .enable_prefix_caching = 0, .chunked_prefill = 0,
    };
    outcome o = compare_run(c, 777, 3000, 0);

    CU_ASSERT_EQUAL(o.bad, 0);
    CU_ASSERT_EQUAL(o.tables_before, 0);
    CU_ASSERT_EQUAL(o.tables_after, 0);
    CU_ASSERT(o.held > 0);
}

/* The count-only invariants by hand: blocks taken and given back by
 * count, no table. */
static void test_counts_only(void)
{
    llm_sched_config c = {
        .max_num_batched_tokens = 8192, .max_num_seqs = 8, .block_size = 16, .num_blocks = 10,
        .enable_prefix_caching = 1, .chunked_prefill = 1, .anonymous_blocks = 1,
    };
    llm_sched *s = llm_sched_new(&c);
    llm_step *st = llm_step_new(s);
    llm_seq a = { .id = 1, .prompt_tokens = 100, .output_tokens = 2 }, *first[8], *done[8];
    int nf, nd;

    llm_sched_add(s, &a);
    CU_ASSERT_EQUAL(llm_sched_schedule(s, st), 1);
    CU_ASSERT_EQUAL(llm_sched_blocks_used(s), 7);   /* ceil(100 / 16) */
    CU_ASSERT_EQUAL(llm_sched_blocks_free(s), 3);
    CU_ASSERT_EQUAL(a.n_blocks, 7);
    CU_ASSERT_PTR_NULL(a.blocks);
    CU_ASSERT_EQUAL(llm_sched_check(s), 0);
    llm_sched_step_done(s, st, first, &nf, done, &nd);
    CU_ASSERT_EQUAL(llm_sched_schedule(s, st), 1);
    llm_sched_step_done(s, st, first, &nf, done, &nd);
    CU_ASSERT_EQUAL(nd, 1);
    CU_ASSERT_EQUAL(llm_sched_blocks_used(s), 0);
    CU_ASSERT_EQUAL(llm_sched_blocks_free(s), 10);
    CU_ASSERT_EQUAL(llm_sched_prefix_queries(s), 100);
    CU_ASSERT_EQUAL(llm_sched_check(s), 0);
    llm_step_free(st);
    llm_sched_free(s);
}

int main(void)
{
    if (CU_initialize_registry() != CUE_SUCCESS)
        return 1;
    CU_pSuite s = CU_add_suite("llm_sched_anon", NULL, NULL);
    CU_add_test(s, "counts only", test_counts_only);
    CU_add_test(s, "switch to ids mid-run", test_switch_mid_run);
    CU_add_test(s, "hashed from the start", test_hashed_from_start);
    CU_add_test(s, "no prefix caching", test_no_prefix_caching);
    CU_basic_set_mode(CU_BRM_VERBOSE);
    CU_basic_run_tests();
    unsigned failures = CU_get_number_of_failures();
    CU_cleanup_registry();
    return failures ? 1 : 0;
}
