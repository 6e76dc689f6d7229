/*
 * test_svg.c - the chart module, checked through a real XML parser:
 * libxml2's xmllint must accept every chart as well-formed XML, and the
 * coordinates it reads back out of the drawn paths (via XPath) must map,
 * through the plot rectangle and the axis ranges the SVG declares, back to
 * the data that was plotted. Also: escaping, per-pixel reduction keeping a
 * one-point spike, stacked areas, time ticks, nice axis bounds.
 */
#include "svg.h"

#include <CUnit/Basic.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char tmpl[] = "/tmp/fleetsim-svg-XXXXXX";
static const char *dir;

static char *write_svg(const char *name, const rp_buf *b)
{
    char *path = malloc(strlen(dir) + strlen(name) + 2);
    sprintf(path, "%s/%s", dir, name);
    FILE *f = fopen(path, "w");
    fputs(b->s, f);
    fclose(f);
    return path;
}

/* xmllint's output for an XPath expression; NULL if xmllint failed. */
static char *xpath(const char *file, const char *expr)
{
    char cmd[2048];
    snprintf(cmd, sizeof cmd, "xmllint --xpath \"%s\" '%s' 2>/dev/null", expr, file);
    FILE *p = popen(cmd, "r");
    if (!p)
        return NULL;
    rp_buf b = { 0 };
    char chunk[4096];
    size_t n;
    while ((n = fread(chunk, 1, sizeof chunk, p)) > 0)
        rp_buf_add(&b, chunk, n);
    int st = pclose(p);
    if (st != 0) {
        rp_buf_free(&b);
        return NULL;
    }
    if (!b.s)
        rp_buf_add(&b, "", 0);
    if (b.len > 0 && b.s[b.len - 1] == '\n') /* xmllint ends its answer with a newline */
        b.s[--b.len] = '\0';
    return b.s;
}

static double xnum(const char *file, const char *expr)
{
    char *s = xpath(file, expr);
    double v = s ? strtod(s, NULL) : NAN;
    free(s);
    return v;
}

static int well_formed(const char *file)
{
    char cmd[1024];
    snprintf(cmd, sizeof cmd, "xmllint --noout '%s'", file);
    return system(cmd) == 0;
}

/* The data-space frame an SVG declares: plot rect and axis ranges. */
typedef struct {
    double px, py, pw, ph, t0, t1, y0, y1;
} frame;

static frame read_frame(const char *file)
{
    frame f;
    f.px = xnum(file, "string(//*[@class='plot']/@x)");
    f.py = xnum(file, "string(//*[@class='plot']/@y)");
    f.pw = xnum(file, "string(//*[@class='plot']/@width)");
    f.ph = xnum(file, "string(//*[@class='plot']/@height)");
    f.t0 = xnum(file, "string(/*/@data-t0)");
    f.t1 = xnum(file, "string(/*/@data-t1)");
    f.y0 = xnum(file, "string(/*/@data-ymin)");
    f.y1 = xnum(file, "string(/*/@data-ymax)");
    return f;
}

static double to_t(const frame *f, double x)
{
    return f->t0 + (x - f->px) / f->pw * (f->t1 - f->t0);
}

static double to_v(const frame *f, double y)
{
    return f->y0 + (f->py + f->ph - y) / f->ph * (f->y1 - f->y0);
}

/* Parses "M x y L x y ... M x y ..." into points; *subpaths counts M. */
static size_t parse_path(const char *d, double *xs, double *ys, size_t cap, int *subpaths)
{
    size_t n = 0;
    *subpaths = 0;
    const char *p = d;
    while (*p && n < cap) {
        while (*p == ' ')
            p++;
        if (*p == 'M')
            (*subpaths)++;
        if (*p == 'M' || *p == 'L')
            p++;
        else if (*p == 'Z') {
            p++;
            continue;
        } else if (!*p)
            break;
        char *end;
        xs[n] = strtod(p, &end);
        ys[n] = strtod(end, &end);
        if (end == p)
            break;
        p = end;
        n++;
    }
    return n;
}

static void test_line_points_map_to_data(void)
{
    rp_axis ax = rp_axis_make(0, 100);
    rp_chart *c = rp_chart_new(&ax, 150, 0, 50, RP_UNIT_NUM, "line");
    double t[] = { 0, 10, 20, 55, 60, 100 };
    double y[] = { 0, 5, 40, NAN, 10, 50 };
    rp_chart_line(c, "s1", "series one", "#123456", t, y, 6, 0);
    rp_buf b = { 0 };
    rp_chart_end(c, &b);
    char *file = write_svg("line.svg", &b);
    CU_ASSERT_TRUE_FATAL(well_formed(file));
    frame f = read_frame(file);
    CU_ASSERT_DOUBLE_EQUAL(f.t1, 100, 0);
    CU_ASSERT_DOUBLE_EQUAL(f.y1, 50, 0);
    char *d = xpath(file, "string(//*[@data-series='s1']/@d)");
    CU_ASSERT_PTR_NOT_NULL_FATAL(d);
    double xs[16], ys[16];
    int sub;
    size_t n = parse_path(d, xs, ys, 16, &sub);
    CU_ASSERT_EQUAL(n, 5);     /* the NAN point is not drawn */
    CU_ASSERT_EQUAL(sub, 2);   /* ... and breaks the line in two */
    size_t k = 0;
    double tol_t = 0.06 / f.pw * 100, tol_v = 0.06 / f.ph * 50; /* 0.1 px rounding */
    for (size_t i = 0; i < 6; i++) {
        if (isnan(y[i]))
            continue;
        CU_ASSERT_DOUBLE_EQUAL(to_t(&f, xs[k]), t[i], tol_t);
        CU_ASSERT_DOUBLE_EQUAL(to_v(&f, ys[k]), y[i], tol_v);
        k++;
    }
    free(d);
    free(file);
    rp_buf_free(&b);
}

static void test_escaping(void)
{
    const char *evil = "<script>alert(1)</script> & \"q\" 'a'";
    rp_axis ax = rp_axis_make(0, 10);
    rp_chart *c = rp_chart_new(&ax, 100, 0, 1, RP_UNIT_FRAC, evil);
    double t[] = { 0, 10 }, y[] = { 0.5, 0.5 };
    rp_chart_line(c, evil, evil, "#000", t, y, 2, 0);
    rp_chart_marker(c, 5, "#f00", evil);
    rp_buf b = { 0 };
    rp_chart_end(c, &b);
    CU_ASSERT_PTR_NULL(strstr(b.s, "<script"));
    char *file = write_svg("esc.svg", &b);
    CU_ASSERT_TRUE_FATAL(well_formed(file));
    /* the parser gives the original text back: escaped exactly once */
    char *title = xpath(file, "string(//*[local-name()='g'][@class='marker']/*[local-name()='title'])");
    CU_ASSERT_PTR_NOT_NULL_FATAL(title);
    CU_ASSERT_STRING_EQUAL(title, evil);
    char *aria = xpath(file, "string(/*/@aria-label)");
    CU_ASSERT_STRING_EQUAL(aria, evil);
    free(title);
    free(aria);
    free(file);
    rp_buf_free(&b);

    rp_buf e = { 0 };
    rp_buf_esc(&e, "a<b>&\"c'\x01");
    CU_ASSERT_STRING_EQUAL(e.s, "a&lt;b&gt;&amp;&quot;c&#39; ");
    rp_buf_free(&e);

    /* heatmap row labels, cut long, still escaped and well-formed */
    const char *labels[] = { "<b>&amp;</b> a very long node name indeed", "ok" };
    double r0[] = { 0.1, 0.9 }, r1[] = { NAN, 1.0 };
    const double *rows[] = { r0, r1 };
    double ht[] = { 0, 5 };
    rp_buf h = { 0 };
    rp_heatmap(&h, &ax, "heat & map", 2, labels, rows, ht, 2, 5);
    file = write_svg("heat.svg", &h);
    CU_ASSERT_TRUE(well_formed(file));
    char *full = xpath(file, "string(//*[local-name()='g'][@class='rows']/*[1]/*[local-name()='title'])");
    CU_ASSERT_STRING_EQUAL(full, labels[0]);
    free(full);
    free(file);
    rp_buf_free(&h);
}

static void test_reduction_keeps_spike(void)
{
    size_t n = 100000;
    double *t = malloc(sizeof *t * n), *y = malloc(sizeof *y * n);
    for (size_t i = 0; i < n; i++) {
        t[i] = (double)i;
        y[i] = 1 + (double)(i % 7) * 0.01;
    }
    y[61234] = 95; /* one sample, far narrower than a pixel */
    rp_axis ax = rp_axis_make(0, (double)n);
    rp_chart *c = rp_chart_new(&ax, 150, 0, 100, RP_UNIT_NUM, "spike");
    rp_chart_line(c, "s", "s", "#000", t, y, n, 0);
    rp_buf b = { 0 };
    rp_chart_end(c, &b);
    char *file = write_svg("spike.svg", &b);
    CU_ASSERT_TRUE_FATAL(well_formed(file));
    frame f = read_frame(file);
    char *d = xpath(file, "string(//*[@data-series='s']/@d)");
    CU_ASSERT_PTR_NOT_NULL_FATAL(d);
    size_t cap = 20000;
    double *xs = malloc(sizeof *xs * cap), *ys = malloc(sizeof *ys * cap);
    int sub;
    size_t m = parse_path(d, xs, ys, cap, &sub);
    /* at most first/min/max/last per pixel column */
    CU_ASSERT(m <= 4 * (size_t)f.pw + 4);
    CU_ASSERT(m > f.pw);
    double top = 0, at = 0;
    for (size_t i = 0; i < m; i++)
        if (to_v(&f, ys[i]) > top) {
            top = to_v(&f, ys[i]);
            at = to_t(&f, xs[i]);
        }
    CU_ASSERT_DOUBLE_EQUAL(top, 95, 0.06 / f.ph * 100);
    CU_ASSERT_DOUBLE_EQUAL(at, 61234, 0.06 / f.pw * (double)n);
    free(xs);
    free(ys);
    free(d);
    free(file);
    free(t);
    free(y);
    rp_buf_free(&b);
}

static void test_stack_tops(void)
{
    rp_axis ax = rp_axis_make(0, 30);
    rp_chart *c = rp_chart_new(&ax, 100, 0, 10, RP_UNIT_NUM, "stack");
    double t[] = { 0, 10, 20, 30 }, a[] = { 1, 1, 2, 1 }, b2[] = { 2, 3, 0, 2 };
    const double *layers[] = { a, b2 };
    const char *labels[] = { "a", "b" }, *colors[] = { "#111", "#222" };
    rp_chart_stack(c, "st", 2, labels, colors, t, layers, 4);
    rp_buf b = { 0 };
    rp_chart_end(c, &b);
    char *file = write_svg("stack.svg", &b);
    CU_ASSERT_TRUE_FATAL(well_formed(file));
    frame f = read_frame(file);
    char *d = xpath(file, "string(//*[@data-series='st.1']/@d)");
    CU_ASSERT_PTR_NOT_NULL_FATAL(d);
    double xs[32], ys[32];
    int sub;
    size_t m = parse_path(d, xs, ys, 32, &sub);
    CU_ASSERT_EQUAL_FATAL(m, 8); /* 4 along the top, 4 back along the bottom */
    double tops[] = { 3, 4, 2, 3 }, bottoms[] = { 1, 1, 2, 1 };
    for (int i = 0; i < 4; i++) {
        CU_ASSERT_DOUBLE_EQUAL(to_t(&f, xs[i]), t[i], 0.01);
        CU_ASSERT_DOUBLE_EQUAL(to_v(&f, ys[i]), tops[i], 0.01);
        CU_ASSERT_DOUBLE_EQUAL(to_v(&f, ys[7 - i]), bottoms[i], 0.01);
    }
    free(d);
    free(file);
    rp_buf_free(&b);
}

static void test_time_ticks(void)
{
    rp_axis ax = rp_axis_make(0, 86400);
    rp_chart *c = rp_chart_new(&ax, 100, 0, 1, RP_UNIT_NUM, "day");
    rp_buf b = { 0 };
    rp_chart_end(c, &b);
    char *file = write_svg("ticks.svg", &b);
    CU_ASSERT_TRUE_FATAL(well_formed(file));
    frame f = read_frame(file);
    CU_ASSERT_DOUBLE_EQUAL(xnum(file, "count(//*[@class='tlabels']/*)"), 13, 0); /* every 2 h */
    char *lab = xpath(file, "string(//*[@class='tlabels']/*[7])");
    CU_ASSERT_STRING_EQUAL(lab, "12:00:00");
    double x = xnum(file, "string(//*[@class='tlabels']/*[7]/@x)");
    CU_ASSERT_DOUBLE_EQUAL(to_t(&f, x), 43200, 0.06 / f.pw * 86400);
    free(lab);
    free(file);
    rp_buf_free(&b);

    char s[32];
    rp_fmt_time(s, sizeof s, 43290, 86400);
    CU_ASSERT_STRING_EQUAL(s, "12:01:30");
    rp_fmt_time(s, sizeof s, 90, 600);
    CU_ASSERT_STRING_EQUAL(s, "0:01:30");
    rp_fmt_time(s, sizeof s, 45, 120);
    CU_ASSERT_STRING_EQUAL(s, "45s");
    /* 645 s reads one way whatever the run's length */
    rp_fmt_time(s, sizeof s, 645, 1800);
    CU_ASSERT_STRING_EQUAL(s, "0:10:45");
    rp_fmt_time(s, sizeof s, 645, 86400);
    CU_ASSERT_STRING_EQUAL(s, "0:10:45");
    rp_fmt_elapsed(s, sizeof s, 645);
    CU_ASSERT_STRING_EQUAL(s, "0:10:45");
    rp_fmt_elapsed(s, sizeof s, 2 * 86400 + 3 * 3600 + 7);
    CU_ASSERT_STRING_EQUAL(s, "2d 3:00:07");
    /* 2026-03-02T08:00:00+01:00 is 07:00:00 UTC; 645 s later, in that zone */
    double t0 = 1772434800; /* 2026-03-02T07:00:00Z */
    rp_fmt_clock(s, sizeof s, 645, t0, 3600, 0, 0);
    CU_ASSERT_STRING_EQUAL(s, "08:10:45");
    rp_fmt_clock(s, sizeof s, 645, t0, 3600, 1, 0);
    CU_ASSERT_STRING_EQUAL(s, "2026-03-02 08:10:45");
    rp_fmt_clock(s, sizeof s, 0, t0, -5 * 3600 - 1800, 1, 1);
    CU_ASSERT_STRING_EQUAL(s, "2026-03-02T01:30:00-05:30");
    rp_fmt_zone(s, sizeof s, 3600);
    CU_ASSERT_STRING_EQUAL(s, "UTC+01:00");
}

/* The time axis names its unit: h:mm:ss when elapsed, the zone with a
 * clock, whose ticks are then clock times (dated over more than a day). */
static void test_time_axis_unit(void)
{
    rp_axis ax = rp_axis_make(0, 1800);
    rp_chart *c = rp_chart_new(&ax, 100, 0, 1, RP_UNIT_NUM, "half an hour");
    rp_buf b = { 0 };
    rp_chart_end(c, &b);
    char *file = write_svg("unit.svg", &b);
    CU_ASSERT_TRUE_FATAL(well_formed(file));
    char *unit = xpath(file, "string(//*[@class='tunit']/text())");
    CU_ASSERT_STRING_EQUAL(unit, "h:mm:ss");
    char *lab = xpath(file, "string(//*[@class='tlabels']/*[2])");
    CU_ASSERT_STRING_EQUAL(lab, "0:05:00");
    free(unit);
    free(lab);
    free(file);
    rp_buf_free(&b);

    ax = rp_axis_make(0, 3 * 86400);
    rp_axis_set_clock(&ax, 1772434800, 3600); /* from 08:00 in UTC+01:00 */
    c = rp_chart_new(&ax, 100, 0, 1, RP_UNIT_NUM, "three days");
    rp_chart_end(c, &b);
    file = write_svg("clock.svg", &b);
    CU_ASSERT_TRUE_FATAL(well_formed(file));
    unit = xpath(file, "string(//*[@class='tunit']/text())");
    CU_ASSERT_STRING_EQUAL(unit, "UTC+01:00");
    lab = xpath(file, "string(//*[@class='tlabels']/*[1])");
    CU_ASSERT_STRING_EQUAL(lab, "03-02 08:00");
    free(unit);
    free(lab);
    free(file);
    rp_buf_free(&b);
}

static void test_nice_ceil(void)
{
    CU_ASSERT_DOUBLE_EQUAL(rp_nice_ceil(0.9), 1, 1e-12);
    CU_ASSERT_DOUBLE_EQUAL(rp_nice_ceil(1.1), 2, 1e-12);
    CU_ASSERT_DOUBLE_EQUAL(rp_nice_ceil(2.1), 2.5, 1e-12);
    CU_ASSERT_DOUBLE_EQUAL(rp_nice_ceil(3), 5, 1e-12);
    CU_ASSERT_DOUBLE_EQUAL(rp_nice_ceil(546), 1000, 1e-9);
    CU_ASSERT_DOUBLE_EQUAL(rp_nice_ceil(0.0012), 0.002, 1e-15);
    CU_ASSERT_DOUBLE_EQUAL(rp_nice_ceil(0), 1, 0);
}

int main(void)
{
    if (system("xmllint --version >/dev/null 2>&1") != 0) {
        fprintf(stderr, "test_svg: xmllint not found: apt-get install libxml2-utils "
                        "(or run scripts/install-deps.sh)\n");
        return 1;
    }
    dir = mkdtemp(tmpl);
    if (!dir || CU_initialize_registry() != CUE_SUCCESS)
        return 1;
    CU_pSuite s = CU_add_suite("svg", NULL, NULL);
    CU_add_test(s, "line points map back to the data", test_line_points_map_to_data);
    CU_add_test(s, "escaping survives an XML parser", test_escaping);
    CU_add_test(s, "per-pixel reduction keeps a spike", test_reduction_keeps_spike);
    CU_add_test(s, "stacked areas", test_stack_tops);
    CU_add_test(s, "time ticks on a day", test_time_ticks);
    CU_add_test(s, "the time axis names its unit", test_time_axis_unit);
    CU_add_test(s, "nice axis bounds", test_nice_ceil);
    CU_basic_set_mode(CU_BRM_VERBOSE);
    CU_basic_run_tests();
    unsigned fails = CU_get_number_of_failures();
    CU_cleanup_registry();
    char cmd[256];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0)
        fails++;
    return fails != 0;
}
