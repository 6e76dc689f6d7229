/*
 * compare.h - comparing variants of a scenario over several seeds.
 *
 * One run of one variant is a record (a cJSON object; one line of a sweep's
 * .jsonl file): the variant's index and label, the scenario and overrides,
 * the seed, the run's summary.json and a compact copy of its time series.
 * `fleetsim compare` runs the variants and feeds the records to an
 * rp_compare; `fleetsim sweep` writes them as JSON lines and `fleetsim
 * merge` reads them back, so a grid split over machines gives the same
 * report as one run on one machine.
 *
 * Every metric is summarised by its mean and a 95% Student-t confidence
 * interval over the seeds; a variant is marked best for a metric only where
 * its interval does not overlap any other variant's. Runs with LLM pools
 * add their metrics (TTFT, TPOT and E2E p99, goodput, output tokens per
 * second, cost per million output tokens, GPUs) and their SLO targets.
 */
#ifndef FLEETSIM_COMPARE_H
#define FLEETSIM_COMPARE_H

#include <cjson/cJSON.h>
#include <stdio.h>

typedef struct {
    int n;
    double mean, sd;
    double half;               /* t(0.975, n-1) * sd / sqrt(n); NAN when n < 2 */
    double lo, hi;             /* mean -/+ half */
} rp_ci;

/* Mean and 95% t-interval of x[0..n-1] (NAN values skipped). */
void rp_ci95(const double *x, int n, rp_ci *out);

/* 1 when a's interval lies wholly on the better side of b's
 * (better > 0: higher is better). False when either is undefined. */
int rp_ci_better(const rp_ci *a, const rp_ci *b, int better);

/* A record from a finished run's directory (summary.json and
 * timeseries.csv); NULL with a message on err if they cannot be read. */
cJSON *rp_run_record(const char *run_dir, int variant, const char *label, const char *scenario,
                     const char *const *sets, int n_sets, unsigned long seed, FILE *err);

typedef struct rp_compare rp_compare;

rp_compare *rp_compare_new(void);
void rp_compare_free(rp_compare *c);
/* Adds a copy of the record; -1 (message on err) if it lacks a field or
 * repeats a (variant, seed) already added. */
int rp_compare_add(rp_compare *c, const cJSON *record, FILE *err);
/* Adds every line of a .jsonl file; -1 on the first bad line. */
int rp_compare_load_jsonl(rp_compare *c, const char *path, FILE *err);
int rp_compare_n_variants(const rp_compare *c);
/* The label of the variant that meets its scenario's SLO at the lowest mean
 * GPU-hours (compare.md's SLO column explains "meets"; between equal
 * GPU-hours, the lower cost per million output tokens of LLM pools wins),
 * or NULL when none does or no SLO is set. Borrowed from c. */
const char *rp_compare_slo_choice(const rp_compare *c);

/* Writes compare.json, compare.md and compare.html into dir. reference is
 * optional: published figures to set beside the simulated ones (format in
 * reports/README.md). 0 on success, -1 with a message on err. */
int rp_compare_write(const rp_compare *c, const char *dir, const cJSON *reference, FILE *err);

#endif
