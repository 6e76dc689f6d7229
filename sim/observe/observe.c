/*
 * observe.c - the run as a Prometheus server and an Alertmanager see it:
 * simulated exporters scraped every scrape_interval, the scenario's rule
 * files (and, with slo_rules, burn-rate rules generated from `slo`)
 * evaluated every evaluation_interval, alerts routed through
 * alertmanager.yml. The library in monitoring/ does the Prometheus part;
 * this file feeds it from the engine and turns what it reports into
 * events.jsonl entries, summary.json's `alerts` and `alerting`, and the
 * --openmetrics / --promtool-test exports.
 *
 * One actor on the balancer's host does scrapes, evaluations and
 * Alertmanager flushes in time order, so a scrape due at t is always in
 * the store before an evaluation at t (the contract in
 * monitoring/README.md). It reads engine state and never changes it; the
 * only engine-side state is the request counters and the duration
 * histogram, fed by obs_request_end() from eng_req_end(), and the LLM
 * nodes' latency histograms, fed by obs_llm_*() from serve/llm.c.
 *
 * What is scraped (monitoring/README.md has the metric contract):
 * - per node that is a scrape target (any state but off): `up`, and, while
 *   it answers, node_cpu_utilisation and node_gpu_utilisation, both its
 *   GPUs' busy fraction over the last scrape interval (one serving process
 *   drives the GPU, as in autoscaling.c); node_network_receive_bytes_total
 *   and node_network_transmit_bytes_total (device "eth0": the node's one
 *   link), the traffic classes' bytes_in of every request it accepted and
 *   bytes_out of every request it completed, from 0 each time it comes up;
 *   with the pool's host_memory, node_memory_MemTotal_bytes and
 *   node_memory_MemAvailable_bytes (total less base, less
 *   per_queued_request per request in its queue); with the model's memory,
 *   per GPU (label gpu, 0-based) DCGM_FI_DEV_FB_USED: the weights while the
 *   model is loaded (warming, ready, draining) plus per_request per request
 *   of the batch running on that GPU, in whole MiB as DCGM reports it;
 *   with a declared gpu_memory also DCGM_FI_DEV_FB_FREE and
 *   DCGM_FI_DEV_FB_TOTAL (no reserved memory is modelled); node_exporter's
 *   node_cpu_seconds_total{cpu, mode="user"|"idle"} (one CPU per GPU, busy
 *   as the GPUs are), node_load1 (requests running or queued, decayed as
 *   the kernel's 1m average), node_boot_time_seconds; and per GPU of a
 *   GPU node DCGM_FI_DEV_GPU_UTIL (%), DCGM_FI_DEV_POWER_USAGE (the power
 *   model) and DCGM_FI_DEV_SM_CLOCK (boost while busy, idle clock when
 *   not); all from 0 again when the node boots. A target
 *   answers when its host is on and it has not failed; when it does not,
 *   `up` is 0 and its other series get one staleness marker, as Prometheus
 *   writes for a failed scrape. A node switched off (scaled in) stops being
 *   a target: every series of it gets a marker, so `up == 0` does not fire
 *   for it;
 * - per node of an LLM pool, among its series above (so with the same `up`
 *   and staleness): vLLM's own, named, typed and bucketed as vLLM's
 *   Prometheus logger publishes them, labelled pool, node and model_name:
 *   gauges vllm:num_requests_running, vllm:num_requests_waiting,
 *   vllm:kv_cache_usage_perc; counters vllm:num_preemptions_total,
 *   vllm:prompt_tokens_total, vllm:generation_tokens_total,
 *   vllm:request_success_total{finished_reason},
 *   vllm:prefix_cache_queries_total, vllm:prefix_cache_hits_total;
 *   histograms vllm:time_to_first_token_seconds,
 *   vllm:inter_token_latency_seconds,
 *   vllm:request_time_per_output_token_seconds,
 *   vllm:e2e_request_latency_seconds. A node aggregates its replicas:
 *   counts summed, KV usage averaged (serve_llm_node_stats_get); counters
 *   and histograms restart from 0 when its host goes down;
 * - per pool: fleetsim_in_flight, fleetsim_queue_depth, fleetsim_replicas
 *   (ready nodes), fleetsim_pending_pods (nodes starting),
 *   fleetsim_inference_seconds_total (busy GPU-seconds); kube-state-metrics'
 *   kube_deployment_status_replicas (running or starting) and, with an
 *   autoscaler, kube_horizontalpodautoscaler_status_desired_replicas;
 * - per traffic class: fleetsim_requests_total{code} (200 completed, 503
 *   rejected, 502 failed, 504 timed out; every code from 0 at t = 0, so
 *   the first error shows in rate()), and the request duration histogram
 *   fleetsim_request_duration_seconds over every finished request (as an
 *   ingress controller measures it: whatever the status).
 * - per pipeline cache: fleetsim_cache_requests_total{cache, result="hit"
 *   or "miss"} (lookups so far; the hit ratio is a rate() ratio of them);
 *   per pipeline queue: fleetsim_queue_backlog{queue} (messages held) and
 *   fleetsim_queue_messages_total{queue, result="published", "delivered"
 *   or "refused"}.
 * A series without a model behind it (GPU
 * memory without models.<name>.memory, node memory without host_memory) is
 * not exported at all.
 *
 * Memory: the store keeps only what the rules read (their largest range
 * plus an interval); --openmetrics and --promtool-test keep everything.
 */
#define _XOPEN_SOURCE 700 /* realpath */
#include "observe.h"
#include "serve.h"
#include "mon.h"

#include <simgrid/engine.h>

#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* OpenMetrics timestamps: sim t = 0 is 2023-11-14T22:13:20Z, a fixed date
 * so exports are reproducible. */
#define OBS_EPOCH_S 1700000000.0
/* An alert firing this long after a fault ended is still counted as the
 * fault's: a node that recovers takes a while to boot and catch up. */
#define OBS_FAULT_GRACE_S 300.0

enum { N_CODES = 4 };
static const char *const CODES[N_CODES] = { "200", "503", "502", "504" }; /* by B_* bucket */

/* 1 MiB: DCGM reports framebuffer memory in whole MiB. */
#define OBS_MIB 1048576.0

/* ---------- vLLM's series of an LLM pool's nodes ----------
 *
 * Names, types and bucket bounds are vLLM's own (vLLM v1 engine, the
 * latest): vllm/v1/metrics/loggers.py (PrometheusStatLogger), bounds from
 * vllm/v1/metrics/buckets.py, what is counted when from
 * vllm/v1/metrics/stats.py; docs/design/metrics.md. vLLM renamed
 * vllm:gpu_cache_usage_perc to vllm:kv_cache_usage_perc in 0.9 and
 * vllm:time_per_output_token_seconds (per token) to
 * vllm:inter_token_latency_seconds in 0.11, adding the per-request
 * vllm:request_time_per_output_token_seconds; current vLLM shows the old
 * names only with --show-hidden-metrics-for-version, and they are not
 * published here. A node aggregates its replicas, as one
 * vLLM server would with its data-parallel engines folded into one: counts
 * summed, KV usage averaged. Counters and histograms start again from 0
 * when the node's host goes down (a restarted vLLM process). */
enum { LLM_TTFT, LLM_ITL, LLM_TPOT, LLM_E2E, N_LLM_HIST };

/* TIME_TO_FIRST_TOKEN_BUCKETS, INTER_TOKEN_LATENCY_BUCKETS (also the
 * per-request TPOT's) and REQUEST_LATENCY_BUCKETS of buckets.py */
static const double TTFT_BOUNDS_S[] = { 0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1,
                                        0.25,  0.5,   0.75, 1.0,  2.5,  5.0,  7.5,  10.0,
                                        20.0,  40.0,  80.0, 160.0, 640.0, 2560.0 };
static const double ITL_BOUNDS_S[] = { 0.01, 0.025, 0.05, 0.075, 0.1,  0.15, 0.2,
                                       0.3,  0.4,   0.5,  0.75,  1.0,  2.5,  5.0,
                                       7.5,  10.0,  20.0, 40.0,  80.0 };
static const double E2E_BOUNDS_S[] = { 0.3,  0.5,  0.8,  1.0,  1.5,   2.0,   2.5,
                                       5.0,  10.0, 15.0, 20.0, 30.0,  40.0,  50.0,
                                       60.0, 120.0, 240.0, 480.0, 960.0, 1920.0, 7680.0 };
#define N_OF(a) ((int)(sizeof(a) / sizeof *(a)))

static const struct {
    const char *family;
    const char *help;
    const double *bounds;
    int n_bounds;
} LLM_HIST[N_LLM_HIST] = {
    { "vllm:time_to_first_token_seconds",
      "Time to first token in seconds, from the client's send.", TTFT_BOUNDS_S,
      N_OF(TTFT_BOUNDS_S) },
    { "vllm:inter_token_latency_seconds",
      "Time between successive output tokens of a request in seconds.", ITL_BOUNDS_S,
      N_OF(ITL_BOUNDS_S) },
    { "vllm:request_time_per_output_token_seconds",
      "Mean time per output token after the first, per request, in seconds.", ITL_BOUNDS_S,
      N_OF(ITL_BOUNDS_S) },
    { "vllm:e2e_request_latency_seconds",
      "Request latency from the client's send to its last token in seconds.", E2E_BOUNDS_S,
      N_OF(E2E_BOUNDS_S) },
};

/* Gauges and counters, in the order llm_values() fills them; the success
 * counter has one series per finished_reason. */
enum {
    L_RUNNING, L_WAITING, L_KV, L_PREEMPTIONS, L_PROMPT, L_GENERATION, L_PREFIX_QUERIES,
    L_PREFIX_HITS, L_SUCCESS, N_LLM_SCALAR
};
static const struct {
    const char *family;
    mon_metric_type type;
    const char *help;
} LLM_SCALAR[N_LLM_SCALAR] = {
    { "vllm:num_requests_running", MON_METRIC_GAUGE,
      "Requests in the running batches of the node's replicas." },
    { "vllm:num_requests_waiting", MON_METRIC_GAUGE,
      "Requests waiting in the node's replicas' queues, preempted ones included." },
    { "vllm:kv_cache_usage_perc", MON_METRIC_GAUGE,
      "KV-cache blocks held, share of all, mean over the node's replicas (1 = full)." },
    { "vllm:num_preemptions", MON_METRIC_COUNTER, "Preemptions by the node's replicas." },
    { "vllm:prompt_tokens", MON_METRIC_COUNTER,
      "Prompt tokens of the requests that produced their first token." },
    { "vllm:generation_tokens", MON_METRIC_COUNTER, "Output tokens generated." },
    { "vllm:prefix_cache_queries", MON_METRIC_COUNTER,
      "Prompt tokens looked up in the prefix cache." },
    { "vllm:prefix_cache_hits", MON_METRIC_COUNTER, "Prompt tokens found in the prefix cache." },
    { "vllm:request_success", MON_METRIC_COUNTER,
      "Requests that produced their last token, by finish reason." },
};
/* FINISH_REASON_STRINGS of vllm/v1/engine/__init__.py: vLLM creates the
 * series of every reason. A simulated request ends at its answer's length,
 * as a model stops at its end-of-sequence token: "stop"; cancelled
 * requests count in none (vLLM's abort path records no finished stats:
 * vllm-project/vllm issues 31503, 55634). */
enum { N_REASONS = 5 };
static const char *const REASONS[N_REASONS] = { "stop", "length", "abort", "error",
                                                 "repetition" };

/* One node's vLLM histograms: counts per bucket (not cumulative; the last
 * is +Inf), sum and count, for the node incarnation gen. */
typedef struct {
    unsigned long *n[N_LLM_HIST];
    double sum[N_LLM_HIST];
    unsigned long count[N_LLM_HIST];
    int gen;
} obs_llm;

/* A node's series other than `up`, in the order node_values() fills them:
 * cpu, gpu, network receive and transmit, then [MemTotal, MemAvailable]
 * with host_memory, then per GPU [FB_USED, [FB_FREE, FB_TOTAL]], then in
 * an LLM pool the vllm:* series (llm_values()). */
typedef struct {
    mon_series *up;
    mon_series **s;
    int n_s;
    int target;            /* was a scrape target at the last scrape */
    int marked;            /* its other series got their staleness marker */
    double busy_prev;
    obs_llm *llm;          /* LLM pools only */
    /* node_exporter's view since the host last came up: boot time, CPU
     * seconds busy per CPU, the 1-minute load average */
    int booted, gen;
    double boot_s, user_s, load1, last_t;
} obs_node;

enum { P_IN_FLIGHT, P_QUEUE, P_REPLICAS, P_PENDING, P_INFERENCE, P_KUBE_REPLICAS, N_POOL_SERIES };
static const char *const POOL_SERIES[N_POOL_SERIES] = {
    "fleetsim_in_flight", "fleetsim_queue_depth", "fleetsim_replicas", "fleetsim_pending_pods",
    "fleetsim_inference_seconds_total", "kube_deployment_status_replicas"
};

/* Max SM clock (MHz) of a GPU type while it works, as DCGM_FI_DEV_SM_CLOCK
 * reports it under load (NVIDIA's data sheets: A100 SXM 1410, H100 SXM and
 * H200 1980 boost); an idle GPU drops to its idle clock. */
#define OBS_IDLE_SM_CLOCK_MHZ 210.0
static double sm_clock_mhz(const char *gpu_type)
{
    return !strcmp(gpu_type, "a100") ? 1410.0 : 1980.0;
}

/* The help and type of every family fleetsim exports besides vLLM's, for
 * the OpenMetrics export's HELP and TYPE lines (scenarios/README.md lists
 * them). */
static const struct {
    const char *family;
    mon_metric_type type;
    const char *help;
} FAMILIES[] = {
    { "up", MON_METRIC_GAUGE, "1 if the target answered its scrape, 0 if not." },
    { "node_cpu_utilisation", MON_METRIC_GAUGE, "CPU busy fraction over the last scrape interval." },
    { "node_gpu_utilisation", MON_METRIC_GAUGE, "GPU busy fraction over the last scrape interval." },
    { "node_cpu_seconds", MON_METRIC_COUNTER, "Seconds the CPUs spent in each mode." },
    { "node_load1", MON_METRIC_GAUGE, "1m load average." },
    { "node_boot_time_seconds", MON_METRIC_GAUGE, "Node boot time, in unixtime." },
    { "node_network_receive_bytes", MON_METRIC_COUNTER, "Network device statistic receive_bytes." },
    { "node_network_transmit_bytes", MON_METRIC_COUNTER, "Network device statistic transmit_bytes." },
    { "node_memory_MemTotal_bytes", MON_METRIC_GAUGE, "Memory information field MemTotal_bytes." },
    { "node_memory_MemAvailable_bytes", MON_METRIC_GAUGE, "Memory information field MemAvailable_bytes." },
    { "DCGM_FI_DEV_GPU_UTIL", MON_METRIC_GAUGE, "GPU utilization (in %)." },
    { "DCGM_FI_DEV_POWER_USAGE", MON_METRIC_GAUGE, "Power draw (in W)." },
    { "DCGM_FI_DEV_SM_CLOCK", MON_METRIC_GAUGE, "SM clock frequency (in MHz)." },
    { "DCGM_FI_DEV_FB_USED", MON_METRIC_GAUGE, "Framebuffer memory used (in MiB)." },
    { "DCGM_FI_DEV_FB_FREE", MON_METRIC_GAUGE, "Framebuffer memory free (in MiB)." },
    { "DCGM_FI_DEV_FB_TOTAL", MON_METRIC_GAUGE, "Framebuffer memory total (in MiB)." },
    { "kube_deployment_status_replicas", MON_METRIC_GAUGE,
      "The number of replicas per deployment." },
    { "kube_horizontalpodautoscaler_status_desired_replicas", MON_METRIC_GAUGE,
      "Desired number of replicas of pods managed by this autoscaler." },
    { "fleetsim_requests", MON_METRIC_COUNTER, "Finished requests by HTTP code." },
    { "fleetsim_request_duration_seconds", MON_METRIC_HISTOGRAM,
      "Request latency from the client's send, every finished request." },
    { "fleetsim_in_flight", MON_METRIC_GAUGE, "Requests accepted and not finished." },
    { "fleetsim_queue_depth", MON_METRIC_GAUGE, "Requests waiting in queues." },
    { "fleetsim_replicas", MON_METRIC_GAUGE, "Ready replicas." },
    { "fleetsim_pending_pods", MON_METRIC_GAUGE, "Replicas starting." },
    { "fleetsim_inference_seconds", MON_METRIC_COUNTER, "GPU-seconds of inference." },
    { "fleetsim_cache_requests", MON_METRIC_COUNTER, "Lookups of a pipeline cache by result." },
    { "fleetsim_queue_backlog", MON_METRIC_GAUGE, "Messages held by a pipeline queue's broker." },
    { "fleetsim_queue_messages", MON_METRIC_COUNTER, "Messages through a pipeline queue by result." },
};

static struct {
    int on;
    const char *openmetrics_path;
    const char *promtool_path;
    const char *series_path;   /* --series: the store, dumped at the end */
    double scrape_s;
    int n_buckets;             /* finite bounds; +Inf is one more */
    const double *bounds;
    mon_store *store;
    mon_rules **rules;
    char **rule_names;         /* as the promtool file names them */
    size_t *tr_seen;           /* transitions already written to events */
    int n_rules;
    char *slo_text;            /* generated rule file, or NULL */
    mon_am *am;
    size_t nt_seen;
    obs_node **nodes;          /* [pool][host] */
    double *values;            /* scratch for node_values(), the most series of a node */
    mon_series **pool;         /* [pool][N_POOL_SERIES] */
    mon_series **hpa;          /* [pool]: desired replicas, pools with an autoscaler */
    mon_series **cache;        /* [cache][hit, miss] */
    mon_series **queue;        /* [queue][backlog, published, delivered, refused] */
    mon_series **req;          /* [class][code] */
    unsigned long *req_n;
    mon_series **bkt;          /* [class][n_buckets + 1], cumulative as exported */
    unsigned long *bkt_n;      /* [class][n_buckets + 1], per bucket */
    mon_series **hsum, **hcount;
    double *sum;
    unsigned long *count;
} obs_state;

/* ---------- series ---------- */

static mon_series *series(const char *name, const char *k1, const char *v1, const char *k2,
                          const char *v2, const char *k3, const char *v3)
{
    mon_labels ls = { 0 };
    mon_labels_set(&ls, "__name__", name);
    mon_labels_set(&ls, k1, v1);
    if (k2)
        mon_labels_set(&ls, k2, v2);
    if (k3)
        mon_labels_set(&ls, k3, v3);
    mon_series *s = mon_store_series(obs_state.store, &ls);
    mon_labels_free(&ls);
    return s;
}

/* Which series a node exports, from its pool's configuration and its
 * power (a rollout's new nodes have the rollout's): the rules both the
 * exporters (a node) and the check of rules against them (a scenario,
 * can_produce) read. */
static int cfg_host_memory(const sc_pool *pc)
{
    return pc->host_memory.total_bytes > 0;
}

static int cfg_gpu_capacity(const sc_model *m, const sc_power *pw)
{
    return m->has_memory && pw->gpu_memory_bytes > 0;
}

/* DCGM's GPU series exist for nodes with GPUs (gpu_type other than cpu). */
static int cfg_dcgm(const sc_power *pw)
{
    return pw->gpu_type && strcmp(pw->gpu_type, "cpu") != 0;
}

static int has_host_memory(const eng_node *n)
{
    return cfg_host_memory(n->pool->cfg);
}

static int has_gpu_memory(const eng_node *n)
{
    return n->pool->model->has_memory;
}

static int has_gpu_capacity(const eng_node *n)
{
    return cfg_gpu_capacity(n->pool->model, n->power);
}

static int is_llm(const eng_pool *p)
{
    return p->serve == &serve_llm;
}

static int has_dcgm(const eng_node *n)
{
    return cfg_dcgm(n->power);
}

/* vllm:* series of one node: gauges and counters, then per histogram its
 * buckets, _sum and _count. */
static int llm_n_series(void)
{
    int k = N_LLM_SCALAR - 1 + N_REASONS;
    for (int h = 0; h < N_LLM_HIST; h++)
        k += LLM_HIST[h].n_bounds + 3;
    return k;
}

static mon_series *llm_series(const eng_node *n, const char *name, const char *k, const char *v)
{
    mon_labels ls = { 0 };
    mon_labels_set(&ls, "__name__", name);
    mon_labels_set(&ls, "pool", n->pool->cfg->name);
    mon_labels_set(&ls, "node", n->name);
    mon_labels_set(&ls, "model_name", n->pool->model->name);
    if (k)
        mon_labels_set(&ls, k, v);
    mon_series *s = mon_store_series(obs_state.store, &ls);
    mon_labels_free(&ls);
    return s;
}

/* A bucket bound as vLLM's /metrics writes it, Python's repr of the float
 * (prometheus_client's floatToGoString): "0.001", "1.0", "2560.0". Rules
 * written against vLLM select buckets by this text. */
static void le_text(double bound, char *buf, size_t len)
{
    mon_fmt_go(bound, buf, len);
    if (!strpbrk(buf, ".e"))
        strncat(buf, ".0", len - strlen(buf) - 1);
}

static void llm_add_series(const eng_node *n, obs_node *o)
{
    char name[128], le[40];
    for (int i = 0; i < N_LLM_SCALAR; i++) {
        const char *f = LLM_SCALAR[i].family;
        int counter = LLM_SCALAR[i].type == MON_METRIC_COUNTER;
        snprintf(name, sizeof name, "%s%s", f, counter ? "_total" : "");
        if (i != L_SUCCESS)
            o->s[o->n_s++] = llm_series(n, name, NULL, NULL);
        else
            for (int r = 0; r < N_REASONS; r++)
                o->s[o->n_s++] = llm_series(n, name, "finished_reason", REASONS[r]);
    }
    for (int h = 0; h < N_LLM_HIST; h++) {
        snprintf(name, sizeof name, "%s_bucket", LLM_HIST[h].family);
        for (int b = 0; b <= LLM_HIST[h].n_bounds; b++) {
            if (b < LLM_HIST[h].n_bounds)
                le_text(LLM_HIST[h].bounds[b], le, sizeof le);
            else
                snprintf(le, sizeof le, "+Inf");
            o->s[o->n_s++] = llm_series(n, name, "le", le);
        }
        snprintf(name, sizeof name, "%s_sum", LLM_HIST[h].family);
        o->s[o->n_s++] = llm_series(n, name, NULL, NULL);
        snprintf(name, sizeof name, "%s_count", LLM_HIST[h].family);
        o->s[o->n_s++] = llm_series(n, name, NULL, NULL);
    }
}

/* The node's histograms, emptied first when its host went down since (its
 * incarnation changed: a new vLLM process). */
static obs_llm *llm_state(const eng_node *n)
{
    obs_llm *l = obs_state.nodes[n->pool->id][n->index].llm;
    if (l && l->gen != n->life.gen) {
        for (int h = 0; h < N_LLM_HIST; h++) {
            memset(l->n[h], 0, sizeof *l->n[h] * (size_t)(LLM_HIST[h].n_bounds + 1));
            l->sum[h] = 0;
            l->count[h] = 0;
        }
        l->gen = n->life.gen;
    }
    return l;
}

/* The vllm:* values, llm_add_series() order, at a scrape it answers. */
static void llm_values(const eng_node *n, double *v)
{
    serve_llm_node_stats st;
    serve_llm_node_stats_get(n, &st);
    int k = 0;
    v[k++] = st.running;
    v[k++] = st.waiting;
    v[k++] = st.kv_usage;
    v[k++] = (double)st.preemptions;
    v[k++] = st.prompt_tokens;
    v[k++] = st.generation_tokens;
    v[k++] = (double)st.prefix_queries;
    v[k++] = (double)st.prefix_hits;
    for (int r = 0; r < N_REASONS; r++)
        v[k++] = r == 0 ? (double)st.finished : 0;
    const obs_llm *l = llm_state(n);
    for (int h = 0; h < N_LLM_HIST; h++) {
        unsigned long cum = 0;
        for (int b = 0; b <= LLM_HIST[h].n_bounds; b++) {
            cum += l->n[h][b];
            v[k++] = (double)cum;
        }
        v[k++] = l->sum[h];
        v[k++] = (double)l->count[h];
    }
}

static void llm_observe(const eng_node *n, int h, double v)
{
    if (!obs_state.on)
        return;
    obs_llm *l = llm_state(n);
    if (!l)
        return;
    /* Prometheus's le: the first bound at or above v */
    int b = 0;
    while (b < LLM_HIST[h].n_bounds && v > LLM_HIST[h].bounds[b])
        b++;
    l->n[h][b]++;
    l->sum[h] += v;
    l->count[h]++;
}

void obs_llm_first_token(const eng_node *n, double ttft_s, int prompt_tokens)
{
    (void)prompt_tokens;
    llm_observe(n, LLM_TTFT, ttft_s);
}

void obs_llm_token(const eng_node *n, double itl_s)
{
    llm_observe(n, LLM_ITL, itl_s);
}

void obs_llm_tokens(const eng_node *n, double itl_s, unsigned long count)
{
    if (!obs_state.on || count == 0)
        return;
    obs_llm *l = llm_state(n);
    if (!l)
        return;
    int b = 0;
    while (b < LLM_HIST[LLM_ITL].n_bounds && itl_s > LLM_HIST[LLM_ITL].bounds[b])
        b++;
    l->n[LLM_ITL][b] += count;
    for (unsigned long k = 0; k < count; k++) /* count additions, as count observations make */
        l->sum[LLM_ITL] += itl_s;
    l->count[LLM_ITL] += count;
}

void obs_llm_finished(const eng_node *n, double e2e_s, double tpot_s, int output_tokens)
{
    (void)output_tokens;
    llm_observe(n, LLM_TPOT, tpot_s);
    llm_observe(n, LLM_E2E, e2e_s);
}

static void llm_describe(void)
{
    for (int i = 0; i < N_LLM_SCALAR; i++)
        mon_store_describe(obs_state.store, LLM_SCALAR[i].family, LLM_SCALAR[i].type,
                           LLM_SCALAR[i].help);
    for (int h = 0; h < N_LLM_HIST; h++)
        mon_store_describe(obs_state.store, LLM_HIST[h].family, MON_METRIC_HISTOGRAM, LLM_HIST[h].help);
}

static void node_series(eng_node *n, obs_node *o)
{
    const char *pool = n->pool->cfg->name;
    int per_gpu = has_gpu_memory(n) ? 1 + 2 * has_gpu_capacity(n) : 0;
    int llm = is_llm(n->pool) ? llm_n_series() : 0;
    o->s = calloc((size_t)(6 + 2 * n->gpus + 3 * n->gpus * has_dcgm(n) + 2 * has_host_memory(n) +
                           n->gpus * per_gpu + llm),
                  sizeof *o->s);
    o->n_s = 0;
    o->s[o->n_s++] = series("node_cpu_utilisation", "pool", pool, "node", n->name, NULL, NULL);
    o->s[o->n_s++] = series("node_gpu_utilisation", "pool", pool, "node", n->name, NULL, NULL);
    o->s[o->n_s++] = series("node_network_receive_bytes_total", "pool", pool, "node", n->name,
                            "device", "eth0");
    o->s[o->n_s++] = series("node_network_transmit_bytes_total", "pool", pool, "node", n->name,
                            "device", "eth0");
    o->s[o->n_s++] = series("node_load1", "pool", pool, "node", n->name, NULL, NULL);
    o->s[o->n_s++] = series("node_boot_time_seconds", "pool", pool, "node", n->name, NULL, NULL);
    for (int c = 0; c < n->gpus; c++) {
        char cpu[16];
        snprintf(cpu, sizeof cpu, "%d", c);
        for (int idle = 0; idle < 2; idle++) {
            mon_labels ls = { 0 };
            mon_labels_set(&ls, "__name__", "node_cpu_seconds_total");
            mon_labels_set(&ls, "pool", pool);
            mon_labels_set(&ls, "node", n->name);
            mon_labels_set(&ls, "cpu", cpu);
            mon_labels_set(&ls, "mode", idle ? "idle" : "user");
            o->s[o->n_s++] = mon_store_series(obs_state.store, &ls);
            mon_labels_free(&ls);
        }
    }
    for (int g = 0; g < n->gpus && has_dcgm(n); g++) {
        char gpu[16];
        snprintf(gpu, sizeof gpu, "%d", g);
        o->s[o->n_s++] = series("DCGM_FI_DEV_GPU_UTIL", "pool", pool, "node", n->name, "gpu", gpu);
        o->s[o->n_s++] = series("DCGM_FI_DEV_POWER_USAGE", "pool", pool, "node", n->name, "gpu", gpu);
        o->s[o->n_s++] = series("DCGM_FI_DEV_SM_CLOCK", "pool", pool, "node", n->name, "gpu", gpu);
    }
    if (has_host_memory(n)) {
        o->s[o->n_s++] = series("node_memory_MemTotal_bytes", "pool", pool, "node", n->name,
                                NULL, NULL);
        o->s[o->n_s++] = series("node_memory_MemAvailable_bytes", "pool", pool, "node", n->name,
                                NULL, NULL);
    }
    for (int g = 0; g < n->gpus && per_gpu; g++) {
        char gpu[16];
        snprintf(gpu, sizeof gpu, "%d", g);
        o->s[o->n_s++] = series("DCGM_FI_DEV_FB_USED", "pool", pool, "node", n->name, "gpu", gpu);
        if (has_gpu_capacity(n)) {
            o->s[o->n_s++] = series("DCGM_FI_DEV_FB_FREE", "pool", pool, "node", n->name, "gpu",
                                    gpu);
            o->s[o->n_s++] = series("DCGM_FI_DEV_FB_TOTAL", "pool", pool, "node", n->name, "gpu",
                                    gpu);
        }
    }
    if (llm)
        llm_add_series(n, o);
    o->up = series("up", "pool", pool, "node", n->name, NULL, NULL);
}

/* The values of a node's series (obs_node's order) at a scrape it answers;
 * util is the GPUs' busy fraction over the last interval. */
static void node_values(const eng_node *n, const obs_node *o, double util, double t, double *v)
{
    int k = 0;
    v[k++] = util;
    v[k++] = util;
    v[k++] = n->work.net_rx_bytes;
    v[k++] = n->work.net_tx_bytes;
    v[k++] = o->load1;
    v[k++] = o->boot_s; /* sim seconds, as time() reads in rules */
    for (int c = 0; c < n->gpus; c++) {
        double user = o->user_s;
        v[k++] = user;
        v[k++] = fmax(0, (t - o->boot_s) - user);
    }
    for (int g = 0; g < n->gpus && has_dcgm(n); g++) {
        const sc_power *pw = n->power;
        v[k++] = round(util * 100);
        v[k++] = pw->idle_w_per_gpu + (pw->busy_w_per_gpu - pw->idle_w_per_gpu) * util;
        v[k++] = util > 0 ? sm_clock_mhz(pw->gpu_type) : OBS_IDLE_SM_CLOCK_MHZ;
    }
    if (has_host_memory(n)) {
        const sc_host_memory *hm = &n->pool->cfg->host_memory;
        v[k++] = hm->total_bytes;
        v[k++] = hm->total_bytes - hm->base_bytes - hm->per_queued_bytes * serve_queued(n);
    }
    if (has_gpu_memory(n)) {
        const sc_model *m = n->pool->model;
        int loaded = n->life.state == NODE_WARMING || n->life.state == NODE_READY ||
                     n->life.state == NODE_DRAINING;
        double cap = n->power->gpu_memory_bytes;
        for (int g = 0; g < n->gpus; g++) {
            double used =
                (loaded ? m->weights_bytes : 0) + m->per_request_bytes * serve_running(n, g);
            v[k++] = floor(used / OBS_MIB);
            if (has_gpu_capacity(n)) {
                v[k++] = floor((cap - used) / OBS_MIB);
                v[k++] = floor(cap / OBS_MIB);
            }
        }
    }
    if (is_llm(n->pool))
        llm_values(n, v + k);
}

static void make_series(void)
{
    const sc_scenario *sc = eng_world.sc;
    obs_state.nodes = calloc((size_t)sc->n_pools, sizeof *obs_state.nodes);
    obs_state.pool = calloc((size_t)sc->n_pools * N_POOL_SERIES, sizeof *obs_state.pool);
    int most = 0;
    for (int k = 0; k < sc->n_pools; k++) {
        obs_state.nodes[k] = calloc((size_t)eng_world.pools[k].n_hosts, sizeof **obs_state.nodes);
        for (int j = 0; j < eng_world.pools[k].n_hosts; j++)
            most = most > eng_world.pools[k].nodes[j].gpus ? most : eng_world.pools[k].nodes[j].gpus;
        for (int i = 0; i < P_KUBE_REPLICAS; i++)
            obs_state.pool[k * N_POOL_SERIES + i] = series(POOL_SERIES[i], "pool", sc->pools[k].name,
                                                   NULL, NULL, NULL, NULL);
    }
    obs_state.values = calloc((size_t)(8 + 8 * most + llm_n_series()), sizeof *obs_state.values);
    for (size_t i = 0; i < sizeof FAMILIES / sizeof *FAMILIES; i++)
        mon_store_describe(obs_state.store, FAMILIES[i].family, FAMILIES[i].type, FAMILIES[i].help);
    obs_state.hpa = calloc((size_t)sc->n_pools, sizeof *obs_state.hpa);
    for (int k = 0; k < sc->n_pools; k++) {
        /* kube-state-metrics' labels: the deployment is the pool */
        mon_labels ls = { 0 };
        mon_labels_set(&ls, "__name__", "kube_deployment_status_replicas");
        mon_labels_set(&ls, "namespace", "default");
        mon_labels_set(&ls, "deployment", sc->pools[k].name);
        obs_state.pool[k * N_POOL_SERIES + P_KUBE_REPLICAS] = mon_store_series(obs_state.store, &ls);
        mon_labels_free(&ls);
        if (eng_world.pools[k].scaler) {
            mon_labels_set(&ls, "__name__", "kube_horizontalpodautoscaler_status_desired_replicas");
            mon_labels_set(&ls, "namespace", "default");
            mon_labels_set(&ls, "horizontalpodautoscaler", sc->pools[k].name);
            obs_state.hpa[k] = mon_store_series(obs_state.store, &ls);
            mon_labels_free(&ls);
        }
    }
    for (int k = 0, described = 0; k < sc->n_pools; k++) {
        if (!is_llm(&eng_world.pools[k]))
            continue;
        if (!described)
            llm_describe();
        described = 1;
        for (int j = 0; j < eng_world.pools[k].n_hosts; j++) {
            obs_llm *l = calloc(1, sizeof *l);
            for (int h = 0; h < N_LLM_HIST; h++)
                l->n[h] = calloc((size_t)LLM_HIST[h].n_bounds + 1, sizeof *l->n[h]);
            l->gen = eng_world.pools[k].nodes[j].life.gen;
            obs_state.nodes[k][j].llm = l;
        }
    }
    obs_state.cache = calloc((size_t)sc->n_caches * 2 + 1, sizeof *obs_state.cache);
    for (int i = 0; i < sc->n_caches; i++)
        for (int h = 0; h < 2; h++)
            obs_state.cache[2 * i + h] = series("fleetsim_cache_requests_total", "cache",
                                        sc->caches[i].name, "result", h ? "miss" : "hit", NULL,
                                        NULL);
    static const char *const qres[] = { "published", "delivered", "refused" };
    obs_state.queue = calloc((size_t)sc->n_queues * 4 + 1, sizeof *obs_state.queue);
    for (int i = 0; i < sc->n_queues; i++) {
        obs_state.queue[4 * i] = series("fleetsim_queue_backlog", "queue", sc->queues[i].name, NULL, NULL,
                                NULL, NULL);
        for (int r = 0; r < 3; r++)
            obs_state.queue[4 * i + 1 + r] = series("fleetsim_queue_messages_total", "queue",
                                            sc->queues[i].name, "result", qres[r], NULL, NULL);
    }
    int nc = sc->n_traffic, nb = obs_state.n_buckets + 1;
    obs_state.req = calloc((size_t)nc * N_CODES, sizeof *obs_state.req);
    obs_state.req_n = calloc((size_t)nc * N_CODES, sizeof *obs_state.req_n);
    obs_state.bkt = calloc((size_t)nc * (size_t)nb, sizeof *obs_state.bkt);
    obs_state.bkt_n = calloc((size_t)nc * (size_t)nb, sizeof *obs_state.bkt_n);
    obs_state.hsum = calloc((size_t)nc, sizeof *obs_state.hsum);
    obs_state.hcount = calloc((size_t)nc, sizeof *obs_state.hcount);
    obs_state.sum = calloc((size_t)nc, sizeof *obs_state.sum);
    obs_state.count = calloc((size_t)nc, sizeof *obs_state.count);
    for (int c = 0; c < nc; c++) {
        const char *cls = sc->traffic[c].name, *pool = sc->pools[sc->traffic[c].pool].name;
        for (int b = 0; b < N_CODES; b++)
            obs_state.req[c * N_CODES + b] = series("fleetsim_requests_total", "code", CODES[b], "pool",
                                            pool, "class", cls);
        for (int i = 0; i < nb; i++) {
            char le[40];
            if (i < obs_state.n_buckets)
                mon_fmt_go(obs_state.bounds[i], le, sizeof le);
            else
                snprintf(le, sizeof le, "+Inf");
            obs_state.bkt[c * nb + i] = series("fleetsim_request_duration_seconds_bucket", "pool", pool,
                                       "class", cls, "le", le);
        }
        obs_state.hsum[c] = series("fleetsim_request_duration_seconds_sum", "pool", pool, "class", cls,
                           NULL, NULL);
        obs_state.hcount[c] = series("fleetsim_request_duration_seconds_count", "pool", pool, "class",
                             cls, NULL, NULL);
    }
}

void obs_request_end(const eng_pool *p, const eng_req *r, int bucket, double t_s,
                     size_t interval, double latency_s)
{
    (void)p, (void)t_s, (void)interval;
    if (!obs_state.on)
        return;
    int c = r->tclass, nb = obs_state.n_buckets + 1;
    obs_state.req_n[c * N_CODES + bucket]++;
    int i = 0;
    while (i < obs_state.n_buckets && latency_s > obs_state.bounds[i])
        i++;
    obs_state.bkt_n[c * nb + i]++;
    obs_state.sum[c] += latency_s;
    obs_state.count[c]++;
}

/* ---------- scrapes ---------- */

static void scrape_node(eng_node *n, obs_node *o, double t, double now)
{
    int target = n->life.state != NODE_OFF;
    int answers = target && n->life.state != NODE_FAILED && sg_host_is_on(n->host);
    double busy = serve_busy_s(n, now);
    if (n->pool->metrics_stale) { /* stale_metrics: no sample; series go stale after 5m */
        o->busy_prev = busy;
        return;
    }
    if (target && !o->up)
        node_series(n, o);
    if (answers) {
        double g = n->gpus;
        double u = (busy - o->busy_prev) / (obs_state.scrape_s * g);
        u = u < 0 ? 0 : u > 1 ? 1 : u;
        if (!o->booted || o->gen != n->life.gen) {
            /* came up (again) since the last scrape: node_exporter's
             * counters start from 0 at its boot */
            double b = isfinite(n->life.start_s) && n->life.start_s <= t ? n->life.start_s
                       : n->life.up_since_s >= 0                          ? n->life.up_since_s
                                                                          : t;
            if (o->booted)
                b = fmax(b, o->last_t);
            o->boot_s = fmin(b, t);
            o->booted = 1;
            o->gen = n->life.gen;
            o->user_s = 0;
            o->load1 = 0;
        } else {
            o->user_s += u * obs_state.scrape_s;
        }
        /* the kernel's 1m load average (exponential decay every 5 s; here
         * every scrape): requests running or queued at the node are its
         * runnable tasks */
        double runnable = serve_queued(n);
        for (int gi = 0; gi < n->gpus; gi++)
            runnable += serve_running(n, gi);
        double e = exp(-obs_state.scrape_s / 60.0);
        o->load1 = o->load1 * e + runnable * (1 - e);
        double *v = obs_state.values;
        node_values(n, o, u, t, v);
        for (int i = 0; i < o->n_s; i++)
            mon_series_append(o->s[i], t, v[i]);
        mon_series_append(o->up, t, 1);
        o->marked = 0;
    } else if (target || o->target) {
        /* a failed scrape (up 0), or a target that went away (up stale) */
        mon_series_append(o->up, t, target ? 0 : mon_stale_nan());
        if (!o->marked) {
            for (int i = 0; i < o->n_s; i++)
                mon_series_append(o->s[i], t, mon_stale_nan());
            o->marked = 1;
        }
    }
    o->busy_prev = busy;
    o->target = target;
    o->last_t = t;
}

static void scrape(double t)
{
    double now = simgrid_get_clock();
    for (int k = 0; k < eng_world.sc->n_pools; k++) {
        eng_pool *p = &eng_world.pools[k];
        int depth = p->lbq.len;
        double busy = 0;
        for (int j = 0; j < p->n_hosts; j++) {
            scrape_node(&p->nodes[j], &obs_state.nodes[k][j], t, now);
            depth += serve_queued(&p->nodes[j]);
            busy += serve_busy_s(&p->nodes[j], now);
        }
        if (p->metrics_stale)
            continue;
        const rp_counts *c = &p->counts;
        double v[N_POOL_SERIES];
        v[P_IN_FLIGHT] = (double)(c->generated - c->completed - c->rejected - c->failed - c->timed_out);
        v[P_QUEUE] = depth;
        v[P_REPLICAS] = eng_ready_count(p, 0);
        v[P_PENDING] = eng_ready_count(p, 1) - eng_ready_count(p, 0);
        v[P_INFERENCE] = busy;
        v[P_KUBE_REPLICAS] = eng_ready_count(p, 1);
        for (int i = 0; i < N_POOL_SERIES; i++)
            mon_series_append(obs_state.pool[k * N_POOL_SERIES + i], t, v[i]);
        if (obs_state.hpa[k])
            mon_series_append(obs_state.hpa[k], t, p->target);
    }
    for (int i = 0; i < eng_world.sc->n_caches; i++) {
        mon_series_append(obs_state.cache[2 * i], t, (double)eng_world.caches[i].hits);
        mon_series_append(obs_state.cache[2 * i + 1], t, (double)eng_world.caches[i].misses);
    }
    for (int i = 0; i < eng_world.sc->n_queues; i++) {
        const eng_queue *q = &eng_world.queues[i];
        mon_series_append(obs_state.queue[4 * i], t, q->q.len);
        mon_series_append(obs_state.queue[4 * i + 1], t, (double)q->published);
        mon_series_append(obs_state.queue[4 * i + 2], t, (double)q->delivered);
        mon_series_append(obs_state.queue[4 * i + 3], t, (double)q->refused);
    }
    int nb = obs_state.n_buckets + 1;
    for (int c = 0; c < eng_world.sc->n_traffic; c++) {
        for (int b = 0; b < N_CODES; b++)
            mon_series_append(obs_state.req[c * N_CODES + b], t, (double)obs_state.req_n[c * N_CODES + b]);
        unsigned long cum = 0;
        for (int i = 0; i < nb; i++) {
            cum += obs_state.bkt_n[c * nb + i];
            mon_series_append(obs_state.bkt[c * nb + i], t, (double)cum);
        }
        mon_series_append(obs_state.hsum[c], t, obs_state.sum[c]);
        mon_series_append(obs_state.hcount[c], t, (double)obs_state.count[c]);
    }
}

/* ---------- rules and notifications to events.jsonl ---------- */

static const char *state_word(mon_alert_state from, mon_alert_state to)
{
    if (to == MON_ALERT_PENDING)
        return "pending";
    if (to == MON_ALERT_FIRING)
        return "firing";
    return from == MON_ALERT_FIRING ? "resolved" : "inactive";
}

static void emit_transitions(int i)
{
    size_t n;
    const mon_transition *tr = mon_rules_transitions(obs_state.rules[i], &n);
    for (size_t k = obs_state.tr_seen[i]; k < n; k++) {
        const mon_transition *x = &tr[k];
        char ls[512], val[40];
        const char *summary = mon_labels_get(&x->annotations, "summary");
        eng_event(x->t_s, "alert", x->alertname, "%s -> %s %s value %s%s%s",
                  state_word(MON_ALERT_INACTIVE, x->from), state_word(x->from, x->to),
                  mon_labels_str(&x->labels, ls, sizeof ls), mon_fmt_go(x->value, val, sizeof val),
                  *summary ? ": " : "", summary);
    }
    obs_state.tr_seen[i] = n;
}

static void emit_notifications(void)
{
    size_t n;
    const mon_notification *nt = mon_am_notifications(obs_state.am, &n);
    for (size_t k = obs_state.nt_seen; k < n; k++) {
        const mon_notification *x = &nt[k];
        char gl[512], names[512] = "";
        size_t at = 0;
        for (int a = 0; a < x->n_alerts && at < sizeof names; a++)
            at += (size_t)snprintf(names + at, sizeof names - at, "%s%s%s", a ? ", " : "",
                                   mon_labels_get(&x->alerts[a].labels, "alertname"),
                                   a < x->n_firing ? "" : " (resolved)");
        eng_event(x->t_s, "notification", x->receiver, "%s: %d firing, %d resolved, group %s: %s",
                  x->integration, x->n_firing, x->n_alerts - x->n_firing,
                  mon_labels_str(&x->group_labels, gl, sizeof gl), names);
    }
    obs_state.nt_seen = n;
}

/* ---------- the Prometheus server and Alertmanager ---------- */

static double next_rules_eval(void)
{
    double t = INFINITY;
    for (int i = 0; i < obs_state.n_rules; i++)
        t = fmin(t, mon_rules_next_eval(obs_state.rules[i]));
    return t;
}

static void prometheus(int argc, char *argv[])
{
    (void)argc;
    (void)argv;
    double end = eng_world.sc->duration_s;
    long long k = 0;
    for (;;) {
        /* scrape times on the millisecond grid the store keeps */
        double ts = (double)llround((double)k * obs_state.scrape_s * 1000.0) / 1000.0;
        double t = fmin(ts, next_rules_eval());
        if (obs_state.am)
            t = fmin(t, mon_am_next_flush(obs_state.am));
        if (!(t < end))
            return;
        if (t > simgrid_get_clock())
            sg_actor_sleep_until(t);
        if (eng_hook.catch_up)
            eng_hook.catch_up(t);
        if (t >= ts) {
            scrape(t);
            mon_store_trim(obs_state.store); /* rule evaluations trim too; not every run has rules */
            k++;
        }
        for (int i = 0; i < obs_state.n_rules; i++) {
            if (t < mon_rules_next_eval(obs_state.rules[i]))
                continue;
            mon_rules_eval(obs_state.rules[i], obs_state.store, t);
            emit_transitions(i);
            if (obs_state.am)
                mon_am_sync(obs_state.am, obs_state.rules[i], t);
        }
        if (obs_state.am) {
            mon_am_advance(obs_state.am, t);
            emit_notifications();
        }
    }
}

static void add_rules(mon_rules *r, const char *name)
{
    obs_state.rules = realloc(obs_state.rules, sizeof *obs_state.rules * (size_t)(obs_state.n_rules + 1));
    obs_state.rule_names = realloc(obs_state.rule_names, sizeof *obs_state.rule_names * (size_t)(obs_state.n_rules + 1));
    obs_state.tr_seen = realloc(obs_state.tr_seen, sizeof *obs_state.tr_seen * (size_t)(obs_state.n_rules + 1));
    obs_state.rules[obs_state.n_rules] = r;
    obs_state.rule_names[obs_state.n_rules] = strdup(name);
    obs_state.tr_seen[obs_state.n_rules] = 0;
    obs_state.n_rules++;
}

/* The promtool file names the generated SLO rules next to itself. */
static char *slo_file_path(void)
{
    const char *p = obs_state.promtool_path;
    size_t len = strlen(p);
    for (const char *ext = ".yml", *e2 = ".yaml"; ext; ext = e2, e2 = NULL)
        if (len > strlen(ext) && !strcmp(p + len - strlen(ext), ext)) {
            len -= strlen(ext);
            break;
        }
    char *out = malloc(len + 32);
    snprintf(out, len + 32, "%.*s.slo-rules.yml", (int)len, p);
    return out;
}

/* ---------- rules that select what the run never exports ---------- */

/* What can_produce reads: the scenario and its rules (recording rules
 * write series too). */
typedef struct {
    const sc_scenario *sc;
    mon_rules *const *rules;
    int n_rules;
    char last[300]; /* the rule last warned about */
} produce_ctx;

/* 1 if a node of pool pc's with power pw exports a series named name. */
static int node_exports(const sc_pool *pc, const sc_power *pw, const sc_model *m,
                        const char *name)
{
    if (cfg_host_memory(pc) && (!strcmp(name, "node_memory_MemTotal_bytes") ||
                                !strcmp(name, "node_memory_MemAvailable_bytes")))
        return 1;
    if (cfg_dcgm(pw) && (!strcmp(name, "DCGM_FI_DEV_GPU_UTIL") ||
                         !strcmp(name, "DCGM_FI_DEV_POWER_USAGE") ||
                         !strcmp(name, "DCGM_FI_DEV_SM_CLOCK")))
        return 1;
    if (m->has_memory && !strcmp(name, "DCGM_FI_DEV_FB_USED"))
        return 1;
    if (cfg_gpu_capacity(m, pw) &&
        (!strcmp(name, "DCGM_FI_DEV_FB_FREE") || !strcmp(name, "DCGM_FI_DEV_FB_TOTAL")))
        return 1;
    return 0;
}

/* 1 if some scrape or rule of a run of x->sc can write a series named
 * name. It reads the scenario only (a rollout's new nodes have its power
 * and GPU memory), so `validate` can ask it without a run. */
static int can_produce(const produce_ctx *x, const char *name)
{
    static const char *const always[] = {
        "up", "node_cpu_utilisation", "node_gpu_utilisation", "node_network_receive_bytes_total",
        "node_network_transmit_bytes_total", "node_load1", "node_boot_time_seconds",
        "node_cpu_seconds_total", "fleetsim_requests_total",
        "fleetsim_request_duration_seconds_bucket", "fleetsim_request_duration_seconds_sum",
        "fleetsim_request_duration_seconds_count", "fleetsim_in_flight", "fleetsim_queue_depth",
        "fleetsim_replicas", "fleetsim_pending_pods", "fleetsim_inference_seconds_total",
        "kube_deployment_status_replicas", "ALERTS", NULL,
    };
    for (int i = 0; always[i]; i++)
        if (!strcmp(name, always[i]))
            return 1;
    const sc_scenario *sc = x->sc;
    for (int i = 0; i < x->n_rules; i++)
        if (mon_rules_records(x->rules[i], name))
            return 1;
    if (sc->n_caches && !strcmp(name, "fleetsim_cache_requests_total"))
        return 1;
    if (sc->n_queues && (!strcmp(name, "fleetsim_queue_backlog") ||
                         !strcmp(name, "fleetsim_queue_messages_total")))
        return 1;
    if (sc->n_autoscalers && !strcmp(name, "kube_horizontalpodautoscaler_status_desired_replicas"))
        return 1;
    for (int k = 0; k < sc->n_pools; k++) {
        const sc_pool *pc = &sc->pools[k];
        const sc_model *m = &sc->models[pc->model];
        if (m->llm && !strncmp(name, "vllm:", 5)) {
            char buf[128];
            for (int i = 0; i < N_LLM_SCALAR; i++) {
                snprintf(buf, sizeof buf, "%s%s", LLM_SCALAR[i].family,
                         LLM_SCALAR[i].type == MON_METRIC_COUNTER ? "_total" : "");
                if (!strcmp(name, buf))
                    return 1;
            }
            for (int h = 0; h < N_LLM_HIST; h++) {
                size_t l = strlen(LLM_HIST[h].family);
                if (!strncmp(name, LLM_HIST[h].family, l) &&
                    (!strcmp(name + l, "_bucket") || !strcmp(name + l, "_sum") ||
                     !strcmp(name + l, "_count")))
                    return 1;
            }
        }
        if (node_exports(pc, &pc->power, m, name) ||
            (pc->rollout.enabled && node_exports(pc, &pc->rollout.power, m, name)))
            return 1;
    }
    return 0;
}

/* One warning per rule, for the first name it selects that nothing here
 * produces: such a rule silently never fires. */
static void warn_unproduced(void *arg, const char *where, const char *rule, const char *metric)
{
    produce_ctx *x = arg;
    if (!strcmp(x->last, where) || can_produce(x, metric))
        return;
    snprintf(x->last, sizeof x->last, "%s", where);
    fprintf(stderr, "%s: warning: rule \"%s\" selects %s, which this scenario never produces "
                    "(scenarios/README.md lists the exported metrics)\n", where, rule, metric);
}

static void warn_rules(const sc_scenario *sc, mon_rules *const *rules, int n_rules)
{
    produce_ctx x = { .sc = sc, .rules = rules, .n_rules = n_rules };
    for (int i = 0; i < n_rules; i++)
        mon_rules_each_selected(rules[i], warn_unproduced, &x);
}

void obs_check_rules(const sc_scenario *sc)
{
    const sc_monitoring *m = &sc->monitoring;
    mon_rules **rules = calloc((size_t)m->n_rules + 1, sizeof *rules);
    int n = 0;
    mon_error err;
    for (int i = 0; i < m->n_rules; i++)
        if ((rules[n] = mon_rules_load(m->rules[i], m->evaluation_interval_s, &err)))
            n++;
    if (m->slo_rules) {
        char msg[600];
        char *text = sc_slo_rules_text(sc, msg, sizeof msg);
        if (text && (rules[n] = mon_rules_load_string(text, "slo-rules.yml",
                                                      m->evaluation_interval_s, &err)))
            n++;
        free(text);
    }
    warn_rules(sc, rules, n);
    for (int i = 0; i < n; i++)
        mon_rules_free(rules[i]);
    free(rules);
}

void obs_set_options(const sim_options *opt)
{
    obs_state.openmetrics_path = opt ? opt->openmetrics_path : NULL;
    obs_state.promtool_path = opt ? opt->promtool_test_path : NULL;
    obs_state.series_path = opt ? opt->series_path : NULL;
}

void obs_start(void)
{
    const sc_monitoring *m = &eng_world.sc->monitoring;
    const char *om = obs_state.openmetrics_path, *pt = obs_state.promtool_path;
    const char *sp = obs_state.series_path;
    memset(&obs_state, 0, sizeof obs_state);
    obs_state.openmetrics_path = om;
    obs_state.promtool_path = pt;
    obs_state.series_path = sp;
    if (!m->enabled && !om && !pt && !sp)
        return;
    obs_state.on = 1;
    obs_state.scrape_s = m->scrape_interval_s;
    obs_state.bounds = m->buckets_s;
    obs_state.n_buckets = m->n_buckets;
    mon_error err;
    for (int i = 0; i < m->n_rules; i++) {
        /* checked at load time; cannot fail with the same files */
        mon_rules *r = mon_rules_load(m->rules[i], m->evaluation_interval_s, &err);
        if (!r) {
            fprintf(stderr, "%s\n", err.msg);
            continue;
        }
        char *abs = realpath(m->rules[i], NULL);
        add_rules(r, abs ? abs : m->rules[i]);
        free(abs);
    }
    if (m->slo_rules) {
        char msg[600];
        obs_state.slo_text = sc_slo_rules_text(eng_world.sc, msg, sizeof msg);
        mon_rules *r = obs_state.slo_text ? mon_rules_load_string(obs_state.slo_text, "slo-rules.yml",
                                                          m->evaluation_interval_s, &err)
                                  : NULL;
        if (r) {
            char *path = obs_state.promtool_path ? slo_file_path() : strdup("slo-rules.yml");
            const char *base = strrchr(path, '/');
            add_rules(r, base ? base + 1 : path);
            free(path);
        }
    }
    if (m->alertmanager) {
        obs_state.am = mon_am_load(m->alertmanager, &err);
        if (!obs_state.am)
            fprintf(stderr, "%s\n", err.msg);
    }
    double retention = MON_LOOKBACK_S + m->evaluation_interval_s;
    for (int i = 0; i < obs_state.n_rules; i++)
        retention = fmax(retention, mon_rules_retention_s(obs_state.rules[i]));
    obs_state.store = mon_store_create(retention);
    if (om || pt || sp)
        mon_store_set_retention(obs_state.store, INFINITY);
    if (pt)
        for (int i = 0; i < obs_state.n_rules; i++)
            mon_rules_keep_firing_log(obs_state.rules[i], 1);
    make_series();
    warn_rules(eng_world.sc, obs_state.rules, obs_state.n_rules);
    /* not a daemon: it returns at the end of the run (SimGrid 3.32 would
     * kill a returned daemon twice) */
    sg_actor_t a = sg_actor_init("prometheus", eng_world.balancer_host);
    sg_actor_start(a, prometheus, 0, NULL);
}

/* ---------- results ---------- */

typedef struct {
    const mon_alert_record *rec;
    int set;
    size_t index;
} rec_ref;

static int by_time(const void *a, const void *b)
{
    const rec_ref *x = a, *y = b;
    if (x->rec->pending_at != y->rec->pending_at)
        return x->rec->pending_at < y->rec->pending_at ? -1 : 1;
    if (x->set != y->set)
        return x->set < y->set ? -1 : 1;
    return x->index < y->index ? -1 : x->index > y->index;
}

/* The summary annotation of an activation, from its transitions. */
static const char *summary_of(int set, const mon_alert_record *rec)
{
    size_t n;
    const mon_transition *tr = mon_rules_transitions(obs_state.rules[set], &n);
    const char *s = NULL;
    for (size_t k = 0; k < n; k++) {
        const mon_transition *x = &tr[k];
        if (x->pending_at != rec->pending_at || mon_labels_cmp(&x->labels, &rec->labels))
            continue;
        const char *v = mon_labels_get(&x->annotations, "summary");
        if (*v && x->to != MON_ALERT_INACTIVE)
            s = v;
    }
    return s;
}

/* First notification in which this activation is firing. */
static double notified_at(const mon_alert_record *rec)
{
    if (!obs_state.am || isnan(rec->firing_at))
        return NAN;
    size_t n;
    const mon_notification *nt = mon_am_notifications(obs_state.am, &n);
    for (size_t k = 0; k < n; k++) {
        if (nt[k].t_s < rec->firing_at)
            continue;
        if (!isnan(rec->resolved_at) && nt[k].t_s > rec->resolved_at)
            break;
        for (int a = 0; a < nt[k].n_firing; a++)
            if (!mon_labels_cmp(&nt[k].alerts[a].labels, &rec->labels))
                return nt[k].t_s;
    }
    return NAN;
}

static int fault_covers(const rp_fault *f, double t)
{
    double end = isnan(f->end_s) ? INFINITY : f->end_s + OBS_FAULT_GRACE_S;
    return t >= f->start_s && t <= end;
}

static void fill_alerting(rec_ref *refs, size_t n, size_t first_alert)
{
    rp_results *out = eng_world.out;
    rp_alerting *al = &out->alerting;
    al->on = 1;
    al->grace_s = OBS_FAULT_GRACE_S;
    if (obs_state.am)
        mon_am_notifications(obs_state.am, &al->notifications);
    for (size_t i = 0; i < n; i++)
        al->fired += !isnan(refs[i].rec->firing_at);
    al->faults = calloc(out->n_faults ? out->n_faults : 1, sizeof *al->faults);
    al->n_faults = out->n_faults;
    for (size_t f = 0; f < out->n_faults; f++) {
        const rp_fault *ft = &out->faults[f];
        rp_fault_alert *fa = &al->faults[f];
        fa->fault = f;
        fa->firing_at = fa->notified_at = NAN;
        for (size_t i = 0; i < n; i++) {
            double t = refs[i].rec->firing_at;
            if (!isnan(t) && t >= ft->start_s && (isnan(fa->firing_at) || t < fa->firing_at)) {
                fa->firing_at = t;
                free(fa->alert);
                fa->alert = strdup(refs[i].rec->alertname);
            }
        }
        size_t nn = 0;
        const mon_notification *nt = obs_state.am ? mon_am_notifications(obs_state.am, &nn) : NULL;
        for (size_t k = 0; k < nn && isnan(fa->notified_at); k++) {
            if (nt[k].t_s < ft->start_s)
                continue;
            for (int a = 0; a < nt[k].n_firing; a++)
                if (nt[k].alerts[a].starts_at >= ft->start_s) {
                    fa->notified_at = nt[k].t_s;
                    fa->receiver = strdup(nt[k].receiver);
                    fa->integration = strdup(nt[k].integration);
                    break;
                }
        }
    }
    for (size_t i = 0; i < n; i++) {
        const mon_alert_record *rec = refs[i].rec;
        if (isnan(rec->firing_at))
            continue;
        int covered = 0;
        for (size_t f = 0; f < out->n_faults && !covered; f++)
            covered = fault_covers(&out->faults[f], rec->firing_at);
        if (covered)
            continue;
        al->false_positives = realloc(al->false_positives,
                                      sizeof *al->false_positives * (al->n_false_positives + 1));
        al->false_positives[al->n_false_positives++] = first_alert + i;
    }
}

static void collect_alerts(void)
{
    size_t total = 0, n;
    for (int i = 0; i < obs_state.n_rules; i++) {
        mon_rules_alerts(obs_state.rules[i], &n);
        total += n;
    }
    rec_ref *refs = calloc(total ? total : 1, sizeof *refs);
    size_t at = 0;
    for (int i = 0; i < obs_state.n_rules; i++) {
        const mon_alert_record *recs = mon_rules_alerts(obs_state.rules[i], &n);
        for (size_t k = 0; k < n; k++)
            refs[at++] = (rec_ref){ &recs[k], i, k };
    }
    qsort(refs, total, sizeof *refs, by_time);
    size_t first = eng_world.out->n_alerts;
    for (size_t k = 0; k < total; k++) {
        const mon_alert_record *rec = refs[k].rec;
        char recv[256];
        rp_alert a = {
            .name = (char *)rec->alertname,
            .severity = *rec->severity ? (char *)rec->severity : NULL,
            .receiver = obs_state.am ? mon_am_receivers_for(obs_state.am, &rec->labels, recv, sizeof recv) : NULL,
            .pending_at = rec->pending_at,
            .firing_at = rec->firing_at,
            .resolved_at = rec->resolved_at,
            .notified_at = notified_at(rec),
            .summary = (char *)summary_of(refs[k].set, rec),
        };
        if (a.receiver && !*a.receiver)
            a.receiver = NULL;
        rp_add_alert(eng_world.out, &a);
    }
    fill_alerting(refs, total, first);
    free(refs);
}

/* ---------- exports ---------- */

static int write_openmetrics(void)
{
    FILE *f = fopen(obs_state.openmetrics_path, "w");
    if (!f) {
        fprintf(stderr, "fleetsim: cannot write %s: %s\n", obs_state.openmetrics_path, strerror(errno));
        return -1;
    }
    int rc = mon_write_openmetrics(obs_state.store, f, OBS_EPOCH_S);
    if (fclose(f) != 0 || rc != 0) {
        fprintf(stderr, "fleetsim: cannot write %s\n", obs_state.openmetrics_path);
        return -1;
    }
    return 0;
}

static char *promtool_text(int i, mon_error *err)
{
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    int rc = mon_promtool_write(f, obs_state.store, obs_state.rules[i], obs_state.rule_names[i], obs_state.scrape_s, NULL, 0, err);
    fclose(f);
    if (rc != 0) {
        free(text);
        return NULL;
    }
    return text;
}

/* mon_promtool_write takes one rule file; promtool evaluates several
 * together. The first file's test is the base: the other files go into
 * its rule_files, and their alert_rule_test entries (at the same
 * evaluation times, on the same input series) follow its own. */
static int write_promtool(void)
{
    mon_error err;
    if (obs_state.n_rules == 0) {
        fprintf(stderr, "fleetsim: --promtool-test: the scenario has no rules to test\n");
        return -1;
    }
    double common = mon_rules_common_interval(obs_state.rules[0]);
    for (int i = 1; i < obs_state.n_rules; i++)
        if (mon_rules_common_interval(obs_state.rules[i]) != common) {
            fprintf(stderr, "fleetsim: --promtool-test: promtool evaluates every rule file at one "
                            "evaluation_interval, but %s and %s differ\n",
                    obs_state.rule_names[0], obs_state.rule_names[i]);
            return -1;
        }
    char *base = promtool_text(0, &err);
    if (!base) {
        fprintf(stderr, "fleetsim: --promtool-test: %s\n", err.msg);
        return -1;
    }
    FILE *f = fopen(obs_state.promtool_path, "w");
    if (!f) {
        fprintf(stderr, "fleetsim: cannot write %s: %s\n", obs_state.promtool_path, strerror(errno));
        free(base);
        return -1;
    }
    const char *eval = strstr(base, "\nevaluation_interval:");
    const char *tests = strstr(base, "    alert_rule_test:\n");
    fwrite(base, 1, (size_t)(eval - base) + 1, f);
    for (int i = 1; i < obs_state.n_rules; i++) {
        fputs("  - \"", f);
        for (const char *c = obs_state.rule_names[i]; *c; c++)
            fprintf(f, *c == '"' || *c == '\\' ? "\\%c" : "%c", *c);
        fputs("\"\n", f);
    }
    fputs(eval + 1, f);
    int rc = 0;
    for (int i = 1; i < obs_state.n_rules && rc == 0; i++) {
        char *more = promtool_text(i, &err);
        if (!more) {
            fprintf(stderr, "fleetsim: --promtool-test: %s\n", err.msg);
            rc = -1;
            break;
        }
        const char *entries = strstr(more, "    alert_rule_test:\n");
        if (entries) {
            if (!tests) {
                fputs("    alert_rule_test:\n", f);
                tests = entries;
            }
            fputs(entries + strlen("    alert_rule_test:\n"), f);
        }
        free(more);
    }
    free(base);
    if (fclose(f) != 0)
        rc = -1;
    if (rc == 0 && obs_state.slo_text) {
        char *path = slo_file_path();
        FILE *s = fopen(path, "w");
        if (!s || fputs(obs_state.slo_text, s) < 0 || fclose(s) != 0) {
            fprintf(stderr, "fleetsim: cannot write %s\n", path);
            rc = -1;
        }
        free(path);
    }
    return rc;
}

void obs_free(void)
{
    if (!obs_state.on)
        return;
    /* the run is over (teardown): results first, then exports */
    collect_alerts();
    if (obs_state.openmetrics_path && write_openmetrics() != 0)
        eng_world.out->alerting.export_failed = 1;
    if (obs_state.promtool_path && write_promtool() != 0)
        eng_world.out->alerting.export_failed = 1;
    if (obs_state.series_path) {
        FILE *f = fopen(obs_state.series_path, "w");
        if (!f || mon_store_dump(obs_state.store, f) != 0 || fclose(f) != 0) {
            fprintf(stderr, "fleetsim: cannot write %s: %s\n", obs_state.series_path, strerror(errno));
            eng_world.out->alerting.export_failed = 1;
        }
        /* and the last scrape as the exporters' /metrics showed it,
         * metrics.prom next to it */
        size_t len = strlen(obs_state.series_path);
        char *mp = malloc(len + 16);
        const char *slash = strrchr(obs_state.series_path, '/');
        int dir = slash ? (int)(slash - obs_state.series_path) + 1 : 0;
        snprintf(mp, len + 16, "%.*smetrics.prom", dir, obs_state.series_path);
        double last = mon_store_newest_s(obs_state.store);
        f = fopen(mp, "w");
        if (!f || mon_write_scrape(obs_state.store, f, isnan(last) ? 0 : last) != 0 ||
            fclose(f) != 0) {
            fprintf(stderr, "fleetsim: cannot write %s: %s\n", mp, strerror(errno));
            eng_world.out->alerting.export_failed = 1;
        }
        free(mp);
    }
    for (int i = 0; i < obs_state.n_rules; i++) {
        mon_rules_free(obs_state.rules[i]);
        free(obs_state.rule_names[i]);
    }
    free(obs_state.rules);
    free(obs_state.rule_names);
    free(obs_state.tr_seen);
    free(obs_state.slo_text);
    mon_am_free(obs_state.am);
    mon_store_destroy(obs_state.store);
    for (int k = 0; k < eng_world.sc->n_pools; k++) {
        for (int j = 0; j < eng_world.pools[k].n_hosts; j++) {
            free(obs_state.nodes[k][j].s);
            if (obs_state.nodes[k][j].llm)
                for (int h = 0; h < N_LLM_HIST; h++)
                    free(obs_state.nodes[k][j].llm->n[h]);
            free(obs_state.nodes[k][j].llm);
        }
        free(obs_state.nodes[k]);
    }
    free(obs_state.nodes);
    free(obs_state.values);
    free(obs_state.pool);
    free(obs_state.hpa);
    free(obs_state.cache);
    free(obs_state.queue);
    free(obs_state.req);
    free(obs_state.req_n);
    free(obs_state.bkt);
    free(obs_state.bkt_n);
    free(obs_state.hsum);
    free(obs_state.hcount);
    free(obs_state.sum);
    free(obs_state.count);
    memset(&obs_state, 0, sizeof obs_state);
}
