/* test_config.c - YAML loading with positions, key binding, unit parsing. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <string.h>

#include "core/config.h"

typedef struct demo_conf {
    char *listen;
    int64_t count;
    bool on;
    int64_t size;
    int64_t wait_ms;
    int mode;
    lsf_strlist names;
    const lsf_node *extra;
} demo_conf;

static const lsf_key demo_keys[] = {
    {"listen", LSF_K_STR, "127.0.0.1:5514", "address", offsetof(demo_conf, listen), NULL, 0, 0, false},
    {"count", LSF_K_INT, "3", "a count", offsetof(demo_conf, count), NULL, 1, 100, false},
    {"on", LSF_K_BOOL, "false", "a switch", offsetof(demo_conf, on), NULL, 0, 0, false},
    {"size", LSF_K_SIZE, "64KiB", "a size", offsetof(demo_conf, size), NULL, 0, 0, false},
    {"wait", LSF_K_DURATION, "10s", "a duration", offsetof(demo_conf, wait_ms), NULL, 0, 0, false},
    {"mode", LSF_K_ENUM, "auto", "a mode", offsetof(demo_conf, mode), "auto|newline|octet", 0, 0, false},
    {"names", LSF_K_STRLIST, NULL, "names", offsetof(demo_conf, names), NULL, 0, 0, false},
    {"extra", LSF_K_NODE, NULL, "anything", offsetof(demo_conf, extra), NULL, 0, 0, false},
    LSF_KEYS_END,
};

/* Binds `yaml` (a map) and returns 0/-1; err holds the message. */
static int bind_text(const char *yaml, demo_conf *c, lsf_errbuf *err, lsf_node **root)
{
    memset(c, 0, sizeof(*c));
    *root = lsf_yaml_load_string("t.yaml", yaml, err);
    if (!*root)
        return -1;
    return lsf_conf_bind(c, demo_keys, *root, (const char *const[]){"path", NULL}, err);
}

static void test_defaults_and_values(void **state)
{
    (void)state;
    demo_conf c;
    lsf_errbuf err = {{0}};
    lsf_node *root;
    assert_int_equal(bind_text("path: ignored\ncount: 7\non: yes\nsize: 1MiB\nwait: 250ms\nmode: octet\n"
                               "names: [a, b]\nextra: {x: 1}\n",
                               &c, &err, &root),
                     0);
    assert_string_equal(c.listen, "127.0.0.1:5514");
    assert_int_equal(c.count, 7);
    assert_true(c.on);
    assert_int_equal(c.size, 1048576);
    assert_int_equal(c.wait_ms, 250);
    assert_int_equal(c.mode, 2);
    assert_int_equal(c.names.n, 2);
    assert_string_equal(c.names.v[1], "b");
    assert_non_null(c.extra);
    assert_int_equal(c.extra->kind, LSF_NODE_MAP);
    lsf_conf_free(&c, demo_keys);
    lsf_node_free(root);
}

static const struct bad_case {
    const char *yaml;
    const char *error; /* expected message, with position */
} bad_cases[] = {
    {"cuont: 7\n", "t.yaml:1:1: unknown key 'cuont' (did you mean 'count'?)"},
    {"count: 7\nzzzzzz: 1\n", "t.yaml:2:1: unknown key 'zzzzzz'"},
    {"count: seven\n", "t.yaml:1:8: count: expected an integer, got 'seven'"},
    {"count: 500\n", "t.yaml:1:8: count: 500 is out of range [1, 100]"},
    {"on: maybe\n", "t.yaml:1:5: on: expected true or false, got 'maybe'"},
    {"size: lots\n", "t.yaml:1:7: size: expected a size such as 65536 or 64KiB, got 'lots'"},
    {"wait: 5 fortnights\n", "t.yaml:1:7: wait: expected a duration such as 500ms, 10s or 5m, got '5 fortnights'"},
    {"mode: fast\n", "t.yaml:1:7: mode: expected one of auto|newline|octet, got 'fast'"},
    {"listen: [a, b]\n", "t.yaml:1:9: listen: expected a string, got a list"},
    {"count: 1\ncount: 2\n", "t.yaml:2:1: duplicate key 'count' (first at line 1)"},
    {"count: [1\n", "t.yaml:2:1: YAML syntax error"},
    {"- a\n- b\n", "t.yaml:1:1: expected a map of settings"},
};

static void test_bad_values_have_positions(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(bad_cases) / sizeof(bad_cases[0]); i++) {
        demo_conf c;
        lsf_errbuf err = {{0}};
        lsf_node *root = NULL;
        int rc = bind_text(bad_cases[i].yaml, &c, &err, &root);
        if (rc == 0 || strncmp(err.msg, bad_cases[i].error, strlen(bad_cases[i].error)) != 0)
            fail_msg("case %zu: expected '%s', got '%s' (rc %d)", i, bad_cases[i].error, err.msg, rc);
        lsf_conf_free(&c, demo_keys);
        lsf_node_free(root);
    }
}

static void test_required_key(void **state)
{
    (void)state;
    static const lsf_key keys[] = {
        {"path", LSF_K_STR, NULL, "p", 0, NULL, 0, 0, true},
        LSF_KEYS_END,
    };
    char *path = NULL;
    lsf_errbuf err = {{0}};
    lsf_node *root = lsf_yaml_load_string("r.yaml", "{}\n", &err);
    assert_non_null(root);
    assert_int_equal(lsf_conf_bind(&path, keys, root, NULL, &err), -1);
    assert_string_equal(err.msg, "r.yaml:1:1: missing required key 'path'");
    lsf_node_free(root);
}

static void test_units(void **state)
{
    (void)state;
    static const struct { const char *s; int64_t v; } sizes[] = {
        {"0", 0}, {"512", 512}, {"64KiB", 65536}, {"64k", 65536}, {"1MB", 1000000},
        {"2 GiB", 2147483648LL}, {"1.5KiB", 1536},
    };
    for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
        int64_t v = -1;
        assert_int_equal(lsf_parse_size(sizes[i].s, &v), 0);
        assert_int_equal(v, sizes[i].v);
    }
    static const struct { const char *s; int64_t ms; } durs[] = {
        {"0", 0}, {"30", 30000}, {"500ms", 500}, {"10s", 10000}, {"5m", 300000}, {"1h", 3600000},
        {"1.5s", 1500},
    };
    for (size_t i = 0; i < sizeof(durs) / sizeof(durs[0]); i++) {
        int64_t v = -1;
        assert_int_equal(lsf_parse_duration_ms(durs[i].s, &v), 0);
        assert_int_equal(v, durs[i].ms);
    }
    int64_t v;
    assert_int_equal(lsf_parse_size("-1", &v), -1);
    assert_int_equal(lsf_parse_size("12XB", &v), -1);
    assert_int_equal(lsf_parse_duration_ms("soon", &v), -1);
    assert_int_equal(lsf_parse_int("12x", &v), -1);
}

static void test_nested_positions(void **state)
{
    (void)state;
    lsf_errbuf err = {{0}};
    lsf_node *root = lsf_yaml_load_string("n.yaml",
                                          "inputs:\n"
                                          "  - type: syslog_tcp\n"
                                          "    listen: \"127.0.0.1:0\"\n",
                                          &err);
    assert_non_null(root);
    const lsf_node *inputs = lsf_node_get(root, "inputs");
    assert_non_null(inputs);
    assert_int_equal(inputs->kind, LSF_NODE_SEQ);
    const lsf_node *listen = lsf_node_get(inputs->child, "listen");
    assert_non_null(listen);
    assert_string_equal(listen->str, "127.0.0.1:0");
    assert_true(listen->quoted);
    assert_int_equal(listen->line, 3);
    assert_int_equal(listen->col, 13);
    assert_int_equal(listen->key_line, 3);
    assert_int_equal(listen->key_col, 5);
    lsf_node_free(root);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_defaults_and_values),
        cmocka_unit_test(test_bad_values_have_positions),
        cmocka_unit_test(test_required_key),
        cmocka_unit_test(test_units),
        cmocka_unit_test(test_nested_positions),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
