/* json.c - JSON lines, and JSON objects inside a syslog MSG, as fields.
 *
 * Design: jansson parses the object; members become dynamic fields
 * (objects flatten to dotted names "a.b.c", arrays stay JSON text) and a few
 * well-known keys fill event members: message/msg, @timestamp/timestamp/
 * time/ts (RFC 3339 text or epoch s/ms/us/ns), host/hostname (and a nested
 * host.name), level/severity -> field log.level. An "@timestamp" or string
 * "host" member that is not used (unparseable, or the syslog header wins) is
 * dropped rather than clash with the event's own; event.original keeps it.
 * Every name and string is
 * copied into the batch arena, because jansson's tree is freed before
 * return. A line without a message member keeps the whole line as message,
 * so rules that match on message still see it.
 * Threads: pure functions; jansson is thread-safe for separate documents.
 */
#include <jansson.h>
#include <stdbool.h>
#include <string.h>

#include "parsers/parse.h"

typedef struct jctx {
    lsf_batch *b;
    lsf_event *ev;
    const lsf_parse_opts *opts;
    bool weak; /* syslog body: the header's host and time win */
} jctx;

static json_t *load(const char *p, size_t n)
{
    json_error_t err;
    json_t *j = json_loadb(p, n, JSON_ALLOW_NUL, &err);
    if (!j && json_error_code(&err) == json_error_numeric_overflow)
        j = json_loadb(p, n, JSON_ALLOW_NUL | JSON_DECODE_INT_AS_REAL, &err);
    if (j && !json_is_object(j)) {
        json_decref(j);
        j = NULL;
    }
    return j;
}

static lsf_str dup(jctx *c, const char *s, size_t n)
{
    return lsf_str_make(lsf_arena_memdup(&c->b->arena, s, n), n);
}

/* Compact JSON text of v in the arena. */
static lsf_str dump(jctx *c, json_t *v)
{
    const size_t fl = JSON_COMPACT | JSON_ENCODE_ANY;
    size_t need = json_dumpb(v, NULL, 0, fl);
    if (need == 0)
        return LSF_STR_LIT("null");
    char *buf = lsf_arena_alloc(&c->b->arena, need);
    json_dumpb(v, buf, need, fl);
    return lsf_str_make(buf, need);
}

static lsf_str strval(jctx *c, json_t *v)
{
    return dup(c, json_string_value(v), json_string_length(v));
}

/* The time a member holds, if it holds one. */
static bool jtime(jctx *c, json_t *v, int64_t *t)
{
    if (json_is_string(v)) {
        const char *s = json_string_value(v);
        size_t n = json_string_length(v);
        return n && (lsf_ts_parse_rfc3339(s, n, c->opts, t) == n || lsf_ts_parse_epoch(s, n, t) == n ||
                     lsf_ts_parse_3164(s, n, c->opts, c->ev->ingested_ns, t) == n);
    }
    if (json_is_integer(v)) {
        json_int_t iv = json_integer_value(v);
        if (iv >= 100000000000000000LL) { /* ns: exact */
            *t = (int64_t)iv;
            return true;
        }
        return iv > 0 && lsf_ts_from_epoch((double)iv, t) == 0;
    }
    if (json_is_real(v))
        return json_real_value(v) > 0 && lsf_ts_from_epoch(json_real_value(v), t) == 0;
    return false;
}

static void set_value(jctx *c, lsf_str name, json_t *v);

static void flatten(jctx *c, lsf_str prefix, json_t *obj)
{
    const char *key;
    json_t *v;
    json_object_foreach(obj, key, v)
    {
        size_t kl = strlen(key);
        if (kl == 0)
            continue;
        size_t nl = prefix.len + 1 + kl;
        char *name = lsf_arena_alloc(&c->b->arena, nl);
        memcpy(name, prefix.ptr, prefix.len);
        name[prefix.len] = '.';
        memcpy(name + prefix.len + 1, key, kl);
        set_value(c, lsf_str_make(name, nl), v);
    }
}

static void set_value(jctx *c, lsf_str name, json_t *v)
{
    lsf_batch *b = c->b;
    lsf_event *ev = c->ev;
    switch (json_typeof(v)) {
    case JSON_OBJECT:
        if (json_object_size(v) == 0)
            break; /* "{}": written as JSON text below */
        flatten(c, name, v);
        return;
    case JSON_STRING:
        if (lsf_str_eq_cstr(name, "host.name") && !ev->host.ptr) {
            ev->host = strval(c, v);
            return;
        }
        lsf_event_set_str(b, ev, name, strval(c, v));
        return;
    case JSON_INTEGER:
        lsf_event_set_int(b, ev, name, (int64_t)json_integer_value(v));
        return;
    case JSON_REAL:
        lsf_event_set_float(b, ev, name, json_real_value(v));
        return;
    case JSON_TRUE:
    case JSON_FALSE:
        lsf_event_set_bool(b, ev, name, json_is_true(v));
        return;
    case JSON_NULL:
        lsf_event_set(b, ev, name, 0)->type = LSF_T_NULL;
        return;
    default:
        break;
    }
    lsf_field *f = lsf_event_set(b, ev, name, 0);
    f->type = LSF_T_JSON;
    f->v.s = dump(c, v);
}

static const char *const time_keys[] = {"@timestamp", "timestamp", "time", "ts"};

static void apply(jctx *c, json_t *o)
{
    lsf_event *ev = c->ev;
    const char *used_time = NULL, *used_msg = NULL, *used_host = NULL, *used_level = NULL;

    if (!c->weak || (ev->flags & LSF_EV_TIME_GUESSED)) {
        for (size_t k = 0; k < sizeof(time_keys) / sizeof(time_keys[0]); k++) {
            json_t *v = json_object_get(o, time_keys[k]);
            int64_t t;
            if (v && jtime(c, v, &t)) {
                ev->time_ns = t;
                ev->flags &= (uint16_t)~LSF_EV_TIME_GUESSED;
                used_time = time_keys[k];
                break;
            }
        }
    }
    json_t *m = json_object_get(o, "message");
    used_msg = "message";
    if (!m) {
        m = json_object_get(o, "msg");
        used_msg = "msg";
    }
    if (m)
        ev->message = json_is_string(m) ? strval(c, m) : dump(c, m);
    else
        used_msg = NULL;
    if (!c->weak || !ev->host.ptr) {
        json_t *h = json_object_get(o, "host");
        used_host = "host";
        if (!json_is_string(h)) {
            h = json_object_get(o, "hostname");
            used_host = "hostname";
        }
        if (json_is_string(h) && json_string_length(h) > 0)
            ev->host = strval(c, h);
        else
            used_host = NULL;
    }
    used_level = json_object_get(o, "level") ? "level" : json_object_get(o, "severity") ? "severity" : NULL;

    const char *key;
    json_t *v;
    json_object_foreach(o, key, v)
    {
        if ((used_time && !strcmp(key, used_time)) || (used_msg && !strcmp(key, used_msg)) ||
            (used_host && !strcmp(key, used_host)))
            continue;
        /* Would clash with the event's own @timestamp and host.name. */
        if (!strcmp(key, "@timestamp") || (!strcmp(key, "host") && json_is_string(v)))
            continue;
        size_t kl = strlen(key);
        if (kl == 0)
            continue;
        lsf_str name = (used_level && !strcmp(key, used_level)) ? LSF_STR_LIT("log.level") : dup(c, key, kl);
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
    if (i >= n || p[i] != '{')
        return -1;
    json_t *o = load(p + i, n - i);
    if (!o)
        return -1;
    ev->format = LSF_FMT_JSON;
    ev->message = lsf_str_make(p, n);
    ev->time_ns = ev->ingested_ns;
    ev->flags |= LSF_EV_TIME_GUESSED;
    jctx c = {b, ev, opts, false};
    apply(&c, o);
    json_decref(o);
    return 0;
}

int lsf_json_object_to_fields(lsf_batch *b, lsf_event *ev, const char *p, size_t n)
{
    json_t *o = p ? load(p, n) : NULL;
    if (!o)
        return -1;
    jctx c = {b, ev, NULL, true};
    apply(&c, o);
    json_decref(o);
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
    if (i >= n || p[i] != '{')
        return;
    json_t *o = load(p + i, n - i);
    if (!o)
        return;
    jctx c = {b, ev, opts, true};
    apply(&c, o);
    json_decref(o);
}
