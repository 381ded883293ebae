/* test_numtext.c - lsf_u64_text and lsf_i64_text (core/numtext.h) write the
 * same digits as printf: at every power-of-ten edge, the extremes, and a
 * million pseudo-random values of every length. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "core/numtext.h"

static void check_i64(int64_t v)
{
    char want[32], got[32];
    snprintf(want, sizeof(want), "%" PRId64, v);
    char *e = lsf_i64_text(got, v);
    *e = 0;
    assert_string_equal(got, want);
}

static void check_u64(uint64_t v)
{
    char want[32], got[32];
    snprintf(want, sizeof(want), "%" PRIu64, v);
    char *e = lsf_u64_text(got, v);
    *e = 0;
    assert_string_equal(got, want);
}

static void test_edges(void **state)
{
    (void)state;
    check_u64(0);
    check_u64(UINT64_MAX);
    check_i64(0);
    check_i64(INT64_MAX);
    check_i64(INT64_MIN);
    for (int k = 0; k < 20; k++) {
        uint64_t p = lsf_pow10_u64[k];
        check_u64(p);
        check_u64(p - 1);
        check_u64(p + 1);
        if (p <= (uint64_t)INT64_MAX) {
            check_i64((int64_t)p);
            check_i64(-(int64_t)p);
            check_i64((int64_t)p - 1);
            check_i64(1 - (int64_t)p);
        }
    }
}

static void test_random(void **state)
{
    (void)state;
    uint64_t x = 0x9e3779b97f4a7c15ULL;
    for (int i = 0; i < 1000000; i++) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        uint64_t v = x >> (x % 64); /* every length of number */
        check_u64(v);
        check_i64((int64_t)v);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_edges),
        cmocka_unit_test(test_random),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
