/*
 * registry.c - the table of load-balancing policies, in the order
 * `fleetsim list` prints them. NULL-terminated; lb_find() scans it linearly
 * (a handful of entries).
 */
#include "lb_policies.h"

const struct lb_ops *const lb_registry[] = {
    &lb_round_robin,
    &lb_random,
    &lb_least_conn,
    NULL,
};
