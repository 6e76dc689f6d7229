/*
 * model.c - operations on the world's state shared by every layer: the one
 * simulation eng_world, request FIFOs, random streams and unit draws, time
 * accounting per interval, the balancer's view of a node, events.
 */
#include "model.h"
#include "serve.h"

#include <gsl/gsl_randist.h>
#include <gsl/gsl_sf_gamma.h>

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

eng_sim eng_world;

void eng_fifo_push(eng_fifo *f, eng_req *r)
{
    r->next = NULL;
    if (f->tail)
        f->tail->next = r;
    else
        f->head = r;
    f->tail = r;
    f->len++;
}

void eng_fifo_push_head(eng_fifo *f, eng_req *r)
{
    r->next = f->head;
    f->head = r;
    if (!f->tail)
        f->tail = r;
    f->len++;
}

eng_req *eng_fifo_pop(eng_fifo *f)
{
    eng_req *r = f->head;
    if (!r)
        return NULL;
    f->head = r->next;
    if (!f->head)
        f->tail = NULL;
    f->len--;
    return r;
}

/* Each family's first stream and how many it may use (model.h). */
static const struct {
    unsigned long base, span;
} STREAMS[ENG_N_STREAMS] = {
    [ENG_STREAM_ARRIVALS] = { 0, 1000000UL },
    [ENG_STREAM_LB] = { 1000000UL, 1000000UL },
    [ENG_STREAM_NODE] = { 2000000UL, (unsigned long)SC_MAX_NODE_SLOTS },
    [ENG_STREAM_FAULT] = { 3000000UL, 1000000UL },
    [ENG_STREAM_CACHE] = { 4000000UL, 1000000UL },
    [ENG_STREAM_NODE_START] = { 5000000UL, 1000000UL },
    [ENG_STREAM_TOKENS] = { 6000000UL, 1000000UL },
    [ENG_STREAM_FAILOVER] = { 7000000UL, 1000000UL },
    [ENG_STREAM_LLM_NOISE] = { 8000000000000UL, 1000000000000UL },
    [ENG_STREAM_RANDOM_CRASH] = { 9000000000000UL, 100000000000UL },
    [ENG_STREAM_L7] = { 9100000000000UL, 100000000000UL },
    [ENG_STREAM_L4] = { 9200000000000UL, 1 },
    [ENG_STREAM_PD_ROUTER] = { 9300000000000UL, 1000000UL },
    [ENG_STREAM_LLM_NOISE_SLOW] = { 9400000000000UL, 1000000000000UL },
};

unsigned long eng_stream(eng_stream_family f, unsigned long index)
{
    if (index >= STREAMS[f].span) { /* a bound the loader keeps: a bug if reached */
        fprintf(stderr, "fleetsim: random stream %lu of family %d is past its span %lu\n", index,
                (int)f, STREAMS[f].span);
        abort();
    }
    return STREAMS[f].base + index;
}

unsigned long eng_stream_span(eng_stream_family f)
{
    return STREAMS[f].span;
}

/* splitmix64 scrambles (seed, stream) into a well-spread seed for one
 * independent GSL generator per actor, so streams do not depend on the
 * order in which actors run. */
gsl_rng *eng_stream_rng(unsigned long seed, unsigned long stream)
{
    unsigned long long z = (unsigned long long)seed * 0x9E3779B97F4A7C15ULL + stream + 1;
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    z ^= z >> 31;
    gsl_rng *r = gsl_rng_alloc(gsl_rng_mt19937);
    gsl_rng_set(r, (unsigned long)(z & 0xffffffffUL) | 1UL);
    return r;
}

gsl_rng *eng_node_rng(eng_node *n)
{
    if (!n->rng)
        n->rng = eng_stream_rng(eng_world.sc->seed, n->rng_stream);
    return n->rng;
}

double eng_draw_unit(const sc_dist *d, gsl_rng *rng)
{
    switch (d->kind) {
    case SC_DIST_DETERMINISTIC:
        return 1.0;
    case SC_DIST_EXPONENTIAL:
        return gsl_ran_exponential(rng, 1.0);
    case SC_DIST_LOGNORMAL: {
        double s2 = log1p(d->cv * d->cv);
        return gsl_ran_lognormal(rng, -0.5 * s2, sqrt(s2));
    }
    case SC_DIST_GAMMA:
        return gsl_ran_gamma(rng, 1.0 / (d->cv * d->cv), d->cv * d->cv);
    case SC_DIST_EMPIRICAL:
        return d->n_samples ? d->samples[gsl_rng_uniform_int(rng, d->n_samples)] : 1.0;
    case SC_DIST_WEIBULL: /* scale 1/Gamma(1 + 1/k) gives mean 1 */
        return gsl_ran_weibull(rng, 1.0 / gsl_sf_gamma(1.0 + 1.0 / d->shape), d->shape);
    }
    return 1.0;
}

void eng_event(double t_s, const char *type, const char *subject, const char *fmt, ...)
{
    char detail[512];
    detail[0] = '\0';
    if (fmt) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(detail, sizeof detail, fmt, ap);
        va_end(ap);
    }
    /* event times to the nanosecond: SimGrid's clock carries float dust */
    rp_add_event(eng_world.out, round(t_s * 1e9) / 1e9, type, subject, fmt ? detail : NULL);
}

/* What the balancer believes of a node: in its server list and passing
 * health checks. A crashed node stays "up" until checks or the policy's
 * passive health notice. */
void eng_view_sync(eng_node *n)
{
    for (int k = 0; k < eng_world.n_l7; k++) {
        eng_lbi *b = &n->pool->lbi[k];
        lb_server_view *v = &b->servers[n->index];
        int up = n->health.registered && n->health.hc_up;
        if (v->up != up) {
            v->up = up;
            eng_lb_changed(n->pool, k, n->index);
        }
        if (b->healthy) { /* after its view or its node's state changed */
            unsigned char h = n->life.state != NODE_OFF && v->up && !v->down;
            b->n_healthy += (int)h - (int)b->healthy[n->index];
            b->healthy[n->index] = h;
        }
    }
}

/* Server j of balancer l7's view (a pool keeping failover's counts): its
 * LBI_* flags and the counts. */
static void lbi_sync(eng_pool *p, int l7, int j)
{
    eng_lbi *b = &p->lbi[l7];
    const lb_server_view *v = &b->servers[j];
    unsigned up = v->up && !v->down ? LBI_UP : 0u;
    unsigned f = up | (up && v->max_conns > 0 && v->active >= v->max_conns ? LBI_AT_MAX : 0u);
    unsigned old = b->sat[j];
    if (f == old)
        return;
    b->sat[j] = (unsigned char)f;
    b->n_up += !!(f & LBI_UP) - !!(old & LBI_UP);
    b->n_at_max += !!(f & LBI_AT_MAX) - !!(old & LBI_AT_MAX);
    if ((f ^ old) & LBI_UP)
        b->q_up += (f & LBI_UP ? 1 : -1) * (long)p->nodes[j].work.q_counted;
}

/* eng_lb_changed for a pool that keeps failover's counts (apart, so that
 * the others' path stays a jump to lb_changed) */
static __attribute__((noinline)) void lb_changed_counted(eng_pool *p, int l7, int j)
{
    eng_lbi *b = &p->lbi[l7];
    lbi_sync(p, l7, j);
    if (b->balancer)
        lb_changed(b->balancer, &b->view, j);
}

void eng_lb_changed(eng_pool *p, int l7, int j)
{
    eng_lbi *b = &p->lbi[l7];
    if (b->sat)
        lb_changed_counted(p, l7, j);
    else if (b->balancer)   /* none in a bookkeeping test's pool */
        lb_changed(b->balancer, &b->view, j);
}

void eng_lbi_recount(eng_pool *p)
{
    for (int k = 0; k < eng_world.n_l7; k++) {
        eng_lbi *b = &p->lbi[k];
        if (!b->sat)
            continue;
        b->n_up = b->n_at_max = 0;
        b->q_up = 0;
        for (int j = 0; j < p->n_hosts; j++) {
            b->sat[j] = 0;
            lbi_sync(p, k, j);
        }
    }
}

void eng_node_q_count(eng_node *n)
{
    int q = serve_queued(n), d = q - n->work.q_counted;
    if (d == 0)
        return;
    n->work.q_counted = q;
    for (int k = 0; k < eng_world.n_l7; k++) {
        eng_lbi *b = &n->pool->lbi[k];
        if (b->sat && (b->sat[n->index] & LBI_UP))
            b->q_up += d;
    }
}

/* The times eng_interval_of maps to interval i, [*lo, *hi]: from the
 * boundaries it means, moved ulp by ulp to where it changes (it is
 * monotone in t, and its rounding moves a boundary by a few ulps). */
static void interval_bounds(size_t i, double *lo, double *hi)
{
    double iv = eng_world.sc->interval_s, a = -INFINITY, b = INFINITY;
    if (i > 0) {
        a = ((double)i - 1e-9) * iv;
        while (eng_interval_of(a) >= i)
            a = nextafter(a, -INFINITY);
        while (eng_interval_of(a) < i)
            a = nextafter(a, INFINITY);
    }
    if (i < eng_world.n_intervals - 1) {
        b = ((double)i + 1 - 1e-9) * iv;
        while (eng_interval_of(b) <= i)
            b = nextafter(b, INFINITY);
        while (eng_interval_of(b) > i)
            b = nextafter(b, -INFINITY);
    }
    *lo = a;
    *hi = b;
}

/* Adds scale x the part of [t0, t1) in each interval to per[] and, when
 * not NULL, also[] (the last interval runs to the end of the run). An
 * LLM replica adds each step: the interval of the last call and the
 * times it spans are kept, so most calls need no division. */
static void add_per_interval(double *per, double *also, double t0, double t1, double scale)
{
    static const sc_scenario *c_sc; /* the run the cache is for */
    static size_t c_i;
    static double c_lo = 1, c_hi = 0;
    if (c_sc != eng_world.sc) {
        c_sc = eng_world.sc;
        c_lo = 1;
        c_hi = 0;
    }
    for (double a = t0; a < t1;) {
        if (!(a >= c_lo && a <= c_hi)) {
            c_i = eng_interval_of(a);
            interval_bounds(c_i, &c_lo, &c_hi);
        }
        size_t i = c_i;
        double b = (double)(i + 1) * eng_world.sc->interval_s; /* fmin(t1, b), without the call */
        double end = i == eng_world.n_intervals - 1 || t1 < b ? t1 : b;
        per[i] += (end - a) * scale;
        if (also)
            also[i] += (end - a) * scale;
        a = end;
    }
}

void eng_account_serving(eng_pool *p, const eng_node *n, double t0, double t1)
{
    add_per_interval(p->serving_per_interval, NULL, t0, t1, n->gpus);
}

void eng_account_busy(eng_pool *p, eng_node *n, double t0, double t1)
{
    n->work.busy_gpu_s += t1 - t0;
    add_per_interval(p->busy_per_interval, n->work.busy_series, t0, t1, 1);
}

/* A pool's hosts: max_replicas of its own shape, and for a rollout as many
 * again plus the surge of the new shape. */
int eng_pool_slots(const sc_pool *pc, int *n_old)
{
    int old = pc->max_replicas > pc->replicas ? pc->max_replicas : pc->replicas;
    if (n_old)
        *n_old = old;
    return pc->rollout.enabled ? old + old + pc->rollout.max_surge : old;
}


/* One held request (or job) r, in pool p's stage or in none (NULL). */
void eng_census_add(const eng_req *r, const eng_pool *p, unsigned long *requests,
                    unsigned long *per_pool)
{
    if (!r->job)
        ++*requests;
    if (p)
        per_pool[p->id]++;
}

/* Ready nodes (with include_starting, also those provisioning to warming):
 * counts kept as states change, for every state change asks for them. */
int eng_ready_count(const eng_pool *p, int include_starting)
{
    return p->n_ready + (include_starting ? p->n_starting : 0);
}

static int is_starting(eng_node_state s)
{
    return s >= NODE_PROVISIONING && s <= NODE_WARMING;
}

/* The same counts by walking the pool: the reference the kept ones match. */
int eng_ready_recount(const eng_pool *p, int include_starting)
{
    int c = 0;
    for (int j = 0; j < p->n_hosts; j++) {
        eng_node_state s = p->nodes[j].life.state;
        if (s == NODE_READY || (include_starting && is_starting(s)))
            c++;
    }
    return c;
}

int eng_pool_node_fault(const eng_pool *p, int *rec)
{
    *rec = -1;
    for (int j = 0; j < p->n_hosts; j++)
        if (p->nodes[j].fault.cause >= 0) {
            *rec = p->nodes[j].fault.fault_rec;
            return p->nodes[j].fault.cause;
        }
    return -1;
}

int eng_handoff_fault(const eng_node *src, const eng_node *dst, int *rec)
{
    *rec = -1;
    if (dst && dst->fault.cause >= 0) {
        *rec = dst->fault.fault_rec;
        return dst->fault.cause;
    }
    if (src->fault.cause >= 0) {
        *rec = src->fault.fault_rec;
        return src->fault.cause;
    }
    if (!dst)
        return src->pool->cfg->decode_pool >= 0
                   ? eng_pool_node_fault(&eng_world.pools[src->pool->cfg->decode_pool], rec)
                   : -1;
    const eng_pool *cut = dst->pool->links_down > 0 ? dst->pool
                          : src->pool->links_down > 0 ? src->pool
                                                      : NULL;
    if (!cut)
        return -1;
    *rec = cut->links_rec;
    return cut->links_cause;
}

void eng_node_set_pstate(eng_node *n, int pstate)
{
    sg_host_set_pstate(n->host, (unsigned long)pstate);
    n->pstate = pstate;
    n->speed_flops = sg_host_get_speed(n->host);
}

void eng_pool_recount(eng_pool *p)
{
    p->n_ready = eng_ready_recount(p, 0);
    p->n_starting = eng_ready_recount(p, 1) - p->n_ready;
    p->n_on = p->n_draining = 0;
    for (int j = 0; j < p->n_hosts; j++) {
        p->n_on += p->nodes[j].life.state != NODE_OFF;
        p->n_draining += p->nodes[j].life.state == NODE_DRAINING;
    }
}

eng_hooks eng_hook;

void eng_hooks_overflow(const char *name)
{
    fprintf(stderr, "fleetsim: internal error: more than %d subscribers to hook %s\n",
            ENG_HOOK_MAX, name);
    abort();
}

void eng_hooks_clear(void)
{
    memset(&eng_hook, 0, sizeof eng_hook);
}

const char *const eng_state_names[] = { "off",   "provisioning", "starting", "loading",
                                        "warming", "ready",      "draining", "failed" };

/* A node's busy series, made when it first leaves OFF: a pool of many
 * slots that uses few keeps few. The intervals closed before lay OFF, no
 * cell in the heatmap (NAN), as the sampler would have marked them. */
static void node_series(eng_node *n)
{
    if (!n->pool->node_series || n->work.busy_series)
        return;
    n->work.busy_series = calloc(eng_world.n_intervals, sizeof *n->work.busy_series);
    for (size_t i = 0; i < eng_world.n_closed && i < eng_world.n_intervals; i++)
        n->work.busy_series[i] = NAN;
}

/* The node state machine's bookkeeping: a node entering state st at now
 * closes and opens its ready, serving and up time, resets its health and
 * exporter counters as a new host would, tells the balancers, records the
 * event and the pool's ready extremes. 1 if the state changed, 0 if it was
 * already st. Who may move a node where is control/lifecycle.c's business. */
int eng_node_set_state(eng_node *n, eng_node_state st, double now)
{
    eng_node_state old = n->life.state;
    if (old == st)
        return 0;
    if (eng_hook.catch_up) /* events due by now may move the node first */
        eng_hook.catch_up(now);
    old = n->life.state;
    if (old == st)
        return 0;
    if (old == NODE_OFF)
        node_series(n);
    if (old == NODE_READY && n->life.ready_since_s >= 0) {
        n->life.ready_total_s += now - n->life.ready_since_s;
        n->life.ready_since_s = -1;
    }
    if (st == NODE_READY)
        n->life.ready_since_s = now;
    /* serving: ready or draining, the states in which it runs batches */
    int was = old == NODE_READY || old == NODE_DRAINING, is = st == NODE_READY || st == NODE_DRAINING;
    if (was && !is && n->life.serving_since_s >= 0) {
        eng_account_serving(n->pool, n, n->life.serving_since_s, now);
        n->life.serving_since_s = -1;
    } else if (!was && is) {
        n->life.serving_since_s = now;
    }
    if (old == NODE_OFF)
        n->life.up_since_s = now;
    if (st == NODE_OFF && n->life.up_since_s >= 0) {
        n->life.up_total_s += now - n->life.up_since_s;
        n->life.up_since_s = -1;
    }
    if (st == NODE_STARTING && old != NODE_STARTING) {
        n->life.start_s = now;
        n->life.ready_change_s = now;
    }
    if (st == NODE_READY || old == NODE_READY)
        n->life.ready_change_s = now;
    if (st == NODE_OFF) {
        n->life.start_s = NAN;
        n->life.ready_change_s = NAN;
        n->sample.m_has = 0;
    }
    /* the host goes down: its exporters' counters start again from 0 */
    if (st == NODE_OFF || st == NODE_FAILED)
        n->work.net_rx_bytes = n->work.net_tx_bytes = 0;
    n->life.state = st;
    n->pool->n_ready += (st == NODE_READY) - (old == NODE_READY);
    n->pool->n_on += (st != NODE_OFF) - (old != NODE_OFF);
    n->pool->n_draining += (st == NODE_DRAINING) - (old == NODE_DRAINING);
    n->pool->n_starting += is_starting(st) - is_starting(old);
    n->health.registered = st == NODE_READY;
    if (st == NODE_READY) { /* a new server starts healthy, as nginx Plus does */
        n->health.hc_up = 1;
        n->health.hc_fails = n->health.hc_oks = 0;
    }
    eng_view_sync(n);
    eng_event(now, "node_state", n->name, "%s -> %s", eng_state_names[old], eng_state_names[st]);
    eng_pool *p = n->pool;
    int ready = eng_ready_count(p, 0);
    if (ready < p->replicas_min)
        p->replicas_min = ready;
    if (ready > p->replicas_max)
        p->replicas_max = ready;
    return 1;
}
