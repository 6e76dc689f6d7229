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
 * primaries, then, if the policy finds none, the backups. One difference:
 * nginx's clock has whole seconds, ours is the simulated time.
 *
 * On the tracked view (lb_track) that copy of the primaries is kept rather
 * than made per pick (`pm`): lb_changed, a result, a pick's re-check and
 * the passage of time (a heap of passive-health timeouts; the outlier
 * detector's heap of un-ejection ticks and its list of hosts whose
 * ejection changed) each update the server concerned and tell the policy,
 * which keeps its index on pm, and counts stand for the walks (servers
 * available for LB_BUSY; up, ejected and up, ejected and not up for the
 * panic threshold). In panic mode pm shows the ejected servers too: the
 * change of mode updates only the servers listed as differing (pf). Picks
 * on other views and on the backup tier take the walking path below, which
 * is also the definition: tests/policies/test_lb_index.c compares the two.
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

/* What lb keeps per server, in one record: a request reads and writes
 * several of these (the pick, lb_changed twice, lb_on_done), one cache line
 * rather than one per array on a large fleet. */
typedef struct {
    /* nginx passive health (ngx_http_upstream_rr_peer_t) */
    double accessed_s;       /* last failure */
    double checked_s;        /* last failure, or a pick fail_timeout after it */
    int fails;
    /* of the tracked view while pm is valid: its place in hh (-1: not
     * there) and PM_* flags */
    int hh_pos;
    unsigned char pm_flags;
    unsigned char avail;     /* of the tracked view: up && !down as last reported */
    int pf_pos;              /* its place in pf (-1: not there) */
} lb_srv;

struct lb {
    const struct lb_ops *ops;
    void *state;
    int bad_pick_reported;   /* the stderr report is printed once per instance */
    /* per server, cap of them (lb_srv) */
    int cap;
    lb_srv *srv;
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
    /* of the tracked view: how many servers are up && !down as last
     * reported (lb_srv.avail; no walk for LB_BUSY against LB_NO_UPSTREAM) */
    int n_track_avail;
    /* Of the tracked view, kept through lb_changed and the health and
     * ejection events (pm_valid), so that a pick neither walks the view nor
     * copies it: pm is the view as the policy sees it with the primaries
     * (backups and hidden servers not up), and the policy keeps its index
     * on pm. Per server, flags (lb_srv.pm_flags) say what it counts towards. */
    lb_server_view *pm;
    int pm_valid;
    int n_vis;               /* up, not down, not hidden: LB_BUSY */
    int n_out_avail;         /* ejected and up && !down: panic mode's counts */
    int n_out_unavail;       /* ejected and not */
    int n_panic_vis;         /* ejected, up, not down, not out by passive
                                health: available in panic mode only */
    /* pm in panic mode's form: ejected servers shown (Envoy uses every host
     * in panic), the others as always. The primaries that differ between
     * the two forms (PM_FLIP) are listed in pf, so that a change of mode
     * updates those, not the whole view. */
    int pm_panic;
    int *pf, n_pf;
    /* servers out by passive health, in a heap by checked_s + fail_timeout_s
     * (when they come back) */
    int *hh, hh_len;         /* lb_srv.hh_pos: a server's place in hh */
    int *scratch;
    double last_now_s;
};

#define PM_HIDDEN 1u      /* out by passive health or ejected (panic aside) */
#define PM_VIS 2u         /* up, not down, not hidden */
#define PM_OUT_AVAIL 4u   /* ejected, up and not down */
#define PM_OUT_UNAVAIL 8u /* ejected, down or not up */
#define PM_PANIC_VIS 16u  /* ejected, up, not down, not out by passive health */
#define PM_FLIP 32u       /* that, and a primary: up in pm in panic only */

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

/* Room for n servers' records (new ones: never failed, in no heap); 0
 * when out of memory. */
static int srv_reserve(lb *b, int n)
{
    if (n <= b->cap)
        return 1;
    lb_srv *r = realloc(b->srv, (size_t)n * sizeof *r);
    if (!r)
        return 0;
    for (int i = b->cap; i < n; i++)
        r[i] = (lb_srv){ .accessed_s = -INFINITY, .checked_s = -INFINITY, .hh_pos = -1,
                         .pf_pos = -1 };
    b->srv = r;
    b->cap = n;
    return 1;
}

/* Room for n servers of passive-health and outlier state (new ones: never
 * failed) and of the masked view. 0 when out of memory: lb_pick then runs
 * without passive health and outlier detection rather than fail. */
static int reserve(lb *b, int n)
{
    if (!srv_reserve(b, n))
        return 0;
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

    return i < b->cap && s->max_fails > 0 && b->srv[i].fails >= s->max_fails &&
           view->now_s - b->srv[i].checked_s <= s->fail_timeout_s && !single(view);
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

/* Tells the policy whether the view it is about to get is the one it may
 * keep an index of: pm, the tracked view's masked mirror. */
static void tell_tracking(lb *b, const lb_view *view)
{
    int on = b->pm_valid && view->servers == b->pm;

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

/* ---- the tracked view's masked mirror (pm) ---- */

static double hh_key(const lb *b, int i)
{
    return b->srv[i].checked_s + b->track_servers[i].fail_timeout_s;
}

static int hh_before(const lb *b, int x, int y)
{
    double kx = hh_key(b, x), ky = hh_key(b, y);
    return kx < ky || (kx == ky && x < y);
}

static void hh_place(lb *b, int at, int i)
{
    b->hh[at] = i;
    b->srv[i].hh_pos = at;
}

static void hh_up(lb *b, int at)
{
    int i = b->hh[at];
    while (at > 0 && hh_before(b, i, b->hh[(at - 1) / 2])) {
        hh_place(b, at, b->hh[(at - 1) / 2]);
        at = (at - 1) / 2;
    }
    hh_place(b, at, i);
}

static void hh_down(lb *b, int at)
{
    int i = b->hh[at];
    for (;;) {
        int c = 2 * at + 1;
        if (c >= b->hh_len)
            break;
        if (c + 1 < b->hh_len && hh_before(b, b->hh[c + 1], b->hh[c]))
            c++;
        if (!hh_before(b, b->hh[c], i))
            break;
        hh_place(b, at, b->hh[c]);
        at = c;
    }
    hh_place(b, at, i);
}

/* Server i in the heap (its key may have changed) or out of it. */
static void hh_set(lb *b, int i, int in)
{
    int at = b->srv[i].hh_pos;

    if (in && at < 0) {
        hh_place(b, b->hh_len++, i);
        hh_up(b, b->hh_len - 1);
    } else if (in) {
        hh_up(b, at);
        hh_down(b, b->srv[i].hh_pos);
    } else if (at >= 0) {
        b->srv[i].hh_pos = -1;
        if (at < --b->hh_len) {
            int last = b->hh[b->hh_len];
            hh_place(b, at, last);
            hh_up(b, at);
            hh_down(b, b->srv[last].hh_pos);
        }
    }
}

/* Server i in pf or out of it. */
static void pf_set(lb *b, int i, int in)
{
    int at = b->srv[i].pf_pos;
    if (in) {
        b->srv[i].pf_pos = b->n_pf;
        b->pf[b->n_pf++] = i;
    } else {
        int last = b->pf[--b->n_pf];
        b->pf[at] = last;
        b->srv[last].pf_pos = at;
        b->srv[i].pf_pos = -1;
    }
}

/* pm in panic mode's form (on) or the usual one: the servers of pf
 * change, each told to the policy. */
static void pm_set_panic(lb *b, const lb_view *view, int on)
{
    if (on == b->pm_panic)
        return;
    b->pm_panic = on;
    for (int k = 0; k < b->n_pf; k++) {
        int i = b->pf[k];
        b->pm[i].up = on;   /* up: PM_FLIP */
        if (b->policy_tracking) {
            lb_view pv = { .n = b->track_n, .servers = b->pm, .now_s = view->now_s };
            b->ops->on_change(b->state, &pv, i);
        }
    }
}

/* Server i of the tracked view (view) as lb_pick's walks would see it now:
 * its flags, the counts, the heap, pm[i]; the policy is told if it tracks
 * pm. */
static void pm_update(lb *b, const lb_view *view, int i, int notify)
{
    const lb_server_view *s = &view->servers[i];
    int ho = b->srv[i].fails > 0 && health_out(b, view, i);
    int out = b->od.n_flagged > 0 && lb_od_out(&b->od, i);
    int av = s->up && !s->down;
    int pv = out && av && !ho;
    unsigned f = (ho || out ? PM_HIDDEN : 0u) | (av && !ho && !out ? PM_VIS : 0u) |
                 (out && av ? PM_OUT_AVAIL : 0u) | (out && !av ? PM_OUT_UNAVAIL : 0u) |
                 (pv ? PM_PANIC_VIS : 0u) | (pv && !s->backup ? PM_FLIP : 0u);
    unsigned old = b->srv[i].pm_flags;

    if (f != old) {
        b->n_vis += !!(f & PM_VIS) - !!(old & PM_VIS);
        b->n_out_avail += !!(f & PM_OUT_AVAIL) - !!(old & PM_OUT_AVAIL);
        b->n_out_unavail += !!(f & PM_OUT_UNAVAIL) - !!(old & PM_OUT_UNAVAIL);
        b->n_panic_vis += !!(f & PM_PANIC_VIS) - !!(old & PM_PANIC_VIS);
        b->srv[i].pm_flags = (unsigned char)f;
        if ((f ^ old) & PM_FLIP)
            pf_set(b, i, !!(f & PM_FLIP));
    }
    if (ho || b->srv[i].hh_pos >= 0)
        hh_set(b, i, ho);
    b->pm[i] = *s;
    if (s->backup || ho || (out && !b->pm_panic))
        b->pm[i].up = 0;
    if (notify && b->policy_tracking) {
        lb_view pv = { .n = b->track_n, .servers = b->pm, .now_s = view->now_s };
        b->ops->on_change(b->state, &pv, i);
    }
}

/* Off: the next tracked pick builds it again (and the policy its index). */
static void pm_drop(lb *b)
{
    b->pm_valid = 0;
    if (b->policy_tracking && b->ops->on_change) {
        lb_view pv = { .n = b->track_n, .servers = b->pm, .now_s = b->last_now_s };
        b->policy_tracking = 0;
        b->ops->on_change(b->state, &pv, LB_TRACK_STOP);
    }
}

/* Builds pm and its state for the tracked view; 0 when out of memory. */
static int pm_build(lb *b, const lb_view *view)
{
    int n = view->n;
    lb_server_view *pm = realloc(b->pm, (size_t)n * sizeof *pm);
    if (!pm)
        return 0;
    b->pm = pm;
    if (!srv_reserve(b, n))
        return 0;
    int *hh = realloc(b->hh, (size_t)n * sizeof *hh);
    if (!hh)
        return 0;
    b->hh = hh;
    int *sc = realloc(b->scratch, (size_t)n * sizeof *sc);
    if (!sc)
        return 0;
    b->scratch = sc;
    int *pf = realloc(b->pf, (size_t)n * sizeof *pf);
    if (!pf)
        return 0;
    b->pf = pf;
    const int *moved;
    lb_od_moved(&b->od, &moved);   /* read whole below */
    b->hh_len = b->n_vis = b->n_out_avail = b->n_out_unavail = b->n_panic_vis = 0;
    b->n_pf = b->pm_panic = 0;
    for (int i = 0; i < n; i++) {
        b->srv[i].pm_flags = 0;
        b->srv[i].hh_pos = b->srv[i].pf_pos = -1;
    }
    for (int i = 0; i < n; i++)
        pm_update(b, view, i, 0);
    b->pm_valid = 1;
    return 1;
}

/* Brings pm to view->now_s: the servers whose ejection changed, and those
 * whose passive-health timeout has passed. */
static void pm_catch_up(lb *b, const lb_view *view)
{
    const int *moved;
    int k = lb_od_moved(&b->od, &moved), m = 0;

    for (int j = 0; j < k; j++)
        if (moved[j] < view->n)
            pm_update(b, view, moved[j], 1);
    /* out while now - checked <= fail_timeout: past the key (less float
     * dust) it may be back; health_out decides, and one still out goes
     * back into the heap after the loop */
    double slack = 1e-9 * (1.0 + fabs(view->now_s));
    while (b->hh_len > 0 && hh_key(b, b->hh[0]) < view->now_s + slack) {
        int i = b->hh[0];
        hh_set(b, i, 0);
        b->scratch[m++] = i;
    }
    for (int j = 0; j < m; j++)
        pm_update(b, view, b->scratch[j], 1);
}

/* Server i's health or ejection state changed outside a pick: pm follows
 * on the tracked view, and is dropped (rebuilt at the next tracked pick)
 * when the change came with another view. */
static void health_changed(lb *b, const lb_view *view, int i)
{
    if (!b->pm_valid)
        return;
    if (tracked(b, view) && i < view->n)
        pm_update(b, view, i, 1);
    else
        pm_drop(b);
}

/* panic_mode from the counts: the same numbers without the walk. */
static int panic_counted(const lb *b, const lb_view *view, const lb_request *req)
{
    int th = b->od.cfg.healthy_panic_threshold;
    if (th <= 0)
        return 0;
    int hosts = b->n_track_avail + b->n_out_unavail;
    int healthy = b->n_track_avail - b->n_out_avail;
    for (int k = 0; req && k < req->n_hidden; k++) {
        int i = req->hidden[k];
        if (i < 0 || i >= view->n || view->servers[i].up || view->servers[i].down)
            continue;
        int out = lb_od_out(&b->od, i);
        hosts += !out;
        healthy += !out;
    }
    return hosts > 0 && 100.0 * healthy / hosts < (th < 100 ? th : 100);
}

/* The pick after the policy's answer s (both ways): nginx's re-check, and
 * LB_BUSY or LB_NO_UPSTREAM when s < 0. counted: the tracked view's counts
 * answer for the walk. */
static int finish(lb *b, const lb_view *view, int s, int health, int has_backup, int any_out)
{
    int pm_on = b->pm_valid && tracked(b, view);

    if (s >= 0) {
        /* nginx: once fail_timeout has passed, a pick re-checks the server;
         * a success after that clears its failures (see lb_on_done). */
        if (health && view->now_s - b->srv[s].checked_s > view->servers[s].fail_timeout_s) {
            b->srv[s].checked_s = view->now_s;
            if (b->srv[s].fails > 0)   /* else checked_s does not matter yet */
                health_changed(b, view, s);
        }
        return s;
    }
    if (pm_on && health) {
        /* available: up, not down, not hidden (in panic: not out by
         * passive health), as counted */
        if (b->n_vis + (b->od_panic ? b->n_panic_vis : 0) > 0)
            return LB_BUSY;
    } else if (health && !has_backup && !any_out && tracked(b, view)) {
        /* none hidden: available is up and not down, counted as reported */
        if (b->n_track_avail > 0)
            return LB_BUSY;
    } else {
        for (int i = 0; i < view->n; i++)
            if (available(b, view, i))
                return LB_BUSY;
    }
    for (int i = 0; b->n_failing > 0 && i < b->cap; i++)   /* all peers failed: mark them live */
        b->srv[i].fails = 0;
    b->n_failing = 0;
    if (pm_on)   /* every server out by passive health is back */
        while (b->hh_len > 0)
            pm_update(b, view, b->hh[0], 1);
    else if (b->pm_valid)
        pm_drop(b);
    return LB_NO_UPSTREAM;
}

/* The walking pick: the policy gets the caller's view, or a masked copy. */
static int walk_pick(lb *b, const lb_view *view, const lb_request *req, int health,
                     int has_backup, int any_out)
{
    int s;
    lb_view tmp;

    for (int i = 0; health && b->n_failing > 0 && i < view->n && !any_out; i++)
        any_out |= health_out(b, view, i);
    if (!health || (!has_backup && !any_out)) {
        s = checked_pick(b, view, req);
    } else {
        s = checked_pick(b, mask(b, view, &tmp, 0), req);
        if (s < 0 && has_backup)
            s = checked_pick(b, mask(b, view, &tmp, 1), req);
    }
    return finish(b, view, s, health, has_backup, any_out);
}

int lb_pick(lb *b, const lb_view *view, const lb_request *req)
{
    int any_out = 0, health;

    assert(b && view);
    assert(view->n == 0 || view->servers);
    if (view->n <= 0)
        return LB_NO_UPSTREAM;
    b->last_now_s = view->now_s;
    health = reserve(b, view->n);
    if (b->backup_n != view->n) {
        b->has_backup = 0;
        for (int i = 0; i < view->n; i++)
            b->has_backup |= view->servers[i].backup != 0;
        b->backup_n = view->n;
    }
    int has_backup = b->has_backup;
    b->od_panic = 0;
    if (health && b->od.cfg.enabled) /* calls only when on: this is every request's path */
        any_out = lb_od_sweep(&b->od, view->n, view->now_s);
    if (health && tracked(b, view) && (b->pm_valid || pm_build(b, view))) {
        /* the tracked view: pm is current after the events since the last
         * pick, the counts stand for the walks */
        pm_catch_up(b, view);
        if (any_out && panic_counted(b, view, req)) {
            b->od_panic = 1;   /* ejected servers count again */
            b->od_panics++;
        }
        pm_set_panic(b, view, b->od_panic);
        lb_view pv = { .n = view->n, .servers = b->pm, .now_s = view->now_s };
        int s = checked_pick(b, &pv, req);
        if (s < 0 && has_backup) {
            lb_view tmp;
            s = checked_pick(b, mask(b, view, &tmp, 1), req);
        }
        return finish(b, view, s, health, has_backup, any_out);
    }
    /* the common case, no failures on record and none ejected, skips the walks */
    if (any_out && panic_mode(b, view, req)) {
        b->od_panic = 1;
        b->od_panics++;
        any_out = 0;
    }
    return walk_pick(b, view, req, health, has_backup, any_out);
}

void lb_forget(lb *b, int server)
{
    if (!b || server < 0)
        return;
    if (server < b->cap) {
        b->n_failing -= b->srv[server].fails > 0;
        b->srv[server].fails = 0;
        b->srv[server].checked_s = -INFINITY;
    }
    lb_od_forget(&b->od, server);
    if (b->pm_valid && server < b->track_n) {
        lb_view tv = { .n = b->track_n, .servers = b->track_servers, .now_s = b->last_now_s };
        health_changed(b, &tv, server);
    }
}

void lb_on_done(lb *b, const lb_view *view, int server, double latency_s, lb_result result)
{
    assert(b && view);
    assert(server >= 0 && server < view->n);
    assert(result == LB_OK || result == LB_ERROR || result == LB_HTTP_5XX);
    if (server < 0 || server >= view->n)
        return;
    int room = reserve(b, view->n);
    int touched = room && b->od.cfg.enabled;   /* health or ejection state changed */
    if (touched)
        lb_od_result(&b->od, view, server, result);
    /* nginx: a 5xx not in proxy_next_upstream is freed with state 0, a
     * success like any response (see lb_result in lb.h) */
    if (!single(view) && room) {
        if (result == LB_ERROR) {
            touched = 1;
            b->n_failing += b->srv[server].fails == 0;
            b->srv[server].fails++;
            b->srv[server].accessed_s = view->now_s;
            b->srv[server].checked_s = view->now_s;
        } else if (b->srv[server].accessed_s < b->srv[server].checked_s) {
            touched |= b->srv[server].fails > 0;
            b->n_failing -= b->srv[server].fails > 0;
            b->srv[server].fails = 0;   /* a success after the re-check */
        }
    }
    if (touched)   /* the ejection too: pm_update reads it */
        health_changed(b, view, server);
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
    pm_drop(b);
    b->track_servers = view->servers;
    b->track_n = view->n;
    b->policy_tracking = 0;
    b->n_track_avail = 0;
    if (view->n <= 0 || !srv_reserve(b, view->n)) {   /* nothing to track, or no memory: lb_pick walks */
        b->track_servers = NULL;
        return;
    }
    for (int i = 0; i < view->n; i++) {
        b->srv[i].avail = (unsigned char)avail_flag(&view->servers[i]);
        b->n_track_avail += b->srv[i].avail;
    }
}

void lb_changed(lb *b, const lb_view *view, int server)
{
    if (!b || !view || !tracked(b, view) || server < 0 || server >= view->n)
        return;
    int f = avail_flag(&view->servers[server]);
    b->n_track_avail += f - b->srv[server].avail;
    b->srv[server].avail = (unsigned char)f;
    if (b->pm_valid)
        pm_update(b, view, server, 1);
}

void lb_destroy(lb *b)
{
    if (!b)
        return;
    if (b->ops->destroy)
        b->ops->destroy(b->state);
    else
        free(b->state);
    free(b->srv);
    free(b->masked);
    free(b->pm);
    free(b->pf);
    free(b->hh);
    free(b->scratch);
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
