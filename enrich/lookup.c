/* lookup.c - the `lookup` transform: exact-match tables from CSV. The value
 * of one event field (user.name) selects a row, whose other columns become
 * fields (user.department, user.manager). The first column holds the keys
 * and, by default, names the field to read.
 *
 * The one design choice to know: the table is an open-addressing hash of
 * the keys (linear probing, at most half full) built beside the running
 * one when the file changes or on SIGHUP, then swapped in without pausing
 * workers (live.c). A table with an error (duplicate key, a row wider than
 * the header) keeps the running one and logs file:line:col.
 *
 * Threads: init/reopen/destroy on the main thread; process on any worker;
 * reloads on the stage's watcher thread.
 */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include "core/log.h"
#include "core/metrics.h"
#include "core/stage.h"
#include "enrich/csv.h"
#include "enrich/enrich.h"
#include "enrich/live.h"
#include "enrich/table.h"

typedef struct lookup_conf {
    char *path;
    char *field;
    char *target;
    bool ignore_case;
    int64_t check_interval_ms;
} lookup_conf;

typedef struct slot {
    uint64_t hash;
    char *key; /* NULL: empty */
    uint32_t klen, row;
} slot;

typedef struct lookup_ver {
    lsf_table t;
    slot *slots;
    size_t mask;
    lsf_str *names;
    lsf_enrich_field field; /* the field to read (from config or the header) */
} lookup_ver;

typedef struct lookup_ctx {
    lsf_live *live; /* first: see lsf_enrich_reopen */
    const char *name;
    const lookup_conf *conf;
    lsf_counter *c_matched, *c_unmatched;
} lookup_ctx;

static const lsf_key lookup_keys[] = {
    {"path", LSF_K_STR, NULL,
     "CSV table: a header line, then one row per key; the first column holds the keys, the "
     "others become fields named by the header.",
     offsetof(lookup_conf, path), NULL, 0, 0, true},
    {"field", LSF_K_STR, NULL,
     "The event field whose value is looked up (default: the first column's header, e.g. "
     "user.name).",
     offsetof(lookup_conf, field), NULL, 0, 0, false},
    {"target", LSF_K_STR, "", "Prefix for the output fields (\"\": the header names as they are).",
     offsetof(lookup_conf, target), NULL, 0, 0, false},
    {"ignore_case", LSF_K_BOOL, "false", "Match keys without regard to ASCII case.",
     offsetof(lookup_conf, ignore_case), NULL, 0, 0, false},
    {"check_interval", LSF_K_DURATION, "2s",
     "How often to check whether the table file changed (then it is reloaded); 0: only on "
     "SIGHUP.",
     offsetof(lookup_conf, check_interval_ms), NULL, 0, 86400000, false},
    LSF_KEYS_END,
};

/* FNV-1a, folding ASCII case when asked. */
static uint64_t hash_key(const char *s, size_t n, bool fold)
{
    uint64_t h = 14695981039346656037ull;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        h ^= fold ? (unsigned char)tolower(c) : c;
        h *= 1099511628211ull;
    }
    return h ^ (h >> 31);
}

static bool key_eq(const char *a, const char *b, size_t n, bool fold)
{
    return fold ? strncasecmp(a, b, n) == 0 : memcmp(a, b, n) == 0;
}

static const slot *find(const lookup_ver *v, const char *k, size_t n, bool fold)
{
    uint64_t h = hash_key(k, n, fold);
    for (size_t i = h & v->mask;; i = (i + 1) & v->mask) {
        const slot *s = &v->slots[i];
        if (!s->key)
            return NULL;
        if (s->hash == h && s->klen == n && key_eq(s->key, k, n, fold))
            return s;
    }
}

static void ver_free(void *arg, void *p)
{
    (void)arg;
    lookup_ver *v = p;
    if (!v)
        return;
    for (size_t i = 0; v->slots && i <= v->mask; i++)
        free(v->slots[i].key);
    free(v->slots);
    lsf_table_free(&v->t);
    free(v->names);
    lsf_enrich_field_free(&v->field);
    free(v);
}

/* Inserts a key; the row it already had (a duplicate) or -1. */
static int64_t insert(lookup_ver *v, const char *k, size_t n, uint32_t row, bool fold)
{
    uint64_t h = hash_key(k, n, fold);
    for (size_t i = h & v->mask;; i = (i + 1) & v->mask) {
        slot *s = &v->slots[i];
        if (!s->key) {
            s->key = malloc(n + 1);
            if (!s->key)
                lsf_die("out of memory");
            memcpy(s->key, k, n + 1);
            *s = (slot){h, s->key, (uint32_t)n, row};
            return -1;
        }
        if (s->hash == h && s->klen == n && key_eq(s->key, k, n, fold))
            return s->row;
    }
}

static void grow(lookup_ver *v, size_t want)
{
    if (v->slots && want * 2 <= v->mask + 1)
        return;
    size_t cap = v->slots ? (v->mask + 1) * 2 : 1024;
    while (want * 2 > cap)
        cap *= 2;
    slot *old = v->slots;
    size_t oldn = old ? v->mask + 1 : 0;
    v->slots = calloc(cap, sizeof(slot));
    if (!v->slots)
        lsf_die("out of memory");
    v->mask = cap - 1;
    for (size_t i = 0; i < oldn; i++) /* rehash: keys move, no copies */
        if (old[i].key)
            for (size_t j = old[i].hash & v->mask;; j = (j + 1) & v->mask)
                if (!v->slots[j].key) {
                    v->slots[j] = old[i];
                    break;
                }
    free(old);
}

static void *ver_load(void *arg, uint64_t generation, lsf_errbuf *err)
{
    lookup_ctx *x = arg;
    const lookup_conf *c = x->conf;
    (void)generation;
    lsf_csv csv;
    if (lsf_csv_open(&csv, c->path, err) < 0)
        return NULL;
    lookup_ver *v = calloc(1, sizeof(*v));
    const char **vals = NULL;
    int *lines = NULL;
    if (!v)
        lsf_die("out of memory");
    int rc = lsf_csv_next(&csv, err);
    if (rc <= 0) {
        if (rc == 0)
            snprintf(err->msg, sizeof(err->msg), "%s: empty table (expected a header line such "
                     "as: user.name,user.department)", c->path);
        goto fail;
    }
    if (csv.n < 2) {
        lsf_csv_error(&csv, 0, err, "the header needs a key column and at least one value column");
        goto fail;
    }
    for (size_t i = 0; i < csv.n; i++) {
        if (!lsf_enrich_name_ok(csv.field[i])) {
            lsf_csv_error(&csv, i, err, "column name '%s' is not a field name", csv.field[i]);
            goto fail;
        }
        if (i && lsf_table_column(&v->t, csv.field[i]) != i - 1) {
            lsf_csv_error(&csv, i, err, "column '%s' appears twice", csv.field[i]);
            goto fail;
        }
    }
    /* the field to read: from config, else the key column's name */
    lsf_enrich_field_init(&v->field, c->field && *c->field ? c->field : csv.field[0]);
    size_t ncols = v->t.ncols, nlines = 0, caplines = 0;
    vals = calloc(ncols, sizeof(char *));
    if (!vals)
        lsf_die("out of memory");
    grow(v, 1);
    while ((rc = lsf_csv_next(&csv, err)) > 0) {
        if (csv.n - 1 > ncols) {
            lsf_csv_error(&csv, ncols + 1, err, "more values than the header has columns (%zu)",
                          ncols + 1);
            goto fail;
        }
        for (size_t i = 0; i < ncols; i++)
            vals[i] = i + 1 < csv.n ? csv.field[i + 1] : NULL;
        uint32_t row = (uint32_t)lsf_table_add_row(&v->t, vals);
        if (nlines == caplines) {
            caplines = caplines ? caplines * 2 : 256;
            if (!(lines = realloc(lines, caplines * sizeof(int))))
                lsf_die("out of memory");
        }
        lines[nlines++] = csv.field_line[0];
        grow(v, row + 1);
        int64_t dup = insert(v, csv.field[0], csv.field_len[0], row, c->ignore_case);
        if (dup >= 0) {
            lsf_csv_error(&csv, 0, err, "key '%s' is listed twice (first at line %d)",
                          csv.field[0], lines[dup]);
            goto fail;
        }
    }
    if (rc < 0)
        goto fail;
    v->names = lsf_table_names(&v->t, c->target);
    lsf_info("%s: %s: %zu keys, %zu columns, looked up by %s", x->name, c->path, v->t.nrows,
             v->t.ncols, v->field.name.ptr);
    lsf_csv_close(&csv);
    free(vals);
    free(lines);
    return v;
fail:
    lsf_csv_close(&csv);
    free(vals);
    free(lines);
    ver_free(NULL, v);
    return NULL;
}

static int lookup_process(lsf_stage *st, lsf_batch *b, int worker)
{
    lookup_ctx *x = st->ctx;
    const lookup_ver *v = lsf_live_enter(x->live, worker);
    bool fold = x->conf->ignore_case;
    uint64_t matched = 0, unmatched = 0;
    char scratch[32];
    for (uint32_t i = 0; i < b->n; i++) {
        lsf_event *ev = &b->events[i];
        lsf_str k;
        if ((ev->flags & LSF_EV_DROPPED) || !lsf_enrich_get(ev, &v->field, scratch, &k))
            continue;
        const slot *s = find(v, k.ptr, k.len, fold);
        if (!s) {
            unmatched++;
            continue;
        }
        matched++;
        lsf_row_apply(b, ev, &v->t.row[s->row], v->names);
    }
    lsf_live_exit(x->live, worker);
    if (matched)
        lsf_counter_add(x->c_matched, matched);
    if (unmatched)
        lsf_counter_add(x->c_unmatched, unmatched);
    return LSF_OK;
}

static int lookup_init(lsf_stage *st, lsf_errbuf *err)
{
    lookup_ctx *x = st->ctx;
    lookup_conf *c = st->conf;
    x->name = st->name;
    x->conf = c;
    if (c->field && !lsf_enrich_name_ok(c->field))
        return lsf_node_error(err, lsf_enrich_at(st->node, "field"),
                              "field: '%s' is not a field name", c->field);
    if (*c->target && !lsf_enrich_name_ok(c->target))
        return lsf_node_error(err, lsf_enrich_at(st->node, "target"),
                              "target: '%s' is not a field name", c->target);
    x->c_matched = lsf_counter_new(st->name, "matched");
    x->c_unmatched = lsf_counter_new(st->name, "unmatched");
    lsf_live_ops ops = {ver_load, ver_free, x};
    const char *paths[] = {c->path};
    x->live = lsf_enrich_live_open(st, paths, 1, c->check_interval_ms, &ops, "path", err);
    return x->live ? 0 : -1;
}

static void lookup_destroy(lsf_stage *st)
{
    lookup_ctx *x = st->ctx;
    lsf_live_free(x->live);
}

const lsf_stage_def lsf_stage_lookup = {
    .name = "lookup",
    .kind = LSF_STAGE_TRANSFORM,
    .help = "Adds fields from an exact-match CSV table keyed by one field (e.g. user.name -> "
            "user.department); reloads it when it changes.",
    .keys = lookup_keys,
    .conf_size = sizeof(lookup_conf),
    .ctx_size = sizeof(lookup_ctx),
    .init = lookup_init,
    .process = lookup_process,
    .reopen = lsf_enrich_reopen,
    .destroy = lookup_destroy,
};
