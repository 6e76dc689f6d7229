/*
 * query.c - `fleetsim query RUN_DIR EXPR`: an ad-hoc PromQL question to a
 * finished run, without a recording rule and a re-run. The run wrote every
 * scraped and recorded sample to RUN_DIR/series.txt (`fleetsim run
 * --series`, mon_store_dump); this loads them into a store and evaluates
 * the expression as the run's Prometheus would have: an instant query at
 * --at (default: the last scrape), or a range query from --start to --end
 * by --step. Output as a table, CSV, or JSON shaped as Prometheus's HTTP
 * API answers /api/v1/query and /api/v1/query_range ("status", "data" with
 * "resultType" and "result"; sample values as strings, times as numbers),
 * times being the run's seconds.
 */
#include "cli.h"
#include "mon.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A time or step: seconds ("90", "1.5") or a Prometheus duration ("1m30s"). */
static int parse_time(const char *opt, const char *val, double *out)
{
    char *end;
    errno = 0;
    double v = strtod(val, &end);
    if (*val && !*end && !errno && isfinite(v)) {
        *out = v;
        return 0;
    }
    if (mon_parse_duration(val, out) == 0)
        return 0;
    fprintf(stderr, "fleetsim: %s: expected seconds or a duration (90, 1m30s), got \"%s\"\n", opt,
            val);
    return -1;
}

static void labels_json(cJSON *obj, const mon_labels *ls)
{
    cJSON *m = cJSON_AddObjectToObject(obj, "metric");
    for (int i = 0; i < ls->n; i++)
        cJSON_AddStringToObject(m, ls->v[i].name, ls->v[i].value);
}

/* [t, "v"] as the HTTP API writes a sample. */
static cJSON *point_json(double t_s, double v)
{
    char num[400];
    cJSON *a = cJSON_CreateArray();
    cJSON_AddItemToArray(a, cJSON_CreateNumber(t_s));
    cJSON_AddItemToArray(a, cJSON_CreateString(mon_fmt_f(v, num, sizeof num)));
    return a;
}

static void print_json(const mon_value *v, double t_s)
{
    static const char *const types[] = { "scalar", "vector", "matrix", "string" };
    cJSON *root = cJSON_CreateObject();
    cJSON_AddStringToObject(root, "status", "success");
    cJSON *data = cJSON_AddObjectToObject(root, "data");
    cJSON_AddStringToObject(data, "resultType", types[v->type]);
    cJSON *res = NULL;
    switch (v->type) {
    case MON_VAL_SCALAR:
        res = point_json(t_s, v->scalar);
        break;
    case MON_VAL_STRING:
        res = cJSON_CreateArray();
        cJSON_AddItemToArray(res, cJSON_CreateNumber(t_s));
        cJSON_AddItemToArray(res, cJSON_CreateString(v->str));
        break;
    case MON_VAL_VECTOR:
        res = cJSON_CreateArray();
        for (int i = 0; i < v->n; i++) {
            cJSON *s = cJSON_CreateObject();
            labels_json(s, &v->v[i].labels);
            cJSON_AddItemToObject(s, "value", point_json(t_s, v->v[i].v));
            cJSON_AddItemToArray(res, s);
        }
        break;
    case MON_VAL_MATRIX:
        res = cJSON_CreateArray();
        for (int i = 0; i < v->nm; i++) {
            cJSON *s = cJSON_CreateObject();
            labels_json(s, &v->m[i].labels);
            cJSON *vals = cJSON_AddArrayToObject(s, "values");
            for (int k = 0; k < v->m[i].n; k++)
                cJSON_AddItemToArray(vals, point_json((double)v->m[i].pts[k].t / 1000.0,
                                                      v->m[i].pts[k].v));
            cJSON_AddItemToArray(res, s);
        }
        break;
    }
    cJSON_AddItemToObject(data, "result", res);
    char *text = cJSON_PrintUnformatted(root);
    printf("%s\n", text);
    free(text);
    cJSON_Delete(root);
}

static void csv_field(const char *s)
{
    putchar('"');
    for (; *s; s++) {
        if (*s == '"')
            putchar('"');
        putchar(*s);
    }
    putchar('"');
}

static void print_rows(const mon_value *v, double t_s, int csv)
{
    char ls[4096], num[400];
    if (csv)
        printf("series,t,value\n");
    switch (v->type) {
    case MON_VAL_SCALAR:
    case MON_VAL_STRING: {
        const char *val = v->type == MON_VAL_STRING ? v->str : mon_fmt_f(v->scalar, num, sizeof num);
        if (csv) {
            printf("\"\",%g,", t_s);
            csv_field(val);
            putchar('\n');
        } else {
            printf("%s\n", val);
        }
        break;
    }
    case MON_VAL_VECTOR:
        for (int i = 0; i < v->n; i++) {
            mon_labels_str(&v->v[i].labels, ls, sizeof ls);
            mon_fmt_f(v->v[i].v, num, sizeof num);
            if (csv) {
                csv_field(ls);
                printf(",%g,%s\n", t_s, num);
            } else {
                printf("%s %s\n", *ls ? ls : "{}", num);
            }
        }
        break;
    case MON_VAL_MATRIX:
        for (int i = 0; i < v->nm; i++) {
            mon_labels_str(&v->m[i].labels, ls, sizeof ls);
            if (!csv)
                printf("%s\n", *ls ? ls : "{}");
            for (int k = 0; k < v->m[i].n; k++) {
                mon_fmt_f(v->m[i].pts[k].v, num, sizeof num);
                if (csv) {
                    csv_field(ls);
                    printf(",%g,%s\n", (double)v->m[i].pts[k].t / 1000.0, num);
                } else {
                    printf("  %g %s\n", (double)v->m[i].pts[k].t / 1000.0, num);
                }
            }
        }
        break;
    }
}

int cli_query(const cli_ctx *x)
{
    const char *dir = NULL, *expr = NULL, *format = "table";
    double at = NAN, start = NAN, end = NAN, step = NAN;
    for (int i = 1; i < x->argc; i++) {
        const char *s = x->argv[i];
        int timeopt = !strcmp(s, "--at") || !strcmp(s, "--start") || !strcmp(s, "--end") ||
                      !strcmp(s, "--step");
        if (timeopt || !strcmp(s, "--format")) {
            if (i + 1 >= x->argc) {
                fprintf(stderr, "fleetsim: %s needs a value\n", s);
                return CLI_EXIT_INPUT;
            }
            const char *val = x->argv[++i];
            double *dst = !strcmp(s, "--at") ? &at : !strcmp(s, "--start") ? &start
                          : !strcmp(s, "--end")  ? &end
                          : !strcmp(s, "--step") ? &step
                                                 : NULL;
            if (dst && parse_time(s, val, dst) != 0)
                return CLI_EXIT_INPUT;
            if (!dst)
                format = val;
        } else if (s[0] == '-' && s[1] && !(expr == NULL && dir != NULL)) {
            fprintf(stderr, "fleetsim: unknown option %s\n", s);
            return CLI_EXIT_INPUT;
        } else if (!dir) {
            dir = s;
        } else if (!expr) {
            expr = s;
        } else {
            fprintf(stderr, "fleetsim: unexpected argument %s\n", s);
            return CLI_EXIT_INPUT;
        }
    }
    if (!dir || !expr) {
        fprintf(stderr, "fleetsim: usage: fleetsim query RUN_DIR EXPR [--at T | --start T --end T "
                        "--step S] [--format table|json|csv]\n");
        return CLI_EXIT_INPUT;
    }
    int json = !strcmp(format, "json"), csv = !strcmp(format, "csv");
    if (!json && !csv && strcmp(format, "table")) {
        fprintf(stderr, "fleetsim: --format: expected table, json or csv, got \"%s\"\n", format);
        return CLI_EXIT_INPUT;
    }
    int range = !isnan(start) || !isnan(end) || !isnan(step);
    if (range && (!isnan(at) || isnan(start) || isnan(end) || isnan(step))) {
        fprintf(stderr, "fleetsim: a range query needs --start, --end and --step, and no --at\n");
        return CLI_EXIT_INPUT;
    }
    if (range && (step <= 0 || end < start)) {
        fprintf(stderr, "fleetsim: a range query needs --end >= --start and --step > 0\n");
        return CLI_EXIT_INPUT;
    }
    if (range && (end - start) / step > 11000) { /* Prometheus's own limit */
        fprintf(stderr, "fleetsim: exceeded maximum resolution of 11,000 points per timeseries. "
                        "Try decreasing the query resolution (--step)\n");
        return CLI_EXIT_INPUT;
    }
    char path[4200];
    snprintf(path, sizeof path, "%s/series.txt", dir);
    FILE *f = fopen(path, "r");
    if (!f) {
        fprintf(stderr, "fleetsim: cannot read %s: %s (a run writes it with `fleetsim run "
                        "--series`)\n", path, strerror(errno));
        return CLI_EXIT_INPUT;
    }
    mon_store *st = mon_store_create(INFINITY);
    mon_error err;
    int rc = mon_store_load(st, f, &err);
    fclose(f);
    if (rc) {
        fprintf(stderr, "fleetsim: %s:%s\n", path, err.msg + 4); /* "line N: ..." -> path:N: */
        mon_store_destroy(st);
        return CLI_EXIT_INPUT;
    }
    if (!range && isnan(at))
        at = isnan(mon_store_newest_s(st)) ? 0 : mon_store_newest_s(st);
    mon_value v;
    mon_expr *e = mon_expr_parse(expr, &err);
    rc = e ? (range ? mon_expr_eval_range(e, st, start, end, step, &v, &err)
                    : mon_expr_eval(e, st, at, &v, &err))
           : -1;
    if (rc) {
        if (json) {
            cJSON *root = cJSON_CreateObject();
            cJSON_AddStringToObject(root, "status", "error");
            cJSON_AddStringToObject(root, "errorType", e ? "execution" : "bad_data");
            cJSON_AddStringToObject(root, "error", err.msg);
            char *text = cJSON_PrintUnformatted(root);
            printf("%s\n", text);
            free(text);
            cJSON_Delete(root);
        }
        fprintf(stderr, "fleetsim: %s\n", err.msg);
        mon_expr_free(e);
        mon_store_destroy(st);
        return CLI_EXIT_INPUT;
    }
    if (json)
        print_json(&v, at);
    else
        print_rows(&v, at, csv);
    mon_value_free(&v);
    mon_expr_free(e);
    mon_store_destroy(st);
    return ferror(stdout) ? CLI_EXIT_IO : CLI_EXIT_OK;
}
