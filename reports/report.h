/*
 * report.h - report.html: one self-contained page per run (inline CSS and
 * SVG, no scripts, nothing fetched), for a screen in a capacity review and
 * for print. Header cards, charts on one shared time axis (and a zoom on the
 * peak when it is short against the run), tables, and the scenario echoed.
 * Sections for alerts, scaling events, faults, traffic classes, per-node
 * utilisation and LLM pools (token latencies, tokens per second, goodput,
 * KV cache, cost per million output tokens, the LLM targets' verdicts)
 * appear when the results hold that data.
 */
#ifndef FLEETSIM_REPORT_H
#define FLEETSIM_REPORT_H

#include "results.h"
#include "svg.h"

typedef struct {
    const char *scenario_path;   /* shown in the header; may be NULL */
    const char *scenario_text;   /* the scenario file, echoed escaped; may be NULL */
} rp_report_opts;

/* The page into out (appended). */
void rp_report_html(const rp_results *r, const rp_report_opts *o, rp_buf *out);
/* 0 on success, -1 with errno set. */
int rp_write_report(const rp_results *r, const rp_report_opts *o, const char *path);

/* Shared by the run and compare pages. */
void rp_html_open(rp_buf *out, const char *title);
void rp_html_close(rp_buf *out);
/* 1234567 -> "1,234,567" */
void rp_fmt_count(char *buf, size_t n, double v);
/* seconds -> "12.3 ms" / "2.41 s" */
void rp_fmt_latency(char *buf, size_t n, double s);
/* The span worth zooming on: where errors, SLO misses or the top half of the
 * offered load are; 0 when there is none or it covers most of the run. */
int rp_focus_window(const rp_results *r, double *t0_s, double *t1_s);
int rp_write_file(const char *path, const char *text, size_t len);

#endif
