/*
 * llm_loop.c - step noise and the closed loop for LLMs, on this CPU.
 *
 * Step noise: a long run of scheduler steps of one composition timed back
 * to back (rb_llm_noise_record), and its fit (rb_llm_noise_fit): the cv
 * of the step times, the lag-1 autocorrelation of their logarithms and
 * the correlation time it gives, the model fleetsim's
 * models.<m>.llm.step.noise draws from (sim/base/llm_noise.c: a lognormal
 * factor whose log is an AR(1) in time, exp(-dt / correlation_s) between
 * steps dt apart). `realbench llm-step --noise-steps N` writes it into the
 * profile's llm_step.noise.
 *
 * The closed loop (`realbench llm-loop`): a real token-serving loop. The
 * layer stack llm_step.c times runs every step; requests with prompt and
 * answer lengths arrive Poisson; a continuous-batching scheduler with a
 * token budget forms each step as vLLM v1 does without memory pressure
 * (running sequences first, in admission order, a prompt chunk or one
 * decode token each; then waiting requests, first come first served, while
 * sequences and budget last; vllm/v1/core/sched/scheduler.py). A step's
 * tokens are out when it ends: a prompt's last chunk gives the first token
 * (TTFT), each later step one more, the last one the end (E2E). The loop's
 * capacity is measured first (every request of a batch there at once), then
 * it runs at 50% and 80% of it; each run's arrivals and token counts are
 * written as a trace that fleetsim replays in a generated scenario with
 * the profile calibrated here (alpha_beta and the noise), and once more
 * without the noise. compare.json sets mean and p99 of TTFT and E2E side
 * by side, with the loop's 95% confidence intervals, and a third
 * prediction whose step model is rescaled, per load, by the loop's own
 * measured step time over the model's on the same compositions (how much
 * slower the machine ran than while calibrating), to tell the queue's
 * error from the machine's drift.
 */
#define _XOPEN_SOURCE 700 /* realpath, clock_nanosleep */
#include "llm_layer.h"
#include "realbench.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <gsl/gsl_randist.h>
#include <gsl/gsl_rng.h>
#include <gsl/gsl_sort.h>
#include <gsl/gsl_statistics_double.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* ---- step noise -------------------------------------------------------- */

int rb_llm_noise_fit(const double *step_s, size_t n, rb_llm_noise *out)
{
    memset(out, 0, sizeof *out);
    if (n < 10)
        return -1;
    double *y = malloc(sizeof *y * n);
    if (!y)
        return -1;
    for (size_t i = 0; i < n; i++) {
        if (!(step_s[i] > 0) || !isfinite(step_s[i])) {
            free(y);
            return -1;
        }
        y[i] = log(step_s[i]);
    }
    out->steps = n;
    out->mean_s = gsl_stats_mean(step_s, 1, n);
    out->cv = gsl_stats_sd_m(step_s, 1, n, out->mean_s) / out->mean_s;
    out->lag1 = gsl_stats_lag1_autocorrelation(y, 1, n);
    memcpy(y, step_s, sizeof *y * n);
    gsl_sort(y, 1, n);
    out->median_s = gsl_stats_median_from_sorted_data(y, 1, n);
    free(y);
    /* steps back to back: one starts as the previous ends */
    out->dt_s = out->mean_s;
    if (!(out->lag1 < 1))
        return -1;
    out->correlation_s = out->lag1 > 0 ? -out->dt_s / log(out->lag1) : 0;
    return 0;
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

enum { NOISE_SEQS = 16, NOISE_CTX = 512 };

int rb_llm_noise_record(const rb_llm_opts *o, size_t n, double **step_s)
{
    *step_s = NULL;
    rb_llm_net *net = rb_llm_net_new(o, o->precision, NOISE_SEQS, NOISE_CTX + 1);
    double *t = malloc(sizeof *t * (n ? n : 1));
    if (!net || !t) {
        rb_llm_net_free(net);
        free(t);
        return 1;
    }
    rb_llm_chunk ch[NOISE_SEQS];
    for (int i = 0; i < NOISE_SEQS; i++)
        ch[i] = (rb_llm_chunk){ 1, NOISE_CTX };
    for (int r = 0; r < o->warmup; r++)
        rb_llm_net_step(net, ch, NOISE_SEQS);
    double t0 = now_s();
    for (size_t i = 0; i < n; i++) {
        rb_llm_net_step(net, ch, NOISE_SEQS);
        double t1 = now_s();
        t[i] = t1 - t0;
        t0 = t1;
    }
    rb_llm_net_free(net);
    *step_s = t;
    return 0;
}

cJSON *rb_llm_noise_json(const rb_llm_noise *nz)
{
    cJSON *j = cJSON_CreateObject();
    cJSON_AddNumberToObject(j, "cv", nz->cv);
    cJSON_AddNumberToObject(j, "correlation_s", nz->correlation_s);
    cJSON_AddNumberToObject(j, "lag1", nz->lag1);
    cJSON_AddNumberToObject(j, "dt_s", nz->dt_s);
    cJSON_AddNumberToObject(j, "mean_s", nz->mean_s);
    cJSON_AddNumberToObject(j, "median_s", nz->median_s);
    cJSON_AddNumberToObject(j, "steps", (double)nz->steps);
    cJSON *c = cJSON_AddObjectToObject(j, "composition");
    cJSON_AddNumberToObject(c, "decode_seqs", NOISE_SEQS);
    cJSON_AddNumberToObject(c, "context_tokens_each", NOISE_CTX);
    cJSON_AddStringToObject(j, "method", "steps of one composition timed back to back; cv = "
                            "sd / mean of the step times; lag1 = lag-1 autocorrelation of their "
                            "logarithms; correlation_s = -dt_s / ln(lag1), dt_s the mean step "
                            "(0 when lag1 <= 0)");
    return j;
}

/* ---- the closed loop --------------------------------------------------- */

typedef struct {
    double arrival_s, first_s, last_s;
    int in, out;       /* prompt and answer tokens */
    int computed, generated;
} lreq;

typedef struct {
    int budget, max_seqs;      /* tokens per step, sequences running */
    double in_mean, in_cv, out_mean, out_cv;
    int in_max, out_max;
} loop_cfg;

static int draw_len(gsl_rng *r, double mean, double cv, int max)
{
    double s2 = log1p(cv * cv);
    double x = gsl_ran_lognormal(r, log(mean) - 0.5 * s2, sqrt(s2));
    int k = (int)lround(x);
    return k < 1 ? 1 : k > max ? max : k;
}

/* What a run of the loop did: its steps, the time they took, and the time
 * the fitted step model gives the same compositions. */
typedef struct {
    long steps;
    double busy_s, model_s;
} loop_run;

/* Runs the requests (arrival_s ascending, relative to the loop's start)
 * through the loop; fills first_s and last_s, and *lr. 0, or -1 when out
 * of memory. */
static int run_loop(rb_llm_net *net, const loop_cfg *c, const rb_llm_fit *fit, lreq *rq, int n,
                    loop_run *lr)
{
    int *run = malloc(sizeof *run * (size_t)c->max_seqs);
    rb_llm_chunk *ch = malloc(sizeof *ch * (size_t)c->max_seqs);
    int *ci = malloc(sizeof *ci * (size_t)c->max_seqs);
    if (!run || !ch || !ci) {
        free(run);
        free(ch);
        free(ci);
        return -1;
    }
    int n_run = 0, next = 0, wait_head = 0, done = 0;
    *lr = (loop_run){0, 0, 0};
    double t_start = now_s();
    while (done < n) {
        double now = now_s() - t_start;
        while (next < n && rq[next].arrival_s <= now)
            next++;
        if (n_run == 0 && wait_head == next) { /* idle until the next arrival */
            double at = t_start + rq[next].arrival_s;
            struct timespec ts = {(time_t)at, (long)((at - floor(at)) * 1e9)};
            while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) == EINTR)
                ;
            continue;
        }
        int budget = c->budget, k = 0;
        for (int i = 0; i < n_run && budget > 0; i++) {
            lreq *q = &rq[run[i]];
            int left = q->in - q->computed, m = left > 0 ? (left < budget ? left : budget) : 1;
            ch[k] = (rb_llm_chunk){ m, q->computed };
            ci[k++] = run[i];
            budget -= m;
        }
        while (budget > 0 && n_run < c->max_seqs && wait_head < next) {
            lreq *q = &rq[wait_head];
            int m = q->in < budget ? q->in : budget;
            run[n_run++] = wait_head++;
            ch[k] = (rb_llm_chunk){ m, 0 };
            ci[k++] = run[n_run - 1];
            budget -= m;
        }
        double t0 = now_s() - t_start;
        rb_llm_net_step(net, ch, k);
        double t1 = now_s() - t_start;
        rb_llm_step comp = {0};
        for (int i = 0; i < k; i++) {
            if (rq[ci[i]].computed >= rq[ci[i]].in) { /* the prompt done: a decode token */
                comp.decode_seqs += 1;
            } else {
                comp.prefill_tokens += ch[i].n;
                comp.prefill_attention_pairs +=
                    (double)ch[i].n * (ch[i].c + (ch[i].n + 1.0) / 2.0);
            }
            comp.context_tokens += ch[i].c;
        }
        lr->steps++;
        lr->busy_s += t1 - t0;
        lr->model_s += rb_llm_fit_apply(fit, &comp);
        for (int i = 0; i < k; i++) {
            lreq *q = &rq[ci[i]];
            q->computed += ch[i].n;
            if (q->computed == q->in + q->generated) { /* a token */
                if (q->generated == 0)
                    q->first_s = t1;
                q->generated++;
                q->last_s = t1;
                /* its next token's input goes into the cache next step */
            }
        }
        int w = 0;
        for (int i = 0; i < n_run; i++) {
            lreq *q = &rq[run[i]];
            if (q->generated >= q->out)
                done++;
            else
                run[w++] = run[i];
        }
        n_run = w;
    }
    free(run);
    free(ch);
    free(ci);
    return 0;
}

static lreq *make_requests(const loop_cfg *c, gsl_rng *r, double rate, double dur_s, int *n_out)
{
    int cap = (int)(rate * dur_s * 1.5) + 64, n = 0;
    lreq *rq = calloc((size_t)cap, sizeof *rq);
    double t = 0;
    for (;;) {
        t += rate > 0 ? gsl_ran_exponential(r, 1 / rate) : 0;
        if ((rate > 0 && t >= dur_s) || (rate <= 0 && n >= (int)dur_s) || !rq)
            break;
        if (n == cap) {
            lreq *nr = realloc(rq, sizeof *rq * (size_t)(cap *= 2));
            if (!nr) {
                free(rq);
                return NULL;
            }
            rq = nr;
        }
        rq[n] = (lreq){ .arrival_s = rate > 0 ? t : 0,
                        .in = draw_len(r, c->in_mean, c->in_cv, c->in_max),
                        .out = draw_len(r, c->out_mean, c->out_cv, c->out_max) };
        n++;
    }
    *n_out = n;
    return rq;
}

static cJSON *read_json(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    fseek(f, 0, SEEK_END);
    long len = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *buf = len > 0 ? malloc((size_t)len + 1) : NULL;
    size_t got = buf ? fread(buf, 1, (size_t)len, f) : 0;
    fclose(f);
    if (!buf)
        return NULL;
    buf[got] = 0;
    cJSON *j = cJSON_Parse(buf);
    free(buf);
    return j;
}

static double jget(const cJSON *o, const char *const *path)
{
    for (; *path && o; path++)
        o = cJSON_GetObjectItemCaseSensitive(o, *path);
    return cJSON_IsNumber(o) ? o->valuedouble : NAN;
}

/* The loop's mean and p99 of x (n values, sorted here) with 95% intervals:
 * the mean's from the t distribution's normal limit, 1.96 sd / sqrt(n);
 * the p99's from the order statistics whose ranks bound it with 95%
 * (binomial, normal approximation: n p +- 1.96 sqrt(n p (1 - p))). Both
 * treat the requests as independent, which the queue makes them not
 * quite: the intervals are a floor on the true uncertainty. */
static void loop_stats(cJSON *o, double *x, size_t n)
{
    gsl_sort(x, 1, n);
    double m = gsl_stats_mean(x, 1, n), sd = gsl_stats_sd_m(x, 1, n, m);
    double h = 1.96 * sd / sqrt((double)n);
    cJSON_AddNumberToObject(o, "mean", m);
    cJSON *ci = cJSON_AddArrayToObject(o, "mean_ci95");
    cJSON_AddItemToArray(ci, cJSON_CreateNumber(m - h));
    cJSON_AddItemToArray(ci, cJSON_CreateNumber(m + h));
    double p = 0.99, w = 1.96 * sqrt((double)n * p * (1 - p));
    long lo = (long)floor((double)n * p - w) - 1, hi = (long)ceil((double)n * p + w) - 1;
    lo = lo < 0 ? 0 : lo;
    hi = hi > (long)n - 1 ? (long)n - 1 : hi;
    cJSON_AddNumberToObject(o, "p99", gsl_stats_quantile_from_sorted_data(x, 1, n, p));
    ci = cJSON_AddArrayToObject(o, "p99_ci95");
    cJSON_AddItemToArray(ci, cJSON_CreateNumber(x[lo]));
    cJSON_AddItemToArray(ci, cJSON_CreateNumber(x[hi]));
}

static double arr_at(const cJSON *o, const char *k, int i)
{
    const cJSON *a = cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(o, k), i);
    return cJSON_IsNumber(a) ? a->valuedouble : NAN;
}

/* compare.<load>.<metric>: the loop's, each simulation's, and their differences. */
static void compare_metric(cJSON *out, const cJSON *loop, const cJSON *sim, const cJSON *sim0,
                           const cJSON *sim2, const char *pool, const char *metric)
{
    const char *stats[] = {"mean", "p99"};
    for (int s = 0; s < 2; s++) {
        char key[64];
        snprintf(key, sizeof key, "%s_%s", metric, stats[s]);
        cJSON *o = cJSON_AddObjectToObject(out, key);
        const char *pth[] = {"pools", pool, "llm", metric, stats[s], NULL};
        double l = jget(loop, (const char *[]){stats[s], NULL});
        char cik[32];
        snprintf(cik, sizeof cik, "%s_ci95", stats[s]);
        double lo = arr_at(loop, cik, 0), hi = arr_at(loop, cik, 1);
        double a = jget(sim, pth), b = jget(sim0, pth), r = jget(sim2, pth);
        cJSON_AddNumberToObject(o, "loop", l);
        cJSON_AddNumberToObject(o, "loop_ci95_lo", lo);
        cJSON_AddNumberToObject(o, "loop_ci95_hi", hi);
        cJSON_AddNumberToObject(o, "fleetsim", a);
        cJSON_AddNumberToObject(o, "fleetsim_no_noise", b);
        cJSON_AddNumberToObject(o, "fleetsim_rescaled", r);
        cJSON_AddNumberToObject(o, "diff", a - l);
        cJSON_AddNumberToObject(o, "rel_diff", (a - l) / l);
        cJSON_AddNumberToObject(o, "diff_no_noise", b - l);
        cJSON_AddBoolToObject(o, "fleetsim_within_ci", a >= lo && a <= hi);
        cJSON_AddBoolToObject(o, "no_noise_within_ci", b >= lo && b <= hi);
        cJSON_AddBoolToObject(o, "rescaled_within_ci", r >= lo && r <= hi);
    }
}

static int write_json(const cJSON *j, const char *path)
{
    char *txt = cJSON_Print(j);
    FILE *f = fopen(path, "w");
    int bad = !txt || !f || fputs(txt, f) < 0 || fputc('\n', f) < 0;
    if (f)
        bad |= fclose(f) != 0;
    free(txt);
    return bad ? -1 : 0;
}

static void loadavg(char *buf, size_t cap)
{
    FILE *f = fopen("/proc/loadavg", "r");
    buf[0] = 0;
    if (f) {
        if (!fgets(buf, (int)cap, f))
            buf[0] = 0;
        fclose(f);
    }
    buf[strcspn(buf, "\n")] = 0;
}

/* The scenario: one pool per load, each replaying its trace. Variant 1:
 * the step model and its noise from the profile as measured; 0: the same
 * without the noise; 2: with the noise, each load's model the profile's
 * coefficients times scale[load] (the loop's measured step time over the
 * model's on the same compositions), to see the queue apart from the
 * machine's drift in speed. */
static int write_scenario(const char *path, const char *prof, const loop_cfg *c, double dur_s,
                          const char *const *loads, int n_loads, int variant,
                          const rb_llm_fit *fit, const double *scale)
{
    static const char *const names[] = {"-no-noise", "", "-rescaled"};
    FILE *y = fopen(path, "w");
    if (!y)
        return -1;
    fprintf(y,
            "# written by realbench llm-loop: the loop's layer stack (its shape as a model\n"
            "# config), its step costs and noise from %s, its scheduler's\n"
            "# budget and sequences, and each run's arrivals and token counts as a trace\n"
            "name: llm-loop%s\nseed: 7\nduration: %.3fs\nmodels:\n",
            prof, names[variant], dur_s);
    for (int i = 0; i < n_loads; i++) {
        fprintf(y, "  toy%s:\n    llm:\n"
                   "      config: {hidden_size: 128, num_hidden_layers: 2, num_attention_heads: 1,\n"
                   "               num_key_value_heads: 1, intermediate_size: 512, vocab_size: 1024}\n"
                   "      precision: fp32\n", loads[i]);
        if (variant == 2)
            fprintf(y, "      # %s's llm_step coefficients x %.6f\n"
                       "      step: {model: alpha_beta, overhead: %.6fus, per_prefill_token: %.6fus,\n"
                       "             per_decode_seq: %.6fus, per_context_token: %.9fus,\n"
                       "             per_prefill_attention: %.9fns,\n"
                       "             noise: {calibration: %s}}\n",
                    prof, scale[i], 1e6 * scale[i] * fit->overhead_s,
                    1e6 * scale[i] * fit->per_prefill_token_s,
                    1e6 * scale[i] * fit->per_decode_seq_s,
                    1e6 * scale[i] * fit->per_context_token_s,
                    1e9 * scale[i] * fit->per_prefill_attention_s, prof);
        else
            fprintf(y, "      step: {model: alpha_beta, calibration: %s%s%s%s}\n", prof,
                    variant ? ", noise: {calibration: " : "", variant ? prof : "",
                    variant ? "}" : "");
        fprintf(y, "      max_num_batched_tokens: %d\n      max_num_seqs: %d\n"
                   "      kv_blocks: 1000000\n", c->budget, c->max_seqs);
    }
    fprintf(y, "pools:\n");
    for (int i = 0; i < n_loads; i++)
        fprintf(y, "  p%s: {model: toy%s, replicas: 1, gpus_per_node: 1, gpu: H100-SXM,\n"
                   "        queue_capacity: 100000000, link: {latency: 0s, bandwidth: 1000Gbps}}\n",
                loads[i], loads[i]);
    fprintf(y, "traffic:\n");
    for (int i = 0; i < n_loads; i++)
        fprintf(y, "  - {name: load%s, pool: p%s, size: 0B, response_size: 0B,\n"
                   "     tokens: {trace: trace-%s.csv}}\n",
                loads[i], loads[i], loads[i]);
    return fclose(y) ? -1 : 0;
}

int rb_llm_loop_main(int argc, char **argv)
{
    const char *out = NULL, *bin = "build/fleetsim";
    double run_s = 40;
    int noise_steps = 4000;
    rb_llm_opts o;
    rb_llm_opts_default(&o);
    loop_cfg c = {.budget = 256, .max_seqs = 32, .in_mean = 128, .in_cv = 0.6, .out_mean = 48,
                  .out_cv = 0.6, .in_max = 512, .out_max = 192};
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--out") && i + 1 < argc)
            out = argv[++i];
        else if (!strcmp(argv[i], "--fleetsim") && i + 1 < argc)
            bin = argv[++i];
        else if (!strcmp(argv[i], "--seconds") && i + 1 < argc)
            run_s = atof(argv[++i]);
        else if (!strcmp(argv[i], "--noise-steps") && i + 1 < argc)
            noise_steps = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--seed") && i + 1 < argc)
            o.seed = strtoul(argv[++i], NULL, 10);
        else {
            out = NULL;
            break;
        }
    }
    if (!out || !(run_s >= 1 && run_s <= 3600) || noise_steps < 100) {
        fprintf(stderr,
                "usage: realbench llm-loop --out DIR [--fleetsim build/fleetsim] [--seconds 40]\n"
                "         [--noise-steps 4000] [--seed N]\n"
                "  calibrates the LLM step model and its noise on this CPU, measures a real\n"
                "  continuous-batching loop's capacity, runs it at 50%% and 80%% of it under\n"
                "  Poisson arrivals, and sets fleetsim's prediction of the same arrivals beside\n"
                "  it: DIR/profile.json, loop.csv, trace-50.csv, trace-80.csv, scenario.yaml,\n"
                "  scenario-no-noise.yaml, scenario-rescaled.yaml, sim*/, compare.json\n");
        return 2;
    }
    if (access(bin, X_OK)) {
        fprintf(stderr, "realbench llm-loop: %s: not an executable (--fleetsim)\n", bin);
        return 1;
    }
    if (mkdir(out, 0755) && errno != EEXIST) {
        fprintf(stderr, "realbench llm-loop: cannot create %s\n", out);
        return 1;
    }
    o.quiet = 1;
    char path[1400], load0[128], load1[128];
    loadavg(load0, sizeof load0);
    double cpu0 = (double)clock() / CLOCKS_PER_SEC;
    int rc = 1;
    rb_llm_step *steps = NULL;
    double *rec = NULL;
    lreq *rq[2] = {NULL, NULL};
    int nrq[2] = {0, 0};
    rb_llm_net *net = NULL;
    gsl_rng *r = gsl_rng_alloc(gsl_rng_mt19937);
    gsl_rng_set(r, o.seed);
    cJSON *prof = NULL, *res = NULL, *sim = NULL, *sim0 = NULL, *sim2 = NULL;

    /* 1. the step model and its noise */
    int n = 0;
    rb_llm_fit fit;
    rb_llm_noise nz;
    if (rb_llm_bench(&o, &steps, &n, NULL, stderr) || rb_llm_fit_steps(steps, n, &fit) ||
        rb_llm_noise_record(&o, (size_t)noise_steps, &rec) ||
        rb_llm_noise_fit(rec, (size_t)noise_steps, &nz)) {
        fprintf(stderr, "realbench llm-loop: the step calibration failed\n");
        goto done;
    }
    prof = cJSON_CreateObject();
    cJSON_AddStringToObject(prof, "schema", "fleetsim-calibration/1");
    cJSON *ls = rb_llm_step_json(&o, "cpu", "cpu-fp32-dot", steps, n, &fit, -1, 0);
    cJSON_AddItemToObject(ls, "noise", rb_llm_noise_json(&nz));
    cJSON_AddItemToObject(prof, "llm_step", ls);
    snprintf(path, sizeof path, "%s/profile.json", out);
    if (write_json(prof, path))
        goto done;
    printf("step model: %.3g s + %.3g s x prefill token + %.3g s x decode seq + %.3g s x "
           "context token + %.3g s x prefill attention pair; noise cv %.3f, lag-1 %.3f, "
           "correlation %.3g s (%d steps of %.3g s)\n",
           fit.overhead_s, fit.per_prefill_token_s, fit.per_decode_seq_s,
           fit.per_context_token_s, fit.per_prefill_attention_s, nz.cv, nz.lag1,
           nz.correlation_s, noise_steps, nz.mean_s);

    /* 2. capacity: a batch of requests all there at once, served to the end */
    net = rb_llm_net_new(&o, o.precision, c.budget, c.in_max + c.out_max + 1);
    int n_cap = 0;
    lreq *cap = net ? make_requests(&c, r, 0, 300, &n_cap) : NULL;
    loop_run lrun[3];
    if (!cap || run_loop(net, &c, &fit, cap, n_cap, &lrun[2]) < 0) {
        free(cap);
        goto done;
    }
    double makespan = 0;
    for (int i = 0; i < n_cap; i++)
        makespan = cap[i].last_s > makespan ? cap[i].last_s : makespan;
    free(cap);
    double capacity_rps = n_cap / makespan;
    printf("capacity: %d requests in %.3f s: %.1f requests/s; steps took %.2f x the model's "
           "time\n", n_cap, makespan, capacity_rps, lrun[2].busy_s / lrun[2].model_s);

    /* 3. the loop at 50% and 80% */
    static const char *const loads[] = {"50", "80"};
    static const double frac[] = {0.5, 0.8};
    snprintf(path, sizeof path, "%s/loop.csv", out);
    FILE *lc = fopen(path, "w");
    if (!lc)
        goto done;
    fprintf(lc, "load,request,arrival_s,input_tokens,output_tokens,ttft_s,e2e_s,tpot_s\n");
    double last_end = 0;
    for (int k = 0; k < 2; k++) {
        rq[k] = make_requests(&c, r, frac[k] * capacity_rps, run_s, &nrq[k]);
        if (!rq[k] || run_loop(net, &c, &fit, rq[k], nrq[k], &lrun[k])) {
            fclose(lc);
            goto done;
        }
        snprintf(path, sizeof path, "%s/trace-%s.csv", out, loads[k]);
        FILE *tf = fopen(path, "w");
        if (!tf) {
            fclose(lc);
            goto done;
        }
        fprintf(tf, "arrived_at,num_prefill_tokens,num_decode_tokens\n");
        for (int i = 0; i < nrq[k]; i++) {
            const lreq *q = &rq[k][i];
            fprintf(tf, "%.9f,%d,%d\n", q->arrival_s, q->in, q->out);
            fprintf(lc, "%s,%d,%.9f,%d,%d,%.9f,%.9f,%.9f\n", loads[k], i, q->arrival_s, q->in,
                    q->out, q->first_s - q->arrival_s, q->last_s - q->arrival_s,
                    q->out > 1 ? (q->last_s - q->first_s) / (q->out - 1) : 0);
            if (q->last_s > last_end)
                last_end = q->last_s;
        }
        if (fclose(tf)) {
            fclose(lc);
            goto done;
        }
        printf("load %s%%: %d requests at %.1f/s, %ld steps, which took %.2f x the model's "
               "time\n", loads[k], nrq[k], frac[k] * capacity_rps, lrun[k].steps,
               lrun[k].busy_s / lrun[k].model_s);
    }
    if (fclose(lc))
        goto done;
    loadavg(load1, sizeof load1);
    double cpu_s = (double)clock() / CLOCKS_PER_SEC - cpu0;

    /* 4. fleetsim on the same arrivals, with and without the noise */
    char dirp[PATH_MAX];
    if (!realpath(out, dirp))
        goto done;
    double dur = last_end * 2 + 30;
    double scale[2] = {lrun[0].busy_s / lrun[0].model_s, lrun[1].busy_s / lrun[1].model_s};
    for (int v = 0; v < 3; v++) {
        static const char *const yn[] = {"scenario-no-noise.yaml", "scenario.yaml",
                                         "scenario-rescaled.yaml"};
        static const char *const sn[] = {"sim-no-noise", "sim", "sim-rescaled"};
        char y[PATH_MAX + 64], so[PATH_MAX + 64], lg[PATH_MAX + 64];
        snprintf(y, sizeof y, "%s/%s", dirp, yn[v]);
        snprintf(so, sizeof so, "%s/%s", dirp, sn[v]);
        snprintf(lg, sizeof lg, "%s/%s.log", dirp, sn[v]);
        if (write_scenario(y, "profile.json", &c, dur, loads, 2, v, &fit, scale))
            goto done;
        int frc = rb_run_fleetsim(bin, y, so, lg);
        snprintf(path, sizeof path, "%s/summary.json", so);
        cJSON *s = frc == 0 ? read_json(path) : NULL;
        if (!s) {
            fprintf(stderr, "realbench llm-loop: fleetsim failed (exit %d); see %s\n", frc, lg);
            goto done;
        }
        *(v == 0 ? &sim0 : v == 1 ? &sim : &sim2) = s;
    }

    /* 5. side by side */
    res = cJSON_CreateObject();
    cJSON_AddStringToObject(res, "schema", "fleetsim-llm-loop/1");
    cJSON *set = cJSON_AddObjectToObject(res, "settings");
    cJSON_AddNumberToObject(set, "max_num_batched_tokens", c.budget);
    cJSON_AddNumberToObject(set, "max_num_seqs", c.max_seqs);
    cJSON_AddStringToObject(set, "input_tokens", "lognormal mean 128 cv 0.6, 1..512");
    cJSON_AddStringToObject(set, "output_tokens", "lognormal mean 48 cv 0.6, 1..192");
    cJSON_AddNumberToObject(set, "seconds_per_load", run_s);
    cJSON_AddNumberToObject(set, "seed", (double)o.seed);
    cJSON_AddNumberToObject(res, "capacity_rps", capacity_rps);
    cJSON *cj = cJSON_AddObjectToObject(res, "capacity_run");
    cJSON_AddNumberToObject(cj, "requests", n_cap);
    cJSON_AddNumberToObject(cj, "makespan_s", makespan);
    cJSON_AddNumberToObject(cj, "steps", (double)lrun[2].steps);
    cJSON_AddNumberToObject(cj, "steps_busy_s", lrun[2].busy_s);
    cJSON_AddNumberToObject(cj, "steps_model_s", lrun[2].model_s);
    cJSON_AddNumberToObject(res, "cpu_s", cpu_s);
    cJSON *mach = cJSON_AddObjectToObject(res, "machine");
    cJSON_AddStringToObject(mach, "loadavg_before", load0);
    cJSON_AddStringToObject(mach, "loadavg_after", load1);
    cJSON_AddNumberToObject(mach, "online_cpus", (double)sysconf(_SC_NPROCESSORS_ONLN));
    cJSON_AddItemToObject(res, "noise", rb_llm_noise_json(&nz));
    for (int k = 0; k < 2; k++) {
        char key[32], pool[8];
        snprintf(key, sizeof key, "load_%s", loads[k]);
        snprintf(pool, sizeof pool, "p%s", loads[k]);
        cJSON *lo = cJSON_AddObjectToObject(res, key);
        cJSON_AddNumberToObject(lo, "rate_rps", frac[k] * capacity_rps);
        cJSON_AddNumberToObject(lo, "requests", nrq[k]);
        /* the loop's steps against the step model on the same compositions:
         * above 1, the machine ran slower than it did while calibrating */
        cJSON_AddNumberToObject(lo, "steps", (double)lrun[k].steps);
        cJSON_AddNumberToObject(lo, "steps_busy_s", lrun[k].busy_s);
        cJSON_AddNumberToObject(lo, "steps_model_s", lrun[k].model_s);
        cJSON_AddNumberToObject(lo, "busy_over_model", lrun[k].busy_s / lrun[k].model_s);
        double *x = malloc(sizeof *x * (size_t)(nrq[k] ? nrq[k] : 1));
        if (!x)
            goto done;
        const char *metrics[] = {"ttft_s", "e2e_s"};
        for (int m = 0; m < 2; m++) {
            for (int i = 0; i < nrq[k]; i++)
                x[i] = (m == 0 ? rq[k][i].first_s : rq[k][i].last_s) - rq[k][i].arrival_s;
            cJSON *ls2 = cJSON_CreateObject();
            loop_stats(ls2, x, (size_t)nrq[k]);
            compare_metric(lo, ls2, sim, sim0, sim2, pool, metrics[m]);
            cJSON_Delete(ls2);
        }
        free(x);
        const char *fin[] = {"pools", pool, "llm", "finished", NULL};
        cJSON_AddNumberToObject(lo, "fleetsim_finished", jget(sim, fin));
    }
    snprintf(path, sizeof path, "%s/compare.json", out);
    if (write_json(res, path))
        goto done;
    for (int k = 0; k < 2; k++) {
        char key[32];
        snprintf(key, sizeof key, "load_%s", loads[k]);
        const cJSON *lo = cJSON_GetObjectItemCaseSensitive(res, key);
        const char *ms[] = {"ttft_s_mean", "ttft_s_p99", "e2e_s_mean", "e2e_s_p99"};
        for (int m = 0; m < 4; m++) {
            const cJSON *e = cJSON_GetObjectItemCaseSensitive(lo, ms[m]);
            printf("load %s%% %-11s loop %8.2f ms [%8.2f, %8.2f]  fleetsim %8.2f ms (%+6.1f%%)"
                   "  no noise %8.2f ms  rescaled %8.2f ms\n",
                   loads[k], ms[m], 1e3 * jget(e, (const char *[]){"loop", NULL}),
                   1e3 * jget(e, (const char *[]){"loop_ci95_lo", NULL}),
                   1e3 * jget(e, (const char *[]){"loop_ci95_hi", NULL}),
                   1e3 * jget(e, (const char *[]){"fleetsim", NULL}),
                   100 * jget(e, (const char *[]){"rel_diff", NULL}),
                   1e3 * jget(e, (const char *[]){"fleetsim_no_noise", NULL}),
                   1e3 * jget(e, (const char *[]){"fleetsim_rescaled", NULL}));
        }
    }
    printf("wrote %s (CPU %.0f s; load average before %s, after %s)\n", path, cpu_s, load0,
           load1);
    rc = 0;
done:
    cJSON_Delete(res);
    cJSON_Delete(sim);
    cJSON_Delete(sim0);
    cJSON_Delete(sim2);
    cJSON_Delete(prof);
    rb_llm_net_free(net);
    free(rq[0]);
    free(rq[1]);
    free(rec);
    free(steps);
    gsl_rng_free(r);
    return rc;
}
