/*
 * as_policies.h - every autoscaling policy compiled into fleetsim_policies.
 *
 * Internal to policies/: the engine finds a policy by name through
 * as_find()/as_create() and never names one of these symbols. A new policy
 * adds its extern here and its entry in registry.c.
 */
#ifndef FLEETSIM_AS_POLICIES_H
#define FLEETSIM_AS_POLICIES_H

#include "autoscale.h"

extern const struct as_ops as_hpa;
extern const struct as_ops as_kpa;
extern const struct as_ops as_threshold;
extern const struct as_ops as_scheduled;
extern const struct as_ops as_predictive;
extern const struct as_ops as_sla_planner;

#endif
