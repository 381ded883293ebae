/* test_json_scan.c - the strict zero-copy JSON scanner: what is and is not
 * JSON, decoded strings, numbers, raw spans, compaction. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <string.h>

#include "parsers/json_scan.h"

typedef struct seen {
    char text[512];
} seen;

/* Appends "key=kind:value;" for each member. */
static void record(void *arg, lsf_str key, const lsf_jval *v)
{
    seen *s = arg;
    size_t n = strlen(s->text);
    char val[256];
    switch (v->kind) {
    case LSF_J_STR: snprintf(val, sizeof(val), "s:%.*s", (int)v->s.len, v->s.ptr); break;
    case LSF_J_INT: snprintf(val, sizeof(val), "i:%lld", (long long)v->i); break;
    case LSF_J_FLOAT: snprintf(val, sizeof(val), "f:%g", v->f); break;
    case LSF_J_TRUE: snprintf(val, sizeof(val), "true"); break;
    case LSF_J_FALSE: snprintf(val, sizeof(val), "false"); break;
    case LSF_J_NULL: snprintf(val, sizeof(val), "null"); break;
    default: snprintf(val, sizeof(val), "raw:%.*s", (int)v->raw.len, v->raw.ptr); break;
    }
    snprintf(s->text + n, sizeof(s->text) - n, "%.*s=%s;", (int)key.len, key.ptr, val);
}

static const struct {
    const char *in;
    const char *want; /* NULL: must be rejected */
} cases[] = {
    {"{}", ""},
    {"  { } \n", ""},
    {"{\"a\":1}", "a=i:1;"},
    {"{\"a\":-0,\"b\":1.5e3,\"c\":9223372036854775808}", "a=i:0;b=f:1500;c=f:9.22337e+18;"},
    {"{\"s\":\"x\\\"y\\\\z\\/\\n\"}", "s=s:x\"y\\z/\n;"},
    {"{\"u\":\"\\u00e9\\ud83d\\ude00\"}", "u=s:\xc3\xa9\xf0\x9f\x98\x80;"},
    {"{\"n\":\"\\u0000\"}", "n=s:;"}, /* a NUL byte: printed as an empty C string */
    {"{\"t\":true,\"f\":false,\"z\":null}", "t=true;f=false;z=null;"},
    {"{\"o\":{\"k\":[1, 2]},\"a\":[]}", "o=raw:{\"k\":[1, 2]};a=raw:[];"},
    {"{\"k\\u0041\":1}", "kA=i:1;"},
    {"{\"utf8\":\"h\xc3\xa9\"}", "utf8=s:h\xc3\xa9;"},
    /* not JSON */
    {"", NULL},
    {"[1]", NULL},
    {"{\"a\":1,}", NULL},
    {"{\"a\":01}", NULL},
    {"{\"a\":1.}", NULL},
    {"{\"a\":.5}", NULL},
    {"{\"a\":1e}", NULL},
    {"{\"a\":+1}", NULL},
    {"{a:1}", NULL},
    {"{\"a\" 1}", NULL},
    {"{\"a\":1} x", NULL},
    {"{\"a\":1}{}", NULL},
    {"{\"a\":\"\\x\"}", NULL},
    {"{\"a\":\"\\ud800\"}", NULL},
    {"{\"a\":\"\\udc00\"}", NULL},
    {"{\"a\":\"\\ud800\\u0041\"}", NULL},
    {"{\"a\":\"\\u12\"}", NULL},
    {"{\"a\":\"tab\there\"}", NULL},
    {"{\"a\":\"\xff\"}", NULL},
    {"{\"a\":\"\xc0\xaf\"}", NULL},      /* overlong */
    {"{\"a\":\"\xed\xa0\x80\"}", NULL},  /* encoded surrogate */
    {"{\"a\":\"\xf4\x90\x80\x80\"}", NULL}, /* above U+10FFFF */
    {"{\"a\":tru}", NULL},
    {"{\"a\":nul", NULL},
    {"{\"a\":[1,2}", NULL},
    {"{\"a\":\"unterminated}", NULL},
    {"{\"a\":1", NULL},
};

static void test_cases(void **state)
{
    (void)state;
    lsf_arena arena;
    lsf_arena_init(&arena, 4096);
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        seen s = {{0}};
        int rc = lsf_json_scan_object(cases[i].in, strlen(cases[i].in), &arena, record, &s);
        if (!cases[i].want) {
            if (rc != -1)
                fail_msg("case %zu accepted: %s", i, cases[i].in);
            continue;
        }
        if (rc != 0)
            fail_msg("case %zu rejected: %s", i, cases[i].in);
        if (strcmp(s.text, cases[i].want) != 0)
            fail_msg("case %zu: want '%s', got '%s'", i, cases[i].want, s.text);
    }
    lsf_arena_deinit(&arena);
}

/* Strings are scanned 16 bytes at a time: a character that needs a decision
 * (escape, control, non-ASCII, the closing quote) must be seen at every
 * offset, also in the last, partial block. */
static void test_string_block_edges(void **state)
{
    (void)state;
    lsf_arena arena;
    lsf_arena_init(&arena, 4096);
    static const struct {
        const char *ins;  /* written into the string after `pad` letters */
        const char *want; /* decoded member value after the letters; NULL: rejected */
    } kinds[] = {
        {"\\n", "\n"}, {"\\\"", "\""}, {"\x01", NULL}, {"\x7f", "\x7f"},
        {"\xc3\xa9", "\xc3\xa9"}, {"\xff", NULL}, {"\\u0041", "A"}, {"", ""},
    };
    for (size_t k = 0; k < sizeof(kinds) / sizeof(kinds[0]); k++)
        for (int pad = 0; pad < 40; pad++)
            for (int tail = 0; tail < 20; tail += 19) {
                char in[128], want[128], letters[64];
                memset(letters, 'x', (size_t)pad);
                letters[pad] = 0;
                char after[32];
                memset(after, 'y', (size_t)tail);
                after[tail] = 0;
                snprintf(in, sizeof(in), "{\"s\":\"%s%s%s\"}", letters, kinds[k].ins, after);
                seen s = {{0}};
                int rc = lsf_json_scan_object(in, strlen(in), &arena, record, &s);
                if (!kinds[k].want) {
                    if (rc != -1)
                        fail_msg("accepted: %s", in);
                    continue;
                }
                snprintf(want, sizeof(want), "s=s:%s%s%s;", letters, kinds[k].want, after);
                if (rc != 0 || strcmp(s.text, want) != 0)
                    fail_msg("%s: want '%s', got '%s' (rc %d)", in, want, s.text, rc);
                /* cut before the closing quote: unterminated */
                size_t n = strlen(in) - 2;
                if (lsf_json_scan_object(in, n, &arena, NULL, NULL) != -1)
                    fail_msg("unterminated accepted: %.*s", (int)n, in);
            }
    lsf_arena_deinit(&arena);
}

static void test_depth_limit(void **state)
{
    (void)state;
    lsf_arena arena;
    lsf_arena_init(&arena, 4096);
    char deep[2000];
    size_t n = 0;
    n += (size_t)snprintf(deep, sizeof(deep), "{\"a\":");
    for (int i = 0; i < 500; i++)
        deep[n++] = '[';
    for (int i = 0; i < 500; i++)
        deep[n++] = ']';
    deep[n++] = '}';
    assert_int_equal(lsf_json_scan_object(deep, n, &arena, NULL, NULL), -1);
    lsf_arena_deinit(&arena);
}

static void test_compact(void **state)
{
    (void)state;
    lsf_arena arena;
    lsf_arena_init(&arena, 4096);
    lsf_str in = LSF_STR_LIT("[1, {\"a b\" : \" x \\\" y \"},\n 2 ]");
    lsf_str out = lsf_json_compact(&arena, in);
    assert_int_equal(out.len, strlen("[1,{\"a b\":\" x \\\" y \"},2]"));
    assert_memory_equal(out.ptr, "[1,{\"a b\":\" x \\\" y \"},2]", out.len);
    lsf_str tight = LSF_STR_LIT("[1,2]");
    assert_ptr_equal(lsf_json_compact(&arena, tight).ptr, tight.ptr); /* no copy */
    lsf_arena_deinit(&arena);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_cases),
        cmocka_unit_test(test_string_block_edges),
        cmocka_unit_test(test_depth_limit),
        cmocka_unit_test(test_compact),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
