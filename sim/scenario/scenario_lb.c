/*
 * scenario_lb.c - the `load_balancer` and `slo` sections of a scenario. The
 * load balancer has a policy (a name from policies/lb, round_robin unless
 * given), max_conns per server, a queue (capacity, timeout) and per-server
 * settings keyed "pool/index" (weight, max_conns), so it is parsed after
 * pools, and optionally Envoy's outlier_detection. The slo has latency_p99
 * and availability.
 */
#include "scenario.h"
#include "nginx_upstream.h"
#include "scenario_internal.h"

#include "lb.h"
#include "lb_priority.h"

#include <yaml.h>

#include <ctype.h>
#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

/* Set before anything is parsed, so a scenario without load_balancer gets it too. */
void sc_lb_defaults(sc_scenario *sc)
{
    sc->lb.policy = strdup("round_robin");
    sc->lb.params = lb_params_default();
    /* nginx's default: proxy_next_upstream error timeout, tries and timeout 0
     * (every server once, no time limit) */
    sc->lb.retry_on_error = 1;
}

int sc_want_lb_policy(sc_loader *L, const yaml_node_t *n, const char *path, char **out)
{
    char buf[SC_SHOWLEN], list[SC_LISTLEN];
    const char *s = sc_want_scalar(L, n, path, "a policy name");
    if (!s)
        return -1;
    if (!lb_find(s)) {
        sc_errn(L, n, "%s: unknown policy %s (policies: %s)", path, sc_show(n, buf),
                lb_names(list, sizeof list));
        return -1;
    }
    char *d = strdup(s);
    if (!d)
        return -1;
    free(*out);
    *out = d;
    return 0;
}

/* A utilisation: 0.8 or 80%. */
static int want_util(sc_loader *L, const yaml_node_t *n, const char *path, double *out)
{
    char buf[SC_SHOWLEN];
    const char *s = sc_want_scalar(L, n, path, "a utilisation (0.8 or 80%)");
    if (!s)
        return -1;
    char *end;
    double v = strtod(s, &end);
    if (end != s && *end == '%' && end[1] == '\0')
        v /= 100;
    else if (end == s || *end)
        v = NAN;
    if (!(v >= 0 && v <= 1)) {
        sc_errn(L, n, "%s: expected a utilisation between 0 and 1 (or 0%% to 100%%), got %s",
                path, sc_show(n, buf));
        return -1;
    }
    *out = v;
    return 0;
}

static int want_bool(sc_loader *L, const yaml_node_t *n, const char *path, int *out)
{
    static const char *const names[] = {"false", "true", NULL};
    return sc_want_enum(L, n, path, names, out);
}

/* load_balancer: {nginx: FILE, upstream: NAME}: the servers and method of
 * an nginx upstream block, for a pool with as many nodes as it has servers. */
/* nginx's backup servers as another pool (load_balancer.backup_pool): every
 * class sent to the primary pool, without a failover of its own, gets one
 * with nginx's rule: the backup pool takes a request only when no primary
 * server can (none up, or every one at max_conns;
 * src/http/ngx_http_upstream_round_robin.c, ngx_http_upstream_get_round_robin_peer
 * turns to peers->next only when the primaries give no peer). That is the
 * priority load with an overprovisioning factor so large that one healthy
 * primary takes everything, no panic, and overflow at max_conns. */
static void nginx_backup_failover(sc_scenario *sc, int primary, int backup)
{
    for (int c = 0; c < sc->n_traffic; c++) {
        sc_traffic *t = &sc->traffic[c];
        if (t->pool != primary || t->failover || t->pipeline < 0 ||
            sc->pipelines[t->pipeline].n_stages != 1)
            continue;
        t->failover = calloc(2, sizeof *t->failover);
        t->failover[0] = (sc_failover){ .pool = primary, .priority = 0, .weight = 1 };
        t->failover[1] = (sc_failover){ .pool = backup, .priority = 1, .weight = 1 };
        t->n_failover = 2;
        t->n_levels = 2;
        t->failover_factor_pct = LB_PRIORITY_FACTOR_ALL_PCT;
        t->failover_panic_pct = 0;
        t->overflow_max_conns = 1;
        sc->hybrid = 1;
    }
}

static void load_nginx(sc_loader *L, yaml_node_t *n, sc_scenario *sc, sc_kv file, sc_kv up,
                       sc_kv pool, sc_kv bpool)
{
    char buf[SC_SHOWLEN], err[1024];
    sc_lb *lb = &sc->lb;
    if (!up.val) {
        sc_errn(L, n, "load_balancer: nginx needs upstream (the upstream block's name)");
        return;
    }
    if (sc_want_str(L, file.val, "load_balancer.nginx", 1, &lb->nginx_path) ||
        sc_want_str(L, up.val, "load_balancer.upstream", 1, &lb->upstream))
        return;
    int pi = 0;
    if (pool.val)
        pi = sc_want_pool_ref(L, pool.val, "load_balancer.pool", sc);
    else if (sc->n_pools != 1) {
        sc_errn(L, n, "load_balancer: nginx needs pool (the scenario has %d pools)", sc->n_pools);
        return;
    }
    if (pi < 0)
        return;
    char *path = sc_resolve(L, file.val, lb->nginx_path);
    lb_nginx_upstream u;
    if (lb_nginx_read(path, lb->upstream, &u, err, sizeof err) != 0) {
        sc_errn(L, file.val, "load_balancer.nginx: %s", err);
        lb_nginx_free(&u); /* what was read before the error */
        free(path);
        return;
    }
    free(path);
    const sc_pool *pl = &sc->pools[pi];
    int bpi = -1, n_backup = 0;
    if (bpool.val && (bpi = sc_want_pool_ref(L, bpool.val, "load_balancer.backup_pool", sc)) < 0) {
        lb_nginx_free(&u);
        return;
    }
    if (bpi == pi) {
        sc_errn(L, bpool.val, "load_balancer.backup_pool: the backup pool must differ from pool "
                "%s", pl->name);
        lb_nginx_free(&u);
        return;
    }
    for (int i = 0; i < u.n_servers; i++)
        n_backup += bpi >= 0 && u.servers[i].backup;
    if (u.n_servers - n_backup != pl->max_replicas) {
        sc_errn(L, up.val, "load_balancer.upstream: %s has %d %sservers but pool %s has %d nodes",
                sc_show(up.val, buf), u.n_servers - n_backup, bpi >= 0 ? "primary " : "",
                pl->name, pl->max_replicas);
        lb_nginx_free(&u);
        return;
    }
    if (bpi >= 0 && n_backup != sc->pools[bpi].max_replicas) {
        sc_errn(L, bpool.val, "load_balancer.backup_pool: %s has %d backup servers but pool %s "
                "has %d nodes", sc_show(up.val, buf), n_backup, sc->pools[bpi].name,
                sc->pools[bpi].max_replicas);
        lb_nginx_free(&u);
        return;
    }
    free(lb->policy);
    lb->policy = strdup(u.policy);
    lb->params = u.params;
    lb->servers = calloc((size_t)u.n_servers, sizeof *lb->servers);
    int next[2] = {0, 0}; /* server numbers in the primary and the backup pool */
    for (int i = 0; i < u.n_servers; i++) {
        const lb_nginx_server *ns = &u.servers[i];
        int in_backup = bpi >= 0 && ns->backup; /* a server of the backup pool, a primary there */
        lb->servers[i] = (sc_server){ .pool = in_backup ? bpi : pi, .index = next[in_backup]++,
                                      .weight = ns->weight, .max_conns = ns->max_conns,
                                      .backup = in_backup ? 0 : ns->backup,
                                      .down = ns->down, .max_fails = ns->max_fails,
                                      .fail_timeout_s = ns->fail_timeout_s,
                                      .name = strdup(ns->address) };
    }
    lb->n_servers = u.n_servers;
    lb_nginx_free(&u);
    if (bpi >= 0)
        nginx_backup_failover(sc, pi, bpi);
}

/* dynamic_weights: {period, window, rules: [{above|below: UTIL, weight: W | restore}]}
 * (the seed's "route by GPU utilisation": weights rewritten by a control loop) */
static void load_dynamic_weights(sc_loader *L, yaml_node_t *n, sc_scenario *sc)
{
    static const char *const keys[] = {"period", "window", "rules", NULL};
    static const char *const rule_keys[] = {"above", "below", "weight", NULL};
    const char *path = "load_balancer.dynamic_weights";
    char p[SC_PATHLEN], q[SC_PATHLEN];
    sc_lb *lb = &sc->lb;
    lb->dw_period_s = 10;
    lb->dw_window_s = 30;
    if (sc_check_map(L, n, path, keys))
        return;
    sc_kv period = sc_find(L, n, "period"), window = sc_find(L, n, "window");
    sc_kv rules = sc_find(L, n, "rules");
    if (period.val)
        sc_want_dur(L, period.val, sc_join(p, path, "period"), 1, &lb->dw_period_s);
    if (window.val)
        sc_want_dur(L, window.val, sc_join(p, path, "window"), 1, &lb->dw_window_s);
    if (lb->dw_window_s < lb->dw_period_s)
        sc_errn(L, window.val ? window.val : n, "%s: window (%g s) is shorter than period (%g s)",
                path, lb->dw_window_s, lb->dw_period_s);
    if (!rules.val || rules.val->type != YAML_SEQUENCE_NODE ||
        rules.val->data.sequence.items.top == rules.val->data.sequence.items.start) {
        sc_errn(L, rules.val ? rules.val : n, "%s: rules must be a non-empty sequence", path);
        return;
    }
    int cnt = (int)(rules.val->data.sequence.items.top - rules.val->data.sequence.items.start);
    lb->dw_rules = calloc((size_t)cnt, sizeof *lb->dw_rules);
    for (int i = 0; i < cnt; i++) {
        yaml_node_t *r = sc_node(L, rules.val->data.sequence.items.start[i]);
        snprintf(p, sizeof p, "%s.rules.%d", path, i);
        sc_weight_rule *w = &lb->dw_rules[lb->n_dw_rules++];
        w->above = w->below = NAN;
        if (sc_check_map(L, r, p, rule_keys))
            continue;
        sc_kv above = sc_find(L, r, "above"), below = sc_find(L, r, "below");
        sc_kv weight = sc_find(L, r, "weight");
        if ((above.val != NULL) == (below.val != NULL))
            sc_errn(L, r, "%s: give exactly one of above or below", p);
        if (above.val)
            want_util(L, above.val, sc_join(q, p, "above"), &w->above);
        if (below.val)
            want_util(L, below.val, sc_join(q, p, "below"), &w->below);
        if (!weight.val) {
            sc_errn(L, r, "%s: missing key weight (a number, or restore)", p);
            continue;
        }
        const char *s = sc_want_scalar(L, weight.val, sc_join(q, p, "weight"), "a weight");
        if (s && strcmp(s, "restore") == 0)
            w->restore = 1;
        else if (s)
            sc_want_num(L, weight.val, q, 0, 1, INFINITY, 0, &w->weight);
    }
}

/* outlier_detection: {consecutive_5xx, interval, base_ejection_time,
 * max_ejection_time, max_ejection_percent, enforcing_consecutive_5xx,
 * always_eject_one_host, healthy_panic_threshold}, Envoy's names, units and defaults
 * (envoy/config/cluster/v3/outlier_detection.proto). Present, even empty,
 * it turns detection on. */
static void load_outlier(sc_loader *L, yaml_node_t *n, sc_scenario *sc)
{
    static const char *const keys[] = {"consecutive_5xx", "interval", "base_ejection_time",
                                       "max_ejection_time", "max_ejection_percent",
                                       "enforcing_consecutive_5xx", "always_eject_one_host",
                                       "healthy_panic_threshold", NULL};
    const char *path = "load_balancer.outlier_detection";
    char p[SC_PATHLEN];
    lb_outlier *o = &sc->lb.params.outlier;
    long long v;

    if (sc_check_map(L, n, path, keys))
        return;
    o->enabled = 1;
    sc_kv c5 = sc_find(L, n, "consecutive_5xx"), iv = sc_find(L, n, "interval");
    sc_kv base = sc_find(L, n, "base_ejection_time"), max = sc_find(L, n, "max_ejection_time");
    sc_kv pct = sc_find(L, n, "max_ejection_percent");
    sc_kv enf = sc_find(L, n, "enforcing_consecutive_5xx");
    sc_kv one = sc_find(L, n, "always_eject_one_host");
    sc_kv panic = sc_find(L, n, "healthy_panic_threshold");
    if (c5.val && sc_want_int(L, c5.val, sc_join(p, path, "consecutive_5xx"), 1, INT_MAX, &v) == 0)
        o->consecutive_5xx = (int)v;
    if (iv.val)
        sc_want_dur(L, iv.val, sc_join(p, path, "interval"), 1, &o->interval_s);
    if (base.val)
        sc_want_dur(L, base.val, sc_join(p, path, "base_ejection_time"), 1,
                    &o->base_ejection_time_s);
    /* Envoy: unset, max(300 s, base); set below base, a configuration error */
    if (!max.val) {
        o->max_ejection_time_s = fmax(300.0, o->base_ejection_time_s);
    } else if (sc_want_dur(L, max.val, sc_join(p, path, "max_ejection_time"), 1,
                           &o->max_ejection_time_s) == 0 &&
               o->max_ejection_time_s < o->base_ejection_time_s) {
        sc_errn(L, max.val, "%s: %g s is smaller than base_ejection_time (%g s)", p,
                o->max_ejection_time_s, o->base_ejection_time_s);
    }
    if (pct.val &&
        sc_want_int(L, pct.val, sc_join(p, path, "max_ejection_percent"), 0, 100, &v) == 0)
        o->max_ejection_percent = (int)v;
    if (enf.val &&
        sc_want_int(L, enf.val, sc_join(p, path, "enforcing_consecutive_5xx"), 0, 100, &v) == 0)
        o->enforcing_consecutive_5xx = (int)v;
    if (one.val)
        want_bool(L, one.val, sc_join(p, path, "always_eject_one_host"), &o->always_eject_one_host);
    /* Envoy keeps it in the cluster's common_lb_config; its only effect
     * here is on ejected servers, so it sits with them */
    if (panic.val &&
        sc_want_int(L, panic.val, sc_join(p, path, "healthy_panic_threshold"), 0, 100, &v) == 0)
        o->healthy_panic_threshold = (int)v;
}

static void load_servers(sc_loader *L, yaml_node_t *n, const char *path, sc_scenario *sc)
{
    static const char *const keys[] = {"weight", "max_conns", "backup", "down", "max_fails",
                                       "fail_timeout", NULL};
    char p[SC_PATHLEN], q[SC_PATHLEN], list[SC_LISTLEN], buf[SC_SHOWLEN];
    sc_lb *lb = &sc->lb;

    if (sc_check_map(L, n, path, NULL))
        return;
    long cnt = n->data.mapping.pairs.top - n->data.mapping.pairs.start;
    if (cnt == 0)
        return;
    lb->servers = calloc((size_t)cnt, sizeof *lb->servers);
    if (lb->servers == NULL)
        return;
    for (yaml_node_pair_t *pr = n->data.mapping.pairs.start; pr < n->data.mapping.pairs.top; pr++) {
        if (!sc_key_usable(L, n, pr))
            continue;
        yaml_node_t *k = sc_node(L, pr->key), *v = sc_node(L, pr->value);
        const char *key = sc_want_scalar(L, k, path, "a \"pool/index\" key");
        if (key == NULL)
            continue;
        sc_join(p, path, key);
        const char *slash = strrchr(key, '/');
        const char *ix = slash ? slash + 1 : "";
        int ok = slash && *ix && strlen(ix) < 10;
        for (const char *c = ix; ok && *c; c++)
            ok = isdigit((unsigned char)*c);
        if (!ok) {
            sc_errn(L, k, "%s: server key %s is not \"pool/index\" (like \"gpu/0\")", path,
                    sc_show(k, buf));
            continue;
        }
        char pool[SC_PATHLEN];
        size_t plen = (size_t)(slash - key);
        if (plen >= sizeof pool)
            plen = sizeof pool - 1;
        memcpy(pool, key, plen);
        pool[plen] = '\0';
        int pi = sc_find_pool(sc, pool), index = atoi(ix);
        if (pi < 0) {
            sc_pool_list(sc, list, sizeof list);
            sc_errn(L, k, "%s: unknown pool \"%s\" in %s (pools: %s)", path, pool, sc_show(k, buf),
                    *list ? list : "none");
            continue;
        }
        if (index >= sc->pools[pi].max_replicas) {
            sc_errn(L, k, "%s: server index %d out of range: pool %s has %d nodes (0..%d)", path,
                    index, pool, sc->pools[pi].max_replicas, sc->pools[pi].max_replicas - 1);
            continue;
        }
        int dup = 0;
        for (int j = 0; j < lb->n_servers; j++)
            dup |= lb->servers[j].pool == pi && lb->servers[j].index == index;
        if (dup) {
            sc_errn(L, k, "%s: server %s/%d is listed twice", path, pool, index);
            continue;
        }
        sc_server *s = &lb->servers[lb->n_servers++];
        s->pool = pi;
        s->index = index;
        s->weight = 1;
        s->max_conns = lb->max_conns;
        if (sc_check_map(L, v, p, keys))
            continue;
        sc_kv w = sc_find(L, v, "weight"), mc = sc_find(L, v, "max_conns");
        sc_kv bk = sc_find(L, v, "backup"), dn = sc_find(L, v, "down");
        sc_kv mf = sc_find(L, v, "max_fails"), ft = sc_find(L, v, "fail_timeout");
        if (w.val)
            sc_want_num(L, w.val, sc_join(q, p, "weight"), 0, 1, INFINITY, 0, &s->weight);
        if (mc.val)
            sc_want_intv(L, mc.val, sc_join(q, p, "max_conns"), 0, &s->max_conns);
        if (bk.val)
            want_bool(L, bk.val, sc_join(q, p, "backup"), &s->backup);
        if (dn.val)
            want_bool(L, dn.val, sc_join(q, p, "down"), &s->down);
        s->fail_timeout_s = 10; /* nginx's default */
        if (mf.val)
            sc_want_intv(L, mf.val, sc_join(q, p, "max_fails"), 0, &s->max_fails);
        if (ft.val)
            sc_want_dur(L, ft.val, sc_join(q, p, "fail_timeout"), 0, &s->fail_timeout_s);
    }
}

/* load_balancer.retries.on: the words of nginx's proxy_next_upstream that
 * fleetsim models, space-separated in any order as nginx takes them:
 * `error`, `http_503`, or `off` alone. */
static void load_retry_on(sc_loader *L, const yaml_node_t *n, sc_scenario *sc)
{
    static const char *const what = "error, http_503, both (\"error http_503\") or off";
    char buf[SC_SHOWLEN];
    const char *s = sc_want_scalar(L, n, "load_balancer.retries.on", what);
    if (!s)
        return;
    int error = 0, http_503 = 0, off = 0, words = 0, bad = 0;
    for (const char *p = s; *p;) {
        size_t len = strcspn(p, " \t");
        if (len > 0) {
            int *flag = len == 5 && !strncmp(p, "error", 5)      ? &error
                        : len == 8 && !strncmp(p, "http_503", 8) ? &http_503
                        : len == 3 && !strncmp(p, "off", 3)      ? &off
                                                                 : NULL;
            bad |= !flag || *flag;   /* unknown, or twice */
            if (flag)
                *flag = 1;
            words++;
        }
        p += len;
        p += strspn(p, " \t");
    }
    if (bad || words == 0 || (off && words > 1)) {
        sc_errn(L, n, "load_balancer.retries.on: expected %s, got %s", what, sc_show(n, buf));
        return;
    }
    sc->lb.retry_on_error = error;
    sc->lb.retry_on_503 = http_503;
}

void sc_parse_lb(sc_loader *L, yaml_node_t *n, sc_scenario *sc)
{
    static const char *const keys[] = {"policy", "max_conns", "queue", "servers", "retries",
                                       "nginx", "upstream", "pool", "choice_count",
                                       "active_request_bias", "decay", "default_rtt", "hash",
                                       "cache_threshold", "balance_abs_threshold",
                                       "balance_rel_threshold", "prefix_blocks", "prefix_weight",
                                       "queue_weight", "kv_weight",
                                       "dynamic_weights", "outlier_detection", "l4", "l7",
                                       "backup_pool", NULL};
    static const char *const retry_keys[] = {"tries", "timeout", "on", NULL};
    static const char *const queue_keys[] = {"capacity", "timeout", NULL};

    if (sc_check_map(L, n, "load_balancer", keys))
        return;
    sc_kv policy = sc_find(L, n, "policy"), mc = sc_find(L, n, "max_conns");
    sc_kv queue = sc_find(L, n, "queue"), servers = sc_find(L, n, "servers");
    if (policy.val)
        sc_want_lb_policy(L, policy.val, "load_balancer.policy", &sc->lb.policy);
    if (mc.val)
        sc_want_intv(L, mc.val, "load_balancer.max_conns", 0, &sc->lb.max_conns);
    if (queue.val && sc_check_map(L, queue.val, "load_balancer.queue", queue_keys) == 0) {
        sc_kv cap = sc_find(L, queue.val, "capacity"), to = sc_find(L, queue.val, "timeout");
        if (cap.val)
            sc_want_intv(L, cap.val, "load_balancer.queue.capacity", 0, &sc->lb.queue_capacity);
        if (to.val)
            sc_want_dur(L, to.val, "load_balancer.queue.timeout", 0, &sc->lb.queue_timeout_s);
    }
    sc_kv nginx = sc_find(L, n, "nginx"), up = sc_find(L, n, "upstream");
    sc_kv pool = sc_find(L, n, "pool"), bpool = sc_find(L, n, "backup_pool");
    if (bpool.val && !nginx.val)
        sc_errn(L, bpool.key, "load_balancer: backup_pool goes with nginx (the upstream's backup "
                "servers)");
    if (nginx.val && (policy.val || servers.val)) {
        sc_errn(L, nginx.key, "load_balancer: nginx gives the servers and method; drop %s",
                policy.val ? "policy" : "servers");
    } else if (nginx.val) {
        load_nginx(L, n, sc, nginx, up, pool, bpool);
    } else if (up.val || pool.val) {
        sc_errn(L, (up.val ? up : pool).key, "load_balancer: %s goes with nginx",
                up.val ? "upstream" : "pool");
    }
    if (servers.val && !nginx.val)
        load_servers(L, servers.val, "load_balancer.servers", sc);
    /* policy parameters (lb_params): Envoy / Finagle / nginx names */
    lb_params *pr = &sc->lb.params;
    sc_kv cc = sc_find(L, n, "choice_count"), bias = sc_find(L, n, "active_request_bias");
    sc_kv decay = sc_find(L, n, "decay"), rtt = sc_find(L, n, "default_rtt");
    sc_kv hash = sc_find(L, n, "hash");
    if (cc.val)
        sc_want_intv(L, cc.val, "load_balancer.choice_count", 2, &pr->choice_count);
    if (bias.val)
        sc_want_num(L, bias.val, "load_balancer.active_request_bias", 0, 0, INFINITY, 0,
                    &pr->active_request_bias);
    if (decay.val)
        sc_want_dur(L, decay.val, "load_balancer.decay", 1, &pr->decay_s);
    if (rtt.val)
        sc_want_dur(L, rtt.val, "load_balancer.default_rtt", 0, &pr->default_rtt_s);
    if (hash.val) {
        static const char *const modes[] = {"consistent", "plain", "ip", NULL};
        sc_want_enum(L, hash.val, "load_balancer.hash", modes, &pr->hash_mode);
    }
    /* token-aware policies: SGLang's and llm-d's names */
    sc_kv cth = sc_find(L, n, "cache_threshold"), bat = sc_find(L, n, "balance_abs_threshold");
    sc_kv brt = sc_find(L, n, "balance_rel_threshold"), pb = sc_find(L, n, "prefix_blocks");
    sc_kv pw = sc_find(L, n, "prefix_weight"), qw = sc_find(L, n, "queue_weight");
    sc_kv kw = sc_find(L, n, "kv_weight");
    if (cth.val)
        sc_want_num(L, cth.val, "load_balancer.cache_threshold", 0, 0, 1, 0, &pr->cache_threshold);
    if (bat.val)
        sc_want_intv(L, bat.val, "load_balancer.balance_abs_threshold", 0,
                     &pr->balance_abs_threshold);
    if (brt.val)
        sc_want_num(L, brt.val, "load_balancer.balance_rel_threshold", 0, 0, INFINITY, 0,
                    &pr->balance_rel_threshold);
    if (pb.val)
        sc_want_intv(L, pb.val, "load_balancer.prefix_blocks", 0, &pr->prefix_blocks);
    if (pw.val)
        sc_want_num(L, pw.val, "load_balancer.prefix_weight", 0, 0, INFINITY, 0,
                    &pr->prefix_weight);
    if (qw.val)
        sc_want_num(L, qw.val, "load_balancer.queue_weight", 0, 0, INFINITY, 0, &pr->queue_weight);
    if (kw.val)
        sc_want_num(L, kw.val, "load_balancer.kv_weight", 0, 0, INFINITY, 0, &pr->kv_weight);
    sc_kv l4 = sc_find(L, n, "l4"), l7 = sc_find(L, n, "l7");
    if (l4.val || l7.val)
        sc_load_tiers(L, sc, l4, l7);
    sc_kv dw = sc_find(L, n, "dynamic_weights");
    if (dw.val)
        load_dynamic_weights(L, dw.val, sc);
    sc_kv od = sc_find(L, n, "outlier_detection");   /* after nginx, which resets params */
    if (od.val)
        load_outlier(L, od.val, sc);
    sc_kv retries = sc_find(L, n, "retries");
    if (retries.val && sc_check_map(L, retries.val, "load_balancer.retries", retry_keys) == 0) {
        sc_kv tries = sc_find(L, retries.val, "tries"), to = sc_find(L, retries.val, "timeout");
        sc_kv when = sc_find(L, retries.val, "on");
        if (tries.val)
            sc_want_intv(L, tries.val, "load_balancer.retries.tries", 0, &sc->lb.retry_tries);
        if (to.val)
            sc_want_dur(L, to.val, "load_balancer.retries.timeout", 0, &sc->lb.retry_timeout_s);
        if (when.val)
            load_retry_on(L, when.val, sc);
    }
}

/* cost: {currency}: an ISO 4217 code naming the unit of every price and
 * cost (the gpu_type prices are USD, the default). */
void sc_parse_cost(sc_loader *L, yaml_node_t *n, sc_scenario *sc)
{
    static const char *const keys[] = {"currency", NULL};
    if (sc_check_map(L, n, "cost", keys))
        return;
    sc_kv cur = sc_find(L, n, "currency");
    if (!cur.val)
        return;
    const char *s = sc_want_scalar(L, cur.val, "cost.currency", "a currency code like USD or EUR");
    if (!s)
        return;
    if (strlen(s) != 3 || !isupper((unsigned char)s[0]) || !isupper((unsigned char)s[1]) ||
        !isupper((unsigned char)s[2])) {
        char buf[SC_SHOWLEN];
        sc_errn(L, cur.val, "cost.currency: expected a three-letter ISO 4217 code in capitals "
                "(USD, EUR, GBP, JPY, ...), got %s", sc_show(cur.val, buf));
        return;
    }
    snprintf(sc->currency, sizeof sc->currency, "%s", s);
}

void sc_parse_slo(sc_loader *L, yaml_node_t *n, sc_scenario *sc)
{
    static const char *const keys[] = {"latency_p99", "availability", "ttft_p99", "tpot_p99",
                                       "e2e_p99", "goodput", NULL};

    if (sc_check_map(L, n, "slo", keys))
        return;
    sc_kv p99 = sc_find(L, n, "latency_p99"), av = sc_find(L, n, "availability");
    if (p99.val)
        sc_want_dur(L, p99.val, "slo.latency_p99", 1, &sc->slo.latency_p99_s);
    if (av.val)
        sc_want_num(L, av.val, "slo.availability", 0, 1, 1, 0, &sc->slo.availability);
    sc_kv ttft = sc_find(L, n, "ttft_p99"), tpot = sc_find(L, n, "tpot_p99");
    sc_kv e2e = sc_find(L, n, "e2e_p99"), gp = sc_find(L, n, "goodput");
    if (ttft.val)
        sc_want_dur(L, ttft.val, "slo.ttft_p99", 1, &sc->slo.ttft_p99_s);
    if (tpot.val)
        sc_want_dur(L, tpot.val, "slo.tpot_p99", 1, &sc->slo.tpot_p99_s);
    if (e2e.val)
        sc_want_dur(L, e2e.val, "slo.e2e_p99", 1, &sc->slo.e2e_p99_s);
    if (gp.val)
        sc_want_num(L, gp.val, "slo.goodput", 0, 1, 1, 0, &sc->slo.goodput);
}
