/*
 * control.h - actors that change the world: node lifecycles, scaling,
 * draining, crashes and health checks (lifecycle.c), the autoscalers
 * (autoscaling.c), dynamic weights (weights.c) and injected faults
 * (chaos.c, a const fault_ops table). They act through flow/ and model/.
 */
#ifndef FLEETSIM_CONTROL_H
#define FLEETSIM_CONTROL_H

#include "flow.h"

/* lifecycle.c */
void life_init_pool(eng_pool *p);          /* initial replicas ready at t = 0 */
void life_scale_to(eng_pool *p, int replicas, double now, const char *reason);
void life_crash(eng_node *n, double now, const char *why);
void life_recover(eng_node *n, double now);
/* A spot instance's interruption notice: the node leaves the balancer and
 * drains at once (as a node termination handler cordons and drains it on
 * the notice); notice_s later the instance is gone, failing what it still
 * holds, and its slot is off. A booting or crashed node is gone at once. */
void life_reclaim(eng_node *n, double now, double notice_s);
/* A fault takes away (on) or gives back the pool's capacity to add nodes:
 * while any holds it, no replica is placed (the scale-out waits, pending);
 * when the last ends, the pool is brought to its target. */
void life_capacity(eng_pool *p, int on, double now);
void life_worker_exited(eng_node *n);      /* a draining node's worker left */
void life_start_health_checks(eng_pool *p);
void life_account_end(double end_s);
void life_start_rollout(eng_pool *p);
void life_free_pool(eng_pool *p);          /* the node pool's state */

/* autoscaling.c */
void scale_start(void);
/* The LLM token hooks: what an autoscaled LLM pool's clients saw (the
 * sla_planner's observed load) */
void scale_llm_first_token(const eng_node *n, double ttft_s, int prompt_tokens);
void scale_llm_tokens(const eng_node *n, double itl_s, unsigned long count);
void scale_llm_finished(const eng_node *n, double e2e_s, double tpot_s, int output_tokens);
void scale_free(void);
/* A request found no ready replica: 1 if it should wait at the balancer
 * (an autoscaled pool cold-starting), after poking the autoscaler. */
int scale_buffer(eng_pool *p, double now);

/* weights.c */
void weights_start(eng_pool *p);

/* chaos.c */
void chaos_start(void);
/* flash crowds change the arrival-rate profile before the run starts */
void chaos_apply_rates(void);
void chaos_free(void);
/* The requests held for a client retry, for the end-of-run census
 * (eng_census_add). */
void chaos_census(unsigned long *requests, unsigned long *per_pool);
/* Every request or client retry reaching a pool's balancer (for `when`). */
void chaos_on_arrival(eng_pool *p, double now);
/* r ended in error at t_s: 1 if its client will resend it (retry_storm
 * active and attempts left), and r is now held until then. The caller
 * finishes with r (leaves its pool and L4 connection), then calls
 * chaos_clients_wake(): waking the clients' actor is a SimGrid simcall, so
 * that actor may run, and resend r, before the waker resumes. */
int chaos_client_retry(eng_pool *p, eng_req *r, double t_s);
void chaos_clients_wake(void);
/* The speed profile file for a host of the platform (pool, node), or NULL. */
const char *chaos_speed_file(int pool, int node);

#endif
