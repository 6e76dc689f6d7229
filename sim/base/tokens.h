/*
 * tokens.h - LLM requests as token counts: the two public trace formats
 * (the Azure LLM inference trace CSV and Mooncake's JSONL) and token-length
 * distributions. No SimGrid, no globals.
 *
 * Azure (Azure/AzurePublicDataset AzureLLMInferenceTrace_*.csv, and the
 * Splitwise simulator's copies): a header line naming the columns, then one
 * request per line. Accepted headers: `TIMESTAMP,ContextTokens,GeneratedTokens`
 * (TIMESTAMP as "2023-11-16 18:15:46.6805900", times taken relative to the
 * first row) or `arrived_at,num_prefill_tokens,num_decode_tokens` (seconds).
 * Mooncake (kvcache-ai/Mooncake traces): one JSON object per line,
 * {"timestamp": ms, "input_length": n, "output_length": n, "hash_ids": [...]},
 * each hash id naming a 512-token block of the prompt, chained (equal ids =
 * equal prefixes).
 */
#ifndef FLEETSIM_TOKENS_H
#define FLEETSIM_TOKENS_H

#include <gsl/gsl_rng.h>

#include <stddef.h>
#include <stdint.h>

typedef struct {
    double t_s;                /* arrival, seconds from the trace's start (first row = 0 for Azure) */
    int input_tokens;          /* >= 1 */
    int output_tokens;         /* >= 1 (a 0 in a trace is read as 1: the server answers one token) */
    uint64_t *hashes;          /* Mooncake hash_ids, NULL otherwise */
    int n_hashes;
} tok_request;

typedef struct {
    tok_request *req;          /* sorted by t_s (stable: the file's order on ties) */
    size_t n;
    int hash_block_tokens;     /* 512 for Mooncake, 0 without hashes */
    double span_s;             /* last arrival - first */
} tok_trace;

/* Reads a trace, the format told by the file's first non-blank line (a CSV
 * header above, or a '{'). Blank lines are skipped, CRLF line ends and a
 * UTF-8 byte order mark accepted, lines of any length read whole. Mooncake
 * timestamps are taken as they are (ms -> s), Azure `arrived_at` too, and
 * TIMESTAMPs relative to the earliest row (the first one once sorted).
 * An output count of 0 reads as 1. 0 on success; -1 with
 * "path:line:col: what" in err (col 1-based, where the offending field
 * starts) for a file that cannot be read, an unknown header, bad JSON, a
 * field that is missing, empty or not a number, a count that is negative,
 * not whole or above INT_MAX, an input count of 0, a negative time, Mooncake
 * hash_ids that are not one id per started 512-token block, or an empty
 * trace; *out is then empty (tok_trace_free is harmless on it). */
int tok_trace_load(const char *path, tok_trace *out, char *err, size_t err_len);
void tok_trace_free(tok_trace *t);

/* A token-count distribution: integers >= 1. */
typedef enum {
    TOK_FIXED = 0,             /* always mean */
    TOK_LOGNORMAL,             /* mean and cv (or mu and sigma) */
    TOK_EMPIRICAL              /* uniform over the given values (e.g. a trace's column) */
} tok_dist_kind;

typedef struct {
    tok_dist_kind kind;
    double mean;
    double mu, sigma;          /* lognormal: of log tokens */
    int min, max;              /* clamp after rounding (min >= 1; max 0 = none) */
    int *values;               /* empirical */
    size_t n_values;
} tok_dist;

/* The constructors set every field (min 1, max 0 = no upper clamp; set
 * min and max afterwards). */
/* Always `tokens` (mean = tokens). */
void tok_dist_fixed(tok_dist *d, int tokens);
/* Lognormal from the mean and coefficient of variation of the tokens:
 * sigma^2 = ln(1 + cv^2), mu = ln(mean) - sigma^2 / 2. 0, or -1 (and a
 * fixed 1) unless mean > 0 and cv >= 0 are finite. */
int tok_dist_lognormal_mean_cv(tok_dist *d, double mean, double cv);
/* Lognormal from mu and sigma of log tokens; 0, or -1 (and a fixed 1)
 * unless both are finite and sigma >= 0. */
int tok_dist_lognormal(tok_dist *d, double mu, double sigma);
/* Uniform over a copy of values[0..n) (owned by d); 0, or -1 for none or
 * no memory. */
int tok_dist_empirical(tok_dist *d, const int *values, size_t n);
/* One draw (GSL's lognormal / uniform index), rounded to the nearest
 * integer, clamped to [max(min, 1), max] (max below min reads as min). */
int tok_draw(const tok_dist *d, gsl_rng *rng);
void tok_dist_free(tok_dist *d);

#endif
