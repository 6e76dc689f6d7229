/*
 * request.c - a request's path: traffic sources generate it, the front door
 * and the balancers route it (retries, the balancer queue, 503s), servers
 * answer it, and it ends in exactly one bucket (completed, rejected,
 * failed, timed out) or is in flight at the end.
 *
 * Known simplifications, written where they live:
 * - network time is charged as a fixed delay per request from the route
 *   (latency both ways + size / bandwidth); links are not contended;
 * - a request whose client deadline passed while it waited is dropped when a
 *   worker reaches it (like Triton's queue policy timeout) and counted as
 *   timed out at its deadline; one that runs past its deadline still uses the
 *   GPU and is counted as timed out when its batch ends.
 */
#include "flow.h"
#include "serve.h"

#include <simgrid/actor.h>
#include <simgrid/engine.h>

#include <gsl/gsl_randist.h>

#include <assert.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---------- request outcomes ---------- */

/* When the client of a request sent at now gives up: its pool's timeout,
 * or sooner the first-token timeout of an LLM pool (the LLM server moves
 * the deadline to the whole answer's once the first token is out). */
static double client_deadline(const eng_class *tc, double now)
{
    const sc_pool *pc = tc->pool->cfg;
    double d = pc->timeout_s > 0 ? now + pc->timeout_s : INFINITY;
    if (pc->ttft_timeout_s > 0 && now + pc->ttft_timeout_s < d)
        d = now + pc->ttft_timeout_s;
    return d;
}

/* Inlined into both traffic sources: called out of line (as gcc chose once
 * fast mode's source called it too) it cost exact mode 15 instructions per
 * request (callgrind, bench/scenarios/batched.yaml). */
static inline __attribute__((always_inline)) eng_req *req_new(eng_class *tc, double now)
{
    if (!eng_world.free_list) { /* requests come in blocks, all freed at teardown */
        enum { BLOCK = 4096 };
        eng_req *b = malloc(sizeof *b * BLOCK);
        eng_world.blocks = realloc(eng_world.blocks, sizeof *eng_world.blocks * (eng_world.n_blocks + 1));
        eng_world.blocks[eng_world.n_blocks++] = b;
        for (int i = BLOCK - 1; i >= 0; i--) {
            b[i].next = eng_world.free_list;
            eng_world.free_list = &b[i];
        }
    }
    eng_req *r = eng_world.free_list;
    eng_world.free_list = r->next;
    r->arrival_s = now;
    r->deadline_s = client_deadline(tc, now);
    r->lbq_deadline_s = INFINITY;
    r->outage_since_s = NAN;
    r->outage_wait_s = 0;
    r->outage_rec = r->outage_cause = -1;
    r->handoff_rec = r->handoff_cause = -1;
    r->net_s = tc->net_s;
    r->sent_s = now;
    r->stage_s = now;
    r->net_prev_s = 0;
    r->wan_s = 0;
    r->stage = 0;
    r->in_pool = 1;
    r->job = 0;
    r->client_tries = 0;
    r->work = tc->cfg->work;
    r->id = eng_world.next_id++;
    r->tclass = tc->id;
    r->node = -1;
    r->attempts = 0;
    r->n_tried = 0;
    r->l4_refused = 0;
    r->in_tokens = r->out_tokens = 0;
    r->hashes = NULL;
    r->n_hashes = r->hash_block_tokens = 0;
    eng_world.live++;
    return r;
}

static int measured(const eng_req *r)
{
    return r->arrival_s >= eng_world.sc->warmup_s;
}

static void req_free(eng_req *r)
{
    r->next = eng_world.free_list;
    eng_world.free_list = r;
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
    if (bucket != B_COMPLETED && eng_hook.client_retry && eng_hook.client_retry(p, r, t_s)) {
        tier_leave(r, t_s);
        /* it will start over at the first stage; with failover, in the
         * pool its resend is sent to */
        if (r->stage > 0 || eng_world.classes[r->tclass].cfg->failover) {
            eng_pool_leave(p, r, bucket, t_s);
            r->stage = -1;
        }
        eng_hook.clients_wake(); /* last: the resend may run at once */
        return; /* not the end: its client sends it again */
    }
    eng_pool_leave(p, r, bucket, t_s);
    eng_req_answered(p, r, bucket, t_s);
    req_free(r);
}

void eng_req_answered(eng_pool *p, eng_req *r, int bucket, double t_s)
{
    unsigned long *slot_all[4] = { &eng_world.all.completed, &eng_world.all.rejected, &eng_world.all.failed, &eng_world.all.timed_out };
    unsigned long *slot_m[4] = { &eng_world.measured.completed, &eng_world.measured.rejected, &eng_world.measured.failed,
                                 &eng_world.measured.timed_out };
    tier_leave(r, t_s);
    ++*slot_all[bucket];
    size_t iv = eng_interval_of(t_s);
    eng_world.done[bucket][iv]++;
    ENG_NOTIFY(request_end, p, r, bucket, t_s, iv, t_s - r->arrival_s + r->net_s);
    sim_hist *hs[3] = { eng_world.interval_latency, NULL, NULL };
    int nh = 1;
    if (measured(r)) {
        eng_class *c = &eng_world.classes[r->tclass];
        unsigned long *slot_c[4] = { &c->measured.completed, &c->measured.rejected,
                                     &c->measured.failed, &c->measured.timed_out };
        ++*slot_m[bucket];
        ++*slot_c[bucket];
        hs[nh++] = eng_world.latency;
        hs[nh++] = c->latency;
    }
    if (bucket == B_COMPLETED)
        sim_hist_add_many(hs, nh, t_s - r->arrival_s + r->net_s);
    eng_world.live--;
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

static void node_accept(eng_pool *p, eng_node *n, eng_req *r)
{
    r->node = n->index;
    n->work.accepted++;
    n->work.net_rx_bytes += eng_world.classes[r->tclass].cfg->bytes_in;
    p->lbi[r->l7].servers[n->index].active++;
    eng_lb_changed(p, r->l7, n->index);
    eng_fifo_push(&n->work.q, r);
    eng_node_q_sync(n);
    serve_accepted(n);
}

/* proxy_next_upstream: `on` says whether it lists what went wrong (error,
 * http_503); then tries and timeout decide. */
int eng_retry_allowed(const eng_pool *p, const eng_req *r, double now, int on)
{
    const sc_lb *lbc = &eng_world.sc->lb;
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
    eng_world.attempt_errors++;
    if (r->job && pipe_requeue(p, r, now))
        return;
    if (eng_retry_allowed(p, r, now, eng_world.sc->lb.retry_on_error)) {
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
        if (eng_world.sc->lb.n_l7 > 0)
            snprintf(who, sizeof who, " (balancer %s)", eng_world.sc->lb.l7[l7].name);
        eng_event(now, "outlier_ejection", p->nodes[server].name,
                  "%d consecutive 5xx: ejection %d, out until %.9g s%s",
                  eng_world.sc->lb.params.outlier.consecutive_5xx, h.num_ejections, h.until_s, who);
    }
}

void eng_lb_release(eng_pool *p, const eng_req *r, int s, double latency_s, lb_result result,
                    double now)
{
    p->lbi[r->l7].servers[s].active--;
    eng_lb_changed(p, r->l7, s);
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
        if (saved[i])
            eng_lb_changed(p, r->l7, r->tried[i]);
    }
    lb_request lr = { .id = r->id, .traffic_class = r->tclass, .arrival_s = r->stage_s,
                      .key = r->id, .hidden = hidden, .n_hidden = n_hidden,
                      .input_tokens = r->in_tokens, .output_tokens = r->out_tokens,
                      .hashes = r->hashes, .n_hashes = r->n_hashes,
                      .hash_block_tokens = r->hash_block_tokens };
    b->view.now_s = now;
    int s = lb_pick(b->balancer, &b->view, &lr);
    for (int i = r->n_tried - 1; i >= 0; i--) {
        b->servers[r->tried[i]].up = saved[i];
        if (saved[i])
            eng_lb_changed(p, r->l7, r->tried[i]);
    }
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
    int listed = eng_world.sc->lb.retry_on_503;
    eng_lb_done(p, r->l7, s, now - r->stage_s + r->net_s - r->net_prev_s,
                listed ? LB_ERROR : LB_HTTP_5XX, now);
    if (!r->job && eng_retry_allowed(p, r, now, listed)) { /* a job's error answer loses it */
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
    eng_world.attempts++;
    r->handoff_cause = r->handoff_rec = -1; /* a new attempt: a failed handoff's cause is past */
    if (r->n_tried < ENG_MAX_TRIED)
        r->tried[r->n_tried++] = s;
    /* connection-level errors: the node is gone, unreachable, or flaky */
    if (n->life.state != NODE_READY || p->partitioned ||
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
    const eng_class *tc = &eng_world.classes[r->tclass];
    r->net_s = r->net_prev_s +
               (p == tc->pool && p->bw_factor == 1.0
                    ? tc->net_s
                    : 2 * p->route_latency_s + tc->bytes / (p->route_bw_Bps * p->bw_factor)) +
               2 * p->extra_latency_s + 2 * r->wan_s;
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
    while (s >= 0 && p->nodes[s].life.state != NODE_READY && r->n_tried < ENG_MAX_TRIED) {
        r->tried[r->n_tried++] = s; /* hidden from the next pick */
        s = pick(p, r, now);
    }
    r->n_tried = 0;
    if (s < 0 || p->nodes[s].life.state != NODE_READY)
        return -1;
    set_net(p, r);
    send_to(p, r, s, now);
    return 0;
}

/* Routes r now or queues it at the balancer; ends it when neither works. */
void eng_route(eng_pool *p, eng_req *r, double now)
{
    if (eng_hook.catch_up)
        eng_hook.catch_up(now);
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
    /* No server: the request waits at the balancer, without a deadline of
     * its own, when the pool is cold-starting (the hook asks its autoscaler
     * at once) or is a disaggregated fleet's prefill pool: with no prefill
     * worker up it waits for one until its client gives up, as the remote
     * prefill requests of NVIDIA Dynamo's disaggregated serving wait in the
     * queue its prefill workers pull from; an outage shows as TTFT (or as
     * timeouts past a first-token deadline) */
    if (s == LB_NO_UPSTREAM &&
        ((eng_hook.cold_start_wait && eng_hook.cold_start_wait(p, now)) ||
         p->cfg->role == SC_ROLE_PREFILL)) {
        if (p->lbq.len < p->cfg->queue_capacity) {
            r->lbq_deadline_s = INFINITY;
            /* no prefill worker up for a fault's sake: its wait is the
             * fault's (accounting: TTFT added by a prefill outage) */
            int rec, cause;
            if (p->cfg->role == SC_ROLE_PREFILL && isnan(r->outage_since_s) &&
                (cause = eng_pool_node_fault(p, &rec)) >= 0) {
                r->outage_cause = cause;
                r->outage_rec = rec;
                r->outage_since_s = now;
            }
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
    if (eng_hook.catch_up) /* a health check's or a fault's drain picks from the servers as of now */
        eng_hook.catch_up(now);
    if (eng_world.queues)
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
        if (s == LB_BUSY ||
            (s == LB_NO_UPSTREAM && ((p->scaler && eng_ready_count(p, 0) == 0) ||
                                     p->cfg->role == SC_ROLE_PREFILL)))
            return; /* busy, cold-starting, or no prefill worker up: keep waiting */
        eng_fifo_pop(&p->lbq);
        if (!isnan(r->outage_since_s) && s != LB_NO_UPSTREAM) { /* a worker is back: its wait ends */
            r->outage_wait_s += now - r->outage_since_s;
            r->outage_since_s = NAN;
        }
        if (s == LB_NO_UPSTREAM)
            eng_req_end(p, r, B_FAILED, now);
        else
            send_to(p, r, s, now);
    }
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
    if (ok && !was_cut) { /* its client is gone otherwise: no response is written */
        n->work.net_tx_bytes += eng_world.classes[r->tclass].cfg->bytes_out;
        p->egress_bytes += eng_world.classes[r->tclass].cfg->bytes_out;
    }
    eng_lb_release(p, r, n->index, t1 - r->stage_s + r->net_s - r->net_prev_s, LB_OK, t1);
    if (was_cut)
        eng_req_end(p, r, B_FAILED, cut);
    else if (!ok)
        eng_req_end(p, r, B_TIMED_OUT, r->deadline_s);
    else if (r->stage + 1 < eng_world.classes[r->tclass].pipe->n_stages)
        pipe_stage_done(p, r, t1);
    else
        eng_req_end(p, r, B_COMPLETED, t1);
}

/* ---------- failover across pools (traffic.<c>.failover) ----------
 *
 * A class with failover sends each request (and each client resend) to one
 * of its pools, chosen before that pool's balancer picks a server:
 * 1. the priority level, by Envoy's priority load (policies/lb_priority.h)
 *    from each level's hosts (nodes provisioned: booting, ready, draining or
 *    failed) and healthy hosts (those its balancer sees as up: ready,
 *    passing health checks, not configured `down`), drawn from the class's
 *    own stream as Envoy draws choosePriority's hash;
 * 2. overflow, when configured: a level whose pools are saturated (every
 *    healthy node at max_conns, or queue requests waiting per healthy node
 *    at its nodes and balancer) passes the request to the next level that
 *    has a healthy pool that is not, as nginx turns to its backup servers
 *    when every primary is at max_conns
 *    (src/http/ngx_http_upstream_round_robin.c, ngx_http_upstream_get_round_robin_peer);
 * 3. within the level, a pool with probability proportional to its healthy
 *    hosts, as Envoy's balancer spreads a priority's load over its healthy
 *    hosts (all its hosts when none is healthy: Envoy's panic routes to
 *    all); when the scenario gives pools weights, by Envoy's locality
 *    weighting instead: weight x min(1, overprovisioning factor x healthy /
 *    hosts) (HostSetImpl::effectiveLocalityWeight,
 *    source/common/upstream/upstream_impl.cc), weight x hosts in panic.
 * The request then stays there: its balancer's retries (proxy_next_upstream)
 * try that pool's servers only, and its network time is that pool's route
 * plus wan_latency both ways. The client's timeout is its class pool's. */

static void pool_health(const eng_pool *p, int l7, int *hosts, int *healthy)
{
    *hosts = p->n_on;
    *healthy = p->lbi[l7].n_healthy;
#ifndef NDEBUG /* the counts are the walk's (debug and sanitizer builds) */
    int on = 0, up = 0;
    for (int j = 0; j < p->n_hosts; j++) {
        on += p->nodes[j].life.state != NODE_OFF;
        up += p->nodes[j].life.state != NODE_OFF && p->lbi[l7].servers[j].up &&
              !p->lbi[l7].servers[j].down;
    }
    assert(on == *hosts && up == *healthy);
#endif
}

/* Every healthy node at max_conns, or overflow_queue requests per healthy
 * node waiting; never a pool with no healthy node (that one is down). */
static int pool_saturated(const eng_pool *p, int l7, const sc_traffic *t)
{
    const eng_lbi *b = &p->lbi[l7];
    int healthy = b->n_up, at_max = b->n_at_max;
    long waiting = p->lbq.len + b->q_up;
    /* the walk: for a pool without counts, and in debug and sanitizer
     * builds to check them */
    int walk = !b->sat;
#ifndef NDEBUG
    walk = 1;
#endif
    if (walk) {
        int up = 0, full = 0;
        long q = p->lbq.len;
        for (int j = 0; j < p->n_hosts; j++) {
            const lb_server_view *v = &b->servers[j];
            if (!v->up || v->down)
                continue;
            up++;
            q += serve_queued(&p->nodes[j]);
            full += v->max_conns > 0 && v->active >= v->max_conns;
        }
        assert(!b->sat || (up == healthy && full == at_max && q == waiting));
        healthy = up;
        at_max = full;
        waiting = q;
    }
    if (healthy == 0)
        return 0;
    return (t->overflow_max_conns && at_max == healthy) ||
           (t->overflow_queue > 0 && waiting >= (long)t->overflow_queue * healthy);
}

/* A level that has a healthy pool which is not saturated. */
static int level_has_room(const eng_class *tc, int level, int l7)
{
    const sc_traffic *t = tc->cfg;
    for (int i = 0; i < t->n_failover; i++) {
        const eng_pool *p = &eng_world.pools[t->failover[i].pool];
        if (t->failover[i].priority == level && tc->fo_healthy[i] > 0 &&
            !pool_saturated(p, l7, t))
            return 1;
    }
    return 0;
}

/* Failover pool i's share of its level while the level has healthy hosts
 * (step 3 above). */
static double healthy_share(const sc_traffic *t, const eng_class *tc, int i)
{
    if (!t->failover_locality_weights)
        return tc->fo_healthy[i];
    if (tc->fo_hosts[i] == 0)
        return 0;
    double avail = t->failover_factor_pct / 100.0 * tc->fo_healthy[i] / tc->fo_hosts[i];
    return t->failover[i].weight * (avail < 1 ? avail : 1);
}

static int failover_pick(eng_class *tc, eng_req *r)
{
    const sc_traffic *t = tc->cfg;
    lb_priority_level *lv = tc->fo_levels;
    for (int k = 0; k < t->n_levels; k++)
        lv[k] = (lb_priority_level){ 0, 0 };
    for (int i = 0; i < t->n_failover; i++) {
        pool_health(&eng_world.pools[t->failover[i].pool], r->l7, &tc->fo_hosts[i],
                    &tc->fo_healthy[i]);
        lv[t->failover[i].priority].hosts += tc->fo_hosts[i];
        lv[t->failover[i].priority].healthy += tc->fo_healthy[i];
    }
    lb_priority_load(lv, t->n_levels, t->failover_factor_pct, t->failover_panic_pct, tc->fo_load,
                     NULL);
    int level = lb_priority_choose(tc->fo_load, t->n_levels, gsl_rng_get(tc->fo_rng));
    if ((t->overflow_queue > 0 || t->overflow_max_conns) && !level_has_room(tc, level, r->l7))
        for (int k = level + 1; k < t->n_levels; k++)
            if (level_has_room(tc, k, r->l7)) {
                level = k;
                break;
            }
    double sum_h = 0, sum_all = 0;
    int first = -1;
    for (int i = 0; i < t->n_failover; i++)
        if (t->failover[i].priority == level) {
            if (first < 0)
                first = i;
            sum_h += healthy_share(t, tc, i);
            sum_all += t->failover[i].weight * tc->fo_hosts[i];
        }
    int use_h = sum_h > 0;
    double x = gsl_rng_uniform(tc->fo_rng) * (use_h ? sum_h : sum_all);
    int pick = first;
    if (use_h || sum_all > 0)
        for (int i = 0; i < t->n_failover; i++) {
            if (t->failover[i].priority != level)
                continue;
            double w = use_h ? healthy_share(t, tc, i) : t->failover[i].weight * tc->fo_hosts[i];
            if (w <= 0)
                continue;
            pick = i;
            if (x < w)
                break;
            x -= w;
        }
    r->wan_s = t->failover[pick].wan_latency_s;
    return t->failover[pick].pool;
}

/* ---------- traffic ---------- */

/* A client's connection (a new request or a resend) reaches the front end:
 * the L4 balancer, if any, then the first stage's balancer. A class with
 * failover picks the pool here and enters it. */
static void front_door(eng_class *tc, eng_req *r, double now)
{
    if (eng_hook.catch_up) /* the L4 balancer and the failover see the servers as of now */
        eng_hook.catch_up(now);
    if (tc->cfg->failover) {
        int t = tier_enter(r, now);
        eng_pool *p = t == 0 ? &eng_world.pools[failover_pick(tc, r)] : tc->pool;
        if (p != tc->pool)
            p->failover_in++;
        eng_pool_enter(p, r, now, 1);
        ENG_NOTIFY(arrival, p, now);
        if (t == 0)
            eng_route(p, r, now);
        else
            eng_req_end(p, r, B_FAILED, now);
        return;
    }
    ENG_NOTIFY(arrival, tc->pool, now);
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
    if (t->system_prompts > 0) { /* one of the shared prefixes, then its own tokens */
        unsigned long k = gsl_rng_uniform_int(tc->tok_rng, (unsigned long)t->system_prompts);
        int sys = t->system_prompt_tokens;
        r->in_tokens = r->in_tokens > INT_MAX - sys ? INT_MAX : r->in_tokens + sys;
        r->hashes = &t->system_hashes[k];
        r->n_hashes = 1;
        r->hash_block_tokens = sys;
    }
}

/* A class's next arrival time after the one before (INFINITY once a trace
 * is used up); the draws are the class's own stream, in arrival order, as
 * eng_traffic_source's exact loop makes them. */
static double next_arrival(eng_class *tc, size_t *next_trace, double *op)
{
    const sc_traffic *t = tc->cfg;
    if (t->process == SC_ARR_TRACE)
        return *next_trace < t->n_trace ? t->trace_s[(*next_trace)++] : INFINITY;
    double step = 1.0;
    if (t->process == SC_ARR_POISSON)
        step = gsl_ran_exponential(tc->rng, 1.0);
    else if (t->process == SC_ARR_GAMMA)
        step = gsl_ran_gamma(tc->rng, 1.0 / (t->cv * t->cv), t->cv * t->cv);
    *op += step;
    return sim_rate_inverse(tc->rate, *op);
}

/* Fast mode's source: one wake-up per arrival quantum that has arrivals,
 * at the quantum's end (a multiple of arrival_quantum_s, the same instants
 * for every class), delivering every arrival of the quantum in order. Each
 * request is stamped with its exact arrival time (arrival, send time,
 * client deadline, warm-up, offered load's interval), so its latency counts
 * from it; what moves is when the balancer sees it: at most one quantum
 * late. Arrivals of the last quantum are delivered at duration_s. */
static void traffic_source_fast(eng_class *tc)
{
    const sc_traffic *t = tc->cfg;
    double end = eng_world.sc->duration_s;
    size_t next_trace = 0;
    double op = 0;
    double at = next_arrival(tc, &next_trace, &op);
    while (at < end) {
        double due = eng_quantum_end(at);
        if (due > simgrid_get_clock())
            sg_actor_sleep_until(due);
        double now = simgrid_get_clock();
        do {
            eng_req *r = req_new(tc, at);
            if (t->has_tokens)
                set_tokens(tc, r, next_trace - 1);
            eng_world.all.generated++;
            if (measured(r)) {
                eng_world.measured.generated++;
                tc->measured.generated++;
            }
            eng_world.offered[eng_interval_of(at)] += 1;
            if (!t->failover) /* else front_door picks its pool */
                eng_pool_enter(tc->pool, r, now, 1);
            front_door(tc, r, now);
            at = next_arrival(tc, &next_trace, &op);
        } while (at <= now && at < end);
    }
}

/* A traffic class's source. Exact mode (below) wakes at each arrival; its
 * loop is kept as it was before fast mode, not sharing next_arrival, so
 * that its code is what it was. */
void eng_traffic_source(int argc, char *argv[])
{
    (void)argc;
    (void)argv;
    eng_class *tc = sg_actor_self_get_data();
    const sc_traffic *t = tc->cfg;
    double end = eng_world.sc->duration_s;
    size_t next_trace = 0;
    double op = 0; /* operational time: integral of the rate */

    if (eng_world.sc->simulation.fast) {
        traffic_source_fast(tc);
        return;
    }
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
        eng_world.all.generated++;
        if (measured(r)) {
            eng_world.measured.generated++;
            tc->measured.generated++;
        }
        eng_world.offered[eng_interval_of(now)] += 1;
        if (!t->failover) /* else front_door picks its pool */
            eng_pool_enter(tc->pool, r, now, 1);
        front_door(tc, r, now);
    }
}

/* A client retry: the same request, a new attempt with its own deadline;
 * offered load (timeseries offered_qps) counts it, as the balancer does. */
void eng_resend(eng_req *r, double now)
{
    eng_class *tc = &eng_world.classes[r->tclass];
    r->sent_s = now;
    r->stage_s = now;
    r->net_prev_s = 0;
    r->deadline_s = client_deadline(tc, now);
    r->lbq_deadline_s = INFINITY;
    r->node = -1;
    r->attempts = 0;
    r->n_tried = 0;
    eng_world.offered[eng_interval_of(now)] += 1;
    if (tc->cfg->failover) { /* front_door picks its pool; wan_s with it */
        r->stage = 0;
        r->wan_s = 0;
    } else if (r->stage != 0) { /* it left a later stage: back in the first pool */
        r->stage = 0;
        eng_pool_enter(tc->pool, r, now, 1);
    } else {
        tc->pool->arrivals++;
    }
    front_door(tc, r, now);
}
