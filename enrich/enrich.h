/* enrich.h - helpers shared by the enrichment stages (geoip, cidr, lookup,
 * fields): output names derived from input field names, and config
 * scalars.
 * Design: names are built once at init and owned by the stage, so the hot
 * path only points at them (they outlive every batch).
 * Threads: call at init, on the main thread.
 */
#ifndef LSF_ENRICH_H
#define LSF_ENRICH_H

#include <stdbool.h>
#include <stddef.h>

#include "core/config.h"
#include "core/event.h"

/* The field name minus its last dotted component ("source.ip" ->
 * "source", "ip" -> ""). Returns a malloc'd string. */
char *lsf_enrich_prefix(const char *field);
/* "<prefix>.<suffix>", or just suffix when prefix is empty (malloc'd). */
char *lsf_enrich_join(const char *prefix, const char *suffix);
/* true when `name` is a usable dotted field name: non-empty, no empty
 * component, no blanks or control characters. */
bool lsf_enrich_name_ok(const char *name);
/* A NUL-terminated string as a slice (it must outlive the batches). */
static inline lsf_str lsf_enrich_str(const char *s)
{
    return lsf_str_make(s, strlen(s));
}
/* The node a key's error should point at: the key's value if present, else
 * the stage. */
const lsf_node *lsf_enrich_at(const lsf_node *stage, const char *key);

/* An input field the stage reads on every event. Well-known names
 * (message, host.name, ...) go through lsf_event_get_str; others are
 * dynamic fields, found directly, which skips comparing the name with every
 * well-known one on the hot path. */
typedef struct lsf_enrich_field {
    lsf_str name; /* owned by the stage */
    bool fixed;
} lsf_enrich_field;

/* Sets up f for `name` (copied). */
void lsf_enrich_field_init(lsf_enrich_field *f, const char *name);
void lsf_enrich_field_free(lsf_enrich_field *f);
/* The field's value as a string view, as lsf_event_get_str gives it. */
static inline bool lsf_enrich_get(const lsf_event *ev, const lsf_enrich_field *f, char *scratch,
                                  lsf_str *out)
{
    if (!f->fixed) {
        const lsf_field *d = lsf_event_find(ev, f->name);
        if (!d)
            return false;
        if (d->type == LSF_T_STR) {
            *out = d->v.s;
            return true;
        }
    }
    return lsf_event_get_str(ev, f->name, scratch, out);
}

/* Makes room for n more dynamic fields (in the batch arena, as
 * lsf_event_set grows the array) and returns the first free slot; the
 * caller fills them and adds n to ev->nfields. Only for names the caller has
 * checked are absent: nothing here looks for duplicates. */
lsf_field *lsf_enrich_reserve(lsf_batch *b, lsf_event *ev, uint16_t n);

/* Re-targets a load error onto the config: a message that already points
 * into the data file ("<file>:<line>:...") is kept as is, anything else
 * (cannot open, ...) gets the position of config node `at`. Returns -1. */
int lsf_enrich_load_error(lsf_errbuf *err, const lsf_node *at, const char *file);

#endif
