/*
 * scenario_autoscale.c - the `autoscaler` section: one mapping, or a
 * sequence of them, each {policy: NAME, pool: POOL, ...policy keys}. The
 * policy keys are handed to the policy as written (with their line and
 * column), and the policy is created once here so that every error in
 * them, or in the manifest they name, is reported at load time.
 */
#include "autoscale.h"
#include "scenario.h"
#include "scenario_internal.h"

#include <yaml.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void load_one(sc_loader *L, yaml_node_t *n, const char *path, sc_scenario *sc,
                     sc_autoscaler *a)
{
    char p[SC_PATHLEN], buf[SC_SHOWLEN], names[SC_LISTLEN];
    a->pool = -1;
    if (n->type != YAML_MAPPING_NODE) {
        sc_errn(L, n, "%s: expected a mapping {policy: ..., pool: ...}, got %s", path, sc_show(n, buf));
        return;
    }
    if (sc_check_map(L, n, path, NULL))
        return;
    sc_kv policy = sc_find(L, n, "policy"), pool = sc_find(L, n, "pool");
    if (!policy.val) {
        sc_errn(L, n, "%s: missing required key policy (%s)", path, as_names(names, sizeof names));
        return;
    }
    if (sc_want_str(L, policy.val, sc_join(p, path, "policy"), 1, &a->policy))
        return;
    if (!as_find(a->policy)) {
        sc_errn(L, policy.val, "%s: unknown autoscaling policy %s (policies: %s)", p,
                sc_show(policy.val, buf), as_names(names, sizeof names));
        return;
    }
    if (pool.val) {
        a->pool = sc_want_pool_ref(L, pool.val, sc_join(p, path, "pool"), sc);
    } else if (sc->n_pools == 1) {
        a->pool = 0;
    } else {
        sc_errn(L, n, "%s: missing key pool (the scenario has %d pools)", path, sc->n_pools);
        return;
    }
    int cnt = (int)(n->data.mapping.pairs.top - n->data.mapping.pairs.start);
    a->keys = calloc((size_t)cnt, sizeof *a->keys);
    a->values = calloc((size_t)cnt, sizeof *a->values);
    a->lines = calloc((size_t)cnt, sizeof *a->lines);
    a->cols = calloc((size_t)cnt, sizeof *a->cols);
    for (yaml_node_pair_t *q = n->data.mapping.pairs.start; q < n->data.mapping.pairs.top; q++) {
        yaml_node_t *k = sc_node(L, q->key), *v = sc_node(L, q->value);
        if (!sc_key_usable(L, n, q))
            continue;
        const char *key = (const char *)k->data.scalar.value;
        if (!strcmp(key, "policy") || !strcmp(key, "pool"))
            continue;
        const char *val = sc_want_scalar(L, v, sc_join(p, path, key), "a value");
        if (!val)
            continue;
        a->keys[a->n_params] = strdup(key);
        a->values[a->n_params] = strdup(val);
        a->lines[a->n_params] = (int)v->start_mark.line + 1;
        a->cols[a->n_params] = (int)v->start_mark.column + 1;
        a->n_params++;
    }
    if (a->pool < 0)
        return;
    const sc_pool *pl = &sc->pools[a->pool];
    if (as_find(a->policy)->needs_llm && pl->model >= 0 && !sc->models[pl->model].llm) {
        sc_errn(L, pool.val ? pool.val : policy.val,
                "%s: autoscaling policy %s scales LLM pools (models.<name>.llm); pool %s serves "
                "model %s", path, a->policy, pl->name, sc->models[pl->model].name);
        return;
    }
    char err[1024];
    as *made = sc_autoscaler_create(sc, a, err, sizeof err);
    if (!made) {
        fprintf(L->err, "%s\n", err);
        L->n_errors++;
        return;
    }
    as_destroy(made);
}

as *sc_autoscaler_create(const sc_scenario *sc, const sc_autoscaler *a, char *err, size_t errlen)
{
    as_param *params = calloc((size_t)a->n_params + 1, sizeof *params);
    for (int i = 0; i < a->n_params; i++)
        params[i] = (as_param){ a->keys[i], a->values[i], a->lines[i], a->cols[i] };
    as_config cfg = { .source = sc->file, .base_dir = sc->dir, .n_params = a->n_params,
                      .params = params };
    as *made = as_create(a->policy, &cfg, err, errlen);
    free(params);
    return made;
}

void sc_parse_autoscaler(sc_loader *L, yaml_node_t *n, sc_scenario *sc)
{
    char p[SC_PATHLEN];
    int cnt = n->type == YAML_SEQUENCE_NODE
                  ? (int)(n->data.sequence.items.top - n->data.sequence.items.start)
                  : 1;
    sc->autoscalers = calloc((size_t)cnt, sizeof *sc->autoscalers);
    if (n->type != YAML_SEQUENCE_NODE) {
        load_one(L, n, "autoscaler", sc, &sc->autoscalers[0]);
        sc->n_autoscalers = 1;
    } else {
        for (int i = 0; i < cnt; i++) {
            snprintf(p, sizeof p, "autoscaler.%d", i);
            load_one(L, sc_node(L, n->data.sequence.items.start[i]), p, sc, &sc->autoscalers[i]);
            sc->n_autoscalers++;
        }
    }
    for (int i = 0; i < sc->n_autoscalers; i++)
        for (int j = 0; j < i; j++)
            if (sc->autoscalers[i].pool >= 0 && sc->autoscalers[i].pool == sc->autoscalers[j].pool)
                sc_errn(L, n, "autoscaler: pool %s has two autoscalers",
                        sc->pools[sc->autoscalers[i].pool].name);
}

void sc_free_autoscalers(sc_scenario *sc)
{
    for (int i = 0; i < sc->n_autoscalers; i++) {
        sc_autoscaler *a = &sc->autoscalers[i];
        for (int k = 0; k < a->n_params; k++) {
            free(a->keys[k]);
            free(a->values[k]);
        }
        free(a->keys);
        free(a->values);
        free(a->lines);
        free(a->cols);
        free(a->policy);
    }
    free(sc->autoscalers);
}
