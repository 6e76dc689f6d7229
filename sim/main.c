/*
 * main.c - the fleetsim command line: a table of subcommands (as git.c does),
 * from which `--help` and `list` are printed, so they cannot drift.
 *
 * Exit status: 0 success, 2 bad input (message on stderr), 3 a run broke
 * request conservation, 1 anything else (I/O).
 */
#include "engine.h"
#include "lb.h"
#include "realbench.h"
#include "report.h"
#include "scenario.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

typedef int cmd_fn(int argc, char **argv);

struct cmd {
    const char *name;
    cmd_fn *fn;
    const char *usage;
    const char *summary;
};

static int cmd_run(int argc, char **argv);
static int cmd_validate(int argc, char **argv);
static int cmd_list(int argc, char **argv);
static int cmd_calibrate(int argc, char **argv);
static int cmd_help(int argc, char **argv);

static const struct cmd commands[] = {
    { "run", cmd_run, "run SCENARIO.yaml [--seed N] [--out DIR] [--set key.path=value]... [--quiet]",
      "simulate a scenario; write summary.json, timeseries.csv, events.jsonl, report.html" },
    { "validate", cmd_validate, "validate SCENARIO.yaml [--set key.path=value]...",
      "check a scenario and its overrides without running it" },
    { "list", cmd_list, "list", "list the registered policies" },
    { "calibrate", cmd_calibrate,
      "calibrate --device cpu|cuda --model realbench/models/X.yaml --out PROFILE.json",
      "measure service times on real kernels and write a calibration profile" },
    { "help", cmd_help, "help", "show this help" },
};
#define N_COMMANDS (sizeof commands / sizeof commands[0])

static void usage(FILE *out)
{
    fprintf(out, "usage: fleetsim COMMAND [ARGS]\n\ncommands:\n");
    for (size_t i = 0; i < N_COMMANDS; i++)
        fprintf(out, "  %-10s %s\n             fleetsim %s\n", commands[i].name,
                commands[i].summary, commands[i].usage);
    fprintf(out, "\nexit status: 0 ok, 2 bad input, 3 request conservation broken\n");
}

static int cmd_help(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    usage(stdout);
    return 0;
}

static int cmd_list(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    printf("load-balancing policies (load_balancer.policy):\n");
    for (const struct lb_ops *const *o = lb_registry; *o; o++)
        printf("  %-14s %s\n", (*o)->name, (*o)->summary);
    return 0;
}

static int cmd_calibrate(int argc, char **argv)
{
    return rb_calibrate_main(argc, argv);
}

/* Options shared by run and validate. */
typedef struct {
    const char *scenario;
    const char *out_dir;
    const char **sets;
    int n_sets;
    int quiet;
    int has_seed;
    unsigned long seed;
} run_args;

static int parse_args(int argc, char **argv, run_args *a, int allow_run_opts)
{
    memset(a, 0, sizeof *a);
    a->sets = calloc((size_t)argc + 1, sizeof *a->sets);
    for (int i = 1; i < argc; i++) {
        const char *s = argv[i];
        const char *val = NULL;
        if (!strcmp(s, "--set") || (allow_run_opts && (!strcmp(s, "--seed") || !strcmp(s, "--out")))) {
            if (i + 1 >= argc) {
                fprintf(stderr, "fleetsim: %s needs a value\n", s);
                return -1;
            }
            val = argv[++i];
        } else if (!strncmp(s, "--set=", 6)) {
            s = "--set";
            val = argv[i] + 6;
        }
        if (!strcmp(s, "--set")) {
            a->sets[a->n_sets++] = val;
        } else if (allow_run_opts && !strcmp(s, "--seed")) {
            char *end;
            errno = 0;
            unsigned long v = strtoul(val, &end, 10);
            if (errno || *end || !*val || val[0] == '-') {
                fprintf(stderr, "fleetsim: --seed: expected a non-negative integer, got \"%s\"\n", val);
                return -1;
            }
            a->has_seed = 1;
            a->seed = v;
        } else if (allow_run_opts && !strcmp(s, "--out")) {
            a->out_dir = val;
        } else if (allow_run_opts && !strcmp(s, "--quiet")) {
            a->quiet = 1;
        } else if (s[0] == '-' && s[1]) {
            fprintf(stderr, "fleetsim: unknown option %s\n", s);
            return -1;
        } else if (!a->scenario) {
            a->scenario = s;
        } else {
            fprintf(stderr, "fleetsim: unexpected argument %s\n", s);
            return -1;
        }
    }
    if (!a->scenario) {
        fprintf(stderr, "fleetsim: no scenario given\n");
        return -1;
    }
    return 0;
}

static int mkdir_p(const char *dir)
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

static int cmd_validate(int argc, char **argv)
{
    run_args a;
    if (parse_args(argc, argv, &a, 0) != 0) {
        free(a.sets);
        return 2;
    }
    sc_scenario *sc = sc_load(a.scenario, a.sets, a.n_sets, stderr);
    free(a.sets);
    if (!sc)
        return 2;
    printf("%s: ok (%d models, %d pools, %d traffic classes)\n", a.scenario, sc->n_models,
           sc->n_pools, sc->n_traffic);
    sc_free(sc);
    return 0;
}

/* What the report shows from the scenario itself: its description, the
 * file's text, and each pool's throughput at full batches. */
static void add_scenario_context(rp_results *r, const sc_scenario *sc)
{
    if (sc->description && !r->description)
        r->description = strdup(sc->description);
    for (int k = 0; k < r->n_pools && k < sc->n_pools; k++) {
        const sc_pool *p = &sc->pools[k];
        const sc_model *m = &sc->models[p->model];
        int b = m->batch_max_size > 0 ? m->batch_max_size : 1;
        double mean_s = sc_model_mean_s(m, b);
        if (mean_s > 0)
            r->pools[k].node_capacity_qps = p->gpus_per_node * b / mean_s;
    }
}

static char *read_file(const char *path)
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

static int write_report(const rp_results *r, const char *dir, const char *scenario_path)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/report.html", dir);
    char *text = read_file(scenario_path);
    rp_report_opts o = { .scenario_path = scenario_path, .scenario_text = text };
    int rc = rp_write_report(r, &o, path);
    if (rc != 0)
        fprintf(stderr, "fleetsim: cannot write %s: %s\n", path, strerror(errno));
    free(text);
    return rc;
}

static int write_outputs(const rp_results *r, const char *dir)
{
    char path[4096];
    if (mkdir_p(dir) != 0) {
        fprintf(stderr, "fleetsim: cannot create %s: %s\n", dir, strerror(errno));
        return -1;
    }
    struct {
        const char *file;
        int (*write)(const rp_results *, const char *);
    } outs[] = { { "summary.json", rp_write_summary },
                 { "timeseries.csv", rp_write_timeseries },
                 { "events.jsonl", rp_write_events } };
    for (size_t i = 0; i < sizeof outs / sizeof outs[0]; i++) {
        snprintf(path, sizeof path, "%s/%s", dir, outs[i].file);
        if (outs[i].write(r, path) != 0) {
            fprintf(stderr, "fleetsim: cannot write %s: %s\n", path, strerror(errno));
            return -1;
        }
    }
    return 0;
}

static int cmd_run(int argc, char **argv)
{
    run_args a;
    if (parse_args(argc, argv, &a, 1) != 0) {
        free(a.sets);
        return 2;
    }
    sc_scenario *sc = sc_load(a.scenario, a.sets, a.n_sets, stderr);
    free(a.sets);
    if (!sc)
        return 2;
    if (a.has_seed)
        sc->seed = a.seed;
    sim_options opt = { .progress = !a.quiet && isatty(STDERR_FILENO) };
    rp_results res;
    if (sim_run(sc, &opt, &res) != 0) {
        sc_free(sc);
        return 1;
    }
    int rc = 0;
    if (!rp_conserved(&res.requests)) {
        const rp_counts *c = &res.requests;
        fprintf(stderr,
                "fleetsim: request conservation broken: generated %lu != completed %lu + "
                "rejected %lu + failed %lu + timed out %lu + in flight %lu\n",
                c->generated, c->completed, c->rejected, c->failed, c->timed_out,
                c->in_flight_at_end);
        rc = 3;
    }
    char dir[4096];
    if (a.out_dir)
        snprintf(dir, sizeof dir, "%s", a.out_dir);
    else
        snprintf(dir, sizeof dir, "results/%s", sc->name);
    add_scenario_context(&res, sc);
    if ((write_outputs(&res, dir) != 0 || write_report(&res, dir, a.scenario) != 0) && rc == 0)
        rc = 1;
    if (!a.quiet) {
        rp_print_table(&res, stdout);
        printf("results in %s/\n", dir);
    }
    rp_results_free(&res);
    sc_free(sc);
    return rc;
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
    for (size_t i = 0; i < N_COMMANDS; i++)
        if (!strcmp(commands[i].name, name))
            return commands[i].fn(argc - 1, argv + 1);
    fprintf(stderr, "fleetsim: unknown command '%s'\n\n", argv[1]);
    usage(stderr);
    return 2;
}
