/*
 * test_repeat.c - `arrivals.repeat`: a 30-day run of a daily profile
 * reproduces the day 30 times. Each hour's arrival count is Poisson with
 * the mean the one-day profile gives that hour of the day; the chi-square
 * of the 720 hourly counts must stay below its 99.9% quantile, every day's
 * total within 4.5 standard deviations of the day's mean and the month's
 * within 4. summary.json names the period used, and only when there is
 * one. A profile that does not fit in its period is refused.
 */
#include "engine.h"
#include "testutil.h"

#include <CUnit/Basic.h>
#include <gsl/gsl_cdf.h>

#include <math.h>

/* Night 0.1 QPS, an hour's ramp to 1 QPS from 8h, a 10-minute peak at 5
 * QPS at noon, back to 0.1 QPS at 20h: about 50,000 requests a day. */
static const sc_rate_point DAY[] = {
    { 0, 0.1, 0 },
    { 8 * 3600, 1, 3600 },
    { 12 * 3600, 5, 60 },
    { 12 * 3600 + 600, 1, 60 },
    { 20 * 3600, 0.1, 0 },
};

#define SCENARIO(duration, repeat)                                                         \
    "name: daily\n"                                                                         \
    "duration: " duration "\n"                                                              \
    "interval: 1h\n"                                                                        \
    "models:\n"                                                                             \
    "  m: {service: {distribution: exponential, mean: 1ms}}\n"                              \
    "pools:\n"                                                                              \
    "  p: {model: m, replicas: 1}\n"                                                        \
    "traffic:\n"                                                                            \
    "  - name: t\n"                                                                         \
    "    pool: p\n"                                                                         \
    "    arrivals:\n"                                                                       \
    "      " repeat "\n"                                                                    \
    "      rate:\n"                                                                         \
    "        - {at: 0s, qps: 0.1}\n"                                                        \
    "        - {at: 8h, qps: 1, ramp: 1h}\n"                                                \
    "        - {at: 12h, qps: 5, ramp: 1m}\n"                                               \
    "        - {at: 43800s, qps: 1, ramp: 1m}\n"                                            \
    "        - {at: 20h, qps: 0.1}\n"

static void test_thirty_days(void)
{
    enum { DAYS = 30, HOURS = 24 * DAYS };
    int rc;
    char *dir = tu_run_yaml(SCENARIO("30d", "repeat: 24h"), NULL, &rc);
    CU_ASSERT_EQUAL_FATAL(rc, 0);
    static double qps[HOURS + 1];
    CU_ASSERT_EQUAL_FATAL(tu_ts_column(dir, "offered_qps", qps, HOURS + 1), HOURS);

    sim_rate *day = sim_rate_new(DAY, 5);
    double mean_day = sim_rate_cumulative(day, 86400);
    double chi2 = 0, month = 0;
    int days_off = 0;
    for (int d = 0; d < DAYS; d++) {
        double n_day = 0;
        for (int h = 0; h < 24; h++) {
            double n = round(qps[d * 24 + h] * 3600);
            double mean = sim_rate_cumulative(day, 3600.0 * (h + 1)) - sim_rate_cumulative(day, 3600.0 * h);
            chi2 += (n - mean) * (n - mean) / mean;
            n_day += n;
        }
        if (fabs(n_day - mean_day) > 4.5 * sqrt(mean_day)) {
            fprintf(stderr, "\n  day %d: %.0f arrivals, expected %.0f\n", d + 1, n_day, mean_day);
            days_off++;
        }
        month += n_day;
    }
    CU_ASSERT_EQUAL(days_off, 0);
    CU_ASSERT(chi2 < gsl_cdf_chisq_Pinv(0.999, HOURS));
    CU_ASSERT(fabs(month - DAYS * mean_day) < 4 * sqrt(DAYS * mean_day));
    cJSON *j = tu_out_summary(dir);
    CU_ASSERT_PTR_NOT_NULL_FATAL(j);
    CU_ASSERT_EQUAL(tu_num(j, "requests.generated"), month);
    CU_ASSERT_EQUAL(tu_num(j, "classes.t.profile_period_s"), 86400);
    cJSON_Delete(j);
    tu_done(dir);
    sim_rate_free(day);
}

/* Without repeat the profile holds its last rate: two days give the day's
 * mean plus a day at 0.1 QPS, and the summary names no period. */
static void test_without_repeat(void)
{
    int rc;
    char *dir = tu_run_yaml(SCENARIO("2d", "process: poisson"), NULL, &rc);
    CU_ASSERT_EQUAL_FATAL(rc, 0);
    sim_rate *day = sim_rate_new(DAY, 5);
    double mean = sim_rate_cumulative(day, 2 * 86400);
    CU_ASSERT_DOUBLE_EQUAL(mean, sim_rate_cumulative(day, 86400) + 0.1 * 86400, 1e-6);
    cJSON *j = tu_out_summary(dir);
    CU_ASSERT_PTR_NOT_NULL_FATAL(j);
    CU_ASSERT(fabs(tu_num(j, "requests.generated") - mean) < 4 * sqrt(mean));
    CU_ASSERT(isnan(tu_num(j, "classes.t.profile_period_s")));
    cJSON_Delete(j);
    tu_done(dir);
    sim_rate_free(day);
}

static void test_refused(void)
{
    /* a point at 12h is not inside a 12h period (it would start the next) */
    CU_ASSERT(tu_expect_error(SCENARIO("1d", "repeat: 12h"), NULL,
                              "s.yaml:16:11: traffic.t.arrivals.repeat: rate point 2 is at 43200 s, "
                              "not inside the repeat period (43200 s)"));
    /* the 8h point's ramp ends at 9h, past an 8.5h period */
    CU_ASSERT(tu_expect_error(SCENARIO("1d", "repeat: 30600s"), NULL,
                              "s.yaml:15:11: traffic.t.arrivals.repeat: rate point 1's ramp "
                              "(3600 s from 28800 s) runs past the repeat period (30600 s)"));
    CU_ASSERT(tu_expect_error(SCENARIO("1d", "repeat: 0s"), NULL,
                              "traffic.t.arrivals.repeat:"));
    CU_ASSERT(tu_expect_error(SCENARIO("1d", "repeat: [24h]"), NULL,
                              "traffic.t.arrivals.repeat:"));
    CU_ASSERT(tu_expect_error("name: x\nduration: 1h\nmodels:\n"
                              "  m: {service: {distribution: exponential, mean: 1ms}}\n"
                              "pools:\n  p: {model: m, replicas: 1}\n"
                              "traffic:\n  - {name: t, pool: p, arrivals: {process: trace, "
                              "trace: a.csv, repeat: 1h}}\n",
                              NULL, "repeat applies to a rate profile, not to process trace"));
}

int main(void)
{
    if (CU_initialize_registry() != CUE_SUCCESS)
        return 1;
    CU_pSuite s = CU_add_suite("repeat", NULL, NULL);
    CU_add_test(s, "30 days of a daily profile", test_thirty_days);
    CU_add_test(s, "no repeat: the last rate holds", test_without_repeat);
    CU_add_test(s, "a profile that does not fit its period", test_refused);
    CU_basic_set_mode(CU_BRM_VERBOSE);
    CU_basic_run_tests();
    unsigned fails = CU_get_number_of_failures();
    CU_cleanup_registry();
    return fails != 0;
}
