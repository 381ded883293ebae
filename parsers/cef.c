/* cef.c - ArcSight Common Event Format, alone or as a syslog message body:
 *   CEF:0|Vendor|Product|1.0|SignatureID|Name|Severity|src=10.0.0.1 spt=1234 msg=a b c
 *
 * Header fields are split on unescaped '|' ("\|" and "\\" are escapes);
 * extension values run to the next " key=" (so they may hold spaces) with
 * "\=", "\\", "\n", "\r" unescaped. Fields get Elastic Common Schema names,
 * as Filebeat's CEF decoder names them: vendor/product/version ->
 * observer.vendor/.product/.version, the signature ID -> event.code, the
 * name -> message (unless a msg extension is there) and cef.name, severity
 * -> event.severity (0-10; Low/Medium/High/Very-High -> 3/6/8/10); the common
 * extensions (src, dst, spt, suser, act, rt, ...) map to their ECS fields
 * (lsf_sec_map, shared with leef.c) and the others stay as
 * cef.extensions.<key>. Values are slices of the record unless unescaped.
 * Threads: pure function of (record, options).
 */
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "parsers/parse.h"

/* ---- shared with leef.c ------------------------------------------------------- */

typedef struct sec_key {
    const char *key, *ecs;
    char type; /* 's' string, 'i' integer (string when not numeric), 'l' lower-case, 't' time */
} sec_key;

/* Keys of CEF extensions and LEEF attributes that have an ECS name. */
static const sec_key sec_keys[] = {
    {"src", "source.ip", 's'},          {"dst", "destination.ip", 's'},
    {"spt", "source.port", 'i'},        {"dpt", "destination.port", 'i'},
    {"srcPort", "source.port", 'i'},    {"dstPort", "destination.port", 'i'},
    {"smac", "source.mac", 's'},        {"dmac", "destination.mac", 's'},
    {"srcMAC", "source.mac", 's'},      {"dstMAC", "destination.mac", 's'},
    {"shost", "source.domain", 's'},    {"dhost", "destination.domain", 's'},
    {"suser", "source.user.name", 's'}, {"duser", "destination.user.name", 's'},
    {"usrName", "user.name", 's'},      {"sntdom", "source.user.domain", 's'},
    {"in", "source.bytes", 'i'},        {"out", "destination.bytes", 'i'},
    {"srcBytes", "source.bytes", 'i'},  {"dstBytes", "destination.bytes", 'i'},
    {"srcPackets", "source.packets", 'i'}, {"dstPackets", "destination.packets", 'i'},
    {"proto", "network.transport", 'l'}, {"app", "network.protocol", 'l'},
    {"act", "event.action", 's'},       {"action", "event.action", 's'},
    {"outcome", "event.outcome", 'l'},  {"reason", "event.reason", 's'},
    {"request", "url.original", 's'},   {"url", "url.original", 's'},
    {"requestMethod", "http.request.method", 's'},
    {"requestClientApplication", "user_agent.original", 's'},
    {"fname", "file.name", 's'},        {"filePath", "file.path", 's'},
    {"fsize", "file.size", 'i'},        {"fileHash", "file.hash.sha256", 's'},
    {"sproc", "process.name", 's'},     {"spid", "process.pid", 'i'},
    {"dproc", "process.name", 's'},     {"dpid", "process.pid", 'i'},
    {"dvc", "observer.ip", 's'},        {"dvchost", "observer.hostname", 's'},
    {"identHostName", "host.hostname", 's'},
    {"cnt", "event.count", 'i'},        {"rt", "@timestamp", 't'},
    {"devTime", "@timestamp", 't'},     {"end", "event.end", 's'},
    {"start", "event.start", 's'},      {"externalId", "event.id", 's'},
    {"deviceExternalId", "observer.name", 's'},
    {NULL, NULL, 0},
};

static bool all_digits(lsf_str v)
{
    if (v.len == 0 || v.len > 18)
        return false;
    for (uint32_t i = 0; i < v.len; i++)
        if (v.ptr[i] < '0' || v.ptr[i] > '9')
            return false;
    return true;
}

static int64_t to_int(lsf_str v)
{
    int64_t x = 0;
    for (uint32_t i = 0; i < v.len; i++)
        x = x * 10 + (v.ptr[i] - '0');
    return x;
}

/* Sets key=v on ev: under its ECS name when it has one (typed), else under
 * `prefix` + key (the name copied into the arena). Time keys set the
 * event's time when they parse. */
void lsf_sec_set(lsf_batch *b, lsf_event *ev, const char *prefix, lsf_str key, lsf_str v,
                 const lsf_parse_opts *opts)
{
    for (const sec_key *k = sec_keys; k->key; k++) {
        if (!lsf_str_eq_cstr(key, k->key))
            continue;
        lsf_str name = lsf_str_make(k->ecs, strlen(k->ecs));
        if (k->type == 'i' && all_digits(v)) {
            lsf_event_set_int(b, ev, name, to_int(v));
        } else if (k->type == 'l') {
            char *low = lsf_arena_alloc(&b->arena, v.len ? v.len : 1);
            for (uint32_t i = 0; i < v.len; i++)
                low[i] = (v.ptr[i] >= 'A' && v.ptr[i] <= 'Z') ? (char)(v.ptr[i] | 0x20) : v.ptr[i];
            lsf_event_set_str(b, ev, name, lsf_str_make(low, v.len));
        } else if (k->type == 't') {
            int64_t t;
            if (v.len && (lsf_ts_parse_epoch(v.ptr, v.len, &t) == v.len ||
                          lsf_ts_parse_rfc3339(v.ptr, v.len, opts, &t) == v.len ||
                          lsf_ts_parse_3164(v.ptr, v.len, opts, ev->ingested_ns, &t) == v.len)) {
                ev->time_ns = t;
                ev->flags &= (uint16_t)~LSF_EV_TIME_GUESSED;
            } else {
                break; /* kept under its own name */
            }
        } else {
            lsf_event_set_str(b, ev, name, v);
        }
        return;
    }
    size_t pl = strlen(prefix);
    char *nm = lsf_arena_alloc(&b->arena, pl + key.len);
    memcpy(nm, prefix, pl);
    memcpy(nm + pl, key.ptr, key.len);
    lsf_event_set_str(b, ev, lsf_str_make(nm, pl + key.len), v);
}

/* Where a CEF or LEEF record starts: the whole record, or the message of
 * an event a syslog parser already filled. Returns false when it does not
 * start with `magic`. */
bool lsf_sec_payload(const lsf_event *ev, const char *magic, const char **p, size_t *n)
{
    size_t m = strlen(magic);
    if (ev->format == LSF_FMT_RFC5424 || ev->format == LSF_FMT_RFC3164) {
        *p = ev->message.ptr;
        *n = ev->message.len;
        /* RFC 3164 reads "host CEF:0|..." as the tag "CEF" and the message
         * "0|...": the record goes on from the tag. */
        if (ev->app.ptr && ev->app.len == m - 1 && memcmp(ev->app.ptr, magic, m - 1) == 0 &&
            ev->raw.ptr && ev->app.ptr >= ev->raw.ptr &&
            ev->app.ptr + m <= ev->raw.ptr + lsf_parse_len(ev) && ev->app.ptr[m - 1] == ':') {
            *p = ev->app.ptr;
            *n = (size_t)(ev->raw.ptr + lsf_parse_len(ev) - ev->app.ptr);
        }
    } else {
        *p = ev->raw.ptr;
        *n = lsf_parse_len(ev);
    }
    return *p && *n >= m && memcmp(*p, magic, m) == 0;
}

/* Before a CEF/LEEF record at p fills ev: a record of its own gets the
 * received time (its rt/devTime may set it); a syslog tag that was the
 * record's magic ("CEF") is not a process name. */
void lsf_sec_begin(lsf_event *ev, const char *p)
{
    if (ev->format != LSF_FMT_RFC5424 && ev->format != LSF_FMT_RFC3164) {
        ev->time_ns = ev->ingested_ns;
        ev->flags |= LSF_EV_TIME_GUESSED;
    } else if (ev->app.ptr == p) {
        ev->app = LSF_STR_NULL;
    }
}

/* Splits the header field at *i up to an unescaped '|'. Escaped text is
 * copied (unescaped) into the arena. Returns false at the end of the
 * text (no '|'). */
bool lsf_sec_header_field(lsf_batch *b, const char *p, size_t n, size_t *i, lsf_str *out)
{
    size_t s = *i, j = s;
    bool esc = false;
    while (j < n && p[j] != '|') {
        if (p[j] == '\\' && j + 1 < n) {
            esc = true;
            j++;
        }
        j++;
    }
    if (j >= n)
        return false;
    if (!esc) {
        *out = lsf_str_make(p + s, j - s);
    } else {
        char *d = lsf_arena_alloc(&b->arena, j - s);
        size_t o = 0;
        for (size_t k = s; k < j; k++) {
            if (p[k] == '\\' && k + 1 < j && (p[k + 1] == '|' || p[k + 1] == '\\'))
                k++;
            d[o++] = p[k];
        }
        *out = lsf_str_make(d, o);
    }
    *i = j + 1;
    return true;
}

/* ---- CEF ------------------------------------------------------------------------ */

static bool cef_keych(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
           c == '.' || c == '-' || c == '[' || c == ']';
}

/* Is p[j..] the start of " key=" (j at the space)? Returns the key's end. */
static size_t next_key_at(const char *p, size_t n, size_t j)
{
    size_t k = j + 1;
    while (k < n && cef_keych(p[k]))
        k++;
    return k > j + 1 && k < n && p[k] == '=' ? k : 0;
}

static lsf_str cef_unescape(lsf_batch *b, const char *p, size_t n)
{
    if (!memchr(p, '\\', n))
        return lsf_str_make(p, n);
    char *d = lsf_arena_alloc(&b->arena, n ? n : 1);
    size_t o = 0;
    for (size_t k = 0; k < n; k++) {
        char c = p[k];
        if (c == '\\' && k + 1 < n) {
            char e = p[++k];
            c = e == 'n' ? '\n' : e == 'r' ? '\r' : e;
        }
        d[o++] = c;
    }
    return lsf_str_make(d, o);
}

static void cef_severity(lsf_batch *b, lsf_event *ev, lsf_str s)
{
    static const struct { const char *name; int v; } words[] = {
        {"Unknown", 0}, {"Low", 3}, {"Medium", 6}, {"High", 8}, {"Very-High", 10}, {"Very High", 10}};
    if (all_digits(s)) {
        lsf_event_set_int(b, ev, LSF_STR_LIT("event.severity"), to_int(s));
        return;
    }
    for (size_t i = 0; i < sizeof(words) / sizeof(words[0]); i++)
        if (s.len == strlen(words[i].name) && strncasecmp(s.ptr, words[i].name, s.len) == 0) {
            lsf_event_set_int(b, ev, LSF_STR_LIT("event.severity"), words[i].v);
            return;
        }
    lsf_event_set_str(b, ev, LSF_STR_LIT("cef.severity"), s);
}

int lsf_parse_cef(lsf_batch *b, lsf_event *ev, const lsf_parse_opts *opts)
{
    const char *p;
    size_t n;
    if (!lsf_sec_payload(ev, "CEF:", &p, &n))
        return -1;
    /* Check the shape before touching the event: 7 header fields. */
    size_t i = 4, bars = 0;
    for (size_t j = i; j < n && bars < 7; j++) {
        if (p[j] == '\\' && j + 1 < n)
            j++;
        else if (p[j] == '|')
            bars++;
    }
    if (bars < 7)
        return -1;
    lsf_str h[7];
    for (int f = 0; f < 7; f++)
        lsf_sec_header_field(b, p, n, &i, &h[f]);
    if (!all_digits(h[0]))
        return -1;
    lsf_sec_begin(ev, p);
    ev->format = LSF_FMT_CEF;
    lsf_event_set_int(b, ev, LSF_STR_LIT("cef.version"), to_int(h[0]));
    lsf_event_set_str(b, ev, LSF_STR_LIT("observer.vendor"), h[1]);
    lsf_event_set_str(b, ev, LSF_STR_LIT("observer.product"), h[2]);
    lsf_event_set_str(b, ev, LSF_STR_LIT("observer.version"), h[3]);
    lsf_event_set_str(b, ev, LSF_STR_LIT("event.code"), h[4]);
    lsf_event_set_str(b, ev, LSF_STR_LIT("cef.name"), h[5]);
    ev->message = h[5];
    cef_severity(b, ev, h[6]);

    /* Extension: key=value pairs; a value ends before the next " key=". */
    while (i < n) {
        while (i < n && p[i] == ' ')
            i++;
        size_t ks = i;
        while (i < n && cef_keych(p[i]))
            i++;
        if (i == ks || i >= n || p[i] != '=') {
            /* not a pair: keep the rest whole rather than guess */
            lsf_event_set_str(b, ev, LSF_STR_LIT("cef.extension_unparsed"), lsf_str_make(p + ks, n - ks));
            break;
        }
        lsf_str key = lsf_str_make(p + ks, i - ks);
        size_t vs = ++i, ve = n;
        for (size_t j = vs; j < n; j++) {
            if (p[j] == '\\' && j + 1 < n) {
                j++;
                continue;
            }
            if (p[j] == ' ' && next_key_at(p, n, j)) {
                ve = j;
                break;
            }
        }
        i = ve;
        while (ve > vs && p[ve - 1] == ' ')
            ve--;
        lsf_str v = cef_unescape(b, p + vs, ve - vs);
        if (lsf_str_eq_cstr(key, "msg"))
            ev->message = v;
        else
            lsf_sec_set(b, ev, "cef.extensions.", key, v, opts);
    }
    return 0;
}
