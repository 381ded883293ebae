/* kafka_source.c - the `kafka` input: consumes topics as a member of a
 * consumer group and commits an offset only once logsift's sinks have
 * delivered every event up to it.
 *
 * Design: one thread runs rd_kafka_consumer_poll and feeds records to an
 * lsf_ingest. Each submitted batch gets an ack (lsf_ack) whose token is a
 * small `bt` record; every partition the batch read from queues
 * {bt, next offset} in a FIFO in read order. When the sinks release the
 * ack, bt->done is set (any thread, one atomic store); the consumer thread
 * pops done entries off each FIFO's head and commits the offset after the
 * last one, at most every commit_interval, so an offset is committed only
 * when everything before it on that partition was delivered - in order,
 * whatever order the acks come back in. On a rebalance that takes
 * partitions away, the thread submits what it holds, waits (up to
 * revoke_timeout) for their acks, commits, and only then lets them go, so
 * the next owner starts exactly after what was delivered here.
 * Threads: init/start/stop/destroy on the main thread; the consumer thread
 * owns the consumer, the ingest, the FIFOs and the rebalance callback; the
 * ack callback runs on whatever thread releases the last reference.
 */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <librdkafka/rdkafka.h>

#include "core/ioloop.h"
#include "core/log.h"
#include "core/metrics.h"
#include "core/pipeline.h"
#include "ingest/listen.h"
#include "sinks/kafka_conf.h"

#define BATCH_AGE_NS (100 * 1000000LL)

typedef struct ksrc_conf {
    lsf_input_conf common;
    lsf_strlist brokers, topics;
    char *group;
    int start_from;
    bool metadata;
    int64_t max_message_size, commit_interval_ms, revoke_timeout_ms;
    const lsf_node *kafka;
} ksrc_conf;

static const lsf_key ksrc_keys[] = {
    LSF_INPUT_KEYS(ksrc_conf),
    {"brokers", LSF_K_STRLIST, NULL, "Bootstrap brokers, host:port each.",
     offsetof(ksrc_conf, brokers), NULL, 0, 0, true},
    {"topics", LSF_K_STRLIST, NULL, "Topics to consume (a name starting with ^ is a regex).",
     offsetof(ksrc_conf, topics), NULL, 0, 0, true},
    {"group", LSF_K_STR, "logsift",
     "Consumer group: logsifts sharing a group split the topics' partitions between them.",
     offsetof(ksrc_conf, group), NULL, 0, 0, false},
    {"start_from", LSF_K_ENUM, "earliest",
     "Where a group with no committed offset starts: the oldest message or only new ones.",
     offsetof(ksrc_conf, start_from), "earliest|latest", 0, 0, false},
    {"metadata", LSF_K_BOOL, "false",
     "Add kafka.topic, kafka.partition, kafka.offset (and kafka.key) to each event.",
     offsetof(ksrc_conf, metadata), NULL, 0, 0, false},
    {"max_message_size", LSF_K_SIZE, "1MiB",
     "Longer messages are truncated to this size and tagged _truncated.",
     offsetof(ksrc_conf, max_message_size), NULL, 16, 64 << 20, false},
    {"commit_interval", LSF_K_DURATION, "1s",
     "How often delivered offsets are committed (also at a rebalance and at stop).",
     offsetof(ksrc_conf, commit_interval_ms), NULL, 10, 3600000, false},
    {"revoke_timeout", LSF_K_DURATION, "10s",
     "At a rebalance, how long to wait for the delivery of events of partitions being taken "
     "away before letting them go.",
     offsetof(ksrc_conf, revoke_timeout_ms), NULL, 0, 600000, false},
    {"kafka", LSF_K_NODE, NULL,
     "librdkafka consumer properties passed through, checked at start-up.",
     offsetof(ksrc_conf, kafka), NULL, 0, 0, false},
    LSF_KEYS_END,
};

static const char *const reserved[] = {"bootstrap.servers=brokers",
                                       "metadata.broker.list=brokers",
                                       "group.id=group",
                                       "auto.offset.reset=start_from",
                                       "enable.auto.commit=!logsift commits offsets once "
                                       "their events were delivered",
                                       "enable.auto.offset.store=!logsift commits offsets once "
                                       "their events were delivered",
                                       NULL};

/* One submitted batch; its address is the ack's token. Referenced by its
 * ack until that is released and by the FIFO entries pointing here. */
typedef struct bt {
    atomic_bool done, failed;
    atomic_int refs;
} bt;

/* Batches not yet acknowledged. Allocated apart from the stage: an ack that
 * comes after the stage is gone (only when destroy gave up waiting) still
 * finds it, which is why destroy frees it only at zero. */
typedef struct inflight {
    _Atomic int64_t n;
} inflight;

typedef struct pending {
    bt *b;
    int64_t next; /* offset after the batch's last record of this partition */
} pending;

typedef struct tpart {
    char *topic;
    int32_t partition;
    bool assigned;
    pending *q;
    size_t head, len, cap;
    int64_t done_next, committed_next; /* -1: nothing yet */
    lsf_addr_cache topic_cache;
} tpart;

/* Partitions a batch being filled read from, with its last offset in each. */
typedef struct range {
    tpart *tp;
    int64_t last;
} range;

enum { W_COMMIT, W_ASSIGN, W_CONSUME, W_KINDS };

typedef struct ksrc_ctx {
    lsf_stage *st;
    const ksrc_conf *conf;
    rd_kafka_t *rk;
    bool inited, running, subscribed;
    atomic_bool stop;
    pthread_t thread;
    lsf_ingest in;
    tpart **parts;
    size_t nparts;
    range *ranges;
    size_t nranges, capranges;
    int64_t batch_since_ns, next_commit_ns;
    _Atomic int64_t warned[W_KINDS]; /* last warning of each kind (warn_once) */
    inflight *live;
    lsf_counter *c_committed, *c_commit_errors, *c_rebalances, *c_ack_failed, *c_errors;
} ksrc_ctx;

/* A warning of kind W_* at most every 30 s (one kind does not hide another). */
#define warn_once(k, kind, ...)                                                                    \
    lsf_kafka_warn_throttled(&(k)->warned[kind], (k)->st->name, __VA_ARGS__)

/* ---- partitions and their FIFOs ------------------------------------------ */

static tpart *part_get(ksrc_ctx *k, const char *topic, int32_t partition)
{
    for (size_t i = 0; i < k->nparts; i++)
        if (k->parts[i]->partition == partition && strcmp(k->parts[i]->topic, topic) == 0)
            return k->parts[i];
    tpart *tp = calloc(1, sizeof(*tp));
    tpart **np = realloc(k->parts, (k->nparts + 1) * sizeof(*np));
    if (!tp || !np || !(tp->topic = strdup(topic)))
        lsf_die("out of memory");
    tp->partition = partition;
    tp->done_next = tp->committed_next = -1;
    k->parts = np;
    k->parts[k->nparts++] = tp;
    return tp;
}

static void fifo_push(tpart *tp, bt *b, int64_t next)
{
    if (tp->len == tp->cap) {
        size_t ncap = tp->cap ? tp->cap * 2 : 64;
        pending *nq = malloc(ncap * sizeof(*nq));
        if (!nq)
            lsf_die("out of memory");
        for (size_t i = 0; i < tp->len; i++)
            nq[i] = tp->q[(tp->head + i) % tp->cap];
        free(tp->q);
        tp->q = nq;
        tp->head = 0;
        tp->cap = ncap;
    }
    tp->q[(tp->head + tp->len++) % tp->cap] = (pending){b, next};
    atomic_fetch_add(&b->refs, 1);
}

static void bt_unref(bt *b)
{
    if (atomic_fetch_sub(&b->refs, 1) == 1)
        free(b);
}

/* Drops every entry of tp's FIFO (the partition is no longer ours). */
static void fifo_clear(tpart *tp)
{
    for (size_t j = 0; j < tp->len; j++)
        bt_unref(tp->q[(tp->head + j) % tp->cap].b);
    tp->head = tp->len = 0;
}

/* Pops the delivered entries off the head of tp's FIFO. */
static void fifo_drain(ksrc_ctx *k, tpart *tp)
{
    while (tp->len) {
        pending *p = &tp->q[tp->head];
        if (!atomic_load(&p->b->done))
            break;
        if (atomic_load(&p->b->failed))
            lsf_counter_add(k->c_ack_failed, 1);
        tp->done_next = p->next;
        bt_unref(p->b);
        tp->head = (tp->head + 1) % tp->cap;
        tp->len--;
    }
}

/* Commits, for every assigned partition, the offset after what was
 * delivered. sync: wait for the broker's answer. */
static void commit(ksrc_ctx *k, bool sync)
{
    rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(4);
    for (size_t i = 0; i < k->nparts; i++) {
        tpart *tp = k->parts[i];
        fifo_drain(k, tp);
        if (!tp->assigned || tp->done_next < 0 || tp->done_next == tp->committed_next)
            continue;
        rd_kafka_topic_partition_list_add(l, tp->topic, tp->partition)->offset = tp->done_next;
        tp->committed_next = tp->done_next;
    }
    if (l->cnt) {
        rd_kafka_resp_err_t e = rd_kafka_commit(k->rk, l, sync ? 0 : 1);
        if (e && e != RD_KAFKA_RESP_ERR__NO_OFFSET) { /* success: counted by on_commit */
            lsf_counter_add(k->c_commit_errors, 1);
            warn_once(k, W_COMMIT, "committing offsets failed: %s", rd_kafka_err2str(e));
        }
    }
    rd_kafka_topic_partition_list_destroy(l);
    k->next_commit_ns = lsf_now_mono_ns() + k->conf->commit_interval_ms * 1000000LL;
}

/* ---- acks ------------------------------------------------------------------ */

static void on_ack(void *arg, uint64_t token, bool ok)
{
    inflight *live = arg;
    bt *b = (bt *)(uintptr_t)token;
    if (!ok)
        atomic_store(&b->failed, true);
    atomic_store(&b->done, true);
    bt_unref(b);
    atomic_fetch_sub(&live->n, 1);
}

/* lsf_ingest hook: the batch holding the records of k->ranges is about to
 * be submitted; it gets an ack and a place in each partition's FIFO. */
static void on_submit(void *arg, lsf_batch *b)
{
    ksrc_ctx *k = arg;
    bt *t = calloc(1, sizeof(*t));
    if (!t)
        lsf_die("out of memory");
    atomic_init(&t->refs, 1); /* the ack's */
    for (size_t i = 0; i < k->nranges; i++)
        fifo_push(k->ranges[i].tp, t, k->ranges[i].last + 1);
    k->nranges = 0;
    atomic_fetch_add(&k->live->n, 1);
    b->ack = lsf_ack_new(on_ack, k->live, (uint64_t)(uintptr_t)t);
}

static void range_note(ksrc_ctx *k, tpart *tp, int64_t offset)
{
    for (size_t i = 0; i < k->nranges; i++)
        if (k->ranges[i].tp == tp) {
            k->ranges[i].last = offset;
            return;
        }
    if (k->nranges == k->capranges) {
        size_t n = k->capranges ? k->capranges * 2 : 16;
        range *nr = realloc(k->ranges, n * sizeof(*nr));
        if (!nr)
            lsf_die("out of memory");
        k->ranges = nr;
        k->capranges = n;
    }
    k->ranges[k->nranges++] = (range){tp, offset};
}

/* ---- consuming ------------------------------------------------------------- */

static void add_metadata(ksrc_ctx *k, lsf_event *ev, tpart *tp, const rd_kafka_message_t *m)
{
    lsf_batch *b = k->in.b;
    lsf_event_set_str(b, ev, LSF_STR_LIT("kafka.topic"),
                      lsf_ingest_addr(&k->in, &tp->topic_cache, tp->topic, strlen(tp->topic)));
    lsf_event_set_int(b, ev, LSF_STR_LIT("kafka.partition"), m->partition);
    lsf_event_set_int(b, ev, LSF_STR_LIT("kafka.offset"), m->offset);
    if (m->key && m->key_len) {
        char *key = lsf_arena_memdup(&b->arena, m->key, m->key_len);
        lsf_event_set_str(b, ev, LSF_STR_LIT("kafka.key"), lsf_str_make(key, m->key_len));
    }
}

static void take(ksrc_ctx *k, const rd_kafka_message_t *m)
{
    tpart *tp = part_get(k, rd_kafka_topic_name(m->rkt), m->partition);
    if (!m->payload || !m->len) {
        k->in.fst.empty++;
    } else {
        size_t len = m->len;
        int truncated = len > (size_t)k->conf->max_message_size;
        if (truncated)
            len = (size_t)k->conf->max_message_size;
        if (!k->in.b)
            k->batch_since_ns = lsf_now_mono_ns();
        k->in.now_ns = lsf_now_real_ns();
        k->in.bytes += m->len;
        lsf_event *ev = lsf_ingest_push(&k->in, m->payload, len, truncated);
        if (k->conf->metadata)
            add_metadata(k, ev, tp, m);
    }
    /* After the push: a push that submitted the previous batch attached the
     * ranges noted so far to it; this record belongs to the new one. */
    range_note(k, tp, m->offset);
}

static void submit(ksrc_ctx *k)
{
    lsf_ingest_flush(&k->in);
}

/* Waits (bounded) until the events of `revoked` were delivered, then
 * commits them. Called from the rebalance callback. */
static void settle_revoked(ksrc_ctx *k, const rd_kafka_topic_partition_list_t *revoked)
{
    submit(k);
    int64_t until = lsf_now_mono_ns() + k->conf->revoke_timeout_ms * 1000000LL;
    for (;;) {
        bool pending = false;
        for (int i = 0; i < revoked->cnt; i++) {
            tpart *tp = part_get(k, revoked->elems[i].topic, revoked->elems[i].partition);
            fifo_drain(k, tp);
            pending |= tp->len > 0;
        }
        if (!pending)
            break;
        if (lsf_now_mono_ns() >= until) {
            lsf_warn("%s: events of revoked partitions not delivered within revoke_timeout; their "
                     "next owner may read them again",
                     k->st->name);
            break;
        }
        struct timespec ts = {0, 5000000};
        nanosleep(&ts, NULL);
    }
    commit(k, true);
    for (int i = 0; i < revoked->cnt; i++) {
        tpart *tp = part_get(k, revoked->elems[i].topic, revoked->elems[i].partition);
        tp->assigned = false;
        fifo_clear(tp);
    }
    k->nranges = 0; /* ranges of revoked partitions went out with the batch */
}

static void on_rebalance(rd_kafka_t *rk, rd_kafka_resp_err_t err,
                         rd_kafka_topic_partition_list_t *parts, void *opaque)
{
    ksrc_ctx *k = opaque;
    bool coop = strcmp(rd_kafka_rebalance_protocol(rk), "COOPERATIVE") == 0;
    lsf_counter_add(k->c_rebalances, 1);
    if (err == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS) {
        for (int i = 0; i < parts->cnt; i++) {
            tpart *tp = part_get(k, parts->elems[i].topic, parts->elems[i].partition);
            tp->assigned = true;
            tp->done_next = tp->committed_next = -1;
        }
        lsf_info("%s: assigned %d partition(s)", k->st->name, parts->cnt);
        rd_kafka_error_t *e = NULL;
        rd_kafka_resp_err_t re = 0;
        if (coop)
            e = rd_kafka_incremental_assign(rk, parts);
        else
            re = rd_kafka_assign(rk, parts);
        if (e || re) {
            warn_once(k, W_ASSIGN, "assigning partitions failed: %s",
                      e ? rd_kafka_error_string(e) : rd_kafka_err2str(re));
            rd_kafka_error_destroy(e);
        }
        return;
    }
    lsf_info("%s: %d partition(s) revoked; settling their deliveries", k->st->name, parts->cnt);
    settle_revoked(k, parts);
    if (coop) {
        rd_kafka_error_t *e = rd_kafka_incremental_unassign(rk, parts);
        if (e)
            rd_kafka_error_destroy(e);
    } else {
        rd_kafka_assign(rk, NULL);
    }
}

static void on_commit(rd_kafka_t *rk, rd_kafka_resp_err_t err,
                      rd_kafka_topic_partition_list_t *offsets, void *opaque)
{
    (void)rk;
    ksrc_ctx *k = opaque;
    if (err && err != RD_KAFKA_RESP_ERR__NO_OFFSET) {
        lsf_counter_add(k->c_commit_errors, 1);
        warn_once(k, W_COMMIT, "committing offsets failed: %s", rd_kafka_err2str(err));
    } else if (!err) {
        lsf_counter_add(k->c_committed, (uint64_t)offsets->cnt);
    }
}

static void on_error(rd_kafka_t *rk, int err, const char *reason, void *opaque)
{
    (void)rk;
    ksrc_ctx *k = opaque;
    lsf_counter_add(k->c_errors, 1);
    if (err == RD_KAFKA_RESP_ERR__FATAL)
        lsf_err("%s: fatal consumer error: %s", k->st->name, reason);
    else
        warn_once(k, W_CONSUME, "%s", reason);
}

static void *consume_main(void *arg)
{
    ksrc_ctx *k = arg;
    while (!atomic_load(&k->stop)) {
        rd_kafka_message_t *m = rd_kafka_consumer_poll(k->rk, 100);
        int64_t now = lsf_now_mono_ns();
        if (m) {
            if (!m->err)
                take(k, m);
            else if (m->err != RD_KAFKA_RESP_ERR__PARTITION_EOF) {
                lsf_counter_add(k->c_errors, 1);
                warn_once(k, W_CONSUME, "%s", rd_kafka_message_errstr(m));
            }
            rd_kafka_message_destroy(m);
        }
        if (k->in.b && (!m || now - k->batch_since_ns >= BATCH_AGE_NS))
            submit(k);
        if (now >= k->next_commit_ns)
            commit(k, false);
    }
    submit(k);
    return NULL;
}

/* ---- stage ------------------------------------------------------------------ */

static int ksrc_init(lsf_stage *st, lsf_errbuf *err)
{
    ksrc_ctx *k = st->ctx;
    const ksrc_conf *cf = st->conf;
    k->st = st;
    k->conf = cf;
    k->live = calloc(1, sizeof(*k->live));
    if (!k->live)
        lsf_die("out of memory");
    char brokers[4096];
    if (lsf_kafka_brokers(st, &cf->brokers, brokers, sizeof(brokers), err) < 0)
        return -1;
    if (cf->topics.n == 0)
        return lsf_node_error(err, lsf_key_node(st, "topics"), "topics: the list is empty");
    if (!cf->group || !*cf->group)
        return lsf_node_error(err, lsf_key_node(st, "group"), "group: must not be empty");
    const char *props[][2] = {{"bootstrap.servers", brokers},
                              {"client.id", "logsift"},
                              {"group.id", cf->group},
                              {"auto.offset.reset", cf->start_from ? "latest" : "earliest"},
                              {"enable.auto.commit", "false"},
                              {"enable.auto.offset.store", "false"},
                              {"reconnect.backoff.max.ms", "1000"},
                              {NULL, NULL}};
    rd_kafka_conf_t *conf = lsf_kafka_conf_new(st, props, reserved, err);
    if (!conf)
        return -1;
    rd_kafka_conf_set_rebalance_cb(conf, on_rebalance);
    rd_kafka_conf_set_offset_commit_cb(conf, on_commit);
    k->rk = lsf_kafka_new(st, RD_KAFKA_CONSUMER, conf, k, on_error, err);
    if (!k->rk)
        return -1;
    rd_kafka_poll_set_consumer(k->rk);
    rd_kafka_topic_partition_list_t *topics = rd_kafka_topic_partition_list_new((int)cf->topics.n);
    for (size_t i = 0; i < cf->topics.n; i++)
        rd_kafka_topic_partition_list_add(topics, cf->topics.v[i], RD_KAFKA_PARTITION_UA);
    rd_kafka_resp_err_t e = rd_kafka_subscribe(k->rk, topics);
    rd_kafka_topic_partition_list_destroy(topics);
    if (e)
        return lsf_node_error(err, lsf_key_node(st, "topics"), "topics: cannot subscribe: %s",
                              rd_kafka_err2str(e));
    k->subscribed = true;
    lsf_info("%s: joining consumer group '%s' for %zu topic(s) at %s", st->name, cf->group,
             cf->topics.n, brokers);
    lsf_ingest_init(&k->in, st);
    k->in.on_submit = on_submit;
    k->in.on_submit_arg = k;
    k->c_committed = lsf_counter_new(st->name, "offsets_committed");
    k->c_commit_errors = lsf_counter_new(st->name, "commit_errors");
    k->c_rebalances = lsf_counter_new(st->name, "rebalances");
    k->c_ack_failed = lsf_counter_new(st->name, "ack_failed");
    k->c_errors = lsf_counter_new(st->name, "consumer_errors");
    k->inited = true;
    return 0;
}

static int ksrc_start(lsf_stage *st)
{
    ksrc_ctx *k = st->ctx;
    int rc = pthread_create(&k->thread, NULL, consume_main, k);
    if (rc) {
        lsf_err("%s: cannot start a thread: %s", st->name, strerror(rc));
        return -1;
    }
    k->running = true;
    return 0;
}

/* Stops consuming; the thread submits the batch it holds. */
static void ksrc_stop(lsf_stage *st)
{
    ksrc_ctx *k = st->ctx;
    if (!k->running)
        return;
    atomic_store(&k->stop, true);
    pthread_join(k->thread, NULL);
    k->running = false;
}

/* Runs after the sinks flushed: waits (bounded) for the last acks, commits,
 * and leaves the group. */
static void ksrc_destroy(lsf_stage *st)
{
    ksrc_ctx *k = st->ctx;
    if (!k->rk) {
        free(k->live);
        k->live = NULL;
        return;
    }
    ksrc_stop(st);
    if (k->inited) {
        int64_t until = lsf_now_mono_ns() + 5000000000LL;
        while (atomic_load(&k->live->n) > 0 && lsf_now_mono_ns() < until) {
            struct timespec ts = {0, 10000000};
            nanosleep(&ts, NULL);
        }
        commit(k, true);
        if (atomic_load(&k->live->n) > 0)
            lsf_warn("%s: %" PRId64 " batches still undelivered at exit; their offsets stay "
                     "uncommitted and they will be read again",
                     st->name, atomic_load(&k->live->n));
    }
    if (k->subscribed)
        rd_kafka_consumer_close(k->rk);
    rd_kafka_destroy(k->rk);
    k->rk = NULL;
    for (size_t i = 0; i < k->nparts; i++) {
        tpart *tp = k->parts[i];
        fifo_clear(tp); /* a late ack frees its own bt */
        free(tp->q);
        free(tp->topic);
        free(tp);
    }
    free(k->parts);
    free(k->ranges);
    if (k->live && atomic_load(&k->live->n) == 0)
        free(k->live); /* else left for the late acks */
    k->live = NULL;
}

const lsf_stage_def lsf_stage_kafka_input = {
    .name = "kafka",
    .kind = LSF_STAGE_INPUT,
    .help = "Consumes Kafka topics as a consumer group; offsets are committed only after "
            "delivery by logsift's sinks.",
    .keys = ksrc_keys,
    .conf_size = sizeof(ksrc_conf),
    .ctx_size = sizeof(ksrc_ctx),
    .init = ksrc_init,
    .start = ksrc_start,
    .stop = ksrc_stop,
    .destroy = ksrc_destroy,
};
