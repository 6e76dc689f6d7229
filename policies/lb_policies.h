/*
 * lb_policies.h - every load-balancing policy compiled into fleetsim_policies.
 *
 * Internal to policies/: the engine finds a policy by name through
 * lb_find()/lb_create() and never names one of these symbols. A new policy
 * adds its extern here and its entry in registry.c.
 */
#ifndef FLEETSIM_LB_POLICIES_H
#define FLEETSIM_LB_POLICIES_H

#include "lb.h"

extern const struct lb_ops lb_round_robin;
extern const struct lb_ops lb_weighted_round_robin;
extern const struct lb_ops lb_random;
extern const struct lb_ops lb_random_two_least_conn;
extern const struct lb_ops lb_least_conn;
extern const struct lb_ops lb_least_time;
extern const struct lb_ops lb_p2c_least_request;
extern const struct lb_ops lb_jsq;
extern const struct lb_ops lb_peak_ewma;
extern const struct lb_ops lb_hash;
extern const struct lb_ops lb_first;
extern const struct lb_ops lb_least_tokens;
extern const struct lb_ops lb_vllm_dp;
extern const struct lb_ops lb_prefix_affinity;
extern const struct lb_ops lb_kv_aware;

#endif
