/*
 * fuzz_trace.c - fuzzes the scenario loader's reader of one-column CSV files:
 * the input is used both as an arrival trace (traffic[].arrivals.trace) and
 * as the measured latencies of an empirical service time
 * (models.<name>.service.samples).
 */
#include "fuzz.h"

#include "scenario.h"

static const char SCENARIO[] =
    "name: trace\n"
    "duration: 1h\n"
    "models:\n"
    "  m: {service: {distribution: empirical, samples: t.csv}}\n"
    "pools:\n"
    "  gpu: {model: m, replicas: 1}\n"
    "traffic:\n"
    "  - {name: api, pool: gpu, arrivals: {process: trace, trace: t.csv}}\n";

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char path[512], scenario[512];
    fz_write(path, sizeof path, "t.csv", data, size);
    fz_write(scenario, sizeof scenario, "s.yaml", (const uint8_t *)SCENARIO, sizeof SCENARIO - 1);
    sc_free(sc_load(scenario, NULL, 0, fz_err()));
    return 0;
}
