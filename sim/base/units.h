/*
 * units.h - quantities with explicit units, as written in scenarios
 * (units.c), in base units: seconds, bytes, bytes per second, requests per
 * second.
 */
#ifndef FLEETSIM_UNITS_H
#define FLEETSIM_UNITS_H

/* Units: each returns 0 on success, -1 if text is not a valid quantity. */
int sc_parse_duration_s(const char *text, double *out_s);    /* 250ms 2h 1.5s 3d 100us */
int sc_parse_bytes(const char *text, double *out_bytes);     /* 4KB 1MiB 512B 2GB */
int sc_parse_bandwidth_Bps(const char *text, double *out);   /* 10Gbps 100Mbps 1GBps */
int sc_parse_rate_qps(const char *text, double *out_qps);    /* 500 500qps 30/min 10/s */
/* A plain finite number, sign allowed, no unit (1, -2.5, 3e-4); 0 on success. */
int sc_parse_number(const char *text, double *out);
/* An RFC 3339 date and time, "2026-03-02T08:00:00Z" or with an offset
 * ("...T08:00:00+01:00"), no fraction: seconds since 1970-01-01 UTC and the
 * offset it was written in; 0 on success, -1 otherwise. */
int sc_parse_datetime(const char *text, double *epoch_s, int *utc_offset_s);

#endif
