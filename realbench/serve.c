/*
 * serve.c - closed-loop serving test (in progress).
 */
#include "realbench.h"

int rb_serve_main(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    fprintf(stderr, "realbench serve: not built yet\n");
    return 1;
}
