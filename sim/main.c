/*
 * main.c - the fleetsim command line: a table of subcommands (as git.c does),
 * from which `--help` and `list` are printed, so they cannot drift.
 *
 * Exit status: 0 success, 2 bad input (message on stderr), 3 a run broke
 * request conservation, 1 anything else (I/O).
 */
#include "autoscale.h"
#include "compare.h"
#include "engine.h"
#include "lb.h"
#include "realbench.h"
#include "report.h"
#include "scenario.h"

#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/wait.h>
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
static int cmd_compare(int argc, char **argv);
static int cmd_sweep(int argc, char **argv);
static int cmd_merge(int argc, char **argv);
static int cmd_help(int argc, char **argv);

static const struct cmd commands[] = {
    { "run", cmd_run, "run SCENARIO.yaml [--seed N] [--out DIR] [--set key.path=value]... [--quiet] "
      "[--openmetrics FILE] [--promtool-test FILE]",
      "simulate a scenario; write summary.json, timeseries.csv, events.jsonl, report.html" },
    { "validate", cmd_validate, "validate SCENARIO.yaml [--set key.path=value]...",
      "check a scenario and its overrides without running it" },
    { "compare", cmd_compare,
      "compare SCENARIO.yaml... [--vary key.path=v1,v2,...]... [--seeds N] [--seed BASE] "
      "[--set key.path=value]... [--jobs N] [--reference FILE] [--out DIR]",
      "run each scenario (and each --vary combination) over N seeds (default 5) in parallel; "
      "write compare.json, compare.md, compare.html with 95% confidence intervals" },
    { "sweep", cmd_sweep,
      "sweep SCENARIO.yaml... [--vary key.path=v1,v2,...]... [--seeds N] [--seed BASE] "
      "[--set key.path=value]... --shard K/N [--jobs N] --out DIR",
      "run shard K of N of a compare grid; write one JSON line per run to "
      "DIR/shard-K-of-N.jsonl" },
    { "merge", cmd_merge, "merge DIR... [--reference FILE] [--out DIR]",
      "join the .jsonl records of sweep shards into compare.json, compare.md, compare.html" },
    { "list", cmd_list, "list", "list the registered policies and the fault kinds" },
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
    fprintf(out, "\nexit status: 0 ok, 1 a steady-state hypothesis failed, 2 bad input, 3 request "
                 "conservation broken\n");
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
    printf("\nautoscaling policies (autoscaler.policy):\n");
    for (const struct as_ops *const *o = as_registry; *o; o++)
        printf("  %-14s %s\n", (*o)->name, (*o)->summary);
    printf("\nfaults (chaos[].fault; keys in scenarios/README.md):\n ");
    for (int i = 0; sc_fault_name(i); i++)
        printf(" %s", sc_fault_name(i));
    printf("\n");
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
    const char *openmetrics;   /* run: export every scraped series */
    const char *promtool_test; /* run: write a `promtool test rules` file */
} run_args;

static int parse_args(int argc, char **argv, run_args *a, int allow_run_opts)
{
    memset(a, 0, sizeof *a);
    a->sets = calloc((size_t)argc + 1, sizeof *a->sets);
    for (int i = 1; i < argc; i++) {
        const char *s = argv[i];
        const char *val = NULL;
        if (!strcmp(s, "--set") ||
            (allow_run_opts && (!strcmp(s, "--seed") || !strcmp(s, "--out") ||
                                !strcmp(s, "--openmetrics") || !strcmp(s, "--promtool-test")))) {
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
        } else if (allow_run_opts && !strcmp(s, "--openmetrics")) {
            a->openmetrics = val;
        } else if (allow_run_opts && !strcmp(s, "--promtool-test")) {
            a->promtool_test = val;
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
    int n_pipes = 0;
    for (int i = 0; i < sc->n_pipelines; i++)
        n_pipes += !sc->pipelines[i].implicit;
    printf("%s: ok (%d models, %d pools, %d traffic classes", a.scenario, sc->n_models,
           sc->n_pools, sc->n_traffic);
    if (n_pipes)
        printf(", %d pipeline%s", n_pipes, n_pipes > 1 ? "s" : "");
    if (sc->n_routes)
        printf(", %d route%s", sc->n_routes, sc->n_routes > 1 ? "s" : "");
    if (sc->lb.n_l7)
        printf(", %d L7 balancers behind an L4", sc->lb.n_l7);
    printf(")\n");
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
                 { "events.jsonl", rp_write_events },
                 { "availability.csv", rp_write_availability } };
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
    if (a.promtool_test && sc->monitoring.n_rules == 0 && !sc->monitoring.slo_rules) {
        fprintf(stderr, "fleetsim: --promtool-test needs rules to test (monitoring.rules or "
                        "monitoring.slo_rules in the scenario)\n");
        sc_free(sc);
        return 2;
    }
    sim_options opt = { .progress = !a.quiet && isatty(STDERR_FILENO),
                        .openmetrics_path = a.openmetrics, .promtool_test_path = a.promtool_test };
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
    /* every pool's stage counts too: what arrived there is what left it plus
     * what it still holds (counted where it is held) */
    for (int k = 0; k < res.n_pools; k++)
        if (!rp_conserved(&res.pools[k].counts)) {
            const rp_counts *c = &res.pools[k].counts;
            fprintf(stderr,
                    "fleetsim: request conservation broken in pool %s: arrived %lu != completed "
                    "%lu + rejected %lu + failed %lu + timed out %lu + held %lu\n",
                    res.pools[k].name, c->generated, c->completed, c->rejected, c->failed,
                    c->timed_out, c->in_flight_at_end);
            rc = 3;
        }
    if (res.alerting.export_failed && rc == 0)
        rc = 1;
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
    if (res.hypotheses_met == 0) { /* a chaos experiment failed: say so even when quiet */
        if (a.quiet)
            rp_print_hypotheses(&res, stderr);
        if (rc == 0)
            rc = 1;
    }
    rp_results_free(&res);
    sc_free(sc);
    return rc;
}

/* ---------- compare, sweep, merge ----------
 *
 * A grid is every scenario file crossed with every combination of the --vary
 * values (the last --vary changing fastest); each grid point is a variant,
 * run once per seed. Runs are child processes (`fleetsim run`, exec'd from
 * /proc/self/exe), at most --jobs at a time (default: the number of cores),
 * each writing its own directory under OUT/runs/. The same seeds are used
 * for every variant (common random numbers), so differences between
 * variants are not masked by differences between seeds. */

typedef struct {
    char *key;                 /* "pools.gpu.replicas" */
    char **values;
    int n_values;
} vary;

typedef struct {
    const char **scenarios;
    int n_scenarios;
    vary *vary;
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
} grid_args;

typedef struct {
    int index;
    const char *scenario;
    char *label;
    const char **sets;         /* global --set, then this point's --vary values */
    int n_sets;
} grid_variant;

static void grid_args_free(grid_args *g)
{
    for (int i = 0; i < g->n_vary; i++) {
        free(g->vary[i].key);
        for (int j = 0; j < g->vary[i].n_values; j++)
            free(g->vary[i].values[j]);
        free(g->vary[i].values);
    }
    free(g->vary);
    free(g->scenarios);
    free(g->sets);
}

static int parse_uint(const char *opt, const char *val, unsigned long *out)
{
    char *end;
    errno = 0;
    unsigned long v = strtoul(val, &end, 10);
    if (errno || *end || !*val || val[0] == '-') {
        fprintf(stderr, "fleetsim: %s: expected a non-negative integer, got \"%s\"\n", opt, val);
        return -1;
    }
    *out = v;
    return 0;
}

static int parse_vary(const char *val, vary *v)
{
    const char *eq = strchr(val, '=');
    if (!eq || eq == val || !eq[1]) {
        fprintf(stderr, "fleetsim: --vary: expected key.path=v1,v2,..., got \"%s\"\n", val);
        return -1;
    }
    memset(v, 0, sizeof *v);
    v->key = strndup(val, (size_t)(eq - val));
    char *list = strdup(eq + 1), *save = NULL;
    for (char *tok = strtok_r(list, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
        v->values = realloc(v->values, sizeof *v->values * (size_t)(v->n_values + 1));
        v->values[v->n_values++] = strdup(tok);
    }
    free(list);
    if (v->n_values == 0) {
        fprintf(stderr, "fleetsim: --vary %s: no values\n", v->key);
        return -1;
    }
    return 0;
}

static int parse_grid_args(int argc, char **argv, grid_args *g, int sweep)
{
    memset(g, 0, sizeof *g);
    g->seeds = 5;
    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    g->jobs = cores > 0 ? (int)cores : 1;
    g->scenarios = calloc((size_t)argc + 1, sizeof *g->scenarios);
    g->sets = calloc((size_t)argc + 1, sizeof *g->sets);
    for (int i = 1; i < argc; i++) {
        const char *s = argv[i];
        static const char *const with_value[] = { "--vary", "--seeds", "--seed", "--set", "--jobs",
                                                  "--out", "--reference", "--shard" };
        const char *val = NULL;
        for (size_t k = 0; k < sizeof with_value / sizeof with_value[0]; k++)
            if (!strcmp(s, with_value[k])) {
                if (i + 1 >= argc) {
                    fprintf(stderr, "fleetsim: %s needs a value\n", s);
                    return -1;
                }
                val = argv[++i];
            }
        unsigned long u;
        if (!strcmp(s, "--vary")) {
            g->vary = realloc(g->vary, sizeof *g->vary * (size_t)(g->n_vary + 1));
            if (parse_vary(val, &g->vary[g->n_vary]) != 0)
                return -1;
            g->n_vary++;
        } else if (!strcmp(s, "--seeds")) {
            if (parse_uint(s, val, &u) != 0)
                return -1;
            if (u < 1 || u > 10000) {
                fprintf(stderr, "fleetsim: --seeds: expected 1..10000, got %lu\n", u);
                return -1;
            }
            g->seeds = (int)u;
        } else if (!strcmp(s, "--seed")) {
            if (parse_uint(s, val, &g->seed) != 0)
                return -1;
            g->has_seed = 1;
        } else if (!strcmp(s, "--set")) {
            g->sets[g->n_sets++] = val;
        } else if (!strcmp(s, "--jobs")) {
            if (parse_uint(s, val, &u) != 0)
                return -1;
            if (u < 1 || u > 1024) {
                fprintf(stderr, "fleetsim: --jobs: expected 1..1024, got %lu\n", u);
                return -1;
            }
            g->jobs = (int)u;
        } else if (!strcmp(s, "--out")) {
            g->out_dir = val;
        } else if (!strcmp(s, "--reference") && !sweep) {
            g->reference = val;
        } else if (!strcmp(s, "--shard") && sweep) {
            int k, n, used = 0;
            if (sscanf(val, "%d/%d%n", &k, &n, &used) != 2 || val[used] || n < 1 || k < 1 ||
                k > n) {
                fprintf(stderr, "fleetsim: --shard: expected K/N with 1 <= K <= N, got \"%s\"\n",
                        val);
                return -1;
            }
            g->shard_k = k;
            g->shard_n = n;
        } else if (s[0] == '-' && s[1]) {
            fprintf(stderr, "fleetsim: unknown option %s\n", s);
            return -1;
        } else {
            g->scenarios[g->n_scenarios++] = s;
        }
    }
    if (g->n_scenarios == 0) {
        fprintf(stderr, "fleetsim: no scenario given\n");
        return -1;
    }
    if (sweep && (!g->shard_n || !g->out_dir)) {
        fprintf(stderr, "fleetsim: sweep needs --shard K/N and --out DIR\n");
        return -1;
    }
    return 0;
}

/* Expands the grid, loading each variant once to check it (and to learn the
 * base seed and scenario names). NULL after printing errors. */
static grid_variant *expand_grid(grid_args *g, int *n_out)
{
    int points = 1;
    for (int i = 0; i < g->n_vary; i++)
        points *= g->vary[i].n_values;
    int n = g->n_scenarios * points;
    grid_variant *v = calloc((size_t)n, sizeof *v);
    int bad = 0;
    for (int f = 0; f < g->n_scenarios; f++) {
        for (int p = 0; p < points; p++) {
            grid_variant *x = &v[f * points + p];
            x->index = f * points + p;
            x->scenario = g->scenarios[f];
            x->sets = calloc((size_t)(g->n_sets + g->n_vary + 1), sizeof *x->sets);
            for (int i = 0; i < g->n_sets; i++)
                x->sets[x->n_sets++] = g->sets[i];
            rp_buf lab = { 0 };
            int rest = p;
            char **vals = calloc((size_t)g->n_vary + 1, sizeof *vals);
            for (int i = g->n_vary - 1; i >= 0; i--) { /* last --vary changes fastest */
                vals[i] = g->vary[i].values[rest % g->vary[i].n_values];
                rest /= g->vary[i].n_values;
            }
            for (int i = 0; i < g->n_vary; i++) {
                char *kv = malloc(strlen(g->vary[i].key) + strlen(vals[i]) + 2);
                sprintf(kv, "%s=%s", g->vary[i].key, vals[i]);
                x->sets[x->n_sets++] = kv;
                rp_buf_printf(&lab, "%s%s", i ? ", " : "", kv);
            }
            free(vals);
            sc_scenario *sc = sc_load(x->scenario, x->sets, x->n_sets, stderr);
            if (!sc) {
                bad = 1;
                rp_buf_free(&lab);
                x->label = strdup(x->scenario);
                continue;
            }
            if (!g->has_seed) {
                g->seed = sc->seed;
                g->has_seed = 1;
            }
            rp_buf name = { 0 };
            if (g->n_scenarios > 1 || g->n_vary == 0)
                rp_buf_puts(&name, sc->name);
            if (g->n_scenarios > 1 && g->n_vary > 0)
                rp_buf_puts(&name, ": ");
            if (lab.s)
                rp_buf_puts(&name, lab.s);
            x->label = name.s;
            rp_buf_free(&lab);
            sc_free(sc);
        }
    }
    *n_out = n;
    if (bad) {
        for (int i = 0; i < n; i++) {
            for (int k = g->n_sets; k < v[i].n_sets; k++)
                free((char *)v[i].sets[k]);
            free(v[i].sets);
            free(v[i].label);
        }
        free(v);
        return NULL;
    }
    return v;
}

static void grid_free(grid_variant *v, int n, const grid_args *g)
{
    for (int i = 0; v && i < n; i++) {
        for (int k = g->n_sets; k < v[i].n_sets; k++)
            free((char *)v[i].sets[k]);
        free(v[i].sets);
        free(v[i].label);
    }
    free(v);
}

typedef struct {
    const grid_variant *v;
    unsigned long seed;
    char dir[4096];
    pid_t pid;
    int status;                /* exit status, -1 if it did not exit */
} run_job;

static pid_t spawn_run(run_job *j)
{
    char log[4200], seed[32];
    snprintf(log, sizeof log, "%s/run.log", j->dir);
    snprintf(seed, sizeof seed, "%lu", j->seed);
    int argc = 0;
    const char **argv = calloc((size_t)(10 + 2 * j->v->n_sets), sizeof *argv);
    argv[argc++] = "fleetsim";
    argv[argc++] = "run";
    argv[argc++] = j->v->scenario;
    argv[argc++] = "--seed";
    argv[argc++] = seed;
    argv[argc++] = "--out";
    argv[argc++] = j->dir;
    argv[argc++] = "--quiet";
    for (int i = 0; i < j->v->n_sets; i++) {
        argv[argc++] = "--set";
        argv[argc++] = j->v->sets[i];
    }
    argv[argc] = NULL;
    fflush(NULL);
    pid_t pid = fork();
    if (pid == 0) {
        int fd = open(log, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        if (fd >= 0) {
            dup2(fd, STDOUT_FILENO);
            dup2(fd, STDERR_FILENO);
            close(fd);
        }
        execv("/proc/self/exe", (char *const *)argv);
        perror("fleetsim: exec /proc/self/exe");
        _exit(127);
    }
    free(argv);
    return pid;
}

/* Runs the jobs, at most `parallel` at a time; 0 when all exited 0. */
static int run_jobs(run_job *jobs, int n, int parallel)
{
    int next = 0, running = 0, done = 0, failed = 0;
    while (done < n) {
        while (running < parallel && next < n) {
            if (mkdir_p(jobs[next].dir) != 0) {
                fprintf(stderr, "fleetsim: cannot create %s: %s\n", jobs[next].dir,
                        strerror(errno));
                jobs[next].status = -1;
                failed++;
                done++;
                next++;
                continue;
            }
            jobs[next].pid = spawn_run(&jobs[next]);
            if (jobs[next].pid < 0) {
                perror("fleetsim: fork");
                jobs[next].status = -1;
                failed++;
                done++;
            } else {
                running++;
            }
            next++;
        }
        if (running == 0)
            continue;
        int st;
        pid_t pid = waitpid(-1, &st, 0);
        if (pid < 0) {
            if (errno == EINTR)
                continue;
            perror("fleetsim: waitpid");
            return -1;
        }
        for (int i = 0; i < n; i++) {
            if (jobs[i].pid != pid)
                continue;
            jobs[i].pid = 0;
            jobs[i].status = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
            running--;
            done++;
            fprintf(stderr, "[%d/%d] %s seed %lu: %s\n", done, n, jobs[i].v->label, jobs[i].seed,
                    jobs[i].status == 0 ? "done" : "FAILED");
            if (jobs[i].status != 0) {
                failed++;
                fprintf(stderr, "fleetsim: run failed (exit %d); its output is in %s/run.log\n",
                        jobs[i].status, jobs[i].dir);
            }
        }
    }
    return failed ? -1 : 0;
}

/* Runs this shard's share of the grid and returns the records (one per
 * run, in job order), or NULL on failure. */
static cJSON *run_grid(grid_args *g, const char *out_dir, int *rc)
{
    int nv;
    grid_variant *v = expand_grid(g, &nv);
    if (!v) {
        *rc = 2;
        return NULL;
    }
    int total = nv * g->seeds, n = 0;
    run_job *jobs = calloc((size_t)total, sizeof *jobs);
    for (int j = 0; j < total; j++) {
        if (g->shard_n && j % g->shard_n != g->shard_k - 1)
            continue;
        run_job *x = &jobs[n++];
        x->v = &v[j / g->seeds];
        x->seed = g->seed + (unsigned long)(j % g->seeds);
        snprintf(x->dir, sizeof x->dir, "%s/runs/v%d-seed%lu", out_dir, x->v->index, x->seed);
    }
    fprintf(stderr, "fleetsim: %d variant%s x %d seed%s = %d runs, %d at a time\n", nv,
            nv == 1 ? "" : "s", g->seeds, g->seeds == 1 ? "" : "s", total, g->jobs);
    if (g->shard_n)
        fprintf(stderr, "fleetsim: shard %d/%d runs %d of them\n", g->shard_k, g->shard_n, n);
    cJSON *records = NULL;
    if (run_jobs(jobs, n, g->jobs) != 0) {
        *rc = 1;
    } else {
        records = cJSON_CreateArray();
        for (int i = 0; i < n; i++) {
            cJSON *r = rp_run_record(jobs[i].dir, jobs[i].v->index, jobs[i].v->label,
                                     jobs[i].v->scenario, jobs[i].v->sets, jobs[i].v->n_sets,
                                     jobs[i].seed, stderr);
            if (!r) {
                *rc = 1;
                cJSON_Delete(records);
                records = NULL;
                break;
            }
            cJSON_AddItemToArray(records, r);
        }
    }
    free(jobs);
    grid_free(v, nv, g);
    return records;
}

static int write_jsonl(const cJSON *records, const char *path)
{
    FILE *f = fopen(path, "w");
    if (!f)
        return -1;
    const cJSON *r;
    cJSON_ArrayForEach(r, records)
    {
        char *line = cJSON_PrintUnformatted(r);
        fprintf(f, "%s\n", line);
        cJSON_free(line);
    }
    return fclose(f);
}

static cJSON *load_reference(const char *path)
{
    if (!path)
        return NULL;
    char *text = read_file(path);
    cJSON *j = text ? cJSON_Parse(text) : NULL;
    free(text);
    if (!j || !cJSON_IsArray(cJSON_GetObjectItemCaseSensitive(j, "columns")) ||
        !cJSON_IsArray(cJSON_GetObjectItemCaseSensitive(j, "rows"))) {
        fprintf(stderr, "fleetsim: %s: not a reference file (a JSON object with \"columns\" "
                        "and \"rows\" arrays; see reports/README.md)\n",
                path);
        cJSON_Delete(j);
        return NULL;
    }
    return j;
}

static int finish_compare(rp_compare *c, const char *dir, const char *reference)
{
    cJSON *ref = NULL;
    if (reference) {
        ref = load_reference(reference);
        if (!ref)
            return 2;
    }
    if (mkdir_p(dir) != 0) {
        fprintf(stderr, "fleetsim: cannot create %s: %s\n", dir, strerror(errno));
        cJSON_Delete(ref);
        return 1;
    }
    int rc = rp_compare_write(c, dir, ref, stderr) == 0 ? 0 : 1;
    cJSON_Delete(ref);
    if (rc == 0) {
        printf("compared %d variant%s: %s/compare.md, compare.html, compare.json\n",
               rp_compare_n_variants(c), rp_compare_n_variants(c) == 1 ? "" : "s", dir);
        const char *choice = rp_compare_slo_choice(c);
        if (choice)
            printf("cheapest variant that meets the SLO: %s\n", choice);
    }
    return rc;
}

static int cmd_compare(int argc, char **argv)
{
    grid_args g;
    if (parse_grid_args(argc, argv, &g, 0) != 0) {
        grid_args_free(&g);
        return 2;
    }
    if (g.reference) { /* fail before the runs, not after */
        cJSON *ref = load_reference(g.reference);
        int ok = ref != NULL;
        cJSON_Delete(ref);
        if (!ok) {
            grid_args_free(&g);
            return 2;
        }
    }
    char dir[4096];
    if (g.out_dir) {
        snprintf(dir, sizeof dir, "%s", g.out_dir);
    } else {
        const char *base = strrchr(g.scenarios[0], '/');
        base = base ? base + 1 : g.scenarios[0];
        snprintf(dir, sizeof dir, "results/compare-%.*s", (int)strcspn(base, "."), base);
    }
    int rc = 0;
    cJSON *records = run_grid(&g, dir, &rc);
    if (records) {
        char path[4200];
        snprintf(path, sizeof path, "%s/runs.jsonl", dir);
        if (write_jsonl(records, path) != 0)
            fprintf(stderr, "fleetsim: cannot write %s: %s\n", path, strerror(errno));
        rp_compare *c = rp_compare_new();
        const cJSON *r;
        cJSON_ArrayForEach(r, records)
        {
            if (rp_compare_add(c, r, stderr) != 0)
                rc = 1;
        }
        if (rc == 0)
            rc = finish_compare(c, dir, g.reference);
        rp_compare_free(c);
        cJSON_Delete(records);
    }
    grid_args_free(&g);
    return rc;
}

static int cmd_sweep(int argc, char **argv)
{
    grid_args g;
    if (parse_grid_args(argc, argv, &g, 1) != 0) {
        grid_args_free(&g);
        return 2;
    }
    int rc = 0;
    cJSON *records = run_grid(&g, g.out_dir, &rc);
    if (records) {
        char path[4200];
        snprintf(path, sizeof path, "%s/shard-%d-of-%d.jsonl", g.out_dir, g.shard_k, g.shard_n);
        if (write_jsonl(records, path) != 0) {
            fprintf(stderr, "fleetsim: cannot write %s: %s\n", path, strerror(errno));
            rc = 1;
        } else {
            printf("%d runs: %s\n", cJSON_GetArraySize(records), path);
        }
        cJSON_Delete(records);
    }
    grid_args_free(&g);
    return rc;
}

static int has_suffix(const char *s, const char *suffix)
{
    size_t a = strlen(s), b = strlen(suffix);
    return a >= b && !strcmp(s + a - b, suffix);
}

static int by_name(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static int cmd_merge(int argc, char **argv)
{
    const char *out = NULL, *reference = NULL;
    const char **dirs = calloc((size_t)argc + 1, sizeof *dirs);
    int n_dirs = 0;
    for (int i = 1; i < argc; i++) {
        if ((!strcmp(argv[i], "--out") || !strcmp(argv[i], "--reference")) && i + 1 < argc) {
            *(argv[i][2] == 'o' ? &out : &reference) = argv[i + 1];
            i++;
        } else if (argv[i][0] == '-' && argv[i][1]) {
            fprintf(stderr, "fleetsim: unknown option or missing value: %s\n", argv[i]);
            free(dirs);
            return 2;
        } else {
            dirs[n_dirs++] = argv[i];
        }
    }
    if (n_dirs == 0) {
        fprintf(stderr, "fleetsim: merge: no directories given\n");
        free(dirs);
        return 2;
    }
    rp_compare *c = rp_compare_new();
    int rc = 0, files = 0;
    for (int d = 0; d < n_dirs && rc == 0; d++) {
        DIR *dh = opendir(dirs[d]);
        if (!dh) {
            fprintf(stderr, "fleetsim: cannot open %s: %s\n", dirs[d], strerror(errno));
            rc = 2;
            break;
        }
        char **names = NULL;
        int n = 0;
        struct dirent *e;
        while ((e = readdir(dh)))
            if (has_suffix(e->d_name, ".jsonl")) {
                names = realloc(names, sizeof *names * (size_t)(n + 1));
                names[n++] = strdup(e->d_name);
            }
        closedir(dh);
        qsort(names, (size_t)n, sizeof *names, by_name);
        for (int i = 0; i < n; i++) {
            char path[4096];
            snprintf(path, sizeof path, "%s/%s", dirs[d], names[i]);
            if (rc == 0 && rp_compare_load_jsonl(c, path, stderr) != 0)
                rc = 2;
            files++;
            free(names[i]);
        }
        free(names);
    }
    if (rc == 0 && files == 0) {
        fprintf(stderr, "fleetsim: merge: no .jsonl files in the directories given\n");
        rc = 2;
    }
    if (rc == 0)
        rc = finish_compare(c, out ? out : dirs[0], reference);
    rp_compare_free(c);
    free(dirs);
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
