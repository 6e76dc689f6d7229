/*
 * engine.h - runs one scenario on SimGrid and fills an rp_results.
 *
 * SimGrid's engine is a process-wide singleton: sim_run() may be called once
 * per process. Tests that need several runs start the fleetsim binary.
 */
#ifndef FLEETSIM_ENGINE_H
#define FLEETSIM_ENGINE_H

#include "scenario.h"
#include "results.h"
#include "options.h"


/* 0 on success; -1 if the engine could not be set up (message on stderr). */
int sim_run(const sc_scenario *sc, const sim_options *opt, rp_results *out);

/* Asks a running sim_run() to stop at its next check (every 1/1000 of the
 * simulated duration) and return the results up to there, marked
 * interrupted. Async-signal-safe: a SIGINT handler may call it. */
void sim_request_stop(void);

/* 1 if a run of sc drops SimGrid's stack guard pages (contexts/guard-size:0):
 * when twice an upper bound on its actors (one per GPU slot, plus one per
 * pool and traffic class and a few) plus a reserve of 10,000 mappings
 * passes max_map_count, Linux's vm.max_map_count. */
int sim_unguarded_stacks(const sc_scenario *sc, long max_map_count);

#endif
