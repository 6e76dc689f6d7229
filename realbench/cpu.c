/*
 * cpu.c - a model instantiated on the CPU, and the thread pool that runs it.
 *
 * rb_cpu_net holds a model's weights, `rotate` sets of fresh inputs and one
 * activation buffer per op, all sized for the largest batch. A forward pass
 * runs op after op; each op is split over the pool's threads by rows (many
 * rows) or by output columns (a few rows: small dense batches), and each
 * thread computes blocks of up to RB rows and applies the epilogue right away
 * (INT8: requantise and activate, rb_quant.h; FP32: activate) while the block
 * is in cache. The pool is persistent: workers spin briefly on a generation
 * counter, then sleep on a condition variable, so a job costs microseconds
 * rather than a thread creation (which would dominate batch-1 latency).
 */
#define _GNU_SOURCE /* CPU affinity: pthread_setaffinity_np, cpu_set_t */
#include "realbench.h"

#include <gsl/gsl_randist.h>
#include <gsl/gsl_rng.h>
#include <math.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* ---- real-time scheduling ------------------------------------------------ */

int rb_rt_enter(rb_rt *rt, char *why, size_t why_len)
{
    struct sched_param sp;
    memset(rt, 0, sizeof *rt);
    int e = pthread_getschedparam(pthread_self(), &rt->policy, &sp);
    if (e) {
        snprintf(why, why_len, "pthread_getschedparam: %s", strerror(e));
        return -1;
    }
    rt->priority = sp.sched_priority;
    struct sched_param fifo;
    memset(&fifo, 0, sizeof fifo);
    fifo.sched_priority = sched_get_priority_min(SCHED_FIFO);
    e = pthread_setschedparam(pthread_self(), SCHED_FIFO, &fifo);
    if (e) {
        snprintf(why, why_len, "SCHED_FIFO refused: %s", strerror(e));
        return -1;
    }
    rt->active = 1;
    snprintf(why, why_len, "SCHED_FIFO priority %d", fifo.sched_priority);
    return 0;
}

void rb_rt_leave(rb_rt *rt)
{
    if (!rt->active)
        return;
    struct sched_param sp;
    memset(&sp, 0, sizeof sp);
    sp.sched_priority = rt->priority;
    pthread_setschedparam(pthread_self(), rt->policy, &sp);
    rt->active = 0;
}

/* ---- CPU affinity --------------------------------------------------------- */

static int pin_thread(pthread_t th, int cpu)
{
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(cpu, &set);
    return pthread_setaffinity_np(th, sizeof set, &set);
}

int rb_pin_self(int cpu)
{
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    if (cpu < 0 || cpu >= n || cpu >= CPU_SETSIZE)
        return -1;
    return pin_thread(pthread_self(), cpu) ? -1 : 0;
}

/* ---- thread pool ------------------------------------------------------- */

enum { SPIN = 1 << 14 };

struct rb_pool {
    int n;
    pthread_t *th;
    pthread_mutex_t mu;
    pthread_cond_t cv_start, cv_done;
    atomic_uint gen;
    atomic_int remaining;
    atomic_int quit;
    rb_pool_fn *fn;
    void *arg;
};

typedef struct {
    rb_pool *p;
    int tid;
} worker_arg;

static void *worker(void *v)
{
    worker_arg *wa = v;
    rb_pool *p = wa->p;
    int tid = wa->tid;
    free(wa);
    unsigned seen = 0;
    for (;;) {
        int spins = 0;
        while (atomic_load(&p->gen) == seen && !atomic_load(&p->quit) && spins < SPIN)
            spins++;
        pthread_mutex_lock(&p->mu);
        while (atomic_load(&p->gen) == seen && !atomic_load(&p->quit))
            pthread_cond_wait(&p->cv_start, &p->mu);
        seen = atomic_load(&p->gen);
        rb_pool_fn *fn = p->fn;
        void *arg = p->arg;
        pthread_mutex_unlock(&p->mu);
        if (atomic_load(&p->quit))
            return NULL;
        fn(arg, tid, p->n);
        if (atomic_fetch_sub(&p->remaining, 1) == 1) {
            pthread_mutex_lock(&p->mu);
            pthread_cond_signal(&p->cv_done);
            pthread_mutex_unlock(&p->mu);
        }
    }
}

rb_pool *rb_pool_new(int nthreads)
{
    if (nthreads < 1)
        nthreads = 1;
    rb_pool *p = calloc(1, sizeof *p);
    if (!p)
        return NULL;
    p->n = nthreads;
    p->th = calloc((size_t)nthreads, sizeof *p->th);
    pthread_mutex_init(&p->mu, NULL);
    pthread_cond_init(&p->cv_start, NULL);
    pthread_cond_init(&p->cv_done, NULL);
    atomic_init(&p->gen, 0);
    atomic_init(&p->remaining, 0);
    atomic_init(&p->quit, 0);
    for (int t = 1; p->th && t < nthreads; t++) {
        worker_arg *wa = malloc(sizeof *wa);
        if (!wa || (wa->p = p, wa->tid = t, pthread_create(&p->th[t], NULL, worker, wa))) {
            free(wa);
            p->n = t; /* run with the threads that started */
            break;
        }
    }
    return p;
}

void rb_pool_free(rb_pool *p)
{
    if (!p)
        return;
    pthread_mutex_lock(&p->mu);
    atomic_store(&p->quit, 1);
    pthread_cond_broadcast(&p->cv_start);
    pthread_mutex_unlock(&p->mu);
    for (int t = 1; t < p->n; t++)
        pthread_join(p->th[t], NULL);
    pthread_mutex_destroy(&p->mu);
    pthread_cond_destroy(&p->cv_start);
    pthread_cond_destroy(&p->cv_done);
    free(p->th);
    free(p);
}

int rb_pool_size(const rb_pool *p) { return p ? p->n : 1; }

int rb_pool_pin(rb_pool *p, int cpu0)
{
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    int np = p ? p->n : 1;
    if (cpu0 < 0 || cpu0 + np > n || cpu0 + np > CPU_SETSIZE)
        return -1;
    if (rb_pin_self(cpu0))
        return -1;
    for (int t = 1; t < np; t++)
        if (pin_thread(p->th[t], cpu0 + t))
            return -1;
    return 0;
}

void rb_pool_run(rb_pool *p, rb_pool_fn *fn, void *arg)
{
    if (!p || p->n == 1) {
        fn(arg, 0, 1);
        return;
    }
    atomic_store(&p->remaining, p->n - 1);
    pthread_mutex_lock(&p->mu);
    p->fn = fn;
    p->arg = arg;
    atomic_fetch_add(&p->gen, 1);
    pthread_cond_broadcast(&p->cv_start);
    pthread_mutex_unlock(&p->mu);
    fn(arg, 0, p->n);
    for (int spins = 0; atomic_load(&p->remaining) && spins < SPIN; spins++)
        ;
    pthread_mutex_lock(&p->mu);
    while (atomic_load(&p->remaining))
        pthread_cond_wait(&p->cv_done, &p->mu);
    pthread_mutex_unlock(&p->mu);
}

/* ---- the network --------------------------------------------------------- */

enum { RB = 16, MAX_THREADS = 256 };

struct rb_cpu_net {
    const rb_model *m;
    rb_cpu_precision prec;
    int max_batch, rotate;
    size_t es;
    void **W, **Q;
    void ***Afresh, ***Bact; /* [op][rotate] */
    int32_t *scratch[MAX_THREADS];
    size_t scratch_elems;
    rb_qtables tab;
    int batch, rot, op; /* the job being run */
};

const char *rb_cpu_precision_name(rb_cpu_precision p) { return p == RB_INT8 ? "int8" : "fp32"; }

static void *alloc_buf(size_t bytes)
{
    size_t b = (bytes + 63) / 64 * 64;
    void *x = aligned_alloc(64, b ? b : 64);
    if (x)
        memset(x, 0, b ? b : 64);
    return x;
}

static void *random_buf(rb_cpu_precision p, size_t count, gsl_rng *r, double scale)
{
    void *x = alloc_buf(count * (p == RB_INT8 ? 1 : 4));
    if (!x)
        return NULL;
    for (size_t i = 0; i < count; i++) {
        if (p == RB_INT8)
            ((int8_t *)x)[i] = (int8_t)((int)gsl_rng_uniform_int(r, 255) - 127);
        else
            ((float *)x)[i] = (float)(gsl_ran_flat(r, -1.0, 1.0) * scale);
    }
    return x;
}

static const void *a_of(const rb_cpu_net *n, int i, int rot)
{
    return n->m->ops[i].a_from_prev ? n->Q[i - 1] : n->Afresh[i][rot % n->rotate];
}
static const void *b_of(const rb_cpu_net *n, int i, int rot)
{
    return n->m->ops[i].b_weight ? n->W[i] : n->Bact[i][rot % n->rotate];
}

rb_cpu_net *rb_cpu_net_new(const rb_model *m, rb_cpu_precision prec, int max_batch, int rotate,
                           unsigned long seed, FILE *err)
{
    rb_cpu_net *n = calloc(1, sizeof *n);
    gsl_rng *r = gsl_rng_alloc(gsl_rng_mt19937);
    if (!n || !r)
        goto oom;
    gsl_rng_set(r, seed);
    n->m = m;
    n->prec = prec;
    n->max_batch = max_batch < 1 ? 1 : max_batch;
    n->rotate = rotate < 1 ? 1 : rotate;
    n->es = prec == RB_INT8 ? 1 : 4;
    rb_qtables_init(&n->tab);
    n->W = calloc((size_t)m->n_ops, sizeof *n->W);
    n->Q = calloc((size_t)m->n_ops, sizeof *n->Q);
    n->Afresh = calloc((size_t)m->n_ops, sizeof *n->Afresh);
    n->Bact = calloc((size_t)m->n_ops, sizeof *n->Bact);
    if (!n->W || !n->Q || !n->Afresh || !n->Bact)
        goto oom;
    for (int i = 0; i < m->n_ops; i++) {
        const rb_op *o = &m->ops[i];
        size_t gm = (size_t)n->max_batch * o->groups * o->m;
        double ws = sqrt(3.0 / o->k); /* FP32 weights keep unit variance */
        if ((size_t)RB * o->n > n->scratch_elems)
            n->scratch_elems = (size_t)RB * o->n;
        if (o->b_weight && !(n->W[i] = random_buf(prec, (size_t)o->n * o->k, r, ws)))
            goto oom;
        n->Afresh[i] = calloc((size_t)n->rotate, sizeof(void *));
        n->Bact[i] = calloc((size_t)n->rotate, sizeof(void *));
        if (!n->Afresh[i] || !n->Bact[i])
            goto oom;
        for (int k = 0; k < n->rotate; k++) {
            if (!o->a_from_prev && !(n->Afresh[i][k] = random_buf(prec, gm * o->k, r, 1.0)))
                goto oom;
            if (!o->b_weight &&
                !(n->Bact[i][k] = random_buf(prec, (size_t)n->max_batch * o->groups * o->n * o->k,
                                             r, ws)))
                goto oom;
        }
        if (!(n->Q[i] = alloc_buf(gm * o->n * n->es)))
            goto oom;
    }
    gsl_rng_free(r);
    return n;
oom:
    fprintf(err, "realbench: out of memory for %s at batch %d\n", m->name, max_batch);
    gsl_rng_free(r);
    rb_cpu_net_free(n);
    return NULL;
}

void rb_cpu_net_free(rb_cpu_net *n)
{
    if (!n)
        return;
    for (int i = 0; n->W && i < n->m->n_ops; i++) {
        free(n->W[i]);
        free(n->Q[i]);
        for (int k = 0; k < n->rotate; k++) {
            if (n->Afresh[i])
                free(n->Afresh[i][k]);
            if (n->Bact[i])
                free(n->Bact[i][k]);
        }
        free(n->Afresh[i]);
        free(n->Bact[i]);
    }
    for (int t = 0; t < MAX_THREADS; t++)
        free(n->scratch[t]);
    free(n->W);
    free(n->Q);
    free(n->Afresh);
    free(n->Bact);
    free(n);
}

static float act_f32(rb_act a, float x)
{
    switch (a) {
    case RB_ACT_RELU:
        return x > 0 ? x : 0;
    case RB_ACT_GELU:
        return 0.5f * x * (1.f + tanhf(0.7978845608f * (x + 0.044715f * x * x * x)));
    case RB_ACT_SIGMOID:
        return 1.f / (1.f + expf(-x));
    default:
        return x;
    }
}

static void softmax_f32_row(float *row, int n)
{
    float mx = row[0], s = 0;
    for (int j = 1; j < n; j++)
        mx = row[j] > mx ? row[j] : mx;
    for (int j = 0; j < n; j++)
        s += (row[j] = expf(row[j] - mx));
    for (int j = 0; j < n; j++)
        row[j] /= s;
}

/* Rows [r0, r1) x columns [c0, c1) of op `i` (rows counted over all groups). */
static void op_block(rb_cpu_net *n, int tid, int i, long r0, long r1, int c0, int c1)
{
    const rb_op *o = &n->m->ops[i];
    int M = rb_op_rows(o, n->batch), K = o->k, N = o->n;
    const char *A = a_of(n, i, n->rot), *B = b_of(n, i, n->rot);
    for (long r = r0; r < r1;) {
        long g = r / M;
        int rb = (int)(r1 - r);
        if (rb > RB)
            rb = RB;
        if (rb > M - r % M)
            rb = (int)(M - r % M);
        const char *bg = B + (o->b_weight ? 0 : (size_t)g * N * K * n->es);
        if (n->prec == RB_INT8) {
            int32_t *s = n->scratch[tid];
            int8_t *q = (int8_t *)n->Q[i] + (size_t)r * N;
            rb_gemm_s8((const int8_t *)A + (size_t)r * K, (const int8_t *)bg, s, N, rb, K, c0, c1);
            for (int y = 0; y < rb; y++) {
                for (int c = c0; c < c1; c++) {
                    int8_t v = rb_requant(s[(size_t)y * N + c], o->shift);
                    q[(size_t)y * N + c] = o->act == RB_ACT_SOFTMAX ? v : rb_act_s8(&n->tab, o->act, v);
                }
                if (o->act == RB_ACT_SOFTMAX) /* row split guarantees c0 = 0, c1 = N */
                    rb_softmax_s8_row(&n->tab, q + (size_t)y * N, N);
            }
        } else {
            float *q = (float *)n->Q[i] + (size_t)r * N;
            rb_gemm_f32((const float *)A + (size_t)r * K, (const float *)bg, q, N, rb, K, c0, c1);
            for (int y = 0; y < rb; y++) {
                if (o->act == RB_ACT_SOFTMAX)
                    softmax_f32_row(q + (size_t)y * N, N);
                else if (o->act != RB_ACT_NONE)
                    for (int c = c0; c < c1; c++)
                        q[(size_t)y * N + c] = act_f32(o->act, q[(size_t)y * N + c]);
            }
        }
        r += rb;
    }
}

static void op_job(void *arg, int tid, int nt)
{
    rb_cpu_net *n = arg;
    const rb_op *o = &n->m->ops[n->op];
    long rows = (long)rb_op_groups(o, n->batch) * rb_op_rows(o, n->batch);
    if (rows >= 2L * nt || o->act == RB_ACT_SOFTMAX || o->n < 4 * nt) {
        long r0 = rows * tid / nt, r1 = rows * (tid + 1) / nt;
        op_block(n, tid, n->op, r0, r1, 0, o->n);
    } else { /* few rows: split the output columns, in multiples of 4 */
        int quads = (o->n + 3) / 4;
        int c0 = 4 * (int)((long)quads * tid / nt), c1 = 4 * (int)((long)quads * (tid + 1) / nt);
        if (c1 > o->n)
            c1 = o->n;
        op_block(n, tid, n->op, 0, rows, c0, c1);
    }
}

void rb_cpu_net_forward(rb_cpu_net *n, rb_pool *pool, int batch, int rot)
{
    int nt = rb_pool_size(pool);
    for (int t = 0; t < nt && t < MAX_THREADS; t++)
        if (!n->scratch[t] && n->prec == RB_INT8)
            n->scratch[t] = alloc_buf(n->scratch_elems * sizeof(int32_t));
    n->batch = batch < 1 ? 1 : batch > n->max_batch ? n->max_batch : batch;
    n->rot = rot;
    for (int i = 0; i < n->m->n_ops; i++) {
        n->op = i;
        rb_pool_run(pool, op_job, n);
    }
}

const void *rb_cpu_net_output(const rb_cpu_net *n, size_t *count)
{
    const rb_op *o = &n->m->ops[n->m->n_ops - 1];
    if (count)
        *count = (size_t)rb_op_groups(o, n->batch) * rb_op_rows(o, n->batch) * o->n;
    return n->Q[n->m->n_ops - 1];
}

/* FP32: |got - act(ref)| <= FP_TOL * 2 * max over the row of sum|a*b|. */
#define FP_TOL 1e-5

int rb_cpu_net_check(rb_cpu_net *n, rb_pool *pool, int batch, FILE *err)
{
    rb_cpu_net_forward(n, pool, batch, 0);
    batch = n->batch;
    int bad = 0;
    for (int i = 0; i < n->m->n_ops; i++) {
        const rb_op *o = &n->m->ops[i];
        int G = rb_op_groups(o, batch), M = rb_op_rows(o, batch), N = o->n, K = o->k;
        const char *A = a_of(n, i, 0), *B = b_of(n, i, 0);
        size_t mism = 0;
        double worst = 0;
        int32_t *ci = malloc((size_t)M * N * sizeof *ci);
        float *cf = malloc((size_t)M * N * sizeof *cf);
        int8_t *row8 = malloc((size_t)N);
        if (!ci || !cf || !row8) {
            fprintf(err, "realbench: out of memory checking %s\n", o->name);
            free(ci), free(cf), free(row8);
            return -1;
        }
        for (int g = 0; g < G; g++) {
            const char *ag = A + (size_t)g * M * K * n->es;
            const char *bg = B + (o->b_weight ? 0 : (size_t)g * N * K * n->es);
            if (n->prec == RB_INT8) {
                const int8_t *q = (const int8_t *)n->Q[i] + (size_t)g * M * N;
                rb_gemm_s8_ref((const int8_t *)ag, (const int8_t *)bg, ci, M, N, K);
                for (int r = 0; r < M; r++) {
                    for (int c = 0; c < N; c++) {
                        int8_t v = rb_requant(ci[(size_t)r * N + c], o->shift);
                        row8[c] = o->act == RB_ACT_SOFTMAX ? v : rb_act_s8(&n->tab, o->act, v);
                    }
                    if (o->act == RB_ACT_SOFTMAX)
                        rb_softmax_s8_row(&n->tab, row8, N);
                    for (int c = 0; c < N; c++)
                        mism += row8[c] != q[(size_t)r * N + c];
                }
            } else {
                const float *q = (const float *)n->Q[i] + (size_t)g * M * N;
                const float *af = (const float *)ag, *bf = (const float *)bg;
                rb_gemm_f32_ref(af, bf, cf, M, N, K);
                for (int r = 0; r < M; r++) {
                    double rowmag = 0;
                    for (int c = 0; c < N; c++) {
                        double s = 0;
                        for (int k = 0; k < K; k++)
                            s += fabs((double)af[(size_t)r * K + k] * bf[(size_t)c * K + k]);
                        rowmag = s > rowmag ? s : rowmag;
                    }
                    float *ref = cf + (size_t)r * N;
                    if (o->act == RB_ACT_SOFTMAX)
                        softmax_f32_row(ref, N);
                    for (int c = 0; c < N; c++) {
                        double want = o->act == RB_ACT_SOFTMAX ? ref[c] : act_f32(o->act, ref[c]);
                        double e = fabs(q[(size_t)r * N + c] - want);
                        double lim = FP_TOL * 2 * rowmag + 1e-7;
                        worst = e / lim > worst ? e / lim : worst;
                        mism += !(e <= lim);
                    }
                }
            }
        }
        if (mism) {
            fprintf(err, "realbench: %s op %s batch %d: %zu outputs differ from the reference\n",
                    rb_cpu_precision_name(n->prec), o->name, batch, mism);
            bad++;
        }
        free(ci), free(cf), free(row8);
    }
    return bad ? -1 : 0;
}
