/*
 * test_compare_cli.c - `fleetsim compare`, `sweep` and `merge` through the
 * binary on a short scenario: a 2-variant x 3-seed grid gives the right
 * structure, each variant's numbers are exactly those of its runs'
 * summary.json files, a grid split in two shards and merged gives the same
 * compare.json, bad grids are refused with exit 2, and `run` writes a
 * report.html with the scenario's description and text escaped. On
 * scenarios/llm-chat.yaml (5 minutes), varying tensor_parallel and replicas:
 * the LLM columns of compare.json and compare.md are each run's
 * summary.json numbers, and the cheapest fleet that meets the TTFT / TPOT
 * SLO is chosen. merge on a folder without .jsonl files exits 2.
 */
#include "testutil.h"

#include <CUnit/Basic.h>
#include <cjson/cJSON.h>

#include <math.h>
#include <sys/stat.h>

static char *tmp;
static char scen[4200];

static const char *scenario_text =
    "name: cmp-test\n"
    "description: \"Risk & control <script>alert(1)</script>\"\n"
    "seed: 100\n"
    "duration: 120s\n"
    "interval: 5s\n"
    "models:\n"
    "  m:\n"
    "    service: {distribution: exponential, base: 10ms, per_item: 2ms}\n"
    "    batch: {max_size: 4, max_wait: 2ms}\n"
    "pools:\n"
    "  gpu: {model: m, replicas: 1, gpus_per_node: 1, queue_capacity: 64, timeout: 1s}\n"
    "traffic:\n"
    "  - name: api\n"
    "    pool: gpu\n"
    "    arrivals: {process: poisson, rate: [{at: 0s, qps: 80}, {at: 60s, qps: 300, ramp: 5s}]}\n"
    "slo: {latency_p99: 200ms, availability: 0.999}\n";

static cJSON *read_json(const char *path)
{
    char *t = tu_read(path);
    cJSON *j = t ? cJSON_Parse(t) : NULL;
    free(t);
    return j;
}

static void test_compare_grid(void)
{
    char out[4300], log[4300];
    snprintf(out, sizeof out, "%s/cmp", tmp);
    snprintf(log, sizeof log, "%s/cmp.log", tmp);
    int rc = tu_sh(log, "'%s' compare '%s' --vary pools.gpu.replicas=1,2 --seeds 3 --jobs 2 --out '%s'",
                   tu_bin(), scen, out);
    CU_ASSERT_EQUAL_FATAL(rc, 0);
    char path[4400];
    snprintf(path, sizeof path, "%s/compare.json", out);
    cJSON *j = read_json(path);
    CU_ASSERT_PTR_NOT_NULL_FATAL(j);
    cJSON *vs = cJSON_GetObjectItem(j, "variants");
    CU_ASSERT_EQUAL_FATAL(cJSON_GetArraySize(vs), 2);
    const char *want[] = { "pools.gpu.replicas=1", "pools.gpu.replicas=2" };
    const double t2 = 4.302652729911275; /* t(0.975, 2) */
    for (int v = 0; v < 2; v++) {
        cJSON *x = cJSON_GetArrayItem(vs, v);
        CU_ASSERT_STRING_EQUAL(cJSON_GetObjectItem(x, "label")->valuestring, want[v]);
        cJSON *seeds = cJSON_GetObjectItem(x, "seeds");
        CU_ASSERT_EQUAL_FATAL(cJSON_GetArraySize(seeds), 3);
        double vals[3];
        for (int s = 0; s < 3; s++) {
            /* seeds start at the scenario's and are the same for every variant */
            CU_ASSERT_EQUAL(cJSON_GetArrayItem(seeds, s)->valuedouble, 100 + s);
            char run[4500];
            snprintf(run, sizeof run, "%s/runs/v%d-seed%d", out, v, 100 + s);
            cJSON *sum = tu_summary(run);
            CU_ASSERT_PTR_NOT_NULL_FATAL(sum);
            CU_ASSERT_EQUAL(tu_num(sum, "seed"), 100 + s);
            CU_ASSERT_EQUAL(tu_num(sum, "pools.gpu.replicas_max"), v + 1);
            vals[s] = tu_num(sum, "latency_s.p99");
            cJSON_Delete(sum);
            char rep[4600];
            snprintf(rep, sizeof rep, "%s/report.html", run);
            struct stat st;
            CU_ASSERT_EQUAL(stat(rep, &st), 0);
        }
        cJSON *p99 = cJSON_GetObjectItem(cJSON_GetObjectItem(x, "metrics"), "latency_p99");
        double mean = (vals[0] + vals[1] + vals[2]) / 3;
        double sd = sqrt(((vals[0] - mean) * (vals[0] - mean) + (vals[1] - mean) * (vals[1] - mean) +
                          (vals[2] - mean) * (vals[2] - mean)) / 2);
        CU_ASSERT_DOUBLE_EQUAL(cJSON_GetObjectItem(p99, "mean")->valuedouble, mean, 1e-12);
        CU_ASSERT_DOUBLE_EQUAL(cJSON_GetObjectItem(p99, "half_width")->valuedouble,
                               t2 * sd / sqrt(3), 1e-9);
        CU_ASSERT(sd > 0); /* different seeds really ran */
    }
    /* two replicas serve the 300 QPS step better than one */
    double av1 = tu_num(cJSON_GetArrayItem(vs, 0), "metrics.availability.mean");
    double av2 = tu_num(cJSON_GetArrayItem(vs, 1), "metrics.availability.mean");
    CU_ASSERT(av2 > av1);
    cJSON_Delete(j);
    const char *files[] = { "compare.md", "compare.html", "runs.jsonl" };
    for (int i = 0; i < 3; i++) {
        snprintf(path, sizeof path, "%s/%s", out, files[i]);
        char *t = tu_read(path);
        CU_ASSERT_PTR_NOT_NULL(t);
        if (t && i == 0)
            CU_ASSERT_PTR_NOT_NULL(strstr(t, "| pools.gpu.replicas=2 |"));
        free(t);
    }

    /* the same grid as two shards, merged: the same numbers */
    char sw[4300];
    snprintf(sw, sizeof sw, "%s/sweep", tmp);
    for (int k = 1; k <= 2; k++) {
        rc = tu_sh(log, "'%s' sweep '%s' --vary pools.gpu.replicas=1,2 --seeds 3 --shard %d/2 "
                        "--jobs 2 --out '%s'",
                   tu_bin(), scen, k, sw);
        CU_ASSERT_EQUAL_FATAL(rc, 0);
    }
    snprintf(path, sizeof path, "%s/shard-1-of-2.jsonl", sw);
    char *shard = tu_read(path);
    CU_ASSERT_PTR_NOT_NULL_FATAL(shard);
    int lines = 0;
    for (char *p = shard; (p = strchr(p, '\n')); p++)
        lines++;
    CU_ASSERT_EQUAL(lines, 3); /* 6 runs, every other one */
    free(shard);
    char merged[4300];
    snprintf(merged, sizeof merged, "%s/merged", tmp);
    rc = tu_sh(log, "'%s' merge '%s' --out '%s'", tu_bin(), sw, merged);
    CU_ASSERT_EQUAL_FATAL(rc, 0);
    snprintf(path, sizeof path, "%s/compare.json", out);
    char *a = tu_read(path);
    snprintf(path, sizeof path, "%s/compare.json", merged);
    char *b = tu_read(path);
    CU_ASSERT_PTR_NOT_NULL_FATAL(b);
    CU_ASSERT_STRING_EQUAL(a, b);
    free(a);
    free(b);
    char *whole = tu_read(log);
    CU_ASSERT(whole && !strstr(whole, "missing"));
    free(whole);
    /* a partial sweep merges with a warning that names the shard missing */
    char part[4400];
    snprintf(part, sizeof part, "%s/part", tmp);
    rc = tu_sh(log, "mkdir -p '%s' && cp '%s/shard-2-of-2.jsonl' '%s/' && '%s' merge '%s' --out "
                    "'%s/out'",
               part, sw, part, tu_bin(), part, part);
    CU_ASSERT_EQUAL(rc, 0);
    char *warn = tu_read(log);
    CU_ASSERT(warn && strstr(warn, "fleetsim: merge: warning: 1 of 2 shards missing, so the runs "
                                   "and seed counts are those of the shards found; missing: "
                                   "shard-1-of-2.jsonl\n"));
    free(warn);
    /* merging the same shard twice is refused */
    rc = tu_sh(log, "'%s' merge '%s' '%s' --out '%s'", tu_bin(), sw, sw, merged);
    CU_ASSERT_EQUAL(rc, 2);
}

static void test_bad_grids(void)
{
    char log[4300];
    snprintf(log, sizeof log, "%s/bad.log", tmp);
    CU_ASSERT_EQUAL(tu_sh(log, "'%s' compare '%s' --vary pools.gpu.replicas", tu_bin(), scen), 2);
    CU_ASSERT_EQUAL(tu_sh(log, "'%s' compare '%s' --vary pools.gpu.nope=1,2 --out '%s/x'", tu_bin(),
                          scen, tmp),
                    2);
    char *msg = tu_read(log);
    CU_ASSERT_PTR_NOT_NULL(msg && strstr(msg, "nope"));
    free(msg);
    /* errors name the option at fault and print once, not once per variant */
    CU_ASSERT_EQUAL(tu_sh(log, "'%s' compare '%s' --vary pools.gpu.replicas=2,abc,4 --vary "
                               "load_balancer.policy=least_conn,nope --set duration=abc --out '%s/x'",
                          tu_bin(), scen, tmp),
                    2);
    msg = tu_read(log);
    CU_ASSERT_PTR_NOT_NULL_FATAL(msg);
    const char *expect[] = { "--set[1]:1:10: duration: expected a duration > 0",
                           "--vary[1]:1:20: pools.gpu.replicas: expected an integer >= 1, got \"abc\"",
                           "--vary[2]:1:22: load_balancer.policy: unknown policy \"nope\"" };
    for (size_t i = 0; i < 3; i++) {
        const char *at = strstr(msg, expect[i]);
        CU_ASSERT(at != NULL && strstr(at + 1, expect[i]) == NULL);
    }
    int lines = 0;
    for (const char *p = msg; (p = strchr(p, '\n')); p++)
        lines++;
    CU_ASSERT_EQUAL(lines, 3);
    free(msg);
    CU_ASSERT_EQUAL(tu_sh(log, "'%s' compare '%s' --seeds 0", tu_bin(), scen), 2);
    CU_ASSERT_EQUAL(tu_sh(log, "'%s' sweep '%s' --shard 3/2 --out '%s/y'", tu_bin(), scen, tmp), 2);
    CU_ASSERT_EQUAL(tu_sh(log, "'%s' sweep '%s' --out '%s/y'", tu_bin(), scen, tmp), 2);
    CU_ASSERT_EQUAL(tu_sh(log, "'%s' merge '%s/does-not-exist'", tu_bin(), tmp), 2);

    /* a reference without "columns" is refused, not printed about and used */
    char shards[4300], ref[4300], out[4300], want[4600];
    snprintf(shards, sizeof shards, "%s/ref-shards", tmp);
    snprintf(ref, sizeof ref, "%s/ref.json", tmp);
    snprintf(out, sizeof out, "%s/ref-out", tmp);
    mkdir(shards, 0700);
    char path[4400];
    snprintf(path, sizeof path, "%s/s.jsonl", shards);
    tu_write(path, "{\"variant\": 0, \"label\": \"a\", \"seed\": 1, \"summary\": {}}\n");
    tu_write(ref, "{\"rows\": [{\"label\": \"Mean\", \"metric\": \"latency_mean\"}]}");
    CU_ASSERT_EQUAL(tu_sh(log, "'%s' merge '%s' --reference '%s' --out '%s'", tu_bin(), shards, ref,
                          out), 2);
    msg = tu_read(log);
    snprintf(want, sizeof want, "fleetsim: %s: not a reference file (a JSON object with \"columns\" "
             "and \"rows\" arrays; see reports/README.md)\n", ref);
    CU_ASSERT_PTR_NOT_NULL(msg);
    if (msg)
        CU_ASSERT_STRING_EQUAL(msg, want);
    free(msg);
    snprintf(path, sizeof path, "%s/compare.json", out);
    CU_ASSERT_NOT_EQUAL(access(path, F_OK), 0);
    /* with columns it is taken */
    tu_write(ref, "{\"columns\": [{\"label\": \"A\", \"variant\": \"a\"}], "
                  "\"rows\": [{\"label\": \"Mean\", \"metric\": \"latency_mean\"}]}");
    CU_ASSERT_EQUAL(tu_sh(log, "'%s' merge '%s' --reference '%s' --out '%s'", tu_bin(), shards, ref,
                          out), 0);
    CU_ASSERT_EQUAL(access(path, F_OK), 0);
}

static void test_run_writes_escaped_report(void)
{
    char out[4300], log[4300], path[4400];
    snprintf(out, sizeof out, "%s/run", tmp);
    snprintf(log, sizeof log, "%s/run.log", tmp);
    CU_ASSERT_EQUAL_FATAL(tu_sh(log, "'%s' run '%s' --out '%s' --quiet", tu_bin(), scen, out), 0);
    snprintf(path, sizeof path, "%s/report.html", out);
    char *html = tu_read(path);
    CU_ASSERT_PTR_NOT_NULL_FATAL(html);
    CU_ASSERT_PTR_NULL(strstr(html, "<script"));
    CU_ASSERT_PTR_NOT_NULL(strstr(html, "Risk &amp; control &lt;script&gt;alert(1)&lt;/script&gt;"));
    CU_ASSERT_PTR_NOT_NULL(strstr(html, "description: &quot;Risk &amp; control")); /* the YAML */
    CU_ASSERT_PTR_NOT_NULL(strstr(html, "SLO missed")); /* 300 QPS on one node */
    free(html);
}


/* A cell of compare.md's row for `label` under the column `col`, with the
 * best-variant marks (** and the star) taken off; "" when absent. */
static void md_cell(const char *md, const char *label, const char *col, char *out, size_t n)
{
    out[0] = '\0';
    const char *head = strstr(md, "| variant |");
    char row_start[512];
    snprintf(row_start, sizeof row_start, "\n| %s |", label);
    const char *row = strstr(md, row_start);
    if (!head || !row)
        return;
    row++;
    int k = -1, i = 0;
    for (const char *p = head; *p && *p != '\n'; p++)
        if (*p == '|') {
            size_t len = strlen(col);
            if (!strncmp(p + 2, col, len) && !strncmp(p + 2 + len, " |", 2))
                k = i;
            i++;
        }
    if (k < 0)
        return;
    const char *p = row;
    for (int j = 0; j < k && p; j++)
        p = strchr(p + 1, '|');
    if (!p)
        return;
    const char *e = strchr(p + 1, '|');
    size_t m = 0;
    for (const char *q = p + 2; q < e - 1 && m + 1 < n; q++) {
        if (*q == '*')
            continue;
        if (!strncmp(q, " \xE2\x98\x85", 4)) {
            q += 3;
            continue;
        }
        out[m++] = *q;
    }
    out[m] = '\0';
}

/* compare.md's "mean ± half-width" of seeds that gave the same value */
static void same_cell(char *buf, size_t n, const char *fmt, double v)
{
    snprintf(buf, n, fmt, v, 0.0);
}

static void test_compare_llm(void)
{
    char out[4300], log[4300], path[4400];
    snprintf(out, sizeof out, "%s/llm", tmp);
    snprintf(log, sizeof log, "%s/llm.log", tmp);
    int rc = tu_sh(log, "'%s' compare '%s/scenarios/llm-chat.yaml' --set duration=5m --seeds 2 "
                   "--vary pools.chat.tensor_parallel=2,8 --vary pools.chat.replicas=1,2 --jobs 2 "
                   "--out '%s'", tu_bin(), tu_src(), out);
    CU_ASSERT_EQUAL_FATAL(rc, 0);
    snprintf(path, sizeof path, "%s/compare.json", out);
    cJSON *j = read_json(path);
    CU_ASSERT_PTR_NOT_NULL_FATAL(j);
    snprintf(path, sizeof path, "%s/compare.md", out);
    char *md = tu_read(path);
    CU_ASSERT_PTR_NOT_NULL_FATAL(md);
    CU_ASSERT_PTR_NOT_NULL(strstr(md, " | TTFT p99 | TPOT p99 | E2E p99 | goodput | output tok/s "
                                      "| cost / M output tokens | GPUs | SLO |\n"));
    const cJSON *vs = cJSON_GetObjectItem(j, "variants");
    CU_ASSERT_EQUAL_FATAL(cJSON_GetArraySize(vs), 4);
    /* metric key, path in pools.chat.llm (NULL: GPUs), compare.md column */
    const struct {
        const char *key, *path, *col;
    } ms[] = { { "ttft_p99", "ttft_s.p99", "TTFT p99" },
               { "tpot_p99", "tpot_s.p99", "TPOT p99" },
               { "e2e_p99", "e2e_s.p99", "E2E p99" },
               { "goodput", "goodput", "goodput" },
               { "output_tps", "output_tokens_per_s", "output tok/s" },
               { "cost_per_mtok", "cost_per_million_output_tokens", "cost / M output tokens" },
               { "llm_gpus", NULL, "GPUs" } };
    int met_all[4];
    double gpu_hours[4];
    for (int v = 0; v < 4; v++) {
        const cJSON *x = cJSON_GetArrayItem(vs, v);
        const char *label = cJSON_GetObjectItem(x, "label")->valuestring;
        int tp = v < 2 ? 2 : 8, reps = v % 2 ? 2 : 1;
        char want[128];
        snprintf(want, sizeof want, "pools.chat.tensor_parallel=%d, pools.chat.replicas=%d", tp,
                 reps);
        CU_ASSERT_STRING_EQUAL(label, want);
        met_all[v] = 1;
        double first[7];
        for (int s = 0; s < 2; s++) {
            char run[4500];
            snprintf(run, sizeof run, "%s/runs/v%d-seed%d", out, v, 1 + s);
            cJSON *sum = tu_summary(run);
            CU_ASSERT_PTR_NOT_NULL_FATAL(sum);
            const cJSON *pool = cJSON_GetObjectItem(cJSON_GetObjectItem(sum, "pools"), "chat");
            const cJSON *l = cJSON_GetObjectItem(pool, "llm");
            CU_ASSERT_EQUAL(tu_num(l, "tensor_parallel"), tp);
            for (int m = 0; m < 7; m++) {
                double want_v = ms[m].path ? tu_num(l, ms[m].path)
                                           : tu_num(pool, "replicas_max") *
                                                 tu_num(pool, "gpus_per_node");
                char key[64];
                snprintf(key, sizeof key, "metrics.%s.values", ms[m].key);
                const cJSON *vals = cJSON_GetObjectItem(cJSON_GetObjectItem(
                                                            cJSON_GetObjectItem(x, "metrics"),
                                                            ms[m].key),
                                                        "values");
                CU_ASSERT_EQUAL(cJSON_GetArrayItem(vals, s)->valuedouble, want_v);
                if (s == 0)
                    first[m] = want_v;
                else /* a trace replayed: the seed changes nothing */
                    CU_ASSERT_EQUAL(want_v, first[m]);
            }
            CU_ASSERT_EQUAL(tu_num(pool, "replicas_max"), reps);
            met_all[v] &= cJSON_IsTrue(cJSON_GetObjectItem(cJSON_GetObjectItem(sum, "slo"), "met"));
            gpu_hours[v] = tu_num(sum, "cost.gpu_hours");
            cJSON_Delete(sum);
        }
        /* compare.md: the same numbers, mean +/- 0 */
        char cell[128], exp[128];
        for (int m = 0; m < 7; m++) {
            md_cell(md, label, ms[m].col, cell, sizeof cell);
            double y = first[m];
            if (m < 3)
                same_cell(exp, sizeof exp, y < 1 ? "%.1f ms \xC2\xB1 %.1f ms" : "%.3f s \xC2\xB1 %.3f s",
                          y < 1 ? 1e3 * y : y);
            else if (m == 3)
                snprintf(exp, sizeof exp, y == 1 ? "100%% \xC2\xB1 0%%"
                                          : y > 0.99 ? "%.4f%% \xC2\xB1 0%%" : "%.2f%% \xC2\xB1 0%%",
                         100 * y);
            else if (m == 4)
                same_cell(exp, sizeof exp, "%.2f \xC2\xB1 %.2f", y);
            else if (m == 5)
                same_cell(exp, sizeof exp, "%.3f \xC2\xB1 %.3f", y);
            else
                snprintf(exp, sizeof exp, "%.0f \xC2\xB1 0", y);
            if (strcmp(cell, exp))
                fprintf(stderr, "\n  %s, %s: compare.md \"%s\", summary.json \"%s\"", label,
                        ms[m].col, cell, exp);
            CU_ASSERT_STRING_EQUAL(cell, exp);
        }
        md_cell(md, label, "SLO", cell, sizeof cell);
        snprintf(exp, sizeof exp, met_all[v] ? "meets (2/2)" : "misses (0/2)");
        CU_ASSERT_STRING_EQUAL(cell, exp);
        const cJSON *slo = cJSON_GetObjectItem(x, "slo");
        CU_ASSERT_EQUAL(tu_num(slo, "ttft_p99_s"), 0.5);
        CU_ASSERT_EQUAL(tu_num(slo, "tpot_p99_s"), 0.05);
    }
    /* tensor_parallel 2 on one node misses its TTFT; on two it still does;
     * tensor_parallel 8 meets it on one node, which costs half of two */
    CU_ASSERT_FALSE(met_all[0]);
    CU_ASSERT_FALSE(met_all[1]);
    CU_ASSERT_TRUE(met_all[2]);
    CU_ASSERT_TRUE(met_all[3]);
    CU_ASSERT_EQUAL(gpu_hours[2], 8 * 300 / 3600.0);
    CU_ASSERT_EQUAL(gpu_hours[3], 2 * gpu_hours[2]);
    const cJSON *choice = cJSON_GetObjectItem(j, "slo_choice");
    CU_ASSERT_TRUE_FATAL(cJSON_IsString(choice));
    CU_ASSERT_STRING_EQUAL(choice->valuestring, "pools.chat.tensor_parallel=8, pools.chat.replicas=1");
    char *text = tu_read(log);
    CU_ASSERT_PTR_NOT_NULL(text && strstr(text, "cheapest variant that meets the SLO: "
                                                "pools.chat.tensor_parallel=8, pools.chat.replicas=1\n"));
    free(text);
    free(md);
    cJSON_Delete(j);
}

/* merge on a folder with no .jsonl files: exit 2 and say so (no sorting
 * of an empty list: qsort's pointer must not be NULL, even for 0 items) */
static void test_merge_nothing(void)
{
    char empty[4300], log[4300], path[4400];
    snprintf(empty, sizeof empty, "%s/no-shards", tmp);
    snprintf(log, sizeof log, "%s/no-shards.log", tmp);
    mkdir(empty, 0700);
    snprintf(path, sizeof path, "%s/notes.txt", empty);
    tu_write(path, "not a shard\n");
    CU_ASSERT_EQUAL(tu_sh(log, "'%s' merge '%s'", tu_bin(), empty), 2);
    char *msg = tu_read(log);
    CU_ASSERT_PTR_NOT_NULL(msg);
    if (msg)
        CU_ASSERT_STRING_EQUAL(msg, "fleetsim: merge: no .jsonl files in the directories given\n");
    free(msg);
}

/* `fleetsim list`: every registry and the fault kinds, one name per entry. */
static void test_list(void)
{
    char *dir = tu_tmpdir();
    char log[4096];
    snprintf(log, sizeof log, "%s/list", dir);
    CU_ASSERT_EQUAL(tu_sh(log, "'%s' list", tu_bin()), 0);
    char *text = tu_read(log);
    CU_ASSERT_PTR_NOT_NULL(text);
    const char *want[] = { "\n  least_conn ", "\n  p2c_least_request ", "\n  least_tokens ",
                           "\n  vllm_dp ", "\n  prefix_affinity ", "\n  kv_aware ", "\n  hpa ", "\n  kpa ",
                           " node_crash", " cache_down", " broker_down", " spot_reclaim",
                           " quota_exhausted", " link_down" };
    for (size_t i = 0; text && i < sizeof want / sizeof want[0]; i++) {
        /* a whole name: followed by a space or the end of its line */
        const char *at = text;
        size_t len = strlen(want[i]);
        while ((at = strstr(at, want[i])) && at[len] != ' ' && at[len] != '\n')
            at += len;
        if (!at) {
            fprintf(stderr, "\n  list lacks \"%s\"\n", want[i]);
            CU_FAIL("fleetsim list");
        }
    }
    free(text);
    tu_done(dir);
}

int main(void)
{
    tmp = tu_tmpdir();
    if (!tmp || CU_initialize_registry() != CUE_SUCCESS)
        return 1;
    snprintf(scen, sizeof scen, "%s/cmp.yaml", tmp);
    tu_write(scen, scenario_text);
    CU_pSuite s = CU_add_suite("compare", NULL, NULL);
    CU_add_test(s, "2 variants x 3 seeds; shards merge to the same", test_compare_grid);
    CU_add_test(s, "bad grids exit 2", test_bad_grids);
    CU_add_test(s, "run writes an escaped report.html", test_run_writes_escaped_report);
    CU_add_test(s, "list: policies and faults", test_list);
    CU_add_test(s, "llm-chat: LLM columns and the cheapest fleet meeting the SLO",
                test_compare_llm);
    CU_add_test(s, "merge on a folder without .jsonl files exits 2", test_merge_nothing);
    CU_basic_set_mode(CU_BRM_VERBOSE);
    CU_basic_run_tests();
    unsigned fails = CU_get_number_of_failures();
    CU_cleanup_registry();
    tu_rm_rf(tmp);
    free(tmp);
    return fails != 0;
}
