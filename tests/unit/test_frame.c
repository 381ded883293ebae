/* test_frame.c - unit tests of the framer (ingest/frame.c).
 *
 * Every table case runs through several feeding strategies (one shot, one
 * byte at a time, small and random chunks through a buffer of exactly
 * lsf_frame_buf_min() bytes) and each must give the same records and
 * counters. Records are rendered as "[text]" ("[text]~" when truncated) with
 * \n, \r and NUL escaped, so expectations read like the input.
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

#include "ingest/frame.h"

/* ---- collecting records ---------------------------------------------- */

typedef struct out {
    char *s;
    size_t len, cap;
} out;

static void out_put(out *o, const char *p, size_t n)
{
    if (o->len + n + 1 > o->cap) {
        o->cap = (o->len + n + 1) * 2;
        o->s = realloc(o->s, o->cap);
        assert_non_null(o->s);
    }
    memcpy(o->s + o->len, p, n);
    o->len += n;
    o->s[o->len] = '\0';
}

static void on_rec(void *arg, const char *rec, size_t len, int truncated)
{
    out *o = arg;
    out_put(o, "[", 1);
    for (size_t i = 0; i < len; i++) {
        if (rec[i] == '\n')
            out_put(o, "\\n", 2);
        else if (rec[i] == '\r')
            out_put(o, "\\r", 2);
        else if (rec[i] == '\0')
            out_put(o, "\\0", 2);
        else
            out_put(o, &rec[i], 1);
    }
    out_put(o, truncated ? "]~" : "]", truncated ? 2 : 1);
}

/* Feeds `in` in chunks of `chunk` bytes (0: random 1..97 from `seed`)
 * through a caller buffer of `cap` bytes (0: as large as the input). */
static void run(int mode, size_t max, const char *in, size_t inlen, size_t chunk, unsigned seed,
                size_t cap, out *o, lsf_frame_stats *st)
{
    lsf_framer f;
    memset(st, 0, sizeof(*st));
    lsf_frame_init(&f, mode, max, st);
    if (cap == 0)
        cap = inlen + 1;
    char *buf = malloc(cap);
    assert_non_null(buf);
    size_t have = 0, pos = 0;
    while (pos < inlen) {
        size_t n = chunk ? chunk : (size_t)(rand_r(&seed) % 97) + 1;
        assert_true(have < cap); /* the framer's promise: room is left */
        if (n > cap - have)
            n = cap - have;
        if (n > inlen - pos)
            n = inlen - pos;
        memcpy(buf + have, in + pos, n);
        have += n;
        pos += n;
        size_t used = lsf_frame_feed(&f, buf, have, on_rec, o);
        assert_true(used <= have);
        have -= used;
        assert_true(have < lsf_frame_buf_min(&f));
        memmove(buf, buf + used, have);
    }
    lsf_frame_finish(&f, buf, have, on_rec, o);
    free(buf);
}

/* ---- table ------------------------------------------------------------ */

#define A LSF_FRAMING_AUTO
#define NL LSF_FRAMING_NEWLINE
#define OC LSF_FRAMING_OCTET
#define IN(s) (s), sizeof(s) - 1

typedef struct tcase {
    const char *name;
    int mode;
    size_t max;
    const char *in;
    size_t inlen;
    const char *expect;
    /* records, truncated, empty, incomplete, bad_count */
    lsf_frame_stats st;
} tcase;

static const tcase cases[] = {
    /* newline framing */
    {"lines", NL, 64, IN("a\nbc\n"), "[a][bc]", {2, 0, 0, 0, 0}},
    {"crlf", A, 64, IN("a\r\nbc\r\n"), "[a][bc]", {2, 0, 0, 0, 0}},
    {"cr inside kept", A, 64, IN("a\rb\n\r\r\n"), "[a\\rb][\\r]", {2, 0, 0, 0, 0}},
    {"empty lines", A, 64, IN("\n\na\n\r\n\n"), "[a]", {1, 0, 4, 0, 0}},
    {"nul bytes", A, 64, IN("a\0b\n\0\n"), "[a\\0b][\\0]", {2, 0, 0, 0, 0}},
    {"eof partial line", A, 64, IN("a\nbc"), "[a][bc]", {2, 0, 0, 0, 0}},
    {"eof partial line cr", NL, 64, IN("a\nbc\r"), "[a][bc]", {2, 0, 0, 0, 0}},
    {"eof lone cr", NL, 64, IN("a\n\r"), "[a]", {1, 0, 1, 0, 0}},
    {"empty input", A, 64, IN(""), "", {0, 0, 0, 0, 0}},
    {"newline mode ignores counts", NL, 64, IN("5 <1>ab\n"), "[5 <1>ab]", {1, 0, 0, 0, 0}},
    /* newline truncation */
    {"trunc line", NL, 4, IN("abcdefgh\nxy\n"), "[abcd]~[xy]", {2, 1, 0, 0, 0}},
    {"exact max crlf", NL, 4, IN("abcd\r\nabcd\nabcd"), "[abcd][abcd][abcd]", {3, 0, 0, 0, 0}},
    {"max then cr then more", NL, 4, IN("abcd\rX\nz\n"), "[abcd]~[z]", {2, 1, 0, 0, 0}},
    {"max then two cr", NL, 4, IN("abcd\r\r\nz\n"), "[abcd]~[z]", {2, 1, 0, 0, 0}},
    {"max plus one", NL, 4, IN("abcde\nz\n"), "[abcd]~[z]", {2, 1, 0, 0, 0}},
    {"trunc at eof", A, 4, IN("a\nabcdefg"), "[a][abcd]~", {2, 1, 0, 0, 0}},
    {"trunc eof exact cr", A, 4, IN("abcd\r"), "[abcd]", {1, 0, 0, 0, 0}},
    {"trunc digits line", A, 4, IN("123456789\nab\n"), "[1234]~[ab]", {2, 1, 0, 0, 0}},
    {"trunc long then empty", NL, 3, IN("abcdef\n\nx\n"), "[abc]~[x]", {2, 1, 1, 0, 0}},
    {"max one", NL, 1, IN("ab\nc\n\n"), "[a]~[c]", {2, 1, 1, 0, 0}},
    /* octet counting */
    {"octet", OC, 64, IN("5 <1>ab3 <2>"), "[<1>ab][<2>]", {2, 0, 0, 0, 0}},
    {"octet lf trailer", OC, 64, IN("5 <1>ab\n5 <2>cd\r\n"), "[<1>ab][<2>cd]", {2, 0, 0, 0, 0}},
    {"octet lf counted", OC, 64, IN("6 <1>ab\n7 <2>cd\r\n"), "[<1>ab][<2>cd]", {2, 0, 0, 0, 0}},
    {"octet embedded newline", A, 64, IN("6 <1>a\nb"), "[<1>a\\nb]", {1, 0, 0, 0, 0}},
    {"octet nul", OC, 64, IN("5 <1>\0\0"), "[<1>\\0\\0]", {1, 0, 0, 0, 0}},
    {"octet second lf is empty", OC, 64, IN("3 <1>\n\n3 <2>"), "[<1>][<2>]", {2, 0, 1, 0, 0}},
    {"octet leading empty line", OC, 64, IN("\n5 <1>ab"), "[<1>ab]", {1, 0, 1, 0, 0}},
    {"octet only lf", OC, 64, IN("1 \n"), "", {0, 0, 1, 0, 0}},
    {"octet trunc", OC, 4, IN("8 <1>abcde3 <2>"), "[<1>a]~[<2>]", {2, 1, 0, 0, 0}},
    {"auto octet trunc", A, 4, IN("8 <1>abcde<3>x\n"), "[<1>a]~[<3>x]", {2, 1, 0, 0, 0}},
    {"octet trunc exact", OC, 4, IN("4 <1>a5 <1>ab"), "[<1>a][<1>a]~", {2, 1, 0, 0, 0}},
    {"octet trunc huge skip", OC, 4, IN("1000000000 <1>xyzzy"), "[<1>x]~", {1, 1, 0, 0, 0}},
    {"octet partial at eof", OC, 64, IN("3 <1>9 <2>ab"), "[<1>]", {1, 0, 0, 1, 0}},
    {"octet header at eof", OC, 64, IN("3 <1>12"), "[<1>]", {1, 0, 0, 1, 0}},
    {"octet header sp at eof", OC, 64, IN("3 <1>12 "), "[<1>]", {1, 0, 0, 1, 0}},
    {"octet trailer cr at eof", OC, 64, IN("3 <1>\r"), "[<1>]", {1, 0, 0, 0, 0}},
    {"octet cr not trailer", OC, 64, IN("3 <1>\rx\n"), "[<1>][\\rx]", {2, 0, 0, 0, 1}},
    /* lying and bad counts */
    {"short count auto", A, 64, IN("3 <1>abc\n"), "[<1>][abc]", {2, 0, 0, 0, 0}},
    {"short count octet", OC, 64, IN("3 <1>abc\n"), "[<1>][abc]", {2, 0, 0, 0, 1}},
    {"long count", A, 64, IN("20 <1>ab\n<2>cd\n"), "", {0, 0, 0, 1, 0}},
    {"long count swallows", A, 64, IN("9 <1>ab\n<2>cd\n"), "[<1>ab\\n<2>][cd]", {2, 0, 0, 0, 0}},
    {"huge count auto", A, 64, IN("99999999999 <1>x\n"), "[99999999999 <1>x]", {1, 0, 0, 0, 0}},
    {"huge count octet", OC, 64, IN("99999999999 <1>x\n2 ab"), "[99999999999 <1>x][ab]",
     {2, 0, 0, 0, 1}},
    {"no sp auto", A, 64, IN("12:00 hello\n"), "[12:00 hello]", {1, 0, 0, 0, 0}},
    {"no sp octet", OC, 64, IN("12:00 hello\n2 ab"), "[12:00 hello][ab]", {2, 0, 0, 0, 1}},
    {"leading zero octet", OC, 64, IN("05 <1>ab\n"), "[05 <1>ab]", {1, 0, 0, 0, 1}},
    {"zero count octet", OC, 64, IN("0 \n"), "[0 ]", {1, 0, 0, 0, 1}},
    {"bad header truncated", OC, 4, IN("x23456\n1 a"), "[x234]~[a]", {2, 1, 0, 0, 1}},
    {"octet bad at eof", OC, 64, IN("2 ab:x"), "[ab][:x]", {2, 0, 0, 0, 1}},
    /* auto detection */
    {"auto needs pri", A, 64, IN("200 OK\n"), "[200 OK]", {1, 0, 0, 0, 0}},
    {"auto mixed", A, 64, IN("<1>a\n5 <2>bc<3>d\n5 <4>e"), "[<1>a][<2>bc][<3>d]", {3, 0, 0, 1, 0}},
    {"auto digits at eof", A, 64, IN("x\n12"), "[x][12]", {2, 0, 0, 0, 0}},
    {"auto digits sp at eof", A, 64, IN("x\n12 "), "[x][12 ]", {2, 0, 0, 0, 0}},
    {"auto 10 digits", A, 64, IN("9999999999 x\n"), "[9999999999 x]", {1, 0, 0, 0, 0}},
    {"auto octet then line", A, 64, IN("3 <1>hello\n"), "[<1>][hello]", {2, 0, 0, 0, 0}},
};

static void check_case(const tcase *c)
{
    /* strategies: {chunk, cap multiplier: 0 = input-sized buffer, 1 = tight} */
    static const struct {
        size_t chunk;
        int tight;
    } strat[] = {{SIZE_MAX, 0}, {1, 0}, {2, 0}, {3, 0}, {7, 0}, {0, 0},
                 {1, 1},        {5, 1}, {0, 1}, {SIZE_MAX, 1}};
    for (size_t s = 0; s < sizeof(strat) / sizeof(strat[0]); s++) {
        for (unsigned seed = 1; seed <= (strat[s].chunk == 0 ? 8u : 1u); seed++) {
            out o = {0};
            lsf_frame_stats st;
            size_t cap = strat[s].tight ? c->max + LSF_FRAME_SLACK : 0;
            run(c->mode, c->max, c->in, c->inlen, strat[s].chunk, seed, cap, &o, &st);
            const char *got = o.s ? o.s : "";
            if (strcmp(got, c->expect) != 0 || memcmp(&st, &c->st, sizeof(st)) != 0) {
                print_error("case '%s' strategy %zu seed %u:\n  want %s {%llu %llu %llu %llu %llu}\n"
                            "  got  %s {%llu %llu %llu %llu %llu}\n",
                            c->name, s, seed, c->expect, (unsigned long long)c->st.records,
                            (unsigned long long)c->st.truncated, (unsigned long long)c->st.empty,
                            (unsigned long long)c->st.incomplete,
                            (unsigned long long)c->st.bad_count, got,
                            (unsigned long long)st.records, (unsigned long long)st.truncated,
                            (unsigned long long)st.empty, (unsigned long long)st.incomplete,
                            (unsigned long long)st.bad_count);
                free(o.s);
                fail();
            }
            free(o.s);
        }
    }
}

static void test_table(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
        check_case(&cases[i]);
}

/* Random streams over a framing-heavy alphabet: every chunking agrees with
 * one-shot feeding, and the tail bound holds. */
static void test_random_streams(void **state)
{
    (void)state;
    static const char alpha[] = "0123456789  <<\n\n\r\rab\0";
    const size_t nalpha = sizeof(alpha) - 1;
    unsigned seed = 12345;
    char in[600];
    for (int iter = 0; iter < 3000; iter++) {
        size_t n = (size_t)(rand_r(&seed) % sizeof(in));
        for (size_t i = 0; i < n; i++)
            in[i] = alpha[rand_r(&seed) % nalpha];
        int mode = iter % 3;
        size_t max = 1 + (size_t)(rand_r(&seed) % 40);
        out ref = {0};
        lsf_frame_stats rst;
        run(mode, max, in, n, SIZE_MAX, 0, 0, &ref, &rst);
        static const size_t chunks[] = {1, 2, 0};
        for (size_t k = 0; k < 3; k++) {
            for (int tight = 0; tight < 2; tight++) {
                out o = {0};
                lsf_frame_stats st;
                run(mode, max, in, n, chunks[k], (unsigned)iter, tight ? max + LSF_FRAME_SLACK : 0,
                    &o, &st);
                assert_string_equal(o.s ? o.s : "", ref.s ? ref.s : "");
                assert_memory_equal(&st, &rst, sizeof(st));
                free(o.s);
            }
        }
        free(ref.s);
    }
}

/* A 1 MB line fed a byte at a time through a tight buffer is scanned once,
 * truncated once, and the next line survives. */
static void test_long_line_bytewise(void **state)
{
    (void)state;
    size_t n = 1 << 20;
    char *in = malloc(n + 3);
    assert_non_null(in);
    memset(in, 'x', n);
    memcpy(in + n, "\ny\n", 3);
    out o = {0};
    lsf_frame_stats st;
    run(LSF_FRAMING_AUTO, 65536, in, n + 3, 1, 0, 65536 + LSF_FRAME_SLACK, &o, &st);
    assert_int_equal(st.records, 2);
    assert_int_equal(st.truncated, 1);
    assert_int_equal(o.len, 1 + 65536 + 2 + 3);
    assert_memory_equal(o.s + o.len - 3, "[y]", 3);
    free(o.s);
    free(in);
}

/* Many frames in one feed, octet and newline interleaved. */
static void test_many_frames(void **state)
{
    (void)state;
    char *in = malloc(1 << 20);
    assert_non_null(in);
    size_t n = 0;
    for (int i = 0; i < 10000; i++) {
        char msg[64];
        int m = snprintf(msg, sizeof(msg), "<13>msg %d", i);
        if (i % 2)
            n += (size_t)sprintf(in + n, "%d %s", m, msg);
        else
            n += (size_t)sprintf(in + n, "%s\n", msg);
    }
    for (size_t chunk = 1; chunk <= 4096; chunk *= 8) {
        out o = {0};
        lsf_frame_stats st;
        run(LSF_FRAMING_AUTO, 100, in, n, chunk, 0, 100 + LSF_FRAME_SLACK, &o, &st);
        assert_int_equal(st.records, 10000);
        assert_int_equal(st.truncated + st.empty + st.incomplete + st.bad_count, 0);
        assert_non_null(strstr(o.s, "[<13>msg 9998][<13>msg 9999]"));
        free(o.s);
    }
    free(in);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_table),
        cmocka_unit_test(test_random_streams),
        cmocka_unit_test(test_long_line_bytewise),
        cmocka_unit_test(test_many_frames),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
