/*
 * test_results.c - the writers on hand-built results: every contract key of
 * summary.json with the right values, byte-identical output for identical
 * results, the conservation and SLO checks, the CSV's shape.
 */
#include "results.h"

#include <CUnit/Basic.h>
#include <cjson/cJSON.h>

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static void fill(rp_results *r)
{
    memset(r, 0, sizeof *r);
    r->scenario = strdup("unit");
    r->seed = 9;
    r->sim_time_s = 120;
    r->interval_s = 60;
    r->requests = (rp_counts){ 100, 90, 4, 3, 2, 1 };
    r->measured = (rp_counts){ 80, 75, 2, 1, 1, 1 };
    r->latency_s = (rp_latency){ 0.5, 0.4, 0.8, 1.2, 1.9, 2.0 };
    r->availability = 75.0 / 79.0;
    r->throughput_qps = 0.625;
    r->n_pools = 1;
    r->pools = calloc(1, sizeof *r->pools);
    r->pools[0] = (rp_pool){ .name = strdup("gpu&<x>"), .gpus_per_node = 4, .replicas_min = 2,
                             .replicas_max = 3, .utilization = 0.25, .gpu_hours = 0.5,
                             .energy_kwh = 0.1, .cost = 1.5 };
    r->gpu_hours = 0.5;
    r->energy_kwh = 0.1;
    r->cost = 1.5;
    r->n_samples = 2;
    r->samples = calloc(2, sizeof *r->samples);
    for (int i = 0; i < 2; i++) {
        r->samples[i].t_s = 60.0 * i;
        r->samples[i].completed = 45;
        r->samples[i].pools = calloc(1, sizeof(rp_pool_sample));
        r->samples[i].pools[0].replicas = 2 + i;
    }
    rp_add_event(r, 0, "run_start", "unit", NULL);
    rp_add_event(r, 120, "run_end", NULL, "quote \" and newline \n");
}

static char *slurp(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    static char buf[1 << 16];
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    buf[n] = '\0';
    fclose(f);
    return strdup(buf);
}

static void test_summary_keys_and_values(void)
{
    rp_results r;
    fill(&r);
    char path[] = "/tmp/fleetsim-summary-XXXXXX";
    int fd = mkstemp(path);
    close(fd);
    CU_ASSERT_EQUAL_FATAL(rp_write_summary(&r, path), 0);
    char *text = slurp(path);
    cJSON *j = cJSON_Parse(text);
    CU_ASSERT_PTR_NOT_NULL_FATAL(j);
    CU_ASSERT_STRING_EQUAL(cJSON_GetObjectItem(j, "scenario")->valuestring, "unit");
    CU_ASSERT_EQUAL(cJSON_GetObjectItem(j, "seed")->valuedouble, 9);
    cJSON *req = cJSON_GetObjectItem(j, "requests");
    CU_ASSERT_EQUAL(cJSON_GetObjectItem(req, "timed_out")->valuedouble, 2);
    CU_ASSERT_EQUAL(cJSON_GetObjectItem(req, "in_flight_at_end")->valuedouble, 1);
    CU_ASSERT_DOUBLE_EQUAL(cJSON_GetObjectItem(cJSON_GetObjectItem(j, "latency_s"), "p999")->valuedouble,
                           1.9, 1e-15);
    cJSON *pool = cJSON_GetObjectItem(cJSON_GetObjectItem(j, "pools"), "gpu&<x>");
    CU_ASSERT_PTR_NOT_NULL_FATAL(pool);
    CU_ASSERT_EQUAL(cJSON_GetObjectItem(pool, "replicas_max")->valuedouble, 3);
    CU_ASSERT_DOUBLE_EQUAL(cJSON_GetObjectItem(pool, "utilization")->valuedouble, 0.25, 0);
    CU_ASSERT_DOUBLE_EQUAL(cJSON_GetObjectItem(cJSON_GetObjectItem(j, "cost"), "energy_kwh")->valuedouble,
                           0.1, 0);
    CU_ASSERT(cJSON_IsArray(cJSON_GetObjectItem(j, "alerts")));
    CU_ASSERT(cJSON_IsArray(cJSON_GetObjectItem(j, "scaling_events")));
    CU_ASSERT(cJSON_IsArray(cJSON_GetObjectItem(j, "faults")));
    CU_ASSERT(cJSON_IsNull(cJSON_GetObjectItem(cJSON_GetObjectItem(j, "slo"), "met")));
    /* identical results -> identical bytes */
    CU_ASSERT_EQUAL(rp_write_summary(&r, path), 0);
    char *again = slurp(path);
    CU_ASSERT_STRING_EQUAL(text, again);
    free(again);
    free(text);
    cJSON_Delete(j);
    unlink(path);
    rp_results_free(&r);
}

static void test_conservation_and_slo(void)
{
    rp_counts ok = { 10, 5, 2, 1, 1, 1 }, bad = { 10, 5, 2, 1, 1, 0 };
    CU_ASSERT_TRUE(rp_conserved(&ok));
    CU_ASSERT_FALSE(rp_conserved(&bad));
    rp_results r;
    fill(&r);
    CU_ASSERT_EQUAL(rp_slo_met(&r), -1);
    r.slo_latency_p99_s = 1.5;
    CU_ASSERT_EQUAL(rp_slo_met(&r), 1);
    r.slo_latency_p99_s = 1.0; /* p99 is 1.2 */
    CU_ASSERT_EQUAL(rp_slo_met(&r), 0);
    r.slo_latency_p99_s = 0;
    r.slo_availability = 0.9; /* 0.949 */
    CU_ASSERT_EQUAL(rp_slo_met(&r), 1);
    r.slo_availability = 0.99;
    CU_ASSERT_EQUAL(rp_slo_met(&r), 0);
    rp_results_free(&r);
}

static void test_timeseries_and_events(void)
{
    rp_results r;
    fill(&r);
    char path[] = "/tmp/fleetsim-ts-XXXXXX";
    int fd = mkstemp(path);
    close(fd);
    CU_ASSERT_EQUAL_FATAL(rp_write_timeseries(&r, path), 0);
    char *csv = slurp(path);
    CU_ASSERT_PTR_NOT_NULL_FATAL(csv);
    CU_ASSERT_PTR_NOT_NULL(strstr(csv, "gpu&<x>.replicas\n"));
    CU_ASSERT_PTR_NOT_NULL(strstr(csv, "\n60.000000,0.000000,45,0,0,0,0,0,0,0.000000,3\n"));
    free(csv);
    CU_ASSERT_EQUAL_FATAL(rp_write_events(&r, path), 0);
    char *ev = slurp(path);
    /* one JSON object per line, strings escaped */
    CU_ASSERT_PTR_NOT_NULL(strstr(ev, "{\"t_s\":0,\"type\":\"run_start\",\"subject\":\"unit\"}\n"));
    CU_ASSERT_PTR_NOT_NULL(strstr(ev, "quote \\\" and newline \\n"));
    free(ev);
    unlink(path);
    rp_results_free(&r);
}

/* The peak interval: the most offered load after warm-up; its pool's busy
 * GPUs over the GPUs that could serve in it (6 of 3 x 4 = 50%). */
static void test_peak(void)
{
    rp_results r;
    fill(&r);
    r.samples[0].offered_qps = 9; /* the most, but in the warm-up */
    r.warmup_s = 60;
    r.samples[1].offered_qps = 7;
    r.samples[1].p99_s = 0.25;
    r.samples[1].rejected = 1;
    r.samples[1].failed = 2;
    r.samples[1].pools[0].busy_gpus = 6;
    r.samples[1].pools[0].serving_gpus = 12; /* 3 nodes x 4 GPUs */
    CU_ASSERT_EQUAL(rp_peak_interval(&r), 1);
    char path[] = "/tmp/fleetsim-peak-XXXXXX";
    int fd = mkstemp(path);
    close(fd);
    CU_ASSERT_EQUAL_FATAL(rp_write_summary(&r, path), 0);
    char *text = slurp(path);
    cJSON *j = cJSON_Parse(text);
    CU_ASSERT_PTR_NOT_NULL_FATAL(j);
    const cJSON *pk = cJSON_GetObjectItem(j, "peak");
    CU_ASSERT_DOUBLE_EQUAL(cJSON_GetObjectItem(pk, "t_s")->valuedouble, 60, 0);
    CU_ASSERT_DOUBLE_EQUAL(cJSON_GetObjectItem(pk, "offered_qps")->valuedouble, 7, 0);
    CU_ASSERT_DOUBLE_EQUAL(cJSON_GetObjectItem(pk, "errors")->valuedouble, 3, 0);
    CU_ASSERT_DOUBLE_EQUAL(cJSON_GetObjectItem(pk, "latency_p99_s")->valuedouble, 0.25, 0);
    const cJSON *pp = cJSON_GetObjectItem(cJSON_GetObjectItem(pk, "pools"), "gpu&<x>");
    CU_ASSERT_DOUBLE_EQUAL(cJSON_GetObjectItem(pp, "utilization")->valuedouble, 0.5, 1e-15);
    CU_ASSERT_DOUBLE_EQUAL(cJSON_GetObjectItem(pp, "replicas")->valuedouble, 3, 0);
    cJSON_Delete(j);
    free(text);
    FILE *f = fopen(path, "w");
    rp_print_table(&r, f);
    fclose(f);
    text = slurp(path);
    CU_ASSERT_PTR_NOT_NULL(strstr(text, "peak          60-120 s: 7.0 req/s offered, p99 250.0 ms, 3 errors\n"
                                        "  pool gpu&<x>   50.0 % busy (3 ready nodes)\n"));
    CU_ASSERT_PTR_NULL(strstr(text, "alerts"));
    free(text);
    /* the terminal table names the alerts that fired, in elapsed time */
    rp_alert fired = { .name = "NodeDown", .severity = "critical", .pending_at = 600,
                       .firing_at = 645, .resolved_at = 3725, .notified_at = NAN };
    rp_alert open = { .name = "HighLatency", .severity = "warning", .pending_at = 100,
                      .firing_at = 160, .resolved_at = NAN, .notified_at = NAN };
    rp_alert pend = { .name = "Flapping", .pending_at = 50, .firing_at = NAN,
                      .resolved_at = 70, .notified_at = NAN };
    rp_add_alert(&r, &fired);
    rp_add_alert(&r, &open);
    rp_add_alert(&r, &pend);
    f = fopen(path, "w");
    rp_print_table(&r, f);
    fclose(f);
    text = slurp(path);
    CU_ASSERT_PTR_NOT_NULL(strstr(text, "alerts                   2 fired  (1 more pending only)\n"
                                        "  NodeDown               critical  firing 0:10:45 to 1:02:05\n"
                                        "  HighLatency            warning   firing 0:02:40 to the end\n"));
    free(text);
    /* nothing after the warm-up: no peak */
    r.warmup_s = 200;
    CU_ASSERT_EQUAL(rp_peak_interval(&r), -1);
    CU_ASSERT_EQUAL_FATAL(rp_write_summary(&r, path), 0);
    text = slurp(path);
    j = cJSON_Parse(text);
    CU_ASSERT(cJSON_IsNull(cJSON_GetObjectItem(j, "peak")));
    cJSON_Delete(j);
    free(text);
    unlink(path);
    rp_results_free(&r);
}

int main(void)
{
    if (CU_initialize_registry() != CUE_SUCCESS)
        return 1;
    CU_pSuite s = CU_add_suite("results", NULL, NULL);
    CU_add_test(s, "summary.json keys and values", test_summary_keys_and_values);
    CU_add_test(s, "conservation and SLO verdict", test_conservation_and_slo);
    CU_add_test(s, "timeseries.csv and events.jsonl", test_timeseries_and_events);
    CU_add_test(s, "the peak interval", test_peak);
    CU_basic_set_mode(CU_BRM_VERBOSE);
    CU_basic_run_tests();
    unsigned fails = CU_get_number_of_failures();
    CU_cleanup_registry();
    return fails != 0;
}
