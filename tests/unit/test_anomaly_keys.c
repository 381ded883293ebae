/* test_anomaly_keys.c - the anomaly stage's key records and its batch path:
 * detectors with the same `by` share one record per key while keeping
 * their own LRU, budget and evictions; a record goes with its last part;
 * two workers taking the shard tickets hand over hand score exactly as one
 * worker does (and do not deadlock); an entry whose model a sweep fed is
 * re-accounted at its key's next event. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "anomaly/anomaly.h"
#include "anomaly/hash.h"
#include "core/config.h"
#include "core/log.h"
#include "core/pipeline.h"
#include "core/stage.h"
#include "parsers/parse.h"

static void parse_set(lsf_anom *a, const char *yaml, uint32_t shards)
{
    lsf_errbuf err = {{0}};
    lsf_node *root = lsf_yaml_load_string("<test>", yaml, &err);
    if (!root)
        fail_msg("%s", err.msg);
    memset(a, 0, sizeof(*a));
    if (lsf_anom_parse(a, root, shards, "keys", &err) < 0)
        fail_msg("%s", err.msg);
    lsf_node_free(root);
}

static lsf_anom_entry *get(lsf_anom *a, lsf_anom_det *d, const char *key, bool *created)
{
    uint64_t h = lsf_hash64(key, strlen(key), 1);
    return lsf_anom_entry_get(d, &d->shard[lsf_anom_shard_of(a, h)], h, key,
                              (uint32_t)strlen(key), created);
}

static uint32_t records(const lsf_anom_det *d)
{
    uint32_t n = 0;
    for (uint32_t k = 0; k < d->grp->nshards; k++)
        n += d->grp->shard[k].n;
    return n;
}

static void test_detectors_with_the_same_by_share_records(void **state)
{
    (void)state;
    lsf_anom a;
    parse_set(&a,
              "[{name: r, type: rate, by: [k], max_keys: 2},"
              " {name: v, type: new_value, by: [k], field: f, max_keys: 100, learning: 0s},"
              " {name: o, type: rate, by: [j]}]",
              1);
    lsf_anom_det *r = &a.det[0], *v = &a.det[1], *o = &a.det[2];
    assert_ptr_equal(r->grp, v->grp);
    assert_ptr_not_equal(r->grp, o->grp);
    assert_int_equal(r->grp_slot, 0);
    assert_int_equal(v->grp_slot, 1);

    bool created;
    lsf_anom_entry *er = get(&a, r, "k1", &created);
    assert_true(created);
    lsf_anom_entry *ev = get(&a, v, "k1", &created);
    assert_true(created);
    assert_ptr_equal(er->rec, ev->rec);
    assert_ptr_equal(ev, lsf_anom_part(v, er->rec));
    /* parts are as long as their type needs: v's starts right after r's */
    assert_ptr_equal((char *)ev, (char *)er + lsf_anom_part_size(r));
    assert_int_equal(records(r), 1);
    assert_int_equal(records(o), 0);
    lsf_anom_result res;
    uint64_t vh = lsf_hash64("x", 1, 7);
    lsf_anom_new_value(v, ev, vh, LSF_STR_LIT("x"), 1, &res);

    /* r keeps two keys: k1 is evicted from r, not from v */
    get(&a, r, "k2", &created);
    get(&a, r, "k3", &created);
    assert_int_equal(r->shard[0].n, 2);
    assert_int_equal(lsf_counter_get(r->c_evicted), 1);
    assert_int_equal(lsf_counter_get(v->c_evicted), 0);
    assert_int_equal(records(r), 3);
    lsf_anom_entry *ev2 = get(&a, v, "k1", &created);
    assert_false(created);
    assert_ptr_equal(ev2, ev);
    assert_true(ev2->rec->live == 2u); /* only v's part */
    lsf_anom_new_value(v, ev2, vh, LSF_STR_LIT("x"), 2, &res);
    assert_int_equal(res.reason, LSF_REASON_NONE); /* v's state survived r's eviction */

    /* k1 comes back to r: a fresh part in the same record */
    lsf_anom_entry *er2 = get(&a, r, "k1", &created);
    assert_true(created);
    assert_ptr_equal(er2->rec, ev->rec);
    assert_string_equal(er2->rec->key, "k1");

    /* a record goes with its last live part */
    lsf_anom_shard_clear(v, &v->shard[0]);
    assert_int_equal(records(r), 2); /* k1 (r's part) and k3; k2 was evicted by k1 */
    lsf_anom_shard_clear(r, &r->shard[0]);
    assert_int_equal(records(r), 0);
    lsf_anom_free(&a);
}

/* Budgets and counts per detector are what they were with a table each:
 * every detector of a group is charged its own entries. */
/* The key table keeps every key findable through long probe runs and
 * evictions from the middle of them: hashes that share their low bits all
 * start at one or two slots. */
static void test_table_with_colliding_keys(void **state)
{
    (void)state;
    lsf_anom a;
    parse_set(&a, "[{name: r, type: rate, by: [k], max_keys: 200}]", 1);
    lsf_anom_det *d = &a.det[0];
    lsf_anom_shard *s = &d->shard[0];
    char key[16];
    bool created;
    for (uint64_t round = 0; round < 3; round++)
        for (uint64_t i = 0; i < 300; i++) {
            uint64_t k = (i * 7 + round * 101) % 450; /* later rounds bring evicted keys back */
            int n = snprintf(key, sizeof(key), "k%u", (unsigned)k);
            lsf_anom_entry *e = lsf_anom_entry_get(d, s, k << 8 | 5, key, (uint32_t)n, &created);
            assert_true(e->rec->hash == (k << 8 | 5));
            assert_string_equal(e->rec->key, key);
        }
    /* exactly the 200 most recent keys are held, each found */
    uint32_t held = 0;
    for (uint64_t k = 0; k < 450; k++) {
        lsf_anom_rec *r = lsf_anom_rec_find(d, 0, k << 8 | 5);
        if (r) {
            snprintf(key, sizeof(key), "k%u", (unsigned)k);
            assert_string_equal(r->key, key);
            held++;
        }
    }
    assert_int_equal(held, 200);
    assert_int_equal(records(d), 200);
    for (uint64_t i = 100; i < 300; i++) /* the last round's last 200 */
        assert_non_null(lsf_anom_rec_find(d, 0, ((i * 7 + 202) % 450) << 8 | 5));
    lsf_anom_free(&a);
}

static void test_budgets_stay_per_detector(void **state)
{
    (void)state;
    lsf_anom a;
    parse_set(&a,
              "[{name: small, type: numeric, by: [k], field: x, max_memory: 64KiB, history: 64},"
              " {name: big, type: numeric, by: [k], field: x, history: 64}]",
              4);
    lsf_anom_det *s = &a.det[0], *b = &a.det[1];
    lsf_anom_result res;
    char key[32];
    for (int i = 0; i < 400; i++) {
        snprintf(key, sizeof(key), "key%d", i);
        bool created;
        for (int d = 0; d < 2; d++) {
            lsf_anom_det *det = d ? b : s;
            lsf_anom_entry *e = get(&a, det, key, &created);
            for (int j = 0; j < 50; j++)
                lsf_anom_series_value(det, e, j % 5, j, &res);
            uint64_t h = lsf_hash64(key, strlen(key), 1);
            lsf_anom_entry_touched(det, &det->shard[lsf_anom_shard_of(&a, h)], e);
        }
    }
    uint32_t ns = 0, nb = 0;
    for (uint32_t k = 0; k < 4; k++) {
        assert_true(s->shard[k].bytes <= s->shard_budget || s->shard[k].n == 1);
        ns += s->shard[k].n;
        nb += b->shard[k].n;
    }
    assert_true(lsf_counter_get(s->c_evicted) > 0);
    assert_int_equal(lsf_counter_get(b->c_evicted), 0);
    assert_int_equal(nb, 400);
    assert_int_equal(ns + lsf_counter_get(s->c_evicted), 400);
    assert_int_equal(records(s), 400); /* big keeps every key, so every record */
    lsf_anom_free(&a);
}

/* The records' slab: 64-byte aligned, no overlap, freed blocks reused by
 * size class, chunks past 2 MiB aligned for huge pages, all unmapped at the
 * end (ASan sees the poisoned free blocks). */
static void test_slab(void **state)
{
    (void)state;
    lsf_anom_slab s;
    lsf_anom_slab_init(&s);
    enum { N = 20000 };
    static char *p[N];
    static size_t n[N];
    for (int i = 0; i < N; i++) {
        n[i] = 40 + (size_t)(lsf_mix64((uint64_t)i) % 1500);
        p[i] = lsf_anom_slab_alloc(&s, n[i]);
        assert_int_equal((uintptr_t)p[i] % 64, 0);
        memset(p[i], (int)(i & 0xff), n[i]);
    }
    for (int i = 0; i < N; i++) /* nothing overwrote another block */
        for (size_t k = 0; k < n[i]; k += 97)
            assert_int_equal((unsigned char)p[i][k], i & 0xff);
    assert_true(s.nchunks >= 5); /* ~17 MB: 256 KiB, 512 KiB, 1, 2, 4, 8 MiB chunks */
    for (size_t c = 0; c < s.nchunks; c++)
        if (s.chunks[c].len >= (2u << 20))
            assert_int_equal((uintptr_t)s.chunks[c].p % (2u << 20), 0);
    /* a freed block comes back for a request of its class, not of another */
    lsf_anom_slab_put(&s, p[7], n[7]);
    size_t other = n[7] + 64 <= 1540 ? n[7] + 64 : n[7] - 64;
    char *q = lsf_anom_slab_alloc(&s, other);
    assert_ptr_not_equal(q, p[7]);
    char *r = lsf_anom_slab_alloc(&s, (n[7] + 63) / 64 * 64);
    assert_ptr_equal(r, p[7]);
    size_t chunks = s.nchunks;
    for (int i = 0; i < N; i++)
        if (i != 7)
            lsf_anom_slab_put(&s, p[i], n[i]);
    for (int i = 0; i < N; i++)
        if (i != 7)
            p[i] = lsf_anom_slab_alloc(&s, n[i]);
    assert_int_equal(s.nchunks, chunks); /* the same blocks again: no new chunk */
    lsf_anom_slab_free(&s);
}

/* ---- the stage's batch path -------------------------------------------------------- */

typedef struct stage_run {
    lsf_node *root;
    lsf_pipeline *p;
    lsf_stage *st;
} stage_run;

static void stage_open(stage_run *r, int workers)
{
    char yaml[1024];
    snprintf(yaml, sizeof(yaml),
             "workers: %d\nlog_level: warn\ninputs: [{type: stdin, format: json}]\n"
             "sinks: [{type: stdout}]\ntransforms:\n"
             "  - type: anomaly\n    snapshot: \"\"\n    annotate: 0\n    shards: 8\n"
             "    detectors:\n"
             "      - {name: rate, type: rate, by: [host.name], interval: 1s, lateness: 2s, learn: 5}\n"
             "      - {name: lat, type: numeric, by: [host.name], field: d, interval: 1s, lateness: 2s, learn: 5}\n"
             "      - {name: users, type: new_value, by: [host.name], field: u, learning: 5s}\n"
             "      - {name: svc, type: rate, by: [s], interval: 1s, lateness: 2s, learn: 5, max_keys: 3}\n",
             workers);
    lsf_errbuf err = {{0}};
    if (!(r->root = lsf_yaml_load_string("t.yaml", yaml, &err)) ||
        !(r->p = lsf_pipeline_new(r->root, &err)) || lsf_pipeline_check(r->p, &err) < 0)
        fail_msg("%s", err.msg);
    int n;
    lsf_stage **t = lsf_pipeline_stages(r->p, LSF_STAGE_TRANSFORM, &n);
    assert_int_equal(n, 1);
    r->st = t[0];
}

static void stage_close(stage_run *r)
{
    lsf_pipeline_free(r->p);
    lsf_node_free(r->root);
}

/* arrival time of the test events: after their event times, which are
 * believed (an event time far ahead of its arrival would not be) */
#define NOW_NS (1800000000LL * 1000000000LL)
#define NBATCH 48
#define BATCH_EVENTS 64

static void fill(lsf_batch *b, int bi)
{
    lsf_batch_reset(b);
    b->seq = (uint64_t)bi;
    lsf_parse_opts po = {.tz_mode = LSF_TZ_UTC};
    for (int i = 0; i < BATCH_EVENTS; i++) {
        int n = bi * BATCH_EVENTS + i;
        uint64_t h = lsf_mix64((uint64_t)n + 1);
        int host = (int)(h % 40);
        if (bi > NBATCH / 2 && host == 3)
            host = 4; /* host 3 falls silent: quiet intervals from the sweep */
        char line[256];
        int len = snprintf(line, sizeof(line),
                           "{\"@timestamp\":\"%.3f\",\"host\":{\"name\":\"h%d\"},\"s\":\"s%d\","
                           "\"d\":%d,\"u\":\"u%d\",\"message\":\"m\"}",
                           1700000000.0 + n * 0.01, host, (int)(h >> 20) % 7,
                           (int)(h >> 30) % 50 + (host == 7 && bi > 30 ? 500 : 0),
                           (int)(h >> 40) % (bi < 20 ? 3 : 5));
        lsf_event *ev = lsf_batch_push_record(b, line, (size_t)len, NOW_NS);
        lsf_parse_event(b, ev, &po);
    }
}

/* What the stage wrote onto a batch: one line per event. */
static void describe(lsf_batch *b, char *out, size_t cap)
{
    size_t o = 0;
    for (uint32_t i = 0; i < b->n && o < cap; i++) {
        const lsf_field *s = lsf_event_find(&b->events[i], LSF_STR_LIT("anomaly.score"));
        const lsf_field *d = lsf_event_find(&b->events[i], LSF_STR_LIT("anomaly.detectors"));
        const lsf_field *r = lsf_event_find(&b->events[i], LSF_STR_LIT("anomaly.reason"));
        o += (size_t)snprintf(out + o, cap - o, "%u %.*s %.17g %.*s %.*s\n", i,
                              (int)b->events[i].message.len, b->events[i].message.ptr,
                              s ? s->v.f : -1, r ? (int)r->v.s.len : 0, r ? r->v.s.ptr : "",
                              d ? (int)d->v.s.len : 0, d ? d->v.s.ptr : "");
    }
}

#define DESC 65536
static char *one_worker[NBATCH];

typedef struct worker_arg {
    stage_run *r;
    int parity;
    char *desc[NBATCH];
} worker_arg;

static void *worker_main(void *p)
{
    worker_arg *w = p;
    lsf_batch *b = lsf_batch_new(BATCH_EVENTS);
    for (int bi = w->parity; bi < NBATCH; bi += 2) {
        fill(b, bi);
        w->r->st->def->process(w->r->st, b, w->parity);
        w->desc[bi] = malloc(DESC);
        describe(b, w->desc[bi], DESC);
    }
    lsf_batch_free(b);
    return NULL;
}

static void test_two_workers_score_like_one(void **state)
{
    (void)state;
    stage_run r;
    stage_open(&r, 1);
    lsf_batch *b = lsf_batch_new(BATCH_EVENTS);
    int scored = 0;
    for (int bi = 0; bi < NBATCH; bi++) {
        fill(b, bi);
        r.st->def->process(r.st, b, 0);
        one_worker[bi] = malloc(DESC);
        describe(b, one_worker[bi], DESC);
        for (const char *p = one_worker[bi]; (p = strstr(p, " 0.")) != NULL; p++)
            scored++;
    }
    lsf_batch_free(b);
    stage_close(&r);
    assert_true(scored > 0); /* the comparison below compares scores, not only silence */

    stage_open(&r, 2);
    worker_arg w[2] = {{&r, 0, {0}}, {&r, 1, {0}}};
    pthread_t t[2];
    for (int i = 0; i < 2; i++)
        assert_int_equal(pthread_create(&t[i], NULL, worker_main, &w[i]), 0);
    for (int i = 0; i < 2; i++)
        pthread_join(t[i], NULL);
    stage_close(&r);
    for (int bi = 0; bi < NBATCH; bi++) {
        char *got = w[bi % 2].desc[bi];
        if (strcmp(got, one_worker[bi]) != 0)
            fail_msg("batch %d differs with two workers:\n%s\nvs one worker:\n%s", bi, got,
                     one_worker[bi]);
        free(got);
        free(one_worker[bi]);
    }
}

/* One batch of one event of `host` at second t (from 1700000000) through the stage. */
static void one_event(lsf_stage *st, lsf_batch *b, uint64_t seq, int t, const char *host)
{
    lsf_parse_opts po = {.tz_mode = LSF_TZ_UTC};
    lsf_batch_reset(b);
    b->seq = seq;
    char line[128];
    int len = snprintf(line, sizeof(line), "{\"@timestamp\":\"%d\",\"host\":{\"name\":\"%s\"}}",
                       1700000000 + t, host);
    lsf_parse_event(b, lsf_batch_push_record(b, line, (size_t)len, NOW_NS), &po);
    st->def->process(st, b, 0);
}

/* A sweep that closes a silent key's intervals grows its model without
 * re-accounting it (the sweep walks the LRU); the key's next event does,
 * even when that event closes no interval. */
static void test_swept_entry_reaccounted(void **state)
{
    (void)state;
    lsf_errbuf err = {{0}};
    lsf_node *root = lsf_yaml_load_string(
        "t.yaml",
        "workers: 1\nlog_level: warn\ninputs: [{type: stdin, format: json}]\n"
        "sinks: [{type: stdout}]\ntransforms:\n"
        "  - type: anomaly\n    snapshot: \"\"\n    shards: 1\n    detectors:\n"
        "      - {name: r, type: rate, by: [host.name], interval: 1s, lateness: 0s, learn: 3}\n",
        &err);
    lsf_pipeline *p = root ? lsf_pipeline_new(root, &err) : NULL;
    if (!p || lsf_pipeline_check(p, &err) < 0)
        fail_msg("%s", err.msg);
    int n;
    lsf_stage *st = lsf_pipeline_stages(p, LSF_STAGE_TRANSFORM, &n)[0];
    lsf_anom *a = st->ctx; /* the stage's context starts with its detector set */
    lsf_anom_det *d = &a->det[0];
    lsf_batch *b = lsf_batch_new(8);
    uint64_t seq = 0;
    /* h2 once at 0 s, then h1 alone for 400 s: the sweep feeds h2's model */
    for (int t = 0; t <= 400; t++)
        one_event(st, b, seq++, t, t ? "h1" : "h2");
    uint64_t h;
    lsf_event probe = {0};
    probe.host = LSF_STR_LIT("h2");
    char key[64];
    int kl = lsf_anom_key(d, &probe, key, sizeof(key), &h);
    lsf_anom_rec *r = lsf_anom_rec_find(d, lsf_anom_shard_of(a, h), h);
    assert_non_null(r);
    lsf_anom_entry *e = lsf_anom_part(d, r);
    assert_int_equal(kl, 2);
    assert_true(e->u.series.swept);
    size_t stale = e->bytes,
           now = lsf_anom_part_size(d) + lsf_anom_cold_size(d) + e->rec->key_len + 1 +
                 lsf_anom_entry_bytes(d, e);
    assert_true(now > stale);
    /* h2 again, in the watermark's interval: no interval closes */
    one_event(st, b, seq++, 400, "h2");
    assert_false(e->u.series.swept);
    assert_int_equal(e->bytes, now);
    lsf_batch_free(b);
    lsf_pipeline_free(p);
    lsf_node_free(root);
}

int main(void)
{
    lsf_log_threshold = LSF_LOG_WARN;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_detectors_with_the_same_by_share_records),
        cmocka_unit_test(test_table_with_colliding_keys),
        cmocka_unit_test(test_budgets_stay_per_detector),
        cmocka_unit_test(test_slab),
        cmocka_unit_test(test_two_workers_score_like_one),
        cmocka_unit_test(test_swept_entry_reaccounted),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    lsf_metrics_free();
    return rc;
}
