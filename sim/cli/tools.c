/*
 * tools.c - `fleetsim list` (the registered balancing and autoscaling
 * policies and the fault kinds, each printed from its own table) and
 * `fleetsim calibrate` (realbench's measurement of real kernels).
 */
#include "autoscale.h"
#include "cli.h"
#include "lb.h"
#include "realbench.h"

#include <stdio.h>
#include <string.h>

int cli_list(const cli_ctx *x)
{
    (void)x;
    /* one column for the names of both registries, so the summaries align */
    int w = 0;
    for (const struct lb_ops *const *o = lb_registry; *o; o++)
        w = (int)strlen((*o)->name) > w ? (int)strlen((*o)->name) : w;
    for (const struct as_ops *const *o = as_registry; *o; o++)
        w = (int)strlen((*o)->name) > w ? (int)strlen((*o)->name) : w;
    printf("load-balancing policies (load_balancer.policy):\n");
    for (const struct lb_ops *const *o = lb_registry; *o; o++)
        printf("  %-*s  %s\n", w, (*o)->name, (*o)->summary);
    printf("\nautoscaling policies (autoscaler.policy):\n");
    for (const struct as_ops *const *o = as_registry; *o; o++)
        printf("  %-*s  %s\n", w, (*o)->name, (*o)->summary);
    printf("\nfaults (chaos[].fault; keys in scenarios/README.md):\n");
    int col = 0;
    for (int i = 0; sc_fault_name(i); i++) {
        int len = (int)strlen(sc_fault_name(i));
        if (col > 0 && col + 1 + len > 78) {
            printf("\n");
            col = 0;
        }
        col += printf("%s%s", col ? " " : "  ", sc_fault_name(i));
    }
    printf("\n");
    return 0;
}

/* Is option opt given with a value? */
static int has_option(const cli_ctx *x, const char *opt)
{
    for (int i = 1; i + 1 < x->argc; i++)
        if (!strcmp(x->argv[i], opt))
            return 1;
    return 0;
}

int cli_calibrate(const cli_ctx *x)
{
    static const struct {
        const char *opt, *what;
    } needed[] = {
        { "--device", "--device cpu|cuda (where to measure)" },
        { "--model", "--model realbench/models/X.yaml (what to measure)" },
        { "--out", "--out PROFILE.json (where to write the calibration profile)" },
    };
    for (size_t i = 0; i < sizeof needed / sizeof needed[0]; i++)
        if (!has_option(x, needed[i].opt)) {
            fprintf(stderr, "fleetsim: calibrate needs %s\nusage: fleetsim calibrate --device "
                            "cpu|cuda --model realbench/models/X.yaml --out PROFILE.json "
                            "(fleetsim calibrate --help)\n",
                    needed[i].what);
            return CLI_EXIT_INPUT;
        }
    /* realbench's own codes (realbench/cli.c): 1 failure, 2 bad input,
     * 3 no CUDA device, 4 a correctness check failed */
    switch (rb_calibrate_main(x->argc, x->argv)) {
    case 0:
        return CLI_EXIT_OK;
    case 2:
        return CLI_EXIT_INPUT;
    case 3:
        return CLI_EXIT_DEVICE;
    default:
        return CLI_EXIT_MEASURE;
    }
}
