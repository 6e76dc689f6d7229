/*
 * test_hpa.c - the `hpa` policy against Kubernetes' own numbers.
 *
 * Two sources of oracles, both called through as_create/as_recommend on
 * hand-built views (no SimGrid):
 * - cases of kubernetes pkg/controller/podautoscaler/replica_calculator_test.go
 *   ported one to one (same pods, readiness, start times, levels in
 *   milli-units, targets, expected replicas), run with that file's
 *   controller settings (tolerance 0.1, CPU initialization period 2 min,
 *   initial readiness delay 10 s) and a `behavior` that lets the calculator's
 *   answer through unchanged (no stabilization, scale-up limit far away);
 * - the worked examples of the HPA documentation (kubernetes.io,
 *   "Horizontal Pod Autoscaling"), run as sequences of syncs with the
 *   engine applying each result, the way the controller would see them.
 */
#include "autoscale.h"
#include "autoscale/hpa_manifest.h"

#include <CUnit/Basic.h>
#include <CUnit/CUnit.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define N_OF(a) ((int)(sizeof(a) / sizeof((a)[0])))
#define MAXP 16

static char tmpdir[64];

/* An hpa instance for manifest text, with the replica_calculator_test.go
 * controller settings. */
static as *hpa_from(const char *yaml)
{
    static int serial;
    char path[128], err[512];
    FILE *f;
    as *a;

    snprintf(path, sizeof path, "%s/hpa-%d.yaml", tmpdir, serial++);
    f = fopen(path, "w");
    if (!f)
        return NULL;
    fputs(yaml, f);
    fclose(f);
    {
        as_param p[] = {
            { "manifest", path, 0, 0 },
            { "cpu_initialization_period", "2m", 0, 0 },
            { "initial_readiness_delay", "10s", 0, 0 },
            { "tolerance", "0.1", 0, 0 },
        };
        as_config cfg = { "test", NULL, N_OF(p), p };
        a = as_create("hpa", &cfg, err, sizeof err);
    }
    if (!a)
        fprintf(stderr, "\n  as_create(hpa): %s\n", err);
    return a;
}

/* A behavior that passes the calculator's answer through: no scale-down
 * stabilization, default scale-up policies (max(2x, +4) per 15 s), 100%
 * scale-down per 15 s. */
#define PASS_THROUGH_BEHAVIOR \
    "  behavior:\n" \
    "    scaleDown: {stabilizationWindowSeconds: 0}\n"

static const char *cpu_manifest(int target_pct, char *buf, size_t len)
{
    snprintf(buf, len,
             "apiVersion: autoscaling/v2\nkind: HorizontalPodAutoscaler\nmetadata: {name: t}\n"
             "spec:\n  minReplicas: 1\n  maxReplicas: 100\n"
             "  metrics:\n  - type: Resource\n    resource:\n      name: cpu\n"
             "      target: {type: Utilization, averageUtilization: %d}\n" PASS_THROUGH_BEHAVIOR,
             target_pct);
    return buf;
}

/* ---- a port of replica_calculator_test.go's fixture ---- */

enum { COOL, HOT, OLD };
typedef struct {
    int current;
    int n_pods;
    int ready[MAXP];         /* podReadiness: 1 true (default), 0 false */
    int phase[MAXP];         /* as_pod_phase, default RUNNING */
    int start[MAXP];         /* OLD (zero time, default), COOL (-3 min), HOT (now) */
    double request[MAXP];    /* cores, default 1.0 */
    int n_levels;
    long levels[MAXP];       /* milli-units, for pods 0..n_levels-1; others missing */
} rc_case;

#define NOW 1000.0

static void build_pods(const rc_case *c, as_pod_view *pods, as_metric *custom, const char *metric)
{
    for (int i = 0; i < c->n_pods; i++) {
        as_pod_view *p = &pods[i];
        memset(p, 0, sizeof *p);
        p->phase = c->phase[i];
        p->scheduled = p->phase != AS_POD_PENDING;
        p->ready = c->ready[i];
        /* the fixture's Ready condition has a zero LastTransitionTime and its
         * metrics a zero Timestamp with a one-minute window */
        p->start_s = c->start[i] == OLD ? 0.0 : c->start[i] == HOT ? NOW : NOW - 180.0;
        p->ready_change_s = 0.0;
        p->metrics_time_s = 0.0;
        p->metrics_window_s = 60.0;
        p->cpu_request = c->request[i] > 0 ? c->request[i] : 1.0;
        if (i < c->n_levels) {
            if (metric) {
                custom[i].name = metric;
                custom[i].value = (double)c->levels[i] / 1000.0;
                p->custom = &custom[i];
                p->n_custom = 1;
            } else {
                p->has_metrics = 1;
                p->cpu_util = (double)c->levels[i] / 1000.0 / p->cpu_request;
            }
        }
    }
}

static int run_case(as *a, const rc_case *c, const char *metric)
{
    as_pod_view pods[MAXP];
    as_metric custom[MAXP];
    as_view v;

    build_pods(c, pods, custom, metric);
    memset(&v, 0, sizeof v);
    v.now_s = NOW;
    v.current_replicas = c->current;
    v.n_pods = c->n_pods;
    v.pods = pods;
    return as_recommend(a, &v);
}

static rc_case running(int current, int n_pods)
{
    rc_case c;
    memset(&c, 0, sizeof c);
    c.current = current;
    c.n_pods = n_pods;
    for (int i = 0; i < MAXP; i++) {
        c.ready[i] = 1;
        c.phase[i] = AS_POD_RUNNING;
        c.start[i] = OLD;
    }
    return c;
}

static void levels(rc_case *c, int n, const long *l)
{
    c->n_levels = n;
    for (int i = 0; i < n; i++)
        c->levels[i] = l[i];
}

static void expect_cpu(const char *name, const rc_case *c, int target, int want)
{
    char buf[1024];
    as *a = hpa_from(cpu_manifest(target, buf, sizeof buf));
    int got;

    CU_ASSERT_PTR_NOT_NULL_FATAL(a);
    got = run_case(a, c, NULL);
    if (got != want)
        fprintf(stderr, "\n  %s: got %d, want %d (%s)\n", name, got, want, as_reason(a));
    CU_ASSERT_EQUAL(got, want);
    as_destroy(a);
}

static void test_rc_cpu(void)
{
    rc_case c;

    /* TestReplicaCalcScaleUp */
    c = running(3, 3);
    levels(&c, 3, (long[]){ 300, 500, 700 });
    expect_cpu("ScaleUp", &c, 30, 5);

    /* TestReplicaCalcScaleUpUnreadyLessScale */
    c = running(3, 3);
    c.ready[0] = 0;
    levels(&c, 3, (long[]){ 300, 500, 700 });
    expect_cpu("ScaleUpUnreadyLessScale", &c, 30, 4);

    /* TestReplicaCalcScaleUpHotCpuLessScale */
    c = running(3, 3);
    c.start[0] = HOT;
    c.start[1] = c.start[2] = COOL;
    levels(&c, 3, (long[]){ 300, 500, 700 });
    expect_cpu("ScaleUpHotCpuLessScale", &c, 30, 4);

    /* TestReplicaCalcScaleUpUnreadyNoScale */
    c = running(3, 3);
    c.ready[1] = c.ready[2] = 0;
    levels(&c, 3, (long[]){ 400, 500, 700 });
    expect_cpu("ScaleUpUnreadyNoScale", &c, 30, 3);

    /* TestReplicaCalcScaleHotCpuNoScale */
    c = running(3, 3);
    c.ready[1] = c.ready[2] = 0;
    c.start[0] = COOL;
    c.start[1] = c.start[2] = HOT;
    levels(&c, 3, (long[]){ 400, 500, 700 });
    expect_cpu("ScaleHotCpuNoScale", &c, 30, 3);

    /* TestReplicaCalcScaleUpIgnoresFailedPods */
    c = running(2, 4);
    c.ready[2] = c.ready[3] = 0;
    c.phase[2] = c.phase[3] = AS_POD_FAILED;
    levels(&c, 2, (long[]){ 500, 700 });
    expect_cpu("ScaleUpIgnoresFailedPods", &c, 30, 4);

    /* TestReplicaCalcScaleUpIgnoresDeletionPods */
    c = running(2, 4);
    c.ready[2] = c.ready[3] = 0;
    c.phase[2] = c.phase[3] = AS_POD_TERMINATING;
    levels(&c, 2, (long[]){ 500, 700 });
    expect_cpu("ScaleUpIgnoresDeletionPods", &c, 30, 4);

    /* TestReplicaCalcScaleDown */
    c = running(5, 5);
    levels(&c, 5, (long[]){ 100, 300, 500, 250, 250 });
    expect_cpu("ScaleDown", &c, 50, 3);

    /* TestReplicaCalcScaleDownIncludeUnreadyPods */
    c = running(5, 5);
    c.ready[3] = c.ready[4] = 0;
    levels(&c, 5, (long[]){ 100, 300, 500, 250, 250 });
    expect_cpu("ScaleDownIncludeUnreadyPods", &c, 50, 2);

    /* TestReplicaCalcScaleDownExcludeUnscheduledPods */
    c = running(5, 5);
    for (int i = 1; i < 5; i++) {
        c.ready[i] = 0;
        c.phase[i] = AS_POD_PENDING;
    }
    levels(&c, 1, (long[]){ 100 });
    expect_cpu("ScaleDownExcludeUnscheduledPods", &c, 50, 1);

    /* TestReplicaCalcScaleDownIgnoreHotCpuPods */
    c = running(5, 5);
    c.start[0] = c.start[1] = c.start[2] = COOL;
    c.start[3] = c.start[4] = HOT;
    levels(&c, 5, (long[]){ 100, 300, 500, 250, 250 });
    expect_cpu("ScaleDownIgnoreHotCpuPods", &c, 50, 2);

    /* TestReplicaCalcScaleDownIgnoresFailedPods */
    c = running(5, 7);
    c.ready[5] = c.ready[6] = 0;
    c.phase[5] = c.phase[6] = AS_POD_FAILED;
    levels(&c, 5, (long[]){ 100, 300, 500, 250, 250 });
    expect_cpu("ScaleDownIgnoresFailedPods", &c, 50, 3);

    /* TestReplicaCalcTolerance: requests 0.9, 1.0, 1.1 */
    c = running(3, 3);
    c.request[0] = 0.9;
    c.request[1] = 1.0;
    c.request[2] = 1.1;
    levels(&c, 3, (long[]){ 1010, 1030, 1020 });
    expect_cpu("Tolerance", &c, 100, 3);
}

static void test_rc_missing_metrics(void)
{
    rc_case c;

    /* TestReplicaCalcMissingMetrics: two pods have no sample; on the way
     * down they count as 100% of their request: (400+95+1000+1000)*100/4000
     * = 62% -> ceil(0.62 * 4) = 3 */
    c = running(4, 4);
    levels(&c, 2, (long[]){ 400, 95 });
    expect_cpu("MissingMetrics", &c, 100, 3);

    /* TestReplicaCalcMissingMetricsNoChangeEq / Gt / Lt */
    c = running(2, 2);
    levels(&c, 1, (long[]){ 1000 });
    expect_cpu("MissingMetricsNoChangeEq", &c, 100, 2);
    levels(&c, 1, (long[]){ 1900 });
    expect_cpu("MissingMetricsNoChangeGt", &c, 100, 2);
    levels(&c, 1, (long[]){ 600 });
    expect_cpu("MissingMetricsNoChangeLt", &c, 100, 2);

    /* TestReplicaCalcMissingMetricsUnreadyChange */
    c = running(3, 3);
    c.ready[0] = 0;
    levels(&c, 2, (long[]){ 100, 450 });
    expect_cpu("MissingMetricsUnreadyChange", &c, 50, 3);

    /* TestReplicaCalcMissingMetricsHotCpuNoChange */
    c = running(3, 3);
    c.start[0] = HOT;
    c.start[1] = c.start[2] = COOL;
    levels(&c, 2, (long[]){ 100, 450 });
    expect_cpu("MissingMetricsHotCpuNoChange", &c, 50, 3);

    /* TestReplicaCalcMissingMetricsUnreadyScaleUp */
    c = running(3, 3);
    c.ready[0] = 0;
    levels(&c, 2, (long[]){ 100, 2000 });
    expect_cpu("MissingMetricsUnreadyScaleUp", &c, 50, 4);

    /* TestReplicaCalcMissingMetricsHotCpuScaleUp */
    c = running(3, 3);
    c.ready[0] = 0;
    c.start[0] = HOT;
    c.start[1] = c.start[2] = COOL;
    levels(&c, 2, (long[]){ 100, 2000 });
    expect_cpu("MissingMetricsHotCpuScaleUp", &c, 50, 4);

    /* TestReplicaCalcMissingMetricsUnreadyScaleDown */
    c = running(4, 4);
    c.ready[0] = 0;
    levels(&c, 3, (long[]){ 100, 100, 100 });
    expect_cpu("MissingMetricsUnreadyScaleDown", &c, 50, 3);

    /* Not in the upstream tests, from the code: with a target above 100%, a
     * missing pod counts as the target on a scale-down (fallbackUtilization
     * = max(100, target)). 5 pods of 1 core, 3 at 50%, 2 missing, target
     * 200%: ratio 0.25; recompute (1500 + 2 x 2000) x 100 / 5000 = 110% ->
     * 0.55 -> ceil(2.75) = 3. Counting them at 100% as the docs say would
     * give (1500 + 2000) x 100 / 5000 = 70% -> 0.35 -> 2. */
    c = running(5, 5);
    levels(&c, 3, (long[]){ 500, 500, 500 });
    expect_cpu("MissingMetricsTargetAbove100", &c, 200, 3);
}

static void expect_plain(const char *name, const char *yaml_metrics, const rc_case *c, const char *metric,
                         const as_metric *pool, int n_pool, int want)
{
    char buf[2048];
    as_pod_view pods[MAXP];
    as_metric custom[MAXP];
    as_view v;
    as *a;
    int got;

    snprintf(buf, sizeof buf,
             "apiVersion: autoscaling/v2\nkind: HorizontalPodAutoscaler\nmetadata: {name: t}\n"
             "spec:\n  minReplicas: 1\n  maxReplicas: 100\n  metrics:\n%s" PASS_THROUGH_BEHAVIOR,
             yaml_metrics);
    a = hpa_from(buf);
    CU_ASSERT_PTR_NOT_NULL_FATAL(a);
    build_pods(c, pods, custom, metric);
    memset(&v, 0, sizeof v);
    v.now_s = NOW;
    v.current_replicas = c->current;
    v.n_pods = c->n_pods;
    v.pods = pods;
    v.n_metrics = n_pool;
    v.metrics = pool;
    got = as_recommend(a, &v);
    if (got != want)
        fprintf(stderr, "\n  %s: got %d, want %d (%s)\n", name, got, want, as_reason(a));
    CU_ASSERT_EQUAL(got, want);
    as_destroy(a);
}

#define PODS_QPS(target) \
    "  - type: Pods\n    pods:\n      metric: {name: qps}\n" \
    "      target: {type: AverageValue, averageValue: \"" target "\"}\n"
#define OBJECT_QPS(type, field, target) \
    "  - type: Object\n    object:\n      metric: {name: qps}\n" \
    "      describedObject: {apiVersion: apps/v1, kind: Deployment, name: some-deployment}\n" \
    "      target: {type: " type ", " field ": \"" target "\"}\n"
#define EXTERNAL_QPS(type, field, target) \
    "  - type: External\n    external:\n      metric: {name: qps, selector: {matchLabels: {label: value}}}\n" \
    "      target: {type: " type ", " field ": \"" target "\"}\n"

static void test_rc_custom_metrics(void)
{
    rc_case c;
    as_metric qps;

    /* TestReplicaCalcScaleUpCM: levels 20, 10, 30 qps, target 15 -> 4 */
    c = running(3, 3);
    levels(&c, 3, (long[]){ 20000, 10000, 30000 });
    expect_plain("ScaleUpCM", PODS_QPS("15"), &c, "qps", NULL, 0, 4);

    /* TestReplicaCalcScaleUpCMUnreadyHotCpuNoLessScale: readiness only
     * matters for CPU, so the unready hot pod still counts: 30/15 x 3 = 6 */
    c = running(3, 3);
    c.ready[2] = 0;
    c.start[0] = c.start[1] = COOL;
    c.start[2] = HOT;
    levels(&c, 3, (long[]){ 50000, 10000, 30000 });
    expect_plain("ScaleUpCMUnreadyHotCpuNoLessScale", PODS_QPS("15"), &c, "qps", NULL, 0, 6);

    /* TestReplicaCalcScaleUpCMUnreadyHotCpuScaleWouldScaleDown */
    c = running(3, 3);
    c.ready[0] = c.ready[2] = 0;
    c.start[0] = c.start[2] = HOT;
    c.start[1] = COOL;
    levels(&c, 3, (long[]){ 50000, 15000, 30000 });
    expect_plain("ScaleUpCMUnreadyHotCpuScaleWouldScaleDown", PODS_QPS("15"), &c, "qps", NULL, 0, 7);

    /* TestReplicaCalcScaleDownCM: 5 pods at 12 qps, target 20 -> 3 */
    c = running(5, 5);
    levels(&c, 5, (long[]){ 12000, 12000, 12000, 12000, 12000 });
    expect_plain("ScaleDownCM", PODS_QPS("20"), &c, "qps", NULL, 0, 3);

    /* TestReplicaCalcToleranceCM: 20.666 vs 20 is within 10% */
    c = running(3, 3);
    levels(&c, 3, (long[]){ 20000, 21000, 21000 });
    expect_plain("ToleranceCM", PODS_QPS("20"), &c, "qps", NULL, 0, 3);

    /* TestReplicaCalcScaleUpCMObject: 20 vs 15 on 3 ready pods -> 4 */
    c = running(3, 3);
    qps = (as_metric){ "qps", 20.0 };
    expect_plain("ScaleUpCMObject", OBJECT_QPS("Value", "value", "15"), &c, NULL, &qps, 1, 4);

    /* TestReplicaCalcScaleUpCMObjectIgnoresUnreadyPods: 50/10 x 1 ready = 5
     * ("if we did not ignore unready pods, we'd expect 15 replicas") */
    c = running(3, 3);
    c.ready[0] = c.ready[2] = 0;
    qps = (as_metric){ "qps", 50.0 };
    expect_plain("ScaleUpCMObjectIgnoresUnreadyPods", OBJECT_QPS("Value", "value", "10"), &c, NULL, &qps,
                 1, 5);

    /* TestReplicaCalcScaleUpCMPerPodObject: 20 / 5 per pod -> 4 */
    c = running(3, 3);
    qps = (as_metric){ "qps", 20.0 };
    expect_plain("ScaleUpCMPerPodObject", OBJECT_QPS("AverageValue", "averageValue", "5"), &c, NULL, &qps,
                 1, 4);

    /* TestReplicaCalcScaleDownPerPodCMObject: 6 / 2 per pod -> 3 */
    c = running(5, 5);
    qps = (as_metric){ "qps", 6.0 };
    expect_plain("ScaleDownPerPodCMObject", OBJECT_QPS("AverageValue", "averageValue", "2"), &c, NULL,
                 &qps, 1, 3);

    /* TestReplicaCalcTolerancePerPodCMObject: 20.166 / (5 x 4) within 10% */
    c = running(4, 4);
    qps = (as_metric){ "qps", 20.166 };
    expect_plain("TolerancePerPodCMObject", OBJECT_QPS("AverageValue", "averageValue", "5"), &c, NULL,
                 &qps, 1, 4);

    /* TestReplicaCalcScaleUpCMExternalIgnoresUnreadyPods: 8.6/4.4 x 1 ready
     * = 1.95 -> 2 ("would expect 6 if we didn't ignore unready pods") */
    c = running(3, 3);
    c.ready[0] = c.ready[2] = 0;
    qps = (as_metric){ "qps", 8.6 };
    expect_plain("ScaleUpCMExternalIgnoresUnreadyPods", EXTERNAL_QPS("Value", "value", "4400m"), &c, NULL,
                 &qps, 1, 2);

    /* TestReplicaCalcScaleDownCMExternal: 8.6/14.334 x 5 -> 3 */
    c = running(5, 5);
    qps = (as_metric){ "qps", 8.6 };
    expect_plain("ScaleDownCMExternal", EXTERNAL_QPS("Value", "value", "14334m"), &c, NULL, &qps, 1, 3);

    /* TestReplicaCalcScaleUpPerPodCMExternal: 8.6 / 2.15 per pod -> 4 */
    c = running(3, 3);
    expect_plain("ScaleUpPerPodCMExternal", EXTERNAL_QPS("AverageValue", "averageValue", "2150m"), &c,
                 NULL, &qps, 1, 4);

    /* TestReplicaCalcTolerancePerPodCMExternal: 8.6 / (2.9 x 3) within 10% */
    c = running(3, 3);
    expect_plain("TolerancePerPodCMExternal", EXTERNAL_QPS("AverageValue", "averageValue", "2900m"), &c,
                 NULL, &qps, 1, 3);

    /* TestReplicaCalcToleranceCMExternal: 8.6 vs 8.888 within 10% */
    expect_plain("ToleranceCMExternal", EXTERNAL_QPS("Value", "value", "8888m"), &c, NULL, &qps, 1, 3);
}

static void test_max_over_metrics_and_invalid(void)
{
    rc_case c = running(3, 3);
    as_metric qps = { "qps", 70.0 };

    /* cpu alone: 300/500/700 at 30% -> 5; the object metric 70 vs 10 on 3
     * ready pods -> 21 (capped by the scale-up policies at max(6, 3+4) = 7):
     * the larger proposal wins. */
    levels(&c, 3, (long[]){ 300, 500, 700 });
    expect_plain("MaxOverMetrics",
                 "  - type: Resource\n    resource: {name: cpu, target: {type: Utilization, "
                 "averageUtilization: 30}}\n" OBJECT_QPS("Value", "value", "10"),
                 &c, NULL, &qps, 1, 7);
    /* The object metric missing from the view is invalid; the cpu metric
     * still scales up (computeReplicasForMetrics proceeds when the valid
     * metrics scale up). */
    expect_plain("InvalidMetricScaleUp",
                 "  - type: Resource\n    resource: {name: cpu, target: {type: Utilization, "
                 "averageUtilization: 30}}\n" OBJECT_QPS("Value", "value", "10"),
                 &c, NULL, NULL, 0, 5);
    /* ... but an invalid metric blocks a scale-down: 100/100/100 at 30%
     * would give 1, the answer is "keep 3". */
    levels(&c, 3, (long[]){ 100, 100, 100 });
    expect_plain("InvalidMetricBlocksScaleDown",
                 "  - type: Resource\n    resource: {name: cpu, target: {type: Utilization, "
                 "averageUtilization: 30}}\n" OBJECT_QPS("Value", "value", "10"),
                 &c, NULL, NULL, 0, 3);
    /* every metric invalid: keep */
    c = running(3, 3);
    expect_cpu("NoMetricsAtAll", &c, 30, 3);
}

/* GPU utilization and CPU AverageValue targets. For GPU (as for every
 * metric but CPU) groupPods does not look at readiness: a running pod that
 * is not ready yet but has a sample counts, where a CPU target would set it
 * aside. */
static void test_resource_variants(void)
{
    char buf[1024];
    as_pod_view pods[3];
    as_view v;
    as *a;

    memset(pods, 0, sizeof pods);
    for (int i = 0; i < 3; i++) {
        pods[i].phase = AS_POD_RUNNING;
        pods[i].scheduled = 1;
        pods[i].ready = i > 0;          /* pod 0 started 20 s ago and is loading its model */
        pods[i].start_s = i > 0 ? NOW - 600.0 : NOW - 20.0;
        pods[i].ready_change_s = i > 0 ? NOW - 550.0 : NOW - 20.0;
        pods[i].has_metrics = 1;
        pods[i].metrics_time_s = NOW;
        pods[i].metrics_window_s = 30.0;
        pods[i].gpu_request = 2.0;      /* two GPUs per pod */
        pods[i].gpu_util = 0.9;
        pods[i].cpu_request = 1.0;
        pods[i].cpu_util = 0.9;
    }
    memset(&v, 0, sizeof v);
    v.now_s = NOW;
    v.current_replicas = 3;
    v.n_pods = 3;
    v.pods = pods;

    snprintf(buf, sizeof buf,
             "apiVersion: autoscaling/v2\nkind: HorizontalPodAutoscaler\nmetadata: {name: t}\n"
             "spec:\n  maxReplicas: 100\n  metrics:\n  - type: Resource\n    resource:\n"
             "      name: nvidia.com/gpu\n      target: {type: Utilization, averageUtilization: 60}\n"
             PASS_THROUGH_BEHAVIOR);
    a = hpa_from(buf);
    CU_ASSERT_PTR_NOT_NULL_FATAL(a);
    /* 90% of the request on all three pods, the loading one included:
     * ratio 1.5 -> ceil(4.5) = 5 */
    CU_ASSERT_EQUAL(as_recommend(a, &v), 5);
    as_destroy(a);

    /* the same on CPU: the unready pod inside the initialization period is
     * set aside, then counted at 0% on the scale-up: 2 x 900 / 3000 = 60%
     * -> ratio 1.0: no change */
    a = hpa_from(cpu_manifest(60, buf, sizeof buf));
    CU_ASSERT_PTR_NOT_NULL_FATAL(a);
    CU_ASSERT_EQUAL(as_recommend(a, &v), 3);
    as_destroy(a);

    /* CPU AverageValue 600m: the raw use, 900m per ready pod; the unready
     * one counts 0 on the way up: 1800 / 3 = 600m -> ratio 1.0: no change.
     * Pod 0 turning ready does not count yet while its sample's 30 s window
     * began before it was ready (within the CPU initialization period); once
     * it has a whole window since: 900 / 600 = 1.5 -> 5 */
    snprintf(buf, sizeof buf,
             "apiVersion: autoscaling/v2\nkind: HorizontalPodAutoscaler\nmetadata: {name: t}\n"
             "spec:\n  maxReplicas: 100\n  metrics:\n  - type: Resource\n    resource:\n"
             "      name: cpu\n      target: {type: AverageValue, averageValue: 600m}\n"
             PASS_THROUGH_BEHAVIOR);
    a = hpa_from(buf);
    CU_ASSERT_PTR_NOT_NULL_FATAL(a);
    CU_ASSERT_EQUAL(as_recommend(a, &v), 3);
    pods[0].ready = 1;
    pods[0].ready_change_s = NOW - 20.0;
    CU_ASSERT_EQUAL(as_recommend(a, &v), 3);
    pods[0].ready_change_s = NOW - 40.0;
    CU_ASSERT_EQUAL(as_recommend(a, &v), 5);
    as_destroy(a);
}

/* ---- the documentation's worked examples, as sync sequences ---- */

typedef struct {
    as *a;
    int current;
    double now;
    int n_pods;
    double value;            /* per-pod custom metric "packets" or cpu level */
    int cpu;
} sim;

/* One sync: every current replica is a ready pod reporting `value`; the
 * result is applied at once. */
static int sync_once(sim *s)
{
    as_pod_view pods[128];
    as_metric custom[128];
    as_view v;

    memset(&v, 0, sizeof v);
    for (int i = 0; i < s->current && i < 128; i++) {
        as_pod_view *p = &pods[i];
        memset(p, 0, sizeof *p);
        p->phase = AS_POD_RUNNING;
        p->scheduled = p->ready = 1;
        p->start_s = -3600.0;
        p->ready_change_s = -3500.0;
        p->has_metrics = 1;
        p->metrics_time_s = s->now;
        p->metrics_window_s = 30.0;
        p->cpu_request = 1.0;
        p->cpu_util = s->value;
        custom[i] = (as_metric){ "packets-per-second", s->value };
        p->custom = &custom[i];
        p->n_custom = 1;
    }
    v.now_s = s->now;
    v.current_replicas = s->current;
    v.n_pods = s->current < 128 ? s->current : 128;
    v.pods = pods;
    s->current = as_recommend(s->a, &v);
    s->now += 15.0;
    return s->current;
}

#define PODS_PACKETS(target) \
    "apiVersion: autoscaling/v2\nkind: HorizontalPodAutoscaler\nmetadata: {name: doc}\n" \
    "spec:\n  minReplicas: 1\n  maxReplicas: 100\n  metrics:\n" \
    "  - type: Pods\n    pods:\n      metric: {name: packets-per-second}\n" \
    "      target: {type: AverageValue, averageValue: " target "}\n"

/* "if the current metric value is 200m, and the desired value is 100m, the
 * number of replicas will be doubled, since 200.0 / 100.0 == 2.0. If the
 * current value is instead 50m, you'll halve the number of replicas [...]
 * The control plane skips any scaling action if the ratio is sufficiently
 * close to 1.0 (within a globally-configurable tolerance, 0.1 by default)." */
static void test_doc_ratio_examples(void)
{
    sim s = { 0 };

    s.a = hpa_from(PODS_PACKETS("100m"));
    CU_ASSERT_PTR_NOT_NULL_FATAL(s.a);
    s.current = 4;
    s.value = 0.200;
    CU_ASSERT_EQUAL(sync_once(&s), 8); /* doubled */
    s.value = 0.105;                   /* 5% off target: within tolerance */
    CU_ASSERT_EQUAL(sync_once(&s), 8);
    s.value = 0.111;                   /* 11%: out of it, ceil(1.11 x 8) = 9 */
    CU_ASSERT_EQUAL(sync_once(&s), 9);
    as_destroy(s.a);

    /* halving: with no `behavior`, the highest recommendation of the last
     * 300 s is used, and the first sync records the current count, so the
     * halving happens on the first sync more than 300 s later. */
    memset(&s, 0, sizeof s);
    s.a = hpa_from(PODS_PACKETS("100m"));
    CU_ASSERT_PTR_NOT_NULL_FATAL(s.a);
    s.current = 8;
    s.value = 0.050;
    for (int k = 0; k <= 20; k++) { /* t = 0 .. 300 s */
        int got = sync_once(&s);
        if (got != 8)
            fprintf(stderr, "\n  halving: sync %d gave %d before the window\n", k, got);
        CU_ASSERT_EQUAL(got, 8);
    }
    CU_ASSERT_EQUAL(sync_once(&s), 4); /* t = 315 s */
    CU_ASSERT_STRING_EQUAL(as_reason(s.a), "All metrics below target");
    as_destroy(s.a);
}

/* "stabilizationWindowSeconds [...] the highest recommendation for the last
 * 300sec is used": recommendations 10, 7, 5 keep 10 until the 10 ages out,
 * then the next highest, 7, until it ages out. */
static void test_doc_stabilization_window(void)
{
    sim s = { 0 };
    int got;

    s.a = hpa_from(PODS_PACKETS("1")
                   "  behavior:\n    scaleDown:\n      stabilizationWindowSeconds: 300\n");
    CU_ASSERT_PTR_NOT_NULL_FATAL(s.a);
    s.current = 10;
    s.value = 1.0;                     /* t=0: recommendation 10 */
    CU_ASSERT_EQUAL(sync_once(&s), 10);
    s.value = 0.7;                     /* t=15: recommendation 7 */
    CU_ASSERT_EQUAL(sync_once(&s), 10);
    /* from t=30 on, recommendation 5: 10 is kept while the 10 of t=0 is in
     * the window, i.e. while t - 300 < 0 (a recommendation counts when it is
     * strictly after now - window) */
    s.value = 0.5;
    while (s.now < 300.0) {
        got = sync_once(&s);
        CU_ASSERT_EQUAL(got, 10);
    }
    CU_ASSERT_EQUAL(sync_once(&s), 7);  /* t=300: the 7 of t=15 is the highest */
    CU_ASSERT_STRING_EQUAL(as_reason(s.a),
                           "ScaleDownStabilized: recent recommendations were higher than current one, "
                           "applying the highest recent recommendation");
    /* t=315: the 7 is out; the highest left are the 5s recommended at 10 pods
     * (7 pods at 0.5 now recommend 4) */
    CU_ASSERT_EQUAL(sync_once(&s), 5);
    as_destroy(s.a);
}

/* The documentation's scale-down policies example: Pods 4 per 60 s and
 * Percent 10 per 60 s, Max selected. "if there are 80 replicas and the
 * target has to be scaled down to 10 replicas then during the first step 8
 * replicas will be reduced. In the next iteration when the number of
 * replicas is 72, 10% of the pods is 7.2 but the number is rounded up to 8
 * [...] When the number of replicas falls below 40 the first policy (Pods)
 * is applied and 4 replicas will be reduced at a time." The controller
 * computes it as int32(start x 0.9): 80 -> 72 -> 64 -> 57 -> ... */
static void test_doc_percent_policy(void)
{
    static const int want[] = { 72, 64, 57, 51, 45, 40, 36, 32, 28, 24, 20, 16, 12, 10 };
    sim s = { 0 };

    s.a = hpa_from(PODS_PACKETS("1")
                   "  behavior:\n    scaleDown:\n      stabilizationWindowSeconds: 0\n"
                   "      policies:\n      - {type: Pods, value: 4, periodSeconds: 60}\n"
                   "      - {type: Percent, value: 10, periodSeconds: 60}\n");
    CU_ASSERT_PTR_NOT_NULL_FATAL(s.a);
    s.current = 80;
    for (int step = 0; step < N_OF(want); step++) {
        /* load worth 10 replicas at any count */
        s.value = 10.0 / s.current;
        CU_ASSERT_EQUAL(sync_once(&s), want[step]);
        /* within the 60 s period no more is removed */
        for (int k = 0; k < 3; k++) {
            s.value = 10.0 / s.current;
            CU_ASSERT_EQUAL(sync_once(&s), want[step]);
        }
    }
    as_destroy(s.a);
}

/* Without `behavior`: at most max(2 x current, 4) per sync, up to max. */
static void test_scale_up_limit_without_behavior(void)
{
    sim s = { 0 };

    s.a = hpa_from(PODS_PACKETS("1"));
    CU_ASSERT_PTR_NOT_NULL_FATAL(s.a);
    s.current = 1;
    s.value = 48.0; /* load worth 48 replicas */
    CU_ASSERT_EQUAL(sync_once(&s), 4);
    CU_ASSERT_STRING_EQUAL(as_reason(s.a), "ScaleUpLimit: the desired replica count is increasing "
                                           "faster than the maximum scale rate");
    s.value = 48.0 / 4;
    CU_ASSERT_EQUAL(sync_once(&s), 8);
    s.value = 48.0 / 8;
    CU_ASSERT_EQUAL(sync_once(&s), 16);
    s.value = 48.0 / 16;
    CU_ASSERT_EQUAL(sync_once(&s), 32);
    s.value = 48.0 / 32;
    CU_ASSERT_EQUAL(sync_once(&s), 48);
    as_destroy(s.a);
}

/* `behavior` given for scale-down only: scale-up takes the defaults, Pods 4
 * and Percent 100 per 15 s, the larger (Max). */
static void test_behavior_defaults_and_select(void)
{
    sim s = { 0 };

    s.a = hpa_from(PODS_PACKETS("1") "  behavior:\n    scaleDown: {stabilizationWindowSeconds: 0}\n");
    CU_ASSERT_PTR_NOT_NULL_FATAL(s.a);
    s.current = 2;
    s.value = 20.0; /* wants 40 */
    CU_ASSERT_EQUAL(sync_once(&s), 6);  /* max(2+4, 2x2) */
    s.value = 40.0 / 6;
    CU_ASSERT_EQUAL(sync_once(&s), 12); /* max(6+4, 2x6) */
    as_destroy(s.a);

    /* selectPolicy Min: the smaller change of Pods +4 and Percent +200%:
     * at 10 pods min(14, 30) = 14 */
    memset(&s, 0, sizeof s);
    s.a = hpa_from(PODS_PACKETS("1")
                   "  behavior:\n    scaleUp:\n      selectPolicy: Min\n"
                   "      policies:\n      - {type: Pods, value: 4, periodSeconds: 15}\n"
                   "      - {type: Percent, value: 200, periodSeconds: 15}\n");
    CU_ASSERT_PTR_NOT_NULL_FATAL(s.a);
    s.current = 10;
    s.value = 10.0; /* wants 100 */
    CU_ASSERT_EQUAL(sync_once(&s), 14);
    as_destroy(s.a);

    /* selectPolicy Disabled for scale-down: never goes down */
    memset(&s, 0, sizeof s);
    s.a = hpa_from(PODS_PACKETS("1") "  behavior:\n    scaleDown:\n      selectPolicy: Disabled\n"
                                     "      stabilizationWindowSeconds: 0\n");
    CU_ASSERT_PTR_NOT_NULL_FATAL(s.a);
    s.current = 10;
    s.value = 0.1;
    for (int k = 0; k < 10; k++)
        CU_ASSERT_EQUAL(sync_once(&s), 10);
    as_destroy(s.a);

    /* scale-up stabilization window: the lowest recommendation of the last
     * 60 s bounds the scale-up */
    memset(&s, 0, sizeof s);
    s.a = hpa_from(PODS_PACKETS("1") "  behavior:\n    scaleUp:\n      stabilizationWindowSeconds: 60\n");
    CU_ASSERT_PTR_NOT_NULL_FATAL(s.a);
    s.current = 4;
    s.value = 1.0;                   /* t=0: recommends 4 */
    CU_ASSERT_EQUAL(sync_once(&s), 4);
    s.value = 2.0;                   /* recommends 8 from t=15 on */
    while (s.now < 60.0)
        CU_ASSERT_EQUAL(sync_once(&s), 4);
    CU_ASSERT_EQUAL(sync_once(&s), 8); /* t=60: the 4s of t=0 are out */
    as_destroy(s.a);
}

/* min/max paths of reconcileAutoscaler, and "scaling disabled" at 0. */
static void test_bounds_paths(void)
{
    sim s = { 0 };
    char buf[1024];

    s.a = hpa_from(cpu_manifest(50, buf, sizeof buf));
    CU_ASSERT_PTR_NOT_NULL_FATAL(s.a);
    s.current = 150; /* above maxReplicas 100: straight to max */
    s.value = 0.5;
    CU_ASSERT_EQUAL(sync_once(&s), 100);
    s.current = 0;   /* target scaled to 0 by hand: autoscaling disabled */
    CU_ASSERT_EQUAL(sync_once(&s), 0);
    as_destroy(s.a);

    /* the wrapper's hard bounds from the view apply on top */
    {
        as_view v;
        as *a = hpa_from(cpu_manifest(50, buf, sizeof buf));
        CU_ASSERT_PTR_NOT_NULL_FATAL(a);
        memset(&v, 0, sizeof v);
        v.current_replicas = 0;
        v.min_replicas = 2;
        v.max_replicas = 3;
        CU_ASSERT_EQUAL(as_recommend(a, &v), 2);
        as_destroy(a);
    }
}

static int starts_with(const char *s, const char *prefix)
{
    int ok = strncmp(s, prefix, strlen(prefix)) == 0;
    if (!ok)
        fprintf(stderr, "\n  got:  %s\n  want: %s...\n", s, prefix);
    return ok;
}

static void test_config_errors(void)
{
    char err[512];
    as_param bad_key[] = { { "manifest", "x.yaml", 3, 5 }, { "sync_perod", "15s", 4, 5 } };
    as_param no_file[] = { { "manifest", "/nonexistent/hpa.yaml", 7, 15 } };
    as_param bad_dur[] = { { "manifest", "x.yaml", 3, 5 }, { "sync_period", "fast", 9, 18 } };
    as_config c1 = { "s.yaml", NULL, N_OF(bad_key), bad_key };
    as_config c2 = { "s.yaml", NULL, N_OF(no_file), no_file };
    as_config c3 = { "s.yaml", NULL, N_OF(bad_dur), bad_dur };
    as_config c4 = { "s.yaml", NULL, 0, NULL };

    CU_ASSERT_PTR_NULL(as_create("hpa", &c1, err, sizeof err));
    CU_ASSERT_TRUE(starts_with(err, "s.yaml:4:5: unknown key 'sync_perod' for this autoscaler (known: manifest, "));
    CU_ASSERT_PTR_NULL(as_create("hpa", &c2, err, sizeof err));
    CU_ASSERT_TRUE(starts_with(err, "s.yaml:7:15: manifest: /nonexistent/hpa.yaml: cannot open HPA manifest: "));
    CU_ASSERT_PTR_NULL(as_create("hpa", &c3, err, sizeof err));
    CU_ASSERT_STRING_EQUAL(err, "s.yaml:9:18: sync_period: expected a duration such as 15s, 5m or 1h, got 'fast'");
    CU_ASSERT_PTR_NULL(as_create("hpa", &c4, err, sizeof err));
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "needs `manifest:`"));
}

static void test_shipped_manifests_drive_policy(void)
{
    char err[512], path[4096];
    const char *src = getenv("FLEETSIM_SRC");
    as_param p[] = { { "manifest", "k8s/bank-hpa.yaml", 0, 0 } };
    as_config cfg = { "bank.yaml", path, 1, p };
    sim s = { 0 };

    snprintf(path, sizeof path, "%s/scenarios", src ? src : "..");
    s.a = as_create("hpa", &cfg, err, sizeof err);
    if (!s.a)
        fprintf(stderr, "\n  %s\n", err);
    CU_ASSERT_PTR_NOT_NULL_FATAL(s.a);
    CU_ASSERT_DOUBLE_EQUAL(as_period_s(s.a), 15.0, 1e-12);
    /* 3 pods at 170% CPU of an 85% target: doubles to 6 */
    s.current = 3;
    s.value = 1.70;
    CU_ASSERT_EQUAL(sync_once(&s), 6);
    /* 6 pods at 100%: ceil(100/85 x 6) = 8 */
    s.value = 1.00;
    CU_ASSERT_EQUAL(sync_once(&s), 8);
    /* far above: capped at maxReplicas 15 */
    s.value = 5.0;
    CU_ASSERT_EQUAL(sync_once(&s), 15);
    as_destroy(s.a);
}

/* One sync of the shipped scenarios/k8s/llm-hpa.yaml (Pods
 * vllm:num_requests_waiting 4 and vllm:num_requests_running 16 per pod,
 * External sum(vllm:kv_cache_usage_perc) 700m per pod) on ready pods with
 * these gauges; the External value is their KV sum, as the engine serves it. */
static int llm_sync(as *a, int n, const double *waiting, const double *running, const double *kv)
{
    as_pod_view pods[8];
    as_metric custom[8][3], ext;
    as_view v;
    double sum = 0;

    memset(&v, 0, sizeof v);
    for (int i = 0; i < n; i++) {
        as_pod_view *p = &pods[i];
        memset(p, 0, sizeof *p);
        p->phase = AS_POD_RUNNING;
        p->scheduled = p->ready = 1;
        p->start_s = 0.0;
        p->ready_change_s = 10.0;
        p->has_metrics = 1;
        p->metrics_time_s = NOW;
        p->metrics_window_s = 15.0;
        custom[i][0] = (as_metric){ "vllm:num_requests_waiting", waiting[i] };
        custom[i][1] = (as_metric){ "vllm:num_requests_running", running[i] };
        custom[i][2] = (as_metric){ "vllm:kv_cache_usage_perc", kv[i] };
        p->custom = custom[i];
        p->n_custom = 3;
        sum += kv[i];
    }
    ext = (as_metric){ "vllm:kv_cache_usage_perc", sum };
    v.now_s = NOW;
    v.current_replicas = n;
    v.n_pods = n;
    v.pods = pods;
    v.n_metrics = 1;
    v.metrics = &ext;
    return as_recommend(a, &v);
}

static void test_shipped_llm_manifest(void)
{
    char err[512], path[4096];
    const char *src = getenv("FLEETSIM_SRC");
    as_param p[] = { { "manifest", "k8s/llm-hpa.yaml", 0, 0 } };
    as_config cfg = { "llm-hpa.yaml", path, 1, p };
    as *a;

    snprintf(path, sizeof path, "%s/scenarios", src ? src : "..");
    a = as_create("hpa", &cfg, err, sizeof err);
    if (!a)
        fprintf(stderr, "\n  %s\n", err);
    CU_ASSERT_PTR_NOT_NULL_FATAL(a);
    /* waiting 10 and 6: mean 8000m / 4000m = 2 -> ceil(2 x 2) = 4;
     * running 16 and 16: ratio 1, within tolerance -> 2;
     * KV 0.5 + 0.4 = 900m: 900 / (700 x 2) = 0.64, outside -> ceil(900/700) = 2;
     * the largest, 4 (scale-up limit: max(100%, 4 pods) per 15 s = 6) */
    CU_ASSERT_EQUAL(llm_sync(a, 2, (double[]){ 10, 6 }, (double[]){ 16, 16 }, (double[]){ 0.5, 0.4 }), 4);
    as_destroy(a);

    a = as_create("hpa", &cfg, err, sizeof err);
    CU_ASSERT_PTR_NOT_NULL_FATAL(a);
    /* nothing waits; running 10 and 12: mean 11000m / 16000m = 0.6875 ->
     * ceil(0.6875 x 2) = 2; KV 0.95 + 0.9 = 1850m: 1850 / 1400 = 1.32 ->
     * ceil(1850 / 700) = 3, the largest */
    CU_ASSERT_EQUAL(llm_sync(a, 2, (double[]){ 0, 0 }, (double[]){ 10, 12 }, (double[]){ 0.95, 0.9 }), 3);
    as_destroy(a);

    a = as_create("hpa", &cfg, err, sizeof err);
    CU_ASSERT_PTR_NOT_NULL_FATAL(a);
    /* three pods: waiting 5, 4, 4 -> mean 4333m (integer milli mean), ratio
     * 1.083 within 10% -> 3; running 17, 17, 18 -> 17333m / 16000m = 1.083,
     * within -> 3; KV 0.7 x 3 = 2100m / 2100m = 1 -> 3: no change */
    CU_ASSERT_EQUAL(llm_sync(a, 3, (double[]){ 5, 4, 4 }, (double[]){ 17, 17, 18 },
                             (double[]){ 0.7, 0.7, 0.7 }), 3);
    /* waiting 5, 5, 4 -> 4666m / 4000m = 1.1667, outside -> ceil(3.5) = 4 */
    CU_ASSERT_EQUAL(llm_sync(a, 3, (double[]){ 5, 5, 4 }, (double[]){ 17, 17, 18 },
                             (double[]){ 0.7, 0.7, 0.7 }), 4);
    as_destroy(a);
}

int main(void)
{
    CU_pSuite s;
    unsigned fails;

    snprintf(tmpdir, sizeof tmpdir, "/tmp/fleetsim-hpa-XXXXXX");
    if (!mkdtemp(tmpdir))
        return 1;
    if (CU_initialize_registry() != CUE_SUCCESS)
        return 1;
    s = CU_add_suite("hpa", NULL, NULL);
    CU_add_test(s, "replica_calculator_test: cpu", test_rc_cpu);
    CU_add_test(s, "replica_calculator_test: missing metrics", test_rc_missing_metrics);
    CU_add_test(s, "replica_calculator_test: pods, object, external", test_rc_custom_metrics);
    CU_add_test(s, "max over metrics, invalid metrics", test_max_over_metrics_and_invalid);
    CU_add_test(s, "gpu utilization, cpu average value, readiness", test_resource_variants);
    CU_add_test(s, "doc: 200m vs 100m doubles, tolerance, halving", test_doc_ratio_examples);
    CU_add_test(s, "doc: stabilization window", test_doc_stabilization_window);
    CU_add_test(s, "doc: Percent policy 80 -> 72 -> 64", test_doc_percent_policy);
    CU_add_test(s, "no behavior: max(2x, 4) scale-up limit", test_scale_up_limit_without_behavior);
    CU_add_test(s, "behavior defaults, Min, Disabled, scale-up window", test_behavior_defaults_and_select);
    CU_add_test(s, "min/max paths", test_bounds_paths);
    CU_add_test(s, "config errors", test_config_errors);
    CU_add_test(s, "shipped bank manifest", test_shipped_manifests_drive_policy);
    CU_add_test(s, "shipped vLLM-metrics manifest", test_shipped_llm_manifest);
    CU_basic_set_mode(CU_BRM_VERBOSE);
    CU_basic_run_tests();
    fails = CU_get_number_of_failures();
    CU_cleanup_registry();
    {
        char cmd[128];
        snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
        if (system(cmd) != 0)
            fprintf(stderr, "could not remove %s\n", tmpdir);
    }
    return fails ? 1 : 0;
}
