/*
 * test_query_cli.c - `fleetsim query` over a finished run's series.txt
 * (`fleetsim run --series`), checked against the same run's --openmetrics
 * export, an independent writer of the same samples: an instant query
 * gives the exported value at that time, arithmetic on it, and the JSON is
 * the Prometheus HTTP API's shape; a range query gives one point per step;
 * a run without --series, a bad expression and bad options exit 2.
 */
#include "testutil.h"

#include <CUnit/Basic.h>

#include <math.h>

static const char *scenario =
    "name: query\n"
    "seed: 3\n"
    "duration: 2m\n"
    "models:\n"
    "  m: {service: {distribution: exponential, mean: 300ms}}\n"
    "pools:\n"
    "  gpu: {model: m, replicas: 2, gpus_per_node: 1}\n"
    "traffic:\n"
    "  - {name: api, pool: gpu, arrivals: {process: poisson, rate: 5}}\n"
    "monitoring: {scrape_interval: 15s}\n";

static char *dir;

/* Runs `fleetsim query` with these arguments; its stdout (malloc'd), *rc
 * the exit status. */
static char *query(const char *args, int *rc)
{
    char log[4300], cmd[8192];
    snprintf(log, sizeof log, "%s/q.out", dir);
    snprintf(cmd, sizeof cmd, "'%s' query '%s/out' %s 2>'%s/q.err'", tu_bin(), dir, args, dir);
    *rc = tu_sh(NULL, "%s >'%s'", cmd, log);
    return tu_read(log);
}

static double json_value(const char *text, int index)
{
    cJSON *j = cJSON_Parse(text);
    double v = NAN;
    const cJSON *r = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(j, "data"),
                                                      "result");
    const cJSON *s = cJSON_GetArrayItem(r, index);
    const cJSON *val = cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(s, "value"), 1);
    if (cJSON_IsString(val))
        v = strtod(val->valuestring, NULL);
    cJSON_Delete(j);
    return v;
}

static void test_query(void)
{
    int rc;
    char *d = tu_run_yaml(scenario, "--series --openmetrics run.om", &rc);
    dir = d;
    CU_ASSERT_EQUAL_FATAL(rc, 0);
    char path[4300];
    snprintf(path, sizeof path, "%s/run.om", dir);
    char *om = tu_read(path);
    CU_ASSERT_PTR_NOT_NULL_FATAL(om);
    double ok60 = tu_om_sample(om, "fleetsim_requests_total{class=\"api\",code=\"200\",pool=\"gpu\"}", 60);
    double ok120 = tu_om_sample(om, "fleetsim_requests_total{class=\"api\",code=\"200\",pool=\"gpu\"}", 105);
    CU_ASSERT(ok60 > 200 && ok60 < 400); /* about 5/s for 60 s */

    /* instant query, JSON as /api/v1/query answers */
    char *out = query("'fleetsim_requests_total{code=\"200\"}' --at 60 --format json", &rc);
    CU_ASSERT_EQUAL(rc, 0);
    CU_ASSERT_PTR_NOT_NULL_FATAL(out);
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "{\"status\":\"success\",\"data\":{\"resultType\":\"vector\","
                                       "\"result\":[{\"metric\":{\"__name__\":\"fleetsim_requests_total\","
                                       "\"class\":\"api\",\"code\":\"200\",\"pool\":\"gpu\"},\"value\":[60,\""));
    CU_ASSERT_EQUAL(json_value(out, 0), ok60);
    free(out);
    /* arithmetic over it; default time: the last scrape (105 s) */
    out = query("'2 * sum(fleetsim_requests_total{code=\"200\"})' --format json", &rc);
    CU_ASSERT_EQUAL(rc, 0);
    CU_ASSERT_EQUAL(json_value(out, 0), 2 * ok120);
    free(out);
    /* a scalar: [t, "v"] */
    out = query("'scalar(sum(up))' --at 30 --format json", &rc);
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "{\"resultType\":\"scalar\",\"result\":[30,\"2\"]}"));
    free(out);
    /* the table form */
    out = query("'sum(up)' --at 30", &rc);
    CU_ASSERT_STRING_EQUAL(out, "{} 2\n");
    free(out);
    /* range query: 0, 15, ..., 60 -> 5 rows of CSV after the header */
    out = query("'fleetsim_replicas' --start 0 --end 60 --step 15 --format csv", &rc);
    CU_ASSERT_EQUAL(rc, 0);
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "series,t,value\n\"fleetsim_replicas{pool=\"\"gpu\"\"}\",0,2\n"));
    int lines = 0;
    for (const char *p = out; *p; p++)
        lines += *p == '\n';
    CU_ASSERT_EQUAL(lines, 6);
    free(out);
    out = query("'rate(fleetsim_requests_total{code=\"200\"}[1m])' --start 60 --end 90 --step 30 "
                "--format json", &rc);
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "\"resultType\":\"matrix\""));
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "\"values\":[[60,\""));
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "[90,\""));
    free(out);
    /* errors: bad expression (JSON error too), bad options */
    out = query("'rate(x[' --format json", &rc);
    CU_ASSERT_EQUAL(rc, 2);
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "{\"status\":\"error\",\"errorType\":\"bad_data\""));
    free(out);
    out = query("'up' --at 10 --step 5", &rc);
    CU_ASSERT_EQUAL(rc, 2);
    free(out);
    out = query("'up' --format yaml", &rc);
    CU_ASSERT_EQUAL(rc, 2);
    free(out);
    free(om);
    tu_done(d);
    dir = NULL;
}

static void test_no_series(void)
{
    int rc;
    char *d = tu_run_yaml(scenario, "", &rc);
    dir = d;
    CU_ASSERT_EQUAL_FATAL(rc, 0);
    char *out = query("up", &rc);
    CU_ASSERT_EQUAL(rc, 2);
    free(out);
    char path[4300];
    snprintf(path, sizeof path, "%s/q.err", dir);
    char *err = tu_read(path);
    CU_ASSERT_PTR_NOT_NULL(err);
    if (err)
        CU_ASSERT_PTR_NOT_NULL(strstr(err, "fleetsim run --series"));
    free(err);
    tu_done(d);
    dir = NULL;
}

int main(void)
{
    if (CU_initialize_registry() != CUE_SUCCESS)
        return 1;
    CU_pSuite s = CU_add_suite("query_cli", NULL, NULL);
    CU_add_test(s, "instant and range queries over a run's series", test_query);
    CU_add_test(s, "a run without --series", test_no_series);
    CU_basic_set_mode(CU_BRM_VERBOSE);
    CU_basic_run_tests();
    int failures = (int)CU_get_number_of_failures();
    CU_cleanup_registry();
    return failures;
}
