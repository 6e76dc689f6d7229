/*
 * lb_index.c - Fenwick trees and grouped smooth weighted round robin for
 * the balancing policies' O(log n) picks (see lb_index.h).
 */
#include "lb_index.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* bytes, rounded up to whole cache lines (aligned_alloc wants a multiple
 * of the alignment), on a line boundary; NULL when out of memory. */
static void *alloc_lines(size_t bytes)
{
    return aligned_alloc(64, (bytes + 63) / 64 * 64);
}

/* ---------- Fenwick tree ---------- */

int lb_fenwick_reset(lb_fenwick *f, int n)
{
    if (n > f->cap) {
        double *t = realloc(f->tree, (size_t)(n + 1) * sizeof *t);
        if (!t)
            return 0;
        f->tree = t;
        double *v = realloc(f->value, (size_t)n * sizeof *v);
        if (!v)
            return 0;
        f->value = v;
        f->cap = n;
    }
    f->n = n;
    f->total = 0.0;
    f->n_one = 0;
    if (f->tree)
        memset(f->tree, 0, (size_t)(n + 1) * sizeof *f->tree);
    if (f->value)
        memset(f->value, 0, (size_t)n * sizeof *f->value);
    return 1;
}

void lb_fenwick_free(lb_fenwick *f)
{
    free(f->tree);
    free(f->value);
    memset(f, 0, sizeof *f);
}

void lb_fenwick_set(lb_fenwick *f, int i, double v)
{
    double d = v - f->value[i];

    if (d == 0.0)
        return;
    f->n_one += (v == 1.0) - (f->value[i] == 1.0);
    f->value[i] = v;
    f->total += d;
    for (int k = i + 1; k <= f->n; k += k & -k)
        f->tree[k] += d;
}

double lb_fenwick_prefix(const lb_fenwick *f, int i)
{
    double s = 0.0;

    if (f->n_one == f->n)
        return i;
    for (int k = i; k > 0; k -= k & -k)
        s += f->tree[k];
    return s;
}

int lb_fenwick_find(const lb_fenwick *f, double u)
{
    int pos = 0, step = 1;

    if (!(u < f->total))
        return -1;
    if (f->n_one == f->n)   /* prefix sums 1, 2, ..., n: no walk, no misses */
        return u < 0.0 ? 0 : u < f->n ? (int)u : -1;
    while (step * 2 <= f->n)
        step *= 2;
    /* the largest pos whose prefix sum [0, pos) is <= u */
    for (; step > 0; step /= 2) {
        if (pos + step <= f->n && f->tree[pos + step] <= u) {
            pos += step;
            u -= f->tree[pos];
        }
    }
    return pos < f->n ? pos : -1;
}

int lb_fenwick_last(const lb_fenwick *f)
{
    /* the first server whose prefix reaches the total */
    if (!(f->total > 0.0))
        return -1;
    if (f->n_one == f->n)
        return f->n - 1;
    int pos = 0, step = 1;
    double u = f->total;
    while (step * 2 <= f->n)
        step *= 2;
    for (; step > 0; step /= 2) {
        if (pos + step <= f->n && f->tree[pos + step] < u) {
            pos += step;
            u -= f->tree[pos];
        }
    }
    return pos < f->n ? pos : -1;
}

int lb_index_weight_ok(double weight)
{
    return weight >= 1.0 && weight <= 1048576.0 && weight == floor(weight);
}

/* ---------- grouped smooth weighted round robin ---------- */

int lb_swrr_reset(lb_swrr *x, int n)
{
    int *g = realloc(x->group, (size_t)(n > 0 ? n : 1) * sizeof *g);
    if (!g)
        return 0;
    x->group = g;
    int *p = realloc(x->pos, (size_t)(n > 0 ? n : 1) * sizeof *p);
    if (!p)
        return 0;
    x->pos = p;
    for (int i = 0; i < n; i++)
        g[i] = -1;
    for (int k = 0; k < x->n_groups; k++) {
        x->g[k].len = 0;
        x->g[k].add = 0.0;
    }
    x->n = n;
    x->members = 0;
    x->min_group = 0;
    return 1;
}

void lb_swrr_free(lb_swrr *x)
{
    for (int k = 0; k < x->n_groups; k++)
        free(x->g[k].heap_mem);
    free(x->g);
    free(x->group);
    free(x->pos);
    memset(x, 0, sizeof *x);
}

/* Each group's heap is 4-ary, its entries 16 bytes: a node's four
 * children fill one cache line (the root sits LB_SWRR_PAD entries into an
 * aligned block), so that a sift through a large tie set, least_conn's
 * idle servers, reads one line per level. */
#define LB_SWRR_PAD 3

/* a comes before b: the larger current_weight, the lower index on a tie
 * (the scan's strict > keeps the first of equals) */
static int before(const lb_swrr_entry *a, const lb_swrr_entry *b)
{
    return a->key > b->key || (a->key == b->key && a->server < b->server);
}

static void place(lb_swrr *x, lb_swrr_group *g, int at, lb_swrr_entry e)
{
    g->heap[at] = e;
    x->pos[e.server] = at;
}

static void sift_up(lb_swrr *x, lb_swrr_group *g, int at)
{
    lb_swrr_entry e = g->heap[at];
    while (at > 0) {
        int up = (at - 1) / 4;
        if (!before(&e, &g->heap[up]))
            break;
        place(x, g, at, g->heap[up]);
        at = up;
    }
    place(x, g, at, e);
}

static void sift_down(lb_swrr *x, lb_swrr_group *g, int at)
{
    lb_swrr_entry e = g->heap[at];
    for (;;) {
        int c = 4 * at + 1, end = c + 4;
        if (c >= g->len)
            break;
        if (end > g->len)
            end = g->len;
        for (int j = c + 1; j < end; j++)
            if (before(&g->heap[j], &g->heap[c]))
                c = j;
        if (!before(&g->heap[c], &e))
            break;
        place(x, g, at, g->heap[c]);
        at = c;
    }
    place(x, g, at, e);
}

void lb_swrr_drop(lb_swrr *x, lb_wrr *w, int i)
{
    int k = x->group[i];
    if (k < 0)
        return;
    lb_swrr_group *g = &x->g[k];
    int at = x->pos[i];
    w->current[i] += g->add;   /* nginx's value again */
    x->group[i] = -1;
    x->members--;
    g->len--;
    if (at < g->len) {
        lb_swrr_entry moved = g->heap[g->len];
        place(x, g, at, moved);
        sift_up(x, g, at);
        sift_down(x, g, x->pos[moved.server]);
    }
    if (g->len == 0)
        g->add = 0.0;   /* exact again: nobody holds an offset */
}

/* Room for one more entry in g's heap; 0 when out of memory. */
static int group_grow(lb_swrr_group *g)
{
    int c = g->cap ? 2 * g->cap : 4;
    lb_swrr_entry *mem = alloc_lines((size_t)(c + LB_SWRR_PAD) * sizeof *mem);

    if (!mem)
        return 0;
    if (g->len > 0)
        memcpy(mem + LB_SWRR_PAD, g->heap, (size_t)g->len * sizeof *mem);
    free(g->heap_mem);
    g->heap_mem = mem;
    g->heap = mem + LB_SWRR_PAD;
    g->cap = c;
    return 1;
}

int lb_swrr_put(lb_swrr *x, lb_wrr *w, int i, int k)
{
    if (x->group[i] == k)
        return 1;
    if (k >= x->n_groups) {
        int n = x->n_groups ? x->n_groups : 8;
        while (n <= k)
            n *= 2;
        lb_swrr_group *ng = realloc(x->g, (size_t)n * sizeof *ng);
        if (!ng)
            return 0;
        memset(ng + x->n_groups, 0, (size_t)(n - x->n_groups) * sizeof *ng);
        x->g = ng;
        x->n_groups = n;
    }
    lb_swrr_group *g = &x->g[k];
    if (g->len == g->cap && !group_grow(g))
        return 0;
    lb_swrr_drop(x, w, i);
    w->current[i] -= g->add;   /* the key: nginx's value less the group's offset */
    x->group[i] = k;
    x->members++;
    place(x, g, g->len++, (lb_swrr_entry){ w->current[i], i });
    sift_up(x, g, g->len - 1);
    if (k < x->min_group)
        x->min_group = k;
    return 1;
}

void lb_swrr_flush(lb_swrr *x, lb_wrr *w)
{
    for (int k = 0; k < x->n_groups; k++) {
        lb_swrr_group *g = &x->g[k];
        for (int j = 0; j < g->len; j++) {
            w->current[g->heap[j].server] += g->add;
            x->group[g->heap[j].server] = -1;
        }
        g->len = 0;
        g->add = 0.0;
    }
    x->members = 0;
    x->min_group = 0;
}

int lb_swrr_min_group(lb_swrr *x)
{
    if (x->members == 0)
        return -1;
    while (x->min_group < x->n_groups && x->g[x->min_group].len == 0)
        x->min_group++;
    return x->min_group < x->n_groups ? x->min_group : -1;
}

int lb_swrr_pick(lb_swrr *x, lb_wrr *w, int k, double weight)
{
    lb_swrr_group *g = &x->g[k];
    int best = g->heap[0].server;

    /* every candidate gains `weight` (the offset), the first of the
     * largest wins and gives back the sum: len x weight, exact in integers */
    g->add += weight;
    w->current[best] -= weight * g->len;
    g->heap[0].key = w->current[best];
    sift_down(x, g, 0);
    return best;
}

/* ---------- a smooth WRR policy's index ---------- */

void lb_wrr_index_free(lb_wrr_index *x)
{
    lb_wrr_free(&x->w);
    lb_swrr_free(&x->idx);
}

void lb_wrr_index_invalidate(lb_wrr_index *x)
{
    if (x->valid)
        lb_swrr_flush(&x->idx, &x->w);
    x->valid = 0;
}

/* Server i where the index wants it; 0 if the index cannot hold it. */
static int wrr_place(lb_wrr_index *x, const lb_view *view, int i)
{
    const lb_server_view *s = &view->servers[i];

    if (s->weight != x->weight || x->w.deficit[i] != 0.0)
        return 0;
    if (!lb_server_eligible(s) || s->active < 0) {
        lb_swrr_drop(&x->idx, &x->w, i);
        return 1;
    }
    long k = x->group ? x->group(x->group_ctx, view, i) : x->by_active ? s->active : 0;
    if (k < 0 || k > (1L << 20)) /* a group the index cannot hold: scan */
        return 0;
    return lb_swrr_put(&x->idx, &x->w, i, (int)k);
}

static int wrr_build(lb_wrr_index *x, const lb_view *view)
{
    const lb_server_view *s = view->servers;

    if (view->n <= 0 || !lb_wrr_reserve(&x->w, view->n))
        return 0;
    x->weight = s[0].weight;
    if (!lb_index_weight_ok(x->weight))
        return 0;
    for (int i = 0; i < view->n; i++)
        if (s[i].weight != x->weight || x->w.deficit[i] != 0.0)
            return 0;
    if (!lb_swrr_reset(&x->idx, view->n))
        return 0;
    x->valid = 1;
    for (int i = 0; i < view->n; i++)
        if (!wrr_place(x, view, i)) {
            lb_wrr_index_invalidate(x);
            return 0;
        }
    return 1;
}

int lb_wrr_index_ready(lb_wrr_index *x, const lb_view *view)
{
    if (!x->tracked || (x->valid && x->idx.n != view->n))
        lb_wrr_index_invalidate(x);
    if (x->tracked && !x->valid)
        wrr_build(x, view);
    return x->valid;
}

void lb_wrr_index_change(lb_wrr_index *x, const lb_view *view, int i)
{
    if (i < 0) {
        x->tracked = i == LB_TRACK_START;
        lb_wrr_index_invalidate(x);
        return;
    }
    if (x->valid && (i >= x->idx.n || !wrr_place(x, view, i)))
        lb_wrr_index_invalidate(x);
}

void lb_wrr_index_failed(lb_wrr_index *x, int i)
{
    if (x->valid && (i >= x->w.cap || x->w.deficit[i] != 0.0))
        lb_wrr_index_invalidate(x);   /* a lowered effective weight: the scan's case */
}

int lb_wrr_index_least(lb_wrr_index *x)
{
    int k = lb_swrr_min_group(&x->idx);
    if (k < 0)
        return -1;
    if (x->idx.g[k].len == 1)   /* no tie: current_weight untouched */
        return x->idx.g[k].heap[0].server;
    return lb_swrr_pick(&x->idx, &x->w, k, x->weight);
}

/* ---- the eligible servers, counted ---- */

void lb_elig_index_free(lb_elig_index *x)
{
    lb_fenwick_free(&x->elig);
}

int lb_elig_index_ready(lb_elig_index *x, const lb_view *view)
{
    if (!x->tracked || (x->valid && x->elig.n != view->n))
        x->valid = 0;
    if (x->tracked && !x->valid && view->n > 0 && lb_fenwick_reset(&x->elig, view->n)) {
        for (int i = 0; i < view->n; i++)
            lb_fenwick_set(&x->elig, i, lb_server_eligible(&view->servers[i]) ? 1.0 : 0.0);
        x->valid = 1;
    }
    return x->valid;
}

void lb_elig_index_change(lb_elig_index *x, const lb_view *view, int i)
{
    if (lb_index_notice(&x->tracked, &x->valid, x->elig.n, i))
        lb_fenwick_set(&x->elig, i, lb_server_eligible(&view->servers[i]) ? 1.0 : 0.0);
}

/* ---------- least key, ties counted ---------- */

int lb_mintree_reset(lb_mintree *t, int n)
{
    int size = 1;

    while (size < n)
        size *= 2;
    if (size > t->cap) {
        struct lb_mintree_node *m = alloc_lines((size_t)(2 * size) * sizeof *m);
        if (!m)
            return 0;
        free(t->node);
        t->node = m;
        t->cap = size;
    }
    t->n = n;
    t->size = size;
    t->finite = 0;
    for (int k = 1; k < 2 * size; k++)
        t->node[k] = (struct lb_mintree_node){ INFINITY, 0 };
    return 1;
}

void lb_mintree_free(lb_mintree *t)
{
    free(t->node);
    memset(t, 0, sizeof *t);
}

void lb_mintree_set(lb_mintree *t, int i, double key)
{
    int k = t->size + i;

    if (t->node[k].min == key)
        return;
    t->finite += (key != INFINITY) - (t->node[k].min != INFINITY);
    t->node[k].min = key;
    t->node[k].count = key != INFINITY;
    for (k /= 2; k >= 1; k /= 2) {
        double a = t->node[2 * k].min, b = t->node[2 * k + 1].min;
        double m = a < b ? a : b;
        int c = (a == m ? t->node[2 * k].count : 0) + (b == m ? t->node[2 * k + 1].count : 0);
        if (t->node[k].min == m && t->node[k].count == c)
            break;   /* nothing above changes either */
        t->node[k].min = m;
        t->node[k].count = c;
    }
}

double lb_mintree_least(const lb_mintree *t)
{
    return t->size > 0 ? t->node[1].min : INFINITY;
}

int lb_mintree_ties(const lb_mintree *t)
{
    return t->size > 0 ? t->node[1].count : 0;
}

int lb_mintree_nth(const lb_mintree *t, int r)
{
    if (r < 0 || r >= lb_mintree_ties(t))
        return -1;
    double least = t->node[1].min;
    int k = 1;
    while (k < t->size) {
        int l = 2 * k;
        int c = t->node[l].min == least ? t->node[l].count : 0;
        if (r < c) {
            k = l;
        } else {
            r -= c;
            k = l + 1;
        }
    }
    return k - t->size;
}

void lb_min_index_free(lb_min_index *x)
{
    lb_mintree_free(&x->t);
}

/* Server i's key in the tree; 0 if the index cannot hold it (NaN, or an
 * eligible server's key INFINITY). */
static int min_place(lb_min_index *x, const lb_server_view *s, int i)
{
    int elig = lb_server_eligible(s);
    double key = elig ? x->key(s) : INFINITY;

    if (isnan(key) || (elig && key == INFINITY))   /* INFINITY means "not eligible" */
        return 0;
    lb_mintree_set(&x->t, i, key);
    return 1;
}

int lb_min_index_ready(lb_min_index *x, const lb_view *view)
{
    if (!x->tracked || (x->valid && x->t.n != view->n))
        x->valid = 0;
    if (x->tracked && !x->valid && view->n > 0 && lb_mintree_reset(&x->t, view->n)) {
        x->valid = 1;
        for (int i = 0; i < view->n && x->valid; i++)
            x->valid = min_place(x, &view->servers[i], i);
    }
    return x->valid;
}

void lb_min_index_change(lb_min_index *x, const lb_view *view, int i)
{
    if (lb_index_notice(&x->tracked, &x->valid, x->t.n, i) && !min_place(x, &view->servers[i], i))
        x->valid = 0;
}
