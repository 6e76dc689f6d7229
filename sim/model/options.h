/*
 * options.h - how a run is watched and what it exports besides its results
 * (command-line options of `fleetsim run`), read by the observers.
 */
#ifndef FLEETSIM_OPTIONS_H
#define FLEETSIM_OPTIONS_H

typedef struct {
    int progress;          /* draw a progress bar on stderr */
    int stop_on_sigint;    /* a first SIGINT stops the run where it is (sim_request_stop) */
    const char *openmetrics_path;   /* --openmetrics: every scraped series; NULL = none */
    const char *promtool_test_path; /* --promtool-test: a `promtool test rules` file; NULL = none */
    const char *trace_steps_path;   /* --trace-steps: a CSV line per LLM engine step; NULL = none */
    const char *series_path;        /* --series: every sample of every series, for `fleetsim query` */
} sim_options;

#endif
