/*
 * test_deepseek_case.c - scenarios/deepseek-v3.yaml against the arithmetic
 * of docs/deepseek-case.md (scripts/deepseek-case.sh): the day's offered
 * prompt tokens scaled back to a day of the full fleet (x 8 rate x 360
 * time) against the published 608B, the prefix-cache hit rate against the
 * scenario's shared-prefix share, the prefill pool's saturated throughput
 * per node against the compute-bound step of the expert-parallel model
 * (its all-to-all bounded by device-limited routing), and that the
 * scenario's surge (520 req/s, 2.6 x the mean) turns prompts away with the
 * fixed fleet.
 */
#include "testutil.h"

#include <CUnit/Basic.h>
#include <CUnit/CUnit.h>
#include <math.h>
#include <stdio.h>

static cJSON *run_case(const char *extra, char **dir)
{
    char *d = tu_tmpdir();
    char log[4096];
    int rc;

    snprintf(log, sizeof log, "%s/log", d);
    rc = tu_sh(log, "'%s' run '%s/scenarios/deepseek-v3.yaml' --quiet --out '%s/out' %s",
               tu_bin(), tu_src(), d, extra);
    CU_ASSERT_EQUAL(rc, 0);
    *dir = d;
    return tu_out_summary(d);
}

/* The day. Offered prompt tokens: the run's prompt tokens, with the
 * rejected requests' counted at the mean (they are turned away before
 * prefill). The run offers about 200.7 x 240 = 48,170 requests (Poisson:
 * sd 0.46%) of mean 4,383 tokens (cv 1 over the 1,915 own tokens: sd of
 * the mean 0.2%), so 3% is over five standard deviations. Prefix hits:
 * 2,468 shared tokens hold 154 full blocks of 16 = 2,464 tokens, 56.22% of
 * 4,383; the first prompt of each of 16 prefixes on each of 3 replicas
 * misses (48 of 48,000 prompts) and the own tokens vary (sd of the ratio
 * about 0.1 points): within 0.5 points. */
static void test_day(void)
{
    char *dir;
    cJSON *j = run_case("", &dir);

    CU_ASSERT_PTR_NOT_NULL_FATAL(j);
    double gen = tu_num(j, "requests.generated"), rej = tu_num(j, "requests.rejected");
    double in = tu_num(j, "pools.prefill.llm.input_tokens");
    double sim = tu_num(j, "sim_time_s");
    double day_in = in * gen / (gen - rej) * 8.0 * 86400.0 / sim;
    double hit = tu_num(j, "pools.prefill.llm.prefix_cache_hits") /
                 tu_num(j, "pools.prefill.llm.prefix_cache_queries");

    CU_ASSERT_EQUAL(gen, tu_sum_buckets(j, "requests"));
    CU_ASSERT(fabs(day_in / 608e9 - 1.0) < 0.03);
    CU_ASSERT(fabs(hit - 2464.0 / 4383.0) < 0.005);
    /* the surge (520 req/s against the prefill pool's 12 x 167.2k / 4,383 =
     * 458 req/s of the arithmetic below) overwhelms the fixed fleet:
     * prompts are turned away (503) */
    CU_ASSERT(rej > 0.005 * gen);
    CU_ASSERT(tu_num(j, "pools.prefill.replicas_max") == 3);
    CU_ASSERT_EQUAL(tu_num(j, "pools.prefill.llm.expert_parallel"), 32);
    CU_ASSERT_EQUAL(tu_num(j, "pools.decode.llm.expert_parallel"), 144);
    cJSON_Delete(j);
    tu_done(dir);
}

/* Prefill capacity. A full step of 65,536 computed tokens on an EP32
 * group. Its all-to-all, with config.json's device-limited routing
 * (n_group 8, topk_group 4: a token reaches at most 4 nodes, 3 of them not
 * its own, once each): 58 MoE layers x 65,536 / 32 tokens x 3 copies x
 * 7,168 x 3 B (fp8 dispatch + bf16 combine) / 50 GB/s = 0.15326 s. Its
 * compute: 65,536 x (2 x 36,625,603,584 + 4,997,120 x c) / (1,979 TFLOP/s
 * x 0.45) / 32, c the mean context a computed token attends to: 2,464
 * cached prefix tokens + (E[n^2] / E[n] - 1) / 2 over the prompts' own
 * computed tokens n (lognormal, mean 1,919, sd 1,915: E[n^2] / E[n] =
 * 3,830.0), 4,378.5: 0.21877 s, the longer (memory is shorter still);
 * + 5 ms overhead. So a group computes 65,536 / 0.22377 = 292,870 tokens
 * a second, 73,218 per node, and serves that / (1 - hit share) prompt
 * tokens. The run also holds the first step's ramp (a few partial batches
 * in 40 s), steps cut short where a prompt ends, and prompts split over
 * two steps: within 5%. */
static void test_prefill_capacity(void)
{
    char *dir;
    cJSON *j = run_case("--set duration=40s --set traffic.0.arrivals.rate=600 "
                        "--set pools.prefill.queue_capacity=100000",
                        &dir);

    CU_ASSERT_PTR_NOT_NULL_FATAL(j);
    double hit = tu_num(j, "pools.prefill.llm.prefix_cache_hits") /
                 tu_num(j, "pools.prefill.llm.prefix_cache_queries");
    double per_node = tu_num(j, "pools.prefill.llm.input_tokens_per_s") / 12.0;
    double comm = 58.0 * 65536 / 32 * 3 * 7168 * 3 / 50e9;
    double own2 = (1915.0 * 1915 + 1919.0 * 1919) / 1919;
    double comp = 65536.0 * (2 * 36625603584.0 + 4997120.0 * (2464 + (own2 - 1) / 2)) /
                  (1979e12 * 0.45) / 32;
    double step = fmax(comm, comp) + 0.005;
    double arith = 65536.0 / step / 4 / (1.0 - hit);

    CU_ASSERT_DOUBLE_EQUAL(comm, 0.15325986816, 1e-12);
    CU_ASSERT(comp > comm);
    CU_ASSERT(fabs(step - 0.22377) < 1e-5);
    CU_ASSERT(fabs(per_node / arith - 1.0) < 0.05);
    cJSON_Delete(j);
    tu_done(dir);
}

int main(void)
{
    CU_pSuite s;

    if (CU_initialize_registry() != CUE_SUCCESS)
        return 1;
    s = CU_add_suite("deepseek_case", NULL, NULL);
    CU_add_test(s, "the day against the published volumes", test_day);
    CU_add_test(s, "prefill throughput per node against the arithmetic", test_prefill_capacity);
    CU_basic_set_mode(CU_BRM_VERBOSE);
    CU_basic_run_tests();
    {
        int failures = (int)CU_get_number_of_failures();
        CU_cleanup_registry();
        return failures ? 1 : 0;
    }
}
