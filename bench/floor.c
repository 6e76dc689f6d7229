/*
 * floor.c - the least a SimGrid program must do to simulate the benchmark
 * workloads, as a floor for fleetsim's per-request cost.
 *
 * Same platform shape as the engine (one host per node, 1 Gflop/s, one core,
 * plus a host for the generator), same context factory (raw) and log level.
 * One generator actor sleeps until each Poisson arrival (one
 * sg_actor_sleep_until per request) and hands the request to the node with
 * the fewest requests (queued + running; first such node on a tie). One
 * worker actor per node waits on a semaphore while its queue is empty, forms
 * a batch (for the batched workload: until 16 are queued or the oldest has
 * waited 5 ms, one sg_sem_acquire_timeout), and runs it as one
 * sg_actor_execute. No statistics, no energy plugin, no time series, no
 * request records beyond an arrival time in a ring buffer per node.
 *
 * The random variates are the ones the model needs and are drawn the same
 * way as in the engine (GSL mt19937): exponential inter-arrival times,
 * exponential service for mmc, lognormal noise (cv 0.3) for batched.
 *
 * The big workloads (bench/scenarios/big/: million, 1M QPS for 60 s on
 * 10,000 GPUs; hour, 100k QPS for an hour on 1,000) have one worker and
 * one host per GPU, send each request to the next GPU in turn (round robin,
 * O(1): a scan of 10,000 would be the floor's whole cost), and take a batch
 * of up to 64 of what is queued when a GPU frees (no window), lasting
 * 30 ms + 1 ms per item with no noise. The hosts sit in a zone with no
 * routes (nothing here communicates).
 *
 * usage: floor mmc|batched|million|hour [DURATION_S]
 * prints: workload, requests, batches, simulated s, wall s, requests/s.
 */
#include <simgrid/actor.h>
#include <simgrid/engine.h>
#include <simgrid/host.h>
#include <simgrid/semaphore.h>

#include <gsl/gsl_randist.h>
#include <gsl/gsl_rng.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define RING 4096 /* per-node queue capacity; far above what 80% load reaches */

/* One workload: the numbers in bench/scenarios/{mmc,batched}.yaml. */
typedef struct {
    const char *name;
    double rate_qps, duration_s;
    int batch_max;
    double max_wait_s;
    int exp_service;          /* 1: exponential, mean base_s; 0: lognormal noise */
    double base_s, per_item_s, cv; /* cv 0: no noise */
    int n_nodes;
    int round_robin;          /* 1: the next node in turn; 0: the least active */
} workload;

static const workload WORKLOADS[] = {
    { "mmc", 12.8, 156250, 1, 0, 1, 1.0, 0, 0, 16, 0 },
    { "batched", 4350, 460, 16, 0.005, 0, 0.015, 0.002, 0.3, 16, 0 },
    { "million", 1e6, 60, 64, 0, 0, 0.030, 0.001, 0, 1250 * 8, 1 },
    { "hour", 1e5, 3600, 64, 0, 0, 0.030, 0.001, 0, 125 * 8, 1 },
};

typedef struct {
    sg_host_t host;
    double ring[RING];       /* arrival times, FIFO */
    unsigned head, len;
    int active;              /* queued + running: what routing looks at */
    int idle;                /* the worker waits on wake */
    int forming;             /* the worker waits on filled */
    sg_sem_t wake, filled;
    gsl_rng *rng;
} fnode;

static const workload *W;
static fnode *nodes;
static unsigned long n_requests, n_batches;

static void generator(int argc, char *argv[])
{
    (void)argc;
    (void)argv;
    gsl_rng *rng = gsl_rng_alloc(gsl_rng_mt19937);
    gsl_rng_set(rng, 1);
    double mean_gap = 1.0 / W->rate_qps, t = 0;
    for (;;) {
        t += gsl_ran_exponential(rng, mean_gap);
        if (t >= W->duration_s)
            break;
        sg_actor_sleep_until(t);
        static int next;
        int best = 0;
        if (W->round_robin) {
            best = next;
            next = next + 1 == W->n_nodes ? 0 : next + 1;
        } else {
            for (int i = 1; i < W->n_nodes; i++)
                if (nodes[i].active < nodes[best].active)
                    best = i;
        }
        fnode *n = &nodes[best];
        if (n->len == RING) {
            fprintf(stderr, "floor: node queue overflow\n");
            exit(1);
        }
        n->ring[(n->head + n->len++) % RING] = t;
        n->active++;
        n_requests++;
        if (n->forming) {
            if ((int)n->len >= W->batch_max) {
                n->forming = 0;
                sg_sem_release(n->filled);
            }
        } else if (n->idle) {
            n->idle = 0;
            sg_sem_release(n->wake);
        }
    }
    gsl_rng_free(rng);
}

static void worker(int argc, char *argv[])
{
    (void)argc;
    (void)argv;
    fnode *n = sg_actor_self_get_data();
    double s2 = log1p(W->cv * W->cv);
    for (;;) {
        if (n->len == 0) {
            n->idle = 1;
            sg_sem_acquire(n->wake);
            continue;
        }
        if (W->batch_max > 1 && W->max_wait_s > 0) {
            for (;;) {
                double now = simgrid_get_clock();
                if ((int)n->len >= W->batch_max)
                    break;
                double due = n->ring[n->head] + W->max_wait_s;
                if (due <= now)
                    break;
                n->forming = 1;
                if (sg_sem_acquire_timeout(n->filled, due - now))
                    n->forming = 0;
            }
        }
        int b = (int)n->len < W->batch_max ? (int)n->len : W->batch_max;
        n->head = (n->head + (unsigned)b) % RING;
        n->len -= (unsigned)b;
        double service_s = W->exp_service ? gsl_ran_exponential(n->rng, W->base_s)
                           : W->cv == 0   ? W->base_s + W->per_item_s * b
                                          : (W->base_s + W->per_item_s * b) *
                                              gsl_ran_lognormal(n->rng, -0.5 * s2, sqrt(s2));
        sg_actor_execute(service_s * 1e9);
        n->active -= b;
        n_batches++;
    }
}

static int write_platform(const char *path)
{
    FILE *f = fopen(path, "w");
    if (!f)
        return -1;
    fprintf(f, "<?xml version='1.0'?>\n"
               "<!DOCTYPE platform SYSTEM \"https://simgrid.org/simgrid.dtd\">\n"
               "<platform version=\"4.1\">\n<zone id=\"fleet\" routing=\"None\">\n"
               "  <host id=\"balancer\" speed=\"1Gf\" core=\"1\"/>\n");
    for (int j = 0; j < W->n_nodes; j++)
        fprintf(f, "  <host id=\"p/%d\" speed=\"1Gf\" core=\"1\"/>\n", j);
    fprintf(f, "</zone>\n</platform>\n");
    return fclose(f);
}

int main(int argc, char *argv[])
{
    static workload w;
    if (argc < 2) {
        fprintf(stderr, "usage: floor mmc|batched|million|hour [DURATION_S]\n");
        return 2;
    }
    for (size_t i = 0; i < sizeof WORKLOADS / sizeof *WORKLOADS; i++)
        if (strcmp(argv[1], WORKLOADS[i].name) == 0)
            w = WORKLOADS[i];
    if (!w.name) {
        fprintf(stderr, "floor: unknown workload '%s' (mmc, batched, million, hour)\n", argv[1]);
        return 2;
    }
    if (argc > 2)
        w.duration_s = atof(argv[2]);
    W = &w;
    nodes = calloc((size_t)w.n_nodes, sizeof *nodes);
    if (!nodes)
        return 1;

    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    char *args[] = { "floor", "--log=root.thres:critical", "--cfg=contexts/factory:raw", NULL };
    int sargc = 3;
    simgrid_init(&sargc, args);
    char plat[] = "/tmp/fleetsim-floor-XXXXXX";
    int fd = mkstemp(plat);
    if (fd < 0 || (close(fd), write_platform(plat)) != 0) {
        perror("floor: platform file");
        return 1;
    }
    simgrid_load_platform(plat);
    unlink(plat);

    for (int j = 0; j < W->n_nodes; j++) {
        char name[32];
        fnode *n = &nodes[j];
        snprintf(name, sizeof name, "p/%d", j);
        n->host = sg_host_by_name(name);
        n->wake = sg_sem_init(0);
        n->filled = sg_sem_init(0);
        n->rng = gsl_rng_alloc(gsl_rng_mt19937);
        gsl_rng_set(n->rng, 100 + (unsigned long)j);
        sg_actor_t a = sg_actor_init(name, n->host);
        sg_actor_set_data(a, n);
        sg_actor_daemonize(a);
        sg_actor_start(a, worker, 0, NULL);
    }
    sg_actor_t g = sg_actor_init("generator", sg_host_by_name("balancer"));
    sg_actor_start(g, generator, 0, NULL);
    simgrid_run();

    clock_gettime(CLOCK_MONOTONIC, &t1);
    double wall = (double)(t1.tv_sec - t0.tv_sec) + 1e-9 * (double)(t1.tv_nsec - t0.tv_nsec);
    printf("%s requests %lu batches %lu sim_s %.0f wall_s %.3f req_per_s %.0f\n", w.name,
           n_requests, n_batches, simgrid_get_clock(), wall, (double)n_requests / wall);
    for (int j = 0; j < W->n_nodes; j++) {
        gsl_rng_free(nodes[j].rng);
        sg_sem_destroy(nodes[j].wake);
        sg_sem_destroy(nodes[j].filled);
    }
    free(nodes);
    return 0;
}
