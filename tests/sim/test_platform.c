/*
 * test_platform.c - the platform a run builds (sim/run/run.c): one host per
 * node slot and one for the balancer, and on every route the links a full
 * routing table gave it: balancer <-> a node crosses that node's link
 * alone (its latency and bandwidth exactly), a prefill node -> a decode
 * node crosses both nodes' links (latencies summed, the lower bandwidth).
 * Two batch pools in two zones with their own links, one of them with
 * room to scale out (a slot never used keeps no heatmap series), and a
 * prefill/decode pair; in-process (SimGrid's
 * engine is a singleton: one run per process), the routes asked of SimGrid
 * after the run.
 */
#include "testutil.h"

#include "engine.h"
#include "results.h"
#include "scenario.h"

#include <CUnit/Basic.h>

#include <simgrid/engine.h>
#include <simgrid/host.h>
#include <simgrid/link.h>

#include <math.h>
#include <stdio.h>
#include <string.h>

static const char *SCENARIO =
    "name: platform\n"
    "duration: 10s\n"
    "interval: 2s\n"
    "models:\n"
    "  m: {service: {distribution: deterministic, mean: 10ms}}\n"
    "  llm: {llm: {config: %s/scenarios/models/llama-3.1-8b.json}}\n"
    "pools:\n"
    "  east: {model: m, replicas: 2, max_replicas: 3, zone: us-east,\n"
    "         link: {latency: 250us, bandwidth: 8Gbps}}\n"
    "  west: {model: m, replicas: 1, zone: us-west,\n"
    "         link: {latency: 3ms, bandwidth: 1Gbps}}\n"
    "  pre: {model: llm, role: prefill, decode_pool: dec, replicas: 2, gpus_per_node: 1,\n"
    "        gpu: H100-SXM, link: {latency: 5us, bandwidth: 400Gbps}}\n"
    "  dec: {model: llm, role: decode, replicas: 2, gpus_per_node: 1, gpu: H100-SXM,\n"
    "        link: {latency: 7us, bandwidth: 100Gbps}}\n"
    "traffic:\n"
    "  - {name: a, pool: east, arrivals: {process: deterministic, rate: 10}}\n"
    "  - {name: b, pool: west, arrivals: {process: deterministic, rate: 10}}\n"
    "  - name: c\n"
    "    pool: pre\n"
    "    arrivals: {process: deterministic, rate: 2}\n"
    "    tokens: {input: {distribution: fixed, mean: 100},\n"
    "             output: {distribution: fixed, mean: 10}}\n";

static sg_host_t host(const char *name)
{
    sg_host_t h = sg_host_by_name(name);
    if (!h)
        printf("\n    no host %s", name);
    return h;
}

/* The link of a node: its latency and bandwidth as SimGrid read them from
 * the platform, the scenario's within rounding (SimGrid parses "5us" its
 * own way: 4.9999999999999996e-06 where the loader has 5.0000000000000004e-06) */
static sg_link_t node_link(const char *node, double lat_s, double bw_Bps)
{
    char name[80];
    snprintf(name, sizeof name, "%s/link", node);
    sg_link_t l = sg_link_by_name(name);
    CU_ASSERT_PTR_NOT_NULL_FATAL(l);
    CU_ASSERT_DOUBLE_EQUAL(sg_link_get_latency(l), lat_s, 1e-15 * lat_s);
    CU_ASSERT_DOUBLE_EQUAL(sg_link_get_bandwidth(l), bw_Bps, 1e-15 * bw_Bps);
    return l;
}

/* balancer <-> each of the pool's n slots: that node's link, both ways */
static void check_pool(const char *pool, int n, double lat_s, double bw_Bps)
{
    sg_host_t b = host("balancer");
    for (int j = 0; j < n; j++) {
        char name[64];
        snprintf(name, sizeof name, "%s/%d", pool, j);
        sg_host_t h = host(name);
        CU_ASSERT_PTR_NOT_NULL_FATAL(h);
        sg_link_t l = node_link(name, lat_s, bw_Bps);
        CU_ASSERT_EQUAL(sg_host_get_route_latency(b, h), sg_link_get_latency(l));
        CU_ASSERT_EQUAL(sg_host_get_route_bandwidth(b, h), sg_link_get_bandwidth(l));
        CU_ASSERT_EQUAL(sg_host_get_route_latency(h, b), sg_link_get_latency(l));
        CU_ASSERT_EQUAL(sg_host_get_route_bandwidth(h, b), sg_link_get_bandwidth(l));
    }
}

static void test_routes(void)
{
    char *dir = tu_tmpdir();
    char path[4096], yaml[4096];
    snprintf(yaml, sizeof yaml, SCENARIO, tu_src());
    snprintf(path, sizeof path, "%s/s.yaml", dir);
    tu_write(path, yaml);
    sc_scenario *sc = sc_load(path, NULL, 0, stderr);
    CU_ASSERT_PTR_NOT_NULL_FATAL(sc);
    rp_results r;
    CU_ASSERT_EQUAL_FATAL(sim_run(sc, NULL, &r), 0);
    /* the balancer, east's 3 slots, west's 1, two prefill and two decode */
    CU_ASSERT_EQUAL(sg_host_count(), 1 + 3 + 1 + 2 + 2);
    check_pool("east", 3, 250e-6, 8e9 / 8);
    check_pool("west", 1, 3e-3, 1e9 / 8);
    check_pool("pre", 2, 5e-6, 400e9 / 8);
    check_pool("dec", 2, 7e-6, 100e9 / 8);
    /* a KV transfer's path: the prefill node's link, then the decode node's */
    for (int i = 0; i < 2; i++)
        for (int j = 0; j < 2; j++) {
            char p[32], d[32];
            snprintf(p, sizeof p, "pre/%d", i);
            snprintf(d, sizeof d, "dec/%d", j);
            sg_link_t lp = node_link(p, 5e-6, 400e9 / 8), ld = node_link(d, 7e-6, 100e9 / 8);
            CU_ASSERT_EQUAL(sg_host_get_route_latency(host(p), host(d)),
                            sg_link_get_latency(lp) + sg_link_get_latency(ld));
            CU_ASSERT_DOUBLE_EQUAL(sg_host_get_route_latency(host(p), host(d)), 12e-6, 1e-15 * 12e-6);
            CU_ASSERT_EQUAL(sg_host_get_route_bandwidth(host(p), host(d)), sg_link_get_bandwidth(ld));
        }
    /* the runs did go through those routes: requests completed on each pool */
    CU_ASSERT(r.requests.completed > 0);
    CU_ASSERT_EQUAL(r.requests.generated, r.requests.completed + r.requests.rejected +
                                              r.requests.failed + r.requests.timed_out +
                                              r.requests.in_flight_at_end);
    CU_ASSERT(r.peak_rss_mb > 1);
    /* the heatmap's series: east's two nodes were up from the start (a
     * number in each of the 5 intervals), its third slot never left OFF
     * (kept no series: no cell in any) */
    CU_ASSERT_EQUAL_FATAL(r.pools[0].n_nodes, 3);
    CU_ASSERT_EQUAL_FATAL(r.n_samples, 5);
    for (size_t i = 0; i < r.n_samples; i++) {
        CU_ASSERT(isfinite(r.pools[0].nodes[0].busy[i]) && r.pools[0].nodes[0].busy[i] > 0);
        CU_ASSERT(isfinite(r.pools[0].nodes[1].busy[i]) && r.pools[0].nodes[1].busy[i] > 0);
        CU_ASSERT(isnan(r.pools[0].nodes[2].busy[i]));
    }
    rp_results_free(&r);
    sc_free(sc);
    tu_rm_rf(dir);
    free(dir);
}

int main(void)
{
    if (CU_initialize_registry() != CUE_SUCCESS)
        return 1;
    CU_pSuite s = CU_add_suite("platform", NULL, NULL);
    CU_add_test(s, "every route's latency and bandwidth", test_routes);
    CU_basic_set_mode(CU_BRM_VERBOSE);
    CU_basic_run_tests();
    unsigned fails = CU_get_number_of_failures();
    CU_cleanup_registry();
    return fails != 0;
}
