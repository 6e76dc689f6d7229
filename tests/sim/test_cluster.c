/*
 * test_cluster.c - replicas on a node pool with a Cluster Autoscaler: a
 * replica that finds no free slot on a ready node is pending and
 * unscheduled; the autoscaler asks for ceil(pending / pods_per_node) nodes
 * at its next scan, up to max_nodes, each ready after the provisioning
 * delay; a replica placed on a node already up skips provisioning; an empty
 * node goes after scale_down_unneeded, not during the cooldown after a
 * scale-up. Exact times on a deterministic scenario.
 */
#include "testutil.h"

#include "engine.h"
#include "results.h"
#include "scenario.h"

#include <CUnit/Basic.h>

#include <math.h>
#include <stdio.h>
#include <string.h>

/* 1 replica, then 4 from 60 s to 540 s (the scheduled policy syncs every
 * 60 s), 2 pods per node. The cluster autoscaler scans at 25, 50, 75, ...
 * s, so the request at 60 s is seen at 75 s; a node takes 30 s, a replica
 * 5 + 10 + 5 s from container start to ready. */
static const char *SCENARIO =
    "name: cluster\n"
    "duration: 900s\n"
    "interval: 5s\n"
    "models:\n"
    "  m: {service: {distribution: deterministic, mean: 10ms}}\n"
    "pools:\n"
    "  p:\n"
    "    model: m\n"
    "    replicas: 1\n"
    "    max_replicas: 4\n"
    "    lifecycle: {provision: 1000s, start: 5s, load: 10s, warmup: 5s}\n"
    "    node_pool: {max_nodes: %d, pods_per_node: 2, provisioning: 30s, scan_interval: 25s,\n"
    "                scale_down_unneeded: 60s}\n"
    "traffic:\n"
    "  - name: t\n"
    "    pool: p\n"
    "    arrivals: {process: deterministic, rate: 20}\n"
    "autoscaler: {policy: scheduled, schedule: \"00:00=1, 00:01=4, 00:09=1\"}\n";

static char *run(int max_nodes, int *rc)
{
    char *dir = tu_tmpdir();
    char path[4096], yaml[4096], log[4096];
    snprintf(yaml, sizeof yaml, SCENARIO, max_nodes);
    snprintf(path, sizeof path, "%s/s.yaml", dir);
    tu_write(path, yaml);
    snprintf(log, sizeof log, "%s/log", dir);
    *rc = tu_sh(log, "'%s' run '%s' --quiet --out '%s/out'", tu_bin(), path, dir);
    return dir;
}

/* Time of the first event of type for subject with detail containing
 * detail (NULL = any), or -1. */
static double event_at(const char *events, const char *type, const char *subject,
                       const char *detail)
{
    for (const char *line = events; line && *line;) {
        const char *end = strchr(line, '\n');
        size_t len = end ? (size_t)(end - line) : strlen(line);
        cJSON *j = cJSON_ParseWithLength(line, len);
        double t = -1;
        if (j) {
            const cJSON *ty = cJSON_GetObjectItem(j, "type");
            const cJSON *su = cJSON_GetObjectItem(j, "subject");
            const cJSON *de = cJSON_GetObjectItem(j, "detail");
            if (cJSON_IsString(ty) && strcmp(ty->valuestring, type) == 0 && cJSON_IsString(su) &&
                strcmp(su->valuestring, subject) == 0 &&
                (detail == NULL || (cJSON_IsString(de) && strstr(de->valuestring, detail))))
                t = cJSON_GetObjectItem(j, "t_s")->valuedouble;
            cJSON_Delete(j);
        }
        if (t >= 0)
            return t;
        line = end ? end + 1 : NULL;
    }
    return -1;
}

static char *events_of(const char *dir)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/out/events.jsonl", dir);
    return tu_read(path);
}

static void test_nodes_added_and_removed(void)
{
    int rc;
    char *dir = run(2, &rc);
    CU_ASSERT_EQUAL_FATAL(rc, 0);
    char *ev = events_of(dir);
    CU_ASSERT_PTR_NOT_NULL_FATAL(ev);
    /* the initial replica's node is up at t = 0 and has a free slot: the
     * second replica lands there and skips provisioning */
    CU_ASSERT_EQUAL(event_at(ev, "node_provisioned", "p/node0", "initial"), 0);
    CU_ASSERT_EQUAL(event_at(ev, "pod_scheduled", "p/1", "p/node0"), 60);
    CU_ASSERT_EQUAL(event_at(ev, "node_state", "p/1", "off -> starting"), 60);
    CU_ASSERT_EQUAL(event_at(ev, "node_state", "p/1", "provisioning"), -1);
    CU_ASSERT_EQUAL(event_at(ev, "node_state", "p/1", "warming -> ready"), 60 + 20);
    /* the other two wait for a node: one more, asked for at the first scan
     * after the request, ready 30 s later; both replicas start on it then */
    CU_ASSERT_EQUAL(event_at(ev, "pod_pending", "p/2", NULL), 60);
    CU_ASSERT_EQUAL(event_at(ev, "pod_pending", "p/3", NULL), 60);
    CU_ASSERT_EQUAL(event_at(ev, "node_scale_up", "p", "1 -> 2 nodes for 2 pending"), 75);
    CU_ASSERT_EQUAL(event_at(ev, "node_provisioned", "p/node1", NULL), 75 + 30);
    CU_ASSERT_EQUAL(event_at(ev, "node_provisioned", "p/node2", NULL), -1);
    for (int j = 2; j <= 3; j++) {
        char name[16];
        snprintf(name, sizeof name, "p/%d", j);
        CU_ASSERT_EQUAL(event_at(ev, "pod_scheduled", name, "p/node1"), 105);
        CU_ASSERT_EQUAL(event_at(ev, "node_state", name, "provisioning -> starting"), 105);
        CU_ASSERT_EQUAL(event_at(ev, "node_state", name, "warming -> ready"), 105 + 20);
    }
    /* back to 1 at 540 s: node1 empties then, is found empty at the scan
     * of 550 s and unneeded for 60 s from 625 s on, but scale-down is in
     * cooldown until 75 s + 10 min (scale-down-delay-after-add) */
    CU_ASSERT_EQUAL(event_at(ev, "node_state", "p/3", "ready -> draining"), 540);
    CU_ASSERT_EQUAL(event_at(ev, "node_removed", "p/node1", "empty since 550"), 675);
    CU_ASSERT_EQUAL(event_at(ev, "node_removed", "p/node0", NULL), -1);

    char out[4096];
    snprintf(out, sizeof out, "%s/out", dir);
    cJSON *j = tu_summary(out);
    CU_ASSERT_PTR_NOT_NULL_FATAL(j);
    CU_ASSERT_EQUAL(tu_num(j, "pools.p.replicas_max"), 4);
    cJSON_Delete(j);
    free(ev);
    tu_rm_rf(dir);
    free(dir);
}

static void test_max_nodes_leaves_pods_pending(void)
{
    int rc;
    char *dir = run(1, &rc);
    CU_ASSERT_EQUAL_FATAL(rc, 0);
    char *ev = events_of(dir);
    CU_ASSERT_PTR_NOT_NULL_FATAL(ev);
    CU_ASSERT_EQUAL(event_at(ev, "pod_scheduled", "p/1", "p/node0"), 60);
    CU_ASSERT_EQUAL(event_at(ev, "pod_pending", "p/2", NULL), 60);
    CU_ASSERT_EQUAL(event_at(ev, "pod_pending", "p/3", NULL), 60);
    /* the node group is at its max size: no scale-up, they never start */
    CU_ASSERT_EQUAL(event_at(ev, "node_scale_up", "p", NULL), -1);
    CU_ASSERT_EQUAL(event_at(ev, "pod_scheduled", "p/2", NULL), -1);
    CU_ASSERT_EQUAL(event_at(ev, "node_state", "p/2", "provisioning -> starting"), -1);
    /* scaling down removes the unscheduled replicas first, then one ready */
    CU_ASSERT_EQUAL(event_at(ev, "node_state", "p/2", "provisioning -> off"), 540);
    CU_ASSERT_EQUAL(event_at(ev, "node_state", "p/3", "provisioning -> off"), 540);
    CU_ASSERT_EQUAL(event_at(ev, "node_state", "p/1", "ready -> draining"), 540);
    CU_ASSERT_EQUAL(event_at(ev, "node_state", "p/0", "ready -> draining"), -1);

    char out[4096];
    snprintf(out, sizeof out, "%s/out", dir);
    cJSON *j = tu_summary(out);
    CU_ASSERT_PTR_NOT_NULL_FATAL(j);
    CU_ASSERT_EQUAL(tu_num(j, "pools.p.replicas_max"), 2);
    cJSON_Delete(j);
    free(ev);
    tu_rm_rf(dir);
    free(dir);
}

/* In-process (once: SimGrid is a singleton): the time series' pending
 * replicas, at each interval's end. */
static void test_pending_series(void)
{
    char *dir = tu_tmpdir();
    char path[4096], yaml[4096];
    snprintf(yaml, sizeof yaml, SCENARIO, 2);
    snprintf(path, sizeof path, "%s/s.yaml", dir);
    tu_write(path, yaml);
    sc_scenario *sc = sc_load(path, NULL, 0, stderr);
    CU_ASSERT_PTR_NOT_NULL_FATAL(sc);
    rp_results r;
    CU_ASSERT_EQUAL_FATAL(sim_run(sc, NULL, &r), 0);
    CU_ASSERT_EQUAL_FATAL(r.n_samples, 180);
    /* interval i covers [5i, 5i + 5): pending from 60 s to 105 s */
    for (size_t i = 0; i < r.n_samples; i++) {
        int want = i >= 12 && i < 21 ? 2 : 0;
        if (r.samples[i].pools[0].pending != want) {
            printf("\n    interval %zu: pending %d, expected %d", i, r.samples[i].pools[0].pending,
                   want);
            CU_FAIL("pending replicas in the time series");
            break;
        }
    }
    CU_ASSERT_EQUAL(r.samples[11].pools[0].replicas, 1);
    CU_ASSERT_EQUAL(r.samples[16].pools[0].replicas, 2);
    CU_ASSERT_EQUAL(r.samples[25].pools[0].replicas, 4);
    rp_results_free(&r);
    sc_free(sc);
    tu_rm_rf(dir);
    free(dir);
}

static void test_config_errors(void)
{
    char *dir = tu_tmpdir();
    char path[4096], log[4096];
    snprintf(path, sizeof path, "%s/bad.yaml", dir);
    snprintf(log, sizeof log, "%s/log", dir);
    tu_write(path, "name: x\n"
                   "duration: 10s\n"
                   "models:\n"
                   "  m: {service: {mean: 10ms}}\n"
                   "pools:\n"
                   "  p:\n"
                   "    model: m\n"
                   "    replicas: 5\n"
                   "    node_pool: {max_nodes: 2, pods_per_node: 2, scan: 10s}\n"
                   "  q:\n"
                   "    model: m\n"
                   "    replicas: 1\n"
                   "    node_pool: {pods_per_node: 2}\n"
                   "traffic:\n"
                   "  - {name: t, pool: p, arrivals: {rate: 1}}\n");
    CU_ASSERT_EQUAL(tu_sh(log, "'%s' run '%s' --quiet", tu_bin(), path), 2);
    char *msg = tu_read(log);
    CU_ASSERT_PTR_NOT_NULL_FATAL(msg);
    CU_ASSERT_PTR_NOT_NULL(strstr(msg, "pools.p.node_pool: unknown key \"scan\" (valid keys: "
                                       "max_nodes, pods_per_node, provisioning, scan_interval, "
                                       "scale_down_unneeded, scale_down_delay_after_add)"));
    CU_ASSERT_PTR_NOT_NULL(strstr(msg, "pools.p.node_pool.max_nodes: max_nodes (2) x "
                                       "pods_per_node (2) cannot hold the 5 initial replicas"));
    CU_ASSERT_PTR_NOT_NULL(strstr(msg, "pools.q.node_pool: missing required key max_nodes"));
    free(msg);
    tu_rm_rf(dir);
    free(dir);
}

int main(void)
{
    if (CU_initialize_registry() != CUE_SUCCESS)
        return 1;
    CU_pSuite s = CU_add_suite("cluster", NULL, NULL);
    CU_add_test(s, "nodes added at a scan, removed when unneeded", test_nodes_added_and_removed);
    CU_add_test(s, "max_nodes leaves replicas pending", test_max_nodes_leaves_pods_pending);
    CU_add_test(s, "pending replicas in the time series", test_pending_series);
    CU_add_test(s, "node_pool configuration errors", test_config_errors);
    CU_basic_set_mode(CU_BRM_VERBOSE);
    CU_basic_run_tests();
    unsigned fails = CU_get_number_of_failures();
    CU_cleanup_registry();
    return fails != 0;
}
