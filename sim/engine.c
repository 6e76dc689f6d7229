/*
 * engine.c - the simulation core: requests, routing, traffic, the time
 * series and the results.
 *
 * Platform: one SimGrid host per node the pool may ever use (cores = GPUs,
 * 1 Gflop/s per core at full speed, lower pstates for throttling), one host
 * for the balancer, one link per node to the balancer, energy plugin
 * wattages per node type. Node states, scaling and crashes are in
 * lifecycle.c; injected faults in chaos.c; moving a request from one
 * pipeline stage to the next in pipeline.c; the L4 tier in tiers.c; how a
 * node serves what it accepted in its server model (serve/serve.h: the
 * batch server in serve/batch.c).
 *
 * Actors: one traffic generator per class (sleeps until each arrival, then
 * routes the request synchronously through its first stage's balancer, or
 * its L7 balancer's view of it); the server model's actors on each ready
 * node; one sampler that closes each time-series interval.
 * Requests come from a free list and end in exactly one bucket (completed,
 * rejected, failed, timed out) or are in flight at the end; the caller checks
 * that sum against generated.
 *
 * Known simplifications, written where they live:
 * - network time is charged as a fixed delay per request from the route
 *   (latency both ways + size / bandwidth); links are not contended;
 * - a request whose client deadline passed while it waited is dropped when a
 *   worker reaches it (like Triton's queue policy timeout) and counted as
 *   timed out at its deadline; one that runs past its deadline still uses the
 *   GPU and is counted as timed out when its batch ends.
 */
#include "engine_internal.h"
#include "serve.h"

#include <simgrid/engine.h>
#include <simgrid/exec.h>
#include <simgrid/plugins/energy.h>

#include <gsl/gsl_randist.h>
#include <gsl/gsl_sf_gamma.h>

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

eng_sim S;

/* ---------- helpers ---------- */

static double mono_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static double wall_now(void)
{
    return mono_s() - S.wall0;
}

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

static size_t interval_of(double t)
{
    /* SimGrid's clock lands a hair before round times (29.999999999999957
     * for a sleep until 30): such an instant belongs to the next interval */
    double i = floor(t / S.sc->interval_s + 1e-9);
    if (i < 0)
        return 0;
    if (i >= (double)S.n_intervals)
        return S.n_intervals - 1;
    return (size_t)i;
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
    rp_add_event(S.out, round(t_s * 1e9) / 1e9, type, subject, fmt ? detail : NULL);
}

/* ---------- request outcomes ---------- */

static eng_req *req_new(eng_class *tc, double now)
{
    if (!S.free_list) { /* requests come in blocks, all freed at teardown */
        enum { BLOCK = 4096 };
        eng_req *b = malloc(sizeof *b * BLOCK);
        S.blocks = realloc(S.blocks, sizeof *S.blocks * (S.n_blocks + 1));
        S.blocks[S.n_blocks++] = b;
        for (int i = BLOCK - 1; i >= 0; i--) {
            b[i].next = S.free_list;
            S.free_list = &b[i];
        }
    }
    eng_req *r = S.free_list;
    S.free_list = r->next;
    r->arrival_s = now;
    r->deadline_s = tc->pool->cfg->timeout_s > 0 ? now + tc->pool->cfg->timeout_s : INFINITY;
    r->lbq_deadline_s = INFINITY;
    r->net_s = tc->net_s;
    r->sent_s = now;
    r->stage_s = now;
    r->net_prev_s = 0;
    r->stage = 0;
    r->in_pool = 1;
    r->job = 0;
    r->client_tries = 0;
    r->work = tc->cfg->work;
    r->id = S.next_id++;
    r->tclass = tc->id;
    r->node = -1;
    r->attempts = 0;
    r->n_tried = 0;
    r->l4_refused = 0;
    r->in_tokens = r->out_tokens = 0;
    r->hashes = NULL;
    r->n_hashes = r->hash_block_tokens = 0;
    S.live++;
    return r;
}

static int measured(const eng_req *r)
{
    return r->arrival_s >= S.sc->warmup_s;
}

static void req_free(eng_req *r)
{
    r->next = S.free_list;
    S.free_list = r;
}

/* Every request leaves through here exactly once. One whose L7 balancer
 * went down after it was sent and by t_s ends at that moment as a 502,
 * whatever ended it later (its client saw the connection reset; tiers.c). */
void eng_req_end(eng_pool *p, eng_req *r, int bucket, double t_s)
{
    double cut = tier_cut(r, t_s);
    if (cut <= t_s) {
        tier_count_cut(r);
        bucket = B_FAILED;
        t_s = cut;
    }
    if (r->job) { /* its client was answered at a queue: work after it */
        eng_pool_leave(p, r, bucket, t_s);
        pipe_job_end(r, bucket, t_s);
        req_free(r);
        return;
    }
    if (bucket != B_COMPLETED && chaos_client_retry(p, r, t_s)) {
        tier_leave(r, t_s);
        if (r->stage > 0) { /* it will start over at the first stage */
            eng_pool_leave(p, r, bucket, t_s);
            r->stage = -1;
        }
        chaos_clients_wake(); /* last: the resend may run at once */
        return; /* not the end: its client sends it again */
    }
    eng_pool_leave(p, r, bucket, t_s);
    eng_req_answered(p, r, bucket, t_s);
    req_free(r);
}

void eng_req_answered(eng_pool *p, eng_req *r, int bucket, double t_s)
{
    unsigned long *slot_all[4] = { &S.all.completed, &S.all.rejected, &S.all.failed, &S.all.timed_out };
    unsigned long *slot_m[4] = { &S.measured.completed, &S.measured.rejected, &S.measured.failed,
                                 &S.measured.timed_out };
    tier_leave(r, t_s);
    ++*slot_all[bucket];
    obs_request_end(p, r, bucket, t_s - r->arrival_s + r->net_s);
    size_t iv = interval_of(t_s);
    S.done[bucket][iv]++;
    acc_request_end(p, r, bucket, t_s, iv, t_s - r->arrival_s + r->net_s);
    sim_hist *hs[3] = { S.interval_latency, NULL, NULL };
    int nh = 1;
    if (measured(r)) {
        eng_class *c = &S.classes[r->tclass];
        unsigned long *slot_c[4] = { &c->measured.completed, &c->measured.rejected,
                                     &c->measured.failed, &c->measured.timed_out };
        ++*slot_m[bucket];
        ++*slot_c[bucket];
        hs[nh++] = S.latency;
        hs[nh++] = c->latency;
    }
    if (bucket == B_COMPLETED)
        sim_hist_add_many(hs, nh, t_s - r->arrival_s + r->net_s);
    S.live--;
}

void eng_pool_enter(eng_pool *p, eng_req *r, double now, int in_pool)
{
    p->counts.generated++;
    p->arrivals++;
    r->in_pool = in_pool;
    if (in_pool)
        eng_pool_inflight(p, now, +1);
}

void eng_pool_leave(eng_pool *p, eng_req *r, int bucket, double t_s)
{
    unsigned long *slot_p[4] = { &p->counts.completed, &p->counts.rejected, &p->counts.failed,
                                 &p->counts.timed_out };
    ++*slot_p[bucket];
    if (r->in_pool)
        eng_pool_inflight(p, t_s > p->conc_t ? t_s : p->conc_t, -1);
    r->in_pool = 0;
}

/* ---------- balancer and node queues ---------- */

/* What the balancer believes of a node: in its server list and passing
 * health checks. A crashed node stays "up" until checks or the policy's
 * passive health notice. */
void eng_view_sync(eng_node *n)
{
    for (int k = 0; k < S.n_l7; k++)
        n->pool->lbi[k].servers[n->index].up = n->registered && n->hc_up;
}

static void node_accept(eng_pool *p, eng_node *n, eng_req *r)
{
    r->node = n->index;
    n->accepted++;
    n->net_rx_bytes += S.classes[r->tclass].cfg->bytes_in;
    p->lbi[r->l7].servers[n->index].active++;
    eng_fifo_push(&n->q, r);
    serve_accepted(n);
}

/* proxy_next_upstream: `on` says whether it lists what went wrong (error,
 * http_503); then tries and timeout decide. */
static int retry_allowed(const eng_pool *p, const eng_req *r, double now, int on)
{
    const sc_lb *lbc = &S.sc->lb;
    if (!on)
        return 0;
    int tries = lbc->retry_tries > 0 ? lbc->retry_tries : p->n_hosts;
    if (r->attempts >= tries || r->n_tried >= ENG_MAX_TRIED)
        return 0;
    if (lbc->retry_timeout_s > 0 && now - r->stage_s >= lbc->retry_timeout_s)
        return 0;
    return now < r->deadline_s;
}

void eng_attempt_failed(eng_pool *p, eng_req *r, double now)
{
    S.attempt_errors++;
    if (r->job && pipe_requeue(p, r, now))
        return;
    if (retry_allowed(p, r, now, S.sc->lb.retry_on_error)) {
        eng_route(p, r, now);
        return;
    }
    eng_req_end(p, r, B_FAILED, now);
}

/* Every request the balancer sent to a server is reported back once. A
 * result that made outlier detection eject the server is an event; with
 * several L7 balancers (each its own detector) it names the balancer. */
void eng_lb_done(eng_pool *p, int l7, int server, double latency_s, lb_result result,
                 double now)
{
    eng_lbi *b = &p->lbi[l7];
    unsigned long ejections = result == LB_OK ? 0 : lb_outlier_ejections(b->balancer);
    b->view.now_s = now;
    lb_on_done(b->balancer, &b->view, server, latency_s, result);
    lb_outlier_host h;
    if (result != LB_OK && lb_outlier_ejections(b->balancer) != ejections &&
        lb_outlier_state(b->balancer, server, now, &h) == 0) {
        char who[128] = "";
        if (S.sc->lb.n_l7 > 0)
            snprintf(who, sizeof who, " (balancer %s)", S.sc->lb.l7[l7].name);
        eng_event(now, "outlier_ejection", p->nodes[server].name,
                  "%d consecutive 5xx: ejection %d, out until %.9g s%s",
                  S.sc->lb.params.outlier.consecutive_5xx, h.num_ejections, h.until_s, who);
    }
}

void eng_lb_release(eng_pool *p, const eng_req *r, int s, double latency_s, lb_result result,
                    double now)
{
    p->lbi[r->l7].servers[s].active--;
    eng_lb_done(p, r->l7, s, latency_s, result, now);
}

/* lb_pick with the servers this request already tried hidden. */
static int pick(eng_pool *p, eng_req *r, double now)
{
    eng_lbi *b = &p->lbi[r->l7];
    int saved[ENG_MAX_TRIED], hidden[ENG_MAX_TRIED], n_hidden = 0;
    for (int i = 0; i < r->n_tried; i++) {
        saved[i] = b->servers[r->tried[i]].up;
        if (saved[i])
            hidden[n_hidden++] = r->tried[i];
        b->servers[r->tried[i]].up = 0;
    }
    lb_request lr = { .id = r->id, .traffic_class = r->tclass, .arrival_s = r->stage_s,
                      .key = r->id, .hidden = hidden, .n_hidden = n_hidden,
                      .input_tokens = r->in_tokens, .output_tokens = r->out_tokens,
                      .hashes = r->hashes, .n_hashes = r->n_hashes,
                      .hash_block_tokens = r->hash_block_tokens };
    b->view.now_s = now;
    int s = lb_pick(b->balancer, &b->view, &lr);
    for (int i = r->n_tried - 1; i >= 0; i--)
        b->servers[r->tried[i]].up = saved[i];
    return s;
}

/* Server s answered r's attempt with 503 at once: its queue is full. The
 * balancer hears of it as of any response, after this pool's round trip.
 * nginx passes a 503 on to the client unless proxy_next_upstream lists
 * http_503 (retries.on); then the attempt failed (max_fails, effective
 * weight) and goes to the next server while tries are left; when none are,
 * the 503 is passed on and the peer still counts as failed
 * (src/http/ngx_http_upstream.c, ngx_http_upstream_test_next: "if we were
 * expected to switch to the next server, but were not able to do so due to
 * additional restrictions, remember that the peer failed"). Envoy's outlier
 * detection counts it either way (lb_result in policies/lb.h). Requests are
 * taken to be idempotent, as for connection errors: nginx would retry a
 * POST that reached the server only with non_idempotent. */
static void answered_503(eng_pool *p, eng_req *r, int s, double now)
{
    int listed = S.sc->lb.retry_on_503;
    eng_lb_done(p, r->l7, s, now - r->stage_s + r->net_s - r->net_prev_s,
                listed ? LB_ERROR : LB_HTTP_5XX, now);
    if (!r->job && retry_allowed(p, r, now, listed)) { /* a job's error answer loses it */
        eng_route(p, r, now);
        return;
    }
    eng_req_end(p, r, B_REJECTED, now);
}

/* Sends one attempt of r to server s. */
static void send_to(eng_pool *p, eng_req *r, int s, double now)
{
    eng_node *n = &p->nodes[s];
    r->attempts++;
    S.attempts++;
    if (r->n_tried < ENG_MAX_TRIED)
        r->tried[r->n_tried++] = s;
    /* connection-level errors: the node is gone, unreachable, or flaky */
    if (n->state != NODE_READY || p->partitioned ||
        (p->error_prob > 0 && gsl_rng_uniform(p->fault_rng) < p->error_prob)) {
        eng_lb_done(p, r->l7, s, 0, LB_ERROR, now);
        eng_attempt_failed(p, r, now);
        return;
    }
    if (serve_queued(n) >= p->cfg->queue_capacity) {
        answered_503(p, r, s, now);
        return;
    }
    node_accept(p, n, r);
}

/* Network time is fixed when an attempt is routed: the stages before, plus
 * this pool's round trip; a bandwidth cut scales the size / bandwidth part. */
static inline void set_net(eng_pool *p, eng_req *r)
{
    const eng_class *tc = &S.classes[r->tclass];
    r->net_s = r->net_prev_s +
               (p == tc->pool && p->bw_factor == 1.0
                    ? tc->net_s
                    : 2 * p->route_latency_s + tc->bytes / (p->route_bw_Bps * p->bw_factor)) +
               2 * p->extra_latency_s;
}

int eng_offer(eng_pool *p, eng_req *r, double now)
{
    /* The broker delivers only to consumers it is connected to: none
     * across a partition, none to a node that crashed (whatever the
     * balancer's view still says until health checks notice). Otherwise
     * each message of the backlog would fail there in turn, at once. */
    if (p->partitioned)
        return -1;
    int s = pick(p, r, now);
    while (s >= 0 && p->nodes[s].state != NODE_READY && r->n_tried < ENG_MAX_TRIED) {
        r->tried[r->n_tried++] = s; /* hidden from the next pick */
        s = pick(p, r, now);
    }
    r->n_tried = 0;
    if (s < 0 || p->nodes[s].state != NODE_READY)
        return -1;
    set_net(p, r);
    send_to(p, r, s, now);
    return 0;
}

/* Routes r now or queues it at the balancer; ends it when neither works. */
void eng_route(eng_pool *p, eng_req *r, double now)
{
    if (tier_cut(r, now) <= now) { /* a later stage, after its L7 went down */
        eng_req_end(p, r, B_FAILED, now);
        return;
    }
    if (p->lb_down) {
        eng_req_end(p, r, B_FAILED, now);
        return;
    }
    set_net(p, r);
    int s = pick(p, r, now);
    if (s >= 0) {
        send_to(p, r, s, now);
        return;
    }
    if (s == LB_NO_UPSTREAM && scale_buffer(p, now)) { /* cold start: wait */
        if (p->lbq.len < p->cfg->queue_capacity) {
            r->lbq_deadline_s = INFINITY;
            eng_fifo_push(&p->lbq, r);
        } else {
            eng_req_end(p, r, B_REJECTED, now);
        }
        return;
    }
    if (s == LB_NO_UPSTREAM) { /* nginx: "no live upstreams" -> 502 */
        eng_req_end(p, r, B_FAILED, now);
        return;
    }
    if (p->lbq.len < p->lbq_capacity) {
        r->lbq_deadline_s = p->lbq_timeout_s > 0 ? now + p->lbq_timeout_s : INFINITY;
        eng_fifo_push(&p->lbq, r);
        return;
    }
    eng_req_end(p, r, B_REJECTED, now);
}

/* A server freed a slot: move requests waiting at the balancer. */
void eng_drain_balancer_queue(eng_pool *p, double now)
{
    if (S.queues)
        pipe_deliver(p, now);
    while (p->lbq.len > 0) {
        eng_req *r = p->lbq.head;
        double gone = fmin(r->deadline_s, r->lbq_deadline_s), cut = tier_cut(r, now);
        if (cut <= now && cut <= gone) { /* its L7 balancer, which held it, went down */
            eng_fifo_pop(&p->lbq);
            eng_req_end(p, r, B_FAILED, cut);
            continue;
        }
        if (gone <= now) {
            eng_fifo_pop(&p->lbq);
            eng_req_end(p, r, B_TIMED_OUT, gone);
            continue;
        }
        int s = pick(p, r, now);
        if (s == LB_BUSY || (s == LB_NO_UPSTREAM && p->scaler && life_count(p, 0) == 0))
            return; /* busy, or cold-starting: keep waiting */
        eng_fifo_pop(&p->lbq);
        if (s == LB_NO_UPSTREAM)
            eng_req_end(p, r, B_FAILED, now);
        else
            send_to(p, r, s, now);
    }
}

/* ---------- GPU workers ---------- */

/* The times interval_of maps to interval i, [*lo, *hi]: from the
 * boundaries it means, moved ulp by ulp to where it changes (it is
 * monotone in t, and its rounding moves a boundary by a few ulps). */
static void interval_bounds(size_t i, double *lo, double *hi)
{
    double iv = S.sc->interval_s, a = -INFINITY, b = INFINITY;
    if (i > 0) {
        a = ((double)i - 1e-9) * iv;
        while (interval_of(a) >= i)
            a = nextafter(a, -INFINITY);
        while (interval_of(a) < i)
            a = nextafter(a, INFINITY);
    }
    if (i < S.n_intervals - 1) {
        b = ((double)i + 1 - 1e-9) * iv;
        while (interval_of(b) <= i)
            b = nextafter(b, INFINITY);
        while (interval_of(b) > i)
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
    if (c_sc != S.sc) {
        c_sc = S.sc;
        c_lo = 1;
        c_hi = 0;
    }
    for (double a = t0; a < t1;) {
        if (!(a >= c_lo && a <= c_hi)) {
            c_i = interval_of(a);
            interval_bounds(c_i, &c_lo, &c_hi);
        }
        size_t i = c_i;
        double b = (double)(i + 1) * S.sc->interval_s; /* fmin(t1, b), without the call */
        double end = i == S.n_intervals - 1 || t1 < b ? t1 : b;
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
    n->busy_gpu_s += t1 - t0;
    add_per_interval(p->busy_per_interval, n->busy_series, t0, t1, 1);
}

/* Server n answered r at t1 (its work is done): the response goes back to
 * the client unless the client gave up first (504) or its L7 balancer, which
 * held the connection, went down before (502); else on to r's next stage, or
 * completed. */
void eng_req_served(eng_pool *p, eng_node *n, eng_req *r, double t1)
{
    double lat = t1 - r->sent_s + r->net_s;
    int ok = r->sent_s + lat <= r->deadline_s;
    /* its L7 balancer went down while the server had it, before
     * the client gave up: the answer goes nowhere */
    double cut = tier_cut(r, t1);
    int was_cut = cut <= t1 && (ok || cut <= r->deadline_s);
    if (ok && !was_cut) /* its client is gone otherwise: no response is written */
        n->net_tx_bytes += S.classes[r->tclass].cfg->bytes_out;
    eng_lb_release(p, r, n->index, t1 - r->stage_s + r->net_s - r->net_prev_s, LB_OK, t1);
    if (was_cut)
        eng_req_end(p, r, B_FAILED, cut);
    else if (!ok)
        eng_req_end(p, r, B_TIMED_OUT, r->deadline_s);
    else if (r->stage + 1 < S.classes[r->tclass].pipe->n_stages)
        pipe_stage_done(p, r, t1);
    else
        eng_req_end(p, r, B_COMPLETED, t1);
}

/* ---------- traffic ---------- */

/* A client's connection (a new request or a resend) reaches the front end:
 * the L4 balancer, if any, then the first stage's balancer. */
static void front_door(eng_class *tc, eng_req *r, double now)
{
    chaos_on_arrival(tc->pool, now);
    if (tier_enter(r, now) == 0)
        eng_route(tc->pool, r, now);
    else /* no L7 balancer took the connection: 502 */
        eng_req_end(tc->pool, r, B_FAILED, now);
}

/* An LLM request's prompt and answer: the trace's row i, or drawn. */
static void set_tokens(eng_class *tc, eng_req *r, size_t i)
{
    const sc_traffic *t = tc->cfg;
    if (t->tokens_trace) {
        const tok_request *q = &t->tokens_trace->req[t->trace_row ? t->trace_row[i] : i];
        r->in_tokens = q->input_tokens;
        r->out_tokens = q->output_tokens;
        r->hashes = q->hashes;
        r->n_hashes = q->n_hashes;
        r->hash_block_tokens = t->tokens_trace->hash_block_tokens;
        return;
    }
    r->in_tokens = tok_draw(&t->in_tokens, tc->tok_rng);
    r->out_tokens = tok_draw(&t->out_tokens, tc->tok_rng);
}

static void traffic_source(int argc, char *argv[])
{
    (void)argc;
    (void)argv;
    eng_class *tc = sg_actor_self_get_data();
    const sc_traffic *t = tc->cfg;
    double end = S.sc->duration_s;
    size_t next_trace = 0;
    double op = 0; /* operational time: integral of the rate */

    for (;;) {
        double at;
        if (t->process == SC_ARR_TRACE) {
            if (next_trace >= t->n_trace)
                return;
            at = t->trace_s[next_trace++];
        } else {
            double step = 1.0;
            if (t->process == SC_ARR_POISSON)
                step = gsl_ran_exponential(tc->rng, 1.0);
            else if (t->process == SC_ARR_GAMMA)
                step = gsl_ran_gamma(tc->rng, 1.0 / (t->cv * t->cv), t->cv * t->cv);
            op += step;
            at = sim_rate_inverse(tc->rate, op);
        }
        if (!(at < end))
            return;
        if (at > simgrid_get_clock())
            sg_actor_sleep_until(at);
        double now = simgrid_get_clock();
        eng_req *r = req_new(tc, now);
        if (t->has_tokens)
            set_tokens(tc, r, next_trace - 1);
        S.all.generated++;
        if (measured(r)) {
            S.measured.generated++;
            tc->measured.generated++;
        }
        S.offered[interval_of(now)] += 1;
        eng_pool_enter(tc->pool, r, now, 1);
        front_door(tc, r, now);
    }
}

/* A client retry: the same request, a new attempt with its own deadline;
 * offered load (timeseries offered_qps) counts it, as the balancer does. */
void eng_resend(eng_req *r, double now)
{
    eng_class *tc = &S.classes[r->tclass];
    r->sent_s = now;
    r->stage_s = now;
    r->net_prev_s = 0;
    r->deadline_s = tc->pool->cfg->timeout_s > 0 ? now + tc->pool->cfg->timeout_s : INFINITY;
    r->lbq_deadline_s = INFINITY;
    r->node = -1;
    r->attempts = 0;
    r->n_tried = 0;
    S.offered[interval_of(now)] += 1;
    if (r->stage != 0) { /* it left a later stage: back in the first pool */
        r->stage = 0;
        eng_pool_enter(tc->pool, r, now, 1);
    } else {
        tc->pool->arrivals++;
    }
    front_door(tc, r, now);
}

/* ---------- time series ---------- */

static void close_interval(size_t i)
{
    rp_sample *s = &S.out->samples[i];
    double len = fmin(S.sc->interval_s, S.sc->duration_s - (double)i * S.sc->interval_s);
    s->t_s = (double)i * S.sc->interval_s;
    s->offered_qps = len > 0 ? S.offered[i] / len : 0;
    s->p50_s = sim_hist_quantile(S.interval_latency, 0.5);
    s->p99_s = sim_hist_quantile(S.interval_latency, 0.99);
    sim_hist_reset(S.interval_latency);
    for (int k = 0; k < S.sc->n_pools; k++) {
        eng_pool *p = &S.pools[k];
        int depth = p->lbq.len;
        for (int j = 0; j < p->n_hosts; j++)
            depth += serve_queued(&p->nodes[j]);
        s->pools[k].queue_depth = depth;
        serve_close_interval(p, i);
        s->pools[k].replicas = life_count(p, 0);
        s->pools[k].starting = life_count(p, 1) - s->pools[k].replicas;
        for (int j = 0; j < p->n_hosts; j++) {
            eng_node *n = &p->nodes[j];
            s->pools[k].draining += n->state == NODE_DRAINING;
            if (n->busy_series && n->state == NODE_OFF && n->busy_series[i] == 0)
                n->busy_series[i] = NAN; /* the node did not exist */
        }
    }
}

static void progress(double now)
{
    double w = wall_now();
    if (w - S.last_progress_wall < 0.1 && now < S.sc->duration_s)
        return;
    S.last_progress_wall = w;
    double frac = now / S.sc->duration_s;
    int width = 30, filled = (int)(frac * width + 0.5);
    char bar[64];
    for (int i = 0; i < width; i++)
        bar[i] = i < filled ? '#' : '.';
    bar[width] = '\0';
    fprintf(stderr, "\r[%s] %5.1f%%  sim %.0fs  %.0f req/s (wall)  ", bar, 100 * frac, now,
            w > 0 ? (double)S.all.generated / w : 0);
    if (now >= S.sc->duration_s)
        fputc('\n', stderr);
}

static void sampler(int argc, char *argv[])
{
    (void)argc;
    (void)argv;
    for (size_t i = 0; i < S.n_intervals; i++) {
        double end = fmin((double)(i + 1) * S.sc->interval_s, S.sc->duration_s);
        sg_actor_sleep_until(end);
        close_interval(i);
        pipe_close_interval(i);
        if (S.progress)
            progress(end);
    }
}

/* ---------- platform ---------- */

/* A pool's hosts: max_replicas of its own shape, and for a rollout as many
 * again plus the surge of the new shape. */
int eng_pool_slots(const sc_pool *pc, int *n_old)
{
    int old = pc->max_replicas > pc->replicas ? pc->max_replicas : pc->replicas;
    if (n_old)
        *n_old = old;
    return pc->rollout.enabled ? old + old + pc->rollout.max_surge : old;
}


/* Names from the scenario go into XML attributes: escape them. */
static void xml_attr(FILE *f, const char *s)
{
    for (; *s; s++) {
        switch (*s) {
        case '<': fputs("&lt;", f); break;
        case '>': fputs("&gt;", f); break;
        case '&': fputs("&amp;", f); break;
        case '"': fputs("&quot;", f); break;
        case '\'': fputs("&apos;", f); break;
        default: fputc(*s, f);
        }
    }
}

static int write_platform(const char *path)
{
    FILE *f = fopen(path, "w");
    if (!f)
        return -1;
    fprintf(f, "<?xml version='1.0'?>\n"
               "<!DOCTYPE platform SYSTEM \"https://simgrid.org/simgrid.dtd\">\n"
               "<platform version=\"4.1\">\n<zone id=\"fleet\" routing=\"Full\">\n"
               "  <host id=\"balancer\" speed=\"1Gf\" core=\"1\">\n"
               "    <prop id=\"wattage_per_state\" value=\"0.0:0.0:0.0\"/>\n"
               "    <prop id=\"wattage_off\" value=\"0\"/>\n  </host>\n");
    for (int k = 0; k < S.sc->n_pools; k++) {
        const sc_pool *pc = &S.sc->pools[k];
        int n_old;
        int slots = eng_pool_slots(pc, &n_old);
        for (int j = 0; j < slots; j++) {
            int g = j < n_old ? pc->gpus_per_node : pc->rollout.gpus_per_node;
            const sc_power *pw = j < n_old ? &pc->power : &pc->rollout.power;
            /* pstate i runs at (1 - i/ENG_PSTATES) of full speed; a throttled
             * GPU draws proportionally less above idle */
            fputs("  <host id=\"", f);
            xml_attr(f, pc->name);
            fprintf(f, "/%d\" speed=\"", j);
            for (int i = 0; i < ENG_PSTATES; i++)
                fprintf(f, "%s%.6gf", i ? "," : "", ENG_FLOPS_PER_S * (1.0 - (double)i / ENG_PSTATES));
            /* chaos: speed_profile. SimGrid 3.32 looks a profile up in its
             * path list (the platform file's folder, /tmp, among them) and
             * does not open an absolute name as is: give the file's name */
            const char *speed_file = chaos_speed_file(k, j);
            if (speed_file) {
                fputs("\" speed_file=\"", f);
                xml_attr(f, strrchr(speed_file, '/') + 1);
            }
            fprintf(f, "\" core=\"%d\" pstate=\"0\">\n    <prop id=\"wattage_per_state\" value=\"", g);
            for (int i = 0; i < ENG_PSTATES; i++) {
                double f_speed = 1.0 - (double)i / ENG_PSTATES;
                double idle = g * pw->idle_w_per_gpu;
                double busy = pw->idle_w_per_gpu +
                              (pw->busy_w_per_gpu - pw->idle_w_per_gpu) * f_speed;
                fprintf(f, "%s%.6f:%.6f:%.6f", i ? ", " : "", idle,
                        idle + (busy - pw->idle_w_per_gpu), g * busy);
            }
            /* hosts beyond the initial replicas exist only once provisioned */
            fprintf(f, "\"/>\n    <prop id=\"wattage_off\" value=\"%.6f\"/>\n  </host>\n",
                    j < pc->replicas ? pw->off_w : 0.0);
            fputs("  <link id=\"", f);
            xml_attr(f, pc->name);
            fprintf(f, "/%d/link\" bandwidth=\"%.17gBps\" latency=\"%.17gs\"/>\n", j,
                    pc->link_bandwidth_Bps, pc->link_latency_s);
        }
    }
    for (int k = 0; k < S.sc->n_pools; k++) {
        const sc_pool *pc = &S.sc->pools[k];
        for (int j = 0; j < eng_pool_slots(pc, NULL); j++) {
            fputs("  <route src=\"balancer\" dst=\"", f);
            xml_attr(f, pc->name);
            fprintf(f, "/%d\"><link_ctn id=\"", j);
            xml_attr(f, pc->name);
            fprintf(f, "/%d/link\"/></route>\n", j);
        }
    }
    fprintf(f, "</zone>\n</platform>\n");
    return fclose(f);
}

/* ---------- set-up and results ---------- */

static int build(void)
{
    const sc_scenario *sc = S.sc;
    S.balancer_host = sg_host_by_name("balancer");
    if (tier_init())
        return -1;
    unsigned long stream = 0;
    S.pools = calloc((size_t)sc->n_pools, sizeof *S.pools);
    for (int k = 0; k < sc->n_pools; k++) {
        eng_pool *p = &S.pools[k];
        p->cfg = &sc->pools[k];
        p->model = &sc->models[p->cfg->model];
        p->id = k;
        p->serve = p->model->llm ? &serve_llm : &serve_batch;
        p->n_hosts = eng_pool_slots(p->cfg, &p->n_old);
        p->nodes = calloc((size_t)p->n_hosts, sizeof *p->nodes);
        p->lb_rng = eng_stream_rng(sc->seed, 1000000UL + (unsigned long)k);
        p->fault_rng = eng_stream_rng(sc->seed, 3000000UL + (unsigned long)k);
        p->lbi = calloc((size_t)S.n_l7, sizeof *p->lbi);
        for (int i = 0; i < S.n_l7; i++) {
            eng_lbi *b = &p->lbi[i];
            /* an L7 balancer's own policy, else the pool's, else the default */
            const char *policy = sc->lb.n_l7 > 0 && sc->lb.l7[i].policy ? sc->lb.l7[i].policy
                                 : p->cfg->lb_policy                     ? p->cfg->lb_policy
                                                                         : sc->lb.policy;
            b->servers = calloc((size_t)p->n_hosts, sizeof *b->servers);
            b->view.n = p->n_hosts;
            b->view.servers = b->servers;
            b->rng = i == 0 ? p->lb_rng
                            : eng_stream_rng(sc->seed, 5000000UL + 1000UL * (unsigned long)k +
                                                           (unsigned long)i);
            b->balancer = lb_create_with(policy, p->n_hosts, b->rng, &sc->lb.params);
            if (!b->balancer) {
                fprintf(stderr, "fleetsim: unknown load-balancing policy '%s'\n", policy);
                return -1;
            }
        }
        p->lbq_capacity = sc->lb.queue_capacity;
        p->lbq_timeout_s = sc->lb.queue_timeout_s;
        p->busy_per_interval = calloc(S.n_intervals, sizeof(double));
        p->serving_per_interval = calloc(S.n_intervals, sizeof(double));
        p->cause = p->fault_rec = -1;
        p->bw_factor = 1.0;
        serve_init_pool(p);
        for (int j = 0; j < p->n_hosts; j++) {
            eng_node *n = &p->nodes[j];
            n->pool = p;
            n->index = j;
            snprintf(n->name, sizeof n->name, "%s/%d", p->cfg->name, j);
            n->host = sg_host_by_name(n->name);
            n->rng = eng_stream_rng(sc->seed, 2000000UL + stream++);
            n->new_shape = j >= p->n_old;
            n->gpus = n->new_shape ? p->cfg->rollout.gpus_per_node : p->cfg->gpus_per_node;
            n->power = n->new_shape ? &p->cfg->rollout.power : &p->cfg->power;
            serve_init_node(n);
            n->up_since_s = -1;
            n->ready_since_s = -1;
            n->serving_since_s = -1;
            n->cause = n->fault_rec = -1;
            /* per-node series for the report's heatmap, while they stay small */
            if ((double)p->n_hosts * (double)S.n_intervals <= 4e6)
                n->busy_series = calloc(S.n_intervals, sizeof *n->busy_series);
            n->hc_up = 1;
            for (int i = 0; i < S.n_l7; i++)
                p->lbi[i].servers[j] = (lb_server_view){ .up = 0, .active = 0,
                                                         .max_conns = sc->lb.max_conns,
                                                         .weight = 1.0, .name = n->name };
        }
        if (p->n_hosts > 0) {
            p->route_latency_s = sg_host_get_route_latency(S.balancer_host, p->nodes[0].host);
            p->route_bw_Bps = sg_host_get_route_bandwidth(S.balancer_host, p->nodes[0].host);
        }
    }
    for (int i = 0; i < sc->lb.n_servers; i++) {
        const sc_server *sv = &sc->lb.servers[i];
        for (int l = 0; l < S.n_l7; l++) {
            lb_server_view *v = &S.pools[sv->pool].lbi[l].servers[sv->index];
            v->weight = sv->weight;
            v->max_conns = sv->max_conns;
            v->backup = sv->backup;
            v->down = sv->down;
            v->max_fails = sv->max_fails;
            v->fail_timeout_s = sv->fail_timeout_s;
            if (sv->name)
                v->name = sv->name;
        }
    }
    pipe_init(); /* queues cap their consumers' max_conns */
    for (int k = 0; k < sc->n_pools; k++) {
        life_init_pool(&S.pools[k]);
        life_start_health_checks(&S.pools[k]);
        life_start_rollout(&S.pools[k]);
        weights_start(&S.pools[k]);
    }
    S.classes = calloc((size_t)sc->n_traffic, sizeof *S.classes);
    for (int c = 0; c < sc->n_traffic; c++) {
        eng_class *tc = &S.classes[c];
        tc->cfg = &sc->traffic[c];
        tc->id = c;
        tc->pool = &S.pools[tc->cfg->pool];
        tc->pipe = &sc->pipelines[tc->cfg->pipeline];
        tc->rng = eng_stream_rng(sc->seed, (unsigned long)c);
        if (tc->cfg->has_tokens && !tc->cfg->tokens_trace)
            tc->tok_rng = eng_stream_rng(sc->seed, 6000000UL + (unsigned long)c);
        tc->rate = sim_rate_new(tc->cfg->rate, tc->cfg->n_rate);
        tc->latency = sim_hist_new(HIST_MIN_S, HIST_MAX_S, HIST_REL_ERR);
        tc->bytes = tc->cfg->bytes_in + tc->cfg->bytes_out;
        tc->net_s = 2 * tc->pool->route_latency_s + tc->bytes / tc->pool->route_bw_Bps;
    }
    chaos_apply_rates();
    for (int c = 0; c < sc->n_traffic; c++) {
        sg_actor_t a = sg_actor_init(S.classes[c].cfg->name, S.balancer_host);
        sg_actor_set_data(a, &S.classes[c]);
        sg_actor_start(a, traffic_source, 0, NULL);
    }
    chaos_start();
    scale_start();
    obs_start();
    /* Not a daemon (SimGrid 3.32 would kill it twice: serve/batch.c); it
     * runs to the end of the run like every other actor. */
    sg_actor_t a = sg_actor_init("sampler", S.balancer_host);
    sg_actor_start(a, sampler, 0, NULL);
    return 0;
}

static void fill_latency(rp_latency *l, const sim_hist *h)
{
    l->mean = sim_hist_mean(h);
    l->p50 = sim_hist_quantile(h, 0.5);
    l->p90 = sim_hist_quantile(h, 0.9);
    l->p99 = sim_hist_quantile(h, 0.99);
    l->p999 = sim_hist_quantile(h, 0.999);
    l->max = sim_hist_max(h);
}

/* Requests still queued whose deadline passed, or whose L7 balancer went
 * down, before the end timed out or failed. */
static void sweep_expired(double end)
{
    for (int k = 0; k < S.sc->n_pools; k++) {
        eng_pool *p = &S.pools[k];
        eng_fifo keep = { 0 };
        eng_req *r;
        while ((r = eng_fifo_pop(&p->lbq))) {
            double gone = fmin(r->deadline_s, r->lbq_deadline_s), cut = tier_cut(r, end);
            if (cut <= end && cut <= gone)
                eng_req_end(p, r, B_FAILED, cut);
            else if (gone <= end)
                eng_req_end(p, r, B_TIMED_OUT, gone);
            else
                eng_fifo_push(&keep, r);
        }
        p->lbq = keep;
        for (int j = 0; j < p->n_hosts; j++) {
            eng_node *n = &p->nodes[j];
            eng_fifo kept = { 0 };
            while ((r = eng_fifo_pop(&n->q))) {
                double cut = tier_cut(r, end);
                if (cut <= end && cut <= r->deadline_s) {
                    p->lbi[r->l7].servers[j].active--;
                    eng_req_end(p, r, B_FAILED, cut);
                } else if (r->deadline_s <= end) {
                    p->lbi[r->l7].servers[j].active--;
                    eng_req_end(p, r, B_TIMED_OUT, r->deadline_s);
                } else {
                    eng_fifo_push(&kept, r);
                }
            }
            n->q = kept;
        }
    }
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

static void census_fifo(const eng_fifo *f, const eng_pool *p, unsigned long *requests,
                        unsigned long *per_pool)
{
    for (const eng_req *r = f->head; r; r = r->next)
        eng_census_add(r, p, requests, per_pool);
}

/* What is still held at the end, counted where it is (balancer queues,
 * node queues, running batches, pipeline queues, client retries), not
 * derived from the counters: the conservation checks compare the two. */
static void census(unsigned long *requests, unsigned long *per_pool)
{
    for (int k = 0; k < S.sc->n_pools; k++) {
        eng_pool *p = &S.pools[k];
        census_fifo(&p->lbq, p, requests, per_pool);
        for (int j = 0; j < p->n_hosts; j++) {
            eng_node *n = &p->nodes[j];
            census_fifo(&n->q, p, requests, per_pool);
            serve_census(n, requests, per_pool);
        }
    }
    for (int i = 0; i < S.sc->n_queues; i++)
        census_fifo(&S.queues[i].q, S.queues[i].consumer, requests, per_pool);
    chaos_census(requests, per_pool);
}

static void collect(rp_results *out)
{
    const sc_scenario *sc = S.sc;
    double dur = sc->duration_s;
    sweep_expired(dur);
    life_account_end(dur);
    sg_host_energy_update_all();
    unsigned long held = 0;
    unsigned long *held_in = calloc((size_t)sc->n_pools, sizeof *held_in);
    census(&held, held_in);
    S.all.in_flight_at_end = held; /* != S.live: a request lost or counted twice */
    S.measured.in_flight_at_end = S.measured.generated - S.measured.completed - S.measured.rejected -
                                  S.measured.failed - S.measured.timed_out;
    out->requests = S.all;
    out->measured = S.measured;
    out->attempts = S.attempts;
    out->attempt_errors = S.attempt_errors;
    fill_latency(&out->latency_s, S.latency);
    unsigned long fin = S.measured.completed + S.measured.rejected + S.measured.failed +
                        S.measured.timed_out;
    out->availability = fin ? (double)S.measured.completed / (double)fin : 1.0;
    out->throughput_qps = dur > sc->warmup_s ? (double)S.measured.completed / (dur - sc->warmup_s) : 0;
    out->n_pools = sc->n_pools;
    out->pools = calloc((size_t)sc->n_pools, sizeof *out->pools);
    for (int k = 0; k < sc->n_pools; k++) {
        eng_pool *p = &S.pools[k];
        rp_pool *rp = &out->pools[k];
        rp->name = strdup(p->cfg->name);
        rp->gpus_per_node = p->cfg->gpus_per_node;
        rp->replicas_min = p->replicas_min;
        rp->replicas_max = p->replicas_max;
        double busy = 0, joules = 0, gpu_s = 0, money = 0;
        for (int j = 0; j < p->n_hosts; j++) {
            const eng_node *n = &p->nodes[j];
            busy += n->busy_gpu_s;
            gpu_s += n->up_total_s * n->gpus;
            money += n->up_total_s * n->gpus / 3600.0 * n->power->price_per_gpu_hour;
            joules += sg_host_get_consumed_energy(n->host);
        }
        rp->utilization = gpu_s > 0 ? busy / gpu_s : 0;
        rp->gpu_hours = gpu_s / 3600.0;
        rp->energy_kwh = joules / 3.6e6;
        rp->cost = money;
        rp->counts = p->counts;
        rp->counts.in_flight_at_end = held_in[k];
        out->gpu_hours += rp->gpu_hours;
        out->energy_kwh += rp->energy_kwh;
        out->cost += rp->cost;
        for (size_t i = 0; i < S.n_intervals; i++) {
            double len = fmin(sc->interval_s, dur - (double)i * sc->interval_s);
            out->samples[i].pools[k].busy_gpus = len > 0 ? p->busy_per_interval[i] / len : 0;
            out->samples[i].pools[k].serving_gpus =
                len > 0 ? p->serving_per_interval[i] / len : 0;
        }
        if (p->nodes[0].busy_series) {
            rp->nodes = calloc((size_t)p->n_hosts, sizeof *rp->nodes);
            rp->n_nodes = p->n_hosts;
            for (int j = 0; j < p->n_hosts; j++) {
                rp->nodes[j].name = strdup(p->nodes[j].name);
                rp->nodes[j].busy = malloc(sizeof(double) * S.n_intervals);
                for (size_t i = 0; i < S.n_intervals; i++) {
                    double len = fmin(sc->interval_s, dur - (double)i * sc->interval_s);
                    double b = p->nodes[j].busy_series[i];
                    rp->nodes[j].busy[i] = isnan(b) || len <= 0 ? b : b / (len * p->nodes[j].gpus);
                }
            }
        }
        serve_collect(p, out);
    }
    if (sc->n_caches > 0) {
        out->caches = calloc((size_t)sc->n_caches, sizeof *out->caches);
        out->n_caches = sc->n_caches;
        for (int i = 0; i < sc->n_caches; i++)
            out->caches[i] = (rp_cache){ .name = strdup(sc->caches[i].name),
                                         .hits = S.caches[i].hits, .misses = S.caches[i].misses };
    }
    if (sc->n_queues > 0) {
        out->queues = calloc((size_t)sc->n_queues, sizeof *out->queues);
        out->n_queues = sc->n_queues;
        for (int i = 0; i < sc->n_queues; i++) {
            eng_queue *q = &S.queues[i];
            out->queues[i] = (rp_queue){ .name = strdup(q->cfg->name),
                                         .consumer = strdup(q->consumer->cfg->name),
                                         .published = q->published, .delivered = q->delivered,
                                         .refused = q->refused, .processed = q->processed,
                                         .lost = q->lost, .redelivered = q->redelivered,
                                         .backlog_max = q->max_backlog,
                                         .backlog_at_end = q->q.len };
            fill_latency(&out->queues[i].lag_s, q->lag);
            out->queues[i].backlog = malloc(sizeof(double) * S.n_intervals);
            memcpy(out->queues[i].backlog, q->backlog_per_interval, sizeof(double) * S.n_intervals);
        }
    }
    if (S.l4) {
        out->balancers = calloc((size_t)S.n_l7, sizeof *out->balancers);
        out->n_balancers = S.n_l7;
        for (int i = 0; i < S.n_l7; i++)
            out->balancers[i] = (rp_balancer){ .name = strdup(S.l7[i].cfg->name),
                                               .routed = S.l7[i].routed,
                                               .refused = S.l7[i].refused,
                                               .cut = S.l7[i].cut };
    }
    free(held_in);
    out->n_classes = sc->n_traffic;
    out->classes = calloc((size_t)sc->n_traffic, sizeof *out->classes);
    for (int c = 0; c < sc->n_traffic; c++) {
        eng_class *tc = &S.classes[c];
        rp_class *rc = &out->classes[c];
        rc->name = strdup(tc->cfg->name);
        rc->pool = strdup(tc->pool->cfg->name);
        rc->pipeline = tc->pipe->implicit ? NULL : strdup(tc->pipe->name);
        rc->counts = tc->measured;
        rc->counts.in_flight_at_end = tc->measured.generated - tc->measured.completed -
                                      tc->measured.rejected - tc->measured.failed -
                                      tc->measured.timed_out;
        fill_latency(&rc->latency_s, tc->latency);
    }
    for (size_t i = 0; i < S.n_intervals; i++) {
        out->samples[i].completed = S.done[B_COMPLETED][i];
        out->samples[i].rejected = S.done[B_REJECTED][i];
        out->samples[i].failed = S.done[B_FAILED][i];
        out->samples[i].timed_out = S.done[B_TIMED_OUT][i];
    }
}

static void teardown(void)
{
    for (int k = 0; k < S.sc->n_pools; k++) {
        eng_pool *p = &S.pools[k];
        for (int j = 0; j < p->n_hosts; j++) {
            eng_node *n = &p->nodes[j];
            gsl_rng_free(n->rng);
            serve_free_node(n);
            free(n->busy_series);
        }
        for (int i = 0; i < S.n_l7; i++) {
            lb_destroy(p->lbi[i].balancer);
            free(p->lbi[i].servers);
            if (i > 0)
                gsl_rng_free(p->lbi[i].rng);
        }
        free(p->lbi);
        gsl_rng_free(p->lb_rng);
        gsl_rng_free(p->fault_rng);
        free(p->nodes);
        free(p->hc_silent);
        free(p->dw_ring);
        free(p->base_weight);
        free(p->busy_per_interval);
        free(p->serving_per_interval);
        serve_free_pool(p);
    }
    for (int c = 0; c < S.sc->n_traffic; c++) {
        gsl_rng_free(S.classes[c].rng);
        if (S.classes[c].tok_rng)
            gsl_rng_free(S.classes[c].tok_rng);
        sim_rate_free(S.classes[c].rate);
        sim_hist_free(S.classes[c].latency);
    }
    chaos_free();
    pipe_free();
    tier_free();
    scale_free();
    obs_free();
    acc_free();
    for (size_t i = 0; i < S.n_blocks; i++)
        free(S.blocks[i]);
    free(S.blocks);
    free(S.pools);
    free(S.classes);
    free(S.offered);
    for (int b = 0; b < 4; b++)
        free(S.done[b]);
    sim_hist_free(S.latency);
    sim_hist_free(S.interval_latency);
}

int sim_run(const sc_scenario *sc, const sim_options *opt, rp_results *out)
{
    memset(&S, 0, sizeof S);
    S.wall0 = mono_s();
    S.sc = sc;
    S.out = out;
    S.progress = opt && opt->progress;
    obs_set_options(opt);
    if (opt && opt->trace_steps_path) {
        S.trace_steps = fopen(opt->trace_steps_path, "w");
        if (!S.trace_steps) {
            fprintf(stderr, "fleetsim: cannot write %s: %s\n", opt->trace_steps_path,
                    strerror(errno));
            return -1;
        }
        fputs("time_s,pool,node,replica,step,duration_s,prefill_tokens,decode_requests,"
              "context_tokens,running,waiting,kv_blocks_used\n",
              S.trace_steps);
    }
    S.n_intervals = (size_t)ceil(sc->duration_s / sc->interval_s);
    if (S.n_intervals == 0)
        S.n_intervals = 1;
    S.offered = calloc(S.n_intervals, sizeof *S.offered);
    for (int b = 0; b < 4; b++)
        S.done[b] = calloc(S.n_intervals, sizeof(unsigned long));
    S.latency = sim_hist_new(HIST_MIN_S, HIST_MAX_S, HIST_REL_ERR);
    S.interval_latency = sim_hist_new(HIST_MIN_S, HIST_MAX_S, HIST_REL_ERR);

    memset(out, 0, sizeof *out);
    out->scenario = strdup(sc->name);
    out->seed = sc->seed;
    out->sim_time_s = sc->duration_s;
    out->warmup_s = sc->warmup_s;
    out->interval_s = sc->interval_s;
    out->slo_latency_p99_s = sc->slo.latency_p99_s;
    out->slo_availability = sc->slo.availability;
    out->slo_ttft_p99_s = sc->slo.ttft_p99_s;
    out->slo_tpot_p99_s = sc->slo.tpot_p99_s;
    out->slo_e2e_p99_s = sc->slo.e2e_p99_s;
    out->slo_goodput = sc->slo.goodput;
    out->n_samples = S.n_intervals;
    out->samples = calloc(S.n_intervals, sizeof *out->samples);
    for (size_t i = 0; i < S.n_intervals; i++)
        out->samples[i].pools = calloc((size_t)sc->n_pools, sizeof(rp_pool_sample));

    /* SimGrid's raw contexts are its fastest; AddressSanitizer only follows
     * ucontext stack switches, so sanitizer builds use those. */
#ifdef FLEETSIM_SANITIZE
    char *args[] = { "fleetsim", "--log=root.thres:critical", "--cfg=contexts/factory:ucontext", NULL };
#else
    char *args[] = { "fleetsim", "--log=root.thres:critical", "--cfg=contexts/factory:raw", NULL };
#endif
    int argc = 3;
    simgrid_init(&argc, args);
    sg_host_energy_plugin_init();
    char plat[] = "/tmp/fleetsim-platform-XXXXXX";
    int fd = mkstemp(plat);
    if (fd < 0 || (close(fd), write_platform(plat)) != 0) {
        perror("fleetsim: platform file");
        return -1;
    }
    simgrid_load_platform(plat);
    unlink(plat);

    eng_event(0, "run_start", sc->name, NULL);
    acc_init();
    if (build() != 0) {
        teardown();
        if (S.trace_steps)
            fclose(S.trace_steps);
        return -1;
    }
    simgrid_run_until(sc->duration_s);
    collect(out);
    acc_finish(out);
    eng_event(sc->duration_s, "run_end", sc->name, NULL);
    out->wall_time_s = wall_now();
    /* actors still blocked hold the semaphores: end them, then let the
     * engine reap them, before anything is freed */
    sg_actor_kill_all();
    simgrid_run();
    teardown();
    if (S.trace_steps) {
        int bad = ferror(S.trace_steps);
        if (fclose(S.trace_steps) != 0 || bad) {
            fprintf(stderr, "fleetsim: cannot write %s\n", opt->trace_steps_path);
            return -1;
        }
    }
    return 0;
}
