/*
 * nginx_upstream.c - an `upstream` block from an nginx configuration file
 * to an lb policy, its parameters and per-server configuration (see
 * nginx_upstream.h). The tokeniser follows nginx's ngx_conf_read_token
 * (src/core/ngx_conf_file.c); the directives and their checks follow
 * src/http/ngx_http_upstream.c (ngx_http_upstream_server) and the method
 * modules' handlers.
 */
#include "nginx_upstream.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

enum tok_kind { T_WORD, T_SEMI, T_OPEN, T_CLOSE, T_EOF };

typedef struct {
    enum tok_kind kind;
    char *text;   /* T_WORD: the word, quotes removed and escapes applied */
    int line, col;
} tok;

typedef struct {
    const char *file;
    tok *toks;
    size_t n, cap;
    size_t at;
    char *err;
    size_t errlen;
    int failed;
} parser;

static int fail(parser *p, int line, int col, const char *fmt, ...)
{
    va_list ap;
    int w;

    if (p->failed)
        return -1;
    p->failed = 1;
    w = snprintf(p->err, p->errlen, "%s:%d:%d: ", p->file, line, col);
    if (w >= 0 && (size_t)w < p->errlen) {
        va_start(ap, fmt);
        vsnprintf(p->err + w, p->errlen - (size_t)w, fmt, ap);
        va_end(ap);
    }
    return -1;
}

static int push(parser *p, enum tok_kind kind, char *text, int line, int col)
{
    if (p->n == p->cap) {
        size_t cap = p->cap ? 2 * p->cap : 64;
        tok *t = realloc(p->toks, cap * sizeof *t);
        if (!t) {
            free(text);
            return fail(p, line, col, "out of memory");
        }
        p->toks = t;
        p->cap = cap;
    }
    p->toks[p->n++] = (tok){ kind, text, line, col };
    return 0;
}

static int is_space(char c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

/* The whole text into tokens. */
static int tokenise(parser *p, const char *s)
{
    int line = 1, col = 1;

    for (;;) {
        char c = *s;
        if (c == '\0')
            return push(p, T_EOF, NULL, line, col);
        if (is_space(c)) {
            if (c == '\n') {
                line++;
                col = 1;
            } else {
                col++;
            }
            s++;
            continue;
        }
        if (c == '#') {   /* a comment runs to the end of the line */
            while (*s && *s != '\n')
                s++;
            continue;
        }
        if (c == ';' || c == '{' || c == '}') {
            if (push(p, c == ';' ? T_SEMI : c == '{' ? T_OPEN : T_CLOSE, NULL, line, col))
                return -1;
            s++;
            col++;
            continue;
        }
        /* a word: quoted, or up to a space, ';', '{' or '}' */
        int l0 = line, c0 = col;
        size_t len = 0;
        char *w = malloc(strlen(s) + 1);
        if (!w)
            return fail(p, line, col, "out of memory");
        if (c == '"' || c == '\'') {
            char q = c;
            s++;
            col++;
            for (;;) {
                if (*s == '\0') {
                    free(w);
                    return fail(p, l0, c0, "unexpected end of file, expecting %c", q);
                }
                if (*s == q) {
                    s++;
                    col++;
                    break;
                }
                if (*s == '\\' && (s[1] == q || s[1] == '\\' || s[1] == 't' || s[1] == 'r' ||
                                   s[1] == 'n')) {
                    char e = s[1];
                    w[len++] = e == 't' ? '\t' : e == 'r' ? '\r' : e == 'n' ? '\n' : e;
                    s += 2;
                    col += 2;
                    continue;
                }
                if (*s == '\n') {
                    line++;
                    col = 0;
                }
                w[len++] = *s++;
                col++;
            }
            if (*s && !is_space(*s) && *s != ';' && *s != '{' && *s != '}') {
                free(w);
                return fail(p, line, col, "unexpected \"%c\" after a quoted string", *s);
            }
        } else {
            while (*s && !is_space(*s) && *s != ';' && *s != '{' && *s != '}') {
                if (*s == '$' && s[1] == '{') {   /* ${var} inside a word */
                    while (*s && *s != '}') {
                        w[len++] = *s++;
                        col++;
                    }
                    if (!*s) {
                        free(w);
                        return fail(p, l0, c0, "unexpected end of file in \"${\"");
                    }
                }
                w[len++] = *s++;
                col++;
            }
        }
        w[len] = '\0';
        if (push(p, T_WORD, w, l0, c0))
            return -1;
    }
}

/* ngx_parse_time: "10s", "1m30s", "500ms", "30" (seconds). */
static int parse_time(const char *v, double *out)
{
    double total = 0;
    const char *s = v;

    if (!*s)
        return -1;
    while (*s) {
        double unit;
        char *end;
        if (*s < '0' || *s > '9')
            return -1;
        errno = 0;
        long n = strtol(s, &end, 10);
        if (errno)
            return -1;
        s = end;
        if (strncmp(s, "ms", 2) == 0) {
            unit = 0.001;
            s += 2;
        } else if (*s == 's' || *s == '\0') {
            unit = 1;
            s += *s == 's';
        } else if (*s == 'm') {
            unit = 60;
            s++;
        } else if (*s == 'h') {
            unit = 3600;
            s++;
        } else if (*s == 'd') {
            unit = 86400;
            s++;
        } else if (*s == 'w') {
            unit = 7 * 86400;
            s++;
        } else if (*s == 'M') {
            unit = 30 * 86400;
            s++;
        } else if (*s == 'y') {
            unit = 365 * 86400;
            s++;
        } else {
            return -1;
        }
        total += (double)n * unit;
    }
    *out = total;
    return 0;
}

/* A non-negative decimal integer (nginx ngx_atoi). */
static int parse_int(const char *v, long *out)
{
    long n = 0;

    if (!*v)
        return -1;
    for (; *v; v++) {
        if (*v < '0' || *v > '9' || n > 100000000L)
            return -1;
        n = n * 10 + (*v - '0');
    }
    *out = n;
    return 0;
}

/* The words of the directive starting at p->at, up to the ';', '{' or '}'
 * that ends it (not consumed). Returns how many there are; the first max
 * are in words[], pointing into the token array. */
static int directive(parser *p, tok **words, int max, enum tok_kind *end)
{
    int n = 0;

    while (p->toks[p->at].kind == T_WORD) {
        if (n < max)
            words[n] = &p->toks[p->at];
        n++;
        p->at++;
    }
    *end = p->toks[p->at].kind;
    return n;
}

static int server_line(parser *p, lb_nginx_upstream *u, tok **w, int n)
{
    lb_nginx_server *s, *grown;

    if (n < 2)
        return fail(p, w[0]->line, w[0]->col, "invalid number of arguments in \"server\"");
    grown = realloc(u->servers, (size_t)(u->n_servers + 1) * sizeof *grown);
    if (!grown)
        return fail(p, w[0]->line, w[0]->col, "out of memory");
    u->servers = grown;
    s = &u->servers[u->n_servers];
    *s = (lb_nginx_server){ .address = strdup(w[1]->text), .weight = 1, .max_fails = 1,
                            .fail_timeout_s = 10, .line = w[0]->line, .col = w[0]->col };
    u->n_servers++;
    if (!s->address)
        return fail(p, w[0]->line, w[0]->col, "out of memory");
    for (int i = 2; i < n; i++) {
        const char *a = w[i]->text;
        long v;
        if (strncmp(a, "weight=", 7) == 0) {
            if (parse_int(a + 7, &v) || v < 1)
                return fail(p, w[i]->line, w[i]->col, "invalid parameter \"%s\": weight must be an integer >= 1", a);
            s->weight = (double)v;
        } else if (strncmp(a, "max_fails=", 10) == 0) {
            if (parse_int(a + 10, &v))
                return fail(p, w[i]->line, w[i]->col, "invalid parameter \"%s\": max_fails must be an integer >= 0", a);
            s->max_fails = (int)v;
        } else if (strncmp(a, "max_conns=", 10) == 0) {
            if (parse_int(a + 10, &v))
                return fail(p, w[i]->line, w[i]->col, "invalid parameter \"%s\": max_conns must be an integer >= 0", a);
            s->max_conns = (int)v;
        } else if (strncmp(a, "fail_timeout=", 13) == 0) {
            if (parse_time(a + 13, &s->fail_timeout_s))
                return fail(p, w[i]->line, w[i]->col, "invalid parameter \"%s\": fail_timeout must be a time (10s, 500ms, 1m)", a);
        } else if (strcmp(a, "backup") == 0) {
            s->backup = 1;
        } else if (strcmp(a, "down") == 0) {
            s->down = 1;
        } else {
            return fail(p, w[i]->line, w[i]->col,
                        "server parameter \"%s\" is not supported (weight=, max_fails=, "
                        "fail_timeout=, max_conns=, backup, down)", a);
        }
    }
    return 0;
}

/* A balancing method directive; method_at remembers where, for the backup check. */
static int method_line(parser *p, lb_nginx_upstream *u, tok **w, int n, tok **method_at)
{
    const char *d = w[0]->text;

    if (*method_at)
        return fail(p, w[0]->line, w[0]->col, "\"%s\": load balancing method already set by \"%s\" at line %d",
                    d, (*method_at)->text, (*method_at)->line);
    *method_at = w[0];
    if (strcmp(d, "least_conn") == 0 || strcmp(d, "ip_hash") == 0) {
        if (n != 1)
            return fail(p, w[1]->line, w[1]->col, "invalid number of arguments in \"%s\"", d);
        if (d[0] == 'l') {
            u->policy = "least_conn";
        } else {
            u->policy = "hash";
            u->params.hash_mode = LB_HASH_IP;
            snprintf(u->params.hash_key, sizeof u->params.hash_key, "$remote_addr");
        }
        return 0;
    }
    if (strcmp(d, "random") == 0) {
        u->policy = "random";
        if (n == 1)
            return 0;
        if (strcmp(w[1]->text, "two") != 0)
            return fail(p, w[1]->line, w[1]->col, "invalid parameter \"%s\"", w[1]->text);
        if (n == 3 && strcmp(w[2]->text, "least_conn") != 0)
            return fail(p, w[2]->line, w[2]->col,
                        "invalid parameter \"%s\" (only least_conn is supported)", w[2]->text);
        if (n > 3)
            return fail(p, w[3]->line, w[3]->col, "invalid number of arguments in \"random\"");
        u->policy = "random_two_least_conn";   /* two: least_conn is the default */
        return 0;
    }
    if (strcmp(d, "hash") == 0) {
        if (n < 2 || n > 3)
            return fail(p, w[0]->line, w[0]->col, "invalid number of arguments in \"hash\"");
        if (n == 3 && strcmp(w[2]->text, "consistent") != 0)
            return fail(p, w[2]->line, w[2]->col, "invalid parameter \"%s\"", w[2]->text);
        if (strlen(w[1]->text) >= sizeof u->params.hash_key)
            return fail(p, w[1]->line, w[1]->col, "hash key longer than %zu characters",
                        sizeof u->params.hash_key - 1);
        u->policy = "hash";
        u->params.hash_mode = n == 3 ? LB_HASH_CONSISTENT : LB_HASH_PLAIN;
        snprintf(u->params.hash_key, sizeof u->params.hash_key, "%s", w[1]->text);
        return 0;
    }
    /* least_time */
    if (n < 2 || n > 3)
        return fail(p, w[0]->line, w[0]->col, "invalid number of arguments in \"least_time\"");
    if (strcmp(w[1]->text, "header") != 0 && strcmp(w[1]->text, "last_byte") != 0)
        return fail(p, w[1]->line, w[1]->col, "invalid parameter \"%s\" (header or last_byte)", w[1]->text);
    if (n == 3)
        return fail(p, w[2]->line, w[2]->col, "least_time parameter \"%s\" is not supported", w[2]->text);
    u->policy = "least_time";
    return 0;
}

/* Inside `upstream NAME {`: directives up to the closing brace. */
static int upstream_block(parser *p, lb_nginx_upstream *u, const tok *open)
{
    tok *w[16], *method_at = NULL;

    for (;;) {
        enum tok_kind end;
        tok *t = &p->toks[p->at];
        if (t->kind == T_CLOSE) {
            p->at++;
            break;
        }
        if (t->kind == T_EOF)
            return fail(p, open->line, open->col, "unexpected end of file, expecting \"}\"");
        if (t->kind != T_WORD)
            return fail(p, t->line, t->col, "unexpected \"%c\"", t->kind == T_SEMI ? ';' : '{');
        int n = directive(p, w, 16, &end);
        if (n > 16)
            return fail(p, w[0]->line, w[0]->col, "too many parameters in \"%s\"", w[0]->text);
        if (end != T_SEMI) {
            tok *e = &p->toks[p->at];
            return fail(p, e->line, e->col, "directive \"%s\" is not terminated by \";\"", w[0]->text);
        }
        p->at++;
        const char *d = w[0]->text;
        int rc;
        if (strcmp(d, "server") == 0)
            rc = server_line(p, u, w, n);
        else if (strcmp(d, "least_conn") == 0 || strcmp(d, "random") == 0 ||
                 strcmp(d, "hash") == 0 || strcmp(d, "ip_hash") == 0 ||
                 strcmp(d, "least_time") == 0)
            rc = method_line(p, u, w, n, &method_at);
        else if (strcmp(d, "zone") == 0)
            rc = n >= 2 && n <= 3 ? 0 : fail(p, w[0]->line, w[0]->col, "invalid number of arguments in \"zone\"");
        else
            rc = fail(p, w[0]->line, w[0]->col,
                      "directive \"%s\" is not supported in an upstream block (server, least_conn, "
                      "random, hash, ip_hash, least_time, zone)", d);
        if (rc)
            return -1;
    }
    if (u->n_servers == 0)
        return fail(p, open->line, open->col, "no servers are inside upstream \"%s\"", u->name);
    /* nginx: hash, ip_hash and random do not take backup servers */
    if (method_at && strcmp(method_at->text, "least_conn") != 0 &&
        strcmp(method_at->text, "least_time") != 0) {
        for (int i = 0; i < u->n_servers; i++)
            if (u->servers[i].backup)
                return fail(p, u->servers[i].line, u->servers[i].col,
                            "server parameter \"backup\" cannot be used with \"%s\" (line %d)",
                            method_at->text, method_at->line);
    }
    return 1;
}

/* Directives at one nesting level; 1 once the upstream is read. */
static int walk(parser *p, const char *name, lb_nginx_upstream *u, int depth)
{
    tok *w[2];

    for (;;) {
        enum tok_kind end;
        tok *t = &p->toks[p->at];
        if (t->kind == T_EOF) {
            if (depth > 0)
                return fail(p, t->line, t->col, "unexpected end of file, expecting \"}\"");
            return 0;
        }
        if (t->kind == T_CLOSE) {
            if (depth == 0)
                return fail(p, t->line, t->col, "unexpected \"}\"");
            p->at++;
            return 0;
        }
        if (t->kind != T_WORD)
            return fail(p, t->line, t->col, "unexpected \"%c\"", t->kind == T_SEMI ? ';' : '{');
        int n = directive(p, w, 2, &end);
        if (end == T_SEMI) {
            p->at++;
            continue;
        }
        if (end != T_OPEN) {
            tok *e = &p->toks[p->at];
            return fail(p, e->line, e->col, "unexpected %s", e->kind == T_EOF ? "end of file" : "\"}\"");
        }
        tok *open = &p->toks[p->at++];
        if (strcmp(w[0]->text, "upstream") == 0 && n == 2 && strcmp(w[1]->text, name) == 0) {
            u->name = strdup(name);
            if (!u->name)
                return fail(p, w[0]->line, w[0]->col, "out of memory");
            return upstream_block(p, u, open);
        }
        int rc = walk(p, name, u, depth + 1);
        if (rc)
            return rc;
    }
}

int lb_nginx_parse(const char *text, const char *file, const char *name,
                   lb_nginx_upstream *out, char *err, size_t errlen)
{
    parser p = { .file = file ? file : "nginx.conf", .err = err, .errlen = errlen };
    int rc;

    memset(out, 0, sizeof *out);
    out->policy = "weighted_round_robin";   /* nginx's default method */
    out->params = lb_params_default();
    if (err && errlen)
        err[0] = '\0';
    if (!text || !name) {
        snprintf(err, errlen, "%s: no configuration or no upstream name", p.file);
        return -1;
    }
    rc = tokenise(&p, text);
    if (rc == 0) {
        rc = walk(&p, name, out, 0);
        if (rc == 0)
            rc = fail(&p, 1, 1, "upstream \"%s\" not found", name);
    }
    for (size_t i = 0; i < p.n; i++)
        free(p.toks[i].text);
    free(p.toks);
    return rc == 1 ? 0 : -1;
}

/* A whole file, NUL-terminated and without NUL bytes, malloc'd; NULL with
 * "path: why" in err. */
static char *read_text(const char *path, char *err, size_t errlen)
{
    FILE *f = fopen(path, "rb");
    char *text;
    long len;

    if (!f) {
        snprintf(err, errlen, "%s: %s", path, strerror(errno));
        return NULL;
    }
    struct stat st; /* a directory opens, and its ftell is LONG_MAX */
    if (fstat(fileno(f), &st) != 0 || !S_ISREG(st.st_mode)) {
        fclose(f);
        snprintf(err, errlen, "%s: not a regular file", path);
        return NULL;
    }
    if (fseek(f, 0, SEEK_END) != 0 || (len = ftell(f)) < 0 || fseek(f, 0, SEEK_SET) != 0) {
        fclose(f);
        snprintf(err, errlen, "%s: cannot read", path);
        return NULL;
    }
    text = malloc((size_t)len + 1);
    if (!text || fread(text, 1, (size_t)len, f) != (size_t)len) {
        free(text);
        fclose(f);
        snprintf(err, errlen, "%s: cannot read", path);
        return NULL;
    }
    fclose(f);
    text[len] = '\0';
    if (strlen(text) != (size_t)len) {
        free(text);
        snprintf(err, errlen, "%s: contains a NUL byte", path);
        return NULL;
    }
    return text;
}

int lb_nginx_read(const char *path, const char *name, lb_nginx_upstream *out,
                  char *err, size_t errlen)
{
    memset(out, 0, sizeof *out);
    char *text = read_text(path, err, errlen);
    if (!text)
        return -1;
    int rc = lb_nginx_parse(text, path, name, out, err, errlen);
    free(text);
    return rc;
}

/* ---- location blocks ---------------------------------------------------- */

/* Skips the block whose '{' was just consumed, to after its '}'. */
static int skip_block(parser *p)
{
    for (int depth = 1;;) {
        tok *t = &p->toks[p->at++];
        if (t->kind == T_EOF)
            return fail(p, t->line, t->col, "unexpected end of file, expecting \"}\"");
        depth += t->kind == T_OPEN ? 1 : t->kind == T_CLOSE ? -1 : 0;
        if (depth == 0)
            return 0;
    }
}

/* proxy_pass's upstream: http://NAME[:port][/uri] -> NAME. */
static char *upstream_of(const char *url)
{
    const char *h = strstr(url, "://");
    if (!h || (strncmp(url, "http://", 7) && strncmp(url, "https://", 8)))
        return NULL;
    h += 3;
    size_t n = strcspn(h, ":/");
    return n ? strndup(h, n) : NULL;
}

/* The body of `location [=|^~] URI {` (the '{' consumed) into loc. */
static int location_block(parser *p, lb_nginx_location *loc, const tok *at)
{
    tok *w[3] = { NULL };
    for (;;) {
        enum tok_kind end;
        tok *t = &p->toks[p->at];
        if (t->kind == T_CLOSE) {
            p->at++;
            break;
        }
        if (t->kind != T_WORD)
            return fail(p, t->line, t->col, "unexpected %s", t->kind == T_EOF ? "end of file"
                                                           : t->kind == T_SEMI ? "\";\"" : "\"{\"");
        int n = directive(p, w, 3, &end);
        if (end == T_OPEN) {
            if (!strcmp(w[0]->text, "location"))
                return fail(p, w[0]->line, w[0]->col, "nested location blocks are not supported");
            p->at++;
            if (skip_block(p))
                return -1;
            continue;
        }
        if (end != T_SEMI)
            return fail(p, p->toks[p->at].line, p->toks[p->at].col, "unexpected end of block");
        p->at++;
        if (!strcmp(w[0]->text, "proxy_pass")) {
            free(loc->upstream);
            loc->upstream = n == 2 ? upstream_of(w[1]->text) : NULL;
            if (!loc->upstream)
                return fail(p, w[0]->line, w[0]->col,
                            "proxy_pass: expected http://UPSTREAM (an upstream's name)");
        }
    }
    (void)at;
    return 0;
}

/* The locations of the server block whose '{' was just consumed. */
static int server_block(parser *p, lb_nginx_locations *out)
{
    tok *w[4] = { NULL };
    for (;;) {
        enum tok_kind end;
        tok *t = &p->toks[p->at];
        if (t->kind == T_CLOSE) {
            p->at++;
            return 0;
        }
        if (t->kind != T_WORD)
            return fail(p, t->line, t->col, "unexpected %s", t->kind == T_EOF ? "end of file"
                                                           : t->kind == T_SEMI ? "\";\"" : "\"{\"");
        int n = directive(p, w, 4, &end);
        if (end == T_SEMI) {
            p->at++;
            continue;
        }
        if (end != T_OPEN)
            return fail(p, p->toks[p->at].line, p->toks[p->at].col, "unexpected end of block");
        p->at++;
        if (strcmp(w[0]->text, "location") != 0) {
            if (skip_block(p))
                return -1;
            continue;
        }
        /* ngx_http_core_location: [=|~|~*|^~] uri, or @name */
        if (n < 2 || n > 3)
            return fail(p, w[0]->line, w[0]->col, "location: expected [=|^~] URI");
        const char *mod = n == 3 ? w[1]->text : NULL, *uri = w[n - 1]->text;
        if (!mod) { /* nginx also takes the modifier joined to the URI: =/x, ^~/x, ~re, ~*re */
            static const char *const joined[] = { "=", "^~", "~*", "~" };
            for (size_t i = 0; i < sizeof joined / sizeof joined[0] && !mod; i++)
                if (!strncmp(uri, joined[i], strlen(joined[i]))) {
                    mod = joined[i];
                    uri += strlen(joined[i]);
                }
        }
        if (mod && strcmp(mod, "=") && strcmp(mod, "^~") && strcmp(mod, "~") && strcmp(mod, "~*"))
            return fail(p, w[0]->line, w[0]->col, "location: expected [=|^~] URI");
        if (mod && (!strcmp(mod, "~") || !strcmp(mod, "~*")))
            return fail(p, w[0]->line, w[0]->col,
                        "location %s %s: regular-expression locations are not supported", mod, uri);
        if (uri[0] == '@') { /* named: only internal redirects reach it */
            if (skip_block(p))
                return -1;
            continue;
        }
        int exact = mod && !strcmp(mod, "=");
        for (int i = 0; i < out->n; i++)
            if (out->loc[i].exact == exact && !strcmp(out->loc[i].uri, uri))
                return fail(p, w[0]->line, w[0]->col, "duplicate location \"%s\" (line %d)", uri,
                            out->loc[i].line);
        lb_nginx_location *nl = realloc(out->loc, sizeof *nl * (size_t)(out->n + 1));
        if (!nl)
            return fail(p, w[0]->line, w[0]->col, "out of memory");
        out->loc = nl;
        lb_nginx_location *loc = &out->loc[out->n++];
        *loc = (lb_nginx_location){ .uri = strdup(uri), .exact = exact,
                                    .line = w[0]->line, .col = w[0]->col };
        if (location_block(p, loc, w[0]))
            return -1;
    }
}

/* Blocks at any depth until the first server block with locations. */
static int find_server(parser *p, lb_nginx_locations *out, int depth)
{
    tok *w[1] = { NULL };
    for (;;) {
        enum tok_kind end;
        tok *t = &p->toks[p->at];
        if (t->kind == T_EOF)
            return depth > 0 ? fail(p, t->line, t->col, "unexpected end of file, expecting \"}\"")
                             : 0;
        if (t->kind == T_CLOSE) {
            if (depth == 0)
                return fail(p, t->line, t->col, "unexpected \"}\"");
            p->at++;
            return 0;
        }
        if (t->kind != T_WORD)
            return fail(p, t->line, t->col, "unexpected \"%c\"", t->kind == T_SEMI ? ';' : '{');
        directive(p, w, 1, &end);
        if (end == T_SEMI) {
            p->at++;
            continue;
        }
        if (end != T_OPEN)
            return fail(p, p->toks[p->at].line, p->toks[p->at].col, "unexpected end of block");
        p->at++;
        int rc = !strcmp(w[0]->text, "server") ? server_block(p, out) : find_server(p, out, depth + 1);
        if (rc)
            return rc;
        if (out->n > 0)
            return 1;
    }
}

int lb_nginx_read_locations(const char *path, lb_nginx_locations *out, char *err, size_t errlen)
{
    memset(out, 0, sizeof *out);
    char *text = read_text(path, err, errlen);
    if (!text)
        return -1;
    parser p = { .file = path, .err = err, .errlen = errlen };
    int rc = tokenise(&p, text);
    if (rc == 0) {
        rc = find_server(&p, out, 0);
        if (rc == 0)
            rc = fail(&p, 1, 1, "no server block with location blocks");
    }
    for (size_t i = 0; i < p.n; i++)
        free(p.toks[i].text);
    free(p.toks);
    free(text);
    return rc == 1 ? 0 : -1;
}

int lb_nginx_match(const lb_nginx_locations *l, const char *path)
{
    int best = -1;
    size_t best_len = 0;
    for (int i = 0; i < l->n; i++) {
        size_t len = strlen(l->loc[i].uri);
        if (l->loc[i].exact) {
            if (!strcmp(path, l->loc[i].uri))
                return i; /* an exact match ends the search */
        } else if (len >= best_len && (best < 0 || len > best_len) &&
                   !strncmp(path, l->loc[i].uri, len)) {
            best = i;
            best_len = len;
        }
    }
    return best;
}

void lb_nginx_locations_free(lb_nginx_locations *l)
{
    if (!l)
        return;
    for (int i = 0; i < l->n; i++) {
        free(l->loc[i].uri);
        free(l->loc[i].upstream);
    }
    free(l->loc);
    memset(l, 0, sizeof *l);
}

void lb_nginx_free(lb_nginx_upstream *u)
{
    if (!u)
        return;
    for (int i = 0; i < u->n_servers; i++)
        free(u->servers[i].address);
    free(u->servers);
    free(u->name);
    memset(u, 0, sizeof *u);
}
