/*
 * hash.c - nginx's hash methods: requests with the same key
 * (lb_request.key) go to the same server while it can take them.
 *
 * LB_HASH_CONSISTENT, nginx `hash KEY consistent`
 * (src/http/modules/ngx_http_upstream_hash_module.c, ketama): each server
 * puts 160 points per unit of weight on a ring of 32-bit hashes, point j
 * being crc32(HOST "\0" PORT PREV) where PREV is point j-1's hash (4 bytes,
 * little-endian; 0 for the first) and HOST:PORT is the server's name split
 * at a last colon followed by digits. A key goes to the first point at or
 * above crc32(key); if that server cannot take it, to the next point's,
 * up to 20 points, then smooth weighted round robin. Adding a server to n
 * moves about 1/(n+1) of the keys, all of them to the new server.
 *
 * LB_HASH_PLAIN, nginx `hash KEY`: h += (crc32([TRY] KEY) >> 16) & 0x7fff,
 * the server is h modulo the total weight walked through the servers in
 * order; each retry prefixes the try number, up to 20, then round robin.
 *
 * LB_HASH_IP, nginx `ip_hash` (ngx_http_upstream_ip_hash_module.c): the key
 * is an IPv4 address (a.b.c.d as a 32-bit number); h starts at 89 and takes
 * h = (h * 113 + octet) % 6271 over a, b, c on each try; the server is h
 * modulo the total weight as above.
 *
 * The key's bytes are its decimal digits, so key 42 hashes as nginx hashes
 * the string "42". Weights are rounded to integers (nginx's are integers),
 * at least 1. A server's name is lb_server_view.name, or its decimal index.
 * The ring is rebuilt when the number of servers, a weight or a name
 * changes: O(n * 160 * weight * log) then. Otherwise a pick is O(n) on an
 * untracked view (the total weight, the check that the ring is current, the
 * walk through the weights) and O(log n) on a tracked one (lb.h): the
 * integer weights in a Fenwick tree (lb_index.h) give the total and the
 * server a value h falls on, the change notices say when a weight or a name
 * changed, and the ring's lookup is a binary search. The same server either
 * way; the round-robin fallback (no server found in 20 tries) stays O(n).
 */
#include "lb.h"
#include "lb_index.h"
#include "lb_wrr.h"

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* CRC-32 (IEEE 802.3, reflected, polynomial 0xEDB88320), nginx's ngx_crc32. */
static uint32_t crc_table[256];

static void crc_init_table(void)
{
    if (crc_table[1])
        return;
    for (uint32_t i = 0; i < 256; i++) {
        uint32_t c = i;
        for (int k = 0; k < 8; k++)
            c = c & 1 ? 0xEDB88320u ^ (c >> 1) : c >> 1;
        crc_table[i] = c;
    }
}

static uint32_t crc_update(uint32_t crc, const void *data, size_t len)
{
    const unsigned char *p = data;

    while (len--)
        crc = crc_table[(crc ^ *p++) & 0xff] ^ (crc >> 8);
    return crc;
}

/* crc32 of one buffer (ngx_crc32_long). */
static uint32_t crc32_of(const void *data, size_t len)
{
    return crc_update(0xffffffffu, data, len) ^ 0xffffffffu;
}

typedef struct {
    uint32_t hash;
    int server;
} point;

struct hash_state {
    int mode;
    lb_wrr wrr;            /* the fallback's state */
    point *points;
    size_t n_points;
    /* points by their top bits: bucket[b] is the first point whose hash >>
     * bucket_shift is >= b (2^(32 - bucket_shift) + 1 entries), so that a
     * lookup searches a few neighbouring points rather than the whole ring */
    uint32_t *bucket;
    int bucket_shift;
    int ring_n;            /* servers the ring was built for; -1: none */
    struct ring_server {   /* their weights and names then */
        double weight;
        const char *name;
    } *ring_srv;
    /* a tracked view's integer weights, and whether the ring is known to be
     * current for it (no weight or name changed since it was checked) */
    int tracked, valid, ring_ok;
    lb_fenwick weights;
};

static void *hash_init(int n_servers, gsl_rng *rng, const lb_params *params)
{
    struct hash_state *st = calloc(1, sizeof *st);

    (void)n_servers;
    (void)rng;
    if (!st)
        return NULL;
    crc_init_table();
    st->mode = params->hash_mode;
    st->ring_n = -1;
    return st;
}

static void hash_destroy(void *state)
{
    struct hash_state *st = state;

    lb_wrr_free(&st->wrr);
    free(st->points);
    free(st->bucket);
    free(st->ring_srv);
    lb_fenwick_free(&st->weights);
    free(st);
}

static long int_weight(const lb_server_view *s)
{
    long w = lround(s->weight);
    return w >= 1 ? w : 1;
}

/* Server i's integer weight in the tree; 0 if the sums could be inexact. */
static int hash_place(struct hash_state *st, const lb_server_view *s, int i)
{
    long w = int_weight(s);

    if (w > 1048576)
        return 0;
    lb_fenwick_set(&st->weights, i, (double)w);
    return 1;
}

static int ring_current(const struct hash_state *st, const lb_view *view);

static void hash_change(void *state, const lb_view *view, int server)
{
    struct hash_state *st = state;

    if (server < 0) {   /* LB_TRACK_START / LB_TRACK_STOP */
        st->tracked = server == LB_TRACK_START;
        st->valid = 0;
        return;
    }
    if (!st->valid)
        return;
    const lb_server_view *s = &view->servers[server];
    if (server >= st->weights.n || !hash_place(st, s, server)) {
        st->valid = 0;
        return;
    }
    if (st->ring_ok && (st->ring_srv[server].weight != s->weight || st->ring_srv[server].name != s->name))
        st->ring_ok = 0;
}

/* 1 with the tree valid for this view (built now if it was not). */
static int hash_ready(struct hash_state *st, const lb_view *view)
{
    if (!st->tracked || (st->valid && st->weights.n != view->n))
        st->valid = 0;
    if (!st->tracked || st->valid)
        return st->valid;
    if (view->n <= 0 || !lb_fenwick_reset(&st->weights, view->n))
        return 0;
    for (int i = 0; i < view->n; i++)
        if (!hash_place(st, &view->servers[i], i))
            return 0;
    st->ring_ok = ring_current(st, view);
    st->valid = 1;
    return 1;
}

static int cmp_points(const void *a, const void *b)
{
    const point *x = a, *y = b;

    if (x->hash != y->hash)
        return x->hash < y->hash ? -1 : 1;
    return (x->server > y->server) - (x->server < y->server);
}

static int ring_current(const struct hash_state *st, const lb_view *view)
{
    if (st->ring_n != view->n)
        return 0;
    for (int i = 0; i < view->n; i++)
        if (st->ring_srv[i].weight != view->servers[i].weight ||
            st->ring_srv[i].name != view->servers[i].name)
            return 0;
    return 1;
}

/* ngx_http_upstream_update_chash: the ketama points of every server. */
static int ring_build(struct hash_state *st, const lb_view *view)
{
    size_t total = 0, k = 0;
    struct ring_server *rs;
    point *pts;

    for (int i = 0; i < view->n; i++)
        total += (size_t)int_weight(&view->servers[i]) * 160;
    pts = malloc((total ? total : 1) * sizeof *pts);
    rs = malloc((size_t)(view->n ? view->n : 1) * sizeof *rs);
    if (!pts || !rs) {
        free(pts);
        free(rs);
        return 0;
    }
    for (int i = 0; i < view->n; i++) {
        char buf[32];
        const char *name = view->servers[i].name;
        size_t len, host_len, j;
        const char *port = NULL;
        size_t port_len = 0;
        uint32_t base, prev = 0;
        long npoints = int_weight(&view->servers[i]) * 160;

        if (!name) {
            snprintf(buf, sizeof buf, "%d", i);
            name = buf;
        }
        len = strlen(name);
        host_len = len;
        if (len >= 5 && strncmp(name, "unix:", 5) == 0) {
            name += 5;
            host_len = len - 5;
        } else {
            for (j = 0; j < len; j++) {   /* a last ':' followed by digits */
                char c = name[len - j - 1];
                if (c == ':') {
                    host_len = len - j - 1;
                    port = name + len - j;
                    port_len = j;
                    break;
                }
                if (c < '0' || c > '9')
                    break;
            }
        }
        base = crc_update(0xffffffffu, name, host_len);
        base = crc_update(base, "", 1);
        if (port)
            base = crc_update(base, port, port_len);
        for (long p = 0; p < npoints; p++) {
            unsigned char le[4] = { (unsigned char)(prev & 0xff), (unsigned char)((prev >> 8) & 0xff),
                                    (unsigned char)((prev >> 16) & 0xff),
                                    (unsigned char)((prev >> 24) & 0xff) };
            uint32_t h = crc_update(base, le, 4) ^ 0xffffffffu;
            pts[k].hash = h;
            pts[k].server = i;
            k++;
            prev = h;
        }
        rs[i] = (struct ring_server){ view->servers[i].weight, view->servers[i].name };
    }
    qsort(pts, k, sizeof *pts, cmp_points);
    if (k > 0) {   /* one point per hash value, as nginx keeps */
        size_t u = 0;
        for (size_t j = 1; j < k; j++)
            if (pts[j].hash != pts[u].hash)
                pts[++u] = pts[j];
        k = u + 1;
    }
    int bits = 1;   /* about four points per bucket */
    while (bits < 20 && ((size_t)1 << bits) < k / 4)
        bits++;
    uint32_t *bucket = malloc((((size_t)1 << bits) + 1) * sizeof *bucket);
    if (!bucket) {
        free(pts);
        free(rs);
        return 0;
    }
    int shift = 32 - bits;
    for (size_t b = 0, at = 0; b <= (size_t)1 << bits; b++) {
        while (at < k && (pts[at].hash >> shift) < b)
            at++;
        bucket[b] = (uint32_t)at;
    }
    free(st->points);
    free(st->bucket);
    free(st->ring_srv);
    st->points = pts;
    st->bucket = bucket;
    st->bucket_shift = shift;
    st->n_points = k;
    st->ring_srv = rs;
    st->ring_n = view->n;
    return 1;
}

/* ngx_http_upstream_find_chash_point: the first point >= hash (n_points
 * when there is none; the caller wraps). nginx bisects the whole ring; the
 * points' hashes are distinct, so the first point >= hash is one point and
 * bisecting only its bucket finds the same one. */
static size_t find_point(const struct hash_state *st, uint32_t hash)
{
    uint32_t b = hash >> st->bucket_shift;
    size_t i = st->bucket[b], j = st->bucket[b + 1];

    while (i < j) {
        size_t k = (i + j) / 2;
        if (st->points[k].hash < hash)
            i = k + 1;
        else
            j = k;
    }
    return i;
}

static int pick_consistent(struct hash_state *st, const lb_view *view, const lb_request *req)
{
    char key[32];
    size_t len, at;

    if (!(st->valid ? st->ring_ok : ring_current(st, view))) {
        if (!ring_build(st, view))
            return -2;   /* no memory: round robin */
        st->ring_ok = st->valid;
    }
    if (st->n_points == 0)
        return -2;
    len = (size_t)snprintf(key, sizeof key, "%lu", req->key);
    at = find_point(st, crc32_of(key, len));
    for (int tries = 0; tries <= 20; tries++) {
        int s = st->points[(at + (size_t)tries) % st->n_points].server;
        if (lb_server_eligible(&view->servers[s]))
            return s;
    }
    return -2;
}

/* The server where w (< the total) falls when the integer weights are laid
 * end to end. */
static int walk(const struct hash_state *st, const lb_view *view, unsigned long w)
{
    int p = 0;

    if (st->valid)   /* the first server whose prefix sum passes w */
        return lb_fenwick_find(&st->weights, (double)w);

    while (p < view->n - 1 && w >= (unsigned long)int_weight(&view->servers[p])) {
        w -= (unsigned long)int_weight(&view->servers[p]);
        p++;
    }
    return p;
}

static int pick_plain(const struct hash_state *st, const lb_view *view, const lb_request *req,
                      unsigned long total)
{
    char key[32], num[32];
    size_t len = (size_t)snprintf(key, sizeof key, "%lu", req->key);
    unsigned long h = 0;

    for (int rehash = 0; rehash <= 20; rehash++) {
        uint32_t c = 0xffffffffu;
        if (rehash > 0)
            c = crc_update(c, num, (size_t)snprintf(num, sizeof num, "%d", rehash));
        c = crc_update(c, key, len) ^ 0xffffffffu;
        h += (c >> 16) & 0x7fff;
        int s = walk(st, view, h % total);
        if (lb_server_eligible(&view->servers[s]))
            return s;
    }
    return -2;
}

static int pick_ip(const struct hash_state *st, const lb_view *view, const lb_request *req,
                   unsigned long total)
{
    const unsigned char addr[3] = { (unsigned char)((req->key >> 24) & 0xff),
                                    (unsigned char)((req->key >> 16) & 0xff),
                                    (unsigned char)((req->key >> 8) & 0xff) };
    unsigned long h = 89;

    for (int tries = 0; tries <= 20; tries++) {
        for (int i = 0; i < 3; i++)
            h = (h * 113 + addr[i]) % 6271;
        int s = walk(st, view, h % total);
        if (lb_server_eligible(&view->servers[s]))
            return s;
    }
    return -2;
}

static int hash_pick(void *state, const lb_view *view, const lb_request *req)
{
    struct hash_state *st = state;
    unsigned long total = 0;
    int s;

    if (hash_ready(st, view)) {
        total = (unsigned long)st->weights.total;   /* integers: exact */
    } else {
        for (int i = 0; i < view->n; i++)
            total += (unsigned long)int_weight(&view->servers[i]);
    }
    if (view->n < 2)
        s = -2;   /* nginx: a single server goes the round-robin way */
    else if (st->mode == LB_HASH_PLAIN)
        s = pick_plain(st, view, req, total);
    else if (st->mode == LB_HASH_IP)
        s = pick_ip(st, view, req, total);
    else
        s = pick_consistent(st, view, req);
    /* -2 here: nginx hands the request to ngx_http_upstream_get_round_robin_peer */
    return s >= 0 ? s : lb_wrr_pick(&st->wrr, view, 0, NULL, NULL);
}

static void hash_done(void *state, const lb_view *view, int server, double latency_s,
                      lb_result result)
{
    struct hash_state *st = state;

    (void)latency_s;
    if (result == LB_ERROR)   /* nginx NGX_PEER_FAILED; a 5xx passed on is not */
        lb_wrr_failed(&st->wrr, view, server);
}

const struct lb_ops lb_hash = {
    .name = "hash",
    .summary = "same key, same server: ketama ring (nginx hash $key consistent), plain hash or ip_hash",
    .init_with = hash_init,
    .pick = hash_pick,
    .on_done = hash_done,
    .destroy = hash_destroy,
    .on_change = hash_change,
};
