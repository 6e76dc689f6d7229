/*
 * lb_priority.h - Envoy's priority load: how a balancer whose hosts sit in
 * priority levels (an on-premises pool at priority 0, a cloud pool at 1)
 * shares requests between the levels from each level's healthy share.
 * A pure function of host counts, so it is tested on hand-computed cases
 * and the engine (sim/flow/request.c) only feeds it counts.
 *
 * Followed from envoy source/common/upstream/load_balancer_impl.cc
 * (LoadBalancerBase::recalculatePerPriorityState, distributeLoad,
 * recalculatePerPriorityPanic, recalculateLoadInTotalPanic, choosePriority,
 * isHostSetInPanic), with its integer arithmetic:
 * - a level's health is min(100, factor * healthy / hosts), factor the
 *   overprovisioning factor in percent (140 by default);
 * - the normalised total availability is min(100, sum of the levels'
 *   health); each level in turn takes min(what is left, health * 100 /
 *   total), and what rounding leaves goes to the first level with health;
 * - a level is in panic when under panic_threshold percent of its hosts are
 *   healthy (never while the total availability is 100); when every level
 *   is in panic the load follows the levels' host counts instead;
 * - with no healthy host anywhere and the threshold 0, all load goes to
 *   level 0 (which then has nothing to route to).
 * Envoy's degraded hosts are not modelled (a host is healthy or not).
 */
#ifndef FLEETSIM_LB_PRIORITY_H
#define FLEETSIM_LB_PRIORITY_H

#define LB_PRIORITY_FACTOR_PCT 140 /* Envoy's default overprovisioning factor */
#define LB_PRIORITY_PANIC_PCT 50   /* Envoy's default healthy_panic_threshold */
/* A factor under which one healthy host of a level (of up to 10,000) makes
 * it 100% healthy: all load to the first level with a healthy host, nginx's
 * primary-then-backup rule */
#define LB_PRIORITY_FACTOR_ALL_PCT 1000000

typedef struct {
    int hosts;    /* hosts in the level (healthy or not) */
    int healthy;  /* of those, healthy */
} lb_priority_level;

/* Fills load_pct[0..n-1] (summing to 100) and, when panic is not NULL,
 * panic[0..n-1] (1: that level is in panic mode). */
void lb_priority_load(const lb_priority_level *levels, int n, int factor_pct,
                      int panic_threshold_pct, int *load_pct, int *panic);
/* The level a request goes to: Envoy's choosePriority with hash % 100 + 1
 * against the cumulative load. */
int lb_priority_choose(const int *load_pct, int n, unsigned long hash);

#endif
