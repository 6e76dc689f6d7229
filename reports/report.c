/*
 * report.c - report.html for one run (see report.h). Every string that
 * comes from the scenario (names, description, the YAML itself) goes
 * through rp_buf_esc; numbers are formatted here.
 */
#include "report.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const pool_colors[] = { "#1f6feb", "#2da44e", "#bf8700", "#8250df",
                                           "#cf222e", "#1b7c83", "#bc4c00", "#6e7781" };
#define POOL_COLOR(k) pool_colors[(k) % (int)(sizeof pool_colors / sizeof pool_colors[0])]
#define C_FAULT "#cf222e"
#define C_SLO "#cf222e"
#define MAX_HEAT_NODES 24  /* more nodes than this: aggregate + busiest + idlest */
#define EXTREME_NODES 10
#define MAX_EVENT_ROWS 200

/* ---------- formatting ---------- */

void rp_fmt_count(char *buf, size_t n, double v)
{
    char raw[64];
    snprintf(raw, sizeof raw, "%.0f", v);
    const char *digits = raw[0] == '-' ? raw + 1 : raw;
    size_t len = strlen(digits), o = 0;
    if (raw[0] == '-' && o + 1 < n)
        buf[o++] = '-';
    for (size_t i = 0; i < len && o + 2 < n; i++) {
        if (i > 0 && (len - i) % 3 == 0)
            buf[o++] = ',';
        buf[o++] = digits[i];
    }
    buf[o] = '\0';
}

void rp_fmt_latency(char *buf, size_t n, double s)
{
    if (isnan(s))
        snprintf(buf, n, "\xE2\x80\x93");
    else if (s < 0.01)
        snprintf(buf, n, "%.2f ms", s * 1e3);
    else if (s < 1)
        snprintf(buf, n, "%.1f ms", s * 1e3);
    else
        snprintf(buf, n, "%.2f s", s);
}

static void fmt_pct(char *buf, size_t n, double frac)
{
    if (frac >= 0.9999995 || frac == 0)
        snprintf(buf, n, "%.2f%%", 100 * frac);
    else if (frac > 0.99)
        snprintf(buf, n, "%.4f%%", 100 * frac); /* the nines matter */
    else
        snprintf(buf, n, "%.2f%%", 100 * frac);
}

/* A time in a table: elapsed h:mm:ss ("0:10:45" for 645 s), or with the
 * scenario's start_time the wall-clock time (with its date in runs over a
 * day) and the elapsed time after it. */
static void fmt_when(char *buf, size_t n, double t, const rp_results *r)
{
    char el[32];
    rp_fmt_elapsed(el, sizeof el, t);
    if (!r->has_clock || isnan(t)) {
        snprintf(buf, n, "%s", el);
        return;
    }
    char clk[48];
    rp_fmt_clock(clk, sizeof clk, t, r->clock_start_s, r->utc_offset_s, r->sim_time_s > 86400, 0);
    snprintf(buf, n, "%s (+%s)", clk, el);
}

int rp_write_file(const char *path, const char *text, size_t len)
{
    FILE *f = fopen(path, "w");
    if (!f)
        return -1;
    int ok = fwrite(text, 1, len, f) == len;
    if (fclose(f) != 0 || !ok)
        return -1;
    return 0;
}

/* ---------- page frame ---------- */

static const char css[] =
    ":root{--fg:#1f2328;--muted:#59636e;--line:#d1d9e0;--bg:#f6f8fa;--ok:#1a7f37;--bad:#cf222e;"
    "--warn:#9a6700}\n"
    "*{box-sizing:border-box}\n"
    "body{margin:0;background:var(--bg);color:var(--fg);font:14px/1.45 system-ui,-apple-system,"
    "'Segoe UI',Roboto,'DejaVu Sans',sans-serif}\n"
    "main{max-width:1220px;margin:0 auto;padding:20px 24px 40px}\n"
    "h1{font-size:24px;margin:0 0 2px}h2{font-size:17px;margin:28px 0 8px;padding-bottom:4px;"
    "border-bottom:1px solid var(--line)}h3{font-size:14px;margin:16px 0 2px;color:var(--fg)}\n"
    ".sub{color:var(--muted);margin:0 0 4px}.meta{color:var(--muted);font-size:12.5px}\n"
    ".verdict{display:inline-block;font-weight:600;padding:3px 10px;border-radius:12px;"
    "font-size:13px;margin-left:10px;vertical-align:middle}\n"
    ".verdict.ok{background:#dafbe1;color:var(--ok)}.verdict.bad{background:#ffebe9;color:var(--bad)}"
    ".verdict.none{background:#eaeef2;color:var(--muted)}\n"
    ".cards{display:grid;grid-template-columns:repeat(auto-fill,minmax(170px,1fr));gap:10px;"
    "margin:16px 0}\n"
    ".card{background:#fff;border:1px solid var(--line);border-radius:8px;padding:10px 12px}\n"
    ".card .k{font-size:12px;color:var(--muted);text-transform:uppercase;letter-spacing:.04em}\n"
    ".card .v{font-size:22px;font-weight:600;margin-top:2px;font-variant-numeric:tabular-nums}\n"
    ".card .d{font-size:12px;color:var(--muted)}\n"
    ".card.ok{border-left:4px solid var(--ok)}.card.bad{border-left:4px solid var(--bad)}\n"
    ".panel{background:#fff;border:1px solid var(--line);border-radius:8px;padding:6px 10px 2px;"
    "margin:10px 0}\n"
    ".panel .note{font-size:12px;color:var(--muted);margin:0 0 4px}\n"
    "svg.chart{display:block;max-width:100%;height:auto}\n"
    "table{border-collapse:collapse;background:#fff;border:1px solid var(--line);margin:6px 0;"
    "font-size:13px;font-variant-numeric:tabular-nums}\n"
    "th,td{padding:5px 10px;border-bottom:1px solid #eaeef2;text-align:right;white-space:nowrap}\n"
    "th{background:#f6f8fa;font-weight:600;color:#33404f}\n"
    "td.l,th.l{text-align:left}td.wrap{white-space:normal;max-width:420px;text-align:left}\n"
    "td.best,td.ok{font-weight:700;color:var(--ok)}td.bad{font-weight:700;color:var(--bad)}td .ci{font-size:11.5px;color:var(--muted);"
    "font-weight:400}\n"
    "pre{background:#fff;border:1px solid var(--line);border-radius:8px;padding:12px;"
    "overflow:auto;font-size:12px;line-height:1.4}\n"
    "footer{color:var(--muted);font-size:12px;margin-top:30px}\n"
    "@media print{body{background:#fff}main{max-width:none;padding:0}.panel,.card,table{"
    "break-inside:avoid}h2{break-after:avoid}}\n";

void rp_html_open(rp_buf *out, const char *title)
{
    rp_buf_puts(out, "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
                     "<meta name=\"viewport\" content=\"width=device-width,initial-scale=1\">\n"
                     "<title>");
    rp_buf_esc(out, title);
    rp_buf_puts(out, "</title>\n<style>\n");
    rp_buf_puts(out, css);
    rp_buf_puts(out, "</style>\n</head>\n<body>\n<main>\n");
}

void rp_html_close(rp_buf *out)
{
    rp_buf_puts(out, "<footer>Generated by fleetsim. Self-contained: no scripts, nothing "
                     "fetched.</footer>\n</main>\n</body>\n</html>\n");
}

static void card(rp_buf *o, const char *cls, const char *key, const char *value,
                 const char *detail)
{
    rp_buf_printf(o, "<div class=\"card%s%s\"><div class=\"k\">", cls ? " " : "", cls ? cls : "");
    rp_buf_esc(o, key);
    rp_buf_puts(o, "</div><div class=\"v\">");
    rp_buf_esc(o, value);
    rp_buf_puts(o, "</div>");
    if (detail) {
        rp_buf_puts(o, "<div class=\"d\">");
        rp_buf_esc(o, detail);
        rp_buf_puts(o, "</div>");
    }
    rp_buf_puts(o, "</div>\n");
}

/* ---------- series derived from the samples ---------- */

typedef struct {
    size_t n;
    double *t;                 /* interval midpoints */
    double *offered, *served, *capacity;
    double *p50, *p99;
    double *rej, *fail, *tout; /* per second */
    int has_capacity;
    double max_offered, max_served, max_capacity, max_p99, max_err;
} series;

static double interval_len(const rp_results *r, size_t i)
{
    double len = fmin(r->interval_s, r->sim_time_s - r->samples[i].t_s);
    return len > 0 ? len : r->interval_s;
}

static void series_make(const rp_results *r, series *s)
{
    size_t n = r->n_samples;
    memset(s, 0, sizeof *s);
    s->n = n;
    double **cols[] = { &s->t, &s->offered, &s->served, &s->capacity, &s->p50,
                        &s->p99, &s->rej, &s->fail, &s->tout };
    for (size_t k = 0; k < sizeof cols / sizeof cols[0]; k++)
        *cols[k] = calloc(n ? n : 1, sizeof(double));
    for (int k = 0; k < r->n_pools; k++)
        if (r->pools[k].node_capacity_qps > 0)
            s->has_capacity = 1;
    for (size_t i = 0; i < n; i++) {
        const rp_sample *x = &r->samples[i];
        double len = interval_len(r, i);
        s->t[i] = x->t_s + len / 2;
        s->offered[i] = x->offered_qps;
        s->served[i] = (double)x->completed / len;
        s->p50[i] = x->completed ? x->p50_s : NAN;
        s->p99[i] = x->completed ? x->p99_s : NAN;
        s->rej[i] = (double)x->rejected / len;
        s->fail[i] = (double)x->failed / len;
        s->tout[i] = (double)x->timed_out / len;
        double cap = 0;
        for (int k = 0; k < r->n_pools; k++)
            cap += x->pools[k].replicas * r->pools[k].node_capacity_qps;
        s->capacity[i] = cap;
        s->max_offered = fmax(s->max_offered, s->offered[i]);
        s->max_served = fmax(s->max_served, s->served[i]);
        s->max_capacity = fmax(s->max_capacity, cap);
        if (!isnan(s->p99[i]))
            s->max_p99 = fmax(s->max_p99, s->p99[i]);
        s->max_err = fmax(s->max_err, s->rej[i] + s->fail[i] + s->tout[i]);
    }
}

static void series_free(series *s)
{
    double *cols[] = { s->t, s->offered, s->served, s->capacity, s->p50,
                       s->p99, s->rej, s->fail, s->tout };
    for (size_t k = 0; k < sizeof cols / sizeof cols[0]; k++)
        free(cols[k]);
}

int rp_focus_window(const rp_results *r, double *t0_s, double *t1_s)
{
    double max_off = 0;
    for (size_t i = 0; i < r->n_samples; i++)
        max_off = fmax(max_off, r->samples[i].offered_qps);
    double first = NAN, last = NAN;
    for (size_t i = 0; i < r->n_samples; i++) {
        const rp_sample *x = &r->samples[i];
        int hot = x->rejected + x->failed + x->timed_out > 0 ||
                  (max_off > 0 && x->offered_qps >= 0.5 * max_off) ||
                  (r->slo_latency_p99_s > 0 && x->completed && x->p99_s > r->slo_latency_p99_s);
        if (hot) {
            if (isnan(first))
                first = x->t_s;
            last = x->t_s + interval_len(r, i);
        }
    }
    if (isnan(first))
        return 0;
    double w = last - first;
    double pad = fmax(fmax(0.5 * w, 5 * r->interval_s), 120);
    double a = fmax(0, first - pad), z = fmin(r->sim_time_s, last + pad);
    if (z - a > 0.25 * r->sim_time_s)
        return 0;
    *t0_s = a;
    *t1_s = z;
    return 1;
}

/* ---------- charts ---------- */

static void fault_marks(rp_chart *c, const rp_results *r)
{
    for (size_t i = 0; i < r->n_faults; i++) {
        const rp_fault *f = &r->faults[i];
        rp_buf lab = { 0 };
        rp_buf_printf(&lab, "fault %s", f->kind);
        if (f->target) {
            rp_buf_puts(&lab, " on ");
            rp_buf_puts(&lab, f->target);
        }
        rp_chart_band(c, f->start_s, f->end_s, C_FAULT, lab.s);
        rp_chart_marker(c, f->start_s, C_FAULT, lab.s);
        rp_chart_tag(c, f->start_s, 0, lab.s + 6 /* without "fault " */, C_FAULT);
        rp_buf_free(&lab);
    }
}

static void panel_open(rp_buf *o, const char *title, const char *note)
{
    rp_buf_puts(o, "<div class=\"panel\"><h3>");
    rp_buf_esc(o, title);
    rp_buf_puts(o, "</h3>");
    if (note) {
        rp_buf_puts(o, "<p class=\"note\">");
        rp_buf_esc(o, note);
        rp_buf_puts(o, "</p>");
    }
    rp_buf_puts(o, "\n");
}

static void panel_close(rp_buf *o)
{
    rp_buf_puts(o, "</div>\n");
}

typedef struct {
    double mean;
    int idx;
} ranked;

static int by_mean_desc(const void *a, const void *b)
{
    const ranked *x = a, *y = b;
    if (x->mean != y->mean)
        return x->mean < y->mean ? 1 : -1;
    return x->idx - y->idx;
}

/* Utilisation heatmap: per node when recorded (aggregated past
 * MAX_HEAT_NODES), else one row per pool. */
static void utilisation_heatmap(rp_buf *o, const rp_results *r, const rp_axis *ax,
                                const double *t0s)
{
    size_t n = r->n_samples;
    int cap = 0;
    for (int k = 0; k < r->n_pools; k++)
        cap += 3 + (r->pools[k].n_nodes > 0 ? MAX_HEAT_NODES : 1);
    const char **labels = calloc((size_t)cap + 1, sizeof *labels);
    const double **rows = calloc((size_t)cap + 1, sizeof *rows);
    char **owned = calloc((size_t)cap + 1, sizeof *owned);
    double **owned_rows = calloc((size_t)cap + 1, sizeof *owned_rows);
    int nr = 0, no = 0, nor = 0, per_node = 0;
    rp_buf note = { 0 };
    for (int k = 0; k < r->n_pools; k++) {
        const rp_pool *p = &r->pools[k];
        if (p->n_nodes <= 0) {
            double *v = malloc(sizeof *v * (n ? n : 1));
            for (size_t i = 0; i < n; i++) {
                int g = r->samples[i].pools[k].replicas * p->gpus_per_node;
                v[i] = g > 0 ? r->samples[i].pools[k].busy_gpus / g : NAN;
            }
            owned_rows[nor++] = v;
            char *lab = malloc(strlen(p->name) + 8);
            sprintf(lab, "%s (pool)", p->name);
            owned[no++] = lab;
            labels[nr] = lab;
            rows[nr++] = v;
            continue;
        }
        per_node = 1;
        if (p->n_nodes <= MAX_HEAT_NODES) {
            for (int j = 0; j < p->n_nodes; j++) {
                labels[nr] = p->nodes[j].name;
                rows[nr++] = p->nodes[j].busy;
            }
            continue;
        }
        /* many nodes: the pool mean, then the busiest and the idlest */
        ranked *rk = malloc(sizeof *rk * (size_t)p->n_nodes);
        double *mean = calloc(n ? n : 1, sizeof *mean);
        int *cnt = calloc(n ? n : 1, sizeof *cnt);
        for (int j = 0; j < p->n_nodes; j++) {
            double s = 0;
            int c = 0;
            for (size_t i = 0; i < n; i++) {
                double v = p->nodes[j].busy[i];
                if (!isnan(v)) {
                    s += v;
                    c++;
                    mean[i] += v;
                    cnt[i]++;
                }
            }
            rk[j] = (ranked){ c ? s / c : 0, j };
        }
        for (size_t i = 0; i < n; i++)
            mean[i] = cnt[i] ? mean[i] / cnt[i] : NAN;
        free(cnt);
        owned_rows[nor++] = mean;
        char *lab = malloc(strlen(p->name) + 16);
        sprintf(lab, "%s (mean)", p->name);
        owned[no++] = lab;
        labels[nr] = lab;
        rows[nr++] = mean;
        qsort(rk, (size_t)p->n_nodes, sizeof *rk, by_mean_desc);
        for (int j = 0; j < EXTREME_NODES; j++) {
            labels[nr] = p->nodes[rk[j].idx].name;
            rows[nr++] = p->nodes[rk[j].idx].busy;
        }
        for (int j = p->n_nodes - EXTREME_NODES; j < p->n_nodes; j++) {
            labels[nr] = p->nodes[rk[j].idx].name;
            rows[nr++] = p->nodes[rk[j].idx].busy;
        }
        rp_buf_printf(&note, "Pool %s has %d nodes: first row is the mean over nodes, then the "
                             "%d busiest and the %d idlest by mean utilisation. ",
                      p->name, p->n_nodes, EXTREME_NODES, EXTREME_NODES);
        free(rk);
    }
    panel_open(o, per_node ? "GPU utilisation per node" : "GPU utilisation per pool",
               note.len ? note.s
                        : (per_node ? NULL
                                    : "Per-node utilisation is not recorded by this run; rows "
                                      "are pools (busy GPUs / ready GPUs)."));
    rp_heatmap(o, ax, "GPU utilisation", nr, labels, rows, t0s, n, r->interval_s);
    panel_close(o);
    for (int i = 0; i < no; i++)
        free(owned[i]);
    for (int i = 0; i < nor; i++)
        free(owned_rows[i]);
    free(owned);
    free(owned_rows);
    free(labels);
    free(rows);
    rp_buf_free(&note);
}

static void alert_timeline(rp_buf *o, const rp_results *r, const rp_axis *ax)
{
    if (r->n_alerts == 0)
        return;
    size_t n = r->n_alerts;
    const char **labels = calloc(n, sizeof *labels);
    rp_span *spans = calloc(3 * n, sizeof *spans);
    char **texts = calloc(3 * n, sizeof *texts);
    size_t ns = 0;
    for (size_t i = 0; i < n; i++) {
        const rp_alert *a = &r->alerts[i];
        labels[i] = a->name;
        double end = isnan(a->resolved_at) ? r->sim_time_s : a->resolved_at;
        double fire = isnan(a->firing_at) ? end : a->firing_at;
        char buf[512];
        if (!isnan(a->pending_at)) {
            snprintf(buf, sizeof buf, "%s pending", a->name);
            texts[ns] = strdup(buf);
            spans[ns] = (rp_span){ (int)i, a->pending_at, fire, "#d4a72c", texts[ns] };
            ns++;
        }
        if (!isnan(a->firing_at)) {
            snprintf(buf, sizeof buf, "%s firing (%s)", a->name, a->severity ? a->severity : "");
            texts[ns] = strdup(buf);
            spans[ns] = (rp_span){ (int)i, a->firing_at, end, "#cf222e", texts[ns] };
            ns++;
        }
        if (!isnan(a->notified_at)) {
            snprintf(buf, sizeof buf, "%s notified %s", a->name, a->receiver ? a->receiver : "");
            texts[ns] = strdup(buf);
            spans[ns] = (rp_span){ (int)i, a->notified_at, NAN, "#24292f", texts[ns] };
            ns++;
        }
    }
    panel_open(o, "Alerts", "Amber: pending, red: firing, black tick: notification sent.");
    rp_timeline(o, ax, "Alerts", (int)n, labels, spans, ns);
    panel_close(o);
    for (size_t i = 0; i < ns; i++)
        free(texts[i]);
    free(texts);
    free(spans);
    free(labels);
}

static int any_llm(const rp_results *r)
{
    for (int k = 0; k < r->n_pools; k++)
        if (r->pools[k].llm)
            return 1;
    return 0;
}

/* LLM pools: the KV cache in use (time-averaged share of the serving
 * replicas' blocks) and the sequences running and waiting at each
 * interval's end, from the time series the run records. */
static void llm_charts(rp_buf *o, const rp_results *r, const series *s, const rp_axis *ax)
{
    if (!any_llm(r))
        return;
    size_t n = s->n;
    double *v = malloc(sizeof *v * (n ? n : 1));
    double max_kv = 0, max_seqs = 0;
    for (size_t i = 0; i < n; i++)
        for (int k = 0; k < r->n_pools; k++)
            if (r->pools[k].llm) {
                const rp_pool_sample *ps = &r->samples[i].pools[k];
                max_kv = fmax(max_kv, ps->kv_usage);
                max_seqs = fmax(max_seqs, fmax(ps->running, ps->waiting));
            }
    panel_open(o, "KV cache in use (LLM pools)",
               "Share of the serving replicas' KV blocks held by running sequences, averaged "
               "over each interval.");
    rp_chart *c = rp_chart_new(ax, 110, 0, fmin(1, rp_nice_ceil(max_kv > 0 ? max_kv * 1.05 : 1)),
                               RP_UNIT_FRAC, "KV cache usage per LLM pool");
    fault_marks(c, r);
    for (int k = 0; k < r->n_pools; k++) {
        if (!r->pools[k].llm)
            continue;
        for (size_t i = 0; i < n; i++)
            v[i] = r->samples[i].pools[k].kv_usage;
        char id[32];
        snprintf(id, sizeof id, "kv.%d", k);
        rp_chart_line(c, id, r->pools[k].name, POOL_COLOR(k), s->t, v, n, 0);
    }
    rp_chart_end(c, o);
    panel_close(o);

    panel_open(o, "Sequences running and waiting (LLM pools)",
               "Solid: running in the replicas' batches; dashed: waiting for admission; both at "
               "each interval's end.");
    c = rp_chart_new(ax, 110, 0, rp_nice_ceil(max_seqs > 0 ? max_seqs * 1.05 : 1), RP_UNIT_NUM,
                     "running and waiting sequences per LLM pool");
    fault_marks(c, r);
    for (int k = 0; k < r->n_pools; k++) {
        if (!r->pools[k].llm)
            continue;
        char id[32], lab[300];
        for (size_t i = 0; i < n; i++)
            v[i] = r->samples[i].pools[k].running;
        snprintf(id, sizeof id, "running.%d", k);
        snprintf(lab, sizeof lab, "%s running", r->pools[k].name);
        rp_chart_line(c, id, lab, POOL_COLOR(k), s->t, v, n, 0);
        for (size_t i = 0; i < n; i++)
            v[i] = r->samples[i].pools[k].waiting;
        snprintf(id, sizeof id, "waiting.%d", k);
        snprintf(lab, sizeof lab, "%s waiting", r->pools[k].name);
        rp_chart_line(c, id, lab, POOL_COLOR(k), s->t, v, n, 1);
    }
    rp_chart_end(c, o);
    panel_close(o);
    free(v);
}

static void charts(rp_buf *o, const rp_results *r, const series *s, const rp_axis *ax)
{
    size_t n = s->n;
    /* traffic */
    double top = rp_nice_ceil(fmax(fmax(s->max_offered, s->max_served),
                                   s->has_capacity ? s->max_capacity : 0) * 1.05);
    panel_open(o, "Traffic: offered vs served (req/s)",
               s->has_capacity ? "Capacity: ready nodes x one node's throughput at full batches."
                               : NULL);
    rp_chart *c = rp_chart_new(ax, 170, 0, top, RP_UNIT_NUM, "offered and served requests per second");
    fault_marks(c, r);
    rp_chart_line(c, "served", "served (completed)", "#1f6feb", s->t, s->served, n, 0);
    /* on top, dashed: where everything is served the two lines coincide */
    rp_chart_line(c, "offered", "offered", "#57606a", s->t, s->offered, n, 1);
    if (s->has_capacity)
        rp_chart_line(c, "capacity", "capacity", "#2da44e", s->t, s->capacity, n, 1);
    rp_chart_end(c, o);
    panel_close(o);

    /* latency: scaled to the data, so a 67 ms p99 is not flattened by a 1 s
     * SLO; the SLO line is drawn when it is within 3 times the data's top,
     * else named above the chart */
    double slo = r->slo_latency_p99_s, lat_top = s->max_p99 > 0 ? s->max_p99 : 0;
    if (slo > 0 && (slo <= 3 * lat_top || !(lat_top > 0)))
        lat_top = fmax(lat_top, slo);
    panel_open(o, "Latency of completed requests", NULL);
    c = rp_chart_new(ax, 150, 0, rp_nice_ceil(lat_top > 0 ? lat_top * 1.05 : 1), RP_UNIT_S,
                     "latency p50 and p99");
    fault_marks(c, r);
    rp_chart_line(c, "p50", "p50", "#1f6feb", s->t, s->p50, n, 0);
    rp_chart_line(c, "p99", "p99", "#bf3989", s->t, s->p99, n, 0);
    if (r->slo_latency_p99_s > 0) {
        char lab[64], v[32];
        rp_fmt_latency(v, sizeof v, r->slo_latency_p99_s);
        snprintf(lab, sizeof lab, "SLO p99 %s", v);
        rp_chart_hline(c, r->slo_latency_p99_s, lab, C_SLO);
    }
    rp_chart_end(c, o);
    panel_close(o);

    /* errors */
    panel_open(o, "Errors by kind (req/s)", s->max_err > 0 ? NULL : "No errors in this run.");
    c = rp_chart_new(ax, 110, 0, rp_nice_ceil(s->max_err > 0 ? s->max_err * 1.05 : 1), RP_UNIT_NUM,
                     "errors per second by kind");
    fault_marks(c, r);
    const char *labels[] = { "503 rejected (queue full)", "502 failed", "504 timed out" };
    const char *colors[] = { "#e8a33d", "#cf222e", "#8250df" };
    const double *ys[] = { s->rej, s->fail, s->tout };
    rp_chart_stack(c, "errors", 3, labels, colors, s->t, ys, n);
    rp_chart_end(c, o);
    panel_close(o);

    /* replicas and queues, per pool */
    double *v = malloc(sizeof *v * (n ? n : 1)), *hi = malloc(sizeof *hi * (n ? n : 1));
    int max_rep = 1;
    double max_q = 0;
    for (size_t i = 0; i < n; i++)
        for (int k = 0; k < r->n_pools; k++) {
            const rp_pool_sample *ps = &r->samples[i].pools[k];
            max_rep = ps->replicas + ps->starting > max_rep ? ps->replicas + ps->starting : max_rep;
            max_q = fmax(max_q, ps->queue_depth);
        }
    panel_open(o, "Replicas per pool", "Solid: ready nodes; shaded: starting (not yet ready).");
    c = rp_chart_new(ax, 110, 0, rp_nice_ceil(max_rep * 1.15), RP_UNIT_NUM, "replicas per pool");
    fault_marks(c, r);
    for (int k = 0; k < r->n_pools; k++) {
        int any_starting = 0;
        for (size_t i = 0; i < n; i++) {
            v[i] = r->samples[i].pools[k].replicas;
            hi[i] = v[i] + r->samples[i].pools[k].starting;
            any_starting |= r->samples[i].pools[k].starting > 0;
        }
        char id[32], lab[300];
        snprintf(id, sizeof id, "replicas.%d", k);
        if (any_starting) {
            snprintf(lab, sizeof lab, "%s starting", r->pools[k].name);
            rp_chart_range(c, id, lab, POOL_COLOR(k), s->t, v, hi, n);
        }
        rp_chart_line(c, id, r->pools[k].name, POOL_COLOR(k), s->t, v, n, 0);
    }
    for (size_t i = 0; i < r->n_scaling; i++) {
        char lab[400];
        snprintf(lab, sizeof lab, "scale %s %d -> %d%s%s", r->scaling[i].pool, r->scaling[i].from,
                 r->scaling[i].to, r->scaling[i].reason ? ": " : "",
                 r->scaling[i].reason ? r->scaling[i].reason : "");
        rp_chart_marker(c, r->scaling[i].t_s, "#6e7781", lab);
        snprintf(lab, sizeof lab, "%s %d\xE2\x86\x92%d", r->scaling[i].pool, r->scaling[i].from,
                 r->scaling[i].to);
        rp_chart_tag(c, r->scaling[i].t_s, 1, lab, "#57606a");
    }
    rp_chart_end(c, o);
    panel_close(o);

    panel_open(o, "Queue depth (requests waiting at the balancer and nodes)", NULL);
    c = rp_chart_new(ax, 110, 0, rp_nice_ceil(max_q > 0 ? max_q * 1.05 : 1), RP_UNIT_NUM,
                     "queue depth per pool");
    fault_marks(c, r);
    for (int k = 0; k < r->n_pools; k++) {
        for (size_t i = 0; i < n; i++)
            v[i] = r->samples[i].pools[k].queue_depth;
        char id[32];
        snprintf(id, sizeof id, "queue.%d", k);
        rp_chart_line(c, id, r->pools[k].name, POOL_COLOR(k), s->t, v, n, 0);
    }
    rp_chart_end(c, o);
    panel_close(o);
    free(v);
    free(hi);
    llm_charts(o, r, s, ax);

    double *t0s = malloc(sizeof *t0s * (n ? n : 1));
    for (size_t i = 0; i < n; i++)
        t0s[i] = r->samples[i].t_s;
    utilisation_heatmap(o, r, ax, t0s);
    free(t0s);
    alert_timeline(o, r, ax);
}

/* ---------- tables ---------- */

/* Table head; the first `left` columns are text, aligned left. */
static void th(rp_buf *o, const char *const *cols, int n, int left)
{
    rp_buf_puts(o, "<table><thead><tr>");
    for (int i = 0; i < n; i++) {
        rp_buf_puts(o, i < left ? "<th class=\"l\">" : "<th>");
        rp_buf_esc(o, cols[i]);
        rp_buf_puts(o, "</th>");
    }
    rp_buf_puts(o, "</tr></thead><tbody>\n");
}

static void td(rp_buf *o, const char *cls, const char *text)
{
    if (cls)
        rp_buf_printf(o, "<td class=\"%s\">", cls);
    else
        rp_buf_puts(o, "<td>");
    rp_buf_esc(o, text);
    rp_buf_puts(o, "</td>");
}

static void td_count(rp_buf *o, double v)
{
    char b[48];
    rp_fmt_count(b, sizeof b, v);
    td(o, NULL, b);
}

static void td_num(rp_buf *o, const char *fmt, double v)
{
    char b[64];
    snprintf(b, sizeof b, fmt, v);
    td(o, NULL, b);
}

static void pools_table(rp_buf *o, const rp_results *r)
{
    char cost[32];
    snprintf(cost, sizeof cost, "cost (%s)", rp_currency(r));
    const char *const cols[] = { "pool", "nodes", "GPUs/node", "node capacity", "utilisation",
                                 "requests", "completed", "503", "502", "504", "GPU-hours",
                                 "energy", cost };
    th(o, cols, 13, 1);
    for (int k = 0; k < r->n_pools; k++) {
        const rp_pool *p = &r->pools[k];
        char b[64];
        rp_buf_puts(o, "<tr>");
        td(o, "l", p->name);
        if (p->replicas_min == p->replicas_max)
            snprintf(b, sizeof b, "%d", p->replicas_max);
        else
            snprintf(b, sizeof b, "%d\xE2\x80\x93%d", p->replicas_min, p->replicas_max);
        td(o, NULL, b);
        td_num(o, "%.0f", p->gpus_per_node);
        if (p->node_capacity_qps > 0)
            td_num(o, "%.0f req/s", p->node_capacity_qps);
        else
            td(o, NULL, "\xE2\x80\x93");
        fmt_pct(b, sizeof b, p->utilization);
        td(o, NULL, b);
        td_count(o, (double)p->counts.generated);
        td_count(o, (double)p->counts.completed);
        td_count(o, (double)p->counts.rejected);
        td_count(o, (double)p->counts.failed);
        td_count(o, (double)p->counts.timed_out);
        td_num(o, "%.1f", p->gpu_hours);
        td_num(o, "%.2f kWh", p->energy_kwh);
        td_num(o, "%.2f", p->cost);
        rp_buf_puts(o, "</tr>\n");
    }
    rp_buf_puts(o, "</tbody></table>\n");
}

/* One LLM target against a pool's value: a row of the SLO table, and
 * whether it holds (value NAN: nothing finished, so it cannot hold). */
static int slo_row(rp_buf *o, const char *what, const char *target, double value,
                   const char *shown, int at_most, double limit)
{
    int met = !isnan(value) && (at_most ? value <= limit : value >= limit);
    rp_buf_puts(o, "<tr>");
    td(o, "l", what);
    td(o, NULL, target);
    td(o, NULL, shown);
    rp_buf_printf(o, "<td class=\"%s\">%s</td></tr>\n", met ? "best" : "bad",
                  met ? "met" : "missed");
    return met;
}

/* An LLM pool's token metrics (summary.json's pools.<name>.llm): cards for
 * the SLO's quantities and the costs, the latency distributions, and the
 * verdict on each LLM target of the scenario's slo. */
static void llm_pool_section(rp_buf *o, const rp_results *r, const rp_pool *p)
{
    const rp_llm *l = p->llm;
    char v[96], d[200], a[48], b[48];
    double span = r->sim_time_s - r->warmup_s;
    double good = l->finished ? (double)l->good / (double)l->finished : 0;
    rp_buf_puts(o, "<h3>");
    rp_buf_esc(o, p->name);
    rp_buf_puts(o, "</h3>\n<p class=\"meta\">");
    rp_buf_esc(o, l->gpu ? l->gpu : "");
    rp_buf_printf(o, " &middot; %s parallel %d, %d replica%s per node &middot; %ld KV "
                     "blocks of %d tokens per replica (%.0f KiB a token) &middot; weights "
                     "%.1f GB a replica &middot; budget %d tokens, at most %d sequences a step "
                     "&middot; %lu steps</p>\n",
                  l->expert_parallel > 1 ? "expert" : "tensor",
                  l->expert_parallel > 1 ? l->expert_parallel : l->tensor_parallel, l->replicas_per_node, l->replicas_per_node == 1 ? "" : "s",
                  l->kv_blocks_per_replica, l->block_size, l->kv_bytes_per_token / 1024,
                  l->weight_bytes / 1e9, l->max_num_batched_tokens, l->max_num_seqs, l->steps);
    if (l->decode_pool) {
        rp_buf_puts(o, "<p class=\"meta\">prefill pool &middot; KV caches to ");
        rp_buf_esc(o, l->decode_pool);
        rp_buf_puts(o, " (router ");
        rp_buf_esc(o, l->decode_router ? l->decode_router : "");
        rp_fmt_latency(a, sizeof a, l->kv_transfer_s.mean);
        rp_fmt_latency(b, sizeof b, l->kv_transfer_s.p99);
        rp_buf_printf(o, "): %lu transfers of %.1f MB on average, %s mean, %s p99, %lu failed, "
                         "%lu failed before starting; "
                         "the latencies below count each request from its send to its last token, "
                         "made on its decode replica</p>\n",
                      l->kv_transfers,
                      l->kv_transfers ? l->kv_transfer_bytes / (double)l->kv_transfers / 1e6 : 0,
                      a, b, l->kv_transfers_failed, l->kv_transfers_unstarted);
    }
    if (l->role && strcmp(l->role, "decode") == 0) {
        rp_buf_printf(o, "<p class=\"meta\">decode pool: %.1f output tokens/s; its requests' "
                         "TTFT, TPOT, E2E and goodput are shown at their prefill pool</p>\n",
                      l->output_tps);
        return;
    }

    rp_buf_puts(o, "<section class=\"cards\">\n");
    const struct {
        const char *key;
        const rp_latency *lat;
        double slo;
    } lats[] = { { "TTFT p99", &l->ttft, r->slo_ttft_p99_s },
                 { "TPOT p99", &l->tpot, r->slo_tpot_p99_s },
                 { "E2E p99", &l->e2e, r->slo_e2e_p99_s } };
    for (size_t i = 0; i < sizeof lats / sizeof lats[0]; i++) {
        rp_fmt_latency(v, sizeof v, lats[i].lat->p99);
        rp_fmt_latency(a, sizeof a, lats[i].lat->p50);
        if (lats[i].slo > 0) {
            rp_fmt_latency(b, sizeof b, lats[i].slo);
            snprintf(d, sizeof d, "SLO %s \xC2\xB7 p50 %s", b, a);
        } else {
            snprintf(d, sizeof d, "p50 %s", a);
        }
        card(o, lats[i].slo > 0 ? (l->finished && lats[i].lat->p99 <= lats[i].slo ? "ok" : "bad")
                                : NULL,
             lats[i].key, v, d);
    }
    fmt_pct(v, sizeof v, good);
    if (r->slo_goodput > 0) {
        fmt_pct(a, sizeof a, r->slo_goodput);
        snprintf(d, sizeof d, "SLO %s \xC2\xB7 %.2f req/s within every target", a,
                 span > 0 ? (double)l->good / span : 0);
    } else {
        snprintf(d, sizeof d, "%.2f req/s within every target", span > 0 ? (double)l->good / span : 0);
    }
    card(o, r->slo_goodput > 0 ? (l->finished && good >= r->slo_goodput ? "ok" : "bad") : NULL,
         "goodput", v, d);
    snprintf(v, sizeof v, "%.1f tok/s", l->output_tps);
    rp_fmt_count(a, sizeof a, l->output_tokens);
    snprintf(d, sizeof d, "%s output tokens", a);
    card(o, NULL, "output tokens", v, d);
    snprintf(v, sizeof v, "%.1f tok/s", l->input_tps);
    rp_fmt_count(a, sizeof a, l->input_tokens);
    snprintf(d, sizeof d, "%s prompt tokens", a);
    card(o, NULL, "input tokens", v, d);
    snprintf(v, sizeof v, "%.3f", l->cost_per_mtok);
    snprintf(d, sizeof d, "pool cost %.2f %s over the run", p->cost, rp_currency(r));
    card(o, NULL, "cost / M output tokens", v, d);
    fmt_pct(v, sizeof v, l->kv_usage_mean);
    fmt_pct(a, sizeof a, l->kv_usage_max);
    snprintf(d, sizeof d, "mean \xC2\xB7 max %s", a);
    card(o, NULL, "KV cache", v, d);
    rp_fmt_count(v, sizeof v, (double)l->preemptions);
    card(o, l->preemptions ? "bad" : NULL, "preemptions", v, "by recompute");
    if (l->prefix_queries > 0) {
        fmt_pct(v, sizeof v, (double)l->prefix_hits / (double)l->prefix_queries);
        rp_fmt_count(a, sizeof a, (double)l->prefix_hits);
        rp_fmt_count(b, sizeof b, (double)l->prefix_queries);
        snprintf(d, sizeof d, "%s of %s prompt tokens", a, b);
    } else {
        snprintf(v, sizeof v, "\xE2\x80\x93");
        snprintf(d, sizeof d, "no prompt looked up");
    }
    card(o, NULL, "prefix cache hits", v, d);
    rp_buf_puts(o, "</section>\n");

    static const char *const cols[] = { "latency", "mean", "p50", "p90", "p99", "p99.9", "max" };
    th(o, cols, 7, 1);
    const struct {
        const char *name;
        const rp_latency *lat;
    } rows[] = { { "TTFT (first token \xE2\x88\x92 arrival)", &l->ttft },
                 { "TPOT ((last \xE2\x88\x92 first) / (tokens \xE2\x88\x92 1))", &l->tpot },
                 { "ITL (between tokens)", &l->itl },
                 { "E2E (last token \xE2\x88\x92 arrival)", &l->e2e } };
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        const rp_latency *x = rows[i].lat;
        double q[] = { x->mean, x->p50, x->p90, x->p99, x->p999, x->max };
        rp_buf_puts(o, "<tr>");
        td(o, "l", rows[i].name);
        for (int k = 0; k < 6; k++) {
            rp_fmt_latency(v, sizeof v, q[k]);
            td(o, NULL, v);
        }
        rp_buf_puts(o, "</tr>\n");
    }
    rp_buf_puts(o, "</tbody></table>\n");
    rp_buf_printf(o, "<p class=\"meta\">%lu requests finished in time after warm-up; TPOT "
                     "counts those of two tokens or more.</p>\n",
                  l->finished);

    if (r->slo_ttft_p99_s <= 0 && r->slo_tpot_p99_s <= 0 && r->slo_e2e_p99_s <= 0 &&
        r->slo_goodput <= 0)
        return;
    static const char *const scols[] = { "LLM target", "target", "this pool", "verdict" };
    th(o, scols, 4, 1);
    int all = 1;
    const struct {
        const char *name;
        double slo, value;
    } ts[] = { { "TTFT p99", r->slo_ttft_p99_s, l->ttft.p99 },
               { "TPOT p99", r->slo_tpot_p99_s, l->tpot.p99 },
               { "E2E p99", r->slo_e2e_p99_s, l->e2e.p99 } };
    for (size_t i = 0; i < sizeof ts / sizeof ts[0]; i++) {
        if (ts[i].slo <= 0)
            continue;
        char t[48];
        rp_fmt_latency(a, sizeof a, ts[i].slo);
        snprintf(t, sizeof t, "\xE2\x89\xA4 %s", a);
        rp_fmt_latency(b, sizeof b, ts[i].value);
        all &= slo_row(o, ts[i].name, t, l->finished ? ts[i].value : NAN, b, 1, ts[i].slo);
    }
    if (r->slo_goodput > 0) {
        char t[48];
        fmt_pct(a, sizeof a, r->slo_goodput);
        snprintf(t, sizeof t, "\xE2\x89\xA5 %s", a);
        fmt_pct(b, sizeof b, good);
        all &= slo_row(o, "goodput", t, l->finished ? good : NAN, b, 0, r->slo_goodput);
    }
    rp_buf_puts(o, "</tbody></table>\n");
    rp_buf_printf(o, "<p class=\"meta\">LLM targets %s for this pool.</p>\n",
                  all ? "met" : "missed");
}

static void llm_section(rp_buf *o, const rp_results *r)
{
    if (!any_llm(r))
        return;
    rp_buf_puts(o, "<h2>LLM serving (after warm-up)</h2>\n");
    for (int k = 0; k < r->n_pools; k++)
        if (r->pools[k].llm)
            llm_pool_section(o, r, &r->pools[k]);
}

static void classes_table(rp_buf *o, const rp_results *r)
{
    if (r->n_classes <= 0)
        return;
    rp_buf_puts(o, "<h3>Per traffic class (after warm-up)</h3>\n");
    static const char *const cols[] = { "class", "pool", "requests", "completed", "503", "502",
                                        "504", "availability", "p50", "p99", "p99.9" };
    th(o, cols, 11, 2);
    for (int i = 0; i < r->n_classes; i++) {
        const rp_class *c = &r->classes[i];
        char b[64];
        rp_buf_puts(o, "<tr>");
        td(o, "l", c->name);
        td(o, "l", c->pool ? c->pool : "");
        td_count(o, (double)c->counts.generated);
        td_count(o, (double)c->counts.completed);
        td_count(o, (double)c->counts.rejected);
        td_count(o, (double)c->counts.failed);
        td_count(o, (double)c->counts.timed_out);
        unsigned long fin = c->counts.completed + c->counts.rejected + c->counts.failed +
                            c->counts.timed_out;
        fmt_pct(b, sizeof b, fin ? (double)c->counts.completed / (double)fin : 1);
        td(o, NULL, b);
        rp_fmt_latency(b, sizeof b, c->latency_s.p50);
        td(o, NULL, b);
        rp_fmt_latency(b, sizeof b, c->latency_s.p99);
        td(o, NULL, b);
        rp_fmt_latency(b, sizeof b, c->latency_s.p999);
        td(o, NULL, b);
        rp_buf_puts(o, "</tr>\n");
    }
    rp_buf_puts(o, "</tbody></table>\n");
}

/* Pipeline caches and queues, and the L7 balancers of a two-tier front end. */
static void dependencies_table(rp_buf *o, const rp_results *r)
{
    if (r->n_caches > 0) {
        rp_buf_puts(o, "<h3>Caches</h3>\n");
        static const char *const cols[] = { "cache", "lookups", "hits", "hit ratio" };
        th(o, cols, 4, 1);
        for (int i = 0; i < r->n_caches; i++) {
            const rp_cache *c = &r->caches[i];
            unsigned long n = c->hits + c->misses;
            char b[64];
            rp_buf_puts(o, "<tr>");
            td(o, "l", c->name);
            td_count(o, (double)n);
            td_count(o, (double)c->hits);
            fmt_pct(b, sizeof b, n ? (double)c->hits / (double)n : 0);
            td(o, NULL, b);
            rp_buf_puts(o, "</tr>\n");
        }
        rp_buf_puts(o, "</tbody></table>\n");
    }
    if (r->n_queues > 0) {
        rp_buf_puts(o, "<h3>Queues</h3>\n");
        static const char *const cols[] = { "queue", "consumer", "published", "delivered",
                                            "refused", "processed", "lost", "lag p99",
                                            "backlog max", "backlog at end" };
        th(o, cols, 10, 2);
        for (int i = 0; i < r->n_queues; i++) {
            const rp_queue *q = &r->queues[i];
            rp_buf_puts(o, "<tr>");
            td(o, "l", q->name);
            td(o, "l", q->consumer);
            td_count(o, (double)q->published);
            td_count(o, (double)q->delivered);
            td_count(o, (double)q->refused);
            td_count(o, (double)q->processed);
            td_count(o, (double)q->lost);
            char b[64];
            rp_fmt_latency(b, sizeof b, q->lag_s.p99);
            td(o, NULL, b);
            td_count(o, q->backlog_max);
            td_count(o, q->backlog_at_end);
            rp_buf_puts(o, "</tr>\n");
        }
        rp_buf_puts(o, "</tbody></table>\n");
    }
    if (r->n_balancers > 0) {
        rp_buf_puts(o, "<h3>L7 balancers</h3>\n");
        static const char *const cols[] = { "balancer", "connections", "refused while down" };
        th(o, cols, 3, 1);
        for (int i = 0; i < r->n_balancers; i++) {
            rp_buf_puts(o, "<tr>");
            td(o, "l", r->balancers[i].name);
            td_count(o, (double)r->balancers[i].routed);
            td_count(o, (double)r->balancers[i].refused);
            rp_buf_puts(o, "</tr>\n");
        }
        rp_buf_puts(o, "</tbody></table>\n");
    }
}

static void alerts_table(rp_buf *o, const rp_results *r)
{
    if (r->n_alerts == 0)
        return;
    rp_buf_puts(o, "<h2>Alerts</h2>\n");
    static const char *const cols[] = { "alert", "severity", "receiver", "pending", "firing",
                                        "resolved", "notified", "pending \xE2\x86\x92 firing",
                                        "summary" };
    th(o, cols, 9, 3);
    for (size_t i = 0; i < r->n_alerts; i++) {
        const rp_alert *a = &r->alerts[i];
        char b[64];
        rp_buf_puts(o, "<tr>");
        td(o, "l", a->name);
        td(o, "l", a->severity ? a->severity : "");
        td(o, "l", a->receiver ? a->receiver : "");
        double ts[] = { a->pending_at, a->firing_at, a->resolved_at, a->notified_at };
        for (int k = 0; k < 4; k++) {
            fmt_when(b, sizeof b, ts[k], r);
            td(o, NULL, b);
        }
        if (!isnan(a->pending_at) && !isnan(a->firing_at))
            td_num(o, "%.0f s", a->firing_at - a->pending_at);
        else
            td(o, NULL, "\xE2\x80\x93");
        td(o, "wrap", a->summary ? a->summary : "");
        rp_buf_puts(o, "</tr>\n");
    }
    rp_buf_puts(o, "</tbody></table>\n");
}

static void scaling_table(rp_buf *o, const rp_results *r)
{
    if (r->n_scaling == 0)
        return;
    rp_buf_puts(o, "<h2>Scaling events</h2>\n");
    static const char *const cols[] = { "time", "pool", "from", "to", "reason" };
    th(o, cols, 5, 2);
    for (size_t i = 0; i < r->n_scaling; i++) {
        const rp_scaling *e = &r->scaling[i];
        char b[64];
        rp_buf_puts(o, "<tr>");
        fmt_when(b, sizeof b, e->t_s, r);
        td(o, "l", b);
        td(o, "l", e->pool);
        td_num(o, "%.0f", e->from);
        td_num(o, "%.0f", e->to);
        td(o, "wrap", e->reason ? e->reason : "");
        rp_buf_puts(o, "</tr>\n");
    }
    rp_buf_puts(o, "</tbody></table>\n");
}

/* A chaos experiment's steady-state hypotheses: each one's verdict and
 * the windows that broke it. */
static void hypotheses_table(rp_buf *o, const rp_results *r)
{
    if (r->n_hypotheses == 0)
        return;
    rp_buf_puts(o, "<h2>Steady-state hypothesis</h2>\n");
    static const char *const cols[] = { "hypothesis", "verdict", "windows that broke it" };
    th(o, cols, 3, 1);
    for (size_t i = 0; i < r->n_hypotheses; i++) {
        const rp_hypothesis *h = &r->hypotheses[i];
        rp_buf_puts(o, "<tr>");
        td(o, "l", h->text);
        rp_buf_printf(o, "<td class=\"%s\">%s</td>", h->met ? "ok" : "bad",
                      h->met ? "holds" : "fails");
        rp_buf_puts(o, "<td class=\"wrap\">");
        int shown = 0;
        for (size_t w = 0; w < h->n_windows; w++) {
            const rp_window *x = &h->windows[w];
            if (x->met)
                continue;
            char a[64], b[64];
            fmt_when(a, sizeof a, x->start_s, r);
            fmt_when(b, sizeof b, x->end_s, r);
            rp_buf_printf(o, "%s%s \xE2\x80\x93 %s: %.6g", shown++ ? "<br>" : "", a, b, x->value);
        }
        if (!shown)
            rp_buf_puts(o, "\xE2\x80\x93");
        rp_buf_puts(o, "</td></tr>\n");
    }
    rp_buf_puts(o, "</tbody></table>\n");
}

static void faults_table(rp_buf *o, const rp_results *r)
{
    if (r->n_faults == 0)
        return;
    rp_buf_puts(o, "<h2>Faults and what they caused</h2>\n");
    static const char *const cols[] = { "fault", "target", "start", "end", "502", "504", "503",
                                        "share of errors", "detail" };
    th(o, cols, 9, 2);
    for (size_t i = 0; i < r->n_faults; i++) {
        const rp_fault *f = &r->faults[i];
        char b[64];
        rp_buf_puts(o, "<tr>");
        td(o, "l", f->kind);
        td(o, "l", f->target ? f->target : "");
        fmt_when(b, sizeof b, f->start_s, r);
        td(o, NULL, b);
        if (isnan(f->end_s))
            td(o, NULL, "still active");
        else {
            fmt_when(b, sizeof b, f->end_s, r);
            td(o, NULL, b);
        }
        td_count(o, (double)f->failed);
        td_count(o, (double)f->timed_out);
        td_count(o, (double)f->rejected);
        if (isnan(f->error_share))
            td(o, NULL, "\xE2\x80\x93");
        else {
            fmt_pct(b, sizeof b, f->error_share);
            td(o, NULL, b);
        }
        td(o, "wrap", f->detail ? f->detail : "");
        rp_buf_puts(o, "</tr>\n");
    }
    rp_buf_puts(o, "</tbody></table>\n");
}

static void events_table(rp_buf *o, const rp_results *r)
{
    if (r->n_events == 0)
        return;
    rp_buf_puts(o, "<h2>Events</h2>\n");
    static const char *const cols[] = { "time", "event", "subject", "detail" };
    th(o, cols, 4, 4);
    size_t shown = r->n_events < MAX_EVENT_ROWS ? r->n_events : MAX_EVENT_ROWS;
    for (size_t i = 0; i < shown; i++) {
        const rp_event *e = &r->events[i];
        char b[64];
        rp_buf_puts(o, "<tr>");
        fmt_when(b, sizeof b, e->t_s, r);
        td(o, "l", b);
        td(o, "l", e->type);
        td(o, "l", e->subject ? e->subject : "");
        td(o, "wrap", e->detail ? e->detail : "");
        rp_buf_puts(o, "</tr>\n");
    }
    rp_buf_puts(o, "</tbody></table>\n");
    if (shown < r->n_events)
        rp_buf_printf(o, "<p class=\"meta\">%zu more events in events.jsonl.</p>\n",
                      r->n_events - shown);
}

/* ---------- the page ---------- */

static void header(rp_buf *o, const rp_results *r, const rp_report_opts *opt, const series *s)
{
    int met = rp_slo_met(r);
    rp_buf_puts(o, "<header><h1>");
    rp_buf_esc(o, r->scenario);
    rp_buf_printf(o, "<span class=\"verdict %s\">%s</span>",
                  met < 0 ? "none" : met ? "ok" : "bad",
                  met < 0 ? "no SLO set" : met ? "SLO met" : "SLO missed");
    if (r->n_hypotheses > 0) /* a chaos experiment's verdict beside the SLO's */
        rp_buf_printf(o, " <span class=\"verdict %s\">%s</span>",
                      r->hypotheses_met == 1 ? "ok" : "bad",
                      r->hypotheses_met == 1 ? "hypothesis holds" : "hypothesis fails");
    rp_buf_puts(o, "</h1>\n");
    if (r->description) {
        rp_buf_puts(o, "<p class=\"sub\">");
        rp_buf_esc(o, r->description);
        rp_buf_puts(o, "</p>\n");
    }
    char dur[32], warm[32], iv[32];
    rp_fmt_time(dur, sizeof dur, r->sim_time_s, r->sim_time_s);
    rp_fmt_time(warm, sizeof warm, r->warmup_s, r->sim_time_s);
    snprintf(iv, sizeof iv, "%g s", r->interval_s);
    rp_buf_puts(o, "<p class=\"meta\">");
    if (opt && opt->scenario_path) {
        rp_buf_puts(o, "scenario <code>");
        rp_buf_esc(o, opt->scenario_path);
        rp_buf_puts(o, "</code> &middot; ");
    }
    rp_buf_printf(o, "seed %lu &middot; simulated %s (warm-up %s) &middot; time series every %s "
                     "&middot; ran in %.2f s wall &middot; ",
                  r->seed, dur, warm, iv, r->wall_time_s);
    if (r->has_clock) {
        char start[48], zone[16];
        rp_fmt_clock(start, sizeof start, 0, r->clock_start_s, r->utc_offset_s, 1, 0);
        rp_fmt_zone(zone, sizeof zone, r->utc_offset_s);
        rp_buf_printf(o, "started %s %s: times are wall-clock times, with the time since the "
                         "start (+h:mm:ss)</p>\n</header>\n", start, zone);
    } else {
        rp_buf_puts(o, "times are elapsed since the start of the run, h:mm:ss</p>\n</header>\n");
    }

    char v[64], d[160], a[32], b2[32], c2[32];
    rp_buf_puts(o, "<section class=\"cards\">\n");
    fmt_pct(v, sizeof v, r->availability);
    if (r->slo_availability > 0) {
        fmt_pct(a, sizeof a, r->slo_availability);
        snprintf(d, sizeof d, "SLO %s", a);
    } else {
        snprintf(d, sizeof d, "completed / finished");
    }
    card(o, r->slo_availability > 0 ? (r->availability >= r->slo_availability ? "ok" : "bad") : NULL,
         "availability", v, d);
    rp_fmt_latency(v, sizeof v, r->latency_s.p99);
    if (r->slo_latency_p99_s > 0) {
        rp_fmt_latency(a, sizeof a, r->slo_latency_p99_s);
        snprintf(d, sizeof d, "SLO %s", a);
    } else {
        snprintf(d, sizeof d, "completed requests");
    }
    card(o, r->slo_latency_p99_s > 0 ? (r->latency_s.p99 <= r->slo_latency_p99_s ? "ok" : "bad")
                                     : NULL,
         "latency p99", v, d);
    rp_fmt_latency(v, sizeof v, r->latency_s.p50);
    rp_fmt_latency(a, sizeof a, r->latency_s.mean);
    snprintf(d, sizeof d, "mean %s", a);
    card(o, NULL, "latency p50", v, d);
    rp_fmt_latency(v, sizeof v, r->latency_s.p999);
    rp_fmt_latency(a, sizeof a, r->latency_s.max);
    snprintf(d, sizeof d, "max %s", a);
    card(o, NULL, "latency p99.9", v, d);
    const rp_counts *m = &r->measured;
    rp_fmt_count(v, sizeof v, (double)(m->rejected + m->failed + m->timed_out));
    rp_fmt_count(a, sizeof a, (double)m->rejected);
    rp_fmt_count(b2, sizeof b2, (double)m->failed);
    rp_fmt_count(c2, sizeof c2, (double)m->timed_out);
    snprintf(d, sizeof d, "503: %s \xC2\xB7 502: %s \xC2\xB7 504: %s", a, b2, c2);
    card(o, m->rejected + m->failed + m->timed_out ? "bad" : "ok", "errors", v, d);
    snprintf(v, sizeof v, "%.1f req/s", r->throughput_qps);
    snprintf(d, sizeof d, "peak served %.0f, offered %.0f req/s", s->max_served, s->max_offered);
    card(o, NULL, "throughput", v, d);
    int k = rp_peak_interval(r);
    if (k >= 0 && r->n_samples > 1) { /* the busiest pool in the busiest interval */
        const rp_sample *ps = &r->samples[k];
        double u = -1;
        int at = -1;
        for (int i = 0; i < r->n_pools; i++) {
            double g = rp_busy_share(ps, i);
            if (!isnan(g) && g > u) {
                u = g;
                at = i;
            }
        }
        if (at >= 0) {
            snprintf(v, sizeof v, "%.1f%% busy", 100 * u);
            rp_fmt_latency(a, sizeof a, ps->p99_s);
            snprintf(d, sizeof d, "%s at %.0f req/s offered (from %.0f s), p99 %s", r->pools[at].name,
                     ps->offered_qps, ps->t_s, a);
            card(o, NULL, "peak", v, d);
        }
    }
    rp_fmt_count(v, sizeof v, (double)r->requests.generated);
    rp_fmt_count(a, sizeof a, (double)r->requests.completed);
    snprintf(d, sizeof d, "%s completed", a);
    card(o, NULL, "requests", v, d);
    snprintf(v, sizeof v, "%.1f", r->gpu_hours);
    snprintf(d, sizeof d, "cost %.2f %s", r->cost, rp_currency(r));
    card(o, NULL, "GPU-hours", v, d);
    snprintf(v, sizeof v, "%.2f kWh", r->energy_kwh);
    card(o, NULL, "energy", v, NULL);
    rp_buf_puts(o, "</section>\n");
}

void rp_report_html(const rp_results *r, const rp_report_opts *opt, rp_buf *o)
{
    char title[512];
    snprintf(title, sizeof title, "fleetsim: %s (seed %lu)", r->scenario ? r->scenario : "",
             r->seed);
    rp_html_open(o, title);
    series s;
    series_make(r, &s);
    header(o, r, opt, &s);
    llm_section(o, r);

    double f0, f1;
    if (rp_focus_window(r, &f0, &f1)) {
        char a[64], b[64], note[160];
        fmt_when(a, sizeof a, f0, r);
        fmt_when(b, sizeof b, f1, r);
        rp_buf_printf(o, "<h2>Peak window %s \xE2\x80\x93 %s</h2>\n", a, b);
        snprintf(note, sizeof note, "The busiest part of the run at full resolution (%g s "
                                    "intervals); the whole run follows.", r->interval_s);
        rp_buf_printf(o, "<p class=\"meta\">%s</p>\n", note);
        rp_axis zoom = rp_axis_make(f0, f1);
        if (r->has_clock)
            rp_axis_set_clock(&zoom, r->clock_start_s, r->utc_offset_s);
        charts(o, r, &s, &zoom);
    }
    rp_buf_puts(o, "<h2>Whole run</h2>\n");
    rp_axis ax = rp_axis_make(0, r->sim_time_s);
    if (r->has_clock)
        rp_axis_set_clock(&ax, r->clock_start_s, r->utc_offset_s);
    charts(o, r, &s, &ax);

    rp_buf_puts(o, "<h2>Pools</h2>\n");
    pools_table(o, r);
    classes_table(o, r);
    dependencies_table(o, r);
    alerts_table(o, r);
    scaling_table(o, r);
    hypotheses_table(o, r);
    faults_table(o, r);
    events_table(o, r);
    if (opt && opt->scenario_text) {
        rp_buf_puts(o, "<h2>Scenario</h2>\n<pre>");
        rp_buf_esc(o, opt->scenario_text);
        rp_buf_puts(o, "</pre>\n");
    }
    series_free(&s);
    rp_html_close(o);
}

int rp_write_report(const rp_results *r, const rp_report_opts *o, const char *path)
{
    rp_buf b = { 0 };
    rp_report_html(r, o, &b);
    int rc = rp_write_file(path, b.s, b.len);
    int e = errno;
    rp_buf_free(&b);
    errno = e;
    return rc;
}
