/* test_kafka_conf.c - unit tests of what the Kafka sink and input share
 * (sinks/kafka_conf.c): topic templates (compile errors, rendering, missing
 * fields, characters Kafka refuses, the length limit), broker lists with the
 * position of a bad entry, and librdkafka configuration built from
 * pass-through keys (nested maps, lists, unknown and invalid properties,
 * properties a stage sets itself).
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
#include "core/stage.h"
#include "sinks/kafka_conf.h"

/* ---- templates ------------------------------------------------------------ */

static lsf_node *load(const char *yaml)
{
    lsf_errbuf err;
    lsf_node *n = lsf_yaml_load_string("t.yaml", yaml, &err);
    if (!n)
        fail_msg("YAML: %s", err.msg);
    return n;
}

static void expect_tpl_error(const char *text, const char *want)
{
    lsf_node *n = load("topic: x\n");
    lsf_kafka_tpl t;
    lsf_errbuf err = {{0}};
    assert_int_equal(lsf_kafka_tpl_compile(&t, text, n->child, "topic", &err), -1);
    if (!strstr(err.msg, want) || !strstr(err.msg, "t.yaml:1:8: "))
        fail_msg("'%s': got '%s', want '%s'", text, err.msg, want);
    lsf_kafka_tpl_free(&t);
    lsf_node_free(n);
}

static void test_tpl_errors(void **state)
{
    (void)state;
    expect_tpl_error("", "must not be empty");
    expect_tpl_error("logs-{host.name", "without a closing '}'");
    expect_tpl_error("logs-}", "without an opening '{'");
    expect_tpl_error("logs-{}", "empty field name");
    expect_tpl_error("logs-{a{b}", "nested '{'");
    expect_tpl_error("logs/x", "'/' is not allowed");
    expect_tpl_error("..", "not a valid topic name");
    char longname[300];
    memset(longname, 'a', 260);
    longname[260] = 0;
    expect_tpl_error(longname, "longer than 249");
}

static void test_tpl_render(void **state)
{
    (void)state;
    lsf_batch *b = lsf_batch_new(4);
    lsf_event *ev = lsf_batch_push(b);
    ev->host = LSF_STR_LIT("web 1/a"); /* characters Kafka refuses become '_' */
    lsf_event_set_str(b, ev, LSF_STR_LIT("user.name"), LSF_STR_LIT("bob"));
    lsf_event_set_int(b, ev, LSF_STR_LIT("http.status"), 404);
    lsf_event_set_str(b, ev, LSF_STR_LIT("empty"), LSF_STR_LIT(""));
    lsf_errbuf err;
    lsf_kafka_tpl t;
    char out[LSF_KAFKA_TOPIC_MAX + 1];
    bool missing = false;

    assert_int_equal(lsf_kafka_tpl_compile(&t, "logs", NULL, "topic", &err), 0);
    assert_true(t.is_static);
    assert_int_equal(lsf_kafka_tpl_render(&t, ev, "_unknown", out, &missing), 4);
    assert_string_equal(out, "logs");
    lsf_kafka_tpl_free(&t);

    assert_int_equal(
        lsf_kafka_tpl_compile(&t, "logs-{host.name}.{user.name}-{http.status}", NULL, "t", &err),
        0);
    assert_false(t.is_static);
    lsf_kafka_tpl_render(&t, ev, "_unknown", out, &missing);
    assert_string_equal(out, "logs-web_1_a.bob-404");
    assert_false(missing);
    lsf_kafka_tpl_free(&t);

    /* A missing field and an empty one render as the stand-in. */
    assert_int_equal(lsf_kafka_tpl_compile(&t, "x-{source.ip}-{empty}", NULL, "t", &err), 0);
    lsf_kafka_tpl_render(&t, ev, "_unknown", out, &missing);
    assert_string_equal(out, "x-_unknown-_unknown");
    assert_true(missing);
    lsf_kafka_tpl_free(&t);

    /* Long values are cut at Kafka's limit. */
    char big[400];
    memset(big, 'v', sizeof(big));
    lsf_event_set_str(b, ev, LSF_STR_LIT("big"), lsf_str_make(big, sizeof(big)));
    assert_int_equal(lsf_kafka_tpl_compile(&t, "t-{big}", NULL, "t", &err), 0);
    assert_int_equal(lsf_kafka_tpl_render(&t, ev, "_unknown", out, &missing), LSF_KAFKA_TOPIC_MAX);
    assert_int_equal(strlen(out), LSF_KAFKA_TOPIC_MAX);
    lsf_kafka_tpl_free(&t);
    lsf_batch_free(b);
}

/* ---- brokers and librdkafka configuration ---------------------------------- */

typedef struct stage_fix {
    lsf_stage st;
    lsf_node *root;
} stage_fix;

static void stage_load(stage_fix *f, const char *yaml)
{
    memset(f, 0, sizeof(*f));
    f->root = load(yaml);
    f->st.node = f->root;
    f->st.name = "k";
}

static void test_brokers(void **state)
{
    (void)state;
    stage_fix f;
    stage_load(&f, "brokers:\n  - a:9092\n  - \"[::1]:9093\"\n  - SSL://b.example:9094\n  - c\n");
    lsf_strlist l = {(char *[]){"a:9092", "[::1]:9093", "SSL://b.example:9094"}, 3};
    char out[256];
    lsf_errbuf err;
    assert_int_equal(lsf_kafka_brokers(&f.st, &l, out, sizeof(out), &err), 0);
    assert_string_equal(out, "a:9092,[::1]:9093,SSL://b.example:9094");
    const char *bad[][2] = {{"c", "want host:port"},
                            {":9092", "the host is missing"},
                            {"a:", "the port is missing"},
                            {"a:0", "1-65535"},
                            {"a:70000", "1-65535"},
                            {"a:x1", "must be a number"},
                            {"::1:9092", "[address]:port"},
                            {"[::1]9092", "[IPv6-address]:port"},
                            {"a,b:1", "one broker per list item"}};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        lsf_strlist one = {(char *[]){"a:1", "b:2", "c:3", (char *)bad[i][0]}, 4};
        assert_int_equal(lsf_kafka_brokers(&f.st, &one, out, sizeof(out), &err), -1);
        if (!strstr(err.msg, bad[i][1]))
            fail_msg("'%s': %s", bad[i][0], err.msg);
        /* The 4th list item of the YAML is on line 5. */
        assert_non_null(strstr(err.msg, "t.yaml:5:5: "));
    }
    lsf_strlist none = {NULL, 0};
    assert_int_equal(lsf_kafka_brokers(&f.st, &none, out, sizeof(out), &err), -1);
    lsf_node_free(f.root);
}

static void test_conf_passthrough(void **state)
{
    (void)state;
    stage_fix f;
    stage_load(&f, "kafka:\n"
                   "  client.rack: r1\n"
                   "  ssl:\n"
                   "    endpoint.identification.algorithm: none\n"
                   "  debug: [broker, topic]\n");
    const char *props[][2] = {{"bootstrap.servers", "a:1"}, {"linger.ms", "7"}, {NULL, NULL}};
    lsf_errbuf err;
    rd_kafka_conf_t *c = lsf_kafka_conf_new(&f.st, props, NULL, &err);
    assert_non_null(c);
    char v[128];
    size_t n = sizeof(v);
    assert_int_equal(rd_kafka_conf_get(c, "client.rack", v, &n), RD_KAFKA_CONF_OK);
    assert_string_equal(v, "r1");
    n = sizeof(v);
    assert_int_equal(rd_kafka_conf_get(c, "ssl.endpoint.identification.algorithm", v, &n),
                     RD_KAFKA_CONF_OK);
    assert_string_equal(v, "none");
    n = sizeof(v);
    assert_int_equal(rd_kafka_conf_get(c, "linger.ms", v, &n), RD_KAFKA_CONF_OK);
    assert_string_equal(v, "7");
    n = sizeof(v);
    assert_int_equal(rd_kafka_conf_get(c, "debug", v, &n), RD_KAFKA_CONF_OK);
    assert_non_null(strstr(v, "broker"));
    assert_non_null(strstr(v, "topic"));
    rd_kafka_conf_destroy(c);
    lsf_node_free(f.root);

    const char *cases[][3] = {
        {"kafka:\n  no.such: 1\n", "t.yaml:2:3: ", "unknown librdkafka property 'no.such'"},
        {"kafka:\n  linger.ms: soon\n", "t.yaml:2:3: ", "kafka: linger.ms: "},
        {"kafka:\n  acks: 1\n", "t.yaml:2:3: ", "set by this stage's 'acks' key"},
        {"kafka:\n  enable.auto.commit: true\n", "t.yaml:2:3: ", "cannot be set here: no"},
        {"kafka: [a]\n", "t.yaml:1:8: ", "expected a map of librdkafka properties"},
    };
    const char *reserved[] = {"acks=acks", "enable.auto.commit=!no", NULL};
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        stage_load(&f, cases[i][0]);
        lsf_errbuf e = {{0}};
        assert_null(lsf_kafka_conf_new(&f.st, props, reserved, &e));
        if (!strstr(e.msg, cases[i][1]) || !strstr(e.msg, cases[i][2]))
            fail_msg("case %zu: %s", i, e.msg);
        lsf_node_free(f.root);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_tpl_errors),
        cmocka_unit_test(test_tpl_render),
        cmocka_unit_test(test_brokers),
        cmocka_unit_test(test_conf_passthrough),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
