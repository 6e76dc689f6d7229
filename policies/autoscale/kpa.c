/*
 * kpa.c - the Knative Pod Autoscaler: scale on observed concurrency (or
 * requests per second) against target x utilization, over a stable window
 * and a short panic window, with panic mode, rate limits and scale to zero.
 *
 * Followed:
 * - knative/serving pkg/autoscaler/scaling/autoscaler.go (Scale): desired
 *   pods = ceil(observed / (target x utilization)) for the stable and the
 *   panic window, kept within [floor(ready / max-scale-down-rate),
 *   ceil(max-scale-up-rate x ready)] with ready = max(1, ready pods); panic
 *   starts when the panic-window count reaches panic-threshold x ready,
 *   is extended while it holds, and ends only once a full stable window has
 *   passed since it last held; in panic the count never goes down (the
 *   maxPanicPods ratchet); an optional scale-down-delay keeps the maximum of
 *   that window. A new autoscaler starts in panic when more than one pod is
 *   ready, so a restart does not scale down on an empty history.
 * - pkg/autoscaler/aggregation/bucketing.go (TimedFloat64Buckets,
 *   WindowAverage): one-second buckets; the average is over the buckets
 *   written so far while the window is not yet full, over the window after,
 *   and 0 once nothing was written for a whole window; values floored to 6
 *   decimals.
 * - pkg/reconciler/autoscaling/kpa/scaler.go (applyBounds,
 *   handleScaleToZero): min/max scale, and a desired count of 0 is applied
 *   only once it has held for scale-to-zero-grace-period (Knative waits for
 *   the activator to be in the request path that long); until then one pod
 *   is kept. This folds the PA's active/inactive states into one timer.
 *
 * Defaults are Knative's config-autoscaler: target 100 concurrent requests
 * (rps mode: 200/s), utilization 70%, stable window 60 s, panic window 10%
 * of it, panic threshold 200%, max scale-up rate 1000, max scale-down rate 2,
 * scale to zero on with a 30 s grace period, a 2 s tick.
 *
 * The engine gives the pool's mean concurrency ("concurrency", requests
 * buffered at the balancer or activator included) or arrival rate
 * ("requests_per_second") over the interval since the previous call; that
 * value is written into each one-second bucket of the interval, which is
 * what Knative's one-second scrapes would have recorded.
 */
#include "autoscale.h"
#include "as_policies.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* TimedFloat64Buckets with a one-second granularity. */
typedef struct {
    double *b;
    int n;                 /* buckets in the window */
    long first, last;      /* first and last second written */
    int empty;
    double total;          /* sum of the buckets in the window */
} buckets;

typedef struct {
    double t;
    int v;
} delay_rec;

struct kpa {
    double target, utilization, stable_s, panic_pct, panic_threshold;
    double max_up_rate, max_down_rate, grace_s, delay_s, tick_s;
    int rps, scale_to_zero, min_scale, max_scale, activation_scale;
    buckets stable, panic;
    double last_now;       /* previous call; NAN before the first */
    int started;
    double panic_time;     /* NAN = not panicking */
    int max_panic_pods;
    double zero_since;     /* NAN = desired not at 0 */
    delay_rec *delay;
    int n_delay, cap_delay;
    char reason[200];
};

static const char *const kpa_keys[] = {
    "metric", "target", "target_utilization", "stable_window", "panic_window_percentage",
    "panic_threshold_percentage", "max_scale_up_rate", "max_scale_down_rate", "scale_to_zero",
    "scale_to_zero_grace_period", "scale_down_delay", "tick", "min_scale", "max_scale",
    "activation_scale", NULL
};

static int buckets_init(buckets *bk, double window_s)
{
    bk->n = (int)ceil(window_s);
    if (bk->n < 1)
        bk->n = 1;
    bk->b = calloc((size_t)bk->n, sizeof *bk->b);
    bk->empty = 1;
    return bk->b != NULL;
}

static long mod(long a, int n)
{
    long r = a % n;
    return r < 0 ? r + n : r;
}

/* TimedFloat64Buckets.Record */
static void buckets_record(buckets *bk, long sec, double v)
{
    if (bk->empty) {
        memset(bk->b, 0, (size_t)bk->n * sizeof *bk->b);
        bk->total = 0;
        bk->first = bk->last = sec;
        bk->empty = 0;
    } else if (sec > bk->last) {
        if (sec - bk->last >= bk->n) { /* nothing for a whole window: start over */
            memset(bk->b, 0, (size_t)bk->n * sizeof *bk->b);
            bk->total = 0;
            bk->first = sec;
        } else {
            for (long i = bk->last + 1; i <= sec; i++) {
                bk->total -= bk->b[mod(i, bk->n)];
                bk->b[mod(i, bk->n)] = 0;
            }
        }
        bk->last = sec;
    } else if (sec + bk->n <= bk->last) {
        return; /* older than the window */
    }
    if (sec < bk->first)
        bk->first = sec;
    bk->b[mod(sec, bk->n)] += v;
    bk->total += v;
}

static double floor6(double x)
{
    return floor(x * 1e6) / 1e6;
}

/* TimedFloat64Buckets.WindowAverage; *ok = 0 when no data in the window. */
static double buckets_avg(const buckets *bk, long now, int *ok)
{
    long d, nb;
    double ret;

    *ok = 0;
    if (bk->empty)
        return 0;
    d = now - bk->last;
    if (d <= 0) {
        nb = bk->last - bk->first + 1;
        if (nb > bk->n)
            nb = bk->n;
        *ok = 1;
        return floor6(bk->total / (double)nb);
    }
    if (d < bk->n) {
        ret = bk->total;
        for (long i = bk->last + 1; i <= now; i++)
            ret -= bk->b[mod(i, bk->n)];
        nb = bk->last - bk->first + 1;
        if (nb > bk->n - d)
            nb = bk->n - d;
        *ok = 1;
        return floor6(ret / (double)nb);
    }
    return 0; /* nothing for a whole window */
}

static void kpa_destroy(void *state)
{
    struct kpa *k = state;
    if (!k)
        return;
    free(k->stable.b);
    free(k->panic.b);
    free(k->delay);
    free(k);
}

static void *kpa_init(const as_config *cfg, char *err, size_t errlen)
{
    struct kpa *k;
    const as_param *mp;
    double panic_pct_raw = 10, thr_pct = 200;

    if (as_check_keys(cfg, kpa_keys, err, errlen))
        return NULL;
    k = calloc(1, sizeof *k);
    if (!k)
        return as_fail(err, errlen, cfg, NULL, "out of memory");
    mp = as_param_find(cfg, "metric");
    if (mp && mp->value && strcmp(mp->value, "rps") == 0)
        k->rps = 1;
    else if (mp && !(mp->value && strcmp(mp->value, "concurrency") == 0)) {
        as_fail(err, errlen, cfg, mp, "metric: expected concurrency or rps, got '%s'",
                mp->value ? mp->value : "");
        goto fail;
    }
    k->target = k->rps ? 200.0 : 100.0;
    k->utilization = 0.7;
    k->stable_s = 60.0;
    k->max_up_rate = 1000.0;
    k->max_down_rate = 2.0;
    k->scale_to_zero = 1;
    k->grace_s = 30.0;
    k->tick_s = 2.0;
    k->activation_scale = 1;
    if (as_param_number(cfg, "target", &k->target, err, errlen) < 0 ||
        as_param_fraction(cfg, "target_utilization", &k->utilization, err, errlen) < 0 ||
        as_param_duration(cfg, "stable_window", &k->stable_s, err, errlen) < 0 ||
        as_param_number(cfg, "panic_window_percentage", &panic_pct_raw, err, errlen) < 0 ||
        as_param_number(cfg, "panic_threshold_percentage", &thr_pct, err, errlen) < 0 ||
        as_param_number(cfg, "max_scale_up_rate", &k->max_up_rate, err, errlen) < 0 ||
        as_param_number(cfg, "max_scale_down_rate", &k->max_down_rate, err, errlen) < 0 ||
        as_param_bool(cfg, "scale_to_zero", &k->scale_to_zero, err, errlen) < 0 ||
        as_param_duration(cfg, "scale_to_zero_grace_period", &k->grace_s, err, errlen) < 0 ||
        as_param_duration(cfg, "scale_down_delay", &k->delay_s, err, errlen) < 0 ||
        as_param_duration(cfg, "tick", &k->tick_s, err, errlen) < 0 ||
        as_param_int(cfg, "min_scale", &k->min_scale, err, errlen) < 0 ||
        as_param_int(cfg, "max_scale", &k->max_scale, err, errlen) < 0 ||
        as_param_int(cfg, "activation_scale", &k->activation_scale, err, errlen) < 0)
        goto fail;
    /* Ranges from Knative's config validation (pkg/autoscaler/config). */
    if (!(k->target >= 0.01)) {
        as_fail(err, errlen, cfg, as_param_find(cfg, "target"), "target must be >= 0.01");
        goto fail;
    }
    if (!(k->utilization >= 0.01 && k->utilization <= 1.0)) {
        as_fail(err, errlen, cfg, as_param_find(cfg, "target_utilization"),
                "target_utilization must be in [1%%, 100%%]");
        goto fail;
    }
    if (!(k->stable_s >= 6 && k->stable_s <= 3600) || fmod(k->stable_s, 1.0) != 0) {
        as_fail(err, errlen, cfg, as_param_find(cfg, "stable_window"),
                "stable_window must be whole seconds in [6s, 1h]");
        goto fail;
    }
    if (!(panic_pct_raw >= 1 && panic_pct_raw <= 100)) {
        as_fail(err, errlen, cfg, as_param_find(cfg, "panic_window_percentage"),
                "panic_window_percentage must be in [1, 100]");
        goto fail;
    }
    if (!(thr_pct >= 110 && thr_pct <= 1000)) {
        as_fail(err, errlen, cfg, as_param_find(cfg, "panic_threshold_percentage"),
                "panic_threshold_percentage must be in [110, 1000]");
        goto fail;
    }
    if (!(k->max_up_rate > 1.0) || !(k->max_down_rate > 1.0)) {
        as_fail(err, errlen, cfg, as_param_find(cfg, k->max_up_rate > 1.0 ? "max_scale_down_rate"
                                                                          : "max_scale_up_rate"),
                "max_scale_up_rate and max_scale_down_rate must be > 1");
        goto fail;
    }
    if (!(k->tick_s > 0)) {
        as_fail(err, errlen, cfg, as_param_find(cfg, "tick"), "tick must be > 0");
        goto fail;
    }
    if (k->max_scale > 0 && k->min_scale > k->max_scale) {
        as_fail(err, errlen, cfg, as_param_find(cfg, "min_scale"), "min_scale must be <= max_scale");
        goto fail;
    }
    k->panic_pct = panic_pct_raw;
    k->panic_threshold = thr_pct / 100.0;
    /* the panic window is a percentage of the stable window, at least one tick */
    if (!buckets_init(&k->stable, k->stable_s) ||
        !buckets_init(&k->panic, fmax(k->stable_s * k->panic_pct / 100.0, 1.0))) {
        as_fail(err, errlen, cfg, NULL, "out of memory");
        goto fail;
    }
    k->last_now = NAN;
    k->panic_time = NAN;
    k->zero_since = NAN;
    return k;
fail:
    kpa_destroy(k);
    return NULL;
}

static double kpa_period(const void *state)
{
    return ((const struct kpa *)state)->tick_s;
}

static const char *kpa_reason(const void *state)
{
    return ((const struct kpa *)state)->reason;
}

/* max.TimeWindow: the largest count recorded within scale_down_delay. */
static int delayed(struct kpa *k, double now, int v)
{
    int best = v, keep = 0;

    for (int i = 0; i < k->n_delay; i++)
        if (k->delay[i].t > now - k->delay_s)
            k->delay[keep++] = k->delay[i];
    k->n_delay = keep;
    if (k->n_delay == k->cap_delay) {
        int cap = k->cap_delay ? 2 * k->cap_delay : 32;
        delay_rec *d = realloc(k->delay, (size_t)cap * sizeof *d);
        if (!d)
            return v;
        k->delay = d;
        k->cap_delay = cap;
    }
    k->delay[k->n_delay++] = (delay_rec){ now, v };
    for (int i = 0; i < k->n_delay; i++)
        if (k->delay[i].v > best)
            best = k->delay[i].v;
    return best;
}

static int kpa_recommend(void *state, const as_view *v)
{
    struct kpa *k = state;
    double now = v->now_s, x, stable, panic, ready_f, max_up, max_down, dspc, dppc, target;
    long now_sec = (long)floor(now);
    int ready = 0, ok_s, ok_p, desired_stable, desired_panic, desired, over;

    for (int i = 0; i < v->n_pods; i++)
        ready += v->pods[i].phase == AS_POD_RUNNING && v->pods[i].ready;
    if (!k->started) { /* newAutoscaler: start in panic with more than one pod */
        k->started = 1;
        if (ready > 1) {
            k->panic_time = now;
            k->max_panic_pods = ready;
        }
    }
    if (as_view_metric(v, k->rps ? "requests_per_second" : "concurrency", &x)) {
        /* the interval since the previous call, one bucket per second */
        long from = isnan(k->last_now) ? now_sec : (long)floor(k->last_now) + 1;
        if (from > now_sec)
            from = now_sec;
        if (now_sec - from >= k->stable.n)
            from = now_sec - k->stable.n + 1;
        for (long s = from; s <= now_sec; s++) {
            buckets_record(&k->stable, s, x);
            buckets_record(&k->panic, s, x);
        }
    }
    k->last_now = now;
    stable = buckets_avg(&k->stable, now_sec, &ok_s);
    panic = buckets_avg(&k->panic, now_sec, &ok_p);
    if (!ok_s || !ok_p) {
        snprintf(k->reason, sizeof k->reason, "no data to scale on yet");
        return AS_KEEP;
    }

    ready_f = fmax(1.0, (double)ready);
    target = k->target * k->utilization;
    max_up = ceil(k->max_up_rate * ready_f);
    max_down = floor(ready_f / k->max_down_rate);
    dspc = ceil(stable / target);
    dppc = ceil(panic / target);
    desired_stable = (int)fmin(fmax(dspc, max_down), max_up);
    desired_panic = (int)fmin(fmax(dppc, max_down), max_up);
    if (k->activation_scale > 1) {
        if (dspc > 0 && k->activation_scale > desired_stable)
            desired_stable = k->activation_scale;
        if (dppc > 0 && k->activation_scale > desired_panic)
            desired_panic = k->activation_scale;
    }

    over = dppc / ready_f >= k->panic_threshold;
    if (over) {
        k->panic_time = now; /* begin panicking, or extend the panic */
    } else if (!isnan(k->panic_time) && k->panic_time + k->stable_s < now) {
        k->panic_time = NAN; /* the surge has made its way into the stable window */
        k->max_panic_pods = 0;
    }
    desired = desired_stable;
    if (!isnan(k->panic_time)) {
        if (desired < desired_panic)
            desired = desired_panic;
        if (desired > k->max_panic_pods)
            k->max_panic_pods = desired;
        desired = k->max_panic_pods; /* never scale down in panic */
        snprintf(k->reason, sizeof k->reason,
                 "panic: stable %.3f, panic %.3f per %.3f target over %d ready pods", stable, panic,
                 target, ready);
    } else {
        snprintf(k->reason, sizeof k->reason, "stable: %.3f per %.3f target over %d ready pods",
                 stable, target, ready);
    }
    if (k->delay_s > 0)
        desired = delayed(k, now, desired);

    /* scaler.go: applyBounds, then handleScaleToZero */
    if (desired < k->min_scale)
        desired = k->min_scale;
    if (k->max_scale > 0 && desired > k->max_scale)
        desired = k->max_scale;
    if (desired == 0) {
        if (!k->scale_to_zero) {
            desired = 1;
        } else {
            if (isnan(k->zero_since))
                k->zero_since = now;
            if (now - k->zero_since < k->grace_s) {
                desired = v->current_replicas > 0 ? 1 : 0;
                snprintf(k->reason, sizeof k->reason, "idle: scale to zero after the %.0f s grace period",
                         k->grace_s);
            }
        }
    } else {
        k->zero_since = NAN;
    }
    return desired;
}

const struct as_ops as_kpa = {
    .name = "kpa",
    .summary = "Knative Pod Autoscaler: concurrency or rps over stable/panic windows, scale to zero",
    .keys = kpa_keys,
    .init = kpa_init,
    .recommend = kpa_recommend,
    .period_s = kpa_period,
    .reason = kpa_reason,
    .destroy = kpa_destroy,
};
