/* sendlines.c - loopback load and test client for the syslog inputs.
 *
 *   sendlines --tcp|--udp HOST:PORT [--conns N] [--octet] [--count N]
 *             [--file F] [--prefix S] [--rate LINES_PER_S]
 *
 * Sends --count lines in total (default 1000, or the file's line count),
 * split evenly over N concurrent connections (TCP) or sockets (UDP). Lines
 * come from F (repeated as needed) or are generated as
 *   <13>Mar  3 10:00:01 host app[1]: PREFIX conn=C seq=S
 * with S counting from 0 on each connection, so a test can check that every
 * line arrived exactly once and in order (tests/tools/evcheck.py seq). TCP
 * frames lines with "\n" or, with --octet, RFC 6587 "LEN SP MSG"; UDP sends
 * one line per datagram. After sending, a TCP connection half-closes and
 * waits (up to 10 s) for the server to close, so when sendlines exits the
 * server has read everything. Prints lines/s to stderr; exits 1 on any
 * connect or send error, 2 on bad usage.
 *
 * Design: one thread per connection, each filling a 256 KiB buffer of
 * frames per send (sendmmsg of 64 datagrams for UDP), so the client is not
 * the bottleneck of a benchmark.
 * Threads: the sender threads share only read-only options and the file.
 */
#include <errno.h>
#include <getopt.h>
#include <netdb.h>
#include <poll.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define BUF_BYTES (256u << 10)
#define UDP_VLEN 64
#define LINE_MAX_BYTES 65536

typedef struct opts {
    bool tcp, octet;
    long conns;
    long long count;
    double rate; /* lines/s in total; 0: as fast as possible */
    const char *prefix;
    struct sockaddr_storage addr;
    socklen_t addrlen;
    /* --file: lines without their "\n" */
    char **lines;
    size_t *lens;
    size_t nlines;
} opts;

typedef struct sender {
    const opts *o;
    pthread_t thread;
    long id;
    long long count, sent;
    char err[256];
} sender;

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void usage(void)
{
    fprintf(stderr, "usage: sendlines --tcp|--udp HOST:PORT [--conns N] [--octet] [--count N]\n"
                    "                 [--file F] [--prefix S] [--rate LINES_PER_S]\n");
    exit(2);
}

/* "host:port" or "[v6]:port" -> address. */
static int resolve(const char *spec, bool tcp, struct sockaddr_storage *ss, socklen_t *len)
{
    char host[256];
    const char *port;
    if (spec[0] == '[') {
        const char *close = strchr(spec, ']');
        if (!close || close[1] != ':' || (size_t)(close - spec - 1) >= sizeof(host))
            return -1;
        memcpy(host, spec + 1, (size_t)(close - spec - 1));
        host[close - spec - 1] = '\0';
        port = close + 2;
    } else {
        const char *colon = strrchr(spec, ':');
        if (!colon || (size_t)(colon - spec) >= sizeof(host))
            return -1;
        memcpy(host, spec, (size_t)(colon - spec));
        host[colon - spec] = '\0';
        port = colon + 1;
    }
    struct addrinfo hints = {0}, *res;
    hints.ai_socktype = tcp ? SOCK_STREAM : SOCK_DGRAM;
    if (getaddrinfo(host, port, &hints, &res) != 0)
        return -1;
    memcpy(ss, res->ai_addr, res->ai_addrlen);
    *len = res->ai_addrlen;
    freeaddrinfo(res);
    return 0;
}

/* Writes line `seq` of connection `id` (without terminator) into out. */
static size_t make_line(const sender *s, long long seq, char *out, size_t cap)
{
    const opts *o = s->o;
    if (o->nlines) {
        /* Spread the file over connections so their lines differ. */
        size_t i = (size_t)(((long long)s->id + seq * o->conns) % (long long)o->nlines);
        size_t n = o->lens[i] < cap ? o->lens[i] : cap;
        memcpy(out, o->lines[i], n);
        return n;
    }
    int n = snprintf(out, cap, "<13>Mar  3 10:00:01 host app[1]: %s conn=%ld seq=%lld", o->prefix,
                     s->id, seq);
    return n < 0 ? 0 : (size_t)n < cap ? (size_t)n : cap - 1;
}

/* Sleeps so that `done` lines took at least done / rate seconds. */
static void pace(const sender *s, double t0, long long done)
{
    if (s->o->rate <= 0)
        return;
    double per_conn = s->o->rate / (double)s->o->conns;
    double due = t0 + (double)done / per_conn, now = now_s();
    if (due > now) {
        double d = due - now;
        struct timespec ts = {(time_t)d, (long)((d - (double)(time_t)d) * 1e9)};
        nanosleep(&ts, NULL);
    }
}

static int send_all(int fd, const char *p, size_t n, char *err, size_t errlen)
{
    while (n) {
        ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            snprintf(err, errlen, "send: %s", strerror(errno));
            return -1;
        }
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

static void run_tcp(sender *s, int fd)
{
    char *buf = malloc(BUF_BYTES + LINE_MAX_BYTES + 32);
    char *line = malloc(LINE_MAX_BYTES);
    if (!buf || !line) {
        snprintf(s->err, sizeof(s->err), "out of memory");
        goto out;
    }
    double t0 = now_s();
    size_t used = 0;
    for (long long seq = 0; seq < s->count; seq++) {
        size_t n = make_line(s, seq, line, LINE_MAX_BYTES);
        if (s->o->octet)
            used += (size_t)sprintf(buf + used, "%zu ", n);
        memcpy(buf + used, line, n);
        used += n;
        if (!s->o->octet)
            buf[used++] = '\n';
        bool flush = used >= BUF_BYTES || seq + 1 == s->count ||
                     (s->o->rate > 0 && (seq + 1) % 64 == 0);
        if (flush) {
            if (send_all(fd, buf, used, s->err, sizeof(s->err)) < 0)
                goto out;
            s->sent = seq + 1;
            used = 0;
            pace(s, t0, s->sent);
        }
    }
    /* Half-close and wait for the server to close: it has read everything. */
    shutdown(fd, SHUT_WR);
    struct pollfd pf = {.fd = fd, .events = POLLIN};
    double deadline = now_s() + 10;
    while (now_s() < deadline && poll(&pf, 1, 100) >= 0) {
        if (!pf.revents)
            continue;
        ssize_t r = recv(fd, line, LINE_MAX_BYTES, 0);
        if (r <= 0)
            break;
    }
out:
    free(buf);
    free(line);
}

static void run_udp(sender *s, int fd)
{
    char *bufs = malloc((size_t)UDP_VLEN * LINE_MAX_BYTES);
    struct mmsghdr msgs[UDP_VLEN];
    struct iovec iov[UDP_VLEN];
    if (!bufs) {
        snprintf(s->err, sizeof(s->err), "out of memory");
        return;
    }
    double t0 = now_s();
    long long seq = 0;
    while (seq < s->count) {
        int n = 0;
        for (; n < UDP_VLEN && seq + n < s->count; n++) {
            char *b = bufs + (size_t)n * LINE_MAX_BYTES;
            iov[n].iov_base = b;
            iov[n].iov_len = make_line(s, seq + n, b, LINE_MAX_BYTES);
            memset(&msgs[n], 0, sizeof(msgs[n]));
            msgs[n].msg_hdr.msg_iov = &iov[n];
            msgs[n].msg_hdr.msg_iovlen = 1;
        }
        int off = 0;
        while (off < n) {
            int w = sendmmsg(fd, msgs + off, (unsigned)(n - off), 0);
            if (w < 0) {
                if (errno == EINTR)
                    continue;
                if (errno == ENOBUFS || errno == EAGAIN) {
                    struct timespec ts = {0, 100000};
                    nanosleep(&ts, NULL);
                    continue;
                }
                snprintf(s->err, sizeof(s->err), "sendmmsg: %s", strerror(errno));
                free(bufs);
                return;
            }
            off += w;
        }
        seq += n;
        s->sent = seq;
        pace(s, t0, seq);
    }
    free(bufs);
}

static void *sender_main(void *arg)
{
    sender *s = arg;
    const opts *o = s->o;
    int fd = socket(o->addr.ss_family, (o->tcp ? SOCK_STREAM : SOCK_DGRAM) | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        snprintf(s->err, sizeof(s->err), "socket: %s", strerror(errno));
        return NULL;
    }
    if (connect(fd, (const struct sockaddr *)&o->addr, o->addrlen) < 0) {
        snprintf(s->err, sizeof(s->err), "connect: %s", strerror(errno));
        close(fd);
        return NULL;
    }
    if (o->tcp)
        run_tcp(s, fd);
    else
        run_udp(s, fd);
    close(fd);
    return NULL;
}

static int load_file(opts *o, const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return -1;
    char *line = NULL;
    size_t cap = 0;
    ssize_t n;
    while ((n = getline(&line, &cap, f)) >= 0) {
        if (n && line[n - 1] == '\n')
            n--;
        if (n > LINE_MAX_BYTES - 32)
            n = LINE_MAX_BYTES - 32;
        o->lines = realloc(o->lines, (o->nlines + 1) * sizeof(*o->lines));
        o->lens = realloc(o->lens, (o->nlines + 1) * sizeof(*o->lens));
        if (!o->lines || !o->lens)
            return -1;
        o->lines[o->nlines] = malloc((size_t)n + 1);
        if (!o->lines[o->nlines])
            return -1;
        memcpy(o->lines[o->nlines], line, (size_t)n);
        o->lens[o->nlines++] = (size_t)n;
    }
    free(line);
    fclose(f);
    return 0;
}

int main(int argc, char **argv)
{
    opts o = {.conns = 1, .count = -1, .prefix = "sendlines"};
    const char *target = NULL, *file = NULL;
    int mode = 0;
    static const struct option longopts[] = {
        {"tcp", required_argument, NULL, 't'},   {"udp", required_argument, NULL, 'u'},
        {"conns", required_argument, NULL, 'c'}, {"octet", no_argument, NULL, 'o'},
        {"count", required_argument, NULL, 'n'}, {"file", required_argument, NULL, 'f'},
        {"prefix", required_argument, NULL, 'p'}, {"rate", required_argument, NULL, 'r'},
        {"help", no_argument, NULL, 'h'},        {NULL, 0, NULL, 0}};
    int opt;
    while ((opt = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
        switch (opt) {
        case 't':
        case 'u':
            if (mode)
                usage();
            mode = opt;
            target = optarg;
            break;
        case 'c':
            o.conns = strtol(optarg, NULL, 10);
            break;
        case 'o':
            o.octet = true;
            break;
        case 'n':
            o.count = strtoll(optarg, NULL, 10);
            break;
        case 'f':
            file = optarg;
            break;
        case 'p':
            o.prefix = optarg;
            break;
        case 'r':
            o.rate = strtod(optarg, NULL);
            break;
        default:
            usage();
        }
    }
    if (!mode || optind != argc || o.conns < 1 || o.conns > 100000 || o.count < -1)
        usage();
    o.tcp = mode == 't';
    if (resolve(target, o.tcp, &o.addr, &o.addrlen) < 0) {
        fprintf(stderr, "sendlines: cannot resolve %s (want HOST:PORT or [IPv6]:PORT)\n", target);
        return 2;
    }
    if (file) {
        if (load_file(&o, file) < 0) {
            fprintf(stderr, "sendlines: cannot read %s: %s\n", file, strerror(errno));
            return 1;
        }
        if (o.nlines == 0) {
            fprintf(stderr, "sendlines: %s has no lines\n", file);
            return 1;
        }
    }
    if (o.count < 0)
        o.count = file ? (long long)o.nlines : 1000;

    sender *s = calloc((size_t)o.conns, sizeof(*s));
    if (!s)
        return 1;
    double t0 = now_s();
    long started = 0;
    for (long i = 0; i < o.conns; i++) {
        s[i].o = &o;
        s[i].id = i;
        s[i].count = o.count / o.conns + (i < o.count % o.conns ? 1 : 0);
        int rc = pthread_create(&s[i].thread, NULL, sender_main, &s[i]);
        if (rc) {
            snprintf(s[i].err, sizeof(s[i].err), "pthread_create: %s", strerror(rc));
            break;
        }
        started++;
    }
    long long sent = 0;
    int errors = 0;
    for (long i = 0; i < o.conns; i++) {
        if (i < started)
            pthread_join(s[i].thread, NULL);
        sent += s[i].sent;
        errors += s[i].err[0] != '\0';
    }
    double dt = now_s() - t0;
    fprintf(stderr, "sendlines: %lld of %lld lines over %ld %s connection%s in %.3f s: %.0f lines/s\n",
            sent, o.count, o.conns, o.tcp ? "TCP" : "UDP", o.conns == 1 ? "" : "s", dt,
            dt > 0 ? (double)sent / dt : 0.0);
    /* Errors last, so `tail -n 1` of the output names one. */
    for (long i = 0, shown = 0; i < o.conns && shown < 5; i++)
        if (s[i].err[0]) {
            fprintf(stderr, "sendlines: connection %ld: %s\n", i, s[i].err);
            shown++;
        }
    for (size_t i = 0; i < o.nlines; i++)
        free(o.lines[i]);
    free(o.lines);
    free(o.lens);
    free(s);
    return errors ? 1 : 0;
}
