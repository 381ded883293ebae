/* test_arena.c - arena allocation, alignment, growth, reset, big blocks;
 * batch push limits and dynamic fields/tags. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <string.h>

#include "core/arena.h"
#include "core/event.h"

static void test_alloc_alignment_and_growth(void **state)
{
    (void)state;
    lsf_arena a;
    lsf_arena_init(&a, 1024);
    char *prev = NULL;
    for (int i = 1; i < 2000; i++) {
        char *p = lsf_arena_alloc(&a, (size_t)(i % 37) + 1);
        assert_int_equal((uintptr_t)p % 8, 0);
        memset(p, 0xab, (size_t)(i % 37) + 1);
        assert_true(p != prev);
        prev = p;
    }
    char *big = lsf_arena_alloc(&a, 1 << 20); /* larger than a chunk */
    memset(big, 1, 1 << 20);
    lsf_arena_reset(&a);
    assert_int_equal(a.used_bytes, 0);
    char *again = lsf_arena_memdup(&a, "hello", 5);
    assert_memory_equal(again, "hello", 5);
    lsf_arena_deinit(&a);
}

static void test_batch_fields_and_tags(void **state)
{
    (void)state;
    lsf_batch *b = lsf_batch_new(2);
    lsf_event *ev = lsf_batch_push_record(b, "abc", 3, 42);
    assert_non_null(ev);
    assert_int_equal(ev->pri, -1);
    assert_int_equal(ev->ingested_ns, 42);
    assert_true(lsf_str_eq(ev->message, LSF_STR_LIT("abc")));
    assert_non_null(lsf_batch_push(b));
    assert_null(lsf_batch_push(b)); /* full */

    for (int i = 0; i < 40; i++) {
        char *name = lsf_arena_alloc(&b->arena, 8);
        int n = snprintf(name, 8, "f%d", i);
        lsf_event_set_int(b, ev, lsf_str_make(name, (size_t)n), i);
    }
    assert_int_equal(ev->nfields, 40);
    lsf_event_set_str(b, ev, LSF_STR_LIT("f7"), LSF_STR_LIT("seven")); /* replaces */
    assert_int_equal(ev->nfields, 40);
    char scratch[32];
    lsf_str out;
    assert_true(lsf_event_get_str(ev, LSF_STR_LIT("f7"), scratch, &out));
    assert_true(lsf_str_eq(out, LSF_STR_LIT("seven")));
    assert_true(lsf_event_get_str(ev, LSF_STR_LIT("f39"), scratch, &out));
    assert_true(lsf_str_eq(out, LSF_STR_LIT("39")));
    assert_true(lsf_event_get_str(ev, LSF_STR_LIT("message"), scratch, &out));
    assert_false(lsf_event_get_str(ev, LSF_STR_LIT("host.name"), scratch, &out));
    ev->pri = 165;
    assert_true(lsf_event_get_str(ev, LSF_STR_LIT("log.syslog.facility.name"), scratch, &out));
    assert_true(lsf_str_eq(out, LSF_STR_LIT("local4")));
    assert_true(lsf_event_get_str(ev, LSF_STR_LIT("log.syslog.severity.code"), scratch, &out));
    assert_true(lsf_str_eq(out, LSF_STR_LIT("5")));

    for (int i = 0; i < 10; i++)
        lsf_event_add_tag(b, ev, LSF_STR_LIT("dup"));
    lsf_event_add_tag(b, ev, LSF_STR_LIT("other"));
    assert_int_equal(ev->ntags, 2);

    lsf_batch_reset(b);
    assert_int_equal(b->n, 0);
    lsf_batch_free(b);
}

static void test_intern(void **state)
{
    (void)state;
    uint16_t a = lsf_field_intern("source.ip", 9);
    uint16_t b = lsf_field_intern("user.name", 9);
    assert_true(a >= 1);
    assert_int_not_equal(a, b);
    assert_int_equal(lsf_field_intern("source.ip", 9), a);
    assert_string_equal(lsf_field_name(b), "user.name");
}

static int acked_calls;
static bool acked_ok;
static uint64_t acked_token;

static void on_ack(void *arg, uint64_t token, bool ok)
{
    (void)arg;
    acked_calls++;
    acked_token = token;
    acked_ok = ok;
}

/* The ack fires once, after the batch and every retained reference let go. */
static void test_ack(void **state)
{
    (void)state;
    lsf_batch *b = lsf_batch_new(4);
    b->ack = lsf_ack_new(on_ack, NULL, 77);
    lsf_ack *held = b->ack;
    lsf_ack_retain(held);  /* an async sink */
    lsf_batch_reset(b);    /* the pipeline is done with the batch */
    assert_int_equal(acked_calls, 0);
    lsf_ack_release(held); /* the delivery report */
    assert_int_equal(acked_calls, 1);
    assert_int_equal(acked_token, 77);
    assert_true(acked_ok);

    b->ack = lsf_ack_new(on_ack, NULL, 78);
    lsf_ack_fail(b->ack);
    lsf_batch_reset(b);
    assert_int_equal(acked_calls, 2);
    assert_false(acked_ok);
    lsf_batch_free(b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_alloc_alignment_and_growth),
        cmocka_unit_test(test_batch_fields_and_tags),
        cmocka_unit_test(test_intern),
        cmocka_unit_test(test_ack),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
