/*
 * test_outlier_run.c - Envoy outlier detection in whole runs of the fleetsim
 * binary: a node that answers 500 (gpu_error) is ejected after 5 errors in
 * a row and gets no request until the interval tick that ends its ejection,
 * then is ejected again for twice as long; the outlier_ejection events in
 * events.jsonl; the same run without detection, and max_ejection_percent
 * on a pool of nine.
 *
 * The scenario is deterministic: arrivals every 100 ms from 0.15 s (so
 * arrival k at 0.15 + 0.1 k), 10 ms of service, round robin, retries off
 * (a 500 is not retried anyway), no health checks. With all ten nodes in
 * turn, node 3 gets arrivals k = 3 mod 10, at 0.45, 1.45, ... s, and every
 * request that reaches it after the fault starts fails at once, so the
 * failed requests are exactly the requests that reached the bad node.
 */
#include "testutil.h"

#include <CUnit/Basic.h>

static const char *RUN =
    "name: eject\n"
    "duration: 120s\n"
    "interval: 1s\n"
    "models:\n"
    "  m: {service: {distribution: deterministic, mean: 10ms}}\n"
    "pools:\n"
    "  p:\n"
    "    model: m\n"
    "    replicas: %d\n"
    "    link: {latency: 1ms, bandwidth: 1GBps}\n"
    "traffic:\n"
    "  - {name: t, pool: p, size: 0B, response_size: 0B,\n"
    "     arrivals: {process: deterministic, rate: [{at: 0.05s, qps: 10}]}}\n"
    "load_balancer:\n"
    "  policy: round_robin\n"
    "  retries: {on: off}\n"
    "%s"
    "chaos:\n"
    "  - {at: 20.5s, fault: gpu_error, target: p/3}\n";

/* Runs RUN with that many replicas and outlier_detection line; results in DIR/out. */
static char *run(int replicas, const char *outlier, int *rc)
{
    char yaml[4096], path[4096], log[4096];
    char *dir = tu_tmpdir();
    snprintf(yaml, sizeof yaml, RUN, replicas, outlier);
    snprintf(path, sizeof path, "%s/s.yaml", dir);
    snprintf(log, sizeof log, "%s/log", dir);
    tu_write(path, yaml);
    *rc = tu_sh(log, "'%s' run '%s' --quiet --out '%s/out'", tu_bin(), path, dir);
    return dir;
}

/* The outlier_ejection events of events.jsonl, in order. */
typedef struct {
    double t_s;
    char subject[32];
    char detail[128];
} ejection;

static int ejections(const char *dir, ejection *out, int cap)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/out/events.jsonl", dir);
    char *text = tu_read(path);
    if (!text)
        return -1;
    int n = 0;
    char *save = NULL;
    for (char *line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        cJSON *e = cJSON_Parse(line);
        const cJSON *type = cJSON_GetObjectItemCaseSensitive(e, "type");
        if (cJSON_IsString(type) && !strcmp(type->valuestring, "outlier_ejection") && n < cap) {
            const cJSON *s = cJSON_GetObjectItemCaseSensitive(e, "subject");
            const cJSON *d = cJSON_GetObjectItemCaseSensitive(e, "detail");
            out[n].t_s = tu_num(e, "t_s");
            snprintf(out[n].subject, sizeof out[n].subject, "%s",
                     cJSON_IsString(s) ? s->valuestring : "");
            snprintf(out[n].detail, sizeof out[n].detail, "%s",
                     cJSON_IsString(d) ? d->valuestring : "");
            n++;
        }
        cJSON_Delete(e);
    }
    free(text);
    return n;
}

/* Generated 1199 (0.15 ... 119.95 s), every one in a bucket. */
static cJSON *summary_ok(const char *dir, double failed)
{
    cJSON *j = tu_out_summary(dir);
    CU_ASSERT_PTR_NOT_NULL(j);
    if (!j)
        return NULL;
    CU_ASSERT_EQUAL(tu_num(j, "requests.generated"), 1199);
    CU_ASSERT_EQUAL(tu_num(j, "requests.generated"), tu_sum_buckets(j, "requests"));
    CU_ASSERT_EQUAL(tu_num(j, "requests.failed"), failed);
    CU_ASSERT_EQUAL(tu_num(j, "requests.completed"), 1199 - failed);
    return j;
}

/* Ten nodes, consecutive_5xx 5, interval 10 s, base 30 s, 10%: node 3
 * fails the arrivals of 21.45 ... 25.45 s and is ejected at the 5th, for
 * 30 s: 55.45, so back at the tick at 60. Meanwhile round robin turns over
 * the other nine: arrival k >= 254 goes to [4 5 6 7 8 9 0 1 2][(k - 254) % 9],
 * the one of 59.95 s (k = 598) to 6; from 60.05 s node 3 is in turn again
 * after 7, 8, 9, 0, 1, 2: the arrivals of 60.65 ... 64.65 s fail, the 5th
 * ejects it for 60 s (backoff 2; no tick between 60 and 64.65 to take a step
 * off): 124.65, past the end. 10 failures, none in [26, 60) or after 65. */
static void test_bad_node_ejected(void)
{
    int rc;
    char *dir = run(10,
                    "  outlier_detection: {consecutive_5xx: 5, interval: 10s, "
                    "base_ejection_time: 30s}\n",
                    &rc);
    CU_ASSERT_EQUAL(rc, 0);
    cJSON_Delete(summary_ok(dir, 10));
    double f[130];
    int n = tu_ts_column(dir, "failed", f, 130);
    CU_ASSERT_EQUAL(n, 120);
    int wrong = 0;
    for (int i = 0; i < n; i++) {
        double want = (i >= 21 && i <= 25) || (i >= 60 && i <= 64) ? 1 : 0;
        if (f[i] != want) {
            fprintf(stderr, "\n  [%d, %d) s: %g failed, want %g", i, i + 1, f[i], want);
            wrong++;
        }
    }
    CU_ASSERT_EQUAL(wrong, 0);
    ejection e[4];
    CU_ASSERT_EQUAL_FATAL(ejections(dir, e, 4), 2);
    CU_ASSERT_DOUBLE_EQUAL(e[0].t_s, 25.45, 1e-9);
    CU_ASSERT_STRING_EQUAL(e[0].subject, "p/3");
    CU_ASSERT_STRING_EQUAL(e[0].detail, "5 consecutive errors: ejection 1, out until 60 s");
    CU_ASSERT_DOUBLE_EQUAL(e[1].t_s, 64.65, 1e-9);
    CU_ASSERT_STRING_EQUAL(e[1].subject, "p/3");
    CU_ASSERT_STRING_EQUAL(e[1].detail, "5 consecutive errors: ejection 2, out until 130 s");
    tu_done(dir);
}

/* Without outlier_detection every tenth arrival from 21.45 to 119.45 s
 * fails: 99, and no ejection event. */
static void test_without_detection(void)
{
    int rc;
    char *dir = run(10, "", &rc);
    CU_ASSERT_EQUAL(rc, 0);
    cJSON_Delete(summary_ok(dir, 99));
    ejection e[1];
    CU_ASSERT_EQUAL(ejections(dir, e, 1), 0);
    tu_done(dir);
}

/* Nine nodes at the default 10%: 100 x 1 / 9 = 11.1% > 10%, no ejection;
 * node 3 fails arrivals k = 3 mod 9 from k = 210 (21.15 s) to 1191: 110.
 * With always_eject_one_host it is ejected at the 5th (k = 246, 24.75 s)
 * until 60; back then, it fails 5 more arrivals, the last at 63.65 s, and
 * is ejected until 130: 10 in all. */
static void test_nine_nodes_percent(void)
{
    int rc;
    char *dir = run(9, "  outlier_detection: {}\n", &rc);
    CU_ASSERT_EQUAL(rc, 0);
    cJSON_Delete(summary_ok(dir, 110));
    ejection e[4];
    CU_ASSERT_EQUAL(ejections(dir, e, 4), 0);
    tu_done(dir);

    dir = run(9, "  outlier_detection: {always_eject_one_host: true}\n", &rc);
    CU_ASSERT_EQUAL(rc, 0);
    cJSON_Delete(summary_ok(dir, 10));
    CU_ASSERT_EQUAL_FATAL(ejections(dir, e, 4), 2);
    CU_ASSERT_DOUBLE_EQUAL(e[0].t_s, 24.75, 1e-9);
    CU_ASSERT_STRING_EQUAL(e[0].detail, "5 consecutive errors: ejection 1, out until 60 s");
    CU_ASSERT_DOUBLE_EQUAL(e[1].t_s, 63.65, 1e-9);
    CU_ASSERT_STRING_EQUAL(e[1].detail, "5 consecutive errors: ejection 2, out until 130 s");
    tu_done(dir);
}

/* Two L7 balancers, each with its own detector: node 3's ejections are
 * counted per balancer, so each one's event says which balancer ejected it
 * (otherwise two "ejection 1" lines of one node look contradictory). */
static void test_l7_names_balancer(void)
{
    int rc;
    char *dir = run(10,
                    "  outlier_detection: {consecutive_5xx: 5, interval: 10s, "
                    "base_ejection_time: 30s}\n"
                    "  l7: [{name: a}, {name: b}]\n",
                    &rc);
    CU_ASSERT_EQUAL(rc, 0);
    ejection e[8];
    int n = ejections(dir, e, 8);
    CU_ASSERT(n >= 2);
    int a = 0, b = 0;
    for (int i = 0; i < n; i++) {
        CU_ASSERT_STRING_EQUAL(e[i].subject, "p/3");
        a += strstr(e[i].detail, "(balancer a)") != NULL;
        b += strstr(e[i].detail, "(balancer b)") != NULL;
    }
    CU_ASSERT(a >= 1 && b >= 1);
    CU_ASSERT_EQUAL(a + b, n);
    tu_done(dir);
}

int main(void)
{
    if (CU_initialize_registry() != CUE_SUCCESS)
        return 1;
    CU_pSuite s = CU_add_suite("outlier_run", NULL, NULL);
    CU_add_test(s, "a node answering 500 is ejected until the tick", test_bad_node_ejected);
    CU_add_test(s, "the same run without outlier detection", test_without_detection);
    CU_add_test(s, "nine nodes: 10% ejects none, always_eject_one_host one",
                test_nine_nodes_percent);
    CU_add_test(s, "several L7 balancers: the event names the one", test_l7_names_balancer);
    CU_basic_set_mode(CU_BRM_VERBOSE);
    CU_basic_run_tests();
    unsigned fails = CU_get_number_of_failures();
    CU_cleanup_registry();
    return fails != 0;
}
