/* test_str_eq.c - lsf_str_eq (core/event.h) agrees with memcmp for every
 * length from 0 to 40 and a difference at every byte position, including
 * the lengths where its overlapping loads meet (4, 7, 8, 15, 16, 17). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <string.h>

#include "core/event.h"

static void test_equal_and_each_difference(void **state)
{
    (void)state;
    char a[48], b[48];
    for (uint32_t n = 0; n <= 40; n++) {
        for (uint32_t i = 0; i < n; i++)
            a[i] = b[i] = (char)('a' + (i * 7 + n) % 26);
        assert_true(lsf_str_eq(lsf_str_make(a, n), lsf_str_make(b, n)));
        for (uint32_t at = 0; at < n; at++) {
            b[at] ^= 0x20;
            assert_false(lsf_str_eq(lsf_str_make(a, n), lsf_str_make(b, n)));
            b[at] ^= 0x20;
        }
        if (n)
            assert_false(lsf_str_eq(lsf_str_make(a, n), lsf_str_make(b, n - 1)));
    }
    assert_true(lsf_str_eq(LSF_STR_NULL, lsf_str_make("", 0)));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_equal_and_each_difference),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
