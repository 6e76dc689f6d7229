/*
 * test_hybrid.c - failover and bursting across pools through the fleetsim
 * binary: traffic.<c>.failover (Envoy's priority load, overflow when a level
 * is saturated, WAN latency), an nginx upstream whose backup servers are
 * another pool (load_balancer.backup_pool), the choice of a pool within a
 * level (healthy hosts, or Envoy's locality weights), per-pool cost, and the shipped
 * scenarios/chaos/site-failover.yaml with and without failover.
 *
 * The overflow and cost cases are deterministic (fixed service times,
 * evenly spaced arrivals) and exact, worked out beside each case. The
 * priority split is random per request: Binomial(N, 0.30), checked within 4
 * standard deviations of its mean.
 */
#include "testutil.h"

#include <CUnit/Basic.h>

#include <math.h>

static cJSON *run_summary(const char *yaml, const char *extra, int want_rc)
{
    int rc = -1;
    char *dir = tu_run_yaml(yaml, extra, &rc);
    CU_ASSERT_EQUAL(rc, want_rc);
    cJSON *j = tu_out_summary(dir);
    CU_ASSERT_PTR_NOT_NULL(j);
    tu_done(dir);
    return j;
}

static void assert_conserved(const cJSON *j)
{
    CU_ASSERT_EQUAL(tu_num(j, "requests.generated"), tu_sum_buckets(j, "requests"));
    double sum = 0;
    const cJSON *p;
    cJSON_ArrayForEach(p, cJSON_GetObjectItemCaseSensitive(j, "pools"))
    {
        CU_ASSERT_EQUAL(tu_num(p, "requests.generated"), tu_sum_buckets(p, "requests"));
        sum += tu_num(p, "requests.generated");
    }
    /* one pool each: the pools' arrivals are the requests */
    CU_ASSERT_EQUAL(sum, tu_num(j, "requests.generated"));
}

/* 10 QPS for 1000 s (arrivals at 0.1 k s, k = 1..9999), 10 ms of service:
 * onprem (2 nodes, one configured down) at priority 0, cloud (2 nodes)
 * at 1, 15 ms away. Links 1 ms at 1 Gbps, 1000 B each way. */
#define SPLIT                                                                                 \
    "name: split\n"                                                                           \
    "duration: 1000s\n"                                                                       \
    "models:\n"                                                                               \
    "  m: {service: {distribution: deterministic, mean: 10ms}}\n"                             \
    "pools:\n"                                                                                \
    "  onprem: {model: m, replicas: 2, queue_capacity: 100, link: {latency: 1ms, "            \
    "bandwidth: 1Gbps},\n"                                                                    \
    "           billing: amortised, price_per_gpu_hour: 1.5}\n"                               \
    "  cloud: {model: m, replicas: 2, queue_capacity: 100, link: {latency: 1ms, "             \
    "bandwidth: 1Gbps},\n"                                                                    \
    "          price_per_gpu_hour: 4, egress_per_gb: 0.09}\n"                                 \
    "traffic:\n"                                                                              \
    "  - name: x\n"                                                                           \
    "    pool: onprem\n"                                                                      \
    "    size: 1000B\n"                                                                       \
    "    response_size: 1000B\n"                                                              \
    "    arrivals: {process: deterministic, rate: [{at: 0s, qps: 10}]}\n"                     \
    "    failover:\n"                                                                         \
    "      pools: [{pool: onprem, priority: 0}, {pool: cloud, priority: 1, wan_latency: "     \
    "15ms}]\n"                                                                                \
    "load_balancer:\n"                                                                        \
    "  policy: round_robin\n"

static void test_priority_split(void)
{
    /* 1 of 2 onprem nodes healthy: health 140 * 1 / 2 = 70, so 70 / 30 */
    cJSON *j = run_summary(SPLIT "  servers: {onprem/1: {down: true}}\n", NULL, 0);
    if (!j)
        return;
    double n = tu_num(j, "requests.generated"), cloud = tu_num(j, "pools.cloud.requests.generated");
    CU_ASSERT_EQUAL(n, 9999);
    CU_ASSERT_EQUAL(tu_num(j, "requests.completed"), 9999);
    CU_ASSERT(fabs(cloud - 0.3 * n) <= 4 * sqrt(n * 0.3 * 0.7));
    CU_ASSERT_EQUAL(tu_num(j, "pools.cloud.failover_in"), cloud);
    CU_ASSERT_EQUAL(tu_num(j, "pools.onprem.failover_in"), 0);
    /* the slowest answers crossed the WAN: 10 ms + 2 x 1 ms + 2000 B at
     * 1 Gbps + 2 x 15 ms */
    CU_ASSERT_DOUBLE_EQUAL(tu_num(j, "latency_s.max"), 0.010 + 0.002 + 2000 / 125e6 + 0.030,
                           1e-9);
    /* cost: onprem amortised, 2 slots x 1 GPU x 1000 s at 1.5 an hour;
     * cloud used, 2 nodes up 1000 s at 4 an hour, plus 1000 B per answer
     * at 0.09 per GB */
    double onprem = 2 * 1000 / 3600.0 * 1.5, compute = 2 * 1000 / 3600.0 * 4;
    double egress = cloud * 1000 / 1e9 * 0.09;
    CU_ASSERT_DOUBLE_EQUAL(tu_num(j, "pools.onprem.cost.compute"), onprem, 1e-12);
    CU_ASSERT_DOUBLE_EQUAL(tu_num(j, "pools.onprem.cost.egress"), 0, 1e-15);
    CU_ASSERT_DOUBLE_EQUAL(tu_num(j, "pools.onprem.cost.egress_gb"), (n - cloud) * 1000 / 1e9,
                           1e-15);
    CU_ASSERT_DOUBLE_EQUAL(tu_num(j, "pools.cloud.cost.compute"), compute, 1e-12);
    CU_ASSERT_DOUBLE_EQUAL(tu_num(j, "pools.cloud.cost.egress_gb"), cloud * 1000 / 1e9, 1e-15);
    CU_ASSERT_DOUBLE_EQUAL(tu_num(j, "pools.cloud.cost.egress"), egress, 1e-15);
    CU_ASSERT_DOUBLE_EQUAL(tu_num(j, "pools.cloud.cost.total"), compute + egress, 1e-12);
    CU_ASSERT_DOUBLE_EQUAL(tu_num(j, "cost.money"), onprem + compute + egress, 1e-12);
    /* by zone: each pool is its own zone here (no zone given) */
    CU_ASSERT_DOUBLE_EQUAL(tu_num(j, "cost.zones.onprem"), onprem, 1e-12);
    CU_ASSERT_DOUBLE_EQUAL(tu_num(j, "cost.zones.cloud"), compute + egress, 1e-12);
    assert_conserved(j);
    cJSON_Delete(j);

    /* every onprem node healthy: priority 0 takes 100% */
    j = run_summary(SPLIT, NULL, 0);
    if (j) {
        CU_ASSERT_EQUAL(tu_num(j, "pools.onprem.requests.generated"), 9999);
        CU_ASSERT_EQUAL(tu_num(j, "pools.cloud.requests.generated"), 0);
        cJSON_Delete(j);
    }
    /* none healthy: priority 1 takes 100% (its health is 100: no panic) */
    j = run_summary(SPLIT "  servers: {onprem/0: {down: true}, onprem/1: {down: true}}\n",
                    NULL, 0);
    if (j) {
        CU_ASSERT_EQUAL(tu_num(j, "pools.onprem.requests.generated"), 0);
        CU_ASSERT_EQUAL(tu_num(j, "pools.cloud.requests.generated"), 9999);
        CU_ASSERT_EQUAL(tu_num(j, "requests.completed"), 9999);
        cJSON_Delete(j);
    }
    /* failover turned off: the class's pool only (the pools still have a
     * cost block: they set billing and egress_per_gb) */
    j = run_summary(SPLIT "  servers: {onprem/1: {down: true}}\n",
                    "--set traffic.x.failover=none", 0);
    if (j) {
        CU_ASSERT_EQUAL(tu_num(j, "pools.onprem.requests.generated"), 9999);
        CU_ASSERT_EQUAL(tu_num(j, "pools.cloud.requests.generated"), 0);
        CU_ASSERT_EQUAL(tu_num(j, "pools.cloud.cost.egress"), 0);
        cJSON_Delete(j);
    }
}

/* Overflow at max_conns: one node each, 1 s of service, one request at a
 * time (max_conns 1), arrivals every 0.8 s (k = 1..74 before 60 s). The
 * onprem node is busy at every even arrival (it took the one 0.8 s before,
 * which ends 0.2 s later) and free at every odd one: 37 each way. Without
 * failover the 37 even ones find onprem at max_conns and no queue: 503. */
#define OVERFLOW                                                                              \
    "name: ov\n"                                                                              \
    "duration: 60s\n"                                                                         \
    "models:\n"                                                                               \
    "  m: {service: {distribution: deterministic, mean: 1s}, batch: {max_size: 1}}\n"         \
    "pools:\n"                                                                                \
    "  onprem: {model: m, replicas: 1, queue_capacity: 100, link: {latency: 1ms, bandwidth: " \
    "1Gbps}}\n"                                                                               \
    "  cloud: {model: m, replicas: 1, queue_capacity: 100, link: {latency: 1ms, bandwidth: "  \
    "1Gbps}}\n"                                                                               \
    "traffic:\n"                                                                              \
    "  - name: x\n"                                                                           \
    "    pool: onprem\n"                                                                      \
    "    size: 1000B\n"                                                                       \
    "    response_size: 1000B\n"                                                              \
    "    arrivals: {process: deterministic, rate: [{at: 0s, qps: 1.25}]}\n"                   \
    "    failover:\n"                                                                         \
    "      pools: [{pool: onprem, priority: 0}, {pool: cloud, priority: 1, wan_latency: "     \
    "10ms}]\n"                                                                                \
    "      overflow: {max_conns: true}\n"                                                     \
    "load_balancer: {policy: least_conn, max_conns: 1}\n"

static void test_overflow_max_conns(void)
{
    cJSON *j = run_summary(OVERFLOW, NULL, 0);
    if (j) {
        CU_ASSERT_EQUAL(tu_num(j, "requests.generated"), 74);
        CU_ASSERT_EQUAL(tu_num(j, "pools.onprem.requests.generated"), 37);
        CU_ASSERT_EQUAL(tu_num(j, "pools.onprem.requests.completed"), 37);
        CU_ASSERT_EQUAL(tu_num(j, "pools.cloud.requests.generated"), 37);
        /* the last (59.2 s) runs past the end on the cloud node */
        CU_ASSERT_EQUAL(tu_num(j, "pools.cloud.requests.completed"), 36);
        CU_ASSERT_EQUAL(tu_num(j, "requests.rejected"), 0);
        CU_ASSERT_DOUBLE_EQUAL(tu_num(j, "latency_s.max"), 1 + 0.002 + 2000 / 125e6 + 0.020,
                               1e-9);
        assert_conserved(j);
        cJSON_Delete(j);
    }
    j = run_summary(OVERFLOW, "--set traffic.x.failover=none", 0);
    if (j) {
        CU_ASSERT_EQUAL(tu_num(j, "pools.onprem.requests.generated"), 74);
        CU_ASSERT_EQUAL(tu_num(j, "requests.completed"), 37);
        CU_ASSERT_EQUAL(tu_num(j, "requests.rejected"), 37);
        cJSON_Delete(j);
    }
}

/* Overflow by queue length: one node each, 10 s of service, one request a
 * second (k = 1..10 before 10.5 s), nothing finishes. A pool is saturated
 * at 2 waiting per healthy node. Request 1 runs on onprem, 2 and 3 wait
 * there (they find 0 and 1 waiting); 4 finds 2: to the cloud, where it
 * runs, and 5 and 6 wait there; 7 finds both saturated and stays at
 * priority 0, as 8, 9 and 10: onprem 7, cloud 3. At 3 waiting: onprem 1-4,
 * cloud 5-8, onprem 9 and 10: 6 and 4. */
#define QUEUE                                                                                 \
    "name: q\n"                                                                               \
    "duration: 10.5s\n"                                                                       \
    "models:\n"                                                                               \
    "  m: {service: {distribution: deterministic, mean: 10s}, batch: {max_size: 1}}\n"        \
    "pools:\n"                                                                                \
    "  onprem: {model: m, replicas: 1, queue_capacity: 100}\n"                                \
    "  cloud: {model: m, replicas: 1, queue_capacity: 100}\n"                                 \
    "traffic:\n"                                                                              \
    "  - name: x\n"                                                                           \
    "    pool: onprem\n"                                                                      \
    "    arrivals: {process: deterministic, rate: [{at: 0s, qps: 1}]}\n"                      \
    "    failover:\n"                                                                         \
    "      pools: [{pool: onprem, priority: 0}, {pool: cloud, priority: 1}]\n"                \
    "      overflow: {queue: 2}\n"

static void test_overflow_queue(void)
{
    cJSON *j = run_summary(QUEUE, NULL, 0);
    if (j) {
        CU_ASSERT_EQUAL(tu_num(j, "requests.generated"), 10);
        CU_ASSERT_EQUAL(tu_num(j, "pools.onprem.requests.generated"), 7);
        CU_ASSERT_EQUAL(tu_num(j, "pools.cloud.requests.generated"), 3);
        assert_conserved(j);
        cJSON_Delete(j);
    }
    j = run_summary(QUEUE, "--set traffic.x.failover.overflow.queue=3", 0);
    if (j) {
        CU_ASSERT_EQUAL(tu_num(j, "pools.onprem.requests.generated"), 6);
        CU_ASSERT_EQUAL(tu_num(j, "pools.cloud.requests.generated"), 4);
        cJSON_Delete(j);
    }
}

/* LLM pools overflow as batch pools do, their queued requests being also
 * those their engines' schedulers hold (waiting, preempted back, landed):
 * the failover level reads them from counts that the schedulers keep up to
 * date (llm_sched_watch), and debug and sanitizer builds check those
 * counts against a walk of the nodes at every read, through a node crash,
 * a lost GPU and a slowdown. At the peak (80 QPS on four Llama-3.1-8B
 * nodes) the on-premises queues pass 4 per healthy node and the cloud
 * takes the overflow; with a threshold no queue reaches, the cloud gets
 * nothing (the level stays healthy enough for Envoy's priority load). */
#define LLM_OVERFLOW                                                                           \
    "name: llm-overflow\nseed: 3\nduration: 120s\nwarmup: 10s\ninterval: 10s\n"               \
    "models:\n  m:\n    llm:\n"                                                               \
    "      config: {hidden_size: 4096, num_hidden_layers: 32, num_attention_heads: 32,\n"      \
    "               num_key_value_heads: 8, intermediate_size: 14336, vocab_size: 128256}\n"   \
    "      precision: bf16\n      step: {model: roofline, overhead: 2ms}\n"                    \
    "      enable_prefix_caching: true\n"                                                     \
    "pools:\n"                                                                               \
    "  onprem: {model: m, replicas: 4, gpus_per_node: 1, gpu: H100-SXM, queue_capacity: 4096,\n" \
    "           timeout: 120s}\n"                                                             \
    "  cloud: {model: m, replicas: 2, gpus_per_node: 1, gpu: H100-SXM, queue_capacity: 4096,\n" \
    "          timeout: 120s}\n"                                                              \
    "traffic:\n"                                                                             \
    "  - name: chat\n    pool: onprem\n"                                                     \
    "    failover:\n"                                                                        \
    "      pools: [{pool: onprem, priority: 0}, {pool: cloud, priority: 1, wan_latency: 15ms}]\n" \
    "      overflow: {queue: 4}\n"                                                            \
    "    arrivals: {process: poisson, rate: [{at: 0s, qps: 20}, {at: 40s, qps: 80, ramp: 5s},\n" \
    "               {at: 80s, qps: 20, ramp: 5s}]}\n"                                          \
    "    tokens:\n"                                                                          \
    "      input: {distribution: lognormal, mean: 1500, cv: 1, max: 8000}\n"                  \
    "      output: {distribution: lognormal, mean: 300, cv: 1, max: 2000}\n"                  \
    "      system_prompt: {tokens: 1000, prompts: 10}\n"                                      \
    "load_balancer: {policy: least_conn}\n"                                                  \
    "chaos:\n"                                                                               \
    "  - {at: 50s, fault: node_crash, target: onprem/1, recover_after: 20s}\n"                \
    "  - {at: 60s, fault: gpu_failure, target: cloud/0, recover_after: 10s}\n"                \
    "  - {at: 45s, fault: slowdown, target: onprem/2, factor: 0.3, duration: 20s}\n"

static void test_llm_overflow(void)
{
    cJSON *j = run_summary(LLM_OVERFLOW, NULL, 0);
    if (j) {
        assert_conserved(j);
        CU_ASSERT(tu_num(j, "pools.cloud.requests.generated") > 100);
        CU_ASSERT(tu_num(j, "pools.onprem.requests.generated") >
                  tu_num(j, "pools.cloud.requests.generated"));
        cJSON_Delete(j);
    }
    j = run_summary(LLM_OVERFLOW, "--set traffic.chat.failover.overflow.queue=1000000", 0);
    if (j) {
        assert_conserved(j);
        CU_ASSERT_EQUAL(tu_num(j, "pools.cloud.requests.generated"), 0);
        cJSON_Delete(j);
    }
}

/* nginx: two primary servers (onprem) and two backup servers (cloud). The
 * backups take requests only when no primary can: with one primary down,
 * none (where Envoy's priority load would send 30%); with both down, all. */
static void test_nginx_backup_pool(void)
{
    static const char *const confs[3] = {
        "",
        "server 10.0.0.2:8000 down;",
        "server 10.0.0.2:8000 down; # and the first",
    };
    for (int k = 0; k < 3; k++) {
        char *d = tu_tmpdir(), conf[4096], text[1024], yaml[4096];
        snprintf(conf, sizeof conf, "%s/nginx.conf", d);
        snprintf(text, sizeof text,
                 "http {\n upstream risk {\n  least_conn;\n"
                 "  server 10.0.0.1:8000%s;\n  %s\n"
                 "  server cloud-1:8000 backup;\n  server cloud-2:8000 backup;\n }\n}\n",
                 k == 2 ? " down" : "", k == 0 ? "server 10.0.0.2:8000;" : confs[k]);
        tu_write(conf, text);
        snprintf(yaml, sizeof yaml,
                 "name: nb\nduration: 100s\n"
                 "models:\n  m: {service: {distribution: deterministic, mean: 10ms}}\n"
                 "pools:\n  onprem: {model: m, replicas: 2}\n  cloud: {model: m, replicas: 2}\n"
                 "traffic:\n  - {name: x, pool: onprem, arrivals: {process: deterministic, "
                 "rate: [{at: 0s, qps: 10}]}}\n"
                 "load_balancer: {nginx: %s, upstream: risk, pool: onprem, backup_pool: cloud}\n",
                 conf);
        cJSON *j = run_summary(yaml, NULL, 0);
        if (j) {
            double want_cloud = k == 2 ? 999 : 0;
            CU_ASSERT_EQUAL(tu_num(j, "requests.completed"), 999);
            CU_ASSERT_EQUAL(tu_num(j, "pools.cloud.requests.generated"), want_cloud);
            CU_ASSERT_EQUAL(tu_num(j, "pools.onprem.requests.generated"), 999 - want_cloud);
            cJSON_Delete(j);
        }
        /* the backup servers must match the backup pool's nodes */
        if (k == 0)
            CU_ASSERT(tu_expect_error(yaml, "--set pools.cloud.replicas=3",
                                      "has 2 backup servers but pool cloud has 3 nodes"));
        tu_done(d);
    }
}

static void test_bad_input(void)
{
    const char *base = "name: b\nduration: 10s\n"
                       "models:\n  m: {service: {distribution: deterministic, mean: 10ms}}\n"
                       "pools:\n  a: {model: m, replicas: 1}\n  b: {model: m, replicas: 1}\n"
                       "  c: {model: m, replicas: 1}\n"
                       "traffic:\n  - name: x\n    pool: a\n"
                       "    arrivals: {process: poisson, rate: [{at: 0s, qps: 1}]}\n"
                       "    failover:\n";
    char y[2048];
    snprintf(y, sizeof y, "%s      pools: [{pool: b, priority: 0}, {pool: c, priority: 1}]\n",
             base);
    CU_ASSERT(tu_expect_error(y, NULL, "the class's pool a must be listed, at priority 0"));
    snprintf(y, sizeof y, "%s      pools: [{pool: a, priority: 0}, {pool: c, priority: 2}]\n",
             base);
    CU_ASSERT(tu_expect_error(y, NULL, "no pool at priority 1"));
    snprintf(y, sizeof y, "%s      pools: [{pool: a, priority: 1}, {pool: c, priority: 0}]\n",
             base);
    CU_ASSERT(tu_expect_error(y, NULL, "is its first choice: priority 0"));
    snprintf(y, sizeof y, "%s      pools: [{pool: a, priority: 0}, {pool: a, priority: 1}]\n",
             base);
    CU_ASSERT(tu_expect_error(y, NULL, "pool a is listed twice"));
    snprintf(y, sizeof y,
             "%s      pools: [{pool: a, priority: 0}, {pool: b, priority: 1, wan: 1ms}]\n", base);
    CU_ASSERT(tu_expect_error(y, NULL, "unknown key \"wan\""));
    snprintf(y, sizeof y,
             "%s      pools: [{pool: a, priority: 0}, {pool: b, priority: 1}]\n"
             "      panic_threshold: 0.5\n", base);
    CU_ASSERT(tu_expect_error(y, NULL, "expected a percentage from 0% to 100%, got \"0.5\""));
    snprintf(y, sizeof y,
             "%s      pools: [{pool: a, priority: 0}, {pool: b, priority: 1}]\n"
             "      overflow: {}\n", base);
    CU_ASSERT(tu_expect_error(y, NULL, "give queue, max_conns or both"));
    CU_ASSERT(tu_expect_error(base, "--set traffic.x.failover=off", "expected none or a mapping"));
    snprintf(y, sizeof y, "%s      pools: [{pool: a, priority: 0}, {pool: b, priority: 1}]\n"
             "pipelines:\n  ab: {stages: [{pool: a}, {pool: b}]}\n", base);
    CU_ASSERT(tu_expect_error(y, "--set traffic.x.pipeline=ab",
                              "needs exactly one of pool, pipeline, path"));
    CU_ASSERT(tu_expect_error(y, "--set pools.a.billing=owned",
                              "pools.a.billing"));
}

/* Spot capacity: a pool of 2 nodes (10 s to provision, ready at once
 * then), one request a second, 10 ms each (both nodes idle between). At
 * 20.5 s node 0 gets its notice; idle, it drains at once and is off. No
 * capacity for 30 s: at 50.5 s its replacement provisions, ready at 60.5 s.
 * Up time (GPU-hours count provisioning): node 0 20.5 + (100 - 50.5) =
 * 70 s, node 1 100 s. With a quota_exhausted from 10 s to 70 s as well,
 * the replacement waits for the later of the two: 20.5 + 30 s. */
#define SPOT                                                                                  \
    "name: spot\n"                                                                            \
    "duration: 100s\n"                                                                        \
    "models:\n"                                                                               \
    "  m: {service: {distribution: deterministic, mean: 10ms}}\n"                             \
    "pools:\n"                                                                                \
    "  cloud: {model: m, replicas: 2, lifecycle: {provision: 10s}}\n"                         \
    "traffic:\n"                                                                              \
    "  - {name: x, pool: cloud, arrivals: {process: deterministic, rate: [{at: 0s, qps: 1}]}}\n" \
    "chaos:\n"                                                                                \
    "  - {at: 20.5s, fault: spot_reclaim, target: cloud/0, notice: 30s, duration: 30s}\n"

static void test_spot_and_quota(void)
{
    cJSON *j = run_summary(SPOT, NULL, 0);
    if (j) {
        CU_ASSERT_EQUAL(tu_num(j, "requests.completed"), 99);
        CU_ASSERT_EQUAL(tu_num(j, "requests.failed"), 0);
        CU_ASSERT_DOUBLE_EQUAL(tu_num(j, "pools.cloud.gpu_hours"), 170 / 3600.0, 1e-9);
        CU_ASSERT_EQUAL(tu_num(j, "pools.cloud.replicas_min"), 1);
        const cJSON *f = cJSON_GetArrayItem(cJSON_GetObjectItem(j, "faults"), 0);
        CU_ASSERT_STRING_EQUAL(cJSON_GetStringValue(cJSON_GetObjectItem(f, "kind")),
                               "spot_reclaim");
        cJSON_Delete(j);
    }
    j = run_summary(SPOT "  - {at: 10s, fault: quota_exhausted, pool: cloud, duration: 60s}\n",
                    NULL, 0);
    if (j) {
        CU_ASSERT_EQUAL(tu_num(j, "requests.completed"), 99);
        CU_ASSERT_DOUBLE_EQUAL(tu_num(j, "pools.cloud.gpu_hours"), 150.5 / 3600.0, 1e-9);
        cJSON_Delete(j);
    }
    /* a busy node: its request (10 s of service from 20 s) is still
     * running when the 2 s notice ends at 22.5 s: it fails there and is
     * retried on node 1 (nginx retries a connection error), so nothing is
     * lost; the run's attempts count the extra one */
    char y[4096];
    snprintf(y, sizeof y, "%s", SPOT);
    j = run_summary(y, "--set models.m.service.mean=10s --set chaos.0.notice=2s "
                       "--set traffic.x.arrivals.rate.0.qps=0.05", 0);
    if (j) {
        /* arrivals at 20, 40, 60, 80 s; the one at 20 s goes to node 0
         * (round robin, first), fails at 22.5 s, is retried on node 1 and
         * completes at 32.5 s; 80 s + 10 s also completes */
        CU_ASSERT_EQUAL(tu_num(j, "requests.generated"), 4);
        CU_ASSERT_EQUAL(tu_num(j, "requests.completed"), 4);
        CU_ASSERT_EQUAL(tu_num(j, "requests.failed"), 0);
        CU_ASSERT_EQUAL(tu_num(j, "attempts"), 5);
        /* 2.5 s on node 0, then 10 s on node 1 (plus the link's 0.2 ms) */
        CU_ASSERT_DOUBLE_EQUAL(tu_num(j, "latency_s.max"), 12.5, 1e-3);
        cJSON_Delete(j);
    }
    CU_ASSERT(tu_expect_error(SPOT "  - {at: 1s, fault: quota_exhausted, target: cloud/1}\n",
                              NULL, "quota_exhausted applies to a pool, not a node"));
    CU_ASSERT(tu_expect_error(SPOT "  - {at: 1s, fault: spot_reclaim}\n", NULL,
                              "spot_reclaim needs target (pool/index or pool) or zone"));
    CU_ASSERT(tu_expect_error(SPOT "  - {at: 1s, fault: node_crash, target: cloud, notice: 1s}\n",
                              NULL, "node_crash does not take notice"));
}

/* The shipped scenario: the on-premises site lost at the peak. With
 * failover the cloud takes the load once health checks take the site out:
 * only the detection window's transactions fail, and the hypothesis holds
 * (exit 0); without it a third of the run's fail and it does not (exit 1). */
static void test_site_failover(void)
{
    char path[4096], extra[4200];
    snprintf(path, sizeof path, "%s/scenarios/chaos/site-failover.yaml", tu_src());
    char *d = tu_tmpdir();
    char log[4200], out[4200];
    snprintf(log, sizeof log, "%s/log", d);
    snprintf(out, sizeof out, "%s/with", d);
    int rc = tu_sh(log, "'%s' run '%s' --quiet --out '%s'", tu_bin(), path, out);
    CU_ASSERT_EQUAL(rc, 0);
    cJSON *j = tu_summary(out);
    CU_ASSERT_PTR_NOT_NULL(j);
    if (j) {
        double n = tu_num(j, "requests.generated"), failed = tu_num(j, "requests.failed");
        double cloud = tu_num(j, "pools.cloud.requests.generated");
        CU_ASSERT(tu_num(j, "availability") >= 0.98);
        CU_ASSERT(failed > 0);
        CU_ASSERT_EQUAL(tu_num(j, "pools.onprem.requests.failed"), failed);
        CU_ASSERT_EQUAL(tu_num(j, "pools.cloud.requests.failed"), 0);
        /* the cloud took the site's load for the 5 minutes of the outage
         * and more: at least 5 min x 500 QPS */
        CU_ASSERT(cloud >= 300 * 500);
        CU_ASSERT_EQUAL(tu_num(j, "pools.cloud.failover_in"), cloud);
        CU_ASSERT_EQUAL(tu_num(j, "requests.generated"), tu_sum_buckets(j, "requests"));
        /* the site's cost by zone: 4 owned A100 slots x 30 min at 1.2 */
        CU_ASSERT_DOUBLE_EQUAL(tu_num(j, "cost.zones.dc1"), 4 * 0.5 * 1.2, 1e-12);
        CU_ASSERT_DOUBLE_EQUAL(tu_num(j, "cost.zones.cloud-eu"),
                               tu_num(j, "pools.cloud.cost.total"), 1e-12);
        CU_ASSERT(n > 0);
        cJSON_Delete(j);
    }
    snprintf(out, sizeof out, "%s/without", d);
    snprintf(extra, sizeof extra, "--set traffic.payments.failover=none");
    rc = tu_sh(log, "'%s' run '%s' --quiet --out '%s' %s", tu_bin(), path, out, extra);
    CU_ASSERT_EQUAL(rc, 1);
    j = tu_summary(out);
    CU_ASSERT_PTR_NOT_NULL(j);
    if (j) {
        CU_ASSERT(tu_num(j, "availability") < 0.8);
        CU_ASSERT_EQUAL(tu_num(j, "pools.cloud.requests.generated"), 0);
        cJSON_Delete(j);
    }
    tu_done(d);
}

/* The shipped spot scenario: the spot pool reclaimed at the peak. With the
 * on-demand level behind it every transaction completes and the
 * hypothesis holds; with that level's node down the overflow has nowhere
 * to go and the hypothesis fails. */
static void test_spot_reclaim_at_peak(void)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/scenarios/chaos/spot-reclaim-at-peak.yaml", tu_src());
    char *d = tu_tmpdir();
    char log[4200], out[4200];
    snprintf(log, sizeof log, "%s/log", d);
    snprintf(out, sizeof out, "%s/with", d);
    CU_ASSERT_EQUAL(tu_sh(log, "'%s' run '%s' --quiet --out '%s'", tu_bin(), path, out), 0);
    cJSON *j = tu_summary(out);
    CU_ASSERT_PTR_NOT_NULL(j);
    if (j) {
        CU_ASSERT_EQUAL(tu_num(j, "requests.timed_out") + tu_num(j, "requests.failed") +
                            tu_num(j, "requests.rejected"),
                        0);
        /* both cloud levels took overflow */
        CU_ASSERT(tu_num(j, "pools.ondemand.requests.generated") > 0);
        CU_ASSERT(tu_num(j, "pools.spot.requests.generated") > 0);
        /* spot and on-demand are one zone: its cost is theirs */
        CU_ASSERT_DOUBLE_EQUAL(tu_num(j, "cost.zones.cloud-eu"),
                               tu_num(j, "pools.spot.cost.total") +
                                   tu_num(j, "pools.ondemand.cost.total"),
                               1e-9);
        const cJSON *f = cJSON_GetArrayItem(cJSON_GetObjectItem(j, "faults"), 0);
        CU_ASSERT_STRING_EQUAL(cJSON_GetStringValue(cJSON_GetObjectItem(f, "kind")),
                               "spot_reclaim");
        cJSON_Delete(j);
    }
    snprintf(out, sizeof out, "%s/without", d);
    CU_ASSERT_EQUAL(tu_sh(log, "'%s' run '%s' --quiet --out '%s' "
                               "--set load_balancer.servers.ondemand/0.down=true",
                          tu_bin(), path, out),
                    1);
    j = tu_summary(out);
    if (j) {
        CU_ASSERT(tu_num(j, "availability") < 0.95);
        CU_ASSERT_EQUAL(tu_num(j, "pools.ondemand.requests.generated"), 0);
        /* the errors on premises are the reclaim's: its load had nowhere
         * else to go (root cause through the class's failover pools) */
        double errs = tu_num(j, "requests.timed_out") + tu_num(j, "requests.failed") +
                      tu_num(j, "requests.rejected");
        CU_ASSERT(errs > 0);
        CU_ASSERT_DOUBLE_EQUAL(tu_num(j, "accounting.errors_by_cause.faults"), errs, 0);
        CU_ASSERT_DOUBLE_EQUAL(tu_num(j, "accounting.errors_by_cause.overload"), 0, 0);
        const cJSON *f = cJSON_GetArrayItem(cJSON_GetObjectItem(j, "faults"), 0);
        CU_ASSERT_DOUBLE_EQUAL(tu_num(f, "requests.timed_out") + tu_num(f, "requests.failed") +
                                   tu_num(f, "requests.rejected"),
                               errs, 0);
        cJSON_Delete(j);
    }
    tu_done(d);
}

/* Two pools at one level: a (4 nodes) and b (2 nodes). Without weights a
 * pool's share is its healthy hosts' (Envoy spreads a priority over its
 * healthy hosts); with weights it is Envoy's locality weight x min(1, 1.4 x
 * healthy / hosts). Binomial(9999, share), within 4 standard deviations. */
#define LOCALITY                                                                              \
    "name: locality\n"                                                                        \
    "duration: 1000s\n"                                                                       \
    "models:\n"                                                                               \
    "  m: {service: {distribution: deterministic, mean: 10ms}}\n"                             \
    "pools:\n"                                                                                \
    "  a: {model: m, replicas: 4, queue_capacity: 100}\n"                                     \
    "  b: {model: m, replicas: 2, queue_capacity: 100}\n"                                     \
    "traffic:\n"                                                                              \
    "  - name: x\n"                                                                           \
    "    pool: a\n"                                                                           \
    "    arrivals: {process: deterministic, rate: [{at: 0s, qps: 10}]}\n"                     \
    "    failover:\n"                                                                         \
    "      pools: [{pool: a, priority: 0%s}, {pool: b, priority: 0%s}]\n"                     \
    "load_balancer:\n"                                                                        \
    "  policy: round_robin\n"                                                                 \
    "%s"

static void locality_case(const char *wa, const char *wb, const char *servers, double share_a)
{
    char yaml[2048];
    snprintf(yaml, sizeof yaml, LOCALITY, wa, wb, servers);
    cJSON *j = run_summary(yaml, NULL, 0);
    if (!j)
        return;
    double n = tu_num(j, "requests.generated"), a = tu_num(j, "pools.a.requests.generated");
    CU_ASSERT_EQUAL(n, 9999);
    CU_ASSERT(fabs(a - share_a * n) <= 4 * sqrt(n * share_a * (1 - share_a)));
    if (fabs(a - share_a * n) > 4 * sqrt(n * share_a * (1 - share_a)))
        fprintf(stderr, "\n  share of a %.4f, want %.4f\n", a / n, share_a);
    assert_conserved(j);
    cJSON_Delete(j);
}

static void test_locality_weights(void)
{
    const char *two_down = "  servers: {a/0: {down: true}, a/1: {down: true}}\n";
    locality_case("", "", "", 4.0 / 6);                  /* healthy hosts 4 : 2 */
    locality_case("", "", two_down, 0.5);                /* 2 : 2 */
    locality_case(", weight: 1", ", weight: 1", "", 0.5); /* min(1, 1.4) each */
    /* a: min(1, 1.4 x 2 / 4) = 0.7 against b's 1 */
    locality_case(", weight: 1", ", weight: 1", two_down, 0.7 / 1.7);
    /* a: 3 x 0.7 = 2.1 against b's 1 */
    locality_case(", weight: 3", "", two_down, 2.1 / 3.1);
}

/* The WAN to the cloud cut (a partition of the cloud pool) while on
 * premises runs at 70%: what was sent over it fails, and every error is
 * blamed on the cut. */
static void test_wan_cut(void)
{
    cJSON *j = run_summary(SPLIT "  servers: {onprem/1: {down: true}}\n"
                                 "chaos:\n"
                                 "  - {at: 300s, fault: partition, target: cloud, duration: 200s}\n",
                           NULL, 0);
    if (!j)
        return;
    double errs = tu_num(j, "requests.timed_out") + tu_num(j, "requests.failed") +
                  tu_num(j, "requests.rejected");
    CU_ASSERT(errs > 0);
    CU_ASSERT_DOUBLE_EQUAL(tu_num(j, "accounting.errors_by_cause.faults"), errs, 0);
    const cJSON *f = cJSON_GetArrayItem(cJSON_GetObjectItem(j, "faults"), 0);
    CU_ASSERT_STRING_EQUAL(cJSON_GetStringValue(cJSON_GetObjectItem(f, "kind")), "partition");
    CU_ASSERT_DOUBLE_EQUAL(tu_num(f, "requests.timed_out") + tu_num(f, "requests.failed") +
                               tu_num(f, "requests.rejected"),
                           errs, 0);
    /* at most the 30% of the 2000 arrivals of the cut sent to the cloud
     * (fewer once health checks take the cloud out), within 4 sigma */
    CU_ASSERT(errs <= 600 + 4 * sqrt(2000 * 0.3 * 0.7));
    assert_conserved(j);
    cJSON_Delete(j);
}

int main(void)
{
    if (CU_initialize_registry() != CUE_SUCCESS)
        return 1;
    CU_pSuite s = CU_add_suite("hybrid", NULL, NULL);
    CU_add_test(s, "priority load split 70/30, 100/0, 0/100; WAN latency; cost", test_priority_split);
    CU_add_test(s, "within a level: healthy hosts, or Envoy's locality weights", test_locality_weights);
    CU_add_test(s, "the WAN to the cloud cut: errors blamed on it", test_wan_cut);
    CU_add_test(s, "overflow at max_conns", test_overflow_max_conns);
    CU_add_test(s, "overflow by queue length", test_overflow_queue);
    CU_add_test(s, "LLM pools overflow on their schedulers' queues", test_llm_overflow);
    CU_add_test(s, "nginx backup servers as another pool", test_nginx_backup_pool);
    CU_add_test(s, "bad failover input", test_bad_input);
    CU_add_test(s, "spot_reclaim and quota_exhausted", test_spot_and_quota);
    CU_add_test(s, "site-failover.yaml with and without failover", test_site_failover);
    CU_add_test(s, "spot-reclaim-at-peak.yaml with and without on-demand", test_spot_reclaim_at_peak);
    CU_basic_set_mode(CU_BRM_VERBOSE);
    CU_basic_run_tests();
    unsigned f = CU_get_number_of_failures();
    CU_cleanup_registry();
    return (int)f;
}
