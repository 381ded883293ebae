/* library.c - pattern macros: the standard library, %{NAME:field:type}
 * expansion, renaming of named groups, and the nested-quantifier lint.
 *
 * The one design choice to know: a field name is never a PCRE2 group name.
 * Expansion turns %{IP:source.ip} into (?<source.ip>...), and renaming then
 * turns every named group into (?<_gN>...) and remembers "N -> source.ip"
 * (PCRE2 names cannot hold dots or types; ours can). The same renamed text
 * goes to PCRE2 and to Hyperscan, so both see exactly one pattern.
 *
 * All scanners here walk a pattern the way PCRE2 tokenises it: a backslash
 * escapes the next character, \Q...\E is literal, [...] is a class (with
 * [:name:] inside and a leading ] literal), (?#...) is a comment.
 *
 * Threads: pure functions over their arguments; the library is const data.
 */
#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/log.h"
#include "rules/rules_int.h"

/* ---- growable string ------------------------------------------------------- */

void lsf_sbuf_add(lsf_sbuf *s, const char *p, size_t n)
{
    if (s->len + n + 1 > s->cap) {
        size_t cap = s->cap ? s->cap : 64;
        while (cap < s->len + n + 1)
            cap *= 2;
        char *np = realloc(s->p, cap);
        if (!np)
            lsf_die("out of memory (pattern text)");
        s->p = np;
        s->cap = cap;
    }
    memcpy(s->p + s->len, p, n);
    s->len += n;
    s->p[s->len] = 0;
}

void lsf_sbuf_adds(lsf_sbuf *s, const char *str) { lsf_sbuf_add(s, str, strlen(str)); }

void lsf_sbuf_addf(lsf_sbuf *s, const char *fmt, ...)
{
    char tmp[512];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(tmp, sizeof(tmp), fmt, ap);
    va_end(ap);
    if (n < 0)
        return;
    if ((size_t)n < sizeof(tmp)) {
        lsf_sbuf_add(s, tmp, (size_t)n);
        return;
    }
    char *big = malloc((size_t)n + 1);
    if (!big)
        lsf_die("out of memory");
    va_start(ap, fmt);
    vsnprintf(big, (size_t)n + 1, fmt, ap);
    va_end(ap);
    lsf_sbuf_add(s, big, (size_t)n);
    free(big);
}

void lsf_sbuf_free(lsf_sbuf *s)
{
    free(s->p);
    memset(s, 0, sizeof(*s));
}

char *lsf_sbuf_take(lsf_sbuf *s)
{
    if (!s->p)
        lsf_sbuf_add(s, "", 0);
    char *p = s->p;
    memset(s, 0, sizeof(*s));
    return p;
}

/* ---- position maps ---------------------------------------------------------- */

void lsf_posmap_free(lsf_posmap *m)
{
    free(m->v);
    memset(m, 0, sizeof(*m));
}

static void pm_push(lsf_posmap *m, uint32_t off)
{
    if (m->n == m->cap) {
        m->cap = m->cap ? m->cap * 2 : 64;
        m->v = realloc(m->v, m->cap * sizeof(uint32_t));
        if (!m->v)
            lsf_die("out of memory");
    }
    m->v[m->n++] = off;
}

/* Map entries for out bytes up to `len`, all from offset off (or, with
 * `step`, from off, off+1, ...). */
static void pm_fill(lsf_posmap *m, size_t len, size_t off, bool step)
{
    if (!m)
        return;
    while (m->n < len)
        pm_push(m, (uint32_t)(step ? off++ : off));
}

/* ---- the standard library --------------------------------------------------
 * Written for logs: bytes, not Unicode; the number-like patterns refuse to
 * start or end inside a longer number where that matters (IPV4). Bodies may
 * use other library names. */

typedef struct libpat {
    const char *name, *body;
} libpat;

#define H "[0-9A-Fa-f]"
#define H4 H "{1,4}"
#define IPV6_END "(?![:0-9A-Fa-f]|\\.[0-9])"
static const libpat stdlib[] = {
    /* numbers */
    {"INT", "[+-]?[0-9]+"},
    {"POSINT", "[0-9]+"},
    {"NONNEGINT", "[0-9]+"},
    {"NUMBER", "[+-]?(?:[0-9]+(?:\\.[0-9]*)?|\\.[0-9]+)(?:[eE][+-]?[0-9]+)?"},
    {"BASE16NUM", "(?:0[xX])?" H "+"},
    /* words and text */
    {"WORD", "\\w+"},
    {"NOTSPACE", "\\S+"},
    {"SPACE", "\\s*"},
    {"DATA", ".*?"},
    {"GREEDYDATA", ".*"},
    {"QUOTEDSTRING", "\"(?:[^\"\\\\]|\\\\.)*\"|'(?:[^'\\\\]|\\\\.)*'"},
    {"UUID", H "{8}-" H "{4}-" H "{4}-" H "{4}-" H "{12}"},
    {"LOGLEVEL",
     "(?i:trace|debug|info(?:rmation(?:al)?)?|notice|warn(?:ing)?|err(?:or)?|crit(?:ical)?|"
     "fatal|severe|emerg(?:ency)?|alert|panic)"},
    /* network */
    {"IPV4", "(?<![0-9])(?:(?:25[0-5]|2[0-4][0-9]|1[0-9]{2}|[1-9]?[0-9])\\.){3}"
             "(?:25[0-5]|2[0-4][0-9]|1[0-9]{2}|[1-9]?[0-9])(?![0-9])"},
    {"IPV6", "(?:"
             /* with an embedded IPv4 address first, so ::ffff:1.2.3.4 is whole */
             "(?:" H4 ":){6}%{IPV4}|::(?:" H4 ":){0,5}%{IPV4}|(?:" H4 ":){1,5}:(?:" H4
             ":){0,4}%{IPV4}"
             /* eight groups, then the compressed forms, longest first */
             "|(?:" H4 ":){7}" H4 "|(?:" H4 ":){1,6}(?::" H4 "){1,6}|(?:" H4 ":){1,7}:"
             "|::(?:" H4 ":){0,6}" H4 "|::"
             ")(?:%[0-9A-Za-z._-]+)?" IPV6_END},
    {"IP", "%{IPV4}|%{IPV6}"},
    {"HOSTNAME", "[0-9A-Za-z](?:[0-9A-Za-z_-]{0,62})(?:\\.[0-9A-Za-z_](?:[0-9A-Za-z_-]{0,62}))*\\.?"},
    {"IPORHOST", "%{IP}|%{HOSTNAME}"},
    {"HOSTPORT", "%{IPORHOST}:%{POSINT}"},
    {"MAC", "(?:" H "{2}[:-]){5}" H "{2}|(?:" H "{4}\\.){2}" H "{4}"},
    {"USERNAME", "[A-Za-z0-9._-]+"},
    {"USER", "%{USERNAME}"},
    {"EMAILLOCALPART", "[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(?:\\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*"},
    {"EMAIL", "%{EMAILLOCALPART}@%{HOSTNAME}"},
    {"EMAILADDRESS", "%{EMAIL}"},
    /* paths and URIs */
    {"UNIXPATH", "(?:/[^\\s/]*)+"},
    {"WINPATH", "(?:[A-Za-z]:|\\\\)(?:\\\\[^\\\\\\s]*)+"},
    {"PATH", "%{UNIXPATH}|%{WINPATH}"},
    {"URIPROTO", "[A-Za-z][A-Za-z0-9+.-]*"},
    {"URIHOST", "%{IPORHOST}(?::%{POSINT})?"},
    {"URIPATH", "(?:/[A-Za-z0-9$.+!*'(){},~:;=@#%&_\\-]*)+"},
    {"URIQUERY", "[A-Za-z0-9$.+!*'|(){},~@#%&/=:;_?\\-\\[\\]<>^`]*"},
    {"URIPARAM", "\\?%{URIQUERY}"},
    {"URIPATHPARAM", "%{URIPATH}(?:%{URIPARAM})?"},
    {"URI", "%{URIPROTO}://(?:%{USER}(?::[^@\\s]*)?@)?(?:%{URIHOST})?(?:%{URIPATHPARAM})?"},
    /* dates and times */
    {"MONTH", "(?:Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec)[a-z]{0,6}"},
    {"MONTHNUM", "0?[1-9]|1[0-2]"},
    {"MONTHDAY", "0[1-9]|[12][0-9]|3[01]|[1-9]"},
    {"DAY", "(?:Mon|Tue|Wed|Thu|Fri|Sat|Sun)[a-z]{0,6}"},
    {"YEAR", "[0-9]{4}"},
    {"HOUR", "2[0-3]|[01]?[0-9]"},
    {"MINUTE", "[0-5][0-9]"},
    {"SECOND", "(?:[0-5]?[0-9]|60)(?:[.,][0-9]+)?"},
    {"TIME", "(?:%{HOUR}):%{MINUTE}(?::%{SECOND})?"},
    {"ISO8601_TIMEZONE", "Z|[+-][0-9]{2}(?::?[0-9]{2})?"},
    {"TIMESTAMP_ISO8601",
     "%{YEAR}-[0-9]{2}-[0-9]{2}[T ][0-9]{2}:[0-9]{2}(?::[0-9]{2}(?:[.,][0-9]+)?)?"
     "(?:%{ISO8601_TIMEZONE})?"},
    {"SYSLOGTIMESTAMP", "%{MONTH} +(?:%{MONTHDAY}) %{TIME}"},
    {"HTTPDATE", "(?:%{MONTHDAY})/%{MONTH}/%{YEAR}:%{TIME} [+-][0-9]{4}"},
    {"DATE_US", "(?:%{MONTHNUM})[/-](?:%{MONTHDAY})[/-]%{YEAR}"},
    {"DATE_EU", "(?:%{MONTHDAY})[./-](?:%{MONTHNUM})[./-]%{YEAR}"},
    /* syslog odds and ends */
    {"PROG", "[\\w._/%-]+"},
    {"HTTPMETHOD", "[A-Z]{3,10}"},
    {"HTTPVERSION", "HTTP/[0-9](?:\\.[0-9])?"},
};

/* Prefilter stand-ins: supersets of the heavy library patterns (every text
 * the real body matches, these match too), so the Hyperscan databases stay
 * small and quick to build; PCRE2 still confirms with the real body. */
static const libpat stdlib_prefilter[] = {
    {"IPV4", "[0-9.]+"},
    {"IPV6", "[0-9A-Fa-f.]*:[0-9A-Za-z:.%_-]*"},
    {"IP", "[0-9A-Za-z:.%_-]+"},
    {"HOSTNAME", "[0-9A-Za-z_.-]+"},
    {"IPORHOST", "[0-9A-Za-z:.%_-]+"},
    {"HOSTPORT", "[0-9A-Za-z:.%_-]+"},
    {"URIHOST", "[0-9A-Za-z:.%_-]+"},
    {"MAC", "[0-9A-Fa-f:.-]+"},
    {"UUID", "[0-9A-Fa-f-]+"},
    {"EMAILLOCALPART", "[^\\s@]+"},
    {"EMAIL", "[^\\s@]+@[0-9A-Za-z_.-]+"},
    {"EMAILADDRESS", "[^\\s@]+@[0-9A-Za-z_.-]+"},
    {"URIPATH", "/\\S*"},
    {"URIPATHPARAM", "/\\S*"},
    {"URI", "[A-Za-z][A-Za-z0-9+.-]*://\\S*"},
    {"TIMESTAMP_ISO8601", "[0-9]{4}-[0-9]{2}-[0-9]{2}[T ][0-9]{2}:[0-9]{2}[0-9:.,+Z-]*"},
    {"MONTH", "[A-S][a-z]{2,8}"},
    {"DAY", "[FMSTW][a-z]{2,8}"},
};

static const char *stdlib_lookup(const libpat *t, size_t n, const char *name, size_t len)
{
    for (size_t i = 0; i < n; i++)
        if (strlen(t[i].name) == len && memcmp(t[i].name, name, len) == 0)
            return t[i].body;
    return NULL;
}

const char *const lsf_stdlib_names[] = {
    "INT", "POSINT", "NONNEGINT", "NUMBER", "BASE16NUM", "WORD", "NOTSPACE", "SPACE", "DATA",
    "GREEDYDATA", "QUOTEDSTRING", "UUID", "LOGLEVEL", "IPV4", "IPV6", "IP", "HOSTNAME",
    "IPORHOST", "HOSTPORT", "MAC", "USERNAME", "USER", "EMAILLOCALPART", "EMAIL", "EMAILADDRESS",
    "UNIXPATH", "WINPATH", "PATH", "URIPROTO", "URIHOST", "URIPATH", "URIQUERY", "URIPARAM",
    "URIPATHPARAM", "URI", "MONTH", "MONTHNUM", "MONTHDAY", "DAY", "YEAR", "HOUR", "MINUTE",
    "SECOND", "TIME", "ISO8601_TIMEZONE", "TIMESTAMP_ISO8601", "SYSLOGTIMESTAMP", "HTTPDATE",
    "DATE_US", "DATE_EU", "PROG", "HTTPMETHOD", "HTTPVERSION", NULL};

const char *lsf_stdlib_pattern(const char *name, size_t len)
{
    return stdlib_lookup(stdlib, sizeof(stdlib) / sizeof(stdlib[0]), name, len);
}

const char *lsf_stdlib_prefilter_pattern(const char *name, size_t len)
{
    const char *b = stdlib_lookup(stdlib_prefilter, sizeof(stdlib_prefilter) /
                                                        sizeof(stdlib_prefilter[0]), name, len);
    return b ? b : lsf_stdlib_pattern(name, len);
}

/* ---- tokenising helpers ------------------------------------------------------ */

size_t lsf_re_escape_len(const char *p)
{
    if (!p[1])
        return 1;
    char c = p[1];
    if ((c == 'x' || c == 'o' || c == 'N' || c == 'p' || c == 'P' || c == 'g' || c == 'k') &&
        p[2] == '{') {
        const char *e = strchr(p + 2, '}');
        return e ? (size_t)(e - p) + 1 : strlen(p);
    }
    if ((c == 'g' || c == 'k') && (p[2] == '<' || p[2] == '\'')) { /* \g<n> \k<n> \k'n' */
        const char *e = strchr(p + 3, p[2] == '<' ? '>' : '\'');
        return e ? (size_t)(e - p) + 1 : strlen(p);
    }
    size_t n = 2;
    if (c == 'x') { /* \xHH: up to two hex digits */
        while (n < 4 && isxdigit((unsigned char)p[n]))
            n++;
    } else if (c == 'c' && p[2]) { /* \cX */
        n = 3;
    } else if (c == 'g' && (p[2] == '-' || p[2] == '+' || isdigit((unsigned char)p[2]))) {
        n = 3;
        while (isdigit((unsigned char)p[n]))
            n++;
    } else if (isdigit((unsigned char)c)) { /* \0oo octal, \N back-reference */
        while (n < 4 && isdigit((unsigned char)p[n]))
            n++;
    } else if ((c == 'p' || c == 'P') && p[2]) {
        n = 3;
    }
    return n;
}

size_t lsf_re_class_len(const char *p)
{
    const char *q = p + 1;
    if (*q == '^')
        q++;
    if (*q == ']')
        q++;
    while (*q && *q != ']') {
        if (*q == '\\' && q[1])
            q += lsf_re_escape_len(q);
        else if (q[0] == '[' && q[1] == ':') {
            const char *e = strstr(q + 2, ":]");
            q = e ? e + 2 : q + 1;
        } else
            q++;
    }
    return *q ? (size_t)(q - p) + 1 : (size_t)(q - p);
}

size_t lsf_re_opaque_len(const char *p)
{
    if (p[0] == '\\' && p[1] == 'Q') {
        const char *e = strstr(p + 2, "\\E");
        return e ? (size_t)(e - p) + 2 : strlen(p);
    }
    if (p[0] == '\\')
        return lsf_re_escape_len(p);
    if (p[0] == '[')
        return lsf_re_class_len(p);
    if (p[0] == '(' && p[1] == '?' && p[2] == '#') {
        const char *e = strchr(p, ')');
        return e ? (size_t)(e - p) + 1 : strlen(p);
    }
    return 0;
}

static bool is_name_char(char c) { return isalnum((unsigned char)c) || c == '_'; }
static bool is_field_char(char c)
{
    return isalnum((unsigned char)c) || c == '_' || c == '.' || c == '@' || c == '-';
}

int lsf_cap_type_parse(const char *s, size_t n)
{
    static const char *const names[] = {"string", "int", "float", "ip", "bool"};
    for (int i = 0; i < 5; i++)
        if (strlen(names[i]) == n && memcmp(names[i], s, n) == 0)
            return i;
    return -1;
}

/* ---- %{} expansion ------------------------------------------------------------ */

#define MAX_EXPAND_DEPTH 24

typedef struct expand_ctx {
    const lsf_pack *packs;
    size_t npacks;
    const lsf_node *at;
    lsf_errbuf *err;
    lsf_posmap *map; /* top level only */
    bool prefilter;  /* library names expand to their prefilter stand-ins */
    const char *stack[MAX_EXPAND_DEPTH]; /* pattern bodies being expanded */
    int depth;
} expand_ctx;

static int expand(expand_ctx *x, const char *src, const lsf_pack *pk, lsf_sbuf *out);

/* Finds the body of NAME (possibly "pack.NAME") seen from pack pk; sets
 * *owner to the pack whose scope the body expands in. */
static const char *resolve(expand_ctx *x, const char *name, size_t len, const lsf_pack *pk,
                           const lsf_pack **owner)
{
    const char *dot = memchr(name, '.', len);
    if (dot) {
        size_t plen = (size_t)(dot - name);
        for (size_t i = 0; i < x->npacks; i++) {
            const lsf_pack *o = &x->packs[i];
            if (o->name && strlen(o->name) == plen && memcmp(o->name, name, plen) == 0) {
                const lsf_pattern *pt = lsf_pack_pattern(o, dot + 1, len - plen - 1);
                *owner = o;
                return pt ? pt->body : NULL;
            }
        }
        *owner = NULL;
        return NULL;
    }
    if (pk) {
        const lsf_pattern *pt = lsf_pack_pattern(pk, name, len);
        if (pt) {
            *owner = pk;
            return pt->body;
        }
    }
    *owner = NULL;
    return x->prefilter ? lsf_stdlib_prefilter_pattern(name, len) : lsf_stdlib_pattern(name, len);
}

/* Expands one %{...} at p (p points at '%'); returns bytes consumed or -1. */
static long expand_macro(expand_ctx *x, const char *p, const lsf_pack *pk, lsf_sbuf *out)
{
    const char *end = strchr(p + 2, '}');
    if (!end)
        return lsf_node_error(x->err, x->at, "unterminated %%{ in pattern"), -1;
    const char *name = p + 2, *q = name;
    while (q < end && (is_name_char(*q) || *q == '.' || *q == '-'))
        q++;
    size_t nlen = (size_t)(q - name);
    const char *field = NULL, *type = NULL;
    size_t flen = 0, tlen = 0;
    if (q < end && *q == ':') {
        field = ++q;
        while (q < end && *q != ':')
            q++;
        flen = (size_t)(q - field);
        if (q < end) {
            type = ++q;
            tlen = (size_t)(end - type);
            q = end;
        }
    }
    if (nlen == 0 || q != end || (field && flen == 0))
        return lsf_node_error(x->err, x->at, "bad macro '%.*s': write %%{NAME}, %%{NAME:field} "
                              "or %%{NAME:field:type}", (int)(end - p + 1), p), -1;
    for (size_t i = 0; i < flen; i++)
        if (!is_field_char(field[i]))
            return lsf_node_error(x->err, x->at, "bad field name '%.*s' in %%{%.*s}", (int)flen,
                                  field, (int)(end - name), name), -1;
    if (type && lsf_cap_type_parse(type, tlen) < 0)
        return lsf_node_error(x->err, x->at, "unknown type '%.*s' in %%{%.*s} (string, int, "
                              "float, ip or bool)", (int)tlen, type, (int)(end - name), name), -1;
    const lsf_pack *owner = NULL;
    const char *body = resolve(x, name, nlen, pk, &owner);
    if (!body) {
        const char *dot = memchr(name, '.', nlen);
        if (dot && !owner)
            return lsf_node_error(x->err, x->at, "%%{%.*s}: no pack named '%.*s' is loaded",
                                  (int)nlen, name, (int)(dot - name), name), -1;
        return lsf_node_error(x->err, x->at, "unknown pattern %%{%.*s}%s", (int)nlen, name,
                              dot ? "" : " (not in this pack nor in the standard library)"), -1;
    }
    for (int i = 0; i < x->depth; i++)
        if (x->stack[i] == body)
            return lsf_node_error(x->err, x->at, "pattern %.*s refers to itself", (int)nlen,
                                  name), -1;
    if (x->depth == MAX_EXPAND_DEPTH)
        return lsf_node_error(x->err, x->at, "patterns nested more than %d deep at %%{%.*s}",
                              MAX_EXPAND_DEPTH, (int)nlen, name), -1;
    if (field) {
        lsf_sbuf_adds(out, "(?<");
        lsf_sbuf_add(out, field, flen);
        if (type) {
            lsf_sbuf_adds(out, ":");
            lsf_sbuf_add(out, type, tlen);
        }
        lsf_sbuf_adds(out, ">");
    } else {
        lsf_sbuf_adds(out, "(?:");
    }
    x->stack[x->depth++] = body;
    int rc = expand(x, body, owner, out);
    x->depth--;
    if (rc < 0)
        return -1;
    lsf_sbuf_adds(out, ")");
    return (long)(end - p) + 1;
}

static int expand(expand_ctx *x, const char *src, const lsf_pack *pk, lsf_sbuf *out)
{
    lsf_posmap *map = x->depth == 0 ? x->map : NULL;
    const char *p = src;
    while (*p) {
        size_t n = lsf_re_opaque_len(p);
        if (n) {
            lsf_sbuf_add(out, p, n);
            pm_fill(map, out->len, (size_t)(p - src), true);
            p += n;
            continue;
        }
        if (p[0] == '%' && p[1] == '{') {
            long used = expand_macro(x, p, pk, out);
            if (used < 0)
                return -1;
            pm_fill(map, out->len, (size_t)(p - src), false);
            p += used;
            continue;
        }
        lsf_sbuf_add(out, p, 1);
        pm_fill(map, out->len, (size_t)(p - src), true);
        p++;
    }
    return 0;
}

int lsf_pattern_expand(const char *src, const lsf_pack *pk, const lsf_pack *packs, size_t npacks,
                       lsf_sbuf *out, lsf_posmap *map, const lsf_node *at, lsf_errbuf *err)
{
    expand_ctx x = {.packs = packs, .npacks = npacks, .at = at, .err = err, .map = map};
    return expand(&x, src, pk, out);
}

int lsf_pattern_expand_prefilter(const char *src, const lsf_pack *pk, const lsf_pack *packs,
                                 size_t npacks, lsf_sbuf *out, lsf_errbuf *err)
{
    expand_ctx x = {.packs = packs, .npacks = npacks, .err = err, .prefilter = true};
    return expand(&x, src, pk, out);
}

/* ---- renaming named groups ------------------------------------------------------ */

/* If p starts a named group, returns the length of its opening "(?<" etc.
 * and sets the name span and the closing delimiter. */
static size_t group_open(const char *p, const char **name, char *close)
{
    if (p[0] != '(' || p[1] != '?')
        return 0;
    if (p[2] == '<' && p[3] != '=' && p[3] != '!') {
        *name = p + 3;
        *close = '>';
        return 3;
    }
    if (p[2] == '\'') {
        *name = p + 3;
        *close = '\'';
        return 3;
    }
    if (p[2] == 'P' && p[3] == '<') {
        *name = p + 4;
        *close = '>';
        return 4;
    }
    return 0;
}

/* If p starts a named reference (\k<n> \k'n' \k{n} \g{n} (?P=n) (?&n) (?P>n)),
 * returns its prefix length, the closing delimiter, and sets *name. */
static size_t ref_open(const char *p, const char **name, char *close)
{
    static const struct {
        const char *open;
        char close;
    } forms[] = {{"\\k<", '>'}, {"\\k'", '\''}, {"\\k{", '}'}, {"\\g{", '}'},
                 {"(?P=", ')'}, {"(?&", ')'},   {"(?P>", ')'}};
    for (size_t i = 0; i < sizeof(forms) / sizeof(forms[0]); i++) {
        size_t n = strlen(forms[i].open);
        if (strncmp(p, forms[i].open, n) == 0) {
            /* \g{3} and \g{-1} are numbered references: leave them */
            if (p[1] == 'g' && (isdigit((unsigned char)p[n]) || p[n] == '-' || p[n] == '+'))
                return 0;
            *name = p + n;
            *close = forms[i].close;
            return n;
        }
    }
    return 0;
}

void lsf_group_names_free(lsf_group_name *names, uint32_t n)
{
    for (uint32_t i = 0; i < n; i++)
        free(names[i].field);
    free(names);
}

/* Parses "field[:type]" of length len into g. */
static int parse_group_name(const char *s, size_t len, lsf_group_name *g, const lsf_node *at,
                            lsf_errbuf *err)
{
    const char *colon = memchr(s, ':', len);
    size_t flen = colon ? (size_t)(colon - s) : len;
    if (flen == 0)
        return lsf_node_error(err, at, "empty capture name in (?<%.*s>", (int)len, s);
    for (size_t i = 0; i < flen; i++)
        if (!is_field_char(s[i]))
            return lsf_node_error(err, at, "bad capture name '%.*s' (letters, digits, _ . @ -)",
                                  (int)flen, s);
    g->type = LSF_CAP_STRING;
    if (colon) {
        g->type = lsf_cap_type_parse(colon + 1, len - flen - 1);
        if (g->type < 0)
            return lsf_node_error(err, at, "unknown type '%.*s' for capture '%.*s' (string, "
                                  "int, float, ip or bool)", (int)(len - flen - 1), colon + 1,
                                  (int)flen, s);
    }
    g->field = strndup(s, flen);
    if (!g->field)
        lsf_die("out of memory");
    return 0;
}

int lsf_pattern_rename_groups(const char *src, lsf_sbuf *out, lsf_posmap *map,
                              lsf_group_name **names, uint32_t *nnames, const lsf_node *at,
                              lsf_errbuf *err)
{
    lsf_group_name *v = NULL;
    uint32_t n = 0, cap = 0;
    /* pass 1: the groups, in order */
    for (const char *p = src; *p;) {
        size_t o = lsf_re_opaque_len(p);
        if (o) {
            p += o;
            continue;
        }
        const char *name;
        char close;
        size_t g = group_open(p, &name, &close);
        if (!g) {
            p++;
            continue;
        }
        const char *e = strchr(name, close);
        if (!e)
            goto bad_group;
        if (n == cap) {
            cap = cap ? cap * 2 : 8;
            v = realloc(v, cap * sizeof(*v));
            if (!v)
                lsf_die("out of memory");
        }
        if (parse_group_name(name, (size_t)(e - name), &v[n], at, err) < 0)
            goto fail;
        n++;
        p = e + 1;
    }
    /* pass 2: rewrite; the k-th group opening here is the k-th of pass 1 */
    uint32_t idx = 0;
    for (const char *p = src; *p;) {
        size_t o = lsf_re_opaque_len(p);
        const char *name;
        char close;
        size_t g;
        if (o && !ref_open(p, &name, &close)) {
            lsf_sbuf_add(out, p, o);
            pm_fill(map, out->len, (size_t)(p - src), true);
            p += o;
        } else if ((g = group_open(p, &name, &close)) != 0) {
            const char *e = strchr(name, close);
            lsf_sbuf_addf(out, "(?<_g%u>", idx++);
            pm_fill(map, out->len, (size_t)(p - src), false);
            p = e + 1;
        } else if ((g = ref_open(p, &name, &close)) != 0) {
            const char *e = strchr(name, close);
            if (!e)
                goto bad_group;
            size_t len = (size_t)(e - name);
            uint32_t k;
            for (k = 0; k < n; k++)
                if (strlen(v[k].field) == len && memcmp(v[k].field, name, len) == 0)
                    break;
            if (k == n) {
                lsf_node_error(err, at, "reference to an unknown group '%.*s'", (int)len, name);
                goto fail;
            }
            char prefix[8];
            memcpy(prefix, p, g);
            prefix[g] = 0;
            lsf_sbuf_addf(out, "%s_g%u%c", prefix, k, close);
            pm_fill(map, out->len, (size_t)(p - src), false);
            p = e + 1;
        } else {
            lsf_sbuf_add(out, p, 1);
            pm_fill(map, out->len, (size_t)(p - src), true);
            p++;
        }
    }
    *names = v;
    *nnames = n;
    return 0;
bad_group:
    lsf_node_error(err, at, "unterminated group name in pattern");
fail:
    lsf_group_names_free(v, n);
    return -1;
}
