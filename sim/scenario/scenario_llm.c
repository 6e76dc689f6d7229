/*
 * scenario_llm.c - the scenario keys of token-level LLM serving:
 * models.<name>.llm (the shape from a Hugging Face config.json or inline,
 * precisions, the step-time model, vLLM's engine arguments), the pool keys
 * that place it on hardware (gpu from the catalog or by its own figures,
 * tensor_parallel), and traffic.<c>.tokens (token counts per request from
 * distributions, or replayed with the arrivals from an Azure or Mooncake
 * trace). Called from the models, pools and traffic sections.
 */
#include "scenario.h"
#include "scenario_internal.h"

#include <cjson/cJSON.h>
#include <yaml.h>

#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

static const char *const BOOL_NAMES[] = {"false", "true", NULL};
static const char *const PRECISION_NAMES[] = {"fp32", "fp16", "bf16", "fp8", "int8", "int4",
                                              NULL};

static int want_bool(sc_loader *L, const yaml_node_t *n, const char *path, int *out)
{
    return sc_want_enum(L, n, path, BOOL_NAMES, out);
}

static int want_precision(sc_loader *L, const yaml_node_t *n, const char *path,
                          llm_precision *out)
{
    int i;
    if (sc_want_enum(L, n, path, PRECISION_NAMES, &i))
        return -1;
    *out = (llm_precision)i;
    return 0;
}

/* config: a path to config.json, or the same fields inline (numbers only). */
static void load_shape(sc_loader *L, yaml_node_t *n, const char *path, sc_llm *m)
{
    char err[256];
    if (n->type == YAML_SCALAR_NODE) {
        if (sc_want_str(L, n, path, 1, &m->config_path))
            return;
        char *file = sc_resolve(L, n, m->config_path);
        if (!file || llm_shape_load(file, &m->shape, err, sizeof err))
            sc_errn(L, n, "%s: %s", path, file ? err : "out of memory");
        free(file);
        return;
    }
    if (sc_check_map(L, n, path, NULL))
        return;
    cJSON *o = cJSON_CreateObject();
    for (yaml_node_pair_t *q = n->data.mapping.pairs.start; q < n->data.mapping.pairs.top; q++) {
        if (!sc_key_usable(L, n, q))
            continue;
        yaml_node_t *k = sc_node(L, q->key), *v = sc_node(L, q->value);
        char p[SC_PATHLEN];
        double x;
        const char *key = (const char *)k->data.scalar.value;
        if (v->type == YAML_SCALAR_NODE && strcmp((const char *)v->data.scalar.value, "true") == 0)
            cJSON_AddBoolToObject(o, key, 1);
        else if (v->type == YAML_SCALAR_NODE &&
                 strcmp((const char *)v->data.scalar.value, "false") == 0)
            cJSON_AddBoolToObject(o, key, 0);
        else if (sc_want_num(L, v, sc_join(p, path, key), -INFINITY, 0, INFINITY, 0, &x) == 0)
            cJSON_AddNumberToObject(o, key, x);
    }
    char *text = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    if (text && llm_shape_parse(text, &m->shape, err, sizeof err))
        sc_errn(L, n, "%s: %s", path, err);
    free(text);
}

/* A realbench calibration profile's "llm_step" (realbench llm-step; schema
 * in realbench/README.md), named by the scalar v: the parsed profile (the
 * caller deletes it) with *ls its llm_step, or NULL once an error is
 * reported at the value. */
static cJSON *load_llm_step(sc_loader *L, yaml_node_t *v, const char *path, const cJSON **ls,
                            const char **rel_out)
{
    const char *rel = sc_want_scalar(L, v, path, "a profile path");
    if (!rel)
        return NULL;
    *rel_out = rel;
    char *file = sc_resolve(L, v, rel);
    size_t len = 0;
    char *text = file ? sc_read_file(file, &len) : NULL;
    free(file);
    if (!text) {
        sc_errn(L, v, "%s: cannot read calibration profile \"%s\"", path, rel);
        return NULL;
    }
    cJSON *root = cJSON_ParseWithLength(text, len);
    free(text);
    const cJSON *schema = cJSON_GetObjectItemCaseSensitive(root, "schema");
    *ls = cJSON_GetObjectItemCaseSensitive(root, "llm_step");
    if (!root) {
        sc_errn(L, v, "%s: calibration profile \"%s\" is not valid JSON", path, rel);
    } else if (!cJSON_IsString(schema) ||
               strcmp(schema->valuestring, "fleetsim-calibration/1") != 0) {
        sc_errn(L, v, "%s: \"%s\" is not a calibration profile (needs \"schema\": "
                "\"fleetsim-calibration/1\")", path, rel);
    } else if (!cJSON_IsObject(*ls)) {
        sc_errn(L, v, "%s: \"%s\" has no LLM step measurements (\"llm_step\"; realbench "
                "llm-step --into %s adds them)", path, rel, rel);
    } else {
        return root;
    }
    cJSON_Delete(root);
    return NULL;
}

/* step.calibration: the alpha_beta coefficients from a profile's
 * "llm_step", or with step.precision (prec, its node pv) from
 * llm_step.precisions.<prec>. Errors sit at the value; 0, or -1 once one is
 * reported. */
static int load_step_calibration(sc_loader *L, yaml_node_t *v, const char *path,
                                 yaml_node_t *pv, const char *prec, sc_llm *m)
{
    static const char *const coef[] = {"overhead_s", "per_prefill_token_s", "per_decode_seq_s",
                                       "per_context_token_s", "per_prefill_attention_s"};
    double *dst[] = {&m->overhead_s, &m->prefill_token_s, &m->decode_seq_s,
                     &m->context_token_s, &m->prefill_attention_pair_s};
    const cJSON *ls = NULL;
    const char *rel = NULL;
    cJSON *root = load_llm_step(L, v, path, &ls, &rel);
    if (!root)
        return -1;
    int rc = -1;
    if (prec) {
        const cJSON *pr = cJSON_GetObjectItemCaseSensitive(ls, "precisions");
        const cJSON *sec = cJSON_GetObjectItemCaseSensitive(pr, prec);
        if (!cJSON_IsObject(sec)) {
            char have[128] = "";
            size_t len = 0;
            for (const cJSON *x = cJSON_IsObject(pr) ? pr->child : NULL; x; x = x->next)
                if (x->string && len + strlen(x->string) + 3 < sizeof have)
                    len += (size_t)snprintf(have + len, sizeof have - len, "%s%s",
                                            len ? ", " : "", x->string);
            sc_errn(L, pv, "%s: \"%s\" has no LLM steps measured in %s (llm_step.precisions: "
                    "%s; realbench llm-step --precision %s --into %s adds them)", path, rel,
                    prec, len ? have : "none", prec, rel);
            cJSON_Delete(root);
            return -1;
        }
        ls = sec;
    }
    double sum = 0;
    for (int i = 0; i < 5; i++) {
        const cJSON *x = cJSON_GetObjectItemCaseSensitive(ls, coef[i]);
        if (i == 4 && !x)
            break; /* profiles fitted before the attention term: 0 */
        if (!cJSON_IsNumber(x) || !isfinite(x->valuedouble) || x->valuedouble < 0) {
            sc_errn(L, v, "%s: \"%s\": llm_step.%s must be a number >= 0%s", path, rel,
                    coef[i], x ? "" : " (missing)");
            cJSON_Delete(root);
            return -1;
        }
        *dst[i] = x->valuedouble;
        sum += x->valuedouble;
    }
    if (!(sum > 0))
        sc_errn(L, v, "%s: \"%s\": every llm_step coefficient is 0 (a step would take "
                "no time)", path, rel);
    else
        rc = 0;
    cJSON_Delete(root);
    return rc;
}

/* A profile's llm_step.noise.slow {cv, correlation_s}, when there is one
 * (realbench llm-loop fits it on the loop's own steps). */
static void load_profile_slow(sc_loader *L, yaml_node_t *at, const char *p, const char *rel,
                              const cJSON *nz, sc_llm *m)
{
    const cJSON *s = cJSON_GetObjectItemCaseSensitive(nz, "slow");
    if (!s)
        return;
    const cJSON *x = cJSON_GetObjectItemCaseSensitive(s, "cv");
    const cJSON *y = cJSON_GetObjectItemCaseSensitive(s, "correlation_s");
    if (!cJSON_IsObject(s))
        sc_errn(L, at, "%s: \"%s\": llm_step.noise.slow must be an object {cv, correlation_s}",
                p, rel);
    else if (!cJSON_IsNumber(x) || !isfinite(x->valuedouble) || !(x->valuedouble > 0))
        sc_errn(L, at, "%s: \"%s\": llm_step.noise.slow.cv must be a number > 0", p, rel);
    else if (!cJSON_IsNumber(y) || !isfinite(y->valuedouble) || !(y->valuedouble > 0))
        sc_errn(L, at, "%s: \"%s\": llm_step.noise.slow.correlation_s must be a number > 0",
                p, rel);
    else {
        m->noise_slow_cv = x->valuedouble;
        m->noise_slow_correlation_s = y->valuedouble;
    }
}

/* step.noise.slow: {cv, correlation_s}, both required. */
static void load_step_noise_slow(sc_loader *L, yaml_node_t *n, const char *path, sc_llm *m)
{
    static const char *const keys[] = {"cv", "correlation_s", NULL};
    char p[SC_PATHLEN];
    if (sc_check_map(L, n, path, keys))
        return;
    sc_kv cv = sc_find(L, n, "cv"), cor = sc_find(L, n, "correlation_s");
    if (!cv.val || !cor.val) {
        sc_errn(L, n, "%s: needs cv and correlation_s", path);
        return;
    }
    sc_want_num(L, cv.val, sc_join(p, path, "cv"), 0, 1, 10, 0, &m->noise_slow_cv);
    sc_want_num(L, cor.val, sc_join(p, path, "correlation_s"), 0, 1, 1e6, 0,
                &m->noise_slow_correlation_s);
}

/* step.noise: {cv, correlation_s, slow: {cv, correlation_s}}, or
 * {calibration: P.json} for the same fields from the profile's
 * llm_step.noise (realbench llm-step --noise; llm-loop adds slow). */
static void load_step_noise(sc_loader *L, yaml_node_t *n, const char *path, sc_llm *m)
{
    static const char *const keys[] = {"cv", "correlation_s", "slow", "calibration", NULL};
    char p[SC_PATHLEN];
    if (sc_check_map(L, n, path, keys))
        return;
    sc_kv cv = sc_find(L, n, "cv"), cor = sc_find(L, n, "correlation_s"),
          slow = sc_find(L, n, "slow"), cal = sc_find(L, n, "calibration");
    if (cal.val) {
        if (cv.key || cor.key || slow.key) {
            yaml_node_t *k = cv.key ? cv.key : cor.key ? cor.key : slow.key;
            sc_errn(L, k, "%s: %s comes from calibration; give one or the other", path,
                    cv.key ? "cv" : cor.key ? "correlation_s" : "slow");
            return;
        }
        const cJSON *ls = NULL;
        const char *rel = NULL;
        cJSON *root = load_llm_step(L, cal.val, sc_join(p, path, "calibration"), &ls, &rel);
        if (!root)
            return;
        const cJSON *nz = cJSON_GetObjectItemCaseSensitive(ls, "noise");
        const cJSON *x = cJSON_GetObjectItemCaseSensitive(nz, "cv");
        const cJSON *y = cJSON_GetObjectItemCaseSensitive(nz, "correlation_s");
        if (!cJSON_IsObject(nz))
            sc_errn(L, cal.val, "%s: \"%s\" has no llm_step.noise (realbench llm-step "
                    "--noise-steps N measures it)", p, rel);
        else if (!cJSON_IsNumber(x) || !isfinite(x->valuedouble) || !(x->valuedouble > 0))
            sc_errn(L, cal.val, "%s: \"%s\": llm_step.noise.cv must be a number > 0", p, rel);
        else if (!cJSON_IsNumber(y) || !isfinite(y->valuedouble) || y->valuedouble < 0)
            sc_errn(L, cal.val, "%s: \"%s\": llm_step.noise.correlation_s must be a number "
                    ">= 0", p, rel);
        else {
            m->noise_cv = x->valuedouble;
            m->noise_correlation_s = y->valuedouble;
            load_profile_slow(L, cal.val, p, rel, nz, m);
        }
        cJSON_Delete(root);
        return;
    }
    if (!cv.val) {
        sc_errn(L, n, "%s: needs cv (or calibration)", path);
        return;
    }
    sc_want_num(L, cv.val, sc_join(p, path, "cv"), 0, 1, 10, 0, &m->noise_cv);
    if (cor.val)
        sc_want_num(L, cor.val, sc_join(p, path, "correlation_s"), 0, 0, 1e6, 0,
                    &m->noise_correlation_s);
    if (slow.val)
        load_step_noise_slow(L, slow.val, sc_join(p, path, "slow"), m);
}

/* step: {model: roofline | alpha_beta, overhead, mfu_prefill, mfu_decode,
 * per_prefill_token, per_decode_seq, per_context_token,
 * per_prefill_attention, calibration, precision, noise} */
static void load_step(sc_loader *L, yaml_node_t *n, const char *path, sc_llm *m)
{
    static const char *const keys[] = {"model", "overhead", "mfu_prefill", "mfu_decode",
                                       "per_prefill_token", "per_decode_seq",
                                       "per_context_token", "per_prefill_attention",
                                       "calibration", "precision", "noise", NULL};
    static const char *const kinds[] = {"roofline", "alpha_beta", NULL};
    static const char *const ab[] = {"per_prefill_token", "per_decode_seq", "per_context_token",
                                     "per_prefill_attention", NULL};
    static const char *const rf[] = {"mfu_prefill", "mfu_decode", NULL};
    char p[SC_PATHLEN];
    int kind = 0;
    if (sc_check_map(L, n, path, keys))
        return;
    sc_kv nz = sc_find(L, n, "noise");
    if (nz.val)
        load_step_noise(L, nz.val, sc_join(p, path, "noise"), m);
    sc_kv k = sc_find(L, n, "model"), ov = sc_find(L, n, "overhead");
    if (k.val && sc_want_enum(L, k.val, sc_join(p, path, "model"), kinds, &kind))
        return;
    m->step = kind ? LLM_STEP_ALPHA_BETA : LLM_STEP_ROOFLINE;
    if (ov.val)
        sc_want_dur(L, ov.val, sc_join(p, path, "overhead"), 0, &m->overhead_s);
    const char *const *other = kind ? rf : ab;
    for (const char *const *x = other; *x; x++) {
        sc_kv e = sc_find(L, n, *x);
        if (e.key)
            sc_errn(L, e.key, "%s: %s does not apply to model %s", path, *x, kinds[kind]);
    }
    sc_kv c0 = sc_find(L, n, "calibration");
    if (c0.key && kind == 0)
        sc_errn(L, c0.key, "%s: calibration applies to model alpha_beta (a profile's fitted "
                "coefficients)", path);
    sc_kv p0 = sc_find(L, n, "precision");
    if (p0.key && kind == 0)
        sc_errn(L, p0.key, "%s: precision applies to model alpha_beta with calibration", path);
    if (kind == 0) {
        sc_kv a = sc_find(L, n, "mfu_prefill"), b = sc_find(L, n, "mfu_decode");
        if (a.val)
            sc_want_num(L, a.val, sc_join(p, path, "mfu_prefill"), 0, 1, 1, 0, &m->mfu_prefill);
        if (b.val)
            sc_want_num(L, b.val, sc_join(p, path, "mfu_decode"), 0, 1, 1, 0, &m->mfu_decode);
        return;
    }
    sc_kv cal = sc_find(L, n, "calibration"), pk = sc_find(L, n, "precision");
    const char *prec = NULL;
    if (pk.key && !cal.val) {
        sc_errn(L, pk.key, "%s: precision picks a section of the calibration profile; give "
                "calibration", path);
        return;
    }
    if (pk.val && !(prec = sc_want_scalar(L, pk.val, sc_join(p, path, "precision"),
                                          "a precision (int8, fp16, fp32, ...)")))
        return;
    if (cal.val) { /* every coefficient from the profile */
        static const char *const given[] = {"overhead", "per_prefill_token", "per_decode_seq",
                                            "per_context_token", "per_prefill_attention", NULL};
        int clash = 0;
        for (const char *const *x = given; *x; x++) {
            sc_kv e = sc_find(L, n, *x);
            if (e.key && ++clash)
                sc_errn(L, e.key, "%s: %s comes from calibration; give one or the other", path,
                        *x);
        }
        m->step_refused =
            clash || load_step_calibration(L, cal.val, sc_join(p, path, "calibration"),
                                           pk.val, prec, m);
        return;
    }
    double *dst[] = {&m->prefill_token_s, &m->decode_seq_s, &m->context_token_s,
                     &m->prefill_attention_pair_s};
    int any = 0;
    for (int i = 0; ab[i]; i++) {
        sc_kv e = sc_find(L, n, ab[i]);
        if (e.val && sc_want_dur(L, e.val, sc_join(p, path, ab[i]), 0, dst[i]) == 0)
            any |= *dst[i] > 0;
    }
    if (!any && m->overhead_s <= 0)
        sc_errn(L, n, "%s: alpha_beta needs overhead, per_prefill_token, per_decode_seq, "
                "per_context_token or per_prefill_attention > 0 (a step would take no time)",
                path);
}

void sc_load_llm(sc_loader *L, yaml_node_t *n, const char *path, sc_model *model)
{
    static const char *const keys[] = {"config", "precision", "kv_precision", "step",
                                       "max_num_batched_tokens", "max_num_seqs", "block_size",
                                       "gpu_memory_utilization", "kv_blocks",
                                       "long_prefill_threshold", "enable_prefix_caching",
                                       "chunked_prefill", "coalesce_steps", NULL};
    char p[SC_PATHLEN];
    sc_llm *m = calloc(1, sizeof *m);
    if (!m) {
        sc_errn(L, n, "%s: out of memory", path);
        return;
    }
    model->llm = m;
    m->weights = m->activations = m->kv = LLM_BF16;
    m->step = LLM_STEP_ROOFLINE;
    m->block_size = 16;
    m->gpu_memory_utilization = 0.9;
    m->chunked_prefill = 1;
    m->coalesce_steps = 1;
    if (sc_check_map(L, n, path, keys))
        return;
    sc_kv cfg = sc_find(L, n, "config");
    if (cfg.val)
        load_shape(L, cfg.val, sc_join(p, path, "config"), m);
    else
        sc_errn(L, n, "%s: missing required key config (a config.json path, or its fields)",
                path);
    sc_kv prec = sc_find(L, n, "precision"), kvp = sc_find(L, n, "kv_precision");
    if (prec.val && want_precision(L, prec.val, sc_join(p, path, "precision"), &m->weights) == 0)
        m->activations = m->kv = m->weights == LLM_FP8 || m->weights == LLM_INT8 ||
                                         m->weights == LLM_INT4
                                     ? LLM_BF16 /* quantised weights, 16-bit activations */
                                     : m->weights;
    if (kvp.val)
        want_precision(L, kvp.val, sc_join(p, path, "kv_precision"), &m->kv);
    sc_kv step = sc_find(L, n, "step");
    if (step.val)
        load_step(L, step.val, sc_join(p, path, "step"), m);
    struct {
        const char *key;
        int *dst;
        int min;
    } ints[] = {{"max_num_batched_tokens", &m->max_num_batched_tokens, 1},
                {"max_num_seqs", &m->max_num_seqs, 1},
                {"block_size", &m->block_size, 1},
                {"long_prefill_threshold", &m->long_prefill_threshold, 1}};
    for (size_t i = 0; i < sizeof ints / sizeof ints[0]; i++) {
        sc_kv e = sc_find(L, n, ints[i].key);
        if (e.val)
            sc_want_intv(L, e.val, sc_join(p, path, ints[i].key), ints[i].min, ints[i].dst);
    }
    sc_kv util = sc_find(L, n, "gpu_memory_utilization"), kb = sc_find(L, n, "kv_blocks");
    if (util.val)
        sc_want_num(L, util.val, sc_join(p, path, "gpu_memory_utilization"), 0, 1, 1, 0,
                    &m->gpu_memory_utilization);
    if (kb.val) {
        long long v;
        if (sc_want_int(L, kb.val, sc_join(p, path, "kv_blocks"), 1, 1000000000LL, &v) == 0)
            m->kv_blocks = (long)v;
    }
    sc_kv pc = sc_find(L, n, "enable_prefix_caching"), ch = sc_find(L, n, "chunked_prefill");
    if (pc.val)
        want_bool(L, pc.val, sc_join(p, path, "enable_prefix_caching"), &m->enable_prefix_caching);
    if (ch.val)
        want_bool(L, ch.val, sc_join(p, path, "chunked_prefill"), &m->chunked_prefill);
    sc_kv co = sc_find(L, n, "coalesce_steps");
    if (co.val)
        want_bool(L, co.val, sc_join(p, path, "coalesce_steps"), &m->coalesce_steps);
}

void sc_free_llm(sc_llm *m)
{
    if (!m)
        return;
    free(m->config_path);
    free(m);
}

/* gpu: a catalog name, or {like, name, bf16_tflops, fp8_tflops, int8_tflops,
 * fp32_tflops, memory, memory_bandwidth, power, price_per_gpu_hour}. */
static void load_gpu(sc_loader *L, yaml_node_t *n, const char *path, sc_pool *pl)
{
    static const char *const keys[] = {"like", "name", "bf16_tflops", "fp8_tflops",
                                       "int8_tflops", "fp32_tflops", "memory",
                                       "memory_bandwidth", "power", "nvlink_bandwidth", NULL};
    char p[SC_PATHLEN], list[SC_LISTLEN], buf[SC_SHOWLEN];
    const yaml_node_t *like = n;
    sc_kv lk = { NULL, NULL };
    if (n->type == YAML_MAPPING_NODE) {
        if (sc_check_map(L, n, path, keys))
            return;
        lk = sc_find(L, n, "like");
        like = lk.val;
    }
    list[0] = '\0';
    for (int i = 0; llm_gpu_catalog[i]; i++)
        sc_list_add(list, sizeof list, llm_gpu_catalog[i]->name);
    if (like) {
        const char *s = sc_want_scalar(L, like, lk.val ? sc_join(p, path, "like") : path,
                                       "a GPU name");
        const llm_gpu *g = s ? llm_gpu_find(s) : NULL;
        if (s && !g) {
            sc_errn(L, like, "%s: unknown GPU %s (known: %s; or give its figures: name, "
                    "bf16_tflops, memory, memory_bandwidth, ...)", path, sc_show(like, buf), list);
            return;
        }
        if (!g)
            return;
        pl->gpu = *g;
    } else {
        memset(&pl->gpu, 0, sizeof pl->gpu);
        pl->gpu.mfu_prefill = 0.45; /* BLIS's H100 figures when nothing is said */
        pl->gpu.mfu_decode = 0.30;
    }
    if (n->type != YAML_MAPPING_NODE) {
        pl->gpu_name = strdup(pl->gpu.name);
        pl->gpu.name = pl->gpu_name;
        return;
    }
    sc_kv name = sc_find(L, n, "name");
    if (name.val)
        sc_want_str(L, name.val, sc_join(p, path, "name"), 1, &pl->gpu_name);
    else
        pl->gpu_name = strdup(pl->gpu.name ? pl->gpu.name : "custom");
    pl->gpu.name = pl->gpu_name;
    struct {
        const char *key;
        double *dst;
    } tf[] = {{"bf16_tflops", &pl->gpu.flops_fp16}, {"fp8_tflops", &pl->gpu.flops_fp8},
              {"int8_tflops", &pl->gpu.flops_int8}, {"fp32_tflops", &pl->gpu.flops_fp32}};
    for (size_t i = 0; i < sizeof tf / sizeof tf[0]; i++) {
        sc_kv e = sc_find(L, n, tf[i].key);
        double v;
        if (e.val && sc_want_num(L, e.val, sc_join(p, path, tf[i].key), 0, 0, INFINITY, 0, &v) == 0)
            *tf[i].dst = v * 1e12;
    }
    sc_kv mem = sc_find(L, n, "memory"), bw = sc_find(L, n, "memory_bandwidth");
    sc_kv pw = sc_find(L, n, "power"), nvl = sc_find(L, n, "nvlink_bandwidth");
    if (nvl.val)
        sc_want_unit(L, nvl.val, sc_join(p, path, "nvlink_bandwidth"), sc_parse_bandwidth_Bps,
                     "bandwidth", "450GBps, 3600Gbps", 1, &pl->gpu.nvlink_Bps);
    if (mem.val)
        sc_want_unit(L, mem.val, sc_join(p, path, "memory"), sc_parse_bytes, "size",
                     "80GB, 141GB", 1, &pl->gpu.hbm_bytes);
    if (bw.val)
        sc_want_unit(L, bw.val, sc_join(p, path, "memory_bandwidth"), sc_parse_bandwidth_Bps,
                     "bandwidth", "3350GBps, 26800Gbps", 1, &pl->gpu.hbm_Bps);
    if (pw.val)
        sc_want_watts(L, pw.val, sc_join(p, path, "power"), &pl->gpu.power_w);
    if (!like) {
        int bad = 0;
        if (!(pl->gpu.flops_fp16 > 0) && ++bad)
            sc_errn(L, n, "%s: a GPU given by its figures needs bf16_tflops", path);
        if (!(pl->gpu.hbm_bytes > 0) && ++bad)
            sc_errn(L, n, "%s: a GPU given by its figures needs memory", path);
        if (!(pl->gpu.hbm_Bps > 0) && ++bad)
            sc_errn(L, n, "%s: a GPU given by its figures needs memory_bandwidth", path);
        if (bad) { /* refused: nothing to cost the model on */
            free(pl->gpu_name);
            pl->gpu_name = NULL;
        }
    }
}

void sc_llm_perf(const sc_llm *m, const sc_pool *pl, llm_perf *pf)
{
    memset(pf, 0, sizeof *pf);
    pf->shape = m->shape;
    pf->weights = m->weights;
    pf->activations = m->activations;
    pf->kv = m->kv;
    pf->tp = pl->tensor_parallel;
    if (pl->expert_parallel > 1) {
        pf->tp = 1;
        pf->ep = pl->expert_parallel;
        pf->redundant_experts = pl->redundant_experts;
        pf->gpus_per_node = pl->node_gpus;
        pf->interconnect_Bps = pl->interconnect_Bps;
    }
    pf->gpu = pl->gpu;
    pf->kind = m->step;
    pf->mfu_prefill = m->mfu_prefill > 0 ? m->mfu_prefill : pl->gpu.mfu_prefill;
    pf->mfu_decode = m->mfu_decode > 0 ? m->mfu_decode : pl->gpu.mfu_decode;
    pf->overhead_s = m->overhead_s;
    pf->prefill_token_s = m->prefill_token_s;
    pf->decode_seq_s = m->decode_seq_s;
    pf->context_token_s = m->context_token_s;
    pf->prefill_attention_pair_s = m->prefill_attention_pair_s;
}

void sc_llm_limits_get(const sc_llm *m, const sc_pool *pl, const llm_perf *pf, sc_llm_limits *out)
{
    /* vLLM's defaults (vllm/engine/arg_utils.py, _set_default_args): 8192
     * tokens and 1024 sequences on GPUs of 70 GiB or more that are not an
     * A100, else 2048 and 256 */
    int big = pl->gpu.hbm_bytes >= 70.0 * 1073741824.0 && !strstr(pl->gpu.name, "A100");
    out->max_num_batched_tokens = m->max_num_batched_tokens > 0 ? m->max_num_batched_tokens
                                  : big                         ? 8192
                                                                : 2048;
    out->max_num_seqs = m->max_num_seqs > 0 ? m->max_num_seqs : big ? 1024 : 256;
    out->num_blocks = m->kv_blocks > 0 ? m->kv_blocks
                                       : llm_kv_blocks(pf, m->gpu_memory_utilization, m->block_size,
                                                       NULL, 0);
}

double sc_weights_load_s(const sc_pool *pl, int gpus)
{
    if (!(pl->life.load_bandwidth_Bps > 0) || !(pl->life.weights_bytes > 0))
        return 0;
    int tp = pl->tensor_parallel > 0 ? pl->tensor_parallel : 1;
    return (double)(gpus / tp) * pl->life.weights_bytes / pl->life.load_bandwidth_Bps;
}

void sc_load_pool_llm(sc_loader *L, yaml_node_t *n, const char *path, const sc_scenario *sc,
                      sc_pool *pl)
{
    char p[SC_PATHLEN];
    sc_kv gpu = sc_find(L, n, "gpu"), tp = sc_find(L, n, "tensor_parallel");
    sc_kv ttft = sc_find(L, n, "ttft_timeout");
    sc_kv ep = sc_find(L, n, "expert_parallel"), red = sc_find(L, n, "redundant_experts");
    sc_kv icn = sc_find(L, n, "interconnect");
    int llm = pl->model >= 0 && sc->models[pl->model].llm;
    sc_kv life = sc_find(L, n, "lifecycle");
    sc_kv lbw = life.val && life.val->type == YAML_MAPPING_NODE ? sc_find(L, life.val, "load_bandwidth")
                                                                : (sc_kv){ 0 };
    if (lbw.key && !llm && pl->model >= 0) {
        sc_errn(L, lbw.key, "%s: lifecycle.load_bandwidth applies to pools of an LLM model (its "
                "weights come from models.<name>.llm); use lifecycle.load", path);
        pl->life.load_bandwidth_Bps = 0;
    }
    pl->tensor_parallel = 1;
    if (ttft.key && !llm && pl->model >= 0)
        sc_errn(L, ttft.key, "%s: ttft_timeout applies to pools of an LLM model (a first token "
                "needs a token stream); use timeout", path);
    else if (ttft.val && llm)
        sc_want_dur(L, ttft.val, sc_join(p, path, "ttft_timeout"), 0, &pl->ttft_timeout_s);
    if (!llm) {
        if (gpu.key)
            sc_errn(L, gpu.key, "%s: gpu applies to pools of an LLM model (models.<name>.llm); "
                    "use gpu_type for the power and price defaults", path);
        if (tp.key)
            sc_errn(L, tp.key, "%s: tensor_parallel applies to pools of an LLM model", path);
        if (ep.key || red.key || icn.key)
            sc_errn(L, ep.key ? ep.key : red.key ? red.key : icn.key,
                    "%s: expert_parallel, redundant_experts and interconnect apply to pools of "
                    "an LLM model", path);
        return;
    }
    pl->node_gpus = pl->gpus_per_node;
    if ((red.key || icn.key) && !ep.key)
        sc_errn(L, red.key ? red.key : icn.key,
                "%s: redundant_experts and interconnect need expert_parallel", path);
    if (ep.val &&
        sc_want_intv(L, ep.val, sc_join(p, path, "expert_parallel"), 1,
                     &pl->expert_parallel) == 0 &&
        pl->expert_parallel > 1) {
        const sc_llm *em = sc->models[pl->model].llm;
        int e = pl->expert_parallel, g = pl->gpus_per_node;
        if (tp.key) {
            sc_errn(L, tp.key, "%s: tensor_parallel with expert_parallel: attention runs "
                    "data-parallel across the expert-parallel group (leave tensor_parallel out)",
                    path);
            return;
        }
        if (em && em->shape.hidden_size > 0 && em->shape.n_routed_experts <= 0) {
            sc_errn(L, ep.val, "%s: expert_parallel needs an MoE model (%s has no routed "
                    "experts)", path, sc->models[pl->model].name);
            return;
        }
        if (e > g ? e % g != 0 : g % e != 0) {
            sc_errn(L, ep.val, "%s: expert_parallel %d must be a multiple of gpus_per_node %d "
                    "(a group of whole nodes) or divide it", path, e, g);
            return;
        }
        if (red.val)
            sc_want_intv(L, red.val, sc_join(p, path, "redundant_experts"), 0,
                         &pl->redundant_experts);
        if (icn.val)
            sc_want_unit(L, icn.val, sc_join(p, path, "interconnect"), sc_parse_bandwidth_Bps,
                         "bandwidth", "400Gbps, 50GBps", 1, &pl->interconnect_Bps);
        else if (e > g) {
            sc_errn(L, ep.val, "%s: expert_parallel %d spans %d nodes: give interconnect (the "
                    "inter-node bandwidth per GPU, e.g. 400Gbps)", path, e, e / g);
            return;
        }
        /* the simulated node is the group when it spans nodes */
        if (e > g)
            pl->gpus_per_node = e;
        pl->tensor_parallel = e;
    }
    if (gpu.val) {
        load_gpu(L, gpu.val, sc_join(p, path, "gpu"), pl);
        if (!pl->gpu_name)
            return; /* refused */
    } else {
        /* from gpu_type: the datasheet part it names */
        const char *t = pl->power.gpu_type;
        const llm_gpu *g = llm_gpu_find(strcmp(t, "a100") == 0   ? "A100-80G"
                                        : strcmp(t, "h200") == 0 ? "H200"
                                        : strcmp(t, "h100") == 0 ? "H100-SXM"
                                                                 : "");
        if (!g) {
            sc_errn(L, n, "%s: an LLM pool needs gpu (gpu_type %s has no GPU figures)", path, t);
            return;
        }
        pl->gpu = *g;
        pl->gpu_name = strdup(g->name);
        pl->gpu.name = pl->gpu_name;
    }
    /* the GPU's own power and price unless the pool sets them (parsed later) */
    pl->power.busy_w_per_gpu = pl->gpu.power_w > 0 ? pl->gpu.power_w : pl->power.busy_w_per_gpu;
    pl->power.idle_w_per_gpu = pl->gpu.idle_w > 0 ? pl->gpu.idle_w : pl->power.idle_w_per_gpu;
    if (pl->power.idle_w_per_gpu > pl->power.busy_w_per_gpu)
        pl->power.idle_w_per_gpu = pl->power.busy_w_per_gpu;
    if (pl->gpu.price_per_hour > 0)
        pl->power.price_per_gpu_hour = pl->gpu.price_per_hour;
    if (tp.val &&
        sc_want_intv(L, tp.val, sc_join(p, path, "tensor_parallel"), 1, &pl->tensor_parallel) == 0 &&
        pl->gpus_per_node % pl->tensor_parallel != 0) {
        sc_errn(L, tp.val, "%s: tensor_parallel %d does not divide gpus_per_node %d (a replica "
                "spans GPUs of one node)", p, pl->tensor_parallel, pl->gpus_per_node);
        return;
    }
    /* the model must fit the replica, and the step model must be costable */
    const sc_llm *m = sc->models[pl->model].llm;
    if (m->shape.hidden_size <= 0 || m->step_refused)
        return; /* its config or step was refused already */
    llm_perf pf;
    char err[256];
    sc_llm_perf(m, pl, &pf);
    if (llm_perf_check(&pf, err, sizeof err)) {
        sc_errn(L, n, "%s: model %s on %s: %s", path, sc->models[pl->model].name, pl->gpu.name,
                err);
        return;
    }
    pl->life.weights_bytes = llm_weight_bytes(&pf);
    if (m->kv_blocks == 0 && llm_kv_blocks(&pf, m->gpu_memory_utilization, m->block_size, err,
                                           sizeof err) <= 0)
        sc_errn(L, n, "%s: model %s does not fit %d x %s at gpu_memory_utilization %g: %s "
                "(raise tensor_parallel, or give llm.kv_blocks)", path,
                sc->models[pl->model].name, pl->tensor_parallel, pl->gpu.name,
                m->gpu_memory_utilization, err);
}

/* A token count: a whole number, or {distribution: fixed | lognormal |
 * empirical, mean, cv, values, min, max}. */
static int load_tok_dist(sc_loader *L, yaml_node_t *n, const char *path, tok_dist *d)
{
    static const char *const keys[] = {"distribution", "mean", "cv", "values", "min", "max",
                                       NULL};
    static const char *const kinds[] = {"fixed", "lognormal", "empirical", NULL};
    char p[SC_PATHLEN], buf[SC_SHOWLEN];
    memset(d, 0, sizeof *d);
    d->min = 1;
    if (n->type == YAML_SCALAR_NODE) {
        long long v;
        if (sc_want_int(L, n, path, 1, INT_MAX, &v))
            return -1;
        d->kind = TOK_FIXED;
        d->mean = (double)v;
        return 0;
    }
    if (sc_check_map(L, n, path, keys))
        return -1;
    int kind = 0;
    sc_kv dist = sc_find(L, n, "distribution"), mean = sc_find(L, n, "mean");
    sc_kv cv = sc_find(L, n, "cv"), vals = sc_find(L, n, "values");
    sc_kv mn = sc_find(L, n, "min"), mx = sc_find(L, n, "max");
    if (dist.val && sc_want_enum(L, dist.val, sc_join(p, path, "distribution"), kinds, &kind))
        return -1;
    int bad = 0;
    if (kind == 2) {
        if (!vals.val || vals.val->type != YAML_SEQUENCE_NODE) {
            sc_errn(L, vals.val ? vals.val : n, "%s: distribution empirical needs values (a "
                    "sequence of token counts)", path);
            return -1;
        }
        size_t cnt = (size_t)(vals.val->data.sequence.items.top - vals.val->data.sequence.items.start);
        if (cnt == 0) {
            sc_errn(L, vals.val, "%s: values is empty", sc_join(p, path, "values"));
            return -1;
        }
        d->values = calloc(cnt, sizeof *d->values);
        for (size_t i = 0; i < cnt; i++) {
            long long v;
            yaml_node_t *it = sc_node(L, vals.val->data.sequence.items.start[i]);
            if (sc_want_int(L, it, sc_join(p, path, "values"), 1, INT_MAX, &v) == 0)
                d->values[d->n_values++] = (int)v;
            else
                bad = 1;
        }
        if (mean.key || cv.key)
            sc_errn(L, mean.key ? mean.key : cv.key, "%s: empirical takes values, not mean or cv",
                    path);
        d->kind = TOK_EMPIRICAL;
    } else {
        if (vals.key)
            sc_errn(L, vals.key, "%s: values applies to distribution empirical", path);
        if (!mean.val) {
            sc_errn(L, n, "%s: missing required key mean", path);
            return -1;
        }
        double m = 0, c = 0;
        bad |= sc_want_num(L, mean.val, sc_join(p, path, "mean"), 1, 0, 1e9, 0, &m);
        if (kind == 1) {
            if (!cv.val)
                sc_errn(L, n, "%s: distribution lognormal needs cv", path);
            else
                bad |= sc_want_num(L, cv.val, sc_join(p, path, "cv"), 0, 1, 100, 0, &c);
            if (!bad && cv.val)
                tok_dist_lognormal_mean_cv(d, m, c);
        } else {
            if (cv.key)
                sc_errn(L, cv.key, "%s: cv applies to distribution lognormal", path);
            d->kind = TOK_FIXED;
            d->mean = round(m);
        }
    }
    if (mn.val)
        bad |= sc_want_intv(L, mn.val, sc_join(p, path, "min"), 1, &d->min);
    if (mx.val)
        bad |= sc_want_intv(L, mx.val, sc_join(p, path, "max"), 1, &d->max);
    if (!bad && d->max > 0 && d->max < d->min)
        sc_errn(L, mx.val, "%s: max %d is below min %d (got %s)", path, d->max, d->min,
                sc_show(mx.val, buf));
    return bad ? -1 : 0;
}

/* system_prompt: {tokens, prompts}. */
static int load_system_prompt(sc_loader *L, yaml_node_t *n, const char *path, sc_traffic *t)
{
    static const char *const keys[] = {"tokens", "prompts", NULL};
    char p[SC_PATHLEN];
    long long v;
    if (sc_check_map(L, n, path, keys))
        return -1;
    sc_kv tok = sc_find(L, n, "tokens"), pr = sc_find(L, n, "prompts");
    if (!tok.val) {
        sc_errn(L, n, "%s: missing required key tokens (the shared prefix's length)", path);
        return -1;
    }
    if (sc_want_int(L, tok.val, sc_join(p, path, "tokens"), 1, 10000000, &v))
        return -1;
    t->system_prompt_tokens = (int)v;
    t->system_prompts = 1;
    if (pr.val) {
        if (sc_want_int(L, pr.val, sc_join(p, path, "prompts"), 1, 1000000, &v))
            return -1;
        t->system_prompts = (int)v;
    }
    return 0;
}

void sc_tokens_system_hashes(sc_traffic *t, int class_index)
{
    if (t->system_prompts <= 0)
        return;
    t->system_hashes = malloc(sizeof *t->system_hashes * (size_t)t->system_prompts);
    if (!t->system_hashes) {
        t->system_prompts = t->system_prompt_tokens = 0;
        return;
    }
    /* the top bit keeps them apart from a trace's hash_ids (Mooncake's
     * count up from 0); the class's index, from another class's prompts */
    for (int k = 0; k < t->system_prompts; k++)
        t->system_hashes[k] = (1ULL << 63) | ((uint64_t)(unsigned)class_index << 32) | (unsigned)k;
}

int sc_load_tokens(sc_loader *L, yaml_node_t *n, const char *path, sc_traffic *t)
{
    static const char *const keys[] = {"input", "output", "trace", "speedup", "copies",
                                       "system_prompt", NULL};
    char p[SC_PATHLEN], err[512];
    t->has_tokens = 1;
    t->trace_speedup = 1;
    if (sc_check_map(L, n, path, keys))
        return -1;
    sc_kv in = sc_find(L, n, "input"), out = sc_find(L, n, "output");
    sc_kv tr = sc_find(L, n, "trace"), sp = sc_find(L, n, "speedup");
    sc_kv cp = sc_find(L, n, "copies"), sys = sc_find(L, n, "system_prompt");
    t->trace_copies = 1;
    if (sp.val)
        sc_want_num(L, sp.val, sc_join(p, path, "speedup"), 0, 1, 1e6, 0, &t->trace_speedup);
    long long copies = 1;
    if (cp.val && sc_want_int(L, cp.val, sc_join(p, path, "copies"), 1, 10000, &copies) == 0)
        t->trace_copies = (int)copies;
    if (tr.val) {
        if (in.key || out.key)
            sc_errn(L, in.key ? in.key : out.key, "%s: a trace gives the token counts: input "
                    "and output do not apply with trace", path);
        if (sys.key)
            sc_errn(L, sys.key, "%s: system_prompt does not apply with trace (a trace's "
                    "hash_ids name its shared prefixes)", path);
        const char *rel = sc_want_scalar(L, tr.val, sc_join(p, path, "trace"), "a trace file");
        if (!rel)
            return -1;
        char *file = sc_resolve(L, tr.val, rel);
        t->tokens_trace = calloc(1, sizeof *t->tokens_trace);
        if (!file || !t->tokens_trace ||
            tok_trace_load(file, t->tokens_trace, err, sizeof err)) {
            sc_errn(L, tr.val, "%s: %s", p, file ? err : "out of memory");
            free(t->tokens_trace);
            t->tokens_trace = NULL;
            free(file);
            return -1;
        }
        free(file);
        return 0;
    }
    if (sp.key || cp.key)
        sc_errn(L, sp.key ? sp.key : cp.key, "%s: %s applies to a trace's arrivals", path,
                sp.key ? "speedup" : "copies");
    if (!in.val || !out.val) {
        sc_errn(L, n, "%s: needs input and output (token counts), or trace", path);
        return -1;
    }
    int bad = load_tok_dist(L, in.val, sc_join(p, path, "input"), &t->in_tokens);
    bad |= load_tok_dist(L, out.val, sc_join(p, path, "output"), &t->out_tokens);
    if (sys.val)
        bad |= load_system_prompt(L, sys.val, sc_join(p, path, "system_prompt"), t);
    return bad;
}

void sc_free_tokens(sc_traffic *t)
{
    tok_dist_free(&t->in_tokens);
    tok_dist_free(&t->out_tokens);
    if (t->tokens_trace) {
        tok_trace_free(t->tokens_trace);
        free(t->tokens_trace);
    }
    free(t->trace_row);
    free(t->system_hashes);
}
