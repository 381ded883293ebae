/* multiline.h - joining continuation lines into one record (stack traces).
 *
 * An input that reads a stream of lines (file, TCP) hands each line to an
 * lsf_ml; it emits whole events: the first line of an event and its
 * continuation lines joined with '\n'. Two modes:
 *  - start:  a line matching `start_pattern` (PCRE2) begins a new event,
 *            every other line continues the current one (e.g. a timestamp
 *            starts each log entry);
 *  - indent: a line that begins with a space or a tab continues the current
 *            event, and so do the lines Java and Python write unindented
 *            inside a trace: "Caused by: ...", "... N more",
 *            "Traceback (most recent call last):", Python's "During handling
 *            of the above exception ..." / "The above exception was the
 *            direct cause ...", empty lines (inputs that pass them on), the
 *            first unindented line after a traceback's frames (the
 *            "ValueError: ..." that ends it); `continue_pattern` adds more.
 * An empty line never begins an event. An event is emitted when the next
 * one starts, when it reaches max_lines
 * (the rest continues as a new event) or max_bytes (truncated, flagged, the
 * rest of its lines skipped), and when no line came for `flush_timeout`
 * (lsf_ml_tick), so the last event of a quiet source is not held back.
 *
 * Design: the config is bound once (lsf_ml_conf_bind, with file:line:col
 * errors) and shared read-only; each stream has its own lsf_ml holding the
 * pending event in a buffer it owns. Every line carries an opaque 64-bit
 * tag (the file input passes the offset after the line); an event is emitted
 * with the tag of its last line.
 * Threads: an lsf_ml is used by one thread at a time; a conf is read-only
 * after binding and shared by any number of lsf_ml.
 */
#ifndef LSF_MULTILINE_H
#define LSF_MULTILINE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/config.h"

enum lsf_ml_mode { LSF_ML_START = 0, LSF_ML_INDENT };

typedef struct lsf_ml_conf {
    int mode;             /* enum lsf_ml_mode */
    char *start_pattern;  /* start mode */
    char *continue_pattern;
    int64_t max_lines;
    int64_t max_bytes;    /* 0: the input's max_message_size */
    int64_t timeout_ms;
    void *start_re, *cont_re; /* compiled (pcre2_code *) */
    bool enabled;
} lsf_ml_conf;

/* Binds the `multiline:` map `node` (NULL: multiline off) into c and
 * compiles its patterns. `max_bytes_default` is the input's message size.
 * Returns 0, or -1 with err set to file:line:col. */
int lsf_ml_conf_bind(lsf_ml_conf *c, const lsf_node *node, int64_t max_bytes_default,
                     lsf_errbuf *err);
void lsf_ml_conf_free(lsf_ml_conf *c);
/* Prints the multiline keys for `logsift help`. */
extern const lsf_key lsf_ml_keys[];

/* Receives an event: `len` bytes at `rec` (valid during the call only),
 * truncated when longer than max_bytes, the tag of its last line. */
typedef void (*lsf_ml_emit)(void *arg, const char *rec, size_t len, int truncated, uint64_t tag);

typedef struct lsf_ml {
    const lsf_ml_conf *c;
    void *md;            /* pcre2_match_data * */
    char *buf;           /* pending event */
    size_t len, cap;
    uint32_t nlines;
    uint64_t tag;
    int64_t last_ns;     /* monotonic time of the last line */
    bool truncated;      /* the event is flagged _truncated */
    bool full;           /* max_bytes reached: its further lines are skipped */
    bool in_traceback;   /* indent mode: inside a Python traceback */
    bool prev_indented;  /* indent mode: the last line was indented */
} lsf_ml;

void lsf_ml_init(lsf_ml *m, const lsf_ml_conf *c);
void lsf_ml_deinit(lsf_ml *m);
/* Feeds one line (no terminator). May emit the previous event. */
void lsf_ml_line(lsf_ml *m, const char *line, size_t len, int truncated, uint64_t tag,
                 int64_t now_mono_ns, lsf_ml_emit emit, void *arg);
/* Emits the pending event, if any (end of stream, stop). */
void lsf_ml_flush(lsf_ml *m, lsf_ml_emit emit, void *arg);
/* Emits the pending event if no line came for the flush timeout. Returns
 * true while an event is still pending afterwards. */
bool lsf_ml_tick(lsf_ml *m, int64_t now_mono_ns, lsf_ml_emit emit, void *arg);
/* True when an event is pending. */
static inline bool lsf_ml_pending(const lsf_ml *m)
{
    return m->nlines > 0;
}

#endif
