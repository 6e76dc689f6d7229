/*
 * run.c - `fleetsim run` and `fleetsim validate`, on the scenario main.c
 * loaded (CLI_SCENARIO). run checks that its results directory takes files,
 * simulates the scenario (a first Ctrl-C stops it and keeps what it has),
 * checks that every request is accounted for, and writes the directory:
 * summary.json, timeseries.csv, events.jsonl, availability.csv and
 * report.html; its exit status says which outcome it was (cli.h).
 * validate says what the scenario holds, and warns of rules that select
 * a series the scenario never exports, as a run would.
 */
#include "cli.h"
#include "engine.h"
#include "observe.h"
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
    obs_check_rules(sc);
    return 0;
}

/* What the report shows from the scenario itself: its description, the
 * file's text, and each pool's throughput at full batches. */
static void add_scenario_context(rp_results *r, const sc_scenario *sc)
{
    if (sc->description && !r->description)
        r->description = strdup(sc->description);
    r->has_clock = sc->has_start_time;
    r->clock_start_s = sc->start_epoch_s;
    r->utc_offset_s = sc->start_utc_offset_s;
    memcpy(r->currency, sc->currency, sizeof r->currency);
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

/* The results directory exists and takes files, before a long run is spent
 * on it. 0, or -1 after a message. */
static int check_out_dir(const char *dir)
{
    if (cli_mkdir_p(dir) != 0) {
        fprintf(stderr, "fleetsim: cannot create %s: %s\n", dir, strerror(errno));
        return -1;
    }
    if (access(dir, W_OK) != 0) {
        fprintf(stderr, "fleetsim: cannot write in %s: %s\n", dir, strerror(errno));
        return -1;
    }
    return 0;
}

int cli_run(const cli_ctx *x)
{
    const sc_scenario *sc = x->sc;
    if (x->promtool_test && sc->monitoring.n_rules == 0 && !sc->monitoring.slo_rules) {
        fprintf(stderr, "fleetsim: --promtool-test needs rules to test (monitoring.rules or "
                        "monitoring.slo_rules in the scenario)\n");
        return CLI_EXIT_INPUT;
    }
    char dir[4096];
    if (x->out_dir)
        snprintf(dir, sizeof dir, "%s", x->out_dir);
    else
        snprintf(dir, sizeof dir, "results/%s", sc->name);
    if (check_out_dir(dir) != 0)
        return CLI_EXIT_IO;
    const char *files[] = { x->trace_steps, x->openmetrics, x->promtool_test };
    for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
        FILE *f = files[i] ? fopen(files[i], "w") : NULL;
        if (files[i] && (!f || fclose(f) != 0)) {
            fprintf(stderr, "fleetsim: cannot write %s: %s\n", files[i], strerror(errno));
            return CLI_EXIT_IO;
        }
    }
    double requests = sc_expected_requests(sc);
    if (requests > 1e8 && !x->quiet) /* a long run says so at its start */
        fprintf(stderr,
                "fleetsim: about %.3g requests to simulate; at 1-7 us each (bench/RESULTS.md) "
                "that is %.0f-%.0f minutes of CPU. Ctrl-C stops it and keeps the results so far.\n",
                requests, requests * 1e-6 / 60, requests * 7e-6 / 60);
    /* a first Ctrl-C stops the run and keeps what it has; a second ends
     * the process at once */
    char series[4200];
    snprintf(series, sizeof series, "%s/series.txt", dir);
    sim_options opt = { .progress = !x->quiet && isatty(STDERR_FILENO),
                        .stop_on_sigint = 1,
                        .openmetrics_path = x->openmetrics, .promtool_test_path = x->promtool_test,
                        .trace_steps_path = x->trace_steps,
                        .series_path = x->series ? series : NULL };
    rp_results res;
    if (sim_run(sc, &opt, &res) != 0)
        return CLI_EXIT_INTERNAL;
    int conserved = 1;
    if (!rp_conserved(&res.requests)) {
        const rp_counts *c = &res.requests;
        fprintf(stderr,
                "fleetsim: request conservation broken: generated %lu != completed %lu + "
                "rejected %lu + failed %lu + timed out %lu + in flight %lu\n",
                c->generated, c->completed, c->rejected, c->failed, c->timed_out,
                c->in_flight_at_end);
        conserved = 0;
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
            conserved = 0;
        }
    add_scenario_context(&res, sc);
    int io_failed = res.alerting.export_failed;
    if (write_outputs(&res, dir) != 0 || write_report(&res, dir, x->scenario) != 0)
        io_failed = 1;
    if (!x->quiet) {
        rp_print_table(&res, stdout);
        printf("results in %s/\n", dir);
    }
    if (res.interrupted)
        fprintf(stderr, "fleetsim: interrupted at %.0f s of %.0f s simulated; partial results in "
                        "%s/\n",
                res.sim_time_s, sc->duration_s, dir);
    if (res.hypotheses_met == 0 && x->quiet) /* a chaos experiment failed: say so even when quiet */
        rp_print_hypotheses(&res, stderr);
    int slo_missed = x->fail_on_slo && !rp_slo_met(&res);
    if (slo_missed)
        fprintf(stderr, "fleetsim: the SLO was missed (--fail-on-slo)\n");
    int rc = !conserved                 ? CLI_EXIT_CONSERVATION
             : io_failed                ? CLI_EXIT_IO
             : res.interrupted          ? CLI_EXIT_INTERRUPTED
             : res.hypotheses_met == 0  ? CLI_EXIT_HYPOTHESIS
             : slo_missed               ? CLI_EXIT_SLO
                                        : CLI_EXIT_OK;
    rp_results_free(&res);
    return rc;
}
