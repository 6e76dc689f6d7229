/*
 * lb_outlier.c - Envoy's outlier detection (the consecutive-5xx detector and
 * its ejection lifecycle) for one balancer instance, applied by lb.c to
 * every policy.
 *
 * Rules, from Envoy's source/common/upstream/outlier_detection_impl.cc:
 *
 * - Counting (DetectorHostMonitorImpl::putHttpResponseCode): a failure does
 *   `++consecutive_5xx_ == consecutive_5xx` and on equality reports the
 *   host; a success sets the count to 0. A failure is any 5xx response
 *   (Http::CodeUtility::is5xx: a 503 from a server whose queue is full as
 *   much as a 500; LB_HTTP_5XX) and, without
 *   split_external_local_origin_errors (the default), a connection failure
 *   or timeout, which putResult maps to a 5xx code (LB_ERROR). The report
 *   (DetectorImpl::onConsecutiveErrorWorker) does nothing to a host already
 *   ejected (its count keeps growing, and only the un-ejection resets it);
 *   otherwise it tries an ejection and resets the count whether or not the
 *   host was ejected, so a refused host needs consecutive_5xx more failures.
 * - Ejecting (DetectorImpl::ejectHost): allowed when
 *   100.0 * (ejected + 1) / hosts <= min(100, max_ejection_percent); with
 *   always_eject_one_host also when none is ejected. So at the default 10%
 *   a pool of fewer than 10 servers ejects nothing, 10..19 servers one.
 *   Envoy's `hosts` is every host of the cluster (host_monitors_), healthy
 *   or not. The view has no membership flag, so here it is the servers that
 *   are up and not down (in the balancer's list and passing active health
 *   checks), ejected, or the one that failed: a pool's switched-off slots
 *   (max_replicas above replicas) do not count, but neither do servers
 *   that only fail active health checks, which Envoy would count.
 *   Then it is enforced with probability enforcing_consecutive_5xx percent
 *   (runtime featureEnabled: random % 100 < percent). An enforced ejection
 *   sets num_ejections++ and, if ejectTimeBackoff * base < max + base,
 *   ejectTimeBackoff++ (so the backoff may stand one step above max / base).
 * - Un-ejecting (DetectorImpl::onIntervalTimer, checkHostForUneject): a
 *   timer every `interval` un-ejects a host once
 *   min(base * ejectTimeBackoff, max) <= now - last ejection, resets its
 *   consecutive count and records the un-ejection time. The same tick then
 *   decrements ejectTimeBackoff (not below 0) of every host not ejected
 *   whose last un-ejection is at least one interval ago. So durations grow
 *   30 s, 60 s, 90 s ... for a host that fails again at once, and a host
 *   that stays healthy loses one step per interval.
 *
 * The timer is not an actor here: policies see only lb_view.now_s. The
 * ticks are at k * interval from time 0 (Envoy arms the timer when the
 * cluster starts), and the detector catches up lazily whenever it is asked
 * (a pick, a result, a state query): a host ejected at t for d is back at
 * the first tick >= t + d (and after t), and a tick at the same instant as
 * a pick or a result is taken to come first. The observable result, which
 * server may take a request at which time and for how long the next
 * ejection lasts, is the timer's. A time within 1e-9 of an interval of a
 * tick counts as on it (SimGrid's clock carries float dust).
 *
 * Not modelled: the success-rate, failure-percentage, gateway-failure and
 * local-origin detectors; max_ejection_time_jitter (default 0); un-ejection
 * by a passing active health check; the post from worker to main thread
 * (the ejection happens at the failure that triggers it). Envoy's panic
 * threshold is lb.c's (panic_mode).
 *
 * The ejected hosts sit in a heap by the tick that brings them back, so a
 * sweep costs O(log n) per host it un-ejects and nothing otherwise; every
 * change of a host's ejected mark goes on a list that lb.c takes
 * (lb_od_moved) to keep its masked view and panic counts.
 */
#include "lb_outlier.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* Envoy's DetectorHostMonitorImpl, the fields this detector uses. */
struct lb_od_host {
    int consecutive;      /* consecutive_5xx_ */
    int backoff;          /* ejectTimeBackoff */
    int num_ejections;
    int ejected;          /* FAILED_OUTLIER_CHECK, until caught up */
    double ejected_at_s;  /* last_ejection_time_; NAN if never */
    double until_tick;    /* ejected: the tick index it is back at */
    double decay_tick;    /* tick index up to which backoff decrements are
                             applied; -1: never un-ejected (no
                             last_unejection_time_, nothing to decrement) */
};

#define TICK_EPS 1e-9

/* Index of the last tick at or before t (the first tick, index 1, is at
 * `interval`; index 0 stands for time 0). */
static double tick_floor(const lb_od *od, double t)
{
    return floor(t / od->cfg.interval_s + TICK_EPS);
}

/* Index of the first tick at or after t. */
static double tick_ceil(const lb_od *od, double t)
{
    return ceil(t / od->cfg.interval_s - TICK_EPS);
}

/* Runs the interval ticks up to index T on one host: the un-ejection, then
 * the backoff decrements. Returns 1 if it was un-ejected. */
static int catch_up(struct lb_od_host *h, double T)
{
    int back = 0;

    if (h->ejected && T >= h->until_tick) {
        h->ejected = 0;
        h->consecutive = 0;             /* unejectHost: resetConsecutive5xx */
        h->decay_tick = h->until_tick;  /* uneject: last_unejection_time_ */
        back = 1;
    }
    /* one decrement per tick at least one interval after the un-ejection */
    if (!h->ejected && h->decay_tick >= 0 && T > h->decay_tick) {
        double d = T - h->decay_tick;
        h->backoff = d >= h->backoff ? 0 : h->backoff - (int)d;
        h->decay_tick = T;
    }
    return back;
}

/* ---- the ejected hosts by the tick they are back at ---- */

static int heap_before(const lb_od *od, int a, int b)
{
    double ta = od->hosts[a].until_tick, tb = od->hosts[b].until_tick;
    return ta < tb || (ta == tb && a < b);
}

static void heap_place(lb_od *od, int at, int i)
{
    od->heap[at] = i;
    od->heap_pos[i] = at;
}

static void heap_up(lb_od *od, int at)
{
    int i = od->heap[at];
    while (at > 0 && heap_before(od, i, od->heap[(at - 1) / 2])) {
        heap_place(od, at, od->heap[(at - 1) / 2]);
        at = (at - 1) / 2;
    }
    heap_place(od, at, i);
}

static void heap_down(lb_od *od, int at)
{
    int i = od->heap[at];
    for (;;) {
        int c = 2 * at + 1;
        if (c >= od->heap_len)
            break;
        if (c + 1 < od->heap_len && heap_before(od, od->heap[c + 1], od->heap[c]))
            c++;
        if (!heap_before(od, od->heap[c], i))
            break;
        heap_place(od, at, od->heap[c]);
        at = c;
    }
    heap_place(od, at, i);
}

/* Host i's ejected mark changed: in or out of the heap, onto the list. */
static void mark_moved(lb_od *od, int i)
{
    if (od->hosts[i].ejected && od->heap_pos[i] < 0) {
        heap_place(od, od->heap_len++, i);
        heap_up(od, od->heap_len - 1);
    } else if (!od->hosts[i].ejected && od->heap_pos[i] >= 0) {
        int at = od->heap_pos[i];
        od->heap_pos[i] = -1;
        if (at < --od->heap_len) {
            int last = od->heap[od->heap_len];
            heap_place(od, at, last);
            heap_up(od, at);
            heap_down(od, od->heap_pos[last]);
        }
    }
    if (!od->is_moved[i]) {
        od->is_moved[i] = 1;
        od->moved[od->n_moved++] = i;
    }
}

/* catch_up on host i, keeping n_flagged, the heap and the list. */
static void host_catch_up(lb_od *od, int i, double T)
{
    if (catch_up(&od->hosts[i], T)) {
        od->n_flagged--;
        mark_moved(od, i);
    }
}

/* Un-ejects every host whose tick is at or before T. */
static void heap_sweep(lb_od *od, double T)
{
    while (od->heap_len > 0 && od->hosts[od->heap[0]].until_tick <= T)
        host_catch_up(od, od->heap[0], T);
}

int lb_od_moved(lb_od *od, const int **hosts)
{
    int n = od->n_moved;

    for (int k = 0; k < n; k++)
        od->is_moved[od->moved[k]] = 0;
    od->n_moved = 0;
    *hosts = od->moved;
    return n;
}

void lb_od_init(lb_od *od, const lb_outlier *cfg, gsl_rng *rng)
{
    memset(od, 0, sizeof *od);
    od->cfg = *cfg;
    od->rng = rng;
}

void lb_od_free(lb_od *od)
{
    free(od->hosts);
    free(od->heap);
    free(od->heap_pos);
    free(od->moved);
    free(od->is_moved);
    od->hosts = NULL;
    od->heap = od->heap_pos = od->moved = NULL;
    od->is_moved = NULL;
    od->cap = od->heap_len = od->n_moved = 0;
}

int lb_od_reserve(lb_od *od, int n)
{
    if (!od->cfg.enabled || n <= od->cap)
        return 1;
    struct lb_od_host *h = realloc(od->hosts, (size_t)n * sizeof *h);
    if (!h)
        return 0;
    od->hosts = h;
    int *hp = realloc(od->heap, (size_t)n * sizeof *hp);
    if (!hp)
        return 0;
    od->heap = hp;
    int *pos = realloc(od->heap_pos, (size_t)n * sizeof *pos);
    if (!pos)
        return 0;
    od->heap_pos = pos;
    int *mv = realloc(od->moved, (size_t)n * sizeof *mv);
    if (!mv)
        return 0;
    od->moved = mv;
    unsigned char *im = realloc(od->is_moved, (size_t)n);
    if (!im)
        return 0;
    od->is_moved = im;
    for (int i = od->cap; i < n; i++) {
        h[i] = (struct lb_od_host){ .ejected_at_s = NAN, .decay_tick = -1 };
        pos[i] = -1;
        im[i] = 0;
    }
    od->cap = n;
    return 1;
}

void lb_od_forget(lb_od *od, int i)
{
    if (i < 0 || i >= od->cap)
        return;
    int was = od->hosts[i].ejected != 0;
    od->n_flagged -= was;
    od->hosts[i] = (struct lb_od_host){ .ejected_at_s = NAN, .decay_tick = -1 };
    if (was)
        mark_moved(od, i);
}

int lb_od_sweep(lb_od *od, int n, double now_s)
{
    int any = 0;

    if (!od->cfg.enabled || od->n_flagged == 0)
        return 0;
    /* catch_up depends only on T, not on when it last ran, so hosts past n
     * may be brought up to date as well */
    heap_sweep(od, tick_floor(od, now_s));
    if (n >= od->cap)
        return od->n_flagged > 0;
    for (int i = 0; i < n && !any; i++)
        any = od->hosts[i].ejected;
    return any;
}

int lb_od_out(const lb_od *od, int i)
{
    return od->cfg.enabled && i >= 0 && i < od->cap && od->hosts[i].ejected;
}

/* runtime featureEnabled(key, percent): random % 100 < percent. */
static int enforced(lb_od *od)
{
    int p = od->cfg.enforcing_consecutive_5xx;

    if (p >= 100)
        return 1;
    if (p <= 0 || !od->rng)
        return 0;
    return gsl_rng_uniform_int(od->rng, 100) < (unsigned long)p;
}

/* DetectorImpl::ejectHost for a consecutive-5xx report. */
static void try_eject(lb_od *od, const lb_view *view, int server)
{
    double T = tick_floor(od, view->now_s);
    int active = 0, hosts = 0;

    heap_sweep(od, T);   /* then no host below is un-ejected by its catch_up */
    for (int j = 0; j < view->n && j < od->cap; j++) {
        const lb_server_view *s = &view->servers[j];
        host_catch_up(od, j, T);
        active += od->hosts[j].ejected;
        hosts += (s->up && !s->down) || od->hosts[j].ejected || j == server;
    }
    int max_pct = od->cfg.max_ejection_percent < 100 ? od->cfg.max_ejection_percent : 100;
    int should = 100.0 * (active + 1) / hosts <= max_pct;
    if (od->cfg.always_eject_one_host)
        should = active == 0 || should;
    if (!should || !enforced(od))
        return;   /* Envoy: ejections_overflow, or detected but not enforced */
    struct lb_od_host *h = &od->hosts[server];
    double base = od->cfg.base_ejection_time_s, max = od->cfg.max_ejection_time_s;
    h->ejected = 1;
    od->n_flagged++;
    h->num_ejections++;
    h->ejected_at_s = view->now_s;
    if (h->backoff * base < max + base)
        h->backoff++;
    double until = tick_ceil(od, view->now_s + fmin(base * h->backoff, max));
    h->until_tick = until > T ? until : T + 1;   /* the tick at now came first */
    mark_moved(od, server);
    od->ejections++;
}

void lb_od_result(lb_od *od, const lb_view *view, int server, lb_result result)
{
    if (!od->cfg.enabled || server < 0 || server >= view->n || server >= od->cap)
        return;
    struct lb_od_host *h = &od->hosts[server];
    host_catch_up(od, server, tick_floor(od, view->now_s));
    if (result == LB_OK) {
        h->consecutive = 0;
        return;
    }
    if (++h->consecutive != od->cfg.consecutive_5xx || h->ejected)
        return;
    try_eject(od, view, server);
    h->consecutive = 0;
}

int lb_od_state(const lb_od *od, int server, double now_s, lb_outlier_host *out)
{
    if (!od->cfg.enabled || server < 0 || server >= od->cap || !out)
        return -1;
    struct lb_od_host c = od->hosts[server];
    catch_up(&c, tick_floor(od, now_s));
    *out = (lb_outlier_host){ .ejected = c.ejected,
                              .ejected_at_s = c.ejected_at_s,
                              .until_s = c.until_tick * od->cfg.interval_s,
                              .num_ejections = c.num_ejections,
                              .consecutive_5xx = c.consecutive,
                              .backoff = c.backoff };
    return 0;
}
