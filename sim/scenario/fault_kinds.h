/*
 * fault_kinds.h - the kinds of injected fault, listed once. Each row,
 * X(KIND, NAME), gives a value of sc_fault_kind (scenario.h) and the name
 * `chaos[].fault` takes; the loader (scenario_chaos.c) reads the names from
 * here, `fleetsim list` prints them and summary.json's faults[].kind carries
 * them. The loader's keys per kind and chaos.c's fault_ops are tables
 * indexed by the kind.
 */
#ifndef FLEETSIM_FAULT_KINDS_H
#define FLEETSIM_FAULT_KINDS_H

#define SC_FAULT_KINDS(X)                                                                          \
    /* host off; in-flight work fails; recovers through the lifecycle */                          \
    X(SC_FAULT_NODE_CRASH, "node_crash")                                                          \
    /* per node: up mtbf, down mttr, alternating */                                               \
    X(SC_FAULT_RANDOM_CRASH, "random_crash")                                                      \
    /* speed x factor (thermal throttling) */                                                     \
    X(SC_FAULT_SLOWDOWN, "slowdown")                                                              \
    /* node up but every request errors (500) */                                                  \
    X(SC_FAULT_GPU_ERROR, "gpu_error")                                                            \
    /* added one-way latency (factor = seconds) */                                                \
    X(SC_FAULT_NET_LATENCY, "network_latency")                                                    \
    /* balancer cannot reach the nodes: attempts fail */                                          \
    X(SC_FAULT_PARTITION, "partition")                                                            \
    /* each attempt fails with probability factor */                                              \
    X(SC_FAULT_ERROR_RATE, "error_rate")                                                          \
    /* every node in a zone crashes */                                                            \
    X(SC_FAULT_ZONE_OUTAGE, "zone_outage")                                                        \
    /* the pool's balancer is down (502), or one L7 balancer of a two-tier front end */           \
    X(SC_FAULT_LB_FAILURE, "lb_failure")                                                          \
    /* arrival rate x factor */                                                                   \
    X(SC_FAULT_FLASH_CROWD, "flash_crowd")                                                        \
    /* the pool's links at factor of their bandwidth */                                           \
    X(SC_FAULT_BANDWIDTH_CUT, "bandwidth_cut")                                                    \
    /* clients resend failed requests (retry_*) */                                                \
    X(SC_FAULT_RETRY_STORM, "retry_storm")                                                        \
    /* autoscaler's sampler and scraper get no samples */                                         \
    X(SC_FAULT_STALE_METRICS, "stale_metrics")                                                    \
    /* SimGrid speed profile file on the nodes' hosts */                                          \
    X(SC_FAULT_SPEED_PROFILE, "speed_profile")                                                    \
    /* on/off profile file: off = crash, on = reboot */                                           \
    X(SC_FAULT_STATE_PROFILE, "state_profile")                                                    \
    /* a pipeline cache misses every lookup */                                                    \
    X(SC_FAULT_CACHE_DOWN, "cache_down")                                                          \
    /* a pipeline queue's broker refuses and delivers nothing */                                  \
    X(SC_FAULT_BROKER_DOWN, "broker_down")                                                        \
    /* spot nodes reclaimed after a notice; no capacity to replace them for a while */            \
    X(SC_FAULT_SPOT_RECLAIM, "spot_reclaim")                                                      \
    /* the pool's cloud quota is used up: no node can be added */                                 \
    X(SC_FAULT_QUOTA_EXHAUSTED, "quota_exhausted")                                                \
    /* GPUs fall off the bus (XID 79): the replica holding one goes down */                       \
    X(SC_FAULT_GPU_FAILURE, "gpu_failure")                                                        \
    /* the pool's links off: KV transfers over them fail; attempts fail as in a partition */      \
    X(SC_FAULT_LINK_DOWN, "link_down")

#endif
