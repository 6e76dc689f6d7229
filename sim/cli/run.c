/*
 * run.c - `fleetsim run` and `fleetsim validate`, on the scenario main.c
 * loaded (CLI_SCENARIO). run simulates it, checks that every request is
 * accounted for (exit 3 if not), and writes the results directory:
 * summary.json, timeseries.csv, events.jsonl, availability.csv and
 * report.html. validate says what the scenario holds.
 */
#include "cli.h"
#include "engine.h"
#include "report.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int cli_validate(const cli_ctx *x)
{
    const sc_scenario *sc = x->sc;
    int n_pipes = 0;
    for (int i = 0; i < sc->n_pipelines; i++)
        n_pipes += !sc->pipelines[i].implicit;
    printf("%s: ok (%d models, %d pools, %d traffic classes", x->scenario, sc->n_models,
           sc->n_pools, sc->n_traffic);
    if (n_pipes)
        printf(", %d pipeline%s", n_pipes, n_pipes > 1 ? "s" : "");
    if (sc->n_routes)
        printf(", %d route%s", sc->n_routes, sc->n_routes > 1 ? "s" : "");
    if (sc->lb.n_l7)
        printf(", %d L7 balancers behind an L4", sc->lb.n_l7);
    printf(")\n");
    return 0;
}

/* What the report shows from the scenario itself: its description, the
 * file's text, and each pool's throughput at full batches. */
static void add_scenario_context(rp_results *r, const sc_scenario *sc)
{
    if (sc->description && !r->description)
        r->description = strdup(sc->description);
    for (int k = 0; k < r->n_pools && k < sc->n_pools; k++) {
        const sc_pool *p = &sc->pools[k];
        const sc_model *m = &sc->models[p->model];
        int b = m->batch_max_size > 0 ? m->batch_max_size : 1;
        double mean_s = sc_model_mean_s(m, b);
        if (mean_s > 0)
            r->pools[k].node_capacity_qps = p->gpus_per_node * b / mean_s;
    }
}

static int write_report(const rp_results *r, const char *dir, const char *scenario_path)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/report.html", dir);
    char *text = cli_read_file(scenario_path);
    rp_report_opts o = { .scenario_path = scenario_path, .scenario_text = text };
    int rc = rp_write_report(r, &o, path);
    if (rc != 0)
        fprintf(stderr, "fleetsim: cannot write %s: %s\n", path, strerror(errno));
    free(text);
    return rc;
}

static int write_outputs(const rp_results *r, const char *dir)
{
    char path[4096];
    if (cli_mkdir_p(dir) != 0) {
        fprintf(stderr, "fleetsim: cannot create %s: %s\n", dir, strerror(errno));
        return -1;
    }
    struct {
        const char *file;
        int (*write)(const rp_results *, const char *);
    } outs[] = { { "summary.json", rp_write_summary },
                 { "timeseries.csv", rp_write_timeseries },
                 { "events.jsonl", rp_write_events },
                 { "availability.csv", rp_write_availability } };
    for (size_t i = 0; i < sizeof outs / sizeof outs[0]; i++) {
        snprintf(path, sizeof path, "%s/%s", dir, outs[i].file);
        if (outs[i].write(r, path) != 0) {
            fprintf(stderr, "fleetsim: cannot write %s: %s\n", path, strerror(errno));
            return -1;
        }
    }
    return 0;
}

int cli_run(const cli_ctx *x)
{
    const sc_scenario *sc = x->sc;
    if (x->promtool_test && sc->monitoring.n_rules == 0 && !sc->monitoring.slo_rules) {
        fprintf(stderr, "fleetsim: --promtool-test needs rules to test (monitoring.rules or "
                        "monitoring.slo_rules in the scenario)\n");
        return 2;
    }
    sim_options opt = { .progress = !x->quiet && isatty(STDERR_FILENO),
                        .openmetrics_path = x->openmetrics, .promtool_test_path = x->promtool_test,
                        .trace_steps_path = x->trace_steps };
    rp_results res;
    if (sim_run(sc, &opt, &res) != 0)
        return 1;
    int rc = 0;
    if (!rp_conserved(&res.requests)) {
        const rp_counts *c = &res.requests;
        fprintf(stderr,
                "fleetsim: request conservation broken: generated %lu != completed %lu + "
                "rejected %lu + failed %lu + timed out %lu + in flight %lu\n",
                c->generated, c->completed, c->rejected, c->failed, c->timed_out,
                c->in_flight_at_end);
        rc = 3;
    }
    /* every pool's stage counts too: what arrived there is what left it plus
     * what it still holds (counted where it is held) */
    for (int k = 0; k < res.n_pools; k++)
        if (!rp_conserved(&res.pools[k].counts)) {
            const rp_counts *c = &res.pools[k].counts;
            fprintf(stderr,
                    "fleetsim: request conservation broken in pool %s: arrived %lu != completed "
                    "%lu + rejected %lu + failed %lu + timed out %lu + held %lu\n",
                    res.pools[k].name, c->generated, c->completed, c->rejected, c->failed,
                    c->timed_out, c->in_flight_at_end);
            rc = 3;
        }
    if (res.alerting.export_failed && rc == 0)
        rc = 1;
    char dir[4096];
    if (x->out_dir)
        snprintf(dir, sizeof dir, "%s", x->out_dir);
    else
        snprintf(dir, sizeof dir, "results/%s", sc->name);
    add_scenario_context(&res, sc);
    if ((write_outputs(&res, dir) != 0 || write_report(&res, dir, x->scenario) != 0) && rc == 0)
        rc = 1;
    if (!x->quiet) {
        rp_print_table(&res, stdout);
        printf("results in %s/\n", dir);
    }
    if (res.hypotheses_met == 0) { /* a chaos experiment failed: say so even when quiet */
        if (x->quiet)
            rp_print_hypotheses(&res, stderr);
        if (rc == 0)
            rc = 1;
    }
    rp_results_free(&res);
    return rc;
}
