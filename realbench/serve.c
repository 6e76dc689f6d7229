/*
 * serve.c - `realbench serve`: a real serving loop on the CPU, under load.
 *
 * An open-loop Poisson generator (GSL exponential gaps, absolute-deadline
 * sleeps on CLOCK_MONOTONIC) puts requests into one FIFO queue for a bounded
 * time. Worker threads (each with its own INT8 model instance and thread
 * pool) take batches: a worker that is free dispatches at once when max_size
 * requests are waiting, otherwise when the oldest waiting request has waited
 * max_wait, with whatever is there; it then runs the model's forward pass on
 * that many items. A request's latency runs from its scheduled arrival time
 * (not from when the generator got to it, so a late generator cannot hide
 * queueing) to the end of its batch's forward pass. Requests that arrive in
 * the warm-up are served but left out of the statistics. The result (JSON)
 * has the latency quantiles (GSL, from the sorted latencies), the mean batch
 * size, the measured service time per batch size and the utilisation, so a
 * simulation of the same queue can be compared with it. --realtime runs the
 * generator and the workers SCHED_FIFO (rb_rt_enter), as the CPU benchmark
 * can, so that a profile and a serving run made that way both leave other
 * processes' work out.
 */
#include "realbench.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <gsl/gsl_randist.h>
#include <gsl/gsl_rng.h>
#include <gsl/gsl_sort.h>
#include <gsl/gsl_statistics_double.h>
#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

typedef struct {
    double arrival_s; /* scheduled, seconds since the start */
    double enqueued_s; /* when the generator put it in the queue */
    double done_s;
    double dispatch_s; /* its batch's start less when the batch could
                          start (full or due, and the worker free); NAN
                          for a batch cut short by the end */
    int batch;        /* size of the batch it was served in */
} request;

typedef struct serve serve;

typedef struct {
    serve *s;
    rb_cpu_net *net;
    rb_pool *pool;
    double busy_s;
    double free_s;    /* when it finished its last batch */
    long batches;
    pthread_t th;
} worker;

struct serve {
    /* settings */
    int max_size, workers, threads, pin;
    int pin_failed;
    double max_wait_s, qps, duration_s, warmup_s;
    unsigned long seed;
    /* state */
    pthread_mutex_t mu;
    pthread_cond_t cv;
    request *req;       /* every request, by arrival order */
    size_t cap, n_gen;  /* generated so far */
    size_t head;        /* first request not yet taken by a worker */
    int done_generating;
    struct timespec t0;
    worker *w;
    double svc_sum[1025];
    long svc_n[1025];
    double *bat;        /* (start, end, size) per batch */
    size_t n_bat, cap_bat;
};

static double since(const struct timespec *t0)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (t.tv_sec - t0->tv_sec) + (t.tv_nsec - t0->tv_nsec) * 1e-9;
}

static struct timespec at(const struct timespec *t0, double s)
{
    struct timespec t = *t0;
    double whole = (double)(long)s;
    t.tv_sec += (time_t)whole;
    t.tv_nsec += (long)((s - whole) * 1e9);
    while (t.tv_nsec >= 1000000000L) {
        t.tv_sec++;
        t.tv_nsec -= 1000000000L;
    }
    return t;
}

static void *generator(void *arg)
{
    serve *s = arg;
    if (s->pin && rb_pin_self(0)) {
        pthread_mutex_lock(&s->mu);
        s->pin_failed = 1;
        pthread_mutex_unlock(&s->mu);
    }
    gsl_rng *r = gsl_rng_alloc(gsl_rng_mt19937);
    if (!r) {
        pthread_mutex_lock(&s->mu);
        s->done_generating = 1;
        pthread_cond_broadcast(&s->cv);
        pthread_mutex_unlock(&s->mu);
        return NULL;
    }
    gsl_rng_set(r, s->seed);
    double t = 0;
    for (;;) {
        t += gsl_ran_exponential(r, 1.0 / s->qps);
        if (t >= s->duration_s)
            break;
        struct timespec when = at(&s->t0, t);
        while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &when, NULL) == EINTR)
            ;
        pthread_mutex_lock(&s->mu);
        if (s->n_gen == s->cap) { /* sized for 2x the expected count; grow if not */
            size_t nc = s->cap * 2;
            request *nr = realloc(s->req, nc * sizeof *nr);
            if (!nr) {
                pthread_mutex_unlock(&s->mu);
                break;
            }
            s->req = nr;
            s->cap = nc;
        }
        s->req[s->n_gen].arrival_s = t;
        s->req[s->n_gen].enqueued_s = since(&s->t0);
        s->req[s->n_gen].done_s = -1;
        s->req[s->n_gen].batch = 0;
        s->n_gen++;
        pthread_cond_broadcast(&s->cv);
        pthread_mutex_unlock(&s->mu);
    }
    pthread_mutex_lock(&s->mu);
    s->done_generating = 1;
    pthread_cond_broadcast(&s->cv);
    pthread_mutex_unlock(&s->mu);
    gsl_rng_free(r);
    return NULL;
}

static void *work(void *arg)
{
    worker *w = arg;
    serve *s = w->s;
    int rot = 0;
    int pin_bad = s->pin && rb_pool_pin(w->pool, 1 + (int)(w - s->w) * s->threads);
    pthread_mutex_lock(&s->mu);
    s->pin_failed |= pin_bad;
    for (;;) {
        while (s->head == s->n_gen && !s->done_generating)
            pthread_cond_wait(&s->cv, &s->mu);
        if (s->head == s->n_gen && s->done_generating)
            break;
        /* wait for a full batch or the oldest request's deadline */
        for (;;) {
            size_t waiting = s->n_gen - s->head;
            if (waiting >= (size_t)s->max_size || s->done_generating || !waiting)
                break;
            double deadline = s->req[s->head].arrival_s + s->max_wait_s;
            if (since(&s->t0) >= deadline)
                break;
            struct timespec dl = at(&s->t0, deadline);
            pthread_cond_timedwait(&s->cv, &s->mu, &dl);
        }
        size_t first = s->head, n = s->n_gen - s->head;
        if (!n)
            continue; /* another worker took them */
        if (n > (size_t)s->max_size)
            n = (size_t)s->max_size;
        /* when the batch could start: its last member queued (full) or
         * the oldest one's deadline, and the worker free */
        double ready = n == (size_t)s->max_size ? s->req[first + n - 1].enqueued_s
                       : s->done_generating     ? NAN
                                                : s->req[first].arrival_s + s->max_wait_s;
        if (ready < w->free_s)
            ready = w->free_s;
        s->head += n;
        pthread_mutex_unlock(&s->mu);

        double t_start = since(&s->t0);
        rb_cpu_net_forward(w->net, w->pool, (int)n, rot++);
        double t_end = since(&s->t0);
        double dispatch = isnan(ready) ? NAN : t_start > ready ? t_start - ready : 0.0;

        pthread_mutex_lock(&s->mu);
        for (size_t i = first; i < first + n; i++) {
            s->req[i].done_s = t_end;
            s->req[i].dispatch_s = dispatch;
            s->req[i].batch = (int)n;
        }
        w->free_s = t_end;
        w->busy_s += t_end - t_start;
        w->batches++;
        s->svc_sum[n] += t_end - t_start;
        s->svc_n[n]++;
        if (s->bat && s->n_bat < s->cap_bat) {
            s->bat[3 * s->n_bat] = t_start;
            s->bat[3 * s->n_bat + 1] = t_end;
            s->bat[3 * s->n_bat++ + 2] = (double)n;
        }
    }
    pthread_mutex_unlock(&s->mu);
    return NULL;
}

/* How steady the machine's speed was during the run: the batches that
 * started after the warm-up, grouped by start time into windows of
 * window_s, each batch's service time divided by the run's mean at its batch
 * size; per window the mean of those ratios ("relative", 1 = the run's
 * average speed; 1.2 = batches took 20% longer in that window), and the
 * slowest and fastest window. A queueing model with independent service
 * times assumes these stay near 1: with ~100 batches per window, i.i.d.
 * noise of cv 0.1 moves a window's mean by about 1%. */
enum { WINDOW_MIN_BATCHES = 10 };
static const double WINDOW_S = 0.5;

static void add_windows(cJSON *o, const serve *s, double window_s)
{
    cJSON_AddNumberToObject(o, "window_s", window_s);
    cJSON *rel = cJSON_AddArrayToObject(o, "relative");
    size_t nw = (size_t)((s->duration_s - s->warmup_s) / window_s) + 2;
    double *sum = calloc(nw, sizeof *sum);
    long *cnt = calloc(nw, sizeof *cnt);
    double lo = 0, hi = 0;
    if (sum && cnt) {
        for (size_t i = 0; i < s->n_bat; i++) { /* in completion order: workers interleave */
            double start = s->bat[3 * i];
            int b = (int)s->bat[3 * i + 2];
            if (start < s->warmup_s || s->svc_n[b] == 0)
                continue;
            size_t w = (size_t)((start - s->warmup_s) / window_s);
            if (w >= nw)
                continue;
            sum[w] += (s->bat[3 * i + 1] - start) / (s->svc_sum[b] / (double)s->svc_n[b]);
            cnt[w]++;
        }
        for (size_t w = 0; w < nw; w++) {
            if (cnt[w] < WINDOW_MIN_BATCHES) /* the run's ragged end */
                continue;
            double m = sum[w] / (double)cnt[w];
            cJSON_AddItemToArray(rel, cJSON_CreateNumber(m));
            lo = lo > 0 && lo < m ? lo : m;
            hi = hi > m ? hi : m;
        }
    }
    free(sum);
    free(cnt);
    if (cJSON_GetArraySize(rel) == 0) { /* no window of 10 batches */
        cJSON_AddNullToObject(o, "slowest");
        cJSON_AddNullToObject(o, "fastest");
    } else {
        cJSON_AddNumberToObject(o, "slowest", hi);
        cJSON_AddNumberToObject(o, "fastest", lo);
    }
}

/* Latency of one batch of max_size from a profile (INT8), for --load. */
static double profile_latency(const char *path, int batch, FILE *err)
{
    cJSON *p = rb_profile_read(path, err);
    if (!p)
        return -1;
    const cJSON *i8 = cJSON_GetObjectItemCaseSensitive(
        cJSON_GetObjectItemCaseSensitive(p, "precisions"), "int8");
    const cJSON *b = cJSON_GetObjectItemCaseSensitive(i8, "batch");
    const cJSON *l = cJSON_GetObjectItemCaseSensitive(i8, "latency_s");
    double v = -1;
    for (int i = 0; i < cJSON_GetArraySize(b); i++)
        if ((int)cJSON_GetArrayItem(b, i)->valuedouble == batch)
            v = cJSON_GetArrayItem(l, i)->valuedouble;
    if (v < 0)
        fprintf(err, "%s: no int8 latency at batch %d (needed for --load)\n", path, batch);
    cJSON_Delete(p);
    return v;
}

static const char *optv(int argc, char **argv, int *i, const char *name)
{
    size_t len = strlen(name);
    if (strncmp(argv[*i], name, len))
        return NULL;
    if (argv[*i][len] == '=')
        return argv[*i] + len + 1;
    if (argv[*i][len] || *i + 1 >= argc)
        return NULL;
    return argv[++*i];
}

static void usage(FILE *f)
{
    fprintf(f, "usage: realbench serve --model M.yaml (--qps Q | --load F --profile P.json)\n"
               "         [--duration-s 30] [--warmup-s 2] [--max-batch 16] [--max-wait-ms 5]\n"
               "         [--workers 1] [--threads N] [--seed 1] [--out R.json] [--latencies L.csv]\n"
               "         [--batches B.csv]\n"
               "         [--realtime] [--pin]\n"
               "  --load F: F times the capacity workers * max_batch / latency(max_batch),\n"
               "            the latency read from the profile's int8 table.\n"
               "  --realtime: generator and workers run SCHED_FIFO (needs CAP_SYS_NICE), as\n"
               "            `realbench cpu --realtime` does, to keep other processes out;\n"
               "  --pin: generator on CPU 0, worker k's threads on CPUs 1 + k * threads ..\n"
               "            (the layout of `realbench cpu --pin`).\n");
}

static void add_quantiles(cJSON *o, double *x, size_t n)
{
    gsl_sort(x, 1, n);
    cJSON_AddNumberToObject(o, "mean", n ? gsl_stats_mean(x, 1, n) : 0);
    cJSON_AddNumberToObject(o, "p50", n ? gsl_stats_quantile_from_sorted_data(x, 1, n, 0.50) : 0);
    cJSON_AddNumberToObject(o, "p90", n ? gsl_stats_quantile_from_sorted_data(x, 1, n, 0.90) : 0);
    cJSON_AddNumberToObject(o, "p99", n ? gsl_stats_quantile_from_sorted_data(x, 1, n, 0.99) : 0);
    cJSON_AddNumberToObject(o, "p999", n ? gsl_stats_quantile_from_sorted_data(x, 1, n, 0.999) : 0);
    cJSON_AddNumberToObject(o, "max", n ? x[n - 1] : 0);
}

int rb_serve_main(int argc, char **argv)
{
    serve s;
    memset(&s, 0, sizeof s);
    s.max_size = 16;
    s.max_wait_s = 0.005;
    s.workers = 1;
    s.duration_s = 30;
    s.warmup_s = 2;
    s.seed = 1;
    const char *model = NULL, *profile = NULL, *out = NULL, *lat_path = NULL, *bat_path = NULL, *v;
    double load = 0;
    int realtime = 0;
    rb_rt rt = {0, 0, 0};
    char sched[160] = "other (the default policy)";
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            usage(stdout);
            return 0;
        } else if ((v = optv(argc, argv, &i, "--model")))
            model = v;
        else if ((v = optv(argc, argv, &i, "--profile")))
            profile = v;
        else if ((v = optv(argc, argv, &i, "--out")))
            out = v;
        else if ((v = optv(argc, argv, &i, "--latencies")))
            lat_path = v;
        else if ((v = optv(argc, argv, &i, "--batches")))
            bat_path = v;
        else if ((v = optv(argc, argv, &i, "--qps")))
            s.qps = atof(v);
        else if ((v = optv(argc, argv, &i, "--load")))
            load = atof(v);
        else if ((v = optv(argc, argv, &i, "--duration-s")))
            s.duration_s = atof(v);
        else if ((v = optv(argc, argv, &i, "--warmup-s")))
            s.warmup_s = atof(v);
        else if ((v = optv(argc, argv, &i, "--max-batch")))
            s.max_size = atoi(v);
        else if ((v = optv(argc, argv, &i, "--max-wait-ms")))
            s.max_wait_s = atof(v) / 1e3;
        else if ((v = optv(argc, argv, &i, "--workers")))
            s.workers = atoi(v);
        else if ((v = optv(argc, argv, &i, "--threads")))
            s.threads = atoi(v);
        else if ((v = optv(argc, argv, &i, "--seed")))
            s.seed = strtoul(v, NULL, 10);
        else if (!strcmp(argv[i], "--realtime"))
            realtime = 1;
        else if (!strcmp(argv[i], "--pin"))
            s.pin = 1;
        else {
            fprintf(stderr, "realbench serve: unknown or incomplete option '%s'\n", argv[i]);
            usage(stderr);
            return 2;
        }
    }
    if (!model && profile) { /* the profile names its model */
        cJSON *p = rb_profile_read(profile, stderr);
        const char *f = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(
            cJSON_GetObjectItemCaseSensitive(p, "model"), "file"));
        static char buf[1024];
        if (f)
            snprintf(buf, sizeof buf, "%s", f), model = buf;
        cJSON_Delete(p);
    }
    if (!model || s.max_size < 1 || s.max_size > 1024 || s.max_wait_s < 0 || s.workers < 1 ||
        s.workers > 64 || s.duration_s <= 0 || s.warmup_s < 0 || s.warmup_s >= s.duration_s ||
        (!(s.qps > 0) && !(load > 0 && profile))) {
        usage(stderr);
        return 2;
    }
    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    if (s.threads < 1)
        s.threads = (int)(cores / s.workers > 0 ? cores / s.workers : 1);
    if (!(s.qps > 0)) {
        double l = profile_latency(profile, s.max_size, stderr);
        if (l <= 0)
            return 2;
        s.qps = load * s.workers * s.max_size / l;
    }
    rb_model *m = rb_model_load(model, stderr);
    if (!m)
        return 2;
    /* before any thread exists: generator, workers and pools inherit it */
    if (realtime && rb_rt_enter(&rt, sched, sizeof sched))
        fprintf(stderr, "serve: --realtime: %s; serving at the default priority\n", sched);
    int rc = 1;
    s.cap = (size_t)(s.qps * s.duration_s * 2) + 1024;
    s.req = malloc(s.cap * sizeof *s.req);
    s.cap_bat = s.cap;
    s.bat = malloc(3 * s.cap_bat * sizeof *s.bat);
    s.w = calloc((size_t)s.workers, sizeof *s.w);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&s.cv, &ca);
    pthread_condattr_destroy(&ca);
    pthread_mutex_init(&s.mu, NULL);
    double *lat = NULL;
    cJSON *res = NULL;
    int started = 0;
    if (!s.req || !s.w)
        goto out;
    for (int i = 0; i < s.workers; i++) {
        s.w[i].s = &s;
        s.w[i].net = rb_cpu_net_new(m, RB_INT8, s.max_size, 4, s.seed + 100 + i, stderr);
        s.w[i].pool = rb_pool_new(s.threads);
        if (!s.w[i].net || !s.w[i].pool)
            goto out;
        if (rb_cpu_net_check(s.w[i].net, s.w[i].pool, s.max_size, stderr))
            goto out;
        for (int r = 0; r < 20; r++) /* warm caches and the pool */
            rb_cpu_net_forward(s.w[i].net, s.w[i].pool, 1 + r % s.max_size, r);
    }
    fprintf(stderr, "serve: %s, %.1f QPS for %.0f s, max_batch %d, max_wait %.2f ms, %d worker(s) x %d thread(s)\n",
            m->name, s.qps, s.duration_s, s.max_size, s.max_wait_s * 1e3, s.workers, s.threads);
    clock_gettime(CLOCK_MONOTONIC, &s.t0);
    pthread_t gen;
    for (int i = 0; i < s.workers; i++)
        if (!pthread_create(&s.w[i].th, NULL, work, &s.w[i]))
            started++;
    if (started < s.workers || pthread_create(&gen, NULL, generator, &s)) {
        pthread_mutex_lock(&s.mu);
        s.done_generating = 1;
        pthread_cond_broadcast(&s.cv);
        pthread_mutex_unlock(&s.mu);
        for (int i = 0; i < started; i++)
            pthread_join(s.w[i].th, NULL);
        fprintf(stderr, "serve: cannot start threads\n");
        goto out;
    }
    pthread_join(gen, NULL);
    for (int i = 0; i < s.workers; i++)
        pthread_join(s.w[i].th, NULL);
    double wall = since(&s.t0);

    size_t n = 0, nb = 0, nd = 0;
    double bsum = 0, late = 0, dispatch = 0;
    lat = malloc((s.n_gen ? s.n_gen : 1) * sizeof *lat);
    if (!lat)
        goto out;
    for (size_t i = 0; i < s.n_gen; i++)
        if (s.req[i].arrival_s >= s.warmup_s && s.req[i].done_s >= 0) {
            lat[n++] = s.req[i].done_s - s.req[i].arrival_s;
            bsum += s.req[i].batch;
            nb++;
            late += s.req[i].enqueued_s - s.req[i].arrival_s;
            if (!isnan(s.req[i].dispatch_s)) {
                dispatch += s.req[i].dispatch_s;
                nd++;
            }
        }
    if (lat_path) {
        FILE *f = fopen(lat_path, "w");
        if (f) {
            fprintf(f, "arrival_s,latency_s,batch\n");
            for (size_t i = 0; i < s.n_gen; i++)
                fprintf(f, "%.9f,%.9f,%d\n", s.req[i].arrival_s,
                        s.req[i].done_s - s.req[i].arrival_s, s.req[i].batch);
            fclose(f);
        }
    }
    if (bat_path && s.bat) {
        FILE *f = fopen(bat_path, "w");
        if (f) {
            fprintf(f, "start_s,end_s,size\n");
            for (size_t i = 0; i < s.n_bat; i++)
                fprintf(f, "%.9f,%.9f,%.0f\n", s.bat[3 * i], s.bat[3 * i + 1], s.bat[3 * i + 2]);
            fclose(f);
        }
    }
    res = cJSON_CreateObject();
    cJSON_AddStringToObject(res, "schema", "fleetsim-serve/1");
    cJSON *mo = cJSON_AddObjectToObject(res, "model");
    cJSON_AddStringToObject(mo, "name", m->name);
    cJSON_AddStringToObject(mo, "file", m->file);
    cJSON_AddStringToObject(res, "precision", "int8");
    cJSON *st = cJSON_AddObjectToObject(res, "settings");
    cJSON_AddNumberToObject(st, "qps", s.qps);
    if (load > 0)
        cJSON_AddNumberToObject(st, "load", load);
    cJSON_AddNumberToObject(st, "duration_s", s.duration_s);
    cJSON_AddNumberToObject(st, "warmup_s", s.warmup_s);
    cJSON_AddNumberToObject(st, "max_batch", s.max_size);
    cJSON_AddNumberToObject(st, "max_wait_s", s.max_wait_s);
    cJSON_AddNumberToObject(st, "workers", s.workers);
    cJSON_AddNumberToObject(st, "threads_per_worker", s.threads);
    cJSON_AddNumberToObject(st, "seed", (double)s.seed);
    cJSON_AddStringToObject(st, "sched", sched);
    if (s.pin)
        cJSON_AddStringToObject(st, "pin", s.pin_failed ? "failed: ran unpinned"
                                                        : "generator CPU 0, worker k CPUs 1 + k * threads ..");
    if (profile)
        cJSON_AddStringToObject(st, "profile", profile);
    cJSON *rq = cJSON_AddObjectToObject(res, "requests");
    cJSON_AddNumberToObject(rq, "generated", (double)s.n_gen);
    cJSON_AddNumberToObject(rq, "measured", (double)n);
    cJSON_AddNumberToObject(res, "throughput_qps", s.n_gen / s.duration_s);
    cJSON_AddNumberToObject(res, "wall_time_s", wall);
    add_quantiles(cJSON_AddObjectToObject(res, "latency_s"), lat, n);
    cJSON_AddNumberToObject(res, "mean_batch_size", nb ? bsum / nb : 0);
    /* the loop's own hand-offs, per measured request on average: the
     * generator's lateness (its timer wakes after the scheduled arrival)
     * and the batch's dispatch (the worker's wake-up once the batch is due) */
    cJSON *ho = cJSON_AddObjectToObject(res, "handoff_s");
    cJSON_AddNumberToObject(ho, "generator_late_mean", n ? late / (double)n : 0);
    cJSON_AddNumberToObject(ho, "dispatch_mean", nd ? dispatch / (double)nd : 0);
    double busy = 0;
    long batches = 0;
    for (int i = 0; i < s.workers; i++)
        busy += s.w[i].busy_s, batches += s.w[i].batches;
    cJSON_AddNumberToObject(res, "utilization", busy / (wall * s.workers));
    cJSON_AddNumberToObject(res, "batches", (double)batches);
    cJSON *sv = cJSON_AddObjectToObject(res, "service_s");
    cJSON *svb = cJSON_AddArrayToObject(sv, "batch");
    cJSON *svm = cJSON_AddArrayToObject(sv, "mean");
    cJSON *svc = cJSON_AddArrayToObject(sv, "count");
    for (int b = 1; b <= s.max_size; b++)
        if (s.svc_n[b]) {
            cJSON_AddItemToArray(svb, cJSON_CreateNumber(b));
            cJSON_AddItemToArray(svm, cJSON_CreateNumber(s.svc_sum[b] / s.svc_n[b]));
            cJSON_AddItemToArray(svc, cJSON_CreateNumber((double)s.svc_n[b]));
        }
    add_windows(cJSON_AddObjectToObject(res, "service_windows"), &s, WINDOW_S);
    char *txt = cJSON_Print(res);
    if (out) {
        FILE *f = fopen(out, "w");
        if (!f || fputs(txt, f) < 0 || fclose(f)) {
            fprintf(stderr, "%s: cannot write\n", out);
            free(txt);
            goto out;
        }
    }
    const cJSON *L = cJSON_GetObjectItemCaseSensitive(res, "latency_s");
    printf("serve: %zu requests (%zu measured), mean batch %.2f, utilisation %.2f; latency ms: "
           "p50 %.3f p90 %.3f p99 %.3f max %.3f\n",
           s.n_gen, n, nb ? bsum / nb : 0, busy / (wall * s.workers),
           cJSON_GetObjectItemCaseSensitive(L, "p50")->valuedouble * 1e3,
           cJSON_GetObjectItemCaseSensitive(L, "p90")->valuedouble * 1e3,
           cJSON_GetObjectItemCaseSensitive(L, "p99")->valuedouble * 1e3,
           cJSON_GetObjectItemCaseSensitive(L, "max")->valuedouble * 1e3);
    if (!out)
        printf("%s\n", txt);
    free(txt);
    rc = 0;
out:
    cJSON_Delete(res);
    free(lat);
    for (int i = 0; s.w && i < s.workers; i++) {
        rb_cpu_net_free(s.w[i].net);
        rb_pool_free(s.w[i].pool);
    }
    free(s.w);
    free(s.req);
    free(s.bat);
    pthread_mutex_destroy(&s.mu);
    pthread_cond_destroy(&s.cv);
    rb_model_free(m);
    rb_rt_leave(&rt);
    return rc;
}
