/*
 * mon_internal.h - what the monitoring files share and nobody else sees:
 * the PromQL syntax tree, label matchers, a string-keyed hash map, growable
 * arrays, the store's raw sample access and the YAML helpers.
 */
#ifndef FLEETSIM_MON_INTERNAL_H
#define FLEETSIM_MON_INTERNAL_H

#include "mon.h"

#include "mon_re.h"

#include <stdarg.h>
#include <stdint.h>

#define MON_NAME "__name__"

void mon_errf(mon_error *err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
char *mon_strdup(const char *s);
void *mon_xrealloc(void *p, size_t n);
/* Grows *arr (element size sz) so index `need` fits; cap doubles. */
void mon_grow(void **arr, size_t sz, size_t *cap, size_t need);

static inline int64_t mon_ms(double t_s)
{
    double m = t_s * 1000.0;
    return (int64_t)(m < 0 ? m - 0.5 : m + 0.5);
}

/* ---- labels ---- */

/* Appends without keeping order (then mon_labels_sort). */
void mon_labels_push(mon_labels *ls, const char *name, const char *value);
void mon_labels_sort(mon_labels *ls);
/* Key of a label set for hashing: "n\xffv\xff..." over all labels, or over
 * the names given (on=1) or all but them and __name__ (on=0). */
char *mon_labels_key(const mon_labels *ls);
char *mon_labels_sig(const mon_labels *ls, int on, char *const *names, int n_names);
void mon_labels_keep(mon_labels *ls, char *const *names, int n);
void mon_labels_del(mon_labels *ls, const char *name);
int mon_valid_label_name(const char *s);
int mon_valid_metric_name(const char *s);

/* ---- matchers ---- */

typedef enum { MON_M_EQ, MON_M_NEQ, MON_M_RE, MON_M_NRE } mon_match_type;

typedef struct {
    char *name;
    char *value;
    mon_match_type type;
    mon_re *re;       /* for RE/NRE: RE2, ^(?:value)$ */
} mon_matcher;

/* 0 on success; a bad regex fills err. */
int mon_matcher_init(mon_matcher *m, const char *name, mon_match_type t, const char *value,
                     mon_error *err);
void mon_matcher_free(mon_matcher *m);
int mon_matcher_matches(const mon_matcher *m, const char *value);
/* All matchers hold for the label set (a missing label reads ""). */
int mon_matchers_match(const mon_matcher *ms, int n, const mon_labels *ls);
/* Parses one Alertmanager-style matcher `name=~"value"` (value quoted or
 * not). */
int mon_matcher_parse(mon_matcher *m, const char *text, mon_error *err);

/* ---- hash map: string -> pointer ---- */

typedef struct {
    char **keys;
    void **vals;
    size_t cap, n;
} mon_map;

void *mon_map_get(const mon_map *m, const char *key);
/* Copies the key; replaces an existing value. */
void mon_map_put(mon_map *m, const char *key, void *val);
void mon_map_free(mon_map *m);

/* ---- store access for the evaluator ---- */

struct mon_series {
    mon_labels labels;
    mon_point *pts;
    size_t start, end, cap;   /* live points are pts[start..end) */
    int derived;              /* written by a recording rule or ALERTS */
    size_t index;
    struct mon_store *store;
};

/* A described metric family (mon_store_describe). */
typedef struct {
    char *name;
    mon_metric_type type;
    char *help;               /* NULL: no HELP line */
} mon_family;

struct mon_store {
    mon_series **series;
    size_t n, cap;
    mon_map by_key;
    double retention_s;
    int64_t newest_ms;
    int sorted;               /* series[] sorted by labels */
    mon_family *families;
    size_t n_families;
};

/* The described family a sample name belongs to, or NULL. */
const mon_family *mon_store_family(const mon_store *s, const char *name);

/* Every series matching the matchers, in label order. *out is malloc'd. */
size_t mon_store_select(const mon_store *s, const mon_matcher *ms, int n, mon_series ***out);

/* ---- PromQL syntax tree ---- */

typedef enum {
    MON_T_SCALAR,
    MON_T_VECTOR,
    MON_T_MATRIX,
    MON_T_STRING,
} mon_type;

typedef enum {
    MON_N_NUM,
    MON_N_STR,      /* string literal: str */
    MON_N_SEL,      /* instant vector selector */
    MON_N_MATRIX,   /* range vector selector: sel + range */
    MON_N_SUBQ,     /* subquery: lhs[range_ms:step_ms] offset/@ */
    MON_N_CALL,
    MON_N_AGG,
    MON_N_BIN,
    MON_N_NEG,
    MON_N_PAREN,
} mon_node_kind;

typedef enum {
    /* lowest precedence first */
    MON_OP_OR, MON_OP_AND, MON_OP_UNLESS,
    MON_OP_EQ, MON_OP_NE, MON_OP_GT, MON_OP_LT, MON_OP_GE, MON_OP_LE,
    MON_OP_ADD, MON_OP_SUB, MON_OP_MUL, MON_OP_DIV, MON_OP_MOD, MON_OP_ATAN2, MON_OP_POW,
} mon_binop;

typedef enum {
    MON_AGG_SUM, MON_AGG_AVG, MON_AGG_MIN, MON_AGG_MAX, MON_AGG_COUNT, MON_AGG_GROUP,
    MON_AGG_STDDEV, MON_AGG_STDVAR, MON_AGG_TOPK, MON_AGG_BOTTOMK, MON_AGG_QUANTILE,
    MON_AGG_COUNT_VALUES,
} mon_aggop;

typedef enum { MON_CARD_ONE_TO_ONE, MON_CARD_MANY_TO_ONE, MON_CARD_ONE_TO_MANY,
               MON_CARD_MANY_TO_MANY } mon_card;

/* The @ modifier: none, a timestamp, start() or end() of the query. */
typedef enum { MON_AT_NONE, MON_AT_TS, MON_AT_START, MON_AT_END } mon_at;

struct mon_func;

typedef struct mon_node {
    mon_node_kind kind;
    int pos;                      /* byte offset in the text */
    double num;                   /* NUM */
    char *str;                    /* STR */
    /* SEL / MATRIX / SUBQ */
    char *metric;                 /* may be NULL */
    mon_matcher *matchers;        /* includes __name__ if metric given */
    int n_matchers;
    int64_t range_ms, offset_ms;  /* offset may be negative */
    int64_t step_ms;              /* SUBQ: 0 = the default interval */
    mon_at at;                    /* SEL and SUBQ (a MATRIX's is on its sel) */
    int64_t at_ms;
    struct mon_node *sel;         /* MATRIX: the SEL node */
    /* CALL */
    const struct mon_func *fn;
    struct mon_node **args;
    int n_args;
    /* AGG */
    mon_aggop agg;
    int without;
    char **grouping;
    int n_grouping;
    struct mon_node *param;       /* topk, bottomk, quantile, count_values */
    /* BIN / NEG / PAREN / AGG / SUBQ operand */
    mon_binop op;
    struct mon_node *lhs, *rhs;
    int return_bool;
    mon_card card;
    int on;                       /* on(...) given; else ignoring(...) or nothing */
    char **match_labels;
    int n_match;
    char **include;               /* group_left/right(...) labels */
    int n_include;
} mon_node;

typedef enum {
    MON_F_RATE, MON_F_IRATE, MON_F_INCREASE, MON_F_DELTA, MON_F_IDELTA,
    MON_F_AVG_OT, MON_F_MAX_OT, MON_F_MIN_OT, MON_F_SUM_OT, MON_F_COUNT_OT,
    MON_F_LAST_OT, MON_F_PRESENT_OT, MON_F_ABSENT_OT, MON_F_QUANTILE_OT, MON_F_STDDEV_OT,
    MON_F_STDVAR_OT, MON_F_CHANGES, MON_F_RESETS, MON_F_DERIV, MON_F_PREDICT_LINEAR,
    MON_F_HOLT_WINTERS,
    MON_F_HQUANTILE, MON_F_SCALAR, MON_F_VECTOR, MON_F_ABSENT, MON_F_TIME, MON_F_PI,
    MON_F_TIMESTAMP, MON_F_SORT, MON_F_SORT_DESC, MON_F_LABEL_REPLACE, MON_F_LABEL_JOIN,
    MON_F_CLAMP, MON_F_CLAMP_MIN, MON_F_CLAMP_MAX, MON_F_ROUND,
    /* one float in, one out (simple_fn) */
    MON_F_ABS, MON_F_CEIL, MON_F_FLOOR, MON_F_EXP, MON_F_SQRT, MON_F_LN, MON_F_LOG2,
    MON_F_LOG10, MON_F_SIN, MON_F_COS, MON_F_TAN, MON_F_ASIN, MON_F_ACOS, MON_F_ATAN,
    MON_F_SINH, MON_F_COSH, MON_F_TANH, MON_F_ASINH, MON_F_ACOSH, MON_F_ATANH, MON_F_RAD,
    MON_F_DEG, MON_F_SGN,
    /* time of day, of an optional vector of Unix times */
    MON_F_DAYS_IN_MONTH, MON_F_DAY_OF_MONTH, MON_F_DAY_OF_WEEK, MON_F_DAY_OF_YEAR,
    MON_F_HOUR, MON_F_MINUTE, MON_F_MONTH, MON_F_YEAR,
} mon_func_id;

typedef struct mon_func {
    const char *name;
    mon_func_id id;
    int n_args;                   /* len(ArgTypes) in parser/functions.go */
    mon_type arg_types[5];
    int variadic;                 /* 0; n: up to n more; -1: any number more */
    mon_type ret;
} mon_func;

struct mon_expr {
    mon_node *root;
    char *text;
    int64_t default_step_ms;      /* a subquery's step when it gives none; 0: 1m */
};

mon_type mon_node_type(const mon_node *n);

/* Go's strconv.ParseFloat (promql_parse.c); 0, or -1 with *why. */
int mon_go_float(const char *text, double *out, const char **why);
/* Go's math.Pow, step for step (promql_eval.c). */
double mon_go_pow(double x, double y);

/* ---- float formatting ---- */

/* Shortest decimal that reads back to v, in C %g style ("NaN", "+Inf",
 * "-Inf" for the specials): for YAML and OpenMetrics. */
char *mon_fmt_num(double v, char *buf, size_t len);

/* ---- YAML (mon_yaml.c) ---- */

#include <yaml.h>

typedef struct {
    yaml_document_t doc;
    const char *file;
    mon_error *err;
    int failed;
} mon_yaml;

/* Parses text; 0 on success, else err is "file:line:col: message". */
int mon_yaml_open(mon_yaml *y, const char *text, const char *file, mon_error *err);
void mon_yaml_close(mon_yaml *y);
yaml_node_t *mon_yaml_root(mon_yaml *y);
yaml_node_t *mon_yaml_node(mon_yaml *y, int id);
/* First error wins; "file:line:col: " of node n is prefixed. */
void mon_yaml_err(mon_yaml *y, const yaml_node_t *n, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* A scalar's text (NUL-terminated by libyaml), or NULL with an error. */
const char *mon_yaml_str(mon_yaml *y, const yaml_node_t *n, const char *what);
int mon_yaml_is_null(const yaml_node_t *n);
/* Checks a mapping's keys against valid (NULL-terminated); 0 if all known. */
int mon_yaml_check_keys(mon_yaml *y, const yaml_node_t *map, const char *what,
                        const char *const *valid);
/* Value of key in a mapping, or NULL. */
yaml_node_t *mon_yaml_get(mon_yaml *y, const yaml_node_t *map, const char *key);
int mon_yaml_duration(mon_yaml *y, const yaml_node_t *n, const char *what, double *out_s);
/* Reads a whole file; NULL with err set. */
char *mon_read_file(const char *path, mon_error *err);

#endif
