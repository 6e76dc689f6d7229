/*
 * template.c - the subset of Go's text/template that alert labels and
 * annotations use in practice, with Prometheus's template functions
 * (template/template.go):
 *
 *   {{ $labels.name }}  {{ .Labels.name }}   a label ("" if absent)
 *   {{ $value }}        {{ .Value }}         the sample value, as Go's %v
 *   {{ ... | humanize }} | humanizePercentage | toUpper | toLower
 *   {{- ... -}}                              whitespace trimming
 *   comments (slash-star ... star-slash inside the braces)
 *
 * Anything else ({{ if }}, {{ range }}, printf, ...) is an error naming the
 * construct, reported when the rule file loads.
 */
#include "mon_internal.h"

#include <ctype.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    char *buf;
    size_t len, cap;
} sbuf;

static void sb_put(sbuf *b, const char *s, size_t n)
{
    mon_grow((void **)&b->buf, 1, &b->cap, b->len + n + 1);
    memcpy(b->buf + b->len, s, n);
    b->len += n;
    b->buf[b->len] = '\0';
}

/* Go's %.4g (fmt): C's %.4g with Go's spelling of the specials. */
static void fmt_4g(double v, const char *suffix, char *out, size_t len)
{
    if (isnan(v))
        snprintf(out, len, "NaN%s", suffix);
    else if (isinf(v))
        snprintf(out, len, "%sInf%s", v > 0 ? "+" : "-", suffix);
    else
        snprintf(out, len, "%.4g%s", v, suffix);
}

/* humanize (template/template.go): SI prefixes, 4 significant digits. */
static void humanize(double v, char *out, size_t len)
{
    if (v == 0 || isnan(v) || isinf(v)) {
        fmt_4g(v, "", out, len);
        return;
    }
    static const char *const big[] = { "k", "M", "G", "T", "P", "E", "Z", "Y" };
    static const char *const small[] = { "m", "u", "n", "p", "f", "a", "z", "y" };
    const char *prefix = "";
    if (fabs(v) >= 1) {
        for (int i = 0; i < 8 && fabs(v) >= 1000; i++) {
            prefix = big[i];
            v /= 1000;
        }
    } else {
        for (int i = 0; i < 8 && fabs(v) < 1; i++) {
            prefix = small[i];
            v *= 1000;
        }
    }
    fmt_4g(v, prefix, out, len);
}

typedef struct {
    int is_num;
    double num;
    char *str;
} tval;

static char *trim(char *s)
{
    while (isspace((unsigned char)*s))
        s++;
    size_t n = strlen(s);
    while (n && isspace((unsigned char)s[n - 1]))
        s[--n] = '\0';
    return s;
}

/* Where the action starting at body ends (its "}}"), as text/template's
 * lexer finds it: a "}}" inside a quoted string or a comment does not end
 * it. NULL with *unterminated set when a quoted string never closes. */
static const char *action_end(const char *body, int *unterminated)
{
    *unterminated = 0;
    const char *s = body;
    while (isspace((unsigned char)*s))
        s++;
    if (!strncmp(s, "/*", 2)) { /* lexComment: the comment, then the delimiter */
        const char *c = strstr(s + 2, "*/");
        return c ? strstr(c + 2, "}}") : NULL;
    }
    for (; *s; s++) {
        if (s[0] == '}' && s[1] == '}')
            return s;
        if (*s == '"') { /* lexQuote */
            for (s++; *s && *s != '"'; s++)
                if (*s == '\\' && s[1])
                    s++;
            if (!*s) {
                *unterminated = 1;
                return NULL;
            }
        }
    }
    return NULL;
}

/* One action's pipeline; 0 on success. */
static int run_action(char *act, const mon_labels *ls, double value, sbuf *out, mon_error *err)
{
    char *cmds[8];
    int nc = 0;
    for (char *p = act, *start = act;; p++) {
        if (*p == '"') {
            for (p++; *p && *p != '"'; p++)
                if (*p == '\\' && p[1])
                    p++;
            if (!*p) { /* text/template's lexer: lexQuote */
                mon_errf(err, "template: unterminated quoted string");
                return -1;
            }
            continue;
        }
        if (*p == '|' || !*p) {
            int end = !*p;
            *p = '\0';
            if (nc == 8) {
                mon_errf(err, "template pipeline too long");
                return -1;
            }
            cmds[nc++] = trim(start);
            start = p + 1;
            if (end)
                break;
        }
    }
    tval v = { 0, 0, NULL };
    char *op = cmds[0];
    if (!strcmp(op, "$value") || !strcmp(op, ".Value")) {
        v.is_num = 1;
        v.num = value;
    } else if (!strncmp(op, "$labels.", 8) || !strncmp(op, ".Labels.", 8)) {
        const char *name = op + 8;
        if (!mon_valid_label_name(name)) {
            mon_errf(err, "template: bad label reference \"%s\"", op);
            return -1;
        }
        /* $labels is a map[string]string: a missing key reads "" */
        v.str = mon_strdup(mon_labels_get(ls, name));
    } else if (!strncmp(op, "$externalLabels.", 16) || !strncmp(op, ".ExternalLabels.", 16)) {
        v.str = mon_strdup("");
    } else if (!strcmp(op, "$externalURL") || !strcmp(op, ".ExternalURL")) {
        v.str = mon_strdup("");
    } else if (op[0] == '"' && op[strlen(op) - 1] == '"' && strlen(op) >= 2) {
        v.str = mon_strdup(op + 1);
        v.str[strlen(v.str) - 1] = '\0';
    } else {
        char word[64];
        snprintf(word, sizeof word, "%.*s", (int)strcspn(op, " \t"), op);
        mon_errf(err, "template construct \"%s\" is not in fleetsim's template subset "
                      "($labels.x, $value, | humanize, | humanizePercentage, | toUpper, | toLower)",
                 word);
        return -1;
    }
    for (int i = 1; i < nc; i++) {
        char buf[64];
        const char *f = cmds[i];
        if (!strcmp(f, "humanize") || !strcmp(f, "humanizePercentage")) {
            double x = v.num;
            if (!v.is_num) {
                char *end;
                x = strtod(v.str, &end);
                if (*end || !*v.str) {
                    mon_errf(err, "template: %s: cannot convert \"%s\" to a number", f, v.str);
                    free(v.str);
                    return -1;
                }
            }
            if (f[8])
                fmt_4g(x * 100, "%", buf, sizeof buf);
            else
                humanize(x, buf, sizeof buf);
            free(v.str);
            v.is_num = 0;
            v.str = mon_strdup(buf);
        } else if (!strcmp(f, "toUpper") || !strcmp(f, "toLower")) {
            if (v.is_num) {
                mon_errf(err, "template: %s needs a string", f);
                return -1;
            }
            for (char *c = v.str; *c; c++)
                *c = (char)(f[2] == 'U' ? toupper((unsigned char)*c) : tolower((unsigned char)*c));
        } else {
            mon_errf(err, "template function \"%s\" is not in fleetsim's template subset", f);
            free(v.str);
            return -1;
        }
    }
    if (v.is_num) {
        char buf[64];
        mon_fmt_go(v.num, buf, sizeof buf);
        sb_put(out, buf, strlen(buf));
    } else {
        sb_put(out, v.str, strlen(v.str));
        free(v.str);
    }
    return 0;
}

char *mon_template_expand(const char *text, const mon_labels *ls, double value, mon_error *err)
{
    sbuf out = { NULL, 0, 0 };
    sb_put(&out, "", 0);
    const char *p = text;
    for (;;) {
        const char *open = strstr(p, "{{");
        if (!open) {
            sb_put(&out, p, strlen(p));
            break;
        }
        size_t lit = (size_t)(open - p);
        int trim_left = open[2] == '-' && isspace((unsigned char)open[3]);
        if (trim_left)
            while (lit && isspace((unsigned char)p[lit - 1]))
                lit--;
        sb_put(&out, p, lit);
        const char *body = open + 2 + (trim_left ? 1 : 0);
        int unterminated;
        const char *close = action_end(body, &unterminated);
        if (!close) {
            if (unterminated)
                mon_errf(err, "template: unterminated quoted string");
            else
                mon_errf(err, "template: unclosed action (\"{{\" without \"}}\")");
            free(out.buf);
            return NULL;
        }
        int trim_right = close > body && close[-1] == '-' && isspace((unsigned char)close[-2]);
        size_t blen = (size_t)(close - body) - (trim_right ? 1 : 0);
        char *act = mon_xrealloc(NULL, blen + 1);
        memcpy(act, body, blen);
        act[blen] = '\0';
        char *a = trim(act);
        if (!strncmp(a, "/*", 2)) {
            if (strlen(a) < 4 || strcmp(a + strlen(a) - 2, "*/")) {
                mon_errf(err, "template: unclosed comment");
                free(act);
                free(out.buf);
                return NULL;
            }
        } else if (!*a) {
            mon_errf(err, "template: missing value for command");
            free(act);
            free(out.buf);
            return NULL;
        } else if (run_action(a, ls, value, &out, err)) {
            free(act);
            free(out.buf);
            return NULL;
        }
        free(act);
        p = close + 2;
        if (trim_right)
            while (isspace((unsigned char)*p))
                p++;
    }
    return out.buf;
}
