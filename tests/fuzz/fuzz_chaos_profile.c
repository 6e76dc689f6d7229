/*
 * fuzz_chaos_profile.c - fuzzes the scenario loader's reader of SimGrid
 * profile files (chaos[].file): the input is used both as a speed_profile
 * and as a state_profile.
 */
#include "fuzz.h"

#include "scenario.h"

static const char SCENARIO[] =
    "name: profile\n"
    "duration: 1h\n"
    "models:\n"
    "  m: {service: {mean: 10ms}}\n"
    "pools:\n"
    "  gpu: {model: m, replicas: 2}\n"
    "traffic:\n"
    "  - {name: api, pool: gpu, arrivals: {rate: 10}}\n"
    "chaos:\n"
    "  - {fault: speed_profile, file: p.txt, target: gpu/0}\n"
    "  - {fault: state_profile, file: p.txt, target: gpu/1}\n";

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char path[512], scenario[512];
    fz_write(path, sizeof path, "p.txt", data, size);
    fz_write(scenario, sizeof scenario, "s.yaml", (const uint8_t *)SCENARIO, sizeof SCENARIO - 1);
    sc_free(sc_load(scenario, NULL, 0, fz_err()));
    return 0;
}
