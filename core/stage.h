/* stage.h - the stage interface: inputs, transforms and sinks.
 *
 * Design: every stage is one static lsf_stage_def listed in core/registry.c.
 * The def declares its config keys (validated and bound by core/config.c,
 * printed by `logsift help STAGE`), the size of its conf and context structs,
 * and the callbacks of its kind:
 *   input:     init, start (register fds with the I/O loop or start a
 *              thread), stop (stop reading, submit what was accepted);
 *   transform: init, process (a batch in place, on a worker thread);
 *   sink:      init, deliver (the batch's JSON, in submission order), flush.
 *              When deliver returns, the batch and its JSON are recycled; a
 *              sink that delivers asynchronously copies what it sends and
 *              retains b->ack (lsf_ack_retain) until delivery is confirmed,
 *              so inputs learn when their events are durably delivered.
 * Threads: init/start/stop/destroy run on the main thread; process runs on
 * any worker (per-worker state via `worker` index); deliver runs on one
 * worker at a time, in batch order.
 */
#ifndef LSF_STAGE_H
#define LSF_STAGE_H

#include "config.h"
#include "event.h"

enum lsf_stage_kind { LSF_STAGE_INPUT, LSF_STAGE_TRANSFORM, LSF_STAGE_SINK };

/* What a sink's deliver receives (the common sink key `codec`): the JSON
 * event lines, or each record's raw bytes as one line. The pipeline encodes
 * each codec some sink asks for once per batch. */
enum lsf_codec { LSF_CODEC_JSON = 0, LSF_CODEC_RAW };
#define LSF_CODEC_CHOICES "json|raw"

/* Results of process/deliver. */
enum { LSF_OK = 0, LSF_AGAIN = 1, LSF_ERR = -1 };

typedef struct lsf_pipeline lsf_pipeline;
typedef struct lsf_stage lsf_stage;

/* The JSON lines of one batch: `len` bytes, event i spans
 * [line_off[i], line_off[i+1]) including its '\n'; events dropped by a stage
 * have no line. */
typedef struct lsf_outbuf {
    char *buf;
    size_t len, cap;
    uint32_t *line_off; /* nlines + 1 offsets */
    uint32_t nlines, cap_lines;
} lsf_outbuf;

typedef struct lsf_stage_def {
    const char *name;
    enum lsf_stage_kind kind;
    const char *help;
    const lsf_key *keys;
    size_t conf_size;
    size_t ctx_size;
    int (*init)(lsf_stage *st, lsf_errbuf *err);
    int (*start)(lsf_stage *st);
    void (*stop)(lsf_stage *st);
    int (*process)(lsf_stage *st, lsf_batch *b, int worker);
    int (*deliver)(lsf_stage *st, const lsf_batch *b, const lsf_outbuf *out);
    int (*flush)(lsf_stage *st);
    void (*reopen)(lsf_stage *st); /* SIGHUP: reopen files, reload data */
    void (*destroy)(lsf_stage *st);
} lsf_stage_def;

struct lsf_stage {
    const lsf_stage_def *def;
    void *conf;           /* bound from the config node, def->conf_size */
    void *ctx;            /* zeroed, def->ctx_size, owned by the stage */
    const lsf_node *node; /* config node, for error positions */
    char *name;           /* `name:` from config, or "<type>#<index>" */
    int index;            /* position in its list; for inputs: event.input */
    int codec;            /* sinks: enum lsf_codec, from the `codec` key */
    lsf_pipeline *pipeline;
};

/* Registry: every stage logsift knows. */
extern const lsf_stage_def *const lsf_stage_registry[];
const lsf_stage_def *lsf_stage_find(const char *name);

#endif
