/*
 * batch_fast.c - fast mode's batch server: the batches of batch.c (the
 * same dynamic batching, the same service-time draws, the same answers),
 * run as fleetsim's own events rather than SimGrid activities. A GPU is a
 * small state machine (idle, forming a batch, running one, gone); the end
 * of a running batch and the end of a batching window are timers in one
 * heap for every node of every fast batch pool. Events are handled in time
 * order, each at its own time, by whichever actor first needs the world
 * past them: the front end and routing, a balancer queue's drain, a node's
 * change of state, a fault, an interval's close, a scrape, an autoscaler
 * and dynamic weights catch up to their instant (eng_hook.catch_up). A
 * batch's end that may set off another actor (a client's resend, a
 * pipeline's next stage, a drained node's switch-off) or must come before
 * a change no fleetsim actor makes (a speed profile) must not wait for the
 * next reader: then one clock actor catches up at the end of each arrival
 * quantum that holds a timer, so what a batch's end sets off is at most
 * one quantum late. Otherwise the clock sleeps: the readers' catch-ups
 * see every event at its own time, and a run costs one SimGrid wake-up per
 * arrival quantum rather than two.
 *
 * What it trades against batch.c (scenarios/README.md, "simulation"): a
 * batch's duration is fixed when it starts, from the host's speed then
 * (a slowdown or a speed profile changing mid-batch does not stretch it),
 * and its energy is added here, from the same Idle:Epsilon:AllCores model
 * SimGrid's energy plugin applies (src/plugins/host_energy.cpp), at the
 * host's power state when the node's load last changed. A crash or a drain
 * reaches it through serve_ops as it reaches batch.c.
 */
#include "batch.h"
#include "control.h"
#include "flow.h"
#include "serve.h"

#include <simgrid/actor.h>
#include <simgrid/engine.h>
#include <simgrid/host.h>
#include <simgrid/semaphore.h>

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

enum { G_GONE, G_IDLE, G_READY, G_FORMING, G_RUNNING, G_BUSY };

typedef struct fgpu fgpu;
struct fgpu {
    eng_node *node;
    eng_req **batch;    /* batch_max_size slots */
    int batch_n;        /* requests in the running batch */
    int state;
    unsigned timer_gen; /* its live timer's generation: older ones are stale */
    double due_s;       /* its timer: the batch's end or the window's end */
    double run_t0_s;    /* start of the running batch, or -1 */
    double load;        /* the running batch's share of the host's load */
    uint32_t seq;       /* its number in F.gpu: equal timers go in this order */
    int in_ready;       /* on the ready list */
    fgpu *next_ready;
};

typedef struct {
    fgpu *gpus;
    int *idle;          /* ring of idle GPUs, the longest idle first */
    int idle_head, idle_n;
    fgpu *forming;      /* the GPU holding a batch open, or NULL */
    double load;        /* sum of the running batches' loads */
    double load_t_s;    /* since when */
    double extra_j;     /* energy of the batches beyond the idle host's */
} fnode;

/* a timer in the heap: its key (due_s, then the GPU's number) and the
 * generation it was set in; 16 bytes, four to a cache line */
typedef struct {
    double due_s;
    uint32_t gpu;
    unsigned gen;
} ftimer;

#define HEAP_D 4   /* children per heap entry: 4 x 16 bytes, one cache line */
#define HEAP_PAD 3 /* entries before the root, so that 4i+1..4i+4 share a line */

static struct {
    ftimer *heap;           /* heap_mem + HEAP_PAD */
    ftimer *heap_mem;       /* 64-byte aligned */
    size_t heap_n, heap_cap;
    fgpu **gpu;             /* every GPU of every fast pool's slots, by seq */
    fgpu *ready, *ready_tail; /* GPUs to step at the current instant */
    int in_loop;
    double now_s;           /* the instant being handled, while in_loop */
    uint32_t seq, gpu_cap;  /* GPUs numbered so far, F.gpu's room */
    int pools;
    sg_sem_t wake;          /* the clock actor sleeps on it */
    double waiting_until;   /* the instant the clock actor waits for; -INF when it runs */
    int clock_always;       /* batch ends may set off other actors at any time */
} F;

/* Whether the clock must hear of the batches' ends within a quantum: some
 * actor may be set off by one (F.clock_always, or a node draining: its
 * switch-off waits for its GPUs). */
static int clock_needed(void)
{
    if (F.clock_always)
        return 1;
    for (int k = 0; k < eng_world.sc->n_pools; k++)
        if (eng_world.pools[k].n_draining > 0)
            return 1;
    return 0;
}

/* At the run's start: a batch's end may set off a client's resend (a retry
 * storm), a pipeline's next stage or a queue's delivery (which may be
 * another server's, or the SimGrid actors of an LLM pool), and SimGrid
 * changes a speed profile's host with no fleetsim actor to catch up first. */
static int clock_always(void)
{
    const sc_scenario *sc = eng_world.sc;
    if (eng_world.queues)
        return 1;
    for (int c = 0; c < sc->n_traffic; c++)
        if (eng_world.classes[c].pipe->n_stages > 1)
            return 1;
    for (int f = 0; f < sc->n_faults; f++)
        if (sc->faults[f].kind == SC_FAULT_RETRY_STORM || sc->faults[f].kind == SC_FAULT_SPEED_PROFILE)
            return 1;
    return 0;
}

/* The clock sleeps past the quantum of a timer due at due_s that it must
 * hear of: wake it once. */
static void clock_rearm(double due_s)
{
    if (eng_quantum_end(due_s) < F.waiting_until && clock_needed()) {
        F.waiting_until = -INFINITY;
        sg_sem_release(F.wake);
    }
}

static fnode *fn_of(const eng_node *n) { return n->work.serve; }

/* ---------- the timer heap: (due_s, GPU number), least first ----------
 * A 4-ary heap whose entries carry their key, so sifting touches the
 * heap's array only, one cache line of children per level; a cancelled
 * timer stays in the heap, stale (its gen is not its GPU's timer_gen),
 * and is dropped when it reaches the top. A GPU has one live timer at
 * most, so live keys are distinct and any heap pops them in one order. */

static int before(const ftimer *a, const ftimer *b)
{
    return a->due_s < b->due_s || (a->due_s == b->due_s && a->gpu < b->gpu);
}

static void sift_up(size_t i)
{
    ftimer t = F.heap[i];
    while (i > 0) {
        size_t up = (i - 1) / HEAP_D;
        if (!before(&t, &F.heap[up]))
            break;
        F.heap[i] = F.heap[up];
        i = up;
    }
    F.heap[i] = t;
}

static void sift_down(size_t i)
{
    ftimer t = F.heap[i];
    for (;;) {
        size_t first = HEAP_D * i + 1, c = first;
        if (first >= F.heap_n)
            break;
        size_t end = first + HEAP_D < F.heap_n ? first + HEAP_D : F.heap_n;
        for (size_t k = first + 1; k < end; k++)
            if (before(&F.heap[k], &F.heap[c]))
                c = k;
        if (!before(&F.heap[c], &t))
            break;
        F.heap[i] = F.heap[c];
        i = c;
    }
    F.heap[i] = t;
}

static void heap_pop(void)
{
    F.heap[0] = F.heap[--F.heap_n];
    if (F.heap_n > 0)
        sift_down(0);
}

/* The top timer, stale ones dropped; NULL when there is none. */
static const ftimer *heap_top(void)
{
    while (F.heap_n > 0 && F.heap[0].gen != F.gpu[F.heap[0].gpu]->timer_gen)
        heap_pop();
    return F.heap_n > 0 ? &F.heap[0] : NULL;
}

static void timer_cancel(fgpu *g) { g->timer_gen++; }

static void timer_set(fgpu *g, double due_s)
{
    if (F.heap_n == F.heap_cap) {
        size_t cap = F.heap_cap ? 2 * F.heap_cap : 1024;
        ftimer *mem = aligned_alloc(64, (cap + HEAP_PAD + 1) * sizeof *mem);
        if (F.heap_n > 0)
            memcpy(mem + HEAP_PAD, F.heap, F.heap_n * sizeof *mem);
        free(F.heap_mem);
        F.heap_mem = mem;
        F.heap = mem + HEAP_PAD;
        F.heap_cap = cap;
    }
    g->due_s = due_s;
    F.heap[F.heap_n++] = (ftimer){ due_s, g->seq, g->timer_gen };
    sift_up(F.heap_n - 1);
    clock_rearm(due_s);
}

/* ---------- the node's load and its energy ---------- */

/* Watts above the idle host at load (the running batches' loads, GPUs),
 * SimGrid's model at the host's power state: epsilon + load / cores *
 * (all cores - epsilon) when loaded, idle when not; the values run.c
 * writes into the platform's wattage_per_state. */
static double extra_w(const eng_node *n, double load)
{
    if (load <= 0)
        return 0;
    const sc_power *pw = n->power;
    double f_speed = 1.0 - (double)n->pstate / ENG_PSTATES;
    double busy = pw->idle_w_per_gpu + (pw->busy_w_per_gpu - pw->idle_w_per_gpu) * f_speed;
    double idle = n->gpus * pw->idle_w_per_gpu, eps = idle + (busy - pw->idle_w_per_gpu);
    return eps - idle + load / n->gpus * (n->gpus * busy - eps);
}

static void load_add(eng_node *n, double d, double now)
{
    fnode *fn = fn_of(n);
    fn->extra_j += (now - fn->load_t_s) * extra_w(n, fn->load);
    fn->load += d;
    if (fn->load < 1e-12)
        fn->load = 0;
    fn->load_t_s = now;
}

/* ---------- stepping a GPU ---------- */

static void idle_push(fnode *fn, fgpu *g, int gpus)
{
    g->state = G_IDLE;
    fn->idle[(fn->idle_head + fn->idle_n++) % gpus] = (int)(g - fn->gpus);
}

static void run_ready(double now);

/* g steps at now: at once when nothing is being handled, else after the
 * step in hand (as a woken actor runs after the one that woke it) */
static void kick(fgpu *g, double now)
{
    g->state = G_READY;
    if (g->in_ready)
        return;
    g->in_ready = 1;
    g->next_ready = NULL;
    if (F.ready_tail)
        F.ready_tail->next_ready = g;
    else
        F.ready = g;
    F.ready_tail = g;
    if (!F.in_loop) {
        F.in_loop = 1;
        F.now_s = now;
        run_ready(now);
        F.in_loop = 0;
    }
}

/* the longest idle GPU of the node, if any, steps */
static void wake_one(eng_node *n, double now)
{
    fnode *fn = fn_of(n);
    if (fn->idle_n == 0)
        return;
    fgpu *g = &fn->gpus[fn->idle[fn->idle_head]];
    fn->idle_head = (fn->idle_head + 1) % n->gpus;
    fn->idle_n--;
    kick(g, now);
}

/* batch.c's gpu_worker loop from its top, until the GPU waits (idle, a
 * batching window, a running batch) or leaves */
static void gpu_step(fgpu *g, double now, int window_over)
{
    eng_node *n = g->node;
    fnode *fn = fn_of(n);
    eng_pool *p = n->pool;
    const sc_model *m = p->model;
    int max = m->batch_max_size;
    g->state = G_BUSY;
    for (;;) {
        if (!window_over) {
            if (n->life.state == NODE_DRAINING && n->work.q.len == 0) {
                g->state = G_GONE;
                while (fn->idle_n > 0) /* the others leave too */
                    wake_one(n, now);
                life_worker_exited(n);
                return;
            }
            if (n->work.q.len == 0 || fn->forming) {
                idle_push(fn, g, n->gpus);
                return;
            }
            if (max > 1 && m->batch_max_wait_s > 0 && n->life.state == NODE_READY) {
                double wait_s = serve_batch_wait_s(&n->work.q, max, m->batch_max_wait_s, now);
                if (wait_s > 0) {
                    fn->forming = g;
                    g->state = G_FORMING;
                    timer_set(g, now + wait_s);
                    return;
                }
            }
        }
        window_over = 0;
        double work;
        int b = serve_batch_take(n, g->batch, now, &work);
        if (n->work.q.len > 0 && !fn->forming)
            wake_one(n, now);
        if (b == 0) {
            eng_drain_balancer_queue(p, now);
            continue;
        }
        if (n->fault.gpu_error) {
            serve_batch_answer_500(n, g->batch, b, now);
            continue;
        }
        double service_s = sc_model_mean_s(m, b) * (work / b) * eng_draw_unit(&m->noise, eng_node_rng(n));
        /* batch.c's execution of service_s * ENG_FLOPS_PER_S flops on one
         * core, at the core's speed and the host's available share now */
        double share = n->speed_profiled ? sg_host_get_available_speed(n->host) : 1.0;
        double speed = n->speed_flops * share;
        g->batch_n = b;
        g->run_t0_s = now;
        g->load = share;
        load_add(n, share, now);
        g->state = G_RUNNING;
        timer_set(g, now + service_s * ENG_FLOPS_PER_S / speed);
        return;
    }
}

/* g's timer fired at now */
static void fire(fgpu *g, double now)
{
    eng_node *n = g->node;
    if (g->state == G_FORMING) { /* the window is over: take what is there */
        fn_of(n)->forming = NULL;
        gpu_step(g, now, 1);
        return;
    }
    eng_pool *p = n->pool;
    int b = g->batch_n;
    for (int i = 0; i < b; i++) /* their records were last touched at their arrival */
        __builtin_prefetch(g->batch[i]);
    double t0 = g->run_t0_s;
    g->state = G_BUSY;
    g->batch_n = 0;
    g->run_t0_s = -1;
    load_add(n, -g->load, now);
    eng_account_busy(p, n, t0, now);
    for (int i = 0; i < b; i++)
        eng_req_served(p, n, g->batch[i], now);
    eng_drain_balancer_queue(p, now);
    gpu_step(g, now, 0);
}

static void run_ready(double now)
{
    while (F.ready) {
        fgpu *g = F.ready;
        F.ready = g->next_ready;
        if (!F.ready)
            F.ready_tail = NULL;
        g->in_ready = 0;
        if (g->state == G_READY)
            gpu_step(g, now, 0);
    }
}

/* Handles every timer due by now, in time order, each at its own time. */
void serve_batch_fast_catch_up(double now)
{
    const ftimer *top;
    if (F.in_loop || F.heap_n == 0 || F.heap[0].due_s > now || !(top = heap_top()) ||
        top->due_s > now)
        return;
    if (now >= eng_world.sc->duration_s) /* the results' catch-up, outside any actor */
        F.waiting_until = -INFINITY;
    F.in_loop = 1;
    while ((top = heap_top()) && top->due_s <= now) {
        fgpu *g = F.gpu[top->gpu];
        double t = top->due_s;
        F.now_s = t;
        heap_pop();
        timer_cancel(g);
        fire(g, t);
        run_ready(t);
    }
    F.in_loop = 0;
}

/* The instant the server's events are at: the event in hand, else the clock
 * after catching up to it. */
static double now_caught_up(void)
{
    if (F.in_loop)
        return F.now_s;
    double now = simgrid_get_clock();
    serve_batch_fast_catch_up(now);
    return now;
}

/* One actor for the whole fleet: sleeps until the end of the quantum of the
 * next timer (or until a timer due sooner is set), then catches up; while
 * no actor can be set off by a batch's end, until woken. */
static void clock_actor(int argc, char *argv[])
{
    (void)argc;
    (void)argv;
    F.clock_always = clock_always();
    for (;;) {
        double now = simgrid_get_clock();
        serve_batch_fast_catch_up(now);
        const ftimer *top = heap_top();
        double until = top && clock_needed() ? eng_quantum_end(top->due_s) : INFINITY;
        if (until <= now)
            until = INFINITY; /* due after the run's end */
        F.waiting_until = until;
        if (isinf(until))
            sg_sem_acquire(F.wake);
        else
            sg_sem_acquire_timeout(F.wake, until - now);
        F.waiting_until = -INFINITY;
    }
}

/* ---------- serve_ops ---------- */

static void init_pool(eng_pool *p)
{
    (void)p;
    if (F.pools++ > 0)
        return;
    F.waiting_until = -INFINITY;
    F.wake = sg_sem_init(0);
    sg_actor_t a = sg_actor_init("batch-clock", eng_world.balancer_host);
    sg_actor_start(a, clock_actor, 0, NULL);
}

static void free_pool(eng_pool *p)
{
    (void)p;
    if (--F.pools > 0)
        return;
    sg_sem_destroy(F.wake);
    free(F.heap_mem);
    free(F.gpu);
    memset(&F, 0, sizeof F); /* a later run starts as the first did */
}

static void init_node(eng_node *n)
{
    /* the node, its GPUs and its idle ring in one block: a request reads
     * all three */
    fnode *fn = calloc(1, sizeof *fn + (size_t)n->gpus * (sizeof(fgpu) + sizeof(int)));
    fn->gpus = (fgpu *)(fn + 1);
    fn->idle = (int *)(fn->gpus + n->gpus);
    if (F.seq + (uint32_t)n->gpus > F.gpu_cap) {
        while (F.seq + (uint32_t)n->gpus > F.gpu_cap)
            F.gpu_cap = F.gpu_cap ? 2 * F.gpu_cap : 1024;
        F.gpu = realloc(F.gpu, F.gpu_cap * sizeof *F.gpu);
    }
    for (int g = 0; g < n->gpus; g++) {
        fgpu *x = &fn->gpus[g];
        x->node = n;
        x->run_t0_s = -1;
        x->seq = F.seq;
        F.gpu[F.seq++] = x;
    }
    n->work.serve = fn;
}

static void free_node(eng_node *n)
{
    fnode *fn = fn_of(n);
    if (!fn)
        return;
    for (int g = 0; g < n->gpus; g++)
        free(fn->gpus[g].batch);
    free(fn);
    n->work.serve = NULL;
}

static void accepted(eng_node *n)
{
    fnode *fn = fn_of(n);
    double now = now_caught_up();
    if (fn->forming) {
        if (n->work.q.len >= n->pool->model->batch_max_size) {
            fgpu *g = fn->forming;
            fn->forming = NULL;
            timer_cancel(g);
            kick(g, now);
        }
    } else {
        wake_one(n, now);
    }
}

/* Every GPU idle now steps once, as batch.c's wake_idle counts its idle
 * workers first: a woken GPU may go idle again (another holds a batch
 * open while requests wait), and waking it again would never end. */
static void wake_idle(eng_node *n)
{
    double now = now_caught_up();
    fnode *fn = fn_of(n);
    for (int k = fn->idle_n; k > 0 && fn->idle_n > 0; k--)
        wake_one(n, now);
    const ftimer *top;
    if (n->life.state == NODE_DRAINING && (top = heap_top())) /* it now waits for its GPUs */
        clock_rearm(top->due_s);
}

/* Every GPU idle, stepping in order, as batch.c's workers start. */
static void start(eng_node *n)
{
    fnode *fn = fn_of(n);
    double now = now_caught_up();
    fn->idle_n = fn->idle_head = 0;
    fn->forming = NULL;
    fn->load = 0;
    fn->load_t_s = now;
    n->work.workers_alive = n->gpus;
    for (int g = 0; g < n->gpus; g++) {
        fgpu *x = &fn->gpus[g];
        if (!x->batch) /* at the node's first start: a pool's spare slots hold none */
            x->batch = malloc(sizeof(eng_req *) * (size_t)n->pool->model->batch_max_size);
        kick(x, now);
    }
}

static void fail_running(eng_node *n, double now)
{
    serve_batch_fast_catch_up(now); /* batches that ended by now answered first */
    fnode *fn = fn_of(n);
    for (int g = 0; g < n->gpus; g++) {
        fgpu *x = &fn->gpus[g];
        timer_cancel(x);
        if (x->run_t0_s >= 0) {
            eng_account_busy(n->pool, n, x->run_t0_s, now);
            load_add(n, -x->load, now);
        }
        int b = x->batch_n;
        x->batch_n = 0;
        x->run_t0_s = -1;
        x->state = G_GONE;
        serve_batch_fail(n, x->batch, b, now);
    }
    fn->forming = NULL;
}

static void reset(eng_node *n)
{
    fnode *fn = fn_of(n);
    for (int g = 0; g < n->gpus; g++) {
        timer_cancel(&fn->gpus[g]);
        fn->gpus[g].state = G_GONE;
    }
    fn->idle_n = fn->idle_head = 0;
    fn->forming = NULL;
}

static double busy_s(const eng_node *n, double now)
{
    const fnode *fn = fn_of(n);
    double b = n->work.busy_gpu_s;
    for (int g = 0; g < n->gpus; g++)
        if (fn->gpus[g].run_t0_s >= 0)
            b += fmin(now, fn->gpus[g].due_s) - fn->gpus[g].run_t0_s;
    return b;
}

static void account_end(eng_node *n, double end_s)
{
    fnode *fn = fn_of(n);
    for (int g = 0; g < n->gpus; g++)
        if (fn->gpus[g].run_t0_s >= 0) /* batches still running count up to the end */
            eng_account_busy(n->pool, n, fn->gpus[g].run_t0_s, end_s);
    load_add(n, 0, end_s); /* their energy up to the end */
}

static double extra_energy_j(const eng_node *n) { return fn_of(n)->extra_j; }

static int running(const eng_node *n, int gpu) { return fn_of(n)->gpus[gpu].batch_n; }

static void census(const eng_node *n, unsigned long *requests, unsigned long *per_pool)
{
    const fnode *fn = fn_of(n);
    for (int g = 0; g < n->gpus; g++)
        for (int i = 0; i < fn->gpus[g].batch_n; i++)
            eng_census_add(fn->gpus[g].batch[i], n->pool, requests, per_pool);
}

const serve_ops serve_batch_fast = {
    .name = "batch",
    .init_node = init_node,
    .free_node = free_node,
    .start = start,
    .accepted = accepted,
    .wake_idle = wake_idle,
    .fail_running = fail_running,
    .reset = reset,
    .busy_s = busy_s,
    .account_end = account_end,
    .running = running,
    .census = census,
    .init_pool = init_pool,
    .free_pool = free_pool,
    .extra_energy_j = extra_energy_j,
};
