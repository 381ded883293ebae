/* detect.c - picks the parser for a record and guarantees the result.
 *
 * Design: auto-detection looks at the first byte only, then lets the
 * parsers decide: '<' -> RFC 5424, then RFC 3164; '{' -> JSON; a digit or
 * a month's first letter -> RFC 3164 without PRI (it refuses lines that do
 * not start with a timestamp); "CEF:" / "LEEF:" -> CEF / LEEF; then
 * key=value; else raw. A syslog message whose body is CEF or LEEF is parsed
 * on: the header fields stay, the body's fields are added. A parser that
 * returns -1 leaves the event untouched, so falling through is safe.
 * Whatever happens, the event leaves with a message, a format and a time
 * (the received time, flagged LSF_EV_TIME_GUESSED, when the line had none).
 * Threads: pure function of (record, options).
 */
#include <stdbool.h>

#include "parsers/parse.h"

int lsf_parse_pri(const char *p, size_t n, int *pri)
{
    if (n == 0 || p[0] != '<')
        return 0;
    size_t i = 1;
    int v = 0;
    /* Leading zeros are tolerated as rsyslog does; the value caps the
     * number of significant digits. */
    while (i < n && p[i] >= '0' && p[i] <= '9' && v <= 191) {
        v = v * 10 + (p[i] - '0');
        i++;
    }
    if (i == 1 || i >= n || p[i] != '>' || v > 191)
        return -1;
    *pri = v;
    return (int)(i + 1);
}

static void raw(lsf_event *ev, bool failed)
{
    ev->message = lsf_str_make(ev->raw.ptr ? ev->raw.ptr : "", lsf_parse_len(ev));
    ev->format = LSF_FMT_RAW;
    if (failed)
        ev->flags |= LSF_EV_PARSE_FAILURE;
}

static bool month_letter(char c)
{
    switch (c | 0x20) {
    case 'j': case 'f': case 'm': case 'a': case 's': case 'o': case 'n': case 'd':
        return true;
    default:
        return false;
    }
}

/* A syslog message whose body (or RFC 3164 "tag") starts a CEF or LEEF
 * record is parsed on. */
static void sec_body(lsf_batch *b, lsf_event *ev, const lsf_parse_opts *opts)
{
    char c = ev->app.len ? ev->app.ptr[0] : 0;
    char m = ev->message.len ? ev->message.ptr[0] : 0;
    if (c == 'C' || m == 'C')
        lsf_parse_cef(b, ev, opts);
    else if (c == 'L' || m == 'L')
        lsf_parse_leef(b, ev, opts);
}

/* A fixed cef/leef format: the record itself, or a syslog message whose
 * body is one. A syslog message with another body keeps its header fields
 * and is flagged as a parse failure. */
static int sec(lsf_batch *b, lsf_event *ev, const lsf_parse_opts *opts, int fmt)
{
    int (*parse)(lsf_batch *, lsf_event *, const lsf_parse_opts *) =
        fmt == LSF_FMT_CEF ? lsf_parse_cef : lsf_parse_leef;
    if (parse(b, ev, opts) == 0)
        return 0;
    if (lsf_parse_rfc5424(b, ev, opts) < 0 && lsf_parse_rfc3164(b, ev, opts) < 0)
        return -1;
    if (parse(b, ev, opts) < 0)
        ev->flags |= LSF_EV_PARSE_FAILURE;
    return 0;
}

void lsf_parse_event(lsf_batch *b, lsf_event *ev, const lsf_parse_opts *opts)
{
    static const lsf_parse_opts dflt = {0};
    if (!opts)
        opts = &dflt;
    int ok = -1;
    switch (opts->format) {
    case LSF_FMT_RAW:
        raw(ev, false);
        break;
    case LSF_FMT_RFC5424:
        ok = lsf_parse_rfc5424(b, ev, opts);
        break;
    case LSF_FMT_RFC3164:
        ok = lsf_parse_rfc3164(b, ev, opts);
        break;
    case LSF_FMT_JSON:
        ok = lsf_parse_json(b, ev, opts);
        break;
    case LSF_FMT_KV:
        ok = lsf_parse_kv(b, ev, opts);
        break;
    case LSF_FMT_CEF:
    case LSF_FMT_LEEF:
        ok = sec(b, ev, opts, opts->format);
        break;
    default: {
        size_t n = lsf_parse_len(ev);
        char c = n ? ev->raw.ptr[0] : 0;
        if (c == '<') {
            ok = lsf_parse_rfc5424(b, ev, opts);
            if (ok < 0)
                ok = lsf_parse_rfc3164(b, ev, opts);
        } else if (c == '{') {
            ok = lsf_parse_json(b, ev, opts);
        } else if ((c >= '0' && c <= '9') || month_letter(c)) {
            ok = lsf_parse_rfc3164(b, ev, opts);
        } else if (c == 'C' || c == 'L') {
            ok = c == 'C' ? lsf_parse_cef(b, ev, opts) : lsf_parse_leef(b, ev, opts);
        }
        if (ok == 0 && (ev->format == LSF_FMT_RFC5424 || ev->format == LSF_FMT_RFC3164))
            sec_body(b, ev, opts);
        if (ok < 0 && n)
            ok = lsf_parse_kv(b, ev, opts);
        break;
    }
    }
    if (ok < 0 && opts->format != LSF_FMT_RAW)
        raw(ev, true);
    if (ev->format == LSF_FMT_RAW) {
        ev->time_ns = ev->ingested_ns;
        ev->flags |= LSF_EV_TIME_GUESSED;
    }
}
