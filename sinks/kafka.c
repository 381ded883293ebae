/* kafka.c - the `kafka` sink: events, alerts and dead letters to Kafka with
 * librdkafka; while the brokers are away, a disk spool replayed in order
 * when they return; nothing dropped silently.
 *
 * Design: deliver() serialises nothing itself: it copies the batch's JSON
 * lines once into a chunk (the batch is recycled when deliver returns) and
 * produces each line from there without librdkafka's per-message copy; the
 * chunk holds the batch's ack until the last delivery report, so an input
 * (file checkpoints, Kafka offsets) learns of delivery only from the broker. The topic comes from event.kind (alert and
 * signal -> alerts_topic, pipeline_error -> dead_letter_topic, the rest ->
 * topic), each a fixed name or a template of fields; the key from
 * key_field. When librdkafka's queue is full while deliveries flow, deliver
 * answers LSF_AGAIN (backpressure) and resumes the batch where it stopped.
 * What happens when the brokers go away is kafka_state.c's part.
 * Threads: init/flush/destroy on the main thread; deliver on one worker at a
 * time, in batch order, under the sink's lock; the poll thread (kafka_state.c)
 * from init to flush.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/ioloop.h"
#include "core/log.h"
#include "core/pipeline.h"
#include "ingest/listen.h"
#include "sinks/json_out.h"
#include "sinks/kafka_int.h"

static const char *const compressions[] = {"none", "gzip", "snappy", "lz4", "zstd"};
static const char *const acks_values[] = {"all", "1", "0"};

static const lsf_key kafka_keys[] = {
    {"brokers", LSF_K_STRLIST, NULL, "Bootstrap brokers, host:port each.",
     offsetof(kafka_conf, brokers), NULL, 0, 0, true},
    {"topic", LSF_K_STR, "logs", "Topic of events; a template may name fields: logs-{host.name}.",
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
     "Spool when messages wait this long without any delivery report and no broker answers.",
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
static const char *const reserved[] = {"bootstrap.servers=brokers",
                                       "metadata.broker.list=brokers",
                                       "compression.type=compression",
                                       "compression.codec=compression",
                                       "acks=acks",
                                       "request.required.acks=acks",
                                       "enable.idempotence=idempotence",
                                       "linger.ms=linger",
                                       "queue.buffering.max.ms=linger",
                                       "batch.size=batch_size",
                                       NULL};

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

/* What prepare() found missing, counted once the message is taken (a
 * message retried after LSF_AGAIN is prepared again). */
enum { MISSING_TOPIC_FIELD = 1, MISSING_KEY = 2 };

/* Fills m for event ev (line `line` of out); `scratch` holds a formatted
 * numeric key. Returns MISSING_* bits. */
static int prepare(kafka_ctx *c, const lsf_event *ev, const lsf_outbuf *out, uint32_t line, kmsg *m,
                   char *scratch)
{
    int missing_bits = 0;
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
            missing_bits |= MISSING_TOPIC_FIELD;
        m->rkt = lsf_kafka_topic(c, topic, n);
    }
    m->val = out->buf + out->line_off[line];
    m->vlen = out->line_off[line + 1] - out->line_off[line] - 1; /* without '\n' */
    m->has_key = false;
    m->key = NULL;
    m->klen = 0;
    /* the arrival time: retention and time lookups follow when logsift got
     * the event, and librdkafka need not read the clock per message */
    m->ts_ms = ev->ingested_ns / 1000000;
    if (c->key_field.len) {
        lsf_str k;
        if (lsf_event_get_str(ev, c->key_field, scratch, &k)) {
            m->key = k.ptr ? k.ptr : "";
            m->klen = k.len;
            m->has_key = true;
        } else {
            missing_bits |= MISSING_KEY;
        }
    }
    return missing_bits;
}

/* A chunk holding lines [first, nlines) of out and a reference of ack;
 * the caller holds its one reference. */
static kchunk *chunk_new(const lsf_outbuf *out, uint32_t first, lsf_ack *ack)
{
    size_t from = out->line_off[first], len = out->line_off[out->nlines] - from;
    kchunk *k = malloc(sizeof(*k) + len);
    if (!k)
        lsf_die("out of memory");
    atomic_init(&k->refs, 1);
    lsf_ack_retain(ack);
    k->ack = ack;
    memcpy(k->data, out->buf + from, len);
    return k;
}

/* ONLINE: produces one message whose payload lies in chunk k. LSF_OK, or
 * LSF_AGAIN to retry it later. */
static int send_direct(kafka_ctx *c, kchunk *k, const kmsg *m)
{
    atomic_fetch_add_explicit(&k->refs, 1, memory_order_relaxed);
    rd_kafka_resp_err_t err = lsf_kafka_produce(c, m, k, false);
    if (!err) {
        lsf_counter_add(c->c_produced, 1);
        return LSF_OK;
    }
    atomic_fetch_sub_explicit(&k->refs, 1, memory_order_relaxed); /* deliver holds one */
    if (lsf_kafka_permanent(err)) {
        lsf_ack_retain(k->ack);
        lsf_kafka_dead_letter(c, rd_kafka_topic_name(m->rkt), m, err, k->ack, false);
        return LSF_OK;
    }
    if (err != RD_KAFKA_RESP_ERR__QUEUE_FULL)
        lsf_kafka_go_offline(c, rd_kafka_err2str(err));
    else
        lsf_counter_add(c->c_queue_full, 1);
    /* Queue full: backpressure. If the brokers are away too, the poll thread
     * notices (no report for spool_after, no answer) and the sink spools. */
    return LSF_AGAIN;
}

/* SPOOLING/REPLAYING: appends one message. LSF_OK or LSF_AGAIN (full). */
static int send_spool(kafka_ctx *c, const kmsg *m)
{
    int rc = lsf_kafka_spool_put(c, rd_kafka_topic_name(m->rkt), m, 0, false);
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
        lsf_kafka_go_offline(c, c->offline_reason);
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
    kchunk *chunk = NULL; /* this call's lines, from line_off[chunk_base] */
    uint32_t chunk_base = 0;
    for (uint32_t i = 0; i < b->n && line < out->nlines; i++) {
        const lsf_event *ev = &b->events[i];
        if (ev->flags & LSF_EV_DROPPED)
            continue;
        uint32_t l = line++;
        if (l < first)
            continue;
        kmsg m;
        int missing = prepare(c, ev, out, l, &m, scratch);
        if (state == ONLINE) {
            if (!chunk) {
                chunk = chunk_new(out, l, b->ack);
                chunk_base = out->line_off[l];
            }
            m.val = chunk->data + (m.val - (out->buf + chunk_base));
            rc = send_direct(c, chunk, &m);
        } else {
            rc = send_spool(c, &m);
        }
        if (rc == LSF_AGAIN) {
            c->resume_valid = true;
            c->resume_seq = b->seq;
            c->resume_line = l;
            break;
        }
        if (missing & MISSING_TOPIC_FIELD)
            lsf_counter_add(c->c_topic_missing, 1);
        if (missing & MISSING_KEY)
            lsf_counter_add(c->c_key_missing, 1);
        if (state != ONLINE)
            spooled++;
    }
    if (chunk)
        lsf_kafka_chunk_release(chunk);
    if (rc == LSF_OK)
        c->resume_valid = false;
    if (spooled) {
        lsf_ack_retain(b->ack);
        lsf_kafka_pend_push(c, b->ack);
        lsf_kafka_settle(c, false);
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
        const lsf_node *at = lsf_key_node(st, keys[k]);
        if (lsf_kafka_tpl_compile(&c->tpl[k], texts[k], at, keys[k], err) < 0)
            return -1;
        if (k == K_DEAD && !c->tpl[k].is_static)
            return lsf_node_error(err, at,
                                  "dead_letter_topic: must be a fixed topic name, not a template");
    }
    lsf_kafka_tpl probe_tpl;
    int prc = lsf_kafka_tpl_compile(&probe_tpl, cf->missing_field,
                                    lsf_key_node(st, "missing_field"), "missing_field", err);
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
    const char *props[][2] = {{"bootstrap.servers", brokers},
                              {"client.id", "logsift"},
                              {"compression.type", compressions[cf->compression]},
                              {"acks", acks_values[cf->acks]},
                              {"enable.idempotence", cf->idempotence ? "true" : "false"},
                              {"linger.ms", linger},
                              {"batch.size", batch},
                              {"reconnect.backoff.max.ms", "1000"},
                              /* keys land where the Java client puts them (co-partitioned
                               * with other producers), and murmur2 hashes short keys for
                               * less than the default's crc32 */
                              {"partitioner", "murmur2_random"},
                              {NULL, NULL}};
    rd_kafka_conf_t *conf = lsf_kafka_conf_new(st, props, reserved, err);
    if (!conf)
        return -1;
    rd_kafka_conf_set_dr_msg_cb(conf, lsf_kafka_on_delivery);
    c->rk = lsf_kafka_new(st, RD_KAFKA_PRODUCER, conf, c, lsf_kafka_on_error, err);
    if (!c->rk)
        return -1;
    for (int k = 0; k < NKINDS; k++)
        if (c->tpl[k].is_static)
            c->static_rkt[k] = lsf_kafka_topic(c, c->tpl[k].text, strlen(c->tpl[k].text));

    /* spool and dead letters */
    c->spool_dir = cf->spool_dir && *cf->spool_dir ? strdup(cf->spool_dir) : default_spool_dir(st);
    if (!c->spool_dir)
        lsf_die("out of memory");
    if (!(cf->spool_dir && *cf->spool_dir) && !(st->node && lsf_node_get(st->node, "name")))
        lsf_warn("%s: spooling to %s, named after the sink's position in the configuration; "
                 "give the sink a name (or a spool_dir) so its spool stays put",
                 st->name, c->spool_dir);
    lsf_spool_opts so = {.dir = c->spool_dir,
                         .max_bytes = (uint64_t)cf->spool_max,
                         .segment_bytes = (uint64_t)cf->spool_segment,
                         .fsync = cf->spool_fsync};
    char why[512];
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

    const char *names[] = {"produced",    "delivered",     "spooled", "spooled_maybe_sent",
                           "replayed",    "dead_lettered", "failed",  "topic_field_missing",
                           "key_missing", "spool_full",    "outages", "spool_corrupt",
                           "queue_full"};
    lsf_counter **ctrs[] = {&c->c_produced,    &c->c_delivered,  &c->c_spooled, &c->c_maybe_sent,
                            &c->c_replayed,    &c->c_dead,       &c->c_failed,  &c->c_topic_missing,
                            &c->c_key_missing, &c->c_spool_full, &c->c_outages, &c->c_corrupt,
                            &c->c_queue_full};
    for (size_t i = 0; i < sizeof(ctrs) / sizeof(ctrs[0]); i++)
        *ctrs[i] = lsf_counter_new(st->name, names[i]);

    c->read_pos = lsf_spool_head(c->spool);
    c->state = ONLINE;
    if (!lsf_spool_empty(c->spool)) {
        lsf_spool_stats s;
        lsf_spool_get_stats(c->spool, &s);
        lsf_info("%s: %" PRIu64 " records left in %s by the last run; they go first", st->name,
                 s.records, c->spool_dir);
        lsf_kafka_set_state(c, SPOOLING);
        c->next_probe_ns = 0;
    }
    int rc = lsf_kafka_poll_start(c);
    if (rc)
        return lsf_node_error(err, st->node, "%s: cannot start a thread: %s", st->name,
                              strerror(rc));
    return 0;
}

/* Shutdown: waits up to flush_timeout for what librdkafka holds, spools
 * the rest, and makes the spool durable. */
static int kafka_flush(lsf_stage *st)
{
    kafka_ctx *c = st->ctx;
    if (!c->rk || c->flushed)
        return LSF_OK;
    lsf_kafka_poll_stop(c);
    pthread_mutex_lock(&c->lock);
    int state = c->state;
    pthread_mutex_unlock(&c->lock);
    if ((state == ONLINE || state == REPLAYING) && atomic_load(&c->outstanding) > 0)
        rd_kafka_flush(c->rk, (int)c->conf->flush_timeout_ms);
    if (atomic_load(&c->outstanding) > 0) {
        pthread_mutex_lock(&c->lock);
        lsf_kafka_go_offline(c, "shutting down before every message was confirmed");
        pthread_mutex_unlock(&c->lock);
        int64_t until = lsf_now_mono_ns() + 5000000000LL;
        while (atomic_load(&c->outstanding) > 0 && lsf_now_mono_ns() < until)
            rd_kafka_poll(c->rk, 50);
    }
    rd_kafka_poll(c->rk, 0);
    pthread_mutex_lock(&c->lock);
    lsf_kafka_ring_commit(c);
    lsf_kafka_settle(c, true);
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
    lsf_kafka_poll_stop(c);
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
