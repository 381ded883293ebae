/* table.h - rows of string values for the table-driven enrichment stages
 * (cidr, lookup): a set of named columns, rows packed for a fast copy into
 * a batch, and output names that outlive any reload.
 *
 * Design: a row is one allocation holding its non-empty values' (column,
 * offset, length) items and their bytes, so writing a row onto an event is
 * one arena copy plus a field per value. Output field names are interned
 * (lsf_field_intern), so they stay valid for the life of the process even
 * after the table that named them is replaced while batches still point at
 * them.
 * Threads: built on one thread, then read-only and shared by workers.
 */
#ifndef LSF_ENRICH_TABLE_H
#define LSF_ENRICH_TABLE_H

#include <stddef.h>
#include <stdint.h>

#include "core/config.h"
#include "core/event.h"

typedef struct lsf_row_item {
    uint32_t col, off, len;
} lsf_row_item;

typedef struct lsf_row {
    uint32_t nitems, slen;
    lsf_row_item *item; /* followed by the string bytes in the same allocation */
    const char *str;
} lsf_row;

typedef struct lsf_table {
    size_t ncols;
    char **col; /* column names (output names relative to the target) */
    size_t nrows, cap;
    lsf_row *row;
} lsf_table;

/* Index of column `name`, added if new. */
size_t lsf_table_column(lsf_table *t, const char *name);
/* Appends a row from values per column (NULL or "" for absent; `vals` has
 * at least t->ncols entries). Returns its index. */
size_t lsf_table_add_row(lsf_table *t, const char *const *vals);
void lsf_table_free(lsf_table *t);

/* Output names for one target: "<target>.<column>" per column, interned
 * (never freed). `target` may be "" (the column name as is). Returns a
 * malloc'd array of t->ncols slices. */
lsf_str *lsf_table_names(const lsf_table *t, const char *target);

/* Writes a row's values as string fields named names[col] onto ev; the
 * strings are copied into the batch arena. */
void lsf_row_apply(lsf_batch *b, lsf_event *ev, const lsf_row *row, const lsf_str *names);

/* The target for an input field: "{prefix}" in `tmpl` is replaced by the
 * field's prefix (source.ip -> source). Returns a malloc'd string. */
char *lsf_table_target(const char *tmpl, const char *field);

/* A table file's format from its name: 1 for YAML (.yaml, .yml), 0 for CSV. */
int lsf_table_is_yaml(const char *path);

#endif
