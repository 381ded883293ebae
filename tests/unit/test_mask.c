/* test_mask.c - pins the output of lsf_mask_line (anomaly/mask.c) rule by
 * rule: the template text and token count of lines that exercise each rule
 * of the mask.c header, the merges of adjacent variables, bracket trimming,
 * the 128-token and 256-word limits, words across the 64-byte blocks the
 * scan works in, and the token hashes. Template ids are hashes of this
 * output and are kept in snapshots, so any change here is a format change. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "anomaly/hash.h"
#include "anomaly/template.h"

#define TOKEN_SEED 0x6c6f677369667421ULL /* mask.c's seed for constant tokens */

/* Masks line (n bytes) and renders it as its template reads ("<*>" for a
 * variable) into out; checks the structural invariants on the way: tokens
 * and separators tile the line in order, and a constant's hash is
 * lsf_hash64 of its bytes (1 for 0). Returns the token count. */
static uint32_t render(const char *line, size_t n, char *out, size_t cap, lsf_masked *m)
{
    lsf_mask_line(line, n, m);
    assert_true(m->n >= 1 && m->n <= LSF_MASK_MAX_TOKENS);
    size_t o = 0;
    uint32_t at = 0;
    for (uint32_t k = 0; k < m->n; k++) {
        const lsf_mtok *t = &m->tok[k];
        assert_int_equal(t->sep_off, at);
        assert_int_equal(t->sep_off + t->sep_len, t->off);
        assert_true(t->off + t->len <= n);
        at = t->off + t->len;
        if (t->h) {
            uint64_t h = lsf_hash64(line + t->off, t->len, TOKEN_SEED);
            assert_true(t->h == (h ? h : 1));
        }
        o += (size_t)snprintf(out + o, cap - o, "%.*s", (int)t->sep_len, line + t->sep_off);
        if (t->h)
            o += (size_t)snprintf(out + o, cap - o, "%.*s", (int)t->len, line + t->off);
        else
            o += (size_t)snprintf(out + o, cap - o, "<*>");
    }
    assert_true(m->trail_off >= at && m->trail_off <= n);
    snprintf(out + o, cap - o, "%.*s", (int)(n - m->trail_off), line + m->trail_off);
    return m->n;
}

typedef struct mcase {
    const char *in, *want;
    uint32_t n;
} mcase;

static void check_cases(const mcase *c, size_t count)
{
    static lsf_masked m;
    char buf[1024];
    for (size_t i = 0; i < count; i++) {
        uint32_t n = render(c[i].in, strlen(c[i].in), buf, sizeof(buf), &m);
        if (strcmp(buf, c[i].want) != 0 || n != c[i].n)
            fail_msg("mask(\"%s\") = \"%s\" (%u tokens), want \"%s\" (%u)", c[i].in, buf, n,
                     c[i].want, c[i].n);
    }
}

/* Rule 1: white space; timestamp runs (day name, month name, day, time,
 * year), and what is not one. */
static void test_mask_words_and_timestamps(void **state)
{
    (void)state;
    static const mcase cases[] = {
        {"a\tb\r\nc\x0b d\x0c e", "a\tb\r\nc\x0b d\x0c e", 5},
        {"Fri Jul  1 07:57:30 2005 started", "<*> started", 2},
        {"at Jul 1 07:57 done", "at <*> done", 3},
        {"Jun 17 07:07:00 combo ftpd", "<*> combo ftpd", 3},
        {"on Jul 1 2005 up", "on <*> up", 3},
        {"Mon Jul x", "Mon Jul x", 3},        /* no day: not a run */
        {"Jul 123 x", "Jul <*> x", 3},        /* a day has 1 or 2 digits */
        {"Sun Dec 31 23:59:59,  now", "<*>  now", 2}, /* the time word is kept whole */
        {"Jul 1 07:57:30, next", "<*> next", 2},
        {"jul 1 07:57 lower", "jul <*> lower", 3}, /* names are capitalised */
        {"Mon 1 07:57", "Mon <*>", 2},            /* a day name needs a month */
        {"Jul 1 20055 x", "<*> x", 2},            /* not a year, but a variable merging */
        {"user Jul 1 x", "user <*> x", 3},
        {"GET /api/v1/items/65 200 in 120 ms", "GET <*> in <*> ms", 5},
    };
    check_cases(cases, sizeof(cases) / sizeof(cases[0]));
}

/* Rule 2: separators split words and stay as separator text; rule 3's
 * value after '=' (quotes between allowed, any other separator ends it). */
static void test_mask_separators(void **state)
{
    (void)state;
    static const mcase cases[] = {
        {"a,b;c|d \"e\" 'f'", "a,b;c|d \"e\" 'f'", 6},
        {"k=v k2=\"v 2\" k3='x'", "k=<*>'", 2},
        {"a=,b", "a=,b", 2},
        {"a==b", "a==<*>", 2},
        {"a=\"\"", "a=\"\"", 1},
        {"=", "=<*>", 1},
        {",,,", ",,,<*>", 1}, /* no token: one empty variable at the end */
        {"", "<*>", 1},
        {"   ", "   <*>", 1},
        {"(uid=0) (x=1,y=2)", "(uid=<*>) (x=<*>,y=<*>)", 6},
    };
    check_cases(cases, sizeof(cases) / sizeof(cases[0]));
}

/* Rule 3: digits, paths, URLs, hex, punctuation only, user names. */
static void test_mask_variables(void **state)
{
    (void)state;
    static const mcase cases[] = {
        {"port 22 from fe80::1 v1.2 10.0.0.1:8080", "port <*> from <*>", 4},
        {"open /var/log/messages and /tmp and a/b/c", "open <*> and /tmp and a/b/c", 6},
        {"fetch http://example.org/a failed; see a://b", "fetch <*> failed; see <*>", 5},
        {"flags deadbeef deadbee DEADBEEFCAFE abcdefgh 0xfeed",
         "flags <*> deadbee <*> abcdefgh <*>", 6},
        {"got () [] ... <> (x) {a}", "got <*> (x) {a}", 4},
        {"Failed password for root from 10.0.0.2", "Failed password for <*> from <*>", 6},
        {"session opened for user cyrus by (uid=0)", "session opened for user <*> by (uid=<*>)", 8},
        {"for user bob", "for user <*>", 3},
        {"for -x for a.b for x! for 1x", "for -x for <*> for x! for <*>", 8},
        {"x,for bob", "x,for bob", 3}, /* the word before must be "for" itself */
        {"user=alice for", "user=<*> for", 3},
    };
    check_cases(cases, sizeof(cases) / sizeof(cases[0]));
}

/* Rule 4 and the brackets a variable leaves as text. */
static void test_mask_merges_and_brackets(void **state)
{
    (void)state;
    static const mcase cases[] = {
        {"took 10 20 30 ms", "took <*> ms", 3},
        {"sent (1.16 KB) to 2 peers", "sent (<*> KB) to <*> peers", 6},
        {"for key item:12 (34 bytes)", "for <*> bytes)", 3},
        {"pid(123). [1234]: <5>", "<*>", 1},
    };
    check_cases(cases, sizeof(cases) / sizeof(cases[0]));
}

/* Past 128 tokens everything joins the last one, a variable. */
static void test_mask_token_limit(void **state)
{
    (void)state;
    static char line[1024], buf[4096];
    static lsf_masked m;
    size_t o = 0;
    for (int i = 0; i < 200; i++)
        o += (size_t)snprintf(line + o, sizeof(line) - o, "w%c%c ", 'a' + i % 26, 'a' + i / 26);
    assert_int_equal(render(line, o, buf, sizeof(buf), &m), LSF_MASK_MAX_TOKENS);
    assert_int_equal(m.tok[126].off, 504);
    assert_true(m.tok[126].h != 0);
    assert_int_equal(m.tok[127].off, 508);
    assert_int_equal(m.tok[127].len, 799 - 508);
    assert_true(m.tok[127].h == 0);
    assert_int_equal(m.trail_off, 799);
    /* digits and constants alternating: the cut falls the same way */
    o = 0;
    for (int i = 0; i < 300; i++)
        o += (size_t)snprintf(line + o, sizeof(line) - o, "%s ", i % 3 ? "k" : "1");
    assert_int_equal(render(line, o, buf, sizeof(buf), &m), LSF_MASK_MAX_TOKENS);
    assert_int_equal(m.tok[127].off, 254);
    assert_int_equal(m.tok[127].len, 345);
    /* the 129th token a variable after a constant 128th: it joins too */
    o = 0;
    for (int i = 0; i < 128; i++)
        o += (size_t)snprintf(line + o, sizeof(line) - o, "w%c%c ", 'a' + i % 26, 'a' + i / 26);
    o += (size_t)snprintf(line + o, sizeof(line) - o, "12 (34) x");
    assert_int_equal(render(line, o, buf, sizeof(buf), &m), LSF_MASK_MAX_TOKENS);
    assert_int_equal(m.tok[127].off, 508);
    assert_int_equal(m.tok[127].len, o - 508);
    assert_true(m.tok[127].h == 0);
}

/* The 256th word is the rest of the line, split only at separators; a
 * timestamp may run into it. */
static void test_mask_word_limit(void **state)
{
    (void)state;
    static char line[1024], buf[2048];
    static lsf_masked m;
    size_t o = 0;
    for (int i = 0; i < 255; i++)
        o += (size_t)snprintf(line + o, sizeof(line) - o, "= ");
    o += (size_t)snprintf(line + o, sizeof(line) - o, "a b c");
    assert_int_equal(render(line, o, buf, sizeof(buf), &m), 1);
    assert_int_equal(m.tok[0].off, 510); /* one constant, white space inside */
    assert_int_equal(m.tok[0].len, 5);
    assert_true(m.tok[0].h != 0);

    o = 0;
    for (int i = 0; i < 254; i++)
        o += (size_t)snprintf(line + o, sizeof(line) - o, "= ");
    o += (size_t)snprintf(line + o, sizeof(line) - o, "Jul 1 07:57:30 x y");
    assert_int_equal(render(line, o, buf, sizeof(buf), &m), 2);
    assert_true(m.tok[0].h != 0); /* "Jul": the 256th word is no day */
    assert_int_equal(m.tok[1].off, 512);
    assert_int_equal(m.tok[1].len, 14);
    assert_true(m.tok[1].h == 0);

    o = 0;
    for (int i = 0; i < 253; i++)
        o += (size_t)snprintf(line + o, sizeof(line) - o, "= ");
    o += (size_t)snprintf(line + o, sizeof(line) - o, "Jul 1 07:57:30 x y");
    assert_int_equal(render(line, o, buf, sizeof(buf), &m), 1);
    assert_int_equal(m.tok[0].off, 506); /* the run takes the 256th word: its time */
    assert_int_equal(m.tok[0].len, 18);
    assert_true(m.tok[0].h == 0);
}

/* Words across the scan's 64-byte blocks are words like any other. */
static void test_mask_block_edges(void **state)
{
    (void)state;
    static char line[512], buf[1024], want[1024];
    static lsf_masked m;
    for (int pad = 56; pad <= 72; pad++) {
        size_t o = 0;
        for (int i = 0; i < pad; i++)
            line[o++] = 'w';
        o += (size_t)snprintf(line + o, sizeof(line) - o, " May 1 07:57 x deadbeefcafe 1.2 for bob");
        snprintf(want, sizeof(want), "%.*s <*> x <*> for <*>", pad, line);
        assert_int_equal(render(line, o, buf, sizeof(buf), &m), 6);
        assert_string_equal(buf, want);
    }
    /* 31 one-letter words, then a month name across bytes 63/64 */
    size_t o = 0;
    for (int i = 0; i < 31; i++)
        o += (size_t)snprintf(line + o, sizeof(line) - o, "w ");
    o += (size_t)snprintf(line + o, sizeof(line) - o, "May 1 x");
    assert_int_equal(render(line, o, buf, sizeof(buf), &m), 33);
    assert_true(m.tok[31].h == 0);
    assert_int_equal(m.tok[31].off, 62);
    assert_int_equal(m.tok[31].len, 5);
}

/* Constant tokens of every length up to 40 at every place in a line, lines
 * shorter than 8 bytes included: the hash is lsf_hash64 of the bytes (the
 * scan reads a token's tail with its neighbours, so the ends of the line
 * and of the token are where that could go wrong). render() checks it. */
static void test_mask_token_hashes(void **state)
{
    (void)state;
    static char line[128], buf[512];
    static lsf_masked m;
    for (int len = 1; len <= 40; len++)
        for (int lead = 0; lead <= 9; lead++)
            for (int trail = 0; trail <= 9; trail++) {
                size_t o = 0;
                for (int i = 0; i < lead; i++)
                    line[o++] = i % 2 ? ' ' : 'q';
                if (lead)
                    line[o++] = ' ';
                for (int i = 0; i < len; i++)
                    line[o++] = (char)('g' + i % 20); /* letters past f: not hex */
                for (int i = 0; i < trail; i++)
                    line[o++] = i % 2 ? 'z' : ' ';
                render(line, o, buf, sizeof(buf), &m);
            }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_mask_words_and_timestamps),
        cmocka_unit_test(test_mask_separators),
        cmocka_unit_test(test_mask_variables),
        cmocka_unit_test(test_mask_merges_and_brackets),
        cmocka_unit_test(test_mask_token_limit),
        cmocka_unit_test(test_mask_word_limit),
        cmocka_unit_test(test_mask_block_edges),
        cmocka_unit_test(test_mask_token_hashes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
