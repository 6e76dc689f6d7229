/*
 * lb_index.h - the indexes that let a balancing policy pick in O(log n)
 * instead of reading every server per request, kept up to date by the
 * engine's change notices (lb_track, lb_changed). Internal
 * to policies/.
 *
 * - lb_fenwick: a Fenwick tree of per-server values: prefix sums and "the
 *   first server whose prefix passes u" in O(log n). Over 0/1 values it
 *   answers "the k-th eligible server in index order"; over weights, the
 *   server a draw u in [0, total) lands on. Sums are exact only while the
 *   values are integers (below 2^53 in total): a policy uses it only then,
 *   so that it finds the server the sequential scan finds.
 * - lb_swrr: nginx's smooth weighted round robin (lb_wrr.h) over groups of
 *   servers, a group being the candidates of one pick (least_conn: the
 *   servers at the fewest active requests; weighted_round_robin: every
 *   eligible server). When every candidate has the same integer effective
 *   weight w, a pick adds w to each candidate's current_weight: the group
 *   keeps that sum once (`add`) and its servers in a heap by current_weight
 *   (largest first, lowest index on a tie, the scan's winner), so that a
 *   pick is O(log n). A server's current_weight, stored in lb_wrr.current,
 *   is the heap key while the server is in a group and nginx's value when
 *   it is not; with integer values both are exact.
 * - lb_mintree: a segment tree of per-server keys (INFINITY: not a
 *   candidate) that answers, in O(log n), the least key, how many servers
 *   hold it, and the r-th of those in index order (jsq's tie set,
 *   least_tokens' and vllm_dp's first server at the minimum). Comparisons
 *   only, no sums: exact for any key that is not NaN.
 */
#ifndef FLEETSIM_LB_INDEX_H
#define FLEETSIM_LB_INDEX_H

#include "lb.h"
#include "lb_wrr.h"

typedef struct {
    int n, cap;
    double *tree;     /* 1-based Fenwick tree */
    double *value;    /* value[i] as set */
    double total;
    int n_one;        /* values equal to 1: all n of them (every server
                         eligible, weights 1) answers without the tree */
} lb_fenwick;

/* n servers, every value 0; 0 when out of memory. */
int lb_fenwick_reset(lb_fenwick *f, int n);
void lb_fenwick_free(lb_fenwick *f);
void lb_fenwick_set(lb_fenwick *f, int i, double v);
/* Sum of the values of servers [0, i). */
double lb_fenwick_prefix(const lb_fenwick *f, int i);
/* The first server i whose prefix sum up to and including it is > u;
 * -1 when there is none (u >= total). */
int lb_fenwick_find(const lb_fenwick *f, double u);
/* The largest index whose value is > 0, or -1. O(log n). */
int lb_fenwick_last(const lb_fenwick *f);

/* A group's heap entry: the server and its key (its lb_wrr.current, kept
 * here too so that a sift reads one array, not the servers' records). */
typedef struct {
    double key;
    int server;
} lb_swrr_entry;

typedef struct {
    lb_swrr_entry *heap; /* 4-ary, by key: heap_mem + LB_SWRR_PAD */
    lb_swrr_entry *heap_mem; /* 64-byte aligned, so that 4i+1..4i+4 share a line */
    int len, cap;
    double add;      /* added to every member's key since it joined */
} lb_swrr_group;

typedef struct {
    int n;               /* servers */
    int *group;          /* a server's group, -1 = none */
    int *pos;            /* its place in the group's heap */
    lb_swrr_group *g;
    int n_groups;        /* groups allocated */
    int members;         /* servers in some group */
    int min_group;       /* no non-empty group below this */
} lb_swrr;

/* n servers, none in a group; 0 when out of memory. */
int lb_swrr_reset(lb_swrr *x, int n);
void lb_swrr_free(lb_swrr *x);
/* Puts server i into group k (leaving any group it was in), current being
 * w->current; 0 when out of memory. */
int lb_swrr_put(lb_swrr *x, lb_wrr *w, int i, int k);
/* Takes server i out of its group, leaving nginx's current_weight in
 * w->current. */
void lb_swrr_drop(lb_swrr *x, lb_wrr *w, int i);
/* Every server out of its group (w->current holds nginx's values again). */
void lb_swrr_flush(lb_swrr *x, lb_wrr *w);
/* The lowest non-empty group, or -1 if there is none. */
int lb_swrr_min_group(lb_swrr *x);
/* One smooth WRR pick among group k's servers, each with effective weight
 * weight (an integer); the group must not be empty. As lb_wrr_pick: every
 * candidate gains weight, the largest wins and gives back the total. */
int lb_swrr_pick(lb_swrr *x, lb_wrr *w, int k, double weight);

/* A smooth WRR policy's state with its index: the servers' current and
 * effective weights, and the eligible servers in groups (by_active: by
 * active requests, least_conn's tie sets; group: the policy's own key,
 * least_time's; else all in group 0). The index
 * is valid only for a tracked view whose servers all have one integer
 * weight and no lowered effective weight; otherwise the policy scans. */
typedef struct {
    lb_wrr w;
    lb_swrr idx;
    int tracked;     /* between LB_TRACK_START and LB_TRACK_STOP */
    int valid;
    int by_active;
    double weight;   /* every server's weight while valid */
    /* optional, instead of by_active: eligible server i's group (its tie
     * set: the least group is picked), or -1 when the index cannot hold it
     * (the policy scans); called with group_ctx whenever i is placed */
    long (*group)(void *ctx, const lb_view *view, int i);
    void *group_ctx;
} lb_wrr_index;

void lb_wrr_index_free(lb_wrr_index *x);
/* Untrusted from now on; w->current holds nginx's values again. */
void lb_wrr_index_invalidate(lb_wrr_index *x);
/* Ready to pick on this view: 1 with a valid index, 0 when the policy must
 * scan (the view is not tracked, or not one the index can hold). */
int lb_wrr_index_ready(lb_wrr_index *x, const lb_view *view);
/* on_change: server i of the tracked view changed, or LB_TRACK_START /
 * LB_TRACK_STOP. */
void lb_wrr_index_change(lb_wrr_index *x, const lb_view *view, int i);
/* After lb_wrr_failed on server i. */
void lb_wrr_index_failed(lb_wrr_index *x, int i);
/* nginx least_conn's pick from a ready index (by_active): the least group,
 * its smooth WRR winner (a lone server leaves current_weight untouched);
 * -1 when no server is eligible. */
int lb_wrr_index_least(lb_wrr_index *x);

/* The eligible servers of a tracked view, 1 each in a Fenwick tree (first,
 * round_robin): valid between LB_TRACK_START and LB_TRACK_STOP once built. */
typedef struct {
    int tracked;     /* between LB_TRACK_START and LB_TRACK_STOP */
    int valid;       /* elig holds the tracked view's eligible servers */
    lb_fenwick elig;
} lb_elig_index;

void lb_elig_index_free(lb_elig_index *x);
/* Ready to pick on this view: 1 with x->elig valid (built now if it was
 * not), 0 when the policy must scan (the view is not tracked). */
int lb_elig_index_ready(lb_elig_index *x, const lb_view *view);
/* on_change: server i of the tracked view changed, or LB_TRACK_START /
 * LB_TRACK_STOP. */
void lb_elig_index_change(lb_elig_index *x, const lb_view *view, int i);

typedef struct {
    int n;            /* servers */
    int size;         /* leaves: the least power of two >= n */
    int cap;          /* leaves allocated */
    struct lb_mintree_node {  /* 1-based heap layout; siblings share a line */
        double min;   /* node k's least key */
        int count;    /* how many leaves under k hold it */
    } *node;
    int finite;       /* servers whose key is not INFINITY */
} lb_mintree;

/* n servers, every key INFINITY; 0 when out of memory. */
int lb_mintree_reset(lb_mintree *t, int n);
void lb_mintree_free(lb_mintree *t);
void lb_mintree_set(lb_mintree *t, int i, double key);
/* The least key (INFINITY when every key is) and how many servers hold it
 * (0 then). */
double lb_mintree_least(const lb_mintree *t);
int lb_mintree_ties(const lb_mintree *t);
/* The r-th server (from 0, in index order) holding the least key; -1 when
 * r >= lb_mintree_ties. */
int lb_mintree_nth(const lb_mintree *t, int r);

/* A lb_mintree of a tracked view, key(server) for the eligible servers and
 * INFINITY for the others: valid between LB_TRACK_START and LB_TRACK_STOP
 * once built, and while no key is NaN or an eligible server's INFINITY (then
 * the policy scans). */
typedef struct {
    int tracked;
    int valid;
    double (*key)(const lb_server_view *s);
    lb_mintree t;
} lb_min_index;

void lb_min_index_free(lb_min_index *x);
/* Ready to pick on this view: 1 with x->t valid (built now if it was not),
 * 0 when the policy must scan. */
int lb_min_index_ready(lb_min_index *x, const lb_view *view);
/* on_change: server i of the tracked view changed, or LB_TRACK_START /
 * LB_TRACK_STOP. */
void lb_min_index_change(lb_min_index *x, const lb_view *view, int i);

/* An index's part of a change notice (on_change) for server i: START and
 * STOP set *tracked and drop the index (*valid = 0), as does a server at
 * or beyond the n servers it holds. 1 when the index is valid and holds
 * server i, which the caller then places again. */
static inline int lb_index_notice(int *tracked, int *valid, int n, int i)
{
    if (i < 0) {   /* LB_TRACK_START / LB_TRACK_STOP */
        *tracked = i == LB_TRACK_START;
        *valid = 0;
        return 0;
    }
    if (*valid && i >= n)
        *valid = 0;
    return *valid;
}

/* An integer in [1, 2^20]: weights for which the indexes' sums are exact. */
int lb_index_weight_ok(double weight);

#endif
