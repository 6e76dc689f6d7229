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
 *
 * Then a full queue's 503: Envoy counts it as a 5xx, so an overloaded pool
 * whose nodes answer 503 at once ejects them in a cascade, which
 * max_ejection_percent stops; nginx passes it on unless proxy_next_upstream
 * lists http_503, and then tries the next server.
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
    CU_ASSERT_STRING_EQUAL(e[0].detail, "5 consecutive 5xx: ejection 1, out until 60 s");
    CU_ASSERT_DOUBLE_EQUAL(e[1].t_s, 64.65, 1e-9);
    CU_ASSERT_STRING_EQUAL(e[1].subject, "p/3");
    CU_ASSERT_STRING_EQUAL(e[1].detail, "5 consecutive 5xx: ejection 2, out until 130 s");
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
    CU_ASSERT_STRING_EQUAL(e[0].detail, "5 consecutive 5xx: ejection 1, out until 60 s");
    CU_ASSERT_DOUBLE_EQUAL(e[1].t_s, 63.65, 1e-9);
    CU_ASSERT_STRING_EQUAL(e[1].detail, "5 consecutive 5xx: ejection 2, out until 130 s");
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

/* ---------- a full queue's 503 ---------- */

/* Ten nodes, each a batch of up to 16 in 1 s (capacity 16 qps, 160 in
 * all), a queue of 16; 195 qps, deterministic (arrival k at (k + 1) / 195
 * s); round robin. Node j gets k = j mod 10, 19.5 qps: from its second
 * batch on it takes 16 from a full queue at (j + 1) / 195 + m s, accepts
 * the next 16 arrivals and answers the 3 or 4 after them with 503 at once
 * until its batch ends, whose 16 successes reset Envoy's count: never 5 in
 * a row. At 20 s node 0 slows to half speed: its batch of 19.005 ends at
 * 20.010 and the next takes 2 s, so after 16 accepted (k = 3910 ... 4060)
 * it answers k = 4070 ... 4110 with 503, and the 5th, k = 4110 at
 * 4111 / 195 = 21.082 s, ejects it until the tick at 60. Round robin over
 * nine gives the others 21.7 qps: node 1 (batch at 21.010) accepts
 * k = 4101, then 4111 + 9 i up to 4237, and answers 4246 ... 4282 with
 * 503: ejected at 4283 / 195 = 21.964 s; node 2 the same one arrival later,
 * at 4284 / 195. Node 3 would be next, at 4285 / 195, but a fourth
 * ejection of ten is 40% > max_ejection_percent. */
static const char *CASCADE =
    "name: cascade\n"
    "duration: 60s\n"
    "interval: 1s\n"
    "models:\n"
    "  m: {service: {distribution: deterministic, mean: 1s}, batch: {max_size: 16}}\n"
    "pools:\n"
    "  p: {model: m, replicas: 10, queue_capacity: 16, timeout: 30s,\n"
    "      link: {latency: 1ms, bandwidth: 1GBps}}\n"
    "traffic:\n"
    "  - {name: t, pool: p, size: 0B, response_size: 0B,\n"
    "     arrivals: {process: deterministic, rate: [{at: 0s, qps: 195}]}}\n"
    "load_balancer:\n"
    "  policy: round_robin\n"
    "%s"
    "chaos:\n"
    "  - {at: 20s, fault: slowdown, target: p/0, factor: 0.5}\n";

static char *run_cascade(const char *outlier, int *rc)
{
    char yaml[4096], path[4096], log[4096];
    char *dir = tu_tmpdir();
    snprintf(yaml, sizeof yaml, CASCADE, outlier);
    snprintf(path, sizeof path, "%s/s.yaml", dir);
    snprintf(log, sizeof log, "%s/log", dir);
    tu_write(path, yaml);
    *rc = tu_sh(log, "'%s' run '%s' --quiet --out '%s/out'", tu_bin(), path, dir);
    return dir;
}

/* 11699 arrivals (the one at 60 s is past the end), every one in a bucket,
 * none failed (503s are rejected). */
static void cascade_requests(const char *dir, double completed, double in_flight)
{
    cJSON *j = tu_out_summary(dir);
    CU_ASSERT_PTR_NOT_NULL_FATAL(j);
    CU_ASSERT_EQUAL(tu_num(j, "requests.generated"), 11699);
    CU_ASSERT_EQUAL(tu_num(j, "requests.generated"), tu_sum_buckets(j, "requests"));
    CU_ASSERT_EQUAL(tu_num(j, "requests.completed"), completed);
    CU_ASSERT_EQUAL(tu_num(j, "requests.failed"), 0);
    CU_ASSERT_EQUAL(tu_num(j, "requests.timed_out"), 0);
    CU_ASSERT_EQUAL(tu_num(j, "requests.in_flight_at_end"), in_flight);
    CU_ASSERT_EQUAL(tu_num(j, "requests.rejected"), 11699 - completed - in_flight);
    cJSON_Delete(j);
}

/* max_ejection_percent 30: nodes 0, 1 and 2 ejected (times above), each
 * until 60, and no more. What the pool completes: a node that is never
 * ejected ends a batch of 1 at 1 s and 58 of 16 by 59 s: 929 (x 7); node 0
 * 1 + 19 x 16 by 20.010, then the batch that ran and the one queued when it
 * was ejected: 337; nodes 1 and 2, ejected during their 22nd batch, that
 * batch and their queue: 1 + 20 x 16 + 32 = 353 each. 7546 in all; at the
 * end the seven hold a batch and a full queue each (224). At 50%, nodes 3
 * and 4 go too, at 4285 and 4286 / 195, each with 353: 6394, 160 held. */
static void test_cascade_bounded(void)
{
    int rc;
    char *dir = run_cascade("  outlier_detection: {max_ejection_percent: 30}\n", &rc);
    CU_ASSERT_EQUAL(rc, 0);
    cascade_requests(dir, 7546, 224);
    ejection e[8];
    CU_ASSERT_EQUAL_FATAL(ejections(dir, e, 8), 3);
    const char *who[] = { "p/0", "p/1", "p/2" };
    const double at[] = { 4111 / 195.0, 4283 / 195.0, 4284 / 195.0 };
    for (int i = 0; i < 3; i++) {
        CU_ASSERT_DOUBLE_EQUAL(e[i].t_s, at[i], 1e-9);
        CU_ASSERT_STRING_EQUAL(e[i].subject, who[i]);
        CU_ASSERT_STRING_EQUAL(e[i].detail, "5 consecutive 5xx: ejection 1, out until 60 s");
    }
    tu_done(dir);

    dir = run_cascade("  outlier_detection: {max_ejection_percent: 50}\n", &rc);
    CU_ASSERT_EQUAL(rc, 0);
    cascade_requests(dir, 6394, 160);
    CU_ASSERT_EQUAL_FATAL(ejections(dir, e, 8), 5);
    CU_ASSERT_DOUBLE_EQUAL(e[0].t_s, 4111 / 195.0, 1e-9);
    CU_ASSERT_STRING_EQUAL(e[3].subject, "p/3");
    CU_ASSERT_DOUBLE_EQUAL(e[3].t_s, 4285 / 195.0, 1e-9);
    CU_ASSERT_STRING_EQUAL(e[4].subject, "p/4");
    CU_ASSERT_DOUBLE_EQUAL(e[4].t_s, 4286 / 195.0, 1e-9);
    tu_done(dir);
}

/* max_ejection_percent 100: once fewer than half the nodes are healthy,
 * Envoy's panic mode (healthy_panic_threshold 50%) ignores ejections, and
 * the run completes exactly what it does without detection (below); the
 * ten nodes are still ejected in turn. With the threshold at 0 the balancer
 * runs out of servers and answers 502 "no live upstreams". */
static void test_cascade_panic(void)
{
    int rc;
    char *dir = run_cascade("  outlier_detection: {max_ejection_percent: 100}\n", &rc);
    CU_ASSERT_EQUAL(rc, 0);
    cascade_requests(dir, 8970, 320);
    ejection e[16];
    CU_ASSERT_EQUAL(ejections(dir, e, 16), 10);
    tu_done(dir);

    dir = run_cascade("  outlier_detection: {max_ejection_percent: 100, healthy_panic_threshold: 0}\n",
                      &rc);
    CU_ASSERT_EQUAL(rc, 0);
    cJSON *j = tu_out_summary(dir);
    CU_ASSERT_PTR_NOT_NULL_FATAL(j);
    CU_ASSERT_EQUAL(tu_num(j, "requests.completed"), 3514);
    CU_ASSERT_EQUAL(tu_num(j, "requests.failed"), 7408);
    CU_ASSERT_EQUAL(tu_num(j, "requests.generated"), tu_sum_buckets(j, "requests"));
    cJSON_Delete(j);
    tu_done(dir);
}

/* The same overload without outlier detection: no ejection, and more
 * served. Nodes 1..9 complete 929 each; node 0 289 by 19.005, 16 at 20.010
 * and 19 batches of 16 every 2 s to 58.010: 609. 8970 in all; 320 held. */
static void test_cascade_without_detection(void)
{
    int rc;
    char *dir = run_cascade("", &rc);
    CU_ASSERT_EQUAL(rc, 0);
    cascade_requests(dir, 8970, 320);
    ejection e[1];
    CU_ASSERT_EQUAL(ejections(dir, e, 1), 0);
    tu_done(dir);
}

/* The same overload behind an L4 balancer with two L7 balancers, outlier
 * detection on (the L4 has it too) at 50%: the L4 sees TCP connections, so
 * the 503s the L7 balancers pass on are no failures to it, and round robin
 * splits the 11699 connections 5850 / 5849 however many 503s come back. */
static void test_l4_sees_no_http_status(void)
{
    int rc;
    char *dir = run_cascade("  outlier_detection: {max_ejection_percent: 50}\n"
                            "  l7: [{name: a}, {name: b}]\n"
                            "  l4: {policy: round_robin}\n",
                            &rc);
    CU_ASSERT_EQUAL(rc, 0);
    cJSON *j = tu_out_summary(dir);
    CU_ASSERT_PTR_NOT_NULL_FATAL(j);
    CU_ASSERT_EQUAL(tu_num(j, "requests.generated"), 11699);
    CU_ASSERT_EQUAL(tu_num(j, "requests.generated"), tu_sum_buckets(j, "requests"));
    CU_ASSERT(tu_num(j, "requests.rejected") > 0);
    CU_ASSERT_EQUAL(tu_num(j, "balancers.a.routed"), 5850);
    CU_ASSERT_EQUAL(tu_num(j, "balancers.b.routed"), 5849);
    cJSON_Delete(j);
    tu_done(dir);
}

/* nginx and a 503: two nodes, each one request at a time (1 s) and a queue
 * of one; weights 2 and 1 give a b a a. Four arrivals, 0.1 ... 0.4 s: node
 * 0 runs the first and queues the third, node 1 runs the second, and node 0
 * answers the fourth with 503. By default (proxy_next_upstream error) the
 * 503 is passed on: 1 rejected in 4 attempts. With http_503 the attempt
 * failed and the next server (node 1, queue empty) takes it: none rejected,
 * 5 attempts, none of them a connection error. With tries 1 there is no
 * next server to try: passed on again. */
static void test_nginx_http_503(void)
{
    static const struct {
        const char *retries;
        double rejected, attempts;
    } cases[] = {
        { "", 1, 4 },
        { "  retries: {on: error http_503}\n", 0, 5 },
        { "  retries: {on: error http_503, tries: 1}\n", 1, 4 },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char yaml[4096], path[4096], log[4096];
        char *dir = tu_tmpdir();
        snprintf(yaml, sizeof yaml,
                 "name: h503\n"
                 "duration: 10s\n"
                 "models:\n"
                 "  m: {service: {distribution: deterministic, mean: 1s}}\n"
                 "pools:\n"
                 "  p: {model: m, replicas: 2, queue_capacity: 1,\n"
                 "      link: {latency: 1ms, bandwidth: 1GBps}}\n"
                 "traffic:\n"
                 "  - {name: t, pool: p, size: 0B, response_size: 0B,\n"
                 "     arrivals: {process: deterministic,\n"
                 "                rate: [{at: 0s, qps: 10}, {at: 0.45s, qps: 0}]}}\n"
                 "load_balancer:\n"
                 "  policy: weighted_round_robin\n"
                 "  servers: {p/0: {weight: 2}, p/1: {weight: 1}}\n"
                 "%s",
                 cases[i].retries);
        snprintf(path, sizeof path, "%s/s.yaml", dir);
        snprintf(log, sizeof log, "%s/log", dir);
        tu_write(path, yaml);
        int rc = tu_sh(log, "'%s' run '%s' --quiet --out '%s/out'", tu_bin(), path, dir);
        CU_ASSERT_EQUAL(rc, 0);
        cJSON *j = tu_out_summary(dir);
        CU_ASSERT_PTR_NOT_NULL_FATAL(j);
        CU_ASSERT_EQUAL(tu_num(j, "requests.generated"), 4);
        CU_ASSERT_EQUAL(tu_num(j, "requests.rejected"), cases[i].rejected);
        CU_ASSERT_EQUAL(tu_num(j, "requests.completed"), 4 - cases[i].rejected);
        CU_ASSERT_EQUAL(tu_num(j, "attempts"), cases[i].attempts);
        CU_ASSERT_EQUAL(tu_num(j, "attempt_errors"), 0);
        cJSON_Delete(j);
        tu_done(dir);
    }
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
    CU_add_test(s, "a full queue's 503s: a cascade that max_ejection_percent stops",
                test_cascade_bounded);
    CU_add_test(s, "the same overload without outlier detection", test_cascade_without_detection);
    CU_add_test(s, "panic mode at max_ejection_percent 100, and without it", test_cascade_panic);
    CU_add_test(s, "an L4 balancer sees no HTTP status", test_l4_sees_no_http_status);
    CU_add_test(s, "nginx: a 503 passed on, or retried with http_503", test_nginx_http_503);
    CU_basic_set_mode(CU_BRM_VERBOSE);
    CU_basic_run_tests();
    unsigned fails = CU_get_number_of_failures();
    CU_cleanup_registry();
    return fails != 0;
}
