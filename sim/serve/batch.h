/*
 * batch.h - the batch server's rules that need no SimGrid (batch.c), for
 * its tests.
 */
#ifndef FLEETSIM_BATCH_H
#define FLEETSIM_BATCH_H

#include "model.h"

/* Dynamic batching (Triton's max_queue_delay): with q holding the node's
 * waiting requests, how long the forming worker still waits for a fuller
 * batch at now; 0 to run what is there now (q empty or holding max, or its
 * oldest request has waited max_wait_s, within 1 us). */
double serve_batch_wait_s(const eng_fifo *q, int max, double max_wait_s, double now);

#endif
