/*
 * fuzz_cli.c - fuzzes the command line's option parsing (sim/cli/args.c):
 * the input is an argument list, one argument per line, the first the
 * command (run, validate, compare, sweep, or anything else). run and
 * validate arguments go through cli_parse_scenario_args, compare and sweep
 * through cli_parse_grid_args, every list through cli_wants_help. When
 * they parse, the --set overrides (and each --vary's first value) are
 * applied to a small fixed scenario with sc_load, as main.c and compare.c
 * do, so the override paths and values are fuzzed too. Nothing is run and
 * no file is written.
 */
#include "fuzz.h"

#include "cli.h"

#define MAX_ARGS 64

static const char BASE[] =
    "name: fuzz-cli\n"
    "duration: 10m\n"
    "models:\n"
    "  m: {service: {distribution: exponential, mean: 10ms}, batch: {max_size: 4, max_wait: 1ms}}\n"
    "pools:\n"
    "  gpu: {model: m, replicas: 2}\n"
    "traffic:\n"
    "  - name: api\n"
    "    pool: gpu\n"
    "    arrivals: {rate: [{at: 0s, qps: 5}, {at: 5m, qps: 50, ramp: 1m}]}\n";

/* The fixed scenario with these overrides. */
static void load_with(const char *const *sets, int n_sets)
{
    static char path[512];
    if (!path[0])
        fz_write(path, sizeof path, "base.yaml", (const uint8_t *)BASE, sizeof BASE - 1);
    sc_scenario *sc = sc_load(path, sets, n_sets, fz_err());
    sc_free(sc);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *text = fz_text(data, size);
    char *argv[MAX_ARGS + 1];
    int argc = 0;
    for (char *p = text; argc < MAX_ARGS;) {
        argv[argc++] = p;
        char *nl = memchr(p, '\n', (size_t)(text + size - p));
        if (!nl)
            break;
        *nl = '\0';
        p = nl + 1;
    }
    argv[argc] = NULL;
    /* argv[0] is the command, as main.c passes it */
    cli_wants_help(argc, argv);
    int scenario_cmd = !strcmp(argv[0], "run") || !strcmp(argv[0], "validate");
    int grid_cmd = !strcmp(argv[0], "compare") || !strcmp(argv[0], "sweep");
    if (scenario_cmd) {
        cli_ctx x = { .argc = argc, .argv = argv };
        cli_scenario_args a;
        if (cli_parse_scenario_args(&x, !strcmp(argv[0], "run"), &a, fz_err()) == 0)
            load_with(a.sets, a.n_sets);
        cli_scenario_args_free(&a);
    } else if (grid_cmd) {
        cli_grid_args g;
        if (cli_parse_grid_args(argc, argv, &g, !strcmp(argv[0], "sweep"), fz_err()) == 0) {
            const char **sets = calloc((size_t)(g.n_sets + g.n_vary) + 1, sizeof *sets);
            char **owned = calloc((size_t)g.n_vary + 1, sizeof *owned);
            int n = 0;
            for (int i = 0; i < g.n_sets; i++)
                sets[n++] = g.sets[i];
            for (int i = 0; i < g.n_vary; i++) {
                size_t len = strlen(g.vary[i].key) + strlen(g.vary[i].values[0]) + 2;
                owned[i] = malloc(len);
                snprintf(owned[i], len, "%s=%s", g.vary[i].key, g.vary[i].values[0]);
                sets[n++] = owned[i];
            }
            load_with(sets, n);
            for (int i = 0; i < g.n_vary; i++)
                free(owned[i]);
            free(owned);
            free(sets);
        }
        cli_grid_args_free(&g);
    }
    free(text);
    return 0;
}
