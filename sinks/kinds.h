/* kinds.h - the `kinds` setting of the file and stdout sinks: write only the
 * events whose event.kind is listed (`kinds: [alert]` makes an alerts file;
 * an event without event.kind is of kind "event").
 * Threads: pure functions; the caller owns the scratch buffer.
 */
#ifndef LSF_SINKS_KINDS_H
#define LSF_SINKS_KINDS_H

#include "core/config.h"
#include "core/event.h"
#include "core/stage.h"

#define LSF_KINDS_HELP                                                                          \
    "Write only events whose event.kind is listed (alert, event, pipeline_error, ...; no "     \
    "event.kind counts as event); empty: all."

/* Checks the names (non-empty words); -1 with err at the `kinds` node. */
int lsf_kinds_check(const lsf_strlist *kinds, const lsf_node *at, lsf_errbuf *err);
/* The lines of `out` (one per event of b not dropped, in order) to write:
 * `out` itself when kinds is empty, else `scratch` refilled with the lines
 * of events of a listed kind (nlines says how many). */
const lsf_outbuf *lsf_kinds_filter(const lsf_strlist *kinds, const lsf_batch *b,
                                   const lsf_outbuf *out, lsf_outbuf *scratch);

#endif
