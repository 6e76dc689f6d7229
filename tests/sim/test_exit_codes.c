/*
 * test_exit_codes.c - each outcome of `fleetsim run` has its own exit
 * status (sim/cli/cli.h): an unwritable results folder is refused before
 * the run (4), --fail-on-slo turns a missed SLO into 5, a failed chaos
 * hypothesis is 1, Ctrl-C stops a run, writes its results so far marked
 * interrupted and exits 130, calibrating a missing device is 6, sizes that
 * cannot fit are bad input (2) with the key named, an allocation that
 * fails is 71 with a message; and compare
 * treats a failed hypothesis as a result, with a verdict column.
 */
#include "testutil.h"

#include <CUnit/Basic.h>

#include <fcntl.h>
#include <math.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static void test_io_before_run(void)
{
    char *dir = tu_tmpdir();
    char log[4096];
    snprintf(log, sizeof log, "%s/log", dir);
    /* a 30-day run: refused at once, not after the simulation */
    time_t t0 = time(NULL);
    CU_ASSERT_EQUAL(tu_sh(log, "'%s' run '%s/scenarios/bank-peak.yaml' --set duration=30d "
                               "--out /proc/nope/results --quiet",
                         tu_bin(), tu_src()),
                    4);
    CU_ASSERT(time(NULL) - t0 < 20);
    char *msg = tu_read(log);
    CU_ASSERT(msg && strstr(msg, "cannot create /proc/nope/results"));
    free(msg);
    tu_done(dir);
}

/* Sizes that cannot fit are refused by validate (and run) with the
 * estimate and the key at fault, not met by a crash or a silent hang. */
static void test_sizes(void)
{
    char *dir = tu_tmpdir();
    char log[4096];
    snprintf(log, sizeof log, "%s/log", dir);
    const struct {
        const char *set, *where, *what;
    } cases[] = {
        { "duration=100000d", "--set[1]:1:10: duration:", "GB of time series" },
        { "duration=1e15d", "--set[1]:1:10: duration:", "intervals" },
        { "pools.gpu.replicas=100000000", "--set[1]:1:20: pools.gpu:", "GB of node state" },
        /* the rate an override set is blamed, not the file's traffic: line */
        { "traffic.0.arrivals.rate.0.qps=5e9", "--set[1]:1:31: traffic:", "requests over 86400 s" },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        for (int run = 0; run < 2; run++) {
            CU_ASSERT_EQUAL(tu_sh(log, "'%s' %s '%s/scenarios/bank-peak.yaml' --set %s%s%s",
                                 tu_bin(), run ? "run" : "validate", tu_src(), cases[i].set,
                                 run ? " --out " : "", run ? dir : ""),
                            2);
            char *msg = tu_read(log);
            CU_ASSERT(msg && strstr(msg, cases[i].where) && strstr(msg, cases[i].what));
            free(msg);
        }
    }
    tu_done(dir);
}

static void test_slo_and_hypothesis(void)
{
    char *dir = tu_tmpdir();
    char log[4096];
    snprintf(log, sizeof log, "%s/log", dir);
    /* an SLO no run can meet: a result (0) unless --fail-on-slo (5) */
    CU_ASSERT_EQUAL(tu_sh(log, "'%s' run '%s/scenarios/bank-peak.yaml' --set duration=2m "
                               "--set slo.latency_p99=1us --out '%s/a' --quiet",
                         tu_bin(), tu_src(), dir),
                    0);
    CU_ASSERT_EQUAL(tu_sh(log, "'%s' run '%s/scenarios/bank-peak.yaml' --set duration=2m "
                               "--set slo.latency_p99=1us --out '%s/b' --quiet --fail-on-slo",
                         tu_bin(), tu_src(), dir),
                    5);
    char path[4200];
    snprintf(path, sizeof path, "%s/b/summary.json", dir);
    struct stat st;
    CU_ASSERT_EQUAL(stat(path, &st), 0); /* results written all the same */
    /* a met SLO with --fail-on-slo: 0 */
    CU_ASSERT_EQUAL(tu_sh(log, "'%s' run '%s/scenarios/bank-peak.yaml' --set duration=2m "
                               "--set slo.latency_p99=10s --set slo.availability=0.5 "
                               "--out '%s/c' --quiet --fail-on-slo",
                         tu_bin(), tu_src(), dir),
                    0);
    /* the zone outage's hypothesis fails (the scenario's header says so) */
    CU_ASSERT_EQUAL(tu_sh(log, "'%s' run '%s/scenarios/chaos/zone-outage.yaml' --out '%s/d' --quiet",
                         tu_bin(), tu_src(), dir),
                    1);
    tu_done(dir);
}

/* An allocation that fails ends the run with a message and 71, not a
 * crash: a run that fits the machine's memory but not the process's limit
 * (ulimit -v), 2 GB of one-second time series under a 1 GB limit.
 * AddressSanitizer reserves terabytes of address space, so the sanitizer
 * build cannot run under such a limit. */
static void test_out_of_memory(void)
{
#ifndef FLEETSIM_SANITIZE
    char *dir = tu_tmpdir();
    char log[4096], yaml[4200];
    snprintf(log, sizeof log, "%s/log", dir);
    snprintf(yaml, sizeof yaml, "%s/big.yaml", dir);
    tu_write(yaml, "name: big\n"
                   "duration: 200d\n"
                   "interval: 1s\n"
                   "models:\n"
                   "  m:\n"
                   "    service: {distribution: exponential, base: 10ms}\n"
                   "pools:\n"
                   "  p: {model: m, replicas: 1, gpus_per_node: 1}\n"
                   "traffic:\n"
                   "  - {name: t, pool: p, arrivals: {process: poisson, rate: [{at: 0s, qps: 0.001}]}}\n");
    CU_ASSERT_EQUAL(tu_sh(log, "ulimit -v 1000000; '%s' run '%s' --out '%s/out' --quiet", tu_bin(),
                         yaml, dir),
                    71);
    char *msg = tu_read(log);
    CU_ASSERT(msg && strstr(msg, "fleetsim: out of memory: ") && strstr(msg, "bytes"));
    free(msg);
    /* the same scenario, shorter, fits the limit */
    CU_ASSERT_EQUAL(tu_sh(log, "ulimit -v 1000000; '%s' run '%s' --set duration=1d --out '%s/out' "
                               "--quiet",
                         tu_bin(), yaml, dir),
                    0);
    tu_done(dir);
#endif
}

static void sleep_s(double s)
{
    struct timespec ts = { (time_t)s, (long)((s - (double)(time_t)s) * 1e9) };
    nanosleep(&ts, NULL);
}

/* Starts `fleetsim run` on a long scenario, waits until it is simulating,
 * sends SIGINT and returns its exit status. */
static int interrupt_run(const char *out)
{
    char yaml[4200];
    snprintf(yaml, sizeof yaml, "%s.yaml", out);
    tu_write(yaml, "name: long\n"
                   "duration: 30d\n"
                   "interval: 1h\n"
                   "models:\n"
                   "  m:\n"
                   "    service: {distribution: exponential, base: 10ms}\n"
                   "pools:\n"
                   "  p: {model: m, replicas: 4, gpus_per_node: 1}\n"
                   "traffic:\n"
                   "  - {name: t, pool: p, arrivals: {process: poisson, rate: [{at: 0s, qps: 20}]}}\n"
                   "load_balancer: {policy: least_conn}\n");
    pid_t pid = fork();
    if (pid == 0) {
        int fd = open("/dev/null", O_WRONLY);
        dup2(fd, STDOUT_FILENO);
        dup2(fd, STDERR_FILENO);
        execl(tu_bin(), tu_bin(), "run", yaml, "--out", out, "--quiet", (char *)NULL);
        _exit(127);
    }
    /* the results folder is made just before the run starts */
    struct stat st;
    for (int i = 0; i < 200 && stat(out, &st) != 0; i++)
        sleep_s(0.05);
    sleep_s(0.5);
    kill(pid, SIGINT);
    int status;
    waitpid(pid, &status, 0);
    return WIFEXITED(status) ? WEXITSTATUS(status) : 1000 + WTERMSIG(status);
}

static void test_interrupt(void)
{
    char *dir = tu_tmpdir();
    char out[4200];
    snprintf(out, sizeof out, "%s/out", dir);
    CU_ASSERT_EQUAL(interrupt_run(out), 130);
    cJSON *s = tu_summary(out);
    CU_ASSERT_PTR_NOT_NULL(s);
    if (s) {
        CU_ASSERT(cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(s, "interrupted")));
        double t = tu_num(s, "sim_time_s");
        CU_ASSERT(t > 0 && t < 30 * 86400.0);
        /* conservation holds at the stop (the exit would be 3 otherwise) */
        double gen = tu_num(s, "requests.generated");
        double ends = tu_num(s, "requests.completed") + tu_num(s, "requests.rejected") +
                      tu_num(s, "requests.failed") + tu_num(s, "requests.timed_out") +
                      tu_num(s, "requests.in_flight_at_end");
        CU_ASSERT(gen > 0);
        CU_ASSERT_DOUBLE_EQUAL(gen, ends, 0);
        /* about 20 requests per simulated second: the stop time is the run's length */
        CU_ASSERT(fabs(gen / t - 20) < 5 * sqrt(20 / t) + 0.1);
        cJSON_Delete(s);
    }
    /* the time series stops where the run did */
    double v[2000];
    int n = tu_ts_column(dir, "offered_qps", v, 2000);
    CU_ASSERT(n > 0 && n < 720);
    tu_done(dir);
}

static void test_no_device(void)
{
    struct stat st;
    if (stat("/dev/nvidia0", &st) == 0) /* a GPU here: nothing to refuse */
        return;
    char *dir = tu_tmpdir();
    char log[4096];
    snprintf(log, sizeof log, "%s/log", dir);
    CU_ASSERT_EQUAL(tu_sh(log, "'%s' calibrate --device cuda --model '%s/realbench/models/risk-mlp.yaml' "
                               "--out '%s/p.json'",
                         tu_bin(), tu_src(), dir),
                    6);
    tu_done(dir);
}

static void test_compare_failing_experiment(void)
{
    char *dir = tu_tmpdir();
    char log[4096];
    snprintf(log, sizeof log, "%s/log", dir);
    /* slow-store's hypothesis fails with a queue too small to absorb the
     * slow store, and holds with the shipped one (its header says so); the
     * run cut after the fault (13-18 min) and its drain, for time */
    CU_ASSERT_EQUAL(tu_sh(log, "'%s' compare '%s/scenarios/chaos/slow-store.yaml' "
                               "--vary pipelines.scoring.stages.3.queue.capacity=10000,100000 "
                               "--set duration=19m --seeds 2 --jobs 2 --out '%s/cmp'",
                         tu_bin(), tu_src(), dir),
                    0);
    char path[4200];
    snprintf(path, sizeof path, "%s/cmp/compare.md", dir);
    char *md = tu_read(path);
    CU_ASSERT_PTR_NOT_NULL(md);
    if (md) {
        CU_ASSERT_PTR_NOT_NULL(strstr(md, " hypothesis |"));
        CU_ASSERT_PTR_NOT_NULL(strstr(md, "fails (0/2)"));
        CU_ASSERT_PTR_NOT_NULL(strstr(md, "holds (2/2)"));
        CU_ASSERT_PTR_NOT_NULL(strstr(md, "Cheapest variant for which it held in every seed: "
                                          "**pipelines.scoring.stages.3.queue.capacity=100000**"));
        free(md);
    }
    snprintf(path, sizeof path, "%s/cmp", dir);
    cJSON *c = NULL;
    snprintf(path, sizeof path, "%s/cmp/compare.json", dir);
    char *js = tu_read(path);
    c = js ? cJSON_Parse(js) : NULL;
    free(js);
    CU_ASSERT_PTR_NOT_NULL(c);
    if (c) {
        const cJSON *v0 = cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(c, "variants"), 0);
        CU_ASSERT_DOUBLE_EQUAL(tu_num(v0, "hypothesis.seeds_held"), 0, 0);
        CU_ASSERT_DOUBLE_EQUAL(tu_num(v0, "hypothesis.seeds"), 2, 0);
        cJSON_Delete(c);
    }
    tu_done(dir);
}

int main(void)
{
    if (CU_initialize_registry() != CUE_SUCCESS)
        return 1;
    CU_pSuite s = CU_add_suite("exit codes", NULL, NULL);
    CU_add_test(s, "unwritable results folder before the run", test_io_before_run);
    CU_add_test(s, "sizes that cannot fit", test_sizes);
    CU_add_test(s, "missed SLO and failed hypothesis", test_slo_and_hypothesis);
    CU_add_test(s, "an allocation that fails", test_out_of_memory);
    CU_add_test(s, "SIGINT keeps the results so far", test_interrupt);
    CU_add_test(s, "calibrate without the device", test_no_device);
    CU_add_test(s, "compare over a failing experiment", test_compare_failing_experiment);
    CU_basic_set_mode(CU_BRM_VERBOSE);
    CU_basic_run_tests();
    unsigned fails = CU_get_number_of_failures();
    CU_cleanup_registry();
    return fails ? 1 : 0;
}
