/* pipeline.c - batch pool, work queue, worker threads, ordered delivery.
 *
 * Design: memory is bounded by a fixed pool of batches. A batch moves
 *   pool -> input (fills it) -> queue -> worker (parse, transforms, JSON)
 *        -> sinks (in submission order) -> pool.
 * Workers run in parallel; delivery takes turns by sequence number so every
 * sink sees batches in the order inputs submitted them, which keeps each
 * connection's lines in order in the output.
 * Threads: inputs call batch_get/submit from their threads; workers are
 * pool-owned threads; everything else runs on the main thread.
 */
#include "pipeline.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "metrics.h"
#include "parsers/parse.h"
#include "sinks/json_out.h"
#include "ingest/privdrop.h"

const lsf_key lsf_pipeline_keys[] = {
    {"workers", LSF_K_INT, "0", "Worker threads for parsing and transforms; 0 means one per core.",
     offsetof(lsf_pipeline_conf, workers), NULL, 0, 256, false},
    {"batch_size", LSF_K_INT, "256", "Most events handed between threads at once.",
     offsetof(lsf_pipeline_conf, batch_size), NULL, 1, 65535, false},
    {"queue_batches", LSF_K_INT, "64",
     "Batches in flight between inputs and sinks; when all are in use, TCP inputs stop reading.",
     offsetof(lsf_pipeline_conf, queue_batches), NULL, 2, 100000, false},
    {"log_level", LSF_K_ENUM, "info", "logsift's own log level (to stderr).",
     offsetof(lsf_pipeline_conf, log_level), "error|warn|info|debug", 0, 0, false},
    {"state_dir", LSF_K_STR, ".", "Directory for state files (checkpoints, spool, snapshots).",
     offsetof(lsf_pipeline_conf, state_dir), NULL, 0, 0, false},
    {"user", LSF_K_STR, NULL,
     "After binding ports and opening files, run as this user (name or uid); needs root.",
     offsetof(lsf_pipeline_conf, user), NULL, 0, 0, false},
    {"group", LSF_K_STR, NULL, "Group to run as with `user` (default: the user's own group).",
     offsetof(lsf_pipeline_conf, group), NULL, 0, 0, false},
    LSF_KEYS_END,
};

/* Top-level sections that are not pipeline settings. */
static const char *const section_keys[] = {"inputs", "transforms", "sinks", "parse", NULL};

typedef struct worker {
    lsf_pipeline *p;
    int index;
    pthread_t thread;
    lsf_outbuf out[2]; /* per codec: JSON lines, raw lines */
} worker;

typedef struct stage_list {
    lsf_stage **v;
    int n;
} stage_list;

struct lsf_pipeline {
    lsf_pipeline_conf conf;
    stage_list inputs, transforms, sinks;
    lsf_stage *parse; /* implicit first transform */
    bool codec_used[2]; /* some sink wants this enum lsf_codec */
    lsf_io *io;
    int nworkers;
    worker *workers;

    /* pool of free batches */
    pthread_mutex_t pool_lock;
    pthread_cond_t pool_cond;
    lsf_batch *pool;
    int nbatches;

    /* queue of submitted batches */
    pthread_mutex_t queue_lock;
    pthread_cond_t queue_cond;
    lsf_batch *qhead, *qtail;
    uint64_t next_submit_seq;
    bool closing;

    /* ordered delivery */
    pthread_mutex_t deliver_lock;
    pthread_cond_t deliver_cond;
    uint64_t next_deliver_seq;

    /* main-thread wake-ups: signals and finished inputs */
    int wake_pipe[2];
    atomic_int inputs_done;
    atomic_bool stop_requested, reopen_requested;
    bool started;

    lsf_counter *c_batches, *c_events_in, *c_events_out, *c_dropped, *c_sink_errors;
};

/* ---- construction ------------------------------------------------------ */

static void list_push(stage_list *l, lsf_stage *st)
{
    lsf_stage **nv = realloc(l->v, (size_t)(l->n + 1) * sizeof(*nv));
    if (!nv)
        lsf_die("out of memory");
    l->v = nv;
    l->v[l->n++] = st;
}

/* Reads a sink's common `codec` key (json|raw) into *codec. */
static int sink_codec(const lsf_node *node, int *codec, lsf_errbuf *err)
{
    const lsf_node *v = lsf_node_get(node, "codec");
    if (!v)
        return 0;
    if (v->kind == LSF_NODE_SCALAR && strcmp(v->str, "json") == 0)
        *codec = LSF_CODEC_JSON;
    else if (v->kind == LSF_NODE_SCALAR && strcmp(v->str, "raw") == 0)
        *codec = LSF_CODEC_RAW;
    else
        return lsf_node_error(err, v, "codec: expected one of %s", LSF_CODEC_CHOICES);
    return 0;
}

static lsf_stage *stage_new(lsf_pipeline *p, const lsf_stage_def *def, const lsf_node *node,
                            const char *name, int index, lsf_errbuf *err)
{
    int codec = LSF_CODEC_JSON;
    if (def->kind == LSF_STAGE_SINK && sink_codec(node, &codec, err) < 0)
        return NULL;
    lsf_stage *st = calloc(1, sizeof(*st));
    if (!st)
        lsf_die("out of memory");
    st->def = def;
    st->codec = codec;
    st->node = node;
    st->index = index;
    st->pipeline = p;
    st->conf = calloc(1, def->conf_size ? def->conf_size : 1);
    st->ctx = calloc(1, def->ctx_size ? def->ctx_size : 1);
    if (!st->conf || !st->ctx)
        lsf_die("out of memory");
    if (name) {
        st->name = strdup(name);
    } else {
        char buf[96];
        /* Numbered across all sections, so an input and a sink of the same
         * type ("file") never share a name, a log prefix or counters. */
        snprintf(buf, sizeof(buf), "%s#%d", def->name,
                 p->inputs.n + p->transforms.n + p->sinks.n);
        st->name = strdup(buf);
    }
    if (!st->name)
        lsf_die("out of memory");
    static const char *const stage_common[] = {"type", "name", NULL};
    static const char *const sink_common[] = {"type", "name", "codec", NULL};
    const char *const *common = def->kind == LSF_STAGE_SINK ? sink_common : stage_common;
    if (def->keys && lsf_conf_bind(st->conf, def->keys, node, common, err) < 0) {
        lsf_conf_free(st->conf, def->keys);
        free(st->conf);
        free(st->ctx);
        free(st->name);
        free(st);
        return NULL;
    }
    if (def->kind == LSF_STAGE_SINK)
        p->codec_used[codec] = true;
    return st;
}

static void stage_free(lsf_stage *st)
{
    if (!st)
        return;
    if (st->def->destroy)
        st->def->destroy(st);
    if (st->def->keys)
        lsf_conf_free(st->conf, st->def->keys);
    free(st->conf);
    free(st->ctx);
    free(st->name);
    free(st);
}

static const char *kind_name(enum lsf_stage_kind k)
{
    return k == LSF_STAGE_INPUT ? "input" : k == LSF_STAGE_TRANSFORM ? "transform" : "sink";
}

/* Builds the stages of one section (`inputs:`, `transforms:`, `sinks:`). */
static int build_section(lsf_pipeline *p, const lsf_node *root, const char *key,
                         enum lsf_stage_kind kind, stage_list *out, lsf_errbuf *err)
{
    const lsf_node *seq = lsf_node_get(root, key);
    if (!seq)
        return 0;
    if (seq->kind != LSF_NODE_SEQ)
        return lsf_node_error(err, seq, "'%s' must be a list of %ss", key, kind_name(kind));
    for (const lsf_node *item = seq->child; item; item = item->next) {
        if (item->kind != LSF_NODE_MAP)
            return lsf_node_error(err, item, "each %s must be a map with a 'type'", kind_name(kind));
        const lsf_node *type = lsf_node_get(item, "type");
        if (!type || type->kind != LSF_NODE_SCALAR)
            return lsf_node_error(err, item, "%s has no 'type'", kind_name(kind));
        const lsf_stage_def *def = NULL;
        for (int i = 0; lsf_stage_registry[i]; i++)
            if (lsf_stage_registry[i]->kind == kind &&
                strcmp(lsf_stage_registry[i]->name, type->str) == 0)
                def = lsf_stage_registry[i];
        if (!def || strcmp(def->name, "parse") == 0)
            return lsf_node_error(err, type, "unknown %s type '%s' (see 'logsift help')",
                                  kind_name(kind), type->str);
        const lsf_node *name = lsf_node_get(item, "name");
        if (name && name->kind != LSF_NODE_SCALAR)
            return lsf_node_error(err, name, "'name' must be a string");
        lsf_stage *st = stage_new(p, def, item, name ? name->str : NULL, out->n, err);
        if (!st)
            return -1;
        list_push(out, st);
    }
    return 0;
}

lsf_pipeline *lsf_pipeline_new(const lsf_node *root, lsf_errbuf *err)
{
    lsf_pipeline *p = calloc(1, sizeof(*p));
    if (!p)
        lsf_die("out of memory");
    pthread_mutex_init(&p->pool_lock, NULL);
    pthread_cond_init(&p->pool_cond, NULL);
    pthread_mutex_init(&p->queue_lock, NULL);
    pthread_cond_init(&p->queue_cond, NULL);
    pthread_mutex_init(&p->deliver_lock, NULL);
    pthread_cond_init(&p->deliver_cond, NULL);
    p->wake_pipe[0] = p->wake_pipe[1] = -1;
    if (pipe2(p->wake_pipe, O_CLOEXEC | O_NONBLOCK) < 0)
        lsf_die("pipe: %s", strerror(errno));

    if (root && root->kind != LSF_NODE_MAP) {
        lsf_node_error(err, root, "the configuration must be a map");
        goto fail;
    }
    if (lsf_conf_bind(&p->conf, lsf_pipeline_keys, root, section_keys, err) < 0)
        goto fail;
    if (lsf_privdrop_check(root, p->conf.user, p->conf.group, err) < 0)
        goto fail;
    lsf_log_threshold = p->conf.log_level;

    const lsf_stage_def *parse_def = lsf_stage_find("parse");
    p->parse = stage_new(p, parse_def, lsf_node_get(root, "parse"), "parse", 0, err);
    if (!p->parse)
        goto fail;
    if (build_section(p, root, "inputs", LSF_STAGE_INPUT, &p->inputs, err) < 0 ||
        build_section(p, root, "transforms", LSF_STAGE_TRANSFORM, &p->transforms, err) < 0 ||
        build_section(p, root, "sinks", LSF_STAGE_SINK, &p->sinks, err) < 0)
        goto fail;
    if (p->inputs.n == 0) {
        lsf_node_error(err, root, "no inputs configured");
        goto fail;
    }
    if (p->sinks.n == 0) {
        lsf_node_error(err, root, "no sinks configured");
        goto fail;
    }
    p->nworkers = (int)p->conf.workers;
    if (p->nworkers <= 0) {
        long n = sysconf(_SC_NPROCESSORS_ONLN);
        p->nworkers = n > 0 ? (int)n : 1;
    }
    p->c_batches = lsf_counter_new("pipeline", "batches");
    p->c_events_in = lsf_counter_new("pipeline", "events_in");
    p->c_events_out = lsf_counter_new("pipeline", "events_out");
    p->c_dropped = lsf_counter_new("pipeline", "events_dropped");
    p->c_sink_errors = lsf_counter_new("pipeline", "sink_errors");
    return p;
fail:
    lsf_pipeline_free(p);
    return NULL;
}

static int init_list(stage_list *l, lsf_errbuf *err)
{
    for (int i = 0; i < l->n; i++)
        if (l->v[i]->def->init && l->v[i]->def->init(l->v[i], err) < 0)
            return -1;
    return 0;
}

int lsf_pipeline_check(lsf_pipeline *p, lsf_errbuf *err)
{
    if (p->parse->def->init && p->parse->def->init(p->parse, err) < 0)
        return -1;
    return init_list(&p->transforms, err);
}

int lsf_pipeline_init(lsf_pipeline *p, lsf_errbuf *err)
{
    p->io = lsf_io_new();
    if (lsf_pipeline_check(p, err) < 0)
        return -1;
    if (init_list(&p->sinks, err) < 0 || init_list(&p->inputs, err) < 0)
        return -1;
    p->nbatches = (int)p->conf.queue_batches;
    for (int i = 0; i < p->nbatches; i++) {
        lsf_batch *b = lsf_batch_new((uint32_t)p->conf.batch_size);
        b->next = p->pool;
        p->pool = b;
    }
    /* Every port is bound and every file open: drop privileges before any
     * input starts (user:/group:, ingest/privdrop.c). */
    return lsf_privdrop(p->conf.user, p->conf.group, err);
}

/* ---- inputs' side ------------------------------------------------------ */

lsf_batch *lsf_pipeline_batch_get(lsf_pipeline *p)
{
    pthread_mutex_lock(&p->pool_lock);
    while (!p->pool)
        pthread_cond_wait(&p->pool_cond, &p->pool_lock);
    lsf_batch *b = p->pool;
    p->pool = b->next;
    pthread_mutex_unlock(&p->pool_lock);
    b->next = NULL;
    return b;
}

static void batch_release(lsf_pipeline *p, lsf_batch *b)
{
    lsf_batch_reset(b);
    pthread_mutex_lock(&p->pool_lock);
    b->next = p->pool;
    p->pool = b;
    pthread_cond_signal(&p->pool_cond);
    pthread_mutex_unlock(&p->pool_lock);
}

void lsf_pipeline_submit(lsf_pipeline *p, lsf_batch *b)
{
    if (b->n == 0) {
        batch_release(p, b);
        return;
    }
    lsf_counter_add(p->c_events_in, b->n);
    b->next = NULL;
    pthread_mutex_lock(&p->queue_lock);
    b->seq = p->next_submit_seq++;
    if (p->qtail)
        p->qtail->next = b;
    else
        p->qhead = b;
    p->qtail = b;
    pthread_cond_signal(&p->queue_cond);
    pthread_mutex_unlock(&p->queue_lock);
}

static void wake_main(lsf_pipeline *p)
{
    char c = 1;
    ssize_t w = write(p->wake_pipe[1], &c, 1);
    (void)w;
}

void lsf_pipeline_input_done(lsf_pipeline *p)
{
    atomic_fetch_add(&p->inputs_done, 1);
    wake_main(p);
}

lsf_io *lsf_pipeline_io(lsf_pipeline *p) { return p->io; }

const lsf_pipeline_conf *lsf_pipeline_settings(const lsf_pipeline *p) { return &p->conf; }

int lsf_pipeline_nworkers(const lsf_pipeline *p) { return p->nworkers; }

int lsf_pipeline_input_format(const lsf_pipeline *p, int index)
{
    if (index < 0 || index >= p->inputs.n)
        return LSF_FMT_NONE;
    return ((const lsf_input_conf *)p->inputs.v[index]->conf)->format;
}

lsf_stage **lsf_pipeline_stages(lsf_pipeline *p, enum lsf_stage_kind kind, int *n)
{
    stage_list *l = kind == LSF_STAGE_INPUT ? &p->inputs
                    : kind == LSF_STAGE_TRANSFORM ? &p->transforms
                                                  : &p->sinks;
    *n = l->n;
    return l->v;
}

/* ---- workers ----------------------------------------------------------- */

static void sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* Runs one stage callback, retrying while it asks for backpressure. */
static int run_stage(lsf_pipeline *p, lsf_stage *st, lsf_batch *b, worker *w)
{
    for (;;) {
        int rc = st->def->kind == LSF_STAGE_SINK ? st->def->deliver(st, b, &w->out[st->codec])
                                                  : st->def->process(st, b, w->index);
        if (rc != LSF_AGAIN)
            return rc;
        sleep_ms(5);
        (void)p;
    }
}

static void deliver_in_order(lsf_pipeline *p, worker *w, lsf_batch *b, uint32_t nlines)
{
    pthread_mutex_lock(&p->deliver_lock);
    while (p->next_deliver_seq != b->seq)
        pthread_cond_wait(&p->deliver_cond, &p->deliver_lock);
    pthread_mutex_unlock(&p->deliver_lock);

    if (nlines) {
        for (int i = 0; i < p->sinks.n; i++)
            if (run_stage(p, p->sinks.v[i], b, w) == LSF_ERR) {
                lsf_counter_add(p->c_sink_errors, 1);
                lsf_ack_fail(b->ack);
            }
    }

    pthread_mutex_lock(&p->deliver_lock);
    p->next_deliver_seq++;
    pthread_cond_broadcast(&p->deliver_cond);
    pthread_mutex_unlock(&p->deliver_lock);
}

static void process_batch(lsf_pipeline *p, worker *w, lsf_batch *b)
{
    /* Raw lines straight to raw sinks need no parsing. */
    if (p->codec_used[LSF_CODEC_JSON] || p->transforms.n)
        run_stage(p, p->parse, b, w);
    for (int i = 0; i < p->transforms.n; i++)
        if (run_stage(p, p->transforms.v[i], b, w) == LSF_ERR)
            lsf_warn("%s: failed on a batch; events continue unchanged", p->transforms.v[i]->name);
    if (p->codec_used[LSF_CODEC_JSON])
        lsf_json_write_batch(&w->out[LSF_CODEC_JSON], b);
    if (p->codec_used[LSF_CODEC_RAW])
        lsf_raw_write_batch(&w->out[LSF_CODEC_RAW], b);
    uint32_t nlines = w->out[p->codec_used[LSF_CODEC_JSON] ? LSF_CODEC_JSON : LSF_CODEC_RAW].nlines;
    lsf_counter_add(p->c_events_out, nlines);
    lsf_counter_add(p->c_dropped, b->n - nlines);
    lsf_counter_add(p->c_batches, 1);
    deliver_in_order(p, w, b, nlines);
}

static void *worker_main(void *arg)
{
    worker *w = arg;
    lsf_pipeline *p = w->p;
    for (;;) {
        pthread_mutex_lock(&p->queue_lock);
        while (!p->qhead && !p->closing)
            pthread_cond_wait(&p->queue_cond, &p->queue_lock);
        lsf_batch *b = p->qhead;
        if (!b) { /* closing and drained */
            pthread_mutex_unlock(&p->queue_lock);
            break;
        }
        p->qhead = b->next;
        if (!p->qhead)
            p->qtail = NULL;
        pthread_mutex_unlock(&p->queue_lock);
        process_batch(p, w, b);
        batch_release(p, b);
    }
    return NULL;
}

int lsf_pipeline_start(lsf_pipeline *p, lsf_errbuf *err)
{
    p->workers = calloc((size_t)p->nworkers, sizeof(worker));
    if (!p->workers)
        lsf_die("out of memory");
    for (int i = 0; i < p->nworkers; i++) {
        worker *w = &p->workers[i];
        w->p = p;
        w->index = i;
        lsf_outbuf_init(&w->out[0]);
        lsf_outbuf_init(&w->out[1]);
        int rc = pthread_create(&w->thread, NULL, worker_main, w);
        if (rc) {
            snprintf(err->msg, sizeof(err->msg), "cannot start worker thread: %s", strerror(rc));
            p->nworkers = i;
            return -1;
        }
    }
    p->started = true;
    for (int i = 0; i < p->inputs.n; i++) {
        lsf_stage *st = p->inputs.v[i];
        if (st->def->start && st->def->start(st) < 0) {
            snprintf(err->msg, sizeof(err->msg), "%s: cannot start", st->name);
            return -1;
        }
    }
    if (lsf_io_start(p->io) < 0) {
        snprintf(err->msg, sizeof(err->msg), "cannot start the I/O thread");
        return -1;
    }
    return 0;
}

/* ---- main thread: waiting, signals, shutdown ---------------------------- */

void lsf_pipeline_request_stop(lsf_pipeline *p)
{
    atomic_store(&p->stop_requested, true);
    wake_main(p);
}

void lsf_pipeline_request_reopen(lsf_pipeline *p)
{
    atomic_store(&p->reopen_requested, true);
    wake_main(p);
}

static void reopen_all(stage_list *l)
{
    for (int i = 0; i < l->n; i++)
        if (l->v[i]->def->reopen)
            l->v[i]->def->reopen(l->v[i]);
}

void lsf_pipeline_wait(lsf_pipeline *p)
{
    for (;;) {
        if (atomic_load(&p->stop_requested))
            return;
        if (atomic_load(&p->inputs_done) >= p->inputs.n)
            return;
        if (atomic_exchange(&p->reopen_requested, false)) {
            lsf_info("reopening files");
            reopen_all(&p->sinks);
            reopen_all(&p->transforms);
            reopen_all(&p->inputs);
        }
        struct pollfd pfd = {.fd = p->wake_pipe[0], .events = POLLIN};
        int rc = poll(&pfd, 1, 1000);
        if (rc > 0) {
            char buf[64];
            while (read(p->wake_pipe[0], buf, sizeof(buf)) > 0)
                ;
        }
    }
}

void lsf_pipeline_stop(lsf_pipeline *p)
{
    if (!p->started)
        return;
    /* 1. No more reading: the I/O thread finishes its round and exits. */
    lsf_io_stop(p->io);
    /* 2. Inputs submit what they accepted (I/O thread is gone, so this is
     *    safe on the main thread). */
    for (int i = 0; i < p->inputs.n; i++)
        if (p->inputs.v[i]->def->stop)
            p->inputs.v[i]->def->stop(p->inputs.v[i]);
    /* 3. Workers drain the queue and exit. */
    pthread_mutex_lock(&p->queue_lock);
    p->closing = true;
    pthread_cond_broadcast(&p->queue_cond);
    pthread_mutex_unlock(&p->queue_lock);
    for (int i = 0; i < p->nworkers; i++)
        pthread_join(p->workers[i].thread, NULL);
    /* 4. Sinks flush. */
    for (int i = 0; i < p->sinks.n; i++)
        if (p->sinks.v[i]->def->flush)
            p->sinks.v[i]->def->flush(p->sinks.v[i]);
    p->started = false;
}

static void free_list(stage_list *l)
{
    for (int i = 0; i < l->n; i++)
        stage_free(l->v[i]);
    free(l->v);
    l->v = NULL;
    l->n = 0;
}

void lsf_pipeline_free(lsf_pipeline *p)
{
    if (!p)
        return;
    if (p->started)
        lsf_pipeline_stop(p);
    free_list(&p->inputs);
    free_list(&p->transforms);
    free_list(&p->sinks);
    stage_free(p->parse);
    for (int i = 0; p->workers && i < p->nworkers; i++)
    {
        lsf_outbuf_deinit(&p->workers[i].out[0]);
        lsf_outbuf_deinit(&p->workers[i].out[1]);
    }
    free(p->workers);
    while (p->pool) {
        lsf_batch *n = p->pool->next;
        lsf_batch_free(p->pool);
        p->pool = n;
    }
    if (p->io)
        lsf_io_free(p->io);
    lsf_conf_free(&p->conf, lsf_pipeline_keys);
    if (p->wake_pipe[0] >= 0) {
        close(p->wake_pipe[0]);
        close(p->wake_pipe[1]);
    }
    pthread_mutex_destroy(&p->pool_lock);
    pthread_cond_destroy(&p->pool_cond);
    pthread_mutex_destroy(&p->queue_lock);
    pthread_cond_destroy(&p->queue_cond);
    pthread_mutex_destroy(&p->deliver_lock);
    pthread_cond_destroy(&p->deliver_cond);
    free(p);
}
