/*
 * chaos.c - injected faults: crashes, random crashes (MTBF/MTTR), slow
 * GPUs, GPU errors, network latency, partitions, error rates, zone outages,
 * balancer failures, flash crowds, bandwidth cuts, links down, retry
 * storms, stale metrics and lost GPUs.
 *
 * Each scheduled fault is one actor on the balancer's host that waits for
 * the fault's start, applies it, and undoes it after its duration. The
 * start is a time (`at`, or `after` a fault whose start is a time: both
 * fixed at load), or an event at run time: `when` (the offered load
 * crossed a threshold; chaos_on_arrival() watches every arrival and
 * releases the fault's semaphore) or `after` a fault that starts on one (its
 * start releases the semaphore, then this one sleeps its delay). A retry
 * storm makes the clients of its classes resend requests that end in
 * error: the requests wait in a heap ordered by due time for one "clients"
 * actor that sends them again (eng_resend).
 *
 * A random crash is one actor per node alternating time-to-failure and
 * time-to-repair (exponential or Weibull, via GSL). Flash crowds change the
 * arrival-rate profile before the run (the rate is a known function of
 * time). Every fault is an event and an entry of summary.json's `faults`.
 * What each kind changes when it starts and ends is the fault_ops table;
 * the kinds and their names are fault_kinds.h's.
 */
#include "control.h"
#include "link_power.h"
#include "serve.h"

#include <simgrid/engine.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Run-time state of the faults: starts and conditions. */
typedef struct {
    int fault;
    double *ring;          /* the last k arrival times at the pools hit */
    int k, n, head;
    int fired;
} trigger;

typedef struct {
    double due;
    unsigned long seq;
    eng_req *r;
    eng_pool *p;
} pending_retry;

static struct {
    sg_sem_t *go;          /* per fault: released when a run-time start comes */
    int *active;           /* per fault: applied now */
    trigger *trig;
    int n_trig;
    pending_retry *heap;   /* client retries, by (due, seq) */
    size_t n_heap, cap_heap;
    unsigned long seq;
    sg_sem_t clients_wake;
    double clients_until;  /* the clients actor sleeps until then */
    int clients_late;      /* a retry is due before then: wake it (chaos_clients_wake) */
    char **speed_files;    /* per speed_profile fault: the file SimGrid reads */
} chaos_state;

static const char *zone_of(const eng_pool *p)
{
    return p->cfg->zone ? p->cfg->zone : p->cfg->name;
}

/* Pools a fault applies to: by zone, by pool, or all. */
static int pool_hit(const sc_fault *f, const eng_pool *p)
{
    if (f->zone)
        return !strcmp(f->zone, zone_of(p));
    return f->pool < 0 || f->pool == p->id;
}

static int node_hit(const sc_fault *f, const eng_node *n)
{
    return pool_hit(f, n->pool) && (f->node < 0 || f->node == n->index);
}

static void target_name(const sc_fault *f, char *buf, size_t len)
{
    if (f->kind == SC_FAULT_CACHE_DOWN)
        snprintf(buf, len, "%s", eng_world.sc->caches[f->dep].name);
    else if (f->kind == SC_FAULT_LB_FAILURE && f->l7 >= 0)
        snprintf(buf, len, "%s", eng_world.sc->lb.l7[f->l7].name);
    else if (f->kind == SC_FAULT_BROKER_DOWN)
        snprintf(buf, len, "%s", eng_world.sc->queues[f->dep].name);
    else if (f->zone)
        snprintf(buf, len, "zone %s", f->zone);
    else if (f->pool < 0)
        snprintf(buf, len, "all pools");
    else if (f->node < 0)
        snprintf(buf, len, "%s", eng_world.sc->pools[f->pool].name);
    else
        snprintf(buf, len, "%s/%d", eng_world.sc->pools[f->pool].name, f->node);
}

/* Adds the fault to the results; returns its index there. */
static int record(const sc_fault *f, double start, double end, const char *detail)
{
    char target[128];
    target_name(f, target, sizeof target);
    start = round(start * 1e9) / 1e9; /* SimGrid's clock carries float dust */
    end = round(end * 1e9) / 1e9;
    rp_fault rf = { .start_s = start, .end_s = end, .kind = (char *)sc_fault_name(f->kind),
                    .target = target, .detail = (char *)detail, .error_share = NAN };
    rp_add_fault(eng_world.out, &rf);
    eng_event(start, "fault_start", target, "%s%s%s", sc_fault_name(f->kind), detail ? ": " : "",
              detail ? detail : "");
    return (int)eng_world.out->n_faults - 1;
}

static int fault_index(const sc_fault *f)
{
    return (int)(f - eng_world.sc->faults);
}

/* Marks (or clears) the fault as the cause of errors on a node or pool. */
static void blame(int *cause, int *rec, int fault, int fault_rec, int on)
{
    if (on) {
        *cause = fault;
        *rec = fault_rec;
    } else if (*cause == fault) {
        *cause = -1;
        *rec = -1;
    }
}

/* ---------- what each kind of fault changes ---------- */

/* A fault starting (on = 1) or ending (on = 0): the scenario's fault, its
 * index there, its entry in the results, and the time. */
typedef struct {
    const sc_fault *f;
    int idx, rec, on;
    double now;
} fault_change;

static void retry_storm(const fault_change *c)
{
    for (int k = 0; k < eng_world.sc->n_traffic; k++)
        if (c->f->traffic < 0 || c->f->traffic == k) {
            if (c->on)
                eng_world.classes[k].retry = c->f;
            else if (eng_world.classes[k].retry == c->f)
                eng_world.classes[k].retry = NULL;
        }
}

static void cache_down(const fault_change *c)
{
    eng_cache *cache = &eng_world.caches[c->f->dep];
    blame(&cache->cause, &cache->fault_rec, c->idx, c->rec, c->on);
    pipe_cache_down(c->f->dep, c->on);
}

static void broker_down(const fault_change *c)
{
    pipe_queue_down(c->f->dep, c->on, c->idx, c->rec, c->now);
}

static void net_latency(eng_pool *p, const fault_change *c)
{
    p->extra_latency_s += c->on ? c->f->factor : -c->f->factor;
}

/* Counted: overlapping partitions (and link_down, which is one) keep the
 * pool cut off until the last of them ends. */
static void partition(eng_pool *p, const fault_change *c)
{
    p->partitioned += c->on ? 1 : -1;
}

static void error_rate(eng_pool *p, const fault_change *c)
{
    p->error_prob = c->on ? c->f->factor : 0;
}

static void lb_down(eng_pool *p, const fault_change *c)
{
    p->lb_down = c->on;
}

/* Node n's SimGrid link to the balancer's star (run/run.c), or NULL. */
static sg_link_t node_link(const eng_node *n)
{
    char name[128];
    snprintf(name, sizeof name, "%s/link", n->name);
    return sg_link_by_name(name);
}

/* The pool's bandwidth share: the product of the cuts active on it, set on
 * its SimGrid links too (each node's link to the balancer). */
static void bandwidth_cut(eng_pool *p, const fault_change *c)
{
    (void)c;
    double factor = 1.0;
    for (int i = 0; i < eng_world.sc->n_faults; i++)
        if (chaos_state.active[i] && eng_world.sc->faults[i].kind == SC_FAULT_BANDWIDTH_CUT &&
            pool_hit(&eng_world.sc->faults[i], p))
            factor *= eng_world.sc->faults[i].factor;
    p->bw_factor = factor;
    for (int j = 0; j < p->n_hosts; j++) {
        sg_link_t l = node_link(&p->nodes[j]);
        if (l)
            sg_link_set_bandwidth(l, p->cfg->link_bandwidth_Bps * factor);
    }
}

/* The pool's links off: each node's link to the balancer's star, over which
 * its KV transfers go too (run/run.c's routes). SimGrid fails every
 * communication crossing one, in flight when it goes off or started while
 * it is off (link_power.cc): a KV transfer fails as when its prefill host
 * dies (serve/llm.c, kv_receiver: the attempt fails and is retried as the
 * balancer's rules allow). The balancer reaches the nodes over the same
 * links, so the pool is also partitioned while it lasts: attempts to its
 * nodes fail and health checks go unanswered, exactly as under
 * `partition`. The links come back on when the last link_down on the pool
 * ends; a bandwidth_cut meanwhile still sets their bandwidth. */
static void link_down(eng_pool *p, const fault_change *c)
{
    partition(p, c);
    p->links_down += c->on ? 1 : -1;
    if (c->on) {
        p->links_cause = c->idx;
        p->links_rec = c->rec;
    } else if (p->links_down == 0) {
        p->links_cause = p->links_rec = -1;
    }
    for (int j = 0; j < p->n_hosts; j++) {
        sg_link_t l = node_link(&p->nodes[j]);
        if (l)
            chaos_link_power(l, p->links_down == 0);
    }
}

static void stale_metrics(eng_pool *p, const fault_change *c)
{
    p->metrics_stale += c->on ? 1 : -1;
}

static void capacity(eng_pool *p, const fault_change *c)
{
    life_capacity(p, c->on, c->now);
}

static void reclaim(eng_node *n, const fault_change *c)
{
    if (c->on)
        life_reclaim(n, c->now, c->f->notice_s);
}

static void crash(eng_node *n, const fault_change *c)
{
    if (c->on)
        life_crash(n, c->now, sc_fault_name(c->f->kind));
    else
        life_recover(n, c->now);
}

static void slowdown(eng_node *n, const fault_change *c)
{
    int level = c->on ? (int)lround((1.0 - c->f->factor) * ENG_PSTATES) : 0;
    if (level < 0)
        level = 0;
    if (level > ENG_PSTATES - 1)
        level = ENG_PSTATES - 1;
    if (sg_host_is_on(n->host))
        eng_node_set_pstate(n, level);
}

static void gpu_error(eng_node *n, const fault_change *c)
{
    n->fault.gpu_error = c->on;
}

/* GPUs fallen off the bus (DCGM/NVML XID 79): the device plugin marks each
 * unhealthy (NVIDIA/k8s-device-plugin, internal/rm/health.go: every XID
 * but the application errors 13, 31, 43, 45, 68 and 109) and the engine
 * whose tensor- or expert-parallel group holds one dies with its KV cache
 * (vLLM's executor shuts down when a worker dies). Only the replicas
 * holding a lost GPU go down; when that is every replica of the node (one
 * replica per node, or an expert-parallel group) the node crashes and
 * comes back through its lifecycle, as after node_crash. A GPU the node
 * no longer has (a smaller rollout shape) is not lost. */
static void gpu_failure(eng_node *n, const fault_change *c)
{
    int count = c->f->gpus;
    if (c->f->gpu + count > n->gpus)
        count = n->gpus - c->f->gpu;
    if (count <= 0)
        return;
    if (serve_gpus_lost(n, c->f->gpu, count, c->on, c->now))
        crash(n, c);
}

/* Each kind's change, made with on = 1 when the fault starts and undone
 * with on = 0 when it ends. A fault on something other than pools (traffic
 * classes, a pipeline's cache or queue) has `apply`; one on pools (a node,
 * a pool, a zone or all of them) has `pool`, called for each pool it hits,
 * and `node`, for each node of those it hits. With `blames`, the pools or
 * nodes changed are marked as the cause of their errors while it lasts.
 * random_crash, flash_crowd and the profiles have none: their own actors
 * (random_crasher, profile_walker) or the rate profile (chaos_apply_rates)
 * make them. */
static const struct fault_ops {
    void (*apply)(const fault_change *c);
    void (*pool)(eng_pool *p, const fault_change *c);
    void (*node)(eng_node *n, const fault_change *c);
    int blames;
} fault_ops[SC_N_FAULT_KINDS] = {
    [SC_FAULT_NODE_CRASH] = { .node = crash, .blames = 1 },
    [SC_FAULT_ZONE_OUTAGE] = { .node = crash, .blames = 1 },
    [SC_FAULT_SLOWDOWN] = { .node = slowdown, .blames = 1 },
    [SC_FAULT_GPU_ERROR] = { .node = gpu_error, .blames = 1 },
    [SC_FAULT_NET_LATENCY] = { .pool = net_latency, .blames = 1 },
    [SC_FAULT_PARTITION] = { .pool = partition, .blames = 1 },
    [SC_FAULT_ERROR_RATE] = { .pool = error_rate, .blames = 1 },
    [SC_FAULT_LB_FAILURE] = { .pool = lb_down, .blames = 1 },
    [SC_FAULT_BANDWIDTH_CUT] = { .pool = bandwidth_cut, .blames = 1 },
    [SC_FAULT_STALE_METRICS] = { .pool = stale_metrics },
    [SC_FAULT_RETRY_STORM] = { .apply = retry_storm },
    [SC_FAULT_CACHE_DOWN] = { .apply = cache_down },
    [SC_FAULT_BROKER_DOWN] = { .apply = broker_down },
    [SC_FAULT_SPOT_RECLAIM] = { .pool = capacity, .node = reclaim, .blames = 1 },
    [SC_FAULT_QUOTA_EXHAUSTED] = { .pool = capacity, .blames = 1 },
    [SC_FAULT_GPU_FAILURE] = { .node = gpu_failure, .blames = 1 },
    [SC_FAULT_LINK_DOWN] = { .pool = link_down, .blames = 1 },
};

/* Starts (on = 1) or ends (on = 0) a fault everywhere it hits; idx is the
 * scenario's fault, rec its entry in the results. A pool whose fault ended
 * sends on what its balancer queue held. */
static void apply(const sc_fault *f, int idx, int rec, int on, double now)
{
    if (eng_hook.catch_up) /* a server's own events due by now happen first */
        eng_hook.catch_up(now);
    const struct fault_ops *ops = &fault_ops[f->kind];
    const fault_change c = { .f = f, .idx = idx, .rec = rec, .on = on, .now = now };
    chaos_state.active[idx] = on;
    if (f->l7 >= 0) { /* lb_failure of one L7 balancer, not of pools */
        tier_down(f->l7, on, idx, rec, now);
        return;
    }
    if (ops->apply) {
        ops->apply(&c);
        return;
    }
    for (int k = 0; k < eng_world.sc->n_pools; k++) {
        eng_pool *p = &eng_world.pools[k];
        if (!pool_hit(f, p))
            continue;
        if (ops->pool) {
            if (ops->blames)
                blame(&p->cause, &p->fault_rec, idx, rec, on);
            ops->pool(p, &c);
        }
        for (int j = 0; ops->node && j < p->n_hosts; j++) {
            eng_node *n = &p->nodes[j];
            if (!node_hit(f, n))
                continue;
            if (ops->blames)
                blame(&n->fault.cause, &n->fault.fault_rec, idx, rec, on);
            ops->node(n, &c);
        }
        if (!on)
            eng_drain_balancer_queue(p, now);
    }
}

static void scheduled_fault(int argc, char *argv[])
{
    (void)argc;
    (void)argv;
    const sc_fault *f = sg_actor_self_get_data();
    int idx = fault_index(f);
    if (f->when_qps > 0 || f->after_prev >= 0) {
        sg_sem_acquire(chaos_state.go[idx]);
        if (f->after_prev >= 0 && f->after_s > 0)
            sg_actor_sleep_for(f->after_s);
    } else {
        sg_actor_sleep_until(f->at_s);
    }
    double now = simgrid_get_clock();
    if (!(now < eng_world.sc->duration_s))
        return;
    for (int j = idx + 1; j < eng_world.sc->n_faults; j++) /* faults `after` this one */
        if (eng_world.sc->faults[j].after_prev == idx)
            sg_sem_release(chaos_state.go[j]);
    double until = f->duration_s > 0 ? now + f->duration_s : NAN;
    char detail[128] = "";
    if (f->kind == SC_FAULT_SLOWDOWN)
        snprintf(detail, sizeof detail, "speed x%.2f", f->factor);
    else if (f->kind == SC_FAULT_NET_LATENCY)
        snprintf(detail, sizeof detail, "+%.1f ms one way", f->factor * 1e3);
    else if (f->kind == SC_FAULT_ERROR_RATE)
        snprintf(detail, sizeof detail, "%.1f%% of attempts fail", f->factor * 100);
    else if (f->kind == SC_FAULT_FLASH_CROWD)
        snprintf(detail, sizeof detail, "arrivals x%.2f", f->factor);
    else if (f->kind == SC_FAULT_BANDWIDTH_CUT)
        snprintf(detail, sizeof detail, "bandwidth x%.2f", f->factor);
    else if (f->kind == SC_FAULT_LB_FAILURE && f->l7 >= 0)
        snprintf(detail, sizeof detail, "the L4 takes it out of rotation %.1f s later",
                 tier_detected_at(now) - now);
    else if (f->kind == SC_FAULT_SPOT_RECLAIM)
        snprintf(detail, sizeof detail, "notice %g s", f->notice_s);
    else if (f->kind == SC_FAULT_GPU_FAILURE && f->gpus > 1)
        snprintf(detail, sizeof detail, "GPUs %d-%d of each node lost (XID 79)", f->gpu,
                 f->gpu + f->gpus - 1);
    else if (f->kind == SC_FAULT_GPU_FAILURE)
        snprintf(detail, sizeof detail, "GPU %d of each node lost (XID 79)", f->gpu);
    else if (f->kind == SC_FAULT_RETRY_STORM)
        snprintf(detail, sizeof detail, "clients retry %d times, backoff %gs x%g", f->retry_attempts,
                 f->retry_backoff_s, f->retry_multiplier);
    if (f->when_qps > 0) {
        size_t len = strlen(detail);
        snprintf(detail + len, sizeof detail - len, "%swhen offered > %g qps over %gs",
                 len ? ", " : "", f->when_qps, f->when_window_s);
    }
    int rec = record(f, now, until, detail[0] ? detail : NULL);
    ENG_NOTIFY(fault, fault_index(f), rec);
    if (f->kind == SC_FAULT_FLASH_CROWD)
        return; /* already in the rate profile */
    apply(f, fault_index(f), rec, 1, now);
    if (f->kind == SC_FAULT_LB_FAILURE && f->standby_failover_s > 0) {
        sg_actor_sleep_for(f->standby_failover_s);
        now = simgrid_get_clock();
        eng_world.out->faults[rec].end_s = now;
        apply(f, fault_index(f), rec, 0, now);
        eng_event(now, "failover", "balancer", "standby took over after %.1f s", f->standby_failover_s);
        return;
    }
    if (f->duration_s > 0) {
        sg_actor_sleep_for(f->duration_s);
        now = simgrid_get_clock();
        apply(f, fault_index(f), rec, 0, now);
        char target[128];
        target_name(f, target, sizeof target);
        eng_event(now, "fault_end", target, "%s", sc_fault_name(f->kind));
    }
}

typedef struct {
    const sc_fault *f;
    eng_node *node;
    gsl_rng *rng;
} crash_arg;

/* One node's alternating renewal process: up ~ mtbf, down ~ mttr. */
static void random_crasher(int argc, char *argv[])
{
    (void)argc;
    (void)argv;
    crash_arg *a = sg_actor_self_get_data();
    for (;;) {
        sg_actor_sleep_for(a->f->mtbf_s * eng_draw_unit(&a->f->ttf, a->rng));
        eng_node *n = a->node;
        if (n->life.state == NODE_OFF || n->life.state == NODE_FAILED)
            continue; /* not running: nothing to fail */
        double now = simgrid_get_clock();
        sc_fault one = *a->f;
        one.pool = n->pool->id;
        one.node = n->index;
        one.zone = NULL;
        double down = a->f->mttr_s * eng_draw_unit(&a->f->ttr, a->rng);
        int rec = record(&one, now, now + down, "random");
        blame(&n->fault.cause, &n->fault.fault_rec, fault_index(a->f), rec, 1);
        life_crash(n, now, "random_crash");
        sg_actor_sleep_for(down);
        blame(&n->fault.cause, &n->fault.fault_rec, fault_index(a->f), rec, 0);
        life_recover(n, simgrid_get_clock());
    }
}

static crash_arg *crash_args;
static int n_crash_args;

void chaos_apply_rates(void)
{
    for (int i = 0; i < eng_world.sc->n_faults; i++) {
        const sc_fault *f = &eng_world.sc->faults[i];
        if (f->kind != SC_FAULT_FLASH_CROWD)
            continue;
        double end = f->duration_s > 0 ? f->at_s + f->duration_s : INFINITY;
        for (int c = 0; c < eng_world.sc->n_traffic; c++)
            if (f->traffic < 0 || f->traffic == c)
                sim_rate_scale(eng_world.classes[c].rate, f->at_s, end, f->factor);
    }
}

/* ---------- profile files ---------- */

/* The speed profile SimGrid applies to a host (write_platform's
 * speed_file), or NULL. SimGrid reads a copy written from the points the
 * loader checked, so both read the same profile. */
const char *chaos_speed_file(int pool, int node)
{
    const sc_pool *pc = &eng_world.sc->pools[pool];
    const char *zone = pc->zone ? pc->zone : pc->name, *file = NULL;
    for (int i = 0; i < eng_world.sc->n_faults; i++) {
        const sc_fault *f = &eng_world.sc->faults[i];
        if (f->kind != SC_FAULT_SPEED_PROFILE)
            continue;
        int hit = f->zone ? !strcmp(f->zone, zone)
                          : (f->pool < 0 || f->pool == pool) && (f->node < 0 || f->node == node);
        if (!hit)
            continue;
        if (!chaos_state.speed_files)
            chaos_state.speed_files = calloc((size_t)eng_world.sc->n_faults, sizeof *chaos_state.speed_files);
        if (!chaos_state.speed_files[i]) {
            char tmp[] = "/tmp/fleetsim-speed-XXXXXX";
            int fd = mkstemp(tmp);
            FILE *out = fd >= 0 ? fdopen(fd, "w") : NULL;
            if (!out)
                continue;
            for (int k = 0; k < f->n_prof; k++)
                fprintf(out, "%.17g %.17g\n", f->prof_t[k], f->prof_v[k]);
            if (f->prof_loop_s > 0)
                fprintf(out, "LOOPAFTER %.17g\n", f->prof_loop_s);
            fclose(out);
            chaos_state.speed_files[i] = strdup(tmp);
        }
        file = chaos_state.speed_files[i];
    }
    return file;
}

/* Walks a profile's points in time (looping with LOOPAFTER): a state
 * profile crashes the nodes hit at each 0 and reboots them (through the
 * lifecycle) at each 1; a speed profile (applied by SimGrid) records each
 * span below full speed as a fault, for the results and root causes. */
static void profile_walker(int argc, char *argv[])
{
    (void)argc;
    (void)argv;
    const sc_fault *f = sg_actor_self_get_data();
    int idx = fault_index(f), rec = -1, i = 0;
    double base = 0, end = eng_world.sc->duration_s;
    for (;;) {
        double t = base + f->prof_t[i], v = f->prof_v[i];
        if (!(t < end))
            return;
        if (t > simgrid_get_clock())
            sg_actor_sleep_until(t);
        double now = simgrid_get_clock();
        int bad = f->kind == SC_FAULT_STATE_PROFILE ? v == 0 : v < 1;
        if (bad && rec < 0) {
            char detail[128];
            if (f->kind == SC_FAULT_STATE_PROFILE)
                snprintf(detail, sizeof detail, "off (profile)");
            else
                snprintf(detail, sizeof detail, "speed x%.2f (profile)", v);
            rec = record(f, now, NAN, detail);
            ENG_NOTIFY(fault, idx, rec);
        }
        if (bad || rec >= 0) {
            for (int k = 0; k < eng_world.sc->n_pools; k++) {
                for (int j = 0; j < eng_world.pools[k].n_hosts; j++) {
                    eng_node *n = &eng_world.pools[k].nodes[j];
                    if (!node_hit(f, n))
                        continue;
                    blame(&n->fault.cause, &n->fault.fault_rec, idx, rec, bad);
                    if (f->kind == SC_FAULT_STATE_PROFILE && bad)
                        life_crash(n, now, "state_profile");
                    else if (f->kind == SC_FAULT_STATE_PROFILE)
                        life_recover(n, now);
                }
            }
        }
        if (!bad && rec >= 0) {
            eng_world.out->faults[rec].end_s = round(now * 1e9) / 1e9;
            char target[128];
            target_name(f, target, sizeof target);
            eng_event(now, "fault_end", target, "%s", sc_fault_name(f->kind));
            rec = -1;
        }
        if (++i == f->n_prof) {
            if (!(f->prof_loop_s > 0))
                return;
            base += f->prof_t[f->n_prof - 1] + f->prof_loop_s;
            i = 0;
        }
    }
}

/* Pools whose arrivals a `when` condition counts: those the fault hits; a
 * retry storm's, its classes' pools. */
static int trigger_counts(const sc_fault *f, const eng_pool *p)
{
    if (f->kind == SC_FAULT_RETRY_STORM) {
        for (int c = 0; c < eng_world.sc->n_traffic; c++)
            if ((f->traffic < 0 || f->traffic == c) && eng_world.classes[c].pool == p)
                return 1;
        return 0;
    }
    return pool_hit(f, p);
}

/* The offered load over (now - W, now] exceeds X when the arrivals in it
 * number more than X W, i.e. at least k = floor(X W) + 1: when the k-th
 * most recent arrival is less than W old. Checked at each arrival, the only
 * moments the count grows. */
void chaos_on_arrival(eng_pool *p, double now)
{
    for (int i = 0; i < chaos_state.n_trig; i++) {
        trigger *t = &chaos_state.trig[i];
        const sc_fault *f = &eng_world.sc->faults[t->fault];
        if (t->fired || !trigger_counts(f, p))
            continue;
        t->ring[t->head] = now;
        t->head = (t->head + 1) % t->k;
        if (t->n < t->k)
            t->n++;
        /* head now points at the oldest of the last k */
        if (t->n == t->k && now - t->ring[t->head] < f->when_window_s) {
            t->fired = 1;
            sg_sem_release(chaos_state.go[t->fault]);
        }
    }
}

/* ---------- client retries ---------- */

static int heap_less(const pending_retry *a, const pending_retry *b)
{
    return a->due < b->due || (a->due == b->due && a->seq < b->seq);
}

static void heap_push(pending_retry x)
{
    if (chaos_state.n_heap == chaos_state.cap_heap) {
        chaos_state.cap_heap = chaos_state.cap_heap ? 2 * chaos_state.cap_heap : 256;
        chaos_state.heap = realloc(chaos_state.heap, chaos_state.cap_heap * sizeof *chaos_state.heap);
    }
    size_t i = chaos_state.n_heap++;
    while (i > 0 && heap_less(&x, &chaos_state.heap[(i - 1) / 2])) {
        chaos_state.heap[i] = chaos_state.heap[(i - 1) / 2];
        i = (i - 1) / 2;
    }
    chaos_state.heap[i] = x;
}

static pending_retry heap_pop(void)
{
    pending_retry top = chaos_state.heap[0], last = chaos_state.heap[--chaos_state.n_heap];
    size_t i = 0;
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= chaos_state.n_heap)
            break;
        if (c + 1 < chaos_state.n_heap && heap_less(&chaos_state.heap[c + 1], &chaos_state.heap[c]))
            c++;
        if (!heap_less(&chaos_state.heap[c], &last))
            break;
        chaos_state.heap[i] = chaos_state.heap[c];
        i = c;
    }
    if (chaos_state.n_heap)
        chaos_state.heap[i] = last;
    return top;
}

int chaos_client_retry(eng_pool *p, eng_req *r, double t_s)
{
    const sc_fault *f = eng_world.classes[r->tclass].retry;
    if (!f || r->client_tries >= f->retry_attempts || !chaos_state.clients_wake)
        return 0;
    double now = simgrid_get_clock();
    double due = t_s + f->retry_backoff_s * pow(f->retry_multiplier, r->client_tries);
    if (due < now)
        due = now;
    /* a retry the run would not see: the request ends with this attempt */
    if (!(now < eng_world.sc->duration_s) || !(due < eng_world.sc->duration_s))
        return 0;
    r->client_tries++;
    heap_push((pending_retry){ .due = due, .seq = chaos_state.seq++, .r = r, .p = p });
    if (due < chaos_state.clients_until) {
        chaos_state.clients_until = due;
        chaos_state.clients_late = 1;
    }
    return 1;
}

void chaos_census(unsigned long *requests, unsigned long *per_pool)
{
    /* a request held at stage 0 is still in its first pool; one that
     * failed at a later stage left it (stage -1) */
    for (size_t i = 0; i < chaos_state.n_heap; i++)
        eng_census_add(chaos_state.heap[i].r, chaos_state.heap[i].r->stage < 0 ? NULL : chaos_state.heap[i].p, requests,
                       per_pool);
}

void chaos_clients_wake(void)
{
    if (chaos_state.clients_late) {
        chaos_state.clients_late = 0;
        sg_sem_release(chaos_state.clients_wake);
    }
}

static void clients(int argc, char *argv[])
{
    (void)argc;
    (void)argv;
    for (;;) {
        double now = simgrid_get_clock();
        /* 1 ns: a timed wait can end a hair before its due time */
        while (chaos_state.n_heap > 0 && chaos_state.heap[0].due <= now + 1e-9) {
            pending_retry x = heap_pop();
            eng_resend(x.r, now);
        }
        if (chaos_state.n_heap == 0) {
            chaos_state.clients_until = INFINITY;
            sg_sem_acquire(chaos_state.clients_wake);
        } else {
            chaos_state.clients_until = chaos_state.heap[0].due;
            sg_sem_acquire_timeout(chaos_state.clients_wake, chaos_state.heap[0].due - now);
        }
    }
}

void chaos_start(void)
{
    int stream = 0;
    int n = eng_world.sc->n_faults, storms = 0;
    chaos_state.go = calloc((size_t)n + 1, sizeof *chaos_state.go);
    chaos_state.active = calloc((size_t)n + 1, sizeof *chaos_state.active);
    chaos_state.trig = calloc((size_t)n + 1, sizeof *chaos_state.trig);
    chaos_state.n_trig = 0;
    chaos_state.clients_until = INFINITY;
    chaos_state.clients_late = 0;
    for (int i = 0; i < n; i++) {
        const sc_fault *f = &eng_world.sc->faults[i];
        storms += f->kind == SC_FAULT_RETRY_STORM;
        if (f->when_qps > 0 || f->after_prev >= 0)
            chaos_state.go[i] = sg_sem_init(0);
        if (f->when_qps > 0) {
            trigger *t = &chaos_state.trig[chaos_state.n_trig++];
            t->fault = i;
            t->k = (int)floor(f->when_qps * f->when_window_s) + 1;
            t->ring = calloc((size_t)t->k, sizeof *t->ring);
        }
    }
    if (storms) {
        chaos_state.clients_wake = sg_sem_init(0);
        sg_actor_t a = sg_actor_init("clients", eng_world.balancer_host);
        sg_actor_start(a, clients, 0, NULL);
    }
    free(crash_args);
    crash_args = NULL;
    n_crash_args = 0;
    for (int i = 0; i < eng_world.sc->n_faults; i++) {
        const sc_fault *f = &eng_world.sc->faults[i];
        if (f->kind != SC_FAULT_RANDOM_CRASH) {
            int profile = f->kind == SC_FAULT_SPEED_PROFILE || f->kind == SC_FAULT_STATE_PROFILE;
            sg_actor_t a = sg_actor_init(sc_fault_name(f->kind), eng_world.balancer_host);
            sg_actor_set_data(a, (void *)f);
            sg_actor_start(a, profile ? profile_walker : scheduled_fault, 0, NULL);
            continue;
        }
        for (int k = 0; k < eng_world.sc->n_pools; k++)
            for (int j = 0; j < eng_world.pools[k].n_hosts; j++)
                n_crash_args += node_hit(f, &eng_world.pools[k].nodes[j]);
    }
    if (n_crash_args == 0)
        return;
    crash_args = calloc((size_t)n_crash_args, sizeof *crash_args);
    int used = 0;
    for (int i = 0; i < eng_world.sc->n_faults; i++) {
        const sc_fault *f = &eng_world.sc->faults[i];
        if (f->kind != SC_FAULT_RANDOM_CRASH)
            continue;
        for (int k = 0; k < eng_world.sc->n_pools; k++) {
            for (int j = 0; j < eng_world.pools[k].n_hosts; j++) {
                eng_node *n = &eng_world.pools[k].nodes[j];
                if (!node_hit(f, n))
                    continue;
                crash_arg *a = &crash_args[used++];
                a->f = f;
                a->node = n;
                a->rng = eng_stream_rng(eng_world.sc->seed,
                                        eng_stream(ENG_STREAM_RANDOM_CRASH, (unsigned long)stream++));
                sg_actor_t act = sg_actor_init("random_crash", eng_world.balancer_host);
                sg_actor_set_data(act, a);
                sg_actor_start(act, random_crasher, 0, NULL);
            }
        }
    }
}

void chaos_free(void)
{
    for (int i = 0; i < eng_world.sc->n_faults && chaos_state.go; i++)
        if (chaos_state.go[i])
            sg_sem_destroy(chaos_state.go[i]);
    for (int i = 0; i < chaos_state.n_trig; i++)
        free(chaos_state.trig[i].ring);
    if (chaos_state.clients_wake)
        sg_sem_destroy(chaos_state.clients_wake);
    free(chaos_state.go);
    free(chaos_state.active);
    free(chaos_state.trig);
    free(chaos_state.heap);
    for (int i = 0; i < eng_world.sc->n_faults && chaos_state.speed_files; i++) {
        if (chaos_state.speed_files[i])
            unlink(chaos_state.speed_files[i]);
        free(chaos_state.speed_files[i]);
    }
    free(chaos_state.speed_files);
    memset(&chaos_state, 0, sizeof chaos_state);
    for (int i = 0; i < n_crash_args; i++)
        gsl_rng_free(crash_args[i].rng);
    free(crash_args);
    crash_args = NULL;
    n_crash_args = 0;
}
