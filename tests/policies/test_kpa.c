/*
 * test_kpa.c - the `kpa` policy on hand-built tick sequences.
 *
 * The expected counts are worked out from knative/serving
 * pkg/autoscaler/scaling/autoscaler.go and aggregation/bucketing.go by hand
 * in the comments: one-second buckets, a 60 s stable window and a 6 s panic
 * window, target 10 concurrent requests per pod at 100% utilization unless
 * said otherwise, a 2 s tick.
 */
#include "autoscale.h"

#include <CUnit/Basic.h>
#include <CUnit/CUnit.h>
#include <stdio.h>
#include <string.h>

#define N_OF(a) ((int)(sizeof(a) / sizeof((a)[0])))
#define MAXP 64

typedef struct {
    as *a;
    double now;
    int ready, current;
    double load;             /* the pool's concurrency over the last tick */
    const char *metric;
} run;

static as *kpa(const as_param *extra, int n_extra)
{
    as_param p[16] = { { "target", "10", 0, 0 }, { "target_utilization", "100%", 0, 0 } };
    char err[512];
    int n = 2;
    as *a;

    for (int i = 0; i < n_extra && n < N_OF(p); i++)
        p[n++] = extra[i];
    {
        as_config cfg = { "kpa-test", NULL, n, p };
        a = as_create("kpa", &cfg, err, sizeof err);
    }
    if (!a)
        fprintf(stderr, "\n  as_create(kpa): %s\n", err);
    return a;
}

static int tick(run *r)
{
    as_pod_view pods[MAXP];
    as_metric m = { r->metric ? r->metric : "concurrency", r->load };
    as_view v;
    int n = r->ready > r->current ? r->ready : r->current;

    memset(&v, 0, sizeof v);
    for (int i = 0; i < n && i < MAXP; i++) {
        memset(&pods[i], 0, sizeof pods[i]);
        pods[i].phase = AS_POD_RUNNING;
        pods[i].ready = i < r->ready;
    }
    v.now_s = r->now;
    v.current_replicas = r->current;
    v.n_pods = n < MAXP ? n : MAXP;
    v.pods = pods;
    v.n_metrics = 1;
    v.metrics = &m;
    r->current = as_recommend(r->a, &v);
    r->now += 2.0;
    return r->current;
}

/* A new autoscaler with more than one ready pod starts in panic, so it does
 * not scale down on an empty history; it leaves panic only once the stable
 * window (60 s) has passed since then: at the first tick after t = 60. */
static void test_initial_panic_and_exit(void)
{
    run r = { 0 };

    r.a = kpa(NULL, 0);
    CU_ASSERT_PTR_NOT_NULL_FATAL(r.a);
    CU_ASSERT_DOUBLE_EQUAL(as_period_s(r.a), 2.0, 1e-12);
    r.ready = r.current = 10;
    r.load = 50; /* 5 pods' worth */
    while (r.now <= 60.0)
        CU_ASSERT_EQUAL(tick(&r), 10);
    CU_ASSERT_PTR_NOT_NULL(strstr(as_reason(r.a), "panic"));
    /* t = 62: out of panic; the stable count is 5 = floor(10 / 2), the most
     * the default max-scale-down-rate 2 allows */
    CU_ASSERT_EQUAL(tick(&r), 5);
    CU_ASSERT_PTR_NOT_NULL(strstr(as_reason(r.a), "stable"));
    as_destroy(r.a);
}

/* Panic starts when the panic-window count reaches 2x the ready pods; in
 * panic the count never goes down; the panic ends only a full stable window
 * after the last tick over the threshold. */
static void test_panic_enter_hold_leave(void)
{
    run r = { 0 };

    r.a = kpa(NULL, 0);
    CU_ASSERT_PTR_NOT_NULL_FATAL(r.a);
    r.ready = 1;
    r.current = 10;
    r.load = 100;
    CU_ASSERT_EQUAL(tick(&r), 10); /* t=0, one ready pod: no initial panic */
    r.ready = 10;
    while (r.now <= 100.0)
        CU_ASSERT_EQUAL(tick(&r), 10);
    /* load doubles from the buckets of t = 101 on */
    r.load = 200;
    /* t=102: panic buckets 97..102 = 4x100 + 2x200 -> 133.3 -> 14 pods,
     * 1.4x the ready pods: no panic; stable 47..102 = 58x100 + 2x200 ->
     * 103.3 -> 11 */
    CU_ASSERT_EQUAL(tick(&r), 11);
    /* t=104: panic 166.7 -> 17, 1.7x: no panic; stable 106.7 -> 11 */
    CU_ASSERT_EQUAL(tick(&r), 11);
    /* t=106: panic window all 200 -> 20 pods = 2.0x: panic, and the panic
     * count (20) wins over the stable one (110 -> 11) */
    CU_ASSERT_EQUAL(tick(&r), 20);
    CU_ASSERT_PTR_NOT_NULL(strstr(as_reason(r.a), "panic"));
    /* still 2x at t = 108 .. 120: panic extended each tick */
    while (r.now <= 120.0)
        CU_ASSERT_EQUAL(tick(&r), 20);
    /* the load falls to 50 (5 pods' worth): no scale-down in panic */
    r.load = 50;
    while (r.now <= 180.0) {
        int got = tick(&r);
        if (got != 20)
            fprintf(stderr, "\n  t=%.0f: %d during panic\n", r.now - 2, got);
        CU_ASSERT_EQUAL(got, 20);
    }
    /* t=182: 60 s after the last tick over the threshold (t=120): panic ends;
     * stable window 123..182 all at 50 -> 5 */
    CU_ASSERT_EQUAL(tick(&r), 5);
    as_destroy(r.a);
}

/* Just under the threshold (1.9x) is not a panic: the count follows the
 * stable window. */
static void test_below_threshold_no_panic(void)
{
    run r = { 0 };

    r.a = kpa(NULL, 0);
    CU_ASSERT_PTR_NOT_NULL_FATAL(r.a);
    r.ready = 1;
    r.current = 10;
    r.load = 100;
    tick(&r);
    r.ready = 10;
    while (r.now <= 100.0)
        tick(&r);
    r.load = 190; /* panic count 19 = 1.9x */
    for (int k = 0; k < 10; k++)
        tick(&r);
    CU_ASSERT_PTR_NOT_NULL(strstr(as_reason(r.a), "stable"));
    /* t=120: stable buckets 61..120 = 40x100 + 20x190 -> 130 -> 13 */
    CU_ASSERT_EQUAL(r.current, 13);
    as_destroy(r.a);
}

/* Scale to zero after the grace period, and back from zero on buffered
 * requests. */
static void test_scale_to_zero(void)
{
    run r = { 0 };

    r.a = kpa(NULL, 0);
    CU_ASSERT_PTR_NOT_NULL_FATAL(r.a);
    r.ready = r.current = 1;
    r.load = 0;
    /* desired 0 from t=0: one pod is kept for the 30 s grace period */
    while (r.now < 30.0)
        CU_ASSERT_EQUAL(tick(&r), 1);
    CU_ASSERT_EQUAL(tick(&r), 0); /* t=30 */
    r.ready = 0;
    CU_ASSERT_EQUAL(tick(&r), 0);
    /* requests buffered at the activator: 5 in flight from t=33. ready 0
     * counts as 1; the stable buckets 0..34 hold two 5s -> 10/35 = 0.29
     * concurrent requests -> ceil(0.029) = 1 pod */
    r.load = 5;
    CU_ASSERT_EQUAL(tick(&r), 1);
    as_destroy(r.a);

    /* scale_to_zero: false keeps one pod */
    {
        as_param off = { "scale_to_zero", "false", 0, 0 };
        run q = { 0 };
        q.a = kpa(&off, 1);
        CU_ASSERT_PTR_NOT_NULL_FATAL(q.a);
        q.ready = q.current = 1;
        for (int k = 0; k < 40; k++)
            CU_ASSERT_EQUAL(tick(&q), 1);
        as_destroy(q.a);
    }
}

/* max-scale-up-rate and max-scale-down-rate bound each decision. */
static void test_rate_limits(void)
{
    as_param up = { "max_scale_up_rate", "2", 0, 0 };
    run r = { 0 };

    r.a = kpa(&up, 1);
    CU_ASSERT_PTR_NOT_NULL_FATAL(r.a);
    r.ready = r.current = 1;
    r.load = 1000;              /* 100 pods' worth */
    CU_ASSERT_EQUAL(tick(&r), 2); /* ceil(2 x 1) */
    r.ready = 2;
    CU_ASSERT_EQUAL(tick(&r), 4); /* ceil(2 x 2) */
    as_destroy(r.a);

    /* min_scale / max_scale bounds (scaler.go applyBounds) */
    {
        as_param b[] = { { "min_scale", "3", 0, 0 }, { "max_scale", "6", 0, 0 } };
        run q = { 0 };
        q.a = kpa(b, 2);
        CU_ASSERT_PTR_NOT_NULL_FATAL(q.a);
        q.ready = q.current = 1;
        q.load = 1000;
        CU_ASSERT_EQUAL(tick(&q), 6);
        q.load = 0;
        q.ready = 6;
        for (int k = 0; k < 60; k++)
            tick(&q);
        CU_ASSERT_EQUAL(q.current, 3);
        as_destroy(q.a);
    }
}

/* The rps metric, Knative defaults (target 200 rps at 70%) and no data. */
static void test_rps_defaults_and_no_data(void)
{
    as_param p[] = { { "metric", "rps", 0, 0 } };
    as_config cfg = { "kpa-test", NULL, 1, p };
    char err[256];
    run r = { 0 };

    r.a = as_create("kpa", &cfg, err, sizeof err);
    CU_ASSERT_PTR_NOT_NULL_FATAL(r.a);
    r.ready = r.current = 1;
    r.metric = "requests_per_second";
    r.load = 1400; /* 1400 / (200 x 0.7) = 10 pods: panic, ratchet to 10 */
    CU_ASSERT_EQUAL(tick(&r), 10);
    r.metric = "concurrency"; /* the wrong metric: no new data, the buckets keep 1400 */
    CU_ASSERT_EQUAL(tick(&r), 10);
    as_destroy(r.a);

    /* no data at all: keep the current count */
    r.a = kpa(NULL, 0);
    CU_ASSERT_PTR_NOT_NULL_FATAL(r.a);
    r.metric = "something_else";
    r.ready = r.current = 3;
    CU_ASSERT_EQUAL(tick(&r), 3);
    CU_ASSERT_STRING_EQUAL(as_reason(r.a), "no data to scale on yet");
    as_destroy(r.a);
}

static void test_config_errors(void)
{
    as_param p1[] = { { "target_utilization", "150%", 4, 23 } };
    as_param p2[] = { { "metric", "qps", 2, 11 } };
    as_param p3[] = { { "panic_threshold_percentage", "100", 6, 31 } };
    as_config c1 = { "k.yaml", NULL, 1, p1 }, c2 = { "k.yaml", NULL, 1, p2 }, c3 = { "k.yaml", NULL, 1, p3 };
    char err[256];

    CU_ASSERT_PTR_NULL(as_create("kpa", &c1, err, sizeof err));
    CU_ASSERT_STRING_EQUAL(err, "k.yaml:4:23: target_utilization must be in [1%, 100%]");
    CU_ASSERT_PTR_NULL(as_create("kpa", &c2, err, sizeof err));
    CU_ASSERT_STRING_EQUAL(err, "k.yaml:2:11: metric: expected concurrency or rps, got 'qps'");
    CU_ASSERT_PTR_NULL(as_create("kpa", &c3, err, sizeof err));
    CU_ASSERT_STRING_EQUAL(err, "k.yaml:6:31: panic_threshold_percentage must be in [110, 1000]");
}

int main(void)
{
    CU_pSuite s;
    unsigned fails;

    if (CU_initialize_registry() != CUE_SUCCESS)
        return 1;
    s = CU_add_suite("kpa", NULL, NULL);
    CU_add_test(s, "initial panic, exit after the stable window", test_initial_panic_and_exit);
    CU_add_test(s, "panic at 2x, no scale-down in panic, exit", test_panic_enter_hold_leave);
    CU_add_test(s, "1.9x is not a panic", test_below_threshold_no_panic);
    CU_add_test(s, "scale to zero after the grace period", test_scale_to_zero);
    CU_add_test(s, "rate limits and bounds", test_rate_limits);
    CU_add_test(s, "rps metric, defaults, no data", test_rps_defaults_and_no_data);
    CU_add_test(s, "config errors", test_config_errors);
    CU_basic_set_mode(CU_BRM_VERBOSE);
    CU_basic_run_tests();
    fails = CU_get_number_of_failures();
    CU_cleanup_registry();
    return fails ? 1 : 0;
}
