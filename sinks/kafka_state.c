/* kafka_state.c - how the Kafka sink keeps its promise when the brokers go
 * away: delivery reports, the outage state machine, the disk spool and its
 * replay, dead letters, and the poll thread that drives them.
 *
 * Design: a small state machine, changed only under the sink's lock:
 *   ONLINE    deliver() produces every line; the delivery report releases
 *             the batch's ack, so an input learns of delivery only when the
 *             broker confirmed it (acks: all by default).
 *   PURGING   the brokers look away (librdkafka reports all brokers down,
 *             a delivery failed, or nothing was confirmed for spool_after
 *             while messages waited and a metadata request went unanswered;
 *             when the brokers do answer, librdkafka keeps retrying and its
 *             own timeouts decide): everything librdkafka holds, queued
 *             or in flight, is purged and its delivery reports append it to
 *             the spool (in-flight ones flagged "maybe sent": they are the
 *             only possible duplicates). deliver() answers LSF_AGAIN until
 *             the last report is in, so older events reach the spool first.
 *   SPOOLING  deliver() appends to the spool (LSF_AGAIN when it is full:
 *             backpressure to TCP inputs). Every retry_interval the poll
 *             thread asks the cluster for metadata.
 *   REPLAYING the cluster answered: the poll thread produces the spool's
 *             records in order, a bounded window (RING_CAP) at a time,
 *             committing the spool as reports confirm them; deliver() keeps
 *             appending, so order holds; once the spool is empty, ONLINE. A
 *             record failing REPLAY_ATTEMPTS times while the brokers answer
 *             is dead-lettered, so one poisoned record cannot stall the rest.
 * Acks of spooled events are released when the spool is durable by its
 * fsync policy. A message that fails for good goes, wrapped with the
 * reason, to dead_letter_topic when set and otherwise (or when that fails
 * too) to dead_letter_file.
 * Threads: the poll thread serves librdkafka's callbacks and runs tick();
 * deliver() runs on one worker at a time; flush on the main thread after
 * the poll thread stopped. Shared state is under c->lock; the health
 * counters (outstanding, last progress, want_offline) are atomics.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "core/ioloop.h"
#include "core/log.h"
#include "sinks/json_out.h"
#include "sinks/kafka_int.h"
#include "sinks/write_all.h"

#define PURGE_MAX_NS (10 * 1000000000LL)
/* A spooled message that failed this often while the brokers answered (not
 * counting purges at outages) goes to the dead letters. */
#define REPLAY_ATTEMPTS 5

static const char *const state_names[] = {"online", "purging", "spooling", "replaying"};

void lsf_kafka_set_state(kafka_ctx *c, int to)
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
rd_kafka_topic_t *lsf_kafka_topic(kafka_ctx *c, const char *name, size_t len)
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

void lsf_kafka_pend_push(kafka_ctx *c, lsf_ack *a)
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
void lsf_kafka_settle(kafka_ctx *c, bool sync_now)
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
        warn_once(c, W_SPOOL, "writing the spool in %s failed: %s; events wait in memory",
                  c->spool_dir, strerror(-rc));
        return;
    }
    for (size_t i = 0; i < c->npend; i++)
        lsf_ack_release(c->pend[i]);
    c->npend = 0;
}

/* Appends one message to the spool. `force` ignores the cap (for messages
 * librdkafka handed back: they must go somewhere). 0, -ENOSPC, -errno. */
int lsf_kafka_spool_put(kafka_ctx *c, const char *topic, const kmsg *m, uint8_t flags, bool force)
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
void lsf_kafka_dead_letter(kafka_ctx *c, const char *topic, const kmsg *m, rd_kafka_resp_err_t err,
                           lsf_ack *ack, bool wrapped)
{
    const char *val = m->val;
    size_t vlen = m->vlen;
    if (!wrapped) {
        dl_wrap(c, topic, m, err);
        val = c->dlbuf.buf;
        vlen = c->dlbuf.len;
        if (c->static_rkt[K_DEAD] && c->state == ONLINE) {
            kmsg dm = *m;
            dm.rkt = c->static_rkt[K_DEAD];
            dm.val = val;
            dm.vlen = vlen;
            if (!lsf_kafka_produce(c, &dm, (void *)((uintptr_t)ack | TAG_DEAD), true))
                return; /* the delivery report settles it */
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
        warn_once(c, W_DEAD, "a message for %s was refused (%s); written to %s", topic,
                  rd_kafka_err2str(err), c->dl_path);
    }
    lsf_ack_release(ack);
}

bool lsf_kafka_permanent(rd_kafka_resp_err_t e)
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

void lsf_kafka_go_offline(kafka_ctx *c, const char *reason)
{
    if (c->state == ONLINE || c->state == REPLAYING) {
        lsf_warn("%s: Kafka is not taking messages (%s); spooling to %s", c->st->name, reason,
                 c->spool_dir);
        lsf_counter_add(c->c_outages, 1);
        lsf_kafka_set_state(c, PURGING);
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

/* Messages wait and nothing was confirmed for spool_after. */
static bool stalled(kafka_ctx *c, int64_t now)
{
    return atomic_load(&c->outstanding) > 0 &&
           now - atomic_load(&c->last_progress_ns) > c->conf->spool_after_ms * 1000000LL;
}

/* ---- producing ------------------------------------------------------------------ */

rd_kafka_resp_err_t lsf_kafka_produce(kafka_ctx *c, const kmsg *m, void *opaque, bool copy)
{
    if (atomic_fetch_add(&c->outstanding, 1) == 0)
        atomic_store(&c->last_progress_ns, lsf_now_mono_ns());
    rd_kafka_resp_err_t e =
        rd_kafka_producev(c->rk, RD_KAFKA_V_RKT(m->rkt), RD_KAFKA_V_MSGFLAGS(copy ? RD_KAFKA_MSG_F_COPY : 0),
                          RD_KAFKA_V_VALUE((void *)m->val, m->vlen),
                          RD_KAFKA_V_KEY(m->has_key ? m->key : NULL, m->has_key ? m->klen : 0),
                          RD_KAFKA_V_TIMESTAMP(m->ts_ms), RD_KAFKA_V_OPAQUE(opaque),
                          RD_KAFKA_V_END);
    if (e)
        atomic_fetch_sub(&c->outstanding, 1);
    return e;
}

void lsf_kafka_chunk_release(kchunk *k)
{
    if (atomic_fetch_sub_explicit(&k->refs, 1, memory_order_acq_rel) != 1)
        return;
    lsf_ack_release(k->ack);
    free(k);
}

static replay_ent *ring_at(kafka_ctx *c, size_t rel)
{
    return &c->ring[(c->ring_first + rel) % RING_CAP];
}

/* Pops confirmed records off the front of the window and commits them. */
void lsf_kafka_ring_commit(kafka_ctx *c)
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
        warn_once(c, W_SPOOL, "spool %s: saving the replay position failed: %s", c->spool_dir,
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
    kmsg m = {.rkt = lsf_kafka_topic(c, topic, tl),
              .key = r->key.ptr,
              .klen = r->key.len,
              .has_key = r->has_key,
              .val = r->value.ptr,
              .vlen = r->value.len};
    uint64_t id = c->ring_base + rel;
    rd_kafka_resp_err_t err = lsf_kafka_produce(c, &m, (void *)(uintptr_t)((id << 2) | TAG_REPLAY), true);
    if (!err) {
        e->state = R_SENT;
        return 0;
    }
    if (err == RD_KAFKA_RESP_ERR__QUEUE_FULL) {
        e->state = R_FAILED;
        return LSF_AGAIN;
    }
    if (lsf_kafka_permanent(err)) {
        lsf_kafka_dead_letter(c, topic, &m, err, NULL, false);
        e->state = R_DONE;
        return 0;
    }
    e->state = R_FAILED;
    lsf_kafka_go_offline(c, rd_kafka_err2str(err));
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
        e->attempts = 0;
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
        warn_once(c, W_SPOOL, "reading the spool %s failed: %s", c->spool_dir, strerror(-rc));
        return;
    }
    if (rc == 0 && c->ring_len == 0) {
        lsf_spool_commit(c->spool, c->read_pos, 0);
        if (lsf_spool_empty(c->spool)) {
            lsf_info("%s: spool replayed (%" PRIu64 " records); delivering directly again",
                     c->st->name, c->replayed_run);
            lsf_kafka_set_state(c, ONLINE);
        }
    }
}

/* ---- librdkafka callbacks (poll thread, or the main thread in flush) ------------- */

void lsf_kafka_on_delivery(rd_kafka_t *rk, const rd_kafka_message_t *msg, void *opaque)
{
    (void)rk;
    kafka_ctx *c = opaque;
    uintptr_t op = (uintptr_t)msg->_private;
    unsigned tag = op & TAG_MASK;
    atomic_fetch_sub(&c->outstanding, 1);
    /* progress is stamped by the poll loop, once per poll, not per message */
    atomic_store_explicit(&c->reported, true, memory_order_relaxed);
    rd_kafka_resp_err_t err = msg->err;
    kchunk *chunk = tag == TAG_DIRECT ? (kchunk *)op : NULL;
    if (!err && tag != TAG_REPLAY) {
        lsf_counter_add(tag == TAG_DEAD ? c->c_dead : c->c_delivered, 1);
        if (chunk)
            lsf_kafka_chunk_release(chunk);
        else
            lsf_ack_release((lsf_ack *)(op & ~(uintptr_t)TAG_MASK));
        return;
    }
    const char *topic = rd_kafka_topic_name(msg->rkt);
    kmsg m = {.rkt = msg->rkt,
              .key = msg->key,
              .klen = msg->key_len,
              .has_key = msg->key != NULL,
              .val = msg->payload,
              .vlen = msg->len};
    bool maybe = rd_kafka_message_status(msg) == RD_KAFKA_MSG_STATUS_POSSIBLY_PERSISTED;
    bool ours = err == RD_KAFKA_RESP_ERR__PURGE_QUEUE || err == RD_KAFKA_RESP_ERR__PURGE_INFLIGHT;
    if (err && !ours && !lsf_kafka_permanent(err))
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
            } else if (lsf_kafka_permanent(err) || (!ours && ++e->attempts >= REPLAY_ATTEMPTS)) {
                lsf_kafka_dead_letter(c, topic, &m, err, NULL, false);
                e->state = R_DONE;
            } else {
                e->state = R_FAILED;
                if (rel < c->resend)
                    c->resend = rel;
            }
        }
    } else {
        lsf_ack *ack = (lsf_ack *)(op & ~(uintptr_t)TAG_MASK);
        if (chunk) { /* a reference of its own: the chunk's goes below */
            ack = chunk->ack;
            lsf_ack_retain(ack);
        }
        if (lsf_kafka_permanent(err)) {
            lsf_kafka_dead_letter(c, topic, &m, err, ack, tag == TAG_DEAD);
        } else if (!lsf_kafka_spool_put(c, topic, &m, maybe ? LSF_SPOOL_F_MAYBE_SENT : 0, true)) {
            lsf_kafka_pend_push(c, ack); /* released once the spool is durable */
        } else {
            lsf_counter_add(c->c_failed, 1);
            lsf_ack_fail(ack);
            lsf_ack_release(ack);
            warn_once(c, W_SPOOL,
                      "a message for %s was not delivered (%s) and could not be spooled", topic,
                      rd_kafka_err2str(err));
        }
        if (chunk) /* the payload was used above: spooled or dead-lettered */
            lsf_kafka_chunk_release(chunk);
    }
    pthread_mutex_unlock(&c->lock);
}

void lsf_kafka_on_error(rd_kafka_t *rk, int err, const char *reason, void *opaque)
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
    warn_once(c, W_BROKER, "%s", reason);
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

enum { PROBE_NONE, PROBE_BACK, PROBE_STALL };

static void tick(kafka_ctx *c)
{
    int64_t now = lsf_now_mono_ns();
    pthread_mutex_lock(&c->lock);
    if (atomic_exchange(&c->want_offline, false))
        lsf_kafka_go_offline(c, c->offline_reason);
    if (c->state == PURGING &&
        (atomic_load(&c->outstanding) == 0 || now - c->purge_since_ns > PURGE_MAX_NS)) {
        if (atomic_load(&c->outstanding))
            lsf_warn("%s: %" PRId64 " messages still in librdkafka after purging; spooling anyway",
                     c->st->name, atomic_load(&c->outstanding));
        lsf_kafka_set_state(c, SPOOLING);
        c->next_probe_ns = now + c->conf->retry_ms * 1000000LL;
    }
    if (c->state == REPLAYING) {
        lsf_kafka_ring_commit(c);
        replay_step(c);
    }
    lsf_kafka_settle(c, false);
    int what = PROBE_NONE;
    if (c->state == SPOOLING && !c->fatal && now >= c->next_probe_ns)
        what = PROBE_BACK;
    else if ((c->state == ONLINE || c->state == REPLAYING) && stalled(c, now) &&
             now >= c->next_stall_check_ns)
        what = PROBE_STALL;
    const int state = c->state;
    pthread_mutex_unlock(&c->lock);
    if (what == PROBE_NONE)
        return;
    /* A metadata request tells "the brokers are away" (spool) from "some
     * messages wait although the brokers answer" (a topic without a leader
     * or not created yet: librdkafka keeps retrying them until its own
     * timeouts, whose reports then decide). */
    bool ok = probe(c);
    now = lsf_now_mono_ns();
    pthread_mutex_lock(&c->lock);
    if (what == PROBE_BACK && c->state == SPOOLING) {
        if (ok) {
            lsf_spool_stats s;
            lsf_spool_get_stats(c->spool, &s);
            lsf_info("%s: Kafka is reachable; replaying %" PRIu64 " spooled records", c->st->name,
                     s.records + c->ring_len);
            atomic_store(&c->all_down, false);
            atomic_store(&c->last_progress_ns, now);
            lsf_kafka_set_state(c, REPLAYING);
            c->replayed_run = 0;
            c->resend = 0;
        } else {
            c->next_probe_ns = now + c->conf->retry_ms * 1000000LL;
        }
    } else if (what == PROBE_STALL && c->state == state) {
        char why[128];
        snprintf(why, sizeof(why), "no delivery report for %" PRId64 " ms and no broker answers",
                 c->conf->spool_after_ms);
        if (!ok)
            lsf_kafka_go_offline(c, why);
        else
            warn_once(c, W_STALL,
                      "%" PRId64 " messages unconfirmed for %" PRId64 " ms although the brokers "
                      "answer; librdkafka keeps retrying them",
                      atomic_load(&c->outstanding), c->conf->spool_after_ms);
        c->next_stall_check_ns = now + c->conf->spool_after_ms * 1000000LL;
    }
    pthread_mutex_unlock(&c->lock);
}

static void *poll_main(void *arg)
{
    kafka_ctx *c = arg;
    while (!atomic_load(&c->stop)) {
        rd_kafka_poll(c->rk, c->state == REPLAYING ? 5 : 50);
        if (atomic_exchange(&c->reported, false))
            atomic_store(&c->last_progress_ns, lsf_now_mono_ns());
        tick(c);
    }
    return NULL;
}

int lsf_kafka_poll_start(kafka_ctx *c)
{
    int rc = pthread_create(&c->thread, NULL, poll_main, c);
    c->running = rc == 0;
    return rc;
}

void lsf_kafka_poll_stop(kafka_ctx *c)
{
    if (!c->running)
        return;
    atomic_store(&c->stop, true);
    pthread_join(c->thread, NULL);
    c->running = false;
}
