/* listen.c - addresses, listening sockets, port files, and batch filling
 * shared by every input (see listen.h).
 *
 * Design: lsf_ingest takes a batch lazily and publishes counters in bulk, so
 * the per-record cost is one arena copy and a few plain increments.
 * Threads: address helpers are reentrant; an lsf_ingest belongs to one thread.
 */
#include "listen.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/config.h"
#include "core/ioloop.h"
#include "core/log.h"
#include "core/pipeline.h"

/* ---- addresses --------------------------------------------------------- */

static int parse_port(const char *s, int *port)
{
    if (!*s)
        return -1;
    long v = 0;
    for (const char *p = s; *p; p++) {
        if (*p < '0' || *p > '9' || p - s >= 5)
            return -1;
        v = v * 10 + (*p - '0');
    }
    if (v > 65535)
        return -1;
    *port = (int)v;
    return 0;
}

int lsf_addr_parse(const char *spec, int socktype, struct sockaddr_storage *ss, socklen_t *sslen,
                   char *err, size_t errlen)
{
    char host[256];
    const char *portstr;
    if (!spec || !*spec) {
        snprintf(err, errlen, "empty address (want host:port)");
        return -1;
    }
    if (spec[0] == '[') {
        const char *close = strchr(spec, ']');
        if (!close || close[1] != ':') {
            snprintf(err, errlen, "'%s': want [IPv6-address]:port", spec);
            return -1;
        }
        size_t n = (size_t)(close - spec - 1);
        if (n == 0 || n >= sizeof(host)) {
            snprintf(err, errlen, "'%s': bad IPv6 address", spec);
            return -1;
        }
        memcpy(host, spec + 1, n);
        host[n] = '\0';
        portstr = close + 2;
    } else {
        const char *colon = strrchr(spec, ':');
        if (!colon) {
            snprintf(err, errlen, "'%s': want host:port (e.g. 127.0.0.1:5514)", spec);
            return -1;
        }
        if (strchr(spec, ':') != colon) {
            snprintf(err, errlen, "'%s': write an IPv6 address as [address]:port", spec);
            return -1;
        }
        size_t n = (size_t)(colon - spec);
        if (n >= sizeof(host)) {
            snprintf(err, errlen, "'%s': host name too long", spec);
            return -1;
        }
        memcpy(host, spec, n);
        host[n] = '\0';
        portstr = colon + 1;
    }
    int port;
    if (parse_port(portstr, &port) < 0) {
        snprintf(err, errlen, "'%s': port must be a number from 0 to 65535", spec);
        return -1;
    }
    memset(ss, 0, sizeof(*ss));
    if (host[0] == '\0' || strcmp(host, "*") == 0) {
        struct sockaddr_in *sin = (struct sockaddr_in *)ss;
        sin->sin_family = AF_INET;
        sin->sin_addr.s_addr = htonl(INADDR_ANY);
        sin->sin_port = htons((uint16_t)port);
        *sslen = sizeof(*sin);
        return 0;
    }
    struct addrinfo hints, *res = NULL;
    memset(&hints, 0, sizeof(hints));
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = socktype;
    hints.ai_flags = AI_PASSIVE;
    int rc = getaddrinfo(host, NULL, &hints, &res);
    if (rc != 0 || !res) {
        snprintf(err, errlen, "'%s': cannot resolve '%s': %s", spec, host,
                 rc ? gai_strerror(rc) : "no address");
        return -1;
    }
    memcpy(ss, res->ai_addr, res->ai_addrlen);
    *sslen = res->ai_addrlen;
    freeaddrinfo(res);
    if (ss->ss_family == AF_INET)
        ((struct sockaddr_in *)ss)->sin_port = htons((uint16_t)port);
    else if (ss->ss_family == AF_INET6)
        ((struct sockaddr_in6 *)ss)->sin6_port = htons((uint16_t)port);
    else {
        snprintf(err, errlen, "'%s': not an IP address", spec);
        return -1;
    }
    return 0;
}

int lsf_listen_open(const char *spec, int socktype, char *err, size_t errlen)
{
    struct sockaddr_storage ss;
    socklen_t sslen;
    int fd = -1, one = 1;
    if (lsf_addr_parse(spec, socktype, &ss, &sslen, err, errlen) < 0)
        return -1;
    fd = socket(ss.ss_family, socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        snprintf(err, errlen, "'%s': socket: %s", spec, strerror(errno));
        goto fail;
    }
    if (socktype == SOCK_STREAM && setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0) {
        snprintf(err, errlen, "'%s': SO_REUSEADDR: %s", spec, strerror(errno));
        goto fail;
    }
    if (bind(fd, (struct sockaddr *)&ss, sslen) < 0) {
        snprintf(err, errlen, "cannot bind %s: %s", spec, strerror(errno));
        goto fail;
    }
    if (socktype == SOCK_STREAM && listen(fd, SOMAXCONN) < 0) {
        snprintf(err, errlen, "cannot listen on %s: %s", spec, strerror(errno));
        goto fail;
    }
    return fd;
fail:
    if (fd >= 0)
        close(fd);
    return -1;
}

int lsf_socket_port(int fd)
{
    struct sockaddr_storage ss;
    socklen_t len = sizeof(ss);
    if (getsockname(fd, (struct sockaddr *)&ss, &len) < 0)
        return -1;
    if (ss.ss_family == AF_INET)
        return ntohs(((struct sockaddr_in *)&ss)->sin_port);
    if (ss.ss_family == AF_INET6)
        return ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
    return -1;
}

int lsf_port_file_write(const char *path, int port)
{
    char tmp[4096], text[16];
    int fd = -1, rc = 0;
    int n = snprintf(tmp, sizeof(tmp), "%s.tmp.%ld", path, (long)getpid());
    if (n < 0 || (size_t)n >= sizeof(tmp))
        return -ENAMETOOLONG;
    int len = snprintf(text, sizeof(text), "%d\n", port);
    fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0)
        return -errno;
    if (write(fd, text, (size_t)len) != len) {
        rc = errno ? -errno : -EIO;
        goto fail;
    }
    if (close(fd) < 0) {
        fd = -1;
        rc = -errno;
        goto fail;
    }
    fd = -1;
    if (rename(tmp, path) < 0) {
        rc = -errno;
        goto fail;
    }
    return 0;
fail:
    if (fd >= 0)
        close(fd);
    unlink(tmp);
    return rc;
}

size_t lsf_addr_format(const struct sockaddr *sa, char *out, size_t cap)
{
    char ip[INET6_ADDRSTRLEN];
    int n;
    if (sa->sa_family == AF_INET) {
        const struct sockaddr_in *sin = (const struct sockaddr_in *)sa;
        inet_ntop(AF_INET, &sin->sin_addr, ip, sizeof(ip));
        n = snprintf(out, cap, "%s:%u", ip, ntohs(sin->sin_port));
    } else if (sa->sa_family == AF_INET6) {
        const struct sockaddr_in6 *sin6 = (const struct sockaddr_in6 *)sa;
        if (IN6_IS_ADDR_V4MAPPED(&sin6->sin6_addr)) {
            inet_ntop(AF_INET, &sin6->sin6_addr.s6_addr[12], ip, sizeof(ip));
            n = snprintf(out, cap, "%s:%u", ip, ntohs(sin6->sin6_port));
        } else {
            inet_ntop(AF_INET6, &sin6->sin6_addr, ip, sizeof(ip));
            n = snprintf(out, cap, "[%s]:%u", ip, ntohs(sin6->sin6_port));
        }
    } else {
        n = snprintf(out, cap, "unknown");
    }
    if (n < 0)
        n = 0;
    return (size_t)n < cap ? (size_t)n : cap - 1;
}

const lsf_node *lsf_key_node(const lsf_stage *st, const char *name)
{
    const lsf_node *n = st->node ? lsf_node_get(st->node, name) : NULL;
    return n ? n : st->node;
}

/* ---- filling batches --------------------------------------------------- */

void lsf_ingest_init(lsf_ingest *in, lsf_stage *st)
{
    memset(in, 0, sizeof(*in));
    in->p = st->pipeline;
    in->input = (uint16_t)st->index;
    in->gen = 1;
    in->c_records = lsf_counter_new(st->name, "received");
    in->c_bytes = lsf_counter_new(st->name, "bytes");
    in->c_truncated = lsf_counter_new(st->name, "truncated");
    in->c_empty = lsf_counter_new(st->name, "empty");
    in->c_incomplete = lsf_counter_new(st->name, "incomplete");
    in->c_bad_count = lsf_counter_new(st->name, "framing_errors");
}

static void submit(lsf_ingest *in)
{
    if (in->on_submit && in->b->n)
        in->on_submit(in->on_submit_arg, in->b);
    lsf_pipeline_submit(in->p, in->b);
}

static void next_batch(lsf_ingest *in)
{
    if (in->b)
        submit(in);
    in->b = lsf_pipeline_batch_get(in->p);
    in->gen++;
}

lsf_event *lsf_ingest_push(lsf_ingest *in, const char *rec, size_t len, int truncated)
{
    if (!in->b || (in->b->n && in->b->bytes + len > LSF_INGEST_BATCH_BYTES))
        next_batch(in);
    lsf_event *ev = lsf_batch_push_record(in->b, rec, len, in->now_ns);
    if (!ev) {
        next_batch(in);
        ev = lsf_batch_push_record(in->b, rec, len, in->now_ns);
        if (!ev)
            lsf_die("a new batch cannot hold one event");
    }
    ev->input = in->input;
    in->records++;
    if (truncated) {
        ev->flags |= LSF_EV_TRUNCATED;
        in->truncated++;
    }
    return ev;
}

static void publish(lsf_counter *c, uint64_t *v)
{
    if (*v) {
        lsf_counter_add(c, *v);
        *v = 0;
    }
}

void lsf_ingest_flush(lsf_ingest *in)
{
    if (in->b) {
        submit(in);
        in->b = NULL;
        in->gen++;
    }
    publish(in->c_records, &in->records);
    publish(in->c_bytes, &in->bytes);
    publish(in->c_truncated, &in->truncated);
    publish(in->c_empty, &in->fst.empty);
    publish(in->c_incomplete, &in->fst.incomplete);
    publish(in->c_bad_count, &in->fst.bad_count);
    in->fst.records = in->fst.truncated = 0; /* counted by lsf_ingest_push */
}

/* ---- reading a byte stream --------------------------------------------- */

#define STREAM_BUF_BYTES (1u << 20)

static void stream_record(void *arg, const char *rec, size_t len, int truncated)
{
    lsf_stream *s = arg;
    lsf_ingest_push(s->in, rec, len, truncated);
}

void lsf_stream_init(lsf_stream *s, lsf_ingest *in, enum lsf_framing mode, size_t max_bytes)
{
    memset(s, 0, sizeof(*s));
    s->in = in;
    lsf_frame_init(&s->fr, mode, max_bytes, &in->fst);
    s->cap = lsf_frame_buf_min(&s->fr);
    if (s->cap < STREAM_BUF_BYTES)
        s->cap = STREAM_BUF_BYTES;
    s->buf = malloc(s->cap);
    if (!s->buf)
        lsf_die("out of memory (read buffer of %zu bytes)", s->cap);
}

void lsf_stream_deinit(lsf_stream *s)
{
    free(s->buf);
    s->buf = NULL;
}

ssize_t lsf_stream_read(lsf_stream *s, int fd)
{
    ssize_t n = read(fd, s->buf + s->have, s->cap - s->have);
    if (n < 0)
        return -errno;
    if (n == 0)
        return 0;
    size_t total = s->have + (size_t)n;
    s->in->bytes += (uint64_t)n;
    s->in->now_ns = lsf_now_real_ns();
    size_t used = lsf_frame_feed(&s->fr, s->buf, total, stream_record, s);
    s->have = total - used;
    if (used && s->have)
        memmove(s->buf, s->buf + used, s->have);
    return n;
}

void lsf_stream_finish(lsf_stream *s)
{
    s->in->now_ns = lsf_now_real_ns();
    lsf_frame_finish(&s->fr, s->buf, s->have, stream_record, s);
    s->have = 0;
}

void lsf_stream_discard(lsf_stream *s)
{
    if (s->have)
        s->in->fst.incomplete++;
    s->have = 0;
    lsf_frame_reset(&s->fr);
}
