/*
 * test_tokens.c - LLM request traces and token-length distributions: the
 * shipped Azure and Mooncake traces read back with their known rows and
 * means, the original Azure TIMESTAMP form converted across day, month and
 * year ends, every error message checked word for word with its line and
 * column, mangled files read without a crash, and draws checked against the
 * distributions' own moments and CDFs.
 */
#include "tokens.h"
#include "testutil.h"

#include <CUnit/Basic.h>
#include <gsl/gsl_cdf.h>
#include <gsl/gsl_rng.h>

#include <errno.h>
#include <limits.h>
#include <math.h>
#include <sys/stat.h>

static char *TMP; /* a fresh directory for the files written here */

static void shipped(char *buf, size_t len, const char *name)
{
    snprintf(buf, len, "%s/scenarios/traces/%s", tu_src(), name);
}

/* Writes len bytes (NULs included) to TMP/name; its path in buf. */
static void write_bytes(char *buf, size_t buflen, const char *name, const char *data, size_t len)
{
    snprintf(buf, buflen, "%s/%s", TMP, name);
    FILE *f = fopen(buf, "wb");
    if (f) {
        fwrite(data, 1, len, f);
        fclose(f);
    }
}

static void write_text(char *buf, size_t buflen, const char *name, const char *text)
{
    write_bytes(buf, buflen, name, text, strlen(text));
}

static double mean_input(const tok_trace *t)
{
    double s = 0;
    for (size_t i = 0; i < t->n; i++)
        s += t->req[i].input_tokens;
    return s / (double)t->n;
}

static double mean_output(const tok_trace *t)
{
    double s = 0;
    for (size_t i = 0; i < t->n; i++)
        s += t->req[i].output_tokens;
    return s / (double)t->n;
}

static int sorted(const tok_trace *t)
{
    for (size_t i = 1; i < t->n; i++)
        if (t->req[i].t_s < t->req[i - 1].t_s)
            return 0;
    return 1;
}

/* ---- the shipped traces ---- */

static void test_azure_conversation(void)
{
    char path[4096], err[512];
    tok_trace t;
    shipped(path, sizeof path, "azure-2023-conversation.csv");
    CU_ASSERT_EQUAL_FATAL(tok_trace_load(path, &t, err, sizeof err), 0);
    CU_ASSERT_EQUAL(t.n, 19366);
    CU_ASSERT_EQUAL(t.hash_block_tokens, 0);
    /* the file's first rows: 0.0,374,44 / 4.314579,396,109 / 4.541877,879,55 */
    CU_ASSERT_DOUBLE_EQUAL(t.req[0].t_s, 0.0, 0);
    CU_ASSERT_EQUAL(t.req[0].input_tokens, 374);
    CU_ASSERT_EQUAL(t.req[0].output_tokens, 44);
    CU_ASSERT_PTR_NULL(t.req[0].hashes);
    CU_ASSERT_EQUAL(t.req[0].n_hashes, 0);
    CU_ASSERT_DOUBLE_EQUAL(t.req[1].t_s, 4.314579, 1e-12);
    CU_ASSERT_EQUAL(t.req[1].input_tokens, 396);
    CU_ASSERT_EQUAL(t.req[1].output_tokens, 109);
    CU_ASSERT_DOUBLE_EQUAL(t.req[2].t_s, 4.541877, 1e-12);
    CU_ASSERT_EQUAL(t.req[2].input_tokens, 879);
    CU_ASSERT_EQUAL(t.req[2].output_tokens, 55);
    /* last row 3501.721937,197,183 */
    CU_ASSERT_DOUBLE_EQUAL(t.req[t.n - 1].t_s, 3501.721937, 1e-9);
    CU_ASSERT_EQUAL(t.req[t.n - 1].input_tokens, 197);
    CU_ASSERT_DOUBLE_EQUAL(t.span_s, 3501.721937, 1e-9);
    CU_ASSERT(sorted(&t));
    /* SOURCES.md: means 1,155 and 211 tokens, 5.53 req/s, each given to
     * its last digit, so within half of that digit */
    CU_ASSERT_DOUBLE_EQUAL(mean_input(&t), 1155, 0.5);
    CU_ASSERT_DOUBLE_EQUAL(mean_output(&t), 211, 0.5);
    CU_ASSERT_DOUBLE_EQUAL((double)t.n / t.span_s, 5.53, 0.005);
    tok_trace_free(&t);
    CU_ASSERT_PTR_NULL(t.req);
    CU_ASSERT_EQUAL(t.n, 0);
}

static int cmp_int(const void *a, const void *b)
{
    int x = *(const int *)a, y = *(const int *)b;
    return (x > y) - (x < y);
}

static void test_azure_code(void)
{
    char path[4096], err[512];
    tok_trace t;
    shipped(path, sizeof path, "azure-2023-code.csv");
    CU_ASSERT_EQUAL_FATAL(tok_trace_load(path, &t, err, sizeof err), 0);
    CU_ASSERT_EQUAL(t.n, 8819);
    /* first rows 0.0,4808,10 / 0.052,3180,8 */
    CU_ASSERT_EQUAL(t.req[0].input_tokens, 4808);
    CU_ASSERT_EQUAL(t.req[0].output_tokens, 10);
    CU_ASSERT_DOUBLE_EQUAL(t.req[1].t_s, 0.052, 1e-12);
    CU_ASSERT_EQUAL(t.req[1].input_tokens, 3180);
    CU_ASSERT_EQUAL(t.req[1].output_tokens, 8);
    CU_ASSERT_DOUBLE_EQUAL(mean_input(&t), 2048, 0.5);
    /* output median 13 */
    int *out = malloc(t.n * sizeof *out);
    for (size_t i = 0; i < t.n; i++)
        out[i] = t.req[i].output_tokens;
    qsort(out, t.n, sizeof *out, cmp_int);
    CU_ASSERT_EQUAL(out[t.n / 2], 13);
    free(out);
    tok_trace_free(&t);
}

static void test_mooncake_conversation(void)
{
    char path[4096], err[512];
    tok_trace t;
    shipped(path, sizeof path, "mooncake-conversation.jsonl");
    CU_ASSERT_EQUAL_FATAL(tok_trace_load(path, &t, err, sizeof err), 0);
    CU_ASSERT_EQUAL(t.n, 12031);
    CU_ASSERT_EQUAL(t.hash_block_tokens, 512);
    /* {"timestamp": 0, "input_length": 6758, "output_length": 500, "hash_ids": [0, 1, ..., 13]} */
    CU_ASSERT_DOUBLE_EQUAL(t.req[0].t_s, 0, 0);
    CU_ASSERT_EQUAL(t.req[0].input_tokens, 6758);
    CU_ASSERT_EQUAL(t.req[0].output_tokens, 500);
    CU_ASSERT_EQUAL_FATAL(t.req[0].n_hashes, 14);
    for (int j = 0; j < 14; j++)
        CU_ASSERT_EQUAL(t.req[0].hashes[j], (uint64_t)j);
    /* second: 7322 tokens, [0, 14, 15, ..., 27]: shares block 0 with the first */
    CU_ASSERT_EQUAL(t.req[1].input_tokens, 7322);
    CU_ASSERT_EQUAL(t.req[1].output_tokens, 490);
    CU_ASSERT_EQUAL_FATAL(t.req[1].n_hashes, 15);
    CU_ASSERT_EQUAL(t.req[1].hashes[0], 0);
    for (int j = 1; j < 15; j++)
        CU_ASSERT_EQUAL(t.req[1].hashes[j], (uint64_t)(13 + j));
    /* last line: timestamp 3536999 ms, 20774 tokens, 41 blocks ending 182789 */
    const tok_request *last = &t.req[t.n - 1];
    CU_ASSERT_DOUBLE_EQUAL(last->t_s, 3536.999, 1e-9);
    CU_ASSERT_DOUBLE_EQUAL(t.span_s, 3536.999, 1e-9);
    CU_ASSERT_EQUAL(last->input_tokens, 20774);
    CU_ASSERT_EQUAL_FATAL(last->n_hashes, 41);
    CU_ASSERT_EQUAL(last->hashes[40], 182789);
    int blocks_ok = 1;
    for (size_t i = 0; i < t.n; i++)
        blocks_ok &= t.req[i].n_hashes == (t.req[i].input_tokens + 511) / 512;
    CU_ASSERT(blocks_ok);
    CU_ASSERT(sorted(&t));
    /* SOURCES.md: means 12,035 and 343 */
    CU_ASSERT_DOUBLE_EQUAL(mean_input(&t), 12035, 0.5);
    CU_ASSERT_DOUBLE_EQUAL(mean_output(&t), 343, 0.5);
    tok_trace_free(&t);
}

static void test_mooncake_synthetic(void)
{
    char path[4096], err[512];
    tok_trace t;
    shipped(path, sizeof path, "mooncake-synthetic.jsonl");
    CU_ASSERT_EQUAL_FATAL(tok_trace_load(path, &t, err, sizeof err), 0);
    CU_ASSERT_EQUAL(t.n, 3993);
    CU_ASSERT_DOUBLE_EQUAL(t.req[t.n - 1].t_s, 1022.025, 1e-9);
    tok_trace_free(&t);
}

/* ---- formats ---- */

/* Milliseconds to seconds, ties kept in file order, CRLF, blank lines, no
 * final newline, an output of 0 read as 1, hashes optional. */
static void test_mooncake_small(void)
{
    char path[4096], err[512];
    tok_trace t;
    write_text(path, sizeof path, "small.jsonl",
               "{\"timestamp\": 1500, \"input_length\": 1, \"output_length\": 5, \"hash_ids\": [7]}\r\n"
               "\r\n"
               "   \n"
               "{\"timestamp\": 250, \"input_length\": 2, \"output_length\": 0}\r\n"
               "{\"timestamp\": 250, \"input_length\": 3, \"output_length\": 6}\n"
               "{\"input_length\": 1024, \"output_length\": 1, \"timestamp\": 0,"
               " \"hash_ids\": [9007199254740991, 3]}");
    CU_ASSERT_EQUAL_FATAL(tok_trace_load(path, &t, err, sizeof err), 0);
    CU_ASSERT_EQUAL_FATAL(t.n, 4);
    CU_ASSERT_EQUAL(t.hash_block_tokens, 512);
    CU_ASSERT_DOUBLE_EQUAL(t.req[0].t_s, 0, 0);
    CU_ASSERT_EQUAL(t.req[0].input_tokens, 1024);
    CU_ASSERT_EQUAL_FATAL(t.req[0].n_hashes, 2);
    CU_ASSERT_EQUAL(t.req[0].hashes[0], 9007199254740991ULL);
    CU_ASSERT_EQUAL(t.req[0].hashes[1], 3);
    CU_ASSERT_DOUBLE_EQUAL(t.req[1].t_s, 0.25, 0);
    CU_ASSERT_EQUAL(t.req[1].input_tokens, 2);
    CU_ASSERT_EQUAL(t.req[1].output_tokens, 1);
    CU_ASSERT_PTR_NULL(t.req[1].hashes);
    CU_ASSERT_DOUBLE_EQUAL(t.req[2].t_s, 0.25, 0);
    CU_ASSERT_EQUAL(t.req[2].input_tokens, 3);
    CU_ASSERT_DOUBLE_EQUAL(t.req[3].t_s, 1.5, 0);
    CU_ASSERT_EQUAL(t.req[3].input_tokens, 1);
    CU_ASSERT_EQUAL(t.req[3].hashes[0], 7);
    CU_ASSERT_DOUBLE_EQUAL(t.span_s, 1.5, 0);
    tok_trace_free(&t);

    /* many ties out of order: a stable sort keeps each tie in file order */
    char *text = malloc(64 * 1000);
    size_t len = 0;
    for (int i = 0; i < 1000; i++)
        len += (size_t)sprintf(text + len, "{\"timestamp\": %d, \"input_length\": %d, \"output_length\": 1}\n",
                               (i * 7) % 10, i + 1);
    write_text(path, sizeof path, "ties.jsonl", text);
    free(text);
    CU_ASSERT_EQUAL_FATAL(tok_trace_load(path, &t, err, sizeof err), 0);
    CU_ASSERT_EQUAL_FATAL(t.n, 1000);
    int stable = 1;
    for (size_t i = 1; i < t.n; i++)
        stable &= t.req[i].t_s > t.req[i - 1].t_s ||
                  (t.req[i].t_s == t.req[i - 1].t_s && t.req[i].input_tokens > t.req[i - 1].input_tokens);
    CU_ASSERT(stable);
    CU_ASSERT_DOUBLE_EQUAL(t.span_s, 0.009, 1e-15);
    tok_trace_free(&t);
}

/* The original Azure form: times relative to the earliest row, across a
 * midnight and a month end, a year end and February in leap and common
 * years, with the fraction's seven digits kept. */
static void test_azure_timestamp(void)
{
    char path[4096], err[512];
    tok_trace t;
    write_text(path, sizeof path, "ts.csv",
               "TIMESTAMP,ContextTokens,GeneratedTokens\n"
               "2023-11-30 23:59:59.9000000,10,0\n"
               "2023-12-01 00:00:01.1500000,20,5\n"
               "2023-11-30 23:59:58.4000000,30,7\n");
    CU_ASSERT_EQUAL_FATAL(tok_trace_load(path, &t, err, sizeof err), 0);
    CU_ASSERT_EQUAL_FATAL(t.n, 3);
    /* sorted: 23:59:58.4 (30), 23:59:59.9 (10), 00:00:01.15 next day (20) */
    CU_ASSERT_EQUAL(t.req[0].input_tokens, 30);
    CU_ASSERT_DOUBLE_EQUAL(t.req[0].t_s, 0, 0);
    CU_ASSERT_EQUAL(t.req[1].input_tokens, 10);
    CU_ASSERT_EQUAL(t.req[1].output_tokens, 1);
    CU_ASSERT_DOUBLE_EQUAL(t.req[1].t_s, 1.5, 1e-9);
    CU_ASSERT_EQUAL(t.req[2].input_tokens, 20);
    CU_ASSERT_DOUBLE_EQUAL(t.req[2].t_s, 2.75, 1e-9);
    CU_ASSERT_DOUBLE_EQUAL(t.span_s, 2.75, 1e-9);
    tok_trace_free(&t);

    static const struct {
        const char *a, *b;
        double dt_s;
    } PAIRS[] = {
        { "2023-11-16 18:15:46.6805900", "2023-11-16 18:15:47.0000001", 0.3194101 },
        { "2023-12-31 23:59:59.75", "2024-01-01 00:00:00.5", 0.75 },
        { "2024-02-28 12:00:00", "2024-03-01 12:00:00", 2 * 86400 },      /* leap year */
        { "2023-02-28 12:00:00", "2023-03-01 12:00:00", 86400 },          /* common year */
        { "2100-02-28 00:00:00", "2100-03-01 00:00:00", 86400 },          /* century: common */
        { "2000-02-28 00:00:00", "2000-03-01 00:00:00", 2 * 86400 },      /* 400 years: leap */
        { "2023-01-01T00:00:00", "2024-01-01T00:00:00", 365 * 86400 },
        { "1969-12-31 23:59:59", "1970-01-01 00:00:01", 2 },
        { "2023-11-16 18:15:46", "2023-11-17 18:15:46.", -1 },           /* a point without digits */
    };
    for (size_t i = 0; i < sizeof PAIRS / sizeof PAIRS[0]; i++) {
        char text[256];
        snprintf(text, sizeof text, "TIMESTAMP,ContextTokens,GeneratedTokens\n%s,1,1\n%s,2,1\n", PAIRS[i].a,
                 PAIRS[i].b);
        write_text(path, sizeof path, "pair.csv", text);
        int rc = tok_trace_load(path, &t, err, sizeof err);
        if (PAIRS[i].dt_s < 0) {
            CU_ASSERT_EQUAL(rc, -1);
            continue;
        }
        CU_ASSERT_EQUAL_FATAL(rc, 0);
        CU_ASSERT_EQUAL(t.req[1].input_tokens, 2);
        CU_ASSERT_DOUBLE_EQUAL(t.req[1].t_s, PAIRS[i].dt_s, 1e-9);
        CU_ASSERT_DOUBLE_EQUAL(t.span_s, PAIRS[i].dt_s, 1e-9);
        tok_trace_free(&t);
    }
}

/* The Splitwise form with a byte order mark, blanks around fields, blank
 * lines, CRLF and no final line end; 2147483647 tokens fit an int. */
static void test_azure_seconds_forms(void)
{
    char path[4096], err[512];
    tok_trace t;
    write_text(path, sizeof path, "sec.csv",
               "\xEF\xBB\xBF"
               "arrived_at,num_prefill_tokens,num_decode_tokens\r\n"
               "\r\n"
               " 2.5 , 2147483647 ,\t0\r\n"
               "1e-3,7.0,+3");
    CU_ASSERT_EQUAL_FATAL(tok_trace_load(path, &t, err, sizeof err), 0);
    CU_ASSERT_EQUAL_FATAL(t.n, 2);
    CU_ASSERT_DOUBLE_EQUAL(t.req[0].t_s, 0.001, 1e-15);
    CU_ASSERT_EQUAL(t.req[0].input_tokens, 7);
    CU_ASSERT_EQUAL(t.req[0].output_tokens, 3);
    CU_ASSERT_DOUBLE_EQUAL(t.req[1].t_s, 2.5, 0);
    CU_ASSERT_EQUAL(t.req[1].input_tokens, INT_MAX);
    CU_ASSERT_EQUAL(t.req[1].output_tokens, 1);
    CU_ASSERT_DOUBLE_EQUAL(t.span_s, 2.499, 1e-12);
    tok_trace_free(&t);
}

/* ---- errors ---- */

static const char AZ[] = "arrived_at,num_prefill_tokens,num_decode_tokens\n";
static const char TS[] = "TIMESTAMP,ContextTokens,GeneratedTokens\n";

/* Loads `len` bytes written as TMP/name: 1 if it failed with exactly
 * "TMP/name" + what and left the trace empty, else 0 after saying why. */
static int fails_with_bytes(const char *name, const char *data, size_t len, const char *what)
{
    char path[4096], want[8192], err[1024] = "";
    write_bytes(path, sizeof path, name, data, len);
    snprintf(want, sizeof want, "%s%s", path, what);
    tok_trace t = { (tok_request *)&t, 7, 1, 1 }; /* overwritten whatever happens */
    int rc = tok_trace_load(path, &t, err, sizeof err);
    int ok = rc == -1 && strcmp(err, want) == 0 && t.n == 0 && t.req == NULL;
    if (!ok)
        fprintf(stderr, "\n  want rc -1 and: %s\n  got rc %d and:  %s\n", want, rc, err);
    return ok;
}

static int fails_with(const char *name, const char *text, const char *what)
{
    return fails_with_bytes(name, text, strlen(text), what);
}

static void test_csv_errors(void)
{
    char text[512];
#define ROW(r) (snprintf(text, sizeof text, "%s%s", AZ, r), text)
    CU_ASSERT(fails_with("e.csv", "", ":1:1: empty trace: no header and no requests"));
    CU_ASSERT(fails_with("e.csv", "\n  \r\n", ":3:1: empty trace: no header and no requests"));
    CU_ASSERT(fails_with("e.csv", AZ, ":2:1: empty trace: no requests after the header"));
    CU_ASSERT(fails_with("e.csv", "TIMESTAMP,ContextTokens,GeneratedTokens\r\n\r\n",
                         ":3:1: empty trace: no requests after the header"));
    CU_ASSERT(fails_with("e.csv", "time,in,out\n1,2,3\n",
                         ":1:1: unknown header \"time,in,out\" (expected TIMESTAMP,ContextTokens,"
                         "GeneratedTokens or arrived_at,num_prefill_tokens,num_decode_tokens)"));
    CU_ASSERT(fails_with("e.csv", "arrived_at,num_prefill,num_decode_tokens\n",
                         ":1:12: unknown header \"arrived_at,num_prefill,num_decode_tokens\" (expected "
                         "TIMESTAMP,ContextTokens,GeneratedTokens or arrived_at,num_prefill_tokens,"
                         "num_decode_tokens)"));
    CU_ASSERT(fails_with("e.csv", "TIMESTAMP,ContextTokens\n",
                         ":1:24: unknown header \"TIMESTAMP,ContextTokens\" (expected "
                         "TIMESTAMP,ContextTokens,GeneratedTokens or arrived_at,num_prefill_tokens,"
                         "num_decode_tokens)"));
    CU_ASSERT(fails_with("e.csv", "TIMESTAMP,ContextTokens,GeneratedTokens,x\n",
                         ":1:41: unknown header \"TIMESTAMP,ContextTokens,GeneratedTokens,x\" (expected "
                         "TIMESTAMP,ContextTokens,GeneratedTokens or arrived_at,num_prefill_tokens,"
                         "num_decode_tokens)"));
    CU_ASSERT(fails_with("e.csv", ROW("0.5,10\n"), ":2:7: missing field num_decode_tokens"));
    CU_ASSERT(fails_with("e.csv", ROW("0.5\n"), ":2:4: missing field num_prefill_tokens"));
    CU_ASSERT(fails_with("e.csv", ROW("0.5,10,3,4\n"),
                         ":2:10: unexpected field 4 (a row has 3: arrived_at,num_prefill_tokens,"
                         "num_decode_tokens)"));
    CU_ASSERT(fails_with("e.csv", ROW("0.5,,3\n"), ":2:5: num_prefill_tokens is empty"));
    CU_ASSERT(fails_with("e.csv", ROW("0.5,10,  \n"), ":2:8: num_decode_tokens is empty"));
    CU_ASSERT(fails_with("e.csv", ROW("0.5,abc,3\n"), ":2:5: num_prefill_tokens \"abc\" is not a number"));
    CU_ASSERT(fails_with("e.csv", ROW("0.5, x ,3\n"), ":2:6: num_prefill_tokens \"x\" is not a number"));
    CU_ASSERT(fails_with("e.csv", ROW("nan,10,3\n"), ":2:1: arrived_at \"nan\" is not a number"));
    CU_ASSERT(fails_with("e.csv", ROW("0.5,10,inf\n"), ":2:8: num_decode_tokens \"inf\" is not a number"));
    CU_ASSERT(fails_with("e.csv", ROW("0x10,10,3\n"), ":2:1: arrived_at \"0x10\" is not a number"));
    CU_ASSERT(fails_with("e.csv", ROW("1e,10,3\n"), ":2:1: arrived_at \"1e\" is not a number"));
    CU_ASSERT(fails_with("e.csv", ROW("1e999,10,3\n"), ":2:1: arrived_at is out of range"));
    CU_ASSERT(fails_with("e.csv", ROW("0.5,1e999,3\n"), ":2:5: num_prefill_tokens is out of range"));
    CU_ASSERT(fails_with("e.csv", ROW("-1,10,3\n"), ":2:1: arrived_at -1 is negative"));
    CU_ASSERT(fails_with("e.csv", ROW("0.5,10,-3\n"), ":2:8: num_decode_tokens -3 is negative"));
    CU_ASSERT(fails_with("e.csv", ROW("0.5,0,3\n"),
                         ":2:5: num_prefill_tokens is 0: a request has at least one prompt token"));
    CU_ASSERT(fails_with("e.csv", ROW("0.5,-0,3\n"),
                         ":2:5: num_prefill_tokens is 0: a request has at least one prompt token"));
    CU_ASSERT(fails_with("e.csv", ROW("0.5,10.5,3\n"),
                         ":2:5: num_prefill_tokens 10.5 is not a whole number of tokens"));
    CU_ASSERT(fails_with("e.csv", ROW("0.5,2147483648,3\n"),
                         ":2:5: num_prefill_tokens 2147483648 is too large (at most 2147483647)"));
    CU_ASSERT(fails_with("e.csv", ROW("0.5,10,99999999999999999999\n"),
                         ":2:8: num_decode_tokens 1e+20 is too large (at most 2147483647)"));
    /* the line counts blank lines; a good row first */
    CU_ASSERT(fails_with("e.csv", ROW("0.5,10,3\n\n1,2,x\n"), ":4:5: num_decode_tokens \"x\" is not a number"));
    /* a NUL byte inside a row */
    static const char nul[] = "arrived_at,num_prefill_tokens,num_decode_tokens\n0.5,1\0,3\n";
    CU_ASSERT(fails_with_bytes("e.csv", nul, sizeof nul - 1, ":2:6: NUL byte in the line"));
    /* the TIMESTAMP form: names from its header, dates checked */
    snprintf(text, sizeof text, "%s%s", TS, "2023-02-29 00:00:00,10,3\n");
    CU_ASSERT(fails_with("e.csv", text,
                         ":2:1: TIMESTAMP \"2023-02-29 00:00:00\" is not a date and time "
                         "YYYY-MM-DD HH:MM:SS[.fraction]"));
    snprintf(text, sizeof text, "%s%s", TS, "2023-11-16 24:00:00,10,3\n");
    CU_ASSERT(fails_with("e.csv", text,
                         ":2:1: TIMESTAMP \"2023-11-16 24:00:00\" is not a date and time "
                         "YYYY-MM-DD HH:MM:SS[.fraction]"));
    snprintf(text, sizeof text, "%s%s", TS, "4.5,10,3\n");
    CU_ASSERT(fails_with("e.csv", text,
                         ":2:1: TIMESTAMP \"4.5\" is not a date and time YYYY-MM-DD HH:MM:SS[.fraction]"));
    snprintf(text, sizeof text, "%s%s", TS, "2023-11-16 18:15:46.6805900,10,-1\n");
    CU_ASSERT(fails_with("e.csv", text, ":2:32: GeneratedTokens -1 is negative"));
#undef ROW
}

static void test_json_errors(void)
{
    static const char OK[] = "{\"timestamp\": 0, \"input_length\": 5, \"output_length\": 2}\n";
    char text[512];
#define LINE2(l) (snprintf(text, sizeof text, "%s%s", OK, l), text)
    /* "{"timestamp": 1, "input_length": " is 33 bytes: the x is at 34 */
    CU_ASSERT(fails_with("e.jsonl", "{\"timestamp\": 1, \"input_length\": x}\n",
                         ":1:34: bad JSON (each line of a Mooncake trace is one JSON object)"));
    CU_ASSERT(fails_with("e.jsonl", LINE2("{\"timestamp\": 1} trailing\n"),
                         ":2:18: bad JSON (each line of a Mooncake trace is one JSON object)"));
    /* "0.5" is a whole JSON value; what follows it is not */
    CU_ASSERT(fails_with("e.jsonl", LINE2("0.5,10,3\n"),
                         ":2:4: bad JSON (each line of a Mooncake trace is one JSON object)"));
    CU_ASSERT(fails_with("e.jsonl", LINE2("  [1, 2]\n"),
                         ":2:3: not a JSON object (each line of a Mooncake trace is one)"));
    CU_ASSERT(fails_with("e.jsonl", LINE2("{\"timestamp\": 1, \"input_length\": 5}\n"),
                         ":2:1: missing field output_length"));
    CU_ASSERT(fails_with("e.jsonl", LINE2(" {\"input_length\": 5, \"output_length\": 2}\n"),
                         ":2:2: missing field timestamp"));
    CU_ASSERT(fails_with("e.jsonl", LINE2("{\"timestamp\": \"1\", \"input_length\": 5, \"output_length\": 2}\n"),
                         ":2:15: timestamp is not a number"));
    CU_ASSERT(fails_with("e.jsonl", LINE2("{\"timestamp\": -5, \"input_length\": 5, \"output_length\": 2}\n"),
                         ":2:15: timestamp -5 is negative"));
    CU_ASSERT(fails_with("e.jsonl", LINE2("{\"timestamp\": 1e999, \"input_length\": 5, \"output_length\": 2}\n"),
                         ":2:15: timestamp is out of range"));
    /* "{"timestamp": 1, "input_length": 5, "output_length": " is 53 bytes */
    CU_ASSERT(fails_with("e.jsonl", LINE2("{\"timestamp\": 1, \"input_length\": 5, \"output_length\": -2}\n"),
                         ":2:54: output_length -2 is negative"));
    CU_ASSERT(fails_with("e.jsonl", LINE2("{\"timestamp\": 1, \"input_length\": 0, \"output_length\": 2}\n"),
                         ":2:34: input_length is 0: a request has at least one prompt token"));
    CU_ASSERT(fails_with("e.jsonl", LINE2("{\"timestamp\": 1, \"input_length\": 1e300, \"output_length\": 2}\n"),
                         ":2:34: input_length 1e+300 is too large (at most 2147483647)"));
    CU_ASSERT(fails_with("e.jsonl", LINE2("{\"timestamp\": 1, \"input_length\": 2.5, \"output_length\": 2}\n"),
                         ":2:34: input_length 2.5 is not a whole number of tokens"));
    CU_ASSERT(fails_with("e.jsonl", LINE2("{\"timestamp\": 1, \"input_length\": null, \"output_length\": 2}\n"),
                         ":2:34: input_length is not a number"));
    /* a nested key of the same name is not the one reported: the value
     * of the outer one is after 59 bytes */
    CU_ASSERT(fails_with("e.jsonl",
                         LINE2("{\"x\": {\"input_length\": 1}, \"timestamp\": 1, \"input_length\": true, "
                               "\"output_length\": 2}\n"),
                         ":2:60: input_length is not a number"));
    /* "{"timestamp": 1, "input_length": 600, "output_length": 2, "hash_ids": " is 70 bytes */
    CU_ASSERT(fails_with("e.jsonl",
                         LINE2("{\"timestamp\": 1, \"input_length\": 600, \"output_length\": 2, "
                               "\"hash_ids\": [1]}\n"),
                         ":2:71: hash_ids has 1 blocks but input_length 600 needs 2 (512 tokens each)"));
    CU_ASSERT(fails_with("e.jsonl",
                         LINE2("{\"timestamp\": 1, \"input_length\": 600, \"output_length\": 2, "
                               "\"hash_ids\": [1, -2]}\n"),
                         ":2:71: hash_ids[1] is not a whole number from 0 to 2^53 - 1"));
    CU_ASSERT(fails_with("e.jsonl",
                         LINE2("{\"timestamp\": 1, \"input_length\": 600, \"output_length\": 2, "
                               "\"hash_ids\": [1, 9007199254740992]}\n"),
                         ":2:71: hash_ids[1] is not a whole number from 0 to 2^53 - 1"));
    CU_ASSERT(fails_with("e.jsonl",
                         LINE2("{\"timestamp\": 1, \"input_length\": 600, \"output_length\": 2, "
                               "\"hash_ids\": [1, \"2\"]}\n"),
                         ":2:71: hash_ids[1] is not a whole number from 0 to 2^53 - 1"));
    CU_ASSERT(fails_with("e.jsonl",
                         LINE2("{\"timestamp\": 1, \"input_length\": 600, \"output_length\": 2, "
                               "\"hash_ids\": 5}\n"),
                         ":2:71: hash_ids is not an array"));
#undef LINE2
}

static void test_file_errors(void)
{
    char path[4096], want[8192], err[512];
    tok_trace t;
    snprintf(path, sizeof path, "%s/absent.csv", TMP);
    snprintf(want, sizeof want, "%s:1:1: cannot open: %s", path, strerror(ENOENT));
    CU_ASSERT_EQUAL(tok_trace_load(path, &t, err, sizeof err), -1);
    CU_ASSERT_STRING_EQUAL(err, want);
    CU_ASSERT_EQUAL(t.n, 0);
    /* a directory opens but cannot be read */
    snprintf(path, sizeof path, "%s/dir", TMP);
    mkdir(path, 0700);
    snprintf(want, sizeof want, "%s:1:1: read error: %s", path, strerror(EISDIR));
    CU_ASSERT_EQUAL(tok_trace_load(path, &t, err, sizeof err), -1);
    CU_ASSERT_STRING_EQUAL(err, want);
    /* a short buffer gets a cut message, no buffer none */
    char small[8];
    snprintf(path, sizeof path, "%s/absent.csv", TMP);
    CU_ASSERT_EQUAL(tok_trace_load(path, &t, small, sizeof small), -1);
    CU_ASSERT_EQUAL(strlen(small), sizeof small - 1);
    CU_ASSERT_EQUAL(tok_trace_load(path, &t, NULL, 0), -1);
    tok_trace_free(&t);
    tok_trace_free(NULL);
}

/* A line far longer than any buffer: getline reads it whole. */
static void test_long_line(void)
{
    char path[4096], err[512];
    tok_trace t;
    enum { BLOCKS = 20000 };
    size_t cap = 64 + 24 * (size_t)BLOCKS;
    char *text = malloc(cap);
    size_t len = (size_t)sprintf(text, "{\"timestamp\": 5, \"input_length\": %d, \"output_length\": 9, \"hash_ids\": [",
                                 512 * BLOCKS);
    for (int j = 0; j < BLOCKS; j++)
        len += (size_t)sprintf(text + len, "%s%d", j ? ", " : "", 1000000 + j);
    sprintf(text + len, "]}\n");
    write_text(path, sizeof path, "long.jsonl", text);
    free(text);
    CU_ASSERT_EQUAL_FATAL(tok_trace_load(path, &t, err, sizeof err), 0);
    CU_ASSERT_EQUAL(t.n, 1);
    CU_ASSERT_EQUAL_FATAL(t.req[0].n_hashes, BLOCKS);
    CU_ASSERT_EQUAL(t.req[0].hashes[BLOCKS - 1], 1000000 + BLOCKS - 1);
    CU_ASSERT_DOUBLE_EQUAL(t.req[0].t_s, 0.005, 1e-15);
    CU_ASSERT_DOUBLE_EQUAL(t.span_s, 0, 0);
    tok_trace_free(&t);
}

/* Mangled copies of valid files (bytes replaced, cut, duplicated) either
 * load into a valid trace or fail with a "path:line:col: " message; the
 * sanitizer build checks that nothing is read or written out of bounds. */
static void test_mangled(void)
{
    static const char *const SEEDS[] = {
        "arrived_at,num_prefill_tokens,num_decode_tokens\n0.0,374,44\n4.314579,396,109\n",
        "TIMESTAMP,ContextTokens,GeneratedTokens\n2023-11-16 18:15:46.6805900,374,44\n"
        "2023-11-16 18:15:47.1,3,0\n",
        "{\"timestamp\": 0, \"input_length\": 600, \"output_length\": 5, \"hash_ids\": [0, 1]}\n"
        "{\"timestamp\": 7, \"input_length\": 6, \"output_length\": 0, \"hash_ids\": [0]}\n",
    };
    static const char BYTES[] = "0123456789,.-+eE:\"{}[] \n\r\0x9";
    gsl_rng *g = gsl_rng_alloc(gsl_rng_mt19937);
    gsl_rng_set(g, 7);
    char path[4096], err[512], buf[512];
    int bad = 0, loaded = 0;
    for (int it = 0; it < 3000; it++) {
        const char *seed = SEEDS[it % 3];
        size_t len = strlen(seed);
        memcpy(buf, seed, len);
        int edits = 1 + (int)gsl_rng_uniform_int(g, 4);
        for (int e = 0; e < edits; e++) {
            size_t at = gsl_rng_uniform_int(g, len);
            switch (gsl_rng_uniform_int(g, 3)) {
            case 0:
                buf[at] = BYTES[gsl_rng_uniform_int(g, sizeof BYTES - 1)];
                break;
            case 1:
                len = at; /* cut */
                break;
            default: /* repeat a piece */
                if (len + (len - at) < sizeof buf) {
                    memcpy(buf + len, buf + at, len - at);
                    len += len - at;
                }
            }
            if (len == 0)
                break;
        }
        write_bytes(path, sizeof path, "m.txt", buf, len);
        tok_trace t;
        err[0] = '\0';
        if (tok_trace_load(path, &t, err, sizeof err) == 0) {
            loaded++;
            int ok = t.n > 0 && sorted(&t) && t.span_s >= 0 && isfinite(t.span_s);
            for (size_t i = 0; i < t.n; i++)
                ok &= t.req[i].input_tokens >= 1 && t.req[i].output_tokens >= 1 && t.req[i].t_s >= 0;
            bad += !ok;
            tok_trace_free(&t);
        } else {
            size_t pl = strlen(path);
            unsigned long line, col;
            bad += !(strncmp(err, path, pl) == 0 && sscanf(err + pl, ":%lu:%lu: ", &line, &col) == 2 &&
                     line >= 1 && col >= 1 && t.n == 0);
        }
    }
    CU_ASSERT_EQUAL(bad, 0);
    CU_ASSERT(loaded > 0);
    gsl_rng_free(g);
}

/* ---- distributions ---- */

enum { N_DRAWS = 200000 };

/* P(draw <= k) for a lognormal rounded to the nearest integer, for k at or
 * above the clamp's lower end: P(X < k + 0.5). */
static double p_at_most(const tok_dist *d, int k)
{
    return gsl_cdf_lognormal_P(k + 0.5, d->mu, d->sigma);
}

/* |observed share - p| within 4 standard errors of a share of N draws. */
static int share_ok(double observed, double p, int n)
{
    double tol = 4 * sqrt(p * (1 - p) / n);
    if (fabs(observed - p) > tol)
        fprintf(stderr, "\n  share %.6f, expected %.6f +- %.6f\n", observed, p, tol);
    return fabs(observed - p) <= tol;
}

static void test_lognormal_parameters(void)
{
    tok_dist d;
    CU_ASSERT_EQUAL(tok_dist_lognormal_mean_cv(&d, 1155, 1.2), 0);
    CU_ASSERT_EQUAL(d.kind, TOK_LOGNORMAL);
    CU_ASSERT_DOUBLE_EQUAL(d.sigma * d.sigma, log(1 + 1.44), 1e-12);
    CU_ASSERT_DOUBLE_EQUAL(d.mu, log(1155) - log(2.44) / 2, 1e-12);
    CU_ASSERT_DOUBLE_EQUAL(d.mean, 1155, 0);
    CU_ASSERT_EQUAL(d.min, 1);
    CU_ASSERT_EQUAL(d.max, 0);
    CU_ASSERT_PTR_NULL(d.values);
    /* and back: the lognormal's mean and cv from mu and sigma */
    CU_ASSERT_DOUBLE_EQUAL(exp(d.mu + d.sigma * d.sigma / 2), 1155, 1e-9);
    CU_ASSERT_DOUBLE_EQUAL(sqrt(exp(d.sigma * d.sigma) - 1), 1.2, 1e-12);
    /* mu and sigma given: SOURCES.md's fit of the conversation trace's input */
    CU_ASSERT_EQUAL(tok_dist_lognormal(&d, 6.633, 0.985), 0);
    CU_ASSERT_DOUBLE_EQUAL(d.mean, exp(6.633 + 0.985 * 0.985 / 2), 1e-9);
    /* refused: a fixed 1 */
    gsl_rng *g = gsl_rng_alloc(gsl_rng_mt19937);
    const double bad[][2] = { { 0, 1 }, { -5, 1 }, { NAN, 1 }, { INFINITY, 1 }, { 100, -0.1 }, { 100, NAN },
                              { 100, INFINITY } };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        CU_ASSERT_EQUAL(tok_dist_lognormal_mean_cv(&d, bad[i][0], bad[i][1]), -1);
        CU_ASSERT_EQUAL(tok_draw(&d, g), 1);
    }
    CU_ASSERT_EQUAL(tok_dist_lognormal(&d, 1, -1), -1);
    CU_ASSERT_EQUAL(tok_dist_lognormal(&d, NAN, 1), -1);
    CU_ASSERT_EQUAL(tok_draw(&d, g), 1);
    /* cv 0: always the mean, rounded */
    CU_ASSERT_EQUAL(tok_dist_lognormal_mean_cv(&d, 100.4, 0), 0);
    int all = 1;
    for (int i = 0; i < 1000; i++)
        all &= tok_draw(&d, g) == 100;
    CU_ASSERT(all);
    gsl_rng_free(g);
}

static void test_lognormal_draws(void)
{
    static const double CASES[][2] = { { 1155, 1.2 }, { 211, 0.9 }, { 12035, 1.5 } };
    gsl_rng *g = gsl_rng_alloc(gsl_rng_mt19937);
    gsl_rng_set(g, 20231116);
    for (size_t c = 0; c < sizeof CASES / sizeof CASES[0]; c++) {
        double mean = CASES[c][0], cv = CASES[c][1];
        tok_dist d;
        tok_dist_lognormal_mean_cv(&d, mean, cv);
        double sum = 0;
        int at_most_median = 0, at_most_q10 = 0, at_most_q90 = 0;
        int q10 = (int)floor(gsl_cdf_lognormal_Pinv(0.1, d.mu, d.sigma));
        int q50 = (int)floor(exp(d.mu));
        int q90 = (int)floor(gsl_cdf_lognormal_Pinv(0.9, d.mu, d.sigma));
        for (int i = 0; i < N_DRAWS; i++) {
            int x = tok_draw(&d, g);
            sum += x;
            at_most_q10 += x <= q10;
            at_most_median += x <= q50;
            at_most_q90 += x <= q90;
        }
        /* The sample mean of N draws has standard error sd / sqrt(N), with
         * sd = cv * mean the lognormal's own; 4 of them, plus 0.5 for the
         * rounding (it moves each draw by at most 0.5). The clamp at 1
         * moves draws below 0.5 up, P(X < 0.5) < 1e-6 here: negligible. */
        CU_ASSERT(gsl_cdf_lognormal_P(0.5, d.mu, d.sigma) < 1e-6);
        double tol = 4 * cv * mean / sqrt((double)N_DRAWS) + 0.5;
        double m = sum / N_DRAWS;
        if (fabs(m - mean) > tol)
            fprintf(stderr, "\n  mean %.3f, expected %.3f +- %.3f\n", m, mean, tol);
        CU_ASSERT(fabs(m - mean) <= tol);
        /* the rounded draws' CDF at three points, exactly P(X < k + 0.5) */
        CU_ASSERT(share_ok((double)at_most_q10 / N_DRAWS, p_at_most(&d, q10), N_DRAWS));
        CU_ASSERT(share_ok((double)at_most_median / N_DRAWS, p_at_most(&d, q50), N_DRAWS));
        CU_ASSERT(share_ok((double)at_most_q90 / N_DRAWS, p_at_most(&d, q90), N_DRAWS));
    }
    gsl_rng_free(g);
}

static void test_clamp(void)
{
    gsl_rng *g = gsl_rng_alloc(gsl_rng_mt19937);
    gsl_rng_set(g, 42);
    tok_dist d;
    tok_dist_lognormal_mean_cv(&d, 1155, 1.2);
    d.min = 300;
    d.max = 2000;
    int below = 0, above = 0, at_min = 0, at_max = 0;
    for (int i = 0; i < N_DRAWS; i++) {
        int x = tok_draw(&d, g);
        below += x < 300;
        above += x > 2000;
        at_min += x == 300;
        at_max += x == 2000;
    }
    CU_ASSERT_EQUAL(below, 0);
    CU_ASSERT_EQUAL(above, 0);
    /* everything below 300.5 lands on 300, everything from 1999.5 on 2000 */
    CU_ASSERT(share_ok((double)at_min / N_DRAWS, p_at_most(&d, 300), N_DRAWS));
    CU_ASSERT(share_ok((double)at_max / N_DRAWS, 1 - p_at_most(&d, 1999), N_DRAWS));

    /* min 0 reads as 1: a small mean with a wide spread puts much mass
     * below 0.5, all of it drawn as 1, never 0 */
    tok_dist_lognormal_mean_cv(&d, 2, 3);
    d.min = 0;
    int zero = 0, ones = 0;
    for (int i = 0; i < N_DRAWS; i++) {
        int x = tok_draw(&d, g);
        zero += x < 1;
        ones += x == 1;
    }
    CU_ASSERT_EQUAL(zero, 0);
    CU_ASSERT(share_ok((double)ones / N_DRAWS, p_at_most(&d, 1), N_DRAWS));

    /* a max below min reads as min */
    d.min = 50;
    d.max = 10;
    CU_ASSERT_EQUAL(tok_draw(&d, g), 50);

    /* fixed */
    tok_dist_fixed(&d, 7);
    CU_ASSERT_EQUAL(d.kind, TOK_FIXED);
    CU_ASSERT_EQUAL(tok_draw(&d, g), 7);
    d.max = 5;
    CU_ASSERT_EQUAL(tok_draw(&d, g), 5);
    tok_dist_fixed(&d, 0);
    CU_ASSERT_EQUAL(tok_draw(&d, g), 1);
    tok_dist_fixed(&d, INT_MAX);
    CU_ASSERT_EQUAL(tok_draw(&d, g), INT_MAX);
    /* a huge mean stays within int */
    tok_dist_lognormal_mean_cv(&d, 1e300, 1);
    CU_ASSERT_EQUAL(tok_draw(&d, g), INT_MAX);
    gsl_rng_free(g);
}

static void test_empirical(void)
{
    gsl_rng *g = gsl_rng_alloc(gsl_rng_mt19937);
    gsl_rng_set(g, 99);
    tok_dist d;
    int vals[] = { 5, 10, 10, 40 };
    CU_ASSERT_EQUAL(tok_dist_empirical(&d, vals, 4), 0);
    vals[0] = 999; /* d has its own copy */
    CU_ASSERT_EQUAL(d.kind, TOK_EMPIRICAL);
    CU_ASSERT_DOUBLE_EQUAL(d.mean, 16.25, 1e-12);
    int n5 = 0, n10 = 0, n40 = 0, other = 0;
    for (int i = 0; i < N_DRAWS; i++) {
        int x = tok_draw(&d, g);
        n5 += x == 5;
        n10 += x == 10;
        n40 += x == 40;
        other += x != 5 && x != 10 && x != 40;
    }
    CU_ASSERT_EQUAL(other, 0);
    CU_ASSERT(share_ok((double)n5 / N_DRAWS, 0.25, N_DRAWS));
    CU_ASSERT(share_ok((double)n10 / N_DRAWS, 0.5, N_DRAWS));
    CU_ASSERT(share_ok((double)n40 / N_DRAWS, 0.25, N_DRAWS));
    /* clamped like the others; values below 1 read as 1 */
    d.max = 20;
    int over = 0;
    for (int i = 0; i < 1000; i++)
        over += tok_draw(&d, g) > 20;
    CU_ASSERT_EQUAL(over, 0);
    tok_dist_free(&d);
    CU_ASSERT_PTR_NULL(d.values);
    int nonpos[] = { 0, -7 };
    tok_dist_empirical(&d, nonpos, 2);
    CU_ASSERT_EQUAL(tok_draw(&d, g), 1);
    tok_dist_free(&d);
    CU_ASSERT_EQUAL(tok_dist_empirical(&d, NULL, 0), -1);
    CU_ASSERT_EQUAL(tok_draw(&d, g), 1);
    tok_dist_free(&d);

    /* a trace's output column: the draws' mean is the column's, within 4
     * standard errors from the column's own variance */
    char path[4096], err[512];
    tok_trace t;
    shipped(path, sizeof path, "azure-2023-conversation.csv");
    CU_ASSERT_EQUAL_FATAL(tok_trace_load(path, &t, err, sizeof err), 0);
    int *col = malloc(t.n * sizeof *col);
    double m = 0, v = 0;
    for (size_t i = 0; i < t.n; i++) {
        col[i] = t.req[i].output_tokens;
        m += col[i];
    }
    m /= (double)t.n;
    for (size_t i = 0; i < t.n; i++)
        v += (col[i] - m) * (col[i] - m);
    v /= (double)t.n;
    CU_ASSERT_EQUAL(tok_dist_empirical(&d, col, t.n), 0);
    free(col);
    CU_ASSERT_DOUBLE_EQUAL(d.mean, m, 1e-9);
    double sum = 0;
    for (int i = 0; i < N_DRAWS; i++)
        sum += tok_draw(&d, g);
    CU_ASSERT_DOUBLE_EQUAL(sum / N_DRAWS, m, 4 * sqrt(v / N_DRAWS));
    tok_dist_free(&d);
    tok_trace_free(&t);
    gsl_rng_free(g);
}

int main(void)
{
    TMP = tu_tmpdir();
    if (!TMP || CU_initialize_registry() != CUE_SUCCESS)
        return 1;
    CU_pSuite s = CU_add_suite("tokens", NULL, NULL);
    CU_add_test(s, "shipped Azure conversation trace", test_azure_conversation);
    CU_add_test(s, "shipped Azure code trace", test_azure_code);
    CU_add_test(s, "shipped Mooncake conversation trace", test_mooncake_conversation);
    CU_add_test(s, "shipped Mooncake synthetic trace", test_mooncake_synthetic);
    CU_add_test(s, "Mooncake ms, stable ties, line ends", test_mooncake_small);
    CU_add_test(s, "Azure TIMESTAMP to seconds", test_azure_timestamp);
    CU_add_test(s, "Azure seconds form, BOM and blanks", test_azure_seconds_forms);
    CU_add_test(s, "CSV errors", test_csv_errors);
    CU_add_test(s, "JSON errors", test_json_errors);
    CU_add_test(s, "file errors", test_file_errors);
    CU_add_test(s, "long line", test_long_line);
    CU_add_test(s, "mangled files", test_mangled);
    CU_add_test(s, "lognormal parameters", test_lognormal_parameters);
    CU_add_test(s, "lognormal draws", test_lognormal_draws);
    CU_add_test(s, "clamp and fixed", test_clamp);
    CU_add_test(s, "empirical", test_empirical);
    CU_basic_set_mode(CU_BRM_VERBOSE);
    CU_basic_run_tests();
    unsigned fails = CU_get_number_of_failures();
    CU_cleanup_registry();
    tu_done(TMP);
    return fails > 125 ? 125 : (int)fails; /* an exit status cannot hold more */
}
