/*
 * lb.c - the only code that calls a load-balancing policy's ops.
 *
 * Optional methods (init, on_done, destroy) are handled here, and every pick
 * is checked against the view: a policy must return an eligible server in
 * range, or -1 only when no server is eligible. Anything else is a policy
 * bug. Debug builds stop on it (assert); release builds report it once on
 * stderr and route to the first eligible server instead, because returning
 * -1 there would reject a request the pool could have served and skew the
 * results without a trace.
 *
 * The per-server configuration nginx gives every balancing method lives here
 * too, so each policy gets it the same way: `down`, `backup` and passive
 * health (max_fails / fail_timeout). nginx keeps fails / accessed / checked
 * per peer and every method skips a peer with
 *     max_fails && fails >= max_fails && now - checked <= fail_timeout
 * (src/http/ngx_http_upstream_round_robin.c, ngx_http_upstream_get_peer and
 * ngx_http_upstream_free_round_robin_peer); when no primary is left it turns
 * to the backup peers, and when none of those is left either it resets every
 * peer's fails ("all peers failed, mark them as live for quick recovery")
 * and answers 502. lb_pick does the same by handing the policy a copy of the
 * view in which the servers it may not use are not `up`: first the
 * primaries, then, if the policy finds none, the backups. The copy is made
 * only when some server is a backup or out; otherwise the policy sees the
 * caller's view. One difference: nginx's clock has whole seconds, ours is the
 * simulated time.
 *
 * Envoy's outlier detection (lb_params.outlier, policies/lb_outlier.c) takes
 * servers out the same way: an ejected server is hidden like a server out by
 * passive health, lb_on_done feeds every result to the detector, and the two
 * mechanisms run side by side (a server is hidden if either says so). They
 * count different things: a 5xx response (LB_HTTP_5XX) is a failure to
 * Envoy and a success to nginx (lb_result in lb.h). The "all peers failed"
 * reset is nginx's and clears only nginx's counts.
 */
#include "lb.h"
#include "lb_outlier.h"

#include <assert.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct lb {
    const struct lb_ops *ops;
    void *state;
    int bad_pick_reported;   /* the stderr report is printed once per instance */
    /* nginx passive health per server (ngx_http_upstream_rr_peer_t) */
    int cap;
    int *fails;
    double *accessed_s;      /* last failure */
    double *checked_s;       /* last failure, or a pick fail_timeout after it */
    lb_server_view *masked;  /* the view a policy sees when some are hidden */
    int masked_cap;
    int n_failing;           /* servers with fails > 0: none, no health walk */
    int backup_n;            /* view size when has_backup was read (-1 never) */
    int has_backup;          /* backup is configuration: read once per view size */
    lb_od od;                /* Envoy outlier detection (off unless configured) */
    int od_panic;            /* this pick ignores ejections (panic_mode) */
    unsigned long od_panics; /* picks made so (Envoy's lb_healthy_panic) */
    /* the view the caller reports changes to (lb_track), and whether the
     * policy was last told it gets that view (LB_TRACK_START) */
    const lb_server_view *track_servers;
    int track_n;
    int policy_tracking;
    /* of the tracked view: each server's up && !down as last reported, and
     * how many are so (no walk for LB_BUSY against LB_NO_UPSTREAM) */
    unsigned char *track_avail;
    int n_track_avail;
};

lb_params lb_params_default(void)
{
    lb_params p;

    memset(&p, 0, sizeof p);
    p.choice_count = 2;           /* Envoy LeastRequest default */
    p.active_request_bias = 1.0;  /* Envoy default */
    p.decay_s = 10.0;             /* Finagle PeakEwma decayTime, linkerd default */
    p.default_rtt_s = 0.030;      /* linkerd2-proxy default RTT estimate */
    p.hash_mode = LB_HASH_CONSISTENT;
    /* SGLang sgl-router CacheAwareConfig defaults (src/policies/mod.rs) */
    p.cache_threshold = 0.5;
    p.balance_abs_threshold = 32;
    p.balance_rel_threshold = 1.1;
    /* llm-d's default scorer weights (prefix 2, queue 1, KV 1) */
    p.prefix_weight = 2.0;
    p.queue_weight = 1.0;
    p.kv_weight = 1.0;
    /* Envoy's defaults (envoy/config/cluster/v3/outlier_detection.proto) */
    p.outlier.consecutive_5xx = 5;
    p.outlier.interval_s = 10.0;
    p.outlier.base_ejection_time_s = 30.0;
    p.outlier.max_ejection_time_s = 300.0;
    p.outlier.max_ejection_percent = 10;
    p.outlier.enforcing_consecutive_5xx = 100;
    p.outlier.healthy_panic_threshold = 50; /* CommonLbConfig.healthy_panic_threshold */
    return p;
}

const char *lb_params_invalid(const lb_params *p)
{
    if (!p)
        return "no parameters";
    if (p->choice_count < 2)
        return "choice_count: expected an integer >= 2";
    if (!(p->active_request_bias >= 0.0) || isinf(p->active_request_bias))
        return "active_request_bias: expected a number >= 0";
    if (!(p->decay_s > 0.0) || isinf(p->decay_s))
        return "decay: expected a duration > 0";
    if (!(p->default_rtt_s >= 0.0) || isinf(p->default_rtt_s))
        return "default_rtt: expected a duration >= 0";
    if (p->hash_mode != LB_HASH_CONSISTENT && p->hash_mode != LB_HASH_PLAIN &&
        p->hash_mode != LB_HASH_IP)
        return "hash_mode: expected consistent, plain or ip";
    if (memchr(p->hash_key, '\0', sizeof p->hash_key) == NULL)
        return "hash_key: longer than 63 characters";
    if (!(p->cache_threshold >= 0.0 && p->cache_threshold <= 1.0))
        return "cache_threshold: expected a number from 0 to 1";
    if (p->balance_abs_threshold < 0)
        return "balance_abs_threshold: expected an integer >= 0";
    if (!(p->balance_rel_threshold >= 0.0) || isinf(p->balance_rel_threshold))
        return "balance_rel_threshold: expected a number >= 0";
    if (p->prefix_blocks < 0)
        return "prefix_blocks: expected an integer >= 0";
    if (!(p->prefix_weight >= 0.0) || isinf(p->prefix_weight))
        return "prefix_weight: expected a number >= 0";
    if (!(p->queue_weight >= 0.0) || isinf(p->queue_weight))
        return "queue_weight: expected a number >= 0";
    if (!(p->kv_weight >= 0.0) || isinf(p->kv_weight))
        return "kv_weight: expected a number >= 0";
    const lb_outlier *o = &p->outlier;
    if (!o->enabled)
        return NULL;
    if (o->consecutive_5xx < 1)
        return "outlier_detection.consecutive_5xx: expected an integer >= 1";
    if (!(o->interval_s > 0.0) || isinf(o->interval_s))
        return "outlier_detection.interval: expected a duration > 0";
    if (!(o->base_ejection_time_s > 0.0) || isinf(o->base_ejection_time_s))
        return "outlier_detection.base_ejection_time: expected a duration > 0";
    if (!(o->max_ejection_time_s >= o->base_ejection_time_s) || isinf(o->max_ejection_time_s))
        return "outlier_detection.max_ejection_time: cannot be smaller than base_ejection_time";
    if (o->max_ejection_percent < 0 || o->max_ejection_percent > 100)
        return "outlier_detection.max_ejection_percent: expected an integer from 0 to 100";
    if (o->enforcing_consecutive_5xx < 0 || o->enforcing_consecutive_5xx > 100)
        return "outlier_detection.enforcing_consecutive_5xx: expected an integer from 0 to 100";
    if (o->healthy_panic_threshold < 0 || o->healthy_panic_threshold > 100)
        return "outlier_detection.healthy_panic_threshold: expected an integer from 0 to 100";
    return NULL;
}

const struct lb_ops *lb_find(const char *name)
{
    if (!name)
        return NULL;
    for (const struct lb_ops *const *p = lb_registry; *p; p++)
        if (strcmp((*p)->name, name) == 0)
            return *p;
    return NULL;
}

char *lb_names(char *buf, size_t len)
{
    size_t used = 0;

    if (!buf || len == 0)
        return buf;
    buf[0] = '\0';
    for (const struct lb_ops *const *p = lb_registry; *p && used < len; p++) {
        int w = snprintf(buf + used, len - used, "%s%s",
                         p == lb_registry ? "" : ", ", (*p)->name);
        if (w < 0)
            break;
        used += (size_t)w;   /* past len on truncation: the loop stops */
    }
    return buf;
}

lb *lb_create_ops_with(const struct lb_ops *ops, int n_servers, gsl_rng *rng,
                       const lb_params *params)
{
    lb_params defaults = lb_params_default();
    lb *b;

    if (!params)
        params = &defaults;
    if (!ops || !ops->name || !ops->pick || n_servers < 0 || lb_params_invalid(params))
        return NULL;
    const lb_outlier *od = &params->outlier;
    if (od->enabled && !rng && od->enforcing_consecutive_5xx > 0 &&
        od->enforcing_consecutive_5xx < 100)
        return NULL;   /* a partial enforcement draws random numbers */
    b = calloc(1, sizeof *b);
    if (!b)
        return NULL;
    b->ops = ops;
    lb_od_init(&b->od, od, rng);
    if (ops->init_with || ops->init) {
        b->state = ops->init_with ? ops->init_with(n_servers, rng, params)
                                  : ops->init(n_servers, rng);
        if (!b->state) {
            free(b);
            return NULL;
        }
    }
    return b;
}

lb *lb_create_ops(const struct lb_ops *ops, int n_servers, gsl_rng *rng)
{
    return lb_create_ops_with(ops, n_servers, rng, NULL);
}

lb *lb_create_with(const char *name, int n_servers, gsl_rng *rng, const lb_params *params)
{
    return lb_create_ops_with(lb_find(name), n_servers, rng, params);
}

lb *lb_create(const char *name, int n_servers, gsl_rng *rng)
{
    return lb_create_ops_with(lb_find(name), n_servers, rng, NULL);
}

static int first_eligible(const lb_view *view)
{
    for (int i = 0; i < view->n; i++)
        if (lb_server_eligible(&view->servers[i]))
            return i;
    return -1;
}

/* Room for n servers of passive-health and outlier state (new ones: never
 * failed) and of the masked view. 0 when out of memory: lb_pick then runs
 * without passive health and outlier detection rather than fail. */
static int reserve(lb *b, int n)
{
    if (n > b->cap) {
        int *f = realloc(b->fails, (size_t)n * sizeof *f);
        if (f)
            b->fails = f;
        double *a = f ? realloc(b->accessed_s, (size_t)n * sizeof *a) : NULL;
        if (a)
            b->accessed_s = a;
        double *c = a ? realloc(b->checked_s, (size_t)n * sizeof *c) : NULL;
        if (!c)
            return 0;
        b->checked_s = c;
        for (int i = b->cap; i < n; i++) {
            b->fails[i] = 0;
            b->accessed_s[i] = -INFINITY;
            b->checked_s[i] = -INFINITY;
        }
        b->cap = n;
    }
    if (n > b->masked_cap) {
        lb_server_view *m = realloc(b->masked, (size_t)n * sizeof *m);
        if (!m)
            return 0;
        b->masked = m;
        b->masked_cap = n;
    }
    return b->od.cfg.enabled ? lb_od_reserve(&b->od, n) : 1;
}

/* nginx's `peers->single`: one server and no backup. nginx then ignores
 * max_fails and never counts its failures. */
static int single(const lb_view *view)
{
    return view->n == 1 && !view->servers[0].backup;
}

/* Out by passive health: max_fails failures, the last one (or the pick that
 * re-checked the server after it) no longer ago than fail_timeout. */
static int health_out(const lb *b, const lb_view *view, int i)
{
    const lb_server_view *s = &view->servers[i];

    return i < b->cap && s->max_fails > 0 && b->fails[i] >= s->max_fails &&
           view->now_s - b->checked_s[i] <= s->fail_timeout_s && !single(view);
}

/* Out by passive health or ejected by outlier detection (as of the sweep
 * at the start of this lb_pick; not in panic). */
static int hidden(const lb *b, const lb_view *view, int i)
{
    return health_out(b, view, i) || (!b->od_panic && lb_od_out(&b->od, i));
}

/* Envoy's panic mode (source/common/upstream/load_balancer_impl.cc,
 * LoadBalancerBase::isHostSetInPanic): when the healthy share of the hosts
 * is below healthy_panic_threshold percent, the balancer uses every host,
 * healthy or not. Here "unhealthy" is ejected by outlier detection, and the
 * hosts are those up or ejected, as max_ejection_percent counts them;
 * servers that are down, not ready or out by max_fails stay out. */
static int panic_mode(const lb *b, const lb_view *view, const lb_request *req)
{
    int th = b->od.cfg.healthy_panic_threshold, hosts = 0, healthy = 0;
    if (th <= 0)
        return 0;
    for (int i = 0; i < view->n; i++) {
        int out = lb_od_out(&b->od, i), up = view->servers[i].up && !view->servers[i].down;
        hosts += up || out;
        healthy += up && !out;
    }
    /* a retry's hidden servers are in the host set all the same (Envoy's
     * retry host predicates reject a pick; they do not shrink the set) */
    for (int k = 0; req && k < req->n_hidden; k++) {
        int i = req->hidden[k];
        if (i < 0 || i >= view->n || view->servers[i].up || view->servers[i].down)
            continue;
        int out = lb_od_out(&b->od, i);
        hosts += !out; /* an ejected one was counted above */
        healthy += !out;
    }
    return hosts > 0 && 100.0 * healthy / hosts < (th < 100 ? th : 100);
}

/* May take requests now or once a slot frees: up, not down, not out. */
static int available(const lb *b, const lb_view *view, int i)
{
    return view->servers[i].up && !view->servers[i].down && !hidden(b, view, i);
}

/* view is the one the caller reports changes to (lb_track). */
static int tracked(const lb *b, const lb_view *view)
{
    return b->track_servers && view->servers == b->track_servers && view->n == b->track_n;
}

/* Tells the policy whether the view it is about to get is the tracked one. */
static void tell_tracking(lb *b, const lb_view *view)
{
    int on = tracked(b, view);

    if (on == b->policy_tracking || !b->ops->on_change)
        return;
    b->policy_tracking = on;
    b->ops->on_change(b->state, view, on ? LB_TRACK_START : LB_TRACK_STOP);
}

/* The policy's pick, checked against the view it was given. */
static int checked_pick(lb *b, const lb_view *view, const lb_request *req)
{
    tell_tracking(b, view);
    int s = b->ops->pick(b->state, view, req);
    int fallback;

    if (s >= 0 && s < view->n && lb_server_eligible(&view->servers[s]))
        return s;
    fallback = first_eligible(view);   /* O(n), only off the common path */
    if (s == -1 && fallback == -1)
        return -1;
    assert(!"lb policy returned an ineligible server, or -1 with one eligible");
    if (!b->bad_pick_reported) {
        b->bad_pick_reported = 1;
        fprintf(stderr, "fleetsim: lb policy %s picked server %d of %d, which "
                "is not eligible; using %d instead (reported once)\n",
                b->ops->name, s, view->n, fallback);
    }
    return fallback;
}

/* The servers of one tier (backup = 0 primaries, 1 backups) that are not out,
 * as the policy will see them. */
static const lb_view *mask(lb *b, const lb_view *view, lb_view *tmp, int backup)
{
    for (int i = 0; i < view->n; i++) {
        b->masked[i] = view->servers[i];
        if (!view->servers[i].backup != !backup || hidden(b, view, i))
            b->masked[i].up = 0;
    }
    *tmp = *view;
    tmp->servers = b->masked;
    return tmp;
}

int lb_pick(lb *b, const lb_view *view, const lb_request *req)
{
    int s = -1, any_out = 0, health;
    lb_view tmp;

    assert(b && view);
    assert(view->n == 0 || view->servers);
    if (view->n <= 0)
        return LB_NO_UPSTREAM;
    health = reserve(b, view->n);
    if (b->backup_n != view->n) {
        b->has_backup = 0;
        for (int i = 0; i < view->n; i++)
            b->has_backup |= view->servers[i].backup != 0;
        b->backup_n = view->n;
    }
    int has_backup = b->has_backup;
    /* the common case, no failures on record and none ejected, skips the walks */
    b->od_panic = 0;
    if (health && b->od.cfg.enabled) { /* calls only when on: this is every request's path */
        any_out = lb_od_sweep(&b->od, view->n, view->now_s);
        if (any_out && panic_mode(b, view, req)) {
            b->od_panic = 1;
            b->od_panics++;
            any_out = 0;
        }
    }
    for (int i = 0; health && b->n_failing > 0 && i < view->n && !any_out; i++)
        any_out |= health_out(b, view, i);
    if (!health || (!has_backup && !any_out)) {
        s = checked_pick(b, view, req);
    } else {
        s = checked_pick(b, mask(b, view, &tmp, 0), req);
        if (s < 0 && has_backup)
            s = checked_pick(b, mask(b, view, &tmp, 1), req);
    }
    if (s >= 0) {
        /* nginx: once fail_timeout has passed, a pick re-checks the server;
         * a success after that clears its failures (see lb_on_done). */
        if (health && view->now_s - b->checked_s[s] > view->servers[s].fail_timeout_s)
            b->checked_s[s] = view->now_s;
        return s;
    }
    if (health && !has_backup && !any_out && tracked(b, view)) {
        /* none hidden: available is up and not down, counted as reported */
        if (b->n_track_avail > 0)
            return LB_BUSY;
    } else {
        for (int i = 0; i < view->n; i++)
            if (available(b, view, i))
                return LB_BUSY;
    }
    for (int i = 0; b->n_failing > 0 && i < b->cap; i++)   /* all peers failed: mark them live */
        b->fails[i] = 0;
    b->n_failing = 0;
    return LB_NO_UPSTREAM;
}

void lb_forget(lb *b, int server)
{
    if (!b || server < 0)
        return;
    if (server < b->cap) {
        b->n_failing -= b->fails[server] > 0;
        b->fails[server] = 0;
        b->checked_s[server] = -INFINITY;
    }
    lb_od_forget(&b->od, server);
}

void lb_on_done(lb *b, const lb_view *view, int server, double latency_s, lb_result result)
{
    assert(b && view);
    assert(server >= 0 && server < view->n);
    assert(result == LB_OK || result == LB_ERROR || result == LB_HTTP_5XX);
    if (server < 0 || server >= view->n)
        return;
    int room = reserve(b, view->n);
    if (room && b->od.cfg.enabled)
        lb_od_result(&b->od, view, server, result);
    /* nginx: a 5xx not in proxy_next_upstream is freed with state 0, a
     * success like any response (see lb_result in lb.h) */
    if (!single(view) && room) {
        if (result == LB_ERROR) {
            b->n_failing += b->fails[server] == 0;
            b->fails[server]++;
            b->accessed_s[server] = view->now_s;
            b->checked_s[server] = view->now_s;
        } else if (b->accessed_s[server] < b->checked_s[server]) {
            b->n_failing -= b->fails[server] > 0;
            b->fails[server] = 0;   /* a success after the re-check */
        }
    }
    if (b->ops->on_done)
        b->ops->on_done(b->state, view, server, latency_s, result);
}

static int avail_flag(const lb_server_view *s)
{
    return s->up && !s->down;
}

void lb_track(lb *b, const lb_view *view)
{
    assert(b && view);
    unsigned char *a = view->n > 0 ? realloc(b->track_avail, (size_t)view->n) : NULL;
    b->track_servers = view->servers;
    b->track_n = view->n;
    b->policy_tracking = 0;
    b->n_track_avail = 0;
    if (!a) {   /* nothing to track, or no memory: lb_pick walks */
        b->track_servers = NULL;
        return;
    }
    b->track_avail = a;
    for (int i = 0; i < view->n; i++) {
        a[i] = (unsigned char)avail_flag(&view->servers[i]);
        b->n_track_avail += a[i];
    }
}

void lb_changed(lb *b, const lb_view *view, int server)
{
    if (!b || !view || !tracked(b, view) || server < 0 || server >= view->n)
        return;
    int f = avail_flag(&view->servers[server]);
    b->n_track_avail += f - b->track_avail[server];
    b->track_avail[server] = (unsigned char)f;
    if (b->policy_tracking)
        b->ops->on_change(b->state, view, server);
}

void lb_destroy(lb *b)
{
    if (!b)
        return;
    if (b->ops->destroy)
        b->ops->destroy(b->state);
    else
        free(b->state);
    free(b->fails);
    free(b->accessed_s);
    free(b->checked_s);
    free(b->masked);
    free(b->track_avail);
    lb_od_free(&b->od);
    free(b);
}

const char *lb_name(const lb *b)
{
    return b ? b->ops->name : NULL;
}

int lb_outlier_state(const lb *b, int server, double now_s, lb_outlier_host *out)
{
    return b ? lb_od_state(&b->od, server, now_s, out) : -1;
}

unsigned long lb_outlier_ejections(const lb *b)
{
    return b ? b->od.ejections : 0;
}

unsigned long lb_outlier_panics(const lb *b)
{
    return b ? b->od_panics : 0;
}
