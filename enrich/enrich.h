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
#include "core/stage.h"
#include "enrich/live.h"

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

/* The IP fields a stage reads: `list` from its config, or by default
 * source.ip, destination.ip, client.ip. Sets *out (n entries, free with
 * lsf_enrich_fields_free). Returns 0, or -1 with err at the stage's `fields`
 * key when a name is not a field name. */
int lsf_enrich_ip_fields(const lsf_stage *st, const lsf_strlist *list, lsf_enrich_field **out,
                         size_t *n, lsf_errbuf *err);
void lsf_enrich_fields_free(lsf_enrich_field *f, size_t n);

/* Loads the first version of a stage's live data (lsf_live_new with the
 * pipeline's workers); a load error is re-targeted at the stage's config key
 * `key` (see lsf_enrich_load_error). Returns the live data or NULL. */
lsf_live *lsf_enrich_live_open(const lsf_stage *st, const char *const *paths, size_t n,
                               int64_t interval_ms, const lsf_live_ops *ops, const char *key,
                               lsf_errbuf *err);
/* The `reopen` (SIGHUP) of a stage whose context starts with its
 * `lsf_live *`: asks for a reload. */
void lsf_enrich_reopen(lsf_stage *st);

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
