/*
 * svg.h - a small chart module: growable text buffers with XML escaping, and
 * time-series charts drawn as inline SVG (lines, stacked areas, ranges,
 * horizontal reference lines, vertical bands and markers, heatmaps and
 * timelines). Every chart of a page takes the same rp_axis, so the same time
 * falls on the same x pixel in all of them. No JavaScript; hover text comes
 * from SVG <title> elements, which browsers show natively.
 *
 * Series longer than the plot is wide are reduced per pixel column to the
 * first, minimum, maximum and last point of the column, so a one-interval
 * spike in a day-long run is still drawn at its height.
 */
#ifndef FLEETSIM_SVG_H
#define FLEETSIM_SVG_H

#include <stdarg.h>
#include <stddef.h>

typedef struct {
    char *s;
    size_t len, cap;
} rp_buf;

void rp_buf_add(rp_buf *b, const char *s, size_t n);
void rp_buf_puts(rp_buf *b, const char *s);
void rp_buf_printf(rp_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Appends s with & < > " ' escaped (safe in text and in quoted attributes);
 * NULL appends nothing. */
void rp_buf_esc(rp_buf *b, const char *s);
void rp_buf_free(rp_buf *b);

/* The time axis shared by the charts of one page: elapsed time since the
 * start of the run, or, with a clock, the wall-clock time it stands for. */
typedef struct {
    double t0_s, t1_s;
    int width_px;              /* whole SVG width */
    int left_px, right_px;     /* plot margins, equal on every chart */
    int clock;                 /* label with wall-clock times (rp_axis_set_clock) */
    double clock0_s;           /* t = 0 in seconds since 1970-01-01 UTC */
    int utc_offset_s;          /* the zone the clock times are shown in */
} rp_axis;

rp_axis rp_axis_make(double t0_s, double t1_s);
void rp_axis_set_clock(rp_axis *ax, double clock0_s, int utc_offset_s);

typedef enum {
    RP_UNIT_NUM,               /* plain numbers, k/M suffixes */
    RP_UNIT_S,                 /* seconds, labelled in ms or s */
    RP_UNIT_FRAC               /* 0..1, labelled as percent */
} rp_unit;

typedef struct rp_chart rp_chart;

/* A chart of height_px with y from ymin to ymax (ymax > ymin). title goes
 * into the SVG's aria-label; the y unit labels the ticks. */
rp_chart *rp_chart_new(const rp_axis *ax, int height_px, double ymin, double ymax, rp_unit unit,
                       const char *title);
/* Pixel coordinates of a time and a value (for tests and annotations). */
double rp_chart_x(const rp_chart *c, double t_s);
double rp_chart_y(const rp_chart *c, double v);

/* A line through (t[i], y[i]); NAN values break the line. id becomes the
 * path's data-series attribute. */
void rp_chart_line(rp_chart *c, const char *id, const char *label, const char *color,
                   const double *t, const double *y, size_t n, int dashed);
/* A filled range between lo[i] and hi[i]. */
void rp_chart_range(rp_chart *c, const char *id, const char *label, const char *color,
                    const double *t, const double *lo, const double *hi, size_t n);
/* k series stacked as filled areas, first at the bottom. */
void rp_chart_stack(rp_chart *c, const char *id, int k, const char *const *labels,
                    const char *const *colors, const double *t, const double *const *y,
                    size_t n);
/* A horizontal reference line (an SLO, a target); one above the chart's
 * top is named at its top right and in the legend instead. */
void rp_chart_hline(rp_chart *c, double y, const char *label, const char *color);
/* A shaded time span across the plot (a fault while active). */
void rp_chart_band(rp_chart *c, double t0_s, double t1_s, const char *color, const char *label);
/* A vertical line at t with hover text (a fault start, a notification). */
void rp_chart_marker(rp_chart *c, double t_s, const char *color, const char *label);
/* Writes the chart as one <svg> element and frees it. */
void rp_chart_end(rp_chart *c, rp_buf *out);

/* Nice upper bound for an axis holding values up to v (1, 2, 2.5, 5 x 10^k). */
double rp_nice_ceil(double v);

/* A heatmap: one row per label, values 0..1 (NAN: absent), columns at times
 * t[0..n-1] each interval_s long. Rows are drawn in the order given. */
void rp_heatmap(rp_buf *out, const rp_axis *ax, const char *title, int n_rows,
                const char *const *row_labels, const double *const *rows, const double *t,
                size_t n, double interval_s);

/* Timeline rows (alerts): spans with a colour and hover text. */
typedef struct {
    int row;
    double t0_s, t1_s;         /* t1 < t0 or NAN: a point (drawn as a tick) */
    const char *color;
    const char *label;
} rp_span;
void rp_timeline(rp_buf *out, const rp_axis *ax, const char *title, int n_rows,
                 const char *const *row_labels, const rp_span *spans, size_t n_spans);

/* A short visible label for a marker at t_s, at the top of the plot on
 * row 0 or 1; left out where it would overlap the one before it on its
 * row (the marker's hover text still names it). */
void rp_chart_tag(rp_chart *c, double t_s, int row, const char *text, const char *color);

/* Time labels that cannot be misread: "45s" on an axis spanning at most
 * 3 minutes, else elapsed time as rp_fmt_elapsed writes it. */
void rp_fmt_time(char *buf, size_t n, double t_s, double span_s);
/* Elapsed time, always with its hours: "0:10:45" (645 s), "12:00:00",
 * "2d 3:00:00"; a dash for NAN. */
void rp_fmt_elapsed(char *buf, size_t n, double t_s);
/* The wall-clock time of t_s in a run started at clock0_s (seconds since
 * 1970 UTC), in the zone utc_offset_s: "08:10:45", with with_date
 * "2026-03-02 08:10:45"; with rfc3339 "2026-03-02T08:10:45+01:00". */
void rp_fmt_clock(char *buf, size_t n, double t_s, double clock0_s, int utc_offset_s,
                  int with_date, int rfc3339);
/* "UTC", "UTC+01:00", "UTC-05:30". */
void rp_fmt_zone(char *buf, size_t n, int utc_offset_s);

#endif
