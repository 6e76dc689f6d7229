/*
 * mon.h - monitoring and alerting: the Prometheus data model, a PromQL
 * subset, rule files with Prometheus's alert state machine, Alertmanager
 * routing and inhibition, SLO burn-rate rule generation, and writers for
 * `promtool test rules` files and OpenMetrics.
 *
 * The library never sees SimGrid: the engine feeds samples at its scrape
 * times, calls mon_rules_eval() at evaluation times and mon_am_advance() at
 * Alertmanager flush times (monitoring/README.md has the contract). Time is
 * double seconds of simulated time at the API; inside, timestamps are int64
 * milliseconds as in Prometheus, so range boundaries compare exactly.
 *
 * Semantics follow Prometheus 2.42 (the version Debian 12 ships, against
 * whose promtool the tests check us) and Alertmanager's dispatch code; the
 * source file is cited where a rule is subtle.
 */
#ifndef FLEETSIM_MON_H
#define FLEETSIM_MON_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/* ---- errors -------------------------------------------------------------- */

/* Every failing call fills one of these: "file:line:col: message" or, for an
 * expression, "col N: message" (1-based). */
typedef struct {
    char msg[512];
} mon_error;

/* ---- labels ---------------------------------------------------------------- */

typedef struct {
    char *name;
    char *value;
} mon_label;

/* A label set, sorted by name, names unique, no empty values. The metric
 * name is the label "__name__". */
typedef struct {
    int n;
    mon_label *v;
} mon_labels;

/* Parses `name{a="x",b="y"}` (either part optional); 0 on success. */
int mon_labels_parse(const char *text, mon_labels *out, mon_error *err);
/* Sets (value != NULL and non-empty) or removes a label; copies both. */
void mon_labels_set(mon_labels *ls, const char *name, const char *value);
const char *mon_labels_get(const mon_labels *ls, const char *name);
void mon_labels_copy(mon_labels *dst, const mon_labels *src);
void mon_labels_free(mon_labels *ls);
int mon_labels_cmp(const mon_labels *a, const mon_labels *b);
/* `name{a="x", b="y"}` as Prometheus prints a series; returns buf. */
char *mon_labels_str(const mon_labels *ls, char *buf, size_t len);

/* strconv.FormatFloat(v, 'f', -1, 64): shortest digits, never an
 * exponent ("NaN", "+Inf", "-Inf"): count_values' label, the HTTP API's
 * sample values. */
char *mon_fmt_f(double v, char *buf, size_t len);
/* Go's fmt %v of a float64 (what `{{ $value }}` prints): shortest digits
 * that read back exactly, exponent form below 1e-4 and from 1e+06. */
char *mon_fmt_go(double v, char *buf, size_t len);

/* ---- time-series store ------------------------------------------------------ */

typedef struct mon_store mon_store;
typedef struct mon_series mon_series;

/* Prometheus's default lookback delta: an instant selector sees a sample
 * at most this old (promql/engine.go defaultLookbackDelta). */
#define MON_LOOKBACK_S 300.0

/* retention_s: samples older than (newest sample in the store - retention)
 * are dropped; INFINITY keeps everything (needed by the exporters). */
mon_store *mon_store_create(double retention_s);
void mon_store_set_retention(mon_store *s, double retention_s);
double mon_store_retention(const mon_store *s);
void mon_store_destroy(mon_store *s);

/* The series with exactly these labels, created on first use. The handle
 * stays valid until the store is destroyed (trimming empties a series but
 * never frees it). */
mon_series *mon_store_series(mon_store *s, const mon_labels *ls);
mon_series *mon_store_series_text(mon_store *s, const char *text, mon_error *err);
/* Appends one sample; samples must come in time order per series (a sample
 * at or before the last one is refused, -1). */
int mon_series_append(mon_series *se, double t_s, double v);
/* Convenience: parse text, find or create the series, append. */
int mon_store_add(mon_store *s, const char *series_text, double t_s, double v);
/* Prometheus's staleness marker: append it when a target disappears (a
 * failed scrape) so instant selectors stop seeing the series at once. */
double mon_stale_nan(void);
int mon_is_stale(double v);
/* Drops samples older than the retention window for every series. */
void mon_store_trim(mon_store *s);
size_t mon_store_n_series(const mon_store *s);
size_t mon_store_n_samples(const mon_store *s);
const mon_labels *mon_series_labels(const mon_series *se);
/* Every sample of every series as text, one line each: the series as
 * Prometheus prints it, the time in ms and the value ("stale" for a
 * staleness marker); mon_store_load reads it back exactly. 0 on success. */
int mon_store_dump(const mon_store *s, FILE *f);
/* 0, or -1 with err "line N: ...". */
int mon_store_load(mon_store *s, FILE *f, mon_error *err);
/* One scrape as an exporter's /metrics shows it, in the Prometheus text
 * format (HELP, TYPE, each series' newest live sample at or before t, no
 * timestamps): what `promtool check metrics` reads. 0 on success. */
int mon_write_scrape(const mon_store *s, FILE *f, double t_s);
/* The time of the newest sample, NAN when the store is empty. */
double mon_store_newest_s(const mon_store *s);

/* A metric family's type and HELP text, for the OpenMetrics export; a
 * family not described is written as "unknown". A gauge family `x` holds
 * the series named x, a counter family x_total, a histogram family
 * x_bucket, x_sum and x_count (the OpenMetrics naming rules). Describing a
 * family again replaces its description; help may be NULL. */
typedef enum {
    MON_METRIC_UNKNOWN = 0,
    MON_METRIC_GAUGE,
    MON_METRIC_COUNTER,
    MON_METRIC_HISTOGRAM,
} mon_metric_type;
void mon_store_describe(mon_store *s, const char *family, mon_metric_type type, const char *help);

/* ---- PromQL ------------------------------------------------------------------- */

typedef struct mon_expr mon_expr;

typedef struct {
    mon_labels labels;
    double v;
} mon_sample;

typedef enum { MON_VAL_SCALAR, MON_VAL_VECTOR, MON_VAL_MATRIX, MON_VAL_STRING } mon_val_type;

/* One sample of a series: time in milliseconds, value. */
typedef struct {
    int64_t t;
    double v;
} mon_point;

/* A series over a range: a range selector's or a subquery's result, or one
 * series of a range query. */
typedef struct {
    mon_labels labels;
    mon_point *pts;
    int n;
} mon_rseries;

typedef struct {
    mon_val_type type;
    double scalar;       /* MON_VAL_SCALAR */
    int n;               /* MON_VAL_VECTOR: n samples */
    mon_sample *v;
    int nm;              /* MON_VAL_MATRIX: nm series */
    mon_rseries *m;
    char *str;           /* MON_VAL_STRING */
} mon_value;

/* NULL on a syntax error or a construct outside the subset (err names it,
 * with the column). */
mon_expr *mon_expr_parse(const char *text, mon_error *err);
void mon_expr_free(mon_expr *e);
/* How far back the expression reads: the largest (range or lookback) +
 * offset over its selectors, in seconds. */
double mon_expr_lookback_s(const mon_expr *e);
/* Instant query at t_s; 0 on success. The result must be released with
 * mon_value_free. A vector is in no particular order beyond being stable. */
int mon_expr_eval(const mon_expr *e, const mon_store *s, double t_s, mon_value *out,
                  mon_error *err);
/* Range query (the HTTP API's query_range): the expression at start_s,
 * start_s + step_s, ... up to end_s; *out is a matrix, one series per
 * label set, a scalar expression as one series with no labels. */
int mon_expr_eval_range(const mon_expr *e, const mon_store *s, double start_s, double end_s,
                        double step_s, mon_value *out, mon_error *err);
void mon_value_free(mon_value *v);
/* A PromQL number literal as Prometheus reads it (parser.go number():
 * strconv.ParseInt base 0, so "010" is 8 and "0x1f" 31, else
 * strconv.ParseFloat); 0, or -1 with *why. */
int mon_go_number(const char *text, double *out, const char **why);
/* One-shot parse + eval. */
int mon_query(const char *text, const mon_store *s, double t_s, mon_value *out, mon_error *err);

/* Prometheus durations: 1h30m, 5m, 250ms, 2d, 1w, 1y (units in that order).
 * 0 on success; -1 when malformed, -2 when out of range (above Go's
 * time.Duration, about 292 years, as Prometheus refuses it). */
int mon_parse_duration(const char *text, double *out_s);

/* ---- rules and alerts ---------------------------------------------------------- */

typedef struct mon_rules mon_rules;

typedef enum {
    MON_ALERT_INACTIVE = 0,
    MON_ALERT_PENDING,
    MON_ALERT_FIRING,
} mon_alert_state;

/* One change of state of one alert instance (rule + label set). */
typedef struct {
    double t_s;                 /* evaluation time */
    const char *alertname;      /* owned by the rules */
    const char *severity;       /* label "severity" or "" */
    mon_labels labels;          /* alert labels incl. alertname */
    mon_labels annotations;     /* expanded at t_s */
    mon_alert_state from, to;   /* to == INACTIVE after FIRING: resolved;
                                   after PENDING: the condition cleared */
    double value;               /* the expression's value at t_s (NAN if gone) */
    double pending_at, firing_at, resolved_at;   /* NAN where not reached */
} mon_transition;

/* One activation of one alert instance, for summary.json. */
typedef struct {
    const char *alertname;
    const char *severity;
    mon_labels labels;
    double pending_at;          /* when the condition first held */
    double firing_at;           /* NAN if it never fired */
    double resolved_at;         /* NAN if still active at the end */
} mon_alert_record;

/* Loads a Prometheus rule file (groups, interval, rules). Errors are
 * "file:line:col: message"; NULL on any error. default_interval_s is the
 * global evaluation_interval for groups without their own. */
/* Every metric name a rule selects exactly ({__name__="x"} or x{...}),
 * with the rule's file:line:col and name, in file order; a name may come
 * more than once. */
void mon_rules_each_selected(const mon_rules *r,
                             void (*fn)(void *arg, const char *where, const char *rule,
                                        const char *metric),
                             void *arg);
/* 1 if a recording rule of r writes this metric name. */
int mon_rules_records(const mon_rules *r, const char *metric);
mon_rules *mon_rules_load(const char *path, double default_interval_s, mon_error *err);
mon_rules *mon_rules_load_string(const char *text, const char *name,
                                 double default_interval_s, mon_error *err);
void mon_rules_free(mon_rules *r);
/* How much history the rules need: give this to mon_store_set_retention. */
double mon_rules_retention_s(const mon_rules *r);
/* Time of the next due group evaluation (groups start at t = 0 and repeat
 * at their interval). */
double mon_rules_next_eval(const mon_rules *r);
/* Evaluates every group due at or before t_s, in file order, each rule
 * seeing the rules before it (recording rules write their series into the
 * store). Returns the number of new transitions (see mon_rules_transitions),
 * or -1 if t_s is before an evaluation already done. Rule errors at run
 * time do not stop the evaluation (as in Prometheus): see
 * mon_rules_last_error. */
int mon_rules_eval(mon_rules *r, mon_store *s, double t_s);
/* Every transition since loading, in order; the engine keeps its own
 * cursor. */
const mon_transition *mon_rules_transitions(const mon_rules *r, size_t *n);
/* Every alert activation (pending or further) since loading. */
const mon_alert_record *mon_rules_alerts(const mon_rules *r, size_t *n);
const char *mon_rules_last_error(const mon_rules *r);
/* Names of alerting rules, in file order (for the promtool writer). */
int mon_rules_n_alerting(const mon_rules *r);
const char *mon_rules_alerting_name(const mon_rules *r, int i);
/* Turns on the per-evaluation log of firing alerts that
 * mon_promtool_write() needs; off by default (it grows with the run). */
void mon_rules_keep_firing_log(mon_rules *r, int on);
/* The group interval shared by all groups, or -1 if they differ. */
double mon_rules_common_interval(const mon_rules *r);

/* Expands an alert template: Go's text/template (actions, pipelines,
 * if/else/range/with, variables, printf and the other built-ins) with
 * Prometheus's functions (humanize*, toUpper, match, ...) over $labels and
 * $value (template.c lists what is in); an error as Go words it. Returns a
 * new string. */
char *mon_template_expand(const char *text, const mon_labels *ls, double value,
                          mon_error *err);
/* Parses a template without running it (what Prometheus checks when a
 * rule file loads); 0, or -1 with err. */
int mon_template_check(const char *text, mon_error *err);

/* ---- Alertmanager ------------------------------------------------------------- */

typedef struct mon_am mon_am;

typedef struct {
    mon_labels labels;
    int resolved;
    double starts_at, ends_at;   /* ends_at NAN while firing */
} mon_am_alert;

typedef struct {
    double t_s;
    const char *receiver;        /* owned by the config */
    const char *integration;     /* "email", "slack", "webhook", ... */
    int integration_index;       /* which one of that kind in the receiver */
    char *group_key;             /* route path + group labels */
    mon_labels group_labels;
    int n_alerts;                /* firing first, then resolved */
    mon_am_alert *alerts;
    int n_firing;
} mon_notification;

/* Reads alertmanager.yml (route, receivers, inhibit_rules; other top-level
 * keys are accepted and ignored). */
mon_am *mon_am_load(const char *path, mon_error *err);
mon_am *mon_am_load_string(const char *text, const char *name, mon_error *err);
void mon_am_free(mon_am *am);
/* Hands over what Prometheus would send at an evaluation at t_s: alerts
 * that are firing, and alerts that resolved since the last call. */
void mon_am_sync(mon_am *am, const mon_rules *r, double t_s);
/* The same for one alert (tests, or alerts from elsewhere). ends_at NAN:
 * firing. */
void mon_am_put(mon_am *am, const mon_labels *ls, double starts_at, double ends_at, double t_s);
/* Runs every aggregation-group flush due at or before t_s; returns the
 * number of notifications sent. */
int mon_am_advance(mon_am *am, double t_s);
/* Next flush time; INFINITY if no group is waiting. */
double mon_am_next_flush(const mon_am *am);
const mon_notification *mon_am_notifications(const mon_am *am, size_t *n);
/* The receivers an alert with these labels routes to, comma-separated. */
char *mon_am_receivers_for(const mon_am *am, const mon_labels *ls, char *buf, size_t len);

/* ---- SLO burn-rate rules ------------------------------------------------------ */

typedef struct {
    const char *name;            /* e.g. "availability" */
    double objective;            /* e.g. 0.9999 */
    const char *errors;          /* selector of the bad events' counter, or NULL */
    const char *good;            /* or: selector of the good events' counter (exactly one
                                    of errors and good) */
    const char *total;           /* selector of all events' counter */
    const char *by;              /* labels to keep, e.g. "pool" ("" = none) */
    const char *what;            /* what the ratio is, for the description
                                    ("Share of requests slower than 1s"); NULL: "Error ratio" */
} mon_slo;

/* Writes a deployable rule file: recording rules for the error ratio over
 * 5m, 30m, 1h, 6h, 3d (rate(errors) / rate(total), or 1 - rate(good) /
 * rate(total), each summed by `by`), and the SRE workbook's multi-window
 * multi-burn-rate alerts (14.4x 1h/5m and 6x 6h/30m page; 1x 3d/6h
 * ticket). 0 on success. */
int mon_slo_write_rules(FILE *f, const mon_slo *slos, int n, mon_error *err);

/* ---- exporters ---------------------------------------------------------------- */

/* OpenMetrics text of every sample of every series, grouped by metric
 * family (typed as mon_store_describe says, else "unknown"), timestamps
 * shifted by epoch_s (seconds since 1970 of sim t = 0). Stale markers are
 * skipped. Ends with "# EOF". 0 on success. */
int mon_write_openmetrics(const mon_store *s, FILE *f, double epoch_s);

/* An expression to check at one time in a promtool file (promql_expr_test),
 * with the value fleetsim computes. */
typedef struct {
    const char *expr;
    double t_s;
} mon_promtool_expr;

/* Writes a `promtool test rules` file: input series from the store (not
 * the rules' own output) on a grid of interval_s starting at 0, and at each
 * logged evaluation time one alert_rule_test per alerting rule listing the
 * alerts fleetsim says are firing (mon_rules_keep_firing_log must have been
 * on). rule_file is written as given (relative to the test file). Every
 * sample must lie on the grid. 0 on success. */
int mon_promtool_write(FILE *f, const mon_store *s, const mon_rules *r, const char *rule_file,
                       double interval_s, const mon_promtool_expr *exprs, int n_exprs,
                       mon_error *err);

#endif
