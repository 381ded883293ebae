/* kafka_int.h - the Kafka sink's structures, shared by kafka.c (settings,
 * deliver, init and shutdown) and kafka_state.c (delivery reports, the
 * outage state machine, spool and replay, the poll thread).
 *
 * The one design choice to know: every message handed to librdkafka carries
 * an opaque whose low two bits say what it is - TAG_DIRECT (the kchunk that
 * holds its payload and the batch's lsf_ack), TAG_REPLAY (the id of a replay
 * window entry) or TAG_DEAD (a dead letter's ack) - so the delivery report
 * knows whom to tell.
 *
 * Threads: see kafka_ctx; fields not atomic are under `lock`.
 */
#ifndef LSF_KAFKA_INT_H
#define LSF_KAFKA_INT_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include <librdkafka/rdkafka.h>

#include "core/metrics.h"
#include "core/stage.h"
#include "sinks/kafka_conf.h"
#include "sinks/spool.h"

enum { ONLINE, PURGING, SPOOLING, REPLAYING };
enum { K_EVENTS, K_ALERTS, K_DEAD, NKINDS };

#define TAG_DIRECT 0u
#define TAG_REPLAY 1u
#define TAG_DEAD 2u
#define TAG_MASK 3u

#define RING_CAP 16384 /* most spool records replayed and not yet confirmed */

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

enum { R_SENT, R_DONE, R_FAILED };

typedef struct replay_ent {
    lsf_spool_pos start, end;
    uint8_t state;
    uint8_t attempts; /* failures other than our own purges */
} replay_ent;

typedef struct topic_ent {
    char *name;
    rd_kafka_topic_t *rkt;
} topic_ent;

/* The JSON lines of one deliver() call, copied once and handed to librdkafka
 * without a per-message copy: each produced message holds a reference, and
 * the last reference (delivery reports, or deliver() itself) releases the
 * batch's ack and frees the chunk. */
typedef struct kchunk {
    _Atomic uint32_t refs;
    lsf_ack *ack; /* one reference of the batch's ack (NULL: none) */
    char data[];
} kchunk;

typedef struct kmsg {
    rd_kafka_topic_t *rkt;
    const char *key, *val;
    size_t klen, vlen;
    bool has_key;
    int64_t ts_ms; /* record timestamp; 0: librdkafka stamps the time of the produce call */
} kmsg;

/* A warning of kind W_* at most every 30 s per sink (an outage must not
 * flood the log, nor one kind of warning hide another). */
enum { W_BROKER, W_STALL, W_SPOOL, W_DEAD, W_KINDS };
#define warn_once(c, kind, ...)                                                                    \
    lsf_kafka_warn_throttled(&(c)->warned[kind], (c)->st->name, __VA_ARGS__)

typedef struct kafka_ctx {
    lsf_stage *st;
    const kafka_conf *conf;
    rd_kafka_t *rk;
    pthread_mutex_t lock; /* everything below that is not atomic */
    bool lock_init;
    _Atomic int state; /* changed under the lock; read anywhere */
    bool fatal, flushed;
    int64_t purge_since_ns, next_probe_ns, next_stall_check_ns, last_sync_ns;
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
    atomic_bool reported; /* a delivery report came since the poll thread last looked */
    atomic_bool want_offline, all_down;
    char offline_reason[256];        /* under lock */
    _Atomic int64_t warned[W_KINDS]; /* last warning of each kind (warn_once) */
    /* poll thread */
    pthread_t thread;
    bool running;
    atomic_bool stop;
    lsf_counter *c_produced, *c_delivered, *c_spooled, *c_maybe_sent, *c_replayed, *c_dead,
        *c_failed, *c_topic_missing, *c_key_missing, *c_spool_full, *c_outages, *c_corrupt,
        *c_queue_full;
} kafka_ctx;

/* ---- kafka_state.c (all under c->lock unless said otherwise) ---------------- */

/* Logs the change at debug level. */
void lsf_kafka_set_state(kafka_ctx *c, int to);
/* The handle of topic `name`, created on first use. */
rd_kafka_topic_t *lsf_kafka_topic(kafka_ctx *c, const char *name, size_t len);
/* Hands m to librdkafka: a copy of its payload, or (`copy` false) the
 * payload itself, which must live until the delivery report. Any thread.
 * Returns librdkafka's error, if any. */
rd_kafka_resp_err_t lsf_kafka_produce(kafka_ctx *c, const kmsg *m, void *opaque, bool copy);
/* Drops one reference of k; the last releases its ack and frees it. */
void lsf_kafka_chunk_release(kchunk *k);
/* Errors no retry can fix (too large, unknown or forbidden topic). */
bool lsf_kafka_permanent(rd_kafka_resp_err_t e);
/* Sends a refused message, wrapped with the reason, to the dead-letter topic
 * or file; takes over one reference of ack. `wrapped`: m already is one. */
void lsf_kafka_dead_letter(kafka_ctx *c, const char *topic, const kmsg *m, rd_kafka_resp_err_t err,
                           lsf_ack *ack, bool wrapped);
/* Appends m to the spool (`force`: past the cap). 0, -ENOSPC or -errno. */
int lsf_kafka_spool_put(kafka_ctx *c, const char *topic, const kmsg *m, uint8_t flags, bool force);
/* Remembers an ack to release once the spool is durable. */
void lsf_kafka_pend_push(kafka_ctx *c, lsf_ack *a);
/* Writes the spool; releases pending acks when the fsync policy allows. */
void lsf_kafka_settle(kafka_ctx *c, bool sync_now);
/* ONLINE/REPLAYING -> PURGING: librdkafka hands back what it holds. */
void lsf_kafka_go_offline(kafka_ctx *c, const char *reason);
/* Commits the confirmed front of the replay window to the spool. */
void lsf_kafka_ring_commit(kafka_ctx *c);
/* librdkafka callbacks (the poll thread, or flush on the main thread). */
void lsf_kafka_on_delivery(rd_kafka_t *rk, const rd_kafka_message_t *msg, void *opaque);
void lsf_kafka_on_error(rd_kafka_t *rk, int err, const char *reason, void *opaque);
/* The poll thread: serves callbacks, runs timers and the replay. Main
 * thread. start returns 0 or an errno value. */
int lsf_kafka_poll_start(kafka_ctx *c);
void lsf_kafka_poll_stop(kafka_ctx *c);

#endif
