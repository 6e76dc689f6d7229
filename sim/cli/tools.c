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

int cli_list(const cli_ctx *x)
{
    (void)x;
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

int cli_calibrate(const cli_ctx *x)
{
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
