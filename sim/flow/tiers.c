/*
 * tiers.c - the L4 balancer of a two-tier front end.
 *
 * Each client connection (a request, or a client's resend) reaches the L4
 * balancer first, which picks an L7 balancer with its own registered policy
 * over a view of the L7 balancers (one "server" each: its weight, its open
 * connections). The request keeps that L7 balancer for every stage of its
 * pipeline; each L7 balancer has its own policy state and connection counts
 * per pool (eng_pool.lbi), so a least_conn L7 sees only its own
 * connections, as separate nginx instances do.
 *
 * An L7 balancer that fails (lb_failure with its name as target) refuses
 * every connection the L4 still sends it (502) until the L4's health checks
 * mark it down: checks run at multiples of the check interval from t = 0,
 * and the fall-th failed one in a row takes it out of rotation (interval 0:
 * at once). A balancer that comes back is in rotation at once.
 *
 * The client connections it held when it failed are cut: every request it
 * had passed on and not yet answered fails (502) at that moment, as a
 * client sees its connection to a dead nginx reset. The servers do not know:
 * what they queued or were running goes on using the GPU, and the answer
 * goes nowhere (the request is counted failed, at the cut, when the server
 * finishes it, as a timeout is counted at its deadline); a request waiting
 * in the balancer's queue, or between two pipeline stages, fails when the
 * engine next looks at it. A request acknowledged by a queue (a job) has
 * had its answer and is not cut.
 */
#include "flow.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>

int tier_init(void)
{
    const sc_lb *lb = &eng_world.sc->lb;
    eng_world.n_l7 = lb->n_l7 > 0 ? lb->n_l7 : 1;
    if (lb->n_l7 == 0)
        return 0;
    eng_world.l7 = calloc((size_t)lb->n_l7, sizeof *eng_world.l7);
    eng_world.l4_servers = calloc((size_t)lb->n_l7, sizeof *eng_world.l4_servers);
    for (int i = 0; i < lb->n_l7; i++) {
        eng_world.l7[i].cfg = &lb->l7[i];
        eng_world.l7[i].cause = eng_world.l7[i].fault_rec = -1;
        eng_world.l4_servers[i] = (lb_server_view){ .up = 1, .weight = lb->l7[i].weight,
                                            .name = lb->l7[i].name };
    }
    eng_world.l4_view.n = lb->n_l7;
    eng_world.l4_view.servers = eng_world.l4_servers;
    eng_world.l4_rng = eng_stream_rng(eng_world.sc->seed, eng_stream(ENG_STREAM_L4, 0));
    eng_world.l4 = lb_create_with(lb->l4_policy, lb->n_l7, eng_world.l4_rng, &lb->params);
    if (!eng_world.l4) {
        fprintf(stderr, "fleetsim: unknown load-balancing policy '%s'\n", lb->l4_policy);
        return -1;
    }
    return 0;
}

double tier_detected_at(double down_s)
{
    const sc_lb *lb = &eng_world.sc->lb;
    double iv = lb->l4_hc_interval_s;
    if (iv <= 0)
        return down_s;
    return ceil(down_s / iv - 1e-9) * iv + (lb->l4_hc_fall - 1) * iv;
}

int tier_pick(eng_req *r, double now)
{
    for (int i = 0; i < eng_world.n_l7; i++)
        eng_world.l4_servers[i].up = !eng_world.l7[i].down || now < tier_detected_at(eng_world.l7[i].down_since_s);
    lb_request lr = { .id = r->id, .traffic_class = r->tclass, .arrival_s = now, .key = r->id };
    eng_world.l4_view.now_s = now;
    int s = lb_pick(eng_world.l4, &eng_world.l4_view, &lr);
    if (s < 0) { /* no L7 balancer in rotation */
        r->l7 = -1;
        return -1;
    }
    r->l7 = s;
    eng_world.l4_servers[s].active++;
    eng_world.l7[s].routed++;
    r->l4_refused = eng_world.l7[s].down;
    if (eng_world.l7[s].down) { /* not noticed yet: the connection is refused */
        eng_world.l7[s].refused++;
        return -1;
    }
    return 0;
}

/* The L4 sees a TCP connection, not HTTP: only a refused connection is a
 * failure to it. Whatever the L7 balancer answered (200, or a 502, 503 or
 * 504 of its own or of a server) closes a connection that worked, as
 * nginx's stream proxy marks a peer failed only when it cannot connect
 * (src/stream/ngx_stream_proxy_module.c, ngx_stream_proxy_next_upstream)
 * and Envoy's TCP proxy reports only connect failures to outlier
 * detection. */
void tier_close(const eng_req *r, double now)
{
    eng_world.l4_servers[r->l7].active--;
    eng_world.l4_view.now_s = now;
    lb_on_done(eng_world.l4, &eng_world.l4_view, r->l7, now - r->sent_s, r->l4_refused ? LB_ERROR : LB_OK);
}

void tier_down(int l7, int on, int fault, int fault_rec, double now)
{
    eng_l7 *b = &eng_world.l7[l7];
    b->down = on;
    if (on) {
        b->down_since_s = now;
        b->cause = fault;
        b->fault_rec = fault_rec;
        double *at = realloc(b->down_at_s, sizeof *at * (size_t)(b->n_down + 1));
        int *c = realloc(b->down_cause, sizeof *c * (size_t)(b->n_down + 1));
        int *rc = realloc(b->down_rec, sizeof *rc * (size_t)(b->n_down + 1));
        if (at)
            b->down_at_s = at;
        if (c)
            b->down_cause = c;
        if (rc)
            b->down_rec = rc;
        if (at && c && rc) {
            at[b->n_down] = now;
            c[b->n_down] = fault;
            rc[b->n_down++] = fault_rec;
        }
    } else if (b->cause == fault) {
        b->cause = b->fault_rec = -1;
    }
}

double tier_cut_at(const eng_req *r, double now, int *cause, int *rec)
{
    const eng_l7 *b = &eng_world.l7[r->l7];
    for (int i = 0; i < b->n_down; i++) /* in time order: the first after r was sent */
        if (b->down_at_s[i] > r->sent_s && b->down_at_s[i] <= now) {
            if (cause)
                *cause = b->down_cause[i];
            if (rec)
                *rec = b->down_rec[i];
            return b->down_at_s[i];
        }
    return INFINITY;
}

void tier_count_cut(const eng_req *r)
{
    eng_world.l7[r->l7].cut++;
}

void tier_free(void)
{
    for (int i = 0; eng_world.l7 && i < eng_world.n_l7; i++) {
        free(eng_world.l7[i].down_at_s);
        free(eng_world.l7[i].down_cause);
        free(eng_world.l7[i].down_rec);
    }
    if (eng_world.l4) {
        lb_destroy(eng_world.l4);
        gsl_rng_free(eng_world.l4_rng);
    }
    free(eng_world.l7);
    free(eng_world.l4_servers);
    eng_world.l4 = NULL;
    eng_world.l7 = NULL;
    eng_world.l4_servers = NULL;
}
