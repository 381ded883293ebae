/* test_multiline.c - the multiline joiner (ingest/multiline.c): start and
 * indent modes on Java and Python traces, max_lines, max_bytes truncation,
 * the flush timeout, tags, and config errors with positions. Cases the
 * fuzzer found are at the end.
 * Threads: single-threaded.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "core/config.h"
#include "ingest/multiline.h"

typedef struct got {
    char ev[16][512];
    size_t len[16];
    int trunc[16];
    uint64_t tag[16];
    int n;
} got;

static void on_event(void *arg, const char *rec, size_t len, int truncated, uint64_t tag)
{
    got *g = arg;
    assert_true(g->n < 16);
    assert_true(len < sizeof(g->ev[0]));
    memcpy(g->ev[g->n], rec, len);
    g->ev[g->n][len] = 0;
    g->len[g->n] = len;
    g->trunc[g->n] = truncated;
    g->tag[g->n] = tag;
    g->n++;
}

static int bind(lsf_ml_conf *c, const char *yaml, int64_t maxb, lsf_errbuf *err)
{
    lsf_node *n = lsf_yaml_load_string("t.yaml", yaml, err);
    assert_non_null(n);
    int rc = lsf_ml_conf_bind(c, n, maxb, err);
    lsf_node_free(n);
    return rc;
}

/* Feeds the lines of text (split at '\n') with tags 1, 2, ... and flushes. */
static void feed(const lsf_ml_conf *c, const char *text, got *g)
{
    lsf_ml m;
    lsf_ml_init(&m, c);
    memset(g, 0, sizeof(*g));
    uint64_t tag = 0;
    for (const char *p = text; *p;) {
        const char *nl = strchr(p, '\n');
        size_t n = nl ? (size_t)(nl - p) : strlen(p);
        lsf_ml_line(&m, p, n, 0, ++tag, 0, on_event, g);
        p += n + (nl ? 1 : 0);
    }
    lsf_ml_flush(&m, on_event, g);
    lsf_ml_deinit(&m);
}

static const char java[] = "2026-03-03 10:00:00 INFO up\n"
                           "Exception in thread \"main\" java.lang.IllegalStateException: outer\n"
                           "\tat com.example.Foo.bar(Foo.java:10)\n"
                           "Caused by: java.lang.NullPointerException\n"
                           "\t... 1 more\n"
                           "2026-03-03 10:00:01 INFO next\n";
static const char python[] = "2026-03-03 10:00:00 ERROR failed\n"
                             "Traceback (most recent call last):\n"
                             "  File \"a.py\", line 1, in <module>\n"
                             "    f()\n"
                             "ValueError: bad\n"
                             "\n"
                             "During handling of the above exception, another exception occurred:\n"
                             "Traceback (most recent call last):\n"
                             "  File \"a.py\", line 3, in <module>\n"
                             "KeyError: 'x'\n"
                             "plain line after\n";

static void indent_java_python(void **state)
{
    (void)state;
    lsf_ml_conf c;
    lsf_errbuf err;
    got g;
    assert_int_equal(bind(&c, "{mode: indent}", 4096, &err), 0);
    feed(&c, java, &g);
    assert_int_equal(g.n, 3);
    assert_string_equal(g.ev[1], "Exception in thread \"main\" java.lang.IllegalStateException: outer\n"
                                 "\tat com.example.Foo.bar(Foo.java:10)\n"
                                 "Caused by: java.lang.NullPointerException\n\t... 1 more");
    assert_int_equal(g.tag[1], 5); /* the tag of its last line */
    feed(&c, python, &g);
    assert_int_equal(g.n, 2);
    assert_true(strstr(g.ev[0], "ValueError: bad\n\nDuring handling") != NULL);
    assert_true(strstr(g.ev[0], "\nKeyError: 'x'") != NULL);
    assert_string_equal(g.ev[1], "plain line after");
    lsf_ml_conf_free(&c);
}

static void start_pattern(void **state)
{
    (void)state;
    lsf_ml_conf c;
    lsf_errbuf err;
    got g;
    assert_int_equal(bind(&c, "{mode: start, start_pattern: '^\\d{4}-'}", 4096, &err), 0);
    feed(&c, "junk before\n2026-01-01 a\nb\nc\n2026-01-02 d\n", &g);
    assert_int_equal(g.n, 3);
    assert_string_equal(g.ev[0], "junk before");
    assert_string_equal(g.ev[1], "2026-01-01 a\nb\nc");
    assert_string_equal(g.ev[2], "2026-01-02 d");
    lsf_ml_conf_free(&c);
}

static void bounds(void **state)
{
    (void)state;
    lsf_ml_conf c;
    lsf_errbuf err;
    got g;
    assert_int_equal(bind(&c, "{mode: indent, max_lines: 3}", 4096, &err), 0);
    feed(&c, "a\n 1\n 2\n 3\n 4\n", &g);
    assert_int_equal(g.n, 2); /* 3 lines, then the rest as a new event */
    assert_string_equal(g.ev[0], "a\n 1\n 2");
    assert_string_equal(g.ev[1], " 3\n 4");
    lsf_ml_conf_free(&c);
    assert_int_equal(bind(&c, "{mode: indent, max_bytes: 10}", 4096, &err), 0);
    feed(&c, "abcdef\n ghijkl\n more\nnext\n", &g);
    assert_int_equal(g.n, 2);
    assert_int_equal(g.len[0], 10);
    assert_true(g.trunc[0]);
    assert_string_equal(g.ev[0], "abcdef\n gh");
    assert_false(g.trunc[1]);
    lsf_ml_conf_free(&c);
}

static void timeout(void **state)
{
    (void)state;
    lsf_ml_conf c;
    lsf_errbuf err;
    got g = {0};
    lsf_ml m;
    assert_int_equal(bind(&c, "{mode: indent, flush_timeout: 200ms}", 4096, &err), 0);
    lsf_ml_init(&m, &c);
    lsf_ml_line(&m, "first", 5, 0, 1, 1000000000LL, on_event, &g);
    assert_true(lsf_ml_tick(&m, 1100000000LL, on_event, &g));
    assert_int_equal(g.n, 0);
    assert_false(lsf_ml_tick(&m, 1200000000LL, on_event, &g));
    assert_int_equal(g.n, 1);
    lsf_ml_deinit(&m);
    lsf_ml_conf_free(&c);
}

static void config_errors(void **state)
{
    (void)state;
    lsf_ml_conf c;
    lsf_errbuf err;
    assert_int_equal(bind(&c, "{mode: start}", 100, &err), -1);
    assert_non_null(strstr(err.msg, "needs a start_pattern"));
    lsf_ml_conf_free(&c);
    assert_int_equal(bind(&c, "{mode: start, start_pattern: 'a(b'}", 100, &err), -1);
    assert_non_null(strstr(err.msg, "t.yaml:1:30: bad pattern"));
    lsf_ml_conf_free(&c);
    assert_int_equal(bind(&c, "{mode: sideways}", 100, &err), -1);
    lsf_ml_conf_free(&c);
}

/* fuzz_multiline: an empty first line made memcpy read from a NULL buffer
 * (UBSan); empty lines no longer begin an event. */
static void fuzz_empty_lines(void **state)
{
    (void)state;
    lsf_ml_conf c;
    lsf_errbuf err;
    got g;
    assert_int_equal(bind(&c, "{mode: start, start_pattern: '^x'}", 100, &err), 0);
    feed(&c, "\n\n\nx1\n\ny\n", &g);
    assert_int_equal(g.n, 1);
    assert_string_equal(g.ev[0], "x1\n\ny");
    lsf_ml_conf_free(&c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(indent_java_python), cmocka_unit_test(start_pattern),
        cmocka_unit_test(bounds),             cmocka_unit_test(timeout),
        cmocka_unit_test(config_errors),      cmocka_unit_test(fuzz_empty_lines),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
