/*
 * registry.c - the table of load-balancing policies, in the order
 * `fleetsim list` prints them. NULL-terminated; lb_find() scans it linearly
 * (a handful of entries).
 */
#include "lb_policies.h"

const struct lb_ops *const lb_registry[] = {
    &lb_round_robin,
    &lb_weighted_round_robin,
    &lb_random,
    &lb_random_two_least_conn,
    &lb_least_conn,
    &lb_least_time,
    &lb_p2c_least_request,
    &lb_jsq,
    &lb_peak_ewma,
    &lb_hash,
    &lb_first,
    &lb_least_tokens,
    &lb_vllm_dp,
    &lb_prefix_affinity,
    &lb_kv_aware,
    NULL,
};

/* Autoscaling policies (autoscale.h), in the order `fleetsim list` prints
 * them; as_find() scans it linearly. */
#include "as_policies.h"

const struct as_ops *const as_registry[] = {
    &as_hpa,
    &as_kpa,
    &as_threshold,
    &as_scheduled,
    &as_predictive,
    &as_sla_planner,
    NULL,
};
