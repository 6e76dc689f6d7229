/*
 * weights.c - dynamic balancer weights from GPU utilisation: the seed's
 * "Nginx Plus routing by GPU utilisation", done the way such setups do it, a
 * control loop that rewrites upstream weights through the API.
 *
 * Every period the loop reads each ready node's GPU busy fraction over the
 * last window and applies the first matching rule: above X -> weight W,
 * below Y -> W or the configured weight back. A node matching no rule keeps
 * its weight (the gap between the thresholds is the hysteresis).
 */
#include "control.h"
#include "serve.h"

#include <simgrid/engine.h>

#include <math.h>
#include <stdlib.h>
#include <string.h>

static void weight_loop(int argc, char *argv[])
{
    (void)argc;
    (void)argv;
    eng_pool *p = sg_actor_self_get_data();
    const sc_lb *lbc = &eng_world.sc->lb;
    int slots = (int)ceil(lbc->dw_window_s / lbc->dw_period_s - 1e-9);
    double *ring = p->dw_ring; /* [node][tick % (slots + 1)]: busy seconds then */
    for (long tick = 1;; tick++) {
        sg_actor_sleep_until((double)tick * lbc->dw_period_s);
        double now = simgrid_get_clock();
        if (eng_hook.catch_up) /* busy times as of now */
            eng_hook.catch_up(now);
        for (int j = 0; j < p->n_hosts; j++) {
            eng_node *n = &p->nodes[j];
            double *r = ring + (size_t)j * (size_t)(slots + 1);
            double busy = serve_busy_s(n, now);
            /* slots periods ago; before a full window there is none */
            double old = tick > slots ? r[(tick - slots) % (slots + 1)] : 0;
            r[tick % (slots + 1)] = busy;
            if (n->life.state != NODE_READY || tick <= slots)
                continue; /* a full window first */
            double util = (busy - old) / (lbc->dw_window_s * n->gpus);
            lb_server_view *v = &p->lbi[0].servers[j];
            for (int k = 0; k < lbc->n_dw_rules; k++) {
                const sc_weight_rule *rule = &lbc->dw_rules[k];
                if (!(util > rule->above) && !(util < rule->below))
                    continue;
                double w = rule->restore ? p->base_weight[j] : rule->weight;
                if (w != v->weight) {
                    eng_event(now, "weight", n->name, "%g -> %g (GPU %.0f%% over %g s)", v->weight, w,
                              100 * util, lbc->dw_window_s);
                    for (int l = 0; l < eng_world.n_l7; l++) { /* every L7 balancer applies it */
                        p->lbi[l].servers[j].weight = w;
                        eng_lb_changed(p, l, j);
                    }
                }
                break;
            }
        }
    }
}

void weights_start(eng_pool *p)
{
    const sc_lb *lbc = &eng_world.sc->lb;
    if (lbc->dw_period_s <= 0 || lbc->n_dw_rules == 0)
        return;
    int slots = (int)ceil(lbc->dw_window_s / lbc->dw_period_s - 1e-9);
    p->dw_ring = calloc((size_t)p->n_hosts * (size_t)(slots + 1), sizeof *p->dw_ring);
    p->base_weight = malloc(sizeof *p->base_weight * (size_t)p->n_hosts);
    for (int j = 0; j < p->n_hosts; j++)
        p->base_weight[j] = p->lbi[0].servers[j].weight;
    sg_actor_t a = sg_actor_init("weights", eng_world.balancer_host);
    sg_actor_set_data(a, p);
    sg_actor_start(a, weight_loop, 0, NULL);
}
