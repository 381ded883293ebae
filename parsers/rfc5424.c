/* rfc5424.c - RFC 5424 syslog:
 *   <PRI>1 SP TIMESTAMP SP HOSTNAME SP APP-NAME SP PROCID SP MSGID SP SD [SP MSG]
 *
 * Design: "<PRI>1 " claims the record, as in rsyslog; the header is then
 * parsed leniently, the STRUCTURED-DATA strictly. What happens with bad
 * input, decided once here:
 *  - TIMESTAMP not "-" and not RFC 3339: the header stops there; MSG is the
 *    rest of the record from that field on, the time is the received time,
 *    and the event is flagged LSF_EV_PARSE_FAILURE.
 *  - Record ends inside the header: the fields present are kept, the rest
 *    are absent (no flag; rsyslog accepts this too).
 *  - STRUCTURED-DATA that does not validate (element grammar, quoting, the
 *    \" \\ \] escapes): the header fields are kept, ev->sd stays absent, and
 *    the event is flagged LSF_EV_PARSE_FAILURE; MSG starts where rsyslog
 *    would start it - after the first "]" followed by a space (or the end)
 *    that is not escaped. If there is no such "]", or the field is neither
 *    "-" nor "[", MSG is the rest of the record from that field on. The bad
 *    text stays available in event.original.
 * NILVALUE "-" gives an absent field (ptr NULL). A UTF-8 BOM before MSG is
 * dropped. Zone-less timestamps (not RFC 5424, but seen) take opts' zone.
 * Threads: pure function of (record, options).
 */
#include <stdbool.h>
#include <string.h>

#include "parsers/parse.h"

static bool sdname(unsigned char c)
{
    return c > 32 && c < 127 && c != '=' && c != ']' && c != '"';
}

/* Length of one or more valid SD-ELEMENTs at p followed by a space or the
 * end of the record; 0 when the text is not valid structured data. */
static size_t sd_valid(const char *p, size_t n)
{
    size_t i = 0;
    if (n == 0 || p[0] != '[')
        return 0;
    while (i < n && p[i] == '[') {
        size_t s = ++i;
        while (i < n && sdname((unsigned char)p[i]))
            i++;
        if (i == s)
            return 0; /* SD-ID */
        while (i < n && p[i] == ' ') {
            s = ++i;
            while (i < n && sdname((unsigned char)p[i]))
                i++;
            if (i == s || i + 1 >= n || p[i] != '=' || p[i + 1] != '"')
                return 0; /* PARAM-NAME="  */
            i += 2;
            while (i < n && p[i] != '"')
                i += (p[i] == '\\' && i + 1 < n) ? 2 : 1;
            if (i >= n)
                return 0; /* unterminated PARAM-VALUE */
            i++;
        }
        if (i >= n || p[i] != ']')
            return 0;
        i++;
    }
    return (i == n || p[i] == ' ') ? i : 0;
}

/* rsyslog's view of where a malformed SD ends: after the first "]" that is
 * followed by a space or the end and not escaped. 0 when there is none. */
static size_t sd_lax(const char *p, size_t n)
{
    for (size_t i = 1; i < n; i++) {
        if (p[i] == '\\' && i + 1 < n && p[i + 1] == ']')
            i++;
        else if (p[i] == ']' && (i + 1 == n || p[i + 1] == ' '))
            return i + 1;
    }
    return 0;
}

/* Next SP-terminated header field at *i: NULL slice for "-" or empty;
 * *i moves past the space. Returns false at the end of the record. */
static bool field(const char *p, size_t n, size_t *i, lsf_str *out)
{
    if (*i >= n) {
        *out = LSF_STR_NULL;
        return false;
    }
    size_t s = *i, e = s;
    while (e < n && p[e] != ' ')
        e++;
    *out = (e == s || (e - s == 1 && p[s] == '-')) ? LSF_STR_NULL : lsf_str_make(p + s, e - s);
    *i = e < n ? e + 1 : e;
    return true;
}

int lsf_parse_rfc5424(lsf_batch *b, lsf_event *ev, const lsf_parse_opts *opts)
{
    const char *p = ev->raw.ptr;
    size_t n = lsf_parse_len(ev);
    if (!p)
        return -1;
    int pri;
    int r = lsf_parse_pri(p, n, &pri);
    if (r <= 0)
        return -1;
    size_t i = (size_t)r;
    if (i + 2 > n || p[i] != '1' || p[i + 1] != ' ')
        return -1;
    i += 2;

    ev->pri = (int16_t)pri;
    ev->version = 1;
    ev->format = LSF_FMT_RFC5424;
    ev->host = ev->app = ev->procid = ev->msgid = ev->sd = LSF_STR_NULL;
    ev->time_ns = ev->ingested_ns;
    ev->flags |= LSF_EV_TIME_GUESSED;

    /* TIMESTAMP */
    size_t e = i;
    while (e < n && p[e] != ' ')
        e++;
    if (!(e - i == 1 && p[i] == '-')) {
        int64_t t;
        size_t k = e > i ? lsf_ts_parse_rfc3339(p + i, e - i, opts, &t) : 0;
        if (k == 0 || k != e - i) {
            ev->message = lsf_str_make(p + i, n - i);
            ev->flags |= LSF_EV_PARSE_FAILURE;
            return 0;
        }
        ev->time_ns = t;
        ev->flags &= (uint16_t)~LSF_EV_TIME_GUESSED;
    }
    i = e < n ? e + 1 : e;

    /* HOSTNAME APP-NAME PROCID MSGID */
    if (field(p, n, &i, &ev->host) && field(p, n, &i, &ev->app) && field(p, n, &i, &ev->procid) &&
        field(p, n, &i, &ev->msgid) && i < n) {
        /* STRUCTURED-DATA */
        size_t k;
        if (p[i] == '-' && (i + 1 == n || p[i + 1] == ' ')) {
            i += 1;
        } else if ((k = sd_valid(p + i, n - i)) != 0) {
            ev->sd = lsf_str_make(p + i, k);
            i += k;
        } else {
            ev->flags |= LSF_EV_PARSE_FAILURE;
            if (p[i] == '[' && (k = sd_lax(p + i, n - i)) != 0)
                i += k;
            else
                goto msg; /* MSG from this field on */
        }
        if (i < n && p[i] == ' ')
            i++;
    }
msg:
    if (n - i >= 3 && (unsigned char)p[i] == 0xEF && (unsigned char)p[i + 1] == 0xBB &&
        (unsigned char)p[i + 2] == 0xBF)
        i += 3;
    /* rsyslog relays RFC 3164 messages with the space that followed their
     * tag still in MSG ("... - text" arrives as "...  text"); one such space
     * is dropped so rules anchored at the start of the message still match,
     * as they do on the same line received directly. */
    if (i < n && p[i] == ' ')
        i++;
    ev->message = lsf_str_make(p + i, n - i);
    lsf_parse_body_json(b, ev, opts);
    return 0;
}
