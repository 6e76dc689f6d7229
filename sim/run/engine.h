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

#endif
