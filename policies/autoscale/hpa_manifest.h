/*
 * hpa_manifest.h - a Kubernetes HorizontalPodAutoscaler manifest
 * (apiVersion autoscaling/v2, or autoscaling/v2beta2, which has the same
 * shape) read into plain structs, with the API server's defaults applied
 * (k8s pkg/apis/autoscaling/v2/defaults.go) and its validation rules
 * checked, so that the `hpa` policy runs the configuration a user actually
 * deploys. Errors are `file:line:col: message`.
 */
#ifndef FLEETSIM_HPA_MANIFEST_H
#define FLEETSIM_HPA_MANIFEST_H

#include <stddef.h>

typedef enum {
    AS_HPA_RESOURCE,     /* Resource (and ContainerResource: a pod here is one container) */
    AS_HPA_PODS,
    AS_HPA_OBJECT,
    AS_HPA_EXTERNAL,
} as_hpa_metric_type;

typedef enum {
    AS_HPA_UTILIZATION,  /* averageUtilization: percent of the request */
    AS_HPA_AVERAGE_VALUE,/* averageValue: per pod */
    AS_HPA_VALUE,        /* value: total */
} as_hpa_target_type;

typedef enum { AS_HPA_CPU, AS_HPA_GPU } as_hpa_resource;

typedef struct {
    as_hpa_metric_type type;
    char name[128];             /* metric.name, or the resource name as written */
    as_hpa_resource resource;   /* Resource metrics only */
    as_hpa_target_type target;
    int utilization_pct;        /* AS_HPA_UTILIZATION */
    long long target_milli;     /* AS_HPA_AVERAGE_VALUE / AS_HPA_VALUE, milli-units
                                   (Quantity.MilliValue(): rounded up) */
    int line, col;              /* where the metric was written */
} as_hpa_metric;

typedef enum { AS_HPA_POLICY_PODS, AS_HPA_POLICY_PERCENT } as_hpa_policy_type;
typedef enum { AS_HPA_SELECT_MAX, AS_HPA_SELECT_MIN, AS_HPA_SELECT_DISABLED } as_hpa_select;

typedef struct {
    as_hpa_policy_type type;
    int value;
    int period_s;
} as_hpa_policy;

#define AS_HPA_MAX_POLICIES 16

/* One direction of spec.behavior after defaulting. */
typedef struct {
    int window_s;               /* stabilizationWindowSeconds; -1 = unset (scale-down
                                   default: the controller's --horizontal-pod-
                                   autoscaler-downscale-stabilization, 300 s) */
    as_hpa_select select;
    int n_policies;
    as_hpa_policy policies[AS_HPA_MAX_POLICIES];
    double tolerance;           /* behavior tolerance (alpha field); < 0 = unset */
} as_hpa_rules;

typedef struct {
    char name[128];             /* metadata.name */
    char api_version[64];       /* as written */
    int min_replicas;           /* default 1 */
    int max_replicas;
    int n_metrics;              /* default: one Resource cpu at 80% utilization */
    as_hpa_metric *metrics;
    int has_behavior;           /* spec.behavior present: both directions defaulted */
    as_hpa_rules scale_up, scale_down;
} as_hpa_spec;

/* Reads the HorizontalPodAutoscaler in path (a file may hold other
 * documents, e.g. the Deployment; exactly one HPA is expected). 0 on
 * success; -1 with "path:line:col: message" in err. */
int as_hpa_manifest_load(const char *path, as_hpa_spec *out, char *err, size_t errlen);
/* The same from text in memory; `file` names it in messages. */
int as_hpa_manifest_parse(const char *text, size_t len, const char *file, as_hpa_spec *out,
                          char *err, size_t errlen);
void as_hpa_spec_free(as_hpa_spec *spec);

/* A Kubernetes quantity ("100m", "1.5", "1k", "500Mi", "2e3") in milli-units,
 * rounded up like Quantity.MilliValue(). 0 on success, -1 when malformed,
 * negative or too large. */
int as_parse_quantity_milli(const char *text, long long *out_milli);

#endif
