/* stdout.c - the `stdout` sink: each batch's JSON lines to standard output.
 *
 * Design: no buffering of its own; the batch's shared JSON buffer is written
 * with write(2) until every byte is out (partial writes, EINTR, and EAGAIN on
 * a non-blocking stdout, which waits in poll). A failed write (EPIPE when the
 * reader went away; SIGPIPE is ignored by main) fails the batch: it is
 * counted in <name>.write_errors, logged once per run of failures, and the
 * next batch tries again.
 * Threads: init/destroy on the main thread; deliver on one worker at a time,
 * in batch order, so the context needs no lock.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <string.h>
#include <unistd.h>

#include "core/log.h"
#include "core/metrics.h"
#include "core/stage.h"
#include "sinks/json_out.h"
#include "sinks/kinds.h"
#include "write_all.h"

typedef struct stdout_conf {
    lsf_strlist kinds;
} stdout_conf;

typedef struct stdout_ctx {
    int fd;
    lsf_outbuf filtered; /* the lines `kinds` keeps */
    bool failing; /* the last batch failed: do not log again */
    uint64_t failed_batches;
    lsf_counter *events, *bytes, *errors;
} stdout_ctx;

static const lsf_key stdout_keys[] = {
    {"kinds", LSF_K_STRLIST, NULL, LSF_KINDS_HELP, offsetof(stdout_conf, kinds), NULL, 0, 0,
     false},
    LSF_KEYS_END,
};

static int stdout_init(lsf_stage *st, lsf_errbuf *err)
{
    stdout_ctx *c = st->ctx;
    const stdout_conf *conf = st->conf;
    c->fd = STDOUT_FILENO;
    if (fcntl(c->fd, F_GETFL) < 0)
        return lsf_node_error(err, st->node, "stdout sink: standard output is closed");
    const lsf_node *kn = lsf_node_get(st->node, "kinds");
    if (lsf_kinds_check(&conf->kinds, kn ? kn : st->node, err) < 0)
        return -1;
    lsf_outbuf_init(&c->filtered);
    c->events = lsf_counter_new(st->name, "events");
    c->bytes = lsf_counter_new(st->name, "bytes");
    c->errors = lsf_counter_new(st->name, "write_errors");
    return 0;
}

/* Writes out->buf[0..len). LSF_OK when every byte was written, LSF_ERR
 * otherwise (counted; logged when a run of failures starts). */
static int stdout_deliver(lsf_stage *st, const lsf_batch *b, const lsf_outbuf *out)
{
    stdout_ctx *c = st->ctx;
    out = lsf_kinds_filter(&((const stdout_conf *)st->conf)->kinds, b, out, &c->filtered);
    int e = lsf_write_all(c->fd, out->buf, out->len);
    if (e) {
        lsf_counter_add(c->errors, 1);
        c->failed_batches++;
        if (!c->failing)
            lsf_err("%s: writing to standard output failed: %s; batches are dropped until it "
                    "works again",
                    st->name, strerror(e));
        c->failing = true;
        return LSF_ERR;
    }
    if (c->failing)
        lsf_info("%s: standard output works again after %llu failed batches", st->name,
                 (unsigned long long)c->failed_batches);
    c->failing = false;
    c->failed_batches = 0;
    lsf_counter_add(c->events, out->nlines);
    lsf_counter_add(c->bytes, out->len);
    return LSF_OK;
}

static void stdout_destroy(lsf_stage *st)
{
    stdout_ctx *c = st->ctx;
    lsf_outbuf_deinit(&c->filtered);
}

const lsf_stage_def lsf_stage_stdout = {
    .name = "stdout",
    .kind = LSF_STAGE_SINK,
    .help = "Writes events as JSON lines to standard output.",
    .keys = stdout_keys,
    .conf_size = sizeof(stdout_conf),
    .ctx_size = sizeof(stdout_ctx),
    .init = stdout_init,
    .deliver = stdout_deliver,
    .destroy = stdout_destroy,
};
