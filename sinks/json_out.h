/* json_out.h - the one place events become JSON text.
 *
 * Design: an event is serialised exactly once per batch into an lsf_outbuf
 * that every sink shares. Output is always valid UTF-8 JSON: control
 * characters are escaped, invalid UTF-8 bytes are written as the text \xNN.
 * Dotted field names become nested objects ("source.ip" -> {"source":{"ip":..}}).
 * Threads: pure functions; one outbuf per worker.
 */
#ifndef LSF_JSON_OUT_H
#define LSF_JSON_OUT_H

#include "core/event.h"
#include "core/stage.h"

void lsf_outbuf_init(lsf_outbuf *o);
void lsf_outbuf_deinit(lsf_outbuf *o);
void lsf_outbuf_reset(lsf_outbuf *o);
/* Makes room for n more bytes (aborts on out of memory). */
void lsf_outbuf_reserve(lsf_outbuf *o, size_t n);
void lsf_outbuf_append(lsf_outbuf *o, const void *p, size_t n);

/* Appends `s` as a JSON string (with quotes), escaping as described above. */
void lsf_json_write_string(lsf_outbuf *o, const char *s, size_t n);
/* Appends one event as a single JSON object line ending in '\n'. */
void lsf_json_write_event(lsf_outbuf *o, const lsf_event *ev);
/* The same bytes, always through the node tree that merges dynamic fields
 * into the fixed ones (lsf_json_write_event writes the fixed fields
 * directly when no dynamic field shares their names): the reference the
 * tests hold the direct path to. */
void lsf_json_write_event_tree(lsf_outbuf *o, const lsf_event *ev);
/* Resets `o` and writes every event of `b` not flagged LSF_EV_DROPPED,
 * recording line offsets. */
void lsf_json_write_batch(lsf_outbuf *o, const lsf_batch *b);

/* Resets `o` and writes the raw record of every event not flagged
 * LSF_EV_DROPPED as one line (line breaks inside a record become spaces),
 * recording line offsets: the `raw` codec. */
void lsf_raw_write_batch(lsf_outbuf *o, const lsf_batch *b);

/* Formats ns since the epoch as RFC 3339 UTC with microseconds
 * ("2026-03-03T10:00:01.000000Z") into buf (>= 32 bytes); returns length. */
size_t lsf_format_rfc3339_utc(int64_t ns, char *buf);

#endif
