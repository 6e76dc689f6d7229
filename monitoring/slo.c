/*
 * slo.c - multi-window, multi-burn-rate alerts for an SLO, as the Google SRE
 * workbook's "Alerting on SLOs" chapter recommends (its table of
 * parameters): page when 2% of a 30-day error budget burns in 1 hour
 * (burn rate 14.4 over 1h, confirmed over 5m) or 5% in 6 hours (6x over
 * 6h and 30m); open a ticket when 10% burns in 3 days (1x over 3d and 6h).
 * The short window makes the alert stop soon after the burn stops.
 *
 * The output is an ordinary Prometheus rule file: recording rules for the
 * error ratio over each window, and alerting rules comparing them, so the
 * same file can be deployed next to the user's own rules. The error ratio
 * is bad events over all events, or, where only good events are counted (a
 * latency SLI from a histogram bucket: requests within the threshold), one
 * minus good over all, as the workbook writes its latency SLO.
 */
#include "mon_internal.h"

#include <ctype.h>
#include <string.h>

static const struct {
    const char *long_w, *short_w;
    double burn;
    const char *kind, *severity;
} pairs[] = {
    { "1h", "5m", 14.4, "page", "critical" },
    { "6h", "30m", 6, "page", "critical" },
    { "3d", "6h", 1, "ticket", "warning" },
};

static const char *const windows[] = { "5m", "30m", "1h", "6h", "3d" };

static int valid_name(const char *s)
{
    if (!s || !*s)
        return 0;
    for (; *s; s++)
        if (!isalnum((unsigned char)*s) && *s != '_')
            return 0;
    return 1;
}

int mon_slo_write_rules(FILE *f, const mon_slo *slos, int n, mon_error *err)
{
    for (int i = 0; i < n; i++) {
        const mon_slo *o = &slos[i];
        if (!valid_name(o->name)) {
            mon_errf(err, "slo name \"%s\": use letters, digits and _", o->name ? o->name : "");
            return -1;
        }
        if (!(o->objective > 0 && o->objective < 1)) {
            mon_errf(err, "slo %s: objective %g must be between 0 and 1 (exclusive)", o->name, o->objective);
            return -1;
        }
        if (!o->errors == !o->good) {
            mon_errf(err, "slo %s: give either the errors or the good events' selector", o->name);
            return -1;
        }
        char expr[1024];
        snprintf(expr, sizeof expr, "rate(%s[5m]) / rate(%s[5m])", o->errors ? o->errors : o->good,
                 o->total);
        mon_error e;
        mon_expr *x = mon_expr_parse(expr, &e);
        if (!x) {
            mon_errf(err, "slo %s: %s/total selectors: %s", o->name, o->errors ? "errors" : "good",
                     e.msg);
            return -1;
        }
        mon_expr_free(x);
    }
    fputs("# Multi-window, multi-burn-rate SLO alerts (Google SRE workbook, \"Alerting on SLOs\"),\n"
          "# written by fleetsim. Deployable as a Prometheus rule file.\n"
          "groups:\n",
          f);
    for (int i = 0; i < n; i++) {
        const mon_slo *o = &slos[i];
        const char *by = o->by ? o->by : "";
        char agg[300];
        snprintf(agg, sizeof agg, "sum by (%s)", by);
        fprintf(f, "  - name: slo-%s\n    rules:\n", o->name);
        for (size_t w = 0; w < sizeof windows / sizeof windows[0]; w++) {
            fprintf(f, "      - record: slo:%s:error_ratio_rate%s\n", o->name, windows[w]);
            if (o->errors)
                fprintf(f, "        expr: %s (rate(%s[%s])) / %s (rate(%s[%s]))\n", agg, o->errors,
                        windows[w], agg, o->total, windows[w]);
            else
                fprintf(f, "        expr: 1 - (%s (rate(%s[%s])) / %s (rate(%s[%s])))\n", agg,
                        o->good, windows[w], agg, o->total, windows[w]);
            fprintf(f, "        labels:\n          slo: %s\n", o->name);
        }
        for (size_t p = 0; p < sizeof pairs / sizeof pairs[0]; p++) {
            fprintf(f, "      - alert: SLOErrorBudgetBurn\n");
            fprintf(f, "        expr: |\n");
            fprintf(f, "          slo:%s:error_ratio_rate%s > (%g * (1 - %.10g))\n", o->name,
                    pairs[p].long_w, pairs[p].burn, o->objective);
            fprintf(f, "          and\n");
            fprintf(f, "          slo:%s:error_ratio_rate%s > (%g * (1 - %.10g))\n", o->name,
                    pairs[p].short_w, pairs[p].burn, o->objective);
            /* slo tells the SLOs' alerts apart (promtool check rules
             * reports same-named rules with the same labels as duplicates) */
            fprintf(f, "        labels:\n");
            fprintf(f, "          slo: %s\n", o->name);
            fprintf(f, "          severity: %s\n", pairs[p].severity);
            fprintf(f, "          burn: %s\n", pairs[p].kind);
            fprintf(f, "          long_window: %s\n", pairs[p].long_w);
            fprintf(f, "          short_window: %s\n", pairs[p].short_w);
            fprintf(f, "        annotations:\n");
            fprintf(f, "          summary: \"SLO %s: error budget burning %gx too fast (%s and %s windows)\"\n",
                    o->name, pairs[p].burn, pairs[p].long_w, pairs[p].short_w);
            fprintf(f, "          description: \"%s over %s is {{ $value | humanizePercentage }} "
                       "against an objective of %.10g.\"\n",
                    o->what ? o->what : "Error ratio", pairs[p].long_w, o->objective);
        }
    }
    return ferror(f) ? -1 : 0;
}
