/* leef.c - IBM QRadar Log Event Extended Format 1.0 and 2.0, alone or as a
 * syslog message body:
 *   LEEF:1.0|Vendor|Product|Version|EventID|src=10.0.0.1<TAB>dst=10.0.0.2
 *   LEEF:2.0|Vendor|Product|Version|EventID|^|src=10.0.0.1^dst=10.0.0.2
 *
 * Attributes are separated by a tab (1.0) or by the delimiter that 2.0 may
 * name in a sixth header field (one character, or its code as x09 / 0x09);
 * a value is everything up to the next delimiter. Vendor, product, version
 * and event ID become observer.vendor/.product/.version and event.code;
 * known attributes (src, dst, srcPort, usrName, sev, devTime, ...) their ECS
 * fields (lsf_sec_set, shared with cef.c), the rest leef.<key>.
 * Threads: pure function of (record, options).
 */
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "parsers/parse.h"

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    c = (char)(c | 0x20);
    return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

/* An attribute name: printable ASCII without spaces (anything else is not
 * an attribute, and is left in the message only). */
static bool key_ok(const char *k, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)k[i] <= 32 || (unsigned char)k[i] >= 127)
            return false;
    return true;
}

/* LEEF 2.0's delimiter field: "^", "x5E", "0x5E". -1 if not one. */
static int delimiter(lsf_str d)
{
    if (d.len == 1)
        return (unsigned char)d.ptr[0];
    const char *s = d.ptr;
    size_t n = d.len;
    if (n >= 2 && s[0] == '0' && (s[1] | 0x20) == 'x')
        s += 2, n -= 2;
    else if (n >= 1 && (s[0] | 0x20) == 'x')
        s += 1, n -= 1;
    else
        return -1;
    if (n < 1 || n > 2)
        return -1;
    int v = 0;
    for (size_t i = 0; i < n; i++) {
        int h = hexval(s[i]);
        if (h < 0)
            return -1;
        v = v * 16 + h;
    }
    return v ? v : -1;
}

int lsf_parse_leef(lsf_batch *b, lsf_event *ev, const lsf_parse_opts *opts)
{
    const char *p;
    size_t n;
    if (!lsf_sec_payload(ev, "LEEF:", &p, &n))
        return -1;
    size_t i = 5;
    lsf_str h[5];
    /* The arena copies of escaped header fields are harmless if we bail. */
    for (int f = 0; f < 5; f++)
        if (!lsf_sec_header_field(b, p, n, &i, &h[f]))
            return -1;
    if (h[0].len == 0 || (h[0].ptr[0] != '1' && h[0].ptr[0] != '2'))
        return -1;
    int delim = '\t';
    if (h[0].ptr[0] == '2') {
        /* an optional delimiter field: "X|" right after the event ID */
        size_t j = i;
        lsf_str d;
        if (lsf_sec_header_field(b, p, n, &j, &d) && delimiter(d) >= 0 && !memchr(d.ptr, '=', d.len)) {
            delim = delimiter(d);
            i = j;
        }
    }
    if (ev->format != LSF_FMT_RFC5424 && ev->format != LSF_FMT_RFC3164)
        ev->message = lsf_str_make(p, n);
    lsf_sec_begin(ev, p);
    ev->format = LSF_FMT_LEEF;
    lsf_event_set_str(b, ev, LSF_STR_LIT("leef.version"), h[0]);
    lsf_event_set_str(b, ev, LSF_STR_LIT("observer.vendor"), h[1]);
    lsf_event_set_str(b, ev, LSF_STR_LIT("observer.product"), h[2]);
    lsf_event_set_str(b, ev, LSF_STR_LIT("observer.version"), h[3]);
    lsf_event_set_str(b, ev, LSF_STR_LIT("event.code"), h[4]);
    while (i < n) {
        const char *end = memchr(p + i, delim, n - i);
        size_t e = end ? (size_t)(end - p) : n;
        const char *eq = memchr(p + i, '=', e - i);
        if (eq && eq > p + i && key_ok(p + i, (size_t)(eq - (p + i)))) {
            lsf_str key = lsf_str_make(p + i, (size_t)(eq - (p + i)));
            lsf_str v = lsf_str_make(eq + 1, e - (size_t)(eq + 1 - p));
            if (lsf_str_eq_cstr(key, "sev") && v.len == 1 && v.ptr[0] >= '0' && v.ptr[0] <= '9')
                lsf_event_set_int(b, ev, LSF_STR_LIT("event.severity"), v.ptr[0] - '0');
            else if (lsf_str_eq_cstr(key, "sev") && v.len == 2 && v.ptr[0] == '1' && v.ptr[1] == '0')
                lsf_event_set_int(b, ev, LSF_STR_LIT("event.severity"), 10);
            else if (lsf_str_eq_cstr(key, "msg"))
                ev->message = v;
            else
                lsf_sec_set(b, ev, "leef.", key, v, opts);
        }
        i = e + 1;
    }
    return 0;
}
