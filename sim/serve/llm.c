/*
 * llm.c - the LLM server: each node of an LLM pool runs gpus_per_node /
 * tensor_parallel replicas, each a vLLM-style engine on tensor_parallel
 * GPUs. A replica is one actor that loops over scheduler steps
 * (llm_sched.c: continuous batching, chunked prefill, KV blocks,
 * preemption, prefix caching); a step takes the time llm_step_s gives for
 * its composition (llm_model.c). Tokens stream at the end of the step that
 * produced them: a request's first token sets its TTFT, each later one an
 * inter-token latency, the last one its end.
 *
 * Steps are grouped into runs of the same composition (a "horizon"): the
 * same sequences, each decoding one token per step, until one finishes, the
 * KV blocks the next step needs run out, a held request's deadline passes,
 * the run's end, or a request arrives. Inside a horizon the step times
 * follow in closed form (each sequence's context grows by one a step), so
 * the replica needs one SimGrid activity per horizon, not per step
 * (models.<m>.llm.coalesce_steps, the default). With coalesce_steps false
 * each step is its own SimGrid execution; every other computation is the
 * same code, so both give the same results on the same inputs. A scenario
 * with faults that change a node's speed or make it answer errors mid-step
 * (slowdown, speed_profile, gpu_error) runs step by step.
 *
 * The node dispatches each request it accepts to one of its replicas at
 * once, the one with the lowest 4 x waiting + running, as vLLM's
 * data-parallel balancer scores engines (vllm/v1/engine/core_client.py,
 * DPAsyncMPClient.get_core_engine_for_request); lowest index on ties. It
 * reaches the replica's scheduler between steps, as a vLLM engine core
 * takes new requests from its input queue between steps. Requests waiting
 * in a replica count as the node's queue (queue_capacity, queue metrics). A
 * client deadline (the pool's timeout) is checked at every step end: a
 * request past it is cancelled and its blocks freed. With a first-token
 * deadline (the pool's ttft_timeout) a request's deadline is the sooner of
 * the two until its first token is out, then the whole answer's; a first
 * token that would reach its client after ttft_timeout is not delivered:
 * the request is cancelled at the end of that step, its blocks freed.
 *
 * Prefill/decode disaggregation (pools.<p>.role). A prefill pool's replica
 * runs a request's prompt as its whole work: the step that ends the prompt
 * samples the first token (TTFT ends there) and the sequence keeps its KV
 * blocks (llm_sched's hold_kv). A router (decode_router: an lb policy
 * over the decode pool's replicas) picks a decode replica, and the KV
 * cache (KV bytes per token x prompt tokens, an MLA latent once) goes
 * there as a SimGrid communication from the prefill node's host to the
 * decode node's host over both nodes' links (run/run.c's routes), so
 * transfers share those links and a bandwidth cut slows them. A receiver
 * actor on the decode host waits for it; when it lands the prefill replica
 * frees the blocks, the request leaves the prefill pool (its balancer's
 * connection released) and enters the decode pool, and the decode replica
 * takes it with its prompt computed: its first step decodes the second
 * token, and admission and memory follow the scheduler as for any request.
 * The decode replica allocates the request's blocks before the transfer
 * starts, as vLLM's scheduler does with the NIXL connector
 * (vllm/v1/core/sched/scheduler.py, Scheduler.schedule:
 * connector.get_num_new_matched_tokens, then kv_cache_manager.allocate_slots,
 * then connector.update_state_after_alloc, the request waiting in
 * WAITING_FOR_REMOTE_KVS with its blocks; vllm/distributed/kv_transfer/
 * kv_connector/v1/nixl_connector.py: the decode side reads the remote
 * blocks only into blocks it allocated). The handoff queues the transfer
 * at the decode replica (FCFS); its actor, between steps, reserves blocks
 * for the prompt and the first output token (llm_sched_reserve) for the
 * queue's head while the free queue allows (a head that does not fit
 * stops the queue, as a waiting request that allocate_slots refuses
 * stops vLLM's loop), and only then starts the receiver: the transfer
 * begins when blocks are held. A request waiting for blocks or in
 * transfer counts as waiting on the decode replica (vLLM keeps it in its
 * waiting queue) and its reserved blocks as KV usage. Reserved blocks are
 * never preempted (vLLM preempts running requests only); a failed
 * transfer or a crash frees them. The landed request keeps them
 * (llm_sched_add_landed) and is admitted ahead of the waiting queue.
 * A request in transfer is in flight (census). A crash at either end during
 * a transfer, or while it waits for blocks, fails the request's attempt (a
 * retry starts over with a full prefill); the receiver only frees the
 * transfer's record then. Links turned off (chaos link_down) fail the
 * communication itself, in flight or as it starts: the receiver sees a
 * network error and the attempt fails the same way, as vLLM's decode side
 * fails a request whose KV blocks it could not read with
 * kv_load_failure_policy "fail" (vllm/config/kv_transfer.py; the failed
 * blocks come from the connector's get_block_ids_with_load_errors, vLLM PR
 * #19330; "recompute", the decode replica computing the prompt itself, is
 * not modelled). kv_transfer.failed counts transfers that started;
 * handoffs that failed before (no decode replica, or while waiting for
 * blocks) are counted apart.
 *
 * A lost GPU (chaos gpu_failure, through serve_ops.gpus_lost) kills the
 * engine of the replica holding it while the node's other replicas go on:
 * its actor is killed, what it held fails over as after a crash, and the
 * replica is skipped by the node's dispatcher and the decode router until
 * it reads its weights again and restarts. Each request a dying replica
 * loses (its KV cache gone) and each transfer's end are told to the
 * accounting (hooks llm_lost, kv_handoff) for the faults' root causes.
 */
#include "llm_noise.h"
#include "llm_sched.h"
#include "control.h"
#include "serve.h"

#include <simgrid/actor.h>
#include <simgrid/comm.h>
#include <simgrid/engine.h>
#include <simgrid/mailbox.h>
#include <simgrid/exec.h>
#include <simgrid/host.h>
#include <simgrid/semaphore.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Per pool: what every replica shares, and the pool's token metrics. */
typedef struct llm_pool {
    llm_perf perf;
    llm_sched_config cfg;
    int tp, replicas_per_node;
    int mode;                         /* LLM_COALESCE, LLM_PER_STEP or LLM_LIVE */
    /* measured requests (arrived after warm-up) */
    sim_hist *ttft, *tpot, *itl, *e2e;
    unsigned long finished, good;
    double in_tokens, out_tokens;     /* measured requests' tokens, as produced */
    double out_tokens_all;            /* every output token, warm-up included (cost) */
    unsigned long steps, preemptions;
    double kv_max;                    /* the fullest replica's peak share of its blocks */
    /* per interval: block-seconds used and available, running and waiting */
    double *kv_used_per_interval, *kv_cap_per_interval;
    double *run_per_interval, *wait_per_interval;
    /* disaggregation */
    int role;                         /* SC_ROLE_MIXED, _PREFILL, _DECODE */
    struct llm_pool *lat;             /* the pool whose ttft/tpot/itl/e2e/goodput count
                                         its requests: a decode pool's prefill pool, else itself */
    eng_pool *decode;                 /* a prefill pool: its decode pool */
    lb *router;                       /* picks the decode replica (made at the first pick) */
    const char *router_name;          /* its policy */
    lb_server_view *rviews;           /* its view: one server per decode replica */
    struct llm_replica_s **rreps;
    int n_rviews;
    gsl_rng *router_rng;
    /* landed; started (blocks granted, bytes moving) and did not land;
     * failed before a byte moved: no decode replica up, or the request's
     * attempt failed while it waited for blocks */
    unsigned long kv_xfers, kv_xfers_failed, kv_unstarted_failed, *kv_per_replica;
    double kv_xfer_bytes;
    sim_hist *kv_xfer_s;
    int *free_slots, n_free_slots, n_slots; /* mailboxes kv/<pool>/<slot>, reused */
} llm_pool;

/* How a replica's steps become SimGrid activities: one per horizon; one
 * per step with the same horizons (the same results, for tests); or one per
 * step, each timed by SimGrid (faults that change a node mid-step). */
enum { LLM_COALESCE = 0, LLM_PER_STEP, LLM_LIVE };

typedef struct llm_node llm_node;
typedef struct kv_xfer kv_xfer;

/* A request's sequence: the scheduler's state plus the request. */
typedef struct llm_req {
    llm_seq seq;
    eng_req *r;
    struct llm_req *next_pending;
    int late;                  /* its first token came after the client's ttft_timeout */
    int measured;              /* r arrived after the warm-up */
    int prefilled;             /* its KV came from a prefill replica: enters with its prompt */
    llm_seq *resv;             /* landed: the decode replica's blocks its KV cache arrived in */
    double last_token_s;       /* its last token's time, once it has one */
} llm_req;

typedef struct llm_replica_s {
    eng_node *node;
    llm_node *ln;
    int index;
    llm_sched *sched;
    llm_step *step;
    llm_seq **first, **done;
    llm_chunk *chunks;
    int *held_blocks;          /* horizon planning: blocks each sequence would hold */
    double *t_end;             /* horizon: each step's end */
    llm_noise *noise;          /* step.noise: its steps' time factors, or NULL */
    int t_cap;
    llm_req *pending, *pending_tail; /* accepted, not yet in the scheduler */
    int n_pending;
    int idle;                  /* waiting on wake: nothing to run */
    int in_horizon;            /* running a horizon: an arrival ends it */
    int counted;               /* up: its blocks are capacity */
    sg_sem_t wake;
    double run_t0_s;           /* the running horizon's start, or -1 */
    unsigned long steps;       /* steps run since the run began (--trace-steps) */
    /* KV usage, integrated over time: blocks in use since kv_t_s */
    long kv_used;
    double kv_t_s;
    /* KV transfers it sends (prefill) or waits for (decode) */
    kv_xfer *out, *in;
    int n_out, n_in;
    /* --trace-steps: n_in when the horizon was planned and each change
     * since, so that a step's waiting counts the transfers to it queued or
     * on their way at the step's start, whichever way its steps ran */
    int trace_in0;
    struct in_change {
        double t_s;
        int d;
    } *in_log;
    int n_in_log, in_log_cap;
    /* a lost GPU (gpu_failure) holds it down: its engine is dead, its KV
     * cache gone, until every fault holding one of its GPUs has ended */
    int lost;                  /* faults holding one of its GPUs */
    int gen;                   /* bumped when it goes down: a reload on its way is stale */
    sg_actor_t actor;          /* its running actor, or NULL */
    sg_exec_t exec;            /* the horizon's execution it waits beside, or NULL */
    /* a decode replica: transfers waiting for their blocks (FCFS), and
     * reservations given up, to be freed by its own actor (its scheduler
     * changes only between its steps) */
    kv_xfer *wq_head, *wq_tail;
    llm_seq **drops;
    int n_drops, drops_cap;
} llm_replica;

/* A KV cache on its way from a prefill replica to a decode replica. */
struct kv_xfer {
    llm_req *q;                /* held by src's scheduler (LLM_HELD) until it lands */
    llm_replica *src, *dst;
    int linked;                /* in src's out and dst's in lists */
    int dead;                  /* a crash at either end ended it: the receiver only frees it */
    int clean;                 /* it completed: its mailbox can be used again */
    int slot;
    eng_pool *owner;           /* the prefill pool (its slots) */
    double bytes, t0_s;
    llm_seq *resv;             /* the blocks reserved for it on dst (owned by dst's lists) */
    int granted;               /* resv holds its blocks: the receiver runs */
    kv_xfer *out_prev, *out_next, *in_prev, *in_next;
    kv_xfer *wnext;            /* in dst's queue of transfers waiting for blocks */
};

struct llm_node {
    llm_replica *reps;
    int n_reps;
    int closing;       /* free_node under way: its queued count is no more */
    /* its vllm:* counters since its host last came up (serve_llm_node_stats) */
    double prompt_tokens, generation_tokens;
    unsigned long preemptions, finished;
    unsigned long prefix_queries_base, prefix_hits_base; /* the schedulers' counts then */
};

static llm_pool *lp_of(const eng_pool *p) { return p->serve_state; }
static llm_node *ln_of(const eng_node *n) { return n->work.serve; }

/* The prefix-cache lookups of a node's schedulers over the whole run. */
static void node_prefix(const llm_node *ln, unsigned long *queries, unsigned long *hits)
{
    *queries = *hits = 0;
    for (int i = 0; i < ln->n_reps; i++) {
        *queries += llm_sched_prefix_queries(ln->reps[i].sched);
        *hits += llm_sched_prefix_hits(ln->reps[i].sched);
    }
}

/* The host went down: its vLLM processes' counters start again from 0. */
static void stats_restart(llm_node *ln)
{
    ln->prompt_tokens = ln->generation_tokens = 0;
    ln->preemptions = ln->finished = 0;
    node_prefix(ln, &ln->prefix_queries_base, &ln->prefix_hits_base);
}

/* ---- KV usage, integrated per replica (in any order: each replica has
 * its own clock), split over the intervals ---- */

static size_t split_interval(double t)
{
    size_t i = (size_t)(t / eng_world.sc->interval_s);
    return i >= eng_world.n_intervals ? eng_world.n_intervals - 1 : i;
}

/* The times split_interval maps to i, [*lo, *hi] (t >= 0): from the
 * boundaries it means, moved ulp by ulp to where it changes (it is
 * monotone in t; the division's rounding moves a boundary by an ulp). */
static void split_bounds(size_t i, double *lo, double *hi)
{
    double iv = eng_world.sc->interval_s, a = 0, b = INFINITY;
    if (i > 0) {
        a = (double)i * iv;
        while (a > 0 && split_interval(a) >= i)
            a = nextafter(a, -INFINITY);
        while (split_interval(a) < i)
            a = nextafter(a, INFINITY);
    }
    if (i < eng_world.n_intervals - 1) {
        b = (double)(i + 1) * iv;
        while (split_interval(b) <= i)
            b = nextafter(b, INFINITY);
        while (split_interval(b) > i)
            b = nextafter(b, -INFINITY);
    }
    *lo = a;
    *hi = b;
}

/* Adds v x the part of [t0, t1) in each interval to per[] and, when per2
 * is not NULL, v2 x the same to per2[] (one interval lookup for both).
 * Called at each step: the interval of the last call and the times it
 * spans are kept, so most calls need no division. */
static void add_split(double *per, double v, double *per2, double v2, double t0, double t1)
{
    static const sc_scenario *c_sc; /* the run the cache is for */
    static size_t c_i;
    static double c_lo = 1, c_hi = 0;
    if (c_sc != eng_world.sc) {
        c_sc = eng_world.sc;
        c_lo = 1;
        c_hi = 0;
    }
    double iv = eng_world.sc->interval_s;
    for (double a = t0; a < t1;) {
        if (!(a >= c_lo && a <= c_hi)) {
            c_i = split_interval(a);
            split_bounds(c_i, &c_lo, &c_hi);
        }
        size_t i = c_i;
        double b = (double)(i + 1) * iv; /* fmin(t1, b), without the call */
        double end = i == eng_world.n_intervals - 1 ? t1 : t1 < b ? t1 : b;
        if (per)
            per[i] += (end - a) * v;
        if (per2)
            per2[i] += (end - a) * v2;
        a = end;
    }
}

/* The replica's blocks in use and its capacity count up to t_s. */
static void kv_advance(llm_replica *rep, double t_s)
{
    llm_pool *lp = lp_of(rep->node->pool);
    if (t_s > rep->kv_t_s && rep->counted)
        add_split(rep->kv_used > 0 ? lp->kv_used_per_interval : NULL, (double)rep->kv_used,
                  lp->kv_cap_per_interval, (double)lp->cfg.num_blocks, rep->kv_t_s, t_s);
    if (t_s > rep->kv_t_s)
        rep->kv_t_s = t_s;
}

/* From t_s on, the replica holds what its scheduler holds now. */
static void kv_set(llm_replica *rep, double t_s)
{
    kv_advance(rep, t_s);
    llm_pool *lp = lp_of(rep->node->pool);
    rep->kv_used = llm_sched_blocks_used(rep->sched);
    double use = lp->cfg.num_blocks > 0 ? (double)rep->kv_used / (double)lp->cfg.num_blocks : 0;
    if (use > lp->kv_max)
        lp->kv_max = use;
}

/* ---- per pool ---- */

/* Faults that change a node mid-step: the closed form cannot see them. */
static int has_mid_step_faults(void)
{
    for (int i = 0; i < eng_world.sc->n_faults; i++) {
        int k = eng_world.sc->faults[i].kind;
        if (k == SC_FAULT_SLOWDOWN || k == SC_FAULT_SPEED_PROFILE || k == SC_FAULT_GPU_ERROR)
            return 1;
    }
    return 0;
}

static void init_pool(eng_pool *p)
{
    const sc_llm *m = p->model->llm;
    const sc_pool *pc = p->cfg;
    llm_pool *lp = calloc(1, sizeof *lp);
    p->serve_state = lp;
    llm_perf *pf = &lp->perf;
    sc_llm_perf(m, pc, pf);
    llm_perf_prepare(pf); /* its step-time constants, once */
    lp->tp = pc->tensor_parallel;
    lp->replicas_per_node = pc->gpus_per_node / pc->tensor_parallel;
    lp->mode = has_mid_step_faults() ? LLM_LIVE : m->coalesce_steps ? LLM_COALESCE : LLM_PER_STEP;
    sc_llm_limits lim;
    sc_llm_limits_get(m, pc, pf, &lim); /* vLLM's defaults where not given */
    lp->cfg.max_num_batched_tokens = lim.max_num_batched_tokens;
    lp->cfg.max_num_seqs = lim.max_num_seqs;
    lp->cfg.block_size = m->block_size;
    lp->cfg.num_blocks = lim.num_blocks;
    lp->cfg.long_prefill_threshold = m->long_prefill_threshold;
    lp->cfg.enable_prefix_caching = m->enable_prefix_caching;
    lp->cfg.chunked_prefill = m->chunked_prefill;
    lp->cfg.anonymous_blocks = 1; /* counts only until a request brings hashes */
    lp->ttft = sim_hist_new(HIST_MIN_S, HIST_MAX_S, HIST_REL_ERR);
    lp->tpot = sim_hist_new(HIST_MIN_S, HIST_MAX_S, HIST_REL_ERR);
    lp->itl = sim_hist_new(HIST_MIN_S, HIST_MAX_S, HIST_REL_ERR);
    lp->e2e = sim_hist_new(HIST_MIN_S, HIST_MAX_S, HIST_REL_ERR);
    lp->kv_used_per_interval = calloc(eng_world.n_intervals, sizeof(double));
    lp->kv_cap_per_interval = calloc(eng_world.n_intervals, sizeof(double));
    lp->run_per_interval = calloc(eng_world.n_intervals, sizeof(double));
    lp->wait_per_interval = calloc(eng_world.n_intervals, sizeof(double));
    lp->role = pc->role;
    lp->lat = lp;
    if (pc->role == SC_ROLE_PREFILL && pc->decode_pool >= 0) {
        lp->decode = &eng_world.pools[pc->decode_pool];
        lp->kv_xfer_s = sim_hist_new(HIST_MIN_S, HIST_MAX_S, HIST_REL_ERR);
        lp->router_rng = eng_stream_rng(eng_world.sc->seed, eng_stream(ENG_STREAM_PD_ROUTER, (unsigned long)p->id));
        lp->router_name = pc->decode_router ? pc->decode_router : "vllm_dp";
        if (lp->decode->serve_state) /* its decode pool was set up first */
            lp_of(lp->decode)->lat = lp;
    }
    if (pc->role == SC_ROLE_DECODE)
        for (int k = 0; k < eng_world.sc->n_pools; k++)
            if (eng_world.sc->pools[k].role == SC_ROLE_PREFILL &&
                eng_world.sc->pools[k].decode_pool == p->id && eng_world.pools[k].serve_state)
                lp->lat = lp_of(&eng_world.pools[k]);
}

static void free_pool(eng_pool *p)
{
    llm_pool *lp = lp_of(p);
    if (!lp)
        return;
    sim_hist_free(lp->ttft);
    sim_hist_free(lp->tpot);
    sim_hist_free(lp->itl);
    sim_hist_free(lp->e2e);
    free(lp->kv_used_per_interval);
    free(lp->kv_cap_per_interval);
    free(lp->run_per_interval);
    free(lp->wait_per_interval);
    if (lp->router)
        lb_destroy(lp->router);
    if (lp->router_rng)
        gsl_rng_free(lp->router_rng);
    free(lp->rviews);
    free(lp->rreps);
    free(lp->kv_per_replica);
    free(lp->free_slots);
    if (lp->kv_xfer_s)
        sim_hist_free(lp->kv_xfer_s);
    free(lp);
    p->serve_state = NULL;
}

/* ---- per node ---- */

/* Node's queued count (queued() below) moved: a replica's scheduler queue
 * or its requests not yet handed to an engine. For the pools' counts
 * (eng_node_q_sync); none once free_node is under way (its replicas go one
 * by one). */
static void queued_changed(void *node)
{
    if (!ln_of(node)->closing)
        eng_node_q_sync(node);
}

static void init_node(eng_node *n)
{
    llm_pool *lp = lp_of(n->pool);
    llm_node *ln = calloc(1, sizeof *ln);
    ln->n_reps = n->gpus / lp->tp;
    ln->reps = calloc((size_t)ln->n_reps, sizeof *ln->reps);
    for (int i = 0; i < ln->n_reps; i++) {
        llm_replica *rep = &ln->reps[i];
        rep->node = n;
        rep->ln = ln;
        rep->index = i;
        rep->wake = sg_sem_init(0);
        rep->run_t0_s = -1;
        rep->sched = llm_sched_new(&lp->cfg);
        llm_sched_watch(rep->sched, queued_changed, n);
        rep->step = llm_step_new(rep->sched);
        size_t m = (size_t)lp->cfg.max_num_seqs;
        rep->first = malloc(sizeof *rep->first * m);
        rep->done = malloc(sizeof *rep->done * m);
        rep->chunks = malloc(sizeof *rep->chunks * m);
        rep->held_blocks = malloc(sizeof *rep->held_blocks * m);
        const sc_llm *lm = n->pool->model->llm;
        unsigned long nz_ix = 1000000000UL * (unsigned long)n->pool->id +
                              1000UL * (unsigned long)n->index + (unsigned long)i;
        if (lm->noise_cv > 0) /* its own stream: (pool, node, replica) */
            rep->noise = llm_noise_new(
                lm->noise_cv, lm->noise_correlation_s,
                eng_stream_rng(eng_world.sc->seed, eng_stream(ENG_STREAM_LLM_NOISE, nz_ix)));
        if (rep->noise && lm->noise_slow_cv > 0) /* the slow component: a stream of its own */
            llm_noise_add(rep->noise, lm->noise_slow_cv, lm->noise_slow_correlation_s,
                          eng_stream_rng(eng_world.sc->seed,
                                         eng_stream(ENG_STREAM_LLM_NOISE_SLOW, nz_ix)));
    }
    n->work.serve = ln;
}

static void free_seq(llm_req *q)
{
    free(q->seq.blocks);
    free(q);
}

/* The reservations given up since rep's actor last looked: freed now. */
static void drop_reservations(llm_replica *rep)
{
    for (int i = 0; i < rep->n_drops; i++) {
        llm_sched_abort(rep->sched, rep->drops[i]);
        free(rep->drops[i]);
    }
    rep->n_drops = 0;
}

/* r, a reservation on rep, is given up: its blocks are freed by rep's
 * actor before its next step (or by fail_running when rep's node fails). */
static void drop_later(llm_replica *rep, llm_seq *r)
{
    if (rep->n_drops == rep->drops_cap) {
        int cap = rep->drops_cap ? 2 * rep->drops_cap : 8;
        llm_seq **d = realloc(rep->drops, sizeof *d * (size_t)cap);
        if (!d) {
            fputs("fleetsim: out of memory\n", stderr);
            abort();
        }
        rep->drops = d;
        rep->drops_cap = cap;
    }
    rep->drops[rep->n_drops++] = r;
}

static llm_req *pop_pending(llm_replica *rep)
{
    llm_req *q = rep->pending;
    if (q) {
        rep->pending = q->next_pending;
        if (!rep->pending)
            rep->pending_tail = NULL;
        rep->n_pending--;
        queued_changed(rep->node);
    }
    return q;
}

/* Every sequence a replica holds, running first (admission order), then
 * waiting (queue order), then not yet scheduled; each removed. */
static int take_all(llm_replica *rep, llm_req **out, int cap)
{
    int k = 0;
    llm_seq *s;
    while (k < cap && llm_sched_running(rep->sched) > 0) {
        s = llm_sched_running_at(rep->sched, 0);
        llm_sched_abort(rep->sched, s);
        out[k++] = (llm_req *)s;
    }
    while (k < cap && (s = llm_sched_landed_head(rep->sched))) {
        llm_sched_abort(rep->sched, s);
        out[k++] = (llm_req *)s;
    }
    while (k < cap && (s = llm_sched_waiting_head(rep->sched))) {
        llm_sched_abort(rep->sched, s);
        out[k++] = (llm_req *)s;
    }
    while (k < cap && rep->pending) {
        llm_req *q = pop_pending(rep);
        if (q->resv) { /* landed, not yet taken up: its reservation goes too */
            llm_sched_abort(rep->sched, q->resv);
            free(q->resv);
            q->resv = NULL;
        }
        out[k++] = q;
    }
    return k;
}

static void free_node(eng_node *n)
{
    llm_node *ln = ln_of(n);
    if (!ln)
        return;
    ln->closing = 1; /* the run is over: no more counts */
    for (int i = 0; i < ln->n_reps; i++) {
        llm_replica *rep = &ln->reps[i];
        llm_req *all[64];
        int k;
        while ((k = take_all(rep, all, 64)) > 0)
            for (int j = 0; j < k; j++)
                free_seq(all[j]);
        /* KV transfers still on their way at the end: their receivers
         * have freed their records; the sequences are still held here */
        llm_seq *h;
        while ((h = llm_sched_held_head(rep->sched))) {
            llm_sched_abort(rep->sched, h);
            free_seq((llm_req *)h);
        }
        /* reservations of transfers still on their way or waiting for
         * blocks: the records of those waiting are freed here (no receiver
         * runs for them) */
        drop_reservations(rep);
        while ((h = llm_sched_reserved_head(rep->sched))) {
            llm_sched_abort(rep->sched, h);
            free(h);
        }
        while (rep->wq_head) {
            kv_xfer *x = rep->wq_head;
            rep->wq_head = x->wnext;
            free(x->resv);
            free(x);
        }
        free(rep->drops);
        llm_step_free(rep->step);
        llm_sched_free(rep->sched);
        sg_sem_destroy(rep->wake);
        free(rep->first);
        free(rep->done);
        free(rep->chunks);
        free(rep->held_blocks);
        free(rep->t_end);
        free(rep->in_log);
        llm_noise_free(rep->noise);
    }
    free(ln->reps);
    free(ln);
    n->work.serve = NULL;
}

static double seq_tokens_left(const llm_seq *q)
{
    return (q->computed < q->prompt_tokens ? q->prompt_tokens - q->computed : 0) +
           (q->output_tokens - q->generated);
}

/* What the balancers see of node n's load (lb_server_view's llm fields),
 * as its replicas report it at each change of their batches: waiting and
 * running sequences, KV usage averaged over its replicas, and the tokens
 * its requests still need (prompt tokens not computed, output tokens not
 * generated). */
static void sync_view(eng_node *n)
{
    llm_node *ln = ln_of(n);
    llm_pool *lp = lp_of(n->pool);
    int waiting = 0, running = 0;
    double kv = 0, tokens = 0;
    for (int i = 0; i < ln->n_reps; i++) {
        const llm_replica *rep = &ln->reps[i];
        const llm_sched *s = rep->sched;
        waiting += llm_sched_waiting(s) + rep->n_pending + rep->n_in;
        running += llm_sched_running(s);
        kv += lp->cfg.num_blocks > 0
                  ? (double)llm_sched_blocks_used(s) / (double)lp->cfg.num_blocks
                  : 0;
        for (int j = 0; j < llm_sched_running(s); j++)
            tokens += seq_tokens_left(llm_sched_running_at(s, j));
        for (const llm_seq *q = llm_sched_waiting_head(s); q; q = q->next)
            tokens += seq_tokens_left(q);
        for (const llm_seq *q = llm_sched_landed_head(s); q; q = q->next)
            tokens += seq_tokens_left(q);
        for (const llm_req *q = rep->pending; q; q = q->next_pending)
            tokens += seq_tokens_left(&q->seq);
    }
    for (int k = 0; k < eng_world.n_l7; k++) {
        lb_server_view *v = &n->pool->lbi[k].servers[n->index];
        v->llm_waiting = waiting;
        v->llm_running = running;
        v->llm_kv_usage = ln->n_reps ? kv / ln->n_reps : 0;
        v->outstanding_tokens = tokens;
        eng_lb_changed(n->pool, k, n->index);
    }
}

static int rep_load(const llm_replica *rep)
{
    return 4 * (llm_sched_waiting(rep->sched) + rep->n_pending) + llm_sched_running(rep->sched);
}

/* r's whole answer fits a replica of decode pool dp's KV cache (as
 * llm_sched_fits asks of one replica). */
static int decode_fits(const llm_pool *dp, const eng_req *r)
{
    long most = (long)r->in_tokens + r->out_tokens - 1, bs = dp->cfg.block_size;
    return (most + bs - 1) / bs <= dp->cfg.num_blocks;
}

static void accepted(eng_node *n)
{
    llm_node *ln = ln_of(n);
    eng_req *r = eng_fifo_pop(&n->work.q);
    eng_node_q_sync(n);
    llm_replica *best = NULL;
    for (int i = 0; i < ln->n_reps; i++)
        if (!ln->reps[i].lost && (!best || rep_load(&ln->reps[i]) < rep_load(best)))
            best = &ln->reps[i];
    if (!best) { /* every replica lost a GPU (faults on each): the attempt fails */
        double now = simgrid_get_clock();
        eng_lb_release(n->pool, r, n->index, 0, LB_ERROR, now);
        eng_attempt_failed(n->pool, r, now);
        return;
    }
    llm_req *q = calloc(1, sizeof *q);
    q->r = r;
    q->seq.id = r->id;
    q->seq.prompt_tokens = r->in_tokens;
    q->seq.output_tokens = r->out_tokens;
    q->seq.hashes = r->hashes;
    q->seq.n_hashes = r->n_hashes;
    q->seq.hash_block_tokens = r->hash_block_tokens;
    q->seq.user = r;
    q->measured = r->arrival_s >= eng_world.sc->warmup_s; /* is_measured(r) */
    r->first_token_s = NAN;
    llm_pool *lp = lp_of(n->pool);
    if (lp->decode) { /* a prefill pool: the prompt and the first token here */
        q->seq.output_tokens = 1;
        q->seq.hold_kv = r->out_tokens > 1;
    }
    if (!llm_sched_fits(best->sched, &q->seq) ||
        (q->seq.hold_kv && !decode_fits(lp_of(lp->decode), r))) {
        /* longer than the replica's KV cache can ever hold: vLLM refuses
         * it at once (400, prompt + answer above max_model_len), not the
         * server's failure */
        free(q);
        eng_lb_release(n->pool, r, n->index, 0, LB_OK, simgrid_get_clock());
        eng_req_end(n->pool, r, B_REJECTED, simgrid_get_clock());
        return;
    }
    if (best->pending_tail)
        best->pending_tail->next_pending = q;
    else
        best->pending = q;
    best->pending_tail = q;
    best->n_pending++;
    eng_node_q_sync(n);
    for (int k = 0; k < eng_world.n_l7; k++) { /* one more waiting, all its tokens to do */
        lb_server_view *v = &n->pool->lbi[k].servers[n->index];
        v->llm_waiting++;
        v->outstanding_tokens += r->in_tokens + r->out_tokens;
        eng_lb_changed(n->pool, k, n->index);
    }
    if (best->idle || best->in_horizon) {
        best->idle = 0;
        best->in_horizon = 0;
        sg_sem_release(best->wake);
    }
}

static void wake_idle(eng_node *n)
{
    llm_node *ln = ln_of(n);
    for (int i = 0; i < ln->n_reps; i++)
        if (ln->reps[i].idle) {
            ln->reps[i].idle = 0;
            sg_sem_release(ln->reps[i].wake);
        }
}

/* A measured request finished at t1 with its last token: TPOT, E2E and
 * whether it met every latency target the slo sets (goodput). */
static void count_finished(llm_pool *lp, const eng_req *r, double t1)
{
    const sc_slo *slo = &eng_world.sc->slo;
    double ttft = r->first_token_s - r->sent_s + r->net_s;
    double e2e = t1 - r->sent_s + r->net_s;
    double tpot = r->out_tokens > 1 ? (t1 - r->first_token_s) / (r->out_tokens - 1) : 0;
    if (r->out_tokens > 1)
        sim_hist_add(lp->tpot, tpot);
    sim_hist_add(lp->e2e, e2e);
    lp->finished++;
    if ((slo->ttft_p99_s <= 0 || ttft <= slo->ttft_p99_s) &&
        (slo->tpot_p99_s <= 0 || tpot <= slo->tpot_p99_s) &&
        (slo->e2e_p99_s <= 0 || e2e <= slo->e2e_p99_s))
        lp->good++;
}

static int is_measured(const eng_req *r) { return r->arrival_s >= eng_world.sc->warmup_s; }

/* The first token of r, out at t1, reaches its client after the pool's
 * ttft_timeout: the client has aborted the request (as an OpenAI client's
 * read timeout on a stream does), so the token is not delivered. Only
 * while that deadline binds: not once a first token was delivered (an
 * attempt retried after a crash), nor when the whole answer's comes first
 * (its own rules apply). The same test as eng_req_served's. */
static int first_token_late(const eng_req *r, double t1)
{
    const sc_pool *pc = eng_world.classes[r->tclass].pool->cfg;
    double whole = pc->timeout_s > 0 ? r->sent_s + pc->timeout_s : INFINITY;
    return pc->ttft_timeout_s > 0 && r->deadline_s < whole &&
           r->sent_s + (t1 - r->sent_s + r->net_s) > r->deadline_s;
}

/* r's first token is out in time: from now on only the whole answer's
 * deadline binds it (engine.c set the sooner of the two at its send). */
static void first_token_in_time(eng_req *r)
{
    const sc_pool *pc = eng_world.classes[r->tclass].pool->cfg;
    if (pc->ttft_timeout_s > 0)
        r->deadline_s = pc->timeout_s > 0 ? r->sent_s + pc->timeout_s : INFINITY;
}

/* Ends r, which left the replica, with an error of its server (result) or
 * its client's timeout. */
static void end_held(eng_pool *p, eng_node *n, llm_req *q, lb_result result, int bucket,
                     double t_s, double now)
{
    eng_req *r = q->r;
    free_seq(q);
    eng_lb_release(p, r, n->index, now - r->stage_s, result, now);
    eng_req_end(p, r, bucket, t_s);
}

/* ---- prefill/decode disaggregation: the KV transfer ---- */

/* The replica may be waiting for something to do, or in a horizon that a
 * new request ends: it looks again. */
static void wake_rep(llm_replica *rep, int end_horizon)
{
    eng_node_state st = rep->node->life.state;
    if (st != NODE_READY && st != NODE_DRAINING)
        return; /* its actors are gone or going: start() begins afresh */
    if (rep->idle || (end_horizon && rep->in_horizon)) {
        rep->idle = 0;
        rep->in_horizon = 0;
        sg_sem_release(rep->wake);
    }
}

/* --trace-steps: the transfers to rep changed by d, now. */
static void in_changed(llm_replica *rep, int d)
{
    if (!eng_world.trace_steps)
        return;
    if (rep->n_in_log == rep->in_log_cap) {
        int cap = rep->in_log_cap ? 2 * rep->in_log_cap : 16;
        struct in_change *a = realloc(rep->in_log, sizeof *a * (size_t)cap);
        if (!a)
            return;
        rep->in_log = a;
        rep->in_log_cap = cap;
    }
    rep->in_log[rep->n_in_log++] = (struct in_change){ .t_s = simgrid_get_clock(), .d = d };
}

static void xfer_link(kv_xfer *x)
{
    x->out_prev = NULL;
    x->out_next = x->src->out;
    if (x->src->out)
        x->src->out->out_prev = x;
    x->src->out = x;
    x->src->n_out++;
    x->in_prev = NULL;
    x->in_next = x->dst->in;
    if (x->dst->in)
        x->dst->in->in_prev = x;
    x->dst->in = x;
    x->dst->n_in++;
    in_changed(x->dst, 1);
    x->linked = 1;
}

static void xfer_unlink(kv_xfer *x)
{
    if (!x->linked)
        return;
    if (x->out_prev)
        x->out_prev->out_next = x->out_next;
    else
        x->src->out = x->out_next;
    if (x->out_next)
        x->out_next->out_prev = x->out_prev;
    x->src->n_out--;
    if (x->in_prev)
        x->in_prev->in_next = x->in_next;
    else
        x->dst->in = x->in_next;
    if (x->in_next)
        x->in_next->in_prev = x->in_prev;
    x->dst->n_in--;
    in_changed(x->dst, -1);
    x->linked = 0;
}

/* Each transfer has its own mailbox, named by a slot of its prefill pool;
 * a slot is used again only after a transfer that completed (one that
 * failed may have left its communication behind). */
static void slot_name(const kv_xfer *x, char *buf, size_t cap)
{
    snprintf(buf, cap, "kv/%d/%d", x->owner->id, x->slot);
}

static int slot_take(llm_pool *lp)
{
    if (lp->n_free_slots > 0)
        return lp->free_slots[--lp->n_free_slots];
    return lp->n_slots++;
}

static void slot_give(llm_pool *lp, int slot)
{
    int *f = realloc(lp->free_slots, sizeof *f * (size_t)(lp->n_free_slots + 1));
    if (!f)
        return; /* the slot is not used again */
    lp->free_slots = f;
    f[lp->n_free_slots++] = slot;
}

/* The decode replica for r, as the router's policy picks it over the
 * decode pool's replicas, each a server: up when its node is ready; its
 * waiting requests (with those on their way to it), running requests, KV
 * usage and outstanding tokens as the token-aware policies read them.
 * NULL when none can take it. */
static llm_replica *pick_decode(llm_pool *lp, const eng_req *r, double now)
{
    eng_pool *d = lp->decode;
    llm_pool *dp = lp_of(d);
    if (!lp->router) {
        int n = 0;
        for (int j = 0; j < d->n_hosts; j++)
            n += ln_of(&d->nodes[j])->n_reps;
        lp->n_rviews = n;
        lp->rviews = calloc((size_t)(n ? n : 1), sizeof *lp->rviews);
        lp->rreps = calloc((size_t)(n ? n : 1), sizeof *lp->rreps);
        lp->kv_per_replica = calloc((size_t)(n ? n : 1), sizeof *lp->kv_per_replica);
        lp->router = lb_create_with(lp->router_name, n, lp->router_rng, &eng_world.sc->lb.params);
        int k = 0;
        for (int j = 0; j < d->n_hosts; j++) {
            llm_node *ln = ln_of(&d->nodes[j]);
            for (int i = 0; i < ln->n_reps; i++)
                lp->rreps[k++] = &ln->reps[i];
        }
    }
    if (!lp->router)
        return NULL;
    for (int k = 0; k < lp->n_rviews; k++) {
        const llm_replica *rep = lp->rreps[k];
        const llm_sched *s = rep->sched;
        double tokens = 0;
        for (int j = 0; j < llm_sched_running(s); j++)
            tokens += seq_tokens_left(llm_sched_running_at(s, j));
        for (const llm_seq *w = llm_sched_waiting_head(s); w; w = w->next)
            tokens += seq_tokens_left(w);
        for (const llm_seq *w = llm_sched_landed_head(s); w; w = w->next)
            tokens += seq_tokens_left(w);
        for (const llm_req *q = rep->pending; q; q = q->next_pending)
            tokens += seq_tokens_left(&q->seq);
        for (const kv_xfer *x = rep->in; x; x = x->in_next)
            tokens += x->q->r->out_tokens - 1;
        int waiting = llm_sched_waiting(s) + rep->n_pending + rep->n_in;
        lp->rviews[k] = (lb_server_view){
            .up = rep->node->life.state == NODE_READY && !rep->lost,
            .active = waiting + llm_sched_running(s),
            .weight = 1.0,
            .llm_waiting = waiting,
            .llm_running = llm_sched_running(s),
            .llm_kv_usage = dp->cfg.num_blocks > 0 ? (double)llm_sched_blocks_used(s) /
                                                         (double)dp->cfg.num_blocks
                                                   : 0,
            .outstanding_tokens = tokens,
        };
    }
    lb_view view = { .n = lp->n_rviews, .servers = lp->rviews, .now_s = now };
    lb_request lr = { .id = r->id, .traffic_class = r->tclass, .arrival_s = r->sent_s,
                      .key = r->id, .input_tokens = r->in_tokens, .output_tokens = r->out_tokens,
                      .hashes = r->hashes, .n_hashes = r->n_hashes,
                      .hash_block_tokens = r->hash_block_tokens };
    int k = lb_pick(lp->router, &view, &lr);
    if (k < 0)
        return NULL;
    lp->kv_per_replica[k]++;
    return lp->rreps[k];
}

static void kv_receiver(int argc, char *argv[]);

/* q's prompt is done on rep (its first token out at now, its blocks held):
 * its KV cache leaves for a decode replica. Runs in rep's actor, on the
 * prefill host: the send starts here, detached; the receiver actor on the
 * decode host owns the transfer. */
static void handoff(llm_replica *rep, llm_req *q, double now)
{
    eng_node *n = rep->node;
    llm_pool *lp = lp_of(n->pool);
    llm_replica *dst = pick_decode(lp, q->r, now);
    if (!dst) { /* no decode replica up: the proxy answers 502 */
        llm_sched_abort(rep->sched, &q->seq);
        kv_set(rep, now);
        lp->kv_unstarted_failed++; /* no transfer was attempted */
        ENG_NOTIFY(kv_handoff, n, NULL, 1, 0.0, 0.0);
        q->r->handoff_cause = eng_handoff_fault(n, NULL, &q->r->handoff_rec);
        end_held(n->pool, n, q, LB_OK, B_FAILED, now, now);
        return;
    }
    kv_xfer *x = calloc(1, sizeof *x);
    x->q = q;
    x->src = rep;
    x->dst = dst;
    x->owner = n->pool;
    x->slot = slot_take(lp);
    x->bytes = llm_kv_transfer_bytes_per_token(&lp->perf) * (double)q->seq.prompt_tokens;
    x->t0_s = now;
    x->resv = calloc(1, sizeof *x->resv);
    xfer_link(x);
    char mb[64];
    slot_name(x, mb, sizeof mb);
    /* detached: posted here, owned by no one; it starts when the receiver,
     * started once dst holds blocks for it, posts its get; the receiver
     * sees its end */
    sg_comm_detach(sg_mailbox_put_init(sg_mailbox_by_name(mb), x, (long)x->bytes), NULL);
    if (dst->wq_tail)
        dst->wq_tail->wnext = x;
    else
        dst->wq_head = x;
    dst->wq_tail = x;
    sync_view(dst->node);
    wake_rep(dst, 1);
}

static void wq_remove(kv_xfer *x);

/* x waited at its decode replica for blocks past its client's deadline. */
static void wq_expired(kv_xfer *x, double now)
{
    llm_req *q = x->q;
    eng_req *r = q->r;
    llm_replica *src = x->src;
    eng_node *sn = src->node;
    eng_pool *pp = sn->pool;
    xfer_unlink(x);
    wq_remove(x);
    llm_sched_abort(src->sched, &q->seq);
    kv_set(src, now);
    wake_rep(src, 0); /* its blocks are free: a waiting prompt may fit */
    sync_view(sn);
    free(x->resv);
    free(x);
    end_held(pp, sn, q, LB_OK, B_TIMED_OUT, r->deadline_s, now);
    eng_drain_balancer_queue(pp, now);
}

/* The transfers queued at rep, a decode replica, get their blocks in
 * order while they fit; each whose blocks are held starts (its receiver
 * actor posts the get that starts the communication). Runs in rep's actor
 * between steps, at now. */
static void grant_reservations(llm_replica *rep, double now)
{
    int changed = rep->n_drops > 0;
    drop_reservations(rep);
    /* clients that gave up while their request waited for blocks: it ends
     * as timed out, its prefill replica's blocks freed, nothing sent */
    for (kv_xfer *x = rep->wq_head, *next; x; x = next) {
        next = x->wnext;
        if (x->q->r->deadline_s <= now)
            wq_expired(x, now);
    }
    while (rep->wq_head) {
        kv_xfer *x = rep->wq_head;
        /* the prompt's KV and the first output token's, the blocks its
         * first decode step holds */
        if (!llm_sched_reserve(rep->sched, x->resv, x->q->seq.prompt_tokens + 1))
            break;
        rep->wq_head = x->wnext;
        if (!rep->wq_head)
            rep->wq_tail = NULL;
        x->wnext = NULL;
        x->granted = 1;
        x->t0_s = now;
        changed = 1;
        sg_actor_t a = sg_actor_init("kv", rep->node->host);
        sg_actor_set_data(a, x);
        sg_actor_start(a, kv_receiver, 0, NULL);
    }
    if (changed) {
        kv_set(rep, now);
        sync_view(rep->node);
    }
}

/* x, queued at its decode replica for blocks, leaves the queue. */
static void wq_remove(kv_xfer *x)
{
    llm_replica *dst = x->dst;
    kv_xfer *prev = NULL;
    for (kv_xfer *y = dst->wq_head; y; prev = y, y = y->wnext)
        if (y == x) {
            if (prev)
                prev->wnext = x->wnext;
            else
                dst->wq_head = x->wnext;
            if (dst->wq_tail == x)
                dst->wq_tail = prev;
            x->wnext = NULL;
            return;
        }
}

/* The transfer x ended without landing (now): the prefill replica frees
 * the blocks and the request's attempt failed on the prefill pool: a retry
 * runs its prefill again on another replica, as after a crash. src_error:
 * the prefill side is at fault (its balancer hears of an error). down: the
 * node whose replica went down with it (its KV cache lost), or NULL. */
static void kv_lost(kv_xfer *x, int src_error, eng_node *down, double now)
{
    llm_req *q = x->q;
    eng_req *r = q->r;
    llm_replica *src = x->src, *dst = x->dst;
    eng_node *sn = src->node;
    llm_pool *lp = lp_of(sn->pool);
    int prompt = q->seq.prompt_tokens;
    double t0_s = x->t0_s; /* x may be freed below */
    xfer_unlink(x);
    llm_sched_abort(src->sched, &q->seq);
    kv_set(src, now);
    free_seq(q);
    x->q = NULL;
    int granted = x->granted;
    /* a transfer counts as attempted once its blocks were granted and its
     * bytes began to move; one that waited for blocks moved none */
    if (granted)
        lp->kv_xfers_failed++;
    else
        lp->kv_unstarted_failed++;
    if (granted) { /* its blocks on dst are freed */
        drop_later(dst, x->resv);
        x->resv = NULL;
    } else { /* no receiver runs for it: its record goes here */
        wq_remove(x);
        free(x->resv);
        free(x);
    }
    wake_rep(src, 0);
    wake_rep(dst, granted);
    sync_view(sn);
    sync_view(dst->node);
    eng_lb_release(sn->pool, r, sn->index, now - r->stage_s, src_error ? LB_ERROR : LB_OK, now);
    ENG_NOTIFY(kv_handoff, sn, dst->node, 1, now - t0_s, 0.0);
    if (down)
        ENG_NOTIFY(llm_lost, down, r, prompt,
                   eng_retry_allowed(sn->pool, r, now, eng_world.sc->lb.retry_on_error));
    r->handoff_cause = eng_handoff_fault(sn, dst->node, &r->handoff_rec);
    eng_attempt_failed(sn->pool, r, now);
}

/* The time a transfer of `bytes` from sn to dn takes alone on unfaulted
 * links: both links' latencies + bytes / the lower of their bandwidths
 * (SimGrid's CM02 model on run/run.c's route). */
static double xfer_alone_s(const eng_node *sn, const eng_node *dn, double bytes)
{
    const sc_pool *a = sn->pool->cfg, *b = dn->pool->cfg;
    double bw = a->link_bandwidth_Bps < b->link_bandwidth_Bps ? a->link_bandwidth_Bps
                                                              : b->link_bandwidth_Bps;
    return a->link_latency_s + b->link_latency_s + (bw > 0 ? bytes / bw : 0);
}

/* x landed at now: the prefill replica frees its blocks, the request
 * moves from the prefill pool to the decode pool, and the decode replica
 * takes it with its prompt computed. */
static void kv_landed(kv_xfer *x, double now)
{
    llm_req *q = x->q;
    eng_req *r = q->r;
    llm_replica *src = x->src, *dst = x->dst;
    eng_node *sn = src->node, *dn = dst->node;
    eng_pool *pp = sn->pool, *dpool = dn->pool;
    llm_pool *lp = lp_of(pp);
    xfer_unlink(x);
    x->q = NULL;
    llm_sched_abort(src->sched, &q->seq);
    kv_set(src, now);
    lp->kv_xfers++;
    lp->kv_xfer_bytes += x->bytes;
    sim_hist_add(lp->kv_xfer_s, now - x->t0_s);
    ENG_NOTIFY(kv_handoff, sn, dn, 0, now - x->t0_s, xfer_alone_s(sn, dn, x->bytes));
    wake_rep(src, 0); /* its blocks are free: a waiting prompt may fit */
    sync_view(sn);
    if (r->deadline_s <= now) { /* its client gave up on the way */
        drop_later(dst, x->resv);
        x->resv = NULL;
        wake_rep(dst, 1);
        end_held(pp, sn, q, LB_OK, B_TIMED_OUT, r->deadline_s, now);
        eng_drain_balancer_queue(pp, now);
        return;
    }
    eng_lb_release(pp, r, sn->index, now - r->stage_s, LB_OK, now);
    /* it leaves the prefill pool's stage as done and enters the decode
     * pool's; stage 1 marks it past the first pool (a client retry
     * starts it over there, eng_resend) */
    eng_pool_leave(pp, r, B_COMPLETED, now);
    r->stage = 1;
    r->stage_s = now;
    r->node = dn->index;
    eng_pool_enter(dpool, r, now, 1);
    ENG_NOTIFY(arrival, dpool, now);
    dn->work.accepted++;
    dpool->lbi[r->l7].servers[dn->index].active++;
    eng_lb_changed(dpool, r->l7, dn->index);
    q->seq.output_tokens = r->out_tokens;
    q->seq.hold_kv = 0;
    q->prefilled = 1;
    q->resv = x->resv; /* dst's actor gives its blocks to the sequence */
    x->resv = NULL;
    q->next_pending = NULL;
    if (dst->pending_tail)
        dst->pending_tail->next_pending = q;
    else
        dst->pending = q;
    dst->pending_tail = q;
    dst->n_pending++;
    eng_node_q_sync(dn);
    sync_view(dn);
    wake_rep(dst, 1);
    eng_drain_balancer_queue(pp, now);
}

static void kv_exit(int failed, void *data)
{
    (void)failed;
    kv_xfer *x = data;
    if (x->clean)
        slot_give(lp_of(x->owner), x->slot);
    xfer_unlink(x); /* killed at the run's end: its sequence stays held (free_node) */
    free(x);
}

/* On the decode host: receives one KV cache and hands it on. */
static void kv_receiver(int argc, char *argv[])
{
    (void)argc;
    (void)argv;
    kv_xfer *x = sg_actor_self_get_data();
    sg_actor_on_exit(kv_exit, x);
    char mb[64];
    void *got = NULL;
    slot_name(x, mb, sizeof mb);
    sg_comm_t c = sg_mailbox_get_async(sg_mailbox_by_name(mb), &got);
    sg_error_t e = sg_comm_wait(c);
    double now = simgrid_get_clock();
    if (x->dead)
        return; /* a crash at either end has dealt with its request */
    switch (e) {
    case SG_OK:
        x->clean = 1;
        kv_landed(x, now);
        break;
    case SG_ERROR_HOST:
    case SG_ERROR_NETWORK:
    case SG_ERROR_TIMEOUT:
    default: /* the prefill host or the path failed under it (a link turned
              * off: chaos link_down, control/link_power.cc) */
        kv_lost(x, 1, NULL, now);
        break;
    }
}

/* r, on a decode replica that failed at now, is sent again to its prefill
 * pool (the balancer's rules allow a retry). */
static int decode_retried(const eng_req *r, double now)
{
    return eng_retry_allowed(eng_world.classes[r->tclass].pool, r, now,
                             eng_world.sc->lb.retry_on_error);
}

/* r's decode replica, in decode pool dp, failed at now with its KV cache:
 * the attempt failed. A retry, as the balancer's rules allow, starts over
 * at the prefill pool with a full prefill (r leaves dp's stage as failed);
 * else r ends there as failed (502). */
static void decode_failed(eng_pool *dp, eng_req *r, double now)
{
    eng_pool *pp = eng_world.classes[r->tclass].pool;
    eng_world.attempt_errors++;
    if (!decode_retried(r, now)) {
        eng_req_end(dp, r, B_FAILED, now);
        return;
    }
    eng_pool_leave(dp, r, B_FAILED, now);
    r->stage = 0;
    r->stage_s = now;
    r->node = -1;
    eng_pool_enter(pp, r, now, 1);
    eng_route(pp, r, now);
}

/* rep went down at now: the transfers from and to it end with it. */
static void fail_rep_xfers(llm_replica *rep, double now)
{
    while (rep->out) {
        kv_xfer *x = rep->out;
        x->dead = 1;
        kv_lost(x, 1, rep->node, now);
    }
    while (rep->in) {
        kv_xfer *x = rep->in;
        x->dead = 1;
        kv_lost(x, 0, rep->node, now);
    }
}

/* ---- the horizon: steps of one composition ---- */

static double *t_slot(llm_replica *rep, int j)
{
    if (j >= rep->t_cap) {
        rep->t_cap = rep->t_cap ? 2 * rep->t_cap : 64;
        while (rep->t_cap <= j)
            rep->t_cap *= 2;
        rep->t_end = realloc(rep->t_end, sizeof *rep->t_end * (size_t)rep->t_cap);
    }
    return &rep->t_end[j];
}

/* Plans the horizon that starts with the scheduled step st at t0_s: fills
 * t_end[1..k] (t_end[0] = t0_s) and returns k >= 1. A horizon longer than
 * one step has only decoding sequences and no preemption; it ends at the
 * step where a sequence finishes, where a held request's deadline has
 * passed, before a step whose new KV blocks would not fit (the scheduler
 * would preempt), or before a step that would end after the run. With
 * step noise each step's time is multiplied by its factor, drawn here for
 * every step planned and kept for those that run (llm_noise_commit). */
static int plan(llm_replica *rep, const llm_step *st, double t0_s)
{
    enum { MAX_STEPS = 1 << 16 };
    llm_pool *lp = lp_of(rep->node->pool);
    const llm_sched *s = rep->sched;
    double speed = sg_host_get_speed(rep->node->host) / ENG_FLOPS_PER_S;
    double step_s = llm_step_s(&lp->perf, rep->chunks, st->n);
    if (rep->noise) {
        llm_noise_plan(rep->noise);
        step_s *= llm_noise_next(rep->noise, t0_s);
    }
    *t_slot(rep, 0) = t0_s;
    *t_slot(rep, 1) = t0_s + (speed == 1.0 ? step_s : step_s / speed); /* x / 1 is x */
    int steady = lp->mode != LLM_LIVE && st->n_preempted == 0 && st->n == llm_sched_running(s);
    for (int i = 0; i < st->n && steady; i++)
        steady = st->items[i].decode;
    if (!steady)
        return 1;
    int finish = MAX_STEPS, bs = lp->cfg.block_size;
    double deadline = INFINITY;
    for (int i = 0; i < st->n; i++) {
        const llm_seq *q = st->items[i].seq;
        int left = q->output_tokens - q->generated;
        if (left < finish)
            finish = left;
        rep->held_blocks[i] = q->n_blocks;
        double d = ((const llm_req *)q)->r->deadline_s;
        if (d < deadline)
            deadline = d;
    }
    for (const llm_seq *q = llm_sched_waiting_head(s); q; q = q->next)
        if (((const llm_req *)q)->r->deadline_s < deadline)
            deadline = ((const llm_req *)q)->r->deadline_s;
    for (const llm_seq *q = llm_sched_landed_head(s); q; q = q->next)
        if (((const llm_req *)q)->r->deadline_s < deadline)
            deadline = ((const llm_req *)q)->r->deadline_s;
    long free_blocks = llm_sched_blocks_free(s);
    double scrape = eng_world.sc->monitoring.scrape_interval_s;
    /* the scrape period step 1 ends in: a later step ending in the next
     * one ends the horizon, so every step planned ends in this one */
    double period = scrape > 0 ? floor(rep->t_end[1] / scrape) : 0;
    /* below near, t / scrape cannot reach period + 1 (t is 2^-40 of it
     * short, far more than the rounding of the division), so the step
     * needs no division to know it ends in this period */
    double near = scrape > 0 ? (period + 1) * scrape * (1 - 0x1p-40) : INFINITY;
    double end_s = eng_world.sc->duration_s;
    int j = 1;
    for (;;) {
        if (j >= finish || rep->t_end[j] >= deadline || j + 1 >= MAX_STEPS)
            return j;
        /* step j + 1: each sequence computes its token at context c + j */
        for (int i = 0; i < st->n; i++) {
            int tokens = st->items[i].context + j + 1;
            if (tokens > rep->held_blocks[i] * bs) { /* ceil(tokens / bs) > held */
                int need = (tokens + bs - 1) / bs;
                free_blocks -= need - rep->held_blocks[i];
                rep->held_blocks[i] = need;
            }
            rep->chunks[i].c = st->items[i].context + j;
        }
        if (free_blocks < 0)
            return j;
        step_s = llm_step_s(&lp->perf, rep->chunks, st->n);
        if (rep->noise)
            step_s *= llm_noise_next(rep->noise, rep->t_end[j]);
        double t = rep->t_end[j] + (speed == 1.0 ? step_s : step_s / speed);
        if (t > end_s)
            return j;
        /* nor across a scrape: the exporter sees its tokens by then */
        if (t >= near && floor(t / scrape) > period)
            return j;
        *t_slot(rep, ++j) = t;
    }
}

/* --trace-steps: step st of rep ran from t0 to t1. A horizon's steps are
 * written one by one from their planned times (the closed form), so the
 * file is the same whether the horizon ran as one activity or per step.
 * waiting is the scheduler's queue plus, on a decode replica, the KV
 * transfers to it at t0 (waiting for blocks or on their way: vLLM keeps
 * such a request in its waiting queue, WAITING_FOR_REMOTE_KVS, and
 * vllm:num_requests_waiting counts it); kv blocks are those held for the
 * step. */
static void trace_step(llm_replica *rep, const llm_step *st, double t0, double t1)
{
    int in = rep->trace_in0;
    for (int i = 0; i < rep->n_in_log; i++)
        if (rep->in_log[i].t_s <= t0)
            in += rep->in_log[i].d;
    long prefill = 0, context = 0;
    int decode = 0;
    for (int i = 0; i < st->n; i++) {
        if (st->items[i].decode)
            decode++;
        else
            prefill += st->items[i].n_new;
        context += st->items[i].context;
    }
    const llm_sched *s = rep->sched;
    fprintf(eng_world.trace_steps, "%.9f,%s,%s,%d,%lu,%.9f,%ld,%d,%ld,%d,%d,%ld\n", t0,
            rep->node->pool->cfg->name, rep->node->name, rep->index, rep->steps, t1 - t0,
            prefill, decode, context, llm_sched_running(s), llm_sched_waiting(s) + in,
            llm_sched_blocks_used(s));
}

static void fail_loudly(const llm_replica *rep, int j, const llm_step *st, int n_want)
{
    fprintf(stderr, "fleetsim: internal error: replica %s#%d, step %d of a horizon: the scheduler "
            "formed %d sequences (%d preempted), the plan had %d decoding\n",
            rep->node->name, rep->index, j, st->n, st->n_preempted, n_want);
    abort();
}

/* Steps 1..k of the horizon ran (t_end[j] each): their tokens, the
 * requests that finished, and the clients that gave up by t_end[k]. Step 1
 * is scheduled in st already; each later step is scheduled here again, as
 * the scheduler would have formed it then. Returns 1 when a request left
 * the replica (a slot freed). */
static int finish_horizon(llm_replica *rep, int k)
{
    eng_node *n = rep->node;
    eng_pool *p = n->pool;
    llm_pool *lp = lp_of(p);
    llm_sched *s = rep->sched;
    llm_step *st = rep->step;
    int ended = 0, n_plan = st->n;
    double itl_x = 0, obs_x = 0; /* the inter-token latencies not yet added */
    size_t itl_n = 0, obs_n = 0;
    for (int j = 1; j <= k; j++) {
        double t0 = rep->t_end[j - 1], t1 = rep->t_end[j];
        if (j > 1) {
            kv_advance(rep, t0);
            if (llm_sched_schedule(s, st) != n_plan || st->n_preempted > 0)
                fail_loudly(rep, j, st, n_plan);
            kv_set(rep, t0);
        }
        for (int g = 0; g < lp->tp; g++)
            eng_account_busy(p, n, t0, t1);
        lp->steps++;
        if (eng_world.trace_steps)
            trace_step(rep, st, t0, t1);
        rep->steps++;
        /* tokens of this step: one per sequence whose computed tokens
         * reach all it knows (the prompt, then each output token) */
        for (int i = 0; i < st->n; i++) {
            const llm_seq *q = st->items[i].seq;
            llm_req *lq = (llm_req *)st->items[i].seq;
            int produces = q->computed + st->items[i].n_new == q->prompt_tokens + q->generated;
            if (!produces)
                continue;
            if (q->generated == 0 && first_token_late(lq->r, t1)) {
                lq->late = 1; /* cancelled below, its token unseen */
                continue;
            }
            /* what a later token needs is kept in the sequence (lq), which
             * the scheduler has just touched, not in the request */
            int m = lq->measured;
            lp->out_tokens_all += 1;
            if (m)
                lp->out_tokens += 1;
            rep->ln->generation_tokens += 1;
            if (q->generated > 0) { /* it has its first token */
                /* a step's sequences mostly share their last token's time:
                 * equal latencies in a row are added at once */
                double x = t1 - lq->last_token_s;
                if (obs_n > 0 && x != obs_x) {
                    ENG_NOTIFY(llm_tokens, n, obs_x, obs_n);
                    obs_n = 0;
                }
                obs_x = x;
                obs_n++;
                if (m) {
                    if (itl_n > 0 && x != itl_x) {
                        sim_hist_add_n(lp->lat->itl, itl_x, itl_n);
                        itl_n = 0;
                    }
                    itl_x = x;
                    itl_n++;
                }
            } else {
                eng_req *r = lq->r;
                r->first_token_s = t1;
                first_token_in_time(r);
                /* vLLM counts a prompt's tokens at its first token
                 * (vllm/v1/metrics/stats.py, IterationStats.update_from_output) */
                rep->ln->prompt_tokens += r->in_tokens;
                ENG_NOTIFY(llm_first_token, n, t1 - r->sent_s + r->net_s, r->in_tokens);
                if (m) {
                    sim_hist_add(lp->lat->ttft, t1 - r->sent_s + r->net_s);
                    lp->in_tokens += r->in_tokens;
                }
            }
            lq->last_token_s = t1;
        }
        int nf = 0, nd = 0;
        llm_sched_step_done(s, st, rep->first, &nf, rep->done, &nd);
        /* first tokens too late: those still running are cancelled, their
         * blocks freed; those that finished with that one token end below */
        for (int i = 0; i < st->n; i++) {
            llm_req *q = (llm_req *)st->items[i].seq;
            if (q->late && q->seq.state == LLM_RUNNING) {
                llm_sched_abort(s, &q->seq);
                end_held(p, n, q, LB_OK, B_TIMED_OUT, q->r->deadline_s, t1);
                ended = 1;
            }
        }
        for (int i = 0; i < nd; i++) {
            llm_req *q = (llm_req *)rep->done[i];
            eng_req *r = q->r;
            if (q->late) {
                if (q->seq.state == LLM_HELD)
                    llm_sched_abort(s, &q->seq);
                end_held(p, n, q, LB_OK, B_TIMED_OUT, r->deadline_s, t1);
                ended = 1;
                continue;
            }
            if (q->seq.state == LLM_HELD) { /* its prompt is done: on to a decode replica */
                handoff(rep, q, t1);
                continue;
            }
            free_seq(q);
            rep->ln->finished++;
            /* vLLM's mean time per output token after the first, 0 for one
             * token (vllm/v1/metrics/stats.py, update_from_finished_request) */
            ENG_NOTIFY(llm_finished, n, t1 - r->sent_s + r->net_s,
                             r->out_tokens > 1 ? (t1 - r->first_token_s) / (r->out_tokens - 1) : 0,
                       r->out_tokens);
            if (is_measured(r) && r->sent_s + (t1 - r->sent_s + r->net_s) <= r->deadline_s)
                count_finished(lp->lat, r, t1);
            eng_req_served(p, n, r, t1);
            ended = 1;
        }
    }
    sim_hist_add_n(lp->lat->itl, itl_x, itl_n);
    ENG_NOTIFY(llm_tokens, n, obs_x, obs_n);
    double t1 = rep->t_end[k];
    /* clients that gave up: cancelled, their blocks freed */
    for (int i = llm_sched_running(s) - 1; i >= 0; i--) {
        llm_req *q = (llm_req *)llm_sched_running_at(s, i);
        if (q->r->deadline_s <= t1) {
            llm_sched_abort(s, &q->seq);
            end_held(p, n, q, LB_OK, B_TIMED_OUT, q->r->deadline_s, t1);
            ended = 1;
        }
    }
    for (int l = 0; l < 2; l++) /* the waiting queue, then landed sequences */
        for (llm_seq *w = l ? llm_sched_landed_head(s) : llm_sched_waiting_head(s); w;) {
            llm_seq *next = w->next;
            llm_req *q = (llm_req *)w;
            if (q->r->deadline_s <= t1) {
                llm_sched_abort(s, w);
                end_held(p, n, q, LB_OK, B_TIMED_OUT, q->r->deadline_s, t1);
                ended = 1;
            }
            w = next;
        }
    kv_set(rep, t1);
    return ended;
}

/* Runs the planned horizon (t_end[1..k]) from now: 1 SimGrid activity when
 * coalescing, else one per step; an arrival ends it at the end of the step
 * in progress. Returns the steps that ran, or 0 when the node crashed. */
static int run_horizon(llm_replica *rep, int k)
{
    eng_node *n = rep->node;
    llm_pool *lp = lp_of(n->pool);
    int gen = n->life.gen;
    double speed_flops = sg_host_get_speed(n->host);
    if (lp->mode == LLM_LIVE) { /* one step (plan made k 1), as long as SimGrid says */
        serve_execute((rep->t_end[1] - rep->t_end[0]) * speed_flops);
        if (n->life.gen != gen)
            return 0;
        rep->t_end[1] = simgrid_get_clock();
        return 1;
    }
    if (lp->mode == LLM_PER_STEP) {
        for (int j = 1; j <= k; j++) {
            serve_execute((rep->t_end[j] - rep->t_end[j - 1]) * speed_flops);
            if (n->life.gen != gen)
                return 0;
            if (rep->pending)
                return j;
        }
        return k;
    }
    /* one execution for the whole horizon (the host is busy, for its
     * energy), while waiting for an arrival that would end it early */
    double now = simgrid_get_clock();
    if (!(rep->t_end[k] > now))
        return k;
    sg_exec_t e = sg_actor_exec_async((rep->t_end[k] - now) * speed_flops);
    rep->in_horizon = 1;
    rep->exec = e; /* a lost GPU cancels it (rep_down) */
    int woken = sg_sem_acquire_timeout(rep->wake, rep->t_end[k] - now) == 0;
    rep->exec = NULL;
    if (n->life.gen != gen)
        return 0;
    rep->in_horizon = 0;
    if (!woken) {
        sg_exec_wait(e);
        return n->life.gen != gen ? 0 : k;
    }
    /* an arrival at now: the step in progress ends first */
    sg_exec_cancel(e);
    now = simgrid_get_clock();
    int lo = 1, hi = k;
    while (lo < hi) {
        int mid = (lo + hi) / 2;
        if (rep->t_end[mid] >= now)
            hi = mid;
        else
            lo = mid + 1;
    }
    if (rep->t_end[lo] > now)
        serve_execute((rep->t_end[lo] - now) * speed_flops);
    return n->life.gen != gen ? 0 : lo;
}

static void replica(int argc, char *argv[])
{
    (void)argc;
    (void)argv;
    llm_replica *rep = sg_actor_self_get_data();
    eng_node *n = rep->node;
    eng_pool *p = n->pool;
    llm_pool *lp = lp_of(p);
    llm_sched *s = rep->sched;
    llm_step *st = rep->step;
    double now = simgrid_get_clock();

    for (;;) {
        llm_req *q;
        while ((q = pop_pending(rep))) {
            if (q->prefilled) { /* its prompt's KV came from a prefill replica */
                llm_sched_add_landed(s, &q->seq, q->resv, q->seq.prompt_tokens, 1);
                free(q->resv);
                q->resv = NULL;
            } else {
                llm_sched_add(s, &q->seq);
            }
            q->prefilled = 0;
        }
        if (rep->wq_head || rep->n_drops)
            grant_reservations(rep, now);
        int held = llm_sched_waiting(s) + llm_sched_running(s);
        /* a draining replica stays while KV transfers from or to it run */
        if (n->life.state == NODE_DRAINING && held + rep->n_out + rep->n_in == 0) {
            rep->actor = NULL;
            life_worker_exited(n);
            return;
        }
        if (n->fault.gpu_error && held > 0) { /* every request answers 500 at once */
            llm_req *all[64];
            int k;
            while ((k = take_all(rep, all, 64)) > 0)
                for (int i = 0; i < k; i++)
                    end_held(p, n, all[i], LB_HTTP_5XX, B_FAILED, now, now);
            kv_set(rep, now);
            sync_view(n);
            eng_drain_balancer_queue(p, now);
            continue;
        }
        if (llm_sched_schedule(s, st) == 0) {
            kv_set(rep, now);
            sync_view(n);
            rep->idle = 1;
            sg_sem_acquire(rep->wake);
            /* let the other actors of this instant run first: requests
             * arriving together reach the same step, as an engine's loop
             * picks up all that arrived while it waited */
            sg_actor_yield();
            now = simgrid_get_clock();
            continue;
        }
        kv_set(rep, now);
        sync_view(n);
        lp->preemptions += (unsigned long)st->n_preempted;
        rep->ln->preemptions += (unsigned long)st->n_preempted;
        for (int i = 0; i < st->n; i++)
            rep->chunks[i] = (llm_chunk){ .n = st->items[i].n_new, .c = st->items[i].context,
                                          .decode = st->items[i].decode };
        int k = plan(rep, st, now);
        rep->trace_in0 = rep->n_in;
        rep->n_in_log = 0;
        rep->run_t0_s = now;
        k = run_horizon(rep, k);
        if (k == 0) {
            rep->actor = NULL;
            return; /* the node crashed: fail_running has dealt with what it held */
        }
        if (rep->noise)
            llm_noise_commit(rep->noise, k);
        rep->run_t0_s = -1;
        int ended = finish_horizon(rep, k);
        now = rep->t_end[k];
        sync_view(n);
        if (ended)
            eng_drain_balancer_queue(p, now);
    }
}

/* Starts rep's actor (its engine) on its node, its KV blocks counted as
 * capacity from now. */
static void rep_start(llm_replica *rep, double now)
{
    eng_node *n = rep->node;
    rep->idle = 0;
    rep->in_horizon = 0;
    rep->run_t0_s = -1;
    rep->exec = NULL;
    kv_advance(rep, now);
    rep->counted = 1;
    sg_actor_t a = sg_actor_init(n->name, n->host);
    sg_actor_set_data(a, rep);
    rep->actor = a;
    sg_actor_start(a, replica, 0, NULL); /* not a daemon: see serve/batch.c */
}

static void start(eng_node *n)
{
    llm_node *ln = ln_of(n);
    double now = simgrid_get_clock();
    int started = 0;
    for (int i = 0; i < ln->n_reps; i++) {
        if (ln->reps[i].lost > 0)
            continue; /* a GPU of it is still lost: it stays down */
        rep_start(&ln->reps[i], now);
        started++;
    }
    n->work.workers_alive = started;
}

/* rep's engine died at now (its node crashed or its drain timed out, or
 * it lost a GPU): its KV cache is gone, so each request it held fails its
 * attempt; a retry, as the balancer's rules allow, starts over with a full
 * prefill (a decode replica's at its prefill pool). */
static void fail_rep_held(llm_replica *rep, double now)
{
    eng_node *n = rep->node;
    llm_pool *lp = lp_of(n->pool);
    if (rep->run_t0_s >= 0)
        for (int g = 0; g < lp->tp; g++)
            eng_account_busy(n->pool, n, rep->run_t0_s, now);
    rep->run_t0_s = -1;
    llm_req *all[64];
    int k;
    while ((k = take_all(rep, all, 64)) > 0)
        for (int j = 0; j < k; j++) {
            eng_req *r = all[j]->r;
            /* the prompt tokens its cache held: all of them on a decode
             * replica (computed at the prefill pool), else those computed */
            int done = lp->role == SC_ROLE_DECODE ? all[j]->seq.prompt_tokens
                       : all[j]->seq.computed < all[j]->seq.prompt_tokens
                           ? all[j]->seq.computed
                           : all[j]->seq.prompt_tokens;
            free_seq(all[j]);
            eng_lb_release(n->pool, r, n->index, now - r->arrival_s, LB_ERROR, now);
            if (lp->role == SC_ROLE_DECODE) {
                ENG_NOTIFY(llm_lost, n, r, done, decode_retried(r, now));
                decode_failed(n->pool, r, now);
            } else {
                ENG_NOTIFY(llm_lost, n, r, done,
                           eng_retry_allowed(n->pool, r, now, eng_world.sc->lb.retry_on_error));
                eng_attempt_failed(n->pool, r, now);
            }
        }
    drop_reservations(rep);
    kv_set(rep, now);
}

/* The node's replicas all at once: every transfer first, then what each
 * replica held. */
static void fail_running(eng_node *n, double now)
{
    llm_node *ln = ln_of(n);
    for (int i = 0; i < ln->n_reps; i++)
        fail_rep_xfers(&ln->reps[i], now);
    for (int i = 0; i < ln->n_reps; i++)
        fail_rep_held(&ln->reps[i], now);
    sync_view(n);
}

static void reset(eng_node *n)
{
    llm_node *ln = ln_of(n);
    double now = simgrid_get_clock();
    stats_restart(ln);
    for (int i = 0; i < ln->n_reps; i++) {
        llm_replica *rep = &ln->reps[i];
        kv_advance(rep, now);
        rep->counted = 0;
        rep->idle = 0;
        rep->in_horizon = 0;
        rep->actor = NULL; /* killed with the host */
        rep->exec = NULL;
    }
}

/* ---- a lost GPU (gpu_failure): its replica down, the node's others on ---- */

/* rep lost a GPU at now, its node still up: its engine dies (vLLM's
 * executor shuts down when a worker dies: vllm/v1/executor/
 * multiproc_executor.py), its KV cache with it; what it held fails over as
 * after a crash. */
static void rep_down(llm_replica *rep, double now)
{
    eng_node *n = rep->node;
    rep->gen++;
    if (!rep->actor)
        return; /* not running (the node is down or draining out) */
    if (rep->exec) /* the horizon's execution beside its wait */
        sg_exec_cancel(rep->exec);
    rep->exec = NULL;
    sg_actor_t a = rep->actor;
    rep->actor = NULL;
    sg_actor_kill(a);
    rep->idle = 0; /* nothing to wake: its transfers' ends must not post to it */
    rep->in_horizon = 0;
    long held = llm_sched_blocks_used(rep->sched);
    fail_rep_xfers(rep, now);
    fail_rep_held(rep, now);
    /* the cache is gone, every block free again: used + free = capacity */
    long used = llm_sched_blocks_used(rep->sched), free_blocks = llm_sched_blocks_free(rep->sched);
    long cap = lp_of(n->pool)->cfg.num_blocks;
    if (used != 0 || used + free_blocks != cap || llm_sched_check(rep->sched) != 0) {
        fprintf(stderr, "fleetsim: internal error: replica %s#%d after losing its KV cache: "
                "%ld blocks used + %ld free, capacity %ld\n", n->name, rep->index, used,
                free_blocks, cap);
        abort();
    }
    kv_advance(rep, now);
    rep->counted = 0;
    sync_view(n);
    life_worker_exited(n);
    eng_event(now, "replica_down", n->name,
              "replica %d: GPU lost; KV cache lost: %ld blocks freed (used %ld + free %ld = %ld)",
              rep->index, held, used, free_blocks, cap);
}

typedef struct {
    llm_replica *rep;
    int gen, node_gen;
    double load_s;
} reload_arg;

/* Reads rep's weights again, then starts its engine, unless it went down
 * again or its node did meanwhile. */
static void reload(int argc, char *argv[])
{
    (void)argc;
    (void)argv;
    reload_arg *a = sg_actor_self_get_data();
    llm_replica *rep = a->rep;
    int gen = a->gen, node_gen = a->node_gen;
    double load_s = a->load_s;
    free(a);
    if (load_s > 0)
        sg_actor_sleep_for(load_s);
    eng_node *n = rep->node;
    eng_node_state st = n->life.state;
    if (rep->gen != gen || n->life.gen != node_gen || rep->lost > 0 || rep->actor ||
        (st != NODE_READY && st != NODE_DRAINING))
        return;
    double now = simgrid_get_clock();
    rep_start(rep, now);
    n->work.workers_alive++;
    eng_event(now, "replica_up", n->name, "replica %d", rep->index);
    sync_view(n);
    eng_drain_balancer_queue(n->pool, now);
}

/* GPUs [gpu, gpu + count) of node n lost (on) or back (off). When they
 * reach every replica of the node, returns 1 and leaves the node to its
 * caller (a crash: the node's lifecycle). Else takes the replicas holding
 * them down, or, once no fault holds a GPU of one, reads its weights again
 * (lifecycle.load_bandwidth) and starts it; returns 0. */
static int gpus_lost(eng_node *n, int gpu, int count, int on, double now)
{
    llm_node *ln = ln_of(n);
    int tp = lp_of(n->pool)->tp;
    int first = gpu / tp, last = (gpu + count - 1) / tp;
    if (last >= ln->n_reps)
        last = ln->n_reps - 1;
    if (first > last || (first == 0 && last == ln->n_reps - 1))
        return 1;
    for (int i = first; i <= last; i++) {
        llm_replica *rep = &ln->reps[i];
        if (on) {
            if (rep->lost++ == 0)
                rep_down(rep, now);
            continue;
        }
        if (rep->lost == 0 || --rep->lost > 0)
            continue;
        eng_node_state st = n->life.state;
        if (st != NODE_READY && st != NODE_DRAINING)
            continue; /* start() starts it with the node */
        reload_arg *a = malloc(sizeof *a);
        if (!a)
            continue;
        *a = (reload_arg){ .rep = rep, .gen = rep->gen, .node_gen = n->life.gen,
                           .load_s = sc_weights_load_s(n->pool->cfg, tp) };
        sg_actor_t act = sg_actor_init("reload", n->host);
        sg_actor_set_data(act, a);
        sg_actor_start(act, reload, 0, NULL);
    }
    return 0;
}

static double busy_s(const eng_node *n, double now)
{
    const llm_node *ln = ln_of(n);
    double b = n->work.busy_gpu_s;
    int tp = lp_of(n->pool)->tp;
    for (int i = 0; i < ln->n_reps; i++)
        if (ln->reps[i].run_t0_s >= 0)
            b += tp * (now - ln->reps[i].run_t0_s);
    return b;
}

static void account_end(eng_node *n, double end_s)
{
    llm_node *ln = ln_of(n);
    for (int i = 0; i < ln->n_reps; i++) {
        llm_replica *rep = &ln->reps[i];
        if (rep->run_t0_s >= 0)
            for (int g = 0; g < lp_of(n->pool)->tp; g++)
                eng_account_busy(n->pool, n, rep->run_t0_s, end_s);
        kv_advance(rep, end_s);
    }
}

static int running(const eng_node *n, int gpu)
{
    const llm_node *ln = ln_of(n);
    return llm_sched_running(ln->reps[gpu / lp_of(n->pool)->tp].sched);
}

static void census(const eng_node *n, unsigned long *requests, unsigned long *per_pool)
{
    const llm_node *ln = ln_of(n);
    for (int i = 0; i < ln->n_reps; i++) {
        const llm_sched *s = ln->reps[i].sched;
        for (int j = 0; j < llm_sched_running(s); j++)
            eng_census_add(((llm_req *)llm_sched_running_at(s, j))->r, n->pool, requests,
                           per_pool);
        for (const llm_seq *w = llm_sched_waiting_head(s); w; w = w->next)
            eng_census_add(((const llm_req *)w)->r, n->pool, requests, per_pool);
        for (const llm_seq *w = llm_sched_landed_head(s); w; w = w->next)
            eng_census_add(((const llm_req *)w)->r, n->pool, requests, per_pool);
        for (const llm_req *q = ln->reps[i].pending; q; q = q->next_pending)
            eng_census_add(q->r, n->pool, requests, per_pool);
        /* KV caches on their way to a decode replica: still the prefill pool's */
        for (const kv_xfer *x = ln->reps[i].out; x; x = x->out_next)
            eng_census_add(x->q->r, n->pool, requests, per_pool);
    }
}

static int queued(const eng_node *n)
{
    const llm_node *ln = ln_of(n);
    int k = n->work.q.len;
    for (int i = 0; i < ln->n_reps; i++)
        k += llm_sched_waiting(ln->reps[i].sched) + ln->reps[i].n_pending;
    return k;
}

/* The interval's end: running and waiting sequences now. */
static void close_interval(eng_pool *p, size_t i)
{
    llm_pool *lp = lp_of(p);
    int run = 0, wait = 0;
    for (int j = 0; j < p->n_hosts; j++) {
        const eng_node *n = &p->nodes[j];
        const llm_node *ln = ln_of(n);
        if (n->life.state != NODE_READY && n->life.state != NODE_DRAINING)
            continue;
        for (int k = 0; k < ln->n_reps; k++) {
            run += llm_sched_running(ln->reps[k].sched);
            wait += llm_sched_waiting(ln->reps[k].sched) + ln->reps[k].n_pending;
        }
    }
    lp->run_per_interval[i] = run;
    lp->wait_per_interval[i] = wait;
}

static void fill(rp_latency *l, const sim_hist *h)
{
    if (sim_hist_count(h) == 0) {
        *l = (rp_latency){ 0 };
        return;
    }
    l->mean = sim_hist_mean(h);
    l->p50 = sim_hist_quantile(h, 0.5);
    l->p90 = sim_hist_quantile(h, 0.9);
    l->p99 = sim_hist_quantile(h, 0.99);
    l->p999 = sim_hist_quantile(h, 0.999);
    l->max = sim_hist_max(h);
}

static void collect(eng_pool *p, rp_results *out)
{
    llm_pool *lp = lp_of(p);
    rp_pool *rp = &out->pools[p->id];
    rp_llm *o = calloc(1, sizeof *o);
    rp->llm = o;
    double end = eng_world.sc->duration_s;
    double span = end - eng_world.sc->warmup_s;
    o->gpu = strdup(p->cfg->gpu.name);
    o->tensor_parallel = lp->tp;
    o->expert_parallel = p->cfg->expert_parallel > 1 ? p->cfg->expert_parallel : 0;
    o->replicas_per_node = lp->replicas_per_node;
    o->kv_blocks_per_replica = lp->cfg.num_blocks;
    o->block_size = lp->cfg.block_size;
    o->max_num_batched_tokens = lp->cfg.max_num_batched_tokens;
    o->max_num_seqs = lp->cfg.max_num_seqs;
    o->kv_bytes_per_token = llm_kv_bytes_per_token(&lp->perf);
    o->weight_bytes = llm_weight_bytes(&lp->perf);
    fill(&o->ttft, lp->ttft);
    fill(&o->tpot, lp->tpot);
    fill(&o->itl, lp->itl);
    fill(&o->e2e, lp->e2e);
    o->finished = lp->finished;
    o->good = lp->good;
    o->input_tokens = lp->in_tokens;
    o->output_tokens = lp->out_tokens;
    o->input_tps = span > 0 ? lp->in_tokens / span : 0;
    o->output_tps = span > 0 ? lp->out_tokens / span : 0;
    double used = 0, cap = 0;
    for (size_t i = 0; i < eng_world.n_intervals; i++) {
        used += lp->kv_used_per_interval[i];
        cap += lp->kv_cap_per_interval[i];
    }
    o->kv_usage_mean = cap > 0 ? used / cap : 0;
    o->kv_usage_max = lp->kv_max;
    o->preemptions = lp->preemptions;
    o->steps = lp->steps;
    o->cost_per_mtok = lp->out_tokens_all > 0 ? rp->cost / (lp->out_tokens_all / 1e6) : 0;
    static const char *const roles[] = { NULL, "prefill", "decode" };
    o->role = roles[lp->role] ? strdup(roles[lp->role]) : NULL;
    if (lp->decode) {
        o->decode_pool = strdup(lp->decode->cfg->name);
        o->decode_router = strdup(lp->router_name);
        o->kv_transfers = lp->kv_xfers;
        o->kv_transfers_failed = lp->kv_xfers_failed;
        o->kv_transfers_unstarted = lp->kv_unstarted_failed;
        o->kv_transfer_bytes = lp->kv_xfer_bytes;
        fill(&o->kv_transfer_s, lp->kv_xfer_s);
        /* requests each decode replica was sent, in node then replica order */
        eng_pool *d = lp->decode;
        for (int j = 0; j < d->n_hosts; j++)
            o->n_kv_per_replica += ln_of(&d->nodes[j])->n_reps;
        o->kv_per_replica = calloc((size_t)(o->n_kv_per_replica ? o->n_kv_per_replica : 1),
                                   sizeof *o->kv_per_replica);
        for (int k = 0; k < lp->n_rviews && k < o->n_kv_per_replica; k++)
            o->kv_per_replica[k] = lp->kv_per_replica[k];
    }
    for (int j = 0; j < p->n_hosts; j++) {
        const llm_node *ln = ln_of(&p->nodes[j]);
        for (int k = 0; k < ln->n_reps; k++) {
            o->prefix_queries += llm_sched_prefix_queries(ln->reps[k].sched);
            o->prefix_hits += llm_sched_prefix_hits(ln->reps[k].sched);
        }
    }
    for (size_t i = 0; i < out->n_samples; i++) {
        rp_pool_sample *ps = &out->samples[i].pools[p->id];
        ps->kv_usage = lp->kv_cap_per_interval[i] > 0
                           ? lp->kv_used_per_interval[i] / lp->kv_cap_per_interval[i]
                           : 0;
        ps->running = lp->run_per_interval[i];
        ps->waiting = lp->wait_per_interval[i];
    }
}

void serve_llm_node_stats_get(const eng_node *n, serve_llm_node_stats *out)
{
    const llm_node *ln = ln_of(n);
    const llm_pool *lp = lp_of(n->pool);
    *out = (serve_llm_node_stats){ 0 };
    for (int i = 0; i < ln->n_reps; i++) {
        const llm_sched *s = ln->reps[i].sched;
        out->running += llm_sched_running(s);
        /* with the requests whose KV cache is on its way or waits for
         * blocks (vLLM's waiting queue holds them) */
        out->waiting += llm_sched_waiting(s) + ln->reps[i].n_pending + ln->reps[i].n_in;
        out->kv_usage += lp->cfg.num_blocks > 0
                             ? (double)llm_sched_blocks_used(s) / (double)lp->cfg.num_blocks
                             : 0;
    }
    if (ln->n_reps > 0)
        out->kv_usage /= ln->n_reps;
    out->preemptions = ln->preemptions;
    out->prompt_tokens = ln->prompt_tokens;
    out->generation_tokens = ln->generation_tokens;
    out->finished = ln->finished;
    node_prefix(ln, &out->prefix_queries, &out->prefix_hits);
    out->prefix_queries -= ln->prefix_queries_base;
    out->prefix_hits -= ln->prefix_hits_base;
}

const serve_ops serve_llm = {
    .name = "llm",
    .init_node = init_node,
    .free_node = free_node,
    .start = start,
    .accepted = accepted,
    .wake_idle = wake_idle,
    .fail_running = fail_running,
    .reset = reset,
    .busy_s = busy_s,
    .account_end = account_end,
    .running = running,
    .census = census,
    .queued = queued,
    .init_pool = init_pool,
    .free_pool = free_pool,
    .close_interval = close_interval,
    .collect = collect,
    .llm_stats = serve_llm_node_stats_get,
    .gpus_lost = gpus_lost,
};
