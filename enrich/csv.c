/* csv.c - the CSV reader of the enrichment tables (see csv.h).
 *
 * Design: a record is unescaped into one growing buffer and its fields
 * point into it, so a table of any width costs two allocations per reader.
 * Threads: none shared.
 */
#include "enrich/csv.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/log.h"

char *lsf_read_file(const char *path, size_t *len, lsf_errbuf *err)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        snprintf(err->msg, sizeof(err->msg), "%s: cannot open: %s", path, strerror(errno));
        return NULL;
    }
    size_t cap = 65536, n = 0;
    char *data = malloc(cap);
    if (!data)
        lsf_die("out of memory");
    for (;;) {
        if (n + 1 >= cap) {
            cap *= 2;
            char *nd = realloc(data, cap);
            if (!nd)
                lsf_die("out of memory (reading %s)", path);
            data = nd;
        }
        size_t got = fread(data + n, 1, cap - n - 1, f);
        n += got;
        if (got == 0)
            break;
    }
    if (ferror(f)) {
        snprintf(err->msg, sizeof(err->msg), "%s: read error: %s", path, strerror(errno));
        fclose(f);
        free(data);
        return NULL;
    }
    fclose(f);
    data[n] = 0;
    *len = n;
    return data;
}

int lsf_csv_open(lsf_csv *c, const char *path, lsf_errbuf *err)
{
    memset(c, 0, sizeof(*c));
    c->data = lsf_read_file(path, &c->len, err);
    if (!c->data)
        return -1;
    c->path = strdup(path);
    if (!c->path)
        lsf_die("out of memory");
    if (c->len >= 3 && memcmp(c->data, "\xef\xbb\xbf", 3) == 0)
        c->pos = 3;
    c->line = c->col = 1;
    return 0;
}

void lsf_csv_close(lsf_csv *c)
{
    free(c->path);
    free(c->data);
    free(c->field);
    free(c->field_len);
    free(c->field_line);
    free(c->field_col);
    free(c->buf);
    memset(c, 0, sizeof(*c));
}

int lsf_csv_error(const lsf_csv *c, size_t i, lsf_errbuf *err, const char *fmt, ...)
{
    int line = i < c->n ? c->field_line[i] : c->line;
    int col = i < c->n ? c->field_col[i] : 1;
    int k = snprintf(err->msg, sizeof(err->msg), "%s:%d:%d: ", c->path, line, col);
    va_list ap;
    va_start(ap, fmt);
    if (k > 0 && (size_t)k < sizeof(err->msg))
        vsnprintf(err->msg + k, sizeof(err->msg) - (size_t)k, fmt, ap);
    va_end(ap);
    return -1;
}

static void buf_put(lsf_csv *c, size_t *n, char ch)
{
    if (*n + 1 >= c->buf_cap) {
        c->buf_cap = c->buf_cap ? c->buf_cap * 2 : 256;
        char *nb = realloc(c->buf, c->buf_cap);
        if (!nb)
            lsf_die("out of memory");
        c->buf = nb;
    }
    c->buf[(*n)++] = ch;
}

static void add_field(lsf_csv *c, size_t off, int line, int col)
{
    if (c->n == c->cap) {
        c->cap = c->cap ? c->cap * 2 : 16;
        c->field = realloc(c->field, c->cap * sizeof(*c->field));
        c->field_len = realloc(c->field_len, c->cap * sizeof(*c->field_len));
        c->field_line = realloc(c->field_line, c->cap * sizeof(*c->field_line));
        c->field_col = realloc(c->field_col, c->cap * sizeof(*c->field_col));
        if (!c->field || !c->field_len || !c->field_line || !c->field_col)
            lsf_die("out of memory");
    }
    c->field[c->n] = (char *)(uintptr_t)off; /* an offset until the record is complete */
    c->field_line[c->n] = line;
    c->field_col[c->n] = col;
    c->n++;
}

static int peek(const lsf_csv *c) { return c->pos < c->len ? (unsigned char)c->data[c->pos] : -1; }

static void advance(lsf_csv *c)
{
    if (c->data[c->pos++] == '\n') {
        c->line++;
        c->col = 1;
    } else {
        c->col++;
    }
}

/* Skips empty lines and comment lines; true when a record starts at pos. */
static bool skip_blank_lines(lsf_csv *c)
{
    for (;;) {
        size_t p = c->pos;
        while (p < c->len && (c->data[p] == ' ' || c->data[p] == '\t' || c->data[p] == '\r'))
            p++;
        if (p >= c->len)
            return false;
        if (c->data[p] != '\n' && c->data[p] != '#')
            return true;
        while (c->pos < c->len && c->data[c->pos] != '\n')
            advance(c);
        if (c->pos < c->len)
            advance(c);
    }
}

int lsf_csv_next(lsf_csv *c, lsf_errbuf *err)
{
    c->n = 0;
    if (!skip_blank_lines(c))
        return 0;
    size_t bn = 0;
    for (;;) { /* one field per round */
        while (peek(c) == ' ' || peek(c) == '\t')
            advance(c);
        add_field(c, bn, c->line, c->col);
        if (peek(c) == '"') {
            int qline = c->line, qcol = c->col;
            advance(c);
            for (;;) {
                int ch = peek(c);
                if (ch < 0) {
                    snprintf(err->msg, sizeof(err->msg), "%s:%d:%d: quote not closed", c->path,
                             qline, qcol);
                    return -1;
                }
                advance(c);
                if (ch == '"') {
                    if (peek(c) != '"')
                        break;
                    advance(c);
                }
                buf_put(c, &bn, (char)ch);
            }
            while (peek(c) == ' ' || peek(c) == '\t' || peek(c) == '\r')
                advance(c);
            if (peek(c) >= 0 && peek(c) != ',' && peek(c) != '\n') {
                snprintf(err->msg, sizeof(err->msg),
                         "%s:%d:%d: text after a closing quote (write \"\" for a quote inside one)",
                         c->path, c->line, c->col);
                return -1;
            }
        } else {
            size_t start = bn;
            while (peek(c) >= 0 && peek(c) != ',' && peek(c) != '\n') {
                buf_put(c, &bn, c->data[c->pos]);
                advance(c);
            }
            while (bn > start && (c->buf[bn - 1] == ' ' || c->buf[bn - 1] == '\t' ||
                                  c->buf[bn - 1] == '\r'))
                bn--;
        }
        buf_put(c, &bn, 0);
        int ch = peek(c);
        if (ch == ',') {
            advance(c);
            continue;
        }
        if (ch == '\n')
            advance(c);
        break;
    }
    for (size_t i = 0; i < c->n; i++) {
        size_t off = (size_t)(uintptr_t)c->field[i];
        size_t end = i + 1 < c->n ? (size_t)(uintptr_t)c->field[i + 1] : bn;
        c->field[i] = c->buf + off;
        c->field_len[i] = end - off - 1;
    }
    return 1;
}
