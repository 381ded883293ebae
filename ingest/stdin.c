/* stdin.c - the `stdin` input: records from standard input until its end.
 *
 * Design: stdin may be a file, a pipe or a terminal, so it is read on its own
 * thread with blocking read(2) in 1 MiB chunks rather than through epoll
 * (which refuses regular files). When stdin is not a regular file the thread
 * polls it together with an eventfd, so stop never waits on a silent pipe,
 * and it submits the partial batch whenever the input pauses, so a slow
 * pipe's lines come out at once. At the end the last partial line is a
 * record, everything is submitted, then lsf_pipeline_input_done.
 * Threads: init/start/stop/destroy on the main thread; reading on the
 * stage's own thread.
 */
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/log.h"
#include "core/pipeline.h"
#include "ingest/listen.h"

typedef struct stdin_conf {
    lsf_input_conf common;
    int framing;
    int64_t max_message_size;
} stdin_conf;

typedef struct stdin_ctx {
    lsf_stage *st;
    bool inited, running;
    int efd; /* written by stop */
    atomic_bool stop;
    pthread_t thread;
    lsf_ingest in;
    lsf_stream rd;
} stdin_ctx;

static const lsf_key stdin_keys[] = {
    LSF_INPUT_KEYS(stdin_conf),
    {"framing", LSF_K_ENUM, "newline",
     "newline (one record per line), octet_counted (RFC 6587), or auto (per frame).",
     offsetof(stdin_conf, framing), LSF_FRAMING_CHOICES, 0, 0, false},
    {"max_message_size", LSF_K_SIZE, "64KiB",
     "Longer lines are truncated to this size, tagged _truncated, the rest skipped.",
     offsetof(stdin_conf, max_message_size), NULL, 16, 64 << 20, false},
    LSF_KEYS_END,
};

/* Waits until fd 0 is readable (or hung up, or in error: read(2) will
 * tell) or stop was asked; submits the partial batch before sleeping.
 * Returns false on stop. */
static bool wait_readable(stdin_ctx *s)
{
    struct pollfd pf[2] = {{.fd = 0, .events = POLLIN}, {.fd = s->efd, .events = POLLIN}};
    int timeout = 0;
    for (;;) {
        int rc = poll(pf, 2, timeout);
        if (rc < 0 && errno == EINTR)
            continue;
        if (rc < 0)
            return true;
        if (pf[1].revents)
            return false;
        if (rc > 0)
            return true;
        lsf_ingest_flush(&s->in); /* a pause in the input: hand over what we have */
        timeout = -1;
    }
}

static void *stdin_main(void *arg)
{
    stdin_ctx *s = arg;
    struct stat sb;
    bool regular = fstat(0, &sb) == 0 && S_ISREG(sb.st_mode);
    for (;;) {
        if (atomic_load_explicit(&s->stop, memory_order_relaxed) || (!regular && !wait_readable(s)))
            goto stopped;
        ssize_t n = lsf_stream_read(&s->rd, 0);
        if (n > 0 || n == -EINTR || n == -EAGAIN)
            continue;
        if (n < 0)
            lsf_err("%s: read: %s", s->st->name, strerror((int)-n));
        break;
    }
    lsf_stream_finish(&s->rd);
    lsf_ingest_flush(&s->in);
    lsf_pipeline_input_done(s->st->pipeline);
    return NULL;
stopped:
    lsf_stream_discard(&s->rd);
    lsf_ingest_flush(&s->in);
    return NULL;
}

static int stdin_init(lsf_stage *st, lsf_errbuf *err)
{
    stdin_ctx *s = st->ctx;
    const stdin_conf *cf = st->conf;
    (void)err;
    s->st = st;
    s->efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (s->efd < 0)
        lsf_die("eventfd: %s", strerror(errno));
    s->inited = true;
    lsf_ingest_init(&s->in, st);
    lsf_stream_init(&s->rd, &s->in, cf->framing, (size_t)cf->max_message_size);
    return 0;
}

static int stdin_start(lsf_stage *st)
{
    stdin_ctx *s = st->ctx;
    int rc = pthread_create(&s->thread, NULL, stdin_main, s);
    if (rc) {
        lsf_err("%s: cannot start a thread: %s", st->name, strerror(rc));
        return -1;
    }
    s->running = true;
    return 0;
}

/* Stops reading (a partial line is dropped, counted incomplete) and waits
 * for the thread, which submits what it framed. */
static void stdin_stop(lsf_stage *st)
{
    stdin_ctx *s = st->ctx;
    if (!s->running)
        return;
    atomic_store(&s->stop, true);
    uint64_t one = 1;
    ssize_t w = write(s->efd, &one, sizeof(one));
    (void)w;
    pthread_join(s->thread, NULL);
    s->running = false;
}

static void stdin_destroy(lsf_stage *st)
{
    stdin_ctx *s = st->ctx;
    if (!s->inited)
        return;
    stdin_stop(st);
    lsf_stream_deinit(&s->rd);
    close(s->efd);
    s->inited = false;
}

const lsf_stage_def lsf_stage_stdin = {
    .name = "stdin",
    .kind = LSF_STAGE_INPUT,
    .help = "Standard input, one record per line, until its end (used by `logsift parse`).",
    .keys = stdin_keys,
    .conf_size = sizeof(stdin_conf),
    .ctx_size = sizeof(stdin_ctx),
    .init = stdin_init,
    .start = stdin_start,
    .stop = stdin_stop,
    .destroy = stdin_destroy,
};
