/*
 * lb_wrr.h - nginx's smooth weighted round robin, the core that several
 * policies share: weighted_round_robin itself, and least_conn, least_time,
 * hash and random_two_least_conn, which fall back to it or break ties with
 * it as their nginx modules do. Internal to policies/.
 *
 * Per server nginx keeps current_weight and effective_weight
 * (src/http/ngx_http_upstream_round_robin.c, ngx_http_upstream_get_peer):
 * on each pick every candidate adds its effective_weight to its
 * current_weight, the largest current_weight wins (the first one on a tie),
 * and the winner gives back the sum added. effective_weight starts at the
 * weight, loses weight / max_fails (integer division) on each failure, never
 * goes below 0, and gains 1 back each time the server is a candidate.
 * Weights here are doubles; with integer weights the arithmetic is nginx's.
 * effective_weight is kept as a deficit below the weight, so a state of
 * zeros is a fresh server, and a weight changed at run time takes effect at
 * once.
 */
#ifndef FLEETSIM_LB_WRR_H
#define FLEETSIM_LB_WRR_H

#include "lb.h"

typedef struct {
    int cap;           /* servers the arrays hold */
    double *current;   /* nginx current_weight */
    double *deficit;   /* weight - effective_weight, in [0, weight] */
} lb_wrr;

/* Which eligible servers take part in a pick (NULL: all of them). */
typedef int lb_wrr_keep_fn(const lb_view *view, int i, const void *ctx);

/* Room for n servers (new ones at 0, 0). 0 when out of memory. */
int lb_wrr_reserve(lb_wrr *w, int n);
void lb_wrr_free(lb_wrr *w);
double lb_wrr_effective(const lb_wrr *w, const lb_server_view *s, int i);
/* One smooth WRR pick among the eligible servers from index `from` on for
 * which keep says yes; -1 if there are none or no memory for the state. */
int lb_wrr_pick(lb_wrr *w, const lb_view *view, int from, lb_wrr_keep_fn *keep,
                const void *ctx);
/* A request on server i failed: effective_weight -= weight / max_fails. */
void lb_wrr_failed(lb_wrr *w, const lb_view *view, int i);

#endif
