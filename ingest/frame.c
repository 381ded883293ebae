/* frame.c - newline and RFC 6587 octet-counted framing (rules in frame.h).
 *
 * Design: a small state machine over a caller-owned buffer; records are
 * handed out as pointers into that buffer, so the only copy of a record's
 * bytes on the way in is the one the callback makes into the batch arena.
 * Threads: none of its own; one framer per thread at a time.
 */
#include "frame.h"

#include <string.h>

enum { ST_START, ST_SKIP_LINE, ST_SKIP_OCTETS };

/* Outcome of reading an octet-count header. */
enum { HDR_OK, HDR_BAD, HDR_MORE };

void lsf_frame_init(lsf_framer *f, enum lsf_framing mode, size_t max_bytes, lsf_frame_stats *stats)
{
    memset(f, 0, sizeof(*f));
    f->mode = (uint8_t)mode;
    f->max_bytes = max_bytes ? max_bytes : 1;
    f->stats = stats;
    f->state = ST_START;
}

void lsf_frame_reset(lsf_framer *f)
{
    f->state = ST_START;
    f->skip = 0;
    f->scanned = 0;
    f->after_octet = false;
}

static bool is_digit(char c)
{
    return c >= '0' && c <= '9';
}

/* Reads "LEN SP" at p (and, when `want_pri`, checks MSG starts with '<'). */
static int header(const char *p, const char *end, bool want_pri, uint64_t *msglen, size_t *hdrlen)
{
    if (p == end)
        return HDR_MORE;
    if (!is_digit(*p) || *p == '0')
        return HDR_BAD;
    uint64_t v = 0;
    size_t i = 0;
    while (p + i < end && is_digit(p[i])) {
        if (i == LSF_FRAME_MAX_DIGITS)
            return HDR_BAD;
        v = v * 10 + (uint64_t)(p[i] - '0');
        i++;
    }
    if (p + i == end)
        return HDR_MORE;
    if (p[i] != ' ')
        return HDR_BAD;
    if (want_pri) {
        if (p + i + 1 == end)
            return HDR_MORE;
        if (p[i + 1] != '<')
            return HDR_BAD;
    }
    *msglen = v;
    *hdrlen = i + 1;
    return HDR_OK;
}

static void emit(lsf_framer *f, const char *rec, size_t len, int truncated, lsf_frame_cb cb, void *arg)
{
    f->stats->records++;
    if (truncated)
        f->stats->truncated++;
    cb(arg, rec, len, truncated);
}

/* Emits a line without its terminator (one '\r' already stripped by the
 * caller when it was before '\n'). */
static void emit_line(lsf_framer *f, const char *rec, size_t len, bool bad, lsf_frame_cb cb, void *arg)
{
    if (len == 0) {
        f->stats->empty++;
        return;
    }
    if (bad)
        f->stats->bad_count++;
    if (len > f->max_bytes)
        emit(f, rec, f->max_bytes, 1, cb, arg);
    else
        emit(f, rec, len, 0, cb, arg);
}

/* Emits a complete octet-counted MSG (at most max_bytes). */
static void emit_msg(lsf_framer *f, const char *rec, size_t len, lsf_frame_cb cb, void *arg)
{
    if (len && rec[len - 1] == '\n') {
        len--;
        if (len && rec[len - 1] == '\r')
            len--;
    }
    if (len == 0) {
        f->stats->empty++;
        return;
    }
    emit(f, rec, len, 0, cb, arg);
}

size_t lsf_frame_feed(lsf_framer *f, const char *buf, size_t len, lsf_frame_cb cb, void *arg)
{
    const char *p = buf, *end = buf + len;
    const size_t max = f->max_bytes;

    for (;;) {
        if (f->state == ST_SKIP_OCTETS) {
            size_t n = (size_t)(end - p);
            if (f->skip < n)
                n = (size_t)f->skip;
            p += n;
            f->skip -= n;
            if (f->skip)
                return len;
            f->state = ST_START;
            f->after_octet = true;
        }
        if (f->state == ST_SKIP_LINE) {
            const char *nl = memchr(p, '\n', (size_t)(end - p));
            if (!nl)
                return len;
            p = nl + 1;
            f->state = ST_START;
        }
        if (p == end)
            return (size_t)(p - buf);

        /* ST_START: a new frame begins at p. */
        if (f->after_octet) {
            if (*p == '\n') {
                p++;
                f->after_octet = false;
                continue;
            }
            if (*p == '\r') {
                if (end - p < 2)
                    return (size_t)(p - buf);
                if (p[1] == '\n') {
                    p += 2;
                    f->after_octet = false;
                    continue;
                }
            }
            f->after_octet = false;
        }

        bool bad = false;
        if (f->mode == LSF_FRAMING_OCTET ||
            (f->mode == LSF_FRAMING_AUTO && is_digit(*p) && f->scanned == 0)) {
            uint64_t msglen = 0;
            size_t hdr = 0;
            int r = header(p, end, f->mode == LSF_FRAMING_AUTO, &msglen, &hdr);
            if (r == HDR_MORE)
                return (size_t)(p - buf);
            if (r == HDR_OK) {
                size_t avail = (size_t)(end - p) - hdr;
                if (msglen <= max) {
                    if (avail < msglen)
                        return (size_t)(p - buf);
                    emit_msg(f, p + hdr, (size_t)msglen, cb, arg);
                    p += hdr + msglen;
                    f->after_octet = true;
                } else {
                    if (avail < max)
                        return (size_t)(p - buf);
                    emit(f, p + hdr, max, 1, cb, arg);
                    p += hdr + max;
                    f->skip = msglen - max;
                    f->state = ST_SKIP_OCTETS;
                }
                continue;
            }
            /* Not a valid count: this frame is a line. */
            bad = f->mode == LSF_FRAMING_OCTET; /* counted unless the line is empty */
        }

        /* Newline framing. f->scanned bytes of this line were searched. */
        const char *from = p + f->scanned;
        const char *nl = memchr(from, '\n', (size_t)(end - from));
        if (nl) {
            size_t n = (size_t)(nl - p);
            if (n && p[n - 1] == '\r')
                n--;
            f->scanned = 0;
            emit_line(f, p, n, bad, cb, arg);
            p = nl + 1;
            continue;
        }
        size_t tail = (size_t)(end - p);
        if (tail > max + 1 || (tail == max + 1 && p[max] != '\r')) {
            /* Longer than max whatever follows: emit the head, skip the rest. */
            if (bad)
                f->stats->bad_count++;
            emit(f, p, max, 1, cb, arg);
            f->scanned = 0;
            f->state = ST_SKIP_LINE;
            return len;
        }
        /* Partial line: wait for more. A header decision in octet mode is
         * stable, so the scan can resume where it stopped. */
        f->scanned = tail;
        return (size_t)(p - buf);
    }
}

void lsf_frame_finish(lsf_framer *f, const char *buf, size_t len, lsf_frame_cb cb, void *arg)
{
    size_t used = lsf_frame_feed(f, buf, len, cb, arg);
    const char *p = buf + used, *end = buf + len;

    if (p < end && f->state == ST_START) {
        bool octet = false, bad = false;
        if (f->after_octet && end - p == 1 && *p == '\r') {
            /* The first half of a frame trailer. */
        } else {
            if (f->mode == LSF_FRAMING_OCTET) {
                uint64_t msglen;
                size_t hdr;
                int r = header(p, end, false, &msglen, &hdr);
                /* A complete header means the MSG is short; an all-digit
                 * tail is a header cut short. Either way: incomplete. */
                octet = r != HDR_BAD;
                bad = !octet;
            } else if (f->mode == LSF_FRAMING_AUTO && f->scanned == 0 && is_digit(*p)) {
                uint64_t msglen;
                size_t hdr;
                /* Only "LEN SP <..." is a frame; "123" or "12 " at the end
                 * of the stream is a line. */
                octet = header(p, end, true, &msglen, &hdr) == HDR_OK;
            }
            if (octet) {
                f->stats->incomplete++;
            } else {
                size_t n = (size_t)(end - p);
                if (n && p[n - 1] == '\r')
                    n--;
                emit_line(f, p, n, bad, cb, arg);
            }
        }
    }
    lsf_frame_reset(f);
}
