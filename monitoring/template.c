/*
 * template.c - Go's text/template as Prometheus's alert labels and
 * annotations use it, with Prometheus's template functions
 * (template/template.go of 2.42):
 *
 *   text and {{ actions }}, {{- -}} trimming, comments
 *   pipelines: a | f b | g, parenthesised pipelines, constants (strings
 *     with Go's escapes or `raw`, numbers, true, false, nil), fields
 *     (.Labels.x, .Value, .ExternalLabels.x, .ExternalURL, .), variables
 *     ($labels, $value, $externalLabels, $externalURL, $, $x := ..., $x = ...)
 *   {{ if }} {{ else if }} {{ else }} {{ end }}, {{ range }} (over a map,
 *     in key order, with $k, $v := ...), {{ with }}
 *   text/template's functions: and or not len index print printf println
 *     eq ne lt le gt ge (Go's comparison rules: an int and a float do not
 *     compare)
 *   Prometheus's: humanize humanize1024 humanizeDuration humanizePercentage
 *     humanizeTimestamp toUpper toLower title match reReplaceAll stripPort
 *     stripDomain parseDuration safeHtml
 *
 * What Prometheus has and fleetsim cannot give (query, first, label, value,
 * strvalue, sortByLabel: they run PromQL queries; graphLink, tableLink,
 * pathPrefix: a web UI; args, tmpl, toTime; define/template/block) is an error
 * naming it, reported when the rule file loads. A template is parsed into
 * a tree once per expansion; runtime errors read as Go's.
 */
#include "mon_internal.h"

#include <ctype.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

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

static void sb_puts(sbuf *b, const char *s)
{
    sb_put(b, s, strlen(s));
}

/* ---- values ---- */

typedef enum { V_NIL, V_STR, V_FLOAT, V_INT, V_BOOL, V_MAP } vkind;

typedef struct {
    vkind k;
    char *s;                  /* V_STR (owned) */
    double f;                 /* V_FLOAT */
    long long i;              /* V_INT */
    int b;                    /* V_BOOL */
    const mon_labels *map;    /* V_MAP (borrowed) */
} val;

static val v_str(const char *s)
{
    return (val){ .k = V_STR, .s = mon_strdup(s) };
}

static val v_copy(const val *v)
{
    val c = *v;
    if (c.k == V_STR)
        c.s = mon_strdup(v->s);
    return c;
}

static void v_free(val *v)
{
    if (v->k == V_STR)
        free(v->s);
    v->k = V_NIL;
    v->s = NULL;
}

static const char *kind_name(vkind k)
{
    static const char *const n[] = { "<nil>", "string", "float64", "int", "bool",
                                     "map[string]string" };
    return n[k];
}

/* text/template's truth: false, 0, nil, "" and an empty map are false. */
static int truth(const val *v)
{
    switch (v->k) {
    case V_NIL: return 0;
    case V_STR: return *v->s != 0;
    case V_FLOAT: return v->f != 0;
    case V_INT: return v->i != 0;
    case V_BOOL: return v->b;
    case V_MAP: return v->map->n > 0;
    }
    return 0;
}

/* Go's %v of each kind, appended. */
static void put_v(sbuf *b, const val *v)
{
    char num[64];
    switch (v->k) {
    case V_NIL: sb_puts(b, "<no value>"); break;
    case V_STR: sb_puts(b, v->s); break;
    case V_FLOAT: sb_puts(b, mon_fmt_go(v->f, num, sizeof num)); break;
    case V_INT: snprintf(num, sizeof num, "%lld", v->i); sb_puts(b, num); break;
    case V_BOOL: sb_puts(b, v->b ? "true" : "false"); break;
    case V_MAP:
        sb_puts(b, "map[");
        for (int i = 0; i < v->map->n; i++) {
            if (i)
                sb_puts(b, " ");
            sb_puts(b, v->map->v[i].name);
            sb_puts(b, ":");
            sb_puts(b, v->map->v[i].value);
        }
        sb_puts(b, "]");
        break;
    }
}

/* ---- the tree ---- */

typedef enum {
    A_FIELD,    /* chain on dot: .A.B; name NULL for "." */
    A_VAR,      /* $name then chain */
    A_STR, A_NUM, A_BOOL, A_NIL,
    A_PIPE,     /* ( pipeline ) then chain */
    A_FUNC,     /* an identifier: a function */
} arg_kind;

struct pipe;

typedef struct {
    arg_kind k;
    char *name;            /* A_VAR: "$x"; A_FUNC: its name */
    char **chain;          /* .A.B after the operand */
    int n_chain;
    char *str;             /* A_STR */
    val num;               /* A_NUM: V_INT or V_FLOAT */
    int b;
    struct pipe *pipe;     /* A_PIPE */
} arg;

typedef struct {
    arg *args;             /* args[0]: the operand or function */
    int n;
} cmd;

typedef struct pipe {
    char *decl[2];         /* $x := / $k, $v := (or = when assign) */
    int n_decl, assign;
    cmd *cmds;
    int n;
} pipe;

typedef enum { N_TEXT, N_ACTION, N_IF, N_RANGE, N_WITH } node_kind;

typedef struct tnode {
    node_kind k;
    char *text;
    pipe *p;
    struct tnode **list, **elist; /* body, else body */
    int n_list, n_elist;
} tnode;

static void pipe_free(pipe *p);

static void arg_free(arg *a)
{
    free(a->name);
    for (int i = 0; i < a->n_chain; i++)
        free(a->chain[i]);
    free(a->chain);
    free(a->str);
    if (a->pipe)
        pipe_free(a->pipe);
}

static void pipe_free(pipe *p)
{
    for (int i = 0; i < p->n; i++) {
        for (int k = 0; k < p->cmds[i].n; k++)
            arg_free(&p->cmds[i].args[k]);
        free(p->cmds[i].args);
    }
    free(p->cmds);
    free(p->decl[0]);
    free(p->decl[1]);
    free(p);
}

static void nodes_free(tnode **l, int n);

static void node_free(tnode *t)
{
    free(t->text);
    if (t->p)
        pipe_free(t->p);
    nodes_free(t->list, t->n_list);
    nodes_free(t->elist, t->n_elist);
    free(t);
}

static void nodes_free(tnode **l, int n)
{
    for (int i = 0; i < n; i++)
        node_free(l[i]);
    free(l);
}

/* ---- functions ---- */

static const char *const funcs[] = {
    "and", "or", "not", "len", "index", "print", "printf", "println", "eq", "ne", "lt", "le",
    "gt", "ge", "humanize", "humanize1024", "humanizeDuration", "humanizePercentage",
    "humanizeTimestamp", "toUpper", "toLower", "title", "match", "stripPort", "stripDomain",
    "parseDuration", "safeHtml", "html", "js", "reReplaceAll", NULL,
};
/* Prometheus's functions fleetsim cannot offer, and why. */
static const struct {
    const char *name, *why;
} refused[] = {
    { "query", "it runs a PromQL query, which fleetsim's templates do not" },
    { "first", "it reads a query result, which fleetsim's templates do not run" },
    { "label", "it reads a query result, which fleetsim's templates do not run" },
    { "value", "it reads a query result, which fleetsim's templates do not run" },
    { "strvalue", "it reads a query result, which fleetsim's templates do not run" },
    { "sortByLabel", "it reads a query result, which fleetsim's templates do not run" },
    { "graphLink", "it links to a Prometheus web UI, which a simulation has not" },
    { "tableLink", "it links to a Prometheus web UI, which a simulation has not" },
    { "pathPrefix", "it links to a Prometheus web UI, which a simulation has not" },
    { "externalURL", "it links to a Prometheus web UI, which a simulation has not" },
    { "args", "not implemented in fleetsim" },
    { "tmpl", "not implemented in fleetsim" },
    { "toTime", "not implemented in fleetsim" },
    { "call", "not implemented in fleetsim" },
    { "slice", "not implemented in fleetsim" },
    { "urlquery", "not implemented in fleetsim" },
};

/* ---- parsing ---- */

typedef struct {
    const char *s;    /* the action's text */
    int at;
    mon_error *err;
    int failed;
} lexer;

static void perr(lexer *L, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void perr(lexer *L, const char *fmt, ...)
{
    if (L->failed)
        return;
    L->failed = 1;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(L->err->msg, sizeof L->err->msg, fmt, ap);
    va_end(ap);
}

static void skip_sp(lexer *L)
{
    while (isspace((unsigned char)L->s[L->at]))
        L->at++;
}

static int ident_char(int c)
{
    return isalnum(c) || c == '_';
}

/* A Go string constant: "..." with escapes, or `raw`. */
static char *read_string(lexer *L)
{
    char q = L->s[L->at];
    int i = L->at + 1;
    sbuf b = { NULL, 0, 0 };
    sb_put(&b, "", 0);
    for (;;) {
        char c = L->s[i];
        if (!c) {
            perr(L, "template: unterminated quoted string");
            free(b.buf);
            return NULL;
        }
        if (c == q) {
            i++;
            break;
        }
        if (c == '\\' && q == '"') {
            char e = L->s[i + 1];
            const char *from = "abfnrtv\\\"", *to = "\a\b\f\n\r\t\v\\\"";
            const char *hit = e ? strchr(from, e) : NULL;
            if (!hit) {
                perr(L, "template: invalid syntax in string escape \\%c", e ? e : ' ');
                free(b.buf);
                return NULL;
            }
            sb_put(&b, to + (hit - from), 1);
            i += 2;
            continue;
        }
        sb_put(&b, &c, 1);
        i++;
    }
    L->at = i;
    return b.buf;
}

static int read_chain(lexer *L, arg *a)
{
    while (L->s[L->at] == '.' && ident_char((unsigned char)L->s[L->at + 1])) {
        int st = ++L->at;
        while (ident_char((unsigned char)L->s[L->at]))
            L->at++;
        a->chain = mon_xrealloc(a->chain, (size_t)(a->n_chain + 1) * sizeof *a->chain);
        char *f = mon_xrealloc(NULL, (size_t)(L->at - st) + 1);
        memcpy(f, L->s + st, (size_t)(L->at - st));
        f[L->at - st] = '\0';
        a->chain[a->n_chain++] = f;
    }
    return 0;
}

static pipe *parse_pipe(lexer *L, char close);

/* One operand; 0, 1 at the end of the command, -1 on error. */
static int parse_arg(lexer *L, arg *a)
{
    memset(a, 0, sizeof *a);
    skip_sp(L);
    const char *p = L->s + L->at;
    if (!*p || *p == '|' || *p == ')')
        return 1;
    if (*p == '.') {
        a->k = A_FIELD;
        if (!ident_char((unsigned char)p[1]))
            L->at++;
        read_chain(L, a);
    } else if (*p == '$') {
        int st = L->at++;
        while (ident_char((unsigned char)L->s[L->at]))
            L->at++;
        a->k = A_VAR;
        a->name = mon_xrealloc(NULL, (size_t)(L->at - st) + 1);
        memcpy(a->name, L->s + st, (size_t)(L->at - st));
        a->name[L->at - st] = '\0';
        read_chain(L, a);
    } else if (*p == '"' || *p == '`') {
        a->k = A_STR;
        a->str = read_string(L);
        if (!a->str)
            return -1;
    } else if (*p == '(') {
        L->at++;
        a->k = A_PIPE;
        a->pipe = parse_pipe(L, ')');
        if (!a->pipe)
            return -1;
        L->at++; /* ) */
        read_chain(L, a);
    } else if (isdigit((unsigned char)*p) || ((*p == '-' || *p == '+' || *p == '.') &&
                                              isdigit((unsigned char)p[1]))) {
        int st = L->at;
        while (L->s[L->at] && !isspace((unsigned char)L->s[L->at]) && !strchr("|)", L->s[L->at]))
            L->at++;
        char buf[64];
        snprintf(buf, sizeof buf, "%.*s", L->at - st, L->s + st);
        a->k = A_NUM;
        char *end;
        long long iv = strtoll(buf, &end, 0);
        if (!*end && !strpbrk(buf, ".eE")) {
            a->num = (val){ .k = V_INT, .i = iv };
        } else {
            double fv;
            const char *why;
            if (mon_go_float(buf, &fv, &why)) {
                perr(L, "template: bad number syntax: \"%s\"", buf);
                return -1;
            }
            a->num = (val){ .k = V_FLOAT, .f = fv };
        }
    } else if (isalpha((unsigned char)*p) || *p == '_') {
        int st = L->at;
        while (ident_char((unsigned char)L->s[L->at]))
            L->at++;
        char *w = mon_xrealloc(NULL, (size_t)(L->at - st) + 1);
        memcpy(w, L->s + st, (size_t)(L->at - st));
        w[L->at - st] = '\0';
        if (!strcmp(w, "true") || !strcmp(w, "false")) {
            a->k = A_BOOL;
            a->b = w[0] == 't';
            free(w);
        } else if (!strcmp(w, "nil")) {
            a->k = A_NIL;
            free(w);
        } else {
            for (size_t i = 0; i < sizeof refused / sizeof *refused; i++)
                if (!strcmp(w, refused[i].name)) {
                    perr(L, "template function \"%s\" is not supported: %s", w, refused[i].why);
                    free(w);
                    return -1;
                }
            int known = 0;
            for (int i = 0; funcs[i]; i++)
                known |= !strcmp(w, funcs[i]);
            if (!known) {
                if (!strcmp(w, "define") || !strcmp(w, "template") || !strcmp(w, "block") ||
                    !strcmp(w, "break") || !strcmp(w, "continue"))
                    perr(L, "template construct \"%s\" is not supported by fleetsim", w);
                else
                    perr(L, "template: function \"%s\" not defined", w);
                free(w);
                return -1;
            }
            a->k = A_FUNC;
            a->name = w;
        }
    } else {
        perr(L, "template: unexpected \"%c\" in command", *p);
        return -1;
    }
    return 0;
}

/* A pipeline up to close (')' or the end); with declarations. */
static pipe *parse_pipe(lexer *L, char close)
{
    pipe *p = calloc(1, sizeof *p);
    if (!p)
        abort();
    /* $x := or $k, $v := or $x = */
    skip_sp(L);
    if (L->s[L->at] == '$') {
        int save = L->at;
        char *names[2] = { NULL, NULL };
        int nn = 0;
        for (;;) {
            skip_sp(L);
            if (L->s[L->at] != '$' || nn == 2)
                break;
            int st = L->at++;
            while (ident_char((unsigned char)L->s[L->at]))
                L->at++;
            names[nn] = mon_xrealloc(NULL, (size_t)(L->at - st) + 1);
            memcpy(names[nn], L->s + st, (size_t)(L->at - st));
            names[nn][L->at - st] = '\0';
            nn++;
            skip_sp(L);
            if (L->s[L->at] == ',') {
                L->at++;
                continue;
            }
            break;
        }
        skip_sp(L);
        int assign = L->s[L->at] == '=' && L->s[L->at + 1] != '=';
        if ((L->s[L->at] == ':' && L->s[L->at + 1] == '=') || assign) {
            L->at += assign ? 1 : 2;
            p->decl[0] = names[0];
            p->decl[1] = names[1];
            p->n_decl = nn;
            p->assign = assign;
        } else {
            free(names[0]);
            free(names[1]);
            L->at = save;
        }
    }
    for (;;) {
        cmd c = { NULL, 0 };
        for (;;) {
            arg a;
            int rc = parse_arg(L, &a);
            if (rc < 0) {
                arg_free(&a);
                for (int k = 0; k < c.n; k++)
                    arg_free(&c.args[k]);
                free(c.args);
                pipe_free(p);
                return NULL;
            }
            if (rc > 0)
                break;
            c.args = mon_xrealloc(c.args, (size_t)(c.n + 1) * sizeof *c.args);
            c.args[c.n++] = a;
        }
        if (!c.n) {
            perr(L, "template: missing value for command");
            pipe_free(p);
            return NULL;
        }
        if (c.n > 1 && c.args[0].k != A_FUNC) {
            perr(L, "template: can't give argument to non-function");
            for (int k = 0; k < c.n; k++)
                arg_free(&c.args[k]);
            free(c.args);
            pipe_free(p);
            return NULL;
        }
        p->cmds = mon_xrealloc(p->cmds, (size_t)(p->n + 1) * sizeof *p->cmds);
        p->cmds[p->n++] = c;
        skip_sp(L);
        if (L->s[L->at] == '|') {
            L->at++;
            continue;
        }
        if ((close == ')' && L->s[L->at] == ')') || (close == 0 && !L->s[L->at]))
            return p;
        perr(L, close == ')' ? "template: unclosed left paren" : "template: unexpected \"%c\" in operand",
             L->s[L->at]);
        pipe_free(p);
        return NULL;
    }
}

/* The template as text and actions. */
typedef struct {
    int is_action;
    char *text;
} seg;

static seg *split(const char *text, int *n, mon_error *err);

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
        if (*s == '"' || *s == '`') { /* lexQuote, lexRawQuote */
            char q = *s;
            for (s++; *s && *s != q; s++)
                if (q == '"' && *s == '\\' && s[1])
                    s++;
            if (!*s) {
                *unterminated = 1;
                return NULL;
            }
        }
    }
    return NULL;
}

static char *trim(char *s)
{
    while (isspace((unsigned char)*s))
        s++;
    size_t n = strlen(s);
    while (n && isspace((unsigned char)s[n - 1]))
        s[--n] = '\0';
    return s;
}

static seg *split(const char *text, int *n, mon_error *err)
{
    seg *v = NULL;
    *n = 0;
    const char *p = text;
    for (;;) {
        const char *open = strstr(p, "{{");
        size_t lit = open ? (size_t)(open - p) : strlen(p);
        int trim_left = open && open[2] == '-' && isspace((unsigned char)open[3]);
        if (trim_left)
            while (lit && isspace((unsigned char)p[lit - 1]))
                lit--;
        v = mon_xrealloc(v, (size_t)(*n + 2) * sizeof *v);
        v[*n].is_action = 0;
        v[*n].text = mon_xrealloc(NULL, lit + 1);
        memcpy(v[*n].text, p, lit);
        v[*n].text[lit] = '\0';
        (*n)++;
        if (!open)
            return v;
        const char *body = open + 2 + (trim_left ? 1 : 0);
        int unterminated;
        const char *close = action_end(body, &unterminated);
        if (!close) {
            if (unterminated)
                mon_errf(err, "template: unterminated quoted string");
            else
                mon_errf(err, "template: unclosed action (\"{{\" without \"}}\")");
            for (int i = 0; i < *n; i++)
                free(v[i].text);
            free(v);
            return NULL;
        }
        int trim_right = close > body && close[-1] == '-' && isspace((unsigned char)close[-2]);
        size_t blen = (size_t)(close - body) - (trim_right ? 1 : 0);
        char *act = mon_xrealloc(NULL, blen + 1);
        memcpy(act, body, blen);
        act[blen] = '\0';
        v[*n].is_action = 1;
        v[*n].text = act;
        (*n)++;
        p = close + 2;
        if (trim_right)
            while (isspace((unsigned char)*p))
                p++;
    }
}

typedef struct {
    seg *s;
    int n, at;
    mon_error *err;
    int failed;
} parser;

/* A keyword action: "if", "else", "end", ... or NULL; *rest after it. */
static const char *keyword(char *a, char **rest)
{
    static const char *const kw[] = { "if", "else", "end", "range", "with", NULL };
    for (int i = 0; kw[i]; i++) {
        size_t l = strlen(kw[i]);
        if (!strncmp(a, kw[i], l) && !ident_char((unsigned char)a[l])) {
            *rest = a + l;
            return kw[i];
        }
    }
    return NULL;
}

static pipe *pipe_of(parser *P, const char *text)
{
    lexer L = { text, 0, P->err, 0 };
    pipe *p = parse_pipe(&L, 0);
    if (!p)
        P->failed = 1;
    return p;
}

/* Parses nodes until {{ end }} or {{ else }} (returned in *stop) or the
 * end of the segments. */
static tnode **parse_list(parser *P, int *n, const char **stop, char **stop_rest)
{
    tnode **l = NULL;
    *n = 0;
    *stop = NULL;
    while (P->at < P->n && !P->failed) {
        seg *s = &P->s[P->at++];
        tnode *t = NULL;
        if (!s->is_action) {
            if (!*s->text)
                continue;
            t = calloc(1, sizeof *t);
            t->k = N_TEXT;
            t->text = mon_strdup(s->text);
        } else {
            char *a = trim(s->text);
            if (!strncmp(a, "/*", 2)) {
                if (strlen(a) < 4 || strcmp(a + strlen(a) - 2, "*/")) {
                    mon_errf(P->err, "template: unclosed comment");
                    P->failed = 1;
                }
                continue;
            }
            if (!*a) {
                mon_errf(P->err, "template: missing value for command");
                P->failed = 1;
                break;
            }
            char *rest;
            const char *kw = keyword(a, &rest);
            if (kw && (!strcmp(kw, "end") || !strcmp(kw, "else"))) {
                *stop = kw;
                *stop_rest = rest;
                return l;
            }
            t = calloc(1, sizeof *t);
            if (!kw) {
                t->k = N_ACTION;
                t->p = pipe_of(P, a);
            } else {
                t->k = !strcmp(kw, "if") ? N_IF : !strcmp(kw, "range") ? N_RANGE : N_WITH;
                char *r0 = rest;
                while (isspace((unsigned char)*r0))
                    r0++;
                if (!*r0) {
                    mon_errf(P->err, "template: missing value for %s", kw);
                    P->failed = 1;
                    free(t);
                    break;
                }
                t->p = pipe_of(P, rest);
                const char *st;
                char *st_rest;
                if (!P->failed)
                    t->list = parse_list(P, &t->n_list, &st, &st_rest);
                if (!P->failed && !st) {
                    mon_errf(P->err, "template: unexpected EOF: {{ %s }} without {{ end }}", kw);
                    P->failed = 1;
                }
                if (!P->failed && !strcmp(st, "else")) {
                    char *r = trim(st_rest);
                    char *r2;
                    if (*r && keyword(r, &r2) && !strcmp(keyword(r, &r2), "if") && t->k != N_RANGE) {
                        /* else if: a nested if that ends with this one */
                        tnode *e = calloc(1, sizeof *e);
                        e->k = N_IF;
                        e->p = pipe_of(P, r2);
                        if (!P->failed)
                            e->list = parse_list(P, &e->n_list, &st, &st_rest);
                        t->elist = mon_xrealloc(NULL, sizeof *t->elist);
                        t->elist[0] = e;
                        t->n_elist = 1;
                        /* the inner if consumed up to its else/end: continue its chain */
                        tnode *cur = e;
                        while (!P->failed && st && !strcmp(st, "else")) {
                            r = trim(st_rest);
                            if (*r && keyword(r, &r2) && !strcmp(keyword(r, &r2), "if")) {
                                tnode *e2 = calloc(1, sizeof *e2);
                                e2->k = N_IF;
                                e2->p = pipe_of(P, r2);
                                if (!P->failed)
                                    e2->list = parse_list(P, &e2->n_list, &st, &st_rest);
                                cur->elist = mon_xrealloc(NULL, sizeof *cur->elist);
                                cur->elist[0] = e2;
                                cur->n_elist = 1;
                                cur = e2;
                            } else {
                                cur->elist = parse_list(P, &cur->n_elist, &st, &st_rest);
                                if (!P->failed && (!st || strcmp(st, "end"))) {
                                    mon_errf(P->err, "template: expected {{ end }}");
                                    P->failed = 1;
                                }
                                break;
                            }
                        }
                        if (!P->failed && !st) {
                            mon_errf(P->err, "template: unexpected EOF");
                            P->failed = 1;
                        }
                    } else if (*r) {
                        mon_errf(P->err, "template: unexpected \"%s\" after else", r);
                        P->failed = 1;
                    } else {
                        t->elist = parse_list(P, &t->n_elist, &st, &st_rest);
                        if (!P->failed && (!st || strcmp(st, "end"))) {
                            mon_errf(P->err, "template: expected {{ end }}");
                            P->failed = 1;
                        }
                    }
                }
            }
        }
        l = mon_xrealloc(l, (size_t)(*n + 1) * sizeof *l);
        l[(*n)++] = t;
        if (P->failed)
            break;
    }
    return l;
}

/* ---- evaluation ---- */

typedef struct {
    char *name;
    val v;
} var;

typedef struct {
    var *vars;
    int n;
    const mon_labels *labels;
    double value;
    mon_error *err;
    int failed;
} state;

static void efail(state *S, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void efail(state *S, const char *fmt, ...)
{
    if (S->failed)
        return;
    S->failed = 1;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(S->err->msg, sizeof S->err->msg, fmt, ap);
    va_end(ap);
}

static void var_push(state *S, const char *name, val v)
{
    S->vars = mon_xrealloc(S->vars, (size_t)(S->n + 1) * sizeof *S->vars);
    S->vars[S->n].name = mon_strdup(name);
    S->vars[S->n].v = v;
    S->n++;
}

static void var_pop_to(state *S, int n)
{
    while (S->n > n) {
        S->n--;
        free(S->vars[S->n].name);
        v_free(&S->vars[S->n].v);
    }
}

static val *var_get(state *S, const char *name)
{
    for (int i = S->n - 1; i >= 0; i--)
        if (!strcmp(S->vars[i].name, name))
            return &S->vars[i].v;
    return NULL;
}

/* The root data: Prometheus's tmplData {Labels, ExternalLabels,
 * ExternalURL, Value}, a map here. */
static const mon_labels no_labels = { 0, NULL };

static val field(state *S, val base, const char *f, int is_root)
{
    if (is_root) {
        if (!strcmp(f, "Labels"))
            return (val){ .k = V_MAP, .map = S->labels };
        if (!strcmp(f, "ExternalLabels"))
            return (val){ .k = V_MAP, .map = &no_labels };
        if (!strcmp(f, "ExternalURL"))
            return v_str("");
        if (!strcmp(f, "Value"))
            return (val){ .k = V_FLOAT, .f = S->value };
        efail(S, "template: can't evaluate field %s in type *template.tmplData", f);
        return (val){ .k = V_NIL };
    }
    if (base.k == V_MAP)
        return v_str(mon_labels_get(base.map, f)); /* a missing key reads "" */
    efail(S, "template: can't evaluate field %s in type %s", f, kind_name(base.k));
    return (val){ .k = V_NIL };
}

static val eval_pipe(state *S, const pipe *p, const val *dot, int dot_is_root);

static val eval_arg(state *S, const arg *a, const val *dot, int dot_is_root)
{
    val v = { .k = V_NIL };
    int root = 0;
    switch (a->k) {
    case A_FIELD:
        if (a->n_chain == 0)
            return dot_is_root ? (val){ .k = V_NIL } : v_copy(dot);
        v = dot_is_root ? (val){ .k = V_NIL } : v_copy(dot);
        root = dot_is_root;
        break;
    case A_VAR: {
        if (!strcmp(a->name, "$")) {
            root = 1;
            break;
        }
        val *x = var_get(S, a->name);
        if (!x) {
            efail(S, "template: undefined variable \"%s\"", a->name);
            return v;
        }
        v = v_copy(x);
        break;
    }
    case A_STR:
        return v_str(a->str);
    case A_NUM:
        return a->num;
    case A_BOOL:
        return (val){ .k = V_BOOL, .b = a->b };
    case A_NIL:
        return v;
    case A_PIPE:
        v = eval_pipe(S, a->pipe, dot, dot_is_root);
        break;
    case A_FUNC:
        efail(S, "template: %s is not a value", a->name);
        return v;
    }
    for (int i = 0; i < a->n_chain && !S->failed; i++) {
        val nv = field(S, v, a->chain[i], root && i == 0);
        v_free(&v);
        v = nv;
        root = 0;
    }
    if (root && !S->failed) /* "$" alone: the root data, as a value */
        v = (val){ .k = V_MAP, .map = S->labels };
    return v;
}

/* convertToFloat of template.go: numbers, and strings that parse. */
static int to_float(state *S, const val *v, double *out, const char *fn)
{
    if (v->k == V_FLOAT) {
        *out = v->f;
        return 0;
    }
    if (v->k == V_INT) {
        *out = (double)v->i;
        return 0;
    }
    if (v->k == V_STR) {
        const char *why;
        if (!mon_go_float(v->s, out, &why))
            return 0;
        efail(S, "template: error calling %s: strconv.ParseFloat: parsing \"%s\": invalid syntax",
              fn, v->s);
        return -1;
    }
    efail(S, "template: error calling %s: can't convert %s to float", fn, kind_name(v->k));
    return -1;
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

static void humanize1024(double v, char *out, size_t len)
{
    if (fabs(v) <= 1 || isnan(v) || isinf(v)) {
        fmt_4g(v, "", out, len);
        return;
    }
    static const char *const p[] = { "ki", "Mi", "Gi", "Ti", "Pi", "Ei", "Zi", "Yi" };
    const char *prefix = "";
    for (int i = 0; i < 8 && fabs(v) >= 1024; i++) {
        prefix = p[i];
        v /= 1024;
    }
    fmt_4g(v, prefix, out, len);
}

static void humanize_duration(double v, char *out, size_t len)
{
    if (isnan(v) || isinf(v)) {
        fmt_4g(v, "", out, len);
        return;
    }
    if (v == 0) {
        fmt_4g(v, "s", out, len);
        return;
    }
    if (fabs(v) >= 1) {
        const char *sign = "";
        if (v < 0) {
            sign = "-";
            v = -v;
        }
        long long d = (long long)v;
        long long sec = d % 60, min = (d / 60) % 60, hrs = (d / 3600) % 24, days = d / 86400;
        if (days)
            snprintf(out, len, "%s%lldd %lldh %lldm %llds", sign, days, hrs, min, sec);
        else if (hrs)
            snprintf(out, len, "%s%lldh %lldm %llds", sign, hrs, min, sec);
        else if (min)
            snprintf(out, len, "%s%lldm %llds", sign, min, sec);
        else {
            char b[48];
            fmt_4g(v, "s", b, sizeof b);
            snprintf(out, len, "%s%s", sign, b);
        }
        return;
    }
    static const char *const small[] = { "m", "u", "n", "p", "f", "a", "z", "y" };
    const char *prefix = "";
    for (int i = 0; i < 8 && fabs(v) < 1; i++) {
        prefix = small[i];
        v *= 1000;
    }
    char suf[8];
    snprintf(suf, sizeof suf, "%ss", prefix);
    fmt_4g(v, suf, out, len);
}

/* humanizeTimestamp: fmt.Sprint of the time in UTC, "2006-01-02
 * 15:04:05.999999999 +0000 UTC", to the millisecond as Prometheus keeps
 * it. */
static void humanize_timestamp(double v, char *out, size_t len)
{
    if (isnan(v) || isinf(v)) {
        fmt_4g(v, "", out, len);
        return;
    }
    /* floatToTime: int64(v * 1e9) ns, then model.TimeFromUnixNano keeps
     * whole milliseconds */
    long long ms = (long long)(v * 1e9) / 1000000;
    long long sec = ms / 1000, ns = (ms % 1000) * 1000000;
    if (ns < 0) {
        ns += 1000000000;
        sec--;
    }
    long long days = sec / 86400, rem = sec % 86400;
    if (rem < 0) {
        rem += 86400;
        days--;
    }
    /* civil from days (H. Hinnant) */
    long long z = days + 719468, era = (z >= 0 ? z : z - 146096) / 146097;
    long long doe = z - era * 146097, yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    long long doy = doe - (365 * yoe + yoe / 4 - yoe / 100), mp = (5 * doy + 2) / 153;
    long long d = doy - (153 * mp + 2) / 5 + 1, m = mp < 10 ? mp + 3 : mp - 9;
    long long y = yoe + era * 400 + (m <= 2);
    char frac[16] = "";
    if (ns) {
        snprintf(frac, sizeof frac, ".%09lld", ns);
        size_t n = strlen(frac);
        while (frac[n - 1] == '0')
            frac[--n] = '\0';
    }
    snprintf(out, len, "%04lld-%02lld-%02lld %02lld:%02lld:%02lld%s +0000 UTC", y, m, d, rem / 3600,
             rem % 3600 / 60, rem % 60, frac);
}

/* fmt's %verb of one value, Go's way, with flags/width/precision as C
 * reads them (spec "%-08.3"). */
static void fmt_one(sbuf *b, const char *spec, char verb, const val *v)
{
    char cs[64], out[512];
    switch (verb) {
    case 'v':
        if (v->k == V_FLOAT && !strpbrk(spec + 1, ".")) {
            char num[64];
            mon_fmt_go(v->f, num, sizeof num);
            snprintf(cs, sizeof cs, "%ss", spec);
            snprintf(out, sizeof out, cs, num);
            sb_puts(b, out);
            return;
        }
        if (v->k == V_FLOAT)
            verb = 'g';
        else if (v->k == V_INT)
            verb = 'd';
        else if (v->k == V_BOOL)
            verb = 't';
        else {
            sbuf t = { NULL, 0, 0 };
            sb_put(&t, "", 0);
            put_v(&t, v);
            snprintf(cs, sizeof cs, "%ss", spec);
            snprintf(out, sizeof out, cs, t.buf);
            sb_puts(b, out);
            free(t.buf);
            return;
        }
        break;
    default:
        break;
    }
    int ok = 0;
    switch (verb) {
    case 's':
    case 'q':
        if (v->k == V_STR) {
            if (verb == 'q') {
                sbuf t = { NULL, 0, 0 };
                sb_puts(&t, "\"");
                for (const char *c = v->s; *c; c++) {
                    if (*c == '"' || *c == '\\') {
                        char e[3] = { '\\', *c, 0 };
                        sb_puts(&t, e);
                    } else if (*c == '\n') {
                        sb_puts(&t, "\\n");
                    } else if (*c == '\t') {
                        sb_puts(&t, "\\t");
                    } else {
                        sb_put(&t, c, 1);
                    }
                }
                sb_puts(&t, "\"");
                snprintf(cs, sizeof cs, "%ss", spec);
                snprintf(out, sizeof out, cs, t.buf);
                free(t.buf);
            } else {
                snprintf(cs, sizeof cs, "%ss", spec);
                snprintf(out, sizeof out, cs, v->s);
            }
            ok = 1;
        }
        break;
    case 'd':
    case 'x':
    case 'X':
    case 'o':
        if (v->k == V_INT) {
            snprintf(cs, sizeof cs, "%sll%c", spec, verb);
            snprintf(out, sizeof out, cs, v->i);
            ok = 1;
        }
        break;
    case 'f':
    case 'F':
    case 'e':
    case 'E':
    case 'g':
    case 'G':
        if (v->k == V_FLOAT) {
            if (isnan(v->f) || isinf(v->f)) {
                snprintf(out, sizeof out, "%s", isnan(v->f) ? "NaN" : v->f > 0 ? "+Inf" : "-Inf");
            } else if ((verb == 'g' || verb == 'G') && !strchr(spec, '.')) {
                /* shortest digits; %e form below 1e-4 and from 1e21 */
                char num[64];
                mon_fmt_go(v->f, num, sizeof num);
                snprintf(cs, sizeof cs, "%ss", spec);
                snprintf(out, sizeof out, cs, num);
            } else {
                snprintf(cs, sizeof cs, "%s%c", spec, verb == 'F' ? 'f' : verb);
                snprintf(out, sizeof out, cs, v->f);
            }
            ok = 1;
        }
        break;
    case 't':
        if (v->k == V_BOOL) {
            snprintf(cs, sizeof cs, "%ss", spec);
            snprintf(out, sizeof out, cs, v->b ? "true" : "false");
            ok = 1;
        }
        break;
    default:
        break;
    }
    if (ok) {
        sb_puts(b, out);
        return;
    }
    /* Go's wrong-type form: %!d(float64=1.5) */
    sbuf t = { NULL, 0, 0 };
    sb_put(&t, "", 0);
    put_v(&t, v);
    snprintf(out, sizeof out, "%%!%c(%s=%s)", verb, kind_name(v->k), t.buf);
    free(t.buf);
    sb_puts(b, out);
}

static void go_printf(sbuf *b, const char *f, const val *args, int n)
{
    int used = 0;
    for (const char *p = f; *p; p++) {
        if (*p != '%') {
            sb_put(b, p, 1);
            continue;
        }
        if (p[1] == '%') {
            sb_puts(b, "%");
            p++;
            continue;
        }
        const char *st = p++;
        while (*p && strchr("-+ 0#", *p))
            p++;
        while (isdigit((unsigned char)*p))
            p++;
        if (*p == '.') {
            p++;
            while (isdigit((unsigned char)*p))
                p++;
        }
        if (!*p) {
            sb_puts(b, "%!(NOVERB)");
            break;
        }
        char spec[32];
        snprintf(spec, sizeof spec, "%.*s", (int)(p - st), st);
        if (used >= n) {
            char m[32];
            snprintf(m, sizeof m, "%%!%c(MISSING)", *p);
            sb_puts(b, m);
            continue;
        }
        fmt_one(b, spec, *p, &args[used++]);
    }
    if (used < n) {
        sb_puts(b, "%!(EXTRA ");
        for (int i = used; i < n; i++) {
            if (i > used)
                sb_puts(b, ", ");
            sb_puts(b, kind_name(args[i].k));
            sb_puts(b, "=");
            put_v(b, &args[i]);
        }
        sb_puts(b, ")");
    }
}

/* eq/ne/lt/le/gt/ge with text/template's rules (funcs.go): the same basic
 * kind, or an error. */
static int compare(state *S, const char *fn, const val *a, const val *b, int *cmp)
{
    if (a->k != b->k) {
        efail(S, "template: error calling %s: incompatible types for comparison", fn);
        return -1;
    }
    switch (a->k) {
    case V_FLOAT: *cmp = a->f < b->f ? -1 : a->f > b->f ? 1 : a->f == b->f ? 0 : 2; break;
    case V_INT: *cmp = a->i < b->i ? -1 : a->i > b->i; break;
    case V_STR: *cmp = strcmp(a->s, b->s); *cmp = *cmp < 0 ? -1 : *cmp > 0; break;
    case V_BOOL:
        if (strcmp(fn, "eq") && strcmp(fn, "ne")) {
            efail(S, "template: error calling %s: invalid type for comparison", fn);
            return -1;
        }
        *cmp = a->b != b->b;
        break;
    default:
        efail(S, "template: error calling %s: invalid type for comparison", fn);
        return -1;
    }
    return 0;
}

static val call(state *S, const char *fn, val *a, int n)
{
    val r = { .k = V_NIL };
    char buf[256];
#define NARGS(k)                                                                              \
    do {                                                                                      \
        if (n != (k)) {                                                                       \
            efail(S, "template: wrong number of args for %s: want %d got %d", fn, (k), n);   \
            return r;                                                                         \
        }                                                                                     \
    } while (0)
    if (!strcmp(fn, "and") || !strcmp(fn, "or")) {
        if (n < 1) {
            efail(S, "template: wrong number of args for %s: want at least 1 got 0", fn);
            return r;
        }
        int want = fn[0] == 'o';
        for (int i = 0; i < n; i++)
            if (truth(&a[i]) == want || i == n - 1)
                return v_copy(&a[i]);
        return r;
    }
    if (!strcmp(fn, "not")) {
        NARGS(1);
        return (val){ .k = V_BOOL, .b = !truth(&a[0]) };
    }
    if (!strcmp(fn, "len")) {
        NARGS(1);
        if (a[0].k == V_STR)
            return (val){ .k = V_INT, .i = (long long)strlen(a[0].s) };
        if (a[0].k == V_MAP)
            return (val){ .k = V_INT, .i = a[0].map->n };
        efail(S, "template: error calling len: len of type %s", kind_name(a[0].k));
        return r;
    }
    if (!strcmp(fn, "index")) {
        if (n == 1)
            return v_copy(&a[0]);
        NARGS(2);
        if (a[0].k != V_MAP || a[1].k != V_STR) {
            efail(S, "template: error calling index: cannot index %s with %s", kind_name(a[0].k),
                  kind_name(a[1].k));
            return r;
        }
        return v_str(mon_labels_get(a[0].map, a[1].s));
    }
    if (!strcmp(fn, "print") || !strcmp(fn, "println") || !strcmp(fn, "printf")) {
        sbuf b = { NULL, 0, 0 };
        sb_put(&b, "", 0);
        if (fn[5] == 'f') {
            if (n < 1 || a[0].k != V_STR) {
                efail(S, "template: error calling printf: the format must be a string");
                free(b.buf);
                return r;
            }
            go_printf(&b, a[0].s, a + 1, n - 1);
        } else {
            int ln = fn[5] == 'l';
            for (int i = 0; i < n; i++) {
                /* Sprint: a space between operands when neither is a string */
                if (i && (ln || (a[i].k != V_STR && a[i - 1].k != V_STR)))
                    sb_puts(&b, " ");
                put_v(&b, &a[i]);
            }
            if (ln)
                sb_puts(&b, "\n");
        }
        r = (val){ .k = V_STR, .s = b.buf };
        return r;
    }
    if (!strcmp(fn, "eq") || !strcmp(fn, "ne") || !strcmp(fn, "lt") || !strcmp(fn, "le") ||
        !strcmp(fn, "gt") || !strcmp(fn, "ge")) {
        if (n < 2) {
            efail(S, "template: wrong number of args for %s: want 2 got %d", fn, n);
            return r;
        }
        if (fn[0] != 'e')
            NARGS(2);
        int c;
        if (!strcmp(fn, "eq")) { /* eq a b c: a equals any of them */
            for (int i = 1; i < n; i++) {
                if (compare(S, fn, &a[0], &a[i], &c))
                    return r;
                if (c == 0)
                    return (val){ .k = V_BOOL, .b = 1 };
            }
            return (val){ .k = V_BOOL, .b = 0 };
        }
        if (compare(S, fn, &a[0], &a[1], &c))
            return r;
        int res = !strcmp(fn, "ne") ? c != 0
                  : !strcmp(fn, "lt") ? c == -1
                  : !strcmp(fn, "le") ? c == -1 || c == 0
                  : !strcmp(fn, "gt") ? c == 1
                                      : c == 1 || c == 0;
        return (val){ .k = V_BOOL, .b = res };
    }
    if (!strcmp(fn, "humanize") || !strcmp(fn, "humanize1024") || !strcmp(fn, "humanizeDuration") ||
        !strcmp(fn, "humanizePercentage") || !strcmp(fn, "humanizeTimestamp")) {
        NARGS(1);
        double x;
        if (to_float(S, &a[0], &x, fn))
            return r;
        if (!strcmp(fn, "humanize"))
            humanize(x, buf, sizeof buf);
        else if (!strcmp(fn, "humanize1024"))
            humanize1024(x, buf, sizeof buf);
        else if (!strcmp(fn, "humanizeDuration"))
            humanize_duration(x, buf, sizeof buf);
        else if (!strcmp(fn, "humanizePercentage"))
            fmt_4g(x * 100, "%", buf, sizeof buf);
        else
            humanize_timestamp(x, buf, sizeof buf);
        return v_str(buf);
    }
    if (!strcmp(fn, "parseDuration")) {
        NARGS(1);
        double s;
        if (a[0].k != V_STR || mon_parse_duration(a[0].s, &s)) {
            efail(S, "template: error calling parseDuration: not a valid duration string");
            return r;
        }
        return (val){ .k = V_FLOAT, .f = s };
    }
    /* string functions */
    NARGS(fn[0] == 'm' ? 2 : fn[0] == 'r' ? 3 : 1);
    for (int i = 0; i < n; i++)
        if (a[i].k != V_STR) {
            efail(S, "template: error calling %s: wrong type for value; expected string; got %s",
                  fn, kind_name(a[i].k));
            return r;
        }
    if (!strcmp(fn, "match") || !strcmp(fn, "reReplaceAll")) {
        /* regexp.MatchString(pattern, text), unanchored; reReplaceAll is
         * regexp.MustCompile(pattern).ReplaceAllString(text, repl)
         * (template/template.go) */
        char why[200];
        mon_re *re = mon_re_compile_search(a[0].s, why, sizeof why);
        if (!re) {
            efail(S, "template: error calling %s: error parsing regexp: %s", fn, why);
            return r;
        }
        if (fn[0] == 'm') {
            r = (val){ .k = V_BOOL, .b = mon_re_match(re, a[1].s) };
        } else {
            char *o = mon_re_replace_all(re, a[2].s, a[1].s);
            r = v_str(o);
            free(o);
        }
        mon_re_free(re);
        return r;
    }
    r = v_str(a[0].s);
    if (!strcmp(fn, "toUpper") || !strcmp(fn, "toLower")) {
        for (char *c = r.s; *c; c++)
            *c = (char)(fn[2] == 'U' ? toupper((unsigned char)*c) : tolower((unsigned char)*c));
    } else if (!strcmp(fn, "title")) {
        int start = 1;
        for (char *c = r.s; *c; c++) {
            if (start && islower((unsigned char)*c))
                *c = (char)toupper((unsigned char)*c);
            start = isspace((unsigned char)*c) || ispunct((unsigned char)*c);
        }
    } else if (!strcmp(fn, "stripPort")) {
        /* net.SplitHostPort, else the text as it is */
        char *colon = strrchr(r.s, ':');
        if (colon && (r.s[0] != '[' || colon[-1] == ']') &&
            (r.s[0] == '[' || strchr(r.s, ':') == colon)) {
            *colon = '\0';
            if (r.s[0] == '[') {
                memmove(r.s, r.s + 1, strlen(r.s));
                r.s[strlen(r.s) - 1] = '\0';
            }
        }
    } else if (!strcmp(fn, "stripDomain")) {
        /* the host's first label, the port kept */
        char *colon = strrchr(r.s, ':');
        char *dot = strchr(r.s, '.');
        if (dot && (!colon || dot < colon) && !isdigit((unsigned char)r.s[0]))
            memmove(dot, colon ? colon : dot + strlen(dot), strlen(colon ? colon : "") + 1);
    }
    /* safeHtml, html, js: the text as it is */
    return r;
#undef NARGS
}

static val eval_cmd(state *S, const cmd *c, const val *dot, int dot_is_root, val *piped)
{
    if (c->args[0].k != A_FUNC) {
        if (piped) {
            efail(S, "template: can't give argument to non-function");
            return (val){ .k = V_NIL };
        }
        return eval_arg(S, &c->args[0], dot, dot_is_root);
    }
    int n = c->n - 1 + (piped != NULL);
    val *a = mon_xrealloc(NULL, (size_t)(n ? n : 1) * sizeof *a);
    int k = 0;
    for (int i = 1; i < c->n && !S->failed; i++)
        a[k++] = eval_arg(S, &c->args[i], dot, dot_is_root);
    if (piped)
        a[k++] = *piped; /* the pipeline's value is the last argument */
    val r = { .k = V_NIL };
    if (!S->failed)
        r = call(S, c->args[0].name, a, k);
    for (int i = 0; i < k; i++)
        v_free(&a[i]);
    free(a);
    return r;
}

static val eval_pipe(state *S, const pipe *p, const val *dot, int dot_is_root)
{
    val v = { .k = V_NIL };
    for (int i = 0; i < p->n && !S->failed; i++) {
        val prev = v;
        v = eval_cmd(S, &p->cmds[i], dot, dot_is_root, i ? &prev : NULL);
        if (!i)
            continue;
        /* prev was moved into the call's arguments and freed there */
    }
    if (S->failed)
        v_free(&v);
    return v;
}

/* Evaluates a pipeline with its declarations; *decl 1 when it declared
 * or assigned (no output then). */
static val run_pipe(state *S, const pipe *p, const val *dot, int dot_is_root, int *decl)
{
    val v = eval_pipe(S, p, dot, dot_is_root);
    *decl = p->n_decl > 0;
    if (!S->failed && p->n_decl == 1) {
        if (p->assign) {
            val *x = var_get(S, p->decl[0]);
            if (!x) {
                efail(S, "template: undefined variable \"%s\"", p->decl[0]);
            } else {
                v_free(x);
                *x = v_copy(&v);
            }
        } else {
            var_push(S, p->decl[0], v_copy(&v));
        }
    }
    return v;
}

static void exec_list(state *S, tnode **l, int n, const val *dot, int dot_is_root, sbuf *out);

static void exec_node(state *S, const tnode *t, const val *dot, int dot_is_root, sbuf *out)
{
    int mark = S->n, decl;
    switch (t->k) {
    case N_TEXT:
        sb_puts(out, t->text);
        return;
    case N_ACTION: {
        val v = run_pipe(S, t->p, dot, dot_is_root, &decl);
        if (!S->failed && !decl)
            put_v(out, &v);
        v_free(&v);
        return; /* a declaration lives to the end of the enclosing block */
    }
    case N_IF:
    case N_WITH: {
        val v = run_pipe(S, t->p, dot, dot_is_root, &decl);
        if (S->failed) {
            v_free(&v);
            break;
        }
        if (truth(&v))
            exec_list(S, t->list, t->n_list, t->k == N_WITH ? &v : dot,
                      t->k == N_WITH ? 0 : dot_is_root, out);
        else
            exec_list(S, t->elist, t->n_elist, dot, dot_is_root, out);
        v_free(&v);
        break;
    }
    case N_RANGE: {
        /* range over a map: keys in sorted order (labels are sorted) */
        pipe decls = *t->p;
        decls.n_decl = 0;
        val v = eval_pipe(S, &decls, dot, dot_is_root);
        if (S->failed)
            break;
        if (v.k != V_MAP && v.k != V_NIL) {
            efail(S, "template: range can't iterate over %s", kind_name(v.k));
            v_free(&v);
            break;
        }
        int cnt = v.k == V_MAP ? v.map->n : 0;
        for (int i = 0; i < cnt && !S->failed; i++) {
            int m2 = S->n;
            val elem = v_str(v.map->v[i].value);
            if (t->p->n_decl == 1)
                var_push(S, t->p->decl[0], v_copy(&elem));
            else if (t->p->n_decl == 2) {
                var_push(S, t->p->decl[0], v_str(v.map->v[i].name));
                var_push(S, t->p->decl[1], v_copy(&elem));
            }
            exec_list(S, t->list, t->n_list, &elem, 0, out);
            v_free(&elem);
            var_pop_to(S, m2);
        }
        if (!cnt)
            exec_list(S, t->elist, t->n_elist, dot, dot_is_root, out);
        v_free(&v);
        break;
    }
    }
    var_pop_to(S, mark);
}

static void exec_list(state *S, tnode **l, int n, const val *dot, int dot_is_root, sbuf *out)
{
    int mark = S->n;
    for (int i = 0; i < n && !S->failed; i++)
        exec_node(S, l[i], dot, dot_is_root, out);
    var_pop_to(S, mark);
}

/* Parses text into a tree (*l, *n); 0, or -1 with err set. */
static int parse_template(const char *text, tnode ***l, int *n, mon_error *err)
{
    *l = NULL;
    *n = 0;
    int ns;
    seg *segs = split(text, &ns, err);
    if (!segs)
        return -1;
    parser P = { segs, ns, 0, err, 0 };
    const char *stop;
    char *stop_rest;
    *l = parse_list(&P, n, &stop, &stop_rest);
    if (!P.failed && stop) {
        mon_errf(err, "template: unexpected {{%s}}", stop);
        P.failed = 1;
    }
    for (int i = 0; i < ns; i++)
        free(segs[i].text);
    free(segs);
    if (P.failed) {
        nodes_free(*l, *n);
        *l = NULL;
        *n = 0;
        return -1;
    }
    return 0;
}

int mon_template_check(const char *text, mon_error *err)
{
    tnode **l;
    int n;
    if (parse_template(text, &l, &n, err))
        return -1;
    nodes_free(l, n);
    return 0;
}

char *mon_template_expand(const char *text, const mon_labels *ls, double value, mon_error *err)
{
    tnode **l;
    int n;
    if (parse_template(text, &l, &n, err))
        return NULL;
    state S = { NULL, 0, ls, value, err, 0 };
    /* Prometheus's preamble (template/template.go, NewTemplateExpander):
     * {{$labels := .Labels}}{{$externalLabels := .ExternalLabels}}
     * {{$externalURL := .ExternalURL}}{{$value := .Value}} */
    var_push(&S, "$labels", (val){ .k = V_MAP, .map = ls });
    var_push(&S, "$externalLabels", (val){ .k = V_MAP, .map = &no_labels });
    var_push(&S, "$externalURL", v_str(""));
    var_push(&S, "$value", (val){ .k = V_FLOAT, .f = value });
    sbuf out = { NULL, 0, 0 };
    sb_put(&out, "", 0);
    val root = { .k = V_NIL };
    exec_list(&S, l, n, &root, 1, &out);
    var_pop_to(&S, 0);
    free(S.vars);
    nodes_free(l, n);
    if (S.failed) {
        free(out.buf);
        return NULL;
    }
    return out.buf;
}
