/* event.c - batches, dynamic fields, tags and the field-name table.
 * Design: dynamic fields are a small array grown inside the batch arena; a
 * handful of fields per event makes a linear scan cheaper than any index.
 * Threads: batch functions are single-threaded; interning takes a mutex.
 */
#include "event.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>

#include "log.h"
#include "numtext.h"

lsf_batch *lsf_batch_new(uint32_t cap)
{
    lsf_batch *b = calloc(1, sizeof(*b));
    if (!b)
        lsf_die("out of memory (batch)");
    b->events = calloc((size_t)cap + LSF_BATCH_EXTRA, sizeof(lsf_event));
    if (!b->events)
        lsf_die("out of memory (batch of %u events)", cap);
    b->cap = cap;
    b->room = cap + LSF_BATCH_EXTRA;
    lsf_arena_init(&b->arena, 256 * 1024);
    return b;
}

void lsf_batch_free(lsf_batch *b)
{
    if (!b)
        return;
    lsf_arena_deinit(&b->arena);
    free(b->events);
    free(b);
}

void lsf_batch_reset(lsf_batch *b)
{
    lsf_ack_release(b->ack); /* the pipeline's reference, if still held */
    b->ack = NULL;
    lsf_arena_reset(&b->arena);
    b->n = 0;
    b->bytes = 0;
    b->seq = 0;
}

lsf_ack *lsf_ack_new(void (*fn)(void *arg, uint64_t token, bool ok), void *arg, uint64_t token)
{
    lsf_ack *a = calloc(1, sizeof(*a));
    if (!a)
        lsf_die("out of memory (ack)");
    atomic_init(&a->refs, 1);
    a->fn = fn;
    a->arg = arg;
    a->token = token;
    return a;
}

void lsf_ack_retain(lsf_ack *a)
{
    if (a)
        atomic_fetch_add_explicit(&a->refs, 1, memory_order_relaxed);
}

void lsf_ack_fail(lsf_ack *a)
{
    if (a)
        atomic_store_explicit(&a->failed, 1, memory_order_relaxed);
}

void lsf_ack_release(lsf_ack *a)
{
    if (!a || atomic_fetch_sub_explicit(&a->refs, 1, memory_order_acq_rel) != 1)
        return;
    if (a->fn)
        a->fn(a->arg, a->token, atomic_load_explicit(&a->failed, memory_order_relaxed) == 0);
    free(a);
}

lsf_event *lsf_batch_push(lsf_batch *b)
{
    if (b->n >= b->cap)
        return NULL;
    lsf_event *ev = &b->events[b->n++];
    memset(ev, 0, sizeof(*ev));
    ev->pri = -1;
    return ev;
}

lsf_event *lsf_batch_push_extra(lsf_batch *b)
{
    if (b->n >= b->room) {
        uint32_t nroom = b->room * 2;
        lsf_event *nev = realloc(b->events, (size_t)nroom * sizeof(lsf_event));
        if (!nev)
            lsf_die("out of memory (batch of %u events)", nroom);
        b->events = nev;
        b->room = nroom;
    }
    lsf_event *ev = &b->events[b->n++];
    memset(ev, 0, sizeof(*ev));
    ev->pri = -1;
    return ev;
}

lsf_event *lsf_batch_push_record(lsf_batch *b, const char *rec, size_t len, int64_t now_ns)
{
    lsf_event *ev = lsf_batch_push(b);
    if (!ev)
        return NULL;
    char *copy = lsf_arena_memdup(&b->arena, rec, len);
    ev->raw = lsf_str_make(copy, len);
    ev->message = ev->raw;
    ev->ingested_ns = now_ns;
    b->bytes += len;
    return ev;
}

lsf_field *lsf_event_find(const lsf_event *ev, lsf_str name)
{
    for (uint16_t i = 0; i < ev->nfields; i++)
        if (lsf_str_eq(ev->fields[i].name, name))
            return &ev->fields[i];
    return NULL;
}

lsf_field *lsf_event_set(lsf_batch *b, lsf_event *ev, lsf_str name, uint16_t id)
{
    lsf_field *f = lsf_event_find(ev, name);
    return f ? f : lsf_event_append(b, ev, name, id);
}

lsf_field *lsf_event_append(lsf_batch *b, lsf_event *ev, lsf_str name, uint16_t id)
{
    lsf_field *f;
    if (ev->nfields == ev->capfields) {
        uint16_t ncap = ev->capfields ? (uint16_t)(ev->capfields * 2) : 8;
        if (ncap < ev->capfields) /* 65535 fields: keep the last slot reused */
            return &ev->fields[ev->nfields - 1];
        lsf_field *nf = lsf_arena_alloc(&b->arena, ncap * sizeof(lsf_field));
        if (ev->nfields)
            memcpy(nf, ev->fields, ev->nfields * sizeof(lsf_field));
        ev->fields = nf;
        ev->capfields = ncap;
    }
    f = &ev->fields[ev->nfields++];
    f->name = name;
    f->id = id;
    f->type = LSF_T_NULL;
    return f;
}

void lsf_event_set_str(lsf_batch *b, lsf_event *ev, lsf_str name, lsf_str v)
{
    lsf_field *f = lsf_event_set(b, ev, name, 0);
    f->type = LSF_T_STR;
    f->v.s = v;
}

void lsf_event_set_int(lsf_batch *b, lsf_event *ev, lsf_str name, int64_t v)
{
    lsf_field *f = lsf_event_set(b, ev, name, 0);
    f->type = LSF_T_INT;
    f->v.i = v;
}

void lsf_event_set_float(lsf_batch *b, lsf_event *ev, lsf_str name, double v)
{
    lsf_field *f = lsf_event_set(b, ev, name, 0);
    f->type = LSF_T_FLOAT;
    f->v.f = v;
}

void lsf_event_set_bool(lsf_batch *b, lsf_event *ev, lsf_str name, bool v)
{
    lsf_field *f = lsf_event_set(b, ev, name, 0);
    f->type = LSF_T_BOOL;
    f->v.b = v;
}

void lsf_event_add_tag(lsf_batch *b, lsf_event *ev, lsf_str tag)
{
    for (uint16_t i = 0; i < ev->ntags; i++)
        if (lsf_str_eq(ev->tags[i], tag))
            return;
    if (ev->ntags == ev->captags) {
        uint16_t ncap = ev->captags ? (uint16_t)(ev->captags * 2) : 4;
        if (ncap < ev->captags)
            return;
        lsf_str *nt = lsf_arena_alloc(&b->arena, ncap * sizeof(lsf_str));
        if (ev->ntags)
            memcpy(nt, ev->tags, ev->ntags * sizeof(lsf_str));
        ev->tags = nt;
        ev->captags = ncap;
    }
    ev->tags[ev->ntags++] = tag;
}

static bool num_str(char *scratch, int64_t v, lsf_str *out)
{
    *out = lsf_str_make(scratch, (size_t)(lsf_i64_text(scratch, v) - scratch));
    return true;
}

/* Well-known names map onto struct members; see the output schema in
 * sinks/json_out.c for the full list. */
bool lsf_event_get_str(const lsf_event *ev, lsf_str name, char *scratch, lsf_str *out)
{
    const lsf_str *slot = NULL;
    if (lsf_str_eq_cstr(name, "message"))
        slot = &ev->message;
    else if (lsf_str_eq_cstr(name, "host.name") || lsf_str_eq_cstr(name, "log.syslog.hostname"))
        slot = &ev->host;
    else if (lsf_str_eq_cstr(name, "process.name") || lsf_str_eq_cstr(name, "log.syslog.appname"))
        slot = &ev->app;
    else if (lsf_str_eq_cstr(name, "log.syslog.procid") || lsf_str_eq_cstr(name, "process.pid"))
        slot = &ev->procid;
    else if (lsf_str_eq_cstr(name, "log.syslog.msgid"))
        slot = &ev->msgid;
    else if (lsf_str_eq_cstr(name, "log.source.address"))
        slot = &ev->source_addr;
    else if (lsf_str_eq_cstr(name, "event.original"))
        slot = &ev->raw;
    if (slot) {
        if (!slot->ptr)
            return false;
        *out = *slot;
        return true;
    }
    if (ev->pri >= 0) {
        if (lsf_str_eq_cstr(name, "log.syslog.priority"))
            return num_str(scratch, ev->pri, out);
        if (lsf_str_eq_cstr(name, "log.syslog.facility.code"))
            return num_str(scratch, ev->pri >> 3, out);
        if (lsf_str_eq_cstr(name, "log.syslog.severity.code"))
            return num_str(scratch, ev->pri & 7, out);
        const char *s = NULL;
        if (lsf_str_eq_cstr(name, "log.syslog.facility.name"))
            s = lsf_facility_name(ev->pri >> 3);
        else if (lsf_str_eq_cstr(name, "log.syslog.severity.name"))
            s = lsf_severity_name(ev->pri & 7);
        if (s) {
            *out = lsf_str_make(s, strlen(s));
            return true;
        }
    }
    const lsf_field *f = lsf_event_find(ev, name);
    return f && lsf_field_text(f, scratch, out);
}

bool lsf_field_text(const lsf_field *f, char *scratch, lsf_str *out)
{
    switch (f->type) {
    case LSF_T_STR:
    case LSF_T_JSON:
        *out = f->v.s;
        return true;
    case LSF_T_INT:
        return num_str(scratch, f->v.i, out);
    case LSF_T_FLOAT:
        *out = lsf_str_make(scratch, (size_t)snprintf(scratch, 32, "%.17g", f->v.f));
        return true;
    case LSF_T_BOOL:
        *out = f->v.b ? LSF_STR_LIT("true") : LSF_STR_LIT("false");
        return true;
    default:
        return false;
    }
}

/* ---- field-name table ---------------------------------------------------
 * Names are few (ECS names, rule captures), so a linear table with a mutex
 * for writers is enough; entries never move, so readers need no lock. */
#define MAX_FIELD_NAMES 65535
static char *field_names[MAX_FIELD_NAMES + 1];
static uint16_t field_count;
static pthread_mutex_t field_lock = PTHREAD_MUTEX_INITIALIZER;

uint16_t lsf_field_intern(const char *name, size_t len)
{
    pthread_mutex_lock(&field_lock);
    for (uint16_t i = 1; i <= field_count; i++) {
        if (strlen(field_names[i]) == len && memcmp(field_names[i], name, len) == 0) {
            pthread_mutex_unlock(&field_lock);
            return i;
        }
    }
    if (field_count == MAX_FIELD_NAMES)
        lsf_die("more than %d distinct field names", MAX_FIELD_NAMES);
    char *copy = malloc(len + 1);
    if (!copy)
        lsf_die("out of memory (field name)");
    memcpy(copy, name, len);
    copy[len] = 0;
    field_names[++field_count] = copy;
    uint16_t id = field_count;
    pthread_mutex_unlock(&field_lock);
    return id;
}

const char *lsf_field_name(uint16_t id)
{
    return (id && id <= field_count) ? field_names[id] : "";
}

/* rsyslog's names (RFC 5424 codes 13-15: log audit, log alert, clock). */
static const char *const facility_names[24] = {
    "kern",   "user",   "mail",     "daemon", "auth",   "syslog", "lpr",    "news",
    "uucp",   "cron",   "authpriv", "ftp",    "ntp",    "audit",  "alert",  "clock",
    "local0", "local1", "local2",   "local3", "local4", "local5", "local6", "local7"};
static const char *const severity_names[8] = {"emerg", "alert", "crit",  "err",
                                              "warning", "notice", "info", "debug"};

const char *lsf_facility_name(int code)
{
    return (code >= 0 && code < 24) ? facility_names[code] : NULL;
}

const char *lsf_severity_name(int code)
{
    return (code >= 0 && code < 8) ? severity_names[code] : NULL;
}
