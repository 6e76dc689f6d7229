/*
 * cli.c - the realbench command line, also behind `fleetsim calibrate`.
 *
 * One table of subcommands (name, function, one-line help); help is printed
 * from the same table. `cpu` measures on this machine; `cuda` writes the
 * model's shapes to a temporary file, runs the standalone CUDA benchmark
 * (rb_cuda_bench, found via --bench, $RB_CUDA_BENCH, the path CMake built it
 * at, or next to this executable) and turns its CSV into a profile; `profile`
 * does only that last step for CSVs measured elsewhere (a GPU machine);
 * `shapes` writes the plain-text shapes the CUDA benchmark reads; `table`
 * prints a profile; `serve` is the closed-loop serving test (serve.c).
 * Exit status: 0 ok, 1 failure, 2 bad input, 3 no CUDA device.
 */
#include "realbench.h"

#include <cjson/cJSON.h>
#include <limits.h>
#include <math.h>
#include <spawn.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

int *rb_parse_batches(const char *s, int *n)
{
    int cap = 64, *b = malloc((size_t)cap * sizeof *b);
    long lo, hi;
    char *end;
    *n = 0;
    if (!b || !s || !*s)
        goto bad;
    if (sscanf(s, "%ld-%ld", &lo, &hi) == 2 && strchr(s, '-') && !strchr(s, ',')) {
        if (lo < 1 || hi < lo || hi > 1 << 20)
            goto bad;
        for (long x = 1; x <= hi; x *= 2)
            if (x >= lo)
                b[(*n)++] = (int)x;
        return b;
    }
    while (*s) {
        long x = strtol(s, &end, 10);
        if (end == s || x < 1 || x > 1 << 20 || (*end && *end != ',') || *n == cap)
            goto bad;
        b[(*n)++] = (int)x;
        s = *end ? end + 1 : end;
    }
    if (*n)
        return b;
bad:
    free(b);
    *n = 0;
    return NULL;
}

/* `--name value` or `--name=value`; advances *i past what it used. */
static const char *optval(int argc, char **argv, int *i, const char *name)
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

static int posint(const char *s, int *out)
{
    char *end;
    long v = strtol(s, &end, 10);
    if (end == s || *end || v < 1 || v > INT_MAX)
        return -1;
    *out = (int)v;
    return 0;
}

static int write_profile_from_raw(const rb_raw *raw, const char *out, FILE *err)
{
    cJSON *p = rb_profile_build(raw, err);
    if (!p)
        return 1;
    int rc = rb_profile_write(p, out, err) ? 1 : 0;
    cJSON_Delete(p);
    return rc;
}

static int write_raw(const rb_raw *raw, const char *path, FILE *err)
{
    FILE *f = fopen(path, "w");
    if (!f || rb_raw_write_csv(raw, f) || fclose(f)) {
        fprintf(err, "%s: cannot write raw CSV\n", path);
        return 1;
    }
    return 0;
}

static int cmd_cpu(int argc, char **argv)
{
    rb_cpu_opts o;
    rb_cpu_opts_default(&o);
    const char *out = NULL, *rawp = NULL, *v;
    int *batches = NULL, rc = 2;
    for (int i = 1; i < argc; i++) {
        if ((v = optval(argc, argv, &i, "--model")))
            o.model_path = v;
        else if ((v = optval(argc, argv, &i, "--out")))
            out = v;
        else if ((v = optval(argc, argv, &i, "--raw")))
            rawp = v;
        else if ((v = optval(argc, argv, &i, "--batches"))) {
            free(batches);
            if (!(batches = rb_parse_batches(v, &o.n_batches)))
                goto usage;
            o.batches = batches;
        } else if ((v = optval(argc, argv, &i, "--reps"))) {
            if (posint(v, &o.reps))
                goto usage;
        } else if ((v = optval(argc, argv, &i, "--warmup"))) {
            if (posint(v, &o.warmup))
                goto usage;
        } else if ((v = optval(argc, argv, &i, "--rotate"))) {
            if (posint(v, &o.rotate))
                goto usage;
        } else if ((v = optval(argc, argv, &i, "--threads"))) {
            if (posint(v, &o.threads))
                goto usage;
        } else if ((v = optval(argc, argv, &i, "--budget-s"))) {
            o.budget_s = atof(v);
        } else if ((v = optval(argc, argv, &i, "--seed"))) {
            o.seed = strtoul(v, NULL, 10);
        } else if ((v = optval(argc, argv, &i, "--precisions"))) {
            o.precisions = (strstr(v, "int8") ? 1 << RB_INT8 : 0) |
                           (strstr(v, "fp32") ? 1 << RB_FP32 : 0);
            if (!o.precisions)
                goto usage;
        } else if ((v = optval(argc, argv, &i, "--workers"))) {
            if (posint(v, &o.workers) || o.workers > 64)
                goto usage;
        } else if ((v = optval(argc, argv, &i, "--duty"))) {
            char *end;
            o.duty = strtod(v, &end);
            if (end == v || *end || !(o.duty > 0 && o.duty <= 1))
                goto usage;
        } else if ((v = optval(argc, argv, &i, "--center"))) {
            if (strcmp(v, "mean") && strcmp(v, "median"))
                goto usage;
            o.center_mean = !strcmp(v, "mean");
        } else if (!strcmp(argv[i], "--interleave")) {
            o.interleave = 1;
        } else if (!strcmp(argv[i], "--realtime")) {
            o.realtime = 1;
        } else if (!strcmp(argv[i], "--pin")) {
            o.pin = 1;
        } else if (!strcmp(argv[i], "--quiet")) {
            o.quiet = 1;
        } else {
            fprintf(stderr, "realbench cpu: unknown or incomplete option '%s'\n", argv[i]);
            goto usage;
        }
    }
    if (!o.model_path || !out)
        goto usage;
    rb_raw raw;
    rb_raw_init(&raw);
    rc = rb_cpu_bench(&o, &raw, stdout, stderr);
    if (!rc && rawp)
        rc = write_raw(&raw, rawp, stderr);
    if (!rc)
        rc = write_profile_from_raw(&raw, out, stderr);
    if (!rc && !o.quiet)
        printf("wrote %s\n", out);
    rb_raw_free(&raw);
    free(batches);
    return rc;
usage:
    fprintf(stderr, "usage: realbench cpu --model M.yaml --out P.json [--raw R.csv] [--batches 1,2,4|1-512]\n"
                    "         [--reps 30] [--warmup 3] [--rotate 4] [--threads N] [--precisions int8,fp32]\n"
                    "         [--budget-s 40] [--seed N] [--quiet]\n"
                    "         [--workers W] [--duty U] [--interleave] [--center median|mean] [--realtime] [--pin]\n"
                    "  serving conditions: --workers W instances at once (own pool of --threads each),\n"
                    "  --duty U (0 < U <= 1) each busy that fraction of the time (sleeps between passes),\n"
                    "  --interleave: rounds over every batch size in a shuffled order;\n"
                    "  --center mean: latency_s is the mean of the repetitions (default the median);\n"
                    "  --realtime: SCHED_FIFO timing threads (needs CAP_SYS_NICE; else a warning);\n"
                    "  --pin: worker k's threads on CPUs 1 + k * threads.. (CPU 0 is serve's generator).\n");
    free(batches);
    return 2;
}

/* A grid list option ("16,64,256" or "16-2048", powers of two) into
 * dst (at most RB_LLM_GRID_MAX, ascending); 0 or -1. */
static int grid_list(const char *v, int *dst, int *n)
{
    int k = 0, *b = rb_parse_batches(v, &k);
    int ok = b && k <= RB_LLM_GRID_MAX;
    for (int i = 1; ok && i < k; i++)
        ok = b[i] > b[i - 1];
    if (ok) {
        memcpy(dst, b, sizeof *b * (size_t)k);
        *n = k;
    }
    free(b);
    return ok ? 0 : -1;
}

/* `llm-step`: the alpha_beta step model measured on this CPU in each
 * precision asked for, into a new profile or added to an existing one
 * (--into), under "llm_step" (and llm_step.precisions.<p>). */
static int cmd_llm_step(int argc, char **argv)
{
    rb_llm_opts o;
    rb_llm_opts_default(&o);
    const char *out = NULL, *into = NULL, *model = NULL, *v, *noise_csv = NULL;
    int noise_steps = 0;
    char model_name[128] = "";
    int precs[RB_LLM_N_PREC] = {0}, n_precs = 0;
    for (int i = 1; i < argc; i++) /* the model first: the options below refine it */
        if ((v = optval(argc, argv, &i, "--model"))) {
            model = v;
            int rc = rb_llm_model_load(model, &o, model_name, sizeof model_name, stderr);
            if (rc == 1)
                fprintf(stderr, "%s: not an LLM model file (it needs an `llm` mapping: layers, "
                                "d_model, d_ff, heads, kv_heads)\n", model);
            if (rc)
                return 2;
        }
    for (int i = 1; i < argc; i++) {
        if ((v = optval(argc, argv, &i, "--out")))
            out = v;
        else if ((v = optval(argc, argv, &i, "--noise-steps"))) {
            if (posint(v, &noise_steps) || noise_steps < 10)
                goto usage;
        } else if ((v = optval(argc, argv, &i, "--noise-record")))
            noise_csv = v;
        else if ((v = optval(argc, argv, &i, "--into")))
            into = v;
        else if (optval(argc, argv, &i, "--model")) {
        } else if ((v = optval(argc, argv, &i, "--layers"))) {
            if (posint(v, &o.layers))
                goto usage;
        } else if ((v = optval(argc, argv, &i, "--d-model"))) {
            if (posint(v, &o.d_model))
                goto usage;
        } else if ((v = optval(argc, argv, &i, "--d-ff"))) {
            if (posint(v, &o.d_ff))
                goto usage;
        } else if ((v = optval(argc, argv, &i, "--heads"))) {
            if (posint(v, &o.heads))
                goto usage;
        } else if ((v = optval(argc, argv, &i, "--kv-heads"))) {
            if (posint(v, &o.kv_heads))
                goto usage;
        } else if ((v = optval(argc, argv, &i, "--reps"))) {
            if (posint(v, &o.reps))
                goto usage;
        } else if ((v = optval(argc, argv, &i, "--warmup"))) {
            if (posint(v, &o.warmup))
                goto usage;
        } else if ((v = optval(argc, argv, &i, "--prefill"))) {
            if (grid_list(v, o.prefill, &o.n_prefill))
                goto usage;
        } else if ((v = optval(argc, argv, &i, "--decode"))) {
            if (grid_list(v, o.decode, &o.n_decode))
                goto usage;
        } else if ((v = optval(argc, argv, &i, "--contexts"))) {
            if (grid_list(v, o.contexts, &o.n_contexts))
                goto usage;
        } else if ((v = optval(argc, argv, &i, "--precision"))) {
            char buf[64];
            snprintf(buf, sizeof buf, "%s", v);
            n_precs = 0;
            for (char *sv = NULL, *t = strtok_r(buf, ",", &sv); t; t = strtok_r(NULL, ",", &sv)) {
                rb_llm_precision p;
                if (rb_llm_precision_parse(t, &p) || n_precs == RB_LLM_N_PREC) {
                    fprintf(stderr, "realbench llm-step: --precision takes int8, fp16, fp32 "
                                    "(comma-separated), not '%s'\n", t);
                    goto usage;
                }
                precs[n_precs++] = (int)p;
            }
            if (!n_precs)
                goto usage;
        } else if ((v = optval(argc, argv, &i, "--seed"))) {
            o.seed = strtoul(v, NULL, 10);
        } else if (!strcmp(argv[i], "--quiet")) {
            o.quiet = 1;
        } else {
            fprintf(stderr, "realbench llm-step: unknown or incomplete option '%s'\n", argv[i]);
            goto usage;
        }
    }
    if (!out)
        goto usage;
    if (!n_precs) { /* all three, FP32 last (the one old readers see) */
        precs[n_precs++] = RB_LLM_INT8;
        precs[n_precs++] = RB_LLM_FP16;
        precs[n_precs++] = RB_LLM_FP32;
    }
    cJSON *root = NULL;
    if (into && !(root = rb_profile_read(into, stderr)))
        return 2;
    rb_raw meta;
    rb_raw_init(&meta);
    char created[64];
    time_t now = time(NULL);
    strftime(created, sizeof created, "\"%Y-%m-%dT%H:%M:%SZ\"", gmtime(&now));
    rb_raw_set_meta(&meta, "created", created);
    rb_cpu_device_meta(&meta, 1);
    if (!root) {
        root = cJSON_CreateObject();
        cJSON_AddStringToObject(root, "schema", "fleetsim-calibration/1");
        static const char *const keys[] = {"device", "created", "host"};
        for (size_t i = 0; i < sizeof keys / sizeof *keys; i++) {
            cJSON *m = cJSON_GetObjectItemCaseSensitive(meta.meta, keys[i]);
            if (m)
                cJSON_AddItemToObject(root, keys[i], cJSON_Duplicate(m, 1));
        }
    }
    int rc = 0;
    for (int k = 0; !rc && k < n_precs; k++) {
        o.precision = (rb_llm_precision)precs[k];
        const char *pn = rb_llm_precision_name(o.precision);
        double check_err;
        /* the output checked against FP32 before anything is timed */
        rc = o.precision == RB_LLM_FP32 ? 0 : rb_llm_check(&o, &check_err, stderr);
        if (!rc && o.precision != RB_LLM_FP32 && !o.quiet)
            printf("%s: output within %.3g of FP32's scale (bound %.3g)\n", pn, check_err,
                   rb_llm_error_bound(o.precision));
        rb_llm_step *steps = NULL;
        int n = 0;
        if (!rc)
            rc = rb_llm_bench(&o, &steps, &n, stdout, stderr);
        rb_llm_fit fit;
        if (!rc && rb_llm_fit_steps(steps, n, &fit)) {
            fprintf(stderr, "realbench llm-step: the %s fit failed\n", pn);
            rc = 1;
        }
        if (!rc) {
            static const char *const impl[] = {"cpu-fp32-dot", "cpu-fp16-f32acc",
                                               "cpu-int8-dot-i32acc"};
            cJSON *ls = rb_llm_step_json(&o, "cpu", impl[o.precision], steps, n, &fit,
                                         o.precision == RB_LLM_FP32 ? -1 : check_err,
                                         rb_llm_error_bound(o.precision));
            if (model)
                cJSON_AddStringToObject(cJSON_GetObjectItemCaseSensitive(ls, "kernel"),
                                        "model", model_name);
            /* where the steps ran (with --into, maybe not the profile's device) */
            cJSON_AddItemToObject(ls, "device", cJSON_Duplicate(
                cJSON_GetObjectItemCaseSensitive(meta.meta, "device"), 1));
            cJSON_AddItemToObject(ls, "created", cJSON_Duplicate(
                cJSON_GetObjectItemCaseSensitive(meta.meta, "created"), 1));
            rb_llm_step_put(root, pn, ls);
            if (!o.quiet)
                printf("%s fit: overhead %.3g s + %.3g s x prefill token + %.3g s x decode seq "
                       "+ %.3g s x context token + %.3g s x prefill attention pair (r2 %.4f)\n",
                       pn, fit.overhead_s, fit.per_prefill_token_s, fit.per_decode_seq_s,
                       fit.per_context_token_s, fit.per_prefill_attention_s, fit.r2);
            if (fit.zeroed)
                printf("(%s: fitted below 0 and fixed at 0: %s%s%s%s%s)\n", pn,
                       fit.zeroed & 1 ? "overhead " : "",
                       fit.zeroed & 2 ? "per_prefill_token " : "",
                       fit.zeroed & 4 ? "per_decode_seq " : "",
                       fit.zeroed & 8 ? "per_context_token " : "",
                       fit.zeroed & 16 ? "per_prefill_attention" : "");
        }
        free(steps);
    }
    if (!rc && noise_steps > 0) { /* the per-step record of one composition, and its fit */
        rb_llm_noise nz;
        double *rec = NULL;
        if (rb_llm_noise_record(&o, (size_t)noise_steps, &rec) ||
            rb_llm_noise_fit(rec, (size_t)noise_steps, &nz)) {
            fprintf(stderr, "realbench llm-step: the noise record or its fit failed\n");
            rc = 1;
        }
        FILE *f = !rc && noise_csv ? fopen(noise_csv, "w") : NULL;
        if (f) {
            fprintf(f, "step,duration_s\n");
            for (int i = 0; i < noise_steps; i++)
                fprintf(f, "%d,%.9f\n", i, rec[i]);
        }
        if (!rc && noise_csv && (!f || fclose(f))) {
            fprintf(stderr, "realbench llm-step: cannot write %s\n", noise_csv);
            rc = 1;
        }
        free(rec);
        if (!rc) { /* beside the top level's coefficients, measured in the last precision */
            cJSON *nj = rb_llm_noise_json(&nz);
            cJSON_AddStringToObject(nj, "precision", rb_llm_precision_name(o.precision));
            cJSON *ls = cJSON_GetObjectItemCaseSensitive(root, "llm_step");
            cJSON_DeleteItemFromObjectCaseSensitive(ls, "noise");
            cJSON_AddItemToObject(ls, "noise", nj);
            if (!o.quiet)
                printf("noise: cv %.4f, lag-1 %.4f of the log step times, correlation %.3g s "
                       "(%d steps of %.3g s)\n", nz.cv, nz.lag1, nz.correlation_s, noise_steps,
                       nz.mean_s);
        }
    }
    if (!rc)
        rc = rb_profile_write(root, out, stderr) ? 1 : 0;
    if (!rc && !o.quiet)
        printf("wrote %s\n", out);
    rb_raw_free(&meta);
    cJSON_Delete(root);
    return rc;
usage:
    fprintf(stderr, "usage: realbench llm-step --out P.json [--into PROFILE.json] [--model M.yaml]\n"
                    "         [--precision int8,fp16,fp32] [--layers 2] [--d-model 64] [--d-ff 256]\n"
                    "         [--heads 4] [--kv-heads 2] [--prefill 16,64,256,1024,2048]\n"
                    "         [--decode 1,16,64,256] [--contexts 128,512,2048] [--reps 5] [--warmup 1]\n"
                    "         [--seed N] [--quiet] [--noise-steps N [--noise-record S.csv]]\n"
                    "  times LLM scheduler steps of a decoder layer stack on this CPU in each\n"
                    "  precision (each checked against FP32 first; exit 4 when one is not within\n"
                    "  its bound) and fits fleetsim's alpha_beta step model; --model takes the\n"
                    "  stack from an LLM model file; --into adds to an existing profile;\n"
                    "  --noise-steps N [--noise-record STEPS.csv] times N steps of one composition\n"
                    "  back to back and fits their noise (llm_step.noise: cv, correlation_s, lag1)\n");
    return 2;
}

static int shapes_to(const char *model_path, const char *out, FILE *err)
{
    rb_model *m = rb_model_load(model_path, err);
    if (!m)
        return 2;
    FILE *f = out ? fopen(out, "w") : stdout;
    int rc = !f || rb_model_write_shapes(m, f) ? 1 : 0;
    if (f && f != stdout && fclose(f))
        rc = 1;
    if (rc)
        fprintf(err, "%s: cannot write shapes\n", out ? out : "stdout");
    rb_model_free(m);
    return rc;
}

static int cmd_shapes(int argc, char **argv)
{
    const char *model = NULL, *out = NULL, *v;
    for (int i = 1; i < argc; i++) {
        if ((v = optval(argc, argv, &i, "--model")))
            model = v;
        else if ((v = optval(argc, argv, &i, "--out")))
            out = v;
        else
            model = NULL, i = argc;
    }
    if (!model) {
        fprintf(stderr, "usage: realbench shapes --model M.yaml [--out M.shapes]\n");
        return 2;
    }
    return shapes_to(model, out, stderr);
}

static int cmd_profile(int argc, char **argv)
{
    const char *out = NULL, *center = NULL, *v;
    rb_raw raw;
    rb_raw_init(&raw);
    int n_csv = 0, rc = 0;
    for (int i = 1; i < argc && !rc; i++) {
        if ((v = optval(argc, argv, &i, "--out")))
            out = v;
        else if ((v = optval(argc, argv, &i, "--center")) && (!strcmp(v, "mean") || !strcmp(v, "median")))
            center = v;
        else if ((v = optval(argc, argv, &i, "--from-csv"))) {
            rc = rb_raw_read_csv(&raw, v, stderr) ? 2 : 0;
            n_csv++;
            while (!rc && i + 1 < argc && strncmp(argv[i + 1], "--", 2)) {
                rc = rb_raw_read_csv(&raw, argv[++i], stderr) ? 2 : 0;
                n_csv++;
            }
        } else {
            n_csv = 0;
            break;
        }
    }
    if (!rc && (!out || !n_csv)) {
        fprintf(stderr, "usage: realbench profile --from-csv RAW.csv [MORE.csv...] --out P.json [--center median|mean]\n");
        rc = 2;
    }
    if (!rc && center)
        rc = rb_raw_set_meta(&raw, "settings.center", !strcmp(center, "mean") ? "\"mean\"" : "\"median\"") ? 1 : 0;
    if (!rc)
        rc = write_profile_from_raw(&raw, out, stderr);
    rb_raw_free(&raw);
    return rc;
}

static const char *find_cuda_bench(const char *given)
{
    static char buf[PATH_MAX];
    if (given)
        return given;
    const char *e = getenv("RB_CUDA_BENCH");
    if (e && *e)
        return e;
#ifdef RB_CUDA_BENCH_PATH
    if (!access(RB_CUDA_BENCH_PATH, X_OK))
        return RB_CUDA_BENCH_PATH;
#endif
    ssize_t n = readlink("/proc/self/exe", buf, sizeof buf - 32);
    if (n > 0) {
        buf[n] = 0;
        char *slash = strrchr(buf, '/');
        if (slash) {
            strcpy(slash + 1, "rb_cuda_bench");
            if (!access(buf, X_OK))
                return buf;
        }
    }
    return NULL;
}

/* Runs rb_cuda_bench (exe, args NULL-terminated) and waits: its exit code,
 * said on stderr when not 0 (3: no CUDA device, 4: a correctness check
 * failed); 1 when it could not be run or did not exit. */
static int run_bench(const char *exe, const char **args)
{
    pid_t pid;
    int st = 0;
    fflush(stdout);
    if (posix_spawn(&pid, exe, NULL, NULL, (char *const *)args, environ) ||
        waitpid(pid, &st, 0) < 0) {
        fprintf(stderr, "realbench: cannot run %s\n", exe);
        return 1;
    }
    int code = WIFEXITED(st) ? WEXITSTATUS(st) : 1;
    if (code)
        fprintf(stderr, "realbench: %s failed (exit %d)%s\n", exe, code,
                code == 3 ? ": no CUDA device" : code == 4 ? ": a correctness check failed" : "");
    return code;
}

static int cmd_cuda(int argc, char **argv)
{
    const char *model = NULL, *out = NULL, *rawp = NULL, *bench = NULL, *v;
    const char *pass[16];
    int np = 0;
    for (int i = 1; i < argc; i++) {
        if ((v = optval(argc, argv, &i, "--model")))
            model = v;
        else if ((v = optval(argc, argv, &i, "--out")))
            out = v;
        else if ((v = optval(argc, argv, &i, "--raw")))
            rawp = v;
        else if ((v = optval(argc, argv, &i, "--bench")))
            bench = v;
        else if (np < 14 && (!strcmp(argv[i], "--batches") || !strcmp(argv[i], "--reps") ||
                             !strcmp(argv[i], "--warmup") || !strcmp(argv[i], "--rotate") ||
                             !strcmp(argv[i], "--precisions") || !strcmp(argv[i], "--device") ||
                             !strcmp(argv[i], "--budget-s")) && i + 1 < argc) {
            pass[np++] = argv[i];
            pass[np++] = argv[++i];
        } else {
            model = NULL;
            break;
        }
    }
    if (!model || !out) {
        fprintf(stderr, "usage: realbench cuda --model M.yaml --out P.json [--raw R.csv] [--bench PATH]\n"
                        "         [--batches 1,2,4] [--reps 30] [--warmup 5] [--rotate 4]\n"
                        "         [--precisions int8,int8_dp4a,fp16,bf16,tf32,fp32] [--budget-s S]\n");
        return 2;
    }
    const char *exe = find_cuda_bench(bench);
    if (!exe) {
        fprintf(stderr, "realbench: no rb_cuda_bench (built only when CMake finds CUDA); "
                        "pass --bench PATH or set RB_CUDA_BENCH\n");
        return 1;
    }
    char shapes[] = "/tmp/realbench-shapes-XXXXXX", csv[] = "/tmp/realbench-raw-XXXXXX";
    int fs = mkstemp(shapes), fc = fs >= 0 ? mkstemp(csv) : -1;
    if (fs < 0 || fc < 0) {
        fprintf(stderr, "realbench: cannot create temporary files\n");
        if (fs >= 0)
            close(fs), unlink(shapes);
        return 1;
    }
    close(fs);
    close(fc);
    int rc = shapes_to(model, shapes, stderr);
    if (!rc) {
        const char *args[40] = {exe, "--shapes", shapes, "--out", rawp ? rawp : csv, "--bandwidth"};
        int na = 6;
        for (int k = 0; k < np; k++)
            args[na++] = pass[k];
        args[na] = NULL;
        int code = run_bench(exe, args);
        rc = code == 3 ? 3 : code ? 1 : 0;
    }
    if (!rc) {
        rb_raw raw;
        rb_raw_init(&raw);
        rc = rb_raw_read_csv(&raw, rawp ? rawp : csv, stderr) ? 1 : 0;
        if (!rc)
            rc = write_profile_from_raw(&raw, out, stderr);
        rb_raw_free(&raw);
        if (!rc)
            printf("wrote %s\n", out);
    }
    unlink(shapes);
    unlink(csv);
    return rc;
}

/* The steps rb_cuda_bench --llm-step wrote (format in README.md, "LLM
 * steps on a GPU"): per precision, fitted and put into root's llm_step
 * with the device the file names. 0, 1 (unreadable or a fit failed). */
static int llm_steps_from_csv(const char *path, const rb_llm_opts *o, const char *model_name,
                              cJSON *root, FILE *err)
{
    FILE *f = fopen(path, "r");
    if (!f) {
        fprintf(err, "%s: cannot read LLM steps\n", path);
        return 1;
    }
    enum { MAXP = 8, MAXS = 1024 };
    struct {
        char name[32], impl[48];
        double check_err, bound;
        int n;
        rb_llm_step s[MAXS];
    } *pr = calloc(MAXP, sizeof *pr);
    int np = 0, rc = pr ? 0 : 1, line = 0;
    rb_raw meta;
    rb_raw_init(&meta);
    char buf[512];
    while (!rc && fgets(buf, sizeof buf, f)) {
        line++;
        buf[strcspn(buf, "\r\n")] = 0;
        char name[32], impl[48];
        double a, b, c, lat, e, bound, pairs = 0;
        int reps, k = -1, got;
        if (buf[0] == '#') {
            char *eq = strchr(buf, '=');
            if (eq && buf[1] == ' ') { /* `# key=value`, strings quoted, as rb_raw's CSV */
                *eq = 0;
                rb_raw_set_meta(&meta, buf + 2, eq + 1);
            }
            continue;
        }
        if (!buf[0] || !strncmp(buf, "kind,", 5))
            continue;
        /* an eighth number, the prefill attention pairs, is optional: files
         * written before it have seven and fit four terms */
        got = sscanf(buf, "step,%31[^,],%47[^,],%lf,%lf,%lf,%d,%lf,%lf", name, impl, &a, &b, &c,
                     &reps, &lat, &pairs);
        int step = got == 7 || got == 8;
        int check = !step && sscanf(buf, "check,%31[^,],%lf,%lf", name, &e, &bound) == 3;
        if (!step && !check) {
            fprintf(err, "%s:%d: not a step or check line\n", path, line);
            rc = 1;
            break;
        }
        for (int i = 0; i < np; i++)
            if (!strcmp(pr[i].name, name))
                k = i;
        if (k < 0 && np == MAXP) {
            fprintf(err, "%s:%d: too many precisions\n", path, line);
            rc = 1;
            break;
        }
        if (k < 0) {
            k = np++;
            snprintf(pr[k].name, sizeof pr[k].name, "%s", name);
            pr[k].check_err = -1;
        }
        if (check) {
            pr[k].check_err = e;
            pr[k].bound = bound;
        } else if (pr[k].n < MAXS) {
            snprintf(pr[k].impl, sizeof pr[k].impl, "%s", impl);
            pr[k].s[pr[k].n++] = (rb_llm_step){ a, b, c, lat, reps, got == 8 ? pairs : 0 };
        }
    }
    fclose(f);
    for (int k = 0; !rc && k < np; k++) {
        rb_llm_fit fit;
        if (rb_llm_fit_steps(pr[k].s, pr[k].n, &fit)) {
            fprintf(err, "%s: the %s fit failed\n", path, pr[k].name);
            rc = 1;
            break;
        }
        rb_llm_opts po = *o;
        rb_llm_precision_parse(pr[k].name, &po.precision);
        cJSON *ls = rb_llm_step_json(&po, "cuda", pr[k].impl, pr[k].s, pr[k].n, &fit,
                                     pr[k].check_err, pr[k].bound);
        cJSON *kern = cJSON_GetObjectItemCaseSensitive(ls, "kernel");
        cJSON_ReplaceItemInObjectCaseSensitive(kern, "precision", cJSON_CreateString(pr[k].name));
        if (model_name && *model_name)
            cJSON_AddStringToObject(kern, "model", model_name);
        const cJSON *dev = cJSON_GetObjectItemCaseSensitive(meta.meta, "device");
        if (dev)
            cJSON_AddItemToObject(ls, "device", cJSON_Duplicate(dev, 1));
        rb_llm_step_put(root, pr[k].name, ls);
        printf("%s fit: overhead %.3g s + %.3g s x prefill token + %.3g s x decode seq + %.3g s "
               "x context token + %.3g s x prefill attention pair (r2 %.4f)\n", pr[k].name,
               fit.overhead_s, fit.per_prefill_token_s, fit.per_decode_seq_s,
               fit.per_context_token_s, fit.per_prefill_attention_s, fit.r2);
    }
    if (!rc && !np) {
        fprintf(err, "%s: no steps\n", path);
        rc = 1;
    }
    if (!rc && !cJSON_GetObjectItemCaseSensitive(root, "device")) {
        const cJSON *dev = cJSON_GetObjectItemCaseSensitive(meta.meta, "device");
        if (dev)
            cJSON_AddItemToObject(root, "device", cJSON_Duplicate(dev, 1));
    }
    rb_raw_free(&meta);
    free(pr);
    return rc;
}

/* `cuda-llm-step` (and calibrate --device cuda on an LLM model file): the
 * same steps timed by rb_cuda_bench --llm-step on the GPU, or read from
 * its CSV (--from-csv), fitted into a profile's llm_step. */
static int cmd_cuda_llm_step(int argc, char **argv)
{
    rb_llm_opts o;
    rb_llm_opts_default(&o);
    const char *out = NULL, *model = NULL, *bench = NULL, *from = NULL, *prec = NULL, *v;
    const char *grid[3] = {NULL, NULL, NULL}, *reps = NULL, *warmup = NULL;
    char model_name[128] = "";
    for (int i = 1; i < argc; i++) {
        if ((v = optval(argc, argv, &i, "--out")))
            out = v;
        else if ((v = optval(argc, argv, &i, "--model")))
            model = v;
        else if ((v = optval(argc, argv, &i, "--bench")))
            bench = v;
        else if ((v = optval(argc, argv, &i, "--from-csv")))
            from = v;
        else if ((v = optval(argc, argv, &i, "--precision")) ||
                 (v = optval(argc, argv, &i, "--precisions")))
            prec = v;
        else if ((v = optval(argc, argv, &i, "--prefill")))
            grid[0] = v;
        else if ((v = optval(argc, argv, &i, "--decode")))
            grid[1] = v;
        else if ((v = optval(argc, argv, &i, "--contexts")))
            grid[2] = v;
        else if ((v = optval(argc, argv, &i, "--reps")))
            reps = v;
        else if ((v = optval(argc, argv, &i, "--warmup")))
            warmup = v;
        else {
            fprintf(stderr, "realbench cuda-llm-step: unknown or incomplete option '%s'\n",
                    argv[i]);
            goto usage;
        }
    }
    if (!out || !model)
        goto usage;
    if (rb_llm_model_load(model, &o, model_name, sizeof model_name, stderr)) {
        fprintf(stderr, "%s: not an LLM model file\n", model);
        return 2;
    }
    char csv[] = "/tmp/realbench-llm-XXXXXX";
    int rc = 0;
    if (!from) {
        const char *exe = find_cuda_bench(bench);
        if (!exe) {
            fprintf(stderr, "realbench: no rb_cuda_bench (built only when CMake finds CUDA); "
                            "pass --bench PATH or set RB_CUDA_BENCH\n");
            return 1;
        }
        int fc = mkstemp(csv);
        if (fc < 0) {
            fprintf(stderr, "realbench: cannot create a temporary file\n");
            return 1;
        }
        close(fc);
        char shape[5][16];
        int vals[5] = {o.layers, o.d_model, o.d_ff, o.heads, o.kv_heads};
        for (int k = 0; k < 5; k++)
            snprintf(shape[k], sizeof shape[k], "%d", vals[k]);
        const char *args[40] = {exe, "--llm-step", "--out", csv, "--layers", shape[0],
                                "--d-model", shape[1], "--d-ff", shape[2], "--heads", shape[3],
                                "--kv-heads", shape[4]};
        int na = 14;
        const char *pass[][2] = {{"--precisions", prec}, {"--prefill", grid[0]},
                                 {"--decode", grid[1]}, {"--contexts", grid[2]},
                                 {"--reps", reps}, {"--warmup", warmup}};
        for (size_t k = 0; k < sizeof pass / sizeof *pass; k++)
            if (pass[k][1]) {
                args[na++] = pass[k][0];
                args[na++] = pass[k][1];
            }
        args[na] = NULL;
        int code = run_bench(exe, args);
        rc = code == 3 || code == 4 ? code : code ? 1 : 0;
    }
    cJSON *root = cJSON_CreateObject();
    cJSON_AddStringToObject(root, "schema", "fleetsim-calibration/1");
    char created[64];
    time_t now = time(NULL);
    strftime(created, sizeof created, "%Y-%m-%dT%H:%M:%SZ", gmtime(&now));
    cJSON_AddStringToObject(root, "created", created);
    if (!rc)
        rc = llm_steps_from_csv(from ? from : csv, &o, model_name, root, stderr);
    if (!rc)
        rc = rb_profile_write(root, out, stderr) ? 1 : 0;
    if (!rc)
        printf("wrote %s\n", out);
    cJSON_Delete(root);
    if (!from)
        unlink(csv);
    return rc;
usage:
    fprintf(stderr, "usage: realbench cuda-llm-step --model M.yaml --out P.json [--from-csv STEPS.csv]\n"
                    "         [--bench PATH] [--precision fp16,bf16,int8] [--prefill LIST] [--decode LIST]\n"
                    "         [--contexts LIST] [--reps N] [--warmup N]\n");
    return 2;
}

/* A number member of o, NAN when absent (rb_profile_read has checked that
 * what is present has the right type). */
static double num_or_nan(const cJSON *o, const char *key)
{
    const cJSON *x = cJSON_GetObjectItemCaseSensitive(o, key);
    return cJSON_IsNumber(x) ? x->valuedouble : NAN;
}

static void print_row(const char *prec, const cJSON *o)
{
    const cJSON *b = cJSON_GetObjectItemCaseSensitive(o, "batch");
    const cJSON *l = cJSON_GetObjectItemCaseSensitive(o, "latency_s");
    const cJSON *p10 = cJSON_GetObjectItemCaseSensitive(o, "p10_s");
    const cJSON *p90 = cJSON_GetObjectItemCaseSensitive(o, "p90_s");
    int n = cJSON_GetArraySize(b);
    for (int i = 0; i < n; i++) {
        double bb = cJSON_GetArrayItem(b, i)->valuedouble, lat = cJSON_GetArrayItem(l, i)->valuedouble;
        const cJSON *lo = cJSON_GetArrayItem(p10, i), *hi = cJSON_GetArrayItem(p90, i);
        printf("%-10s %6.0f %12.4f %12.4f %12.4f %14.3f\n", prec, bb, lat * 1e3,
               cJSON_IsNumber(lo) ? lo->valuedouble * 1e3 : 0,
               cJSON_IsNumber(hi) ? hi->valuedouble * 1e3 : 0, lat / bb * 1e6);
    }
    const cJSON *f = cJSON_GetObjectItemCaseSensitive(o, "fit");
    if (f)
        printf("%-10s fit: latency = %.4g ms + %.4g ms * batch (residual sd %.3g ms, r2 %.4f)\n", prec,
               num_or_nan(f, "alpha_s") * 1e3, num_or_nan(f, "beta_s") * 1e3,
               num_or_nan(f, "residual_sd_s") * 1e3, num_or_nan(f, "r2"));
}

static int cmd_table(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: realbench table P.json\n");
        return 2;
    }
    cJSON *p = rb_profile_read(argv[1], stderr);
    if (!p)
        return 2;
    const cJSON *d = cJSON_GetObjectItemCaseSensitive(p, "device");
    const cJSON *m = cJSON_GetObjectItemCaseSensitive(p, "model");
    const char *mname = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(m, "name"));
    const char *dname = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(d, "name"));
    printf("%s on %s\n", mname ? mname : "(unnamed model)", dname ? dname : "(unnamed device)");
    printf("%-10s %6s %12s %12s %12s %14s\n", "precision", "batch", "latency_ms", "p10_ms",
           "p90_ms", "per_item_us");
    const cJSON *pr = cJSON_GetObjectItemCaseSensitive(p, "precisions");
    for (const cJSON *o = pr ? pr->child : NULL; o; o = o->next)
        print_row(o->string, o);
    const cJSON *sp = cJSON_GetObjectItemCaseSensitive(p, "speedup");
    const cJSON *sb = cJSON_GetObjectItemCaseSensitive(sp, "batch");
    for (const cJSON *s = sp ? sp->child : NULL; s; s = s->next) {
        if (!strcmp(s->string, "batch"))
            continue;
        printf("speedup %-18s", s->string);
        for (int i = 0; i < cJSON_GetArraySize(s); i++) {
            const cJSON *x = cJSON_GetArrayItem(s, i);
            if (cJSON_IsNumber(x))
                printf(" b%.0f:%.2f", cJSON_GetArrayItem(sb, i)->valuedouble, x->valuedouble);
        }
        printf("\n");
    }
    cJSON_Delete(p);
    return 0;
}

typedef int cmd_fn(int argc, char **argv);
static const struct {
    const char *name;
    cmd_fn *fn;
    const char *help;
} commands[] = {
    {"cpu", cmd_cpu, "measure a model's INT8/FP32 kernels on this CPU, write a profile"},
    {"cuda", cmd_cuda, "measure a model on the GPU (runs rb_cuda_bench), write a profile"},
    {"llm-step", cmd_llm_step, "time LLM scheduler steps on this CPU, fit alpha_beta, write a profile"},
    {"cuda-llm-step", cmd_cuda_llm_step, "time LLM scheduler steps with rb_cuda_bench (or read its CSV), fit alpha_beta"},
    {"llm-loop", rb_llm_loop_main, "closed loop for LLMs: a real continuous-batching loop vs fleetsim's prediction"},
    {"llm-slow-noise", rb_llm_slow_noise_main, "the slow step-noise component, fitted on a loop's calibration record"},
    {"serve", rb_serve_main, "closed loop: a real INT8 serving loop under Poisson load"},
    {"profile", cmd_profile, "turn raw CSV measurements (from rb_cuda_bench) into a profile"},
    {"shapes", cmd_shapes, "write a model's GEMM shapes for rb_cuda_bench"},
    {"table", cmd_table, "print a profile as a table"},
    {"fidelity", rb_fidelity_main, "fleetsim's p50/p90/p99 for a serving run (serve/rb_cuda_bench --serve) vs the run's"},
};

static void usage(FILE *f)
{
    fprintf(f, "usage: realbench <command> [options]\n\ncommands:\n");
    for (size_t i = 0; i < sizeof commands / sizeof *commands; i++)
        fprintf(f, "  %-8s %s\n", commands[i].name, commands[i].help);
    fprintf(f, "\n`realbench <command> --help` for a command's options.\n");
}

int rb_main(int argc, char **argv)
{
    if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
        usage(argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    for (size_t i = 0; i < sizeof commands / sizeof *commands; i++)
        if (!strcmp(argv[1], commands[i].name))
            return commands[i].fn(argc - 1, argv + 1);
    fprintf(stderr, "realbench: unknown command '%s'\n", argv[1]);
    usage(stderr);
    return 2;
}

int rb_calibrate_main(int argc, char **argv)
{
    const char *device = NULL, *v;
    const char *args[64];
    int na = 1;
    for (int i = 1; i < argc && na < 62; i++) {
        if ((v = optval(argc, argv, &i, "--device")))
            device = v;
        else
            args[na++] = argv[i];
    }
    if (!device || (strcmp(device, "cpu") && strcmp(device, "cuda"))) {
        fprintf(stderr, "usage: fleetsim calibrate --device cuda|cpu --model realbench/models/X.yaml "
                        "--out profile.json [--batches 1,2,4,...] [--reps N]\n");
        return 2;
    }
    args[0] = device;
    args[na] = NULL;
    /* an LLM model file (an `llm` mapping): its scheduler steps */
    const char *model = NULL;
    for (int i = 1; i < na; i++)
        if ((v = optval(na, (char **)args, &i, "--model")))
            model = v;
    rb_llm_opts lo;
    char name[128];
    int kind = model ? rb_llm_model_load(model, &lo, name, sizeof name, stderr) : 1;
    if (kind == 2)
        return 2;
    if (kind == 0) {
        args[0] = "llm-step";
        return !strcmp(device, "cpu") ? cmd_llm_step(na, (char **)args)
                                      : cmd_cuda_llm_step(na, (char **)args);
    }
    return !strcmp(device, "cpu") ? cmd_cpu(na, (char **)args) : cmd_cuda(na, (char **)args);
}
