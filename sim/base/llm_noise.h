/*
 * llm_noise.h - noise with memory on an LLM replica's step times: a
 * multiplicative factor per step, lognormal with mean 1, whose logarithm
 * is the sum of independent components, each a stationary AR(1) in time
 * (an Ornstein-Uhlenbeck process sampled at the steps' starts) with its
 * own coefficient of variation and correlation time: component k's log
 * factors at two steps dt apart are correlated exp(-dt / correlation_s_k).
 * Two components model a fast step-to-step jitter (milliseconds) and a
 * slow drift of the host's speed (tenths of a second) together.
 *
 * A replica plans several steps ahead (a horizon of identical decode
 * steps) and may run fewer than planned. The generator therefore draws its
 * innovations (standard normals) from its own GSL stream into a queue, one
 * per step in step order, lets a plan read factors ahead without moving
 * the committed state (llm_noise_plan, llm_noise_next), and keeps only
 * the steps that ran (llm_noise_commit): step n always uses innovation n,
 * however the steps were grouped, so one SimGrid activity per horizon and
 * one per step draw the same factors in the same order.
 */
#ifndef FLEETSIM_LLM_NOISE_H
#define FLEETSIM_LLM_NOISE_H

#include <gsl/gsl_rng.h>
#include <stddef.h>

typedef struct llm_noise llm_noise;

#define LLM_NOISE_MAX_COMPONENTS 4

/* One component: cv > 0, correlation_s >= 0 (0: independent steps). rng
 * is owned: freed with the generator. NULL when out of memory. */
llm_noise *llm_noise_new(double cv, double correlation_s, gsl_rng *rng);
/* Adds an independent component with its own stream (rng, owned), before
 * the first llm_noise_next: the factor's 1 + cv^2 is the product of the
 * components' 1 + cv_k^2, and the first component draws what it would
 * alone. -1 (rng not taken) when full or already drawn from. */
int llm_noise_add(llm_noise *nz, double cv, double correlation_s, gsl_rng *rng);
void llm_noise_free(llm_noise *nz);

/* Starts a plan from the committed state: the next llm_noise_next is the
 * first step after the last one committed. */
void llm_noise_plan(llm_noise *nz);
/* The factor of the plan's next step, which starts at t0_s (t0_s not
 * before the previous step's start). */
double llm_noise_next(llm_noise *nz, double t0_s);
/* The plan's first k steps ran (k <= the steps planned): the state moves
 * past them, their innovations are spent, the rest stay queued for the
 * steps that follow. */
void llm_noise_commit(llm_noise *nz, int k);
/* Steps committed so far. */
unsigned long llm_noise_steps(const llm_noise *nz);

/* The lognormal's sigma for a cv: sqrt(ln(1 + cv^2)). */
double llm_noise_sigma(double cv);

#endif
