/*
 * results.h - what one simulation run produced, as plain data.
 *
 * The engine fills an rp_results; the writers in this folder turn it into
 * summary.json, timeseries.csv, events.jsonl and the terminal table. Nothing
 * here knows about SimGrid or the scenario parser, so the writers are tested
 * on hand-built results.
 */
#ifndef FLEETSIM_RESULTS_H
#define FLEETSIM_RESULTS_H

#include <stdio.h>
#include <stddef.h>

/* Where requests ended. generated == completed + rejected + failed +
 * timed_out + in_flight_at_end, always. */
typedef struct {
    unsigned long generated;
    unsigned long completed;
    unsigned long rejected;   /* queue full at balancer or node (503) */
    unsigned long failed;     /* node or upstream failure (502) */
    unsigned long timed_out;  /* client deadline or balancer queue timeout (504) */
    unsigned long in_flight_at_end;
} rp_counts;

typedef struct {
    double mean, p50, p90, p99, p999, max;
} rp_latency;

/* One node's utilisation over the run, for the per-node heatmap. */
typedef struct {
    char *name;                /* "gpu/3" */
    double *busy;              /* n_samples entries: busy GPUs / gpus_per_node over the
                                  interval, 0..1; NAN while the node does not exist, and
                                  where it ended crashed without work */
} rp_node_series;

/* An LLM pool's token metrics (NULL for the batch server). Latencies and
 * tokens count requests that arrived after warm-up. */
typedef struct {
    char *gpu;                 /* "H100-SXM" */
    int tensor_parallel, replicas_per_node;
    int expert_parallel;       /* GPUs of an expert-parallel group; 0 = none */
    long kv_blocks_per_replica;
    int block_size, max_num_batched_tokens, max_num_seqs;
    double kv_bytes_per_token, weight_bytes; /* per replica, all its GPUs */
    rp_latency ttft;           /* first token - arrival */
    rp_latency tpot;           /* (last - first) / (output tokens - 1), finished requests */
    rp_latency itl;            /* gaps between consecutive tokens */
    rp_latency e2e;            /* last token - arrival, finished requests */
    unsigned long finished;    /* completed in time */
    unsigned long good;        /* of those, within every slo target of ttft/tpot/e2e */
    double input_tokens, output_tokens;
    double input_tps, output_tps; /* over the measured span */
    double kv_usage_mean, kv_usage_max; /* share of the serving replicas' blocks in use */
    unsigned long preemptions, steps;
    unsigned long prefix_queries, prefix_hits; /* prompt tokens looked up, found */
    double cost_per_mtok;      /* the pool's cost over the run / its output tokens (millions) */
    /* prefill/decode disaggregation: "prefill" or "decode", NULL for a mixed
     * pool; a prefill pool's latencies, finished and goodput count its
     * requests through their decode, its decode pool's count nothing */
    char *role;
    char *decode_pool, *decode_router; /* a prefill pool: where its KV caches go, and how */
    /* landed; started (bytes moving) and ended without landing; failed
     * before a transfer started (no decode replica up, or the attempt
     * failed while the decode replica had no blocks for it yet) */
    unsigned long kv_transfers, kv_transfers_failed, kv_transfers_unstarted;
    double kv_transfer_bytes;  /* of those that landed */
    rp_latency kv_transfer_s;  /* send to landing, those that landed */
    unsigned long *kv_per_replica; /* requests sent to each decode replica (node-major) */
    int n_kv_per_replica;
} rp_llm;

typedef struct {
    char *name;
    int gpus_per_node;
    int replicas_min, replicas_max;
    double utilization;        /* busy GPU-seconds / available GPU-seconds */
    double gpu_hours;
    double energy_kwh;
    double cost;               /* gpu_hours * price, or amortised; egress included */
    /* pricing of a hybrid fleet (written when rp_results.hybrid): */
    char *zone;                /* its failure domain (the pool's name when none given) */
    int billing_amortised;     /* every node slot paid for the whole run */
    double cost_compute;       /* GPU cost: used hours, or amortised */
    double egress_gb;          /* response bytes it sent, 1e9 bytes a GB */
    double cost_egress;        /* egress_gb * egress_per_gb */
    unsigned long failover_in; /* other classes' requests failover sent here */
    rp_counts counts;          /* requests routed to this pool (arrivals) */
    double node_capacity_qps;  /* one node's throughput at full batches; 0 = unknown */
    rp_node_series *nodes;     /* per-node series; NULL when not recorded */
    int n_nodes;
    rp_llm *llm;               /* LLM pools only */
} rp_pool;

/* One row of the time series per interval and, inside it, per pool. */
typedef struct {
    double queue_depth;        /* requests waiting at nodes and balancer, at interval end */
    double busy_gpus;          /* time-averaged over the interval */
    double serving_gpus;       /* GPUs of ready or draining nodes, time-averaged */
    int replicas;              /* ready nodes at interval end */
    int starting;              /* nodes provisioning, starting or loading (not ready) */
    int draining;              /* nodes draining (not receiving new requests) */
    int pending;               /* replicas waiting for a node (node_pool), at interval end */
    /* LLM pools: KV cache in use (time-averaged share), running and waiting
     * sequences at interval end */
    double kv_usage, running, waiting;
} rp_pool_sample;

typedef struct {
    double t_s;                /* interval start */
    double offered_qps;
    unsigned long completed, rejected, failed, timed_out;
    double p50_s, p99_s;       /* latency of requests completed in the interval; 0 if none */
    rp_pool_sample *pools;     /* n_pools entries */
} rp_sample;

typedef struct {
    double t_s;
    char *type;                /* "run_start", "node_ready", ... */
    char *subject;             /* pool or node name, may be NULL */
    char *detail;              /* free text, may be NULL */
} rp_event;

/* A cache stage of a pipeline. */
typedef struct {
    char *name;
    unsigned long hits, misses;
} rp_cache;

/* An asynchronous queue of a pipeline and its backlog. */
typedef struct {
    char *name;
    char *consumer;            /* the pool consuming it */
    unsigned long published, delivered, refused; /* refused: full (503) or broker down (502) */
    unsigned long processed, lost; /* jobs it acknowledged: through their last stage, or failed */
    unsigned long redelivered; /* deliveries that failed at the connection and went back */
    rp_latency lag_s;          /* processed jobs: acknowledgement to the end of the last stage */
    int backlog_max, backlog_at_end;
    double *backlog;           /* n_samples entries: messages held at each interval's end */
} rp_queue;

/* An L7 balancer of a two-tier front end. */
typedef struct {
    char *name;
    unsigned long routed;      /* connections the L4 balancer sent it */
    unsigned long refused;     /* of those, refused (502) while it was down */
    unsigned long cut;         /* passed on, then failed (502) as it went down */
} rp_balancer;

/* Per traffic class: where its requests ended and their latency. */
typedef struct {
    char *name;
    char *pool;                /* the first stage of its pipeline */
    char *pipeline;            /* its explicit pipeline, or NULL (the pool alone) */
    rp_counts counts;          /* measured (after warm-up) */
    rp_latency latency_s;
    double profile_period_s;   /* its rate profile repeats every this (0: it does not) */
} rp_class;

/* One alert instance as Prometheus tracks it; times NAN when never reached. */
typedef struct {
    char *name;
    char *severity;            /* may be NULL */
    char *receiver;            /* may be NULL */
    double pending_at, firing_at, resolved_at, notified_at;
    char *summary;             /* rendered annotation, may be NULL */
} rp_alert;

/* A change in a pool's desired replica count. */
typedef struct {
    double t_s;
    char *pool;
    int from, to;
    char *reason;              /* may be NULL */
} rp_scaling;

/* An injected fault and what it caused. end_s NAN: still active at the end. */
typedef struct {
    double start_s, end_s;
    char *kind;                /* "node_crash", ... */
    char *target;              /* may be NULL */
    char *detail;              /* may be NULL */
    unsigned long failed, timed_out, rejected; /* requests attributed to the fault */
    double error_share;        /* share of the run's errors attributed; NAN unknown */
    /* LLM pools (written as "llm" when llm is set): requests whose KV cache
     * it destroyed with the replica holding it, those of them sent again
     * (each starting over with a full prefill) and the prompt tokens they
     * had computed (computed again); KV handoffs it failed, or slowed and
     * by how much in all; requests it held at a prefill pool's balancer
     * with no worker up that got their first token, and the seconds it
     * added to their TTFT in all */
    int llm;
    unsigned long kv_lost, restarted, handoffs_failed, handoffs_slowed, ttft_delayed;
    double prefill_tokens_redone, handoff_delay_s, ttft_added_s;
} rp_fault;

/* One judged window of a steady-state hypothesis. */
typedef struct {
    double start_s, end_s;
    double value;              /* availability, error rate, or share slower than the bound */
    int met;
} rp_window;

typedef struct {
    char *text;                /* "availability >= 0.999 over steady" */
    int met;                   /* every window met (1), or not (0) */
    rp_window *windows;
    size_t n_windows;
} rp_hypothesis;

/* A stretch of intervals where errors or p99 exceeded the SLO, with the
 * causes of its failed requests and each one's share. */
typedef struct {
    double start_s, end_s;
    unsigned long errors;
    int n_causes;
    char **causes;             /* a fault's label, "overload" or "scaling_lag" */
    double *shares;
} rp_bad_window;

/* Per minute of the run (after warm-up). */
typedef struct {
    double t_s;
    unsigned long good, bad;   /* completed; rejected + failed + timed out */
    double budget_remaining;   /* of the SLO's error budget for the run, after this minute */
    double burn_rate;          /* this minute's error ratio / the budget ratio */
    int slo_met;
} rp_minute;

/* What monitoring made of one injected fault. */
typedef struct {
    size_t fault;              /* index in faults */
    char *alert;               /* first alert to fire at or after the fault's start; NULL: none */
    double firing_at;          /* NAN: none */
    char *receiver;            /* of the first notification of an alert fired since; NULL: none */
    char *integration;         /* "email", "pagerduty", ...; NULL: none */
    double notified_at;        /* NAN: none */
} rp_fault_alert;

/* summary.json `alerting`: detection per fault, and noise. */
typedef struct {
    int on;                    /* the run was monitored */
    double grace_s;            /* an alert firing this long after a fault ended is still its */
    size_t notifications;      /* sent by Alertmanager (one per integration) */
    size_t fired;              /* alert activations that reached firing */
    rp_fault_alert *faults;    /* one per entry of faults */
    size_t n_faults;
    size_t *false_positives;   /* indices in alerts: fired with no fault active (or in grace) */
    size_t n_false_positives;
    int export_failed;         /* --openmetrics / --promtool-test could not be written */
} rp_alerting;

typedef struct {
    char *scenario;
    unsigned long seed;
    double sim_time_s;
    double warmup_s;
    double wall_time_s;
    double peak_rss_mb;           /* the process's peak resident set (getrusage ru_maxrss) */
    double fast_quantum_s;     /* simulation.mode fast: its arrival quantum; 0: exact */
    int interrupted;              /* stopped early (SIGINT): sim_time_s is where it stopped */
    rp_counts requests;        /* every request of the run */
    rp_counts measured;        /* requests that arrived after warm-up */
    rp_latency latency_s;      /* completed requests after warm-up */
    double availability;       /* measured completed / measured finished */
    double throughput_qps;     /* measured completed / (sim_time - warmup) */
    rp_pool *pools;
    int hybrid;                   /* pools priced per pool (failover, billing, egress) */
    int n_pools;
    double gpu_hours, energy_kwh, cost;
    double slo_latency_p99_s;  /* 0 = not set */
    double slo_availability;   /* 0 = not set */
    /* LLM targets (0 = not set), judged on every LLM pool */
    double slo_ttft_p99_s, slo_tpot_p99_s, slo_e2e_p99_s, slo_goodput;
    rp_sample *samples;
    size_t n_samples;
    double interval_s;
    rp_event *events;
    size_t n_events, cap_events;
    char *description;         /* scenario description, may be NULL */
    int has_clock;             /* the scenario's start_time: t = 0 is a wall-clock time */
    double clock_start_s;      /* t = 0 in seconds since 1970-01-01 UTC */
    int utc_offset_s;          /* the zone start_time was written in */
    char currency[4];          /* the scenario's cost.currency; "" = not set: USD */
    rp_cache *caches;
    int n_caches;
    rp_queue *queues;
    int n_queues;
    rp_balancer *balancers;    /* L7 balancers behind an L4; NULL without two tiers */
    int n_balancers;
    rp_class *classes;         /* per traffic class; NULL when not recorded */
    int n_classes;
    rp_alert *alerts;
    size_t n_alerts;
    rp_scaling *scaling;
    size_t n_scaling;
    rp_fault *faults;
    size_t n_faults;
    unsigned long attempts;       /* tries sent to servers (retries included) */
    unsigned long attempt_errors; /* tries that failed at the connection level */
    rp_hypothesis *hypotheses;
    size_t n_hypotheses;
    int hypotheses_met;           /* 1 all met, 0 one failed, -1 none declared */
    rp_bad_window *bad_windows;
    size_t n_bad_windows;
    unsigned long errors_overload, errors_scaling_lag, errors_faults;
    double availability_peak;     /* over the intervals with offered >= half the maximum */
    double downtime_minutes;      /* minutes whose success ratio missed the SLO */
    double error_budget_remaining;/* 1 - errors / allowed errors; NAN without an SLO */
    rp_minute *minutes;
    size_t n_minutes;
    rp_alerting alerting;      /* monitoring's verdicts; alerting.on = 0 when not monitored */
} rp_results;

void rp_results_free(rp_results *r);
/* Appends an event (strings copied; NULL allowed). */
void rp_add_event(rp_results *r, double t_s, const char *type, const char *subject,
                  const char *detail);

/* Append with strings copied (NULL allowed where the field says so). */
void rp_add_alert(rp_results *r, const rp_alert *a);
void rp_add_scaling(rp_results *r, double t_s, const char *pool, int from, int to,
                    const char *reason);
void rp_add_fault(rp_results *r, const rp_fault *f);

/* SLO verdict: 1 met, 0 missed, -1 no SLO given. */
int rp_slo_met(const rp_results *r);
/* The interval after warm-up with the most offered load (the first of
 * equals): summary.json's `peak`; -1 when there is none. */
int rp_peak_interval(const rp_results *r);
/* A pool's busy GPUs over its serving (ready or draining) GPUs in one
 * interval, both time-averaged; NAN when it had none. */
double rp_busy_share(const rp_sample *s, int pool);
/* Conservation: 1 when generated equals the sum of the buckets. */
int rp_conserved(const rp_counts *c);

/* Writers return 0 on success, -1 with errno set. summary.json is
 * byte-identical for identical results apart from wall_time_s. */
int rp_write_summary(const rp_results *r, const char *path);
/* The unit of r's costs: its currency, or "USD". */
const char *rp_currency(const rp_results *r);
int rp_write_timeseries(const rp_results *r, const char *path);
int rp_write_events(const rp_results *r, const char *path);
/* The verdict of each steady-state hypothesis and its failing windows. */
void rp_print_hypotheses(const rp_results *r, FILE *out);
/* availability.csv: per minute, success ratio, SLO, error budget, burn rate. */
int rp_write_availability(const rp_results *r, const char *path);
/* The short table printed after a run. */
void rp_print_table(const rp_results *r, FILE *out);

#endif
