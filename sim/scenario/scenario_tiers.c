/*
 * scenario_tiers.c - a two-tier front end: `load_balancer.l4` and
 * `load_balancer.l7`.
 *
 *   load_balancer:
 *     policy: least_conn                 # each L7 balancer's, unless its own
 *     l4: {policy: round_robin, health_check: {interval: 5s, fall: 2}}
 *     l7:
 *       - {name: nginx-a}
 *       - {name: nginx-b}
 *       - {name: envoy-c, policy: p2c_least_request}
 *
 * An L4 balancer (a cloud network load balancer, IPVS) spreads client
 * connections over the L7 balancers with a registered policy; each L7
 * balancer then routes to the pools with its own policy state and its own
 * view of the servers' connections, as separate nginx or Envoy instances do.
 * l7 alone implies an L4 with round_robin; l4 needs l7.
 */
#include "scenario.h"
#include "scenario_internal.h"

#include <yaml.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void load_l4(sc_loader *L, yaml_node_t *n, sc_lb *lb)
{
    static const char *const keys[] = {"policy", "health_check", NULL};
    static const char *const hc_keys[] = {"interval", "fall", NULL};
    if (sc_check_map(L, n, "load_balancer.l4", keys))
        return;
    sc_kv pol = sc_find(L, n, "policy"), hc = sc_find(L, n, "health_check");
    if (pol.val)
        sc_want_lb_policy(L, pol.val, "load_balancer.l4.policy", &lb->l4_policy);
    if (hc.val && sc_check_map(L, hc.val, "load_balancer.l4.health_check", hc_keys) == 0) {
        sc_kv iv = sc_find(L, hc.val, "interval"), fall = sc_find(L, hc.val, "fall");
        if (iv.val)
            sc_want_dur(L, iv.val, "load_balancer.l4.health_check.interval", 0,
                        &lb->l4_hc_interval_s);
        if (fall.val)
            sc_want_intv(L, fall.val, "load_balancer.l4.health_check.fall", 1, &lb->l4_hc_fall);
    }
}

void sc_load_tiers(sc_loader *L, sc_scenario *sc, sc_kv l4, sc_kv l7)
{
    sc_lb *lb = &sc->lb;
    char p[SC_PATHLEN], q[SC_PATHLEN], buf[SC_SHOWLEN];
    lb->l4_policy = strdup("round_robin");
    /* AWS NLB / GCP defaults are close to this: a check every 5 s, 2 to fail */
    lb->l4_hc_interval_s = 5;
    lb->l4_hc_fall = 2;
    if (!l7.val) {
        sc_errn(L, l4.key, "load_balancer.l4: an L4 balancer needs l7 (the balancers behind it)");
        return;
    }
    if (l4.val)
        load_l4(L, l4.val, lb);
    yaml_node_t *s = l7.val;
    long cnt = s->type == YAML_SEQUENCE_NODE ? s->data.sequence.items.top - s->data.sequence.items.start
                                             : 0;
    if (cnt == 0) {
        sc_errn(L, s, "load_balancer.l7: expected a sequence of {name, policy, weight}, got %s",
                sc_show(s, buf));
        return;
    }
    lb->l7 = calloc((size_t)cnt, sizeof *lb->l7);
    if (!lb->l7)
        return;
    static const char *const keys[] = {"name", "policy", "weight", NULL};
    for (long i = 0; i < cnt; i++) {
        yaml_node_t *item = sc_node(L, s->data.sequence.items.start[i]);
        snprintf(p, sizeof p, "load_balancer.l7.%ld", i);
        sc_l7 *b = &lb->l7[lb->n_l7];
        b->weight = 1;
        if (sc_check_map(L, item, p, keys))
            continue;
        sc_kv name = sc_find(L, item, "name"), pol = sc_find(L, item, "policy");
        sc_kv w = sc_find(L, item, "weight");
        if (!name.val) {
            sc_errn(L, item, "%s: missing required key name", p);
            continue;
        }
        if (sc_want_str(L, name.val, sc_join(q, p, "name"), 1, &b->name))
            continue;
        lb->n_l7++;
        for (int j = 0; j < lb->n_l7 - 1; j++)
            if (!strcmp(lb->l7[j].name, b->name))
                sc_errn(L, name.val, "%s: duplicate balancer name %s", q, sc_show(name.val, buf));
        if (sc_find_pool(sc, b->name) >= 0)
            sc_errn(L, name.val, "%s: %s is a pool's name (fault targets would be ambiguous)", q,
                    sc_show(name.val, buf));
        if (pol.val)
            sc_want_lb_policy(L, pol.val, sc_join(q, p, "policy"), &b->policy);
        if (w.val)
            sc_want_num(L, w.val, sc_join(q, p, "weight"), 0, 1, 1e6, 0, &b->weight);
    }
}

void sc_free_tiers(sc_scenario *sc)
{
    for (int i = 0; i < sc->lb.n_l7; i++) {
        free(sc->lb.l7[i].name);
        free(sc->lb.l7[i].policy);
    }
    free(sc->lb.l7);
    free(sc->lb.l4_policy);
}
