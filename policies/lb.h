/*
 * lb.h - load-balancing policies behind one ops struct, chosen by name.
 *
 * A policy sees a read-only view of one pool's servers (never SimGrid) and
 * picks the server a request goes to. The engine calls only the wrappers
 * below (lb_pick, lb_on_done, ...), never an ops field, so optional methods
 * and argument checks live in one place (policies/lb.c). Policies are
 * registered in policies/registry.c; an unknown name is an error that lists
 * the names that exist (lb_names()).
 */
#ifndef FLEETSIM_LB_H
#define FLEETSIM_LB_H

#include <gsl/gsl_rng.h>
#include <stddef.h>
#include <stdint.h>

/* lb_pick's answers besides a server index. */
#define LB_BUSY (-1)         /* every server that may take requests is at max_conns:
                                the request may wait at the balancer */
#define LB_NO_UPSTREAM (-2)  /* no server may take requests at all (down, not up,
                                out by passive health, ejected by outlier
                                detection, or already tried): nginx answers
                                502 "no live upstreams" */

/* What a policy may know about one server. A view zero-initialised past
 * `weight` means: a primary server, not down, no passive health, no name. */
typedef struct {
    int up;          /* ready and reachable: may receive requests */
    int active;      /* requests sent to it and not yet answered (queued + running) */
    int max_conns;   /* 0 = unlimited */
    double weight;   /* > 0 */
    /* Per-server configuration as in an nginx `server` line. Handled by the
     * lb_pick/lb_on_done wrappers for every policy (a policy sees a view in
     * which a server it may not use is not up). */
    int backup;      /* nginx `backup`: used only when no primary server can
                        take the request (not up, down, out, or at max_conns) */
    int down;        /* nginx `down`: configured out; never used */
    int max_fails;   /* nginx max_fails: after this many failed requests
                        (lb_on_done LB_ERROR) the server is out for
                        fail_timeout_s; 0 = passive health off */
    double fail_timeout_s;  /* nginx fail_timeout, >= 0 (nginx's default 10 s) */
    const char *name;  /* stable identity ("10.0.0.1:8000", "gpu/0"), used by
                          `hash` to place the server on its ring; NULL = the
                          decimal index. Borrowed: must outlive the view. */
    /* An LLM server's load as its engines report it (vLLM's
     * num_requests_waiting / num_requests_running / kv_cache_usage_perc
     * summed or averaged over the server's replicas); 0 for a batch server.
     * outstanding_tokens: prompt tokens not yet computed plus output tokens
     * not yet generated of the requests it holds (Splitwise's token-JSQ). */
    int llm_waiting, llm_running;
    double llm_kv_usage;        /* 0..1 */
    double outstanding_tokens;
} lb_server_view;

typedef struct {
    int n;                          /* servers in the pool */
    const lb_server_view *servers;  /* n entries, index = server number */
    double now_s;                   /* simulated time */
} lb_view;

/* How an attempt on a server ended (lb_on_done). nginx and Envoy disagree
 * on a 5xx the server answered, hence three results, not two:
 * - nginx counts an attempt as failed (NGX_PEER_FAILED: max_fails, the
 *   effective weight, least_time's average) on an error or a timeout, and
 *   on a status only if `proxy_next_upstream` lists it (http_503, ...).
 *   A 5xx it passes on to the client is freed with state 0, a success
 *   (src/http/ngx_http_upstream.c, ngx_http_upstream_test_next and
 *   ngx_http_upstream_next).
 * - Envoy's outlier detection counts every 5xx response towards
 *   consecutive_5xx, 503 included, and a connection failure or timeout as
 *   one too (source/common/upstream/outlier_detection_impl.cc,
 *   DetectorHostMonitorImpl::putHttpResponseCode, putResult).
 * The caller decides which status its proxy treats as a failure: a 5xx that
 * `proxy_next_upstream` lists is LB_ERROR, any other 5xx LB_HTTP_5XX. */
typedef enum {
    LB_OK = 0,     /* a response that is not a 5xx */
    LB_ERROR,      /* failed: no connection, connection lost, no response in
                      time, or a status the proxy treats as a failure.
                      nginx and Envoy both count it */
    LB_HTTP_5XX,   /* a 5xx response passed on to the client: Envoy counts it
                      towards consecutive_5xx, nginx takes it as a success */
} lb_result;

/* What a policy may know about the request being routed. */
typedef struct {
    unsigned long id;
    int traffic_class;
    double arrival_s;
    unsigned long key;   /* what `hash` hashes: the client or class the
                            request belongs to (nginx's $remote_addr, or an
                            IPv4 address as a 32-bit number for ip_hash);
                            requests with one key go to one server */
    const int *hidden;   /* servers up in the cluster that the caller shows
                            as not up for this pick only (already tried by
                            this request): still hosts to panic mode */
    int n_hidden;
    /* An LLM request: its prompt and answer lengths, and its prompt's
     * prefix hashes (hashes[j] names tokens [0, (j+1) * hash_block_tokens),
     * chained as Mooncake's hash_ids); 0 / NULL otherwise. */
    int input_tokens, output_tokens;
    const uint64_t *hashes;
    int n_hashes, hash_block_tokens;
} lb_request;

/* A server can take one more request: up, not down, below max_conns. */
static inline int lb_server_eligible(const lb_server_view *s)
{
    return s->up && !s->down && (s->max_conns == 0 || s->active < s->max_conns);
}

/* Ways `hash` turns lb_request.key into a server (lb_params.hash_mode). */
enum lb_hash_mode {
    LB_HASH_CONSISTENT = 0,  /* nginx `hash KEY consistent`: ketama ring */
    LB_HASH_PLAIN = 1,       /* nginx `hash KEY`: crc32 modulo total weight */
    LB_HASH_IP = 2,          /* nginx `ip_hash`: first three octets of the key
                                read as an IPv4 address */
};

/* Envoy outlier detection, consecutive-5xx kind (envoy.config.cluster.v3
 * OutlierDetection; semantics in policies/lb_outlier.c). Applied by the
 * lb_pick / lb_on_done wrappers to every policy, beside nginx's passive
 * health: an ejected server is not `up` in the view a policy sees. */
typedef struct {
    int enabled;                  /* 0 = off (the default) */
    int consecutive_5xx;          /* failures in a row that eject, >= 1; 5 */
    double interval_s;            /* the detector's timer, > 0; 10 s */
    double base_ejection_time_s;  /* > 0; 30 s */
    double max_ejection_time_s;   /* >= base_ejection_time_s; 300 s */
    int max_ejection_percent;     /* 0..100; 10 */
    int enforcing_consecutive_5xx;  /* percent chance an ejection is
                                       enforced, 0..100; 100. Between 0 and
                                       100 it needs the instance's rng. */
    int always_eject_one_host;    /* eject one server even when
                                     max_ejection_percent forbids it; 0 */
    int healthy_panic_threshold;  /* percent 0..100; 50: when fewer of the
                                     servers than this are not ejected, the
                                     balancer ignores ejections (Envoy's
                                     panic mode); 0 = never */
} lb_outlier;

/* Policy parameters; start from lb_params_default() and change what a
 * scenario sets. A policy reads only its own fields; lb.c reads outlier. */
typedef struct {
    int choice_count;            /* p2c_least_request: servers sampled per pick
                                    (Envoy choice_count), >= 2; default 2 */
    double active_request_bias;  /* p2c_least_request with unequal weights:
                                    weight / (active + 1)^bias (Envoy
                                    active_request_bias), >= 0; default 1 */
    double decay_s;              /* peak_ewma: time constant of the RTT
                                    average (Finagle decayTime, linkerd
                                    decay), > 0; default 10 s */
    double default_rtt_s;        /* peak_ewma: RTT assumed before a server's
                                    first response, >= 0; default 30 ms */
    int hash_mode;               /* hash: enum lb_hash_mode; default consistent */
    char hash_key[64];           /* hash: what the key is, as written in the
                                    configuration ("$remote_addr"); for the
                                    engine and reports, the policy reads only
                                    lb_request.key. Default "" */
    /* The token-aware policies (policies/lb/least_tokens.c, vllm_dp.c,
     * prefix_affinity.c, kv_aware.c). */
    double cache_threshold;      /* prefix_affinity: route to the best prefix
                                    match when its match rate is above this,
                                    0..1 (SGLang cache_threshold); default 0.5 */
    int balance_abs_threshold;   /* prefix_affinity: the servers' active
                                    requests are imbalanced when max - min >
                                    this and max > balance_rel_threshold x
                                    min, >= 0; default 32 (SGLang) */
    double balance_rel_threshold;  /* prefix_affinity, >= 0; default 1.1 (SGLang) */
    int prefix_blocks;           /* prefix_affinity, kv_aware: prefix hashes the
                                    balancer remembers per server, LRU; 0 = the
                                    policy's upstream default (prefix_affinity
                                    10000, SGLang max_tree_size; kv_aware 31250,
                                    llm-d lruCapacityPerServer); default 0 */
    double prefix_weight;        /* kv_aware: weight of the prefix-match share,
                                    >= 0; default 2 (llm-d) */
    double queue_weight;         /* kv_aware: weight of the queue score, >= 0;
                                    default 1 */
    double kv_weight;            /* kv_aware: weight of the free KV share, >= 0;
                                    default 1 */
    lb_outlier outlier;          /* every policy: outlier detection; off */
} lb_params;

lb_params lb_params_default(void);
/* NULL if p is valid; otherwise a message naming the bad field. */
const char *lb_params_invalid(const lb_params *p);

typedef void *lb_init_fn(int n_servers, gsl_rng *rng);
/* As lb_init_fn, with the instance's parameters (never NULL, valid). */
typedef void *lb_init_with_fn(int n_servers, gsl_rng *rng, const lb_params *params);
/* Returns the chosen server, or -1 when no server is eligible. */
typedef int lb_pick_fn(void *state, const lb_view *view, const lb_request *req);
/* latency_s: until the response, or until the failure was known. */
typedef void lb_done_fn(void *state, const lb_view *view, int server,
                        double latency_s, lb_result result);
typedef void lb_free_fn(void *state);
/* Server `server` of the tracked view changed (lb_changed), or, for the
 * two values below, whether the views the policy gets from now on are the
 * tracked one. */
typedef void lb_change_fn(void *state, const lb_view *view, int server);
#define LB_TRACK_START (-1)  /* the views from now on are the tracked one:
                                every change to them comes as on_change */
#define LB_TRACK_STOP (-2)   /* the views from now on are not: read each
                                whole (the policy's index is stale) */

struct lb_ops {
    const char *name;      /* as written in scenarios */
    const char *summary;   /* one line for `fleetsim list` */
    lb_init_fn *init;      /* optional: private state (NULL state is fine) */
    lb_pick_fn *pick;      /* required */
    lb_done_fn *on_done;   /* optional: a request finished on a server */
    lb_free_fn *destroy;   /* optional */
    lb_init_with_fn *init_with;  /* optional, instead of init: a policy that
                                    takes parameters */
    lb_change_fn *on_change;     /* optional: a server of the tracked view
                                    changed, or LB_TRACK_START / STOP (see
                                    lb_track) */
};
/*
 * How lb.c calls these, in one place:
 * - A policy without state leaves init NULL. A policy with init returns NULL
 *   from it only on failure (no memory, or a NULL rng for a policy that
 *   draws random numbers); lb_create then returns NULL.
 * - destroy NULL means the state, if any, is released with free().
 * - view->n may differ from the n_servers given to init (a pool that was
 *   scaled out or in); a policy must size its state by view->n.
 * - A policy sees only servers it may use as `up`: lb_pick hides backup
 *   servers while a primary can take the request (and primaries when it
 *   turns to the backups), `down` servers, servers out by passive health
 *   (max_fails / fail_timeout_s, state kept in lb.c as nginx keeps it per
 *   peer) and servers ejected by outlier detection (lb_params.outlier,
 *   state in policies/lb_outlier.c). A policy returns an eligible server
 *   of that view, or -1; lb_pick alone decides between LB_BUSY and
 *   LB_NO_UPSTREAM.
 * - A policy that keeps an index (on_change) trusts it only between
 *   LB_TRACK_START and LB_TRACK_STOP, and only after it has read the view
 *   whole once (an index starts invalid). The view it may index is lb.c's
 *   mirror of the one the caller named in lb_track, with the servers the
 *   policy may not use shown as not up (kept through lb_changed and lb.c's
 *   own health and ejection events, each change an on_change). lb.c sends
 *   START before the first pick on that mirror, and STOP before a pick on
 *   any other view (a test's, or the copy lb_pick makes in panic mode or
 *   for the backup tier); then the policy reads the view whole and rebuilds
 *   its index after the next START. Either way the pick is the one a scan
 *   of the view makes, random draws included.
 */

/* One policy instance for one pool. */
typedef struct lb lb;

/* NULL-terminated table of every registered policy (policies/registry.c). */
extern const struct lb_ops *const lb_registry[];

const struct lb_ops *lb_find(const char *name);
/* Writes "a, b, c" (every registered name) into buf; returns buf. */
char *lb_names(char *buf, size_t len);

/* NULL if name is unknown or the policy cannot start (see init above).
 * rng is borrowed and must outlive the instance. */
lb *lb_create(const char *name, int n_servers, gsl_rng *rng);
/* The same from an ops struct that need not be registered (tests, plugins).
 * NULL if ops lacks a name or a pick method. */
lb *lb_create_ops(const struct lb_ops *ops, int n_servers, gsl_rng *rng);
/* Same as lb_create with parameters; NULL params = lb_params_default().
 * NULL also if the parameters are invalid (lb_params_invalid). */
lb *lb_create_with(const char *name, int n_servers, gsl_rng *rng, const lb_params *params);
lb *lb_create_ops_with(const struct lb_ops *ops, int n_servers, gsl_rng *rng,
                       const lb_params *params);
/* A server index: eligible, a primary unless no primary could take it,
 * not out by passive health, not ejected by outlier detection. Otherwise
 * LB_BUSY (-1) when some server that may take requests is only at
 * max_conns (the request may wait), or LB_NO_UPSTREAM (-2) when none may:
 * then, as nginx does when every peer has failed, the passive-health
 * failure counts of all servers are reset so that the next request finds
 * them live again (ejections stand). An empty view is LB_NO_UPSTREAM.
 * view->now_s must be the current time. */
int lb_pick(lb *b, const lb_view *view, const lb_request *req);
/* Every request lb_pick sent to `server` ends here exactly once, with
 * view->now_s set to the time it ended. LB_ERROR counts towards max_fails
 * and, with outlier detection, towards consecutive_5xx; LB_HTTP_5XX only
 * towards consecutive_5xx (for max_fails it is a success, as for nginx);
 * LB_OK is a success for both. The policy's on_done gets the result as
 * given. */
void lb_on_done(lb *b, const lb_view *view, int server, double latency_s, lb_result result);
/* The caller will report every change to a server of `view` (any field)
 * through lb_changed before its next lb_pick or lb_on_done, and keeps its
 * `servers` array and `n`: policies may then keep indexes instead of
 * reading every server per pick. Without it (the default) a policy reads
 * each view whole. */
void lb_track(lb *b, const lb_view *view);
/* Server `server` of the tracked view changed. O(log n) at most; nothing
 * for a NULL b or a view that is not the tracked one. */
void lb_changed(lb *b, const lb_view *view, int server);
/* Server is a new replica in the slot of one that was switched off: the
 * balancer forgets its passive-health failures and its outlier-detection
 * state (ejections, backoff, consecutive errors). */
void lb_forget(lb *b, int server);

/* One server's outlier-detection state as of now_s (no earlier than the
 * last lb_pick / lb_on_done; reading it changes nothing). */
typedef struct {
    int ejected;           /* out at now_s */
    double ejected_at_s;   /* the last ejection (NAN if never) */
    double until_s;        /* back at this interval tick (valid if ejected) */
    int num_ejections;     /* enforced ejections so far */
    int consecutive_5xx;   /* failures in a row (LB_ERROR or LB_HTTP_5XX)
                              since the last success, ejection attempt or
                              un-ejection */
    int backoff;           /* Envoy's ejectTimeBackoff: the next ejection
                              lasts min(base x (backoff + 1), max) */
} lb_outlier_host;

/* Fills *out; -1 if outlier detection is off or server was never seen. */
int lb_outlier_state(const lb *b, int server, double now_s, lb_outlier_host *out);
/* Enforced ejections of every server so far (0 when off). */
unsigned long lb_outlier_ejections(const lb *b);
/* Picks made in panic mode, ignoring ejections (healthy_panic_threshold). */
unsigned long lb_outlier_panics(const lb *b);
void lb_destroy(lb *b);
const char *lb_name(const lb *b);

#endif
