/*
 * test_llm_disagg.c - prefill/decode disaggregation through the fleetsim
 * binary, on deterministic cases computed by hand: TTFT is the prefill
 * step alone; the KV cache's transfer takes latency + bytes / bandwidth
 * over the two nodes' links (SimGrid CM02, no TCP window); the second token
 * comes one decode step after it lands; two transfers at once on one link
 * share it and take twice as long; a bandwidth cut slows one; requests are
 * conserved per pool and overall under load and a decode-node crash; the
 * decode replica reserves a request's KV blocks before its transfer starts
 * (a transfer waits for blocks, counted as waiting in --trace-steps; a
 * crash or a failed transfer frees them; a request that fails while it
 * waits counts as failed before starting, not as a failed transfer); a
 * prefill outage holds requests in the prefill queue (TTFT, or timeouts
 * past a first-token deadline, not 502s); and
 * the role keys' errors name file:line:col.
 */
#include "testutil.h"

#include <CUnit/Basic.h>

#include <math.h>
#include <string.h>

/* Prefill pool `pre` and decode pool `dec` of a Llama-3.1-8B-shaped model
 * (KV 2 x 32 layers x 8 heads x 128 x 2 B = 131,072 B a token) with fixed
 * step times: 10 ms a step + 100 us a prompt token + 1 ms a decoding
 * sequence. Both nodes' links 1 GB/s; `pre`'s latency 0 (no network time
 * for the client), `dec`'s lat_dec. */
static char *scenario(const char *trace, const char *lat_dec, const char *tail)
{
    static char buf[8192];
    snprintf(buf, sizeof buf,
             "name: pd\n"
             "duration: 60s\n"
             "models:\n"
             "  m:\n"
             "    llm:\n"
             "      config: {hidden_size: 4096, num_hidden_layers: 32, num_attention_heads: 32,\n"
             "               num_key_value_heads: 8, intermediate_size: 14336, vocab_size: 128256}\n"
             "      step: {model: alpha_beta, overhead: 10ms, per_prefill_token: 100us,\n"
             "             per_decode_seq: 1ms}\n"
             "pools:\n"
             "  pre:\n"
             "    model: m\n"
             "    replicas: 1\n"
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
             "    link: {latency: %s, bandwidth: 1GB/s}\n"
             "    role: decode\n"
             "traffic:\n"
             "  - name: t\n"
             "    pool: pre\n"
             "    size: 0B\n"
             "    response_size: 0B\n"
             "    tokens: {trace: %s}\n"
             "%s",
             lat_dec, trace, tail ? tail : "");
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

static const double KV_B = 131072.0;   /* bytes a token */
static const double BW_BPS = 1e9;      /* 1GB/s */

/* Every counts block sums to its generated: the run's and each pool's. */
static void expect_conserved(const cJSON *j)
{
    CU_ASSERT_EQUAL(tu_sum_buckets(j, "requests"), tu_num(j, "requests.generated"));
    CU_ASSERT_EQUAL(tu_sum_buckets(j, "pools.pre.requests"), tu_num(j, "pools.pre.requests.generated"));
    CU_ASSERT_EQUAL(tu_sum_buckets(j, "pools.dec.requests"), tu_num(j, "pools.dec.requests.generated"));
}

/* The decode replica's KV cache is 8 blocks of 16 tokens, as the prefill
 * replicas' (the same model); the prefill node runs two replicas
 * (gpus_per_node 2), so two prompts are prefilled at once. Otherwise as
 * scenario(), dec's latency 1 ms. */
static char *scenario_small(const char *trace, const char *tail)
{
    static char buf[8192];
    snprintf(buf, sizeof buf,
             "name: pd-small\n"
             "duration: 40s\n"
             "models:\n"
             "  m:\n"
             "    llm:\n"
             "      config: {hidden_size: 4096, num_hidden_layers: 32, num_attention_heads: 32,\n"
             "               num_key_value_heads: 8, intermediate_size: 14336, vocab_size: 128256}\n"
             "      kv_blocks: 8\n"
             "      step: {model: alpha_beta, overhead: 10ms, per_prefill_token: 100us,\n"
             "             per_decode_seq: 1ms}\n"
             "pools:\n"
             "  pre:\n"
             "    model: m\n"
             "    replicas: 1\n"
             "    gpus_per_node: 2\n"
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
             "%s",
             trace, tail ? tail : "");
    return buf;
}

/* The decode replica reserves a request's blocks (its prompt and first
 * output token) before its KV cache moves. A (100 + 20 tokens) at 0 and
 * B (100 + 10) at 5 ms, each prefilled on its own replica in 20 ms. A's
 * handoff at 20 ms reserves ceil(101 / 16) = 7 of the 8 blocks and its
 * transfer (14.1072 ms) lands at 34.1072 ms; A decodes its 19 tokens in
 * 11 ms steps (its 8th block at context 112, the last free one) and ends
 * at 34.1072 + 209 = 243.1072 ms. B's handoff at 25 ms finds 1 block
 * free, 7 needed: it waits, and its transfer starts only when A's end
 * frees the blocks, at 243.1072 ms; it lands at 257.2144 ms, and B's 9
 * decode steps end at 356.2144 ms (E2E 351.2144 ms; B's first inter-token
 * gap 25 ms -> 268.2144 ms). Both transfers take 14.1072 ms: B's was not
 * under way while it waited. Without the reservation B's transfer would
 * have landed at 39.1072 ms and B would have ended 14.1072 ms sooner. */
static void test_reservation_waits(void)
{
    char trace[4096], path[4096];
    char *td = write_trace("0.0,100,20\n0.005,100,10\n", trace, sizeof trace);
    int rc;
    char *dir = tu_run_yaml(scenario_small(trace, NULL), "--trace-steps steps.csv", &rc);
    CU_ASSERT_EQUAL(rc, 0);
    cJSON *j = tu_out_summary(dir);
    CU_ASSERT_PTR_NOT_NULL_FATAL(j);
    double xfer = 0.001 + 100 * KV_B / BW_BPS;
    double a_end = 0.020 + xfer + 19 * 0.011, b_start = a_end;
    double b_land = b_start + xfer, b_end = b_land + 9 * 0.011;
    CU_ASSERT_DOUBLE_EQUAL(a_end, 0.2431072, 1e-12);
    CU_ASSERT_DOUBLE_EQUAL(b_end, 0.3562144, 1e-12);
    CU_ASSERT_EQUAL(tu_num(j, "requests.completed"), 2);
    CU_ASSERT_EQUAL(tu_num(j, "pools.pre.llm.kv_transfer.count"), 2);
    CU_ASSERT_DOUBLE_EQUAL(tu_num(j, "pools.pre.llm.kv_transfer.time_s.max"), xfer, 1e-12);
    CU_ASSERT_DOUBLE_EQUAL(tu_num(j, "pools.pre.llm.kv_transfer.time_s.mean"), xfer, 1e-12);
    CU_ASSERT_DOUBLE_EQUAL(tu_num(j, "latency_s.max"), b_end - 0.005, 1e-12);
    CU_ASSERT_DOUBLE_EQUAL(tu_num(j, "pools.pre.llm.e2e_s.mean"),
                           (a_end + b_end - 0.005) / 2, 1e-12);
    CU_ASSERT_DOUBLE_EQUAL(tu_num(j, "pools.pre.llm.itl_s.max"), b_land + 0.011 - 0.025, 1e-12);
    CU_ASSERT_DOUBLE_EQUAL(tu_num(j, "pools.pre.llm.ttft_s.max"), 0.020, 1e-12);
    /* no preemption: the waiting request took no block from A */
    CU_ASSERT_EQUAL(tu_num(j, "pools.dec.llm.preemptions"), 0);
    CU_ASSERT_DOUBLE_EQUAL(tu_num(j, "pools.dec.llm.kv_usage_max"), 1.0, 1e-12);
    expect_conserved(j);
    /* the decode replica's steps: A's 19 from 34.1072 ms, B waiting for
     * blocks from 25 ms (counted as waiting, as vLLM counts a request in
     * WAITING_FOR_REMOTE_KVS), then B's first when its KV landed, at
     * context 100 in its 7 reserved blocks, nothing waiting */
    snprintf(path, sizeof path, "%s/steps.csv", dir);
    char *text = tu_read(path);
    CU_ASSERT_PTR_NOT_NULL_FATAL(text);
    char want[256];
    snprintf(want, sizeof want, "\n%.9f,dec,dec/0,0,0,0.011000000,0,1,100,1,1,7\n", 0.020 + xfer);
    CU_ASSERT_PTR_NOT_NULL(strstr(text, want));
    snprintf(want, sizeof want, "\n%.9f,dec,dec/0,0,18,0.011000000,0,1,118,1,1,8\n",
             a_end - 0.011);
    CU_ASSERT_PTR_NOT_NULL(strstr(text, want));
    snprintf(want, sizeof want, "\n%.9f,dec,dec/0,0,19,0.011000000,0,1,100,1,0,7\n", b_land);
    CU_ASSERT_PTR_NOT_NULL(strstr(text, want));
    /* the same file step by step (coalesce_steps false): B's wait is
     * counted from its handoff whichever way the steps ran */
    char *dir2 = tu_run_yaml(scenario_small(trace, NULL),
                             "--trace-steps steps.csv --set models.m.llm.coalesce_steps=false", &rc);
    CU_ASSERT_EQUAL(rc, 0);
    snprintf(path, sizeof path, "%s/steps.csv", dir2);
    char *text2 = tu_read(path);
    CU_ASSERT_PTR_NOT_NULL(text2);
    if (text2)
        CU_ASSERT_STRING_EQUAL(text, text2);
    free(text2);
    tu_done(dir2);
    free(text);
    cJSON_Delete(j);
    tu_done(dir);
    tu_done(td);
}

/* KV blocks come back after a decode crash and a failed transfer. A at 0
 * and B at 5 ms as above; dec/0 crashes at 30 ms, while A's transfer (7
 * blocks reserved) is on its way and B waits for blocks: both attempts
 * fail (no retry by default) and A's reservation is freed. C at 5 s runs
 * alone. D at 10 s: its transfer (10.02 .. 10.0341 s, 7 blocks reserved)
 * fails when pre/0 crashes at 10.03 s. E at 20 s needs 7 of the 8 blocks
 * again: it completes, as C did, in 20 ms + 14.1072 ms + 9 x 11 ms, which
 * it could not if a reservation had leaked. */
static void test_reservation_freed(void)
{
    char trace[4096];
    char *td = write_trace("0.0,100,20\n0.005,100,10\n5.0,100,10\n10.0,100,10\n20.0,100,10\n",
                           trace, sizeof trace);
    int rc;
    char *dir = tu_run_yaml(
        scenario_small(trace, "chaos:\n"
                              "  - {at: 0.03s, fault: node_crash, target: dec/0, recover_after: 1s}\n"
                              "  - {at: 10.03s, fault: node_crash, target: pre/0, recover_after: 1s}\n"),
        NULL, &rc);
    CU_ASSERT_EQUAL(rc, 0);
    cJSON *j = tu_out_summary(dir);
    CU_ASSERT_PTR_NOT_NULL_FATAL(j);
    double xfer = 0.001 + 100 * KV_B / BW_BPS;
    CU_ASSERT_EQUAL(tu_num(j, "requests.generated"), 5);
    CU_ASSERT_EQUAL(tu_num(j, "requests.completed"), 2);
    CU_ASSERT_EQUAL(tu_num(j, "requests.failed"), 3);
    CU_ASSERT_EQUAL(tu_num(j, "requests.in_flight_at_end"), 0);
    CU_ASSERT_EQUAL(tu_num(j, "pools.pre.llm.kv_transfer.count"), 2);
    /* A's and D's transfers had started; B's never did (it waited for
     * blocks): it fails before starting, not as a transfer */
    CU_ASSERT_EQUAL(tu_num(j, "pools.pre.llm.kv_transfer.failed"), 2);
    CU_ASSERT_EQUAL(tu_num(j, "pools.pre.llm.kv_transfer.failed_before_start"), 1);
    /* each error is blamed on the crash that failed its handoff: A's and
     * B's on dec/0's, D's on pre/0's */
    const cJSON *faults = cJSON_GetObjectItemCaseSensitive(j, "faults");
    CU_ASSERT_EQUAL(tu_num(cJSON_GetArrayItem(faults, 0), "requests.failed"), 2);
    CU_ASSERT_EQUAL(tu_num(cJSON_GetArrayItem(faults, 1), "requests.failed"), 1);
    CU_ASSERT_EQUAL(tu_num(j, "pools.pre.llm.finished"), 2);
    CU_ASSERT_DOUBLE_EQUAL(tu_num(j, "pools.pre.llm.e2e_s.max"), 0.020 + xfer + 9 * 0.011, 1e-9);
    CU_ASSERT_DOUBLE_EQUAL(tu_num(j, "pools.pre.llm.e2e_s.mean"), 0.020 + xfer + 9 * 0.011, 1e-9);
    CU_ASSERT(tu_num(j, "pools.dec.llm.kv_usage_max") <= 1.0);
    expect_conserved(j);
    cJSON_Delete(j);
    tu_done(dir);
    tu_done(td);
}

/* One request, 100 prompt tokens, 10 output tokens. The prefill step is
 * 10 + 100 x 0.1 = 20 ms and gives the first token: TTFT 20 ms exactly.
 * The KV cache, 100 x 131,072 = 13,107,200 B, crosses pre's link (0 s)
 * and dec's (1 ms) at 1 GB/s: 1 ms + 13.1072 ms = 14.1072 ms. The decode
 * replica then runs nine 11 ms decode steps: the second token at
 * 20 + 14.1072 + 11 ms, E2E 20 + 14.1072 + 99 ms. */
static void test_one_request(void)
{
    char trace[4096];
    char *td = write_trace("0.0,100,10\n", trace, sizeof trace);
    int rc;
    char *dir = tu_run_yaml(scenario(trace, "1ms", NULL), NULL, &rc);
    CU_ASSERT_EQUAL(rc, 0);
    cJSON *j = tu_out_summary(dir);
    CU_ASSERT_PTR_NOT_NULL_FATAL(j);
    double xfer = 0.001 + 100 * KV_B / BW_BPS;
    CU_ASSERT_DOUBLE_EQUAL(xfer, 0.0141072, 1e-12);
    CU_ASSERT_EQUAL(tu_num(j, "requests.completed"), 1);
    CU_ASSERT_DOUBLE_EQUAL(tu_num(j, "pools.pre.llm.ttft_s.mean"), 0.020, 1e-12);
    CU_ASSERT_DOUBLE_EQUAL(tu_num(j, "pools.pre.llm.ttft_s.max"), 0.020, 1e-12);
    CU_ASSERT_EQUAL(tu_num(j, "pools.pre.llm.kv_transfer.count"), 1);
    CU_ASSERT_EQUAL(tu_num(j, "pools.pre.llm.kv_transfer.failed"), 0);
    CU_ASSERT_DOUBLE_EQUAL(tu_num(j, "pools.pre.llm.kv_transfer.bytes"), 100 * KV_B, 1e-6);
    CU_ASSERT_DOUBLE_EQUAL(tu_num(j, "pools.pre.llm.kv_transfer.time_s.max"), xfer, 1e-12);
    /* the first decode token: prefill end + transfer + one decode step,
     * the longest gap between tokens */
    CU_ASSERT_DOUBLE_EQUAL(tu_num(j, "pools.pre.llm.itl_s.max"), xfer + 0.011, 1e-12);
    CU_ASSERT_DOUBLE_EQUAL(tu_num(j, "pools.pre.llm.e2e_s.mean"), 0.020 + xfer + 9 * 0.011, 1e-12);
    CU_ASSERT_DOUBLE_EQUAL(tu_num(j, "latency_s.max"), 0.020 + xfer + 9 * 0.011, 1e-12);
    CU_ASSERT_DOUBLE_EQUAL(tu_num(j, "pools.pre.llm.tpot_s.mean"), (xfer + 9 * 0.011) / 9, 1e-12);
    CU_ASSERT_EQUAL(tu_num(j, "pools.pre.llm.finished"), 1);
    /* each pool's own work: one prefill step and the first token there,
     * nine decode steps and nine tokens on the decode replica */
    CU_ASSERT_EQUAL(tu_num(j, "pools.pre.llm.steps"), 1);
    CU_ASSERT_EQUAL(tu_num(j, "pools.pre.llm.output_tokens"), 1);
    CU_ASSERT_EQUAL(tu_num(j, "pools.dec.llm.steps"), 9);
    CU_ASSERT_EQUAL(tu_num(j, "pools.dec.llm.output_tokens"), 9);
    CU_ASSERT_EQUAL(tu_num(j, "pools.dec.llm.finished"), 0); /* counted at pre */
    /* the request left pre when its KV landed and ended at dec */
    CU_ASSERT_EQUAL(tu_num(j, "pools.pre.requests.completed"), 1);
    CU_ASSERT_EQUAL(tu_num(j, "pools.dec.requests.generated"), 1);
    CU_ASSERT_EQUAL(tu_num(j, "pools.dec.requests.completed"), 1);
    expect_conserved(j);
    cJSON_Delete(j);
    tu_done(dir);
    tu_done(td);
}

/* The same request's steps (--trace-steps), by hand: the prefill replica's
 * one 20 ms step of 100 prompt tokens (7 blocks); the decode replica's
 * first step starts when the transfer lands, at 20 ms + 14.1072 ms, and
 * decodes at context 100 (the prompt came computed: no prefill there),
 * then eight more 11 ms steps at contexts 101..108, 7 blocks each. */
static void test_trace_steps(void)
{
    char trace[4096], path[4096], want[4096];
    char *td = write_trace("0.0,100,10\n", trace, sizeof trace);
    int rc;
    char *dir = tu_run_yaml(scenario(trace, "1ms", NULL), "--trace-steps steps.csv", &rc);
    CU_ASSERT_EQUAL(rc, 0);
    snprintf(path, sizeof path, "%s/steps.csv", dir);
    char *text = tu_read(path);
    CU_ASSERT_PTR_NOT_NULL_FATAL(text);
    double land = 0.020 + 0.001 + 100 * KV_B / BW_BPS;
    size_t n = (size_t)snprintf(want, sizeof want,
                                "time_s,pool,node,replica,step,duration_s,prefill_tokens,"
                                "decode_requests,context_tokens,running,waiting,kv_blocks_used\n"
                                "0.000000000,pre,pre/0,0,0,0.020000000,100,0,0,1,0,7\n");
    for (int j = 0; j < 9; j++)
        n += (size_t)snprintf(want + n, sizeof want - n,
                              "%.9f,dec,dec/0,0,%d,0.011000000,0,1,%d,1,0,7\n", land + 0.011 * j, j,
                              100 + j);
    CU_ASSERT_STRING_EQUAL(text, want);
    free(text);
    tu_done(dir);
    tu_done(td);
}

/* Links without latency: one transfer of 13,107,200 B takes 13.1072 ms; two
 * started together (both prompts in one 30 ms prefill step) share the
 * prefill node's link and the decode node's, each at 0.5 GB/s: both take
 * 26.2144 ms, twice as long. */
static void test_two_transfers_share_a_link(void)
{
    char trace[4096];
    double t_one = 100 * KV_B / BW_BPS;
    char *td = write_trace("0.0,100,4\n", trace, sizeof trace);
    int rc;
    char *dir = tu_run_yaml(scenario(trace, "0s", NULL), NULL, &rc);
    CU_ASSERT_EQUAL(rc, 0);
    cJSON *j = tu_out_summary(dir);
    CU_ASSERT_PTR_NOT_NULL_FATAL(j);
    CU_ASSERT_DOUBLE_EQUAL(tu_num(j, "pools.pre.llm.kv_transfer.time_s.max"), t_one, 1e-12);
    cJSON_Delete(j);
    tu_done(dir);
    tu_done(td);

    td = write_trace("0.0,100,4\n0.0,100,4\n", trace, sizeof trace);
    dir = tu_run_yaml(scenario(trace, "0s", NULL), NULL, &rc);
    CU_ASSERT_EQUAL(rc, 0);
    j = tu_out_summary(dir);
    CU_ASSERT_PTR_NOT_NULL_FATAL(j);
    CU_ASSERT_EQUAL(tu_num(j, "pools.pre.llm.kv_transfer.count"), 2);
    CU_ASSERT_DOUBLE_EQUAL(tu_num(j, "pools.pre.llm.ttft_s.max"), 0.030, 1e-12);
    CU_ASSERT_DOUBLE_EQUAL(tu_num(j, "pools.pre.llm.kv_transfer.time_s.max"), 2 * t_one, 1e-12);
    CU_ASSERT_DOUBLE_EQUAL(tu_num(j, "pools.pre.llm.kv_transfer.time_s.mean"), 2 * t_one, 1e-12);
    /* both land together and decode together: 12 ms steps of two */
    CU_ASSERT_DOUBLE_EQUAL(tu_num(j, "pools.pre.llm.e2e_s.max"), 0.030 + 2 * t_one + 3 * 0.012,
                           1e-12);
    expect_conserved(j);
    cJSON_Delete(j);
    tu_done(dir);
    tu_done(td);
}

/* A bandwidth cut to a quarter on the decode pool's links from the start:
 * the transfer's size / bandwidth part takes four times as long. */
static void test_bandwidth_cut_slows_transfer(void)
{
    char trace[4096];
    char *td = write_trace("0.0,100,4\n", trace, sizeof trace);
    int rc;
    char *dir = tu_run_yaml(scenario(trace, "1ms",
                                     "chaos:\n"
                                     "  - {at: 0s, fault: bandwidth_cut, factor: 0.25, target: dec}\n"),
                            NULL, &rc);
    CU_ASSERT_EQUAL(rc, 0);
    cJSON *j = tu_out_summary(dir);
    CU_ASSERT_PTR_NOT_NULL_FATAL(j);
    CU_ASSERT_DOUBLE_EQUAL(tu_num(j, "pools.pre.llm.kv_transfer.time_s.max"),
                           0.001 + 4 * 100 * KV_B / BW_BPS, 1e-12);
    CU_ASSERT_DOUBLE_EQUAL(tu_num(j, "pools.pre.llm.ttft_s.max"), 0.020, 1e-12);
    cJSON_Delete(j);
    tu_done(dir);
    tu_done(td);
}

/* Poisson arrivals with drawn lengths on two prefill and two decode
 * nodes, the run cut off mid-stream, a decode node crashing while it
 * serves and receives, then a prefill node while it sends: every request ends in one bucket or is in flight
 * (in a prefill replica, in a transfer, or in a decode replica), overall
 * and in each pool; what left the prefill pool as done arrived at the
 * decode pool; the transfers that landed are the decode pool's arrivals. */
static void test_conservation(void)
{
    static char buf[8192];
    snprintf(buf, sizeof buf,
             "name: pd-load\n"
             "duration: 40s\n"
             "seed: 3\n"
             "models:\n"
             "  m:\n"
             "    llm:\n"
             "      config: {hidden_size: 4096, num_hidden_layers: 32, num_attention_heads: 32,\n"
             "               num_key_value_heads: 8, intermediate_size: 14336, vocab_size: 128256}\n"
             "      kv_blocks: 400\n"
             "      step: {model: alpha_beta, overhead: 5ms, per_prefill_token: 50us,\n"
             "             per_decode_seq: 1ms}\n"
             "pools:\n"
             "  pre:\n"
             "    model: m\n"
             "    replicas: 2\n"
             "    gpus_per_node: 2\n"
             "    gpu: H100-SXM\n"
             "    link: {bandwidth: 2GB/s}\n"
             "    role: prefill\n"
             "    decode_pool: dec\n"
             "    decode_router: kv_aware\n"
             "    timeout: 20s\n"
             "  dec:\n"
             "    model: m\n"
             "    replicas: 2\n"
             "    gpus_per_node: 1\n"
             "    gpu: H100-SXM\n"
             "    link: {bandwidth: 2GB/s}\n"
             "    role: decode\n"
             "traffic:\n"
             "  - name: t\n"
             "    pool: pre\n"
             "    arrivals: {process: poisson, rate: 20}\n"
             "    tokens: {input: {distribution: lognormal, mean: 600, cv: 0.8, max: 3000},\n"
             "             output: {distribution: lognormal, mean: 150, cv: 0.8, min: 2, max: 1000}}\n"
             "chaos:\n"
             "  - {at: 12s, fault: node_crash, target: dec/1, duration: 5s}\n"
             "  - {at: 20s, fault: node_crash, target: pre/0, duration: 5s}\n");
    int rc;
    char *dir = tu_run_yaml(buf, NULL, &rc);
    CU_ASSERT_EQUAL(rc, 0);
    cJSON *j = tu_out_summary(dir);
    CU_ASSERT_PTR_NOT_NULL_FATAL(j);
    double gen = tu_num(j, "requests.generated");
    CU_ASSERT(gen > 600);
    expect_conserved(j);
    CU_ASSERT(tu_num(j, "requests.in_flight_at_end") > 0);
    CU_ASSERT(tu_num(j, "requests.completed") > 0);
    CU_ASSERT_EQUAL(tu_num(j, "pools.pre.requests.completed"), tu_num(j, "pools.dec.requests.generated"));
    /* every transfer that landed entered the decode pool, unless its
     * client had given up on the way (a prefill-pool timeout) */
    double landed = tu_num(j, "pools.pre.llm.kv_transfer.count");
    CU_ASSERT(landed >= tu_num(j, "pools.dec.requests.generated"));
    CU_ASSERT(landed - tu_num(j, "pools.dec.requests.generated") <=
              tu_num(j, "pools.pre.requests.timed_out"));
    /* every request completed ended at the decode pool (two tokens or more) */
    CU_ASSERT_EQUAL(tu_num(j, "requests.completed"), tu_num(j, "pools.dec.requests.completed"));
    /* the router spread the transfers over both decode replicas */
    const cJSON *per = cJSON_GetObjectItem(
        cJSON_GetObjectItem(cJSON_GetObjectItem(cJSON_GetObjectItem(
                                                    cJSON_GetObjectItem(j, "pools"), "pre"),
                                                "llm"),
                            "kv_transfer"),
        "per_decode_replica");
    CU_ASSERT_EQUAL_FATAL(cJSON_GetArraySize(per), 2);
    double a = cJSON_GetArrayItem(per, 0)->valuedouble, b = cJSON_GetArrayItem(per, 1)->valuedouble;
    CU_ASSERT(a > 0 && b > 0);
    /* the crashes ended handoffs on their way, at either end: here the
     * decode replicas are full, so those were waiting for blocks (failed
     * before starting) */
    CU_ASSERT(tu_num(j, "pools.pre.llm.kv_transfer.failed") +
                  tu_num(j, "pools.pre.llm.kv_transfer.failed_before_start") >= 1);
    /* each pick queued a transfer: landed, failed (after it started or
     * before), or on its way at the end */
    CU_ASSERT(a + b >= tu_num(j, "pools.pre.llm.kv_transfer.count") +
                           tu_num(j, "pools.pre.llm.kv_transfer.failed") +
                           tu_num(j, "pools.pre.llm.kv_transfer.failed_before_start"));
    cJSON_Delete(j);
    tu_done(dir);
}

/* Dynamo's planner needs TTFT, ISL, ITL and OSL; disaggregation sees the
 * first two at the prefill pool and the last two at the decode pool, so
 * each pool's planner must be fed its partner's. Prefill: alpha-beta
 * 5 ms + 50 us a token, 600-token prompts alone take 35 ms, 17.1k tokens/s
 * a replica, 34.3k a pod of 2; 80 req/s x 600 = 48k tokens/s wants 2
 * pods. Decode: 5 ms + 1 ms a sequence, at most 45 sequences in 50 ms:
 * 900 tokens/s a replica against 80 x 150 = 12k: more than its 3. Without
 * the partner's signals neither planner would adjust anything. */
static void test_sla_planner_disaggregated(void)
{
    static char buf[8192];
    snprintf(buf, sizeof buf,
             "name: pd-planner\n"
             "duration: 40s\n"
             "seed: 3\n"
             "models:\n"
             "  m:\n"
             "    llm:\n"
             "      config: {hidden_size: 4096, num_hidden_layers: 32, num_attention_heads: 32,\n"
             "               num_key_value_heads: 8, intermediate_size: 14336, vocab_size: 128256}\n"
             "      kv_blocks: 4000\n"
             "      step: {model: alpha_beta, overhead: 5ms, per_prefill_token: 50us,\n"
             "             per_decode_seq: 1ms}\n"
             "pools:\n"
             "  pre:\n"
             "    model: m\n"
             "    replicas: 1\n"
             "    max_replicas: 4\n"
             "    gpus_per_node: 2\n"
             "    gpu: H100-SXM\n"
             "    role: prefill\n"
             "    decode_pool: dec\n"
             "    lifecycle: {provision: 1s}\n"
             "  dec:\n"
             "    model: m\n"
             "    replicas: 1\n"
             "    max_replicas: 3\n"
             "    gpus_per_node: 1\n"
             "    gpu: H100-SXM\n"
             "    role: decode\n"
             "    lifecycle: {provision: 1s}\n"
             "traffic:\n"
             "  - name: t\n"
             "    pool: pre\n"
             "    arrivals: {process: poisson, rate: 80}\n"
             "    tokens: {input: 600, output: 150}\n"
             "autoscaler:\n"
             "  - {policy: sla_planner, pool: pre, role: prefill, adjustment_interval: 10s}\n"
             "  - {policy: sla_planner, pool: dec, role: decode, adjustment_interval: 10s}\n");
    int rc;
    char *dir = tu_run_yaml(buf, NULL, &rc);
    CU_ASSERT_EQUAL(rc, 0);
    cJSON *j = tu_out_summary(dir);
    CU_ASSERT_PTR_NOT_NULL_FATAL(j);
    expect_conserved(j);
    const cJSON *ev = cJSON_GetObjectItem(j, "scaling_events");
    int pre_to = 0, dec_to = 0;
    for (int i = 0; i < cJSON_GetArraySize(ev); i++) {
        const cJSON *e = cJSON_GetArrayItem(ev, i);
        const char *pool = cJSON_GetStringValue(cJSON_GetObjectItem(e, "pool"));
        int to = (int)cJSON_GetObjectItem(e, "to")->valuedouble;
        if (pool && strcmp(pool, "pre") == 0 && to > pre_to)
            pre_to = to;
        if (pool && strcmp(pool, "dec") == 0 && to > dec_to)
            dec_to = to;
    }
    CU_ASSERT_EQUAL(pre_to, 2);
    CU_ASSERT_EQUAL(dec_to, 3);
    cJSON_Delete(j);
    tu_done(dir);
}

/* y with the first `from` replaced by `to`, into out. */
static const char *edit(const char *y, const char *from, const char *to, char *out, size_t cap)
{
    const char *at = strstr(y, from);
    CU_ASSERT_PTR_NOT_NULL_FATAL(at);
    snprintf(out, cap, "%.*s%s%s", (int)(at - y), y, to, at + strlen(from));
    return out;
}

/* The only prefill node down from 5 s to 15 s: a prefill worker pulls its
 * work, so a dead one takes none, and requests arriving meanwhile wait in
 * the prefill queue for a worker: the outage shows as TTFT, not as 502s;
 * with a first-token deadline of 2 s those that wait longer time out
 * (504) instead. One request a second at 0.5 s, 1.5 s, ...; none is in
 * flight at the crash (each takes under 0.1 s), and the node is back at
 * 15 s (no lifecycle delays). */
static void test_prefill_outage_is_ttft(void)
{
    char rows[4096] = "", trace[4096];
    for (int i = 0; i < 30; i++) {
        char row[64];
        snprintf(row, sizeof row, "%d.5,100,4\n", i);
        strcat(rows, row);
    }
    char *td = write_trace(rows, trace, sizeof trace);
    const char *chaos = "chaos:\n"
                        "  - {at: 5s, fault: node_crash, target: pre/0, duration: 10s}\n";
    int rc;
    char *dir = tu_run_yaml(scenario(trace, "1ms", chaos), NULL, &rc);
    CU_ASSERT_EQUAL(rc, 0);
    cJSON *j = tu_out_summary(dir);
    CU_ASSERT_PTR_NOT_NULL_FATAL(j);
    CU_ASSERT_EQUAL(tu_num(j, "requests.generated"), 30);
    CU_ASSERT_EQUAL(tu_num(j, "requests.completed"), 30);
    CU_ASSERT_EQUAL(tu_num(j, "requests.failed"), 0);
    /* the first arrival of the outage (5.5 s) waited until 15 s */
    CU_ASSERT(tu_num(j, "pools.pre.llm.ttft_s.max") >= 9.5);
    expect_conserved(j);
    cJSON_Delete(j);
    tu_done(dir);

    dir = tu_run_yaml(scenario(trace, "1ms", chaos), "--set pools.pre.ttft_timeout=2s", &rc);
    CU_ASSERT_EQUAL(rc, 0);
    j = tu_out_summary(dir);
    CU_ASSERT_PTR_NOT_NULL_FATAL(j);
    CU_ASSERT_EQUAL(tu_num(j, "requests.failed"), 0);
    /* the arrivals at 5.5 s to 13.5 s would wait more than 2 s */
    CU_ASSERT_EQUAL(tu_num(j, "requests.timed_out"), 9);
    CU_ASSERT_EQUAL(tu_num(j, "requests.completed"), 21);
    CU_ASSERT(tu_num(j, "pools.pre.llm.ttft_s.max") <= 2);
    expect_conserved(j);
    cJSON_Delete(j);
    tu_done(dir);
    tu_done(td);
}

/* Each role key refused at its place (exit 2, file:line:col). Lines of
 * scenario(): pre's role 17, its decode_pool 18, dec's role 25, the
 * traffic's pool 28. */
static void test_errors(void)
{
    char trace[4096];
    char *td = write_trace("0.0,100,10\n", trace, sizeof trace);
    char base[8192], y[8192];
    snprintf(base, sizeof base, "%s", scenario(trace, "1ms", NULL));
    CU_ASSERT(tu_expect_error(edit(base, "    role: decode\n", "    role: mixed\n", y, sizeof y),
                              NULL, "s.yaml:18:18: pools.pre.decode_pool: pool dec has role mixed, "
                                    "not decode (give it role: decode)"));
    CU_ASSERT(tu_expect_error(edit(base, "decode_pool: dec\n", "decode_pool: xyz\n", y, sizeof y),
                              NULL, "s.yaml:18:18: pools.pre.decode_pool: unknown pool \"xyz\" (pools: pre, dec)"));
    CU_ASSERT(tu_expect_error(edit(base, "    role: decode\n", "    role: decod\n", y, sizeof y),
                              NULL, "s.yaml:25:11: pools.dec.role:"));
    CU_ASSERT(tu_expect_error(edit(base, "    decode_pool: dec\n", "", y, sizeof y), NULL,
                              "s.yaml:17:11: pools.pre: a prefill pool needs decode_pool"));
    CU_ASSERT(tu_expect_error(edit(base, "    pool: pre\n", "    pool: dec\n", y, sizeof y), NULL,
                              "s.yaml:28:11: traffic.t: pool dec has role decode"));
    CU_ASSERT(tu_expect_error(edit(base, "    role: decode\n", "", y, sizeof y), NULL,
                              "s.yaml:18:18: pools.pre.decode_pool: pool dec has role mixed"));
    CU_ASSERT(tu_expect_error(edit(base, "    decode_pool: dec\n",
                                   "    decode_pool: dec\n    decode_router: fastest\n", y,
                                   sizeof y),
                              NULL, "s.yaml:19:20: pools.pre.decode_router: unknown policy \"fastest\""));
    CU_ASSERT(tu_expect_error(edit(base, "    role: decode\n",
                                   "    role: decode\n    decode_pool: pre\n", y, sizeof y),
                              NULL, "s.yaml:26:5: pools.dec: decode_pool applies to a pool with "
                                    "role: prefill"));
    tu_done(td);
}

int main(void)
{
    CU_initialize_registry();
    CU_pSuite s = CU_add_suite("llm_disagg", NULL, NULL);
    CU_add_test(s, "one request: TTFT, transfer, first decode token", test_one_request);
    CU_add_test(s, "decoding starts when the transfer lands (--trace-steps)", test_trace_steps);
    CU_add_test(s, "two transfers share a link", test_two_transfers_share_a_link);
    CU_add_test(s, "a bandwidth cut slows a transfer", test_bandwidth_cut_slows_transfer);
    CU_add_test(s, "a decode replica without free blocks: the transfer waits",
                test_reservation_waits);
    CU_add_test(s, "reserved blocks freed by a decode crash and a failed transfer",
                test_reservation_freed);
    CU_add_test(s, "conservation under load and a crash", test_conservation);
    CU_add_test(s, "sla_planner on prefill and decode pools", test_sla_planner_disaggregated);
    CU_add_test(s, "a prefill outage shows as TTFT, or as timeouts", test_prefill_outage_is_ttft);
    CU_add_test(s, "role key errors", test_errors);
    CU_basic_set_mode(CU_BRM_VERBOSE);
    CU_basic_run_tests();
    unsigned f = CU_get_number_of_failures();
    CU_cleanup_registry();
    return f ? 1 : 0;
}
