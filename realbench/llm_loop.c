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
 * profile's llm_step.noise. Its slow component (rb_llm_slow_noise_fit):
 * the spread of the loop record's measured over fitted time averaged over
 * windows of 0.02 .. 1 s of busy time, against an OU's window-mean
 * variance beside the fast component's; `realbench llm-loop` and
 * `realbench llm-slow-noise` write it into llm_step.noise.slow.
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
 * capacity is measured first (every request of a batch there at once),
 * then it runs at 65% of it on arrivals of its own: every step of those
 * two runs, composition and measured time, is the record the alpha_beta
 * step model is fitted on, to the mean step time (rb_llm_fit_steps_mean;
 * the llm-step grid's fit of medians is kept beside, for comparison).
 * Then the loop runs at 50% and 80% of capacity; each run's arrivals and
 * token counts are written as a trace that fleetsim replays
 * in generated scenarios: the loop's fit with its noise, without the
 * noise, the grid's fit, and the loop's fit rescaled by each run's own
 * measured step time over the model's (a diagnostic that uses the
 * evaluated run's times). The same scheduler also runs each trace with the
 * fit's step times in place of the CPU's (rb_llm_loop_run without a net):
 * what fleetsim without noise must give if it forms the same steps.
 * compare.json sets mean and p99 of TTFT and E2E side by side, with the
 * loop's 95% confidence intervals, and each run's step times against both
 * fits split into decode-only steps and steps with prefill.
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

typedef rb_llm_loop_req lreq;

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

int rb_llm_loop_run(rb_llm_net *net, const rb_llm_fit *fit, int budget_tokens, int max_seqs,
                    lreq *rq, int n, rb_llm_step **steps, size_t *n_steps)
{
    *steps = NULL;
    *n_steps = 0;
    int *run = malloc(sizeof *run * (size_t)max_seqs);
    rb_llm_chunk *ch = malloc(sizeof *ch * (size_t)max_seqs);
    int *ci = malloc(sizeof *ci * (size_t)max_seqs);
    size_t cap = 1024, ns = 0;
    rb_llm_step *rec = malloc(sizeof *rec * cap);
    int rc = run && ch && ci && rec && (net || fit) ? 0 : -1;
    int n_run = 0, next = 0, wait_head = 0, done = 0;
    double t_start = net ? now_s() : 0, vnow = 0; /* vnow: the model's clock */
    /* A step's time is the loop's cycle: from the end of the step before
     * (its tokens handed out, the next one formed in between), or from the
     * loop's waking when it was idle, to its own end: what the step holds
     * the replica for, as fleetsim's step does. */
    double t_free = 0;
    int idle = 0;
    while (!rc && done < n) {
        double now = net ? now_s() - t_start : vnow;
        if (idle)
            t_free = now;
        idle = 0;
        while (next < n && rq[next].arrival_s <= now)
            next++;
        if (n_run == 0 && wait_head == next) { /* idle until the next arrival */
            idle = 1;
            if (!net) {
                vnow = rq[next].arrival_s;
                continue;
            }
            double at = t_start + rq[next].arrival_s;
            struct timespec ts = {(time_t)at, (long)((at - floor(at)) * 1e9)};
            while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) == EINTR)
                ;
            continue;
        }
        int budget = budget_tokens, k = 0;
        for (int i = 0; i < n_run && budget > 0; i++) {
            lreq *q = &rq[run[i]];
            int left = q->in - q->computed, m = left > 0 ? (left < budget ? left : budget) : 1;
            ch[k] = (rb_llm_chunk){ m, q->computed };
            ci[k++] = run[i];
            budget -= m;
        }
        while (budget > 0 && n_run < max_seqs && wait_head < next) {
            lreq *q = &rq[wait_head];
            int m = q->in < budget ? q->in : budget;
            run[n_run++] = wait_head++;
            ch[k] = (rb_llm_chunk){ m, 0 };
            ci[k++] = run[n_run - 1];
            budget -= m;
        }
        /* the step's composition as fleetsim's alpha_beta model counts it
         * (sim/base/llm_model.c, llm_step_s): a chunk on a sequence whose
         * prompt is computed is a decode token */
        rb_llm_step comp = {.reps = 1};
        for (int i = 0; i < k; i++) {
            if (rq[ci[i]].computed >= rq[ci[i]].in) {
                comp.decode_seqs += 1;
            } else {
                comp.prefill_tokens += ch[i].n;
                comp.prefill_attention_pairs +=
                    (double)ch[i].n * (ch[i].c + (ch[i].n + 1.0) / 2.0);
            }
            comp.context_tokens += ch[i].c;
        }
        double t1;
        if (net) {
            rb_llm_net_step(net, ch, k);
            t1 = now_s() - t_start;
        } else {
            t1 = vnow = vnow + rb_llm_fit_apply(fit, &comp);
        }
        comp.latency_s = t1 - t_free;
        t_free = t1;
        if (ns == cap) {
            rb_llm_step *nr = realloc(rec, sizeof *rec * (cap *= 2));
            if (!nr) {
                rc = -1;
                break;
            }
            rec = nr;
        }
        rec[ns++] = comp;
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
    if (rc) {
        free(rec);
        return -1;
    }
    *steps = rec;
    *n_steps = ns;
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
        /* to the nanosecond the trace is written with, so that fleetsim
         * replays exactly these arrivals */
        rq[n] = (lreq){ .arrival_s = rate > 0 ? round(t * 1e9) / 1e9 : 0,
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

/* The predictions set beside the loop: fleetsim with the step model fitted
 * on the loop's calibration record and its noise, the same without the
 * noise, with the grid's fit (the llm-step grid alone) and the noise, and
 * with the loop-fitted coefficients times each load's measured step time
 * over the model's (a diagnostic: it uses the evaluated run's own times).
 * The last, "loop_scheduler_model", is not fleetsim: the loop's own
 * scheduler run on the same arrivals with the fitted model's step times
 * and no noise; it and fleetsim_no_noise agree when fleetsim forms the
 * same steps as the loop (up to fleetsim's histogram resolution on p99). */
enum { P_SIM, P_NO_NOISE, P_GRID, P_RESCALED, P_REPLAY, N_PRED };
static const char *const PRED[N_PRED] = {"fleetsim", "fleetsim_no_noise", "fleetsim_grid",
                                         "fleetsim_rescaled", "loop_scheduler_model"};

/* compare.<load>.<metric>: the loop's, each prediction's, and their
 * differences. pred[P_REPLAY] is a loop_stats object, the others
 * fleetsim summaries. */
static void compare_metric(cJSON *out, const cJSON *loop, const cJSON *const pred[N_PRED],
                           const char *pool, const char *metric)
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
        cJSON_AddNumberToObject(o, "loop", l);
        cJSON_AddNumberToObject(o, "loop_ci95_lo", lo);
        cJSON_AddNumberToObject(o, "loop_ci95_hi", hi);
        double v[N_PRED];
        for (int k = 0; k < N_PRED; k++) {
            v[k] = k == P_REPLAY ? jget(pred[k], (const char *[]){stats[s], NULL})
                                 : jget(pred[k], pth);
            cJSON_AddNumberToObject(o, PRED[k], v[k]);
        }
        cJSON_AddNumberToObject(o, "diff", v[P_SIM] - l);
        cJSON_AddNumberToObject(o, "rel_diff", (v[P_SIM] - l) / l);
        cJSON_AddNumberToObject(o, "diff_no_noise", v[P_NO_NOISE] - l);
        cJSON_AddNumberToObject(o, "rel_diff_grid", (v[P_GRID] - l) / l);
        for (int k = 0; k < P_REPLAY; k++) {
            snprintf(key, sizeof key, "%s_within_ci", PRED[k]);
            cJSON_AddBoolToObject(o, key, v[k] >= lo && v[k] <= hi);
        }
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

/* The scenario: one pool per load, each replaying its trace, its step
 * model from coef_prof's llm_step, or with inline_fit that fit's
 * coefficients times scale[load], and its noise from noise_prof (NULL: no
 * noise). */
static int write_scenario(const char *path, const char *name, const char *coef_prof,
                          const char *noise_prof, const rb_llm_fit *inline_fit,
                          const double *scale, const loop_cfg *c, double dur_s,
                          const char *const *loads, int n_loads)
{
    FILE *y = fopen(path, "w");
    if (!y)
        return -1;
    fprintf(y,
            "# written by realbench llm-loop: the loop's layer stack (its shape as a model\n"
            "# config), its step costs from %s, %s, its scheduler's\n"
            "# budget and sequences, and each run's arrivals and token counts as a trace\n"
            "name: %s\nseed: 7\nduration: %.3fs\nmodels:\n",
            coef_prof, noise_prof ? "with noise" : "no noise", name, dur_s);
    for (int i = 0; i < n_loads; i++) {
        fprintf(y, "  toy%s:\n    llm:\n"
                   "      config: {hidden_size: 128, num_hidden_layers: 2, num_attention_heads: 1,\n"
                   "               num_key_value_heads: 1, intermediate_size: 512, vocab_size: 1024}\n"
                   "      precision: fp32\n", loads[i]);
        if (inline_fit)
            fprintf(y, "      # %s's llm_step coefficients x %.6f\n"
                       "      step: {model: alpha_beta, overhead: %.6fus, per_prefill_token: %.6fus,\n"
                       "             per_decode_seq: %.6fus, per_context_token: %.9fus,\n"
                       "             per_prefill_attention: %.9fns",
                    coef_prof, scale[i], 1e6 * scale[i] * inline_fit->overhead_s,
                    1e6 * scale[i] * inline_fit->per_prefill_token_s,
                    1e6 * scale[i] * inline_fit->per_decode_seq_s,
                    1e6 * scale[i] * inline_fit->per_context_token_s,
                    1e9 * scale[i] * inline_fit->per_prefill_attention_s);
        else
            fprintf(y, "      step: {model: alpha_beta, calibration: %s", coef_prof);
        if (noise_prof)
            fprintf(y, ",\n             noise: {calibration: %s}", noise_prof);
        fprintf(y, "}\n      max_num_batched_tokens: %d\n      max_num_seqs: %d\n"
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

/* The calibration record as CSV: run (capacity or calibration), the
 * composition, the measured time and the loop fit's. */
static int write_record(const char *path, const rb_llm_step *s, size_t n, size_t n_first,
                        const rb_llm_fit *fit)
{
    FILE *f = fopen(path, "w");
    if (!f)
        return -1;
    fprintf(f, "run,prefill_tokens,decode_seqs,context_tokens,prefill_attention_pairs,"
               "latency_s,fitted_s\n");
    for (size_t i = 0; i < n; i++)
        fprintf(f, "%s,%.0f,%.0f,%.0f,%.1f,%.9f,%.9f\n", i < n_first ? "capacity" : "calibration",
                s[i].prefill_tokens, s[i].decode_seqs, s[i].context_tokens,
                s[i].prefill_attention_pairs, s[i].latency_s, rb_llm_fit_apply(fit, &s[i]));
    return fclose(f) ? -1 : 0;
}

static double sum_latency(const rb_llm_step *s, size_t n)
{
    double t = 0;
    for (size_t i = 0; i < n; i++)
        t += s[i].latency_s;
    return t;
}

static double sum_model(const rb_llm_fit *f, const rb_llm_step *s, size_t n)
{
    double t = 0;
    for (size_t i = 0; i < n; i++)
        t += rb_llm_fit_apply(f, &s[i]);
    return t;
}

static void fit_json(cJSON *o, const rb_llm_fit *f)
{
    cJSON_AddNumberToObject(o, "overhead_s", f->overhead_s);
    cJSON_AddNumberToObject(o, "per_prefill_token_s", f->per_prefill_token_s);
    cJSON_AddNumberToObject(o, "per_decode_seq_s", f->per_decode_seq_s);
    cJSON_AddNumberToObject(o, "per_context_token_s", f->per_context_token_s);
    cJSON_AddNumberToObject(o, "per_prefill_attention_s", f->per_prefill_attention_s);
}

/* A copy of n requests with nothing served yet (for the model replay). */
static lreq *fresh_copy(const lreq *rq, int n)
{
    lreq *c = malloc(sizeof *c * (size_t)(n ? n : 1));
    for (int i = 0; c && i < n; i++)
        c[i] = (lreq){ .arrival_s = rq[i].arrival_s, .in = rq[i].in, .out = rq[i].out };
    return c;
}

/* loop_stats of TTFT (m 0) or E2E (m 1) over n requests; NULL out of memory. */
static cJSON *req_stats(const lreq *rq, int n, int m)
{
    double *x = malloc(sizeof *x * (size_t)(n ? n : 1));
    if (!x)
        return NULL;
    for (int i = 0; i < n; i++)
        x[i] = (m == 0 ? rq[i].first_s : rq[i].last_s) - rq[i].arrival_s;
    cJSON *o = cJSON_CreateObject();
    loop_stats(o, x, (size_t)n);
    free(x);
    return o;
}

enum { CALIB_PERCENT = 65 };

/* ---- the slow component of the step noise -------------------------------- */

const double RB_LLM_SLOW_W[RB_LLM_SLOW_NW] = {0.02, 0.05, 0.1, 0.2, 0.5, 1.0};

enum { SLOW_MAX_RUNS = 16 };

/* The variance of an OU's mean over w, per unit variance; tau 0: none. */
static double ou_window_g(double w, double tau)
{
    if (!(tau > 0))
        return 0;
    double a = w / tau;
    if (a < 1e-6)
        return 1 - a / 3; /* its series: 1 - a/3 + a^2/12 - ... */
    return 2 / (a * a) * (a - 1 + exp(-a));
}

/* The expected sum of squared deviations of the window means from their
 * run's mean, per unit variance: sum_runs m (g(w) - g(m w)). */
static double ou_window_ss(double w, double tau, const int *m, int nr)
{
    double s = 0;
    for (int r = 0; r < nr; r++)
        s += m[r] * (ou_window_g(w, tau) - ou_window_g(m[r] * w, tau));
    return s;
}

int rb_llm_slow_noise_fit(const double *latency_s, const double *fitted_s, const int *run,
                          size_t n, double fast_cv, double fast_correlation_s,
                          rb_llm_slow_noise *out)
{
    memset(out, 0, sizeof *out);
    out->fast_cv = fast_cv;
    out->fast_correlation_s = fast_correlation_s;
    for (size_t i = 0; i < n; i++)
        if (!(latency_s[i] > 0) || !(fitted_s[i] > 0) || !isfinite(latency_s[i]) ||
            !isfinite(fitted_s[i]))
            return -1;
    int m[RB_LLM_SLOW_NW][SLOW_MAX_RUNS], nr[RB_LLM_SLOW_NW];
    for (int k = 0; k < RB_LLM_SLOW_NW; k++) {
        double w = RB_LLM_SLOW_W[k], ss = 0;
        nr[k] = 0;
        for (size_t i = 0, j; i < n && nr[k] < SLOW_MAX_RUNS; i = j) {
            for (j = i; j < n && run[j] == run[i]; j++) /* one run: steps i .. j */
                ;
            double sum = 0, sum2 = 0, lat = 0, fit = 0;
            int mw = 0;
            for (size_t t = i; t < j; t++) {
                lat += latency_s[t];
                fit += fitted_s[t];
                if (lat >= w) { /* a window's mean: measured over fitted */
                    double x = lat / fit;
                    sum += x;
                    sum2 += x * x;
                    mw++;
                    lat = fit = 0;
                }
            }
            if (mw >= 2) {
                ss += sum2 - sum * sum / mw;
                m[k][nr[k]++] = mw;
                out->windows[k] += mw;
            }
        }
        if (nr[k] == 0 || !(ss > 0))
            return -1;
        out->ss[k] = ss;
    }
    /* for each tau, the slow variance v >= 0 minimising
     * sum_k (1 - (v_f a_k + v b_k) / ss_k)^2, a_k and b_k the fast and
     * slow components' expected sums per unit variance */
    double vf = fast_cv * fast_cv, best = INFINITY;
    for (int it = 0; it <= 450; it++) {
        double tau = 1e-3 * pow(10, it / 100.0); /* 1 ms .. 31.6 s */
        double sbb = 0, sbr = 0;
        for (int k = 0; k < RB_LLM_SLOW_NW; k++) {
            double w = RB_LLM_SLOW_W[k];
            double a = ou_window_ss(w, fast_correlation_s, m[k], nr[k]) / out->ss[k];
            double b = ou_window_ss(w, tau, m[k], nr[k]) / out->ss[k];
            sbb += b * b;
            sbr += b * (1 - vf * a);
        }
        double v = sbb > 0 && sbr > 0 ? sbr / sbb : 0, err = 0;
        for (int k = 0; k < RB_LLM_SLOW_NW; k++) {
            double w = RB_LLM_SLOW_W[k];
            double e = vf * ou_window_ss(w, fast_correlation_s, m[k], nr[k]) +
                       v * ou_window_ss(w, tau, m[k], nr[k]);
            err += (1 - e / out->ss[k]) * (1 - e / out->ss[k]);
        }
        if (err < best) {
            best = err;
            out->cv = sqrt(v);
            out->correlation_s = tau;
        }
    }
    for (int k = 0; k < RB_LLM_SLOW_NW; k++) {
        double w = RB_LLM_SLOW_W[k];
        out->model_ss[k] = vf * ou_window_ss(w, fast_correlation_s, m[k], nr[k]) +
                           out->cv * out->cv * ou_window_ss(w, out->correlation_s, m[k], nr[k]);
    }
    out->rms_rel = sqrt(best / RB_LLM_SLOW_NW);
    return 0;
}

cJSON *rb_llm_slow_noise_json(const rb_llm_slow_noise *s)
{
    cJSON *j = cJSON_CreateObject();
    cJSON_AddNumberToObject(j, "cv", s->cv);
    cJSON_AddNumberToObject(j, "correlation_s", s->correlation_s);
    cJSON_AddNumberToObject(j, "rms_relative_residual", s->rms_rel);
    cJSON *w = cJSON_AddArrayToObject(j, "windows");
    for (int k = 0; k < RB_LLM_SLOW_NW; k++) {
        cJSON *o = cJSON_CreateObject();
        cJSON_AddNumberToObject(o, "window_s", RB_LLM_SLOW_W[k]);
        cJSON_AddNumberToObject(o, "windows", s->windows[k]);
        cJSON_AddNumberToObject(o, "sum_sq", s->ss[k]);
        cJSON_AddNumberToObject(o, "model_sum_sq", s->model_ss[k]);
        cJSON_AddItemToArray(w, o);
    }
    cJSON_AddStringToObject(
        j, "method",
        "the loop's record (calibration-steps.csv), measured over fitted step time averaged over "
        "windows of W s of busy time (W = 0.02 .. 1 s), each run apart; the sum of squared "
        "deviations of the window means from their run's mean set against its expectation for "
        "the fast component (cv, correlation_s above, fixed) plus a slow OU of variance cv^2 "
        "and correlation time tau: v sum_runs m (g(W) - g(m W)), "
        "g(W) = 2 (tau/W)^2 (W/tau - 1 + exp(-W/tau)); least squares on relative residuals, "
        "cv^2 closed-form for each tau of a log grid 1 ms .. 31.6 s");
    return j;
}

/* A loop's calibration-steps.csv: latency_s, fitted_s and run per step. */
static int read_record(const char *path, double **lat, double **fit, int **run, size_t *n)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return -1;
    char line[512], prev[32] = "";
    size_t cap = 0;
    int r = -1;
    *n = 0;
    *lat = *fit = NULL;
    *run = NULL;
    if (!fgets(line, sizeof line, f) || strncmp(line, "run,", 4)) {
        fclose(f);
        return -1;
    }
    while (fgets(line, sizeof line, f)) {
        char name[32];
        double pt, ds, ct, pa, l, ft;
        if (sscanf(line, "%31[^,],%lf,%lf,%lf,%lf,%lf,%lf", name, &pt, &ds, &ct, &pa, &l, &ft) != 7)
            continue;
        if (*n == cap) {
            cap = cap ? 2 * cap : 4096;
            double *a = realloc(*lat, cap * sizeof *a), *b = a ? realloc(*fit, cap * sizeof *b) : NULL;
            int *c = b ? realloc(*run, cap * sizeof *c) : NULL;
            if (a)
                *lat = a;
            if (b)
                *fit = b;
            if (!c) {
                fclose(f);
                return -1;
            }
            *run = c;
        }
        if (strcmp(name, prev)) {
            r++;
            snprintf(prev, sizeof prev, "%s", name);
        }
        (*lat)[*n] = l;
        (*fit)[*n] = ft;
        (*run)[*n] = r;
        (*n)++;
    }
    fclose(f);
    return *n ? 0 : -1;
}

int rb_llm_slow_noise_main(int argc, char **argv)
{
    if (argc != 3) {
        fprintf(stderr, "usage: realbench llm-slow-noise RECORD.csv PROFILE.json\n"
                        "  fits the slow component of the step noise on a loop's\n"
                        "  calibration-steps.csv and writes it into PROFILE's llm_step.noise.slow\n");
        return 2;
    }
    double *lat = NULL, *fit = NULL;
    int *run = NULL, rc = 1;
    size_t n = 0;
    cJSON *prof = read_json(argv[2]);
    cJSON *nz = cJSON_GetObjectItemCaseSensitive(
        cJSON_GetObjectItemCaseSensitive(prof, "llm_step"), "noise");
    const cJSON *cv = cJSON_GetObjectItemCaseSensitive(nz, "cv");
    const cJSON *cor = cJSON_GetObjectItemCaseSensitive(nz, "correlation_s");
    rb_llm_slow_noise s;
    if (!cJSON_IsNumber(cv) || !cJSON_IsNumber(cor)) {
        fprintf(stderr, "realbench llm-slow-noise: %s: no llm_step.noise {cv, correlation_s}\n",
                argv[2]);
    } else if (read_record(argv[1], &lat, &fit, &run, &n)) {
        fprintf(stderr, "realbench llm-slow-noise: %s: not a loop's calibration record\n", argv[1]);
    } else if (rb_llm_slow_noise_fit(lat, fit, run, n, cv->valuedouble, cor->valuedouble, &s)) {
        fprintf(stderr, "realbench llm-slow-noise: %s: too short for windows of %g s\n", argv[1],
                RB_LLM_SLOW_W[RB_LLM_SLOW_NW - 1]);
    } else {
        cJSON_DeleteItemFromObjectCaseSensitive(nz, "slow");
        cJSON_AddItemToObject(nz, "slow", rb_llm_slow_noise_json(&s));
        printf("slow step noise: cv %.4f, correlation %.4g s (rms relative residual %.3f)\n", s.cv,
               s.correlation_s, s.rms_rel);
        rc = write_json(prof, argv[2]) ? 1 : 0;
    }
    cJSON_Delete(prof);
    free(lat);
    free(fit);
    free(run);
    return rc;
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
                "  calibrates the LLM step model on this CPU from the loop's own steps (its\n"
                "  capacity run and a run at %d%% of capacity with arrivals of their own) and\n"
                "  the step noise, runs the loop at 50%% and 80%% of capacity under Poisson\n"
                "  arrivals, and sets fleetsim's prediction of the same arrivals beside it:\n"
                "  DIR/profile.json, profile-grid.json, calibration-steps.csv, loop.csv,\n"
                "  trace-50.csv, trace-80.csv, scenario*.yaml, sim*/, compare.json\n",
                CALIB_PERCENT);
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
    rb_llm_step *steps = NULL, *rec = NULL, *run_steps[2] = {NULL, NULL};
    size_t n_rec = 0, n_run_steps[2] = {0, 0}, n_cap_steps = 0;
    double *noise = NULL;
    lreq *rq[2] = {NULL, NULL}, *cap = NULL, *cal = NULL;
    int nrq[2] = {0, 0}, n_cap = 0, n_cal = 0;
    rb_llm_net *net = NULL;
    gsl_rng *r = gsl_rng_alloc(gsl_rng_mt19937), *rcal = gsl_rng_alloc(gsl_rng_mt19937);
    gsl_rng_set(r, o.seed);
    /* the calibration run's arrivals: a stream of their own, so that the
     * 50% and 80% runs' arrivals are those of the same seed without it */
    gsl_rng_set(rcal, o.seed + 1);
    cJSON *prof = NULL, *gprof = NULL, *res = NULL, *sims[N_PRED] = {NULL};

    /* 1. the grid's step model (the earlier method, kept beside) and the noise */
    int n = 0;
    rb_llm_fit gfit, fit;
    rb_llm_noise nz;
    if (rb_llm_bench(&o, &steps, &n, NULL, stderr) || rb_llm_fit_steps(steps, n, &gfit) ||
        rb_llm_noise_record(&o, (size_t)noise_steps, &noise) ||
        rb_llm_noise_fit(noise, (size_t)noise_steps, &nz)) {
        fprintf(stderr, "realbench llm-loop: the step calibration failed\n");
        goto done;
    }
    gprof = cJSON_CreateObject();
    cJSON_AddStringToObject(gprof, "schema", "fleetsim-calibration/1");
    cJSON *gls = rb_llm_step_json(&o, "cpu", "cpu-fp32-dot", steps, n, &gfit, -1, 0);
    cJSON_AddItemToObject(gls, "noise", rb_llm_noise_json(&nz));
    cJSON_AddItemToObject(gprof, "llm_step", gls);
    snprintf(path, sizeof path, "%s/profile-grid.json", out);
    if (write_json(gprof, path))
        goto done;
    printf("grid's step model: %.3g s + %.3g s x prefill token + %.3g s x decode seq + %.3g s "
           "x context token + %.3g s x prefill attention pair; noise cv %.3f, lag-1 %.3f, "
           "correlation %.3g s (%d steps of %.3g s)\n",
           gfit.overhead_s, gfit.per_prefill_token_s, gfit.per_decode_seq_s,
           gfit.per_context_token_s, gfit.per_prefill_attention_s, nz.cv, nz.lag1,
           nz.correlation_s, noise_steps, nz.mean_s);

    /* 2. capacity: a batch of requests all there at once, served to the end */
    net = rb_llm_net_new(&o, o.precision, c.budget, c.in_max + c.out_max + 1);
    cap = net ? make_requests(&c, r, 0, 300, &n_cap) : NULL;
    if (!cap || rb_llm_loop_run(net, NULL, c.budget, c.max_seqs, cap, n_cap, &rec, &n_cap_steps))
        goto done;
    double makespan = 0;
    for (int i = 0; i < n_cap; i++)
        makespan = cap[i].last_s > makespan ? cap[i].last_s : makespan;
    double capacity_rps = n_cap / makespan;
    printf("capacity: %d requests in %.3f s: %.1f requests/s\n", n_cap, makespan, capacity_rps);

    /* 3. the calibration run: the loop at CALIB_PERCENT of capacity on
     * arrivals of its own; the step model is fitted on its steps and the
     * capacity run's (relative residuals, as the grid's fit) */
    rb_llm_step *cal_steps = NULL;
    size_t n_cal_steps = 0;
    cal = make_requests(&c, rcal, CALIB_PERCENT / 100.0 * capacity_rps, run_s, &n_cal);
    if (!cal || rb_llm_loop_run(net, NULL, c.budget, c.max_seqs, cal, n_cal, &cal_steps,
                                &n_cal_steps))
        goto done;
    rb_llm_step *all = realloc(rec, sizeof *rec * (n_cap_steps + n_cal_steps));
    if (!all) {
        free(cal_steps);
        goto done;
    }
    rec = all;
    memcpy(rec + n_cap_steps, cal_steps, sizeof *rec * n_cal_steps);
    n_rec = n_cap_steps + n_cal_steps;
    free(cal_steps);
    int iters = 0;
    if (n_rec > INT_MAX || rb_llm_fit_steps_mean(rec, (int)n_rec, &fit, &iters)) {
        fprintf(stderr, "realbench llm-loop: the fit on the loop's calibration steps failed\n");
        goto done;
    }
    snprintf(path, sizeof path, "%s/calibration-steps.csv", out);
    if (write_record(path, rec, n_rec, n_cap_steps, &fit))
        goto done;
    prof = cJSON_CreateObject();
    cJSON_AddStringToObject(prof, "schema", "fleetsim-calibration/1");
    cJSON *ls = rb_llm_step_json(&o, "cpu", "cpu-fp32-dot", rec, (int)n_rec, &fit, -1, 0);
    /* the record is in calibration-steps.csv, not here */
    cJSON_DeleteItemFromObjectCaseSensitive(ls, "steps");
    cJSON_ReplaceItemInObjectCaseSensitive(
        ls, "method", cJSON_CreateString(
            "every step of the loop's capacity run and of a run of the loop at 65% of "
            "capacity (arrivals of their own), one timing each; iteratively reweighted least "
            "squares (gsl_multifit_wlinear), each step weighted by 1 / its fitted time^2 "
            "(its variance under noise of a given cv: the fit is of the mean step time), "
            "from the fit with rows divided by their latency; a coefficient below 0 fixed at "
            "0 and the rest refitted"));
    cJSON_AddNumberToObject(ls, "iterations", iters);
    cJSON *fo = cJSON_AddObjectToObject(ls, "fitted_on");
    cJSON_AddStringToObject(fo, "record", "calibration-steps.csv");
    cJSON_AddNumberToObject(fo, "capacity_run_steps", (double)n_cap_steps);
    cJSON_AddNumberToObject(fo, "calibration_run_steps", (double)n_cal_steps);
    cJSON_AddNumberToObject(fo, "calibration_load", CALIB_PERCENT / 100.0);
    cJSON_AddNumberToObject(fo, "calibration_requests", n_cal);
    cJSON_AddNumberToObject(fo, "calibration_seed", (double)(o.seed + 1));
    cJSON_AddItemToObject(ls, "by_kind", rb_llm_fit_by_kind_json(&fit, rec, n_rec));
    cJSON *gj = cJSON_AddObjectToObject(ls, "grid_fit");
    fit_json(gj, &gfit);
    cJSON_AddItemToObject(gj, "by_kind_on_record", rb_llm_fit_by_kind_json(&gfit, rec, n_rec));
    cJSON *lnz = rb_llm_noise_json(&nz);
    cJSON_AddItemToObject(ls, "noise", lnz);
    cJSON_AddItemToObject(prof, "llm_step", ls);
    rb_llm_slow_noise sl;
    int have_slow = 0;
    {   /* the slow component, on the record's measured over fitted times */
        double *rl = malloc(sizeof *rl * n_rec), *rf = malloc(sizeof *rf * n_rec);
        int *rr = malloc(sizeof *rr * n_rec);
        for (size_t i = 0; rl && rf && rr && i < n_rec; i++) {
            rl[i] = rec[i].latency_s;
            rf[i] = rb_llm_fit_apply(&fit, &rec[i]);
            rr[i] = i >= n_cap_steps;
        }
        if (rl && rf && rr &&
            !rb_llm_slow_noise_fit(rl, rf, rr, n_rec, nz.cv, nz.correlation_s, &sl)) {
            cJSON_AddItemToObject(lnz, "slow", rb_llm_slow_noise_json(&sl));
            have_slow = 1;
            printf("slow step noise: cv %.4f, correlation %.4g s\n", sl.cv, sl.correlation_s);
        } else
            printf("slow step noise: not fitted (record too short)\n");
        free(rl);
        free(rf);
        free(rr);
    }
    snprintf(path, sizeof path, "%s/profile.json", out);
    if (write_json(prof, path))
        goto done;
    rb_llm_kind_fit kf[2], kg[2];
    rb_llm_fit_by_kind(&fit, rec, n_rec, kf);
    rb_llm_fit_by_kind(&gfit, rec, n_rec, kg);
    printf("loop's step model: %.3g s + %.3g s x prefill token + %.3g s x decode seq + %.3g s "
           "x context token + %.3g s x prefill attention pair, from %zu steps (%zu at capacity, "
           "%zu at %d%%)\n",
           fit.overhead_s, fit.per_prefill_token_s, fit.per_decode_seq_s,
           fit.per_context_token_s, fit.per_prefill_attention_s, n_rec, n_cap_steps,
           n_cal_steps, CALIB_PERCENT);
    for (int k = 0; k < 2; k++)
        printf("  %-12s %6ld steps: measured / loop fit %.3f (rel. residual mean %+.3f, rms "
               "%.3f); measured / grid fit %.3f\n", k ? "with prefill" : "decode only",
               kf[k].steps, kf[k].measured_s / kf[k].model_s, kf[k].rel_mean, kf[k].rel_rms,
               kg[k].measured_s / kg[k].model_s);

    /* 4. the loop at 50% and 80% */
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
        if (!rq[k] || rb_llm_loop_run(net, NULL, c.budget, c.max_seqs, rq[k], nrq[k],
                                      &run_steps[k], &n_run_steps[k])) {
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
        rb_llm_fit_by_kind(&fit, run_steps[k], n_run_steps[k], kf);
        printf("load %s%%: %d requests at %.1f/s, %zu steps, which took %.3f x the loop fit's "
               "time (decode only %.3f, with prefill %.3f) and %.3f x the grid fit's\n",
               loads[k], nrq[k], frac[k] * capacity_rps, n_run_steps[k],
               sum_latency(run_steps[k], n_run_steps[k]) /
                   sum_model(&fit, run_steps[k], n_run_steps[k]),
               kf[0].measured_s / kf[0].model_s, kf[1].measured_s / kf[1].model_s,
               sum_latency(run_steps[k], n_run_steps[k]) /
                   sum_model(&gfit, run_steps[k], n_run_steps[k]));
    }
    if (fclose(lc))
        goto done;
    loadavg(load1, sizeof load1);
    double cpu_s = (double)clock() / CLOCKS_PER_SEC - cpu0;

    /* 5. fleetsim on the same arrivals: the loop fit with and without the
     * noise, the grid's fit, the loop fit rescaled per load */
    char dirp[PATH_MAX];
    if (!realpath(out, dirp))
        goto done;
    double dur = last_end * 2 + 30;
    double scale[2];
    for (int k = 0; k < 2; k++)
        scale[k] = sum_latency(run_steps[k], n_run_steps[k]) /
                   sum_model(&fit, run_steps[k], n_run_steps[k]);
    for (int v = 0; v < P_REPLAY; v++) {
        static const char *const yn[] = {"scenario.yaml", "scenario-no-noise.yaml",
                                         "scenario-grid.yaml", "scenario-rescaled.yaml"};
        static const char *const sn[] = {"sim", "sim-no-noise", "sim-grid", "sim-rescaled"};
        static const char *const nm[] = {"llm-loop", "llm-loop-no-noise", "llm-loop-grid",
                                         "llm-loop-rescaled"};
        char y[PATH_MAX + 64], so[PATH_MAX + 64], lg[PATH_MAX + 64];
        snprintf(y, sizeof y, "%s/%s", dirp, yn[v]);
        snprintf(so, sizeof so, "%s/%s", dirp, sn[v]);
        snprintf(lg, sizeof lg, "%s/%s.log", dirp, sn[v]);
        if (write_scenario(y, nm[v], v == P_GRID ? "profile-grid.json" : "profile.json",
                           v == P_NO_NOISE ? NULL : "profile.json",
                           v == P_RESCALED ? &fit : NULL, scale, &c, dur, loads, 2))
            goto done;
        int frc = rb_run_fleetsim(bin, y, so, lg);
        snprintf(path, sizeof path, "%s/summary.json", so);
        sims[v] = frc == 0 ? read_json(path) : NULL;
        if (!sims[v]) {
            fprintf(stderr, "realbench llm-loop: fleetsim failed (exit %d); see %s\n", frc, lg);
            goto done;
        }
    }

    /* 6. side by side */
    res = cJSON_CreateObject();
    cJSON_AddStringToObject(res, "schema", "fleetsim-llm-loop/2");
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
    cJSON_AddNumberToObject(cj, "steps", (double)n_cap_steps);
    cJSON *fj = cJSON_AddObjectToObject(res, "step_fit");
    cJSON *lj = cJSON_AddObjectToObject(fj, "loop");
    fit_json(lj, &fit);
    cJSON_AddItemToObject(lj, "by_kind_on_record", rb_llm_fit_by_kind_json(&fit, rec, n_rec));
    cJSON *gj2 = cJSON_AddObjectToObject(fj, "grid");
    fit_json(gj2, &gfit);
    cJSON_AddItemToObject(gj2, "by_kind_on_record", rb_llm_fit_by_kind_json(&gfit, rec, n_rec));
    cJSON_AddNumberToObject(res, "cpu_s", cpu_s);
    cJSON *mach = cJSON_AddObjectToObject(res, "machine");
    cJSON_AddStringToObject(mach, "loadavg_before", load0);
    cJSON_AddStringToObject(mach, "loadavg_after", load1);
    cJSON_AddNumberToObject(mach, "online_cpus", (double)sysconf(_SC_NPROCESSORS_ONLN));
    cJSON *rnz = rb_llm_noise_json(&nz);
    if (have_slow)
        cJSON_AddItemToObject(rnz, "slow", rb_llm_slow_noise_json(&sl));
    cJSON_AddItemToObject(res, "noise", rnz);
    for (int k = 0; k < 2; k++) {
        char key[32], pool[8];
        snprintf(key, sizeof key, "load_%s", loads[k]);
        snprintf(pool, sizeof pool, "p%s", loads[k]);
        cJSON *lo = cJSON_AddObjectToObject(res, key);
        cJSON_AddNumberToObject(lo, "rate_rps", frac[k] * capacity_rps);
        cJSON_AddNumberToObject(lo, "requests", nrq[k]);
        /* the run's steps against each fit on the same compositions (not
         * fitted on: out of sample); above 1, the steps ran slower than the
         * fit says */
        cJSON_AddNumberToObject(lo, "steps", (double)n_run_steps[k]);
        cJSON_AddNumberToObject(lo, "busy_over_model", scale[k]);
        cJSON_AddItemToObject(lo, "steps_vs_loop_fit",
                              rb_llm_fit_by_kind_json(&fit, run_steps[k], n_run_steps[k]));
        cJSON_AddItemToObject(lo, "steps_vs_grid_fit",
                              rb_llm_fit_by_kind_json(&gfit, run_steps[k], n_run_steps[k]));
        /* the loop's scheduler with the loop fit's step times */
        lreq *rp = fresh_copy(rq[k], nrq[k]);
        rb_llm_step *rs = NULL;
        size_t nrs = 0;
        if (!rp || rb_llm_loop_run(NULL, &fit, c.budget, c.max_seqs, rp, nrq[k], &rs, &nrs)) {
            free(rp);
            goto done;
        }
        free(rs);
        cJSON_AddNumberToObject(lo, "loop_scheduler_model_steps", (double)nrs);
        const char *metrics[] = {"ttft_s", "e2e_s"};
        for (int m = 0; m < 2; m++) {
            cJSON *ls2 = req_stats(rq[k], nrq[k], m), *rp2 = req_stats(rp, nrq[k], m);
            if (!ls2 || !rp2) {
                cJSON_Delete(ls2);
                cJSON_Delete(rp2);
                free(rp);
                goto done;
            }
            const cJSON *pred[N_PRED] = {sims[P_SIM], sims[P_NO_NOISE], sims[P_GRID],
                                         sims[P_RESCALED], rp2};
            compare_metric(lo, ls2, pred, pool, metrics[m]);
            cJSON_Delete(ls2);
            cJSON_Delete(rp2);
        }
        free(rp);
        const char *fin[] = {"pools", pool, "llm", "finished", NULL};
        cJSON_AddNumberToObject(lo, "fleetsim_finished", jget(sims[P_SIM], fin));
        const char *stp[] = {"pools", pool, "llm", "steps", NULL};
        cJSON_AddNumberToObject(lo, "fleetsim_no_noise_steps", jget(sims[P_NO_NOISE], stp));
    }
    snprintf(path, sizeof path, "%s/compare.json", out);
    if (write_json(res, path))
        goto done;
    printf("%-20s %-30s %-19s %-9s %-19s %-9s %-9s\n", "", "loop [95%]", "fleetsim", "no noise",
           "grid fit", "rescaled", "sched+model");
    for (int k = 0; k < 2; k++) {
        char key[32];
        snprintf(key, sizeof key, "load_%s", loads[k]);
        const cJSON *lo = cJSON_GetObjectItemCaseSensitive(res, key);
        const char *ms[] = {"ttft_s_mean", "ttft_s_p99", "e2e_s_mean", "e2e_s_p99"};
        for (int m = 0; m < 4; m++) {
            const cJSON *e = cJSON_GetObjectItemCaseSensitive(lo, ms[m]);
            double l = jget(e, (const char *[]){"loop", NULL});
            double g = jget(e, (const char *[]){"fleetsim_grid", NULL});
            printf("load %s%% %-11s %8.2f ms [%8.2f, %8.2f] %8.2f ms (%+6.1f%%) %8.2f %8.2f "
                   "(%+6.1f%%) %8.2f %8.2f\n",
                   loads[k], ms[m], 1e3 * l,
                   1e3 * jget(e, (const char *[]){"loop_ci95_lo", NULL}),
                   1e3 * jget(e, (const char *[]){"loop_ci95_hi", NULL}),
                   1e3 * jget(e, (const char *[]){"fleetsim", NULL}),
                   100 * jget(e, (const char *[]){"rel_diff", NULL}),
                   1e3 * jget(e, (const char *[]){"fleetsim_no_noise", NULL}), 1e3 * g,
                   100 * (g - l) / l,
                   1e3 * jget(e, (const char *[]){"fleetsim_rescaled", NULL}),
                   1e3 * jget(e, (const char *[]){"loop_scheduler_model", NULL}));
        }
    }
    printf("wrote %s (CPU %.0f s; load average before %s, after %s)\n", path, cpu_s, load0,
           load1);
    rc = 0;
done:
    cJSON_Delete(res);
    for (int v = 0; v < N_PRED; v++)
        cJSON_Delete(sims[v]);
    cJSON_Delete(prof);
    cJSON_Delete(gprof);
    rb_llm_net_free(net);
    free(rq[0]);
    free(rq[1]);
    free(run_steps[0]);
    free(run_steps[1]);
    free(cap);
    free(cal);
    free(noise);
    free(rec);
    free(steps);
    gsl_rng_free(r);
    gsl_rng_free(rcal);
    return rc;
}
