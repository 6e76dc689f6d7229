/*
 * test_units.c - the scenario unit parsers (sim/units.c): exact values for
 * every suffix, and refusal of everything that is not one quantity.
 */
#include "scenario.h"

#include <CUnit/Basic.h>
#include <math.h>

/* Parses text with f and asserts success with exactly (to 1e-12 relative)
 * the expected value. */
#define OK(f, text, expect)                                                        \
    do {                                                                           \
        double v_ = -12345.0;                                                      \
        CU_ASSERT_EQUAL_FATAL(f(text, &v_), 0);                                    \
        CU_ASSERT_DOUBLE_EQUAL(v_, (expect), fabs((double)(expect)) * 1e-12);      \
    } while (0)

/* Asserts that f refuses text and leaves the output alone. */
#define BAD(f, text)                                                               \
    do {                                                                           \
        double v_ = -12345.0;                                                      \
        CU_ASSERT_EQUAL(f(text, &v_), -1);                                         \
        CU_ASSERT_EQUAL(v_, -12345.0);                                             \
    } while (0)

static void test_duration(void)
{
    OK(sc_parse_duration_s, "250ms", 0.25);
    OK(sc_parse_duration_s, "2h", 7200);
    OK(sc_parse_duration_s, "1.5s", 1.5);
    OK(sc_parse_duration_s, "3d", 259200);
    OK(sc_parse_duration_s, "100us", 1e-4);
    OK(sc_parse_duration_s, "100\xc2\xb5s", 1e-4);
    OK(sc_parse_duration_s, "10ns", 1e-8);
    OK(sc_parse_duration_s, "1m", 60);
    OK(sc_parse_duration_s, "30m", 1800);
    OK(sc_parse_duration_s, "2min", 120);
    OK(sc_parse_duration_s, "5", 5);       /* plain number: seconds */
    OK(sc_parse_duration_s, "0.5", 0.5);
    OK(sc_parse_duration_s, ".5s", 0.5);
    OK(sc_parse_duration_s, "0", 0);
    OK(sc_parse_duration_s, "1e3ms", 1);
    OK(sc_parse_duration_s, "2 h", 7200);  /* spaces between number and unit */
    OK(sc_parse_duration_s, "43290s", 43290);

    BAD(sc_parse_duration_s, "");
    BAD(sc_parse_duration_s, NULL);
    BAD(sc_parse_duration_s, "s");
    BAD(sc_parse_duration_s, "abc");
    BAD(sc_parse_duration_s, "5x");       /* unknown suffix */
    BAD(sc_parse_duration_s, "5S");       /* suffixes are case-sensitive */
    BAD(sc_parse_duration_s, "5s ");      /* trailing garbage */
    BAD(sc_parse_duration_s, "5 ");
    BAD(sc_parse_duration_s, " 5s");
    BAD(sc_parse_duration_s, "5ss");
    BAD(sc_parse_duration_s, "1.2.3s");
    BAD(sc_parse_duration_s, "-1s");      /* negative */
    BAD(sc_parse_duration_s, "+1s");
    BAD(sc_parse_duration_s, "inf");
    BAD(sc_parse_duration_s, "nan");
    BAD(sc_parse_duration_s, "infs");
    BAD(sc_parse_duration_s, "0x10");     /* no hex */
    BAD(sc_parse_duration_s, "1e999");    /* overflows to inf */
    BAD(sc_parse_duration_s, "1e308d");   /* finite number, infinite seconds */
    BAD(sc_parse_duration_s, ".s");
}

static void test_bytes(void)
{
    OK(sc_parse_bytes, "4KB", 4000);
    OK(sc_parse_bytes, "4kB", 4000);
    OK(sc_parse_bytes, "4KiB", 4096);
    OK(sc_parse_bytes, "512B", 512);
    OK(sc_parse_bytes, "2MB", 2e6);
    OK(sc_parse_bytes, "1GB", 1e9);
    OK(sc_parse_bytes, "3TB", 3e12);
    OK(sc_parse_bytes, "1MiB", 1048576);
    OK(sc_parse_bytes, "2GiB", 2147483648.0);
    OK(sc_parse_bytes, "1.5KB", 1500);
    OK(sc_parse_bytes, "100", 100);       /* plain number: bytes */
    OK(sc_parse_bytes, "0", 0);
    OK(sc_parse_bytes, "256 B", 256);

    BAD(sc_parse_bytes, "");
    BAD(sc_parse_bytes, "4kb");           /* bits? refused, not guessed */
    BAD(sc_parse_bytes, "4Kb");
    BAD(sc_parse_bytes, "4KBs");
    BAD(sc_parse_bytes, "-4KB");
    BAD(sc_parse_bytes, "KB");
    BAD(sc_parse_bytes, "4 KB x");
    BAD(sc_parse_bytes, "nanKB");
    BAD(sc_parse_bytes, "1e400");
}

static void test_bandwidth(void)
{
    OK(sc_parse_bandwidth_Bps, "10Gbps", 1.25e9);   /* bits: stored as bytes/s */
    OK(sc_parse_bandwidth_Bps, "100Mbps", 12.5e6);
    OK(sc_parse_bandwidth_Bps, "8bps", 1);
    OK(sc_parse_bandwidth_Bps, "1kbps", 125);
    OK(sc_parse_bandwidth_Bps, "1GBps", 1e9);
    OK(sc_parse_bandwidth_Bps, "1.5GB/s", 1.5e9);
    OK(sc_parse_bandwidth_Bps, "25MB/s", 25e6);
    OK(sc_parse_bandwidth_Bps, "1MiB/s", 1048576);
    OK(sc_parse_bandwidth_Bps, "400", 400);         /* plain number: bytes/s */

    BAD(sc_parse_bandwidth_Bps, "");
    BAD(sc_parse_bandwidth_Bps, "10Gb");
    BAD(sc_parse_bandwidth_Bps, "10gbps");
    BAD(sc_parse_bandwidth_Bps, "10Gbit/s");
    BAD(sc_parse_bandwidth_Bps, "-1Gbps");
    BAD(sc_parse_bandwidth_Bps, "Gbps");
    BAD(sc_parse_bandwidth_Bps, "10Gbps!");
    BAD(sc_parse_bandwidth_Bps, "inf");
}

static void test_rate(void)
{
    OK(sc_parse_rate_qps, "500", 500);
    OK(sc_parse_rate_qps, "500qps", 500);
    OK(sc_parse_rate_qps, "500rps", 500);
    OK(sc_parse_rate_qps, "10/s", 10);
    OK(sc_parse_rate_qps, "30/min", 0.5);
    OK(sc_parse_rate_qps, "30/m", 0.5);
    OK(sc_parse_rate_qps, "100/h", 100.0 / 3600);
    OK(sc_parse_rate_qps, "100000/d", 100000.0 / 86400);
    OK(sc_parse_rate_qps, "0.2", 0.2);
    OK(sc_parse_rate_qps, "0", 0);

    BAD(sc_parse_rate_qps, "");
    BAD(sc_parse_rate_qps, "-5");
    BAD(sc_parse_rate_qps, "5/x");
    BAD(sc_parse_rate_qps, "5/");
    BAD(sc_parse_rate_qps, "qps");
    BAD(sc_parse_rate_qps, "5qps/s");
    BAD(sc_parse_rate_qps, "nan");
    BAD(sc_parse_rate_qps, "5 per second");
}

static void test_number(void)
{
    OK(sc_parse_number, "1", 1);
    OK(sc_parse_number, "-2.5", -2.5);
    OK(sc_parse_number, "+3", 3);
    OK(sc_parse_number, "3e-4", 3e-4);
    OK(sc_parse_number, "0.9999", 0.9999);

    BAD(sc_parse_number, "");
    BAD(sc_parse_number, "-");
    BAD(sc_parse_number, "1.5s");
    BAD(sc_parse_number, "nan");
    BAD(sc_parse_number, "-inf");
    BAD(sc_parse_number, ".nan");
    BAD(sc_parse_number, "1e400");
    BAD(sc_parse_number, "--1");
    BAD(sc_parse_number, "1,5");
}

int main(void)
{
    if (CU_initialize_registry() != CUE_SUCCESS)
        return 1;
    CU_pSuite s = CU_add_suite("units", NULL, NULL);
    CU_add_test(s, "durations", test_duration);
    CU_add_test(s, "bytes", test_bytes);
    CU_add_test(s, "bandwidth", test_bandwidth);
    CU_add_test(s, "rates", test_rate);
    CU_add_test(s, "plain numbers", test_number);
    CU_basic_set_mode(CU_BRM_VERBOSE);
    CU_basic_run_tests();
    int failures = (int)CU_get_number_of_failures();
    CU_cleanup_registry();
    return failures != 0;
}
