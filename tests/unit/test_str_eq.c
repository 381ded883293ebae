/* test_str_eq.c - lsf_str_eq (core/event.h) agrees with memcmp for every
 * length from 0 to 40 and a difference at every byte position, including
 * the lengths where its overlapping loads meet (4, 7, 8, 15, 16, 17); and
 * lsf_event_find_at finds what lsf_event_find finds, whatever its hint. */
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

static void test_find_at_agrees_with_find(void **state)
{
    (void)state;
    lsf_batch *b = lsf_batch_new(4);
    lsf_event *shapes[2] = {lsf_batch_push(b), lsf_batch_push(b)};
    lsf_event_set_int(b, shapes[0], LSF_STR_LIT("user_id"), 1);
    lsf_event_set_int(b, shapes[0], LSF_STR_LIT("duration_ms"), 2);
    lsf_event_set_int(b, shapes[1], LSF_STR_LIT("duration_ms"), 3); /* other order, fewer */
    static const lsf_str names[] = {LSF_STR_LIT("user_id"), LSF_STR_LIT("duration_ms"),
                                    LSF_STR_LIT("absent")};
    for (int k = 0; k < 3; k++)
        for (uint16_t start = 0; start < 4; start++) {
            uint16_t at = start;
            for (int round = 0; round < 4; round++) { /* shapes alternate */
                const lsf_event *ev = shapes[round % 2];
                lsf_field *want = lsf_event_find(ev, names[k]);
                assert_ptr_equal(lsf_event_find_at(ev, names[k], &at), want);
                if (want)
                    assert_int_equal(at, want - ev->fields);
            }
        }
    lsf_batch_free(b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_equal_and_each_difference),
        cmocka_unit_test(test_find_at_agrees_with_find),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
