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
 */
#include "realbench.h"

#include <cjson/cJSON.h>
#include <gsl/gsl_sort.h>
#include <gsl/gsl_statistics_double.h>
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

static int time_batch(rb_cpu_net *net, rb_pool *pool, int b, int warmup, int reps, double *t)
{
    for (int r = 0; r < warmup; r++)
        rb_cpu_net_forward(net, pool, b, r);
    for (int r = 0; r < reps; r++) {
        double t0 = now_s();
        rb_cpu_net_forward(net, pool, b, warmup + r);
        t[r] = now_s() - t0;
    }
    return 0;
}

int rb_cpu_bench(const rb_cpu_opts *o, rb_raw *raw, FILE *log, FILE *err)
{
    rb_model *m = rb_model_load(o->model_path, err);
    if (!m)
        return 2;
    int threads = o->threads > 0 ? o->threads : online_cores();
    rb_pool *pool = rb_pool_new(threads);
    double *t = malloc((size_t)(o->reps > 5 ? o->reps : 5) * sizeof *t);
    int rc = 0, np = 0;
    if (!pool || !t) {
        fprintf(err, "realbench: cannot start %d threads\n", threads);
        rc = 1;
        goto out;
    }
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
    for (int p = 0; p < 2; p++)
        np += (o->precisions >> p) & 1;
    for (int p = 0; p < 2; p++) {
        if (!((o->precisions >> p) & 1))
            continue;
        const char *pn = rb_cpu_precision_name((rb_cpu_precision)p);
        double start = now_s(), budget = o->budget_s > 0 ? o->budget_s / np : 0;
        /* checks at small batches */
        static const int check_b[] = {1, 3, 33};
        int maxb = 1;
        for (int i = 0; i < o->n_batches; i++)
            maxb = o->batches[i] > maxb ? o->batches[i] : maxb;
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
        time_batch(probe, pool, 1, 1, 5, t);
        double t1 = median(t, 5);
        rb_cpu_net_free(probe);
        int keep_max = 0;
        double est = now_s() - start;
        for (int i = 0; i < o->n_batches; i++) {
            double cost = t1 * o->batches[i] * (o->reps + o->warmup);
            if (budget > 0 && est + cost > budget)
                continue;
            est += cost;
            keep_max = o->batches[i] > keep_max ? o->batches[i] : keep_max;
        }
        if (!keep_max)
            keep_max = 1;
        rb_cpu_net *net = rb_cpu_net_new(m, (rb_cpu_precision)p, keep_max, o->rotate, o->seed + p, err);
        if (!net) {
            rc = 1;
            goto out;
        }
        if (!o->quiet)
            fprintf(log, "%-5s %5s %12s %12s %14s\n", pn, "batch", "median_ms", "min_ms",
                     "per_item_us");
        for (int i = 0; i < o->n_batches; i++) {
            int b = o->batches[i];
            if (b > keep_max || (budget > 0 && now_s() - start > budget && b > 1)) {
                snprintf(key, sizeof key, "skipped.%s.batch_%d", pn, b);
                snprintf(v, sizeof v, "\"over the time budget of %g s (--budget-s)\"", budget);
                rb_raw_set_meta(raw, key, v);
                if (!o->quiet)
                    fprintf(log, "%-5s %5d   skipped: over the time budget (--budget-s)\n", pn, b);
                continue;
            }
            time_batch(net, pool, b, o->warmup, o->reps, t);
            rb_raw_add(raw, pn, p == RB_INT8 ? "cpu-int8-dot" : "cpu-fp32-dot", b, t,
                       (size_t)o->reps);
            if (!o->quiet) {
                double mn = t[0];
                for (int r = 1; r < o->reps; r++)
                    mn = t[r] < mn ? t[r] : mn;
                double md = median(t, (size_t)o->reps);
                fprintf(log, "%-5s %5d %12.4f %12.4f %14.3f\n", pn, b, md * 1e3, mn * 1e3,
                        md / b * 1e6);
            }
        }
        rb_cpu_net_free(net);
    }
out:
    free(t);
    rb_pool_free(pool);
    rb_model_free(m);
    return rc;
}
