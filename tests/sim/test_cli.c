/*
 * test_cli.c - the command line's smaller promises, through the binary:
 * --version, each command's own --help (and -h), an option's value never
 * taken for --help, a grid too large refused before it runs, and the
 * other checks of sim/cli/ that need no simulation to be seen.
 */
#include "testutil.h"

#include <CUnit/Basic.h>

/* Runs `fleetsim ARGS` with output in DIR/log; the exit status, and the
 * log in *out (free it). */
static int fleetsim(const char *dir, char **out, const char *args)
{
    char log[4096];
    snprintf(log, sizeof log, "%s/log", dir);
    int rc = tu_sh(log, "cd '%s' && '%s' %s", dir, tu_bin(), args);
    *out = tu_read(log);
    return rc;
}

static void test_version_and_help(void)
{
    char *dir = tu_tmpdir(), *out = NULL;
    CU_ASSERT_EQUAL(fleetsim(dir, &out, "--version"), 0);
    CU_ASSERT(out && !strncmp(out, "fleetsim ", 9) && strchr(out, '.'));
    free(out);
    const struct {
        const char *args, *usage;
    } cases[] = {
        { "run --help", "usage: fleetsim run SCENARIO.yaml" },
        { "compare --help", "usage: fleetsim compare SCENARIO.yaml..." },
        { "validate -h", "usage: fleetsim validate SCENARIO.yaml" },
        { "sweep x.yaml -h", "usage: fleetsim sweep SCENARIO.yaml..." },
        { "merge --help", "usage: fleetsim merge DIR..." },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        CU_ASSERT_EQUAL(fleetsim(dir, &out, cases[i].args), 0);
        CU_ASSERT(out && !strncmp(out, cases[i].usage, strlen(cases[i].usage)));
        CU_ASSERT(out && !strstr(out, "unknown option"));
        CU_ASSERT(out && !strstr(out, "commands:")); /* the command's help, not all of it */
        free(out);
    }
    /* after --out, -h is the folder's name: not a request for help */
    CU_ASSERT_EQUAL(fleetsim(dir, &out, "validate nosuch.yaml --out -h"), 2);
    CU_ASSERT(out && strstr(out, "unknown option --out"));
    free(out);
    tu_done(dir);
}

/* compare refuses a grid it could not hold before anything runs. */
static void test_grid_too_large(void)
{
    char *dir = tu_tmpdir(), *out = NULL;
    char args[8192];
    int n = snprintf(args, sizeof args, "compare s.yaml --seeds 10000");
    for (int i = 0; i < 8; i++)
        n += snprintf(args + n, sizeof args - (size_t)n, " --vary k%d=1,2,3,4,5", i);
    CU_ASSERT_EQUAL(fleetsim(dir, &out, args), 2);
    CU_ASSERT(out && strstr(out, "3.91e+09 runs; at most 1000000"));
    free(out);
    tu_done(dir);
}

int main(void)
{
    if (CU_initialize_registry() != CUE_SUCCESS)
        return 1;
    CU_pSuite s = CU_add_suite("cli", NULL, NULL);
    CU_add_test(s, "--version and each command's --help", test_version_and_help);
    CU_add_test(s, "a grid too large to run", test_grid_too_large);
    CU_basic_set_mode(CU_BRM_VERBOSE);
    CU_basic_run_tests();
    unsigned fails = CU_get_number_of_failures();
    CU_cleanup_registry();
    return fails != 0;
}
