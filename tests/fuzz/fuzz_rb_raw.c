/*
 * fuzz_rb_raw.c - fuzzes realbench's reader of raw measurement CSV files
 * (realbench/profile.c, rb_raw_read_csv, as `realbench profile --raw`
 * calls it): the input is a raw CSV; what it reads is built into a
 * calibration profile (medians, spreads, the least-squares fit, speedups).
 */
#include "fuzz.h"

#include "realbench.h"

#include <cjson/cJSON.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char path[512];
    fz_write(path, sizeof path, "raw.csv", data, size);
    rb_raw raw;
    rb_raw_init(&raw);
    if (rb_raw_read_csv(&raw, path, fz_err()) == 0)
        cJSON_Delete(rb_profile_build(&raw, fz_err()));
    rb_raw_free(&raw);
    return 0;
}
