/*
 * hpa.c - the Kubernetes HorizontalPodAutoscaler (autoscaling/v2) as the
 * controller implements it, driven by the user's own manifest.
 *
 * Followed line by line (the code, where it and the docs differ):
 * - kubernetes pkg/controller/podautoscaler/replica_calculator.go:
 *   GetResourceReplicas, GetRawResourceReplicas, GetMetricReplicas,
 *   calcPlainMetricReplicas, GetObjectMetricReplicas,
 *   GetObjectPerPodMetricReplicas, GetExternalMetricReplicas,
 *   GetExternalPerPodMetricReplicas, getUsageRatioReplicaCount, groupPods;
 * - pkg/controller/podautoscaler/metrics/utilization.go: the utilization is
 *   an integer percentage (metricsTotal*100/requestsTotal, truncated) and a
 *   plain metric's average an integer number of milli-units, both before the
 *   ratio is taken; this truncation is reproduced;
 * - pkg/controller/podautoscaler/horizontal.go: reconcileAutoscaler (the
 *   min/max and "scaling disabled at 0" paths), computeReplicasForMetrics
 *   (max over metrics; invalid metrics block a scale-down),
 *   normalizeDesiredReplicas (no `behavior`: 5-minute max-of-recommendations
 *   stabilization, then the scale-up limit max(2*current, 4)),
 *   normalizeDesiredReplicasWithBehaviors, stabilizeRecommendationWithBehaviors,
 *   convertDesiredReplicasWithBehaviorRate,
 *   calculateScale{Up,Down}LimitWithScalingRules (period start = current -
 *   added + deleted within periodSeconds), storeScaleEvent.
 *
 * Where the code and the documentation differ, the code wins:
 * - missing metrics on a scale-down count as max(100%, target) of the
 *   request for Resource utilization (the docs say 100%), and as exactly the
 *   target for plain metrics;
 * - only CPU metrics get the readiness / initialization-period treatment;
 *   for GPU, Pods, Object and External metrics a running pod with a sample
 *   counts even while it is not ready (only Pending pods are set aside);
 * - Object and External `Value` targets multiply by the number of Running
 *   and Ready pods, not by the current replica count.
 *
 * Pod metrics come in as fractions and values from the engine's sampler;
 * they are turned into milli-units (llround) as metrics-server and the
 * custom-metrics API deliver them, so the integer arithmetic above applies.
 */
#include "autoscale.h"
#include "as_policies.h"
#include "autoscale/hpa_manifest.h"

#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    int replicas;
    double t;
} rec_t;

typedef struct {
    int change;
    double t;
    int outdated;
} event_t;

typedef struct {
    event_t *e;
    int n, cap;
} events;

struct hpa {
    as_hpa_spec spec;
    double sync_s;             /* --horizontal-pod-autoscaler-sync-period */
    double tolerance;          /* --horizontal-pod-autoscaler-tolerance */
    double cpu_init_s;         /* --horizontal-pod-autoscaler-cpu-initialization-period */
    double readiness_delay_s;  /* --horizontal-pod-autoscaler-initial-readiness-delay */
    double down_stab_s;        /* --horizontal-pod-autoscaler-downscale-stabilization */
    rec_t *recs;               /* a.recommendations[key] */
    int n_recs, cap_recs;
    events up, down;           /* a.scaleUpEvents / a.scaleDownEvents */
    char reason[256];
    /* scratch, sized by the view */
    int cap;
    unsigned char *group, *in_m;
    long long *val, *req;
    int *has;
};

static const char *const hpa_keys[] = { "manifest", "sync_period", "tolerance",
                                        "cpu_initialization_period", "initial_readiness_delay",
                                        "downscale_stabilization", NULL };

static void set_reason(struct hpa *h, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;
static void set_reason(struct hpa *h, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(h->reason, sizeof h->reason, fmt, ap);
    va_end(ap);
}

static void hpa_destroy(void *state)
{
    struct hpa *h = state;

    if (!h)
        return;
    as_hpa_spec_free(&h->spec);
    free(h->recs);
    free(h->up.e);
    free(h->down.e);
    free(h->group);
    free(h->in_m);
    free(h->val);
    free(h->req);
    free(h->has);
    free(h);
}

static void *hpa_init(const as_config *cfg, char *err, size_t errlen)
{
    const as_param *mf;
    struct hpa *h;
    char path[4096], merr[512];

    if (as_check_keys(cfg, hpa_keys, err, errlen))
        return NULL;
    mf = as_param_find(cfg, "manifest");
    if (!mf || !mf->value || !*mf->value)
        return as_fail(err, errlen, cfg, NULL,
                       "autoscaler hpa needs `manifest:` (an autoscaling/v2 HorizontalPodAutoscaler)");
    h = calloc(1, sizeof *h);
    if (!h)
        return as_fail(err, errlen, cfg, NULL, "out of memory");
    h->sync_s = 15.0;
    h->tolerance = 0.1;
    h->cpu_init_s = 300.0;
    h->readiness_delay_s = 30.0;
    h->down_stab_s = 300.0;
    if (as_param_duration(cfg, "sync_period", &h->sync_s, err, errlen) < 0 ||
        as_param_number(cfg, "tolerance", &h->tolerance, err, errlen) < 0 ||
        as_param_duration(cfg, "cpu_initialization_period", &h->cpu_init_s, err, errlen) < 0 ||
        as_param_duration(cfg, "initial_readiness_delay", &h->readiness_delay_s, err, errlen) < 0 ||
        as_param_duration(cfg, "downscale_stabilization", &h->down_stab_s, err, errlen) < 0)
        goto fail;
    if (!(h->sync_s > 0)) {
        as_fail(err, errlen, cfg, as_param_find(cfg, "sync_period"), "sync_period must be > 0");
        goto fail;
    }
    if (!(h->tolerance >= 0 && h->tolerance < 1)) {
        as_fail(err, errlen, cfg, as_param_find(cfg, "tolerance"), "tolerance must be in [0, 1)");
        goto fail;
    }
    if (mf->value[0] != '/' && cfg->base_dir && *cfg->base_dir)
        snprintf(path, sizeof path, "%s/%s", cfg->base_dir, mf->value);
    else
        snprintf(path, sizeof path, "%s", mf->value);
    if (as_hpa_manifest_load(path, &h->spec, merr, sizeof merr) != 0) {
        as_fail(err, errlen, cfg, mf, "manifest: %s", merr);
        goto fail;
    }
    return h;
fail:
    hpa_destroy(h);
    return NULL;
}

static double hpa_period(const void *state)
{
    return ((const struct hpa *)state)->sync_s;
}

static const char *hpa_reason(const void *state)
{
    return ((const struct hpa *)state)->reason;
}

static int reserve(struct hpa *h, int n)
{
    if (n <= h->cap)
        return 1;
    free(h->group);
    free(h->in_m);
    free(h->val);
    free(h->req);
    free(h->has);
    h->group = malloc((size_t)n);
    h->in_m = malloc((size_t)n);
    h->val = malloc((size_t)n * sizeof *h->val);
    h->req = malloc((size_t)n * sizeof *h->req);
    h->has = malloc((size_t)n * sizeof *h->has);
    h->cap = (h->group && h->in_m && h->val && h->req && h->has) ? n : 0;
    return h->cap == n;
}

/* ---- replica_calculator.go ---- */

typedef struct {
    double down, up;
} tolerances;

/* Tolerances.isWithin */
static int within(tolerances t, double ratio)
{
    return (1.0 - t.down) <= ratio && ratio <= (1.0 + t.up);
}

/* int32(math.Ceil(x)), saturated instead of undefined for huge values. */
static int ceil_replicas(double x)
{
    double c = ceil(x);
    if (!(c < (double)INT_MAX))
        return INT_MAX;
    return c < 0 ? 0 : (int)c;
}

enum { P_READY, P_UNREADY, P_MISSING, P_IGNORED };

/* groupPods: deleted or failed pods are ignored, pending ones unready, pods
 * without a sample missing; for CPU only, a pod is also unready while it has
 * no Ready condition or start time, or within the CPU initialization period
 * when it is not ready or its sample's window began before it became ready,
 * or after that period when it is not ready and has never been ready
 * (its Ready condition changed within initial_readiness_delay of its start). */
static int group_pods(const struct hpa *h, const as_view *v, int cpu)
{
    int ready = 0;

    for (int i = 0; i < v->n_pods; i++) {
        const as_pod_view *p = &v->pods[i];
        if (p->phase == AS_POD_TERMINATING || p->phase == AS_POD_FAILED) {
            h->group[i] = P_IGNORED;
            continue;
        }
        if (p->phase == AS_POD_PENDING) {
            h->group[i] = P_UNREADY;
            continue;
        }
        if (!h->has[i]) {
            h->group[i] = P_MISSING;
            continue;
        }
        if (cpu) {
            int unready;
            if (isnan(p->ready_change_s) || isnan(p->start_s))
                unready = 1;
            else if (p->start_s + h->cpu_init_s > v->now_s)
                unready = !p->ready || p->metrics_time_s < p->ready_change_s + p->metrics_window_s;
            else
                unready = !p->ready && p->start_s + h->readiness_delay_s > p->ready_change_s;
            if (unready) {
                h->group[i] = P_UNREADY;
                continue;
            }
        }
        h->group[i] = P_READY;
        ready++;
    }
    return ready;
}

/* metrics.GetResourceUtilizationRatio over the pods in in_m. */
static int resource_ratio(const struct hpa *h, int n, int target_pct, double *ratio, long long *util)
{
    long long mt = 0, rt = 0;

    for (int i = 0; i < n; i++)
        if (h->in_m[i]) {
            mt += h->val[i];
            rt += h->req[i];
        }
    if (rt == 0)
        return -1;
    *util = mt * 100 / rt;
    *ratio = (double)*util / (double)target_pct;
    return 0;
}

/* metrics.GetMetricUsageRatio over the pods in in_m (at least one). */
static double usage_ratio(const struct hpa *h, int n, long long target, long long *usage)
{
    long long total = 0, count = 0;

    for (int i = 0; i < n; i++)
        if (h->in_m[i]) {
            total += h->val[i];
            count++;
        }
    *usage = count ? total / count : 0;
    return (double)*usage / (double)target;
}

static int count_in_m(const struct hpa *h, int n)
{
    int c = 0;
    for (int i = 0; i < n; i++)
        c += h->in_m[i] != 0;
    return c;
}

/* The shared second half of GetResourceReplicas and calcPlainMetricReplicas:
 * conservative recompute with missing and unready pods. fallback is the
 * value a missing pod gets on a scale-down (per pod for resources). */
static int recompute(struct hpa *h, const as_view *v, tolerances tol, int ready, double ratio,
                     int resource, int target_pct, long long target, int *out)
{
    int n = v->n_pods, current = v->current_replicas, any_unready = 0, any_missing = 0, nm;
    int scale_up_with_unready;
    double new_ratio;
    long long dummy;

    for (int i = 0; i < n; i++) {
        any_unready |= h->group[i] == P_UNREADY;
        any_missing |= h->group[i] == P_MISSING;
    }
    scale_up_with_unready = any_unready && ratio > 1.0;
    if (!scale_up_with_unready && !any_missing) {
        if (within(tol, ratio)) {
            *out = current;
            return 0;
        }
        *out = ceil_replicas(ratio * ready);
        return 0;
    }
    if (any_missing) {
        for (int i = 0; i < n; i++) {
            if (h->group[i] != P_MISSING)
                continue;
            if (ratio < 1.0) {
                /* on a scale-down, treat missing pods as using 100% (all) of the
                 * resource request, or the target when it is above 100%; a plain
                 * metric as exactly the target */
                h->val[i] = resource ? h->req[i] * (target_pct > 100 ? target_pct : 100) / 100 : target;
                h->in_m[i] = 1;
            } else if (ratio > 1.0) {
                h->val[i] = 0; /* on a scale-up, as using 0% */
                h->in_m[i] = 1;
            }
        }
    }
    if (scale_up_with_unready)
        for (int i = 0; i < n; i++)
            if (h->group[i] == P_UNREADY) {
                h->val[i] = 0;
                h->in_m[i] = 1;
            }
    if (resource) {
        if (resource_ratio(h, n, target_pct, &new_ratio, &dummy))
            return -1;
    } else {
        new_ratio = usage_ratio(h, n, target, &dummy);
    }
    if (within(tol, new_ratio) || (ratio < 1.0 && new_ratio > 1.0) || (ratio > 1.0 && new_ratio < 1.0)) {
        *out = current; /* too small a change, or the direction would flip */
        return 0;
    }
    nm = count_in_m(h, n);
    *out = ceil_replicas(new_ratio * nm);
    if ((new_ratio < 1.0 && *out > current) || (new_ratio > 1.0 && *out < current))
        *out = current; /* the number of pods considered flipped the direction */
    return 0;
}

/* Per-pod sample of metric m into h->val / h->has / h->req (milli-units). */
static void sample_pods(struct hpa *h, const as_view *v, const as_hpa_metric *m)
{
    for (int i = 0; i < v->n_pods; i++) {
        const as_pod_view *p = &v->pods[i];
        double x = 0.0;

        if (m->type == AS_HPA_RESOURCE) {
            int gpu = m->resource == AS_HPA_GPU;
            double req = gpu ? p->gpu_request : p->cpu_request;
            if (!(req > 0))
                req = 1.0;
            h->req[i] = llround(req * 1000.0);
            h->has[i] = p->has_metrics;
            x = (gpu ? p->gpu_util : p->cpu_util) * req;
            h->val[i] = h->has[i] ? llround(x * 1000.0) : 0;
        } else {
            h->req[i] = 0;
            h->has[i] = as_pod_metric(p, m->name, &x);
            h->val[i] = h->has[i] ? llround(x * 1000.0) : 0;
        }
    }
}

static int fail_metric(struct hpa *h, const char *msg, const as_hpa_metric *m)
{
    set_reason(h, "FailedGetMetric: %s %s: %s",
               m->type == AS_HPA_RESOURCE ? "resource" : m->type == AS_HPA_PODS ? "pods metric"
               : m->type == AS_HPA_OBJECT ? "object metric" : "external metric",
               m->name, msg);
    return -1;
}

/* GetResourceReplicas (Utilization) and the calcPlainMetricReplicas paths
 * (resource AverageValue, Pods). */
static int pod_metric_replicas(struct hpa *h, const as_view *v, const as_hpa_metric *m, tolerances tol,
                               int *out)
{
    int n = v->n_pods, cpu, ready, resource_util;
    double ratio;
    long long util;

    if (n == 0)
        return fail_metric(h, "no pods returned by selector while calculating replica count", m);
    if (!reserve(h, n))
        return fail_metric(h, "out of memory", m);
    sample_pods(h, v, m);
    cpu = m->type == AS_HPA_RESOURCE && m->resource == AS_HPA_CPU;
    ready = group_pods(h, v, cpu);
    for (int i = 0; i < n; i++)
        h->in_m[i] = h->group[i] == P_READY;
    if (ready == 0)
        return fail_metric(h, "did not receive metrics for targeted pods (pods might be unready)", m);
    resource_util = m->type == AS_HPA_RESOURCE && m->target == AS_HPA_UTILIZATION;
    if (resource_util) {
        if (resource_ratio(h, n, m->utilization_pct, &ratio, &util))
            return fail_metric(h, "no metrics returned matched known pods", m);
    } else {
        ratio = usage_ratio(h, n, m->target_milli, &util);
    }
    if (recompute(h, v, tol, ready, ratio, resource_util, m->utilization_pct, m->target_milli, out))
        return fail_metric(h, "no metrics returned matched known pods", m);
    return 0;
}

/* getReadyPodsCount: Running and Ready. */
static int ready_pods(const as_view *v)
{
    int c = 0;
    for (int i = 0; i < v->n_pods; i++)
        c += v->pods[i].phase == AS_POD_RUNNING && v->pods[i].ready;
    return c;
}

/* status.replicas of the scale target: pods neither terminating nor failed. */
static int status_replicas(const as_view *v)
{
    int c = 0;
    for (int i = 0; i < v->n_pods; i++)
        c += v->pods[i].phase == AS_POD_PENDING || v->pods[i].phase == AS_POD_RUNNING;
    return c;
}

/* GetObjectMetricReplicas / GetExternalMetricReplicas and their per-pod
 * (AverageValue) variants. */
static int object_replicas(struct hpa *h, const as_view *v, const as_hpa_metric *m, tolerances tol,
                           int *out)
{
    double x;
    long long usage;

    if (!as_view_metric(v, m->name, &x))
        return fail_metric(h, "unable to get metric (not in the view)", m);
    usage = llround(x * 1000.0);
    if (m->target == AS_HPA_VALUE) {
        double ratio = (double)usage / (double)m->target_milli;
        int current = v->current_replicas;
        if (current != 0) { /* getUsageRatioReplicaCount */
            if (within(tol, ratio)) {
                *out = current;
                return 0;
            }
            *out = ceil_replicas(ratio * ready_pods(v));
        } else {
            *out = ceil_replicas(ratio); /* scale to zero or n pods */
        }
        return 0;
    }
    /* AverageValue: GetObjectPerPodMetricReplicas / GetExternalPerPodMetricReplicas */
    {
        int status = status_replicas(v);
        double ratio = (double)usage / ((double)m->target_milli * status);
        *out = status;
        if (!within(tol, ratio))
            *out = ceil_replicas((double)usage / (double)m->target_milli);
    }
    return 0;
}

/* computeReplicasForMetrics: the largest proposal; -1 when every metric is
 * invalid, or some are and the rest would scale down. */
static int replicas_for_metrics(struct hpa *h, const as_view *v, tolerances tol, const char **which)
{
    int replicas = 0, invalid = 0;
    char first_err[256] = "";

    for (int i = 0; i < h->spec.n_metrics; i++) {
        const as_hpa_metric *m = &h->spec.metrics[i];
        int r, proposal = 0;

        if (m->type == AS_HPA_RESOURCE || m->type == AS_HPA_PODS)
            r = pod_metric_replicas(h, v, m, tol, &proposal);
        else
            r = object_replicas(h, v, m, tol, &proposal);
        if (r) {
            if (invalid++ == 0)
                snprintf(first_err, sizeof first_err, "%s", h->reason);
            continue;
        }
        if (replicas == 0 || proposal > replicas) {
            replicas = proposal;
            *which = m->name;
        }
    }
    if (invalid >= h->spec.n_metrics || (invalid > 0 && replicas < v->current_replicas)) {
        set_reason(h, "invalid metrics (%d invalid out of %d), first error is: %s", invalid,
                   h->spec.n_metrics, first_err);
        return -1;
    }
    return replicas;
}

/* ---- horizontal.go: normalization ---- */

static void record(struct hpa *h, int replicas, double now, int replace_at)
{
    if (replace_at >= 0) {
        h->recs[replace_at] = (rec_t){ replicas, now };
        return;
    }
    if (h->n_recs == h->cap_recs) {
        int cap = h->cap_recs ? 2 * h->cap_recs : 16;
        rec_t *r = realloc(h->recs, (size_t)cap * sizeof *r);
        if (!r)
            return; /* no memory: this recommendation is not remembered */
        h->recs = r;
        h->cap_recs = cap;
    }
    h->recs[h->n_recs++] = (rec_t){ replicas, now };
}

/* stabilizeRecommendation (no behavior): the highest recommendation of the
 * downscale stabilization window; the oldest expired slot is reused. */
static int stabilize(struct hpa *h, int pre, double now)
{
    int max_rec = pre, old = -1;
    double cutoff = now - h->down_stab_s;

    for (int i = 0; i < h->n_recs; i++) {
        if (h->recs[i].t < cutoff)
            old = i;
        else if (h->recs[i].replicas > max_rec)
            max_rec = h->recs[i].replicas;
    }
    record(h, pre, now, old);
    return max_rec;
}

/* stabilizeRecommendationWithBehaviors: the lowest recommendation of the
 * scale-up window bounds the result from below, the highest of the
 * scale-down window from above; the current count is moved into that range. */
static int stabilize_with_behavior(struct hpa *h, int current, int desired, double now)
{
    int up_rec = desired, down_rec = desired, old = -1, rec;
    int down_w = h->spec.scale_down.window_s >= 0 ? h->spec.scale_down.window_s : (int)h->down_stab_s;
    double up_cut = now - h->spec.scale_up.window_s, down_cut = now - down_w;

    for (int i = 0; i < h->n_recs; i++) {
        const rec_t *r = &h->recs[i];
        if (r->t > up_cut && r->replicas < up_rec)
            up_rec = r->replicas;
        if (r->t > down_cut && r->replicas > down_rec)
            down_rec = r->replicas;
        if (r->t < up_cut && r->t < down_cut)
            old = i;
    }
    rec = current;
    if (rec < up_rec)
        rec = up_rec;
    if (rec > down_rec)
        rec = down_rec;
    record(h, desired, now, old);
    return rec;
}

/* getReplicasChangePerPeriod */
static int change_in_period(const events *ev, int period_s, double now)
{
    int sum = 0;
    double cutoff = now - period_s;
    for (int i = 0; i < ev->n; i++)
        if (ev->e[i].t > cutoff)
            sum += ev->e[i].change;
    return sum;
}

static int imax(int a, int b) { return a >= b ? a : b; }
static int imin(int a, int b) { return a <= b ? a : b; }

/* calculateScaleUpLimitWithScalingRules */
static int scale_up_limit(const struct hpa *h, int current, double now)
{
    const as_hpa_rules *r = &h->spec.scale_up;
    int result, minsel = r->select == AS_HPA_SELECT_MIN;

    if (r->select == AS_HPA_SELECT_DISABLED)
        return current;
    result = minsel ? INT_MAX : INT_MIN;
    for (int i = 0; i < r->n_policies; i++) {
        const as_hpa_policy *p = &r->policies[i];
        int start = current - change_in_period(&h->up, p->period_s, now) +
                    change_in_period(&h->down, p->period_s, now);
        int proposed;
        if (p->type == AS_HPA_POLICY_PODS)
            proposed = start + p->value;
        else /* rounded up: a small percentage must still add a pod */
            proposed = ceil_replicas((double)start * (1.0 + (double)p->value / 100.0));
        result = minsel ? imin(result, proposed) : imax(result, proposed);
    }
    return result;
}

/* calculateScaleDownLimitWithBehaviors */
static int scale_down_limit(const struct hpa *h, int current, double now)
{
    const as_hpa_rules *r = &h->spec.scale_down;
    int result, minsel = r->select == AS_HPA_SELECT_MIN;

    if (r->select == AS_HPA_SELECT_DISABLED)
        return current;
    result = minsel ? INT_MIN : INT_MAX;
    for (int i = 0; i < r->n_policies; i++) {
        const as_hpa_policy *p = &r->policies[i];
        int start = current - change_in_period(&h->up, p->period_s, now) +
                    change_in_period(&h->down, p->period_s, now);
        int proposed;
        if (p->type == AS_HPA_POLICY_PODS)
            proposed = start - p->value;
        else /* int32(float64(start) * (1 - value/100)): truncated */
            proposed = (int)((double)start * (1.0 - (double)p->value / 100.0));
        result = minsel ? imax(result, proposed) : imin(result, proposed);
    }
    return result;
}

/* convertDesiredReplicasWithBehaviorRate */
static int behavior_rate(struct hpa *h, int current, int desired, double now)
{
    if (desired > current) {
        int limit = scale_up_limit(h, current, now), max_allowed = h->spec.max_replicas;
        if (limit < current)
            limit = current;
        if (max_allowed > limit) {
            max_allowed = limit;
            if (desired > max_allowed)
                set_reason(h, "ScaleUpLimit: the desired replica count is increasing faster than the "
                              "maximum scale rate");
        } else if (desired > max_allowed) {
            set_reason(h, "TooManyReplicas: the desired replica count is more than the maximum "
                          "replica count");
        }
        return desired > max_allowed ? max_allowed : desired;
    }
    if (desired < current) {
        int limit = scale_down_limit(h, current, now), min_allowed = h->spec.min_replicas;
        if (limit > current)
            limit = current;
        if (min_allowed < limit) {
            min_allowed = limit;
            if (desired < min_allowed)
                set_reason(h, "ScaleDownLimit: the desired replica count is decreasing faster than "
                              "the maximum scale rate");
        } else if (desired < min_allowed) {
            set_reason(h, "TooFewReplicas: the desired replica count is less than the minimum "
                          "replica count");
        }
        return desired < min_allowed ? min_allowed : desired;
    }
    return desired;
}

/* convertDesiredReplicasWithRules (no behavior). */
static int rules_rate(struct hpa *h, int current, int desired)
{
    /* scaleUpLimitFactor 2.0, scaleUpLimitMinimum 4.0: do not scale up too
     * much at once on a bogus metric (kubernetes issue #32304). */
    int limit = 2 * current > 4 ? 2 * current : 4;
    int max_allowed = h->spec.max_replicas > limit ? limit : h->spec.max_replicas;

    if (desired < h->spec.min_replicas) {
        set_reason(h, "TooFewReplicas: the desired replica count is less than the minimum replica count");
        return h->spec.min_replicas;
    }
    if (desired > max_allowed) {
        set_reason(h, "%s", h->spec.max_replicas > limit
                   ? "ScaleUpLimit: the desired replica count is increasing faster than the maximum scale rate"
                   : "TooManyReplicas: the desired replica count is more than the maximum replica count");
        return max_allowed;
    }
    return desired;
}

/* storeScaleEvent */
static void store_event(struct hpa *h, int prev, int next, double now)
{
    events *ev = next > prev ? &h->up : &h->down;
    const as_hpa_rules *r = next > prev ? &h->spec.scale_up : &h->spec.scale_down;
    int longest = 0, old = -1;

    if (!h->spec.has_behavior)
        return; /* the events would not be used */
    for (int i = 0; i < r->n_policies; i++)
        longest = imax(longest, r->policies[i].period_s);
    for (int i = 0; i < ev->n; i++) /* markScaleEventsOutdated */
        if (ev->e[i].t < now - longest)
            ev->e[i].outdated = 1;
    for (int i = 0; i < ev->n; i++)
        if (ev->e[i].outdated)
            old = i;
    if (old >= 0) {
        ev->e[old] = (event_t){ next > prev ? next - prev : prev - next, now, 0 };
        return;
    }
    if (ev->n == ev->cap) {
        int cap = ev->cap ? 2 * ev->cap : 8;
        event_t *e = realloc(ev->e, (size_t)cap * sizeof *e);
        if (!e)
            return;
        ev->e = e;
        ev->cap = cap;
    }
    ev->e[ev->n++] = (event_t){ next > prev ? next - prev : prev - next, now, 0 };
}

/* reconcileAutoscaler, from the scale read to the scale update. */
static int hpa_recommend(void *state, const as_view *v)
{
    struct hpa *h = state;
    int current = v->current_replicas, desired;
    double now = v->now_s;
    const char *which = "";

    if (h->n_recs == 0) /* recordInitialRecommendation */
        record(h, current, now, -1);
    h->reason[0] = '\0';
    if (current == 0 && h->spec.min_replicas != 0) {
        set_reason(h, "ScalingDisabled: scaling is disabled since the replica count of the target is zero");
        return 0;
    }
    if (current > h->spec.max_replicas) {
        set_reason(h, "Current number of replicas above Spec.MaxReplicas");
        desired = h->spec.max_replicas;
    } else if (current < h->spec.min_replicas) {
        set_reason(h, "Current number of replicas below Spec.MinReplicas");
        desired = h->spec.min_replicas;
    } else {
        /* behavior tolerances (alpha HPAConfigurableTolerance) override the flag */
        tolerances tol = { h->spec.scale_down.tolerance >= 0 ? h->spec.scale_down.tolerance : h->tolerance,
                           h->spec.scale_up.tolerance >= 0 ? h->spec.scale_up.tolerance : h->tolerance };
        int metric = replicas_for_metrics(h, v, tol, &which);
        if (metric < 0)
            return AS_KEEP; /* FailedComputeMetricsReplicas: no change, nothing recorded */
        desired = metric > 0 ? metric : 0;
        if (desired > current)
            set_reason(h, "%s above target", which);
        else if (desired < current)
            set_reason(h, "All metrics below target");
        else
            set_reason(h, "ReadyForNewScale: recommended size matches current size");
        if (!h->spec.has_behavior) {
            int stab = stabilize(h, desired, now);
            if (stab != desired)
                set_reason(h, "ScaleDownStabilized: recent recommendations were higher than current "
                              "one, applying the highest recent recommendation");
            desired = rules_rate(h, current, stab);
        } else {
            int stab = stabilize_with_behavior(h, current, desired, now);
            if (stab != desired)
                set_reason(h, "%s", desired >= current
                           ? "ScaleUpStabilized: recent recommendations were lower than current one, "
                             "applying the lowest recent recommendation"
                           : "ScaleDownStabilized: recent recommendations were higher than current "
                             "one, applying the highest recent recommendation");
            desired = behavior_rate(h, current, stab, now);
        }
    }
    if (desired != current)
        store_event(h, current, desired, now);
    return desired;
}

const struct as_ops as_hpa = {
    .name = "hpa",
    .summary = "Kubernetes HorizontalPodAutoscaler (autoscaling/v2 manifest), as the controller computes it",
    .keys = hpa_keys,
    .init = hpa_init,
    .recommend = hpa_recommend,
    .period_s = hpa_period,
    .reason = hpa_reason,
    .destroy = hpa_destroy,
};
