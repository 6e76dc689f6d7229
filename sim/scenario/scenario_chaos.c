/*
 * scenario_chaos.c - the `chaos` section (injected faults) and the
 * `hypothesis` section (steady-state checks a chaos run must pass).
 *
 * chaos is a sequence of faults, each {fault: KIND, ...} (the kinds and
 * their names: fault_kinds.h); which keys a kind takes and needs is in the
 * FAULTS table below, so an irrelevant key is an error rather than silently
 * ignored. Targets: `target: pool/index` (one node) or `target: pool` /
 * `pool: name` (every node of a pool), `zone:`. Starts: exactly one of
 * `at`, `after` (a delay from the start of the fault listed before) and
 * `when` (an offered-load condition), except for random_crash and the
 * profiles, whose times come from their MTBF/MTTR or their file.
 */
#include "scenario.h"
#include "scenario_internal.h"

#include <yaml.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { K_AT = 1, K_DUR = 2, K_TARGET = 4, K_ZONE = 8, K_TRAFFIC = 16, K_FACTOR = 32,
       K_LATENCY = 64, K_PROB = 128, K_MTBF = 256, K_STANDBY = 512, K_AFTER = 1024,
       K_WHEN = 2048, K_RETRY = 4096, K_BACKOFF = 8192, K_FILE = 16384, K_CACHE = 32768,
       K_QUEUE = 65536, K_NOTICE = 131072, K_GPUS = 262144 };
/* A fault starts at a time, a delay after the fault before it, or on a
 * condition: exactly one of the three. */
#define K_START (K_AT | K_AFTER | K_WHEN)

/* The names chaos[].fault takes (fault_kinds.h), by kind. */
static const char *const fault_names[] = {
#define FAULT_NAME(kind, name) [kind] = name,
    SC_FAULT_KINDS(FAULT_NAME)
#undef FAULT_NAME
    [SC_N_FAULT_KINDS] = NULL,
};

/* The keys each kind takes and needs. */
static const struct {
    int takes;    /* keys allowed */
    int needs;    /* keys required (K_START: one of at, after, when) */
} FAULTS[SC_N_FAULT_KINDS] = {
    [SC_FAULT_NODE_CRASH] = {K_START | K_DUR | K_TARGET | K_ZONE, K_START},
    [SC_FAULT_RANDOM_CRASH] = {K_TARGET | K_ZONE | K_MTBF, K_MTBF},
    [SC_FAULT_SLOWDOWN] = {K_START | K_DUR | K_TARGET | K_ZONE | K_FACTOR, K_START | K_FACTOR},
    [SC_FAULT_GPU_ERROR] = {K_START | K_DUR | K_TARGET | K_ZONE, K_START},
    [SC_FAULT_NET_LATENCY] = {K_START | K_DUR | K_TARGET | K_ZONE | K_LATENCY,
                              K_START | K_LATENCY},
    [SC_FAULT_PARTITION] = {K_START | K_DUR | K_TARGET | K_ZONE, K_START},
    [SC_FAULT_ERROR_RATE] = {K_START | K_DUR | K_TARGET | K_ZONE | K_PROB, K_START | K_PROB},
    [SC_FAULT_ZONE_OUTAGE] = {K_START | K_DUR | K_ZONE, K_START | K_ZONE},
    [SC_FAULT_LB_FAILURE] = {K_START | K_DUR | K_TARGET | K_STANDBY, K_START},
    /* the rate profile is fixed before the run: no `when` */
    [SC_FAULT_FLASH_CROWD] = {K_AT | K_AFTER | K_DUR | K_TRAFFIC | K_FACTOR, K_START | K_FACTOR},
    [SC_FAULT_BANDWIDTH_CUT] = {K_START | K_DUR | K_TARGET | K_ZONE | K_FACTOR,
                                K_START | K_FACTOR},
    [SC_FAULT_RETRY_STORM] = {K_START | K_DUR | K_TRAFFIC | K_RETRY | K_BACKOFF,
                              K_START | K_RETRY},
    [SC_FAULT_STALE_METRICS] = {K_START | K_DUR | K_TARGET | K_ZONE, K_START},
    /* the times are the file's */
    [SC_FAULT_SPEED_PROFILE] = {K_TARGET | K_ZONE | K_FILE, K_FILE},
    [SC_FAULT_STATE_PROFILE] = {K_TARGET | K_ZONE | K_FILE, K_FILE},
    /* dependencies of a pipeline, by name */
    [SC_FAULT_CACHE_DOWN] = {K_START | K_DUR | K_CACHE, K_START | K_CACHE},
    [SC_FAULT_BROKER_DOWN] = {K_START | K_DUR | K_QUEUE, K_START | K_QUEUE},
    /* capacity of a pool (or a zone's pools) */
    [SC_FAULT_SPOT_RECLAIM] = {K_START | K_DUR | K_TARGET | K_ZONE | K_NOTICE, K_START},
    [SC_FAULT_QUOTA_EXHAUSTED] = {K_START | K_DUR | K_TARGET | K_ZONE, K_START},
    /* GPUs of each node hit */
    [SC_FAULT_GPU_FAILURE] = {K_START | K_DUR | K_TARGET | K_ZONE | K_GPUS, K_START},
    /* a pool's links (or a zone's, or all pools') */
    [SC_FAULT_LINK_DOWN] = {K_START | K_DUR | K_TARGET | K_ZONE, K_START},
};

const char *sc_fault_name(int i)
{
    return i >= 0 && i < SC_N_FAULT_KINDS ? fault_names[i] : NULL;
}

static const struct {
    const char *key;
    int bit;
} KEYS[] = {
    {"at", K_AT},          {"duration", K_DUR},       {"recover_after", K_DUR},
    {"target", K_TARGET},  {"pool", K_TARGET},        {"zone", K_ZONE},
    {"traffic", K_TRAFFIC}, {"factor", K_FACTOR},     {"latency", K_LATENCY},
    {"probability", K_PROB}, {"mtbf", K_MTBF},        {"mttr", K_MTBF},
    {"distribution", K_MTBF}, {"shape", K_MTBF},      {"standby_failover", K_STANDBY},
    {"after", K_AFTER},    {"when", K_WHEN},          {"attempts", K_RETRY},
    {"backoff", K_BACKOFF}, {"multiplier", K_BACKOFF}, {"file", K_FILE},
    {"cache", K_CACHE},    {"queue", K_QUEUE},        {"notice", K_NOTICE},
    {"gpus", K_GPUS},      {"gpu", K_GPUS},
};
#define N_KEYS (sizeof KEYS / sizeof KEYS[0])

/* target: "pool/index" or "pool"; pool: "pool". */
static void want_target(sc_loader *L, const yaml_node_t *n, const char *path,
                        const sc_scenario *sc, sc_fault *f, int node_ok)
{
    char buf[SC_SHOWLEN], list[SC_LISTLEN];
    const char *s = sc_want_scalar(L, n, path, "a target (pool or pool/index)");
    if (!s)
        return;
    char name[256];
    snprintf(name, sizeof name, "%s", s);
    for (int i = 0; f->kind == SC_FAULT_LB_FAILURE && i < sc->lb.n_l7; i++)
        if (!strcmp(sc->lb.l7[i].name, name)) { /* one L7 balancer of a two-tier front end */
            f->l7 = i;
            return;
        }
    char *slash = strrchr(name, '/');
    long idx = -1;
    if (slash && node_ok) {
        char *end;
        idx = strtol(slash + 1, &end, 10);
        if (*end || end == slash + 1 || idx < 0) {
            sc_errn(L, n, "%s: expected pool or pool/index, got %s", path, sc_show(n, buf));
            return;
        }
        *slash = '\0';
    }
    int p = sc_find_pool(sc, name);
    if (p < 0) {
        sc_pool_list(sc, list, sizeof list);
        if (f->kind == SC_FAULT_LB_FAILURE && sc->lb.n_l7 > 0) {
            char l7s[SC_LISTLEN] = "";
            for (int i = 0; i < sc->lb.n_l7; i++)
                sc_list_add(l7s, sizeof l7s, sc->lb.l7[i].name);
            sc_errn(L, n, "%s: unknown pool or L7 balancer \"%s\" (pools: %s; L7 balancers: %s)",
                    path, name, *list ? list : "none", l7s);
        } else {
            sc_errn(L, n, "%s: unknown pool \"%s\" (pools: %s)", path, name, *list ? list : "none");
        }
        return;
    }
    if (idx >= 0 && idx >= sc->pools[p].max_replicas) {
        sc_errn(L, n, "%s: %s has nodes 0..%d, got %ld", path, name, sc->pools[p].max_replicas - 1,
                idx);
        return;
    }
    f->pool = p;
    f->node = (int)idx;
}

static int zone_exists(const sc_scenario *sc, const char *z)
{
    for (int i = 0; i < sc->n_pools; i++) {
        const char *pz = sc->pools[i].zone ? sc->pools[i].zone : sc->pools[i].name;
        if (!strcmp(pz, z))
            return 1;
    }
    return 0;
}

/* `after: D`: D after the start of the fault listed just before this one.
 * When that start is fixed (at, or after one that is), so is this one's
 * (into at_s); when it depends on a condition, this one waits for it at run
 * time (after_prev). `when: {offered_qps_above: X, window: W}`. */
static void load_start(sc_loader *L, yaml_node_t *n, const char *path, const sc_scenario *sc,
                       sc_fault *f)
{
    static const char *const when_keys[] = {"offered_qps_above", "window", NULL};
    char p[SC_PATHLEN], q[SC_PATHLEN], buf[SC_SHOWLEN];
    sc_kv after = sc_find(L, n, "after"), when = sc_find(L, n, "when");
    int i = (int)(f - sc->faults);
    if (after.val && sc_want_dur(L, after.val, sc_join(p, path, "after"), 0, &f->after_s) == 0) {
        const sc_fault *prev = i > 0 ? &sc->faults[i - 1] : NULL;
        if (!prev)
            sc_errn(L, after.key, "%s: no fault before this one to be after", p);
        else if (prev->kind == SC_FAULT_RANDOM_CRASH)
            sc_errn(L, after.key, "%s: the fault before (random_crash) has no start to be after", p);
        else if (prev->when_qps > 0 || prev->after_prev >= 0) {
            if (f->kind == SC_FAULT_FLASH_CROWD)
                sc_errn(L, after.key, "%s: flash_crowd needs a start known before the run; the "
                        "fault before starts on a condition", p);
            f->after_prev = i - 1;
        } else {
            f->at_s = prev->at_s + f->after_s;
            if (sc->duration_s > 0 && f->at_s >= sc->duration_s)
                sc_errn(L, after.val, "%s: starts at %g s, not before the end of the run (%g s)", p,
                        f->at_s, sc->duration_s);
        }
    }
    if (!when.val)
        return;
    sc_join(p, path, "when");
    if (sc_check_map(L, when.val, p, when_keys))
        return;
    sc_kv qps = sc_find(L, when.val, "offered_qps_above"), win = sc_find(L, when.val, "window");
    if (!qps.val) {
        sc_errn(L, when.val, "%s: missing required key offered_qps_above, got %s", p,
                sc_show(when.val, buf));
        return;
    }
    sc_want_unit(L, qps.val, sc_join(q, p, "offered_qps_above"), sc_parse_rate_qps, "a rate",
                 "50, 50qps, 3000/min", 1, &f->when_qps);
    f->when_window_s = 10;
    if (win.val)
        sc_want_dur(L, win.val, sc_join(q, p, "window"), 1, &f->when_window_s);
}

static void load_retries(sc_loader *L, yaml_node_t *n, const char *path, sc_fault *f)
{
    char p[SC_PATHLEN];
    sc_kv att = sc_find(L, n, "attempts"), bo = sc_find(L, n, "backoff");
    sc_kv mul = sc_find(L, n, "multiplier");
    long long a = 0;
    if (att.val && sc_want_int(L, att.val, sc_join(p, path, "attempts"), 1, 100, &a) == 0)
        f->retry_attempts = (int)a;
    if (bo.val)
        sc_want_dur(L, bo.val, sc_join(p, path, "backoff"), 1, &f->retry_backoff_s);
    if (mul.val)
        sc_want_num(L, mul.val, sc_join(p, path, "multiplier"), 1, 0, 100, 0, &f->retry_multiplier);
}

/* A SimGrid profile (trace) file: lines `TIME VALUE` with TIME ascending
 * from 0, blank lines and `#` comments skipped, and optionally
 * `LOOPAFTER D`: after the last point, wait D and start over. Speed values
 * are in (0, 1] (shares of full speed), states 0 (off) or 1 (on). */
static void load_profile(sc_loader *L, yaml_node_t *n, const char *path, sc_fault *f)
{
    char p[SC_PATHLEN];
    sc_kv file = sc_find(L, n, "file");
    if (!file.val)
        return;
    sc_join(p, path, "file");
    const char *rel = sc_want_scalar(L, file.val, p, "a profile file path");
    if (!rel)
        return;
    f->file = sc_resolve(L, file.val, rel);
    FILE *in = f->file ? fopen(f->file, "r") : NULL;
    if (!in) {
        sc_errn(L, file.val, "%s: cannot read profile \"%s\"", p, rel);
        return;
    }
    char *line = NULL; /* getline: a long comment is one line, so numbers stay right */
    size_t line_cap = 0;
    int ln = 0, cap = 0, state = f->kind == SC_FAULT_STATE_PROFILE;
    while (getline(&line, &line_cap, in) != -1) {
        ln++;
        char *s = line + strspn(line, " \t\r\n");
        if (!*s || *s == '#')
            continue;
        double t, v;
        char extra;
        if (!strncmp(s, "LOOPAFTER", 9)) {
            if (sscanf(s + 9, "%lf %c", &t, &extra) != 1 || !(t >= 0)) {
                sc_errn(L, file.val, "%s: %s:%d: LOOPAFTER needs a delay >= 0", p, rel, ln);
                break;
            }
            f->prof_loop_s = t > 0 ? t : 1e-9;
            continue;
        }
        if (sscanf(s, "%lf %lf %c", &t, &v, &extra) != 2 || !(t >= 0) ||
            (f->n_prof > 0 && !(t > f->prof_t[f->n_prof - 1]))) {
            sc_errn(L, file.val, "%s: %s:%d: expected `TIME VALUE` with TIME ascending from 0", p,
                    rel, ln);
            break;
        }
        if (state ? !(v == 0 || v == 1) : !(v > 0 && v <= 1)) {
            sc_errn(L, file.val, "%s: %s:%d: %s, got %g", p, rel, ln,
                    state ? "a state is 0 (off) or 1 (on)" : "a speed share is in (0, 1]", v);
            break;
        }
        if (f->n_prof == cap) {
            cap = cap ? 2 * cap : 16;
            f->prof_t = realloc(f->prof_t, sizeof *f->prof_t * (size_t)cap);
            f->prof_v = realloc(f->prof_v, sizeof *f->prof_v * (size_t)cap);
        }
        f->prof_t[f->n_prof] = t;
        f->prof_v[f->n_prof++] = v;
    }
    free(line);
    fclose(in);
    if (f->n_prof == 0)
        sc_errn(L, file.val, "%s: %s has no `TIME VALUE` line", p, rel);
}

/* gpu_failure: `gpus` (1) GPUs from index `gpu` (0) of each node hit, all
 * within the smallest node of the pools hit. */
static void load_gpus(sc_loader *L, yaml_node_t *n, const char *path, const sc_scenario *sc,
                      sc_fault *f)
{
    char p[SC_PATHLEN];
    sc_kv gpus = sc_find(L, n, "gpus"), gpu = sc_find(L, n, "gpu");
    long long v;
    f->gpus = 1;
    f->gpu = 0;
    if (gpus.val && sc_want_int(L, gpus.val, sc_join(p, path, "gpus"), 1, 1 << 20, &v) == 0)
        f->gpus = (int)v;
    if (gpu.val && sc_want_int(L, gpu.val, sc_join(p, path, "gpu"), 0, 1 << 20, &v) == 0)
        f->gpu = (int)v;
    if (!f->zone && f->pool < 0 && !sc_find(L, n, "target").val && !sc_find(L, n, "pool").val) {
        sc_errn(L, n, "%s: gpu_failure needs target (pool/index or pool) or zone", path);
        return;
    }
    int least = 0;
    for (int i = 0; i < sc->n_pools; i++) {
        const sc_pool *pl = &sc->pools[i];
        int hit = f->zone ? !strcmp(f->zone, pl->zone ? pl->zone : pl->name) : f->pool == i;
        if (hit && (least == 0 || pl->gpus_per_node < least))
            least = pl->gpus_per_node;
    }
    if (least > 0 && f->gpu + f->gpus > least)
        sc_errn(L, gpus.val ? gpus.val : gpu.val ? gpu.val : n,
                "%s: GPUs %d..%d are not all on a node of %d GPUs", path, f->gpu,
                f->gpu + f->gpus - 1, least);
}

static void load_fault(sc_loader *L, yaml_node_t *n, const char *path, const sc_scenario *sc,
                       sc_fault *f)
{
    static const char *keys[N_KEYS + 2];
    char p[SC_PATHLEN], buf[SC_SHOWLEN];
    if (!keys[0]) {
        keys[0] = "fault";
        for (size_t i = 0; i < N_KEYS; i++)
            keys[i + 1] = KEYS[i].key;
    }
    f->pool = -1;
    f->node = -1;
    f->dep = -1;
    f->l7 = -1;
    f->traffic = -1;
    f->factor = 1;
    f->after_prev = -1;
    f->retry_backoff_s = 1;
    f->retry_multiplier = 2;
    if (sc_check_map(L, n, path, keys))
        return;
    sc_kv kind = sc_find(L, n, "fault");
    int k = -1;
    if (!kind.val) {
        char list[SC_LISTLEN] = "";
        for (int i = 0; i < SC_N_FAULT_KINDS; i++)
            sc_list_add(list, sizeof list, fault_names[i]);
        sc_errn(L, n, "%s: missing required key fault (one of %s)", path, list);
        return;
    }
    if (sc_want_enum(L, kind.val, sc_join(p, path, "fault"), fault_names, &k))
        return;
    f->kind = (sc_fault_kind)k;
    int have = 0;
    for (size_t i = 0; i < N_KEYS; i++) {
        sc_kv kv = sc_find(L, n, KEYS[i].key);
        if (!kv.val)
            continue;
        have |= KEYS[i].bit;
        if (!(FAULTS[k].takes & KEYS[i].bit))
            sc_errn(L, kv.key, "%s: %s does not take %s", sc_join(p, path, KEYS[i].key),
                    fault_names[k], KEYS[i].key);
    }
    int starts = !!(have & K_AT) + !!(have & K_AFTER) + !!(have & K_WHEN);
    if ((FAULTS[k].needs & K_START) && starts == 0)
        sc_errn(L, n, "%s: %s needs %s", path, fault_names[k],
                (FAULTS[k].takes & K_WHEN) ? "at, after or when" : "at or after");
    else if (starts > 1)
        sc_errn(L, n, "%s: give one of at, after, when", path);
    for (size_t i = 0; i < N_KEYS; i++) {
        int bit = KEYS[i].bit;
        if (bit & K_START)
            continue;
        if ((FAULTS[k].needs & bit) && !(have & bit)) {
            sc_errn(L, n, "%s: %s needs %s", path, fault_names[k], KEYS[i].key);
            have |= bit; /* one message per missing key */
        }
    }
    sc_kv at = sc_find(L, n, "at"), dur = sc_find(L, n, "duration");
    sc_kv rec = sc_find(L, n, "recover_after"), target = sc_find(L, n, "target");
    sc_kv pool = sc_find(L, n, "pool"), zone = sc_find(L, n, "zone");
    sc_kv traffic = sc_find(L, n, "traffic"), factor = sc_find(L, n, "factor");
    sc_kv lat = sc_find(L, n, "latency"), prob = sc_find(L, n, "probability");
    sc_kv mtbf = sc_find(L, n, "mtbf"), mttr = sc_find(L, n, "mttr");
    sc_kv dist = sc_find(L, n, "distribution"), shape = sc_find(L, n, "shape");
    sc_kv standby = sc_find(L, n, "standby_failover");
    if (at.val && sc_want_dur(L, at.val, sc_join(p, path, "at"), 0, &f->at_s) == 0 &&
        sc->duration_s > 0 && f->at_s >= sc->duration_s)
        sc_errn(L, at.val, "%s: at %s is not before the end of the run (%g s)", p,
                sc_show(at.val, buf), sc->duration_s);
    if (dur.val && rec.val)
        sc_errn(L, rec.key, "%s: give duration or recover_after, not both", path);
    else if (dur.val || rec.val)
        sc_want_dur(L, dur.val ? dur.val : rec.val,
                    sc_join(p, path, dur.val ? "duration" : "recover_after"), 1, &f->duration_s);
    if (target.val && pool.val)
        sc_errn(L, pool.key, "%s: give target or pool, not both", path);
    else if (target.val)
        want_target(L, target.val, sc_join(p, path, "target"), sc, f, 1);
    else if (pool.val)
        want_target(L, pool.val, sc_join(p, path, "pool"), sc, f, 0);
    if (zone.val && sc_want_str(L, zone.val, sc_join(p, path, "zone"), 1, &f->zone) == 0 &&
        !zone_exists(sc, f->zone))
        sc_errn(L, zone.val, "%s: no pool is in zone \"%s\" (a pool's zone defaults to its name)",
                p, f->zone);
    if (zone.val && (target.val || pool.val))
        sc_errn(L, zone.key, "%s: give a zone or a target, not both", path);
    if (f->kind == SC_FAULT_NODE_CRASH && !target.val && !pool.val && !zone.val)
        sc_errn(L, n, "%s: node_crash needs target (pool/index or pool) or zone", path);
    sc_kv cache = sc_find(L, n, "cache"), queue = sc_find(L, n, "queue");
    if (cache.val || queue.val) {
        const yaml_node_t *v = cache.val ? cache.val : queue.val;
        const char *what = cache.val ? "cache" : "queue";
        const char *s = sc_want_scalar(L, v, sc_join(p, path, what), "a name from pipelines");
        int cnt = cache.val ? sc->n_caches : sc->n_queues;
        for (int i = 0; s && i < cnt; i++)
            if (!strcmp(cache.val ? sc->caches[i].name : sc->queues[i].name, s))
                f->dep = i;
        if (s && f->dep < 0) {
            char list[SC_LISTLEN] = "";
            for (int i = 0; i < cnt; i++)
                sc_list_add(list, sizeof list, cache.val ? sc->caches[i].name : sc->queues[i].name);
            sc_errn(L, v, "%s: unknown %s %s (%ss: %s)", p, what, sc_show(v, buf), what,
                    *list ? list : "none");
        }
    }
    if (traffic.val) {
        const char *s = sc_want_scalar(L, traffic.val, sc_join(p, path, "traffic"), "a traffic name");
        if (s) {
            for (int i = 0; i < sc->n_traffic; i++)
                if (sc->traffic[i].name && !strcmp(sc->traffic[i].name, s))
                    f->traffic = i;
            if (f->traffic < 0)
                sc_errn(L, traffic.val, "%s: unknown traffic class %s", p, sc_show(traffic.val, buf));
        }
    }
    if (factor.val) {
        char *end = NULL;
        const char *text = factor.val->type == YAML_SCALAR_NODE
                               ? (const char *)factor.val->data.scalar.value
                               : NULL;
        if (f->kind == SC_FAULT_BANDWIDTH_CUT && text && *text && strtod(text, &end) == 0 &&
            !*end) /* no bandwidth at all is a link that is off */
            sc_errn(L, factor.val,
                    "%s: a bandwidth_cut's factor is in (0, 1]; for links that are off use "
                    "fault: link_down", sc_join(p, path, "factor"));
        else if (f->kind == SC_FAULT_SLOWDOWN || f->kind == SC_FAULT_BANDWIDTH_CUT)
            sc_want_num(L, factor.val, sc_join(p, path, "factor"), 0, 1, 1, 0, &f->factor);
        else
            sc_want_num(L, factor.val, sc_join(p, path, "factor"), 0, 0, 1e6, 0, &f->factor);
    }
    if (lat.val)
        sc_want_dur(L, lat.val, sc_join(p, path, "latency"), 1, &f->factor);
    if (prob.val)
        sc_want_num(L, prob.val, sc_join(p, path, "probability"), 0, 0, 1, 0, &f->factor);
    if (mtbf.val)
        sc_want_dur(L, mtbf.val, sc_join(p, path, "mtbf"), 1, &f->mtbf_s);
    if (f->kind == SC_FAULT_RANDOM_CRASH && !mttr.val)
        sc_errn(L, n, "%s: random_crash needs mttr", path);
    if (mttr.val)
        sc_want_dur(L, mttr.val, sc_join(p, path, "mttr"), 1, &f->mttr_s);
    f->ttf.kind = f->ttr.kind = SC_DIST_EXPONENTIAL;
    if (dist.val) {
        static const char *const d[] = {"exponential", "weibull", NULL};
        int di = 0;
        if (sc_want_enum(L, dist.val, sc_join(p, path, "distribution"), d, &di) == 0 && di == 1)
            f->ttf.kind = SC_DIST_WEIBULL;
    }
    if (f->ttf.kind == SC_DIST_WEIBULL && !shape.val)
        sc_errn(L, n, "%s: weibull needs shape", path);
    if (shape.val && f->ttf.kind != SC_DIST_WEIBULL)
        sc_errn(L, shape.key, "%s: shape applies to distribution: weibull", path);
    else if (shape.val)
        sc_want_num(L, shape.val, sc_join(p, path, "shape"), 0, 1, 100, 0, &f->ttf.shape);
    if (standby.val)
        sc_want_dur(L, standby.val, sc_join(p, path, "standby_failover"), 1, &f->standby_failover_s);
    sc_kv notice = sc_find(L, n, "notice");
    if (f->kind == SC_FAULT_SPOT_RECLAIM)
        f->notice_s = 120; /* EC2's two-minute spot interruption notice */
    if (notice.val)
        sc_want_dur(L, notice.val, sc_join(p, path, "notice"), 0, &f->notice_s);
    if ((f->kind == SC_FAULT_SPOT_RECLAIM || f->kind == SC_FAULT_QUOTA_EXHAUSTED) &&
        !target.val && !pool.val && !zone.val)
        sc_errn(L, n, "%s: %s needs target (pool/index or pool) or zone", path, fault_names[k]);
    if (f->kind == SC_FAULT_QUOTA_EXHAUSTED && f->node >= 0)
        sc_errn(L, target.val, "%s: quota_exhausted applies to a pool, not a node", path);
    if (f->kind == SC_FAULT_LINK_DOWN && f->node >= 0)
        sc_errn(L, target.val, "%s: link_down takes a pool's links, not one node's", path);
    if (f->kind == SC_FAULT_GPU_FAILURE)
        load_gpus(L, n, path, sc, f);
    load_start(L, n, path, sc, f);
    load_retries(L, n, path, f);
    load_profile(L, n, path, f);
    char label[256];
    if (f->kind == SC_FAULT_SPEED_PROFILE || f->kind == SC_FAULT_STATE_PROFILE)
        snprintf(label, sizeof label, "%s %s", fault_names[k],
                 f->file ? (strrchr(f->file, '/') ? strrchr(f->file, '/') + 1 : f->file) : "");
    else if (f->when_qps > 0)
        snprintf(label, sizeof label, "%s when offered > %g qps", fault_names[k], f->when_qps);
    else if (f->after_prev >= 0)
        snprintf(label, sizeof label, "%s %gs after chaos.%d", fault_names[k], f->after_s,
                 f->after_prev);
    else
        snprintf(label, sizeof label, "%s at %gs", fault_names[k], f->at_s);
    f->label = strdup(label);
}

void sc_parse_chaos(sc_loader *L, yaml_node_t *n, sc_scenario *sc)
{
    char p[SC_PATHLEN], buf[SC_SHOWLEN];
    if (n->type != YAML_SEQUENCE_NODE) {
        sc_errn(L, n, "chaos: expected a sequence of faults, got %s", sc_show(n, buf));
        return;
    }
    int cnt = (int)(n->data.sequence.items.top - n->data.sequence.items.start);
    sc->faults = calloc((size_t)cnt + 1, sizeof *sc->faults);
    for (int i = 0; i < cnt; i++) {
        snprintf(p, sizeof p, "chaos.%d", i);
        load_fault(L, sc_node(L, n->data.sequence.items.start[i]), p, sc, &sc->faults[i]);
        sc->n_faults++;
    }
}

static void load_hypothesis(sc_loader *L, yaml_node_t *n, const char *path, sc_hypothesis *h)
{
    static const char *const keys[] = {"metric", "min", "max", "window", "grace", NULL};
    static const char *const metrics[] = {"availability", "latency_p99", "error_rate", NULL};
    static const char *const windows[] = {"steady", "run", "peak", NULL};
    char p[SC_PATHLEN], text[256];
    if (sc_check_map(L, n, path, keys))
        return;
    sc_kv metric = sc_find(L, n, "metric"), mn = sc_find(L, n, "min"), mx = sc_find(L, n, "max");
    sc_kv win = sc_find(L, n, "window"), grace = sc_find(L, n, "grace");
    int m = 0, w = 0;
    if (!metric.val) {
        sc_errn(L, n, "%s: missing required key metric (availability, latency_p99, error_rate)", path);
        return;
    }
    if (sc_want_enum(L, metric.val, sc_join(p, path, "metric"), metrics, &m))
        return;
    h->metric = (sc_hyp_metric)m;
    if (win.val && sc_want_enum(L, win.val, sc_join(p, path, "window"), windows, &w) == 0)
        h->window = (sc_hyp_window)w;
    if (grace.val)
        sc_want_dur(L, grace.val, sc_join(p, path, "grace"), 0, &h->grace_s);
    if (h->metric == SC_HYP_AVAILABILITY) {
        if (mx.val)
            sc_errn(L, mx.key, "%s: availability takes min", path);
        else if (!mn.val)
            sc_errn(L, n, "%s: availability needs min", path);
        else
            sc_want_num(L, mn.val, sc_join(p, path, "min"), 0, 0, 1, 0, &h->bound);
        snprintf(text, sizeof text, "availability >= %g", h->bound);
    } else {
        if (mn.val)
            sc_errn(L, mn.key, "%s: %s takes max", path, metrics[m]);
        else if (!mx.val)
            sc_errn(L, n, "%s: %s needs max", path, metrics[m]);
        else if (h->metric == SC_HYP_LATENCY_P99)
            sc_want_dur(L, mx.val, sc_join(p, path, "max"), 1, &h->bound);
        else
            sc_want_num(L, mx.val, sc_join(p, path, "max"), 0, 0, 1, 0, &h->bound);
        if (h->metric == SC_HYP_LATENCY_P99)
            snprintf(text, sizeof text, "p99 <= %g ms", h->bound * 1e3);
        else
            snprintf(text, sizeof text, "error rate <= %g", h->bound);
    }
    size_t len = strlen(text);
    snprintf(text + len, sizeof text - len, " over %s%s", windows[w],
             h->grace_s > 0 ? " (grace after faults)" : "");
    h->text = strdup(text);
}

void sc_parse_hypothesis(sc_loader *L, yaml_node_t *n, sc_scenario *sc)
{
    char p[SC_PATHLEN], buf[SC_SHOWLEN];
    if (n->type != YAML_SEQUENCE_NODE) {
        sc_errn(L, n, "hypothesis: expected a sequence of checks, got %s", sc_show(n, buf));
        return;
    }
    int cnt = (int)(n->data.sequence.items.top - n->data.sequence.items.start);
    sc->hypotheses = calloc((size_t)cnt + 1, sizeof *sc->hypotheses);
    for (int i = 0; i < cnt; i++) {
        snprintf(p, sizeof p, "hypothesis.%d", i);
        load_hypothesis(L, sc_node(L, n->data.sequence.items.start[i]), p, &sc->hypotheses[i]);
        sc->n_hypotheses++;
    }
}

void sc_free_chaos(sc_scenario *sc)
{
    for (int i = 0; i < sc->n_faults; i++) {
        free(sc->faults[i].label);
        free(sc->faults[i].zone);
        free(sc->faults[i].file);
        free(sc->faults[i].prof_t);
        free(sc->faults[i].prof_v);
    }
    free(sc->faults);
    for (int i = 0; i < sc->n_hypotheses; i++)
        free(sc->hypotheses[i].text);
    free(sc->hypotheses);
}
