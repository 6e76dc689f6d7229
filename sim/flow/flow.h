/*
 * flow.h - the data plane: a request's path from its traffic source through
 * the balancers (request.c), the pipeline's stages, caches and queues
 * (pipeline.c) and the L4 tier (tiers.c), to its outcome. Calls only
 * model/ below it; observers hear of outcomes through model/hooks.h.
 */
#ifndef FLEETSIM_FLOW_H
#define FLEETSIM_FLOW_H

#include "model.h"

void eng_req_end(eng_pool *p, eng_req *r, int bucket, double t_s);
/* The client has its answer (bucket) at t_s: the request's outcome, counted
 * once; eng_req_end calls it, and so does a queue that acknowledges. */
void eng_req_answered(eng_pool *p, eng_req *r, int bucket, double t_s);
/* An attempt of r failed with a connection-level error at now: retried on
 * another server when the balancer's retry rules allow, else failed (502). */
void eng_attempt_failed(eng_pool *p, eng_req *r, double now);
/* Whether a failed attempt of r may go to another server at now (on: the
 * failure is one the balancer retries), as nginx's proxy_next_upstream_tries
 * (0: every server once) and proxy_next_upstream_timeout (from when r reached
 * this stage) allow, never past the client's deadline
 * (nginx src/http/ngx_http_upstream.c, ngx_http_upstream_next). */
int eng_retry_allowed(const eng_pool *p, const eng_req *r, double now, int on);
void eng_route(eng_pool *p, eng_req *r, double now);
/* Sends r to a server of p that can take it now (a queue's delivery);
 * -1, doing nothing, when every server is busy or none is up (a node that
 * crashed, or every node across a partition, counts as not up). */
int eng_offer(eng_pool *p, eng_req *r, double now);
/* Reports an attempt's outcome to the balancer (l7) that sent it. */
void eng_lb_done(eng_pool *p, int l7, int server, double latency_s, lb_result result,
                 double now);
/* r left server s (answered, failed or expired): one connection fewer. */
void eng_lb_release(eng_pool *p, const eng_req *r, int s, double latency_s, lb_result result,
                    double now);
void eng_drain_balancer_queue(eng_pool *p, double now);
/* Server n finished r's work at t1: answered, or ended as its client or
 * connection allows. */
void eng_req_served(eng_pool *p, eng_node *n, eng_req *r, double t1);
/* A client resends r (a retry of the same request) now. */
void eng_resend(eng_req *r, double now);

/* A request entered pool p's stage at now (counted in its arrivals; in its
 * in-flight too when in_pool). */
void eng_pool_enter(eng_pool *p, eng_req *r, double now, int in_pool);
/* r left pool p's stage with this outcome at t_s, the request going on. */
void eng_pool_leave(eng_pool *p, eng_req *r, int bucket, double t_s);

/* The actor generating one traffic class's arrivals (argv[0]: its index). */
void eng_traffic_source(int argc, char *argv[]);

/* pipeline.c */
void pipe_init(void);
void pipe_free(void);
/* r finished its stage at pool p at t_s: on to the next stage, or done. */
void pipe_stage_done(eng_pool *p, eng_req *r, double t_s);
/* The consumer pool p has room: deliver what its queues hold. */
void pipe_deliver(eng_pool *p, double now);
/* Injected: a cache misses everything, a broker is down (or back). */
void pipe_cache_down(int cache, int down);
void pipe_queue_down(int queue, int down, int fault, int fault_rec, double now);
/* A job's delivery from a queue failed at the connection (its consumer
 * crashed, was cut off, errored): 1 when r went back to the head of the
 * queue in front of its stage, as an unacknowledged message is requeued. */
int pipe_requeue(eng_pool *p, eng_req *r, double now);
/* A job (r->job) finished its last stage, or failed, at t_s. */
void pipe_job_end(eng_req *r, int bucket, double t_s);
/* Closes an interval's queue backlog samples. */
void pipe_close_interval(size_t i);

/* tiers.c */
int tier_init(void);       /* before the pools: sets eng_world.n_l7; -1 on a bad policy */
void tier_free(void);
int tier_pick(eng_req *r, double now);
void tier_close(const eng_req *r, double now);
/* The L4 balancer picks r's L7 balancer (r->l7; 0 without two tiers): -1
 * when none is in rotation (r->l7 = -1) or the one picked is down. */
static inline int tier_enter(eng_req *r, double now)
{
    if (!eng_world.l4) {
        r->l7 = 0;
        return 0;
    }
    return tier_pick(r, now);
}
/* r's connection through the L4 closed (it ended, or its client resends). */
static inline void tier_leave(const eng_req *r, double now)
{
    if (eng_world.l4 && r->l7 >= 0)
        tier_close(r, now);
}
void tier_down(int l7, int on, int fault, int fault_rec, double now);
/* When r's client connection was cut by its L7 balancer going down after
 * r was sent (at or before now), else INFINITY; cause and rec (may be NULL)
 * get the fault and its record. An acknowledged job's client has its
 * answer: never cut. */
double tier_cut_at(const eng_req *r, double now, int *cause, int *rec);
static inline double tier_cut(const eng_req *r, double now)
{
    return eng_world.l4 && r->l7 >= 0 && !r->job && eng_world.l7[r->l7].n_down > 0
               ? tier_cut_at(r, now, NULL, NULL)
               : INFINITY;
}
/* r ended by its cut connection: a 502 at the cut, blamed on the fault. */
void tier_count_cut(const eng_req *r);
/* When the L4's health checks take an L7 balancer that failed at down_s
 * out of rotation. */
double tier_detected_at(double down_s);

#endif
