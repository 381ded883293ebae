/* syslog_udp.c - the `syslog_udp` input: one datagram is one record.
 *
 * Design: recvmmsg fills a vector of slots per system call, each slot one
 * datagram of up to max_message_size (+2 so a trailing "\r\n" does not look
 * like truncation); records are copied from the slots into the batch arena.
 * Trailing "\n", "\r" and NUL bytes are stripped (senders disagree on
 * terminators; none is part of the message). A datagram holding several
 * newline-separated messages stays one record: RFC 5426 says one message per
 * datagram, and splitting would break multi-line messages. Kernel drops (a
 * full receive buffer) go to the `dropped_kernel` counter from the socket's
 * cumulative drop count: SO_RXQ_OVFL's cmsg carries it with each datagram,
 * and SO_MEMINFO is read every second and at stop, because drops after the
 * last datagram that got through are reported by no cmsg. UDP losses are
 * counted, never silent. When the I/O thread blocks on
 * backpressure, datagrams queue in the receive buffer and then drop, counted.
 * Limits: `allow` (source networks) and `rate_limit` per source address;
 * datagrams they refuse are dropped and counted. The datagram machinery is
 * shared with the `unix_dgram` input (ingest/dgram.h).
 * Threads: init/stop/destroy on the main thread (stop after the I/O thread
 * has been joined); receiving on the I/O thread.
 */
#include <errno.h>
#include <linux/sock_diag.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "core/ioloop.h"
#include "core/log.h"
#include "core/metrics.h"
#include "core/pipeline.h"
#include "ingest/dgram.h"
#include "ingest/limits.h"
#include "ingest/listen.h"

#ifndef SO_RXQ_OVFL
#define SO_RXQ_OVFL 40
#endif
#ifndef SO_MEMINFO
#define SO_MEMINFO 55
#endif

typedef struct udp_conf {
    lsf_input_conf common;
    char *listen;
    char *port_file;
    int64_t receive_buffer;
    int64_t max_message_size;
    lsf_strlist allow;
    int64_t rate_limit, rate_burst;
} udp_conf;

static const lsf_key udp_keys[] = {
    LSF_INPUT_KEYS(udp_conf),
    {"listen", LSF_K_STR, "127.0.0.1:5514",
     "Address to listen on: host:port or [IPv6]:port; port 0 picks a free port.",
     offsetof(udp_conf, listen), NULL, 0, 0, false},
    {"port_file", LSF_K_STR, NULL,
     "Write the bound port to this file (atomically) once listening; useful with port 0.",
     offsetof(udp_conf, port_file), NULL, 0, 0, false},
    {"receive_buffer", LSF_K_SIZE, "4MiB",
     "Socket receive buffer (SO_RCVBUF); bursts beyond it are dropped by the kernel, counted.",
     offsetof(udp_conf, receive_buffer), NULL, 0, 1LL << 30, false},
    {"max_message_size", LSF_K_SIZE, "64KiB",
     "Longer datagrams are truncated to this size and tagged _truncated.",
     offsetof(udp_conf, max_message_size), NULL, 16, 64 << 20, false},
    {"allow", LSF_K_STRLIST, NULL,
     "Source networks whose datagrams are read (10.0.0.0/8, 2001:db8::/32); others are dropped "
     "(counted). Empty: everyone.",
     offsetof(udp_conf, allow), NULL, 0, 0, false},
    {"rate_limit", LSF_K_INT, "0",
     "Datagrams per second per source address; the ones above it are dropped (counted). 0: no "
     "limit.",
     offsetof(udp_conf, rate_limit), NULL, 0, 100000000, false},
    {"rate_burst", LSF_K_INT, "0", "Datagrams a source may send at once above the rate (0: one second's worth).",
     offsetof(udp_conf, rate_burst), NULL, 0, 100000000, false},
    LSF_KEYS_END,
};

static bool same_peer(const lsf_dgram *u, const struct sockaddr_storage *ss, socklen_t len)
{
    if (len != u->last_peer_len || ss->ss_family != u->last_peer.ss_family)
        return false;
    if (ss->ss_family == AF_INET) {
        const struct sockaddr_in *a = (const void *)ss, *b = (const void *)&u->last_peer;
        return a->sin_port == b->sin_port && a->sin_addr.s_addr == b->sin_addr.s_addr;
    }
    if (ss->ss_family == AF_INET6) {
        const struct sockaddr_in6 *a = (const void *)ss, *b = (const void *)&u->last_peer;
        return a->sin6_port == b->sin6_port &&
               memcmp(&a->sin6_addr, &b->sin6_addr, sizeof(a->sin6_addr)) == 0;
    }
    return false;
}

/* `v` is the socket's cumulative drop count at some moment; counts grow
 * (modulo 2^32), so a value behind the last one seen is stale. */
static void saw_drops(lsf_dgram *u, uint32_t v)
{
    uint32_t d = v - u->drops_seen;
    if (d && d < 0x80000000u) {
        lsf_counter_add(u->c_dropped, d);
        u->drops_seen = v;
    }
}

static void count_drops(lsf_dgram *u, struct msghdr *mh)
{
    for (struct cmsghdr *cm = CMSG_FIRSTHDR(mh); cm; cm = CMSG_NXTHDR(mh, cm)) {
        if (cm->cmsg_level == SOL_SOCKET && cm->cmsg_type == SO_RXQ_OVFL) {
            uint32_t v;
            memcpy(&v, CMSG_DATA(cm), sizeof(v));
            saw_drops(u, v);
        }
    }
}

static void poll_drops(lsf_dgram *u)
{
    uint32_t mem[SK_MEMINFO_VARS];
    socklen_t len = sizeof(mem);
    if (getsockopt(u->fd, SOL_SOCKET, SO_MEMINFO, mem, &len) == 0 &&
        len > SK_MEMINFO_DROPS * sizeof(uint32_t))
        saw_drops(u, mem[SK_MEMINFO_DROPS]);
}

static void one_datagram(lsf_dgram *u, int i)
{
    struct msghdr *mh = &u->msgs[i].msg_hdr;
    const char *rec = u->bufs + (size_t)i * u->slot;
    size_t len = u->msgs[i].msg_len;
    int truncated = (mh->msg_flags & MSG_TRUNC) != 0;
    if (len > u->slot)
        len = u->slot;
    u->in.bytes += len;
    if (mh->msg_controllen)
        count_drops(u, mh);
    while (!truncated && len &&
           (rec[len - 1] == '\n' || rec[len - 1] == '\r' || rec[len - 1] == '\0'))
        len--;
    if (len > u->max_bytes) {
        len = u->max_bytes;
        truncated = 1;
    }
    if (len == 0) {
        u->in.fst.empty++;
        return;
    }
    const struct sockaddr *sa = (struct sockaddr *)&u->names[i];
    if (u->family != AF_UNIX) {
        if (u->allow && !lsf_allow_match(u->allow, sa)) {
            u->not_allowed++;
            return;
        }
        if (u->rate && !lsf_rate_allow_one(u->rate, sa, u->mono_ns)) {
            u->rate_dropped++;
            return;
        }
    }
    lsf_event *ev = lsf_ingest_push(&u->in, rec, len, truncated);
    if (u->family == AF_UNIX)
        return; /* a local sender has no address worth a field */
    if (!same_peer(u, &u->names[i], mh->msg_namelen)) {
        memcpy(&u->last_peer, &u->names[i], sizeof(u->last_peer));
        u->last_peer_len = mh->msg_namelen;
        u->last_addr_len =
            lsf_addr_format((struct sockaddr *)&u->names[i], u->last_addr, sizeof(u->last_addr));
        u->addr_cache.gen = 0;
    }
    ev->source_addr = lsf_ingest_addr(&u->in, &u->addr_cache, u->last_addr, u->last_addr_len);
}

static void on_readable(void *arg, uint32_t events)
{
    lsf_dgram *u = arg;
    (void)events;
    for (int round = 0; round < LSF_DGRAM_ROUNDS; round++) {
        for (int i = 0; i < LSF_DGRAM_VLEN; i++) {
            struct msghdr *mh = &u->msgs[i].msg_hdr;
            mh->msg_namelen = sizeof(u->names[i]);
            mh->msg_controllen = sizeof(u->ctrl[i]);
            mh->msg_flags = 0;
        }
        int n = recvmmsg(u->fd, u->msgs, LSF_DGRAM_VLEN, MSG_DONTWAIT, NULL);
        if (n < 0) {
            if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
                lsf_counter_add(u->c_errors, 1);
                lsf_debug("%s: recvmmsg: %s", u->st->name, strerror(errno));
            }
            return;
        }
        u->in.now_ns = lsf_now_real_ns();
        u->mono_ns = lsf_now_mono_ns();
        for (int i = 0; i < n; i++)
            one_datagram(u, i);
        if (n < LSF_DGRAM_VLEN)
            return;
    }
}

static void publish_limits(lsf_dgram *u)
{
    if (u->not_allowed)
        lsf_counter_add(u->c_not_allowed, u->not_allowed);
    if (u->rate_dropped)
        lsf_counter_add(u->c_rate_limited, u->rate_dropped);
    u->not_allowed = u->rate_dropped = 0;
}

static void on_tick(void *arg, int64_t now_ns)
{
    lsf_dgram *u = arg;
    lsf_ingest_flush(&u->in);
    publish_limits(u);
    if (now_ns - u->drops_polled_ns >= 1000000000LL) {
        u->drops_polled_ns = now_ns;
        poll_drops(u);
    }
}

/* Asks for `want` bytes of receive buffer (beyond rmem_max when privileged)
 * and warns when the kernel granted less. */
static void set_rcvbuf(lsf_dgram *u, int64_t want)
{
    if (want <= 0)
        return;
    int v = want > 0x3fffffff ? 0x3fffffff : (int)want;
    if (setsockopt(u->fd, SOL_SOCKET, SO_RCVBUFFORCE, &v, sizeof(v)) < 0)
        setsockopt(u->fd, SOL_SOCKET, SO_RCVBUF, &v, sizeof(v));
    int got = 0;
    socklen_t gl = sizeof(got);
    /* Linux reports twice the requested size (bookkeeping overhead). */
    if (getsockopt(u->fd, SOL_SOCKET, SO_RCVBUF, &got, &gl) == 0 && got / 2 < v)
        lsf_warn("%s: receive buffer is %d bytes, not the %d asked for (raise "
                 "net.core.rmem_max); bursts may be dropped (counted)",
                 u->st->name, got / 2, v);
}

void lsf_dgram_setup(lsf_dgram *u, lsf_stage *st, int fd, int64_t receive_buffer,
                     int64_t max_message_size)
{
    int one = 1;
    u->st = st;
    u->fd = fd;
    u->inited = true;
    struct sockaddr_storage ss;
    socklen_t sl = sizeof(ss);
    u->family = getsockname(fd, (struct sockaddr *)&ss, &sl) == 0 ? ss.ss_family : AF_UNSPEC;
    lsf_ingest_init(&u->in, st);
    u->c_dropped = lsf_counter_new(st->name, "dropped_kernel");
    u->c_errors = lsf_counter_new(st->name, "errors");
    u->c_not_allowed = lsf_counter_new(st->name, "dropped_not_allowed");
    u->c_rate_limited = lsf_counter_new(st->name, "dropped_rate_limit");
    set_rcvbuf(u, receive_buffer);
    if (setsockopt(u->fd, SOL_SOCKET, SO_RXQ_OVFL, &one, sizeof(one)) < 0)
        lsf_warn("%s: SO_RXQ_OVFL unavailable (%s): kernel drops will not be counted", st->name,
                 strerror(errno));
    u->max_bytes = (size_t)max_message_size;
    u->slot = u->max_bytes + 2 < LSF_DGRAM_MAX ? u->max_bytes + 2 : LSF_DGRAM_MAX;
    u->bufs = malloc(u->slot * LSF_DGRAM_VLEN);
    if (!u->bufs)
        lsf_die("out of memory");
    for (int i = 0; i < LSF_DGRAM_VLEN; i++) {
        u->iov[i].iov_base = u->bufs + (size_t)i * u->slot;
        u->iov[i].iov_len = u->slot;
        struct msghdr *mh = &u->msgs[i].msg_hdr;
        mh->msg_name = &u->names[i];
        mh->msg_iov = &u->iov[i];
        mh->msg_iovlen = 1;
        mh->msg_control = u->ctrl[i];
    }
}

int lsf_dgram_start(lsf_dgram *u, const char *what)
{
    u->io = lsf_pipeline_io(u->st->pipeline);
    int rc = lsf_io_add(u->io, u->fd, EPOLLIN, on_readable, u);
    if (rc < 0) {
        lsf_err("%s: cannot watch the socket: %s", u->st->name, strerror(-rc));
        return -1;
    }
    lsf_io_add_tick(u->io, on_tick, u);
    u->started = true;
    lsf_info("%s: listening on %s", u->st->name, what);
    return 0;
}

void lsf_dgram_stop(lsf_dgram *u)
{
    if (!u->started)
        return;
    on_readable(u, EPOLLIN);
    lsf_ingest_flush(&u->in);
    publish_limits(u);
    poll_drops(u);
    lsf_io_del(u->io, u->fd);
    close(u->fd);
    u->fd = -1;
    u->started = false;
}

void lsf_dgram_destroy(lsf_dgram *u)
{
    if (!u->inited)
        return;
    if (u->fd >= 0)
        close(u->fd);
    u->fd = -1;
    lsf_ingest_flush(&u->in); /* nothing left to submit: publishes the counters */
    free(u->bufs);
    u->bufs = NULL;
    u->inited = false;
}

/* ---- syslog_udp ----------------------------------------------------------- */

typedef struct udp_ctx {
    lsf_dgram d;
    lsf_allow allow;
    int port;
} udp_ctx;

static int udp_init(lsf_stage *st, lsf_errbuf *err)
{
    udp_ctx *u = st->ctx;
    const udp_conf *cf = st->conf;
    char msg[512];
    if (lsf_allow_parse(&u->allow, &cf->allow, lsf_key_node(st, "allow"), err) < 0)
        return -1;
    int fd = lsf_listen_open(cf->listen, SOCK_DGRAM, msg, sizeof(msg));
    if (fd < 0)
        return lsf_node_error(err, lsf_key_node(st, "listen"), "%s", msg);
    lsf_dgram_setup(&u->d, st, fd, cf->receive_buffer, cf->max_message_size);
    u->port = lsf_socket_port(fd);
    u->d.allow = u->allow.n ? &u->allow : NULL;
    if (cf->rate_limit)
        u->d.rate = lsf_rate_new((double)cf->rate_limit,
                                 (double)(cf->rate_burst ? cf->rate_burst : cf->rate_limit));
    return 0;
}

static int udp_start(lsf_stage *st)
{
    udp_ctx *u = st->ctx;
    const udp_conf *cf = st->conf;
    char what[300];
    int rc;
    snprintf(what, sizeof(what), "%s (UDP port %d)", cf->listen, u->port);
    if (lsf_dgram_start(&u->d, what) < 0)
        return -1;
    if (cf->port_file && (rc = lsf_port_file_write(cf->port_file, u->port)) < 0) {
        lsf_err("%s: cannot write port_file %s: %s", st->name, cf->port_file, strerror(-rc));
        return -1;
    }
    return 0;
}

/* Main thread, after the I/O thread was joined: take what is queued in the
 * receive buffer (bounded), submit, and close the socket. */
static void udp_stop(lsf_stage *st)
{
    udp_ctx *u = st->ctx;
    lsf_dgram_stop(&u->d);
}

static void udp_destroy(lsf_stage *st)
{
    udp_ctx *u = st->ctx;
    lsf_dgram_destroy(&u->d);
    lsf_rate_free(u->d.rate);
    u->d.rate = NULL;
    lsf_allow_free(&u->allow);
}

const lsf_stage_def lsf_stage_syslog_udp = {
    .name = "syslog_udp",
    .kind = LSF_STAGE_INPUT,
    .help = "Syslog over UDP: one datagram is one message; kernel drops are counted.",
    .keys = udp_keys,
    .conf_size = sizeof(udp_conf),
    .ctx_size = sizeof(udp_ctx),
    .init = udp_init,
    .start = udp_start,
    .stop = udp_stop,
    .destroy = udp_destroy,
};
