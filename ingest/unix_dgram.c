/* unix_dgram.c - the `unix_dgram` input: a unix datagram socket, one
 * datagram one record, e.g. to stand in for /dev/log (what syslog(3) and
 * logger write to).
 *
 * Design: the socket is created and bound here (a stale socket file left by
 * a crash is replaced; any other file at the path is an error) with the
 * configured permission bits, then handed to the datagram machinery shared
 * with syslog_udp (ingest/dgram.h). The socket file is removed at exit.
 * Threads: init/stop/destroy on the main thread; reception on the I/O
 * thread.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "core/log.h"
#include "core/pipeline.h"
#include "ingest/dgram.h"
#include "ingest/listen.h"

typedef struct unix_conf {
    lsf_input_conf common;
    char *path;
    char *mode;
    int64_t receive_buffer;
    int64_t max_message_size;
} unix_conf;

typedef struct unix_ctx {
    lsf_dgram d;
    bool bound; /* the socket file is ours to remove */
} unix_ctx;

static const lsf_key unix_keys[] = {
    LSF_INPUT_KEYS(unix_conf),
    {"path", LSF_K_STR, NULL, "Socket file to create, e.g. /dev/log or /run/logsift/log.",
     offsetof(unix_conf, path), NULL, 0, 0, true},
    {"mode", LSF_K_STR, "0666", "Permission bits of the socket file, in octal.",
     offsetof(unix_conf, mode), NULL, 0, 0, false},
    {"receive_buffer", LSF_K_SIZE, "4MiB",
     "Socket receive buffer; bursts beyond it make senders wait (unix sockets do not drop).",
     offsetof(unix_conf, receive_buffer), NULL, 0, 1LL << 30, false},
    {"max_message_size", LSF_K_SIZE, "64KiB",
     "Longer datagrams are truncated to this size and tagged _truncated.",
     offsetof(unix_conf, max_message_size), NULL, 16, 64 << 20, false},
    LSF_KEYS_END,
};

static int unix_init(lsf_stage *st, lsf_errbuf *err)
{
    unix_ctx *u = st->ctx;
    const unix_conf *cf = st->conf;
    const lsf_node *at = lsf_key_node(st, "path");
    struct sockaddr_un sun = {.sun_family = AF_UNIX};
    char *end;
    long mode = strtol(cf->mode, &end, 8);
    if (!*cf->mode || *end || mode < 0 || mode > 07777)
        return lsf_node_error(err, lsf_key_node(st, "mode"), "mode must be octal, like 0660");
    if (strlen(cf->path) >= sizeof(sun.sun_path))
        return lsf_node_error(err, at, "socket path is longer than %zu bytes", sizeof(sun.sun_path) - 1);
    strcpy(sun.sun_path, cf->path);
    struct stat sb;
    if (lstat(cf->path, &sb) == 0) {
        if (!S_ISSOCK(sb.st_mode))
            return lsf_node_error(err, at, "%s exists and is not a socket", cf->path);
        unlink(cf->path); /* left by an earlier run */
    }
    int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return lsf_node_error(err, at, "socket: %s", strerror(errno));
    if (bind(fd, (struct sockaddr *)&sun, sizeof(sun)) < 0) {
        int e = errno;
        close(fd);
        return lsf_node_error(err, at, "cannot bind %s: %s", cf->path, strerror(e));
    }
    u->bound = true;
    if (chmod(cf->path, (mode_t)mode) < 0)
        lsf_warn("%s: chmod %s: %s", st->name, cf->path, strerror(errno));
    lsf_dgram_setup(&u->d, st, fd, cf->receive_buffer, cf->max_message_size);
    return 0;
}

static int unix_start(lsf_stage *st)
{
    unix_ctx *u = st->ctx;
    const unix_conf *cf = st->conf;
    char what[300];
    snprintf(what, sizeof(what), "%s (unix datagram socket)", cf->path);
    return lsf_dgram_start(&u->d, what);
}

static void unix_stop(lsf_stage *st)
{
    unix_ctx *u = st->ctx;
    lsf_dgram_stop(&u->d);
}

static void unix_destroy(lsf_stage *st)
{
    unix_ctx *u = st->ctx;
    const unix_conf *cf = st->conf;
    lsf_dgram_destroy(&u->d);
    if (u->bound && unlink(cf->path) < 0 && errno != ENOENT)
        lsf_warn("%s: cannot remove %s: %s", st->name, cf->path, strerror(errno));
    u->bound = false;
}

const lsf_stage_def lsf_stage_unix_dgram = {
    .name = "unix_dgram",
    .kind = LSF_STAGE_INPUT,
    .help = "A unix datagram socket (e.g. /dev/log): one datagram is one message.",
    .keys = unix_keys,
    .conf_size = sizeof(unix_conf),
    .ctx_size = sizeof(unix_ctx),
    .init = unix_init,
    .start = unix_start,
    .stop = unix_stop,
    .destroy = unix_destroy,
};
