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

#define SMALL(name_line, extra)                                                          \
    name_line "\n"                                                                      \
    "duration: 1m\n"                                                                     \
    "models:\n"                                                                          \
    "  m: {service: {distribution: exponential, mean: 1ms}}\n"                           \
    "pools:\n"                                                                           \
    "  p: {model: m, replicas: 1}\n"                                                     \
    "traffic:\n"                                                                         \
    "  - {name: t, pool: p, arrivals: {rate: 1}}\n" extra

/* A name is results/NAME: one that would write elsewhere is refused, and
 * nothing is written; a plain name still runs. */
static void test_name_stays_in_results(void)
{
    char *dir = tu_tmpdir(), *out = NULL;
    const char *bad[] = { "../../escape", "a/b", ".hidden", "..", "a\\\\b" };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char yaml[1024], path[4096];
        snprintf(yaml, sizeof yaml, SMALL("name: \"%s\"", ""), bad[i]);
        snprintf(path, sizeof path, "%s/s.yaml", dir);
        tu_write(path, yaml);
        CU_ASSERT_EQUAL(fleetsim(dir, &out, "run s.yaml --quiet"), 2);
        CU_ASSERT(out && strstr(out, "s.yaml:1:7: name: ") && strstr(out, "cannot name a results folder"));
        free(out);
    }
    char check[4200];
    snprintf(check, sizeof check, "test -e '%s/../escape' || test -e '%s/results'", dir, dir);
    CU_ASSERT_NOT_EQUAL(tu_sh(NULL, "%s", check), 0);
    int rc;
    char *d = tu_run_yaml(SMALL("name: fine-name.v2", ""), NULL, &rc);
    CU_ASSERT_EQUAL(rc, 0);
    tu_done(d);
    tu_done(dir);
}

/* Files that are not what they should be say what they are. */
static void test_file_messages(void)
{
    char *dir = tu_tmpdir(), *out = NULL;
    CU_ASSERT_EQUAL(fleetsim(dir, &out, "validate ."), 2);
    CU_ASSERT(out && !strcmp(out, ".: is a directory, not a scenario file (give its .yaml file)\n"));
    free(out);
    char path[4096];
    snprintf(path, sizeof path, "%s/s.yaml", dir);
    tu_write(path, SMALL("name: x", "monitoring: {rules: nosuch.yml}\n"));
    CU_ASSERT_EQUAL(fleetsim(dir, &out, "validate s.yaml"), 2);
    CU_ASSERT(out && strstr(out, "monitoring.rules: cannot read rule file ") &&
              strstr(out, "nosuch.yml: No such file or directory"));
    free(out);
    tu_write(path, SMALL("name: x", "monitoring: {rules: .}\n"));
    CU_ASSERT_EQUAL(fleetsim(dir, &out, "validate s.yaml"), 2);
    CU_ASSERT(out && strstr(out, "cannot read rule file ") && strstr(out, ": it is a directory"));
    free(out);
    /* calibrate's missing options get fleetsim's message, not realbench's usage */
    CU_ASSERT_EQUAL(fleetsim(dir, &out, "calibrate --device cpu --model x.yaml"), 2);
    CU_ASSERT(out && !strncmp(out, "fleetsim: calibrate needs --out PROFILE.json", 44));
    CU_ASSERT(out && !strstr(out, "usage: realbench"));
    free(out);
    tu_done(dir);
}

/* 3,000 traffic classes of one name: 50 error lines, then the count. */
static void test_errors_capped(void)
{
    char *dir = tu_tmpdir(), *out = NULL;
    size_t cap = 64 * 3000 + 1024, n = 0;
    char *yaml = malloc(cap);
    n += (size_t)snprintf(yaml, cap, SMALL("name: x", ""));
    for (int i = 1; i < 3000; i++)
        n += (size_t)snprintf(yaml + n, cap - n, "  - {name: t, pool: p, arrivals: {rate: 1}}\n");
    char path[4096];
    snprintf(path, sizeof path, "%s/s.yaml", dir);
    tu_write(path, yaml);
    free(yaml);
    CU_ASSERT_EQUAL(fleetsim(dir, &out, "validate s.yaml"), 2);
    int lines = 0;
    for (const char *p = out; p && *p; p++)
        lines += *p == '\n';
    CU_ASSERT_EQUAL(lines, 51);
    CU_ASSERT(out && strstr(out, "s.yaml:58:12: traffic.50: duplicate traffic name \"t\" (also item 0)\n"));
    CU_ASSERT(out && strstr(out, "s.yaml: 2949 more errors not shown (2999 in all)\n"));
    free(out);
    tu_done(dir);
}

/* Costs carry their currency: USD unless cost.currency names another. */
static void test_currency(void)
{
    int rc;
    char *dir = tu_run_yaml(SMALL("name: x", "cost: {currency: EUR}\n"), NULL, &rc);
    CU_ASSERT_EQUAL(rc, 0);
    cJSON *j = tu_out_summary(dir);
    CU_ASSERT_PTR_NOT_NULL_FATAL(j);
    const cJSON *c = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(j, "cost"),
                                                      "currency");
    CU_ASSERT(cJSON_IsString(c) && !strcmp(c->valuestring, "EUR"));
    cJSON_Delete(j);
    char path[4200];
    snprintf(path, sizeof path, "%s/out/report.html", dir);
    char *html = tu_read(path);
    CU_ASSERT(html && strstr(html, "<th>cost (EUR)</th>") != NULL);
    free(html);
    tu_done(dir);

    char *out = NULL;
    dir = tu_tmpdir();
    snprintf(path, sizeof path, "%s/s.yaml", dir);
    tu_write(path, SMALL("name: x", ""));
    CU_ASSERT_EQUAL(fleetsim(dir, &out, "run s.yaml --out o"), 0);
    CU_ASSERT(out && strstr(out, " kWh  0.05 USD\n"));
    free(out);
    snprintf(path, sizeof path, "%s/o", dir);
    j = tu_summary(path);
    CU_ASSERT_PTR_NOT_NULL_FATAL(j);
    CU_ASSERT_PTR_NULL(cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(j, "cost"),
                                                        "currency"));
    cJSON_Delete(j);
    tu_done(dir);
    CU_ASSERT(tu_expect_error(SMALL("name: x", "cost: {currency: euro}\n"), NULL,
                              "s.yaml:9:18: cost.currency: expected a three-letter ISO 4217 code"));
}

/* `fleetsim list`: every policy's summary starts in the same column. */
static void test_list_aligned(void)
{
    char *dir = tu_tmpdir(), *out = NULL;
    CU_ASSERT_EQUAL_FATAL(fleetsim(dir, &out, "list"), 0);
    int col = -1, rows = 0, aligned = 1;
    for (char *line = strtok(out, "\n"); line; line = strtok(NULL, "\n")) {
        if (strncmp(line, "  ", 2) || line[2] == ' ' || strchr(line, '(') == NULL)
            continue; /* a policy row: "  name   summary (...)" */
        char *gap = strstr(line + 2, "  ");
        if (!gap)
            continue;
        int c = (int)(gap + strspn(gap, " ") - line);
        if (col < 0)
            col = c;
        aligned &= c == col;
        rows++;
    }
    CU_ASSERT(rows >= 15);
    CU_ASSERT(aligned);
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
    CU_add_test(s, "the name stays inside results/", test_name_stays_in_results);
    CU_add_test(s, "files that are not what they should be", test_file_messages);
    CU_add_test(s, "fleetsim list is aligned", test_list_aligned);
    CU_add_test(s, "errors capped with a count", test_errors_capped);
    CU_add_test(s, "costs carry their currency", test_currency);
    CU_basic_set_mode(CU_BRM_VERBOSE);
    CU_basic_run_tests();
    unsigned fails = CU_get_number_of_failures();
    CU_cleanup_registry();
    return fails != 0;
}
