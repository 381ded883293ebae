/* csv.h - a small CSV reader for the enrichment tables (cidr, lookup).
 *
 * Design: RFC 4180 records (quoted fields, "" inside quotes, CRLF or LF,
 * newlines inside quotes) read from a file loaded whole into memory; tables
 * are curated files of at most a few MB. For hand-edited files, blanks
 * around unquoted fields are trimmed, a UTF-8 byte-order mark is skipped,
 * and empty lines and lines starting with '#' are skipped. Every record and
 * field knows its line and column, so errors read "file:line:col: what".
 * Threads: one reader per thread.
 */
#ifndef LSF_ENRICH_CSV_H
#define LSF_ENRICH_CSV_H

#include <stddef.h>

#include "core/config.h"

typedef struct lsf_csv {
    char *path;
    char *data; /* the whole file, NUL-terminated */
    size_t len, pos;
    int line, col; /* position of `pos` */
    /* the current record: n fields, NUL-terminated, valid until the next call */
    char **field;
    size_t *field_len;
    int *field_line, *field_col;
    size_t n, cap;
    char *buf; /* unescaped text of the record */
    size_t buf_cap;
} lsf_csv;

/* Reads `path` into memory. Returns 0, or -1 with err set. */
int lsf_csv_open(lsf_csv *c, const char *path, lsf_errbuf *err);
/* Reads the next record. Returns 1 (c->n fields in c->field), 0 at the end,
 * -1 with err set (an unterminated quote, text after a closing quote). */
int lsf_csv_next(lsf_csv *c, lsf_errbuf *err);
/* Formats "path:line:col: message" about field i (or the record when i is
 * out of range) into err; returns -1. */
int lsf_csv_error(const lsf_csv *c, size_t i, lsf_errbuf *err, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
void lsf_csv_close(lsf_csv *c);

/* Reads a whole file into a NUL-terminated buffer (caller frees); NULL with
 * err set. */
char *lsf_read_file(const char *path, size_t *len, lsf_errbuf *err);

#endif
