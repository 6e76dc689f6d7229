/*
 * alertmanager.c - Alertmanager's routing, grouping, notification timing
 * and inhibition, in simulated time, reading a real alertmanager.yml.
 *
 * Follows prometheus/alertmanager:
 * - dispatch/route.go Match: a route matches when its matchers hold; its
 *   children are tried in order, stopping after the first that matches
 *   unless that child has `continue: true`; a route with no matching child
 *   handles the alert itself. Children inherit receiver, group_by and the
 *   three timers. group_by: ['...'] groups by every label.
 * - dispatch/dispatch.go aggrGroup: a new group flushes group_wait after it
 *   was created, then every group_interval; after a flush the resolved
 *   alerts that were sent are dropped, and an empty group goes away (the
 *   real dispatcher collects it at its next 30 s maintenance; here at
 *   once).
 * - notify/notify.go: MuteStage drops inhibited alerts (and the pipeline
 *   stops if none remain); DedupStage.needsUpdate per integration: notify
 *   if never notified and something fires; if a firing alert is new; if
 *   all resolved and the last notification had firing alerts; if
 *   send_resolved and a resolved alert is new; else only once
 *   repeat_interval has passed since the last notification. An integration
 *   without send_resolved is sent only the firing alerts (and nothing when
 *   none fire), but its log is updated either way.
 * - inhibit/inhibit.go: a target alert is muted while a firing source alert
 *   matches source_matchers, has the same values of the `equal` labels
 *   (absent == absent), and is not itself a target when the alert is also
 *   a source (excludeTwoSidedMatch).
 * Silences, time intervals and templates are not modelled.
 */
#include "mon_internal.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

typedef struct route {
    mon_matcher *m;
    int nm;
    char *receiver;
    char **group_by;
    int n_group_by;
    int group_by_all;
    double group_wait, group_interval, repeat_interval;
    int cont;
    struct route *kids;
    int nkids;
    char *key;
} route;

typedef struct {
    char *kind;
    int index;
    int send_resolved;
} integration;

typedef struct {
    char *name;
    integration *ints;
    int n;
} receiver;

typedef struct {
    mon_matcher *src, *tgt;
    int nsrc, ntgt;
    char **equal;
    int neq;
} inhibit_rule;

typedef struct {
    char *fp;
    mon_labels labels;
    double starts_at, ends_at;   /* ends_at INFINITY while firing */
    long version;
} am_alert;

typedef struct {
    int present;
    char **firing, **resolved;
    int nf, nr;
    double ts;
} nflog_entry;

typedef struct {
    route *rt;
    const receiver *rcv;
    char *key;
    mon_labels group_labels;
    am_alert *alerts;
    int n;
    double next_flush;
    int has_flushed;
    nflog_entry *log;            /* one per integration of the receiver */
    long order;
} ag;

struct mon_am {
    route root;
    receiver *rcv;
    int nrcv;
    inhibit_rule *inh;
    int ninh;
    am_alert *alerts;            /* everything received, by fingerprint */
    int nalerts;
    ag **groups;
    int ngroups;
    long next_order;
    long version;
    mon_notification *notes;
    size_t nnotes, capnotes;
    /* nflog outlives groups (retention 120h in Alertmanager) */
    mon_map nflog;               /* group key + "\x01" + kind/index -> nflog_entry* */
};

/* ---- loading ---- */

static const char *const route_keys[] = { "receiver", "group_by", "continue", "matchers", "match",
                                          "match_re", "group_wait", "group_interval",
                                          "repeat_interval", "routes", "mute_time_intervals",
                                          "active_time_intervals", NULL };

static int add_matcher(mon_yaml *y, yaml_node_t *at, mon_matcher **ms, int *n, const char *name,
                       mon_match_type t, const char *value)
{
    mon_error e;
    *ms = mon_xrealloc(*ms, (size_t)(*n + 1) * sizeof **ms);
    if (mon_matcher_init(&(*ms)[*n], name, t, value, &e)) {
        mon_yaml_err(y, at, "%s", e.msg);
        return -1;
    }
    (*n)++;
    return 0;
}

/* match / match_re maps and the matchers list (any of the three). */
static int load_matchers(mon_yaml *y, yaml_node_t *map, const char *eq_key, const char *re_key,
                         const char *list_key, mon_matcher **ms, int *n)
{
    const char *keys[2] = { eq_key, re_key };
    for (int k = 0; k < 2; k++) {
        yaml_node_t *m = mon_yaml_get(y, map, keys[k]);
        if (!m || mon_yaml_is_null(m))
            continue;
        if (m->type != YAML_MAPPING_NODE) {
            mon_yaml_err(y, m, "%s must be a mapping of label names to values", keys[k]);
            return -1;
        }
        for (yaml_node_pair_t *p = m->data.mapping.pairs.start; p < m->data.mapping.pairs.top; p++) {
            const char *name = mon_yaml_str(y, mon_yaml_node(y, p->key), keys[k]);
            const char *val = mon_yaml_str(y, mon_yaml_node(y, p->value), keys[k]);
            if (!name || !val ||
                add_matcher(y, mon_yaml_node(y, p->value), ms, n, name, k ? MON_M_RE : MON_M_EQ, val))
                return -1;
        }
    }
    yaml_node_t *l = mon_yaml_get(y, map, list_key);
    if (l && !mon_yaml_is_null(l)) {
        if (l->type != YAML_SEQUENCE_NODE) {
            mon_yaml_err(y, l, "%s must be a list of matchers like 'severity=\"critical\"'", list_key);
            return -1;
        }
        for (yaml_node_item_t *it = l->data.sequence.items.start; it < l->data.sequence.items.top; it++) {
            yaml_node_t *mn = mon_yaml_node(y, *it);
            const char *text = mon_yaml_str(y, mn, list_key);
            if (!text)
                return -1;
            *ms = mon_xrealloc(*ms, (size_t)(*n + 1) * sizeof **ms);
            mon_error e;
            if (mon_matcher_parse(&(*ms)[*n], text, &e)) {
                mon_yaml_err(y, mn, "%s", e.msg);
                return -1;
            }
            (*n)++;
        }
    }
    return 0;
}

static int load_strlist(mon_yaml *y, yaml_node_t *n, const char *what, char ***out, int *count)
{
    *out = NULL;
    *count = 0;
    if (!n || mon_yaml_is_null(n))
        return 0;
    if (n->type != YAML_SEQUENCE_NODE) {
        mon_yaml_err(y, n, "%s must be a list of label names", what);
        return -1;
    }
    for (yaml_node_item_t *it = n->data.sequence.items.start; it < n->data.sequence.items.top; it++) {
        const char *s = mon_yaml_str(y, mon_yaml_node(y, *it), what);
        if (!s)
            return -1;
        *out = mon_xrealloc(*out, (size_t)(*count + 1) * sizeof **out);
        (*out)[(*count)++] = mon_strdup(s);
    }
    return 0;
}

static int load_route(mon_yaml *y, yaml_node_t *n, route *rt, const route *parent, const char *key)
{
    memset(rt, 0, sizeof *rt);
    rt->key = mon_strdup(key);
    if (mon_yaml_check_keys(y, n, "route", route_keys))
        return -1;
    if (parent) {
        rt->receiver = mon_strdup(parent->receiver);
        rt->group_wait = parent->group_wait;
        rt->group_interval = parent->group_interval;
        rt->repeat_interval = parent->repeat_interval;
        rt->group_by_all = parent->group_by_all;
        for (int i = 0; i < parent->n_group_by; i++) {
            rt->group_by = mon_xrealloc(rt->group_by, (size_t)(i + 1) * sizeof *rt->group_by);
            rt->group_by[i] = mon_strdup(parent->group_by[i]);
        }
        rt->n_group_by = parent->n_group_by;
    } else {
        /* config.go DefaultRouteOpts */
        rt->group_wait = 30;
        rt->group_interval = 300;
        rt->repeat_interval = 4 * 3600;
    }
    yaml_node_t *x;
    if ((x = mon_yaml_get(y, n, "receiver"))) {
        const char *s = mon_yaml_str(y, x, "receiver");
        if (!s)
            return -1;
        free(rt->receiver);
        rt->receiver = mon_strdup(s);
    }
    if (!parent && (!rt->receiver || !*rt->receiver)) {
        mon_yaml_err(y, n, "root route must specify a default receiver");
        return -1;
    }
    if ((x = mon_yaml_get(y, n, "group_by"))) {
        for (int i = 0; i < rt->n_group_by; i++)
            free(rt->group_by[i]);
        free(rt->group_by);
        if (load_strlist(y, x, "group_by", &rt->group_by, &rt->n_group_by))
            return -1;
        rt->group_by_all = 0;
        for (int i = 0; i < rt->n_group_by; i++)
            if (!strcmp(rt->group_by[i], "...")) {
                if (rt->n_group_by > 1) {
                    mon_yaml_err(y, x, "cannot have wildcard group_by (`...`) and other labels at the same time");
                    return -1;
                }
                rt->group_by_all = 1;
            } else if (!mon_valid_label_name(rt->group_by[i])) {
                mon_yaml_err(y, x, "invalid label name \"%s\" in group_by list", rt->group_by[i]);
                return -1;
            }
    }
    static const char *const timers[] = { "group_wait", "group_interval", "repeat_interval" };
    double *dst[] = { &rt->group_wait, &rt->group_interval, &rt->repeat_interval };
    for (int i = 0; i < 3; i++)
        if ((x = mon_yaml_get(y, n, timers[i])) && mon_yaml_duration(y, x, timers[i], dst[i]))
            return -1;
    if (rt->group_interval <= 0 || rt->repeat_interval <= 0) {
        mon_yaml_err(y, n, "group_interval and repeat_interval must be positive");
        return -1;
    }
    if ((x = mon_yaml_get(y, n, "continue"))) {
        const char *s = mon_yaml_str(y, x, "continue");
        if (!s)
            return -1;
        rt->cont = !strcmp(s, "true");
        if (!parent && rt->cont) {
            mon_yaml_err(y, x, "cannot have continue in root route");
            return -1;
        }
    }
    if (load_matchers(y, n, "match", "match_re", "matchers", &rt->m, &rt->nm))
        return -1;
    if (!parent && rt->nm) {
        mon_yaml_err(y, n, "root route must not have any matchers");
        return -1;
    }
    x = mon_yaml_get(y, n, "routes");
    if (x && !mon_yaml_is_null(x)) {
        if (x->type != YAML_SEQUENCE_NODE) {
            mon_yaml_err(y, x, "routes must be a list of routes");
            return -1;
        }
        for (yaml_node_item_t *it = x->data.sequence.items.start; it < x->data.sequence.items.top; it++) {
            rt->kids = mon_xrealloc(rt->kids, (size_t)(rt->nkids + 1) * sizeof *rt->kids);
            char k[512];
            snprintf(k, sizeof k, "%s/%d", key, rt->nkids);
            int bad = load_route(y, mon_yaml_node(y, *it), &rt->kids[rt->nkids], rt, k);
            rt->nkids++;
            if (bad)
                return -1;
        }
    }
    return 0;
}

static void route_free(route *rt)
{
    for (int i = 0; i < rt->nm; i++)
        mon_matcher_free(&rt->m[i]);
    free(rt->m);
    free(rt->receiver);
    for (int i = 0; i < rt->n_group_by; i++)
        free(rt->group_by[i]);
    free(rt->group_by);
    for (int i = 0; i < rt->nkids; i++)
        route_free(&rt->kids[i]);
    free(rt->kids);
    free(rt->key);
}

/* config.go: the default of send_resolved for each notifier. */
static int default_send_resolved(const char *kind)
{
    static const char *const off[] = { "email", "slack", "wechat", NULL };
    for (int i = 0; off[i]; i++)
        if (!strcmp(off[i], kind))
            return 0;
    return 1;
}

/* A key of a mapping with a non-empty scalar value. */
static int has_value(mon_yaml *y, yaml_node_t *map, const char *key)
{
    yaml_node_t *v = map && map->type == YAML_MAPPING_NODE ? mon_yaml_get(y, map, key) : NULL;
    return v && v->type == YAML_SCALAR_NODE && v->data.scalar.length > 0;
}

/* What Alertmanager's config.go checks of an integration against the
 * global section (amtool check-config refuses the file otherwise). */
static int check_integration(mon_yaml *y, yaml_node_t *cfg, const char *kind, yaml_node_t *global)
{
    if (!strcmp(kind, "email")) {
        if (!has_value(y, cfg, "to")) {
            mon_yaml_err(y, cfg, "missing to address in email config");
            return -1;
        }
        if (!has_value(y, cfg, "smarthost") && !has_value(y, global, "smtp_smarthost")) {
            mon_yaml_err(y, cfg, "no global SMTP smarthost set");
            return -1;
        }
        if (!has_value(y, cfg, "from") && !has_value(y, global, "smtp_from")) {
            mon_yaml_err(y, cfg, "no global SMTP from set");
            return -1;
        }
    } else if (!strcmp(kind, "slack")) {
        if (!has_value(y, cfg, "api_url") && !has_value(y, cfg, "api_url_file") &&
            !has_value(y, global, "slack_api_url") && !has_value(y, global, "slack_api_url_file")) {
            mon_yaml_err(y, cfg, "no global Slack API URL set either inline or in a file");
            return -1;
        }
    } else if (!strcmp(kind, "opsgenie")) {
        if (!has_value(y, cfg, "api_key") && !has_value(y, cfg, "api_key_file") &&
            !has_value(y, global, "opsgenie_api_key") && !has_value(y, global, "opsgenie_api_key_file")) {
            mon_yaml_err(y, cfg, "no global OpsGenie API Key set either inline or in a file");
            return -1;
        }
    }
    return 0;
}

static int load_receivers(mon_yaml *y, yaml_node_t *n, mon_am *am, yaml_node_t *global)
{
    if (!n || n->type != YAML_SEQUENCE_NODE) {
        mon_yaml_err(y, n, "receivers must be a list");
        return -1;
    }
    for (yaml_node_item_t *it = n->data.sequence.items.start; it < n->data.sequence.items.top; it++) {
        yaml_node_t *rn = mon_yaml_node(y, *it);
        if (rn->type != YAML_MAPPING_NODE) {
            mon_yaml_err(y, rn, "a receiver must be a mapping");
            return -1;
        }
        am->rcv = mon_xrealloc(am->rcv, (size_t)(am->nrcv + 1) * sizeof *am->rcv);
        receiver *r = &am->rcv[am->nrcv++];
        memset(r, 0, sizeof *r);
        for (yaml_node_pair_t *p = rn->data.mapping.pairs.start; p < rn->data.mapping.pairs.top; p++) {
            yaml_node_t *k = mon_yaml_node(y, p->key), *v = mon_yaml_node(y, p->value);
            const char *key = mon_yaml_str(y, k, "receiver key");
            if (!key)
                return -1;
            size_t kl = strlen(key);
            if (!strcmp(key, "name")) {
                const char *s = mon_yaml_str(y, v, "name");
                if (!s)
                    return -1;
                r->name = mon_strdup(s);
            } else if (kl > 8 && !strcmp(key + kl - 8, "_configs")) {
                if (v->type != YAML_SEQUENCE_NODE) {
                    mon_yaml_err(y, v, "%s must be a list", key);
                    return -1;
                }
                int idx = 0;
                for (yaml_node_item_t *c = v->data.sequence.items.start; c < v->data.sequence.items.top; c++) {
                    r->ints = mon_xrealloc(r->ints, (size_t)(r->n + 1) * sizeof *r->ints);
                    integration *in = &r->ints[r->n++];
                    in->kind = mon_strdup(key);
                    in->kind[kl - 8] = '\0';
                    in->index = idx++;
                    in->send_resolved = default_send_resolved(in->kind);
                    if (check_integration(y, mon_yaml_node(y, *c), in->kind, global))
                        return -1;
                    yaml_node_t *sr = mon_yaml_get(y, mon_yaml_node(y, *c), "send_resolved");
                    if (sr) {
                        const char *s = mon_yaml_str(y, sr, "send_resolved");
                        if (!s)
                            return -1;
                        in->send_resolved = !strcmp(s, "true");
                    }
                }
            } else {
                mon_yaml_err(y, k, "unknown key \"%s\" in receiver (valid: name, *_configs)", key);
                return -1;
            }
        }
        if (!r->name || !*r->name) {
            mon_yaml_err(y, rn, "missing name in receiver");
            return -1;
        }
        for (int i = 0; i < am->nrcv - 1; i++)
            if (!strcmp(am->rcv[i].name, r->name)) {
                mon_yaml_err(y, rn, "notification config name \"%s\" is not unique", r->name);
                return -1;
            }
    }
    return 0;
}

static const receiver *find_receiver(const mon_am *am, const char *name)
{
    for (int i = 0; i < am->nrcv; i++)
        if (!strcmp(am->rcv[i].name, name))
            return &am->rcv[i];
    return NULL;
}

static int check_route_receivers(mon_yaml *y, yaml_node_t *at, const mon_am *am, const route *rt)
{
    if (!find_receiver(am, rt->receiver)) {
        mon_yaml_err(y, at, "undefined receiver \"%s\" used in route", rt->receiver);
        return -1;
    }
    for (int i = 0; i < rt->nkids; i++)
        if (check_route_receivers(y, at, am, &rt->kids[i]))
            return -1;
    return 0;
}

static int load_inhibit(mon_yaml *y, yaml_node_t *n, mon_am *am)
{
    static const char *const keys[] = { "source_match", "source_match_re", "source_matchers",
                                        "target_match", "target_match_re", "target_matchers",
                                        "equal", NULL };
    if (n->type != YAML_SEQUENCE_NODE) {
        mon_yaml_err(y, n, "inhibit_rules must be a list");
        return -1;
    }
    for (yaml_node_item_t *it = n->data.sequence.items.start; it < n->data.sequence.items.top; it++) {
        yaml_node_t *rn = mon_yaml_node(y, *it);
        if (mon_yaml_check_keys(y, rn, "inhibit rule", keys))
            return -1;
        am->inh = mon_xrealloc(am->inh, (size_t)(am->ninh + 1) * sizeof *am->inh);
        inhibit_rule *r = &am->inh[am->ninh++];
        memset(r, 0, sizeof *r);
        if (load_matchers(y, rn, "source_match", "source_match_re", "source_matchers", &r->src, &r->nsrc) ||
            load_matchers(y, rn, "target_match", "target_match_re", "target_matchers", &r->tgt, &r->ntgt) ||
            load_strlist(y, mon_yaml_get(y, rn, "equal"), "equal", &r->equal, &r->neq))
            return -1;
    }
    return 0;
}

mon_am *mon_am_load_string(const char *text, const char *name, mon_error *err)
{
    mon_yaml y;
    if (mon_yaml_open(&y, text, name, err))
        return NULL;
    mon_am *am = calloc(1, sizeof *am);
    if (!am)
        abort();
    static const char *const top[] = { "global", "route", "receivers", "inhibit_rules", "templates",
                                       "time_intervals", "mute_time_intervals", NULL };
    yaml_node_t *root = mon_yaml_root(&y), *x;
    if (!root || mon_yaml_check_keys(&y, root, "alertmanager config", top))
        goto fail;
    if (!(x = mon_yaml_get(&y, root, "receivers")) ||
        load_receivers(&y, x, am, mon_yaml_get(&y, root, "global")))
        goto fail;
    if (!(x = mon_yaml_get(&y, root, "route"))) {
        mon_yaml_err(&y, root, "no routes provided");
        goto fail;
    }
    if (load_route(&y, x, &am->root, NULL, "{}") || check_route_receivers(&y, x, am, &am->root))
        goto fail;
    if ((x = mon_yaml_get(&y, root, "inhibit_rules")) && !mon_yaml_is_null(x) && load_inhibit(&y, x, am))
        goto fail;
    mon_yaml_close(&y);
    return am;
fail:
    if (!y.failed)
        mon_errf(err, "%s: no routes provided", name);
    mon_yaml_close(&y);
    mon_am_free(am);
    return NULL;
}

mon_am *mon_am_load(const char *path, mon_error *err)
{
    char *text = mon_read_file(path, err);
    if (!text)
        return NULL;
    mon_am *am = mon_am_load_string(text, path, err);
    free(text);
    return am;
}

static void free_strv(char **v, int n)
{
    for (int i = 0; i < n; i++)
        free(v[i]);
    free(v);
}

static void ag_free(ag *g)
{
    free(g->key);
    mon_labels_free(&g->group_labels);
    for (int i = 0; i < g->n; i++) {
        free(g->alerts[i].fp);
        mon_labels_free(&g->alerts[i].labels);
    }
    free(g->alerts);
    free(g);
}

void mon_am_free(mon_am *am)
{
    if (!am)
        return;
    route_free(&am->root);
    for (int i = 0; i < am->nrcv; i++) {
        free(am->rcv[i].name);
        for (int k = 0; k < am->rcv[i].n; k++)
            free(am->rcv[i].ints[k].kind);
        free(am->rcv[i].ints);
    }
    free(am->rcv);
    for (int i = 0; i < am->ninh; i++) {
        inhibit_rule *r = &am->inh[i];
        for (int k = 0; k < r->nsrc; k++)
            mon_matcher_free(&r->src[k]);
        for (int k = 0; k < r->ntgt; k++)
            mon_matcher_free(&r->tgt[k]);
        free(r->src);
        free(r->tgt);
        free_strv(r->equal, r->neq);
    }
    free(am->inh);
    for (int i = 0; i < am->nalerts; i++) {
        free(am->alerts[i].fp);
        mon_labels_free(&am->alerts[i].labels);
    }
    free(am->alerts);
    for (int i = 0; i < am->ngroups; i++)
        ag_free(am->groups[i]);
    free(am->groups);
    for (size_t i = 0; i < am->nnotes; i++) {
        mon_notification *n = &am->notes[i];
        free(n->group_key);
        mon_labels_free(&n->group_labels);
        for (int k = 0; k < n->n_alerts; k++)
            mon_labels_free(&n->alerts[k].labels);
        free(n->alerts);
    }
    free(am->notes);
    for (size_t i = 0; i < am->nflog.cap; i++) {
        nflog_entry *e = am->nflog.vals ? am->nflog.vals[i] : NULL;
        if (am->nflog.keys[i] && e) {
            free_strv(e->firing, e->nf);
            free_strv(e->resolved, e->nr);
            free(e);
        }
    }
    mon_map_free(&am->nflog);
    free(am);
}

/* ---- routing ---- */

static void match_route(const route *rt, const mon_labels *ls, const route ***out, int *n)
{
    int before = *n;
    for (int i = 0; i < rt->nkids; i++) {
        const route *k = &rt->kids[i];
        if (!mon_matchers_match(k->m, k->nm, ls))
            continue;
        int b = *n;
        match_route(k, ls, out, n);
        if (*n > b && !k->cont)
            break;
    }
    if (*n == before) {
        *out = mon_xrealloc(*out, (size_t)(*n + 1) * sizeof **out);
        (*out)[(*n)++] = rt;
    }
}

char *mon_am_receivers_for(const mon_am *am, const mon_labels *ls, char *buf, size_t len)
{
    const route **rs = NULL;
    int n = 0;
    size_t at = 0;
    buf[0] = '\0';
    match_route(&am->root, ls, &rs, &n);
    for (int i = 0; i < n && at < len; i++)
        at += (size_t)snprintf(buf + at, len - at, "%s%s", i ? "," : "", rs[i]->receiver);
    free(rs);
    return buf;
}

/* ---- alerts in ---- */

static int resolved_at(const am_alert *a, double t)
{
    return a->ends_at <= t;
}

static am_alert *find_alert(am_alert *v, int n, const char *fp)
{
    for (int i = 0; i < n; i++)
        if (!strcmp(v[i].fp, fp))
            return &v[i];
    return NULL;
}

/* Alertmanager's Alert.Merge, simplified: an update to a live alert moves
 * its end; one for an alert that already ended starts a new alert. */
static void upsert(am_alert **v, int *n, const am_alert *in, double t)
{
    am_alert *a = find_alert(*v, *n, in->fp);
    if (a && !resolved_at(a, t)) {
        a->ends_at = in->ends_at;
        if (in->starts_at < a->starts_at)
            a->starts_at = in->starts_at;
        a->version = in->version;
        return;
    }
    if (!a) {
        *v = mon_xrealloc(*v, (size_t)(*n + 1) * sizeof **v);
        a = &(*v)[(*n)++];
        a->fp = mon_strdup(in->fp);
        mon_labels_copy(&a->labels, &in->labels);
    }
    a->starts_at = in->starts_at;
    a->ends_at = in->ends_at;
    a->version = in->version;
}

void mon_am_put(mon_am *am, const mon_labels *ls, double starts_at, double ends_at, double t_s)
{
    am_alert in;
    in.fp = mon_labels_key(ls);
    in.labels = *ls;
    in.starts_at = starts_at;
    in.ends_at = isnan(ends_at) ? INFINITY : ends_at;
    in.version = ++am->version;
    am_alert *old = find_alert(am->alerts, am->nalerts, in.fp);
    /* a resolve for an alert that is already resolved changes nothing */
    if (!(old && resolved_at(old, t_s) && isfinite(in.ends_at))) {
        upsert(&am->alerts, &am->nalerts, &in, t_s);
        const route **rs = NULL;
        int n = 0;
        match_route(&am->root, ls, &rs, &n);
        for (int i = 0; i < n; i++) {
            route *rt = (route *)rs[i];
            mon_labels gl = { 0, NULL };
            if (rt->group_by_all)
                mon_labels_copy(&gl, ls);
            else
                for (int k = 0; k < rt->n_group_by; k++) {
                    const char *v = mon_labels_get(ls, rt->group_by[k]);
                    if (*v)
                        mon_labels_push(&gl, rt->group_by[k], v);
                }
            mon_labels_sort(&gl);
            char lb[1024];
            mon_labels_str(&gl, lb, sizeof lb);
            size_t kl = strlen(rt->key) + strlen(lb) + 2;
            char *key = mon_xrealloc(NULL, kl);
            snprintf(key, kl, "%s:%s", rt->key, lb);
            ag *g = NULL;
            for (int k = 0; k < am->ngroups && !g; k++)
                if (!strcmp(am->groups[k]->key, key))
                    g = am->groups[k];
            if (!g) {
                if (isfinite(in.ends_at)) {
                    /* no group to tell about an alert that is over */
                    free(key);
                    mon_labels_free(&gl);
                    continue;
                }
                g = calloc(1, sizeof *g);
                if (!g)
                    abort();
                g->rt = rt;
                g->rcv = find_receiver(am, rt->receiver);
                g->key = key;
                g->group_labels = gl;
                g->next_flush = t_s + rt->group_wait;
                g->order = am->next_order++;
                am->groups = mon_xrealloc(am->groups, (size_t)(am->ngroups + 1) * sizeof *am->groups);
                am->groups[am->ngroups++] = g;
            } else {
                free(key);
                mon_labels_free(&gl);
            }
            upsert(&g->alerts, &g->n, &in, t_s);
            /* aggrGroup.insert: flush at once if the alert's wait is over */
            if (!g->has_flushed && in.starts_at + rt->group_wait < t_s)
                g->next_flush = t_s;
        }
        free(rs);
    }
    free(in.fp);
}

typedef struct {
    mon_am *am;
    double t;
} sync_arg;

static void sync_one(void *arg, const mon_labels *ls, mon_alert_state st, double fired_at,
                     double resolved)
{
    sync_arg *s = arg;
    if (st == MON_ALERT_FIRING) {
        mon_am_put(s->am, ls, fired_at, NAN, s->t);
    } else if (st == MON_ALERT_INACTIVE && !isnan(resolved) && !isnan(fired_at)) {
        char *fp = mon_labels_key(ls);
        am_alert *a = find_alert(s->am->alerts, s->am->nalerts, fp);
        free(fp);
        if (a && !resolved_at(a, s->t))
            mon_am_put(s->am, ls, fired_at, resolved, s->t);
    }
}

void mon_rules_each_alert(const mon_rules *r,
                          void (*fn)(void *, const mon_labels *, mon_alert_state, double, double),
                          void *arg);

void mon_am_sync(mon_am *am, const mon_rules *r, double t_s)
{
    sync_arg s = { am, t_s };
    mon_rules_each_alert(r, sync_one, &s);
}

/* ---- flushing ---- */

static int equal_labels(const inhibit_rule *r, const mon_labels *a, const mon_labels *b)
{
    for (int i = 0; i < r->neq; i++)
        if (strcmp(mon_labels_get(a, r->equal[i]), mon_labels_get(b, r->equal[i])))
            return 0;
    return 1;
}

static int inhibited(const mon_am *am, const mon_labels *ls, double t)
{
    for (int i = 0; i < am->ninh; i++) {
        const inhibit_rule *r = &am->inh[i];
        if (!mon_matchers_match(r->tgt, r->ntgt, ls))
            continue;
        int two_sided = mon_matchers_match(r->src, r->nsrc, ls);
        for (int k = 0; k < am->nalerts; k++) {
            const am_alert *s = &am->alerts[k];
            if (resolved_at(s, t) || !mon_matchers_match(r->src, r->nsrc, &s->labels))
                continue;
            if (two_sided && mon_matchers_match(r->tgt, r->ntgt, &s->labels))
                continue;
            if (equal_labels(r, &s->labels, ls))
                return 1;
        }
    }
    return 0;
}

static int in_set(char *const *v, int n, const char *s)
{
    for (int i = 0; i < n; i++)
        if (!strcmp(v[i], s))
            return 1;
    return 0;
}

/* DedupStage.needsUpdate (notify/notify.go). */
static int needs_update(const nflog_entry *e, char **firing, int nf, char **resolved, int nr,
                        int send_resolved, double repeat, double now)
{
    if (!e || !e->present)
        return nf > 0;
    for (int i = 0; i < nf; i++)
        if (!in_set(e->firing, e->nf, firing[i]))
            return 1;
    if (nf == 0)
        return e->nf > 0;
    if (send_resolved)
        for (int i = 0; i < nr; i++)
            if (!in_set(e->resolved, e->nr, resolved[i]))
                return 1;
    return e->ts < now - repeat;
}

static char **dup_strv(char **v, int n)
{
    char **d = mon_xrealloc(NULL, (size_t)(n ? n : 1) * sizeof *d);
    for (int i = 0; i < n; i++)
        d[i] = mon_strdup(v[i]);
    return d;
}

static void notify(mon_am *am, ag *g, const integration *in, am_alert **sent, int ns, double t)
{
    mon_grow((void **)&am->notes, sizeof *am->notes, &am->capnotes, am->nnotes);
    mon_notification *n = &am->notes[am->nnotes++];
    memset(n, 0, sizeof *n);
    n->t_s = t;
    n->receiver = g->rcv->name;
    n->integration = in->kind;
    n->integration_index = in->index;
    n->group_key = mon_strdup(g->key);
    mon_labels_copy(&n->group_labels, &g->group_labels);
    n->alerts = mon_xrealloc(NULL, (size_t)ns * sizeof *n->alerts);
    for (int pass = 0; pass < 2; pass++)
        for (int i = 0; i < ns; i++) {
            int res = resolved_at(sent[i], t);
            if (res != pass)
                continue;
            mon_am_alert *a = &n->alerts[n->n_alerts++];
            mon_labels_copy(&a->labels, &sent[i]->labels);
            a->resolved = res;
            a->starts_at = sent[i]->starts_at;
            a->ends_at = res ? sent[i]->ends_at : NAN;
            n->n_firing += !res;
        }
}

static void flush(mon_am *am, ag *g, double t)
{
    int n = g->n;
    am_alert **alerts = mon_xrealloc(NULL, (size_t)(n ? n : 1) * sizeof *alerts);
    long *versions = mon_xrealloc(NULL, (size_t)(n ? n : 1) * sizeof *versions);
    char **firing = mon_xrealloc(NULL, (size_t)(n ? n : 1) * sizeof *firing);
    char **resolved = mon_xrealloc(NULL, (size_t)(n ? n : 1) * sizeof *resolved);
    int na = 0, nf = 0, nr = 0;
    for (int i = 0; i < n; i++) {
        versions[i] = g->alerts[i].version;
        if (inhibited(am, &g->alerts[i].labels, t))
            continue;
        alerts[na++] = &g->alerts[i];
        if (resolved_at(&g->alerts[i], t))
            resolved[nr++] = g->alerts[i].fp;
        else
            firing[nf++] = g->alerts[i].fp;
    }
    if (na) {
        for (int k = 0; k < g->rcv->n; k++) {
            const integration *in = &g->rcv->ints[k];
            char lk[2048];
            snprintf(lk, sizeof lk, "%s\x01%s/%d", g->key, in->kind, in->index);
            nflog_entry *e = mon_map_get(&am->nflog, lk);
            if (!needs_update(e, firing, nf, resolved, nr, in->send_resolved,
                              g->rt->repeat_interval, t))
                continue;
            if (in->send_resolved) {
                notify(am, g, in, alerts, na, t);
            } else if (nf) {
                am_alert **fa = mon_xrealloc(NULL, (size_t)nf * sizeof *fa);
                int m = 0;
                for (int i = 0; i < na; i++)
                    if (!resolved_at(alerts[i], t))
                        fa[m++] = alerts[i];
                notify(am, g, in, fa, m, t);
                free(fa);
            }
            if (!e) {
                e = calloc(1, sizeof *e);
                if (!e)
                    abort();
                mon_map_put(&am->nflog, lk, e);
            }
            free_strv(e->firing, e->nf);
            free_strv(e->resolved, e->nr);
            e->firing = dup_strv(firing, nf);
            e->nf = nf;
            e->resolved = dup_strv(resolved, nr);
            e->nr = nr;
            e->ts = t;
            e->present = 1;
        }
        /* drop the resolved alerts that were just handled */
        for (int i = g->n - 1; i >= 0; i--) {
            am_alert *a = &g->alerts[i];
            if (resolved_at(a, t) && a->version == versions[i]) {
                free(a->fp);
                mon_labels_free(&a->labels);
                g->alerts[i] = g->alerts[--g->n];
            }
        }
    }
    free(alerts);
    free(versions);
    free(firing);
    free(resolved);
}

static ag *next_group(const mon_am *am, int *index)
{
    ag *best = NULL;
    for (int i = 0; i < am->ngroups; i++) {
        ag *g = am->groups[i];
        if (!best || g->next_flush < best->next_flush ||
            (g->next_flush == best->next_flush && g->order < best->order)) {
            best = g;
            *index = i;
        }
    }
    return best;
}

int mon_am_advance(mon_am *am, double t_s)
{
    size_t before = am->nnotes;
    int i;
    ag *g;
    while ((g = next_group(am, &i)) && g->next_flush <= t_s + 1e-9) {
        double t = g->next_flush;
        g->next_flush = t + g->rt->group_interval;
        g->has_flushed = 1;
        flush(am, g, t);
        if (g->n == 0) {
            ag_free(g);
            am->groups[i] = am->groups[--am->ngroups];
        }
    }
    return (int)(am->nnotes - before);
}

double mon_am_next_flush(const mon_am *am)
{
    int i;
    ag *g = next_group(am, &i);
    return g ? g->next_flush : INFINITY;
}

const mon_notification *mon_am_notifications(const mon_am *am, size_t *n)
{
    *n = am->nnotes;
    return am->notes;
}
