/*
 * lifecycle.c - node states: provisioning, start, model load, warm-up,
 * ready, draining, off; crashes and recovery; active health checks.
 *
 * A pool owns a fixed set of SimGrid hosts (its max_replicas); a host not in
 * use is switched off and draws nothing. Bringing a node up runs a short
 * "boot" actor ON the node's host, so a crash during start-up kills it like
 * any process there. Readiness gates routing: only READY nodes are in the
 * balancer's server list. Draining removes a node from the list, lets its
 * workers finish the queue, and switches it off (or, after the grace time,
 * fails what is left). Every transition is an event in events.jsonl.
 */
#include "control.h"
#include "serve.h"

#include <simgrid/engine.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>

static void unbind(eng_node *n, double now);

/* The model's state change, and a node that goes off gives back its
 * cluster-node slot. */
static void set_state(eng_node *n, eng_node_state st, double now)
{
    if (eng_node_set_state(n, st, now) && st == NODE_OFF)
        unbind(n, now);
}

static double delay(eng_node *n, const sc_delay *d)
{
    return d->mean_s > 0 ? d->mean_s * eng_draw_unit(&d->shape, eng_node_rng(n)) : 0;
}

/* ---------- node pool: replicas on cluster nodes ----------
 *
 * With pools.<name>.node_pool a replica needs a free slot on a ready
 * cluster node. When there is none it is pending and unscheduled (state
 * PROVISIONING, host off, no boot actor) until the cluster autoscaler's
 * nodes come up; a replica placed on a node that is already up skips
 * provisioning and goes straight to container start. The slots are the
 * model's only resource: each replica is one pod using one slot. */

static int has_node_pool(const eng_pool *p)
{
    return p->cfg->node_pool.enabled && p->cnodes != NULL;
}

/* The time series' pending replicas: the count at an interval's end is the
 * last one set before it, so every interval from now on gets it. */
static void note_pending(eng_pool *p, double now)
{
    int c = 0;
    for (int j = 0; j < p->n_hosts; j++)
        c += p->nodes[j].life.unscheduled;
    if (c == p->pending)
        return;
    p->pending = c;
    if (!eng_world.out || !eng_world.out->samples || eng_world.sc->interval_s <= 0)
        return;
    size_t i = (size_t)floor(now / eng_world.sc->interval_s);
    for (; i < eng_world.out->n_samples; i++)
        eng_world.out->samples[i].pools[p->id].pending = c;
}

static void unbind(eng_node *n, double now)
{
    eng_pool *p = n->pool;
    if (n->life.cnode >= 0 && p->cnodes)
        p->cnodes[n->life.cnode].pods--;
    n->life.cnode = -1;
    if (n->life.unscheduled) {
        n->life.unscheduled = 0;
        note_pending(p, now);
    }
}

/* kube-scheduler's default scoring (NodeResourcesFit, LeastAllocated:
 * pkg/scheduler/framework/plugins/noderesources/least_allocated.go) spreads
 * pods: the ready node with the fewest pods, the lowest index on a tie; -1
 * when no ready node has a free slot. */
static int free_cnode(const eng_pool *p)
{
    int best = -1;
    for (int c = 0; c < p->n_cnodes; c++) {
        const eng_cnode *cn = &p->cnodes[c];
        if (cn->state == CNODE_READY && cn->pods < p->cfg->node_pool.pods_per_node &&
            (best < 0 || cn->pods < p->cnodes[best].pods))
            best = c;
    }
    return best;
}

static void bind(eng_node *n, int c)
{
    eng_pool *p = n->pool;
    n->life.cnode = c;
    p->cnodes[c].pods++;
    p->cnodes[c].unneeded_since_s = -1;
}

/* One incarnation's way up; killed with the host if the node crashes. */
static void boot(int argc, char *argv[])
{
    (void)argc;
    (void)argv;
    eng_node *n = sg_actor_self_get_data();
    const sc_lifecycle *L = &n->pool->cfg->life;
    if (n->life.state == NODE_PROVISIONING)
        sg_actor_sleep_for(delay(n, &L->provision));
    for (;;) {
        set_state(n, NODE_STARTING, simgrid_get_clock());
        sg_actor_sleep_for(delay(n, &L->start));
        if (L->start_failure_prob > 0 && gsl_rng_uniform(eng_node_rng(n)) < L->start_failure_prob) {
            eng_event(simgrid_get_clock(), "start_failed", n->name, "container start failed; retrying");
            continue;
        }
        break;
    }
    set_state(n, NODE_LOADING, simgrid_get_clock());
    sg_actor_sleep_for(delay(n, &L->load) + sc_weights_load_s(n->pool->cfg, n->gpus));
    set_state(n, NODE_WARMING, simgrid_get_clock());
    sg_actor_sleep_for(delay(n, &L->warmup));
    serve_start(n);
    set_state(n, NODE_READY, simgrid_get_clock());
    eng_drain_balancer_queue(n->pool, simgrid_get_clock());
}

static void start_boot(eng_node *n, eng_node_state first, double now)
{
    if (!sg_host_is_on(n->host))
        sg_host_turn_on(n->host);
    set_state(n, first, now);
    sg_actor_t a = sg_actor_init("boot", n->host);
    sg_actor_set_data(a, n);
    sg_actor_start(a, boot, 0, NULL);
}

/* Puts a replica that was off on its way up: without a node pool it
 * provisions its own node; with one it starts on a free slot of a ready
 * node, or waits unscheduled for one. */
static void place(eng_node *n, double now)
{
    eng_pool *p = n->pool;
    for (int k = 0; k < eng_world.n_l7; k++) /* a new replica: nothing known of it */
        lb_forget(p->lbi[k].balancer, n->index);
    if (!has_node_pool(p)) {
        start_boot(n, NODE_PROVISIONING, now);
        return;
    }
    int c = free_cnode(p);
    if (c >= 0) {
        bind(n, c);
        eng_event(now, "pod_scheduled", n->name, "on %s", p->cnodes[c].name);
        start_boot(n, NODE_STARTING, now);
        return;
    }
    set_state(n, NODE_PROVISIONING, now);
    n->life.up_since_s = -1; /* no node, no GPU time */
    n->life.unscheduled = 1;
    note_pending(p, now);
    eng_event(now, "pod_pending", n->name, "no free slot on a ready node of %s", p->cfg->name);
}

/* Binds unscheduled replicas, lowest index first, while ready nodes have
 * free slots (the scheduler retries pending pods when a node is added). */
static void schedule_pending(eng_pool *p, double now)
{
    for (int j = 0; j < p->n_hosts; j++) {
        eng_node *n = &p->nodes[j];
        if (!n->life.unscheduled)
            continue;
        int c = free_cnode(p);
        if (c < 0)
            break;
        bind(n, c);
        n->life.unscheduled = 0;
        n->life.up_since_s = now;
        eng_event(now, "pod_scheduled", n->name, "on %s", p->cnodes[c].name);
        start_boot(n, NODE_STARTING, now);
    }
    note_pending(p, now);
}

typedef struct {
    eng_pool *pool;
    int cnode;
    double asked_s;
} cnode_arg;

/* A node the cluster autoscaler asked for: ready after the provisioning
 * delay, then pending replicas land on it. */
static void cnode_provision(int argc, char *argv[])
{
    (void)argc;
    (void)argv;
    cnode_arg *a = sg_actor_self_get_data();
    eng_pool *p = a->pool;
    eng_cnode *cn = &p->cnodes[a->cnode];
    double asked = a->asked_s;
    free(a);
    const sc_delay *d = &p->cfg->node_pool.provisioning;
    sg_actor_sleep_for(d->mean_s > 0 ? d->mean_s * eng_draw_unit(&d->shape, p->ca_rng) : 0);
    double now = simgrid_get_clock();
    cn->state = CNODE_READY;
    cn->unneeded_since_s = -1;
    eng_event(now, "node_provisioned", cn->name, "asked for at %.3f s", asked);
    schedule_pending(p, now);
}

/* The Cluster Autoscaler's loop (cluster-autoscaler/core/static_autoscaler.go,
 * RunOnce), every scan_interval from the start:
 * - scale-up: pending pods that would fit on nodes still provisioning
 *   ("upcoming" nodes, which RunOnce adds to its snapshot before filtering
 *   schedulable pods out) do not count; the rest ask for
 *   ceil(rest / pods_per_node) nodes, capped by max_nodes
 *   (core/scaleup/orchestrator). A scan that scaled up does not scale down;
 *   lastScaleUpTime starts at the autoscaler's start.
 * - scale-down: a ready node with no replica is unneeded from the first
 *   scan that finds it empty; it is removed at the first scan with
 *   since + scale_down_unneeded strictly before now
 *   (core/scaledown/unneeded/nodes.go, unremovableReason), unless scale-down
 *   is in cooldown: lastScaleUpTime + scale-down-delay-after-add after now
 *   (isScaleDownInCooldown). Only empty nodes are removed: replicas are not
 *   moved to other nodes. */
static void cluster_autoscaler(int argc, char *argv[])
{
    (void)argc;
    (void)argv;
    eng_pool *p = sg_actor_self_get_data();
    const sc_node_pool *np = &p->cfg->node_pool;
    double next = 0;
    for (;;) {
        next += np->scan_interval_s;
        sg_actor_sleep_until(next);
        double now = simgrid_get_clock();
        int up = 0, upcoming = 0;
        for (int c = 0; c < p->n_cnodes; c++) {
            up += p->cnodes[c].state != CNODE_OFF;
            upcoming += p->cnodes[c].state == CNODE_PROVISIONING;
        }
        int rest = p->pending - upcoming * np->pods_per_node;
        if (rest > 0) {
            int add = (rest + np->pods_per_node - 1) / np->pods_per_node;
            if (add > np->max_nodes - up)
                add = np->max_nodes - up;
            if (add > 0) {
                eng_event(now, "node_scale_up", p->cfg->name,
                          "%d -> %d nodes for %d pending replicas", up, up + add, p->pending);
                for (int c = 0; c < p->n_cnodes && add > 0; c++) {
                    if (p->cnodes[c].state != CNODE_OFF)
                        continue;
                    p->cnodes[c].state = CNODE_PROVISIONING;
                    p->cnodes[c].pods = 0;
                    cnode_arg *a = malloc(sizeof *a);
                    *a = (cnode_arg){ p, c, now };
                    sg_actor_t act = sg_actor_init("node-provision", eng_world.balancer_host);
                    sg_actor_set_data(act, a);
                    sg_actor_start(act, cnode_provision, 0, NULL);
                    add--;
                }
                p->ca_last_up_s = now;
                continue;
            }
        }
        int cooldown = p->ca_last_up_s + np->delay_after_add_s > now;
        for (int c = 0; c < p->n_cnodes; c++) {
            eng_cnode *cn = &p->cnodes[c];
            if (cn->state != CNODE_READY)
                continue;
            if (cn->pods > 0) {
                cn->unneeded_since_s = -1;
                continue;
            }
            if (cn->unneeded_since_s < 0)
                cn->unneeded_since_s = now;
            if (!cooldown && cn->unneeded_since_s + np->unneeded_s < now) {
                eng_event(now, "node_removed", cn->name, "empty since %.3f s",
                          cn->unneeded_since_s);
                cn->state = CNODE_OFF;
                cn->unneeded_since_s = -1;
            }
        }
    }
}

/* The node pool at t = 0: the nodes holding the initial replicas are up. */
static void init_node_pool(eng_pool *p)
{
    const sc_node_pool *np = &p->cfg->node_pool;
    p->n_cnodes = np->max_nodes;
    p->cnodes = calloc((size_t)p->n_cnodes, sizeof *p->cnodes);
    p->ca_rng = eng_stream_rng(eng_world.sc->seed, eng_stream(ENG_STREAM_NODE_START, (unsigned long)p->id));
    for (int c = 0; c < p->n_cnodes; c++) {
        snprintf(p->cnodes[c].name, sizeof p->cnodes[c].name, "%s/node%d", p->cfg->name, c);
        p->cnodes[c].unneeded_since_s = -1;
    }
    for (int j = 0; j < p->cfg->replicas && j < p->n_hosts; j++) {
        int c = j / np->pods_per_node;
        if (p->cnodes[c].state != CNODE_READY) {
            p->cnodes[c].state = CNODE_READY;
            eng_event(0, "node_provisioned", p->cnodes[c].name, "initial");
        }
        bind(&p->nodes[j], c);
    }
    sg_actor_t a = sg_actor_init("cluster-autoscaler", eng_world.balancer_host);
    sg_actor_set_data(a, p);
    sg_actor_start(a, cluster_autoscaler, 0, NULL);
}

void life_free_pool(eng_pool *p)
{
    free(p->cnodes);
    p->cnodes = NULL;
    if (p->ca_rng)
        gsl_rng_free(p->ca_rng);
    p->ca_rng = NULL;
}

/* Spare hosts are switched off from inside the simulation: the energy
 * plugin does not see a host switched off before the run starts. */
static void power_down_spares(int argc, char *argv[])
{
    (void)argc;
    (void)argv;
    eng_pool *p = sg_actor_self_get_data();
    for (int j = 0; j < p->n_hosts; j++)
        if (p->nodes[j].life.state == NODE_OFF && sg_host_is_on(p->nodes[j].host))
            sg_host_turn_off(p->nodes[j].host);
}

void life_init_pool(eng_pool *p)
{
    p->target = p->cfg->replicas;
    p->replicas_min = p->replicas_max = p->cfg->replicas;
    for (int j = 0; j < p->n_hosts; j++)
        p->nodes[j].life.cnode = -1;
    if (p->cfg->node_pool.enabled)
        init_node_pool(p);
    for (int j = 0; j < p->n_hosts; j++) {
        eng_node *n = &p->nodes[j];
        if (j < p->cfg->replicas) {
            n->life.state = NODE_OFF;
            n->life.up_since_s = 0;
            n->life.state = NODE_READY; /* the initial fleet is up when the run starts */
            p->n_ready++;               /* as eng_node_set_state would count it */
            p->n_on++;
            n->life.ready_since_s = 0;
            n->life.serving_since_s = 0;
            n->life.start_s = 0;
            n->life.ready_change_s = 0;
            n->health.registered = 1;
            eng_view_sync(n);
            serve_start(n);
            eng_event(0, "node_state", n->name, "off -> ready");
        } else {
            n->life.start_s = NAN;
            n->life.ready_change_s = NAN;
        }
    }
    if (p->n_hosts > p->cfg->replicas) {
        sg_actor_t a = sg_actor_init("power", eng_world.balancer_host);
        sg_actor_set_data(a, p);
        sg_actor_start(a, power_down_spares, 0, NULL);
    }
}

/* Ends every request a node holds (queued or running) as a failed attempt:
 * each is retried elsewhere when the balancer's rules allow. */
static void fail_held(eng_node *n, double now)
{
    eng_pool *p = n->pool;
    serve_fail_running(n, now);
    eng_req *r;
    eng_fifo q = n->work.q;
    n->work.q = (eng_fifo){ 0 };
    eng_node_q_sync(n);
    while ((r = eng_fifo_pop(&q))) {
        eng_lb_release(p, r, n->index, now - r->arrival_s, LB_ERROR, now);
        eng_attempt_failed(p, r, now);
    }
    serve_reset(n);
    n->work.workers_alive = 0;
}

/* Switches the host off after its requests were dealt with. */
static void power_off(eng_node *n, eng_node_state st, double now)
{
    n->life.gen++;
    set_state(n, st, now);
    if (sg_host_is_on(n->host))
        sg_host_turn_off(n->host); /* kills its workers and boot actor */
    serve_reset(n);
    n->work.workers_alive = 0;
}

void life_crash(eng_node *n, double now, const char *why)
{
    if (n->life.state == NODE_FAILED) { /* down already: held down by one more fault */
        n->fault.crash_holds++;
        return;
    }
    if (n->life.state == NODE_OFF || n->life.unscheduled)
        return;
    n->fault.crash_holds = 1;
    eng_event(now, "node_crash", n->name, "%s", why ? why : "crash");
    /* The state changes first so that no retry lands here; the balancer
     * does not know yet and keeps the node in its list until health checks
     * or its passive failure counting take it out. A prefill worker of a
     * disaggregated fleet pulls its work from the prefill queue: a dead one
     * takes no more at once (flow/request.c, eng_route). */
    int known = n->pool->cfg->role == SC_ROLE_PREFILL ? 0 : n->health.registered;
    set_state(n, NODE_FAILED, now);
    n->health.registered = known;
    eng_view_sync(n);
    n->life.gen++; /* first: its server's actors may run while fail_held reroutes */
    fail_held(n, now);
    if (sg_host_is_on(n->host))
        sg_host_turn_off(n->host); /* kills its workers and boot actor */
}

void life_recover(eng_node *n, double now)
{
    if (n->life.state != NODE_FAILED)
        return;
    if (--n->fault.crash_holds > 0)
        return; /* another fault still holds it down */
    n->fault.crash_holds = 0;
    eng_event(now, "node_recover", n->name, "rebooting");
    n->health.registered = 0;
    start_boot(n, NODE_STARTING, now);
}

typedef struct {
    eng_node *node;
    int gen;
    double grace_s;
    int reclaim;           /* a spot reclaim's notice, not a scale-in's grace */
} grace_arg;

static void terminate(eng_node *n, double now)
{
    power_off(n, NODE_OFF, now);
}

/* Runs on the balancer's host: switching a host off from one of its own
 * actors would kill the caller mid-function. */
static void terminator(int argc, char *argv[])
{
    (void)argc;
    (void)argv;
    eng_node *n = sg_actor_self_get_data();
    /* let SimGrid reap the workers that just returned: switching the host
     * off while they are still ending makes it kill them twice */
    sg_actor_sleep_for(1e-6);
    if (n->life.state == NODE_DRAINING && n->work.workers_alive <= 0)
        terminate(n, simgrid_get_clock());
}

void life_worker_exited(eng_node *n)
{
    if (--n->work.workers_alive <= 0 && n->life.state == NODE_DRAINING) {
        sg_actor_t a = sg_actor_init("terminate", eng_world.balancer_host);
        sg_actor_set_data(a, n);
        sg_actor_start(a, terminator, 0, NULL);
    }
}

/* After the grace time a node still draining fails what it holds. */
static void grace_timer(int argc, char *argv[])
{
    (void)argc;
    (void)argv;
    grace_arg *g = sg_actor_self_get_data();
    eng_node *n = g->node;
    int gen = g->gen;
    double grace_s = g->grace_s;
    int reclaim = g->reclaim;
    free(g);
    sg_actor_sleep_for(grace_s);
    if (n->life.gen != gen || n->life.state != NODE_DRAINING)
        return;
    double now = simgrid_get_clock();
    if (reclaim)
        eng_event(now, "spot_reclaimed", n->name, "notice over; in-flight requests fail");
    else
        eng_event(now, "drain_timeout", n->name, "grace period over; in-flight requests fail");
    n->life.gen++; /* first: its server's actors may run while fail_held reroutes */
    fail_held(n, now);
    terminate(n, now);
}

/* The node leaves the balancer and finishes what it holds; after grace_s
 * (none when 0) what is left fails and it is switched off. */
static void drain_within(eng_node *n, double now, double grace_s, int reclaim)
{
    set_state(n, NODE_DRAINING, now);
    if (n->work.q.len == 0 && n->work.workers_alive == 0) {
        terminate(n, now);
        return;
    }
    serve_wake_idle(n); /* idle workers notice and leave */
    if (grace_s > 0) {
        grace_arg *g = malloc(sizeof *g);
        g->node = n;
        g->gen = n->life.gen;
        g->grace_s = grace_s;
        g->reclaim = reclaim;
        sg_actor_t a = sg_actor_init("grace", eng_world.balancer_host);
        sg_actor_set_data(a, g);
        sg_actor_start(a, grace_timer, 0, NULL);
    }
}

static void drain(eng_node *n, double now)
{
    drain_within(n, now, n->pool->cfg->life.drain_grace_s, 0);
}

void life_reclaim(eng_node *n, double now, double notice_s)
{
    if (n->life.state == NODE_OFF || n->life.state == NODE_DRAINING || n->life.unscheduled)
        return;
    eng_event(now, "spot_notice", n->name, "reclaimed in %g s", notice_s);
    if (n->life.state != NODE_READY) { /* booting or crashed: nothing to drain */
        n->fault.crash_holds = 0;
        power_off(n, NODE_OFF, now);
        return;
    }
    /* the notice bounds the drain; a shorter grace period ends it sooner */
    double grace_s = n->pool->cfg->life.drain_grace_s;
    if (notice_s <= 0) {
        n->life.gen++; /* first: its server's actors may run while fail_held reroutes */
        set_state(n, NODE_DRAINING, now);
        fail_held(n, now);
        terminate(n, now);
        return;
    }
    drain_within(n, now, grace_s > 0 && grace_s < notice_s ? grace_s : notice_s,
                 !(grace_s > 0 && grace_s < notice_s));
}

void life_capacity(eng_pool *p, int on, double now)
{
    p->capacity_out += on ? 1 : -1;
    if (p->capacity_out == 0)
        life_scale_to(p, p->target, now, "capacity back");
}

/* Kubernetes-like choice of what to remove (ReplicaSet's ActivePods order,
 * pkg/controller/controller_utils.go): unscheduled replicas first, then
 * nodes not ready yet, then ready ones; newest first within each. */
void life_scale_to(eng_pool *p, int want, double now, const char *reason)
{
    if (want < 0)
        want = 0;
    int have = 0;
    for (int j = 0; j < p->n_hosts; j++) {
        eng_node_state s = p->nodes[j].life.state;
        have += s != NODE_OFF && s != NODE_DRAINING;
    }
    if (want == have)
        return;
    if (p->capacity_out > 0 && want > have && want == p->target)
        return; /* no capacity: still waiting for it */
    rp_add_scaling(eng_world.out, now, p->cfg->name, have, want, reason);
    eng_event(now, "scale", p->cfg->name, "%d -> %d (%s)", have, want, reason ? reason : "");
    p->target = want;
    /* new replicas take slots of the current shape: the rollout's once it began */
    for (int j = 0; j < p->n_hosts && have < want && p->capacity_out == 0; j++) {
        if (p->nodes[j].life.state == NODE_OFF && p->nodes[j].new_shape == p->rolling) {
            place(&p->nodes[j], now);
            have++;
        }
    }
    if (have < want && p->capacity_out > 0)
        eng_event(now, "pending", p->cfg->name, "%d replicas wanted, %d placed: no capacity "
                  "(spot_reclaim or quota_exhausted)", want, have);
    else if (have < want)
        eng_event(now, "pending", p->cfg->name, "%d replicas wanted, %d hosts in the pool", want,
                  have);
    for (int pass = 0; pass < 3 && have > want; pass++) {
        for (int k = p->n_hosts - 1; k >= 0 && have > want; k--) {
            /* newest first; during a rollout, the old shape before the new */
            int j = k;
            if (p->rolling)
                j = k >= p->n_hosts - p->n_old ? k - (p->n_hosts - p->n_old) : k + p->n_old;
            eng_node *n = &p->nodes[j];
            int starting = n->life.state >= NODE_PROVISIONING && n->life.state <= NODE_WARMING;
            if ((pass == 0 && n->life.unscheduled) || (pass == 1 && starting)) {
                power_off(n, NODE_OFF, now);
                have--;
            } else if (pass == 2 && (n->life.state == NODE_READY || n->life.state == NODE_FAILED)) {
                if (n->life.state == NODE_FAILED)
                    power_off(n, NODE_OFF, now);
                else
                    drain(n, now);
                have--;
            }
        }
    }
}

/* ---------- rolling update to a new node shape ---------- */

/* A Deployment's rolling update between the old-shape slots (the old
 * ReplicaSet) and the new-shape ones, as kubernetes
 * pkg/controller/deployment/rolling.go reconciles it: scale the new set up
 * while total <= replicas + maxSurge, scale the old set down while
 * available >= replicas - maxUnavailable, unavailable old pods first.
 * Re-evaluated every second of simulated time until done. */
static void rollout(int argc, char *argv[])
{
    (void)argc;
    (void)argv;
    eng_pool *p = sg_actor_self_get_data();
    const sc_rollout *ro = &p->cfg->rollout;
    sg_actor_sleep_until(ro->at_s);
    p->rolling = 1;
    eng_event(simgrid_get_clock(), "rollout_start", p->cfg->name,
              "to %d GPUs a node (%s), surge %d, unavailable %d", ro->gpus_per_node,
              ro->power.gpu_type, ro->max_surge, ro->max_unavailable);
    for (;;) {
        double now = simgrid_get_clock();
        int replicas = p->target;
        int old_total = 0, old_ready = 0, new_total = 0, new_ready = 0;
        for (int j = 0; j < p->n_hosts; j++) {
            eng_node_state st = p->nodes[j].life.state;
            int active = st != NODE_OFF && st != NODE_DRAINING;
            if (p->nodes[j].new_shape) {
                new_total += active;
                new_ready += st == NODE_READY;
            } else {
                old_total += active;
                old_ready += st == NODE_READY;
            }
        }
        if (old_total == 0 && new_ready >= replicas) {
            eng_event(now, "rollout_done", p->cfg->name, "%d replicas of the new shape", new_ready);
            return;
        }
        int total = old_total + new_total;
        /* reconcileNewReplicaSet: up to replicas + maxSurge in all */
        int up = replicas + ro->max_surge - total;
        if (up > replicas - new_total)
            up = replicas - new_total;
        for (int j = p->n_old; j < p->n_hosts && up > 0; j++) {
            if (p->nodes[j].life.state == NODE_OFF) {
                place(&p->nodes[j], now);
                up--;
                new_total++;
                total++;
            }
        }
        /* reconcileOldReplicaSets: keep replicas - maxUnavailable available */
        int min_available = replicas - ro->max_unavailable;
        int max_down = total - min_available - (new_total - new_ready);
        for (int j = p->n_old - 1; j >= 0 && max_down > 0; j--) { /* unhealthy old first */
            eng_node *n = &p->nodes[j];
            if (n->life.state != NODE_OFF && n->life.state != NODE_DRAINING && n->life.state != NODE_READY) {
                power_off(n, NODE_OFF, now);
                max_down--;
                old_total--;
            }
        }
        int available = old_ready + new_ready;
        int down = available - min_available;
        if (down > max_down)
            down = max_down;
        for (int j = p->n_old - 1; j >= 0 && down > 0; j--) {
            if (p->nodes[j].life.state == NODE_READY) {
                drain(&p->nodes[j], now);
                down--;
            }
        }
        sg_actor_sleep_for(1.0);
    }
}

void life_start_rollout(eng_pool *p)
{
    if (!p->cfg->rollout.enabled)
        return;
    sg_actor_t a = sg_actor_init("rollout", eng_world.balancer_host);
    sg_actor_set_data(a, p);
    sg_actor_start(a, rollout, 0, NULL);
}

/* ---------- active health checks ---------- */

/* One probe's failure counted against a node. */
static void probe_failed(eng_node *n, const sc_health *h, double now)
{
    n->health.hc_oks = 0;
    if (n->health.hc_up && ++n->health.hc_fails >= h->fall) {
        n->health.hc_up = 0;
        eng_event(now, "health_down", n->name, "%d checks failed", h->fall);
    }
    eng_view_sync(n);
}

/* Probes every registered node each interval. An answer (a success, or the
 * 500 of a node whose GPU errors) is known at once; a node that cannot
 * answer (crashed, or cut off by a partition) fails when the probe's
 * timeout expires. */
static void health_checker(int argc, char *argv[])
{
    (void)argc;
    (void)argv;
    eng_pool *p = sg_actor_self_get_data();
    const sc_health *h = &p->cfg->health;
    int *silent = p->hc_silent;
    double next = 0;
    for (;;) {
        next += h->interval_s;
        sg_actor_sleep_until(next);
        double now = simgrid_get_clock();
        int n_silent = 0;
        for (int j = 0; j < p->n_hosts; j++) {
            eng_node *n = &p->nodes[j];
            silent[j] = 0;
            if (!n->health.registered)
                continue;
            if (n->life.state != NODE_READY || p->partitioned) {
                silent[j] = 1;
                n_silent++;
            } else if (n->fault.gpu_error) {
                probe_failed(n, h, now);
            } else {
                n->health.hc_fails = 0;
                if (!n->health.hc_up && ++n->health.hc_oks >= h->rise) {
                    n->health.hc_up = 1;
                    eng_event(now, "health_up", n->name, "%d checks passed", h->rise);
                }
                eng_view_sync(n);
            }
        }
        eng_drain_balancer_queue(p, now);
        if (n_silent == 0)
            continue;
        sg_actor_sleep_for(fmin(h->timeout_s, h->interval_s));
        now = simgrid_get_clock();
        for (int j = 0; j < p->n_hosts; j++) {
            eng_node *n = &p->nodes[j];
            /* still silent: not recovered into a fresh server meanwhile */
            if (silent[j] && n->health.registered && (n->life.state != NODE_READY || p->partitioned))
                probe_failed(n, h, now);
        }
    }
}

void life_start_health_checks(eng_pool *p)
{
    if (p->cfg->health.interval_s <= 0)
        return;
    p->hc_silent = calloc((size_t)p->n_hosts, sizeof *p->hc_silent);
    sg_actor_t a = sg_actor_init("health", eng_world.balancer_host);
    sg_actor_set_data(a, p);
    sg_actor_start(a, health_checker, 0, NULL);
}

void life_account_end(double end_s)
{
    for (int k = 0; k < eng_world.sc->n_pools; k++) {
        eng_pool *p = &eng_world.pools[k];
        for (int j = 0; j < p->n_hosts; j++) {
            eng_node *n = &p->nodes[j];
            serve_account_end(n, end_s);
            if (n->life.up_since_s >= 0)
                n->life.up_total_s += end_s - n->life.up_since_s;
            if (n->life.ready_since_s >= 0)
                n->life.ready_total_s += end_s - n->life.ready_since_s;
            if (n->life.serving_since_s >= 0)
                eng_account_serving(p, n, n->life.serving_since_s, end_s);
        }
    }
}
