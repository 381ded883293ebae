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
 * Limits: past 255 words the rest of the line (to its last non-space byte)
 * is the 256th word, split only at the separators of rule 2; past
 * LSF_MASK_MAX_TOKENS tokens every further token merges into the last one,
 * which becomes a variable.
 *
 * How it runs (the output is exactly what the rules above give on every
 * path; template ids are hashes of it): the line is classified once into
 * four bit masks per 64-byte block - white space, separators, digits,
 * slashes - 16 bytes at a time with SSE2 on x86-64, byte by byte through
 * the class table elsewhere. Word edges (where white space ends or begins)
 * come off a block's edge mask two lowest set bits at a time, and a word's
 * bytes are the end bit minus the start bit, so "has a separator / a digit
 * / a slash" is one AND each. fast_walk, a loop with no calls on its common
 * path, emits the words that decide from that and their first and last
 * bytes: a variable with a digit, a plain constant (hashed with one 8-byte
 * load where the line allows it), a user name after "user"/"for"; it calls
 * out of line for words with separators and for paths, URLs, punctuation
 * and hex, and leaves to its caller a word across blocks, a possible start
 * of a timestamp and the 256th word. Per word that is about half the
 * instructions of the byte-by-byte scan it replaced (benchmarks/RESULTS.md);
 * what remains is mostly the per-word bookkeeping and the token hash, which
 * must stay lsf_hash64 of the token's bytes.
 *
 * Threads: pure function of its input.
 */
#include <stdlib.h>
#include <string.h>
#ifdef __SSE2__
#include <emmintrin.h>
#endif

#include "anomaly/hash.h"
#include "anomaly/template.h"
#include "core/log.h"

#if defined(__GNUC__) && !defined(__clang__)
/* GCC's straight-line vectoriser packs the token fields and the masks into
 * SSE registers with more shuffles than the stores it saves. */
#pragma GCC optimize("no-tree-slp-vectorize")
#endif

#define MAX_RAW 256        /* words; the last one takes the rest of the line */
#define STACK_BLOCKS 64    /* masks of lines up to 4 KiB live on the stack */
#define TOKEN_SEED 0x6c6f677369667421ULL

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

/* ---- classification: four bit masks per 64 bytes --------------------------- */

enum { M_SPACE, M_DELIM, M_DIGIT, M_SLASH, M_COUNT };

/* Bit i of m[k] of block b: byte 64 * b + i is of class k. Bytes past the
 * line's end read as white space, and the line always has a block past its
 * last byte, so every piece or word ends inside the masks. */
typedef struct blk {
    uint64_t m[M_COUNT];
} blk;

#ifdef __SSE2__
/* The four masks of the 16 bytes x, in the low 16 bits of each. */
static inline __attribute__((always_inline)) void classify16(__m128i x, uint32_t *sp, uint32_t *dl,
                                                             uint32_t *dg, uint32_t *sl)
{
    __m128i w = _mm_or_si128(_mm_cmpeq_epi8(x, _mm_set1_epi8(' ')), /* and \t..\r: */
                             _mm_cmplt_epi8(_mm_add_epi8(x, _mm_set1_epi8(128 - 9)),
                                            _mm_set1_epi8(-128 + 5)));
    __m128i d = _mm_or_si128(_mm_or_si128(_mm_cmpeq_epi8(x, _mm_set1_epi8(',')),
                                          _mm_cmpeq_epi8(x, _mm_set1_epi8(';'))),
                             _mm_or_si128(_mm_cmpeq_epi8(x, _mm_set1_epi8('=')),
                                          _mm_cmpeq_epi8(x, _mm_set1_epi8('|'))));
    d = _mm_or_si128(d, _mm_or_si128(_mm_cmpeq_epi8(x, _mm_set1_epi8('"')),
                                     _mm_cmpeq_epi8(x, _mm_set1_epi8('\''))));
    __m128i g = _mm_cmplt_epi8(_mm_add_epi8(x, _mm_set1_epi8((char)(128 - '0'))),
                               _mm_set1_epi8(-128 + 10));
    *sp = (uint32_t)_mm_movemask_epi8(w);
    *dl = (uint32_t)_mm_movemask_epi8(d);
    *dg = (uint32_t)_mm_movemask_epi8(g);
    *sl = (uint32_t)_mm_movemask_epi8(_mm_cmpeq_epi8(x, _mm_set1_epi8('/')));
}

/* Chunk j (16 bytes) of a block: its masks shifted into place. */
#define CHUNK(x, j)                                                                            \
    do {                                                                                       \
        uint32_t a_, b_, c_, d_;                                                               \
        classify16((x), &a_, &b_, &c_, &d_);                                                   \
        sp |= (uint64_t)a_ << (16 * (j));                                                      \
        dl |= (uint64_t)b_ << (16 * (j));                                                      \
        dg |= (uint64_t)c_ << (16 * (j));                                                      \
        sl |= (uint64_t)d_ << (16 * (j));                                                      \
    } while (0)

static void classify(const unsigned char *s, uint32_t len, blk *out)
{
    uint32_t b = 0;
    for (; b < len / 64; b++) { /* whole blocks */
        const unsigned char *p = s + 64 * b;
        uint64_t sp = 0, dl = 0, dg = 0, sl = 0;
        CHUNK(_mm_loadu_si128((const __m128i *)p), 0);
        CHUNK(_mm_loadu_si128((const __m128i *)(p + 16)), 1);
        CHUNK(_mm_loadu_si128((const __m128i *)(p + 32)), 2);
        CHUNK(_mm_loadu_si128((const __m128i *)(p + 48)), 3);
        out[b].m[M_SPACE] = sp;
        out[b].m[M_DELIM] = dl;
        out[b].m[M_DIGIT] = dg;
        out[b].m[M_SLASH] = sl;
    }
    /* the last block: whole chunks, then the rest (a 16-byte load that
     * ends at the line's end, shifted down), then padding */
    uint32_t o = 64 * b, r = len - o, j = 0;
    uint64_t sp = 0, dl = 0, dg = 0, sl = 0;
    for (; j + 16 <= r; j += 16) {
        uint32_t a_, b_, c_, d_;
        classify16(_mm_loadu_si128((const __m128i *)(s + o + j)), &a_, &b_, &c_, &d_);
        sp |= (uint64_t)a_ << j;
        dl |= (uint64_t)b_ << j;
        dg |= (uint64_t)c_ << j;
        sl |= (uint64_t)d_ << j;
    }
    if (j < r) {
        uint32_t a_, b_, c_, d_, k = r - j; /* bytes left, 1..15 */
        if (len >= 16) {
            classify16(_mm_loadu_si128((const __m128i *)(s + len - 16)), &a_, &b_, &c_, &d_);
            a_ >>= 16 - k, b_ >>= 16 - k, c_ >>= 16 - k, d_ >>= 16 - k;
        } else {
            unsigned char tmp[16] = {0};
            memcpy(tmp, s, len);
            classify16(_mm_loadu_si128((const __m128i *)tmp), &a_, &b_, &c_, &d_);
            b_ &= (1u << k) - 1, c_ &= (1u << k) - 1, d_ &= (1u << k) - 1;
        }
        sp |= (uint64_t)a_ << j;
        dl |= (uint64_t)b_ << j;
        dg |= (uint64_t)c_ << j;
        sl |= (uint64_t)d_ << j;
    }
    out[b].m[M_SPACE] = sp | ~0ULL << r; /* r < 64 */
    out[b].m[M_DELIM] = dl;
    out[b].m[M_DIGIT] = dg;
    out[b].m[M_SLASH] = sl;
}
#undef CHUNK
#else
static void classify(const unsigned char *s, uint32_t len, blk *out)
{
    for (uint32_t b = 0; b <= len / 64; b++) {
        uint64_t acc[M_COUNT] = {0, 0, 0, 0};
        for (uint32_t j = 0; j < 64; j++) {
            unsigned c = b * 64 + j < len ? cls[s[b * 64 + j]] : C_SPACE;
            acc[M_SPACE] |= (uint64_t)((c & C_SPACE) != 0) << j;
            acc[M_DELIM] |= (uint64_t)((c & C_DELIM) != 0) << j;
            acc[M_DIGIT] |= (uint64_t)((c & C_DIGIT) != 0) << j;
            acc[M_SLASH] |= (uint64_t)((c & C_SLASH) != 0) << j;
        }
        for (int k = 0; k < M_COUNT; k++)
            out[b].m[k] = acc[k];
    }
}
#endif

/* First byte at or after i and before lim whose bit in mask k is set (clear
 * when inv); lim when there is none. */
static uint32_t next_bit(const blk *m, int k, bool inv, uint32_t i, uint32_t lim)
{
    while (i < lim) {
        uint64_t w = inv ? ~m[i >> 6].m[k] : m[i >> 6].m[k];
        w >>= i & 63;
        if (w) {
            i += (uint32_t)__builtin_ctzll(w);
            return i < lim ? i : lim;
        }
        i = (i | 63) + 1;
    }
    return lim;
}

/* ---- the rules of one piece ------------------------------------------------ */

#define GOLDEN 0x9e3779b97f4a7c15ULL /* lsf_hash64's constant */

/* lsf_hash64(s + off, n, TOKEN_SEED), never 0: the general case, for a
 * token of the line s (len bytes). Its tail is one 8-byte load where the
 * line allows it instead of a copy of up to 7 bytes. */
static __attribute__((noinline)) uint64_t tok_hash_long(const unsigned char *s, uint32_t len,
                                                        uint32_t off, uint32_t n)
{
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    const unsigned char *p = s + off, *e = s + len;
    uint64_t h = TOKEN_SEED ^ (GOLDEN * (n + 1)), v;
    for (; n >= 8; p += 8, n -= 8) {
        memcpy(&v, p, 8);
        h = lsf_mix64(h ^ v) + GOLDEN;
    }
    v = 0;
    if (n) {
        if (e - p >= 8) {
            memcpy(&v, p, 8);
        } else if (len >= 8) { /* the last 8 bytes of the line, shifted to p */
            memcpy(&v, e - 8, 8);
            v >>= 8 * (8 - (e - p));
        } else {
            for (uint32_t i = 0; i < n; i++)
                v |= (uint64_t)p[i] << (8 * i);
        }
        v &= ~0ULL >> (64 - 8 * n);
    }
    h = lsf_mix64(h ^ v ^ ((uint64_t)n << 56));
#else
    uint64_t h = lsf_hash64(s + off, n, TOKEN_SEED);
#endif
    return h ? h : 1;
}

/* lsf_hash64's state before its last mix for n < 8 bytes, less the bytes. */
#define SHORT_H(n) (TOKEN_SEED ^ (GOLDEN * ((n) + 1)) ^ ((uint64_t)(n) << 56))
static const uint64_t short_h[8] = {SHORT_H(0), SHORT_H(1), SHORT_H(2), SHORT_H(3),
                                    SHORT_H(4), SHORT_H(5), SHORT_H(6), SHORT_H(7)};
static const uint64_t short_mask[8] = {0, 0xff, 0xffff, 0xffffff, 0xffffffffULL,
                                       0xffffffffffULL, 0xffffffffffffULL, 0xffffffffffffffULL};

/* lsf_hash64(s + off, n, TOKEN_SEED), never 0. The common token, shorter
 * than 8 bytes with 8 bytes of line from its start, is one load and one
 * mix. */
static inline uint64_t tok_hash(const unsigned char *s, uint32_t len, uint32_t off, uint32_t n)
{
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    if (n < 8 && len - off >= 8) {
        uint64_t v;
        memcpy(&v, s + off, 8);
        uint64_t h = lsf_mix64(short_h[n] ^ (v & short_mask[n]));
        return h ? h : 1;
    }
#endif
    return tok_hash_long(s, len, off, n);
}

static inline bool all_of(const unsigned char *p, uint32_t a, uint32_t b, unsigned c)
{
    for (; a < b; a++)
        if (!(cls[p[a]] & c))
            return false;
    return true;
}

static inline bool is_context(const unsigned char *p, uint32_t a, uint32_t b)
{
    return (b - a == 4 && p[a] == 'u' && p[a + 1] == 's' && p[a + 2] == 'e' && p[a + 3] == 'r') ||
           (b - a == 3 && p[a] == 'f' && p[a + 1] == 'o' && p[a + 2] == 'r');
}

/* The rules for a piece without digits that is not all punctuation: path,
 * URL, hex, a name after "user"/"for" (ctx). sl: it has a slash. */
static bool variable_rare(const unsigned char *p, uint32_t a, uint32_t b, bool sl, bool ctx)
{
    if (sl) {
        uint32_t i = a + 1;
        if (p[a] == '/')
            for (; i < b; i++)
                if (p[i] == '/')
                    return true;
        for (i = a + 1; i + 1 < b; i++)
            if (p[i] == '/' && p[i - 1] == ':' && p[i + 1] == '/')
                return true;
    }
    if (b - a >= 8 && all_of(p, a, b, C_HEX))
        return true;
    return ctx && !(cls[p[a]] & C_DIGIT) && p[a] != '.' && p[a] != '-' && all_of(p, a, b, C_IDENT);
}

/* Is the piece [a, b) a variable? *vs, *ve: the token's text, brackets
 * and trailing punctuation of a variable left out. */
static inline __attribute__((always_inline)) bool decide(const unsigned char *p, uint32_t a,
                                                         uint32_t b, bool dig, bool sl,
                                                         bool after_eq, bool ctx, uint32_t *vs,
                                                         uint32_t *ve)
{
    bool var = true, punct = false;
    if (!dig) {
        punct = (cls[p[a]] & C_PUNCT) && all_of(p, a + 1, b, C_PUNCT);
        var = after_eq || punct || ((sl || b - a >= 8 || ctx) && variable_rare(p, a, b, sl, ctx));
    }
    if (var && !punct) { /* brackets and trailing punctuation stay text: "(uid=<*>)" */
        while (a + 1 < b && (cls[p[a]] & C_OPEN))
            a++;
        while (b - 1 > a && (cls[p[b - 1]] & C_CLOSE))
            b--;
    }
    *vs = a;
    *ve = b;
    return var;
}

/* ---- emitting -------------------------------------------------------------- */

/* What emitting needs to carry from token to token (two registers). */
typedef struct emitter {
    uint32_t n;        /* tokens so far (out->n when done) */
    uint32_t prev_end; /* where the last token ended: separators start here */
} emitter;

/* Emits the token [off, off + len) of the line s (line_len bytes); a
 * variable merging into the previous one extends it to raw_end (brackets
 * around the value included). */
static inline __attribute__((always_inline)) void emit(emitter *e, lsf_masked *out,
                                                       const unsigned char *s, uint32_t line_len,
                                                       uint32_t off, uint32_t len,
                                                       uint32_t raw_end, bool var)
{
    lsf_mtok *t = &out->tok[e->n];
    if (e->n && ((var && t[-1].h == 0) || e->n == LSF_MASK_MAX_TOKENS)) {
        /* merge into the previous variable (or, when out of slots, the last token) */
        t[-1].len = raw_end - t[-1].off;
        t[-1].h = 0;
        e->prev_end = raw_end;
        return;
    }
    e->n++;
    t->off = off;
    t->len = len;
    t->sep_off = e->prev_end;
    t->sep_len = off - e->prev_end;
    t->h = var ? 0 : tok_hash(s, line_len, off, len);
    e->prev_end = off + len;
}

/* ---- timestamps ------------------------------------------------------------ */

typedef struct span {
    uint32_t off, end;
} span;

/* One of the 3-letter names of list (day or month names). */
static bool in_list(const unsigned char *s, span w, const char *list)
{
    const unsigned char *p = s + w.off;
    if (w.end - w.off != 3 || !(cls[p[0]] & C_UPPER) || !(cls[p[1]] & cls[p[2]] & C_LOWER))
        return false;
    for (const char *q = list; *q; q += 3)
        if (p[0] == (unsigned char)q[0] && p[1] == (unsigned char)q[1] &&
            p[2] == (unsigned char)q[2])
            return true;
    return false;
}

static bool is_day(const unsigned char *s, span w)
{
    return in_list(s, w, "MonTueWedThuFriSatSun");
}

static bool is_month(const unsigned char *s, span w)
{
    return in_list(s, w, "JanFebMarAprMayJunJulAugSepOctNovDec");
}

static bool all_digits(const unsigned char *s, span w, uint32_t min, uint32_t max)
{
    uint32_t n = w.end - w.off;
    return n >= min && n <= max && all_of(s, w.off, w.end, C_DIGIT);
}

/* hh:mm at the start of the word (seconds and fractions may follow). */
static bool is_clock(const unsigned char *s, span w)
{
    const unsigned char *p = s + w.off;
    return w.end - w.off >= 5 && (cls[p[0]] & C_DIGIT) && (cls[p[1]] & C_DIGIT) && p[2] == ':' &&
           (cls[p[3]] & C_DIGIT) && (cls[p[4]] & C_DIGIT);
}

/* Where the last word of the line ends (the line has a non-space byte). */
static uint32_t last_end(const unsigned char *s, uint32_t len)
{
    while (cls[s[len - 1]] & C_SPACE)
        len--;
    return len;
}

/* What the out-of-line paths need to know of the line. */
typedef struct line {
    const unsigned char *s;
    const blk *m;
    uint32_t len;
    uint32_t last; /* where the 256th word starts (the rest of the line), or UINT32_MAX */
    lsf_masked *out;
    lsf_mtok *full; /* past the last token slot */
    uint32_t stop;  /* the walk ends at min(len, last) */
} line;

/* The first word at or after pos; false when there is none. */
static bool word_at(const line *l, uint32_t pos, span *w)
{
    w->off = next_bit(l->m, M_SPACE, true, pos, l->len);
    if (w->off >= l->len)
        return false;
    w->end = w->off == l->last ? last_end(l->s, l->len)
                               : next_bit(l->m, M_SPACE, false, w->off, l->len);
    return true;
}

/* The end of the timestamp run that starts with w (a capitalised 3-letter
 * word before the 256th), or 0 when none does. */
static __attribute__((noinline)) uint32_t timestamp(const line *l, span w)
{
    const unsigned char *s = l->s;
    span j = w, x;
    if (is_day(s, w) && word_at(l, w.end, &x) && is_month(s, x))
        j = x;
    if (!is_month(s, j) || !word_at(l, j.end, &x) || !all_digits(s, x, 1, 2))
        return 0;
    if (word_at(l, x.end, &j) && is_clock(s, j))
        x = j;
    if (word_at(l, x.end, &j) && all_digits(s, j, 4, 4))
        x = j;
    return x.end;
}

/* ---- the scan -------------------------------------------------------------- */

/* Emits the pieces of the word [ws, we), split at separators (the 256th
 * word keeps its white space inside the pieces). ctx: the word before it
 * is "user"/"for". */
static __attribute__((noinline)) emitter split_word(emitter e, const line *l, uint32_t ws,
                                                    uint32_t we, bool ctx)
{
    const unsigned char *s = l->s;
    bool after_eq = false;
    uint32_t i = ws;
    while (i < we) {
        unsigned c = cls[s[i]];
        if (c & C_DELIM) {
            if (!((c & C_QUOTE) && after_eq))
                after_eq = s[i] == '=';
            i++;
            continue;
        }
        uint32_t b = next_bit(l->m, M_DELIM, false, i, we), vs, ve;
        bool dig = next_bit(l->m, M_DIGIT, false, i, b) < b;
        bool sl = next_bit(l->m, M_SLASH, false, i, b) < b;
        bool self = is_context(s, i, b);
        bool var = decide(s, i, b, dig, sl, after_eq, ctx && !self, &vs, &ve);
        emit(&e, l->out, s, l->len, vs, ve - vs, b, var);
        ctx = self;
        after_eq = false;
        i = b;
    }
    return e;
}

/* Emits the word [ws, we), one piece (no separators). dig, sl: it has a
 * digit, a slash; ctx: it follows "user"/"for" and is neither. */
static __attribute__((noinline)) emitter one_piece(emitter e, const line *l, uint32_t ws,
                                                   uint32_t we, bool dig, bool sl, bool ctx)
{
    uint32_t vs, ve;
    bool var = decide(l->s, ws, we, dig, sl, false, ctx, &vs, &ve);
    emit(&e, l->out, l->s, l->len, vs, ve - vs, we, var);
    return e;
}

/* Word edges: bytes where white space ends (a word starts) or begins (it
 * ends) in block b, the byte before the line counting as white space. */
static inline uint64_t block_edges(const blk *m, uint32_t b)
{
    uint64_t sp = m[b].m[M_SPACE];
    return sp ^ (sp << 1 | (b ? m[b - 1].m[M_SPACE] >> 63 : 1));
}

/* The edges of the block of byte pos that come after it and before
 * `last` (where the 256th word starts, which the walk leaves). */
static inline uint64_t edges_after(const blk *m, uint32_t pos, uint32_t last)
{
    uint64_t t = block_edges(m, pos >> 6) & ~((2ULL << (pos & 63)) - 1);
    uint32_t base = pos & ~63u;
    if (base + 64 > last)
        t &= last > base ? (1ULL << (last - base)) - 1 : 0;
    return t;
}

/* Where the 256th word starts, or UINT32_MAX when the line has fewer. */
static uint32_t word_256(const blk *m, uint32_t len)
{
    uint32_t left = MAX_RAW;
    for (uint32_t b = 0; b <= len / 64; b++) {
        uint64_t starts = block_edges(m, b) & ~m[b].m[M_SPACE];
        uint32_t c = (uint32_t)__builtin_popcountll(starts);
        if (c >= left) {
            while (--left)
                starts &= starts - 1;
            return b * 64 + (uint32_t)__builtin_ctzll(starts);
        }
        left -= c;
    }
    return UINT32_MAX;
}

/* The walk over a line's words: where it is and what it has emitted. */
typedef struct walk {
    uint64_t t;        /* word edges not yet walked in the block at base */
    uint32_t base;
    uint32_t prev_end; /* where the last token ended */
    lsf_mtok *tk;      /* the next token */
    bool ctx;          /* the last word walked is "user" or "for" */
} walk;

/* Walks the words of the line that end in their 64-byte block and are not
 * the 256th nor a possible first word of a timestamp (a capitalised 3-letter
 * word with two lower-case letters), emitting their tokens: inline for a
 * word that is a variable by its digits or as a user name, or a plain
 * constant; through split_word and one_piece for a word with separators
 * and a path, URL, punctuation-first or hex word. Returns false at the end
 * of the walk, true at a word it leaves to the caller (its start is the
 * lowest edge in w->t). The common path makes no calls, so its state stays
 * in registers. */
static __attribute__((noinline)) bool fast_walk(walk *w, const line *l)
{
    const unsigned char *s = l->s;
    uint32_t base = w->base, prev_end = w->prev_end;
    lsf_mtok *tk = w->tk;
    const blk *k = &l->m[base >> 6];
    uint64_t t = w->t;
    bool ctx = w->ctx;
#define LEAVE(more)                                                                            \
    do {                                                                                       \
        *w = (walk){t, base, prev_end, tk, ctx};                                               \
        return (more);                                                                         \
    } while (0)
    for (;;) {
        while (!t) {
            if ((base += 64) > l->stop)
                LEAVE(false);
            k++;
            t = k->m[M_SPACE] ^ (k->m[M_SPACE] << 1 | k[-1].m[M_SPACE] >> 63);
            if (base + 64 > l->last) /* the block of the 256th word: not past it */
                t &= (1ULL << (l->last - base)) - 1;
        }
        uint64_t rest = t & (t - 1), sb = t ^ rest; /* the word's start and end as bits */
        if (!rest)
            LEAVE(true);
        uint64_t after = rest & (rest - 1), eb = rest ^ after, in = eb - sb; /* in: its bytes */
        uint32_t ws = base + (uint32_t)__builtin_ctzll(sb);
        uint32_t we = base + (uint32_t)__builtin_ctzll(eb);
        if (k->m[M_DELIM] & in) { /* pieces ("user" and "for" have none) */
            emitter e = split_word((emitter){(uint32_t)(tk - l->out->tok), prev_end}, l, ws, we, ctx);
            tk = l->out->tok + e.n;
            prev_end = e.prev_end;
            ctx = false;
            t = after;
            continue;
        }
        unsigned c0 = cls[s[ws]];
        bool self = false;
        if (we - ws - 3 <= 1) { /* a day or month name, "user", "for" */
            if (we - ws == 3 && (c0 & C_UPPER) && (cls[s[ws + 1]] & cls[s[ws + 2]] & C_LOWER))
                LEAVE(true);
            self = is_context(s, ws, we);
        }
        bool var = k->m[M_DIGIT] & in;
        if (!var) {
            if ((c0 & C_PUNCT) || (k->m[M_SLASH] & in) || (we - ws >= 8 && all_of(s, ws, we, C_HEX))) {
                emitter e = one_piece((emitter){(uint32_t)(tk - l->out->tok), prev_end}, l, ws, we,
                                      false, k->m[M_SLASH] & in, ctx && !self);
                tk = l->out->tok + e.n;
                prev_end = e.prev_end;
                ctx = self;
                t = after;
                continue;
            }
            /* a user name: an identifier after "user"/"for" */
            var = ctx && !self && !(c0 & C_DIGIT) && s[ws] != '.' && s[ws] != '-' &&
                  all_of(s, ws, we, C_IDENT);
        }
        if (var) {
            uint32_t vs = ws, ve = we;
            if ((c0 & C_OPEN) || (cls[s[we - 1]] & C_CLOSE)) {
                while (vs + 1 < ve && (cls[s[vs]] & C_OPEN))
                    vs++;
                while (ve - 1 > vs && (cls[s[ve - 1]] & C_CLOSE))
                    ve--;
            }
            /* a token ends past 0, so prev_end says whether there is one */
            if (prev_end && (tk[-1].h == 0 || tk == l->full)) {
                tk[-1].len = we - tk[-1].off; /* merges into the last token */
                tk[-1].h = 0;
                prev_end = we;
            } else {
                tk->off = vs;
                tk->len = ve - vs;
                tk->sep_off = prev_end;
                tk->sep_len = vs - prev_end;
                tk->h = 0;
                tk++;
                prev_end = ve;
            }
        } else {
            if (tk == l->full) {
                tk[-1].len = we - tk[-1].off;
                tk[-1].h = 0;
            } else {
                tk->off = ws;
                tk->len = we - ws;
                tk->sep_off = prev_end;
                tk->sep_len = ws - prev_end;
                tk->h = tok_hash(s, l->len, ws, we - ws);
                tk++;
            }
            prev_end = we;
        }
        t = after;
        ctx = self;
    }
#undef LEAVE
}

void lsf_mask_line(const char *str, size_t n, lsf_masked *out)
{
    if (n > UINT32_MAX / 2)
        n = UINT32_MAX / 2;
    const unsigned char *s = (const unsigned char *)str;
    uint32_t len = (uint32_t)n, nb = len / 64 + 1;
    blk stack_masks[STACK_BLOCKS], *m = stack_masks;
    if (nb > STACK_BLOCKS && !(m = malloc(nb * sizeof(blk))))
        lsf_die("out of memory masking a %u-byte line", len);
    classify(s, len, m);
    /* 256 words take at least 511 bytes */
    uint32_t last = len >= 2 * MAX_RAW - 1 ? word_256(m, len) : UINT32_MAX;
    const line l = {s, m, len, last, out, out->tok + LSF_MASK_MAX_TOKENS, last < len ? last : len};
    walk w = {block_edges(m, 0), 0, 0, out->tok, false};
    while (fast_walk(&w, &l)) { /* a word the fast walk leaves */
        emitter e = {(uint32_t)(w.tk - out->tok), w.prev_end};
        uint64_t sb = w.t & -w.t;
        w.t ^= sb;
        uint32_t ws = w.base + (uint32_t)__builtin_ctzll(sb), we;
        uint64_t in = 0; /* the word's bytes, when it ends in its block */
        if (w.t) {
            uint64_t eb = w.t & -w.t;
            w.t ^= eb;
            we = w.base + (uint32_t)__builtin_ctzll(eb);
            in = eb - sb;
        } else {
            we = next_bit(m, M_SPACE, false, ws, len);
            w.base = we & ~63u;
            w.t = edges_after(m, we, l.last);
        }
        bool self = false;
        if (we - ws - 3 <= 1) { /* a day or month name, "user", "for" */
            uint32_t end;
            if (we - ws == 3 && (cls[s[ws]] & C_UPPER) && (end = timestamp(&l, (span){ws, we}))) {
                emit(&e, out, s, len, ws, end - ws, end, true);
                w.tk = out->tok + e.n;
                w.prev_end = e.prev_end;
                w.ctx = false; /* the run ends in digits */
                w.base = end & ~63u;
                w.t = edges_after(m, end, l.last);
                continue;
            }
            self = is_context(s, ws, we);
        }
        const blk *k = &m[ws >> 6];
        if (!in || (k->m[M_DELIM] & in))
            e = split_word(e, &l, ws, we, w.ctx);
        else
            e = one_piece(e, &l, ws, we, k->m[M_DIGIT] & in, k->m[M_SLASH] & in, w.ctx && !self);
        w.tk = out->tok + e.n;
        w.prev_end = e.prev_end;
        w.ctx = self;
    }
    if (last != UINT32_MAX && w.prev_end <= last) { /* the 256th word, unless a timestamp took it */
        emitter e = {(uint32_t)(w.tk - out->tok), w.prev_end};
        e = split_word(e, &l, last, last_end(s, len), w.ctx);
        w.tk = out->tok + e.n;
        w.prev_end = e.prev_end;
    }
    if (m != stack_masks)
        free(m);
    out->n = (uint32_t)(w.tk - out->tok);
    if (out->n == 0) {
        out->tok[0] = (lsf_mtok){len, 0, 0, len, 0};
        out->n = 1;
        w.prev_end = len;
    }
    out->trail_off = w.prev_end;
}
