/* parse.h - turning a framed record into an event.
 *
 * Every parser works in place on ev->raw: the slices it sets (message, host,
 * app, procid, msgid, sd, field values) point into ev->raw or into the batch
 * arena. A parser never fails the event: a line nothing understands keeps
 * message = raw, format LSF_FMT_RAW and the LSF_EV_PARSE_FAILURE flag.
 * Threads: parsers are pure functions of (record, options); they run on any
 * worker thread at once.
 */
#ifndef LSF_PARSE_H
#define LSF_PARSE_H

#include <stdbool.h>
#include <stdint.h>

#include "core/event.h"

enum lsf_tz_mode { LSF_TZ_LOCAL = 0, LSF_TZ_UTC, LSF_TZ_FIXED };

typedef struct lsf_parse_opts {
    int format;            /* enum lsf_format; LSF_FMT_NONE = auto-detect per line */
    int tz_mode;           /* zone for timestamps without one (RFC 3164) */
    int32_t tz_offset_s;   /* LSF_TZ_FIXED: seconds east of UTC */
    bool body_json;        /* a syslog MSG that is a JSON object becomes fields */
} lsf_parse_opts;

/* Parses ev->raw by opts->format (or auto-detection) and fills the event.
 * ev->ingested_ns is the reference time for year inference and for events
 * without a timestamp. */
void lsf_parse_event(lsf_batch *b, lsf_event *ev, const lsf_parse_opts *opts);

/* The individual parsers. Each returns 0 when the record is of its format
 * and the event was filled, -1 (event untouched) when it is not. */
int lsf_parse_rfc5424(lsf_batch *b, lsf_event *ev, const lsf_parse_opts *opts);
int lsf_parse_rfc3164(lsf_batch *b, lsf_event *ev, const lsf_parse_opts *opts);
int lsf_parse_json(lsf_batch *b, lsf_event *ev, const lsf_parse_opts *opts);
int lsf_parse_kv(lsf_batch *b, lsf_event *ev, const lsf_parse_opts *opts);

/* Adds the members of the JSON object text `p[0..n)` to ev as fields
 * (nested objects flatten to dotted names, arrays stay JSON). Returns 0, or
 * -1 if the text is not a JSON object (event untouched). */
int lsf_json_object_to_fields(lsf_batch *b, lsf_event *ev, const char *p, size_t n);

/* Timestamps (parsers/timestamp.c). Each returns the number of bytes
 * consumed (0 when the text is not a timestamp of that form) and stores ns
 * since the epoch, UTC. */
size_t lsf_ts_parse_rfc3339(const char *p, size_t n, const lsf_parse_opts *opts, int64_t *out_ns);
/* "Mmm dd hh:mm:ss" (optionally followed by a year or ".fraction");
 * `ref_ns` picks the year: the one that puts the time nearest to ref_ns
 * (Dec 31 received on Jan 1 is last year). */
size_t lsf_ts_parse_3164(const char *p, size_t n, const lsf_parse_opts *opts, int64_t ref_ns,
                         int64_t *out_ns);

#endif
