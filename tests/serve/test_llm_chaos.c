/*
 * test_llm_chaos.c - faults on LLM fleets through the fleetsim binary, on
 * deterministic cases computed by hand: a lost GPU (gpu_failure) takes down
 * only the replica holding it, or the whole node when its replica spans
 * the node; the requests it held restart elsewhere with a full prefill and
 * its KV blocks all come back free (used + free = capacity); and the root
 * causes on summary.json's faults[].llm: KV caches lost, requests
 * restarted and the prompt tokens computed again, KV handoffs failed by a
 * crash or slowed by a bandwidth cut (by how much), and the first tokens a
 * prefill outage delayed (by how much) or timed out. The gpu_failure keys'
 * errors name file:line:col.
 */
#include "testutil.h"

#include <CUnit/Basic.h>

#include <math.h>
#include <stdio.h>
#include <string.h>

/* Fixed step times: 10 ms a step + 100 us a prompt token + 1 ms a decoding
 * sequence, so a 100-token prompt is one 20 ms step (its first token) and
 * each later token an 11 ms step for a replica running one sequence. */
#define MODEL                                                                              \
    "models:\n"                                                                            \
    "  m:\n"                                                                               \
    "    llm:\n"                                                                           \
    "      config: {hidden_size: 4096, num_hidden_layers: 32, num_attention_heads: 32,\n"  \
    "               num_key_value_heads: 8, intermediate_size: 14336, vocab_size: 128256}\n" \
    "      kv_blocks: 1000\n"                                                              \
    "      step: {model: alpha_beta, overhead: 10ms, per_prefill_token: 100us,\n"          \
    "             per_decode_seq: 1ms}\n"

static char *write_trace(const char *rows, char *path, size_t cap)
{
    char *dir = tu_tmpdir();
    snprintf(path, cap, "%s/trace.csv", dir);
    char text[8192];
    snprintf(text, sizeof text, "arrived_at,num_prefill_tokens,num_decode_tokens\n%s", rows);
    tu_write(path, text);
    return dir;
}

/* A mixed pool `g` of 2 nodes of 2 GPUs, tensor_parallel tp. */
static char *mixed(const char *trace, int tp, const char *chaos)
{
    static char buf[8192];
    snprintf(buf, sizeof buf,
             "name: gpu-loss\n"
             "duration: 30s\n" MODEL
             "pools:\n"
             "  g:\n"
             "    model: m\n"
             "    replicas: 2\n"
             "    gpus_per_node: 2\n"
             "    tensor_parallel: %d\n"
             "    gpu: H100-SXM\n"
             "    link: {latency: 0s, bandwidth: 1GB/s}\n"
             "traffic:\n"
             "  - name: t\n"
             "    pool: g\n"
             "    size: 0B\n"
             "    response_size: 0B\n"
             "    tokens: {trace: %s}\n"
             "%s",
             tp, trace, chaos);
    return buf;
}

/* Prefill pool `pre` and decode pool `dec`, 2 nodes of 1 GPU each; links
 * 1 GB/s, `dec`'s with 1 ms latency. */
static char *disagg(const char *trace, const char *tail)
{
    static char buf[8192];
    snprintf(buf, sizeof buf,
             "name: pd-chaos\n"
             "duration: 60s\n" MODEL
             "pools:\n"
             "  pre:\n"
             "    model: m\n"
             "    replicas: 2\n"
             "    gpus_per_node: 1\n"
             "    gpu: H100-SXM\n"
             "    link: {latency: 0s, bandwidth: 1GB/s}\n"
             "    role: prefill\n"
             "    decode_pool: dec\n"
             "  dec:\n"
             "    model: m\n"
             "    replicas: 2\n"
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
             trace, tail);
    return buf;
}

static const double KV_B = 131072.0; /* bytes a token: 2 x 32 x 8 x 128 x 2 B */
static const double BW_BPS = 1e9;

/* A number of summary.json's faults[i] at a dotted path; NAN if absent. */
static double fault_num(const cJSON *j, int i, const char *path)
{
    const cJSON *f = cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(j, "faults"), i);
    return f ? tu_num(f, path) : NAN;
}

static void expect_conserved(const cJSON *j)
{
    CU_ASSERT_EQUAL(tu_sum_buckets(j, "requests"), tu_num(j, "requests.generated"));
}

/* The events.jsonl line of type `type` (the first), from its start, or
 * NULL; freed by the caller with the text it points into (*text). */
static const char *event_line(const char *dir, const char *type, char **text)
{
    char path[512], key[96];
    snprintf(path, sizeof path, "%s/out/events.jsonl", dir);
    *text = tu_read(path);
    snprintf(key, sizeof key, "\"type\":\"%s\"", type);
    const char *at = *text ? strstr(*text, key) : NULL;
    while (at && at > *text && at[-1] != '\n')
        at--;
    return at;
}

/* The event's time (its t_s), or NAN. */
static double event_t(const char *line)
{
    double t = NAN;
    if (!line || sscanf(line, "{\"t_s\":%lf", &t) != 1)
        return NAN;
    return t;
}

/* Two requests at 0 s, 100 prompt and 1,000 output tokens, one to each
 * node (round robin), each on its node's replica 0. GPU 0 of g/0 is lost
 * at 1 s for 2 s: replica 0 of g/0 (tensor_parallel 1) goes down with the
 * KV cache of the request it decodes, which restarts on g/1 (the node it
 * has not tried) with its whole prompt computed again, on g/1's free
 * replica 1: a 20 ms prefill step at 1 s and 999 decode steps of 11 ms,
 * done at 1 + 0.020 + 10.989 = 12.009 s. Replica 1 of g/0 stays up (a
 * third request at 1.5 s is served, wherever it is sent), and replica 0
 * is back at 3 s. The fault's entry counts 1 KV cache lost, 1 restart, 100
 * prompt tokens computed again; the lost replica's blocks are all free
 * again. */
static void test_gpu_failure_takes_one_replica(void)
{
    char trace[4096];
    char *td = write_trace("0.0,100,1000\n0.0,100,1000\n1.5,100,10\n", trace, sizeof trace);
    int rc;
    char *dir = tu_run_yaml(
        mixed(trace, 1, "chaos:\n"
                        "  - {at: 1s, fault: gpu_failure, target: g/0, gpus: 1, duration: 2s}\n"),
        NULL, &rc);
    CU_ASSERT_EQUAL(rc, 0);
    cJSON *j = tu_out_summary(dir);
    CU_ASSERT_PTR_NOT_NULL_FATAL(j);
    CU_ASSERT_EQUAL(tu_num(j, "requests.generated"), 3);
    CU_ASSERT_EQUAL(tu_num(j, "requests.completed"), 3);
    CU_ASSERT_EQUAL(tu_num(j, "requests.failed"), 0);
    expect_conserved(j);
    CU_ASSERT_DOUBLE_EQUAL(tu_num(j, "latency_s.max"), 1 + 0.020 + 999 * 0.011, 1e-9);
    CU_ASSERT_EQUAL(fault_num(j, 0, "llm.kv_lost"), 1);
    CU_ASSERT_EQUAL(fault_num(j, 0, "llm.restarted"), 1);
    CU_ASSERT_EQUAL(fault_num(j, 0, "llm.prefill_tokens_redone"), 100);
    CU_ASSERT_EQUAL(fault_num(j, 0, "llm.handoffs_failed"), 0);
    CU_ASSERT_EQUAL(fault_num(j, 0, "requests.failed"), 0);
    cJSON_Delete(j);
    /* the node stayed up: no crash, one replica down and back at 3 s */
    char *text;
    CU_ASSERT_PTR_NULL(event_line(dir, "node_crash", &text));
    free(text);
    const char *down = event_line(dir, "replica_down", &text);
    CU_ASSERT_PTR_NOT_NULL(down);
    long freed = -1, used = -1, free_blocks = -1, cap = -1;
    const char *d = down ? strstr(down, "KV cache lost: ") : NULL;
    CU_ASSERT_PTR_NOT_NULL(d);
    if (d)
        CU_ASSERT_EQUAL(sscanf(d, "KV cache lost: %ld blocks freed (used %ld + free %ld = %ld)",
                               &freed, &used, &free_blocks, &cap),
                        4);
    /* the scheduler's state at the start of the decode horizon it was
     * running (steps of one composition are applied when the horizon
     * ends): the 100 prompt tokens and the first token's slot, 101 tokens
     * in 7 blocks of 16 */
    CU_ASSERT_EQUAL(freed, 7);
    CU_ASSERT_EQUAL(used, 0);
    CU_ASSERT_EQUAL(free_blocks, 1000);
    CU_ASSERT_EQUAL(cap, 1000);
    CU_ASSERT_DOUBLE_EQUAL(event_t(down), 1.0, 1e-12);
    free(text);
    const char *up = event_line(dir, "replica_up", &text);
    CU_ASSERT_DOUBLE_EQUAL(event_t(up), 3.0, 1e-12);
    free(text);
    tu_done(dir);
    tu_done(td);
}

/* The same with tensor_parallel 2: the lost GPU is in the node's one
 * replica, so the node crashes (a node_crash event naming gpu_failure) and
 * reboots through its lifecycle (no delays here) when the fault ends. */
static void test_gpu_failure_takes_the_node(void)
{
    char trace[4096];
    char *td = write_trace("0.0,100,1000\n0.0,100,1000\n", trace, sizeof trace);
    int rc;
    char *dir = tu_run_yaml(
        mixed(trace, 2, "chaos:\n"
                        "  - {at: 1s, fault: gpu_failure, target: g/0, gpu: 1, duration: 2s}\n"),
        NULL, &rc);
    CU_ASSERT_EQUAL(rc, 0);
    cJSON *j = tu_out_summary(dir);
    CU_ASSERT_PTR_NOT_NULL_FATAL(j);
    CU_ASSERT_EQUAL(tu_num(j, "requests.completed"), 2);
    expect_conserved(j);
    CU_ASSERT_EQUAL(fault_num(j, 0, "llm.kv_lost"), 1);
    CU_ASSERT_EQUAL(fault_num(j, 0, "llm.restarted"), 1);
    CU_ASSERT_EQUAL(fault_num(j, 0, "llm.prefill_tokens_redone"), 100);
    cJSON_Delete(j);
    char *text;
    const char *crash = event_line(dir, "node_crash", &text);
    CU_ASSERT(crash && strstr(crash, "gpu_failure") != NULL);
    free(text);
    CU_ASSERT_PTR_NULL(event_line(dir, "replica_down", &text));
    free(text);
    const char *back = event_line(dir, "node_recover", &text);
    CU_ASSERT_DOUBLE_EQUAL(event_t(back), 3.0, 1e-12);
    free(text);
    tu_done(dir);
    tu_done(td);
}

/* One request, 100 prompt and 1,000 output tokens: prefilled on pre/0,
 * its KV cache on dec/0 by 34.1 ms. dec/0's GPU is lost at 1 s (its only
 * replica: the node crashes): the request restarts at the prefill pool,
 * on pre/1, with a full prefill of its 100 prompt tokens, and goes on to
 * dec/1. Two transfers landed. */
static void test_decode_loss_restarts_with_full_prefill(void)
{
    char trace[4096];
    char *td = write_trace("0.0,100,1000\n", trace, sizeof trace);
    int rc;
    char *dir = tu_run_yaml(
        disagg(trace, "chaos:\n"
                      "  - {at: 1s, fault: gpu_failure, target: dec/0, duration: 5s}\n"),
        NULL, &rc);
    CU_ASSERT_EQUAL(rc, 0);
    cJSON *j = tu_out_summary(dir);
    CU_ASSERT_PTR_NOT_NULL_FATAL(j);
    CU_ASSERT_EQUAL(tu_num(j, "requests.completed"), 1);
    expect_conserved(j);
    CU_ASSERT_EQUAL(tu_num(j, "pools.pre.llm.kv_transfer.count"), 2);
    CU_ASSERT_EQUAL(fault_num(j, 0, "llm.kv_lost"), 1);
    CU_ASSERT_EQUAL(fault_num(j, 0, "llm.restarted"), 1);
    CU_ASSERT_EQUAL(fault_num(j, 0, "llm.prefill_tokens_redone"), 100);
    CU_ASSERT_EQUAL(fault_num(j, 0, "llm.handoffs_failed"), 0);
    cJSON_Delete(j);
    tu_done(dir);
    tu_done(td);
}

/* The transfer to dec/0 runs from 20 ms to 34.1072 ms; dec/0's GPU is
 * lost at 25 ms: the handoff fails (the fault's), the prefill replica's
 * copy of the cache is freed, and the request restarts on pre/1 with its
 * 100 prompt tokens computed again, then lands on dec/1. */
static void test_handoff_failed_by_gpu_loss(void)
{
    char trace[4096];
    char *td = write_trace("0.0,100,10\n", trace, sizeof trace);
    int rc;
    char *dir = tu_run_yaml(
        disagg(trace, "chaos:\n"
                      "  - {at: 25ms, fault: gpu_failure, target: dec/0, duration: 5s}\n"),
        NULL, &rc);
    CU_ASSERT_EQUAL(rc, 0);
    cJSON *j = tu_out_summary(dir);
    CU_ASSERT_PTR_NOT_NULL_FATAL(j);
    CU_ASSERT_EQUAL(tu_num(j, "requests.completed"), 1);
    expect_conserved(j);
    CU_ASSERT_EQUAL(tu_num(j, "pools.pre.llm.kv_transfer.failed"), 1);
    CU_ASSERT_EQUAL(tu_num(j, "pools.pre.llm.kv_transfer.count"), 1);
    CU_ASSERT_EQUAL(fault_num(j, 0, "llm.handoffs_failed"), 1);
    CU_ASSERT_EQUAL(fault_num(j, 0, "llm.kv_lost"), 1);
    CU_ASSERT_EQUAL(fault_num(j, 0, "llm.restarted"), 1);
    CU_ASSERT_EQUAL(fault_num(j, 0, "llm.prefill_tokens_redone"), 100);
    /* the retry's TTFT: from 0 s, a second 20 ms prefill after 25 ms */
    CU_ASSERT_DOUBLE_EQUAL(tu_num(j, "pools.pre.llm.ttft_s.max"), 0.045, 1e-12);
    cJSON_Delete(j);
    tu_done(dir);
    tu_done(td);
}

/* A bandwidth cut to half on the decode pool's links from the start: the
 * 13,107,200 B transfer takes 1 ms + 26.2144 ms where it would take
 * 1 ms + 13.1072 ms alone on unfaulted links; the cut is blamed for one
 * slowed handoff and 13.1072 ms. Without the cut no handoff is slowed. */
static void test_handoff_slowed_by_cut(void)
{
    char trace[4096];
    char *td = write_trace("0.0,100,4\n", trace, sizeof trace);
    int rc;
    char *dir = tu_run_yaml(
        disagg(trace, "chaos:\n"
                      "  - {at: 0s, fault: bandwidth_cut, factor: 0.5, target: dec, duration: 10s}\n"),
        NULL, &rc);
    CU_ASSERT_EQUAL(rc, 0);
    cJSON *j = tu_out_summary(dir);
    CU_ASSERT_PTR_NOT_NULL_FATAL(j);
    CU_ASSERT_DOUBLE_EQUAL(tu_num(j, "pools.pre.llm.kv_transfer.time_s.max"),
                           0.001 + 2 * 100 * KV_B / BW_BPS, 1e-12);
    CU_ASSERT_EQUAL(fault_num(j, 0, "llm.handoffs_slowed"), 1);
    CU_ASSERT_DOUBLE_EQUAL(fault_num(j, 0, "llm.handoff_delay_s"), 100 * KV_B / BW_BPS, 1e-9);
    CU_ASSERT_EQUAL(fault_num(j, 0, "llm.handoffs_failed"), 0);
    CU_ASSERT_EQUAL(fault_num(j, 0, "llm.kv_lost"), 0);
    cJSON_Delete(j);
    tu_done(dir);
    /* the same fault after the request: nothing to blame it for */
    dir = tu_run_yaml(
        disagg(trace, "chaos:\n"
                      "  - {at: 1s, fault: bandwidth_cut, factor: 0.5, target: dec, duration: 10s}\n"),
        NULL, &rc);
    CU_ASSERT_EQUAL(rc, 0);
    j = tu_out_summary(dir);
    CU_ASSERT_PTR_NOT_NULL_FATAL(j);
    CU_ASSERT(isnan(fault_num(j, 0, "llm.handoffs_slowed")));
    cJSON_Delete(j);
    tu_done(dir);
    tu_done(td);
}

/* Both prefill nodes down from 5.25 s to 15.25 s (no lifecycle delays):
 * one request a second at 0 s, 1 s, ... (a trace's times count from its
 * first row); the ten that arrive at 6 s to 15 s wait at the prefill
 * pool's balancer for a worker until 15.25 s, so the outage added
 * 9.25 + 8.25 + ... + 0.25 = 47.5 s to ten TTFTs, and nothing failed.
 * With a first-token deadline of 2 s the eight arrivals at 6 s to 13 s,
 * which would wait 9.25 s down to 2.25 s, time out instead, each blamed
 * on the outage; those at 14 s and 15 s still wait 1.25 s and 0.25 s. */
static void test_prefill_outage_attributed(void)
{
    char rows[4096] = "", trace[4096];
    for (int i = 0; i < 30; i++) {
        char row[64];
        snprintf(row, sizeof row, "%d.0,100,4\n", i);
        strcat(rows, row);
    }
    char *td = write_trace(rows, trace, sizeof trace);
    const char *chaos = "chaos:\n"
                        "  - {at: 5.25s, fault: node_crash, target: pre, duration: 10s}\n";
    int rc;
    char *dir = tu_run_yaml(disagg(trace, chaos), NULL, &rc);
    CU_ASSERT_EQUAL(rc, 0);
    cJSON *j = tu_out_summary(dir);
    CU_ASSERT_PTR_NOT_NULL_FATAL(j);
    CU_ASSERT_EQUAL(tu_num(j, "requests.completed"), 30);
    CU_ASSERT_EQUAL(fault_num(j, 0, "llm.ttft_delayed"), 10);
    CU_ASSERT_DOUBLE_EQUAL(fault_num(j, 0, "llm.ttft_added_s"), 47.5, 1e-9);
    CU_ASSERT_EQUAL(fault_num(j, 0, "llm.kv_lost"), 0);
    CU_ASSERT_EQUAL(fault_num(j, 0, "requests.failed"), 0);
    CU_ASSERT_EQUAL(fault_num(j, 0, "requests.timed_out"), 0);
    cJSON_Delete(j);
    tu_done(dir);

    dir = tu_run_yaml(disagg(trace, chaos), "--set pools.pre.ttft_timeout=2s", &rc);
    CU_ASSERT_EQUAL(rc, 0);
    j = tu_out_summary(dir);
    CU_ASSERT_PTR_NOT_NULL_FATAL(j);
    CU_ASSERT_EQUAL(tu_num(j, "requests.timed_out"), 8);
    CU_ASSERT_EQUAL(fault_num(j, 0, "requests.timed_out"), 8);
    CU_ASSERT_EQUAL(fault_num(j, 0, "llm.ttft_delayed"), 2);
    CU_ASSERT_DOUBLE_EQUAL(fault_num(j, 0, "llm.ttft_added_s"), 1.5, 1e-9);
    expect_conserved(j);
    cJSON_Delete(j);
    tu_done(dir);
    tu_done(td);
}

/* gpu_failure's keys, refused at their place (exit 2, file:line:col). */
static void test_errors(void)
{
    char trace[4096];
    char *td = write_trace("0.0,100,10\n", trace, sizeof trace);
    /* the chaos entry is on line 26 of mixed() */
    CU_ASSERT(tu_expect_error(
        mixed(trace, 1, "chaos:\n  - {at: 1s, fault: gpu_failure, target: g/0, gpus: 3}\n"), NULL,
        ":26:"));
    CU_ASSERT(tu_expect_error(
        mixed(trace, 1, "chaos:\n  - {at: 1s, fault: gpu_failure, target: g/0, gpus: 3}\n"), NULL,
        "GPUs 0..2 are not all on a node of 2 GPUs"));
    CU_ASSERT(tu_expect_error(
        mixed(trace, 1, "chaos:\n  - {at: 1s, fault: gpu_failure, target: g, gpu: -1}\n"), NULL,
        "chaos.0.gpu: expected an integer in [0, 1048576], got \"-1\""));
    CU_ASSERT(tu_expect_error(mixed(trace, 1, "chaos:\n  - {at: 1s, fault: gpu_failure}\n"), NULL,
                              "gpu_failure needs target (pool/index or pool) or zone"));
    CU_ASSERT(tu_expect_error(
        mixed(trace, 1, "chaos:\n  - {at: 1s, fault: node_crash, target: g, gpus: 1}\n"), NULL,
        "node_crash does not take gpus"));
    tu_done(td);
}

int main(void)
{
    CU_pSuite s;

    if (CU_initialize_registry() != CUE_SUCCESS)
        return CU_get_error();
    s = CU_add_suite("llm_chaos", NULL, NULL);
    CU_add_test(s, "gpu_failure takes one replica", test_gpu_failure_takes_one_replica);
    CU_add_test(s, "gpu_failure takes the node", test_gpu_failure_takes_the_node);
    CU_add_test(s, "decode loss restarts with a full prefill",
                test_decode_loss_restarts_with_full_prefill);
    CU_add_test(s, "handoff failed by a GPU loss", test_handoff_failed_by_gpu_loss);
    CU_add_test(s, "handoff slowed by a bandwidth cut", test_handoff_slowed_by_cut);
    CU_add_test(s, "prefill outage attributed", test_prefill_outage_attributed);
    CU_add_test(s, "errors", test_errors);
    CU_basic_set_mode(CU_BRM_VERBOSE);
    CU_basic_run_tests();
    unsigned int failures = CU_get_number_of_failures();
    CU_cleanup_registry();
    return (int)failures;
}
