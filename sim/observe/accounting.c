/*
 * accounting.c - availability accounting, root causes and steady-state
 * hypotheses.
 *
 * Every request that ends in error is tagged with a cause at that moment:
 * the fault acting on the node it was on, or on its pool, or on another node
 * of its pool (lost capacity), or a flash crowd on its class, or on another
 * pool its class fails over to (its load moved here); failing those,
 * scaling lag (the autoscaler wants more replicas than are ready) or plain
 * overload. Counts go per time-series interval and per cause, so that each
 * stretch of intervals that missed the SLO lists its causes with their share
 * of the errors. Per-minute counts give the SLO compliance, error budget and
 * burn rate (availability.csv). Hypotheses are judged on sums over whole
 * intervals: availability and error rate directly, p99 <= X as "at most 1%
 * of completions slower than X", counted exactly at completion.
 *
 * On LLM pools a fault also costs work and time that are not errors: the
 * KV caches of the requests on a replica it took down (those sent again
 * start over with a full prefill: the prompt tokens they had computed are
 * computed again), KV handoffs it failed (a replica it took down, or links
 * it turned off) or slowed (a slowed one by its time beyond its time alone
 * on unfaulted links), and the first tokens it
 * delayed by holding a prefill pool's requests at the balancer with no
 * worker up. Each is counted on the fault's entry in the results (llm).
 */
#include "observe.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static struct {
    int n_causes;              /* scenario faults + overload + scaling lag */
    unsigned long *errs;       /* [interval][cause] */
    unsigned long *fin;        /* finished per interval (measured) */
    unsigned long *good;       /* completed per interval (measured) */
    int n_bounds;
    double bounds[64];         /* latency thresholds: the SLO's and the hypotheses' */
    unsigned long *slow;       /* [bound][interval]: completions slower than the bound */
    size_t n_minutes;
    unsigned long *min_good, *min_bad;
    int *rec_of_fault;         /* summary fault record of each scheduled fault */
} acc_state;

static int bound_index(double b)
{
    for (int i = 0; i < acc_state.n_bounds; i++)
        if (acc_state.bounds[i] == b)
            return i;
    if (acc_state.n_bounds == 64)
        return -1;
    acc_state.bounds[acc_state.n_bounds] = b;
    return acc_state.n_bounds++;
}

void acc_init(void)
{
    memset(&acc_state, 0, sizeof acc_state);
    const sc_scenario *sc = eng_world.sc;
    acc_state.n_causes = sc->n_faults + 2;
    acc_state.errs = calloc(eng_world.n_intervals * (size_t)acc_state.n_causes, sizeof *acc_state.errs);
    acc_state.fin = calloc(eng_world.n_intervals, sizeof *acc_state.fin);
    acc_state.good = calloc(eng_world.n_intervals, sizeof *acc_state.good);
    if (sc->slo.latency_p99_s > 0)
        bound_index(sc->slo.latency_p99_s);
    for (int i = 0; i < sc->n_hypotheses; i++)
        if (sc->hypotheses[i].metric == SC_HYP_LATENCY_P99)
            bound_index(sc->hypotheses[i].bound);
    acc_state.slow = calloc(eng_world.n_intervals * (size_t)(acc_state.n_bounds ? acc_state.n_bounds : 1), sizeof *acc_state.slow);
    acc_state.n_minutes = (size_t)ceil((sc->duration_s - sc->warmup_s) / 60.0);
    acc_state.min_good = calloc(acc_state.n_minutes + 1, sizeof *acc_state.min_good);
    acc_state.min_bad = calloc(acc_state.n_minutes + 1, sizeof *acc_state.min_bad);
    acc_state.rec_of_fault = malloc(sizeof *acc_state.rec_of_fault * (size_t)(sc->n_faults + 1));
    for (int i = 0; i < sc->n_faults; i++)
        acc_state.rec_of_fault[i] = -1;
}

void acc_fault_recorded(int fault, int rec)
{
    if (fault >= 0 && fault < eng_world.sc->n_faults)
        acc_state.rec_of_fault[fault] = rec;
}

/* The fault on the first of p's nodes that has one (capacity it lost),
 * with its record in *rec; -1 if none. */
static int node_fault(const eng_pool *p, int *rec)
{
    return eng_pool_node_fault(p, rec);
}

/* The results' entry rec, for an LLM count; NULL if none. */
static rp_fault *llm_entry(int rec)
{
    if (rec < 0 || (size_t)rec >= eng_world.out->n_faults)
        return NULL;
    rp_fault *f = &eng_world.out->faults[rec];
    f->llm = 1;
    return f;
}

void acc_llm_lost(const eng_node *n, const eng_req *r, int prefill_tokens, int restarted)
{
    if (r->arrival_s < eng_world.sc->warmup_s || n->fault.cause < 0)
        return;
    rp_fault *f = llm_entry(n->fault.fault_rec);
    if (!f)
        return;
    f->kv_lost++;
    if (restarted) {
        f->restarted++;
        f->prefill_tokens_redone += prefill_tokens;
    }
}

/* A failed handoff is the fault's that eng_handoff_fault names (a replica
 * it took down, or links it turned off); a slowed one is a fault's on
 * either pool's links (bandwidth_cut) at its landing. */
void acc_kv_handoff(const eng_node *src, const eng_node *dst, int failed, double time_s,
                    double alone_s)
{
    int rec = -1;
    if (failed) {
        eng_handoff_fault(src, dst, &rec);
        rp_fault *f = llm_entry(rec);
        if (f)
            f->handoffs_failed++;
        return;
    }
    if (!(time_s - alone_s > 1e-12))
        return;
    if (src->pool->cause >= 0)
        rec = src->pool->fault_rec;
    else if (dst && dst->pool->cause >= 0)
        rec = dst->pool->fault_rec;
    rp_fault *f = llm_entry(rec);
    if (f) {
        f->handoffs_slowed++;
        f->handoff_delay_s += time_s - alone_s;
    }
}

static int cause_of(const eng_pool *p, const eng_req *r, double t, int *rec)
{
    const sc_scenario *sc = eng_world.sc;
    *rec = -1;
    /* still waiting at a prefill pool's balancer for a worker a fault
     * holds down (flow/request.c) */
    if (!isnan(r->outage_since_s) && r->outage_cause >= 0) {
        *rec = r->outage_rec;
        return r->outage_cause;
    }
    /* its connection cut by its L7 balancer going down (tiers.c) */
    if (eng_world.l4 && r->l7 >= 0 && !r->job && eng_world.l7[r->l7].n_down > 0) {
        int cause;
        if (tier_cut_at(r, t, &cause, rec) <= t && cause >= 0)
            return cause;
        *rec = -1;
    }
    /* refused by a failed L7 balancer before reaching any server */
    if (eng_world.l4 && r->l7 >= 0 && r->attempts == 0 && eng_world.l7[r->l7].cause >= 0) {
        *rec = eng_world.l7[r->l7].fault_rec;
        return eng_world.l7[r->l7].cause;
    }
    /* its attempt failed in a KV handoff a fault failed (serve/llm.c):
     * the error is that fault's, wherever the request then ended */
    if (r->handoff_cause >= 0) {
        *rec = r->handoff_rec;
        return r->handoff_cause;
    }
    if (r->node >= 0 && p->nodes[r->node].fault.cause >= 0) {
        *rec = p->nodes[r->node].fault.fault_rec;
        return p->nodes[r->node].fault.cause;
    }
    if (p->cause >= 0) {
        *rec = p->fault_rec;
        return p->cause;
    }
    /* the broker of the queue after its stage refused it (past caches
     * that hit, each skipping the pool after it) */
    const sc_pipeline *pl = eng_world.classes[r->tclass].pipe;
    int k = r->stage + 1;
    while (k < pl->n_stages && pl->stages[k].kind == SC_STAGE_CACHE)
        k += 2;
    if (r->stage >= 0 && k < pl->n_stages && pl->stages[k].kind == SC_STAGE_QUEUE) {
        const eng_queue *q = &eng_world.queues[pl->stages[k].ref];
        if (q->cause >= 0) {
            *rec = q->fault_rec;
            return q->cause;
        }
    }
    int lost = node_fault(p, rec);
    if (lost >= 0)
        return lost;
    for (int i = 0; i < sc->n_faults; i++) {
        const sc_fault *f = &sc->faults[i];
        double end = f->duration_s > 0 ? f->at_s + f->duration_s : INFINITY;
        if (f->kind == SC_FAULT_FLASH_CROWD && t >= f->at_s && t < end &&
            (f->traffic < 0 || f->traffic == r->tclass)) {
            *rec = acc_state.rec_of_fault[i];
            return i;
        }
    }
    /* a cache that should have spared the pool this load is down */
    for (int i = 0; i < sc->n_caches; i++)
        if (sc->caches[i].skips == p->id && eng_world.caches[i].cause >= 0) {
            *rec = eng_world.caches[i].fault_rec;
            return eng_world.caches[i].cause;
        }
    /* a class that fails over across pools (traffic.<c>.failover): another
     * of its pools lost capacity to a fault, so its load came here */
    const sc_traffic *tc = &sc->traffic[r->tclass];
    for (int i = 0; i < tc->n_failover; i++) {
        const eng_pool *q = &eng_world.pools[tc->failover[i].pool];
        if (q == p)
            continue;
        if (q->cause >= 0) {
            *rec = q->fault_rec;
            return q->cause;
        }
        if ((lost = node_fault(q, rec)) >= 0)
            return lost;
    }
    if (p->target > eng_ready_count(p, 0))
        return sc->n_faults + 1; /* scaling lag */
    return sc->n_faults;         /* overload */
}

void acc_request_end(const eng_pool *p, const eng_req *r, int bucket, double t_s, size_t interval,
                     double latency_s)
{
    if (r->arrival_s < eng_world.sc->warmup_s)
        return;
    acc_state.fin[interval]++;
    size_t minute = (size_t)((t_s - eng_world.sc->warmup_s) / 60.0);
    if (minute > acc_state.n_minutes)
        minute = acc_state.n_minutes;
    if (bucket == B_COMPLETED) {
        rp_fault *f;
        if (r->outage_wait_s > 0 && (f = llm_entry(r->outage_rec))) {
            f->ttft_delayed++;
            f->ttft_added_s += r->outage_wait_s;
        }
        acc_state.good[interval]++;
        acc_state.min_good[minute]++;
        for (int b = 0; b < acc_state.n_bounds; b++)
            if (latency_s > acc_state.bounds[b])
                acc_state.slow[(size_t)b * eng_world.n_intervals + interval]++;
        return;
    }
    acc_state.min_bad[minute]++;
    int rec;
    int c = cause_of(p, r, t_s, &rec);
    acc_state.errs[interval * (size_t)acc_state.n_causes + (size_t)c]++;
    if (rec >= 0 && (size_t)rec < eng_world.out->n_faults) {
        rp_fault *f = &eng_world.out->faults[rec];
        if (bucket == B_FAILED)
            f->failed++;
        else if (bucket == B_TIMED_OUT)
            f->timed_out++;
        else
            f->rejected++;
    }
}

static double interval_end(size_t i)
{
    return fmin((double)(i + 1) * eng_world.sc->interval_s, eng_world.sc->duration_s);
}

static const char *cause_name(int c)
{
    if (c == eng_world.sc->n_faults)
        return "overload";
    if (c == eng_world.sc->n_faults + 1)
        return "scaling_lag";
    return eng_world.sc->faults[c].label;
}

static int interval_bad(size_t i)
{
    const sc_slo *slo = &eng_world.sc->slo;
    unsigned long errs = acc_state.fin[i] - acc_state.good[i];
    if (slo->availability > 0 ? (double)errs > (1 - slo->availability) * (double)acc_state.fin[i] : errs > 0)
        return 1;
    if (slo->latency_p99_s > 0 && acc_state.good[i] > 0) {
        int b = bound_index(slo->latency_p99_s);
        return (double)acc_state.slow[(size_t)b * eng_world.n_intervals + i] > 0.01 * (double)acc_state.good[i];
    }
    return 0;
}

static void bad_windows(rp_results *out)
{
    size_t first = (size_t)(eng_world.sc->warmup_s / eng_world.sc->interval_s);
    for (size_t i = first; i < eng_world.n_intervals;) {
        if (!interval_bad(i)) {
            i++;
            continue;
        }
        size_t j = i;
        while (j + 1 < eng_world.n_intervals && interval_bad(j + 1))
            j++;
        unsigned long *by = calloc((size_t)acc_state.n_causes, sizeof *by);
        unsigned long total = 0;
        for (size_t k = i; k <= j; k++)
            for (int c = 0; c < acc_state.n_causes; c++) {
                by[c] += acc_state.errs[k * (size_t)acc_state.n_causes + (size_t)c];
                total += acc_state.errs[k * (size_t)acc_state.n_causes + (size_t)c];
            }
        out->bad_windows = realloc(out->bad_windows, sizeof *out->bad_windows * (out->n_bad_windows + 1));
        rp_bad_window *w = &out->bad_windows[out->n_bad_windows++];
        memset(w, 0, sizeof *w);
        w->start_s = (double)i * eng_world.sc->interval_s;
        w->end_s = interval_end(j);
        w->errors = total;
        w->causes = calloc((size_t)acc_state.n_causes, sizeof *w->causes);
        w->shares = calloc((size_t)acc_state.n_causes, sizeof *w->shares);
        char text[1024];
        size_t used = 0;
        text[0] = '\0';
        for (int c = 0; c < acc_state.n_causes; c++) {
            if (!by[c])
                continue;
            w->causes[w->n_causes] = strdup(cause_name(c));
            w->shares[w->n_causes] = (double)by[c] / (double)total;
            used += (size_t)snprintf(text + used, used < sizeof text ? sizeof text - used : 0,
                                     "%s%s %.0f%%", w->n_causes ? ", " : "", cause_name(c),
                                     100.0 * w->shares[w->n_causes]);
            w->n_causes++;
        }
        if (used >= sizeof text)
            text[sizeof text - 1] = '\0';
        eng_event(w->start_s, "slo_violation", eng_world.sc->name, "%.0f-%.0f s: %lu errors; %s",
                  w->start_s, w->end_s, total, w->n_causes ? text : "slow responses");
        free(by);
        i = j + 1;
    }
}

/* Sum over whole intervals [i0, i1] of a hypothesis's metric. */
static double judge(const sc_hypothesis *h, size_t i0, size_t i1, int *met, int *empty)
{
    unsigned long fin = 0, good = 0, slow = 0;
    int b = h->metric == SC_HYP_LATENCY_P99 ? bound_index(h->bound) : -1;
    for (size_t i = i0; i <= i1; i++) {
        fin += acc_state.fin[i];
        good += acc_state.good[i];
        if (b >= 0)
            slow += acc_state.slow[(size_t)b * eng_world.n_intervals + i];
    }
    *empty = fin == 0;
    double v;
    switch (h->metric) {
    case SC_HYP_AVAILABILITY:
        v = fin ? (double)good / (double)fin : 1;
        *met = v >= h->bound;
        return v;
    case SC_HYP_ERROR_RATE:
        v = fin ? 1 - (double)good / (double)fin : 0;
        *met = v <= h->bound;
        return v;
    default: /* share of completions slower than the bound: p99 <= bound iff <= 1% */
        v = good ? (double)slow / (double)good : 0;
        *met = v <= 0.01;
        return v;
    }
}

static void add_window(rp_hypothesis *rh, const sc_hypothesis *h, size_t i0, size_t i1)
{
    int met, empty;
    double v = judge(h, i0, i1, &met, &empty);
    if (empty)
        return;
    rh->windows = realloc(rh->windows, sizeof *rh->windows * (rh->n_windows + 1));
    rh->windows[rh->n_windows++] = (rp_window){ (double)i0 * eng_world.sc->interval_s, interval_end(i1), v, met };
    if (!met)
        rh->met = 0;
}

/* Intervals free of faults: not within [start, end + grace] of any fault. */
static int disturbed(size_t i, double grace_s)
{
    double a = (double)i * eng_world.sc->interval_s, b = interval_end(i);
    for (size_t k = 0; k < eng_world.out->n_faults; k++) {
        const rp_fault *f = &eng_world.out->faults[k];
        double end = isnan(f->end_s) ? INFINITY : f->end_s + grace_s;
        if (a < end && b > f->start_s)
            return 1;
    }
    return 0;
}

static void hypotheses(rp_results *out)
{
    const sc_scenario *sc = eng_world.sc;
    out->hypotheses_met = sc->n_hypotheses ? 1 : -1;
    if (!sc->n_hypotheses)
        return;
    size_t first = (size_t)ceil(sc->warmup_s / sc->interval_s - 1e-9);
    double max_offered = 0;
    for (size_t i = first; i < eng_world.n_intervals; i++)
        max_offered = fmax(max_offered, eng_world.offered[i]);
    out->hypotheses = calloc((size_t)sc->n_hypotheses, sizeof *out->hypotheses);
    out->n_hypotheses = (size_t)sc->n_hypotheses;
    for (int h = 0; h < sc->n_hypotheses; h++) {
        const sc_hypothesis *hy = &sc->hypotheses[h];
        rp_hypothesis *rh = &out->hypotheses[h];
        rh->text = strdup(hy->text);
        rh->met = 1;
        for (size_t i = first; i < eng_world.n_intervals;) {
            int in;
            if (hy->window == SC_WIN_RUN)
                in = 1;
            else if (hy->window == SC_WIN_PEAK)
                in = eng_world.offered[i] >= 0.5 * max_offered && max_offered > 0;
            else
                in = !disturbed(i, hy->grace_s);
            if (!in) {
                i++;
                continue;
            }
            size_t j = i;
            if (hy->window != SC_WIN_RUN) {
                while (j + 1 < eng_world.n_intervals &&
                       (hy->window == SC_WIN_PEAK ? eng_world.offered[j + 1] >= 0.5 * max_offered
                                                  : !disturbed(j + 1, hy->grace_s)))
                    j++;
            } else {
                j = eng_world.n_intervals - 1;
            }
            add_window(rh, hy, i, j);
            i = j + 1;
        }
        if (!rh->met)
            out->hypotheses_met = 0;
    }
}

void acc_finish(rp_results *out)
{
    const sc_scenario *sc = eng_world.sc;
    double target = sc->slo.availability;
    unsigned long total_fin = 0, total_bad = 0;
    for (size_t m = 0; m <= acc_state.n_minutes; m++) {
        total_fin += acc_state.min_good[m] + acc_state.min_bad[m];
        total_bad += acc_state.min_bad[m];
    }
    double allowed = target > 0 ? (1 - target) * (double)total_fin : NAN;
    out->error_budget_remaining = target > 0 && allowed > 0 ? 1 - (double)total_bad / allowed : NAN;
    out->minutes = calloc(acc_state.n_minutes, sizeof *out->minutes);
    out->n_minutes = acc_state.n_minutes;
    unsigned long cum_bad = 0;
    double need = target > 0 ? target : 0.999;
    for (size_t m = 0; m < acc_state.n_minutes; m++) {
        rp_minute *x = &out->minutes[m];
        x->t_s = sc->warmup_s + 60.0 * (double)m;
        x->good = acc_state.min_good[m] + (m + 1 == acc_state.n_minutes ? acc_state.min_good[acc_state.n_minutes] : 0);
        x->bad = acc_state.min_bad[m] + (m + 1 == acc_state.n_minutes ? acc_state.min_bad[acc_state.n_minutes] : 0);
        cum_bad += x->bad;
        unsigned long fin = x->good + x->bad;
        double ratio = fin ? (double)x->good / (double)fin : 1;
        x->slo_met = ratio >= need;
        out->downtime_minutes += !x->slo_met;
        x->budget_remaining = allowed > 0 ? 1 - (double)cum_bad / allowed : NAN;
        x->burn_rate = target > 0 && fin ? (1 - ratio) / (1 - target) : NAN;
    }
    double max_offered = 0;
    for (size_t i = 0; i < eng_world.n_intervals; i++)
        max_offered = fmax(max_offered, eng_world.offered[i]);
    unsigned long pg = 0, pf = 0;
    for (size_t i = 0; i < eng_world.n_intervals; i++)
        if (max_offered > 0 && eng_world.offered[i] >= 0.5 * max_offered) {
            pg += acc_state.good[i];
            pf += acc_state.fin[i];
        }
    out->availability_peak = pf ? (double)pg / (double)pf : 1;
    for (size_t i = 0; i < eng_world.n_intervals; i++)
        for (int c = 0; c < acc_state.n_causes; c++) {
            unsigned long e = acc_state.errs[i * (size_t)acc_state.n_causes + (size_t)c];
            if (c == sc->n_faults)
                out->errors_overload += e;
            else if (c == sc->n_faults + 1)
                out->errors_scaling_lag += e;
            else
                out->errors_faults += e;
        }
    unsigned long all_errs = out->errors_overload + out->errors_scaling_lag + out->errors_faults;
    for (size_t k = 0; k < out->n_faults; k++) {
        rp_fault *f = &out->faults[k];
        unsigned long e = f->failed + f->timed_out + f->rejected;
        f->error_share = all_errs ? (double)e / (double)all_errs : 0;
    }
    bad_windows(out);
    hypotheses(out);
}

void acc_free(void)
{
    free(acc_state.errs);
    free(acc_state.fin);
    free(acc_state.good);
    free(acc_state.slow);
    free(acc_state.min_good);
    free(acc_state.min_bad);
    free(acc_state.rec_of_fault);
    memset(&acc_state, 0, sizeof acc_state);
}
