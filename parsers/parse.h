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

/* CEF (parsers/cef.c) and LEEF (parsers/leef.c): the record, or the
 * message of an event a syslog parser filled (ev->format RFC 5424/3164),
 * must start with "CEF:" / "LEEF:". Same return convention; on success
 * ev->format is LSF_FMT_CEF / LSF_FMT_LEEF and the syslog header fields
 * are kept. */
int lsf_parse_cef(lsf_batch *b, lsf_event *ev, const lsf_parse_opts *opts);
int lsf_parse_leef(lsf_batch *b, lsf_event *ev, const lsf_parse_opts *opts);
/* Helpers the two share (cef.c). lsf_sec_payload finds the text to parse;
 * lsf_sec_begin prepares the event once the header checked out;
 * lsf_sec_header_field reads one '|'-terminated header field ("\|"
 * escapes); lsf_sec_set sets an extension/attribute under its ECS name or
 * prefix+key. */
bool lsf_sec_payload(const lsf_event *ev, const char *magic, const char **p, size_t *n);
void lsf_sec_begin(lsf_event *ev, const char *p);
bool lsf_sec_header_field(lsf_batch *b, const char *p, size_t n, size_t *i, lsf_str *out);
void lsf_sec_set(lsf_batch *b, lsf_event *ev, const char *prefix, lsf_str key, lsf_str v,
                 const lsf_parse_opts *opts);

/* Adds the members of the JSON object text `p[0..n)` to ev as fields
 * (nested objects flatten to dotted names, arrays stay JSON). Returns 0, or
 * -1 if the text is not a JSON object (event untouched). */
int lsf_json_object_to_fields(lsf_batch *b, lsf_event *ev, const char *p, size_t n);

/* Timestamps (parsers/timestamp.c). Each returns the number of bytes
 * consumed (0 when the text is not a timestamp of that form) and stores ns
 * since the epoch, UTC. */
size_t lsf_ts_parse_rfc3339(const char *p, size_t n, const lsf_parse_opts *opts, int64_t *out_ns);
/* RFC 3339 / ISO 8601: "YYYY-MM-DD(T|SP)hh:mm:ss[.frac][Z|+hh:mm|+hhmm]";
 * without a zone the time is in opts' zone (NULL opts: UTC). */
/* "Mmm dd hh:mm:ss" with the variants devices send: "Mmm dd yyyy hh:mm:ss",
 * "yyyy Mmm dd hh:mm:ss", ".fraction" after the seconds, any case of the
 * month, one-digit day. Time is in opts' zone. Without a year, the latest
 * year that puts the time at most 62 days after `ref_ns` is taken (logs come
 * from the past: "Mar 3" received in November is this year's, "Dec 31"
 * received on Jan 1 last year's). The trailing ':' or space is not consumed. */
size_t lsf_ts_parse_3164(const char *p, size_t n, const lsf_parse_opts *opts, int64_t ref_ns,
                         int64_t *out_ns);
/* Epoch time as text, "1530576000[.123]" (at least 9 integer digits);
 * seconds, milliseconds, microseconds or nanoseconds by magnitude
 * (< 1e11 s, < 1e14 ms, < 1e17 us, else ns). Same return convention. */
size_t lsf_ts_parse_epoch(const char *p, size_t n, int64_t *out_ns);
/* The same for a number (JSON): 0, or -1 when out of range. */
int lsf_ts_from_epoch(double v, int64_t *out_ns);

/* ---- helpers shared by the parsers ---------------------------------------- */

/* Length of ev->raw without the trailing CR, LF and NUL bytes, which are
 * never part of the message. */
static inline size_t lsf_parse_len(const lsf_event *ev)
{
    size_t n = ev->raw.ptr ? ev->raw.len : 0;
    while (n && (ev->raw.ptr[n - 1] == '\n' || ev->raw.ptr[n - 1] == '\r' || ev->raw.ptr[n - 1] == 0))
        n--;
    return n;
}

/* Reads a syslog PRI "<n>" at p. Returns the bytes it spans with *pri set,
 * 0 when p does not start with '<', -1 when the <...> is not a valid PRI
 * (no digits, no '>', or a value above 191), as rsyslog judges it. */
int lsf_parse_pri(const char *p, size_t n, int *pri);

/* The body of a syslog message as fields: when opts->body_json is set and
 * ev->message is a JSON object, optionally after a "@cee:" cookie, its
 * members become fields and its message/msg member the message. The syslog
 * header keeps precedence: host and time are taken from the body only when
 * the header had none. */
void lsf_parse_body_json(lsf_batch *b, lsf_event *ev, const lsf_parse_opts *opts);

#endif
