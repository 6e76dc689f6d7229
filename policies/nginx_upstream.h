/*
 * nginx_upstream.h - reads an `upstream NAME { ... }` block from an nginx
 * configuration file, so a scenario can balance exactly as the upstream a
 * user runs in production: its servers with their parameters and its
 * balancing method, as a registered lb policy name and lb_params.
 *
 * Understood inside the block (nginx's ngx_http_upstream_module and the
 * method modules):
 *   server ADDRESS [weight=N] [max_fails=N] [fail_timeout=TIME]
 *                  [max_conns=N] [backup] [down];
 *   least_conn;  random [two [least_conn]];  hash KEY [consistent];
 *   ip_hash;  least_time header|last_byte;  zone NAME [SIZE];
 * with nginx's defaults (weight 1, max_fails 1, fail_timeout 10s,
 * max_conns 0) and nginx's refusals (backup with hash, ip_hash or random).
 * Any other directive or parameter in the block is an error naming it with
 * file:line:col; the rest of the file is only tokenised (nginx syntax:
 * directives ending in `;`, blocks in braces, '#' comments, single- or
 * double-quoted strings with backslash escapes), so it may hold anything.
 */
#ifndef FLEETSIM_NGINX_UPSTREAM_H
#define FLEETSIM_NGINX_UPSTREAM_H

#include "lb.h"

#include <stddef.h>

typedef struct {
    char *address;          /* as written: "10.0.0.1:8000", "unix:/x.sock" */
    double weight;          /* integer >= 1 */
    int max_fails;          /* >= 0 */
    double fail_timeout_s;  /* >= 0 */
    int max_conns;          /* >= 0, 0 = unlimited */
    int backup;
    int down;
    int line, col;          /* of the `server` directive */
} lb_nginx_server;

typedef struct {
    char *name;               /* the upstream's name */
    const char *policy;       /* registered lb policy: weighted_round_robin,
                                 least_conn, random, random_two_least_conn,
                                 hash, least_time */
    lb_params params;         /* hash_mode and hash_key for hash; defaults else */
    int n_servers;
    lb_nginx_server *servers; /* in file order: server i is lb view index i */
} lb_nginx_upstream;

/* Reads upstream `name` from the nginx configuration text (file is the name
 * used in messages). 0 on success; -1 with "file:line:col: message" in err
 * otherwise (the first error found). out is zeroed first; free it with
 * lb_nginx_free() in either case. */
int lb_nginx_parse(const char *text, const char *file, const char *name,
                   lb_nginx_upstream *out, char *err, size_t errlen);
/* The same from a file on disk. */
int lb_nginx_read(const char *path, const char *name, lb_nginx_upstream *out,
                  char *err, size_t errlen);
void lb_nginx_free(lb_nginx_upstream *u);

/* The `location` blocks of the first `server` block that has any (at any
 * depth, typically inside `http`), for L7 routing: `location URI`,
 * `location ^~ URI` (prefixes) and `location = URI` (exact), each with a
 * `proxy_pass http://UPSTREAM[...]` naming the upstream it sends to. Named
 * locations (@name) are skipped; regular-expression locations (~, ~*),
 * nested locations and duplicates are errors with file:line:col. A location
 * without proxy_pass (one that answers by itself: `return`, static files)
 * has upstream NULL. Other directives are read and ignored. */
typedef struct {
    char *uri;
    int exact;              /* location = URI */
    char *upstream;         /* proxy_pass's upstream name; NULL: no proxy_pass */
    int line, col;          /* of the `location` directive */
} lb_nginx_location;

typedef struct {
    lb_nginx_location *loc; /* in file order */
    int n;
} lb_nginx_locations;

int lb_nginx_read_locations(const char *path, lb_nginx_locations *out, char *err,
                            size_t errlen);
/* nginx's choice for a request path (ngx_http_core_find_location, without
 * regular expressions): an exact location equal to it, else the longest
 * prefix location it starts with; -1 when none matches. */
int lb_nginx_match(const lb_nginx_locations *l, const char *path);
void lb_nginx_locations_free(lb_nginx_locations *l);

#endif
