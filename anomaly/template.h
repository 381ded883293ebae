/* template.h - online log-template mining (a Drain-style fixed-depth tree)
 * and the generic masking it runs on.
 *
 * A template is a message with its variable parts replaced by "<*>":
 * "Failed password for <*> from <*> port <*>". The miner assigns every line
 * to a template in one pass, creating and generalising templates as lines
 * arrive; template.c explains the method, mask.c the tokens.
 *
 * Template ids are 64-bit hashes of the masked text of the first line that
 * created the template, so the same kind of line gets the same id in every
 * run that sees it first in the same masked form, and always after a
 * restore from a snapshot (lsf_miner_save/load).
 *
 * Threads: lsf_miner_add, lsf_miner_memo_add (each memo on one thread),
 * lsf_miner_text, lsf_miner_stats and lsf_miner_bytes may run on any number
 * of threads at once (an internal read-write lock: matching takes the read
 * side, creating or generalising a template the write side; a memo hit
 * takes neither); save/load/free on one thread with no adds running.
 */
#ifndef LSF_ANOMALY_TEMPLATE_H
#define LSF_ANOMALY_TEMPLATE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "anomaly/sbuf.h"

/* ---- mask.c: tokens ---------------------------------------------------- */

#define LSF_MASK_MAX_TOKENS 128

/* One token of a masked line: its text, the separator text before it, and
 * its hash (0 = a variable, printed "<*>"). Offsets index the line. */
typedef struct lsf_mtok {
    uint32_t off, len;
    uint32_t sep_off, sep_len;
    uint64_t h;
} lsf_mtok;

typedef struct lsf_masked {
    lsf_mtok tok[LSF_MASK_MAX_TOKENS];
    uint32_t n;
    uint32_t trail_off; /* text after the last token starts here (to the line's end) */
} lsf_masked;

/* Splits and masks one line (see mask.c for the rules). Never fails: an
 * empty line is one variable token; tokens past LSF_MASK_MAX_TOKENS join
 * the last, which becomes a variable. */
void lsf_mask_line(const char *s, size_t n, lsf_masked *out);

/* ---- template.c: the miner -------------------------------------------- */

typedef struct lsf_miner lsf_miner;

typedef struct lsf_miner_opts {
    uint32_t max_templates; /* most templates held; the least recently used go first */
    double min_similarity;  /* share of positions that must agree (0..1) */
} lsf_miner_opts;

void lsf_miner_opts_default(lsf_miner_opts *o);

typedef struct lsf_template_match {
    uint64_t id;       /* template id */
    uint32_t slot;     /* internal index, for lsf_miner_text until evicted */
    uint64_t count;    /* lines matched by this template, this one included */
    bool created;      /* the line started a new template */
    bool generalised;  /* the line turned a template position into "<*>" */
} lsf_template_match;

/* Never NULL (out of memory aborts). */
lsf_miner *lsf_miner_new(const lsf_miner_opts *o);
void lsf_miner_free(lsf_miner *m);
/* Assigns a line to a template. */
void lsf_miner_add(lsf_miner *m, const char *line, size_t len, lsf_template_match *out);
/* A thread's memo of the lines it mined for miner m (template.c): an exact
 * repeat of a remembered line is answered as lsf_miner_add would answer it,
 * without masking or the tree, while no template changed. */
typedef struct lsf_miner_memo lsf_miner_memo;
lsf_miner_memo *lsf_miner_memo_new(lsf_miner *m); /* never NULL */
void lsf_miner_memo_free(lsf_miner_memo *mm);
/* lsf_miner_add on the memo's miner, asking the memo first. */
void lsf_miner_memo_add(lsf_miner_memo *mm, const char *line, size_t len, lsf_template_match *out);
/* Lines the memo answered. */
uint64_t lsf_miner_memo_hits(const lsf_miner_memo *mm);
/* Writes the current text of the template in `slot` if it still has id `id`
 * (NUL-terminated, truncated to cap). Returns its length, or -1 when the
 * template was evicted. */
int lsf_miner_text(lsf_miner *m, uint32_t slot, uint64_t id, char *buf, size_t cap);
/* Templates held, templates created and evicted since start. */
void lsf_miner_stats(lsf_miner *m, uint64_t *held, uint64_t *created, uint64_t *evicted);
size_t lsf_miner_bytes(lsf_miner *m);
void lsf_miner_save(lsf_miner *m, lsf_wbuf *w);
/* Replaces the miner's templates with a saved set; -1 (miner emptied) when
 * the buffer is malformed. */
int lsf_miner_load(lsf_miner *m, lsf_rbuf *r);

#endif
