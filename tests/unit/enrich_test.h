/* enrich_test.h - helpers for the enrichment unit tests (test_geoip.c,
 * test_enrich_tables.c, test_fields.c): a transform built the way logsift
 * builds it (YAML -> pipeline -> check, which runs the transforms' init),
 * events with string fields, and field reads.
 * Threads: ts_open/ts_close/ts_error on one thread; ts_run and the field
 * helpers from any thread, each with its own batch.
 */
#ifndef LSF_TEST_ENRICH_H
#define LSF_TEST_ENRICH_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "core/config.h"
#include "core/event.h"
#include "core/metrics.h"
#include "core/pipeline.h"
#include "core/stage.h"

typedef struct tstage {
    lsf_node *root;
    lsf_pipeline *p;
    lsf_stage *st; /* the first transform */
} tstage;

/* Builds a pipeline whose transforms are `transforms` (YAML list items,
 * indented by two spaces) with `workers` workers, and inits them. The last
 * transform gets a name unique in the process ("t<N>"), so its counters
 * start at zero. Returns 0, or -1 with err set (the stage is then closed). */
static inline int ts_open(tstage *t, int workers, const char *transforms, lsf_errbuf *err)
{
    static int seq;
    char text[8192];
    snprintf(text, sizeof(text),
             "workers: %d\nlog_level: warn\ninputs: [{type: stdin}]\nsinks: [{type: stdout}]\n"
             "transforms:\n%s    name: t%d\n",
             workers, transforms, ++seq);
    memset(t, 0, sizeof(*t));
    t->root = lsf_yaml_load_string("t.yaml", text, err);
    if (!t->root)
        return -1;
    t->p = lsf_pipeline_new(t->root, err);
    if (!t->p || lsf_pipeline_check(t->p, err) < 0) {
        lsf_pipeline_free(t->p);
        lsf_node_free(t->root);
        memset(t, 0, sizeof(*t));
        return -1;
    }
    int n;
    t->st = lsf_pipeline_stages(t->p, LSF_STAGE_TRANSFORM, &n)[0];
    return 0;
}

/* As ts_open, failing the test on an error. */
static inline void ts_open_ok(tstage *t, int workers, const char *transforms)
{
    lsf_errbuf err = {{0}};
    if (ts_open(t, workers, transforms, &err) < 0)
        fail_msg("transform did not build: %s", err.msg);
}

/* The error message of a transform that must not build. */
static inline const char *ts_error(const char *transforms)
{
    static lsf_errbuf err;
    tstage t;
    memset(&err, 0, sizeof(err));
    if (ts_open(&t, 1, transforms, &err) == 0)
        fail_msg("transform built, but an error was expected:\n%s", transforms);
    return err.msg;
}

static inline void ts_close(tstage *t)
{
    lsf_pipeline_free(t->p);
    lsf_node_free(t->root);
    memset(t, 0, sizeof(*t));
}

static inline int ts_run(tstage *t, lsf_batch *b, int worker)
{
    return t->st->def->process(t->st, b, worker);
}

/* The counter "<stage name>.<what>" of the first (and last) transform. */
static inline uint64_t ts_counter(tstage *t, const char *what)
{
    return lsf_counter_get(lsf_counter_new(t->st->name, what));
}

/* Appends an event with string fields: ev_with(b, "source.ip", "1.2.3.4", ..., NULL). */
static inline lsf_event *ev_with(lsf_batch *b, ...)
{
    lsf_event *ev = lsf_batch_push(b);
    assert_non_null(ev);
    va_list ap;
    va_start(ap, b);
    const char *k;
    while ((k = va_arg(ap, const char *))) {
        const char *v = va_arg(ap, const char *);
        lsf_event_set_str(b, ev, lsf_str_make(lsf_arena_memdup(&b->arena, k, strlen(k)), strlen(k)),
                          lsf_str_make(lsf_arena_memdup(&b->arena, v, strlen(v)), strlen(v)));
    }
    va_end(ap);
    return ev;
}

/* A field's value as text, or NULL when absent. Uses rotating
 * thread-local buffers (4 results live at once per thread). */
static inline const char *fval(const lsf_event *ev, const char *name)
{
    static _Thread_local char bufs[4][512];
    static _Thread_local int k;
    char scratch[32];
    lsf_str out;
    if (!lsf_event_get_str(ev, lsf_str_make(name, strlen(name)), scratch, &out))
        return NULL;
    char *b = bufs[k++ & 3];
    snprintf(b, sizeof(bufs[0]), "%.*s", (int)out.len, out.ptr);
    return b;
}

static inline int ftype(const lsf_event *ev, const char *name)
{
    const lsf_field *f = lsf_event_find(ev, lsf_str_make(name, strlen(name)));
    return f ? f->type : -1;
}

#define assert_field(ev, name, want)                                                              \
    do {                                                                                          \
        const char *got_ = fval((ev), (name));                                                    \
        if (!got_ || strcmp(got_, (want)) != 0)                                                   \
            fail_msg("%s: want '%s', got %s%s%s", (name), (want), got_ ? "'" : "",                \
                     got_ ? got_ : "nothing", got_ ? "'" : "");                                   \
    } while (0)

#define assert_no_field(ev, name)                                                                 \
    do {                                                                                          \
        const char *got_ = fval((ev), (name));                                                    \
        if (got_)                                                                                 \
            fail_msg("%s: want no field, got '%s'", (name), got_);                                \
    } while (0)

#endif
