/* kafka.c - the `kafka` sink: events, alerts and dead letters to Kafka with
 * librdkafka, a disk spool while the brokers are away, nothing dropped
 * silently.
 *
 * Design: a small state machine, changed only under the sink's lock:
 *   ONLINE    deliver() produces every line (RD_KAFKA_MSG_F_COPY) and
 *             retains the batch's ack per message; the delivery report
 *             releases it, so an input learns of delivery only when the
 *             broker confirmed it (acks: all by default).
 *   PURGING   the brokers look away (librdkafka reports all brokers down,
 *             a delivery failed, or nothing was confirmed for spool_after
 *             while messages waited): everything librdkafka holds, queued
 *             or in flight, is purged and its delivery reports append it to
 *             the spool (in-flight ones flagged "maybe sent": they are the
 *             only possible duplicates). deliver() answers LSF_AGAIN until
 *             the last report is in, so older events reach the spool first.
 *   SPOOLING  deliver() appends to the spool (LSF_AGAIN when it is full:
 *             backpressure to TCP inputs). Every retry_interval the poll
 *             thread asks the cluster for metadata.
 *   REPLAYING the cluster answered: the poll thread produces the spool's
 *             records in order, a bounded window at a time, committing the
 *             spool as reports confirm them; deliver() keeps appending so
 *             order holds; once the spool is empty, ONLINE again.
 * Acks of spooled events are released when the spool is durable by its
 * fsync policy. A message that fails permanently (too large, unknown or
 * forbidden topic) goes, wrapped with the reason, to dead_letter_topic when
 * set and otherwise (or when that fails too) to dead_letter_file.
 * The delivery-report opaque tells the three kinds of message apart by its
 * low bits: a batch ack (direct), a replay window id, a dead letter's ack.
 * Threads: init/flush/destroy on the main thread; deliver on one worker at
 * a time; the stage's poll thread serves librdkafka's callbacks (delivery
 * reports, errors) and runs the state machine's timers and the replay.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <librdkafka/rdkafka.h>

#include "core/ioloop.h"
#include "core/log.h"
#include "core/metrics.h"
#include "core/pipeline.h"
#include "ingest/listen.h"
#include "sinks/json_out.h"
#include "sinks/kafka_conf.h"
#include "sinks/spool.h"
#include "sinks/write_all.h"

enum { ONLINE, PURGING, SPOOLING, REPLAYING };
static const char *const state_names[] = {"online", "purging", "spooling", "replaying"};

enum { K_EVENTS, K_ALERTS, K_DEAD, NKINDS };

#define TAG_DIRECT 0u
#define TAG_REPLAY 1u
#define TAG_DEAD 2u
#define TAG_MASK 3u

#define RING_CAP 16384
#define PURGE_MAX_NS (10 * 1000000000LL)

typedef struct kafka_conf {
    lsf_strlist brokers;
    char *topic, *alerts_topic, *dead_letter_topic;
    char *key_field, *missing_field;
    int compression, acks;
    bool idempotence;
    int64_t linger_ms, batch_bytes;
    char *spool_dir;
    int64_t spool_max, spool_segment;
    int spool_fsync;
    int64_t fsync_interval_ms, spool_after_ms, retry_ms, flush_timeout_ms;
    char *dead_letter_file;
    const lsf_node *kafka;
} kafka_conf;

static const char *const compressions[] = {"none", "gzip", "snappy", "lz4", "zstd"};
static const char *const acks_values[] = {"all", "1", "0"};

static const lsf_key kafka_keys[] = {
    {"brokers", LSF_K_STRLIST, NULL, "Bootstrap brokers, host:port each.",
     offsetof(kafka_conf, brokers), NULL, 0, 0, true},
    {"topic", LSF_K_STR, "logs",
     "Topic of events; a template may name fields: logs-{host.name}.",
     offsetof(kafka_conf, topic), NULL, 0, 0, false},
    {"alerts_topic", LSF_K_STR, "alerts",
     "Topic (or template) of alerts: events whose event.kind is alert or signal.",
     offsetof(kafka_conf, alerts_topic), NULL, 0, 0, false},
    {"dead_letter_topic", LSF_K_STR, "",
     "Topic for events with event.kind pipeline_error and for messages Kafka refused for "
     "good (wrapped with the reason); empty: those go to dead_letter_file.",
     offsetof(kafka_conf, dead_letter_topic), NULL, 0, 0, false},
    {"key_field", LSF_K_STR, "host.name",
     "Field whose value is the message key (partitioning); empty: no key.",
     offsetof(kafka_conf, key_field), NULL, 0, 0, false},
    {"missing_field", LSF_K_STR, "_unknown",
     "Stands in for a topic template field the event lacks (counted as topic_field_missing).",
     offsetof(kafka_conf, missing_field), NULL, 0, 0, false},
    {"compression", LSF_K_ENUM, "lz4", "Compression of message batches.",
     offsetof(kafka_conf, compression), "none|gzip|snappy|lz4|zstd", 0, 0, false},
    {"acks", LSF_K_ENUM, "all",
     "Broker acknowledgements before a message counts as delivered (all: every in-sync replica).",
     offsetof(kafka_conf, acks), "all|1|0", 0, 0, false},
    {"idempotence", LSF_K_BOOL, "true",
     "Idempotent producer: retries never duplicate or reorder (needs acks: all).",
     offsetof(kafka_conf, idempotence), NULL, 0, 0, false},
    {"linger", LSF_K_DURATION, "5ms", "How long librdkafka waits to fill a message batch.",
     offsetof(kafka_conf, linger_ms), NULL, 0, 900000, false},
    {"batch_size", LSF_K_SIZE, "1MiB", "Most bytes in one message batch to a partition.",
     offsetof(kafka_conf, batch_bytes), NULL, 1, 2147483647, false},
    {"spool_dir", LSF_K_STR, "",
     "Spool directory; empty: <state_dir>/kafka-spool-<sink name> (give the sink a name so it "
     "stays put).",
     offsetof(kafka_conf, spool_dir), NULL, 0, 0, false},
    {"spool_max_size", LSF_K_SIZE, "1GiB",
     "Spool size cap; when reached, inputs are held (TCP stops reading) instead of dropping.",
     offsetof(kafka_conf, spool_max), NULL, 1 << 20, INT64_MAX, false},
    {"spool_segment_size", LSF_K_SIZE, "64MiB", "Size of one spool segment file.",
     offsetof(kafka_conf, spool_segment), NULL, 64 << 10, INT64_MAX, false},
    {"spool_fsync", LSF_K_ENUM, "interval",
     "interval: fdatasync every spool_fsync_interval; batch: before a spooled batch counts as "
     "taken; never: leave it to the OS.",
     offsetof(kafka_conf, spool_fsync), LSF_SPOOL_FSYNC_CHOICES, 0, 0, false},
    {"spool_fsync_interval", LSF_K_DURATION, "1s", "Period of spool_fsync: interval.",
     offsetof(kafka_conf, fsync_interval_ms), NULL, 1, 3600000, false},
    {"spool_after", LSF_K_DURATION, "5s",
     "Spool when messages wait this long without any delivery report.",
     offsetof(kafka_conf, spool_after_ms), NULL, 100, 3600000, false},
    {"retry_interval", LSF_K_DURATION, "1s", "While spooling, how often to check the brokers.",
     offsetof(kafka_conf, retry_ms), NULL, 10, 600000, false},
    {"flush_timeout", LSF_K_DURATION, "10s",
     "At shutdown, how long to wait for delivery before spooling the rest.",
     offsetof(kafka_conf, flush_timeout_ms), NULL, 0, 3600000, false},
    {"dead_letter_file", LSF_K_STR, "",
     "JSON lines file for dead letters; empty: <spool_dir>/dead-letter.jsonl.",
     offsetof(kafka_conf, dead_letter_file), NULL, 0, 0, false},
    {"kafka", LSF_K_NODE, NULL,
     "librdkafka properties passed through, checked at start-up (e.g. security.protocol, "
     "sasl.*, ssl.*).",
     offsetof(kafka_conf, kafka), NULL, 0, 0, false},
    LSF_KEYS_END,
};

/* Properties the sink sets from its own keys. */
static const char *const reserved[] = {
    "bootstrap.servers=brokers", "metadata.broker.list=brokers", "compression.type=compression",
    "compression.codec=compression", "acks=acks", "request.required.acks=acks",
    "enable.idempotence=idempotence", "linger.ms=linger", "queue.buffering.max.ms=linger",
    "batch.size=batch_size", NULL};

enum { R_SENT, R_DONE, R_FAILED };

typedef struct replay_ent {
    lsf_spool_pos start, end;
    uint8_t state;
} replay_ent;

typedef struct topic_ent {
    char *name;
    rd_kafka_topic_t *rkt;
} topic_ent;

typedef struct kmsg {
    rd_kafka_topic_t *rkt;
    const char *key, *val;
    size_t klen, vlen;
    bool has_key;
} kmsg;

typedef struct kafka_ctx {
    lsf_stage *st;
    const kafka_conf *conf;
    rd_kafka_t *rk;
    pthread_mutex_t lock; /* everything below that is not atomic */
    bool lock_init;
    _Atomic int state; /* changed under the lock; read anywhere */
    bool fatal, flushed;
    int64_t purge_since_ns, next_probe_ns, last_sync_ns;
    lsf_kafka_tpl tpl[NKINDS];
    rd_kafka_topic_t *static_rkt[NKINDS];
    lsf_str key_field;
    topic_ent *topics;
    size_t ntopics, captopics;
    /* spool */
    lsf_spool *spool;
    char *spool_dir, *dl_path;
    int dl_fd;
    lsf_ack **pend; /* acks of spooled events, released once durable */
    size_t npend, cappend;
    bool spool_full, spool_err_logged;
    /* deliver() resuming a batch it answered LSF_AGAIN for */
    bool resume_valid;
    uint64_t resume_seq;
    uint32_t resume_line;
    /* replay window */
    replay_ent *ring;
    uint64_t ring_base; /* id of ring[first] */
    size_t ring_first, ring_len, resend;
    lsf_spool_pos read_pos;
    uint64_t replayed_run;
    lsf_outbuf dlbuf;
    /* health, from any thread */
    _Atomic int64_t outstanding, last_progress_ns;
    atomic_bool want_offline, all_down;
    char offline_reason[256]; /* under lock */
    _Atomic int64_t last_err_log_ns;
    /* poll thread */
    pthread_t thread;
    bool running;
    atomic_bool stop;
    lsf_counter *c_produced, *c_delivered, *c_spooled, *c_maybe_sent, *c_replayed, *c_dead,
        *c_failed, *c_topic_missing, *c_key_missing, *c_spool_full, *c_outages, *c_corrupt;
} kafka_ctx;


/* Under the lock. */
static void set_state(kafka_ctx *c, int to)
{
    lsf_debug("%s: %s -> %s", c->st->name, state_names[c->state], state_names[to]);
    c->state = to;
}

/* ---- topics --------------------------------------------------------------- */

static uint64_t fnv1a(const char *s, size_t n)
{
    uint64_t h = 1469598103934665603ull;
    for (size_t i = 0; i < n; i++)
        h = (h ^ (unsigned char)s[i]) * 1099511628211ull;
    return h;
}

/* The handle of topic `name` (created on first use). Under the lock. */
static rd_kafka_topic_t *topic_get(kafka_ctx *c, const char *name, size_t len)
{
    if (c->ntopics * 10 >= c->captopics * 7) {
        size_t ncap = c->captopics ? c->captopics * 2 : 64;
        topic_ent *nt = calloc(ncap, sizeof(*nt));
        if (!nt)
            lsf_die("out of memory (topics)");
        for (size_t i = 0; i < c->captopics; i++) {
            if (!c->topics[i].name)
                continue;
            size_t h = fnv1a(c->topics[i].name, strlen(c->topics[i].name)) & (ncap - 1);
            while (nt[h].name)
                h = (h + 1) & (ncap - 1);
            nt[h] = c->topics[i];
        }
        free(c->topics);
        c->topics = nt;
        c->captopics = ncap;
    }
    size_t h = fnv1a(name, len) & (c->captopics - 1);
    for (; c->topics[h].name; h = (h + 1) & (c->captopics - 1))
        if (strlen(c->topics[h].name) == len && memcmp(c->topics[h].name, name, len) == 0)
            return c->topics[h].rkt;
    char *copy = strndup(name, len);
    if (!copy)
        lsf_die("out of memory");
    rd_kafka_topic_t *rkt = rd_kafka_topic_new(c->rk, copy, NULL);
    if (!rkt)
        lsf_die("%s: cannot create a handle for topic '%s': %s", c->st->name, copy,
                rd_kafka_err2str(rd_kafka_last_error()));
    c->topics[h] = (topic_ent){copy, rkt};
    c->ntopics++;
    return rkt;
}

/* ---- spool side ----------------------------------------------------------- */


static void pend_push(kafka_ctx *c, lsf_ack *a)
{
    if (!a)
        return;
    if (c->npend == c->cappend) {
        size_t n = c->cappend ? c->cappend * 2 : 256;
        lsf_ack **np = realloc(c->pend, n * sizeof(*np));
        if (!np)
            lsf_die("out of memory (acks)");
        c->pend = np;
        c->cappend = n;
    }
    c->pend[c->npend++] = a;
}

/* Writes the spool's buffer and, when the fsync policy says the records are
 * now durable, releases the acks waiting for that. Under the lock. */
static void settle(kafka_ctx *c, bool sync_now)
{
    int rc = lsf_spool_flush(c->spool);
    if (rc == 0 && c->conf->spool_fsync == LSF_SPOOL_FSYNC_INTERVAL) {
        int64_t now = lsf_now_mono_ns();
        if (!sync_now && now - c->last_sync_ns < c->conf->fsync_interval_ms * 1000000LL)
            return;
        rc = lsf_spool_sync(c->spool);
        c->last_sync_ns = now;
    }
    if (rc < 0) {
        lsf_kafka_warn_throttled(&c->last_err_log_ns, c->st->name, "writing the spool in %s failed: %s; events wait in memory", c->spool_dir,
                      strerror(-rc));
        return;
    }
    for (size_t i = 0; i < c->npend; i++)
        lsf_ack_release(c->pend[i]);
    c->npend = 0;
}

/* Appends one message to the spool. `force` ignores the cap (for messages
 * librdkafka handed back: they must go somewhere). 0, -ENOSPC, -errno. */
static int spool_put(kafka_ctx *c, const char *topic, const kmsg *m, uint8_t flags, bool force)
{
    lsf_spool_rec r = {.topic = lsf_str_make(topic, strlen(topic)),
                       .key = lsf_str_make(m->key, m->klen),
                       .value = lsf_str_make(m->val, m->vlen),
                       .has_key = m->has_key,
                       .flags = flags};
    int rc = lsf_spool_append(c->spool, &r, force);
    if (rc == 0) {
        lsf_counter_add(c->c_spooled, 1);
        if (flags & LSF_SPOOL_F_MAYBE_SENT)
            lsf_counter_add(c->c_maybe_sent, 1);
    }
    return rc;
}

/* ---- dead letters ------------------------------------------------------------ */

static void dl_wrap(kafka_ctx *c, const char *topic, const kmsg *m, rd_kafka_resp_err_t err)
{
    lsf_outbuf *o = &c->dlbuf;
    char ts[40];
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    size_t n = lsf_format_rfc3339_utc((int64_t)now.tv_sec * 1000000000LL + now.tv_nsec, ts);
    lsf_outbuf_reset(o);
    lsf_outbuf_append(o, "{\"@timestamp\":\"", 15);
    lsf_outbuf_append(o, ts, n);
    lsf_outbuf_append(o, "\",\"error\":{\"code\":", 18);
    const char *name = rd_kafka_err2name(err), *why = rd_kafka_err2str(err);
    lsf_json_write_string(o, name, strlen(name));
    lsf_outbuf_append(o, ",\"message\":", 11);
    lsf_json_write_string(o, why, strlen(why));
    lsf_outbuf_append(o, "},\"kafka\":{\"topic\":", 19);
    lsf_json_write_string(o, topic, strlen(topic));
    lsf_outbuf_append(o, "},\"event\":{\"kind\":\"pipeline_error\",\"original\":", 46);
    lsf_json_write_string(o, m->val, m->vlen);
    lsf_outbuf_append(o, "}}", 2);
}

/* Sends a message Kafka refused for good to the dead-letter topic, or
 * appends it to the dead-letter file. Takes over one reference of `ack`.
 * `wrapped`: m is already a dead letter (its topic failed). Under the lock. */
static void dead_letter(kafka_ctx *c, const char *topic, const kmsg *m, rd_kafka_resp_err_t err,
                        lsf_ack *ack, bool wrapped)
{
    const char *val = m->val;
    size_t vlen = m->vlen;
    if (!wrapped) {
        dl_wrap(c, topic, m, err);
        val = c->dlbuf.buf;
        vlen = c->dlbuf.len;
        if (c->static_rkt[K_DEAD] && c->state == ONLINE) {
            atomic_fetch_add(&c->outstanding, 1);
            void *op = (void *)((uintptr_t)ack | TAG_DEAD);
            if (!rd_kafka_producev(c->rk, RD_KAFKA_V_RKT(c->static_rkt[K_DEAD]),
                                   RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
                                   RD_KAFKA_V_VALUE((void *)val, vlen),
                                   RD_KAFKA_V_KEY(m->has_key ? m->key : NULL, m->klen),
                                   RD_KAFKA_V_OPAQUE(op), RD_KAFKA_V_END))
                return;
            atomic_fetch_sub(&c->outstanding, 1);
        }
    }
    int e = lsf_write_all(c->dl_fd, val, vlen);
    if (!e)
        e = lsf_write_all(c->dl_fd, "\n", 1);
    if (!e && c->conf->spool_fsync == LSF_SPOOL_FSYNC_BATCH && fdatasync(c->dl_fd) < 0)
        e = errno;
    if (e) {
        lsf_counter_add(c->c_failed, 1);
        lsf_ack_fail(ack);
        lsf_err("%s: a message for %s was refused (%s) and writing it to %s failed: %s; it is lost",
                c->st->name, topic, rd_kafka_err2str(err), c->dl_path, strerror(e));
    } else {
        lsf_counter_add(c->c_dead, 1);
        lsf_kafka_warn_throttled(&c->last_err_log_ns, c->st->name, "a message for %s was refused (%s); written to %s", topic,
                      rd_kafka_err2str(err), c->dl_path);
    }
    lsf_ack_release(ack);
}

static bool permanent(rd_kafka_resp_err_t e)
{
    switch (e) {
    case RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE:
    case RD_KAFKA_RESP_ERR_INVALID_MSG:
    case RD_KAFKA_RESP_ERR_INVALID_MSG_SIZE:
    case RD_KAFKA_RESP_ERR_RECORD_LIST_TOO_LARGE:
    case RD_KAFKA_RESP_ERR_INVALID_RECORD:
    case RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED:
    case RD_KAFKA_RESP_ERR_CLUSTER_AUTHORIZATION_FAILED:
    case RD_KAFKA_RESP_ERR_TOPIC_EXCEPTION:
    case RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART:
    case RD_KAFKA_RESP_ERR__UNKNOWN_TOPIC:
    case RD_KAFKA_RESP_ERR__UNKNOWN_PARTITION:
    case RD_KAFKA_RESP_ERR__INVALID_ARG:
        return true;
    default:
        return false;
    }
}

/* ---- state changes (under the lock) ------------------------------------------- */

static void go_offline(kafka_ctx *c, const char *reason)
{
    if (c->state == ONLINE || c->state == REPLAYING) {
        lsf_warn("%s: Kafka is not taking messages (%s); spooling to %s", c->st->name, reason,
                 c->spool_dir);
        lsf_counter_add(c->c_outages, 1);
        set_state(c, PURGING);
        c->purge_since_ns = lsf_now_mono_ns();
    }
    if (c->state == PURGING) {
        rd_kafka_resp_err_t e =
            rd_kafka_purge(c->rk, RD_KAFKA_PURGE_F_QUEUE | RD_KAFKA_PURGE_F_INFLIGHT);
        if (e)
            lsf_warn("%s: purging librdkafka's queue: %s", c->st->name, rd_kafka_err2str(e));
    }
}

static void request_offline(kafka_ctx *c, const char *reason)
{
    if (!atomic_exchange(&c->want_offline, true)) {
        pthread_mutex_lock(&c->lock);
        snprintf(c->offline_reason, sizeof(c->offline_reason), "%.200s", reason);
        pthread_mutex_unlock(&c->lock);
    }
}

static bool stalled(kafka_ctx *c, int64_t now)
{
    return atomic_load(&c->outstanding) > 0 &&
           now - atomic_load(&c->last_progress_ns) > c->conf->spool_after_ms * 1000000LL;
}

/* ---- producing ------------------------------------------------------------------ */

static rd_kafka_resp_err_t produce(kafka_ctx *c, const kmsg *m, void *opaque)
{
    if (atomic_fetch_add(&c->outstanding, 1) == 0)
        atomic_store(&c->last_progress_ns, lsf_now_mono_ns());
    rd_kafka_resp_err_t e = rd_kafka_producev(
        c->rk, RD_KAFKA_V_RKT(m->rkt), RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
        RD_KAFKA_V_VALUE((void *)m->val, m->vlen),
        RD_KAFKA_V_KEY(m->has_key ? m->key : NULL, m->has_key ? m->klen : 0),
        RD_KAFKA_V_OPAQUE(opaque), RD_KAFKA_V_END);
    if (e)
        atomic_fetch_sub(&c->outstanding, 1);
    return e;
}

static replay_ent *ring_at(kafka_ctx *c, size_t rel)
{
    return &c->ring[(c->ring_first + rel) % RING_CAP];
}

/* Pops confirmed records off the front of the window and commits them. */
static void ring_commit(kafka_ctx *c)
{
    uint64_t n = 0;
    lsf_spool_pos end = {0, 0};
    while (c->ring_len && ring_at(c, 0)->state == R_DONE) {
        end = ring_at(c, 0)->end;
        c->ring_first = (c->ring_first + 1) % RING_CAP;
        c->ring_base++;
        c->ring_len--;
        n++;
    }
    if (!n)
        return;
    c->resend = c->resend > n ? c->resend - n : 0;
    int rc = lsf_spool_commit(c->spool, end, n);
    if (rc < 0)
        lsf_kafka_warn_throttled(&c->last_err_log_ns, c->st->name, "spool %s: saving the replay position failed: %s", c->spool_dir,
                      strerror(-rc));
}

/* Produces spool record r for window entry `rel`. 0, or LSF_AGAIN to stop
 * this round (queue full or the cluster refused). */
static int replay_one(kafka_ctx *c, size_t rel, const lsf_spool_rec *r)
{
    replay_ent *e = ring_at(c, rel);
    char topic[LSF_KAFKA_TOPIC_MAX + 1];
    size_t tl = r->topic.len > LSF_KAFKA_TOPIC_MAX ? LSF_KAFKA_TOPIC_MAX : r->topic.len;
    memcpy(topic, r->topic.ptr, tl);
    topic[tl] = 0;
    kmsg m = {.rkt = topic_get(c, topic, tl), .key = r->key.ptr, .klen = r->key.len,
              .has_key = r->has_key, .val = r->value.ptr, .vlen = r->value.len};
    uint64_t id = c->ring_base + rel;
    rd_kafka_resp_err_t err = produce(c, &m, (void *)(uintptr_t)((id << 2) | TAG_REPLAY));
    if (!err) {
        e->state = R_SENT;
        return 0;
    }
    if (err == RD_KAFKA_RESP_ERR__QUEUE_FULL) {
        e->state = R_FAILED;
        return LSF_AGAIN;
    }
    if (permanent(err)) {
        dead_letter(c, topic, &m, err, NULL, false);
        e->state = R_DONE;
        return 0;
    }
    e->state = R_FAILED;
    go_offline(c, rd_kafka_err2str(err));
    return LSF_AGAIN;
}

/* One round of replay: resend what failed in the window, then read on. */
static void replay_step(kafka_ctx *c)
{
    lsf_spool_rec r;
    for (; c->resend < c->ring_len; c->resend++) {
        replay_ent *e = ring_at(c, c->resend);
        if (e->state != R_FAILED)
            continue;
        lsf_spool_pos p = e->start;
        if (lsf_spool_read(c->spool, &p, &r, NULL) <= 0) {
            e->state = R_DONE; /* cannot be read again: counted as corrupt */
            continue;
        }
        if (replay_one(c, c->resend, &r) != 0)
            return;
    }
    int rc = 0;
    while (c->ring_len < RING_CAP) {
        lsf_spool_pos start, p = c->read_pos;
        rc = lsf_spool_read(c->spool, &p, &r, &start);
        if (rc <= 0)
            break;
        replay_ent *e = ring_at(c, c->ring_len);
        e->start = start;
        e->end = p;
        c->ring_len++;
        c->read_pos = p;
        c->resend = c->ring_len;
        if (replay_one(c, c->ring_len - 1, &r) != 0) {
            c->resend = c->ring_len - 1;
            return;
        }
        c->replayed_run++;
    }
    if (rc < 0) {
        lsf_kafka_warn_throttled(&c->last_err_log_ns, c->st->name, "reading the spool %s failed: %s", c->spool_dir, strerror(-rc));
        return;
    }
    if (rc == 0 && c->ring_len == 0) {
        lsf_spool_commit(c->spool, c->read_pos, 0);
        if (lsf_spool_empty(c->spool)) {
            lsf_info("%s: spool replayed (%" PRIu64 " records); delivering directly again",
                     c->st->name, c->replayed_run);
            set_state(c, ONLINE);
        }
    }
}

/* ---- librdkafka callbacks (poll thread, or the main thread in flush) ------------- */

static void on_delivery(rd_kafka_t *rk, const rd_kafka_message_t *msg, void *opaque)
{
    (void)rk;
    kafka_ctx *c = opaque;
    uintptr_t op = (uintptr_t)msg->_private;
    unsigned tag = op & TAG_MASK;
    atomic_fetch_sub(&c->outstanding, 1);
    atomic_store(&c->last_progress_ns, lsf_now_mono_ns());
    rd_kafka_resp_err_t err = msg->err;
    if (!err && tag != TAG_REPLAY) {
        lsf_counter_add(tag == TAG_DEAD ? c->c_dead : c->c_delivered, 1);
        lsf_ack_release((lsf_ack *)(op & ~(uintptr_t)TAG_MASK));
        return;
    }
    const char *topic = rd_kafka_topic_name(msg->rkt);
    kmsg m = {.rkt = msg->rkt, .key = msg->key, .klen = msg->key_len, .has_key = msg->key != NULL,
              .val = msg->payload, .vlen = msg->len};
    bool maybe = rd_kafka_message_status(msg) == RD_KAFKA_MSG_STATUS_POSSIBLY_PERSISTED;
    bool ours = err == RD_KAFKA_RESP_ERR__PURGE_QUEUE || err == RD_KAFKA_RESP_ERR__PURGE_INFLIGHT;
    if (err && !ours && !permanent(err))
        request_offline(c, rd_kafka_err2str(err));
    pthread_mutex_lock(&c->lock);
    if (tag == TAG_REPLAY) {
        uint64_t id = op >> 2;
        if (id >= c->ring_base && id < c->ring_base + c->ring_len) {
            size_t rel = (size_t)(id - c->ring_base);
            replay_ent *e = ring_at(c, rel);
            if (!err) {
                e->state = R_DONE;
                lsf_counter_add(c->c_replayed, 1);
                lsf_counter_add(c->c_delivered, 1);
            } else if (permanent(err)) {
                dead_letter(c, topic, &m, err, NULL, false);
                e->state = R_DONE;
            } else {
                e->state = R_FAILED;
                if (rel < c->resend)
                    c->resend = rel;
            }
        }
    } else {
        lsf_ack *ack = (lsf_ack *)(op & ~(uintptr_t)TAG_MASK);
        if (permanent(err)) {
            dead_letter(c, topic, &m, err, ack, tag == TAG_DEAD);
        } else if (spool_put(c, topic, &m, maybe ? LSF_SPOOL_F_MAYBE_SENT : 0, true) == 0) {
            pend_push(c, ack); /* released once the spool is durable */
        } else {
            lsf_counter_add(c->c_failed, 1);
            lsf_ack_fail(ack);
            lsf_ack_release(ack);
            lsf_kafka_warn_throttled(&c->last_err_log_ns, c->st->name, "a message for %s was not delivered (%s) and could not be spooled",
                          topic, rd_kafka_err2str(err));
        }
    }
    pthread_mutex_unlock(&c->lock);
}

static void on_error(rd_kafka_t *rk, int err, const char *reason, void *opaque)
{
    kafka_ctx *c = opaque;
    if (err == RD_KAFKA_RESP_ERR__FATAL) {
        char why[512];
        rd_kafka_fatal_error(rk, why, sizeof(why));
        pthread_mutex_lock(&c->lock);
        c->fatal = true;
        pthread_mutex_unlock(&c->lock);
        lsf_err("%s: fatal producer error: %s; events are spooled until logsift restarts",
                c->st->name, why);
        request_offline(c, why);
        return;
    }
    if (err == RD_KAFKA_RESP_ERR__ALL_BROKERS_DOWN) {
        atomic_store(&c->all_down, true);
        request_offline(c, reason);
    }
    lsf_kafka_warn_throttled(&c->last_err_log_ns, c->st->name, "%s", reason);
}

/* ---- the poll thread ------------------------------------------------------------- */

static bool probe(kafka_ctx *c)
{
    const struct rd_kafka_metadata *md = NULL;
    rd_kafka_resp_err_t e = rd_kafka_metadata(c->rk, 0, NULL, &md, 1000);
    bool ok = !e && md && md->broker_cnt > 0;
    if (md)
        rd_kafka_metadata_destroy(md);
    return ok;
}

static void tick(kafka_ctx *c)
{
    int64_t now = lsf_now_mono_ns();
    pthread_mutex_lock(&c->lock);
    if (atomic_exchange(&c->want_offline, false))
        go_offline(c, c->offline_reason);
    if ((c->state == ONLINE || c->state == REPLAYING) && stalled(c, now)) {
        char why[96];
        snprintf(why, sizeof(why), "no delivery report for %" PRId64 " ms",
                 c->conf->spool_after_ms);
        go_offline(c, why);
    }
    if (c->state == PURGING &&
        (atomic_load(&c->outstanding) == 0 || now - c->purge_since_ns > PURGE_MAX_NS)) {
        if (atomic_load(&c->outstanding))
            lsf_warn("%s: %" PRId64 " messages still in librdkafka after purging; spooling anyway",
                     c->st->name, atomic_load(&c->outstanding));
        set_state(c, SPOOLING);
        c->next_probe_ns = now + c->conf->retry_ms * 1000000LL;
    }
    if (c->state == REPLAYING) {
        ring_commit(c);
        replay_step(c);
    }
    settle(c, false);
    bool want_probe = c->state == SPOOLING && !c->fatal && now >= c->next_probe_ns;
    pthread_mutex_unlock(&c->lock);
    if (!want_probe)
        return;
    bool ok = probe(c);
    pthread_mutex_lock(&c->lock);
    if (c->state == SPOOLING) {
        if (ok) {
            lsf_spool_stats s;
            lsf_spool_get_stats(c->spool, &s);
            lsf_info("%s: Kafka is reachable; replaying %" PRIu64 " spooled records", c->st->name,
                     s.records + c->ring_len);
            atomic_store(&c->all_down, false);
            atomic_store(&c->last_progress_ns, lsf_now_mono_ns());
            set_state(c, REPLAYING);
            c->replayed_run = 0;
            c->resend = 0;
        } else {
            c->next_probe_ns = lsf_now_mono_ns() + c->conf->retry_ms * 1000000LL;
        }
    }
    pthread_mutex_unlock(&c->lock);
}

static void *poll_main(void *arg)
{
    kafka_ctx *c = arg;
    while (!atomic_load(&c->stop)) {
        rd_kafka_poll(c->rk, c->state == REPLAYING ? 5 : 50);
        tick(c);
    }
    return NULL;
}

static void stop_thread(kafka_ctx *c)
{
    if (!c->running)
        return;
    atomic_store(&c->stop, true);
    pthread_join(c->thread, NULL);
    c->running = false;
}

/* ---- deliver ---------------------------------------------------------------------- */

static int route(const lsf_event *ev)
{
    lsf_str k;
    char scratch[32];
    if (!lsf_event_get_str(ev, LSF_STR_LIT("event.kind"), scratch, &k))
        return K_EVENTS;
    if (lsf_str_eq_cstr(k, "alert") || lsf_str_eq_cstr(k, "signal"))
        return K_ALERTS;
    return lsf_str_eq_cstr(k, "pipeline_error") ? K_DEAD : K_EVENTS;
}

/* Fills m for event ev (line `line` of out); `scratch` holds a formatted
 * numeric key. */
static void prepare(kafka_ctx *c, const lsf_event *ev, const lsf_outbuf *out, uint32_t line,
                    kmsg *m, char *scratch)
{
    int kind = route(ev);
    if (kind == K_DEAD && !c->static_rkt[K_DEAD])
        kind = K_EVENTS;
    if (c->static_rkt[kind]) {
        m->rkt = c->static_rkt[kind];
    } else {
        char topic[LSF_KAFKA_TOPIC_MAX + 1];
        bool missing = false;
        size_t n = lsf_kafka_tpl_render(&c->tpl[kind], ev, c->conf->missing_field, topic, &missing);
        if (missing)
            lsf_counter_add(c->c_topic_missing, 1);
        m->rkt = topic_get(c, topic, n);
    }
    m->val = out->buf + out->line_off[line];
    m->vlen = out->line_off[line + 1] - out->line_off[line] - 1; /* without '\n' */
    m->has_key = false;
    m->key = NULL;
    m->klen = 0;
    if (c->key_field.len) {
        lsf_str k;
        if (lsf_event_get_str(ev, c->key_field, scratch, &k)) {
            m->key = k.ptr ? k.ptr : "";
            m->klen = k.len;
            m->has_key = true;
        } else {
            lsf_counter_add(c->c_key_missing, 1);
        }
    }
}

/* ONLINE: produces one message. LSF_OK, or LSF_AGAIN to retry it later. */
static int send_direct(kafka_ctx *c, lsf_ack *ack, const kmsg *m)
{
    lsf_ack_retain(ack);
    rd_kafka_resp_err_t err = produce(c, m, ack);
    if (!err) {
        lsf_counter_add(c->c_produced, 1);
        return LSF_OK;
    }
    if (permanent(err)) {
        dead_letter(c, rd_kafka_topic_name(m->rkt), m, err, ack, false);
        return LSF_OK;
    }
    lsf_ack_release(ack);
    if (err != RD_KAFKA_RESP_ERR__QUEUE_FULL) {
        go_offline(c, rd_kafka_err2str(err));
    } else if (stalled(c, lsf_now_mono_ns())) {
        char why[128];
        snprintf(why, sizeof(why), "librdkafka's queue is full and nothing was confirmed for %" PRId64
                 " ms", c->conf->spool_after_ms);
        go_offline(c, why);
    }
    return LSF_AGAIN; /* queue full while deliveries flow: backpressure */
}

/* SPOOLING/REPLAYING: appends one message. LSF_OK or LSF_AGAIN (full). */
static int send_spool(kafka_ctx *c, const kmsg *m)
{
    int rc = spool_put(c, rd_kafka_topic_name(m->rkt), m, 0, false);
    if (rc == 0) {
        c->spool_full = false;
        c->spool_err_logged = false;
        return LSF_OK;
    }
    if (rc == -ENOSPC) {
        if (!c->spool_full)
            lsf_warn("%s: the spool %s reached spool_max_size (%" PRId64
                     " bytes); holding inputs until Kafka takes messages again",
                     c->st->name, c->spool_dir, c->conf->spool_max);
        if (!c->spool_full)
            lsf_counter_add(c->c_spool_full, 1);
        c->spool_full = true;
    } else if (!c->spool_err_logged) {
        lsf_err("%s: cannot write to the spool %s: %s; holding inputs", c->st->name, c->spool_dir,
                strerror(-rc));
        c->spool_err_logged = true;
    }
    return LSF_AGAIN;
}

static int kafka_deliver(lsf_stage *st, const lsf_batch *b, const lsf_outbuf *out)
{
    kafka_ctx *c = st->ctx;
    pthread_mutex_lock(&c->lock);
    if (atomic_exchange(&c->want_offline, false))
        go_offline(c, c->offline_reason);
    const int state = c->state;
    if (state == PURGING) {
        pthread_mutex_unlock(&c->lock);
        return LSF_AGAIN;
    }
    uint32_t first = (c->resume_valid && c->resume_seq == b->seq) ? c->resume_line : 0;
    uint32_t line = 0;
    uint64_t spooled = 0;
    int rc = LSF_OK;
    char scratch[64];
    for (uint32_t i = 0; i < b->n && line < out->nlines; i++) {
        const lsf_event *ev = &b->events[i];
        if (ev->flags & LSF_EV_DROPPED)
            continue;
        uint32_t l = line++;
        if (l < first)
            continue;
        kmsg m;
        prepare(c, ev, out, l, &m, scratch);
        rc = state == ONLINE ? send_direct(c, b->ack, &m) : send_spool(c, &m);
        if (rc == LSF_AGAIN) {
            c->resume_valid = true;
            c->resume_seq = b->seq;
            c->resume_line = l;
            break;
        }
        if (state != ONLINE)
            spooled++;
    }
    if (rc == LSF_OK)
        c->resume_valid = false;
    if (spooled) {
        lsf_ack_retain(b->ack);
        pend_push(c, b->ack);
        settle(c, false);
    }
    pthread_mutex_unlock(&c->lock);
    return rc;
}

/* ---- init, flush, destroy -------------------------------------------------------- */

/* "<state_dir>/kafka-spool-<name>", the name made safe for a path. */
static char *default_spool_dir(const lsf_stage *st)
{
    const char *base = st->pipeline ? lsf_pipeline_settings(st->pipeline)->state_dir : ".";
    char name[128];
    snprintf(name, sizeof(name), "%s", st->name);
    for (char *p = name; *p; p++)
        if (*p == '/' || *p == ' ')
            *p = '_';
    char *out;
    if (asprintf(&out, "%s/kafka-spool-%s", base && *base ? base : ".", name) < 0)
        lsf_die("out of memory");
    return out;
}

static int kafka_init(lsf_stage *st, lsf_errbuf *err)
{
    kafka_ctx *c = st->ctx;
    const kafka_conf *cf = st->conf;
    c->st = st;
    c->conf = cf;
    c->dl_fd = -1;
    pthread_mutex_init(&c->lock, NULL);
    c->lock_init = true;
    lsf_outbuf_init(&c->dlbuf);
    char brokers[4096];
    if (lsf_kafka_brokers(st, &cf->brokers, brokers, sizeof(brokers), err) < 0)
        return -1;
    const char *keys[NKINDS] = {"topic", "alerts_topic", "dead_letter_topic"};
    const char *texts[NKINDS] = {cf->topic, cf->alerts_topic, cf->dead_letter_topic};
    for (int k = 0; k < NKINDS; k++) {
        if (k == K_DEAD && (!texts[k] || !*texts[k]))
            continue;
        if (lsf_kafka_tpl_compile(&c->tpl[k], texts[k], lsf_key_node(st, keys[k]), keys[k], err) < 0)
            return -1;
        if (k == K_DEAD && !c->tpl[k].is_static)
            return lsf_node_error(err, lsf_key_node(st, keys[k]),
                                  "dead_letter_topic: must be a fixed topic name, not a template");
    }
    lsf_kafka_tpl probe_tpl;
    int prc = lsf_kafka_tpl_compile(&probe_tpl, cf->missing_field, lsf_key_node(st, "missing_field"),
                                    "missing_field", err);
    bool bad_missing = prc == 0 && !probe_tpl.is_static;
    lsf_kafka_tpl_free(&probe_tpl);
    if (prc < 0)
        return -1;
    if (bad_missing)
        return lsf_node_error(err, lsf_key_node(st, "missing_field"),
                              "missing_field: must be plain text, not a template");
    c->key_field = lsf_str_make(cf->key_field, strlen(cf->key_field));
    if (cf->acks != 0 && cf->idempotence)
        return lsf_node_error(err, lsf_key_node(st, "acks"),
                              "acks: %s needs idempotence: false (the idempotent producer "
                              "requires acks: all)",
                              acks_values[cf->acks]);
    if (cf->spool_segment > cf->spool_max)
        return lsf_node_error(err, lsf_key_node(st, "spool_segment_size"),
                              "spool_segment_size: larger than spool_max_size");

    /* librdkafka */
    char linger[32], batch[32];
    snprintf(linger, sizeof(linger), "%" PRId64, cf->linger_ms);
    snprintf(batch, sizeof(batch), "%" PRId64, cf->batch_bytes);
    const char *props[] = {"bootstrap.servers", brokers,
                           "client.id", "logsift",
                           "compression.type", compressions[cf->compression],
                           "acks", acks_values[cf->acks],
                           "enable.idempotence", cf->idempotence ? "true" : "false",
                           "linger.ms", linger,
                           "batch.size", batch,
                           "reconnect.backoff.max.ms", "1000",
                           NULL, NULL};
    rd_kafka_conf_t *conf = lsf_kafka_conf_new(st, props, reserved, err);
    if (!conf)
        return -1;
    rd_kafka_conf_set_opaque(conf, c);
    rd_kafka_conf_set_dr_msg_cb(conf, on_delivery);
    rd_kafka_conf_set_error_cb(conf, on_error);
    lsf_kafka_set_log(conf);
    char why[512];
    c->rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, why, sizeof(why));
    if (!c->rk) {
        rd_kafka_conf_destroy(conf);
        return lsf_node_error(err, st->node, "%s: cannot create the Kafka producer: %s", st->name,
                              why);
    }
    for (int k = 0; k < NKINDS; k++)
        if (c->tpl[k].is_static)
            c->static_rkt[k] = topic_get(c, c->tpl[k].text, strlen(c->tpl[k].text));

    /* spool and dead letters */
    c->spool_dir = cf->spool_dir && *cf->spool_dir ? strdup(cf->spool_dir) : default_spool_dir(st);
    if (!c->spool_dir)
        lsf_die("out of memory");
    lsf_spool_opts so = {.dir = c->spool_dir, .max_bytes = (uint64_t)cf->spool_max,
                         .segment_bytes = (uint64_t)cf->spool_segment, .fsync = cf->spool_fsync};
    if (lsf_spool_open(&c->spool, &so, why, sizeof(why)) < 0)
        return lsf_node_error(err, lsf_key_node(st, "spool_dir"), "spool_dir: %s", why);
    if (cf->dead_letter_file && *cf->dead_letter_file)
        c->dl_path = strdup(cf->dead_letter_file);
    else if (asprintf(&c->dl_path, "%s/dead-letter.jsonl", c->spool_dir) < 0)
        c->dl_path = NULL;
    if (!c->dl_path)
        lsf_die("out of memory");
    c->dl_fd = open(c->dl_path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640);
    if (c->dl_fd < 0)
        return lsf_node_error(err, lsf_key_node(st, "dead_letter_file"),
                              "dead_letter_file: cannot open %s: %s", c->dl_path, strerror(errno));
    c->ring = calloc(RING_CAP, sizeof(*c->ring));
    if (!c->ring)
        lsf_die("out of memory");

    const char *names[] = {"produced", "delivered", "spooled", "spooled_maybe_sent", "replayed",
                           "dead_lettered", "failed", "topic_field_missing", "key_missing",
                           "spool_full", "outages", "spool_corrupt"};
    lsf_counter **ctrs[] = {&c->c_produced, &c->c_delivered, &c->c_spooled, &c->c_maybe_sent,
                            &c->c_replayed, &c->c_dead, &c->c_failed, &c->c_topic_missing,
                            &c->c_key_missing, &c->c_spool_full, &c->c_outages, &c->c_corrupt};
    for (size_t i = 0; i < sizeof(ctrs) / sizeof(ctrs[0]); i++)
        *ctrs[i] = lsf_counter_new(st->name, names[i]);

    c->read_pos = lsf_spool_head(c->spool);
    c->state = ONLINE;
    if (!lsf_spool_empty(c->spool)) {
        lsf_spool_stats s;
        lsf_spool_get_stats(c->spool, &s);
        lsf_info("%s: %" PRIu64 " records left in %s by the last run; they go first", st->name,
                 s.records, c->spool_dir);
        set_state(c, SPOOLING);
        c->next_probe_ns = 0;
    }
    int rc = pthread_create(&c->thread, NULL, poll_main, c);
    if (rc)
        return lsf_node_error(err, st->node, "%s: cannot start a thread: %s", st->name,
                              strerror(rc));
    c->running = true;
    return 0;
}

/* Shutdown: waits up to flush_timeout for what librdkafka holds, spools
 * the rest, and makes the spool durable. */
static int kafka_flush(lsf_stage *st)
{
    kafka_ctx *c = st->ctx;
    if (!c->rk || c->flushed)
        return LSF_OK;
    stop_thread(c);
    pthread_mutex_lock(&c->lock);
    int state = c->state;
    pthread_mutex_unlock(&c->lock);
    if ((state == ONLINE || state == REPLAYING) && atomic_load(&c->outstanding) > 0)
        rd_kafka_flush(c->rk, (int)c->conf->flush_timeout_ms);
    if (atomic_load(&c->outstanding) > 0) {
        pthread_mutex_lock(&c->lock);
        go_offline(c, "shutting down before every message was confirmed");
        pthread_mutex_unlock(&c->lock);
        int64_t until = lsf_now_mono_ns() + 5000000000LL;
        while (atomic_load(&c->outstanding) > 0 && lsf_now_mono_ns() < until)
            rd_kafka_poll(c->rk, 50);
    }
    rd_kafka_poll(c->rk, 0);
    pthread_mutex_lock(&c->lock);
    ring_commit(c);
    settle(c, true);
    lsf_spool_stats s;
    lsf_spool_get_stats(c->spool, &s);
    pthread_mutex_unlock(&c->lock);
    if (s.records)
        lsf_info("%s: %" PRIu64 " records wait in the spool %s for the next start", st->name,
                 s.records, c->spool_dir);
    c->flushed = true;
    return LSF_OK;
}

static void kafka_destroy(lsf_stage *st)
{
    kafka_ctx *c = st->ctx;
    if (!c->lock_init)
        return;
    if (c->rk && c->running)
        kafka_flush(st);
    stop_thread(c);
    for (size_t i = 0; i < c->captopics; i++) {
        if (!c->topics[i].name)
            continue;
        rd_kafka_topic_destroy(c->topics[i].rkt);
        free(c->topics[i].name);
    }
    free(c->topics);
    if (c->rk)
        rd_kafka_destroy(c->rk);
    if (c->spool) {
        lsf_spool_stats s;
        lsf_spool_get_stats(c->spool, &s);
        lsf_counter_add(c->c_corrupt, s.corrupt + s.torn);
        lsf_spool_close(c->spool);
    }
    for (size_t i = 0; i < c->npend; i++) /* durable now: close synced */
        lsf_ack_release(c->pend[i]);
    free(c->pend);
    if (c->dl_fd >= 0)
        close(c->dl_fd);
    for (int k = 0; k < NKINDS; k++)
        lsf_kafka_tpl_free(&c->tpl[k]);
    lsf_outbuf_deinit(&c->dlbuf);
    free(c->ring);
    free(c->spool_dir);
    free(c->dl_path);
    pthread_mutex_destroy(&c->lock);
    c->lock_init = false;
}

const lsf_stage_def lsf_stage_kafka = {
    .name = "kafka",
    .kind = LSF_STAGE_SINK,
    .help = "Publishes events, alerts and dead letters to Kafka; spools to disk while the "
            "brokers are away and replays in order.",
    .keys = kafka_keys,
    .conf_size = sizeof(kafka_conf),
    .ctx_size = sizeof(kafka_ctx),
    .init = kafka_init,
    .deliver = kafka_deliver,
    .flush = kafka_flush,
    .destroy = kafka_destroy,
};
