/* listen.h - helpers every input shares: listening addresses and sockets,
 * port files, peer addresses, and filling batches with records.
 *
 * Design: an input fills one batch at a time through lsf_ingest; it takes a
 * batch from the pool only when a record arrives (so an idle input holds
 * none), submits it when it is full (by events or by LSF_INGEST_BATCH_BYTES)
 * and whenever the input calls lsf_ingest_flush (after each I/O round, at a
 * pause in the stream, at the end). Counters are kept in plain fields and
 * published to the metrics on flush, so the per-record path has no atomics.
 * Threads: the address helpers are thread-safe; an lsf_ingest is used by one
 * thread (the input's) and created on the main thread.
 */
#ifndef LSF_LISTEN_H
#define LSF_LISTEN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/types.h>

#include "core/event.h"
#include "core/metrics.h"
#include "core/stage.h"
#include "ingest/frame.h"

/* ---- addresses and sockets -------------------------------------------- */

/* Room for "[ffff:...:ffff]:65535" and a NUL. */
#define LSF_ADDR_STRLEN 64

/* Parses a listening address: "host:port", "[v6addr]:port", "*:port" or
 * ":port" (every IPv4 address). host may be a name (first address of the
 * lookup); port is 0..65535, 0 meaning "pick a free one". Returns 0, or -1
 * with a reason in err. */
int lsf_addr_parse(const char *spec, int socktype, struct sockaddr_storage *ss, socklen_t *sslen,
                   char *err, size_t errlen);

/* Parses `spec` and returns a bound, non-blocking, close-on-exec socket of
 * `socktype` (SOCK_STREAM: listening, SO_REUSEADDR), or -1 with a reason in
 * err. The caller owns the fd. */
int lsf_listen_open(const char *spec, int socktype, char *err, size_t errlen);

/* The local port of a bound socket, or -1. */
int lsf_socket_port(int fd);

/* Writes "PORT\n" to `path` atomically (a temporary file renamed into
 * place), so a reader that polls for the file never sees it half written.
 * Returns 0 or -errno. */
int lsf_port_file_write(const char *path, int port);

/* Formats a peer as "1.2.3.4:514" or "[2001:db8::1]:514" (an IPv4-mapped
 * IPv6 address as plain IPv4) into out (>= LSF_ADDR_STRLEN bytes); returns
 * the length. */
size_t lsf_addr_format(const struct sockaddr *sa, char *out, size_t cap);

/* ---- filling batches --------------------------------------------------- */

/* A batch is submitted early once its records hold this many bytes, so the
 * pool bounds memory as well as events. */
#define LSF_INGEST_BATCH_BYTES (4u << 20)

typedef struct lsf_ingest {
    lsf_pipeline *p;
    lsf_batch *b;        /* batch being filled; NULL when none is held */
    uint64_t gen;        /* changes whenever b does (see lsf_addr_cache) */
    int64_t now_ns;      /* wall clock stamped on records (ingested_ns) */
    uint16_t input;      /* event.input */
    /* not yet published */
    uint64_t records, truncated, bytes;
    lsf_frame_stats fst; /* stats of every framer of this input */
    lsf_counter *c_records, *c_bytes, *c_truncated, *c_empty, *c_incomplete, *c_bad_count;
    /* Optional, set after lsf_ingest_init: called with each non-empty batch
     * just before it is submitted (whether it was full or flushed), e.g. to
     * attach b->ack. */
    void (*on_submit)(void *arg, lsf_batch *b);
    void *on_submit_arg;
} lsf_ingest;

/* Sets up `in` for stage `st` and creates its counters ("<stage>.received",
 * ".bytes", ".truncated", ".empty", ".incomplete", ".framing_errors").
 * Main thread. */
void lsf_ingest_init(lsf_ingest *in, lsf_stage *st);

/* Appends a copy of rec[0..len) as an event of the current batch (getting a
 * batch from the pool first, and submitting a full one: both may block, that
 * is the backpressure). Sets input, ingested_ns and the truncated flag.
 * Never NULL. */
lsf_event *lsf_ingest_push(lsf_ingest *in, const char *rec, size_t len, int truncated);

/* Submits the current batch, if any, and publishes the counters. */
void lsf_ingest_flush(lsf_ingest *in);

/* A string copied into the batch arena at most once per batch. */
typedef struct lsf_addr_cache {
    uint64_t gen; /* lsf_ingest.gen of the batch `s` lives in; 0: none */
    lsf_str s;
} lsf_addr_cache;

/* Returns addr[0..len) as a slice in the current batch's arena, copying it
 * only when `c` holds no copy in this batch. Call after lsf_ingest_push. */
static inline lsf_str lsf_ingest_addr(lsf_ingest *in, lsf_addr_cache *c, const char *addr,
                                      size_t len)
{
    if (c->gen != in->gen) {
        c->s = lsf_str_make(lsf_arena_memdup(&in->b->arena, addr, len), len);
        c->gen = in->gen;
    }
    return c->s;
}

/* ---- reading a byte stream (stdin, files) ----------------------------- */

/* A framer, its buffer and the input it feeds: for inputs that read an fd
 * on their own thread. Records get no source address. */
typedef struct lsf_stream {
    lsf_framer fr;
    lsf_ingest *in;
    char *buf;
    size_t have, cap;
} lsf_stream;

/* Sets up a stream feeding `in`; the buffer holds max(1 MiB, what the
 * framer needs). */
void lsf_stream_init(lsf_stream *s, lsf_ingest *in, enum lsf_framing mode, size_t max_bytes);
void lsf_stream_deinit(lsf_stream *s);
/* One read(2) of fd, framed into `in`. Returns the bytes read, 0 at end of
 * file, or -errno (EINTR and EAGAIN included). */
ssize_t lsf_stream_read(lsf_stream *s, int fd);
/* End of this stream: a trailing partial line becomes a record. */
void lsf_stream_finish(lsf_stream *s);
/* Drops a partial frame (counted incomplete), e.g. when stopping mid-line or
 * when the file under a tailer was truncated. */
void lsf_stream_discard(lsf_stream *s);

/* Position of key `name` in the stage's config for error messages: its
 * value node, or the stage's node when the key was not given. */
const lsf_node *lsf_key_node(const lsf_stage *st, const char *name);

#endif
