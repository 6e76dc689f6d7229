/*
 * test_model.c - the model layer (sim/model/) and the flow layer's retry
 * rule on hand-built state, without SimGrid actors: request FIFOs, the
 * interval an instant belongs to, busy time split over intervals, the node
 * state machine's bookkeeping (time, health, balancer view, events), ready
 * counts over node states (kept as states change, checked against a walk), a pool's host slots with a rollout, random
 * streams, the hooks' registration order, nginx's retry limits and the
 * connections a failed L7 balancer cuts.
 */
#include "flow.h"
#include "model.h"

#include <CUnit/Basic.h>
#include <gsl/gsl_rng.h>

#include <math.h>
#include <stdio.h>
#include <string.h>

static void test_fifo(void)
{
    eng_fifo f = { 0 };
    eng_req a = { 0 }, b = { 0 }, c = { 0 };
    a.id = 1, b.id = 2, c.id = 3;
    eng_fifo_push(&f, &a);
    eng_fifo_push(&f, &b);
    CU_ASSERT_EQUAL(f.len, 2);
    eng_req *r = eng_fifo_pop(&f);
    CU_ASSERT_PTR_EQUAL(r, &a);
    eng_fifo_push_head(&f, r); /* back where the pop took it */
    eng_fifo_push(&f, &c);
    CU_ASSERT_EQUAL(f.len, 3);
    unsigned long order[3];
    for (int i = 0; i < 3; i++)
        order[i] = eng_fifo_pop(&f)->id;
    CU_ASSERT_EQUAL(order[0], 1);
    CU_ASSERT_EQUAL(order[1], 2);
    CU_ASSERT_EQUAL(order[2], 3);
    CU_ASSERT_PTR_NULL(eng_fifo_pop(&f));
    CU_ASSERT_PTR_NULL(f.tail);
    CU_ASSERT_EQUAL(f.len, 0);
    /* push_head on an empty FIFO sets its tail too */
    eng_fifo_push_head(&f, &b);
    eng_fifo_push(&f, &c);
    CU_ASSERT_PTR_EQUAL(eng_fifo_pop(&f), &b);
    CU_ASSERT_PTR_EQUAL(eng_fifo_pop(&f), &c);
}

static sc_scenario SC;

static void setup_intervals(double interval_s, size_t n)
{
    memset(&eng_world, 0, sizeof eng_world);
    memset(&SC, 0, sizeof SC);
    SC.interval_s = interval_s;
    SC.duration_s = interval_s * (double)n;
    eng_world.sc = &SC;
    eng_world.n_intervals = n;
}

static void test_interval_of(void)
{
    setup_intervals(30, 4);
    CU_ASSERT_EQUAL(eng_interval_of(0), 0);
    CU_ASSERT_EQUAL(eng_interval_of(29.9), 0);
    /* SimGrid's clock for a sleep until 30 */
    CU_ASSERT_EQUAL(eng_interval_of(29.999999999999957), 1);
    CU_ASSERT_EQUAL(eng_interval_of(30), 1);
    CU_ASSERT_EQUAL(eng_interval_of(119), 3);
    CU_ASSERT_EQUAL(eng_interval_of(500), 3); /* past the end: the last */
    CU_ASSERT_EQUAL(eng_interval_of(-1), 0);
}

static void test_account_busy(void)
{
    setup_intervals(30, 4);
    double pool_busy[4] = { 0 }, node_busy[4] = { 0 }, serving[4] = { 0 };
    eng_pool p = { 0 };
    eng_node n = { 0 };
    p.busy_per_interval = pool_busy;
    p.serving_per_interval = serving;
    n.work.busy_series = node_busy;
    n.gpus = 8;
    /* [25, 95): 5 s in the first interval, 30 in the next two, 5 in the last */
    eng_account_busy(&p, &n, 25, 95);
    const double want[4] = { 5, 30, 30, 5 };
    for (int i = 0; i < 4; i++) {
        CU_ASSERT_DOUBLE_EQUAL(pool_busy[i], want[i], 1e-12);
        CU_ASSERT_DOUBLE_EQUAL(node_busy[i], want[i], 1e-12);
    }
    CU_ASSERT_DOUBLE_EQUAL(n.work.busy_gpu_s, 70, 1e-12);
    /* the last interval runs to the end of the run, and past it */
    eng_account_serving(&p, &n, 100, 130);
    CU_ASSERT_DOUBLE_EQUAL(serving[3], 8 * 30, 1e-12);
    CU_ASSERT_DOUBLE_EQUAL(serving[2], 0, 1e-12);
}

/* The node state machine's bookkeeping over one life: off, starting at 0,
 * ready at 10, draining at 40, off at 70; a crash on a second node. */
static void test_node_states(void)
{
    setup_intervals(30, 4);
    double serving[4] = { 0 };
    eng_node nodes[2] = { 0 };
    lb_server_view servers[2] = { 0 };
    eng_lbi lbi = { 0 };
    lbi.servers = servers;
    eng_pool p = { 0 };
    p.nodes = nodes;
    p.n_hosts = 2;
    p.lbi = &lbi;
    p.serving_per_interval = serving;
    eng_world.n_l7 = 1;
    rp_results out;
    memset(&out, 0, sizeof out);
    eng_world.out = &out;
    for (int j = 0; j < 2; j++) {
        eng_node *n = &nodes[j];
        n->pool = &p;
        n->index = j;
        n->gpus = 8;
        snprintf(n->name, sizeof n->name, "p-%d", j);
        n->life.up_since_s = n->life.ready_since_s = n->life.serving_since_s = -1;
    }
    eng_node *n = &nodes[0];
    CU_ASSERT_EQUAL(eng_node_set_state(n, NODE_STARTING, 0), 1);
    CU_ASSERT_DOUBLE_EQUAL(n->life.start_s, 0, 0);
    CU_ASSERT_FALSE(servers[0].up); /* not a server until ready */
    CU_ASSERT_EQUAL(eng_node_set_state(n, NODE_STARTING, 5), 0); /* no change, no event */
    CU_ASSERT_EQUAL(eng_node_set_state(n, NODE_READY, 10), 1);
    CU_ASSERT(servers[0].up);
    CU_ASSERT(n->health.registered && n->health.hc_up);
    CU_ASSERT_EQUAL(p.replicas_max, 1);
    CU_ASSERT_EQUAL(eng_node_set_state(n, NODE_DRAINING, 40), 1);
    CU_ASSERT_FALSE(servers[0].up); /* out of the server list, still serving */
    CU_ASSERT_DOUBLE_EQUAL(n->life.ready_total_s, 30, 1e-12);
    CU_ASSERT_DOUBLE_EQUAL(n->life.serving_since_s, 10, 0);
    CU_ASSERT_EQUAL(eng_node_set_state(n, NODE_OFF, 70), 1);
    CU_ASSERT_DOUBLE_EQUAL(n->life.up_total_s, 70, 1e-12);
    CU_ASSERT(isnan(n->life.start_s));
    /* serving from 10 to 70 on 8 GPUs: 20 s in [0,30), 30 in [30,60), 10 in [60,90) */
    CU_ASSERT_DOUBLE_EQUAL(serving[0], 8 * 20, 1e-9);
    CU_ASSERT_DOUBLE_EQUAL(serving[1], 8 * 30, 1e-9);
    CU_ASSERT_DOUBLE_EQUAL(serving[2], 8 * 10, 1e-9);
    CU_ASSERT_EQUAL(p.replicas_min, 0);
    /* a crash zeroes the host's exporter counters; the node is no server */
    eng_node *m = &nodes[1];
    eng_node_set_state(m, NODE_READY, 0);
    m->work.net_rx_bytes = 1000;
    eng_node_set_state(m, NODE_FAILED, 20);
    CU_ASSERT_EQUAL(m->work.net_rx_bytes, 0);
    CU_ASSERT_FALSE(m->health.registered);
    CU_ASSERT_FALSE(servers[1].up);
    CU_ASSERT_DOUBLE_EQUAL(m->life.ready_total_s, 20, 1e-12);
    /* one event per change, in order */
    const char *want[] = { "off -> starting", "starting -> ready", "ready -> draining",
                           "draining -> off", "off -> ready", "ready -> failed" };
    CU_ASSERT_EQUAL(out.n_events, 6);
    for (size_t i = 0; i < out.n_events && i < 6; i++) {
        CU_ASSERT_STRING_EQUAL(out.events[i].type, "node_state");
        CU_ASSERT_STRING_EQUAL(out.events[i].detail, want[i]);
    }
    CU_ASSERT_DOUBLE_EQUAL(out.events[3].t_s, 70, 0);
    rp_results_free(&out);
    eng_world.out = NULL;
    eng_world.n_l7 = 0;
}

/* The counts kept by eng_node_set_state (ready, starting, on, draining)
 * match a walk over the nodes after every change of a random sequence over
 * all eight states, repeats (no change) included; replicas_min and
 * replicas_max are the extremes of the walked ready count. */
static void test_ready_count_kept(void)
{
    enum { N = 16, STEPS = 5000 };
    setup_intervals(30, 4);
    double serving[4] = { 0 };
    eng_node nodes[N];
    lb_server_view servers[N];
    memset(nodes, 0, sizeof nodes);
    memset(servers, 0, sizeof servers);
    eng_lbi lbi = { 0 };
    lbi.servers = servers;
    eng_pool p = { 0 };
    p.nodes = nodes;
    p.n_hosts = N;
    p.lbi = &lbi;
    p.serving_per_interval = serving;
    eng_world.n_l7 = 1;
    rp_results out;
    memset(&out, 0, sizeof out);
    eng_world.out = &out;
    for (int j = 0; j < N; j++) {
        nodes[j].pool = &p;
        nodes[j].index = j;
        nodes[j].gpus = 1;
        snprintf(nodes[j].name, sizeof nodes[j].name, "p-%d", j);
        nodes[j].life.up_since_s = nodes[j].life.ready_since_s = -1;
        nodes[j].life.serving_since_s = -1;
    }
    gsl_rng *rng = eng_stream_rng(11, 0);
    int mismatches = 0, lo = 0, hi = 0, seen_ready = 0, seen_starting = 0;
    for (int i = 0; i < STEPS; i++) {
        eng_node *n = &nodes[gsl_rng_uniform_int(rng, N)];
        eng_node_state st = (eng_node_state)gsl_rng_uniform_int(rng, NODE_FAILED + 1);
        eng_node_set_state(n, st, 0.01 * i);
        int ready = eng_ready_recount(&p, 0), all = eng_ready_recount(&p, 1);
        eng_pool walked = p;
        eng_pool_recount(&walked);
        mismatches += eng_ready_count(&p, 0) != ready || eng_ready_count(&p, 1) != all ||
                      p.n_on != walked.n_on || p.n_draining != walked.n_draining;
        lo = ready < lo ? ready : lo;
        hi = ready > hi ? ready : hi;
        seen_ready = ready > seen_ready ? ready : seen_ready;
        seen_starting = all - ready > seen_starting ? all - ready : seen_starting;
    }
    CU_ASSERT_EQUAL(mismatches, 0);
    CU_ASSERT(seen_ready > 0 && seen_starting > 0); /* the sequence exercised both */
    CU_ASSERT_EQUAL(p.replicas_min, lo);
    CU_ASSERT_EQUAL(p.replicas_max, hi);
    gsl_rng_free(rng);
    rp_results_free(&out);
    eng_world.out = NULL;
    eng_world.n_l7 = 0;
}

static void test_ready_count_and_slots(void)
{
    eng_node nodes[6] = { 0 };
    eng_pool p = { 0 };
    p.nodes = nodes;
    p.n_hosts = 6;
    eng_node_state st[6] = { NODE_READY, NODE_PROVISIONING, NODE_WARMING, NODE_DRAINING,
                             NODE_FAILED, NODE_READY };
    for (int i = 0; i < 6; i++)
        nodes[i].life.state = st[i];
    eng_pool_recount(&p); /* states set directly, as at start-up */
    CU_ASSERT_EQUAL(eng_ready_count(&p, 0), 2);
    CU_ASSERT_EQUAL(p.n_on, 6);
    CU_ASSERT_EQUAL(p.n_draining, 1);
    CU_ASSERT_EQUAL(eng_ready_count(&p, 1), 4); /* + provisioning and warming */

    sc_pool pc = { 0 };
    pc.replicas = 4;
    pc.max_replicas = 10;
    int old = -1;
    CU_ASSERT_EQUAL(eng_pool_slots(&pc, &old), 10);
    CU_ASSERT_EQUAL(old, 10);
    pc.rollout.enabled = 1;
    pc.rollout.max_surge = 2;
    CU_ASSERT_EQUAL(eng_pool_slots(&pc, &old), 22); /* 10 old, 10 new + 2 surge */
    pc.max_replicas = 0;                            /* fixed size: replicas */
    CU_ASSERT_EQUAL(eng_pool_slots(&pc, NULL), 4 + 4 + 2);
}

static void test_streams(void)
{
    /* a stream's draws depend on (seed, stream) only, not on other streams */
    gsl_rng *a = eng_stream_rng(7, 3);
    gsl_rng *other = eng_stream_rng(7, 4);
    gsl_rng *b = eng_stream_rng(7, 3);
    int same = 1, differ = 0;
    for (int i = 0; i < 100; i++) {
        unsigned long x = gsl_rng_get(a), y = gsl_rng_get(b), z = gsl_rng_get(other);
        same &= x == y;
        differ |= x != z;
    }
    CU_ASSERT(same);
    CU_ASSERT(differ);
    sc_dist det = { 0 };
    det.kind = SC_DIST_DETERMINISTIC;
    CU_ASSERT_DOUBLE_EQUAL(eng_draw_unit(&det, a), 1.0, 0);
    double samples[3] = { 0.5, 1.0, 1.5 };
    sc_dist emp = { 0 };
    emp.kind = SC_DIST_EMPIRICAL;
    emp.samples = samples;
    emp.n_samples = 3;
    for (int i = 0; i < 50; i++) {
        double v = eng_draw_unit(&emp, a);
        CU_ASSERT(v == 0.5 || v == 1.0 || v == 1.5);
    }
    gsl_rng_free(a);
    gsl_rng_free(b);
    gsl_rng_free(other);
}

/* No two families of random streams share a stream: their ranges
 * [base, base + span) are disjoint, so e.g. the L4 balancer never draws
 * class 0's token lengths. The bases of the families that never moved
 * are fixed (changing one changes results). */
static void test_stream_families(void)
{
    for (int f = 0; f < ENG_N_STREAMS; f++)
        for (int g = f + 1; g < ENG_N_STREAMS; g++) {
            unsigned long a0 = eng_stream((eng_stream_family)f, 0);
            unsigned long a1 = a0 + eng_stream_span((eng_stream_family)f);
            unsigned long b0 = eng_stream((eng_stream_family)g, 0);
            unsigned long b1 = b0 + eng_stream_span((eng_stream_family)g);
            if (!(a1 <= b0 || b1 <= a0))
                fprintf(stderr, "\n  stream families %d and %d overlap\n", f, g);
            CU_ASSERT(a1 <= b0 || b1 <= a0);
        }
    CU_ASSERT_EQUAL(eng_stream(ENG_STREAM_ARRIVALS, 2), 2UL);
    CU_ASSERT_EQUAL(eng_stream(ENG_STREAM_LB, 3), 1000003UL);
    CU_ASSERT_EQUAL(eng_stream(ENG_STREAM_NODE, 999999), 2999999UL);
    CU_ASSERT_EQUAL(eng_stream(ENG_STREAM_TOKENS, 0), 6000000UL);
    CU_ASSERT_EQUAL(eng_stream(ENG_STREAM_FAILOVER, 1), 7000001UL);
    CU_ASSERT_EQUAL(eng_stream_span(ENG_STREAM_NODE), (unsigned long)SC_MAX_NODE_SLOTS);
    /* the noise streams' layout (1e9 x pool + 1000 x node + replica) fits
     * every node slot of 1,000 pools */
    CU_ASSERT(1000UL * 1000000000UL <= eng_stream_span(ENG_STREAM_LLM_NOISE));
    CU_ASSERT(1000UL * (unsigned long)SC_MAX_NODE_SLOTS <= 1000000000UL);
}

static char CALLS[16];
static int N_CALLS;
static void first(struct eng_pool *p, double now)
{
    (void)p, (void)now;
    CALLS[N_CALLS++] = '1';
}
static void second(struct eng_pool *p, double now)
{
    (void)p;
    CALLS[N_CALLS++] = now > 0 ? '2' : '0';
}

static void test_hooks(void)
{
    eng_hooks_clear();
    N_CALLS = 0;
    ENG_NOTIFY(arrival, NULL, 1.0); /* no subscriber: nothing */
    CU_ASSERT_EQUAL(N_CALLS, 0);
    ENG_HOOK_ADD(arrival, second);
    ENG_HOOK_ADD(arrival, first);
    ENG_NOTIFY(arrival, NULL, 1.0);
    CU_ASSERT_EQUAL(N_CALLS, 2);
    CU_ASSERT_EQUAL(CALLS[0], '2'); /* in registration order */
    CU_ASSERT_EQUAL(CALLS[1], '1');
    CU_ASSERT_EQUAL(eng_hook.n_request_end, 0);
    eng_hooks_clear();
    CU_ASSERT_EQUAL(eng_hook.n_arrival, 0);
}

static void test_retry_rule(void)
{
    setup_intervals(1, 1);
    eng_pool p = { 0 };
    p.n_hosts = 3;
    eng_req r = { 0 };
    r.deadline_s = 10;
    r.stage_s = 1;
    r.attempts = 1;
    r.n_tried = 1;
    CU_ASSERT_EQUAL(eng_retry_allowed(&p, &r, 2, 0), 0); /* not a retried failure */
    CU_ASSERT_EQUAL(eng_retry_allowed(&p, &r, 2, 1), 1);
    /* tries 0: every server once */
    r.attempts = 3;
    CU_ASSERT_EQUAL(eng_retry_allowed(&p, &r, 2, 1), 0);
    SC.lb.retry_tries = 5;
    CU_ASSERT_EQUAL(eng_retry_allowed(&p, &r, 2, 1), 1);
    r.attempts = 5;
    CU_ASSERT_EQUAL(eng_retry_allowed(&p, &r, 2, 1), 0);
    r.attempts = 2;
    /* proxy_next_upstream_timeout counts from when r reached this stage */
    SC.lb.retry_timeout_s = 0.5;
    CU_ASSERT_EQUAL(eng_retry_allowed(&p, &r, 1.4, 1), 1);
    CU_ASSERT_EQUAL(eng_retry_allowed(&p, &r, 1.5, 1), 0);
    SC.lb.retry_timeout_s = 0;
    /* never at or past the client's deadline */
    CU_ASSERT_EQUAL(eng_retry_allowed(&p, &r, 9.99, 1), 1);
    CU_ASSERT_EQUAL(eng_retry_allowed(&p, &r, 10, 1), 0);
    /* the servers a request remembers bound its attempts */
    r.n_tried = ENG_MAX_TRIED;
    CU_ASSERT_EQUAL(eng_retry_allowed(&p, &r, 2, 1), 0);
}

/* An L7 balancer that goes down cuts the client connections it holds: the
 * first time it went down after the request was sent and by now. */
static void test_cut_rule(void)
{
    memset(&eng_world, 0, sizeof eng_world);
    double down_at[2] = { 50, 80 };
    int cause[2] = { 3, 4 }, rec[2] = { 7, 8 };
    eng_l7 l7 = { 0 };
    l7.down_at_s = down_at;
    l7.down_cause = cause;
    l7.down_rec = rec;
    l7.n_down = 2;
    eng_world.l7 = &l7;
    eng_world.n_l7 = 1;
    eng_req r = { 0 };
    r.l7 = 0;
    r.sent_s = 40;
    CU_ASSERT(isinf(tier_cut(&r, 60))); /* no two tiers: never cut */
    eng_world.l4 = (lb *)&l7;           /* any non-NULL: two tiers */
    CU_ASSERT(isinf(tier_cut(&r, 49.9)));
    CU_ASSERT_DOUBLE_EQUAL(tier_cut(&r, 60), 50, 0);
    r.sent_s = 50; /* sent as it went down: that outage did not hold it */
    CU_ASSERT(isinf(tier_cut(&r, 79)));
    int c = -1, k = -1;
    CU_ASSERT_DOUBLE_EQUAL(tier_cut_at(&r, 90, &c, &k), 80, 0);
    CU_ASSERT_EQUAL(c, 4);
    CU_ASSERT_EQUAL(k, 8);
    r.job = 1; /* an acknowledged job's client has its answer */
    CU_ASSERT(isinf(tier_cut(&r, 90)));
    memset(&eng_world, 0, sizeof eng_world);
}

int main(void)
{
    if (CU_initialize_registry() != CUE_SUCCESS)
        return 1;
    CU_pSuite s = CU_add_suite("model", NULL, NULL);
    CU_add_test(s, "request FIFO", test_fifo);
    CU_add_test(s, "random stream families", test_stream_families);
    CU_add_test(s, "interval of an instant", test_interval_of);
    CU_add_test(s, "busy and serving time per interval", test_account_busy);
    CU_add_test(s, "node state bookkeeping", test_node_states);
    CU_add_test(s, "ready counts and host slots", test_ready_count_and_slots);
    CU_add_test(s, "ready counts kept over random state changes", test_ready_count_kept);
    CU_add_test(s, "random streams and unit draws", test_streams);
    CU_add_test(s, "hooks in registration order", test_hooks);
    CU_add_test(s, "nginx retry limits", test_retry_rule);
    CU_add_test(s, "cut connections of a failed L7 balancer", test_cut_rule);
    CU_basic_set_mode(CU_BRM_VERBOSE);
    CU_basic_run_tests();
    unsigned fails = CU_get_number_of_failures();
    CU_cleanup_registry();
    return fails ? 1 : 0;
}
