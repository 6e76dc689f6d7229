/*
 * autoscale.c - the only code that calls an autoscaling policy's ops, and
 * the configuration helpers every policy shares.
 *
 * Optional methods (reason, destroy) are handled here, and every result is
 * checked and clamped: AS_KEEP becomes the current replica count, anything
 * else negative is a policy bug (asserted in debug builds, treated as
 * AS_KEEP in release builds), and the result is clamped to the pool's hard
 * bounds from the view.
 */
#include "autoscale.h"

#include <assert.h>
#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct as {
    const struct as_ops *ops;
    void *state;
};

const struct as_ops *as_find(const char *name)
{
    if (!name)
        return NULL;
    for (const struct as_ops *const *p = as_registry; *p; p++)
        if (strcmp((*p)->name, name) == 0)
            return *p;
    return NULL;
}

char *as_names(char *buf, size_t len)
{
    size_t used = 0;

    if (!buf || len == 0)
        return buf;
    buf[0] = '\0';
    for (const struct as_ops *const *p = as_registry; *p && used < len; p++) {
        int w = snprintf(buf + used, len - used, "%s%s", p == as_registry ? "" : ", ", (*p)->name);
        if (w < 0)
            break;
        used += (size_t)w;
    }
    return buf;
}

static void put_err(char *err, size_t errlen, const char *fmt, ...)
{
    va_list ap;

    if (!err || errlen == 0)
        return;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

as *as_create_ops(const struct as_ops *ops, const as_config *cfg, char *err, size_t errlen)
{
    static const as_config none = { NULL, NULL, 0, NULL };
    as *a;

    if (err && errlen)
        err[0] = '\0';
    if (!ops || !ops->name || !ops->init || !ops->recommend || !ops->period_s) {
        put_err(err, errlen, "autoscaler policy lacks a name, init, recommend or period");
        return NULL;
    }
    a = calloc(1, sizeof *a);
    if (!a) {
        put_err(err, errlen, "out of memory");
        return NULL;
    }
    a->ops = ops;
    a->state = ops->init(cfg ? cfg : &none, err, errlen);
    if (!a->state) {
        if (err && errlen && !err[0])
            put_err(err, errlen, "autoscaler %s: cannot start", ops->name);
        free(a);
        return NULL;
    }
    return a;
}

as *as_create(const char *name, const as_config *cfg, char *err, size_t errlen)
{
    const struct as_ops *ops = as_find(name);

    if (!ops) {
        char names[256];
        put_err(err, errlen, "unknown autoscaler policy '%s' (known: %s)", name ? name : "(null)",
                as_names(names, sizeof names));
        return NULL;
    }
    return as_create_ops(ops, cfg, err, errlen);
}

int as_recommend(as *a, const as_view *view)
{
    int r;

    assert(a && view);
    assert(view->n_pods == 0 || view->pods);
    assert(view->n_metrics == 0 || view->metrics);
    r = a->ops->recommend(a->state, view);
    assert(r >= 0 || r == AS_KEEP);
    if (r < 0)
        r = view->current_replicas;
    if (r < view->min_replicas)
        r = view->min_replicas;
    if (view->max_replicas > 0 && r > view->max_replicas)
        r = view->max_replicas;
    return r < 0 ? 0 : r;
}

double as_period_s(const as *a)
{
    return a ? a->ops->period_s(a->state) : 0.0;
}

const char *as_reason(const as *a)
{
    const char *r;

    if (!a || !a->ops->reason)
        return "";
    r = a->ops->reason(a->state);
    return r ? r : "";
}

const char *as_name(const as *a)
{
    return a ? a->ops->name : NULL;
}

void as_destroy(as *a)
{
    if (!a)
        return;
    if (a->ops->destroy)
        a->ops->destroy(a->state);
    else
        free(a->state);
    free(a);
}

/* ---- view helpers ---- */

int as_view_metric(const as_view *v, const char *name, double *out)
{
    for (int i = 0; v && name && i < v->n_metrics; i++)
        if (v->metrics[i].name && strcmp(v->metrics[i].name, name) == 0) {
            *out = v->metrics[i].value;
            return 1;
        }
    return 0;
}

int as_pod_metric(const as_pod_view *p, const char *name, double *out)
{
    for (int i = 0; p && name && i < p->n_custom; i++)
        if (p->custom[i].name && strcmp(p->custom[i].name, name) == 0) {
            *out = p->custom[i].value;
            return 1;
        }
    return 0;
}

/* ---- configuration helpers ---- */

const as_param *as_param_find(const as_config *cfg, const char *key)
{
    for (int i = 0; cfg && key && i < cfg->n_params; i++)
        if (cfg->params[i].key && strcmp(cfg->params[i].key, key) == 0)
            return &cfg->params[i];
    return NULL;
}

void *as_fail(char *err, size_t errlen, const as_config *cfg, const as_param *p,
              const char *fmt, ...)
{
    const char *src = cfg && cfg->source ? cfg->source : "autoscaler";
    size_t used = 0;
    int w;
    va_list ap;

    if (!err || errlen == 0)
        return NULL;
    if (p && p->line > 0)
        w = snprintf(err, errlen, "%s:%d:%d: ", src, p->line, p->col > 0 ? p->col : 1);
    else
        w = snprintf(err, errlen, "%s: ", src);
    if (w > 0)
        used = (size_t)w < errlen ? (size_t)w : errlen - 1;
    va_start(ap, fmt);
    vsnprintf(err + used, errlen - used, fmt, ap);
    va_end(ap);
    return NULL;
}

int as_check_keys(const as_config *cfg, const char *const *keys, char *err, size_t errlen)
{
    for (int i = 0; cfg && i < cfg->n_params; i++) {
        const char *k = cfg->params[i].key;
        int known = 0;
        char list[512];
        size_t used = 0;

        for (const char *const *q = keys; k && q && *q; q++)
            if (strcmp(*q, k) == 0)
                known = 1;
        if (known)
            continue;
        list[0] = '\0';
        for (const char *const *q = keys; q && *q && used < sizeof list; q++) {
            int w = snprintf(list + used, sizeof list - used, "%s%s", q == keys ? "" : ", ", *q);
            if (w < 0)
                break;
            used += (size_t)w;
        }
        as_fail(err, errlen, cfg, &cfg->params[i], "unknown key '%s' for this autoscaler (known: %s)",
                k ? k : "(null)", list);
        return -1;
    }
    return 0;
}

/* An unsigned decimal (digits, optional fraction, optional exponent) at s;
 * returns the first character after it, or NULL. No sign, hex, inf, nan. */
static const char *scan_decimal(const char *s, double *out)
{
    const char *p = s;
    int digits = 0;
    char *end;

    while (isdigit((unsigned char)*p)) {
        p++;
        digits++;
    }
    if (*p == '.') {
        p++;
        while (isdigit((unsigned char)*p)) {
            p++;
            digits++;
        }
    }
    if (digits == 0)
        return NULL;
    if (*p == 'e' || *p == 'E') {
        const char *q = p + 1;
        if (*q == '+' || *q == '-')
            q++;
        if (isdigit((unsigned char)*q)) {
            while (isdigit((unsigned char)*q))
                q++;
            p = q;
        }
    }
    errno = 0;
    *out = strtod(s, &end);
    if (end != p || errno == ERANGE || !isfinite(*out))
        return NULL;
    return p;
}

int as_parse_duration_s(const char *text, double *out_s)
{
    static const struct {
        const char *suffix;
        double factor;
    } units[] = { { "ns", 1e-9 }, { "us", 1e-6 }, { "ms", 1e-3 }, { "s", 1.0 },
                  { "min", 60.0 }, { "m", 60.0 }, { "h", 3600.0 }, { "d", 86400.0 } };
    double v;
    const char *p;

    if (!text)
        return -1;
    p = scan_decimal(text, &v);
    if (!p)
        return -1;
    while (*p == ' ')
        p++;
    if (*p == '\0') { /* a bare number is seconds */
        *out_s = v;
        return 0;
    }
    for (size_t i = 0; i < sizeof units / sizeof units[0]; i++)
        if (strcmp(p, units[i].suffix) == 0) {
            *out_s = v * units[i].factor;
            return 0;
        }
    return -1;
}

int as_param_duration(const as_config *cfg, const char *key, double *out_s, char *err, size_t errlen)
{
    const as_param *p = as_param_find(cfg, key);

    if (!p)
        return 0;
    if (as_parse_duration_s(p->value, out_s) != 0) {
        as_fail(err, errlen, cfg, p, "%s: expected a duration such as 15s, 5m or 1h, got '%s'", key,
                p->value ? p->value : "");
        return -1;
    }
    return 1;
}

int as_param_number(const as_config *cfg, const char *key, double *out, char *err, size_t errlen)
{
    const as_param *p = as_param_find(cfg, key);
    const char *s, *end;
    double v;
    int neg = 0;

    if (!p)
        return 0;
    s = p->value ? p->value : "";
    if (*s == '-' || *s == '+')
        neg = *s++ == '-';
    end = scan_decimal(s, &v);
    if (!end || *end != '\0') {
        as_fail(err, errlen, cfg, p, "%s: expected a number, got '%s'", key, p->value ? p->value : "");
        return -1;
    }
    *out = neg ? -v : v;
    return 1;
}

int as_param_fraction(const as_config *cfg, const char *key, double *out, char *err, size_t errlen)
{
    const as_param *p = as_param_find(cfg, key);
    const char *end;
    double v;

    if (!p)
        return 0;
    end = scan_decimal(p->value ? p->value : "", &v);
    if (end && *end == '%' && end[1] == '\0')
        v /= 100.0;
    else if (!end || *end != '\0')
        end = NULL;
    if (!end) {
        as_fail(err, errlen, cfg, p, "%s: expected a fraction such as 0.85 or 85%%, got '%s'", key,
                p->value ? p->value : "");
        return -1;
    }
    *out = v;
    return 1;
}

int as_param_int(const as_config *cfg, const char *key, int *out, char *err, size_t errlen)
{
    const as_param *p = as_param_find(cfg, key);
    const char *s;
    long v = 0;

    if (!p)
        return 0;
    s = p->value ? p->value : "";
    if (!*s)
        goto bad;
    for (; *s; s++) {
        if (!isdigit((unsigned char)*s) || v > 100000000L)
            goto bad;
        v = v * 10 + (*s - '0');
    }
    *out = (int)v;
    return 1;
bad:
    as_fail(err, errlen, cfg, p, "%s: expected a whole number >= 0, got '%s'", key,
            p->value ? p->value : "");
    return -1;
}

int as_param_bool(const as_config *cfg, const char *key, int *out, char *err, size_t errlen)
{
    const as_param *p = as_param_find(cfg, key);

    if (!p)
        return 0;
    if (p->value && strcmp(p->value, "true") == 0) {
        *out = 1;
        return 1;
    }
    if (p->value && strcmp(p->value, "false") == 0) {
        *out = 0;
        return 1;
    }
    as_fail(err, errlen, cfg, p, "%s: expected true or false, got '%s'", key, p->value ? p->value : "");
    return -1;
}
