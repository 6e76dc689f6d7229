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

#endif
