/* test_secfmt.c - the CEF and LEEF parsers (parsers/cef.c, parsers/leef.c)
 * through lsf_parse_event: header escapes, extension values with spaces and
 * escapes, ECS names, typed ports, severities, syslog-wrapped records,
 * auto-detection, and records that are not CEF/LEEF falling through.
 * Threads: single-threaded.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "parsers/parse.h"

static lsf_batch *b;

static lsf_event *parse(const char *line, int format)
{
    lsf_batch_reset(b);
    lsf_event *ev = lsf_batch_push_record(b, line, strlen(line), 1700000000000000000LL);
    lsf_parse_opts o = {.format = format, .tz_mode = LSF_TZ_UTC};
    lsf_parse_event(b, ev, &o);
    return ev;
}

static void want_str(const lsf_event *ev, const char *name, const char *v)
{
    char scratch[32];
    lsf_str got;
    if (!lsf_event_get_str(ev, lsf_str_make(name, strlen(name)), scratch, &got))
        fail_msg("field %s missing", name);
    if (got.len != strlen(v) || memcmp(got.ptr, v, got.len) != 0)
        fail_msg("field %s: got '%.*s', want '%s'", name, (int)got.len, got.ptr, v);
}

static void want_int(const lsf_event *ev, const char *name, int64_t v)
{
    lsf_field *f = lsf_event_find(ev, lsf_str_make(name, strlen(name)));
    if (!f || f->type != LSF_T_INT || f->v.i != v)
        fail_msg("field %s: want integer %lld", name, (long long)v);
}

static void want_msg(const lsf_event *ev, const char *v)
{
    assert_int_equal(ev->message.len, strlen(v));
    assert_memory_equal(ev->message.ptr, v, ev->message.len);
}

static void cef_plain(void **state)
{
    (void)state;
    lsf_event *ev = parse("CEF:0|Security|threatmanager|1.0|100|worm successfully stopped|10|"
                          "src=10.0.0.1 dst=2.1.2.2 spt=1232 dpt=80 proto=TCP act=blocked "
                          "cs1Label=Rule name cs1=My rule\\=x fname=a b.txt",
                          LSF_FMT_NONE);
    assert_int_equal(ev->format, LSF_FMT_CEF);
    assert_int_equal(ev->flags & LSF_EV_PARSE_FAILURE, 0);
    want_str(ev, "observer.vendor", "Security");
    want_str(ev, "observer.product", "threatmanager");
    want_str(ev, "observer.version", "1.0");
    want_str(ev, "event.code", "100");
    want_str(ev, "cef.name", "worm successfully stopped");
    want_msg(ev, "worm successfully stopped");
    want_int(ev, "event.severity", 10);
    want_str(ev, "source.ip", "10.0.0.1");
    want_str(ev, "destination.ip", "2.1.2.2");
    want_int(ev, "source.port", 1232);
    want_int(ev, "destination.port", 80);
    want_str(ev, "network.transport", "tcp");
    want_str(ev, "event.action", "blocked");
    want_str(ev, "cef.extensions.cs1Label", "Rule name");
    want_str(ev, "cef.extensions.cs1", "My rule=x");
    want_str(ev, "file.name", "a b.txt");
    assert_true(ev->flags & LSF_EV_TIME_GUESSED);
}

static void cef_escapes_and_msg(void **state)
{
    (void)state;
    lsf_event *ev = parse("CEF:1|Ven\\|dor|Prod\\\\uct|2|sig\\|7|Name|Very-High|msg=line one\\nline two "
                          "rt=1700000000123 cs2=bad key start=not a time",
                          LSF_FMT_CEF);
    assert_int_equal(ev->format, LSF_FMT_CEF);
    want_str(ev, "observer.vendor", "Ven|dor");
    want_str(ev, "observer.product", "Prod\\uct");
    want_str(ev, "event.code", "sig|7");
    want_int(ev, "event.severity", 10);
    want_msg(ev, "line one\nline two");
    assert_int_equal(ev->time_ns, 1700000000123000000LL);
    assert_int_equal(ev->flags & LSF_EV_TIME_GUESSED, 0);
    want_str(ev, "cef.extensions.cs2", "bad key");
    want_str(ev, "event.start", "not a time");
    ev = parse("CEF:0|V|P|1|s|N|1|rt=yesterday", LSF_FMT_NONE);
    want_str(ev, "cef.extensions.rt", "yesterday"); /* not a time: kept under its own name */
}

static void cef_in_syslog(void **state)
{
    (void)state;
    lsf_event *ev = parse("<134>Mar  3 10:00:01 fw1 CEF:0|Palo Alto|PAN-OS|9.1|THREAT|Spyware|High|"
                          "suser=bob",
                          LSF_FMT_NONE);
    assert_int_equal(ev->format, LSF_FMT_CEF);
    assert_int_equal(ev->pri, 134);
    assert_int_equal(ev->host.len, 3);
    assert_null(ev->app.ptr); /* "CEF" was not a program */
    want_str(ev, "observer.product", "PAN-OS");
    want_int(ev, "event.severity", 8);
    want_str(ev, "source.user.name", "bob");
    want_msg(ev, "Spyware");
    ev = parse("<13>1 2026-03-03T10:00:01Z fw2 ids - - - CEF:0|V|P|1|9|N|3|dst=::1", LSF_FMT_NONE);
    assert_int_equal(ev->format, LSF_FMT_CEF);
    assert_int_equal(ev->app.len, 3);
    want_str(ev, "destination.ip", "::1");
}

static void cef_not_cef(void **state)
{
    (void)state;
    lsf_event *ev = parse("CEF:0|only|three|fields", LSF_FMT_NONE);
    assert_int_not_equal(ev->format, LSF_FMT_CEF);
    ev = parse("CEF:x|a|b|c|d|e|f|", LSF_FMT_CEF);
    assert_int_equal(ev->format, LSF_FMT_RAW);
    assert_true(ev->flags & LSF_EV_PARSE_FAILURE);
    ev = parse("<13>Mar  3 10:00:01 host app: not cef", LSF_FMT_CEF);
    assert_int_equal(ev->format, LSF_FMT_RFC3164); /* header kept, flagged */
    assert_true(ev->flags & LSF_EV_PARSE_FAILURE);
}

static void leef_1_and_2(void **state)
{
    (void)state;
    lsf_event *ev = parse("LEEF:1.0|Microsoft|MSExchange|4.0 SP1|15345|src=10.50.1.1\tdst=2.10.20.20\t"
                          "sev=5\tdevTime=1700000000000\tusrName=joe\tcustom=x y",
                          LSF_FMT_NONE);
    assert_int_equal(ev->format, LSF_FMT_LEEF);
    want_str(ev, "observer.vendor", "Microsoft");
    want_str(ev, "observer.version", "4.0 SP1");
    want_str(ev, "event.code", "15345");
    want_int(ev, "event.severity", 5);
    want_str(ev, "user.name", "joe");
    want_str(ev, "leef.custom", "x y");
    assert_int_equal(ev->time_ns, 1700000000000000000LL);
    ev = parse("LEEF:2.0|Lancope|StealthWatch|1.0|41|^|src=10.0.1.8^dst=10.0.0.5^srcPort=81^sev=10",
               LSF_FMT_LEEF);
    assert_int_equal(ev->format, LSF_FMT_LEEF);
    want_int(ev, "source.port", 81);
    want_int(ev, "event.severity", 10);
    want_str(ev, "destination.ip", "10.0.0.5");
    ev = parse("LEEF:2.0|V|P|1|7|x09|src=1.1.1.1\tdst=2.2.2.2", LSF_FMT_NONE);
    want_str(ev, "destination.ip", "2.2.2.2");
    ev = parse("LEEF:2.0|V|P|1|7|src=1.1.1.1\tdst=2.2.2.2", LSF_FMT_NONE); /* no delimiter field */
    want_str(ev, "source.ip", "1.1.1.1");
    ev = parse("<13>Mar  3 10:00:01 qr LEEF:1.0|IBM|QRadar|7|55|src=1.2.3.4", LSF_FMT_NONE);
    assert_int_equal(ev->format, LSF_FMT_LEEF);
    want_str(ev, "observer.vendor", "IBM");
    ev = parse("LEEF:3.0|V|P|1|7|src=1", LSF_FMT_NONE);
    assert_int_not_equal(ev->format, LSF_FMT_LEEF);
}

/* Truncated prefixes of valid records never read outside the record. */
static void prefixes(void **state)
{
    (void)state;
    const char *recs[] = {"CEF:0|V\\|x|P|1|sig|Name|5|src=1.2.3.4 msg=a\\=b c=d\\",
                          "LEEF:2.0|V|P|1|7|0x5e|a=b^c=d^e="};
    for (size_t r = 0; r < 2; r++) {
        size_t n = strlen(recs[r]);
        for (size_t k = 0; k <= n; k++) {
            char buf[128];
            memcpy(buf, recs[r], k);
            lsf_batch_reset(b);
            lsf_event *ev = lsf_batch_push_record(b, buf, k, 1);
            lsf_parse_opts o = {.format = LSF_FMT_NONE, .tz_mode = LSF_TZ_UTC};
            lsf_parse_event(b, ev, &o);
            assert_non_null(ev->message.ptr);
        }
    }
}

/* fuzz_leef: an attribute name with NUL bytes became a field name the JSON
 * reader refused; names must be printable ASCII, other attributes are left
 * in the message. */
static void fuzz_leef_nul_key(void **state)
{
    (void)state;
    static const char rec[] = "LEEF:1.0|V|P|1|7|src=1.1.1.1\tdst\0\0=2.2.2.2\tok=1";
    lsf_batch_reset(b);
    lsf_event *ev = lsf_batch_push_record(b, rec, sizeof(rec) - 1, 1);
    lsf_parse_opts o = {.format = LSF_FMT_NONE, .tz_mode = LSF_TZ_UTC};
    lsf_parse_event(b, ev, &o);
    assert_int_equal(ev->format, LSF_FMT_LEEF);
    want_str(ev, "source.ip", "1.1.1.1");
    want_str(ev, "leef.ok", "1");
    for (uint16_t i = 0; i < ev->nfields; i++)
        assert_null(memchr(ev->fields[i].name.ptr, 0, ev->fields[i].name.len));
}

int main(void)
{
    b = lsf_batch_new(4);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(cef_plain),   cmocka_unit_test(cef_escapes_and_msg),
        cmocka_unit_test(cef_in_syslog), cmocka_unit_test(cef_not_cef),
        cmocka_unit_test(leef_1_and_2), cmocka_unit_test(prefixes),
        cmocka_unit_test(fuzz_leef_nul_key),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    lsf_batch_free(b);
    return rc;
}
