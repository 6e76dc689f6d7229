/*
 * cli.h - what the files of the fleetsim command line share: the set-up
 * flags of the command table (main.c), the context a command is called
 * with, the commands, and the helpers more than one family needs.
 */
#ifndef FLEETSIM_CLI_H
#define FLEETSIM_CLI_H

#include "scenario.h"

#include <stdio.h>

/* Exit status of every command, one code per outcome so that a CI job can
 * tell them apart (main.c prints this table in the help). When several
 * apply, the first in this order wins: 3, 4, 130, 1, 5. */
enum {
    CLI_EXIT_OK = 0,
    CLI_EXIT_HYPOTHESIS = 1,   /* a steady-state hypothesis failed (the run's results are written) */
    CLI_EXIT_INPUT = 2,        /* bad input: scenario, options, files given */
    CLI_EXIT_CONSERVATION = 3, /* a run broke request conservation */
    CLI_EXIT_IO = 4,           /* an output could not be created or written */
    CLI_EXIT_SLO = 5,          /* --fail-on-slo and the SLO was missed */
    CLI_EXIT_DEVICE = 6,       /* calibrate: the device asked for is not there */
    CLI_EXIT_MEASURE = 7,      /* calibrate: a measurement or its correctness check failed */
    CLI_EXIT_INTERNAL = 70,    /* the engine could not be set up (sysexits' EX_SOFTWARE) */
    CLI_EXIT_NO_MEMORY = 71,   /* an allocation failed (sim/cli/alloc.c; sysexits' EX_OSERR) */
    CLI_EXIT_INTERRUPTED = 130 /* SIGINT: results so far written, marked "interrupted" */
};

/* Set-up main.c does before it calls a command, by the command's flags. */
enum {
    /* SCENARIO.yaml [--set key.path=value]...: the scenario is loaded into
     * cli_ctx.sc (exit 2 when it does not load) */
    CLI_SCENARIO = 1,
    /* with CLI_SCENARIO, the options of a run: --seed N (set on the
     * scenario), --out DIR, --quiet, --openmetrics FILE, --promtool-test FILE,
     * --fail-on-slo, --trace-steps FILE, --series */
    CLI_RUN_OPTS = 2,
};

typedef struct {
    int argc;                  /* the command's arguments; argv[0] is its name */
    char **argv;
    const char *scenario;      /* CLI_SCENARIO: the file, and what it loaded to */
    sc_scenario *sc;
    const char *out_dir;       /* CLI_RUN_OPTS; NULL when not given */
    int quiet;
    const char *openmetrics;   /* export every scraped series */
    const char *promtool_test; /* write a `promtool test rules` file */
    int fail_on_slo;           /* a missed SLO exits CLI_EXIT_SLO */
    const char *trace_steps;   /* a CSV line per LLM engine step */
    int series;                /* --series: write series.txt for `fleetsim query` */
} cli_ctx;

/* ---- argument parsing (args.c) ---- */

/* Does the command's argument list ask for its help (--help or -h, not
 * as the value of an option)? */
int cli_wants_help(int argc, char **argv);

/* What a scenario command's arguments give besides cli_ctx's fields. */
typedef struct {
    const char **sets;         /* the --set overrides in order (the strings are argv's) */
    int n_sets;
    int has_seed;              /* --seed N */
    unsigned long seed;
} cli_scenario_args;

/* Reads x->argv left to right: the scenario, --set overrides and, with
 * run_opts, a run's options (into x). 0, or -1 after a message on err;
 * free a with cli_scenario_args_free either way. */
int cli_parse_scenario_args(cli_ctx *x, int run_opts, cli_scenario_args *a, FILE *err);
void cli_scenario_args_free(cli_scenario_args *a);

/* compare and sweep: a grid of runs (compare.c). */
typedef struct {
    char *key;                 /* "pools.gpu.replicas" */
    char **values;
    int n_values;
} cli_vary;

typedef struct {
    const char **scenarios;
    int n_scenarios;
    cli_vary *vary;
    int n_vary;
    const char **sets;
    int n_sets;
    int seeds;
    int has_seed;
    unsigned long seed;
    int jobs;
    int shard_k, shard_n;      /* 1-based shard of n; 0/0: all */
    const char *out_dir;
    const char *reference;
} cli_grid_args;


/* At most this many runs in one grid (scenarios x --vary combinations x
 * seeds). */
#define CLI_MAX_RUNS 1000000

/* Parses compare's (sweep: sweep's) arguments. 0, or -1 after a message on
 * err; free g with cli_grid_args_free either way. */
int cli_parse_grid_args(int argc, char **argv, cli_grid_args *g, int sweep, FILE *err);
void cli_grid_args_free(cli_grid_args *g);

/* The commands (main.c's table); each returns the exit status. */
int cli_run(const cli_ctx *x);
int cli_validate(const cli_ctx *x);
int cli_compare(const cli_ctx *x);
int cli_sweep(const cli_ctx *x);
int cli_merge(const cli_ctx *x);
int cli_list(const cli_ctx *x);
int cli_calibrate(const cli_ctx *x);
int cli_query(const cli_ctx *x);

/* Helpers (main.c). */
/* Creates dir and its parents (mkdir -p); -1 with errno set. */
int cli_mkdir_p(const char *dir);
/* The whole file as a string (free it), or NULL if it cannot be opened. */
char *cli_read_file(const char *path);

#endif
