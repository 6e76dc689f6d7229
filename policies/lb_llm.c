/*
 * lb_llm.c - the fallback and the prefix index the token-aware policies
 * share (lb_llm.h says what each does and where it comes from).
 *
 * The index keeps, per server, a chained hash table of nodes (one per prefix
 * hash) threaded on a doubly linked LRU list. Node storage grows by doubling
 * up to the capacity; at the capacity a new hash takes the node of the least
 * recently used one. The bucket array is a power of two at least as large as
 * the node storage, so chains stay short. Trace hashes may be small integers
 * (Mooncake's hash_ids count up from 0), hence the splitmix64 finaliser
 * before a hash picks its bucket.
 */
#include "lb_llm.h"

#include <stdlib.h>
#include <string.h>

/* ---- fallback: nginx least_conn ---- */

/* Cross-multiplied as nginx does: peer->conns * best->weight < best->conns
 * * peer->weight (ngx_http_upstream_least_conn_module.c). */
static int lc_less(const lb_server_view *a, const lb_server_view *b)
{
    return a->active * b->weight < b->active * a->weight;
}

static int lc_equal(const lb_server_view *a, const lb_server_view *b)
{
    return a->active * b->weight == b->active * a->weight;
}

static int lc_tied(const lb_view *view, int i, const void *ctx)
{
    return lc_equal(&view->servers[i], ctx);
}

int lb_llm_least_conn(lb_wrr *w, const lb_view *view)
{
    const lb_server_view *s = view->servers;
    int best = -1, many = 0;

    for (int i = 0; i < view->n; i++) {
        if (!lb_server_eligible(&s[i]))
            continue;
        if (best < 0 || lc_less(&s[i], &s[best])) {
            best = i;
            many = 0;
        } else if (lc_equal(&s[i], &s[best])) {
            many = 1;
        }
    }
    if (best < 0 || !many)
        return best;
    int tie = lb_wrr_pick(w, view, best, lc_tied, &s[best]);
    return tie >= 0 ? tie : best;
}

int lb_llm_least_conn_ix(lb_wrr_index *x, const lb_view *view)
{
    return lb_wrr_index_ready(x, view) ? lb_wrr_index_least(x) : lb_llm_least_conn(&x->w, view);
}

/* ---- the least key, least_conn when every key is 0 ---- */

struct lb_llm_keyed {
    lb_wrr_index lc;   /* the fallback: nginx least_conn, indexed */
    lb_min_index ix;   /* the eligible servers by key */
    lb_llm_key_fn key;
};

void *lb_llm_keyed_init(int n_servers, lb_llm_key_fn key)
{
    struct lb_llm_keyed *st = calloc(1, sizeof *st);

    if (!st)
        return NULL;
    st->lc.by_active = 1;
    st->ix.key = key;
    st->key = key;
    if (n_servers > 0 && !lb_wrr_reserve(&st->lc.w, n_servers)) {
        free(st);
        return NULL;
    }
    return st;
}

void lb_llm_keyed_destroy(void *state)
{
    struct lb_llm_keyed *st = state;

    lb_wrr_index_free(&st->lc);
    lb_min_index_free(&st->ix);
    free(st);
}

void lb_llm_keyed_change(void *state, const lb_view *view, int server)
{
    struct lb_llm_keyed *st = state;

    lb_wrr_index_change(&st->lc, view, server);
    lb_min_index_change(&st->ix, view, server);
}

int lb_llm_keyed_pick(void *state, const lb_view *view, const lb_request *req)
{
    struct lb_llm_keyed *st = state;
    const lb_server_view *s = view->servers;
    int best = -1, loaded = 0;

    (void)req;
    if (lb_min_index_ready(&st->ix, view)) {
        /* the first server at the least key; loaded unless every
         * eligible server's key is 0 */
        const lb_mintree *t = &st->ix.t;
        if (t->finite == 0)
            return -1;
        if (lb_mintree_least(t) != 0.0 || lb_mintree_ties(t) < t->finite)
            return lb_mintree_nth(t, 0);
        return lb_llm_least_conn_ix(&st->lc, view);
    }
    for (int i = 0; i < view->n; i++) {
        if (!lb_server_eligible(&s[i]))
            continue;
        double k = st->key(&s[i]);
        loaded |= k != 0.0;
        if (best < 0 || k < st->key(&s[best]))
            best = i;
    }
    if (best < 0 || loaded)
        return best;
    return lb_llm_least_conn_ix(&st->lc, view);
}

void lb_llm_keyed_done(void *state, const lb_view *view, int server, double latency_s,
                       lb_result result)
{
    struct lb_llm_keyed *st = state;

    (void)latency_s;
    if (result != LB_ERROR)   /* the fallback's effective weight, as least_conn */
        return;
    lb_wrr_failed(&st->lc.w, view, server);
    lb_wrr_index_failed(&st->lc, server);
}

/* ---- prefix index ---- */

typedef struct {
    uint64_t hash;
    int chain;        /* next node in the bucket, -1 */
    int prev, next;   /* LRU list: towards the most / least recent, -1 */
} px_node;

typedef struct {
    int n, cap;       /* nodes in use, allocated */
    px_node *node;
    int *bucket;      /* first node of each bucket, -1 */
    int n_buckets;    /* a power of two >= cap, or 0 */
    int mru, lru;     /* ends of the LRU list, -1 when empty */
} px_set;

/* A hash some server holds, in the registry. */
typedef struct {
    uint64_t hash;
    uint64_t before;  /* the hash before it in its prompts, unless first */
    int first;        /* the first block of its prompts */
    int chain;        /* next entry in the bucket, or next free entry; -1 */
    int n, cap;       /* servers holding it; room (1: inline in `one`) */
    union {
        int one;
        int *many;
    } holder;         /* ascending server numbers */
} px_entry;

struct lb_prefix {
    int capacity;
    int n_servers;
    px_set *set;
    /* the registry: entries in chained buckets (a power of two, at least
     * as many as live entries), freed entries on a free list */
    px_entry *entry;
    int n_entries, cap_entries, free_entry, live;
    int *ebucket;
    int n_ebuckets;
    int registry;     /* the holders are exact (no allocation failed) */
    int chained;      /* every set prefix-closed (header comment) */
};

static unsigned px_mix(uint64_t h, int n_buckets)
{
    h ^= h >> 30;
    h *= 0xbf58476d1ce4e5b9ULL;
    h ^= h >> 27;
    h *= 0x94d049bb133111ebULL;
    h ^= h >> 31;
    return (unsigned)(h & (uint64_t)(n_buckets - 1));
}

lb_prefix *lb_prefix_new(int capacity)
{
    if (capacity < 1)
        return NULL;
    lb_prefix *p = calloc(1, sizeof *p);
    if (p) {
        p->capacity = capacity;
        p->free_entry = -1;
        p->registry = p->chained = 1;
    }
    return p;
}

void lb_prefix_free(lb_prefix *p)
{
    if (!p)
        return;
    for (int i = 0; i < p->n_servers; i++) {
        free(p->set[i].node);
        free(p->set[i].bucket);
    }
    free(p->set);
    for (int e = 0; e < p->n_entries; e++)
        if (p->entry[e].cap > 1)
            free(p->entry[e].holder.many);
    free(p->entry);
    free(p->ebucket);
    free(p);
}

static const px_set *px_get(const lb_prefix *p, int server)
{
    return server >= 0 && server < p->n_servers ? &p->set[server] : NULL;
}

static int px_find(const px_set *s, uint64_t h)
{
    if (s->n_buckets == 0)
        return -1;
    for (int k = s->bucket[px_mix(h, s->n_buckets)]; k >= 0; k = s->node[k].chain)
        if (s->node[k].hash == h)
            return k;
    return -1;
}

int lb_prefix_match(const lb_prefix *p, int server, const uint64_t *hashes, int n)
{
    const px_set *s = px_get(p, server);
    int j = 0;

    if (!s || !hashes)
        return 0;
    while (j < n && px_find(s, hashes[j]) >= 0)
        j++;
    return j;
}

int lb_prefix_size(const lb_prefix *p, int server)
{
    const px_set *s = px_get(p, server);
    return s ? s->n : 0;
}

static void lru_unlink(px_set *s, int k)
{
    px_node *x = &s->node[k];
    if (x->prev >= 0)
        s->node[x->prev].next = x->next;
    else
        s->mru = x->next;
    if (x->next >= 0)
        s->node[x->next].prev = x->prev;
    else
        s->lru = x->prev;
}

static void lru_push_front(px_set *s, int k)
{
    s->node[k].prev = -1;
    s->node[k].next = s->mru;
    if (s->mru >= 0)
        s->node[s->mru].prev = k;
    s->mru = k;
    if (s->lru < 0)
        s->lru = k;
}

static void chain_add(px_set *s, int k)
{
    unsigned b = px_mix(s->node[k].hash, s->n_buckets);
    s->node[k].chain = s->bucket[b];
    s->bucket[b] = k;
}

static void chain_remove(px_set *s, int k)
{
    int *at = &s->bucket[px_mix(s->node[k].hash, s->n_buckets)];
    while (*at != k)
        at = &s->node[*at].chain;
    *at = s->node[k].chain;
}

/* Room for one more node below the capacity: 0 when out of memory. */
static int px_grow(px_set *s, int capacity)
{
    int cap = s->cap ? 2 * s->cap : 16;
    if (cap > capacity)
        cap = capacity;
    px_node *node = realloc(s->node, (size_t)cap * sizeof *node);
    if (!node)
        return 0;
    s->node = node;
    s->cap = cap;
    if (s->n_buckets >= cap)
        return 1;
    int nb = s->n_buckets ? s->n_buckets : 16;
    while (nb < cap)
        nb *= 2;
    int *bucket = malloc((size_t)nb * sizeof *bucket);
    if (!bucket)
        return s->n_buckets > 0;   /* the old buckets still do, chains longer */
    free(s->bucket);
    s->bucket = bucket;
    s->n_buckets = nb;
    for (int b = 0; b < nb; b++)
        bucket[b] = -1;
    for (int k = 0; k < s->n; k++)
        chain_add(s, k);
    return 1;
}

static int px_reserve_servers(lb_prefix *p, int n)
{
    if (n <= p->n_servers)
        return 1;
    px_set *set = realloc(p->set, (size_t)n * sizeof *set);
    if (!set)
        return 0;
    for (int i = p->n_servers; i < n; i++)
        set[i] = (px_set){ .mru = -1, .lru = -1 };
    p->set = set;
    p->n_servers = n;
    return 1;
}

/* ---- the registry ---- */

static int *holders(px_entry *e)
{
    return e->cap > 1 ? e->holder.many : &e->holder.one;
}

/* The place of server in the ascending holders s[0..n): the first not
 * below it. */
static int holder_at(const int *s, int n, int server)
{
    int lo = 0, hi = n;
    while (lo < hi) {
        int mid = (lo + hi) / 2;
        if (s[mid] < server)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

static int reg_find(const lb_prefix *p, uint64_t h)
{
    if (p->n_ebuckets == 0)
        return -1;
    for (int e = p->ebucket[px_mix(h, p->n_ebuckets)]; e >= 0; e = p->entry[e].chain)
        if (p->entry[e].hash == h)
            return e;
    return -1;
}

/* Registry lost (out of memory): its holders no longer exact. */
static void reg_drop(lb_prefix *p)
{
    p->registry = p->chained = 0;
}

/* A new entry for h (no holder yet), -1 when out of memory. */
static int reg_new(lb_prefix *p, uint64_t h)
{
    if (p->live + 1 > p->n_ebuckets) {
        int nb = p->n_ebuckets ? 2 * p->n_ebuckets : 64;
        int *b = malloc((size_t)nb * sizeof *b);
        if (!b)
            return -1;
        for (int k = 0; k < nb; k++)
            b[k] = -1;
        for (int e = 0; e < p->n_entries; e++)
            if (p->entry[e].n > 0) {
                unsigned k = px_mix(p->entry[e].hash, nb);
                p->entry[e].chain = b[k];
                b[k] = e;
            }
        free(p->ebucket);
        p->ebucket = b;
        p->n_ebuckets = nb;
    }
    int e = p->free_entry;
    if (e >= 0) {
        p->free_entry = p->entry[e].chain;
    } else {
        if (p->n_entries == p->cap_entries) {
            int cap = p->cap_entries ? 2 * p->cap_entries : 64;
            px_entry *entry = realloc(p->entry, (size_t)cap * sizeof *entry);
            if (!entry)
                return -1;
            p->entry = entry;
            p->cap_entries = cap;
        }
        e = p->n_entries++;
    }
    unsigned k = px_mix(h, p->n_ebuckets);
    p->entry[e] = (px_entry){ .hash = h, .chain = p->ebucket[k], .cap = 1 };
    p->ebucket[k] = e;
    p->live++;
    return e;
}

/* hashes[j] was touched on some server: does it follow what it followed
 * before? */
static void reg_check(lb_prefix *p, int e, const uint64_t *hashes, int j)
{
    const px_entry *x = &p->entry[e];
    if (x->first != (j == 0) || (j > 0 && x->before != hashes[j - 1]))
        p->chained = 0;
}

/* Server now holds hashes[j]. */
static void reg_add(lb_prefix *p, int server, const uint64_t *hashes, int j)
{
    if (!p->registry)
        return;
    int e = reg_find(p, hashes[j]);
    if (e < 0) {
        if ((e = reg_new(p, hashes[j])) < 0) {
            reg_drop(p);
            return;
        }
        p->entry[e].first = j == 0;
        p->entry[e].before = j > 0 ? hashes[j - 1] : 0;
    } else {
        reg_check(p, e, hashes, j);
    }
    px_entry *x = &p->entry[e];
    if (x->n == x->cap) {
        int cap = 2 * x->cap;
        int *many = x->cap > 1 ? realloc(x->holder.many, (size_t)cap * sizeof *many)
                               : malloc((size_t)cap * sizeof *many);
        if (!many) {
            reg_drop(p);
            return;
        }
        if (x->cap == 1)
            many[0] = x->holder.one;
        x->holder.many = many;
        x->cap = cap;
    }
    int *s = holders(x), lo = holder_at(s, x->n, server);
    memmove(&s[lo + 1], &s[lo], (size_t)(x->n - lo) * sizeof *s);
    s[lo] = server;
    x->n++;
}

/* Server no longer holds h. */
static void reg_remove(lb_prefix *p, int server, uint64_t h)
{
    if (!p->registry)
        return;
    int e = reg_find(p, h);
    if (e < 0)
        return;
    px_entry *x = &p->entry[e];
    int *s = holders(x), lo = holder_at(s, x->n, server);
    if (lo == x->n || s[lo] != server)
        return;
    memmove(&s[lo], &s[lo + 1], (size_t)(x->n - lo - 1) * sizeof *s);
    if (--x->n > 0)
        return;
    /* no holder left: out of its bucket, onto the free list */
    int *at = &p->ebucket[px_mix(h, p->n_ebuckets)];
    while (*at != e)
        at = &p->entry[*at].chain;
    *at = x->chain;
    if (x->cap > 1)
        free(x->holder.many);
    x->cap = 1;
    x->chain = p->free_entry;
    p->free_entry = e;
    p->live--;
}

int lb_prefix_holders(const lb_prefix *p, uint64_t h, const int **servers)
{
    *servers = NULL;
    if (!p->registry)
        return -1;
    int e = reg_find(p, h);
    if (e < 0)
        return 0;
    px_entry *x = &p->entry[e];
    *servers = holders(x);
    return x->n;
}

int lb_prefix_first_holder(const lb_prefix *p, uint64_t h, const lb_view *view)
{
    const int *s;
    int n = lb_prefix_holders(p, h, &s);
    for (int k = 0; k < n && s[k] < view->n; k++) /* ascending */
        if (lb_server_eligible(&view->servers[s[k]]))
            return s[k];
    return n < 0 ? -2 : -1;
}

int lb_prefix_known(const lb_prefix *p, const uint64_t *hashes, int n)
{
    if (!p->chained)
        return -1;
    int j = 0;
    for (; j < n; j++) {
        int e = reg_find(p, hashes[j]);
        if (e < 0)
            break;
        const px_entry *x = &p->entry[e];
        if (x->first != (j == 0) || (j > 0 && x->before != hashes[j - 1]))
            return -1;
    }
    return j;
}

int lb_prefix_insert(lb_prefix *p, int server, const uint64_t *hashes, int n)
{
    if (server < 0 || !hashes || n <= 0)
        return 1;
    if (!px_reserve_servers(p, server + 1)) {
        p->chained = 0;   /* its hashes now missing from its set */
        return 0;
    }
    px_set *s = &p->set[server];
    if (n > p->capacity)
        n = p->capacity;
    /* last block first: the first one ends up the most recent */
    for (int j = n - 1; j >= 0; j--) {
        int k = px_find(s, hashes[j]);
        if (k >= 0) {
            lru_unlink(s, k);
            if (p->chained) {
                int e = reg_find(p, hashes[j]);
                if (e >= 0)
                    reg_check(p, e, hashes, j);
            }
        } else if (s->n < p->capacity && (s->n < s->cap || px_grow(s, p->capacity))) {
            k = s->n++;
            s->node[k].hash = hashes[j];
            chain_add(s, k);
            reg_add(p, server, hashes, j);
        } else if (s->n == p->capacity) {
            /* n <= capacity: the least recent is never one touched here */
            k = s->lru;
            lru_unlink(s, k);
            chain_remove(s, k);
            reg_remove(p, server, s->node[k].hash);
            s->node[k].hash = hashes[j];
            chain_add(s, k);
            reg_add(p, server, hashes, j);
        } else {
            p->chained = 0;   /* the deeper hashes in, this one not */
            return 0;
        }
        lru_push_front(s, k);
    }
    return 1;
}
