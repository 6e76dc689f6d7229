/*
 * hist.c - latency histogram on gsl_histogram with log-spaced bins.
 *
 * Bin edges are min * r^i with r = (max/min)^(1/n) <= 1 + 2*rel_err, so the
 * geometric midpoint of a bin is within rel_err of every value in it, and
 * the number of bins (hence the memory) depends only on min, max and
 * rel_err. sim_hist_add is on the simulator's hot path: it finds the bin
 * with one log() instead of gsl_histogram_increment's binary search.
 * Quantiles invert the cumulative distribution with gsl_histogram_pdf,
 * rebuilt (O(bins)) on the first quantile after a change and cached, so a
 * report asking for p50, p90, p99, p999 pays for it once. Not thread-safe:
 * the cache is written by the const quantile call.
 */
#include "hist.h"

#include <assert.h>
#include <gsl/gsl_errno.h>
#include <gsl/gsl_histogram.h>
#include <math.h>
#include <stdlib.h>

/* 2^20 bins: about 1e-4 relative error over 18 decades, 32 MB with the pdf.
 * Beyond that a caller has asked for something it did not mean. */
#define SIM_HIST_MAX_BINS ((size_t)1 << 20)

struct sim_hist {
    gsl_histogram *h;
    gsl_histogram_pdf *pdf;   /* cumulative distribution, for quantiles */
    int pdf_valid;            /* pdf matches h */
    double log_min;           /* log(h->range[0]) */
    double bins_per_log;      /* n / log(max/min) */
    size_t count;
    double sum;               /* exact samples, for the mean */
    double min, max;          /* exact; +inf and -inf when empty */
    size_t last_bin;          /* the bin of the last value added */
};

static size_t bins_for(double min, double max, double rel_err)
{
    double n = ceil(log(max / min) / log1p(2.0 * rel_err));

    if (!(n >= 1.0))
        return 1;
    if (n > (double)SIM_HIST_MAX_BINS)
        return 0;
    return (size_t)n;
}

sim_hist *sim_hist_new(double min, double max, double rel_err)
{
    sim_hist *s;
    double *range, log_span;
    size_t n;

    if (!isfinite(min) || !isfinite(max) || !isfinite(rel_err) ||
        !(min > 0.0) || !(max > min) || !(rel_err > 0.0))
        return NULL;
    n = bins_for(min, max, rel_err);
    if (n == 0)
        return NULL;
    s = calloc(1, sizeof *s);
    range = malloc((n + 1) * sizeof *range);
    if (!s || !range)
        goto fail;
    s->h = gsl_histogram_alloc(n);
    s->pdf = gsl_histogram_pdf_alloc(n);
    if (!s->h || !s->pdf)
        goto fail;

    log_span = log(max / min);
    range[0] = min;
    for (size_t i = 1; i < n; i++)
        range[i] = min * exp(log_span * (double)i / (double)n);
    range[n] = max;
    if (gsl_histogram_set_ranges(s->h, range, n + 1) != GSL_SUCCESS)
        goto fail;
    free(range);

    s->log_min = log(min);
    s->bins_per_log = (double)n / log_span;
    sim_hist_reset(s);
    return s;

fail:
    free(range);
    sim_hist_free(s);
    return NULL;
}

void sim_hist_free(sim_hist *s)
{
    if (!s)
        return;
    if (s->h)
        gsl_histogram_free(s->h);
    if (s->pdf)
        gsl_histogram_pdf_free(s->pdf);
    free(s);
}

void sim_hist_reset(sim_hist *s)
{
    gsl_histogram_reset(s->h);
    s->pdf_valid = 0;
    s->count = 0;
    s->sum = 0.0;
    s->min = INFINITY;
    s->max = -INFINITY;
}

/* The bin of x: [range[i], range[i+1]), the first bin for anything below the
 * range and the last for anything above. */
static size_t bin_of(const gsl_histogram *h, double log_min, double bins_per_log,
                     double x)
{
    const size_t n = h->n;
    size_t i;

    if (x < h->range[1])
        return 0;
    if (x >= h->range[n - 1])
        return n - 1;
    /* Here range[1] <= x < range[n-1], so the estimate is >= 0 and the
     * rounding of log() and of the stored edges moves it by one at most. */
    i = (size_t)((log(x) - log_min) * bins_per_log);
    if (i > n - 1)
        i = n - 1;
    while (i > 0 && x < h->range[i])
        i--;
    while (i < n - 1 && x >= h->range[i + 1])
        i++;
    return i;
}

/* bin_of, trying first the bin of the last value added: latencies in a
 * row (a horizon's steps) often fall in one bin. The same answer: bins do
 * not overlap, and the end bins take everything below and above. */
static size_t bin_near(sim_hist *s, double x)
{
    const gsl_histogram *h = s->h;
    size_t i = s->last_bin;

    if ((i == 0 || x >= h->range[i]) && (i == h->n - 1 || x < h->range[i + 1]))
        return i;
    i = bin_of(h, s->log_min, s->bins_per_log, x);
    s->last_bin = i;
    return i;
}

void sim_hist_add(sim_hist *s, double x)
{
    assert(!isnan(x));
    if (isnan(x))
        return;   /* would poison the mean; a latency is never NaN */
    s->h->bin[bin_near(s, x)] += 1.0;
    s->pdf_valid = 0;
    s->count++;
    s->sum += x;
    if (x < s->min)
        s->min = x;
    if (x > s->max)
        s->max = x;
}

void sim_hist_add_n(sim_hist *s, double x, size_t n)
{
    assert(!isnan(x));
    if (n == 0 || isnan(x))
        return;
    /* a bin holds an integer count below 2^53: one += n is n += 1.0 */
    s->h->bin[bin_near(s, x)] += (double)n;
    s->pdf_valid = 0;
    s->count += n;
    for (size_t k = 0; k < n; k++)
        s->sum += x;
    if (x < s->min)
        s->min = x;
    if (x > s->max)
        s->max = x;
}

void sim_hist_add_many(sim_hist *const *hs, int n, double x)
{
    assert(!isnan(x));
    if (n <= 0 || isnan(x))
        return;
    const sim_hist *first = hs[0];
    size_t i = bin_of(first->h, first->log_min, first->bins_per_log, x);
    for (int k = 0; k < n; k++) {
        sim_hist *s = hs[k];
        assert(s->h->n == first->h->n && s->log_min == first->log_min &&
               s->bins_per_log == first->bins_per_log);
        s->h->bin[i] += 1.0;
        s->pdf_valid = 0;
        s->count++;
        s->sum += x;
        if (x < s->min)
            s->min = x;
        if (x > s->max)
            s->max = x;
    }
}

int sim_hist_merge(sim_hist *dst, const sim_hist *src)
{
    if (!dst || !src || dst->h->n != src->h->n ||
        !gsl_histogram_equal_bins_p(dst->h, src->h))
        return -1;
    if (gsl_histogram_add(dst->h, src->h) != GSL_SUCCESS)
        return -1;
    dst->pdf_valid = 0;
    dst->count += src->count;
    dst->sum += src->sum;
    if (src->min < dst->min)
        dst->min = src->min;
    if (src->max > dst->max)
        dst->max = src->max;
    return 0;
}

size_t sim_hist_count(const sim_hist *s)
{
    return s->count;
}

double sim_hist_mean(const sim_hist *s)
{
    return s->count ? s->sum / (double)s->count : 0.0;
}

double sim_hist_min(const sim_hist *s)
{
    return s->count ? s->min : 0.0;
}

double sim_hist_max(const sim_hist *s)
{
    return s->count ? s->max : 0.0;
}

double sim_hist_quantile(const sim_hist *cs, double q)
{
    /* The pdf is a cache: filling it does not change what the histogram
     * holds. Every sim_hist comes from sim_hist_new, so none is defined
     * const and writing through this pointer is defined. */
    sim_hist *s = (sim_hist *)cs;
    gsl_histogram_pdf *pdf = s->pdf;
    double x;

    if (s->count == 0)
        return 0.0;
    if (!(q > 0.0))
        return s->min;   /* q <= 0 (or NaN) */
    if (q >= 1.0)
        return s->max;   /* gsl_histogram_pdf_sample would wrap 1 to 0 */
    if (!s->pdf_valid) {
        if (gsl_histogram_pdf_init(pdf, s->h) != GSL_SUCCESS)
            return s->max;   /* cannot happen: bins are >= 0 and not all 0 */
        s->pdf_valid = 1;
    }
    /* The cumulative sums may end a few ulps below 1; above the last one
     * gsl_histogram_pdf_sample would fail with GSL_EDOM. */
    if (q >= pdf->sum[pdf->n])
        return s->max;
    x = gsl_histogram_pdf_sample(pdf, q);
    /* Clamped and out-of-range samples sit in the end bins: bring what
     * interpolation gives back within what was actually seen. */
    if (x < s->min)
        x = s->min;
    if (x > s->max)
        x = s->max;
    return x;
}

size_t sim_hist_bins(const sim_hist *s)
{
    return s->h->n;
}

int sim_hist_bin(const sim_hist *s, size_t i, double *lo, double *hi, size_t *count)
{
    if (i >= s->h->n)
        return -1;
    if (lo)
        *lo = s->h->range[i];
    if (hi)
        *hi = s->h->range[i + 1];
    if (count)
        *count = (size_t)s->h->bin[i];
    return 0;
}
