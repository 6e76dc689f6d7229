/*
 * args.c - the option parsing of the fleetsim commands, apart from what the
 * commands do, so that tests/fuzz/fuzz_cli.c can feed it any argument list:
 * a scenario command's arguments (run, validate: the scenario, --set
 * overrides, a run's options), a grid's (compare, sweep: scenarios, --vary,
 * --seeds, --shard, ...), and whether a command was asked for its help.
 * Each parser prints what is wrong on the stream it is given and returns
 * -1; none of them touches a file.
 */
#include "cli.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int parse_uint(FILE *err, const char *opt, const char *val, unsigned long *out)
{
    char *end;
    errno = 0;
    unsigned long v = strtoul(val, &end, 10);
    if (errno || *end || !*val || val[0] == '-') {
        fprintf(err, "fleetsim: %s: expected a non-negative integer, got \"%s\"\n", opt, val);
        return -1;
    }
    *out = v;
    return 0;
}


/* Options of any command that take a value: the word after one is its
 * value, never an option itself (`--out -h` writes to a folder "-h"). */
static const char *const WITH_VALUE[] = { "--set", "--seed", "--out", "--openmetrics",
                                          "--promtool-test", "--trace-steps", "--vary", "--seeds",
                                          "--jobs", "--reference", "--shard", "--device",
                                          "--model", NULL };

static int takes_value(const char *s)
{
    for (const char *const *w = WITH_VALUE; *w; w++)
        if (!strcmp(s, *w))
            return 1;
    return 0;
}

int cli_wants_help(int argc, char **argv)
{
    for (int i = 1; i < argc; i++) {
        if (takes_value(argv[i])) {
            i++;
            continue;
        }
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h"))
            return 1;
    }
    return 0;
}

/* --fast and --exact: the last one given sets simulation.mode, as the
 * --set override CLI_MODE_SET names, applied after every other. */
enum { CLI_MODE_FILE, CLI_MODE_FAST, CLI_MODE_EXACT };
static const char *const CLI_MODE_SET[] = { NULL, "simulation.mode=fast", "simulation.mode=exact" };

int cli_parse_scenario_args(cli_ctx *x, int run_opts, cli_scenario_args *a, FILE *err)
{
    int mode = CLI_MODE_FILE;
    memset(a, 0, sizeof *a);
    a->sets = calloc((size_t)x->argc + 1, sizeof *a->sets);
    if (a->sets == NULL) {
        fprintf(err, "fleetsim: out of memory\n");
        return -1;
    }
    for (int i = 1; i < x->argc; i++) {
        const char *s = x->argv[i];
        const char *val = NULL;
        if (!strcmp(s, "--set") ||
            (run_opts && (!strcmp(s, "--seed") || !strcmp(s, "--out") ||
                          !strcmp(s, "--openmetrics") || !strcmp(s, "--promtool-test") ||
                          !strcmp(s, "--trace-steps")))) {
            if (i + 1 >= x->argc) {
                fprintf(err, "fleetsim: %s needs a value\n", s);
                return -1;
            }
            val = x->argv[++i];
        } else if (!strncmp(s, "--set=", 6)) {
            s = "--set";
            val = x->argv[i] + 6;
        }
        if (!strcmp(s, "--set")) {
            a->sets[a->n_sets++] = val;
        } else if (run_opts && !strcmp(s, "--seed")) {
            if (parse_uint(err, s, val, &a->seed) != 0)
                return -1;
            a->has_seed = 1;
        } else if (run_opts && !strcmp(s, "--out")) {
            x->out_dir = val;
        } else if (run_opts && !strcmp(s, "--openmetrics")) {
            x->openmetrics = val;
        } else if (run_opts && !strcmp(s, "--promtool-test")) {
            x->promtool_test = val;
        } else if (run_opts && !strcmp(s, "--trace-steps")) {
            x->trace_steps = val;
        } else if (run_opts && !strcmp(s, "--quiet")) {
            x->quiet = 1;
        } else if (run_opts && !strcmp(s, "--fail-on-slo")) {
            x->fail_on_slo = 1;
        } else if (run_opts && !strcmp(s, "--series")) {
            x->series = 1;
        } else if (run_opts && (!strcmp(s, "--fast") || !strcmp(s, "--exact"))) {
            mode = s[2] == 'f' ? CLI_MODE_FAST : CLI_MODE_EXACT;
        } else if (s[0] == '-' && s[1]) {
            fprintf(err, "fleetsim: unknown option %s\n", s);
            return -1;
        } else if (!x->scenario) {
            x->scenario = s;
        } else {
            fprintf(err, "fleetsim: unexpected argument %s\n", s);
            return -1;
        }
    }
    if (!x->scenario) {
        fprintf(err, "fleetsim: no scenario given\n");
        return -1;
    }
    if (mode) /* over the file's simulation.mode and any --set of it */
        a->sets[a->n_sets++] = CLI_MODE_SET[mode];
    return 0;
}

void cli_scenario_args_free(cli_scenario_args *a)
{
    free(a->sets);
    a->sets = NULL;
}

void cli_grid_args_free(cli_grid_args *g)
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

static int parse_vary(FILE *err, const char *val, cli_vary *v)
{
    const char *eq = strchr(val, '=');
    if (!eq || eq == val || !eq[1]) {
        fprintf(err, "fleetsim: --vary: expected key.path=v1,v2,..., got \"%s\"\n", val);
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
        fprintf(err, "fleetsim: --vary %s: no values\n", v->key);
        free(v->key);
        free(v->values);
        return -1;
    }
    return 0;
}

int cli_parse_grid_args(int argc, char **argv, cli_grid_args *g, int sweep, FILE *err)
{
    int mode = CLI_MODE_FILE;
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
                    fprintf(err, "fleetsim: %s needs a value\n", s);
                    return -1;
                }
                val = argv[++i];
            }
        unsigned long u;
        if (!strcmp(s, "--vary")) {
            g->vary = realloc(g->vary, sizeof *g->vary * (size_t)(g->n_vary + 1));
            if (parse_vary(err, val, &g->vary[g->n_vary]) != 0)
                return -1;
            g->n_vary++;
        } else if (!strcmp(s, "--seeds")) {
            if (parse_uint(err, s, val, &u) != 0)
                return -1;
            if (u < 1 || u > 10000) {
                fprintf(err, "fleetsim: --seeds: expected 1..10000, got %lu\n", u);
                return -1;
            }
            g->seeds = (int)u;
        } else if (!strcmp(s, "--seed")) {
            if (parse_uint(err, s, val, &g->seed) != 0)
                return -1;
            g->has_seed = 1;
        } else if (!strcmp(s, "--set")) {
            g->sets[g->n_sets++] = val;
        } else if (!strcmp(s, "--jobs")) {
            if (parse_uint(err, s, val, &u) != 0)
                return -1;
            if (u < 1 || u > 1024) {
                fprintf(err, "fleetsim: --jobs: expected 1..1024, got %lu\n", u);
                return -1;
            }
            g->jobs = (int)u;
        } else if (!strcmp(s, "--out")) {
            g->out_dir = val;
        } else if (!strcmp(s, "--fast") || !strcmp(s, "--exact")) {
            mode = s[2] == 'f' ? CLI_MODE_FAST : CLI_MODE_EXACT;
        } else if (!strcmp(s, "--reference") && !sweep) {
            g->reference = val;
        } else if (!strcmp(s, "--shard") && sweep) {
            int k, n, used = 0;
            if (sscanf(val, "%d/%d%n", &k, &n, &used) != 2 || val[used] || n < 1 || k < 1 ||
                k > n) {
                fprintf(err, "fleetsim: --shard: expected K/N with 1 <= K <= N, got \"%s\"\n",
                        val);
                return -1;
            }
            g->shard_k = k;
            g->shard_n = n;
        } else if (s[0] == '-' && s[1]) {
            fprintf(err, "fleetsim: unknown option %s\n", s);
            return -1;
        } else {
            g->scenarios[g->n_scenarios++] = s;
        }
    }
    if (g->n_scenarios == 0) {
        fprintf(err, "fleetsim: no scenario given\n");
        return -1;
    }
    if (mode) /* over the files' simulation.mode and any --set of it */
        g->sets[g->n_sets++] = CLI_MODE_SET[mode];
    /* the grid's runs: refused before anything is allocated for them */
    double runs = (double)g->n_scenarios * g->seeds;
    for (int i = 0; i < g->n_vary; i++)
        runs *= g->vary[i].n_values;
    if (runs > CLI_MAX_RUNS) {
        fprintf(err, "fleetsim: %d scenario%s x the --vary combinations x %d seed%s is %.3g "
                "runs; at most %d\n", g->n_scenarios, g->n_scenarios == 1 ? "" : "s", g->seeds,
                g->seeds == 1 ? "" : "s", runs, CLI_MAX_RUNS);
        return -1;
    }
    if (sweep && (!g->shard_n || !g->out_dir)) {
        fprintf(err, "fleetsim: sweep needs --shard K/N and --out DIR\n");
        return -1;
    }
    return 0;
}

