/*
 * scenario_pipelines.c - the `pipelines` and `routes` sections.
 *
 * A pipeline names the stages a request passes through, in order:
 *
 *   pipelines:
 *     risk:
 *       stages:
 *         - pool: preprocess
 *         - cache: {name: features, hit_ratio: 0.4, lookup: 2ms}
 *         - pool: gpu
 *         - queue: {name: results, capacity: 10000}
 *         - pool: store
 *
 * The first stage is a pool (the service the client talks to). A cache is
 * followed by the pool stage a hit skips; a queue is followed by the pool
 * that consumes it. `routes` are L7 rules from a URL path prefix to a
 * pipeline or a pool (nginx `location` prefixes: the longest match wins,
 * ngx_http_core_module.c ngx_http_core_find_static_location); a traffic
 * class with `path:` follows the route its path matches. A class that names
 * a pool follows that pool's implicit one-stage pipeline, made here on
 * first use, so the engine sees every class through one pipeline.
 */
#include "scenario.h"
#include "nginx_upstream.h"
#include "scenario_internal.h"

#include <yaml.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int find_pipeline(const sc_scenario *sc, const char *name, int implicit)
{
    for (int i = 0; i < sc->n_pipelines; i++)
        if (sc->pipelines[i].implicit == implicit && !strcmp(sc->pipelines[i].name, name))
            return i;
    return -1;
}

int sc_pool_pipeline(sc_scenario *sc, int pool)
{
    int i = find_pipeline(sc, sc->pools[pool].name, 1);
    if (i >= 0)
        return i;
    sc_pipeline *np = realloc(sc->pipelines, sizeof *np * (size_t)(sc->n_pipelines + 1));
    sc_stage *st = malloc(sizeof *st);
    if (!np || !st) {
        free(st);
        if (np)
            sc->pipelines = np;
        return -1;
    }
    sc->pipelines = np;
    st->kind = SC_STAGE_POOL;
    st->ref = pool;
    sc->pipelines[sc->n_pipelines] = (sc_pipeline){ .name = strdup(sc->pools[pool].name),
                                                    .stages = st, .n_stages = 1, .implicit = 1 };
    return sc->n_pipelines++;
}

int sc_want_target(sc_loader *L, const yaml_node_t *n, const char *path, sc_scenario *sc)
{
    char list[SC_LISTLEN] = "";
    const char *s = sc_want_scalar(L, n, path, "a pipeline or pool name");
    if (!s)
        return -1;
    int i = find_pipeline(sc, s, 0);
    if (i >= 0)
        return i;
    int p = sc_find_pool(sc, s);
    if (p >= 0)
        return sc_pool_pipeline(sc, p);
    for (int k = 0; k < sc->n_pipelines; k++)
        if (!sc->pipelines[k].implicit)
            sc_list_add(list, sizeof list, sc->pipelines[k].name);
    for (int k = 0; k < sc->n_pools; k++)
        sc_list_add(list, sizeof list, sc->pools[k].name);
    sc_errn(L, n, "%s: unknown pipeline or pool \"%s\" (known: %s)", path, s,
            *list ? list : "none");
    return -1;
}

/* A cache or queue name must be new among both. */
static int name_taken(const sc_scenario *sc, const char *name)
{
    for (int i = 0; i < sc->n_caches; i++)
        if (!strcmp(sc->caches[i].name, name))
            return 1;
    for (int i = 0; i < sc->n_queues; i++)
        if (!strcmp(sc->queues[i].name, name))
            return 1;
    return 0;
}

static int load_cache(sc_loader *L, yaml_node_t *n, const char *path, sc_scenario *sc)
{
    static const char *const keys[] = {"name", "hit_ratio", "lookup", NULL};
    char p[SC_PATHLEN];
    if (sc_check_map(L, n, path, keys))
        return -1;
    sc_kv name = sc_find(L, n, "name"), hit = sc_find(L, n, "hit_ratio");
    sc_kv look = sc_find(L, n, "lookup");
    sc_cache c = { 0 };
    int bad = 0;
    if (!name.val || !hit.val) {
        sc_errn(L, n, "%s: missing required key %s", path, !name.val ? "name" : "hit_ratio");
        return -1;
    }
    bad |= sc_want_str(L, name.val, sc_join(p, path, "name"), 1, &c.name) != 0;
    bad |= sc_want_num(L, hit.val, sc_join(p, path, "hit_ratio"), 0, 0, 1, 0, &c.hit_ratio) != 0;
    if (look.val)
        bad |= sc_want_dur(L, look.val, sc_join(p, path, "lookup"), 0, &c.lookup_s) != 0;
    if (!bad && name_taken(sc, c.name)) {
        sc_errn(L, name.val, "%s: duplicate cache or queue name \"%s\"", sc_join(p, path, "name"),
                c.name);
        bad = 1;
    }
    sc_cache *nc = bad ? NULL : realloc(sc->caches, sizeof *nc * (size_t)(sc->n_caches + 1));
    if (!nc) {
        free(c.name);
        return -1;
    }
    sc->caches = nc;
    sc->caches[sc->n_caches] = c;
    return sc->n_caches++;
}

static int load_queue(sc_loader *L, yaml_node_t *n, const char *path, sc_scenario *sc)
{
    static const char *const keys[] = {"name", "capacity", "prefetch", "processing_timeout",
                                       NULL};
    char p[SC_PATHLEN];
    if (sc_check_map(L, n, path, keys))
        return -1;
    sc_kv name = sc_find(L, n, "name"), cap = sc_find(L, n, "capacity");
    sc_kv pre = sc_find(L, n, "prefetch"), pt = sc_find(L, n, "processing_timeout");
    sc_queue q = { .consumer = -1 };
    int bad = 0;
    if (!name.val || !cap.val) {
        sc_errn(L, n, "%s: missing required key %s", path, !name.val ? "name" : "capacity");
        return -1;
    }
    bad |= sc_want_str(L, name.val, sc_join(p, path, "name"), 1, &q.name) != 0;
    bad |= sc_want_intv(L, cap.val, sc_join(p, path, "capacity"), 1, &q.capacity) != 0;
    if (pre.val)
        bad |= sc_want_intv(L, pre.val, sc_join(p, path, "prefetch"), 1, &q.prefetch) != 0;
    if (pt.val)
        bad |= sc_want_dur(L, pt.val, sc_join(p, path, "processing_timeout"), 0,
                           &q.processing_timeout_s) != 0;
    if (!bad && name_taken(sc, q.name)) {
        sc_errn(L, name.val, "%s: duplicate cache or queue name \"%s\"", sc_join(p, path, "name"),
                q.name);
        bad = 1;
    }
    sc_queue *nq = bad ? NULL : realloc(sc->queues, sizeof *nq * (size_t)(sc->n_queues + 1));
    if (!nq) {
        free(q.name);
        return -1;
    }
    sc->queues = nq;
    sc->queues[sc->n_queues] = q;
    return sc->n_queues++;
}

/* One stage: {pool: NAME} | {cache: {...}} | {queue: {...}}. */
static int load_stage(sc_loader *L, yaml_node_t *n, const char *path, sc_scenario *sc,
                      sc_stage *st, const yaml_node_t **where)
{
    static const char *const keys[] = {"pool", "cache", "queue", NULL};
    char p[SC_PATHLEN];
    *where = n;
    st->ref = -1; /* a stage in error refers to nothing */
    if (sc_check_map(L, n, path, keys))
        return -1;
    sc_kv pool = sc_find(L, n, "pool"), cache = sc_find(L, n, "cache");
    sc_kv queue = sc_find(L, n, "queue");
    if ((pool.val != NULL) + (cache.val != NULL) + (queue.val != NULL) != 1) {
        sc_errn(L, n, "%s: a stage is exactly one of pool, cache, queue", path);
        return -1;
    }
    if (pool.val) {
        st->kind = SC_STAGE_POOL;
        st->ref = sc_want_pool_ref(L, pool.val, sc_join(p, path, "pool"), sc);
    } else if (cache.val) {
        st->kind = SC_STAGE_CACHE;
        st->ref = load_cache(L, cache.val, sc_join(p, path, "cache"), sc);
    } else {
        st->kind = SC_STAGE_QUEUE;
        st->ref = load_queue(L, queue.val, sc_join(p, path, "queue"), sc);
    }
    return st->ref < 0 ? -1 : 0;
}

static void load_pipeline(sc_loader *L, yaml_node_t *n, const char *path, sc_scenario *sc,
                          sc_pipeline *pl)
{
    static const char *const keys[] = {"stages", NULL};
    static const char *const kinds[] = {"pool", "cache", "queue"};
    char p[SC_PATHLEN], idx[32];
    if (sc_check_map(L, n, path, keys))
        return;
    sc_kv stages = sc_find(L, n, "stages");
    if (!stages.val) {
        sc_errn(L, n, "%s: missing required key stages", path);
        return;
    }
    yaml_node_t *s = stages.val;
    sc_join(p, path, "stages");
    if (s->type != YAML_SEQUENCE_NODE) {
        char buf[SC_SHOWLEN];
        sc_errn(L, s, "%s: expected a sequence of stages, got %s", p, sc_show(s, buf));
        return;
    }
    long cnt = s->data.sequence.items.top - s->data.sequence.items.start;
    if (cnt == 0) {
        sc_errn(L, s, "%s: at least one stage is required", p);
        return;
    }
    pl->stages = calloc((size_t)cnt, sizeof *pl->stages);
    const yaml_node_t **where = calloc((size_t)cnt, sizeof *where);
    if (!pl->stages || !where) {
        free(where);
        return;
    }
    int ok = 1;
    for (long i = 0; i < cnt; i++) {
        char sp[SC_PATHLEN];
        snprintf(idx, sizeof idx, "%ld", i);
        ok &= load_stage(L, sc_node(L, s->data.sequence.items.start[i]), sc_join(sp, p, idx), sc,
                         &pl->stages[i], &where[i]) == 0;
    }
    pl->n_stages = (int)cnt;
    if (ok) { /* the order rules */
        if (pl->stages[0].kind != SC_STAGE_POOL)
            sc_errn(L, where[0], "%s.0: the first stage must be a pool (the service clients call), "
                    "got a %s", p, kinds[pl->stages[0].kind]);
        for (int i = 0; i < pl->n_stages; i++) {
            const sc_stage *st = &pl->stages[i];
            int next_pool = i + 1 < pl->n_stages && pl->stages[i + 1].kind == SC_STAGE_POOL;
            if (st->kind == SC_STAGE_CACHE && !next_pool)
                sc_errn(L, where[i], "%s.%d: a cache must be followed by the pool stage a hit "
                        "skips", p, i);
            if (st->kind == SC_STAGE_QUEUE && !next_pool)
                sc_errn(L, where[i], "%s.%d: a queue must be followed by the pool that consumes it",
                        p, i);
            if (st->kind == SC_STAGE_CACHE && next_pool)
                sc->caches[st->ref].skips = pl->stages[i + 1].ref;
            if (st->kind == SC_STAGE_QUEUE && next_pool) {
                sc_queue *q = &sc->queues[st->ref];
                q->consumer = pl->stages[i + 1].ref;
            }
        }
    }
    free(where);
}

void sc_parse_pipelines(sc_loader *L, yaml_node_t *n, sc_scenario *sc)
{
    char p[SC_PATHLEN];
    if (sc_check_map(L, n, "pipelines", NULL))
        return;
    int cnt = sc_count_named(L, n);
    if (cnt == 0)
        return;
    sc->pipelines = calloc((size_t)cnt, sizeof *sc->pipelines);
    if (!sc->pipelines)
        return;
    for (yaml_node_pair_t *q = n->data.mapping.pairs.start; q < n->data.mapping.pairs.top; q++) {
        if (!sc_key_usable(L, n, q))
            continue;
        yaml_node_t *k = sc_node(L, q->key);
        sc_pipeline *pl = &sc->pipelines[sc->n_pipelines];
        if (sc_want_str(L, k, "pipelines", 1, &pl->name))
            continue;
        sc->n_pipelines++;
        if (sc_find_pool(sc, pl->name) >= 0) {
            sc_errn(L, k, "pipelines: \"%s\" is already a pool's name", pl->name);
            continue;
        }
        load_pipeline(L, sc_node(L, q->value), sc_join(p, "pipelines", pl->name), sc, pl);
    }
}

/* routes: {nginx: FILE, upstreams: {UPSTREAM: pipeline or pool}}: the
 * location blocks of an nginx server block, each to where its proxy_pass
 * upstream maps (an upstream not listed maps to the pipeline or pool of
 * its own name). */
static void load_nginx_routes(sc_loader *L, yaml_node_t *n, sc_scenario *sc)
{
    static const char *const keys[] = {"nginx", "upstreams", NULL};
    char err[1024], *file = NULL;
    if (sc_check_map(L, n, "routes", keys))
        return;
    sc_kv nginx = sc_find(L, n, "nginx"), ups = sc_find(L, n, "upstreams");
    if (!nginx.val) {
        sc_errn(L, n, "routes: missing required key nginx (or give a sequence of rules)");
        return;
    }
    if (ups.val && sc_check_map(L, ups.val, "routes.upstreams", NULL))
        return;
    if (sc_want_str(L, nginx.val, "routes.nginx", 1, &file))
        return;
    char *path = sc_resolve(L, nginx.val, file);
    free(file);
    lb_nginx_locations locs;
    if (lb_nginx_read_locations(path, &locs, err, sizeof err) != 0) {
        sc_errn(L, nginx.val, "routes.nginx: %s", err);
        free(path);
        lb_nginx_locations_free(&locs);
        return;
    }
    sc->routes = calloc((size_t)locs.n, sizeof *sc->routes);
    for (int i = 0; sc->routes && i < locs.n; i++) {
        const lb_nginx_location *l = &locs.loc[i];
        if (!l->upstream) { /* answered by nginx itself */
            sc->routes[sc->n_routes++] = (sc_route){ .prefix = strdup(l->uri), .exact = l->exact,
                                                     .pipeline = SC_ROUTE_UNPROXIED };
            continue;
        }
        sc_kv map = ups.val ? sc_find(L, ups.val, l->upstream) : (sc_kv){ NULL, NULL };
        char where[SC_PATHLEN];
        snprintf(where, sizeof where, "routes.upstreams.%s", l->upstream);
        int target = -1;
        if (map.val) {
            target = sc_want_target(L, map.val, where, sc);
        } else {
            int pi = sc_find_pool(sc, l->upstream);
            for (int k = 0; k < sc->n_pipelines && target < 0; k++)
                if (!sc->pipelines[k].implicit && !strcmp(sc->pipelines[k].name, l->upstream))
                    target = k;
            if (target < 0 && pi >= 0)
                target = sc_pool_pipeline(sc, pi);
            if (target < 0)
                sc_errn(L, nginx.val, "routes.nginx: %s:%d:%d: location %s sends to upstream "
                        "\"%s\", which is no pipeline or pool: map it in routes.upstreams",
                        path, l->line, l->col, l->uri, l->upstream);
        }
        sc->routes[sc->n_routes++] = (sc_route){ .prefix = strdup(l->uri), .exact = l->exact,
                                                 .pipeline = target };
    }
    free(path);
    lb_nginx_locations_free(&locs);
}

void sc_parse_routes(sc_loader *L, yaml_node_t *n, sc_scenario *sc)
{
    static const char *const keys[] = {"path_prefix", "to", NULL};
    char p[SC_PATHLEN], idx[32], buf[SC_SHOWLEN];
    if (n->type == YAML_MAPPING_NODE) {
        load_nginx_routes(L, n, sc);
        return;
    }
    if (n->type != YAML_SEQUENCE_NODE) {
        sc_errn(L, n, "routes: expected a sequence of {path_prefix, to} or {nginx: FILE}, got %s",
                sc_show(n, buf));
        return;
    }
    long cnt = n->data.sequence.items.top - n->data.sequence.items.start;
    sc->routes = calloc((size_t)(cnt ? cnt : 1), sizeof *sc->routes);
    if (!sc->routes)
        return;
    for (long i = 0; i < cnt; i++) {
        yaml_node_t *item = sc_node(L, n->data.sequence.items.start[i]);
        snprintf(idx, sizeof idx, "%ld", i);
        sc_join(p, "routes", idx);
        if (sc_check_map(L, item, p, keys))
            continue;
        sc_kv pre = sc_find(L, item, "path_prefix"), to = sc_find(L, item, "to");
        if (!pre.val || !to.val) {
            sc_errn(L, item, "%s: missing required key %s", p, !pre.val ? "path_prefix" : "to");
            continue;
        }
        char pp[SC_PATHLEN];
        sc_route r = { .pipeline = -1 };
        if (sc_want_str(L, pre.val, sc_join(pp, p, "path_prefix"), 1, &r.prefix))
            continue;
        if (r.prefix[0] != '/') {
            sc_errn(L, pre.val, "%s: a path prefix starts with /, got %s", pp, sc_show(pre.val, buf));
            free(r.prefix);
            continue;
        }
        for (int j = 0; j < sc->n_routes; j++)
            if (!strcmp(sc->routes[j].prefix, r.prefix)) {
                sc_errn(L, pre.val, "%s: duplicate path_prefix %s (also routes.%d)", pp,
                        sc_show(pre.val, buf), j);
                break;
            }
        r.pipeline = sc_want_target(L, to.val, sc_join(pp, p, "to"), sc);
        sc->routes[sc->n_routes++] = r;
    }
}

int sc_route_path(const sc_scenario *sc, const char *path)
{
    int best = -1;
    size_t best_len = 0;
    for (int i = 0; i < sc->n_routes; i++) {
        size_t len = strlen(sc->routes[i].prefix);
        if (sc->routes[i].exact) {
            if (!strcmp(path, sc->routes[i].prefix))
                return sc->routes[i].pipeline;
        } else if (len > best_len && !strncmp(path, sc->routes[i].prefix, len)) {
            best = i;
            best_len = len;
        }
    }
    return best < 0 ? -1 : sc->routes[best].pipeline;
}

void sc_free_pipelines(sc_scenario *sc)
{
    for (int i = 0; i < sc->n_pipelines; i++) {
        free(sc->pipelines[i].name);
        free(sc->pipelines[i].stages);
    }
    for (int i = 0; i < sc->n_caches; i++)
        free(sc->caches[i].name);
    for (int i = 0; i < sc->n_queues; i++)
        free(sc->queues[i].name);
    for (int i = 0; i < sc->n_routes; i++)
        free(sc->routes[i].prefix);
    free(sc->pipelines);
    free(sc->caches);
    free(sc->queues);
    free(sc->routes);
}
