/* json_out.c - serialises events to JSON lines (see json_out.h).
 *
 * What it writes, per event, one line (absent fields are omitted; a NULL
 * slice is absent, an empty slice is written as ""):
 *   @timestamp              time_ns, or ingested_ns when time_ns is 0
 *   event.ingested          ingested_ns (omitted when 0)
 *   message, host.name (host), process.name (app)
 *   process.pid             procid when it is 1-19 digits that fit an int64
 *   log.syslog.priority, .facility.code/.name, .severity.code/.name (pri >= 0)
 *   log.syslog.hostname/.appname/.procid/.msgid, .version (version > 0)
 *   log.syslog.structured_data   sd as {SD-ID: {param: value | [values]}}
 *   log.source.address      source_addr
 *   tags                    "_parse_failure", "_truncated", then ev->tags
 * then the dynamic fields, merged into the same objects by dotted name.
 *
 * The fast path to know first: unless a dynamic field collides with a
 * fixed one (needs_tree), the fixed fields are written straight out
 * (put_fixed) and only the dynamic fields go through the tree below, the
 * members they add to the fixed objects (log.level, event.action) written
 * inside them; the bytes are the same (tests hold the two paths to each
 * other).
 *
 * The one design choice to know: each event is first described as a small
 * tree of nodes (on the stack; fixed fields are linked in directly, only
 * dynamic names are looked up component by component, and the components a
 * name shares with the previous one are not looked up again; siblings are
 * compared by an 8-byte key signature, the root's from an array) and the
 * tree is then written in one pass. Merge rules, in order:
 *   1. A name written twice: the first one wins. Fixed fields come first, so
 *      a dynamic field with the name of a present fixed field is skipped; a
 *      dynamic field fills the slot of an absent fixed one (e.g. process.pid
 *      when procid is not numeric).
 *   2. A name that is both a leaf and an object prefix (`a` and `a.b`): the
 *      leaf keeps the key and everything below it is written flat, at the
 *      same level, with its remaining dotted key: "a":1,"a.b":2. This holds
 *      whichever came first, fixed or dynamic (a dynamic `host` leaf turns
 *      host.name into "host":"x","host.name":"web1").
 *   3. Names are split into at most MAX_DEPTH levels; the rest of a deeper
 *      name stays one dotted key.
 * These rules give valid JSON without duplicate keys for any set of names.
 *
 * Strings: runs of safe bytes are copied sixteen at a time (SSE2; eight
 * with a word-at-a-time test elsewhere), a string under 16 bytes with
 * nothing to escape with two overlapping loads; `"` `\` and control characters
 * are escaped (\n \t \r \b \f, others \u00XX); valid UTF-8 is copied as is;
 * each byte that is not part of a valid sequence (overlong, surrogate,
 * > U+10FFFF, truncated, stray continuation, C0 C1 F5-FF) becomes the text
 * \xNN (upper-case hex; in JSON "\\xNN").
 *
 * Structured data: elements are parsed up to the first malformed one (or up
 * to MAX_SD_ELEMS elements / MAX_SD_PARAMS params); what parsed is written,
 * the rest is dropped, so the field is always an object. The parser has
 * validated SD already, so this only guards against other stages. A param
 * repeated within an SD-ID becomes an array of its values; an SD-ID repeated
 * in the text (invalid per RFC 5424) is merged into one object. SD text "-"
 * (NILVALUE) counts as absent.
 *
 * LSF_T_JSON values are copied verbatim, except that CR and LF become spaces
 * so the event stays on one line (raw newlines can only be whitespace in
 * valid JSON); an empty one is written as null.
 *
 * Numbers: integers two digits at a time; a float that "%.15g" writes
 * exactly and without exponent is formatted directly (f64_short), others
 * with snprintf. Times: the date and time of a second are formatted once
 * and kept (two per thread: @timestamp and event.ingested), only the
 * microseconds change per event.
 *
 * Threads: no shared state but that per-thread time cache; one outbuf per
 * thread.
 */
#include "sinks/json_out.h"

#include <math.h>
#if defined(__SSE2__)
#include <emmintrin.h>
#endif
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/log.h"
#include "core/numtext.h"

#define MAX_DEPTH 16     /* levels a dotted name is split into */
#define STACK_NODES 128  /* tree nodes on the stack; more falls back to malloc */
#define FIXED_NODES 32   /* upper bound of nodes the fixed fields need */
#define MAX_SD_ELEMS 64
#define MAX_SD_PARAMS 128
#define SHRINK_BYTES ((size_t)64 << 20) /* reset frees a buffer larger than this */

/* ---- outbuf ------------------------------------------------------------- */

void lsf_outbuf_init(lsf_outbuf *o)
{
    memset(o, 0, sizeof(*o));
}

void lsf_outbuf_deinit(lsf_outbuf *o)
{
    free(o->buf);
    free(o->line_off);
    memset(o, 0, sizeof(*o));
}

/* Forgets the content. A buffer that grew past SHRINK_BYTES (one huge batch)
 * is released so it does not stay pinned for ever. */
void lsf_outbuf_reset(lsf_outbuf *o)
{
    if (o->cap > SHRINK_BYTES) {
        free(o->buf);
        o->buf = NULL;
        o->cap = 0;
    }
    o->len = 0;
    o->nlines = 0;
    if (o->line_off)
        o->line_off[0] = 0;
}

static void grow(lsf_outbuf *o, size_t n)
{
    size_t cap = o->cap ? o->cap : 4096;
    if (n > SIZE_MAX / 2 - o->len)
        lsf_die("output buffer overflow (%zu + %zu bytes)", o->len, n);
    while (cap - o->len < n)
        cap *= 2;
    char *nb = realloc(o->buf, cap);
    if (!nb)
        lsf_die("out of memory (output buffer of %zu bytes)", cap);
    o->buf = nb;
    o->cap = cap;
}

/* Room for n more bytes; returns the write position. */
static inline char *room(lsf_outbuf *o, size_t n)
{
    if (o->cap - o->len < n)
        grow(o, n);
    return o->buf + o->len;
}

void lsf_outbuf_reserve(lsf_outbuf *o, size_t n)
{
    room(o, n);
}

void lsf_outbuf_append(lsf_outbuf *o, const void *p, size_t n)
{
    if (!n)
        return;
    char *d = room(o, n);
    memcpy(d, p, n);
    o->len += n;
}

static inline void put(lsf_outbuf *o, const char *p, size_t n)
{
    char *d = room(o, n);
    memcpy(d, p, n);
    o->len += n;
}

static inline void put1(lsf_outbuf *o, char c)
{
    char *d = room(o, 1);
    *d = c;
    o->len++;
}

#define PUT_LIT(o, s) put((o), (s), sizeof(s) - 1)

/* ---- strings ------------------------------------------------------------ */

/* For bytes < 0x80: 0 = copy, otherwise the escape letter ('u' = \u00XX).
 * For bytes >= 0x80: 'U' = check for a UTF-8 sequence. */
static const unsigned char esc_class[256] = {
    ['\b'] = 'b', ['\t'] = 't', ['\n'] = 'n', ['\f'] = 'f', ['\r'] = 'r',
    [0x00] = 'u', [0x01] = 'u', [0x02] = 'u', [0x03] = 'u', [0x04] = 'u', [0x05] = 'u',
    [0x06] = 'u', [0x07] = 'u', [0x0b] = 'u', [0x0e] = 'u', [0x0f] = 'u', [0x10] = 'u',
    [0x11] = 'u', [0x12] = 'u', [0x13] = 'u', [0x14] = 'u', [0x15] = 'u', [0x16] = 'u',
    [0x17] = 'u', [0x18] = 'u', [0x19] = 'u', [0x1a] = 'u', [0x1b] = 'u', [0x1c] = 'u',
    [0x1d] = 'u', [0x1e] = 'u', [0x1f] = 'u', ['"'] = '"', ['\\'] = '\\',
    [0x80 ... 0xff] = 'U',
};

static const char hex_lower[] = "0123456789abcdef";
static const char hex_upper[] = "0123456789ABCDEF";

/* Length of the valid UTF-8 sequence starting at s (lead byte >= 0x80), or 0
 * when the lead byte does not start one (Unicode 15, table 3-7). */
static inline size_t utf8_len(const unsigned char *s, const unsigned char *e)
{
    unsigned c = s[0];
    size_t avail = (size_t)(e - s);
    if (c < 0xC2)
        return 0; /* continuation byte or overlong 2-byte lead */
    if (c < 0xE0)
        return (avail >= 2 && (s[1] & 0xC0) == 0x80) ? 2 : 0;
    if (c < 0xF0) {
        unsigned lo = c == 0xE0 ? 0xA0 : 0x80; /* E0: no overlongs */
        unsigned hi = c == 0xED ? 0x9F : 0xBF; /* ED: no surrogates */
        return (avail >= 3 && s[1] >= lo && s[1] <= hi && (s[2] & 0xC0) == 0x80) ? 3 : 0;
    }
    if (c < 0xF5) {
        unsigned lo = c == 0xF0 ? 0x90 : 0x80; /* F0: no overlongs */
        unsigned hi = c == 0xF4 ? 0x8F : 0xBF; /* F4: nothing past U+10FFFF */
        return (avail >= 4 && s[1] >= lo && s[1] <= hi && (s[2] & 0xC0) == 0x80 &&
                (s[3] & 0xC0) == 0x80)
                   ? 4
                   : 0;
    }
    return 0;
}

#if defined(__SSE2__)
#define VEC_SCAN 1
/* Bit i set when byte i of v needs care: one signed compare with 0x20 finds
 * both the control characters and the bytes >= 0x80. */
static inline unsigned special16(__m128i v)
{
    __m128i m = _mm_or_si128(_mm_cmplt_epi8(v, _mm_set1_epi8(0x20)),
                             _mm_or_si128(_mm_cmpeq_epi8(v, _mm_set1_epi8('"')),
                                          _mm_cmpeq_epi8(v, _mm_set1_epi8('\\'))));
    return (unsigned)_mm_movemask_epi8(m);
}
#else
/* High bit set in each byte of w that is < 0x20, '"', '\\' or >= 0x80. No
 * byte is flagged when none of them is one of those; otherwise the lowest
 * flagged byte (in memory order, on little-endian machines) is always a true
 * one: borrows only run upwards from a flagged byte. */
static inline uint64_t special_bytes(uint64_t w)
{
    const uint64_t ones = 0x0101010101010101ull, high = 0x8080808080808080ull;
    uint64_t q = w ^ (ones * '"');
    uint64_t b = w ^ (ones * '\\');
    uint64_t m = ((w - ones * 0x20) & ~w) | ((q - ones) & ~q) | ((b - ones) & ~b) | w;
    return m & high;
}
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
#define WORD_SCAN 1
#endif
#endif

/* Writes the escape of the byte at s, which needs care (esc_class != 0), or
 * copies the valid UTF-8 sequence it starts; returns the input consumed. */
static size_t esc_one(char **dp, const unsigned char *s, const unsigned char *e)
{
    char *d = *dp;
    unsigned c = *s;
    unsigned cls = esc_class[c];
    size_t used = 1;
    if (cls == 'U') {
        size_t n = utf8_len(s, e);
        if (n) {
            for (size_t k = 0; k < n; k++) /* 2 to 4 bytes */
                d[k] = (char)s[k];
            d += n;
            used = n;
        } else {
            d[0] = '\\';
            d[1] = '\\';
            d[2] = 'x';
            d[3] = hex_upper[c >> 4];
            d[4] = hex_upper[c & 15];
            d += 5;
        }
    } else if (cls == 'u') {
        memcpy(d, "\\u00", 4);
        d[4] = hex_lower[c >> 4];
        d[5] = hex_lower[c & 15];
        d += 6;
    } else {
        d[0] = '\\';
        d[1] = (char)cls;
        d += 2;
    }
    *dp = d;
    return used;
}

/* The general case of esc(). Safe bytes go sixteen (SSE2) or eight at a time;
 * the last partial block is a load of the last sixteen bytes, shifted, as
 * long as the output since `clean` (the end of the last escape) is a plain
 * copy of the input, so storing the overlap again changes nothing. */
static char *esc_long(char *d, const unsigned char *s, const unsigned char *e)
{
#ifdef VEC_SCAN
    const unsigned char *clean = s;
#endif
    for (;;) {
#if defined(VEC_SCAN)
        while (e - s >= 16) {
            __m128i v = _mm_loadu_si128((const __m128i *)(const void *)s);
            _mm_storeu_si128((__m128i *)(void *)d, v); /* room: >= 6 bytes per input byte */
            unsigned m = special16(v);
            if (m) {
                unsigned k = (unsigned)__builtin_ctz(m);
                s += k;
                d += k;
                goto special;
            }
            s += 16;
            d += 16;
        }
        if (s >= e)
            return d;
        if (e - clean >= 16) {
            unsigned skip = 16 - (unsigned)(e - s);
            __m128i v = _mm_loadu_si128((const __m128i *)(const void *)(e - 16));
            _mm_storeu_si128((__m128i *)(void *)(d - skip), v);
            unsigned m = special16(v) >> skip;
            if (!m)
                return d + (e - s);
            unsigned k = (unsigned)__builtin_ctz(m);
            s += k;
            d += k;
            goto special;
        }
#elif defined(WORD_SCAN)
        while (e - s >= 8) {
            uint64_t w;
            memcpy(&w, s, 8);
            memcpy(d, &w, 8);
            uint64_t m = special_bytes(w);
            if (m) {
                unsigned k = (unsigned)__builtin_ctzll(m) >> 3;
                s += k;
                d += k;
                goto special;
            }
            s += 8;
            d += 8;
        }
#endif
        while (s < e && !esc_class[*s])
            *d++ = (char)*s++;
        if (s >= e)
            return d;
    special:
        s += esc_one(&d, s, e);
#ifdef VEC_SCAN
        clean = s;
#endif
    }
}

/* Writes the escaped bytes of [s, e) at d, which has room for 6 bytes per
 * input byte plus 16 (esc_room); returns the new end. A string shorter than
 * 16 bytes with nothing to escape (most keys and values) is tested and
 * copied with two overlapping loads, never reading outside [s, e). */
static inline __attribute__((always_inline)) char *esc(char *d, const unsigned char *s,
                                                       const unsigned char *e)
{
    size_t n = (size_t)(e - s);
    if (n >= 16)
        return esc_long(d, s, e);
    if (n >= 8) {
        uint64_t a, b;
        memcpy(&a, s, 8);
        memcpy(&b, e - 8, 8);
#ifdef VEC_SCAN
        if (!special16(_mm_set_epi64x((long long)b, (long long)a))) {
#else
        if (!(special_bytes(a) | special_bytes(b))) {
#endif
            memcpy(d, &a, 8);
            memcpy(d + n - 8, &b, 8);
            return d + n;
        }
    } else if (n >= 4) {
        uint32_t a, b;
        memcpy(&a, s, 4);
        memcpy(&b, e - 4, 4);
#ifdef VEC_SCAN
        if (!(special16(_mm_cvtsi64_si128((long long)(a | (uint64_t)b << 32))) & 0xff)) {
#else
        if (!special_bytes(a | (uint64_t)b << 32)) {
#endif
            memcpy(d, &a, 4);
            memcpy(d + n - 4, &b, 4);
            return d + n;
        }
    } else if (n) {
        unsigned a = s[0], b = s[n >> 1], c = s[n - 1];
        if (!(esc_class[a] | esc_class[b] | esc_class[c])) {
            d[0] = (char)a;
            d[n >> 1] = (char)b;
            d[n - 1] = (char)c;
            return d + n;
        }
    } else {
        return d;
    }
    return esc_long(d, s, e);
}

static inline size_t esc_room(size_t n)
{
    if (n > (SIZE_MAX - 16) / 6)
        lsf_die("string too long to escape (%zu bytes)", n);
    return 6 * n + 16;
}

void lsf_json_write_string(lsf_outbuf *o, const char *s, size_t n)
{
    char *d = room(o, esc_room(n));
    *d++ = '"';
    d = esc(d, (const unsigned char *)s, (const unsigned char *)s + n);
    *d++ = '"';
    o->len = (size_t)(d - o->buf);
}

/* ---- numbers and time --------------------------------------------------- */

static void put_i64(lsf_outbuf *o, int64_t v)
{
    o->len = (size_t)(lsf_i64_text(room(o, 24), v) - o->buf);
}

static inline char *two(char *d, unsigned v)
{
    memcpy(d, lsf_digits2 + 2 * v, 2);
    return d + 2;
}

/* Days since 1970-01-01 to a proleptic Gregorian date. Counting years from
 * March puts the leap day last, so a 400-year era (146097 days) maps to a
 * year with 365*y + y/4 - y/100 + y/400 arithmetic and a month from the day
 * of year with (5*doy + 2) / 153 (the month lengths from March repeat
 * 31,30,31,30,31 every 153 days). Valid for every day an int64 ns reaches. */
static void civil_date(int64_t days, int *year, unsigned *month, unsigned *day)
{
    int64_t z = days + 719468; /* days from 0000-03-01 */
    int64_t era = (z >= 0 ? z : z - 146096) / 146097;
    unsigned doe = (unsigned)(z - era * 146097);                             /* [0, 146096] */
    unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;    /* [0, 399] */
    unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);                  /* [0, 365] */
    unsigned mp = (5 * doy + 2) / 153;                                       /* [0, 11] */
    *day = doy - (153 * mp + 2) / 5 + 1;
    *month = mp < 10 ? mp + 3 : mp - 9;
    *year = (int)(yoe + era * 400 + (*month <= 2));
}

size_t lsf_format_rfc3339_utc(int64_t ns, char *buf)
{
    int64_t sec = ns / 1000000000, sub = ns % 1000000000;
    if (sub < 0) {
        sub += 1000000000;
        sec--;
    }
    int64_t days = sec / 86400, sod = sec % 86400;
    if (sod < 0) {
        sod += 86400;
        days--;
    }
    int y;
    unsigned m, d;
    civil_date(days, &y, &m, &d);
    /* int64 ns spans 1677..2262, so the year always has four digits. */
    unsigned usec = (unsigned)(sub / 1000), s = (unsigned)sod;
    char *p = buf;
    p = two(p, (unsigned)y / 100);
    p = two(p, (unsigned)y % 100);
    *p++ = '-';
    p = two(p, m);
    *p++ = '-';
    p = two(p, d);
    *p++ = 'T';
    p = two(p, s / 3600);
    *p++ = ':';
    p = two(p, s / 60 % 60);
    *p++ = ':';
    p = two(p, s % 60);
    *p++ = '.';
    p = two(p, usec / 10000);
    p = two(p, usec / 100 % 100);
    p = two(p, usec % 100);
    *p++ = 'Z';
    *p = 0;
    return (size_t)(p - buf);
}

/* The date and time of the two seconds formatted last on this thread
 * ("2026-03-03T10:00:01"): an event's @timestamp and event.ingested each
 * change second rarely, so most times only format their microseconds. */
static _Thread_local struct {
    int64_t sec[2];
    char text[2][20];
    unsigned next; /* the entry a miss replaces */
} tcache = {{INT64_MIN, INT64_MIN}, {"", ""}, 0};

static void put_time(lsf_outbuf *o, int64_t ns)
{
    int64_t sec = ns / 1000000000, sub = ns % 1000000000;
    if (sub < 0) {
        sub += 1000000000;
        sec--;
    }
    unsigned k = tcache.sec[0] == sec ? 0 : tcache.sec[1] == sec ? 1 : 2;
    if (k == 2) {
        char buf[40];
        k = tcache.next;
        tcache.next ^= 1;
        lsf_format_rfc3339_utc(ns, buf);
        memcpy(tcache.text[k], buf, 19);
        tcache.sec[k] = sec;
    }
    unsigned usec = (unsigned)(sub / 1000);
    char *d = room(o, 32);
    d[0] = '"';
    memcpy(d + 1, tcache.text[k], 19);
    d[20] = '.';
    d = two(d + 21, usec / 10000);
    d = two(d, usec / 100 % 100);
    d = two(d, usec % 100);
    d[0] = 'Z';
    d[1] = '"';
    o->len = (size_t)(d + 2 - o->buf);
}

/* The fast path of put_f64: v as "%.15g" writes it, when that text reads
 * back exactly and has no exponent (1e-4 <= |v| < 1e15); NULL otherwise.
 * m = v * 10^k rounded, for the k that leaves 15 significant digits, is
 * that text when m / 10^k == v: both are exact or correctly rounded
 * (m < 2^53, 10^k exact for k <= 22), and a decimal of at most 15 digits
 * is the only one of them that rounds to v (DBL_DIG is 15). */
static char *f64_short(char *d, double v)
{
    static const double pow10_f64[] = {1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10,
                                       1e11, 1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18};
    static const double below[] = {1e-4, 1e-3, 1e-2, 1e-1, 1e0, 1e1, 1e2, 1e3, 1e4, 1e5,
                                   1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14};
    if (v == 0) {
        if (signbit(v))
            *d++ = '-';
        *d++ = '0';
        return d;
    }
    double a = fabs(v);
    if (!(a >= 1e-4 && a < 1e15))
        return NULL;
    int x = 18; /* below[x] <= a: a's decimal exponent is x - 4 */
    while (a < below[x])
        x--;
    int k = 18 - x; /* 15 significant digits: 14 - (x - 4) after the point */
    double t = a * pow10_f64[k];
    if (!(t < 1e15))
        return NULL;
    uint64_t m = (uint64_t)(t + 0.5);
    if (m >= 1000000000000000ull || (double)m / pow10_f64[k] != a)
        return NULL;
    while (k > 0 && m % 10 == 0) {
        m /= 10;
        k--;
    }
    if (v < 0)
        *d++ = '-';
    if (!k)
        return lsf_u64_text(d, m);
    d = lsf_u64_text(d, m / lsf_pow10_u64[k]);
    *d++ = '.';
    uint64_t frac = m % lsf_pow10_u64[k];
    for (int i = k - 1; i >= 0; i--) {
        d[i] = (char)('0' + frac % 10);
        frac /= 10;
    }
    return d + k;
}

/* Shortest of %.15g/%.16g/%.17g that reads back exactly; NaN/Inf -> null. */
static void put_f64(lsf_outbuf *o, double v)
{
    if (!isfinite(v)) {
        PUT_LIT(o, "null");
        return;
    }
    char *d = f64_short(room(o, 32), v);
    if (d) {
        o->len = (size_t)(d - o->buf);
        return;
    }
    char buf[40];
    int n = 0;
    for (int prec = 15; prec <= 17; prec++) {
        n = snprintf(buf, sizeof(buf), "%.*g", prec, v);
        if (prec == 17 || strtod(buf, NULL) == v)
            break;
    }
    for (int i = 0; i < n; i++)
        if (buf[i] == ',') /* a decimal-comma locale */
            buf[i] = '.';
    put(o, buf, (size_t)n);
}

/* LSF_T_JSON text, verbatim but on one line. */
static void put_raw_json(lsf_outbuf *o, lsf_str s)
{
    if (!s.ptr || !s.len) {
        PUT_LIT(o, "null");
        return;
    }
    char *d = room(o, s.len);
    memcpy(d, s.ptr, s.len);
    for (char *p = d, *e = d + s.len; (p = memchr(p, '\n', (size_t)(e - p))); p++)
        *p = ' ';
    for (char *p = d, *e = d + s.len; (p = memchr(p, '\r', (size_t)(e - p))); p++)
        *p = ' ';
    o->len += s.len;
}

/* ---- structured data ---------------------------------------------------- */

typedef struct sd_param {
    uint32_t name, name_len, val, val_len; /* offsets into the SD text */
} sd_param;

typedef struct sd_elem {
    uint32_t id, id_len;
    uint16_t p0, np;
} sd_elem;

/* SD-NAME characters: printable US-ASCII except '=', ' ', ']' and '"'. */
static inline bool sd_namechar(unsigned char c)
{
    return c > ' ' && c < 0x7f && c != '=' && c != ']' && c != '"';
}

/* Parses complete elements until the text ends or is malformed; returns the
 * number of elements, params in `ps`. Lenient about extra spaces. */
static unsigned sd_parse(const unsigned char *s, uint32_t n, sd_elem *es, sd_param *ps,
                         unsigned *nparams)
{
    unsigned ne = 0, np = 0;
    uint32_t i = 0;
    while (ne < MAX_SD_ELEMS) {
        while (i < n && s[i] == ' ')
            i++;
        if (i >= n || s[i] != '[')
            break;
        i++;
        sd_elem *el = &es[ne];
        el->id = i;
        while (i < n && sd_namechar(s[i]))
            i++;
        el->id_len = i - el->id;
        el->p0 = (uint16_t)np;
        unsigned start_np = np;
        bool ok = el->id_len > 0;
        while (ok) {
            if (i >= n) {
                ok = false;
                break;
            }
            if (s[i] == ']') {
                i++;
                break;
            }
            if (s[i] != ' ') {
                ok = false;
                break;
            }
            while (i < n && s[i] == ' ')
                i++;
            if (i < n && s[i] == ']') {
                i++;
                break;
            }
            sd_param p = {.name = i};
            while (i < n && sd_namechar(s[i]))
                i++;
            p.name_len = i - p.name;
            if (!p.name_len || i + 1 >= n || s[i] != '=' || s[i + 1] != '"' ||
                np == MAX_SD_PARAMS) {
                ok = false;
                break;
            }
            i += 2;
            p.val = i;
            while (i < n && s[i] != '"')
                i += (s[i] == '\\' && i + 1 < n) ? 2 : 1;
            if (i >= n) {
                ok = false;
                break;
            }
            p.val_len = i - p.val;
            i++;
            ps[np++] = p;
        }
        if (!ok) {
            np = start_np;
            break;
        }
        el->np = (uint16_t)(np - start_np);
        ne++;
    }
    *nparams = np;
    return ne;
}

/* A PARAM-VALUE as a JSON string: \" \\ \] are unescaped (any other
 * backslash is literal, as RFC 5424 says), then JSON-escaped. */
static void sd_value(lsf_outbuf *o, const unsigned char *v, uint32_t n)
{
    char *d = room(o, esc_room(n));
    const unsigned char *e = v + n, *run = v, *p = v;
    *d++ = '"';
    while ((p = memchr(p, '\\', (size_t)(e - p))) && p + 1 < e) {
        if (p[1] == '"' || p[1] == '\\' || p[1] == ']') {
            d = esc(d, run, p);
            d = esc(d, p + 1, p + 2);
            run = p = p + 2;
        } else {
            p++;
        }
    }
    d = esc(d, run, e);
    *d++ = '"';
    o->len = (size_t)(d - o->buf);
}

static inline bool same_name(const unsigned char *s, const sd_param *a, const sd_param *b)
{
    return a->name_len == b->name_len && !memcmp(s + a->name, s + b->name, a->name_len);
}

static void put_sd(lsf_outbuf *o, lsf_str sd)
{
    sd_elem es[MAX_SD_ELEMS];
    sd_param ps[MAX_SD_PARAMS];
    uint8_t elem_done[MAX_SD_ELEMS] = {0}, param_done[MAX_SD_PARAMS] = {0};
    uint16_t idx[MAX_SD_PARAMS];
    const unsigned char *s = (const unsigned char *)sd.ptr;
    unsigned np, ne = sd_parse(s, sd.len, es, ps, &np);
    (void)np;

    put1(o, '{');
    for (unsigned e = 0; e < ne; e++) {
        if (elem_done[e])
            continue;
        if (e)
            put1(o, ',');
        lsf_json_write_string(o, (const char *)s + es[e].id, es[e].id_len);
        PUT_LIT(o, ":{");
        /* Params of this SD-ID, from every element that repeats it. */
        unsigned n = 0;
        for (unsigned f = e; f < ne; f++) {
            if (f != e && (elem_done[f] || es[f].id_len != es[e].id_len ||
                           memcmp(s + es[f].id, s + es[e].id, es[e].id_len)))
                continue;
            elem_done[f] = 1;
            for (unsigned k = 0; k < es[f].np; k++)
                idx[n++] = (uint16_t)(es[f].p0 + k);
        }
        bool first = true;
        for (unsigned a = 0; a < n; a++) {
            const sd_param *pa = &ps[idx[a]];
            if (param_done[idx[a]])
                continue;
            if (!first)
                put1(o, ',');
            first = false;
            lsf_json_write_string(o, (const char *)s + pa->name, pa->name_len);
            put1(o, ':');
            unsigned same = 0;
            for (unsigned b = a + 1; b < n; b++)
                same += same_name(s, pa, &ps[idx[b]]);
            if (!same) {
                sd_value(o, s + pa->val, pa->val_len);
                continue;
            }
            put1(o, '[');
            sd_value(o, s + pa->val, pa->val_len);
            for (unsigned b = a + 1; b < n; b++) {
                const sd_param *pb = &ps[idx[b]];
                if (same_name(s, pa, pb)) {
                    put1(o, ',');
                    sd_value(o, s + pb->val, pb->val_len);
                    param_done[idx[b]] = 1;
                }
            }
            put1(o, ']');
        }
        put1(o, '}');
    }
    put1(o, '}');
}

/* ---- the event tree ----------------------------------------------------- */

enum {
    V_OBJ = 0, /* an object: only children */
    V_STR, V_INT, V_TIME, V_FLOAT, V_BOOL, V_NULL, V_JSON, V_SD, V_TAGS,
    V_DONE, /* a root object already written inside a fixed one (direct path) */
};

typedef struct tnode {
    const char *key;
    uint64_t sig;  /* key_sig(key, klen) */
    uint32_t klen;
    uint8_t kind;  /* V_*; anything but V_OBJ is a leaf value */
    uint32_t child, last, next; /* node indices; 0 = none (0 is the root) */
    union {
        lsf_str s;
        int64_t i;
        double f;
        bool b;
        const lsf_event *ev;
    } v;
} tnode;

/* The root's children are also kept in arrays (while there are at most
 * ROOT_INDEX): the root is the widest object (every top-level name of the
 * event) and most lookups that find nothing are there, so scanning an
 * array beats following `next` links, one dependent load per sibling. */
#define ROOT_INDEX 64

typedef struct tree {
    tnode *n;
    uint32_t len, cap;
    uint32_t nroot; /* children of the root; past ROOT_INDEX the arrays stop */
    uint64_t rsig[ROOT_INDEX];
    uint32_t rklen[ROOT_INDEX], ridx[ROOT_INDEX];
} tree;

/* The first eight bytes of a key, or all of a shorter one, as one word:
 * keys of at most eight bytes are equal when their lengths and signatures
 * are. Reads nothing outside the key. */
static inline uint64_t key_sig(const char *p, uint32_t n)
{
    uint64_t w;
    if (n >= 8) {
        memcpy(&w, p, 8);
        return w;
    }
    if (n >= 4) {
        uint32_t a, b;
        memcpy(&a, p, 4);
        memcpy(&b, p + n - 4, 4);
        return a | (uint64_t)b << 32;
    }
    if (!n)
        return 0;
    return (uint64_t)(uint8_t)p[0] | (uint64_t)(uint8_t)p[n >> 1] << 8 |
           (uint64_t)(uint8_t)p[n - 1] << 16;
}

/* Appends a child to `parent` (sig: key_sig(key, klen)); 0 when the tree
 * is full. */
static inline __attribute__((always_inline)) uint32_t add(tree *t, uint32_t parent,
                                                          const char *key, uint32_t klen,
                                                          uint64_t sig, uint8_t kind)
{
    if (t->len == t->cap)
        return 0;
    uint32_t i = t->len++;
    tnode *x = &t->n[i];
    x->key = key;
    x->sig = sig;
    x->klen = klen;
    if (parent == 0) {
        if (t->nroot < ROOT_INDEX) {
            t->rsig[t->nroot] = sig;
            t->rklen[t->nroot] = klen;
            t->ridx[t->nroot] = i;
        }
        t->nroot++;
    }
    x->kind = kind;
    x->child = x->last = x->next = 0;
    tnode *p = &t->n[parent];
    if (p->last)
        t->n[p->last].next = i;
    else
        p->child = i;
    p->last = i;
    return i;
}

/* Fixed-field helpers: literal keys, never full (FIXED_NODES < cap). */
#define ADD(parent, lit, kind)                                                               \
    add(t, (parent), (lit), sizeof(lit) - 1, key_sig((lit), sizeof(lit) - 1), (kind))

static inline void add_str(tree *t, uint32_t parent, const char *key, uint32_t klen, lsf_str v)
{
    uint32_t i = add(t, parent, key, klen, key_sig(key, klen), V_STR);
    t->n[i].v.s = v;
}
#define ADD_STR(parent, lit, val) add_str(t, (parent), (lit), sizeof(lit) - 1, (val))

static inline void add_int(tree *t, uint32_t parent, const char *key, uint32_t klen, int64_t v)
{
    uint32_t i = add(t, parent, key, klen, key_sig(key, klen), V_INT);
    t->n[i].v.i = v;
}
#define ADD_INT(parent, lit, val) add_int(t, (parent), (lit), sizeof(lit) - 1, (val))

static inline lsf_str cstr(const char *s)
{
    return lsf_str_make(s, strlen(s));
}

/* procid as a pid: 1-19 digits that fit an int64. */
static bool parse_pid(lsf_str s, int64_t *out)
{
    if (!s.ptr || s.len == 0 || s.len > 19)
        return false;
    uint64_t v = 0;
    for (uint32_t i = 0; i < s.len; i++) {
        unsigned c = (unsigned char)s.ptr[i] - '0';
        if (c > 9)
            return false;
        v = v * 10 + c;
    }
    if (v > INT64_MAX)
        return false;
    *out = (int64_t)v;
    return true;
}

static void build_fixed(tree *t, const lsf_event *ev)
{
    t->n[0] = (tnode){0};
    t->len = 1;
    t->nroot = 0;
    uint32_t x = ADD(0, "@timestamp", V_TIME);
    t->n[x].v.i = ev->time_ns ? ev->time_ns : ev->ingested_ns;
    if (ev->ingested_ns) {
        uint32_t e = ADD(0, "event", V_OBJ);
        x = ADD(e, "ingested", V_TIME);
        t->n[x].v.i = ev->ingested_ns;
    }
    if (ev->message.ptr)
        ADD_STR(0, "message", ev->message);
    if (ev->host.ptr) {
        uint32_t h = ADD(0, "host", V_OBJ);
        ADD_STR(h, "name", ev->host);
    }
    int64_t pid;
    bool has_pid = parse_pid(ev->procid, &pid);
    if (ev->app.ptr || has_pid) {
        uint32_t p = ADD(0, "process", V_OBJ);
        if (ev->app.ptr)
            ADD_STR(p, "name", ev->app);
        if (has_pid)
            ADD_INT(p, "pid", pid);
    }
    bool has_sd = ev->sd.ptr && !(ev->sd.len == 1 && ev->sd.ptr[0] == '-');
    bool has_syslog = ev->pri >= 0 || ev->host.ptr || ev->app.ptr || ev->procid.ptr ||
                      ev->msgid.ptr || ev->version > 0 || has_sd;
    uint32_t log = 0;
    if (has_syslog) {
        log = ADD(0, "log", V_OBJ);
        uint32_t sl = ADD(log, "syslog", V_OBJ);
        if (ev->pri >= 0) {
            ADD_INT(sl, "priority", ev->pri);
            uint32_t f = ADD(sl, "facility", V_OBJ);
            ADD_INT(f, "code", ev->pri >> 3);
            const char *fname = lsf_facility_name(ev->pri >> 3);
            if (fname)
                ADD_STR(f, "name", cstr(fname));
            uint32_t s = ADD(sl, "severity", V_OBJ);
            ADD_INT(s, "code", ev->pri & 7);
            ADD_STR(s, "name", cstr(lsf_severity_name(ev->pri & 7)));
        }
        if (ev->host.ptr)
            ADD_STR(sl, "hostname", ev->host);
        if (ev->app.ptr)
            ADD_STR(sl, "appname", ev->app);
        if (ev->procid.ptr)
            ADD_STR(sl, "procid", ev->procid);
        if (ev->msgid.ptr)
            ADD_STR(sl, "msgid", ev->msgid);
        if (ev->version > 0)
            ADD_INT(sl, "version", ev->version);
        if (has_sd) {
            x = ADD(sl, "structured_data", V_SD);
            t->n[x].v.s = ev->sd;
        }
    }
    if (ev->source_addr.ptr) {
        if (!log)
            log = ADD(0, "log", V_OBJ);
        uint32_t s = ADD(log, "source", V_OBJ);
        ADD_STR(s, "address", ev->source_addr);
    }
    if ((ev->flags & (LSF_EV_PARSE_FAILURE | LSF_EV_TRUNCATED)) || ev->ntags) {
        x = ADD(0, "tags", V_TAGS);
        t->n[x].v.ev = ev;
    }
}

/* True when the n bytes at a and b are equal; reads nothing outside them. */
static inline bool key_eq(const char *a, const char *b, uint32_t n)
{
    uint64_t x, y;
    if (n >= 8) {
        for (uint32_t i = 0; i + 8 < n; i += 8) {
            memcpy(&x, a + i, 8);
            memcpy(&y, b + i, 8);
            if (x != y)
                return false;
        }
        memcpy(&x, a + n - 8, 8);
        memcpy(&y, b + n - 8, 8);
        return x == y;
    }
    if (n >= 4) {
        uint32_t u, v, w, z;
        memcpy(&u, a, 4);
        memcpy(&v, b, 4);
        memcpy(&w, a + n - 4, 4);
        memcpy(&z, b + n - 4, 4);
        return u == v && w == z;
    }
    for (uint32_t i = 0; i < n; i++)
        if (a[i] != b[i])
            return false;
    return true;
}

/* The child `key` of `parent` (sig: key_sig(key, klen)), or 0. */
static inline uint32_t find_child(const tree *t, uint32_t parent, const char *key, uint32_t klen,
                                  uint64_t sig)
{
    if (parent == 0 && t->nroot <= ROOT_INDEX) {
        for (uint32_t k = 0; k < t->nroot; k++)
            if (t->rsig[k] == sig && t->rklen[k] == klen &&
                (klen <= 8 || key_eq(t->n[t->ridx[k]].key + 8, key + 8, klen - 8)))
                return t->ridx[k];
        return 0;
    }
    for (uint32_t c = t->n[parent].child; c; c = t->n[c].next) {
        const tnode *x = &t->n[c];
        if (x->sig == sig && x->klen == klen &&
            (klen <= 8 || key_eq(x->key + 8, key + 8, klen - 8)))
            return c;
    }
    return 0;
}

/* The first '.' in [p, e), or e. */
static inline const char *find_dot(const char *p, const char *e)
{
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    const uint64_t ones = 0x0101010101010101ull, high = 0x8080808080808080ull;
    while (e - p >= 8) {
        uint64_t w;
        memcpy(&w, p, 8);
        w ^= ones * '.';
        uint64_t m = (w - ones) & ~w & high; /* the lowest flagged byte is a dot */
        if (m)
            return p + ((unsigned)__builtin_ctzll(m) >> 3);
        p += 8;
    }
#endif
    while (p < e && *p != '.')
        p++;
    return p;
}

/* Length of the common prefix of the n-byte strings a and b. */
static inline uint32_t common_prefix(const char *a, const char *b, uint32_t n)
{
    uint32_t i = 0;
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    for (; i + 8 <= n; i += 8) {
        uint64_t x, y;
        memcpy(&x, a + i, 8);
        memcpy(&y, b + i, 8);
        if (x != y)
            return i + ((unsigned)__builtin_ctzll(x ^ y) >> 3);
    }
#endif
    while (i < n && a[i] == b[i])
        i++;
    return i;
}

/* Merges the dynamic fields into the tree; -1 when it runs out of nodes.
 * Fields that share a prefix usually come one after another (source.ip,
 * source.geo.city_name, source.geo.location, ...), so the nodes of the
 * previous name are kept by level: the whole components a name shares with
 * the previous one are not looked up again, only the rest is. That finds
 * the same nodes a lookup would, because a name's path never changes once
 * added; the output is the same. */
static int build_dynamic(tree *t, const lsf_event *ev)
{
    uint32_t node[MAX_DEPTH]; /* the previous name's node at each level */
    uint32_t cend[MAX_DEPTH]; /* and where each of its components ends */
    int plevels = 0;
    lsf_str prev = LSF_STR_NULL;
    for (uint32_t i = 0; i < ev->nfields; i++) {
        const lsf_field *f = &ev->fields[i];
        if (!f->name.ptr || (f->type == LSF_T_STR && !f->v.s.ptr))
            continue;
        const char *name = f->name.ptr;
        uint32_t len = f->name.len, off = 0, cur = 0;
        int lv = 0;
        if (plevels > 1) {
            /* components 0..plevels-2 of prev end in a dot; each one that
             * ends inside the common prefix is shared, dot included */
            uint32_t same = common_prefix(prev.ptr, name, prev.len < len ? prev.len : len);
            while (lv < plevels - 1 && cend[lv] < same) {
                cur = node[lv];
                off = cend[lv] + 1;
                lv++;
            }
        }
        for (;; lv++) {
            const char *p = name + off, *ce = name + len;
            if (lv < MAX_DEPTH - 1) /* rule 3: the last level keeps the rest */
                ce = find_dot(p, ce);
            uint32_t clen = (uint32_t)(ce - p);
            uint64_t sig = key_sig(p, clen);
            uint32_t c = find_child(t, cur, p, clen, sig);
            if (!c && !(c = add(t, cur, p, clen, sig, V_OBJ)))
                return -1;
            node[lv] = c;
            cend[lv] = off + clen;
            if (off + clen < len) {
                cur = c;
                off += clen + 1;
                continue;
            }
            plevels = lv + 1;
            tnode *x = &t->n[c];
            if (x->kind != V_OBJ)
                break; /* rule 1: the first one wins */
            switch (f->type) {
            case LSF_T_STR: x->kind = V_STR; x->v.s = f->v.s; break;
            case LSF_T_INT: x->kind = V_INT; x->v.i = f->v.i; break;
            case LSF_T_FLOAT: x->kind = V_FLOAT; x->v.f = f->v.f; break;
            case LSF_T_BOOL: x->kind = V_BOOL; x->v.b = f->v.b; break;
            case LSF_T_JSON: x->kind = V_JSON; x->v.s = f->v.s; break;
            default: x->kind = V_NULL; break;
            }
            break;
        }
        prev = f->name;
    }
    return 0;
}

/* Nodes the event can need: root, fixed fields, one per name component. */
static size_t nodes_needed(const lsf_event *ev)
{
    size_t n = 1 + FIXED_NODES;
    for (uint32_t i = 0; i < ev->nfields; i++) {
        const char *p = ev->fields[i].name.ptr, *end = p + ev->fields[i].name.len;
        if (!p)
            continue;
        size_t parts = 1;
        while (parts < MAX_DEPTH && (p = memchr(p, '.', (size_t)(end - p)))) {
            p++;
            parts++;
        }
        n += parts;
    }
    return n;
}

/* ---- writing the tree --------------------------------------------------- */

static void put_tags(lsf_outbuf *o, const lsf_event *ev)
{
    static const lsf_str pf = LSF_STR_LIT("_parse_failure"), tr = LSF_STR_LIT("_truncated");
    bool has_pf = ev->flags & LSF_EV_PARSE_FAILURE, has_tr = ev->flags & LSF_EV_TRUNCATED;
    bool first = true;
    put1(o, '[');
    if (has_pf) {
        PUT_LIT(o, "\"_parse_failure\"");
        first = false;
    }
    if (has_tr) {
        if (!first)
            put1(o, ',');
        PUT_LIT(o, "\"_truncated\"");
        first = false;
    }
    for (uint32_t i = 0; i < ev->ntags; i++) {
        lsf_str tag = ev->tags[i];
        if (!tag.ptr || (has_pf && lsf_str_eq(tag, pf)) || (has_tr && lsf_str_eq(tag, tr)))
            continue;
        if (!first)
            put1(o, ',');
        first = false;
        lsf_json_write_string(o, tag.ptr, tag.len);
    }
    put1(o, ']');
}

static void put_value(lsf_outbuf *o, const tnode *x)
{
    switch (x->kind) {
    case V_STR: lsf_json_write_string(o, x->v.s.ptr, x->v.s.len); break;
    case V_INT: put_i64(o, x->v.i); break;
    case V_TIME: put_time(o, x->v.i); break;
    case V_FLOAT: put_f64(o, x->v.f); break;
    case V_BOOL:
        if (x->v.b)
            PUT_LIT(o, "true");
        else
            PUT_LIT(o, "false");
        break;
    case V_JSON: put_raw_json(o, x->v.s); break;
    case V_SD: put_sd(o, x->v.s); break;
    case V_TAGS: put_tags(o, x->v.ev); break;
    default: PUT_LIT(o, "null"); break;
    }
}

/* Rule 2: the descendants of a leaf path[0], written flat after it as
 * ,"k0.k1...kn":value. path[0..depth) holds the nodes from that leaf down. */
static void put_flat(lsf_outbuf *o, const tree *t, uint32_t *path, int depth)
{
    for (uint32_t c = t->n[path[depth - 1]].child; c; c = t->n[c].next) {
        path[depth] = c;
        if (t->n[c].kind != V_OBJ) {
            size_t n = 0;
            for (int k = 0; k <= depth; k++)
                n += t->n[path[k]].klen + 1;
            char *d = room(o, esc_room(n));
            *d++ = ',';
            *d++ = '"';
            for (int k = 0; k <= depth; k++) {
                const tnode *x = &t->n[path[k]];
                if (k)
                    *d++ = '.';
                d = esc(d, (const unsigned char *)x->key, (const unsigned char *)x->key + x->klen);
            }
            *d++ = '"';
            *d++ = ':';
            o->len = (size_t)(d - o->buf);
            put_value(o, &t->n[c]);
        }
        if (t->n[c].child)
            put_flat(o, t, path, depth + 1);
    }
}

/* Writes parent's members; `after` when members precede them in the same
 * object (the first one then needs a comma too). */
static void put_members(lsf_outbuf *o, const tree *t, uint32_t parent, bool after)
{
    for (uint32_t c = t->n[parent].child; c; c = t->n[c].next) {
        const tnode *x = &t->n[c];
        if (x->kind == V_DONE) /* only among the root's, which all take a comma */
            continue;
        /* separator, key, ':' and '{' or a string value in one reservation */
        size_t need = esc_room(x->klen) + 8;
        if (x->kind == V_STR)
            need += esc_room(x->v.s.len);
        char *d = room(o, need);
        if (after || c != t->n[parent].child)
            *d++ = ',';
        *d++ = '"';
        d = esc(d, (const unsigned char *)x->key, (const unsigned char *)x->key + x->klen);
        *d++ = '"';
        *d++ = ':';
        if (x->kind == V_OBJ) {
            *d++ = '{';
            o->len = (size_t)(d - o->buf);
            put_members(o, t, c, false);
            put1(o, '}');
            continue;
        }
        if (x->kind == V_STR) {
            const unsigned char *v = (const unsigned char *)x->v.s.ptr;
            *d++ = '"';
            d = esc(d, v, v + x->v.s.len);
            *d++ = '"';
            o->len = (size_t)(d - o->buf);
        } else {
            o->len = (size_t)(d - o->buf);
            put_value(o, x);
        }
        if (x->child) {
            uint32_t path[MAX_DEPTH + 1] = {c};
            put_flat(o, t, path, 1);
        }
    }
}

/* ---- the fixed fields without a tree ------------------------------------ */

/* The fixed objects dynamic fields may add members to on the direct path,
 * and the names of their fixed members (which a dynamic field may not
 * reuse: merge rules 1 and 2 would then apply). */
static const struct {
    const char *name;
    uint32_t len;
    const char *members[2];
} open_objects[] = {
    {"event", 5, {"ingested", NULL}},
    {"host", 4, {"name", NULL}},
    {"process", 7, {"name", "pid"}},
    {"log", 3, {"syslog", "source"}},
};
enum { OBJ_EVENT, OBJ_HOST, OBJ_PROCESS, OBJ_LOG, N_OPEN_OBJECTS };

/* Is name top-level name `lit` (n bytes), alone or followed by a dot? */
static inline bool top_is(const char *p, uint32_t len, const char *lit, uint32_t n)
{
    return len >= n && !memcmp(p, lit, n) && (len == n || p[n] == '.');
}

/* Must the event go through the tree? Yes when a dynamic field is named
 * like a fixed leaf (@timestamp, message, tags), is a fixed object itself,
 * or is a fixed object's fixed member (or below one). A field below a fixed
 * object with a new member name (log.level, event.action) is fine: the
 * direct path writes it inside that object. */
static bool needs_tree(const lsf_event *ev)
{
    for (uint32_t i = 0; i < ev->nfields; i++) {
        const char *p = ev->fields[i].name.ptr;
        uint32_t len = ev->fields[i].name.len;
        if (!p || !len)
            continue;
        int k;
        switch (p[0]) { /* most names start with another letter: one test */
        case '@': if (top_is(p, len, "@timestamp", 10)) return true; continue;
        case 'm': if (top_is(p, len, "message", 7)) return true; continue;
        case 't': if (top_is(p, len, "tags", 4)) return true; continue;
        case 'e': k = OBJ_EVENT; break;
        case 'h': k = OBJ_HOST; break;
        case 'p': k = OBJ_PROCESS; break;
        case 'l': k = OBJ_LOG; break;
        default: continue;
        }
        uint32_t n = open_objects[k].len;
        if (!top_is(p, len, open_objects[k].name, n))
            continue;
        if (len == n)
            return true; /* the object's own name as a leaf */
        const char *m = p + n + 1, *e = p + len, *mdot = memchr(m, '.', (size_t)(e - m));
        size_t mn = (size_t)((mdot ? mdot : e) - m);
        for (int j = 0; j < 2 && open_objects[k].members[j]; j++)
            if (mn == strlen(open_objects[k].members[j]) &&
                !memcmp(m, open_objects[k].members[j], mn))
                return true;
    }
    return false;
}

/* Inside fixed object k (its fixed members written): the members the
 * dynamic fields add to it, which the root then skips. */
static void put_added(lsf_outbuf *o, tree *t, int k)
{
    if (!t->nroot)
        return;
    uint32_t c = find_child(t, 0, open_objects[k].name, open_objects[k].len,
                            key_sig(open_objects[k].name, open_objects[k].len));
    if (!c)
        return;
    put_members(o, t, c, true);
    t->n[c].kind = V_DONE;
}

static inline void put_str(lsf_outbuf *o, lsf_str s)
{
    lsf_json_write_string(o, s.ptr, s.len);
}

/* Writes `,"key":` (or `"key":` for the first member of an object). */
#define PUT_KEY(o, first, lit)                                                               \
    do {                                                                                     \
        if (first)                                                                           \
            PUT_LIT(o, "\"" lit "\":");                                                      \
        else                                                                                 \
            PUT_LIT(o, ",\"" lit "\":");                                                     \
        first = false;                                                                       \
    } while (0)

/* A string member when the string is present (not NULL). */
#define PUT_STR_MEMBER(o, first, lit, s)                                                     \
    do {                                                                                     \
        if ((s).ptr) {                                                                       \
            PUT_KEY(o, first, lit);                                                          \
            put_str(o, s);                                                                   \
        }                                                                                    \
    } while (0)

/* The members build_fixed would make, written as put_members writes them,
 * without the nodes: the same bytes, for an event no dynamic field merges
 * into in a way that needs the tree (needs_tree false); the members they
 * add to event, host, process and log are written inside those objects
 * (put_added). Starts with @timestamp, ends without a
 * comma. Most events are of this kind, and for them building and walking
 * the fixed nodes cost more than writing. */
static void put_fixed(lsf_outbuf *o, const lsf_event *ev, tree *t)
{
    PUT_LIT(o, "\"@timestamp\":");
    put_time(o, ev->time_ns ? ev->time_ns : ev->ingested_ns);
    if (ev->ingested_ns) {
        PUT_LIT(o, ",\"event\":{\"ingested\":");
        put_time(o, ev->ingested_ns);
        put_added(o, t, OBJ_EVENT);
        put1(o, '}');
    }
    if (ev->message.ptr) {
        PUT_LIT(o, ",\"message\":");
        put_str(o, ev->message);
    }
    if (ev->host.ptr) {
        PUT_LIT(o, ",\"host\":{\"name\":");
        put_str(o, ev->host);
        put_added(o, t, OBJ_HOST);
        put1(o, '}');
    }
    int64_t pid;
    bool has_pid = parse_pid(ev->procid, &pid);
    if (ev->app.ptr || has_pid) {
        bool first = true;
        PUT_LIT(o, ",\"process\":{");
        PUT_STR_MEMBER(o, first, "name", ev->app);
        if (has_pid) {
            PUT_KEY(o, first, "pid");
            put_i64(o, pid);
        }
        put_added(o, t, OBJ_PROCESS);
        put1(o, '}');
    }
    bool has_sd = ev->sd.ptr && !(ev->sd.len == 1 && ev->sd.ptr[0] == '-');
    bool has_syslog = ev->pri >= 0 || ev->host.ptr || ev->app.ptr || ev->procid.ptr ||
                      ev->msgid.ptr || ev->version > 0 || has_sd;
    if (has_syslog || ev->source_addr.ptr)
        PUT_LIT(o, ",\"log\":{");
    if (has_syslog) {
        bool first = true;
        PUT_LIT(o, "\"syslog\":{");
        if (ev->pri >= 0) {
            PUT_KEY(o, first, "priority");
            put_i64(o, ev->pri);
            PUT_LIT(o, ",\"facility\":{\"code\":");
            put_i64(o, ev->pri >> 3);
            const char *fname = lsf_facility_name(ev->pri >> 3);
            if (fname) {
                PUT_LIT(o, ",\"name\":");
                put_str(o, cstr(fname));
            }
            PUT_LIT(o, "},\"severity\":{\"code\":");
            put_i64(o, ev->pri & 7);
            PUT_LIT(o, ",\"name\":");
            put_str(o, cstr(lsf_severity_name(ev->pri & 7)));
            put1(o, '}');
        }
        PUT_STR_MEMBER(o, first, "hostname", ev->host);
        PUT_STR_MEMBER(o, first, "appname", ev->app);
        PUT_STR_MEMBER(o, first, "procid", ev->procid);
        PUT_STR_MEMBER(o, first, "msgid", ev->msgid);
        if (ev->version > 0) {
            PUT_KEY(o, first, "version");
            put_i64(o, ev->version);
        }
        if (has_sd) {
            PUT_KEY(o, first, "structured_data");
            put_sd(o, ev->sd);
        }
        put1(o, '}');
    }
    if (ev->source_addr.ptr) {
        if (has_syslog)
            put1(o, ',');
        PUT_LIT(o, "\"source\":{\"address\":");
        put_str(o, ev->source_addr);
        put1(o, '}');
    }
    if (has_syslog || ev->source_addr.ptr) {
        put_added(o, t, OBJ_LOG);
        put1(o, '}');
    }
    if ((ev->flags & (LSF_EV_PARSE_FAILURE | LSF_EV_TRUNCATED)) || ev->ntags) {
        PUT_LIT(o, ",\"tags\":");
        put_tags(o, ev);
    }
}

/* ---- events and batches ------------------------------------------------- */

/* direct: the fixed fields by put_fixed (only when !needs_tree). */
static void write_event(lsf_outbuf *o, const lsf_event *ev, bool direct)
{
    tnode stack_nodes[STACK_NODES];
    tree t; /* not zeroed: the root arrays are written before they are read */
    t.n = stack_nodes;
    t.cap = STACK_NODES;
    tnode *heap = NULL;
    if (direct) { /* the tree holds only the dynamic fields */
        t.n[0] = (tnode){0};
        t.len = 1;
        t.nroot = 0;
    } else {
        build_fixed(&t, ev);
    }
    if (ev->nfields && build_dynamic(&t, ev) < 0) {
        size_t cap = nodes_needed(ev);
        if (cap > UINT32_MAX)
            lsf_die("event with too many fields");
        heap = malloc(cap * sizeof(tnode));
        if (!heap)
            lsf_die("out of memory (%zu JSON nodes)", cap);
        t.n = heap;
        t.cap = (uint32_t)cap;
        if (direct) {
            t.n[0] = (tnode){0};
            t.len = 1;
            t.nroot = 0;
        } else {
            build_fixed(&t, ev);
        }
        if (build_dynamic(&t, ev) < 0)
            lsf_die("json_out: node estimate too small");
    }
    put1(o, '{');
    if (direct) /* the fixed fields straight out, with what dynamic ones add to them */
        put_fixed(o, ev, &t);
    put_members(o, &t, 0, direct);
    PUT_LIT(o, "}\n");
    free(heap);
}

void lsf_json_write_event(lsf_outbuf *o, const lsf_event *ev)
{
    write_event(o, ev, !needs_tree(ev));
}

void lsf_json_write_event_tree(lsf_outbuf *o, const lsf_event *ev)
{
    write_event(o, ev, false);
}

/* Makes room for the line offsets of every event of b. */
static void reserve_lines(lsf_outbuf *o, const lsf_batch *b)
{
    if (o->cap_lines < b->n + 1) {
        uint32_t cap = o->cap_lines ? o->cap_lines : 64;
        while (cap < b->n + 1)
            cap *= 2;
        uint32_t *nl = realloc(o->line_off, cap * sizeof(uint32_t));
        if (!nl)
            lsf_die("out of memory (line offsets)");
        o->line_off = nl;
        o->cap_lines = cap;
    }
    o->line_off[0] = 0;
}

static void end_line(lsf_outbuf *o)
{
    if (o->len > UINT32_MAX)
        lsf_die("batch output larger than 4 GiB");
    o->line_off[++o->nlines] = (uint32_t)o->len;
}

void lsf_json_write_batch(lsf_outbuf *o, const lsf_batch *b)
{
    lsf_outbuf_reset(o);
    reserve_lines(o, b);
    for (uint32_t i = 0; i < b->n; i++) {
        const lsf_event *ev = &b->events[i];
        if (ev->flags & LSF_EV_DROPPED)
            continue;
        lsf_json_write_event(o, ev);
        end_line(o);
    }
}

void lsf_raw_write_batch(lsf_outbuf *o, const lsf_batch *b)
{
    lsf_outbuf_reset(o);
    reserve_lines(o, b);
    for (uint32_t i = 0; i < b->n; i++) {
        const lsf_event *ev = &b->events[i];
        if (ev->flags & LSF_EV_DROPPED)
            continue;
        lsf_outbuf_reserve(o, (size_t)ev->raw.len + 1);
        char *dst = o->buf + o->len;
        for (uint32_t k = 0; k < ev->raw.len; k++) {
            char c = ev->raw.ptr[k];
            dst[k] = (c == '\n' || c == '\r') ? ' ' : c;
        }
        dst[ev->raw.len] = '\n';
        o->len += (size_t)ev->raw.len + 1;
        end_line(o);
    }
}
