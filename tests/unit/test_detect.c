/* test_detect.c - the detection engine (detect/) without a pipeline: sets
 * are built from YAML, events are made by hand with event times, batches are
 * processed with consecutive sequence numbers as the pipeline would, and the
 * alert events appended to the batches are checked field by field.
 * Checks: the brute-force run (one threshold alert with exemplars, one
 * sequence alert, a second burst suppressed and counted in the next alert),
 * port scan vs. one port from many addresses, HyperLogLog counts, absent
 * steps (a host that goes silent), value aggregates, the rate limit and
 * escalation, a million distinct keys under the memory budget, snapshots
 * (restart, corruption), the same alerts whatever the batching, shards and
 * worker threads, and definition errors with positions.
 * Threads: one test thread, except the worker test (four threads).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <malloc.h>
#include <pthread.h>

#include <cmocka.h>

#include "core/log.h"
#include "detect/detect.h"

#define T0 (1772532000LL * NS_PER_S) /* 2026-03-03T10:00:00Z */
#define S(x) ((int64_t)(x) * NS_PER_S)

typedef struct got {
    char id[64], key[160], type[16];
    int64_t time_ns, count, suppressed, rate_limited, severity, nex;
    double observed;
} got;

typedef struct harness {
    lsf_detector *det;
    lsf_batch *b;
    uint64_t seq;
    uint32_t per_batch;
    got g[8192];
    size_t n;
} harness;

static lsf_det_defaults dflt(void)
{
    return (lsf_det_defaults){.suppress_ns = S(600), .rate_n = 100, .rate_ns = S(60),
                              .exemplars = 3, .exemplar_bytes = 1024, .max_keys = 100000,
                              .max_bytes = 64 << 20, .buckets = 10, .severity = 3};
}

static lsf_detset *set_from_yaml(const char *yaml, uint32_t nshards)
{
    lsf_errbuf err = {{0}};
    lsf_node *root = lsf_yaml_load_string("<test>", yaml, &err);
    if (!root)
        fail_msg("%s", err.msg);
    lsf_detset *set = calloc(1, sizeof(*set));
    set->runs = calloc(root->nchild, sizeof(lsf_detrun *));
    atomic_init(&set->refs, 1);
    lsf_det_defaults d = dflt();
    for (const lsf_node *n = root->child; n; n = n->next) {
        lsf_detdef def;
        if (lsf_detdef_parse(&def, n, "test", &d, &err) < 0)
            fail_msg("%s", err.msg);
        set->runs[set->n] = lsf_detrun_new(&def, nshards, "test");
        set->any_absent |= set->runs[set->n]->def.has_absent;
        set->n++;
    }
    lsf_node_free(root);
    return set;
}

static void h_init(harness *h, const char *yaml, uint32_t nshards, uint32_t per_batch)
{
    memset(h, 0, sizeof(*h));
    lsf_detector_opts o = {.nshards = nshards, .nworkers = 1, .lateness_ns = S(30),
                           .max_future_ns = S(300), .name = "test"};
    h->det = lsf_detector_new(&o);
    lsf_detector_set(h->det, set_from_yaml(yaml, nshards));
    h->b = lsf_batch_new(per_batch);
    h->per_batch = per_batch;
}

static void str_of(const lsf_event *ev, const char *name, char *out, size_t n)
{
    char scratch[48];
    lsf_str v;
    out[0] = 0;
    if (lsf_event_get_str(ev, lsf_str_make(name, strlen(name)), scratch, &v))
        snprintf(out, n, "%.*s", (int)v.len, v.ptr);
}

static int64_t int_of(const lsf_event *ev, const char *name)
{
    const lsf_field *f = lsf_event_find(ev, lsf_str_make(name, strlen(name)));
    if (!f)
        return -1;
    return f->type == LSF_T_INT ? f->v.i : (int64_t)f->v.f;
}

/* Collects the alert events of b into h->g. */
static void collect(harness *h, const lsf_batch *b)
{
    for (uint32_t i = 0; i < b->n; i++) {
        const lsf_event *ev = &b->events[i];
        char kind[16];
        str_of(ev, "event.kind", kind, sizeof(kind));
        if (strcmp(kind, "alert") != 0)
            continue;
        assert_true(h->n < sizeof(h->g) / sizeof(h->g[0]));
        got *g = &h->g[h->n++];
        str_of(ev, "rule.id", g->id, sizeof(g->id));
        str_of(ev, "alert.key", g->key, sizeof(g->key));
        str_of(ev, "alert.type", g->type, sizeof(g->type));
        g->time_ns = ev->time_ns;
        g->count = int_of(ev, "alert.count");
        g->suppressed = int_of(ev, "alert.suppressed");
        g->rate_limited = int_of(ev, "alert.rate_limited");
        g->severity = int_of(ev, "event.severity");
        const lsf_field *f = lsf_event_find(ev, LSF_STR_LIT("alert.observed"));
        g->observed = f->type == LSF_T_INT ? (double)f->v.i : f->v.f;
        f = lsf_event_find(ev, LSF_STR_LIT("alert.exemplars"));
        g->nex = 0;
        for (uint32_t k = 0; f && k < f->v.s.len; k++)
            g->nex += f->v.s.ptr[k] == '"' && (k == 0 || f->v.s.ptr[k - 1] != '\\');
        g->nex /= 2;
    }
}

static void flush(harness *h)
{
    if (!h->b->n)
        return;
    h->b->seq = h->seq++;
    lsf_detector_process(h->det, h->b, 0);
    collect(h, h->b);
    lsf_batch_reset(h->b);
}

/* Adds an event at T0 + t_ns with fields "name=value" (all-digit values
 * become integers), NULL-terminated. */
static void ev(harness *h, int64_t t_ns, ...)
{
    if (h->b->n == h->per_batch)
        flush(h);
    lsf_batch *b = h->b;
    lsf_event *e = lsf_batch_push(b);
    e->time_ns = T0 + t_ns;
    e->ingested_ns = T0 + t_ns;
    char raw[512];
    size_t rn = (size_t)snprintf(raw, sizeof(raw), "t=%lld", (long long)(t_ns / NS_PER_MS));
    va_list ap;
    va_start(ap, t_ns);
    for (const char *kv; (kv = va_arg(ap, const char *));) {
        const char *eq = strchr(kv, '=');
        lsf_str name = {lsf_arena_memdup(&b->arena, kv, (size_t)(eq - kv)), (uint32_t)(eq - kv)};
        const char *val = eq + 1;
        bool digits = *val != 0;
        for (const char *p = val; *p; p++)
            digits &= *p >= '0' && *p <= '9';
        if (strncmp(kv, "anomaly.score=", 14) == 0)
            lsf_event_set_float(b, e, name, atof(val));
        else if (strncmp(kv, "host.name=", 10) == 0)
            e->host = (lsf_str){lsf_arena_memdup(&b->arena, val, strlen(val)), (uint32_t)strlen(val)};
        else if (digits)
            lsf_event_set_int(b, e, name, atoll(val));
        else
            lsf_event_set_str(b, e, name,
                              (lsf_str){lsf_arena_memdup(&b->arena, val, strlen(val)),
                                        (uint32_t)strlen(val)});
        rn += (size_t)snprintf(raw + rn, sizeof(raw) - rn, " %s", kv);
    }
    va_end(ap);
    e->raw = e->message = (lsf_str){lsf_arena_memdup(&b->arena, raw, rn), (uint32_t)rn};
}

static void h_free(harness *h)
{
    lsf_detector_free(h->det);
    lsf_batch_free(h->b);
}

static size_t count_id(const harness *h, const char *id)
{
    size_t n = 0;
    for (size_t i = 0; i < h->n; i++)
        n += strcmp(h->g[i].id, id) == 0;
    return n;
}

static const got *find_id(const harness *h, const char *id, size_t nth)
{
    for (size_t i = 0; i < h->n; i++)
        if (strcmp(h->g[i].id, id) == 0 && nth-- == 0)
            return &h->g[i];
    return NULL;
}

/* ---- the brute-force run ---------------------------------------------------- */

static const char brute_yaml[] =
    "- id: ssh.bruteforce\n"
    "  when: {rule.id: sshd.auth.failed}\n"
    "  group_by: [source.ip]\n"
    "  threshold: {count: 10, window: 60s}\n"
    "  severity: high\n"
    "  escalate: [{count: 15, severity: critical}]\n"
    "- id: ssh.bruteforce.success\n"
    "  group_by: [source.ip]\n"
    "  sequence:\n"
    "    within: 10m\n"
    "    steps:\n"
    "      - {when: {rule.id: sshd.auth.failed}, count: 5}\n"
    "      - {when: {rule.id: sshd.auth.accepted}}\n";

static void burst(harness *h, int64_t start_s, int n, const char *ip)
{
    char f[64];
    snprintf(f, sizeof(f), "source.ip=%s", ip);
    for (int i = 0; i < n; i++)
        ev(h, S(start_s + i), "rule.id=sshd.auth.failed", f, NULL);
}

static void test_bruteforce(void **state)
{
    (void)state;
    harness h;
    h_init(&h, brute_yaml, 16, 7);
    burst(&h, 0, 20, "203.0.113.9");
    ev(&h, S(25), "rule.id=sshd.auth.accepted", "source.ip=203.0.113.9", NULL);
    flush(&h);
    assert_int_equal(count_id(&h, "ssh.bruteforce"), 1);
    assert_int_equal(count_id(&h, "ssh.bruteforce.success"), 1);
    const got *t = find_id(&h, "ssh.bruteforce", 0);
    assert_string_equal(t->key, "source.ip=203.0.113.9");
    assert_string_equal(t->type, "threshold");
    assert_int_equal(t->count, 10);
    assert_int_equal(t->nex, 3);
    assert_int_equal(t->suppressed, 0);
    assert_int_equal(t->severity, 4);
    assert_true(t->time_ns == T0 + S(9));
    const got *q = find_id(&h, "ssh.bruteforce.success", 0);
    assert_true(q->time_ns == T0 + S(25));
    assert_int_equal(q->count, 21);

    /* a second burst inside the 10 minute suppression: nothing */
    h.n = 0;
    burst(&h, 120, 20, "203.0.113.9");
    flush(&h);
    assert_int_equal(count_id(&h, "ssh.bruteforce"), 0);
    /* after it: one alert that counts the three suppressed firings (the
     * first burst's second ten and the second burst's two) */
    burst(&h, 900, 10, "203.0.113.9");
    flush(&h);
    assert_int_equal(count_id(&h, "ssh.bruteforce"), 1);
    assert_int_equal(find_id(&h, "ssh.bruteforce", 0)->suppressed, 3);
    /* another address is its own key */
    h.n = 0;
    burst(&h, 905, 16, "198.51.100.7");
    flush(&h);
    assert_int_equal(count_id(&h, "ssh.bruteforce"), 1);
    h_free(&h);
}

static void test_escalate(void **state)
{
    (void)state;
    harness h;
    h_init(&h,
           "- id: burst\n"
           "  group_by: [source.ip]\n"
           "  threshold: {count: 5, window: 60s}\n"
           "  severity: low\n"
           "  suppress: off\n"
           "  escalate: [{observed: 5, severity: high}, {score: 0.9, severity: critical}]\n",
           4, 64);
    for (int i = 0; i < 5; i++)
        ev(&h, S(i), "source.ip=a", NULL);
    for (int i = 0; i < 5; i++)
        ev(&h, S(10 + i), "source.ip=b", i == 2 ? "anomaly.score=1" : "x=y", NULL);
    flush(&h);
    assert_int_equal(h.n, 2);
    assert_int_equal(h.g[0].severity, 4); /* observed >= 5: high */
    assert_int_equal(h.g[1].severity, 5); /* an event scored 1: critical */
    h_free(&h);
}

static void test_score(void **state)
{
    (void)state;
    harness h;
    h_init(&h,
           "- id: odd\n"
           "  group_by: [host.name]\n"
           "  score: 0.9\n"
           "- id: odd.often\n"
           "  group_by: [host.name]\n"
           "  score: {min: 0.5, count: 3, window: 1m}\n",
           4, 16);
    ev(&h, S(0), "host.name=a", NULL);                   /* no score: nothing */
    ev(&h, S(1), "host.name=a", "anomaly.score=0.6", NULL);
    ev(&h, S(2), "host.name=a", "anomaly.score=0.4", NULL); /* under both cut-offs */
    flush(&h);
    assert_int_equal(h.n, 0);
    ev(&h, S(3), "host.name=a", "anomaly.score=0.95", NULL);
    flush(&h);
    assert_int_equal(count_id(&h, "odd"), 1);
    assert_int_equal(count_id(&h, "odd.often"), 0);
    ev(&h, S(4), "host.name=a", "anomaly.score=0.7", NULL);
    ev(&h, S(5), "host.name=b", "anomaly.score=0.99", NULL);
    flush(&h);
    assert_int_equal(count_id(&h, "odd.often"), 1);
    assert_int_equal(find_id(&h, "odd.often", 0)->count, 3);
    assert_int_equal(count_id(&h, "odd"), 2); /* b is its own key */
    h_free(&h);
}

static void test_no_group(void **state)
{
    (void)state;
    harness h;
    h_init(&h, "- id: everything\n  threshold: {count: 3, window: 1m}\n", 4, 16);
    ev(&h, S(0), "a=1", NULL);
    ev(&h, S(1), "b=2", NULL);
    ev(&h, S(2), "c=3", NULL);
    flush(&h);
    assert_int_equal(h.n, 1);
    assert_string_equal(h.g[0].key, "all events");
    h_free(&h);
}

/* ---- distinct ------------------------------------------------------------------ */

static const char scan_yaml[] = "- id: portscan\n"
                                "  when: {rule.id: fw.block}\n"
                                "  group_by: [source.ip]\n"
                                "  distinct: {field: destination.port, count: 20, window: 60s}\n";

static void test_portscan(void **state)
{
    (void)state;
    harness h;
    h_init(&h, scan_yaml, 16, 256);
    char port[40];
    for (int i = 0; i < 500; i++) { /* 500 ports in 50 s */
        snprintf(port, sizeof(port), "destination.port=%d", 1000 + i);
        ev(&h, i * 100 * NS_PER_MS, "rule.id=fw.block", "source.ip=203.0.113.50", port, NULL);
    }
    flush(&h);
    assert_int_equal(count_id(&h, "portscan"), 1);
    assert_int_equal(h.g[0].observed, 20);
    h_free(&h);

    h_init(&h, scan_yaml, 16, 256);
    char ip[40];
    for (int i = 0; i < 500; i++) { /* 500 addresses, one port each */
        snprintf(ip, sizeof(ip), "source.ip=198.51.%d.%d", i / 250, i % 250);
        ev(&h, i * 100 * NS_PER_MS, "rule.id=fw.block", ip, "destination.port=22", NULL);
    }
    flush(&h);
    assert_int_equal(count_id(&h, "portscan"), 0);
    /* the same port again and again from one address: no scan either */
    for (int i = 0; i < 100; i++)
        ev(&h, S(60) + i * 10 * NS_PER_MS, "rule.id=fw.block", "source.ip=203.0.113.1",
           "destination.port=443", NULL);
    flush(&h);
    assert_int_equal(count_id(&h, "portscan"), 0);
    h_free(&h);
}

static void test_distinct_hll(void **state)
{
    (void)state;
    harness h;
    h_init(&h,
           "- id: spray\n"
           "  group_by: [source.ip]\n"
           "  distinct: {field: user.name, count: 1000, window: 10m}\n",
           4, 256);
    char user[40];
    for (int i = 0; i < 900; i++) { /* 900 users: under the count (HLL error ~3%) */
        snprintf(user, sizeof(user), "user.name=u%d", i);
        ev(&h, i * 100 * NS_PER_MS, "source.ip=a", user, NULL);
    }
    flush(&h);
    assert_int_equal(h.n, 0);
    for (int i = 900; i < 5000; i++) {
        snprintf(user, sizeof(user), "user.name=u%d", i);
        ev(&h, i * 100 * NS_PER_MS, "source.ip=a", user, NULL);
    }
    flush(&h);
    assert_true(h.n >= 1);
    assert_true(h.g[0].observed >= 1000 && h.g[0].observed < 1100);
    /* it fired within the error bound of the true count (~1000) */
    int64_t at = (h.g[0].time_ns - T0) / (100 * NS_PER_MS);
    assert_true(at >= 930 && at <= 1070);
    /* the window slides: values older than 10 minutes no longer count */
    h_free(&h);
}

/* ---- sequences and absent steps -------------------------------------------------- */

static void test_silent_host(void **state)
{
    (void)state;
    harness h;
    h_init(&h,
           "- id: host.silent\n"
           "  group_by: [host.name]\n"
           "  sequence:\n"
           "    within: 10m\n"
           "    steps: [{when: {}}, {when: {}, absent: true}]\n",
           8, 32);
    for (int i = 0; i <= 100; i++)
        ev(&h, S(i), "host.name=web1", NULL);
    for (int i = 0; i < 800; i++)
        ev(&h, S(i), "host.name=web2", NULL);
    flush(&h);
    assert_int_equal(h.n, 1);
    assert_string_equal(h.g[0].key, "host.name=web1");
    assert_true(h.g[0].time_ns == T0 + S(100) + S(600));
    /* web2 keeps talking: nothing more; web1 comes back and goes quiet again
     * (after the 10 minute suppression) */
    ev(&h, S(1000), "host.name=web1", NULL);
    for (int i = 800; i < 1700; i += 5)
        ev(&h, S(i), "host.name=web2", NULL);
    flush(&h);
    assert_int_equal(h.n, 2);
    assert_string_equal(h.g[1].key, "host.name=web1");
    assert_true(h.g[1].time_ns == T0 + S(1600));
    h_free(&h);
}

static void test_sequence_order(void **state)
{
    (void)state;
    harness h;
    h_init(&h,
           "- id: seq\n"
           "  group_by: [user.name]\n"
           "  suppress: off\n"
           "  sequence:\n"
           "    within: 5m\n"
           "    steps:\n"
           "      - {when: {event.action: login}}\n"
           "      - {when: {event.action: sudo}, count: 2}\n"
           "      - {when: {event.action: logout}}\n",
           4, 16);
    /* out of order: logout before sudo -> no alert */
    ev(&h, S(0), "user.name=a", "event.action=login", NULL);
    ev(&h, S(1), "user.name=a", "event.action=logout", NULL);
    ev(&h, S(2), "user.name=a", "event.action=sudo", NULL);
    flush(&h);
    assert_int_equal(h.n, 0);
    ev(&h, S(3), "user.name=a", "event.action=sudo", NULL);
    ev(&h, S(4), "user.name=a", "event.action=logout", NULL);
    flush(&h);
    assert_int_equal(h.n, 1);
    /* too slow: the steps take longer than 5 minutes */
    ev(&h, S(100), "user.name=b", "event.action=login", NULL);
    ev(&h, S(200), "user.name=b", "event.action=sudo", NULL);
    ev(&h, S(300), "user.name=b", "event.action=sudo", NULL);
    ev(&h, S(500), "user.name=b", "event.action=logout", NULL);
    flush(&h);
    assert_int_equal(h.n, 1);
    h_free(&h);
}

/* ---- value ------------------------------------------------------------------------ */

static void test_value(void **state)
{
    (void)state;
    harness h;
    h_init(&h,
           "- id: exfil\n"
           "  group_by: [source.ip]\n"
           "  value: {field: bytes, agg: sum, gt: 1000, window: 60s}\n"
           "- id: slow\n"
           "  group_by: [source.ip]\n"
           "  value: {field: bytes, agg: avg, ge: 500, window: 60s, min_count: 2}\n",
           4, 16);
    ev(&h, S(0), "source.ip=a", "bytes=600", NULL);
    ev(&h, S(1), "source.ip=a", "bytes=300", NULL);
    ev(&h, S(70), "source.ip=a", "bytes=300", NULL); /* the first left the window */
    ev(&h, S(71), "source.ip=a", "notbytes=1", NULL); /* no value: ignored */
    flush(&h);
    assert_int_equal(h.n, 0);
    ev(&h, S(72), "source.ip=a", "bytes=900", NULL);
    flush(&h);
    assert_int_equal(count_id(&h, "exfil"), 1);
    assert_int_equal(find_id(&h, "exfil", 0)->observed, 1200);
    assert_int_equal(count_id(&h, "slow"), 1);
    assert_int_equal(find_id(&h, "slow", 0)->observed, 600);
    h_free(&h);
}

/* ---- rate limit --------------------------------------------------------------------- */

static void test_rate_limit(void **state)
{
    (void)state;
    harness h;
    h_init(&h,
           "- id: any\n"
           "  group_by: [source.ip]\n"
           "  threshold: {count: 1, window: 10s}\n"
           "  rate_limit: 20/1m\n",
           4, 256);
    char ip[40];
    for (int i = 0; i < 200; i++) {
        snprintf(ip, sizeof(ip), "source.ip=10.0.%d.%d", i / 200, i % 200);
        ev(&h, i * 10 * NS_PER_MS, ip, NULL); /* 200 alerts due within 2 s */
    }
    flush(&h);
    assert_int_equal(h.n, 20);
    ev(&h, S(120), "source.ip=10.9.9.9", NULL);
    flush(&h);
    assert_int_equal(h.n, 21);
    assert_int_equal(h.g[20].rate_limited, 180);
    h_free(&h);
}

/* ---- memory -------------------------------------------------------------------------- */

static void test_million_keys(void **state)
{
    (void)state;
    const uint64_t budget = 8 << 20;
    harness h;
    h_init(&h,
           "- id: many\n"
           "  group_by: [source.ip]\n"
           "  threshold: {count: 5, window: 1h}\n"
           "  max_keys: 10000000\n"
           "  max_memory: 8MiB\n",
           16, 256);
    lsf_detset *set = lsf_detector_current(h.det);
    lsf_detrun *r = set->runs[0];
    size_t cost = lsf_detrun_key_cost(r, 12);
    struct mallinfo2 before = mallinfo2();
    char ip[40];
    uint64_t peak = 0;
    for (int i = 0; i < 1000000; i++) {
        snprintf(ip, sizeof(ip), "source.ip=10.%d.%d.%d", (i >> 16) & 255, (i >> 8) & 255, i & 255);
        ev(&h, i * NS_PER_MS, ip, NULL);
        if ((i & 0xffff) == 0) {
            uint64_t total = 0;
            for (uint32_t k = 0; k < r->nshards; k++)
                total += r->shards[k].bytes;
            peak = total > peak ? total : peak;
        }
    }
    flush(&h);
    uint64_t total = 0, keys = 0;
    for (uint32_t k = 0; k < r->nshards; k++) {
        total += r->shards[k].bytes;
        keys += r->shards[k].nkeys;
    }
    struct mallinfo2 after = mallinfo2();
    peak = total > peak ? total : peak;
    print_message("# 1,000,000 keys: %llu kept in %llu bytes (budget %llu, peak %llu), "
                  "%zu bytes per key, %llu evicted; heap grew %zu bytes\n",
                  (unsigned long long)keys, (unsigned long long)total,
                  (unsigned long long)budget, (unsigned long long)peak, cost,
                  (unsigned long long)lsf_counter_get(r->c_evicted),
                  after.uordblks - before.uordblks);
    assert_true(peak <= budget);
    assert_true(keys > budget / cost / 2);  /* the budget is used, not wasted */
    assert_int_equal(lsf_counter_get(r->c_evicted), 1000000 - keys);
    /* what the allocator holds matches the accounting (the batch and
     * scratch are a few hundred KiB) */
    assert_true(after.uordblks - before.uordblks < budget + (2 << 20));
    assert_int_equal(h.n, 0);
    lsf_detset_unref(set);
    h_free(&h);
}

/* ---- snapshots ------------------------------------------------------------------------ */

static void test_snapshot_restart(void **state)
{
    (void)state;
    char path[] = "/tmp/lsf-detsnap-XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    close(fd);
    unlink(path);
    harness h;
    h_init(&h, brute_yaml, 16, 4);
    burst(&h, 0, 6, "203.0.113.9");
    flush(&h);
    assert_int_equal(h.n, 0);
    uint64_t keys = 0;
    assert_int_equal(lsf_det_snapshot_save(h.det, path, &keys), 0);
    assert_int_equal(keys, 2); /* one key in each of the two detections */
    h_free(&h);

    /* a restart, with another shard count: 6 + 4 = 10 in one alert */
    h_init(&h, brute_yaml, 3, 4);
    uint32_t dropped;
    lsf_errbuf err = {{0}};
    assert_int_equal(lsf_det_snapshot_load(h.det, path, &keys, &dropped, &err), 0);
    assert_int_equal(keys, 2);
    assert_int_equal(dropped, 0);
    burst(&h, 6, 4, "203.0.113.9");
    flush(&h);
    assert_int_equal(count_id(&h, "ssh.bruteforce"), 1);
    assert_int_equal(find_id(&h, "ssh.bruteforce", 0)->count, 10);
    assert_true(find_id(&h, "ssh.bruteforce", 0)->nex == 3);
    h_free(&h);

    /* a changed definition does not take the old state */
    h_init(&h,
           "- id: ssh.bruteforce\n"
           "  when: {rule.id: sshd.auth.failed}\n"
           "  group_by: [source.ip]\n"
           "  threshold: {count: 10, window: 120s}\n",
           16, 4);
    assert_int_equal(lsf_det_snapshot_load(h.det, path, &keys, &dropped, &err), 0);
    assert_int_equal(keys, 0);
    assert_int_equal(dropped, 2);
    h_free(&h);

    /* a damaged file is reported and ignored */
    FILE *f = fopen(path, "r+b");
    assert_non_null(f);
    fseek(f, 40, SEEK_SET);
    int c = fgetc(f);
    fseek(f, 40, SEEK_SET);
    fputc(c ^ 0x55, f);
    fclose(f);
    h_init(&h, brute_yaml, 16, 4);
    assert_int_equal(lsf_det_snapshot_load(h.det, path, &keys, &dropped, &err), -1);
    assert_non_null(strstr(err.msg, "checksum"));
    burst(&h, 6, 4, "203.0.113.9");
    flush(&h);
    assert_int_equal(h.n, 0);
    h_free(&h);
    truncate(path, 20);
    h_init(&h, brute_yaml, 16, 4);
    assert_int_equal(lsf_det_snapshot_load(h.det, path, &keys, &dropped, &err), -1);
    h_free(&h);
    unlink(path);
}

static void test_silence_survives_downtime(void **state)
{
    (void)state;
    char path[] = "/tmp/lsf-detsnap-XXXXXX";
    int fd = mkstemp(path);
    close(fd);
    const char *yaml = "- id: host.silent\n"
                       "  group_by: [host.name]\n"
                       "  sequence: {within: 10m, steps: [{when: {}}, {when: {}, absent: true}]}\n";
    harness h;
    h_init(&h, yaml, 4, 16);
    ev(&h, S(0), "host.name=a", NULL);
    ev(&h, S(0), "host.name=b", NULL);
    flush(&h);
    uint64_t keys;
    assert_int_equal(lsf_det_snapshot_save(h.det, path, &keys), 0);
    h_free(&h);
    /* logsift was down for an hour; both hosts talk again right away */
    h_init(&h, yaml, 4, 16);
    uint32_t dropped;
    lsf_errbuf err;
    assert_int_equal(lsf_det_snapshot_load(h.det, path, &keys, &dropped, &err), 0);
    ev(&h, S(3600), "host.name=a", NULL);
    ev(&h, S(3601), "host.name=b", NULL);
    flush(&h);
    assert_int_equal(h.n, 0);
    /* then b goes silent */
    for (int i = 0; i < 700; i += 10)
        ev(&h, S(3610 + i), "host.name=a", NULL);
    flush(&h);
    assert_int_equal(h.n, 1);
    assert_string_equal(h.g[0].key, "host.name=b");
    h_free(&h);
    unlink(path);
}

/* ---- the same alerts whatever the batching, shards and threads ----------------------- */

static const char mix_yaml[] =
    "- id: t\n"
    "  group_by: [source.ip]\n"
    "  threshold: {count: 7, window: 30s}\n"
    "  suppress: 1m\n"
    "- id: d\n"
    "  group_by: [source.ip]\n"
    "  distinct: {field: user.name, count: 4, window: 1m}\n"
    "  suppress: 3m\n"
    "- id: s\n"
    "  group_by: [user.name]\n"
    "  sequence: {within: 2m, steps: [{when: {act: a}, count: 2}, {when: {act: b}}]}\n"
    "- id: quiet\n"
    "  group_by: [source.ip]\n"
    "  sequence: {within: 3m, steps: [{when: {}}, {when: {}, absent: true}]}\n";

static void mixed_stream(harness *h)
{
    uint64_t x = 88172645463325252ULL;
    char ip[40], user[40], act[16];
    for (int i = 0; i < 20000; i++) {
        x ^= x << 13, x ^= x >> 7, x ^= x << 17;
        snprintf(ip, sizeof(ip), "source.ip=10.0.0.%d", (int)(x % 50));
        snprintf(user, sizeof(user), "user.name=u%d", (int)((x >> 8) % 30));
        snprintf(act, sizeof(act), "act=%c", "abc"[(x >> 16) % 3]);
        /* mostly in order, some late by up to 20 s */
        int64_t t = S(i / 10) - ((x >> 24) % 8 == 0 ? S((x >> 32) % 20) : 0);
        ev(h, t, ip, user, act, NULL);
    }
    flush(h);
}

static int cmp_got(const void *a, const void *b)
{
    const got *x = a, *y = b;
    if (x->time_ns != y->time_ns)
        return x->time_ns < y->time_ns ? -1 : 1;
    int c = strcmp(x->id, y->id);
    return c ? c : strcmp(x->key, y->key);
}

static void assert_same(harness *a, harness *b)
{
    qsort(a->g, a->n, sizeof(got), cmp_got);
    qsort(b->g, b->n, sizeof(got), cmp_got);
    assert_int_equal(a->n, b->n);
    for (size_t i = 0; i < a->n; i++) {
        assert_string_equal(a->g[i].id, b->g[i].id);
        assert_string_equal(a->g[i].key, b->g[i].key);
        assert_true(a->g[i].time_ns == b->g[i].time_ns);
        assert_int_equal(a->g[i].count, b->g[i].count);
        assert_int_equal(a->g[i].suppressed, b->g[i].suppressed);
        assert_true(a->g[i].observed == b->g[i].observed);
    }
}

static void test_batching_independent(void **state)
{
    (void)state;
    harness *a = calloc(1, sizeof(harness)), *b = calloc(1, sizeof(harness));
    h_init(a, mix_yaml, 1, 1);
    mixed_stream(a);
    h_init(b, mix_yaml, 16, 256);
    mixed_stream(b);
    print_message("# mixed stream: %zu alerts\n", a->n);
    assert_true(a->n > 50);
    assert_same(a, b);
    h_free(a);
    h_free(b);
    free(a);
    free(b);
}

typedef struct pool {
    lsf_detector *det;
    lsf_batch **b;
    size_t nb;
    _Atomic size_t next;
    pthread_mutex_t take; /* hands out batches in order, like the pipeline's queue */
} pool;

typedef struct wctx {
    pool *p;
    int index;
} wctx;

static void *worker_main(void *arg)
{
    wctx *w = arg;
    pool *p = w->p;
    for (;;) {
        pthread_mutex_lock(&p->take);
        size_t i = atomic_fetch_add(&p->next, 1);
        pthread_mutex_unlock(&p->take);
        if (i >= p->nb)
            return NULL;
        lsf_detector_process(p->det, p->b[i], w->index);
    }
}

static void test_workers(void **state)
{
    (void)state;
    /* reference: one thread */
    harness *a = calloc(1, sizeof(harness)), *b = calloc(1, sizeof(harness));
    h_init(a, mix_yaml, 8, 64);
    mixed_stream(a);
    /* the same events in batches of 64, four workers at once */
    h_init(b, mix_yaml, 8, 64);
    lsf_detector_free(b->det);
    lsf_detector_opts o = {.nshards = 8, .nworkers = 4, .lateness_ns = S(30),
                           .max_future_ns = S(300), .name = "test"};
    b->det = lsf_detector_new(&o);
    lsf_detector_set(b->det, set_from_yaml(mix_yaml, 8));
    pool p = {.det = b->det};
    pthread_mutex_init(&p.take, NULL);
    p.b = calloc(1024, sizeof(lsf_batch *));
    uint64_t x = 88172645463325252ULL;
    harness tmp;
    memset(&tmp, 0, sizeof(tmp));
    tmp.per_batch = 64;
    char ip[40], user[40], act[16];
    for (int i = 0; i < 20000; i++) {
        if (!tmp.b || tmp.b->n == 64) {
            tmp.b = lsf_batch_new(64);
            tmp.b->seq = p.nb;
            p.b[p.nb++] = tmp.b;
        }
        x ^= x << 13, x ^= x >> 7, x ^= x << 17;
        snprintf(ip, sizeof(ip), "source.ip=10.0.0.%d", (int)(x % 50));
        snprintf(user, sizeof(user), "user.name=u%d", (int)((x >> 8) % 30));
        snprintf(act, sizeof(act), "act=%c", "abc"[(x >> 16) % 3]);
        int64_t t = S(i / 10) - ((x >> 24) % 8 == 0 ? S((x >> 32) % 20) : 0);
        tmp.per_batch = 65; /* never flush inside ev */
        ev(&tmp, t, ip, user, act, NULL);
    }
    pthread_t th[4];
    wctx wc[4];
    for (int i = 0; i < 4; i++) {
        wc[i] = (wctx){&p, i};
        pthread_create(&th[i], NULL, worker_main, &wc[i]);
    }
    for (int i = 0; i < 4; i++)
        pthread_join(th[i], NULL);
    for (size_t i = 0; i < p.nb; i++) {
        collect(b, p.b[i]);
        lsf_batch_free(p.b[i]);
    }
    free(p.b);
    assert_same(a, b);
    h_free(a);
    h_free(b);
    free(a);
    free(b);
}

/* ---- definitions ------------------------------------------------------------------------ */

static void expect_error(const char *yaml, const char *where, const char *what)
{
    lsf_errbuf err = {{0}};
    lsf_node *root = lsf_yaml_load_string("<t>", yaml, &err);
    assert_non_null(root);
    lsf_detdef d;
    lsf_det_defaults df = dflt();
    int rc = lsf_detdef_parse(&d, root->child, "test", &df, &err);
    lsf_detdef_free(&d);
    lsf_node_free(root);
    assert_int_equal(rc, -1);
    if (!strstr(err.msg, where) || !strstr(err.msg, what))
        fail_msg("expected '%s' and '%s' in: %s", where, what, err.msg);
}

static void test_definition_errors(void **state)
{
    (void)state;
    expect_error("- id: x\n  group_by: [a]\n", "<t>:1:3", "needs a type");
    expect_error("- id: x\n  threshold: {count: 0, window: 1m}\n", "<t>:2:22", "whole number");
    expect_error("- id: x\n  threshold: {count: 3, window: soon}\n", "<t>:2:33", "duration");
    expect_error("- id: x\n  threshold: {count: 3, window: 1m}\n  distinct: {field: a, count: 2, "
                 "window: 1m}\n",
                 "<t>:3:3", "more than one type");
    expect_error("- id: x\n  threshold: {count: 3, window: 1m}\n  colour: red\n", "<t>:3:3",
                 "unknown detection key 'colour'");
    expect_error("- id: x\n  when: {rule.id: {regex: a}}\n  threshold: {count: 3, window: 1m}\n",
                 "<t>:2:20", "unknown condition 'regex'");
    expect_error("- id: x\n  sequence: {within: 1m, steps: [{when: {a: b}, absent: true}, "
                 "{when: {a: c}}]}\n",
                 "<t>:2", "only the last step");
    expect_error("- id: x\n  value: {field: b, gt: 1, lt: 2, window: 1m}\n", "<t>:2:10",
                 "exactly one comparison");
    expect_error("- id: x\n  score: 1.5\n", "<t>:2:10", "within 0..1");
    expect_error("- id: 'not valid'\n  score: 0.5\n", "<t>:1:7", "dotted words");
    expect_error("- id: x\n  score: 0.5\n  rate_limit: lots\n", "<t>:3:15", "rate_limit");
    expect_error("- id: x\n  score: 0.5\n  escalate: [{count: 5}]\n", "<t>:3:14", "each escalation needs 'severity'");
}

static void test_durations(void **state)
{
    (void)state;
    char buf[32];
    assert_string_equal(lsf_det_duration(S(60), buf, sizeof(buf)), "1m");
    assert_string_equal(lsf_det_duration(S(5400), buf, sizeof(buf)), "1h30m");
    assert_string_equal(lsf_det_duration(S(90), buf, sizeof(buf)), "1m30s");
    assert_string_equal(lsf_det_duration(250 * NS_PER_MS, buf, sizeof(buf)), "250ms");
    uint32_t n;
    int64_t ns;
    assert_int_equal(lsf_det_parse_rate("20/1m", &n, &ns), 0);
    assert_true(n == 20 && ns == S(60));
    assert_int_equal(lsf_det_parse_rate("5/h", &n, &ns), 0);
    assert_true(n == 5 && ns == S(3600));
    assert_int_equal(lsf_det_parse_rate("/1m", &n, &ns), -1);
    assert_int_equal(lsf_det_parse_rate("0/1m", &n, &ns), -1);
}

int main(void)
{
    lsf_log_threshold = LSF_LOG_ERROR;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_bruteforce),
        cmocka_unit_test(test_escalate),
        cmocka_unit_test(test_score),
        cmocka_unit_test(test_no_group),
        cmocka_unit_test(test_portscan),
        cmocka_unit_test(test_distinct_hll),
        cmocka_unit_test(test_silent_host),
        cmocka_unit_test(test_sequence_order),
        cmocka_unit_test(test_value),
        cmocka_unit_test(test_rate_limit),
        cmocka_unit_test(test_million_keys),
        cmocka_unit_test(test_snapshot_restart),
        cmocka_unit_test(test_silence_survives_downtime),
        cmocka_unit_test(test_batching_independent),
        cmocka_unit_test(test_workers),
        cmocka_unit_test(test_definition_errors),
        cmocka_unit_test(test_durations),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
