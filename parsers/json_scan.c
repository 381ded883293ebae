/* json_scan.c - strict one-pass JSON scanning without a tree (see json_scan.h).
 *
 * Design: a recursive-descent validator whose value reader returns slices.
 * Strictness matches what a JSON library would accept (no comments, no
 * trailing commas, no control characters or invalid UTF-8 in strings, no
 * lone surrogate escapes), so a line is JSON for logsift exactly when it is
 * JSON for everyone else, and raw spans of arrays can be written out as they
 * are. Nesting deeper than MAX_DEPTH is rejected rather than risk the stack.
 * Threads: pure functions.
 */
#include "json_scan.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#ifdef __SSE2__
#include <emmintrin.h>
#endif

#define MAX_DEPTH 128

typedef struct scan {
    const char *p, *end;
    lsf_arena *arena;
} scan;

static void skip_ws(scan *s)
{
    while (s->p < s->end && (*s->p == ' ' || *s->p == '\t' || *s->p == '\n' || *s->p == '\r'))
        s->p++;
}

/* Length of the valid UTF-8 sequence at p (non-ASCII lead byte), 0 if
 * invalid: overlongs, surrogates and code points above U+10FFFF too. */
static size_t utf8_len(const unsigned char *p, const unsigned char *end)
{
    unsigned c = p[0];
    size_t n;
    unsigned min;
    if (c >= 0xC2 && c <= 0xDF) {
        n = 2;
        min = 0x80;
    } else if (c >= 0xE0 && c <= 0xEF) {
        n = 3;
        min = 0x800;
    } else if (c >= 0xF0 && c <= 0xF4) {
        n = 4;
        min = 0x10000;
    } else {
        return 0;
    }
    if ((size_t)(end - p) < n)
        return 0;
    unsigned cp = c & (0x7F >> n);
    for (size_t i = 1; i < n; i++) {
        if ((p[i] & 0xC0) != 0x80)
            return 0;
        cp = (cp << 6) | (p[i] & 0x3F);
    }
    if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
        return 0;
    return n;
}

static int hex4(const char *p, unsigned *out)
{
    unsigned v = 0;
    for (int i = 0; i < 4; i++) {
        char c = p[i];
        v <<= 4;
        if (c >= '0' && c <= '9')
            v |= (unsigned)(c - '0');
        else if (c >= 'a' && c <= 'f')
            v |= (unsigned)(c - 'a' + 10);
        else if (c >= 'A' && c <= 'F')
            v |= (unsigned)(c - 'A' + 10);
        else
            return -1;
    }
    *out = v;
    return 0;
}

static size_t put_utf8(char *o, unsigned cp)
{
    if (cp < 0x80) {
        o[0] = (char)cp;
        return 1;
    }
    if (cp < 0x800) {
        o[0] = (char)(0xC0 | (cp >> 6));
        o[1] = (char)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        o[0] = (char)(0xE0 | (cp >> 12));
        o[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
        o[2] = (char)(0x80 | (cp & 0x3F));
        return 3;
    }
    o[0] = (char)(0xF0 | (cp >> 18));
    o[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
    o[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
    o[3] = (char)(0x80 | (cp & 0x3F));
    return 4;
}

/* Decodes the escaped string body [a, b) (already validated) into the arena. */
static int decode(scan *s, const char *a, const char *b, lsf_str *out)
{
    char *o = lsf_arena_alloc(s->arena, (size_t)(b - a)); /* decoding never grows */
    size_t n = 0;
    while (a < b) {
        if (*a != '\\') {
            o[n++] = *a++;
            continue;
        }
        a++;
        char e = *a++;
        switch (e) {
        case '"': o[n++] = '"'; break;
        case '\\': o[n++] = '\\'; break;
        case '/': o[n++] = '/'; break;
        case 'b': o[n++] = '\b'; break;
        case 'f': o[n++] = '\f'; break;
        case 'n': o[n++] = '\n'; break;
        case 'r': o[n++] = '\r'; break;
        case 't': o[n++] = '\t'; break;
        case 'u': {
            unsigned cp, lo;
            hex4(a, &cp);
            a += 4;
            if (cp >= 0xD800 && cp <= 0xDBFF) { /* validated: a low surrogate follows */
                hex4(a + 2, &lo);
                a += 6;
                cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
            }
            n += put_utf8(o + n, cp);
            break;
        }
        default:
            return -1;
        }
    }
    *out = lsf_str_make(o, n);
    return 0;
}

/* Reads a string at s->p (on the opening quote). */
/* Advances s->p over plain characters (printable ASCII other than '"' and
 * '\\'), 16 at a time; strings in logs are mostly plain, and the byte loop
 * below then only sees the few characters that need a decision. */
static inline void skip_plain(scan *s)
{
#ifdef __SSE2__
    const __m128i quote = _mm_set1_epi8('"'), bslash = _mm_set1_epi8('\\');
    const __m128i space = _mm_set1_epi8(0x20);
    while (s->end - s->p >= 16) {
        __m128i v = _mm_loadu_si128((const __m128i *)(const void *)s->p);
        /* signed compare: control characters and bytes >= 0x80 are below 0x20 */
        __m128i special = _mm_or_si128(_mm_or_si128(_mm_cmpeq_epi8(v, quote), _mm_cmpeq_epi8(v, bslash)),
                                       _mm_cmplt_epi8(v, space));
        unsigned mask = (unsigned)_mm_movemask_epi8(special);
        if (mask) {
            s->p += __builtin_ctz(mask);
            return;
        }
        s->p += 16;
    }
#else
    (void)s;
#endif
}

static int read_string(scan *s, lsf_str *out)
{
    const char *start = ++s->p;
    bool escaped = false;
    while (s->p < s->end) {
        skip_plain(s);
        if (s->p >= s->end)
            break;
        unsigned char c = (unsigned char)*s->p;
        if (c == '"') {
            const char *stop = s->p++;
            if (!escaped) {
                *out = lsf_str_make(start, (size_t)(stop - start));
                return 0;
            }
            return decode(s, start, stop, out);
        }
        if (c < 0x20)
            return -1;
        if (c == '\\') {
            escaped = true;
            if (s->end - s->p < 2)
                return -1;
            char e = s->p[1];
            if (e == 'u') {
                unsigned cp, lo;
                if (s->end - s->p < 6 || hex4(s->p + 2, &cp) < 0)
                    return -1;
                s->p += 6;
                if (cp >= 0xDC00 && cp <= 0xDFFF)
                    return -1; /* lone low surrogate */
                if (cp >= 0xD800 && cp <= 0xDBFF) {
                    if (s->end - s->p < 6 || s->p[0] != '\\' || s->p[1] != 'u' ||
                        hex4(s->p + 2, &lo) < 0 || lo < 0xDC00 || lo > 0xDFFF)
                        return -1;
                    s->p += 6;
                }
                continue;
            }
            if (!strchr("\"\\/bfnrt", e) || e == 0)
                return -1;
            s->p += 2;
            continue;
        }
        if (c < 0x80) {
            s->p++;
            continue;
        }
        size_t k = utf8_len((const unsigned char *)s->p, (const unsigned char *)s->end);
        if (!k)
            return -1;
        s->p += k;
    }
    return -1;
}

static int read_number(scan *s, lsf_jval *v)
{
    const char *a = s->p;
    bool is_int = true;
    if (s->p < s->end && *s->p == '-')
        s->p++;
    if (s->p >= s->end)
        return -1;
    if (*s->p == '0') {
        s->p++;
    } else if (*s->p >= '1' && *s->p <= '9') {
        while (s->p < s->end && *s->p >= '0' && *s->p <= '9')
            s->p++;
    } else {
        return -1;
    }
    if (s->p < s->end && *s->p == '.') {
        is_int = false;
        s->p++;
        const char *d = s->p;
        while (s->p < s->end && *s->p >= '0' && *s->p <= '9')
            s->p++;
        if (s->p == d)
            return -1;
    }
    if (s->p < s->end && (*s->p == 'e' || *s->p == 'E')) {
        is_int = false;
        s->p++;
        if (s->p < s->end && (*s->p == '+' || *s->p == '-'))
            s->p++;
        const char *d = s->p;
        while (s->p < s->end && *s->p >= '0' && *s->p <= '9')
            s->p++;
        if (s->p == d)
            return -1;
    }
    size_t len = (size_t)(s->p - a);
    v->raw = lsf_str_make(a, len);
    char tmp[64];
    char *txt = len < sizeof(tmp) ? tmp : lsf_arena_alloc(s->arena, len + 1);
    memcpy(txt, a, len);
    txt[len] = 0;
    if (is_int) {
        errno = 0;
        long long iv = strtoll(txt, NULL, 10);
        if (errno == 0) {
            v->kind = LSF_J_INT;
            v->i = iv;
            return 0;
        }
    }
    v->kind = LSF_J_FLOAT;
    v->f = strtod(txt, NULL);
    return 0;
}

static int read_value(scan *s, lsf_jval *v, int depth);

/* Reads an object or array at s->p, calling cb per member when given. */
static int read_container(scan *s, int depth, lsf_jmember_cb cb, void *arg)
{
    char close = *s->p == '{' ? '}' : ']';
    bool object = close == '}';
    if (depth > MAX_DEPTH)
        return -1;
    s->p++;
    skip_ws(s);
    if (s->p < s->end && *s->p == close) {
        s->p++;
        return 0;
    }
    for (;;) {
        lsf_str key = LSF_STR_NULL;
        if (object) {
            if (s->p >= s->end || *s->p != '"' || read_string(s, &key) < 0)
                return -1;
            skip_ws(s);
            if (s->p >= s->end || *s->p != ':')
                return -1;
            s->p++;
            skip_ws(s);
        }
        lsf_jval v;
        if (read_value(s, &v, depth + 1) < 0)
            return -1;
        if (cb)
            cb(arg, key, &v);
        skip_ws(s);
        if (s->p >= s->end)
            return -1;
        if (*s->p == ',') {
            s->p++;
            skip_ws(s);
            continue;
        }
        if (*s->p == close) {
            s->p++;
            return 0;
        }
        return -1;
    }
}

static int literal(scan *s, const char *word, size_t n)
{
    if ((size_t)(s->end - s->p) < n || memcmp(s->p, word, n) != 0)
        return -1;
    s->p += n;
    return 0;
}

static int read_value(scan *s, lsf_jval *v, int depth)
{
    const char *a = s->p;
    if (s->p >= s->end)
        return -1;
    int rc;
    switch (*s->p) {
    case '"':
        v->kind = LSF_J_STR;
        rc = read_string(s, &v->s);
        break;
    case '{':
    case '[':
        v->kind = *s->p == '{' ? LSF_J_OBJ : LSF_J_ARR;
        rc = read_container(s, depth, NULL, NULL);
        break;
    case 't':
        v->kind = LSF_J_TRUE;
        rc = literal(s, "true", 4);
        break;
    case 'f':
        v->kind = LSF_J_FALSE;
        rc = literal(s, "false", 5);
        break;
    case 'n':
        v->kind = LSF_J_NULL;
        rc = literal(s, "null", 4);
        break;
    default:
        return read_number(s, v);
    }
    v->raw = lsf_str_make(a, (size_t)(s->p - a));
    return rc;
}

int lsf_json_scan_object(const char *p, size_t n, lsf_arena *arena, lsf_jmember_cb cb, void *arg)
{
    scan s = {p, p + n, arena};
    skip_ws(&s);
    if (s.p >= s.end || *s.p != '{')
        return -1;
    if (read_container(&s, 1, cb, arg) < 0)
        return -1;
    skip_ws(&s);
    return s.p == s.end ? 0 : -1;
}

static bool is_ws(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

lsf_str lsf_json_compact(lsf_arena *arena, lsf_str raw)
{
    bool in_str = false, esc = false, has_ws = false;
    for (uint32_t i = 0; i < raw.len && !has_ws; i++) {
        char c = raw.ptr[i];
        if (in_str) {
            if (esc)
                esc = false;
            else if (c == '\\')
                esc = true;
            else if (c == '"')
                in_str = false;
        } else if (c == '"') {
            in_str = true;
        } else {
            has_ws = is_ws(c);
        }
    }
    if (!has_ws)
        return raw;
    char *o = lsf_arena_alloc(arena, raw.len);
    size_t n = 0;
    in_str = esc = false;
    for (uint32_t i = 0; i < raw.len; i++) {
        char c = raw.ptr[i];
        if (in_str) {
            if (esc)
                esc = false;
            else if (c == '\\')
                esc = true;
            else if (c == '"')
                in_str = false;
        } else if (c == '"') {
            in_str = true;
        } else if (is_ws(c)) {
            continue;
        }
        o[n++] = c;
    }
    return lsf_str_make(o, n);
}
