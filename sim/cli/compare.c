/*
 * compare.c - `fleetsim compare`, `sweep` and `merge`: many runs of one or
 * more scenarios, summed up with 95% confidence intervals.
 *
 * A grid is every scenario file crossed with every combination of the --vary
 * values (the last --vary changing fastest); each grid point is a variant,
 * run once per seed. Runs are child processes (`fleetsim run`, exec'd from
 * /proc/self/exe), at most --jobs at a time (default: the number of cores),
 * each writing its own directory under OUT/runs/. The same seeds are used
 * for every variant (common random numbers), so differences between
 * variants are not masked by differences between seeds. compare runs the
 * whole grid and writes compare.json, compare.md and compare.html; sweep
 * runs one shard of it and writes its records as JSON lines; merge joins
 * the shards' lines into the same report.
 */
#include "cli.h"
#include "compare.h"
#include "svg.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

typedef struct {
    int index;
    const char *scenario;
    char *label;
    const char **sets;         /* global --set, then this point's --vary values */
    int n_sets;
} grid_variant;

static void grid_free(grid_variant *v, int n, const cli_grid_args *g)
{
    for (int i = 0; v && i < n; i++) {
        for (int k = g->n_sets; k < v[i].n_sets; k++)
            free((char *)v[i].sets[k]);
        free(v[i].sets);
        free(v[i].label);
    }
    free(v);
}

/* Loads variant x, its overrides named as the options they came from; of
 * its error lines, prints those no variant printed before (shown holds
 * them), so a bad --set reads once, not once per variant. */
static sc_scenario *load_variant(const grid_variant *x, char *const *names, rp_buf *shown)
{
    char *text = NULL;
    size_t len = 0;
    FILE *err = open_memstream(&text, &len);
    sc_scenario *sc = sc_load_named(x->scenario, x->sets, (const char *const *)names, x->n_sets,
                                    err ? err : stderr);
    if (err)
        fclose(err);
    for (char *line = text, *end; line && *line; line = end + 1) {
        end = strchr(line, '\n');
        if (!end)
            end = line + strlen(line) - 1;
        size_t n = (size_t)(end - line) + 1;
        int seen = 0;
        for (const char *p = shown->s; p && !seen && (p = strstr(p, "\n")); p++)
            seen = !strncmp(p + 1, line, n);
        if (!seen) {
            fwrite(line, 1, n, stderr);
            if (!shown->s)
                rp_buf_puts(shown, "\n");
            rp_buf_add(shown, line, n);
        }
        if (!end[1])
            break;
    }
    free(text);
    return sc;
}

/* Expands the grid, loading each variant once to check it (and to learn the
 * base seed and scenario names). NULL after printing errors. */
static grid_variant *expand_grid(cli_grid_args *g, int *n_out)
{
    int points = 1;
    for (int i = 0; i < g->n_vary; i++)
        points *= g->vary[i].n_values;
    int n = g->n_scenarios * points;
    grid_variant *v = calloc((size_t)n, sizeof *v);
    int bad = 0;
    /* messages name the option at fault: --set[N] for the N-th --set,
     * --vary[N] for the N-th --vary */
    char **names = calloc((size_t)(g->n_sets + g->n_vary) + 1, sizeof *names);
    for (int i = 0; i < g->n_sets + g->n_vary; i++) {
        char name[32];
        snprintf(name, sizeof name, i < g->n_sets ? "--set[%d]" : "--vary[%d]",
                 i < g->n_sets ? i + 1 : i - g->n_sets + 1);
        names[i] = strdup(name);
    }
    rp_buf shown = { 0 };
    for (int f = 0; f < g->n_scenarios; f++) {
        for (int p = 0; p < points; p++) {
            grid_variant *x = &v[f * points + p];
            x->index = f * points + p;
            x->scenario = g->scenarios[f];
            x->sets = calloc((size_t)(g->n_sets + g->n_vary + 1), sizeof *x->sets);
            for (int i = 0; i < g->n_sets; i++)
                x->sets[x->n_sets++] = g->sets[i];
            rp_buf lab = { 0 };
            int rest = p;
            char **vals = calloc((size_t)g->n_vary + 1, sizeof *vals);
            for (int i = g->n_vary - 1; i >= 0; i--) { /* last --vary changes fastest */
                vals[i] = g->vary[i].values[rest % g->vary[i].n_values];
                rest /= g->vary[i].n_values;
            }
            for (int i = 0; i < g->n_vary; i++) {
                char *kv = malloc(strlen(g->vary[i].key) + strlen(vals[i]) + 2);
                sprintf(kv, "%s=%s", g->vary[i].key, vals[i]);
                x->sets[x->n_sets++] = kv;
                rp_buf_printf(&lab, "%s%s", i ? ", " : "", kv);
            }
            free(vals);
            sc_scenario *sc = load_variant(x, names, &shown);
            if (!sc) {
                bad = 1;
                rp_buf_free(&lab);
                x->label = strdup(x->scenario);
                continue;
            }
            if (!g->has_seed) {
                g->seed = sc->seed;
                g->has_seed = 1;
            }
            rp_buf name = { 0 };
            if (g->n_scenarios > 1 || g->n_vary == 0)
                rp_buf_puts(&name, sc->name);
            if (g->n_scenarios > 1 && g->n_vary > 0)
                rp_buf_puts(&name, ": ");
            if (lab.s)
                rp_buf_puts(&name, lab.s);
            x->label = name.s;
            rp_buf_free(&lab);
            sc_free(sc);
        }
    }
    for (int i = 0; i < g->n_sets + g->n_vary; i++)
        free(names[i]);
    free(names);
    rp_buf_free(&shown);
    *n_out = n;
    if (bad) {
        grid_free(v, n, g);
        return NULL;
    }
    return v;
}

typedef struct {
    const grid_variant *v;
    unsigned long seed;
    char dir[4096];
    pid_t pid;
    int status;                /* exit status, -1 if it did not exit */
} run_job;

static pid_t spawn_run(run_job *j)
{
    char log[4200], seed[32];
    snprintf(log, sizeof log, "%s/run.log", j->dir);
    snprintf(seed, sizeof seed, "%lu", j->seed);
    int argc = 0;
    const char **argv = calloc((size_t)(10 + 2 * j->v->n_sets), sizeof *argv);
    argv[argc++] = "fleetsim";
    argv[argc++] = "run";
    argv[argc++] = j->v->scenario;
    argv[argc++] = "--seed";
    argv[argc++] = seed;
    argv[argc++] = "--out";
    argv[argc++] = j->dir;
    argv[argc++] = "--quiet";
    for (int i = 0; i < j->v->n_sets; i++) {
        argv[argc++] = "--set";
        argv[argc++] = j->v->sets[i];
    }
    argv[argc] = NULL;
    fflush(NULL);
    pid_t pid = fork();
    if (pid == 0) {
        int fd = open(log, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        if (fd >= 0) {
            dup2(fd, STDOUT_FILENO);
            dup2(fd, STDERR_FILENO);
            close(fd);
        }
        execv("/proc/self/exe", (char *const *)argv);
        perror("fleetsim: exec /proc/self/exe");
        _exit(127);
    }
    free(argv);
    return pid;
}

/* A run's exit status that still wrote complete results: ok, or its chaos
 * hypothesis failed (a result to compare, not a failed run). */
static int has_results(int status)
{
    return status == CLI_EXIT_OK || status == CLI_EXIT_HYPOTHESIS;
}

/* Runs the jobs, at most `parallel` at a time; 0 when all have results. */
static int run_jobs(run_job *jobs, int n, int parallel)
{
    int next = 0, running = 0, done = 0, failed = 0;
    while (done < n) {
        while (running < parallel && next < n) {
            if (cli_mkdir_p(jobs[next].dir) != 0) {
                fprintf(stderr, "fleetsim: cannot create %s: %s\n", jobs[next].dir,
                        strerror(errno));
                jobs[next].status = -1;
                failed++;
                done++;
                next++;
                continue;
            }
            jobs[next].pid = spawn_run(&jobs[next]);
            if (jobs[next].pid < 0) {
                perror("fleetsim: fork");
                jobs[next].status = -1;
                failed++;
                done++;
            } else {
                running++;
            }
            next++;
        }
        if (running == 0)
            continue;
        int st;
        pid_t pid = waitpid(-1, &st, 0);
        if (pid < 0) {
            if (errno == EINTR)
                continue;
            perror("fleetsim: waitpid");
            return -1;
        }
        for (int i = 0; i < n; i++) {
            if (jobs[i].pid != pid)
                continue;
            jobs[i].pid = 0;
            jobs[i].status = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
            running--;
            done++;
            fprintf(stderr, "[%d/%d] %s seed %lu: %s\n", done, n, jobs[i].v->label, jobs[i].seed,
                    jobs[i].status == 0                     ? "done"
                    : jobs[i].status == CLI_EXIT_HYPOTHESIS ? "done (hypothesis failed)"
                                                            : "FAILED");
            if (!has_results(jobs[i].status)) {
                failed++;
                fprintf(stderr, "fleetsim: run failed (exit %d); its output is in %s/run.log\n",
                        jobs[i].status, jobs[i].dir);
            }
        }
    }
    return failed ? -1 : 0;
}

/* Runs this shard's share of the grid and returns the records (one per
 * run, in job order), or NULL on failure. */
static cJSON *run_grid(cli_grid_args *g, const char *out_dir, int *rc)
{
    int nv;
    grid_variant *v = expand_grid(g, &nv);
    if (!v) {
        *rc = 2;
        return NULL;
    }
    int total = nv * g->seeds, n = 0;
    run_job *jobs = calloc((size_t)total, sizeof *jobs);
    for (int j = 0; j < total; j++) {
        if (g->shard_n && j % g->shard_n != g->shard_k - 1)
            continue;
        run_job *x = &jobs[n++];
        x->v = &v[j / g->seeds];
        x->seed = g->seed + (unsigned long)(j % g->seeds);
        snprintf(x->dir, sizeof x->dir, "%s/runs/v%d-seed%lu", out_dir, x->v->index, x->seed);
    }
    fprintf(stderr, "fleetsim: %d variant%s x %d seed%s = %d runs, %d at a time\n", nv,
            nv == 1 ? "" : "s", g->seeds, g->seeds == 1 ? "" : "s", total, g->jobs);
    if (g->shard_n)
        fprintf(stderr, "fleetsim: shard %d/%d runs %d of them\n", g->shard_k, g->shard_n, n);
    cJSON *records = NULL;
    if (run_jobs(jobs, n, g->jobs) != 0) {
        *rc = 1;
    } else {
        records = cJSON_CreateArray();
        for (int i = 0; i < n; i++) {
            cJSON *r = rp_run_record(jobs[i].dir, jobs[i].v->index, jobs[i].v->label,
                                     jobs[i].v->scenario, jobs[i].v->sets, jobs[i].v->n_sets,
                                     jobs[i].seed, stderr);
            if (!r) {
                *rc = 1;
                cJSON_Delete(records);
                records = NULL;
                break;
            }
            cJSON_AddItemToArray(records, r);
        }
    }
    free(jobs);
    grid_free(v, nv, g);
    return records;
}

static int write_jsonl(const cJSON *records, const char *path)
{
    FILE *f = fopen(path, "w");
    if (!f)
        return -1;
    const cJSON *r;
    cJSON_ArrayForEach(r, records)
    {
        char *line = cJSON_PrintUnformatted(r);
        fprintf(f, "%s\n", line);
        cJSON_free(line);
    }
    return fclose(f);
}

static cJSON *load_reference(const char *path)
{
    if (!path)
        return NULL;
    char *text = cli_read_file(path);
    cJSON *j = text ? cJSON_Parse(text) : NULL;
    free(text);
    if (!j || !cJSON_IsArray(cJSON_GetObjectItemCaseSensitive(j, "columns")) ||
        !cJSON_IsArray(cJSON_GetObjectItemCaseSensitive(j, "rows"))) {
        fprintf(stderr, "fleetsim: %s: not a reference file (a JSON object with \"columns\" "
                        "and \"rows\" arrays; see reports/README.md)\n",
                path);
        cJSON_Delete(j);
        return NULL;
    }
    return j;
}

static int finish_compare(rp_compare *c, const char *dir, const char *reference)
{
    cJSON *ref = NULL;
    if (reference) {
        ref = load_reference(reference);
        if (!ref)
            return 2;
    }
    if (cli_mkdir_p(dir) != 0) {
        fprintf(stderr, "fleetsim: cannot create %s: %s\n", dir, strerror(errno));
        cJSON_Delete(ref);
        return 1;
    }
    int rc = rp_compare_write(c, dir, ref, stderr) == 0 ? 0 : 1;
    cJSON_Delete(ref);
    if (rc == 0) {
        printf("compared %d variant%s: %s/compare.md, compare.html, compare.json\n",
               rp_compare_n_variants(c), rp_compare_n_variants(c) == 1 ? "" : "s", dir);
        const char *choice = rp_compare_slo_choice(c);
        if (choice)
            printf("cheapest variant that meets the SLO: %s\n", choice);
    }
    return rc;
}

int cli_compare(const cli_ctx *x)
{
    cli_grid_args g;
    if (cli_parse_grid_args(x->argc, x->argv, &g, 0, stderr) != 0) {
        cli_grid_args_free(&g);
        return 2;
    }
    if (g.reference) { /* fail before the runs, not after */
        cJSON *ref = load_reference(g.reference);
        int ok = ref != NULL;
        cJSON_Delete(ref);
        if (!ok) {
            cli_grid_args_free(&g);
            return 2;
        }
    }
    char dir[4096];
    if (g.out_dir) {
        snprintf(dir, sizeof dir, "%s", g.out_dir);
    } else {
        const char *base = strrchr(g.scenarios[0], '/');
        base = base ? base + 1 : g.scenarios[0];
        snprintf(dir, sizeof dir, "results/compare-%.*s", (int)strcspn(base, "."), base);
    }
    int rc = 0;
    cJSON *records = run_grid(&g, dir, &rc);
    if (records) {
        char path[4200];
        snprintf(path, sizeof path, "%s/runs.jsonl", dir);
        if (write_jsonl(records, path) != 0)
            fprintf(stderr, "fleetsim: cannot write %s: %s\n", path, strerror(errno));
        rp_compare *c = rp_compare_new();
        const cJSON *r;
        cJSON_ArrayForEach(r, records)
        {
            if (rp_compare_add(c, r, stderr) != 0)
                rc = 1;
        }
        if (rc == 0)
            rc = finish_compare(c, dir, g.reference);
        rp_compare_free(c);
        cJSON_Delete(records);
    }
    cli_grid_args_free(&g);
    return rc;
}

int cli_sweep(const cli_ctx *x)
{
    cli_grid_args g;
    if (cli_parse_grid_args(x->argc, x->argv, &g, 1, stderr) != 0) {
        cli_grid_args_free(&g);
        return 2;
    }
    int rc = 0;
    cJSON *records = run_grid(&g, g.out_dir, &rc);
    if (records) {
        char path[4200];
        snprintf(path, sizeof path, "%s/shard-%d-of-%d.jsonl", g.out_dir, g.shard_k, g.shard_n);
        if (write_jsonl(records, path) != 0) {
            fprintf(stderr, "fleetsim: cannot write %s: %s\n", path, strerror(errno));
            rc = 1;
        } else {
            printf("%d runs: %s\n", cJSON_GetArraySize(records), path);
        }
        cJSON_Delete(records);
    }
    cli_grid_args_free(&g);
    return rc;
}

static int has_suffix(const char *s, const char *suffix)
{
    size_t a = strlen(s), b = strlen(suffix);
    return a >= b && !strcmp(s + a - b, suffix);
}

static int by_name(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The shards of a sweep that merge found, from their file names
 * (shard-K-of-N.jsonl, as sweep writes them). */
typedef struct {
    int n;                     /* N of the first shard file; 0: none seen */
    int mixed;                 /* files of sweeps cut into different N */
    unsigned char *seen;       /* seen[k - 1]: shard k was found */
} shard_set;

static void note_shard(shard_set *s, const char *name)
{
    int k, n, used = 0;
    if (sscanf(name, "shard-%d-of-%d.jsonl%n", &k, &n, &used) != 2 || name[used] || n < 1 ||
        k < 1 || k > n || n > 1000000)
        return;
    if (s->n == 0) {
        s->seen = calloc((size_t)n, 1);
        if (!s->seen)
            return;
        s->n = n;
    }
    if (n != s->n) {
        s->mixed = 1;
        return;
    }
    s->seen[k - 1] = 1;
}

/* A partial sweep merges, but its seed counts are short: say which shards
 * are missing (the first 20). */
static void warn_missing_shards(const shard_set *s)
{
    int missing = 0;
    for (int k = 0; k < s->n; k++)
        missing += !s->seen[k];
    if (s->mixed)
        fprintf(stderr, "fleetsim: merge: warning: shard files of sweeps cut into different "
                        "numbers of shards (the first seen was of %d)\n", s->n);
    if (missing == 0)
        return;
    fprintf(stderr, "fleetsim: merge: warning: %d of %d shards missing, so the runs and seed "
                    "counts are those of the shards found; missing:", missing, s->n);
    int shown = 0;
    for (int k = 0; k < s->n && shown < 20; k++)
        if (!s->seen[k]) {
            fprintf(stderr, " shard-%d-of-%d.jsonl", k + 1, s->n);
            shown++;
        }
    fprintf(stderr, "%s\n", missing > shown ? " ..." : "");
}

int cli_merge(const cli_ctx *x)
{
    int argc = x->argc;
    char **argv = x->argv;
    const char *out = NULL, *reference = NULL;
    const char **dirs = calloc((size_t)argc + 1, sizeof *dirs);
    int n_dirs = 0;
    for (int i = 1; i < argc; i++) {
        if ((!strcmp(argv[i], "--out") || !strcmp(argv[i], "--reference")) && i + 1 < argc) {
            *(argv[i][2] == 'o' ? &out : &reference) = argv[i + 1];
            i++;
        } else if (argv[i][0] == '-' && argv[i][1]) {
            fprintf(stderr, "fleetsim: unknown option or missing value: %s\n", argv[i]);
            free(dirs);
            return 2;
        } else {
            dirs[n_dirs++] = argv[i];
        }
    }
    if (n_dirs == 0) {
        fprintf(stderr, "fleetsim: merge: no directories given\n");
        free(dirs);
        return 2;
    }
    rp_compare *c = rp_compare_new();
    int rc = 0, files = 0;
    shard_set shards = { 0 };
    for (int d = 0; d < n_dirs && rc == 0; d++) {
        DIR *dh = opendir(dirs[d]);
        if (!dh) {
            fprintf(stderr, "fleetsim: cannot open %s: %s\n", dirs[d], strerror(errno));
            rc = 2;
            break;
        }
        char **names = NULL;
        int n = 0;
        struct dirent *e;
        while ((e = readdir(dh)))
            if (has_suffix(e->d_name, ".jsonl")) {
                names = realloc(names, sizeof *names * (size_t)(n + 1));
                names[n++] = strdup(e->d_name);
            }
        closedir(dh);
        if (n) /* names is NULL for none, and qsort's pointer must not be */
            qsort(names, (size_t)n, sizeof *names, by_name);
        for (int i = 0; i < n; i++) {
            char path[4096];
            snprintf(path, sizeof path, "%s/%s", dirs[d], names[i]);
            if (rc == 0 && rp_compare_load_jsonl(c, path, stderr) != 0)
                rc = 2;
            files++;
            note_shard(&shards, names[i]);
            free(names[i]);
        }
        free(names);
    }
    if (rc == 0)
        warn_missing_shards(&shards);
    free(shards.seen);
    if (rc == 0 && files == 0) {
        fprintf(stderr, "fleetsim: merge: no .jsonl files in the directories given\n");
        rc = 2;
    }
    if (rc == 0)
        rc = finish_compare(c, out ? out : dirs[0], reference);
    rp_compare_free(c);
    free(dirs);
    return rc;
}
