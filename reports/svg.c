/*
 * svg.c - text buffers and the SVG chart module (see svg.h).
 *
 * Every chart is one <svg> element whose plot area is the <rect
 * class="plot">; the element carries data-t0, data-t1, data-ymin and
 * data-ymax, so a reader (or a test) can map any drawn coordinate back to a
 * time and a value. Coordinates are printed with 0.1 px resolution.
 */
#include "svg.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* ---------- buffers ---------- */

void rp_buf_add(rp_buf *b, const char *s, size_t n)
{
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->len + n + 1)
            cap *= 2;
        b->s = realloc(b->s, cap);
        b->cap = cap;
    }
    memcpy(b->s + b->len, s, n);
    b->len += n;
    b->s[b->len] = '\0';
}

void rp_buf_puts(rp_buf *b, const char *s)
{
    if (s)
        rp_buf_add(b, s, strlen(s));
}

void rp_buf_printf(rp_buf *b, const char *fmt, ...)
{
    char small[512];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(small, sizeof small, fmt, ap);
    va_end(ap);
    if (n < 0)
        return;
    if ((size_t)n < sizeof small) {
        rp_buf_add(b, small, (size_t)n);
        return;
    }
    char *big = malloc((size_t)n + 1);
    va_start(ap, fmt);
    vsnprintf(big, (size_t)n + 1, fmt, ap);
    va_end(ap);
    rp_buf_add(b, big, (size_t)n);
    free(big);
}

void rp_buf_esc(rp_buf *b, const char *s)
{
    if (!s)
        return;
    const char *run = s;
    for (const char *p = s; *p; p++) {
        const char *rep = NULL;
        switch (*p) {
        case '&': rep = "&amp;"; break;
        case '<': rep = "&lt;"; break;
        case '>': rep = "&gt;"; break;
        case '"': rep = "&quot;"; break;
        case '\'': rep = "&#39;"; break;
        default:
            /* control characters other than tab and newline are not allowed in XML */
            if ((unsigned char)*p < 0x20 && *p != '\t' && *p != '\n' && *p != '\r')
                rep = " ";
        }
        if (rep) {
            rp_buf_add(b, run, (size_t)(p - run));
            rp_buf_puts(b, rep);
            run = p + 1;
        }
    }
    rp_buf_puts(b, run);
}

void rp_buf_free(rp_buf *b)
{
    free(b->s);
    memset(b, 0, sizeof *b);
}

/* ---------- axes and labels ---------- */

#define FONT "font-family=\"system-ui,-apple-system,'Segoe UI',Roboto,'DejaVu Sans',sans-serif\""
#define TOP_PX 8
#define TICKS_PX 18     /* time labels under the plot */
#define LEGEND_ROW_PX 16
#define LABEL_CHARS 14  /* row labels longer than this are cut */

rp_axis rp_axis_make(double t0_s, double t1_s)
{
    if (!(t1_s > t0_s))
        t1_s = t0_s + 1;
    return (rp_axis){ .t0_s = t0_s, .t1_s = t1_s, .width_px = 1160, .left_px = 92,
                      .right_px = 20 };
}

static int plot_w(const rp_axis *ax)
{
    return ax->width_px - ax->left_px - ax->right_px;
}

static double ax_x(const rp_axis *ax, double t)
{
    return ax->left_px + (t - ax->t0_s) / (ax->t1_s - ax->t0_s) * plot_w(ax);
}

void rp_axis_set_clock(rp_axis *ax, double clock0_s, int utc_offset_s)
{
    ax->clock = 1;
    ax->clock0_s = clock0_s;
    ax->utc_offset_s = utc_offset_s;
}

void rp_fmt_elapsed(char *buf, size_t n, double t_s)
{
    if (isnan(t_s)) {
        snprintf(buf, n, "\xE2\x80\x93");
        return;
    }
    double r = floor(t_s + 0.5);
    long t = (long)r;
    const char *sign = t < 0 ? "-" : "";
    if (t < 0)
        t = -t;
    long d = t / 86400, h = t / 3600 % 24, m = t / 60 % 60, s = t % 60;
    if (d > 0)
        snprintf(buf, n, "%s%ldd %ld:%02ld:%02ld", sign, d, h, m, s);
    else
        snprintf(buf, n, "%s%ld:%02ld:%02ld", sign, h, m, s);
}

void rp_fmt_time(char *buf, size_t n, double t_s, double span_s)
{
    if (span_s <= 180)
        snprintf(buf, n, "%lds", lround(t_s));
    else
        rp_fmt_elapsed(buf, n, t_s);
}

void rp_fmt_zone(char *buf, size_t n, int utc_offset_s)
{
    int a = abs(utc_offset_s);
    if (utc_offset_s == 0)
        snprintf(buf, n, "UTC");
    else
        snprintf(buf, n, "UTC%c%02d:%02d", utc_offset_s < 0 ? '-' : '+', a / 3600, a / 60 % 60);
}

void rp_fmt_clock(char *buf, size_t n, double t_s, double clock0_s, int utc_offset_s,
                  int with_date, int rfc3339)
{
    if (isnan(t_s)) {
        snprintf(buf, n, "\xE2\x80\x93");
        return;
    }
    time_t local = (time_t)floor(clock0_s + t_s + 0.5) + utc_offset_s;
    struct tm tm;
    if (gmtime_r(&local, &tm) == NULL) {
        snprintf(buf, n, "?");
        return;
    }
    if (rfc3339) {
        int a = abs(utc_offset_s);
        char zone[16];
        if (utc_offset_s == 0)
            snprintf(zone, sizeof zone, "Z");
        else
            snprintf(zone, sizeof zone, "%c%02d:%02d", utc_offset_s < 0 ? '-' : '+', a / 3600,
                     a / 60 % 60);
        snprintf(buf, n, "%04d-%02d-%02dT%02d:%02d:%02d%s", tm.tm_year + 1900, tm.tm_mon + 1,
                 tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, zone);
    } else if (with_date) {
        snprintf(buf, n, "%04d-%02d-%02d %02d:%02d:%02d", tm.tm_year + 1900, tm.tm_mon + 1,
                 tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec);
    } else {
        snprintf(buf, n, "%02d:%02d:%02d", tm.tm_hour, tm.tm_min, tm.tm_sec);
    }
}

static double time_step(double span)
{
    static const double steps[] = { 1,    2,    5,    10,   15,    30,    60,    120,  300,
                                    600,  900,  1800, 3600, 7200,  10800, 21600, 43200, 86400,
                                    172800, 604800 };
    for (size_t i = 0; i < sizeof steps / sizeof steps[0]; i++)
        if (span / steps[i] <= 12)
            return steps[i];
    return rp_nice_ceil(span / 12);
}

double rp_nice_ceil(double v)
{
    if (!(v > 0) || !isfinite(v))
        return 1;
    double mag = pow(10, floor(log10(v)));
    static const double m[] = { 1, 2, 2.5, 5, 10 };
    for (size_t i = 0; i < sizeof m / sizeof m[0]; i++)
        if (m[i] * mag >= v * (1 - 1e-12))
            return m[i] * mag;
    return 10 * mag;
}

static void fmt_value(char *buf, size_t n, double v, rp_unit unit, double ymax)
{
    switch (unit) {
    case RP_UNIT_S:
        if (ymax < 1)
            snprintf(buf, n, "%g ms", v * 1e3);
        else
            snprintf(buf, n, "%g s", v);
        break;
    case RP_UNIT_FRAC:
        snprintf(buf, n, "%g%%", v * 100);
        break;
    default:
        if (fabs(v) >= 1e6)
            snprintf(buf, n, "%gM", v / 1e6);
        else if (fabs(v) >= 1e4)
            snprintf(buf, n, "%gk", v / 1e3);
        else
            snprintf(buf, n, "%g", v);
    }
}

/* A label cut to LABEL_CHARS characters (UTF-8 aware), then escaped. */
static void esc_short(rp_buf *b, const char *s, size_t max_chars)
{
    if (!s)
        return;
    size_t chars = 0, i = 0;
    for (; s[i]; i++) {
        if (((unsigned char)s[i] & 0xC0) != 0x80) {
            if (chars == max_chars)
                break;
            chars++;
        }
    }
    if (!s[i]) {
        rp_buf_esc(b, s);
        return;
    }
    char *cut = strndup(s, i > 0 ? i - 1 : 0);
    /* drop a partial multibyte sequence left at the end */
    size_t k = strlen(cut);
    while (k > 0 && ((unsigned char)cut[k - 1] & 0xC0) == 0x80)
        k--;
    if (k > 0 && ((unsigned char)cut[k - 1] & 0x80))
        k--;
    cut[k] = '\0';
    rp_buf_esc(b, cut);
    rp_buf_puts(b, "\xE2\x80\xA6"); /* ellipsis */
    free(cut);
}

/* The time ticks, grid and labels of a plot area at y0..y1. */
static void time_grid(rp_buf *o, const rp_axis *ax, double y0, double y1)
{
    double span = ax->t1_s - ax->t0_s, step = time_step(span);
    rp_buf_printf(o, "<g class=\"tgrid\" stroke=\"#e3e6ea\" stroke-width=\"1\">");
    for (double t = ceil(ax->t0_s / step - 1e-9) * step; t <= ax->t1_s + 1e-9; t += step)
        rp_buf_printf(o, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\"/>", ax_x(ax, t), y0,
                      ax_x(ax, t), y1);
    rp_buf_printf(o, "</g><g class=\"tlabels\" font-size=\"11\" fill=\"#5f6b7a\" "
                     "text-anchor=\"middle\">");
    /* a run over a day long: clock ticks carry their date (shown as MM-DD) */
    int dated = ax->clock && span > 86400;
    for (double t = ceil(ax->t0_s / step - 1e-9) * step; t <= ax->t1_s + 1e-9; t += step) {
        char lab[40], full[40];
        if (ax->clock) {
            rp_fmt_clock(full, sizeof full, t, ax->clock0_s, ax->utc_offset_s, dated, 0);
            if (dated) /* "2026-03-02 08:00:00" -> "03-02 08:00" */
                snprintf(lab, sizeof lab, "%.5s %.5s", full + 5, full + 11);
            else
                snprintf(lab, sizeof lab, "%s", full);
        } else {
            rp_fmt_time(lab, sizeof lab, t, span);
        }
        rp_buf_printf(o, "<text x=\"%.1f\" y=\"%.1f\" data-t=\"%.6g\">%s</text>", ax_x(ax, t),
                      y1 + 13, t, lab);
    }
    rp_buf_puts(o, "</g>");
    /* the axis's unit, in the left margin under the value labels */
    char unit[32], what[96];
    if (ax->clock) {
        rp_fmt_zone(unit, sizeof unit, ax->utc_offset_s);
        snprintf(what, sizeof what, "wall-clock time (%s)%s", unit,
                 dated ? ", month-day hours:minutes" : ", hours:minutes:seconds");
    } else if (span <= 180) {
        snprintf(unit, sizeof unit, "elapsed s");
        snprintf(what, sizeof what, "seconds since the start of the run");
    } else {
        snprintf(unit, sizeof unit, "h:mm:ss");
        snprintf(what, sizeof what, "time since the start of the run, hours:minutes:seconds"
                 "%s", span > 86400 ? " (days as Nd)" : "");
    }
    rp_buf_printf(o, "<text class=\"tunit\" x=\"4\" y=\"%.1f\" font-size=\"10\" "
                     "fill=\"#5f6b7a\"><title>%s</title>%s</text>",
                  y1 + 13, what, unit);
}

/* ---------- line charts ---------- */

typedef struct {
    int kind;                  /* 0 line, 1 area, 2 dashed line, 3 band */
    char *label;
    char *color;
} legend_item;

struct rp_chart {
    rp_axis ax;
    int height_px;             /* plot height */
    double ymin, ymax;
    rp_unit unit;
    char *title;
    rp_buf back, body, front;
    legend_item *legend;
    int n_legend;
    double tag_end_px[2];      /* right end of the last tag on each tag row */
};

rp_chart *rp_chart_new(const rp_axis *ax, int height_px, double ymin, double ymax, rp_unit unit,
                       const char *title)
{
    rp_chart *c = calloc(1, sizeof *c);
    c->ax = *ax;
    c->height_px = height_px > 20 ? height_px : 20;
    c->ymin = ymin;
    c->ymax = ymax > ymin ? ymax : ymin + 1;
    c->unit = unit;
    c->title = strdup(title ? title : "");
    return c;
}

double rp_chart_x(const rp_chart *c, double t_s)
{
    return ax_x(&c->ax, t_s);
}

double rp_chart_y(const rp_chart *c, double v)
{
    return TOP_PX + c->height_px - (v - c->ymin) / (c->ymax - c->ymin) * c->height_px;
}

/* y clamped to a pixel just outside the plot, so off-scale values show as
 * pinned to the edge instead of leaving the chart. */
static double cy(const rp_chart *c, double v)
{
    double y = rp_chart_y(c, v);
    if (y < TOP_PX - 1)
        y = TOP_PX - 1;
    if (y > TOP_PX + c->height_px + 1)
        y = TOP_PX + c->height_px + 1;
    return y;
}

static void add_legend(rp_chart *c, int kind, const char *label, const char *color)
{
    if (!label || !*label)
        return;
    c->legend = realloc(c->legend, sizeof *c->legend * (size_t)(c->n_legend + 1));
    c->legend[c->n_legend++] = (legend_item){ kind, strdup(label), strdup(color) };
}

static void attr_color(rp_buf *b, const char *name, const char *color)
{
    rp_buf_printf(b, " %s=\"", name);
    rp_buf_esc(b, color);
    rp_buf_puts(b, "\"");
}

/* The index range [*a, *z) of points on the plot, plus one neighbour on
 * each side so lines run to the edge. t ascending. */
static void visible(const rp_chart *c, const double *t, size_t n, size_t *a, size_t *z)
{
    size_t i = 0;
    while (i < n && t[i] < c->ax.t0_s)
        i++;
    *a = i > 0 ? i - 1 : 0;
    while (i < n && t[i] <= c->ax.t1_s)
        i++;
    *z = i < n ? i + 1 : n;
}

/* Indices of the points to draw: all of them, or per pixel column the
 * first, min, max and last (in time order). NAN points are kept as breaks. */
static size_t reduce(const rp_chart *c, const double *t, const double *y, size_t n, size_t *idx)
{
    int w = plot_w(&c->ax);
    if (n <= (size_t)(2 * w)) {
        for (size_t i = 0; i < n; i++)
            idx[i] = i;
        return n;
    }
    size_t m = 0, i = 0;
    while (i < n) {
        if (isnan(y[i])) {
            idx[m++] = i++;
            continue;
        }
        long col = (long)floor(rp_chart_x(c, t[i]));
        size_t first = i, lo = i, hi = i, last = i;
        while (i < n && !isnan(y[i]) && (long)floor(rp_chart_x(c, t[i])) == col) {
            if (y[i] < y[lo])
                lo = i;
            if (y[i] > y[hi])
                hi = i;
            last = i++;
        }
        size_t pick[4] = { first, lo < hi ? lo : hi, lo < hi ? hi : lo, last };
        for (int k = 0; k < 4; k++)
            if (m == 0 || idx[m - 1] != pick[k])
                idx[m++] = pick[k];
    }
    return m;
}

void rp_chart_line(rp_chart *c, const char *id, const char *label, const char *color,
                   const double *t, const double *y, size_t n, int dashed)
{
    size_t a, z;
    visible(c, t, n, &a, &z);
    t += a;
    y += a;
    n = z - a;
    size_t *idx = malloc(sizeof *idx * (n ? n : 1));
    size_t m = reduce(c, t, y, n, idx);
    /* interior points of horizontal runs add nothing */
    size_t kept = 0;
    for (size_t k = 0; k < m; k++) {
        if (k > 0 && k + 1 < m && y[idx[k]] == y[idx[kept - 1]] && y[idx[k]] == y[idx[k + 1]])
            continue;
        idx[kept++] = idx[k];
    }
    m = kept;
    rp_buf *b = &c->body;
    rp_buf_puts(b, "<path fill=\"none\" stroke-width=\"1.6\" stroke-linejoin=\"round\"");
    attr_color(b, "stroke", color);
    if (dashed)
        rp_buf_puts(b, " stroke-dasharray=\"5 3\"");
    rp_buf_puts(b, " data-series=\"");
    rp_buf_esc(b, id);
    rp_buf_puts(b, "\" d=\"");
    int pen = 0;
    for (size_t k = 0; k < m; k++) {
        size_t i = idx[k];
        if (isnan(y[i]) || isnan(t[i])) {
            pen = 0;
            continue;
        }
        rp_buf_printf(b, "%s%.1f %.1f", pen ? " L" : (b->s[b->len - 1] == '"' ? "M" : " M"),
                      rp_chart_x(c, t[i]), cy(c, y[i]));
        pen = 1;
    }
    rp_buf_puts(b, "\"><title>");
    rp_buf_esc(b, label);
    rp_buf_puts(b, "</title></path>\n");
    add_legend(c, dashed ? 2 : 0, label, color);
    free(idx);
}

/* Per pixel column means of y (NAN ignored), for filled shapes; returns the
 * number of columns, or 0 when the series is short enough to draw as is. */
static size_t bucket(const rp_chart *c, const double *t, const double *y, size_t n, double *bt,
                     double *by)
{
    int w = plot_w(&c->ax);
    if (n <= (size_t)(2 * w))
        return 0;
    size_t m = 0, i = 0;
    while (i < n) {
        long col = (long)floor(rp_chart_x(c, t[i]));
        double st = 0, sy = 0;
        int k = 0, ky = 0;
        while (i < n && (long)floor(rp_chart_x(c, t[i])) == col) {
            st += t[i];
            if (!isnan(y[i])) {
                sy += y[i];
                ky++;
            }
            k++;
            i++;
        }
        bt[m] = st / k;
        by[m] = ky ? sy / ky : NAN;
        m++;
    }
    return m;
}

static void fill_between(rp_chart *c, const char *id, const char *color, double opacity,
                         const double *t, const double *lo, const double *hi, size_t n)
{
    rp_buf *b = &c->body;
    rp_buf_printf(b, "<path stroke=\"none\" fill-opacity=\"%.2f\"", opacity);
    attr_color(b, "fill", color);
    rp_buf_puts(b, " data-series=\"");
    rp_buf_esc(b, id);
    rp_buf_puts(b, "\" d=\"");
    /* one closed shape per run of defined points of non-zero thickness,
     * with the zero-thickness neighbour on each side */
#define THICK(j) (!isnan(lo[j]) && !isnan(hi[j]) && hi[j] != lo[j])
#define DEF(j) (!isnan(lo[j]) && !isnan(hi[j]))
#define KEEP(j) (DEF(j) && (THICK(j) || ((j) > 0 && THICK((j) - 1)) || ((j) + 1 < n && THICK((j) + 1))))
    size_t i = 0;
    while (i < n) {
        while (i < n && !KEEP(i))
            i++;
        size_t s = i;
        while (i < n && KEEP(i))
            i++;
        if (i == s)
            continue;
        for (size_t k = s; k < i; k++)
            rp_buf_printf(b, "%s%.1f %.1f ", k == s ? "M" : "L", rp_chart_x(c, t[k]), cy(c, hi[k]));
        for (size_t k = i; k-- > s;)
            rp_buf_printf(b, "L%.1f %.1f ", rp_chart_x(c, t[k]), cy(c, lo[k]));
        rp_buf_puts(b, "Z ");
    }
#undef THICK
#undef DEF
#undef KEEP
    rp_buf_puts(b, "\"/>\n");
}

void rp_chart_range(rp_chart *c, const char *id, const char *label, const char *color,
                    const double *t, const double *lo, const double *hi, size_t n)
{
    size_t a, z;
    visible(c, t, n, &a, &z);
    t += a;
    lo += a;
    hi += a;
    n = z - a;
    double *bt = malloc(sizeof *bt * (n ? n : 1)), *bl = malloc(sizeof *bl * (n ? n : 1)),
           *bh = malloc(sizeof *bh * (n ? n : 1));
    size_t m = bucket(c, t, lo, n, bt, bl);
    if (m) {
        bucket(c, t, hi, n, bt, bh);
        fill_between(c, id, color, 0.22, bt, bl, bh, m);
    } else {
        fill_between(c, id, color, 0.22, t, lo, hi, n);
    }
    add_legend(c, 3, label, color);
    free(bt);
    free(bl);
    free(bh);
}

void rp_chart_stack(rp_chart *c, const char *id, int k, const char *const *labels,
                    const char *const *colors, const double *t, const double *const *y,
                    size_t n)
{
    size_t a, z;
    visible(c, t, n, &a, &z);
    t += a;
    n = z - a;
    size_t cap = n ? n : 1;
    double *bt = malloc(sizeof *bt * cap), *tmp = malloc(sizeof *tmp * cap);
    double *lo = calloc(cap, sizeof *lo), *hi = malloc(sizeof *hi * cap);
    size_t m = bucket(c, t, y[0] + a, n, bt, tmp);
    const double *tt = m ? bt : t;
    size_t nn = m ? m : n;
    for (int j = 0; j < k; j++) {
        const double *v = y[j] + a;
        if (m) {
            bucket(c, t, y[j] + a, n, bt, tmp);
            v = tmp;
        }
        for (size_t i = 0; i < nn; i++)
            hi[i] = lo[i] + (isnan(v[i]) ? 0 : v[i]);
        char sid[128];
        snprintf(sid, sizeof sid, "%s.%d", id, j);
        fill_between(c, sid, colors[j], 0.85, tt, lo, hi, nn);
        add_legend(c, 1, labels[j], colors[j]);
        memcpy(lo, hi, sizeof *lo * nn);
    }
    free(bt);
    free(tmp);
    free(lo);
    free(hi);
}

void rp_chart_hline(rp_chart *c, double y, const char *label, const char *color)
{
    if (y > c->ymax) { /* off the scale: said at the top right, and in the legend */
        char *above = malloc(strlen(label) + 32);
        if (!above)
            return;
        sprintf(above, "%s \xE2\x86\x91 above the chart", label);
        rp_buf_printf(&c->front, "<text class=\"above\" x=\"%d\" y=\"%d\" font-size=\"10\" "
                                 "text-anchor=\"end\"",
                      c->ax.width_px - c->ax.right_px - 4, TOP_PX + 10);
        attr_color(&c->front, "fill", color);
        rp_buf_puts(&c->front, ">");
        rp_buf_esc(&c->front, above);
        rp_buf_puts(&c->front, "</text>\n");
        add_legend(c, 2, above, color);
        free(above);
        return;
    }
    if (y < c->ymin)
        return;
    rp_buf *b = &c->front;
    rp_buf_printf(b, "<line x1=\"%d\" x2=\"%d\" y1=\"%.1f\" y2=\"%.1f\" stroke-width=\"1.4\" "
                     "stroke-dasharray=\"6 4\"",
                  c->ax.left_px, c->ax.width_px - c->ax.right_px, rp_chart_y(c, y),
                  rp_chart_y(c, y));
    attr_color(b, "stroke", color);
    rp_buf_puts(b, "><title>");
    rp_buf_esc(b, label);
    rp_buf_puts(b, "</title></line>\n");
    add_legend(c, 2, label, color);
}

void rp_chart_band(rp_chart *c, double t0_s, double t1_s, const char *color, const char *label)
{
    double a = fmax(t0_s, c->ax.t0_s), z = fmin(isnan(t1_s) ? c->ax.t1_s : t1_s, c->ax.t1_s);
    if (z < a)
        return;
    double x0 = rp_chart_x(c, a), x1 = fmax(rp_chart_x(c, z), x0 + 1);
    rp_buf *b = &c->back;
    rp_buf_printf(b, "<rect x=\"%.1f\" y=\"%d\" width=\"%.1f\" height=\"%d\" fill-opacity=\"0.16\"",
                  x0, TOP_PX, x1 - x0, c->height_px);
    attr_color(b, "fill", color);
    rp_buf_puts(b, "><title>");
    rp_buf_esc(b, label);
    rp_buf_puts(b, "</title></rect>\n");
}

void rp_chart_marker(rp_chart *c, double t_s, const char *color, const char *label)
{
    if (t_s < c->ax.t0_s || t_s > c->ax.t1_s)
        return;
    double x = rp_chart_x(c, t_s);
    rp_buf *b = &c->front;
    rp_buf_printf(b, "<g class=\"marker\"><line x1=\"%.1f\" x2=\"%.1f\" y1=\"%d\" y2=\"%d\" "
                     "stroke-width=\"1.5\"",
                  x, x, TOP_PX, TOP_PX + c->height_px);
    attr_color(b, "stroke", color);
    rp_buf_printf(b, "/><path d=\"M%.1f %d l-4 -6 h8 z\"", x, TOP_PX);
    attr_color(b, "fill", color);
    rp_buf_puts(b, "/><title>");
    rp_buf_esc(b, label);
    rp_buf_puts(b, "</title></g>\n");
}

void rp_chart_tag(rp_chart *c, double t_s, int row, const char *text, const char *color)
{
    if (t_s < c->ax.t0_s || t_s > c->ax.t1_s || row < 0 || row > 1 || !text)
        return;
    double x = rp_chart_x(c, t_s), w = 5.6 * (double)strlen(text) + 4;
    double right = c->ax.width_px - c->ax.right_px;
    int end = x + 3 + w > right; /* no room to the right: the text ends at the marker */
    double x0 = end ? x - 3 - w : x + 3;
    if (x0 < c->tag_end_px[row] || x0 < c->ax.left_px) /* it would overlap the last one */
        return;
    c->tag_end_px[row] = x0 + w + 4;
    rp_buf *b = &c->front;
    rp_buf_printf(b, "<text class=\"tag\" x=\"%.1f\" y=\"%d\" font-size=\"10\" "
                     "text-anchor=\"%s\" stroke=\"#fff\" stroke-width=\"3\" "
                     "paint-order=\"stroke\"",
                  end ? x - 3 : x + 3, TOP_PX + 10 + 11 * row, end ? "end" : "start");
    attr_color(b, "fill", color);
    rp_buf_puts(b, ">");
    rp_buf_esc(b, text);
    rp_buf_puts(b, "</text>\n");
}

/* Legend rows under the time labels; returns the height used. */
static int legend(rp_buf *o, const rp_axis *ax, const legend_item *items, int n, double y)
{
    if (n == 0)
        return 0;
    double x = ax->left_px, row = 0;
    rp_buf_puts(o, "<g class=\"legend\" font-size=\"11\" fill=\"#33404f\">");
    for (int i = 0; i < n; i++) {
        double w = 26 + 6.4 * (double)strlen(items[i].label);
        if (x + w > ax->width_px - ax->right_px && x > ax->left_px) {
            x = ax->left_px;
            row++;
        }
        double yy = y + row * LEGEND_ROW_PX;
        if (items[i].kind == 1 || items[i].kind == 3) {
            rp_buf_printf(o, "<rect x=\"%.1f\" y=\"%.1f\" width=\"14\" height=\"9\"%s", x, yy - 8,
                          items[i].kind == 3 ? " fill-opacity=\"0.3\"" : "");
            attr_color(o, "fill", items[i].color);
            rp_buf_puts(o, "/>");
        } else {
            rp_buf_printf(o, "<line x1=\"%.1f\" x2=\"%.1f\" y1=\"%.1f\" y2=\"%.1f\" "
                             "stroke-width=\"2\"%s",
                          x, x + 14, yy - 4, yy - 4,
                          items[i].kind == 2 ? " stroke-dasharray=\"4 2\"" : "");
            attr_color(o, "stroke", items[i].color);
            rp_buf_puts(o, "/>");
        }
        rp_buf_printf(o, "<text x=\"%.1f\" y=\"%.1f\">", x + 19, yy);
        rp_buf_esc(o, items[i].label);
        rp_buf_puts(o, "</text>");
        x += w;
    }
    rp_buf_puts(o, "</g>\n");
    return (int)(row + 1) * LEGEND_ROW_PX + 4;
}

static void svg_open(rp_buf *o, const rp_axis *ax, int height, const char *title, double ymin,
                     double ymax)
{
    rp_buf_printf(o, "<svg xmlns=\"http://www.w3.org/2000/svg\" class=\"chart\" width=\"%d\" "
                     "height=\"%d\" viewBox=\"0 0 %d %d\" role=\"img\" " FONT " aria-label=\"",
                  ax->width_px, height, ax->width_px, height);
    rp_buf_esc(o, title);
    rp_buf_printf(o, "\" data-t0=\"%.17g\" data-t1=\"%.17g\" data-ymin=\"%.17g\" "
                     "data-ymax=\"%.17g\">\n",
                  ax->t0_s, ax->t1_s, ymin, ymax);
}

void rp_chart_end(rp_chart *c, rp_buf *out)
{
    const rp_axis *ax = &c->ax;
    double y0 = TOP_PX, y1 = TOP_PX + c->height_px;
    rp_buf leg = { 0 };
    int leg_h = legend(&leg, ax, c->legend, c->n_legend, y1 + TICKS_PX + 14);
    int height = (int)y1 + TICKS_PX + leg_h + 4;
    svg_open(out, ax, height, c->title, c->ymin, c->ymax);
    rp_buf_printf(out, "<rect class=\"plot\" x=\"%d\" y=\"%d\" width=\"%d\" height=\"%d\" "
                       "fill=\"#fbfcfd\" stroke=\"#d5dae0\"/>\n",
                  ax->left_px, TOP_PX, plot_w(ax), c->height_px);
    /* page-unique clip id: charts of one page share an id space */
    static unsigned long clip_id;
    clip_id++;
    rp_buf_printf(out, "<defs><clipPath id=\"plot%lu\"><rect x=\"%d\" y=\"%d\" width=\"%d\" "
                       "height=\"%d\"/></clipPath></defs>\n",
                  clip_id, ax->left_px, TOP_PX - 1, plot_w(ax), c->height_px + 2);
    rp_buf_printf(out, "<g clip-path=\"url(#plot%lu)\">", clip_id);
    rp_buf_puts(out, c->back.s);
    rp_buf_puts(out, "</g>\n");
    /* value grid and labels */
    double range = c->ymax - c->ymin, step = rp_nice_ceil(range / 4);
    rp_buf_puts(out, "<g class=\"ygrid\" font-size=\"11\" fill=\"#5f6b7a\" text-anchor=\"end\">");
    for (double v = ceil(c->ymin / step - 1e-9) * step; v <= c->ymax + step * 1e-9; v += step) {
        char lab[32];
        fmt_value(lab, sizeof lab, fabs(v) < step * 1e-9 ? 0 : v, c->unit, c->ymax);
        double y = rp_chart_y(c, v);
        rp_buf_printf(out, "<line x1=\"%d\" x2=\"%d\" y1=\"%.1f\" y2=\"%.1f\" stroke=\"#e3e6ea\"/>"
                           "<text x=\"%d\" y=\"%.1f\" data-v=\"%.6g\">%s</text>",
                      ax->left_px, ax->width_px - ax->right_px, y, y, ax->left_px - 6, y + 4, v,
                      lab);
    }
    rp_buf_puts(out, "</g>\n");
    time_grid(out, ax, y0, y1);
    rp_buf_puts(out, "\n");
    rp_buf_printf(out, "<g clip-path=\"url(#plot%lu)\">\n", clip_id);
    rp_buf_puts(out, c->body.s);
    rp_buf_puts(out, "</g>\n");
    rp_buf_puts(out, c->front.s);
    rp_buf_puts(out, leg.s);
    rp_buf_puts(out, "</svg>\n");
    rp_buf_free(&leg);
    rp_buf_free(&c->back);
    rp_buf_free(&c->body);
    rp_buf_free(&c->front);
    for (int i = 0; i < c->n_legend; i++) {
        free(c->legend[i].label);
        free(c->legend[i].color);
    }
    free(c->legend);
    free(c->title);
    free(c);
}

/* ---------- heatmap and timeline ---------- */

/* Sequential palette, light to dark (ColorBrewer YlOrRd, 9 classes). */
static const char *const heat[] = { "#ffffcc", "#ffeda0", "#fed976", "#feb24c", "#fd8d3c",
                                    "#fc4e2a", "#e31a1c", "#bd0026", "#800026" };
#define N_HEAT (int)(sizeof heat / sizeof heat[0])

static int heat_level(double v)
{
    int k = (int)floor(v * N_HEAT);
    return k < 0 ? 0 : k >= N_HEAT ? N_HEAT - 1 : k;
}

#define ROW_PX 13

static void row_label(rp_buf *o, const rp_axis *ax, double y, const char *label)
{
    rp_buf_printf(o, "<text x=\"%d\" y=\"%.1f\" text-anchor=\"end\"><title>", ax->left_px - 6,
                  y + ROW_PX - 3);
    rp_buf_esc(o, label);
    rp_buf_puts(o, "</title>");
    esc_short(o, label, LABEL_CHARS);
    rp_buf_puts(o, "</text>");
}

void rp_heatmap(rp_buf *out, const rp_axis *ax, const char *title, int n_rows,
                const char *const *row_labels, const double *const *rows, const double *t,
                size_t n, double interval_s)
{
    int w = plot_w(ax);
    double colw_s = (ax->t1_s - ax->t0_s) / (w / 3.0); /* about 3 px per column */
    if (colw_s < interval_s)
        colw_s = interval_s;
    int plot_h = n_rows * ROW_PX;
    int height = TOP_PX + plot_h + TICKS_PX + 26;
    svg_open(out, ax, height, title, 0, 1);
    rp_buf_printf(out, "<rect class=\"plot\" x=\"%d\" y=\"%d\" width=\"%d\" height=\"%d\" "
                       "fill=\"#f1f3f5\" stroke=\"#d5dae0\"/>\n",
                  ax->left_px, TOP_PX, w, plot_h);
    rp_buf_puts(out, "<g class=\"cells\" stroke=\"none\">");
    size_t n_cols = (size_t)ceil((ax->t1_s - ax->t0_s) / colw_s - 1e-9);
    double *sum = malloc(sizeof *sum * (n_cols + 1));
    int *cnt = malloc(sizeof *cnt * (n_cols + 1));
    for (int r = 0; r < n_rows; r++) {
        double y = TOP_PX + r * ROW_PX;
        memset(sum, 0, sizeof *sum * (n_cols + 1));
        memset(cnt, 0, sizeof *cnt * (n_cols + 1));
        for (size_t i = 0; i < n; i++) {
            if (t[i] < ax->t0_s || t[i] >= ax->t1_s || isnan(rows[r][i]))
                continue;
            size_t col = (size_t)floor((t[i] - ax->t0_s) / colw_s);
            if (col >= n_cols)
                col = n_cols - 1;
            sum[col] += rows[r][i];
            cnt[col]++;
        }
        /* equal neighbouring columns merge into one rect */
        size_t c = 0;
        while (c < n_cols) {
            int level = cnt[c] ? heat_level(sum[c] / cnt[c]) : -1;
            size_t e = c + 1;
            while (e < n_cols && (cnt[e] ? heat_level(sum[e] / cnt[e]) : -1) == level)
                e++;
            if (level >= 0) {
                double x0 = ax_x(ax, ax->t0_s + (double)c * colw_s);
                double x1 = ax_x(ax, fmin(ax->t0_s + (double)e * colw_s, ax->t1_s));
                rp_buf_printf(out, "<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%d\" "
                                   "fill=\"%s\" data-level=\"%d\"/>",
                              x0, y + 0.5, fmax(x1 - x0, 0.5), ROW_PX - 1, heat[level], level);
            }
            c = e;
        }
    }
    free(sum);
    free(cnt);
    rp_buf_puts(out, "</g>\n<g class=\"rows\" font-size=\"10\" fill=\"#33404f\">");
    for (int r = 0; r < n_rows; r++)
        row_label(out, ax, TOP_PX + r * ROW_PX, row_labels[r]);
    rp_buf_puts(out, "</g>\n");
    time_grid(out, ax, TOP_PX + plot_h, TOP_PX + plot_h);
    /* colour scale */
    double ly = TOP_PX + plot_h + TICKS_PX + 8, lx = ax->left_px;
    rp_buf_puts(out, "<g class=\"scale\" font-size=\"11\" fill=\"#33404f\">");
    for (int k = 0; k < N_HEAT; k++)
        rp_buf_printf(out, "<rect x=\"%.1f\" y=\"%.1f\" width=\"22\" height=\"9\" fill=\"%s\"/>",
                      lx + 22 * k, ly, heat[k]);
    rp_buf_printf(out, "<text x=\"%.1f\" y=\"%.1f\">0%% \xE2\x80\x93 100%% busy (grey: no node, or a node down)</text>",
                  lx + 22 * N_HEAT + 8, ly + 9);
    rp_buf_puts(out, "</g>\n</svg>\n");
}

void rp_timeline(rp_buf *out, const rp_axis *ax, const char *title, int n_rows,
                 const char *const *row_labels, const rp_span *spans, size_t n_spans)
{
    int plot_h = n_rows * ROW_PX;
    svg_open(out, ax, TOP_PX + plot_h + TICKS_PX + 6, title, 0, 1);
    rp_buf_printf(out, "<rect class=\"plot\" x=\"%d\" y=\"%d\" width=\"%d\" height=\"%d\" "
                       "fill=\"#fbfcfd\" stroke=\"#d5dae0\"/>\n",
                  ax->left_px, TOP_PX, plot_w(ax), plot_h);
    for (size_t i = 0; i < n_spans; i++) {
        const rp_span *s = &spans[i];
        double y = TOP_PX + s->row * ROW_PX;
        int point = isnan(s->t1_s) || s->t1_s < s->t0_s;
        double a = fmax(s->t0_s, ax->t0_s), z = point ? a : fmin(s->t1_s, ax->t1_s);
        if (s->t0_s > ax->t1_s || (!point && z < a) || (point && s->t0_s < ax->t0_s))
            continue;
        double x0 = ax_x(ax, a), x1 = ax_x(ax, z);
        if (point)
            rp_buf_printf(out, "<path d=\"M%.1f %.1f l-4 %d h8 z\"", x0, y + 2, ROW_PX - 3);
        else
            rp_buf_printf(out, "<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%d\"", x0,
                          y + 1.5, fmax(x1 - x0, 1.5), ROW_PX - 3);
        attr_color(out, "fill", s->color);
        rp_buf_puts(out, "><title>");
        rp_buf_esc(out, s->label);
        rp_buf_puts(out, point ? "</title></path>" : "</title></rect>");
    }
    rp_buf_puts(out, "\n<g class=\"rows\" font-size=\"10\" fill=\"#33404f\">");
    for (int r = 0; r < n_rows; r++)
        row_label(out, ax, TOP_PX + r * ROW_PX, row_labels[r]);
    rp_buf_puts(out, "</g>\n");
    time_grid(out, ax, TOP_PX + plot_h, TOP_PX + plot_h);
    rp_buf_puts(out, "</svg>\n");
}
