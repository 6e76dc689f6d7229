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

typedef struct {
    int progress;          /* draw a progress bar on stderr */
    const char *openmetrics_path;   /* --openmetrics: every scraped series; NULL = none */
    const char *promtool_test_path; /* --promtool-test: a `promtool test rules` file; NULL = none */
    const char *trace_steps_path;   /* --trace-steps: a CSV line per LLM engine step; NULL = none */
} sim_options;

/* 0 on success; -1 if the engine could not be set up (message on stderr). */
int sim_run(const sc_scenario *sc, const sim_options *opt, rp_results *out);

/* Arrival-rate profile as cumulative intensity, for time-rescaled arrivals. */
typedef struct sim_rate sim_rate;
sim_rate *sim_rate_new(const sc_rate_point *pts, int n);
void sim_rate_free(sim_rate *r);
double sim_rate_at(const sim_rate *r, double t_s);        /* instantaneous qps */
double sim_rate_cumulative(const sim_rate *r, double t_s); /* integral 0..t */
/* Smallest t with cumulative(t) >= target; INFINITY if never reached. */
double sim_rate_inverse(const sim_rate *r, double target);
/* Multiplies the rate by factor on [t0_s, t1_s) (t1_s may be INFINITY). */
void sim_rate_scale(sim_rate *r, double t0_s, double t1_s, double factor);

#endif
