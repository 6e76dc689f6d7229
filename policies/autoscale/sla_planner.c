/*
 * sla_planner.c - NVIDIA Dynamo's SLA planner: sizes an LLM pool from the
 * load it predicts for the next adjustment interval and the TTFT and ITL
 * targets, rather than from utilisation.
 *
 * Followed: ai-dynamo/dynamo components/planner/src/dynamo/planner/utils/
 * planner_core.py (Planner.observe_metrics, make_adjustments,
 * _compute_replica_requirements), utils/load_predictor.py (the predictors),
 * utils/perf_interpolation.py (what the profile answers), defaults.py
 * (SLAPlannerDefaults). Every adjustment interval:
 *
 * 1. observe the interval: requests, mean ISL and OSL, mean TTFT, ITL and
 *    request duration (the view's llm_* metrics); the request count, ISL
 *    and OSL go to one predictor each (a missing value counts as 0, as
 *    BasePredictor.add_data_point does with NaN). Without a TTFT, ITL, ISL
 *    or OSL (no traffic) the interval is skipped: no change;
 * 2. correction factors: TTFT observed / TTFT of one ISL prompt alone (the
 *    profile's prefill), and ITL observed / ITL of a decode step at the
 *    concurrency Little's law gives per engine replica
 *    (requests / replicas x request duration / interval) and context
 *    ISL + OSL / 2;
 * 3. predict next: requests, ISL, OSL;
 * 4. prefill replicas = ceil(requests x ISL / interval x min(1, TTFT
 *    correction) / (ISL / prefill time of ISL)); the min(1, .) is Dynamo's:
 *    a TTFT above the profile's (queueing) does not raise the count, one
 *    below it lowers it;
 *    decode replicas = ceil(requests x OSL / interval / best decode
 *    throughput), the best throughput being that of the largest batch whose
 *    step at context ISL + OSL / 2 meets ITL target / ITL correction (at
 *    most max_num_seqs, and what the KV cache holds at that context; a
 *    batch of 1 when none meets it, as find_best_throughput_per_gpu falls
 *    back to its lowest KV load);
 *    each at least min_endpoint.
 *
 * A fleetsim pool is one of Dynamo's components: `role: prefill` sizes it
 * by the prefill formula, `decode` by the decode one. Dynamo plans
 * disaggregated deployments only; for `role: mixed` (every pool until
 * prefill/decode pools exist) a replica does both, so the pool gets the sum
 * of the two demands in replicas, ceil(prefill share + decode share): this
 * sum is fleetsim's, not Dynamo's. Throughputs are per engine replica (Dynamo's per
 * GPU x GPUs per engine) and a pod holds replicas_per_pod of them.
 *
 * Predictors: `constant` (the last value: ConstantPredictor) and
 * `moving_average` (the mean of the last `prediction_window` values, 0
 * before the first). Dynamo's default, `arima` (pmdarima's auto_arima), and
 * `prophet` are not implemented. Its GPU budget (max_gpu_budget) is the
 * pool's max_replicas here.
 */
#include "autoscale.h"
#include "as_policies.h"

#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { PRED_CONSTANT, PRED_MOVING_AVERAGE };
enum { ROLE_MIXED, ROLE_PREFILL, ROLE_DECODE };

typedef struct {
    double *ring;     /* the last `window` values */
    int window, n, head;
} predictor;

struct sla {
    double ttft_s, itl_s, interval_s;
    int kind, role, min_endpoint, no_correction;
    predictor num_req, isl, osl;
    double p_corr, d_corr;
    char reason[384];
};

static const char *const sla_keys[] = { "ttft", "itl", "adjustment_interval", "load_predictor",
                                        "prediction_window", "role", "min_endpoint",
                                        "no_correction", NULL };

static void pred_add(predictor *p, double x)
{
    if (isnan(x))
        x = 0;
    p->ring[p->head] = x;
    p->head = (p->head + 1) % p->window;
    if (p->n < p->window)
        p->n++;
}

static double pred_next(const predictor *p, int kind)
{
    if (p->n == 0)
        return 0;
    if (kind == PRED_CONSTANT)
        return p->ring[(p->head + p->window - 1) % p->window];
    double s = 0;
    for (int i = 0; i < p->n; i++)
        s += p->ring[i];
    return s / p->n;
}

static void sla_destroy(void *state)
{
    struct sla *s = state;
    if (!s)
        return;
    free(s->num_req.ring);
    free(s->isl.ring);
    free(s->osl.ring);
    free(s);
}

static int pick(const as_config *cfg, const char *key, const char *const *names, int *out, char *err,
                size_t errlen)
{
    const as_param *p = as_param_find(cfg, key);
    if (!p)
        return 0;
    for (int i = 0; names[i]; i++)
        if (p->value && strcmp(p->value, names[i]) == 0) {
            *out = i;
            return 1;
        }
    char list[128] = "";
    for (int i = 0; names[i]; i++)
        snprintf(list + strlen(list), sizeof list - strlen(list), "%s%s", i ? ", " : "", names[i]);
    as_fail(err, errlen, cfg, p, "%s: expected one of %s, got '%s'", key, list,
            p->value ? p->value : "");
    return -1;
}

static void *sla_init(const as_config *cfg, char *err, size_t errlen)
{
    static const char *const predictors[] = { "constant", "moving_average", NULL };
    static const char *const roles[] = { "mixed", "prefill", "decode", NULL };
    if (as_check_keys(cfg, sla_keys, err, errlen))
        return NULL;
    struct sla *s = calloc(1, sizeof *s);
    if (!s)
        return as_fail(err, errlen, cfg, NULL, "out of memory");
    /* SLAPlannerDefaults (defaults.py) */
    s->ttft_s = 0.5;
    s->itl_s = 0.05;
    s->interval_s = 180;
    s->min_endpoint = 1;
    s->kind = PRED_CONSTANT;
    s->role = ROLE_MIXED;
    int window = 50;
    s->p_corr = s->d_corr = 1.0;
    if (as_param_duration(cfg, "ttft", &s->ttft_s, err, errlen) < 0 ||
        as_param_duration(cfg, "itl", &s->itl_s, err, errlen) < 0 ||
        as_param_duration(cfg, "adjustment_interval", &s->interval_s, err, errlen) < 0 ||
        pick(cfg, "load_predictor", predictors, &s->kind, err, errlen) < 0 ||
        as_param_int(cfg, "prediction_window", &window, err, errlen) < 0 ||
        pick(cfg, "role", roles, &s->role, err, errlen) < 0 ||
        as_param_int(cfg, "min_endpoint", &s->min_endpoint, err, errlen) < 0 ||
        as_param_bool(cfg, "no_correction", &s->no_correction, err, errlen) < 0)
        goto fail;
    static const char *const positive[] = { "ttft", "itl", "adjustment_interval" };
    double *vals[] = { &s->ttft_s, &s->itl_s, &s->interval_s };
    for (int i = 0; i < 3; i++)
        if (!(*vals[i] > 0)) {
            as_fail(err, errlen, cfg, as_param_find(cfg, positive[i]), "%s must be > 0", positive[i]);
            goto fail;
        }
    if (window < 1) {
        as_fail(err, errlen, cfg, as_param_find(cfg, "prediction_window"),
                "prediction_window must be >= 1");
        goto fail;
    }
    if (as_param_find(cfg, "prediction_window") && s->kind != PRED_MOVING_AVERAGE) {
        as_fail(err, errlen, cfg, as_param_find(cfg, "prediction_window"),
                "prediction_window applies to load_predictor: moving_average");
        goto fail;
    }
    predictor *ps[] = { &s->num_req, &s->isl, &s->osl };
    for (int i = 0; i < 3; i++) {
        ps[i]->window = window;
        ps[i]->ring = calloc((size_t)window, sizeof(double));
        if (!ps[i]->ring) {
            as_fail(err, errlen, cfg, NULL, "out of memory");
            goto fail;
        }
    }
    return s;
fail:
    sla_destroy(s);
    return NULL;
}

static double sla_period(const void *state)
{
    return ((const struct sla *)state)->interval_s;
}

static const char *sla_reason(const void *state)
{
    return ((const struct sla *)state)->reason;
}

static double metric(const as_view *v, const char *name)
{
    double x = NAN;
    as_view_metric(v, name, &x);
    return x;
}

static int ceil_replicas(double x)
{
    double c = ceil(x);
    if (!(c < (double)INT_MAX))
        return INT_MAX;
    return c < 0 ? 0 : (int)c;
}

/* find_best_throughput_per_gpu, per engine replica: the largest batch whose
 * decode step at this context meets itl_s, its sequences over its step time;
 * a batch of 1 when none does. */
static double best_decode_tps(const as_llm_profile *pr, double itl_s, double context)
{
    int max_b = pr->max_batch;
    if (context > 0 && pr->kv_tokens > 0 && pr->kv_tokens / context < max_b)
        max_b = (int)floor(pr->kv_tokens / context);
    if (max_b < 1)
        max_b = 1;
    for (int b = max_b; b >= 1; b--) {
        double t = pr->decode_step_s(pr->ctx, b, context);
        if (t <= itl_s)
            return b / t;
    }
    return 1.0 / pr->decode_step_s(pr->ctx, 1, context);
}

static int sla_recommend(void *state, const as_view *v)
{
    struct sla *s = state;
    const as_llm_profile *pr = v->llm;
    if (!pr) {
        snprintf(s->reason, sizeof s->reason, "not an LLM pool: no profile");
        return AS_KEEP;
    }
    int rpp = pr->replicas_per_pod > 0 ? pr->replicas_per_pod : 1;
    /* observe_metrics */
    double num_req = metric(v, "llm_requests"), isl = metric(v, "llm_isl_mean");
    double osl = metric(v, "llm_osl_mean"), ttft = metric(v, "llm_ttft_mean_s");
    double itl = metric(v, "llm_itl_mean_s"), dur = metric(v, "llm_request_duration_mean_s");
    pred_add(&s->num_req, num_req);
    pred_add(&s->isl, isl);
    pred_add(&s->osl, osl);
    /* make_adjustments: Metrics.is_valid */
    if (isnan(ttft) || isnan(itl) || isnan(isl) || isnan(osl)) {
        snprintf(s->reason, sizeof s->reason,
                 "no TTFT, ITL, ISL or OSL observed in the interval: adjustment skipped");
        return AS_KEEP;
    }
    if (!s->no_correction) {
        int ready = 0;
        for (int i = 0; i < v->n_pods; i++)
            ready += v->pods[i].phase == AS_POD_RUNNING && v->pods[i].ready;
        if (ready == 0 || isnan(dur)) {
            snprintf(s->reason, sizeof s->reason,
                     "no ready replica or no finished request to correct against: adjustment skipped");
            return AS_KEEP;
        }
        /* for TTFT the factor is expected << 1 with queueing, for ITL near 1 */
        s->p_corr = ttft / pr->prefill_s(pr->ctx, isl);
        double conc = num_req / (ready * rpp) * dur / s->interval_s;
        int b = (int)lround(conc);
        s->d_corr = itl / pr->decode_step_s(pr->ctx, b < 1 ? 1 : b, isl + osl / 2);
    }
    /* predict_load */
    double n_req = pred_next(&s->num_req, s->kind), n_isl = pred_next(&s->isl, s->kind);
    double n_osl = pred_next(&s->osl, s->kind);
    /* _compute_replica_requirements */
    double p_tps = n_req * n_isl / s->interval_s * fmin(1.0, s->p_corr);
    double prefill_s = pr->prefill_s(pr->ctx, n_isl);
    double p_cap = (n_isl > 0 ? n_isl : 1) / prefill_s * rpp; /* tokens/s per pod */
    double itl_target = s->d_corr <= 0 ? s->itl_s : s->itl_s / s->d_corr;
    double d_cap = best_decode_tps(pr, itl_target, n_isl + n_osl / 2) * rpp;
    double d_tps = n_req * n_osl / s->interval_s;
    int num_p = ceil_replicas(p_tps / p_cap), num_d = ceil_replicas(d_tps / d_cap);
    int want = s->role == ROLE_PREFILL  ? num_p
               : s->role == ROLE_DECODE ? num_d
                                        : ceil_replicas(p_tps / p_cap + d_tps / d_cap);
    if (want < s->min_endpoint)
        want = s->min_endpoint;
    snprintf(s->reason, sizeof s->reason,
             "predicted %.4g requests, ISL %.4g, OSL %.4g: prefill %.4g tok/s of %.4g per pod "
             "-> %d, decode %.4g tok/s of %.4g per pod -> %d (correction TTFT %.3g, ITL %.3g)%s",
             n_req, n_isl, n_osl, p_tps, p_cap, num_p, d_tps, d_cap, num_d, s->p_corr, s->d_corr,
             prefill_s > s->ttft_s ? "; a prompt alone takes longer than the TTFT target" : "");
    return want;
}

const struct as_ops as_sla_planner = {
    .name = "sla_planner",
    .summary = "NVIDIA Dynamo's SLA planner: replicas from predicted load, TTFT and ITL targets (LLM pools)",
    .keys = sla_keys,
    .needs_llm = 1,
    .init = sla_init,
    .recommend = sla_recommend,
    .period_s = sla_period,
    .reason = sla_reason,
    .destroy = sla_destroy,
};
