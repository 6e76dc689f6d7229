/*
 * promql_parse.c - lexer and recursive-descent parser for fleetsim's PromQL
 * subset, with Prometheus's precedence and type checks
 * (promql/parser/generated_parser.y, parse.go checkAST).
 *
 * Precedence, lowest first: or; and unless; == != <= < >= >; + -; * / %;
 * unary minus; ^ (right-associative). Errors carry line:col of the
 * offending token. Constructs of full PromQL that fleetsim does not
 * evaluate (subqueries, @, strings, functions and aggregations outside the
 * subset) are errors that name the construct, never silently ignored.
 */
#include "mon_internal.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

typedef enum {
    T_EOF, T_IDENT, T_NUM, T_DUR, T_STR,
    T_LBRACE, T_RBRACE, T_LPAREN, T_RPAREN, T_LBRACK, T_RBRACK, T_COMMA, T_COLON, T_AT,
    T_ASSIGN, T_EQ, T_NE, T_RE, T_NRE, T_LT, T_GT, T_LE, T_GE,
    T_ADD, T_SUB, T_MUL, T_DIV, T_MOD, T_POW,
    T_ERR,
} tok_kind;

typedef struct {
    tok_kind kind;
    int pos, len;
    double num;
    int64_t dur_ms;
    char *str;          /* T_STR: unquoted value (owned by the parser) */
} token;

typedef struct {
    const char *src;
    int at;
    token tok;          /* current (peeked) token */
    mon_error *err;
    int failed;
} parser;

static const mon_func funcs[] = {
    { "rate", MON_F_RATE, 1, { MON_T_MATRIX }, MON_T_VECTOR },
    { "irate", MON_F_IRATE, 1, { MON_T_MATRIX }, MON_T_VECTOR },
    { "increase", MON_F_INCREASE, 1, { MON_T_MATRIX }, MON_T_VECTOR },
    { "delta", MON_F_DELTA, 1, { MON_T_MATRIX }, MON_T_VECTOR },
    { "avg_over_time", MON_F_AVG_OT, 1, { MON_T_MATRIX }, MON_T_VECTOR },
    { "max_over_time", MON_F_MAX_OT, 1, { MON_T_MATRIX }, MON_T_VECTOR },
    { "min_over_time", MON_F_MIN_OT, 1, { MON_T_MATRIX }, MON_T_VECTOR },
    { "sum_over_time", MON_F_SUM_OT, 1, { MON_T_MATRIX }, MON_T_VECTOR },
    { "count_over_time", MON_F_COUNT_OT, 1, { MON_T_MATRIX }, MON_T_VECTOR },
    { "histogram_quantile", MON_F_HQUANTILE, 2, { MON_T_SCALAR, MON_T_VECTOR }, MON_T_VECTOR },
    { "scalar", MON_F_SCALAR, 1, { MON_T_VECTOR }, MON_T_SCALAR },
    { "vector", MON_F_VECTOR, 1, { MON_T_SCALAR }, MON_T_VECTOR },
    { "absent", MON_F_ABSENT, 1, { MON_T_VECTOR }, MON_T_VECTOR },
    { "time", MON_F_TIME, 0, { 0 }, MON_T_SCALAR },
};

/* Functions of full PromQL (promql/parser/functions.go) that the subset
 * leaves out: named in the error rather than "unknown function". */
static const char *const other_funcs[] = {
    "abs", "absent_over_time", "acos", "acosh", "asin", "asinh", "atan", "atanh", "ceil",
    "changes", "clamp", "clamp_max", "clamp_min", "cos", "cosh", "day_of_month",
    "day_of_week", "day_of_year", "days_in_month", "deg", "deriv", "exp", "floor",
    "histogram_count", "histogram_fraction", "histogram_sum", "holt_winters", "hour",
    "idelta", "label_join", "label_replace", "last_over_time", "ln", "log10", "log2",
    "minute", "month", "pi", "predict_linear", "present_over_time", "quantile_over_time",
    "rad", "resets", "round", "sgn", "sin", "sinh", "sort", "sort_desc", "sqrt",
    "stddev_over_time", "stdvar_over_time", "tan", "tanh", "timestamp", "year", NULL,
};

static const char *const aggs[] = { "sum", "avg", "min", "max", "count", NULL };
static const char *const other_aggs[] = { "stddev", "stdvar", "topk", "bottomk", "quantile",
                                          "count_values", "group", NULL };

static int in_list(const char *const *l, const char *s, size_t n)
{
    for (int i = 0; l[i]; i++)
        if (strlen(l[i]) == n && !strncasecmp(l[i], s, n))
            return i;
    return -1;
}

/* ---- errors ---- */

static void perr(parser *P, int pos, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void perr(parser *P, int pos, const char *fmt, ...)
{
    if (P->failed)
        return;
    P->failed = 1;
    int line = 1, col = 1;
    for (int i = 0; i < pos && P->src[i]; i++) {
        if (P->src[i] == '\n') {
            line++;
            col = 1;
        } else {
            col++;
        }
    }
    char msg[400];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    mon_errf(P->err, "%d:%d: parse error: %s", line, col, msg);
}

/* ---- durations ---- */

/* model.ParseDuration: units y w d h m s ms, each at most once, in that
 * order; "0" alone is zero. Returns the length consumed (0: none). As
 * there, a duration must fit Go's time.Duration (int64 nanoseconds, about
 * 292 years): *out_of_range is set when it does not. */
static int scan_duration(const char *s, int64_t *ms, int *out_of_range)
{
    static const struct { const char *u; int64_t ms; } units[] = {
        { "y", 365LL * 86400000 }, { "w", 7LL * 86400000 }, { "d", 86400000 },
        { "h", 3600000 }, { "m", 60000 }, { "s", 1000 }, { "ms", 1 },
    };
    const int64_t max_ms = INT64_MAX / 1000000;
    const char *p = s;
    int next = 0, any = 0, big = 0;
    int64_t total = 0;
    while (isdigit((unsigned char)*p)) {
        const char *d0 = p;
        int64_t v = 0;
        int vbig = 0;
        while (isdigit((unsigned char)*p)) {
            if (v > max_ms / 10)
                vbig = 1;
            else
                v = v * 10 + (*p - '0');
            p++;
        }
        int u = -1;
        for (int k = next; k < 7; k++) {
            size_t ul = strlen(units[k].u);
            if (!strncmp(p, units[k].u, ul) && !(ul == 1 && units[k].u[0] == 'm' && p[1] == 's')) {
                u = k;
                p += ul;
                break;
            }
        }
        if (u < 0) {
            p = d0;
            break;
        }
        if (vbig || v > (max_ms - total) / units[u].ms)
            big = 1;
        else
            total += v * units[u].ms;
        next = u + 1;
        any = 1;
    }
    if (!any)
        return 0;
    *ms = total;
    *out_of_range = big;
    return (int)(p - s);
}

int mon_parse_duration(const char *text, double *out_s)
{
    int64_t ms;
    int big = 0;
    if (!strcmp(text, "0")) {
        *out_s = 0;
        return 0;
    }
    int n = scan_duration(text, &ms, &big);
    if (!n || text[n])
        return -1;
    if (big)
        return -2;
    *out_s = (double)ms / 1000.0;
    return 0;
}

/* ---- lexer ---- */

static int ident_start(int c)
{
    return isalpha(c) || c == '_' || c == ':';
}

static int ident_char(int c)
{
    return isalnum(c) || c == '_' || c == ':';
}

/* Go string unquoting (strconv.Unquote) for "..." and '...'. */
static int lex_string(parser *P, token *t, char q)
{
    const char *s = P->src;
    int i = t->pos + 1;
    size_t cap = strlen(s + i) + 1, k = 0;
    char *out = mon_xrealloc(NULL, cap);
    for (;;) {
        char c = s[i];
        if (!c || (c == '\n' && q != '`')) {
            free(out);
            perr(P, t->pos, "unterminated quoted string");
            return -1;
        }
        if (c == q) {
            i++;
            break;
        }
        if (c == '\\' && q != '`') {
            char e = s[i + 1];
            const char *simple = "abfnrtv\\'\"";
            const char *map = "\a\b\f\n\r\t\v\\'\"";
            const char *hit = e ? strchr(simple, e) : NULL;
            if (hit) {
                if ((e == '\'' && q == '"') || (e == '"' && q == '\'')) {
                    free(out);
                    perr(P, i, "unknown escape sequence \\%c", e);
                    return -1;
                }
                out[k++] = map[hit - simple];
                i += 2;
                continue;
            }
            if (e == 'x' && isxdigit((unsigned char)s[i + 2]) && isxdigit((unsigned char)s[i + 3])) {
                char hex[3] = { s[i + 2], s[i + 3], 0 };
                out[k++] = (char)strtol(hex, NULL, 16);
                i += 4;
                continue;
            }
            if (e >= '0' && e <= '7' && s[i + 2] >= '0' && s[i + 2] <= '7' && s[i + 3] >= '0' &&
                s[i + 3] <= '7') {
                out[k++] = (char)((e - '0') * 64 + (s[i + 2] - '0') * 8 + (s[i + 3] - '0'));
                i += 4;
                continue;
            }
            free(out);
            perr(P, i, "unknown escape sequence \\%c", e ? e : ' ');
            return -1;
        }
        out[k++] = c;
        i++;
    }
    out[k] = '\0';
    t->kind = T_STR;
    t->str = out;
    t->len = i - t->pos;
    return 0;
}

static void lex(parser *P)
{
    const char *s = P->src;
    token *t = &P->tok;
    free(t->str);
    memset(t, 0, sizeof *t);
    for (;;) {
        while (isspace((unsigned char)s[P->at]))
            P->at++;
        if (s[P->at] == '#') {
            while (s[P->at] && s[P->at] != '\n')
                P->at++;
            continue;
        }
        break;
    }
    t->pos = P->at;
    char c = s[P->at];
    if (!c) {
        t->kind = T_EOF;
        return;
    }
    if (isdigit((unsigned char)c) || (c == '.' && isdigit((unsigned char)s[P->at + 1]))) {
        int64_t ms;
        int big = 0;
        int n = isdigit((unsigned char)c) ? scan_duration(s + P->at, &ms, &big) : 0;
        char after = s[P->at + n];
        if (n && !isalnum((unsigned char)after) && after != '_') {
            if (big) {
                perr(P, t->pos, "duration out of range: \"%.*s\"", n, s + P->at);
                t->kind = T_ERR;
                return;
            }
            t->kind = T_DUR;
            t->dur_ms = ms;
            t->len = n;
            P->at += n;
            return;
        }
        char *end;
        errno = 0;
        t->num = strtod(s + P->at, &end);
        t->len = (int)(end - (s + P->at));
        if (!t->len || ident_char((unsigned char)*end) || *end == '.') {
            perr(P, t->pos, "bad number or duration syntax: \"%.*s\"", (int)strcspn(s + P->at, " \t\n()[]{},"), s + P->at);
            t->kind = T_ERR;
            return;
        }
        t->kind = T_NUM;
        P->at += t->len;
        return;
    }
    if (c == ':' && isdigit((unsigned char)s[P->at + 1])) {
        t->kind = T_COLON; /* [range:step] */
        t->len = 1;
        P->at++;
        return;
    }
    if (ident_start((unsigned char)c)) {
        int i = P->at;
        while (ident_char((unsigned char)s[i]))
            i++;
        t->len = i - P->at;
        P->at = i;
        if ((t->len == 3 && !strncasecmp(s + t->pos, "inf", 3)) ||
            (t->len == 3 && !strncasecmp(s + t->pos, "nan", 3))) {
            t->kind = T_NUM;
            t->num = tolower((unsigned char)s[t->pos]) == 'i' ? INFINITY : NAN;
            return;
        }
        t->kind = T_IDENT;
        return;
    }
    if (c == '"' || c == '\'' || c == '`') {
        if (lex_string(P, t, c) == 0)
            P->at += t->len;
        else
            t->kind = T_ERR;
        return;
    }
    static const struct { const char *s; tok_kind k; } ops[] = {
        { "==", T_EQ }, { "!=", T_NE }, { "=~", T_RE }, { "!~", T_NRE }, { "<=", T_LE },
        { ">=", T_GE }, { "=", T_ASSIGN }, { "<", T_LT }, { ">", T_GT }, { "+", T_ADD },
        { "-", T_SUB }, { "*", T_MUL }, { "/", T_DIV }, { "%", T_MOD }, { "^", T_POW },
        { "{", T_LBRACE }, { "}", T_RBRACE }, { "(", T_LPAREN }, { ")", T_RPAREN },
        { "[", T_LBRACK }, { "]", T_RBRACK }, { ",", T_COMMA }, { ":", T_COLON }, { "@", T_AT },
    };
    for (size_t k = 0; k < sizeof ops / sizeof ops[0]; k++) {
        size_t n = strlen(ops[k].s);
        if (!strncmp(s + P->at, ops[k].s, n)) {
            t->kind = ops[k].k;
            t->len = (int)n;
            P->at += (int)n;
            return;
        }
    }
    perr(P, t->pos, "unexpected character: '%c'", c);
    t->kind = T_ERR;
}

static int tok_is(const parser *P, const char *word)
{
    return P->tok.kind == T_IDENT && (size_t)P->tok.len == strlen(word) &&
           !strncasecmp(P->src + P->tok.pos, word, (size_t)P->tok.len);
}

static char *tok_text(const parser *P)
{
    char *s = mon_xrealloc(NULL, (size_t)P->tok.len + 1);
    memcpy(s, P->src + P->tok.pos, (size_t)P->tok.len);
    s[P->tok.len] = '\0';
    return s;
}

static const char *tok_desc(const parser *P, char *buf, size_t len)
{
    if (P->tok.kind == T_EOF)
        return "end of input";
    snprintf(buf, len, "\"%.*s\"", P->tok.len > 40 ? 40 : P->tok.len, P->src + P->tok.pos);
    return buf;
}

static int expect(parser *P, tok_kind k, const char *what)
{
    if (P->failed)
        return -1;
    if (P->tok.kind != k) {
        char b[64];
        perr(P, P->tok.pos, "unexpected %s, expected %s", tok_desc(P, b, sizeof b), what);
        return -1;
    }
    lex(P);
    return 0;
}

/* ---- nodes ---- */

static mon_node *node_new(mon_node_kind k, int pos)
{
    mon_node *n = calloc(1, sizeof *n);
    if (!n)
        abort();
    n->kind = k;
    n->pos = pos;
    return n;
}

static void free_strs(char **v, int n)
{
    for (int i = 0; i < n; i++)
        free(v[i]);
    free(v);
}

static void node_free(mon_node *n)
{
    if (!n)
        return;
    free(n->metric);
    for (int i = 0; i < n->n_matchers; i++)
        mon_matcher_free(&n->matchers[i]);
    free(n->matchers);
    node_free(n->sel);
    for (int i = 0; i < n->n_args; i++)
        node_free(n->args[i]);
    free(n->args);
    free_strs(n->grouping, n->n_grouping);
    free_strs(n->match_labels, n->n_match);
    free_strs(n->include, n->n_include);
    node_free(n->lhs);
    node_free(n->rhs);
    free(n);
}

mon_type mon_node_type(const mon_node *n)
{
    switch (n->kind) {
    case MON_N_NUM:
        return MON_T_SCALAR;
    case MON_N_SEL:
    case MON_N_AGG:
        return MON_T_VECTOR;
    case MON_N_MATRIX:
        return MON_T_MATRIX;
    case MON_N_CALL:
        return n->fn->ret;
    case MON_N_NEG:
    case MON_N_PAREN:
        return mon_node_type(n->lhs);
    case MON_N_BIN:
        return mon_node_type(n->lhs) == MON_T_SCALAR && mon_node_type(n->rhs) == MON_T_SCALAR
                   ? MON_T_SCALAR
                   : MON_T_VECTOR;
    }
    return MON_T_SCALAR;
}

static const char *type_name(mon_type t)
{
    return t == MON_T_SCALAR ? "scalar" : t == MON_T_VECTOR ? "instant vector" : "range vector";
}

/* ---- grammar ---- */

static mon_node *parse_expr(parser *P, int min_prec);

/* ( a, b, c ) label list; *out malloc'd. */
static int parse_label_list(parser *P, char ***out, int *n)
{
    *out = NULL;
    *n = 0;
    if (expect(P, T_LPAREN, "\"(\" opening a label list"))
        return -1;
    while (P->tok.kind != T_RPAREN) {
        if (P->tok.kind != T_IDENT) {
            char b[64];
            perr(P, P->tok.pos, "unexpected %s in grouping opts, expected label", tok_desc(P, b, sizeof b));
            return -1;
        }
        *out = mon_xrealloc(*out, (size_t)(*n + 1) * sizeof **out);
        (*out)[(*n)++] = tok_text(P);
        lex(P);
        if (P->tok.kind == T_COMMA)
            lex(P);
        else if (P->tok.kind != T_RPAREN) {
            char b[64];
            perr(P, P->tok.pos, "unexpected %s in grouping opts, expected \",\" or \")\"",
                 tok_desc(P, b, sizeof b));
            return -1;
        }
    }
    lex(P);
    return 0;
}

static int parse_matchers(parser *P, mon_node *n)
{
    lex(P); /* { */
    while (P->tok.kind != T_RBRACE) {
        if (P->tok.kind != T_IDENT) {
            char b[64];
            perr(P, P->tok.pos, "unexpected %s in label matching, expected label", tok_desc(P, b, sizeof b));
            return -1;
        }
        char *name = tok_text(P);
        lex(P);
        mon_match_type mt;
        switch (P->tok.kind) {
        case T_ASSIGN: mt = MON_M_EQ; break;
        case T_NE: mt = MON_M_NEQ; break;
        case T_RE: mt = MON_M_RE; break;
        case T_NRE: mt = MON_M_NRE; break;
        default: {
            char b[64];
            perr(P, P->tok.pos, "unexpected %s in label matching, expected one of \"=\", \"!=\", \"=~\", \"!~\"",
                 tok_desc(P, b, sizeof b));
            free(name);
            return -1;
        }
        }
        lex(P);
        if (P->tok.kind != T_STR) {
            char b[64];
            perr(P, P->tok.pos, "unexpected %s in label matching, expected string", tok_desc(P, b, sizeof b));
            free(name);
            return -1;
        }
        n->matchers = mon_xrealloc(n->matchers, (size_t)(n->n_matchers + 1) * sizeof *n->matchers);
        mon_error e;
        if (mon_matcher_init(&n->matchers[n->n_matchers], name, mt, P->tok.str, &e)) {
            perr(P, P->tok.pos, "%s", e.msg);
            free(name);
            return -1;
        }
        n->n_matchers++;
        free(name);
        lex(P);
        if (P->tok.kind == T_COMMA)
            lex(P);
        else if (P->tok.kind != T_RBRACE) {
            char b[64];
            perr(P, P->tok.pos, "unexpected %s in label matching, expected \",\" or \"}\"", tok_desc(P, b, sizeof b));
            return -1;
        }
    }
    lex(P);
    return 0;
}

static mon_node *parse_selector(parser *P)
{
    mon_node *n = node_new(MON_N_SEL, P->tok.pos);
    if (P->tok.kind == T_IDENT) {
        n->metric = tok_text(P);
        lex(P);
    }
    if (P->tok.kind == T_LBRACE && parse_matchers(P, n)) {
        node_free(n);
        return NULL;
    }
    if (n->metric) {
        for (int i = 0; i < n->n_matchers; i++)
            if (!strcmp(n->matchers[i].name, MON_NAME)) {
                perr(P, n->pos, "metric name must not be set twice: \"%s\" or \"%s\"", n->metric,
                     n->matchers[i].value);
                node_free(n);
                return NULL;
            }
        n->matchers = mon_xrealloc(n->matchers, (size_t)(n->n_matchers + 1) * sizeof *n->matchers);
        memmove(n->matchers + 1, n->matchers, (size_t)n->n_matchers * sizeof *n->matchers);
        mon_matcher_init(&n->matchers[0], MON_NAME, MON_M_EQ, n->metric, NULL);
        n->n_matchers++;
    } else {
        /* parse.go: a selector must have a matcher that does not match "". */
        int ok = 0;
        for (int i = 0; i < n->n_matchers && !ok; i++)
            ok = !mon_matcher_matches(&n->matchers[i], "");
        if (!ok) {
            perr(P, n->pos, "vector selector must contain at least one non-empty matcher");
            node_free(n);
            return NULL;
        }
    }
    return n;
}

static mon_node *parse_call(parser *P, const char *name, int pos)
{
    const mon_func *f = NULL;
    for (size_t i = 0; i < sizeof funcs / sizeof funcs[0]; i++)
        if (!strcmp(funcs[i].name, name))
            f = &funcs[i];
    if (!f) {
        if (in_list(other_funcs, name, strlen(name)) >= 0)
            perr(P, pos, "function \"%s\" is not in fleetsim's PromQL subset", name);
        else
            perr(P, pos, "unknown function with name \"%s\"", name);
        return NULL;
    }
    mon_node *n = node_new(MON_N_CALL, pos);
    n->fn = f;
    lex(P); /* ( */
    while (P->tok.kind != T_RPAREN && !P->failed) {
        mon_node *a = parse_expr(P, 0);
        if (!a)
            break;
        n->args = mon_xrealloc(n->args, (size_t)(n->n_args + 1) * sizeof *n->args);
        n->args[n->n_args++] = a;
        if (P->tok.kind == T_COMMA)
            lex(P);
        else if (P->tok.kind != T_RPAREN) {
            char b[64];
            perr(P, P->tok.pos, "unexpected %s in function call, expected \",\" or \")\"", tok_desc(P, b, sizeof b));
        }
    }
    if (P->failed) {
        node_free(n);
        return NULL;
    }
    lex(P);
    if (n->n_args != f->n_args) {
        perr(P, pos, "expected %d argument(s) in call to \"%s\", got %d", f->n_args, name, n->n_args);
        node_free(n);
        return NULL;
    }
    for (int i = 0; i < n->n_args; i++) {
        mon_type t = mon_node_type(n->args[i]);
        if (t != f->arg_types[i]) {
            perr(P, n->args[i]->pos, "expected type %s in call to function \"%s\", got %s",
                 type_name(f->arg_types[i]), name, type_name(t));
            node_free(n);
            return NULL;
        }
    }
    return n;
}

static mon_node *parse_agg(parser *P, int which, int pos)
{
    mon_node *n = node_new(MON_N_AGG, pos);
    n->agg = (mon_aggop)which;
    lex(P);
    int have_grouping = 0;
    if (tok_is(P, "by") || tok_is(P, "without")) {
        n->without = tok_is(P, "without");
        lex(P);
        if (parse_label_list(P, &n->grouping, &n->n_grouping))
            goto fail;
        have_grouping = 1;
    }
    if (expect(P, T_LPAREN, "\"(\" after aggregation"))
        goto fail;
    if (P->tok.kind == T_RPAREN) {
        perr(P, P->tok.pos, "no arguments for aggregate expression provided");
        goto fail;
    }
    n->lhs = parse_expr(P, 0);
    if (!n->lhs)
        goto fail;
    if (P->tok.kind == T_COMMA) {
        perr(P, P->tok.pos, "wrong number of arguments for aggregate expression provided, expected 1, got 2");
        goto fail;
    }
    if (expect(P, T_RPAREN, "\")\" closing the aggregation"))
        goto fail;
    if (!have_grouping && (tok_is(P, "by") || tok_is(P, "without"))) {
        n->without = tok_is(P, "without");
        lex(P);
        if (parse_label_list(P, &n->grouping, &n->n_grouping))
            goto fail;
    }
    if (mon_node_type(n->lhs) != MON_T_VECTOR) {
        perr(P, n->lhs->pos, "expected type instant vector in aggregation expression, got %s",
             type_name(mon_node_type(n->lhs)));
        goto fail;
    }
    return n;
fail:
    node_free(n);
    return NULL;
}

static mon_node *parse_primary(parser *P)
{
    token *t = &P->tok;
    int pos = t->pos;
    char b[64];
    switch (t->kind) {
    case T_NUM: {
        mon_node *n = node_new(MON_N_NUM, pos);
        n->num = t->num;
        lex(P);
        return n;
    }
    case T_STR:
        perr(P, pos, "string literals are not in fleetsim's PromQL subset");
        return NULL;
    case T_DUR:
        perr(P, pos, "unexpected duration %s", tok_desc(P, b, sizeof b));
        return NULL;
    case T_LPAREN: {
        lex(P);
        mon_node *n = node_new(MON_N_PAREN, pos);
        n->lhs = parse_expr(P, 0);
        if (!n->lhs || expect(P, T_RPAREN, "\")\"")) {
            node_free(n);
            return NULL;
        }
        return n;
    }
    case T_LBRACE:
        return parse_selector(P);
    case T_IDENT: {
        char *name = tok_text(P);
        int agg = in_list(aggs, name, strlen(name));
        mon_node *n = NULL;
        if (agg >= 0) {
            free(name);
            return parse_agg(P, agg, pos);
        }
        if (in_list(other_aggs, name, strlen(name)) >= 0) {
            perr(P, pos, "aggregation \"%s\" is not in fleetsim's PromQL subset", name);
            free(name);
            return NULL;
        }
        /* An identifier directly followed by "(" is a function call. */
        int k = P->at;
        while (isspace((unsigned char)P->src[k]))
            k++;
        if (P->src[k] == '(') {
            lex(P);
            n = parse_call(P, name, pos);
            free(name);
            return n;
        }
        static const char *const kw[] = { "by", "without", "on", "ignoring", "group_left",
                                           "group_right", "bool", "offset", "and", "or",
                                           "unless", NULL };
        if (in_list(kw, name, strlen(name)) >= 0) {
            perr(P, pos, "unexpected keyword \"%s\"", name);
            free(name);
            return NULL;
        }
        free(name);
        return parse_selector(P);
    }
    case T_SUB:
    case T_ADD:
        perr(P, pos, "unexpected %s", tok_desc(P, b, sizeof b));
        return NULL;
    case T_ERR:
        return NULL;
    default:
        perr(P, pos, "unexpected %s", tok_desc(P, b, sizeof b));
        return NULL;
    }
}

/* primary, then [range], [a:b] (refused), offset, @ (refused). */
static mon_node *parse_postfix(parser *P)
{
    mon_node *n = parse_primary(P);
    while (n && !P->failed) {
        if (P->tok.kind == T_LBRACK) {
            int pos = P->tok.pos;
            lex(P);
            if (P->tok.kind != T_DUR) {
                char b[64];
                perr(P, P->tok.pos, "unexpected %s in range, expected duration", tok_desc(P, b, sizeof b));
                break;
            }
            int64_t range = P->tok.dur_ms;
            lex(P);
            if (P->tok.kind == T_COLON) {
                perr(P, pos, "subqueries ([range:step]) are not in fleetsim's PromQL subset");
                break;
            }
            if (expect(P, T_RBRACK, "\"]\""))
                break;
            if (n->kind != MON_N_SEL || n->offset_ms) {
                perr(P, pos, "ranges only allowed for vector selectors");
                break;
            }
            if (range <= 0) {
                perr(P, pos, "range must be positive");
                break;
            }
            mon_node *m = node_new(MON_N_MATRIX, n->pos);
            m->sel = n;
            m->range_ms = range;
            n = m;
            continue;
        }
        if (tok_is(P, "offset")) {
            int pos = P->tok.pos;
            lex(P);
            if (P->tok.kind == T_SUB) {
                perr(P, P->tok.pos, "negative offsets are not in fleetsim's PromQL subset");
                break;
            }
            if (P->tok.kind != T_DUR) {
                char b[64];
                perr(P, P->tok.pos, "unexpected %s in offset, expected duration", tok_desc(P, b, sizeof b));
                break;
            }
            mon_node *sel = n->kind == MON_N_MATRIX ? n->sel : n;
            if (sel->kind != MON_N_SEL) {
                perr(P, pos, "offset modifier must be preceded by an instant vector selector or range vector selector");
                break;
            }
            if (sel->offset_ms) {
                perr(P, pos, "offset may not be set multiple times");
                break;
            }
            sel->offset_ms = P->tok.dur_ms;
            lex(P);
            continue;
        }
        if (P->tok.kind == T_AT) {
            perr(P, P->tok.pos, "the @ modifier is not in fleetsim's PromQL subset");
            break;
        }
        return n;
    }
    node_free(n);
    return NULL;
}

static mon_node *parse_unary(parser *P)
{
    if (P->tok.kind == T_SUB || P->tok.kind == T_ADD) {
        int neg = P->tok.kind == T_SUB, pos = P->tok.pos;
        lex(P);
        mon_node *x = parse_unary(P);
        if (!x)
            return NULL;
        if (mon_node_type(x) == MON_T_MATRIX) {
            perr(P, pos, "unary expression only allowed on expressions of type scalar or instant vector, got range vector");
            node_free(x);
            return NULL;
        }
        if (!neg)
            return x;
        if (x->kind == MON_N_NUM) {
            x->num = -x->num;
            x->pos = pos;
            return x;
        }
        mon_node *n = node_new(MON_N_NEG, pos);
        n->lhs = x;
        return n;
    }
    mon_node *base = parse_postfix(P);
    if (!base || P->tok.kind != T_POW)
        return base;
    /* ^ is right-associative and binds tighter than unary minus. */
    int pos = P->tok.pos;
    lex(P);
    mon_node *rhs = parse_unary(P);
    if (!rhs) {
        node_free(base);
        return NULL;
    }
    mon_node *n = node_new(MON_N_BIN, pos);
    n->op = MON_OP_POW;
    n->lhs = base;
    n->rhs = rhs;
    return n;
}

static int binop_of(const parser *P, mon_binop *op, int *prec)
{
    switch (P->tok.kind) {
    case T_EQ: *op = MON_OP_EQ; *prec = 3; return 1;
    case T_NE: *op = MON_OP_NE; *prec = 3; return 1;
    case T_GT: *op = MON_OP_GT; *prec = 3; return 1;
    case T_LT: *op = MON_OP_LT; *prec = 3; return 1;
    case T_GE: *op = MON_OP_GE; *prec = 3; return 1;
    case T_LE: *op = MON_OP_LE; *prec = 3; return 1;
    case T_ADD: *op = MON_OP_ADD; *prec = 4; return 1;
    case T_SUB: *op = MON_OP_SUB; *prec = 4; return 1;
    case T_MUL: *op = MON_OP_MUL; *prec = 5; return 1;
    case T_DIV: *op = MON_OP_DIV; *prec = 5; return 1;
    case T_MOD: *op = MON_OP_MOD; *prec = 5; return 1;
    default: break;
    }
    if (tok_is(P, "or")) { *op = MON_OP_OR; *prec = 1; return 1; }
    if (tok_is(P, "and")) { *op = MON_OP_AND; *prec = 2; return 1; }
    if (tok_is(P, "unless")) { *op = MON_OP_UNLESS; *prec = 2; return 1; }
    if (tok_is(P, "atan2")) {
        *op = MON_OP_MUL;
        *prec = -1; /* refused by the caller */
        return 1;
    }
    return 0;
}

static int is_comparison(mon_binop op)
{
    return op >= MON_OP_EQ && op <= MON_OP_LE;
}

static int is_set(mon_binop op)
{
    return op <= MON_OP_UNLESS;
}

/* Modifiers after a binary operator, then the type checks of parse.go. */
static int parse_bin_modifiers(parser *P, mon_node *n)
{
    if (tok_is(P, "bool")) {
        if (!is_comparison(n->op)) {
            perr(P, P->tok.pos, "bool modifier can only be used on comparison operators");
            return -1;
        }
        n->return_bool = 1;
        lex(P);
    }
    n->card = is_set(n->op) ? MON_CARD_MANY_TO_MANY : MON_CARD_ONE_TO_ONE;
    if (tok_is(P, "on") || tok_is(P, "ignoring")) {
        n->on = tok_is(P, "on");
        lex(P);
        if (parse_label_list(P, &n->match_labels, &n->n_match))
            return -1;
        if (tok_is(P, "group_left") || tok_is(P, "group_right")) {
            int pos = P->tok.pos;
            if (is_set(n->op)) {
                perr(P, pos, "no grouping allowed for \"and\", \"or\", \"unless\" operations");
                return -1;
            }
            n->card = tok_is(P, "group_left") ? MON_CARD_MANY_TO_ONE : MON_CARD_ONE_TO_MANY;
            lex(P);
            if (P->tok.kind == T_LPAREN && parse_label_list(P, &n->include, &n->n_include))
                return -1;
        }
    } else if (tok_is(P, "group_left") || tok_is(P, "group_right")) {
        perr(P, P->tok.pos, "unexpected %s: group modifiers need on(...) or ignoring(...) first",
             tok_is(P, "group_left") ? "group_left" : "group_right");
        return -1;
    }
    return 0;
}

static int check_bin(parser *P, mon_node *n)
{
    mon_type lt = mon_node_type(n->lhs), rt = mon_node_type(n->rhs);
    if (lt == MON_T_MATRIX || rt == MON_T_MATRIX) {
        perr(P, n->pos, "binary expression must contain only scalar and instant vector types");
        return -1;
    }
    if (is_comparison(n->op) && !n->return_bool && lt == MON_T_SCALAR && rt == MON_T_SCALAR) {
        perr(P, n->pos, "comparisons between scalars must use BOOL modifier");
        return -1;
    }
    if (is_set(n->op) && (lt == MON_T_SCALAR || rt == MON_T_SCALAR)) {
        perr(P, n->pos, "set operator \"%s\" not allowed in binary scalar expression",
             n->op == MON_OP_AND ? "and" : n->op == MON_OP_OR ? "or" : "unless");
        return -1;
    }
    if ((lt != MON_T_VECTOR || rt != MON_T_VECTOR) && (n->n_match || n->on || n->n_include)) {
        perr(P, n->pos, "vector matching only allowed between instant vectors");
        return -1;
    }
    for (int i = 0; i < n->n_include; i++)
        for (int k = 0; k < n->n_match; k++)
            if (n->on && !strcmp(n->include[i], n->match_labels[k])) {
                perr(P, n->pos, "label \"%s\" must not occur in ON and GROUP clause at once", n->include[i]);
                return -1;
            }
    return 0;
}

static mon_node *parse_expr(parser *P, int min_prec)
{
    mon_node *lhs = parse_unary(P);
    while (lhs && !P->failed) {
        mon_binop op;
        int prec;
        if (!binop_of(P, &op, &prec))
            return lhs;
        if (prec < 0) {
            perr(P, P->tok.pos, "operator \"atan2\" is not in fleetsim's PromQL subset");
            break;
        }
        if (prec < min_prec)
            return lhs;
        mon_node *n = node_new(MON_N_BIN, P->tok.pos);
        n->op = op;
        n->lhs = lhs;
        lhs = NULL;
        lex(P);
        if (parse_bin_modifiers(P, n)) {
            node_free(n);
            return NULL;
        }
        n->rhs = parse_expr(P, prec + 1); /* left-associative */
        if (!n->rhs || check_bin(P, n)) {
            node_free(n);
            return NULL;
        }
        lhs = n;
    }
    node_free(lhs);
    return NULL;
}

mon_expr *mon_expr_parse(const char *text, mon_error *err)
{
    parser P = { .src = text, .at = 0, .err = err };
    lex(&P);
    mon_node *root = NULL;
    if (!P.failed) {
        if (P.tok.kind == T_EOF)
            perr(&P, 0, "no expression found in input");
        else
            root = parse_expr(&P, 0);
    }
    if (root && !P.failed && P.tok.kind != T_EOF) {
        char b[64];
        perr(&P, P.tok.pos, "unexpected %s", tok_desc(&P, b, sizeof b));
    }
    free(P.tok.str);
    if (P.failed || !root) {
        node_free(root);
        return NULL;
    }
    mon_expr *e = calloc(1, sizeof *e);
    if (!e)
        abort();
    e->root = root;
    e->text = mon_strdup(text);
    return e;
}

void mon_expr_free(mon_expr *e)
{
    if (!e)
        return;
    node_free(e->root);
    free(e->text);
    free(e);
}

static double lookback_of(const mon_node *n)
{
    if (!n)
        return 0;
    double m = 0;
    switch (n->kind) {
    case MON_N_SEL:
        return MON_LOOKBACK_S + (double)n->offset_ms / 1000.0;
    case MON_N_MATRIX:
        return (double)(n->range_ms + n->sel->offset_ms) / 1000.0;
    case MON_N_CALL:
        for (int i = 0; i < n->n_args; i++)
            m = fmax(m, lookback_of(n->args[i]));
        return m;
    default:
        return fmax(lookback_of(n->lhs), lookback_of(n->rhs));
    }
}

double mon_expr_lookback_s(const mon_expr *e)
{
    return lookback_of(e->root);
}

/* ---- label sets as text ---- */

int mon_labels_parse(const char *text, mon_labels *out, mon_error *err)
{
    parser P = { .src = text, .at = 0, .err = err };
    out->n = 0;
    out->v = NULL;
    lex(&P);
    if (P.tok.kind != T_IDENT && P.tok.kind != T_LBRACE) {
        perr(&P, P.tok.pos, "expected a series: name{label=\"value\", ...}");
        free(P.tok.str);
        return -1;
    }
    if (P.tok.kind == T_IDENT) {
        char *name = tok_text(&P);
        mon_labels_push(out, MON_NAME, name);
        free(name);
        lex(&P);
    }
    if (P.tok.kind == T_LBRACE) {
        lex(&P);
        while (P.tok.kind == T_IDENT) {
            char *name = tok_text(&P);
            lex(&P);
            if (P.tok.kind != T_ASSIGN) {
                free(name);
                break;
            }
            lex(&P);
            if (P.tok.kind != T_STR) {
                free(name);
                break;
            }
            if (*P.tok.str)
                mon_labels_push(out, name, P.tok.str);
            free(name);
            lex(&P);
            if (P.tok.kind == T_COMMA)
                lex(&P);
        }
        if (P.tok.kind != T_RBRACE)
            perr(&P, P.tok.pos, "expected label=\"value\" pairs closed by \"}\"");
        else
            lex(&P);
    }
    if (!P.failed && P.tok.kind != T_EOF)
        perr(&P, P.tok.pos, "unexpected text after the series");
    free(P.tok.str);
    if (P.failed) {
        mon_labels_free(out);
        return -1;
    }
    mon_labels_sort(out);
    for (int i = 1; i < out->n; i++)
        if (!strcmp(out->v[i].name, out->v[i - 1].name)) {
            mon_errf(err, "label \"%s\" given twice", out->v[i].name);
            mon_labels_free(out);
            return -1;
        }
    return 0;
}
