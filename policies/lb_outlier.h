/*
 * lb_outlier.h - Envoy's outlier detector (consecutive 5xx) for one
 * balancer instance, used only by policies/lb.c: lb_pick asks which servers
 * are ejected, lb_on_done reports every result. The engine and the policies
 * never include this header; what they may read is in lb.h
 * (lb_outlier_state, lb_outlier_ejections).
 */
#ifndef FLEETSIM_LB_OUTLIER_H
#define FLEETSIM_LB_OUTLIER_H

#include "lb.h"

#include <gsl/gsl_rng.h>

struct lb_od_host;

typedef struct {
    lb_outlier cfg;           /* cfg.enabled = 0: every call is a no-op */
    gsl_rng *rng;             /* borrowed: enforcing between 0 and 100 */
    struct lb_od_host *hosts;
    int cap;
    int n_flagged;            /* hosts marked ejected, some maybe past their tick */
    unsigned long ejections;  /* enforced, all hosts */
    /* the hosts marked ejected in a heap by the tick they are back at, so
     * that a sweep touches only those whose tick came */
    int *heap, *heap_pos;     /* heap_pos[i]: host i's place, -1 = not in */
    int heap_len;
    /* hosts whose ejected mark changed since the caller last took the list
     * (lb_od_moved): lb.c keeps its masked view and counts by them */
    int *moved;
    unsigned char *is_moved;
    int n_moved;
} lb_od;

/* cfg valid (lb_params_invalid), rng may be NULL unless enforcing is
 * strictly between 0 and 100. */
void lb_od_init(lb_od *od, const lb_outlier *cfg, gsl_rng *rng);
void lb_od_free(lb_od *od);
/* Room for n hosts (new ones: never failed); 0 when out of memory. */
int lb_od_reserve(lb_od *od, int n);
/* Host i is a new host (a replica started in the slot of one that was
 * switched off): no failures, no ejections, no backoff, as Envoy's host set
 * gets a new host for a new endpoint. */
void lb_od_forget(lb_od *od, int i);
/* Brings the hosts to now_s (un-ejects those whose tick came) and says
 * whether any of hosts 0..n-1 is ejected. O(log n) per host un-ejected,
 * O(1) otherwise while n covers every host (O(n) when it does not). */
int lb_od_sweep(lb_od *od, int n, double now_s);
/* Host i is ejected, as of the last lb_od_sweep. */
int lb_od_out(const lb_od *od, int i);
/* A result of host `server` at view->now_s: LB_ERROR (connection failure,
 * timeout) and LB_HTTP_5XX (a 5xx response) count, LB_OK resets. The view
 * (as the caller's, not masked) gives the hosts max_ejection_percent
 * counts. */
void lb_od_result(lb_od *od, const lb_view *view, int server, lb_result result);
/* Takes the list of hosts whose ejected mark changed since the last call
 * (each once): returns how many, *hosts pointing at them (valid until the
 * next lb_od call). */
int lb_od_moved(lb_od *od, const int **hosts);
/* lb_outlier_state for one host. */
int lb_od_state(const lb_od *od, int server, double now_s, lb_outlier_host *out);

#endif
