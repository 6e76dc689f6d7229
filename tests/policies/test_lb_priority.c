/*
 * test_lb_priority.c - Envoy's priority load (policies/lb_priority.c) on
 * cases computed by hand from load_balancer_impl.cc's integer formula:
 * health = min(100, 140 * healthy / hosts), load shared from level 0 down
 * in proportion to health / min(100, sum of health), the rounding remainder
 * to the first level with health; panic under 50% healthy unless the total
 * is 100; in total panic the load follows host counts. The table of
 * Envoy's priority-levels documentation (100/72/71/50/25/0% healthy at P0,
 * P1 all healthy) is the first set of cases.
 */
#include "lb_priority.h"

#include <CUnit/Basic.h>
#include <CUnit/CUnit.h>
#include <stdio.h>

static void expect(const lb_priority_level *lv, int n, int factor, int panic_pct,
                   const int *want, const int *want_panic)
{
    int load[8], panic[8];
    lb_priority_load(lv, n, factor, panic_pct, load, panic);
    for (int i = 0; i < n; i++) {
        if (load[i] != want[i] || (want_panic && panic[i] != want_panic[i]))
            fprintf(stderr, "\n  level %d: load %d panic %d, want %d %d\n", i, load[i],
                    panic[i], want[i], want_panic ? want_panic[i] : -1);
        CU_ASSERT_EQUAL(load[i], want[i]);
        if (want_panic)
            CU_ASSERT_EQUAL(panic[i], want_panic[i]);
    }
}

/* P1 all healthy; P0 at 100, 72, 71, 50, 25 and 0 % healthy. */
static void test_envoy_table(void)
{
    static const struct {
        int healthy;         /* of 100 hosts at P0 */
        int p0, p1;          /* expected load */
    } rows[] = {
        {100, 100, 0},  /* 140 capped at 100 */
        {72, 100, 0},   /* 140*72/100 = 100 (100.8) */
        {71, 99, 1},    /* 140*71/100 = 99 (99.4): the rest, 1, to P1 */
        {50, 70, 30},
        {25, 35, 65},
        {0, 0, 100},    /* total health 100 (P1): no panic */
    };
    static const int no_panic[2] = {0, 0};
    for (size_t k = 0; k < sizeof rows / sizeof rows[0]; k++) {
        lb_priority_level lv[2] = {{100, rows[k].healthy}, {10, 10}};
        int want[2] = {rows[k].p0, rows[k].p1};
        expect(lv, 2, LB_PRIORITY_FACTOR_PCT, LB_PRIORITY_PANIC_PCT, want, no_panic);
    }
    /* the same split from a small pool: 1 of 2 nodes healthy = 70 / 30 */
    lb_priority_level two[2] = {{2, 1}, {12, 12}};
    expect(two, 2, 140, 50, (int[]){70, 30}, no_panic);
    /* without overprovisioning (factor 1.0): 50 / 50 */
    expect(two, 2, 100, 50, (int[]){50, 50}, no_panic);
}

/* Both levels degraded: the loads are normalised by the total health. */
static void test_both_degraded(void)
{
    /* P0 1 of 10 (health 14, 10%: panic), P1 1 of 2 (health 70, 50%: not
     * under 50, no panic). Total 84: P0 1400/84 = 16, P1 min(84, 7000/84 =
     * 83) = 83, remainder 1 to P0: 17 / 83. */
    lb_priority_level lv[2] = {{10, 1}, {2, 1}};
    expect(lv, 2, 140, 50, (int[]){17, 83}, (int[]){1, 0});
    /* P0 1 of 5 (28), P1 3 of 10 (42): total 70: 2800/70 = 40, 4200/70 = 60;
     * with panic off (threshold 0) that is the load */
    lb_priority_level lv2[2] = {{5, 1}, {10, 3}};
    expect(lv2, 2, 140, 0, (int[]){40, 60}, (int[]){0, 0});
    /* three levels of health 30 (3 of 14): 3000/90 = 33 each, remainder 1
     * to P0 */
    lb_priority_level lv3[3] = {{14, 3}, {14, 3}, {14, 3}};
    expect(lv3, 3, 140, 0, (int[]){34, 33, 33}, NULL);
}

/* Every level in panic: the load follows host counts, healthy or not. */
static void test_panic(void)
{
    /* 20% and 30% healthy, both under 50: total panic. Hosts 5 and 10:
     * 500/15 = 33, 1000/15 = 66, remainder 1 to P0: 34 / 66 */
    lb_priority_level lv[2] = {{5, 1}, {10, 3}};
    expect(lv, 2, 140, 50, (int[]){34, 66}, (int[]){1, 1});
    /* nothing healthy anywhere: by hosts, 2 and 6 -> 25 / 75 */
    lb_priority_level dead[2] = {{2, 0}, {6, 0}};
    expect(dead, 2, 140, 50, (int[]){25, 75}, (int[]){1, 1});
    /* nothing healthy and panic disabled: everything to P0 */
    expect(dead, 2, 140, 0, (int[]){100, 0}, (int[]){0, 0});
    /* an empty level 0 (no hosts) in total panic: all to the first
     * non-empty level */
    lb_priority_level empty[2] = {{0, 0}, {4, 1}};
    expect(empty, 2, 140, 50, (int[]){0, 100}, (int[]){1, 1});
    /* the total is 100: no level in panic, however few healthy hosts */
    lb_priority_level low[2] = {{10, 1}, {4, 4}};
    expect(low, 2, 140, 50, (int[]){14, 86}, (int[]){0, 0});
}

/* choosePriority: hash % 100 + 1 against the running sum. */
static void test_choose(void)
{
    int load[2] = {70, 30};
    CU_ASSERT_EQUAL(lb_priority_choose(load, 2, 0), 0);   /* 1 */
    CU_ASSERT_EQUAL(lb_priority_choose(load, 2, 69), 0);  /* 70 */
    CU_ASSERT_EQUAL(lb_priority_choose(load, 2, 70), 1);  /* 71 */
    CU_ASSERT_EQUAL(lb_priority_choose(load, 2, 99), 1);  /* 100 */
    CU_ASSERT_EQUAL(lb_priority_choose(load, 2, 100), 0); /* 1 again */
    int all1[3] = {0, 100, 0};
    for (unsigned long h = 0; h < 300; h++)
        CU_ASSERT_EQUAL(lb_priority_choose(all1, 3, h), 1);
    int counts[2] = {0, 0};
    for (unsigned long h = 0; h < 1000; h++)
        counts[lb_priority_choose(load, 2, h)]++;
    CU_ASSERT_EQUAL(counts[0], 700);
    CU_ASSERT_EQUAL(counts[1], 300);
}

int main(void)
{
    if (CU_initialize_registry() != CUE_SUCCESS)
        return 1;
    CU_pSuite s = CU_add_suite("lb_priority", NULL, NULL);
    CU_add_test(s, "Envoy's table: P0 100/72/71/50/25/0 % healthy", test_envoy_table);
    CU_add_test(s, "both levels degraded: normalised", test_both_degraded);
    CU_add_test(s, "panic and total panic", test_panic);
    CU_add_test(s, "choosePriority", test_choose);
    CU_basic_set_mode(CU_BRM_VERBOSE);
    CU_basic_run_tests();
    unsigned f = CU_get_number_of_failures();
    CU_cleanup_registry();
    return (int)f;
}
