/*
 * scenario.c - YAML scenario file -> sc_scenario, with overrides and checks.
 *
 * The file is read with libyaml's document API so every node keeps its line
 * and column. `--set key.path=value` overrides edit that tree before anything
 * is checked, so a value typed on the command line meets exactly the checks a
 * value in the file meets, and its errors point into the override string as
 * `--set[N]:1:col`. Checking walks the tree section by section and keeps
 * going after an error, so one run reports as many problems as it can; any
 * error makes sc_load() return NULL. The reference of every key is
 * scenarios/README.md; keep it in step with the key tables here and in the
 * section files.
 *
 * This file holds the entry points, the overrides, the top-level keys and
 * the table of sections, and the helpers every section parser uses (declared
 * in scenario_internal.h). Each section is parsed in its own file:
 * scenario_models.c (with scenario_llm.c for models.<m>.llm and token
 * traffic), scenario_pools.c, scenario_traffic.c, scenario_lb.c
 * (load_balancer and slo), scenario_tiers.c, scenario_pipelines.c,
 * scenario_autoscale.c, scenario_monitoring.c and scenario_chaos.c.
 *
 * Known limits: one YAML document per file; no merge keys (`<<` is an
 * unknown key); anchors and aliases work (an alias shares its node, so an
 * override through an alias changes every place that uses it).
 */
#include "results.h"
#include "scenario.h"
#include "scenario_internal.h"

#include <yaml.h>

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* ---- messages ----------------------------------------------------------- */

yaml_node_t *sc_node(sc_loader *L, int id)
{
    return yaml_document_get_node(&L->doc, id);
}

/* 0 for a node read from the file, else the override that created it. */
int sc_node_set(const sc_loader *L, const yaml_node_t *n)
{
    long id = (long)(n - L->doc.nodes.start) + 1;
    long k = id - L->n_file_nodes - 1;

    if (k < 0 || k >= L->n_set_of)
        return 0;
    return L->set_of[k];
}

/* At most this many error lines from one load; the rest are counted. */
#define SC_MAX_SHOWN 50

/* Prints one message line; control characters (from quoted keys, say) are
 * replaced so that each error stays on one line. */
static void emit(sc_loader *L, const char *where, const char *fmt, va_list ap)
{
    if (L->n_errors >= SC_MAX_SHOWN) { /* 200,000 duplicates are one mistake, not a screenful */
        L->n_errors++;
        L->n_hidden++;
        return;
    }
    va_list ap2;
    va_copy(ap2, ap);
    int len = vsnprintf(NULL, 0, fmt, ap2);
    va_end(ap2);
    if (len < 0)
        len = 0;
    char *msg = malloc((size_t)len + 1);
    if (msg == NULL) {
        fprintf(L->err, "%s: out of memory\n", where);
    } else {
        vsnprintf(msg, (size_t)len + 1, fmt, ap);
        for (char *c = msg; *c; c++)
            if ((unsigned char)*c < 0x20 || *c == 0x7f)
                *c = '?';
        fprintf(L->err, "%s: %s\n", where, msg);
        free(msg);
    }
    L->n_errors++;
}

/* "--set[3]", or the name the caller gave override set (1-based). */
static void set_name(const sc_loader *L, int set, char *buf, size_t len)
{
    if (L->set_names && L->set_names[set - 1])
        snprintf(buf, len, "%s", L->set_names[set - 1]);
    else
        snprintf(buf, len, "--set[%d]", set);
}

static void where_of(const sc_loader *L, const yaml_node_t *n, char *buf, size_t len)
{
    int set = n ? sc_node_set(L, n) : 0;
    int r;

    if (set) {
        char name[64];
        set_name(L, set, name, sizeof name);
        r = snprintf(buf, len, "%s:1:%zu", name, n->start_mark.column + 1);
    }
    else if (n)
        r = snprintf(buf, len, "%s:%zu:%zu", L->file, n->start_mark.line + 1,
                     n->start_mark.column + 1);
    else
        r = snprintf(buf, len, "%s:1:1", L->file);
    (void)r;
}

/* Error at node n (its line:col, or its override's column). */
void sc_errn(sc_loader *L, const yaml_node_t *n, const char *fmt, ...)
{
    char where[SC_PATHLEN + 64];
    va_list ap;

    where_of(L, n, where, sizeof where);
    va_start(ap, fmt);
    emit(L, where, fmt, ap);
    va_end(ap);
}

/* Error in override number set, at 1-based column col of its text. */
void sc_errset(sc_loader *L, int set, size_t col, const char *fmt, ...)
{
    char where[96], name[64];
    va_list ap;
    set_name(L, set, name, sizeof name);
    int r = snprintf(where, sizeof where, "%s:1:%zu", name, col);

    (void)r;
    va_start(ap, fmt);
    emit(L, where, fmt, ap);
    va_end(ap);
}

/* "pools.gpu" + "replicas" -> "pools.gpu.replicas" (truncated if huge). */
const char *sc_join(char *buf, const char *a, const char *b)
{
    int r = snprintf(buf, SC_PATHLEN, "%s%s%s", a, *a ? "." : "", b);
    (void)r;
    return buf;
}

/* "path: " or "" at top level, for message prefixes. */
#define SC_PFX(path) (path), (*(path) ? ": " : "")

/* How a node reads in "got ...": "\"text\"", "a mapping", "a sequence". */
const char *sc_show(const yaml_node_t *n, char buf[SC_SHOWLEN])
{
    if (n->type == YAML_MAPPING_NODE)
        return "a mapping";
    if (n->type == YAML_SEQUENCE_NODE)
        return "a sequence";
    size_t len = n->data.scalar.length, max = SC_SHOWLEN - 6, i, o = 0;
    buf[o++] = '"';
    for (i = 0; i < len && i < max; i++)
        buf[o++] = (char)n->data.scalar.value[i];
    if (i < len) {
        memcpy(buf + o, "...", 3);
        o += 3;
    }
    buf[o++] = '"';
    buf[o] = '\0';
    return buf;
}

void sc_list_add(char *buf, size_t cap, const char *name)
{
    size_t used = strlen(buf);
    if (used + strlen(name) + 6 >= cap) {
        if (used + 4 < cap && (used < 3 || strcmp(buf + used - 3, "...") != 0))
            strcat(buf, used ? ", ..." : "...");
        return;
    }
    if (used)
        strcat(buf, ", ");
    strcat(buf, name);
}

static void list_of(char *buf, size_t cap, const char *const *names)
{
    buf[0] = '\0';
    for (; *names; names++)
        sc_list_add(buf, cap, *names);
}

/* ---- tree access -------------------------------------------------------- */

static int scalar_is(const yaml_node_t *n, const char *s, size_t len)
{
    return n->type == YAML_SCALAR_NODE && n->data.scalar.length == len &&
           memcmp(n->data.scalar.value, s, len) == 0;
}

/* First pair of mapping m whose key is name (m must be a mapping). */
sc_kv sc_find(sc_loader *L, const yaml_node_t *m, const char *name)
{
    sc_kv r = {NULL, NULL};
    size_t len = strlen(name);

    for (yaml_node_pair_t *p = m->data.mapping.pairs.start; p < m->data.mapping.pairs.top; p++) {
        yaml_node_t *k = sc_node(L, p->key);
        if (k && scalar_is(k, name, len)) {
            r.key = k;
            r.val = sc_node(L, p->value);
            return r;
        }
    }
    return r;
}

/* The earlier pair of m with the same scalar key as pair p, if any. */
static yaml_node_t *earlier_key(sc_loader *L, const yaml_node_t *m, const yaml_node_pair_t *p)
{
    yaml_node_t *k = sc_node(L, p->key);

    for (yaml_node_pair_t *q = m->data.mapping.pairs.start; q < p; q++) {
        yaml_node_t *e = sc_node(L, q->key);
        if (e && e->type == YAML_SCALAR_NODE &&
            scalar_is(k, (const char *)e->data.scalar.value, e->data.scalar.length))
            return e;
    }
    return NULL;
}

/* A usable key: a scalar, not a repeat of an earlier key (those are
 * reported by check_map and then skipped). */
int sc_key_usable(sc_loader *L, const yaml_node_t *m, const yaml_node_pair_t *p)
{
    yaml_node_t *k = sc_node(L, p->key);
    return k && k->type == YAML_SCALAR_NODE && earlier_key(L, m, p) == NULL;
}

/* Entries of a name -> item mapping (models, pools): usable keys only. */
int sc_count_named(sc_loader *L, yaml_node_t *m)
{
    int n = 0;
    for (yaml_node_pair_t *p = m->data.mapping.pairs.start; p < m->data.mapping.pairs.top; p++)
        n += sc_key_usable(L, m, p);
    return n;
}

/* Checks that n is a mapping whose keys are distinct scalars from valid
 * (NULL-terminated; NULL = any key). Reports every problem. Returns 0 when n
 * is a mapping, even with bad keys, so that its values are checked too. */
int sc_check_map(sc_loader *L, yaml_node_t *n, const char *path, const char *const *valid)
{
    char buf[SC_SHOWLEN];

    if (n->type != YAML_MAPPING_NODE) {
        sc_errn(L, n, "%s%sexpected a mapping, got %s", SC_PFX(path), sc_show(n, buf));
        return -1;
    }
    for (yaml_node_pair_t *p = n->data.mapping.pairs.start; p < n->data.mapping.pairs.top; p++) {
        yaml_node_t *k = sc_node(L, p->key), *first;
        if (k->type != YAML_SCALAR_NODE) {
            sc_errn(L, k, "%s%sexpected a plain key, got %s", SC_PFX(path), sc_show(k, buf));
            continue;
        }
        if ((first = earlier_key(L, n, p)) != NULL) {
            sc_errn(L, k, "%s%sduplicate key %s (first at line %zu)", SC_PFX(path), sc_show(k, buf),
                    first->start_mark.line + 1);
            continue;
        }
        if (valid) {
            const char *const *v = valid;
            while (*v && !scalar_is(k, *v, strlen(*v)))
                v++;
            if (*v == NULL) {
                char list[SC_LISTLEN];
                list_of(list, sizeof list, valid);
                sc_errn(L, k, "%s%sunknown key %s (valid keys: %s)", SC_PFX(path), sc_show(k, buf),
                        list);
            }
        }
    }
    return 0;
}

/* ---- scalar values ------------------------------------------------------ */

const char *sc_want_scalar(sc_loader *L, const yaml_node_t *n, const char *path, const char *what)
{
    char buf[SC_SHOWLEN];

    if (n->type != YAML_SCALAR_NODE) {
        sc_errn(L, n, "%s%sexpected %s, got %s", SC_PFX(path), what, sc_show(n, buf));
        return NULL;
    }
    const char *s = (const char *)n->data.scalar.value;
    if (strlen(s) != n->data.scalar.length) {
        sc_errn(L, n, "%s%sexpected %s, got a string with a NUL character", SC_PFX(path), what);
        return NULL;
    }
    return s;
}

int sc_want_str(sc_loader *L, const yaml_node_t *n, const char *path, int nonempty, char **out)
{
    char buf[SC_SHOWLEN];
    const char *s = sc_want_scalar(L, n, path, "a string");

    if (s == NULL)
        return -1;
    if (nonempty && *s == '\0') {
        sc_errn(L, n, "%s%sexpected a non-empty string, got %s", SC_PFX(path), sc_show(n, buf));
        return -1;
    }
    char *d = strdup(s);
    if (d == NULL) {
        sc_errn(L, n, "%s%sout of memory", SC_PFX(path));
        return -1;
    }
    free(*out);
    *out = d;
    return 0;
}

/* An integer in [min, max]: optional sign and decimal digits only. */
int sc_want_int(sc_loader *L, const yaml_node_t *n, const char *path, long long min,
                long long max, long long *out)
{
    char what[96], buf[SC_SHOWLEN];
    int r;

    if (max == INT_MAX || max == LLONG_MAX)
        r = snprintf(what, sizeof what, "an integer >= %lld", min);
    else
        r = snprintf(what, sizeof what, "an integer in [%lld, %lld]", min, max);
    (void)r;
    const char *s = sc_want_scalar(L, n, path, what);
    if (s == NULL)
        return -1;
    const char *d = s + (*s == '-' || *s == '+');
    int ok = *d != '\0';
    for (const char *c = d; *c; c++)
        ok = ok && isdigit((unsigned char)*c);
    errno = 0;
    long long v = ok ? strtoll(s, NULL, 10) : 0;
    if (!ok || v < min) {
        sc_errn(L, n, "%s%sexpected %s, got %s", SC_PFX(path), what, sc_show(n, buf));
        return -1;
    }
    if (errno == ERANGE || v > max) {
        sc_errn(L, n, "%s%sexpected %s, got %s (at most %lld)", SC_PFX(path), what,
                sc_show(n, buf), max);
        return -1;
    }
    *out = v;
    return 0;
}

int sc_want_intv(sc_loader *L, const yaml_node_t *n, const char *path, int min, int *out)
{
    long long v;
    if (sc_want_int(L, n, path, min, INT_MAX, &v))
        return -1;
    *out = (int)v;
    return 0;
}

/* A plain number in a range: lo (open or closed) and hi (INFINITY = none). */
int sc_want_num(sc_loader *L, const yaml_node_t *n, const char *path, double lo, int lo_open,
                double hi, int hi_open, double *out)
{
    char what[96], buf[SC_SHOWLEN];
    int r;

    if (isinf(hi))
        r = snprintf(what, sizeof what, "a number %s %g", lo_open ? ">" : ">=", lo);
    else
        r = snprintf(what, sizeof what, "a number in %c%g, %g%c", lo_open ? '(' : '[', lo, hi,
                     hi_open ? ')' : ']');
    (void)r;
    const char *s = sc_want_scalar(L, n, path, what);
    double v;
    if (s == NULL)
        return -1;
    if (sc_parse_number(s, &v) || (lo_open ? v <= lo : v < lo) || (hi_open ? v >= hi : v > hi)) {
        sc_errn(L, n, "%s%sexpected %s, got %s", SC_PFX(path), what, sc_show(n, buf));
        return -1;
    }
    *out = v;
    return 0;
}

/* A quantity with units; positive: > 0, else >= 0 (sc_unit_parser refuses < 0). */
int sc_want_unit(sc_loader *L, const yaml_node_t *n, const char *path, sc_unit_parser *parse,
                 const char *kind, const char *examples, int positive, double *out)
{
    char what[128], buf[SC_SHOWLEN];
    int r = snprintf(what, sizeof what, "a %s %s 0 (like %s)", kind, positive ? ">" : ">=", examples);
    const char *s;
    double v;

    (void)r;
    if ((s = sc_want_scalar(L, n, path, what)) == NULL)
        return -1;
    if (parse(s, &v) || (positive && v <= 0)) {
        sc_errn(L, n, "%s%sexpected %s, got %s", SC_PFX(path), what, sc_show(n, buf));
        return -1;
    }
    *out = v;
    return 0;
}

int sc_want_dur(sc_loader *L, const yaml_node_t *n, const char *path, int positive, double *out)
{
    return sc_want_unit(L, n, path, sc_parse_duration_s, "duration", "250ms, 1.5s, 2h", positive,
                        out);
}

/* Watts: a number >= 0 with an optional "W" suffix. */
int sc_want_watts(sc_loader *L, const yaml_node_t *n, const char *path, double *out)
{
    char buf[SC_SHOWLEN], num[64];
    const char *s = sc_want_scalar(L, n, path, "a power in watts >= 0 (like 700 or 700W)");
    double v;

    if (s == NULL)
        return -1;
    size_t len = strlen(s);
    if (len > 0 && s[len - 1] == 'W') {
        len--;
        while (len > 0 && s[len - 1] == ' ')
            len--;
    }
    int ok = len > 0 && len < sizeof num && s[0] != '-';
    if (ok) {
        memcpy(num, s, len);
        num[len] = '\0';
        ok = sc_parse_number(num, &v) == 0;
    }
    if (!ok) {
        sc_errn(L, n, "%s%sexpected a power in watts >= 0 (like 700 or 700W), got %s", SC_PFX(path),
                sc_show(n, buf));
        return -1;
    }
    *out = v;
    return 0;
}

int sc_want_enum(sc_loader *L, const yaml_node_t *n, const char *path, const char *const *names,
                 int *out)
{
    char list[SC_LISTLEN], what[SC_LISTLEN + 16], buf[SC_SHOWLEN];
    int r;

    list_of(list, sizeof list, names);
    r = snprintf(what, sizeof what, "one of %s", list);
    (void)r;
    const char *s = sc_want_scalar(L, n, path, what);
    if (s == NULL)
        return -1;
    for (int i = 0; names[i]; i++)
        if (strcmp(names[i], s) == 0) {
            *out = i;
            return 0;
        }
    sc_errn(L, n, "%s%sexpected %s, got %s", SC_PFX(path), what, sc_show(n, buf));
    return -1;
}

/* ---- files named in a scenario ------------------------------------------ */

/* Relative paths in the file are relative to the scenario's directory; a
 * path typed in an override is relative to the working directory, where the
 * user typed it. */
char *sc_resolve(const sc_loader *L, const yaml_node_t *n, const char *rel)
{
    if (rel[0] == '/' || sc_node_set(L, n) || L->dir == NULL)
        return strdup(rel);
    size_t len = strlen(L->dir) + strlen(rel) + 2;
    char *p = malloc(len);
    if (p) {
        int r = snprintf(p, len, "%s/%s", L->dir, rel);
        (void)r;
    }
    return p;
}

static char *dir_of(const char *path)
{
    const char *slash = strrchr(path, '/');
    if (slash == NULL)
        return strdup(".");
    if (slash == path)
        return strdup("/");
    size_t len = (size_t)(slash - path);
    char *d = malloc(len + 1);
    if (d) {
        memcpy(d, path, len);
        d[len] = '\0';
    }
    return d;
}

/* The first column of a CSV file as numbers. Blank lines are skipped; the
 * first non-blank line may be a header (it is skipped if it is not a number).
 * Returns 0, or -1 with a message in msg. */
int sc_read_column(const char *path, double **out, size_t *n_out, char *msg, size_t msglen)
{
    FILE *f = fopen(path, "r");
    char *line = NULL;
    size_t cap = 0, n = 0, alloc = 0, lineno = 0;
    double *v = NULL;
    int first = 1, rc = 0, r;

    if (f == NULL) {
        r = snprintf(msg, msglen, "cannot open: %s", strerror(errno));
        (void)r;
        return -1;
    }
    while (getline(&line, &cap, f) != -1) {
        lineno++;
        char *s = line, *e;
        while (*s == ' ' || *s == '\t')
            s++;
        e = s;
        while (*e && *e != ',' && *e != '\n' && *e != '\r')
            e++;
        while (e > s && (e[-1] == ' ' || e[-1] == '\t'))
            e--;
        char *rest = e;
        while (*rest == ' ' || *rest == '\t' || *rest == '\r' || *rest == '\n')
            rest++;
        if (e == s && *rest == '\0')
            continue; /* blank line */
        *e = '\0';
        double x;
        if (sc_parse_number(s, &x)) {
            if (first) {
                first = 0;
                continue; /* header */
            }
            r = snprintf(msg, msglen, "line %zu: expected a number in the first column, got \"%.40s\"",
                         lineno, s);
            (void)r;
            rc = -1;
            break;
        }
        first = 0;
        if (n == alloc) {
            size_t na = alloc ? alloc * 2 : 256;
            double *nv = realloc(v, na * sizeof *nv);
            if (nv == NULL) {
                r = snprintf(msg, msglen, "out of memory");
                (void)r;
                rc = -1;
                break;
            }
            v = nv;
            alloc = na;
        }
        v[n++] = x;
    }
    if (rc == 0 && ferror(f)) {
        r = snprintf(msg, msglen, "read error: %s", strerror(errno));
        (void)r;
        rc = -1;
    }
    if (rc == 0 && n == 0) {
        r = snprintf(msg, msglen, "no values (one number per line expected)");
        (void)r;
        rc = -1;
    }
    free(line);
    fclose(f);
    if (rc) {
        free(v);
        return -1;
    }
    *out = v;
    *n_out = n;
    return 0;
}

char *sc_read_file(const char *path, size_t *len_out)
{
    FILE *f = fopen(path, "rb");
    char *buf = NULL;
    size_t len = 0, cap = 0;

    if (f == NULL)
        return NULL;
    for (;;) {
        if (cap - len < 4096) {
            size_t nc = cap ? cap * 2 : 65536;
            char *nb = realloc(buf, nc + 1);
            if (nb == NULL) {
                free(buf);
                fclose(f);
                errno = ENOMEM;
                return NULL;
            }
            buf = nb;
            cap = nc;
        }
        size_t got = fread(buf + len, 1, cap - len, f);
        len += got;
        if (got == 0)
            break;
    }
    int bad = ferror(f);
    fclose(f);
    if (bad) {
        free(buf);
        errno = EIO;
        return NULL;
    }
    buf[len] = '\0';
    *len_out = len;
    return buf;
}

double sc_model_mean_s(const sc_model *m, int batch)
{
    if (m == NULL)
        return 0;
    const sc_calibration *c = m->calibration;
    if (c == NULL || c->n_points < 1)
        return m->base_s + m->per_item_s * batch;
    int n = c->n_points;
    if (batch < c->batch[0] || batch > c->batch[n - 1])
        return c->alpha_s + c->beta_s * batch;
    for (int i = 0; i + 1 < n; i++)
        if (batch <= c->batch[i + 1]) {
            double t = (double)(batch - c->batch[i]) / (double)(c->batch[i + 1] - c->batch[i]);
            return c->latency_s[i] + t * (c->latency_s[i + 1] - c->latency_s[i]);
        }
    return c->latency_s[n - 1]; /* n == 1 and batch == batch[0] */
}

/* ---- top level ---------------------------------------------------------- */

/* Scalar keys of the top-level mapping, parsed by load_top itself. */
static void check_size(sc_loader *L, yaml_node_t *root, const sc_scenario *sc);

static const char *const TOP_SCALARS[] = {"name", "description", "seed", "duration", "warmup",
                                          "interval", "start_time", NULL};
static const char *const TOP_REQUIRED[] = {"name", "duration", NULL};

/* The sections, in parse order: a section that refers to models or pools
 * comes after them. init (may be NULL) sets the section's defaults, whether
 * or not the file has the key; parse runs when it does. */
static const struct {
    const char *key;
    sc_section_fn *parse;
    void (*init)(sc_scenario *sc);
    int required;
} SECTIONS[] = {
    {"models", sc_parse_models, NULL, 1},
    {"pools", sc_parse_pools, NULL, 1},
    {"pipelines", sc_parse_pipelines, NULL, 0},
    {"routes", sc_parse_routes, NULL, 0},
    {"traffic", sc_parse_traffic, NULL, 1},
    {"load_balancer", sc_parse_lb, sc_lb_defaults, 0},
    {"slo", sc_parse_slo, NULL, 0},
    {"cost", sc_parse_cost, NULL, 0},
    {"autoscaler", sc_parse_autoscaler, NULL, 0},
    {"chaos", sc_parse_chaos, NULL, 0},
    {"hypothesis", sc_parse_hypothesis, NULL, 0},
    {"monitoring", sc_parse_monitoring, sc_monitoring_defaults, 0},
    {"simulation", sc_parse_simulation, sc_simulation_defaults, 0},
};
enum { N_SECTIONS = sizeof SECTIONS / sizeof SECTIONS[0],
       N_TOP_SCALARS = sizeof TOP_SCALARS / sizeof TOP_SCALARS[0] - 1 };

/* The name is the folder of `run`'s results (results/NAME) and of
 * compare's: one path component that stays inside results/. */
static void check_name(sc_loader *L, const yaml_node_t *n, const char *name)
{
    if (strchr(name, '/') || strchr(name, '\\') || name[0] == '.')
        sc_errn(L, n, "name: \"%s\" cannot name a results folder: no '/' or '\\', and no "
                "leading '.' (it is results/NAME)", name);
}

static void load_top(sc_loader *L, yaml_node_t *root, sc_scenario *sc)
{
    const char *keys[N_TOP_SCALARS + N_SECTIONS + 1];
    int nk = 0;

    for (const char *const *k = TOP_SCALARS; *k; k++)
        keys[nk++] = *k;
    for (size_t i = 0; i < N_SECTIONS; i++)
        keys[nk++] = SECTIONS[i].key;
    keys[nk] = NULL;

    sc->seed = 1;
    sc->interval_s = 60;
    for (size_t i = 0; i < N_SECTIONS; i++)
        if (SECTIONS[i].init)
            SECTIONS[i].init(sc);
    if (sc_check_map(L, root, "", keys))
        return;
    for (const char *const *r = TOP_REQUIRED; *r; r++)
        if (sc_find(L, root, *r).key == NULL)
            sc_errn(L, root, "missing required key %s", *r);
    for (size_t i = 0; i < N_SECTIONS; i++)
        if (SECTIONS[i].required && sc_find(L, root, SECTIONS[i].key).key == NULL)
            sc_errn(L, root, "missing required key %s", SECTIONS[i].key);

    sc_kv name = sc_find(L, root, "name"), desc = sc_find(L, root, "description");
    sc_kv seed = sc_find(L, root, "seed"), dur = sc_find(L, root, "duration");
    sc_kv warm = sc_find(L, root, "warmup"), intv = sc_find(L, root, "interval");

    if (name.val && sc_want_str(L, name.val, "name", 1, &sc->name) == 0)
        check_name(L, name.val, sc->name);
    if (desc.val)
        sc_want_str(L, desc.val, "description", 0, &sc->description);
    if (seed.val) {
        long long v;
        if (sc_want_int(L, seed.val, "seed", 0, LLONG_MAX, &v) == 0)
            sc->seed = (unsigned long)v;
    }
    int dur_ok = dur.val && sc_want_dur(L, dur.val, "duration", 1, &sc->duration_s) == 0;
    if (warm.val && sc_want_dur(L, warm.val, "warmup", 0, &sc->warmup_s) == 0 && dur_ok &&
        sc->warmup_s >= sc->duration_s) {
        char buf[SC_SHOWLEN];
        sc_errn(L, warm.val, "warmup: must be shorter than duration (%g s), got %s",
                sc->duration_s, sc_show(warm.val, buf));
    }
    if (intv.val)
        sc_want_dur(L, intv.val, "interval", 1, &sc->interval_s);
    sc_kv start = sc_find(L, root, "start_time");
    if (start.val) {
        const char *s = sc_want_scalar(L, start.val, "start_time",
                                       "a date and time like 2026-03-02T08:00:00Z");
        if (s && sc_parse_datetime(s, &sc->start_epoch_s, &sc->start_utc_offset_s) == 0)
            sc->has_start_time = 1;
        else if (s) {
            char buf[SC_SHOWLEN];
            sc_errn(L, start.val, "start_time: expected a date and time in UTC or with an offset, "
                    "like 2026-03-02T08:00:00Z or 2026-03-02T09:00:00+01:00 (year 1970 on), got %s",
                    sc_show(start.val, buf));
        }
    }
    for (size_t i = 0; i < N_SECTIONS; i++) {
        sc_kv s = sc_find(L, root, SECTIONS[i].key);
        if (s.val)
            SECTIONS[i].parse(L, s.val, sc);
    }
    sc_monitoring_finish(sc);
    if (L->n_errors == 0)
        check_size(L, root, sc);
}

/* ---- what a run will cost ----------------------------------------------- */

/* Requests traffic class c will generate: its rate integrated over the
 * run (a trace: its arrivals). */
static double class_requests(const sc_scenario *sc, int c)
{
    double total = 0;
    const sc_traffic *t = &sc->traffic[c];
    if (t->process == SC_ARR_TRACE)
        return (double)t->n_trace;
    if (t->repeat_s > 0) {
        sim_rate *r = sim_rate_new_repeating(t->rate, t->n_rate, t->repeat_s);
        if (r)
            total += sim_rate_cumulative(r, sc->duration_s);
        sim_rate_free(r);
        return total;
    }
    double q = 0, at = 0; /* the rate holds q from at, or ramps to the next */
    for (int i = 0; i < t->n_rate; i++) {
        const sc_rate_point *r = &t->rate[i];
        double a = fmin(r->at_s, sc->duration_s), ramp_end = fmin(r->at_s + r->ramp_s, sc->duration_s);
        total += q * (a - fmin(at, a));
        if (ramp_end > a) /* linear from q to r->qps over ramp_s, cut at the end */
            total += (ramp_end - a) * (q + (q + (r->qps - q) * (ramp_end - a) / r->ramp_s)) / 2;
        q = r->qps;
        at = fmax(a, ramp_end);
    }
    total += q * fmax(0, sc->duration_s - at);
    return total;
}

/* Requests the traffic will generate, every class's. */
static double expected_requests(const sc_scenario *sc)
{
    double total = 0;
    for (int c = 0; c < sc->n_traffic; c++)
        total += class_requests(sc, c);
    return total;
}

/* The node to blame for too many requests: the duration when an override
 * set it, else the highest rate of the class that sends the most (an
 * override's, when one set it). */
static const yaml_node_t *requests_node(sc_loader *L, yaml_node_t *root, const sc_scenario *sc)
{
    sc_kv dur = sc_find(L, root, "duration"), tr = sc_find(L, root, "traffic");
    if (dur.val && sc_node_set(L, dur.val))
        return dur.val;
    if (!tr.val || tr.val->type != YAML_SEQUENCE_NODE)
        return tr.val ? tr.val : root;
    int worst = 0;
    for (int c = 1; c < sc->n_traffic; c++)
        if (class_requests(sc, c) > class_requests(sc, worst))
            worst = c;
    long items = tr.val->data.sequence.items.top - tr.val->data.sequence.items.start;
    if (worst >= items)
        return tr.val;
    yaml_node_t *item = sc_node(L, tr.val->data.sequence.items.start[worst]);
    sc_kv arr = item->type == YAML_MAPPING_NODE ? sc_find(L, item, "arrivals") : (sc_kv){ 0 };
    sc_kv rate = arr.val && arr.val->type == YAML_MAPPING_NODE ? sc_find(L, arr.val, "rate")
                                                               : (sc_kv){ 0 };
    if (!rate.val)
        return item;
    if (rate.val->type != YAML_SEQUENCE_NODE)
        return rate.val;
    const yaml_node_t *best = rate.val;
    const sc_traffic *t = &sc->traffic[worst];
    double top = -1;
    long pts = rate.val->data.sequence.items.top - rate.val->data.sequence.items.start;
    for (long i = 0; i < pts && i < t->n_rate; i++) {
        yaml_node_t *pt = sc_node(L, rate.val->data.sequence.items.start[i]);
        sc_kv q = pt->type == YAML_MAPPING_NODE ? sc_find(L, pt, "qps") : (sc_kv){ 0 };
        if (q.val && t->rate[i].qps > top) {
            top = t->rate[i].qps;
            best = q.val;
        }
    }
    return best;
}

/* The node of pool p's replica count (max_replicas when it sets one). */
static const yaml_node_t *replicas_node(sc_loader *L, yaml_node_t *root, const char *pool)
{
    sc_kv pools = sc_find(L, root, "pools");
    sc_kv pn = pools.val ? sc_find(L, pools.val, pool) : (sc_kv){ 0 };
    if (!pn.val)
        return root;
    sc_kv r = sc_find(L, pn.val, "max_replicas");
    if (!r.val)
        r = sc_find(L, pn.val, "replicas");
    return r.val ? r.val : pn.val;
}

/* Refuses a scenario whose run cannot fit in this machine's memory or
 * could not finish, with the estimate and the key at fault: the time
 * series (duration / interval intervals, each a sample per pool), the
 * hosts (every node a pool may use), the requests. */
static void check_size(sc_loader *L, yaml_node_t *root, const sc_scenario *sc)
{
    const double NODE_BYTES = 2048;      /* a node's state, its server's and its results */
    const double MAX_REQUESTS = 1e13;    /* at 1 us each, four months of CPU */
    double intervals = ceil(sc->duration_s / sc->interval_s);
    double per_interval = (double)sizeof(rp_sample) + 48 +
                          (double)sc->n_pools * ((double)sizeof(rp_pool_sample) + 64);
    double series_bytes = intervals * per_interval;
    double hosts_bytes = 0, worst_pool_bytes = 0, all_slots = 0;
    int worst = -1;
    for (int k = 0; k < sc->n_pools; k++) {
        const sc_pool *pc = &sc->pools[k];
        double old = pc->max_replicas > pc->replicas ? pc->max_replicas : pc->replicas;
        double slots = pc->rollout.enabled ? 2 * old + pc->rollout.max_surge : old;
        double b = slots * NODE_BYTES;
        all_slots += slots;
        hosts_bytes += b;
        if (b > worst_pool_bytes) {
            worst_pool_bytes = b;
            worst = k;
        }
    }
    long pages = sysconf(_SC_PHYS_PAGES), page = sysconf(_SC_PAGE_SIZE);
    double mem = pages > 0 && page > 0 ? (double)pages * (double)page : 64e9;
    double total = series_bytes + hosts_bytes;
    if (total > 0.8 * mem) {
        char buf[SC_SHOWLEN];
        if (series_bytes >= hosts_bytes) {
            sc_kv d = sc_find(L, root, "duration");
            sc_errn(L, d.val ? d.val : root,
                    "duration: %s at an interval of %g s is %.3g intervals, about %.3g GB of "
                    "time series (%.3g GB in all), more than this machine's %.3g GB of memory "
                    "can hold; shorten the run or lengthen `interval`",
                    d.val ? sc_show(d.val, buf) : "", sc->interval_s, intervals, series_bytes / 1e9,
                    total / 1e9, mem / 1e9);
        } else {
            const yaml_node_t *n = replicas_node(L, root, sc->pools[worst].name);
            sc_errn(L, n,
                    "pools.%s: %s replicas need about %.3g GB of node state (%.3g GB in all), "
                    "more than this machine's %.3g GB of memory can hold",
                    sc->pools[worst].name, sc_show(n, buf), worst_pool_bytes / 1e9, total / 1e9,
                    mem / 1e9);
        }
    }
    /* each node slot has a random stream of its own (eng_stream) */
    if (total <= 0.8 * mem && all_slots > SC_MAX_NODE_SLOTS) {
        const sc_pool *pc = &sc->pools[worst];
        sc_errn(L, replicas_node(L, root, pc->name),
                "pools.%s: %d replicas make %.0f node slots in all pools (a rollout counts each "
                "twice, plus its surge), more than the %d a run can hold",
                pc->name, pc->max_replicas > pc->replicas ? pc->max_replicas : pc->replicas,
                all_slots, SC_MAX_NODE_SLOTS);
    }
    double requests = expected_requests(sc);
    if (requests > MAX_REQUESTS) {
        sc_errn(L, requests_node(L, root, sc),
                "traffic: about %.3g requests over %g s, more than a run can simulate (%.0e, "
                "months of CPU at a microsecond each); lower the rates or shorten the run",
                requests, sc->duration_s, MAX_REQUESTS);
    }
}

double sc_expected_requests(const sc_scenario *sc)
{
    return expected_requests(sc);
}

/* ---- overrides ---------------------------------------------------------- */

/* Adds a node made by override set; its mark is column col (1-based). */
static int add_node(sc_loader *L, int set, size_t col, yaml_node_type_t type, const char *text,
                    size_t len)
{
    int id;

    if (L->n_set_of == L->cap_set_of) {
        int nc = L->cap_set_of ? L->cap_set_of * 2 : 16;
        int *ns = realloc(L->set_of, (size_t)nc * sizeof *ns);
        if (ns == NULL)
            return 0;
        L->set_of = ns;
        L->cap_set_of = nc;
    }
    if (type == YAML_SCALAR_NODE)
        id = yaml_document_add_scalar(&L->doc, NULL, (yaml_char_t *)text, (int)len,
                                      YAML_PLAIN_SCALAR_STYLE);
    else
        id = yaml_document_add_mapping(&L->doc, NULL, YAML_BLOCK_MAPPING_STYLE);
    if (id == 0)
        return 0;
    /* Every added node gets an entry, so set_of stays indexed by node id. */
    if (id - L->n_file_nodes - 1 != L->n_set_of)
        return 0;
    L->set_of[L->n_set_of++] = set;
    yaml_node_t *n = sc_node(L, id);
    n->start_mark.line = n->end_mark.line = 0;
    n->start_mark.column = n->end_mark.column = col - 1;
    return id;
}

static void apply_override(sc_loader *L, int set, const char *s)
{
    if (s == NULL || *s == '\0') {
        sc_errset(L, set, 1, "empty override (expected key.path=value)");
        return;
    }
    const char *eq = strchr(s, '=');
    if (eq == NULL) {
        sc_errset(L, set, 1, "expected key.path=value, got \"%.60s\"", s);
        return;
    }
    if (eq == s) {
        sc_errset(L, set, 1, "empty key path before '='");
        return;
    }
    /* Refuse a malformed path before changing anything. */
    for (const char *c = s; c <= eq; c++)
        if ((*c == '.' || c == eq) && (c == s || c[-1] == '.')) {
            sc_errset(L, set, (size_t)(c - s) + 1, "empty segment in key path \"%.*s\"",
                      (int)(eq - s), s);
            return;
        }
    const char *value = eq + 1;
    size_t vcol = (size_t)(value - s) + 1;
    int cur = 1; /* root */
    const char *seg = s;

    for (;;) {
        const char *end = seg;
        while (end < eq && *end != '.')
            end++;
        size_t len = (size_t)(end - seg), col = (size_t)(seg - s) + 1;
        int last = end == eq;
        int prefix = seg > s ? (int)(seg - s) - 1 : 0; /* path before this segment */
        yaml_node_t *n = sc_node(L, cur);
        if (n->type == YAML_MAPPING_NODE) {
            yaml_node_pair_t *found = NULL;
            for (yaml_node_pair_t *p = n->data.mapping.pairs.start; p < n->data.mapping.pairs.top; p++)
                if (scalar_is(sc_node(L, p->key), seg, len)) {
                    found = p;
                    break;
                }
            if (found && !last) {
                cur = found->value;
            } else {
                long at = found ? found - n->data.mapping.pairs.start : -1;
                int vid = last ? add_node(L, set, vcol, YAML_SCALAR_NODE, value, strlen(value))
                               : add_node(L, set, col, YAML_MAPPING_NODE, NULL, 0);
                int kid = found ? 1 : add_node(L, set, col, YAML_SCALAR_NODE, seg, len);
                if (vid == 0 || kid == 0) {
                    sc_errset(L, set, vid ? col : vcol, "cannot use this text (not valid UTF-8?)");
                    return;
                }
                n = sc_node(L, cur); /* adding nodes may have moved it */
                if (at >= 0)
                    n->data.mapping.pairs.start[at].value = vid;
                else if (!yaml_document_append_mapping_pair(&L->doc, cur, kid, vid)) {
                    sc_errset(L, set, col, "out of memory");
                    return;
                }
                cur = vid;
            }
        } else if (n->type == YAML_SEQUENCE_NODE) {
            long cnt = n->data.sequence.items.top - n->data.sequence.items.start, idx = -1;
            int digits = 1;
            for (size_t i = 0; i < len; i++)
                digits = digits && isdigit((unsigned char)seg[i]);
            if (digits) {
                idx = len < 10 ? atol(seg) : LONG_MAX; /* atol stops at the '.' or '=' */
                if (idx >= cnt) {
                    sc_errset(L, set, col, "index %.*s out of range: \"%.*s\" has %ld item%s",
                              (int)len, seg, prefix, s, cnt, cnt == 1 ? "" : "s");
                    return;
                }
            } else {
                char names[SC_LISTLEN] = "";
                for (long i = 0; i < cnt && idx < 0; i++) {
                    yaml_node_t *it = sc_node(L, n->data.sequence.items.start[i]);
                    if (it->type != YAML_MAPPING_NODE)
                        continue;
                    sc_kv nm = sc_find(L, it, "name");
                    if (nm.val && nm.val->type == YAML_SCALAR_NODE) {
                        if (scalar_is(nm.val, seg, len))
                            idx = i;
                        else
                            sc_list_add(names, sizeof names,
                                        (const char *)nm.val->data.scalar.value);
                    }
                }
                if (idx < 0) {
                    sc_errset(L, set, col, "no item named \"%.*s\" in \"%.*s\" (names: %s; or use "
                              "a 0-based index)", (int)len, seg, prefix, s,
                              *names ? names : "none");
                    return;
                }
            }
            if (!last) {
                cur = n->data.sequence.items.start[idx];
            } else {
                int vid = add_node(L, set, vcol, YAML_SCALAR_NODE, value, strlen(value));
                if (vid == 0) {
                    sc_errset(L, set, vcol, "cannot use this text (not valid UTF-8?)");
                    return;
                }
                n = sc_node(L, cur);
                n->data.sequence.items.start[idx] = vid;
            }
        } else {
            sc_errset(L, set, col, "\"%.*s\" is a scalar: cannot set \"%.*s\" inside it", prefix, s,
                      (int)len, seg);
            return;
        }
        if (last)
            return;
        seg = end + 1;
    }
}

/* ---- entry points ------------------------------------------------------- */

static void parser_error(sc_loader *L, const yaml_parser_t *p)
{
    const char *problem = p->problem ? p->problem : "cannot parse YAML";
    yaml_mark_t m = p->problem_mark;

    if (p->error == YAML_READER_ERROR) {
        m = p->mark;
        fprintf(L->err, "%s:%zu:%zu: %s (byte offset %zu)\n", L->file, m.line + 1, m.column + 1,
                problem, p->problem_offset);
    } else if (p->context) {
        fprintf(L->err, "%s:%zu:%zu: %s %s (line %zu, column %zu)\n", L->file, m.line + 1,
                m.column + 1, problem, p->context, p->context_mark.line + 1,
                p->context_mark.column + 1);
    } else {
        fprintf(L->err, "%s:%zu:%zu: %s\n", L->file, m.line + 1, m.column + 1, problem);
    }
    L->n_errors++;
}

sc_scenario *sc_load(const char *path, const char *const *overrides, int n_overrides, FILE *err)
{
    return sc_load_named(path, overrides, NULL, n_overrides, err);
}

sc_scenario *sc_load_named(const char *path, const char *const *overrides,
                           const char *const *names, int n_overrides, FILE *err)
{
    sc_loader L;
    yaml_parser_t parser;
    sc_scenario *sc = NULL;

    memset(&L, 0, sizeof L);
    L.set_names = names;
    L.err = err ? err : stderr;
    L.file = path ? path : "(null)";
    FILE *f = path ? fopen(path, "rb") : NULL;
    if (f == NULL) {
        fprintf(L.err, "%s: cannot open scenario: %s\n", L.file, path ? strerror(errno) : "no path");
        return NULL;
    }
    struct stat st;
    if (fstat(fileno(f), &st) == 0 && S_ISDIR(st.st_mode)) {
        fprintf(L.err, "%s: is a directory, not a scenario file (give its .yaml file)\n", L.file);
        fclose(f);
        return NULL;
    }
    if (!yaml_parser_initialize(&parser)) {
        fprintf(L.err, "%s: out of memory\n", L.file);
        fclose(f);
        return NULL;
    }
    yaml_parser_set_input_file(&parser, f);
    if (!yaml_parser_load(&parser, &L.doc)) {
        parser_error(&L, &parser);
        yaml_parser_delete(&parser);
        fclose(f);
        return NULL;
    }
    yaml_document_t extra;
    if (yaml_parser_load(&parser, &extra)) {
        if (yaml_document_get_root_node(&extra))
            fprintf(L.err, "%s:%zu:%zu: a scenario is one YAML document; found another here\n",
                    L.file, extra.start_mark.line + 1, extra.start_mark.column + 1),
                L.n_errors++;
        yaml_document_delete(&extra);
    } else {
        parser_error(&L, &parser);
    }
    yaml_parser_delete(&parser);
    fclose(f);

    L.n_file_nodes = (int)(L.doc.nodes.top - L.doc.nodes.start);
    yaml_node_t *root = yaml_document_get_root_node(&L.doc);
    if (root == NULL) {
        fprintf(L.err, "%s:1:1: empty scenario (expected a mapping with name, duration, models, "
                "pools, traffic)\n", L.file);
        L.n_errors++;
        goto done;
    }
    if (root->type != YAML_MAPPING_NODE) {
        char buf[SC_SHOWLEN];
        sc_errn(&L, root, "expected a mapping of scenario keys at top level, got %s",
                sc_show(root, buf));
        goto done;
    }
    for (int i = 0; overrides && i < n_overrides; i++)
        apply_override(&L, i + 1, overrides[i]);
    root = yaml_document_get_root_node(&L.doc);

    sc = calloc(1, sizeof *sc);
    L.dir = dir_of(path);
    if (sc == NULL || L.dir == NULL || (sc->file = strdup(path)) == NULL ||
        (sc->dir = strdup(L.dir)) == NULL) {
        fprintf(L.err, "%s: out of memory\n", L.file);
        L.n_errors++;
        goto done;
    }
    load_top(&L, root, sc);
done:
    yaml_document_delete(&L.doc);
    free(L.dir);
    free(L.set_of);
    if (L.n_hidden)
        fprintf(L.err, "%s: %d more errors not shown (%d in all)\n", L.file, L.n_hidden,
                L.n_errors);
    if (L.n_errors) {
        sc_free(sc);
        return NULL;
    }
    return sc;
}

void sc_free(sc_scenario *sc)
{
    if (sc == NULL)
        return;
    for (int i = 0; i < sc->n_models; i++) {
        free(sc->models[i].name);
        free(sc->models[i].noise.samples);
        sc_free_calibration(sc->models[i].calibration);
        sc_free_llm(sc->models[i].llm);
    }
    for (int i = 0; i < sc->n_pools; i++) {
        free(sc->pools[i].name);
        free(sc->pools[i].power.gpu_type);
        free(sc->pools[i].zone);
        free(sc->pools[i].lb_policy);
        free(sc->pools[i].decode_router);
        free(sc->pools[i].rollout.power.gpu_type);
        free(sc->pools[i].gpu_name);
    }
    for (int i = 0; i < sc->n_traffic; i++) {
        free(sc->traffic[i].name);
        free(sc->traffic[i].rate);
        free(sc->traffic[i].trace_s);
        free(sc->traffic[i].path);
        free(sc->traffic[i].failover);
        sc_free_tokens(&sc->traffic[i]);
    }
    sc_free_pipelines(sc);
    sc_free_tiers(sc);
    sc_free_chaos(sc);
    sc_free_autoscalers(sc);
    sc_free_monitoring(sc);
    free(sc->dir);
    free(sc->models);
    free(sc->pools);
    free(sc->traffic);
    free(sc->lb.policy);
    for (int i = 0; i < sc->lb.n_servers; i++)
        free(sc->lb.servers[i].name);
    free(sc->lb.servers);
    free(sc->lb.nginx_path);
    free(sc->lb.dw_rules);
    free(sc->lb.upstream);
    free(sc->file);
    free(sc->name);
    free(sc->description);
    free(sc);
}

