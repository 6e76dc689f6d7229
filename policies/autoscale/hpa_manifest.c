/*
 * hpa_manifest.c - read a Kubernetes HorizontalPodAutoscaler manifest with
 * libyaml's document API, apply the API server's defaults and check its
 * validation rules, reporting `file:line:col: message` at the offending node.
 *
 * Sources followed: k8s.io/api autoscaling/v2 types (field names and
 * shapes), pkg/apis/autoscaling/v2/defaults.go (minReplicas 1, default CPU
 * metric at 80%, behavior defaults: scale-up {Pods 4, Percent 100} per 15 s,
 * window 0, select Max; scale-down {Percent 100} per 15 s, select Max,
 * window unset = the controller flag), pkg/apis/autoscaling/validation
 * (ranges: periodSeconds 1..1800, stabilizationWindowSeconds 0..3600,
 * policy values > 0, maxReplicas >= minReplicas), and
 * apimachinery/pkg/api/resource (quantities). Unknown fields are errors, as
 * with `kubectl apply --validate=strict`; metadata labels/annotations,
 * scaleTargetRef and status are accepted and not used.
 *
 * autoscaling/v2beta2 has exactly the v2 shape and is read as v2;
 * autoscaling/v1 and v2beta1 have other shapes and are refused with a hint.
 * Only cpu and GPU (nvidia.com/gpu, gpu) resources are modelled; a memory
 * metric is refused rather than silently ignored.
 */
#include "autoscale/hpa_manifest.h"

#include <yaml.h>

#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    const char *file;
    yaml_document_t *doc;
    char *err;
    size_t errlen;
    int failed;
} mp;

/* Records the first error only; returns -1. */
static int fail(mp *m, const yaml_node_t *n, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;
static int fail(mp *m, const yaml_node_t *n, const char *fmt, ...)
{
    va_list ap;
    int w;

    if (m->failed || !m->err || m->errlen == 0) {
        m->failed = 1;
        return -1;
    }
    m->failed = 1;
    if (n)
        w = snprintf(m->err, m->errlen, "%s:%zu:%zu: ", m->file, n->start_mark.line + 1,
                     n->start_mark.column + 1);
    else
        w = snprintf(m->err, m->errlen, "%s:1:1: ", m->file);
    if (w < 0 || (size_t)w >= m->errlen)
        return -1;
    va_start(ap, fmt);
    vsnprintf(m->err + w, m->errlen - (size_t)w, fmt, ap);
    va_end(ap);
    return -1;
}

static const char *scalar(const yaml_node_t *n)
{
    return n && n->type == YAML_SCALAR_NODE ? (const char *)n->data.scalar.value : NULL;
}

static const char *kind_of(const yaml_node_t *n)
{
    if (!n)
        return "nothing";
    switch (n->type) {
    case YAML_SCALAR_NODE:
        return "a scalar";
    case YAML_SEQUENCE_NODE:
        return "a list";
    case YAML_MAPPING_NODE:
        return "a mapping";
    default:
        return "nothing";
    }
}

static yaml_node_t *get(mp *m, const yaml_node_t *map, const char *key, yaml_node_t **key_node)
{
    if (!map || map->type != YAML_MAPPING_NODE)
        return NULL;
    for (yaml_node_pair_t *p = map->data.mapping.pairs.start; p < map->data.mapping.pairs.top; p++) {
        yaml_node_t *k = yaml_document_get_node(m->doc, p->key);
        const char *ks = scalar(k);
        if (ks && strcmp(ks, key) == 0) {
            if (key_node)
                *key_node = k;
            return yaml_document_get_node(m->doc, p->value);
        }
    }
    return NULL;
}

/* Every key of map must be in allowed (NULL-terminated); `where` names the
 * mapping in the message. */
static int check_keys(mp *m, const yaml_node_t *map, const char *where, const char *const *allowed)
{
    for (yaml_node_pair_t *p = map->data.mapping.pairs.start; p < map->data.mapping.pairs.top; p++) {
        yaml_node_t *k = yaml_document_get_node(m->doc, p->key);
        const char *ks = scalar(k);
        int ok = 0;
        char list[256];
        size_t used = 0;

        for (const char *const *a = allowed; ks && *a; a++)
            if (strcmp(*a, ks) == 0)
                ok = 1;
        if (ok)
            continue;
        list[0] = '\0';
        for (const char *const *a = allowed; *a && used < sizeof list; a++) {
            int w = snprintf(list + used, sizeof list - used, "%s%s", a == allowed ? "" : ", ", *a);
            if (w < 0)
                break;
            used += (size_t)w;
        }
        return fail(m, k, "unknown field '%s' in %s (known: %s)", ks ? ks : "(non-scalar key)", where,
                    list);
    }
    return 0;
}

static yaml_node_t *need_map(mp *m, yaml_node_t *n, yaml_node_t *key, const char *what)
{
    if (!n) {
        fail(m, key, "%s is required", what);
        return NULL;
    }
    if (n->type != YAML_MAPPING_NODE) {
        fail(m, n, "%s: expected a mapping, got %s", what, kind_of(n));
        return NULL;
    }
    return n;
}

static int get_int(mp *m, const yaml_node_t *n, const char *what, long lo, long hi, int *out)
{
    const char *s = scalar(n);
    const char *p;
    long v = 0;

    if (!s)
        return fail(m, n, "%s: expected an integer, got %s", what, kind_of(n));
    p = s;
    if (*p == '+')
        p++;
    if (*p == '-' && isdigit((unsigned char)p[1]))
        return fail(m, n, "%s: must be between %ld and %ld, got %s", what, lo, hi, s);
    if (!*p)
        return fail(m, n, "%s: expected an integer, got '%s'", what, s);
    for (; *p; p++) {
        if (!isdigit((unsigned char)*p))
            return fail(m, n, "%s: expected an integer, got '%s'", what, s);
        if (v > 1000000000L)
            return fail(m, n, "%s: must be between %ld and %ld, got %s", what, lo, hi, s);
        v = v * 10 + (*p - '0');
    }
    if (v < lo || v > hi)
        return fail(m, n, "%s: must be between %ld and %ld, got %s", what, lo, hi, s);
    *out = (int)v;
    return 0;
}

/* ---- quantities (apimachinery/pkg/api/resource/quantity.go) ---- */

int as_parse_quantity_milli(const char *text, long long *out_milli)
{
    static const struct {
        const char *suffix;
        int pow10;
        int pow1024;
    } sfx[] = {
        { "Ki", 0, 1 }, { "Mi", 0, 2 }, { "Gi", 0, 3 }, { "Ti", 0, 4 }, { "Pi", 0, 5 }, { "Ei", 0, 6 },
        { "n", -9, 0 }, { "u", -6, 0 }, { "m", -3, 0 }, { "", 0, 0 },   { "k", 3, 0 },  { "M", 6, 0 },
        { "G", 9, 0 },  { "T", 12, 0 }, { "P", 15, 0 }, { "E", 18, 0 },
    };
    const long long LIM = 9000000000000000000LL;
    const char *p = text;
    long long mant = 0;
    int frac = 0, ndigits = 0, point = 0, exp10 = 0, pow1024 = 0, found = 0;

    if (!p)
        return -1;
    if (*p == '+')
        p++;
    if (*p == '-')
        return -1; /* targets are never negative */
    for (;; p++) {
        if (isdigit((unsigned char)*p)) {
            ndigits++;
            if (mant <= (LIM - 9) / 10) {
                mant = mant * 10 + (*p - '0');
                frac += point;
            } else if (*p != '0') {
                return -1; /* more precision than an int64 of milli-units keeps */
            } else if (!point) {
                exp10++; /* a trailing zero of a huge integer part */
            }
        } else if (*p == '.' && !point) {
            point = 1;
        } else {
            break;
        }
    }
    if (ndigits == 0)
        return -1;
    if ((*p == 'e' || *p == 'E') && (isdigit((unsigned char)p[1]) || p[1] == '-' || p[1] == '+')) {
        int neg = 0, e = 0;
        p++;
        if (*p == '+' || *p == '-')
            neg = *p++ == '-';
        if (!isdigit((unsigned char)*p))
            return -1;
        while (isdigit((unsigned char)*p)) {
            if (e > 1000)
                return -1;
            e = e * 10 + (*p++ - '0');
        }
        if (*p)
            return -1;
        exp10 += neg ? -e : e;
        found = 1;
    } else {
        for (size_t i = 0; i < sizeof sfx / sizeof sfx[0]; i++)
            if (strcmp(p, sfx[i].suffix) == 0) {
                exp10 += sfx[i].pow10;
                pow1024 = sfx[i].pow1024;
                found = 1;
                break;
            }
    }
    if (!found)
        return -1;
    for (int i = 0; i < pow1024; i++) {
        if (mant > LIM / 1024)
            return -1;
        mant *= 1024;
    }
    exp10 += 3 - frac; /* milli-units */
    if (exp10 >= 0) {
        for (int i = 0; i < exp10; i++) {
            if (mant > LIM / 10)
                return -1;
            mant *= 10;
        }
    } else {
        long long div = 1;
        int rem = 0;
        for (int i = 0; i < -exp10; i++) {
            if (div > LIM / 10) {
                div = 0; /* beyond any mantissa: the result rounds up to 1 (or is 0) */
                break;
            }
            div *= 10;
        }
        if (div == 0) {
            mant = mant > 0;
        } else {
            rem = mant % div != 0;
            mant = mant / div + rem; /* rounded up, as MilliValue() does */
        }
    }
    *out_milli = mant;
    return 0;
}

static int get_quantity(mp *m, const yaml_node_t *n, const char *what, long long *out)
{
    const char *s = scalar(n);

    if (!s)
        return fail(m, n, "%s: expected a quantity such as 100m, 1.5 or 2k, got %s", what, kind_of(n));
    if (as_parse_quantity_milli(s, out) != 0)
        return fail(m, n, "%s: '%s' is not a Kubernetes quantity (e.g. 100m, 1.5, 2k, 500Mi)", what, s);
    if (*out <= 0)
        return fail(m, n, "%s: must be positive, got %s", what, s);
    return 0;
}

/* ---- spec pieces ---- */

static int read_target(mp *m, yaml_node_t *t, yaml_node_t *tkey, as_hpa_metric *out,
                       int allow_util, int allow_avg, int allow_value, const char *what)
{
    static const char *const keys[] = { "type", "averageUtilization", "averageValue", "value", NULL };
    yaml_node_t *k = NULL, *type;
    const char *ts;

    if (!need_map(m, t, tkey, "target") || check_keys(m, t, "target", keys))
        return -1;
    type = get(m, t, "type", &k);
    ts = scalar(type);
    if (!type)
        return fail(m, t, "target.type is required (Utilization, AverageValue or Value)");
    if (!ts)
        return fail(m, type, "target.type: expected a scalar, got %s", kind_of(type));
    if (strcmp(ts, "Utilization") == 0 && allow_util) {
        yaml_node_t *v = get(m, t, "averageUtilization", NULL);
        out->target = AS_HPA_UTILIZATION;
        if (!v)
            return fail(m, t, "target type Utilization needs averageUtilization");
        return get_int(m, v, "averageUtilization", 1, 2147483647L, &out->utilization_pct);
    }
    if (strcmp(ts, "AverageValue") == 0 && allow_avg) {
        yaml_node_t *v = get(m, t, "averageValue", NULL);
        out->target = AS_HPA_AVERAGE_VALUE;
        if (!v)
            return fail(m, t, "target type AverageValue needs averageValue");
        return get_quantity(m, v, "averageValue", &out->target_milli);
    }
    if (strcmp(ts, "Value") == 0 && allow_value) {
        yaml_node_t *v = get(m, t, "value", NULL);
        out->target = AS_HPA_VALUE;
        if (!v)
            return fail(m, t, "target type Value needs value");
        return get_quantity(m, v, "value", &out->target_milli);
    }
    return fail(m, type, "target.type '%s' is not valid for a %s metric (allowed: %s%s%s%s%s)", ts, what,
                allow_util ? "Utilization" : "", allow_util ? ", " : "", allow_avg ? "AverageValue" : "",
                allow_value ? ", " : "", allow_value ? "Value" : "");
}

/* metric: {name, selector} of Pods/Object/External sources. */
static int read_metric_id(mp *m, yaml_node_t *src, const char *where, as_hpa_metric *out)
{
    static const char *const keys[] = { "name", "selector", NULL };
    yaml_node_t *k = NULL, *id = get(m, src, "metric", &k), *name;

    if (!id)
        return fail(m, src, "%s.metric is required", where);
    if (!need_map(m, id, k, "metric") || check_keys(m, id, "metric", keys))
        return -1;
    name = get(m, id, "name", NULL);
    if (!scalar(name) || !*scalar(name))
        return fail(m, name ? name : id, "metric.name is required");
    snprintf(out->name, sizeof out->name, "%s", scalar(name));
    return 0;
}

static int read_metric(mp *m, yaml_node_t *n, as_hpa_metric *out)
{
    static const char *const top[] = { "type", "resource", "containerResource", "pods", "object",
                                       "external", NULL };
    yaml_node_t *k = NULL, *type, *src, *tkey = NULL;
    const char *ts;

    memset(out, 0, sizeof *out);
    out->line = (int)n->start_mark.line + 1;
    out->col = (int)n->start_mark.column + 1;
    if (n->type != YAML_MAPPING_NODE)
        return fail(m, n, "metrics[]: expected a mapping, got %s", kind_of(n));
    if (check_keys(m, n, "metric", top))
        return -1;
    type = get(m, n, "type", &k);
    ts = scalar(type);
    if (!ts)
        return fail(m, type ? type : n, "metric type is required (Resource, Pods, Object or External)");
    if (strcmp(ts, "Resource") == 0 || strcmp(ts, "ContainerResource") == 0) {
        static const char *const rkeys[] = { "name", "target", NULL };
        static const char *const ckeys[] = { "name", "container", "target", NULL };
        int container = ts[0] == 'C';
        yaml_node_t *name;
        const char *rn;

        src = get(m, n, container ? "containerResource" : "resource", &k);
        if (!need_map(m, src, type, container ? "containerResource" : "resource") ||
            check_keys(m, src, container ? "containerResource" : "resource", container ? ckeys : rkeys))
            return -1;
        out->type = AS_HPA_RESOURCE;
        name = get(m, src, "name", NULL);
        rn = scalar(name);
        if (!rn)
            return fail(m, name ? name : src, "resource name is required (cpu or nvidia.com/gpu)");
        snprintf(out->name, sizeof out->name, "%s", rn);
        if (strcmp(rn, "cpu") == 0)
            out->resource = AS_HPA_CPU;
        else if (strcmp(rn, "nvidia.com/gpu") == 0 || strcmp(rn, "gpu") == 0 ||
                 strcmp(rn, "amd.com/gpu") == 0)
            out->resource = AS_HPA_GPU;
        else
            return fail(m, name, "resource '%s' is not modelled by fleetsim (cpu, nvidia.com/gpu)", rn);
        {
            yaml_node_t *t = get(m, src, "target", &tkey);
            return read_target(m, t, tkey ? tkey : src, out, 1, 1, 0, "Resource");
        }
    }
    if (strcmp(ts, "Pods") == 0) {
        static const char *const keys[] = { "metric", "target", NULL };
        src = get(m, n, "pods", &k);
        if (!need_map(m, src, type, "pods") || check_keys(m, src, "pods", keys))
            return -1;
        out->type = AS_HPA_PODS;
        if (read_metric_id(m, src, "pods", out))
            return -1;
        {
            yaml_node_t *t = get(m, src, "target", &tkey);
            return read_target(m, t, tkey ? tkey : src, out, 0, 1, 0, "Pods");
        }
    }
    if (strcmp(ts, "Object") == 0) {
        static const char *const keys[] = { "metric", "describedObject", "target", NULL };
        src = get(m, n, "object", &k);
        if (!need_map(m, src, type, "object") || check_keys(m, src, "object", keys))
            return -1;
        out->type = AS_HPA_OBJECT;
        if (!get(m, src, "describedObject", NULL))
            return fail(m, src, "object.describedObject is required");
        if (read_metric_id(m, src, "object", out))
            return -1;
        {
            yaml_node_t *t = get(m, src, "target", &tkey);
            return read_target(m, t, tkey ? tkey : src, out, 0, 1, 1, "Object");
        }
    }
    if (strcmp(ts, "External") == 0) {
        static const char *const keys[] = { "metric", "target", NULL };
        src = get(m, n, "external", &k);
        if (!need_map(m, src, type, "external") || check_keys(m, src, "external", keys))
            return -1;
        out->type = AS_HPA_EXTERNAL;
        if (read_metric_id(m, src, "external", out))
            return -1;
        {
            yaml_node_t *t = get(m, src, "target", &tkey);
            return read_target(m, t, tkey ? tkey : src, out, 0, 1, 1, "External");
        }
    }
    return fail(m, type, "unknown metric type '%s' (Resource, ContainerResource, Pods, Object, External)",
                ts);
}

/* defaults.go: defaultHPAScaleUpRules / defaultHPAScaleDownRules */
static void default_rules(as_hpa_rules *r, int up)
{
    memset(r, 0, sizeof *r);
    r->select = AS_HPA_SELECT_MAX;
    r->tolerance = -1.0;
    if (up) {
        r->window_s = 0;
        r->n_policies = 2;
        r->policies[0] = (as_hpa_policy){ AS_HPA_POLICY_PODS, 4, 15 };
        r->policies[1] = (as_hpa_policy){ AS_HPA_POLICY_PERCENT, 100, 15 };
    } else {
        r->window_s = -1;
        r->n_policies = 1;
        r->policies[0] = (as_hpa_policy){ AS_HPA_POLICY_PERCENT, 100, 15 };
    }
}

static int read_rules(mp *m, yaml_node_t *n, yaml_node_t *key, const char *what, as_hpa_rules *r)
{
    static const char *const keys[] = { "stabilizationWindowSeconds", "selectPolicy", "policies",
                                        "tolerance", NULL };
    static const char *const pkeys[] = { "type", "value", "periodSeconds", NULL };
    yaml_node_t *v;

    if (!need_map(m, n, key, what) || check_keys(m, n, what, keys))
        return -1;
    if ((v = get(m, n, "stabilizationWindowSeconds", NULL)) &&
        get_int(m, v, "stabilizationWindowSeconds", 0, 3600, &r->window_s))
        return -1;
    if ((v = get(m, n, "selectPolicy", NULL))) {
        const char *s = scalar(v);
        if (s && strcmp(s, "Max") == 0)
            r->select = AS_HPA_SELECT_MAX;
        else if (s && strcmp(s, "Min") == 0)
            r->select = AS_HPA_SELECT_MIN;
        else if (s && strcmp(s, "Disabled") == 0)
            r->select = AS_HPA_SELECT_DISABLED;
        else
            return fail(m, v, "selectPolicy: expected Max, Min or Disabled, got %s",
                        s ? s : kind_of(v));
    }
    if ((v = get(m, n, "tolerance", NULL))) {
        long long milli;
        const char *s = scalar(v);
        if (!s || as_parse_quantity_milli(s, &milli) != 0)
            return fail(m, v, "tolerance: expected a quantity such as 0.05 or 50m");
        r->tolerance = (double)milli / 1000.0;
    }
    if ((v = get(m, n, "policies", NULL))) {
        if (v->type != YAML_SEQUENCE_NODE)
            return fail(m, v, "policies: expected a list, got %s", kind_of(v));
        r->n_policies = 0;
        for (yaml_node_item_t *it = v->data.sequence.items.start; it < v->data.sequence.items.top; it++) {
            yaml_node_t *p = yaml_document_get_node(m->doc, *it), *f;
            as_hpa_policy *pol;
            const char *ts;

            if (p->type != YAML_MAPPING_NODE)
                return fail(m, p, "policies[]: expected a mapping, got %s", kind_of(p));
            if (check_keys(m, p, "policy", pkeys))
                return -1;
            if (r->n_policies >= AS_HPA_MAX_POLICIES)
                return fail(m, p, "more than %d policies", AS_HPA_MAX_POLICIES);
            pol = &r->policies[r->n_policies++];
            f = get(m, p, "type", NULL);
            ts = scalar(f);
            if (ts && strcmp(ts, "Pods") == 0)
                pol->type = AS_HPA_POLICY_PODS;
            else if (ts && strcmp(ts, "Percent") == 0)
                pol->type = AS_HPA_POLICY_PERCENT;
            else
                return fail(m, f ? f : p, "policy type: expected Pods or Percent%s%s",
                            ts ? ", got " : "", ts ? ts : "");
            if (!(f = get(m, p, "value", NULL)))
                return fail(m, p, "policy value is required");
            if (get_int(m, f, "policy value", 1, 2147483647L, &pol->value))
                return -1;
            if (!(f = get(m, p, "periodSeconds", NULL)))
                return fail(m, p, "policy periodSeconds is required");
            if (get_int(m, f, "periodSeconds", 1, 1800, &pol->period_s))
                return -1;
        }
        if (r->n_policies == 0)
            return fail(m, v, "policies: must specify at least one policy");
    }
    return 0;
}

static int read_hpa(mp *m, yaml_node_t *root, as_hpa_spec *out)
{
    static const char *const top[] = { "apiVersion", "kind", "metadata", "spec", "status", NULL };
    static const char *const spec_keys[] = { "scaleTargetRef", "minReplicas", "maxReplicas", "metrics",
                                             "behavior", NULL };
    static const char *const beh_keys[] = { "scaleUp", "scaleDown", NULL };
    yaml_node_t *k = NULL, *spec, *v, *meta;

    if (check_keys(m, root, "HorizontalPodAutoscaler", top))
        return -1;
    meta = get(m, root, "metadata", &k);
    if (meta && meta->type == YAML_MAPPING_NODE && scalar(get(m, meta, "name", NULL)))
        snprintf(out->name, sizeof out->name, "%s", scalar(get(m, meta, "name", NULL)));
    spec = need_map(m, get(m, root, "spec", &k), root, "spec");
    if (!spec || check_keys(m, spec, "spec", spec_keys))
        return -1;
    out->min_replicas = 1;
    if ((v = get(m, spec, "minReplicas", NULL)) &&
        get_int(m, v, "minReplicas", 0, 2147483647L, &out->min_replicas))
        return -1;
    if (!(v = get(m, spec, "maxReplicas", NULL)))
        return fail(m, spec, "spec.maxReplicas is required");
    if (get_int(m, v, "maxReplicas", 1, 2147483647L, &out->max_replicas))
        return -1;
    if (out->max_replicas < out->min_replicas)
        return fail(m, v, "maxReplicas (%d) must be >= minReplicas (%d)", out->max_replicas,
                    out->min_replicas);

    if ((v = get(m, spec, "metrics", NULL))) {
        size_t n;
        if (v->type != YAML_SEQUENCE_NODE)
            return fail(m, v, "metrics: expected a list, got %s", kind_of(v));
        n = (size_t)(v->data.sequence.items.top - v->data.sequence.items.start);
        if (n > 0) {
            out->metrics = calloc(n, sizeof *out->metrics);
            if (!out->metrics)
                return fail(m, v, "out of memory");
            for (yaml_node_item_t *it = v->data.sequence.items.start; it < v->data.sequence.items.top;
                 it++) {
                if (read_metric(m, yaml_document_get_node(m->doc, *it), &out->metrics[out->n_metrics]))
                    return -1;
                out->n_metrics++;
            }
        }
    }
    if (out->n_metrics == 0) { /* defaults.go: CPU at DefaultCPUUtilization (80) */
        out->metrics = calloc(1, sizeof *out->metrics);
        if (!out->metrics)
            return fail(m, spec, "out of memory");
        out->n_metrics = 1;
        out->metrics[0].type = AS_HPA_RESOURCE;
        snprintf(out->metrics[0].name, sizeof out->metrics[0].name, "cpu");
        out->metrics[0].resource = AS_HPA_CPU;
        out->metrics[0].target = AS_HPA_UTILIZATION;
        out->metrics[0].utilization_pct = 80;
    }
    if (out->min_replicas == 0) {
        /* validation: minReplicas 0 needs the HPAScaleToZero gate and at
         * least one Object or External metric. */
        int ok = 0;
        for (int i = 0; i < out->n_metrics; i++)
            ok |= out->metrics[i].type == AS_HPA_OBJECT || out->metrics[i].type == AS_HPA_EXTERNAL;
        if (!ok)
            return fail(m, get(m, spec, "minReplicas", NULL),
                        "minReplicas 0 needs at least one Object or External metric");
    }

    default_rules(&out->scale_up, 1);
    default_rules(&out->scale_down, 0);
    if ((v = get(m, spec, "behavior", &k))) {
        yaml_node_t *r, *rk = NULL;
        if (!need_map(m, v, k, "behavior") || check_keys(m, v, "behavior", beh_keys))
            return -1;
        out->has_behavior = 1;
        if ((r = get(m, v, "scaleUp", &rk)) && read_rules(m, r, rk, "scaleUp", &out->scale_up))
            return -1;
        if ((r = get(m, v, "scaleDown", &rk)) && read_rules(m, r, rk, "scaleDown", &out->scale_down))
            return -1;
    }
    return 0;
}

/* Looks at one document: 1 = it is the HPA (read into out), 0 = another
 * kind, -1 = error. */
static int read_document(mp *m, yaml_node_t *root, as_hpa_spec *out)
{
    yaml_node_t *k = NULL, *api, *kind;
    const char *as, *ks;

    if (!root)
        return 0;
    if (root->type != YAML_MAPPING_NODE)
        return fail(m, root, "expected a Kubernetes object (a mapping with apiVersion and kind), got %s",
                    kind_of(root));
    kind = get(m, root, "kind", &k);
    ks = scalar(kind);
    if (!ks)
        return fail(m, kind ? kind : root, "kind is required");
    if (strcmp(ks, "HorizontalPodAutoscaler") != 0)
        return 0;
    api = get(m, root, "apiVersion", &k);
    as = scalar(api);
    if (!as)
        return fail(m, api ? api : root, "apiVersion is required (autoscaling/v2)");
    if (strcmp(as, "autoscaling/v1") == 0)
        return fail(m, api, "autoscaling/v1 is not supported: write the manifest as autoscaling/v2 "
                            "(targetCPUUtilizationPercentage: N becomes metrics: [{type: Resource, "
                            "resource: {name: cpu, target: {type: Utilization, averageUtilization: N}}}])");
    if (strcmp(as, "autoscaling/v2beta1") == 0)
        return fail(m, api, "autoscaling/v2beta1 is not supported (removed in Kubernetes 1.25): write "
                            "the manifest as autoscaling/v2 (targetAverageUtilization: N becomes "
                            "target: {type: Utilization, averageUtilization: N})");
    if (strcmp(as, "autoscaling/v2") != 0 && strcmp(as, "autoscaling/v2beta2") != 0)
        return fail(m, api, "apiVersion '%s' is not an autoscaling API (expected autoscaling/v2)", as);
    snprintf(out->api_version, sizeof out->api_version, "%s", as);
    return read_hpa(m, root, out) ? -1 : 1;
}

static int parse(yaml_parser_t *parser, const char *file, as_hpa_spec *out, char *err, size_t errlen)
{
    mp m = { file, NULL, err, errlen, 0 };
    int found = 0;
    size_t first_line = 0;

    memset(out, 0, sizeof *out);
    for (;;) {
        yaml_document_t doc;
        yaml_node_t *root;
        int r;

        if (!yaml_parser_load(parser, &doc)) {
            yaml_mark_t mk = parser->problem_mark;
            if (err && errlen)
                snprintf(err, errlen, "%s:%zu:%zu: %s%s%s", file, mk.line + 1, mk.column + 1,
                         parser->problem ? parser->problem : "cannot parse YAML",
                         parser->context ? " " : "", parser->context ? parser->context : "");
            as_hpa_spec_free(out);
            return -1;
        }
        root = yaml_document_get_root_node(&doc);
        if (!root) {
            yaml_document_delete(&doc);
            break;
        }
        m.doc = &doc;
        if (found) {
            as_hpa_spec extra;
            memset(&extra, 0, sizeof extra);
            r = read_document(&m, root, &extra);
            as_hpa_spec_free(&extra);
            if (r == 1) {
                m.failed = 0;
                fail(&m, root, "a second HorizontalPodAutoscaler (the first is at line %zu); one per file",
                     first_line);
                r = -1;
            }
        } else {
            r = read_document(&m, root, out);
            if (r == 1) {
                found = 1;
                first_line = root->start_mark.line + 1;
            }
        }
        yaml_document_delete(&doc);
        if (r < 0) {
            as_hpa_spec_free(out);
            return -1;
        }
    }
    if (!found) {
        if (err && errlen)
            snprintf(err, errlen, "%s:1:1: no HorizontalPodAutoscaler (kind: HorizontalPodAutoscaler) in "
                     "this file", file);
        return -1;
    }
    return 0;
}

int as_hpa_manifest_parse(const char *text, size_t len, const char *file, as_hpa_spec *out,
                          char *err, size_t errlen)
{
    yaml_parser_t parser;
    int r;

    if (!file)
        file = "(manifest)";
    if (!text || !out || !yaml_parser_initialize(&parser)) {
        if (err && errlen)
            snprintf(err, errlen, "%s: cannot read manifest", file);
        return -1;
    }
    yaml_parser_set_input_string(&parser, (const unsigned char *)text, len);
    r = parse(&parser, file, out, err, errlen);
    yaml_parser_delete(&parser);
    return r;
}

int as_hpa_manifest_load(const char *path, as_hpa_spec *out, char *err, size_t errlen)
{
    yaml_parser_t parser;
    FILE *f;
    int r;

    if (!path || !out)
        return -1;
    f = fopen(path, "rb");
    if (!f) {
        if (err && errlen)
            snprintf(err, errlen, "%s: cannot open HPA manifest: %s", path, strerror(errno));
        return -1;
    }
    if (!yaml_parser_initialize(&parser)) {
        fclose(f);
        if (err && errlen)
            snprintf(err, errlen, "%s: out of memory", path);
        return -1;
    }
    yaml_parser_set_input_file(&parser, f);
    r = parse(&parser, path, out, err, errlen);
    yaml_parser_delete(&parser);
    fclose(f);
    return r;
}

void as_hpa_spec_free(as_hpa_spec *spec)
{
    if (!spec)
        return;
    free(spec->metrics);
    spec->metrics = NULL;
    spec->n_metrics = 0;
}
