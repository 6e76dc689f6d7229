/*
 * heap_floor.c - the big benchmark workloads (bench/scenarios/big/) as a
 * plain C discrete-event loop on a binary heap of events, with no engine:
 * what the model itself costs per request, below the SimGrid floor
 * (floor.c), against which fleetsim's per-request cost is read.
 *
 * Poisson arrivals (GSL mt19937, exponential gaps), each sent to the next
 * GPU in turn (round robin: O(1), where fleetsim's least_conn looks at the
 * servers), queued there as its arrival time in a ring; a GPU that frees
 * with requests queued takes up to 64 of them as one batch, which ends
 * 30 ms + 1 ms per item later. Two kinds of event in the heap: the next
 * arrival (one at a time) and each running batch's end. Prints the counts
 * and the mean latency, so the work cannot be optimised away.
 *
 * usage: heap_floor million|hour [DURATION_S]
 */
#include <gsl/gsl_randist.h>
#include <gsl/gsl_rng.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define RING 4096 /* per-GPU queue; at 15% load a few are ever queued */
#define BATCH_MAX 64

typedef struct {
    const char *name;
    double rate_qps, duration_s;
    int gpus;
} workload;

static const workload WORKLOADS[] = {
    { "million", 1e6, 60, 1250 * 8 },
    { "hour", 1e5, 3600, 125 * 8 },
};

typedef struct {
    double t_s;
    int gpu; /* -1: the next arrival */
} event;

typedef struct {
    double ring[RING];
    unsigned head, len;
    int running;       /* items in its running batch, 0 when idle */
} gpu_state;

static event *heap;
static size_t heap_len;

static void heap_push(event e)
{
    size_t i = heap_len++;
    while (i > 0) {
        size_t up = (i - 1) / 2;
        if (heap[up].t_s <= e.t_s)
            break;
        heap[i] = heap[up];
        i = up;
    }
    heap[i] = e;
}

static event heap_pop(void)
{
    event top = heap[0], last = heap[--heap_len];
    size_t i = 0;
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= heap_len)
            break;
        if (c + 1 < heap_len && heap[c + 1].t_s < heap[c].t_s)
            c++;
        if (last.t_s <= heap[c].t_s)
            break;
        heap[i] = heap[c];
        i = c;
    }
    heap[i] = last;
    return top;
}

int main(int argc, char *argv[])
{
    workload w = { 0 };
    if (argc < 2) {
        fprintf(stderr, "usage: heap_floor million|hour [DURATION_S]\n");
        return 2;
    }
    for (size_t i = 0; i < sizeof WORKLOADS / sizeof *WORKLOADS; i++)
        if (strcmp(argv[1], WORKLOADS[i].name) == 0)
            w = WORKLOADS[i];
    if (!w.name) {
        fprintf(stderr, "heap_floor: unknown workload '%s' (million, hour)\n", argv[1]);
        return 2;
    }
    if (argc > 2)
        w.duration_s = atof(argv[2]);
    gpu_state *g = calloc((size_t)w.gpus, sizeof *g);
    heap = malloc(sizeof *heap * ((size_t)w.gpus + 1));
    if (!g || !heap)
        return 1;
    gsl_rng *rng = gsl_rng_alloc(gsl_rng_mt19937);
    gsl_rng_set(rng, 1);
    unsigned long n_requests = 0, n_done = 0, n_batches = 0;
    double latency_sum_s = 0, mean_gap_s = 1.0 / w.rate_qps;
    int next_gpu = 0;
    heap_push((event){ gsl_ran_exponential(rng, mean_gap_s), -1 });
    while (heap_len > 0) {
        event e = heap_pop();
        int k = e.gpu;
        if (k < 0) { /* an arrival */
            if (e.t_s >= w.duration_s)
                continue;
            n_requests++;
            k = next_gpu;
            next_gpu = next_gpu + 1 == w.gpus ? 0 : next_gpu + 1;
            gpu_state *s = &g[k];
            if (s->len == RING) {
                fprintf(stderr, "heap_floor: GPU queue overflow\n");
                return 1;
            }
            s->ring[(s->head + s->len++) % RING] = e.t_s;
            heap_push((event){ e.t_s + gsl_ran_exponential(rng, mean_gap_s), -1 });
            if (s->running)
                continue;
        } else { /* GPU k's batch ended: its requests are answered */
            gpu_state *s = &g[k];
            for (int i = 0; i < s->running; i++)
                latency_sum_s += e.t_s - s->ring[(s->head + (unsigned)i) % RING];
            n_done += (unsigned long)s->running;
            s->head = (s->head + (unsigned)s->running) % RING;
            s->len -= (unsigned)s->running;
            s->running = 0;
            if (s->len == 0 || e.t_s >= w.duration_s)
                continue;
        }
        gpu_state *s = &g[k]; /* idle with requests queued: a batch */
        s->running = (int)s->len < BATCH_MAX ? (int)s->len : BATCH_MAX;
        n_batches++;
        heap_push((event){ e.t_s + 0.030 + 0.001 * s->running, k });
    }
    printf("%s requests %lu completed %lu batches %lu mean_latency_s %.6f\n", w.name, n_requests,
           n_done, n_batches, n_done ? latency_sum_s / (double)n_done : 0);
    gsl_rng_free(rng);
    free(heap);
    free(g);
    return 0;
}
