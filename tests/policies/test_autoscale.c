/*
 * test_autoscale.c - the autoscaling registry and wrappers, the HPA manifest
 * reader (good manifests and every class of error, with its line:col), the
 * Kubernetes quantity parser, and the threshold, scheduled and predictive
 * policies on hand-built views.
 */
#include "autoscale.h"
#include "autoscale/hpa_manifest.h"

#include <CUnit/Basic.h>
#include <CUnit/CUnit.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define N_OF(a) ((int)(sizeof(a) / sizeof((a)[0])))

static int starts_with(const char *s, const char *prefix)
{
    int ok = strncmp(s, prefix, strlen(prefix)) == 0;
    if (!ok)
        fprintf(stderr, "\n  got:  %s\n  want: %s...\n", s, prefix);
    return ok;
}

/* ---- registry and wrappers ---- */

static void test_registry(void)
{
    const char *names[] = { "hpa", "kpa", "threshold", "scheduled", "predictive", "sla_planner" };
    char buf[256], err[256];
    int count = 0;

    for (int i = 0; i < N_OF(names); i++) {
        const struct as_ops *ops = as_find(names[i]);
        CU_ASSERT_PTR_NOT_NULL_FATAL(ops);
        CU_ASSERT_STRING_EQUAL(ops->name, names[i]);
    }
    for (const struct as_ops *const *p = as_registry; *p; p++, count++) {
        CU_ASSERT_PTR_NOT_NULL((*p)->summary);
        CU_ASSERT_PTR_NOT_NULL((*p)->keys);
        CU_ASSERT_PTR_NOT_NULL((*p)->init);
        CU_ASSERT_PTR_NOT_NULL((*p)->recommend);
        CU_ASSERT_PTR_NOT_NULL((*p)->period_s);
    }
    CU_ASSERT_EQUAL(count, N_OF(names));
    CU_ASSERT_STRING_EQUAL(as_names(buf, sizeof buf),
                           "hpa, kpa, threshold, scheduled, predictive, sla_planner");
    CU_ASSERT_PTR_NULL(as_find("vpa"));
    CU_ASSERT_PTR_NULL(as_find(NULL));
    CU_ASSERT_PTR_NULL(as_create("vpa", NULL, err, sizeof err));
    CU_ASSERT_STRING_EQUAL(err, "unknown autoscaler policy 'vpa' (known: hpa, kpa, threshold, scheduled, "
                                "predictive, sla_planner)");
}

/* A policy that answers whatever `answer` says. */
static int answer;
static void *fixed_init(const as_config *cfg, char *err, size_t errlen)
{
    static int dummy;
    (void)cfg;
    (void)err;
    (void)errlen;
    return &dummy;
}
static int fixed_recommend(void *state, const as_view *v)
{
    (void)state;
    (void)v;
    return answer;
}
static double fixed_period(const void *state)
{
    (void)state;
    return 7.0;
}
static void no_free(void *state)
{
    (void)state;
}

static void test_wrapper_clamps_and_keep(void)
{
    static const struct as_ops fixed = { .name = "fixed", .summary = "test", .init = fixed_init,
                                         .recommend = fixed_recommend, .period_s = fixed_period,
                                         .destroy = no_free };
    static const struct as_ops broken = { .name = "broken", .recommend = fixed_recommend };
    char err[128];
    as *a = as_create_ops(&fixed, NULL, err, sizeof err);
    as_view v;

    CU_ASSERT_PTR_NOT_NULL_FATAL(a);
    CU_ASSERT_STRING_EQUAL(as_name(a), "fixed");
    CU_ASSERT_DOUBLE_EQUAL(as_period_s(a), 7.0, 0);
    CU_ASSERT_STRING_EQUAL(as_reason(a), "");
    memset(&v, 0, sizeof v);
    v.current_replicas = 5;
    v.min_replicas = 2;
    v.max_replicas = 8;
    answer = AS_KEEP;
    CU_ASSERT_EQUAL(as_recommend(a, &v), 5);
    answer = 1;
    CU_ASSERT_EQUAL(as_recommend(a, &v), 2);
    answer = 20;
    CU_ASSERT_EQUAL(as_recommend(a, &v), 8);
    v.max_replicas = 0; /* no upper bound */
    CU_ASSERT_EQUAL(as_recommend(a, &v), 20);
    as_destroy(a);
    CU_ASSERT_PTR_NULL(as_create_ops(&broken, NULL, err, sizeof err));
    CU_ASSERT_STRING_EQUAL(err, "autoscaler policy lacks a name, init, recommend or period");
}

/* ---- quantities ---- */

static void test_quantities(void)
{
    static const struct {
        const char *text;
        long long milli;
    } ok[] = {
        { "100m", 100 }, { "1", 1000 }, { "1.5", 1500 }, { "0.1", 100 }, { "1k", 1000000 },
        { "2e3", 2000000 }, { "2E-3", 2 }, { "500Mi", 500LL * 1048576 * 1000 }, { "1Ki", 1024000 },
        { "0.0005", 1 }, /* rounded up, as Quantity.MilliValue() */
        { "1n", 1 }, { "1500u", 2 }, { "+3", 3000 }, { "4400m", 4400 }, { ".5", 500 },
        { "1M", 1000000000LL }, { "12G", 12000000000000LL },
    };
    static const char *const bad[] = { "", "-1", "1x", "m", "1.2.3", "1 k", "1e", "1Kii", "ten",
                                       "99999999999999999999", "1E18" };
    long long m;

    for (int i = 0; i < N_OF(ok); i++) {
        int r = as_parse_quantity_milli(ok[i].text, &m);
        if (r != 0 || m != ok[i].milli)
            fprintf(stderr, "\n  %s: r=%d got %lld want %lld\n", ok[i].text, r, m, ok[i].milli);
        CU_ASSERT_EQUAL(r, 0);
        CU_ASSERT_EQUAL(m, ok[i].milli);
    }
    for (int i = 0; i < N_OF(bad); i++) {
        int r = as_parse_quantity_milli(bad[i], &m);
        if (r == 0)
            fprintf(stderr, "\n  '%s' accepted as %lld\n", bad[i], m);
        CU_ASSERT_EQUAL(r, -1);
    }
}

/* ---- HPA manifests ---- */

static int parse(const char *text, as_hpa_spec *spec, char *err, size_t len)
{
    return as_hpa_manifest_parse(text, strlen(text), "m.yaml", spec, err, len);
}

static void test_manifest_full(void)
{
    static const char text[] =
        "apiVersion: autoscaling/v2\n"
        "kind: HorizontalPodAutoscaler\n"
        "metadata:\n"
        "  name: llm\n"
        "  labels: {app: llm}\n"
        "spec:\n"
        "  scaleTargetRef: {apiVersion: apps/v1, kind: Deployment, name: llm}\n"
        "  minReplicas: 2\n"
        "  maxReplicas: 40\n"
        "  metrics:\n"
        "  - type: Resource\n"
        "    resource:\n"
        "      name: nvidia.com/gpu\n"
        "      target: {type: Utilization, averageUtilization: 60}\n"
        "  - type: Resource\n"
        "    resource: {name: cpu, target: {type: AverageValue, averageValue: 500m}}\n"
        "  - type: Pods\n"
        "    pods:\n"
        "      metric: {name: queue_depth}\n"
        "      target: {type: AverageValue, averageValue: \"4\"}\n"
        "  - type: Object\n"
        "    object:\n"
        "      metric: {name: requests-per-second}\n"
        "      describedObject: {apiVersion: networking.k8s.io/v1, kind: Ingress, name: main}\n"
        "      target: {type: Value, value: 2k}\n"
        "  - type: External\n"
        "    external:\n"
        "      metric: {name: queue_messages_ready, selector: {matchLabels: {queue: jobs}}}\n"
        "      target: {type: AverageValue, averageValue: 30}\n"
        "  behavior:\n"
        "    scaleUp:\n"
        "      stabilizationWindowSeconds: 30\n"
        "      selectPolicy: Min\n"
        "      policies:\n"
        "      - {type: Percent, value: 50, periodSeconds: 60}\n"
        "      - {type: Pods, value: 5, periodSeconds: 30}\n"
        "    scaleDown:\n"
        "      selectPolicy: Disabled\n"
        "status: {currentReplicas: 2, desiredReplicas: 2}\n";
    as_hpa_spec s;
    char err[512];

    CU_ASSERT_EQUAL_FATAL(parse(text, &s, err, sizeof err), 0);
    CU_ASSERT_STRING_EQUAL(s.name, "llm");
    CU_ASSERT_STRING_EQUAL(s.api_version, "autoscaling/v2");
    CU_ASSERT_EQUAL(s.min_replicas, 2);
    CU_ASSERT_EQUAL(s.max_replicas, 40);
    CU_ASSERT_EQUAL_FATAL(s.n_metrics, 5);
    CU_ASSERT_EQUAL(s.metrics[0].type, AS_HPA_RESOURCE);
    CU_ASSERT_EQUAL(s.metrics[0].resource, AS_HPA_GPU);
    CU_ASSERT_EQUAL(s.metrics[0].target, AS_HPA_UTILIZATION);
    CU_ASSERT_EQUAL(s.metrics[0].utilization_pct, 60);
    CU_ASSERT_EQUAL(s.metrics[0].line, 11);
    CU_ASSERT_EQUAL(s.metrics[0].col, 5);
    CU_ASSERT_EQUAL(s.metrics[1].resource, AS_HPA_CPU);
    CU_ASSERT_EQUAL(s.metrics[1].target, AS_HPA_AVERAGE_VALUE);
    CU_ASSERT_EQUAL(s.metrics[1].target_milli, 500);
    CU_ASSERT_EQUAL(s.metrics[2].type, AS_HPA_PODS);
    CU_ASSERT_STRING_EQUAL(s.metrics[2].name, "queue_depth");
    CU_ASSERT_EQUAL(s.metrics[2].target_milli, 4000);
    CU_ASSERT_EQUAL(s.metrics[3].type, AS_HPA_OBJECT);
    CU_ASSERT_STRING_EQUAL(s.metrics[3].name, "requests-per-second");
    CU_ASSERT_EQUAL(s.metrics[3].target, AS_HPA_VALUE);
    CU_ASSERT_EQUAL(s.metrics[3].target_milli, 2000000);
    CU_ASSERT_EQUAL(s.metrics[4].type, AS_HPA_EXTERNAL);
    CU_ASSERT_EQUAL(s.metrics[4].target, AS_HPA_AVERAGE_VALUE);
    CU_ASSERT_EQUAL(s.metrics[4].target_milli, 30000);
    CU_ASSERT_TRUE(s.has_behavior);
    CU_ASSERT_EQUAL(s.scale_up.window_s, 30);
    CU_ASSERT_EQUAL(s.scale_up.select, AS_HPA_SELECT_MIN);
    CU_ASSERT_EQUAL_FATAL(s.scale_up.n_policies, 2);
    CU_ASSERT_EQUAL(s.scale_up.policies[0].type, AS_HPA_POLICY_PERCENT);
    CU_ASSERT_EQUAL(s.scale_up.policies[0].value, 50);
    CU_ASSERT_EQUAL(s.scale_up.policies[0].period_s, 60);
    CU_ASSERT_EQUAL(s.scale_up.policies[1].type, AS_HPA_POLICY_PODS);
    /* scaleDown given with selectPolicy only: the rest defaulted */
    CU_ASSERT_EQUAL(s.scale_down.select, AS_HPA_SELECT_DISABLED);
    CU_ASSERT_EQUAL(s.scale_down.window_s, -1);
    CU_ASSERT_EQUAL_FATAL(s.scale_down.n_policies, 1);
    CU_ASSERT_EQUAL(s.scale_down.policies[0].type, AS_HPA_POLICY_PERCENT);
    CU_ASSERT_EQUAL(s.scale_down.policies[0].value, 100);
    CU_ASSERT_EQUAL(s.scale_down.policies[0].period_s, 15);
    as_hpa_spec_free(&s);
}

static void test_manifest_defaults_and_versions(void)
{
    as_hpa_spec s;
    char err[512], path[4096];
    const char *src = getenv("FLEETSIM_SRC");

    /* no metrics, no minReplicas, no behavior: CPU 80%, min 1 */
    CU_ASSERT_EQUAL_FATAL(parse("apiVersion: autoscaling/v2beta2\nkind: HorizontalPodAutoscaler\n"
                                "metadata: {name: x}\nspec:\n  maxReplicas: 5\n",
                                &s, err, sizeof err), 0);
    CU_ASSERT_STRING_EQUAL(s.api_version, "autoscaling/v2beta2");
    CU_ASSERT_EQUAL(s.min_replicas, 1);
    CU_ASSERT_EQUAL(s.n_metrics, 1);
    CU_ASSERT_EQUAL(s.metrics[0].resource, AS_HPA_CPU);
    CU_ASSERT_EQUAL(s.metrics[0].utilization_pct, 80);
    CU_ASSERT_FALSE(s.has_behavior);
    /* defaults of the scale-up rules are there for when behavior is given */
    CU_ASSERT_EQUAL(s.scale_up.n_policies, 2);
    as_hpa_spec_free(&s);

    /* the Deployment beside it in the same file is skipped */
    CU_ASSERT_EQUAL(parse("apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: d}\nspec: {replicas: 3}\n"
                          "---\napiVersion: autoscaling/v2\nkind: HorizontalPodAutoscaler\n"
                          "spec: {minReplicas: 2, maxReplicas: 4}\n",
                          &s, err, sizeof err), 0);
    CU_ASSERT_EQUAL(s.max_replicas, 4);
    as_hpa_spec_free(&s);

    /* the shipped manifests */
    snprintf(path, sizeof path, "%s/scenarios/k8s/deepseek-hpa.yaml", src ? src : "..");
    CU_ASSERT_EQUAL_FATAL(as_hpa_manifest_load(path, &s, err, sizeof err), 0);
    CU_ASSERT_EQUAL(s.min_replicas, 2);
    CU_ASSERT_EQUAL(s.max_replicas, 10);
    CU_ASSERT_EQUAL(s.metrics[0].utilization_pct, 70);
    as_hpa_spec_free(&s);
    snprintf(path, sizeof path, "%s/scenarios/k8s/bank-hpa.yaml", src ? src : "..");
    CU_ASSERT_EQUAL_FATAL(as_hpa_manifest_load(path, &s, err, sizeof err), 0);
    CU_ASSERT_EQUAL(s.min_replicas, 3);
    CU_ASSERT_EQUAL(s.max_replicas, 15);
    CU_ASSERT_EQUAL(s.metrics[0].resource, AS_HPA_CPU);
    CU_ASSERT_EQUAL(s.metrics[0].utilization_pct, 85);
    as_hpa_spec_free(&s);
}

#define HEAD "apiVersion: autoscaling/v2\nkind: HorizontalPodAutoscaler\nmetadata: {name: x}\n"

static void test_manifest_errors(void)
{
    static const struct {
        const char *text;
        const char *want;   /* prefix of the message */
    } cases[] = {
        { "apiVersion: autoscaling/v1\nkind: HorizontalPodAutoscaler\nspec:\n  maxReplicas: 3\n"
          "  targetCPUUtilizationPercentage: 50\n",
          "m.yaml:1:13: autoscaling/v1 is not supported: write the manifest as autoscaling/v2 "
          "(targetCPUUtilizationPercentage: N becomes" },
        { "kind: HorizontalPodAutoscaler\napiVersion: autoscaling/v2beta1\n",
          "m.yaml:2:13: autoscaling/v2beta1 is not supported (removed in Kubernetes 1.25)" },
        { "kind: HorizontalPodAutoscaler\napiVersion: apps/v1\n",
          "m.yaml:2:13: apiVersion 'apps/v1' is not an autoscaling API (expected autoscaling/v2)" },
        { HEAD "spec:\n  minReplica: 2\n  maxReplicas: 3\n",
          "m.yaml:5:3: unknown field 'minReplica' in spec (known: scaleTargetRef, minReplicas, "
          "maxReplicas, metrics, behavior)" },
        { HEAD "spec:\n  minReplicas: 2\n",
          "m.yaml:5:3: spec.maxReplicas is required" },
        { HEAD "spec:\n  minReplicas: 4\n  maxReplicas: 3\n",
          "m.yaml:6:16: maxReplicas (3) must be >= minReplicas (4)" },
        { HEAD "spec:\n  maxReplicas: three\n",
          "m.yaml:5:16: maxReplicas: expected an integer, got 'three'" },
        { HEAD "spec:\n  maxReplicas: 3\n  minReplicas: 0\n",
          "m.yaml:6:16: minReplicas 0 needs at least one Object or External metric" },
        { HEAD "spec:\n  maxReplicas: 3\n  metrics:\n  - type: Pods\n    pods:\n      metric: {name: q}\n"
               "      target: {type: Utilization, averageUtilization: 50}\n",
          "m.yaml:10:22: target.type 'Utilization' is not valid for a Pods metric (allowed: AverageValue)" },
        { HEAD "spec:\n  maxReplicas: 3\n  metrics:\n  - type: Pods\n    pods:\n      metric: {name: q}\n"
               "      target: {type: AverageValue, averageValue: 10x}\n",
          "m.yaml:10:50: averageValue: '10x' is not a Kubernetes quantity (e.g. 100m, 1.5, 2k, 500Mi)" },
        { HEAD "spec:\n  maxReplicas: 3\n  metrics:\n  - type: Resource\n    resource:\n      name: memory\n"
               "      target: {type: Utilization, averageUtilization: 50}\n",
          "m.yaml:9:13: resource 'memory' is not modelled by fleetsim (cpu, nvidia.com/gpu)" },
        { HEAD "spec:\n  maxReplicas: 3\n  metrics:\n  - type: Custom\n",
          "m.yaml:7:11: unknown metric type 'Custom' (Resource, ContainerResource, Pods, Object, External)" },
        { HEAD "spec:\n  maxReplicas: 3\n  metrics:\n  - type: Object\n    object:\n      metric: {name: q}\n"
               "      target: {type: Value, value: 1}\n",
          "m.yaml:9:7: object.describedObject is required" },
        { HEAD "spec:\n  maxReplicas: 3\n  behavior:\n    scaleDown:\n      selectPolicy: Fastest\n",
          "m.yaml:8:21: selectPolicy: expected Max, Min or Disabled, got Fastest" },
        { HEAD "spec:\n  maxReplicas: 3\n  behavior:\n    scaleUp:\n      policies:\n"
               "      - {type: Pods, value: 4, periodSeconds: 1801}\n",
          "m.yaml:9:47: periodSeconds: must be between 1 and 1800, got 1801" },
        { HEAD "spec:\n  maxReplicas: 3\n  behavior:\n    scaleUp:\n      policies:\n"
               "      - {type: Pods, value: 0, periodSeconds: 60}\n",
          "m.yaml:9:29: policy value: must be between 1 and 2147483647, got 0" },
        { HEAD "spec:\n  maxReplicas: 3\n  behavior:\n    scaleUp:\n      policies: []\n",
          "m.yaml:8:17: policies: must specify at least one policy" },
        { HEAD "spec:\n  maxReplicas: 3\n  behavior:\n    scaleDown: {stabilizationWindowSeconds: 3601}\n",
          "m.yaml:7:45: stabilizationWindowSeconds: must be between 0 and 3600, got 3601" },
        { HEAD "spec:\n  maxReplicas: 3\n  behavior:\n    scaleUp:\n      policies:\n"
               "      - {type: Percentage, value: 10, periodSeconds: 60}\n",
          "m.yaml:9:16: policy type: expected Pods or Percent, got Percentage" },
        { "apiVersion: apps/v1\nkind: Deployment\n",
          "m.yaml:1:1: no HorizontalPodAutoscaler (kind: HorizontalPodAutoscaler) in this file" },
        { HEAD "spec: {maxReplicas: 3}\n---\n" HEAD "spec: {maxReplicas: 4}\n",
          "m.yaml:6:1: a second HorizontalPodAutoscaler (the first is at line 1); one per file" },
        { HEAD "spec:\n  maxReplicas: 3\n   minReplicas: 1\n",
          "m.yaml:6:15: mapping values are not allowed in this context" },
        { HEAD "spec:\n  maxReplicas: [3]\n",
          "m.yaml:5:16: maxReplicas: expected an integer, got a list" },
        { HEAD "spec:\n  maxReplicas: 3\n  metrics:\n  - type: Resource\n    resource:\n      name: cpu\n"
               "      target: {type: Utilization}\n",
          "m.yaml:10:15: target type Utilization needs averageUtilization" },
        { HEAD "spec: 3\n", "m.yaml:4:7: spec: expected a mapping, got a scalar" },
        { "- a\n- b\n", "m.yaml:1:1: expected a Kubernetes object (a mapping with apiVersion and kind), "
                        "got a list" },
    };
    as_hpa_spec s;
    char err[512];

    for (int i = 0; i < N_OF(cases); i++) {
        int r = parse(cases[i].text, &s, err, sizeof err);
        CU_ASSERT_EQUAL(r, -1);
        if (r == 0) {
            fprintf(stderr, "\n  case %d accepted\n", i);
            as_hpa_spec_free(&s);
            continue;
        }
        CU_ASSERT_TRUE(starts_with(err, cases[i].want));
    }
    /* a file that is not there */
    CU_ASSERT_EQUAL(as_hpa_manifest_load("/nonexistent.yaml", &s, err, sizeof err), -1);
    CU_ASSERT_TRUE(starts_with(err, "/nonexistent.yaml: cannot open HPA manifest: "));
}

/* ---- threshold ---- */

typedef struct {
    double now;
    int current;
    double util;
} th_run;

static int th_step(as *a, th_run *r, int min_r, int max_r)
{
    as_pod_view pods[64];
    as_view v;

    memset(&v, 0, sizeof v);
    for (int i = 0; i < r->current && i < 64; i++) {
        memset(&pods[i], 0, sizeof pods[i]);
        pods[i].phase = AS_POD_RUNNING;
        pods[i].ready = pods[i].has_metrics = 1;
        pods[i].cpu_util = r->util;
        pods[i].gpu_util = 1.0 - r->util;
    }
    v.now_s = r->now;
    v.current_replicas = r->current;
    v.min_replicas = min_r;
    v.max_replicas = max_r;
    v.n_pods = r->current < 64 ? r->current : 64;
    v.pods = pods;
    r->current = as_recommend(a, &v);
    r->now += 15.0;
    return r->current;
}

static void test_threshold(void)
{
    as_param p[] = { { "scale_out_above", "85%", 0, 0 }, { "scale_in_below", "0.4", 0, 0 },
                     { "step", "2", 0, 0 }, { "cooldown", "60s", 0, 0 } };
    as_config cfg = { "t", NULL, N_OF(p), p };
    char err[256];
    as *a = as_create("threshold", &cfg, err, sizeof err);
    th_run r = { 0, 3, 0.90 };

    CU_ASSERT_PTR_NOT_NULL_FATAL(a);
    CU_ASSERT_DOUBLE_EQUAL(as_period_s(a), 15.0, 0);
    CU_ASSERT_EQUAL(th_step(a, &r, 3, 15), 5);      /* t=0: 90% > 85%: +2 */
    CU_ASSERT_EQUAL(th_step(a, &r, 3, 15), 5);      /* t=15: cooling down */
    CU_ASSERT_PTR_NOT_NULL(strstr(as_reason(a), "cooling down"));
    CU_ASSERT_EQUAL(th_step(a, &r, 3, 15), 5);      /* t=30 */
    CU_ASSERT_EQUAL(th_step(a, &r, 3, 15), 5);      /* t=45 */
    CU_ASSERT_EQUAL(th_step(a, &r, 3, 15), 7);      /* t=60: cool-down over */
    r.util = 0.85;                                  /* not above: no change */
    r.now += 60;
    CU_ASSERT_EQUAL(th_step(a, &r, 3, 15), 7);
    r.util = 0.30;                                  /* below 40%: -2 (30% x 7/5 = 42% is fine) */
    CU_ASSERT_EQUAL(th_step(a, &r, 3, 15), 5);
    r.now += 60;
    CU_ASSERT_EQUAL(th_step(a, &r, 3, 15), 3);
    r.now += 60;
    CU_ASSERT_EQUAL(th_step(a, &r, 3, 15), 3);      /* at min_replicas */
    r.util = 2.0;
    for (int k = 0; k < 40; k++) {
        r.now += 60;
        th_step(a, &r, 3, 15);
    }
    CU_ASSERT_EQUAL(r.current, 15);                 /* max_replicas */
    as_destroy(a);

    /* no flapping: 39% on 3 pods would be 58.5% on 2; with scale_out_above
     * 50% that scale-in is refused */
    {
        as_param q[] = { { "scale_out_above", "0.5", 0, 0 }, { "scale_in_below", "0.4", 0, 0 },
                         { "metric", "gpu", 0, 0 } };
        as_config c2 = { "t", NULL, N_OF(q), q };
        th_run r2 = { 0, 3, 1.0 - 0.39 }; /* gpu_util = 0.39 */
        a = as_create("threshold", &c2, err, sizeof err);
        CU_ASSERT_PTR_NOT_NULL_FATAL(a);
        CU_ASSERT_EQUAL(th_step(a, &r2, 1, 0), 3);
        CU_ASSERT_PTR_NOT_NULL(strstr(as_reason(a), "1 fewer would be 58.5%"));
        as_destroy(a);
    }
    /* configuration errors */
    {
        as_param q[] = { { "scale_out_above", "0.5", 3, 7 }, { "scale_in_below", "0.6", 4, 7 } };
        as_param q2[] = { { "stepsize", "2", 5, 3 } };
        as_config c2 = { "s.yaml", NULL, N_OF(q), q }, c3 = { "s.yaml", NULL, 1, q2 };
        CU_ASSERT_PTR_NULL(as_create("threshold", &c2, err, sizeof err));
        CU_ASSERT_STRING_EQUAL(err, "s.yaml:4:7: scale_in_below (0.6) must be below scale_out_above (0.5)");
        CU_ASSERT_PTR_NULL(as_create("threshold", &c3, err, sizeof err));
        CU_ASSERT_TRUE(starts_with(err, "s.yaml:5:3: unknown key 'stepsize' for this autoscaler (known: "
                                        "metric, scale_out_above,"));
    }
}

/* ---- scheduled ---- */

static int at(as *a, double t)
{
    as_view v;
    memset(&v, 0, sizeof v);
    v.now_s = t;
    v.current_replicas = 1;
    return as_recommend(a, &v);
}

static void test_scheduled(void)
{
    as_param p[] = { { "schedule", "20:00=3, 08:00=10,12:30=15", 0, 0 }, { "start_time", "06:00", 0, 0 } };
    as_config cfg = { "t", NULL, N_OF(p), p };
    char err[256];
    as *a = as_create("scheduled", &cfg, err, sizeof err);

    CU_ASSERT_PTR_NOT_NULL_FATAL(a);
    CU_ASSERT_EQUAL(at(a, 0), 3);                      /* 06:00: yesterday's 20:00 */
    CU_ASSERT_EQUAL(at(a, 2 * 3600 - 1), 3);           /* 07:59:59 */
    CU_ASSERT_EQUAL(at(a, 2 * 3600), 10);              /* 08:00 */
    CU_ASSERT_EQUAL(at(a, 6.5 * 3600), 15);            /* 12:30 */
    CU_ASSERT_EQUAL(at(a, 14 * 3600), 3);              /* 20:00 */
    CU_ASSERT_EQUAL(at(a, 26 * 3600 + 60), 10);        /* next day 08:01 */
    CU_ASSERT_STRING_EQUAL(as_reason(a), "schedule 08:00=10");
    as_destroy(a);
    {
        as_param q[] = { { "schedule", "8:00=10, 25:00=3", 2, 13 } };
        as_param q2[] = { { "schedule", "08:00=ten", 2, 13 } };
        as_config c2 = { "s.yaml", NULL, 1, q }, c3 = { "s.yaml", NULL, 1, q2 };
        CU_ASSERT_PTR_NULL(as_create("scheduled", &c2, err, sizeof err));
        CU_ASSERT_STRING_EQUAL(err, "s.yaml:2:13: schedule: expected HH:MM=replicas entries separated by "
                                    "commas, in '8:00=10, 25:00=3'");
        CU_ASSERT_PTR_NULL(as_create("scheduled", &c3, err, sizeof err));
        CU_ASSERT_STRING_EQUAL(err, "s.yaml:2:13: schedule: expected a replica count after '=', at 'ten'");
    }
}

/* ---- predictive ---- */

static int feed(as *a, double t, double rate, double startup_s)
{
    as_metric m = { "arrival_rate_qps", rate };
    as_view v;
    memset(&v, 0, sizeof v);
    v.now_s = t;
    v.current_replicas = 1;
    v.startup_s = startup_s;
    v.n_metrics = 1;
    v.metrics = &m;
    return as_recommend(a, &v);
}

static void test_predictive_holt(void)
{
    /* fixed constants, no fitting: on a clean ramp the Holt trend converges
     * to the slope, so the forecast lead_time ahead is the rate then. */
    as_param p[] = { { "capacity_qps", "10", 0, 0 }, { "alpha", "0.8", 0, 0 }, { "beta", "0.5", 0, 0 },
                     { "fit", "false", 0, 0 } };
    as_config cfg = { "t", NULL, N_OF(p), p };
    char err[256];
    as *a = as_create("predictive", &cfg, err, sizeof err);
    int got = 0;

    CU_ASSERT_PTR_NOT_NULL_FATAL(a);
    CU_ASSERT_DOUBLE_EQUAL(as_period_s(a), 60.0, 0);
    /* rate 100 + 2/s per minute-sample ... 100 + 2k at sample k; the view's
     * startup_s 300 s = 5 samples ahead */
    for (int k = 0; k <= 60; k++)
        got = feed(a, 60.0 * k, 100.0 + 2.0 * k, 300.0);
    /* at k = 60: rate 220, forecast 220 + 5 x 2 = 230 -> 23 replicas (the
     * trend has converged to 2 within 1e-9 long before) */
    CU_ASSERT_EQUAL(got, 23);
    CU_ASSERT_PTR_NOT_NULL(strstr(as_reason(a), "forecast 230.00/s in 300 s"));
    /* a falling rate: never fewer than the current rate needs */
    for (int k = 61; k <= 120; k++)
        got = feed(a, 60.0 * k, 220.0 - 3.0 * (k - 60), 300.0);
    /* rate 40, forecast 40 - 15 = 25 -> the rate now needs 4 */
    CU_ASSERT_EQUAL(got, 4);
    /* no rate in the view: keep */
    {
        as_view v;
        memset(&v, 0, sizeof v);
        v.current_replicas = 7;
        CU_ASSERT_EQUAL(as_recommend(a, &v), 7);
    }
    as_destroy(a);
}

static void test_predictive_fit_and_season(void)
{
    /* Holt-Winters with a season of 24 samples (a "day" of 24 periods of
     * 60 s), constants fitted every season: after six seasons of a square
     * wave 100 / 300 the forecast one sample ahead of the rise says 300
     * while the rate is still 100. */
    as_param p[] = { { "capacity_qps", "10", 0, 0 }, { "method", "holt_winters", 0, 0 },
                     { "season", "24m", 0, 0 }, { "lead_time", "60s", 0, 0 },
                     { "refit_every", "24", 0, 0 } };
    as_config cfg = { "t", NULL, N_OF(p), p };
    char err[256];
    as *a = as_create("predictive", &cfg, err, sizeof err);
    int k, got = 0;

    CU_ASSERT_PTR_NOT_NULL_FATAL(a);
    for (k = 0; k < 24 * 6 + 11; k++)
        got = feed(a, 60.0 * k, (k % 24) < 12 ? 100.0 : 300.0, 0.0);
    /* k-1 = 154: sample 10 of the season (rate 100); the next (11) is still
     * low: 10 replicas */
    CU_ASSERT_EQUAL(got, 10);
    got = feed(a, 60.0 * k, 100.0, 0.0); /* sample 11: the next one, 12, is high */
    /* the first season initialises level 200 and terms -100 / +100, which
     * fit the wave exactly: whatever the fitted constants, 300 -> 30 */
    CU_ASSERT_EQUAL(got, 30);
    CU_ASSERT_PTR_NOT_NULL(strstr(as_reason(a), "rate 100.00/s, forecast 300.00/s in 60 s"));
    as_destroy(a);

    {
        as_param q[] = { { "alpha", "1.5", 3, 9 }, { "capacity_qps", "10", 2, 5 } };
        as_param q2[] = { { "method", "arima", 4, 11 }, { "capacity_qps", "10", 2, 5 } };
        as_config c2 = { "s.yaml", NULL, N_OF(q), q }, c3 = { "s.yaml", NULL, N_OF(q2), q2 },
                  c4 = { "s.yaml", NULL, 0, NULL };
        CU_ASSERT_PTR_NULL(as_create("predictive", &c2, err, sizeof err));
        CU_ASSERT_STRING_EQUAL(err, "s.yaml:3:9: alpha must be in (0, 1)");
        CU_ASSERT_PTR_NULL(as_create("predictive", &c3, err, sizeof err));
        CU_ASSERT_STRING_EQUAL(err, "s.yaml:4:11: method: expected holt or holt_winters, got 'arima'");
        CU_ASSERT_PTR_NULL(as_create("predictive", &c4, err, sizeof err));
        CU_ASSERT_TRUE(starts_with(err, "s.yaml: autoscaler predictive needs `capacity_qps:`"));
    }
}

int main(void)
{
    CU_pSuite s;
    unsigned fails;

    if (CU_initialize_registry() != CUE_SUCCESS)
        return 1;
    s = CU_add_suite("autoscale", NULL, NULL);
    CU_add_test(s, "registry", test_registry);
    CU_add_test(s, "wrapper: AS_KEEP, clamps, bad ops", test_wrapper_clamps_and_keep);
    CU_add_test(s, "kubernetes quantities", test_quantities);
    CU_add_test(s, "manifest: every field", test_manifest_full);
    CU_add_test(s, "manifest: defaults, v2beta2, shipped files", test_manifest_defaults_and_versions);
    CU_add_test(s, "manifest: errors with line:col", test_manifest_errors);
    CU_add_test(s, "threshold", test_threshold);
    CU_add_test(s, "scheduled", test_scheduled);
    CU_add_test(s, "predictive: holt", test_predictive_holt);
    CU_add_test(s, "predictive: holt-winters, fit, errors", test_predictive_fit_and_season);
    CU_basic_set_mode(CU_BRM_VERBOSE);
    CU_basic_run_tests();
    fails = CU_get_number_of_failures();
    CU_cleanup_registry();
    return fails ? 1 : 0;
}
