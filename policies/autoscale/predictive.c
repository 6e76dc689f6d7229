/*
 * predictive.c - scale ahead of a forecast of the arrival rate.
 *
 * Every period the engine gives the pool's arrival rate ("arrival_rate_qps",
 * mean since the previous call). The policy keeps a Holt linear-trend model
 * (method: holt) or an additive Holt-Winters model with a daily or other
 * season (method: holt_winters), forecasts the rate lead_time ahead - by
 * default the view's startup_s, the time a new pod needs to be provisioned,
 * started and loaded, so capacity ordered now is ready when the load comes -
 * and asks for ceil(max(forecast, current rate) / (capacity_qps x
 * target_utilization)) replicas: never fewer than the rate now needs.
 *
 * Smoothing constants are alpha/beta/gamma as given, or, with fit: true
 * (the default), re-fitted every `refit_every` samples by minimising the
 * one-step-ahead squared error over the stored history with GSL's
 * Nelder-Mead simplex (gsl_multimin_fminimizer_nmsimplex2), each constant
 * kept in (0, 1) through a logistic map. Holt-Winters is plain Holt during
 * the first season, then starts from that season (level = its mean,
 * seasonal terms = each sample minus the mean, trend 0).
 */
#include "autoscale.h"
#include "as_policies.h"

#include <gsl/gsl_errno.h>
#include <gsl/gsl_multimin.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct predictive {
    double capacity_qps, utilization, lead_s, period_s, season_s;
    double alpha, beta, gamma;
    int winters, fit, refit_every, season_n;
    /* model state */
    int n_seen;
    double level, trend;
    double *season;        /* season_n terms, indexed by sample number mod season_n */
    double *first;         /* the first season's samples, for the initialisation */
    /* history for fitting: the last hist_cap samples */
    double *hist;
    int hist_cap, hist_n, hist_head;
    char reason[200];
};

static const char *const pr_keys[] = { "capacity_qps", "target_utilization", "lead_time", "period",
                                       "method", "season", "alpha", "beta", "gamma", "fit",
                                       "refit_every", NULL };

static void pr_destroy(void *state)
{
    struct predictive *p = state;
    if (!p)
        return;
    free(p->season);
    free(p->first);
    free(p->hist);
    free(p);
}

static int unit_interval(const as_config *cfg, const char *key, double v, char *err, size_t errlen)
{
    if (v > 0 && v < 1)
        return 0;
    as_fail(err, errlen, cfg, as_param_find(cfg, key), "%s must be in (0, 1)", key);
    return -1;
}

static void *pr_init(const as_config *cfg, char *err, size_t errlen)
{
    struct predictive *p;
    const as_param *m;

    if (as_check_keys(cfg, pr_keys, err, errlen))
        return NULL;
    p = calloc(1, sizeof *p);
    if (!p)
        return as_fail(err, errlen, cfg, NULL, "out of memory");
    p->utilization = 1.0;
    p->lead_s = -1.0;
    p->period_s = 60.0;
    p->season_s = 86400.0;
    p->alpha = 0.5;
    p->beta = 0.1;
    p->gamma = 0.1;
    p->fit = 1;
    p->refit_every = 60;
    if (as_param_number(cfg, "capacity_qps", &p->capacity_qps, err, errlen) <= 0) {
        if (!as_param_find(cfg, "capacity_qps"))
            as_fail(err, errlen, cfg, NULL, "autoscaler predictive needs `capacity_qps:` (requests per "
                    "second one replica serves)");
        goto fail;
    }
    if (!(p->capacity_qps > 0)) {
        as_fail(err, errlen, cfg, as_param_find(cfg, "capacity_qps"), "capacity_qps must be > 0");
        goto fail;
    }
    m = as_param_find(cfg, "method");
    if (m && m->value && strcmp(m->value, "holt_winters") == 0)
        p->winters = 1;
    else if (m && !(m->value && strcmp(m->value, "holt") == 0)) {
        as_fail(err, errlen, cfg, m, "method: expected holt or holt_winters, got '%s'",
                m->value ? m->value : "");
        goto fail;
    }
    if (as_param_fraction(cfg, "target_utilization", &p->utilization, err, errlen) < 0 ||
        as_param_duration(cfg, "lead_time", &p->lead_s, err, errlen) < 0 ||
        as_param_duration(cfg, "period", &p->period_s, err, errlen) < 0 ||
        as_param_duration(cfg, "season", &p->season_s, err, errlen) < 0 ||
        as_param_number(cfg, "alpha", &p->alpha, err, errlen) < 0 ||
        as_param_number(cfg, "beta", &p->beta, err, errlen) < 0 ||
        as_param_number(cfg, "gamma", &p->gamma, err, errlen) < 0 ||
        as_param_bool(cfg, "fit", &p->fit, err, errlen) < 0 ||
        as_param_int(cfg, "refit_every", &p->refit_every, err, errlen) < 0)
        goto fail;
    if (!(p->utilization > 0 && p->utilization <= 1)) {
        as_fail(err, errlen, cfg, as_param_find(cfg, "target_utilization"),
                "target_utilization must be in (0, 1]");
        goto fail;
    }
    if (!(p->period_s > 0)) {
        as_fail(err, errlen, cfg, as_param_find(cfg, "period"), "period must be > 0");
        goto fail;
    }
    if (unit_interval(cfg, "alpha", p->alpha, err, errlen) || unit_interval(cfg, "beta", p->beta, err, errlen) ||
        unit_interval(cfg, "gamma", p->gamma, err, errlen))
        goto fail;
    if (p->refit_every < 1)
        p->refit_every = 1;
    p->season_n = p->winters ? (int)llround(p->season_s / p->period_s) : 1;
    if (p->winters && (p->season_n < 2 || p->season_n > 100000)) {
        as_fail(err, errlen, cfg, as_param_find(cfg, "season"),
                "season must hold between 2 and 100000 periods (season / period)");
        goto fail;
    }
    p->season = calloc((size_t)p->season_n, sizeof *p->season);
    p->first = calloc((size_t)p->season_n, sizeof *p->first);
    p->hist_cap = p->winters ? 2 * p->season_n : 720;
    p->hist = calloc((size_t)p->hist_cap, sizeof *p->hist);
    if (!p->season || !p->first || !p->hist) {
        as_fail(err, errlen, cfg, NULL, "out of memory");
        goto fail;
    }
    return p;
fail:
    pr_destroy(p);
    return NULL;
}

static double pr_period(const void *state)
{
    return ((const struct predictive *)state)->period_s;
}

static const char *pr_reason(const void *state)
{
    return ((const struct predictive *)state)->reason;
}

/* One Holt(-Winters) update with observation y as sample number t. */
static void update(int winters, int m, double a, double b, double g, double *level, double *trend,
                   double *season, long t, double y)
{
    double s = winters ? season[t % m] : 0.0;
    double prev = *level;

    *level = a * (y - s) + (1 - a) * (*level + *trend);
    *trend = b * (*level - prev) + (1 - b) * *trend;
    if (winters)
        season[t % m] = g * (y - *level) + (1 - g) * s;
}

/* Additive Holt-Winters starts from its first full season: level = the
 * season's mean, trend 0, seasonal terms = each sample minus the mean
 * (the classic initialisation); before that the model is plain Holt. */
static void season_init(int m, const double *y, double *level, double *trend, double *season)
{
    double mean = 0;

    for (int i = 0; i < m; i++)
        mean += y[i];
    mean /= m;
    *level = mean;
    *trend = 0;
    for (int i = 0; i < m; i++)
        season[i] = y[i] - mean;
}

/* Feeds sample number t (y) to the model; first[] holds the first season's
 * samples so far (indexed by t) for the initialisation. */
static void observe(int winters, int m, double a, double b, double g, double *level, double *trend,
                    double *season, long t, double y, const double *first)
{
    if (t == 0) {
        *level = y;
        *trend = 0;
    } else if (!winters || t >= m) {
        update(winters, m, a, b, g, level, trend, season, t, y);
    } else {
        update(0, m, a, b, g, level, trend, season, t, y);
    }
    if (winters && t == m - 1)
        season_init(m, first, level, trend, season);
}

/* The forecast h samples after sample t. */
static double forecast(int winters, int m, double level, double trend, const double *season, long t, int h)
{
    double f = level + h * trend;
    if (winters && t >= m - 1)
        f += season[(t + h) % m];
    return f;
}

/* Sum of squared one-step errors of the model with constants x over the
 * stored history, replayed from a fresh state (errors counted once the
 * seasonal terms exist). */
typedef struct {
    const struct predictive *p;
    double *season, *first;
} fit_ctx;

static double logistic(double x)
{
    return 1.0 / (1.0 + exp(-x));
}

static double sse(const gsl_vector *x, void *params)
{
    fit_ctx *c = params;
    const struct predictive *p = c->p;
    double a = logistic(gsl_vector_get(x, 0)), b = logistic(gsl_vector_get(x, 1));
    double g = p->winters ? logistic(gsl_vector_get(x, 2)) : 0.0, level = 0, trend = 0, e = 0;
    int start = (p->hist_head - p->hist_n + p->hist_cap) % p->hist_cap, m = p->season_n;

    memset(c->season, 0, (size_t)m * sizeof *c->season);
    for (int i = 0; i < p->hist_n; i++) {
        double y = p->hist[(start + i) % p->hist_cap];
        if (p->winters && i < m)
            c->first[i] = y;
        if (i > 0 && (!p->winters || i >= m)) {
            double f = forecast(p->winters, m, level, trend, c->season, i - 1, 1);
            e += (y - f) * (y - f);
        }
        observe(p->winters, m, a, b, g, &level, &trend, c->season, i, y, c->first);
    }
    return e;
}

static double logit(double v)
{
    return log(v / (1 - v));
}

static void refit(struct predictive *p)
{
    int dim = p->winters ? 3 : 2, iter = 0, status;
    gsl_multimin_fminimizer *s;
    gsl_vector *x, *step;
    gsl_multimin_function f;
    fit_ctx c = { p, calloc((size_t)p->season_n, sizeof(double)),
                  calloc((size_t)p->season_n, sizeof(double)) };
    gsl_error_handler_t *old = gsl_set_error_handler_off();

    s = gsl_multimin_fminimizer_alloc(gsl_multimin_fminimizer_nmsimplex2, (size_t)dim);
    x = gsl_vector_alloc((size_t)dim);
    step = gsl_vector_alloc((size_t)dim);
    if (!c.season || !c.first || !s || !x || !step)
        goto done;
    gsl_vector_set(x, 0, logit(p->alpha));
    gsl_vector_set(x, 1, logit(p->beta));
    if (p->winters)
        gsl_vector_set(x, 2, logit(p->gamma));
    gsl_vector_set_all(step, 1.0);
    f.n = (size_t)dim;
    f.f = sse;
    f.params = &c;
    if (gsl_multimin_fminimizer_set(s, &f, x, step) != GSL_SUCCESS)
        goto done;
    do {
        status = gsl_multimin_fminimizer_iterate(s);
        if (status)
            break;
        status = gsl_multimin_test_size(gsl_multimin_fminimizer_size(s), 1e-3);
    } while (status == GSL_CONTINUE && ++iter < 200);
    if (isfinite(s->fval)) {
        /* keep the constants away from 0 and 1, where the model stops learning */
        p->alpha = fmin(fmax(logistic(gsl_vector_get(s->x, 0)), 0.01), 0.99);
        p->beta = fmin(fmax(logistic(gsl_vector_get(s->x, 1)), 0.01), 0.99);
        if (p->winters)
            p->gamma = fmin(fmax(logistic(gsl_vector_get(s->x, 2)), 0.01), 0.99);
    }
done:
    gsl_multimin_fminimizer_free(s);
    gsl_vector_free(x);
    gsl_vector_free(step);
    free(c.season);
    free(c.first);
    gsl_set_error_handler(old);
}

static int pr_recommend(void *state, const as_view *v)
{
    struct predictive *p = state;
    double y, lead = p->lead_s >= 0 ? p->lead_s : v->startup_s, fc, need;
    long t;
    int h;

    if (!as_view_metric(v, "arrival_rate_qps", &y) || !isfinite(y) || y < 0) {
        snprintf(p->reason, sizeof p->reason, "no arrival rate yet");
        return AS_KEEP;
    }
    t = p->n_seen;
    p->hist[p->hist_head] = y;
    p->hist_head = (p->hist_head + 1) % p->hist_cap;
    if (p->hist_n < p->hist_cap)
        p->hist_n++;
    if (p->winters && t < p->season_n)
        p->first[t] = y;
    observe(p->winters, p->season_n, p->alpha, p->beta, p->gamma, &p->level, &p->trend, p->season, t, y,
            p->first);
    p->n_seen++;
    if (p->fit && p->n_seen % p->refit_every == 0 && p->hist_n >= (p->winters ? p->season_n + 10 : 10))
        refit(p);
    h = (int)ceil((isfinite(lead) && lead > 0 ? lead : 0) / p->period_s);
    if (h < 1)
        h = 1;
    fc = forecast(p->winters, p->season_n, p->level, p->trend, p->season, t, h);
    need = fmax(fc, y) / (p->capacity_qps * p->utilization);
    snprintf(p->reason, sizeof p->reason, "rate %.2f/s, forecast %.2f/s in %.0f s (alpha %.2f beta %.2f%s)",
             y, fc, h * p->period_s, p->alpha, p->beta, p->winters ? " with season" : "");
    if (!(need < 1e9))
        return 1000000000;
    return (int)ceil(need - 1e-9);
}

const struct as_ops as_predictive = {
    .name = "predictive",
    .summary = "Holt / Holt-Winters forecast of the arrival rate, lead time = startup, GSL-fitted constants",
    .keys = pr_keys,
    .init = pr_init,
    .recommend = pr_recommend,
    .period_s = pr_period,
    .reason = pr_reason,
    .destroy = pr_destroy,
};
