/*
 * fuzz_calibration.c - fuzzes the scenario loader's reader of calibration
 * profiles (models.<name>.service.calibration, the JSON realbench writes):
 * the input is the profile, named by a fixed scenario whose two models use
 * its int8 and fp32 precisions, one of them batching up to 64.
 */
#include "fuzz.h"

#include "scenario.h"

static const char SCENARIO[] =
    "name: calibration\n"
    "duration: 1h\n"
    "models:\n"
    "  a: {service: {calibration: p.json, precision: int8}, batch: {max_size: 64, max_wait: 5ms}}\n"
    "  b: {service: {calibration: p.json, precision: fp32}}\n"
    "pools:\n"
    "  pa: {model: a, replicas: 1}\n"
    "  pb: {model: b, replicas: 1}\n"
    "traffic:\n"
    "  - {name: ta, pool: pa, arrivals: {rate: 10}}\n"
    "  - {name: tb, pool: pb, arrivals: {rate: 10}}\n";

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char path[512], scenario[512];
    fz_write(path, sizeof path, "p.json", data, size);
    fz_write(scenario, sizeof scenario, "s.yaml", (const uint8_t *)SCENARIO, sizeof SCENARIO - 1);
    sc_scenario *sc = sc_load(scenario, NULL, 0, fz_err());
    for (int i = 0; sc && i < sc->n_models; i++)
        for (int b = 1; b <= 64; b *= 2)
            (void)sc_model_mean_s(&sc->models[i], b);
    sc_free(sc);
    return 0;
}
