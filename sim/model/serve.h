/*
 * serve.h - the server model seam: how a node serves the requests its
 * balancer sent it. A pool's model names its server (`batch`: dynamic
 * batches of whole requests, Triton-style; `llm`: a token-level replica with
 * continuous batching); the rest of the engine reaches it only through the
 * serve_* wrappers below, as it reaches a balancer only through lb_pick.
 *
 * Contract. The engine owns the node's queue (n->q: requests accepted and
 * not yet taken by the server, which the queue_capacity check and the
 * metrics count) and its life (lifecycle.c). A server model owns its actors
 * and whatever it holds beyond the queue; it ends each request it takes
 * exactly once through eng_lb_release + eng_req_end / pipe_stage_done, and
 * calls life_worker_exited once per actor that leaves a draining node.
 * A crash reaches it as fail_running (then reset) at the instant the node's
 * incarnation n->gen changes: an actor that resumes into a newer incarnation
 * returns without touching what it held.
 */
#ifndef FLEETSIM_SERVE_H
#define FLEETSIM_SERVE_H

#include "model.h"

/* What node n of an LLM pool (serve_llm) shows on its vllm:* series
 * (observe.c), summed over its replicas: the counters are since its host
 * last came up, as a restarted vLLM process starts them again. */
typedef struct {
    int running, waiting;             /* sequences in the replicas' schedulers */
    double kv_usage;                  /* KV blocks held / all blocks, mean over replicas */
    unsigned long preemptions;
    double prompt_tokens;             /* each request's prompt, at its first token */
    double generation_tokens;         /* output tokens produced */
    unsigned long finished;           /* requests that produced their last token */
    unsigned long prefix_queries;     /* prompt tokens looked up in the prefix cache */
    unsigned long prefix_hits;        /* of those, found */
} serve_llm_node_stats;

typedef struct serve_ops {
    const char *name;
    /* per-node state (n->serve), at build and teardown */
    void (*init_node)(eng_node *n);
    void (*free_node)(eng_node *n);
    /* the node became ready: start its actors (n->workers_alive of them) */
    void (*start)(eng_node *n);
    /* a request was pushed on n->q: wake whoever forms work */
    void (*accepted)(eng_node *n);
    /* the node is draining: idle actors notice and leave */
    void (*wake_idle)(eng_node *n);
    /* the node crashed or its drain timed out at now: each request it runs
     * (not those still in n->q) fails as an attempt (eng_attempt_failed) */
    void (*fail_running)(eng_node *n, double now);
    /* its actors are gone (host off): forget idle and forming state */
    void (*reset)(eng_node *n);
    /* GPU-seconds busy so far, counting work still running at now */
    double (*busy_s)(const eng_node *n, double now);
    /* the run ends at end_s: account work still running */
    void (*account_end)(eng_node *n, double end_s);
    /* requests running on GPU g now (memory metrics) */
    int (*running)(const eng_node *n, int gpu);
    /* each request it holds beyond n->q, for the end-of-run census */
    void (*census)(const eng_node *n, unsigned long *requests, unsigned long *per_pool);
    /* requests waiting at the node: n->q and what the server queued itself
     * (the queue_capacity check, queue metrics, failover's overflow test);
     * NULL: n->q alone. A server that queues beyond n->q calls
     * eng_node_q_sync after each change of those queues, so that the
     * pools' counts follow without a walk */
    int (*queued)(const eng_node *n);
    /* optional, per pool: its own state and results */
    void (*init_pool)(eng_pool *p);
    void (*free_pool)(eng_pool *p);
    void (*close_interval)(eng_pool *p, size_t i);
    void (*collect)(eng_pool *p, rp_results *out);
    /* optional: the node's token-level gauges and counters (LLM servers):
     * what its vllm:* series and the autoscalers' vLLM metrics read */
    void (*llm_stats)(const eng_node *n, serve_llm_node_stats *out);
    /* optional: GPUs [gpu, gpu + count) of node n lost (on = 1), or back
     * (on = 0). 1 when the node's whole server goes down with them (the
     * caller crashes the node); 0 when the server took down only the part
     * holding them (an LLM replica of several on the node) and brings it
     * back itself. Without it: 1 (a batch node is one replica) */
    int (*gpus_lost)(eng_node *n, int gpu, int count, int on, double now);
    /* optional: joules its work drew beyond what SimGrid's energy plugin
     * saw on the host (a server whose work is not SimGrid executions) */
    double (*extra_energy_j)(const eng_node *n);
} serve_ops;

/* The registry: NULL-terminated, and lookup by name (NULL if unknown). */
extern const serve_ops *const serve_registry[];
const serve_ops *serve_find(const char *name);
/* The calling actor runs flops on its host and returns when they are done,
 * as sg_actor_execute with one simcall fewer (serve/batch.c). */
void serve_execute(double flops);

extern const serve_ops serve_batch;
/* fast mode's batch server: batch's batches as fleetsim's own events, and
 * the catch-up it registers as eng_hook.catch_up (serve/batch_fast.c) */
extern const serve_ops serve_batch_fast;
void serve_batch_fast_catch_up(double now);
extern const serve_ops serve_llm;

/* serve_llm's llm_stats, by name for observe/'s exporter */
void serve_llm_node_stats_get(const eng_node *n, serve_llm_node_stats *out);

static inline void serve_init_node(eng_node *n) { n->pool->serve->init_node(n); }
static inline void serve_free_node(eng_node *n) { n->pool->serve->free_node(n); }
static inline void serve_start(eng_node *n) { n->pool->serve->start(n); }
static inline void serve_accepted(eng_node *n) { n->pool->serve->accepted(n); }
static inline void serve_wake_idle(eng_node *n) { n->pool->serve->wake_idle(n); }
static inline void serve_fail_running(eng_node *n, double now)
{
    n->pool->serve->fail_running(n, now);
}
static inline void serve_reset(eng_node *n) { n->pool->serve->reset(n); }
static inline double serve_busy_s(const eng_node *n, double now)
{
    return n->pool->serve->busy_s(n, now);
}
static inline void serve_account_end(eng_node *n, double end_s)
{
    n->pool->serve->account_end(n, end_s);
}
static inline int serve_running(const eng_node *n, int gpu)
{
    return n->pool->serve->running(n, gpu);
}
static inline void serve_census(const eng_node *n, unsigned long *requests,
                                unsigned long *per_pool)
{
    n->pool->serve->census(n, requests, per_pool);
}

static inline int serve_queued(const eng_node *n)
{
    return n->pool->serve->queued ? n->pool->serve->queued(n) : n->work.q.len;
}
static inline void serve_init_pool(eng_pool *p)
{
    if (p->serve->init_pool)
        p->serve->init_pool(p);
}
static inline void serve_free_pool(eng_pool *p)
{
    if (p->serve->free_pool)
        p->serve->free_pool(p);
}
static inline void serve_close_interval(eng_pool *p, size_t i)
{
    if (p->serve->close_interval)
        p->serve->close_interval(p, i);
}
/* 1 with the node's token-level stats in out; 0 for a server without them */
static inline int serve_llm_stats(const eng_node *n, serve_llm_node_stats *out)
{
    if (!n->pool->serve->llm_stats)
        return 0;
    n->pool->serve->llm_stats(n, out);
    return 1;
}
static inline int serve_gpus_lost(eng_node *n, int gpu, int count, int on, double now)
{
    return n->pool->serve->gpus_lost ? n->pool->serve->gpus_lost(n, gpu, count, on, now) : 1;
}
static inline double serve_extra_energy_j(const eng_node *n)
{
    return n->pool->serve->extra_energy_j ? n->pool->serve->extra_energy_j(n) : 0;
}
static inline void serve_collect(eng_pool *p, rp_results *out)
{
    if (p->serve->collect)
        p->serve->collect(p, out);
}

#endif
