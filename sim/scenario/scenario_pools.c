/*
 * scenario_pools.c - the `pools` section of a scenario: pools.<name> with its
 * model, replicas, gpus_per_node, gpu_type (which sets the default power
 * draw and price), queue_capacity, timeout, link (latency, bandwidth),
 * power and price_per_gpu_hour, max_replicas, zone, lifecycle (the
 * durations of a replica's way up and out), health_check, node_pool (the
 * cluster nodes under the replicas, with a Cluster Autoscaler), rollout,
 * and the memory the exporters report: gpu_memory (one GPU's capacity,
 * which must hold the model's weights and its largest batch) and
 * host_memory (total, base, per_queued_request). Parsed after
 * models (a pool names its model); also the pool lookups that traffic,
 * load_balancer and chaos use.
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

/* A delay: a plain duration, or {mean, distribution, cv, shape}. */
int sc_want_delay(sc_loader *L, const yaml_node_t *n, const char *path, sc_delay *d)
{
    static const char *const keys[] = {"mean", "distribution", "cv", "shape", NULL};
    static const char *const dists[] = {"deterministic", "exponential", "lognormal", "gamma",
                                        "weibull", NULL};
    static const sc_dist_kind kinds[] = {SC_DIST_DETERMINISTIC, SC_DIST_EXPONENTIAL,
                                         SC_DIST_LOGNORMAL, SC_DIST_GAMMA, SC_DIST_WEIBULL};
    char p[SC_PATHLEN];
    d->shape.kind = SC_DIST_DETERMINISTIC;
    if (n->type != YAML_MAPPING_NODE)
        return sc_want_dur(L, n, path, 0, &d->mean_s);
    if (sc_check_map(L, (yaml_node_t *)n, path, keys))
        return -1;
    sc_kv mean = sc_find(L, n, "mean"), dist = sc_find(L, n, "distribution");
    sc_kv cv = sc_find(L, n, "cv"), shape = sc_find(L, n, "shape");
    int bad = 0, k = 0;
    if (mean.val == NULL) {
        sc_errn(L, n, "%s: missing required key mean", path);
        bad = 1;
    } else {
        bad |= sc_want_dur(L, mean.val, sc_join(p, path, "mean"), 0, &d->mean_s);
    }
    if (dist.val && sc_want_enum(L, dist.val, sc_join(p, path, "distribution"), dists, &k) == 0)
        d->shape.kind = kinds[k];
    int needs_cv = d->shape.kind == SC_DIST_LOGNORMAL || d->shape.kind == SC_DIST_GAMMA;
    if (cv.val && !needs_cv) {
        sc_errn(L, cv.val, "%s: cv applies to lognormal and gamma only", sc_join(p, path, "cv"));
        bad = 1;
    } else if (needs_cv && cv.val == NULL) {
        sc_errn(L, n, "%s: %s needs cv", path, dists[k]);
        bad = 1;
    } else if (cv.val) {
        bad |= sc_want_num(L, cv.val, sc_join(p, path, "cv"), 0, 1, INFINITY, 0, &d->shape.cv);
    }
    if (shape.val && d->shape.kind != SC_DIST_WEIBULL) {
        sc_errn(L, shape.val, "%s: shape applies to weibull only", sc_join(p, path, "shape"));
        bad = 1;
    } else if (d->shape.kind == SC_DIST_WEIBULL && shape.val == NULL) {
        sc_errn(L, n, "%s: weibull needs shape", path);
        bad = 1;
    } else if (shape.val) {
        bad |= sc_want_num(L, shape.val, sc_join(p, path, "shape"), 0, 1, 100, 0,
                           &d->shape.shape);
    }
    return bad ? -1 : 0;
}

static void load_lifecycle(sc_loader *L, yaml_node_t *n, const char *path, sc_lifecycle *life)
{
    static const char *const keys[] = {"provision", "start", "load", "warmup", "drain_grace",
                                       "start_failure", "load_bandwidth", NULL};
    char p[SC_PATHLEN];
    if (sc_check_map(L, n, path, keys))
        return;
    struct {
        const char *key;
        sc_delay *d;
    } delays[] = {{"provision", &life->provision}, {"start", &life->start},
                  {"load", &life->load}, {"warmup", &life->warmup}};
    for (size_t i = 0; i < sizeof delays / sizeof delays[0]; i++) {
        sc_kv kv = sc_find(L, n, delays[i].key);
        if (kv.val)
            sc_want_delay(L, kv.val, sc_join(p, path, delays[i].key), delays[i].d);
    }
    sc_kv grace = sc_find(L, n, "drain_grace"), fail = sc_find(L, n, "start_failure");
    if (grace.val)
        sc_want_dur(L, grace.val, sc_join(p, path, "drain_grace"), 0, &life->drain_grace_s);
    if (fail.val)
        sc_want_num(L, fail.val, sc_join(p, path, "start_failure"), 0, 0, 1, 1,
                    &life->start_failure_prob);
    /* whether the pool's model has weights to read is checked with the
     * model (sc_load_pool_llm) */
    sc_kv bw = sc_find(L, n, "load_bandwidth");
    if (bw.val) {
        if (bw.val->type == YAML_SCALAR_NODE &&
            strcmp((const char *)bw.val->data.scalar.value, "default") == 0)
            life->load_bandwidth_Bps = SC_DEFAULT_LOAD_BANDWIDTH_BPS;
        else
            sc_want_unit(L, bw.val, sc_join(p, path, "load_bandwidth"), sc_parse_bandwidth_Bps,
                         "bandwidth", "2GB/s, 25Gbps, or default", 1,
                         &life->load_bandwidth_Bps);
    }
}

static void load_health(sc_loader *L, yaml_node_t *n, const char *path, sc_health *h)
{
    static const char *const keys[] = {"interval", "timeout", "fall", "rise", NULL};
    char p[SC_PATHLEN];
    /* nginx Plus health_check defaults: interval=5 fails=1 passes=1 */
    h->interval_s = 5;
    h->timeout_s = 1;
    h->fall = 1;
    h->rise = 1;
    if (sc_check_map(L, n, path, keys))
        return;
    sc_kv iv = sc_find(L, n, "interval"), to = sc_find(L, n, "timeout");
    sc_kv fall = sc_find(L, n, "fall"), rise = sc_find(L, n, "rise");
    if (iv.val)
        sc_want_dur(L, iv.val, sc_join(p, path, "interval"), 1, &h->interval_s);
    if (to.val)
        sc_want_dur(L, to.val, sc_join(p, path, "timeout"), 1, &h->timeout_s);
    if (fall.val)
        sc_want_intv(L, fall.val, sc_join(p, path, "fall"), 1, &h->fall);
    if (rise.val)
        sc_want_intv(L, rise.val, sc_join(p, path, "rise"), 1, &h->rise);
}

/* Cluster Autoscaler flag defaults (cluster-autoscaler/main.go, FAQ.md):
 * --scan-interval 10s, --scale-down-unneeded-time 10m,
 * --scale-down-delay-after-add 10m. Provisioning defaults to the pool's
 * lifecycle.provision (read before this). */
static void load_node_pool(sc_loader *L, yaml_node_t *n, const char *path, sc_pool *pl)
{
    static const char *const keys[] = {"max_nodes", "pods_per_node", "provisioning",
                                       "scan_interval", "scale_down_unneeded",
                                       "scale_down_delay_after_add", NULL};
    char p[SC_PATHLEN];
    sc_node_pool *np = &pl->node_pool;
    np->pods_per_node = 1;
    np->provisioning = pl->life.provision;
    np->scan_interval_s = 10;
    np->unneeded_s = 600;
    np->delay_after_add_s = 600;
    if (sc_check_map(L, n, path, keys))
        return;
    np->enabled = 1;
    sc_kv maxn = sc_find(L, n, "max_nodes"), ppn = sc_find(L, n, "pods_per_node");
    sc_kv prov = sc_find(L, n, "provisioning"), scan = sc_find(L, n, "scan_interval");
    sc_kv unneeded = sc_find(L, n, "scale_down_unneeded");
    sc_kv after_add = sc_find(L, n, "scale_down_delay_after_add");
    int bad = 0;
    if (maxn.val == NULL) {
        sc_errn(L, n, "%s: missing required key max_nodes", path);
        bad = 1;
    } else {
        bad |= sc_want_intv(L, maxn.val, sc_join(p, path, "max_nodes"), 1, &np->max_nodes);
    }
    if (ppn.val)
        bad |= sc_want_intv(L, ppn.val, sc_join(p, path, "pods_per_node"), 1, &np->pods_per_node);
    if (prov.val)
        sc_want_delay(L, prov.val, sc_join(p, path, "provisioning"), &np->provisioning);
    if (scan.val)
        sc_want_dur(L, scan.val, sc_join(p, path, "scan_interval"), 1, &np->scan_interval_s);
    if (unneeded.val)
        sc_want_dur(L, unneeded.val, sc_join(p, path, "scale_down_unneeded"), 0, &np->unneeded_s);
    if (after_add.val)
        sc_want_dur(L, after_add.val, sc_join(p, path, "scale_down_delay_after_add"), 0,
                    &np->delay_after_add_s);
    /* the initial replicas start on nodes that are up at t = 0 */
    if (!bad && pl->replicas > 0 &&
        (pl->replicas + np->pods_per_node - 1) / np->pods_per_node > np->max_nodes)
        sc_errn(L, maxn.val, "%s: max_nodes (%d) x pods_per_node (%d) cannot hold the %d initial "
                "replicas", sc_join(p, path, "max_nodes"), np->max_nodes, np->pods_per_node,
                pl->replicas);
}

/* A GPU memory capacity at n (a pool's or a rollout's gpu_memory): > 0, and
 * it must hold the model's weights plus its largest batch, as a server that
 * preallocates for max_size would need. 0 with *out set, or -1. */
static int want_gpu_memory(sc_loader *L, const yaml_node_t *n, const char *path,
                           const sc_scenario *sc, const sc_pool *pl, double *out)
{
    double cap;
    if (sc_want_unit(L, n, path, sc_parse_bytes, "size", "80GB, 141GB, 80GiB", 1, &cap))
        return -1;
    if (pl->model < 0)
        return -1; /* reported at model */
    const sc_model *m = &sc->models[pl->model];
    if (!m->has_memory) {
        sc_errn(L, n, "%s: model %s has no memory (weights, per_request) to hold against this "
                "capacity", path, m->name);
        return -1;
    }
    double need = m->weights_bytes + m->per_request_bytes * m->batch_max_size;
    if (need > cap) {
        sc_errn(L, n, "%s: %.0f B cannot hold model %s: weights %.0f B + per_request %.0f B x "
                "batch.max_size %d = %.0f B", path, cap, m->name, m->weights_bytes,
                m->per_request_bytes, m->batch_max_size, need);
        return -1;
    }
    *out = cap;
    return 0;
}

/* host_memory: {total, base, per_queued_request}; queue_capacity read before. */
static void load_host_memory(sc_loader *L, yaml_node_t *n, const char *path, sc_pool *pl)
{
    static const char *const keys[] = {"total", "base", "per_queued_request", NULL};
    char p[SC_PATHLEN];
    sc_host_memory hm = { 0 };
    if (sc_check_map(L, n, path, keys))
        return;
    sc_kv total = sc_find(L, n, "total"), base = sc_find(L, n, "base");
    sc_kv per = sc_find(L, n, "per_queued_request");
    int bad = 0;
    if (total.val == NULL) {
        sc_errn(L, n, "%s: missing required key total", path);
        bad = 1;
    } else {
        bad |= sc_want_unit(L, total.val, sc_join(p, path, "total"), sc_parse_bytes, "size",
                            "512GB, 2TiB", 1, &hm.total_bytes);
    }
    if (base.val == NULL) {
        sc_errn(L, n, "%s: missing required key base", path);
        bad = 1;
    } else {
        bad |= sc_want_unit(L, base.val, sc_join(p, path, "base"), sc_parse_bytes, "size",
                            "8GB, 16GiB", 0, &hm.base_bytes);
    }
    if (per.val)
        bad |= sc_want_unit(L, per.val, sc_join(p, path, "per_queued_request"), sc_parse_bytes,
                            "size", "1MB, 64KiB", 0, &hm.per_queued_bytes);
    if (bad)
        return;
    double peak = hm.base_bytes + hm.per_queued_bytes * pl->queue_capacity;
    if (peak > hm.total_bytes) {
        sc_errn(L, total.val, "%s: total %.0f B is below what a full queue needs: base %.0f B + "
                "per_queued_request %.0f B x queue_capacity %d = %.0f B", path, hm.total_bytes,
                hm.base_bytes, hm.per_queued_bytes, pl->queue_capacity, peak);
        return;
    }
    pl->host_memory = hm;
}

/* rollout: {at, gpus_per_node, gpu_type, gpu_memory, max_surge, max_unavailable} */
static void load_rollout(sc_loader *L, yaml_node_t *n, const char *path, const sc_scenario *sc,
                         sc_pool *pl)
{
    static const char *const keys[] = {"at", "gpus_per_node", "gpu_type", "gpu_memory",
                                       "max_surge", "max_unavailable", NULL};
    char p[SC_PATHLEN];
    sc_rollout *ro = &pl->rollout;
    int type = -1;
    if (sc_check_map(L, n, path, keys))
        return;
    if (pl->node_pool.enabled) {
        sc_errn(L, n, "%s: a rollout with a node_pool is not modelled", path);
        return;
    }
    if (pl->expert_parallel > 1) {
        sc_errn(L, n, "%s: a rollout of an expert_parallel pool is not modelled", path);
        return;
    }
    sc_kv at = sc_find(L, n, "at"), g = sc_find(L, n, "gpus_per_node");
    sc_kv gt = sc_find(L, n, "gpu_type"), surge = sc_find(L, n, "max_surge");
    sc_kv unav = sc_find(L, n, "max_unavailable"), gmem = sc_find(L, n, "gpu_memory");
    ro->gpus_per_node = pl->gpus_per_node;
    ro->power = pl->power;
    ro->power.gpu_type = NULL;
    ro->max_surge = 1;            /* Kubernetes' defaults are 25%/25%; one */
    ro->max_unavailable = 0;      /* node at a time, none lost, is the usual GPU choice */
    if (!at.val) {
        sc_errn(L, n, "%s: missing required key at", path);
        return;
    }
    if (sc_want_dur(L, at.val, sc_join(p, path, "at"), 0, &ro->at_s))
        return;
    if (g.val)
        sc_want_intv(L, g.val, sc_join(p, path, "gpus_per_node"), 1, &ro->gpus_per_node);
    if (gt.val && sc_want_enum(L, gt.val, sc_join(p, path, "gpu_type"), GPU_TYPE_NAMES, &type) == 0) {
        ro->power.idle_w_per_gpu = GPU_TYPES[type].idle_w;
        ro->power.busy_w_per_gpu = GPU_TYPES[type].busy_w;
        ro->power.off_w = GPU_TYPES[type].off_w;
        ro->power.price_per_gpu_hour = GPU_TYPES[type].price;
    }
    /* the pool's gpu_memory carries over to nodes of the same gpu_type only */
    if (gmem.val) {
        if (want_gpu_memory(L, gmem.val, sc_join(p, path, "gpu_memory"), sc, pl,
                            &ro->power.gpu_memory_bytes))
            return;
    } else if (type >= 0 && strcmp(GPU_TYPES[type].name, pl->power.gpu_type) != 0 &&
               pl->power.gpu_memory_bytes > 0) {
        sc_errn(L, gt.val, "%s: the pool declares gpu_memory and the rollout changes gpu_type to "
                "%s: give the new GPUs' rollout.gpu_memory too", path, GPU_TYPES[type].name);
        return;
    }
    if (surge.val)
        sc_want_intv(L, surge.val, sc_join(p, path, "max_surge"), 0, &ro->max_surge);
    if (unav.val)
        sc_want_intv(L, unav.val, sc_join(p, path, "max_unavailable"), 0, &ro->max_unavailable);
    if (ro->max_surge == 0 && ro->max_unavailable == 0) {
        sc_errn(L, n, "%s: max_surge and max_unavailable cannot both be 0 (the rollout could not "
                      "make progress; Kubernetes refuses it too)", path);
        return;
    }
    ro->power.gpu_type = strdup(type >= 0 ? GPU_TYPES[type].name : pl->power.gpu_type);
    ro->enabled = 1;
}

static const char *const ROLE_NAMES[] = {"mixed", "prefill", "decode", NULL};

/* role, and a prefill pool's decode_router (decode_pool is resolved once
 * every pool is read: check_roles). */
static void load_role(sc_loader *L, yaml_node_t *n, const char *path, const sc_scenario *sc,
                      sc_pool *pl)
{
    char p[SC_PATHLEN];
    sc_kv role = sc_find(L, n, "role"), dp = sc_find(L, n, "decode_pool");
    sc_kv router = sc_find(L, n, "decode_router");
    int llm = pl->model >= 0 && sc->models[pl->model].llm;
    if (role.val) {
        if (!llm && pl->model >= 0) {
            sc_errn(L, role.key, "%s: role applies to pools of an LLM model "
                    "(models.<name>.llm): prefill and decode are token-level phases", path);
            return;
        }
        sc_want_enum(L, role.val, sc_join(p, path, "role"), ROLE_NAMES, &pl->role);
    }
    if (pl->role != SC_ROLE_PREFILL) {
        if (dp.key)
            sc_errn(L, dp.key, "%s: decode_pool applies to a pool with role: prefill", path);
        if (router.key)
            sc_errn(L, router.key, "%s: decode_router applies to a pool with role: prefill", path);
        return;
    }
    if (!dp.val)
        sc_errn(L, role.val, "%s: a prefill pool needs decode_pool (the pool of role decode its "
                "requests' KV caches go to)", path);
    if (router.val)
        sc_want_lb_policy(L, router.val, sc_join(p, path, "decode_router"), &pl->decode_router);
}

/* After every pool is read: each prefill pool's decode_pool names a pool
 * of role decode serving the same model, and each decode pool is named by
 * exactly one prefill pool. */
static void check_roles(sc_loader *L, yaml_node_t *n, sc_scenario *sc)
{
    char p[SC_PATHLEN], q2[SC_PATHLEN];
    int *named_by = malloc(sizeof *named_by * (size_t)(sc->n_pools ? sc->n_pools : 1));
    if (!named_by)
        return;
    for (int i = 0; i < sc->n_pools; i++)
        named_by[i] = -1;
    int i = 0;
    for (yaml_node_pair_t *q = n->data.mapping.pairs.start; q < n->data.mapping.pairs.top; q++) {
        if (!sc_key_usable(L, n, q))
            continue;
        sc_pool *pl = &sc->pools[i++];
        yaml_node_t *v = sc_node(L, q->value);
        if (!pl->name || pl->role != SC_ROLE_PREFILL || !v || v->type != YAML_MAPPING_NODE)
            continue;
        sc_kv dp = sc_find(L, v, "decode_pool");
        if (!dp.val)
            continue;
        sc_join(p, "pools", pl->name);
        int d = sc_want_pool_ref(L, dp.val, sc_join(q2, p, "decode_pool"), sc);
        if (d < 0)
            continue;
        const sc_pool *dpl = &sc->pools[d];
        if (dpl->role != SC_ROLE_DECODE) {
            sc_errn(L, dp.val, "%s.decode_pool: pool %s has role %s, not decode (give it "
                    "role: decode)", p, dpl->name, ROLE_NAMES[dpl->role]);
            continue;
        }
        if (dpl->model != pl->model) {
            sc_errn(L, dp.val, "%s.decode_pool: pool %s serves model %s, not %s: a KV cache is "
                    "read only by the model that wrote it", p, dpl->name,
                    dpl->model >= 0 ? sc->models[dpl->model].name : "?",
                    pl->model >= 0 ? sc->models[pl->model].name : "?");
            continue;
        }
        if (named_by[d] >= 0) {
            sc_errn(L, dp.val, "%s.decode_pool: pool %s is already the decode pool of %s (a "
                    "decode pool serves one prefill pool)", p, dpl->name,
                    sc->pools[named_by[d]].name);
            continue;
        }
        named_by[d] = (int)(pl - sc->pools);
        pl->decode_pool = d;
    }
    i = 0;
    for (yaml_node_pair_t *q = n->data.mapping.pairs.start; q < n->data.mapping.pairs.top; q++) {
        if (!sc_key_usable(L, n, q))
            continue;
        int k = i++;
        if (sc->pools[k].name && sc->pools[k].role == SC_ROLE_DECODE && named_by[k] < 0 &&
            L->n_errors == 0)
            sc_errn(L, sc_node(L, q->key), "pools.%s: a decode pool takes requests only from a "
                    "prefill pool, and no pool names it as its decode_pool", sc->pools[k].name);
    }
    free(named_by);
}

static void load_pool(sc_loader *L, yaml_node_t *n, const char *path, const sc_scenario *sc,
                      sc_pool *pl)
{
    static const char *const keys[] = {"model", "replicas", "gpus_per_node", "gpu_type",
                                       "queue_capacity", "timeout", "link", "power",
                                       "price_per_gpu_hour", "max_replicas", "zone",
                                       "lifecycle", "health_check", "node_pool", "rollout",
                                       "gpu_memory", "host_memory", "lb_policy", "gpu",
                                       "tensor_parallel", "ttft_timeout", "role",
                                       "decode_pool", "decode_router", "billing",
                                       "egress_per_gb", "expert_parallel",
                                       "redundant_experts", "interconnect", NULL};
    static const char *const billing_names[] = {"used", "amortised", NULL};
    static const char *const link_keys[] = {"latency", "bandwidth", NULL};
    static const char *const power_keys[] = {"idle_per_gpu", "busy_per_gpu", "off", NULL};
    char p[SC_PATHLEN], q[SC_PATHLEN], list[SC_LISTLEN], buf[SC_SHOWLEN];
    int type = 1; /* h100 */

    pl->model = -1;
    pl->decode_pool = -1;
    pl->replicas = 1;
    pl->gpus_per_node = 1;
    pl->queue_capacity = 1000;
    pl->timeout_s = 0;
    pl->link_latency_s = 100e-6;
    pl->link_bandwidth_Bps = 10e9 / 8;
    pl->life.drain_grace_s = 30; /* Kubernetes terminationGracePeriodSeconds */
    if (sc_check_map(L, n, path, keys))
        return;
    sc_kv maxr = sc_find(L, n, "max_replicas"), zone = sc_find(L, n, "zone");
    sc_kv life = sc_find(L, n, "lifecycle"), health = sc_find(L, n, "health_check");
    if (zone.val)
        sc_want_str(L, zone.val, sc_join(p, path, "zone"), 1, &pl->zone);
    sc_kv pol = sc_find(L, n, "lb_policy");
    if (pol.val)
        sc_want_lb_policy(L, pol.val, sc_join(p, path, "lb_policy"), &pl->lb_policy);
    if (life.val)
        load_lifecycle(L, life.val, sc_join(p, path, "lifecycle"), &pl->life);
    if (health.val)
        load_health(L, health.val, sc_join(p, path, "health_check"), &pl->health);
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
    sc_load_pool_llm(L, n, path, sc, pl);
    load_role(L, n, path, sc, pl);
    if (qcap.val)
        sc_want_intv(L, qcap.val, sc_join(p, path, "queue_capacity"), 1, &pl->queue_capacity);
    sc_kv gmem = sc_find(L, n, "gpu_memory"), hmem = sc_find(L, n, "host_memory");
    if (gmem.val)
        want_gpu_memory(L, gmem.val, sc_join(p, path, "gpu_memory"), sc, pl,
                        &pl->power.gpu_memory_bytes);
    if (hmem.val)
        load_host_memory(L, hmem.val, sc_join(p, path, "host_memory"), pl);
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
    sc_kv billing = sc_find(L, n, "billing"), egress = sc_find(L, n, "egress_per_gb");
    if (billing.val)
        sc_want_enum(L, billing.val, sc_join(p, path, "billing"), billing_names,
                     &pl->billing_amortised);
    if (egress.val)
        sc_want_num(L, egress.val, sc_join(p, path, "egress_per_gb"), 0, 0, INFINITY, 0,
                    &pl->egress_per_gb);
    pl->has_cost_keys = billing.val != NULL || egress.val != NULL;
    pl->max_replicas = pl->replicas;
    if (maxr.val && sc_want_intv(L, maxr.val, sc_join(p, path, "max_replicas"), 1,
                                 &pl->max_replicas) == 0 &&
        pl->max_replicas < pl->replicas)
        sc_errn(L, maxr.val, "%s: max_replicas (%d) is below replicas (%d)", p, pl->max_replicas,
                pl->replicas);
    sc_kv npool = sc_find(L, n, "node_pool");
    if (npool.val)
        load_node_pool(L, npool.val, sc_join(p, path, "node_pool"), pl);
    sc_kv roll = sc_find(L, n, "rollout");
    if (roll.val)
        load_rollout(L, roll.val, sc_join(p, path, "rollout"), sc, pl);
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
        sc->hybrid |= pl->has_cost_keys;
    }
    check_roles(L, n, sc);
}
