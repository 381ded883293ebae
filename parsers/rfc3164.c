/* rfc3164.c - BSD syslog as real devices send it:
 *   [<PRI>][TIMESTAMP ][HOSTNAME ]TAG[[PID]][:] MSG
 * with RFC 3164 "Mmm dd hh:mm:ss" timestamps and their variants (year, sub-
 * seconds, upper case), RFC 3339 timestamps, no hostname, no timestamp, no
 * PRI, and Cisco "%ASA-6-302013:" tags.
 *
 * Design: the header is split the way rsyslog's pmrfc3164 splits it, so
 * logsift and rsyslog agree on host, tag and MSG for the same bytes: a
 * hostname is a run of [A-Za-z0-9._-] that ends in a letter or digit and is
 * followed by a space (or ends the line); the tag runs to the first ':' or
 * blank. Deliberate differences (tests/fixtures/syslog-vectors-deviations.md):
 * no PRI leaves ev->pri at -1 instead of inventing 13; the tag also ends at
 * a TAB; process.name keeps a '/' ("postfix/smtpd"); IPv6 hostnames are
 * accepted; "last message repeated N times" is a message, not host+tag.
 * A record with neither a PRI nor a timestamp is not RFC 3164 (-1).
 * Threads: pure function of (record, options); see timestamp.c for the
 * per-thread zone cache.
 */
#include <stdbool.h>
#include <string.h>

#include "parsers/parse.h"

#define MAX_HOST 255 /* longer is not a hostname */
#define MAX_TAG 510  /* longer is not a tag (rsyslog's limit) */

static bool alnum(unsigned char c)
{
    return (c >= '0' && c <= '9') || ((c | 0x20) >= 'a' && (c | 0x20) <= 'z');
}

static bool hostch(unsigned char c)
{
    return alnum(c) || c == '.' || c == '_' || c == '-';
}

static bool hexch(unsigned char c)
{
    return (c >= '0' && c <= '9') || ((c | 0x20) >= 'a' && (c | 0x20) <= 'f');
}

/* After a timestamp that ended at j: an optional ':' (Cisco) and then a
 * space or the end of the record. Returns where the rest starts, or 0 when
 * the timestamp is not followed properly. */
static size_t after_ts(const char *p, size_t n, size_t j, bool colon)
{
    if (colon && j < n && p[j] == ':')
        j++;
    if (j == n)
        return j;
    return p[j] == ' ' ? j + 1 : 0;
}

/* Length of a hostname at p (followed by a space or the end), 0 if none. */
static size_t hostname_len(const char *p, size_t n)
{
    size_t h = 0;
    while (h < n && h <= MAX_HOST && hostch((unsigned char)p[h]))
        h++;
    if (h > 0 && h <= MAX_HOST && (h == n || (p[h] == ' ' && alnum((unsigned char)p[h - 1]))))
        return h;
    /* IPv6 literal: hex digits, ':' and '.', with "::" or all 7 colons (so
     * a time such as 12:34:56 is not taken for one). */
    size_t colons = 0;
    bool dbl = false;
    h = 0;
    while (h < n && h <= 45 && (hexch((unsigned char)p[h]) || p[h] == ':' || p[h] == '.')) {
        if (p[h] == ':') {
            colons++;
            dbl |= h > 0 && p[h - 1] == ':';
        }
        h++;
    }
    if ((dbl || colons == 7) && h <= 45 && (h == n || p[h] == ' '))
        return h;
    return 0;
}

/* "last message repeated N times", the whole rest of the line. */
static bool last_repeated(const char *p, size_t n)
{
    static const char pre[] = "last message repeated ";
    size_t k = sizeof(pre) - 1;
    if (n < k + 7 || memcmp(p, pre, k) != 0)
        return false;
    size_t d = k;
    while (d < n && p[d] >= '0' && p[d] <= '9')
        d++;
    return d > k && n - d == 6 && memcmp(p + d, " times", 6) == 0;
}

/* Cisco "%FAC-SEV-MNEMONIC" (e.g. %ASA-6-302013): the mnemonic, or an empty
 * slice when the tag is not of that form. */
static lsf_str cisco_code(lsf_str app)
{
    const char *p = app.ptr;
    size_t n = app.len;
    if (n < 6 || p[0] != '%')
        return LSF_STR_NULL;
    size_t last = n;
    while (last > 0 && p[last - 1] != '-')
        last--;
    if (last < 4 || last == n || p[last - 3] != '-' || p[last - 2] < '0' || p[last - 2] > '7')
        return LSF_STR_NULL;
    for (size_t i = 1; i < n; i++)
        if (!alnum((unsigned char)p[i]) && p[i] != '_' && p[i] != '-')
            return LSF_STR_NULL;
    return lsf_str_make(p + last, n - last);
}

int lsf_parse_rfc3164(lsf_batch *b, lsf_event *ev, const lsf_parse_opts *opts)
{
    const char *p = ev->raw.ptr;
    size_t n = lsf_parse_len(ev);
    if (!p)
        return -1;
    int pri = -1;
    int r = lsf_parse_pri(p, n, &pri);
    if (r < 0)
        return -1; /* rsyslog parses nothing after a bad PRI: raw */
    size_t i = (size_t)r;

    /* TIMESTAMP: RFC 3339, RFC 3164, or RFC 3164 after one stray space
     * (HP ProCurve). */
    int64_t t = 0;
    bool have_t = false;
    size_t k, j;
    if ((k = lsf_ts_parse_rfc3339(p + i, n - i, opts, &t)) && (j = after_ts(p, n, i + k, false))) {
        have_t = true;
        i = j;
    } else if ((k = lsf_ts_parse_3164(p + i, n - i, opts, ev->ingested_ns, &t)) &&
               (j = after_ts(p, n, i + k, true))) {
        have_t = true;
        i = j;
    } else if (i + 1 < n && p[i] == ' ' &&
               (k = lsf_ts_parse_3164(p + i + 1, n - i - 1, opts, ev->ingested_ns, &t)) &&
               (j = after_ts(p, n, i + 1 + k, true))) {
        have_t = true;
        i = j;
    }
    if (pri < 0 && !have_t)
        return -1;

    lsf_str host = LSF_STR_NULL, app = LSF_STR_NULL, procid = LSF_STR_NULL;
    size_t h = i < n && !last_repeated(p + i, n - i) ? hostname_len(p + i, n - i) : 0;
    if (h) {
        host = lsf_str_make(p + i, h);
        i += h;
        if (i < n)
            i++; /* the space */
    }

    if (!last_repeated(p + i, n - i)) {
        size_t s = i, e = i;
        while (e < n && p[e] != ':' && p[e] != ' ' && p[e] != '\t' && e - s <= MAX_TAG)
            e++;
        if (e - s <= MAX_TAG) {
            /* NAME[PID] -> app NAME, procid PID */
            size_t lb = s;
            while (lb < e && p[lb] != '[')
                lb++;
            if (lb > s)
                app = lsf_str_make(p + s, lb - s);
            if (lb < e) {
                size_t rb = lb + 1;
                while (rb < e && p[rb] != ']')
                    rb++;
                if (rb < e && rb > lb + 1)
                    procid = lsf_str_make(p + lb + 1, rb - lb - 1);
            }
            i = e;
            if (i < n && p[i] == ':')
                i++;
            if (i < n && (p[i] == ' ' || p[i] == '\t'))
                i++; /* the separator after the tag is not part of MSG */
        }
    }

    ev->pri = (int16_t)pri;
    ev->host = host;
    ev->app = app;
    ev->procid = procid;
    ev->message = lsf_str_make(p + i, n - i);
    ev->format = LSF_FMT_RFC3164;
    if (have_t) {
        ev->time_ns = t;
    } else {
        ev->time_ns = ev->ingested_ns;
        ev->flags |= LSF_EV_TIME_GUESSED;
    }
    if (app.ptr) {
        lsf_str code = cisco_code(app);
        if (code.ptr)
            lsf_event_set_str(b, ev, LSF_STR_LIT("event.code"), code);
    }
    lsf_parse_body_json(b, ev, opts);
    return 0;
}
