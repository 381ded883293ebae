/* frame.h - cutting a byte stream into syslog records.
 *
 * A framer turns the bytes of one stream (a TCP connection, stdin, a file)
 * into records: newline-delimited lines, RFC 6587 octet-counted frames
 * ("LEN SP MSG"), or either, decided again at the start of every frame.
 *
 * Design: the framer owns no buffer. The caller reads into its own buffer,
 * calls lsf_frame_feed(), gets each complete record through the callback as
 * a pointer into that buffer (the callback copies it once, into the batch
 * arena), and keeps the unconsumed tail (a partial frame). On the next call
 * it presents that same tail followed by the new bytes. The tail is always
 * shorter than lsf_frame_buf_min(), so a buffer of that size always has room
 * to read more. The framer remembers how much of the tail it has already
 * searched, so a long line arriving in small pieces is scanned once.
 *
 * Rules (the unit tests pin each one down):
 *  - Newline framing: a record ends at '\n'; one '\r' before it is dropped.
 *    Empty lines are skipped and counted.
 *  - Octet counting: "LEN SP MSG", LEN a decimal without leading zeros of at
 *    most LSF_FRAME_MAX_DIGITS digits; exactly LEN bytes form the record
 *    (one trailing "\n" or "\r\n" inside MSG is dropped). A single "\n" or
 *    "\r\n" right after a frame is treated as a trailer some senders add, not
 *    as an empty line.
 *  - auto: a frame starting with "DIGITS SP <" is octet-counted (MSG of a
 *    syslog message starts with "<PRI>"; requiring it keeps a plain line
 *    such as "200 OK" from being misread as a 200-byte frame); anything else
 *    is a line.
 *  - octet_counted: a frame whose header is not a valid count (no SP, a
 *    leading zero, too many digits) is read as one newline-framed record and
 *    counted in `bad_count`; the next frame is tried as octet-counted again.
 *    Nothing is dropped silently.
 *  - Longer than max_bytes: the first max_bytes bytes are emitted with
 *    truncated=1 and the rest of that record is skipped (up to its '\n', or
 *    exactly LEN bytes), never split into further records.
 *  - A lying count cannot be detected: a short one ends the record early and
 *    the remainder is framed as the next record; a long one swallows what
 *    follows (truncated at max_bytes). That is what the sender asked for.
 *  - End of stream (lsf_frame_finish): a partial line is emitted as a record
 *    (the sender closed right after it: nothing says it is incomplete, and
 *    dropping it would lose the last line of every file without a final
 *    newline). A partial octet-counted frame or header is counted in
 *    `incomplete` and dropped: its length says it is incomplete (a frame
 *    already emitted truncated is not counted again).
 *
 * Threads: a framer is used by one thread at a time; framers sharing one
 * lsf_frame_stats must be used by the same thread.
 */
#ifndef LSF_FRAME_H
#define LSF_FRAME_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum lsf_framing { LSF_FRAMING_AUTO = 0, LSF_FRAMING_NEWLINE, LSF_FRAMING_OCTET };
/* Choices string for an LSF_K_ENUM key, in enum order. */
#define LSF_FRAMING_CHOICES "auto|newline|octet_counted"

/* Longest accepted octet count (9,999,999,999 bytes). */
#define LSF_FRAME_MAX_DIGITS 10
/* A partial frame (the tail) is always shorter than max_bytes + this. */
#define LSF_FRAME_SLACK 16

/* Plain counters, harvested and reset by the owner of the framer. */
typedef struct lsf_frame_stats {
    uint64_t records;    /* records emitted, truncated ones included */
    uint64_t truncated;  /* records cut at max_bytes */
    uint64_t empty;      /* empty lines skipped */
    uint64_t incomplete; /* partial octet-counted frames dropped at the end */
    uint64_t bad_count;  /* octet_counted mode: invalid header, read as a line */
} lsf_frame_stats;

/* Receives one record: `len` bytes at `rec` (inside the buffer given to
 * feed/finish, valid only during the call, not NUL-terminated, may contain
 * NUL bytes). */
typedef void (*lsf_frame_cb)(void *arg, const char *rec, size_t len, int truncated);

typedef struct lsf_framer {
    size_t max_bytes;      /* longest record */
    uint64_t skip;         /* octet-counted: bytes of a truncated MSG left to skip */
    size_t scanned;        /* bytes of the pending line known to hold no '\n' */
    lsf_frame_stats *stats;
    uint8_t mode;          /* enum lsf_framing */
    uint8_t state;         /* private */
    bool after_octet;      /* the previous frame was octet-counted */
} lsf_framer;

/* Sets up a framer. `max_bytes` >= 1; `stats` must outlive the framer and
 * may be shared (see Threads). */
void lsf_frame_init(lsf_framer *f, enum lsf_framing mode, size_t max_bytes, lsf_frame_stats *stats);

/* Smallest caller buffer that always has room after the tail. */
static inline size_t lsf_frame_buf_min(const lsf_framer *f)
{
    return f->max_bytes + LSF_FRAME_SLACK;
}

/* Frames buf[0..len): calls cb for every complete record and returns the
 * number of bytes consumed. The caller keeps buf[ret..len) and presents it
 * again, followed by new bytes, on the next call. len - ret is always
 * < lsf_frame_buf_min(f). */
size_t lsf_frame_feed(lsf_framer *f, const char *buf, size_t len, lsf_frame_cb cb, void *arg);

/* End of stream: frames buf[0..len) (the tail plus any last bytes), emits a
 * trailing partial line as a record, counts a partial octet-counted frame in
 * stats->incomplete, and resets the framer for a new stream. */
void lsf_frame_finish(lsf_framer *f, const char *buf, size_t len, lsf_frame_cb cb, void *arg);

/* Forgets any partial frame without emitting it (e.g. after the file under
 * a tailer was truncated). Counts nothing. */
void lsf_frame_reset(lsf_framer *f);

#endif
