/* test_rules_library.c - rules/library.c: %{} macro expansion (scopes,
 * qualified names, cycles, errors with positions), named-group renaming
 * (dotted names, types, back-references, what must stay untouched), the
 * nested-quantifier lint, and the standard library patterns against real
 * values (every IPv6 form included), with their prefilter stand-ins, and
 * the literals the prefilter reads off a regex.
 * Design: table-driven; a pattern is checked by compiling "^%{NAME}$" the way
 * the rule compiler does (expand, rename, PCRE2).
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

#include "rules/rules_int.h"

/* A pack with a few patterns, built by hand (no file needed). */
static lsf_pattern demo_patterns[] = {
    {"WORDS", "%{WORD}(?: %{WORD})*", NULL},
    {"KV", "%{WORD:key}=%{INT:value:int}", NULL},
    {"LOOP_A", "a%{LOOP_B}", NULL},
    {"LOOP_B", "b%{LOOP_A}", NULL},
    {"INT", "[0-9]{3}", NULL}, /* shadows the library's INT inside this pack */
};
static lsf_pack demo_packs[2];

static int setup(void **state)
{
    (void)state;
    demo_packs[0].name = "demo";
    demo_packs[0].patterns = demo_patterns;
    demo_packs[0].npatterns = sizeof(demo_patterns) / sizeof(demo_patterns[0]);
    demo_packs[1].name = "other";
    return 0;
}

static const lsf_node at = {.file = "p.yaml", .line = 7, .col = 12};

static char *expand(const char *src, const lsf_pack *pk, lsf_errbuf *err)
{
    lsf_sbuf out = {0};
    if (lsf_pattern_expand(src, pk, demo_packs, 2, &out, NULL, &at, err) < 0) {
        lsf_sbuf_free(&out);
        return NULL;
    }
    return lsf_sbuf_take(&out);
}

static void test_expand(void **state)
{
    (void)state;
    static const struct {
        const char *src, *want;
        int own; /* expand in pack "demo" */
    } rows[] = {
        {"%{INT}", "(?:[+-]?[0-9]+)", 0},
        {"%{INT:n}", "(?<n>[+-]?[0-9]+)", 0},
        {"%{INT:source.port:int}", "(?<source.port:int>[+-]?[0-9]+)", 0},
        {"x%{INT}y", "x(?:[0-9]{3})y", 1},          /* the pack's own INT wins */
        {"%{demo.INT}", "(?:[0-9]{3})", 0},          /* qualified from outside */
        {"%{KV}", "(?:(?<key>\\w+)=(?<value:int>[0-9]{3}))", 1}, /* body resolves in its pack */
        {"%{demo.KV}", "(?:(?<key>\\w+)=(?<value:int>[0-9]{3}))", 0},
        {"%{TIME}", "(?:(?:(?:2[0-3]|[01]?[0-9])):(?:[0-5][0-9])(?::(?:(?:[0-5]?[0-9]|60)(?:[.,][0-9]+)?))?)", 0},
        {"\\%{INT}", "\\%{INT}", 0},                 /* escaped: literal */
        {"%\\{INT}", "%\\{INT}", 0},
        {"[%{INT}]", "[%{INT}]", 0},                 /* inside a class: literal */
        {"\\Q%{INT}\\E", "\\Q%{INT}\\E", 0},
        {"100%", "100%", 0},
    };
    for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
        lsf_errbuf err = {{0}};
        char *got = expand(rows[i].src, rows[i].own ? &demo_packs[0] : NULL, &err);
        if (!got)
            fail_msg("%s: %s", rows[i].src, err.msg);
        if (strcmp(got, rows[i].want) != 0)
            fail_msg("%s: got %s want %s", rows[i].src, got, rows[i].want);
        free(got);
    }
}

static void test_expand_errors(void **state)
{
    (void)state;
    static const struct {
        const char *src, *msg;
    } rows[] = {
        {"%{NOPE}", "p.yaml:7:12: unknown pattern %{NOPE}"},
        {"%{nopack.X}", "p.yaml:7:12: %{nopack.X}: no pack named 'nopack' is loaded"},
        {"%{other.X}", "p.yaml:7:12: unknown pattern %{other.X}"},
        {"%{LOOP_A}", "p.yaml:7:12: pattern LOOP_A refers to itself"},
        {"%{INT:x:long}", "p.yaml:7:12: unknown type 'long' in %{INT:x:long}"},
        {"%{INT:}", "p.yaml:7:12: bad macro '%{INT:}'"},
        {"%{INT:a b}", "p.yaml:7:12: bad field name 'a b'"},
        {"%{INT", "p.yaml:7:12: unterminated %{"},
    };
    for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
        lsf_errbuf err = {{0}};
        char *got = expand(rows[i].src, &demo_packs[0], &err);
        if (got)
            fail_msg("%s: expanded to %s, wanted an error", rows[i].src, got);
        if (strncmp(err.msg, rows[i].msg, strlen(rows[i].msg)) != 0)
            fail_msg("%s: error '%s', want prefix '%s'", rows[i].src, err.msg, rows[i].msg);
    }
}

static void test_rename(void **state)
{
    (void)state;
    static const struct {
        const char *src, *want, *names;
    } rows[] = {
        {"(?<source.ip>\\S+) (?<source.port:int>\\d+)", "(?<_g0>\\S+) (?<_g1>\\d+)",
         "source.ip/0 source.port/1"},
        {"(?'a'x)(?P<b>y)", "(?<_g0>x)(?<_g1>y)", "a/0 b/0"},
        {"(?<w>a)\\k<w>\\k'w'\\k{w}\\g{w}(?P=w)(?&w)(?P>w)",
         "(?<_g0>a)\\k<_g0>\\k'_g0'\\k{_g0}\\g{_g0}(?P=_g0)(?&_g0)(?P>_g0)", "w/0"},
        {"(?<=x)(?<!y)(?<z>.)", "(?<=x)(?<!y)(?<_g0>.)", "z/0"},
        {"[(?<no>]\\Q(?<no>\\E\\(?<no>x\\)(?#(?<no>)", "[(?<no>]\\Q(?<no>\\E\\(?<no>x\\)(?#(?<no>)",
         ""},
        {"(a)\\1\\g{-1}\\g{1}", "(a)\\1\\g{-1}\\g{1}", ""},
        {"(?<x:float>a)|(?<x:float>b)", "(?<_g0>a)|(?<_g1>b)", "x/2 x/2"},
        {"(?<flag:bool>yes)(?<addr:ip>.)", "(?<_g0>yes)(?<_g1>.)", "flag/4 addr/3"},
    };
    for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
        lsf_sbuf out = {0};
        lsf_group_name *names;
        uint32_t n;
        lsf_errbuf err = {{0}};
        if (lsf_pattern_rename_groups(rows[i].src, &out, NULL, &names, &n, &at, &err) < 0)
            fail_msg("%s: %s", rows[i].src, err.msg);
        assert_string_equal(out.p ? out.p : "", rows[i].want);
        char got[256] = "";
        for (uint32_t k = 0; k < n; k++)
            snprintf(got + strlen(got), sizeof(got) - strlen(got), "%s%s/%d", k ? " " : "",
                     names[k].field, names[k].type);
        assert_string_equal(got, rows[i].names);
        lsf_group_names_free(names, n);
        lsf_sbuf_free(&out);
    }
    static const char *const bad[] = {"(?<a b>x)", "(?<x:long>y)", "(?<>z)", "\\k<nope>(?<a>b)"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        lsf_sbuf out = {0};
        lsf_group_name *names;
        uint32_t n;
        lsf_errbuf err = {{0}};
        if (lsf_pattern_rename_groups(bad[i], &out, NULL, &names, &n, &at, &err) == 0)
            fail_msg("%s: accepted", bad[i]);
        assert_true(strncmp(err.msg, "p.yaml:7:12: ", 13) == 0);
        lsf_sbuf_free(&out);
    }
}

static void test_position_map(void **state)
{
    (void)state;
    /* "ab%{INT}c": bytes of the expansion map to the '%' at offset 2 */
    lsf_sbuf out = {0};
    lsf_posmap map = {0};
    lsf_errbuf err = {{0}};
    assert_int_equal(lsf_pattern_expand("ab%{INT}c", NULL, NULL, 0, &out, &map, &at, &err), 0);
    assert_int_equal(map.n, out.len);
    assert_int_equal(map.v[0], 0);
    assert_int_equal(map.v[1], 1);
    assert_int_equal(map.v[2], 2);
    assert_int_equal(map.v[out.len - 2], 2);
    assert_int_equal(map.v[out.len - 1], 8);
    lsf_sbuf_free(&out);
    lsf_posmap_free(&map);
}

static void test_nested_quantifier(void **state)
{
    (void)state;
    static const struct {
        const char *re;
        long at; /* -1: no warning */
    } rows[] = {
        {"(a+)+", 0},
        {"x(\\w+\\s?)*$", 1},
        {"^(.*,)+$", 1},
        {"(?:a*)*", 0},
        {"((ab)+)+", 0},
        {"(a|b+)+", 0},
        {"(x+){2,}", 0},
        {"(?<n>\\d+)+", 0},
        {"(a+)+b", 0},
        /* separated iterations, bounded repeats, possessive and atomic: fine */
        {"(?:\\.[a-z]+)*", -1},
        {"(?:/[^\\s/]*)+", -1},
        {"(?:[^\"\\\\]|\\\\.)*", -1},
        {"(a+){3}", -1},
        {"(a+)?", -1},
        {"(a++)+", -1},
        {"(?>a+)+", -1},
        {"(a+)++", -1},
        {"(a{1,5})+", -1},
        {"[(a+)+]", -1},
        {"\\(a+\\)+", -1},
        {"(?i)(?:foo|bar)+", -1},
        {"(?<=a+)b", -1},
    };
    for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
        long got = lsf_pattern_nested_quantifier(rows[i].re);
        if (got != rows[i].at)
            fail_msg("%s: got %ld want %ld", rows[i].re, got, rows[i].at);
    }
    /* the library itself is clean */
    for (int i = 0; lsf_stdlib_names[i]; i++) {
        const char *body = lsf_stdlib_pattern(lsf_stdlib_names[i], strlen(lsf_stdlib_names[i]));
        assert_non_null(body);
        if (lsf_pattern_nested_quantifier(body) >= 0)
            fail_msg("library pattern %s is flagged", lsf_stdlib_names[i]);
    }
}

static void test_literals(void **state)
{
    (void)state;
    static const struct {
        const char *re, *want; /* want: literals joined by '|', or NULL: not modelled */
        bool caseless;
    } rows[] = {
        {"^Failed (?<_g0>\\S+) for (?:invalid user )?(?<_g1>\\S+) from", "Failed | for | from", false},
        {"\" (?<_g0>5\\d\\d) ", "\" 5| ", false}, /* a plain group continues the literal */
        {"id=(?:42) ok(?<_g0>x|y)z", "id=42 ok|z", false},
        {"abc|def", "", false},
        {"a(?:bc|de)f", "a|f", false},
        {"x(?:ab(?:cd)?e)f", "xab|ef", false},
        {"x(?:yz)?w", "x|w", false},
        {"x(?:yz)*w(?:uv)+t", "x|w|uv|t", false},
        {"ab+c", "ab|c", false},
        {"ab*c", "a|c", false},
        {"ab?c", "a|c", false},
        {"a{2}bc", "a|bc", false},
        {"(abc){0,2}d", "d", false},
        {"ab{,3}c", "a|c", false}, /* a repeat from PCRE2 10.43 on: read as optional */
        {"a\\.b\\[c\\]", "a.b[c]", false},
        {"(?i)Foo", "Foo", true},
        {"x(?i:Bar)y", "xBary", true},
        {"\\QA.B\\E!", "A.B!", false},
        {"a(?=bc)d(?<!x)e", "a|d|e", false}, /* lookarounds cut, conservatively */
        {"a\\tb\\d+ms$", "a|b|ms", false},
        {"\\bword\\b here", "word here", false},
        {"a\\x41b\\101c\\cAd\\g{-1}e\\k<n>f", "a|b|c|d|e|f", false},
        {"[abc]de.f", "de|f", false},
        {"abc(?#comment)def", "abcdef", false},
        {"(?x) a b", NULL, false},
        {"(*UTF)abc", NULL, false},
        {"+abc", NULL, false},
    };
    for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
        lsf_litset ls;
        int rc = lsf_pattern_literals(rows[i].re, &ls);
        if (!rows[i].want) {
            if (rc == 0)
                fail_msg("%s: modelled, wanted a refusal", rows[i].re);
            continue;
        }
        if (rc < 0)
            fail_msg("%s: refused", rows[i].re);
        char got[256] = "";
        for (size_t k = 0; k < ls.n; k++)
            snprintf(got + strlen(got), sizeof(got) - strlen(got), "%s%s", k ? "|" : "", ls.v[k]);
        if (strcmp(got, rows[i].want) != 0)
            fail_msg("%s: got '%s' want '%s'", rows[i].re, got, rows[i].want);
        assert_int_equal(ls.caseless, rows[i].caseless);
        lsf_litset_free(&ls);
    }
}

/* Compiles "^(?:%{NAME})$" like the rule compiler (or with the prefilter
 * stand-ins) and matches s. */
static bool whole_match(const char *name, const char *s, bool prefilter)
{
    char src[128];
    snprintf(src, sizeof(src), "^%%{%s}$", name);
    lsf_errbuf err = {{0}};
    char *ex;
    if (prefilter) {
        lsf_sbuf out = {0};
        if (lsf_pattern_expand_prefilter(src, NULL, NULL, 0, &out, &err) < 0)
            fail_msg("%s: %s", name, err.msg);
        ex = lsf_sbuf_take(&out);
    } else {
        ex = expand(src, NULL, &err);
    }
    if (!ex)
        fail_msg("%s: %s", name, err.msg);
    lsf_sbuf rn = {0};
    lsf_group_name *names;
    uint32_t n;
    assert_int_equal(lsf_pattern_rename_groups(ex, &rn, NULL, &names, &n, &at, &err), 0);
    int ec;
    PCRE2_SIZE eo;
    pcre2_code *c = pcre2_compile((PCRE2_SPTR)rn.p, PCRE2_ZERO_TERMINATED, 0, &ec, &eo, NULL);
    if (!c)
        fail_msg("%s does not compile at %zu", name, (size_t)eo);
    pcre2_match_data *md = pcre2_match_data_create_from_pattern(c, NULL);
    int rc = pcre2_match(c, (PCRE2_SPTR)s, strlen(s), 0, 0, md, NULL);
    pcre2_match_data_free(md);
    pcre2_code_free(c);
    lsf_group_names_free(names, n);
    lsf_sbuf_free(&rn);
    free(ex);
    return rc > 0;
}

static void test_stdlib(void **state)
{
    (void)state;
    static const struct {
        const char *name, *s;
        bool ok;
    } rows[] = {
        {"INT", "-42", true},             {"INT", "4a", false},
        {"POSINT", "0042", true},         {"NUMBER", "-1.5e3", true},
        {"NUMBER", ".5", true},           {"NUMBER", "1.", true},
        {"NUMBER", "e3", false},          {"BASE16NUM", "0x1F", true},
        {"WORD", "abc_1", true},          {"WORD", "a-b", false},
        {"NOTSPACE", "a-b/c", true},      {"NOTSPACE", "a b", false},
        {"QUOTEDSTRING", "\"a \\\"b\\\" c\"", true},
        {"QUOTEDSTRING", "'it''", false}, {"QUOTEDSTRING", "'x'", true},
        {"UUID", "123e4567-e89b-12d3-a456-426614174000", true},
        {"UUID", "123e4567-e89b-12d3-a456-42661417400", false},
        {"MAC", "00:16:3e:AA:bb:cc", true}, {"MAC", "00-16-3e-aa-bb-cc", true},
        {"MAC", "0016.3eaa.bbcc", true},  {"MAC", "00:16:3e:aa:bb", false},
        {"IPV4", "203.0.113.9", true},    {"IPV4", "255.255.255.255", true},
        {"IPV4", "256.1.1.1", false},     {"IPV4", "1.2.3", false},
        {"IPV4", "1.2.3.4.5", false},
        {"IPV6", "2001:db8::1", true},    {"IPV6", "::", true},
        {"IPV6", "::1", true},            {"IPV6", "fe80::", true},
        {"IPV6", "2001:db8:0:0:1:0:0:1", true},
        {"IPV6", "2001:0db8:85a3:0000:0000:8a2e:0370:7334", true},
        {"IPV6", "1::", true},            {"IPV6", "1:2:3:4:5:6:7::", true},
        {"IPV6", "::ffff:192.0.2.128", true}, {"IPV6", "64:ff9b::192.0.2.33", true},
        {"IPV6", "1:2:3:4:5:6:192.0.2.1", true},
        {"IPV6", "fe80::1%eth0", true},   {"IPV6", "2001:db8:::1", false},
        {"IPV6", "12345::1", false},      {"IPV6", "1.2.3.4", false},
        {"IP", "192.0.2.1", true},        {"IP", "2001:db8::17", true},
        {"IP", "example.com", false},
        {"HOSTNAME", "mail.example.com", true}, {"HOSTNAME", "host-1", true},
        {"HOSTNAME", "-bad", false},      {"IPORHOST", "192.0.2.1", true},
        {"IPORHOST", "a.example", true},  {"HOSTPORT", "a.example:443", true},
        {"USER", "alice.b-1", true},      {"USER", "a b", false},
        {"EMAIL", "alice+tag@example.com", true}, {"EMAIL", "alice@", false},
        {"UNIXPATH", "/var/log/syslog", true}, {"WINPATH", "C:\\Windows\\System32", true},
        {"PATH", "/tmp", true},
        {"URI", "https://user:pw@www.example.com:8443/a/b.php?x=1&y=%20#frag", true},
        {"URI", "http://192.0.2.1/", true}, {"URI", "ftp://[", false},
        {"URIPATHPARAM", "/search?q=a+b", true},
        {"TIMESTAMP_ISO8601", "2024-03-03T10:00:01.123456+01:00", true},
        {"TIMESTAMP_ISO8601", "2024-03-03 10:00:01,5Z", true},
        {"TIMESTAMP_ISO8601", "2024-03-03T10:00", true},
        {"TIMESTAMP_ISO8601", "03-03-2024T10:00:01", false},
        {"SYSLOGTIMESTAMP", "Mar  3 10:00:01", true}, {"SYSLOGTIMESTAMP", "Dec 10 06:55:46", true},
        {"SYSLOGTIMESTAMP", "Foo 10 06:55:46", false},
        {"HTTPDATE", "10/Oct/2000:13:55:36 -0700", true}, {"HTTPDATE", "10/Oct/2000 13:55:36", false},
        {"DATE_US", "03/31/2024", true},  {"DATE_EU", "31.03.2024", true},
        {"LOGLEVEL", "WARNING", true},    {"LOGLEVEL", "err", true},
        {"LOGLEVEL", "Informational", true}, {"LOGLEVEL", "verbose", false},
        {"TIME", "23:59:60", true},       {"TIME", "24:00", false},
        {"HTTPMETHOD", "GET", true},      {"HTTPVERSION", "HTTP/1.1", true},
    };
    for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
        if (whole_match(rows[i].name, rows[i].s, false) != rows[i].ok)
            fail_msg("%%{%s} on '%s': expected %s", rows[i].name, rows[i].s,
                     rows[i].ok ? "a match" : "no match");
        /* the prefilter stand-in accepts everything the real pattern does */
        if (rows[i].ok && !whole_match(rows[i].name, rows[i].s, true))
            fail_msg("the prefilter stand-in of %%{%s} misses '%s'", rows[i].name, rows[i].s);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_expand),          cmocka_unit_test(test_expand_errors),
        cmocka_unit_test(test_rename),          cmocka_unit_test(test_position_map),
        cmocka_unit_test(test_nested_quantifier), cmocka_unit_test(test_stdlib),
        cmocka_unit_test(test_literals),
    };
    return cmocka_run_group_tests(tests, setup, NULL);
}
