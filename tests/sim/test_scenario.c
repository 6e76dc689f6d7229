/*
 * test_scenario.c - the scenario loader (sim/scenario.c): field values of a
 * good scenario, every default, `--set` overrides, relative paths,
 * calibration profiles, and for each class of bad input the exact
 * `file:line:col: message` line it produces.
 *
 * Scenarios are written to a fresh temporary directory; fixtures that must
 * sit next to a scenario on disk are in tests/sim/data/.
 */
#include "scenario.h"

#include "lb.h"

#include <CUnit/Basic.h>

#include <limits.h>
#include <stdarg.h>
#include <math.h>
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static char g_dir[PATH_MAX];   /* temporary directory of this run */
static char g_path[PATH_MAX];  /* scenario file last written */
static char g_data[PATH_MAX];  /* tests/sim/data */
static char *g_err;            /* error text of the last load */
static size_t g_err_len;

/* snprintf for paths and expected lines; truncation would only make a test
 * fail, which is what it should do. */
__attribute__((format(printf, 3, 4))) static void fmt(char *buf, size_t len, const char *f, ...)
{
    va_list ap;
    va_start(ap, f);
    vsnprintf(buf, len, f, ap);
    va_end(ap);
}

static void write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    CU_ASSERT_PTR_NOT_NULL_FATAL(f);
    fputs(text, f);
    fclose(f);
}

/* Writes yaml to name (relative to the temp dir) and loads it. */
static sc_scenario *load_at(const char *name, const char *yaml, const char *const *ov, int n_ov)
{
    FILE *err;
    sc_scenario *sc;

    fmt(g_path, sizeof g_path, "%s/%s", g_dir, name);
    write_file(g_path, yaml);
    free(g_err);
    g_err = NULL;
    err = open_memstream(&g_err, &g_err_len);
    sc = sc_load(g_path, ov, n_ov, err);
    fclose(err);
    return sc;
}

static sc_scenario *load(const char *yaml, const char *const *ov, int n_ov)
{
    return load_at("scenario.yaml", yaml, ov, n_ov);
}

static int count_lines(const char *s)
{
    int n = 0;
    for (; *s; s++)
        n += *s == '\n';
    return n;
}

/* Does the last error text hold this line? expect is "L:C: message" for the
 * scenario file (the path is prefixed here) or "--set[N]:..." as is. A
 * trailing '*' in expect matches any rest of the line. */
static int has_line(const char *expect)
{
    char want[PATH_MAX + 1024];
    if (strncmp(expect, "--set", 5) == 0)
        fmt(want, sizeof want, "%s", expect);
    else
        fmt(want, sizeof want, "%s:%s", g_path, expect);
    size_t wl = strlen(want);
    int prefix = wl > 0 && want[wl - 1] == '*';
    if (prefix)
        wl--;
    for (const char *line = g_err; line && *line;) {
        const char *end = strchr(line, '\n');
        size_t ll = end ? (size_t)(end - line) : strlen(line);
        if ((prefix ? ll >= wl : ll == wl) && strncmp(line, want, wl) == 0)
            return 1;
        line = end ? end + 1 : line + ll;
    }
    fprintf(stderr, "\n  expected line: %s\n  errors were:\n%s", want, g_err ? g_err : "");
    return 0;
}

/* Loads yaml (with overrides) expecting failure with exactly that line. */
static void expect_error(const char *yaml, const char *const *ov, int n_ov, const char *line)
{
    sc_scenario *sc = load(yaml, ov, n_ov);
    CU_ASSERT_PTR_NULL(sc);
    sc_free(sc);
    CU_ASSERT(has_line(line));
}

/* Loads yaml expecting success. */
static sc_scenario *expect_ok(const char *yaml, const char *const *ov, int n_ov)
{
    sc_scenario *sc = load(yaml, ov, n_ov);
    if (sc == NULL)
        fprintf(stderr, "\n  unexpected errors:\n%s", g_err);
    CU_ASSERT_PTR_NOT_NULL(sc);
    CU_ASSERT_EQUAL(g_err_len, 0);
    return sc;
}

/* A minimal valid scenario; line numbers below refer to it. */
#define MINIMAL                 \
    "name: t\n"                 /* 1 */ \
    "duration: 1h\n"            /* 2 */ \
    "models:\n"                 /* 3 */ \
    "  m:\n"                    /* 4 */ \
    "    service: {mean: 10ms}\n" /* 5 */ \
    "pools:\n"                  /* 6 */ \
    "  gpu:\n"                  /* 7 */ \
    "    model: m\n"            /* 8 */ \
    "    replicas: 2\n"         /* 9 */ \
    "traffic:\n"                /* 10 */ \
    "  - name: api\n"           /* 11 */ \
    "    pool: gpu\n"           /* 12 */ \
    "    arrivals: {rate: 100}\n" /* 13 */

/* ---- good input --------------------------------------------------------- */

static void test_full(void)
{
    static const char yaml[] =
        "name: full\n"
        "description: every key\n"
        "seed: 42\n"
        "duration: 2h\n"
        "warmup: 5m\n"
        "interval: 10s\n"
        "models:\n"
        "  risk:\n"
        "    service: {distribution: lognormal, cv: 0.3, base: 15ms, per_item: 2ms}\n"
        "    batch: {max_size: 16, max_wait: 5ms}\n"
        "  slow:\n"
        "    service: {distribution: deterministic, mean: 1.5s}\n"
        "pools:\n"
        "  gpu:\n"
        "    model: risk\n"
        "    replicas: 3\n"
        "    gpus_per_node: 4\n"
        "    gpu_type: a100\n"
        "    queue_capacity: 256\n"
        "    timeout: 5s\n"
        "    link: {latency: 200us, bandwidth: 100Mbps}\n"
        "    power: {idle_per_gpu: 40W, busy_per_gpu: 350, off: 0}\n"
        "    price_per_gpu_hour: 1.25\n"
        "  cpu:\n"
        "    model: slow\n"
        "    replicas: 1\n"
        "traffic:\n"
        "  - name: api\n"
        "    pool: gpu\n"
        "    arrivals:\n"
        "      process: gamma\n"
        "      cv: 2\n"
        "      rate:\n"
        "        - {at: 0s, qps: 5}\n"
        "        - {at: 30m, qps: 520, ramp: 2m}\n"
        "        - {at: 70m, qps: 30/min, ramp: 5m}\n"
        "    work: 1.5\n"
        "    size: 2KB\n"
        "    response_size: 256B\n"
        "  - name: batch\n"
        "    pool: cpu\n"
        "    arrivals: {process: deterministic, rate: 100/h}\n"
        "load_balancer:\n"
        "  policy: least_conn\n"
        "  max_conns: 8\n"
        "  queue: {capacity: 50, timeout: 1s}\n"
        "  servers:\n"
        "    gpu/0: {weight: 3}\n"
        "    \"gpu/2\": {weight: 0.5, max_conns: 2}\n"
        "    cpu/0: {}\n"
        "slo: {latency_p99: 800ms, availability: 0.9999}\n";
    sc_scenario *sc = expect_ok(yaml, NULL, 0);
    if (sc == NULL)
        return;
    CU_ASSERT_STRING_EQUAL(sc->file, g_path);
    CU_ASSERT_STRING_EQUAL(sc->name, "full");
    CU_ASSERT_STRING_EQUAL(sc->description, "every key");
    CU_ASSERT_EQUAL(sc->seed, 42);
    CU_ASSERT_DOUBLE_EQUAL(sc->duration_s, 7200, 0);
    CU_ASSERT_DOUBLE_EQUAL(sc->warmup_s, 300, 0);
    CU_ASSERT_DOUBLE_EQUAL(sc->interval_s, 10, 0);

    CU_ASSERT_EQUAL_FATAL(sc->n_models, 2);
    sc_model *m = &sc->models[0];
    CU_ASSERT_STRING_EQUAL(m->name, "risk");
    CU_ASSERT_EQUAL(m->noise.kind, SC_DIST_LOGNORMAL);
    CU_ASSERT_DOUBLE_EQUAL(m->noise.cv, 0.3, 0);
    CU_ASSERT_DOUBLE_EQUAL(m->base_s, 0.015, 1e-15);
    CU_ASSERT_DOUBLE_EQUAL(m->per_item_s, 0.002, 1e-15);
    CU_ASSERT_PTR_NULL(m->calibration);
    CU_ASSERT_EQUAL(m->batch_max_size, 16);
    CU_ASSERT_DOUBLE_EQUAL(m->batch_max_wait_s, 0.005, 1e-15);
    CU_ASSERT_DOUBLE_EQUAL(sc_model_mean_s(m, 1), 0.017, 1e-15);
    CU_ASSERT_DOUBLE_EQUAL(sc_model_mean_s(m, 16), 0.047, 1e-15);
    m = &sc->models[1];
    CU_ASSERT_STRING_EQUAL(m->name, "slow");
    CU_ASSERT_EQUAL(m->noise.kind, SC_DIST_DETERMINISTIC);
    CU_ASSERT_DOUBLE_EQUAL(m->base_s, 1.5, 0);
    CU_ASSERT_DOUBLE_EQUAL(m->per_item_s, 0, 0);
    CU_ASSERT_DOUBLE_EQUAL(sc_model_mean_s(m, 4), 1.5, 0);

    CU_ASSERT_EQUAL_FATAL(sc->n_pools, 2);
    sc_pool *p = &sc->pools[0];
    CU_ASSERT_STRING_EQUAL(p->name, "gpu");
    CU_ASSERT_EQUAL(p->model, 0);
    CU_ASSERT_EQUAL(p->replicas, 3);
    CU_ASSERT_EQUAL(p->gpus_per_node, 4);
    CU_ASSERT_EQUAL(p->queue_capacity, 256);
    CU_ASSERT_DOUBLE_EQUAL(p->timeout_s, 5, 0);
    CU_ASSERT_DOUBLE_EQUAL(p->link_latency_s, 200e-6, 1e-18);
    CU_ASSERT_DOUBLE_EQUAL(p->link_bandwidth_Bps, 12.5e6, 0);
    CU_ASSERT_STRING_EQUAL(p->power.gpu_type, "a100");
    CU_ASSERT_DOUBLE_EQUAL(p->power.idle_w_per_gpu, 40, 0);
    CU_ASSERT_DOUBLE_EQUAL(p->power.busy_w_per_gpu, 350, 0);
    CU_ASSERT_DOUBLE_EQUAL(p->power.off_w, 0, 0);
    CU_ASSERT_DOUBLE_EQUAL(p->power.price_per_gpu_hour, 1.25, 0);
    CU_ASSERT_STRING_EQUAL(sc->pools[1].name, "cpu");
    CU_ASSERT_EQUAL(sc->pools[1].model, 1);

    CU_ASSERT_EQUAL_FATAL(sc->n_traffic, 2);
    sc_traffic *t = &sc->traffic[0];
    CU_ASSERT_STRING_EQUAL(t->name, "api");
    CU_ASSERT_EQUAL(t->pool, 0);
    CU_ASSERT_EQUAL(t->process, SC_ARR_GAMMA);
    CU_ASSERT_DOUBLE_EQUAL(t->cv, 2, 0);
    CU_ASSERT_EQUAL_FATAL(t->n_rate, 3);
    CU_ASSERT_DOUBLE_EQUAL(t->rate[0].at_s, 0, 0);
    CU_ASSERT_DOUBLE_EQUAL(t->rate[0].qps, 5, 0);
    CU_ASSERT_DOUBLE_EQUAL(t->rate[0].ramp_s, 0, 0);
    CU_ASSERT_DOUBLE_EQUAL(t->rate[1].at_s, 1800, 0);
    CU_ASSERT_DOUBLE_EQUAL(t->rate[1].qps, 520, 0);
    CU_ASSERT_DOUBLE_EQUAL(t->rate[1].ramp_s, 120, 0);
    CU_ASSERT_DOUBLE_EQUAL(t->rate[2].at_s, 4200, 0);
    CU_ASSERT_DOUBLE_EQUAL(t->rate[2].qps, 0.5, 0);
    CU_ASSERT_DOUBLE_EQUAL(t->rate[2].ramp_s, 300, 0);
    CU_ASSERT_PTR_NULL(t->trace_s);
    CU_ASSERT_DOUBLE_EQUAL(t->work, 1.5, 0);
    CU_ASSERT_DOUBLE_EQUAL(t->bytes_in, 2000, 0);
    CU_ASSERT_DOUBLE_EQUAL(t->bytes_out, 256, 0);
    t = &sc->traffic[1];
    CU_ASSERT_EQUAL(t->pool, 1);
    CU_ASSERT_EQUAL(t->process, SC_ARR_DETERMINISTIC);
    CU_ASSERT_EQUAL_FATAL(t->n_rate, 1);
    CU_ASSERT_DOUBLE_EQUAL(t->rate[0].qps, 100.0 / 3600, 1e-15);

    CU_ASSERT_STRING_EQUAL(sc->lb.policy, "least_conn");
    CU_ASSERT_EQUAL(sc->lb.max_conns, 8);
    CU_ASSERT_EQUAL(sc->lb.queue_capacity, 50);
    CU_ASSERT_DOUBLE_EQUAL(sc->lb.queue_timeout_s, 1, 0);
    CU_ASSERT_EQUAL_FATAL(sc->lb.n_servers, 3);
    CU_ASSERT_EQUAL(sc->lb.servers[0].pool, 0);
    CU_ASSERT_EQUAL(sc->lb.servers[0].index, 0);
    CU_ASSERT_DOUBLE_EQUAL(sc->lb.servers[0].weight, 3, 0);
    CU_ASSERT_EQUAL(sc->lb.servers[0].max_conns, 8); /* the balancer's default */
    CU_ASSERT_EQUAL(sc->lb.servers[1].pool, 0);
    CU_ASSERT_EQUAL(sc->lb.servers[1].index, 2);
    CU_ASSERT_DOUBLE_EQUAL(sc->lb.servers[1].weight, 0.5, 0);
    CU_ASSERT_EQUAL(sc->lb.servers[1].max_conns, 2);
    CU_ASSERT_EQUAL(sc->lb.servers[2].pool, 1);
    CU_ASSERT_EQUAL(sc->lb.servers[2].index, 0);
    CU_ASSERT_DOUBLE_EQUAL(sc->lb.servers[2].weight, 1, 0);

    CU_ASSERT_DOUBLE_EQUAL(sc->slo.latency_p99_s, 0.8, 1e-15);
    CU_ASSERT_DOUBLE_EQUAL(sc->slo.availability, 0.9999, 0);
    sc_free(sc);
}

static void test_defaults(void)
{
    sc_scenario *sc = expect_ok(MINIMAL, NULL, 0);
    if (sc == NULL)
        return;
    CU_ASSERT_PTR_NULL(sc->description);
    CU_ASSERT_EQUAL(sc->seed, 1);
    CU_ASSERT_DOUBLE_EQUAL(sc->duration_s, 3600, 0);
    CU_ASSERT_DOUBLE_EQUAL(sc->warmup_s, 0, 0);
    CU_ASSERT_DOUBLE_EQUAL(sc->interval_s, 60, 0);

    sc_model *m = &sc->models[0];
    CU_ASSERT_EQUAL(m->noise.kind, SC_DIST_EXPONENTIAL);
    CU_ASSERT_DOUBLE_EQUAL(m->base_s, 0.01, 1e-15);
    CU_ASSERT_DOUBLE_EQUAL(m->per_item_s, 0, 0);
    CU_ASSERT_EQUAL(m->batch_max_size, 1);
    CU_ASSERT_DOUBLE_EQUAL(m->batch_max_wait_s, 0, 0);

    sc_pool *p = &sc->pools[0];
    CU_ASSERT_EQUAL(p->gpus_per_node, 1);
    CU_ASSERT_EQUAL(p->queue_capacity, 1000);
    CU_ASSERT_DOUBLE_EQUAL(p->timeout_s, 0, 0);
    CU_ASSERT_DOUBLE_EQUAL(p->link_latency_s, 100e-6, 1e-18);
    CU_ASSERT_DOUBLE_EQUAL(p->link_bandwidth_Bps, 1.25e9, 0);
    CU_ASSERT_STRING_EQUAL(p->power.gpu_type, "h100");
    CU_ASSERT_DOUBLE_EQUAL(p->power.idle_w_per_gpu, 70, 0);
    CU_ASSERT_DOUBLE_EQUAL(p->power.busy_w_per_gpu, 700, 0);
    CU_ASSERT_DOUBLE_EQUAL(p->power.off_w, 5, 0);
    CU_ASSERT_DOUBLE_EQUAL(p->power.price_per_gpu_hour, 3.00, 0);

    sc_traffic *t = &sc->traffic[0];
    CU_ASSERT_EQUAL(t->process, SC_ARR_POISSON);
    CU_ASSERT_EQUAL_FATAL(t->n_rate, 1); /* a plain rate is [{at: 0, qps: rate}] */
    CU_ASSERT_DOUBLE_EQUAL(t->rate[0].at_s, 0, 0);
    CU_ASSERT_DOUBLE_EQUAL(t->rate[0].qps, 100, 0);
    CU_ASSERT_DOUBLE_EQUAL(t->rate[0].ramp_s, 0, 0);
    CU_ASSERT_DOUBLE_EQUAL(t->work, 1, 0);
    CU_ASSERT_DOUBLE_EQUAL(t->bytes_in, 4000, 0);
    CU_ASSERT_DOUBLE_EQUAL(t->bytes_out, 1000, 0);

    CU_ASSERT_STRING_EQUAL(sc->lb.policy, "round_robin");
    CU_ASSERT_EQUAL(sc->lb.max_conns, 0);
    CU_ASSERT_EQUAL(sc->lb.queue_capacity, 0);
    CU_ASSERT_DOUBLE_EQUAL(sc->lb.queue_timeout_s, 0, 0);
    CU_ASSERT_EQUAL(sc->lb.n_servers, 0);
    CU_ASSERT_DOUBLE_EQUAL(sc->slo.latency_p99_s, 0, 0);
    CU_ASSERT_DOUBLE_EQUAL(sc->slo.availability, 0, 0);
    /* no memory model: no memory series */
    CU_ASSERT_EQUAL(m->has_memory, 0);
    CU_ASSERT_DOUBLE_EQUAL(p->power.gpu_memory_bytes, 0, 0);
    CU_ASSERT_DOUBLE_EQUAL(p->host_memory.total_bytes, 0, 0);
    sc_free(sc);
}

static void test_gpu_type_defaults(void)
{
    static const struct {
        const char *type;
        double idle, busy, off, price;
    } want[] = {
        {"a100", 50, 400, 5, 2.00},
        {"h100", 70, 700, 5, 3.00},
        {"h200", 75, 700, 5, 3.80},
        {"cpu", 60, 200, 5, 0.40},
    };
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
        char set[64];
        fmt(set, sizeof set, "pools.gpu.gpu_type=%s", want[i].type);
        const char *ov[] = {set};
        sc_scenario *sc = expect_ok(MINIMAL, ov, 1);
        if (sc == NULL)
            continue;
        sc_power *pw = &sc->pools[0].power;
        CU_ASSERT_STRING_EQUAL(pw->gpu_type, want[i].type);
        CU_ASSERT_DOUBLE_EQUAL(pw->idle_w_per_gpu, want[i].idle, 0);
        CU_ASSERT_DOUBLE_EQUAL(pw->busy_w_per_gpu, want[i].busy, 0);
        CU_ASSERT_DOUBLE_EQUAL(pw->off_w, want[i].off, 0);
        CU_ASSERT_DOUBLE_EQUAL(pw->price_per_gpu_hour, want[i].price, 0);
        sc_free(sc);
    }
}

/* Every shipped scenario (scenarios/ and scenarios/chaos/) must keep
 * loading; bank-pipeline's classes are routed by their paths. */
static void test_shipped_scenarios(void)
{
    static const char *const dirs[] = {"scenarios", "scenarios/chaos"};
    const char *src = getenv("FLEETSIM_SRC");
    int n = 0;
    for (size_t d = 0; src && d < sizeof dirs / sizeof dirs[0]; d++) {
        char dir[PATH_MAX];
        fmt(dir, sizeof dir, "%s/%s", src, dirs[d]);
        DIR *dp = opendir(dir);
        CU_ASSERT_PTR_NOT_NULL(dp);
        struct dirent *e;
        while (dp && (e = readdir(dp))) {
            size_t len = strlen(e->d_name);
            if (len < 6 || strcmp(e->d_name + len - 5, ".yaml"))
                continue;
            char path[PATH_MAX + 256];
            fmt(path, sizeof path, "%s/%s", dir, e->d_name);
            sc_scenario *sc = sc_load(path, NULL, 0, stderr);
            if (!sc)
                fprintf(stderr, "\n  %s does not load\n", path);
            CU_ASSERT_PTR_NOT_NULL(sc);
            if (sc && !strcmp(e->d_name, "bank-pipeline.yaml")) {
                CU_ASSERT_EQUAL(sc->n_traffic, 2);
                CU_ASSERT_STRING_EQUAL(sc->pipelines[sc->traffic[0].pipeline].name, "scoring");
                CU_ASSERT_EQUAL(sc->pipelines[sc->traffic[0].pipeline].n_stages, 5);
                CU_ASSERT_STRING_EQUAL(sc->pools[sc->traffic[1].pool].name, "ops");
                CU_ASSERT_EQUAL(sc->n_caches, 1);
                CU_ASSERT_EQUAL(sc->n_queues, 1);
                CU_ASSERT_STRING_EQUAL(sc->pools[sc->queues[0].consumer].name, "store");
            }
            sc_free(sc);
            n++;
        }
        if (dp)
            closedir(dp);
    }
    CU_ASSERT(!src || n >= 15);
}

/* ---- bad input: each class with its exact position ---------------------- */

static void test_file_level_errors(void)
{
    char missing[PATH_MAX + 32];
    FILE *err;

    /* A file that does not exist. */
    fmt(missing, sizeof missing, "%s/nope.yaml", g_dir);
    free(g_err);
    g_err = NULL;
    err = open_memstream(&g_err, &g_err_len);
    CU_ASSERT_PTR_NULL(sc_load(missing, NULL, 0, err));
    fclose(err);
    fmt(g_path, sizeof g_path, "%s", missing);
    CU_ASSERT(has_line(" cannot open scenario: No such file or directory"));

    expect_error("", NULL, 0, "1:1: empty scenario (expected a mapping with name, duration, "
                 "models, pools, traffic)");
    expect_error("# only a comment\n", NULL, 0, "1:1: empty scenario*");
    expect_error("hello\n", NULL, 0,
                 "1:1: expected a mapping of scenario keys at top level, got \"hello\"");
    expect_error("- a\n- b\n", NULL, 0,
                 "1:1: expected a mapping of scenario keys at top level, got a sequence");
    /* YAML syntax: the parser's own problem and position. */
    expect_error("name: [a, b\nduration: 1h\n", NULL, 0,
                 "2:9: did not find expected ',' or ']' while parsing a flow sequence "
                 "(line 1, column 7)");
    expect_error("name: a\n  bad: indent\n", NULL, 0,
                 "2:6: mapping values are not allowed in this context");
    expect_error("name: *nowhere\n", NULL, 0, "1:7: found undefined alias");
    expect_error(MINIMAL "---\nname: second\n", NULL, 0,
                 "14:1: a scenario is one YAML document; found another here");
    /* A tab for indentation. */
    expect_error("name: a\n\tduration: 1h\n", NULL, 0, "2:1: found a tab character that "
                 "violates indentation while scanning a plain scalar (line 1, column 7)");
}

static void test_key_errors(void)
{
    expect_error(MINIMAL "colour: red\n", NULL, 0,
                 "14:1: unknown key \"colour\" (valid keys: name, description, seed, duration, "
                 "warmup, interval, start_time, models, pools, pipelines, routes, traffic, load_balancer, slo, "
                 "cost, autoscaler, chaos, "
                 "hypothesis, monitoring, simulation)");
    expect_error("name: t\n"
                 "duration: 1h\n"
                 "models:\n"
                 "  m:\n"
                 "    service: {mean: 10ms, median: 5ms}\n"
                 "pools:\n"
                 "  gpu:\n"
                 "    model: m\n"
                 "    replica: 2\n"
                 "traffic:\n"
                 "  - {name: api, pool: gpu, arrivals: {rate: 100}}\n",
                 NULL, 0,
                 "9:5: pools.gpu: unknown key \"replica\" (valid keys: model, replicas, "
                 "gpus_per_node, gpu_type, queue_capacity, timeout, link, power, "
                 "price_per_gpu_hour, max_replicas, zone, lifecycle, health_check, node_pool, "
                 "rollout, gpu_memory, host_memory, lb_policy, gpu, tensor_parallel, ttft_timeout, "
                 "role, decode_pool, decode_router, billing, egress_per_gb, expert_parallel, "
                 "redundant_experts, interconnect)");
    /* Both errors of that file, and the missing required key, are reported. */
    CU_ASSERT(has_line("5:27: models.m.service: unknown key \"median\" (valid keys: "
                       "distribution, mean, base, per_item, cv, samples, calibration, "
                       "precision, noise)"));
    CU_ASSERT(has_line("8:5: pools.gpu: missing required key replicas"));
    CU_ASSERT_EQUAL(count_lines(g_err), 3);

    /* Missing required keys are reported at the mapping that lacks them. */
    expect_error("seed: 3\nmodels: {m: {service: {mean: 1s}}}\n", NULL, 0,
                 "1:1: missing required key name");
    CU_ASSERT(has_line("1:1: missing required key duration"));
    CU_ASSERT(has_line("1:1: missing required key pools"));
    CU_ASSERT(has_line("1:1: missing required key traffic"));
    CU_ASSERT_EQUAL(count_lines(g_err), 4);

    /* Duplicate keys, at the second one. */
    expect_error(MINIMAL "name: again\n", NULL, 0,
                 "14:1: duplicate key \"name\" (first at line 1)");
    expect_error("name: t\n"
                 "duration: 1h\n"
                 "models: {m: {service: {mean: 1s}}}\n"
                 "pools:\n"
                 "  gpu: {model: m, replicas: 1}\n"
                 "  gpu: {model: m, replicas: 2}\n"
                 "traffic: [{name: api, pool: gpu, arrivals: {rate: 1}}]\n",
                 NULL, 0, "6:3: pools: duplicate key \"gpu\" (first at line 5)");
    /* A key that is not a scalar. */
    expect_error(MINIMAL "? [a, b]\n: 1\n", NULL, 0,
                 "14:3: expected a plain key, got a sequence");
}

static void test_type_errors(void)
{
    expect_error("name: t\n"
                 "duration: 1h\n"
                 "models: [m]\n"
                 "pools:\n"
                 "  gpu: {model: m, replicas: {n: 2}}\n"
                 "traffic: {name: api}\n",
                 NULL, 0, "3:9: models: expected a mapping, got a sequence");
    CU_ASSERT(has_line("5:29: pools.gpu.replicas: expected an integer >= 1, got a mapping"));
    CU_ASSERT(has_line("6:10: traffic: expected a sequence of traffic classes, got a mapping"));
    CU_ASSERT(has_line("5:16: pools.gpu.model: unknown model \"m\" (models: none)"));

    expect_error("name: [a]\n"
                 "duration: 1h\n"
                 "models: {m: {service: {mean: 1s}}}\n"
                 "pools: {gpu: {model: m, replicas: 2.5, queue_capacity: 1e3}}\n"
                 "traffic: [api]\n",
                 NULL, 0, "1:7: name: expected a string, got a sequence");
    CU_ASSERT(has_line("4:35: pools.gpu.replicas: expected an integer >= 1, got \"2.5\""));
    CU_ASSERT(has_line("4:56: pools.gpu.queue_capacity: expected an integer >= 1, got \"1e3\""));
    CU_ASSERT(has_line("5:11: traffic.0: expected a mapping, got \"api\""));

    /* Huge numbers, NaN, infinity, negative seed. */
    expect_error("name: t\n"
                 "seed: -1\n"
                 "duration: .inf\n"
                 "models: {m: {service: {distribution: gamma, cv: .nan, mean: 1s}}}\n"
                 "pools: {gpu: {model: m, replicas: 99999999999999999999}}\n"
                 "traffic: [{name: api, pool: gpu, arrivals: {rate: 1e999}}]\n",
                 NULL, 0, "2:7: seed: expected an integer >= 0, got \"-1\"");
    CU_ASSERT(has_line("3:11: duration: expected a duration > 0 (like 250ms, 1.5s, 2h), "
                       "got \".inf\""));
    CU_ASSERT(has_line("4:49: models.m.service.cv: expected a number > 0, got \".nan\""));
    CU_ASSERT(has_line("5:35: pools.gpu.replicas: expected an integer >= 1, got "
                       "\"99999999999999999999\" (at most 2147483647)"));
    CU_ASSERT(has_line("6:51: traffic.api.arrivals.rate: expected a rate >= 0 (like 500, "
                       "10/s, 30/min), got \"1e999\""));
    CU_ASSERT_EQUAL(count_lines(g_err), 5);
}

static void test_value_errors(void)
{
    /* Units and ranges. */
    expect_error("name: t\n"
                 "duration: 0s\n"
                 "interval: 5parsecs\n"
                 "models: {m: {service: {mean: 10ms}}}\n"
                 "pools: {gpu: {model: m, replicas: 1, timeout: -1s,\n"
                 "              link: {bandwidth: 0Gbps, latency: 1 hour}}}\n"
                 "traffic: [{name: api, pool: gpu, arrivals: {rate: 1}, size: 4kb, work: 0}]\n"
                 "slo: {latency_p99: 0, availability: 1.5}\n",
                 NULL, 0, "2:11: duration: expected a duration > 0 (like 250ms, 1.5s, 2h), "
                 "got \"0s\"");
    CU_ASSERT(has_line("3:11: interval: expected a duration > 0 (like 250ms, 1.5s, 2h), got "
                       "\"5parsecs\""));
    CU_ASSERT(has_line("5:47: pools.gpu.timeout: expected a duration >= 0 (like 250ms, 1.5s, "
                       "2h), got \"-1s\""));
    CU_ASSERT(has_line("6:33: pools.gpu.link.bandwidth: expected a bandwidth > 0 (like "
                       "10Gbps, 1.5GB/s), got \"0Gbps\""));
    CU_ASSERT(has_line("6:49: pools.gpu.link.latency: expected a duration >= 0*"));
    CU_ASSERT(has_line("7:61: traffic.api.size: expected a size >= 0 (like 512B, 4KB, 1MiB), "
                       "got \"4kb\""));
    CU_ASSERT(has_line("7:72: traffic.api.work: expected a number > 0, got \"0\""));
    CU_ASSERT(has_line("8:20: slo.latency_p99: expected a duration > 0*"));
    CU_ASSERT(has_line("8:37: slo.availability: expected a number in (0, 1], got \"1.5\""));
    CU_ASSERT_EQUAL(count_lines(g_err), 9);

    expect_error("name: t\nduration: 1h\nwarmup: 1h\n"
                 "models: {m: {service: {mean: 10ms}}}\n"
                 "pools: {gpu: {model: m, replicas: 1, gpu_type: tpu,\n"
                 "  power: {idle_per_gpu: 100W, busy_per_gpu: 90W, off: -1}}}\n"
                 "traffic: [{name: api, pool: gpu, arrivals: {rate: 1}}]\n",
                 NULL, 0, "3:9: warmup: must be shorter than duration (3600 s), got \"1h\"");
    CU_ASSERT(has_line("5:48: pools.gpu.gpu_type: expected one of a100, h100, h200, cpu, "
                       "got \"tpu\""));
    CU_ASSERT(has_line("6:45: pools.gpu.power: busy_per_gpu (90 W) must be >= idle_per_gpu "
                       "(100 W)"));
    CU_ASSERT(has_line("6:55: pools.gpu.power.off: expected a power in watts >= 0 (like 700 "
                       "or 700W), got \"-1\""));
}

static void test_reference_errors(void)
{
    char names[256], line[512];

    expect_error("name: t\n"
                 "duration: 1h\n"
                 "models: {risk: {service: {mean: 10ms}}, ocr: {service: {mean: 1s}}}\n"
                 "pools:\n"
                 "  gpu: {model: rsik, replicas: 2}\n"
                 "  cpu: {model: ocr, replicas: 1}\n"
                 "traffic:\n"
                 "  - {name: api, pool: gpus, arrivals: {rate: 1}}\n"
                 "  - {name: api, pool: cpu, arrivals: {rate: 1}}\n"
                 "load_balancer:\n"
                 "  policy: weighted_magic\n"
                 "  servers: {gpu/2: {}, gpux/0: {}, gpu: {}, gpu/1: {weight: -1}, gpu/01: {}}\n",
                 NULL, 0, "5:16: pools.gpu.model: unknown model \"rsik\" (models: risk, ocr)");
    CU_ASSERT(has_line("8:23: traffic.api.pool: unknown pool \"gpus\" (pools: gpu, cpu)"));
    CU_ASSERT(has_line("9:12: traffic.1: duplicate traffic name \"api\" (also item 0)"));
    fmt(line, sizeof line, "11:11: load_balancer.policy: unknown policy "
             "\"weighted_magic\" (policies: %s)", lb_names(names, sizeof names));
    CU_ASSERT(has_line(line));
    CU_ASSERT(strstr(names, "round_robin") != NULL);
    CU_ASSERT(has_line("12:13: load_balancer.servers: server index 2 out of range: pool gpu "
                       "has 2 nodes (0..1)"));
    CU_ASSERT(has_line("12:24: load_balancer.servers: unknown pool \"gpux\" in \"gpux/0\" "
                       "(pools: gpu, cpu)"));
    CU_ASSERT(has_line("12:36: load_balancer.servers: server key \"gpu\" is not \"pool/index\" "
                       "(like \"gpu/0\")"));
    CU_ASSERT(has_line("12:61: load_balancer.servers.gpu/1.weight: expected a number > 0, got "
                       "\"-1\""));
    CU_ASSERT(has_line("12:66: load_balancer.servers: server gpu/1 is listed twice"));
    CU_ASSERT_EQUAL(count_lines(g_err), 9);
}

/* load_balancer.outlier_detection: Envoy's keys, units and defaults into
 * lb_params.outlier; absent, detection is off; max_ejection_time unset is
 * max(300 s, base_ejection_time), set below it an error; every bad value
 * its own file:line:col line. */
static void test_outlier_detection(void)
{
    sc_scenario *sc = expect_ok(MINIMAL, NULL, 0);
    if (sc)
        CU_ASSERT_EQUAL(sc->lb.params.outlier.enabled, 0);
    sc_free(sc);

    sc = expect_ok(MINIMAL "load_balancer:\n  outlier_detection: {}\n", NULL, 0);
    if (sc) {
        const lb_outlier *o = &sc->lb.params.outlier;
        CU_ASSERT_EQUAL(o->enabled, 1);
        CU_ASSERT_EQUAL(o->consecutive_5xx, 5);
        CU_ASSERT_DOUBLE_EQUAL(o->interval_s, 10, 0);
        CU_ASSERT_DOUBLE_EQUAL(o->base_ejection_time_s, 30, 0);
        CU_ASSERT_DOUBLE_EQUAL(o->max_ejection_time_s, 300, 0);
        CU_ASSERT_EQUAL(o->max_ejection_percent, 10);
        CU_ASSERT_EQUAL(o->enforcing_consecutive_5xx, 100);
        CU_ASSERT_EQUAL(o->always_eject_one_host, 0);
    }
    sc_free(sc);

    sc = expect_ok(MINIMAL "load_balancer:\n"
                           "  policy: p2c_least_request\n"
                           "  outlier_detection: {consecutive_5xx: 3, interval: 500ms,\n"
                           "    base_ejection_time: 1m, max_ejection_time: 10m,\n"
                           "    max_ejection_percent: 50, enforcing_consecutive_5xx: 80,\n"
                           "    always_eject_one_host: true}\n",
                   NULL, 0);
    if (sc) {
        const lb_outlier *o = &sc->lb.params.outlier;
        CU_ASSERT_EQUAL(o->enabled, 1);
        CU_ASSERT_EQUAL(o->consecutive_5xx, 3);
        CU_ASSERT_DOUBLE_EQUAL(o->interval_s, 0.5, 0);
        CU_ASSERT_DOUBLE_EQUAL(o->base_ejection_time_s, 60, 0);
        CU_ASSERT_DOUBLE_EQUAL(o->max_ejection_time_s, 600, 0);
        CU_ASSERT_EQUAL(o->max_ejection_percent, 50);
        CU_ASSERT_EQUAL(o->enforcing_consecutive_5xx, 80);
        CU_ASSERT_EQUAL(o->always_eject_one_host, 1);
        CU_ASSERT_STRING_EQUAL(sc->lb.policy, "p2c_least_request");
        CU_ASSERT_PTR_NULL(lb_params_invalid(&sc->lb.params));
    }
    sc_free(sc);

    /* Envoy: an unset max_ejection_time is max(300 s, base_ejection_time) */
    sc = expect_ok(MINIMAL "load_balancer:\n  outlier_detection: {base_ejection_time: 10m}\n",
                   NULL, 0);
    if (sc)
        CU_ASSERT_DOUBLE_EQUAL(sc->lb.params.outlier.max_ejection_time_s, 600, 0);
    sc_free(sc);

    const char *const ov[] = { "load_balancer.outlier_detection.consecutive_5xx=7" };
    sc = expect_ok(MINIMAL "load_balancer:\n  outlier_detection: {}\n", ov, 1);
    if (sc)
        CU_ASSERT_EQUAL(sc->lb.params.outlier.consecutive_5xx, 7);
    sc_free(sc);

    expect_error(MINIMAL "load_balancer:\n"
                         "  outlier_detection: {consecutive_5xx: 0, interval: 0s, "
                         "base_ejection_time: 2x, max_ejection_percent: 101, "
                         "enforcing_consecutive_5xx: -1, always_eject_one_host: yes, jitter: 1s}\n",
                 NULL, 0,
                 "15:40: load_balancer.outlier_detection.consecutive_5xx: expected an integer "
                 ">= 1, got \"0\"");
    CU_ASSERT(has_line("15:53: load_balancer.outlier_detection.interval: expected a duration > 0 "
                       "(like 250ms, 1.5s, 2h), got \"0s\""));
    CU_ASSERT(has_line("15:77: load_balancer.outlier_detection.base_ejection_time: expected a "
                       "duration > 0 (like 250ms, 1.5s, 2h), got \"2x\""));
    CU_ASSERT(has_line("15:103: load_balancer.outlier_detection.max_ejection_percent: expected an "
                       "integer in [0, 100], got \"101\" (at most 100)"));
    CU_ASSERT(has_line("15:135: load_balancer.outlier_detection.enforcing_consecutive_5xx: "
                       "expected an integer in [0, 100], got \"-1\""));
    CU_ASSERT(has_line("15:162: load_balancer.outlier_detection.always_eject_one_host: expected "
                       "one of false, true, got \"yes\""));
    CU_ASSERT(has_line("15:167: load_balancer.outlier_detection: unknown key \"jitter\" (valid "
                       "keys: consecutive_5xx, interval, base_ejection_time, max_ejection_time, "
                       "max_ejection_percent, enforcing_consecutive_5xx, always_eject_one_host, "
             "healthy_panic_threshold)"));
    CU_ASSERT_EQUAL(count_lines(g_err), 7);

    expect_error(MINIMAL "load_balancer:\n"
                         "  outlier_detection: {base_ejection_time: 60s, max_ejection_time: 30s}\n",
                 NULL, 0,
                 "15:67: load_balancer.outlier_detection.max_ejection_time: 30 s is smaller "
                 "than base_ejection_time (60 s)");
    CU_ASSERT_EQUAL(count_lines(g_err), 1);
    expect_error(MINIMAL "load_balancer:\n  outlier_detection: 5\n", NULL, 0,
                 "15:22: load_balancer.outlier_detection: expected a mapping, got \"5\"");
}

/* The token-aware policies' parameters: SGLang's and llm-d's defaults when
 * absent, the values given when present, a bad one its own line. */
static void test_token_lb_params(void)
{
    sc_scenario *sc = expect_ok(MINIMAL, NULL, 0);
    if (sc) {
        const lb_params *p = &sc->lb.params;
        CU_ASSERT_DOUBLE_EQUAL(p->cache_threshold, 0.5, 0);
        CU_ASSERT_EQUAL(p->balance_abs_threshold, 32);
        CU_ASSERT_DOUBLE_EQUAL(p->balance_rel_threshold, 1.1, 0);
        CU_ASSERT_EQUAL(p->prefix_blocks, 0);
        CU_ASSERT_DOUBLE_EQUAL(p->prefix_weight, 2, 0);
        CU_ASSERT_DOUBLE_EQUAL(p->queue_weight, 1, 0);
        CU_ASSERT_DOUBLE_EQUAL(p->kv_weight, 1, 0);
    }
    sc_free(sc);

    sc = expect_ok(MINIMAL "load_balancer:\n"
                           "  policy: prefix_affinity\n"
                           "  cache_threshold: 0.3\n"
                           "  balance_abs_threshold: 64\n"
                           "  balance_rel_threshold: 1.5\n"
                           "  prefix_blocks: 500\n"
                           "  prefix_weight: 3\n"
                           "  queue_weight: 0\n"
                           "  kv_weight: 0.5\n",
                   NULL, 0);
    if (sc) {
        const lb_params *p = &sc->lb.params;
        CU_ASSERT_STRING_EQUAL(sc->lb.policy, "prefix_affinity");
        CU_ASSERT_DOUBLE_EQUAL(p->cache_threshold, 0.3, 0);
        CU_ASSERT_EQUAL(p->balance_abs_threshold, 64);
        CU_ASSERT_DOUBLE_EQUAL(p->balance_rel_threshold, 1.5, 0);
        CU_ASSERT_EQUAL(p->prefix_blocks, 500);
        CU_ASSERT_DOUBLE_EQUAL(p->prefix_weight, 3, 0);
        CU_ASSERT_DOUBLE_EQUAL(p->queue_weight, 0, 0);
        CU_ASSERT_DOUBLE_EQUAL(p->kv_weight, 0.5, 0);
        CU_ASSERT_PTR_NULL(lb_params_invalid(p));
    }
    sc_free(sc);

    const char *const ov[] = { "load_balancer.queue_weight=4" };
    sc = expect_ok(MINIMAL "load_balancer: {policy: kv_aware}\n", ov, 1);
    if (sc)
        CU_ASSERT_DOUBLE_EQUAL(sc->lb.params.queue_weight, 4, 0);
    sc_free(sc);

    expect_error(MINIMAL "load_balancer:\n"
                         "  cache_threshold: 1.5\n"
                         "  balance_abs_threshold: -1\n"
                         "  prefix_blocks: many\n"
                         "  kv_weight: -2\n",
                 NULL, 0,
                 "15:20: load_balancer.cache_threshold: expected a number in [0, 1], got \"1.5\"");
    CU_ASSERT_EQUAL(count_lines(g_err), 4);
}

/* load_balancer.retries.on: nginx's proxy_next_upstream words, any order;
 * default `error` (nginx's "error timeout"), http_503 off. */
static void test_retries_on(void)
{
    static const struct {
        const char *on;
        int error, http_503;
    } ok[] = {
        { NULL, 1, 0 },          { "error", 1, 0 },          { "off", 0, 0 },
        { "http_503", 0, 1 },    { "error http_503", 1, 1 }, { "  http_503  error ", 1, 1 },
    };
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
        char yaml[2048];
        if (ok[i].on)
            snprintf(yaml, sizeof yaml, MINIMAL "load_balancer:\n  retries: {on: \"%s\"}\n",
                     ok[i].on);
        else
            snprintf(yaml, sizeof yaml, MINIMAL);
        sc_scenario *sc = expect_ok(yaml, NULL, 0);
        if (sc) {
            CU_ASSERT_EQUAL(sc->lb.retry_on_error, ok[i].error);
            CU_ASSERT_EQUAL(sc->lb.retry_on_503, ok[i].http_503);
        }
        sc_free(sc);
    }
    const char *const ov[] = { "load_balancer.retries.on=error http_503" };
    sc_scenario *sc = expect_ok(MINIMAL, ov, 1);
    if (sc)
        CU_ASSERT(sc->lb.retry_on_error && sc->lb.retry_on_503);
    sc_free(sc);

    static const char *const bad[] = { "http_500", "error error", "off error", "\"\"" };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char yaml[2048], line[256];
        snprintf(yaml, sizeof yaml, MINIMAL "load_balancer:\n  retries: {on: %s}\n", bad[i]);
        snprintf(line, sizeof line,
                 "15:17: load_balancer.retries.on: expected error, http_503, both "
                 "(\"error http_503\") or off, got \"%s\"",
                 bad[i][0] == '"' ? "" : bad[i]);
        expect_error(yaml, NULL, 0, line);
        CU_ASSERT_EQUAL(count_lines(g_err), 1);
    }
}

static void test_service_errors(void)
{
    expect_error("name: t\n"
                 "duration: 1h\n"
                 "models:\n"
                 "  a: {service: {distribution: lognormal, mean: 1s}}\n"
                 "  b: {service: {cv: 0.5, mean: 1s}}\n"
                 "  c: {service: {mean: 1s, base: 1s}}\n"
                 "  d: {service: {distribution: exponential}}\n"
                 "  e: {service: {distribution: empirical, mean: 1s}}\n"
                 "  f: {service: {base: 0s, per_item: 0s}}\n"
                 "  g: {service: {mean: 1s, precision: int8}, batch: {max_size: 0}}\n"
                 "  h: {batch: {max_wait: 1ms}}\n"
                 "  i: {service: {distribution: weibull, mean: 1s}}\n"
                 "pools: {gpu: {model: a, replicas: 1}}\n"
                 "traffic: [{name: api, pool: gpu, arrivals: {rate: 1}}]\n",
                 NULL, 0, "4:31: models.a.service: distribution lognormal needs cv (a number > 0)");
    CU_ASSERT(has_line("5:17: models.b.service: cv only applies to distribution lognormal or "
                       "gamma (this one is exponential)"));
    CU_ASSERT(has_line("6:17: models.c.service: mean cannot be combined with base/per_item*"));
    CU_ASSERT(has_line("7:16: models.d.service: needs mean, base/per_item, samples "
                       "(distribution empirical) or calibration"));
    CU_ASSERT(has_line("8:31: models.e.service: distribution empirical needs samples (a CSV "
                       "file)"));
    CU_ASSERT(has_line("9:23: models.f.service: service time would be 0: base + per_item must "
                       "be > 0"));
    CU_ASSERT(has_line("10:27: models.g.service: precision only applies with calibration"));
    CU_ASSERT(has_line("10:63: models.g.batch.max_size: expected an integer >= 1, got \"0\""));
    CU_ASSERT(has_line("11:6: models.h: missing required key service"));
    CU_ASSERT(has_line("12:31: models.i.service.distribution: expected one of deterministic, "
                       "exponential, lognormal, gamma, empirical, got \"weibull\""));
    CU_ASSERT_EQUAL(count_lines(g_err), 10);
}

static void test_arrival_errors(void)
{
    expect_error("name: t\n"
                 "duration: 1h\n"
                 "models: {m: {service: {mean: 1s}}}\n"
                 "pools: {gpu: {model: m, replicas: 1}}\n"
                 "traffic:\n"
                 "  - {name: a, pool: gpu, arrivals: {process: gamma, rate: 1}}\n"
                 "  - {name: b, pool: gpu, arrivals: {cv: 1, rate: 1}}\n"
                 "  - {name: c, pool: gpu, arrivals: {process: trace, rate: 1}}\n"
                 "  - {name: d, pool: gpu, arrivals: {trace: x.csv, rate: 1}}\n"
                 "  - {name: e, pool: gpu, arrivals: {process: poisson}}\n"
                 "  - name: f\n"
                 "    pool: gpu\n"
                 "    arrivals:\n"
                 "      rate:\n"
                 "        - {at: 0, qps: 1, ramp: 2m}\n"
                 "        - {at: 1m, qps: 2}\n"
                 "        - {at: 1m, qps: -2}\n"
                 "        - {qps: 2, ramp: -1s}\n"
                 "  - {name: g, pool: gpu, arrivals: {rate: []}}\n"
                 "  - {name: h, pool: gpu, arrivals: {rate: {at: 0}}}\n"
                 "  - {pool: gpu, arrivals: {rate: 1}}\n",
                 NULL, 0, "6:46: traffic.a.arrivals: process gamma needs cv (a number > 0)");
    CU_ASSERT(has_line("7:37: traffic.b.arrivals: cv only applies to process gamma (this one "
                       "is poisson)"));
    CU_ASSERT(has_line("8:53: traffic.c.arrivals: rate does not apply to process trace*"));
    CU_ASSERT(has_line("8:46: traffic.c.arrivals: process trace needs trace (a CSV file)"));
    CU_ASSERT(has_line("9:37: traffic.d.arrivals: trace only applies to process trace (this "
                       "one is poisson)"));
    CU_ASSERT(has_line("10:36: traffic.e.arrivals: missing required key rate"));
    CU_ASSERT(has_line("16:16: traffic.f.arrivals.rate.1.at: the previous point's ramp (120 s "
                       "from 0 s) runs past this point's at (60 s)"));
    CU_ASSERT(has_line("17:16: traffic.f.arrivals.rate.2.at: at must be after the previous "
                       "point's at (60 s), got 60 s"));
    CU_ASSERT(has_line("17:25: traffic.f.arrivals.rate.2.qps: expected a rate >= 0*"));
    CU_ASSERT(has_line("18:11: traffic.f.arrivals.rate.3: missing required key at"));
    CU_ASSERT(has_line("18:26: traffic.f.arrivals.rate.3.ramp: expected a duration >= 0*"));
    CU_ASSERT(has_line("19:43: traffic.g.arrivals.rate: at least one rate point is required"));
    CU_ASSERT(has_line("20:43: traffic.h.arrivals.rate: expected a rate (like 500, 10/s) or a "
                       "sequence of {at, qps, ramp}, got a mapping"));
    CU_ASSERT(has_line("21:5: traffic.8: missing required key name"));
    CU_ASSERT_EQUAL(count_lines(g_err), 14);
}

/* Whatever the shape, the loader answers with errors, not a crash. */
static void test_odd_shapes(void)
{
    static const char *const docs[] = {
        "~\n",
        "name:\n",
        "name: t\nduration: 1h\nmodels:\npools:\ntraffic:\n",
        "name: t\nduration: 1h\nmodels: {}\npools: {}\ntraffic: []\n",
        "name: t\nduration: 1h\nmodels: {m: 1}\npools: {p: []}\ntraffic: [[], 3, {}]\n",
        "name: \"a\\0b\"\nduration: \"1h\\0x\"\n",
        "a: &x [*x, *x]\nmodels: &m {m: {service: *m}}\n",
        "name: t\nduration: 1h\nload_balancer: {servers: {\"/\": 1, \"gpu/\": 1, "
        "\"gpu/99999999999\": 1}}\n",
        "{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{",
        "\xff\xfe\x00n\x00a",
        "name: t\nduration: 1h\nmodels: {m: {service: {distribution: empirical, samples: [a]}}}\n",
        "name: t\nduration: 1h\nmodels: {m: {service: {calibration: {a: 1}, precision: [1]}}}\n",
    };
    for (size_t i = 0; i < sizeof docs / sizeof docs[0]; i++) {
        sc_scenario *sc = load(docs[i], NULL, 0);
        CU_ASSERT_PTR_NULL(sc);
        CU_ASSERT(g_err_len > 0);
        sc_free(sc);
    }
    /* Specific messages for two of them. */
    load("name: t\nduration: 1h\nmodels: {}\npools: {}\ntraffic: []\n", NULL, 0);
    CU_ASSERT(has_line("3:9: models: at least one model is required"));
    CU_ASSERT(has_line("4:8: pools: at least one pool is required"));
    CU_ASSERT(has_line("5:10: traffic: at least one traffic class is required"));
    load("name: \"a\\0b\"\nduration: 1h\n", NULL, 0);
    CU_ASSERT(has_line("1:7: name: expected a string, got a string with a NUL character"));
}

/* ---- overrides ---------------------------------------------------------- */

static void test_override_success(void)
{
    static const char yaml[] = MINIMAL "    work: 2\n"
                                       "  - name: bulk\n"
                                       "    pool: gpu\n"
                                       "    arrivals:\n"
                                       "      rate: [{at: 0, qps: 1}, {at: 10m, qps: 5}]\n";
    const char *ov[] = {
        "pools.gpu.replicas=5",
        "traffic.api.arrivals.rate=250/min",
        "traffic.0.work=3",
        "duration=30m",
        "load_balancer.policy=least_conn",      /* creates load_balancer */
        "traffic.bulk.arrivals.rate.1.qps=600",
        "traffic.bulk.arrivals.rate.1.at=5m",
        "description=",
        "pools.gpu.link.bandwidth=1.5GB/s",
    };
    sc_scenario *sc = expect_ok(yaml, ov, (int)(sizeof ov / sizeof ov[0]));
    if (sc == NULL)
        return;
    CU_ASSERT_EQUAL(sc->pools[0].replicas, 5);
    CU_ASSERT_DOUBLE_EQUAL(sc->traffic[0].rate[0].qps, 250.0 / 60, 1e-12);
    CU_ASSERT_DOUBLE_EQUAL(sc->traffic[0].work, 3, 0);
    CU_ASSERT_DOUBLE_EQUAL(sc->duration_s, 1800, 0);
    CU_ASSERT_STRING_EQUAL(sc->lb.policy, "least_conn");
    CU_ASSERT_EQUAL_FATAL(sc->traffic[1].n_rate, 2);
    CU_ASSERT_DOUBLE_EQUAL(sc->traffic[1].rate[1].qps, 600, 0);
    CU_ASSERT_DOUBLE_EQUAL(sc->traffic[1].rate[1].at_s, 300, 0);
    CU_ASSERT_DOUBLE_EQUAL(sc->traffic[1].rate[0].qps, 1, 0);
    CU_ASSERT_STRING_EQUAL(sc->description, "");
    CU_ASSERT_DOUBLE_EQUAL(sc->pools[0].link_bandwidth_Bps, 1.5e9, 0);
    CU_ASSERT_STRING_EQUAL(sc->name, "t");
    sc_free(sc);

    /* The later of two overrides of one key wins. */
    const char *twice[] = {"seed=7", "seed=9"};
    sc = expect_ok(MINIMAL, twice, 2);
    if (sc)
        CU_ASSERT_EQUAL(sc->seed, 9);
    sc_free(sc);
}

static void test_override_errors(void)
{
    const char *a[] = {"pools.gpu.replicas=abc"};
    expect_error(MINIMAL, a, 1, "--set[1]:1:20: pools.gpu.replicas: expected an integer >= 1, "
                 "got \"abc\"");
    CU_ASSERT_EQUAL(count_lines(g_err), 1);

    const char *b[] = {"seed=3", "foo=1"};
    expect_error(MINIMAL, b, 2, "--set[2]:1:1: unknown key \"foo\" (valid keys: name, "
                 "description, seed, duration, warmup, interval, start_time, models, pools, pipelines, "
                 "routes, traffic, load_balancer, slo, cost, autoscaler, chaos, hypothesis, monitoring, simulation)");
    CU_ASSERT_EQUAL(count_lines(g_err), 1);

    const char *c[] = {"pools.gpu.replicaz=3", "pools.gpu.model=nope", "warmup=2h"};
    expect_error(MINIMAL, c, 3, "--set[1]:1:11: pools.gpu: unknown key \"replicaz\"*");
    CU_ASSERT(has_line("--set[2]:1:17: pools.gpu.model: unknown model \"nope\" (models: m)"));
    CU_ASSERT(has_line("--set[3]:1:8: warmup: must be shorter than duration (3600 s), got "
                       "\"2h\""));
    CU_ASSERT_EQUAL(count_lines(g_err), 3);

    const char *d[] = {"noequals", "=1", "a..b=1", "name.first=x", "traffic.web.pool=gpu",
                       "traffic.4.pool=gpu", "pools.=1", "", "load_balancer.policy=nope"};
    expect_error(MINIMAL, d, 9, "--set[1]:1:1: expected key.path=value, got \"noequals\"");
    CU_ASSERT(has_line("--set[2]:1:1: empty key path before '='"));
    CU_ASSERT(has_line("--set[3]:1:3: empty segment in key path \"a..b\""));
    CU_ASSERT(has_line("--set[4]:1:6: \"name\" is a scalar: cannot set \"first\" inside it"));
    CU_ASSERT(has_line("--set[5]:1:9: no item named \"web\" in \"traffic\" (names: api; or use "
                       "a 0-based index)"));
    CU_ASSERT(has_line("--set[6]:1:9: index 4 out of range: \"traffic\" has 1 item"));
    CU_ASSERT(has_line("--set[7]:1:7: empty segment in key path \"pools.\""));
    CU_ASSERT(has_line("--set[8]:1:1: empty override (expected key.path=value)"));
    CU_ASSERT(has_line("--set[9]:1:22: load_balancer.policy: unknown policy \"nope\"*"));
    CU_ASSERT_EQUAL(count_lines(g_err), 9);

    /* A value that makes a mapping where a scalar belongs, and the reverse. */
    const char *e[] = {"pools.gpu.replicas.n=2", "pools=3"};
    expect_error(MINIMAL, e, 1, "--set[1]:1:20: \"pools.gpu.replicas\" is a scalar: cannot "
                 "set \"n\" inside it");
    expect_error(MINIMAL, e + 1, 1, "--set[1]:1:7: pools: expected a mapping, got \"3\"");
}

/* ---- files next to the scenario ----------------------------------------- */

static void test_relative_paths(void)
{
    char sub[PATH_MAX], csv[PATH_MAX + 16], cwd[PATH_MAX];

    fmt(sub, sizeof sub, "%s/sub", g_dir);
    mkdir(sub, 0700);
    fmt(csv, sizeof csv, "%s/lat.csv", sub);
    write_file(csv, "seconds\n0.1\n0.3\n");
    /* In the file: relative to the scenario's directory, whatever the cwd. */
    sc_scenario *sc = load_at("sub/s.yaml",
                              "name: t\nduration: 1h\n"
                              "models: {m: {service: {distribution: empirical, samples: lat.csv}}}\n"
                              "pools: {gpu: {model: m, replicas: 1}}\n"
                              "traffic: [{name: api, pool: gpu, arrivals: {rate: 1}}]\n",
                              NULL, 0);
    CU_ASSERT_PTR_NOT_NULL_FATAL(sc);
    CU_ASSERT_EQUAL(sc->models[0].noise.n_samples, 2);
    sc_free(sc);

    /* In an override: relative to the working directory. */
    const char *ov[] = {"models.m.service.samples=lat.csv"};
    const char *yaml = "name: t\nduration: 1h\n"
                       "models: {m: {service: {distribution: empirical, samples: none.csv}}}\n"
                       "pools: {gpu: {model: m, replicas: 1}}\n"
                       "traffic: [{name: api, pool: gpu, arrivals: {rate: 1}}]\n";
    CU_ASSERT_PTR_NULL(load(yaml, ov, 1));
    CU_ASSERT(has_line("--set[1]:1:26: models.m.service.samples: samples file \"lat.csv\": "
                       "cannot open: No such file or directory"));
    CU_ASSERT_PTR_NOT_NULL_FATAL(getcwd(cwd, sizeof cwd));
    CU_ASSERT_EQUAL_FATAL(chdir(sub), 0);
    sc = load(yaml, ov, 1);
    CU_ASSERT_EQUAL(chdir(cwd), 0);
    CU_ASSERT_PTR_NOT_NULL(sc);
    sc_free(sc);
}

static void test_empirical_and_trace(void)
{
    char path[PATH_MAX + 16];

    fmt(path, sizeof path, "%s/lat.csv", g_dir);
    write_file(path, "latency_s,batch\n0.010,1\n\n0.020,1\n0.060,4\n");
    fmt(path, sizeof path, "%s/arr.csv", g_dir);
    write_file(path, "0\n0.25\n0.25\n7.5\n");
    sc_scenario *sc = expect_ok("name: t\nduration: 1h\n"
                                "models:\n"
                                "  e: {service: {distribution: empirical, samples: lat.csv}}\n"
                                "  f: {service: {distribution: empirical, samples: lat.csv, "
                                "base: 1ms, per_item: 2ms}}\n"
                                "pools: {gpu: {model: e, replicas: 1}}\n"
                                "traffic: [{name: api, pool: gpu,\n"
                                "           arrivals: {process: trace, trace: arr.csv}}]\n",
                                NULL, 0);
    if (sc == NULL)
        return;
    sc_model *m = &sc->models[0];
    CU_ASSERT_EQUAL(m->noise.kind, SC_DIST_EMPIRICAL);
    CU_ASSERT_EQUAL_FATAL(m->noise.n_samples, 3);
    /* mean 0.03: samples / mean, and base = the mean */
    CU_ASSERT_DOUBLE_EQUAL(m->noise.samples[0], 1.0 / 3, 1e-12);
    CU_ASSERT_DOUBLE_EQUAL(m->noise.samples[1], 2.0 / 3, 1e-12);
    CU_ASSERT_DOUBLE_EQUAL(m->noise.samples[2], 2.0, 1e-12);
    CU_ASSERT_DOUBLE_EQUAL(m->base_s, 0.03, 1e-15);
    CU_ASSERT_DOUBLE_EQUAL(m->per_item_s, 0, 0);
    m = &sc->models[1]; /* an explicit mean wins over the sample mean */
    CU_ASSERT_DOUBLE_EQUAL(m->base_s, 0.001, 1e-15);
    CU_ASSERT_DOUBLE_EQUAL(m->per_item_s, 0.002, 1e-15);
    CU_ASSERT_DOUBLE_EQUAL(m->noise.samples[2], 2.0, 1e-12);
    sc_traffic *t = &sc->traffic[0];
    CU_ASSERT_EQUAL(t->process, SC_ARR_TRACE);
    CU_ASSERT_EQUAL_FATAL(t->n_trace, 4);
    CU_ASSERT_DOUBLE_EQUAL(t->trace_s[1], 0.25, 0);
    CU_ASSERT_DOUBLE_EQUAL(t->trace_s[3], 7.5, 0);
    CU_ASSERT_EQUAL(t->n_rate, 0);
    sc_free(sc);

    fmt(path, sizeof path, "%s/bad.csv", g_dir);
    write_file(path, "latency\n0.1\nfast\n");
    fmt(path, sizeof path, "%s/neg.csv", g_dir);
    write_file(path, "0.1\n-0.1\n");
    fmt(path, sizeof path, "%s/back.csv", g_dir);
    write_file(path, "t\n1\n3\n2\n");
    fmt(path, sizeof path, "%s/empty.csv", g_dir);
    write_file(path, "header only\n");
    expect_error("name: t\nduration: 1h\n"
                 "models:\n"
                 "  a: {service: {distribution: empirical, samples: bad.csv}}\n"
                 "  b: {service: {distribution: empirical, samples: neg.csv}}\n"
                 "  c: {service: {distribution: empirical, samples: empty.csv}}\n"
                 "  d: {service: {samples: neg.csv, mean: 1s}}\n"
                 "pools: {gpu: {model: a, replicas: 1}}\n"
                 "traffic:\n"
                 "  - {name: x, pool: gpu, arrivals: {process: trace, trace: back.csv}}\n"
                 "  - {name: y, pool: gpu, arrivals: {process: trace, trace: gone.csv}}\n",
                 NULL, 0, "4:51: models.a.service.samples: samples file \"bad.csv\": line 3: "
                 "expected a number in the first column, got \"fast\"");
    CU_ASSERT(has_line("5:51: models.b.service.samples: samples file \"neg.csv\": value 2 is "
                       "negative (-0.1)"));
    CU_ASSERT(has_line("6:51: models.c.service.samples: samples file \"empty.csv\": no values "
                       "(one number per line expected)"));
    CU_ASSERT(has_line("7:17: models.d.service: samples only applies to distribution empirical "
                       "(this one is exponential)"));
    CU_ASSERT(has_line("10:60: traffic.x.arrivals.trace: trace file \"back.csv\": arrival 3 "
                       "(2 s) is before the one above it (times must ascend)"));
    CU_ASSERT(has_line("11:60: traffic.y.arrivals.trace: trace file \"gone.csv\": cannot open: "
                       "No such file or directory"));
    CU_ASSERT_EQUAL(count_lines(g_err), 6);
}

/* ---- calibration -------------------------------------------------------- */

static void test_calibration_fixture(void)
{
    char path[PATH_MAX + 32];
    fmt(path, sizeof path, "%s/calibrated.yaml", g_data);
    sc_scenario *sc = sc_load(path, NULL, 0, stderr);
    CU_ASSERT_PTR_NOT_NULL_FATAL(sc);
    sc_model *m = &sc->models[0];
    CU_ASSERT_STRING_EQUAL(m->name, "risk");
    CU_ASSERT_PTR_NOT_NULL_FATAL(m->calibration);
    sc_calibration *c = m->calibration;
    CU_ASSERT_STRING_EQUAL(c->path, "cpu-int8.json"); /* as written */
    CU_ASSERT_STRING_EQUAL(c->precision, "int8");
    CU_ASSERT_EQUAL_FATAL(c->n_points, 4);
    CU_ASSERT_EQUAL(c->batch[0], 1);
    CU_ASSERT_EQUAL(c->batch[3], 8);
    CU_ASSERT_DOUBLE_EQUAL(c->latency_s[2], 0.0015, 0);
    CU_ASSERT_DOUBLE_EQUAL(c->alpha_s, 0.0009, 0);
    CU_ASSERT_DOUBLE_EQUAL(c->beta_s, 0.00013, 0);
    CU_ASSERT_EQUAL(m->noise.kind, SC_DIST_GAMMA);
    CU_ASSERT_DOUBLE_EQUAL(m->noise.cv, 0.1, 0);
    CU_ASSERT_EQUAL(m->batch_max_size, 8);

    /* Measured points exactly, linear between them, the fit outside. */
    CU_ASSERT_DOUBLE_EQUAL(sc_model_mean_s(m, 1), 0.001, 1e-15);
    CU_ASSERT_DOUBLE_EQUAL(sc_model_mean_s(m, 2), 0.0012, 1e-15);
    CU_ASSERT_DOUBLE_EQUAL(sc_model_mean_s(m, 3), 0.00135, 1e-15);
    CU_ASSERT_DOUBLE_EQUAL(sc_model_mean_s(m, 4), 0.0015, 1e-15);
    CU_ASSERT_DOUBLE_EQUAL(sc_model_mean_s(m, 6), 0.00175, 1e-15);
    CU_ASSERT_DOUBLE_EQUAL(sc_model_mean_s(m, 7), 0.001875, 1e-15);
    CU_ASSERT_DOUBLE_EQUAL(sc_model_mean_s(m, 8), 0.002, 1e-15);
    CU_ASSERT_DOUBLE_EQUAL(sc_model_mean_s(m, 16), 0.0009 + 16 * 0.00013, 1e-15);
    CU_ASSERT_DOUBLE_EQUAL(sc_model_mean_s(m, 0), 0.0009, 1e-15);

    /* The empirical model and the trace beside it, also file-relative. */
    m = &sc->models[1];
    CU_ASSERT_EQUAL_FATAL(m->noise.n_samples, 3);
    CU_ASSERT_DOUBLE_EQUAL(m->base_s, 0.02, 1e-15);
    CU_ASSERT_DOUBLE_EQUAL(m->noise.samples[0], 0.5, 1e-12);
    CU_ASSERT_DOUBLE_EQUAL(m->noise.samples[2], 1.5, 1e-12);
    CU_ASSERT_EQUAL_FATAL(sc->traffic[0].n_trace, 4);
    CU_ASSERT_DOUBLE_EQUAL(sc->traffic[0].trace_s[0], 0.5, 0);
    CU_ASSERT_DOUBLE_EQUAL(sc->traffic[0].trace_s[3], 2.5, 0);
    CU_ASSERT_DOUBLE_EQUAL(sc->traffic[1].rate[0].qps, 10, 0);
    CU_ASSERT_STRING_EQUAL(sc->pools[0].power.gpu_type, "cpu");
    sc_free(sc);

    /* The other precision, chosen by override; a 2-point profile. */
    const char *ov[] = {"models.risk.service.precision=fp32"};
    sc = sc_load(path, ov, 1, stderr);
    CU_ASSERT_PTR_NOT_NULL_FATAL(sc);
    m = &sc->models[0];
    CU_ASSERT_STRING_EQUAL(m->calibration->precision, "fp32");
    CU_ASSERT_DOUBLE_EQUAL(sc_model_mean_s(m, 2), 0.006, 1e-15);
    CU_ASSERT_DOUBLE_EQUAL(sc_model_mean_s(m, 5), 0.002 + 5 * 0.002, 1e-15);
    sc_free(sc);
}

/* sc_model_mean_s on hand-built models, including a single-point profile. */
static void test_model_mean(void)
{
    int batch[] = {4};
    double lat[] = {0.01};
    sc_calibration c = {.n_points = 1, .batch = batch, .latency_s = lat,
                        .alpha_s = 0.002, .beta_s = 0.001};
    sc_model m = {.base_s = 0.015, .per_item_s = 0.002};
    CU_ASSERT_DOUBLE_EQUAL(sc_model_mean_s(&m, 1), 0.017, 1e-15);
    CU_ASSERT_DOUBLE_EQUAL(sc_model_mean_s(&m, 10), 0.035, 1e-15);
    m.calibration = &c;
    CU_ASSERT_DOUBLE_EQUAL(sc_model_mean_s(&m, 4), 0.01, 0);
    CU_ASSERT_DOUBLE_EQUAL(sc_model_mean_s(&m, 3), 0.005, 1e-15);
    CU_ASSERT_DOUBLE_EQUAL(sc_model_mean_s(&m, 5), 0.007, 1e-15);
    CU_ASSERT_DOUBLE_EQUAL(sc_model_mean_s(NULL, 5), 0, 0);
}

static void test_calibration_errors(void)
{
    char path[PATH_MAX + 32], yaml[4096];

    fmt(path, sizeof path, "%s/notjson.json", g_dir);
    write_file(path, "{\"schema\": ");
    fmt(path, sizeof path, "%s/other.json", g_dir);
    write_file(path, "{\"schema\": \"something-else/2\", \"precisions\": {}}");
    fmt(path, sizeof path, "%s/negfit.json", g_dir);
    write_file(path, "{\"schema\": \"fleetsim-calibration/1\", \"precisions\": {\"int8\": "
                     "{\"batch\": [2, 4], \"latency_s\": [0.1, 0.1], "
                     "\"fit\": {\"alpha_s\": -0.5, \"beta_s\": 0.1}}}}");
    fmt(path, sizeof path, "%s/flat.json", g_dir);
    write_file(path, "{\"schema\": \"fleetsim-calibration/1\", \"precisions\": {\"fp16\": "
                     "{\"batch\": [1, 8], \"latency_s\": [0.010, 0.0095], "
                     "\"fit\": {\"alpha_s\": 0.01005, \"beta_s\": -0.00005}}}}");
    fmt(path, sizeof path, "%s/unsorted.json", g_dir);
    write_file(path, "{\"schema\": \"fleetsim-calibration/1\", \"precisions\": {\"fp16\": "
                     "{\"batch\": [1, 4, 2], \"latency_s\": [1, 2, 3], "
                     "\"fit\": {\"alpha_s\": 1, \"beta_s\": 1}}}}");
    fmt(yaml, sizeof yaml,
             "name: t\nduration: 1h\n"
             "models:\n"
             "  a: {service: {calibration: %s/cpu-int8.json, precision: fp8}}\n"
             "  b: {service: {calibration: %s/cpu-int8.json}}\n"
             "  c: {service: {calibration: missing.json, precision: int8}}\n"
             "  d: {service: {calibration: notjson.json, precision: int8}}\n"
             "  e: {service: {calibration: other.json, precision: int8}}\n"
             "  f: {service: {calibration: unsorted.json, precision: fp16}}\n"
             "  g: {service: {calibration: %s/cpu-int8.json, precision: int8, mean: 1s,\n"
             "                noise: {distribution: lognormal}}}\n"
             "  h: {service: {calibration: negfit.json, precision: int8}, batch: {max_size: 4}}\n"
             "pools: {gpu: {model: a, replicas: 1}}\n"
             "traffic: [{name: api, pool: gpu, arrivals: {rate: 1}}]\n",
             g_data, g_data, g_data);
    size_t off = strlen(g_data); /* columns after the absolute path shift by this */
    char line[512];
    expect_error(yaml, NULL, 0, "*");
    fmt(line, sizeof line, "4:%zu: models.a.service.precision: precision \"fp8\" is not in "
             "\"%s/cpu-int8.json\" (present: int8, fp32)", 46 + off, g_data);
    CU_ASSERT(has_line(line));
    fmt(line, sizeof line, "5:17: models.b.service: calibration needs precision: one of "
             "int8, fp32 (from \"%s/cpu-int8.json\")", g_data);
    CU_ASSERT(has_line(line));
    CU_ASSERT(has_line("6:17: models.c.service.calibration: cannot read calibration profile "
                       "\"missing.json\": No such file or directory"));
    CU_ASSERT(has_line("7:17: models.d.service.calibration: calibration profile "
                       "\"notjson.json\" is not valid JSON"));
    CU_ASSERT(has_line("8:17: models.e.service.calibration: \"other.json\" is not a calibration "
                       "profile (needs \"schema\": \"fleetsim-calibration/1\" and an object "
                       "\"precisions\")"));
    CU_ASSERT(has_line("9:17: models.f.service.calibration: \"unsorted.json\": precisions.fp16: "
                       "\"batch\" must be strictly ascending"));
    fmt(line, sizeof line, "10:%zu: models.g.service: mean cannot be combined with "
             "calibration*", 63 + off);
    CU_ASSERT(has_line(line));
    CU_ASSERT(has_line("11:39: models.g.service.noise: distribution lognormal needs cv (a "
                       "number > 0)"));
    CU_ASSERT(has_line("12:17: models.h.service.calibration: \"negfit.json\": precisions.int8: "
                       "fit gives a latency <= 0 at batch 1 (alpha_s -0.5 + beta_s 0.1 * 1)"));
    CU_ASSERT_EQUAL(count_lines(g_err), 9);

    /* A fit falling with batch size is fine while it stays positive where it
     * is used (the measured range covers batch 1..max_size here). */
    sc_scenario *sc = expect_ok("name: t\nduration: 1h\n"
                                "models: {m: {service: {calibration: flat.json, precision: fp16},"
                                " batch: {max_size: 8}}}\n"
                                "pools: {gpu: {model: m, replicas: 1}}\n"
                                "traffic: [{name: api, pool: gpu, arrivals: {rate: 1}}]\n",
                                NULL, 0);
    if (sc) {
        CU_ASSERT_DOUBLE_EQUAL(sc_model_mean_s(&sc->models[0], 1), 0.010, 1e-15);
        CU_ASSERT_DOUBLE_EQUAL(sc_model_mean_s(&sc->models[0], 8), 0.0095, 1e-15);
        CU_ASSERT_DOUBLE_EQUAL(sc->models[0].calibration->beta_s, -0.00005, 0);
    }
    sc_free(sc);

    /* A profile error caused by an override points into the override. */
    fmt(yaml, sizeof yaml,
             "name: t\nduration: 1h\n"
             "models: {m: {service: {calibration: %s/cpu-int8.json, precision: int8}}}\n"
             "pools: {gpu: {model: m, replicas: 1}}\n"
             "traffic: [{name: api, pool: gpu, arrivals: {rate: 1}}]\n", g_data);
    const char *ov[] = {"models.m.service.precision=bf16"};
    fmt(line, sizeof line, "--set[1]:1:28: models.m.service.precision: precision \"bf16\" "
             "is not in \"%s/cpu-int8.json\" (present: int8, fp32)", g_data);
    expect_error(yaml, ov, 1, line);
    CU_ASSERT_EQUAL(count_lines(g_err), 1);
}

/* models.<m>.memory, pools.<p>.gpu_memory and host_memory (the memory the
 * exporters report), and rollout.gpu_memory. */
static void test_memory(void)
{
    sc_scenario *sc = expect_ok(
        "name: t\nduration: 1h\n"
        "models: {m: {service: {mean: 10ms}, batch: {max_size: 8},\n"
        "             memory: {weights: 16GiB, per_request: 20MB}}}\n"
        "pools: {gpu: {model: m, replicas: 1, queue_capacity: 100, gpu_memory: 80GB,\n"
        "              host_memory: {total: 512GiB, base: 8GB, per_queued_request: 1MiB},\n"
        "              rollout: {at: 1m, gpu_type: h200, gpu_memory: 141GB}}}\n"
        "traffic: [{name: api, pool: gpu, arrivals: {rate: 1}}]\n", NULL, 0);
    if (sc) {
        const sc_model *m = &sc->models[0];
        CU_ASSERT_EQUAL(m->has_memory, 1);
        CU_ASSERT_DOUBLE_EQUAL(m->weights_bytes, 17179869184.0, 0);
        CU_ASSERT_DOUBLE_EQUAL(m->per_request_bytes, 20e6, 0);
        const sc_pool *p = &sc->pools[0];
        CU_ASSERT_DOUBLE_EQUAL(p->power.gpu_memory_bytes, 80e9, 0);
        CU_ASSERT_DOUBLE_EQUAL(p->host_memory.total_bytes, 512.0 * 1073741824.0, 0);
        CU_ASSERT_DOUBLE_EQUAL(p->host_memory.base_bytes, 8e9, 0);
        CU_ASSERT_DOUBLE_EQUAL(p->host_memory.per_queued_bytes, 1048576.0, 0);
        CU_ASSERT_DOUBLE_EQUAL(p->rollout.power.gpu_memory_bytes, 141e9, 0);
    }
    sc_free(sc);
    /* per_request defaults to 0; a rollout of the same gpu_type keeps the capacity */
    sc = expect_ok("name: t\nduration: 1h\n"
                   "models: {m: {service: {mean: 10ms}, memory: {weights: 1GB}}}\n"
                   "pools: {gpu: {model: m, replicas: 1, gpu_memory: 1GB,\n"
                   "              rollout: {at: 1m, gpus_per_node: 2}}}\n"
                   "traffic: [{name: api, pool: gpu, arrivals: {rate: 1}}]\n", NULL, 0);
    if (sc) {
        CU_ASSERT_DOUBLE_EQUAL(sc->models[0].per_request_bytes, 0, 0);
        CU_ASSERT_DOUBLE_EQUAL(sc->pools[0].rollout.power.gpu_memory_bytes, 1e9, 0);
    }
    sc_free(sc);

    expect_error("name: t\nduration: 1h\n"
                 "models:\n"
                 "  a: {service: {mean: 10ms}, memory: {per_request: 20MB}}\n"
                 "  b: {service: {mean: 10ms}, memory: {weights: 0GB, per_request: -1MB}}\n"
                 "  c: {service: {mean: 10ms}, memory: {weights: 1GB, kv: 1GB}}\n"
                 "  d: {service: {mean: 10ms}, memory: 16GB}\n"
                 "pools: {gpu: {model: a, replicas: 1}}\n"
                 "traffic: [{name: api, pool: gpu, arrivals: {rate: 1}}]\n",
                 NULL, 0, "4:38: models.a.memory: missing required key weights");
    CU_ASSERT(has_line("5:48: models.b.memory.weights: expected a size > 0 (like 16GB, 40GiB), "
                       "got \"0GB\""));
    CU_ASSERT(has_line("5:66: models.b.memory.per_request: expected a size >= 0 (like 20MB, "
                       "512MiB), got \"-1MB\""));
    CU_ASSERT(has_line("6:53: models.c.memory: unknown key \"kv\" (valid keys: weights, "
                       "per_request)"));
    CU_ASSERT(has_line("7:38: models.d.memory: expected a mapping, got \"16GB\""));
    CU_ASSERT_EQUAL(count_lines(g_err), 5);

    /* 16 GB + 8 x 20 MB = 16.16 GB does not fit in 16 GB; a capacity needs
     * the model's memory; host memory must hold base and a full queue */
    expect_error("name: t\nduration: 1h\n"
                 "models:\n"
                 "  m: {service: {mean: 10ms}, batch: {max_size: 8},\n"
                 "      memory: {weights: 16GB, per_request: 20MB}}\n"
                 "  plain: {service: {mean: 10ms}}\n"
                 "pools:\n"
                 "  a: {model: m, replicas: 1, gpu_memory: 16GB}\n"
                 "  b: {model: plain, replicas: 1, gpu_memory: 80GB}\n"
                 "  c: {model: m, replicas: 1, queue_capacity: 10,\n"
                 "      host_memory: {total: 1GB, base: 999MB, per_queued_request: 200kB}}\n"
                 "  d: {model: m, replicas: 1, host_memory: {base: 1GB}}\n"
                 "  e: {model: m, replicas: 1, gpu_memory: 80GB, gpu_type: h100,\n"
                 "      rollout: {at: 1m, gpu_type: h200}}\n"
                 "traffic: [{name: api, pool: a, arrivals: {rate: 1}}]\n",
                 NULL, 0, "8:42: pools.a.gpu_memory: 16000000000 B cannot hold model m: weights "
                 "16000000000 B + per_request 20000000 B x batch.max_size 8 = 16160000000 B");
    CU_ASSERT(has_line("9:46: pools.b.gpu_memory: model plain has no memory (weights, "
                       "per_request) to hold against this capacity"));
    CU_ASSERT(has_line("11:28: pools.c.host_memory: total 1000000000 B is below what a full "
                       "queue needs: base 999000000 B + per_queued_request 200000 B x "
                       "queue_capacity 10 = 1001000000 B"));
    CU_ASSERT(has_line("12:43: pools.d.host_memory: missing required key total"));
    CU_ASSERT(has_line("14:35: pools.e.rollout: the pool declares gpu_memory and the rollout "
                       "changes gpu_type to h200: give the new GPUs' rollout.gpu_memory too"));
    CU_ASSERT_EQUAL(count_lines(g_err), 5);
}

/* slo.latency_p99 joins the histogram's bounds, in order, once; the
 * generated rules cover the SLOs that are set. */
static void test_slo_latency_bucket(void)
{
    const char *yaml = MINIMAL "slo: {latency_p99: 300ms}\n"
                               "monitoring: {histogram_buckets: [100ms, 1s], slo_rules: true}\n";
    sc_scenario *sc = expect_ok(yaml, NULL, 0);
    if (sc) {
        CU_ASSERT_EQUAL_FATAL(sc->monitoring.n_buckets, 3);
        CU_ASSERT_DOUBLE_EQUAL(sc->monitoring.buckets_s[0], 0.1, 0);
        CU_ASSERT_DOUBLE_EQUAL(sc->monitoring.buckets_s[1], 0.3, 0);
        CU_ASSERT_DOUBLE_EQUAL(sc->monitoring.buckets_s[2], 1, 0);
        char err[256];
        char *text = sc_slo_rules_text(sc, err, sizeof err);
        CU_ASSERT_PTR_NOT_NULL_FATAL(text);
        CU_ASSERT_PTR_NULL(strstr(text, "slo-availability"));
        CU_ASSERT_PTR_NOT_NULL(strstr(
            text, "      - record: slo:latency:error_ratio_rate1h\n"
                  "        expr: 1 - (sum by (pool) (rate(fleetsim_request_duration_seconds_bucket"
                  "{le=\"0.3\"}[1h])) / sum by (pool) (rate(fleetsim_request_duration_seconds_count"
                  "[1h])))\n"));
        CU_ASSERT_PTR_NOT_NULL(strstr(text, "slo:latency:error_ratio_rate5m > (14.4 * (1 - 0.99))"));
        free(text);
    }
    sc_free(sc);
    /* already a bound: not added twice; without a monitoring section the
     * default buckets get it too */
    const char *ov[] = {"slo.latency_p99=1s"};
    sc = expect_ok(yaml, ov, 1);
    if (sc)
        CU_ASSERT_EQUAL(sc->monitoring.n_buckets, 2);
    sc_free(sc);
    sc = expect_ok(MINIMAL "slo: {latency_p99: 300ms, availability: 0.999}\n", NULL, 0);
    if (sc) {
        CU_ASSERT_EQUAL(sc->monitoring.n_buckets, 12);
        CU_ASSERT_DOUBLE_EQUAL(sc->monitoring.buckets_s[6], 0.3, 0);
        char err[256];
        char *text = sc_slo_rules_text(sc, err, sizeof err);
        CU_ASSERT_PTR_NOT_NULL(text);
        CU_ASSERT_PTR_NOT_NULL(text && strstr(text, "  - name: slo-availability\n"));
        CU_ASSERT_PTR_NOT_NULL(text && strstr(text, "  - name: slo-latency\n"));
        free(text);
    }
    sc_free(sc);
    /* slo_rules with no SLO to burn */
    expect_error(MINIMAL "monitoring: {slo_rules: true}\n", NULL, 0,
                 "14:25: monitoring.slo_rules: slo_rules needs slo.availability (below 1) or "
                 "slo.latency_p99");
}

/* load_balancer.nginx: an upstream block that fails part way, after some
 * of it was read (found by fuzzing: what was read leaked). */
static void test_nginx_errors(void)
{
    char conf[PATH_MAX + 16];
    fmt(conf, sizeof conf, "%s/up.conf", g_dir);
    write_file(conf, "upstream backend {\n"
                     "    server 10.0.0.1:8000;\n"
                     "    server 10.0.0.2:8000 colour=red;\n"
                     "}\n");
    expect_error(MINIMAL "load_balancer: {nginx: up.conf, upstream: backend}\n", NULL, 0,
                 "14:24: load_balancer.nginx: *");
    char want[PATH_MAX + 128];
    fmt(want, sizeof want, "14:24: load_balancer.nginx: %s:3:26: server parameter \"colour=red\" is not supported "
        "(weight=, max_fails=, fail_timeout=, max_conns=, backup, down)",
        conf);
    CU_ASSERT(has_line(want));
    write_file(conf, "upstream backend {\n    server 10.0.0.1:8000;\n");
    expect_error(MINIMAL "load_balancer: {nginx: up.conf, upstream: backend}\n", NULL, 0,
                 "14:24: load_balancer.nginx: *");
    fmt(want, sizeof want, "14:24: load_balancer.nginx: %s:1:18: unexpected end of file, expecting \"}\"",
        conf);
    CU_ASSERT(has_line(want));
    remove(conf);
}

/* start_time: an RFC 3339 date and time, UTC or with an offset, kept with
 * its offset; anything else (no zone, a day that does not exist, a
 * fraction) is refused with the key named. */
/* Every node slot has a random stream of its own: more than
 * SC_MAX_NODE_SLOTS in all pools is refused at the key that makes them. */
static void test_node_slot_bound(void)
{
    const char *at_bound[] = { "pools.gpu.max_replicas=1000000" };
    sc_free(expect_ok(MINIMAL, at_bound, 1));
    const char *past[] = { "pools.gpu.max_replicas=1000001" };
    expect_error(MINIMAL, past, 1,
                 "--set[1]:1:24: pools.gpu: 1000001 replicas make 1000001 node slots in all pools*");
    /* a rollout doubles the slots and adds its surge (1 by default):
     * 499,999 x 2 + 1 fits, 500,000 x 2 + 1 does not */
    const char *roll_ok[] = { "pools.gpu.max_replicas=499999", "pools.gpu.rollout.at=1m" };
    sc_free(expect_ok(MINIMAL, roll_ok, 2));
    const char *roll[] = { "pools.gpu.max_replicas=500000", "pools.gpu.rollout.at=1m" };
    expect_error(MINIMAL, roll, 2, "--set[1]:1:24: pools.gpu: 500000 replicas make 1000001 node*");
}

static void test_start_time(void)
{
    const char *ov[] = { "start_time=2026-03-02T09:30:00+01:00" };
    sc_scenario *sc = expect_ok(MINIMAL, ov, 1);
    CU_ASSERT_FATAL(sc != NULL);
    CU_ASSERT_EQUAL(sc->has_start_time, 1);
    CU_ASSERT_DOUBLE_EQUAL(sc->start_epoch_s, 1772434800 + 5400, 0); /* 08:30 UTC */
    CU_ASSERT_EQUAL(sc->start_utc_offset_s, 3600);
    sc_free(sc);
    sc = expect_ok(MINIMAL "start_time: 2024-02-29T00:00:00Z\n", NULL, 0);
    CU_ASSERT_FATAL(sc != NULL);
    CU_ASSERT_DOUBLE_EQUAL(sc->start_epoch_s, 1709164800, 0);
    CU_ASSERT_EQUAL(sc->start_utc_offset_s, 0);
    sc_free(sc);
    sc = expect_ok(MINIMAL, NULL, 0);
    CU_ASSERT_FATAL(sc != NULL);
    CU_ASSERT_EQUAL(sc->has_start_time, 0);
    sc_free(sc);
    const char *bad[] = { "2026-03-02T08:00:00", "2025-02-29T00:00:00Z", "2026-03-02 08:00:00Z",
                          "2026-03-02T08:00:00.5Z", "2026-03-02T24:00:00Z", "1969-12-31T23:59:59Z",
                          "2026-03-02T08:00:00+1:00" };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char text[1024], line[256];
        fmt(text, sizeof text, MINIMAL "start_time: \"%s\"\n", bad[i]);
        fmt(line, sizeof line, "14:13: start_time: expected a date and time in UTC or with an "
                               "offset*");
        expect_error(text, NULL, 0, line);
    }
}

int main(void)
{
    const char *src = getenv("FLEETSIM_SRC");
    char tmpl[] = "/tmp/fleetsim-scenario-XXXXXX";

    if (mkdtemp(tmpl) == NULL)
        return 1;
    fmt(g_dir, sizeof g_dir, "%s", tmpl);
    if (src)
        fmt(g_data, sizeof g_data, "%s/tests/sim/data", src);
    else { /* run by hand: find the fixtures from this file's path */
        fmt(g_data, sizeof g_data, "%s", __FILE__);
        char *slash = strrchr(g_data, '/');
        fmt(slash ? slash + 1 : g_data, sizeof g_data - (size_t)(slash ? slash + 1 - g_data : 0),
                 "data");
    }

    if (CU_initialize_registry() != CUE_SUCCESS)
        return 1;
    CU_pSuite s = CU_add_suite("scenario", NULL, NULL);
    CU_add_test(s, "a full scenario", test_full);
    CU_add_test(s, "defaults", test_defaults);
    CU_add_test(s, "power and price by gpu_type", test_gpu_type_defaults);
    CU_add_test(s, "shipped scenarios load", test_shipped_scenarios);
    CU_add_test(s, "file-level errors", test_file_level_errors);
    CU_add_test(s, "key errors", test_key_errors);
    CU_add_test(s, "type errors", test_type_errors);
    CU_add_test(s, "value errors", test_value_errors);
    CU_add_test(s, "reference errors", test_reference_errors);
    CU_add_test(s, "load_balancer.outlier_detection", test_outlier_detection);
    CU_add_test(s, "load_balancer.retries.on", test_retries_on);
    CU_add_test(s, "load_balancer: token-aware parameters", test_token_lb_params);
    CU_add_test(s, "service errors", test_service_errors);
    CU_add_test(s, "arrival errors", test_arrival_errors);
    CU_add_test(s, "odd shapes", test_odd_shapes);
    CU_add_test(s, "overrides", test_override_success);
    CU_add_test(s, "override errors", test_override_errors);
    CU_add_test(s, "relative paths", test_relative_paths);
    CU_add_test(s, "empirical samples and traces", test_empirical_and_trace);
    CU_add_test(s, "calibration profile", test_calibration_fixture);
    CU_add_test(s, "sc_model_mean_s", test_model_mean);
    CU_add_test(s, "calibration errors", test_calibration_errors);
    CU_add_test(s, "memory the exporters report", test_memory);
    CU_add_test(s, "latency SLO bucket and rules", test_slo_latency_bucket);
    CU_add_test(s, "nginx upstream errors", test_nginx_errors);
    CU_add_test(s, "start_time", test_start_time);
    CU_add_test(s, "node slots bound", test_node_slot_bound);
    CU_basic_set_mode(CU_BRM_VERBOSE);
    CU_basic_run_tests();
    int failures = (int)CU_get_number_of_failures();
    CU_cleanup_registry();
    free(g_err);

    /* Remove the temporary directory and what the tests wrote there. */
    static const char *const files[] = {
        "scenario.yaml", "lat.csv", "arr.csv", "bad.csv", "neg.csv", "back.csv", "empty.csv",
        "notjson.json", "other.json", "unsorted.json", "negfit.json", "flat.json", "sub/lat.csv", "sub/s.yaml", "sub", NULL};
    for (const char *const *f = files; *f; f++) {
        char p[PATH_MAX + 32];
        fmt(p, sizeof p, "%s/%s", g_dir, *f);
        remove(p);
    }
    rmdir(g_dir);
    return failures != 0;
}
