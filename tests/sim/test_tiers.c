/*
 * test_tiers.c - a two-tier front end through the fleetsim binary: an L4
 * balancer over several L7 balancers, each with its own policy state.
 *
 * Deterministic scenarios with exact expectations: separate least_conn
 * balancers do not see each other's connections (so two of them put two
 * requests on one server where one balancer spreads them), and an L7
 * balancer that fails refuses the connections the L4 sends it until the
 * L4's health checks take it out of rotation, at a time that follows from
 * the check interval and `fall`.
 */
#include "testutil.h"

#include <CUnit/Basic.h>

#include <math.h>

static cJSON *run_summary(const char *yaml, const char *extra)
{
    int rc = -1;
    char *dir = tu_run_yaml(yaml, extra, &rc);
    CU_ASSERT_EQUAL(rc, 0);
    cJSON *j = tu_out_summary(dir);
    CU_ASSERT_PTR_NOT_NULL(j);
    tu_done(dir);
    if (j)
        CU_ASSERT_EQUAL(tu_num(j, "requests.generated"), tu_sum_buckets(j, "requests"));
    return j;
}

/* Two servers of one GPU, 10 s per request, no network time; two requests,
 * at 1 s and 2 s. */
#define TWO_REQUESTS                                                                          \
    "name: t\n"                                                                               \
    "duration: 30s\n"                                                                         \
    "models:\n"                                                                               \
    "  m: {service: {distribution: deterministic, mean: 10s}}\n"                              \
    "pools:\n"                                                                                \
    "  gpu: {model: m, replicas: 2, queue_capacity: 10, link: {latency: 0s, bandwidth: "       \
    "100Gbps}}\n"                                                                             \
    "traffic:\n"                                                                              \
    "  - {name: x, pool: gpu, size: 0B, response_size: 0B,\n"                                 \
    "     arrivals: {process: deterministic, rate: [{at: 0s, qps: 1}, {at: 2.5s, qps: 0}]}}\n" \
    "load_balancer:\n"                                                                        \
    "  policy: least_conn\n"

static void test_separate_state(void)
{
    /* One least_conn balancer: the first request takes server 0 (a tie,
     * broken by round robin), the second sees it busy and takes server 1:
     * both answer in 10 s. */
    cJSON *j = run_summary(TWO_REQUESTS, NULL);
    if (j) {
        CU_ASSERT_EQUAL(tu_num(j, "requests.completed"), 2);
        CU_ASSERT_DOUBLE_EQUAL(tu_num(j, "latency_s.max"), 10.0, 1e-9);
        CU_ASSERT_PTR_NULL(cJSON_GetObjectItemCaseSensitive(j, "balancers"));
        cJSON_Delete(j);
    }
    /* Two least_conn balancers behind a round-robin L4: each sees only its
     * own connection, so both pick server 0 (their own first tie); the
     * second request waits for the first: 2 + 19 = 21 s, a latency of 19 s. */
    j = run_summary(TWO_REQUESTS "  l7: [{name: nginx-a}, {name: nginx-b}]\n", NULL);
    if (j) {
        CU_ASSERT_EQUAL(tu_num(j, "requests.completed"), 2);
        CU_ASSERT_DOUBLE_EQUAL(tu_num(j, "latency_s.max"), 19.0, 1e-9);
        CU_ASSERT_EQUAL(tu_num(j, "balancers.nginx-a.routed"), 1);
        CU_ASSERT_EQUAL(tu_num(j, "balancers.nginx-b.routed"), 1);
        cJSON_Delete(j);
    }
    /* A weighted L4 (nginx-a 5, nginx-b 1: smooth round robin gives a, a,
     * a, a, b, a) sends both connections to nginx-a, whose least_conn
     * spreads them again: 10 s. */
    j = run_summary(TWO_REQUESTS "  l4: {policy: weighted_round_robin}\n"
                                 "  l7: [{name: nginx-a, weight: 5}, {name: nginx-b}]\n",
                    NULL);
    if (j) {
        CU_ASSERT_EQUAL(tu_num(j, "balancers.nginx-a.routed"), 2);
        CU_ASSERT_EQUAL(tu_num(j, "balancers.nginx-b.routed"), 0);
        CU_ASSERT_DOUBLE_EQUAL(tu_num(j, "latency_s.max"), 10.0, 1e-9);
        cJSON_Delete(j);
    }
}

static void test_pool_policy(void)
{
    /* The pool's own policy (an nginx upstream's method) replaces the
     * default: `first` puts both requests on server 0: 19 s. */
    cJSON *j = run_summary(TWO_REQUESTS, "--set pools.gpu.lb_policy=first");
    if (j) {
        CU_ASSERT_DOUBLE_EQUAL(tu_num(j, "latency_s.max"), 19.0, 1e-9);
        cJSON_Delete(j);
    }
    /* an L7 balancer's own policy wins over the pool's: least_conn, 10 s */
    j = run_summary(TWO_REQUESTS "  l7: [{name: a, policy: least_conn}]\n",
                    "--set pools.gpu.lb_policy=first --set load_balancer.policy=first");
    if (j) {
        CU_ASSERT_DOUBLE_EQUAL(tu_num(j, "latency_s.max"), 10.0, 1e-9);
        cJSON_Delete(j);
    }
}

/* 3 requests a second (at k/3 s), 10 ms each, two round-robin L7
 * balancers behind a round-robin L4 whose checks run every 5.5 s. */
#define FAILOVER(hc)                                                                          \
    "name: t\n"                                                                               \
    "duration: 40s\n"                                                                         \
    "models:\n"                                                                               \
    "  m: {service: {distribution: deterministic, mean: 10ms}}\n"                             \
    "pools:\n"                                                                                \
    "  gpu: {model: m, replicas: 2, queue_capacity: 10}\n"                                    \
    "traffic:\n"                                                                              \
    "  - {name: x, pool: gpu, arrivals: {process: deterministic, rate: [{at: 0s, qps: 3}]}}\n" \
    "load_balancer:\n"                                                                        \
    "  policy: round_robin\n"                                                                 \
    "  l4: {policy: round_robin, health_check: " hc "}\n"                                     \
    "  l7: [{name: nginx-a}, {name: nginx-b}]\n"                                              \
    "chaos:\n"                                                                                \
    "  - {fault: lb_failure, target: nginx-b, at: 10.3s, duration: 20s}\n"

static void test_l7_failure(void)
{
    /* nginx-b fails at 10.3 s; the checks at 11 s and 16.5 s fail, so the
     * L4 takes it out at 16.5 s (fall 2). Until then the L4 keeps sending
     * it every other connection: arrivals k/3 s in (10.3, 16.5) are
     * k = 31..49, and nginx-b has the even k (the L4 starts with nginx-a
     * at k = 1): 32, 34, ..., 48, 9 refused (502), blamed on the fault.
     * Back at 30.3 s, it is in rotation at once. */
    cJSON *j = run_summary(FAILOVER("{interval: 5.5s, fall: 2}"), NULL);
    if (j) {
        CU_ASSERT_EQUAL(tu_num(j, "requests.generated"), 119);
        CU_ASSERT_EQUAL(tu_num(j, "balancers.nginx-b.refused"), 9);
        CU_ASSERT_EQUAL(tu_num(j, "requests.failed"), 9);
        CU_ASSERT_EQUAL(tu_num(j, "requests.completed"), 110);
        /* in rotation: k = 1..49 and from 30.3 s (k = 91..119): 25 + 14 */
        CU_ASSERT_EQUAL(tu_num(j, "balancers.nginx-b.routed"), 39);
        const cJSON *f = cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(j, "faults"), 0);
        CU_ASSERT_EQUAL(tu_num(f, "requests.failed"), 9);
        const cJSON *t = cJSON_GetObjectItemCaseSensitive(f, "target");
        CU_ASSERT(cJSON_IsString(t) && !strcmp(t->valuestring, "nginx-b"));
        cJSON_Delete(j);
    }
    /* fall 1: out at the 11 s check: k = 31..32, one refused (k = 32) */
    j = run_summary(FAILOVER("{interval: 5.5s, fall: 1}"), NULL);
    if (j) {
        CU_ASSERT_EQUAL(tu_num(j, "balancers.nginx-b.refused"), 1);
        cJSON_Delete(j);
    }
    /* interval 0: the L4 sees the failure at once: nothing refused */
    j = run_summary(FAILOVER("{interval: 0s}"), NULL);
    if (j) {
        CU_ASSERT_EQUAL(tu_num(j, "balancers.nginx-b.refused"), 0);
        CU_ASSERT_EQUAL(tu_num(j, "requests.failed"), 0);
        cJSON_Delete(j);
    }
}

/* Two requests a second (at k/2 s, k = 1..30, until 15 s), 1 s each on one
 * node, FIFO: request k runs [k - 0.5, k + 0.5). The round-robin L4 gives
 * nginx-a the odd k and nginx-b the even k; nginx-b fails at 10.3 s and the
 * L4 sees it at once (interval 0), so nothing is refused. */
#define CUT(pool_extra)                                                                        \
    "name: t\n"                                                                                \
    "duration: 40s\n"                                                                          \
    "models:\n"                                                                                \
    "  m: {service: {distribution: deterministic, mean: 1s}}\n"                                \
    "  f: {service: {distribution: deterministic, mean: 100ms}}\n"                             \
    "pools:\n"                                                                                 \
    "  pre: {model: m, replicas: 1, queue_capacity: 100" pool_extra "}\n"                      \
    "  gpu: {model: f, replicas: 1, queue_capacity: 100}\n"                                    \
    "pipelines:\n"                                                                             \
    "  one: {stages: [{pool: pre}]}\n"                                                         \
    "  two: {stages: [{pool: pre}, {pool: gpu}]}\n"                                            \
    "traffic:\n"                                                                               \
    "  - {name: x, pipeline: one, arrivals: {process: deterministic,\n"                        \
    "     rate: [{at: 0s, qps: 2}, {at: 15s, qps: 0}]}}\n"                                     \
    "load_balancer:\n"                                                                         \
    "  policy: round_robin\n"                                                                  \
    "  l4: {policy: round_robin, health_check: {interval: 0s}}\n"                              \
    "  l7: [{name: nginx-a}, {name: nginx-b}]\n"                                               \
    "chaos:\n"                                                                                 \
    "  - {fault: lb_failure, target: nginx-b, at: 10.3s, duration: 20s}\n"

static void test_l7_failure_cuts(void)
{
    /* nginx-b holds the even k sent by 10.3 s (k <= 20) and not yet
     * answered (k + 0.5 > 10.3: k >= 10): 10, 12, ..., 20, six requests
     * failed at 10.3 s and blamed on the fault. The server does not know:
     * it serves all 30 (30 s busy of 40: utilisation 0.75). */
    cJSON *j = run_summary(CUT(""), NULL);
    if (j) {
        CU_ASSERT_EQUAL(tu_num(j, "requests.generated"), 30);
        CU_ASSERT_EQUAL(tu_num(j, "requests.failed"), 6);
        CU_ASSERT_EQUAL(tu_num(j, "requests.completed"), 24);
        CU_ASSERT_EQUAL(tu_num(j, "balancers.nginx-b.cut"), 6);
        CU_ASSERT_EQUAL(tu_num(j, "balancers.nginx-b.refused"), 0);
        CU_ASSERT_EQUAL(tu_num(j, "balancers.nginx-a.cut"), 0);
        CU_ASSERT_DOUBLE_EQUAL(tu_num(j, "pools.pre.utilization"), 0.75, 1e-9);
        const cJSON *f = cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(j, "faults"), 0);
        CU_ASSERT_EQUAL(tu_num(f, "requests.failed"), 6);
        cJSON_Delete(j);
    }
    /* through two stages: the six end at the first, and the second pool
     * never sees them */
    j = run_summary(CUT(""), "--set traffic.0.pipeline=two");
    if (j) {
        CU_ASSERT_EQUAL(tu_num(j, "requests.failed"), 6);
        CU_ASSERT_EQUAL(tu_num(j, "pools.pre.requests.failed"), 6);
        CU_ASSERT_EQUAL(tu_num(j, "pools.gpu.requests.generated"), 24);
        CU_ASSERT_EQUAL(tu_num(j, "pools.gpu.requests.completed"), 24);
        cJSON_Delete(j);
    }
    /* with a 5 s client timeout, k = 10 (deadline 10 s) had timed out
     * before the cut; k = 11, 13, ... are dropped at their deadlines when
     * the node reaches them, so the even ones run from 10.5 s on: 12, 14,
     * 16, 18, 20 (deadlines 11..15 s, all after 10.3 s) are cut */
    j = run_summary(CUT(", timeout: 5s"), NULL);
    if (j) {
        CU_ASSERT_EQUAL(tu_num(j, "requests.failed"), 5);
        CU_ASSERT_EQUAL(tu_num(j, "balancers.nginx-b.cut"), 5);
        cJSON_Delete(j);
    }
}

/* Two requests, at 1 s (nginx-a) and 2 s (nginx-b), 10 s each on one node
 * (one GPU unless said); nginx-b fails at 5 s. */
#define CUT2(pool_extra, lb_extra, chaos_extra)                                                \
    "name: c\n"                                                                                \
    "duration: 40s\n"                                                                          \
    "interval: 1s\n"                                                                           \
    "models:\n"                                                                                \
    "  m: {service: {distribution: deterministic, mean: 10s}}\n"                               \
    "pools:\n"                                                                                 \
    "  gpu: {model: m, replicas: 1, queue_capacity: 10, link: {latency: 0s, bandwidth: 100Gbps}" \
    pool_extra "}\n"                                                                           \
    "traffic:\n"                                                                               \
    "  - {name: x, pool: gpu, size: 0B, response_size: 0B, arrivals: {process: deterministic,\n" \
    "     rate: [{at: 0s, qps: 1}, {at: 2.5s, qps: 0}]}}\n"                                    \
    "load_balancer:\n"                                                                         \
    "  policy: round_robin\n" lb_extra                                                          \
    "  l4: {policy: round_robin, health_check: {interval: 0s}}\n"                              \
    "  l7: [{name: nginx-a}, {name: nginx-b}]\n"                                               \
    "chaos:\n"                                                                                 \
    "  - {fault: lb_failure, target: nginx-b, at: 5s, duration: 20s}\n" chaos_extra

/* Failed at the cut (5 s), whatever ends the request's attempt later. */
static void expect_cut_at_5s(const char *yaml, double failed)
{
    cJSON *j = run_summary(yaml, NULL);
    if (!j)
        return;
    CU_ASSERT_EQUAL(tu_num(j, "balancers.nginx-b.cut"), 1);
    CU_ASSERT_EQUAL(tu_num(j, "requests.failed"), failed);
    cJSON_Delete(j);
}

static void test_l7_cut_before_other_ends(void)
{
    /* timeout 8 s: nginx-b's request waits in the node's queue behind the
     * first until 11 s, past its deadline (10 s); the cut at 5 s came
     * first, so it is cut (failed), and only the first times out */
    cJSON *j = run_summary(CUT2(", timeout: 8s", "", ""), NULL);
    if (j) {
        CU_ASSERT_EQUAL(tu_num(j, "balancers.nginx-b.cut"), 1);
        CU_ASSERT_EQUAL(tu_num(j, "requests.failed"), 1);
        CU_ASSERT_EQUAL(tu_num(j, "requests.timed_out"), 1);
        const cJSON *f = cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(j, "faults"), 0);
        CU_ASSERT_EQUAL(tu_num(f, "requests.failed"), 1);
        CU_ASSERT_EQUAL(tu_num(f, "requests.timed_out"), 0);
        cJSON_Delete(j);
    }
    /* two GPUs, both running at 8 s when the node crashes (no retries):
     * nginx-b's request was cut at 5 s, the other fails at the crash */
    expect_cut_at_5s(CUT2(", gpus_per_node: 2", "  retries: {on: off}\n",
                          "  - {fault: node_crash, target: gpu/0, at: 8s}\n"),
                     2);
    /* one GPU answering 500 over [8, 18) s: the first request, running
     * since 1 s, completes at 11 s; nginx-b's reaches the GPU at 11 s and
     * gets a 500, but was cut at 5 s */
    expect_cut_at_5s(CUT2("", "", "  - {fault: gpu_error, target: gpu/0, at: 8s, duration: 10s}\n"),
                     1);
}

static void expect_error(const char *yaml, const char *msg)
{
    CU_ASSERT(tu_expect_error(yaml, NULL, msg));
}

static void test_errors(void)
{
    expect_error(TWO_REQUESTS "  l4: {policy: round_robin}\n",
                 "s.yaml:12:3: load_balancer.l4: an L4 balancer needs l7");
    expect_error(TWO_REQUESTS "  l7: [{name: a}, {name: a}]\n",
                 "s.yaml:12:26: load_balancer.l7.1.name: duplicate balancer name \"a\"");
    expect_error(TWO_REQUESTS "  l7: [{name: a, policy: fastest}]\n",
                 "load_balancer.l7.0.policy: unknown policy \"fastest\" (policies: ");
    expect_error(TWO_REQUESTS "  l7: [{name: gpu}]\n", "load_balancer.l7.0.name: \"gpu\" is a pool's name");
    expect_error(TWO_REQUESTS "  l7: [{name: a}]\n  l4: {health_check: {fall: 0}}\n",
                 "load_balancer.l4.health_check.fall");
    expect_error(TWO_REQUESTS "  l7: [{name: a}]\n"
                              "chaos: [{fault: lb_failure, target: b, at: 1s}]\n",
                 "chaos.0.target: unknown pool or L7 balancer \"b\" (pools: gpu; L7 balancers: a)");
    CU_ASSERT(tu_expect_error(TWO_REQUESTS, "--set pools.gpu.lb_policy=fastest",
                              "pools.gpu.lb_policy: unknown policy \"fastest\""));
}

int main(void)
{
    if (CU_initialize_registry() != CUE_SUCCESS)
        return 1;
    CU_pSuite s = CU_add_suite("tiers", NULL, NULL);
    CU_add_test(s, "each L7 balancer has its own state", test_separate_state);
    CU_add_test(s, "an L7 balancer fails behind the L4", test_l7_failure);
    CU_add_test(s, "an L7 balancer that fails cuts what it passed on", test_l7_failure_cuts);
    CU_add_test(s, "a cut comes before a later timeout, crash or 500", test_l7_cut_before_other_ends);
    CU_add_test(s, "a pool's own policy", test_pool_policy);
    CU_add_test(s, "scenario errors", test_errors);
    CU_basic_set_mode(CU_BRM_VERBOSE);
    CU_basic_run_tests();
    unsigned fails = CU_get_number_of_tests_failed();
    CU_cleanup_registry();
    return fails ? 1 : 0;
}
