/*
 * test_batch.c - the batch server's batch formation rule without SimGrid:
 * how long a forming worker waits for a fuller batch (Triton's dynamic
 * batcher with max_queue_delay), on hand-built queues.
 */
#include "batch.h"

#include <CUnit/Basic.h>

static void test_wait(void)
{
    eng_fifo q = { 0 };
    eng_req a = { 0 }, b = { 0 }, c = { 0 };
    a.stage_s = 1.000; /* the oldest sets the window */
    b.stage_s = 1.002;
    c.stage_s = 1.004;
    /* nothing queued: nothing to wait for */
    CU_ASSERT_DOUBLE_EQUAL(serve_batch_wait_s(&q, 4, 0.010, 1.0), 0, 0);
    eng_fifo_push(&q, &a);
    eng_fifo_push(&q, &b);
    /* 2 of 4, the oldest waited 3 ms of 10: 7 ms more */
    CU_ASSERT_DOUBLE_EQUAL(serve_batch_wait_s(&q, 4, 0.010, 1.003), 0.007, 1e-12);
    /* its window is over: run now */
    CU_ASSERT_DOUBLE_EQUAL(serve_batch_wait_s(&q, 4, 0.010, 1.010), 0, 0);
    CU_ASSERT_DOUBLE_EQUAL(serve_batch_wait_s(&q, 4, 0.010, 1.5), 0, 0);
    /* within SimGrid's precision of due is due */
    CU_ASSERT_DOUBLE_EQUAL(serve_batch_wait_s(&q, 4, 0.010, 1.0099995), 0, 0);
    CU_ASSERT(serve_batch_wait_s(&q, 4, 0.010, 1.009998) > 0);
    /* a full batch runs at once */
    eng_fifo_push(&q, &c);
    CU_ASSERT_DOUBLE_EQUAL(serve_batch_wait_s(&q, 3, 0.010, 1.004), 0, 0);
    CU_ASSERT_DOUBLE_EQUAL(serve_batch_wait_s(&q, 4, 0.010, 1.004), 0.006, 1e-12);
}

int main(void)
{
    if (CU_initialize_registry() != CUE_SUCCESS)
        return 1;
    CU_pSuite s = CU_add_suite("batch", NULL, NULL);
    CU_add_test(s, "dynamic batching window", test_wait);
    CU_basic_set_mode(CU_BRM_VERBOSE);
    CU_basic_run_tests();
    unsigned fails = CU_get_number_of_failures();
    CU_cleanup_registry();
    return fails ? 1 : 0;
}
