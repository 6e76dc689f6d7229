/*
 * batch.c - the batch server: each GPU of a node is a worker that takes a
 * dynamic batch of whole requests from the node's queue (up to the model's
 * batch.max_size, waiting up to batch.max_wait for more, one batcher at a
 * time as in Triton's dynamic batcher), runs it for the model's service
 * time of that batch, and answers every request of it at the end.
 */
#include "control.h"
#include "batch.h"
#include "serve.h"

#include <simgrid/actor.h>
#include <simgrid/engine.h>
#include <simgrid/exec.h>
#include <simgrid/semaphore.h>

#include <stdlib.h>

typedef struct batch_node batch_node;

typedef struct {
    eng_node *node;
    batch_node *bn;
    eng_req **batch;       /* batch_max_size slots */
    int batch_n;           /* requests in the running batch */
    double run_t0_s;       /* start of the running batch, or -1 */
} batch_worker;

struct batch_node {
    batch_worker *workers; /* one per GPU */
    int idle_workers;
    int forming;           /* a worker is holding a partial batch open */
    sg_sem_t wake;         /* idle workers wait here */
    sg_sem_t filled;       /* the forming worker waits here for a full batch */
};

static batch_node *bn_of(const eng_node *n) { return n->work.serve; }

double serve_batch_wait_s(const eng_fifo *q, int max, double max_wait_s, double now)
{
    if (q->len == 0 || q->len >= max)
        return 0;
    double due = q->head->stage_s + max_wait_s;
    /* waits below SimGrid's timing precision (1e-9 s) cannot move its
     * clock: within 1 us of due is due */
    return due - now <= 1e-6 ? 0 : due - now;
}

/* The next batch off n's queue at now, up to the model's batch.max_size
 * requests into batch; a request whose client has gone is ended as timed
 * out, not taken. Returns how many were taken, their work summed in
 * *work. */
int serve_batch_take(eng_node *n, eng_req **batch, double now, double *work)
{
    eng_pool *p = n->pool;
    int max = p->model->batch_max_size, b = 0;
    *work = 0;
    while (b < max && n->work.q.len > 0) {
        eng_req *r = eng_fifo_pop(&n->work.q);
        eng_node_q_sync(n);
        if (r->deadline_s <= now) { /* client already gone: not the server's fault */
            eng_lb_release(p, r, n->index, now - r->stage_s, LB_OK, now);
            eng_req_end(p, r, B_TIMED_OUT, r->deadline_s);
            continue;
        }
        batch[b++] = r;
        *work += r->work;
    }
    return b;
}

/* gpu_error: the application answers the b requests of batch 500 at once,
 * a 5xx response (nginx's default proxy_next_upstream does not list
 * http_500), and the balancer's queue moves on. */
void serve_batch_answer_500(eng_node *n, eng_req **batch, int b, double now)
{
    for (int i = 0; i < b; i++) {
        eng_lb_release(n->pool, batch[i], n->index, now - batch[i]->stage_s, LB_HTTP_5XX, now);
        eng_req_end(n->pool, batch[i], B_FAILED, now);
    }
    eng_drain_balancer_queue(n->pool, now);
}

/* The node crashed at now under the b requests of batch: each fails as an
 * attempt (retried as the balancer allows). */
void serve_batch_fail(eng_node *n, eng_req **batch, int b, double now)
{
    for (int i = 0; i < b; i++) {
        eng_lb_release(n->pool, batch[i], n->index, now - batch[i]->arrival_s, LB_ERROR, now);
        eng_attempt_failed(n->pool, batch[i], now);
    }
}

static void init_node(eng_node *n)
{
    batch_node *bn = calloc(1, sizeof *bn);
    bn->wake = sg_sem_init(0);
    bn->filled = sg_sem_init(0);
    bn->workers = calloc((size_t)n->gpus, sizeof *bn->workers);
    for (int g = 0; g < n->gpus; g++) {
        bn->workers[g].node = n;
        bn->workers[g].bn = bn;
        bn->workers[g].run_t0_s = -1;
    }
    n->work.serve = bn;
}

static void free_node(eng_node *n)
{
    batch_node *bn = bn_of(n);
    if (!bn)
        return;
    sg_sem_destroy(bn->wake);
    sg_sem_destroy(bn->filled);
    for (int g = 0; g < n->gpus; g++)
        free(bn->workers[g].batch);
    free(bn->workers);
    free(bn);
    n->work.serve = NULL;
}

static void accepted(eng_node *n)
{
    batch_node *bn = bn_of(n);
    if (bn->forming) {
        if (n->work.q.len >= n->pool->model->batch_max_size) {
            bn->forming = 0;
            sg_sem_release(bn->filled);
        }
    } else if (bn->idle_workers > 0) {
        bn->idle_workers--;
        sg_sem_release(bn->wake);
    }
}

/* Wakes every idle worker of a node. They are counted first: a woken worker
 * may go idle again (another is forming a batch) before this returns. */
static void wake_idle(eng_node *n)
{
    batch_node *bn = bn_of(n);
    int idle = bn->idle_workers;
    bn->idle_workers = 0;
    while (idle-- > 0)
        sg_sem_release(bn->wake);
}

/* sg_actor_execute without its set_priority(1.0), the default: in SimGrid
 * 3.32 each of s4u::Exec's setters is a simcall with its round trip through
 * the maestro (src/s4u/s4u_Exec.cpp: set_flops_amount, set_host,
 * set_priority, start; this_actor::execute is exec_init, set_priority,
 * start, wait), so one fewer per execution; the same execution, the same
 * results. A host turned off still kills the caller (sg_exec_wait only
 * catches timeouts, cancels and host failures of the execution itself). */
void serve_execute(double flops)
{
    sg_exec_t e = sg_actor_exec_init(flops);
    sg_exec_start(e);
    sg_exec_wait(e);
}

static void gpu_worker(int argc, char *argv[])
{
    (void)argc;
    (void)argv;
    batch_worker *w = sg_actor_self_get_data();
    eng_node *n = w->node;
    batch_node *bn = w->bn;
    eng_pool *p = n->pool;
    const sc_model *m = p->model;
    int max = m->batch_max_size;

    for (;;) {
        /* A draining node's workers leave once its queue is empty. */
        if (n->life.state == NODE_DRAINING && n->work.q.len == 0) {
            wake_idle(n); /* the others leave too */
            life_worker_exited(n);
            return;
        }
        /* Idle while there is nothing to do or another worker is forming
         * a batch (one batcher per node, as in Triton's dynamic batcher). */
        if (n->work.q.len == 0 || bn->forming) {
            bn->idle_workers++;
            sg_sem_acquire(bn->wake);
            continue;
        }
        /* Dynamic batching: wait until the batch is full or its oldest
         * request has waited max_wait (Triton's max_queue_delay). */
        if (max > 1 && m->batch_max_wait_s > 0 && n->life.state == NODE_READY) {
            for (;;) {
                double wait_s = serve_batch_wait_s(&n->work.q, max, m->batch_max_wait_s,
                                                   simgrid_get_clock());
                if (wait_s == 0)
                    break;
                bn->forming = 1;
                if (sg_sem_acquire_timeout(bn->filled, wait_s)) {
                    bn->forming = 0; /* timed out: the window is over */
                    break;
                }
            }
        }
        double now = simgrid_get_clock();
        double work;
        int b = serve_batch_take(n, w->batch, now, &work);
        if (n->work.q.len > 0 && bn->idle_workers > 0 && !bn->forming) {
            bn->idle_workers--;
            sg_sem_release(bn->wake);
        }
        if (b == 0) {
            eng_drain_balancer_queue(p, now);
            continue;
        }
        if (n->fault.gpu_error) {
            serve_batch_answer_500(n, w->batch, b, now);
            continue;
        }
        double service_s = sc_model_mean_s(m, b) * (work / b) * eng_draw_unit(&m->noise, eng_node_rng(n));
        w->batch_n = b;
        w->run_t0_s = now;
        int gen = n->life.gen;
        serve_execute(service_s * ENG_FLOPS_PER_S);
        if (n->life.gen != gen)
            return; /* the node crashed as the batch ended: fail_running has dealt with it */
        double t1 = simgrid_get_clock();
        w->run_t0_s = -1;
        w->batch_n = 0;
        eng_account_busy(p, n, now, t1);
        for (int i = 0; i < b; i++)
            eng_req_served(p, n, w->batch[i], t1);
        eng_drain_balancer_queue(p, t1);
    }
}

/* Starts one worker actor per GPU on a node that just became ready. */
static void start(eng_node *n)
{
    batch_node *bn = bn_of(n);
    bn->idle_workers = 0;
    bn->forming = 0;
    for (int g = 0; g < n->gpus; g++) {
        batch_worker *w = &bn->workers[g];
        w->batch_n = 0;
        w->run_t0_s = -1;
        if (!w->batch) /* at the node's first start: a pool's spare slots hold none */
            w->batch = malloc(sizeof(eng_req *) * (size_t)n->pool->model->batch_max_size);
        sg_actor_t a = sg_actor_init(n->name, n->host);
        sg_actor_set_data(a, w);
        /* not a daemon: SimGrid 3.32 keeps a daemon that returns on its
         * daemon list and later kills it twice; the run ends at the
         * scenario's duration (simgrid_run_until) whatever actors remain */
        sg_actor_start(a, gpu_worker, 0, NULL);
    }
    n->work.workers_alive = n->gpus;
}

static void fail_running(eng_node *n, double now)
{
    batch_node *bn = bn_of(n);
    for (int g = 0; g < n->gpus; g++) {
        batch_worker *w = &bn->workers[g];
        if (w->run_t0_s >= 0)
            eng_account_busy(n->pool, n, w->run_t0_s, now);
        int b = w->batch_n;
        w->batch_n = 0;
        w->run_t0_s = -1;
        serve_batch_fail(n, w->batch, b, now);
    }
}

static void reset(eng_node *n)
{
    batch_node *bn = bn_of(n);
    bn->idle_workers = 0;
    bn->forming = 0;
}

static double busy_s(const eng_node *n, double now)
{
    const batch_node *bn = bn_of(n);
    double b = n->work.busy_gpu_s;
    for (int g = 0; g < n->gpus; g++)
        if (bn->workers[g].run_t0_s >= 0)
            b += now - bn->workers[g].run_t0_s;
    return b;
}

static void account_end(eng_node *n, double end_s)
{
    batch_node *bn = bn_of(n);
    for (int g = 0; g < n->gpus; g++)
        if (bn->workers[g].run_t0_s >= 0) /* batches still running count up to the end */
            eng_account_busy(n->pool, n, bn->workers[g].run_t0_s, end_s);
}

static int running(const eng_node *n, int gpu) { return bn_of(n)->workers[gpu].batch_n; }

static void census(const eng_node *n, unsigned long *requests, unsigned long *per_pool)
{
    const batch_node *bn = bn_of(n);
    for (int g = 0; g < n->gpus; g++)
        for (int i = 0; i < bn->workers[g].batch_n; i++)
            eng_census_add(bn->workers[g].batch[i], n->pool, requests, per_pool);
}

const serve_ops serve_batch = {
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
};
