/*
 * engine_internal.h - state shared by the engine's files (engine.c: requests,
 * routing, workers, traffic, results; lifecycle.c: node states, scaling,
 * draining, crashes, health checks; chaos.c: injected faults; pipeline.c:
 * stages, caches and queues; tiers.c: the L4 balancer over L7 balancers).
 * Not for use outside sim/: policies see lb_view, never this.
 */
#ifndef FLEETSIM_ENGINE_INTERNAL_H
#define FLEETSIM_ENGINE_INTERNAL_H

#include "engine.h"
#include "hist.h"
#include "lb.h"

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
} eng_lbi;

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
    eng_pool *pool;
    int index;             /* within the pool = server number for the balancer */
    int gpus;              /* its shape: GPUs (SimGrid cores) */
    const sc_power *power; /* and power draw and price */
    int new_shape;         /* a slot of the pool's rollout target shape */
    sg_host_t host;
    char name[96];
    eng_node_state state;
    int gen;               /* incarnation: bumped at each crash or termination */
    int registered;        /* in the balancer's server list (ready, not draining) */
    int hc_up;             /* active health checks say up (1 without checks) */
    int hc_fails, hc_oks;
    int gpu_error;         /* up but every request errors */
    int crash_holds;       /* crash faults holding it down now (recovers at 0) */
    int slow_level;        /* pstate index */
    eng_fifo q;            /* accepted, not yet taken by its server */
    void *serve;           /* its server model's state (serve.h) */
    gsl_rng *rng;
    int workers_alive;     /* its server's actors still running */
    double busy_gpu_s;
    double up_since_s;     /* when it last left OFF (for GPU-hours), or -1 */
    double up_total_s;     /* provisioned time so far */
    double ready_total_s;
    double ready_since_s;
    double serving_since_s;  /* ready or draining since (can run batches); -1 if not */
    double start_s;        /* entered STARTING (Kubernetes status.startTime); NAN before */
    double ready_change_s; /* last Ready transition; NAN before the first */
    unsigned long accepted;/* requests sent to it, ever */
    /* node_network_{receive,transmit}_bytes_total since it last came up:
     * bytes_in of each request it accepted, bytes_out of each it completed */
    double net_rx_bytes, net_tx_bytes;
    double *busy_series;   /* busy GPU-seconds per interval (NULL when too many) */
    int cause;             /* scenario fault acting on it now, or -1 */
    int fault_rec;         /* its entry in the results' faults, or -1 */
    /* metrics-server-like sample: the mean over the last window */
    int m_has;
    double m_time_s, m_util, m_rps, m_queue;
    double m_busy_prev, m_accepted_prev;
    /* node_pool only */
    int cnode;             /* cluster node it is bound to, or -1 */
    int unscheduled;       /* pending for lack of a node (state PROVISIONING, host off) */
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
    int partitioned;        /* injected: balancer cannot reach the nodes */
    double error_prob;      /* injected: each attempt fails with this probability */
    int lb_down;            /* injected: balancer failed */
    double bw_factor;       /* injected: links at this share of their bandwidth (1) */
    int metrics_stale;      /* injected: metrics sampler and scraper get no samples */
    gsl_rng *lb_rng;
    gsl_rng *fault_rng;
    rp_counts counts;
    double *busy_per_interval;
    double *serving_per_interval; /* GPU-seconds of ready or draining nodes */
    int replicas_min, replicas_max;
    int n_old;              /* slots 0..n_old-1 have the pool's shape; the rest the rollout's */
    int rolling;            /* the rollout began: new replicas take new-shape slots */
    struct as *scaler;      /* NULL = fixed size */
    void *as_pods, *as_custom; /* the autoscaler's view arrays (n_hosts pods) */
    double as_last_s;       /* previous sync */
    unsigned long as_last_arrivals;
    int cause, fault_rec;   /* pool-wide fault acting now (partition, ...), or -1 */
    int *hc_silent;         /* health checker's scratch: nodes that did not answer */
    double *dw_ring;        /* dynamic weights: busy seconds per node and tick */
    double *base_weight;    /* the configured weights, for `restore` */
    unsigned long arrivals; /* requests routed to this pool, ever */
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

extern eng_sim S;

enum { B_COMPLETED, B_REJECTED, B_FAILED, B_TIMED_OUT };

/* engine.c */
double eng_draw_unit(const sc_dist *d, gsl_rng *rng);
gsl_rng *eng_stream_rng(unsigned long seed, unsigned long stream);
void eng_fifo_push(eng_fifo *f, eng_req *r);
eng_req *eng_fifo_pop(eng_fifo *f);
void eng_fifo_push_head(eng_fifo *f, eng_req *r); /* back where a pop took it */
void eng_req_end(eng_pool *p, eng_req *r, int bucket, double t_s);
/* The client has its answer (bucket) at t_s: the request's outcome, counted
 * once; eng_req_end calls it, and so does a queue that acknowledges. */
void eng_req_answered(eng_pool *p, eng_req *r, int bucket, double t_s);
/* An attempt of r failed with a connection-level error at now: retried on
 * another server when the balancer's retry rules allow, else failed (502). */
void eng_attempt_failed(eng_pool *p, eng_req *r, double now);
void eng_route(eng_pool *p, eng_req *r, double now);
/* Sends r to a server of p that can take it now (a queue's delivery);
 * -1, doing nothing, when every server is busy or none is up (a node that
 * crashed, or every node across a partition, counts as not up). */
int eng_offer(eng_pool *p, eng_req *r, double now);
/* Reports an attempt's outcome to the balancer (l7) that sent it. */
void eng_lb_done(eng_pool *p, int l7, int server, double latency_s, lb_result result,
                 double now);
/* r left server s (answered, failed or expired): one connection fewer. */
void eng_lb_release(eng_pool *p, const eng_req *r, int s, double latency_s, lb_result result,
                    double now);
/* A request entered (+1) or left (-1) the pool at now. */
static inline void eng_pool_inflight(eng_pool *p, double now, int delta)
{
    p->conc_area += p->inflight * (now - p->conc_t);
    p->conc_t = now;
    p->inflight += delta;
}
void eng_drain_balancer_queue(eng_pool *p, double now);
void eng_account_busy(eng_pool *p, eng_node *n, double t0, double t1);
/* Node n could run batches (ready or draining) over [t0, t1). */
void eng_account_serving(eng_pool *p, const eng_node *n, double t0, double t1);
void eng_event(double t_s, const char *type, const char *subject, const char *fmt, ...);
void eng_view_sync(eng_node *n);
/* Server n finished r's work at t1: answered, or ended as its client or
 * connection allows. */
void eng_req_served(eng_pool *p, eng_node *n, eng_req *r, double t1);
/* A client resends r (a retry of the same request) now. */
void eng_resend(eng_req *r, double now);

/* Counts r (held at the end of the run) once: a request unless it is a
 * job, and in pool p's stage when p is not NULL. */
void eng_census_add(const eng_req *r, const eng_pool *p, unsigned long *requests,
                    unsigned long *per_pool);
/* A request entered pool p's stage at now (counted in its arrivals; in its
 * in-flight too when in_pool). */
void eng_pool_enter(eng_pool *p, eng_req *r, double now, int in_pool);
/* r left pool p's stage with this outcome at t_s, the request going on. */
void eng_pool_leave(eng_pool *p, eng_req *r, int bucket, double t_s);

/* pipeline.c */
void pipe_init(void);
void pipe_free(void);
/* r finished its stage at pool p at t_s: on to the next stage, or done. */
void pipe_stage_done(eng_pool *p, eng_req *r, double t_s);
/* The consumer pool p has room: deliver what its queues hold. */
void pipe_deliver(eng_pool *p, double now);
/* Injected: a cache misses everything, a broker is down (or back). */
void pipe_cache_down(int cache, int down);
void pipe_queue_down(int queue, int down, int fault, int fault_rec, double now);
/* A job's delivery from a queue failed at the connection (its consumer
 * crashed, was cut off, errored): 1 when r went back to the head of the
 * queue in front of its stage, as an unacknowledged message is requeued. */
int pipe_requeue(eng_pool *p, eng_req *r, double now);
/* A job (r->job) finished its last stage, or failed, at t_s. */
void pipe_job_end(eng_req *r, int bucket, double t_s);
/* Closes an interval's queue backlog samples. */
void pipe_close_interval(size_t i);

/* tiers.c */
int tier_init(void);       /* before the pools: sets S.n_l7; -1 on a bad policy */
void tier_free(void);
int tier_pick(eng_req *r, double now);
void tier_close(const eng_req *r, double now);
/* The L4 balancer picks r's L7 balancer (r->l7; 0 without two tiers): -1
 * when none is in rotation (r->l7 = -1) or the one picked is down. */
static inline int tier_enter(eng_req *r, double now)
{
    if (!S.l4) {
        r->l7 = 0;
        return 0;
    }
    return tier_pick(r, now);
}
/* r's connection through the L4 closed (it ended, or its client resends). */
static inline void tier_leave(const eng_req *r, double now)
{
    if (S.l4 && r->l7 >= 0)
        tier_close(r, now);
}
void tier_down(int l7, int on, int fault, int fault_rec, double now);
/* When r's client connection was cut by its L7 balancer going down after
 * r was sent (at or before now), else INFINITY; cause and rec (may be NULL)
 * get the fault and its record. An acknowledged job's client has its
 * answer: never cut. */
double tier_cut_at(const eng_req *r, double now, int *cause, int *rec);
static inline double tier_cut(const eng_req *r, double now)
{
    return S.l4 && r->l7 >= 0 && !r->job && S.l7[r->l7].n_down > 0
               ? tier_cut_at(r, now, NULL, NULL)
               : INFINITY;
}
/* r ended by its cut connection: a 502 at the cut, blamed on the fault. */
void tier_count_cut(const eng_req *r);
/* When the L4's health checks take an L7 balancer that failed at down_s
 * out of rotation. */
double tier_detected_at(double down_s);

/* lifecycle.c */
void life_init_pool(eng_pool *p);          /* initial replicas ready at t = 0 */
void life_scale_to(eng_pool *p, int replicas, double now, const char *reason);
void life_crash(eng_node *n, double now, const char *why);
void life_recover(eng_node *n, double now);
void life_worker_exited(eng_node *n);      /* a draining node's worker left */
void life_start_health_checks(eng_pool *p);
int life_count(const eng_pool *p, int include_starting);
void life_account_end(double end_s);
int eng_pool_slots(const sc_pool *pc, int *n_old); /* hosts of a pool, and of its own shape */
void life_start_rollout(eng_pool *p);
void life_free_pool(eng_pool *p);          /* the node pool's state */

/* autoscaling.c */
void scale_start(void);
void scale_free(void);
/* A request found no ready replica: 1 if it should wait at the balancer
 * (an autoscaled pool cold-starting), after poking the autoscaler. */
int scale_buffer(eng_pool *p, double now);

/* weights.c */
void weights_start(eng_pool *p);

/* accounting.c */
void acc_init(void);
void acc_request_end(eng_pool *p, const eng_req *r, int bucket, double t_s, size_t interval,
                     double latency_s);
void acc_fault_recorded(int fault, int rec);
void acc_finish(rp_results *out);
void acc_free(void);

/* chaos.c */
void chaos_start(void);
/* flash crowds change the arrival-rate profile before the run starts */
void chaos_apply_rates(void);
void chaos_free(void);
/* The requests held for a client retry, for the end-of-run census
 * (eng_census_add). */
void chaos_census(unsigned long *requests, unsigned long *per_pool);
/* Every request or client retry reaching a pool's balancer (for `when`). */
void chaos_on_arrival(eng_pool *p, double now);
/* r ended in error at t_s: 1 if its client will resend it (retry_storm
 * active and attempts left), and r is now held until then. The caller
 * finishes with r (leaves its pool and L4 connection), then calls
 * chaos_clients_wake(): waking the clients' actor is a SimGrid simcall, so
 * that actor may run, and resend r, before the waker resumes. */
int chaos_client_retry(eng_pool *p, eng_req *r, double t_s);
void chaos_clients_wake(void);
/* The speed profile file for a host of the platform (pool, node), or NULL. */
const char *chaos_speed_file(int pool, int node);

/* observe.c */
/* The options' export paths, before build(); obs_start() then starts the
 * scraper/evaluator when the scenario has monitoring or an export is asked
 * for; obs_free() (at teardown) adds the alerts to the results, writes the
 * exports and frees everything. */
void obs_set_options(const sim_options *opt);
void obs_start(void);
void obs_free(void);
/* Every request, once, as it ends (eng_req_end): the exporter's counters. */
void obs_request_end(const eng_pool *p, const eng_req *r, int bucket, double latency_s);
/* An LLM server's token events on node n (serve/llm.c), for the node's
 * vllm:* latency histograms: a request's first token, ttft_s after its
 * client sent it; each later token, itl_s after the one before; its last
 * token, e2e_s after the send, with tpot_s its mean time per output token
 * after the first (0 for a one-token answer). Nothing is kept while nothing
 * is monitored or exported. */
void obs_llm_first_token(const eng_node *n, double ttft_s);
void obs_llm_token(const eng_node *n, double itl_s);
/* count inter-token latencies of itl_s: count obs_llm_token calls in one */
void obs_llm_tokens(const eng_node *n, double itl_s, unsigned long count);
void obs_llm_finished(const eng_node *n, double e2e_s, double tpot_s);

#endif
