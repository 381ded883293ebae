/* file.c - the `file` input: follows files named by glob patterns through
 * every rotation style, with checkpoints that advance only on delivery.
 *
 * What it does: every poll_interval the patterns are expanded; a file is
 * tracked by device and inode while open. A tracked file that no longer
 * matches (renamed away by logrotate, or deleted) is read to its end first,
 * then watched for late writes for rotate_wait and closed; the new file
 * under the name is read from its start. A file that shrinks or whose first
 * bytes change was truncated: when a copy of its old first bytes with at
 * least what was read sits in the same directory (copytruncate), the rest
 * is read from the copy, then the file is read again from its start.
 * Lines longer than max_message_size are truncated and flagged; Latin-1
 * files are converted to UTF-8; `multiline` joins stack traces.
 *
 * The one design choice to know: each batch holds records of one file and
 * carries an ack; the checkpoint of a file (file_ckpt.c) moves only to the
 * end of the last batch that every sink took, and the offset a restart may
 * re-read up to is persisted before the batch is handed over, so after a
 * kill -9 nothing is lost and the re-read tail is known and counted
 * (`replayed`). The offsets are explained in file_tail.h; finding files
 * and telling rotations apart is file_scan.c.
 *
 * Threads: init/start/stop/destroy on the main thread; reading, scanning
 * and checkpoint writes on the stage's own thread; acks on any thread
 * (file_ckpt.c).
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/ioloop.h"
#include "core/log.h"
#include "core/metrics.h"
#include "core/pipeline.h"
#include "ingest/file_tail.h"
#include "ingest/listen.h"
#include "ingest/multiline.h"

#define READ_CHUNK (1u << 20)


static const lsf_key file_keys[] = {
    LSF_INPUT_KEYS(file_conf),
    {"path", LSF_K_STRLIST, NULL,
     "File paths or glob patterns (/var/log/app/*.log); new matching files are picked up. Name "
     "the live files, not their rotated names (app.log, not app.log*).",
     offsetof(file_conf, path), NULL, 0, 0, true},
    {"exclude", LSF_K_STRLIST, NULL, "Glob patterns of paths to leave out (e.g. '*.gz').",
     offsetof(file_conf, exclude), NULL, 0, 0, false},
    {"follow", LSF_K_BOOL, "false",
     "false: read the files to their end and finish; true: keep following them through "
     "rotations, with checkpoints.",
     offsetof(file_conf, follow), NULL, 0, 0, false},
    {"read_from", LSF_K_ENUM, "beginning",
     "Where to start in a file found at start-up that has no checkpoint; files that appear "
     "later are always read from their beginning.",
     offsetof(file_conf, read_from), "beginning|end", 0, 0, false},
    {"encoding", LSF_K_ENUM, "utf-8",
     "Character set of the files: utf-8 (invalid bytes are kept as \\xNN) or latin-1 "
     "(converted to UTF-8).",
     offsetof(file_conf, encoding), "utf-8|latin-1", 0, 0, false},
    {"max_message_size", LSF_K_SIZE, "64KiB",
     "Longer lines are truncated to this size, tagged _truncated, the rest skipped.",
     offsetof(file_conf, max_message_size), NULL, 16, 64 << 20, false},
    {"poll_interval", LSF_K_DURATION, "250ms",
     "How often idle files are checked for new data and patterns for new files.",
     offsetof(file_conf, poll_ms), NULL, 10, 60000, false},
    {"rotate_wait", LSF_K_DURATION, "10s",
     "How long a rotated (renamed or deleted) file is still watched for late writes after its "
     "end.",
     offsetof(file_conf, rotate_wait_ms), NULL, 0, 86400000, false},
    {"checkpoint_interval", LSF_K_DURATION, "1s",
     "How often delivered offsets are written to the checkpoint file.",
     offsetof(file_conf, ckpt_interval_ms), NULL, 10, 3600000, false},
    {"checkpoint_file", LSF_K_STR, NULL,
     "Where offsets are kept; default <state_dir>/<input name>.checkpoints when follow is "
     "true; without follow only when set.",
     offsetof(file_conf, checkpoint_file), NULL, 0, 0, false},
    {"multiline", LSF_K_NODE, NULL,
     "Join continuation lines: {mode: start|indent, start_pattern, continue_pattern, "
     "max_lines, max_bytes, flush_timeout} (see docs/ingest.md).",
     offsetof(file_conf, multiline), NULL, 0, 0, false},
    LSF_KEYS_END,
};

/* ---- records -------------------------------------------------------------- */

bool lsf_ftail_stopping(file_ctx *x)
{
    return atomic_load_explicit(&x->stop, memory_order_relaxed);
}

/* `sync`: also fsync (periodic writes); the write-ahead of `submitted`
 * before each read chunk is handed over only renames (a process crash
 * cannot tear it; a power loss may cost the replayed count, not lines). */
static void write_checkpoint(file_ctx *x, bool sync)
{
    if (!x->ckpt_path)
        return;
    int rc = lsf_ckpt_save(x->ckpt_path, x->track, x->files, x->loaded, x->nloaded, sync);
    if (rc < 0) {
        lsf_counter_add(x->c_ckpt_errors, 1);
        lsf_warn("%s: cannot write checkpoints %s: %s", x->st->name, x->ckpt_path, strerror(-rc));
    }
    x->ckpt_due_ns = lsf_now_mono_ns() + x->conf->ckpt_interval_ms * 1000000LL;
}

/* lsf_ingest hook: a batch of x->cur's records is about to be submitted.
 * Persists how far the file may have been handed over (once per read
 * chunk), then registers the batch for its ack. */
static void on_submit(void *arg, lsf_batch *b)
{
    file_ctx *x = arg;
    tfile *f = x->cur;
    if (!f)
        return;
    if (x->ckpt_path && x->cur_end > f->persisted_sub) {
        f->persisted_sub = f->read_off;
        write_checkpoint(x, false);
    }
    lsf_ftrack_submit(x->track, b, f, x->cur_end);
}

static void submit_batch(file_ctx *x)
{
    lsf_ingest_flush(&x->in);
    x->cur = NULL;
}

/* Latin-1 to UTF-8: every byte >= 0x80 becomes two. */
static const char *latin1_to_utf8(file_ctx *x, const char *s, size_t *len)
{
    size_t n = *len;
    if (x->conv_cap < 2 * n) {
        x->conv_cap = 2 * n + 64;
        free(x->conv);
        x->conv = malloc(x->conv_cap);
        if (!x->conv)
            lsf_die("out of memory");
    }
    char *d = x->conv;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c < 0x80) {
            *d++ = (char)c;
        } else {
            *d++ = (char)(0xC0 | (c >> 6));
            *d++ = (char)(0x80 | (c & 0x3F));
        }
    }
    *len = (size_t)(d - x->conv);
    return x->conv;
}

typedef struct emit_arg {
    file_ctx *x;
    tfile *f;
} emit_arg;

/* One event of file f ending at `end`: into the batch (which only ever
 * holds one file's records). */
static void push_event(void *arg, const char *rec, size_t len, int truncated, uint64_t end)
{
    emit_arg *ea = arg;
    file_ctx *x = ea->x;
    tfile *f = ea->f;
    if (x->cur != f) {
        if (x->cur)
            submit_batch(x);
        x->cur = f;
    }
    lsf_event *ev = lsf_ingest_push(&x->in, rec, len, truncated);
    x->cur_end = (off_t)end;
    if (end <= (uint64_t)f->replay_until)
        lsf_counter_add(x->c_replayed, 1);
    lsf_field *fl = lsf_event_set(x->in.b, ev, LSF_STR_LIT("log.file.path"), x->path_id);
    fl->type = LSF_T_STR;
    fl->v.s = lsf_ingest_addr(&x->in, &f->path_cache, f->path, strlen(f->path));
}

/* A complete line (without its terminator) of f ending at file offset end. */
static void emit_line(file_ctx *x, tfile *f, const char *s, size_t n, int truncated, off_t end)
{
    if (n && s[n - 1] == '\r')
        n--;
    if (n == 0) {
        x->in.fst.empty++;
        return;
    }
    if (x->conf->encoding == ENC_LATIN1)
        s = latin1_to_utf8(x, s, &n);
    emit_arg ea = {x, f};
    if (f->has_ml)
        lsf_ml_line(&f->ml, s, n, truncated, (uint64_t)end, lsf_now_mono_ns(), push_event, &ea);
    else
        push_event(&ea, s, n, truncated, (uint64_t)end);
}

static void tail_append(tfile *f, const char *p, size_t n)
{
    if (f->tail_len + n > f->tail_cap) {
        size_t ncap = f->tail_cap ? f->tail_cap : 256;
        while (ncap < f->tail_len + n)
            ncap *= 2;
        char *nb = realloc(f->tail, ncap);
        if (!nb)
            lsf_die("out of memory");
        f->tail = nb;
        f->tail_cap = ncap;
    }
    memcpy(f->tail + f->tail_len, p, n);
    f->tail_len += n;
}

/* Splits data (the bytes of f at offsets [f->read_off, +n)) into lines. A
 * partial line waits in f->tail; a line longer than max keeps only its head
 * there and its further bytes are skipped up to the newline. */
static void split_lines(file_ctx *x, tfile *f, const char *data, size_t n)
{
    const size_t max = (size_t)x->conf->max_message_size;
    const char *p = data, *end = data + n;
    off_t base = f->read_off;
    while (p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        off_t after = nl ? base + (off_t)(nl + 1 - data) : 0;
        if (f->skipping) {
            if (!nl)
                break;
            emit_line(x, f, f->tail, f->tail_len, 1, after);
            f->tail_len = 0;
            f->skipping = false;
            p = nl + 1;
            continue;
        }
        size_t seg = (size_t)((nl ? nl : end) - p);
        /* a '\r' right before the newline is not part of the line */
        size_t body = nl && seg && p[seg - 1] == '\r' ? seg - 1 : seg;
        if (f->tail_len + body > max) {
            size_t room = f->tail_len < max ? max - f->tail_len : 0;
            tail_append(f, p, room);
            if (nl) {
                emit_line(x, f, f->tail, f->tail_len, 1, after);
                f->tail_len = 0;
                p = nl + 1;
            } else {
                f->skipping = true;
                break;
            }
            continue;
        }
        if (!nl) {
            tail_append(f, p, seg);
            break;
        }
        if (f->tail_len) {
            tail_append(f, p, seg);
            emit_line(x, f, f->tail, f->tail_len, 0, after);
            f->tail_len = 0;
        } else {
            emit_line(x, f, p, seg, 0, after);
        }
        p = nl + 1;
    }
    f->read_off += (off_t)n;
}

/* The end of f's stream: a partial last line is a record, a pending
 * multiline event is emitted. */
static void finish_stream(file_ctx *x, tfile *f)
{
    if (f->tail_len)
        emit_line(x, f, f->tail, f->tail_len, f->skipping, f->read_off);
    f->tail_len = 0;
    f->skipping = false;
    lsf_ftail_flush_ml(x, f);
}

void lsf_ftail_flush_ml(file_ctx *x, tfile *f)
{
    if (f->has_ml) {
        emit_arg ea = {x, f};
        lsf_ml_flush(&f->ml, push_event, &ea);
    }
}

/* One read of f. Returns bytes read, 0 at the end, -1 on error. */
static ssize_t read_some(file_ctx *x, tfile *f)
{
    ssize_t n;
    do
        n = read(f->fd, x->rbuf, READ_CHUNK);
    while (n < 0 && errno == EINTR);
    if (n < 0) {
        lsf_warn("%s: read %s: %s", x->st->name, f->path, strerror(errno));
        return -1;
    }
    if (n > 0) {
        x->in.bytes += (uint64_t)n;
        x->in.now_ns = lsf_now_real_ns();
        f->last_data_ns = lsf_now_mono_ns();
        split_lines(x, f, x->rbuf, (size_t)n);
    }
    return n;
}

void lsf_ftail_drain(file_ctx *x, tfile *f)
{
    while (!lsf_ftail_stopping(x) && f->fd >= 0 && read_some(x, f) > 0)
        ;
}

/* Closes a file that was read completely. */
static void finish_file(file_ctx *x, tfile *f)
{
    finish_stream(x, f);
    if (x->cur == f)
        submit_batch(x);
    close(f->fd);
    f->fd = -1;
    f->finished = true;
}

/* Frees finished and retired files whose acks are all in. */
static void reap(file_ctx *x)
{
    lsf_ftrack_lock(x->track);
    for (tfile **pp = &x->files; *pp;) {
        tfile *f = *pp;
        if ((f->finished || f->retired) && f->pending == 0 && x->cur != f) {
            *pp = f->next;
            lsf_ftail_file_free(f);
        } else {
            pp = &f->next;
        }
    }
    lsf_ftrack_unlock(x->track);
}

/* Sleeps up to ms unless stop is asked. */
static void nap(file_ctx *x, int64_t ms)
{
    struct pollfd pf = {.fd = x->efd, .events = POLLIN};
    poll(&pf, 1, (int)ms);
}

static void *file_main(void *arg)
{
    file_ctx *x = arg;
    const file_conf *cf = x->conf;
    int64_t next_scan = 0;
    while (!lsf_ftail_stopping(x)) {
        int64_t now = lsf_now_mono_ns();
        if (now >= next_scan) {
            lsf_ftail_scan(x);
            /* without follow the files found at start are all there is */
            next_scan = cf->follow ? now + cf->poll_ms * 1000000LL : INT64_MAX;
        }
        bool progressed = false, open_left = false;
        for (tfile *f = x->files; f && !lsf_ftail_stopping(x); f = f->next) {
            if (f->fd < 0 || f->retired)
                continue;
            ssize_t n = read_some(x, f);
            if (n > 0) {
                progressed = true;
            } else if (!cf->follow) {
                finish_file(x, f);
                continue;
            } else if (f->rotated &&
                       lsf_now_mono_ns() - f->last_data_ns >= cf->rotate_wait_ms * 1000000LL) {
                lsf_info("%s: finished rotated file %s", x->st->name, f->path);
                finish_file(x, f);
                continue;
            }
            if (f->has_ml) {
                emit_arg ea = {x, f};
                lsf_ml_tick(&f->ml, lsf_now_mono_ns(), push_event, &ea);
            }
            open_left = true;
        }
        submit_batch(x);
        lsf_ingest_flush(&x->in);
        reap(x);
        if (x->ckpt_path && lsf_now_mono_ns() >= x->ckpt_due_ns && lsf_ftrack_take_dirty(x->track))
            write_checkpoint(x, true);
        if (!cf->follow && !open_left && !progressed) {
            lsf_pipeline_input_done(x->st->pipeline);
            return NULL;
        }
        if (!progressed)
            nap(x, cf->poll_ms);
    }
    /* Stopping: complete lines already read go out; a partial line and a
     * pending multiline event are re-read after a restart (the checkpoint
     * does not pass them). */
    for (tfile *f = x->files; f; f = f->next)
        if (f->tail_len)
            x->in.fst.incomplete++;
    submit_batch(x);
    return NULL;
}

/* ---- stage -------------------------------------------------------------------- */

static int file_init(lsf_stage *st, lsf_errbuf *err)
{
    file_ctx *x = st->ctx;
    const file_conf *cf = st->conf;
    x->st = st;
    x->conf = cf;
    x->efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (x->efd < 0)
        lsf_die("eventfd: %s", strerror(errno));
    x->inited = true;
    if (lsf_ml_conf_bind(&x->ml, cf->multiline, cf->max_message_size, err) < 0)
        return -1;
    for (size_t i = 0; i < cf->path.n; i++) {
        struct stat sb;
        const char *p = cf->path.v[i];
        if (stat(p, &sb) == 0 && (S_ISFIFO(sb.st_mode) || S_ISSOCK(sb.st_mode)))
            return lsf_node_error(err, lsf_key_node(st, "path"),
                                  "%s is a pipe or socket (read pipes with the stdin input)", p);
        if (stat(p, &sb) == 0 && S_ISDIR(sb.st_mode))
            return lsf_node_error(err, lsf_key_node(st, "path"),
                                  "%s is a directory (name files or a pattern such as %s/*.log)", p,
                                  p);
        if (!cf->follow && !strpbrk(p, "*?[") && access(p, R_OK) < 0)
            return lsf_node_error(err, lsf_key_node(st, "path"), "cannot open %s: %s", p,
                                  strerror(errno));
    }
    lsf_ingest_init(&x->in, st);
    x->in.on_submit = on_submit;
    x->in.on_submit_arg = x;
    x->c_opened = lsf_counter_new(st->name, "files_opened");
    x->c_rotated = lsf_counter_new(st->name, "files_rotated");
    x->c_truncations = lsf_counter_new(st->name, "truncations");
    x->c_copies = lsf_counter_new(st->name, "copytruncate_followed");
    x->c_replayed = lsf_counter_new(st->name, "replayed");
    x->c_ack_failed = lsf_counter_new(st->name, "checkpoint_held");
    x->c_lost = lsf_counter_new(st->name, "checkpoint_files_gone");
    x->c_ckpt_errors = lsf_counter_new(st->name, "checkpoint_write_errors");
    x->track = lsf_ftrack_new(x->c_ack_failed);
    x->path_id = lsf_field_intern("log.file.path", strlen("log.file.path"));
    x->rbuf = malloc(READ_CHUNK);
    if (!x->rbuf)
        lsf_die("out of memory");
    if (cf->checkpoint_file) {
        x->ckpt_path = strdup(cf->checkpoint_file);
    } else if (cf->follow) {
        const char *dir = lsf_pipeline_settings(st->pipeline)->state_dir;
        char buf[4096];
        snprintf(buf, sizeof(buf), "%s/%s.checkpoints", dir ? dir : ".", st->name);
        x->ckpt_path = strdup(buf);
    }
    if (x->ckpt_path) {
        char msg[512];
        if (lsf_ckpt_load(x->ckpt_path, &x->loaded, &x->nloaded, msg, sizeof(msg)) < 0)
            return lsf_node_error(err, lsf_key_node(st, "checkpoint_file"), "%s", msg);
        /* Fail now, not at the first checkpoint, when the place is not writable. */
        char tmp[4200];
        snprintf(tmp, sizeof(tmp), "%s.tmp", x->ckpt_path);
        int fd = open(tmp, O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
        if (fd < 0)
            return lsf_node_error(err, lsf_key_node(st, "checkpoint_file"),
                                  "cannot write checkpoints next to %s: %s", x->ckpt_path,
                                  strerror(errno));
        close(fd);
        unlink(tmp);
    }
    return 0;
}

static int file_start(lsf_stage *st)
{
    file_ctx *x = st->ctx;
    int rc = pthread_create(&x->thread, NULL, file_main, x);
    if (rc) {
        lsf_err("%s: cannot start a thread: %s", st->name, strerror(rc));
        return -1;
    }
    x->running = true;
    return 0;
}

/* Stops reading and waits for the thread, which submits what it framed. */
static void file_stop(lsf_stage *st)
{
    file_ctx *x = st->ctx;
    if (!x->running)
        return;
    atomic_store(&x->stop, true);
    uint64_t one = 1;
    ssize_t w = write(x->efd, &one, sizeof(one));
    (void)w;
    pthread_join(x->thread, NULL);
    x->running = false;
}

/* After the pipeline drained: every ack that will come is in; the final
 * checkpoint is written. */
static void file_destroy(lsf_stage *st)
{
    file_ctx *x = st->ctx;
    if (!x->inited)
        return;
    file_stop(st);
    if (x->track) {
        write_checkpoint(x, true);
        lsf_ftrack_close(x->track);
        x->track = NULL;
    }
    while (x->files) {
        tfile *f = x->files;
        x->files = f->next;
        lsf_ftail_file_free(f);
    }
    lsf_ingest_flush(&x->in); /* publishes the counters */
    lsf_ckpt_free(x->loaded, x->nloaded);
    lsf_ml_conf_free(&x->ml);
    free(x->ckpt_path);
    free(x->rbuf);
    free(x->conv);
    close(x->efd);
    x->inited = false;
}

/* Config type `file` (sinks have a `file` too; kinds are looked up apart). */
const lsf_stage_def lsf_stage_file_input = {
    .name = "file",
    .kind = LSF_STAGE_INPUT,
    .help = "Files by path or glob, read once or followed through rotations (rename, "
            "copytruncate, delete, truncation) with delivery-checked checkpoints; multiline.",
    .keys = file_keys,
    .conf_size = sizeof(file_conf),
    .ctx_size = sizeof(file_ctx),
    .init = file_init,
    .start = file_start,
    .stop = file_stop,
    .destroy = file_destroy,
};
