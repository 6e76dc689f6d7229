/*
 * scenario_pools.c - the `pools` section of a scenario: pools.<name> with its
 * model, replicas, gpus_per_node, gpu_type (which sets the default power
 * draw and price), queue_capacity, timeout, link (latency, bandwidth),
 * power and price_per_gpu_hour. Parsed after models (a pool names its
 * model); also the pool lookups that traffic and load_balancer use.
 */
#include "scenario.h"
#include "scenario_internal.h"

#include <yaml.h>

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* Board power from the vendors' datasheets (A100 SXM 400 W, H100/H200 SXM
 * 700 W), idle as typically measured with a model loaded, off = BMC standby;
 * prices: on-demand cloud list prices per GPU-hour, 2025-26. See
 * scenarios/README.md. */
static const struct {
    const char *name;
    double idle_w, busy_w, off_w, price;
} GPU_TYPES[] = {
    {"a100", 50, 400, 5, 2.00},
    {"h100", 70, 700, 5, 3.00},
    {"h200", 75, 700, 5, 3.80},
    {"cpu", 60, 200, 5, 0.40},
};
static const char *const GPU_TYPE_NAMES[] = {"a100", "h100", "h200", "cpu", NULL};

int sc_find_pool(const sc_scenario *sc, const char *name)
{
    for (int i = 0; i < sc->n_pools; i++)
        if (sc->pools[i].name && strcmp(sc->pools[i].name, name) == 0)
            return i;
    return -1;
}

void sc_pool_list(const sc_scenario *sc, char *buf, size_t cap)
{
    buf[0] = '\0';
    for (int i = 0; i < sc->n_pools; i++)
        if (sc->pools[i].name)
            sc_list_add(buf, cap, sc->pools[i].name);
}

/* A pool name reference: index, or -1 after an error listing the pools. */
int sc_want_pool_ref(sc_loader *L, const yaml_node_t *n, const char *path, const sc_scenario *sc)
{
    char list[SC_LISTLEN], buf[SC_SHOWLEN];
    const char *s = sc_want_scalar(L, n, path, "a pool name");
    if (s == NULL)
        return -1;
    int i = sc_find_pool(sc, s);
    if (i < 0) {
        sc_pool_list(sc, list, sizeof list);
        sc_errn(L, n, "%s: unknown pool %s (pools: %s)", path, sc_show(n, buf),
                *list ? list : "none");
    }
    return i;
}

static void load_pool(sc_loader *L, yaml_node_t *n, const char *path, const sc_scenario *sc,
                      sc_pool *pl)
{
    static const char *const keys[] = {"model", "replicas", "gpus_per_node", "gpu_type",
                                       "queue_capacity", "timeout", "link", "power",
                                       "price_per_gpu_hour", NULL};
    static const char *const link_keys[] = {"latency", "bandwidth", NULL};
    static const char *const power_keys[] = {"idle_per_gpu", "busy_per_gpu", "off", NULL};
    char p[SC_PATHLEN], q[SC_PATHLEN], list[SC_LISTLEN], buf[SC_SHOWLEN];
    int type = 1; /* h100 */

    pl->model = -1;
    pl->replicas = 1;
    pl->gpus_per_node = 1;
    pl->queue_capacity = 1000;
    pl->timeout_s = 0;
    pl->link_latency_s = 100e-6;
    pl->link_bandwidth_Bps = 10e9 / 8;
    if (sc_check_map(L, n, path, keys))
        return;
    sc_kv model = sc_find(L, n, "model"), replicas = sc_find(L, n, "replicas");
    sc_kv gpus = sc_find(L, n, "gpus_per_node"), gtype = sc_find(L, n, "gpu_type");
    sc_kv qcap = sc_find(L, n, "queue_capacity"), timeout = sc_find(L, n, "timeout");
    sc_kv link = sc_find(L, n, "link"), power = sc_find(L, n, "power");
    sc_kv price = sc_find(L, n, "price_per_gpu_hour");

    if (model.val == NULL) {
        sc_errn(L, n, "%s: missing required key model", path);
    } else {
        const char *s = sc_want_scalar(L, model.val, sc_join(p, path, "model"), "a model name");
        if (s && (pl->model = sc_find_model(sc, s)) < 0) {
            sc_model_list(sc, list, sizeof list);
            sc_errn(L, model.val, "%s: unknown model %s (models: %s)", p, sc_show(model.val, buf),
                    *list ? list : "none");
        }
    }
    if (replicas.val == NULL)
        sc_errn(L, n, "%s: missing required key replicas", path);
    else
        sc_want_intv(L, replicas.val, sc_join(p, path, "replicas"), 1, &pl->replicas);
    if (gpus.val)
        sc_want_intv(L, gpus.val, sc_join(p, path, "gpus_per_node"), 1, &pl->gpus_per_node);
    if (gtype.val)
        sc_want_enum(L, gtype.val, sc_join(p, path, "gpu_type"), GPU_TYPE_NAMES, &type);
    pl->power.gpu_type = strdup(GPU_TYPES[type].name);
    pl->power.idle_w_per_gpu = GPU_TYPES[type].idle_w;
    pl->power.busy_w_per_gpu = GPU_TYPES[type].busy_w;
    pl->power.off_w = GPU_TYPES[type].off_w;
    pl->power.price_per_gpu_hour = GPU_TYPES[type].price;
    if (qcap.val)
        sc_want_intv(L, qcap.val, sc_join(p, path, "queue_capacity"), 1, &pl->queue_capacity);
    if (timeout.val)
        sc_want_dur(L, timeout.val, sc_join(p, path, "timeout"), 0, &pl->timeout_s);
    if (link.val && sc_check_map(L, link.val, sc_join(p, path, "link"), link_keys) == 0) {
        sc_kv lat = sc_find(L, link.val, "latency"), bw = sc_find(L, link.val, "bandwidth");
        if (lat.val)
            sc_want_dur(L, lat.val, sc_join(q, p, "latency"), 0, &pl->link_latency_s);
        if (bw.val)
            sc_want_unit(L, bw.val, sc_join(q, p, "bandwidth"), sc_parse_bandwidth_Bps, "bandwidth",
                         "10Gbps, 1.5GB/s", 1, &pl->link_bandwidth_Bps);
    }
    if (power.val && sc_check_map(L, power.val, sc_join(p, path, "power"), power_keys) == 0) {
        sc_kv idle = sc_find(L, power.val, "idle_per_gpu");
        sc_kv busy = sc_find(L, power.val, "busy_per_gpu");
        sc_kv off = sc_find(L, power.val, "off");
        int bad = 0;
        if (idle.val)
            bad |= sc_want_watts(L, idle.val, sc_join(q, p, "idle_per_gpu"),
                                 &pl->power.idle_w_per_gpu);
        if (busy.val)
            bad |= sc_want_watts(L, busy.val, sc_join(q, p, "busy_per_gpu"),
                                 &pl->power.busy_w_per_gpu);
        if (off.val)
            sc_want_watts(L, off.val, sc_join(q, p, "off"), &pl->power.off_w);
        if (!bad && pl->power.busy_w_per_gpu < pl->power.idle_w_per_gpu)
            sc_errn(L, busy.val ? busy.val : idle.val,
                    "%s: busy_per_gpu (%g W) must be >= idle_per_gpu (%g W)", p,
                    pl->power.busy_w_per_gpu, pl->power.idle_w_per_gpu);
    }
    if (price.val)
        sc_want_num(L, price.val, sc_join(p, path, "price_per_gpu_hour"), 0, 0, INFINITY, 0,
                    &pl->power.price_per_gpu_hour);
}

void sc_parse_pools(sc_loader *L, yaml_node_t *n, sc_scenario *sc)
{
    char p[SC_PATHLEN];

    if (sc_check_map(L, n, "pools", NULL))
        return;
    int cnt = sc_count_named(L, n);
    if (cnt == 0) {
        sc_errn(L, n, "pools: at least one pool is required");
        return;
    }
    sc->pools = calloc((size_t)cnt, sizeof *sc->pools);
    if (sc->pools == NULL) {
        sc_errn(L, n, "pools: out of memory");
        return;
    }
    /* Names first, then contents, so that errors inside one pool do not
     * turn references to it into "unknown pool" errors. */
    for (yaml_node_pair_t *q = n->data.mapping.pairs.start; q < n->data.mapping.pairs.top; q++) {
        if (!sc_key_usable(L, n, q))
            continue;
        sc_pool *pl = &sc->pools[sc->n_pools++];
        sc_want_str(L, sc_node(L, q->key), "pools", 1, &pl->name);
    }
    int i = 0;
    for (yaml_node_pair_t *q = n->data.mapping.pairs.start; q < n->data.mapping.pairs.top; q++) {
        if (!sc_key_usable(L, n, q))
            continue;
        sc_pool *pl = &sc->pools[i++];
        if (pl->name)
            load_pool(L, sc_node(L, q->value), sc_join(p, "pools", pl->name), sc, pl);
    }
}
