/* pipeline.h - wires inputs, workers and sinks together.
 *
 * Design: a fixed pool of batches bounds memory. Inputs take an empty batch
 * from the pool (blocking when none is free: that is backpressure, TCP
 * inputs stop reading), fill it with records and submit it. N worker threads
 * take submitted batches, run the transforms (parse first) and serialise
 * JSON once, then hand it to every sink in submission order, and return the
 * batch to the pool.
 * Threads: lsf_pipeline_batch_get / submit from any input thread; the rest
 * from the main thread.
 */
#ifndef LSF_PIPELINE_H
#define LSF_PIPELINE_H

#include <stdbool.h>

#include "config.h"
#include "event.h"
#include "ioloop.h"
#include "stage.h"

/* Settings from the top level of the config. */
typedef struct lsf_pipeline_conf {
    int64_t workers;       /* 0: one per core */
    int64_t batch_size;    /* events per batch */
    int64_t queue_batches; /* batches in flight between inputs and workers */
    int log_level;
    char *state_dir;       /* where stages keep state (checkpoints, spool) */
    char *user, *group;    /* run as these after init (ingest/privdrop.c); NULL: stay */
} lsf_pipeline_conf;

extern const lsf_key lsf_pipeline_keys[];

/* Every input's conf struct starts with this. */
typedef struct lsf_input_conf {
    int format; /* enum lsf_format; 0 = auto */
} lsf_input_conf;

#define LSF_INPUT_FORMATS "auto|rfc5424|rfc3164|json|kv|cef|leef|raw"
#define LSF_INPUT_KEYS(type)                                                                      \
    {"format", LSF_K_ENUM, "auto",                                                                \
     "How to parse records: auto-detect per line, or one fixed format.",                         \
     offsetof(type, common.format), LSF_INPUT_FORMATS, 0, 0, false}

/* Builds a pipeline from a config tree (NULL: built-in defaults). Stages are
 * created and their config bound and validated, but nothing is started.
 * Returns NULL with err set ("file:line:col: message"). */
lsf_pipeline *lsf_pipeline_new(const lsf_node *root, lsf_errbuf *err);
/* Validates without side effects: initialises the parse stage and the
 * transforms (which compile rules), not inputs or sinks. */
int lsf_pipeline_check(lsf_pipeline *p, lsf_errbuf *err);
/* Runs init of every stage (binds ports, opens files). */
int lsf_pipeline_init(lsf_pipeline *p, lsf_errbuf *err);
/* Starts workers, the I/O loop and inputs. */
int lsf_pipeline_start(lsf_pipeline *p, lsf_errbuf *err);
/* Blocks until every finite input has finished or lsf_pipeline_request_stop. */
void lsf_pipeline_wait(lsf_pipeline *p);
/* Async-signal-safe: asks for shutdown. */
void lsf_pipeline_request_stop(lsf_pipeline *p);
/* Async-signal-safe: asks sinks and stages to reopen their files. */
void lsf_pipeline_request_reopen(lsf_pipeline *p);
/* Stops inputs (they submit what they accepted), drains workers, flushes
 * sinks. */
void lsf_pipeline_stop(lsf_pipeline *p);
void lsf_pipeline_free(lsf_pipeline *p);

/* ---- for inputs ---- */
/* An empty batch from the pool; blocks while none is free. Never NULL. */
lsf_batch *lsf_pipeline_batch_get(lsf_pipeline *p);
/* Hands a batch to the workers (takes ownership). An empty batch simply
 * returns to the pool. */
void lsf_pipeline_submit(lsf_pipeline *p, lsf_batch *b);
/* A finite input (stdin, a file read once) reached its end. */
void lsf_pipeline_input_done(lsf_pipeline *p);
lsf_io *lsf_pipeline_io(lsf_pipeline *p);
const lsf_pipeline_conf *lsf_pipeline_settings(const lsf_pipeline *p);
/* Number of worker threads (valid after lsf_pipeline_new); transforms size
 * their per-worker state with it and index it by process()'s `worker`. */
int lsf_pipeline_nworkers(const lsf_pipeline *p);
/* Input `index`'s configured record format (enum lsf_format). */
int lsf_pipeline_input_format(const lsf_pipeline *p, int index);
/* The stages of a kind, in config order. */
lsf_stage **lsf_pipeline_stages(lsf_pipeline *p, enum lsf_stage_kind kind, int *n);

#endif
