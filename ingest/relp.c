/* relp.c - the `relp` input: RELP (the Reliable Event Logging Protocol of
 * rsyslog's omrelp) with librelp; each message is acknowledged to the
 * sender only once logsift has it in a durable place.
 *
 * The one design choice to know: librelp answers a message ("rsp 200 OK")
 * when its receive callback returns, so the callback hands the message to
 * the pipeline as a batch with an lsf_ack and waits until every sink has
 * durably taken it (written it, or spooled it). A message logsift could
 * not deliver is answered with an error and the sender resends it; one
 * received but unanswered when logsift stops or dies is resent by the
 * sender after it reconnects (RELP keeps it in its window), so a restart
 * loses nothing (it may deliver such a message twice). This makes each
 * session one message per pipeline round trip; rsyslog opens one session
 * per action, and several actions or senders run in parallel.
 * Threads: init/start/stop/destroy on the main thread; librelp's engine and
 * the receive callback on the stage's own thread; acks on worker or sink
 * threads (they only signal the waiting callback).
 */
#include <dirent.h>
#include <errno.h>
#include <librelp.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <time.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "core/ioloop.h"
#include "core/log.h"
#include "core/metrics.h"
#include "core/pipeline.h"
#include "ingest/listen.h"

typedef struct relp_conf {
    lsf_input_conf common;
    char *listen;
    char *port_file;
    int64_t max_message_size;
} relp_conf;

typedef struct relp_ctx {
    lsf_stage *st;
    const relp_conf *conf;
    bool inited, running;
    relpEngine_t *eng;
    pthread_t thread;
    int port;
    int shutdown_now; /* librelp's "stop at once" flag */
    lsf_ingest in;
    /* the message waiting for its ack */
    pthread_mutex_t lock;
    pthread_cond_t cond;
    uint64_t next_token, acked_token;
    bool acked_ok;
    lsf_addr_cache addr_cache;
    lsf_counter *c_failed, *c_errors;
} relp_ctx;

static const lsf_key relp_keys[] = {
    LSF_INPUT_KEYS(relp_conf),
    {"listen", LSF_K_STR, "127.0.0.1:2514",
     "Address to listen on: host:port, [IPv6]:port or *:port; port 0 picks a free port.",
     offsetof(relp_conf, listen), NULL, 0, 0, false},
    {"port_file", LSF_K_STR, NULL,
     "Write the bound port to this file (atomically) once listening; useful with port 0.",
     offsetof(relp_conf, port_file), NULL, 0, 0, false},
    {"max_message_size", LSF_K_SIZE, "64KiB",
     "Longer messages are truncated to this size and tagged _truncated.",
     offsetof(relp_conf, max_message_size), NULL, 16, 64 << 20, false},
    LSF_KEYS_END,
};

/* ---- acknowledgement ------------------------------------------------------ */

static void on_ack(void *arg, uint64_t token, bool ok)
{
    relp_ctx *r = arg;
    pthread_mutex_lock(&r->lock);
    r->acked_token = token;
    r->acked_ok = ok;
    pthread_cond_broadcast(&r->cond);
    pthread_mutex_unlock(&r->lock);
}

static void on_submit(void *arg, lsf_batch *b)
{
    relp_ctx *r = arg;
    b->ack = lsf_ack_new(on_ack, r, ++r->next_token);
}

static relpRetVal on_syslog(void *usr, unsigned char *host, unsigned char *ip, unsigned char *msg,
                            size_t len)
{
    relp_ctx *r = usr;
    (void)host;
    int truncated = len > (size_t)r->conf->max_message_size;
    if (truncated)
        len = (size_t)r->conf->max_message_size;
    while (len && (msg[len - 1] == '\n' || msg[len - 1] == '\r' || msg[len - 1] == '\0'))
        len--;
    if (len == 0) {
        r->in.fst.empty++;
        return RELP_RET_OK;
    }
    r->in.now_ns = lsf_now_real_ns();
    r->in.bytes += len;
    lsf_event *ev = lsf_ingest_push(&r->in, (const char *)msg, len, truncated);
    if (ip) {
        r->addr_cache.gen = 0; /* one message per batch: copy every time */
        ev->source_addr = lsf_ingest_addr(&r->in, &r->addr_cache, (const char *)ip, strlen((char *)ip));
    }
    lsf_ingest_flush(&r->in);
    uint64_t token = r->next_token;
    pthread_mutex_lock(&r->lock);
    while (r->acked_token != token)
        pthread_cond_wait(&r->cond, &r->lock);
    bool ok = r->acked_ok;
    pthread_mutex_unlock(&r->lock);
    if (!ok) {
        lsf_counter_add(r->c_failed, 1);
        return RELP_RET_IO_ERR; /* answered with an error: the sender resends */
    }
    return RELP_RET_OK;
}

/* ---- librelp plumbing --------------------------------------------------------- */

static void on_err(void *usr, char *obj, char *msg, relpRetVal code)
{
    relp_ctx *r = usr;
    lsf_counter_add(r->c_errors, 1);
    lsf_warn("%s: %s: %s (librelp %d)", r->st->name, obj ? obj : "relp", msg ? msg : "", code);
}

static void on_generic_err(char *obj, char *msg, relpRetVal code)
{
    lsf_warn("relp: %s: %s (librelp %d)", obj ? obj : "relp", msg ? msg : "", code);
}

static void on_auth_err(void *usr, char *info, char *msg, relpRetVal code)
{
    on_err(usr, info, msg, code);
}

/* librelp calls its debug hook whether or not debugging is on. */
static void no_debug(char *fmt, ...)
{
    (void)fmt;
}

/* librelp does not tell which port it bound: the listening sockets it
 * opened are the ones not open before. */
static int listening_port(const fd_set *before, int maxfd)
{
    DIR *d = opendir("/proc/self/fd");
    if (!d)
        return -1;
    struct dirent *de;
    int port = -1;
    while ((de = readdir(d))) {
        int fd = atoi(de->d_name);
        if (de->d_name[0] == '.' || (fd < maxfd && FD_ISSET(fd, before)))
            continue;
        int acc = 0;
        socklen_t l = sizeof(acc);
        if (getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &acc, &l) == 0 && acc)
            port = lsf_socket_port(fd);
    }
    closedir(d);
    return port;
}

static void snapshot_fds(fd_set *s, int *maxfd)
{
    FD_ZERO(s);
    *maxfd = FD_SETSIZE;
    DIR *d = opendir("/proc/self/fd");
    if (!d)
        return;
    struct dirent *de;
    while ((de = readdir(d))) {
        int fd = atoi(de->d_name);
        if (de->d_name[0] != '.' && fd >= 0 && fd < FD_SETSIZE && fd != dirfd(d))
            FD_SET(fd, s);
    }
    closedir(d);
}

static int relp_init(lsf_stage *st, lsf_errbuf *err)
{
    relp_ctx *r = st->ctx;
    const relp_conf *cf = st->conf;
    const lsf_node *at = lsf_key_node(st, "listen");
    r->st = st;
    r->conf = cf;
    pthread_mutex_init(&r->lock, NULL);
    pthread_cond_init(&r->cond, NULL);
    r->inited = true;
    lsf_ingest_init(&r->in, st);
    r->in.on_submit = on_submit;
    r->in.on_submit_arg = r;
    r->c_failed = lsf_counter_new(st->name, "answered_error");
    r->c_errors = lsf_counter_new(st->name, "errors");

    struct sockaddr_storage ss;
    socklen_t sl;
    char msg[512], host[256] = "", portstr[16];
    if (lsf_addr_parse(cf->listen, SOCK_STREAM, &ss, &sl, msg, sizeof(msg)) < 0)
        return lsf_node_error(err, at, "%s", msg);
    /* librelp wants the host and port as text */
    const char *colon = strrchr(cf->listen, ':');
    snprintf(portstr, sizeof(portstr), "%s", colon + 1);
    size_t hl = (size_t)(colon - cf->listen);
    if (cf->listen[0] == '[' && hl >= 2)
        snprintf(host, sizeof(host), "%.*s", (int)(hl - 2), cf->listen + 1);
    else if (!(hl == 1 && cf->listen[0] == '*'))
        snprintf(host, sizeof(host), "%.*s", (int)hl, cf->listen);

    relpSrv_t *srv = NULL;
    if (relpEngineConstruct(&r->eng) != RELP_RET_OK)
        lsf_die("out of memory (librelp)");
    relpEngineSetDbgprint(r->eng, no_debug);
    relpEngineSetShutdownImmdtPtr(r->eng, &r->shutdown_now);
    relpEngineSetEnableCmd(r->eng, (unsigned char *)"syslog", eRelpCmdState_Required);
    relpEngineSetSyslogRcv2(r->eng, on_syslog);
    relpEngineSetOnErr(r->eng, on_err);
    relpEngineSetOnGenericErr(r->eng, on_generic_err);
    relpEngineSetOnAuthErr(r->eng, on_auth_err);
    relpEngineSetDnsLookupMode(r->eng, 0);
    if (relpEngineListnerConstruct(r->eng, &srv) != RELP_RET_OK)
        lsf_die("out of memory (librelp listener)");
    relpSrvSetLstnPort(srv, (unsigned char *)portstr);
    if (host[0])
        relpSrvSetLstnAddr(srv, (unsigned char *)host);
    relpSrvSetUsrPtr(srv, r);
    relpSrvSetMaxDataSize(srv, (size_t)cf->max_message_size + 64);
    relpSrvSetOversizeMode(srv, 2 /* truncate */);
    fd_set before;
    int maxfd;
    snapshot_fds(&before, &maxfd);
    relpRetVal rc = relpEngineListnerConstructFinalize(r->eng, srv);
    if (rc != RELP_RET_OK)
        return lsf_node_error(err, at, "cannot listen on %s (librelp error %d)", cf->listen, rc);
    r->port = listening_port(&before, maxfd);
    if (r->port < 0)
        return lsf_node_error(err, at, "cannot listen on %s", cf->listen);
    return 0;
}

static void *relp_main(void *arg)
{
    relp_ctx *r = arg;
    relpEngineRun(r->eng);
    lsf_ingest_flush(&r->in);
    return NULL;
}

static int relp_start(lsf_stage *st)
{
    relp_ctx *r = st->ctx;
    int rc = pthread_create(&r->thread, NULL, relp_main, r);
    if (rc) {
        lsf_err("%s: cannot start a thread: %s", st->name, strerror(rc));
        return -1;
    }
    r->running = true;
    if (r->conf->port_file && (rc = lsf_port_file_write(r->conf->port_file, r->port)) < 0) {
        lsf_err("%s: cannot write port_file %s: %s", st->name, r->conf->port_file, strerror(-rc));
        return -1;
    }
    lsf_info("%s: listening on %s (RELP port %d)", st->name, r->conf->listen, r->port);
    return 0;
}

/* Connects to the listener and closes at once. */
static void poke(relp_ctx *r)
{
    struct sockaddr_storage ss;
    socklen_t sl;
    char msg[256];
    if (lsf_addr_parse(r->conf->listen, SOCK_STREAM, &ss, &sl, msg, sizeof(msg)) < 0)
        return;
    if (ss.ss_family == AF_INET) {
        struct sockaddr_in *sin = (struct sockaddr_in *)&ss;
        if (sin->sin_addr.s_addr == htonl(INADDR_ANY))
            sin->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        sin->sin_port = htons((uint16_t)r->port);
    } else {
        struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&ss;
        if (IN6_IS_ADDR_UNSPECIFIED(&sin6->sin6_addr))
            sin6->sin6_addr = in6addr_loopback;
        sin6->sin6_port = htons((uint16_t)r->port);
    }
    int fd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return;
    connect(fd, (struct sockaddr *)&ss, sl);
    close(fd);
}

/* Stops the engine: a message being handled is finished (its ack comes
 * while the workers still run) and answered; the rest of a sender's window
 * stays unanswered and is resent after a restart. */
static void relp_stop(lsf_stage *st)
{
    relp_ctx *r = st->ctx;
    if (!r->running)
        return;
    relpEngineSetStop(r->eng);
    /* librelp's loop waits in epoll without a timeout and is not woken by
     * the stop flag: a connection to its own port wakes it. */
    for (;;) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_nsec += 100000000L;
        if (ts.tv_nsec >= 1000000000L) {
            ts.tv_sec++;
            ts.tv_nsec -= 1000000000L;
        }
        poke(r);
        if (pthread_timedjoin_np(r->thread, NULL, &ts) == 0)
            break;
    }
    r->running = false;
}

static void relp_destroy(lsf_stage *st)
{
    relp_ctx *r = st->ctx;
    if (!r->inited)
        return;
    relp_stop(st);
    if (r->eng)
        relpEngineDestruct(&r->eng);
    lsf_ingest_flush(&r->in); /* publishes the counters */
    pthread_mutex_destroy(&r->lock);
    pthread_cond_destroy(&r->cond);
    r->inited = false;
}

const lsf_stage_def lsf_stage_relp = {
    .name = "relp",
    .kind = LSF_STAGE_INPUT,
    .help = "RELP (rsyslog's omrelp): each message is acknowledged once every sink durably took it.",
    .keys = relp_keys,
    .conf_size = sizeof(relp_conf),
    .ctx_size = sizeof(relp_ctx),
    .init = relp_init,
    .start = relp_start,
    .stop = relp_stop,
    .destroy = relp_destroy,
};
