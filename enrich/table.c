/* table.c - packed rows of the table-driven enrichment stages (see table.h).
 * Threads: building on one thread; lsf_row_apply on any worker.
 */
#include "enrich/table.h"

#include <stdlib.h>
#include <string.h>

#include "core/log.h"
#include "enrich/enrich.h"

size_t lsf_table_column(lsf_table *t, const char *name)
{
    for (size_t i = 0; i < t->ncols; i++)
        if (strcmp(t->col[i], name) == 0)
            return i;
    char **nc = realloc(t->col, (t->ncols + 1) * sizeof(char *));
    if (!nc || !(nc[t->ncols] = strdup(name)))
        lsf_die("out of memory");
    t->col = nc;
    return t->ncols++;
}

size_t lsf_table_add_row(lsf_table *t, const char *const *vals)
{
    if (t->nrows == t->cap) {
        t->cap = t->cap ? t->cap * 2 : 64;
        lsf_row *nr = realloc(t->row, t->cap * sizeof(lsf_row));
        if (!nr)
            lsf_die("out of memory");
        t->row = nr;
    }
    uint32_t n = 0, slen = 0;
    for (size_t c = 0; c < t->ncols; c++)
        if (vals[c] && *vals[c]) {
            n++;
            slen += (uint32_t)strlen(vals[c]);
        }
    lsf_row *r = &t->row[t->nrows];
    r->nitems = n;
    r->slen = slen;
    r->item = malloc(n * sizeof(lsf_row_item) + slen + 1);
    if (!r->item)
        lsf_die("out of memory");
    char *s = (char *)(r->item + n);
    r->str = s;
    uint32_t k = 0, off = 0;
    for (size_t c = 0; c < t->ncols; c++) {
        if (!vals[c] || !*vals[c])
            continue;
        uint32_t len = (uint32_t)strlen(vals[c]);
        memcpy(s + off, vals[c], len);
        r->item[k++] = (lsf_row_item){(uint32_t)c, off, len};
        off += len;
    }
    return t->nrows++;
}

void lsf_table_free(lsf_table *t)
{
    for (size_t i = 0; i < t->ncols; i++)
        free(t->col[i]);
    for (size_t i = 0; i < t->nrows; i++)
        free(t->row[i].item);
    free(t->col);
    free(t->row);
    memset(t, 0, sizeof(*t));
}

lsf_str *lsf_table_names(const lsf_table *t, const char *target)
{
    lsf_str *names = calloc(t->ncols ? t->ncols : 1, sizeof(lsf_str));
    if (!names)
        lsf_die("out of memory");
    for (size_t c = 0; c < t->ncols; c++) {
        char *full = lsf_enrich_join(target, t->col[c]);
        uint16_t id = lsf_field_intern(full, strlen(full));
        free(full);
        names[c] = lsf_enrich_str(lsf_field_name(id));
    }
    return names;
}

void lsf_row_apply(lsf_batch *b, lsf_event *ev, const lsf_row *row, const lsf_str *names)
{
    if (!row->nitems)
        return;
    const char *s = lsf_arena_memdup(&b->arena, row->str, row->slen);
    for (uint32_t i = 0; i < row->nitems; i++) {
        const lsf_row_item *it = &row->item[i];
        lsf_event_set_str(b, ev, names[it->col], lsf_str_make(s + it->off, it->len));
    }
}

char *lsf_table_target(const char *tmpl, const char *field)
{
    const char *at = strstr(tmpl, "{prefix}");
    if (!at)
        return lsf_enrich_join("", tmpl);
    char *prefix = lsf_enrich_prefix(field);
    size_t a = (size_t)(at - tmpl), p = strlen(prefix), z = strlen(at + 8);
    char *s = malloc(a + p + z + 1);
    if (!s)
        lsf_die("out of memory");
    memcpy(s, tmpl, a);
    memcpy(s + a, prefix, p);
    memcpy(s + a + p, at + 8, z + 1);
    free(prefix);
    /* "{prefix}.x" with an empty prefix: drop the leading dot */
    if (s[0] == '.')
        memmove(s, s + 1, strlen(s));
    return s;
}

int lsf_table_is_yaml(const char *path)
{
    size_t n = strlen(path);
    return (n > 5 && strcmp(path + n - 5, ".yaml") == 0) || (n > 4 && strcmp(path + n - 4, ".yml") == 0);
}
