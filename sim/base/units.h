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

#endif
