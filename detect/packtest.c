/* packtest.c - the inline `tests:` of a detection: lines go through the
 * parser and the packs' rules exactly as in a running logsift, then through a
 * fresh detector holding only that detection, and the alerts it gives are
 * compared with `expect`.
 *
 *   tests:
 *     - events:
 *         - {line: '<38>1 2026-03-03T10:00:00Z web1 sshd 42 - - Failed ...', repeat: 10, every: 2s}
 *         - '<38>1 2026-03-03T10:00:30Z web1 sshd 42 - - Accepted ...'
 *       expect: {alerts: 1, alert.count: 10, source.ip: 203.0.113.9}
 *
 * `repeat` sends a line n times, each `every` (default 1s) later in event
 * time than the one before, with "{i}" in it replaced by the repetition's
 * number (0, 1, ...); `alerts` is the number of alerts expected
 * (default 1), every other key a field of the first alert (as text).
 *
 * The one design choice to know: a test never touches the running state; it
 * builds its own definition from the same node, so it sees exactly what the
 * stage would run.
 *
 * Threads: the thread that builds a detection set.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/log.h"
#include "detect/detect.h"
#include "parsers/parse.h"
#include "sinks/json_out.h"

#define TEST_BATCH 64

typedef struct run {
    lsf_detector *det;
    lsf_batch *b;
    uint64_t seq;
    uint32_t nalerts;
    lsf_batch *first; /* a copy of the batch that held the first alert */
    uint32_t first_idx;
} run;

static bool is_alert(const lsf_event *ev)
{
    const lsf_field *f = lsf_event_find(ev, LSF_STR_LIT("event.kind"));
    return f && f->type == LSF_T_STR && lsf_str_eq_cstr(f->v.s, "alert");
}

static void flush(run *r)
{
    lsf_batch *b = r->b;
    if (!b->n)
        return;
    b->seq = r->seq++;
    lsf_detector_process(r->det, b, 0);
    for (uint32_t i = 0; i < b->n; i++) {
        if (!is_alert(&b->events[i]) || r->nalerts++)
            continue;
        r->first = b; /* keep this batch: the first alert's fields live in it */
        r->first_idx = i;
    }
    if (r->first == b)
        r->b = lsf_batch_new(TEST_BATCH);
    else
        lsf_batch_reset(b);
}

/* The line of repetition k: "{i}" becomes k (so 20 repetitions can name
 * 20 ports or users). */
static size_t expand(const char *line, int64_t k, char *out, size_t n)
{
    size_t len = 0;
    for (const char *p = line; *p && len + 24 < n; p++) {
        if (strncmp(p, "{i}", 3) == 0) {
            len += (size_t)snprintf(out + len, n - len, "%lld", (long long)k);
            p += 2;
        } else {
            out[len++] = *p;
        }
    }
    out[len] = 0;
    return len;
}

/* Feeds one line (n times, `every_ns` apart). */
static void feed(run *r, lsf_ruleset *rs, const char *line, int64_t n, int64_t every_ns)
{
    static const lsf_parse_opts opts = {.tz_mode = LSF_TZ_UTC, .body_json = true};
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    int64_t now_ns = (int64_t)now.tv_sec * NS_PER_S + now.tv_nsec;
    char buf[8192];
    for (int64_t k = 0; k < n; k++) {
        if (r->b->n == TEST_BATCH)
            flush(r);
        size_t len = expand(line, k, buf, sizeof(buf));
        lsf_event *ev = lsf_batch_push_record(r->b, buf, len, now_ns);
        lsf_parse_event(r->b, ev, &opts);
        if (rs)
            lsf_ruleset_apply(rs, r->b, ev, 0);
        if (ev->time_ns)
            ev->time_ns += k * every_ns;
        else
            ev->ingested_ns += k * every_ns;
    }
}

static int feed_events(run *r, lsf_ruleset *rs, const lsf_node *events, lsf_errbuf *err)
{
    if (!events || events->kind != LSF_NODE_SEQ)
        return lsf_node_error(err, events, "a detection test needs 'events': a list of lines "
                              "or {line, repeat, every}");
    for (const lsf_node *e = events->child; e; e = e->next) {
        if (e->kind == LSF_NODE_SCALAR) {
            feed(r, rs, e->str, 1, 0);
            continue;
        }
        const lsf_node *line = e->kind == LSF_NODE_MAP ? lsf_node_get(e, "line") : NULL;
        const lsf_node *rep = line ? lsf_node_get(e, "repeat") : NULL;
        const lsf_node *every = line ? lsf_node_get(e, "every") : NULL;
        int64_t n = 1, ms = 1000;
        if (!line || line->kind != LSF_NODE_SCALAR)
            return lsf_node_error(err, e, "an event is a line, or a map with 'line' (and "
                                  "'repeat', 'every')");
        if (rep && (rep->kind != LSF_NODE_SCALAR || lsf_parse_int(rep->str, &n) < 0 || n < 1 ||
                    n > 100000))
            return lsf_node_error(err, rep, "'repeat' must be a number from 1 to 100000");
        if (every && (every->kind != LSF_NODE_SCALAR || lsf_parse_duration_ms(every->str, &ms) < 0))
            return lsf_node_error(err, every, "'every' must be a duration such as 2s");
        feed(r, rs, line->str, n, ms * NS_PER_MS);
    }
    flush(r);
    return 0;
}

/* Compares `expect` with what the run gave; -1 with err at the test. */
static int compare(const run *r, const lsf_node *test, const lsf_node *expect, const char *id,
                   unsigned n, lsf_errbuf *err)
{
    int64_t want = 1;
    const lsf_node *a = expect ? lsf_node_get(expect, "alerts") : NULL;
    if (a && (a->kind != LSF_NODE_SCALAR || lsf_parse_int(a->str, &want) < 0 || want < 0))
        return lsf_node_error(err, a, "'alerts' must be a number of alerts");
    if ((int64_t)r->nalerts != want)
        return lsf_node_error(err, test, "detection %s, test %u: %u alerts, expected %lld", id, n,
                              r->nalerts, (long long)want);
    for (const lsf_node *f = expect ? expect->child : NULL; f; f = f->next) {
        if (strcmp(f->key, "alerts") == 0)
            continue;
        if (f->kind != LSF_NODE_SCALAR)
            return lsf_node_error(err, f, "expected values are plain values");
        if (!r->first)
            return lsf_node_error(err, f, "detection %s, test %u: no alert to have '%s'", id, n,
                                  f->key);
        char scratch[48];
        lsf_str v;
        const lsf_event *ev = &r->first->events[r->first_idx];
        char ts[40];
        bool has;
        if (strcmp(f->key, "@timestamp") == 0) {
            v = lsf_str_make(ts, lsf_format_rfc3339_utc(ev->time_ns, ts));
            has = true;
        } else {
            has = lsf_event_get_str(ev, lsf_str_make(f->key, strlen(f->key)), scratch, &v);
        }
        if (!has || !lsf_str_eq_cstr(v, f->str))
            return lsf_node_error(err, f, "detection %s, test %u: %s is '%.*s', expected '%s'",
                                  id, n, f->key, has ? (int)v.len : 6, has ? v.ptr : "absent",
                                  f->str);
    }
    return 0;
}

int lsf_det_run_tests(const lsf_node *node, const char *origin, const lsf_det_defaults *dflt,
                      lsf_ruleset *rs, unsigned *ntests, lsf_errbuf *err)
{
    const lsf_node *tests = lsf_node_get(node, "tests");
    if (!tests)
        return 0;
    if (tests->kind != LSF_NODE_SEQ)
        return lsf_node_error(err, tests, "'tests' must be a list of {events, expect}");
    unsigned n = 0;
    for (const lsf_node *t = tests->child; t; t = t->next) {
        n++;
        lsf_detdef def;
        if (lsf_detdef_parse(&def, node, origin, dflt, err) < 0) {
            lsf_detdef_free(&def);
            return -1;
        }
        char id[128];
        snprintf(id, sizeof(id), "%s", def.id);
        lsf_detset *set = calloc(1, sizeof(*set));
        if (!set || !(set->runs = calloc(1, sizeof(lsf_detrun *))))
            lsf_die("out of memory");
        atomic_init(&set->refs, 1);
        set->runs[set->n++] = lsf_detrun_new(&def, 1, "packtest");
        lsf_detector_opts o = {.nshards = 1, .nworkers = 1, .lateness_ns = 30 * NS_PER_S,
                               .max_future_ns = 300 * NS_PER_S, .name = "packtest"};
        run r = {.det = lsf_detector_new(&o), .b = lsf_batch_new(TEST_BATCH)};
        lsf_detector_set(r.det, set);
        int rc = t->kind == LSF_NODE_MAP ? feed_events(&r, rs, lsf_node_get(t, "events"), err)
                                         : lsf_node_error(err, t, "a test is a map of events "
                                                          "and expect");
        if (rc == 0)
            rc = compare(&r, t, lsf_node_get(t, "expect"), id, n, err);
        lsf_batch_free(r.b);
        lsf_batch_free(r.first);
        lsf_detector_free(r.det);
        if (rc < 0)
            return -1;
        (*ntests)++;
    }
    return 0;
}
