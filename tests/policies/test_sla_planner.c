/*
 * test_sla_planner.c - the `sla_planner` policy (Dynamo's SLA planner) on
 * hand-built views with a hand-made profile, no SimGrid: replica counts
 * worked out by hand from planner_core.py's formulas.
 *
 * The profile: a prompt of n tokens prefills in 10 ms + 50 us x n (1000
 * tokens: 60 ms, 16,666.67 tokens/s); a decode step of b sequences at
 * context c takes 5 ms + b x (100 us + c x 100 ns) (c = 1100: 5 ms + 210 us
 * x b). 256 sequences at most, a KV cache of a million tokens.
 */
#include "autoscale.h"

#include <CUnit/Basic.h>
#include <CUnit/CUnit.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#define N_OF(a) ((int)(sizeof(a) / sizeof((a)[0])))

static double prefill_s(const void *ctx, double tokens)
{
    (void)ctx;
    return 0.010 + 50e-6 * tokens;
}

static double decode_step_s(const void *ctx, int batch, double context)
{
    (void)ctx;
    return 0.005 + batch * (100e-6 + context * 100e-9);
}

static as_llm_profile profile(int max_batch, double kv_tokens, int per_pod)
{
    return (as_llm_profile){ NULL, prefill_s, decode_step_s, max_batch, kv_tokens, per_pod };
}

static as *planner(const as_param *p, int n)
{
    char err[512];
    as_config cfg = { "t.yaml", NULL, n, p };
    as *a = as_create("sla_planner", &cfg, err, sizeof err);
    if (!a)
        fprintf(stderr, "\n  as_create(sla_planner): %s\n", err);
    return a;
}

/* What the clients saw in the interval; a negative value leaves that
 * metric out (nothing observed). */
typedef struct {
    double requests, isl, osl, ttft_s, itl_s, duration_s;
} seen;

/* One sync with `ready` ready pods out of `current`. */
static int sync_view(as *a, const as_llm_profile *pr, int current, int ready, seen s)
{
    as_pod_view pods[16];
    as_metric m[6];
    int nm = 0;
    const char *names[] = { "llm_requests", "llm_isl_mean", "llm_osl_mean", "llm_ttft_mean_s",
                            "llm_itl_mean_s", "llm_request_duration_mean_s" };
    double vals[] = { s.requests, s.isl, s.osl, s.ttft_s, s.itl_s, s.duration_s };
    for (int i = 0; i < 6; i++)
        if (vals[i] >= 0)
            m[nm++] = (as_metric){ names[i], vals[i] };
    memset(pods, 0, sizeof pods);
    for (int i = 0; i < current; i++) {
        pods[i].phase = AS_POD_RUNNING;
        pods[i].scheduled = 1;
        pods[i].ready = i < ready;
    }
    as_view v = { .now_s = 60, .current_replicas = current, .min_replicas = 0, .max_replicas = 100,
                  .n_pods = current, .pods = pods, .n_metrics = nm, .metrics = m, .llm = pr };
    return as_recommend(a, &v);
}

/* No correction, constant predictor, 60 s interval, ITL target 50 ms. 2700
 * requests of 1000 prompt and 200 output tokens in the interval:
 * prefill 2700 x 1000 / 60 = 45,000 tokens/s over 16,666.67 per replica =
 * 2.7 -> 3; decode 2700 x 200 / 60 = 9,000 tokens/s; at context 1000 +
 * 200 / 2 = 1100 the largest batch with a step <= 50 ms is 214 (5 + 0.21 x
 * 214 = 49.94 ms), 214 / 0.04994 = 4,285.1 tokens/s -> 2.1003 -> 3;
 * mixed: ceil(2.7 + 2.1003) = 5. */
static void test_formulas_by_role(void)
{
    as_llm_profile pr = profile(256, 1e6, 1);
    seen s = { 2700, 1000, 200, 0.2, 0.03, 5 };
    const char *roles[] = { "prefill", "decode", "mixed" };
    int want[] = { 3, 3, 5 };
    for (int i = 0; i < 3; i++) {
        as_param p[] = { { "role", roles[i], 1, 1 }, { "adjustment_interval", "60s", 2, 1 },
                         { "itl", "50ms", 3, 1 }, { "no_correction", "true", 4, 1 } };
        as *a = planner(p, N_OF(p));
        CU_ASSERT_PTR_NOT_NULL_FATAL(a);
        CU_ASSERT_DOUBLE_EQUAL(as_period_s(a), 60.0, 0);
        int got = sync_view(a, &pr, 1, 1, s);
        if (got != want[i])
            fprintf(stderr, "\n  role %s: got %d, want %d (%s)", roles[i], got, want[i], as_reason(a));
        CU_ASSERT_EQUAL(got, want[i]);
        as_destroy(a);
    }
    /* two engine replicas per pod halve the pods: prefill 2.7 / 2 -> 2,
     * decode 2.1003 / 2 -> 2, mixed 4.8003 / 2 -> 3 */
    pr = profile(256, 1e6, 2);
    int want2[] = { 2, 2, 3 };
    for (int i = 0; i < 3; i++) {
        as_param p[] = { { "role", roles[i], 1, 1 }, { "adjustment_interval", "60s", 2, 1 },
                         { "no_correction", "true", 4, 1 } };
        as *a = planner(p, N_OF(p));
        CU_ASSERT_PTR_NOT_NULL_FATAL(a);
        CU_ASSERT_EQUAL(sync_view(a, &pr, 1, 1, s), want2[i]);
        as_destroy(a);
    }
}

/* The decode batch is bounded by the KV cache and falls back to 1: 600
 * requests (decode 2,000 tokens/s). With 11,000 KV tokens at context 1100
 * at most 10 sequences fit: 10 / (5 + 2.1) ms = 1,408.45 tokens/s -> 1.42
 * -> 2. With an ITL target of 4 ms no batch meets it (one sequence takes
 * 5.21 ms): a batch of 1, 191.94 tokens/s -> 10.42 -> 11. */
static void test_decode_bounds(void)
{
    seen s = { 600, 1000, 200, 0.2, 0.03, 5 };
    as_param p[] = { { "role", "decode", 1, 1 }, { "adjustment_interval", "60s", 2, 1 },
                     { "no_correction", "true", 4, 1 } };
    as_llm_profile pr = profile(256, 11000, 1);
    as *a = planner(p, N_OF(p));
    CU_ASSERT_PTR_NOT_NULL_FATAL(a);
    CU_ASSERT_EQUAL(sync_view(a, &pr, 1, 1, s), 2);
    as_destroy(a);
    as_param q[] = { { "role", "decode", 1, 1 }, { "adjustment_interval", "60s", 2, 1 },
                     { "no_correction", "true", 4, 1 }, { "itl", "4ms", 5, 1 } };
    pr = profile(256, 1e6, 1);
    a = planner(q, N_OF(q));
    CU_ASSERT_PTR_NOT_NULL_FATAL(a);
    CU_ASSERT_EQUAL(sync_view(a, &pr, 1, 1, s), 11);
    as_destroy(a);
    /* max_num_seqs 8: 8 / 6.68 ms = 1,197.6 tokens/s -> 2000 / 1197.6 = 1.67 -> 2 */
    pr = profile(8, 1e6, 1);
    a = planner(p, N_OF(p));
    CU_ASSERT_PTR_NOT_NULL_FATAL(a);
    CU_ASSERT_EQUAL(sync_view(a, &pr, 1, 1, s), 2);
    as_destroy(a);
}

/* Correction factors, ITL target 20 ms, two ready pods. Observed TTFT 30 ms
 * against 60 ms alone: factor 0.5, so prefill 45,000 x 0.5 = 22,500
 * tokens/s -> 1.35 -> 2 (without correction 2.7 -> 3). Concurrency per
 * replica 2700 / 2 x 6 s / 60 s = 135: a step of 5 + 0.21 x 135 = 33.35 ms
 * expected, 66.7 ms observed: factor 2, the ITL target becomes 10 ms,
 * batch 23 (9.83 ms), 2,339.8 tokens/s -> 9000 / 2339.8 = 3.85 -> 4
 * (without correction: batch 71, 19.91 ms, 3,566.1 tokens/s -> 2.52 -> 3). */
static void test_correction_factors(void)
{
    as_llm_profile pr = profile(256, 1e6, 1);
    seen s = { 2700, 1000, 200, 0.030, 0.0667, 6 };
    const char *roles[] = { "prefill", "decode", "mixed" };
    int want[] = { 2, 4, 6 }, want_off[] = { 3, 3, 6 };
    for (int i = 0; i < 3; i++) {
        as_param p[] = { { "role", roles[i], 1, 1 }, { "adjustment_interval", "60s", 2, 1 },
                         { "itl", "20ms", 3, 1 } };
        as *a = planner(p, N_OF(p));
        CU_ASSERT_PTR_NOT_NULL_FATAL(a);
        int got = sync_view(a, &pr, 2, 2, s);
        if (got != want[i])
            fprintf(stderr, "\n  role %s: got %d, want %d (%s)", roles[i], got, want[i], as_reason(a));
        CU_ASSERT_EQUAL(got, want[i]);
        CU_ASSERT_PTR_NOT_NULL(strstr(as_reason(a), "correction TTFT 0.5, ITL 2)"));
        as_destroy(a);
        as_param q[] = { { "role", roles[i], 1, 1 }, { "adjustment_interval", "60s", 2, 1 },
                         { "itl", "20ms", 3, 1 }, { "no_correction", "true", 4, 1 } };
        a = planner(q, N_OF(q));
        CU_ASSERT_PTR_NOT_NULL_FATAL(a);
        CU_ASSERT_EQUAL(sync_view(a, &pr, 2, 2, s), want_off[i]);
        as_destroy(a);
    }
    /* mixed with correction: 1.35 + 3.846 = 5.196 -> 6; without: 2.7 +
     * 2.524 = 5.22 -> 6 (same count, from other shares) */
    /* a TTFT far above the profile's (queueing) does not raise prefill:
     * min(1, 4) = 1 -> 45,000 tokens/s -> 3 */
    as_param p[] = { { "role", "prefill", 1, 1 }, { "adjustment_interval", "60s", 2, 1 } };
    as *a = planner(p, N_OF(p));
    CU_ASSERT_PTR_NOT_NULL_FATAL(a);
    CU_ASSERT_EQUAL(sync_view(a, &pr, 2, 2, (seen){ 2700, 1000, 200, 0.240, 0.03, 6 }), 3);
    /* no ready pod: nothing to correct against, the count is kept */
    CU_ASSERT_EQUAL(sync_view(a, &pr, 2, 0, (seen){ 2700, 1000, 200, 0.240, 0.03, 6 }), 2);
    as_destroy(a);
}

/* Predictors, prefill role, no correction: a request count r gives
 * ceil(r / 1000) replicas (r x 1000 / 60 tokens/s over 16,666.67). Counts
 * 600, 1200, 2400, 3500: constant predicts the last (1, 2, 3, 4);
 * moving_average over 3 the mean of the last three: 600, 900, 1400,
 * 2366.7 -> 1, 1, 2, 3. */
static void test_predictors(void)
{
    as_llm_profile pr = profile(256, 1e6, 1);
    double counts[] = { 600, 1200, 2400, 3500 };
    int want_const[] = { 1, 2, 3, 4 }, want_ma[] = { 1, 1, 2, 3 };
    as_param pc[] = { { "role", "prefill", 1, 1 }, { "adjustment_interval", "60s", 2, 1 },
                      { "no_correction", "true", 3, 1 }, { "load_predictor", "constant", 4, 1 } };
    as_param pm[] = { { "role", "prefill", 1, 1 }, { "adjustment_interval", "60s", 2, 1 },
                      { "no_correction", "true", 3, 1 }, { "load_predictor", "moving_average", 4, 1 },
                      { "prediction_window", "3", 5, 1 } };
    as *c = planner(pc, N_OF(pc)), *m = planner(pm, N_OF(pm));
    CU_ASSERT_PTR_NOT_NULL_FATAL(c);
    CU_ASSERT_PTR_NOT_NULL_FATAL(m);
    int cur_c = 1, cur_m = 1;
    for (int i = 0; i < 4; i++) {
        seen s = { counts[i], 1000, 200, 0.2, 0.03, 5 };
        cur_c = sync_view(c, &pr, cur_c, cur_c, s);
        cur_m = sync_view(m, &pr, cur_m, cur_m, s);
        CU_ASSERT_EQUAL(cur_c, want_const[i]);
        CU_ASSERT_EQUAL(cur_m, want_ma[i]);
    }
    /* an interval without traffic: no TTFT, so no adjustment, but its
     * count (0) and missing ISL and OSL (0) enter the predictors */
    CU_ASSERT_EQUAL(sync_view(m, &pr, cur_m, cur_m, (seen){ 0, -1, -1, -1, -1, -1 }), cur_m);
    CU_ASSERT_PTR_NOT_NULL(strstr(as_reason(m), "skipped"));
    /* next: the last three counts 3500, 0, 2400 -> 1966.7; ISL 1000, 0,
     * 1000 -> 666.7; prefill 1966.7 x 666.7 / 60 = 21,852 tokens/s over
     * 666.7 / (10 + 33.3 ms) = 15,384.6 per replica -> 1.42 -> 2 */
    CU_ASSERT_EQUAL(sync_view(m, &pr, cur_m, cur_m, (seen){ 2400, 1000, 200, 0.2, 0.03, 5 }), 2);
    as_destroy(c);
    as_destroy(m);
}

/* min_endpoint, and a pool without a profile */
static void test_min_endpoint_and_no_profile(void)
{
    as_llm_profile pr = profile(256, 1e6, 1);
    seen s = { 6, 1000, 200, 0.2, 0.03, 5 };
    as_param p[] = { { "adjustment_interval", "60s", 1, 1 }, { "no_correction", "true", 2, 1 } };
    as *a = planner(p, N_OF(p));
    CU_ASSERT_PTR_NOT_NULL_FATAL(a);
    CU_ASSERT_EQUAL(sync_view(a, &pr, 3, 3, s), 1); /* 0.006 + 0.0047 -> 1 */
    CU_ASSERT_EQUAL(sync_view(a, NULL, 3, 3, s), 3);
    as_destroy(a);
    as_param q[] = { { "adjustment_interval", "60s", 1, 1 }, { "no_correction", "true", 2, 1 },
                     { "min_endpoint", "2", 3, 1 } };
    a = planner(q, N_OF(q));
    CU_ASSERT_PTR_NOT_NULL_FATAL(a);
    CU_ASSERT_EQUAL(sync_view(a, &pr, 3, 3, s), 2);
    as_destroy(a);
}

static void expect_error(const as_param *p, int n, const char *msg)
{
    char err[512] = "";
    as_config cfg = { "t.yaml", NULL, n, p };
    as *a = as_create("sla_planner", &cfg, err, sizeof err);
    CU_ASSERT_PTR_NULL(a);
    if (!strstr(err, msg))
        fprintf(stderr, "\n  expected \"%s\", got \"%s\"", msg, err);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, msg));
    as_destroy(a);
}

static void test_config_errors(void)
{
    expect_error((as_param[]){ { "ttft_target", "1s", 3, 5 } }, 1, "t.yaml:3:5: ");
    expect_error((as_param[]){ { "load_predictor", "arima", 4, 7 } }, 1,
                 "t.yaml:4:7: load_predictor: expected one of constant, moving_average, got 'arima'");
    expect_error((as_param[]){ { "role", "both", 2, 2 } }, 1,
                 "role: expected one of mixed, prefill, decode, got 'both'");
    expect_error((as_param[]){ { "itl", "0s", 2, 2 } }, 1, "t.yaml:2:2: itl must be > 0");
    expect_error((as_param[]){ { "prediction_window", "5", 2, 2 } }, 1,
                 "prediction_window applies to load_predictor: moving_average");
    expect_error((as_param[]){ { "load_predictor", "moving_average", 1, 1 }, { "prediction_window", "0", 2, 2 } },
                 2, "prediction_window must be >= 1");
    expect_error((as_param[]){ { "adjustment_interval", "soon", 2, 2 } }, 1, "t.yaml:2:2: ");
    /* the registry knows it, and that it needs an LLM pool */
    CU_ASSERT_PTR_NOT_NULL_FATAL(as_find("sla_planner"));
    CU_ASSERT(as_find("sla_planner")->needs_llm);
    CU_ASSERT(!as_find("hpa")->needs_llm);
}

int main(void)
{
    if (CU_initialize_registry() != CUE_SUCCESS)
        return CU_get_error();
    CU_pSuite s = CU_add_suite("sla_planner", NULL, NULL);
    CU_add_test(s, "formulas by role and pod size", test_formulas_by_role);
    CU_add_test(s, "decode batch bounds", test_decode_bounds);
    CU_add_test(s, "TTFT and ITL correction factors", test_correction_factors);
    CU_add_test(s, "constant and moving-average predictors", test_predictors);
    CU_add_test(s, "min_endpoint, no profile", test_min_endpoint_and_no_profile);
    CU_add_test(s, "config errors", test_config_errors);
    CU_basic_set_mode(CU_BRM_VERBOSE);
    CU_basic_run_tests();
    unsigned f = CU_get_number_of_failures();
    CU_cleanup_registry();
    return f != 0;
}
