/*
 * labels.c - label sets, matchers, a small string hash map and number
 * formatting shared by the monitoring library.
 *
 * Regex matchers are RE2 (re2_shim.cc) anchored at both ends, as
 * Prometheus anchors its matchers (model/labels/regexp.go: "^(?:" + v +
 * ")$").
 */
#include "mon_internal.h"

#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void mon_errf(mon_error *err, const char *fmt, ...)
{
    if (!err)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err->msg, sizeof err->msg, fmt, ap);
    va_end(ap);
}

void *mon_xrealloc(void *p, size_t n)
{
    void *q = realloc(p, n ? n : 1);
    if (!q) {
        fputs("fleetsim: out of memory\n", stderr);
        abort();
    }
    return q;
}

char *mon_strdup(const char *s)
{
    size_t n = strlen(s ? s : "") + 1;
    char *d = mon_xrealloc(NULL, n);
    memcpy(d, s ? s : "", n);
    return d;
}

void mon_grow(void **arr, size_t sz, size_t *cap, size_t need)
{
    if (need < *cap)
        return;
    size_t c = *cap ? *cap : 8;
    while (c <= need)
        c *= 2;
    *arr = mon_xrealloc(*arr, c * sz);
    *cap = c;
}

/* ---- labels ---------------------------------------------------------------- */

void mon_labels_push(mon_labels *ls, const char *name, const char *value)
{
    ls->v = mon_xrealloc(ls->v, (size_t)(ls->n + 1) * sizeof *ls->v);
    ls->v[ls->n].name = mon_strdup(name);
    ls->v[ls->n].value = mon_strdup(value);
    ls->n++;
}

static int label_cmp(const void *a, const void *b)
{
    return strcmp(((const mon_label *)a)->name, ((const mon_label *)b)->name);
}

void mon_labels_sort(mon_labels *ls)
{
    if (ls->n > 1)
        qsort(ls->v, (size_t)ls->n, sizeof *ls->v, label_cmp);
}

static int label_index(const mon_labels *ls, const char *name)
{
    for (int i = 0; i < ls->n; i++)
        if (!strcmp(ls->v[i].name, name))
            return i;
    return -1;
}

const char *mon_labels_get(const mon_labels *ls, const char *name)
{
    int i = label_index(ls, name);
    return i < 0 ? "" : ls->v[i].value;
}

void mon_labels_del(mon_labels *ls, const char *name)
{
    int i = label_index(ls, name);
    if (i < 0)
        return;
    free(ls->v[i].name);
    free(ls->v[i].value);
    memmove(ls->v + i, ls->v + i + 1, (size_t)(ls->n - i - 1) * sizeof *ls->v);
    ls->n--;
}

void mon_labels_set(mon_labels *ls, const char *name, const char *value)
{
    int i = label_index(ls, name);
    if (!value || !*value) {
        mon_labels_del(ls, name);
        return;
    }
    if (i >= 0) {
        free(ls->v[i].value);
        ls->v[i].value = mon_strdup(value);
        return;
    }
    mon_labels_push(ls, name, value);
    mon_labels_sort(ls);
}

void mon_labels_keep(mon_labels *ls, char *const *names, int n)
{
    for (int i = ls->n - 1; i >= 0; i--) {
        int keep = 0;
        for (int k = 0; k < n && !keep; k++)
            keep = !strcmp(ls->v[i].name, names[k]);
        if (!keep)
            mon_labels_del(ls, ls->v[i].name);
    }
}

void mon_labels_copy(mon_labels *dst, const mon_labels *src)
{
    dst->n = 0;
    dst->v = NULL;
    if (!src->n)
        return;
    dst->v = mon_xrealloc(NULL, (size_t)src->n * sizeof *dst->v);
    for (int i = 0; i < src->n; i++) {
        dst->v[i].name = mon_strdup(src->v[i].name);
        dst->v[i].value = mon_strdup(src->v[i].value);
    }
    dst->n = src->n;
}

void mon_labels_free(mon_labels *ls)
{
    for (int i = 0; i < ls->n; i++) {
        free(ls->v[i].name);
        free(ls->v[i].value);
    }
    free(ls->v);
    ls->v = NULL;
    ls->n = 0;
}

/* labels.Compare: pairwise by name then value, then by length. */
int mon_labels_cmp(const mon_labels *a, const mon_labels *b)
{
    int n = a->n < b->n ? a->n : b->n;
    for (int i = 0; i < n; i++) {
        int c = strcmp(a->v[i].name, b->v[i].name);
        if (c)
            return c;
        c = strcmp(a->v[i].value, b->v[i].value);
        if (c)
            return c;
    }
    return a->n - b->n;
}

static void sb_cat(char **buf, size_t *len, size_t *cap, const char *s, size_t n)
{
    mon_grow((void **)buf, 1, cap, *len + n + 1);
    memcpy(*buf + *len, s, n);
    *len += n;
    (*buf)[*len] = '\0';
}

static char *key_of(const mon_labels *ls, int mode, char *const *names, int n_names)
{
    char *buf = NULL;
    size_t len = 0, cap = 0;
    sb_cat(&buf, &len, &cap, "", 0);
    for (int i = 0; i < ls->n; i++) {
        const char *nm = ls->v[i].name;
        if (mode != 2) {
            int listed = 0;
            for (int k = 0; k < n_names && !listed; k++)
                listed = !strcmp(nm, names[k]);
            if (mode == 1 && !listed)
                continue;
            if (mode == 0 && (listed || !strcmp(nm, MON_NAME)))
                continue;
        }
        sb_cat(&buf, &len, &cap, nm, strlen(nm));
        sb_cat(&buf, &len, &cap, "\xff", 1);
        sb_cat(&buf, &len, &cap, ls->v[i].value, strlen(ls->v[i].value));
        sb_cat(&buf, &len, &cap, "\xff", 1);
    }
    return buf;
}

char *mon_labels_key(const mon_labels *ls)
{
    return key_of(ls, 2, NULL, 0);
}

char *mon_labels_sig(const mon_labels *ls, int on, char *const *names, int n_names)
{
    return key_of(ls, on ? 1 : 0, names, n_names);
}

static size_t quote_into(char *buf, size_t len, size_t at, const char *s)
{
    for (; *s; s++) {
        const char *esc = NULL;
        char one[2] = { *s, 0 };
        if (*s == '"')
            esc = "\\\"";
        else if (*s == '\\')
            esc = "\\\\";
        else if (*s == '\n')
            esc = "\\n";
        else
            esc = one;
        for (const char *e = esc; *e; e++) {
            if (at + 1 < len)
                buf[at] = *e;
            at++;
        }
    }
    return at;
}

char *mon_labels_str(const mon_labels *ls, char *buf, size_t len)
{
    size_t at = 0;
    const char *name = mon_labels_get(ls, MON_NAME);
    int first = 1;
    if (!len)
        return buf;
    at += (size_t)snprintf(buf, len, "%s{", name);
    for (int i = 0; i < ls->n; i++) {
        if (!strcmp(ls->v[i].name, MON_NAME))
            continue;
        if (at < len)
            at += (size_t)snprintf(buf + at, len - at, "%s%s=\"", first ? "" : ", ",
                                   ls->v[i].name);
        first = 0;
        at = quote_into(buf, len, at, ls->v[i].value);
        if (at + 1 < len)
            buf[at] = '"';
        at++;
    }
    if (at + 1 < len)
        buf[at] = '}';
    at++;
    buf[at < len ? at : len - 1] = '\0';
    return buf;
}

int mon_valid_label_name(const char *s)
{
    if (!s || !(isalpha((unsigned char)*s) || *s == '_'))
        return 0;
    for (s++; *s; s++)
        if (!(isalnum((unsigned char)*s) || *s == '_'))
            return 0;
    return 1;
}

int mon_valid_metric_name(const char *s)
{
    if (!s || !(isalpha((unsigned char)*s) || *s == '_' || *s == ':'))
        return 0;
    for (s++; *s; s++)
        if (!(isalnum((unsigned char)*s) || *s == '_' || *s == ':'))
            return 0;
    return 1;
}

/* ---- matchers -------------------------------------------------------------- */

/* What Go's regexp/syntax (Prometheus's RE2) refuses with words of its
 * own, checked before RE2 compiles the pattern so the message is Go's: a
 * repetition operator right after another ("a++"), a counted repetition
 * above 1000 or nested counted repetitions whose product passes 1000
 * (parse.go, repeat and repeatIsValid), and a ')' with no '(' (which the
 * anchoring "^(?:" + v + ")$" would otherwise absorb; Prometheus parses
 * the pattern alone too, NewFastRegexMatcher). Scans one alternation
 * sequence up to ')' or the end into *prod (largest repeat product); 0,
 * or -1 with why filled. RE2 compiles in linear time, so no size guard is
 * needed here. */
static int re2_check(const char **pp, int depth, const char *all, long *prod, char *why,
                     size_t len)
{
    const char *p = *pp;
    long seq = 1;
    while (*p && !(*p == ')' && depth > 0)) {
        long atom = 1;
        if (*p == ')') {
            snprintf(why, len, "unexpected ): `%s`", all);
            return -1;
        }
        if (*p == '(') {
            p++;
            if (re2_check(&p, depth + 1, all, &atom, why, len))
                return -1;
            if (*p == ')')
                p++;
        } else if (*p == '[') { /* a class: ']' first is a member */
            p++;
            if (*p == '^')
                p++;
            if (*p == ']')
                p++;
            while (*p && *p != ']') {
                if (p[0] == '[' && p[1] == ':') { /* [:alpha:] */
                    const char *e = strstr(p + 2, ":]");
                    if (e) {
                        p = e + 2;
                        continue;
                    }
                }
                p += p[0] == '\\' && p[1] ? 2 : 1;
            }
            if (*p)
                p++;
        } else if (*p == '|') {
            p++;
            continue;
        } else if (p[0] == '\\' && p[1] == 'Q') { /* \Q...\E: literal text */
            const char *e = strstr(p + 2, "\\E");
            p = e ? e + 2 : p + strlen(p);
        } else {
            p += p[0] == '\\' && p[1] ? 2 : 1;
        }
        /* repetition operators after the atom */
        const char *first = NULL;
        for (;;) {
            const char *op = p;
            long lo = -1, hi = -1;
            if (*p == '*' || *p == '+' || *p == '?') {
                p++;
            } else if (*p == '{' && isdigit((unsigned char)p[1])) {
                char *e;
                lo = strtol(p + 1, &e, 10);
                hi = lo;
                if (*e == ',')
                    hi = isdigit((unsigned char)e[1]) ? strtol(e + 1, &e, 10) : (e++, -1);
                if (*e != '}')
                    break; /* not a repetition: a literal '{' */
                p = e + 1;
                if (lo > 1000 || hi > 1000 || (hi >= 0 && lo > hi)) {
                    snprintf(why, len, "invalid repeat count: `%.*s`", (int)(p - op), op);
                    return -1;
                }
            } else {
                break;
            }
            if (*p == '?') /* non-greedy */
                p++;
            if (first) {
                snprintf(why, len, "invalid nested repetition operator: `%.*s`", (int)(p - first),
                         first);
                return -1;
            }
            first = op;
            long m = hi >= 0 ? hi : lo; /* repeatIsValid: max, or min when unbounded */
            if (m >= 2) {
                if (atom > 1000 / m) {
                    snprintf(why, len, "invalid repeat count: `%.*s`", (int)(p - op), op);
                    return -1;
                }
                atom *= m;
            }
        }
        if (atom > seq)
            seq = atom;
    }
    *pp = p;
    *prod = seq;
    return 0;
}

int mon_matcher_init(mon_matcher *m, const char *name, mon_match_type t, const char *value,
                     mon_error *err)
{
    memset(m, 0, sizeof *m);
    m->name = mon_strdup(name);
    m->value = mon_strdup(value);
    m->type = t;
    if (t == MON_M_RE || t == MON_M_NRE) {
        char why[160];
        const char *scan = value;
        long prod;
        if (re2_check(&scan, 0, value, &prod, why, sizeof why) ||
            !(m->re = mon_re_compile(value, why, sizeof why))) {
            mon_errf(err, "invalid regular expression \"%s\": %s", value, why);
            free(m->name);
            free(m->value);
            m->name = m->value = NULL;
            return -1;
        }
    }
    return 0;
}

void mon_matcher_free(mon_matcher *m)
{
    mon_re_free(m->re);
    m->re = NULL;
    free(m->name);
    free(m->value);
    m->name = m->value = NULL;
}

int mon_matcher_matches(const mon_matcher *m, const char *value)
{
    switch (m->type) {
    case MON_M_EQ:
        return !strcmp(value, m->value);
    case MON_M_NEQ:
        return strcmp(value, m->value) != 0;
    case MON_M_RE:
        return mon_re_match(m->re, value);
    case MON_M_NRE:
        return !mon_re_match(m->re, value);
    }
    return 0;
}

int mon_matchers_match(const mon_matcher *ms, int n, const mon_labels *ls)
{
    for (int i = 0; i < n; i++)
        if (!mon_matcher_matches(&ms[i], mon_labels_get(ls, ms[i].name)))
            return 0;
    return 1;
}

/* Alertmanager's matcher syntax (pkg/labels/parse.go): name op value, the
 * value optionally double-quoted, spaces around allowed. */
int mon_matcher_parse(mon_matcher *m, const char *text, mon_error *err)
{
    const char *p = text;
    while (isspace((unsigned char)*p))
        p++;
    const char *n0 = p;
    while (isalnum((unsigned char)*p) || *p == '_')
        p++;
    size_t nlen = (size_t)(p - n0);
    while (isspace((unsigned char)*p))
        p++;
    mon_match_type t;
    if (!strncmp(p, "=~", 2)) {
        t = MON_M_RE;
        p += 2;
    } else if (!strncmp(p, "!~", 2)) {
        t = MON_M_NRE;
        p += 2;
    } else if (!strncmp(p, "!=", 2)) {
        t = MON_M_NEQ;
        p += 2;
    } else if (*p == '=') {
        t = MON_M_EQ;
        p++;
    } else {
        mon_errf(err, "bad matcher \"%s\": expected name followed by =, !=, =~ or !~", text);
        return -1;
    }
    if (!nlen) {
        mon_errf(err, "bad matcher \"%s\": missing label name", text);
        return -1;
    }
    while (isspace((unsigned char)*p))
        p++;
    char *val = mon_xrealloc(NULL, strlen(p) + 1);
    size_t k = 0;
    if (*p == '"') {
        p++;
        while (*p && *p != '"') {
            if (*p == '\\' && p[1]) {
                p++;
                val[k++] = *p == 'n' ? '\n' : *p;
                p++;
                continue;
            }
            val[k++] = *p++;
        }
        if (*p != '"') {
            free(val);
            mon_errf(err, "bad matcher \"%s\": unterminated quoted value", text);
            return -1;
        }
    } else {
        while (*p)
            val[k++] = *p++;
        while (k && isspace((unsigned char)val[k - 1]))
            k--;
    }
    val[k] = '\0';
    char name[256];
    snprintf(name, sizeof name, "%.*s", (int)nlen, n0);
    int rc = mon_matcher_init(m, name, t, val, err);
    free(val);
    return rc;
}

/* ---- hash map ---------------------------------------------------------------- */

static uint64_t fnv1a(const char *s)
{
    uint64_t h = 1469598103934665603ull;
    for (; *s; s++) {
        h ^= (unsigned char)*s;
        h *= 1099511628211ull;
    }
    return h;
}

void *mon_map_get(const mon_map *m, const char *key)
{
    if (!m->cap)
        return NULL;
    for (size_t i = fnv1a(key) & (m->cap - 1);; i = (i + 1) & (m->cap - 1)) {
        if (!m->keys[i])
            return NULL;
        if (!strcmp(m->keys[i], key))
            return m->vals[i];
    }
}

static void map_insert(mon_map *m, char *key, void *val)
{
    for (size_t i = fnv1a(key) & (m->cap - 1);; i = (i + 1) & (m->cap - 1)) {
        if (!m->keys[i]) {
            m->keys[i] = key;
            m->vals[i] = val;
            m->n++;
            return;
        }
        if (!strcmp(m->keys[i], key)) {
            free(key);
            m->vals[i] = val;
            return;
        }
    }
}

void mon_map_put(mon_map *m, const char *key, void *val)
{
    if ((m->n + 1) * 2 > m->cap) {
        mon_map old = *m;
        m->cap = old.cap ? old.cap * 2 : 16;
        m->keys = calloc(m->cap, sizeof *m->keys);
        m->vals = calloc(m->cap, sizeof *m->vals);
        if (!m->keys || !m->vals)
            abort();
        m->n = 0;
        for (size_t i = 0; i < old.cap; i++)
            if (old.keys[i])
                map_insert(m, old.keys[i], old.vals[i]);
        free(old.keys);
        free(old.vals);
    }
    map_insert(m, mon_strdup(key), val);
}

void mon_map_free(mon_map *m)
{
    for (size_t i = 0; i < m->cap; i++)
        free(m->keys[i]);
    free(m->keys);
    free(m->vals);
    memset(m, 0, sizeof *m);
}

/* ---- numbers ------------------------------------------------------------------ */

/* Shortest "%.*e" that reads back exactly: digits (no dot) and the decimal
 * exponent. */
static void shortest(double v, char *digits, int *exp10)
{
    char tmp[40];
    for (int p = 1; p <= 17; p++) {
        snprintf(tmp, sizeof tmp, "%.*e", p - 1, v);
        if (strtod(tmp, NULL) == v || p == 17)
            break;
    }
    const char *s = tmp;
    if (*s == '-')
        s++;
    size_t k = 0;
    for (; *s && *s != 'e'; s++)
        if (isdigit((unsigned char)*s))
            digits[k++] = *s;
    while (k > 1 && digits[k - 1] == '0')
        k--;
    digits[k] = '\0';
    *exp10 = atoi(s + 1);
}

static int special(double v, char *buf, size_t len)
{
    if (isnan(v))
        snprintf(buf, len, "NaN");
    else if (isinf(v))
        snprintf(buf, len, "%sInf", v > 0 ? "+" : "-");
    else
        return 0;
    return 1;
}

/* strconv.FormatFloat(v, 'g', -1, 64) as fmt's %v uses it (strconv/ftoa.go:
 * "if precision was the shortest possible, use precision 6 for this
 * decision", so the exponent form starts at 1e+06 and below 1e-04). */
char *mon_fmt_go(double v, char *buf, size_t len)
{
    if (special(v, buf, len))
        return buf;
    if (v == 0) {
        snprintf(buf, len, "%s0", signbit(v) ? "-" : "");
        return buf;
    }
    char d[24];
    int e;
    shortest(v, d, &e);
    int nd = (int)strlen(d);
    const char *sg = v < 0 ? "-" : "";
    if (e < -4 || e >= 6) {
        snprintf(buf, len, "%s%c%s%s%se%c%02d", sg, d[0], nd > 1 ? "." : "", d + 1, "",
                 e < 0 ? '-' : '+', e < 0 ? -e : e);
    } else if (e < 0) {
        snprintf(buf, len, "%s0.%0*d%s", sg, -e - 1, 0, d);
        if (-e - 1 == 0)
            snprintf(buf, len, "%s0.%s", sg, d);
    } else if (nd <= e + 1) {
        snprintf(buf, len, "%s%s%0*d", sg, d, e + 1 - nd, 0);
        if (e + 1 - nd == 0)
            snprintf(buf, len, "%s%s", sg, d);
    } else {
        snprintf(buf, len, "%s%.*s.%s", sg, e + 1, d, d + e + 1);
    }
    return buf;
}

char *mon_fmt_num(double v, char *buf, size_t len)
{
    if (special(v, buf, len))
        return buf;
    for (int p = 1; p <= 17; p++) {
        snprintf(buf, len, "%.*g", p, v);
        if (strtod(buf, NULL) == v)
            break;
    }
    return buf;
}
