/* syslog_tcp.c - the `syslog_tcp` input: syslog over TCP, newline-framed or
 * RFC 6587 octet-counted, many connections on the shared epoll loop.
 *
 * Design: a connection holds no buffer while it has no partial frame. Reads
 * go into one shared buffer of the input; complete records are copied from
 * there into the batch arena, and only the tail of a partial frame is kept
 * in a per-connection buffer (grown up to max_message_size + a header), into
 * which the next read appends. So thousands of idle connections cost a few
 * hundred bytes each. One recv per readiness event keeps connections fair;
 * a client that sends half a frame and waits only holds its own tail. When
 * the batch pool is empty lsf_pipeline_batch_get blocks the I/O thread: TCP
 * stops being read, which is the backpressure.
 * With a `tls:` section the listener speaks syslog over TLS (RFC 5425;
 * octet-counted frames, which `framing: auto` reads): handshakes are driven
 * by the same loop (ingest/tls.c) and records are read with SSL_read.
 * Per-listener limits: `allow` (source networks; others are closed at
 * accept), `max_connections`, `max_message_size`, and `rate_limit` per
 * source address, which pauses reading a connection until its bucket
 * refills (ingest/limits.c); each is counted when it acts. `multiline`
 * joins continuation lines per connection (ingest/multiline.c).
 * Threads: init/stop/destroy on the main thread (stop after the I/O thread
 * has been joined); every other function runs on the I/O thread.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "core/ioloop.h"
#include "core/log.h"
#include "core/metrics.h"
#include "core/pipeline.h"
#include "ingest/frame.h"
#include "ingest/limits.h"
#include "ingest/listen.h"
#include "ingest/multiline.h"
#include "ingest/tls.h"

#define READ_BUF_BYTES (256u << 10) /* shared read buffer (at least max + slack) */
#define SMALL_TAIL 8192u            /* tails up to this go back through the shared buffer */
#define TAIL_ROOM 65536u            /* room after a large tail for the next read */
#define KEEP_BUF_BYTES 16384u       /* a tail buffer this small stays allocated */
#define ACCEPT_BURST 64             /* accepts per readiness event */
#define STOP_DRAIN_BYTES (64u << 20) /* read at most this much in all when stopping */
#define ACCEPT_PAUSE_NS 100000000LL /* back off when out of descriptors */

typedef struct tcp_conf {
    lsf_input_conf common;
    char *listen;
    char *port_file;
    int framing;
    int64_t max_message_size;
    int64_t idle_timeout_ms;
    int64_t max_connections;
    lsf_strlist allow;
    int64_t rate_limit, rate_burst;
    const lsf_node *tls;
    const lsf_node *multiline;
} tcp_conf;

typedef struct tcp_ctx tcp_ctx;

typedef struct conn {
    tcp_ctx *t;
    int fd;
    lsf_framer fr;
    char *buf;       /* partial frame; NULL when none is pending */
    size_t have, cap;
    int64_t last_ns; /* monotonic time of the last data or accept */
    lsf_addr_cache addr_cache;
    SSL *ssl;           /* TLS listeners */
    bool handshaken;
    uint32_t round_records; /* records of the current read (rate limit) */
    int64_t paused_until;   /* monotonic ns; 0: reading */
    lsf_ml ml;              /* multiline */
    struct sockaddr_storage peer;
    struct conn *prev, *next;
    uint8_t addr_len;
    char addr[LSF_ADDR_STRLEN];
} conn;

struct tcp_ctx {
    lsf_stage *st;
    const tcp_conf *conf;
    bool inited, started;
    int lfd;
    int port;
    lsf_io *io;
    lsf_ingest in;
    conn *conns;
    int64_t nconns;
    char *rbuf;
    size_t rcap;
    size_t max_bytes;
    int64_t last_sweep_ns;
    int64_t accept_resume_ns; /* nonzero: accepting paused until then */
    lsf_tls *tls;
    lsf_allow allow;
    lsf_rate *rate;
    int npaused;
    lsf_ml_conf ml;
    int64_t last_ml_sweep_ns;
    lsf_counter *c_accepted, *c_closed, *c_idle_closed, *c_rejected, *c_errors, *c_not_allowed,
        *c_rate_limited;
};

static const lsf_key tcp_keys[] = {
    LSF_INPUT_KEYS(tcp_conf),
    {"listen", LSF_K_STR, "127.0.0.1:5514",
     "Address to listen on: host:port or [IPv6]:port; port 0 picks a free port.",
     offsetof(tcp_conf, listen), NULL, 0, 0, false},
    {"port_file", LSF_K_STR, NULL,
     "Write the bound port to this file (atomically) once listening; useful with port 0.",
     offsetof(tcp_conf, port_file), NULL, 0, 0, false},
    {"framing", LSF_K_ENUM, "auto",
     "auto: per frame, 'LEN <' is RFC 6587 octet counting, anything else a line; or force one.",
     offsetof(tcp_conf, framing), LSF_FRAMING_CHOICES, 0, 0, false},
    {"max_message_size", LSF_K_SIZE, "64KiB",
     "Longer messages are truncated to this size, tagged _truncated, the rest skipped.",
     offsetof(tcp_conf, max_message_size), NULL, 16, 64 << 20, false},
    {"idle_timeout", LSF_K_DURATION, "0",
     "Close connections silent for this long; 0 keeps them open.",
     offsetof(tcp_conf, idle_timeout_ms), NULL, 0, 0, false},
    {"max_connections", LSF_K_INT, "4096",
     "Connections beyond this many are accepted and closed at once (counted).",
     offsetof(tcp_conf, max_connections), NULL, 1, 1000000, false},
    {"allow", LSF_K_STRLIST, NULL,
     "Source networks that may connect (10.0.0.0/8, 2001:db8::/32); others are closed at once "
     "(counted). Empty: everyone.",
     offsetof(tcp_conf, allow), NULL, 0, 0, false},
    {"rate_limit", LSF_K_INT, "0",
     "Messages per second per source address; a faster sender is paused until it is back "
     "under the limit (counted, nothing lost). 0: no limit.",
     offsetof(tcp_conf, rate_limit), NULL, 0, 100000000, false},
    {"rate_burst", LSF_K_INT, "0", "Messages a source may send at once above the rate (0: one second's worth).",
     offsetof(tcp_conf, rate_burst), NULL, 0, 100000000, false},
    {"tls", LSF_K_NODE, NULL,
     "Syslog over TLS (RFC 5425): {cert_file, key_file, ca_file, verify_client: "
     "none|optional|required, allowed_peers, min_version: 1.2|1.3}; SIGHUP reloads the files.",
     offsetof(tcp_conf, tls), NULL, 0, 0, false},
    {"multiline", LSF_K_NODE, NULL,
     "Join continuation lines per connection: {mode: start|indent, start_pattern, ...} (docs/ingest.md).",
     offsetof(tcp_conf, multiline), NULL, 0, 0, false},
    LSF_KEYS_END,
};

/* ---- connections ------------------------------------------------------- */

static void push_record(void *arg, const char *rec, size_t len, int truncated, uint64_t tag)
{
    conn *c = arg;
    lsf_ingest *in = &c->t->in;
    (void)tag;
    lsf_event *ev = lsf_ingest_push(in, rec, len, truncated);
    ev->source_addr = lsf_ingest_addr(in, &c->addr_cache, c->addr, c->addr_len);
}

static void on_record(void *arg, const char *rec, size_t len, int truncated)
{
    conn *c = arg;
    c->round_records++;
    if (c->t->ml.enabled)
        lsf_ml_line(&c->ml, rec, len, truncated, 0, lsf_now_mono_ns(), push_record, c);
    else
        push_record(c, rec, len, truncated, 0);
}

/* Closes and frees c; a pending partial frame is counted as incomplete. */
static void conn_close(conn *c, lsf_counter *why)
{
    tcp_ctx *t = c->t;
    if (c->have) {
        t->in.fst.incomplete++;
        c->have = 0;
    }
    if (t->ml.enabled) {
        lsf_ml_flush(&c->ml, push_record, c);
        lsf_ml_deinit(&c->ml);
    }
    if (c->paused_until)
        t->npaused--;
    if (c->ssl)
        SSL_free(c->ssl);
    if (t->started)
        lsf_io_del(t->io, c->fd);
    close(c->fd);
    if (c->prev)
        c->prev->next = c->next;
    else
        t->conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    t->nconns--;
    lsf_counter_add(t->c_closed, 1);
    if (why)
        lsf_counter_add(why, 1);
    free(c->buf);
    free(c);
}

/* Makes c->buf hold at least `want` bytes, keeping its contents. */
static void conn_reserve(conn *c, size_t want)
{
    if (c->cap >= want)
        return;
    size_t ncap = c->cap ? c->cap : 1024;
    while (ncap < want)
        ncap *= 2;
    char *nb = realloc(c->buf, ncap);
    if (!nb)
        lsf_die("out of memory (connection buffer of %zu bytes)", ncap);
    c->buf = nb;
    c->cap = ncap;
}

/* Keeps base[used..total) as c's pending tail. A small tail is copied back
 * into the shared buffer before the next read; a large one (a long message
 * arriving in pieces) is read into directly, with room to grow up to the
 * framer's bound, so it is not copied again and again. */
static void keep_tail(conn *c, const char *base, size_t used, size_t total)
{
    size_t rest = total - used;
    size_t bound = lsf_frame_buf_min(&c->fr); /* a tail is always shorter */
    size_t want = rest <= SMALL_TAIL ? rest : (rest + TAIL_ROOM < bound ? rest + TAIL_ROOM : bound);
    if (base == c->buf) {
        if (used && rest)
            memmove(c->buf, c->buf + used, rest);
        conn_reserve(c, want);
    } else if (rest) {
        conn_reserve(c, want);
        memcpy(c->buf, base + used, rest);
    }
    c->have = rest;
    if (rest == 0 && c->cap > KEEP_BUF_BYTES) {
        free(c->buf);
        c->buf = NULL;
        c->cap = 0;
    }
}

static void on_conn(void *arg, uint32_t events);

/* Drives a TLS handshake. Returns 1 when reading may go on, 0 to wait for
 * the socket, -1 when the connection was closed. */
static int conn_handshake(conn *c)
{
    tcp_ctx *t = c->t;
    bool want_write;
    int rc = lsf_tls_handshake(t->tls, c->ssl, c->addr, &want_write);
    if (rc < 0) {
        conn_close(c, t->c_errors);
        return -1;
    }
    if (rc == 0) {
        lsf_io_mod(t->io, c->fd, want_write ? EPOLLOUT : EPOLLIN, on_conn, c);
        return 0;
    }
    c->handshaken = true;
    lsf_io_mod(t->io, c->fd, EPOLLIN, on_conn, c);
    return 1;
}

/* After a read: charges the records to the sender's bucket and pauses the
 * connection while it is over its rate. */
static void charge(conn *c)
{
    tcp_ctx *t = c->t;
    uint32_t n = c->round_records;
    c->round_records = 0;
    if (!t->rate || !n || !t->started)
        return;
    int64_t now = lsf_now_mono_ns();
    int64_t wait = lsf_rate_take(t->rate, (struct sockaddr *)&c->peer, n, now);
    if (wait > 0 && !c->paused_until) {
        c->paused_until = now + wait;
        t->npaused++;
        lsf_counter_add(t->c_rate_limited, 1);
        lsf_io_mod(t->io, c->fd, 0, on_conn, c);
    }
}

/* One recv into the connection. Returns 1 after data, 0 when nothing was
 * there, -1 when the connection was closed. */
static int conn_read(conn *c)
{
    tcp_ctx *t = c->t;
    if (c->ssl && !c->handshaken) {
        int h = conn_handshake(c);
        if (h <= 0)
            return h;
    }
    char *base;
    size_t cap;
    if (c->have > SMALL_TAIL) {
        base = c->buf;
        cap = c->cap;
    } else {
        base = t->rbuf;
        cap = t->rcap;
        if (c->have)
            memcpy(base, c->buf, c->have);
    }
    ssize_t n = c->ssl ? lsf_tls_read(c->ssl, base + c->have, cap - c->have)
                       : recv(c->fd, base + c->have, cap - c->have, 0);
    if (n > 0) {
        size_t total = c->have + (size_t)n;
        t->in.bytes += (uint64_t)n;
        t->in.now_ns = lsf_now_real_ns();
        c->last_ns = lsf_now_mono_ns();
        size_t used = lsf_frame_feed(&c->fr, base, total, on_record, c);
        keep_tail(c, base, used, total);
        charge(c);
        return 1;
    }
    if (n == 0) {
        /* The sender closed: a trailing partial line is its last record. */
        t->in.now_ns = lsf_now_real_ns();
        lsf_frame_finish(&c->fr, base, c->have, on_record, c);
        c->have = 0;
        conn_close(c, NULL);
        return -1;
    }
    if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)
        return 0;
    /* Reset or error: complete records are already out; a partial frame is
     * not known to be whole, so it is counted incomplete (conn_close). */
    lsf_debug("%s: %s: %s", t->st->name, c->addr, strerror(errno));
    conn_close(c, t->c_errors);
    return -1;
}

static void on_conn(void *arg, uint32_t events)
{
    conn *c = arg;
    (void)events; /* errors and hang-ups surface through recv */
    /* TLS may hold decrypted bytes the socket no longer signals */
    while (conn_read(c) > 0 && c->ssl && !c->paused_until && SSL_pending(c->ssl) > 0)
        ;
}

static void pause_accept(tcp_ctx *t, int err)
{
    static _Atomic int64_t last_warn_ns;
    int64_t now = lsf_now_mono_ns();
    if (now - last_warn_ns > 10000000000LL) {
        last_warn_ns = now;
        lsf_warn("%s: cannot accept connections: %s (pausing)", t->st->name, strerror(err));
    }
    lsf_counter_add(t->c_errors, 1);
    t->accept_resume_ns = now + ACCEPT_PAUSE_NS;
    lsf_io_mod(t->io, t->lfd, 0, NULL, NULL);
}

static void on_accept(void *arg, uint32_t events)
{
    tcp_ctx *t = arg;
    (void)events;
    for (int i = 0; i < ACCEPT_BURST; i++) {
        struct sockaddr_storage ss;
        socklen_t sl = sizeof(ss);
        int fd = accept4(t->lfd, (struct sockaddr *)&ss, &sl, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno == EAGAIN || errno == EWOULDBLOCK)
                return;
            if (errno == EINTR || errno == ECONNABORTED || errno == EPROTO || errno == EPERM)
                continue;
            pause_accept(t, errno); /* EMFILE, ENFILE, ENOBUFS, ENOMEM */
            return;
        }
        if (!lsf_allow_match(&t->allow, (struct sockaddr *)&ss)) {
            char a[LSF_ADDR_STRLEN];
            lsf_addr_format((struct sockaddr *)&ss, a, sizeof(a));
            lsf_debug("%s: %s is not in allow: closed", t->st->name, a);
            close(fd);
            lsf_counter_add(t->c_not_allowed, 1);
            continue;
        }
        if (t->nconns >= t->conf->max_connections) {
            close(fd);
            lsf_counter_add(t->c_rejected, 1);
            continue;
        }
        conn *c = calloc(1, sizeof(*c));
        if (!c)
            lsf_die("out of memory");
        c->t = t;
        c->fd = fd;
        c->last_ns = lsf_now_mono_ns();
        c->addr_len = (uint8_t)lsf_addr_format((struct sockaddr *)&ss, c->addr, sizeof(c->addr));
        memcpy(&c->peer, &ss, sizeof(ss));
        lsf_frame_init(&c->fr, t->conf->framing, t->max_bytes, &t->in.fst);
        if (t->tls)
            c->ssl = lsf_tls_accept(t->tls, fd);
        if (t->ml.enabled)
            lsf_ml_init(&c->ml, &t->ml);
        int rc = lsf_io_add(t->io, fd, EPOLLIN, on_conn, c);
        if (rc < 0) {
            lsf_warn("%s: cannot watch a connection: %s", t->st->name, strerror(-rc));
            if (c->ssl)
                SSL_free(c->ssl);
            if (t->ml.enabled)
                lsf_ml_deinit(&c->ml);
            close(fd);
            free(c);
            lsf_counter_add(t->c_errors, 1);
            continue;
        }
        c->next = t->conns;
        if (t->conns)
            t->conns->prev = c;
        t->conns = c;
        t->nconns++;
        lsf_counter_add(t->c_accepted, 1);
    }
}

/* Resumes connections whose rate pause is over and emits multiline events
 * whose flush timeout passed. */
static void sweep_conns(tcp_ctx *t, int64_t now_ns)
{
    bool ml = t->ml.enabled && now_ns - t->last_ml_sweep_ns >= 50000000LL;
    if (!t->npaused && !ml)
        return;
    if (ml)
        t->last_ml_sweep_ns = now_ns;
    for (conn *c = t->conns; c; c = c->next) {
        if (c->paused_until && now_ns >= c->paused_until) {
            c->paused_until = 0;
            t->npaused--;
            lsf_io_mod(t->io, c->fd, EPOLLIN, on_conn, c);
        }
        if (ml)
            lsf_ml_tick(&c->ml, now_ns, push_record, c);
    }
}

/* After every I/O round: hand over the partial batch, expire idle peers. */
static void on_tick(void *arg, int64_t now_ns)
{
    tcp_ctx *t = arg;
    sweep_conns(t, now_ns);
    lsf_ingest_flush(&t->in);
    if (t->accept_resume_ns && now_ns >= t->accept_resume_ns) {
        t->accept_resume_ns = 0;
        lsf_io_mod(t->io, t->lfd, EPOLLIN, on_accept, t);
    }
    int64_t idle_ns = t->conf->idle_timeout_ms * 1000000LL;
    if (idle_ns <= 0)
        return;
    int64_t every = idle_ns / 4 < 1000000000LL ? idle_ns / 4 : 1000000000LL;
    if (now_ns - t->last_sweep_ns < every)
        return;
    t->last_sweep_ns = now_ns;
    for (conn *c = t->conns, *next; c; c = next) {
        next = c->next;
        if (now_ns - c->last_ns >= idle_ns)
            conn_close(c, t->c_idle_closed);
    }
}

/* ---- stage ------------------------------------------------------------- */

static int tcp_init(lsf_stage *st, lsf_errbuf *err)
{
    tcp_ctx *t = st->ctx;
    const tcp_conf *cf = st->conf;
    char msg[512];
    t->st = st;
    t->conf = cf;
    t->lfd = -1;
    t->inited = true;
    t->max_bytes = (size_t)cf->max_message_size;
    if (lsf_allow_parse(&t->allow, &cf->allow, lsf_key_node(st, "allow"), err) < 0 ||
        lsf_ml_conf_bind(&t->ml, cf->multiline, cf->max_message_size, err) < 0)
        return -1;
    if (cf->tls && !(t->tls = lsf_tls_new(cf->tls, st->name, err)))
        return -1;
    if (cf->rate_limit)
        t->rate = lsf_rate_new((double)cf->rate_limit,
                               (double)(cf->rate_burst ? cf->rate_burst : cf->rate_limit));
    lsf_ingest_init(&t->in, st);
    t->lfd = lsf_listen_open(cf->listen, SOCK_STREAM, msg, sizeof(msg));
    if (t->lfd < 0)
        return lsf_node_error(err, lsf_key_node(st, "listen"), "%s", msg);
    t->port = lsf_socket_port(t->lfd);
    t->rcap = READ_BUF_BYTES;
    if (t->rcap < t->max_bytes + LSF_FRAME_SLACK)
        t->rcap = t->max_bytes + LSF_FRAME_SLACK;
    t->rbuf = malloc(t->rcap);
    if (!t->rbuf)
        lsf_die("out of memory");
    t->c_accepted = lsf_counter_new(st->name, "connections_accepted");
    t->c_closed = lsf_counter_new(st->name, "connections_closed");
    t->c_idle_closed = lsf_counter_new(st->name, "connections_idle_closed");
    t->c_rejected = lsf_counter_new(st->name, "connections_rejected");
    t->c_errors = lsf_counter_new(st->name, "errors");
    t->c_not_allowed = lsf_counter_new(st->name, "connections_not_allowed");
    t->c_rate_limited = lsf_counter_new(st->name, "rate_limited");
    return 0;
}

static int tcp_start(lsf_stage *st)
{
    tcp_ctx *t = st->ctx;
    t->io = lsf_pipeline_io(st->pipeline);
    int rc = lsf_io_add(t->io, t->lfd, EPOLLIN, on_accept, t);
    if (rc < 0) {
        lsf_err("%s: cannot watch the listening socket: %s", st->name, strerror(-rc));
        return -1;
    }
    lsf_io_add_tick(t->io, on_tick, t);
    t->started = true;
    if (t->conf->port_file && (rc = lsf_port_file_write(t->conf->port_file, t->port)) < 0) {
        lsf_err("%s: cannot write port_file %s: %s", st->name, t->conf->port_file, strerror(-rc));
        return -1;
    }
    lsf_info("%s: listening on %s (%s port %d)", st->name, t->conf->listen, t->tls ? "TLS" : "TCP",
             t->port);
    return 0;
}

/* Main thread, after the I/O thread was joined: read what the kernel has
 * already accepted from each peer (bounded), then submit. New connections
 * are refused from here on. */
static void tcp_stop(lsf_stage *st)
{
    tcp_ctx *t = st->ctx;
    if (!t->started)
        return;
    if (t->lfd >= 0) {
        lsf_io_del(t->io, t->lfd);
        close(t->lfd);
        t->lfd = -1;
    }
    uint64_t before = t->in.bytes, budget = STOP_DRAIN_BYTES;
    for (conn *c = t->conns, *next; c; c = next) {
        next = c->next;
        while (t->in.bytes - before < budget && conn_read(c) > 0)
            ;
    }
    /* Complete lines held for multiline go out now, while workers run. */
    for (conn *c = t->conns; c && t->ml.enabled; c = c->next)
        lsf_ml_flush(&c->ml, push_record, c);
    lsf_ingest_flush(&t->in);
}

static void tcp_destroy(lsf_stage *st)
{
    tcp_ctx *t = st->ctx;
    if (!t->inited)
        return;
    while (t->conns)
        conn_close(t->conns, NULL);
    if (t->lfd >= 0)
        close(t->lfd);
    t->lfd = -1;
    lsf_ingest_flush(&t->in); /* nothing left to submit: publishes the counters */
    free(t->rbuf);
    t->rbuf = NULL;
    lsf_tls_free(t->tls);
    t->tls = NULL;
    lsf_rate_free(t->rate);
    t->rate = NULL;
    lsf_allow_free(&t->allow);
    lsf_ml_conf_free(&t->ml);
}

/* SIGHUP: reload the TLS certificates (the running ones stay on error). */
static void tcp_reopen(lsf_stage *st)
{
    tcp_ctx *t = st->ctx;
    if (t->tls)
        lsf_tls_reload(t->tls);
}

const lsf_stage_def lsf_stage_syslog_tcp = {
    .name = "syslog_tcp",
    .kind = LSF_STAGE_INPUT,
    .help = "Syslog over TCP or TLS (RFC 5425): newline or RFC 6587 octet-counted framing, many "
            "connections, allow-lists, rate limits, multiline.",
    .keys = tcp_keys,
    .conf_size = sizeof(tcp_conf),
    .ctx_size = sizeof(tcp_ctx),
    .init = tcp_init,
    .start = tcp_start,
    .stop = tcp_stop,
    .reopen = tcp_reopen,
    .destroy = tcp_destroy,
};
