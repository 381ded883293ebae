/* json.c - JSON lines, and JSON objects inside a syslog MSG, as fields.
 *
 * Design: json_scan.c validates the object in one pass and hands out
 * members as slices of the line (strings are copied only when they hold
 * escapes), so a JSON line costs about as much as a syslog line. Members
 * become dynamic fields (objects flatten to dotted names "a.b.c", arrays
 * stay JSON text) and a few well-known keys fill event members:
 * message/msg, @timestamp/timestamp/time/ts (RFC 3339 text or epoch
 * s/ms/us/ns), host/hostname (and a nested host.name), level/severity ->
 * field log.level. An "@timestamp" or string "host" member that is not used
 * (unparseable, or the syslog header wins) is dropped rather than clash with
 * the event's own; event.original keeps it. A line without a message member
 * keeps the whole line as message, so rules that match on message still see
 * it. Names of nested members are built in the batch arena.
 * Threads: pure functions.
 */
#include <stdbool.h>
#include <string.h>

#include "parsers/json_scan.h"
#include "parsers/parse.h"

typedef struct jctx {
    lsf_batch *b;
    lsf_event *ev;
    const lsf_parse_opts *opts;
    bool weak; /* syslog body: the header's host and time win */
} jctx;

/* The top-level members of an object, collected before they are applied. */
typedef struct member {
    lsf_str key;
    lsf_jval v;
} member;

typedef struct members {
    member *v;
    size_t n, cap;
    lsf_arena *arena;
} members;

static void collect(void *arg, lsf_str key, const lsf_jval *v)
{
    members *m = arg;
    if (m->n == m->cap) {
        size_t ncap = m->cap ? m->cap * 2 : 16;
        member *nv = lsf_arena_alloc(m->arena, ncap * sizeof(member));
        if (m->n)
            memcpy(nv, m->v, m->n * sizeof(member));
        m->v = nv;
        m->cap = ncap;
    }
    m->v[m->n].key = key;
    m->v[m->n].v = *v;
    m->n++;
}

/* Scans the object p[0..n) into its top-level members; -1 if not JSON. */
static int load(lsf_batch *b, const char *p, size_t n, members *m)
{
    memset(m, 0, sizeof(*m));
    m->arena = &b->arena;
    return lsf_json_scan_object(p, n, &b->arena, collect, m);
}

static const lsf_jval *get(const members *m, const char *key)
{
    const lsf_jval *found = NULL; /* duplicate keys: the last one wins */
    for (size_t i = 0; i < m->n; i++)
        if (lsf_str_eq_cstr(m->v[i].key, key))
            found = &m->v[i].v;
    return found;
}

/* The time a member holds, if it holds one. */
static bool jtime(jctx *c, const lsf_jval *v, int64_t *t)
{
    if (v->kind == LSF_J_STR) {
        const char *s = v->s.ptr;
        size_t n = v->s.len;
        return n && (lsf_ts_parse_rfc3339(s, n, c->opts, t) == n || lsf_ts_parse_epoch(s, n, t) == n ||
                     lsf_ts_parse_3164(s, n, c->opts, c->ev->ingested_ns, t) == n);
    }
    if (v->kind == LSF_J_INT) {
        if (v->i >= 100000000000000000LL) { /* ns: exact */
            *t = v->i;
            return true;
        }
        return v->i > 0 && lsf_ts_from_epoch((double)v->i, t) == 0;
    }
    if (v->kind == LSF_J_FLOAT)
        return v->f > 0 && lsf_ts_from_epoch(v->f, t) == 0;
    return false;
}

static void set_value(jctx *c, lsf_str name, const lsf_jval *v);

typedef struct flat {
    jctx *c;
    lsf_str prefix;
    size_t members;
} flat;

static void flatten_member(void *arg, lsf_str key, const lsf_jval *v)
{
    flat *f = arg;
    f->members++;
    if (key.len == 0)
        return;
    size_t nl = f->prefix.len + 1 + key.len;
    char *name = lsf_arena_alloc(&f->c->b->arena, nl);
    memcpy(name, f->prefix.ptr, f->prefix.len);
    name[f->prefix.len] = '.';
    memcpy(name + f->prefix.len + 1, key.ptr, key.len);
    set_value(f->c, lsf_str_make(name, nl), v);
}

static void set_value(jctx *c, lsf_str name, const lsf_jval *v)
{
    lsf_batch *b = c->b;
    lsf_event *ev = c->ev;
    switch (v->kind) {
    case LSF_J_OBJ: {
        flat f = {c, name, 0};
        if (lsf_json_scan_object(v->raw.ptr, v->raw.len, &b->arena, flatten_member, &f) == 0 &&
            f.members)
            return;
        break; /* an empty object stays "{}" */
    }
    case LSF_J_STR:
        if (lsf_str_eq_cstr(name, "host.name") && !ev->host.ptr) {
            ev->host = v->s;
            return;
        }
        lsf_event_set_str(b, ev, name, v->s);
        return;
    case LSF_J_INT:
        lsf_event_set_int(b, ev, name, v->i);
        return;
    case LSF_J_FLOAT:
        lsf_event_set_float(b, ev, name, v->f);
        return;
    case LSF_J_TRUE:
    case LSF_J_FALSE:
        lsf_event_set_bool(b, ev, name, v->kind == LSF_J_TRUE);
        return;
    case LSF_J_NULL:
        lsf_event_set(b, ev, name, 0)->type = LSF_T_NULL;
        return;
    case LSF_J_ARR:
        break;
    }
    lsf_field *f = lsf_event_set(b, ev, name, 0);
    f->type = LSF_T_JSON;
    f->v.s = lsf_json_compact(&b->arena, v->raw);
}

static const char *const time_keys[] = {"@timestamp", "timestamp", "time", "ts"};

static bool used(const char *k, lsf_str key)
{
    return k && lsf_str_eq_cstr(key, k);
}

static void apply(jctx *c, const members *o)
{
    lsf_event *ev = c->ev;
    const char *used_time = NULL, *used_msg = NULL, *used_host = NULL, *used_level = NULL;

    if (!c->weak || (ev->flags & LSF_EV_TIME_GUESSED)) {
        for (size_t k = 0; k < sizeof(time_keys) / sizeof(time_keys[0]); k++) {
            const lsf_jval *v = get(o, time_keys[k]);
            int64_t t;
            if (v && jtime(c, v, &t)) {
                ev->time_ns = t;
                ev->flags &= (uint16_t)~LSF_EV_TIME_GUESSED;
                used_time = time_keys[k];
                break;
            }
        }
    }
    const lsf_jval *m = get(o, "message");
    used_msg = "message";
    if (!m) {
        m = get(o, "msg");
        used_msg = "msg";
    }
    if (m)
        ev->message = m->kind == LSF_J_STR ? m->s : lsf_json_compact(&c->b->arena, m->raw);
    else
        used_msg = NULL;
    if (!c->weak || !ev->host.ptr) {
        const lsf_jval *h = get(o, "host");
        used_host = "host";
        if (!h || h->kind != LSF_J_STR) {
            h = get(o, "hostname");
            used_host = "hostname";
        }
        if (h && h->kind == LSF_J_STR && h->s.len > 0)
            ev->host = h->s;
        else
            used_host = NULL;
    }
    used_level = get(o, "level") ? "level" : get(o, "severity") ? "severity" : NULL;

    for (size_t i = 0; i < o->n; i++) {
        lsf_str key = o->v[i].key;
        const lsf_jval *v = &o->v[i].v;
        if (used(used_time, key) || used(used_msg, key) || used(used_host, key))
            continue;
        /* Would clash with the event's own @timestamp and host.name. */
        if (lsf_str_eq_cstr(key, "@timestamp") || (lsf_str_eq_cstr(key, "host") && v->kind == LSF_J_STR))
            continue;
        if (key.len == 0)
            continue;
        lsf_str name = used(used_level, key) ? LSF_STR_LIT("log.level") : key;
        set_value(c, name, v);
    }
}

int lsf_parse_json(lsf_batch *b, lsf_event *ev, const lsf_parse_opts *opts)
{
    const char *p = ev->raw.ptr;
    size_t n = lsf_parse_len(ev), i = 0;
    if (!p)
        return -1;
    while (i < n && (p[i] == ' ' || p[i] == '\t'))
        i++;
    members o;
    if (i >= n || p[i] != '{' || load(b, p + i, n - i, &o) < 0)
        return -1;
    ev->format = LSF_FMT_JSON;
    ev->message = lsf_str_make(p, n);
    ev->time_ns = ev->ingested_ns;
    ev->flags |= LSF_EV_TIME_GUESSED;
    jctx c = {b, ev, opts, false};
    apply(&c, &o);
    return 0;
}

int lsf_json_object_to_fields(lsf_batch *b, lsf_event *ev, const char *p, size_t n)
{
    members o;
    if (!p || load(b, p, n, &o) < 0)
        return -1;
    jctx c = {b, ev, NULL, true};
    apply(&c, &o);
    return 0;
}

void lsf_parse_body_json(lsf_batch *b, lsf_event *ev, const lsf_parse_opts *opts)
{
    if (!opts || !opts->body_json || !ev->message.ptr)
        return;
    const char *p = ev->message.ptr;
    size_t n = ev->message.len, i = 0;
    if (n >= 5 && memcmp(p, "@cee:", 5) == 0)
        i = 5;
    while (i < n && p[i] == ' ')
        i++;
    members o;
    if (i >= n || p[i] != '{' || load(b, p + i, n - i, &o) < 0)
        return;
    jctx c = {b, ev, opts, true};
    apply(&c, &o);
}
