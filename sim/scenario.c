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
 * scenarios/README.md; keep it in step with the key tables here.
 *
 * Known limits: one YAML document per file; no merge keys (`<<` is an
 * unknown key); anchors and aliases work (an alias shares its node, so an
 * override through an alias changes every place that uses it).
 */
#include "scenario.h"

#include "lb.h"

#include <cjson/cJSON.h>
#include <yaml.h>

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

enum { PATHLEN = 256, LISTLEN = 512, SHOWLEN = 64 };

/* Loader state: the document, where its nodes came from, the error count. */
typedef struct {
    FILE *err;
    const char *file;        /* as given to sc_load, for messages */
    char *dir;               /* the file's directory, for relative paths */
    yaml_document_t doc;
    int n_file_nodes;        /* nodes 1..n came from the file */
    int *set_of;             /* later nodes: the override (1-based) that made them */
    int n_set_of, cap_set_of;
    int n_errors;
} ld;

typedef struct {
    yaml_node_t *key;
    yaml_node_t *val;
} kv;

/* ---- messages ----------------------------------------------------------- */

static yaml_node_t *node_of(ld *L, int id)
{
    return yaml_document_get_node(&L->doc, id);
}

/* 0 for a node read from the file, else the override that created it. */
static int node_set(const ld *L, const yaml_node_t *n)
{
    long id = (long)(n - L->doc.nodes.start) + 1;
    long k = id - L->n_file_nodes - 1;

    if (k < 0 || k >= L->n_set_of)
        return 0;
    return L->set_of[k];
}

/* Prints one message line; control characters (from quoted keys, say) are
 * replaced so that each error stays on one line. */
static void emit(ld *L, const char *where, const char *fmt, va_list ap)
{
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

static void where_of(const ld *L, const yaml_node_t *n, char *buf, size_t len)
{
    int set = n ? node_set(L, n) : 0;
    int r;

    if (set)
        r = snprintf(buf, len, "--set[%d]:1:%zu", set, n->start_mark.column + 1);
    else if (n)
        r = snprintf(buf, len, "%s:%zu:%zu", L->file, n->start_mark.line + 1,
                     n->start_mark.column + 1);
    else
        r = snprintf(buf, len, "%s:1:1", L->file);
    (void)r;
}

/* Error at node n (its line:col, or its override's column). */
static void errn(ld *L, const yaml_node_t *n, const char *fmt, ...)
{
    char where[PATHLEN + 64];
    va_list ap;

    where_of(L, n, where, sizeof where);
    va_start(ap, fmt);
    emit(L, where, fmt, ap);
    va_end(ap);
}

/* Error in override number set, at 1-based column col of its text. */
static void errset(ld *L, int set, size_t col, const char *fmt, ...)
{
    char where[64];
    va_list ap;
    int r = snprintf(where, sizeof where, "--set[%d]:1:%zu", set, col);

    (void)r;
    va_start(ap, fmt);
    emit(L, where, fmt, ap);
    va_end(ap);
}

/* "pools.gpu" + "replicas" -> "pools.gpu.replicas" (truncated if huge). */
static const char *join(char *buf, const char *a, const char *b)
{
    int r = snprintf(buf, PATHLEN, "%s%s%s", a, *a ? "." : "", b);
    (void)r;
    return buf;
}

/* "path: " or "" at top level, for message prefixes. */
#define PFX(path) (path), (*(path) ? ": " : "")

/* How a node reads in "got ...": "\"text\"", "a mapping", "a sequence". */
static const char *show(const yaml_node_t *n, char buf[SHOWLEN])
{
    if (n->type == YAML_MAPPING_NODE)
        return "a mapping";
    if (n->type == YAML_SEQUENCE_NODE)
        return "a sequence";
    size_t len = n->data.scalar.length, max = SHOWLEN - 6, i, o = 0;
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

static void list_add(char *buf, size_t cap, const char *name)
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
        list_add(buf, cap, *names);
}

/* ---- tree access -------------------------------------------------------- */

static int scalar_is(const yaml_node_t *n, const char *s, size_t len)
{
    return n->type == YAML_SCALAR_NODE && n->data.scalar.length == len &&
           memcmp(n->data.scalar.value, s, len) == 0;
}

/* First pair of mapping m whose key is name (m must be a mapping). */
static kv find(ld *L, const yaml_node_t *m, const char *name)
{
    kv r = {NULL, NULL};
    size_t len = strlen(name);

    for (yaml_node_pair_t *p = m->data.mapping.pairs.start; p < m->data.mapping.pairs.top; p++) {
        yaml_node_t *k = node_of(L, p->key);
        if (k && scalar_is(k, name, len)) {
            r.key = k;
            r.val = node_of(L, p->value);
            return r;
        }
    }
    return r;
}

/* The earlier pair of m with the same scalar key as pair p, if any. */
static yaml_node_t *earlier_key(ld *L, const yaml_node_t *m, const yaml_node_pair_t *p)
{
    yaml_node_t *k = node_of(L, p->key);

    for (yaml_node_pair_t *q = m->data.mapping.pairs.start; q < p; q++) {
        yaml_node_t *e = node_of(L, q->key);
        if (e && e->type == YAML_SCALAR_NODE &&
            scalar_is(k, (const char *)e->data.scalar.value, e->data.scalar.length))
            return e;
    }
    return NULL;
}

/* A usable key: a scalar, not a repeat of an earlier key (those are
 * reported by check_map and then skipped). */
static int key_usable(ld *L, const yaml_node_t *m, const yaml_node_pair_t *p)
{
    yaml_node_t *k = node_of(L, p->key);
    return k && k->type == YAML_SCALAR_NODE && earlier_key(L, m, p) == NULL;
}

/* Checks that n is a mapping whose keys are distinct scalars from valid
 * (NULL-terminated; NULL = any key). Reports every problem. Returns 0 when n
 * is a mapping, even with bad keys, so that its values are checked too. */
static int check_map(ld *L, yaml_node_t *n, const char *path, const char *const *valid)
{
    char buf[SHOWLEN];

    if (n->type != YAML_MAPPING_NODE) {
        errn(L, n, "%s%sexpected a mapping, got %s", PFX(path), show(n, buf));
        return -1;
    }
    for (yaml_node_pair_t *p = n->data.mapping.pairs.start; p < n->data.mapping.pairs.top; p++) {
        yaml_node_t *k = node_of(L, p->key), *first;
        if (k->type != YAML_SCALAR_NODE) {
            errn(L, k, "%s%sexpected a plain key, got %s", PFX(path), show(k, buf));
            continue;
        }
        if ((first = earlier_key(L, n, p)) != NULL) {
            errn(L, k, "%s%sduplicate key %s (first at line %zu)", PFX(path), show(k, buf),
                 first->start_mark.line + 1);
            continue;
        }
        if (valid) {
            const char *const *v = valid;
            while (*v && !scalar_is(k, *v, strlen(*v)))
                v++;
            if (*v == NULL) {
                char list[LISTLEN];
                list_of(list, sizeof list, valid);
                errn(L, k, "%s%sunknown key %s (valid keys: %s)", PFX(path), show(k, buf), list);
            }
        }
    }
    return 0;
}

/* ---- scalar values ------------------------------------------------------ */

static const char *want_scalar(ld *L, const yaml_node_t *n, const char *path, const char *what)
{
    char buf[SHOWLEN];

    if (n->type != YAML_SCALAR_NODE) {
        errn(L, n, "%s%sexpected %s, got %s", PFX(path), what, show(n, buf));
        return NULL;
    }
    const char *s = (const char *)n->data.scalar.value;
    if (strlen(s) != n->data.scalar.length) {
        errn(L, n, "%s%sexpected %s, got a string with a NUL character", PFX(path), what);
        return NULL;
    }
    return s;
}

static int want_str(ld *L, const yaml_node_t *n, const char *path, int nonempty, char **out)
{
    char buf[SHOWLEN];
    const char *s = want_scalar(L, n, path, "a string");

    if (s == NULL)
        return -1;
    if (nonempty && *s == '\0') {
        errn(L, n, "%s%sexpected a non-empty string, got %s", PFX(path), show(n, buf));
        return -1;
    }
    char *d = strdup(s);
    if (d == NULL) {
        errn(L, n, "%s%sout of memory", PFX(path));
        return -1;
    }
    free(*out);
    *out = d;
    return 0;
}

/* An integer in [min, max]: optional sign and decimal digits only. */
static int want_int(ld *L, const yaml_node_t *n, const char *path, long long min,
                    long long max, long long *out)
{
    char what[96], buf[SHOWLEN];
    int r;

    if (max == INT_MAX || max == LLONG_MAX)
        r = snprintf(what, sizeof what, "an integer >= %lld", min);
    else
        r = snprintf(what, sizeof what, "an integer in [%lld, %lld]", min, max);
    (void)r;
    const char *s = want_scalar(L, n, path, what);
    if (s == NULL)
        return -1;
    const char *d = s + (*s == '-' || *s == '+');
    int ok = *d != '\0';
    for (const char *c = d; *c; c++)
        ok = ok && isdigit((unsigned char)*c);
    errno = 0;
    long long v = ok ? strtoll(s, NULL, 10) : 0;
    if (!ok || v < min) {
        errn(L, n, "%s%sexpected %s, got %s", PFX(path), what, show(n, buf));
        return -1;
    }
    if (errno == ERANGE || v > max) {
        errn(L, n, "%s%sexpected %s, got %s (at most %lld)", PFX(path), what, show(n, buf), max);
        return -1;
    }
    *out = v;
    return 0;
}

static int want_intv(ld *L, const yaml_node_t *n, const char *path, int min, int *out)
{
    long long v;
    if (want_int(L, n, path, min, INT_MAX, &v))
        return -1;
    *out = (int)v;
    return 0;
}

/* A plain number in a range: lo (open or closed) and hi (INFINITY = none). */
static int want_num(ld *L, const yaml_node_t *n, const char *path, double lo, int lo_open,
                    double hi, int hi_open, double *out)
{
    char what[96], buf[SHOWLEN];
    int r;

    if (isinf(hi))
        r = snprintf(what, sizeof what, "a number %s %g", lo_open ? ">" : ">=", lo);
    else
        r = snprintf(what, sizeof what, "a number in %c%g, %g%c", lo_open ? '(' : '[', lo, hi,
                     hi_open ? ')' : ']');
    (void)r;
    const char *s = want_scalar(L, n, path, what);
    double v;
    if (s == NULL)
        return -1;
    if (sc_parse_number(s, &v) || (lo_open ? v <= lo : v < lo) || (hi_open ? v >= hi : v > hi)) {
        errn(L, n, "%s%sexpected %s, got %s", PFX(path), what, show(n, buf));
        return -1;
    }
    *out = v;
    return 0;
}

typedef int parse_fn(const char *text, double *out);

/* A quantity with units; positive: > 0, else >= 0 (parse_fn refuses < 0). */
static int want_unit(ld *L, const yaml_node_t *n, const char *path, parse_fn *parse,
                     const char *kind, const char *examples, int positive, double *out)
{
    char what[128], buf[SHOWLEN];
    int r = snprintf(what, sizeof what, "a %s %s 0 (like %s)", kind, positive ? ">" : ">=", examples);
    const char *s;
    double v;

    (void)r;
    if ((s = want_scalar(L, n, path, what)) == NULL)
        return -1;
    if (parse(s, &v) || (positive && v <= 0)) {
        errn(L, n, "%s%sexpected %s, got %s", PFX(path), what, show(n, buf));
        return -1;
    }
    *out = v;
    return 0;
}

static int want_dur(ld *L, const yaml_node_t *n, const char *path, int positive, double *out)
{
    return want_unit(L, n, path, sc_parse_duration_s, "duration", "250ms, 1.5s, 2h", positive,
                     out);
}

/* Watts: a number >= 0 with an optional "W" suffix. */
static int want_watts(ld *L, const yaml_node_t *n, const char *path, double *out)
{
    char buf[SHOWLEN], num[64];
    const char *s = want_scalar(L, n, path, "a power in watts >= 0 (like 700 or 700W)");
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
        errn(L, n, "%s%sexpected a power in watts >= 0 (like 700 or 700W), got %s", PFX(path),
             show(n, buf));
        return -1;
    }
    *out = v;
    return 0;
}

static int want_enum(ld *L, const yaml_node_t *n, const char *path, const char *const *names,
                     int *out)
{
    char list[LISTLEN], what[LISTLEN + 16], buf[SHOWLEN];
    int r;

    list_of(list, sizeof list, names);
    r = snprintf(what, sizeof what, "one of %s", list);
    (void)r;
    const char *s = want_scalar(L, n, path, what);
    if (s == NULL)
        return -1;
    for (int i = 0; names[i]; i++)
        if (strcmp(names[i], s) == 0) {
            *out = i;
            return 0;
        }
    errn(L, n, "%s%sexpected %s, got %s", PFX(path), what, show(n, buf));
    return -1;
}

/* ---- files named in a scenario ------------------------------------------ */

/* Relative paths in the file are relative to the scenario's directory; a
 * path typed in an override is relative to the working directory, where the
 * user typed it. */
static char *resolve(const ld *L, const yaml_node_t *n, const char *rel)
{
    if (rel[0] == '/' || node_set(L, n) || L->dir == NULL)
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
static int read_column(const char *path, double **out, size_t *n_out, char *msg, size_t msglen)
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

/* Empirical samples: latencies >= 0 with mean > 0, stored divided by their
 * mean. raw_mean gets the mean before that. */
static int load_samples(ld *L, const yaml_node_t *n, const char *path, sc_dist *d, double *raw_mean)
{
    char msg[256];
    const char *rel = want_scalar(L, n, path, "a CSV file path");
    double *v = NULL, sum = 0;
    size_t cnt = 0;

    if (rel == NULL)
        return -1;
    char *file = resolve(L, n, rel);
    if (file == NULL || read_column(file, &v, &cnt, msg, sizeof msg)) {
        errn(L, n, "%s: samples file \"%s\": %s", path, rel, file ? msg : "out of memory");
        free(file);
        return -1;
    }
    free(file);
    for (size_t i = 0; i < cnt; i++) {
        if (v[i] < 0) {
            errn(L, n, "%s: samples file \"%s\": value %zu is negative (%g)", path, rel, i + 1, v[i]);
            free(v);
            return -1;
        }
        sum += v[i];
    }
    double mean = sum / (double)cnt;
    if (!(mean > 0) || !isfinite(mean)) {
        errn(L, n, "%s: samples file \"%s\": the mean must be finite and > 0", path, rel);
        free(v);
        return -1;
    }
    for (size_t i = 0; i < cnt; i++)
        v[i] /= mean;
    free(d->samples);
    d->samples = v;
    d->n_samples = cnt;
    *raw_mean = mean;
    return 0;
}

static char *read_file(const char *path, size_t *len_out)
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

/* ---- calibration profile ------------------------------------------------ */

#define CALIB_SCHEMA "fleetsim-calibration/1"

static void free_calibration(sc_calibration *c)
{
    if (c == NULL)
        return;
    free(c->path);
    free(c->precision);
    free(c->batch);
    free(c->latency_s);
    free(c);
}

/* Fills c from one entry of the profile's "precisions"; NULL or a problem. */
static const char *calib_points(const cJSON *pr, sc_calibration *c)
{
    const cJSON *batch = cJSON_GetObjectItemCaseSensitive(pr, "batch");
    const cJSON *lat = cJSON_GetObjectItemCaseSensitive(pr, "latency_s");
    const cJSON *fit = cJSON_GetObjectItemCaseSensitive(pr, "fit");

    if (!cJSON_IsArray(batch) || !cJSON_IsArray(lat))
        return "needs arrays \"batch\" and \"latency_s\"";
    int n = cJSON_GetArraySize(batch);
    if (n < 1 || n != cJSON_GetArraySize(lat))
        return "\"batch\" and \"latency_s\" must be non-empty and of the same length";
    if (!cJSON_IsObject(fit))
        return "needs an object \"fit\" with alpha_s and beta_s";
    const cJSON *a = cJSON_GetObjectItemCaseSensitive(fit, "alpha_s");
    const cJSON *b = cJSON_GetObjectItemCaseSensitive(fit, "beta_s");
    if (!cJSON_IsNumber(a) || !cJSON_IsNumber(b) || !isfinite(a->valuedouble) ||
        !isfinite(b->valuedouble))
        return "fit.alpha_s and fit.beta_s must be finite numbers";
    c->batch = calloc((size_t)n, sizeof *c->batch);
    c->latency_s = calloc((size_t)n, sizeof *c->latency_s);
    if (c->batch == NULL || c->latency_s == NULL)
        return "out of memory";
    for (int i = 0; i < n; i++) {
        const cJSON *bi = cJSON_GetArrayItem(batch, i), *li = cJSON_GetArrayItem(lat, i);
        if (!cJSON_IsNumber(bi) || !(bi->valuedouble >= 1) || bi->valuedouble > INT_MAX ||
            bi->valuedouble != floor(bi->valuedouble))
            return "\"batch\" must hold integers >= 1";
        c->batch[i] = (int)bi->valuedouble;
        if (i > 0 && c->batch[i] <= c->batch[i - 1])
            return "\"batch\" must be strictly ascending";
        if (!cJSON_IsNumber(li) || !(li->valuedouble > 0) || !isfinite(li->valuedouble))
            return "\"latency_s\" must hold finite numbers > 0";
        c->latency_s[i] = li->valuedouble;
    }
    c->n_points = n;
    c->alpha_s = a->valuedouble;
    c->beta_s = b->valuedouble;
    return NULL;
}

/* service.calibration + service.precision. Errors sit at the key, or at the
 * value when an override supplied it. The fit is used outside the measured
 * batches, so it must give a positive latency for every batch size from 1 to
 * max_batch (a linear fit: checking both ends is enough). */
static int load_calibration(ld *L, const char *path, kv cal, kv prec, int max_batch, sc_model *m)
{
    char cpath[PATHLEN], ppath[PATHLEN], list[LISTLEN];
    const yaml_node_t *cat = node_set(L, cal.val) ? cal.val : cal.key;
    const char *rel = want_scalar(L, cal.val, join(cpath, path, "calibration"), "a file path");
    int rc = -1;

    if (rel == NULL)
        return -1;
    char *file = resolve(L, cal.val, rel);
    size_t len = 0;
    char *text = file ? read_file(file, &len) : NULL;
    if (text == NULL) {
        errn(L, cat, "%s: cannot read calibration profile \"%s\": %s", cpath, rel,
             strerror(file ? errno : ENOMEM));
        free(file);
        return -1;
    }
    free(file);
    cJSON *root = cJSON_ParseWithLength(text, len);
    const cJSON *schema = root ? cJSON_GetObjectItemCaseSensitive(root, "schema") : NULL;
    const cJSON *precs = root ? cJSON_GetObjectItemCaseSensitive(root, "precisions") : NULL;
    if (root == NULL) {
        errn(L, cat, "%s: calibration profile \"%s\" is not valid JSON", cpath, rel);
        goto out;
    }
    if (!cJSON_IsString(schema) || strcmp(schema->valuestring, CALIB_SCHEMA) != 0 ||
        !cJSON_IsObject(precs)) {
        errn(L, cat, "%s: \"%s\" is not a calibration profile (needs \"schema\": \"%s\" and "
             "an object \"precisions\")", cpath, rel, CALIB_SCHEMA);
        goto out;
    }
    list[0] = '\0';
    for (const cJSON *p = precs->child; p; p = p->next)
        list_add(list, sizeof list, p->string ? p->string : "");
    if (prec.val == NULL) {
        errn(L, cat, "%s: calibration needs precision: one of %s (from \"%s\")", path,
             *list ? list : "(none in the profile)", rel);
        goto out;
    }
    const char *pname = want_scalar(L, prec.val, join(ppath, path, "precision"), "a string");
    if (pname == NULL)
        goto out;
    const cJSON *pr = cJSON_GetObjectItemCaseSensitive(precs, pname);
    const yaml_node_t *pat = node_set(L, prec.val) ? prec.val : prec.key;
    if (pr == NULL) {
        errn(L, pat, "%s: precision \"%s\" is not in \"%s\" (present: %s)", ppath, pname, rel,
             *list ? list : "none");
        goto out;
    }
    sc_calibration *c = calloc(1, sizeof *c);
    const char *problem = c ? calib_points(pr, c) : "out of memory";
    if (problem == NULL) {
        c->path = strdup(rel);
        c->precision = strdup(pname);
        if (c->path == NULL || c->precision == NULL)
            problem = "out of memory";
    }
    char fitmsg[160];
    for (int i = 0; problem == NULL && i < 2; i++) {
        int b = i ? max_batch : 1;
        if (c->alpha_s + c->beta_s * b <= 0 && (b < c->batch[0] || b > c->batch[c->n_points - 1])) {
            int r = snprintf(fitmsg, sizeof fitmsg, "fit gives a latency <= 0 at batch %d "
                             "(alpha_s %g + beta_s %g * %d)", b, c->alpha_s, c->beta_s, b);
            (void)r;
            problem = fitmsg;
        }
    }
    if (problem) {
        errn(L, cat, "%s: \"%s\": precisions.%s: %s", cpath, rel, pname, problem);
        free_calibration(c);
        goto out;
    }
    free_calibration(m->calibration);
    m->calibration = c;
    rc = 0;
out:
    cJSON_Delete(root);
    free(text);
    return rc;
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

/* ---- models ------------------------------------------------------------- */

static const char *const DIST_NAMES[] = {"deterministic", "exponential", "lognormal", "gamma",
                                         "empirical", NULL};

/* distribution, cv and samples of mapping map (keys already checked). */
static void load_dist(ld *L, yaml_node_t *map, const char *path, sc_dist_kind dflt, sc_dist *d,
                      double *raw_mean, int *have_samples)
{
    char p[PATHLEN];
    kv dist = find(L, map, "distribution"), cv = find(L, map, "cv");
    kv samples = find(L, map, "samples");
    int kind = (int)dflt;

    *have_samples = 0;
    if (dist.val && want_enum(L, dist.val, join(p, path, "distribution"), DIST_NAMES, &kind))
        return;
    d->kind = (sc_dist_kind)kind;
    int needs_cv = kind == SC_DIST_LOGNORMAL || kind == SC_DIST_GAMMA;
    if (cv.key && !needs_cv)
        errn(L, cv.key, "%s: cv only applies to distribution lognormal or gamma (this one is %s)",
             path, DIST_NAMES[kind]);
    else if (cv.val)
        want_num(L, cv.val, join(p, path, "cv"), 0, 1, INFINITY, 0, &d->cv);
    else if (needs_cv)
        errn(L, dist.val ? dist.val : map, "%s: distribution %s needs cv (a number > 0)", path,
             DIST_NAMES[kind]);
    if (samples.key && kind != SC_DIST_EMPIRICAL)
        errn(L, samples.key, "%s: samples only applies to distribution empirical (this one is %s)",
             path, DIST_NAMES[kind]);
    else if (samples.val)
        *have_samples = load_samples(L, samples.val, join(p, path, "samples"), d, raw_mean) == 0;
    else if (kind == SC_DIST_EMPIRICAL)
        errn(L, dist.val ? dist.val : map, "%s: distribution empirical needs samples (a CSV file)",
             path);
}

static void load_service(ld *L, yaml_node_t *svc, const char *path, int max_batch, sc_model *m)
{
    static const char *const keys[] = {"distribution", "mean", "base", "per_item", "cv",
                                       "samples", "calibration", "precision", "noise", NULL};
    static const char *const noise_keys[] = {"distribution", "cv", "samples", NULL};
    char p[PATHLEN];
    double raw_mean = 0;
    int have_samples = 0;

    if (check_map(L, svc, path, keys))
        return;
    kv mean = find(L, svc, "mean"), base = find(L, svc, "base");
    kv per_item = find(L, svc, "per_item"), cal = find(L, svc, "calibration");
    kv prec = find(L, svc, "precision"), noise = find(L, svc, "noise");

    if (cal.key) {
        static const char *const excl[] = {"mean", "base", "per_item", "distribution", "cv",
                                           "samples", NULL};
        for (const char *const *x = excl; *x; x++) {
            kv e = find(L, svc, *x);
            if (e.key)
                errn(L, e.key, "%s: %s cannot be combined with calibration (the profile gives "
                     "the mean; use noise for the spread)", path, *x);
        }
        load_calibration(L, path, cal, prec, max_batch, m);
        m->noise.kind = SC_DIST_DETERMINISTIC;
        if (noise.val && check_map(L, noise.val, join(p, path, "noise"), noise_keys) == 0)
            load_dist(L, noise.val, p, SC_DIST_DETERMINISTIC, &m->noise, &raw_mean,
                      &have_samples);
        return;
    }
    if (prec.key)
        errn(L, prec.key, "%s: precision only applies with calibration", path);
    if (noise.key)
        errn(L, noise.key, "%s: noise only applies with calibration (use distribution and cv)",
             path);
    load_dist(L, svc, path, SC_DIST_EXPONENTIAL, &m->noise, &raw_mean, &have_samples);

    if (mean.key && (base.key || per_item.key)) {
        errn(L, mean.key, "%s: mean cannot be combined with base/per_item (mean is base with "
             "per_item 0)", path);
    } else if (mean.val) {
        want_dur(L, mean.val, join(p, path, "mean"), 1, &m->base_s);
        m->per_item_s = 0;
    } else if (base.key || per_item.key) {
        int bad = 0;
        m->base_s = m->per_item_s = 0;
        if (base.val)
            bad |= want_dur(L, base.val, join(p, path, "base"), 0, &m->base_s);
        if (per_item.val)
            bad |= want_dur(L, per_item.val, join(p, path, "per_item"), 0, &m->per_item_s);
        if (!bad && m->base_s + m->per_item_s <= 0)
            errn(L, base.val ? base.val : per_item.val,
                 "%s: service time would be 0: base + per_item must be > 0", path);
    } else if (m->noise.kind == SC_DIST_EMPIRICAL) {
        if (have_samples) {
            m->base_s = raw_mean;
            m->per_item_s = 0;
        }
    } else {
        errn(L, svc, "%s: needs mean, base/per_item, samples (distribution empirical) or "
             "calibration", path);
    }
}

static void load_model(ld *L, yaml_node_t *n, const char *path, sc_model *m)
{
    static const char *const keys[] = {"service", "batch", NULL};
    static const char *const batch_keys[] = {"max_size", "max_wait", NULL};
    char p[PATHLEN];

    m->batch_max_size = 1;
    m->batch_max_wait_s = 0;
    m->noise.kind = SC_DIST_EXPONENTIAL;
    if (check_map(L, n, path, keys))
        return;
    kv svc = find(L, n, "service"), batch = find(L, n, "batch");
    /* batch first: a calibration's fit is checked up to max_size */
    if (batch.val && check_map(L, batch.val, join(p, path, "batch"), batch_keys) == 0) {
        char q[PATHLEN];
        kv ms = find(L, batch.val, "max_size"), mw = find(L, batch.val, "max_wait");
        if (ms.val)
            want_intv(L, ms.val, join(q, p, "max_size"), 1, &m->batch_max_size);
        if (mw.val)
            want_dur(L, mw.val, join(q, p, "max_wait"), 0, &m->batch_max_wait_s);
    }
    if (svc.val)
        load_service(L, svc.val, join(p, path, "service"), m->batch_max_size, m);
    else
        errn(L, n, "%s: missing required key service", path);
}

/* Entries of a name -> item mapping (models, pools): usable keys only. */
static int count_named(ld *L, yaml_node_t *m)
{
    int n = 0;
    for (yaml_node_pair_t *p = m->data.mapping.pairs.start; p < m->data.mapping.pairs.top; p++)
        n += key_usable(L, m, p);
    return n;
}

static void load_models(ld *L, yaml_node_t *n, sc_scenario *sc)
{
    char p[PATHLEN];

    if (check_map(L, n, "models", NULL))
        return;
    int cnt = count_named(L, n);
    if (cnt == 0) {
        errn(L, n, "models: at least one model is required");
        return;
    }
    sc->models = calloc((size_t)cnt, sizeof *sc->models);
    if (sc->models == NULL) {
        errn(L, n, "models: out of memory");
        return;
    }
    for (yaml_node_pair_t *q = n->data.mapping.pairs.start; q < n->data.mapping.pairs.top; q++) {
        if (!key_usable(L, n, q))
            continue;
        yaml_node_t *k = node_of(L, q->key);
        sc_model *m = &sc->models[sc->n_models++];
        const char *name = (const char *)k->data.scalar.value;
        join(p, "models", name);
        if (want_str(L, k, "models", 1, &m->name))
            continue;
        load_model(L, node_of(L, q->value), p, m);
    }
}

/* ---- pools -------------------------------------------------------------- */

/* Board power from the vendors' datasheets (A100 SXM 400 W, H100/H200 SXM
 * 700 W), idle as typically measured with a model loaded, off = BMC standby;
 * prices: on-demand cloud list prices per GPU-hour, 2025-26. See
 * scenarios/README.md. */
static const struct {
    const char *name;
    double idle_w, busy_w, off_w, price;
} GPU_TYPES[] = {
    {"a100", 50, 400, 5, 2.00},
    {"h100", 70, 700, 5, 3.00},
    {"h200", 75, 700, 5, 3.80},
    {"cpu", 60, 200, 5, 0.40},
};
static const char *const GPU_TYPE_NAMES[] = {"a100", "h100", "h200", "cpu", NULL};

static int find_model(const sc_scenario *sc, const char *name)
{
    for (int i = 0; i < sc->n_models; i++)
        if (sc->models[i].name && strcmp(sc->models[i].name, name) == 0)
            return i;
    return -1;
}

static int find_pool(const sc_scenario *sc, const char *name)
{
    for (int i = 0; i < sc->n_pools; i++)
        if (sc->pools[i].name && strcmp(sc->pools[i].name, name) == 0)
            return i;
    return -1;
}

static void model_list(const sc_scenario *sc, char *buf, size_t cap)
{
    buf[0] = '\0';
    for (int i = 0; i < sc->n_models; i++)
        if (sc->models[i].name)
            list_add(buf, cap, sc->models[i].name);
}

static void pool_list(const sc_scenario *sc, char *buf, size_t cap)
{
    buf[0] = '\0';
    for (int i = 0; i < sc->n_pools; i++)
        if (sc->pools[i].name)
            list_add(buf, cap, sc->pools[i].name);
}

/* A pool name reference: index, or -1 after an error listing the pools. */
static int want_pool_ref(ld *L, const yaml_node_t *n, const char *path, const sc_scenario *sc)
{
    char list[LISTLEN], buf[SHOWLEN];
    const char *s = want_scalar(L, n, path, "a pool name");
    if (s == NULL)
        return -1;
    int i = find_pool(sc, s);
    if (i < 0) {
        pool_list(sc, list, sizeof list);
        errn(L, n, "%s: unknown pool %s (pools: %s)", path, show(n, buf), *list ? list : "none");
    }
    return i;
}

static void load_pool(ld *L, yaml_node_t *n, const char *path, const sc_scenario *sc, sc_pool *pl)
{
    static const char *const keys[] = {"model", "replicas", "gpus_per_node", "gpu_type",
                                       "queue_capacity", "timeout", "link", "power",
                                       "price_per_gpu_hour", NULL};
    static const char *const link_keys[] = {"latency", "bandwidth", NULL};
    static const char *const power_keys[] = {"idle_per_gpu", "busy_per_gpu", "off", NULL};
    char p[PATHLEN], q[PATHLEN], list[LISTLEN], buf[SHOWLEN];
    int type = 1; /* h100 */

    pl->model = -1;
    pl->replicas = 1;
    pl->gpus_per_node = 1;
    pl->queue_capacity = 1000;
    pl->timeout_s = 0;
    pl->link_latency_s = 100e-6;
    pl->link_bandwidth_Bps = 10e9 / 8;
    if (check_map(L, n, path, keys))
        return;
    kv model = find(L, n, "model"), replicas = find(L, n, "replicas");
    kv gpus = find(L, n, "gpus_per_node"), gtype = find(L, n, "gpu_type");
    kv qcap = find(L, n, "queue_capacity"), timeout = find(L, n, "timeout");
    kv link = find(L, n, "link"), power = find(L, n, "power");
    kv price = find(L, n, "price_per_gpu_hour");

    if (model.val == NULL) {
        errn(L, n, "%s: missing required key model", path);
    } else {
        const char *s = want_scalar(L, model.val, join(p, path, "model"), "a model name");
        if (s && (pl->model = find_model(sc, s)) < 0) {
            model_list(sc, list, sizeof list);
            errn(L, model.val, "%s: unknown model %s (models: %s)", p, show(model.val, buf),
                 *list ? list : "none");
        }
    }
    if (replicas.val == NULL)
        errn(L, n, "%s: missing required key replicas", path);
    else
        want_intv(L, replicas.val, join(p, path, "replicas"), 1, &pl->replicas);
    if (gpus.val)
        want_intv(L, gpus.val, join(p, path, "gpus_per_node"), 1, &pl->gpus_per_node);
    if (gtype.val)
        want_enum(L, gtype.val, join(p, path, "gpu_type"), GPU_TYPE_NAMES, &type);
    pl->power.gpu_type = strdup(GPU_TYPES[type].name);
    pl->power.idle_w_per_gpu = GPU_TYPES[type].idle_w;
    pl->power.busy_w_per_gpu = GPU_TYPES[type].busy_w;
    pl->power.off_w = GPU_TYPES[type].off_w;
    pl->power.price_per_gpu_hour = GPU_TYPES[type].price;
    if (qcap.val)
        want_intv(L, qcap.val, join(p, path, "queue_capacity"), 1, &pl->queue_capacity);
    if (timeout.val)
        want_dur(L, timeout.val, join(p, path, "timeout"), 0, &pl->timeout_s);
    if (link.val && check_map(L, link.val, join(p, path, "link"), link_keys) == 0) {
        kv lat = find(L, link.val, "latency"), bw = find(L, link.val, "bandwidth");
        if (lat.val)
            want_dur(L, lat.val, join(q, p, "latency"), 0, &pl->link_latency_s);
        if (bw.val)
            want_unit(L, bw.val, join(q, p, "bandwidth"), sc_parse_bandwidth_Bps, "bandwidth",
                      "10Gbps, 1.5GB/s", 1, &pl->link_bandwidth_Bps);
    }
    if (power.val && check_map(L, power.val, join(p, path, "power"), power_keys) == 0) {
        kv idle = find(L, power.val, "idle_per_gpu"), busy = find(L, power.val, "busy_per_gpu");
        kv off = find(L, power.val, "off");
        int bad = 0;
        if (idle.val)
            bad |= want_watts(L, idle.val, join(q, p, "idle_per_gpu"), &pl->power.idle_w_per_gpu);
        if (busy.val)
            bad |= want_watts(L, busy.val, join(q, p, "busy_per_gpu"), &pl->power.busy_w_per_gpu);
        if (off.val)
            want_watts(L, off.val, join(q, p, "off"), &pl->power.off_w);
        if (!bad && pl->power.busy_w_per_gpu < pl->power.idle_w_per_gpu)
            errn(L, busy.val ? busy.val : idle.val,
                 "%s: busy_per_gpu (%g W) must be >= idle_per_gpu (%g W)", p,
                 pl->power.busy_w_per_gpu, pl->power.idle_w_per_gpu);
    }
    if (price.val)
        want_num(L, price.val, join(p, path, "price_per_gpu_hour"), 0, 0, INFINITY, 0,
                 &pl->power.price_per_gpu_hour);
}

static void load_pools(ld *L, yaml_node_t *n, sc_scenario *sc)
{
    char p[PATHLEN];

    if (check_map(L, n, "pools", NULL))
        return;
    int cnt = count_named(L, n);
    if (cnt == 0) {
        errn(L, n, "pools: at least one pool is required");
        return;
    }
    sc->pools = calloc((size_t)cnt, sizeof *sc->pools);
    if (sc->pools == NULL) {
        errn(L, n, "pools: out of memory");
        return;
    }
    /* Names first, then contents, so that errors inside one pool do not
     * turn references to it into "unknown pool" errors. */
    for (yaml_node_pair_t *q = n->data.mapping.pairs.start; q < n->data.mapping.pairs.top; q++) {
        if (!key_usable(L, n, q))
            continue;
        sc_pool *pl = &sc->pools[sc->n_pools++];
        want_str(L, node_of(L, q->key), "pools", 1, &pl->name);
    }
    int i = 0;
    for (yaml_node_pair_t *q = n->data.mapping.pairs.start; q < n->data.mapping.pairs.top; q++) {
        if (!key_usable(L, n, q))
            continue;
        sc_pool *pl = &sc->pools[i++];
        if (pl->name)
            load_pool(L, node_of(L, q->value), join(p, "pools", pl->name), sc, pl);
    }
}

/* ---- traffic ------------------------------------------------------------ */

static const char *const PROCESS_NAMES[] = {"poisson", "deterministic", "gamma", "trace", NULL};

static void load_trace(ld *L, const yaml_node_t *n, const char *path, sc_traffic *t)
{
    char msg[256];
    const char *rel = want_scalar(L, n, path, "a CSV file path");
    double *v = NULL;
    size_t cnt = 0;

    if (rel == NULL)
        return;
    char *file = resolve(L, n, rel);
    if (file == NULL || read_column(file, &v, &cnt, msg, sizeof msg)) {
        errn(L, n, "%s: trace file \"%s\": %s", path, rel, file ? msg : "out of memory");
        free(file);
        return;
    }
    free(file);
    for (size_t i = 0; i < cnt; i++)
        if (v[i] < 0 || (i > 0 && v[i] < v[i - 1])) {
            errn(L, n, "%s: trace file \"%s\": arrival %zu (%g s) is %s", path, rel, i + 1, v[i],
                 v[i] < 0 ? "negative" : "before the one above it (times must ascend)");
            free(v);
            return;
        }
    t->trace_s = v;
    t->n_trace = cnt;
}

static void load_rate(ld *L, yaml_node_t *n, const char *path, sc_traffic *t)
{
    static const char *const point_keys[] = {"at", "qps", "ramp", NULL};
    char p[PATHLEN], q[PATHLEN], idx[32];

    if (n->type == YAML_SCALAR_NODE) {
        double qps;
        if (want_unit(L, n, path, sc_parse_rate_qps, "rate", "500, 10/s, 30/min", 0, &qps))
            return;
        t->rate = calloc(1, sizeof *t->rate);
        if (t->rate == NULL)
            return;
        t->rate[0].qps = qps;
        t->n_rate = 1;
        return;
    }
    if (n->type != YAML_SEQUENCE_NODE) {
        errn(L, n, "%s: expected a rate (like 500, 10/s) or a sequence of {at, qps, ramp}, got "
             "a mapping", path);
        return;
    }
    long cnt = n->data.sequence.items.top - n->data.sequence.items.start;
    if (cnt == 0) {
        errn(L, n, "%s: at least one rate point is required", path);
        return;
    }
    t->rate = calloc((size_t)cnt, sizeof *t->rate);
    if (t->rate == NULL)
        return;
    t->n_rate = (int)cnt;
    for (long i = 0; i < cnt; i++) {
        yaml_node_t *pt = node_of(L, n->data.sequence.items.start[i]);
        sc_rate_point *r = &t->rate[i];
        int r2 = snprintf(idx, sizeof idx, "%ld", i);
        (void)r2;
        join(p, path, idx);
        r->at_s = r->qps = r->ramp_s = NAN;
        if (check_map(L, pt, p, point_keys))
            continue;
        kv at = find(L, pt, "at"), qps = find(L, pt, "qps"), ramp = find(L, pt, "ramp");
        if (at.val == NULL)
            errn(L, pt, "%s: missing required key at", p);
        else
            want_dur(L, at.val, join(q, p, "at"), 0, &r->at_s);
        if (qps.val == NULL)
            errn(L, pt, "%s: missing required key qps", p);
        else
            want_unit(L, qps.val, join(q, p, "qps"), sc_parse_rate_qps, "rate",
                      "500, 10/s, 30/min", 0, &r->qps);
        r->ramp_s = 0;
        if (ramp.val)
            want_dur(L, ramp.val, join(q, p, "ramp"), 0, &r->ramp_s);
        if (i > 0 && at.val && !isnan(r->at_s) && !isnan(t->rate[i - 1].at_s)) {
            const sc_rate_point *prev = &t->rate[i - 1];
            if (r->at_s <= prev->at_s)
                errn(L, at.val, "%s: at must be after the previous point's at (%g s), got %g s",
                     join(q, p, "at"), prev->at_s, r->at_s);
            else if (!isnan(prev->ramp_s) && prev->at_s + prev->ramp_s > r->at_s)
                errn(L, at.val, "%s: the previous point's ramp (%g s from %g s) runs past this "
                     "point's at (%g s)", join(q, p, "at"), prev->ramp_s, prev->at_s, r->at_s);
        }
    }
}

static void load_arrivals(ld *L, yaml_node_t *n, const char *path, sc_traffic *t)
{
    static const char *const keys[] = {"process", "cv", "rate", "trace", NULL};
    char p[PATHLEN];
    int process = SC_ARR_POISSON;

    if (check_map(L, n, path, keys))
        return;
    kv proc = find(L, n, "process"), cv = find(L, n, "cv"), rate = find(L, n, "rate");
    kv trace = find(L, n, "trace");
    if (proc.val && want_enum(L, proc.val, join(p, path, "process"), PROCESS_NAMES, &process))
        return;
    t->process = (sc_arrival_kind)process;
    if (process == SC_ARR_GAMMA) {
        if (cv.val)
            want_num(L, cv.val, join(p, path, "cv"), 0, 1, INFINITY, 0, &t->cv);
        else
            errn(L, proc.val, "%s: process gamma needs cv (a number > 0)", path);
    } else if (cv.key) {
        errn(L, cv.key, "%s: cv only applies to process gamma (this one is %s)", path,
             PROCESS_NAMES[process]);
    }
    if (process == SC_ARR_TRACE) {
        if (rate.key)
            errn(L, rate.key, "%s: rate does not apply to process trace (the trace gives the "
                 "arrival times)", path);
        if (trace.val)
            load_trace(L, trace.val, join(p, path, "trace"), t);
        else
            errn(L, proc.val, "%s: process trace needs trace (a CSV file)", path);
        return;
    }
    if (trace.key)
        errn(L, trace.key, "%s: trace only applies to process trace (this one is %s)", path,
             PROCESS_NAMES[process]);
    if (rate.val)
        load_rate(L, rate.val, join(p, path, "rate"), t);
    else
        errn(L, n, "%s: missing required key rate", path);
}

static void load_one_traffic(ld *L, yaml_node_t *n, const char *path, const sc_scenario *sc,
                             sc_traffic *t)
{
    static const char *const keys[] = {"name", "pool", "arrivals", "work", "size",
                                       "response_size", NULL};
    char p[PATHLEN];

    t->pool = -1;
    t->work = 1;
    t->bytes_in = 4000;
    t->bytes_out = 1000;
    if (check_map(L, n, path, keys))
        return;
    kv pool = find(L, n, "pool"), arr = find(L, n, "arrivals"), work = find(L, n, "work");
    kv size = find(L, n, "size"), rsize = find(L, n, "response_size");
    if (pool.val == NULL)
        errn(L, n, "%s: missing required key pool", path);
    else
        t->pool = want_pool_ref(L, pool.val, join(p, path, "pool"), sc);
    if (arr.val == NULL)
        errn(L, n, "%s: missing required key arrivals", path);
    else
        load_arrivals(L, arr.val, join(p, path, "arrivals"), t);
    if (work.val)
        want_num(L, work.val, join(p, path, "work"), 0, 1, INFINITY, 0, &t->work);
    if (size.val)
        want_unit(L, size.val, join(p, path, "size"), sc_parse_bytes, "size", "512B, 4KB, 1MiB",
                  0, &t->bytes_in);
    if (rsize.val)
        want_unit(L, rsize.val, join(p, path, "response_size"), sc_parse_bytes, "size",
                  "512B, 4KB, 1MiB", 0, &t->bytes_out);
}

static void load_traffic(ld *L, yaml_node_t *n, sc_scenario *sc)
{
    char p[PATHLEN], buf[SHOWLEN], idx[32];

    if (n->type != YAML_SEQUENCE_NODE) {
        errn(L, n, "traffic: expected a sequence of traffic classes, got %s", show(n, buf));
        return;
    }
    long cnt = n->data.sequence.items.top - n->data.sequence.items.start;
    if (cnt == 0) {
        errn(L, n, "traffic: at least one traffic class is required");
        return;
    }
    sc->traffic = calloc((size_t)cnt, sizeof *sc->traffic);
    if (sc->traffic == NULL)
        return;
    sc->n_traffic = (int)cnt;
    for (long i = 0; i < cnt; i++) {
        yaml_node_t *item = node_of(L, n->data.sequence.items.start[i]);
        sc_traffic *t = &sc->traffic[i];
        int r = snprintf(idx, sizeof idx, "%ld", i);
        (void)r;
        join(p, "traffic", idx);
        if (item->type == YAML_MAPPING_NODE) {
            kv name = find(L, item, "name");
            char np[PATHLEN];
            if (name.val == NULL) {
                errn(L, item, "%s: missing required key name", p);
            } else if (want_str(L, name.val, join(np, p, "name"), 1, &t->name) == 0) {
                long j = 0;
                while (j < i && !(sc->traffic[j].name && strcmp(sc->traffic[j].name, t->name) == 0))
                    j++;
                if (j < i) /* keep the index path: the name is ambiguous */
                    errn(L, name.val, "%s: duplicate traffic name %s (also item %ld)", p,
                         show(name.val, buf), j);
                else
                    join(p, "traffic", t->name);
            }
        }
        load_one_traffic(L, item, p, sc, t);
    }
}

/* ---- load balancer, slo ------------------------------------------------- */

static void load_servers(ld *L, yaml_node_t *n, const char *path, sc_scenario *sc)
{
    static const char *const keys[] = {"weight", "max_conns", NULL};
    char p[PATHLEN], q[PATHLEN], list[LISTLEN], buf[SHOWLEN];
    sc_lb *lb = &sc->lb;

    if (check_map(L, n, path, NULL))
        return;
    long cnt = n->data.mapping.pairs.top - n->data.mapping.pairs.start;
    if (cnt == 0)
        return;
    lb->servers = calloc((size_t)cnt, sizeof *lb->servers);
    if (lb->servers == NULL)
        return;
    for (yaml_node_pair_t *pr = n->data.mapping.pairs.start; pr < n->data.mapping.pairs.top; pr++) {
        if (!key_usable(L, n, pr))
            continue;
        yaml_node_t *k = node_of(L, pr->key), *v = node_of(L, pr->value);
        const char *key = want_scalar(L, k, path, "a \"pool/index\" key");
        if (key == NULL)
            continue;
        join(p, path, key);
        const char *slash = strrchr(key, '/');
        const char *ix = slash ? slash + 1 : "";
        int ok = slash && *ix && strlen(ix) < 10;
        for (const char *c = ix; ok && *c; c++)
            ok = isdigit((unsigned char)*c);
        if (!ok) {
            errn(L, k, "%s: server key %s is not \"pool/index\" (like \"gpu/0\")", path,
                 show(k, buf));
            continue;
        }
        char pool[PATHLEN];
        size_t plen = (size_t)(slash - key);
        if (plen >= sizeof pool)
            plen = sizeof pool - 1;
        memcpy(pool, key, plen);
        pool[plen] = '\0';
        int pi = find_pool(sc, pool), index = atoi(ix);
        if (pi < 0) {
            pool_list(sc, list, sizeof list);
            errn(L, k, "%s: unknown pool \"%s\" in %s (pools: %s)", path, pool, show(k, buf),
                 *list ? list : "none");
            continue;
        }
        if (index >= sc->pools[pi].replicas) {
            errn(L, k, "%s: server index %d out of range: pool %s has %d replicas (0..%d)", path,
                 index, pool, sc->pools[pi].replicas, sc->pools[pi].replicas - 1);
            continue;
        }
        int dup = 0;
        for (int j = 0; j < lb->n_servers; j++)
            dup |= lb->servers[j].pool == pi && lb->servers[j].index == index;
        if (dup) {
            errn(L, k, "%s: server %s/%d is listed twice", path, pool, index);
            continue;
        }
        sc_server *s = &lb->servers[lb->n_servers++];
        s->pool = pi;
        s->index = index;
        s->weight = 1;
        s->max_conns = lb->max_conns;
        if (check_map(L, v, p, keys))
            continue;
        kv w = find(L, v, "weight"), mc = find(L, v, "max_conns");
        if (w.val)
            want_num(L, w.val, join(q, p, "weight"), 0, 1, INFINITY, 0, &s->weight);
        if (mc.val)
            want_intv(L, mc.val, join(q, p, "max_conns"), 0, &s->max_conns);
    }
}

static void load_lb(ld *L, yaml_node_t *n, sc_scenario *sc)
{
    static const char *const keys[] = {"policy", "max_conns", "queue", "servers", NULL};
    static const char *const queue_keys[] = {"capacity", "timeout", NULL};
    char list[LISTLEN], buf[SHOWLEN];

    if (check_map(L, n, "load_balancer", keys))
        return;
    kv policy = find(L, n, "policy"), mc = find(L, n, "max_conns");
    kv queue = find(L, n, "queue"), servers = find(L, n, "servers");
    if (policy.val) {
        const char *s = want_scalar(L, policy.val, "load_balancer.policy", "a policy name");
        if (s && lb_find(s) == NULL) {
            errn(L, policy.val, "load_balancer.policy: unknown policy %s (policies: %s)",
                 show(policy.val, buf), lb_names(list, sizeof list));
        } else if (s) {
            char *d = strdup(s);
            if (d) {
                free(sc->lb.policy);
                sc->lb.policy = d;
            }
        }
    }
    if (mc.val)
        want_intv(L, mc.val, "load_balancer.max_conns", 0, &sc->lb.max_conns);
    if (queue.val && check_map(L, queue.val, "load_balancer.queue", queue_keys) == 0) {
        kv cap = find(L, queue.val, "capacity"), to = find(L, queue.val, "timeout");
        if (cap.val)
            want_intv(L, cap.val, "load_balancer.queue.capacity", 0, &sc->lb.queue_capacity);
        if (to.val)
            want_dur(L, to.val, "load_balancer.queue.timeout", 0, &sc->lb.queue_timeout_s);
    }
    if (servers.val)
        load_servers(L, servers.val, "load_balancer.servers", sc);
}

static void load_slo(ld *L, yaml_node_t *n, sc_scenario *sc)
{
    static const char *const keys[] = {"latency_p99", "availability", NULL};

    if (check_map(L, n, "slo", keys))
        return;
    kv p99 = find(L, n, "latency_p99"), av = find(L, n, "availability");
    if (p99.val)
        want_dur(L, p99.val, "slo.latency_p99", 1, &sc->slo.latency_p99_s);
    if (av.val)
        want_num(L, av.val, "slo.availability", 0, 1, 1, 0, &sc->slo.availability);
}

/* ---- top level ---------------------------------------------------------- */

static void load_top(ld *L, yaml_node_t *root, sc_scenario *sc)
{
    static const char *const keys[] = {"name", "description", "seed", "duration", "warmup",
                                       "interval", "models", "pools", "traffic",
                                       "load_balancer", "slo", NULL};
    static const char *const required[] = {"name", "duration", "models", "pools", "traffic",
                                           NULL};

    sc->seed = 1;
    sc->interval_s = 60;
    sc->lb.policy = strdup("round_robin");
    if (check_map(L, root, "", keys))
        return;
    for (const char *const *r = required; *r; r++)
        if (find(L, root, *r).key == NULL)
            errn(L, root, "missing required key %s", *r);

    kv name = find(L, root, "name"), desc = find(L, root, "description");
    kv seed = find(L, root, "seed"), dur = find(L, root, "duration");
    kv warm = find(L, root, "warmup"), intv = find(L, root, "interval");
    kv models = find(L, root, "models"), pools = find(L, root, "pools");
    kv traffic = find(L, root, "traffic"), lb = find(L, root, "load_balancer");
    kv slo = find(L, root, "slo");

    if (name.val)
        want_str(L, name.val, "name", 1, &sc->name);
    if (desc.val)
        want_str(L, desc.val, "description", 0, &sc->description);
    if (seed.val) {
        long long v;
        if (want_int(L, seed.val, "seed", 0, LLONG_MAX, &v) == 0)
            sc->seed = (unsigned long)v;
    }
    int dur_ok = dur.val && want_dur(L, dur.val, "duration", 1, &sc->duration_s) == 0;
    if (warm.val && want_dur(L, warm.val, "warmup", 0, &sc->warmup_s) == 0 && dur_ok &&
        sc->warmup_s >= sc->duration_s) {
        char buf[SHOWLEN];
        errn(L, warm.val, "warmup: must be shorter than duration (%g s), got %s",
             sc->duration_s, show(warm.val, buf));
    }
    if (intv.val)
        want_dur(L, intv.val, "interval", 1, &sc->interval_s);
    if (models.val)
        load_models(L, models.val, sc);
    if (pools.val)
        load_pools(L, pools.val, sc);
    if (traffic.val)
        load_traffic(L, traffic.val, sc);
    if (lb.val)
        load_lb(L, lb.val, sc);
    if (slo.val)
        load_slo(L, slo.val, sc);
}

/* ---- overrides ---------------------------------------------------------- */

/* Adds a node made by override set; its mark is column col (1-based). */
static int add_node(ld *L, int set, size_t col, yaml_node_type_t type, const char *text,
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
    yaml_node_t *n = node_of(L, id);
    n->start_mark.line = n->end_mark.line = 0;
    n->start_mark.column = n->end_mark.column = col - 1;
    return id;
}

static void apply_override(ld *L, int set, const char *s)
{
    if (s == NULL || *s == '\0') {
        errset(L, set, 1, "empty override (expected key.path=value)");
        return;
    }
    const char *eq = strchr(s, '=');
    if (eq == NULL) {
        errset(L, set, 1, "expected key.path=value, got \"%.60s\"", s);
        return;
    }
    if (eq == s) {
        errset(L, set, 1, "empty key path before '='");
        return;
    }
    /* Refuse a malformed path before changing anything. */
    for (const char *c = s; c <= eq; c++)
        if ((*c == '.' || c == eq) && (c == s || c[-1] == '.')) {
            errset(L, set, (size_t)(c - s) + 1, "empty segment in key path \"%.*s\"",
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
        yaml_node_t *n = node_of(L, cur);
        if (n->type == YAML_MAPPING_NODE) {
            yaml_node_pair_t *found = NULL;
            for (yaml_node_pair_t *p = n->data.mapping.pairs.start; p < n->data.mapping.pairs.top; p++)
                if (scalar_is(node_of(L, p->key), seg, len)) {
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
                    errset(L, set, vid ? col : vcol, "cannot use this text (not valid UTF-8?)");
                    return;
                }
                n = node_of(L, cur); /* adding nodes may have moved it */
                if (at >= 0)
                    n->data.mapping.pairs.start[at].value = vid;
                else if (!yaml_document_append_mapping_pair(&L->doc, cur, kid, vid)) {
                    errset(L, set, col, "out of memory");
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
                    errset(L, set, col, "index %.*s out of range: \"%.*s\" has %ld item%s",
                           (int)len, seg, prefix, s, cnt, cnt == 1 ? "" : "s");
                    return;
                }
            } else {
                char names[LISTLEN] = "";
                for (long i = 0; i < cnt && idx < 0; i++) {
                    yaml_node_t *it = node_of(L, n->data.sequence.items.start[i]);
                    if (it->type != YAML_MAPPING_NODE)
                        continue;
                    kv nm = find(L, it, "name");
                    if (nm.val && nm.val->type == YAML_SCALAR_NODE) {
                        if (scalar_is(nm.val, seg, len))
                            idx = i;
                        else
                            list_add(names, sizeof names, (const char *)nm.val->data.scalar.value);
                    }
                }
                if (idx < 0) {
                    errset(L, set, col, "no item named \"%.*s\" in \"%.*s\" (names: %s; or use "
                           "a 0-based index)", (int)len, seg, prefix, s, *names ? names : "none");
                    return;
                }
            }
            if (!last) {
                cur = n->data.sequence.items.start[idx];
            } else {
                int vid = add_node(L, set, vcol, YAML_SCALAR_NODE, value, strlen(value));
                if (vid == 0) {
                    errset(L, set, vcol, "cannot use this text (not valid UTF-8?)");
                    return;
                }
                n = node_of(L, cur);
                n->data.sequence.items.start[idx] = vid;
            }
        } else {
            errset(L, set, col, "\"%.*s\" is a scalar: cannot set \"%.*s\" inside it", prefix, s,
                   (int)len, seg);
            return;
        }
        if (last)
            return;
        seg = end + 1;
    }
}

/* ---- entry points ------------------------------------------------------- */

static void parser_error(ld *L, const yaml_parser_t *p)
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
    ld L;
    yaml_parser_t parser;
    sc_scenario *sc = NULL;

    memset(&L, 0, sizeof L);
    L.err = err ? err : stderr;
    L.file = path ? path : "(null)";
    FILE *f = path ? fopen(path, "rb") : NULL;
    if (f == NULL) {
        fprintf(L.err, "%s: cannot open scenario: %s\n", L.file, path ? strerror(errno) : "no path");
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
        char buf[SHOWLEN];
        errn(&L, root, "expected a mapping of scenario keys at top level, got %s", show(root, buf));
        goto done;
    }
    for (int i = 0; overrides && i < n_overrides; i++)
        apply_override(&L, i + 1, overrides[i]);
    root = yaml_document_get_root_node(&L.doc);

    sc = calloc(1, sizeof *sc);
    L.dir = dir_of(path);
    if (sc == NULL || L.dir == NULL || (sc->file = strdup(path)) == NULL) {
        fprintf(L.err, "%s: out of memory\n", L.file);
        L.n_errors++;
        goto done;
    }
    load_top(&L, root, sc);
done:
    yaml_document_delete(&L.doc);
    free(L.dir);
    free(L.set_of);
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
        free_calibration(sc->models[i].calibration);
    }
    for (int i = 0; i < sc->n_pools; i++) {
        free(sc->pools[i].name);
        free(sc->pools[i].power.gpu_type);
    }
    for (int i = 0; i < sc->n_traffic; i++) {
        free(sc->traffic[i].name);
        free(sc->traffic[i].rate);
        free(sc->traffic[i].trace_s);
    }
    free(sc->models);
    free(sc->pools);
    free(sc->traffic);
    free(sc->lb.policy);
    free(sc->lb.servers);
    free(sc->file);
    free(sc->name);
    free(sc->description);
    free(sc);
}
