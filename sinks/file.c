/* file.c - the `file` sink: appends each batch's JSON lines to a file.
 *
 * Design: the file is opened O_APPEND|O_CREAT and each batch is written with
 * write(2) until every byte is out, so lines are never interleaved or split
 * by a concurrent writer's seek. SIGHUP (logrotate's rename + HUP) only sets
 * an atomic flag; the next deliver opens the path again before it writes and
 * then closes the old descriptor, so no batch is written to the old file
 * after the signal and no descriptor is swapped under a running write. If the
 * path cannot be opened again, writing continues to the old file and every
 * later batch retries the open. A failed write fails the batch (counted in
 * <name>.write_errors, logged once per run of failures); the next batch tries
 * again.
 * Threads: init/flush/destroy on the main thread while no deliver runs;
 * reopen on the main thread at any time (it touches only the atomic flag);
 * deliver on one worker at a time, in batch order.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <stdatomic.h>
#include <stddef.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/log.h"
#include "core/metrics.h"
#include "core/stage.h"
#include "sinks/json_out.h"
#include "sinks/kinds.h"
#include "write_all.h"

typedef struct file_conf {
    char *path;
    char *mode; /* octal text, parsed by init */
    bool fsync;
    lsf_strlist kinds;
} file_conf;

static const lsf_key file_keys[] = {
    {"path", LSF_K_STR, NULL,
     "File to append JSON lines to; created when missing and opened again on SIGHUP (logrotate).",
     offsetof(file_conf, path), NULL, 0, 0, true},
    {"mode", LSF_K_STR, "0640",
     "Permission bits, in octal, of a file the sink creates (the umask still applies).",
     offsetof(file_conf, mode), NULL, 0, 0, false},
    {"fsync", LSF_K_BOOL, "false",
     "Flush every batch to disk (fdatasync) before the next one: slower, survives a crash.",
     offsetof(file_conf, fsync), NULL, 0, 0, false},
    {"kinds", LSF_K_STRLIST, NULL, LSF_KINDS_HELP, offsetof(file_conf, kinds), NULL, 0, 0, false},
    LSF_KEYS_END,
};

typedef struct file_ctx {
    int fd;
    bool open;             /* fd is ours to close */
    mode_t mode;
    atomic_bool reopen;    /* set by reopen (SIGHUP), honoured by deliver */
    bool reopen_failing;   /* the last attempt to open the path again failed */
    bool failing;          /* the last batch failed: do not log again */
    uint64_t failed_batches;
    lsf_outbuf filtered;   /* the lines `kinds` keeps */
    lsf_counter *events, *bytes, *errors;
} file_ctx;

static int open_path(const char *path, mode_t mode)
{
    int fd;
    do
        fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NOCTTY, mode);
    while (fd < 0 && errno == EINTR);
    return fd;
}

/* "0640" or "640": octal permission bits up to 07777; -1 when invalid. */
static long parse_mode(const char *s)
{
    long v = 0;
    if (!s || !*s)
        return -1;
    for (; *s; s++) {
        if (*s < '0' || *s > '7' || v > 07777)
            return -1;
        v = v * 8 + (*s - '0');
    }
    return v > 07777 ? -1 : v;
}

static const lsf_node *key_node(const lsf_stage *st, const char *key)
{
    const lsf_node *n = lsf_node_get(st->node, key);
    return n ? n : st->node;
}

static int file_init(lsf_stage *st, lsf_errbuf *err)
{
    const file_conf *conf = st->conf;
    file_ctx *c = st->ctx;
    if (!conf->path || !*conf->path)
        return lsf_node_error(err, key_node(st, "path"), "path: must not be empty");
    long mode = parse_mode(conf->mode);
    if (mode < 0)
        return lsf_node_error(err, key_node(st, "mode"),
                              "mode: expected octal permission bits such as 0640, got '%s'",
                              conf->mode ? conf->mode : "");
    c->mode = (mode_t)mode;
    if (lsf_kinds_check(&conf->kinds, key_node(st, "kinds"), err) < 0)
        return -1;
    lsf_outbuf_init(&c->filtered);
    c->fd = open_path(conf->path, c->mode);
    if (c->fd < 0)
        return lsf_node_error(err, key_node(st, "path"), "path: cannot open '%s': %s", conf->path,
                              strerror(errno));
    c->open = true;
    atomic_init(&c->reopen, false);
    c->events = lsf_counter_new(st->name, "events");
    c->bytes = lsf_counter_new(st->name, "bytes");
    c->errors = lsf_counter_new(st->name, "write_errors");
    return 0;
}

/* Opens the path again when a reopen is pending; on failure keeps the old
 * descriptor and leaves the reopen pending. */
static void maybe_reopen(lsf_stage *st, file_ctx *c)
{
    const file_conf *conf = st->conf;
    if (!atomic_exchange(&c->reopen, false) && !c->reopen_failing)
        return;
    int fd = open_path(conf->path, c->mode);
    if (fd < 0) {
        if (!c->reopen_failing)
            lsf_err("%s: cannot open '%s' again: %s; still writing to the old file, will retry",
                    st->name, conf->path, strerror(errno));
        c->reopen_failing = true;
        return;
    }
    if (c->reopen_failing)
        lsf_info("%s: '%s' opened again", st->name, conf->path);
    c->reopen_failing = false;
    close(c->fd);
    c->fd = fd;
}

/* Appends out->buf[0..len) (then fdatasync with `fsync`). LSF_OK when every
 * byte was written, LSF_ERR otherwise (counted; logged when a run of failures
 * starts). */
static int file_deliver(lsf_stage *st, const lsf_batch *b, const lsf_outbuf *out)
{
    const file_conf *conf = st->conf;
    file_ctx *c = st->ctx;
    out = lsf_kinds_filter(&conf->kinds, b, out, &c->filtered);
    maybe_reopen(st, c);
    int e = lsf_write_all(c->fd, out->buf, out->len);
    const char *what = "writing to";
    if (!e && conf->fsync && fdatasync(c->fd) < 0) {
        e = errno;
        what = "syncing";
    }
    if (e) {
        lsf_counter_add(c->errors, 1);
        c->failed_batches++;
        if (!c->failing)
            lsf_err("%s: %s '%s' failed: %s; batches are dropped until it works again", st->name,
                    what, conf->path, strerror(e));
        c->failing = true;
        return LSF_ERR;
    }
    if (c->failing)
        lsf_info("%s: writing to '%s' works again after %llu failed batches", st->name, conf->path,
                 (unsigned long long)c->failed_batches);
    c->failing = false;
    c->failed_batches = 0;
    lsf_counter_add(c->events, out->nlines);
    lsf_counter_add(c->bytes, out->len);
    return LSF_OK;
}

/* Marks the file for opening again by the next deliver. Safe while a
 * deliver runs. */
static void file_reopen(lsf_stage *st)
{
    file_ctx *c = st->ctx;
    atomic_store(&c->reopen, true);
}

static int file_flush(lsf_stage *st)
{
    const file_conf *conf = st->conf;
    file_ctx *c = st->ctx;
    if (c->open && conf->fsync && fdatasync(c->fd) < 0) {
        lsf_err("%s: syncing '%s' failed: %s", st->name, conf->path, strerror(errno));
        return LSF_ERR;
    }
    return LSF_OK;
}

static void file_destroy(lsf_stage *st)
{
    file_ctx *c = st->ctx;
    if (c->open)
        close(c->fd);
    c->open = false;
    lsf_outbuf_deinit(&c->filtered);
}

const lsf_stage_def lsf_stage_file = {
    .name = "file",
    .kind = LSF_STAGE_SINK,
    .help = "Appends events as JSON lines to a file; reopens it on SIGHUP for log rotation.",
    .keys = file_keys,
    .conf_size = sizeof(file_conf),
    .ctx_size = sizeof(file_ctx),
    .init = file_init,
    .deliver = file_deliver,
    .flush = file_flush,
    .reopen = file_reopen,
    .destroy = file_destroy,
};
