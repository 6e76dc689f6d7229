/*
 * test_realbench.c - realbench without timing anything: kernels against their
 * references (INT8 exact, FP32 within tolerance), whole models checked on the
 * thread pool, model YAML parsing and its errors, the committed .shapes files,
 * the least-squares fit on synthetic data, raw CSV -> profile statistics, and
 * the profile JSON round trip.
 */
#include "realbench.h"

#include <CUnit/Basic.h>
#include <cjson/cJSON.h>
#include <gsl/gsl_randist.h>
#include <gsl/gsl_rng.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char src_dir[1024] = ".";

static const char *src(const char *rel)
{
    static char buf[4][1200];
    static int k;
    k = (k + 1) % 4;
    snprintf(buf[k], sizeof buf[k], "%s/%s", src_dir, rel);
    return buf[k];
}

static char *tmp_path(const char *name)
{
    static char buf[4][256];
    static int k;
    k = (k + 1) % 4;
    snprintf(buf[k], sizeof buf[k], "/tmp/test_realbench_%d_%s", (int)getpid(), name);
    return buf[k];
}

/* ---- kernels ------------------------------------------------------------- */

static void test_gemm_s8_exact(void)
{
    gsl_rng *r = gsl_rng_alloc(gsl_rng_mt19937);
    int shapes[][3] = {{1, 1, 1}, {1, 5, 3}, {3, 7, 33}, {2, 4, 64}, {17, 13, 100}, {5, 64, 257}};
    for (size_t s = 0; s < sizeof shapes / sizeof *shapes; s++) {
        int M = shapes[s][0], N = shapes[s][1], K = shapes[s][2];
        int8_t *A = malloc((size_t)M * K), *B = malloc((size_t)N * K);
        int32_t *C = calloc((size_t)M * N, 4), *R = calloc((size_t)M * N, 4);
        for (int i = 0; i < M * K; i++)
            A[i] = (int8_t)((int)gsl_rng_uniform_int(r, 256) - 128); /* -128 included */
        for (int i = 0; i < N * K; i++)
            B[i] = (int8_t)((int)gsl_rng_uniform_int(r, 256) - 128);
        /* in two column ranges, as two threads would */
        rb_gemm_s8(A, B, C, N, M, K, 0, N / 2);
        rb_gemm_s8(A, B, C, N, M, K, N / 2, N);
        rb_gemm_s8_ref(A, B, R, M, N, K);
        CU_ASSERT_EQUAL(memcmp(C, R, (size_t)M * N * 4), 0);
        free(A), free(B), free(C), free(R);
    }
    gsl_rng_free(r);
}

static void test_gemm_f32_tolerance(void)
{
    gsl_rng *r = gsl_rng_alloc(gsl_rng_mt19937);
    int shapes[][3] = {{1, 1, 1}, {3, 7, 33}, {17, 13, 100}, {4, 64, 1024}};
    for (size_t s = 0; s < sizeof shapes / sizeof *shapes; s++) {
        int M = shapes[s][0], N = shapes[s][1], K = shapes[s][2];
        float *A = malloc((size_t)M * K * 4), *B = malloc((size_t)N * K * 4);
        float *C = calloc((size_t)M * N, 4), *R = calloc((size_t)M * N, 4);
        for (int i = 0; i < M * K; i++)
            A[i] = (float)gsl_ran_flat(r, -1, 1);
        for (int i = 0; i < N * K; i++)
            B[i] = (float)gsl_ran_flat(r, -1, 1);
        rb_gemm_f32(A, B, C, N, M, K, 0, N);
        rb_gemm_f32_ref(A, B, R, M, N, K);
        for (int m = 0; m < M; m++)
            for (int n = 0; n < N; n++) {
                double mag = 0;
                for (int k = 0; k < K; k++)
                    mag += fabs((double)A[m * K + k] * B[n * K + k]);
                /* float accumulation: error <= K * eps * sum|a*b| in the worst case */
                CU_ASSERT(fabs(C[m * N + n] - R[m * N + n]) <= K * 1.2e-7 * mag + 1e-30);
            }
        free(A), free(B), free(C), free(R);
    }
    gsl_rng_free(r);
}

static void test_requant(void)
{
    CU_ASSERT_EQUAL(rb_requant(0, 4), 0);
    CU_ASSERT_EQUAL(rb_requant(8, 4), 1);   /* 0.5 rounds up */
    CU_ASSERT_EQUAL(rb_requant(7, 4), 0);
    CU_ASSERT_EQUAL(rb_requant(-8, 4), 0);  /* -0.5 rounds up to 0 */
    CU_ASSERT_EQUAL(rb_requant(-9, 4), -1);
    CU_ASSERT_EQUAL(rb_requant(1 << 30, 4), 127);
    CU_ASSERT_EQUAL(rb_requant(-(1 << 30), 4), -128);
    rb_qtables t;
    rb_qtables_init(&t);
    CU_ASSERT_EQUAL(rb_act_s8(&t, RB_ACT_RELU, -5), 0);
    CU_ASSERT_EQUAL(rb_act_s8(&t, RB_ACT_SIGMOID, 0), 64); /* 127 * 0.5 rounded */
    int8_t row[5] = {10, 10, 10, 10, -128};
    rb_softmax_s8_row(&t, row, 5);
    int sum = 0;
    for (int i = 0; i < 5; i++)
        sum += row[i];
    CU_ASSERT(row[0] == row[3] && row[4] < row[0]);
    CU_ASSERT(sum >= 125 && sum <= 129);
}

static void count_fn(void *arg, int tid, int n)
{
    int *hits = arg;
    if (tid >= 0 && tid < n && n == 3)
        __atomic_add_fetch(&hits[tid], 1, __ATOMIC_RELAXED);
}

static void test_pool_runs_every_thread(void)
{
    rb_pool *p = rb_pool_new(3);
    CU_ASSERT_EQUAL(rb_pool_size(p), 3);
    int hits[3] = {0};
    for (int rep = 0; rep < 500; rep++)
        rb_pool_run(p, count_fn, hits);
    CU_ASSERT(hits[0] == 500 && hits[1] == 500 && hits[2] == 500);
    rb_pool_free(p);
}

/* ---- models ------------------------------------------------------------- */

static void test_model_risk_mlp(void)
{
    rb_model *m = rb_model_load(src("realbench/models/risk-mlp.yaml"), stderr);
    CU_ASSERT_PTR_NOT_NULL_FATAL(m);
    CU_ASSERT_STRING_EQUAL(m->name, "risk-mlp");
    CU_ASSERT_EQUAL(m->n_ops, 4);
    CU_ASSERT(m->ops[0].k == 256 && m->ops[0].n == 1024 && !m->ops[0].a_from_prev);
    CU_ASSERT(m->ops[3].k == 512 && m->ops[3].n == 1 && m->ops[3].a_from_prev);
    CU_ASSERT_EQUAL(m->ops[3].act, RB_ACT_SIGMOID);
    CU_ASSERT_DOUBLE_EQUAL(rb_model_macs_per_item(m), 256 * 1024 + 1024 * 1024 + 1024 * 512 + 512, 0.5);
    rb_model_free(m);
}

static void test_model_transformer(void)
{
    rb_model *m = rb_model_load(src("realbench/models/transformer-block.yaml"), stderr);
    CU_ASSERT_PTR_NOT_NULL_FATAL(m);
    CU_ASSERT_EQUAL(m->n_ops, 6);
    const rb_op *sc = &m->ops[1], *ctx = &m->ops[2];
    CU_ASSERT(sc->groups == 12 && sc->m == 128 && sc->n == 128 && sc->k == 64 && !sc->b_weight);
    CU_ASSERT_EQUAL(sc->act, RB_ACT_SOFTMAX);
    CU_ASSERT(ctx->a_from_prev && ctx->n == 64 && ctx->k == 128);
    CU_ASSERT_EQUAL(rb_op_groups(sc, 4), 48);
    CU_ASSERT_EQUAL(rb_op_rows(&m->ops[0], 4), 512);
    double per_item = 128.0 * (768 * 2304 + 768 * 768 + 2 * 768 * 3072) + 2.0 * 12 * 128 * 128 * 64;
    CU_ASSERT_DOUBLE_EQUAL(rb_model_macs_per_item(m), per_item, 0.5);
    rb_model_free(m);
}

static int load_error(const char *yaml, char *msg, size_t len)
{
    const char *path = tmp_path("bad.yaml");
    FILE *f = fopen(path, "w");
    fputs(yaml, f);
    fclose(f);
    FILE *err = fopen(tmp_path("err.txt"), "w+");
    rb_model *m = rb_model_load(path, err);
    rewind(err);
    size_t n = fread(msg, 1, len - 1, err);
    msg[n] = 0;
    fclose(err);
    unlink(path);
    unlink(tmp_path("err.txt"));
    rb_model_free(m);
    return m == NULL;
}

static void test_model_errors(void)
{
    char msg[1024];
    CU_ASSERT(load_error("name: x\nlayers:\n  - {type: dense, in: 4, out: 8, colour: red}\n", msg, sizeof msg));
    CU_ASSERT_PTR_NOT_NULL(strstr(msg, ":3:"));
    CU_ASSERT_PTR_NOT_NULL(strstr(msg, "unknown key 'colour'"));
    CU_ASSERT(load_error("name: x\nlayers:\n  - {type: dense, in: 4, out: 8}\n  - {type: dense, in: 5, out: 1}\n", msg, sizeof msg));
    CU_ASSERT_PTR_NOT_NULL(strstr(msg, ":4:"));
    CU_ASSERT_PTR_NOT_NULL(strstr(msg, "does not match"));
    CU_ASSERT(load_error("name: x\nlayers:\n  - {type: transformer, d_model: 10, heads: 3, d_ff: 8, seq_len: 4}\n", msg, sizeof msg));
    CU_ASSERT_PTR_NOT_NULL(strstr(msg, "multiple of heads"));
    CU_ASSERT(load_error("name: x\nlayers:\n  - {type: dense, in: -4, out: 8}\n", msg, sizeof msg));
    CU_ASSERT_PTR_NOT_NULL(strstr(msg, ":3:"));
    CU_ASSERT(load_error("name: x\nlayers: [\n", msg, sizeof msg));
    CU_ASSERT_PTR_NOT_NULL(strstr(msg, "bad.yaml:"));
    CU_ASSERT(load_error("layers:\n  - {type: conv}\n", msg, sizeof msg));
    CU_ASSERT_PTR_NOT_NULL(strstr(msg, "dense or transformer"));
    /* an empty file has no node to point at: its first line and column */
    CU_ASSERT(load_error("", msg, sizeof msg));
    char want[1200];
    snprintf(want, sizeof want, "%s:1:1: a model file must be a mapping with name and layers\n",
             tmp_path("bad.yaml"));
    CU_ASSERT_STRING_EQUAL(msg, want);
}

/* The committed .shapes files are what gpu-run.sh feeds the CUDA benchmark:
 * they must be what the YAML gives today. */
static void test_shapes_files_current(void)
{
    const char *models[] = {"risk-mlp", "transformer-block"};
    for (int i = 0; i < 2; i++) {
        char yaml[128], shapes[128];
        snprintf(yaml, sizeof yaml, "realbench/models/%s.yaml", models[i]);
        snprintf(shapes, sizeof shapes, "realbench/models/%s.shapes", models[i]);
        char cwd[1024];
        CU_ASSERT_PTR_NOT_NULL_FATAL(getcwd(cwd, sizeof cwd));
        CU_ASSERT_EQUAL_FATAL(chdir(src_dir), 0); /* the file records the relative path */
        rb_model *m = rb_model_load(yaml, stderr);
        CU_ASSERT_PTR_NOT_NULL_FATAL(m);
        char *got = NULL, want[8192];
        size_t gl = 0;
        FILE *mem = open_memstream(&got, &gl);
        rb_model_write_shapes(m, mem);
        fclose(mem);
        FILE *f = fopen(shapes, "r");
        size_t wl = f ? fread(want, 1, sizeof want - 1, f) : 0;
        want[wl] = 0;
        if (f)
            fclose(f);
        CU_ASSERT_EQUAL(chdir(cwd), 0);
        CU_ASSERT(gl == wl && !memcmp(got, want, wl));
        if (gl != wl || memcmp(got, want, wl))
            fprintf(stderr, "%s is stale: run build/realbench/realbench shapes --model %s --out %s\n",
                    shapes, yaml, shapes);
        free(got);
        rb_model_free(m);
    }
}

/* Whole models on the thread pool, every op against the reference. */
static void test_net_checks(void)
{
    rb_model *m = rb_model_load(src("realbench/models/risk-mlp.yaml"), stderr);
    CU_ASSERT_PTR_NOT_NULL_FATAL(m);
    rb_pool *pool = rb_pool_new(3);
    for (int p = 0; p < 2; p++) {
        rb_cpu_net *n = rb_cpu_net_new(m, (rb_cpu_precision)p, 9, 2, 7, stderr);
        CU_ASSERT_PTR_NOT_NULL_FATAL(n);
        int batches[] = {1, 2, 5, 9};
        for (int b = 0; b < 4; b++)
            CU_ASSERT_EQUAL(rb_cpu_net_check(n, pool, batches[b], stderr), 0);
        size_t count;
        rb_cpu_net_output(n, &count);
        CU_ASSERT_EQUAL(count, 9);
        rb_cpu_net_free(n);
    }
    rb_pool_free(pool);
    rb_model_free(m);

    /* a small transformer block exercises grouped ops, softmax and chaining */
    const char *path = tmp_path("tiny.yaml");
    FILE *f = fopen(path, "w");
    fputs("name: tiny\nlayers:\n  - {type: transformer, d_model: 32, heads: 4, d_ff: 48, seq_len: 12}\n"
          "  - {type: transformer, d_model: 32, heads: 2, d_ff: 40, seq_len: 12, activation: relu}\n", f);
    fclose(f);
    m = rb_model_load(path, stderr);
    unlink(path);
    CU_ASSERT_PTR_NOT_NULL_FATAL(m);
    CU_ASSERT_EQUAL(m->n_ops, 12);
    CU_ASSERT(m->ops[6].a_from_prev); /* the second block reads the first's output */
    pool = rb_pool_new(2);
    for (int p = 0; p < 2; p++) {
        rb_cpu_net *n = rb_cpu_net_new(m, (rb_cpu_precision)p, 3, 1, 9, stderr);
        CU_ASSERT_PTR_NOT_NULL_FATAL(n);
        CU_ASSERT_EQUAL(rb_cpu_net_check(n, pool, 3, stderr), 0);
        CU_ASSERT_EQUAL(rb_cpu_net_check(n, pool, 1, stderr), 0);
        rb_cpu_net_free(n);
    }
    rb_pool_free(pool);
    rb_model_free(m);
}

/* ---- statistics and profiles ----------------------------------------------- */

static void test_fit_recovers_line(void)
{
    gsl_rng *r = gsl_rng_alloc(gsl_rng_mt19937);
    int b[10];
    double y[10], alpha = 150e-6, beta = 12e-6, sd = 2e-6;
    for (int i = 0; i < 10; i++) {
        b[i] = 1 << i;
        y[i] = alpha + beta * b[i] + gsl_ran_gaussian(r, sd);
    }
    rb_fit f;
    CU_ASSERT_EQUAL(rb_fit_linear(b, y, 10, &f), 0);
    /* standard errors here: alpha ~1e-6, beta ~7e-9; 5 sigma */
    CU_ASSERT(fabs(f.alpha_s - alpha) < 5e-6);
    CU_ASSERT(fabs(f.beta_s - beta) < 5e-8);
    CU_ASSERT(f.residual_sd_s > 0.3 * sd && f.residual_sd_s < 2 * sd);
    CU_ASSERT(f.r2 > 0.999);
    /* exact line: zero residual */
    for (int i = 0; i < 10; i++)
        y[i] = alpha + beta * b[i];
    CU_ASSERT_EQUAL(rb_fit_linear(b, y, 10, &f), 0);
    CU_ASSERT_DOUBLE_EQUAL(f.alpha_s, alpha, 1e-12);
    CU_ASSERT_DOUBLE_EQUAL(f.beta_s, beta, 1e-14);
    CU_ASSERT(f.residual_sd_s < 1e-12);
    gsl_rng_free(r);
}

static void test_parse_batches(void)
{
    int n, *b = rb_parse_batches("1-512", &n);
    CU_ASSERT_EQUAL(n, 10);
    CU_ASSERT(b && b[0] == 1 && b[9] == 512);
    free(b);
    b = rb_parse_batches("3,5,7", &n);
    CU_ASSERT(b && n == 3 && b[2] == 7);
    free(b);
    CU_ASSERT_PTR_NULL(rb_parse_batches("1,,2", &n));
    CU_ASSERT_PTR_NULL(rb_parse_batches("0", &n));
    CU_ASSERT_PTR_NULL(rb_parse_batches("x", &n));
}

static const cJSON *at(const cJSON *o, const char *a, const char *b, const char *c)
{
    o = cJSON_GetObjectItemCaseSensitive(o, a);
    if (b)
        o = cJSON_GetObjectItemCaseSensitive(o, b);
    if (c)
        o = cJSON_GetObjectItemCaseSensitive(o, c);
    return o;
}

static double item(const cJSON *arr, int i) { return cJSON_GetArrayItem(arr, i)->valuedouble; }

/* A profile whose latency falls as the batch grows is built as measured,
 * with a warning per fall that says whether the repetitions' spread
 * covers it; a monotone one gets no warning. */
static void test_profile_not_monotone(void)
{
    rb_raw raw;
    rb_raw_init(&raw);
    double s[5];
    /* batch 1: 2.0-2.4 ms; batch 2: 1.0-1.4 ms (apart); batch 4: 1.3-1.7 ms
     * (rises); batch 8: 1.2-1.6 ms (falls, ranges overlap) */
    const int batch[] = { 1, 2, 4, 8 };
    const double base_ms[] = { 2.0, 1.0, 1.3, 1.2 };
    for (int k = 0; k < 4; k++) {
        for (int r = 0; r < 5; r++)
            s[r] = (base_ms[k] + 0.1 * r) * 1e-3;
        CU_ASSERT_EQUAL_FATAL(rb_raw_add(&raw, "int8", "ref", batch[k], s, 5), 0);
    }
    char *text = NULL;
    size_t len = 0;
    FILE *err = open_memstream(&text, &len);
    cJSON *p = rb_profile_build(&raw, err);
    fclose(err);
    CU_ASSERT_PTR_NOT_NULL(p);
    CU_ASSERT_PTR_NOT_NULL(strstr(text, "realbench: warning: int8 latency is not monotone in "
                                        "batch size: batch 2 takes 1.2 ms (median), less than "
                                        "batch 1's 2.2 ms, beyond the spread"));
    CU_ASSERT_PTR_NOT_NULL(strstr(text, "batch 8 takes 1.4 ms (median), less than batch 4's "
                                        "1.5 ms, within the spread"));
    CU_ASSERT_PTR_NULL(strstr(text, "batch 4 takes"));
    cJSON_Delete(p);
    free(text);
    rb_raw_free(&raw);

    rb_raw_init(&raw);
    for (int k = 0; k < 4; k++) {
        for (int r = 0; r < 5; r++)
            s[r] = (1.0 + k + 0.1 * r) * 1e-3;
        CU_ASSERT_EQUAL_FATAL(rb_raw_add(&raw, "int8", "ref", batch[k], s, 5), 0);
    }
    text = NULL;
    err = open_memstream(&text, &len);
    p = rb_profile_build(&raw, err);
    fclose(err);
    CU_ASSERT_EQUAL(len, 0);
    cJSON_Delete(p);
    free(text);
    rb_raw_free(&raw);
}

/* CSV (as rb_cuda_bench writes it) -> profile: medians and quantiles of
 * known samples, the fit, speedups, metadata types; a comment line longer
 * than any buffer is one value, and comments named like the measured
 * tables (precisions, speedup) do not replace them. */
static void test_csv_to_profile(void)
{
    const char *csv = tmp_path("raw.csv");
    FILE *f = fopen(csv, "w");
    fprintf(f, "# fleetsim-realbench-raw/1\n# device.kind=\"cuda\"\n# device.name=\"Test GPU\"\n"
               "# device.cores_or_sms=132\n# device.cuda=\"13.0\"\n# created=\"2000-01-01T00:00:00Z\"\n"
               "# model.name=\"m\"\n# bandwidth.d2d_GBps=3000.5\n# precisions=\"x\"\n"
               "# speedup.int8_vs_fp32=1\n# note=\"");
    for (int i = 0; i < 1500; i++)
        fputc('n', f);
    fprintf(f, "\"\nprecision,impl,batch,rep,latency_s\n");
    /* int8: 1..11 us + 1 us per batch (median 6 + b); fp32 four times that */
    for (int b = 1; b <= 8; b *= 2)
        for (int r = 0; r < 11; r++) {
            fprintf(f, "int8,cublaslt,%d,%d,%.9g\n", b, r, (1 + r + b) * 1e-6);
            fprintf(f, "fp32,cublas,%d,%d,%.9g\n", b, r, 4 * (1 + r + b) * 1e-6);
        }
    fclose(f);
    rb_raw raw;
    rb_raw_init(&raw);
    CU_ASSERT_EQUAL_FATAL(rb_raw_read_csv(&raw, csv, stderr), 0);
    CU_ASSERT_EQUAL(raw.n_series, 8);
    cJSON *p = rb_profile_build(&raw, stderr);
    CU_ASSERT_PTR_NOT_NULL_FATAL(p);
    CU_ASSERT_STRING_EQUAL(cJSON_GetStringValue(at(p, "schema", NULL, NULL)), "fleetsim-calibration/1");
    CU_ASSERT_STRING_EQUAL(cJSON_GetStringValue(at(p, "device", "name", NULL)), "Test GPU");
    CU_ASSERT_STRING_EQUAL(cJSON_GetStringValue(at(p, "device", "cuda", NULL)), "13.0");
    CU_ASSERT_EQUAL(at(p, "device", "cores_or_sms", NULL)->valuedouble, 132);
    CU_ASSERT_DOUBLE_EQUAL(at(p, "bandwidth", "d2d_GBps", NULL)->valuedouble, 3000.5, 1e-9);
    CU_ASSERT_EQUAL(strlen(cJSON_GetStringValue(at(p, "note", NULL, NULL))), 1500);
    int n_prec = 0, n_speedup = 0;
    for (const cJSON *c = p->child; c; c = c->next) {
        n_prec += !strcmp(c->string, "precisions");
        n_speedup += !strcmp(c->string, "speedup");
    }
    CU_ASSERT_EQUAL(n_prec, 1);
    CU_ASSERT_EQUAL(n_speedup, 1);
    const cJSON *i8 = at(p, "precisions", "int8", NULL);
    CU_ASSERT_PTR_NOT_NULL_FATAL(i8);
    CU_ASSERT_EQUAL(cJSON_GetArraySize(at(i8, "batch", NULL, NULL)), 4);
    CU_ASSERT_EQUAL(item(at(i8, "batch", NULL, NULL), 3), 8);
    CU_ASSERT_DOUBLE_EQUAL(item(at(i8, "latency_s", NULL, NULL), 0), 7e-6, 1e-12);
    /* GSL quantile of 11 sorted values 2..12 us at 0.1: index 1.0 -> 3 us */
    CU_ASSERT_DOUBLE_EQUAL(item(at(i8, "p10_s", NULL, NULL), 0), 3e-6, 1e-12);
    CU_ASSERT_DOUBLE_EQUAL(item(at(i8, "p90_s", NULL, NULL), 0), 11e-6, 1e-12);
    /* medians 6 + b us: alpha 6 us, beta 1 us, no residual */
    CU_ASSERT_DOUBLE_EQUAL(at(i8, "fit", "alpha_s", NULL)->valuedouble, 6e-6, 1e-12);
    CU_ASSERT_DOUBLE_EQUAL(at(i8, "fit", "beta_s", NULL)->valuedouble, 1e-6, 1e-12);
    CU_ASSERT(at(i8, "fit", "residual_sd_s", NULL)->valuedouble < 1e-12);
    const cJSON *sp = at(p, "speedup", "int8_vs_fp32", NULL);
    CU_ASSERT_EQUAL(cJSON_GetArraySize(sp), 4);
    CU_ASSERT_DOUBLE_EQUAL(item(sp, 2), 4.0, 1e-9);

    /* JSON round trip */
    const char *json = tmp_path("p.json");
    CU_ASSERT_EQUAL(rb_profile_write(p, json, stderr), 0);
    cJSON *q = rb_profile_read(json, stderr);
    CU_ASSERT_PTR_NOT_NULL_FATAL(q);
    CU_ASSERT(cJSON_Compare(p, q, 1));
    cJSON_Delete(q);
    cJSON_Delete(p);

    /* raw -> CSV -> raw keeps samples and typed metadata */
    const char *csv2 = tmp_path("raw2.csv");
    f = fopen(csv2, "w");
    CU_ASSERT_EQUAL(rb_raw_write_csv(&raw, f), 0);
    fclose(f);
    rb_raw raw2;
    rb_raw_init(&raw2);
    CU_ASSERT_EQUAL(rb_raw_read_csv(&raw2, csv2, stderr), 0);
    CU_ASSERT_EQUAL(raw2.n_series, raw.n_series);
    CU_ASSERT(cJSON_Compare(raw.meta, raw2.meta, 1));
    CU_ASSERT_EQUAL(raw2.series[5].n, 11);
    CU_ASSERT_DOUBLE_EQUAL(raw2.series[5].samples_s[3], raw.series[5].samples_s[3], 1e-15);
    rb_raw_free(&raw2);
    rb_raw_free(&raw);
    unlink(csv);
    unlink(csv2);
    unlink(json);
}

static void test_csv_errors(void)
{
    const char *csv = tmp_path("bad.csv");
    FILE *f = fopen(csv, "w");
    fprintf(f, "# fleetsim-realbench-raw/1\nprecision,impl,batch,rep,latency_s\nint8,x,0,1,1e-6\n");
    fclose(f);
    FILE *err = fopen("/dev/null", "w");
    rb_raw raw;
    rb_raw_init(&raw);
    CU_ASSERT_NOT_EQUAL(rb_raw_read_csv(&raw, csv, err), 0);
    rb_raw_free(&raw);
    f = fopen(csv, "w");
    fprintf(f, "hello\n");
    fclose(f);
    rb_raw_init(&raw);
    CU_ASSERT_NOT_EQUAL(rb_raw_read_csv(&raw, csv, err), 0);
    CU_ASSERT_PTR_NULL(rb_profile_read(csv, err));
    rb_raw_free(&raw);
    fclose(err);
    unlink(csv);
}

/* Reads text as a profile; the message it printed (if any) in msg. */
static cJSON *read_profile_text(const char *text, char *msg, size_t len)
{
    const char *path = tmp_path("p.json");
    FILE *f = fopen(path, "w");
    fputs(text, f);
    fclose(f);
    char *buf = NULL;
    size_t n = 0;
    FILE *err = open_memstream(&buf, &n);
    cJSON *p = rb_profile_read(path, err);
    fclose(err);
    snprintf(msg, len, "%s", buf ? buf : "");
    free(buf);
    unlink(path);
    return p;
}

/* What readers of a profile rely on is checked when it is read, with the
 * place named; found by fuzzing `realbench table`, which crashed on a
 * profile without fit.r2 (the fleetsim fixture) or with latency_s shorter
 * than batch. */
static void test_profile_shape(void)
{
    static const struct {
        const char *precisions, *msg;
    } bad[] = {
        {"{}", "\"precisions\" must be an object with one entry per precision"},
        {"{\"int8\": 3}", "precisions.int8 must be an object"},
        {"{\"int8\": {\"batch\": [1, 2], \"latency_s\": [0.001]}}",
         "precisions.int8.latency_s must hold one number > 0 per batch size"},
        {"{\"int8\": {\"batch\": [2, 1], \"latency_s\": [1, 1]}}",
         "precisions.int8.batch must be batch sizes (integers >= 1, strictly ascending)"},
        {"{\"int8\": {\"batch\": [1e300], \"latency_s\": [1]}}",
         "precisions.int8.batch must be batch sizes (integers >= 1, strictly ascending)"},
        {"{\"int8\": {\"batch\": [1], \"latency_s\": [1], \"p90_s\": []}}",
         "precisions.int8.p90_s must hold one number (or null) per batch size"},
        {"{\"int8\": {\"batch\": [1], \"latency_s\": [1], \"fit\": {\"r2\": \"x\"}}}",
         "precisions.int8.fit.r2 must be a number"},
    };
    char text[512], msg[512], want[512];
    const char *path = tmp_path("p.json");
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        snprintf(text, sizeof text,
                 "{\"schema\": \"fleetsim-calibration/1\", \"precisions\": %s}", bad[i].precisions);
        cJSON *p = read_profile_text(text, msg, sizeof msg);
        snprintf(want, sizeof want, "%s: %s\n", path, bad[i].msg);
        CU_ASSERT_PTR_NULL(p);
        CU_ASSERT_STRING_EQUAL(msg, want);
        cJSON_Delete(p);
    }
    cJSON *p = read_profile_text("{\"schema\": \"fleetsim-calibration/1\", \"precisions\": "
                                 "{\"int8\": {\"batch\": [1], \"latency_s\": [1]}}, "
                                 "\"speedup\": {\"batch\": [1, 2], \"x\": [1]}}", msg, sizeof msg);
    snprintf(want, sizeof want, "%s: speedup.x must hold one number (or null) per batch size\n",
             path);
    CU_ASSERT_PTR_NULL(p);
    CU_ASSERT_STRING_EQUAL(msg, want);
    cJSON_Delete(p);

    /* the fixture fleetsim's tests use: no fit.r2, no names printed as NULL */
    const char *out = tmp_path("table.txt");
    char fixture[1200];
    snprintf(fixture, sizeof fixture, "%s", src("tests/sim/data/cpu-int8.json"));
    char *argv[] = {"realbench", "table", fixture, NULL};
    fflush(stdout);
    int saved = dup(1);
    FILE *f = fopen(out, "w");
    dup2(fileno(f), 1);
    int rc = rb_main(3, argv);
    fflush(stdout);
    dup2(saved, 1);
    close(saved);
    fclose(f);
    CU_ASSERT_EQUAL(rc, 0);
    f = fopen(out, "r");
    char line[256];
    int found = 0;
    while (f && fgets(line, sizeof line, f))
        found |= !strcmp(line, "int8       fit: latency = 0.9 ms + 0.13 ms * batch (residual sd "
                               "0.02 ms, r2 nan)\n");
    if (f)
        fclose(f);
    CU_ASSERT(found);
    unlink(out);
}

/* The whole CPU path through the CLI entry fleetsim uses, kept tiny. */
static void test_calibrate_cpu(void)
{
    const char *out = tmp_path("cal.json");
    char model[1200];
    snprintf(model, sizeof model, "%s", src("realbench/models/risk-mlp.yaml"));
    char *argv[] = {"calibrate", "--device", "cpu", "--model", model, "--out", (char *)out,
                    "--batches", "1,2,4", "--reps", "5", "--quiet", NULL};
    CU_ASSERT_EQUAL_FATAL(rb_calibrate_main(12, argv), 0);
    cJSON *p = rb_profile_read(out, stderr);
    CU_ASSERT_PTR_NOT_NULL_FATAL(p);
    CU_ASSERT_STRING_EQUAL(cJSON_GetStringValue(at(p, "device", "kind", NULL)), "cpu");
    CU_ASSERT_STRING_EQUAL(cJSON_GetStringValue(at(p, "model", "name", NULL)), "risk-mlp");
    const cJSON *l = at(p, "precisions", "fp32", "latency_s");
    CU_ASSERT_EQUAL(cJSON_GetArraySize(l), 3);
    CU_ASSERT(item(l, 0) > 0);
    CU_ASSERT_EQUAL(cJSON_GetArraySize(at(p, "speedup", "int8_vs_fp32", NULL)), 3);
    CU_ASSERT_EQUAL(at(p, "settings", "reps", NULL)->valuedouble, 5);
    cJSON_Delete(p);
    unlink(out);

    char *bad[] = {"calibrate", "--device", "tpu", "--model", model, "--out", (char *)out, NULL};
    CU_ASSERT_EQUAL(rb_calibrate_main(7, bad), 2);
    char *nomodel[] = {"calibrate", "--device", "cpu", "--model", "/nonexistent.yaml", "--out",
                       (char *)out, NULL};
    CU_ASSERT_EQUAL(rb_calibrate_main(7, nomodel), 2);
    /* a CUDA benchmark that cannot run is a clean failure, not a crash */
    char *nobench[] = {"realbench", "cuda", "--model", model, "--out", (char *)out,
                       "--bench", "/nonexistent/rb_cuda_bench", NULL};
    CU_ASSERT_EQUAL(rb_main(8, nobench), 1);
    CU_ASSERT_NOT_EQUAL(access(out, F_OK), 0);
}

/* The serving loop's record of itself: every request is in exactly one
 * batch of the --batches file, and its latency in --latencies is that
 * batch's end less its arrival. 1 s at 300 QPS, batches of at most 8. */
static void test_serve_records(void)
{
    char out[1200], bat[1200], lat[1200], model[1200];
    snprintf(out, sizeof out, "%s", tmp_path("serve.json"));
    snprintf(bat, sizeof bat, "%s", tmp_path("batches.csv"));
    snprintf(lat, sizeof lat, "%s", tmp_path("latencies.csv"));
    snprintf(model, sizeof model, "%s", src("realbench/models/risk-mlp.yaml"));
    char *argv[] = {"realbench", "serve", "--model", model, "--qps", "300", "--duration-s", "1",
                    "--warmup-s", "0.1", "--max-batch", "8", "--max-wait-ms", "2", "--threads", "1",
                    "--out", out, "--batches", bat, "--latencies", lat, NULL};
    CU_ASSERT_EQUAL_FATAL(rb_main((int)(sizeof argv / sizeof *argv) - 1, argv), 0);
    static char buf[1 << 16];
    FILE *jf = fopen(out, "rb");
    size_t len = jf ? fread(buf, 1, sizeof buf - 1, jf) : 0;
    if (jf)
        fclose(jf);
    buf[len] = 0;
    cJSON *res = cJSON_Parse(buf);
    CU_ASSERT_PTR_NOT_NULL_FATAL(res);
    double generated = at(res, "requests", "generated", NULL)->valuedouble;
    double batches = cJSON_GetObjectItemCaseSensitive(res, "batches")->valuedouble;
    CU_ASSERT(generated > 200 && generated < 400); /* Poisson(300): 300 +- 5.8 sigma */
    static double start[4096], end[4096];
    static int size[4096];
    int nb = 0, total = 0;
    FILE *f = fopen(bat, "r");
    CU_ASSERT_PTR_NOT_NULL_FATAL(f);
    char line[256];
    CU_ASSERT_PTR_NOT_NULL(fgets(line, sizeof line, f)); /* header */
    while (nb < 4096 && fscanf(f, "%lf,%lf,%d", &start[nb], &end[nb], &size[nb]) == 3) {
        CU_ASSERT(end[nb] > start[nb]);
        CU_ASSERT(size[nb] >= 1 && size[nb] <= 8);
        CU_ASSERT(nb == 0 || start[nb] >= end[nb - 1]); /* one worker: one batch at a time */
        total += size[nb++];
    }
    fclose(f);
    CU_ASSERT_EQUAL(nb, (int)batches);
    CU_ASSERT_EQUAL(total, (int)generated);
    /* requests in arrival order fill the batches in order (one FIFO) */
    f = fopen(lat, "r");
    CU_ASSERT_PTR_NOT_NULL_FATAL(f);
    CU_ASSERT_PTR_NOT_NULL(fgets(line, sizeof line, f));
    double a, l;
    int b, k = 0, used = 0, rows = 0, bad = 0;
    while (fscanf(f, "%lf,%lf,%d", &a, &l, &b) == 3) {
        if (k < nb && used == size[k]) {
            k++;
            used = 0;
        }
        bad += k >= nb || b != size[k] || fabs(a + l - end[k]) > 1e-6 || a > start[k] + 1e-6;
        used++;
        rows++;
    }
    fclose(f);
    CU_ASSERT_EQUAL(rows, (int)generated);
    CU_ASSERT_EQUAL(bad, 0);
    /* service_windows from the batches: per 0.5 s window after the 0.1 s
     * warm-up, the mean of service / the run's mean at that size; windows
     * of fewer than 10 batches (the ragged end) left out */
    double ssum[9] = {0}, wsum[16] = {0};
    int sn[9] = {0}, wn[16] = {0};
    for (int i = 0; i < nb; i++)
        ssum[size[i]] += end[i] - start[i], sn[size[i]]++;
    for (int i = 0; i < nb; i++) {
        int w = (int)((start[i] - 0.1) / 0.5);
        if (start[i] >= 0.1 && w < 16) {
            wsum[w] += (end[i] - start[i]) / (ssum[size[i]] / sn[size[i]]);
            wn[w]++;
        }
    }
    const cJSON *rel = at(res, "service_windows", "relative", NULL);
    double hi = 0, lo = 1e9;
    int nwin = 0;
    for (int w = 0; w < 16; w++) {
        if (wn[w] < 10)
            continue;
        double m = wsum[w] / wn[w];
        CU_ASSERT_DOUBLE_EQUAL(cJSON_GetArrayItem(rel, nwin) ? cJSON_GetArrayItem(rel, nwin)->valuedouble : -1,
                               m, 1e-5);
        nwin++;
        hi = fmax(hi, m);
        lo = fmin(lo, m);
    }
    CU_ASSERT(nwin >= 2); /* [0.1, 0.6) and [0.6, 1.1) at least: ~75 batches each */
    CU_ASSERT_EQUAL(cJSON_GetArraySize(rel), nwin);
    CU_ASSERT_DOUBLE_EQUAL(at(res, "service_windows", "slowest", NULL)->valuedouble, hi, 1e-5);
    CU_ASSERT_DOUBLE_EQUAL(at(res, "service_windows", "fastest", NULL)->valuedouble, lo, 1e-5);
    cJSON_Delete(res);
    unlink(out);
    unlink(bat);
    unlink(lat);
}

int main(void)
{
    const char *s = getenv("FLEETSIM_SRC");
    if (s && *s)
        snprintf(src_dir, sizeof src_dir, "%s", s);
    else if (access("realbench/models/risk-mlp.yaml", R_OK))
        snprintf(src_dir, sizeof src_dir, "%s", "..");
    if (CU_initialize_registry() != CUE_SUCCESS)
        return 1;
    CU_pSuite k = CU_add_suite("kernels", NULL, NULL);
    CU_add_test(k, "INT8 GEMM equals the reference", test_gemm_s8_exact);
    CU_add_test(k, "FP32 GEMM within tolerance", test_gemm_f32_tolerance);
    CU_add_test(k, "requantisation and activations", test_requant);
    CU_add_test(k, "pool runs every thread", test_pool_runs_every_thread);
    CU_pSuite m = CU_add_suite("models", NULL, NULL);
    CU_add_test(m, "risk-mlp", test_model_risk_mlp);
    CU_add_test(m, "transformer block", test_model_transformer);
    CU_add_test(m, "errors with line:col", test_model_errors);
    CU_add_test(m, "committed shapes are current", test_shapes_files_current);
    CU_add_test(m, "whole models against the reference", test_net_checks);
    CU_pSuite p = CU_add_suite("profiles", NULL, NULL);
    CU_add_test(p, "fit recovers alpha and beta", test_fit_recovers_line);
    CU_add_test(p, "batch lists", test_parse_batches);
    CU_add_test(p, "CSV -> profile -> JSON round trip", test_csv_to_profile);
    CU_add_test(p, "bad CSV", test_csv_errors);
    CU_add_test(p, "profile shape checked on reading", test_profile_shape);
    CU_add_test(p, "calibrate --device cpu", test_calibrate_cpu);
    CU_add_test(p, "a profile not monotone in batch size warns", test_profile_not_monotone);
    CU_add_test(p, "serve: batches and latencies agree", test_serve_records);
    CU_basic_set_mode(CU_BRM_VERBOSE);
    CU_basic_run_tests();
    int failures = (int)CU_get_number_of_failures();
    CU_cleanup_registry();
    return failures != 0;
}
