/*
 * fuzz_rb_profile.c - fuzzes realbench's reader of calibration profiles
 * (realbench/profile.c, rb_profile_read) through `realbench table P.json`,
 * which reads one and prints every precision, batch and speedup in it: the
 * input is the profile. Standard output goes to /dev/null.
 */
#include "fuzz.h"

#include "realbench.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static int quiet;
    if (!quiet && !getenv("FLEETSIM_FUZZ_VERBOSE")) {
        if (!freopen("/dev/null", "w", stdout))
            abort();
        quiet = 1;
    }
    char path[512];
    fz_write(path, sizeof path, "profile.json", data, size);
    char *argv[] = {"realbench", "table", path, NULL};
    (void)rb_main(3, argv);
    fflush(stdout);
    return 0;
}
