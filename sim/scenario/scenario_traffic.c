/*
 * scenario_traffic.c - the `traffic` section of a scenario: a sequence of
 * traffic classes, each with a unique name, the pool it is sent to, its
 * arrivals (poisson, deterministic or gamma at a rate that may change in
 * steps and ramps, or the arrival times of a CSV trace), its work per
 * request and its request and response sizes. Parsed after pools.
 */
#include "scenario.h"
#include "scenario_internal.h"
#include "lb_priority.h"

#include <yaml.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const PROCESS_NAMES[] = {"poisson", "deterministic", "gamma", "trace", NULL};

static void load_trace(sc_loader *L, const yaml_node_t *n, const char *path, sc_traffic *t)
{
    char msg[256];
    const char *rel = sc_want_scalar(L, n, path, "a CSV file path");
    double *v = NULL;
    size_t cnt = 0;

    if (rel == NULL)
        return;
    char *file = sc_resolve(L, n, rel);
    if (file == NULL || sc_read_column(file, &v, &cnt, msg, sizeof msg)) {
        sc_errn(L, n, "%s: trace file \"%s\": %s", path, rel, file ? msg : "out of memory");
        free(file);
        return;
    }
    free(file);
    for (size_t i = 0; i < cnt; i++)
        if (v[i] < 0 || (i > 0 && v[i] < v[i - 1])) {
            sc_errn(L, n, "%s: trace file \"%s\": arrival %zu (%g s) is %s", path, rel, i + 1, v[i],
                    v[i] < 0 ? "negative" : "before the one above it (times must ascend)");
            free(v);
            return;
        }
    t->trace_s = v;
    t->n_trace = cnt;
}

static void load_rate(sc_loader *L, yaml_node_t *n, const char *path, sc_traffic *t)
{
    static const char *const point_keys[] = {"at", "qps", "ramp", NULL};
    char p[SC_PATHLEN], q[SC_PATHLEN], idx[32];

    if (n->type == YAML_SCALAR_NODE) {
        double qps;
        if (sc_want_unit(L, n, path, sc_parse_rate_qps, "rate", "500, 10/s, 30/min", 0, &qps))
            return;
        t->rate = calloc(1, sizeof *t->rate);
        if (t->rate == NULL)
            return;
        t->rate[0].qps = qps;
        t->n_rate = 1;
        return;
    }
    if (n->type != YAML_SEQUENCE_NODE) {
        sc_errn(L, n, "%s: expected a rate (like 500, 10/s) or a sequence of {at, qps, ramp}, got "
                "a mapping", path);
        return;
    }
    long cnt = n->data.sequence.items.top - n->data.sequence.items.start;
    if (cnt == 0) {
        sc_errn(L, n, "%s: at least one rate point is required", path);
        return;
    }
    t->rate = calloc((size_t)cnt, sizeof *t->rate);
    if (t->rate == NULL)
        return;
    t->n_rate = (int)cnt;
    for (long i = 0; i < cnt; i++) {
        yaml_node_t *pt = sc_node(L, n->data.sequence.items.start[i]);
        sc_rate_point *r = &t->rate[i];
        int r2 = snprintf(idx, sizeof idx, "%ld", i);
        (void)r2;
        sc_join(p, path, idx);
        r->at_s = r->qps = r->ramp_s = NAN;
        if (sc_check_map(L, pt, p, point_keys))
            continue;
        sc_kv at = sc_find(L, pt, "at"), qps = sc_find(L, pt, "qps"), ramp = sc_find(L, pt, "ramp");
        if (at.val == NULL)
            sc_errn(L, pt, "%s: missing required key at", p);
        else
            sc_want_dur(L, at.val, sc_join(q, p, "at"), 0, &r->at_s);
        if (qps.val == NULL)
            sc_errn(L, pt, "%s: missing required key qps", p);
        else
            sc_want_unit(L, qps.val, sc_join(q, p, "qps"), sc_parse_rate_qps, "rate",
                         "500, 10/s, 30/min", 0, &r->qps);
        r->ramp_s = 0;
        if (ramp.val)
            sc_want_dur(L, ramp.val, sc_join(q, p, "ramp"), 0, &r->ramp_s);
        if (i > 0 && at.val && !isnan(r->at_s) && !isnan(t->rate[i - 1].at_s)) {
            const sc_rate_point *prev = &t->rate[i - 1];
            if (r->at_s <= prev->at_s)
                sc_errn(L, at.val, "%s: at must be after the previous point's at (%g s), got %g s",
                        sc_join(q, p, "at"), prev->at_s, r->at_s);
            else if (!isnan(prev->ramp_s) && prev->at_s + prev->ramp_s > r->at_s)
                sc_errn(L, at.val, "%s: the previous point's ramp (%g s from %g s) runs past this "
                        "point's at (%g s)", sc_join(q, p, "at"), prev->ramp_s, prev->at_s,
                        r->at_s);
        }
    }
}

/* arrivals.repeat: the rate profile is one period, replayed every period
 * from 0, so every point (and its ramp) must fall inside it. */
static void load_repeat(sc_loader *L, const yaml_node_t *n, const char *path,
                        const yaml_node_t *rate, sc_traffic *t)
{
    if (sc_want_dur(L, n, path, 1, &t->repeat_s))
        return;
    for (int i = 0; i < t->n_rate; i++) {
        const sc_rate_point *r = &t->rate[i];
        if (isnan(r->at_s) || isnan(r->ramp_s))
            continue;
        const yaml_node_t *at = rate && rate->type == YAML_SEQUENCE_NODE
                                    ? sc_node(L, rate->data.sequence.items.start[i]) : n;
        if (r->at_s >= t->repeat_s)
            sc_errn(L, at, "%s: rate point %d is at %g s, not inside the repeat period (%g s): "
                    "a repeating profile describes one period from 0", path, i, r->at_s,
                    t->repeat_s);
        else if (r->at_s + r->ramp_s > t->repeat_s)
            sc_errn(L, at, "%s: rate point %d's ramp (%g s from %g s) runs past the repeat "
                    "period (%g s)", path, i, r->ramp_s, r->at_s, t->repeat_s);
    }
}

static void load_arrivals(sc_loader *L, yaml_node_t *n, const char *path, sc_traffic *t)
{
    static const char *const keys[] = {"process", "cv", "rate", "trace", "repeat", NULL};
    char p[SC_PATHLEN];
    int process = SC_ARR_POISSON;

    if (sc_check_map(L, n, path, keys))
        return;
    sc_kv proc = sc_find(L, n, "process"), cv = sc_find(L, n, "cv"), rate = sc_find(L, n, "rate");
    sc_kv trace = sc_find(L, n, "trace"), repeat = sc_find(L, n, "repeat");
    if (proc.val && sc_want_enum(L, proc.val, sc_join(p, path, "process"), PROCESS_NAMES, &process))
        return;
    t->process = (sc_arrival_kind)process;
    if (process == SC_ARR_GAMMA) {
        if (cv.val)
            sc_want_num(L, cv.val, sc_join(p, path, "cv"), 0, 1, INFINITY, 0, &t->cv);
        else
            sc_errn(L, proc.val, "%s: process gamma needs cv (a number > 0)", path);
    } else if (cv.key) {
        sc_errn(L, cv.key, "%s: cv only applies to process gamma (this one is %s)", path,
                PROCESS_NAMES[process]);
    }
    if (process == SC_ARR_TRACE) {
        if (rate.key)
            sc_errn(L, rate.key, "%s: rate does not apply to process trace (the trace gives the "
                    "arrival times)", path);
        if (repeat.key)
            sc_errn(L, repeat.key, "%s: repeat applies to a rate profile, not to process trace",
                    path);
        if (trace.val)
            load_trace(L, trace.val, sc_join(p, path, "trace"), t);
        else
            sc_errn(L, proc.val, "%s: process trace needs trace (a CSV file)", path);
        return;
    }
    if (trace.key)
        sc_errn(L, trace.key, "%s: trace only applies to process trace (this one is %s)", path,
                PROCESS_NAMES[process]);
    if (rate.val)
        load_rate(L, rate.val, sc_join(p, path, "rate"), t);
    else
        sc_errn(L, n, "%s: missing required key rate", path);
    if (repeat.val)
        load_repeat(L, repeat.val, sc_join(p, path, "repeat"), rate.val, t);
}

typedef struct {
    double t_s;
    size_t row;
} arrival;

static int by_time(const void *a, const void *b)
{
    const arrival *x = a, *y = b;
    if (x->t_s != y->t_s)
        return x->t_s < y->t_s ? -1 : 1;
    return x->row < y->row ? -1 : x->row > y->row;
}

/* A token trace's arrivals, from its first at 0, divided by speedup; with
 * copies N the trace is replayed N times at once, copy k shifted by k/N of
 * its span (wrapped round), so the rate is N times the trace's with its
 * token counts and its daily shape kept. */
static void load_token_arrivals(sc_traffic *t)
{
    const tok_trace *tr = t->tokens_trace;
    size_t n = tr->n, copies = (size_t)t->trace_copies;
    double t0 = n ? tr->req[0].t_s : 0, span = n ? tr->req[n - 1].t_s - t0 : 0;
    arrival *a = malloc(sizeof *a * (n * copies > 0 ? n * copies : 1));
    for (size_t k = 0; k < copies; k++)
        for (size_t i = 0; i < n; i++) {
            double at = tr->req[i].t_s - t0;
            if (k > 0 && span > 0)
                at = fmod(at + span * (double)k / (double)copies, span);
            a[k * n + i] = (arrival){ at / t->trace_speedup, i };
        }
    if (copies > 1)
        qsort(a, n * copies, sizeof *a, by_time);
    t->n_trace = n * copies;
    t->trace_s = malloc(sizeof *t->trace_s * (t->n_trace ? t->n_trace : 1));
    t->trace_row = copies > 1 ? malloc(sizeof *t->trace_row * t->n_trace) : NULL;
    for (size_t i = 0; i < t->n_trace; i++) {
        t->trace_s[i] = a[i].t_s;
        if (t->trace_row)
            t->trace_row[i] = a[i].row;
    }
    free(a);
}

/* A percentage written with its sign: "50%", "12.5%", in [0, 100]. */
static int want_pct(sc_loader *L, const yaml_node_t *n, const char *path, double *out)
{
    char buf[SC_SHOWLEN];
    const char *s = sc_want_scalar(L, n, path, "a percentage (50%)");
    if (!s)
        return -1;
    char *end;
    double v = strtod(s, &end);
    if (end == s || *end != '%' || end[1] != '\0' || !(v >= 0 && v <= 100)) {
        sc_errn(L, n, "%s: expected a percentage from 0%% to 100%%, got %s", path, sc_show(n, buf));
        return -1;
    }
    *out = v;
    return 0;
}

/* traffic.<c>.failover: none, or {pools: [{pool, priority, weight,
 * wan_latency}], overprovisioning_factor, panic_threshold, overflow:
 * {queue, max_conns}}. The class's own pool must be at priority 0; the
 * priorities used must be 0, 1, ... without a gap. */
static void load_failover(sc_loader *L, yaml_node_t *n, const char *path, sc_scenario *sc,
                          sc_traffic *t)
{
    static const char *const keys[] = {"pools", "overprovisioning_factor", "panic_threshold",
                                       "overflow", NULL};
    static const char *const item_keys[] = {"pool", "priority", "weight", "wan_latency", NULL};
    static const char *const overflow_keys[] = {"queue", "max_conns", NULL};
    static const char *const bools[] = {"false", "true", NULL};
    char p[SC_PATHLEN], q[SC_PATHLEN], buf[SC_SHOWLEN];
    if (n->type == YAML_SCALAR_NODE && strcmp((const char *)n->data.scalar.value, "none") == 0)
        return;
    if (n->type != YAML_MAPPING_NODE) {
        sc_errn(L, n, "%s: expected none or a mapping (pools, overprovisioning_factor, "
                "panic_threshold, overflow), got %s", path, sc_show(n, buf));
        return;
    }
    if (sc_check_map(L, n, path, keys))
        return;
    t->failover_factor_pct = LB_PRIORITY_FACTOR_PCT;
    t->failover_panic_pct = LB_PRIORITY_PANIC_PCT;
    sc_kv pools = sc_find(L, n, "pools"), factor = sc_find(L, n, "overprovisioning_factor");
    sc_kv panic = sc_find(L, n, "panic_threshold"), over = sc_find(L, n, "overflow");
    if (factor.val) {
        double f = 1.4;
        if (sc_want_num(L, factor.val, sc_join(p, path, "overprovisioning_factor"), 1, 0, 100, 0,
                        &f) == 0)
            t->failover_factor_pct = (int)lround(f * 100);
    }
    if (panic.val) {
        double v = LB_PRIORITY_PANIC_PCT;
        if (want_pct(L, panic.val, sc_join(p, path, "panic_threshold"), &v) == 0)
            t->failover_panic_pct = (int)lround(v);
    }
    if (over.val && sc_check_map(L, over.val, sc_join(p, path, "overflow"), overflow_keys) == 0) {
        sc_kv qu = sc_find(L, over.val, "queue"), mc = sc_find(L, over.val, "max_conns");
        if (qu.val)
            sc_want_intv(L, qu.val, sc_join(q, p, "queue"), 1, &t->overflow_queue);
        if (mc.val)
            sc_want_enum(L, mc.val, sc_join(q, p, "max_conns"), bools, &t->overflow_max_conns);
        if (!qu.val && !mc.val)
            sc_errn(L, over.val, "%s: give queue, max_conns or both", p);
    }
    if (!pools.val || pools.val->type != YAML_SEQUENCE_NODE ||
        pools.val->data.sequence.items.top - pools.val->data.sequence.items.start < 2) {
        sc_errn(L, pools.val ? pools.val : n, "%s: pools must be a sequence of at least two "
                "pools ({pool, priority})", path);
        return;
    }
    int cnt = (int)(pools.val->data.sequence.items.top - pools.val->data.sequence.items.start);
    t->failover = calloc((size_t)cnt, sizeof *t->failover);
    int own = 0, max_prio = 0;
    for (int i = 0; i < cnt; i++) {
        yaml_node_t *it = sc_node(L, pools.val->data.sequence.items.start[i]);
        snprintf(p, sizeof p, "%s.pools.%d", path, i);
        sc_failover *f = &t->failover[t->n_failover];
        *f = (sc_failover){ .pool = -1, .weight = 1 };
        if (sc_check_map(L, it, p, item_keys))
            continue;
        sc_kv pool = sc_find(L, it, "pool"), prio = sc_find(L, it, "priority");
        sc_kv w = sc_find(L, it, "weight"), wan = sc_find(L, it, "wan_latency");
        if (!pool.val || !prio.val) {
            sc_errn(L, it, "%s: needs pool and priority", p);
            continue;
        }
        f->pool = sc_want_pool_ref(L, pool.val, sc_join(q, p, "pool"), sc);
        sc_want_intv(L, prio.val, sc_join(q, p, "priority"), 0, &f->priority);
        if (w.val) {
            sc_want_num(L, w.val, sc_join(q, p, "weight"), 0, 1, INFINITY, 0, &f->weight);
            t->failover_locality_weights = 1;
        }
        if (wan.val)
            sc_want_dur(L, wan.val, sc_join(q, p, "wan_latency"), 0, &f->wan_latency_s);
        if (f->pool < 0)
            continue;
        for (int j = 0; j < t->n_failover; j++)
            if (t->failover[j].pool == f->pool) {
                sc_errn(L, pool.val, "%s: pool %s is listed twice", p, sc->pools[f->pool].name);
                f->pool = -1;
            }
        if (f->pool < 0)
            continue;
        const sc_pool *a = &sc->pools[f->pool], *b = t->pool >= 0 ? &sc->pools[t->pool] : NULL;
        int llm_a = a->model >= 0 && sc->models[a->model].llm;
        int llm_b = b && b->model >= 0 && sc->models[b->model].llm;
        if (b && llm_a != llm_b)
            sc_errn(L, pool.val, "%s: pool %s serves %s model, pool %s %s one", p, a->name,
                    llm_a ? "an LLM" : "a batch", b->name, llm_b ? "an LLM" : "a batch");
        if (f->pool == t->pool) {
            own = 1;
            if (f->priority != 0)
                sc_errn(L, prio.val, "%s: the class's own pool %s is its first choice: priority 0",
                        p, a->name);
        }
        if (f->priority > max_prio)
            max_prio = f->priority;
        t->n_failover++;
    }
    if (t->pool >= 0 && !own)
        sc_errn(L, pools.val, "%s.pools: the class's pool %s must be listed, at priority 0", path,
                sc->pools[t->pool].name);
    for (int k = 0; k <= max_prio; k++) {
        int seen = 0;
        for (int j = 0; j < t->n_failover; j++)
            seen |= t->failover[j].priority == k;
        if (!seen) {
            sc_errn(L, pools.val, "%s.pools: no pool at priority %d (priorities go 0, 1, ... "
                    "without a gap)", path, k);
            break;
        }
    }
    t->n_levels = max_prio + 1;
    sc->hybrid = 1;
}

static void load_one_traffic(sc_loader *L, yaml_node_t *n, const char *path, sc_scenario *sc,
                             sc_traffic *t)
{
    static const char *const keys[] = {"name", "pool", "pipeline", "path", "arrivals", "work",
                                       "size", "response_size", "tokens", "failover", NULL};
    char p[SC_PATHLEN];

    t->pool = -1;
    t->pipeline = -1;
    t->work = 1;
    t->bytes_in = 4000;
    t->bytes_out = 1000;
    if (sc_check_map(L, n, path, keys))
        return;
    sc_kv pool = sc_find(L, n, "pool"), arr = sc_find(L, n, "arrivals");
    sc_kv pipe = sc_find(L, n, "pipeline"), upath = sc_find(L, n, "path");
    sc_kv work = sc_find(L, n, "work");
    sc_kv size = sc_find(L, n, "size"), rsize = sc_find(L, n, "response_size");
    /* where it goes: a pool, a pipeline, or a path the routes resolve */
    if ((pool.val != NULL) + (pipe.val != NULL) + (upath.val != NULL) != 1) {
        sc_errn(L, n, "%s: needs exactly one of pool, pipeline, path", path);
    } else if (pool.val) {
        t->pool = sc_want_pool_ref(L, pool.val, sc_join(p, path, "pool"), sc);
        if (t->pool >= 0)
            t->pipeline = sc_pool_pipeline(sc, t->pool);
    } else if (pipe.val) {
        t->pipeline = sc_want_target(L, pipe.val, sc_join(p, path, "pipeline"), sc);
    } else if (sc_want_str(L, upath.val, sc_join(p, path, "path"), 1, &t->path) == 0) {
        char buf[SC_SHOWLEN];
        if (t->path[0] != '/')
            sc_errn(L, upath.val, "%s: a path starts with /, got %s", p, sc_show(upath.val, buf));
        else if ((t->pipeline = sc_route_path(sc, t->path)) == SC_ROUTE_UNPROXIED)
            sc_errn(L, upath.val, "%s: the route of %s answers without proxy_pass (nginx "
                    "return or static files), which is not modelled", p, sc_show(upath.val, buf));
        else if (t->pipeline < 0)
            sc_errn(L, upath.val, "%s: no route matches %s (routes: %d)", p,
                    sc_show(upath.val, buf), sc->n_routes);
    }
    if (t->pipeline >= 0 && sc->pipelines[t->pipeline].n_stages > 0 &&
        sc->pipelines[t->pipeline].stages[0].kind == SC_STAGE_POOL)
        t->pool = sc->pipelines[t->pipeline].stages[0].ref;
    else /* none, or a broken pipeline: already reported */
        t->pipeline = -1;
    /* disaggregated pools: a request enters at the prefill pool and the
     * prefill pool hands it to its decode pool; neither is a pipeline stage */
    if (t->pipeline >= 0) {
        const sc_pipeline *pl = &sc->pipelines[t->pipeline];
        yaml_node_t *at = pool.val ? pool.val : pipe.val ? pipe.val : upath.val;
        for (int k = 0; k < pl->n_stages; k++) {
            if (pl->stages[k].kind != SC_STAGE_POOL || pl->stages[k].ref < 0 ||
                pl->stages[k].ref >= sc->n_pools)
                continue; /* a stage naming no pool: already reported */
            const sc_pool *sp = &sc->pools[pl->stages[k].ref];
            if (sp->role == SC_ROLE_DECODE) {
                sc_errn(L, at, "%s: pool %s has role decode: it takes requests only from its "
                        "prefill pool; send the traffic there", path, sp->name);
                break;
            }
            if (sp->role == SC_ROLE_PREFILL && pl->n_stages > 1) {
                sc_errn(L, at, "%s: pool %s has role prefill: a disaggregated pool is not a "
                        "stage of a pipeline of %d stages (send the traffic to it alone)", path,
                        sp->name, pl->n_stages);
                break;
            }
        }
    }
    sc_kv tok = sc_find(L, n, "tokens");
    int llm = t->pool >= 0 && sc->pools[t->pool].model >= 0 &&
              sc->models[sc->pools[t->pool].model].llm;
    if (tok.val && !llm && t->pool >= 0 && sc->pools[t->pool].model >= 0)
        sc_errn(L, tok.key, "%s: tokens applies to traffic for a pool of an LLM model", path);
    else if (!tok.val && llm)
        sc_errn(L, n, "%s: traffic for an LLM pool needs tokens (input and output, or a trace)",
                path);
    else if (tok.val && sc_load_tokens(L, tok.val, sc_join(p, path, "tokens"), t) == 0)
        sc_tokens_system_hashes(t, (int)(t - sc->traffic));
    if (llm && t->pipeline >= 0 && sc->pipelines[t->pipeline].n_stages != 1)
        sc_errn(L, n, "%s: an LLM pool serves traffic on its own (pipelines of several stages "
                "are for the batch server)", path);
    if (t->tokens_trace) { /* the trace gives the arrivals */
        if (arr.key)
            sc_errn(L, arr.key, "%s: tokens.trace gives the arrival times: arrivals does not "
                    "apply", path);
        t->process = SC_ARR_TRACE;
        load_token_arrivals(t);
    } else if (arr.val == NULL)
        sc_errn(L, n, "%s: missing required key arrivals", path);
    else
        load_arrivals(L, arr.val, sc_join(p, path, "arrivals"), t);
    if (work.val)
        sc_want_num(L, work.val, sc_join(p, path, "work"), 0, 1, INFINITY, 0, &t->work);
    if (size.val)
        sc_want_unit(L, size.val, sc_join(p, path, "size"), sc_parse_bytes, "size",
                     "512B, 4KB, 1MiB", 0, &t->bytes_in);
    if (rsize.val)
        sc_want_unit(L, rsize.val, sc_join(p, path, "response_size"), sc_parse_bytes, "size",
                     "512B, 4KB, 1MiB", 0, &t->bytes_out);
    sc_kv fo = sc_find(L, n, "failover");
    if (fo.val && !pool.val)
        sc_errn(L, fo.key, "%s: failover applies to a class that names its pool (not a pipeline "
                "or a path)", path);
    else if (fo.val)
        load_failover(L, fo.val, sc_join(p, path, "failover"), sc, t);
}

void sc_parse_traffic(sc_loader *L, yaml_node_t *n, sc_scenario *sc)
{
    char p[SC_PATHLEN], buf[SC_SHOWLEN], idx[32];

    if (n->type != YAML_SEQUENCE_NODE) {
        sc_errn(L, n, "traffic: expected a sequence of traffic classes, got %s", sc_show(n, buf));
        return;
    }
    long cnt = n->data.sequence.items.top - n->data.sequence.items.start;
    if (cnt == 0) {
        sc_errn(L, n, "traffic: at least one traffic class is required");
        return;
    }
    sc->traffic = calloc((size_t)cnt, sizeof *sc->traffic);
    if (sc->traffic == NULL)
        return;
    sc->n_traffic = (int)cnt;
    for (long i = 0; i < cnt; i++) {
        yaml_node_t *item = sc_node(L, n->data.sequence.items.start[i]);
        sc_traffic *t = &sc->traffic[i];
        int r = snprintf(idx, sizeof idx, "%ld", i);
        (void)r;
        sc_join(p, "traffic", idx);
        if (item->type == YAML_MAPPING_NODE) {
            sc_kv name = sc_find(L, item, "name");
            char np[SC_PATHLEN];
            if (name.val == NULL) {
                sc_errn(L, item, "%s: missing required key name", p);
            } else if (sc_want_str(L, name.val, sc_join(np, p, "name"), 1, &t->name) == 0) {
                long j = 0;
                while (j < i && !(sc->traffic[j].name && strcmp(sc->traffic[j].name, t->name) == 0))
                    j++;
                if (j < i) /* keep the index path: the name is ambiguous */
                    sc_errn(L, name.val, "%s: duplicate traffic name %s (also item %ld)", p,
                            sc_show(name.val, buf), j);
                else
                    sc_join(p, "traffic", t->name);
            }
        }
        load_one_traffic(L, item, p, sc, t);
    }
}
