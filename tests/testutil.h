/*
 * testutil.h - helpers for tests that drive the fleetsim binary: run it with
 * a scenario written to a temporary directory, read summary.json back with
 * cJSON and timeseries.csv columns as numbers. The binary's path comes from
 * CTest (FLEETSIM_BIN), the source tree from FLEETSIM_SRC. Header-only so
 * each test executable stays one file.
 */
#ifndef FLEETSIM_TESTUTIL_H
#define FLEETSIM_TESTUTIL_H

#include <cjson/cJSON.h>

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static inline const char *tu_bin(void)
{
    const char *b = getenv("FLEETSIM_BIN");
    return b ? b : "./fleetsim";
}

static inline const char *tu_src(void)
{
    const char *s = getenv("FLEETSIM_SRC");
    return s ? s : "..";
}

/* A fresh temporary directory; the caller frees the string. */
static inline char *tu_tmpdir(void)
{
    char *d = strdup("/tmp/fleetsim-test-XXXXXX");
    if (!mkdtemp(d)) {
        free(d);
        return NULL;
    }
    return d;
}

static inline void tu_write(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    if (f) {
        fputs(text, f);
        fclose(f);
    }
}

/* Reads a whole file; NULL if it cannot. The caller frees it. */
static inline char *tu_read(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *buf = malloc((size_t)n + 1);
    size_t got = fread(buf, 1, (size_t)n, f);
    buf[got] = '\0';
    fclose(f);
    return buf;
}

/* Runs a shell command line (formatted), stdout+stderr to `log` if given.
 * Returns the exit status, or -1 if it did not exit normally. */
static inline int tu_sh(const char *log, const char *fmt, ...)
{
    char cmd[8192];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(cmd, sizeof cmd, fmt, ap);
    va_end(ap);
    if (log && n > 0 && (size_t)n < sizeof cmd - 64)
        snprintf(cmd + n, sizeof cmd - (size_t)n, " >'%s' 2>&1", log);
    int st = system(cmd);
    if (st == -1 || !WIFEXITED(st))
        return -1;
    return WEXITSTATUS(st);
}

/* Writes `yaml` to a fresh directory DIR as DIR/s.yaml and runs it there
 * (`fleetsim run s.yaml --quiet --out DIR/out EXTRA`, output in DIR/log),
 * so relative export paths in EXTRA land in DIR. Returns DIR (tu_done it);
 * *rc is the exit status. */
static inline char *tu_run_yaml(const char *yaml, const char *extra, int *rc)
{
    char *dir = tu_tmpdir();
    char path[4096], log[4096], bin[4096];
    snprintf(path, sizeof path, "%s/s.yaml", dir);
    snprintf(log, sizeof log, "%s/log", dir);
    tu_write(path, yaml);
    char cwd[2048];
    if (tu_bin()[0] != '/' && getcwd(cwd, sizeof cwd))
        snprintf(bin, sizeof bin, "%s/%s", cwd, tu_bin());
    else
        snprintf(bin, sizeof bin, "%s", tu_bin());
    *rc = tu_sh(log, "cd '%s' && '%s' run '%s' --quiet --out '%s/out' %s", dir, bin, path, dir,
                extra ? extra : "");
    return dir;
}

/* DIR/log of a tu_run_yaml run, malloc'd; NULL if missing. */
static inline char *tu_log(const char *dir)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/log", dir);
    return tu_read(path);
}

/* Parsed summary.json of DIR; NULL if missing or invalid. */
static inline cJSON *tu_summary(const char *dir)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/summary.json", dir);
    char *text = tu_read(path);
    if (!text)
        return NULL;
    cJSON *j = cJSON_Parse(text);
    free(text);
    return j;
}

/* Number at a dotted path ("latency_s.p99"); NAN if absent. */
static inline double tu_num(const cJSON *j, const char *path)
{
    char buf[256];
    snprintf(buf, sizeof buf, "%s", path);
    const cJSON *cur = j;
    for (char *tok = strtok(buf, "."); tok && cur; tok = strtok(NULL, "."))
        cur = cJSON_GetObjectItemCaseSensitive(cur, tok);
    return cur && cJSON_IsNumber(cur) ? cur->valuedouble : (0.0 / 0.0);
}

/* One column of DIR/out/timeseries.csv (rows are intervals) into v, at
 * most max rows; the row count, or -1 without the file or the column. */
static inline int tu_ts_column(const char *dir, const char *name, double *v, int max)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/out/timeseries.csv", dir);
    char *text = tu_read(path);
    if (!text)
        return -1;
    char *save = NULL;
    char *line = strtok_r(text, "\n", &save);
    int col = -1, c = 0;
    for (char *p = line; p && *p; c++) {
        size_t len = strcspn(p, ",");
        if (len == strlen(name) && !strncmp(p, name, len))
            col = c;
        p += len;
        if (*p == ',')
            p++;
    }
    int n = 0;
    while (col >= 0 && n < max && (line = strtok_r(NULL, "\n", &save))) {
        char *p = line;
        for (int i = 0; i < col; i++)
            p = strchr(p, ',') + 1;
        v[n++] = strtod(p, NULL);
    }
    free(text);
    return col >= 0 ? n : -1;
}

/* The value of one series (as exported: name{labels in order}) at sim time
 * t_s in a --openmetrics file's text (timestamps from 1700000000 s, to the
 * millisecond); NAN when it has no sample then. */
static inline double tu_om_sample(const char *om, const char *series, int t_s)
{
    char head[512], stamp[32];
    snprintf(head, sizeof head, "\n%s ", series);
    snprintf(stamp, sizeof stamp, " %d.000", 1700000000 + t_s);
    size_t hl = strlen(head), sl = strlen(stamp);
    for (const char *p = strstr(om, head); p; p = strstr(p + 1, head)) {
        const char *v = p + hl, *end = strchr(v, '\n'), *sp = strchr(v, ' ');
        if (end && sp && (size_t)(end - sp) == sl && !strncmp(sp, stamp, sl))
            return strtod(v, NULL);
    }
    return 0.0 / 0.0;
}

static inline void tu_rm_rf(const char *dir)
{
    if (dir && !strncmp(dir, "/tmp/fleetsim-test-", 19))
        tu_sh(NULL, "rm -rf '%s'", dir);
}

/* Removes a directory from tu_tmpdir and frees its name. */
static inline void tu_done(char *dir)
{
    tu_rm_rf(dir);
    free(dir);
}

/* summary.json of a run written to DIR/out. */
static inline cJSON *tu_out_summary(const char *dir)
{
    char out[4096];
    snprintf(out, sizeof out, "%s/out", dir);
    return tu_summary(out);
}

/* completed + rejected + failed + timed out + in flight of a counts block
 * ("requests", "measured", "pools.gpu.requests"): equals its generated. */
static inline double tu_sum_buckets(const cJSON *j, const char *block)
{
    const char *keys[] = { "completed", "rejected", "failed", "timed_out", "in_flight_at_end" };
    double s = 0;
    char path[128];
    for (int i = 0; i < 5; i++) {
        snprintf(path, sizeof path, "%s.%s", block, keys[i]);
        s += tu_num(j, path);
    }
    return s;
}

/* Runs `yaml` (tu_run_yaml, with extra options or NULL): 1 if it exited 2
 * (bad input) with msg in its output, else 0 after printing what it got. */
static inline int tu_expect_error(const char *yaml, const char *extra, const char *msg)
{
    int rc = -1;
    char *dir = tu_run_yaml(yaml, extra, &rc);
    char *log = tu_log(dir);
    int ok = rc == 2 && log && strstr(log, msg);
    if (!ok)
        fprintf(stderr, "\n  expected exit 2 and: %s\n  got exit %d and: %s\n", msg, rc,
                log ? log : "(no output)");
    free(log);
    tu_done(dir);
    return ok;
}

#endif
