/*
 * scenario_models.c - the `models` section of a scenario: models.<name> with
 * its service time (mean, base/per_item, a distribution and cv, empirical
 * samples from a CSV file, or a calibration profile from `realbench` plus
 * noise), its batching (max_size, max_wait) and its GPU memory (weights,
 * per_request: what DCGM_FI_DEV_FB_USED reports). Also sc_model_mean_s's
 * profiles are loaded here, and the model lookups that pools use. Parsed
 * first: every other section may refer to a model.
 */
#include "scenario.h"
#include "scenario_internal.h"

#include <cjson/cJSON.h>
#include <yaml.h>

#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

/* ---- samples and calibration profiles ----------------------------------- */

/* Empirical samples: latencies >= 0 with mean > 0, stored divided by their
 * mean. raw_mean gets the mean before that. */
static int load_samples(sc_loader *L, const yaml_node_t *n, const char *path, sc_dist *d,
                        double *raw_mean)
{
    char msg[256];
    const char *rel = sc_want_scalar(L, n, path, "a CSV file path");
    double *v = NULL, sum = 0;
    size_t cnt = 0;

    if (rel == NULL)
        return -1;
    char *file = sc_resolve(L, n, rel);
    if (file == NULL || sc_read_column(file, &v, &cnt, msg, sizeof msg)) {
        sc_errn(L, n, "%s: samples file \"%s\": %s", path, rel, file ? msg : "out of memory");
        free(file);
        return -1;
    }
    free(file);
    for (size_t i = 0; i < cnt; i++) {
        if (v[i] < 0) {
            sc_errn(L, n, "%s: samples file \"%s\": value %zu is negative (%g)", path, rel, i + 1,
                    v[i]);
            free(v);
            return -1;
        }
        sum += v[i];
    }
    double mean = sum / (double)cnt;
    if (!(mean > 0) || !isfinite(mean)) {
        sc_errn(L, n, "%s: samples file \"%s\": the mean must be finite and > 0", path, rel);
        free(v);
        return -1;
    }
    for (size_t i = 0; i < cnt; i++)
        v[i] /= mean;
    free(d->samples);
    d->samples = v;
    d->n_samples = cnt;
    *raw_mean = mean;
    return 0;
}

#define CALIB_SCHEMA "fleetsim-calibration/1"

void sc_free_calibration(sc_calibration *c)
{
    if (c == NULL)
        return;
    free(c->path);
    free(c->precision);
    free(c->batch);
    free(c->latency_s);
    free(c);
}

/* Fills c from one entry of the profile's "precisions"; NULL or a problem. */
static const char *calib_points(const cJSON *pr, sc_calibration *c)
{
    const cJSON *batch = cJSON_GetObjectItemCaseSensitive(pr, "batch");
    const cJSON *lat = cJSON_GetObjectItemCaseSensitive(pr, "latency_s");
    const cJSON *fit = cJSON_GetObjectItemCaseSensitive(pr, "fit");

    if (!cJSON_IsArray(batch) || !cJSON_IsArray(lat))
        return "needs arrays \"batch\" and \"latency_s\"";
    int n = cJSON_GetArraySize(batch);
    if (n < 1 || n != cJSON_GetArraySize(lat))
        return "\"batch\" and \"latency_s\" must be non-empty and of the same length";
    if (!cJSON_IsObject(fit))
        return "needs an object \"fit\" with alpha_s and beta_s";
    const cJSON *a = cJSON_GetObjectItemCaseSensitive(fit, "alpha_s");
    const cJSON *b = cJSON_GetObjectItemCaseSensitive(fit, "beta_s");
    if (!cJSON_IsNumber(a) || !cJSON_IsNumber(b) || !isfinite(a->valuedouble) ||
        !isfinite(b->valuedouble))
        return "fit.alpha_s and fit.beta_s must be finite numbers";
    c->batch = calloc((size_t)n, sizeof *c->batch);
    c->latency_s = calloc((size_t)n, sizeof *c->latency_s);
    if (c->batch == NULL || c->latency_s == NULL)
        return "out of memory";
    for (int i = 0; i < n; i++) {
        const cJSON *bi = cJSON_GetArrayItem(batch, i), *li = cJSON_GetArrayItem(lat, i);
        if (!cJSON_IsNumber(bi) || !(bi->valuedouble >= 1) || bi->valuedouble > INT_MAX ||
            bi->valuedouble != floor(bi->valuedouble))
            return "\"batch\" must hold integers >= 1";
        c->batch[i] = (int)bi->valuedouble;
        if (i > 0 && c->batch[i] <= c->batch[i - 1])
            return "\"batch\" must be strictly ascending";
        if (!cJSON_IsNumber(li) || !(li->valuedouble > 0) || !isfinite(li->valuedouble))
            return "\"latency_s\" must hold finite numbers > 0";
        c->latency_s[i] = li->valuedouble;
    }
    c->n_points = n;
    c->alpha_s = a->valuedouble;
    c->beta_s = b->valuedouble;
    return NULL;
}

/* service.calibration + service.precision. Errors sit at the key, or at the
 * value when an override supplied it. The fit is used outside the measured
 * batches, so it must give a positive latency for every batch size from 1 to
 * max_batch (a linear fit: checking both ends is enough). */
static int load_calibration(sc_loader *L, const char *path, sc_kv cal, sc_kv prec, int max_batch,
                            sc_model *m)
{
    char cpath[SC_PATHLEN], ppath[SC_PATHLEN], list[SC_LISTLEN];
    const yaml_node_t *cat = sc_node_set(L, cal.val) ? cal.val : cal.key;
    const char *rel = sc_want_scalar(L, cal.val, sc_join(cpath, path, "calibration"),
                                     "a file path");
    int rc = -1;

    if (rel == NULL)
        return -1;
    char *file = sc_resolve(L, cal.val, rel);
    size_t len = 0;
    char *text = file ? sc_read_file(file, &len) : NULL;
    if (text == NULL) {
        sc_errn(L, cat, "%s: cannot read calibration profile \"%s\": %s", cpath, rel,
                strerror(file ? errno : ENOMEM));
        free(file);
        return -1;
    }
    free(file);
    cJSON *root = cJSON_ParseWithLength(text, len);
    const cJSON *schema = root ? cJSON_GetObjectItemCaseSensitive(root, "schema") : NULL;
    const cJSON *precs = root ? cJSON_GetObjectItemCaseSensitive(root, "precisions") : NULL;
    if (root == NULL) {
        sc_errn(L, cat, "%s: calibration profile \"%s\" is not valid JSON", cpath, rel);
        goto out;
    }
    if (!cJSON_IsString(schema) || strcmp(schema->valuestring, CALIB_SCHEMA) != 0 ||
        !cJSON_IsObject(precs)) {
        sc_errn(L, cat, "%s: \"%s\" is not a calibration profile (needs \"schema\": \"%s\" and "
                "an object \"precisions\")", cpath, rel, CALIB_SCHEMA);
        goto out;
    }
    list[0] = '\0';
    for (const cJSON *p = precs->child; p; p = p->next)
        sc_list_add(list, sizeof list, p->string ? p->string : "");
    if (prec.val == NULL) {
        sc_errn(L, cat, "%s: calibration needs precision: one of %s (from \"%s\")", path,
                *list ? list : "(none in the profile)", rel);
        goto out;
    }
    const char *pname = sc_want_scalar(L, prec.val, sc_join(ppath, path, "precision"), "a string");
    if (pname == NULL)
        goto out;
    const cJSON *pr = cJSON_GetObjectItemCaseSensitive(precs, pname);
    const yaml_node_t *pat = sc_node_set(L, prec.val) ? prec.val : prec.key;
    if (pr == NULL) {
        sc_errn(L, pat, "%s: precision \"%s\" is not in \"%s\" (present: %s)", ppath, pname, rel,
                *list ? list : "none");
        goto out;
    }
    sc_calibration *c = calloc(1, sizeof *c);
    const char *problem = c ? calib_points(pr, c) : "out of memory";
    if (problem == NULL) {
        c->path = strdup(rel);
        c->precision = strdup(pname);
        if (c->path == NULL || c->precision == NULL)
            problem = "out of memory";
    }
    char fitmsg[160];
    for (int i = 0; problem == NULL && i < 2; i++) {
        int b = i ? max_batch : 1;
        if (c->alpha_s + c->beta_s * b <= 0 && (b < c->batch[0] || b > c->batch[c->n_points - 1])) {
            int r = snprintf(fitmsg, sizeof fitmsg, "fit gives a latency <= 0 at batch %d "
                             "(alpha_s %g + beta_s %g * %d)", b, c->alpha_s, c->beta_s, b);
            (void)r;
            problem = fitmsg;
        }
    }
    if (problem) {
        sc_errn(L, cat, "%s: \"%s\": precisions.%s: %s", cpath, rel, pname, problem);
        sc_free_calibration(c);
        goto out;
    }
    sc_free_calibration(m->calibration);
    m->calibration = c;
    rc = 0;
out:
    cJSON_Delete(root);
    free(text);
    return rc;
}

/* ---- models ------------------------------------------------------------- */

static const char *const DIST_NAMES[] = {"deterministic", "exponential", "lognormal", "gamma",
                                         "empirical", NULL};

/* distribution, cv and samples of mapping map (keys already checked). */
static void load_dist(sc_loader *L, yaml_node_t *map, const char *path, sc_dist_kind dflt,
                      sc_dist *d, double *raw_mean, int *have_samples)
{
    char p[SC_PATHLEN];
    sc_kv dist = sc_find(L, map, "distribution"), cv = sc_find(L, map, "cv");
    sc_kv samples = sc_find(L, map, "samples");
    int kind = (int)dflt;

    *have_samples = 0;
    if (dist.val && sc_want_enum(L, dist.val, sc_join(p, path, "distribution"), DIST_NAMES, &kind))
        return;
    d->kind = (sc_dist_kind)kind;
    int needs_cv = kind == SC_DIST_LOGNORMAL || kind == SC_DIST_GAMMA;
    if (cv.key && !needs_cv)
        sc_errn(L, cv.key,
                "%s: cv only applies to distribution lognormal or gamma (this one is %s)",
                path, DIST_NAMES[kind]);
    else if (cv.val)
        sc_want_num(L, cv.val, sc_join(p, path, "cv"), 0, 1, INFINITY, 0, &d->cv);
    else if (needs_cv)
        sc_errn(L, dist.val ? dist.val : map, "%s: distribution %s needs cv (a number > 0)", path,
                DIST_NAMES[kind]);
    if (samples.key && kind != SC_DIST_EMPIRICAL)
        sc_errn(L, samples.key,
                "%s: samples only applies to distribution empirical (this one is %s)",
                path, DIST_NAMES[kind]);
    else if (samples.val)
        *have_samples = load_samples(L, samples.val, sc_join(p, path, "samples"), d, raw_mean) == 0;
    else if (kind == SC_DIST_EMPIRICAL)
        sc_errn(L, dist.val ? dist.val : map,
                "%s: distribution empirical needs samples (a CSV file)", path);
}

static void load_service(sc_loader *L, yaml_node_t *svc, const char *path, int max_batch,
                         sc_model *m)
{
    static const char *const keys[] = {"distribution", "mean", "base", "per_item", "cv",
                                       "samples", "calibration", "precision", "noise", NULL};
    static const char *const noise_keys[] = {"distribution", "cv", "samples", NULL};
    char p[SC_PATHLEN];
    double raw_mean = 0;
    int have_samples = 0;

    if (sc_check_map(L, svc, path, keys))
        return;
    sc_kv mean = sc_find(L, svc, "mean"), base = sc_find(L, svc, "base");
    sc_kv per_item = sc_find(L, svc, "per_item"), cal = sc_find(L, svc, "calibration");
    sc_kv prec = sc_find(L, svc, "precision"), noise = sc_find(L, svc, "noise");

    if (cal.key) {
        static const char *const excl[] = {"mean", "base", "per_item", "distribution", "cv",
                                           "samples", NULL};
        for (const char *const *x = excl; *x; x++) {
            sc_kv e = sc_find(L, svc, *x);
            if (e.key)
                sc_errn(L, e.key, "%s: %s cannot be combined with calibration (the profile gives "
                        "the mean; use noise for the spread)", path, *x);
        }
        load_calibration(L, path, cal, prec, max_batch, m);
        m->noise.kind = SC_DIST_DETERMINISTIC;
        if (noise.val && sc_check_map(L, noise.val, sc_join(p, path, "noise"), noise_keys) == 0)
            load_dist(L, noise.val, p, SC_DIST_DETERMINISTIC, &m->noise, &raw_mean,
                      &have_samples);
        return;
    }
    if (prec.key)
        sc_errn(L, prec.key, "%s: precision only applies with calibration", path);
    if (noise.key)
        sc_errn(L, noise.key, "%s: noise only applies with calibration (use distribution and cv)",
                path);
    load_dist(L, svc, path, SC_DIST_EXPONENTIAL, &m->noise, &raw_mean, &have_samples);

    if (mean.key && (base.key || per_item.key)) {
        sc_errn(L, mean.key, "%s: mean cannot be combined with base/per_item (mean is base with "
                "per_item 0)", path);
    } else if (mean.val) {
        sc_want_dur(L, mean.val, sc_join(p, path, "mean"), 1, &m->base_s);
        m->per_item_s = 0;
    } else if (base.key || per_item.key) {
        int bad = 0;
        m->base_s = m->per_item_s = 0;
        if (base.val)
            bad |= sc_want_dur(L, base.val, sc_join(p, path, "base"), 0, &m->base_s);
        if (per_item.val)
            bad |= sc_want_dur(L, per_item.val, sc_join(p, path, "per_item"), 0, &m->per_item_s);
        if (!bad && m->base_s + m->per_item_s <= 0)
            sc_errn(L, base.val ? base.val : per_item.val,
                    "%s: service time would be 0: base + per_item must be > 0", path);
    } else if (m->noise.kind == SC_DIST_EMPIRICAL) {
        if (have_samples) {
            m->base_s = raw_mean;
            m->per_item_s = 0;
        }
    } else {
        sc_errn(L, svc, "%s: needs mean, base/per_item, samples (distribution empirical) or "
                "calibration", path);
    }
}

/* memory: {weights, per_request}: weights required (> 0), per_request 0. */
static void load_memory(sc_loader *L, yaml_node_t *n, const char *path, sc_model *m)
{
    static const char *const keys[] = {"weights", "per_request", NULL};
    char p[SC_PATHLEN];

    if (sc_check_map(L, n, path, keys))
        return;
    sc_kv w = sc_find(L, n, "weights"), pr = sc_find(L, n, "per_request");
    int bad = 0;
    if (w.val == NULL) {
        sc_errn(L, n, "%s: missing required key weights", path);
        bad = 1;
    } else {
        bad |= sc_want_unit(L, w.val, sc_join(p, path, "weights"), sc_parse_bytes, "size",
                            "16GB, 40GiB", 1, &m->weights_bytes);
    }
    if (pr.val)
        bad |= sc_want_unit(L, pr.val, sc_join(p, path, "per_request"), sc_parse_bytes, "size",
                            "20MB, 512MiB", 0, &m->per_request_bytes);
    m->has_memory = !bad;
}

static void load_model(sc_loader *L, yaml_node_t *n, const char *path, sc_model *m)
{
    static const char *const keys[] = {"service", "batch", "memory", "llm", NULL};
    static const char *const batch_keys[] = {"max_size", "max_wait", NULL};
    char p[SC_PATHLEN];

    m->batch_max_size = 1;
    m->batch_max_wait_s = 0;
    m->noise.kind = SC_DIST_EXPONENTIAL;
    if (sc_check_map(L, n, path, keys))
        return;
    sc_kv svc = sc_find(L, n, "service"), batch = sc_find(L, n, "batch");
    sc_kv llm = sc_find(L, n, "llm");
    if (llm.val) { /* a token-level model: its step time replaces service and batch */
        static const char *const excl[] = {"service", "batch", "memory", NULL};
        for (const char *const *x = excl; *x; x++) {
            sc_kv e = sc_find(L, n, *x);
            if (e.key)
                sc_errn(L, e.key, "%s: %s does not apply to an llm model (its step time and "
                        "KV cache come from llm)", path, *x);
        }
        m->noise.kind = SC_DIST_DETERMINISTIC;
        sc_load_llm(L, llm.val, sc_join(p, path, "llm"), m);
        return;
    }
    /* batch first: a calibration's fit is checked up to max_size */
    if (batch.val && sc_check_map(L, batch.val, sc_join(p, path, "batch"), batch_keys) == 0) {
        char q[SC_PATHLEN];
        sc_kv ms = sc_find(L, batch.val, "max_size"), mw = sc_find(L, batch.val, "max_wait");
        if (ms.val)
            sc_want_intv(L, ms.val, sc_join(q, p, "max_size"), 1, &m->batch_max_size);
        if (mw.val)
            sc_want_dur(L, mw.val, sc_join(q, p, "max_wait"), 0, &m->batch_max_wait_s);
    }
    if (svc.val)
        load_service(L, svc.val, sc_join(p, path, "service"), m->batch_max_size, m);
    else
        sc_errn(L, n, "%s: missing required key service", path);
    sc_kv mem = sc_find(L, n, "memory");
    if (mem.val)
        load_memory(L, mem.val, sc_join(p, path, "memory"), m);
}

void sc_parse_models(sc_loader *L, yaml_node_t *n, sc_scenario *sc)
{
    char p[SC_PATHLEN];

    if (sc_check_map(L, n, "models", NULL))
        return;
    int cnt = sc_count_named(L, n);
    if (cnt == 0) {
        sc_errn(L, n, "models: at least one model is required");
        return;
    }
    sc->models = calloc((size_t)cnt, sizeof *sc->models);
    if (sc->models == NULL) {
        sc_errn(L, n, "models: out of memory");
        return;
    }
    for (yaml_node_pair_t *q = n->data.mapping.pairs.start; q < n->data.mapping.pairs.top; q++) {
        if (!sc_key_usable(L, n, q))
            continue;
        yaml_node_t *k = sc_node(L, q->key);
        sc_model *m = &sc->models[sc->n_models++];
        const char *name = (const char *)k->data.scalar.value;
        sc_join(p, "models", name);
        if (sc_want_str(L, k, "models", 1, &m->name))
            continue;
        load_model(L, sc_node(L, q->value), p, m);
    }
}

/* ---- references from other sections ------------------------------------ */

int sc_find_model(const sc_scenario *sc, const char *name)
{
    for (int i = 0; i < sc->n_models; i++)
        if (sc->models[i].name && strcmp(sc->models[i].name, name) == 0)
            return i;
    return -1;
}

void sc_model_list(const sc_scenario *sc, char *buf, size_t cap)
{
    buf[0] = '\0';
    for (int i = 0; i < sc->n_models; i++)
        if (sc->models[i].name)
            sc_list_add(buf, cap, sc->models[i].name);
}
