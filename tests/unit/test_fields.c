/* test_fields.c - unit tests of the `fields` transform: rename (objects
 * move whole, onto and off the well-known syslog fields, replacing what was
 * at the new name), remove (objects, prefixes, well-known fields and their
 * aliases), add and defaults (typed values), add_tags, the order of the
 * steps, and config errors with positions.
 * Threads: single-threaded.
 */
#include "enrich_test.h"

static void test_rename(void **state)
{
    (void)state;
    tstage t;
    ts_open_ok(&t, 1,
               "  - type: fields\n"
               "    rename: {src: source, hostname: host.name, host.name: observer.hostname, "
               "usr: user.name}\n");
    lsf_batch *b = lsf_batch_new(4);
    lsf_event *e0 = ev_with(b, "src.ip", "192.0.2.1", "src.port", "5", "src", "leaf",
                            "source.ip", "old", "source.geo.x", "old", "srcx", "keep", NULL);
    lsf_event *e1 = ev_with(b, "hostname", "web9", NULL);
    lsf_event *e2 = ev_with(b, "usr", "alice", NULL);
    e2->host = LSF_STR_LIT("fromsyslog");
    ts_run(&t, b, 0);
    /* src and everything below it moved; what was at source went */
    assert_field(e0, "source.ip", "192.0.2.1");
    assert_field(e0, "source.port", "5");
    assert_field(e0, "source", "leaf");
    assert_no_field(e0, "source.geo.x");
    assert_no_field(e0, "src.ip");
    assert_field(e0, "srcx", "keep"); /* only whole components match */
    /* hostname -> host.name fills the well-known member ... then host.name moves on */
    assert_field(e1, "observer.hostname", "web9");
    assert_null(e1->host.ptr);
    /* a well-known field moves to a dynamic one */
    assert_field(e2, "observer.hostname", "fromsyslog");
    assert_null(e2->host.ptr);
    assert_field(e2, "user.name", "alice");
    assert_int_equal(ts_counter(&t, "changed"), 3);
    lsf_batch_free(b);
    ts_close(&t);
}

static void test_remove(void **state)
{
    (void)state;
    tstage t;
    ts_open_ok(&t, 1,
               "  - type: fields\n"
               "    remove: [secret, \"tmp_*\", \"labels.*\", log.syslog, message, "
               "log.syslog.hostname]\n");
    lsf_batch *b = lsf_batch_new(4);
    lsf_event *e0 = ev_with(b, "secret", "s", "secret.a", "1", "secretive", "stays", "tmp_1", "x",
                            "tmp_", "y", "labels.a", "1", "labels", "stays", NULL);
    e0->pri = 38;
    e0->version = 1;
    e0->msgid = LSF_STR_LIT("ID1");
    e0->app = LSF_STR_LIT("sshd");
    e0->message = LSF_STR_LIT("hello");
    lsf_event *e1 = lsf_batch_push(b);
    e1->host = LSF_STR_LIT("h");
    ts_run(&t, b, 0);
    assert_no_field(e0, "secret");
    assert_no_field(e0, "secret.a");
    assert_field(e0, "secretive", "stays");
    assert_no_field(e0, "tmp_1");
    assert_no_field(e0, "tmp_");
    assert_no_field(e0, "labels.a");
    assert_field(e0, "labels", "stays"); /* "labels.*" is below labels only */
    assert_int_equal(e0->pri, -1);
    assert_int_equal(e0->version, 0);
    assert_null(e0->msgid.ptr);
    assert_null(e0->message.ptr);
    assert_string_equal(fval(e0, "process.name"), "sshd"); /* an alias: kept by log.syslog */
    assert_null(e1->host.ptr); /* named exactly: removes host.name too (one value) */
    lsf_batch_free(b);
    ts_close(&t);
}

static void test_add_defaults_tags(void **state)
{
    (void)state;
    tstage t;
    ts_open_ok(&t, 1,
               "  - type: fields\n"
               "    add: {service.environment: production, event.risk: 5, labels.ok: true, "
               "x.ratio: 0.5, x.quoted: \"7\", x.word: yes, host.name: fixed}\n"
               "    defaults: {user.department: unknown, service.environment: never}\n"
               "    add_tags: [shaped, enriched]\n");
    lsf_batch *b = lsf_batch_new(4);
    lsf_event *e0 = ev_with(b, "user.department", "finance", NULL);
    lsf_event *e1 = lsf_batch_push(b);
    lsf_event *e2 = lsf_batch_push(b);
    e2->flags |= LSF_EV_DROPPED;
    ts_run(&t, b, 0);
    assert_field(e0, "service.environment", "production");
    assert_int_equal(ftype(e0, "event.risk"), LSF_T_INT);
    assert_field(e0, "event.risk", "5");
    assert_int_equal(ftype(e0, "labels.ok"), LSF_T_BOOL);
    assert_int_equal(ftype(e0, "x.ratio"), LSF_T_FLOAT);
    assert_int_equal(ftype(e0, "x.quoted"), LSF_T_STR);
    assert_field(e0, "x.quoted", "7");
    assert_field(e0, "x.word", "yes"); /* only true/false are booleans */
    assert_string_equal(fval(e0, "host.name"), "fixed");
    assert_int_equal(e0->host.len, 5); /* the well-known member */
    assert_field(e0, "user.department", "finance");
    assert_field(e1, "user.department", "unknown");
    assert_field(e1, "service.environment", "production"); /* add came first */
    assert_int_equal(e1->ntags, 2);
    assert_true(lsf_str_eq_cstr(e1->tags[0], "shaped"));
    assert_true(lsf_str_eq_cstr(e1->tags[1], "enriched"));
    assert_int_equal(e2->nfields, 0);
    assert_int_equal(e2->ntags, 0);
    lsf_batch_free(b);
    ts_close(&t);
}

static void test_order(void **state)
{
    (void)state;
    tstage t;
    /* rename, then remove, then add: a renamed field can be removed by its new
     * name, and add can put back a name that was removed */
    ts_open_ok(&t, 1,
               "  - type: fields\n"
               "    add: {a: added}\n"
               "    remove: [b, a]\n"
               "    rename: {x: b, y: z}\n");
    lsf_batch *b = lsf_batch_new(2);
    lsf_event *e = ev_with(b, "x", "1", "y", "2", "a", "orig", NULL);
    ts_run(&t, b, 0);
    assert_no_field(e, "b");
    assert_no_field(e, "x");
    assert_field(e, "z", "2");
    assert_field(e, "a", "added");
    lsf_batch_free(b);
    ts_close(&t);
}

static void test_fields_errors(void **state)
{
    (void)state;
    static const struct {
        const char *yaml, *want;
    } cases[] = {
        {"  - type: fields\n", "t.yaml:6:5: fields: nothing to do"},
        {"  - type: fields\n    rename: [a, b]\n", "t.yaml:7:13: rename: expected a map"},
        {"  - type: fields\n    rename: {a: [b]}\n", "rename: a: expected the new name"},
        {"  - type: fields\n    rename: {\"a b\": c}\n", "t.yaml:7:14: rename: 'a b' is not"},
        {"  - type: fields\n    rename: {a: \"b*\"}\n", "only remove takes a trailing *"},
        {"  - type: fields\n    remove: {a: b}\n", "remove: expected a list"},
        {"  - type: fields\n    remove: [\"a..b\"]\n", "remove: 'a..b' is not a field name"},
        {"  - type: fields\n    add: [a]\n", "add: expected a map"},
        {"  - type: fields\n    add: {a: {b: c}}\n", "add: a: expected a single value"},
        {"  - type: fields\n    defaults: {\".a\": 1}\n", "defaults: '.a' is not a field name"},
        {"  - type: fields\n    add_tags: [\"\"]\n", "add_tags: a tag cannot be empty"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        const char *e = ts_error(cases[i].yaml);
        if (!strstr(e, cases[i].want))
            fail_msg("case %zu: '%s' does not say '%s'", i, e, cases[i].want);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rename),
        cmocka_unit_test(test_remove),
        cmocka_unit_test(test_add_defaults_tags),
        cmocka_unit_test(test_order),
        cmocka_unit_test(test_fields_errors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
