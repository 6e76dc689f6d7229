/*
 * cpu_bench.c - the CPU benchmark: every precision and batch of one model.
 *
 * Per precision: check the kernels against the references at a few small
 * batches (one column-split and one row-split case, odd sizes for the tails),
 * then, per batch size in ascending order, run `warmup` untimed forward passes
 * and `reps` timed ones (clock_gettime(CLOCK_MONOTONIC) around each), on input
 * buffer sets rotated so that the inputs are not always in cache. A time
 * budget keeps the default run short on small machines: a quick probe at
 * batch 1 estimates each batch's cost (linear in the batch, an over-estimate
 * for the large ones), batches that would not fit are skipped and listed in
 * the metadata, never silently dropped. Buffers are sized for the largest
 * batch kept.
 *
 * Serving conditions (rb_cpu_opts: workers, duty, interleave): a serving
 * worker sleeps between batches and runs batch sizes in no fixed order, and
 * on a machine whose cores are shared with other processes that matters: the
 * scheduler gives a thread that sleeps part of the time a prompt CPU when it
 * wakes, and time-slices one that never sleeps against the other runnable
 * processes, so back-to-back passes can measure several times the latency a
 * serving loop sees. With --duty U each worker sleeps after every pass so that
 * it is busy a fraction U of the time; with --interleave each round times
 * every batch size once, in a shuffled order; with --workers W that many
 * instances (own network and pool each) run at once. With realtime, the
 * threads run SCHED_FIFO (rb_rt_enter), which keeps other processes' work
 * out of the timings altogether when the machine allows it.
 */
#include "realbench.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <gsl/gsl_randist.h>
#include <gsl/gsl_rng.h>
#include <gsl/gsl_sort.h>
#include <gsl/gsl_statistics_double.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>

void rb_cpu_opts_default(rb_cpu_opts *o)
{
    static int batches[] = {1, 2, 4, 8, 16, 32, 64, 128, 256, 512};
    memset(o, 0, sizeof *o);
    o->batches = batches;
    o->n_batches = (int)(sizeof batches / sizeof *batches);
    o->reps = 30;
    o->warmup = 3;
    o->rotate = 4;
    o->threads = 0;
    o->precisions = (1 << RB_INT8) | (1 << RB_FP32);
    o->seed = 42;
    o->budget_s = 40;
    o->workers = 1;
    o->duty = 0;
    o->interleave = 0;
    o->center_mean = 0;
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

static int online_cores(void)
{
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n > 0 ? (int)n : 1;
}

void rb_cpu_device_meta(rb_raw *raw, int threads)
{
    char name[256] = "unknown cpu", mhz[64] = "0", buf[512];
    FILE *f = fopen("/proc/cpuinfo", "r");
    while (f && fgets(buf, sizeof buf, f)) {
        char *c = strchr(buf, ':');
        if (!c)
            continue;
        c += 1 + (c[1] == ' ');
        c[strcspn(c, "\n")] = 0;
        if (!strncmp(buf, "model name", 10) && !strcmp(name, "unknown cpu"))
            snprintf(name, sizeof name, "%s", c);
        else if (!strncmp(buf, "cpu MHz", 7) && !strcmp(mhz, "0"))
            snprintf(mhz, sizeof mhz, "%s", c);
    }
    if (f)
        fclose(f);
    struct utsname u;
    char q[300];
    snprintf(q, sizeof q, "\"%s\"", name);
    rb_raw_set_meta(raw, "device.kind", "\"cpu\"");
    rb_raw_set_meta(raw, "device.name", q);
    snprintf(q, sizeof q, "%d", online_cores());
    rb_raw_set_meta(raw, "device.cores_or_sms", q);
    rb_raw_set_meta(raw, "device.clock_mhz", mhz);
    snprintf(q, sizeof q, "%d", threads);
    rb_raw_set_meta(raw, "device.threads", q);
    if (!uname(&u)) {
        snprintf(q, sizeof q, "\"linux %.200s %.40s\"", u.release, u.machine);
        rb_raw_set_meta(raw, "device.driver", q);
    }
    rb_raw_set_meta(raw, "device.cuda", "\"\"");
    /* other work on the machine skews CPU timings: say how busy it was */
    FILE *la = fopen("/proc/loadavg", "r");
    double l1;
    if (la && fscanf(la, "%lf", &l1) == 1) {
        snprintf(q, sizeof q, "%.2f", l1);
        rb_raw_set_meta(raw, "host.loadavg_1m_at_start", q);
    }
    if (la)
        fclose(la);
    snprintf(q, sizeof q, "\"gcc %s\"", __VERSION__);
    rb_raw_set_meta(raw, "device.compiler", q);
}

static double median(const double *x, size_t n)
{
    double *c = malloc(n * sizeof *c);
    if (!c || !n) {
        free(c);
        return 0;
    }
    memcpy(c, x, n * sizeof *c);
    gsl_sort(c, 1, n);
    double m = gsl_stats_median_from_sorted_data(c, 1, n);
    free(c);
    return m;
}

static void sleep_s(double s)
{
    if (!(s > 0))
        return;
    struct timespec ts;
    ts.tv_sec = (time_t)s;
    ts.tv_nsec = (long)((s - (double)ts.tv_sec) * 1e9);
    while (nanosleep(&ts, &ts) == -1 && errno == EINTR)
        ;
}

/* One forward pass, timed; then, with a duty cycle, the pause that keeps the
 * worker busy that fraction of the time. */
static double pass(rb_cpu_net *net, rb_pool *pool, int b, int rot, double duty)
{
    double t0 = now_s();
    rb_cpu_net_forward(net, pool, b, rot);
    double t = now_s() - t0;
    if (duty > 0 && duty < 1)
        sleep_s(t * (1 - duty) / duty);
    return t;
}

/* One worker of the timed part: its own network and pool. */
typedef struct {
    const rb_cpu_opts *o;
    rb_cpu_net *net;
    rb_pool *pool;
    const int *bs; /* batch sizes, ascending */
    int nb;
    double *t;     /* [nb][reps] */
    int *done;     /* repetitions timed per size; 0 = skipped (budget) */
    double stop_at; /* now_s() after which no more sizes/rounds start; 0 none */
    unsigned long seed;
    int cpu0, pin_failed; /* --pin: first CPU of this worker's threads */
    pthread_t th;
} bench_worker;

static void *bench_run(void *arg)
{
    bench_worker *w = arg;
    const rb_cpu_opts *o = w->o;
    int rot = 0, reps = o->reps;
    if (o->pin && rb_pool_pin(w->pool, w->cpu0))
        w->pin_failed = 1;
    if (!o->interleave) {
        for (int i = 0; i < w->nb; i++) {
            if (w->stop_at > 0 && now_s() > w->stop_at && w->bs[i] > 1)
                continue;
            for (int r = 0; r < o->warmup; r++)
                pass(w->net, w->pool, w->bs[i], rot++, o->duty);
            for (int r = 0; r < reps; r++)
                w->t[(size_t)i * reps + r] = pass(w->net, w->pool, w->bs[i], rot++, o->duty);
            w->done[i] = reps;
        }
        return NULL;
    }
    int *order = malloc((size_t)w->nb * sizeof *order);
    gsl_rng *rng = gsl_rng_alloc(gsl_rng_mt19937);
    if (!order || !rng) {
        free(order);
        gsl_rng_free(rng);
        return NULL; /* nothing done: every size is reported skipped */
    }
    gsl_rng_set(rng, w->seed);
    for (int i = 0; i < w->nb; i++)
        order[i] = i;
    for (int r = 0; r < o->warmup; r++)
        for (int i = 0; i < w->nb; i++)
            pass(w->net, w->pool, w->bs[i], rot++, o->duty);
    for (int r = 0; r < reps; r++) {
        /* at least 3 rounds, so that every size has a median */
        if (r >= 3 && w->stop_at > 0 && now_s() > w->stop_at)
            break;
        gsl_ran_shuffle(rng, order, (size_t)w->nb, sizeof *order);
        for (int k = 0; k < w->nb; k++) {
            int i = order[k];
            w->t[(size_t)i * reps + r] = pass(w->net, w->pool, w->bs[i], rot++, o->duty);
            w->done[i] = r + 1;
        }
    }
    free(order);
    gsl_rng_free(rng);
    return NULL;
}

int rb_cpu_bench(const rb_cpu_opts *o, rb_raw *raw, FILE *log, FILE *err)
{
    rb_model *m = rb_model_load(o->model_path, err);
    if (!m)
        return 2;
    int threads = o->threads > 0 ? o->threads : online_cores();
    int nw = o->workers > 0 ? o->workers : 1, reps = o->reps > 0 ? o->reps : 1;
    double duty = o->duty > 0 && o->duty < 1 ? o->duty : 0;
    rb_rt rt = {0, 0, 0};
    char sched[160] = "other (the default policy)";
    if (o->realtime && rb_rt_enter(&rt, sched, sizeof sched))
        fprintf(err, "realbench: --realtime: %s; timing at the default priority\n", sched);
    rb_pool *pool = rb_pool_new(threads);
    bench_worker *w = calloc((size_t)nw, sizeof *w);
    double *t = malloc((size_t)(reps > 5 ? reps : 5) * nw * sizeof *t);
    int rc = 0, np = 0;
    if (!pool || !t || !w) {
        fprintf(err, "realbench: cannot start %d threads\n", threads);
        rc = 1;
        goto out;
    }
    for (int k = 1; k < nw; k++)
        if (!(w[k].pool = rb_pool_new(threads))) {
            fprintf(err, "realbench: cannot start %d threads for worker %d\n", threads, k);
            rc = 1;
            goto out;
        }
    w[0].pool = pool;
    char v[600];
    time_t now = time(NULL);
    strftime(v, sizeof v, "\"%Y-%m-%dT%H:%M:%SZ\"", gmtime(&now));
    rb_raw_set_meta(raw, "created", v);
    rb_cpu_device_meta(raw, rb_pool_size(pool));
    snprintf(v, sizeof v, "\"%s\"", m->name);
    rb_raw_set_meta(raw, "model.name", v);
    snprintf(v, sizeof v, "\"%s\"", m->file);
    rb_raw_set_meta(raw, "model.file", v);
    snprintf(v, sizeof v, "%.0f", rb_model_macs_per_item(m));
    rb_raw_set_meta(raw, "model.macs_per_item", v);
    snprintf(v, sizeof v, "%d", o->reps);
    rb_raw_set_meta(raw, "settings.reps", v);
    snprintf(v, sizeof v, "%d", o->warmup);
    rb_raw_set_meta(raw, "settings.warmup", v);
    snprintf(v, sizeof v, "%d", o->rotate);
    rb_raw_set_meta(raw, "settings.rotate", v);
    snprintf(v, sizeof v, "%g", o->budget_s);
    rb_raw_set_meta(raw, "settings.budget_s", v);
    rb_raw_set_meta(raw, "settings.timer", "\"clock_gettime(CLOCK_MONOTONIC) around each forward pass\"");
    snprintf(v, sizeof v, "%d", nw);
    rb_raw_set_meta(raw, "settings.workers", v);
    snprintf(v, sizeof v, "%g", duty);
    rb_raw_set_meta(raw, "settings.duty", v);
    rb_raw_set_meta(raw, "settings.order", o->interleave ? "\"interleaved\"" : "\"as given\"");
    rb_raw_set_meta(raw, "settings.center", o->center_mean ? "\"mean\"" : "\"median\"");
    snprintf(v, sizeof v, "\"%s\"", sched);
    rb_raw_set_meta(raw, "settings.sched", v);
    if (o->pin) {
        snprintf(v, sizeof v, "\"worker k on CPUs 1 + k * %d ..\"", threads);
        rb_raw_set_meta(raw, "settings.pin", v);
    }
    for (int p = 0; p < 2; p++)
        np += (o->precisions >> p) & 1;
    for (int p = 0; p < 2; p++) {
        if (!((o->precisions >> p) & 1))
            continue;
        const char *pn = rb_cpu_precision_name((rb_cpu_precision)p);
        double start = now_s(), budget = o->budget_s > 0 ? o->budget_s / np : 0;
        /* checks at small batches */
        static const int check_b[] = {1, 3, 33};
        rb_cpu_net *probe = rb_cpu_net_new(m, (rb_cpu_precision)p, 33, 1, o->seed + p, err);
        if (!probe) {
            rc = 1;
            goto out;
        }
        for (int i = 0; i < 3; i++) {
            if (i && rb_model_macs_per_item(m) * check_b[i] > 2e9)
                break;
            if (rb_cpu_net_check(probe, pool, check_b[i], err)) {
                fprintf(err, "realbench: %s kernels fail their check; nothing timed\n", pn);
                rb_raw_set_meta(raw, (snprintf(v, sizeof v, "check.%s", pn), v), "\"FAIL\"");
                rb_cpu_net_free(probe);
                rc = 1;
                goto out;
            }
        }
        char key[80];
        snprintf(key, sizeof key, "check.%s", pn);
        rb_raw_set_meta(raw, key, "\"ok: every op matches the reference at small batches\"");
        /* probe cost at batch 1 to keep within the budget */
        pass(probe, pool, 1, 0, 0);
        for (int r = 0; r < 5; r++)
            t[r] = pass(probe, pool, 1, r + 1, 0);
        double t1 = median(t, 5);
        rb_cpu_net_free(probe);
        /* sizes kept: what the budget allows (workers run side by side) */
        int keep_max = 0, nb = 0;
        int *bs = malloc((size_t)o->n_batches * sizeof *bs);
        double est = now_s() - start;
        for (int i = 0; bs && i < o->n_batches; i++) {
            double cost = t1 * o->batches[i] * (reps + o->warmup) / (duty > 0 ? duty : 1);
            if (budget > 0 && est + cost > budget && o->batches[i] > 1)
                continue;
            est += cost;
            keep_max = o->batches[i] > keep_max ? o->batches[i] : keep_max;
        }
        if (!keep_max)
            keep_max = 1;
        for (int i = 0; bs && i < o->n_batches; i++)
            if (o->batches[i] <= keep_max)
                bs[nb++] = o->batches[i];
        int started = 0, bad = !bs;
        for (int k = 0; !bad && k < nw; k++) {
            w[k].o = o;
            w[k].bs = bs;
            w[k].nb = nb;
            w[k].stop_at = budget > 0 ? start + budget : 0;
            w[k].seed = o->seed + 7919u * (unsigned long)(k + 1) + (unsigned long)p;
            w[k].cpu0 = 1 + k * threads;
            w[k].net = rb_cpu_net_new(m, (rb_cpu_precision)p, keep_max, o->rotate,
                                      o->seed + p + 1000u * (unsigned long)k, err);
            w[k].t = calloc((size_t)(nb ? nb : 1) * reps, sizeof *w[k].t);
            w[k].done = calloc((size_t)(nb ? nb : 1), sizeof *w[k].done);
            bad |= !w[k].net || !w[k].t || !w[k].done;
        }
        /* every worker on a thread of its own (so that pinning one leaves
         * this thread as it was); they inherit this thread's scheduling */
        for (int k = 0; !bad && k < nw; k++) {
            if (pthread_create(&w[k].th, NULL, bench_run, &w[k])) {
                fprintf(err, "realbench: cannot start worker %d\n", k);
                bad = 1;
                break;
            }
            started = k + 1;
        }
        for (int k = 0; k < started; k++)
            pthread_join(w[k].th, NULL);
        for (int k = 0; k < nw; k++)
            if (w[k].pin_failed) {
                fprintf(err, "realbench: --pin: worker %d cannot be pinned to CPUs %d..%d; "
                        "ran unpinned\n", k, w[k].cpu0, w[k].cpu0 + threads - 1);
                rb_raw_set_meta(raw, "settings.pin", "\"failed: ran unpinned\"");
            }
        if (!bad && !o->quiet)
            fprintf(log, "%-5s %5s %12s %12s %14s %6s\n", pn, "batch", "median_ms", "min_ms",
                    "per_item_us", "reps");
        for (int i = 0; !bad && i < o->n_batches; i++) {
            int b = o->batches[i], j = -1, n = 0;
            for (int q = 0; q < nb; q++)
                if (bs[q] == b)
                    j = q;
            for (int k = 0; j >= 0 && k < nw; k++)
                for (int r = 0; r < w[k].done[j]; r++)
                    t[n++] = w[k].t[(size_t)j * reps + r];
            if (!n) {
                snprintf(key, sizeof key, "skipped.%s.batch_%d", pn, b);
                snprintf(v, sizeof v, "\"over the time budget of %g s (--budget-s)\"", budget);
                rb_raw_set_meta(raw, key, v);
                if (!o->quiet)
                    fprintf(log, "%-5s %5d   skipped: over the time budget (--budget-s)\n", pn, b);
                continue;
            }
            if (rb_raw_add(raw, pn, p == RB_INT8 ? "cpu-int8-dot" : "cpu-fp32-dot", b, t,
                           (size_t)n)) {
                bad = 1;
                break;
            }
            if (!o->quiet) {
                double mn = t[0];
                for (int r = 1; r < n; r++)
                    mn = t[r] < mn ? t[r] : mn;
                double md = median(t, (size_t)n);
                fprintf(log, "%-5s %5d %12.4f %12.4f %14.3f %6d\n", pn, b, md * 1e3, mn * 1e3,
                        md / b * 1e6, n);
            }
        }
        for (int k = 0; k < nw; k++) {
            rb_cpu_net_free(w[k].net);
            free(w[k].t);
            free(w[k].done);
            w[k].net = NULL, w[k].t = NULL, w[k].done = NULL;
        }
        free(bs);
        if (bad) {
            fprintf(err, "realbench: out of memory or threads timing %s\n", pn);
            rc = 1;
            goto out;
        }
    }
out:
    free(t);
    for (int k = 1; w && k < nw; k++)
        rb_pool_free(w[k].pool);
    free(w);
    rb_pool_free(pool);
    rb_model_free(m);
    rb_rt_leave(&rt);
    return rc;
}
