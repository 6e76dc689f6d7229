/*
 * main.c - the realbench executable: everything is in rb_main (cli.c), so
 * that `fleetsim calibrate` reaches the same code through the library.
 */
#include "realbench.h"

int main(int argc, char **argv) { return rb_main(argc, argv); }
