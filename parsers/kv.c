/* kv.c - key=value / logfmt lines:
 *   key=value key2="quoted \"value\"" key3= key4='single'
 *
 * Design: two passes over the line, no allocation in the first: the first
 * checks the shape and counts pairs (auto-detection wants a key= at the
 * very start, at least two pairs and no bare words; a configured kv format
 * wants one pair and skips bare words), the second sets the fields. Keys
 * and plain values are slices of the record; only a quoted value with
 * escapes is unescaped into the arena. Values stay strings (no type
 * guessing). msg/message -> message, time/ts/timestamp/@timestamp -> time
 * when parseable, level -> log.level. Without msg/message the whole line
 * stays the message.
 * Threads: pure function of (record, options).
 */
#include <stdbool.h>
#include <string.h>

#include "parsers/parse.h"

static bool blank(char c)
{
    return c == ' ' || c == '\t';
}

static bool keystart(unsigned char c)
{
    return (c >= '0' && c <= '9') || ((c | 0x20) >= 'a' && (c | 0x20) <= 'z') || c == '_' || c == '@';
}

static bool keych(unsigned char c)
{
    return c > 32 && c < 127 && c != '=' && c != '"' && c != '\'';
}

typedef struct pair {
    lsf_str key;
    const char *v; /* value text (inside the quotes) */
    size_t vlen;
    bool esc; /* quoted with backslash escapes */
} pair;

/* Next pair at *i: 1 and *out, 0 at the end, -1 on a bare word or a
 * malformed pair (*i then points at the offending token). */
static int next_pair(const char *p, size_t n, size_t *i, pair *out)
{
    size_t j = *i;
    while (j < n && blank(p[j]))
        j++;
    *i = j;
    if (j == n)
        return 0;
    if (!keystart((unsigned char)p[j]))
        return -1;
    size_t ks = j;
    while (j < n && keych((unsigned char)p[j]))
        j++;
    if (j == n || p[j] != '=')
        return -1;
    out->key = lsf_str_make(p + ks, j - ks);
    out->esc = false;
    j++;
    if (j < n && (p[j] == '"' || p[j] == '\'')) {
        char q = p[j++];
        size_t vs = j;
        while (j < n && p[j] != q) {
            if (p[j] == '\\' && j + 1 < n) {
                out->esc = true;
                j++;
            }
            j++;
        }
        out->v = p + vs;
        out->vlen = j - vs;
        if (j < n)
            j++; /* closing quote; an unterminated one runs to the end */
        if (j < n && !blank(p[j]))
            return -1;
    } else {
        size_t vs = j;
        while (j < n && !blank(p[j]))
            j++;
        out->v = p + vs;
        out->vlen = j - vs;
    }
    *i = j;
    return 1;
}

static void skip_token(const char *p, size_t n, size_t *i)
{
    while (*i < n && !blank(p[*i]))
        (*i)++;
}

static lsf_str value(lsf_batch *b, const pair *pr)
{
    if (!pr->esc)
        return lsf_str_make(pr->v, pr->vlen);
    char *out = lsf_arena_alloc(&b->arena, pr->vlen ? pr->vlen : 1);
    size_t o = 0;
    for (size_t k = 0; k < pr->vlen; k++) {
        char c = pr->v[k];
        if (c == '\\' && k + 1 < pr->vlen) {
            char e = pr->v[++k];
            switch (e) {
            case 'n': c = '\n'; break;
            case 't': c = '\t'; break;
            case 'r': c = '\r'; break;
            case '\\':
            case '"':
            case '\'': c = e; break;
            default: out[o++] = '\\'; c = e; break;
            }
        }
        out[o++] = c;
    }
    return lsf_str_make(out, o);
}

static bool is_time_key(lsf_str k)
{
    return lsf_str_eq_cstr(k, "time") || lsf_str_eq_cstr(k, "ts") || lsf_str_eq_cstr(k, "timestamp") ||
           lsf_str_eq_cstr(k, "@timestamp");
}

int lsf_parse_kv(lsf_batch *b, lsf_event *ev, const lsf_parse_opts *opts)
{
    const char *p = ev->raw.ptr;
    size_t n = lsf_parse_len(ev);
    if (!p)
        return -1;
    bool strict = !opts || opts->format == LSF_FMT_NONE;
    if (n == 0 || (strict && !keystart((unsigned char)p[0])))
        return -1;

    size_t i = 0, npairs = 0;
    pair pr;
    int r;
    while ((r = next_pair(p, n, &i, &pr)) != 0) {
        if (r < 0) {
            if (strict)
                return -1;
            skip_token(p, n, &i);
            continue;
        }
        npairs++;
    }
    if (npairs < (strict ? 2u : 1u))
        return -1;

    ev->format = LSF_FMT_KV;
    ev->message = lsf_str_make(p, n);
    ev->time_ns = ev->ingested_ns;
    ev->flags |= LSF_EV_TIME_GUESSED;
    bool have_message = false, have_msg = false, have_time = false;
    i = 0;
    while ((r = next_pair(p, n, &i, &pr)) != 0) {
        if (r < 0) {
            skip_token(p, n, &i);
            continue;
        }
        lsf_str v = value(b, &pr);
        lsf_str k = pr.key;
        int64_t t;
        if (lsf_str_eq_cstr(k, "message")) {
            if (have_msg && !have_message)
                lsf_event_set_str(b, ev, LSF_STR_LIT("msg"), ev->message);
            ev->message = v;
            have_message = true;
        } else if (lsf_str_eq_cstr(k, "msg") && !have_message) {
            ev->message = v;
            have_msg = true;
        } else if (!have_time && is_time_key(k) && v.len &&
                   (lsf_ts_parse_rfc3339(v.ptr, v.len, opts, &t) == v.len ||
                    lsf_ts_parse_epoch(v.ptr, v.len, &t) == v.len ||
                    lsf_ts_parse_3164(v.ptr, v.len, opts, ev->ingested_ns, &t) == v.len)) {
            ev->time_ns = t;
            ev->flags &= (uint16_t)~LSF_EV_TIME_GUESSED;
            have_time = true;
        } else if (lsf_str_eq_cstr(k, "level")) {
            lsf_event_set_str(b, ev, LSF_STR_LIT("log.level"), v);
        } else {
            lsf_event_set_str(b, ev, k, v);
        }
    }
    return 0;
}
