/*
 * threshold.c - the classic step rule: scale out by `step` replicas when the
 * mean utilisation of the ready pods is above `scale_out_above` (the seed's
 * "scale out when CPU > 85%"), scale in by `scale_in_step` when it is below
 * `scale_in_below`, each direction with its own cool-down after any scaling
 * (as in an AWS simple scaling policy or a Prometheus-alert-driven script).
 *
 * The utilisation is the sampler's windowed mean (cpu_util or gpu_util of
 * as_pod_view) averaged over Running, ready pods that have a sample. A
 * scale-in is also refused when the same load on fewer pods would be above
 * scale_out_above (util x n / (n - step)), so the rule cannot flap between
 * the two thresholds. Bounds are the view's (the scenario pool's) unless
 * min_replicas / max_replicas are given.
 */
#include "autoscale.h"
#include "as_policies.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct threshold {
    int gpu;
    double out_above, in_below, out_cooldown_s, in_cooldown_s, period_s;
    int step, in_step, min_r, max_r;
    double last_scale_s;
    char reason[160];
};

static const char *const th_keys[] = { "metric", "scale_out_above", "scale_in_below", "step",
                                       "scale_in_step", "cooldown", "scale_out_cooldown",
                                       "scale_in_cooldown", "period", "min_replicas", "max_replicas",
                                       NULL };

static void *th_init(const as_config *cfg, char *err, size_t errlen)
{
    struct threshold *t;
    const as_param *m;
    double cooldown = 300.0;

    if (as_check_keys(cfg, th_keys, err, errlen))
        return NULL;
    t = calloc(1, sizeof *t);
    if (!t)
        return as_fail(err, errlen, cfg, NULL, "out of memory");
    m = as_param_find(cfg, "metric");
    if (m && m->value && strcmp(m->value, "gpu") == 0)
        t->gpu = 1;
    else if (m && !(m->value && strcmp(m->value, "cpu") == 0)) {
        as_fail(err, errlen, cfg, m, "metric: expected cpu or gpu, got '%s'", m->value ? m->value : "");
        goto fail;
    }
    t->out_above = 0.85;
    t->in_below = 0.40;
    t->step = 1;
    t->in_step = -1;
    t->period_s = 15.0;
    t->min_r = -1;
    t->max_r = -1;
    if (as_param_fraction(cfg, "scale_out_above", &t->out_above, err, errlen) < 0 ||
        as_param_fraction(cfg, "scale_in_below", &t->in_below, err, errlen) < 0 ||
        as_param_int(cfg, "step", &t->step, err, errlen) < 0 ||
        as_param_int(cfg, "scale_in_step", &t->in_step, err, errlen) < 0 ||
        as_param_duration(cfg, "cooldown", &cooldown, err, errlen) < 0 ||
        as_param_duration(cfg, "period", &t->period_s, err, errlen) < 0 ||
        as_param_int(cfg, "min_replicas", &t->min_r, err, errlen) < 0 ||
        as_param_int(cfg, "max_replicas", &t->max_r, err, errlen) < 0)
        goto fail;
    t->out_cooldown_s = t->in_cooldown_s = cooldown;
    if (as_param_duration(cfg, "scale_out_cooldown", &t->out_cooldown_s, err, errlen) < 0 ||
        as_param_duration(cfg, "scale_in_cooldown", &t->in_cooldown_s, err, errlen) < 0)
        goto fail;
    if (t->in_step < 0)
        t->in_step = t->step;
    if (t->step < 1 || t->in_step < 1) {
        as_fail(err, errlen, cfg, as_param_find(cfg, t->step < 1 ? "step" : "scale_in_step"),
                "steps must be >= 1");
        goto fail;
    }
    if (!(t->in_below < t->out_above)) {
        as_fail(err, errlen, cfg, as_param_find(cfg, "scale_in_below"),
                "scale_in_below (%g) must be below scale_out_above (%g)", t->in_below, t->out_above);
        goto fail;
    }
    if (!(t->period_s > 0)) {
        as_fail(err, errlen, cfg, as_param_find(cfg, "period"), "period must be > 0");
        goto fail;
    }
    if (t->max_r >= 0 && t->min_r > t->max_r) {
        as_fail(err, errlen, cfg, as_param_find(cfg, "min_replicas"), "min_replicas must be <= max_replicas");
        goto fail;
    }
    t->last_scale_s = -INFINITY;
    return t;
fail:
    free(t);
    return NULL;
}

static double th_period(const void *state)
{
    return ((const struct threshold *)state)->period_s;
}

static const char *th_reason(const void *state)
{
    return ((const struct threshold *)state)->reason;
}

static int th_recommend(void *state, const as_view *v)
{
    struct threshold *t = state;
    double sum = 0.0, util;
    int n = 0, cur = v->current_replicas, desired = cur;
    int lo = t->min_r >= 0 ? t->min_r : v->min_replicas;
    int hi = t->max_r >= 0 ? t->max_r : v->max_replicas;

    for (int i = 0; i < v->n_pods; i++) {
        const as_pod_view *p = &v->pods[i];
        if (p->phase == AS_POD_RUNNING && p->ready && p->has_metrics) {
            sum += t->gpu ? p->gpu_util : p->cpu_util;
            n++;
        }
    }
    if (n == 0) {
        snprintf(t->reason, sizeof t->reason, "no ready pod with metrics");
        return AS_KEEP;
    }
    util = sum / n;
    if (util > t->out_above) {
        if (v->now_s - t->last_scale_s < t->out_cooldown_s)
            snprintf(t->reason, sizeof t->reason, "%s %.1f%% > %.1f%% but cooling down",
                     t->gpu ? "gpu" : "cpu", 100 * util, 100 * t->out_above);
        else {
            desired = cur + t->step;
            snprintf(t->reason, sizeof t->reason, "%s %.1f%% > %.1f%%: +%d", t->gpu ? "gpu" : "cpu",
                     100 * util, 100 * t->out_above, t->step);
        }
    } else if (util < t->in_below && cur - t->in_step >= (lo > 1 ? lo : 1)) {
        double projected = util * cur / (double)(cur - t->in_step);
        if (v->now_s - t->last_scale_s < t->in_cooldown_s)
            snprintf(t->reason, sizeof t->reason, "%s %.1f%% < %.1f%% but cooling down",
                     t->gpu ? "gpu" : "cpu", 100 * util, 100 * t->in_below);
        else if (projected > t->out_above)
            snprintf(t->reason, sizeof t->reason, "%s %.1f%% < %.1f%% but %d fewer would be %.1f%%",
                     t->gpu ? "gpu" : "cpu", 100 * util, 100 * t->in_below, t->in_step, 100 * projected);
        else {
            desired = cur - t->in_step;
            snprintf(t->reason, sizeof t->reason, "%s %.1f%% < %.1f%%: -%d", t->gpu ? "gpu" : "cpu",
                     100 * util, 100 * t->in_below, t->in_step);
        }
    } else {
        snprintf(t->reason, sizeof t->reason, "%s %.1f%% within [%.1f%%, %.1f%%]", t->gpu ? "gpu" : "cpu",
                 100 * util, 100 * t->in_below, 100 * t->out_above);
    }
    if (desired < lo)
        desired = lo;
    if (hi > 0 && desired > hi)
        desired = hi;
    if (desired != cur)
        t->last_scale_s = v->now_s;
    return desired;
}

const struct as_ops as_threshold = {
    .name = "threshold",
    .summary = "step rule: +step when utilisation > scale_out_above, -step below scale_in_below, cool-downs",
    .keys = th_keys,
    .init = th_init,
    .recommend = th_recommend,
    .period_s = th_period,
    .reason = th_reason,
};
