/*
 * autoscale.h - autoscaling policies behind one ops struct, chosen by name.
 *
 * A policy sees a read-only view of one pool at a sync instant (as_view:
 * pods with their lifecycle state and sampled metrics, pool-level metrics)
 * and answers with the number of replicas the pool should have. It never
 * sees SimGrid, so every policy is unit-tested on hand-built views. The
 * engine calls only the wrappers below (as_create, as_recommend, ...), never
 * an ops field; optional methods and argument checks live in
 * policies/autoscale.c. Policies are registered in policies/registry.c; an
 * unknown name is an error that lists the names that exist (as_names()).
 *
 * Engine contract, in short (details at each field):
 * - create one instance per autoscaled pool with as_create(name, cfg, ...);
 * - every as_period_s() seconds of simulated time (HPA: --horizontal-pod-
 *   autoscaler-sync-period, 15 s by default; KPA: its 2 s tick), fill an
 *   as_view for that pool and call as_recommend();
 * - set the pool's spec replica count to the result at once: start pods
 *   (pending -> provisioning -> running -> ready) when it is above
 *   view.current_replicas, drain pods when it is below. The next view's
 *   current_replicas must be that result. Policies that rate-limit
 *   themselves (HPA behavior policies) record the change as applied.
 */
#ifndef FLEETSIM_AUTOSCALE_H
#define FLEETSIM_AUTOSCALE_H

#include <stddef.h>

/* A named value: a custom per-pod metric, or a pool-level (Object/External)
 * metric. Names are compared exactly (strcmp). */
typedef struct {
    const char *name;
    double value;
} as_metric;

/* Where a pod is in its life; mirrors Kubernetes pod phases plus the
 * deletion timestamp, because HPA's replica calculator treats each
 * differently (replica_calculator.go, groupPods). */
typedef enum {
    AS_POD_PENDING,      /* created, containers not started yet: waiting for a node
                            (scheduled = 0), node provisioning, image pull, container
                            start. HPA counts it "unready". */
    AS_POD_RUNNING,      /* containers started: loading the model, warming up
                            (ready = 0) or serving (ready = 1) */
    AS_POD_TERMINATING,  /* draining or shutting down (Kubernetes: deletionTimestamp
                            set); ignored by every policy */
    AS_POD_FAILED,       /* failed to start or crashed and not restarted; ignored */
} as_pod_phase;

/* One pod of the pool. The engine fills every field for every pod that
 * exists (all phases), in a stable order. */
typedef struct {
    as_pod_phase phase;
    int scheduled;           /* bound to a node. 0 only while PENDING for lack of a
                                node (cluster capacity): a Cluster-Autoscaler-level
                                policy scales nodes on these. */
    int ready;               /* Ready condition true: receives traffic. Only meaningful
                                while RUNNING. */
    double start_s;          /* Kubernetes status.startTime: when a node accepted the
                                pod (container start begins). NAN while unscheduled. */
    double ready_change_s;   /* lastTransitionTime of the Ready condition: the time the
                                pod last became ready, or became unready. The engine
                                sets it to start_s when the pod starts (condition
                                present, false) and updates it on every change. NAN
                                when the pod has no Ready condition yet. */
    /* Resource metrics as a metrics-server-like sampler reports them: the mean
     * over the sampler's window, never the instant state. */
    int has_metrics;         /* the sampler holds a sample for this pod. 0 for a pod the
                                sampler has not scraped yet (just started) or lost. */
    double metrics_time_s;   /* end of that sample's window (metrics-server Timestamp) */
    double metrics_window_s; /* length of that window (metrics-server Window) */
    double cpu_util;         /* CPU used over the window / cpu_request (1.0 = 100% of
                                the request; may exceed 1) */
    double gpu_util;         /* GPU busy time over the window / gpu_request */
    double cpu_request;      /* cores requested; <= 0 means 1 */
    double gpu_request;      /* GPUs requested; <= 0 means 1 */
    /* Custom per-pod metrics (HPA `Pods` metrics), each averaged over the same
     * window, e.g. "requests_per_second", "queue_depth". A name absent for a
     * pod means that pod's metric is missing. Units are the metric's own
     * (requests per second, requests), compared with the manifest's target. */
    int n_custom;
    const as_metric *custom;
} as_pod_view;

/* An LLM pool's performance profile, what Dynamo's pre-deployment profiler
 * measures and its planner interpolates (components/planner/src/dynamo/
 * planner/utils/perf_interpolation.py): the engine computes it from the
 * pool's step-time model, a test from its own formulas. Times are of one
 * engine replica running alone, without queueing. */
typedef struct {
    const void *ctx;
    /* a prompt of `tokens` tokens prefilled alone (its TTFT) */
    double (*prefill_s)(const void *ctx, double tokens);
    /* one decode step of `batch` sequences, each with `context` tokens in
     * its KV cache (their ITL) */
    double (*decode_step_s)(const void *ctx, int batch, double context);
    int max_batch;             /* sequences a replica runs at most (max_num_seqs) */
    double kv_tokens;          /* tokens a replica's KV cache holds */
    int replicas_per_pod;      /* engine replicas in a pod (a node: gpus / tensor_parallel) */
} as_llm_profile;

/* One pool at one sync instant. Everything is read-only to the policy. */
typedef struct {
    double now_s;              /* simulated time of this sync */
    int current_replicas;      /* spec replicas: what the pool is working towards (the
                                  last result applied), pods still pending or starting
                                  included, draining pods excluded */
    int min_replicas;          /* hard bounds of the pool from the scenario (quota); the */
    int max_replicas;          /* wrapper clamps every result to them. max 0 = none */
    double startup_s;          /* expected time from a scale-up decision to a ready pod
                                  (node provisioning + container start + model load +
                                  warm-up; the mean of the configured distributions).
                                  Predictive policies use it as their lead time. */
    int n_pods;
    const as_pod_view *pods;   /* every existing pod of the pool, any phase */
    /* Pool-level metrics by name, averaged since the previous sync unless
     * said otherwise. The engine fills at least:
     *   "concurrency"          mean requests in flight over the pool, requests
     *                          queued at the balancer (or buffered while at zero)
     *                          included (KPA)
     *   "requests_per_second"  arrivals per second to the pool (KPA rps mode)
     *   "arrival_rate_qps"     the same arrival rate, for forecasts (predictive)
     *   "fleetsim_queue_backlog"  for a pool consuming pipeline queues: the
     *                          messages waiting in them now
     * and any name an HPA manifest uses as an Object or External metric.
     * An LLM pool adds vLLM's gauges summed over its pods
     * ("vllm:num_requests_running", "vllm:num_requests_waiting",
     * "vllm:kv_cache_usage_perc") and what its clients saw since the
     * previous sync (names absent when nothing was observed):
     *   "llm_requests"           requests that arrived (a count)
     *   "llm_isl_mean"           prompt tokens, mean over first tokens
     *   "llm_osl_mean"           output tokens, mean over finished requests
     *   "llm_ttft_mean_s"        time to first token, mean
     *   "llm_itl_mean_s"         inter-token latency, mean over token gaps
     *   "llm_request_duration_mean_s"  arrival to last token, mean */
    int n_metrics;
    const as_metric *metrics;
    const as_llm_profile *llm; /* an LLM pool's profile; NULL for other pools */
} as_view;

/* Policy configuration: the scalar keys of the scenario's `autoscaler`
 * mapping, as written (units and all), with where they were written so a
 * policy can report `file:line:col: message`. */
typedef struct {
    const char *key;
    const char *value;
    int line, col;             /* 1-based; 0 when unknown (set in code) */
} as_param;

typedef struct {
    const char *source;        /* file the params come from, for messages; may be NULL */
    const char *base_dir;      /* relative paths (manifest:) resolve here; NULL = cwd */
    int n_params;
    const as_param *params;
} as_config;

/* init: parse and check cfg, return private state, or NULL with a message
 * "file:line:col: message" in err (errlen bytes; err may be NULL). */
typedef void *as_init_fn(const as_config *cfg, char *err, size_t errlen);
/* Desired replicas (>= 0) for the view, or AS_KEEP when the policy cannot
 * decide this time (no metrics yet): the wrapper then keeps current. */
typedef int as_recommend_fn(void *state, const as_view *view);
typedef double as_period_fn(const void *state);
typedef const char *as_reason_fn(const void *state);
typedef void as_free_fn(void *state);

#define AS_KEEP (-1)

struct as_ops {
    const char *name;          /* as written in scenarios */
    const char *summary;       /* one line for `fleetsim list` */
    const char *const *keys;   /* NULL-terminated list of accepted config keys
                                  (for `fleetsim list` and the scenario reference) */
    int needs_llm;             /* scales LLM pools only (reads view.llm): a scenario
                                  giving it another pool is refused at load */
    as_init_fn *init;          /* required: checks unknown keys too */
    as_recommend_fn *recommend;/* required */
    as_period_fn *period_s;    /* required: seconds between two recommend calls */
    as_reason_fn *reason;      /* optional: why the last result, for events */
    as_free_fn *destroy;       /* optional; NULL = free(state) */
};

typedef struct as as;

/* NULL-terminated table of every registered policy (policies/registry.c). */
extern const struct as_ops *const as_registry[];

const struct as_ops *as_find(const char *name);
/* Writes "a, b, c" (every registered name) into buf; returns buf. */
char *as_names(char *buf, size_t len);

/* NULL with a message in err when the name is unknown (listing the names
 * that exist) or the configuration is bad. cfg may be NULL (no keys). */
as *as_create(const char *name, const as_config *cfg, char *err, size_t errlen);
/* The same from an ops struct that need not be registered (tests). */
as *as_create_ops(const struct as_ops *ops, const as_config *cfg, char *err, size_t errlen);
/* The replica count to apply now: the policy's answer (current_replicas on
 * AS_KEEP) clamped to [view->min_replicas, view->max_replicas]. */
int as_recommend(as *a, const as_view *view);
double as_period_s(const as *a);
/* Why the last as_recommend gave its result ("" before the first). */
const char *as_reason(const as *a);
const char *as_name(const as *a);
void as_destroy(as *a);

/* ---- helpers shared by policies (and the engine) ---- */

/* Value of name in v's pool metrics; 0 and *out untouched when absent. */
int as_view_metric(const as_view *v, const char *name, double *out);
/* Value of name in one pod's custom metrics; 0 when absent. */
int as_pod_metric(const as_pod_view *p, const char *name, double *out);

/* The param named key in cfg, or NULL. */
const as_param *as_param_find(const as_config *cfg, const char *key);
/* Writes "source:line:col: " for p (or "source: " when p has no position)
 * followed by the formatted message into err. Always returns NULL, so an
 * init can `return as_fail(...)`. */
void *as_fail(char *err, size_t errlen, const as_config *cfg, const as_param *p,
              const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 5, 6)))
#endif
    ;
/* Fails on the first key of cfg that is not in keys (NULL-terminated),
 * listing the accepted keys. Returns 0 when all keys are known. */
int as_check_keys(const as_config *cfg, const char *const *keys, char *err, size_t errlen);
/* Typed reads of an optional key: 1 = read, 0 = absent (*out untouched),
 * -1 = present but bad (message in err). Durations take the scenario units
 * (250ms, 15s, 5m, 2h, 1d); numbers are plain decimals; fractions accept
 * "0.85" or "85%"; booleans true/false. */
int as_param_duration(const as_config *cfg, const char *key, double *out_s, char *err, size_t errlen);
int as_param_number(const as_config *cfg, const char *key, double *out, char *err, size_t errlen);
int as_param_fraction(const as_config *cfg, const char *key, double *out, char *err, size_t errlen);
int as_param_int(const as_config *cfg, const char *key, int *out, char *err, size_t errlen);
int as_param_bool(const as_config *cfg, const char *key, int *out, char *err, size_t errlen);
/* Parses a duration with the scenario's units; 0 on success. */
int as_parse_duration_s(const char *text, double *out_s);

#endif
