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

/* Days from 1970-01-01 to y-m-d in the proleptic Gregorian calendar
 * (Howard Hinnant's days_from_civil, "chrono-Compatible Low-Level Date
 * Algorithms"): POSIX has no inverse of gmtime. */
static long days_from_civil(long y, long m, long d)
{
    y -= m <= 2;
    long era = (y >= 0 ? y : y - 399) / 400;
    long yoe = y - era * 400;
    long doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    long doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

/* n digits exactly at p, as a number; -1 if they are not all digits. */
static long digits(const char *p, int n)
{
    long v = 0;
    for (int i = 0; i < n; i++) {
        if (!isdigit((unsigned char)p[i]))
            return -1;
        v = v * 10 + (p[i] - '0');
    }
    return v;
}

int sc_parse_datetime(const char *text, double *epoch_s, int *utc_offset_s)
{
    static const int mdays[] = { 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 };
    if (text == NULL || strlen(text) < 20)
        return -1;
    const char *p = text;
    long y = digits(p, 4), mo = digits(p + 5, 2), d = digits(p + 8, 2);
    long h = digits(p + 11, 2), mi = digits(p + 14, 2), s = digits(p + 17, 2);
    if (p[4] != '-' || p[7] != '-' || p[10] != 'T' || p[13] != ':' || p[16] != ':' || y < 1970 ||
        mo < 1 || mo > 12 || d < 1 || h < 0 || h > 23 || mi < 0 || mi > 59 || s < 0 || s > 59)
        return -1;
    int leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    if (d > mdays[mo - 1] + (mo == 2 && leap))
        return -1;
    long off = 0;
    p += 19;
    if (p[0] == 'Z' && p[1] == '\0') {
        off = 0;
    } else if ((p[0] == '+' || p[0] == '-') && strlen(p) == 6 && p[3] == ':') {
        long oh = digits(p + 1, 2), om = digits(p + 4, 2);
        if (oh < 0 || oh > 14 || om < 0 || om > 59)
            return -1;
        off = (p[0] == '-' ? -1 : 1) * (oh * 3600 + om * 60);
    } else {
        return -1;
    }
    *epoch_s = (double)days_from_civil(y, mo, d) * 86400 + (double)(h * 3600 + mi * 60 + s) -
               (double)off;
    *utc_offset_s = (int)off;
    return 0;
}
