/*
 * test_llm_kvcut.c - a KV link cut entirely (chaos `link_down`) on a
 * prefill/decode fleet, through the fleetsim binary, on deterministic cases
 * computed by hand: a transfer in flight when the links go off fails at
 * that moment (in its latency phase too), one started while they are off
 * fails at once, and after they come back on a transfer takes exactly
 * latency + bytes / bandwidth again; a failed transfer's reserved decode
 * blocks come back (a request needing all but one block completes after
 * the cut); the prefill pool's own links off make it a partition too
 * (attempts fail at the balancer) while the prompts it was computing end
 * in handoffs that fail; links back on keep a bandwidth_cut acting on them;
 * requests are conserved per pool and overall; and
 * the fault's faults[].llm.handoffs_failed counts the handoffs it failed.
 * The link_down keys' errors, and bandwidth_cut's factor 0, name
 * file:line:col.
 */
#include "testutil.h"

#include <CUnit/Basic.h>

#include <math.h>
#include <stdio.h>
#include <string.h>

/* Llama-3.1-8B-shaped KV (2 x 32 layers x 8 heads x 128 x 2 B = 131,072 B
 * a token) and fixed step times: 10 ms a step + 100 us a prompt token +
 * 1 ms a decoding sequence, so a 100-token prompt is one 20 ms step (its
 * first token) and each later token an 11 ms step for a replica running
 * one sequence. */
static const double KV_B = 131072.0;
static const double BW_BPS = 1e9;

/* `pre` (n_pre nodes of 1 GPU, links 1 GB/s without latency) hands its KV
 * caches to `dec` (1 node of 1 GPU, link 1 GB/s with 1 ms latency), whose
 * replica has kv_blocks blocks of 16 tokens. */
static char *scenario(const char *trace, int n_pre, int kv_blocks, const char *chaos)
{
    static char buf[8192];
    snprintf(buf, sizeof buf,
             "name: kvcut\n"
             "duration: 30s\n"
             "models:\n"
             "  m:\n"
             "    llm:\n"
             "      config: {hidden_size: 4096, num_hidden_layers: 32, num_attention_heads: 32,\n"
             "               num_key_value_heads: 8, intermediate_size: 14336, vocab_size: 128256}\n"
             "      kv_blocks: %d\n"
             "      step: {model: alpha_beta, overhead: 10ms, per_prefill_token: 100us,\n"
             "             per_decode_seq: 1ms}\n"
             "pools:\n"
             "  pre:\n"
             "    model: m\n"
             "    replicas: %d\n"
             "    gpus_per_node: 1\n"
             "    gpu: H100-SXM\n"
             "    link: {latency: 0s, bandwidth: 1GB/s}\n"
             "    role: prefill\n"
             "    decode_pool: dec\n"
             "  dec:\n"
             "    model: m\n"
             "    replicas: 1\n"
             "    gpus_per_node: 1\n"
             "    gpu: H100-SXM\n"
             "    link: {latency: 1ms, bandwidth: 1GB/s}\n"
             "    role: decode\n"
             "traffic:\n"
             "  - name: t\n"
             "    pool: pre\n"
             "    size: 0B\n"
             "    response_size: 0B\n"
             "    tokens: {trace: %s}\n"
             "chaos:\n"
             "%s",
             kv_blocks, n_pre, trace, chaos);
    return buf;
}

static char *write_trace(const char *rows, char *path, size_t cap)
{
    char *dir = tu_tmpdir();
    snprintf(path, cap, "%s/trace.csv", dir);
    char text[8192];
    snprintf(text, sizeof text, "arrived_at,num_prefill_tokens,num_decode_tokens\n%s", rows);
    tu_write(path, text);
    return dir;
}

/* A number of summary.json's faults[i] at a dotted path; NAN if absent. */
static double fault_num(const cJSON *j, int i, const char *path)
{
    const cJSON *f = cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(j, "faults"), i);
    return f ? tu_num(f, path) : NAN;
}

static void expect_conserved(const cJSON *j)
{
    CU_ASSERT_EQUAL(tu_sum_buckets(j, "requests"), tu_num(j, "requests.generated"));
    CU_ASSERT_EQUAL(tu_sum_buckets(j, "pools.pre.requests"), tu_num(j, "pools.pre.requests.generated"));
    CU_ASSERT_EQUAL(tu_sum_buckets(j, "pools.dec.requests"), tu_num(j, "pools.dec.requests.generated"));
}

/* One request (100 prompt tokens, 10 output tokens) at 0 on three prefill
 * nodes; dec's link off from `at` to `at` + 30 ms. Its KV cache (13,107,200
 * B) leaves pre at 20 ms and would land at 20 + 1 + 13.1072 ms; the cut
 * fails it at `at` (in flight), and the attempt is retried on a prefill
 * node it has not tried: a second 20 ms prefill from `at`, whose handoff at
 * `at` + 20 ms, during the cut, fails at once (the decode replica grants
 * its blocks and the transfer starts across a link that is off); the third
 * attempt's prefill, `at` + 20 .. `at` + 40 ms, hands off after the cut
 * ended and its transfer takes exactly 14.1072 ms again, then nine 11 ms
 * decode steps. The last first token comes at `at` + 40 ms (the longest
 * TTFT); the request ends at `at` + 40 + 14.1072 + 99 ms. The fault's entry
 * counts both failed handoffs; no request failed. */
static void cut_case(const char *at_text, double at_s)
{
    char trace[4096], chaos[256];
    char *td = write_trace("0.0,100,10\n", trace, sizeof trace);
    snprintf(chaos, sizeof chaos,
             "  - {at: %s, fault: link_down, target: dec, duration: 30ms}\n", at_text);
    int rc;
    char *dir = tu_run_yaml(scenario(trace, 3, 1000, chaos), NULL, &rc);
    CU_ASSERT_EQUAL(rc, 0);
    cJSON *j = tu_out_summary(dir);
    CU_ASSERT_PTR_NOT_NULL_FATAL(j);
    double xfer = 0.001 + 100 * KV_B / BW_BPS;
    CU_ASSERT_DOUBLE_EQUAL(xfer, 0.0141072, 1e-12);
    CU_ASSERT_EQUAL(tu_num(j, "requests.generated"), 1);
    CU_ASSERT_EQUAL(tu_num(j, "requests.completed"), 1);
    CU_ASSERT_EQUAL(tu_num(j, "pools.pre.llm.kv_transfer.count"), 1);
    CU_ASSERT_EQUAL(tu_num(j, "pools.pre.llm.kv_transfer.failed"), 2);
    CU_ASSERT_EQUAL(tu_num(j, "pools.pre.llm.kv_transfer.failed_before_start"), 0);
    CU_ASSERT_DOUBLE_EQUAL(tu_num(j, "pools.pre.llm.kv_transfer.time_s.max"), xfer, 1e-12);
    CU_ASSERT_DOUBLE_EQUAL(tu_num(j, "pools.pre.llm.kv_transfer.time_s.mean"), xfer, 1e-12);
    CU_ASSERT_DOUBLE_EQUAL(tu_num(j, "pools.pre.llm.ttft_s.max"), at_s + 0.040, 1e-12);
    CU_ASSERT_DOUBLE_EQUAL(tu_num(j, "pools.pre.llm.e2e_s.max"), at_s + 0.040 + xfer + 9 * 0.011,
                           1e-12);
    CU_ASSERT_DOUBLE_EQUAL(tu_num(j, "latency_s.max"), at_s + 0.040 + xfer + 9 * 0.011, 1e-12);
    /* the router sent each of the three handoffs to the one decode replica */
    const cJSON *per = cJSON_GetObjectItemCaseSensitive(
        cJSON_GetObjectItemCaseSensitive(
            cJSON_GetObjectItemCaseSensitive(
                cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(j, "pools"), "pre"),
                "llm"),
            "kv_transfer"),
        "per_decode_replica");
    CU_ASSERT_EQUAL(cJSON_GetArraySize(per), 1);
    CU_ASSERT_EQUAL(cJSON_GetNumberValue(cJSON_GetArrayItem(per, 0)), 3);
    CU_ASSERT_EQUAL(fault_num(j, 0, "llm.handoffs_failed"), 2);
    CU_ASSERT_EQUAL(fault_num(j, 0, "llm.kv_lost"), 0);
    CU_ASSERT_EQUAL(fault_num(j, 0, "requests.failed"), 0);
    CU_ASSERT_DOUBLE_EQUAL(fault_num(j, 0, "start_s"), at_s, 1e-12);
    CU_ASSERT_DOUBLE_EQUAL(fault_num(j, 0, "end_s"), at_s + 0.030, 1e-12);
    expect_conserved(j);
    cJSON_Delete(j);
    tu_done(dir);
    tu_done(td);
}

/* The cut at 25 ms, while the bytes move; at 20.5 ms, while the transfer
 * is still in its 1 ms latency phase: it fails there all the same. */
static void test_decode_links_cut(void)
{
    cut_case("25ms", 0.025);
    cut_case("20.5ms", 0.0205);
}

/* As cut_case at 25 ms, under a bandwidth_cut to half on dec for the whole
 * run: the links come back on at half their bandwidth, and the third
 * attempt's transfer takes 1 ms + 26.2144 ms. */
static void test_cut_under_bandwidth_cut(void)
{
    char trace[4096];
    char *td = write_trace("0.0,100,10\n", trace, sizeof trace);
    int rc;
    char *dir = tu_run_yaml(
        scenario(trace, 3, 1000,
                 "  - {at: 0s, fault: bandwidth_cut, factor: 0.5, target: dec, duration: 10s}\n"
                 "  - {at: 25ms, fault: link_down, target: dec, duration: 30ms}\n"),
        NULL, &rc);
    CU_ASSERT_EQUAL(rc, 0);
    cJSON *j = tu_out_summary(dir);
    CU_ASSERT_PTR_NOT_NULL_FATAL(j);
    double xfer = 0.001 + 2 * 100 * KV_B / BW_BPS;
    CU_ASSERT_EQUAL(tu_num(j, "requests.completed"), 1);
    CU_ASSERT_EQUAL(tu_num(j, "pools.pre.llm.kv_transfer.count"), 1);
    CU_ASSERT_EQUAL(tu_num(j, "pools.pre.llm.kv_transfer.failed"), 2);
    CU_ASSERT_DOUBLE_EQUAL(tu_num(j, "pools.pre.llm.kv_transfer.time_s.max"), xfer, 1e-12);
    CU_ASSERT_DOUBLE_EQUAL(tu_num(j, "pools.pre.llm.e2e_s.max"), 0.065 + xfer + 9 * 0.011, 1e-12);
    CU_ASSERT_EQUAL(fault_num(j, 1, "llm.handoffs_failed"), 2);
    expect_conserved(j);
    cJSON_Delete(j);
    tu_done(dir);
    tu_done(td);
}

/* The decode replica has 8 blocks; a 100-token prompt and its first output
 * token take 7. A at 0: its transfer (20 .. 34.1072 ms, 7 blocks reserved)
 * fails when dec's link goes off at 25 ms (one prefill node: no node left
 * to retry on, A fails). B at 0.5 s, during the cut: prefilled by 0.52 s,
 * its handoff gets the 7 blocks A held (freed with A's transfer, else B
 * would wait for them to the end of the run) and fails at once. C at 2 s,
 * after the cut: 20 ms + 14.1072 ms + 9 x 11 ms. The two errors are the
 * fault's (faults[0].requests.failed), though they ended at the prefill
 * pool, which the cut did not touch. */
static void test_cut_frees_blocks(void)
{
    char trace[4096];
    char *td = write_trace("0.0,100,10\n0.5,100,10\n2.0,100,10\n", trace, sizeof trace);
    int rc;
    char *dir = tu_run_yaml(
        scenario(trace, 1, 8, "  - {at: 25ms, fault: link_down, target: dec, duration: 1s}\n"),
        NULL, &rc);
    CU_ASSERT_EQUAL(rc, 0);
    cJSON *j = tu_out_summary(dir);
    CU_ASSERT_PTR_NOT_NULL_FATAL(j);
    double xfer = 0.001 + 100 * KV_B / BW_BPS;
    CU_ASSERT_EQUAL(tu_num(j, "requests.generated"), 3);
    CU_ASSERT_EQUAL(tu_num(j, "requests.completed"), 1);
    CU_ASSERT_EQUAL(tu_num(j, "requests.failed"), 2);
    CU_ASSERT_EQUAL(tu_num(j, "requests.in_flight_at_end"), 0);
    CU_ASSERT_EQUAL(tu_num(j, "pools.pre.llm.kv_transfer.count"), 1);
    CU_ASSERT_EQUAL(tu_num(j, "pools.pre.llm.kv_transfer.failed"), 2);
    CU_ASSERT_EQUAL(tu_num(j, "pools.pre.llm.kv_transfer.failed_before_start"), 0);
    CU_ASSERT_DOUBLE_EQUAL(tu_num(j, "pools.pre.llm.e2e_s.max"), 0.020 + xfer + 9 * 0.011, 1e-12);
    CU_ASSERT_DOUBLE_EQUAL(tu_num(j, "pools.pre.llm.e2e_s.mean"), 0.020 + xfer + 9 * 0.011, 1e-12);
    /* never more than one request's 7 blocks held at once (at most
     * ceil(110 / 16) = 7 for C's last step) */
    CU_ASSERT_DOUBLE_EQUAL(tu_num(j, "pools.dec.llm.kv_usage_max"), 7.0 / 8.0, 1e-12);
    CU_ASSERT_EQUAL(fault_num(j, 0, "llm.handoffs_failed"), 2);
    /* both errors are the cut's: their attempts failed in its handoffs */
    CU_ASSERT_EQUAL(fault_num(j, 0, "requests.failed"), 2);
    CU_ASSERT_DOUBLE_EQUAL(fault_num(j, 0, "error_share"), 1.0, 1e-12);
    expect_conserved(j);
    cJSON_Delete(j);
    tu_done(dir);
    tu_done(td);
}

/* pre's link off from 10 ms to 1.01 s. A at 0 is being prefilled when it
 * goes off: its prompt's step ends at 20 ms (the node runs on), and its
 * handoff fails at once (the transfer would leave across pre's link); one
 * prefill node, so A fails. B at 0.5 s: the balancer cannot reach pre/0
 * (a partition): its attempt fails and no other node is left to try. C at
 * 2 s: 20 ms + 14.1072 ms + 9 x 11 ms. The fault failed one handoff, and
 * both failed requests are blamed on it (the prefill pool's fault, as for
 * a partition). */
static void test_prefill_links_cut(void)
{
    char trace[4096];
    char *td = write_trace("0.0,100,10\n0.5,100,10\n2.0,100,10\n", trace, sizeof trace);
    int rc;
    char *dir = tu_run_yaml(
        scenario(trace, 1, 1000, "  - {at: 10ms, fault: link_down, pool: pre, duration: 1s}\n"),
        NULL, &rc);
    CU_ASSERT_EQUAL(rc, 0);
    cJSON *j = tu_out_summary(dir);
    CU_ASSERT_PTR_NOT_NULL_FATAL(j);
    double xfer = 0.001 + 100 * KV_B / BW_BPS;
    CU_ASSERT_EQUAL(tu_num(j, "requests.generated"), 3);
    CU_ASSERT_EQUAL(tu_num(j, "requests.completed"), 1);
    CU_ASSERT_EQUAL(tu_num(j, "requests.failed"), 2);
    CU_ASSERT_EQUAL(tu_num(j, "pools.pre.llm.kv_transfer.count"), 1);
    CU_ASSERT_EQUAL(tu_num(j, "pools.pre.llm.kv_transfer.failed"), 1);
    CU_ASSERT_DOUBLE_EQUAL(tu_num(j, "pools.pre.llm.kv_transfer.time_s.max"), xfer, 1e-12);
    CU_ASSERT_DOUBLE_EQUAL(tu_num(j, "pools.pre.llm.e2e_s.max"), 0.020 + xfer + 9 * 0.011, 1e-12);
    /* A's prefill ran to its end: two prompts computed, two first tokens */
    CU_ASSERT_EQUAL(tu_num(j, "pools.pre.llm.steps"), 2);
    CU_ASSERT_EQUAL(fault_num(j, 0, "llm.handoffs_failed"), 1);
    CU_ASSERT_EQUAL(fault_num(j, 0, "requests.failed"), 2);
    expect_conserved(j);
    cJSON_Delete(j);
    tu_done(dir);
    tu_done(td);
}

/* The line and column (1-based) where `what` starts in yaml, as
 * "FILE:LINE:COL:" ends. */
static void where(const char *yaml, const char *what, char *buf, size_t cap)
{
    const char *at = strstr(yaml, what);
    int line = 1;
    const char *bol = yaml;
    for (const char *c = yaml; at && c < at; c++)
        if (*c == '\n') {
            line++;
            bol = c + 1;
        }
    snprintf(buf, cap, "s.yaml:%d:%d:", line, at ? (int)(at - bol) + 1 : 0);
}

static void test_errors(void)
{
    char trace[4096], want[64];
    char *td = write_trace("0.0,100,10\n", trace, sizeof trace);
    const char *yaml = scenario(trace, 1, 1000, "  - {at: 1s, fault: link_down, target: dec/0}\n");
    where(yaml, "dec/0}", want, sizeof want);
    CU_ASSERT(tu_expect_error(yaml, NULL, want));
    CU_ASSERT(tu_expect_error(yaml, NULL, "chaos.0: link_down takes a pool's links, not one node's"));
    yaml = scenario(trace, 1, 1000, "  - {at: 1s, fault: bandwidth_cut, target: dec, factor: 0}\n");
    where(yaml, "0}", want, sizeof want);
    CU_ASSERT(tu_expect_error(yaml, NULL, want));
    CU_ASSERT(tu_expect_error(yaml, NULL,
                              "chaos.0.factor: a bandwidth_cut's factor is in (0, 1]; for links "
                              "that are off use fault: link_down"));
    yaml = scenario(trace, 1, 1000, "  - {at: 1s, fault: bandwidth_cut, target: dec, factor: -0.5}\n");
    CU_ASSERT(tu_expect_error(yaml, NULL, "chaos.0.factor"));
    yaml = scenario(trace, 1, 1000, "  - {at: 1s, fault: link_down, target: dec, factor: 0.5}\n");
    where(yaml, "factor", want, sizeof want);
    CU_ASSERT(tu_expect_error(yaml, NULL, want));
    CU_ASSERT(tu_expect_error(yaml, NULL, "chaos.0.factor: link_down does not take factor"));
    yaml = scenario(trace, 1, 1000, "  - {fault: link_down, target: dec}\n");
    CU_ASSERT(tu_expect_error(yaml, NULL, "chaos.0: link_down needs at, after or when"));
    /* a zone, all pools, and a start on a condition are fine */
    int rc;
    char *dir = tu_run_yaml(
        scenario(trace, 1, 1000,
                 "  - {at: 1s, fault: link_down, zone: dec, duration: 1s}\n"
                 "  - {after: 0s, fault: link_down, duration: 1s}\n"
                 "  - {when: {offered_qps_above: 1000, window: 1s}, fault: link_down, pool: pre}\n"),
        NULL, &rc);
    CU_ASSERT_EQUAL(rc, 0);
    tu_done(dir);
    tu_done(td);
}

int main(void)
{
    CU_pSuite s;

    if (CU_initialize_registry() != CUE_SUCCESS)
        return CU_get_error();
    s = CU_add_suite("llm_kvcut", NULL, NULL);
    CU_add_test(s, "decode links cut: in flight, during, after", test_decode_links_cut);
    CU_add_test(s, "links back on at a bandwidth_cut's share", test_cut_under_bandwidth_cut);
    CU_add_test(s, "a cut transfer's blocks come back", test_cut_frees_blocks);
    CU_add_test(s, "prefill links cut: a partition and failed handoffs", test_prefill_links_cut);
    CU_add_test(s, "errors", test_errors);
    CU_basic_set_mode(CU_BRM_VERBOSE);
    CU_basic_run_tests();
    unsigned int failures = CU_get_number_of_failures();
    CU_cleanup_registry();
    return (int)failures;
}
