/* test_rules_reload.c - the `rules` stage's reload: a pipeline is built from
 * a config (not started), the stage is initialised and fed batches by hand;
 * pack files change and SIGHUP's path (reopen) reloads them.
 * Checks: a good change takes effect for the next batch; a broken pack, or a
 * pack whose tests fail, is refused with the error logged and counted while
 * the running rules keep working; a rule set still held by a batch survives
 * the swap (so a batch uses one set from start to end) and is freed after.
 * Threads: the test thread plays a worker; the stage's reload thread reloads.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "core/log.h"
#include "core/metrics.h"
#include "core/pipeline.h"
#include "rules/rules.h"

static char dir[64];

static void write_file(const char *name, const char *text)
{
    char path[128], tmp[140];
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    snprintf(tmp, sizeof(tmp), "%s/.%s.tmp", dir, name);
    FILE *f = fopen(tmp, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
    assert_int_equal(rename(tmp, path), 0); /* as editors save */
}

static const char v1[] = "pack: demo\n"
                         "rules:\n"
                         "  - id: demo.v1\n"
                         "    match: 'hello'\n"
                         "tests:\n"
                         "  - line: 'hello there'\n"
                         "    expect: {rule.id: demo.v1}\n";
static const char v2[] = "pack: demo\n"
                         "rules:\n"
                         "  - id: demo.v2\n"
                         "    match: 'hello (?<who>\\w+)'\n"
                         "tests:\n"
                         "  - line: 'hello there'\n"
                         "    expect: {rule.id: demo.v2, who: there}\n";
static const char broken[] = "pack: demo\n"
                             "rules:\n"
                             "  - id: demo.v3\n"
                             "    match: 'hello ('\n";
static const char failing[] = "pack: demo\n"
                              "rules:\n"
                              "  - id: demo.v4\n"
                              "    match: 'hello'\n"
                              "tests:\n"
                              "  - line: 'goodbye'\n"
                              "    expect: {rule.id: demo.v4}\n";

static const char *run_batch(lsf_stage *st, lsf_batch *b, const char *line)
{
    lsf_batch_reset(b);
    lsf_batch_push_record(b, line, strlen(line), 1);
    b->events[0].message = b->events[0].raw; /* the parse stage is not run */
    assert_int_equal(st->def->process(st, b, 0), LSF_OK);
    const lsf_field *f = lsf_event_find(&b->events[0], LSF_STR_LIT("rule.id"));
    static char id[64];
    if (!f)
        return "(none)";
    snprintf(id, sizeof(id), "%.*s", (int)f->v.s.len, f->v.s.ptr);
    return id;
}

static const char *stage_name;

static uint64_t counter(const char *what)
{
    return lsf_counter_get(lsf_counter_new(stage_name, what));
}

/* Asks for a reload and waits until one of the counters moves. */
static void reload_and_wait(lsf_stage *st)
{
    uint64_t ok = counter("reloads"), bad = counter("reload_errors");
    st->def->reopen(st);
    for (int i = 0; i < 500; i++) {
        if (counter("reloads") != ok || counter("reload_errors") != bad)
            return;
        struct timespec ts = {0, 10 * 1000000};
        nanosleep(&ts, NULL);
    }
    fail_msg("no reload within 5 s");
}

static void test_reload(void **state)
{
    (void)state;
    snprintf(dir, sizeof(dir), "/tmp/lsf-reload-XXXXXX");
    assert_non_null(mkdtemp(dir));
    write_file("demo.yaml", v1);
    char yaml[512];
    snprintf(yaml, sizeof(yaml),
             "workers: 1\n"
             "log_level: error\n"
             "inputs: [{type: stdin}]\n"
             "transforms: [{type: rules, packs: [\"%s\"], watch: false}]\n"
             "sinks: [{type: stdout}]\n",
             dir);
    lsf_errbuf err = {{0}};
    lsf_node *root = lsf_yaml_load_string("reload.yaml", yaml, &err);
    assert_non_null(root);
    lsf_pipeline *p = lsf_pipeline_new(root, &err);
    if (!p)
        fail_msg("%s", err.msg);
    if (lsf_pipeline_check(p, &err) < 0)
        fail_msg("%s", err.msg);
    int n;
    lsf_stage **tr = lsf_pipeline_stages(p, LSF_STAGE_TRANSFORM, &n);
    assert_int_equal(n, 1);
    lsf_stage *st = tr[0];
    stage_name = st->name;
    lsf_batch *b = lsf_batch_new(4);

    assert_string_equal(run_batch(st, b, "hello there"), "demo.v1");

    /* a batch in flight holds the old set across the swap */
    lsf_ruleset *held = lsf_rules_stage_current(st);
    assert_string_equal(lsf_ruleset_rule_id(held, 0), "demo.v1");

    write_file("demo.yaml", v2);
    reload_and_wait(st);
    assert_int_equal(counter("reloads"), 1);
    assert_string_equal(run_batch(st, b, "hello there"), "demo.v2");
    /* the held set still works (ASan would catch a use after free) */
    lsf_batch *old = lsf_batch_new(4);
    lsf_batch_push_record(old, "hello old", 9, 1);
    old->events[0].message = old->events[0].raw;
    assert_int_equal(lsf_ruleset_apply(held, old, &old->events[0], 0), 0);
    lsf_ruleset_unref(held); /* the last reference: freed here */
    lsf_batch_free(old);

    /* a pack that does not compile: refused, counted, old rules stay */
    write_file("demo.yaml", broken);
    reload_and_wait(st);
    assert_int_equal(counter("reload_errors"), 1);
    assert_string_equal(run_batch(st, b, "hello there"), "demo.v2");

    /* a pack whose own tests fail: refused as well */
    write_file("demo.yaml", failing);
    reload_and_wait(st);
    assert_int_equal(counter("reload_errors"), 2);
    assert_string_equal(run_batch(st, b, "hello there"), "demo.v2");

    /* and a good one again */
    write_file("demo.yaml", v1);
    reload_and_wait(st);
    assert_int_equal(counter("reloads"), 2);
    assert_string_equal(run_batch(st, b, "hello there"), "demo.v1");

    lsf_batch_free(b);
    lsf_pipeline_free(p);
    lsf_node_free(root);
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    assert_int_equal(system(cmd), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_reload)};
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    lsf_metrics_free();
    return rc;
}
