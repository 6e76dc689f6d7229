/*
 * scenario.h - a fleetsim scenario as plain structs.
 *
 * sc_load() parses a YAML scenario with libyaml, applies `--set key.path=value`
 * overrides to the document tree, and validates everything into these structs.
 * Every error is reported as `file:line:col: message` (one per line on the
 * error stream) and makes sc_load() return NULL; nothing here ever aborts.
 * All times are double seconds, sizes bytes, bandwidths bytes per second,
 * rates requests per second. The reference of every key is scenarios/README.md.
 */
#ifndef FLEETSIM_SCENARIO_H
#define FLEETSIM_SCENARIO_H

#include "fault_kinds.h"
#include "lb.h"
#include "llm_model.h"
#include "tokens.h"
#include "rate.h"
#include "units.h"

#include <stdio.h>
#include <stddef.h>

/* Shape of a random quantity with mean 1; callers scale it by a mean. */
typedef enum {
    SC_DIST_DETERMINISTIC = 0,
    SC_DIST_EXPONENTIAL,
    SC_DIST_LOGNORMAL, /* uses cv */
    SC_DIST_GAMMA,     /* uses cv: shape = 1/cv^2 */
    SC_DIST_EMPIRICAL, /* samples from a CSV, normalised to mean 1 */
    SC_DIST_WEIBULL    /* uses shape (k); scale set so the mean is 1 */
} sc_dist_kind;

typedef struct {
    sc_dist_kind kind;
    double cv;          /* coefficient of variation (lognormal, gamma) */
    double shape;       /* Weibull shape k */
    double *samples;    /* empirical: samples / their mean (so mean 1) */
    size_t n_samples;
} sc_dist;

/* Mean latency of one batch of b requests from a calibration profile:
 * latency_s[i] measured at batch[i], batch[] ascending; linear
 * interpolation between points, the fitted alpha + beta * b outside. */
typedef struct {
    char *path;          /* profile file, as written in the scenario */
    char *precision;     /* "int8", "fp16", "fp32", ... */
    int n_points;
    int *batch;
    double *latency_s;
    double alpha_s, beta_s;
} sc_calibration;

/* A token-level LLM model (models.<name>.llm): its shape from a Hugging
 * Face config.json, precisions, step-time model and vLLM engine arguments.
 * The GPU and tensor_parallel come from the pool that runs it. */
typedef struct {
    char *config_path;           /* as written, or NULL when the shape is inline */
    llm_shape shape;
    llm_precision weights, activations, kv;
    llm_step_kind step;
    double overhead_s;           /* fixed time per step */
    double mfu_prefill, mfu_decode; /* 0 = the GPU's */
    double prefill_token_s, decode_seq_s, context_token_s; /* alpha_beta */
    double prefill_attention_pair_s; /* alpha_beta: s per prefill query-key pair */
    int step_refused;            /* step.calibration was refused (reported once) */
    double noise_cv;             /* step.noise: 0 = deterministic steps */
    double noise_correlation_s;  /* step.noise: the log factors' correlation time */
    double noise_slow_cv;        /* step.noise.slow: 0 = none */
    double noise_slow_correlation_s; /* step.noise.slow: its correlation time */
    int max_num_batched_tokens;  /* 0 = vLLM's default for the GPU */
    int max_num_seqs;            /* 0 = vLLM's default for the GPU */
    int block_size;              /* tokens per KV block (16) */
    double gpu_memory_utilization; /* 0.9 */
    long kv_blocks;              /* 0 = from memory */
    int long_prefill_threshold;  /* 0 = the token budget */
    int enable_prefix_caching;
    int chunked_prefill;         /* 1 */
    int coalesce_steps;          /* 1: one SimGrid activity per run of equal steps */
} sc_llm;

typedef struct {
    char *name;
    sc_llm *llm;                 /* NULL: the batch server (service, batch below) */
    /* service time of a batch of b: mean(b) * Z, Z ~ noise (mean 1).
     * mean(b) = calibration ? profile(b) : base_s + per_item_s * b */
    sc_dist noise;
    double base_s;
    double per_item_s;
    sc_calibration *calibration; /* NULL unless service.calibration given */
    int batch_max_size;          /* 1 = no batching */
    double batch_max_wait_s;     /* 0 = dispatch at once */
    /* GPU memory (models.<name>.memory; exported as DCGM_FI_DEV_FB_USED):
     * weights resident on each GPU of a node while the model is loaded,
     * plus per_request for each request in the batch running on that GPU. */
    int has_memory;              /* 0 = not modelled: no GPU memory series */
    double weights_bytes;
    double per_request_bytes;
} sc_model;

/* Node types: power draw and price, with documented defaults per gpu_type,
 * and the GPU memory capacity when the scenario declares one. */
typedef struct {
    char *gpu_type;            /* "a100", "h100", "h200", "cpu" */
    double idle_w_per_gpu;     /* draw of one idle GPU (plus its share of host) */
    double busy_w_per_gpu;     /* draw of one fully busy GPU */
    double off_w;              /* draw of a node switched off */
    double price_per_gpu_hour; /* money */
    double gpu_memory_bytes;   /* capacity of one GPU; 0 = not declared (no default) */
} sc_power;

/* Host memory of a node (pools.<name>.host_memory; exported as
 * node_memory_MemTotal_bytes and node_memory_MemAvailable_bytes): in use,
 * base while the node is up plus per_queued for each request queued at it. */
typedef struct {
    double total_bytes;        /* 0 = not modelled: no node memory series */
    double base_bytes;
    double per_queued_bytes;
} sc_host_memory;

/* A random delay: mean_s times a mean-1 variate of the given shape. */
typedef struct {
    double mean_s;
    sc_dist shape;
} sc_delay;

/* A replica's life: provisioning (only when no warm node is free), container
 * start, model load, warm-up, then ready; draining on the way out. */
typedef struct {
    sc_delay provision;
    sc_delay start;
    sc_delay load;
    sc_delay warmup;
    double drain_grace_s;      /* in-flight work after this fails (502) */
    double start_failure_prob; /* a start that fails is retried from the start */
    /* LLM pools: the weights read from storage during the model load, at
     * load_bandwidth_Bps shared by the node's replicas: the load takes
     * `load` + replicas on the node x weights_bytes / load_bandwidth_Bps.
     * 0 = not modelled (the load is `load` alone). */
    double load_bandwidth_Bps;
    double weights_bytes;      /* one replica's weights (llm_weight_bytes) */
} sc_lifecycle;

/* lifecycle.load_bandwidth: `default` (fleetsim's documented figure) */
#define SC_DEFAULT_LOAD_BANDWIDTH_BPS 2e9

/* Active health checks by the balancer (nginx Plus / HAProxy style). */
typedef struct {
    double interval_s;         /* 0 = no active health checks */
    double timeout_s;
    int fall;                  /* consecutive failures to mark down */
    int rise;                  /* consecutive successes to mark up */
} sc_health;

/* A cluster-level node pool under the replicas (Cluster Autoscaler): pods
 * need a free slot on a provisioned node, else they stay pending. */
typedef struct {
    int enabled;               /* 0 = every replica provisions its own node */
    int max_nodes;             /* the node group's max size */
    int pods_per_node;         /* slots per node */
    sc_delay provisioning;     /* from the scale-up decision to a ready node */
    double scan_interval_s;    /* --scan-interval */
    double unneeded_s;         /* --scale-down-unneeded-time */
    double delay_after_add_s;  /* --scale-down-delay-after-add */
} sc_node_pool;

/* A vertical change by rolling update: from `at`, the pool's nodes are
 * replaced by nodes of another shape, a Deployment-style rollout bounded by
 * max_surge and max_unavailable (kubernetes pkg/controller/deployment/rolling.go). */
typedef struct {
    int enabled;
    double at_s;
    int gpus_per_node;
    sc_power power;            /* of the new node type */
    int max_surge;             /* replicas above the desired count, >= 0 */
    int max_unavailable;       /* ready replicas below it, >= 0; not both 0 */
} sc_rollout;

typedef struct {
    char *name;
    int model;                 /* index into sc_scenario.models */
    int replicas;
    int gpus_per_node;         /* SimGrid core count of each host */
    int queue_capacity;        /* per node; full -> rejected (503) */
    double timeout_s;          /* client timeout; exceeded -> timed out (504); 0 = none */
    double ttft_timeout_s;     /* LLM pools: client timeout on the first token; 0 = none */
    double link_latency_s;     /* balancer <-> node, one way */
    double link_bandwidth_Bps; /* bytes per second */
    sc_power power;
    sc_host_memory host_memory;
    int max_replicas;          /* hosts the pool may ever use (>= replicas) */
    char *zone;                /* failure domain; NULL = the pool's own */
    /* what the pool costs (summary.json pools.<p>.cost): `used` pays
     * price_per_gpu_hour for the hours a node was up (the cloud), `amortised`
     * for every node slot over the whole run, used or not (hardware bought
     * on premises); and egress_per_gb for the response bytes leaving it */
    int billing_amortised;
    double egress_per_gb;
    int has_cost_keys;         /* billing or egress_per_gb given */
    char *lb_policy;           /* its balancer's policy (an nginx upstream's method);
                                  NULL = load_balancer.policy */
    sc_lifecycle life;
    sc_health health;
    sc_node_pool node_pool;
    sc_rollout rollout;
    /* LLM pools: each node runs gpus_per_node / tensor_parallel replicas,
     * each on tensor_parallel GPUs of this kind */
    int tensor_parallel;
    /* LLM pools of an MoE model: expert_parallel > 1 makes each replica an
     * expert-parallel group of that many GPUs (attention data-parallel),
     * which may span several physical nodes of node_gpus GPUs joined by
     * interconnect_Bps per GPU. The pool's simulated node is then the
     * group: gpus_per_node and tensor_parallel are set to expert_parallel
     * when it is wider than a physical node (llm_model.h, ep). */
    int expert_parallel;       /* 0 = none */
    int redundant_experts;
    int node_gpus;             /* physical GPUs per node (gpus_per_node as given) */
    double interconnect_Bps;
    llm_gpu gpu;
    char *gpu_name;            /* owned copy of gpu.name */
    /* LLM pools: prefill/decode disaggregation. A prefill pool runs its
     * requests' prompts and sends each one's KV cache to a replica of its
     * decode pool, picked by decode_router (an lb policy over the decode
     * replicas); a decode pool takes requests only that way. */
    int role;                  /* SC_ROLE_MIXED (default), SC_ROLE_PREFILL, SC_ROLE_DECODE */
    int decode_pool;           /* a prefill pool: index of its decode pool; else -1 */
    char *decode_router;       /* a prefill pool: lb policy picking the decode replica;
                                  NULL = vllm_dp */
} sc_pool;

enum { SC_ROLE_MIXED = 0, SC_ROLE_PREFILL, SC_ROLE_DECODE };

typedef enum {
    SC_ARR_POISSON = 0,
    SC_ARR_DETERMINISTIC,
    SC_ARR_GAMMA,  /* inter-arrival gamma with cv (burstiness) */
    SC_ARR_TRACE   /* arrival times replayed from a CSV */
} sc_arrival_kind;


/* One pool of a traffic class's failover (traffic.<c>.failover.pools). */
typedef struct {
    int pool;
    int priority;              /* 0 = first choice */
    double weight;             /* share within its priority level (1) */
    double wan_latency_s;      /* one-way latency added to reach it (0) */
} sc_failover;

typedef struct {
    char *name;
    int pool;                  /* index into sc_scenario.pools: the pipeline's first stage */
    int pipeline;              /* index into sc_scenario.pipelines */
    char *path;                /* URL path matched against routes, or NULL */
    sc_arrival_kind process;
    double cv;                 /* gamma arrivals */
    sc_rate_point *rate;
    int n_rate;
    double repeat_s;           /* the rate profile repeats every repeat_s (0: never) */
    double *trace_s;           /* trace: ascending arrival times */
    size_t n_trace;
    double work;               /* multiplies service time (default 1) */
    double bytes_in;           /* request size */
    double bytes_out;          /* response size */
    /* LLM requests (traffic.<c>.tokens): token counts drawn per request,
     * or arrivals and tokens replayed from a trace */
    int has_tokens;
    tok_dist in_tokens, out_tokens;
    tok_trace *tokens_trace;   /* NULL unless tokens.trace */
    double trace_speedup;      /* arrivals come this many times faster (1) */
    int trace_copies;          /* the trace replayed this many times at once (1) */
    size_t *trace_row;         /* with copies: arrival i is the trace's row trace_row[i] */
    /* tokens.system_prompt: each prompt starts with one of system_prompts
     * shared prefixes of system_prompt_tokens, named by system_hashes[k] */
    int system_prompt_tokens;  /* 0 = none */
    int system_prompts;
    uint64_t *system_hashes;
    /* traffic.<c>.failover: its pool and others in priority levels, shared
     * by Envoy's priority load (policies/lb_priority.h); NULL without */
    sc_failover *failover;
    int n_failover;
    int n_levels;              /* distinct priorities, 0..n_levels-1 */
    int failover_factor_pct;   /* overprovisioning factor in percent (140) */
    int failover_panic_pct;    /* healthy_panic_threshold (50) */
    int failover_locality_weights; /* a pool's weight was given: Envoy's
                                      locality-weighted choice within a level */
    int overflow_queue;        /* a level is saturated at this many requests
                                  waiting per healthy node; 0 = off */
    int overflow_max_conns;    /* saturated when every healthy node is at max_conns */
} sc_traffic;

/* A pipeline is the path a request takes through the cluster: stages in
 * order, each a pool (its balancer, queues and GPUs), a cache lookup or an
 * asynchronous queue. Every traffic class follows one pipeline: a class that
 * names a pool follows that pool's implicit one-stage pipeline. */
typedef enum {
    SC_STAGE_POOL = 0,
    SC_STAGE_CACHE,        /* a hit skips the pool stage that follows */
    SC_STAGE_QUEUE         /* a broker between two stages; the next pool consumes it */
} sc_stage_kind;

typedef struct {
    sc_stage_kind kind;
    int ref;               /* index into pools, caches or queues by kind */
} sc_stage;

typedef struct {
    char *name;
    double hit_ratio;      /* share of lookups that hit, in [0, 1] */
    double lookup_s;       /* added to the request's latency, hit or miss */
    int skips;             /* the pool stage a hit skips */
} sc_cache;

typedef struct {
    char *name;
    int capacity;          /* messages held; publishing to a full queue fails (503) */
    int prefetch;          /* unacknowledged messages per consumer server (RabbitMQ
                              basic.qos); 0 = the consumer's GPUs x batch max_size */
    double processing_timeout_s; /* a delivered message's deadline; 0 = none */
    int consumer;          /* the pool stage after it */
} sc_queue;

typedef struct {
    char *name;
    sc_stage *stages;
    int n_stages;
    int implicit;          /* a pool's own one-stage pipeline (named after it) */
} sc_pipeline;

/* An L7 routing rule (nginx `location PREFIX`): requests whose path starts
 * with prefix go to a pipeline; an exact rule equal to the path wins, else
 * the longest matching prefix. */
typedef struct {
    char *prefix;
    int exact;             /* nginx `location = URI`: the path must equal it */
    int pipeline;
} sc_route;

/* Per-server overrides, keyed "pool/index". */
typedef struct {
    int pool;
    int index;
    double weight;
    int max_conns;             /* 0 = unlimited */
    int backup;                /* nginx `backup` */
    int down;                  /* nginx `down` */
    int max_fails;             /* nginx passive health; 0 = off */
    double fail_timeout_s;
    char *name;                /* nginx address, or NULL ("pool/index") */
} sc_server;

/* A dynamic-weight rule: a node whose GPU utilisation over the window is
 * above `above` (or below `below`) gets `weight`, or its configured weight
 * back when `restore`. The first matching rule applies; none: unchanged. */
typedef struct {
    double above, below;       /* NAN when not given */
    double weight;
    int restore;
} sc_weight_rule;

/* One L7 balancer of a two-tier front end (load_balancer.l7[]): an L4
 * balancer spreads connections over several L7 balancers, each with its own
 * policy state and its own connection counts for every pool. */
typedef struct {
    char *name;
    char *policy;              /* a name in the lb registry; NULL = load_balancer.policy */
    double weight;             /* for the L4 policy */
} sc_l7;

typedef struct {
    char *policy;              /* a name in the lb registry */
    double dw_period_s;        /* dynamic weights: 0 = off */
    double dw_window_s;
    sc_weight_rule *dw_rules;
    int n_dw_rules;
    lb_params params;          /* policy parameters (choice_count, decay, hash, ...)
                                  and Envoy outlier detection (params.outlier) */
    char *nginx_path;          /* servers and method from an nginx upstream block */
    char *upstream;
    int max_conns;             /* default per server; 0 = unlimited */
    int queue_capacity;        /* requests held at the balancer when every
                                  server is at max_conns; 0 = no queue */
    double queue_timeout_s;    /* 0 = wait forever */
    /* nginx proxy_next_upstream: an attempt that fails with a connection
     * error, or that a full queue answers with 503 when http_503 is listed,
     * is retried on another server. */
    int retry_tries;           /* attempts in all; 0 = every server once (nginx's default) */
    double retry_timeout_s;    /* no new attempt after this since arrival; 0 = no limit */
    int retry_on_error;        /* 1 = retry on error (nginx default "error timeout") */
    int retry_on_503;          /* 1 = http_503 listed: a 503 is a failed attempt
                                  (max_fails) and is retried; 0 (nginx's
                                  default) = passed on to the client */
    sc_server *servers;
    int n_servers;
    /* two tiers: L4 in front of n_l7 L7 balancers (0 = one balancer, no L4) */
    sc_l7 *l7;
    int n_l7;
    char *l4_policy;           /* the L4 balancer's policy over the L7 balancers */
    double l4_hc_interval_s;   /* its health checks of them: every interval, */
    int l4_hc_fall;            /* down after fall failed checks; 0 s = sees at once */
} sc_lb;

/* The kinds of fault, in the order of fault_kinds.h; SC_N_FAULT_KINDS counts them. */
#define SC_FAULT_ENUM(kind, name) kind,
typedef enum { SC_FAULT_KINDS(SC_FAULT_ENUM) SC_N_FAULT_KINDS } sc_fault_kind;
#undef SC_FAULT_ENUM

typedef struct {
    sc_fault_kind kind;
    char *label;               /* "node_crash gpu/1 at 40m", for reports */
    double at_s;
    double duration_s;         /* 0 = until the end (recover_after / duration) */
    int pool;                  /* -1 = every pool (or by zone) */
    int node;                  /* -1 = every node of the pool */
    char *zone;                /* zone outage */
    int dep;                   /* cache_down: the cache; broker_down: the queue; else -1 */
    int l7;                    /* lb_failure of one L7 balancer of a two-tier front end, or -1 */
    int traffic;               /* flash crowd: -1 = every class */
    double factor;             /* slowdown speed factor, flash multiplier, error
                                  probability, or added latency in seconds */
    double mtbf_s, mttr_s;     /* random crash */
    sc_dist ttf, ttr;          /* shapes of time to failure / to repair */
    double standby_failover_s; /* lb failure: a standby takes over after this; 0 = none */
    double notice_s;           /* spot reclaim: from the interruption notice to the reclaim */
    int gpu, gpus;             /* gpu_failure: GPUs gpu .. gpu + gpus - 1 of each node hit */
    /* Start: `at` (at_s), `after` (after_s past the start of the fault
     * before it, resolved into at_s when that one's start is fixed; else
     * after_prev is that fault's index and the start is known only at run
     * time) or `when` (when_qps > 0: the first arrival at which the offered
     * load of the pools hit, over the sliding window when_window_s,
     * exceeds when_qps). */
    double after_s;
    int after_prev;            /* -1, or the fault whose run-time start this one waits for */
    double when_qps;           /* 0 = no condition */
    double when_window_s;
    /* retry storm: each failed request is resent by its client up to
     * retry_attempts more times, retry_backoff_s x retry_multiplier^k after
     * its k-th failure (k = 0, 1, ...) */
    int retry_attempts;
    double retry_backoff_s;
    double retry_multiplier;
    /* speed_profile / state_profile: the file (resolved path) and its
     * points (time, value) ascending; prof_loop_s > 0: LOOPAFTER */
    char *file;
    double *prof_t, *prof_v;
    int n_prof;
    double prof_loop_s;
} sc_fault;

/* A steady-state hypothesis (Chaos Toolkit style), checked on the window
 * before the first fault and on each window after a fault ends (+ grace). */
typedef enum {
    SC_HYP_AVAILABILITY = 0,   /* completed / finished >= min */
    SC_HYP_LATENCY_P99,        /* p99 of completed <= max_s */
    SC_HYP_ERROR_RATE          /* (failed + timed out + rejected) / finished <= max */
} sc_hyp_metric;

typedef enum {
    SC_WIN_STEADY = 0,         /* before the first fault, and after each fault + grace */
    SC_WIN_RUN,                /* the whole run after warm-up */
    SC_WIN_PEAK                /* the intervals whose offered load is >= half the maximum */
} sc_hyp_window;

typedef struct {
    sc_hyp_metric metric;
    sc_hyp_window window;
    double bound;              /* min availability, max p99 (s), max error rate */
    double grace_s;            /* time after a fault ends that is not judged */
    char *text;                /* as written, for the verdict */
} sc_hypothesis;

typedef struct {
    double latency_p99_s;      /* 0 = not set */
    double availability;       /* 0 = not set */
    /* LLM pools (0 = not set): time to first token, time per output token
     * and end-to-end at p99; goodput: the share of finished requests that
     * met each target set among ttft/tpot/e2e */
    double ttft_p99_s, tpot_p99_s, e2e_p99_s;
    double goodput;
} sc_slo;

/* One autoscaler: a registered policy for one pool, with its keys as written
 * (the policy checks them; see policies/autoscale.h). */
typedef struct {
    int pool;
    char *policy;
    int n_params;
    char **keys, **values;
    int *lines, *cols;
} sc_autoscaler;

/* Prometheus-like monitoring of the run (monitoring/README.md): scrapes of
 * the simulated exporters, rule files evaluated, Alertmanager routing. */
typedef struct {
    int enabled;               /* the scenario has a monitoring section */
    double scrape_interval_s;
    double evaluation_interval_s;
    char **rules;              /* rule file paths, resolved against the scenario */
    int n_rules;
    char *alertmanager;        /* alertmanager.yml, resolved; NULL = none */
    double *buckets_s;         /* request duration histogram bounds, ascending (with
                                  slo.latency_p99 among them when it is set) */
    int n_buckets;
    int slo_rules;             /* also evaluate burn-rate rules generated from slo */
} sc_monitoring;

typedef struct {
    char *file;                /* path the scenario was loaded from */
    char *name;
    char *description;
    unsigned long seed;
    double duration_s;
    double warmup_s;           /* requests arriving before this are not in statistics */
    double interval_s;         /* time-series resolution */
    int has_start_time;        /* start_time: the wall-clock time of t = 0 */
    double start_epoch_s;      /* seconds since 1970-01-01 UTC */
    int start_utc_offset_s;    /* the offset it was written in: reports show clock times in it */
    char currency[4];          /* cost.currency: "" = not set (USD) */
    sc_model *models;
    int n_models;
    sc_pool *pools;
    int n_pools;
    sc_traffic *traffic;
    int n_traffic;
    sc_pipeline *pipelines;    /* explicit ones first, then one implicit per pool */
    int n_pipelines;
    int hybrid;                /* some class fails over or some pool has billing or
                                  egress_per_gb: summary.json prices each pool */
    sc_cache *caches;
    int n_caches;
    sc_queue *queues;
    int n_queues;
    sc_route *routes;
    int n_routes;
    sc_lb lb;
    sc_slo slo;
    sc_fault *faults;
    int n_faults;
    sc_hypothesis *hypotheses;
    int n_hypotheses;
    sc_autoscaler *autoscalers;
    int n_autoscalers;
    char *dir;                 /* the scenario's folder, for relative paths */
    sc_monitoring monitoring;
    struct {
        int fast;                  /* simulation.mode: fast (1) or exact (0, the default) */
        double arrival_quantum_s;  /* fast: a class's arrivals are delivered once per quantum */
    } simulation;
} sc_scenario;

/* simulation.arrival_quantum's default. */
#define SC_ARRIVAL_QUANTUM_S 0.001
/* Node slots (every node a pool may run: max_replicas, twice over during a
 * rollout, plus its surge) in all pools together. */
#define SC_MAX_NODE_SLOTS 1000000

/* Load, override and validate. overrides: n strings "key.path=value".
 * Errors go to err (one `file:line:col: message` line each). */
sc_scenario *sc_load(const char *path, const char *const *overrides, int n_overrides,
                     FILE *err);
/* sc_load with names for the overrides in messages (names[i] for override
 * i, like "--vary[2]"; NULL, or a NULL name: "--set[i+1]"). */
sc_scenario *sc_load_named(const char *path, const char *const *overrides,
                           const char *const *names, int n_overrides, FILE *err);
void sc_free(sc_scenario *sc);
/* Requests the scenario's traffic will generate (rates integrated over the
 * run; a trace's arrivals), as the loader's size check estimates them. */
double sc_expected_requests(const sc_scenario *sc);


/* Creates the policy an autoscaler entry names (policies/autoscale.h);
 * NULL with a `file:line:col: message` in err. */
struct as;
struct as *sc_autoscaler_create(const sc_scenario *sc, const sc_autoscaler *a, char *err,
                                size_t errlen);

/* The multi-window multi-burn-rate rule file generated from sc->slo,
 * malloc'd: an availability SLO over fleetsim_requests_total and a latency
 * SLO (99% of requests within slo.latency_p99) over the request duration
 * histogram, each by pool, for those that are set. NULL with a message in
 * err when neither is set, or slo.availability is 1 (no budget to burn). */
char *sc_slo_rules_text(const sc_scenario *sc, char *err, size_t errlen);

/* The i-th fault kind's name as `chaos[].fault` takes it; NULL past the last. */
const char *sc_fault_name(int i);

/* Mean service time of a batch of b requests for a model (seconds). */
double sc_model_mean_s(const sc_model *m, int batch);

/* An LLM replica's cost model: model m on pool pl's GPU and tensor_parallel. */
void sc_llm_perf(const sc_llm *m, const sc_pool *pl, llm_perf *pf);

/* vLLM's engine limits of a replica of model m on pool pl (pf: its cost
 * model, sc_llm_perf): the given ones, or vLLM's defaults. */
typedef struct {
    int max_num_batched_tokens;  /* token budget of a step */
    int max_num_seqs;            /* sequences running at most */
    long num_blocks;             /* KV blocks (<= 0 when nothing fits) */
} sc_llm_limits;
void sc_llm_limits_get(const sc_llm *m, const sc_pool *pl, const llm_perf *pf, sc_llm_limits *out);

/* Seconds a node of pool pl with `gpus` GPUs spends reading its replicas'
 * weights during the model load (lifecycle.load_bandwidth): replicas on it
 * (gpus / tensor_parallel) x one replica's weights / the bandwidth; 0 when
 * the pool does not model it. */
double sc_weights_load_s(const sc_pool *pl, int gpus);

#endif
