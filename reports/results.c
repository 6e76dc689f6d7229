/*
 * results.c - the run's results: events, SLO verdict, conservation, and the
 * writers for summary.json (cJSON), timeseries.csv, events.jsonl and the
 * terminal table. Key order in summary.json is fixed, numbers are printed by
 * cJSON, so identical results give byte-identical files.
 */
#include "results.h"
#include "svg.h"

#include <cjson/cJSON.h>

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

static char *dup_or_null(const char *s)
{
    return s ? strdup(s) : NULL;
}

void rp_add_event(rp_results *r, double t_s, const char *type, const char *subject,
                  const char *detail)
{
    if (r->n_events == r->cap_events) {
        r->cap_events = r->cap_events ? 2 * r->cap_events : 16;
        r->events = realloc(r->events, sizeof *r->events * r->cap_events);
    }
    r->events[r->n_events++] = (rp_event){ t_s, strdup(type), dup_or_null(subject),
                                           dup_or_null(detail) };
}

static void *grow(void *p, size_t n, size_t size)
{
    /* capacity is the next power of two: grow when n is 0 or a power of two */
    if (n == 0 || (n & (n - 1)) == 0)
        return realloc(p, size * (n ? 2 * n : 1));
    return p;
}

void rp_add_alert(rp_results *r, const rp_alert *a)
{
    r->alerts = grow(r->alerts, r->n_alerts, sizeof *r->alerts);
    rp_alert *d = &r->alerts[r->n_alerts++];
    *d = *a;
    d->name = dup_or_null(a->name ? a->name : "");
    d->severity = dup_or_null(a->severity);
    d->receiver = dup_or_null(a->receiver);
    d->summary = dup_or_null(a->summary);
}

void rp_add_scaling(rp_results *r, double t_s, const char *pool, int from, int to,
                    const char *reason)
{
    r->scaling = grow(r->scaling, r->n_scaling, sizeof *r->scaling);
    r->scaling[r->n_scaling++] =
        (rp_scaling){ t_s, dup_or_null(pool ? pool : ""), from, to, dup_or_null(reason) };
}

void rp_add_fault(rp_results *r, const rp_fault *f)
{
    r->faults = grow(r->faults, r->n_faults, sizeof *r->faults);
    rp_fault *d = &r->faults[r->n_faults++];
    *d = *f;
    d->kind = dup_or_null(f->kind ? f->kind : "");
    d->target = dup_or_null(f->target);
    d->detail = dup_or_null(f->detail);
}

const char *rp_currency(const rp_results *r)
{
    return r->currency[0] ? r->currency : "USD";
}

void rp_results_free(rp_results *r)
{
    if (!r)
        return;
    free(r->scenario);
    free(r->description);
    for (int i = 0; i < r->n_pools; i++) {
        free(r->pools[i].name);
        free(r->pools[i].zone);
        for (int j = 0; j < r->pools[i].n_nodes; j++) {
            free(r->pools[i].nodes[j].name);
            free(r->pools[i].nodes[j].busy);
        }
        free(r->pools[i].nodes);
        if (r->pools[i].llm) {
            free(r->pools[i].llm->gpu);
            free(r->pools[i].llm->role);
            free(r->pools[i].llm->decode_pool);
            free(r->pools[i].llm->decode_router);
            free(r->pools[i].llm->kv_per_replica);
        }
        free(r->pools[i].llm);
    }
    free(r->pools);
    for (int i = 0; i < r->n_caches; i++)
        free(r->caches[i].name);
    free(r->caches);
    for (int i = 0; i < r->n_queues; i++) {
        free(r->queues[i].name);
        free(r->queues[i].consumer);
        free(r->queues[i].backlog);
    }
    free(r->queues);
    for (int i = 0; i < r->n_balancers; i++)
        free(r->balancers[i].name);
    free(r->balancers);
    for (int i = 0; i < r->n_classes; i++) {
        free(r->classes[i].name);
        free(r->classes[i].pool);
        free(r->classes[i].pipeline);
    }
    free(r->classes);
    for (size_t i = 0; i < r->n_alerts; i++) {
        free(r->alerts[i].name);
        free(r->alerts[i].severity);
        free(r->alerts[i].receiver);
        free(r->alerts[i].summary);
    }
    free(r->alerts);
    for (size_t i = 0; i < r->n_scaling; i++) {
        free(r->scaling[i].pool);
        free(r->scaling[i].reason);
    }
    free(r->scaling);
    for (size_t i = 0; i < r->n_faults; i++) {
        free(r->faults[i].kind);
        free(r->faults[i].target);
        free(r->faults[i].detail);
    }
    free(r->faults);
    for (size_t i = 0; i < r->alerting.n_faults; i++) {
        free(r->alerting.faults[i].alert);
        free(r->alerting.faults[i].receiver);
        free(r->alerting.faults[i].integration);
    }
    free(r->alerting.faults);
    free(r->alerting.false_positives);
    for (size_t i = 0; i < r->n_samples; i++)
        free(r->samples[i].pools);
    free(r->samples);
    for (size_t i = 0; i < r->n_events; i++) {
        free(r->events[i].type);
        free(r->events[i].subject);
        free(r->events[i].detail);
    }
    free(r->events);
    for (size_t i = 0; i < r->n_hypotheses; i++) {
        free(r->hypotheses[i].text);
        free(r->hypotheses[i].windows);
    }
    free(r->hypotheses);
    for (size_t i = 0; i < r->n_bad_windows; i++) {
        for (int k = 0; k < r->bad_windows[i].n_causes; k++)
            free(r->bad_windows[i].causes[k]);
        free(r->bad_windows[i].causes);
        free(r->bad_windows[i].shares);
    }
    free(r->bad_windows);
    free(r->minutes);
    memset(r, 0, sizeof *r);
}

int rp_conserved(const rp_counts *c)
{
    return c->generated ==
           c->completed + c->rejected + c->failed + c->timed_out + c->in_flight_at_end;
}

/* An LLM pool's targets: -1 when none is set, else 1 when every one holds. */
static int llm_slo_met(const rp_results *r, const rp_llm *l)
{
    if (r->slo_ttft_p99_s <= 0 && r->slo_tpot_p99_s <= 0 && r->slo_e2e_p99_s <= 0 &&
        r->slo_goodput <= 0)
        return -1;
    if (l->finished == 0)
        return 0; /* nothing finished: no target can be said to hold */
    if (r->slo_ttft_p99_s > 0 && l->ttft.p99 > r->slo_ttft_p99_s)
        return 0;
    if (r->slo_tpot_p99_s > 0 && l->tpot.p99 > r->slo_tpot_p99_s)
        return 0;
    if (r->slo_e2e_p99_s > 0 && l->e2e.p99 > r->slo_e2e_p99_s)
        return 0;
    if (r->slo_goodput > 0 && (double)l->good / (double)l->finished < r->slo_goodput)
        return 0;
    return 1;
}

int rp_slo_met(const rp_results *r)
{
    int llm = -1;
    for (int i = 0; i < r->n_pools; i++)
        /* a decode pool's requests are judged at their prefill pool */
        if (r->pools[i].llm && !(r->pools[i].llm->role &&
                                 strcmp(r->pools[i].llm->role, "decode") == 0)) {
            int m = llm_slo_met(r, r->pools[i].llm);
            if (m == 0)
                return 0;
            if (m == 1)
                llm = 1;
        }
    if (r->slo_latency_p99_s <= 0 && r->slo_availability <= 0)
        return llm;
    if (r->slo_latency_p99_s > 0 && r->latency_s.p99 > r->slo_latency_p99_s)
        return 0;
    if (r->slo_availability > 0 && r->availability < r->slo_availability)
        return 0;
    return 1;
}

int rp_peak_interval(const rp_results *r)
{
    int k = -1;
    for (size_t i = 0; i < r->n_samples; i++)
        if (r->samples[i].t_s >= r->warmup_s &&
            (k < 0 || r->samples[i].offered_qps > r->samples[k].offered_qps))
            k = (int)i;
    return k;
}

/* A pool's busy GPUs in sample s over the GPUs that could run batches
 * (ready or draining nodes), both time-averaged over the interval; NAN
 * when none could. */
double rp_busy_share(const rp_sample *s, int pool)
{
    double gpus = s->pools[pool].serving_gpus;
    return gpus > 0 ? s->pools[pool].busy_gpus / gpus : NAN;
}

/* summary.json `peak`: what the busiest interval looked like, where a
 * day's averages (utilisation over 24 h) say little about a spike. */
static void add_peak(cJSON *o, const rp_results *r)
{
    int k = rp_peak_interval(r);
    if (k < 0) {
        cJSON_AddNullToObject(o, "peak");
        return;
    }
    const rp_sample *s = &r->samples[k];
    cJSON *x = cJSON_AddObjectToObject(o, "peak");
    cJSON_AddNumberToObject(x, "t_s", s->t_s);
    cJSON_AddNumberToObject(x, "interval_s", r->interval_s);
    cJSON_AddNumberToObject(x, "offered_qps", s->offered_qps);
    cJSON_AddNumberToObject(x, "completed", (double)s->completed);
    cJSON_AddNumberToObject(x, "errors", (double)(s->rejected + s->failed + s->timed_out));
    cJSON_AddNumberToObject(x, "latency_p99_s", s->p99_s);
    cJSON *pools = cJSON_AddObjectToObject(x, "pools");
    for (int i = 0; i < r->n_pools; i++) {
        cJSON *po = cJSON_AddObjectToObject(pools, r->pools[i].name);
        cJSON_AddNumberToObject(po, "busy_gpus", s->pools[i].busy_gpus);
        cJSON_AddNumberToObject(po, "replicas", s->pools[i].replicas);
        double u = rp_busy_share(s, i);
        if (isnan(u))
            cJSON_AddNullToObject(po, "utilization");
        else
            cJSON_AddNumberToObject(po, "utilization", u);
    }
}

static cJSON *counts_json(const rp_counts *c)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddNumberToObject(o, "generated", (double)c->generated);
    cJSON_AddNumberToObject(o, "completed", (double)c->completed);
    cJSON_AddNumberToObject(o, "rejected", (double)c->rejected);
    cJSON_AddNumberToObject(o, "failed", (double)c->failed);
    cJSON_AddNumberToObject(o, "timed_out", (double)c->timed_out);
    cJSON_AddNumberToObject(o, "in_flight_at_end", (double)c->in_flight_at_end);
    return o;
}

/* A time that may be "never" (NAN): null in JSON. */
static void add_time(cJSON *o, const char *key, double t)
{
    if (isnan(t))
        cJSON_AddNullToObject(o, key);
    else
        cJSON_AddNumberToObject(o, key, t);
}

static void add_str(cJSON *o, const char *key, const char *s)
{
    if (s)
        cJSON_AddStringToObject(o, key, s);
    else
        cJSON_AddNullToObject(o, key);
}

static void add_latency(cJSON *o, const char *key, const rp_latency *l)
{
    cJSON *lat = cJSON_AddObjectToObject(o, key);
    cJSON_AddNumberToObject(lat, "mean", l->mean);
    cJSON_AddNumberToObject(lat, "p50", l->p50);
    cJSON_AddNumberToObject(lat, "p90", l->p90);
    cJSON_AddNumberToObject(lat, "p99", l->p99);
    cJSON_AddNumberToObject(lat, "p999", l->p999);
    cJSON_AddNumberToObject(lat, "max", l->max);
}

static void add_lists(cJSON *o, const rp_results *r)
{
    cJSON *alerts = cJSON_AddArrayToObject(o, "alerts");
    for (size_t i = 0; i < r->n_alerts; i++) {
        const rp_alert *a = &r->alerts[i];
        cJSON *x = cJSON_CreateObject();
        cJSON_AddStringToObject(x, "name", a->name);
        add_str(x, "severity", a->severity);
        add_str(x, "receiver", a->receiver);
        add_time(x, "pending_at", a->pending_at);
        add_time(x, "firing_at", a->firing_at);
        add_time(x, "resolved_at", a->resolved_at);
        add_time(x, "notified_at", a->notified_at);
        if (a->summary)
            cJSON_AddStringToObject(x, "summary", a->summary);
        cJSON_AddItemToArray(alerts, x);
    }
    cJSON *scaling = cJSON_AddArrayToObject(o, "scaling_events");
    for (size_t i = 0; i < r->n_scaling; i++) {
        const rp_scaling *e = &r->scaling[i];
        cJSON *x = cJSON_CreateObject();
        cJSON_AddNumberToObject(x, "t_s", e->t_s);
        cJSON_AddStringToObject(x, "pool", e->pool);
        cJSON_AddNumberToObject(x, "from", e->from);
        cJSON_AddNumberToObject(x, "to", e->to);
        add_str(x, "reason", e->reason);
        cJSON_AddItemToArray(scaling, x);
    }
    cJSON *faults = cJSON_AddArrayToObject(o, "faults");
    for (size_t i = 0; i < r->n_faults; i++) {
        const rp_fault *f = &r->faults[i];
        cJSON *x = cJSON_CreateObject();
        cJSON_AddStringToObject(x, "kind", f->kind);
        add_str(x, "target", f->target);
        add_time(x, "start_s", f->start_s);
        add_time(x, "end_s", f->end_s);
        add_str(x, "detail", f->detail);
        cJSON *req = cJSON_AddObjectToObject(x, "requests");
        cJSON_AddNumberToObject(req, "failed", (double)f->failed);
        cJSON_AddNumberToObject(req, "timed_out", (double)f->timed_out);
        cJSON_AddNumberToObject(req, "rejected", (double)f->rejected);
        add_time(x, "error_share", f->error_share);
        if (f->llm) {
            cJSON *l = cJSON_AddObjectToObject(x, "llm");
            cJSON_AddNumberToObject(l, "kv_lost", (double)f->kv_lost);
            cJSON_AddNumberToObject(l, "restarted", (double)f->restarted);
            cJSON_AddNumberToObject(l, "prefill_tokens_redone", f->prefill_tokens_redone);
            cJSON_AddNumberToObject(l, "handoffs_failed", (double)f->handoffs_failed);
            cJSON_AddNumberToObject(l, "handoffs_slowed", (double)f->handoffs_slowed);
            add_time(l, "handoff_delay_s", f->handoff_delay_s);
            cJSON_AddNumberToObject(l, "ttft_delayed", (double)f->ttft_delayed);
            add_time(l, "ttft_added_s", f->ttft_added_s);
        }
        cJSON_AddItemToArray(faults, x);
    }
}

/* Retries, availability accounting, root causes and hypotheses. */
static void add_chaos(cJSON *o, const rp_results *r)
{
    cJSON_AddNumberToObject(o, "attempts", (double)r->attempts);
    cJSON_AddNumberToObject(o, "attempt_errors", (double)r->attempt_errors);
    cJSON *acc = cJSON_AddObjectToObject(o, "accounting");
    cJSON_AddNumberToObject(acc, "availability_peak", r->availability_peak);
    cJSON_AddNumberToObject(acc, "downtime_minutes", r->downtime_minutes);
    add_time(acc, "error_budget_remaining", r->error_budget_remaining);
    cJSON *by = cJSON_AddObjectToObject(acc, "errors_by_cause");
    cJSON_AddNumberToObject(by, "faults", (double)r->errors_faults);
    cJSON_AddNumberToObject(by, "overload", (double)r->errors_overload);
    cJSON_AddNumberToObject(by, "scaling_lag", (double)r->errors_scaling_lag);
    cJSON *bw = cJSON_AddArrayToObject(acc, "bad_windows");
    for (size_t i = 0; i < r->n_bad_windows; i++) {
        const rp_bad_window *w = &r->bad_windows[i];
        cJSON *x = cJSON_CreateObject();
        cJSON_AddNumberToObject(x, "start_s", w->start_s);
        cJSON_AddNumberToObject(x, "end_s", w->end_s);
        cJSON_AddNumberToObject(x, "errors", (double)w->errors);
        cJSON *c = cJSON_AddArrayToObject(x, "causes");
        for (int k = 0; k < w->n_causes; k++) {
            cJSON *y = cJSON_CreateObject();
            cJSON_AddStringToObject(y, "cause", w->causes[k]);
            cJSON_AddNumberToObject(y, "share", w->shares[k]);
            cJSON_AddItemToArray(c, y);
        }
        cJSON_AddItemToArray(bw, x);
    }
    if (r->hypotheses_met < 0)
        return;
    cJSON *hy = cJSON_AddObjectToObject(o, "hypothesis");
    cJSON_AddBoolToObject(hy, "met", r->hypotheses_met);
    cJSON *checks = cJSON_AddArrayToObject(hy, "checks");
    for (size_t i = 0; i < r->n_hypotheses; i++) {
        const rp_hypothesis *h = &r->hypotheses[i];
        cJSON *x = cJSON_CreateObject();
        cJSON_AddStringToObject(x, "check", h->text);
        cJSON_AddBoolToObject(x, "met", h->met);
        cJSON *ws = cJSON_AddArrayToObject(x, "windows");
        for (size_t k = 0; k < h->n_windows; k++) {
            cJSON *y = cJSON_CreateObject();
            cJSON_AddNumberToObject(y, "start_s", h->windows[k].start_s);
            cJSON_AddNumberToObject(y, "end_s", h->windows[k].end_s);
            cJSON_AddNumberToObject(y, "value", h->windows[k].value);
            cJSON_AddBoolToObject(y, "met", h->windows[k].met);
            cJSON_AddItemToArray(ws, y);
        }
        cJSON_AddItemToArray(checks, x);
    }
}

void rp_print_hypotheses(const rp_results *r, FILE *out)
{
    if (r->hypotheses_met < 0)
        return;
    fprintf(out, "hypothesis    %12s\n", r->hypotheses_met ? "HOLDS" : "FAILED");
    for (size_t i = 0; i < r->n_hypotheses; i++) {
        const rp_hypothesis *h = &r->hypotheses[i];
        fprintf(out, "  %s %s\n", h->met ? "ok  " : "FAIL", h->text);
        for (size_t k = 0; k < h->n_windows; k++)
            if (!h->windows[k].met)
                fprintf(out, "       %.0f-%.0f s: %.6g\n", h->windows[k].start_s,
                        h->windows[k].end_s, h->windows[k].value);
    }
}

int rp_write_availability(const rp_results *r, const char *path)
{
    FILE *f = fopen(path, "w");
    if (!f)
        return -1;
    fprintf(f, "minute_start_s,completed,errors,success_ratio,slo_met,error_budget_remaining,"
               "burn_rate\n");
    for (size_t i = 0; i < r->n_minutes; i++) {
        const rp_minute *m = &r->minutes[i];
        unsigned long fin = m->good + m->bad;
        fprintf(f, "%.0f,%lu,%lu,%.6f,%d,%.6f,%.6f\n", m->t_s, m->good, m->bad,
                fin ? (double)m->good / (double)fin : 1.0, m->slo_met, m->budget_remaining,
                m->burn_rate);
    }
    return fclose(f);
}

static int write_text(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    if (!f)
        return -1;
    int ok = fputs(text, f) >= 0;
    if (fclose(f) != 0 || !ok)
        return -1;
    return 0;
}

/* `alerting`: per fault, the time to the first firing alert and to the
 * first notification; alerts that fired with no fault active. */
static void add_alerting(cJSON *o, const rp_results *r)
{
    const rp_alerting *al = &r->alerting;
    cJSON *x = cJSON_AddObjectToObject(o, "alerting");
    cJSON_AddNumberToObject(x, "alerts_fired", (double)al->fired);
    cJSON_AddNumberToObject(x, "notifications", (double)al->notifications);
    cJSON_AddNumberToObject(x, "fault_grace_s", al->grace_s);
    cJSON *faults = cJSON_AddArrayToObject(x, "faults");
    for (size_t i = 0; i < al->n_faults; i++) {
        const rp_fault_alert *fa = &al->faults[i];
        const rp_fault *f = &r->faults[fa->fault];
        cJSON *y = cJSON_CreateObject();
        cJSON_AddStringToObject(y, "kind", f->kind);
        add_str(y, "target", f->target);
        add_time(y, "start_s", f->start_s);
        add_str(y, "first_alert", fa->alert);
        add_time(y, "first_firing_at", fa->firing_at);
        add_time(y, "detection_s", fa->firing_at - f->start_s);
        add_str(y, "first_receiver", fa->receiver);
        add_str(y, "first_integration", fa->integration);
        add_time(y, "first_notified_at", fa->notified_at);
        add_time(y, "notification_s", fa->notified_at - f->start_s);
        cJSON_AddItemToArray(faults, y);
    }
    cJSON *fp = cJSON_AddArrayToObject(x, "false_positives");
    for (size_t i = 0; i < al->n_false_positives; i++) {
        const rp_alert *a = &r->alerts[al->false_positives[i]];
        cJSON *y = cJSON_CreateObject();
        cJSON_AddStringToObject(y, "name", a->name);
        add_str(y, "severity", a->severity);
        add_time(y, "firing_at", a->firing_at);
        add_time(y, "resolved_at", a->resolved_at);
        cJSON_AddItemToArray(fp, y);
    }
}

/* An LLM pool's token metrics: latencies in seconds, tokens per second
 * over the measured span, and the cost of a million output tokens. */
static void add_llm(cJSON *po, const rp_pool *p)
{
    const rp_llm *l = p->llm;
    cJSON *x = cJSON_AddObjectToObject(po, "llm");
    cJSON_AddStringToObject(x, "gpu", l->gpu ? l->gpu : "");
    cJSON_AddNumberToObject(x, "tensor_parallel", l->tensor_parallel);
    if (l->expert_parallel > 1) /* only then: other pools' summaries stay as they were */
        cJSON_AddNumberToObject(x, "expert_parallel", l->expert_parallel);
    cJSON_AddNumberToObject(x, "replicas_per_node", l->replicas_per_node);
    cJSON_AddNumberToObject(x, "kv_blocks_per_replica", (double)l->kv_blocks_per_replica);
    cJSON_AddNumberToObject(x, "block_size", l->block_size);
    cJSON_AddNumberToObject(x, "max_num_batched_tokens", l->max_num_batched_tokens);
    cJSON_AddNumberToObject(x, "max_num_seqs", l->max_num_seqs);
    cJSON_AddNumberToObject(x, "kv_bytes_per_token", l->kv_bytes_per_token);
    cJSON_AddNumberToObject(x, "weight_bytes", l->weight_bytes);
    add_latency(x, "ttft_s", &l->ttft);
    add_latency(x, "tpot_s", &l->tpot);
    add_latency(x, "itl_s", &l->itl);
    add_latency(x, "e2e_s", &l->e2e);
    cJSON_AddNumberToObject(x, "finished", (double)l->finished);
    cJSON_AddNumberToObject(x, "goodput", l->finished ? (double)l->good / (double)l->finished : 0);
    cJSON_AddNumberToObject(x, "input_tokens", l->input_tokens);
    cJSON_AddNumberToObject(x, "output_tokens", l->output_tokens);
    cJSON_AddNumberToObject(x, "input_tokens_per_s", l->input_tps);
    cJSON_AddNumberToObject(x, "output_tokens_per_s", l->output_tps);
    cJSON_AddNumberToObject(x, "kv_usage_mean", l->kv_usage_mean);
    cJSON_AddNumberToObject(x, "kv_usage_max", l->kv_usage_max);
    cJSON_AddNumberToObject(x, "preemptions", (double)l->preemptions);
    cJSON_AddNumberToObject(x, "steps", (double)l->steps);
    cJSON_AddNumberToObject(x, "prefix_cache_queries", (double)l->prefix_queries);
    cJSON_AddNumberToObject(x, "prefix_cache_hits", (double)l->prefix_hits);
    cJSON_AddNumberToObject(x, "cost_per_million_output_tokens", l->cost_per_mtok);
    if (l->role) /* only for disaggregated pools: other summaries keep their shape */
        cJSON_AddStringToObject(x, "role", l->role);
    if (l->decode_pool) {
        cJSON *k = cJSON_AddObjectToObject(x, "kv_transfer");
        cJSON_AddStringToObject(k, "decode_pool", l->decode_pool);
        cJSON_AddStringToObject(k, "router", l->decode_router ? l->decode_router : "");
        cJSON_AddNumberToObject(k, "count", (double)l->kv_transfers);
        cJSON_AddNumberToObject(k, "failed", (double)l->kv_transfers_failed);
        cJSON_AddNumberToObject(k, "failed_before_start", (double)l->kv_transfers_unstarted);
        cJSON_AddNumberToObject(k, "bytes", l->kv_transfer_bytes);
        add_latency(k, "time_s", &l->kv_transfer_s);
        cJSON *per = cJSON_AddArrayToObject(k, "per_decode_replica");
        for (int i = 0; i < l->n_kv_per_replica; i++)
            cJSON_AddItemToArray(per, cJSON_CreateNumber((double)l->kv_per_replica[i]));
    }
}

int rp_write_summary(const rp_results *r, const char *path)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "scenario", r->scenario ? r->scenario : "");
    cJSON_AddNumberToObject(o, "seed", (double)r->seed);
    if (r->has_clock) {
        char when[48];
        rp_fmt_clock(when, sizeof when, 0, r->clock_start_s, r->utc_offset_s, 1, 1);
        cJSON_AddStringToObject(o, "start_time", when);
    }
    cJSON_AddNumberToObject(o, "sim_time_s", r->sim_time_s);
    if (r->interrupted) /* only then: finished runs' summaries keep their shape */
        cJSON_AddTrueToObject(o, "interrupted");
    cJSON_AddNumberToObject(o, "warmup_s", r->warmup_s);
    cJSON_AddNumberToObject(o, "wall_time_s", r->wall_time_s);
    cJSON_AddNumberToObject(o, "peak_rss_mb", r->peak_rss_mb);
    if (r->fast_quantum_s > 0) { /* only then: exact runs' summaries keep their shape */
        cJSON *sim = cJSON_AddObjectToObject(o, "simulation");
        cJSON_AddStringToObject(sim, "mode", "fast");
        cJSON_AddNumberToObject(sim, "arrival_quantum_s", r->fast_quantum_s);
    }
    cJSON_AddItemToObject(o, "requests", counts_json(&r->requests));
    cJSON_AddItemToObject(o, "measured", counts_json(&r->measured));
    add_latency(o, "latency_s", &r->latency_s);
    cJSON_AddNumberToObject(o, "availability", r->availability);
    cJSON_AddNumberToObject(o, "throughput_qps", r->throughput_qps);
    add_peak(o, r);
    cJSON *pools = cJSON_AddObjectToObject(o, "pools");
    for (int i = 0; i < r->n_pools; i++) {
        const rp_pool *p = &r->pools[i];
        cJSON *po = cJSON_AddObjectToObject(pools, p->name);
        cJSON_AddNumberToObject(po, "replicas_min", p->replicas_min);
        cJSON_AddNumberToObject(po, "replicas_max", p->replicas_max);
        cJSON_AddNumberToObject(po, "gpus_per_node", p->gpus_per_node);
        cJSON_AddNumberToObject(po, "utilization", p->utilization);
        cJSON_AddNumberToObject(po, "gpu_hours", p->gpu_hours);
        cJSON_AddNumberToObject(po, "energy_kwh", p->energy_kwh);
        cJSON_AddItemToObject(po, "requests", counts_json(&p->counts));
        if (r->hybrid) {
            cJSON_AddNumberToObject(po, "failover_in", (double)p->failover_in);
            cJSON *c = cJSON_AddObjectToObject(po, "cost");
            cJSON_AddStringToObject(c, "billing", p->billing_amortised ? "amortised" : "used");
            cJSON_AddNumberToObject(c, "compute", p->cost_compute);
            cJSON_AddNumberToObject(c, "egress_gb", p->egress_gb);
            cJSON_AddNumberToObject(c, "egress", p->cost_egress);
            cJSON_AddNumberToObject(c, "total", p->cost);
        }
        if (p->llm)
            add_llm(po, p);
    }
    if (r->n_caches > 0) {
        cJSON *caches = cJSON_AddObjectToObject(o, "caches");
        for (int i = 0; i < r->n_caches; i++) {
            const rp_cache *c = &r->caches[i];
            cJSON *x = cJSON_AddObjectToObject(caches, c->name);
            unsigned long n = c->hits + c->misses;
            cJSON_AddNumberToObject(x, "lookups", (double)n);
            cJSON_AddNumberToObject(x, "hits", (double)c->hits);
            cJSON_AddNumberToObject(x, "hit_ratio", n ? (double)c->hits / (double)n : 0);
        }
    }
    if (r->n_queues > 0) {
        cJSON *queues = cJSON_AddObjectToObject(o, "queues");
        for (int i = 0; i < r->n_queues; i++) {
            const rp_queue *q = &r->queues[i];
            cJSON *x = cJSON_AddObjectToObject(queues, q->name);
            add_str(x, "consumer", q->consumer);
            cJSON_AddNumberToObject(x, "published", (double)q->published);
            cJSON_AddNumberToObject(x, "delivered", (double)q->delivered);
            cJSON_AddNumberToObject(x, "refused", (double)q->refused);
            cJSON_AddNumberToObject(x, "processed", (double)q->processed);
            cJSON_AddNumberToObject(x, "lost", (double)q->lost);
            cJSON_AddNumberToObject(x, "redelivered", (double)q->redelivered);
            add_latency(x, "lag_s", &q->lag_s);
            cJSON_AddNumberToObject(x, "backlog_max", q->backlog_max);
            cJSON_AddNumberToObject(x, "backlog_at_end", q->backlog_at_end);
        }
    }
    if (r->n_balancers > 0) {
        cJSON *bs = cJSON_AddObjectToObject(o, "balancers");
        for (int i = 0; i < r->n_balancers; i++) {
            cJSON *x = cJSON_AddObjectToObject(bs, r->balancers[i].name);
            cJSON_AddNumberToObject(x, "routed", (double)r->balancers[i].routed);
            cJSON_AddNumberToObject(x, "refused", (double)r->balancers[i].refused);
            cJSON_AddNumberToObject(x, "cut", (double)r->balancers[i].cut);
        }
    }
    cJSON *cost = cJSON_AddObjectToObject(o, "cost");
    cJSON_AddNumberToObject(cost, "gpu_hours", r->gpu_hours);
    cJSON_AddNumberToObject(cost, "energy_kwh", r->energy_kwh);
    cJSON_AddNumberToObject(cost, "money", r->cost);
    if (r->currency[0]) /* absent: USD, the unit of the gpu_type prices */
        cJSON_AddStringToObject(cost, "currency", r->currency);
    if (r->hybrid) { /* the same totals by zone: a site, a cloud region */
        cJSON *zones = cJSON_AddObjectToObject(cost, "zones");
        for (int i = 0; i < r->n_pools; i++) {
            const char *z = r->pools[i].zone ? r->pools[i].zone : r->pools[i].name;
            cJSON *x = cJSON_GetObjectItemCaseSensitive(zones, z);
            if (!x)
                x = cJSON_AddNumberToObject(zones, z, 0);
            cJSON_SetNumberValue(x, x->valuedouble + r->pools[i].cost);
        }
    }
    cJSON *slo = cJSON_AddObjectToObject(o, "slo");
    if (r->slo_latency_p99_s > 0)
        cJSON_AddNumberToObject(slo, "latency_p99_s", r->slo_latency_p99_s);
    if (r->slo_availability > 0)
        cJSON_AddNumberToObject(slo, "availability", r->slo_availability);
    if (r->slo_ttft_p99_s > 0)
        cJSON_AddNumberToObject(slo, "ttft_p99_s", r->slo_ttft_p99_s);
    if (r->slo_tpot_p99_s > 0)
        cJSON_AddNumberToObject(slo, "tpot_p99_s", r->slo_tpot_p99_s);
    if (r->slo_e2e_p99_s > 0)
        cJSON_AddNumberToObject(slo, "e2e_p99_s", r->slo_e2e_p99_s);
    if (r->slo_goodput > 0)
        cJSON_AddNumberToObject(slo, "goodput", r->slo_goodput);
    int met = rp_slo_met(r);
    if (met < 0)
        cJSON_AddNullToObject(slo, "met");
    else
        cJSON_AddBoolToObject(slo, "met", met);
    add_lists(o, r);
    if (r->n_classes > 0) {
        cJSON *classes = cJSON_AddObjectToObject(o, "classes");
        for (int i = 0; i < r->n_classes; i++) {
            const rp_class *c = &r->classes[i];
            cJSON *x = cJSON_AddObjectToObject(classes, c->name);
            add_str(x, "pool", c->pool);
            if (c->pipeline)
                add_str(x, "pipeline", c->pipeline);
            if (c->profile_period_s > 0)
                cJSON_AddNumberToObject(x, "profile_period_s", c->profile_period_s);
            cJSON_AddItemToObject(x, "requests", counts_json(&c->counts));
            add_latency(x, "latency_s", &c->latency_s);
        }
    }
    add_chaos(o, r);
    if (r->alerting.on)
        add_alerting(o, r);
    char *text = cJSON_Print(o);
    cJSON_Delete(o);
    if (!text) {
        errno = ENOMEM;
        return -1;
    }
    size_t n = strlen(text);
    char *withnl = malloc(n + 2);
    memcpy(withnl, text, n);
    withnl[n] = '\n';
    withnl[n + 1] = '\0';
    cJSON_free(text);
    int rc = write_text(path, withnl);
    free(withnl);
    return rc;
}

int rp_write_timeseries(const rp_results *r, const char *path)
{
    FILE *f = fopen(path, "w");
    if (!f)
        return -1;
    fprintf(f, "time_s,offered_qps,completed,rejected,failed,timed_out,latency_p50_s,latency_p99_s");
    for (int k = 0; k < r->n_pools; k++)
        fprintf(f, ",%s.queue_depth,%s.busy_gpus,%s.replicas", r->pools[k].name, r->pools[k].name,
                r->pools[k].name);
    for (int k = 0; k < r->n_queues; k++)
        fprintf(f, ",%s.backlog", r->queues[k].name);
    for (int k = 0; k < r->n_pools; k++)
        if (r->pools[k].llm)
            fprintf(f, ",%s.kv_usage,%s.running,%s.waiting", r->pools[k].name, r->pools[k].name,
                    r->pools[k].name);
    fputc('\n', f);
    for (size_t i = 0; i < r->n_samples; i++) {
        const rp_sample *s = &r->samples[i];
        fprintf(f, "%.6f,%.6f,%lu,%lu,%lu,%lu,%.9g,%.9g", s->t_s, s->offered_qps, s->completed,
                s->rejected, s->failed, s->timed_out, s->p50_s, s->p99_s);
        for (int k = 0; k < r->n_pools; k++)
            fprintf(f, ",%.0f,%.6f,%d", s->pools[k].queue_depth, s->pools[k].busy_gpus,
                    s->pools[k].replicas);
        for (int k = 0; k < r->n_queues; k++)
            fprintf(f, ",%.0f", r->queues[k].backlog ? r->queues[k].backlog[i] : 0);
        for (int k = 0; k < r->n_pools; k++)
            if (r->pools[k].llm)
                fprintf(f, ",%.6f,%.0f,%.0f", s->pools[k].kv_usage, s->pools[k].running,
                        s->pools[k].waiting);
        fputc('\n', f);
    }
    return fclose(f);
}

int rp_write_events(const rp_results *r, const char *path)
{
    FILE *f = fopen(path, "w");
    if (!f)
        return -1;
    for (size_t i = 0; i < r->n_events; i++) {
        const rp_event *e = &r->events[i];
        cJSON *o = cJSON_CreateObject();
        cJSON_AddNumberToObject(o, "t_s", e->t_s);
        cJSON_AddStringToObject(o, "type", e->type);
        if (e->subject)
            cJSON_AddStringToObject(o, "subject", e->subject);
        if (e->detail)
            cJSON_AddStringToObject(o, "detail", e->detail);
        char *line = cJSON_PrintUnformatted(o);
        cJSON_Delete(o);
        if (line) {
            fprintf(f, "%s\n", line);
            cJSON_free(line);
        }
    }
    return fclose(f);
}

static void print_ms(FILE *out, const char *label, double s)
{
    fprintf(out, "  %-8s %10.1f ms\n", label, s * 1e3);
}

/* The alerts that fired (elapsed times, h:mm:ss), the first 10 of them; the
 * ones only pending are counted. */
static void print_alerts(const rp_results *r, FILE *out)
{
    size_t fired = 0, pending = 0;
    for (size_t i = 0; i < r->n_alerts; i++) {
        fired += !isnan(r->alerts[i].firing_at);
        pending += isnan(r->alerts[i].firing_at) && !isnan(r->alerts[i].pending_at);
    }
    if (r->n_alerts == 0)
        return;
    fprintf(out, "alerts        %12zu fired", fired);
    if (pending)
        fprintf(out, "  (%zu more pending only)", pending);
    fprintf(out, "\n");
    size_t shown = 0;
    for (size_t i = 0; i < r->n_alerts && shown < 10; i++) {
        const rp_alert *a = &r->alerts[i];
        if (isnan(a->firing_at))
            continue;
        char from[32], to[32];
        rp_fmt_elapsed(from, sizeof from, a->firing_at);
        if (isnan(a->resolved_at))
            snprintf(to, sizeof to, "the end");
        else
            rp_fmt_elapsed(to, sizeof to, a->resolved_at);
        fprintf(out, "  %-22s %-9s firing %s to %s\n", a->name, a->severity ? a->severity : "",
                from, to);
        shown++;
    }
    if (fired > shown)
        fprintf(out, "  ... %zu more in summary.json and report.html\n", fired - shown);
}

void rp_print_table(const rp_results *r, FILE *out)
{
    const rp_counts *c = &r->requests;
    fprintf(out, "scenario %s  seed %lu  simulated %.0f s (warm-up %.0f s)  wall %.2f s\n",
            r->scenario, r->seed, r->sim_time_s, r->warmup_s, r->wall_time_s);
    if (r->interrupted)
        fprintf(out, "INTERRUPTED at %.0f s of simulated time: partial results\n", r->sim_time_s);
    for (int i = 0; i < r->n_classes; i++)
        if (r->classes[i].profile_period_s > 0)
            fprintf(out, "traffic %s: its rate profile repeats every %g h\n", r->classes[i].name,
                    r->classes[i].profile_period_s / 3600);
    fprintf(out, "requests      %12lu generated\n", c->generated);
    fprintf(out, "  completed   %12lu\n", c->completed);
    fprintf(out, "  rejected    %12lu  (503, queue full)\n", c->rejected);
    fprintf(out, "  failed      %12lu  (502, upstream failure)\n", c->failed);
    fprintf(out, "  timed out   %12lu  (504, deadline)\n", c->timed_out);
    fprintf(out, "  in flight   %12lu  (at end)\n", c->in_flight_at_end);
    fprintf(out, "latency (completed after warm-up)\n");
    print_ms(out, "mean", r->latency_s.mean);
    print_ms(out, "p50", r->latency_s.p50);
    print_ms(out, "p90", r->latency_s.p90);
    print_ms(out, "p99", r->latency_s.p99);
    print_ms(out, "p99.9", r->latency_s.p999);
    print_ms(out, "max", r->latency_s.max);
    fprintf(out, "availability  %12.4f %%\n", 100 * r->availability);
    fprintf(out, "throughput    %12.2f req/s\n", r->throughput_qps);
    for (int i = 0; i < r->n_pools; i++)
        fprintf(out, "pool %-8s %3d nodes x %d GPU  utilisation %5.1f %%\n", r->pools[i].name,
                r->pools[i].replicas_max, r->pools[i].gpus_per_node, 100 * r->pools[i].utilization);
    for (int i = 0; i < r->n_pools; i++) {
        const rp_llm *l = r->pools[i].llm;
        if (!l)
            continue;
        fprintf(out, "  llm %s x%d replicas/node (%s %d)  KV %ld blocks of %d tokens per replica\n",
                l->gpu, l->replicas_per_node, l->expert_parallel > 1 ? "EP" : "TP",
                l->expert_parallel > 1 ? l->expert_parallel : l->tensor_parallel,
                l->kv_blocks_per_replica,
                l->block_size);
        int decode = l->role && strcmp(l->role, "decode") == 0;
        if (l->role)
            fprintf(out, "  role        %s%s\n", l->role,
                    decode ? " (its requests' latencies are counted at their prefill pool)" : "");
        if (l->decode_pool)
            fprintf(out, "  KV transfer %12lu to %s  %.1f MB mean  %.1f ms mean  %.1f ms p99  "
                    "%lu failed  %lu failed before starting\n", l->kv_transfers, l->decode_pool,
                    l->kv_transfers ? l->kv_transfer_bytes / (double)l->kv_transfers / 1e6 : 0,
                    1e3 * l->kv_transfer_s.mean, 1e3 * l->kv_transfer_s.p99,
                    l->kv_transfers_failed, l->kv_transfers_unstarted);
        if (!decode) {
            fprintf(out, "  TTFT        p50 %9.1f ms  p99 %9.1f ms\n", 1e3 * l->ttft.p50,
                    1e3 * l->ttft.p99);
            fprintf(out, "  TPOT        p50 %9.1f ms  p99 %9.1f ms\n", 1e3 * l->tpot.p50,
                    1e3 * l->tpot.p99);
            fprintf(out, "  ITL         p50 %9.1f ms  p99 %9.1f ms\n", 1e3 * l->itl.p50,
                    1e3 * l->itl.p99);
            fprintf(out, "  E2E         p50 %9.3f s   p99 %9.3f s\n", l->e2e.p50, l->e2e.p99);
            fprintf(out, "  tokens      %12.1f in/s  %.1f out/s\n", l->input_tps, l->output_tps);
            fprintf(out, "  goodput     %12.2f %% of %lu finished\n",
                    l->finished ? 100.0 * (double)l->good / (double)l->finished : 0, l->finished);
        } else {
            fprintf(out, "  tokens      %12.1f out/s\n", l->output_tps);
        }
        fprintf(out, "  KV cache    %12.1f %% mean  %.1f %% max  %lu preemptions\n",
                100 * l->kv_usage_mean, 100 * l->kv_usage_max, l->preemptions);
        if (l->prefix_queries > 0)
            fprintf(out, "  prefix hits %12.1f %% of prompt tokens\n",
                    100.0 * (double)l->prefix_hits / (double)l->prefix_queries);
        fprintf(out, "  cost        %12.3f %s per million output tokens\n", l->cost_per_mtok,
                rp_currency(r));
    }
    int k = rp_peak_interval(r);
    if (k >= 0 && r->n_samples > 1) {
        const rp_sample *s = &r->samples[k];
        fprintf(out, "peak          %.0f-%.0f s: %.1f req/s offered, p99 %.1f ms, %lu errors\n",
                s->t_s, s->t_s + r->interval_s, s->offered_qps, 1e3 * s->p99_s,
                s->rejected + s->failed + s->timed_out);
        for (int i = 0; i < r->n_pools; i++) {
            double u = rp_busy_share(s, i);
            if (!isnan(u))
                fprintf(out, "  pool %-8s %5.1f %% busy (%d ready nodes)\n", r->pools[i].name,
                        100 * u, s->pools[i].replicas);
        }
    }
    for (int i = 0; i < r->n_caches; i++) {
        unsigned long n = r->caches[i].hits + r->caches[i].misses;
        fprintf(out, "cache %-7s %12lu lookups  hit ratio %5.1f %%\n", r->caches[i].name, n,
                n ? 100.0 * (double)r->caches[i].hits / (double)n : 0);
    }
    for (int i = 0; i < r->n_queues; i++)
        fprintf(out, "queue %-7s %12lu published  %lu refused  %lu processed  %lu lost  "
                "backlog max %d, at end %d  lag p99 %.1f ms\n",
                r->queues[i].name, r->queues[i].published, r->queues[i].refused,
                r->queues[i].processed, r->queues[i].lost, r->queues[i].backlog_max,
                r->queues[i].backlog_at_end, 1e3 * r->queues[i].lag_s.p99);
    fprintf(out, "cost          %12.2f GPU-hours  %.2f kWh  %.2f %s\n", r->gpu_hours,
            r->energy_kwh, r->cost, rp_currency(r));
    int met = rp_slo_met(r);
    if (met >= 0)
        fprintf(out, "SLO           %12s\n", met ? "met" : "MISSED");
    print_alerts(r, out);
    if (r->n_faults > 0)
        fprintf(out, "errors by cause: faults %lu, overload %lu, scaling lag %lu\n",
                r->errors_faults, r->errors_overload, r->errors_scaling_lag);
    rp_print_hypotheses(r, out);
}
