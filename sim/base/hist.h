/*
 * hist.h - latency distribution in bounded memory with bounded relative error.
 *
 * A GSL histogram whose bin edges are log-spaced between min and max, so the
 * memory is fixed whatever the number of samples and every quantile inside
 * [min, max] is within rel_err of the exact sample quantile's bin. Quantiles
 * come from gsl_histogram_pdf (inverse CDF, linear within a bin). Values below
 * min or above max are clamped into the first or last bin and counted; the
 * exact minimum, maximum and mean are kept on the side.
 */
#ifndef FLEETSIM_HIST_H
#define FLEETSIM_HIST_H

#include <stddef.h>

typedef struct sim_hist sim_hist;

/* rel_err: e.g. 0.01 for quantiles within 1%. NULL on bad arguments. */
sim_hist *sim_hist_new(double min, double max, double rel_err);
void sim_hist_free(sim_hist *h);
void sim_hist_add(sim_hist *h, double x);
/* Adds x n times: what n calls of sim_hist_add(h, x) do (the mean's sum
 * is still added to n times, in order, so it is the same to the last bit),
 * with one bin lookup. */
void sim_hist_add_n(sim_hist *h, double x, size_t n);
/* Adds x to n histograms of one shape (same min, max, rel_err), finding its
 * bin once: the engine's completion path feeds three. */
void sim_hist_add_many(sim_hist *const *hs, int n, double x);
void sim_hist_reset(sim_hist *h);
/* Adds every sample of src into dst (same shape required); 0 on success. */
int sim_hist_merge(sim_hist *dst, const sim_hist *src);
size_t sim_hist_count(const sim_hist *h);
double sim_hist_mean(const sim_hist *h);   /* exact; 0 when empty */
double sim_hist_min(const sim_hist *h);    /* exact; 0 when empty */
double sim_hist_max(const sim_hist *h);    /* exact; 0 when empty */
/* q in [0,1]; 0 when empty. */
double sim_hist_quantile(const sim_hist *h, double q);
/* Number of bins: ceil(log(max/min) / log(1 + 2*rel_err)), fixed at creation. */
size_t sim_hist_bins(const sim_hist *h);
/* Bin i covers [*lo, *hi) and holds *count samples; -1 if i is out of range. */
int sim_hist_bin(const sim_hist *h, size_t i, double *lo, double *hi, size_t *count);

#endif
