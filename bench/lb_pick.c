/*
 * lb_pick.c - what routing alone costs per request as the pool grows, for
 * every registered balancing policy: lb_pick, the change notices that follow
 * (lb_changed) and the completion (lb_on_done), on a tracked view as the
 * engine keeps it, with no simulator around it.
 *
 * n servers of weight 1 carry 4 requests each on average: every step sends
 * one request (lb_pick, then its server's load up by one) and finishes one
 * in flight at random (its server's load down by one), so the load stays
 * put while the picks move it about. Two workloads:
 * - batch: requests without prefix hashes and servers without LLM load
 *   fields (what bench/sweep.sh routes);
 * - llm: each server also reports waiting and running requests, KV usage
 *   and outstanding tokens (lb_server_view's llm fields, from its active
 *   count), and each request carries chained prefix hashes: one of 16
 *   system prompts (2 blocks) then 1 to 6 blocks of one of 100,000
 *   conversations, a conversation always under the same system prompt.
 * Prints CPU nanoseconds per request (process CPU time over the steps after
 * a warm-up of one step per in-flight request), the minimum of `reps` runs.
 *
 * usage: lb_pick WORKLOAD POLICY N STEPS [REPS]   (bench/lb_pick.sh runs the table)
 */
#define _POSIX_C_SOURCE 200809L
#include "lb.h"

#include <gsl/gsl_rng.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define LOAD 4            /* requests in flight per server */
#define SYSTEM_PROMPTS 16
#define CONVERSATIONS 100000

typedef struct {
    int server;
} flight;

static double cpu_s(void)
{
    struct timespec t;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

/* Server i's LLM fields from its active count. */
static void llm_load(lb_server_view *s)
{
    s->llm_waiting = s->active / 2;
    s->llm_running = s->active - s->llm_waiting;
    s->llm_kv_usage = s->active >= 20 ? 1.0 : 0.05 * s->active;
    s->outstanding_tokens = 500.0 * s->active;
}

/* One request's hashes: system prompt blocks, then the conversation's. */
static int prompt(gsl_rng *r, uint64_t *h)
{
    unsigned long c = gsl_rng_uniform_int(r, CONVERSATIONS);
    unsigned long sys = c % SYSTEM_PROMPTS;
    int k = 1 + (int)gsl_rng_uniform_int(r, 6);
    h[0] = 1000000000ULL + 2 * sys;
    h[1] = h[0] + 1;
    for (int j = 0; j < k; j++)
        h[2 + j] = ((uint64_t)c << 8) | (uint64_t)j;
    return 2 + k;
}

static double run(const char *workload, const char *policy, int n, long steps, unsigned long seed)
{
    int llm = strcmp(workload, "llm") == 0;
    lb_server_view *s = calloc((size_t)n, sizeof *s);
    long cap = (long)n * LOAD;
    flight *fl = malloc((size_t)cap * sizeof *fl);
    gsl_rng *prng = gsl_rng_alloc(gsl_rng_mt19937), *ops = gsl_rng_alloc(gsl_rng_mt19937);
    if (!s || !fl || !prng || !ops) {
        fprintf(stderr, "lb_pick: out of memory\n");
        exit(1);
    }
    gsl_rng_set(prng, seed);
    gsl_rng_set(ops, seed + 1);
    for (int i = 0; i < n; i++)
        s[i] = (lb_server_view){ .up = 1, .weight = 1.0 };
    lb_view v = { .n = n, .servers = s };
    lb *b = lb_create_with(policy, n, prng, NULL);
    if (!b) {
        fprintf(stderr, "lb_pick: no policy %s\n", policy);
        exit(2);
    }
    lb_track(b, &v);
    long inflight = 0;
    double t0 = 0;
    uint64_t h[8];
    for (long step = 0; step < cap + steps; step++) {
        if (step == cap)
            t0 = cpu_s();
        v.now_s = 0.001 * (double)step / n;
        lb_request req = { .id = (unsigned long)step, .key = gsl_rng_get(ops) };
        if (llm) {
            req.hashes = h;
            req.n_hashes = prompt(ops, h);
            req.hash_block_tokens = 512;
            req.input_tokens = 512 * req.n_hashes - 100;
            req.output_tokens = 300;
        }
        int k = lb_pick(b, &v, &req);
        if (k < 0) {
            fprintf(stderr, "lb_pick: %s picked no server\n", policy);
            exit(1);
        }
        s[k].active++;
        if (llm)
            llm_load(&s[k]);
        lb_changed(b, &v, k);
        fl[inflight++].server = k;
        if (inflight < cap)
            continue;
        long x = (long)gsl_rng_uniform_int(ops, (unsigned long)inflight);
        int d = fl[x].server;
        fl[x] = fl[--inflight];
        s[d].active--;
        if (llm)
            llm_load(&s[d]);
        lb_changed(b, &v, d);
        lb_on_done(b, &v, d, 0.02, LB_OK);
    }
    double ns = 1e9 * (cpu_s() - t0) / (double)steps;
    lb_destroy(b);
    gsl_rng_free(prng);
    gsl_rng_free(ops);
    free(fl);
    free(s);
    return ns;
}

int main(int argc, char **argv)
{
    if (argc < 5 || (strcmp(argv[1], "batch") != 0 && strcmp(argv[1], "llm") != 0)) {
        fprintf(stderr, "usage: lb_pick batch|llm POLICY N STEPS [REPS]\n");
        return 2;
    }
    int n = atoi(argv[3]), reps = argc > 5 ? atoi(argv[5]) : 1;
    long steps = atol(argv[4]);
    if (n < 1 || steps < 1 || reps < 1) {
        fprintf(stderr, "lb_pick: N, STEPS and REPS must be positive\n");
        return 2;
    }
    double best = 0;
    for (int r = 0; r < reps; r++) {
        double ns = run(argv[1], argv[2], n, steps, 1 + (unsigned long)r);
        if (r == 0 || ns < best)
            best = ns;
    }
    printf("%-8s %-24s %6d %10ld %10.1f\n", argv[1], argv[2], n, steps, best);
    return 0;
}
