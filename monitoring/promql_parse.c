/*
 * promql_parse.c - lexer and recursive-descent parser for fleetsim's PromQL
 * subset, with Prometheus's precedence and type checks
 * (promql/parser/generated_parser.y, parse.go checkAST).
 *
 * Precedence, lowest first: or; and unless; == != <= < >= >; + -; * / %;
 * unary minus; ^ (right-associative). Errors carry line:col of the
 * offending token. The whole PromQL of Prometheus 2.42 for float samples:
 * every function of parser/functions.go and every aggregation, string
 * literals, subqueries, @ with start()/end(), negative offsets, numbers and
 * strings as Go reads them (strconv.ParseInt base 0, then ParseFloat;
 * strconv.Unquote). The functions of native histograms and of later
 * Prometheus versions are errors that name the function and say why.
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
    int in_brack;       /* inside [range] or [range:step] */
} parser;

/* parser/functions.go of Prometheus 2.42: argument types; variadic n: up
 * to n more arguments of the last type (-1: any number). */
static const mon_func funcs[] = {
    { "abs", MON_F_ABS, 1, { MON_T_VECTOR }, 0, MON_T_VECTOR },
    { "absent", MON_F_ABSENT, 1, { MON_T_VECTOR }, 0, MON_T_VECTOR },
    { "absent_over_time", MON_F_ABSENT_OT, 1, { MON_T_MATRIX }, 0, MON_T_VECTOR },
    { "acos", MON_F_ACOS, 1, { MON_T_VECTOR }, 0, MON_T_VECTOR },
    { "acosh", MON_F_ACOSH, 1, { MON_T_VECTOR }, 0, MON_T_VECTOR },
    { "asin", MON_F_ASIN, 1, { MON_T_VECTOR }, 0, MON_T_VECTOR },
    { "asinh", MON_F_ASINH, 1, { MON_T_VECTOR }, 0, MON_T_VECTOR },
    { "atan", MON_F_ATAN, 1, { MON_T_VECTOR }, 0, MON_T_VECTOR },
    { "atanh", MON_F_ATANH, 1, { MON_T_VECTOR }, 0, MON_T_VECTOR },
    { "avg_over_time", MON_F_AVG_OT, 1, { MON_T_MATRIX }, 0, MON_T_VECTOR },
    { "ceil", MON_F_CEIL, 1, { MON_T_VECTOR }, 0, MON_T_VECTOR },
    { "changes", MON_F_CHANGES, 1, { MON_T_MATRIX }, 0, MON_T_VECTOR },
    { "clamp", MON_F_CLAMP, 3, { MON_T_VECTOR, MON_T_SCALAR, MON_T_SCALAR }, 0, MON_T_VECTOR },
    { "clamp_max", MON_F_CLAMP_MAX, 2, { MON_T_VECTOR, MON_T_SCALAR }, 0, MON_T_VECTOR },
    { "clamp_min", MON_F_CLAMP_MIN, 2, { MON_T_VECTOR, MON_T_SCALAR }, 0, MON_T_VECTOR },
    { "cos", MON_F_COS, 1, { MON_T_VECTOR }, 0, MON_T_VECTOR },
    { "cosh", MON_F_COSH, 1, { MON_T_VECTOR }, 0, MON_T_VECTOR },
    { "count_over_time", MON_F_COUNT_OT, 1, { MON_T_MATRIX }, 0, MON_T_VECTOR },
    { "days_in_month", MON_F_DAYS_IN_MONTH, 1, { MON_T_VECTOR }, 1, MON_T_VECTOR },
    { "day_of_month", MON_F_DAY_OF_MONTH, 1, { MON_T_VECTOR }, 1, MON_T_VECTOR },
    { "day_of_week", MON_F_DAY_OF_WEEK, 1, { MON_T_VECTOR }, 1, MON_T_VECTOR },
    { "day_of_year", MON_F_DAY_OF_YEAR, 1, { MON_T_VECTOR }, 1, MON_T_VECTOR },
    { "deg", MON_F_DEG, 1, { MON_T_VECTOR }, 0, MON_T_VECTOR },
    { "delta", MON_F_DELTA, 1, { MON_T_MATRIX }, 0, MON_T_VECTOR },
    { "deriv", MON_F_DERIV, 1, { MON_T_MATRIX }, 0, MON_T_VECTOR },
    { "exp", MON_F_EXP, 1, { MON_T_VECTOR }, 0, MON_T_VECTOR },
    { "floor", MON_F_FLOOR, 1, { MON_T_VECTOR }, 0, MON_T_VECTOR },
    { "histogram_quantile", MON_F_HQUANTILE, 2, { MON_T_SCALAR, MON_T_VECTOR }, 0, MON_T_VECTOR },
    { "holt_winters", MON_F_HOLT_WINTERS, 3, { MON_T_MATRIX, MON_T_SCALAR, MON_T_SCALAR }, 0, MON_T_VECTOR },
    { "hour", MON_F_HOUR, 1, { MON_T_VECTOR }, 1, MON_T_VECTOR },
    { "idelta", MON_F_IDELTA, 1, { MON_T_MATRIX }, 0, MON_T_VECTOR },
    { "increase", MON_F_INCREASE, 1, { MON_T_MATRIX }, 0, MON_T_VECTOR },
    { "irate", MON_F_IRATE, 1, { MON_T_MATRIX }, 0, MON_T_VECTOR },
    { "label_replace", MON_F_LABEL_REPLACE, 5, { MON_T_VECTOR, MON_T_STRING, MON_T_STRING, MON_T_STRING, MON_T_STRING }, 0, MON_T_VECTOR },
    { "label_join", MON_F_LABEL_JOIN, 4, { MON_T_VECTOR, MON_T_STRING, MON_T_STRING, MON_T_STRING }, -1, MON_T_VECTOR },
    { "last_over_time", MON_F_LAST_OT, 1, { MON_T_MATRIX }, 0, MON_T_VECTOR },
    { "ln", MON_F_LN, 1, { MON_T_VECTOR }, 0, MON_T_VECTOR },
    { "log10", MON_F_LOG10, 1, { MON_T_VECTOR }, 0, MON_T_VECTOR },
    { "log2", MON_F_LOG2, 1, { MON_T_VECTOR }, 0, MON_T_VECTOR },
    { "max_over_time", MON_F_MAX_OT, 1, { MON_T_MATRIX }, 0, MON_T_VECTOR },
    { "min_over_time", MON_F_MIN_OT, 1, { MON_T_MATRIX }, 0, MON_T_VECTOR },
    { "minute", MON_F_MINUTE, 1, { MON_T_VECTOR }, 1, MON_T_VECTOR },
    { "month", MON_F_MONTH, 1, { MON_T_VECTOR }, 1, MON_T_VECTOR },
    { "pi", MON_F_PI, 0, { 0 }, 0, MON_T_SCALAR },
    { "predict_linear", MON_F_PREDICT_LINEAR, 2, { MON_T_MATRIX, MON_T_SCALAR }, 0, MON_T_VECTOR },
    { "present_over_time", MON_F_PRESENT_OT, 1, { MON_T_MATRIX }, 0, MON_T_VECTOR },
    { "quantile_over_time", MON_F_QUANTILE_OT, 2, { MON_T_SCALAR, MON_T_MATRIX }, 0, MON_T_VECTOR },
    { "rad", MON_F_RAD, 1, { MON_T_VECTOR }, 0, MON_T_VECTOR },
    { "rate", MON_F_RATE, 1, { MON_T_MATRIX }, 0, MON_T_VECTOR },
    { "resets", MON_F_RESETS, 1, { MON_T_MATRIX }, 0, MON_T_VECTOR },
    { "round", MON_F_ROUND, 2, { MON_T_VECTOR, MON_T_SCALAR }, 1, MON_T_VECTOR },
    { "scalar", MON_F_SCALAR, 1, { MON_T_VECTOR }, 0, MON_T_SCALAR },
    { "sgn", MON_F_SGN, 1, { MON_T_VECTOR }, 0, MON_T_VECTOR },
    { "sin", MON_F_SIN, 1, { MON_T_VECTOR }, 0, MON_T_VECTOR },
    { "sinh", MON_F_SINH, 1, { MON_T_VECTOR }, 0, MON_T_VECTOR },
    { "sort", MON_F_SORT, 1, { MON_T_VECTOR }, 0, MON_T_VECTOR },
    { "sort_desc", MON_F_SORT_DESC, 1, { MON_T_VECTOR }, 0, MON_T_VECTOR },
    { "sqrt", MON_F_SQRT, 1, { MON_T_VECTOR }, 0, MON_T_VECTOR },
    { "stddev_over_time", MON_F_STDDEV_OT, 1, { MON_T_MATRIX }, 0, MON_T_VECTOR },
    { "stdvar_over_time", MON_F_STDVAR_OT, 1, { MON_T_MATRIX }, 0, MON_T_VECTOR },
    { "sum_over_time", MON_F_SUM_OT, 1, { MON_T_MATRIX }, 0, MON_T_VECTOR },
    { "tan", MON_F_TAN, 1, { MON_T_VECTOR }, 0, MON_T_VECTOR },
    { "tanh", MON_F_TANH, 1, { MON_T_VECTOR }, 0, MON_T_VECTOR },
    { "time", MON_F_TIME, 0, { 0 }, 0, MON_T_SCALAR },
    { "timestamp", MON_F_TIMESTAMP, 1, { MON_T_VECTOR }, 0, MON_T_VECTOR },
    { "vector", MON_F_VECTOR, 1, { MON_T_SCALAR }, 0, MON_T_VECTOR },
    { "year", MON_F_YEAR, 1, { MON_T_VECTOR }, 1, MON_T_VECTOR },
};

/* Functions Prometheus 2.42 has that work on native histograms only
 * (fleetsim's series are floats, where they return nothing), and functions
 * of later versions: refused with the reason. */
static const char *const native_funcs[] = { "histogram_count", "histogram_sum",
                                            "histogram_fraction", NULL };
static const char *const later_funcs[] = {
    "histogram_avg", "histogram_stddev", "histogram_stdvar", "double_exponential_smoothing",
    "mad_over_time", "sort_by_label", "sort_by_label_desc", "info", "ts_of_max_over_time",
    "ts_of_min_over_time", "ts_of_last_over_time", "first_over_time", "ts_of_first_over_time",
    NULL,
};

static const char *const aggs[] = { "sum", "avg", "min", "max", "count", "group", "stddev",
                                    "stdvar", "topk", "bottomk", "quantile", "count_values",
                                    NULL };
static const char *const later_aggs[] = { "limitk", "limit_ratio", NULL };

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

/* ---- numbers as Go reads them ---- */

/* strconv.ParseFloat for the forms fleetsim meets: decimal, "Inf",
 * "Infinity", "NaN" (any case, signed), hex with a 'p' exponent; no
 * leading space, no underscores. 0, or -1 with *why ("invalid syntax",
 * "value out of range"). */
int mon_go_float(const char *text, double *out, const char **why)
{
    const char *p = text;
    if (*p == '+' || *p == '-')
        p++;
    if (!strcasecmp(p, "inf") || !strcasecmp(p, "infinity")) {
        *out = *text == '-' ? -INFINITY : INFINITY;
        return 0;
    }
    if (!strcasecmp(p, "nan") && p == text) {
        *out = NAN;
        return 0;
    }
    int hex = p[0] == '0' && (p[1] == 'x' || p[1] == 'X');
    if (!*p || isspace((unsigned char)*text) || strchr(text, '_') || strchr(text, '(') ||
        (hex && !strpbrk(p, "pP")) || (!hex && !(isdigit((unsigned char)*p) || *p == '.'))) {
        *why = "invalid syntax";
        return -1;
    }
    char *end;
    errno = 0;
    double v = strtod(text, &end);
    if (*end || end == text) {
        *why = "invalid syntax";
        return -1;
    }
    if (errno == ERANGE && isinf(v)) {
        *why = "value out of range";
        return -1;
    }
    *out = v;
    return 0;
}

/* parser.go number(): strconv.ParseInt(s, 0, 64) (0x hex, a leading 0
 * octal: "010" is 8), else strconv.ParseFloat (decimal; "1e400" is out of
 * range, "0x1p3" never reaches here as the lexer stops at 'p'). */
int mon_go_number(const char *text, double *out, const char **why)
{
    const char *p = text;
    int base = 10;
    if (p[0] == '0' && (p[1] == 'x' || p[1] == 'X')) {
        base = 16;
        p += 2;
    } else if (p[0] == '0' && p[1]) {
        base = 8;
        p += 1;
    }
    int ok = *p != 0;
    for (const char *q = p; *q && ok; q++)
        ok = base == 16 ? isxdigit((unsigned char)*q) != 0
                        : (*q >= '0' && *q < (base == 8 ? '8' : ':'));
    if (ok) {
        errno = 0;
        long long v = strtoll(p, NULL, base);
        if (errno != ERANGE) {
            *out = (double)v;
            return 0;
        }
    }
    return mon_go_float(text, out, why);
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
                int v = (e - '0') * 64 + (s[i + 2] - '0') * 8 + (s[i + 3] - '0');
                if (v > 255) { /* strconv.UnquoteChar: octal above \377 */
                    free(out);
                    perr(P, i, "invalid syntax: octal escape above \\377");
                    return -1;
                }
                out[k++] = (char)v;
                i += 4;
                continue;
            }
            if (e == 'u' || e == 'U') { /* a code point as UTF-8 */
                int nd = e == 'u' ? 4 : 8;
                unsigned long cp = 0;
                int okd = 1;
                for (int d = 0; d < nd && okd; d++) {
                    char h = s[i + 2 + d];
                    okd = isxdigit((unsigned char)h) != 0;
                    if (okd)
                        cp = cp * 16 + (unsigned long)(isdigit((unsigned char)h) ? h - '0' : (tolower((unsigned char)h) - 'a' + 10));
                }
                if (!okd || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) {
                    free(out);
                    perr(P, i, "invalid syntax: bad \\%c escape", e);
                    return -1;
                }
                if (cp < 0x80) {
                    out[k++] = (char)cp;
                } else if (cp < 0x800) {
                    out[k++] = (char)(0xC0 | (cp >> 6));
                    out[k++] = (char)(0x80 | (cp & 0x3F));
                } else if (cp < 0x10000) {
                    out[k++] = (char)(0xE0 | (cp >> 12));
                    out[k++] = (char)(0x80 | ((cp >> 6) & 0x3F));
                    out[k++] = (char)(0x80 | (cp & 0x3F));
                } else {
                    out[k++] = (char)(0xF0 | (cp >> 18));
                    out[k++] = (char)(0x80 | ((cp >> 12) & 0x3F));
                    out[k++] = (char)(0x80 | ((cp >> 6) & 0x3F));
                    out[k++] = (char)(0x80 | (cp & 0x3F));
                }
                i += 2 + nd;
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
        /* lexer.go scanNumber: digits (hex after 0x), '.', digits, an
         * exponent; then nothing alphanumeric may follow. */
        const char *p0 = s + P->at, *p = p0;
        const char *digits = "0123456789";
        if (p[0] == '0' && (p[1] == 'x' || p[1] == 'X')) {
            digits = "0123456789abcdefABCDEF";
            p += 2;
        }
        while (*p && strchr(digits, *p))
            p++;
        if (*p == '.') {
            p++;
            while (*p && strchr(digits, *p))
                p++;
        }
        if (*p == 'e' || *p == 'E') {
            p++;
            if (*p == '+' || *p == '-')
                p++;
            while (isdigit((unsigned char)*p))
                p++;
        }
        t->len = (int)(p - p0);
        if (ident_char((unsigned char)*p)) {
            perr(P, t->pos, "bad number or duration syntax: \"%.*s\"",
                 (int)(strcspn(p0, " \t\n()[]{},") > 40 ? 40 : strcspn(p0, " \t\n()[]{},")), p0);
            t->kind = T_ERR;
            return;
        }
        char *text = mon_xrealloc(NULL, (size_t)t->len + 1);
        memcpy(text, p0, (size_t)t->len);
        text[t->len] = '\0';
        const char *why = NULL;
        if (mon_go_number(text, &t->num, &why)) {
            perr(P, t->pos, "error parsing number: strconv.ParseFloat: parsing \"%s\": %s", text, why);
            free(text);
            t->kind = T_ERR;
            return;
        }
        free(text);
        t->kind = T_NUM;
        P->at += t->len;
        return;
    }
    if (c == ':' && (P->in_brack || isdigit((unsigned char)s[P->at + 1]))) {
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
    free(n->str);
    node_free(n->param);
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
    case MON_N_STR:
        return MON_T_STRING;
    case MON_N_SUBQ:
        return MON_T_MATRIX;
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
    return t == MON_T_SCALAR ? "scalar" : t == MON_T_VECTOR ? "instant vector"
           : t == MON_T_STRING ? "string" : "range vector";
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
        if (in_list(native_funcs, name, strlen(name)) >= 0)
            perr(P, pos, "function \"%s\" is not supported: it reads native histograms, which "
                 "fleetsim does not model (its series are floats)", name);
        else if (in_list(later_funcs, name, strlen(name)) >= 0)
            perr(P, pos, "function \"%s\" is not supported: it is newer than Prometheus 2.42, "
                 "whose PromQL fleetsim follows", name);
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
    /* parse.go checkAST for calls */
    if (!f->variadic) {
        if (n->n_args != f->n_args) {
            perr(P, pos, "expected %d argument(s) in call to \"%s\", got %d", f->n_args, name, n->n_args);
            node_free(n);
            return NULL;
        }
    } else {
        int na = f->n_args - 1;
        if (na > n->n_args) {
            perr(P, pos, "expected at least %d argument(s) in call to \"%s\", got %d", na, name, n->n_args);
            node_free(n);
            return NULL;
        }
        if (f->variadic > 0 && na + f->variadic < n->n_args) {
            perr(P, pos, "expected at most %d argument(s) in call to \"%s\", got %d", na + f->variadic,
                 name, n->n_args);
            node_free(n);
            return NULL;
        }
    }
    for (int i = 0; i < n->n_args; i++) {
        mon_type want = f->arg_types[i < f->n_args ? i : f->n_args - 1];
        mon_type t = mon_node_type(n->args[i]);
        if (t != want) {
            perr(P, n->args[i]->pos, "expected type %s in call to function \"%s\", got %s",
                 type_name(want), name, type_name(t));
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
    int with_param = n->agg == MON_AGG_TOPK || n->agg == MON_AGG_BOTTOMK ||
                     n->agg == MON_AGG_QUANTILE || n->agg == MON_AGG_COUNT_VALUES;
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
    mon_node *first = parse_expr(P, 0);
    if (!first)
        goto fail;
    if (with_param) {
        n->param = first;
        if (P->tok.kind != T_COMMA) {
            perr(P, P->tok.pos, "wrong number of arguments for aggregate expression provided, expected 2, got 1");
            goto fail;
        }
        lex(P);
        n->lhs = parse_expr(P, 0);
        if (!n->lhs)
            goto fail;
    } else {
        n->lhs = first;
    }
    if (P->tok.kind == T_COMMA) {
        perr(P, P->tok.pos, "wrong number of arguments for aggregate expression provided, expected %d, got %d",
             with_param ? 2 : 1, with_param ? 3 : 2);
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
    if (n->param) {
        mon_type want = n->agg == MON_AGG_COUNT_VALUES ? MON_T_STRING : MON_T_SCALAR;
        if (mon_node_type(n->param) != want) {
            perr(P, n->param->pos, "expected type %s in aggregation parameter, got %s",
                 type_name(want), type_name(mon_node_type(n->param)));
            goto fail;
        }
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
    case T_STR: {
        mon_node *n = node_new(MON_N_STR, pos);
        n->str = t->str;
        t->str = NULL;
        lex(P);
        return n;
    }
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
        if (in_list(later_aggs, name, strlen(name)) >= 0) {
            perr(P, pos, "aggregation \"%s\" is not supported: it is newer than Prometheus 2.42, "
                 "whose PromQL fleetsim follows", name);
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

/* The node an offset or @ applies to: a selector, the selector of a range
 * selector, or a subquery; NULL if none. */
static mon_node *modifier_target(mon_node *n)
{
    if (n->kind == MON_N_SEL || n->kind == MON_N_SUBQ)
        return n;
    if (n->kind == MON_N_MATRIX)
        return n->sel;
    return NULL;
}

/* primary, then [range], [range:step], offset (may be negative) and @. */
static mon_node *parse_postfix(parser *P)
{
    mon_node *n = parse_primary(P);
    while (n && !P->failed) {
        if (P->tok.kind == T_LBRACK) {
            int pos = P->tok.pos;
            P->in_brack = 1;
            lex(P);
            if (P->tok.kind != T_DUR) {
                char b[64];
                P->in_brack = 0;
                perr(P, P->tok.pos, "unexpected %s in range, expected duration", tok_desc(P, b, sizeof b));
                break;
            }
            int64_t range = P->tok.dur_ms;
            lex(P);
            if (P->tok.kind == T_COLON) {
                lex(P);
                int64_t step = 0;
                if (P->tok.kind == T_DUR) {
                    step = P->tok.dur_ms;
                    lex(P);
                }
                P->in_brack = 0;
                if (expect(P, T_RBRACK, "\"]\""))
                    break;
                if (mon_node_type(n) != MON_T_VECTOR) {
                    perr(P, pos, "subquery is only allowed on instant vector, got %s",
                         type_name(mon_node_type(n)));
                    break;
                }
                if (range <= 0) {
                    perr(P, pos, "range must be positive");
                    break;
                }
                if (n->kind == MON_N_SEL && (n->offset_ms || n->at)) {
                    /* "x offset 1m[5m:1m]" is fine in Prometheus: the
                     * selector keeps its modifiers */
                }
                mon_node *q = node_new(MON_N_SUBQ, n->pos);
                q->lhs = n;
                q->range_ms = range;
                q->step_ms = step;
                n = q;
                continue;
            }
            P->in_brack = 0;
            if (expect(P, T_RBRACK, "\"]\""))
                break;
            if (n->kind != MON_N_SEL) {
                perr(P, pos, "ranges only allowed for vector selectors");
                break;
            }
            if (n->offset_ms || n->at) {
                perr(P, pos, "no offset or @ modifiers allowed before range");
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
            int neg = 0;
            if (P->tok.kind == T_SUB || P->tok.kind == T_ADD) {
                neg = P->tok.kind == T_SUB;
                lex(P);
            }
            if (P->tok.kind != T_DUR) {
                char b[64];
                perr(P, P->tok.pos, "unexpected %s in offset, expected duration", tok_desc(P, b, sizeof b));
                break;
            }
            mon_node *sel = modifier_target(n);
            if (!sel) {
                perr(P, pos, "offset modifier must be preceded by an instant vector selector or range vector selector or a subquery");
                break;
            }
            if (sel->offset_ms) {
                perr(P, pos, "offset may not be set multiple times");
                break;
            }
            sel->offset_ms = neg ? -P->tok.dur_ms : P->tok.dur_ms;
            lex(P);
            continue;
        }
        if (P->tok.kind == T_AT) {
            int pos = P->tok.pos;
            lex(P);
            mon_node *sel = modifier_target(n);
            if (!sel) {
                perr(P, pos, "@ modifier must be preceded by an instant vector selector or range vector selector or a subquery");
                break;
            }
            if (sel->at) {
                perr(P, pos, "@ <timestamp> may not be set multiple times");
                break;
            }
            if (tok_is(P, "start") || tok_is(P, "end")) {
                sel->at = tok_is(P, "start") ? MON_AT_START : MON_AT_END;
                lex(P);
                if (expect(P, T_LPAREN, "\"(\"") || expect(P, T_RPAREN, "\")\""))
                    break;
                continue;
            }
            int negv = 0;
            if (P->tok.kind == T_SUB || P->tok.kind == T_ADD) {
                negv = P->tok.kind == T_SUB;
                lex(P);
            }
            if (P->tok.kind != T_NUM) {
                char b[64];
                perr(P, P->tok.pos, "unexpected %s in @, expected timestamp", tok_desc(P, b, sizeof b));
                break;
            }
            double ts = negv ? -P->tok.num : P->tok.num;
            /* parser.go: finite and within int64 milliseconds */
            if (!isfinite(ts) || ts >= 9223372036854775.0 || ts <= -9223372036854775.0) {
                perr(P, P->tok.pos, "timestamp out of bounds for @ modifier: %g", ts);
                break;
            }
            sel->at = MON_AT_TS;
            sel->at_ms = (int64_t)llround(ts * 1000.0);
            lex(P);
            continue;
        }
        return n;
    }
    node_free(n);
    return NULL;
}

static int check_bin(parser *P, mon_node *n);

static mon_node *parse_unary(parser *P)
{
    if (P->tok.kind == T_SUB || P->tok.kind == T_ADD) {
        int neg = P->tok.kind == T_SUB, pos = P->tok.pos;
        lex(P);
        mon_node *x = parse_unary(P);
        if (!x)
            return NULL;
        if (mon_node_type(x) == MON_T_MATRIX || mon_node_type(x) == MON_T_STRING) {
            perr(P, pos, "unary expression only allowed on expressions of type scalar or instant vector, got %s",
                 type_name(mon_node_type(x)));
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
    if (check_bin(P, n)) {
        node_free(n);
        return NULL;
    }
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
        *op = MON_OP_ATAN2;
        *prec = 5;
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
    if (lt == MON_T_MATRIX || rt == MON_T_MATRIX || lt == MON_T_STRING || rt == MON_T_STRING) {
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
        if (n->at)
            return INFINITY; /* reads a fixed time: keep all history */
        return fmax(0, MON_LOOKBACK_S + (double)n->offset_ms / 1000.0);
    case MON_N_MATRIX:
        if (n->sel->at)
            return INFINITY;
        return fmax(0, (double)(n->range_ms + n->sel->offset_ms) / 1000.0);
    case MON_N_SUBQ:
        if (n->at)
            return INFINITY;
        return fmax(0, (double)(n->range_ms + n->offset_ms) / 1000.0 + lookback_of(n->lhs));
    case MON_N_AGG:
        return fmax(lookback_of(n->lhs), lookback_of(n->param));
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
