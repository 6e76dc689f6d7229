/*
 * batch.h - the batch server's rules that need no SimGrid (batch.c), for
 * its tests, and what fast mode's batch server shares with it.
 */
#ifndef FLEETSIM_BATCH_H
#define FLEETSIM_BATCH_H

#include "model.h"

/* Dynamic batching (Triton's max_queue_delay): with q holding the node's
 * waiting requests, how long the forming worker still waits for a fuller
 * batch at now; 0 to run what is there now (q empty or holding max, or its
 * oldest request has waited max_wait_s, within 1 us). */
double serve_batch_wait_s(const eng_fifo *q, int max, double max_wait_s, double now);

/* What both batch servers (batch.c, fast mode's batch_fast.c) do with a
 * node's requests: take the next batch off its queue (ending those whose
 * client has gone), answer a batch 500 (gpu_error), fail a batch as
 * attempts when the node crashes. */
int serve_batch_take(eng_node *n, eng_req **batch, double now, double *work);
void serve_batch_answer_500(eng_node *n, eng_req **batch, int b, double now);
void serve_batch_fail(eng_node *n, eng_req **batch, int b, double now);

#endif
