/* test_timestamp.c - RFC 3339, RFC 3164 and epoch timestamps (parsers/timestamp.c).
 *
 * Design: tables of (text, zone, reference time) -> (bytes consumed, ns UTC);
 * expected instants were computed independently. The local-zone cases run
 * under a POSIX TZ rule for Berlin (no tzdata needed) and cross both DST
 * switches.
 * Threads: single-threaded.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "parsers/parse.h"

#define NS 1000000000LL
#define S(x) ((int64_t)(x) * NS)
#define REF_2018_07_03 S(1530576000)

enum { UTC = LSF_TZ_UTC, FIXED = LSF_TZ_FIXED, LOCAL = LSF_TZ_LOCAL };

typedef struct tcase {
    const char *text;
    int tz;
    int32_t off_s;  /* for FIXED */
    int64_t ref_ns; /* for RFC 3164 */
    size_t consumed; /* 0: not a timestamp */
    int64_t ns;
} tcase;

static void run(const tcase *t, size_t n, int kind)
{
    int bad = 0;
    for (size_t i = 0; i < n; i++) {
        lsf_parse_opts o = {.tz_mode = t[i].tz, .tz_offset_s = t[i].off_s};
        int64_t ns = -12345;
        size_t len = strlen(t[i].text), k;
        if (kind == 3339)
            k = lsf_ts_parse_rfc3339(t[i].text, len, &o, &ns);
        else if (kind == 3164)
            k = lsf_ts_parse_3164(t[i].text, len, &o, t[i].ref_ns, &ns);
        else
            k = lsf_ts_parse_epoch(t[i].text, len, &ns);
        if (k != t[i].consumed || (k && ns != t[i].ns)) {
            print_error("'%s': consumed %zu (want %zu), ns %lld (want %lld)\n", t[i].text, k, t[i].consumed,
                        (long long)ns, (long long)t[i].ns);
            bad++;
        }
    }
    assert_int_equal(bad, 0);
}

static void test_rfc3339(void **state)
{
    (void)state;
    static const tcase t[] = {
        {"2003-10-11T22:14:15.003Z", UTC, 0, 0, 24, S(1065910455) + 3000000},
        {"2003-08-24T05:14:15.000003-07:00", UTC, 0, 0, 32, S(1061727255) + 3000},
        {"1985-04-12T23:20:50.52Z", UTC, 0, 0, 23, S(482196050) + 520000000},
        {"1996-12-19T16:39:57-08:00", UTC, 0, 0, 25, S(851042397)},
        {"1990-12-31T23:59:60Z", UTC, 0, 0, 20, S(662688000)}, /* leap second rolls over */
        {"2018-07-03T10:00:00+0200", UTC, 0, 0, 24, S(1530604800)},
        {"2018-07-03T10:00:00+02", UTC, 0, 0, 22, S(1530604800)},
        {"2018-07-03t10:00:00z", UTC, 0, 0, 20, S(1530612000)},
        {"2018-07-03 10:00:00", UTC, 0, 0, 19, S(1530612000)},          /* zone-less, UTC mode */
        {"2018-07-03T10:00:00", FIXED, 7200, 0, 19, S(1530604800)},     /* zone-less, fixed +02:00 */
        {"2018-07-03T10:00:00Z", FIXED, 7200, 0, 20, S(1530612000)},    /* explicit zone wins */
        {"2018-07-03T10:00:00.123456789123Z", UTC, 0, 0, 33, S(1530612000) + 123456789},
        {"2018-07-03T10:00:00,5Z", UTC, 0, 0, 22, S(1530612000) + 500000000},
        {"2003-10-11T22:14:15Z host app", UTC, 0, 0, 20, S(1065910455)}, /* stops before the text */
        {"2003-9-1T1:0:0Z", UTC, 0, 0, 15, S(1062378000)},             /* rsyslog's short fields */
        {"2018-02-30T00:00:00Z", UTC, 0, 0, 20, S(1519948800)},         /* day rolls over (Mar 2) */
        /* not timestamps */
        {"", UTC, 0, 0, 0, 0},
        {"2003", UTC, 0, 0, 0, 0},
        {"2003-13-11T22:14:15Z", UTC, 0, 0, 0, 0},
        {"2003-10-32T22:14:15Z", UTC, 0, 0, 0, 0},
        {"2003-10-11X22:14:15Z", UTC, 0, 0, 0, 0},
        {"2003-10-11T24:14:15Z", UTC, 0, 0, 0, 0},
        {"2003-10-11T22:60:15Z", UTC, 0, 0, 0, 0},
        {"2003-10-11T22:14:15+25:00", UTC, 0, 0, 0, 0},
        {"2003-10-11T22:14:15+01:61", UTC, 0, 0, 0, 0},
        {"2003-10-11T22:14:15.Z", UTC, 0, 0, 0, 0},
        {"2003-10-11T22:14", UTC, 0, 0, 0, 0},
        {"03-10-11T22:14:15Z", UTC, 0, 0, 0, 0},
        {"9999-12-31T23:59:59Z", UTC, 0, 0, 0, 0}, /* beyond int64 ns */
        {"Mar  6 16:57:54", UTC, 0, 0, 0, 0},
    };
    run(t, sizeof(t) / sizeof(t[0]), 3339);
}

static void test_rfc3164(void **state)
{
    (void)state;
    static const tcase t[] = {
        {"Mar  6 16:57:54", UTC, 0, REF_2018_07_03, 15, S(1520355474)},
        {"Mar 6 16:57:54", UTC, 0, REF_2018_07_03, 14, S(1520355474)},
        {"Mar 06 16:57:54", UTC, 0, REF_2018_07_03, 15, S(1520355474)},
        {"MAR  6 16:57:54", UTC, 0, REF_2018_07_03, 15, S(1520355474)},
        {"mar  6 16:57:54", UTC, 0, REF_2018_07_03, 15, S(1520355474)},
        {"Mar  6 16:57:54.123", UTC, 0, REF_2018_07_03, 19, S(1520355474) + 123000000},
        {"Mar  6 16:57:54 host tag: x", UTC, 0, REF_2018_07_03, 15, S(1520355474)},
        {"Mar  6 16:57:54: %ASA", UTC, 0, REF_2018_07_03, 15, S(1520355474)},
        {"Mar  6 18:57:54", FIXED, 7200, REF_2018_07_03, 15, S(1520355474)},
        {"Mar  6 11:57:54", FIXED, -5 * 3600, REF_2018_07_03, 15, S(1520355474)},
        {"Aug 10 22:18:24", UTC, 0, REF_2018_07_03, 15, S(1533939504)},
        /* explicit years */
        {"Mar 7 2008 19:06:53", UTC, 0, REF_2018_07_03, 19, S(1204916813)},
        {"Mar  7 2008 19:06:53: example", UTC, 0, REF_2018_07_03, 20, S(1204916813)},
        {"2008 Mar  7 19:06:53", UTC, 0, REF_2018_07_03, 20, S(1204916813)},
        {"May 21 2017 00:00:00", UTC, 0, REF_2018_07_03, 20, S(1495324800)},
        /* year inference: the latest year at most 62 days ahead */
        {"Mar  3 10:00:01", UTC, 0, S(1795315200), 15, S(1772532001)},  /* received 2026-11-22: 2026 */
        {"Jan 20 10:00:00", UTC, 0, S(1795315200), 15, S(1800439200)},  /* received 2026-11-22: 2027 */
        {"Dec 31 23:59:59", UTC, 0, S(1546300805), 15, S(1546300799)},  /* received Jan 1: last year */
        {"Jan  1 00:00:05", UTC, 0, S(1546300799), 15, S(1546300805)},  /* received Dec 31: next year */
        {"Feb 29 12:00:00", UTC, 0, S(1561939200), 15, S(1582977600)},  /* 2019 ref: 2020 has Feb 29 */
        {"Feb 18 16:01:59", UTC, 0, REF_2018_07_03, 15, S(1518969719)},
        /* not timestamps */
        {"", UTC, 0, REF_2018_07_03, 0, 0},
        {"Mar", UTC, 0, REF_2018_07_03, 0, 0},
        {"March 6 16:57:54", UTC, 0, REF_2018_07_03, 0, 0},
        {"Foo  6 16:57:54", UTC, 0, REF_2018_07_03, 0, 0},
        {"Mar 32 16:57:54", UTC, 0, REF_2018_07_03, 0, 0},
        {"Mar  0 16:57:54", UTC, 0, REF_2018_07_03, 0, 0},
        {"Mar  6 24:57:54", UTC, 0, REF_2018_07_03, 0, 0},
        {"Mar  6 16:57", UTC, 0, REF_2018_07_03, 0, 0},
        {"Mar  6 16-57-54", UTC, 0, REF_2018_07_03, 0, 0},
        {"1969 Mar  6 16:57:54", UTC, 0, REF_2018_07_03, 0, 0},
        {"2018-07-03T10:00:00Z", UTC, 0, REF_2018_07_03, 0, 0},
    };
    run(t, sizeof(t) / sizeof(t[0]), 3164);
}

/* The same text in a row, as bursts of lines send it: the year inference
 * is remembered for the last text, so a change of reference second or zone
 * must give a fresh answer. */
static void test_rfc3164_repeats(void **state)
{
    (void)state;
    static const tcase t[] = {
        {"Mar  3 10:00:01", UTC, 0, S(1795315200), 15, S(1772532001)},  /* received 2026-11-22: 2026 */
        {"Mar  3 10:00:01", UTC, 0, S(1795315200), 15, S(1772532001)},
        {"Mar  3 10:00:01", UTC, 0, S(1764547200), 15, S(1740996001)},  /* received 2025-12-01: 2025 */
        {"Mar  3 10:00:01", UTC, 0, S(1768003200), 15, S(1772532001)},  /* received 2026-01-10: 2026 */
        {"Mar  3 10:00:01", FIXED, 3600, S(1768003200), 15, S(1772528401)},
        {"Mar  3 10:00:01", FIXED, 7200, S(1768003200), 15, S(1772524801)},
        {"Mar  3 10:00:02", FIXED, 7200, S(1768003200), 15, S(1772524802)},
        {"Mar  4 10:00:02", FIXED, 7200, S(1768003200), 15, S(1772611202)},
        {"Apr  4 10:00:02", FIXED, 7200, S(1768003200), 15, S(1743753602)},  /* 84 days ahead: 2025 */
    };
    run(t, sizeof(t) / sizeof(t[0]), 3164);
}

/* Local time under Berlin's rule: CET (+1) and CEST (+2) from the last
 * Sunday of March 02:00 to the last Sunday of October 03:00. */
static void test_local_dst(void **state)
{
    (void)state;
    static const tcase t[] = {
        {"2018-07-15T12:00:00", LOCAL, 0, 0, 19, S(1531648800)}, /* summer, +2 */
        {"2018-01-15T11:00:00", LOCAL, 0, 0, 19, S(1516010400)}, /* winter, +1 */
        {"2018-03-25T01:30:00", LOCAL, 0, 0, 19, S(1521937800)}, /* before the switch */
        {"2018-03-25T02:30:00", LOCAL, 0, 0, 19, S(1521941400)}, /* in the gap: offset before */
        {"2018-03-25T03:30:00", LOCAL, 0, 0, 19, S(1521941400)}, /* after the switch */
        {"2018-10-28T02:30:00", LOCAL, 0, 0, 19, S(1540686600)}, /* overlap: first occurrence */
        {"2018-10-28T03:30:00", LOCAL, 0, 0, 19, S(1540693800)}, /* after the switch back */
        {"2018-07-15T10:00:00Z", LOCAL, 0, 0, 20, S(1531648800)}, /* zone given: no local */
    };
    run(t, sizeof(t) / sizeof(t[0]), 3339);
    static const tcase t3164[] = {
        {"Jul 15 12:00:00", LOCAL, 0, REF_2018_07_03, 15, S(1531648800)},
        {"Jan 15 11:00:00", LOCAL, 0, REF_2018_07_03, 15, S(1516010400)},
    };
    run(t3164, sizeof(t3164) / sizeof(t3164[0]), 3164);
    /* Many lines across a day use the per-thread offset cache. */
    lsf_parse_opts o = {.tz_mode = LSF_TZ_LOCAL};
    char buf[32];
    for (int h = 0; h < 24; h++) {
        int64_t ns;
        snprintf(buf, sizeof buf, "2018-10-28T%02d:10:00", h);
        assert_int_equal(lsf_ts_parse_rfc3339(buf, strlen(buf), &o, &ns), 19);
        int64_t want = S(1540684800) + (int64_t)h * 3600 * NS + 600 * NS - (h < 3 ? 7200 : 3600) * NS;
        if (ns != want)
            print_error("%s -> %lld want %lld\n", buf, (long long)ns, (long long)want);
        assert_true(ns == want);
    }
}

static void test_epoch(void **state)
{
    (void)state;
    static const tcase t[] = {
        {"1530576000", UTC, 0, 0, 10, S(1530576000)},
        {"1530576000.25", UTC, 0, 0, 13, S(1530576000) + 250000000},
        {"1530576000123", UTC, 0, 0, 13, S(1530576000) + 123000000},
        {"1530576000123.5", UTC, 0, 0, 15, S(1530576000) + 123500000},
        {"1530576000123456", UTC, 0, 0, 16, S(1530576000) + 123456000},
        {"1530576000123456789", UTC, 0, 0, 19, S(1530576000) + 123456789},
        {"1530576000 rest", UTC, 0, 0, 10, S(1530576000)},
        {"12345", UTC, 0, 0, 0, 0},
        {"", UTC, 0, 0, 0, 0},
        {"abc", UTC, 0, 0, 0, 0},
        {"99999999999999999999999", UTC, 0, 0, 0, 0},
    };
    run(t, sizeof(t) / sizeof(t[0]), 0);
    int64_t ns;
    assert_int_equal(lsf_ts_from_epoch(1530576000.5, &ns), 0);
    assert_true(ns == S(1530576000) + 500000000);
    assert_int_equal(lsf_ts_from_epoch(1530576000123.0, &ns), 0);
    assert_true(ns == S(1530576000) + 123000000);
    assert_int_equal(lsf_ts_from_epoch(1e300, &ns), -1);
}

int main(void)
{
    /* Before any local-zone parse: the offset cache is filled lazily. */
    setenv("TZ", "CET-1CEST,M3.5.0,M10.5.0/3", 1);
    tzset();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rfc3339),
        cmocka_unit_test(test_rfc3164),
        cmocka_unit_test(test_rfc3164_repeats),
        cmocka_unit_test(test_local_dst),
        cmocka_unit_test(test_epoch),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
