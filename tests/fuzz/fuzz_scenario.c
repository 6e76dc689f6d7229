/*
 * fuzz_scenario.c - fuzzes the scenario loader, sc_load(), the way
 * `fleetsim validate` calls it: the input is a scenario file. Lines at its
 * top of the form `#set key.path=value` (YAML comments, so the file reads
 * the same) are also passed as `--set` overrides. The scenario sits in a
 * folder where the files the shipped scenarios name exist (k8s/,
 * nginx/, prometheus/, the calibration and CSV fixtures of tests/sim/data),
 * so mutated seeds reach the readers of those files too.
 */
#include "fuzz.h"

#include "scenario.h"

#define MAX_SETS 8

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static int ready;
    if (!ready) {
        fz_link("k8s", "scenarios/k8s");
        fz_link("nginx", "scenarios/nginx");
        fz_link("prometheus", "scenarios/prometheus");
        fz_link("cpu-int8.json", "tests/sim/data/cpu-int8.json");
        fz_link("latencies.csv", "tests/sim/data/latencies.csv");
        fz_link("arrivals.csv", "tests/sim/data/arrivals.csv");
        ready = 1;
    }
    char path[512];
    fz_write(path, sizeof path, "s.yaml", data, size);

    /* `#set ...` lines at the top: overrides */
    char *text = fz_text(data, size);
    const char *sets[MAX_SETS];
    int n_sets = 0;
    for (char *line = text; n_sets < MAX_SETS && !strncmp(line, "#set ", 5);) {
        char *end = strchr(line, '\n');
        if (end)
            *end = '\0';
        sets[n_sets++] = line + 5;
        if (!end)
            break;
        line = end + 1;
    }
    sc_scenario *sc = sc_load(path, sets, n_sets, fz_err());
    sc_free(sc);
    free(text);
    return 0;
}
