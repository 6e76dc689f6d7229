/*
 * autoscaling.c - runs the scenario's autoscalers against the simulation.
 *
 * Per autoscaled pool: a metrics sampler (like metrics-server: every
 * METRICS_RESOLUTION_S it reports each pod's utilisation as the mean over
 * that window, never the instant state) and a controller that, every
 * as_period_s(), builds an as_view of the pool's pods and metrics, asks the
 * policy, and applies the answer at once through life_scale_to (new nodes go
 * through provisioning, start, model load and warm-up; removed ones drain).
 * With a node pool, a replica waiting for a cluster node is PENDING and
 * unscheduled (scheduled = 0) in the view.
 *
 * A pod's CPU and GPU utilisation are both its GPUs' busy fraction: one
 * serving process drives the GPU, so its CPU works while the GPU does.
 *
 * A pod of an LLM pool also carries vLLM's gauges as custom (Pods) metrics
 * under their exporter names, `vllm:num_requests_running`,
 * `vllm:num_requests_waiting` and `vllm:kv_cache_usage_perc`: the node's
 * values at the sampler's last tick, as prometheus-adapter serves the last
 * scraped sample of a gauge (an instant value, not a window mean). The pool
 * carries the same names as External metrics: the sum over the pods that
 * have a sample, which is what `sum(vllm:num_requests_waiting)` returns, so
 * an `AverageValue` target divides it by the pods as the HPA does.
 */
#include "autoscale.h"
#include "control.h"
#include "llm_model.h"
#include "serve.h"

#include <simgrid/engine.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define METRICS_RESOLUTION_S 15.0 /* metrics-server --metric-resolution, as commonly set */
#define POD_METRICS 5              /* custom metrics per pod: 2, or 5 with vLLM's */

static int is_llm(const eng_pool *p)
{
    return p->serve->llm_stats != NULL;
}

/* ---- an LLM pool's profile and the load its clients saw ----
 *
 * The profile is what Dynamo's profiler would measure of one replica, here
 * from the pool's own step-time model: a prompt prefilled alone in chunks
 * of the step's token budget, and a decode step of a batch at a context.
 * The observed load is what Dynamo's planner reads from its frontend's
 * metrics over an adjustment interval (utils/prometheus.py: request count,
 * mean TTFT, ITL, request duration, input and output tokens), gathered
 * from the LLM server's token hooks between two syncs. */

typedef struct {
    as_llm_profile prof;
    llm_perf perf;
    int budget;                 /* tokens per step (max_num_batched_tokens) */
    int chunk;                  /* most prompt tokens per step for one request */
    llm_chunk *chunks;          /* max_batch decode chunks */
    /* since the previous sync */
    double ttft_sum_s, itl_sum_s, e2e_sum_s, in_tokens, out_tokens;
    unsigned long n_first, n_itl, n_done;
} llm_scale;

static double prof_prefill_s(const void *ctx, double tokens)
{
    const llm_scale *ls = ctx;
    long total = lround(tokens), done = 0;
    double t = 0;
    if (total < 1)
        total = 1;
    while (done < total) {
        long n = total - done < ls->chunk ? total - done : ls->chunk;
        llm_chunk c = { (int)n, done, 0 };
        t += llm_step_s(&ls->perf, &c, 1);
        done += n;
    }
    return t;
}

static double prof_decode_step_s(const void *ctx, int batch, double context)
{
    const llm_scale *ls = ctx;
    if (batch < 1)
        batch = 1;
    if (batch > ls->prof.max_batch)
        batch = ls->prof.max_batch;
    long c = lround(context);
    for (int i = 0; i < batch; i++)
        ls->chunks[i] = (llm_chunk){ 1, c, 1 };
    return llm_step_s(&ls->perf, ls->chunks, batch);
}

static llm_scale *llm_scale_new(const eng_pool *p)
{
    const sc_llm *m = p->model->llm;
    llm_scale *ls = calloc(1, sizeof *ls);
    sc_llm_perf(m, p->cfg, &ls->perf);
    llm_perf_prepare(&ls->perf);
    sc_llm_limits lim;
    sc_llm_limits_get(m, p->cfg, &ls->perf, &lim);
    ls->budget = lim.max_num_batched_tokens;
    ls->chunk = m->long_prefill_threshold > 0 && m->long_prefill_threshold < ls->budget
                    ? m->long_prefill_threshold
                    : ls->budget;
    ls->chunks = calloc((size_t)lim.max_num_seqs, sizeof *ls->chunks);
    ls->prof = (as_llm_profile){ .ctx = ls,
                                 .prefill_s = prof_prefill_s,
                                 .decode_step_s = prof_decode_step_s,
                                 .max_batch = lim.max_num_seqs,
                                 .kv_tokens = (double)lim.num_blocks * m->block_size,
                                 .replicas_per_pod = p->cfg->gpus_per_node / p->cfg->tensor_parallel };
    return ls;
}

static void llm_scale_free(llm_scale *ls)
{
    if (!ls)
        return;
    free(ls->chunks);
    free(ls);
}

/* Disaggregation splits a request's signals: its first token comes from a
 * prefill pool, its later tokens and its end from a decode pool. Dynamo's
 * planner reads both for either pool (Metrics.is_valid wants TTFT, ITL, ISL
 * and OSL), so each is recorded for the pool that saw it and for the pools
 * paired with it: a prefill pool's decode pool, and a decode pool's prefill
 * pools. Only autoscaled LLM pools record anything (as_llm). */
static void record_first(llm_scale *ls, double ttft_s, int prompt_tokens)
{
    if (!ls)
        return;
    ls->ttft_sum_s += ttft_s;
    ls->in_tokens += prompt_tokens;
    ls->n_first++;
}

static void record_tokens(llm_scale *ls, double itl_s, unsigned long count)
{
    if (!ls)
        return;
    ls->itl_sum_s += itl_s * (double)count;
    ls->n_itl += count;
}

static void record_finished(llm_scale *ls, double e2e_s, int output_tokens)
{
    if (!ls)
        return;
    ls->e2e_sum_s += e2e_s;
    ls->out_tokens += output_tokens;
    ls->n_done++;
}

void scale_llm_first_token(const eng_node *n, double ttft_s, int prompt_tokens)
{
    const eng_pool *p = n->pool;

    record_first(p->as_llm, ttft_s, prompt_tokens);
    if (p->cfg->role == SC_ROLE_PREFILL && p->cfg->decode_pool >= 0)
        record_first(eng_world.pools[p->cfg->decode_pool].as_llm, ttft_s, prompt_tokens);
}

void scale_llm_tokens(const eng_node *n, double itl_s, unsigned long count)
{
    const eng_pool *p = n->pool;

    record_tokens(p->as_llm, itl_s, count);
    if (p->cfg->role == SC_ROLE_DECODE)
        for (int k = 0; k < eng_world.sc->n_pools; k++)
            if (eng_world.sc->pools[k].decode_pool == p->id)
                record_tokens(eng_world.pools[k].as_llm, itl_s, count);
}

void scale_llm_finished(const eng_node *n, double e2e_s, double tpot_s, int output_tokens)
{
    const eng_pool *p = n->pool;

    (void)tpot_s;
    record_finished(p->as_llm, e2e_s, output_tokens);
    if (p->cfg->role == SC_ROLE_DECODE)
        for (int k = 0; k < eng_world.sc->n_pools; k++)
            if (eng_world.sc->pools[k].decode_pool == p->id)
                record_finished(eng_world.pools[k].as_llm, e2e_s, output_tokens);
}

/* The observed load since the previous sync into metrics (a mean only
 * where something was observed); the count of metrics added. */
static int llm_observed(const llm_scale *ls, double requests, as_metric *m)
{
    int k = 0;
    m[k++] = (as_metric){ "llm_requests", requests };
    if (ls->n_first > 0) {
        m[k++] = (as_metric){ "llm_isl_mean", ls->in_tokens / (double)ls->n_first };
        m[k++] = (as_metric){ "llm_ttft_mean_s", ls->ttft_sum_s / (double)ls->n_first };
    }
    if (ls->n_itl > 0)
        m[k++] = (as_metric){ "llm_itl_mean_s", ls->itl_sum_s / (double)ls->n_itl };
    if (ls->n_done > 0) {
        m[k++] = (as_metric){ "llm_osl_mean", ls->out_tokens / (double)ls->n_done };
        m[k++] = (as_metric){ "llm_request_duration_mean_s", ls->e2e_sum_s / (double)ls->n_done };
    }
    return k;
}

static void llm_reset(llm_scale *ls)
{
    ls->ttft_sum_s = ls->itl_sum_s = ls->e2e_sum_s = ls->in_tokens = ls->out_tokens = 0;
    ls->n_first = ls->n_itl = ls->n_done = 0;
}

static void metrics_sampler(int argc, char *argv[])
{
    (void)argc;
    (void)argv;
    eng_pool *p = sg_actor_self_get_data();
    for (;;) {
        sg_actor_sleep_for(METRICS_RESOLUTION_S);
        double now = simgrid_get_clock();
        if (eng_hook.catch_up)
            eng_hook.catch_up(now);
        for (int j = 0; j < p->n_hosts; j++) {
            eng_node *n = &p->nodes[j];
            double busy = serve_busy_s(n, now);
            if (p->metrics_stale) {
                n->sample.m_has = 0; /* stale_metrics: no sample; the HPA sees it missing */
            } else if (n->life.state >= NODE_LOADING && n->life.state <= NODE_DRAINING) {
                if (n->sample.m_time_s > 0 && n->sample.m_time_s >= n->life.start_s) {
                    double w = now - n->sample.m_time_s;
                    n->sample.m_util = (busy - n->sample.m_busy_prev) / (w * n->gpus);
                    n->sample.m_rps = (double)(n->work.accepted - (unsigned long)n->sample.m_accepted_prev) / w;
                    n->sample.m_queue = serve_queued(n);
                    serve_llm_node_stats st;
                    if (serve_llm_stats(n, &st)) {
                        n->sample.m_vllm_running = st.running;
                        n->sample.m_vllm_waiting = st.waiting;
                        n->sample.m_vllm_kv = st.kv_usage;
                    }
                    n->sample.m_has = 1;
                }
            } else {
                n->sample.m_has = 0;
            }
            n->sample.m_time_s = now;
            n->sample.m_busy_prev = busy;
            n->sample.m_accepted_prev = (double)n->work.accepted;
        }
    }
}

static as_pod_phase phase_of(eng_node_state s, int *ready)
{
    *ready = s == NODE_READY;
    switch (s) {
    case NODE_PROVISIONING:
    case NODE_STARTING:
        return AS_POD_PENDING;
    case NODE_LOADING:
    case NODE_WARMING:
    case NODE_READY:
        return AS_POD_RUNNING;
    case NODE_DRAINING:
        return AS_POD_TERMINATING;
    default:
        return AS_POD_FAILED;
    }
}

static double mean_delay(const sc_delay *d)
{
    return d->mean_s;
}

/* One sync: build the view of the pool, ask the policy, apply the answer.
 * poke: an activator's call at zero (requests buffered, no replica ready),
 * which counts the buffered requests as concurrency at once. */
static void sync_pool(eng_pool *p, double now, int poke)
{
    const sc_lifecycle *life = &p->cfg->life;
    as_pod_view *pods = p->as_pods;
    as_metric *custom = p->as_custom;
    int np = 0, llm = is_llm(p);
    double vllm_sum[3] = { 0, 0, 0 };
    for (int j = 0; j < p->n_hosts; j++) {
        eng_node *n = &p->nodes[j];
        if (n->life.state == NODE_OFF)
            continue;
        as_pod_view *v = &pods[np];
        as_metric *c = &custom[POD_METRICS * np];
        memset(v, 0, sizeof *v);
        v->phase = phase_of(n->life.state, &v->ready);
        v->scheduled = !n->life.unscheduled;
        v->start_s = n->life.start_s;
        v->ready_change_s = n->life.ready_change_s;
        v->has_metrics = n->sample.m_has;
        v->metrics_time_s = n->sample.m_time_s;
        v->metrics_window_s = METRICS_RESOLUTION_S;
        v->cpu_util = v->gpu_util = n->sample.m_util;
        v->cpu_request = v->gpu_request = 1;
        c[0] = (as_metric){ "requests_per_second", n->sample.m_rps };
        c[1] = (as_metric){ "queue_depth", n->sample.m_queue };
        v->custom = c;
        v->n_custom = n->sample.m_has ? 2 : 0;
        if (llm) {
            c[2] = (as_metric){ "vllm:num_requests_running", n->sample.m_vllm_running };
            c[3] = (as_metric){ "vllm:num_requests_waiting", n->sample.m_vllm_waiting };
            c[4] = (as_metric){ "vllm:kv_cache_usage_perc", n->sample.m_vllm_kv };
            if (n->sample.m_has) {
                v->n_custom = 5;
                vllm_sum[0] += n->sample.m_vllm_running;
                vllm_sum[1] += n->sample.m_vllm_waiting;
                vllm_sum[2] += n->sample.m_vllm_kv;
            }
        }
        np++;
    }
    double elapsed = now - p->as_last_s;
    double rps = elapsed > 0 ? (double)(p->arrivals - p->as_last_arrivals) / elapsed : 0;
    /* concurrency: requests in the pool, time-averaged since the last sync
     * (as Knative's queue-proxy reports it); a poke at zero counts the
     * requests waiting for the first replica */
    eng_pool_inflight(p, now, 0);
    double conc = elapsed > 0 ? p->conc_area / elapsed : p->inflight;
    if (poke && conc < p->lbq.len + 1)
        conc = p->lbq.len + 1; /* the waiting requests and the one arriving */
    /* messages waiting in the queues the pool consumes, now (an External
     * metric as KEDA or prometheus-adapter would serve it) */
    double backlog = 0;
    int consumer = 0;
    for (int i = 0; i < eng_world.sc->n_queues; i++)
        if (eng_world.queues[i].consumer == p) {
            backlog += eng_world.queues[i].q.len;
            consumer = 1;
        }
    as_metric metrics[14] = { { "concurrency", conc },
                             { "requests_per_second", rps },
                             { "arrival_rate_qps", rps },
                             { "fleetsim_queue_backlog", backlog } };
    int nm = 3 + consumer;
    if (llm) {
        metrics[nm++] = (as_metric){ "vllm:num_requests_running", vllm_sum[0] };
        metrics[nm++] = (as_metric){ "vllm:num_requests_waiting", vllm_sum[1] };
        metrics[nm++] = (as_metric){ "vllm:kv_cache_usage_perc", vllm_sum[2] };
    }
    llm_scale *ls = p->as_llm;
    if (ls)
        nm += llm_observed(ls, (double)(p->arrivals - p->as_last_arrivals), &metrics[nm]);
    if (!poke) {
        p->conc_area = 0;
        p->as_last_s = now;
        p->as_last_arrivals = p->arrivals;
        if (ls)
            llm_reset(ls);
    }
    /* with a node pool, a replica's node comes from the cluster
     * autoscaler: its provisioning replaces the lifecycle's */
    const sc_delay *prov = p->cfg->node_pool.enabled ? &p->cfg->node_pool.provisioning
                                                     : &life->provision;
    as_view view = { .now_s = now, .current_replicas = p->target, .min_replicas = 0,
                     .max_replicas = p->n_hosts,
                     .startup_s = mean_delay(prov) + mean_delay(&life->start) +
                                  mean_delay(&life->load) + mean_delay(&life->warmup) +
                                  sc_weights_load_s(p->cfg, p->cfg->gpus_per_node),
                     .n_pods = np, .pods = pods, .n_metrics = nm, .metrics = metrics,
                     .llm = ls ? &ls->prof : NULL };
    int want = as_recommend(p->scaler, &view);
    if (want != AS_KEEP && want != p->target)
        life_scale_to(p, want, now, as_reason(p->scaler));
}

static void controller(int argc, char *argv[])
{
    (void)argc;
    (void)argv;
    eng_pool *p = sg_actor_self_get_data();
    for (;;) {
        sg_actor_sleep_for(as_period_s(p->scaler));
        if (eng_hook.catch_up)
            eng_hook.catch_up(simgrid_get_clock());
        sync_pool(p, simgrid_get_clock(), 0);
    }
}

/* Knative's activator: requests reaching a pool with no ready replica wait
 * at the balancer instead of failing, and the first of them asks the
 * autoscaler at once rather than at its next tick. */
int scale_buffer(eng_pool *p, double now)
{
    if (!p->scaler || eng_ready_count(p, 0) > 0)
        return 0;
    if (p->target == 0)
        sync_pool(p, now, 1);
    return 1;
}

void scale_start(void)
{
    for (int i = 0; i < eng_world.sc->n_autoscalers; i++) {
        const sc_autoscaler *a = &eng_world.sc->autoscalers[i];
        eng_pool *p = &eng_world.pools[a->pool];
        char err[1024];
        p->scaler = sc_autoscaler_create(eng_world.sc, a, err, sizeof err);
        if (!p->scaler) { /* checked at load time; cannot happen with the same files */
            fprintf(stderr, "%s\n", err);
            continue;
        }
        p->as_pods = calloc((size_t)p->n_hosts, sizeof(as_pod_view));
        p->as_custom = calloc((size_t)p->n_hosts * POD_METRICS, sizeof(as_metric));
        if (is_llm(p))
            p->as_llm = llm_scale_new(p);
        sg_actor_t m = sg_actor_init("metrics", eng_world.balancer_host);
        sg_actor_set_data(m, p);
        sg_actor_start(m, metrics_sampler, 0, NULL);
        sg_actor_t c = sg_actor_init("autoscaler", eng_world.balancer_host);
        sg_actor_set_data(c, p);
        sg_actor_start(c, controller, 0, NULL);
    }
}

void scale_free(void)
{
    for (int k = 0; k < eng_world.sc->n_pools; k++) {
        as_destroy(eng_world.pools[k].scaler);
        eng_world.pools[k].scaler = NULL;
        free(eng_world.pools[k].as_pods);
        free(eng_world.pools[k].as_custom);
        llm_scale_free(eng_world.pools[k].as_llm);
        eng_world.pools[k].as_llm = NULL;
        life_free_pool(&eng_world.pools[k]);
    }
}
