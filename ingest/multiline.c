/* multiline.c - joins continuation lines into one event (rules in
 * multiline.h).
 *
 * Design: the pending event is kept in a buffer owned by the lsf_ml and
 * grown up to max_bytes; a line decides only whether it starts a new event,
 * so every line is looked at once and copied once.
 * Threads: one lsf_ml per stream, used by one thread; confs are read-only.
 */
#define PCRE2_CODE_UNIT_WIDTH 8
#include "multiline.h"

#include <pcre2.h>
#include <stdlib.h>
#include <string.h>

#include "core/log.h"

const lsf_key lsf_ml_keys[] = {
    {"mode", LSF_K_ENUM, "start",
     "start: a line matching start_pattern begins an event; indent: indented lines (and "
     "Java/Python trace lines) continue the previous one.",
     offsetof(lsf_ml_conf, mode), "start|indent", 0, 0, false},
    {"start_pattern", LSF_K_STR, NULL,
     "PCRE2 pattern of the first line of an event (required in start mode), e.g. "
     "'^\\d{4}-\\d{2}-\\d{2}'.",
     offsetof(lsf_ml_conf, start_pattern), NULL, 0, 0, false},
    {"continue_pattern", LSF_K_STR, NULL,
     "indent mode: lines matching this PCRE2 pattern also continue the previous event.",
     offsetof(lsf_ml_conf, continue_pattern), NULL, 0, 0, false},
    {"max_lines", LSF_K_INT, "500",
     "Most lines in one event; the lines after start a new event.",
     offsetof(lsf_ml_conf, max_lines), NULL, 1, 1000000, false},
    {"max_bytes", LSF_K_SIZE, "0",
     "Longest joined event (0: the input's max_message_size); longer ones are truncated and "
     "tagged _truncated.",
     offsetof(lsf_ml_conf, max_bytes), NULL, 0, 64 << 20, false},
    {"flush_timeout", LSF_K_DURATION, "1s",
     "Emit a pending event when no line came for this long.",
     offsetof(lsf_ml_conf, timeout_ms), NULL, 1, 3600000, false},
    LSF_KEYS_END,
};

static pcre2_code *compile(const char *pat, const lsf_node *at, lsf_errbuf *err)
{
    int ec;
    PCRE2_SIZE off;
    pcre2_code *re = pcre2_compile((PCRE2_SPTR)pat, PCRE2_ZERO_TERMINATED, PCRE2_UTF | PCRE2_MATCH_INVALID_UTF,
                                   &ec, &off, NULL);
    if (!re) {
        PCRE2_UCHAR msg[256];
        pcre2_get_error_message(ec, msg, sizeof(msg));
        lsf_node_error(err, at, "bad pattern at offset %zu: %s", (size_t)off, (char *)msg);
        return NULL;
    }
    pcre2_jit_compile(re, PCRE2_JIT_COMPLETE); /* optional: falls back to the interpreter */
    return re;
}

static const lsf_node *key_at(const lsf_node *node, const char *key)
{
    const lsf_node *n = lsf_node_get(node, key);
    return n ? n : node;
}

int lsf_ml_conf_bind(lsf_ml_conf *c, const lsf_node *node, int64_t max_bytes_default,
                     lsf_errbuf *err)
{
    memset(c, 0, sizeof(*c));
    if (!node)
        return 0;
    if (node->kind != LSF_NODE_MAP)
        return lsf_node_error(err, node, "multiline must be a map (mode, start_pattern, ...)");
    if (lsf_conf_bind(c, lsf_ml_keys, node, NULL, err) < 0)
        return -1;
    if (c->mode == LSF_ML_START && !c->start_pattern)
        return lsf_node_error(err, node, "multiline mode start needs a start_pattern");
    if (c->start_pattern && !(c->start_re = compile(c->start_pattern, key_at(node, "start_pattern"), err)))
        return -1;
    if (c->continue_pattern &&
        !(c->cont_re = compile(c->continue_pattern, key_at(node, "continue_pattern"), err)))
        return -1;
    if (c->max_bytes == 0)
        c->max_bytes = max_bytes_default;
    c->enabled = true;
    return 0;
}

void lsf_ml_conf_free(lsf_ml_conf *c)
{
    pcre2_code_free(c->start_re);
    pcre2_code_free(c->cont_re);
    c->start_re = c->cont_re = NULL;
    lsf_conf_free(c, lsf_ml_keys);
    c->enabled = false;
}

void lsf_ml_init(lsf_ml *m, const lsf_ml_conf *c)
{
    memset(m, 0, sizeof(*m));
    m->c = c;
    m->md = pcre2_match_data_create(4, NULL);
    if (!m->md)
        lsf_die("out of memory (match data)");
}

void lsf_ml_deinit(lsf_ml *m)
{
    pcre2_match_data_free(m->md);
    free(m->buf);
    memset(m, 0, sizeof(*m));
}

static bool matches(lsf_ml *m, void *re, const char *s, size_t n)
{
    return re && pcre2_match(re, (PCRE2_SPTR)s, n, 0, 0, m->md, NULL) >= 0;
}

static bool has_prefix(const char *s, size_t n, const char *pre)
{
    size_t k = strlen(pre);
    return n >= k && memcmp(s, pre, k) == 0;
}

/* "... 12 more" (Java's elided frames) */
static bool java_more(const char *s, size_t n)
{
    if (!has_prefix(s, n, "... "))
        return false;
    size_t i = 4, d = 0;
    while (i < n && s[i] >= '0' && s[i] <= '9')
        i++, d++;
    return d && n - i == 5 && memcmp(s + i, " more", 5) == 0;
}

/* indent mode: does this line continue the pending event? Updates the
 * traceback state. */
static bool indent_continues(lsf_ml *m, const char *s, size_t n)
{
    bool indented = n && (s[0] == ' ' || s[0] == '\t');
    bool cont;
    if (n == 0)
        return true; /* the blank lines inside a trace (Python's chained exceptions) */
    if (indented) {
        cont = true;
    } else if (has_prefix(s, n, "Traceback (most recent call last):")) {
        cont = true; /* after "During handling ...", or a log line's own trace */
        m->in_traceback = true;
    } else if (m->in_traceback && m->prev_indented) {
        cont = true; /* "ValueError: bad" ends the traceback */
        m->in_traceback = false;
    } else {
        cont = has_prefix(s, n, "Caused by: ") || has_prefix(s, n, "Suppressed: ") || java_more(s, n) ||
               has_prefix(s, n, "During handling of the above exception") ||
               has_prefix(s, n, "The above exception was the direct cause") ||
               matches(m, m->c->cont_re, s, n);
    }
    m->prev_indented = indented;
    return cont;
}

static void emit_pending(lsf_ml *m, lsf_ml_emit emit, void *arg)
{
    if (!m->nlines)
        return;
    emit(arg, m->buf, m->len, m->truncated, m->tag);
    m->len = 0;
    m->nlines = 0;
    m->truncated = m->full = false;
}

void lsf_ml_flush(lsf_ml *m, lsf_ml_emit emit, void *arg)
{
    emit_pending(m, emit, arg);
    m->in_traceback = m->prev_indented = false;
}

static void append(lsf_ml *m, const char *s, size_t n)
{
    size_t max = (size_t)m->c->max_bytes;
    size_t sep = m->nlines ? 1 : 0;
    if (m->full)
        return; /* the rest of an over-long event is skipped */
    if (m->len + sep + n > max) {
        m->truncated = m->full = true;
        n = m->len + sep >= max ? 0 : max - m->len - sep;
        if (m->len + sep > max)
            sep = 0;
    }
    size_t want = m->len + sep + n;
    if (want > m->cap) {
        size_t ncap = m->cap ? m->cap : 1024;
        while (ncap < want)
            ncap *= 2;
        char *nb = realloc(m->buf, ncap);
        if (!nb)
            lsf_die("out of memory (multiline event of %zu bytes)", ncap);
        m->buf = nb;
        m->cap = ncap;
    }
    if (sep)
        m->buf[m->len++] = '\n';
    if (n)
        memcpy(m->buf + m->len, s, n);
    m->len += n;
}

void lsf_ml_line(lsf_ml *m, const char *line, size_t len, int truncated, uint64_t tag,
                 int64_t now_mono_ns, lsf_ml_emit emit, void *arg)
{
    bool cont;
    if (len == 0 && !m->nlines)
        return; /* an empty line does not begin an event */
    if (m->c->mode == LSF_ML_START)
        cont = !matches(m, m->c->start_re, line, len);
    else
        cont = indent_continues(m, line, len);
    if (!cont || m->nlines >= (uint64_t)m->c->max_lines)
        emit_pending(m, emit, arg);
    append(m, line, len);
    if (truncated)
        m->truncated = true;
    m->nlines++;
    m->tag = tag;
    m->last_ns = now_mono_ns;
}

bool lsf_ml_tick(lsf_ml *m, int64_t now_mono_ns, lsf_ml_emit emit, void *arg)
{
    if (m->nlines && now_mono_ns - m->last_ns >= m->c->timeout_ms * 1000000LL)
        lsf_ml_flush(m, emit, arg);
    return m->nlines > 0;
}
