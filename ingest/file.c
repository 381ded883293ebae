/* file.c - the `file` input: read a file to its end, or follow it.
 *
 * Design: one thread per file input, reading with blocking read(2) in 1 MiB
 * chunks. Without `follow` the file is read once and the input finishes
 * (its last partial line is a record). With `follow` the thread sleeps
 * 250 ms at the end of the file and then checks the path: a file shorter
 * than what was read was truncated (read again from the start, a pending
 * partial line is dropped and counted); a different file under the path
 * replaced it (the old one is read to its end, its partial last line becomes
 * a record, then the new one is read from the start); a missing path is
 * retried. A partial last line is held until its newline arrives. No offsets
 * are checkpointed: a restart begins at `read_from` again (the rotation-safe,
 * checkpointed tailer is a separate stage to come).
 * Threads: init/start/stop/destroy on the main thread; reading on the
 * stage's own thread.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/log.h"
#include "core/metrics.h"
#include "core/pipeline.h"
#include "ingest/listen.h"

#define FOLLOW_POLL_MS 250

enum { FROM_BEGINNING, FROM_END };

typedef struct file_conf {
    lsf_input_conf common;
    char *path;
    bool follow;
    int read_from;
    int framing;
    int64_t max_message_size;
} file_conf;

typedef struct file_ctx {
    lsf_stage *st;
    const file_conf *conf;
    bool inited, running;
    int fd;      /* -1 while the followed path is missing */
    int efd;     /* written by stop */
    off_t offset; /* bytes read from fd */
    atomic_bool stop;
    pthread_t thread;
    lsf_ingest in;
    lsf_stream rd;
    lsf_counter *c_reopened, *c_truncations;
} file_ctx;

static const lsf_key file_keys[] = {
    LSF_INPUT_KEYS(file_conf),
    {"path", LSF_K_STR, NULL, "The file to read.", offsetof(file_conf, path), NULL, 0, 0, true},
    {"follow", LSF_K_BOOL, "false",
     "false: read to the end and finish; true: keep reading what is appended (polled every "
     "250ms), reopening the path when the file is replaced or truncated.",
     offsetof(file_conf, follow), NULL, 0, 0, false},
    {"read_from", LSF_K_ENUM, "beginning",
     "Where to start in the file present at start-up; files that appear later are read whole.",
     offsetof(file_conf, read_from), "beginning|end", 0, 0, false},
    {"framing", LSF_K_ENUM, "newline",
     "newline (one record per line), octet_counted (RFC 6587), or auto (per frame).",
     offsetof(file_conf, framing), LSF_FRAMING_CHOICES, 0, 0, false},
    {"max_message_size", LSF_K_SIZE, "64KiB",
     "Longer lines are truncated to this size, tagged _truncated, the rest skipped.",
     offsetof(file_conf, max_message_size), NULL, 16, 64 << 20, false},
    LSF_KEYS_END,
};

static int open_path(file_ctx *f)
{
    return open(f->conf->path, O_RDONLY | O_CLOEXEC);
}

/* Sleeps FOLLOW_POLL_MS unless stop is asked. Returns false on stop. */
static bool nap(file_ctx *f)
{
    struct pollfd pf = {.fd = f->efd, .events = POLLIN};
    int rc = poll(&pf, 1, FOLLOW_POLL_MS);
    return !(rc > 0 || atomic_load(&f->stop));
}

/* Called at the end of the followed file after a nap: opens a path that
 * appeared, rewinds a truncated file, and switches to a file that replaced
 * ours once the old one has been quiet for a whole nap. */
static void check_path(file_ctx *f)
{
    struct stat cur, now;
    if (f->fd < 0) {
        f->fd = open_path(f);
        if (f->fd >= 0) {
            f->offset = 0;
            lsf_counter_add(f->c_reopened, 1);
            lsf_info("%s: %s appeared, reading it", f->st->name, f->conf->path);
        }
        return;
    }
    if (fstat(f->fd, &cur) == 0 && S_ISREG(cur.st_mode) && cur.st_size < f->offset) {
        lsf_info("%s: %s was truncated, reading it from the start", f->st->name, f->conf->path);
        lsf_counter_add(f->c_truncations, 1);
        lsf_stream_discard(&f->rd);
        lseek(f->fd, 0, SEEK_SET);
        f->offset = 0;
        return;
    }
    if (stat(f->conf->path, &now) < 0)
        return; /* moved away, nothing new yet: keep the old file */
    if (now.st_ino == cur.st_ino && now.st_dev == cur.st_dev)
        return;
    /* Replaced. A writer that has not reopened yet may still append to the
     * old file: keep reading it until it stays quiet for a whole nap. */
    ssize_t got = 0;
    for (;;) {
        ssize_t n = lsf_stream_read(&f->rd, f->fd);
        if (n > 0) {
            got += n;
            f->offset += n;
        } else if (n != -EINTR) {
            break;
        }
    }
    if (got)
        return;
    lsf_stream_finish(&f->rd);
    close(f->fd);
    f->fd = open_path(f);
    f->offset = 0;
    lsf_counter_add(f->c_reopened, 1);
    lsf_info("%s: %s was replaced, reading the new file", f->st->name, f->conf->path);
}

static void *file_main(void *arg)
{
    file_ctx *f = arg;
    const bool follow = f->conf->follow;
    for (;;) {
        if (atomic_load_explicit(&f->stop, memory_order_relaxed))
            goto stopped;
        ssize_t n = f->fd >= 0 ? lsf_stream_read(&f->rd, f->fd) : 0;
        if (n > 0) {
            f->offset += n;
            continue;
        }
        if (n == -EINTR)
            continue;
        if (n < 0)
            lsf_err("%s: read %s: %s", f->st->name, f->conf->path, strerror((int)-n));
        if (!follow)
            break;
        lsf_ingest_flush(&f->in);
        if (!nap(f))
            goto stopped;
        check_path(f);
    }
    lsf_stream_finish(&f->rd);
    lsf_ingest_flush(&f->in);
    lsf_pipeline_input_done(f->st->pipeline);
    return NULL;
stopped:
    lsf_stream_discard(&f->rd);
    lsf_ingest_flush(&f->in);
    return NULL;
}

static int file_init(lsf_stage *st, lsf_errbuf *err)
{
    file_ctx *f = st->ctx;
    const file_conf *cf = st->conf;
    f->st = st;
    f->conf = cf;
    f->fd = -1;
    f->efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (f->efd < 0)
        lsf_die("eventfd: %s", strerror(errno));
    f->inited = true;
    lsf_ingest_init(&f->in, st);
    f->c_reopened = lsf_counter_new(st->name, "reopened");
    f->c_truncations = lsf_counter_new(st->name, "truncations");
    lsf_stream_init(&f->rd, &f->in, cf->framing, (size_t)cf->max_message_size);
    struct stat sb;
    if (stat(cf->path, &sb) == 0 && (S_ISFIFO(sb.st_mode) || S_ISSOCK(sb.st_mode)))
        return lsf_node_error(err, lsf_key_node(st, "path"),
                              "%s is a pipe or socket (read pipes with the stdin input)", cf->path);
    f->fd = open_path(f);
    if (f->fd < 0) {
        if (!cf->follow || errno != ENOENT)
            return lsf_node_error(err, lsf_key_node(st, "path"), "cannot open %s: %s", cf->path,
                                  strerror(errno));
        lsf_info("%s: %s does not exist yet; waiting for it", st->name, cf->path);
        return 0;
    }
    if (fstat(f->fd, &sb) == 0 && S_ISDIR(sb.st_mode))
        return lsf_node_error(err, lsf_key_node(st, "path"), "%s is a directory", cf->path);
    if (cf->read_from == FROM_END) {
        off_t end = lseek(f->fd, 0, SEEK_END);
        if (end > 0)
            f->offset = end;
    }
    return 0;
}

static int file_start(lsf_stage *st)
{
    file_ctx *f = st->ctx;
    int rc = pthread_create(&f->thread, NULL, file_main, f);
    if (rc) {
        lsf_err("%s: cannot start a thread: %s", st->name, strerror(rc));
        return -1;
    }
    f->running = true;
    return 0;
}

/* Stops reading (a partial line is dropped, counted incomplete) and waits
 * for the thread, which submits what it framed. */
static void file_stop(lsf_stage *st)
{
    file_ctx *f = st->ctx;
    if (!f->running)
        return;
    atomic_store(&f->stop, true);
    uint64_t one = 1;
    ssize_t w = write(f->efd, &one, sizeof(one));
    (void)w;
    pthread_join(f->thread, NULL);
    f->running = false;
}

static void file_destroy(lsf_stage *st)
{
    file_ctx *f = st->ctx;
    if (!f->inited)
        return;
    file_stop(st);
    if (f->fd >= 0)
        close(f->fd);
    close(f->efd);
    lsf_stream_deinit(&f->rd);
    f->inited = false;
}

/* Config type `file` (sinks have a `file` too; kinds are looked up apart). */
const lsf_stage_def lsf_stage_file_input = {
    .name = "file",
    .kind = LSF_STAGE_INPUT,
    .help = "A file, read once to its end or followed as it grows (reopened when rotated).",
    .keys = file_keys,
    .conf_size = sizeof(file_conf),
    .ctx_size = sizeof(file_ctx),
    .init = file_init,
    .start = file_start,
    .stop = file_stop,
    .destroy = file_destroy,
};
