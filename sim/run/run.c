/*
 * run.c - one run, top to bottom: the platform, building the world from the
 * scenario (pools, nodes, balancers, traffic sources, servers, observers,
 * chaos, autoscalers) with the hooks registered, SimGrid's run, the time
 * series sampler and progress bar, the end-of-run census, the results, and
 * teardown.
 *
 * Platform: one SimGrid host per node the pool may ever use (cores = GPUs,
 * 1 Gflop/s per core at full speed, lower pstates for throttling), one host
 * for the balancer, one link per node to the balancer, energy plugin
 * wattages per node type. The hosts form a star (a route is the source's
 * link then the destination's), so the platform grows with the nodes, not
 * with their pairs as a full routing table would.
 *
 * Actors: one traffic generator per class (flow/request.c); the server
 * model's actors on each ready node (serve/); lifecycle, autoscaling,
 * weights and chaos actors (control/); the scraper (observe/); one sampler
 * here that closes each time-series interval.
 * Requests end in exactly one bucket (completed, rejected, failed, timed
 * out) or are in flight at the end; the caller checks that sum against
 * generated.
 */
#include "control.h"
#include "engine.h"
#include "observe.h"
#include "serve.h"

#include <simgrid/engine.h>
#include <simgrid/exec.h>
#include <simgrid/plugins/energy.h>

#include <errno.h>
#include <math.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

static double mono_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static double wall_now(void)
{
    return mono_s() - eng_world.wall0;
}

/* ---------- time series ---------- */

static void close_interval(size_t i)
{
    rp_sample *s = &eng_world.out->samples[i];
    double len = fmin(eng_world.sc->interval_s, eng_world.sc->duration_s - (double)i * eng_world.sc->interval_s);
    s->t_s = (double)i * eng_world.sc->interval_s;
    s->offered_qps = len > 0 ? eng_world.offered[i] / len : 0;
    s->p50_s = sim_hist_quantile(eng_world.interval_latency, 0.5);
    s->p99_s = sim_hist_quantile(eng_world.interval_latency, 0.99);
    sim_hist_reset(eng_world.interval_latency);
    for (int k = 0; k < eng_world.sc->n_pools; k++) {
        eng_pool *p = &eng_world.pools[k];
        int depth = p->lbq.len;
        for (int j = 0; j < p->n_hosts; j++)
            depth += serve_queued(&p->nodes[j]);
        s->pools[k].queue_depth = depth;
        serve_close_interval(p, i);
        s->pools[k].replicas = eng_ready_count(p, 0);
        s->pools[k].starting = eng_ready_count(p, 1) - s->pools[k].replicas;
        for (int j = 0; j < p->n_hosts; j++) {
            eng_node *n = &p->nodes[j];
            s->pools[k].draining += n->life.state == NODE_DRAINING;
            /* the node did not exist, or lay crashed, and did no work: no cell
             * in the heatmap rather than an idle one */
            if (n->work.busy_series &&
                (n->life.state == NODE_OFF || n->life.state == NODE_FAILED) &&
                n->work.busy_series[i] == 0)
                n->work.busy_series[i] = NAN;
        }
    }
}

static void progress(double now)
{
    double w = wall_now();
    if (w - eng_world.last_progress_wall < 0.1 && now < eng_world.sc->duration_s)
        return;
    eng_world.last_progress_wall = w;
    double frac = now / eng_world.sc->duration_s;
    int width = 30, filled = (int)(frac * width + 0.5);
    char bar[64];
    for (int i = 0; i < width; i++)
        bar[i] = i < filled ? '#' : '.';
    bar[width] = '\0';
    fprintf(stderr, "\r[%s] %5.1f%%  sim %.0fs  %.0f req/s (wall)  ", bar, 100 * frac, now,
            w > 0 ? (double)eng_world.all.generated / w : 0);
    if (now >= eng_world.sc->duration_s)
        fputc('\n', stderr);
}

static void stop_watch(int argc, char *argv[]);

static void sampler(int argc, char *argv[])
{
    (void)argc;
    (void)argv;
    for (size_t i = 0; i < eng_world.n_intervals; i++) {
        double end = fmin((double)(i + 1) * eng_world.sc->interval_s, eng_world.sc->duration_s);
        sg_actor_sleep_until(end);
        if (eng_hook.catch_up)
            eng_hook.catch_up(end);
        close_interval(i);
        pipe_close_interval(i);
        eng_world.n_closed = i + 1;
        if (eng_world.progress)
            progress(end);
    }
}

/* ---------- platform ---------- */

/* Names from the scenario go into XML attributes: escape them. */
static void xml_attr(FILE *f, const char *s)
{
    for (; *s; s++) {
        switch (*s) {
        case '<': fputs("&lt;", f); break;
        case '>': fputs("&gt;", f); break;
        case '&': fputs("&amp;", f); break;
        case '"': fputs("&quot;", f); break;
        case '\'': fputs("&apos;", f); break;
        default: fputc(*s, f);
        }
    }
}

static int write_platform(const char *path)
{
    FILE *f = fopen(path, "w");
    if (!f)
        return -1;
    fprintf(f, "<?xml version='1.0'?>\n"
               "<!DOCTYPE platform SYSTEM \"https://simgrid.org/simgrid.dtd\">\n"
               "<platform version=\"4.1\">\n<zone id=\"fleet\" routing=\"Cluster\">\n"
               "  <host id=\"balancer\" speed=\"1Gf\" core=\"1\">\n"
               "    <prop id=\"wattage_per_state\" value=\"0.0:0.0:0.0\"/>\n"
               "    <prop id=\"wattage_off\" value=\"0\"/>\n  </host>\n"
               /* the star (SimGrid 3.32's <zone routing="Cluster">, a
                * StarZone: src/kernel/routing/StarZone.cpp) wants a way up
                * and down from every host; the balancer's adds nothing:
                * no latency (0 + x is x), no bandwidth limit (the min
                * over a route is the node link's) */
               "  <link id=\"balancer/link\" bandwidth=\"1.7976931348623157e308Bps\" latency=\"0s\""
               " sharing_policy=\"FATPIPE\"/>\n"
               "  <host_link id=\"balancer\" up=\"balancer/link\" down=\"balancer/link\"/>\n");
    for (int k = 0; k < eng_world.sc->n_pools; k++) {
        const sc_pool *pc = &eng_world.sc->pools[k];
        int n_old;
        int slots = eng_pool_slots(pc, &n_old);
        for (int j = 0; j < slots; j++) {
            int g = j < n_old ? pc->gpus_per_node : pc->rollout.gpus_per_node;
            const sc_power *pw = j < n_old ? &pc->power : &pc->rollout.power;
            /* pstate i runs at (1 - i/ENG_PSTATES) of full speed; a throttled
             * GPU draws proportionally less above idle */
            fputs("  <host id=\"", f);
            xml_attr(f, pc->name);
            fprintf(f, "/%d\" speed=\"", j);
            for (int i = 0; i < ENG_PSTATES; i++)
                fprintf(f, "%s%.6gf", i ? "," : "", ENG_FLOPS_PER_S * (1.0 - (double)i / ENG_PSTATES));
            /* chaos: speed_profile. SimGrid 3.32 looks a profile up in its
             * path list (the platform file's folder, /tmp, among them) and
             * does not open an absolute name as is: give the file's name */
            const char *speed_file = chaos_speed_file(k, j);
            if (speed_file) {
                fputs("\" speed_file=\"", f);
                xml_attr(f, strrchr(speed_file, '/') + 1);
            }
            fprintf(f, "\" core=\"%d\" pstate=\"0\">\n    <prop id=\"wattage_per_state\" value=\"", g);
            for (int i = 0; i < ENG_PSTATES; i++) {
                double f_speed = 1.0 - (double)i / ENG_PSTATES;
                double idle = g * pw->idle_w_per_gpu;
                double busy = pw->idle_w_per_gpu +
                              (pw->busy_w_per_gpu - pw->idle_w_per_gpu) * f_speed;
                fprintf(f, "%s%.6f:%.6f:%.6f", i ? ", " : "", idle,
                        idle + (busy - pw->idle_w_per_gpu), g * busy);
            }
            /* hosts beyond the initial replicas exist only once provisioned */
            fprintf(f, "\"/>\n    <prop id=\"wattage_off\" value=\"%.6f\"/>\n  </host>\n",
                    j < pc->replicas ? pw->off_w : 0.0);
            fputs("  <link id=\"", f);
            xml_attr(f, pc->name);
            fprintf(f, "/%d/link\" bandwidth=\"%.17gBps\" latency=\"%.17gs\"/>\n", j,
                    pc->link_bandwidth_Bps, pc->link_latency_s);
        }
    }
    /* each node's link is its way up to the star's centre and its way down
     * from it; the balancer has none. So balancer <-> node j crosses node
     * j's link, and a prefill node i -> decode node j (a KV transfer,
     * serve/llm.c) crosses link i then link j, sharing those links'
     * bandwidth with the other transfers: the routes a full table held,
     * in the same order, without a table of every pair */
    for (int k = 0; k < eng_world.sc->n_pools; k++) {
        const sc_pool *pc = &eng_world.sc->pools[k];
        for (int j = 0; j < eng_pool_slots(pc, NULL); j++) {
            fputs("  <host_link id=\"", f);
            xml_attr(f, pc->name);
            fprintf(f, "/%d\" up=\"", j);
            xml_attr(f, pc->name);
            fprintf(f, "/%d/link\" down=\"", j);
            xml_attr(f, pc->name);
            fprintf(f, "/%d/link\"/>\n", j);
        }
    }
    fprintf(f, "</zone>\n</platform>\n");
    return fclose(f);
}

/* ---------- set-up and results ---------- */

/* Pool k is in the failover of a class that overflows (its saturation is
 * read per request: pool_saturated, from counts kept for such pools only). */
static int overflow_pool(const sc_scenario *sc, int k)
{
    for (int c = 0; c < sc->n_traffic; c++) {
        const sc_traffic *t = &sc->traffic[c];
        for (int i = 0; (t->overflow_queue > 0 || t->overflow_max_conns) && i < t->n_failover; i++)
            if (t->failover[i].pool == k)
                return 1;
    }
    return 0;
}

static int build(void)
{
    const sc_scenario *sc = eng_world.sc;
    eng_world.balancer_host = sg_host_by_name("balancer");
    if (tier_init())
        return -1;
    unsigned long stream = 0;
    eng_world.pools = calloc((size_t)sc->n_pools, sizeof *eng_world.pools);
    for (int k = 0; k < sc->n_pools; k++) {
        eng_pool *p = &eng_world.pools[k];
        p->cfg = &sc->pools[k];
        p->model = &sc->models[p->cfg->model];
        p->id = k;
        p->serve = p->model->llm         ? &serve_llm
                   : sc->simulation.fast ? &serve_batch_fast
                                         : &serve_batch;
        p->n_hosts = eng_pool_slots(p->cfg, &p->n_old);
        p->nodes = calloc((size_t)p->n_hosts, sizeof *p->nodes);
        p->lb_rng = eng_stream_rng(sc->seed, eng_stream(ENG_STREAM_LB, (unsigned long)k));
        p->fault_rng = eng_stream_rng(sc->seed, eng_stream(ENG_STREAM_FAULT, (unsigned long)k));
        p->lbi = calloc((size_t)eng_world.n_l7, sizeof *p->lbi);
        for (int i = 0; i < eng_world.n_l7; i++) {
            eng_lbi *b = &p->lbi[i];
            /* an L7 balancer's own policy, else the pool's, else the default */
            const char *policy = sc->lb.n_l7 > 0 && sc->lb.l7[i].policy ? sc->lb.l7[i].policy
                                 : p->cfg->lb_policy                     ? p->cfg->lb_policy
                                                                         : sc->lb.policy;
            b->servers = calloc((size_t)p->n_hosts, sizeof *b->servers);
            b->healthy = calloc((size_t)p->n_hosts > 0 ? (size_t)p->n_hosts : 1, 1);
            if (overflow_pool(sc, k)) /* failover's overflow test reads counts */
                b->sat = calloc((size_t)p->n_hosts > 0 ? (size_t)p->n_hosts : 1, 1);
            b->view.n = p->n_hosts;
            b->view.servers = b->servers;
            b->rng = i == 0 ? p->lb_rng
                            : eng_stream_rng(sc->seed, eng_stream(ENG_STREAM_L7, 1000UL * (unsigned long)k +
                                                                                  (unsigned long)i));
            b->balancer = lb_create_with(policy, p->n_hosts, b->rng, &sc->lb.params);
            if (!b->balancer) {
                fprintf(stderr, "fleetsim: unknown load-balancing policy '%s'\n", policy);
                return -1;
            }
        }
        p->lbq_capacity = sc->lb.queue_capacity;
        p->lbq_timeout_s = sc->lb.queue_timeout_s;
        p->busy_per_interval = calloc(eng_world.n_intervals, sizeof(double));
        p->serving_per_interval = calloc(eng_world.n_intervals, sizeof(double));
        p->cause = p->fault_rec = -1;
        p->bw_factor = 1.0;
        p->links_cause = p->links_rec = -1;
        p->node_series = (double)p->n_hosts * (double)eng_world.n_intervals <= 4e6;
        serve_init_pool(p);
        for (int j = 0; j < p->n_hosts; j++) {
            eng_node *n = &p->nodes[j];
            n->pool = p;
            n->index = j;
            snprintf(n->name, sizeof n->name, "%s/%d", p->cfg->name, j);
            n->host = sg_host_by_name(n->name);
            n->speed_flops = sg_host_get_speed(n->host); /* pstate 0 */
            n->speed_profiled = chaos_speed_file(k, j) != NULL;
            n->rng_stream = eng_stream(ENG_STREAM_NODE, stream++); /* the rng itself at its first draw */
            n->new_shape = j >= p->n_old;
            n->gpus = n->new_shape ? p->cfg->rollout.gpus_per_node : p->cfg->gpus_per_node;
            n->power = n->new_shape ? &p->cfg->rollout.power : &p->cfg->power;
            serve_init_node(n);
            n->life.up_since_s = -1;
            n->life.ready_since_s = -1;
            n->life.serving_since_s = -1;
            n->fault.cause = n->fault.fault_rec = -1;
            /* per-node series for the report's heatmap, while they stay
             * small: the initial fleet's now, the others' when they first
             * leave OFF (model.c) */
            if (p->node_series && j < p->cfg->replicas)
                n->work.busy_series = calloc(eng_world.n_intervals, sizeof *n->work.busy_series);
            n->health.hc_up = 1;
            for (int i = 0; i < eng_world.n_l7; i++)
                p->lbi[i].servers[j] = (lb_server_view){ .up = 0, .active = 0,
                                                         .max_conns = sc->lb.max_conns,
                                                         .weight = 1.0, .name = n->name };
        }
        if (p->n_hosts > 0) {
            p->route_latency_s = sg_host_get_route_latency(eng_world.balancer_host, p->nodes[0].host);
            p->route_bw_Bps = sg_host_get_route_bandwidth(eng_world.balancer_host, p->nodes[0].host);
        }
    }
    for (int i = 0; i < sc->lb.n_servers; i++) {
        const sc_server *sv = &sc->lb.servers[i];
        for (int l = 0; l < eng_world.n_l7; l++) {
            lb_server_view *v = &eng_world.pools[sv->pool].lbi[l].servers[sv->index];
            v->weight = sv->weight;
            v->max_conns = sv->max_conns;
            v->backup = sv->backup;
            v->down = sv->down;
            v->max_fails = sv->max_fails;
            v->fail_timeout_s = sv->fail_timeout_s;
            if (sv->name)
                v->name = sv->name;
        }
    }
    pipe_init(); /* queues cap their consumers' max_conns */
    /* from here on every change to a balancer's view is reported to its
     * policy (eng_lb_changed), which may then keep an index */
    for (int k = 0; k < sc->n_pools; k++) {
        for (int i = 0; i < eng_world.n_l7; i++)
            lb_track(eng_world.pools[k].lbi[i].balancer, &eng_world.pools[k].lbi[i].view);
        eng_lbi_recount(&eng_world.pools[k]);
    }
    for (int k = 0; k < sc->n_pools; k++) {
        life_init_pool(&eng_world.pools[k]);
        life_start_health_checks(&eng_world.pools[k]);
        life_start_rollout(&eng_world.pools[k]);
        weights_start(&eng_world.pools[k]);
    }
    eng_world.classes = calloc((size_t)sc->n_traffic, sizeof *eng_world.classes);
    for (int c = 0; c < sc->n_traffic; c++) {
        eng_class *tc = &eng_world.classes[c];
        tc->cfg = &sc->traffic[c];
        tc->id = c;
        tc->pool = &eng_world.pools[tc->cfg->pool];
        tc->pipe = &sc->pipelines[tc->cfg->pipeline];
        tc->rng = eng_stream_rng(sc->seed, eng_stream(ENG_STREAM_ARRIVALS, (unsigned long)c));
        if (tc->cfg->has_tokens && !tc->cfg->tokens_trace)
            tc->tok_rng = eng_stream_rng(sc->seed, eng_stream(ENG_STREAM_TOKENS, (unsigned long)c));
        tc->rate = sim_rate_new_repeating(tc->cfg->rate, tc->cfg->n_rate, tc->cfg->repeat_s);
        tc->latency = sim_hist_new(HIST_MIN_S, HIST_MAX_S, HIST_REL_ERR);
        tc->bytes = tc->cfg->bytes_in + tc->cfg->bytes_out;
        tc->net_s = 2 * tc->pool->route_latency_s + tc->bytes / tc->pool->route_bw_Bps;
        if (tc->cfg->failover) {
            size_t n = (size_t)tc->cfg->n_failover, nl = (size_t)tc->cfg->n_levels;
            tc->fo_rng = eng_stream_rng(sc->seed, eng_stream(ENG_STREAM_FAILOVER, (unsigned long)c));
            tc->fo_hosts = calloc(n, sizeof *tc->fo_hosts);
            tc->fo_healthy = calloc(n, sizeof *tc->fo_healthy);
            tc->fo_load = calloc(nl, sizeof *tc->fo_load);
            tc->fo_levels = calloc(nl, sizeof *tc->fo_levels);
        }
    }
    chaos_apply_rates();
    for (int c = 0; c < sc->n_traffic; c++) {
        sg_actor_t a = sg_actor_init(eng_world.classes[c].cfg->name, eng_world.balancer_host);
        sg_actor_set_data(a, &eng_world.classes[c]);
        sg_actor_start(a, eng_traffic_source, 0, NULL);
    }
    chaos_start();
    scale_start();
    obs_start();
    /* Not a daemon (SimGrid 3.32 would kill it twice: serve/batch.c); it
     * runs to the end of the run like every other actor. */
    sg_actor_t a = sg_actor_init("sampler", eng_world.balancer_host);
    sg_actor_start(a, sampler, 0, NULL);
    a = sg_actor_init("stop-watch", eng_world.balancer_host); /* last: no other actor's id moves */
    sg_actor_start(a, stop_watch, 0, NULL);
    return 0;
}

static void fill_latency(rp_latency *l, const sim_hist *h)
{
    l->mean = sim_hist_mean(h);
    l->p50 = sim_hist_quantile(h, 0.5);
    l->p90 = sim_hist_quantile(h, 0.9);
    l->p99 = sim_hist_quantile(h, 0.99);
    l->p999 = sim_hist_quantile(h, 0.999);
    l->max = sim_hist_max(h);
}

/* Requests still queued whose deadline passed, or whose L7 balancer went
 * down, before the end timed out or failed. */
static void sweep_expired(double end)
{
    for (int k = 0; k < eng_world.sc->n_pools; k++) {
        eng_pool *p = &eng_world.pools[k];
        eng_fifo keep = { 0 };
        eng_req *r;
        while ((r = eng_fifo_pop(&p->lbq))) {
            double gone = fmin(r->deadline_s, r->lbq_deadline_s), cut = tier_cut(r, end);
            if (cut <= end && cut <= gone)
                eng_req_end(p, r, B_FAILED, cut);
            else if (gone <= end)
                eng_req_end(p, r, B_TIMED_OUT, gone);
            else
                eng_fifo_push(&keep, r);
        }
        p->lbq = keep;
        for (int j = 0; j < p->n_hosts; j++) {
            eng_node *n = &p->nodes[j];
            eng_fifo kept = { 0 };
            while ((r = eng_fifo_pop(&n->work.q))) {
                eng_node_q_sync(n);
                double cut = tier_cut(r, end);
                if (cut <= end && cut <= r->deadline_s) {
                    p->lbi[r->l7].servers[j].active--;
                    eng_lb_changed(p, r->l7, j);
                    eng_req_end(p, r, B_FAILED, cut);
                } else if (r->deadline_s <= end) {
                    p->lbi[r->l7].servers[j].active--;
                    eng_lb_changed(p, r->l7, j);
                    eng_req_end(p, r, B_TIMED_OUT, r->deadline_s);
                } else {
                    eng_fifo_push(&kept, r);
                }
            }
            n->work.q = kept;
            eng_node_q_sync(n);
        }
    }
}

static void census_fifo(const eng_fifo *f, const eng_pool *p, unsigned long *requests,
                        unsigned long *per_pool)
{
    for (const eng_req *r = f->head; r; r = r->next)
        eng_census_add(r, p, requests, per_pool);
}

/* What is still held at the end, counted where it is (balancer queues,
 * node queues, running batches, pipeline queues, client retries), not
 * derived from the counters: the conservation checks compare the two. */
static void census(unsigned long *requests, unsigned long *per_pool)
{
    for (int k = 0; k < eng_world.sc->n_pools; k++) {
        eng_pool *p = &eng_world.pools[k];
        census_fifo(&p->lbq, p, requests, per_pool);
        for (int j = 0; j < p->n_hosts; j++) {
            eng_node *n = &p->nodes[j];
            census_fifo(&n->work.q, p, requests, per_pool);
            serve_census(n, requests, per_pool);
        }
    }
    for (int i = 0; i < eng_world.sc->n_queues; i++)
        census_fifo(&eng_world.queues[i].q, eng_world.queues[i].consumer, requests, per_pool);
    chaos_census(requests, per_pool);
}

static void collect(rp_results *out)
{
    const sc_scenario *sc = eng_world.sc;
    double dur = sc->duration_s;
    if (eng_hook.catch_up)
        eng_hook.catch_up(dur);
    sweep_expired(dur);
    life_account_end(dur);
    sg_host_energy_update_all();
    unsigned long held = 0;
    unsigned long *held_in = calloc((size_t)sc->n_pools, sizeof *held_in);
    census(&held, held_in);
    eng_world.all.in_flight_at_end = held; /* != eng_world.live: a request lost or counted twice */
    eng_world.measured.in_flight_at_end = eng_world.measured.generated - eng_world.measured.completed - eng_world.measured.rejected -
                                  eng_world.measured.failed - eng_world.measured.timed_out;
    out->requests = eng_world.all;
    out->measured = eng_world.measured;
    out->attempts = eng_world.attempts;
    out->attempt_errors = eng_world.attempt_errors;
    fill_latency(&out->latency_s, eng_world.latency);
    unsigned long fin = eng_world.measured.completed + eng_world.measured.rejected + eng_world.measured.failed +
                        eng_world.measured.timed_out;
    out->availability = fin ? (double)eng_world.measured.completed / (double)fin : 1.0;
    out->throughput_qps = dur > sc->warmup_s ? (double)eng_world.measured.completed / (dur - sc->warmup_s) : 0;
    out->n_pools = sc->n_pools;
    out->hybrid = sc->hybrid;
    out->pools = calloc((size_t)sc->n_pools, sizeof *out->pools);
    for (int k = 0; k < sc->n_pools; k++) {
        eng_pool *p = &eng_world.pools[k];
        rp_pool *rp = &out->pools[k];
        rp->name = strdup(p->cfg->name);
        rp->gpus_per_node = p->cfg->gpus_per_node;
        rp->replicas_min = p->replicas_min;
        rp->replicas_max = p->replicas_max;
        double busy = 0, joules = 0, gpu_s = 0, money = 0;
        for (int j = 0; j < p->n_hosts; j++) {
            const eng_node *n = &p->nodes[j];
            busy += n->work.busy_gpu_s;
            gpu_s += n->life.up_total_s * n->gpus;
            money += n->life.up_total_s * n->gpus / 3600.0 * n->power->price_per_gpu_hour;
            joules += sg_host_get_consumed_energy(n->host) + serve_extra_energy_j(n);
        }
        rp->utilization = gpu_s > 0 ? busy / gpu_s : 0;
        rp->gpu_hours = gpu_s / 3600.0;
        rp->energy_kwh = joules / 3.6e6;
        if (sc->hybrid) {
            const sc_pool *pc = p->cfg;
            rp->billing_amortised = pc->billing_amortised;
            rp->zone = strdup(pc->zone ? pc->zone : pc->name);
            if (pc->billing_amortised) /* bought: every slot, the whole run */
                money = (double)pc->max_replicas * pc->gpus_per_node * dur / 3600.0 *
                        pc->power.price_per_gpu_hour;
            rp->cost_compute = money;
            rp->egress_gb = p->egress_bytes / 1e9;
            rp->cost_egress = rp->egress_gb * pc->egress_per_gb;
            rp->failover_in = p->failover_in;
            money += rp->cost_egress;
        }
        rp->cost = money;
        rp->counts = p->counts;
        rp->counts.in_flight_at_end = held_in[k];
        out->gpu_hours += rp->gpu_hours;
        out->energy_kwh += rp->energy_kwh;
        out->cost += rp->cost;
        for (size_t i = 0; i < eng_world.n_intervals; i++) {
            double len = fmin(sc->interval_s, dur - (double)i * sc->interval_s);
            out->samples[i].pools[k].busy_gpus = len > 0 ? p->busy_per_interval[i] / len : 0;
            out->samples[i].pools[k].serving_gpus =
                len > 0 ? p->serving_per_interval[i] / len : 0;
        }
        if (p->node_series && p->n_hosts > 0) {
            rp->nodes = calloc((size_t)p->n_hosts, sizeof *rp->nodes);
            rp->n_nodes = p->n_hosts;
            for (int j = 0; j < p->n_hosts; j++) {
                rp->nodes[j].name = strdup(p->nodes[j].name);
                rp->nodes[j].busy = malloc(sizeof(double) * eng_world.n_intervals);
                for (size_t i = 0; i < eng_world.n_intervals; i++) {
                    double len = fmin(sc->interval_s, dur - (double)i * sc->interval_s);
                    /* a node that never left OFF has no series: no cell */
                    double b = p->nodes[j].work.busy_series ? p->nodes[j].work.busy_series[i] : NAN;
                    rp->nodes[j].busy[i] = isnan(b) || len <= 0 ? b : b / (len * p->nodes[j].gpus);
                }
            }
        }
        serve_collect(p, out);
    }
    if (sc->n_caches > 0) {
        out->caches = calloc((size_t)sc->n_caches, sizeof *out->caches);
        out->n_caches = sc->n_caches;
        for (int i = 0; i < sc->n_caches; i++)
            out->caches[i] = (rp_cache){ .name = strdup(sc->caches[i].name),
                                         .hits = eng_world.caches[i].hits, .misses = eng_world.caches[i].misses };
    }
    if (sc->n_queues > 0) {
        out->queues = calloc((size_t)sc->n_queues, sizeof *out->queues);
        out->n_queues = sc->n_queues;
        for (int i = 0; i < sc->n_queues; i++) {
            eng_queue *q = &eng_world.queues[i];
            out->queues[i] = (rp_queue){ .name = strdup(q->cfg->name),
                                         .consumer = strdup(q->consumer->cfg->name),
                                         .published = q->published, .delivered = q->delivered,
                                         .refused = q->refused, .processed = q->processed,
                                         .lost = q->lost, .redelivered = q->redelivered,
                                         .backlog_max = q->max_backlog,
                                         .backlog_at_end = q->q.len };
            fill_latency(&out->queues[i].lag_s, q->lag);
            out->queues[i].backlog = malloc(sizeof(double) * eng_world.n_intervals);
            memcpy(out->queues[i].backlog, q->backlog_per_interval, sizeof(double) * eng_world.n_intervals);
        }
    }
    if (eng_world.l4) {
        out->balancers = calloc((size_t)eng_world.n_l7, sizeof *out->balancers);
        out->n_balancers = eng_world.n_l7;
        for (int i = 0; i < eng_world.n_l7; i++)
            out->balancers[i] = (rp_balancer){ .name = strdup(eng_world.l7[i].cfg->name),
                                               .routed = eng_world.l7[i].routed,
                                               .refused = eng_world.l7[i].refused,
                                               .cut = eng_world.l7[i].cut };
    }
    free(held_in);
    out->n_classes = sc->n_traffic;
    out->classes = calloc((size_t)sc->n_traffic, sizeof *out->classes);
    for (int c = 0; c < sc->n_traffic; c++) {
        eng_class *tc = &eng_world.classes[c];
        rp_class *rc = &out->classes[c];
        rc->name = strdup(tc->cfg->name);
        rc->pool = strdup(tc->pool->cfg->name);
        rc->pipeline = tc->pipe->implicit ? NULL : strdup(tc->pipe->name);
        rc->profile_period_s = sim_rate_period(tc->rate);
        rc->counts = tc->measured;
        rc->counts.in_flight_at_end = tc->measured.generated - tc->measured.completed -
                                      tc->measured.rejected - tc->measured.failed -
                                      tc->measured.timed_out;
        fill_latency(&rc->latency_s, tc->latency);
    }
    for (size_t i = 0; i < eng_world.n_intervals; i++) {
        out->samples[i].completed = eng_world.done[B_COMPLETED][i];
        out->samples[i].rejected = eng_world.done[B_REJECTED][i];
        out->samples[i].failed = eng_world.done[B_FAILED][i];
        out->samples[i].timed_out = eng_world.done[B_TIMED_OUT][i];
    }
}

static void teardown(void)
{
    for (int k = 0; k < eng_world.sc->n_pools; k++) {
        eng_pool *p = &eng_world.pools[k];
        for (int j = 0; j < p->n_hosts; j++) {
            eng_node *n = &p->nodes[j];
            if (n->rng)
                gsl_rng_free(n->rng);
            serve_free_node(n);
            free(n->work.busy_series);
        }
        for (int i = 0; i < eng_world.n_l7; i++) {
            lb_destroy(p->lbi[i].balancer);
            free(p->lbi[i].servers);
            free(p->lbi[i].healthy);
            free(p->lbi[i].sat);
            if (i > 0)
                gsl_rng_free(p->lbi[i].rng);
        }
        free(p->lbi);
        gsl_rng_free(p->lb_rng);
        gsl_rng_free(p->fault_rng);
        free(p->nodes);
        free(p->hc_silent);
        free(p->dw_ring);
        free(p->base_weight);
        free(p->busy_per_interval);
        free(p->serving_per_interval);
        serve_free_pool(p);
    }
    for (int c = 0; c < eng_world.sc->n_traffic; c++) {
        gsl_rng_free(eng_world.classes[c].rng);
        if (eng_world.classes[c].tok_rng)
            gsl_rng_free(eng_world.classes[c].tok_rng);
        sim_rate_free(eng_world.classes[c].rate);
        sim_hist_free(eng_world.classes[c].latency);
        eng_class *tc = &eng_world.classes[c];
        if (tc->fo_rng)
            gsl_rng_free(tc->fo_rng);
        free(tc->fo_hosts);
        free(tc->fo_healthy);
        free(tc->fo_load);
        free(tc->fo_levels);
    }
    chaos_free();
    pipe_free();
    tier_free();
    scale_free();
    obs_free();
    acc_free();
    for (size_t i = 0; i < eng_world.n_blocks; i++)
        free(eng_world.blocks[i]);
    free(eng_world.blocks);
    free(eng_world.pools);
    free(eng_world.classes);
    free(eng_world.offered);
    for (int b = 0; b < 4; b++)
        free(eng_world.done[b]);
    sim_hist_free(eng_world.latency);
    sim_hist_free(eng_world.interval_latency);
}

#define STOP_CHECKS 1000 /* stop requests are heard this often in a run */
static volatile sig_atomic_t stop_requested;

void sim_request_stop(void)
{
    stop_requested = 1;
}

static void on_sigint(int sig)
{
    (void)sig;
    sim_request_stop();
}

/* Hears a stop request (a check every 1/STOP_CHECKS of the run, an odd
 * fraction so that its wake-ups do not meet round event times) and ends the
 * run there: every other actor is killed, so simgrid_run_until() returns. */
static void stop_watch(int argc, char *argv[])
{
    (void)argc;
    (void)argv;
    double period = eng_world.sc->duration_s / STOP_CHECKS * (1 + 1.4142135623730951e-6);
    for (double t = period; t < eng_world.sc->duration_s; t += period) {
        sg_actor_sleep_until(t);
        if (stop_requested) {
            eng_world.stopped_at_s = simgrid_get_clock();
            sg_actor_kill_all();
            return;
        }
    }
}

/* The upper layers' subscribers to the lower layers' hooks (model/hooks.h),
 * in the order they are called. */
static void register_hooks(const sc_scenario *sc)
{
    eng_hooks_clear();
    ENG_HOOK_ADD(arrival, chaos_on_arrival);
    ENG_HOOK_ADD(request_end, obs_request_end);
    ENG_HOOK_ADD(request_end, acc_request_end);
    ENG_HOOK_ADD(fault, acc_fault_recorded);
    ENG_HOOK_ADD(llm_lost, acc_llm_lost);
    ENG_HOOK_ADD(kv_handoff, acc_kv_handoff);
    ENG_HOOK_ADD(llm_first_token, obs_llm_first_token);
    ENG_HOOK_ADD(llm_tokens, obs_llm_tokens);
    ENG_HOOK_ADD(llm_finished, obs_llm_finished);
    ENG_HOOK_ADD(llm_first_token, scale_llm_first_token);
    ENG_HOOK_ADD(llm_tokens, scale_llm_tokens);
    ENG_HOOK_ADD(llm_finished, scale_llm_finished);
    eng_hook.client_retry = chaos_client_retry;
    eng_hook.clients_wake = chaos_clients_wake;
    eng_hook.cold_start_wait = scale_buffer;
    if (sc->simulation.fast)
        eng_hook.catch_up = serve_batch_fast_catch_up;
}

/* Mappings left for everything but actor stacks: libraries, heap arenas,
 * SimGrid's own. */
#define RUN_MAPS_RESERVE 10000

/* An upper bound on the actors a run starts: one per GPU slot of every pool
 * (the batch server's workers), plus one per pool and traffic class and a
 * few for the control loops. */
static long run_actors_bound(const sc_scenario *sc)
{
    long n = 64;
    for (int k = 0; k < sc->n_pools; k++) {
        const sc_pool *pc = &sc->pools[k];
        int gpus = pc->gpus_per_node > pc->node_gpus ? pc->gpus_per_node : pc->node_gpus;
        n += (long)eng_pool_slots(pc, NULL) * (gpus > 1 ? gpus : 1) + 4;
    }
    return n + sc->n_traffic;
}

int sim_unguarded_stacks(const sc_scenario *sc, long max_map_count)
{
    return run_actors_bound(sc) * 2 + RUN_MAPS_RESERVE > max_map_count;
}

/* Linux's per-process limit on mappings; its default where unreadable. */
static long run_max_map_count(void)
{
    long v = 65530;
    FILE *f = fopen("/proc/sys/vm/max_map_count", "r");
    if (f) {
        if (fscanf(f, "%ld", &v) != 1)
            v = 65530;
        fclose(f);
    }
    return v;
}

int sim_run(const sc_scenario *sc, const sim_options *opt, rp_results *out)
{
    memset(&eng_world, 0, sizeof eng_world);
    eng_world.stopped_at_s = -1;
    stop_requested = 0;
    register_hooks(sc);
    eng_world.wall0 = mono_s();
    eng_world.sc = sc;
    eng_world.out = out;
    eng_world.progress = opt && opt->progress;
    obs_set_options(opt);
    if (opt && opt->trace_steps_path) {
        eng_world.trace_steps = fopen(opt->trace_steps_path, "w");
        if (!eng_world.trace_steps) {
            fprintf(stderr, "fleetsim: cannot write %s: %s\n", opt->trace_steps_path,
                    strerror(errno));
            return -1;
        }
        fputs("time_s,pool,node,replica,step,duration_s,prefill_tokens,decode_requests,"
              "context_tokens,running,waiting,kv_blocks_used\n",
              eng_world.trace_steps);
    }
    eng_world.n_intervals = (size_t)ceil(sc->duration_s / sc->interval_s);
    if (eng_world.n_intervals == 0)
        eng_world.n_intervals = 1;
    eng_world.offered = calloc(eng_world.n_intervals, sizeof *eng_world.offered);
    for (int b = 0; b < 4; b++)
        eng_world.done[b] = calloc(eng_world.n_intervals, sizeof(unsigned long));
    eng_world.latency = sim_hist_new(HIST_MIN_S, HIST_MAX_S, HIST_REL_ERR);
    eng_world.interval_latency = sim_hist_new(HIST_MIN_S, HIST_MAX_S, HIST_REL_ERR);

    memset(out, 0, sizeof *out);
    out->scenario = strdup(sc->name);
    out->seed = sc->seed;
    out->sim_time_s = sc->duration_s;
    out->warmup_s = sc->warmup_s;
    out->fast_quantum_s = sc->simulation.fast ? sc->simulation.arrival_quantum_s : 0;
    out->interval_s = sc->interval_s;
    out->slo_latency_p99_s = sc->slo.latency_p99_s;
    out->slo_availability = sc->slo.availability;
    out->slo_ttft_p99_s = sc->slo.ttft_p99_s;
    out->slo_tpot_p99_s = sc->slo.tpot_p99_s;
    out->slo_e2e_p99_s = sc->slo.e2e_p99_s;
    out->slo_goodput = sc->slo.goodput;
    out->n_samples = eng_world.n_intervals;
    out->samples = calloc(eng_world.n_intervals, sizeof *out->samples);
    for (size_t i = 0; i < eng_world.n_intervals; i++)
        out->samples[i].pools = calloc((size_t)sc->n_pools, sizeof(rp_pool_sample));

    /* SimGrid's raw contexts are its fastest; AddressSanitizer only follows
     * ucontext stack switches, so sanitizer builds use those. */
#ifdef FLEETSIM_SANITIZE
    char *args[] = { "fleetsim", "--log=root.thres:critical", "--cfg=contexts/factory:ucontext", NULL };
#else
    char *args[] = { "fleetsim", "--log=root.thres:critical", "--cfg=contexts/factory:raw", NULL };
#endif
    int argc = 3;
    /* KV transfers (disaggregated pools) are SimGrid communications: timed
     * as latency + size / bandwidth, bandwidth shared max-min between the
     * transfers on a link (CM02 without TCP's window, slow start or
     * cross-traffic: RDMA-like transfers, as NIXL's). Other runs use no
     * communications and keep SimGrid's defaults. */
    char *net_args[] = { args[0], args[1], args[2], "--cfg=network/model:CM02",
                         "--cfg=network/TCP-gamma:0", "--cfg=network/crosstraffic:0", NULL };
    char **init_args = args;
    for (int k = 0; k < sc->n_pools; k++)
        if (sc->pools[k].role == SC_ROLE_PREFILL) {
            init_args = net_args;
            argc = 6;
        }
    /* Each actor's stack is a mapping and its guard page (contexts/guard-size,
     * in pages) another that keeps neighbouring stacks from merging: a fleet
     * of 80,000 GPUs passes Linux's vm.max_map_count (65,530 by default) and
     * SimGrid aborts. Without guards the stacks merge; a guard only catches
     * a stack overflow, so results are the same either way, and runs that
     * fit keep them. (SimGrid 3.32, src/kernel/context/ContextSwapped.cpp.) */
    char *unguarded[8];
    if (sim_unguarded_stacks(sc, run_max_map_count())) {
        for (int k = 0; k < argc; k++)
            unguarded[k] = init_args[k];
        unguarded[argc++] = "--cfg=contexts/guard-size:0";
        unguarded[argc] = NULL;
        init_args = unguarded;
    }
    simgrid_init(&argc, init_args);
    if (opt && opt->stop_on_sigint) {
        /* after simgrid_init, whose own SIGINT handler exits at once; a
         * second SIGINT finds the default action and ends the process */
        struct sigaction sa = { .sa_handler = on_sigint, .sa_flags = SA_RESETHAND };
        sigemptyset(&sa.sa_mask);
        sigaction(SIGINT, &sa, NULL);
    }
    sg_host_energy_plugin_init();
    char plat[] = "/tmp/fleetsim-platform-XXXXXX";
    int fd = mkstemp(plat);
    if (fd < 0 || (close(fd), write_platform(plat)) != 0) {
        perror("fleetsim: platform file");
        return -1;
    }
    simgrid_load_platform(plat);
    unlink(plat);

    eng_event(0, "run_start", sc->name, NULL);
    acc_init();
    if (build() != 0) {
        teardown();
        if (eng_world.trace_steps)
            fclose(eng_world.trace_steps);
        return -1;
    }
    simgrid_run_until(sc->duration_s);
    sc_scenario cut;
    if (eng_world.stopped_at_s >= 0) {
        /* the results of a run as long as what was simulated */
        if (eng_hook.catch_up)
            eng_hook.catch_up(eng_world.stopped_at_s);
        cut = *sc;
        cut.duration_s = eng_world.stopped_at_s;
        eng_world.sc = &cut;
        size_t closed = eng_world.n_closed;
        eng_world.n_intervals = (size_t)ceil(cut.duration_s / sc->interval_s);
        if (eng_world.n_intervals == 0)
            eng_world.n_intervals = 1;
        for (size_t i = closed; i < eng_world.n_intervals; i++) {
            close_interval(i);
            pipe_close_interval(i);
        }
        /* the intervals never reached are dropped with what they hold */
        for (size_t i = eng_world.n_intervals; i < out->n_samples; i++)
            free(out->samples[i].pools);
        out->n_samples = eng_world.n_intervals;
        out->sim_time_s = cut.duration_s;
        out->interrupted = 1;
        if (eng_world.progress)
            fputc('\n', stderr);
    }
    collect(out);
    acc_finish(out);
    eng_event(eng_world.sc->duration_s, out->interrupted ? "run_interrupted" : "run_end", sc->name,
              NULL);
    out->wall_time_s = wall_now();
    /* like wall_time_s a measure of the machine, not of the model: the
     * peak so far, the platform and the world included (Linux gives
     * ru_maxrss in KiB) */
    struct rusage ru;
    if (getrusage(RUSAGE_SELF, &ru) == 0)
        out->peak_rss_mb = (double)ru.ru_maxrss / 1024.0;
    /* actors still blocked hold the semaphores: end them, then let the
     * engine reap them, before anything is freed */
    sg_actor_kill_all();
    simgrid_run();
    teardown();
    if (eng_world.trace_steps) {
        int bad = ferror(eng_world.trace_steps);
        if (fclose(eng_world.trace_steps) != 0 || bad) {
            fprintf(stderr, "fleetsim: cannot write %s\n", opt->trace_steps_path);
            return -1;
        }
    }
    return 0;
}
