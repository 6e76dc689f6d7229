/*
 * main.c - the fleetsim command line: a table of commands (as git.c does),
 * from which `help` is printed, so it cannot drift. A command's flags name
 * the set-up done here before it is called (as git.c's RUN_SETUP): loading
 * its scenario with the --set overrides, and reading a run's options. The
 * commands live in one file per family: run.c (run, validate), compare.c
 * (compare, sweep, merge), tools.c (list, calibrate), query.c (query).
 *
 * Exit status: one code per outcome, listed in cli.h (CLI_EXIT_*) and in
 * the help.
 */
#include "cli.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static int help(const cli_ctx *x);

static const struct {
    const char *name;
    int (*fn)(const cli_ctx *x);
    int flags;                 /* CLI_*: set-up before fn */
    const char *usage;
    const char *summary;
} commands[] = {
    { "run", cli_run, CLI_SCENARIO | CLI_RUN_OPTS,
      "run SCENARIO.yaml [--seed N] [--out DIR] [--set key.path=value]... [--quiet] "
      "[--openmetrics FILE] [--promtool-test FILE] [--trace-steps FILE] [--series] [--fail-on-slo] "
      "[--fast | --exact]",
      "simulate a scenario; write summary.json, timeseries.csv, events.jsonl, report.html; "
      "--series also writes series.txt, every scraped and recorded sample, for `fleetsim query`, "
      "and metrics.prom, the last scrape in the Prometheus text format; "
      "--trace-steps FILE writes a CSV line per engine step of every LLM replica (time_s, "
      "pool, node, replica, step, duration_s, prefill_tokens, decode_requests, "
      "context_tokens, running, waiting, kv_blocks_used); --fail-on-slo exits 5 when the "
      "SLO is missed; --fast / --exact set simulation.mode over the scenario's (fast: "
      "arrivals delivered once per simulation.arrival_quantum, within the bound "
      "scenarios/README.md states; exact, the default: every arrival on its own)" },
    { "validate", cli_validate, CLI_SCENARIO, "validate SCENARIO.yaml [--set key.path=value]...",
      "check a scenario and its overrides without running it" },
    { "compare", cli_compare, 0,
      "compare SCENARIO.yaml... [--vary key.path=v1,v2,...]... [--seeds N] [--seed BASE] "
      "[--set key.path=value]... [--jobs N] [--reference FILE] [--out DIR] [--fast | --exact]",
      "run each scenario (and each --vary combination) over N seeds (default 5) in parallel; "
      "write compare.json, compare.md, compare.html with 95% confidence intervals; "
      "--fast / --exact set every run's simulation.mode, as for run" },
    { "sweep", cli_sweep, 0,
      "sweep SCENARIO.yaml... [--vary key.path=v1,v2,...]... [--seeds N] [--seed BASE] "
      "[--set key.path=value]... --shard K/N [--jobs N] --out DIR [--fast | --exact]",
      "run shard K of N of a compare grid; write one JSON line per run to "
      "DIR/shard-K-of-N.jsonl" },
    { "merge", cli_merge, 0, "merge DIR... [--reference FILE] [--out DIR]",
      "join the .jsonl records of sweep shards into compare.json, compare.md, compare.html" },
    { "query", cli_query, 0,
      "query RUN_DIR EXPR [--at T | --start T --end T --step S] [--format table|json|csv]",
      "evaluate a PromQL expression over the series a run wrote (run --series): at T (default "
      "the last scrape), or from --start to --end by --step; times in the run's seconds or as "
      "durations (90, 1m30s); json is shaped as Prometheus's HTTP API" },
    { "list", cli_list, 0, "list", "list the registered policies and the fault kinds" },
    { "calibrate", cli_calibrate, 0,
      "calibrate --device cpu|cuda --model realbench/models/X.yaml --out PROFILE.json",
      "measure service times on real kernels and write a calibration profile" },
    { "help", help, 0, "help", "show this help (`fleetsim COMMAND --help`: one command's)" },
};
#define N_COMMANDS (sizeof commands / sizeof commands[0])

static void usage(FILE *out)
{
    fprintf(out, "usage: fleetsim COMMAND [ARGS]   (fleetsim --version, fleetsim COMMAND --help)\n\n"
                 "commands:\n");
    for (size_t i = 0; i < N_COMMANDS; i++)
        fprintf(out, "  %-10s %s\n             fleetsim %s\n", commands[i].name,
                commands[i].summary, commands[i].usage);
    fprintf(out, "\nexit status:\n"
                 "  0    ok\n"
                 "  1    a steady-state hypothesis failed (results written)\n"
                 "  2    bad input (scenario, options, files given)\n"
                 "  3    request conservation broken\n"
                 "  4    an output could not be created or written\n"
                 "  5    the SLO was missed (run --fail-on-slo)\n"
                 "  6    calibrate: no such device\n"
                 "  7    calibrate: a measurement or correctness check failed\n"
                 "  70   the engine could not be set up\n"
                 "  71   out of memory\n"
                 "  130  interrupted (SIGINT); results so far written, marked interrupted\n"
                 "when several apply: 3, then 4, 130, 1, 5\n");
}

static int help(const cli_ctx *x)
{
    (void)x;
    usage(stdout);
    return 0;
}

/* CLI_SCENARIO: reads the arguments (args.c) and loads the scenario.
 * 0, or -1 after a message. */
static int load_scenario(cli_ctx *x, int run_opts)
{
    cli_scenario_args a;
    int bad = cli_parse_scenario_args(x, run_opts, &a, stderr) != 0;
    if (!bad) {
        x->sc = sc_load(x->scenario, a.sets, a.n_sets, stderr);
        if (x->sc && a.has_seed)
            x->sc->seed = a.seed;
        bad = !x->sc;
    }
    cli_scenario_args_free(&a);
    return bad ? -1 : 0;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        usage(stderr);
        return 2;
    }
    const char *name = argv[1];
    if (!strcmp(name, "--help") || !strcmp(name, "-h"))
        name = "help";
    if (!strcmp(name, "--version") || !strcmp(name, "version")) {
        printf("fleetsim %s\n", FLEETSIM_VERSION);
        return 0;
    }
    for (size_t i = 0; i < N_COMMANDS; i++) {
        if (strcmp(commands[i].name, name))
            continue;
        cli_ctx x = { .argc = argc - 1, .argv = argv + 1 };
        if (cli_wants_help(x.argc, x.argv)) { /* `fleetsim run --help`: this command's help */
            printf("usage: fleetsim %s\n\n%s\n", commands[i].usage, commands[i].summary);
            return 0;
        }
        if ((commands[i].flags & CLI_SCENARIO) &&
            load_scenario(&x, commands[i].flags & CLI_RUN_OPTS) != 0)
            return 2;
        int rc = commands[i].fn(&x);
        sc_free(x.sc);
        return rc;
    }
    fprintf(stderr, "fleetsim: unknown command '%s'\n\n", argv[1]);
    usage(stderr);
    return 2;
}

/* ---------- helpers shared by the commands ---------- */

int cli_mkdir_p(const char *dir)
{
    char buf[4096];
    if (snprintf(buf, sizeof buf, "%s", dir) >= (int)sizeof buf)
        return -1;
    for (char *p = buf + 1; *p; p++) {
        if (*p == '/') {
            *p = '\0';
            if (mkdir(buf, 0777) != 0 && errno != EEXIST)
                return -1;
            *p = '/';
        }
    }
    if (mkdir(buf, 0777) != 0 && errno != EEXIST)
        return -1;
    return 0;
}

char *cli_read_file(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    char *buf = NULL;
    size_t len = 0, cap = 0, got;
    char chunk[8192];
    while ((got = fread(chunk, 1, sizeof chunk, f)) > 0) {
        if (len + got + 1 > cap) {
            cap = 2 * (len + got + 1);
            buf = realloc(buf, cap);
        }
        memcpy(buf + len, chunk, got);
        len += got;
    }
    fclose(f);
    if (!buf)
        buf = calloc(1, 1);
    buf[len] = '\0';
    return buf;
}
