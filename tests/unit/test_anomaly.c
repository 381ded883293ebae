/* test_anomaly.c - masking and template mining, the series model, the four
 * detector kinds on their keys, and state snapshots (round trip, restart
 * stability of template ids, corruption reported and ignored). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "anomaly/anomaly.h"
#include "anomaly/hash.h"
#include "core/log.h"

static uint64_t rng_state;
static double unif(void)
{
    rng_state += 0x9e3779b97f4a7c15ULL;
    return (double)(lsf_mix64(rng_state) >> 11) / 9007199254740992.0;
}
static double gauss(void)
{
    return sqrt(-2 * log(unif() + 1e-300)) * cos(2 * M_PI * unif());
}

/* ---- masking -------------------------------------------------------------------- */

/* Renders a masked line as its template would read. */
static void masked_text(const char *line, char *out, size_t cap)
{
    lsf_masked m;
    lsf_mask_line(line, strlen(line), &m);
    size_t o = 0;
    for (uint32_t k = 0; k < m.n; k++) {
        o += (size_t)snprintf(out + o, cap - o, "%.*s", (int)m.tok[k].sep_len, line + m.tok[k].sep_off);
        if (m.tok[k].h)
            o += (size_t)snprintf(out + o, cap - o, "%.*s", (int)m.tok[k].len, line + m.tok[k].off);
        else
            o += (size_t)snprintf(out + o, cap - o, "<*>");
    }
    snprintf(out + o, cap - o, "%s", line + m.trail_off);
}

static void test_mask_rules(void **state)
{
    (void)state;
    static const struct {
        const char *in, *want;
    } cases[] = {
        {"Connection from 10.1.2.3 port 5022", "Connection from <*> port <*>"},
        {"connection from 24.54.76.216 (24-54-76-216.example.net) at Fri Jun 17 07:07:00 2005",
         "connection from <*> at <*>"},
        {"removed /var/lib/app/cache/x.tmp", "removed <*>"},
        {"fetch http://example.org/a/b failed", "fetch <*> failed"},
        {"instance b9000564-fe1a-409b-b8cc-1e88b294cd1d started", "instance <*> started"},
        {"flags deadbeefcafe set", "flags <*> set"},
        {"uid=0 euid=0 tty=ssh user=root", "uid=<*> euid=<*> tty=<*> user=<*>"},
        {"tag=\"AudioMix\", name=audioserver", "tag=\"<*>\", name=<*>"},
        {"session opened for user cyrus by (uid=0)", "session opened for user <*> by (uid=<*>)"},
        {"VM Resumed (Lifecycle Event)", "VM Resumed (Lifecycle Event)"},
        {"got () from peer", "got <*> from peer"},
        {"", "<*>"},
        {"   ", "   <*>"},
    };
    char buf[512];
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        masked_text(cases[i].in, buf, sizeof(buf));
        if (strcmp(buf, cases[i].want) != 0)
            fail_msg("mask(\"%s\") = \"%s\", want \"%s\"", cases[i].in, buf, cases[i].want);
    }
    /* a very long line: tokens past the limit join the last one */
    char longl[8000];
    size_t o = 0;
    for (int i = 0; i < 600; i++)
        o += (size_t)snprintf(longl + o, sizeof(longl) - o, "w%c ", 'a' + i % 26);
    lsf_masked m;
    lsf_mask_line(longl, o, &m);
    assert_int_equal(m.n, LSF_MASK_MAX_TOKENS);
    assert_true(m.tok[m.n - 1].h == 0);
}

/* ---- template miner ------------------------------------------------------------- */

static const char *const lines[] = {
    "Accepted password for alice from 10.0.0.1 port 5000 ssh2",
    "VM Started (Lifecycle Event)",
    "Accepted password for bob from 10.0.0.2 port 5001 ssh2",
    "VM Paused (Lifecycle Event)",
    "Failed password for invalid user admin from 10.9.9.9 port 22 ssh2",
    "VM Started (Lifecycle Event)",
    "disk /dev/sda1 is 91% full",
    "disk /dev/sdb2 is 15% full",
};

static void test_miner_groups_and_ids(void **state)
{
    (void)state;
    lsf_miner *m = lsf_miner_new(NULL);
    lsf_template_match t[8];
    for (int i = 0; i < 8; i++)
        lsf_miner_add(m, lines[i], strlen(lines[i]), &t[i]);
    assert_true(t[0].id == t[2].id);           /* same event, other user and address */
    assert_true(t[1].id != t[3].id);           /* "Started" and "Paused" stay apart */
    assert_true(t[1].id == t[5].id);
    assert_true(t[6].id == t[7].id);
    assert_true(t[0].id != t[4].id);
    assert_true(t[0].created && !t[2].created);
    assert_int_equal(t[5].count, 2);
    char text[256];
    assert_true(lsf_miner_text(m, t[0].slot, t[0].id, text, sizeof(text)) > 0);
    assert_string_equal(text, "Accepted password for <*> from <*> port <*>");
    assert_true(lsf_miner_text(m, t[0].slot, t[0].id ^ 1, text, sizeof(text)) < 0);
    /* a fresh miner that sees the same first line gives the same id */
    lsf_miner *m2 = lsf_miner_new(NULL);
    lsf_template_match u;
    lsf_miner_add(m2, lines[2], strlen(lines[2]), &u);
    assert_true(u.id == t[0].id);
    lsf_miner_free(m2);
    lsf_miner_free(m);
}

static void test_miner_snapshot_keeps_ids(void **state)
{
    (void)state;
    lsf_miner *m = lsf_miner_new(NULL);
    lsf_template_match a, b;
    lsf_miner_add(m, "user alice logged in", 20, &a);
    lsf_miner_add(m, "job 17 done in 5 s", 18, &b);
    lsf_wbuf w = {0};
    lsf_miner_save(m, &w);
    lsf_miner_free(m);
    /* "restart": a new miner restored from the snapshot */
    lsf_miner *r = lsf_miner_new(NULL);
    lsf_rbuf rb = {w.p, w.len, 0, false};
    assert_int_equal(lsf_miner_load(r, &rb), 0);
    lsf_template_match a2, b2, c;
    lsf_miner_add(r, "user carol logged in", 20, &a2);
    lsf_miner_add(r, "job 99 done in 12 s", 19, &b2);
    assert_true(a2.id == a.id && !a2.created);
    assert_true(b2.id == b.id && b2.count == 2);
    lsf_miner_add(r, "something else entirely", 23, &c);
    assert_true(c.created);
    /* a corrupt snapshot is refused and leaves the miner empty */
    w.p[10] ^= 0xff;
    rb = (lsf_rbuf){w.p, w.len - 5, 0, false};
    assert_int_equal(lsf_miner_load(r, &rb), -1);
    uint64_t held, created, evicted;
    lsf_miner_stats(r, &held, &created, &evicted);
    assert_int_equal(held, 0);
    lsf_miner_free(r);
    lsf_wbuf_free(&w);
}

static void test_miner_bounded(void **state)
{
    (void)state;
    lsf_miner_opts o;
    lsf_miner_opts_default(&o);
    o.max_templates = 32;
    lsf_miner *m = lsf_miner_new(&o);
    char line[64];
    lsf_template_match t;
    for (int i = 0; i < 1000; i++) {
        int n = snprintf(line, sizeof(line), "event kind%c%c happened", 'a' + i % 26, 'a' + i / 26 % 26);
        lsf_miner_add(m, line, (size_t)n, &t);
    }
    uint64_t held, created, evicted;
    lsf_miner_stats(m, &held, &created, &evicted);
    assert_true(held <= 32);
    assert_true(evicted >= created - 32);
    assert_true(lsf_miner_text(m, t.slot, t.id, line, sizeof(line)) > 0); /* the newest survives */
    lsf_miner_free(m);
}

/* Two empty miners holding at most max_templates each. */
static void new_miner_pair(uint32_t max_templates, lsf_miner **a, lsf_miner **b)
{
    lsf_miner_opts o;
    lsf_miner_opts_default(&o);
    o.max_templates = max_templates;
    *a = lsf_miner_new(&o);
    *b = lsf_miner_new(&o);
}

/* A memo answers exactly as mining does, through creations,
 * generalisations and evictions: two miners in lockstep, one with a memo. */
static void test_miner_memo_answers_as_mining(void **state)
{
    (void)state;
    lsf_miner *plain, *memoed;
    new_miner_pair(16, &plain, &memoed);
    lsf_miner_memo *memo = lsf_miner_memo_new(memoed);
    char line[128];
    uint32_t x = 7;
    int repeats = 0;
    for (int i = 0; i < 20000; i++) {
        x = x * 1103515245u + 12345u;
        uint32_t r = x >> 8;
        int n;
        if (r % 16 < 8) /* a fixed line of 8 */
            n = snprintf(line, sizeof(line), "%s", lines[r / 16 % 8]);
        else if (r % 16 == 8) /* one of 40 kinds: templates come and go (16 held) */
            n = snprintf(line, sizeof(line), "event kind%c%c happened", 'a' + (int)(r / 16 % 40) % 26,
                         'a' + (int)(r / 16 % 40) / 26);
        else if (r % 16 < 12) /* a constant word that later lines turn into a variable */
            n = snprintf(line, sizeof(line), "queue %s drained", r / 16 % 3 ? "alpha" : "17");
        else /* too long to be remembered */
            n = snprintf(line, sizeof(line), "%0100u long line %u", r % 5, r % 3);
        lsf_template_match a, b;
        lsf_miner_add(plain, line, (size_t)n, &a);
        lsf_miner_memo_add(memo, line, (size_t)n, &b);
        assert_true(a.id == b.id);
        assert_int_equal(a.slot, b.slot);
        assert_int_equal(a.count, b.count);
        assert_int_equal(a.created, b.created);
        assert_int_equal(a.generalised, b.generalised);
        repeats += !a.created && !a.generalised;
    }
    uint64_t held, created, evicted;
    lsf_miner_stats(memoed, &held, &created, &evicted);
    assert_true(evicted > 0 && repeats > 10000);
    assert_true(lsf_miner_memo_hits(memo) > 5000); /* both paths were taken */
    lsf_miner_memo_free(memo);
    lsf_miner_free(plain);
    lsf_miner_free(memoed);
}

/* Memo hits take no lock: two workers hit their memos while a third
 * thread keeps creating templates, so versions change and slots are evicted
 * and reused under them (run under AddressSanitizer by `make asan`). Each
 * fixed line's template id depends on the line alone, so every answer has
 * one right id. */
typedef struct memo_worker {
    lsf_miner *m;
    const uint64_t *want;
    long hits, wrong;
} memo_worker;

static const char *const memo_lines[] = {"user signed in", "order placed now",
                                         "cache miss on shard", "job finished"};
static atomic_bool churn_done;

static void *memo_worker_run(void *arg)
{
    memo_worker *w = arg;
    lsf_miner_memo *memo = lsf_miner_memo_new(w->m);
    for (int i = 0; !atomic_load(&churn_done); i++) {
        const char *l = memo_lines[i % 4];
        lsf_template_match tm;
        lsf_miner_memo_add(memo, l, strlen(l), &tm);
        w->wrong += tm.id != w->want[i % 4];
    }
    w->hits = (long)lsf_miner_memo_hits(memo);
    lsf_miner_memo_free(memo);
    return NULL;
}

static void *churn_run(void *arg)
{
    lsf_miner *m = arg;
    char line[64];
    for (unsigned i = 0; i < 2000; i++) {
        int n = snprintf(line, sizeof(line), "churn%c%c%c happened", 'a' + i % 26,
                         'a' + i / 26 % 26, 'a' + i / 676 % 26); /* no digits: not masked */
        lsf_template_match tm;
        lsf_miner_add(m, line, (size_t)n, &tm);
        usleep(10);
    }
    atomic_store(&churn_done, true);
    return NULL;
}

static void test_miner_memo_hits_race_with_changes(void **state)
{
    (void)state;
    lsf_miner *ref, *m;
    new_miner_pair(8, &ref, &m);
    uint64_t want[4];
    for (int k = 0; k < 4; k++) {
        lsf_template_match tm;
        lsf_miner_add(ref, memo_lines[k], strlen(memo_lines[k]), &tm);
        want[k] = tm.id;
    }
    memo_worker w[2] = {{m, want, 0, 0}, {m, want, 0, 0}};
    pthread_t t[3];
    atomic_store(&churn_done, false);
    for (int i = 0; i < 2; i++)
        assert_int_equal(pthread_create(&t[i], NULL, memo_worker_run, &w[i]), 0);
    assert_int_equal(pthread_create(&t[2], NULL, churn_run, m), 0);
    for (int i = 0; i < 3; i++)
        pthread_join(t[i], NULL);
    uint64_t held, created, evicted;
    lsf_miner_stats(m, &held, &created, &evicted);
    assert_true(evicted > 1000); /* slots were evicted and reused under the workers */
    for (int i = 0; i < 2; i++) {
        assert_int_equal(w[i].wrong, 0);
        assert_true(w[i].hits > 1000);
    }
    lsf_miner_free(ref);
    lsf_miner_free(m);
}

/* ---- series model --------------------------------------------------------------- */

static void test_model_scores_spike_after_learning(void **state)
{
    (void)state;
    rng_state = 21;
    lsf_model_conf c;
    lsf_model_conf_default(&c);
    char msg[128];
    assert_int_equal(lsf_model_conf_check(&c, msg, sizeof(msg)), 0);
    lsf_model m;
    lsf_model_init(&m, &c);
    lsf_model_result r;
    double max_normal = 0;
    int over99 = 0, over90 = 0, scored = 0;
    for (int i = 0; i < 2000; i++) {
        lsf_model_update(&m, &c, 100 + 5 * gauss(), i * 60000000000LL, &r);
        if (i < (int)c.learn)
            assert_true(r.score == 0 && r.learning);
        else {
            max_normal = r.score > max_normal ? r.score : max_normal;
            scored++;
            over99 += r.p <= 0.01;
            over90 += r.p <= 0.1;
        }
    }
    /* calibrated: on noise, p <= alpha for at most about alpha of the points
     * (Bonferroni over two measures makes it conservative) */
    if (over99 > scored * 0.02 || over90 > scored * 0.12)
        fail_msg("p <= 0.01 for %d, p <= 0.1 for %d of %d noise points", over99, over90, scored);
    /* the spike is the most extreme value of the calibration horizon: the
     * smallest p there is (its score may be halved by a cooldown if a
     * weaker record came just before) */
    lsf_model_update(&m, &c, 400, 2000 * 60000000000LL, &r);
    assert_true(r.p <= 2.0 / (16 * c.tail_block + 1) + 1e-12);
    assert_true(r.score >= 0.99 || (r.suppressed && r.score >= 0.95));
    assert_true(r.measure == LSF_MEASURE_SPIKE || r.measure == LSF_MEASURE_SHAPE);
    assert_true(fabs(r.expected - 100) < 3);
    assert_true(r.deviation > 20);
    assert_true(max_normal < 1);
    /* the cooldown halves evidence no stronger than a recent peak */
    lsf_model_update(&m, &c, 390, 2001 * 60000000000LL, &r);
    assert_true(r.suppressed && r.score < 0.99);
    assert_int_equal(lsf_model_update(&m, &c, NAN, 0, &r), -1);
    /* memory stays within the stated bound */
    assert_true(lsf_model_bytes(&m) <= lsf_model_max_bytes(&c));
    lsf_wbuf w = {0};
    lsf_model_save(&m, &w);
    lsf_model m2;
    lsf_model_init(&m2, &c);
    lsf_rbuf rb = {w.p, w.len, 0, false};
    assert_int_equal(lsf_model_load(&m2, &c, &rb), 0);
    lsf_model_result r1, r2;
    lsf_model_update(&m, &c, 101, 0, &r1);
    lsf_model_update(&m2, &c, 101, 0, &r2);
    assert_true(r1.score == r2.score && r1.p == r2.p);
    /* a model saved under other settings is refused */
    lsf_model_conf c2 = c;
    c2.history = 100;
    rb = (lsf_rbuf){w.p, w.len, 0, false};
    assert_int_equal(lsf_model_load(&m2, &c2, &rb), -1);
    lsf_model_free(&m);
    lsf_model_free(&m2);
    lsf_wbuf_free(&w);
    lsf_model_conf bad = c;
    bad.embed_len = 12; /* not a multiple of 8 dims */
    assert_int_equal(lsf_model_conf_check(&bad, msg, sizeof(msg)), -1);
}

/* n noise values (100 +- 5) a minute apart; *i counts observations. */
static void feed_noise(lsf_model *m, const lsf_model_conf *c, int64_t *i, int n,
                       lsf_model_result *r)
{
    for (int k = 0; k < n; k++, (*i)++)
        lsf_model_update(m, c, 100 + 5 * gauss(), *i * 60000000000LL, r);
}

/* A fresh model after 2,000 noise values and a reported spike of 400 (300
 * over the median: the spike's vigilance bar), then 1,100 more noise values. */
static void model_after_a_report(lsf_model *m, lsf_model_conf *c, int64_t *i)
{
    rng_state = 33;
    lsf_model_conf_default(c);
    lsf_model_init(m, c);
    lsf_model_result r;
    *i = 0;
    feed_noise(m, c, i, 2000, &r);
    lsf_model_update(m, c, 400, (*i)++ * 60000000000LL, &r);
    assert_true(r.score >= 0.99 && !r.suppressed && !r.second_tier);
    for (int k = 0; k < 1100; k++) {
        feed_noise(m, c, i, 1, &r);
        assert_false(r.second_tier && k < 100); /* the cooldown after the report */
    }
}

/* After a report, a record must beat the last report's size (decaying with
 * the horizon) to count in full; wild values are never gated. */
static void test_model_vigilance_after_a_report(void **state)
{
    (void)state;
    lsf_model_conf c;
    lsf_model m;
    lsf_model_result r;
    int64_t i;
    /* 1,100 observations after the report of 400 it has left the calibration
     * horizon, the bar is 300 * 2^(-1100/1024) ~ 143: a 130 is a new maximum
     * of the horizon (smallest p), yet below the bar */
    model_after_a_report(&m, &c, &i);
    lsf_model_update(&m, &c, 230, i++ * 60000000000LL, &r);
    assert_true(r.p <= 2.0 / (16 * c.tail_block + 1) + 1e-12);
    assert_true(r.suppressed && r.score < 0.99);
    /* past the cooldown, a larger one is reported in full */
    feed_noise(&m, &c, &i, 150, &r);
    lsf_model_update(&m, &c, 300, i++ * 60000000000LL, &r);
    assert_true(r.score >= 0.99 && !r.suppressed);
    lsf_model_free(&m);
}

/* A spike held back by the vigilance bar raises the cooldown's peak; the
 * shape measure then sees the window holding it as a record of its own,
 * above its own bar, failing only the cooldown. On a key that has not
 * reported for a while that reports once, in the second tier: below a full
 * record, far above a halved one. Right after that report the same
 * situation is a plain cooldown. */
static void test_model_second_tier_on_a_quiet_key(void **state)
{
    (void)state;
    lsf_model_conf c;
    lsf_model m;
    lsf_model_result r;
    int64_t i;
    model_after_a_report(&m, &c, &i);
    uint64_t quiet = m.n - m.last_report;
    assert_true(quiet >= c.cooldown);
    /* below the bar (~143): held back, but it sets the cooldown's peak */
    lsf_model_update(&m, &c, 230, i++ * 60000000000LL, &r);
    assert_true(r.suppressed && !r.second_tier && r.score < 0.99);
    double p_rec = r.p; /* a record of the horizon, times the two measures */
    int tier = 0;
    for (int k = 0; k < 10; k++) {
        uint64_t last = m.last_report;
        feed_noise(&m, &c, &i, 1, &r);
        if (!r.second_tier)
            continue;
        /* p2 = p_rec (1 + 2^(-q / 1024)), q the observations since the last
         * report (capped at the horizon), p_rec the shape measure's record */
        tier++;
        assert_true(r.measure == LSF_MEASURE_SHAPE && !r.suppressed);
        double q = (double)(m.n - 1 - last);
        double p2 = 2 * lsf_tailrank_p(&m.t_shape, HUGE_VAL) * (1 + exp2(-fmin(q, 1024) / 1024));
        assert_true(q >= c.cooldown && fabs((1 - r.score) - p2) < 1e-9);
        assert_true(r.score > 0.99);
    }
    assert_int_equal(tier, 1); /* once: that was a report */
    /* a record right after a report fails the cooldown and is halved */
    lsf_model_update(&m, &c, 260, i++ * 60000000000LL, &r);
    assert_true(r.p <= p_rec + 1e-12);
    assert_true(r.suppressed && !r.second_tier && r.score < 0.99);
    /* the index of the last report survives a snapshot */
    lsf_wbuf w = {0};
    lsf_model_save(&m, &w);
    lsf_model m2;
    lsf_model_init(&m2, &c);
    lsf_rbuf rb = {w.p, w.len, 0, false};
    assert_int_equal(lsf_model_load(&m2, &c, &rb), 0);
    assert_true(m2.last_report == m.last_report && m.last_report > 3000);
    lsf_model_free(&m);
    lsf_model_free(&m2);
    lsf_wbuf_free(&w);
}

static void test_score_of_p(void **state)
{
    (void)state;
    assert_true(lsf_score_of_p(1) == 0);
    assert_true(lsf_score_of_p(2) == 0);
    assert_true(lsf_score_of_p(0) == 1);
    assert_true(fabs(lsf_score_of_p(0.01) - 0.99) < 1e-12);
    assert_true(lsf_score_of_p(NAN) == 0);
}

/* ---- detectors ------------------------------------------------------------------- */

static lsf_anom_entry *entry(lsf_anom_det *d, const char *key)
{
    bool created;
    return lsf_anom_entry_get(d, &d->shard[0], lsf_hash64(key, strlen(key), 1), key,
                              (uint32_t)strlen(key), &created);
}

static void parse_set(lsf_anom *a, const char *yaml)
{
    lsf_errbuf err = {{0}};
    lsf_node *root = lsf_yaml_load_string("<test>", yaml, &err);
    if (!root)
        fail_msg("%s", err.msg);
    memset(a, 0, sizeof(*a));
    if (lsf_anom_parse(a, root, 1, "test", &err) < 0)
        fail_msg("%s", err.msg);
    lsf_node_free(root);
}

static void test_rate_intervals_lateness_and_quiet(void **state)
{
    (void)state;
    lsf_anom a;
    parse_set(&a, "[{name: r, type: rate, by: [host.name], interval: 10s, lateness: 10s, learn: 50}]");
    lsf_anom_det *d = &a.det[0];
    assert_int_equal(d->def.rate_open, 2);
    lsf_anom_entry *e = entry(d, "web1");
    const int64_t S = 1000000000LL;
    lsf_anom_result res;
    int closed = 0;
    lsf_anom_result last = {0};
    /* 200 intervals of 5 events, one event per 2 s */
    for (int i = 0; i < 1000; i++)
        if (lsf_anom_series_event(d, e, 1000 * S + i * 2 * S, 0, &res)) {
            closed++;
            last = res;
        }
    assert_true(closed >= 195 && closed <= 200);
    assert_true(last.observed == 5 && last.expected == 5);
    /* the source goes quiet: the watermark moves on, zeros score high */
    assert_true(lsf_anom_series_sweep(d, e, 1000 * S + 2100 * S, &res));
    /* a record of the ~180 shapes seen: p = 2 / 181 (two measures) */
    if (res.reason != LSF_REASON_QUIET || res.observed != 0 || res.p > 2.0 / 150)
        fail_msg("quiet: reason %d observed %g expected %g score %g p %g", res.reason, res.observed,
                 res.expected, res.score, res.p);
    /* an active key is left to its own events */
    lsf_anom_entry *f = entry(d, "web2");
    lsf_anom_series_event(d, f, 1000 * S + 2100 * S, 0, &res);
    assert_false(lsf_anom_series_sweep(d, f, 1000 * S + 2105 * S, &res));
    /* within lateness an event still counts; beyond, it is late */
    uint64_t late_before = lsf_counter_get(d->c_late);
    lsf_anom_series_event(d, f, 1000 * S + 2111 * S, 0, &res); /* opens interval 311 */
    lsf_anom_series_event(d, f, 1000 * S + 2101 * S, 0, &res); /* 310: still open */
    assert_int_equal(lsf_counter_get(d->c_late), late_before);
    assert_true(f->u.series.acc[310 % 2].n == 2);
    lsf_anom_series_event(d, f, 1000 * S + 2125 * S, 0, &res); /* 312 closes 310 */
    lsf_anom_series_event(d, f, 1000 * S + 2100 * S, 0, &res); /* 310 again: late */
    assert_int_equal(lsf_counter_get(d->c_late), late_before + 1);
    lsf_anom_free(&a);
}

static void test_new_value_and_rare_template(void **state)
{
    (void)state;
    lsf_anom a;
    parse_set(&a, "[{name: nv, type: new_value, by: [user.name], field: host.name, learning: 1h},"
                  " {name: rt, type: rare_template, by: [host.name], learning: 1h}]");
    lsf_anom_det *nv = &a.det[0], *rt = &a.det[1];
    const int64_t S = 1000000000LL, t0 = 1700000000 * S;
    lsf_anom_entry *e = entry(nv, "alice");
    lsf_anom_result res;
    const char *hosts[] = {"web1", "web2"};
    for (int i = 0; i < 500; i++) {
        const char *h = hosts[i % 2];
        lsf_anom_new_value(nv, e, lsf_hash64(h, 4, 0), lsf_str_make(h, 4), t0 + i * 60 * S, &res);
        assert_true(res.reason == LSF_REASON_NONE); /* learned, then known */
    }
    lsf_anom_new_value(nv, e, lsf_hash64("db9", 3, 0), LSF_STR_LIT("db9"), t0 + 600 * 60 * S, &res);
    assert_int_equal(res.reason, LSF_REASON_NEW_VALUE);
    assert_true(res.score > 0.99);
    assert_true(lsf_str_eq(res.observed_str, LSF_STR_LIT("db9")));

    lsf_anom_entry *src = entry(rt, "web1");
    char line[64];
    for (int i = 0; i < 3000; i++) {
        int n = snprintf(line, sizeof(line), "GET /x %d ok", i);
        if (i % 1000 == 999)
            n = snprintf(line, sizeof(line), "cache flushed after %d s", i);
        lsf_template_match tm;
        lsf_miner_add(rt->miner, line, (size_t)n, &tm);
        lsf_anom_rare_template(rt, &rt->shard[0], src, &tm, t0 + i * 3 * S, &res);
        if (i == 999)
            assert_true(res.reason == LSF_REASON_NONE); /* first seen while learning (50 min) */
        if (i == 1999)
            assert_true(res.reason == LSF_REASON_RARE_TEMPLATE && res.score > 0.99);
    }
    lsf_template_match tm;
    lsf_miner_add(rt->miner, "disk failure on sda", 19, &tm);
    lsf_anom_rare_template(rt, &rt->shard[0], src, &tm, t0 + 10000 * S, &res);
    assert_int_equal(res.reason, LSF_REASON_NEW_TEMPLATE);
    assert_true(res.score > 0.99);
    lsf_anom_free(&a);
}

static void test_keys_are_bounded(void **state)
{
    (void)state;
    lsf_anom a;
    parse_set(&a, "[{name: n, type: numeric, by: [k], field: v, max_keys: 100, history: 64}]");
    lsf_anom_det *d = &a.det[0];
    char key[32];
    lsf_anom_result res;
    for (int i = 0; i < 1000; i++) {
        snprintf(key, sizeof(key), "key%d", i);
        lsf_anom_entry *e = entry(d, key);
        for (int j = 0; j < 5; j++)
            lsf_anom_series_value(d, e, j, j, &res);
        lsf_anom_entry_touched(d, &d->shard[0], e);
    }
    assert_int_equal(d->shard[0].n, 100);
    assert_int_equal(lsf_counter_get(d->c_evicted), 900);
    lsf_anom_free(&a);
    /* a memory budget evicts too */
    parse_set(&a, "[{name: m, type: numeric, by: [k], field: v, max_memory: 64KiB}]");
    d = &a.det[0];
    for (int i = 0; i < 200; i++) {
        snprintf(key, sizeof(key), "key%d", i);
        lsf_anom_entry *e = entry(d, key);
        for (int j = 0; j < 200; j++)
            lsf_anom_series_value(d, e, j % 7, j, &res);
        lsf_anom_entry_touched(d, &d->shard[0], e);
        assert_true(d->shard[0].bytes <= 64 * 1024 || d->shard[0].n == 1);
    }
    assert_true(lsf_counter_get(d->c_evicted) > 0);
    lsf_anom_free(&a);
}

static void test_config_errors(void **state)
{
    (void)state;
    static const struct {
        const char *yaml, *want;
    } cases[] = {
        {"[{name: x, type: numeric}]", "needs 'field'"},
        {"[{name: x, type: rate, field: y}]", "'field' does not apply to a rate detector"},
        {"[{name: x, type: rate, lateness: 10m, interval: 1s}]", "lateness: at most"},
        {"[{name: x, type: nope}]", "type"},
        {"[{name: x, type: numeric, field: v, shape_length: 12}]", "multiple"},
        {"[{name: x, type: rate}, {name: x, type: rate}]", "already called"},
        {"[{name: x, type: new_value, field: v, intervl: 1m}]", "did you mean"},
        {"{}", "expected a list"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        lsf_errbuf err = {{0}};
        lsf_node *root = lsf_yaml_load_string("<t>", cases[i].yaml, &err);
        assert_non_null(root);
        lsf_anom a;
        memset(&a, 0, sizeof(a));
        assert_int_equal(lsf_anom_parse(&a, root, 4, "t", &err), -1);
        if (!strstr(err.msg, cases[i].want))
            fail_msg("%s: error '%s' lacks '%s'", cases[i].yaml, err.msg, cases[i].want);
        assert_non_null(strstr(err.msg, "<t>:1:")); /* file:line:col */
        lsf_anom_free(&a);
        lsf_node_free(root);
    }
}

/* ---- snapshots ------------------------------------------------------------------- */

static const char *SET = "[{name: n, type: numeric, by: [k], field: v},"
                         " {name: v, type: new_value, by: [k], field: u, learning: 0s},"
                         " {name: t, type: rare_template, by: [k], learning: 0s}]";

static void fill(lsf_anom *a, uint64_t *tid)
{
    lsf_anom_result res;
    for (int i = 0; i < 300; i++) {
        char key[16];
        snprintf(key, sizeof(key), "k%d", i % 7);
        uint64_t h = lsf_hash64(key, strlen(key), 3);
        lsf_anom_det *n = &a->det[0], *v = &a->det[1], *t = &a->det[2];
        bool created;
        uint32_t s = lsf_anom_shard_of(a, h);
        lsf_anom_entry *e = lsf_anom_entry_get(n, &n->shard[s], h, key, (uint32_t)strlen(key), &created);
        lsf_anom_series_value(n, e, i % 13, i, &res);
        e = lsf_anom_entry_get(v, &v->shard[s], h, key, (uint32_t)strlen(key), &created);
        lsf_anom_new_value(v, e, (uint64_t)(i % 5) * 77 + 1, LSF_STR_LIT("x"), i, &res);
        e = lsf_anom_entry_get(t, &t->shard[s], h, key, (uint32_t)strlen(key), &created);
        lsf_template_match tm;
        lsf_miner_add(t->miner, "worker 12 finished job 7", 24, &tm);
        *tid = tm.id;
        lsf_anom_rare_template(t, &t->shard[s], e, &tm, i, &res);
    }
}

static void parse_sharded(lsf_anom *a, uint32_t shards)
{
    lsf_errbuf err = {{0}};
    lsf_node *root = lsf_yaml_load_string("<test>", SET, &err);
    memset(a, 0, sizeof(*a));
    if (lsf_anom_parse(a, root, shards, "snap", &err) < 0)
        fail_msg("%s", err.msg);
    lsf_node_free(root);
}

static size_t keys_of(lsf_anom *a, size_t det)
{
    size_t n = 0;
    for (uint32_t k = 0; k < a->det[det].nshards; k++)
        n += a->det[det].shard[k].n;
    return n;
}

static void test_snapshot_round_trip_and_corruption(void **state)
{
    (void)state;
    char path[] = "/tmp/lsf_anom_snapXXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    close(fd);
    unlink(path);
    lsf_errbuf err = {{0}};
    lsf_anom a, b;
    parse_sharded(&a, 4);
    /* a missing file is a first start */
    assert_int_equal(lsf_anom_snapshot_load(&a, path, &err), 0);
    uint64_t tid = 0;
    fill(&a, &tid);
    assert_int_equal(lsf_anom_snapshot_save(&a, path, &err), 0);

    /* restore into a fresh set: same keys, same template id, same next score */
    parse_sharded(&b, 4);
    assert_int_equal(lsf_anom_snapshot_load(&b, path, &err), 0);
    for (size_t d = 0; d < 3; d++)
        assert_int_equal(keys_of(&b, d), keys_of(&a, d));
    lsf_template_match tm;
    lsf_miner_add(b.det[2].miner, "worker 99 finished job 3", 24, &tm);
    assert_true(tm.id == tid && !tm.created);
    lsf_anom_result r1, r2;
    uint64_t h = lsf_hash64("k1", 2, 3);
    bool created;
    uint32_t s = lsf_anom_shard_of(&a, h);
    lsf_anom_entry *ea = lsf_anom_entry_get(&a.det[0], &a.det[0].shard[s], h, "k1", 2, &created);
    lsf_anom_entry *eb = lsf_anom_entry_get(&b.det[0], &b.det[0].shard[s], h, "k1", 2, &created);
    assert_false(created);
    lsf_anom_series_value(&a.det[0], ea, 5, 1000, &r1);
    lsf_anom_series_value(&b.det[0], eb, 5, 1000, &r2);
    assert_true(r1.score == r2.score);
    lsf_anom_free(&b);

    /* another shard count re-shards the keys */
    parse_sharded(&b, 3);
    assert_int_equal(lsf_anom_snapshot_load(&b, path, &err), 0);
    assert_int_equal(keys_of(&b, 0), keys_of(&a, 0));
    lsf_anom_free(&b);

    /* corruption: each is reported, ignored, and leaves empty state */
    FILE *f = fopen(path, "rb");
    fseek(f, 0, SEEK_END);
    long len = ftell(f);
    fseek(f, 0, SEEK_SET);
    unsigned char *good = malloc((size_t)len);
    assert_int_equal(fread(good, 1, (size_t)len, f), (size_t)len);
    fclose(f);
    static const struct {
        long at;      /* byte to flip, or -1 */
        long cut;     /* new length, or -1 */
        const char *why;
    } bad[] = {{40, -1, "checksum"}, {-1, 100, "truncated"}, {0, -1, "not an anomaly snapshot"},
               {8, -1, "version"}, {-1, 10, "header"}};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        f = fopen(path, "wb");
        unsigned char *copy = malloc((size_t)len);
        memcpy(copy, good, (size_t)len);
        if (bad[i].at >= 0)
            copy[bad[i].at] ^= 0x5a;
        fwrite(copy, 1, bad[i].cut >= 0 ? (size_t)bad[i].cut : (size_t)len, f);
        fclose(f);
        free(copy);
        parse_sharded(&b, 4);
        memset(&err, 0, sizeof(err));
        assert_int_equal(lsf_anom_snapshot_load(&b, path, &err), -1);
        if (!strstr(err.msg, bad[i].why) || !strstr(err.msg, "ignored"))
            fail_msg("case %zu: '%s' lacks '%s'", i, err.msg, bad[i].why);
        for (size_t d = 0; d < 3; d++)
            assert_int_equal(keys_of(&b, d), 0);
        lsf_anom_free(&b);
    }

    /* a detector whose settings changed starts empty; the others restore */
    f = fopen(path, "wb");
    fwrite(good, 1, (size_t)len, f);
    fclose(f);
    lsf_node *root = lsf_yaml_load_string(
        "<t>",
        "[{name: n, type: numeric, by: [k], field: v, history: 99},"
        " {name: v, type: new_value, by: [k], field: u, learning: 0s}]",
        &err);
    memset(&b, 0, sizeof(b));
    assert_int_equal(lsf_anom_parse(&b, root, 4, "t", &err), 0);
    lsf_node_free(root);
    int saved = lsf_log_threshold;
    lsf_log_threshold = LSF_LOG_ERROR; /* the info lines are expected */
    assert_int_equal(lsf_anom_snapshot_load(&b, path, &err), 0);
    lsf_log_threshold = saved;
    assert_int_equal(keys_of(&b, 0), 0);
    assert_int_equal(keys_of(&b, 1), keys_of(&a, 1));
    lsf_anom_free(&b);
    free(good);
    lsf_anom_free(&a);
    unlink(path);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_mask_rules),
        cmocka_unit_test(test_miner_groups_and_ids),
        cmocka_unit_test(test_miner_snapshot_keeps_ids),
        cmocka_unit_test(test_miner_bounded),
        cmocka_unit_test(test_miner_memo_answers_as_mining),
        cmocka_unit_test(test_miner_memo_hits_race_with_changes),
        cmocka_unit_test(test_model_scores_spike_after_learning),
        cmocka_unit_test(test_model_vigilance_after_a_report),
        cmocka_unit_test(test_model_second_tier_on_a_quiet_key),
        cmocka_unit_test(test_score_of_p),
        cmocka_unit_test(test_rate_intervals_lateness_and_quiet),
        cmocka_unit_test(test_new_value_and_rare_template),
        cmocka_unit_test(test_keys_are_bounded),
        cmocka_unit_test(test_config_errors),
        cmocka_unit_test(test_snapshot_round_trip_and_corruption),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
