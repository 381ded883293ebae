/* test_json_out.c - unit tests of the JSON writer (sinks/json_out.c).
 *
 * Table-driven: string escaping (exact bytes, and a byte-by-byte reference
 * escaper on random input to cover the word-at-a-time path), every schema
 * field, structured data, dynamic-field merging and name conflicts,
 * timestamps (checked against gmtime_r), batch line offsets. Every line the
 * writer produces is parsed with jansson, rejecting invalid UTF-8 and
 * duplicate keys.
 * Set LSF_BENCH=1 to also print the writer's speed on a typical event.
 * Threads: single-threaded.
 */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>
#include <jansson.h>

#include "core/event.h"
#include "sinks/json_out.h"

/* ---- helpers ------------------------------------------------------------ */

/* Parses one line (must end in its only '\n'); fails the test otherwise. */
static json_t *parse_line(const char *s, size_t n)
{
    if (n == 0 || s[n - 1] != '\n')
        fail_msg("line does not end in a newline: %.*s", (int)n, s);
    if (memchr(s, '\n', n - 1))
        fail_msg("newline inside a line: %.*s", (int)n, s);
    json_error_t err;
    json_t *j = json_loadb(s, n - 1, JSON_REJECT_DUPLICATES | JSON_ALLOW_NUL, &err);
    if (!j)
        fail_msg("invalid JSON (%s at %d): %.*s", err.text, err.position, (int)n, s);
    if (!json_is_object(j))
        fail_msg("not an object: %.*s", (int)n, s);
    return j;
}

static void assert_json_eq(json_t *got, const char *expected)
{
    json_error_t err;
    json_t *want = json_loads(expected, JSON_REJECT_DUPLICATES, &err);
    if (!want)
        fail_msg("bad expected JSON in test (%s): %s", err.text, expected);
    if (!json_equal(got, want)) {
        char *g = json_dumps(got, JSON_SORT_KEYS | JSON_COMPACT);
        char *w = json_dumps(want, JSON_SORT_KEYS | JSON_COMPACT);
        fail_msg("JSON differs\n  got:  %s\n  want: %s", g, w);
    }
    json_decref(want);
}

/* Writes one event; returns the parsed line (caller decrefs). */
static json_t *write_one(const lsf_event *ev, lsf_outbuf *o)
{
    lsf_outbuf_reset(o);
    lsf_json_write_event(o, ev);
    return parse_line(o->buf, o->len);
}

/* A fresh event with nothing but a timestamp. */
static lsf_event *bare_event(lsf_batch *b)
{
    lsf_batch_reset(b);
    lsf_event *ev = lsf_batch_push(b);
    ev->time_ns = 1772532001000000000; /* 2026-03-03T10:00:01Z */
    return ev;
}

static lsf_str S(const char *s)
{
    return lsf_str_make(s, strlen(s));
}

static void set_json(lsf_batch *b, lsf_event *ev, const char *name, const char *text)
{
    lsf_field *f = lsf_event_set(b, ev, S(name), 0);
    f->type = LSF_T_JSON;
    f->v.s = S(text);
}

static void set_null(lsf_batch *b, lsf_event *ev, const char *name)
{
    lsf_field *f = lsf_event_set(b, ev, S(name), 0);
    f->type = LSF_T_NULL;
}

/* ---- string escaping ---------------------------------------------------- */

struct esc_case {
    const char *in;
    size_t len; /* 0: strlen */
    const char *out; /* exact JSON text */
};

static const struct esc_case esc_cases[] = {
    {"", 0, "\"\""},
    {"plain text", 0, "\"plain text\""},
    {"a\"b", 0, "\"a\\\"b\""},
    {"a\\b", 0, "\"a\\\\b\""},
    {"\n\t\r\b\f", 0, "\"\\n\\t\\r\\b\\f\""},
    {"\x01\x1f\x0b", 0, "\"\\u0001\\u001f\\u000b\""},
    {"a\0b", 3, "\"a\\u0000b\""},
    {"\x7f/<>", 0, "\"\x7f/<>\""},
    {"\xc3\xa9", 0, "\"\xc3\xa9\""},                    /* é, 2 bytes */
    {"\xe2\x82\xac", 0, "\"\xe2\x82\xac\""},            /* €, 3 bytes */
    {"\xf0\x9f\x98\x80", 0, "\"\xf0\x9f\x98\x80\""},    /* U+1F600, 4 bytes */
    {"\xf4\x8f\xbf\xbf", 0, "\"\xf4\x8f\xbf\xbf\""},    /* U+10FFFF */
    {"\xed\x9f\xbf", 0, "\"\xed\x9f\xbf\""},            /* U+D7FF, below surrogates */
    {"\xee\x80\x80", 0, "\"\xee\x80\x80\""},            /* U+E000, after surrogates */
    {"\xc2\x80", 0, "\"\xc2\x80\""},                    /* smallest 2-byte */
    {"\xe0\xa0\x80", 0, "\"\xe0\xa0\x80\""},            /* smallest 3-byte */
    {"\xf0\x90\x80\x80", 0, "\"\xf0\x90\x80\x80\""},    /* smallest 4-byte */
    {"\xc0\xaf", 0, "\"\\\\xC0\\\\xAF\""},              /* overlong '/' */
    {"\xc1\xbf", 0, "\"\\\\xC1\\\\xBF\""},              /* overlong */
    {"\xe0\x80\xaf", 0, "\"\\\\xE0\\\\x80\\\\xAF\""},   /* overlong 3-byte */
    {"\xe0\x9f\xbf", 0, "\"\\\\xE0\\\\x9F\\\\xBF\""},   /* overlong 3-byte, top */
    {"\xf0\x80\x80\xaf", 0, "\"\\\\xF0\\\\x80\\\\x80\\\\xAF\""}, /* overlong 4-byte */
    {"\xf0\x8f\xbf\xbf", 0, "\"\\\\xF0\\\\x8F\\\\xBF\\\\xBF\""}, /* overlong 4-byte, top */
    {"\xed\xa0\x80", 0, "\"\\\\xED\\\\xA0\\\\x80\""},   /* surrogate U+D800 */
    {"\xed\xbf\xbf", 0, "\"\\\\xED\\\\xBF\\\\xBF\""},   /* surrogate U+DFFF */
    {"\xf4\x90\x80\x80", 0, "\"\\\\xF4\\\\x90\\\\x80\\\\x80\""}, /* U+110000 */
    {"\xf5\x80\x80\x80", 0, "\"\\\\xF5\\\\x80\\\\x80\\\\x80\""},
    {"\xe2\x82" "A", 0, "\"\\\\xE2\\\\x82A\""},         /* truncated, then ASCII */
    {"x\xe2\x82", 0, "\"x\\\\xE2\\\\x82\""},            /* truncated at the end */
    {"\xf0\x9f\x98", 0, "\"\\\\xF0\\\\x9F\\\\x98\""},   /* truncated 4-byte */
    {"\xc3", 0, "\"\\\\xC3\""},                         /* lone lead byte */
    {"\xc3\xc3\xa9", 0, "\"\\\\xC3\xc3\xa9\""},         /* bad lead, then valid */
    {"\x80", 0, "\"\\\\x80\""},                         /* lone continuation */
    {"a\xbf" "b", 0, "\"a\\\\xBFb\""},
    {"\xff\xfe", 0, "\"\\\\xFF\\\\xFE\""},
    /* specials at every position of an 8-byte word, and across words */
    {"0123456\"89abcdef", 0, "\"0123456\\\"89abcdef\""},
    {"01234567\\9abcdef", 0, "\"01234567\\\\9abcdef\""},
    {"0123456789abcde\n", 0, "\"0123456789abcde\\n\""},
    {"0123456\xc3\xa9" "9abcdef", 0, "\"0123456\xc3\xa9" "9abcdef\""},
    {"01234567\x1f" "9abcdef01234567", 0, "\"01234567\\u001f9abcdef01234567\""},
    {"\x20\x21\x23\x5b\x5d\x7e!!!!!!!!", 0, "\" !#[]~!!!!!!!!\""},
};

static void test_escape_table(void **state)
{
    (void)state;
    lsf_outbuf o;
    lsf_outbuf_init(&o);
    for (size_t i = 0; i < sizeof(esc_cases) / sizeof(esc_cases[0]); i++) {
        const struct esc_case *c = &esc_cases[i];
        size_t n = c->len ? c->len : strlen(c->in);
        lsf_outbuf_reset(&o);
        lsf_json_write_string(&o, c->in, n);
        if (o.len != strlen(c->out) || memcmp(o.buf, c->out, o.len) != 0)
            fail_msg("case %zu: got %.*s want %s", i, (int)o.len, o.buf, c->out);
        json_error_t err;
        json_t *j = json_loadb(o.buf, o.len, JSON_DECODE_ANY | JSON_ALLOW_NUL, &err);
        if (!j)
            fail_msg("case %zu: not valid JSON: %s", i, err.text);
        json_decref(j);
    }
    lsf_outbuf_deinit(&o);
}

/* Every control character: short form or \u00XX, and the decoded text is the
 * original byte. */
static void test_escape_every_control(void **state)
{
    (void)state;
    static const char *const shorts[32] = {['\b'] = "\\b", ['\t'] = "\\t", ['\n'] = "\\n",
                                           ['\f'] = "\\f", ['\r'] = "\\r"};
    lsf_outbuf o;
    lsf_outbuf_init(&o);
    for (int c = 0; c < 32; c++) {
        char in = (char)c, want[16];
        if (shorts[c])
            snprintf(want, sizeof(want), "\"%s\"", shorts[c]);
        else
            snprintf(want, sizeof(want), "\"\\u%04x\"", c);
        lsf_outbuf_reset(&o);
        lsf_json_write_string(&o, &in, 1);
        if (o.len != strlen(want) || memcmp(o.buf, want, o.len))
            fail_msg("control 0x%02x: got %.*s want %s", c, (int)o.len, o.buf, want);
        json_t *j = json_loadb(o.buf, o.len, JSON_DECODE_ANY | JSON_ALLOW_NUL, NULL);
        assert_non_null(j);
        assert_int_equal(json_string_length(j), 1);
        assert_int_equal(json_string_value(j)[0], c);
        json_decref(j);
    }
    lsf_outbuf_deinit(&o);
}

/* Straightforward reference: one byte (or sequence) at a time. */
static size_t ref_escape(const unsigned char *s, size_t n, char *out)
{
    char *d = out;
    *d++ = '"';
    for (size_t i = 0; i < n;) {
        unsigned c = s[i];
        if (c == '"' || c == '\\') {
            d += sprintf(d, "\\%c", c);
            i++;
        } else if (c < 0x20) {
            const char *sh = c == '\n' ? "\\n" : c == '\t' ? "\\t" : c == '\r' ? "\\r"
                           : c == '\b' ? "\\b" : c == '\f' ? "\\f" : NULL;
            d += sh ? sprintf(d, "%s", sh) : sprintf(d, "\\u%04x", c);
            i++;
        } else if (c < 0x80) {
            *d++ = (char)c;
            i++;
        } else {
            /* decode and check the code point range and minimal length */
            size_t len = c >= 0xF0 ? 4 : c >= 0xE0 ? 3 : c >= 0xC0 ? 2 : 0;
            uint32_t cp = len == 4 ? (c & 7) : len == 3 ? (c & 15) : (c & 31);
            bool ok = len > 0 && c <= 0xF7 && i + len <= n;
            for (size_t k = 1; ok && k < len; k++) {
                if ((s[i + k] & 0xC0) != 0x80)
                    ok = false;
                cp = (cp << 6) | (s[i + k] & 0x3F);
            }
            static const uint32_t minv[5] = {0, 0, 0x80, 0x800, 0x10000};
            if (ok && (cp < minv[len] || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)))
                ok = false;
            if (ok) {
                memcpy(d, s + i, len);
                d += len;
                i += len;
            } else {
                d += sprintf(d, "\\\\x%02X", c);
                i++;
            }
        }
    }
    *d++ = '"';
    return (size_t)(d - out);
}

static void test_escape_random_vs_reference(void **state)
{
    (void)state;
    /* bytes weighted towards the interesting ones */
    static const unsigned char pool[] = {'a', 'b', ' ', '"', '\\', '\n', 0, 0x1f, 0x7f, 0x80,
                                         0xbf, 0xc2, 0xc3, 0xe0, 0xe2, 0xed, 0xf0, 0xf4, 0xf5,
                                         0xff, 0xa0, 0x9f, 0x8f, 0x90};
    lsf_outbuf o;
    lsf_outbuf_init(&o);
    unsigned char in[64];
    char want[64 * 6 + 3];
    srand(12345);
    for (int round = 0; round < 200000; round++) {
        size_t n = (size_t)(rand() % 40);
        for (size_t i = 0; i < n; i++)
            in[i] = (rand() % 3) ? pool[rand() % sizeof(pool)] : (unsigned char)(rand() % 256);
        size_t wn = ref_escape(in, n, want);
        lsf_outbuf_reset(&o);
        lsf_json_write_string(&o, (const char *)in, n);
        if (o.len != wn || memcmp(o.buf, want, wn)) {
            char hex[64 * 3 + 1] = "";
            for (size_t i = 0; i < n; i++)
                sprintf(hex + 3 * i, "%02x ", in[i]);
            fail_msg("input %s\n  got  %.*s\n  want %.*s", hex, (int)o.len, o.buf, (int)wn, want);
        }
        json_t *j = json_loadb(o.buf, o.len, JSON_DECODE_ANY | JSON_ALLOW_NUL, NULL);
        if (!j)
            fail_msg("not valid JSON: %.*s", (int)o.len, o.buf);
        json_decref(j);
    }
    lsf_outbuf_deinit(&o);
}

/* ---- schema ------------------------------------------------------------- */

/* A full RFC 5424 event: the exact line, so the key order is pinned too. */
static void test_schema_full_exact(void **state)
{
    (void)state;
    lsf_batch *b = lsf_batch_new(4);
    lsf_outbuf o;
    lsf_outbuf_init(&o);
    lsf_event *ev = bare_event(b);
    ev->ingested_ns = 1772532001123456789;
    ev->message = S("Failed password");
    ev->host = S("web1");
    ev->app = S("sshd");
    ev->procid = S("42");
    ev->msgid = S("ID47");
    ev->sd = S("[exampleSDID@32473 iut=\"3\"]");
    ev->source_addr = S("192.0.2.1:514");
    ev->pri = 38;
    ev->version = 1;
    ev->flags = LSF_EV_PARSE_FAILURE | LSF_EV_TRUNCATED;
    lsf_event_add_tag(b, ev, S("auth"));
    json_decref(write_one(ev, &o));
    const char *want =
        "{\"@timestamp\":\"2026-03-03T10:00:01.000000Z\","
        "\"event\":{\"ingested\":\"2026-03-03T10:00:01.123456Z\"},"
        "\"message\":\"Failed password\",\"host\":{\"name\":\"web1\"},"
        "\"process\":{\"name\":\"sshd\",\"pid\":42},"
        "\"log\":{\"syslog\":{\"priority\":38,\"facility\":{\"code\":4,\"name\":\"auth\"},"
        "\"severity\":{\"code\":6,\"name\":\"info\"},\"hostname\":\"web1\",\"appname\":\"sshd\","
        "\"procid\":\"42\",\"msgid\":\"ID47\",\"version\":1,"
        "\"structured_data\":{\"exampleSDID@32473\":{\"iut\":\"3\"}}},"
        "\"source\":{\"address\":\"192.0.2.1:514\"}},"
        "\"tags\":[\"_parse_failure\",\"_truncated\",\"auth\"]}\n";
    if (o.len != strlen(want) || memcmp(o.buf, want, o.len))
        fail_msg("got  %.*s\nwant %s", (int)o.len, o.buf, want);
    lsf_outbuf_deinit(&o);
    lsf_batch_free(b);
}

typedef void (*setup_fn)(lsf_batch *b, lsf_event *ev);

struct json_case {
    const char *name;
    setup_fn setup;
    const char *want; /* the whole event, compared as JSON values */
};

#define TS "\"@timestamp\":\"2026-03-03T10:00:01.000000Z\""

static void s_bare(lsf_batch *b, lsf_event *ev) { (void)b; (void)ev; }
static void s_ingested_only(lsf_batch *b, lsf_event *ev)
{
    (void)b;
    ev->time_ns = 0;
    ev->ingested_ns = 86400000000000; /* 1970-01-02 */
}
static void s_empty_strings(lsf_batch *b, lsf_event *ev)
{
    (void)b;
    ev->message = S("");
    ev->host = S("");
    ev->app = S("");
    ev->msgid = S("");
    ev->source_addr = S("");
}
static void s_pri_only(lsf_batch *b, lsf_event *ev)
{
    (void)b;
    ev->pri = 0;
}
static void s_pri_max(lsf_batch *b, lsf_event *ev)
{
    (void)b;
    ev->pri = 191;
}
static void s_pri_out_of_range(lsf_batch *b, lsf_event *ev)
{
    (void)b;
    ev->pri = 200; /* facility 25 has no name */
}
static void s_pid_nonnumeric(lsf_batch *b, lsf_event *ev)
{
    (void)b;
    ev->procid = S("12a");
}
static void s_pid_leading_zero(lsf_batch *b, lsf_event *ev)
{
    (void)b;
    ev->procid = S("007");
}
static void s_pid_max(lsf_batch *b, lsf_event *ev)
{
    (void)b;
    ev->procid = S("9223372036854775807");
}
static void s_pid_too_big(lsf_batch *b, lsf_event *ev)
{
    (void)b;
    ev->procid = S("9223372036854775808");
}
static void s_pid_20_digits(lsf_batch *b, lsf_event *ev)
{
    (void)b;
    ev->procid = S("10000000000000000000");
}
static void s_source_only(lsf_batch *b, lsf_event *ev)
{
    (void)b;
    ev->source_addr = S("[2001:db8::1]:514");
}
static void s_tags_only(lsf_batch *b, lsf_event *ev)
{
    lsf_event_add_tag(b, ev, S("x"));
    lsf_event_add_tag(b, ev, S("y\"z"));
}
static void s_tags_dup_flag(lsf_batch *b, lsf_event *ev)
{
    ev->flags = LSF_EV_PARSE_FAILURE;
    lsf_event_add_tag(b, ev, S("_parse_failure"));
    lsf_event_add_tag(b, ev, S("_truncated")); /* not flagged: kept as a tag */
}
static void s_time_guessed(lsf_batch *b, lsf_event *ev)
{
    (void)b;
    ev->flags = LSF_EV_TIME_GUESSED;
}
static void s_sd_nil(lsf_batch *b, lsf_event *ev)
{
    (void)b;
    ev->sd = S("-");
}
static void s_version_zero(lsf_batch *b, lsf_event *ev)
{
    (void)b;
    ev->version = 0;
    ev->msgid = S("m");
}
static void s_escape_fields(lsf_batch *b, lsf_event *ev)
{
    (void)b;
    ev->message = S("a\"b\\c\n\xff");
    ev->host = S("h\x01");
}

static const struct json_case schema_cases[] = {
    {"bare", s_bare, "{" TS "}"},
    {"ingested only", s_ingested_only,
     "{\"@timestamp\":\"1970-01-02T00:00:00.000000Z\","
     "\"event\":{\"ingested\":\"1970-01-02T00:00:00.000000Z\"}}"},
    {"empty strings", s_empty_strings,
     "{" TS ",\"message\":\"\",\"host\":{\"name\":\"\"},\"process\":{\"name\":\"\"},"
     "\"log\":{\"syslog\":{\"hostname\":\"\",\"appname\":\"\",\"msgid\":\"\"},"
     "\"source\":{\"address\":\"\"}}}"},
    {"pri 0", s_pri_only,
     "{" TS ",\"log\":{\"syslog\":{\"priority\":0,\"facility\":{\"code\":0,\"name\":\"kern\"},"
     "\"severity\":{\"code\":0,\"name\":\"emerg\"}}}}"},
    {"pri 191", s_pri_max,
     "{" TS ",\"log\":{\"syslog\":{\"priority\":191,\"facility\":{\"code\":23,\"name\":\"local7\"},"
     "\"severity\":{\"code\":7,\"name\":\"debug\"}}}}"},
    {"pri 200", s_pri_out_of_range,
     "{" TS ",\"log\":{\"syslog\":{\"priority\":200,\"facility\":{\"code\":25},"
     "\"severity\":{\"code\":0,\"name\":\"emerg\"}}}}"},
    {"pid non-numeric", s_pid_nonnumeric, "{" TS ",\"log\":{\"syslog\":{\"procid\":\"12a\"}}}"},
    {"pid leading zeros", s_pid_leading_zero,
     "{" TS ",\"process\":{\"pid\":7},\"log\":{\"syslog\":{\"procid\":\"007\"}}}"},
    {"pid int64 max", s_pid_max,
     "{" TS ",\"process\":{\"pid\":9223372036854775807},"
     "\"log\":{\"syslog\":{\"procid\":\"9223372036854775807\"}}}"},
    {"pid too big", s_pid_too_big,
     "{" TS ",\"log\":{\"syslog\":{\"procid\":\"9223372036854775808\"}}}"},
    {"pid 20 digits", s_pid_20_digits,
     "{" TS ",\"log\":{\"syslog\":{\"procid\":\"10000000000000000000\"}}}"},
    {"source only", s_source_only, "{" TS ",\"log\":{\"source\":{\"address\":\"[2001:db8::1]:514\"}}}"},
    {"tags only", s_tags_only, "{" TS ",\"tags\":[\"x\",\"y\\\"z\"]}"},
    {"tag equal to a flag", s_tags_dup_flag, "{" TS ",\"tags\":[\"_parse_failure\",\"_truncated\"]}"},
    {"time guessed has no tag", s_time_guessed, "{" TS "}"},
    {"sd nilvalue", s_sd_nil, "{" TS "}"},
    {"version 0", s_version_zero, "{" TS ",\"log\":{\"syslog\":{\"msgid\":\"m\"}}}"},
    {"escaped fields", s_escape_fields,
     "{" TS ",\"message\":\"a\\\"b\\\\c\\n\\\\xFF\",\"host\":{\"name\":\"h\\u0001\"},"
     "\"log\":{\"syslog\":{\"hostname\":\"h\\u0001\"}}}"},
};

static void run_json_cases(const struct json_case *cases, size_t n)
{
    lsf_batch *b = lsf_batch_new(4);
    lsf_outbuf o;
    lsf_outbuf_init(&o);
    for (size_t i = 0; i < n; i++) {
        lsf_event *ev = bare_event(b);
        cases[i].setup(b, ev);
        print_message("case: %s\n", cases[i].name);
        json_t *j = write_one(ev, &o);
        assert_json_eq(j, cases[i].want);
        json_decref(j);
    }
    lsf_outbuf_deinit(&o);
    lsf_batch_free(b);
}

static void test_schema_table(void **state)
{
    (void)state;
    run_json_cases(schema_cases, sizeof(schema_cases) / sizeof(schema_cases[0]));
}

/* ---- structured data ---------------------------------------------------- */

struct sd_case {
    const char *sd;
    const char *want; /* log.syslog.structured_data; NULL: absent */
};

static const struct sd_case sd_cases[] = {
    {"[a x=\"1\"]", "{\"a\":{\"x\":\"1\"}}"},
    {"[a]", "{\"a\":{}}"},
    {"[a x=\"\"]", "{\"a\":{\"x\":\"\"}}"},
    {"[a x=\"1\" y=\"2\"][b.c@123 z=\"3\"]",
     "{\"a\":{\"x\":\"1\",\"y\":\"2\"},\"b.c@123\":{\"z\":\"3\"}}"},
    /* escapes: \" \\ \] unescaped, other backslashes literal */
    {"[a q=\"say \\\"hi\\\"\" b=\"c:\\\\dir\" r=\"[x\\]\" o=\"\\n\\q\"]",
     "{\"a\":{\"q\":\"say \\\"hi\\\"\",\"b\":\"c:\\\\dir\",\"r\":\"[x]\",\"o\":\"\\\\n\\\\q\"}}"},
    {"[a v=\"tail\\\\\"]", "{\"a\":{\"v\":\"tail\\\\\"}}"},
    /* repeated params become arrays, in order, at the first one's place */
    {"[a x=\"1\" y=\"2\" x=\"3\" x=\"4\"]", "{\"a\":{\"x\":[\"1\",\"3\",\"4\"],\"y\":\"2\"}}"},
    /* a repeated SD-ID is merged */
    {"[a x=\"1\"][b y=\"2\"][a x=\"3\" z=\"4\"]",
     "{\"a\":{\"x\":[\"1\",\"3\"],\"z\":\"4\"},\"b\":{\"y\":\"2\"}}"},
    /* values with UTF-8, invalid bytes and control characters */
    {"[a v=\"\xc3\xa9\xff\x01\"]", "{\"a\":{\"v\":\"\xc3\xa9\\\\xFF\\u0001\"}}"},
    {"[a v=\"x]y\"]", "{\"a\":{\"v\":\"x]y\"}}"},
    /* lenient: extra spaces */
    {"[a  x=\"1\" ] [b]", "{\"a\":{\"x\":\"1\"},\"b\":{}}"},
    /* malformed: complete elements before the error are kept */
    {"[a x=\"1\"][b y=\"2\"", "{\"a\":{\"x\":\"1\"}}"},
    {"[a x=\"1\"][b y=2]", "{\"a\":{\"x\":\"1\"}}"},
    {"[a x=\"1\"]garbage", "{\"a\":{\"x\":\"1\"}}"},
    {"[a x=\"1\"", "{}"},
    {"[a x=\"unterminated\\\"]", "{}"},
    {"[]", "{}"},
    {"[a =\"1\"]", "{}"},
    {"[a x\"1\"]", "{}"},
    {"[a x=\"1\"y=\"2\"]", "{}"},
    {"[a\"b x=\"1\"]", "{}"},
    {"x", "{}"},
    {"", "{}"},
    {"[", "{}"},
    {"[a x=", "{}"},
    {"[a x=\"", "{}"},
    {"[a x=\"\\", "{}"},
    {"-", NULL},
};

static void test_structured_data(void **state)
{
    (void)state;
    lsf_batch *b = lsf_batch_new(4);
    lsf_outbuf o;
    lsf_outbuf_init(&o);
    for (size_t i = 0; i < sizeof(sd_cases) / sizeof(sd_cases[0]); i++) {
        lsf_event *ev = bare_event(b);
        ev->sd = S(sd_cases[i].sd);
        print_message("sd: %s\n", sd_cases[i].sd);
        json_t *j = write_one(ev, &o);
        json_t *sd = json_object_get(json_object_get(json_object_get(j, "log"), "syslog"),
                                     "structured_data");
        if (!sd_cases[i].want) {
            assert_null(sd);
        } else {
            if (!sd)
                fail_msg("no structured_data in %.*s", (int)o.len, o.buf);
            assert_json_eq(sd, sd_cases[i].want);
        }
        json_decref(j);
    }
    lsf_outbuf_deinit(&o);
    lsf_batch_free(b);
}

/* Many elements and params: the limits cut cleanly, the output stays valid. */
static void test_structured_data_limits(void **state)
{
    (void)state;
    lsf_batch *b = lsf_batch_new(4);
    lsf_outbuf o;
    lsf_outbuf_init(&o);
    char *sd = malloc(64 * 1024);
    size_t n = 0;
    for (int e = 0; e < 100; e++)
        n += (size_t)sprintf(sd + n, "[e%d x=\"%d\"]", e, e);
    lsf_event *ev = bare_event(b);
    ev->sd = lsf_str_make(sd, n);
    json_t *j = write_one(ev, &o);
    json_t *s = json_object_get(json_object_get(json_object_get(j, "log"), "syslog"),
                                "structured_data");
    assert_true(json_object_size(s) > 0 && json_object_size(s) <= 100);
    assert_string_equal(json_string_value(json_object_get(json_object_get(s, "e0"), "x")), "0");
    json_decref(j);

    n = (size_t)sprintf(sd, "[a");
    for (int p = 0; p < 300; p++)
        n += (size_t)sprintf(sd + n, " p=\"%d\"", p);
    n += (size_t)sprintf(sd + n, "][b y=\"1\"]");
    ev = bare_event(b);
    ev->sd = lsf_str_make(sd, n);
    json_decref(write_one(ev, &o)); /* valid JSON is all we ask */
    free(sd);
    lsf_outbuf_deinit(&o);
    lsf_batch_free(b);
}

/* ---- dynamic fields ----------------------------------------------------- */

static void d_merge(lsf_batch *b, lsf_event *ev)
{
    ev->ingested_ns = 1772532001000000000;
    ev->host = S("web1");
    lsf_event_set_str(b, ev, S("event.category"), S("authentication"));
    lsf_event_set_str(b, ev, S("source.ip"), S("203.0.113.9"));
    lsf_event_set_int(b, ev, S("source.port"), 50514);
    lsf_event_set_str(b, ev, S("host.ip"), S("10.0.0.1"));
    lsf_event_set_str(b, ev, S("user.name"), S("root"));
    lsf_event_set_str(b, ev, S("source.geo.country_iso_code"), S("NL"));
}
static void d_types(lsf_batch *b, lsf_event *ev)
{
    lsf_event_set_int(b, ev, S("i.max"), INT64_MAX);
    lsf_event_set_int(b, ev, S("i.min"), INT64_MIN);
    lsf_event_set_int(b, ev, S("i.zero"), 0);
    lsf_event_set_float(b, ev, S("f.half"), 0.5);
    lsf_event_set_float(b, ev, S("f.tenth"), 0.1);
    lsf_event_set_float(b, ev, S("f.big"), 1e300);
    lsf_event_set_float(b, ev, S("f.neg"), -2.25);
    lsf_event_set_float(b, ev, S("f.nan"), NAN);
    lsf_event_set_float(b, ev, S("f.inf"), -INFINITY);
    lsf_event_set_bool(b, ev, S("b.t"), true);
    lsf_event_set_bool(b, ev, S("b.f"), false);
    set_null(b, ev, "n");
    set_json(b, ev, "j.arr", "[1,\"two\",{\"three\":3}]");
    set_json(b, ev, "j.multi", "{\n  \"a\": 1\r\n}");
    set_json(b, ev, "j.empty", "");
    lsf_event_set_str(b, ev, S("s.empty"), S(""));
    lsf_event_set_str(b, ev, S("s.absent"), LSF_STR_NULL);
}
static void d_fixed_wins(lsf_batch *b, lsf_event *ev)
{
    ev->message = S("fixed");
    ev->host = S("web1");
    ev->procid = S("42");
    ev->flags = LSF_EV_TRUNCATED;
    lsf_event_set_str(b, ev, S("message"), S("dynamic"));
    lsf_event_set_str(b, ev, S("host.name"), S("dynamic"));
    lsf_event_set_int(b, ev, S("process.pid"), 7);
    lsf_event_set_str(b, ev, S("tags"), S("dynamic"));
    lsf_event_set_str(b, ev, S("@timestamp"), S("dynamic"));
}
static void d_fills_absent(lsf_batch *b, lsf_event *ev)
{
    ev->procid = S("abc");
    lsf_event_set_int(b, ev, S("process.pid"), 7);
    lsf_event_set_str(b, ev, S("message"), S("from a field"));
}
static void d_leaf_then_deeper(lsf_batch *b, lsf_event *ev)
{
    lsf_event_set_int(b, ev, S("a"), 1);
    lsf_event_set_int(b, ev, S("a.b"), 2);
    lsf_event_set_int(b, ev, S("a.c.d"), 3);
}
static void d_deeper_then_leaf(lsf_batch *b, lsf_event *ev)
{
    lsf_event_set_int(b, ev, S("a.b"), 2);
    lsf_event_set_int(b, ev, S("a.c.d"), 3);
    lsf_event_set_int(b, ev, S("x"), 0);
    lsf_event_set_int(b, ev, S("a"), 1);
}
static void d_conflict_nested(lsf_batch *b, lsf_event *ev)
{
    lsf_event_set_int(b, ev, S("x.y.a.b"), 2);
    lsf_event_set_int(b, ev, S("x.y.a"), 1);
    lsf_event_set_int(b, ev, S("x.y.c"), 3);
    lsf_event_set_int(b, ev, S("x.y.a.b.c"), 4);
}
static void d_leaf_on_fixed_object(lsf_batch *b, lsf_event *ev)
{
    ev->host = S("web1");
    lsf_event_set_str(b, ev, S("host"), S("legacy"));
}
static void d_below_fixed_leaf(lsf_batch *b, lsf_event *ev)
{
    ev->message = S("m");
    ev->sd = S("[a x=\"1\"]");
    lsf_event_set_int(b, ev, S("message.length"), 1);
    lsf_event_set_str(b, ev, S("log.syslog.structured_data.extra"), S("e"));
    lsf_event_set_str(b, ev, S("log.syslog.structured_data"), S("ignored"));
}
static void d_odd_names(lsf_batch *b, lsf_event *ev)
{
    lsf_event_set_int(b, ev, S(""), 1);
    lsf_event_set_int(b, ev, S("a..b"), 2);
    lsf_event_set_int(b, ev, S(".lead"), 3);
    lsf_event_set_int(b, ev, S("trail."), 4);
    lsf_event_set_int(b, ev, S("q\"uote.k\\ey"), 5);
    lsf_event_set_int(b, ev, S("bad\xff.k"), 6);
}
static void d_deep(lsf_batch *b, lsf_event *ev)
{
    lsf_event_set_int(b, ev, S("a.b.c.d.e.f.g.h.i.j.k.l.m.n.o.p.q.r"), 1);
    lsf_event_set_int(b, ev, S("a.b.c.d.e.f.g.h.i.j.k.l.m.n.o.p"), 2);
}

static const struct json_case dyn_cases[] = {
    {"merge into fixed objects", d_merge,
     "{" TS ",\"event\":{\"ingested\":\"2026-03-03T10:00:01.000000Z\",\"category\":\"authentication\"},"
     "\"host\":{\"name\":\"web1\",\"ip\":\"10.0.0.1\"},"
     "\"log\":{\"syslog\":{\"hostname\":\"web1\"}},"
     "\"source\":{\"ip\":\"203.0.113.9\",\"port\":50514,\"geo\":{\"country_iso_code\":\"NL\"}},"
     "\"user\":{\"name\":\"root\"}}"},
    {"value types", d_types,
     "{" TS ",\"i\":{\"max\":9223372036854775807,\"min\":-9223372036854775808,\"zero\":0},"
     "\"f\":{\"half\":0.5,\"tenth\":0.1,\"big\":1e300,\"neg\":-2.25,\"nan\":null,\"inf\":null},"
     "\"b\":{\"t\":true,\"f\":false},\"n\":null,"
     "\"j\":{\"arr\":[1,\"two\",{\"three\":3}],\"multi\":{\"a\":1},\"empty\":null},"
     "\"s\":{\"empty\":\"\"}}"},
    {"fixed field wins", d_fixed_wins,
     "{" TS ",\"message\":\"fixed\",\"host\":{\"name\":\"web1\"},\"process\":{\"pid\":42},"
     "\"log\":{\"syslog\":{\"hostname\":\"web1\",\"procid\":\"42\"}},\"tags\":[\"_truncated\"]}"},
    {"dynamic fills an absent fixed slot", d_fills_absent,
     "{" TS ",\"log\":{\"syslog\":{\"procid\":\"abc\"}},\"process\":{\"pid\":7},"
     "\"message\":\"from a field\"}"},
    {"leaf then deeper", d_leaf_then_deeper, "{" TS ",\"a\":1,\"a.b\":2,\"a.c.d\":3}"},
    {"deeper then leaf", d_deeper_then_leaf, "{" TS ",\"a\":1,\"a.b\":2,\"a.c.d\":3,\"x\":0}"},
    {"conflict below objects", d_conflict_nested,
     "{" TS ",\"x\":{\"y\":{\"a\":1,\"a.b\":2,\"a.b.c\":4,\"c\":3}}}"},
    {"leaf on a fixed object", d_leaf_on_fixed_object,
     "{" TS ",\"host\":\"legacy\",\"host.name\":\"web1\",\"log\":{\"syslog\":{\"hostname\":\"web1\"}}}"},
    {"below a fixed leaf", d_below_fixed_leaf,
     "{" TS ",\"message\":\"m\",\"message.length\":1,\"log\":{\"syslog\":{"
     "\"structured_data\":{\"a\":{\"x\":\"1\"}},\"structured_data.extra\":\"e\"}}}"},
    {"odd names", d_odd_names,
     "{" TS ",\"\":1,\".lead\":3,\"a\":{\"\":{\"b\":2}},\"trail\":{\"\":4},"
     "\"q\\\"uote\":{\"k\\\\ey\":5},\"bad\\\\xFF\":{\"k\":6}}"},
    {"deep names", d_deep,
     "{" TS ",\"a\":{\"b\":{\"c\":{\"d\":{\"e\":{\"f\":{\"g\":{\"h\":{\"i\":{\"j\":{\"k\":{\"l\":"
     "{\"m\":{\"n\":{\"o\":{\"p.q.r\":1,\"p\":2}}}}}}}}}}}}}}}}"},
};

static void test_dynamic_fields(void **state)
{
    (void)state;
    run_json_cases(dyn_cases, sizeof(dyn_cases) / sizeof(dyn_cases[0]));
}

/* Rule 2 with several levels below the leaf: the exact text, order included. */
static void test_conflict_exact_text(void **state)
{
    (void)state;
    lsf_batch *b = lsf_batch_new(4);
    lsf_outbuf o;
    lsf_outbuf_init(&o);
    lsf_event *ev = bare_event(b);
    lsf_event_set_int(b, ev, S("a"), 1);
    lsf_event_set_int(b, ev, S("a.b"), 2);
    lsf_event_set_int(b, ev, S("a.b.c"), 3);
    lsf_event_set_int(b, ev, S("a.d"), 4);
    json_decref(write_one(ev, &o));
    const char *want = "{" TS ",\"a\":1,\"a.b\":2,\"a.b.c\":3,\"a.d\":4}\n";
    if (o.len != strlen(want) || memcmp(o.buf, want, o.len))
        fail_msg("got  %.*s\nwant %s", (int)o.len, o.buf, want);
    lsf_outbuf_deinit(&o);
    lsf_batch_free(b);
}

/* Many fields (past the on-stack node array) and random dotted names: always
 * valid JSON without duplicate keys, and every value is found where the rules
 * say. */
static void test_random_names_valid(void **state)
{
    (void)state;
    static const char *const parts[] = {"a", "b", "c", "", "host", "name", "log", "syslog",
                                        "event", "tags", "message", "x\"y"};
    lsf_batch *b = lsf_batch_new(4);
    lsf_outbuf o;
    lsf_outbuf_init(&o);
    srand(777);
    char *names = malloc(1 << 20);
    for (int round = 0; round < 3000; round++) {
        lsf_event *ev = bare_event(b);
        ev->host = S("h");
        ev->message = S("m");
        ev->pri = 13;
        ev->sd = S("[a x=\"1\"]");
        size_t used = 0;
        int nf = rand() % (round % 10 == 0 ? 400 : 12);
        for (int f = 0; f < nf; f++) {
            char *nm = names + used;
            int depth = 1 + rand() % 4;
            size_t len = 0;
            for (int d = 0; d < depth; d++)
                len += (size_t)sprintf(nm + len, "%s%s", d ? "." : "",
                                       parts[rand() % (sizeof(parts) / sizeof(parts[0]))]);
            used += len;
            switch (rand() % 3) {
            case 0: lsf_event_set_int(b, ev, lsf_str_make(nm, len), f); break;
            case 1: lsf_event_set_str(b, ev, lsf_str_make(nm, len), S("v")); break;
            default: set_json(b, ev, "j", "{\"k\":[1,2]}"); break;
            }
        }
        lsf_outbuf_reset(&o);
        lsf_json_write_event(&o, ev);
        json_decref(parse_line(o.buf, o.len));
    }
    free(names);
    lsf_outbuf_deinit(&o);
    lsf_batch_free(b);
}

/* ---- exact text of nested dynamic fields -------------------------------- */

/* Names that share prefixes with the one before (the writer reuses the
 * nodes of the components they share), go back to an earlier prefix, turn
 * an object into a leaf, or collide with fixed fields. */
static void x_shared_prefixes(lsf_batch *b, lsf_event *ev)
{
    ev->ingested_ns = 1772532001123456789;
    ev->host = S("web1");
    ev->message = S("m");
    lsf_event_set_str(b, ev, S("source.ip"), S("203.0.113.9"));
    lsf_event_set_int(b, ev, S("source.port"), 50514);
    lsf_event_set_str(b, ev, S("source.geo.country_iso_code"), S("NL"));
    lsf_event_set_str(b, ev, S("source.geo.city_name"), S("Amsterdam"));
    set_json(b, ev, "source.geo.location", "{\"lat\":52.37,\"lon\":4.89}");
    lsf_event_set_int(b, ev, S("source.as.number"), 1136);
    lsf_event_set_str(b, ev, S("source.as.organization.name"), S("KPN"));
    lsf_event_set_str(b, ev, S("destination.ip"), S("198.51.100.7"));
    lsf_event_set_str(b, ev, S("destination.geo.country_iso_code"), S("US"));
    lsf_event_set_str(b, ev, S("source.geo.timezone"), S("Europe/Amsterdam"));
    lsf_event_set_str(b, ev, S("source.geo"), S("flat"));
    lsf_event_set_str(b, ev, S("event.category"), S("authentication"));
    lsf_event_set_str(b, ev, S("event.ingested"), S("dynamic"));
    lsf_event_set_str(b, ev, S("log.level"), S("info"));
    lsf_event_set_str(b, ev, S("host.name"), S("dynamic"));
    lsf_event_set_str(b, ev, S("host.ip"), S("10.0.0.1"));
    lsf_event_set_str(b, ev, S("sourc.ip"), S("x"));
    lsf_event_set_str(b, ev, S("sourcex.ip"), S("y"));
    /* then field k + 1 of this list gets the value k + 1 */
    static const char *const more[] = {"a.bc", "a.b", "ab.c", "a.b.c", "a.b.d.e",
                                       "x..y", "x..z", "x.", "x"};
    for (size_t k = 0; k < sizeof(more) / sizeof(more[0]); k++)
        lsf_event_set_int(b, ev, S(more[k]), (int64_t)k + 1);
}

/* Names deeper than the 16 levels a name is split into, sharing prefixes
 * that end just before, at and after that limit. */
static void x_deep(lsf_batch *b, lsf_event *ev)
{
    static const char *const names[] = {
        "l1.l2.l3.l4.l5.l6.l7.l8.l9.l10.l11.l12.l13.l14.l15.l16.l17.l18",
        "l1.l2.l3.l4.l5.l6.l7.l8.l9.l10.l11.l12.l13.l14.l15.l16.l17.l19",
        "l1.l2.l3.l4.l5.l6.l7.l8.l9.l10.l11.l12.l13.l14.l15.l16",
        "l1.l2.l3.l4.l5.l6.l7.l8.l9.l10.l11.l12.l13.l14.l15.x.y",
        "l1.l2.l3.l4.l5.l6.l7.l8.l9.l10.l11.l12.l13.l14.l15",
        "l1.l2.l3.l4.l5.l6.l7.l8.l9.l10.l11.l12.l13.l14.z",
        "l1.m",
    };
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
        lsf_event_set_int(b, ev, S(names[i]), (int64_t)i);
}

/* Control characters, quotes, UTF-8 (valid and not) in names and values,
 * around the 4-, 8- and 16-byte steps of the string scanner. */
static void x_unicode_control(lsf_batch *b, lsf_event *ev)
{
    lsf_event_set_str(b, ev, S("us\xc3\xa9r.na\xc3\xafve"), S("\xc3\xa9t\xc3\xa9 \xe2\x82\xac"));
    lsf_event_set_str(b, ev, S("us\xc3\xa9r.ctl\x01"), S("v\x02w\x1f"));
    lsf_event_set_str(b, ev, S("q\"k.x\\y"), S("\"\\\""));
    lsf_event_set_str(b, ev, S("bad\xff.k"), S("\xff\xfe\xc3"));
    lsf_event_set_str(b, ev, S("tab\tkey.sixteen_bytes_ke"), S("0123456789abcde\n"));
    lsf_event_set_str(b, ev, S("tab\tkey.seventeen_bytes_\""), S("0123456789abcdef\t"));
    lsf_event_set_str(b, ev, S("tab\tkey.k7\x7f"), S("\xf0\x9f\x98\x80\xf0\x9f\x98"));
    lsf_event_set_str(b, ev, S("emoji.\xf0\x9f\x98\x80"), S("\xed\xa0\x80 surrogate"));
}

static const struct {
    const char *name;
    setup_fn setup;
    const char *want; /* the exact line, key order included */
} exact_cases[] = {
    {"shared prefixes", x_shared_prefixes,
     "{\"@timestamp\":\"2026-03-03T10:00:01.000000Z\",\"event\":{\"ingested\":\"2026-03-03T1"
     "0:00:01.123456Z\",\"category\":\"authentication\"},\"message\":\"m\",\"host\":{\"name"
     "\":\"web1\",\"ip\":\"10.0.0.1\"},\"log\":{\"syslog\":{\"hostname\":\"web1\"},\"level\""
     ":\"info\"},\"source\":{\"ip\":\"203.0.113.9\",\"port\":50514,\"geo\":\"flat\",\"geo.co"
     "untry_iso_code\":\"NL\",\"geo.city_name\":\"Amsterdam\",\"geo.location\":{\"lat\":52.3"
     "7,\"lon\":4.89},\"geo.timezone\":\"Europe/Amsterdam\",\"as\":{\"number\":1136,\"organi"
     "zation\":{\"name\":\"KPN\"}}},\"destination\":{\"ip\":\"198.51.100.7\",\"geo\":{\"coun"
     "try_iso_code\":\"US\"}},\"sourc\":{\"ip\":\"x\"},\"sourcex\":{\"ip\":\"y\"},\"a\":{\"b"
     "c\":1,\"b\":2,\"b.c\":4,\"b.d.e\":5},\"ab\":{\"c\":3},\"x\":9,\"x.\":8,\"x..y\":6,\"x."
     ".z\":7}\n"},
    {"deep names", x_deep,
     "{\"@timestamp\":\"2026-03-03T10:00:01.000000Z\",\"l1\":{\"l2\":{\"l3\":{\"l4\":{\"l5\""
     ":{\"l6\":{\"l7\":{\"l8\":{\"l9\":{\"l10\":{\"l11\":{\"l12\":{\"l13\":{\"l14\":{\"l15\""
     ":4,\"l15.l16.l17.l18\":0,\"l15.l16.l17.l19\":1,\"l15.l16\":2,\"l15.x.y\":3,\"z\":5}}}}"
     "}}}}}}}}},\"m\":6}}\n"},
    {"unicode and control characters", x_unicode_control,
     "{\"@timestamp\":\"2026-03-03T10:00:01.000000Z\",\"us\xc3""\xa9""r\":{\"na\xc3""\xaf""v"
     "e\":\"\xc3""\xa9""t\xc3""\xa9"" \xe2""\x82""\xac""\",\"ctl\\u0001\":\"v\\u0002w\\u001f"
     "\"},\"q\\\"k\":{\"x\\\\y\":\"\\\"\\\\\\\"\"},\"bad\\\\xFF\":{\"k\":\"\\\\xFF\\\\xFE\\"
     "\\xC3\"},\"tab\\tkey\":{\"sixteen_bytes_ke\":\"0123456789abcde\\n\",\"seventeen_bytes_"
     "\\\"\":\"0123456789abcdef\\t\",\"k7\x7f""\":\"\xf0""\x9f""\x98""\x80""\\\\xF0\\\\x9F\\"
     "\\x98\"},\"emoji\":{\"\xf0""\x9f""\x98""\x80""\":\"\\\\xED\\\\xA0\\\\x80 surrogate\"}}"
     "\n"},
};

static void test_nesting_exact(void **state)
{
    (void)state;
    lsf_batch *b = lsf_batch_new(4);
    lsf_outbuf o;
    lsf_outbuf_init(&o);
    for (size_t i = 0; i < sizeof(exact_cases) / sizeof(exact_cases[0]); i++) {
        lsf_event *ev = bare_event(b);
        exact_cases[i].setup(b, ev);
        json_decref(write_one(ev, &o)); /* valid, no duplicate keys */
        const char *want = exact_cases[i].want;
        if (o.len != strlen(want) || memcmp(o.buf, want, o.len))
            fail_msg("%s:\n  got  %.*s\n  want %s", exact_cases[i].name, (int)o.len, o.buf, want);
    }
    lsf_outbuf_deinit(&o);
    lsf_batch_free(b);
}

/* More top-level names than the root's lookup array holds (64): names
 * after that are still found (a leaf below one of the first and of the last
 * names is written flat beside it, never as a second key). */
static void test_many_top_level_names(void **state)
{
    (void)state;
    lsf_batch *b = lsf_batch_new(4);
    lsf_outbuf o;
    lsf_outbuf_init(&o);
    char names[100][16];
    lsf_event *ev = bare_event(b);
    ev->host = S("web1");
    for (int i = 0; i < 100; i++) {
        snprintf(names[i], sizeof(names[i]), "k%d", i);
        lsf_event_set_int(b, ev, S(names[i]), i);
    }
    lsf_event_set_int(b, ev, S("k3.x"), 1003);
    lsf_event_set_int(b, ev, S("k90.x"), 1090);
    lsf_event_set_str(b, ev, S("host.ip"), S("10.0.0.1"));
    json_t *j = write_one(ev, &o); /* rejects duplicate keys */
    assert_int_equal(json_object_size(j), 3 + 100 + 2); /* @timestamp, host, log, k*, k3.x, k90.x */
    assert_int_equal(json_integer_value(json_object_get(j, "k90")), 90);
    assert_int_equal(json_integer_value(json_object_get(j, "k90.x")), 1090);
    assert_int_equal(json_integer_value(json_object_get(j, "k3.x")), 1003);
    assert_string_equal(json_string_value(json_object_get(json_object_get(j, "host"), "ip")),
                        "10.0.0.1");
    json_decref(j);
    lsf_outbuf_deinit(&o);
    lsf_batch_free(b);
}

/* Every length up to 70 with a byte that needs care at every position, in a
 * buffer of exactly that size (so ASan sees any read past it), as a value
 * and as a key: the same text as the reference escaper. */
static void test_escape_every_position(void **state)
{
    (void)state;
    static const char *const specials[] = {"\"", "\\", "\n", "\x01", "\x7f", "\xc3\xa9",
                                           "\xe2\x82\xac", "\xf0\x9f\x98\x80", "\xff", "\xc3"};
    lsf_batch *b = lsf_batch_new(4);
    lsf_outbuf o;
    lsf_outbuf_init(&o);
    char want[80 * 6 + 8];
    for (size_t n = 0; n <= 70; n++) {
        for (size_t sp = 0; sp < sizeof(specials) / sizeof(specials[0]); sp++) {
            size_t sl = strlen(specials[sp]);
            for (size_t pos = 0; pos + sl <= n || (n == 0 && pos == 0); pos++) {
                unsigned char *in = malloc(n ? n : 1);
                for (size_t i = 0; i < n; i++)
                    in[i] = (unsigned char)('a' + (i % 26));
                if (n)
                    memcpy(in + pos, specials[sp], sl);
                size_t wn = ref_escape(in, n, want);
                lsf_outbuf_reset(&o);
                lsf_json_write_string(&o, (const char *)in, n);
                if (o.len != wn || memcmp(o.buf, want, wn))
                    fail_msg("value n=%zu pos=%zu special %zu:\n  got  %.*s\n  want %.*s", n, pos,
                             sp, (int)o.len, o.buf, (int)wn, want);
                /* as a key: {"@timestamp":...,"<key>":1} */
                lsf_event *ev = bare_event(b);
                lsf_event_set_int(b, ev, lsf_str_make((const char *)in, n), 1);
                lsf_outbuf_reset(&o);
                lsf_json_write_event(&o, ev);
                if (memchr(in, '.', n) == NULL &&
                    (o.len != sizeof("{" TS ",:1}\n") - 1 + wn ||
                     memcmp(o.buf + sizeof("{" TS ",") - 1, want, wn)))
                    fail_msg("key n=%zu pos=%zu special %zu: %.*s", n, pos, sp, (int)o.len, o.buf);
                free(in);
                if (n == 0)
                    break;
            }
        }
    }
    lsf_outbuf_deinit(&o);
    lsf_batch_free(b);
}

/* ---- timestamps --------------------------------------------------------- */

struct ts_case {
    int64_t ns;
    const char *want;
};

static const struct ts_case ts_cases[] = {
    {0, "1970-01-01T00:00:00.000000Z"},
    {1, "1970-01-01T00:00:00.000000Z"},
    {999, "1970-01-01T00:00:00.000000Z"},
    {1000, "1970-01-01T00:00:00.000001Z"},
    {1772532001000000000, "2026-03-03T10:00:01.000000Z"},
    {951868799000000000, "2000-02-29T23:59:59.000000Z"},   /* leap day of a /400 year */
    {951868800000000000, "2000-03-01T00:00:00.000000Z"},
    {1709208000000000000, "2024-02-29T12:00:00.000000Z"},
    {4107542400000000000, "2100-03-01T00:00:00.000000Z"},  /* 2100 is not leap */
    {4107456000000000000, "2100-02-28T00:00:00.000000Z"},
    {2147483647000000000, "2038-01-19T03:14:07.000000Z"},
    {2147483648000000000, "2038-01-19T03:14:08.000000Z"},
    {INT64_MAX, "2262-04-11T23:47:16.854775Z"},
    {-1, "1969-12-31T23:59:59.999999Z"},
    {-1000, "1969-12-31T23:59:59.999999Z"},
    {-1000000000, "1969-12-31T23:59:59.000000Z"},
    {-2203891200000000000, "1900-03-01T00:00:00.000000Z"},
    {INT64_MIN, "1677-09-21T00:12:43.145224Z"},
};

static uint32_t rnd_below(uint64_t *r, uint32_t n)
{
    *r = *r * 6364136223846793005ULL + 1442695040888963407ULL;
    return (uint32_t)(*r >> 33) % n;
}

/* The direct path (fixed fields written without nodes) against the tree on
 * random events: every combination of fixed fields present or absent, odd
 * values, and dynamic fields, some of which share a fixed top-level name
 * (those events take the tree either way). The bytes must be equal. */
static void test_direct_matches_tree(void **state)
{
    (void)state;
    static const char *const dyn[] = {
        /* clear of the fixed fields, or adding members to their objects */
        "user.name", "source.ip", "http.request.method", "a", "a.b", "a.b.c", "x.y",
        "duration_ms", "event.action", "host.ip", "log.level", "log.level.x", "process.args",
        "event.kind", "hostname", "logs", "events.x",
        /* colliding: the tree either way */
        "process.pid", "tags", "message", "@timestamp", "log.syslog.x", "host.name", "event",
        "log.source", "event.ingested.x"};
    static const char *const strs[] = {"", "web1", "sshd", "a\"b\\c", "\xc3\xa9" "t\xc3\xa9",
                                       "\x01" "bad\xff", "0123456789abcdef0123"};
    static const char *const procids[] = {"42", "0", "abc", "", "12345678901234567890",
                                          "9223372036854775807", "-1"};
    static const char *const sds[] = {"-", "[a@1 x=\"1\"]", "[a@1 x=\"1\" x=\"2\"][b y=\"\\]\"]",
                                      "[bad", ""};
    lsf_batch *b = lsf_batch_new(4);
    lsf_outbuf direct, tree;
    lsf_outbuf_init(&direct);
    lsf_outbuf_init(&tree);
    uint64_t r = 0x2545F4914F6CDD1DULL;
#define RND(n) rnd_below(&r, (n))
    for (int iter = 0; iter < 20000; iter++) {
        lsf_event *ev = bare_event(b);
        ev->time_ns = RND(4) ? 1772532001000000000 + (int64_t)RND(1000000000) : 0;
        ev->ingested_ns = RND(3) ? 1772532002000000000 + (int64_t)RND(1000000) : 0;
        if (RND(2)) ev->message = S(strs[RND(7)]);
        if (RND(2)) ev->host = S(strs[RND(7)]);
        if (RND(2)) ev->app = S(strs[RND(7)]);
        if (RND(2)) ev->procid = S(procids[RND(7)]);
        if (RND(3) == 0) ev->msgid = S(strs[RND(7)]);
        if (RND(3) == 0) ev->sd = S(sds[RND(5)]);
        if (RND(3) == 0) ev->source_addr = S("192.0.2.1:514");
        ev->pri = RND(2) ? (int16_t)RND(192) : -1;
        ev->version = (uint16_t)RND(3);
        ev->flags = RND(4) == 0 ? (RND(2) ? LSF_EV_PARSE_FAILURE : LSF_EV_TRUNCATED) : 0;
        for (uint32_t k = RND(3); k; k--)
            lsf_event_add_tag(b, ev, S(k == 1 ? "_truncated" : "auth"));
        for (uint32_t k = RND(6); k; k--) {
            lsf_str name = S(dyn[RND(RND(4) ? 17 : 26)]); /* mostly the direct path's */
            switch (RND(4)) {
            case 0: lsf_event_set_str(b, ev, name, S(strs[RND(7)])); break;
            case 1: lsf_event_set_int(b, ev, name, (int64_t)RND(100000) - 50); break;
            case 2: lsf_event_set_float(b, ev, name, RND(1000) / 8.0); break;
            default: lsf_event_set_bool(b, ev, name, RND(2)); break;
            }
        }
        lsf_outbuf_reset(&direct);
        lsf_outbuf_reset(&tree);
        lsf_json_write_event(&direct, ev);
        lsf_json_write_event_tree(&tree, ev);
        if (direct.len != tree.len || memcmp(direct.buf, tree.buf, direct.len) != 0)
            fail_msg("direct and tree differ (event %d)\n  direct: %.*s  tree:   %.*s", iter,
                     (int)direct.len, direct.buf, (int)tree.len, tree.buf);
        json_decref(parse_line(direct.buf, direct.len));
    }
#undef RND
    lsf_outbuf_deinit(&direct);
    lsf_outbuf_deinit(&tree);
    lsf_batch_free(b);
}

static void test_timestamps(void **state)
{
    (void)state;
    char buf[64];
    for (size_t i = 0; i < sizeof(ts_cases) / sizeof(ts_cases[0]); i++) {
        size_t n = lsf_format_rfc3339_utc(ts_cases[i].ns, buf);
        if (n != strlen(ts_cases[i].want) || strcmp(buf, ts_cases[i].want))
            fail_msg("%lld: got %s want %s", (long long)ts_cases[i].ns, buf, ts_cases[i].want);
    }
}

/* Random instants over the whole int64 range against gmtime_r. */
static void test_timestamps_vs_gmtime(void **state)
{
    (void)state;
    char got[64], want[64];
    uint64_t x = 88172645463325252ull;
    for (int i = 0; i < 1000000; i++) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        int64_t ns = (int64_t)x;
        if (i % 2) /* half of them near now */
            ns = 1700000000000000000 + (int64_t)(x % 4000000000000000000ull);
        int64_t sec = ns / 1000000000, sub = ns % 1000000000;
        if (sub < 0) {
            sub += 1000000000;
            sec--;
        }
        time_t t = (time_t)sec;
        struct tm tm;
        assert_non_null(gmtime_r(&t, &tm));
        size_t k = strftime(want, sizeof(want), "%Y-%m-%dT%H:%M:%S", &tm);
        snprintf(want + k, sizeof(want) - k, ".%06dZ", (int)(sub / 1000));
        lsf_format_rfc3339_utc(ns, got);
        if (strcmp(got, want))
            fail_msg("%lld: got %s want %s", (long long)ns, got, want);
    }
}

/* ---- batches ------------------------------------------------------------ */

static void test_batch_offsets(void **state)
{
    (void)state;
    lsf_batch *b = lsf_batch_new(300);
    lsf_outbuf o;
    lsf_outbuf_init(&o);
    for (int round = 0; round < 2; round++) { /* the second round reuses the buffers */
        lsf_batch_reset(b);
        for (int i = 0; i < 300; i++) {
            char rec[64];
            int n = snprintf(rec, sizeof(rec), "event %d", i);
            lsf_event *ev = lsf_batch_push_record(b, rec, (size_t)n, 1000000000ll * i);
            if (i % 3 == 1)
                ev->flags |= LSF_EV_DROPPED;
        }
        lsf_json_write_batch(&o, b);
        assert_int_equal(o.nlines, 200);
        assert_int_equal(o.line_off[0], 0);
        assert_int_equal(o.line_off[o.nlines], o.len);
        int i = 0;
        for (uint32_t l = 0; l < o.nlines; l++, i++) {
            if (i % 3 == 1)
                i++;
            assert_true(o.line_off[l] < o.line_off[l + 1]);
            json_t *j = parse_line(o.buf + o.line_off[l], o.line_off[l + 1] - o.line_off[l]);
            char want[64];
            snprintf(want, sizeof(want), "event %d", i);
            assert_string_equal(json_string_value(json_object_get(j, "message")), want);
            json_decref(j);
        }
    }
    /* all dropped, and an empty batch */
    for (uint32_t i = 0; i < b->n; i++)
        b->events[i].flags |= LSF_EV_DROPPED;
    lsf_json_write_batch(&o, b);
    assert_int_equal(o.nlines, 0);
    assert_int_equal(o.len, 0);
    assert_int_equal(o.line_off[0], 0);
    lsf_batch_reset(b);
    lsf_json_write_batch(&o, b);
    assert_int_equal(o.nlines, 0);
    lsf_outbuf_deinit(&o);
    lsf_batch_free(b);
}

/* A 1 MiB message of the worst bytes grows the buffer and stays valid. */
static void test_large_message(void **state)
{
    (void)state;
    size_t n = 1 << 20;
    char *msg = malloc(n);
    for (size_t i = 0; i < n; i++)
        msg[i] = (char)(i % 3 == 0 ? 0x01 : i % 3 == 1 ? 0xff : '"');
    lsf_batch *b = lsf_batch_new(4);
    lsf_outbuf o;
    lsf_outbuf_init(&o);
    lsf_event *ev = bare_event(b);
    ev->message = lsf_str_make(msg, n);
    json_t *j = write_one(ev, &o);
    const char *m = json_string_value(json_object_get(j, "message"));
    assert_non_null(m);
    assert_int_equal(strlen(m), n / 3 * (1 + 4 + 1) + 1); /* \x01, the text \xFF, " */
    json_decref(j);
    lsf_outbuf_append(&o, "abc", 3);
    assert_memory_equal(o.buf + o.len - 3, "abc", 3);
    free(msg);
    lsf_outbuf_deinit(&o);
    lsf_batch_free(b);
}

/* ---- speed (LSF_BENCH=1) ------------------------------------------------ */

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts); /* per core, whatever else runs */
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static void bench_one(const char *label, lsf_batch *b)
{
    lsf_outbuf o;
    lsf_outbuf_init(&o);
    lsf_json_write_batch(&o, b); /* warm up */
    size_t per = o.len / b->n;
    int rounds = 0;
    double t0 = now_s(), t;
    do {
        for (int k = 0; k < 100; k++)
            lsf_json_write_batch(&o, b);
        rounds += 100;
        t = now_s() - t0;
    } while (t < 2.0);
    double evs = (double)rounds * b->n / t;
    printf("bench %-40s %.2f M events/s, %zu bytes/line, %.0f MB/s\n", label, evs / 1e6, per,
           evs * (double)per / 1e6);
    lsf_outbuf_deinit(&o);
}

static void test_bench(void **state)
{
    (void)state;
    if (!getenv("LSF_BENCH"))
        skip();
    static const char msg[] = "Failed password for invalid user admin from 203.0.113.9 "
                              "port 50514 ssh2";
    static const char raw[] = "<38>Mar  3 10:00:01 web1 sshd[4242]: Failed password for invalid "
                              "user admin from 203.0.113.9 port 50514 ssh2 and some more words "
                              "to make it about two hundred bytes long, as a syslog line is";
    lsf_batch *b = lsf_batch_new(256);
    for (int i = 0; i < 256; i++) {
        lsf_event *ev = lsf_batch_push_record(b, raw, sizeof(raw) - 1, 1772532001123456789 + i * 1000);
        ev->time_ns = 1772532001000000000 + (int64_t)i * 1000000;
        ev->message = lsf_str_make(raw + 37, sizeof(raw) - 1 - 37);
        ev->host = S("web1");
        ev->app = S("sshd");
        ev->procid = S("4242");
        ev->pri = 38;
        ev->source_addr = S("192.0.2.1:514");
    }
    bench_one("rfc3164 line, fixed fields only", b);
    for (uint32_t i = 0; i < b->n; i++) {
        lsf_event *ev = &b->events[i];
        ev->message = S(msg);
        lsf_event_set_str(b, ev, S("event.category"), S("authentication"));
        lsf_event_set_str(b, ev, S("event.outcome"), S("failure"));
        lsf_event_set_str(b, ev, S("rule.id"), S("sshd.auth.failed"));
        lsf_event_set_str(b, ev, S("user.name"), S("admin"));
        lsf_event_set_str(b, ev, S("source.ip"), S("203.0.113.9"));
        lsf_event_set_int(b, ev, S("source.port"), 50514);
        lsf_event_add_tag(b, ev, S("authentication"));
    }
    bench_one("classified, 6 dynamic fields + tag", b);
    for (uint32_t i = 0; i < b->n; i++) {
        lsf_event *ev = &b->events[i];
        ev->version = 1;
        ev->msgid = S("ID47");
        ev->sd = S("[exampleSDID@32473 iut=\"3\" eventSource=\"Application\" eventID=\"1011\"]");
    }
    bench_one("plus RFC 5424 msgid and structured data", b);
    lsf_batch_free(b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_escape_table),
        cmocka_unit_test(test_escape_every_control),
        cmocka_unit_test(test_escape_random_vs_reference),
        cmocka_unit_test(test_schema_full_exact),
        cmocka_unit_test(test_schema_table),
        cmocka_unit_test(test_structured_data),
        cmocka_unit_test(test_structured_data_limits),
        cmocka_unit_test(test_dynamic_fields),
        cmocka_unit_test(test_conflict_exact_text),
        cmocka_unit_test(test_random_names_valid),
        cmocka_unit_test(test_nesting_exact),
        cmocka_unit_test(test_many_top_level_names),
        cmocka_unit_test(test_escape_every_position),
        cmocka_unit_test(test_direct_matches_tree),
        cmocka_unit_test(test_timestamps),
        cmocka_unit_test(test_timestamps_vs_gmtime),
        cmocka_unit_test(test_batch_offsets),
        cmocka_unit_test(test_large_message),
        cmocka_unit_test(test_bench),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
