/*
 * test_pipeline.c - pipelines through the fleetsim binary: stages in series,
 * cache stages, asynchronous queues, L7 routes, and the cache_down and
 * broker_down faults.
 *
 * The scenarios are deterministic (fixed service times, evenly spaced
 * arrivals), so most expectations are exact and worked out beside each
 * case: a tandem's latency is the sum of its stages', a queue consumer's
 * deliveries follow from its service time, a fault window covers a known
 * set of arrivals. The one random case, a cache's hit count, is binomial and
 * checked within 4 standard deviations of its mean.
 */
#include "testutil.h"

#include <CUnit/Basic.h>

#include <math.h>

/* Two pools in series: a (100 ms) then b (50 ms), links 1 ms and 2 ms one
 * way at 1 Gbps, 1000 B each way: one arrival a second from t = 1 s. */
#define TANDEM                                                                               \
    "name: t\n"                                                                              \
    "duration: 100s\n"                                                                       \
    "models:\n"                                                                              \
    "  a: {service: {distribution: deterministic, mean: 100ms}}\n"                           \
    "  b: {service: {distribution: deterministic, mean: 50ms}}\n"                            \
    "pools:\n"                                                                               \
    "  pa: {model: a, replicas: 1, queue_capacity: 100, link: {latency: 1ms, bandwidth: "     \
    "1Gbps}}\n"                                                                              \
    "  pb: {model: b, replicas: 1, queue_capacity: 100, link: {latency: 2ms, bandwidth: "     \
    "1Gbps}}\n"

/* Every request in one bucket overall, and every pool's stage counts too. */
static void assert_conserved(const cJSON *j)
{
    CU_ASSERT_EQUAL(tu_num(j, "requests.generated"), tu_sum_buckets(j, "requests"));
    const cJSON *p;
    cJSON_ArrayForEach(p, cJSON_GetObjectItemCaseSensitive(j, "pools"))
    {
        CU_ASSERT_EQUAL(tu_num(p, "requests.generated"), tu_sum_buckets(p, "requests"));
        CU_ASSERT(tu_num(p, "requests.in_flight_at_end") >= 0);
    }
}

static cJSON *run_summary(const char *yaml, const char *extra, char **dir_out)
{
    int rc = -1;
    char *dir = tu_run_yaml(yaml, extra, &rc);
    CU_ASSERT_EQUAL(rc, 0);
    cJSON *j = tu_out_summary(dir);
    CU_ASSERT_PTR_NOT_NULL(j);
    if (dir_out)
        *dir_out = dir;
    else
        tu_done(dir);
    return j;
}

/* One stage's latency: service + 2 x link latency + 2000 B at 1 Gbps. */
static double stage_s(double service_s, double link_s)
{
    return service_s + 2 * link_s + 2000.0 / 125e6;
}

static void test_tandem(void)
{
    const char *yaml = TANDEM "pipelines:\n"
                              "  both:\n"
                              "    stages: [{pool: pa}, {pool: pb}]\n"
                              "traffic:\n"
                              "  - {name: x, pipeline: both, size: 1000B, response_size: 1000B,\n"
                              "     arrivals: {process: deterministic, rate: [{at: 0s, qps: 1}]}}\n";
    cJSON *j = run_summary(yaml, NULL, NULL);
    if (!j)
        return;
    /* arrivals at 1, 2, ..., 99 s: every one through both stages */
    CU_ASSERT_EQUAL(tu_num(j, "requests.generated"), 99);
    CU_ASSERT_EQUAL(tu_num(j, "requests.completed"), 99);
    const cJSON *cx = cJSON_GetObjectItem(cJSON_GetObjectItem(j, "classes"), "x");
    CU_ASSERT_STRING_EQUAL(cJSON_GetStringValue(cJSON_GetObjectItem(cx, "pipeline")), "both");
    CU_ASSERT_STRING_EQUAL(cJSON_GetStringValue(cJSON_GetObjectItem(cx, "pool")), "pa");
    CU_ASSERT_EQUAL(tu_num(j, "pools.pa.requests.completed"), 99);
    CU_ASSERT_EQUAL(tu_num(j, "pools.pb.requests.generated"), 99);
    CU_ASSERT_EQUAL(tu_num(j, "pools.pb.requests.completed"), 99);
    /* no waiting anywhere: the latency is the sum of the stages' */
    double want = stage_s(0.1, 0.001) + stage_s(0.05, 0.002);
    CU_ASSERT_DOUBLE_EQUAL(tu_num(j, "latency_s.max"), want, 1e-9);
    CU_ASSERT_DOUBLE_EQUAL(tu_num(j, "latency_s.p50"), want, want * 0.01); /* histogram */
    assert_conserved(j);
    cJSON_Delete(j);

    /* the same class sent to one pool by name: that stage alone */
    j = run_summary(yaml, "--set traffic.x.pipeline=pb", NULL);
    if (j) {
        CU_ASSERT_DOUBLE_EQUAL(tu_num(j, "latency_s.max"), stage_s(0.05, 0.002), 1e-9);
        CU_ASSERT_EQUAL(tu_num(j, "pools.pa.requests.generated"), 0);
        CU_ASSERT_PTR_NULL(
            cJSON_GetObjectItem(cJSON_GetObjectItem(cJSON_GetObjectItem(j, "classes"), "x"), "pipeline"));
        cJSON_Delete(j);
    }
}

#define CACHED(hit)                                                                           \
    TANDEM "pipelines:\n"                                                                     \
           "  cached:\n"                                                                      \
           "    stages:\n"                                                                    \
           "      - pool: pa\n"                                                               \
           "      - cache: {name: feat, hit_ratio: " hit ", lookup: 5ms}\n"                   \
           "      - pool: pb\n"                                                               \
           "traffic:\n"                                                                       \
           "  - {name: x, pipeline: cached, size: 1000B, response_size: 1000B,\n"             \
           "     arrivals: {process: deterministic, rate: [{at: 0s, qps: 1}]}}\n"

static void test_cache(void)
{
    /* every lookup hits: pb sees nothing; the lookup adds its 5 ms */
    cJSON *j = run_summary(CACHED("1"), NULL, NULL);
    if (j) {
        CU_ASSERT_EQUAL(tu_num(j, "requests.completed"), 99);
        CU_ASSERT_EQUAL(tu_num(j, "pools.pb.requests.generated"), 0);
        CU_ASSERT_EQUAL(tu_num(j, "caches.feat.lookups"), 99);
        CU_ASSERT_EQUAL(tu_num(j, "caches.feat.hits"), 99);
        CU_ASSERT_DOUBLE_EQUAL(tu_num(j, "latency_s.max"), stage_s(0.1, 0.001) + 0.005, 1e-9);
        assert_conserved(j);
        cJSON_Delete(j);
    }
    /* hit ratio 0.3 over N lookups: misses ~ Binomial(N, 0.7), and every miss
     * (and only a miss) reaches pb. 8 QPS (pa 80% busy) for 100 s: arrivals
     * at 0.125 k s, k = 1..799, the last lookup at 99.975 s: N = 799. */
    j = run_summary(CACHED("0.3"), "--set traffic.x.arrivals.rate.0.qps=8", NULL);
    if (j) {
        double n = tu_num(j, "caches.feat.lookups");
        double hits = tu_num(j, "caches.feat.hits");
        CU_ASSERT_EQUAL(n, 799);
        CU_ASSERT_EQUAL(tu_num(j, "pools.pb.requests.generated"), n - hits);
        CU_ASSERT(fabs((n - hits) - 0.7 * n) <= 4 * sqrt(n * 0.7 * 0.3));
        CU_ASSERT_DOUBLE_EQUAL(tu_num(j, "caches.feat.hit_ratio"), hits / n, 1e-12);
        assert_conserved(j);
        cJSON_Delete(j);
    }
}

static void test_cache_down(void)
{
    /* Hit ratio 1, cache down from 30 s for 20 s: lookups happen 0.1 s
     * after each arrival (1, 2, ... s), so those of the arrivals at 30..49
     * miss: exactly 20 reach pb, and the fault is recorded. The exporter's
     * counters, scraped every 15 s, show it: 29 hits and no miss at 30 s,
     * 15 misses at 45 s, 20 from 60 s on. */
    char yaml[8192];
    snprintf(yaml, sizeof yaml, "%s",
             CACHED("1") "chaos:\n"
                         "  - {fault: cache_down, cache: feat, at: 30s, duration: 20s}\n"
                         "monitoring: {scrape_interval: 15s}\n");
    char *dir = NULL, om[4096];
    cJSON *j = run_summary(yaml, "--openmetrics om.txt", &dir);
    if (!j) {
        tu_done(dir);
        return;
    }
    CU_ASSERT_EQUAL(tu_num(j, "pools.pb.requests.generated"), 20);
    CU_ASSERT_EQUAL(tu_num(j, "caches.feat.hits"), 79);
    const cJSON *f = cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(j, "faults"), 0);
    CU_ASSERT_PTR_NOT_NULL(f);
    if (f) {
        CU_ASSERT_STRING_EQUAL(cJSON_GetObjectItem(f, "kind")->valuestring, "cache_down");
        CU_ASSERT_STRING_EQUAL(cJSON_GetObjectItem(f, "target")->valuestring, "feat");
    }
    assert_conserved(j);
    cJSON_Delete(j);
    snprintf(om, sizeof om, "%s/om.txt", dir);
    char *text = tu_read(om);
    CU_ASSERT_PTR_NOT_NULL(text);
    if (text) {
        const char *hit = "fleetsim_cache_requests_total{cache=\"feat\",result=\"hit\"}";
        const char *miss = "fleetsim_cache_requests_total{cache=\"feat\",result=\"miss\"}";
        CU_ASSERT_EQUAL(tu_om_sample(text, hit, 30), 29);
        CU_ASSERT_EQUAL(tu_om_sample(text, miss, 30), 0);
        CU_ASSERT_EQUAL(tu_om_sample(text, hit, 45), 29);
        CU_ASSERT_EQUAL(tu_om_sample(text, miss, 45), 15);
        CU_ASSERT_EQUAL(tu_om_sample(text, miss, 60), 20);
        CU_ASSERT_EQUAL(tu_om_sample(text, hit, 60), 39);
        free(text);
    }
    tu_done(dir);
}

/* A producer (100 ms) feeding a consumer (500 ms, one at a time) through a
 * queue; 5 arrivals a second, 0.2 s apart from 0.2 s. The entry pool's
 * timeout is 1 s, which the queue's acknowledgement ends. */
#define ASYNC(extra_queue)                                                                   \
    "name: q\n"                                                                              \
    "duration: 100s\n"                                                                       \
    "models:\n"                                                                              \
    "  a: {service: {distribution: deterministic, mean: 100ms}}\n"                           \
    "  c: {service: {distribution: deterministic, mean: 500ms}}\n"                           \
    "pools:\n"                                                                               \
    "  pa: {model: a, replicas: 1, queue_capacity: 100, timeout: 1s}\n"                      \
    "  pc: {model: c, replicas: 1, queue_capacity: 100}\n"                                   \
    "pipelines:\n"                                                                           \
    "  async:\n"                                                                             \
    "    stages:\n"                                                                          \
    "      - pool: pa\n"                                                                     \
    "      - queue: {name: jobs, prefetch: 1" extra_queue "}\n"                              \
    "      - pool: pc\n"                                                                     \
    "traffic:\n"                                                                             \
    "  - {name: x, pipeline: async,\n"                                                       \
    "     arrivals: {process: deterministic, rate: [{at: 0s, qps: 5}]}}\n"

static void test_queue_backlog(void)
{
    char *dir = NULL;
    cJSON *j = run_summary(ASYNC(", capacity: 100000") "monitoring: {scrape_interval: 15s}\n",
                           "--openmetrics om.txt", &dir);
    if (!j)
        return;
    /* 499 arrivals (0.2 .. 99.8 s), each published 0.1 s later: the
     * queue's acknowledgement answers the client then, so all 499 complete
     * with pa's latency alone (100 ms and the network). The consumer takes
     * one message at a time (prefetch 1) and is never idle after the first:
     * deliveries at 0.3 + 0.5 k < 100, k = 0..199, so 200 delivered and 199
     * processed; the backlog is the other 299. */
    CU_ASSERT_EQUAL(tu_num(j, "requests.generated"), 499);
    CU_ASSERT_EQUAL(tu_num(j, "requests.completed"), 499);
    CU_ASSERT_EQUAL(tu_num(j, "requests.in_flight_at_end"), 0);
    CU_ASSERT(tu_num(j, "latency_s.max") > 0.1 && tu_num(j, "latency_s.max") < 0.101);
    CU_ASSERT_EQUAL(tu_num(j, "queues.jobs.published"), 499);
    CU_ASSERT_EQUAL(tu_num(j, "queues.jobs.delivered"), 200);
    CU_ASSERT_EQUAL(tu_num(j, "queues.jobs.processed"), 199);
    CU_ASSERT_EQUAL(tu_num(j, "queues.jobs.lost"), 0);
    CU_ASSERT_EQUAL(tu_num(j, "queues.jobs.backlog_at_end"), 299);
    CU_ASSERT_EQUAL(tu_num(j, "queues.jobs.backlog_max"), 299);
    /* jobs wait in the broker without a deadline: the 199th processed
     * (delivered at 99.3 s) is the arrival at 39.8 s, acknowledged at
     * 39.9 s and done at 99.8 s, 59.9 s later; the first waited 0.5 s */
    CU_ASSERT_EQUAL(tu_num(j, "pools.pc.requests.timed_out"), 0);
    CU_ASSERT_DOUBLE_EQUAL(tu_num(j, "queues.jobs.lag_s.max"), 59.9, 1e-6);
    CU_ASSERT_DOUBLE_EQUAL(tu_num(j, "queues.jobs.lag_s.p50"), 29.9, 0.5);
    /* the exporter's backlog gauge and counters at the 60 s scrape */
    char om[4096];
    snprintf(om, sizeof om, "%s/om.txt", dir);
    char *text = tu_read(om);
    CU_ASSERT_PTR_NOT_NULL(text);
    if (text) {
        CU_ASSERT_EQUAL(tu_om_sample(text, "fleetsim_queue_backlog{queue=\"jobs\"}", 60), 179);
        CU_ASSERT_EQUAL(tu_om_sample(text,
                                     "fleetsim_queue_messages_total{queue=\"jobs\",result=\"delivered\"}",
                                     60),
                        120);
        free(text);
    }
    assert_conserved(j);
    /* the backlog column at the end of the first minute: publishes at
     * 0.3 .. 59.9 s (299) less deliveries at 0.3 .. 59.8 s (120) */
    char path[4096];
    snprintf(path, sizeof path, "%s/out/timeseries.csv", dir);
    char *ts = tu_read(path);
    CU_ASSERT_PTR_NOT_NULL(ts);
    if (ts) {
        CU_ASSERT_PTR_NOT_NULL(strstr(ts, ",jobs.backlog\n"));
        char *row = strchr(ts, '\n') + 1, *end = strchr(row, '\n');
        if (end) {
            *end = '\0';
            CU_ASSERT_EQUAL(atof(strrchr(row, ',') + 1), 179);
        }
        free(ts);
    }
    cJSON_Delete(j);
    tu_done(dir);

    /* a bounded queue refuses when full (503): 50 held, the rest refused */
    j = run_summary(ASYNC(", capacity: 50"), NULL, NULL);
    if (j) {
        CU_ASSERT_EQUAL(tu_num(j, "queues.jobs.backlog_max"), 50);
        CU_ASSERT_EQUAL(tu_num(j, "queues.jobs.published") + tu_num(j, "queues.jobs.refused"),
                        499);
        CU_ASSERT_EQUAL(tu_num(j, "requests.rejected"), tu_num(j, "queues.jobs.refused"));
        /* a refusal is the producer's error */
        CU_ASSERT_EQUAL(tu_num(j, "pools.pa.requests.rejected"), tu_num(j, "queues.jobs.refused"));
        CU_ASSERT_EQUAL(tu_num(j, "pools.pc.requests.rejected"), 0);
        CU_ASSERT_EQUAL(tu_num(j, "queues.jobs.backlog_at_end"), 50);
        assert_conserved(j);
        cJSON_Delete(j);
    }
}

static void test_backlog_autoscaling(void)
{
    /* An HPA on the consumer with an External metric, the queue's backlog,
     * target 20 per replica; the consumer's replicas start in 5 s. At the
     * first sync (15 s) 74 messages were published (0.3 .. 14.9 s) and 30
     * delivered (0.3 .. 14.8 s): 44 waiting, ceil(44 / 20) = 3 replicas.
     * The backlog peaks when they are ready at 20 s (99 - 40 = 59), then
     * 3 x 2/s outrun the 5/s arriving and it drains. */
    char *mdir = tu_tmpdir();
    char manifest[4096], yaml[8192];
    snprintf(manifest, sizeof manifest, "%s/hpa.yaml", mdir);
    tu_write(manifest, "apiVersion: autoscaling/v2\n"
                       "kind: HorizontalPodAutoscaler\n"
                       "metadata: {name: consumer}\n"
                       "spec:\n"
                       "  scaleTargetRef: {apiVersion: apps/v1, kind: Deployment, name: c}\n"
                       "  minReplicas: 1\n"
                       "  maxReplicas: 4\n"
                       "  metrics:\n"
                       "    - type: External\n"
                       "      external:\n"
                       "        metric: {name: fleetsim_queue_backlog}\n"
                       "        target: {type: AverageValue, averageValue: \"20\"}\n");
    snprintf(yaml, sizeof yaml,
             ASYNC(", capacity: 100000") "autoscaler: {pool: pc, policy: hpa, manifest: '%s'}\n",
             manifest);
    /* the consumer may grow to 4 nodes, starting in 5 s */
    cJSON *j = run_summary(yaml, "--set duration=120s --set pools.pc.max_replicas=4 "
                                 "--set pools.pc.lifecycle.start=5s", NULL);
    if (j) {
        const cJSON *ev = cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(j, "scaling_events"), 0);
        CU_ASSERT_EQUAL(tu_num(ev, "t_s"), 15);
        CU_ASSERT_EQUAL(tu_num(ev, "from"), 1);
        CU_ASSERT_EQUAL(tu_num(ev, "to"), 3);
        CU_ASSERT_EQUAL(tu_num(j, "queues.jobs.backlog_max"), 59);
        CU_ASSERT_EQUAL(tu_num(j, "queues.jobs.backlog_at_end"), 0);
        CU_ASSERT_EQUAL(tu_num(j, "pools.pc.replicas_max"), 3);
        assert_conserved(j);
        cJSON_Delete(j);
    }
    tu_done(mdir);
}

static void test_consumer_from_zero(void)
{
    /* A KPA consumer scales to zero in the 800 s without messages and is
     * woken by the first message that finds no replica (as requests at the
     * balancer wake it): arrivals every 0.5 s from 900.5 s are published
     * 0.1 s later, from 900.6 s; the replica starts in 10 s, by when 21
     * messages wait (900.6 .. 910.6 s). None is lost. */
    const char *yaml =
        "name: kq\n"
        "duration: 1200s\n"
        "models:\n"
        "  a: {service: {distribution: deterministic, mean: 100ms}}\n"
        "  c: {service: {distribution: deterministic, mean: 200ms}}\n"
        "pools:\n"
        "  pa: {model: a, replicas: 1, queue_capacity: 100}\n"
        "  pc: {model: c, replicas: 1, max_replicas: 3, queue_capacity: 100, lifecycle: {start: 10s}}\n"
        "pipelines:\n"
        "  async:\n"
        "    stages:\n"
        "      - pool: pa\n"
        "      - queue: {name: jobs, prefetch: 1, capacity: 100000}\n"
        "      - pool: pc\n"
        "traffic:\n"
        "  - {name: x, pipeline: async, arrivals: {process: deterministic,\n"
        "     rate: [{at: 0s, qps: 2}, {at: 100s, qps: 0}, {at: 900s, qps: 2}]}}\n"
        "autoscaler: {pool: pc, policy: kpa, target: 1, scale_to_zero_grace_period: 30s}\n";
    cJSON *j = run_summary(yaml, NULL, NULL);
    if (!j)
        return;
    const cJSON *evs = cJSON_GetObjectItemCaseSensitive(j, "scaling_events");
    int woke = 0, slept = 0;
    const cJSON *e;
    cJSON_ArrayForEach(e, evs)
    {
        slept |= tu_num(e, "to") == 0 && tu_num(e, "t_s") < 900;
        if (tu_num(e, "from") == 0 && tu_num(e, "to") >= 1) {
            woke = 1;
            CU_ASSERT_DOUBLE_EQUAL(tu_num(e, "t_s"), 900.6, 1e-6);
        }
    }
    CU_ASSERT(slept);
    CU_ASSERT(woke);
    CU_ASSERT_EQUAL(tu_num(j, "queues.jobs.backlog_max"), 21);
    CU_ASSERT_EQUAL(tu_num(j, "queues.jobs.delivered"), tu_num(j, "requests.generated"));
    CU_ASSERT_EQUAL(tu_num(j, "requests.completed"), tu_num(j, "requests.generated"));
    assert_conserved(j);
    cJSON_Delete(j);
}

static void test_consumer_gone(void)
{
    /* Two consumers (2 messages a second each) fall behind the 5 arriving:
     * the backlog grows. pc/1 crashes at 30 s, as its batch ends, the
     * balancer not knowing (no health checks): the message it ran was never
     * acknowledged, so it goes back to the head of the queue (one failed
     * attempt at pc, nothing lost). The broker delivers nothing more to
     * pc/1: the backlog waits for pc/0 instead of failing there. */
    char yaml[8192];
    snprintf(yaml, sizeof yaml, "%s",
             ASYNC(", capacity: 100000") "chaos:\n"
                                         "  - {fault: node_crash, target: pc/1, at: 30s}\n");
    cJSON *j = run_summary(yaml, "--set pools.pc.replicas=2", NULL);
    if (j) {
        CU_ASSERT_EQUAL(tu_num(j, "queues.jobs.lost"), 0);
        CU_ASSERT_EQUAL(tu_num(j, "queues.jobs.redelivered"), 1);
        CU_ASSERT_EQUAL(tu_num(j, "pools.pc.requests.rejected"), 0);
        CU_ASSERT_EQUAL(tu_num(j, "pools.pc.requests.failed"), 1);
        CU_ASSERT_EQUAL(tu_num(j, "pools.pc.requests.generated"),
                        tu_num(j, "queues.jobs.published") + 1);
        CU_ASSERT_EQUAL(tu_num(j, "queues.jobs.backlog_at_end"),
                        tu_num(j, "queues.jobs.published") + tu_num(j, "queues.jobs.redelivered") -
                            tu_num(j, "queues.jobs.delivered"));
        CU_ASSERT(tu_num(j, "queues.jobs.backlog_at_end") > 200);
        assert_conserved(j);
        cJSON_Delete(j);
    }
    /* cut off by a partition for 10 s, the consumers finish what they hold
     * and get nothing new: nothing is lost */
    snprintf(yaml, sizeof yaml, "%s",
             ASYNC(", capacity: 100000") "chaos:\n"
                                         "  - {fault: partition, pool: pc, at: 30s, "
                                         "duration: 10s}\n");
    j = run_summary(yaml, "--set pools.pc.replicas=2", NULL);
    if (j) {
        CU_ASSERT_EQUAL(tu_num(j, "queues.jobs.lost"), 0);
        CU_ASSERT_EQUAL(tu_num(j, "pools.pc.requests.failed"), 0);
        CU_ASSERT_EQUAL(tu_num(j, "pools.pc.requests.rejected"), 0);
        assert_conserved(j);
        cJSON_Delete(j);
    }
}

static void test_prefetch_capped(void)
{
    /* prefetch 5 against a consumer node that queues 2: the broker hands it
     * no more than it can hold, so nothing is refused or lost */
    cJSON *j = run_summary(ASYNC(", capacity: 100000") , "--set pipelines.async.stages.1.queue.prefetch=5 "
                           "--set pools.pc.queue_capacity=2", NULL);
    if (j) {
        CU_ASSERT_EQUAL(tu_num(j, "queues.jobs.lost"), 0);
        CU_ASSERT_EQUAL(tu_num(j, "pools.pc.requests.rejected"), 0);
        CU_ASSERT_EQUAL(tu_num(j, "queues.jobs.processed"), 199);
        assert_conserved(j);
        cJSON_Delete(j);
    }
}

static void test_broker_down(void)
{
    /* A consumer fast enough (50 ms) that nothing waits; the broker down
     * over [20.05, 30.05) s refuses the publishes at 0.2 k + 0.1 inside it,
     * k = 100..149: 50 producer errors (502), each blamed on the fault. */
    char yaml[8192];
    snprintf(yaml, sizeof yaml, "%s",
             ASYNC(", capacity: 1000") "chaos:\n"
                                       "  - {fault: broker_down, queue: jobs, at: 20.05s, "
                                       "duration: 10s}\n");
    cJSON *j = run_summary(yaml, "--set models.c.service.mean=50ms", NULL);
    if (!j)
        return;
    CU_ASSERT_EQUAL(tu_num(j, "queues.jobs.refused"), 50);
    CU_ASSERT_EQUAL(tu_num(j, "requests.failed"), 50);
    CU_ASSERT_EQUAL(tu_num(j, "pools.pa.requests.failed"), 50);
    CU_ASSERT_EQUAL(tu_num(j, "pools.pc.requests.failed"), 0);
    const cJSON *f = cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(j, "faults"), 0);
    CU_ASSERT_PTR_NOT_NULL(f);
    if (f) {
        CU_ASSERT_STRING_EQUAL(cJSON_GetObjectItem(f, "kind")->valuestring, "broker_down");
        CU_ASSERT_EQUAL(tu_num(f, "requests.failed"), 50);
        CU_ASSERT_DOUBLE_EQUAL(tu_num(f, "error_share"), 1.0, 1e-12);
    }
    CU_ASSERT_EQUAL(tu_num(j, "queues.jobs.published"), 449);
    assert_conserved(j);
    cJSON_Delete(j);
}

static void test_broker_down_after_hit(void)
{
    /* pa -> cache (always hits) -> pb -> queue -> pc: every request skips
     * pb and is published by pa. The broker down over [20.05, 30.05) s
     * refuses the publishes at 0.2 k + 0.01 inside it, k = 101..150: 50
     * errors at pa, each blamed on the fault. */
    const char *yaml = "name: h\n"
                       "duration: 60s\n"
                       "models:\n"
                       "  a: {service: {distribution: deterministic, mean: 10ms}}\n"
                       "pools:\n"
                       "  pa: {model: a, replicas: 1}\n"
                       "  pb: {model: a, replicas: 1}\n"
                       "  pc: {model: a, replicas: 1}\n"
                       "pipelines:\n"
                       "  s:\n"
                       "    stages:\n"
                       "      - pool: pa\n"
                       "      - cache: {name: c, hit_ratio: 1}\n"
                       "      - pool: pb\n"
                       "      - queue: {name: jobs, capacity: 1000}\n"
                       "      - pool: pc\n"
                       "traffic:\n"
                       "  - {name: x, pipeline: s,\n"
                       "     arrivals: {process: deterministic, rate: [{at: 0s, qps: 5}]}}\n"
                       "chaos:\n"
                       "  - {fault: broker_down, queue: jobs, at: 20.05s, duration: 10s}\n";
    cJSON *j = run_summary(yaml, NULL, NULL);
    if (!j)
        return;
    CU_ASSERT_EQUAL(tu_num(j, "pools.pb.requests.generated"), 0);
    CU_ASSERT_EQUAL(tu_num(j, "queues.jobs.refused"), 50);
    CU_ASSERT_EQUAL(tu_num(j, "pools.pa.requests.failed"), 50);
    const cJSON *f = cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(j, "faults"), 0);
    CU_ASSERT_PTR_NOT_NULL(f);
    if (f) {
        CU_ASSERT_EQUAL(tu_num(f, "requests.failed"), 50);
        CU_ASSERT_DOUBLE_EQUAL(tu_num(f, "error_share"), 1.0, 1e-12);
    }
    assert_conserved(j);
    cJSON_Delete(j);
}

static void test_client_retries(void)
{
    /* Half of pb's attempts fail for 50 s while clients resend failures
     * (twice at most): a resent request starts over at pa, so pa's arrivals
     * are the 99 requests plus one per failure at pb that was resent. */
    const char *yaml = TANDEM "pipelines:\n"
                              "  both:\n"
                              "    stages: [{pool: pa}, {pool: pb}]\n"
                              "traffic:\n"
                              "  - {name: x, pipeline: both,\n"
                              "     arrivals: {process: deterministic, rate: [{at: 0s, qps: 1}]}}\n"
                              "chaos:\n"
                              "  - {fault: error_rate, pool: pb, probability: 0.5, at: 10s, "
                              "duration: 50s}\n"
                              "  - {fault: retry_storm, traffic: x, attempts: 2, backoff: 100ms, "
                              "at: 10s, duration: 50s}\n";
    cJSON *j = run_summary(yaml, NULL, NULL);
    if (!j)
        return;
    double resent = tu_num(j, "pools.pb.requests.failed") - tu_num(j, "requests.failed");
    CU_ASSERT(resent > 0);
    CU_ASSERT(tu_num(j, "requests.failed") > 0);
    CU_ASSERT_EQUAL(tu_num(j, "requests.generated"), 99);
    CU_ASSERT_EQUAL(tu_num(j, "pools.pa.requests.generated"), 99 + resent);
    CU_ASSERT_EQUAL(tu_num(j, "pools.pb.requests.generated"), tu_num(j, "pools.pa.requests.completed"));
    CU_ASSERT_EQUAL(tu_num(j, "pools.pb.requests.completed"), tu_num(j, "requests.completed"));
    assert_conserved(j);
    cJSON_Delete(j);
}

static void test_retry_due_at_once(void)
{
    /* The client's 120 ms timeout passes while pb runs (pa's 100 ms, then
     * pb's 50 ms), so every attempt times out at pb's batch end, 30 ms
     * after its deadline: the resend (deadline + 10 ms backoff) is due at
     * once. Each request is sent twice and both attempts end at pb; pb
     * holds nothing at the end (the resend must not start before the
     * attempt has left pb). */
    const char *yaml = TANDEM "pipelines:\n"
                              "  both:\n"
                              "    stages: [{pool: pa}, {pool: pb}]\n"
                              "traffic:\n"
                              "  - {name: x, pipeline: both,\n"
                              "     arrivals: {process: deterministic, rate: [{at: 0s, qps: 1}]}}\n"
                              "chaos:\n"
                              "  - {fault: retry_storm, traffic: x, attempts: 1, backoff: 10ms, "
                              "at: 0s}\n";
    cJSON *j = run_summary(yaml, "--set pools.pa.timeout=120ms", NULL);
    if (!j)
        return;
    CU_ASSERT_EQUAL(tu_num(j, "requests.generated"), 99);
    CU_ASSERT_EQUAL(tu_num(j, "requests.timed_out"), 99);
    CU_ASSERT_EQUAL(tu_num(j, "pools.pa.requests.generated"), 198);
    CU_ASSERT_EQUAL(tu_num(j, "pools.pa.requests.completed"), 198);
    CU_ASSERT_EQUAL(tu_num(j, "pools.pb.requests.generated"), 198);
    CU_ASSERT_EQUAL(tu_num(j, "pools.pb.requests.timed_out"), 198);
    CU_ASSERT_EQUAL(tu_num(j, "pools.pb.requests.in_flight_at_end"), 0);
    assert_conserved(j);
    cJSON_Delete(j);
}

/* A pipeline under load (p -> cache -> q -> queue -> r, Poisson arrivals,
 * batching, short timeouts, small queues) behind two L7 balancers, with one
 * fault at a time, each with and without client retries: every request
 * still ends in exactly one bucket, overall and at every stage. */
static const char *STRESS =
    "name: stress\n"
    "duration: 60s\n"
    "interval: 5s\n"
    "models:\n"
    "  m:\n"
    "    service: {distribution: exponential, base: 20ms, per_item: 5ms}\n"
    "    batch: {max_size: 8, max_wait: 10ms}\n"
    "pools:\n"
    "  p: {model: m, replicas: 2, gpus_per_node: 2, queue_capacity: 40, timeout: 400ms}\n"
    "  q:\n"
    "    model: m\n"
    "    replicas: 3\n"
    "    queue_capacity: 40\n"
    "    timeout: 400ms\n"
    "    lifecycle: {start: 2s, load: 3s}\n"
    "    health_check: {interval: 2s, fall: 2, rise: 2}\n"
    "  r: {model: m, replicas: 1, queue_capacity: 40}\n"
    "pipelines:\n"
    "  s:\n"
    "    stages:\n"
    "      - pool: p\n"
    "      - cache: {name: c, hit_ratio: 0.3, lookup: 1ms}\n"
    "      - pool: q\n"
    "      - queue: {name: b, capacity: 200, processing_timeout: 2s}\n"
    "      - pool: r\n"
    "traffic:\n"
    "  - {name: t, pipeline: s, arrivals: {process: poisson, rate: 250}}\n"
    "load_balancer: {policy: least_conn, l7: [{name: a}, {name: z}]}\n"
    "chaos:\n"
    "  - %s\n"
    "%s";

static void test_conservation_faults(void)
{
    static const char *const faults[] = {
        "{at: 15s, fault: cache_down, cache: c, duration: 20s}",
        "{at: 15s, fault: broker_down, queue: b, duration: 20s}",
        "{at: 15s, fault: lb_failure, target: z, duration: 20s}",
        "{at: 15s, fault: node_crash, target: q/1, recover_after: 10s}",
        "{at: 15s, fault: partition, pool: r, duration: 20s}",
        "{at: 15s, fault: error_rate, pool: q, probability: 0.3, duration: 20s}",
        "{at: 15s, fault: flash_crowd, factor: 3, duration: 20s}",
    };
    const char *storm[] = { "", "  - {at: 10s, fault: retry_storm, attempts: 2, backoff: 200ms}\n" };
    for (size_t f = 0; f < sizeof faults / sizeof faults[0]; f++)
        for (int k = 0; k < 2; k++) {
            char yaml[4096];
            snprintf(yaml, sizeof yaml, STRESS, faults[f], storm[k]);
            int rc;
            char *dir = tu_run_yaml(yaml, NULL, &rc);
            if (rc != 0)
                fprintf(stderr, "\n%s%s: exit %d\n", faults[f], k ? " + retry storm" : "", rc);
            CU_ASSERT_EQUAL(rc, 0); /* 3 would mean conservation broke */
            cJSON *j = tu_out_summary(dir);
            CU_ASSERT_PTR_NOT_NULL(j);
            if (j) {
                assert_conserved(j);
                CU_ASSERT(tu_num(j, "requests.completed") > 0);
            }
            cJSON_Delete(j);
            tu_done(dir);
        }
}

static void test_routes(void)
{
    /* nginx prefix locations: the longest matching prefix wins, whatever
     * the order the rules are written in */
    const char *yaml = TANDEM "routes:\n"
                              "  - {path_prefix: /v1, to: pa}\n"
                              "  - {path_prefix: /v1/score, to: pb}\n"
                              "traffic:\n"
                              "  - {name: x, path: /v1/score/card,\n"
                              "     arrivals: {process: deterministic, rate: [{at: 0s, qps: 1}]}}\n"
                              "  - {name: y, path: /v1/other,\n"
                              "     arrivals: {process: deterministic, rate: [{at: 0s, qps: 2}]}}\n";
    cJSON *j = run_summary(yaml, NULL, NULL);
    if (j) {
        CU_ASSERT_STRING_EQUAL(cJSON_GetObjectItem(cJSON_GetObjectItem(cJSON_GetObjectItem(j,
                               "classes"), "x"), "pool")->valuestring, "pb");
        CU_ASSERT_EQUAL(tu_num(j, "pools.pb.requests.generated"), 99);
        CU_ASSERT_EQUAL(tu_num(j, "pools.pa.requests.generated"), 199);
        cJSON_Delete(j);
    }
}

static void expect_error(const char *yaml, const char *msg);

/* routes read from an nginx server block: each location's proxy_pass
 * upstream maps to a pool (by routes.upstreams, or by its own name). */
static void test_nginx_routes(void)
{
    char *cdir = tu_tmpdir();
    char conf[4096], yaml[8192];
    snprintf(conf, sizeof conf, "%s/front.conf", cdir);
    tu_write(conf, "http {\n"
                   "  server {\n"
                   "    location = /healthz { return 200; }\n"
                   "    location /v1 { proxy_pass http://legacy; }\n"
                   "    location /v1/score { proxy_pass http://scorers:8000/; }\n"
                   "  }\n"
                   "}\n");
    snprintf(yaml, sizeof yaml,
             TANDEM "routes: {nginx: '%s', upstreams: {scorers: pb, legacy: pa}}\n"
                    "traffic:\n"
                    "  - {name: x, path: /v1/score/card,\n"
                    "     arrivals: {process: deterministic, rate: [{at: 0s, qps: 1}]}}\n"
                    "  - {name: y, path: /v1/other,\n"
                    "     arrivals: {process: deterministic, rate: [{at: 0s, qps: 2}]}}\n",
             conf);
    char *dir = NULL;
    cJSON *j = run_summary(yaml, NULL, &dir);
    if (j) {
        CU_ASSERT_EQUAL(tu_num(j, "pools.pb.requests.generated"), 99);
        CU_ASSERT_EQUAL(tu_num(j, "pools.pa.requests.generated"), 199);
        cJSON_Delete(j);
        /* validate says what it read: three locations, one of them exact */
        char log[4096];
        snprintf(log, sizeof log, "%s/validate", dir);
        CU_ASSERT_EQUAL(tu_sh(log, "'%s' validate '%s/s.yaml'", tu_bin(), dir), 0);
        char *text = tu_read(log);
        CU_ASSERT(text && strstr(text, "2 traffic classes, 3 routes)"));
        free(text);
    }
    tu_done(dir);
    /* a path nginx answers itself is not modelled; an upstream with no
     * pipeline or pool of its name must be mapped */
    snprintf(yaml, sizeof yaml,
             TANDEM "routes: {nginx: '%s', upstreams: {scorers: pb, legacy: pa}}\n"
                    "traffic: [{name: x, path: /healthz, arrivals: {rate: 1}}]\n", conf);
    expect_error(yaml, "traffic.x.path: the route of \"/healthz\" answers without proxy_pass");
    snprintf(yaml, sizeof yaml,
             TANDEM "routes: {nginx: '%s', upstreams: {scorers: pb}}\n"
                    "traffic: [{name: x, path: /v1/score, arrivals: {rate: 1}}]\n", conf);
    expect_error(yaml, "front.conf:4:5: location /v1 sends to upstream \"legacy\", which is no "
                       "pipeline or pool: map it in routes.upstreams");
    /* what the reader refuses, at its line and column in the nginx file */
    static const struct {
        const char *conf, *msg;
    } bad[] = {
        { "server { location ~ ^/v[0-9] { proxy_pass http://pa; } }",
          "front.conf:1:10: location ~ ^/v[0-9]: regular-expression locations are not supported" },
        { "server { location /a { location /a/b { proxy_pass http://pa; } } }",
          "front.conf:1:24: nested location blocks are not supported" },
        { "server { location /a { proxy_pass http://pa; }\n location /a { proxy_pass http://pb; } }",
          "front.conf:2:2: duplicate location \"/a\" (line 1)" },
        { "server { location /a { proxy_pass pa; } }",
          "front.conf:1:24: proxy_pass: expected http://UPSTREAM" },
        { "events { }", "front.conf:1:1: no server block with location blocks" },
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        tu_write(conf, bad[i].conf);
        snprintf(yaml, sizeof yaml,
                 TANDEM "routes: {nginx: '%s'}\n"
                        "traffic: [{name: x, pool: pa, arrivals: {rate: 1}}]\n", conf);
        expect_error(yaml, bad[i].msg);
    }
    tu_done(cdir);
}

/* A scenario error: exit 2 and the message at its line and column. */
static void expect_error(const char *yaml, const char *msg)
{
    CU_ASSERT(tu_expect_error(yaml, NULL, msg));
}

#define ONE_CLASS(to)                                                                          \
    "traffic:\n"                                                                               \
    "  - {name: x, " to ", arrivals: {rate: [{at: 0s, qps: 1}]}}\n"

static void test_errors(void)
{
    expect_error(TANDEM "routes:\n"
                        "  - {path_prefix: /v1, to: pa}\n" ONE_CLASS("path: /v2/x"),
                 "s.yaml:12:21: traffic.x.path: no route matches \"/v2/x\"");
    expect_error(TANDEM "pipelines:\n"
                        "  bad:\n"
                        "    stages: [{cache: {name: c, hit_ratio: 0.5}}, {pool: pa}]\n" ONE_CLASS(
                            "pipeline: bad"),
                 "s.yaml:11:14: pipelines.bad.stages.0: the first stage must be a pool");
    expect_error(TANDEM "pipelines:\n"
                        "  bad:\n"
                        "    stages: [{pool: pa}, {queue: {name: q, capacity: 5}}]\n" ONE_CLASS(
                            "pipeline: bad"),
                 "s.yaml:11:26: pipelines.bad.stages.1: a queue must be followed by the pool "
                 "that consumes it");
    expect_error(TANDEM "pipelines:\n"
                        "  bad:\n"
                        "    stages: [{pool: pa}, {pool: pa, cache: {name: c, hit_ratio: 1}}]\n"
                        ONE_CLASS("pipeline: bad"),
                 "pipelines.bad.stages.1: a stage is exactly one of pool, cache, queue");
    expect_error(TANDEM "pipelines:\n"
                        "  p:\n"
                        "    stages: [{pool: pa}, {cache: {name: c, hit_ratio: 1.5}}, {pool: pb}]\n"
                        ONE_CLASS("pipeline: p"),
                 "pipelines.p.stages.1.cache.hit_ratio");
    expect_error(TANDEM "pipelines:\n"
                        "  p:\n"
                        "    stages: []\n" ONE_CLASS("pipeline: p"),
                 "s.yaml:11:13: pipelines.p.stages: at least one stage is required");
    expect_error(TANDEM "pipelines:\n"
                        "  p:\n"
                        "    stages: [{pool: pa}, {cache: {name: c, hit_ratio: 1}}, {pool: pb},\n"
                        "             {queue: {name: c, capacity: 1}}, {pool: pa}]\n"
                        ONE_CLASS("pipeline: p"),
                 "s.yaml:12:29: pipelines.p.stages.3.queue.name: duplicate cache or queue name \"c\"");
    expect_error(TANDEM ONE_CLASS("pool: pa, pipeline: pa"),
                 "traffic.x: needs exactly one of pool, pipeline, path");
    expect_error(TANDEM ONE_CLASS("pipeline: nope"),
                 "traffic.x.pipeline: unknown pipeline or pool \"nope\" (known: pa, pb)");
    expect_error(TANDEM "pipelines:\n"
                        "  p:\n"
                        "    stages: [{pool: pa}, {cache: {name: c, hit_ratio: 1}}, {pool: pb}]\n"
                        ONE_CLASS("pipeline: p") "chaos:\n"
                        "  - {fault: cache_down, cache: d, at: 1s}\n",
                 "chaos.0.cache: unknown cache \"d\" (caches: c)");
}

int main(void)
{
    if (CU_initialize_registry() != CUE_SUCCESS)
        return 1;
    CU_pSuite s = CU_add_suite("pipeline", NULL, NULL);
    CU_add_test(s, "stages in series", test_tandem);
    CU_add_test(s, "cache hits skip a stage", test_cache);
    CU_add_test(s, "cache_down: every lookup misses", test_cache_down);
    CU_add_test(s, "queue backlog and capacity", test_queue_backlog);
    CU_add_test(s, "an HPA on the queue's backlog", test_backlog_autoscaling);
    CU_add_test(s, "a consumer woken from zero", test_consumer_from_zero);
    CU_add_test(s, "prefetch capped at the consumer's queue", test_prefetch_capped);
    CU_add_test(s, "broker_down: producer errors", test_broker_down);
    CU_add_test(s, "broker_down blamed after a cache hit", test_broker_down_after_hit);
    CU_add_test(s, "no delivery to a consumer that crashed or is cut off", test_consumer_gone);
    CU_add_test(s, "client retries start over", test_client_retries);
    CU_add_test(s, "a resend due at once leaves its stage first", test_retry_due_at_once);
    CU_add_test(s, "conservation under faults", test_conservation_faults);
    CU_add_test(s, "routes: longest prefix", test_routes);
    CU_add_test(s, "routes from an nginx server block", test_nginx_routes);
    CU_add_test(s, "scenario errors", test_errors);
    CU_basic_set_mode(CU_BRM_VERBOSE);
    CU_basic_run_tests();
    unsigned fails = CU_get_number_of_tests_failed();
    CU_cleanup_registry();
    return fails ? 1 : 0;
}
