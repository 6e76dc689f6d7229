/*
 * test_llm_loop.c - realbench's step-noise fit (llm_loop.c) recovers the
 * cv and correlation time of synthetic AR(1) records made by fleetsim's own
 * generator (sim/base/llm_noise.c) as a replica runs steps back to back,
 * within 5 standard errors of the estimates for the record's length; a
 * record without memory gives a correlation time below one step; a small
 * record is fitted as its arithmetic says; the CPU kernel's record has one
 * positive time per step; short or bad records are refused; and `realbench
 * llm-step --noise-steps` writes llm_step.noise into the profile, which
 * fleetsim's loader accepts. The slow component's fit
 * (rb_llm_slow_noise_fit) recovers the cv and correlation time of a slow
 * OU under a fast one in a synthetic loop record, within tolerances from
 * the record's length, and refuses a record too short for its windows.
 * The closed loop's scheduler run with model
 * step times (rb_llm_loop_run without a net) forms the steps worked out by
 * hand, and the same steps as fleetsim on a trace: same step count, same
 * TTFT and E2E mean and max.
 */
#include "llm_layer.h"
#include "llm_noise.h"
#include "realbench.h"
#include "testutil.h"

#include <CUnit/Basic.h>
#include <gsl/gsl_randist.h>
#include <gsl/gsl_rng.h>
#include <math.h>

/* n steps of base_s x factor, back to back (each starts as the previous ends). */
static double *ar1_record(double base_s, double cv, double tau_s, size_t n, unsigned long seed)
{
    gsl_rng *r = gsl_rng_alloc(gsl_rng_mt19937);
    gsl_rng_set(r, seed);
    llm_noise *nz = llm_noise_new(cv, tau_s, r);
    double *x = malloc(sizeof *x * n), t = 0;
    for (size_t i = 0; i < n; i++) {
        llm_noise_plan(nz);
        x[i] = base_s * llm_noise_next(nz, t);
        llm_noise_commit(nz, 1);
        t += x[i];
    }
    llm_noise_free(nz);
    return x;
}

static void check_within(const char *what, double got, double want, double se)
{
    if (!(fabs(got - want) <= 5 * se))
        fprintf(stderr, "\n  %s: %.6g, expected %.6g +- 5 x %.3g", what, got, want, se);
    CU_ASSERT(fabs(got - want) <= 5 * se);
}

static void test_fit_recovers_ar1(void)
{
    const size_t n = 100000;
    const double base = 1e-3, cv = 0.1, tau = 2e-3;
    double *x = ar1_record(base, cv, tau, n, 21);
    rb_llm_noise f;
    CU_ASSERT_EQUAL_FATAL(rb_llm_noise_fit(x, n, &f), 0);
    double rho = exp(-base / tau), se_rho = sqrt((1 - rho * rho) / n);
    CU_ASSERT_EQUAL(f.steps, n);
    /* steps back to back sample the process unevenly (a long step lets it
     * revert further before the next): the mean per step sits below base
     * by O(cv^2), here about 0.8% */
    CU_ASSERT(fabs(f.mean_s / base - 1) < cv * cv);
    check_within("lag1", f.lag1, rho, se_rho);
    /* the sd's se for a nearly Gaussian AR(1) (cv 0.1: kurtosis 3.16) */
    check_within("cv", f.cv, cv, cv * 0.5 * sqrt(2.16 * (1 + rho * rho) / (1 - rho * rho) / n));
    /* tau = -dt / ln(rho): its se is dt / (rho ln(rho)^2) x se(rho) */
    double lr = log(rho);
    check_within("correlation_s", f.correlation_s, tau, base / (rho * lr * lr) * se_rho);
    free(x);
}

static void test_fit_no_memory(void)
{
    const size_t n = 50000;
    double *x = ar1_record(2e-3, 0.2, 0, n, 22);
    rb_llm_noise f;
    CU_ASSERT_EQUAL_FATAL(rb_llm_noise_fit(x, n, &f), 0);
    check_within("lag1 without memory", f.lag1, 0, 1 / sqrt((double)n));
    /* lag1 < exp(-1) then, so the correlation time is under one step */
    CU_ASSERT(f.correlation_s < f.dt_s);
    check_within("cv", f.cv, 0.2, 0.2 * 0.5 * sqrt(2.7 / n));
    free(x);
}

/* 1, 2, 1, 2, ... (ten): mean 1.5, sample sd sqrt(10 x 0.25 / 9), logs
 * alternating: lag1 = -9/10, so no memory (correlation_s 0). */
static void test_fit_by_hand(void)
{
    double x[10];
    for (int i = 0; i < 10; i++)
        x[i] = i % 2 ? 2 : 1;
    rb_llm_noise f;
    CU_ASSERT_EQUAL_FATAL(rb_llm_noise_fit(x, 10, &f), 0);
    CU_ASSERT_DOUBLE_EQUAL(f.mean_s, 1.5, 1e-12);
    CU_ASSERT_DOUBLE_EQUAL(f.cv, sqrt(2.5 / 9) / 1.5, 1e-12);
    CU_ASSERT_DOUBLE_EQUAL(f.lag1, -0.9, 1e-12);
    CU_ASSERT_EQUAL(f.correlation_s, 0);
    CU_ASSERT_EQUAL(rb_llm_noise_fit(x, 9, &f), -1); /* too short */
    x[3] = 0;
    CU_ASSERT_EQUAL(rb_llm_noise_fit(x, 10, &f), -1); /* a step of no time */
}

static void test_record_on_cpu(void)
{
    rb_llm_opts o;
    rb_llm_opts_default(&o);
    double *t = NULL;
    CU_ASSERT_EQUAL_FATAL(rb_llm_noise_record(&o, 200, &t), 0);
    int bad = 0;
    for (int i = 0; i < 200; i++)
        bad += !(t[i] > 0 && t[i] < 10);
    CU_ASSERT_EQUAL(bad, 0);
    free(t);
}

/* llm-step --noise-steps: the profile's llm_step.noise, read by fleetsim. */
static void test_cli_noise(void)
{
    char *d = tu_tmpdir();
    char prof[4096], yaml[8192], cmd[4096];
    snprintf(prof, sizeof prof, "%s/p.json", d);
    char *argv[] = {"realbench", "llm-step", "--out", prof, "--reps", "1", "--warmup", "1",
                    "--noise-steps", "300", "--quiet", NULL};
    CU_ASSERT_EQUAL_FATAL(rb_main(11, argv), 0);
    char *text = tu_read(prof);
    cJSON *p = text ? cJSON_Parse(text) : NULL;
    free(text);
    CU_ASSERT_PTR_NOT_NULL_FATAL(p);
    const cJSON *nz = cJSON_GetObjectItemCaseSensitive(
        cJSON_GetObjectItemCaseSensitive(p, "llm_step"), "noise");
    const cJSON *cv = cJSON_GetObjectItemCaseSensitive(nz, "cv");
    const cJSON *st = cJSON_GetObjectItemCaseSensitive(nz, "steps");
    CU_ASSERT(cJSON_IsNumber(cv) && cv->valuedouble > 0);
    CU_ASSERT(cJSON_IsNumber(st) && st->valuedouble == 300);
    CU_ASSERT(cJSON_IsNumber(cJSON_GetObjectItemCaseSensitive(nz, "correlation_s")));
    CU_ASSERT(cJSON_IsNumber(cJSON_GetObjectItemCaseSensitive(nz, "lag1")));
    cJSON_Delete(p);
    snprintf(yaml, sizeof yaml,
             "name: n\nduration: 10s\nmodels:\n  m: {llm: {config: %s/scenarios/models/"
             "llama-3.1-8b.json,\n     step: {model: alpha_beta, calibration: %s,\n"
             "            noise: {calibration: %s}}}}\n"
             "pools:\n  p: {model: m, replicas: 1, gpus_per_node: 1, gpu: H100-SXM}\n"
             "traffic:\n  - {name: t, pool: p, arrivals: {rate: 2}, tokens: {input: 100, "
             "output: 10}}\n", tu_src(), prof, prof);
    snprintf(cmd, sizeof cmd, "%s/s.yaml", d);
    tu_write(cmd, yaml);
    snprintf(cmd, sizeof cmd, "'%s' validate '%s/s.yaml' > /dev/null 2>&1", tu_bin(), d);
    CU_ASSERT_EQUAL(system(cmd), 0);
    tu_done(d);
}

/* The loop's scheduler with model step times, by hand: 1 ms a step
 * whatever it holds; budget 256, 32 sequences. A (t 0, 300 prompt tokens,
 * 2 out) prefills 256, then its last 44 beside B (t 0.5 ms, 10 in, 1 out),
 * which joined at the next step; both first tokens at 2 ms (B done), A's
 * second at 3 ms. The loop is then idle until C (t 10 ms, 1 in, 3 out):
 * its prompt, then two decodes. */
static void test_replay_by_hand(void)
{
    rb_llm_fit f = {.overhead_s = 1e-3};
    rb_llm_loop_req q[3] = {{.arrival_s = 0, .in = 300, .out = 2},
                            {.arrival_s = 0.5e-3, .in = 10, .out = 1},
                            {.arrival_s = 10e-3, .in = 1, .out = 3}};
    rb_llm_step *st = NULL;
    size_t n = 0;
    CU_ASSERT_EQUAL_FATAL(rb_llm_loop_run(NULL, &f, 256, 32, q, 3, &st, &n), 0);
    CU_ASSERT_EQUAL_FATAL(n, 6);
    /* prefill, decode, context, pairs n (c + (n + 1) / 2) */
    const double want[6][4] = {{256, 0, 0, 256 * 128.5},
                               {54, 0, 256, 44 * (256 + 22.5) + 10 * 5.5},
                               {0, 1, 300, 0},
                               {1, 0, 0, 1},
                               {0, 1, 1, 0},
                               {0, 1, 2, 0}};
    for (size_t i = 0; i < n; i++) {
        CU_ASSERT_DOUBLE_EQUAL(st[i].prefill_tokens, want[i][0], 0);
        CU_ASSERT_DOUBLE_EQUAL(st[i].decode_seqs, want[i][1], 0);
        CU_ASSERT_DOUBLE_EQUAL(st[i].context_tokens, want[i][2], 0);
        CU_ASSERT_DOUBLE_EQUAL(st[i].prefill_attention_pairs, want[i][3], 0);
        CU_ASSERT_DOUBLE_EQUAL(st[i].latency_s, 1e-3, 1e-15);
    }
    CU_ASSERT_DOUBLE_EQUAL(q[0].first_s, 2e-3, 1e-15);
    CU_ASSERT_DOUBLE_EQUAL(q[0].last_s, 3e-3, 1e-15);
    CU_ASSERT_DOUBLE_EQUAL(q[1].first_s, 2e-3, 1e-15);
    CU_ASSERT_DOUBLE_EQUAL(q[1].last_s, 2e-3, 1e-15);
    CU_ASSERT_DOUBLE_EQUAL(q[2].first_s, 11e-3, 1e-15);
    CU_ASSERT_DOUBLE_EQUAL(q[2].last_s, 13e-3, 1e-15);
    free(st);
    /* neither a net nor a fit: refused */
    CU_ASSERT_EQUAL(rb_llm_loop_run(NULL, NULL, 256, 32, q, 3, &st, &n), -1);
}

/* fleetsim forms the loop's steps: Poisson arrivals that keep a model with
 * the CPU loop's coefficients busy 87% of the time, replayed as a
 * trace by fleetsim without noise (the scenario llm-loop writes) and run
 * through the loop's scheduler with the same model's step times. Same
 * steps and same times give the same step count and, since fleetsim keeps
 * means and maxima exact, the same TTFT and E2E mean and max (to the
 * rounding of summing in another order). */
static void test_replay_matches_fleetsim(void)
{
    const int n = 1500;
    const double rate = 110; /* requests/s */
    rb_llm_fit f = {.overhead_s = 2e-5, .per_prefill_token_s = 1.15e-5,
                    .per_decode_seq_s = 9.8e-6, .per_context_token_s = 1.1e-7,
                    .per_prefill_attention_s = 1.15e-7};
    rb_llm_loop_req *q = calloc((size_t)n, sizeof *q);
    gsl_rng *r = gsl_rng_alloc(gsl_rng_mt19937);
    gsl_rng_set(r, 5);
    char *d = tu_tmpdir(), path[4096], cmd[8192];
    snprintf(path, sizeof path, "%s/trace.csv", d);
    FILE *tf = fopen(path, "w");
    CU_ASSERT_PTR_NOT_NULL_FATAL(tf);
    fprintf(tf, "arrived_at,num_prefill_tokens,num_decode_tokens\n");
    double t = 0;
    for (int i = 0; i < n; i++) {
        t += gsl_ran_exponential(r, 1 / rate);
        q[i].arrival_s = round(t * 1e9) / 1e9;
        q[i].in = 1 + (int)gsl_rng_uniform_int(r, 400);
        q[i].out = 1 + (int)gsl_rng_uniform_int(r, 120);
        fprintf(tf, "%.9f,%d,%d\n", q[i].arrival_s, q[i].in, q[i].out);
    }
    fclose(tf);
    gsl_rng_free(r);
    snprintf(path, sizeof path, "%s/p.json", d);
    snprintf(cmd, sizeof cmd,
             "{\"schema\": \"fleetsim-calibration/1\", \"llm_step\": {\"overhead_s\": %.17g, "
             "\"per_prefill_token_s\": %.17g, \"per_decode_seq_s\": %.17g, "
             "\"per_context_token_s\": %.17g, \"per_prefill_attention_s\": %.17g}}\n",
             f.overhead_s, f.per_prefill_token_s, f.per_decode_seq_s, f.per_context_token_s,
             f.per_prefill_attention_s);
    tu_write(path, cmd);
    snprintf(path, sizeof path, "%s/s.yaml", d);
    tu_write(path,
             "name: replay\nseed: 7\nduration: 60s\nmodels:\n  toy:\n    llm:\n"
             "      config: {hidden_size: 128, num_hidden_layers: 2, num_attention_heads: 1,\n"
             "               num_key_value_heads: 1, intermediate_size: 512, vocab_size: 1024}\n"
             "      precision: fp32\n"
             "      step: {model: alpha_beta, calibration: p.json}\n"
             "      max_num_batched_tokens: 256\n      max_num_seqs: 32\n"
             "      kv_blocks: 1000000\n"
             "pools:\n  p: {model: toy, replicas: 1, gpus_per_node: 1, gpu: H100-SXM,\n"
             "      queue_capacity: 100000000, link: {latency: 0s, bandwidth: 1000Gbps}}\n"
             "traffic:\n  - {name: t, pool: p, size: 0B, response_size: 0B,\n"
             "     tokens: {trace: trace.csv}}\n");
    snprintf(cmd, sizeof cmd, "cd '%s' && '%s' run s.yaml --out out > log 2>&1", d, tu_bin());
    CU_ASSERT_EQUAL_FATAL(system(cmd), 0);
    rb_llm_step *st = NULL;
    size_t ns = 0;
    CU_ASSERT_EQUAL_FATAL(rb_llm_loop_run(NULL, &f, 256, 32, q, n, &st, &ns), 0);
    snprintf(path, sizeof path, "%s/out/summary.json", d);
    char *text = tu_read(path);
    cJSON *sum = text ? cJSON_Parse(text) : NULL;
    free(text);
    CU_ASSERT_PTR_NOT_NULL_FATAL(sum);
    const cJSON *llm = cJSON_GetObjectItemCaseSensitive(
        cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(sum, "pools"), "p"),
        "llm");
    const cJSON *x = cJSON_GetObjectItemCaseSensitive(llm, "steps");
    CU_ASSERT(cJSON_IsNumber(x) && x->valuedouble == (double)ns);
    x = cJSON_GetObjectItemCaseSensitive(llm, "finished");
    CU_ASSERT(cJSON_IsNumber(x) && x->valuedouble == n);
    double busy = 0;
    for (size_t i = 0; i < ns; i++)
        busy += st[i].latency_s;
    CU_ASSERT(busy > 0.6 * t && busy < 0.95 * t); /* a queue that matters, not saturated */
    const char *metric[] = {"ttft_s", "e2e_s"};
    for (int m = 0; m < 2; m++) {
        double mean = 0, max = 0;
        for (int i = 0; i < n; i++) {
            double v = (m ? q[i].last_s : q[i].first_s) - q[i].arrival_s;
            mean += v / n;
            max = v > max ? v : max;
        }
        const cJSON *h = cJSON_GetObjectItemCaseSensitive(llm, metric[m]);
        const cJSON *hm = cJSON_GetObjectItemCaseSensitive(h, "mean");
        const cJSON *hx = cJSON_GetObjectItemCaseSensitive(h, "max");
        CU_ASSERT_FATAL(cJSON_IsNumber(hm) && cJSON_IsNumber(hx));
        if (fabs(hm->valuedouble - mean) > 1e-9 * mean || fabs(hx->valuedouble - max) > 1e-9 * max)
            fprintf(stderr, "\n  %s: fleetsim mean %.9g max %.9g, loop's scheduler %.9g, %.9g",
                    metric[m], hm->valuedouble, hx->valuedouble, mean, max);
        CU_ASSERT_DOUBLE_EQUAL(hm->valuedouble, mean, 1e-9 * mean);
        CU_ASSERT_DOUBLE_EQUAL(hx->valuedouble, max, 1e-9 * max);
    }
    cJSON_Delete(sum);
    free(st);
    free(q);
    tu_done(d);
}

/* A loop record of ~430,000 steps (600 s busy) in two runs: each step's
 * fitted time uniform in [0.4, 2.4] ms, its measured time that times
 * exp(x_f + x_s - (s_f^2 + s_s^2) / 2), x_f and x_s OU processes (cv 0.14,
 * 5 ms; cv 0.10, 150 ms) sampled exactly at the steps' starts (drawn here
 * with GSL, not with fleetsim's generator). The fit, given the fast
 * component, finds the slow one. Its information is the variance of the
 * window means at the largest windows, whose relative standard error for
 * a record of T s is about sqrt(2 (tau + W) / T) (independent windows
 * every tau + W): 0.062 at W = 1 s. Tolerances: 5 of those on tau, 2.5
 * (half, a square root) on the cv. (Eight such records drawn
 * independently gave tau 0.135-0.159 s, sd 6%, and cv 0.098-0.101, sd
 * 1.2%: the tau bound is 5 sd, the cv bound loose, the cv being pinned by
 * every window, not only the largest.) */
static void test_slow_fit_recovers(void)
{
    const double cvf = 0.14, tf = 0.005, cvs = 0.10, ts = 0.15, busy_s = 600;
    const size_t cap = 500000;
    double *lat = malloc(sizeof *lat * cap), *fit = malloc(sizeof *fit * cap);
    int *run = malloc(sizeof *run * cap);
    gsl_rng *r = gsl_rng_alloc(gsl_rng_mt19937);
    gsl_rng_set(r, 77);
    double sf = sqrt(log1p(cvf * cvf)), ss = sqrt(log1p(cvs * cvs));
    double zf = gsl_ran_ugaussian(r), zs = gsl_ran_ugaussian(r), t = 0;
    size_t n = 0;
    while (t < busy_s && n < cap) {
        fit[n] = 0.0004 + 0.002 * gsl_rng_uniform(r);
        lat[n] = fit[n] * exp(sf * zf + ss * zs - 0.5 * (sf * sf + ss * ss));
        run[n] = t > busy_s / 3;
        double rf = exp(-lat[n] / tf), rs = exp(-lat[n] / ts);
        zf = rf * zf + sqrt(1 - rf * rf) * gsl_ran_ugaussian(r);
        zs = rs * zs + sqrt(1 - rs * rs) * gsl_ran_ugaussian(r);
        t += lat[n++];
    }
    CU_ASSERT_FATAL(t >= busy_s);
    rb_llm_slow_noise sl;
    CU_ASSERT_EQUAL_FATAL(rb_llm_slow_noise_fit(lat, fit, run, n, cvf, tf, &sl), 0);
    double rel = sqrt(2 * (ts + RB_LLM_SLOW_W[RB_LLM_SLOW_NW - 1]) / busy_s);
    if (!(fabs(sl.cv / cvs - 1) <= 2.5 * rel && fabs(sl.correlation_s / ts - 1) <= 5 * rel))
        fprintf(stderr, "\n  slow fit: cv %.4f (want %.4f), tau %.4f (want %.4f), rel se %.3f",
                sl.cv, cvs, sl.correlation_s, ts, rel);
    CU_ASSERT(fabs(sl.cv / cvs - 1) <= 2.5 * rel);
    CU_ASSERT(fabs(sl.correlation_s / ts - 1) <= 5 * rel);
    CU_ASSERT(sl.windows[RB_LLM_SLOW_NW - 1] >= 590 && sl.windows[RB_LLM_SLOW_NW - 1] <= 600);
    /* the fast component alone: its share of the smallest windows' spread
     * is the formula's, so a fit without it would find more slow noise */
    rb_llm_slow_noise nofast;
    CU_ASSERT_EQUAL(rb_llm_slow_noise_fit(lat, fit, run, n, 1e-9, tf, &nofast), 0);
    CU_ASSERT(nofast.cv > sl.cv);
    /* too short: 1.5 s of steps has one window of 1 s per run */
    size_t few = 0;
    for (double b = 0; b < 1.5; few++)
        b += lat[few];
    CU_ASSERT_EQUAL(rb_llm_slow_noise_fit(lat, fit, run, few, cvf, tf, &sl), -1);
    lat[3] = 0; /* a time not > 0 */
    CU_ASSERT_EQUAL(rb_llm_slow_noise_fit(lat, fit, run, n, cvf, tf, &sl), -1);
    gsl_rng_free(r);
    free(lat);
    free(fit);
    free(run);
}

int main(void)
{
    if (CU_initialize_registry() != CUE_SUCCESS)
        return (int)CU_get_error();
    CU_pSuite s = CU_add_suite("llm_loop", NULL, NULL);
    CU_add_test(s, "the fit recovers an AR(1) record's cv and correlation", test_fit_recovers_ar1);
    CU_add_test(s, "a record without memory", test_fit_no_memory);
    CU_add_test(s, "a record fitted by hand; bad records refused", test_fit_by_hand);
    CU_add_test(s, "the CPU kernel's record", test_record_on_cpu);
    CU_add_test(s, "llm-step --noise-steps: the profile's noise, read by fleetsim", test_cli_noise);
    CU_add_test(s, "the slow component's fit on a synthetic loop record", test_slow_fit_recovers);
    CU_add_test(s, "the loop's scheduler with model step times, by hand", test_replay_by_hand);
    CU_add_test(s, "fleetsim forms the loop's steps", test_replay_matches_fleetsim);
    CU_basic_set_mode(CU_BRM_VERBOSE);
    CU_basic_run_tests();
    int failures = (int)CU_get_number_of_failures();
    CU_cleanup_registry();
    return failures;
}
