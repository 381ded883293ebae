/* enrich.c - helpers shared by the enrichment stages (see enrich.h).
 * Threads: pure functions.
 */
#include "enrich/enrich.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include "core/log.h"
#include "core/pipeline.h"

char *lsf_enrich_prefix(const char *field)
{
    const char *dot = strrchr(field, '.');
    size_t n = dot ? (size_t)(dot - field) : 0;
    char *p = malloc(n + 1);
    if (!p)
        lsf_die("out of memory");
    memcpy(p, field, n);
    p[n] = 0;
    return p;
}

char *lsf_enrich_join(const char *prefix, const char *suffix)
{
    size_t a = strlen(prefix), b = strlen(suffix);
    char *s = malloc(a + b + 2);
    if (!s)
        lsf_die("out of memory");
    if (a) {
        memcpy(s, prefix, a);
        s[a++] = '.';
    }
    memcpy(s + a, suffix, b + 1);
    return s;
}

bool lsf_enrich_name_ok(const char *name)
{
    if (!*name || *name == '.')
        return false;
    for (const char *p = name; *p; p++) {
        if ((unsigned char)*p <= ' ' || *p == 0x7f)
            return false;
        if (*p == '.' && (p[1] == '.' || p[1] == 0))
            return false;
    }
    return true;
}

const lsf_node *lsf_enrich_at(const lsf_node *stage, const char *key)
{
    const lsf_node *n = lsf_node_get(stage, key);
    return n ? n : stage;
}

int lsf_enrich_load_error(lsf_errbuf *err, const lsf_node *at, const char *file)
{
    size_t n = strlen(file);
    if (strncmp(err->msg, file, n) == 0 && err->msg[n] == ':' &&
        isdigit((unsigned char)err->msg[n + 1]))
        return -1;
    lsf_errbuf inner = *err;
    return lsf_node_error(err, at, "%s", inner.msg);
}

lsf_field *lsf_enrich_reserve(lsf_batch *b, lsf_event *ev, uint16_t n)
{
    if ((uint32_t)ev->nfields + n > ev->capfields) {
        uint32_t ncap = ev->capfields ? ev->capfields : 8;
        while (ncap < (uint32_t)ev->nfields + n)
            ncap *= 2;
        if (ncap > UINT16_MAX)
            return NULL;
        lsf_field *nf = lsf_arena_alloc(&b->arena, ncap * sizeof(lsf_field));
        if (ev->nfields)
            memcpy(nf, ev->fields, ev->nfields * sizeof(lsf_field));
        ev->fields = nf;
        ev->capfields = (uint16_t)ncap;
    }
    return &ev->fields[ev->nfields];
}

void lsf_enrich_field_init(lsf_enrich_field *f, const char *name)
{
    f->name = lsf_enrich_str(lsf_enrich_join("", name));
    /* a well-known name is one lsf_event_get_str answers on an event that
     * has every well-known member and no dynamic field */
    lsf_event ev;
    memset(&ev, 0, sizeof(ev));
    ev.pri = 13;
    ev.version = 1;
    ev.time_ns = ev.ingested_ns = 1;
    ev.raw = ev.message = ev.host = ev.app = ev.procid = ev.msgid = ev.sd = ev.source_addr =
        LSF_STR_LIT("1");
    char scratch[32];
    lsf_str out;
    f->fixed = lsf_event_get_str(&ev, f->name, scratch, &out);
}

void lsf_enrich_field_free(lsf_enrich_field *f)
{
    free((char *)f->name.ptr);
    f->name = LSF_STR_NULL;
}

int lsf_enrich_ip_fields(const lsf_stage *st, const lsf_strlist *list, lsf_enrich_field **out,
                         size_t *n, lsf_errbuf *err)
{
    static const char *const defaults[] = {"source.ip", "destination.ip", "client.ip"};
    const char *const *names = list->n ? (const char *const *)list->v : defaults;
    *n = list->n ? list->n : sizeof(defaults) / sizeof(defaults[0]);
    *out = calloc(*n, sizeof(lsf_enrich_field));
    if (!*out)
        lsf_die("out of memory");
    for (size_t i = 0; i < *n; i++) {
        if (!lsf_enrich_name_ok(names[i]))
            return lsf_node_error(err, lsf_enrich_at(st->node, "fields"),
                                  "fields: '%s' is not a field name", names[i]);
        lsf_enrich_field_init(&(*out)[i], names[i]);
    }
    return 0;
}

void lsf_enrich_fields_free(lsf_enrich_field *f, size_t n)
{
    for (size_t i = 0; f && i < n; i++)
        lsf_enrich_field_free(&f[i]);
    free(f);
}

lsf_live *lsf_enrich_live_open(const lsf_stage *st, const char *const *paths, size_t n,
                               int64_t interval_ms, const lsf_live_ops *ops, const char *key,
                               lsf_errbuf *err)
{
    lsf_live *l = lsf_live_new(st->name, lsf_pipeline_nworkers(st->pipeline), paths, n,
                               interval_ms, ops, err);
    if (!l)
        lsf_enrich_load_error(err, lsf_enrich_at(st->node, key), n ? paths[0] : "");
    return l;
}

void lsf_enrich_reopen(lsf_stage *st)
{
    lsf_live *l = *(lsf_live **)st->ctx;
    if (l)
        lsf_live_poke(l);
}
