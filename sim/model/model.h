/*
 * model.h - the simulated world's state: requests and their FIFOs, nodes,
 * pools, balancer instances, traffic classes, caches and queues, and the
 * one simulation (eng_world) that holds them; with the few operations every layer
 * above uses on that state (random streams, FIFOs, time accounting, the
 * balancer's view of a node, events). Layers above (flow, control, serve,
 * observe, run) change it; nothing here calls up into them.
 * Not for use outside sim/: policies see lb_view, never this.
 */
#ifndef FLEETSIM_MODEL_H
#define FLEETSIM_MODEL_H

#include "options.h"
#include "rate.h"
#include "results.h"
#include "scenario.h"
#include "hist.h"
#include "hooks.h"
#include "lb.h"
#include "lb_priority.h"

#include <simgrid/actor.h>
#include <simgrid/host.h>
#include <simgrid/link.h>
#include <simgrid/semaphore.h>

#include <gsl/gsl_rng.h>

#include <math.h>
#include <stdint.h>
#include <stdio.h>

#define ENG_FLOPS_PER_S 1e9  /* host speed per core: s seconds = s * 1e9 flops */
#define ENG_PSTATES 20        /* speed levels 100%, 95%, ... 5% for slowdowns */
#define ENG_MAX_TRIED 8       /* servers remembered per request for retries */
/* latency histograms: 1 us to 11.6 days, 0.5% relative bin error */
#define HIST_MIN_S 1e-6
#define HIST_MAX_S 1e6
#define HIST_REL_ERR 0.005

typedef struct eng_req {
    struct eng_req *next;
    double arrival_s;
    double deadline_s;     /* client gives up (504); INFINITY if none */
    double lbq_deadline_s; /* balancer queue timeout; INFINITY if none */
    double net_s;          /* network time added to latency */
    double sent_s;         /* the client sent its current attempt (= arrival_s until
                              a client retry; arrival_s stays the first) */
    double stage_s;        /* it reached its current pipeline stage (= sent_s at the first) */
    double net_prev_s;     /* network and cache time of the stages before this one */
    double wan_s;          /* one-way WAN latency to the pool failover sent it to (0) */
    int client_tries;      /* client retries so far (retry_storm) */
    double work;
    unsigned long id;
    int tclass;
    int l7;                /* the L7 balancer routing it (0 without two tiers) */
    int l4_refused;        /* that L7 balancer had failed: the L4's connection
                              to it was refused */
    int stage;             /* its pipeline stage; -1: left a later stage, held for a
                              client retry */
    int in_pool;           /* counted in its pool's in-flight (not while in a queue) */
    int job;               /* 1 + the queue that acknowledged it: its client has its
                              answer, what follows is background work; else 0 */
    double acked_s;        /* a job: when the queue acknowledged it */
    int node;              /* server index in its pool once routed, else -1 */
    int attempts;
    int n_tried;
    int tried[ENG_MAX_TRIED];
    /* LLM requests (0 tokens otherwise): prompt and answer lengths, the
     * prompt's prefix hashes (a trace's, not owned), and when its first
     * token was produced (NAN before; serve/llm.c keeps the latest) */
    int in_tokens, out_tokens;
    const uint64_t *hashes;
    int n_hashes, hash_block_tokens;
    double first_token_s;
    /* waiting at a prefill pool's balancer for a worker while a fault held
     * the pool's workers down (flow/request.c): since when, the fault's
     * record (-1 when not waiting so), and the time so waited in all */
    double outage_since_s, outage_wait_s;
    int outage_rec, outage_cause;
    /* its attempt failed in a KV handoff that a fault failed (serve/llm.c,
     * eng_handoff_fault): the fault and its record, until its next attempt
     * is sent (-1: none) */
    int handoff_cause, handoff_rec;
} eng_req;

typedef struct {
    eng_req *head, *tail;
    int len;
} eng_fifo;

typedef enum {
    NODE_OFF = 0,          /* no node (never provisioned, or terminated) */
    NODE_PROVISIONING,
    NODE_STARTING,
    NODE_LOADING,
    NODE_WARMING,
    NODE_READY,
    NODE_DRAINING,
    NODE_FAILED            /* crashed; recovers through the lifecycle */
} eng_node_state;

extern const char *const eng_state_names[];

typedef struct eng_pool eng_pool;

/* One balancer's state for one pool: its policy and what it sees of the
 * servers. With a two-tier front end each L7 balancer has its own. */
typedef struct {
    lb *balancer;
    lb_server_view *servers;
    lb_view view;
    gsl_rng *rng;          /* its own stream (the pool's lb_rng for the first) */
    /* failover's pool health without a walk: the servers whose node is not
     * off and that are up and not down (healthy[j] 1 each), kept by
     * eng_view_sync */
    unsigned char *healthy;
    int n_healthy;
    /* failover's overflow test without a walk: per server, LBI_UP (up and
     * not down) and LBI_AT_MAX (that, at max_conns), kept by eng_lb_changed
     * and eng_lbi_recount (only in pools some class may overflow from:
     * NULL elsewhere); how many of each; and the queued requests of the
     * LBI_UP nodes summed (serve_queued), kept by eng_node_q_sync */
    unsigned char *sat;
    int n_up, n_at_max;
    long q_up;
} eng_lbi;

#define LBI_UP 1u
#define LBI_AT_MAX 2u

/* An L7 balancer of a two-tier front end, as the L4 balancer sees it. */
typedef struct {
    const sc_l7 *cfg;
    int down;              /* injected lb_failure */
    double down_since_s;
    int cause, fault_rec;
    unsigned long routed, refused; /* requests the L4 sent it; of those, failed as it was down */
    unsigned long cut;     /* requests it had passed on, failed when it went down */
    /* every time it went down, with the fault and its record: the client
     * connections it held then were cut (tier_cut) */
    double *down_at_s;
    int *down_cause, *down_rec;
    int n_down;
} eng_l7;
typedef struct eng_node eng_node;

/* A cluster node of a pool's node_pool: pods_per_node slots for replicas. */
typedef enum {
    CNODE_OFF = 0,         /* not in the node group */
    CNODE_PROVISIONING,    /* asked for by the cluster autoscaler, not ready yet */
    CNODE_READY            /* pods can be scheduled on it */
} eng_cnode_state;

typedef struct {
    eng_cnode_state state;
    int pods;              /* replicas bound to it */
    double unneeded_since_s; /* first scan that found it empty, or -1 */
    char name[112];
} eng_cnode;

struct eng_node {
    /* first, what a request reads or writes (one to three cache lines on a
     * large fleet rather than five) */
    eng_pool *pool;
    int index;             /* within the pool = server number for the balancer */
    int gpus;              /* its shape: GPUs (SimGrid cores) */
    /* its host's power state and speed as last set (eng_node_set_pstate),
     * and whether a speed profile also scales it (read from SimGrid then):
     * fast mode's batch server reads these rather than the host */
    int pstate;
    int speed_profiled;
    double speed_flops;
    gsl_rng *rng;          /* its own stream, made at its first draw: eng_node_rng */
    struct {               /* what the balancer knows of it */
        int registered;    /* in the balancer's server list (ready, not draining) */
        int hc_up;         /* active health checks say up (1 without checks) */
        int hc_fails, hc_oks;
    } health;
    struct {               /* injected faults acting on it (control/chaos.c) */
        int gpu_error;     /* up but every request errors */
        int crash_holds;   /* crash faults holding it down now (recovers at 0) */
        int cause;         /* scenario fault acting on it now, or -1 */
        int fault_rec;     /* its entry in the results' faults, or -1 */
    } fault;
    struct {               /* the work it was given and did */
        eng_fifo q;        /* accepted, not yet taken by its server */
        int q_counted;     /* serve_queued as eng_node_q_sync last saw it */
        void *serve;       /* its server model's state (serve.h) */
        int workers_alive; /* its server's actors still running */
        double busy_gpu_s;
        double *busy_series; /* busy GPU-seconds per interval (NULL when the pool
                                keeps none, or until it first leaves OFF) */
        unsigned long accepted; /* requests sent to it, ever */
        /* node_network_{receive,transmit}_bytes_total since it last came up:
         * bytes_in of each request it accepted, bytes_out of each it completed */
        double net_rx_bytes, net_tx_bytes;
    } work;
    struct {               /* its life (control/lifecycle.c) */
        eng_node_state state;
        int gen;           /* incarnation: bumped at each crash or termination */
        double up_since_s; /* when it last left OFF (for GPU-hours), or -1 */
        double up_total_s; /* provisioned time so far */
        double ready_total_s;
        double ready_since_s;
        double serving_since_s; /* ready or draining since (can run batches); -1 if not */
        double start_s;    /* entered STARTING (Kubernetes status.startTime); NAN before */
        double ready_change_s; /* last Ready transition; NAN before the first */
        /* node_pool only */
        int cnode;         /* cluster node it is bound to, or -1 */
        int unscheduled;   /* pending for lack of a node (state PROVISIONING, host off) */
    } life;
    /* then the rest */
    const sc_power *power; /* and power draw and price */
    int new_shape;         /* a slot of the pool's rollout target shape */
    sg_host_t host;
    char name[96];
    unsigned long rng_stream;
    struct {               /* metrics-server-like sample: the mean over the last window */
        int m_has;
        double m_time_s, m_util, m_rps, m_queue;
        double m_busy_prev, m_accepted_prev;
        /* LLM pools: the node's vllm:* gauges at the sample's end, as a
         * Prometheus scrape reads them (instant values, not window means) */
        double m_vllm_running, m_vllm_waiting, m_vllm_kv;
    } sample;
};

struct eng_pool {
    const sc_pool *cfg;
    const sc_model *model;
    const struct serve_ops *serve; /* how its nodes serve (serve.h) */
    void *serve_state;      /* and that server model's per-pool state */
    int id;
    eng_node *nodes;       /* n_hosts: every host the pool may use */
    int n_hosts;
    int target;            /* desired replicas */
    eng_lbi *lbi;          /* per L7 balancer (one without two tiers) */
    eng_fifo lbq;
    int lbq_capacity;
    double lbq_timeout_s;
    double route_latency_s, route_bw_Bps;
    double extra_latency_s; /* injected one-way latency */
    int partitioned;        /* injected: balancer cannot reach the nodes (how many
                               partition and link_down faults say so) */
    int links_down;         /* injected: link_down faults acting; its links are off */
    int links_cause, links_rec; /* the latest of them and its results' entry, or -1 */
    double error_prob;      /* injected: each attempt fails with this probability */
    int lb_down;            /* injected: balancer failed */
    double bw_factor;       /* injected: links at this share of their bandwidth (1) */
    int metrics_stale;      /* injected: metrics sampler and scraper get no samples */
    int capacity_out;       /* injected: faults leaving no capacity to add nodes */
    gsl_rng *lb_rng;
    gsl_rng *fault_rng;
    rp_counts counts;
    double *busy_per_interval;
    double *serving_per_interval; /* GPU-seconds of ready or draining nodes */
    int node_series;        /* its nodes keep busy_series (the report's heatmap) */
    int replicas_min, replicas_max;
    /* its nodes now ready, and provisioning to warming: kept by
     * eng_node_set_state (eng_pool_recount after a direct set up) */
    int n_ready, n_starting;
    int n_on;               /* its nodes not off, kept as n_ready */
    int n_draining;         /* its nodes draining, kept as n_ready */
    int n_old;              /* slots 0..n_old-1 have the pool's shape; the rest the rollout's */
    int rolling;            /* the rollout began: new replicas take new-shape slots */
    struct as *scaler;      /* NULL = fixed size */
    void *as_pods, *as_custom; /* the autoscaler's view arrays (n_hosts pods) */
    void *as_llm;           /* an autoscaled LLM pool's profile and observed load
                               (control/autoscaling.c); NULL otherwise */
    double as_last_s;       /* previous sync */
    unsigned long as_last_arrivals;
    int cause, fault_rec;   /* pool-wide fault acting now (partition, ...), or -1 */
    int *hc_silent;         /* health checker's scratch: nodes that did not answer */
    double *dw_ring;        /* dynamic weights: busy seconds per node and tick */
    double *base_weight;    /* the configured weights, for `restore` */
    unsigned long arrivals; /* requests routed to this pool, ever */
    unsigned long failover_in; /* of those, other classes' requests sent here by failover */
    double egress_bytes;    /* response bytes of the requests it answered in time */
    /* requests in the pool (at the balancer, queued or running), and their
     * time integral since the last autoscaler sync: mean concurrency (KPA) */
    int inflight;
    double conc_area, conc_t;
    /* node_pool only: the cluster nodes and their autoscaler */
    eng_cnode *cnodes;      /* node_pool.max_nodes */
    int n_cnodes;
    int pending;            /* replicas unscheduled now */
    double ca_last_up_s;    /* the cluster autoscaler's last scale-up */
    gsl_rng *ca_rng;        /* node provisioning delays */
};

typedef struct {
    const sc_traffic *cfg;
    int id;
    eng_pool *pool;        /* the first stage of its pipeline */
    const sc_pipeline *pipe;
    gsl_rng *rng;
    gsl_rng *tok_rng;      /* token counts of its LLM requests (NULL otherwise) */
    sim_rate *rate;
    double net_s;
    double bytes;          /* request + response size, for bandwidth cuts */
    const sc_fault *retry; /* active retry storm: its clients resend failures */
    rp_counts measured;    /* its requests that arrived after warm-up */
    sim_hist *latency;
    /* traffic.<c>.failover (NULL without): the priority level's draws, and
     * scratch for each request's choice (per pool and per level) */
    gsl_rng *fo_rng;
    int *fo_hosts, *fo_healthy, *fo_load;
    lb_priority_level *fo_levels;
} eng_class;

/* A cache stage (pipeline.c). */
typedef struct {
    const sc_cache *cfg;
    gsl_rng *rng;
    int down;              /* injected: every lookup misses */
    int cause, fault_rec;  /* the fault acting on it now, or -1 */
    unsigned long hits, misses;
} eng_cache;

/* An asynchronous queue (a broker) in front of its consumer pool (pipeline.c). */
typedef struct {
    const sc_queue *cfg;
    eng_pool *consumer;
    eng_fifo q;            /* backlog, oldest first */
    int down;              /* injected: broker down, nothing published or delivered */
    int cause, fault_rec;  /* the fault acting on it now, or -1 */
    unsigned long published, delivered, refused;
    unsigned long processed, lost; /* jobs it acknowledged: done, or failed after */
    unsigned long redelivered; /* deliveries that failed at the connection and came back */
    int stalled;           /* a delivery came back during deliver(): stop there */
    sim_hist *lag;         /* acknowledgement to the end of the last stage, processed jobs */
    int max_backlog;
    double *backlog_per_interval; /* backlog at each interval's end */
} eng_queue;

/* The whole simulation; one per process (SimGrid is a singleton). */
typedef struct {
    const sc_scenario *sc;
    eng_pool *pools;
    eng_class *classes;
    eng_req *free_list;
    eng_req **blocks;
    size_t n_blocks;
    unsigned long next_id;
    unsigned long live;
    unsigned long attempts, attempt_errors;
    rp_counts all, measured;
    sim_hist *latency;
    sim_hist *interval_latency;
    size_t n_intervals;
    size_t n_closed;       /* intervals the sampler has closed */
    double stopped_at_s;   /* a stop request ended the run here; -1 if not */
    double *offered;
    unsigned long *done[4];
    rp_results *out;
    int progress;
    FILE *trace_steps;         /* --trace-steps (serve/llm.c writes it); NULL when off */
    double wall0;
    double last_progress_wall;
    sg_host_t balancer_host;
    eng_cache *caches;
    eng_queue *queues;
    /* the L4 balancer of a two-tier front end (NULL without) and the L7s */
    int n_l7;
    eng_l7 *l7;
    lb *l4;
    lb_server_view *l4_servers;
    lb_view l4_view;
    gsl_rng *l4_rng;
} eng_sim;

extern eng_sim eng_world;

enum { B_COMPLETED, B_REJECTED, B_FAILED, B_TIMED_OUT };

/* Fast mode: the end of the arrival quantum holding instant t (the
 * multiples of simulation.arrival_quantum, the same instants for every
 * class and for the batch server's clock), at most the run's duration. */
static inline double eng_quantum_end(double t)
{
    double q = eng_world.sc->simulation.arrival_quantum_s;
    return fmin(fmax(ceil(t / q) * q, t), eng_world.sc->duration_s);
}

/* The interval of the time series holding instant t. */
static inline size_t eng_interval_of(double t)
{
    /* SimGrid's clock lands a hair before round times (29.999999999999957
     * for a sleep until 30): such an instant belongs to the next interval */
    double i = floor(t / eng_world.sc->interval_s + 1e-9);
    if (i < 0)
        return 0;
    if (i >= (double)eng_world.n_intervals)
        return eng_world.n_intervals - 1;
    return (size_t)i;
}

double eng_draw_unit(const sc_dist *d, gsl_rng *rng);
/* Random streams. Everything that draws has a generator of its own,
 * eng_stream_rng(seed, eng_stream(family, index)), so no two consumers
 * share a sequence and adding one changes no other's draws. A family's
 * stream is its base + the index (a traffic class, a pool, a node slot...),
 * and every index stays below the family's span (checked by eng_stream;
 * node slots by the loader's SC_MAX_NODE_SLOTS). The bases are part of
 * the results: changing one changes what that family draws. The four from
 * ENG_STREAM_RANDOM_CRASH on once shared a base with another family (a
 * random_crash fault drew a pipeline cache's numbers, an L7 balancer a
 * pool's autoscaler's, the L4 balancer class 0's token lengths, a prefill
 * pool's decode router a failover class's) and were moved apart. */
typedef enum {
    ENG_STREAM_ARRIVALS,     /* traffic class c */
    ENG_STREAM_LB,           /* pool k's balancer (its first, or only, L7) */
    ENG_STREAM_NODE,         /* node slot, numbered across pools */
    ENG_STREAM_FAULT,        /* pool k's error-rate draws */
    ENG_STREAM_CACHE,        /* pipeline cache i */
    ENG_STREAM_NODE_START,   /* pool k's cluster autoscaler's node starts */
    ENG_STREAM_TOKENS,       /* traffic class c's token lengths */
    ENG_STREAM_FAILOVER,     /* traffic class c's failover draws */
    ENG_STREAM_LLM_NOISE,    /* LLM replica: 1e9 x pool + 1000 x node + replica */
    ENG_STREAM_RANDOM_CRASH, /* random_crash fault's (fault, node) actors, in order */
    ENG_STREAM_L7,           /* pool k's L7 balancer i >= 1: 1000 x k + i */
    ENG_STREAM_L4,           /* the L4 balancer in front of the L7s (index 0) */
    ENG_STREAM_PD_ROUTER,    /* prefill pool k's decode router */
    ENG_STREAM_LLM_NOISE_SLOW, /* LLM replica's slow step noise: as ENG_STREAM_LLM_NOISE */
    ENG_N_STREAMS
} eng_stream_family;
unsigned long eng_stream(eng_stream_family f, unsigned long index);
unsigned long eng_stream_span(eng_stream_family f);
gsl_rng *eng_stream_rng(unsigned long seed, unsigned long stream);
/* Node n's random stream, made at its first draw (a generator's state is
 * 5 KB: a pool of 10,000 slots that runs 10 nodes makes 10) and the same
 * draws as one made at the start, as nothing draws from it before. */
gsl_rng *eng_node_rng(eng_node *n);
void eng_fifo_push(eng_fifo *f, eng_req *r);
eng_req *eng_fifo_pop(eng_fifo *f);
void eng_fifo_push_head(eng_fifo *f, eng_req *r); /* back where a pop took it */
/* A request entered (+1) or left (-1) the pool at now. */
static inline void eng_pool_inflight(eng_pool *p, double now, int delta)
{
    p->conc_area += p->inflight * (now - p->conc_t);
    p->conc_t = now;
    p->inflight += delta;
}
void eng_account_busy(eng_pool *p, eng_node *n, double t0, double t1);
/* Node n could run batches (ready or draining) over [t0, t1). */
void eng_account_serving(eng_pool *p, const eng_node *n, double t0, double t1);
void eng_event(double t_s, const char *type, const char *subject, const char *fmt, ...);
void eng_view_sync(eng_node *n);
/* Server j of balancer l7's view in pool p changed: its policy hears of it
 * (lb_changed; the views are tracked, see run.c). */
void eng_lb_changed(eng_pool *p, int l7, int j);
/* Every server's LBI_* flags and the counts afresh (once the views are
 * built). */
void eng_lbi_recount(eng_pool *p);
/* Node n's queued count (serve_queued) may have changed: the LBI_UP totals
 * follow (in the pools that keep them: eng_lbi.sat). Called after every
 * change of n->work.q, and by a server whose own queues change
 * (serve_ops.queued). */
void eng_node_q_count(eng_node *n);
static inline void eng_node_q_sync(eng_node *n)
{
    if (n->pool->lbi && n->pool->lbi[0].sat)
        eng_node_q_count(n);
}
/* Counts r (held at the end of the run) once: a request unless it is a
 * job, and in pool p's stage when p is not NULL. */
void eng_census_add(const eng_req *r, const eng_pool *p, unsigned long *requests,
                    unsigned long *per_pool);
/* A pool's hosts: max_replicas of its own shape, and for a rollout as many
 * again plus the surge of the new shape. n_old (may be NULL) gets the first. */
int eng_pool_slots(const sc_pool *pc, int *n_old);
/* Nodes of p that are ready, and starting when include_starting. */
int eng_ready_count(const eng_pool *p, int include_starting);
int eng_ready_recount(const eng_pool *p, int include_starting); /* walks the nodes */
/* Sets n's host to power state `pstate` (a slowdown) and keeps its speed. */
void eng_node_set_pstate(eng_node *n, int pstate);
void eng_pool_recount(eng_pool *p); /* n_ready, n_starting, n_on, n_draining from the nodes' states */
int eng_node_set_state(eng_node *n, eng_node_state st, double now); /* 1 if it changed */
/* The fault acting on the first of p's nodes that has one (capacity it
 * lost), with its record in *rec; -1 (and *rec -1) if none. */
int eng_pool_node_fault(const eng_pool *p, int *rec);
/* The fault that failed a KV handoff from src to dst (NULL: no decode
 * replica was up), its record in *rec; -1 if none: the fault on its decode
 * node, else on its prefill node, else (no decode replica up) one on a
 * decode node, else a link_down holding the decode pool's links off, or
 * the prefill pool's (the transfer crossed them). */
int eng_handoff_fault(const eng_node *src, const eng_node *dst, int *rec);

#endif
