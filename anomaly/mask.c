/* mask.c - splits a log message into tokens and marks the variable ones.
 *
 * The one design choice to know: masking is generic, the same rules for
 * every source, no per-system regexes. Measured on the 16 Loghub systems
 * (docs/anomaly.md) these rules, with the strict merge of template.c, group
 * more accurately than Drain with its hand-written per-system masks.
 *
 * Rules, in order:
 *  1. Words are separated by white space. A run like "Fri Jul  1 07:57:30
 *     2005" or "Jul 1 07:57" (optional day name, month name, day, optional
 *     time and year) is one variable: a timestamp.
 *  2. A word is split further at , ; = | and quotes, which are dropped from
 *     the tokens and kept as separator text for the template.
 *  3. A token is a variable if it contains a digit (numbers, IPv4/IPv6,
 *     ports, versions, most ids, UUIDs, dates), is a path (starts with '/'
 *     and has another '/') or a URL ("://"), is hex of 8 or more digits
 *     (with or without 0x), is only brackets/punctuation (an empty value such
 *     as "()"), follows '=' (the value of key=value, quoted or not), or is an
 *     identifier right after the word "user" or "for" (user names: "session
 *     opened for user cyrus", "Failed password for root").
 *  4. Adjacent variables merge into one, so "(1.16 KB)"-style and list-like
 *     values of varying length do not change the token count.
 *
 * Threads: pure function of its input.
 */
#include <string.h>

#include "anomaly/hash.h"
#include "anomaly/template.h"

#define MAX_RAW 256

enum {
    C_SPACE = 1, C_DELIM = 2, C_QUOTE = 4, C_DIGIT = 8, C_HEX = 16, C_PUNCT = 32, C_IDENT = 64,
    C_SLASH = 128, C_OPEN = 256, C_CLOSE = 512, C_UPPER = 1024, C_LOWER = 2048
};

static uint16_t cls[256];

__attribute__((constructor)) static void init_classes(void)
{
    for (const char *p = " \t\r\n\v\f"; *p; p++)
        cls[(unsigned char)*p] |= C_SPACE;
    for (const char *p = ",;=|\"'"; *p; p++)
        cls[(unsigned char)*p] |= C_DELIM;
    cls['"'] |= C_QUOTE;
    cls['\''] |= C_QUOTE;
    for (int c = '0'; c <= '9'; c++)
        cls[c] |= C_DIGIT | C_HEX | C_IDENT;
    for (int c = 'a'; c <= 'f'; c++)
        cls[c] |= C_HEX;
    for (int c = 'A'; c <= 'F'; c++)
        cls[c] |= C_HEX;
    for (int c = 'a'; c <= 'z'; c++)
        cls[c] |= C_IDENT | C_LOWER;
    for (int c = 'A'; c <= 'Z'; c++)
        cls[c] |= C_IDENT | C_UPPER;
    cls['_'] |= C_IDENT;
    cls['.'] |= C_IDENT;
    cls['-'] |= C_IDENT;
    for (const char *p = "()[]{}<>\"',;:."; *p; p++)
        cls[(unsigned char)*p] |= C_PUNCT;
    cls['/'] |= C_SLASH;
    for (const char *p = "([{<"; *p; p++) /* brackets a variable keeps as text before it */
        cls[(unsigned char)*p] |= C_OPEN;
    for (const char *p = ")]}>.,:;"; *p; p++) /* and after it */
        cls[(unsigned char)*p] |= C_CLOSE;
}

typedef struct span {
    uint32_t off, len;
} span;

static bool word_is(const char *s, span w, const char *lit, size_t n)
{
    return w.len == n && memcmp(s + w.off, lit, n) == 0;
}

/* One of the 3-letter names of list (day or month names: capital, then two
 * lower-case letters, which most words fail at once). */
static inline bool in_list(const char *s, span w, const char *list)
{
    const unsigned char *p = (const unsigned char *)s + w.off;
    if (w.len != 3 || !(cls[p[0]] & C_UPPER) || !(cls[p[1]] & cls[p[2]] & C_LOWER))
        return false;
    for (const char *q = list; *q; q += 3)
        if (p[0] == (unsigned char)q[0] && p[1] == (unsigned char)q[1] &&
            p[2] == (unsigned char)q[2])
            return true;
    return false;
}

static bool is_day(const char *s, span w)
{
    return in_list(s, w, "MonTueWedThuFriSatSun");
}

static bool is_month(const char *s, span w)
{
    return in_list(s, w, "JanFebMarAprMayJunJulAugSepOctNovDec");
}

static bool all_digits(const char *s, span w, uint32_t min, uint32_t max)
{
    if (w.len < min || w.len > max)
        return false;
    for (uint32_t i = 0; i < w.len; i++)
        if (!(cls[(unsigned char)s[w.off + i]] & C_DIGIT))
            return false;
    return true;
}

/* hh:mm at the start of the word (seconds and fractions may follow). */
static bool is_clock(const char *s, span w)
{
    const unsigned char *p = (const unsigned char *)s + w.off;
    return w.len >= 5 && (cls[p[0]] & C_DIGIT) && (cls[p[1]] & C_DIGIT) && p[2] == ':' &&
           (cls[p[3]] & C_DIGIT) && (cls[p[4]] & C_DIGIT);
}

/* What one pass over a piece (no delimiters inside) learns about it. */
typedef struct piece_scan {
    unsigned all, any;   /* classes every character has / some character has */
    uint32_t slashes;
    bool url;            /* "://" inside */
} piece_scan;

/* Scans the piece starting at i up to the next delimiter or `end`; returns
 * where it stops. */
static inline uint32_t scan_piece(const char *s, uint32_t i, uint32_t end, piece_scan *ps)
{
    const unsigned char *p = (const unsigned char *)s;
    unsigned all = ~0u, any = 0;
    uint32_t start = i;
    for (; i < end; i++) {
        unsigned c = cls[p[i]];
        if (c & C_DELIM)
            break;
        all &= c;
        any |= c;
        if (c & C_SLASH) {
            ps->slashes++;
            ps->url |= i > start && i + 1 < end && p[i - 1] == ':' && p[i + 1] == '/';
        }
    }
    ps->all = all;
    ps->any = any;
    return i;
}

/* Is a piece a variable by its own content? */
static bool variable_piece(const char *s, uint32_t off, uint32_t len, const piece_scan *ps)
{
    const unsigned char *p = (const unsigned char *)s + off;
    if (ps->any & C_DIGIT)
        return true;
    if (ps->all & C_PUNCT)
        return true;
    if (p[0] == '/' && ps->slashes >= 2)
        return true;
    if (ps->url)
        return true;
    uint32_t hex_from = (len > 2 && p[0] == '0' && (p[1] == 'x' || p[1] == 'X')) ? 2 : 0;
    if (len - hex_from >= 8) {
        uint32_t i = hex_from;
        while (i < len && (cls[p[i]] & C_HEX))
            i++;
        if (i == len)
            return true;
    }
    return false;
}

static bool identifier(const char *s, uint32_t off, uint32_t len)
{
    const unsigned char *p = (const unsigned char *)s + off;
    if (!len || (cls[p[0]] & C_DIGIT) || p[0] == '.' || p[0] == '-')
        return false;
    for (uint32_t i = 0; i < len; i++)
        if (!(cls[p[i]] & C_IDENT))
            return false;
    return true;
}

static inline bool context_word(const char *s, span w)
{
    return word_is(s, w, "user", 4) || word_is(s, w, "for", 3);
}

typedef struct emitter {
    const char *s;
    lsf_masked *out;
    uint32_t prev_end; /* where the last token ended: separators start here */
} emitter;

/* Emits the token [off, off + len); a variable merging into the previous
 * one extends it to raw_end (brackets around the value included). */
static inline __attribute__((always_inline)) void emit(emitter *e, uint32_t off, uint32_t len, uint32_t raw_end, bool var)
{
    lsf_masked *m = e->out;
    lsf_mtok *last = m->n ? &m->tok[m->n - 1] : NULL;
    if (last && ((var && last->h == 0) || m->n == LSF_MASK_MAX_TOKENS)) {
        /* merge into the previous variable (or, when out of slots, the last token) */
        last->len = raw_end - last->off;
        last->h = 0;
        e->prev_end = raw_end;
        return;
    } else {
        lsf_mtok *t = &m->tok[m->n++];
        t->off = off;
        t->len = len;
        t->sep_off = e->prev_end;
        t->sep_len = off - e->prev_end;
        if (var)
            t->h = 0;
        else {
            uint64_t h = lsf_hash64(e->s + off, len, 0x6c6f677369667421ULL);
            t->h = h ? h : 1;
        }
    }
    e->prev_end = off + len;
}

/* Splits one white-space word into pieces at delimiters and emits them.
 * `prev` is the previous word (for the user/for rule). */
static void emit_word(emitter *e, span w, span prev)
{
    const char *s = e->s;
    bool after_eq = false;
    uint32_t i = w.off, end = w.off + w.len;
    while (i < end) {
        unsigned c = cls[(unsigned char)s[i]];
        if (c & C_DELIM) {
            if (!((c & C_QUOTE) && after_eq))
                after_eq = s[i] == '=';
            i++;
            continue;
        }
        uint32_t start = i;
        piece_scan ps = {0, 0, 0, false};
        i = scan_piece(s, i, end, &ps);
        uint32_t len = i - start;
        span piece = {start, len};
        bool var = after_eq || variable_piece(s, start, len, &ps) ||
                   (context_word(s, prev) && !context_word(s, piece) && identifier(s, start, len));
        uint32_t vs = start, ve = i;
        bool only_punct = ps.all & C_PUNCT;
        if (var && !only_punct) { /* brackets and trailing punctuation stay text: "(uid=<*>)" */
            while (vs + 1 < ve && (cls[(unsigned char)s[vs]] & C_OPEN))
                vs++;
            while (ve - 1 > vs && (cls[(unsigned char)s[ve - 1]] & C_CLOSE))
                ve--;
        }
        emit(e, vs, ve - vs, i, var);
        after_eq = false;
        prev = piece;
    }
}

void lsf_mask_line(const char *s, size_t n, lsf_masked *out)
{
    span raw[MAX_RAW];
    uint32_t nraw = 0;
    if (n > UINT32_MAX / 2)
        n = UINT32_MAX / 2;
    uint32_t i = 0, len = (uint32_t)n;
    while (i < len) {
        while (i < len && (cls[(unsigned char)s[i]] & C_SPACE))
            i++;
        if (i >= len)
            break;
        uint32_t start = i;
        while (i < len && !(cls[(unsigned char)s[i]] & C_SPACE))
            i++;
        if (nraw == MAX_RAW) /* the rest of the line joins the last word */
            raw[nraw - 1].len = i - raw[nraw - 1].off;
        else
            raw[nraw++] = (span){start, i - start};
    }
    out->n = 0;
    emitter e = {s, out, 0};
    span none = {0, 0};
    for (uint32_t r = 0; r < nraw;) {
        uint32_t j = r;
        if (is_day(s, raw[j]) && j + 1 < nraw && is_month(s, raw[j + 1]))
            j++;
        if (is_month(s, raw[j]) && j + 1 < nraw && all_digits(s, raw[j + 1], 1, 2)) {
            uint32_t k = j + 2;
            if (k < nraw && is_clock(s, raw[k]))
                k++;
            if (k < nraw && all_digits(s, raw[k], 4, 4))
                k++;
            uint32_t end = raw[k - 1].off + raw[k - 1].len;
            emit(&e, raw[r].off, end - raw[r].off, end, true);
            r = k;
            continue;
        }
        emit_word(&e, raw[r], r ? raw[r - 1] : none);
        r++;
    }
    if (out->n == 0) {
        out->tok[0] = (lsf_mtok){len, 0, 0, len, 0};
        out->n = 1;
        e.prev_end = len;
    }
    out->trail_off = e.prev_end;
}
