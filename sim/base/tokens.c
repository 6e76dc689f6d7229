/*
 * tokens.c - LLM requests as token counts: reading the Azure LLM inference
 * trace (CSV, two header forms) and Mooncake's JSONL trace into one sorted
 * array of requests, and drawing token counts from fixed, lognormal or
 * empirical distributions with GSL.
 *
 * Reading never trusts the file: every line is read whole (getline), every
 * field is checked (a decimal number, finite, whole where a count is meant,
 * within int), and the first problem is reported as "path:line:col: what",
 * the column (1-based, in bytes) being where the offending field starts.
 * Azure TIMESTAMPs ("2023-11-16 18:15:46.6805900", no time zone: UTC) are
 * turned into seconds by civil-date arithmetic on whole seconds, the
 * fraction kept apart, so sub-microsecond digits survive the subtraction of
 * the earliest row.
 */
#include "tokens.h"

#include <cjson/cJSON.h>
#include <gsl/gsl_randist.h>

#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { MOONCAKE_BLOCK_TOKENS = 512 };

/* Hash ids above this would not survive cJSON's doubles exactly. */
static const double HASH_MAX = 9007199254740992.0; /* 2^53 */

typedef enum { FMT_AZURE_TIMESTAMP = 0, FMT_AZURE_SECONDS, FMT_MOONCAKE } trace_format;

static const char *const CSV_COLUMNS[2][3] = {
    { "TIMESTAMP", "ContextTokens", "GeneratedTokens" },
    { "arrived_at", "num_prefill_tokens", "num_decode_tokens" },
};

typedef struct {
    const char *path;
    char *err;
    size_t err_len;
    size_t line; /* 1-based number of the line being read */
} reader;

static int fail(const reader *r, size_t col, const char *fmt, ...)
{
    if (r->err && r->err_len) {
        int k = snprintf(r->err, r->err_len, "%s:%zu:%zu: ", r->path, r->line, col);
        if (k >= 0 && (size_t)k < r->err_len) {
            va_list ap;
            va_start(ap, fmt);
            vsnprintf(r->err + k, r->err_len - (size_t)k, fmt, ap);
            va_end(ap);
        }
    }
    return -1;
}

/* How many bytes of a field to quote in a message. */
static int shown_len(size_t len)
{
    return len > 60 ? 60 : (int)len;
}

static int is_blank(char c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '\f' || c == '\v';
}

/* ---- numbers ---- */

/* A plain decimal number: [+-]digits[.digits][(e|E)[+-]digits] with digits
 * on at least one side of the point; no hex, inf or nan. s is NUL-ended at
 * s[len]. 0 with the value (possibly infinite when out of range), or -1. */
static int parse_decimal(const char *s, size_t len, double *v)
{
    size_t i = 0, digits = 0;
    if (i < len && (s[i] == '+' || s[i] == '-'))
        i++;
    while (i < len && s[i] >= '0' && s[i] <= '9')
        i++, digits++;
    if (i < len && s[i] == '.') {
        i++;
        while (i < len && s[i] >= '0' && s[i] <= '9')
            i++, digits++;
    }
    if (!digits)
        return -1;
    if (i < len && (s[i] == 'e' || s[i] == 'E')) {
        size_t exp_digits = 0;
        i++;
        if (i < len && (s[i] == '+' || s[i] == '-'))
            i++;
        while (i < len && s[i] >= '0' && s[i] <= '9')
            i++, exp_digits++;
        if (!exp_digits)
            return -1;
    }
    if (i != len)
        return -1;
    errno = 0;
    *v = strtod(s, NULL);
    return 0;
}

/* Checks a token count read as a number; 0 with it in *out, or -1. An
 * output count of 0 is read as 1: the server answers at least one token
 * (the one that ends the reply), and 0 would leave a request that never
 * occupies a decode step. A prompt of 0 tokens cannot be served at all. */
static int check_tokens(const reader *r, size_t col, const char *name, double v, int is_input,
                        int *out)
{
    if (!isfinite(v))
        return fail(r, col, "%s is out of range", name);
    if (v < 0)
        return fail(r, col, "%s %.15g is negative", name, v);
    if (v != floor(v))
        return fail(r, col, "%s %.15g is not a whole number of tokens", name, v);
    if (v > INT_MAX)
        return fail(r, col, "%s %.15g is too large (at most %d)", name, v, INT_MAX);
    if (v == 0) {
        if (is_input)
            return fail(r, col, "%s is 0: a request has at least one prompt token", name);
        v = 1;
    }
    *out = (int)v;
    return 0;
}

static int check_time(const reader *r, size_t col, const char *name, double v)
{
    if (!isfinite(v))
        return fail(r, col, "%s is out of range", name);
    if (v < 0)
        return fail(r, col, "%s %.15g is negative", name, v);
    return 0;
}

/* ---- Azure TIMESTAMP ---- */

/* Days from 1970-01-01 to a proleptic Gregorian date (H. Hinnant's
 * days_from_civil). */
static long long days_from_civil(long long y, unsigned m, unsigned d)
{
    y -= m <= 2;
    const long long era = (y >= 0 ? y : y - 399) / 400;
    const unsigned yoe = (unsigned)(y - era * 400);
    const unsigned doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
    const unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + (long long)doe - 719468;
}

static int days_in_month(int y, int m)
{
    static const int DAYS[12] = { 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 };
    int leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    return m == 2 && leap ? 29 : DAYS[m - 1];
}

/* n digits at s[*i] as a number; -1 if they are not all digits. */
static int digits_at(const char *s, size_t len, size_t *i, int n)
{
    int v = 0;
    for (int k = 0; k < n; k++, (*i)++) {
        if (*i >= len || s[*i] < '0' || s[*i] > '9')
            return -1;
        v = v * 10 + (s[*i] - '0');
    }
    return v;
}

/* "YYYY-MM-DD HH:MM:SS[.fraction]" (or a 'T' between date and time) into
 * whole seconds since 1970 and the fraction; 0, or -1 if malformed. */
static int parse_timestamp(const char *s, size_t len, long long *whole_s, double *frac_s)
{
    size_t i = 0;
    int y = digits_at(s, len, &i, 4);
    if (y < 0 || i >= len || s[i++] != '-')
        return -1;
    int mo = digits_at(s, len, &i, 2);
    if (mo < 1 || mo > 12 || i >= len || s[i++] != '-')
        return -1;
    int d = digits_at(s, len, &i, 2);
    if (d < 1 || d > days_in_month(y, mo) || i >= len || (s[i] != ' ' && s[i] != 'T'))
        return -1;
    i++;
    int h = digits_at(s, len, &i, 2);
    if (h < 0 || h > 23 || i >= len || s[i++] != ':')
        return -1;
    int mi = digits_at(s, len, &i, 2);
    if (mi < 0 || mi > 59 || i >= len || s[i++] != ':')
        return -1;
    int sec = digits_at(s, len, &i, 2);
    if (sec < 0 || sec > 59)
        return -1;
    double frac = 0, digit_s = 0.1;
    if (i < len && s[i] == '.') {
        i++;
        if (i >= len)
            return -1;
        for (; i < len && s[i] >= '0' && s[i] <= '9'; i++, digit_s /= 10)
            frac += (s[i] - '0') * digit_s;
    }
    if (i != len)
        return -1;
    *whole_s = days_from_civil(y, (unsigned)mo, (unsigned)d) * 86400LL + h * 3600LL + mi * 60LL + sec;
    *frac_s = frac;
    return 0;
}

/* ---- growing the request array ---- */

static int push_request(const reader *r, tok_trace *t, size_t *cap, tok_request q)
{
    if (t->n == *cap) {
        size_t ncap = *cap ? *cap * 2 : 1024;
        if (ncap > SIZE_MAX / sizeof *t->req)
            return fail(r, 1, "out of memory");
        tok_request *nr = realloc(t->req, ncap * sizeof *nr);
        if (!nr)
            return fail(r, 1, "out of memory");
        t->req = nr;
        *cap = ncap;
    }
    t->req[t->n++] = q;
    return 0;
}

/* ---- CSV ---- */

typedef struct {
    char *s;    /* trimmed text, NUL-ended once split_csv returns */
    size_t len;
    size_t col; /* 1-based column of its first byte (of the field, when empty) */
} csv_field;

enum { CSV_MAX_FIELDS = 4 };

/* Splits a line (no line end) at commas, each field trimmed of blanks;
 * keeps the first CSV_MAX_FIELDS, returns how many there are. */
static size_t split_csv(char *line, size_t len, csv_field *f)
{
    size_t n = 0, i = 0;
    for (;;) {
        size_t start = i;
        while (i < len && line[i] != ',')
            i++;
        size_t end = i, a = start, b = end;
        while (a < b && is_blank(line[a]))
            a++;
        while (b > a && is_blank(line[b - 1]))
            b--;
        if (n < CSV_MAX_FIELDS)
            f[n] = (csv_field){ line + a, b - a, (a < b ? a : start) + 1 };
        n++;
        if (i >= len)
            break;
        i++; /* the comma */
    }
    for (size_t k = 0; k < n && k < CSV_MAX_FIELDS; k++)
        f[k].s[f[k].len] = '\0'; /* a comma, a blank or the line's end: no field's byte */
    return n;
}

/* Which header form the line is; -1 with the error set if neither. */
static int csv_header(const reader *r, char *line, size_t len)
{
    char shown[64];
    snprintf(shown, sizeof shown, "%.*s", shown_len(len), line);
    csv_field f[CSV_MAX_FIELDS];
    size_t n = split_csv(line, len, f);
    size_t best_col = 1, best_match = 0;
    for (int form = 0; form < 2; form++) {
        size_t k = 0;
        while (k < 3 && k < n && strcmp(f[k].s, CSV_COLUMNS[form][k]) == 0)
            k++;
        if (k == 3 && n == 3)
            return form;
        if (k > best_match || form == 0) {
            best_match = k;
            best_col = k < n && k < CSV_MAX_FIELDS ? f[k].col : len + 1;
        }
    }
    fail(r, best_col,
         "unknown header \"%s\" (expected TIMESTAMP,ContextTokens,GeneratedTokens or "
         "arrived_at,num_prefill_tokens,num_decode_tokens)",
         shown);
    return -1;
}

/* One data row. For TIMESTAMP rows t_s holds the seconds since the first
 * row's whole second (fraction included), made relative at the end. */
static int csv_row(const reader *r, trace_format fmt, char *line, size_t len, int *have_first,
                   long long *first_whole_s, tok_request *q)
{
    csv_field f[CSV_MAX_FIELDS];
    size_t n = split_csv(line, len, f);
    const char *const *names = CSV_COLUMNS[fmt];
    if (n < 3)
        return fail(r, len + 1, "missing field %s", names[n]);
    if (n > 3)
        return fail(r, f[3].col, "unexpected field 4 (a row has 3: %s,%s,%s)", names[0], names[1],
                    names[2]);
    for (int k = 0; k < 3; k++)
        if (f[k].len == 0)
            return fail(r, f[k].col, "%s is empty", names[k]);
    *q = (tok_request){ 0 };
    if (fmt == FMT_AZURE_TIMESTAMP) {
        long long whole_s;
        double frac_s;
        if (parse_timestamp(f[0].s, f[0].len, &whole_s, &frac_s))
            return fail(r, f[0].col, "%s \"%.*s\" is not a date and time YYYY-MM-DD HH:MM:SS[.fraction]",
                        names[0], shown_len(f[0].len), f[0].s);
        if (!*have_first) {
            *have_first = 1;
            *first_whole_s = whole_s;
        }
        q->t_s = (double)(whole_s - *first_whole_s) + frac_s;
    } else {
        double t_s;
        if (parse_decimal(f[0].s, f[0].len, &t_s))
            return fail(r, f[0].col, "%s \"%.*s\" is not a number", names[0], shown_len(f[0].len), f[0].s);
        if (check_time(r, f[0].col, names[0], t_s))
            return -1;
        q->t_s = t_s;
    }
    int *dst[2] = { &q->input_tokens, &q->output_tokens };
    for (int k = 1; k < 3; k++) {
        double v;
        if (parse_decimal(f[k].s, f[k].len, &v))
            return fail(r, f[k].col, "%s \"%.*s\" is not a number", names[k], shown_len(f[k].len), f[k].s);
        if (check_tokens(r, f[k].col, names[k], v, k == 1, dst[k - 1]))
            return -1;
    }
    return 0;
}

/* ---- Mooncake JSONL ---- */

/* Column of the value of a top-level key in a line holding a JSON object,
 * as written (a key spelt with escapes is not found); obj_col if absent. */
static size_t json_value_col(const char *s, size_t len, const char *key, size_t obj_col)
{
    size_t klen = strlen(key);
    int depth = 0;
    for (size_t i = 0; i < len; i++) {
        char c = s[i];
        if (c == '"') {
            size_t a = ++i;
            while (i < len && s[i] != '"')
                i += s[i] == '\\' ? 2 : 1;
            if (i >= len)
                break;
            if (depth == 1 && i - a == klen && memcmp(s + a, key, klen) == 0) {
                size_t j = i + 1;
                while (j < len && is_blank(s[j]))
                    j++;
                if (j < len && s[j] == ':') {
                    j++;
                    while (j < len && is_blank(s[j]))
                        j++;
                    return j + 1;
                }
            }
        } else if (c == '{' || c == '[') {
            depth++;
        } else if (c == '}' || c == ']') {
            depth--;
        }
    }
    return obj_col;
}

/* A required number member of a Mooncake object; 0 with it, or -1. */
static int json_number(const reader *r, const cJSON *obj, const char *line, size_t len, size_t obj_col,
                       const char *key, double *v)
{
    const cJSON *item = cJSON_GetObjectItemCaseSensitive(obj, key);
    if (!item)
        return fail(r, obj_col, "missing field %s", key);
    if (!cJSON_IsNumber(item))
        return fail(r, json_value_col(line, len, key, obj_col), "%s is not a number", key);
    *v = item->valuedouble;
    return 0;
}

static int json_hashes(const reader *r, const cJSON *obj, const char *line, size_t len, size_t obj_col,
                       tok_request *q)
{
    const cJSON *arr = cJSON_GetObjectItemCaseSensitive(obj, "hash_ids");
    if (!arr || cJSON_IsNull(arr))
        return 0; /* a trace without prefix identity */
    size_t col = json_value_col(line, len, "hash_ids", obj_col);
    if (!cJSON_IsArray(arr))
        return fail(r, col, "hash_ids is not an array");
    int n = cJSON_GetArraySize(arr);
    int need = q->input_tokens / MOONCAKE_BLOCK_TOKENS + (q->input_tokens % MOONCAKE_BLOCK_TOKENS != 0);
    if (n != need)
        return fail(r, col, "hash_ids has %d blocks but input_length %d needs %d (%d tokens each)", n,
                    q->input_tokens, need, MOONCAKE_BLOCK_TOKENS);
    uint64_t *h = malloc((size_t)n * sizeof *h);
    if (!h)
        return fail(r, col, "out of memory");
    int k = 0;
    const cJSON *e;
    cJSON_ArrayForEach(e, arr)
    {
        double v = cJSON_IsNumber(e) ? e->valuedouble : -1;
        if (!(v >= 0 && v < HASH_MAX && v == floor(v))) {
            free(h);
            return fail(r, col, "hash_ids[%d] is not a whole number from 0 to 2^53 - 1", k);
        }
        h[k++] = (uint64_t)v;
    }
    q->hashes = h;
    q->n_hashes = n;
    return 0;
}

/* One Mooncake line (no line end); obj_col is where its first non-blank is. */
static int mooncake_row(const reader *r, const char *line, size_t len, size_t obj_col, tok_request *q)
{
    const char *end = NULL;
    cJSON *obj = cJSON_ParseWithLengthOpts(line, len + 1, &end, 1); /* with its NUL */
    if (!obj) {
        size_t col = end && end >= line && end <= line + len ? (size_t)(end - line) + 1 : obj_col;
        return fail(r, col, "bad JSON (each line of a Mooncake trace is one JSON object)");
    }
    *q = (tok_request){ 0 };
    int rc = 0;
    double t_ms, in_tokens, out_tokens;
    if (!cJSON_IsObject(obj))
        rc = fail(r, obj_col, "not a JSON object (each line of a Mooncake trace is one)");
    else if (json_number(r, obj, line, len, obj_col, "timestamp", &t_ms) ||
             check_time(r, json_value_col(line, len, "timestamp", obj_col), "timestamp", t_ms) ||
             json_number(r, obj, line, len, obj_col, "input_length", &in_tokens) ||
             check_tokens(r, json_value_col(line, len, "input_length", obj_col), "input_length",
                          in_tokens, 1, &q->input_tokens) ||
             json_number(r, obj, line, len, obj_col, "output_length", &out_tokens) ||
             check_tokens(r, json_value_col(line, len, "output_length", obj_col), "output_length",
                          out_tokens, 0, &q->output_tokens) ||
             json_hashes(r, obj, line, len, obj_col, q))
        rc = -1;
    else
        q->t_s = t_ms / 1000.0;
    cJSON_Delete(obj);
    return rc;
}

/* ---- the whole file ---- */

/* Stable sort by t_s (a merge sort; most traces are sorted already). */
static void sort_by_time(tok_request *a, size_t n)
{
    size_t i = 1;
    while (i < n && !(a[i].t_s < a[i - 1].t_s))
        i++;
    if (i >= n)
        return;
    tok_request *tmp = malloc(n * sizeof *tmp);
    if (!tmp) { /* no memory for the merge: insertion sort, also stable */
        for (size_t k = 1; k < n; k++) {
            tok_request x = a[k];
            size_t j = k;
            for (; j > 0 && x.t_s < a[j - 1].t_s; j--)
                a[j] = a[j - 1];
            a[j] = x;
        }
        return;
    }
    for (size_t width = 1; width < n; width *= 2) {
        for (size_t lo = 0; lo < n; lo += 2 * width) {
            size_t mid = lo + width < n ? lo + width : n;
            size_t hi = mid + width < n ? mid + width : n;
            size_t p = lo, q = mid, o = lo;
            while (p < mid && q < hi)
                tmp[o++] = a[q].t_s < a[p].t_s ? a[q++] : a[p++];
            while (p < mid)
                tmp[o++] = a[p++];
            while (q < hi)
                tmp[o++] = a[q++];
        }
        memcpy(a, tmp, n * sizeof *a);
        if (width > n / 2)
            break;
    }
    free(tmp);
}

int tok_trace_load(const char *path, tok_trace *out, char *err, size_t err_len)
{
    reader r = { path ? path : "(no path)", err, err_len, 1 };
    if (err && err_len)
        err[0] = '\0';
    if (!out)
        return fail(&r, 1, "no trace to read into");
    *out = (tok_trace){ 0 };
    FILE *f = path ? fopen(path, "r") : NULL;
    if (!f)
        return fail(&r, 1, "cannot open: %s", path ? strerror(errno) : "no path given");

    tok_trace t = { 0 };
    char *line = NULL;
    size_t line_cap = 0, req_cap = 0;
    int fmt = -1, have_first = 0, rc = 0;
    long long first_whole_s = 0;
    r.line = 0;
    for (;;) {
        errno = 0;
        ssize_t got = getline(&line, &line_cap, f);
        if (got < 0)
            break;
        r.line++;
        size_t len = (size_t)got;
        char *s = line;
        if (strlen(line) != len) {
            rc = fail(&r, strlen(line) + 1, "NUL byte in the line");
            break;
        }
        while (len > 0 && is_blank(s[len - 1]))
            len--; /* the line end (LF or CRLF) and trailing blanks */
        s[len] = '\0';
        if (r.line == 1 && len >= 3 && memcmp(s, "\xEF\xBB\xBF", 3) == 0) {
            s += 3; /* a UTF-8 byte order mark; columns count from after it */
            len -= 3;
        }
        size_t lead = 0;
        while (lead < len && is_blank(s[lead]))
            lead++;
        if (lead == len)
            continue; /* blank line */
        if (fmt < 0) {
            if (s[lead] == '{') {
                fmt = FMT_MOONCAKE; /* the first line is already a request */
            } else {
                fmt = csv_header(&r, s, len);
                if (fmt < 0) {
                    rc = -1;
                    break;
                }
                continue;
            }
        }
        tok_request q;
        if (fmt == FMT_MOONCAKE)
            rc = mooncake_row(&r, s, len, lead + 1, &q);
        else
            rc = csv_row(&r, (trace_format)fmt, s, len, &have_first, &first_whole_s, &q);
        if (rc)
            break;
        if (push_request(&r, &t, &req_cap, q)) {
            free(q.hashes);
            rc = -1;
            break;
        }
    }
    int read_errno = errno;
    if (!rc && (ferror(f) || read_errno == ENOMEM)) {
        r.line++;
        rc = fail(&r, 1, "read error: %s", strerror(read_errno ? read_errno : EIO));
    }
    free(line);
    fclose(f);
    if (!rc && t.n == 0) {
        r.line++;
        rc = fail(&r, 1, fmt < 0 ? "empty trace: no header and no requests"
                                 : "empty trace: no requests after the header");
    }
    if (rc) {
        tok_trace_free(&t);
        return -1;
    }
    double t0_s = INFINITY;
    for (size_t i = 0; i < t.n; i++) {
        if (t.req[i].t_s < t0_s)
            t0_s = t.req[i].t_s;
        if (t.req[i].n_hashes > 0)
            t.hash_block_tokens = MOONCAKE_BLOCK_TOKENS;
    }
    if (fmt == FMT_AZURE_TIMESTAMP) /* relative to the earliest row: the first, once sorted */
        for (size_t i = 0; i < t.n; i++)
            t.req[i].t_s -= t0_s;
    sort_by_time(t.req, t.n);
    t.span_s = t.req[t.n - 1].t_s - t.req[0].t_s;
    *out = t;
    return 0;
}

void tok_trace_free(tok_trace *t)
{
    if (!t)
        return;
    for (size_t i = 0; i < t->n; i++)
        free(t->req[i].hashes);
    free(t->req);
    *t = (tok_trace){ 0 };
}

/* ---- distributions ---- */

void tok_dist_fixed(tok_dist *d, int tokens)
{
    *d = (tok_dist){ .kind = TOK_FIXED, .mean = tokens, .min = 1 };
}

int tok_dist_lognormal(tok_dist *d, double mu, double sigma)
{
    *d = (tok_dist){ .kind = TOK_LOGNORMAL, .mu = mu, .sigma = sigma, .min = 1 };
    if (!isfinite(mu) || !(sigma >= 0) || !isfinite(sigma)) {
        tok_dist_fixed(d, 1);
        return -1;
    }
    d->mean = exp(mu + sigma * sigma / 2);
    return 0;
}

int tok_dist_lognormal_mean_cv(tok_dist *d, double mean, double cv)
{
    if (!(mean > 0) || !isfinite(mean) || !(cv >= 0) || !isfinite(cv)) {
        tok_dist_fixed(d, 1);
        return -1;
    }
    /* E[X] = exp(mu + sigma^2/2), CV^2 = exp(sigma^2) - 1 */
    double var_log = log1p(cv * cv);
    *d = (tok_dist){ .kind = TOK_LOGNORMAL, .mean = mean, .mu = log(mean) - var_log / 2,
                     .sigma = sqrt(var_log), .min = 1 };
    return 0;
}

int tok_dist_empirical(tok_dist *d, const int *values, size_t n)
{
    *d = (tok_dist){ .kind = TOK_EMPIRICAL, .min = 1 };
    if (n == 0 || !values || n > SIZE_MAX / sizeof *values)
        return -1;
    d->values = malloc(n * sizeof *values);
    if (!d->values)
        return -1;
    memcpy(d->values, values, n * sizeof *values);
    d->n_values = n;
    double sum = 0;
    for (size_t i = 0; i < n; i++)
        sum += values[i];
    d->mean = sum / (double)n;
    return 0;
}

int tok_draw(const tok_dist *d, gsl_rng *rng)
{
    int lo = d->min > 1 ? d->min : 1;
    int hi = d->max > 0 ? d->max : INT_MAX;
    if (hi < lo)
        hi = lo;
    double x = lo;
    switch (d->kind) {
    case TOK_FIXED:
        x = d->mean;
        break;
    case TOK_LOGNORMAL:
        x = gsl_ran_lognormal(rng, d->mu, d->sigma);
        break;
    case TOK_EMPIRICAL:
        if (d->n_values > 0 && d->values) {
            unsigned long range = gsl_rng_max(rng) - gsl_rng_min(rng);
            size_t i = d->n_values - 1 <= range ? (size_t)gsl_rng_uniform_int(rng, d->n_values)
                                                : (size_t)(gsl_rng_uniform(rng) * (double)d->n_values);
            x = d->values[i < d->n_values ? i : d->n_values - 1];
        }
        break;
    }
    if (!(x >= lo)) /* NaN included */
        return lo;
    if (x >= hi)
        return hi;
    int v = (int)floor(x + 0.5);
    return v > hi ? hi : v;
}

void tok_dist_free(tok_dist *d)
{
    if (!d)
        return;
    free(d->values);
    d->values = NULL;
    d->n_values = 0;
}
