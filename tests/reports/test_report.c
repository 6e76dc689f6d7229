/*
 * test_report.c - report.html on hand-built results: strings from the
 * scenario are escaped (a pool named <script>alert(1)</script>, an & in the
 * description, the echoed YAML), every chart is well-formed XML (xmllint),
 * sections for alerts / scaling / faults / classes appear exactly when there
 * is data for them, fault markers are drawn on every time chart, and the
 * per-node heatmap stays at a readable number of rows for 10 and for 1,000
 * nodes with the busiest and idlest nodes shown, a chaos hypothesis verdict
 * beside the SLO's with the windows that broke it. Also the new lists in
 * summary.json. And through the binary: scenarios/llm-chat.yaml, cut to 5
 * minutes with a small KV cache (so it preempts) and SLO targets some met
 * and some missed, gives a page whose LLM numbers are summary.json's.
 */
#include "report.h"
#include "testutil.h"

#include <CUnit/Basic.h>
#include <cjson/cJSON.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define EVIL "<script>alert(1)</script>"

static char tmpl[] = "/tmp/fleetsim-report-XXXXXX";
static const char *dir;

static void fill(rp_results *r, int n_nodes)
{
    memset(r, 0, sizeof *r);
    r->scenario = strdup("unit & co");
    r->description = strdup("Risk & control, \"quoted\"");
    r->seed = 3;
    r->sim_time_s = 3600;
    r->interval_s = 10;
    r->requests = (rp_counts){ 1000, 950, 20, 10, 20, 0 };
    r->measured = r->requests;
    r->latency_s = (rp_latency){ 0.05, 0.04, 0.09, 0.2, 0.4, 0.5 };
    r->availability = 0.95;
    r->slo_latency_p99_s = 0.25;
    r->slo_availability = 0.999;
    r->n_pools = 1;
    r->pools = calloc(1, sizeof *r->pools);
    r->pools[0] = (rp_pool){ .name = strdup(EVIL), .gpus_per_node = 1, .replicas_min = n_nodes,
                             .replicas_max = n_nodes, .utilization = 0.5, .node_capacity_qps = 10 };
    r->n_samples = 360;
    r->samples = calloc(r->n_samples, sizeof *r->samples);
    for (size_t i = 0; i < r->n_samples; i++) {
        rp_sample *s = &r->samples[i];
        s->t_s = 10.0 * (double)i;
        s->offered_qps = i >= 150 && i < 155 ? 200 : 20;
        s->completed = 150;
        s->rejected = i >= 150 && i < 155 ? 4 : 0;
        s->p50_s = 0.04;
        s->p99_s = 0.2;
        s->pools = calloc(1, sizeof *s->pools);
        s->pools[0].replicas = n_nodes;
        s->pools[0].busy_gpus = 0.5 * n_nodes;
        s->pools[0].serving_gpus = n_nodes;
    }
    if (n_nodes > 0) {
        r->pools[0].n_nodes = n_nodes;
        r->pools[0].nodes = calloc((size_t)n_nodes, sizeof *r->pools[0].nodes);
        for (int j = 0; j < n_nodes; j++) {
            char name[32];
            snprintf(name, sizeof name, "node-%d", j);
            r->pools[0].nodes[j].name = strdup(name);
            r->pools[0].nodes[j].busy = calloc(r->n_samples, sizeof(double));
            for (size_t i = 0; i < r->n_samples; i++) /* node j: 0.2 + small spread */
                r->pools[0].nodes[j].busy[i] = 0.2 + 0.5 * (double)(j % 97) / 97.0;
        }
        /* one clearly busiest and one clearly idlest node */
        for (size_t i = 0; i < r->n_samples; i++) {
            r->pools[0].nodes[n_nodes / 2].busy[i] = 0.99;
            r->pools[0].nodes[n_nodes - 1].busy[i] = 0.01;
        }
    }
    rp_add_event(r, 0, "run_start", r->scenario, NULL);
}

static char *render(const rp_results *r, const char *yaml)
{
    rp_report_opts o = { .scenario_path = "dir/" EVIL ".yaml", .scenario_text = yaml };
    rp_buf b = { 0 };
    rp_report_html(r, &o, &b);
    return b.s;
}

static size_t count(const char *hay, const char *needle)
{
    size_t n = 0;
    for (const char *p = hay; (p = strstr(p, needle)); p += strlen(needle))
        n++;
    return n;
}

/* Every <svg>...</svg> of the page must parse as XML on its own. */
static int svgs_well_formed(const char *html, size_t *n_svg)
{
    *n_svg = 0;
    const char *p = html;
    int ok = 1;
    while ((p = strstr(p, "<svg "))) {
        const char *e = strstr(p, "</svg>");
        if (!e)
            return 0;
        e += 6;
        char path[512];
        snprintf(path, sizeof path, "%s/chart%zu.svg", dir, *n_svg);
        FILE *f = fopen(path, "w");
        fwrite(p, 1, (size_t)(e - p), f);
        fclose(f);
        char cmd[600];
        snprintf(cmd, sizeof cmd, "xmllint --noout '%s'", path);
        if (system(cmd) != 0)
            ok = 0;
        (*n_svg)++;
        p = e;
    }
    return ok;
}

static void test_escaping(void)
{
    rp_results r;
    fill(&r, 0);
    char *html = render(&r, "pools:\n  \"" EVIL "\": {replicas: 1}  # a & b\n");
    CU_ASSERT_PTR_NULL(strstr(html, "<script"));
    CU_ASSERT_PTR_NOT_NULL(strstr(html, "&lt;script&gt;alert(1)&lt;/script&gt;"));
    CU_ASSERT_PTR_NOT_NULL(strstr(html, "Risk &amp; control, &quot;quoted&quot;"));
    CU_ASSERT_PTR_NOT_NULL(strstr(html, "<h1>unit &amp; co"));
    CU_ASSERT_PTR_NOT_NULL(strstr(html, "# a &amp; b"));
    /* no bare ampersand anywhere: each & starts an entity */
    for (const char *p = html; (p = strchr(p, '&')); p++) {
        size_t k = strspn(p + 1, "abcdefghijklmnopqrstuvwxyz0123456789#");
        CU_ASSERT(k > 0 && p[1 + k] == ';');
        if (!(k > 0 && p[1 + k] == ';'))
            break;
    }
    size_t n_svg;
    CU_ASSERT_TRUE(svgs_well_formed(html, &n_svg));
    CU_ASSERT(n_svg >= 6);
    free(html);
    rp_results_free(&r);
}

static void test_sections_follow_data(void)
{
    rp_results r;
    fill(&r, 0);
    char *plain = render(&r, NULL);
    CU_ASSERT_PTR_NULL(strstr(plain, "<h2>Alerts</h2>"));
    CU_ASSERT_PTR_NULL(strstr(plain, "<h2>Scaling events</h2>"));
    CU_ASSERT_PTR_NULL(strstr(plain, "<h2>Faults"));
    CU_ASSERT_PTR_NULL(strstr(plain, "Per traffic class"));
    CU_ASSERT_PTR_NULL(strstr(plain, "class=\"marker\""));
    CU_ASSERT_PTR_NULL(strstr(plain, "<h2>Scenario</h2>"));
    CU_ASSERT_PTR_NULL(strstr(plain, "<h3>Caches</h3>"));
    CU_ASSERT_PTR_NULL(strstr(plain, "<h3>Queues</h3>"));
    CU_ASSERT_PTR_NULL(strstr(plain, "<h3>L7 balancers</h3>"));
    CU_ASSERT_PTR_NOT_NULL(strstr(plain, "GPU utilisation per pool"));
    /* the offered load is high for 50 s of an hour: a peak window is drawn first */
    CU_ASSERT_PTR_NOT_NULL(strstr(plain, "<h2>Peak window"));
    CU_ASSERT_PTR_NULL(strstr(plain, ">peak</div>")); /* no ready node: no busy share */
    free(plain);

    rp_alert a = { .name = "HighLatency", .severity = "critical", .receiver = "pager",
                   .pending_at = 1500, .firing_at = 1530, .resolved_at = NAN, .notified_at = 1560,
                   .summary = "p99 > 250ms" };
    rp_add_alert(&r, &a);
    rp_add_scaling(&r, 1520, EVIL, 1, 3, "cpu > 85%");
    rp_fault f = { .start_s = 1490, .end_s = 1600, .kind = "node_crash", .target = "gpu/1",
                   .failed = 12, .timed_out = 3, .error_share = 0.75 };
    rp_add_fault(&r, &f);
    r.n_classes = 1;
    r.classes = calloc(1, sizeof *r.classes);
    r.classes[0] = (rp_class){ .name = strdup("card-auth"), .pool = strdup(EVIL),
                               .counts = { 100, 90, 5, 5, 0, 0 } };
    r.n_caches = 1;
    r.caches = calloc(1, sizeof *r.caches);
    r.caches[0] = (rp_cache){ .name = strdup(EVIL), .hits = 35, .misses = 65 };
    r.n_queues = 1;
    r.queues = calloc(1, sizeof *r.queues);
    r.queues[0] = (rp_queue){ .name = strdup("decisions"), .consumer = strdup("store"),
                              .published = 900, .delivered = 880, .refused = 7,
                              .processed = 870, .lost = 3, .lag_s = { .p99 = 2.5 },
                              .backlog_max = 64, .backlog_at_end = 20 };
    r.n_balancers = 1;
    r.balancers = calloc(1, sizeof *r.balancers);
    r.balancers[0] = (rp_balancer){ .name = strdup("nginx-b"), .routed = 500, .refused = 9 };
    char *full = render(&r, "x: 1\n");
    CU_ASSERT_PTR_NOT_NULL(strstr(full, "<h3>Caches</h3>"));
    CU_ASSERT_PTR_NOT_NULL(strstr(full, "<td>35.00%</td>")); /* hit ratio 35/100 */
    CU_ASSERT_EQUAL(count(full, EVIL), 0);                   /* the cache's name escaped */
    CU_ASSERT_PTR_NOT_NULL(strstr(full, "<h3>Queues</h3>"));
    CU_ASSERT_PTR_NOT_NULL(strstr(full, "<td class=\"l\">decisions</td><td class=\"l\">store</td>"));
    CU_ASSERT_PTR_NOT_NULL(strstr(full, "<td>870</td><td>3</td>")); /* processed, lost */
    CU_ASSERT_PTR_NOT_NULL(strstr(full, "<h3>L7 balancers</h3>"));
    CU_ASSERT_PTR_NOT_NULL(strstr(full, "<h2>Alerts</h2>"));
    CU_ASSERT_PTR_NOT_NULL(strstr(full, "<h2>Scaling events</h2>"));
    CU_ASSERT_PTR_NOT_NULL(strstr(full, "<h2>Faults and what they caused</h2>"));
    CU_ASSERT_PTR_NOT_NULL(strstr(full, "Per traffic class"));
    CU_ASSERT_PTR_NOT_NULL(strstr(full, "<h2>Scenario</h2>"));
    CU_ASSERT_PTR_NOT_NULL(strstr(full, "75.00%"));          /* the fault's share of errors */
    CU_ASSERT_PTR_NOT_NULL(strstr(full, "<td>90.00%</td>")); /* class availability 90/100 */
    /* the fault is marked on every time chart (5 line charts, twice: zoom
     * and whole run) and listed; the scaling event on the replicas charts */
    CU_ASSERT_EQUAL(count(full, "<title>fault node_crash on gpu/1</title></g>"), 10);
    CU_ASSERT_EQUAL(count(full, "<title>scale " "&lt;script&gt;"), 2);
    /* alert timeline: pending, firing and the notification */
    CU_ASSERT(count(full, "<title>HighLatency pending</title>") >= 1);
    CU_ASSERT(count(full, "<title>HighLatency firing (critical)</title>") >= 1);
    CU_ASSERT(count(full, "<title>HighLatency notified pager</title>") >= 1);
    size_t n_svg;
    CU_ASSERT_TRUE(svgs_well_formed(full, &n_svg));
    free(full);

    /* summary.json carries the same lists, never-reached times as null */
    char path[512];
    snprintf(path, sizeof path, "%s/summary.json", dir);
    CU_ASSERT_EQUAL_FATAL(rp_write_summary(&r, path), 0);
    FILE *fp = fopen(path, "r");
    char buf[1 << 15];
    size_t n = fread(buf, 1, sizeof buf - 1, fp);
    buf[n] = '\0';
    fclose(fp);
    cJSON *j = cJSON_Parse(buf);
    CU_ASSERT_PTR_NOT_NULL_FATAL(j);
    cJSON *al = cJSON_GetArrayItem(cJSON_GetObjectItem(j, "alerts"), 0);
    CU_ASSERT_STRING_EQUAL(cJSON_GetObjectItem(al, "name")->valuestring, "HighLatency");
    CU_ASSERT_EQUAL(cJSON_GetObjectItem(al, "firing_at")->valuedouble, 1530);
    CU_ASSERT_TRUE(cJSON_IsNull(cJSON_GetObjectItem(al, "resolved_at")));
    cJSON *sc = cJSON_GetArrayItem(cJSON_GetObjectItem(j, "scaling_events"), 0);
    CU_ASSERT_EQUAL(cJSON_GetObjectItem(sc, "to")->valuedouble, 3);
    CU_ASSERT_STRING_EQUAL(cJSON_GetObjectItem(sc, "pool")->valuestring, EVIL);
    cJSON *fa = cJSON_GetArrayItem(cJSON_GetObjectItem(j, "faults"), 0);
    CU_ASSERT_EQUAL(cJSON_GetObjectItem(cJSON_GetObjectItem(fa, "requests"), "failed")->valuedouble, 12);
    cJSON *cl = cJSON_GetObjectItem(cJSON_GetObjectItem(j, "classes"), "card-auth");
    CU_ASSERT_EQUAL(cJSON_GetObjectItem(cJSON_GetObjectItem(cl, "requests"), "rejected")->valuedouble, 5);
    cJSON_Delete(j);
    rp_results_free(&r);
}

/* Row labels of the heatmap, in order, as drawn. */
static int heat_rows(const char *html, char labels[][64], int max)
{
    const char *h = strstr(html, "GPU utilisation per node");
    if (!h)
        return -1;
    /* the heatmap of the whole run (the last one) */
    const char *last = h;
    while ((h = strstr(h + 1, "GPU utilisation per node")))
        last = h;
    const char *rows = strstr(last, "<g class=\"rows\"");
    const char *end = strstr(rows, "</g>");
    int n = 0;
    for (const char *p = rows; (p = strstr(p, "<title>")) && p < end && n < max; n++) {
        p += 7;
        size_t k = strcspn(p, "<");
        snprintf(labels[n], 64, "%.*s", (int)k, p);
    }
    return n;
}

static void test_heatmap_10_nodes(void)
{
    rp_results r;
    fill(&r, 10);
    char *html = render(&r, NULL);
    char labels[64][64];
    int n = heat_rows(html, labels, 64);
    CU_ASSERT_EQUAL(n, 10);
    CU_ASSERT_STRING_EQUAL(labels[0], "node-0");
    CU_ASSERT_STRING_EQUAL(labels[9], "node-9");
    /* node 5 is 99% busy: its cells use the darkest colour */
    CU_ASSERT(count(html, "data-level=\"8\"") >= 1);
    /* the peak card: the first of the 200 req/s intervals, 5 of 10 GPUs busy */
    CU_ASSERT_PTR_NOT_NULL(strstr(html, "<div class=\"k\">peak</div><div class=\"v\">50.0% busy</div>"
                                        "<div class=\"d\">&lt;script&gt;alert(1)&lt;/script&gt; at 200 "
                                        "req/s offered (from 1500 s), p99 200.0 ms</div>"));
    free(html);
    rp_results_free(&r);
}

static void test_heatmap_1000_nodes(void)
{
    rp_results r;
    fill(&r, 1000);
    char *html = render(&r, NULL);
    char labels[64][64];
    int n = heat_rows(html, labels, 64);
    CU_ASSERT_EQUAL(n, 21); /* the mean, the 10 busiest, the 10 idlest */
    CU_ASSERT_PTR_NOT_NULL(strstr(labels[0], "(mean)"));
    CU_ASSERT_STRING_EQUAL(labels[1], "node-500"); /* the busiest first */
    CU_ASSERT_STRING_EQUAL(labels[20], "node-999"); /* the idlest last */
    CU_ASSERT_PTR_NOT_NULL(strstr(html, "has 1000 nodes"));
    size_t n_svg;
    CU_ASSERT_TRUE(svgs_well_formed(html, &n_svg));
    /* and the page stays small: no per-node drawing of 1000 rows */
    CU_ASSERT(strlen(html) < 600000);
    free(html);
    rp_results_free(&r);
}


/* report.c's percentages: two decimals, four just below 100% (the nines). */
static void pct(char *buf, size_t n, double frac)
{
    if (frac >= 0.9999995 || frac == 0)
        snprintf(buf, n, "%.2f%%", 100 * frac);
    else if (frac > 0.99)
        snprintf(buf, n, "%.4f%%", 100 * frac);
    else
        snprintf(buf, n, "%.2f%%", 100 * frac);
}

static int has(const char *html, const char *want)
{
    if (strstr(html, want))
        return 1;
    fprintf(stderr, "\n  report.html lacks: %s\n", want);
    return 0;
}

/* The card with this key shows value v (and its detail starts with d). */
static int has_card(const char *html, const char *key, const char *v, const char *d)
{
    char want[512];
    snprintf(want, sizeof want, "<div class=\"k\">%s</div><div class=\"v\">%s</div>"
             "<div class=\"d\">%s", key, v, d);
    return has(html, want);
}

static void test_llm_chat(void)
{
    char out[1024], log[1024], path[1100];
    snprintf(out, sizeof out, "%s/llm", dir);
    snprintf(log, sizeof log, "%s/llm.log", dir);
    int rc = tu_sh(log, "'%s' run '%s/scenarios/llm-chat.yaml' --quiet --out '%s' "
                   "--set duration=5m --set models.llama70b.llm.kv_blocks=1500 "
                   "--set slo.tpot_p99=10ms --set slo.e2e_p99=60s --set slo.goodput=0.9",
                   tu_bin(), tu_src(), out);
    CU_ASSERT_EQUAL_FATAL(rc, 0);
    cJSON *sum = tu_summary(out);
    CU_ASSERT_PTR_NOT_NULL_FATAL(sum);
    snprintf(path, sizeof path, "%s/report.html", out);
    char *html = tu_read(path);
    CU_ASSERT_PTR_NOT_NULL_FATAL(html);
    const cJSON *l = cJSON_GetObjectItem(cJSON_GetObjectItem(cJSON_GetObjectItem(sum, "pools"),
                                                             "chat"), "llm");
    CU_ASSERT_PTR_NOT_NULL_FATAL(l);
    /* the run is what the test means it to be: it preempts, some requests
     * miss a target, the TTFT p99 target is missed and the E2E one met */
    CU_ASSERT(tu_num(l, "preemptions") > 0);
    double good = tu_num(l, "goodput");
    CU_ASSERT(good > 0 && good < 0.9);
    CU_ASSERT(tu_num(l, "ttft_s.p99") > 0.5);
    CU_ASSERT(tu_num(l, "tpot_s.p99") > 0.01);
    CU_ASSERT(tu_num(l, "e2e_s.p99") < 60);
    CU_ASSERT_TRUE(cJSON_IsFalse(cJSON_GetObjectItem(cJSON_GetObjectItem(sum, "slo"), "met")));
    CU_ASSERT_PTR_NOT_NULL(strstr(html, "SLO missed"));

    CU_ASSERT_PTR_NOT_NULL(strstr(html, "<h2>LLM serving (after warm-up)</h2>\n<h3>chat</h3>"));
    char want[1024], a[64], b[64];
    snprintf(want, sizeof want, "H100-SXM &middot; tensor parallel 8, 1 replica per node "
             "&middot; %.0f KV blocks of 16 tokens", tu_num(l, "kv_blocks_per_replica"));
    CU_ASSERT(has(html, want));
    CU_ASSERT_EQUAL(tu_num(l, "kv_blocks_per_replica"), 1500);

    /* the distributions, each row mean, p50, p90, p99, p99.9, max */
    const char *rows[][2] = { { "TTFT (first token \xE2\x88\x92 arrival)", "ttft_s" },
                              { "TPOT ((last \xE2\x88\x92 first) / (tokens \xE2\x88\x92 1))", "tpot_s" },
                              { "ITL (between tokens)", "itl_s" },
                              { "E2E (last token \xE2\x88\x92 arrival)", "e2e_s" } };
    const char *qs[] = { "mean", "p50", "p90", "p99", "p999", "max" };
    for (int i = 0; i < 4; i++) {
        size_t k = (size_t)snprintf(want, sizeof want, "<tr><td class=\"l\">%s</td>", rows[i][0]);
        for (int q = 0; q < 6; q++) {
            char key[64];
            snprintf(key, sizeof key, "%s.%s", rows[i][1], qs[q]);
            rp_fmt_latency(a, sizeof a, tu_num(l, key));
            k += (size_t)snprintf(want + k, sizeof want - k, "<td>%s</td>", a);
        }
        snprintf(want + k, sizeof want - k, "</tr>");
        CU_ASSERT(has(html, want));
    }

    /* cards: the SLO's quantities against their targets, tokens, cost, KV */
    rp_fmt_latency(a, sizeof a, tu_num(l, "ttft_s.p99"));
    rp_fmt_latency(b, sizeof b, tu_num(l, "ttft_s.p50"));
    CU_ASSERT_EQUAL(tu_num(sum, "slo.ttft_p99_s"), 0.5);
    snprintf(want, sizeof want, "SLO 500.0 ms \xC2\xB7 p50 %s", b);
    CU_ASSERT(has(html, "<div class=\"card bad\"><div class=\"k\">TTFT p99</div>"));
    CU_ASSERT(has_card(html, "TTFT p99", a, want));
    rp_fmt_latency(a, sizeof a, tu_num(l, "tpot_s.p99"));
    rp_fmt_latency(b, sizeof b, tu_num(l, "tpot_s.p50"));
    char slo[64];
    rp_fmt_latency(slo, sizeof slo, tu_num(sum, "slo.tpot_p99_s"));
    snprintf(want, sizeof want, "SLO %s \xC2\xB7 p50 %s", slo, b);
    CU_ASSERT(has_card(html, "TPOT p99", a, want));
    CU_ASSERT(has(html, "<div class=\"card ok\"><div class=\"k\">E2E p99</div>"));
    pct(a, sizeof a, good);
    double span = tu_num(sum, "sim_time_s") - tu_num(sum, "warmup_s");
    CU_ASSERT_EQUAL(span, 240);
    snprintf(want, sizeof want, "SLO 90.00%% \xC2\xB7 %.2f req/s within every target",
             good * tu_num(l, "finished") / span);
    CU_ASSERT(has_card(html, "goodput", a, want));
    snprintf(a, sizeof a, "%.1f tok/s", tu_num(l, "output_tokens_per_s"));
    rp_fmt_count(b, sizeof b, tu_num(l, "output_tokens"));
    snprintf(want, sizeof want, "%s output tokens", b);
    CU_ASSERT(has_card(html, "output tokens", a, want));
    snprintf(a, sizeof a, "%.1f tok/s", tu_num(l, "input_tokens_per_s"));
    rp_fmt_count(b, sizeof b, tu_num(l, "input_tokens"));
    snprintf(want, sizeof want, "%s prompt tokens", b);
    CU_ASSERT(has_card(html, "input tokens", a, want));
    /* cost per million output tokens: the pool's cost (8 GPUs x 5 min at
     * 3.00 an hour = 2.00) over every output token of the run */
    snprintf(a, sizeof a, "%.3f", tu_num(l, "cost_per_million_output_tokens"));
    CU_ASSERT(has_card(html, "cost / M output tokens", a, "pool cost 2.00 USD over the run"));
    CU_ASSERT_EQUAL(tu_num(sum, "cost.money"), 2);
    pct(a, sizeof a, tu_num(l, "kv_usage_mean"));
    pct(b, sizeof b, tu_num(l, "kv_usage_max"));
    snprintf(want, sizeof want, "mean \xC2\xB7 max %s", b);
    CU_ASSERT(has_card(html, "KV cache", a, want));
    rp_fmt_count(a, sizeof a, tu_num(l, "preemptions"));
    CU_ASSERT(has_card(html, "preemptions", a, "by recompute"));
    CU_ASSERT(has_card(html, "prefix cache hits", "\xE2\x80\x93", "no prompt looked up"));
    CU_ASSERT_EQUAL(tu_num(l, "prefix_cache_queries"), 0);

    /* the verdict on each LLM target */
    const struct {
        const char *name, *slo, *key;
        const char *verdict;
    } ts[] = { { "TTFT p99", "slo.ttft_p99_s", "ttft_s.p99", "bad\">missed" },
               { "TPOT p99", "slo.tpot_p99_s", "tpot_s.p99", "bad\">missed" },
               { "E2E p99", "slo.e2e_p99_s", "e2e_s.p99", "best\">met" } };
    for (int i = 0; i < 3; i++) {
        rp_fmt_latency(a, sizeof a, tu_num(l, ts[i].key));
        rp_fmt_latency(slo, sizeof slo, tu_num(sum, ts[i].slo));
        snprintf(want, sizeof want, "<tr><td class=\"l\">%s</td><td>\xE2\x89\xA4 %s</td>"
                 "<td>%s</td><td class=\"%s</td></tr>", ts[i].name, slo, a,
                 ts[i].verdict);
        CU_ASSERT(has(html, want));
    }
    pct(a, sizeof a, good);
    snprintf(want, sizeof want, "<tr><td class=\"l\">goodput</td><td>\xE2\x89\xA5 90.00%%</td>"
             "<td>%s</td><td class=\"bad\">missed</td></tr>", a);
    CU_ASSERT(has(html, want));
    CU_ASSERT(has(html, "LLM targets missed for this pool."));

    /* KV usage, running and waiting over time: one line each, on the peak
     * window's charts (if any) and the whole run's */
    size_t n_kv = count(html, "data-series=\"kv.0\"");
    CU_ASSERT(n_kv >= 1);
    CU_ASSERT_EQUAL(count(html, "data-series=\"running.0\""), n_kv);
    CU_ASSERT_EQUAL(count(html, "data-series=\"waiting.0\""), n_kv);
    size_t n_svg;
    CU_ASSERT_TRUE(svgs_well_formed(html, &n_svg));
    free(html);
    cJSON_Delete(sum);
}

/* A chaos experiment's verdict is in the page's title beside the SLO's, and
 * each hypothesis has a row with the windows that broke it. */
static void test_hypothesis_verdict(void)
{
    rp_results r;
    fill(&r, 0);
    r.hypotheses_met = -1;
    char *plain = render(&r, NULL);
    CU_ASSERT_PTR_NULL(strstr(plain, "hypothesis"));
    free(plain);
    rp_window w[3] = { { 0, 600, 0.9999, 1 }, { 600, 1200, 0.9871, 0 }, { 1200, 3600, 0.99995, 1 } };
    rp_hypothesis h[2] = { { .text = "availability >= 0.999 over run", .met = 0, .windows = w,
                             .n_windows = 3 },
                           { .text = "p99 < 250ms over steady", .met = 1 } };
    r.hypotheses = h;
    r.n_hypotheses = 2;
    r.hypotheses_met = 0;
    char *failed = render(&r, NULL);
    CU_ASSERT_PTR_NOT_NULL(strstr(failed, "<span class=\"verdict bad\">hypothesis fails</span></h1>"));
    CU_ASSERT_PTR_NOT_NULL(strstr(failed, "<h2>Steady-state hypothesis</h2>"));
    CU_ASSERT_PTR_NOT_NULL(strstr(failed, "availability &gt;= 0.999 over run</td><td class=\"bad\">fails"));
    CU_ASSERT_PTR_NOT_NULL(strstr(failed, "0:10:00 \xE2\x80\x93 0:20:00: 0.9871"));
    CU_ASSERT_EQUAL(count(failed, ": 0.9999"), 0); /* windows that held are not listed */
    CU_ASSERT_PTR_NOT_NULL(strstr(failed, "p99 &lt; 250ms over steady</td><td class=\"ok\">holds"));
    free(failed);
    h[0].met = 1;
    w[1].met = 1;
    r.hypotheses_met = 1;
    char *held = render(&r, NULL);
    CU_ASSERT_PTR_NOT_NULL(strstr(held, "<span class=\"verdict ok\">hypothesis holds</span></h1>"));
    free(held);
    r.hypotheses = NULL; /* on the stack */
    r.n_hypotheses = 0;
    rp_results_free(&r);
}

/* An event at 645 s of a half-hour run reads 0:10:45 in the events table
 * (never a bare "10:45", minutes:seconds or hours:minutes); with a
 * start_time it reads as that clock time with the elapsed time after it,
 * and summary.json gives the start. */
static void test_time_labels(void)
{
    rp_results r;
    fill(&r, 0);
    r.sim_time_s = 1800;
    for (size_t i = 180; i < r.n_samples; i++) /* a half-hour run: the first 180 intervals */
        free(r.samples[i].pools);
    r.n_samples = 180;
    rp_add_event(&r, 645, "node_down", "gpu/1", "crashed");
    char *html = render(&r, NULL);
    CU_ASSERT_PTR_NOT_NULL(strstr(html, "<td class=\"l\">0:10:45</td><td class=\"l\">node_down"));
    CU_ASSERT_PTR_NULL(strstr(html, ">10:45<"));
    CU_ASSERT_PTR_NOT_NULL(strstr(html, "times are elapsed since the start of the run, h:mm:ss"));
    CU_ASSERT_PTR_NOT_NULL(strstr(html, ">h:mm:ss</text>"));
    free(html);

    r.has_clock = 1;
    r.clock_start_s = 1772434800; /* 2026-03-02T07:00:00Z */
    r.utc_offset_s = 3600;
    html = render(&r, NULL);
    CU_ASSERT_PTR_NOT_NULL(
        strstr(html, "<td class=\"l\">08:10:45 (+0:10:45)</td><td class=\"l\">node_down"));
    CU_ASSERT_PTR_NOT_NULL(strstr(html, "started 2026-03-02 08:00:00 UTC+01:00"));
    CU_ASSERT_PTR_NOT_NULL(strstr(html, ">UTC+01:00</text>"));
    free(html);
    char path[512];
    snprintf(path, sizeof path, "%s/summary.json", dir);
    CU_ASSERT_EQUAL_FATAL(rp_write_summary(&r, path), 0);
    cJSON *j = tu_summary(dir);
    CU_ASSERT_PTR_NOT_NULL_FATAL(j);
    cJSON *st = cJSON_GetObjectItemCaseSensitive(j, "start_time");
    CU_ASSERT(cJSON_IsString(st) && !strcmp(st->valuestring, "2026-03-02T08:00:00+01:00"));
    cJSON_Delete(j);
    rp_results_free(&r);
}

/* data-ymax of the last chart whose aria-label is label. */
static double chart_ymax(const char *html, const char *label)
{
    char want[128];
    snprintf(want, sizeof want, "aria-label=\"%s\"", label);
    const char *svg = NULL;
    for (const char *p = html; (p = strstr(p, want)); p++)
        svg = p;
    return svg ? strtod(strstr(svg, "data-ymax=\"") + 11, NULL) : NAN;
}

/* The latency chart is scaled to the data (and a scaling marker has its
 * tag): p99 at 0.2 s under an SLO of
 * 0.25 s shows the SLO line; under an SLO of 2 s the chart keeps the
 * data's scale and names the SLO above it. */
static void test_latency_scale(void)
{
    rp_results r;
    fill(&r, 0);
    char *html = render(&r, NULL);
    CU_ASSERT_DOUBLE_EQUAL(chart_ymax(html, "latency p50 and p99"), 0.5, 1e-12);
    CU_ASSERT_PTR_NOT_NULL(strstr(html, "<title>SLO p99 250.0 ms</title></line>"));
    free(html);
    r.slo_latency_p99_s = 2;
    rp_add_scaling(&r, 1520, "gpu", 1, 3, "cpu > 85%");
    html = render(&r, NULL);
    CU_ASSERT_PTR_NOT_NULL(strstr(html, ">gpu 1\xE2\x86\x92" "3</text>")); /* the marker's tag */
    CU_ASSERT_DOUBLE_EQUAL(chart_ymax(html, "latency p50 and p99"), 0.25, 1e-12);
    CU_ASSERT_PTR_NOT_NULL(strstr(html, "SLO p99 2.00 s \xE2\x86\x91 above the chart</text>"));
    free(html);
    rp_results_free(&r);
}

/* Does a cell of row r (0-based) of the heatmap svg cover time t? */
static int heat_covers(const char *svg, const char *svg_end, int r, double t)
{
    double t0 = strtod(strstr(svg, "data-t0=\"") + 9, NULL);
    double t1 = strtod(strstr(svg, "data-t1=\"") + 9, NULL);
    double x = 92 + (t - t0) / (t1 - t0) * (1160 - 92 - 20); /* rp_axis_make's margins */
    char want[64];
    snprintf(want, sizeof want, "\" y=\"%.1f\" width=\"", 8 + 13.0 * r + 0.5);
    const char *cells = strstr(svg, "<g class=\"cells\"");
    for (const char *p = cells; p && p < svg_end && (p = strstr(p, "<rect x=\"")); p++) {
        if (p > svg_end)
            break;
        double x0 = strtod(p + 9, NULL);
        const char *q = strstr(p, want);
        if (!q || q > strchr(p, '>'))
            continue;
        double w = strtod(q + strlen(want), NULL);
        if (x0 <= x && x < x0 + w)
            return 1;
    }
    return 0;
}

/* Through the binary: gpu/1 crashes at 645 s for 5 minutes. Its heatmap
 * row has no cell while it lies crashed (it is absent, not 0% busy), its
 * neighbours' rows do; the events table says 0:10:45; the fault band and
 * the latency chart are labelled. */
static void test_crash_run(void)
{
    char cmd[4096], out[600];
    snprintf(out, sizeof out, "%s/crash", dir);
    snprintf(cmd, sizeof cmd, "'%s' run '%s/scenarios/chaos/node-crash-at-peak.yaml' --set "
                              "duration=20m --set interval=10s --quiet --out '%s' >/dev/null 2>&1",
             tu_bin(), tu_src(), out);
    int rc = system(cmd);
    CU_ASSERT_FATAL(rc != -1 && WIFEXITED(rc) && (WEXITSTATUS(rc) == 0 || WEXITSTATUS(rc) == 1));
    char path[700];
    snprintf(path, sizeof path, "%s/report.html", out);
    char *html = tu_read(path);
    CU_ASSERT_PTR_NOT_NULL_FATAL(html);
    /* the whole run's heatmap: the last one on the page */
    const char *svg = NULL;
    for (const char *p = html; (p = strstr(p, "aria-label=\"GPU utilisation\"")); p++)
        svg = p;
    CU_ASSERT_PTR_NOT_NULL_FATAL(svg);
    const char *end = strstr(svg, "</svg>");
    CU_ASSERT(heat_covers(svg, end, 1, 600));   /* gpu/1 before the crash */
    CU_ASSERT(!heat_covers(svg, end, 1, 700));  /* crashed */
    CU_ASSERT(!heat_covers(svg, end, 1, 900));
    CU_ASSERT(heat_covers(svg, end, 0, 700));   /* gpu/0 serving */
    CU_ASSERT(heat_covers(svg, end, 2, 900));
    CU_ASSERT_PTR_NOT_NULL(strstr(html, "<td class=\"l\">0:10:45</td>"));
    CU_ASSERT_PTR_NOT_NULL(strstr(html, ">node_crash on gpu/1</text>"));
    free(html);
}

int main(void)
{
    if (system("xmllint --version >/dev/null 2>&1") != 0) {
        fprintf(stderr, "test_report: xmllint not found: apt-get install libxml2-utils "
                        "(or run scripts/install-deps.sh)\n");
        return 1;
    }
    dir = mkdtemp(tmpl);
    if (!dir || CU_initialize_registry() != CUE_SUCCESS)
        return 1;
    CU_pSuite s = CU_add_suite("report", NULL, NULL);
    CU_add_test(s, "strings from the scenario are escaped", test_escaping);
    CU_add_test(s, "time labels: 645 s, with and without a start time", test_time_labels);
    CU_add_test(s, "a crashed node: absent in the heatmap, its fault labelled", test_crash_run);
    CU_add_test(s, "the latency chart is scaled to the data", test_latency_scale);
    CU_add_test(s, "sections appear when there is data", test_sections_follow_data);
    CU_add_test(s, "a chaos hypothesis verdict", test_hypothesis_verdict);
    CU_add_test(s, "heatmap with 10 nodes: every node", test_heatmap_10_nodes);
    CU_add_test(s, "heatmap with 1000 nodes: mean, busiest, idlest", test_heatmap_1000_nodes);
    CU_add_test(s, "llm-chat: the LLM numbers of summary.json", test_llm_chat);
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
