/*
 * pipeline.c - requests moving through their pipeline's stages: from one
 * pool to the next, through cache lookups and asynchronous queues.
 *
 * A request that finishes a pool stage (pipe_stage_done) leaves that pool
 * as completed and enters the next stage at the same instant; its latency
 * keeps running from the client's send, and the network time of every
 * stage adds up (net_prev_s). A request ends once, at the pool where it
 * finishes or fails, so the run's conservation counts requests while each
 * pool's counts are its own stage's arrivals and outcomes.
 *
 * A cache lookup takes lookup_s (added to the latency, like network time)
 * and hits with probability hit_ratio, drawn from the cache's own stream; a
 * hit skips the pool stage after the cache. A cache that is down misses
 * every lookup, so the load of the skipped pool jumps.
 *
 * A queue is a broker in front of its consumer pool. Publishing is the
 * producer's last act for the client: a full queue refuses the message
 * (503) and a broker that is down fails it (502), both the producer's
 * errors; an acknowledgement answers the client (the request completes with
 * the latency so far) and the rest of the pipeline is a job: background
 * work counted per pool and per queue (processed, lost, and the lag from
 * acknowledgement to its last stage), not in the client's outcomes. A
 * delivered message gets the queue's processing_timeout. Consumers take
 * messages as their servers have room: each server
 * holds at most `prefetch` unacknowledged messages (RabbitMQ's basic.qos),
 * applied as the consumer pool's max_conns, and the consumer's balancer
 * policy picks among servers with room (round-robin dispatch in RabbitMQ).
 * With no server up the backlog waits (a consumer scaled to zero is woken);
 * the broker does not deliver to a consumer node that crashed, even before
 * health checks notice, nor across a partition. A delivery that fails at
 * the connection (the consumer crashed holding it, error_rate) goes back to
 * the head of the queue (pipe_requeue), as AMQP requeues an unacknowledged
 * message; an error answer (500, a processing timeout) loses the job.
 * A broker that is down delivers nothing either: the backlog stays until it
 * is back.
 */
#include "flow.h"

#include <math.h>
#include <stdlib.h>

void pipe_init(void)
{
    const sc_scenario *sc = eng_world.sc;
    if (sc->n_caches > 0) {
        eng_world.caches = calloc((size_t)sc->n_caches, sizeof *eng_world.caches);
        for (int i = 0; i < sc->n_caches; i++) {
            eng_world.caches[i].cfg = &sc->caches[i];
            eng_world.caches[i].rng = eng_stream_rng(sc->seed, eng_stream(ENG_STREAM_CACHE, (unsigned long)i));
            eng_world.caches[i].cause = eng_world.caches[i].fault_rec = -1;
        }
    }
    if (sc->n_queues > 0) {
        eng_world.queues = calloc((size_t)sc->n_queues, sizeof *eng_world.queues);
        for (int i = 0; i < sc->n_queues; i++) {
            eng_queue *q = &eng_world.queues[i];
            q->cfg = &sc->queues[i];
            q->consumer = &eng_world.pools[q->cfg->consumer];
            q->cause = q->fault_rec = -1;
            q->backlog_per_interval = calloc(eng_world.n_intervals, sizeof *q->backlog_per_interval);
            q->lag = sim_hist_new(HIST_MIN_S, HIST_MAX_S, HIST_REL_ERR);
            eng_pool *c = q->consumer;
            int prefetch = q->cfg->prefetch > 0
                               ? q->cfg->prefetch
                               : 2 * c->cfg->gpus_per_node * c->model->batch_max_size;
            /* never more than a node's queue holds: a delivery it must refuse
             * would lose the message */
            if (prefetch > c->cfg->queue_capacity)
                prefetch = c->cfg->queue_capacity;
            for (int l = 0; l < eng_world.n_l7; l++)
                for (int j = 0; j < c->n_hosts; j++) {
                    lb_server_view *v = &c->lbi[l].servers[j];
                    if (v->max_conns == 0 || v->max_conns > prefetch)
                        v->max_conns = prefetch;
                }
        }
    }
}

void pipe_free(void)
{
    for (int i = 0; i < eng_world.sc->n_caches; i++)
        gsl_rng_free(eng_world.caches[i].rng);
    for (int i = 0; i < eng_world.sc->n_queues; i++) {
        free(eng_world.queues[i].backlog_per_interval);
        sim_hist_free(eng_world.queues[i].lag);
    }
    free(eng_world.caches);
    free(eng_world.queues);
    eng_world.caches = NULL;
    eng_world.queues = NULL;
}

static void deliver(eng_queue *q, double now)
{
    double pt = q->cfg->processing_timeout_s;
    q->stalled = 0;
    while (q->q.len > 0 && !q->down && !q->stalled) {
        eng_req *r = q->q.head;
        r->stage_s = now;
        r->deadline_s = pt > 0 ? now + pt : INFINITY;
        r->in_pool = 1; /* counted in the consumer's in-flight while offered */
        eng_pool_inflight(q->consumer, now, +1);
        eng_fifo_pop(&q->q);
        if (eng_offer(q->consumer, r, now) != 0) {
            /* no room: back at the head, as it was; a consumer scaled to
             * zero is woken, as requests at the balancer wake it */
            if (eng_hook.cold_start_wait)
                eng_hook.cold_start_wait(q->consumer, now);
            eng_pool_inflight(q->consumer, now, -1);
            r->in_pool = 0;
            eng_fifo_push_head(&q->q, r);
            return;
        }
        q->delivered++; /* a delivery that failed at once came back: stalled */
    }
}

void pipe_deliver(eng_pool *p, double now)
{
    for (int i = 0; i < eng_world.sc->n_queues; i++)
        if (eng_world.queues[i].consumer == p)
            deliver(&eng_world.queues[i], now);
}

/* r enters pool stage `stage` at now: no server tried there yet. */
static void enter_stage(eng_req *r, int stage, eng_pool *p, double now, int in_pool)
{
    r->stage = stage;
    r->stage_s = now;
    r->node = -1;
    r->attempts = 0;
    r->n_tried = 0;
    r->lbq_deadline_s = INFINITY;
    eng_pool_enter(p, r, now, in_pool);
}

int pipe_requeue(eng_pool *p, eng_req *r, double now)
{
    const sc_pipeline *pl = eng_world.classes[r->tclass].pipe;
    int k = r->stage;
    if (!r->job || k < 1 || pl->stages[k - 1].kind != SC_STAGE_QUEUE)
        return 0;
    eng_queue *q = &eng_world.queues[pl->stages[k - 1].ref];
    eng_pool_leave(p, r, B_FAILED, now);
    enter_stage(r, k, q->consumer, now, 0);
    r->deadline_s = INFINITY;
    eng_fifo_push_head(&q->q, r);
    q->redelivered++;
    q->stalled = 1; /* the delivery in progress stops: no retrying it in a loop */
    return 1;
}

/* r, done with its stage at producer p, is published to q at now. A
 * refusal is the producer's error; an acknowledgement answers the client
 * (the first queue of its pipeline does), and r goes on as a job. */
static void publish(eng_queue *q, eng_pool *p, eng_req *r, int stage, double now)
{
    if (q->down || q->q.len >= q->cfg->capacity) {
        q->refused++;
        eng_req_end(p, r, q->down ? B_FAILED : B_REJECTED, now);
        return;
    }
    eng_pool_leave(p, r, B_COMPLETED, now);
    if (!r->job) {
        eng_req_answered(p, r, B_COMPLETED, now);
        r->job = 1 + (int)(q - eng_world.queues);
        r->acked_s = now;
    }
    enter_stage(r, stage, q->consumer, now, 0);
    r->deadline_s = INFINITY;
    eng_fifo_push(&q->q, r);
    q->published++;
    if (q->q.len > q->max_backlog)
        q->max_backlog = q->q.len;
    deliver(q, now);
}

void pipe_stage_done(eng_pool *p, eng_req *r, double t_s)
{
    const sc_pipeline *pl = eng_world.classes[r->tclass].pipe;
    int k = r->stage + 1;
    while (k < pl->n_stages && pl->stages[k].kind == SC_STAGE_CACHE) {
        eng_cache *c = &eng_world.caches[pl->stages[k].ref];
        int hit = !c->down && gsl_rng_uniform(c->rng) < c->cfg->hit_ratio;
        if (hit)
            c->hits++;
        else
            c->misses++;
        r->net_s += c->cfg->lookup_s;
        k += hit ? 2 : 1;
    }
    if (k >= pl->n_stages) { /* a hit skipped the last stage: answered */
        double lat = t_s - r->sent_s + r->net_s;
        if (r->sent_s + lat <= r->deadline_s)
            eng_req_end(p, r, B_COMPLETED, t_s);
        else
            eng_req_end(p, r, B_TIMED_OUT, r->deadline_s);
        return;
    }
    r->net_prev_s = r->net_s;
    const sc_stage *st = &pl->stages[k];
    if (st->kind == SC_STAGE_QUEUE) {
        publish(&eng_world.queues[st->ref], p, r, k + 1, t_s);
        return;
    }
    eng_pool_leave(p, r, B_COMPLETED, t_s);
    eng_pool *next = &eng_world.pools[st->ref];
    enter_stage(r, k, next, t_s, 1);
    ENG_NOTIFY(arrival, next, t_s);
    eng_route(next, r, t_s);
}

void pipe_job_end(eng_req *r, int bucket, double t_s)
{
    eng_queue *q = &eng_world.queues[r->job - 1];
    if (bucket == B_COMPLETED) {
        q->processed++;
        sim_hist_add(q->lag, t_s - r->acked_s);
    } else {
        q->lost++;
    }
}

void pipe_cache_down(int cache, int down)
{
    eng_world.caches[cache].down = down;
}

void pipe_queue_down(int queue, int down, int fault, int fault_rec, double now)
{
    eng_queue *q = &eng_world.queues[queue];
    q->down = down;
    if (down) {
        q->cause = fault;
        q->fault_rec = fault_rec;
    } else {
        if (q->cause == fault)
            q->cause = q->fault_rec = -1;
        deliver(q, now);
    }
}

void pipe_close_interval(size_t i)
{
    for (int k = 0; k < eng_world.sc->n_queues; k++)
        eng_world.queues[k].backlog_per_interval[i] = eng_world.queues[k].q.len;
}
