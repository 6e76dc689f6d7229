/*
 * test_compare.c - the statistics and outputs of a comparison on hand-built
 * records: t-intervals against values computed by hand from the t table,
 * overlap and the "best" mark, compare.json's structure and numbers, the
 * markdown table, and a .jsonl round trip (what `fleetsim merge` reads).
 */
#include "compare.h"

#include <CUnit/Basic.h>
#include <cjson/cJSON.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char tmpl[] = "/tmp/fleetsim-compare-XXXXXX";
static const char *dir;

/* t(0.975, 4) = 2.776445105 and t(0.975, 2) = 4.302652730 (t tables). */
static void test_ci_by_hand(void)
{
    rp_ci ci;
    double x[] = { 1, 2, 3, 4, 5 };
    rp_ci95(x, 5, &ci);
    CU_ASSERT_EQUAL(ci.n, 5);
    CU_ASSERT_DOUBLE_EQUAL(ci.mean, 3, 1e-12);
    CU_ASSERT_DOUBLE_EQUAL(ci.sd, sqrt(2.5), 1e-12);
    CU_ASSERT_DOUBLE_EQUAL(ci.half, 2.776445105 * sqrt(2.5) / sqrt(5), 1e-8);
    CU_ASSERT_DOUBLE_EQUAL(ci.lo, 3 - 1.963243, 1e-6);
    CU_ASSERT_DOUBLE_EQUAL(ci.hi, 3 + 1.963243, 1e-6);

    double y[] = { 10, NAN, 12, 14 }; /* NAN skipped: n = 3, sd = 2 */
    rp_ci95(y, 4, &ci);
    CU_ASSERT_EQUAL(ci.n, 3);
    CU_ASSERT_DOUBLE_EQUAL(ci.mean, 12, 1e-12);
    CU_ASSERT_DOUBLE_EQUAL(ci.half, 4.302652730 * 2 / sqrt(3), 1e-8);

    double one[] = { 7 };
    rp_ci95(one, 1, &ci);
    CU_ASSERT_DOUBLE_EQUAL(ci.mean, 7, 0);
    CU_ASSERT_TRUE(isnan(ci.half));

    double same[] = { 4, 4, 4 };
    rp_ci95(same, 3, &ci);
    CU_ASSERT_DOUBLE_EQUAL(ci.half, 0, 0);
}

static void test_overlap(void)
{
    double a[] = { 10, 11, 12 }, b[] = { 20, 21, 22 }, c[] = { 11, 15, 19 };
    rp_ci ca, cb, cc;
    rp_ci95(a, 3, &ca); /* 11 +- 2.48 */
    rp_ci95(b, 3, &cb); /* 21 +- 2.48 */
    rp_ci95(c, 3, &cc); /* 15 +- 9.94: overlaps both */
    CU_ASSERT_TRUE(rp_ci_better(&ca, &cb, -1));
    CU_ASSERT_FALSE(rp_ci_better(&ca, &cb, +1));
    CU_ASSERT_TRUE(rp_ci_better(&cb, &ca, +1));
    CU_ASSERT_FALSE(rp_ci_better(&ca, &cc, -1));
    CU_ASSERT_FALSE(rp_ci_better(&cb, &cc, +1));
    double one[] = { 0 };
    rp_ci c1;
    rp_ci95(one, 1, &c1); /* one run: no interval, never "better" */
    CU_ASSERT_FALSE(rp_ci_better(&c1, &cb, -1));
}

/* A record as `fleetsim compare` makes one, with the fields compare reads. */
static cJSON *record(int variant, const char *label, unsigned long seed, double avail, double p99,
                     double gpu_hours)
{
    char text[2048];
    snprintf(text, sizeof text,
             "{\"variant\":%d,\"label\":\"%s\",\"scenario\":\"s.yaml\",\"sets\":[\"a.b=%d\"],"
             "\"seed\":%lu,\"summary\":{\"availability\":%.17g,"
             "\"latency_s\":{\"mean\":0.1,\"p50\":0.05,\"p99\":%.17g},"
             "\"measured\":{\"rejected\":%lu,\"failed\":0,\"timed_out\":1},"
             "\"cost\":{\"gpu_hours\":%.17g,\"energy_kwh\":1},"
             "\"pools\":{\"gpu\":{\"replicas_max\":%d}}},"
             "\"series\":{\"interval_s\":10,\"sim_time_s\":30,\"t_s\":[0,10,20],"
             "\"offered_qps\":[1,2,1],\"served_qps\":[1,2,1],\"errors_qps\":[0,0,0],"
             "\"p99_s\":[0.1,null,0.1],\"replicas\":[1,1,1]}}",
             variant, label, variant, seed, avail, p99, seed, gpu_hours, variant + 1);
    return cJSON_Parse(text);
}

static const cJSON *metric_of(const cJSON *j, int v, const char *key)
{
    const cJSON *var = cJSON_GetArrayItem(cJSON_GetObjectItem(j, "variants"), v);
    return cJSON_GetObjectItem(cJSON_GetObjectItem(var, "metrics"), key);
}

static char *slurp(const char *name)
{
    char path[512];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *b = malloc((size_t)n + 1);
    b[fread(b, 1, (size_t)n, f)] = '\0';
    fclose(f);
    return b;
}

static void test_compare_outputs(void)
{
    rp_compare *c = rp_compare_new();
    /* variant 1 "B & <b>": clearly better availability; p99 overlapping */
    double av[2][3] = { { 0.990, 0.992, 0.994 }, { 0.9990, 0.9992, 0.9994 } };
    double p99[2][3] = { { 0.30, 0.50, 0.70 }, { 0.35, 0.45, 0.60 } };
    const char *labels[] = { "A", "B & <b>" };
    for (int v = 1; v >= 0; v--) /* added out of order: reported by index */
        for (int s = 0; s < 3; s++) {
            cJSON *r = record(v, labels[v], 40 + (unsigned long)s, av[v][s], p99[v][s], 24.0 * (v + 1));
            CU_ASSERT_EQUAL(rp_compare_add(c, r, stderr), 0);
            cJSON_Delete(r);
        }
    cJSON *dup = record(0, "A", 41, 0.5, 0.5, 1);
    CU_ASSERT_EQUAL(rp_compare_add(c, dup, stderr), -1); /* same variant and seed twice */
    cJSON_Delete(dup);
    cJSON *clash = record(0, "not A", 99, 0.5, 0.5, 1);
    CU_ASSERT_EQUAL(rp_compare_add(c, clash, stderr), -1); /* index 0 is "A" */
    cJSON_Delete(clash);
    CU_ASSERT_EQUAL(rp_compare_n_variants(c), 2);
    CU_ASSERT_EQUAL_FATAL(rp_compare_write(c, dir, NULL, stderr), 0);

    char *text = slurp("compare.json");
    cJSON *j = cJSON_Parse(text);
    CU_ASSERT_PTR_NOT_NULL_FATAL(j);
    CU_ASSERT_EQUAL(cJSON_GetArraySize(cJSON_GetObjectItem(j, "variants")), 2);
    const cJSON *v0 = cJSON_GetArrayItem(cJSON_GetObjectItem(j, "variants"), 0);
    CU_ASSERT_STRING_EQUAL(cJSON_GetObjectItem(v0, "label")->valuestring, "A");
    CU_ASSERT_EQUAL(cJSON_GetArraySize(cJSON_GetObjectItem(v0, "seeds")), 3);
    const cJSON *a0 = metric_of(j, 0, "availability");
    CU_ASSERT_EQUAL(cJSON_GetObjectItem(a0, "n")->valueint, 3);
    CU_ASSERT_DOUBLE_EQUAL(cJSON_GetObjectItem(a0, "mean")->valuedouble, 0.992, 1e-12);
    /* sd of {0.990, 0.992, 0.994} is 0.002; half = t(0.975,2) * 0.002 / sqrt(3) */
    CU_ASSERT_DOUBLE_EQUAL(cJSON_GetObjectItem(a0, "half_width")->valuedouble,
                           4.302652730 * 0.002 / sqrt(3), 1e-9);
    CU_ASSERT_DOUBLE_EQUAL(cJSON_GetObjectItem(a0, "ci95_lo")->valuedouble,
                           0.992 - 4.302652730 * 0.002 / sqrt(3), 1e-9);
    const cJSON *e1 = metric_of(j, 1, "errors"); /* rejected = seed, + 1 timed out */
    CU_ASSERT_DOUBLE_EQUAL(cJSON_GetObjectItem(e1, "mean")->valuedouble, 42, 1e-12);
    const cJSON *r1 = metric_of(j, 1, "peak_replicas");
    CU_ASSERT_DOUBLE_EQUAL(cJSON_GetObjectItem(r1, "mean")->valuedouble, 2, 0);
    const cJSON *best = cJSON_GetObjectItem(j, "best");
    CU_ASSERT_STRING_EQUAL(cJSON_GetObjectItem(best, "availability")->valuestring, "B & <b>");
    CU_ASSERT_TRUE(cJSON_IsNull(cJSON_GetObjectItem(best, "latency_p99"))); /* intervals overlap */
    CU_ASSERT_STRING_EQUAL(cJSON_GetObjectItem(best, "gpu_hours")->valuestring, "A"); /* sd 0 */
    CU_ASSERT_TRUE(cJSON_IsNull(cJSON_GetObjectItem(best, "latency_mean"))); /* equal means */
    CU_ASSERT_PTR_NULL(cJSON_GetObjectItem(best, "peak_replicas")); /* not ranked */
    CU_ASSERT_TRUE(cJSON_IsNull(cJSON_GetObjectItem(v0, "slo")));
    CU_ASSERT_TRUE(cJSON_IsNull(cJSON_GetObjectItem(j, "slo_choice")));
    cJSON_Delete(j);
    free(text);

    char *md = slurp("compare.md");
    CU_ASSERT_PTR_NOT_NULL_FATAL(md);
    CU_ASSERT_PTR_NOT_NULL(strstr(md, "| A | 99.2000% \xC2\xB1 0.4968% |"));
    CU_ASSERT_PTR_NOT_NULL(strstr(md, "| B & <b> | **99.9200% \xC2\xB1 0.0497%** \xE2\x98\x85 |"));
    CU_ASSERT_PTR_NULL(strstr(md, "SLO")); /* no scenario sets one: no column */
    CU_ASSERT_PTR_NULL(strstr(md, "cost, egress")); /* no priced pools: no columns */
    free(md);
    char *html = slurp("compare.html");
    CU_ASSERT_PTR_NOT_NULL_FATAL(html);
    CU_ASSERT_PTR_NULL(strstr(html, "<b>"));
    CU_ASSERT_PTR_NOT_NULL(strstr(html, "B &amp; &lt;b&gt;"));
    free(html);

    /* the same records through a .jsonl file give the same compare.json */
    char path[512];
    snprintf(path, sizeof path, "%s/runs.jsonl", dir);
    FILE *f = fopen(path, "w");
    for (int v = 0; v < 2; v++)
        for (int s = 0; s < 3; s++) {
            cJSON *r = record(v, labels[v], 40 + (unsigned long)s, av[v][s], p99[v][s], 24.0 * (v + 1));
            char *line = cJSON_PrintUnformatted(r);
            fprintf(f, "%s\n", line);
            cJSON_free(line);
            cJSON_Delete(r);
        }
    fclose(f);
    char *before = slurp("compare.json");
    rp_compare *c2 = rp_compare_new();
    CU_ASSERT_EQUAL(rp_compare_load_jsonl(c2, path, stderr), 0);
    CU_ASSERT_EQUAL(rp_compare_write(c2, dir, NULL, stderr), 0);
    char *after = slurp("compare.json");
    CU_ASSERT_STRING_EQUAL(before, after);
    free(before);
    free(after);
    rp_compare_free(c2);
    rp_compare_free(c);
}

/* Priced pools (a hybrid fleet's pools.<name>.cost): the cost and its
 * amortised, pay-per-use and egress parts, summed over pools; shown only
 * when a run has them (the records above have none: no such column). */
static void test_priced_pools(void)
{
    rp_compare *c = rp_compare_new();
    for (int s = 0; s < 2; s++) {
        char text[2048];
        double egress = 0.01 * (s + 1);
        snprintf(text, sizeof text,
                 "{\"variant\":0,\"label\":\"hybrid\",\"scenario\":\"s.yaml\",\"sets\":[],"
                 "\"seed\":%d,\"summary\":{\"availability\":1,"
                 "\"latency_s\":{\"mean\":0.1,\"p50\":0.05,\"p99\":0.2},"
                 "\"measured\":{\"rejected\":0,\"failed\":0,\"timed_out\":0},"
                 "\"cost\":{\"gpu_hours\":4,\"energy_kwh\":1,\"money\":%.17g},"
                 "\"pools\":{"
                 "\"onprem\":{\"replicas_max\":4,\"cost\":{\"billing\":\"amortised\","
                 "\"compute\":2.4,\"egress_gb\":0.1,\"egress\":0,\"total\":2.4}},"
                 "\"cloud\":{\"replicas_max\":4,\"cost\":{\"billing\":\"used\","
                 "\"compute\":%d,\"egress_gb\":0.1,\"egress\":%.17g,\"total\":%.17g}},"
                 "\"edge\":{\"replicas_max\":1,\"cost\":{\"billing\":\"used\","
                 "\"compute\":0.5,\"egress_gb\":0,\"egress\":0,\"total\":0.5}}}},"
                 "\"series\":{\"interval_s\":10,\"sim_time_s\":10,\"t_s\":[0],"
                 "\"offered_qps\":[1],\"served_qps\":[1],\"errors_qps\":[0],"
                 "\"p99_s\":[0.1],\"replicas\":[9]}}",
                 s, 2.4 + 4 + s + egress + 0.5, 4 + s, egress, 4 + s + egress);
        cJSON *r = cJSON_Parse(text);
        CU_ASSERT_PTR_NOT_NULL_FATAL(r);
        CU_ASSERT_EQUAL(rp_compare_add(c, r, stderr), 0);
        cJSON_Delete(r);
    }
    CU_ASSERT_EQUAL_FATAL(rp_compare_write(c, dir, NULL, stderr), 0);
    char *text = slurp("compare.json");
    cJSON *j = cJSON_Parse(text);
    CU_ASSERT_PTR_NOT_NULL_FATAL(j);
    /* seeds 0 and 1: cloud compute 4 and 5, egress 0.01 and 0.02 */
    CU_ASSERT_DOUBLE_EQUAL(cJSON_GetObjectItem(metric_of(j, 0, "cost_amortised"), "mean")->valuedouble,
                           2.4, 1e-12);
    CU_ASSERT_DOUBLE_EQUAL(cJSON_GetObjectItem(metric_of(j, 0, "cost_used"), "mean")->valuedouble,
                           (4.5 + 5.5) / 2, 1e-12);
    CU_ASSERT_DOUBLE_EQUAL(cJSON_GetObjectItem(metric_of(j, 0, "cost_egress"), "mean")->valuedouble,
                           0.015, 1e-12);
    CU_ASSERT_DOUBLE_EQUAL(cJSON_GetObjectItem(metric_of(j, 0, "money"), "mean")->valuedouble,
                           2.4 + 4.5 + 0.015 + 0.5, 1e-12);
    cJSON_Delete(j);
    free(text);
    char *md = slurp("compare.md");
    CU_ASSERT_PTR_NOT_NULL(md && strstr(md, "cost, pay-per-use pools"));
    free(md);
    rp_compare_free(c);
}

/* Seeds are unsigned 64-bit numbers in fleetsim: one beyond an int is
 * printed whole (found by fuzzing: it was cast to int, undefined); a
 * variant or seed that is not a whole number >= 0 is refused. */
static void test_record_numbers(void)
{
    rp_compare *c = rp_compare_new();
    cJSON *r = record(0, "A", 7777777772UL, 0.99, 0.1, 1);
    CU_ASSERT_EQUAL(rp_compare_add(c, r, stderr), 0);
    cJSON_Delete(r);
    CU_ASSERT_EQUAL_FATAL(rp_compare_write(c, dir, NULL, stderr), 0);
    char *md = slurp("compare.md");
    CU_ASSERT_PTR_NOT_NULL(md && strstr(md, "1 variant, 1 seed each (seeds 7777777772\xE2\x80\x93"
                                              "7777777772)"));
    free(md);
    static const struct {
        const char *text, *msg;
    } bad[] = {
        {"{\"variant\": 0, \"label\": \"A\", \"seed\": 1.5, \"summary\": {}}",
         "fleetsim: record seed must be a whole number >= 0 (an unsigned 64-bit seed), got 1.5\n"},
        {"{\"variant\": 0, \"label\": \"A\", \"seed\": -2, \"summary\": {}}",
         "fleetsim: record seed must be a whole number >= 0 (an unsigned 64-bit seed), got -2\n"},
        {"{\"variant\": 1e10, \"label\": \"A\", \"seed\": 2, \"summary\": {}}",
         "fleetsim: record variant must be a whole number in [0, 2147483647], got 1e+10\n"},
        {"{\"variant\": 0.5, \"label\": \"A\", \"seed\": 2, \"summary\": {}}",
         "fleetsim: record variant must be a whole number in [0, 2147483647], got 0.5\n"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        char *buf = NULL;
        size_t n = 0;
        FILE *err = open_memstream(&buf, &n);
        cJSON *j = cJSON_Parse(bad[i].text);
        CU_ASSERT_EQUAL(rp_compare_add(c, j, err), -1);
        fclose(err);
        CU_ASSERT_STRING_EQUAL(buf, bad[i].msg);
        free(buf);
        cJSON_Delete(j);
    }
    CU_ASSERT_EQUAL(rp_compare_n_variants(c), 1);
    rp_compare_free(c);
}

static void test_reference(void)
{
    rp_compare *c = rp_compare_new();
    for (int v = 0; v < 2; v++)
        for (int s = 0; s < 2; s++) {
            cJSON *r = record(v, v ? "after" : "before", 1 + (unsigned long)s, 0.99, 0.1,
                              v ? 72 : 24);
            rp_compare_add(c, r, stderr);
            cJSON_Delete(r);
        }
    cJSON *ref = cJSON_Parse(
        "{\"title\":\"Reported vs simulated\",\"columns\":[{\"label\":\"before\",\"variant\":"
        "\"before\"},{\"label\":\"after\",\"variant\":\"after\"},{\"label\":\"hpa\",\"variant\":"
        "\"hpa\"}],\"rows\":[{\"label\":\"Hardware cost\",\"metric\":\"gpu_hours\",\"relative\":"
        "true,\"reported\":[\"\",\"-40%\",\"\"],\"note\":\"Why | it differs.\"}]}");
    CU_ASSERT_EQUAL_FATAL(rp_compare_write(c, dir, ref, stderr), 0);
    char *md = slurp("compare.md");
    /* after costs 3x before: +200%; a column whose variant did not run says so */
    CU_ASSERT_PTR_NOT_NULL(strstr(md, "| Hardware cost | \xE2\x80\x93 | 24.00 \xC2\xB1 0.00 | -40% | "
                                      "72.00 \xC2\xB1 0.00 (+200%) | \xE2\x80\x93 | not run |"));
    CU_ASSERT_PTR_NOT_NULL(strstr(md, "**Hardware cost.** Why | it differs."));
    free(md);
    cJSON_Delete(ref);
    rp_compare_free(c);
}

/* The SLO verdict per variant, against targets p99 <= 0.5 s and availability
 * >= 0.99, three seeds each (t(0.975, 2) = 4.302652730):
 * - small: p99 0.6/0.7/0.8, interval [0.45, 0.95]... every seed misses but
 *   the interval straddles: at risk (0/3);
 * - tight: p99 0.70/0.71/0.72, interval [0.685, 0.735] wholly above: misses;
 * - mid: p99 0.20/0.45/0.49, every seed within, but the interval
 *   0.38 +- 0.394 reaches 0.77: at risk (3/3);
 * - big: p99 0.30/0.31/0.32, availability 0.999: meets, 72 GPU-hours;
 * - huge: p99 0.1 each: meets, but 96 GPU-hours: big is the choice.
 * A run meeting it 3 times in 3 gives P(meet) >= 0.05^(1/3) = 0.36840. */
static void test_slo_verdict(void)
{
    struct { const char *label; double p99[3], avail, gh; const char *verdict; int met; } v[] = {
        { "small", { 0.6, 0.7, 0.8 }, 0.995, 24, "at risk", 0 },
        { "tight", { 0.70, 0.71, 0.72 }, 0.995, 30, "misses", 0 },
        { "mid", { 0.20, 0.45, 0.49 }, 0.995, 48, "at risk", 3 },
        { "big", { 0.30, 0.31, 0.32 }, 0.999, 72, "meets", 3 },
        { "huge", { 0.1, 0.1, 0.1 }, 0.999, 96, "meets", 3 },
    };
    rp_compare *c = rp_compare_new();
    for (int i = 0; i < 5; i++)
        for (int s = 0; s < 3; s++) {
            cJSON *r = record(i, v[i].label, 1 + (unsigned long)s, v[i].avail, v[i].p99[s], v[i].gh);
            cJSON *slo = cJSON_CreateObject();
            cJSON_AddNumberToObject(slo, "latency_p99_s", 0.5);
            cJSON_AddNumberToObject(slo, "availability", 0.99);
            cJSON_AddItemToObject(cJSON_GetObjectItem(r, "summary"), "slo", slo);
            CU_ASSERT_EQUAL(rp_compare_add(c, r, stderr), 0);
            cJSON_Delete(r);
        }
    CU_ASSERT_STRING_EQUAL(rp_compare_slo_choice(c), "big");
    CU_ASSERT_EQUAL_FATAL(rp_compare_write(c, dir, NULL, stderr), 0);
    char *text = slurp("compare.json");
    cJSON *j = cJSON_Parse(text);
    CU_ASSERT_PTR_NOT_NULL_FATAL(j);
    for (int i = 0; i < 5; i++) {
        const cJSON *slo =
            cJSON_GetObjectItem(cJSON_GetArrayItem(cJSON_GetObjectItem(j, "variants"), i), "slo");
        CU_ASSERT_STRING_EQUAL(cJSON_GetObjectItem(slo, "verdict")->valuestring, v[i].verdict);
        CU_ASSERT_EQUAL(cJSON_GetObjectItem(slo, "seeds_met")->valueint, v[i].met);
        CU_ASSERT_EQUAL(cJSON_GetObjectItem(slo, "seeds")->valueint, 3);
        CU_ASSERT_DOUBLE_EQUAL(cJSON_GetObjectItem(slo, "latency_p99_s")->valuedouble, 0.5, 0);
        CU_ASSERT_DOUBLE_EQUAL(cJSON_GetObjectItem(slo, "p_run_meets_lo95")->valuedouble,
                               v[i].met == 3 ? 0.368403149864 : 0, 1e-9);
    }
    CU_ASSERT_STRING_EQUAL(cJSON_GetObjectItem(j, "slo_choice")->valuestring, "big");
    cJSON_Delete(j);
    free(text);
    char *md = slurp("compare.md");
    CU_ASSERT_PTR_NOT_NULL(strstr(md, " peak replicas | SLO |\n|---|"));
    CU_ASSERT_PTR_NOT_NULL(strstr(md, " | 2 \xC2\xB1 0 | misses (0/3) |\n"));
    CU_ASSERT_PTR_NOT_NULL(strstr(md, " | 3 \xC2\xB1 0 | at risk (3/3) |\n"));
    CU_ASSERT_PTR_NOT_NULL(strstr(md, "Cheapest variant that meets it: **big** (72.00 \xC2\xB1 0.00 "
                                      "GPU-hours); 3 of 3 seeds met it, so a run meets it with "
                                      "probability at least 0.37"));
    free(md);
    rp_compare_free(c);

    /* one seed: no interval, so at best at risk; nothing is chosen */
    c = rp_compare_new();
    cJSON *r = record(0, "one", 1, 0.999, 0.1, 24);
    cJSON_AddItemToObject(cJSON_GetObjectItem(r, "summary"), "slo",
                          cJSON_Parse("{\"latency_p99_s\":0.5,\"availability\":null}"));
    rp_compare_add(c, r, stderr);
    cJSON_Delete(r);
    CU_ASSERT_PTR_NULL(rp_compare_slo_choice(c));
    CU_ASSERT_EQUAL_FATAL(rp_compare_write(c, dir, NULL, stderr), 0);
    md = slurp("compare.md");
    CU_ASSERT_PTR_NOT_NULL(strstr(md, "| at risk (1/1) |"));
    CU_ASSERT_PTR_NOT_NULL(strstr(md, "No variant meets it."));
    free(md);
    rp_compare_free(c);
}

int main(void)
{
    dir = mkdtemp(tmpl);
    if (!dir || CU_initialize_registry() != CUE_SUCCESS)
        return 1;
    CU_pSuite s = CU_add_suite("compare", NULL, NULL);
    CU_add_test(s, "t-intervals computed by hand", test_ci_by_hand);
    CU_add_test(s, "priced pools: cost and its parts", test_priced_pools);
    CU_add_test(s, "overlap decides better", test_overlap);
    CU_add_test(s, "compare.json, .md, .html and the jsonl round trip", test_compare_outputs);
    CU_add_test(s, "reported figures beside the simulated", test_reference);
    CU_add_test(s, "SLO verdicts, their seeds and the cheapest variant that meets it",
                test_slo_verdict);
    CU_add_test(s, "seeds beyond an int, and numbers that are not whole", test_record_numbers);
    CU_basic_set_mode(CU_BRM_VERBOSE);
    CU_basic_run_tests();
    unsigned fails = CU_get_number_of_failures();
    CU_cleanup_registry();
    char cmd[256];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0)
        fails++;
    return fails != 0;
}
