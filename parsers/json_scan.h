/* json_scan.h - a validating, zero-copy JSON scanner for the JSON parser.
 *
 * Design: logs are parsed at line rate, so there is no document tree: the
 * scanner walks the text once, validates it strictly (RFC 8259, UTF-8,
 * depth-limited) and hands out values as slices of the input. A string is
 * a slice too unless it has escapes; only then is it decoded into the batch
 * arena. Objects and arrays are returned as their raw text span, which is
 * valid JSON by the time the scan returned, and can be scanned again.
 * Threads: pure functions.
 */
#ifndef LSF_JSON_SCAN_H
#define LSF_JSON_SCAN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/event.h"

enum lsf_jkind { LSF_J_STR, LSF_J_INT, LSF_J_FLOAT, LSF_J_TRUE, LSF_J_FALSE, LSF_J_NULL, LSF_J_OBJ,
                 LSF_J_ARR };

typedef struct lsf_jval {
    enum lsf_jkind kind;
    lsf_str raw; /* the value's text in the input */
    lsf_str s;   /* LSF_J_STR: decoded string (input slice or arena copy) */
    int64_t i;   /* LSF_J_INT */
    double f;    /* LSF_J_FLOAT (also integers that overflow int64) */
} lsf_jval;

/* Called for each member of an object, in document order. */
typedef void (*lsf_jmember_cb)(void *arg, lsf_str key, const lsf_jval *v);

/* Scans the object text p[0..n) (leading and trailing whitespace allowed,
 * nothing else after the object) and calls cb for each top-level member.
 * Escaped strings are decoded into `arena`. Returns 0, or -1 when the text
 * is not exactly one valid JSON object (cb may already have been called for
 * earlier members: callers collect first and act after success). */
int lsf_json_scan_object(const char *p, size_t n, lsf_arena *arena, lsf_jmember_cb cb, void *arg);

/* Returns valid JSON text `raw` without the whitespace outside its strings:
 * `raw` itself when it has none, else a copy in `arena`. */
lsf_str lsf_json_compact(lsf_arena *arena, lsf_str raw);

#endif
