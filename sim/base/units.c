/*
 * units.c - quantities with explicit units, as written in scenarios.
 *
 * A quantity is an unsigned decimal number (digits, optional fraction,
 * optional exponent: 250, 1.5, 2e3), optionally followed by spaces and one
 * unit suffix from the tables below; the whole text must be consumed. Signs,
 * hex, inf and nan are refused here, so a negative or non-finite duration,
 * size, bandwidth or rate can never come out of a scenario. Suffixes are
 * case-sensitive because case carries meaning (`Mb` bits vs `MB` bytes,
 * `m` minutes vs `ms`). The results are in the base units of scenario.h:
 * seconds, bytes, bytes per second, requests per second.
 */
#include "units.h"

#include <ctype.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    const char *suffix;
    double factor; /* multiplies the number to give the base unit */
} unit;

static const unit DURATION_UNITS[] = {
    {"ns", 1e-9}, {"us", 1e-6}, {"\xc2\xb5s", 1e-6}, /* µs */
    {"ms", 1e-3}, {"s", 1.0},   {"m", 60.0},         {"min", 60.0},
    {"h", 3600.0}, {"d", 86400.0}, {NULL, 0},
};

static const unit BYTE_UNITS[] = {
    {"B", 1.0},    {"kB", 1e3},  {"KB", 1e3},  {"MB", 1e6},  {"GB", 1e9},
    {"TB", 1e12},  {"KiB", 1024.0}, {"MiB", 1048576.0}, {"GiB", 1073741824.0},
    {"TiB", 1099511627776.0}, {NULL, 0},
};

/* Bits per second are divided by 8: scenario.h stores bytes per second. */
static const unit BANDWIDTH_UNITS[] = {
    {"bps", 1.0 / 8},  {"kbps", 1e3 / 8}, {"Kbps", 1e3 / 8}, {"Mbps", 1e6 / 8},
    {"Gbps", 1e9 / 8}, {"Tbps", 1e12 / 8},
    {"Bps", 1.0},  {"kBps", 1e3}, {"KBps", 1e3}, {"MBps", 1e6}, {"GBps", 1e9},
    {"TBps", 1e12},
    {"B/s", 1.0},  {"kB/s", 1e3}, {"KB/s", 1e3}, {"MB/s", 1e6}, {"GB/s", 1e9},
    {"TB/s", 1e12}, {"KiB/s", 1024.0}, {"MiB/s", 1048576.0},
    {"GiB/s", 1073741824.0}, {NULL, 0},
};

static const unit RATE_UNITS[] = {
    {"qps", 1.0}, {"rps", 1.0},        {"/s", 1.0},         {"/m", 1.0 / 60},
    {"/min", 1.0 / 60}, {"/h", 1.0 / 3600}, {"/d", 1.0 / 86400}, {NULL, 0},
};

/* Scans an unsigned decimal number at s. Returns the first character after
 * it, or NULL when s does not start with one. */
static const char *scan_number(const char *s, double *out)
{
    const char *p = s;
    int digits = 0;

    while (isdigit((unsigned char)*p)) {
        p++;
        digits++;
    }
    if (*p == '.') {
        p++;
        while (isdigit((unsigned char)*p)) {
            p++;
            digits++;
        }
    }
    if (digits == 0)
        return NULL;
    if (*p == 'e' || *p == 'E') {
        const char *q = p + 1;
        if (*q == '+' || *q == '-')
            q++;
        if (isdigit((unsigned char)*q)) { /* else the 'e' starts a suffix */
            while (isdigit((unsigned char)*q))
                q++;
            p = q;
        }
    }
    /* strtod reads exactly the span scanned above (no hex: the scan stops
     * at the 'x' of "0x1", and then strtod's end differs). */
    char *end;
    double v = strtod(s, &end);
    if (end != p)
        return NULL;
    *out = v;
    return p;
}

static int parse_quantity(const char *text, const unit *units, double *out)
{
    double v, factor = 1.0;
    const char *p;

    if (text == NULL || (p = scan_number(text, &v)) == NULL)
        return -1;
    if (*p == ' ') {
        while (*p == ' ')
            p++;
        if (*p == '\0') /* trailing spaces, no unit */
            return -1;
    }
    if (*p != '\0') {
        const unit *u = units;
        while (u->suffix != NULL && strcmp(u->suffix, p) != 0)
            u++;
        if (u->suffix == NULL)
            return -1;
        factor = u->factor;
    }
    v *= factor;
    if (!isfinite(v))
        return -1;
    *out = v;
    return 0;
}

int sc_parse_duration_s(const char *text, double *out_s)
{
    return parse_quantity(text, DURATION_UNITS, out_s);
}

int sc_parse_bytes(const char *text, double *out_bytes)
{
    return parse_quantity(text, BYTE_UNITS, out_bytes);
}

int sc_parse_bandwidth_Bps(const char *text, double *out)
{
    return parse_quantity(text, BANDWIDTH_UNITS, out);
}

int sc_parse_rate_qps(const char *text, double *out_qps)
{
    return parse_quantity(text, RATE_UNITS, out_qps);
}

int sc_parse_number(const char *text, double *out)
{
    double v;
    const char *p;
    int negative = 0;

    if (text == NULL)
        return -1;
    if (*text == '-' || *text == '+')
        negative = *text++ == '-';
    p = scan_number(text, &v);
    if (p == NULL || *p != '\0' || !isfinite(v))
        return -1;
    *out = negative ? -v : v;
    return 0;
}
