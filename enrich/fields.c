/* fields.c - the `fields` transform: static shaping of events. In this
 * order: `rename` moves fields, `remove` deletes them, `add` sets static
 * values, `defaults` sets values only where a field is absent, `add_tags`
 * appends tags.
 *
 * The one design choice to know: names are treated as objects, the way the
 * output nests them. Renaming `src` also moves `src.ip` to `<new>.ip`;
 * removing `user` also removes `user.name`; a trailing `*` removes by
 * prefix (`tmp_*`, `labels.*`). The well-known syslog fields are struct
 * members, not dynamic fields, so they are handled through a small table:
 * they can be removed, renamed (their value moves to a dynamic field) and
 * set (a string `add: {host.name: x}` fills the member). host.name and
 * log.syslog.hostname are one value (likewise process.name and
 * log.syslog.appname, process.pid and log.syslog.procid); removing
 * log.syslog.priority (or facility, severity) removes the PRI and all
 * three.
 *
 * Added values are typed as YAML writes them: unquoted integers, decimals
 * and true/false stay numbers and booleans, anything quoted is a string.
 *
 * Threads: init/destroy on the main thread; process on any worker (only
 * reads its context).
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/log.h"
#include "core/metrics.h"
#include "core/stage.h"
#include "enrich/enrich.h"

typedef struct fields_conf {
    const lsf_node *rename, *remove, *add, *defaults;
    lsf_strlist add_tags;
} fields_conf;

typedef struct pair {
    lsf_str from, to;
} pair;

typedef struct value {
    lsf_str name;
    lsf_field v; /* type and value; strings are owned by the stage */
} value;

typedef struct fields_ctx {
    pair *ren;
    size_t nren;
    lsf_str *rm; /* a pattern ending in '*' is a prefix */
    size_t nrm;
    value *add, *def;
    size_t nadd, ndef;
    lsf_str *tags;
    size_t ntags;
    lsf_counter *c_changed;
} fields_ctx;

static const lsf_key fields_keys[] = {
    {"rename", LSF_K_NODE, NULL,
     "Map of old name -> new name; a name moves with everything below it (src -> source "
     "also moves src.ip to source.ip).",
     offsetof(fields_conf, rename), NULL, 0, 0, false},
    {"remove", LSF_K_NODE, NULL,
     "Names to remove (with everything below them); a trailing * removes by prefix (tmp_*).",
     offsetof(fields_conf, remove), NULL, 0, 0, false},
    {"add", LSF_K_NODE, NULL,
     "Map of name -> static value, set on every event (replacing a present value).",
     offsetof(fields_conf, add), NULL, 0, 0, false},
    {"defaults", LSF_K_NODE, NULL, "Map of name -> value, set only where the field is absent.",
     offsetof(fields_conf, defaults), NULL, 0, 0, false},
    {"add_tags", LSF_K_STRLIST, NULL, "Tags added to every event.",
     offsetof(fields_conf, add_tags), NULL, 0, 0, false},
    LSF_KEYS_END,
};

/* ---- the well-known fields --------------------------------------------- */

enum { F_STR, F_PRI, F_VERSION };

/* An alias shares its member with an ECS name listed before it: only its
 * exact name reaches it, so `remove: [log.syslog]` keeps host.name. */
static const struct {
    const char *name;
    size_t off; /* F_STR: offset of the lsf_str member */
    int kind;
    bool alias;
} fixed[] = {
    {"message", offsetof(lsf_event, message), F_STR, false},
    {"host.name", offsetof(lsf_event, host), F_STR, false},
    {"log.syslog.hostname", offsetof(lsf_event, host), F_STR, true},
    {"process.name", offsetof(lsf_event, app), F_STR, false},
    {"log.syslog.appname", offsetof(lsf_event, app), F_STR, true},
    {"process.pid", offsetof(lsf_event, procid), F_STR, false},
    {"log.syslog.procid", offsetof(lsf_event, procid), F_STR, true},
    {"log.syslog.msgid", offsetof(lsf_event, msgid), F_STR, false},
    {"log.syslog.structured_data", offsetof(lsf_event, sd), F_STR, false},
    {"log.source.address", offsetof(lsf_event, source_addr), F_STR, false},
    {"log.syslog.priority", 0, F_PRI, false},
    {"log.syslog.facility.code", 0, F_PRI, true},
    {"log.syslog.facility.name", 0, F_PRI, true},
    {"log.syslog.severity.code", 0, F_PRI, true},
    {"log.syslog.severity.name", 0, F_PRI, true},
    {"log.syslog.version", 0, F_VERSION, false},
};
#define NFIXED (sizeof(fixed) / sizeof(fixed[0]))

static int fixed_index(lsf_str name)
{
    for (size_t i = 0; i < NFIXED; i++)
        if (lsf_str_eq_cstr(name, fixed[i].name))
            return (int)i;
    return -1;
}

static lsf_str *slot_of(lsf_event *ev, size_t i)
{
    return (lsf_str *)((char *)ev + fixed[i].off);
}

static void clear_fixed(lsf_event *ev, size_t i)
{
    if (fixed[i].kind == F_STR)
        *slot_of(ev, i) = LSF_STR_NULL;
    else if (fixed[i].kind == F_PRI)
        ev->pri = -1;
    else
        ev->version = 0;
}

/* ---- matching ------------------------------------------------------------ */

/* `name` is `pat` or below it (pat + "."), or starts with the prefix of a
 * pattern ending in '*'. */
static bool matches(lsf_str name, lsf_str pat)
{
    if (pat.len && pat.ptr[pat.len - 1] == '*')
        return name.len >= pat.len - 1 && memcmp(name.ptr, pat.ptr, pat.len - 1) == 0;
    if (name.len < pat.len || memcmp(name.ptr, pat.ptr, pat.len) != 0)
        return false;
    return name.len == pat.len || name.ptr[pat.len] == '.';
}

static void drop_field(lsf_event *ev, uint16_t i)
{
    memmove(&ev->fields[i], &ev->fields[i + 1], (size_t)(ev->nfields - i - 1) * sizeof(lsf_field));
    ev->nfields--;
}

static bool fixed_present(const lsf_event *ev, size_t i)
{
    if (fixed[i].kind == F_STR)
        return ((const lsf_str *)((const char *)ev + fixed[i].off))->ptr != NULL;
    return fixed[i].kind == F_PRI ? ev->pri >= 0 : ev->version > 0;
}

/* Removes every field (dynamic or well-known) at or below `pat`, except
 * those at or below `keep` (when keep.ptr is set); returns how many went. */
static int remove_matching(lsf_event *ev, lsf_str pat, lsf_str keep)
{
    int n = 0;
    for (uint16_t i = 0; i < ev->nfields;)
        if (matches(ev->fields[i].name, pat) && !(keep.ptr && matches(ev->fields[i].name, keep))) {
            drop_field(ev, i);
            n++;
        } else {
            i++;
        }
    for (size_t i = 0; i < NFIXED; i++) {
        lsf_str name = lsf_enrich_str(fixed[i].name);
        if (fixed_present(ev, i) && (fixed[i].alias ? lsf_str_eq(name, pat) : matches(name, pat)) &&
            !(keep.ptr && matches(name, keep))) {
            clear_fixed(ev, i);
            n++;
        }
    }
    return n;
}

/* Sets `name` to a string: the well-known member when there is one, else a
 * dynamic field. */
static void set_str(lsf_batch *b, lsf_event *ev, lsf_str name, lsf_str v)
{
    int fi = fixed_index(name);
    if (fi >= 0 && fixed[fi].kind == F_STR)
        *slot_of(ev, (size_t)fi) = v;
    else
        lsf_event_set_str(b, ev, name, v);
}

static int rename_one(lsf_batch *b, lsf_event *ev, const pair *p)
{
    int fi = fixed_index(p->from);
    bool from_fixed = fi >= 0 && fixed[fi].kind == F_STR && slot_of(ev, (size_t)fi)->ptr;
    bool any = from_fixed;
    for (uint16_t i = 0; i < ev->nfields && !any; i++)
        any = matches(ev->fields[i].name, p->from);
    if (!any)
        return 0;
    int n = 0;
    lsf_str v = from_fixed ? *slot_of(ev, (size_t)fi) : LSF_STR_NULL;
    if (from_fixed)
        clear_fixed(ev, (size_t)fi);
    /* the moved object replaces whatever was at the new name */
    remove_matching(ev, p->to, p->from);
    if (from_fixed) { /* a well-known field moves to a string field */
        set_str(b, ev, p->to, v);
        n++;
    }
    for (uint16_t i = 0; i < ev->nfields; i++) {
        lsf_field *f = &ev->fields[i];
        if (!matches(f->name, p->from))
            continue;
        lsf_str rest = lsf_str_make(f->name.ptr + p->from.len, f->name.len - p->from.len);
        lsf_str to = p->to;
        if (rest.len) {
            char *s = lsf_arena_alloc(&b->arena, p->to.len + rest.len);
            memcpy(s, p->to.ptr, p->to.len);
            memcpy(s + p->to.len, rest.ptr, rest.len);
            to = lsf_str_make(s, p->to.len + rest.len);
        }
        f->name = to;
        f->id = 0;
        n++;
        int tfi = fixed_index(to);
        if (tfi >= 0 && fixed[tfi].kind == F_STR && f->type == LSF_T_STR) {
            *slot_of(ev, (size_t)tfi) = f->v.s; /* fills the well-known member */
            drop_field(ev, i);
            i--; /* (wraps at 0; the loop's i++ brings it back) */
        }
    }
    return n;
}

static void set_value(lsf_batch *b, lsf_event *ev, const value *v)
{
    if (v->v.type == LSF_T_STR) {
        set_str(b, ev, v->name, v->v.v.s);
        return;
    }
    lsf_field *f = lsf_event_set(b, ev, v->name, 0);
    f->type = v->v.type;
    f->v = v->v.v;
}

static bool present(lsf_event *ev, lsf_str name)
{
    char scratch[32];
    lsf_str out;
    return lsf_event_get_str(ev, name, scratch, &out);
}

static int fields_process(lsf_stage *st, lsf_batch *b, int worker)
{
    fields_ctx *x = st->ctx;
    (void)worker;
    uint64_t changed = 0;
    for (uint32_t i = 0; i < b->n; i++) {
        lsf_event *ev = &b->events[i];
        if (ev->flags & LSF_EV_DROPPED)
            continue;
        int n = 0;
        for (size_t k = 0; k < x->nren; k++)
            n += rename_one(b, ev, &x->ren[k]);
        for (size_t k = 0; k < x->nrm; k++)
            n += remove_matching(ev, x->rm[k], LSF_STR_NULL);
        for (size_t k = 0; k < x->nadd; k++, n++)
            set_value(b, ev, &x->add[k]);
        for (size_t k = 0; k < x->ndef; k++)
            if (!present(ev, x->def[k].name)) {
                set_value(b, ev, &x->def[k]);
                n++;
            }
        for (size_t k = 0; k < x->ntags; k++, n++)
            lsf_event_add_tag(b, ev, x->tags[k]);
        changed += n > 0;
    }
    if (changed)
        lsf_counter_add(x->c_changed, changed);
    return LSF_OK;
}

/* ---- set-up ------------------------------------------------------------- */

static lsf_str own(const char *s) { return lsf_enrich_str(lsf_enrich_join("", s)); }

static int check_name(const lsf_node *at_key, const char *what, const char *name, bool glob,
                      lsf_errbuf *err)
{
    size_t n = strlen(name);
    char buf[256];
    if (glob && n && name[n - 1] == '*') {
        if (n == 1)
            return 0;
        snprintf(buf, sizeof(buf), "%.*s", (int)(n - 1), name);
        n = strlen(buf);
        if (buf[n - 1] == '.') /* "labels.*" */
            buf[n - 1] = 0;
        name = buf;
    }
    if (!lsf_enrich_name_ok(name) || strchr(name, '*'))
        return lsf_node_error(err, at_key, "%s: '%s' is not a field name%s", what, name,
                              strchr(name, '*') ? " (only remove takes a trailing *)" : "");
    return 0;
}

static lsf_node key_pos(const lsf_node *c)
{
    lsf_node at = *c;
    at.line = c->key_line;
    at.col = c->key_col;
    return at;
}

/* A scalar as a typed value: unquoted integers, decimals, booleans. */
static void typed(const lsf_node *n, lsf_field *f)
{
    int64_t i;
    bool bv;
    char *end;
    f->type = LSF_T_STR;
    f->v.s = own(n->str);
    if (n->quoted)
        return;
    if (lsf_parse_int(n->str, &i) == 0) {
        free((char *)f->v.s.ptr);
        f->type = LSF_T_INT;
        f->v.i = i;
    } else if (strcmp(n->str, "true") == 0 || strcmp(n->str, "false") == 0) {
        lsf_parse_bool(n->str, &bv);
        free((char *)f->v.s.ptr);
        f->type = LSF_T_BOOL;
        f->v.b = bv;
    } else {
        double d = strtod(n->str, &end);
        if (*n->str && !*end && isfinite(d) && strpbrk(n->str, "0123456789")) {
            free((char *)f->v.s.ptr);
            f->type = LSF_T_FLOAT;
            f->v.f = d;
        }
    }
}

static int parse_values(const lsf_node *map, const char *what, value **out, size_t *nout,
                        lsf_errbuf *err)
{
    if (!map)
        return 0;
    if (map->kind != LSF_NODE_MAP)
        return lsf_node_error(err, map, "%s: expected a map of field name -> value", what);
    *out = calloc(map->nchild ? map->nchild : 1, sizeof(value));
    if (!*out)
        lsf_die("out of memory");
    for (const lsf_node *c = map->child; c; c = c->next) {
        lsf_node at = key_pos(c);
        if (check_name(&at, what, c->key, false, err) < 0)
            return -1;
        if (c->kind != LSF_NODE_SCALAR)
            return lsf_node_error(err, c, "%s: %s: expected a single value", what, c->key);
        value *v = &(*out)[(*nout)++];
        v->name = own(c->key);
        typed(c, &v->v);
    }
    return 0;
}

static int fields_init(lsf_stage *st, lsf_errbuf *err)
{
    fields_ctx *x = st->ctx;
    fields_conf *c = st->conf;
    x->c_changed = lsf_counter_new(st->name, "changed");
    if (!c->rename && !c->remove && !c->add && !c->defaults && !c->add_tags.n)
        return lsf_node_error(err, st->node, "fields: nothing to do (give rename, remove, add, "
                                             "defaults or add_tags)");
    if (c->rename) {
        if (c->rename->kind != LSF_NODE_MAP)
            return lsf_node_error(err, c->rename, "rename: expected a map of old name -> new name");
        x->ren = calloc(c->rename->nchild ? c->rename->nchild : 1, sizeof(pair));
        if (!x->ren)
            lsf_die("out of memory");
        for (const lsf_node *r = c->rename->child; r; r = r->next) {
            lsf_node at = key_pos(r);
            if (check_name(&at, "rename", r->key, false, err) < 0)
                return -1;
            if (r->kind != LSF_NODE_SCALAR)
                return lsf_node_error(err, r, "rename: %s: expected the new name", r->key);
            if (check_name(r, "rename", r->str, false, err) < 0)
                return -1;
            x->ren[x->nren++] = (pair){own(r->key), own(r->str)};
        }
    }
    if (c->remove) {
        const lsf_node *single = c->remove->kind == LSF_NODE_SCALAR ? c->remove : NULL;
        if (!single && c->remove->kind != LSF_NODE_SEQ)
            return lsf_node_error(err, c->remove, "remove: expected a list of field names");
        x->rm = calloc(c->remove->nchild + 1, sizeof(lsf_str));
        if (!x->rm)
            lsf_die("out of memory");
        for (const lsf_node *r = single ? single : c->remove->child; r;
             r = single ? NULL : r->next) {
            if (r->kind != LSF_NODE_SCALAR)
                return lsf_node_error(err, r, "remove: expected a field name");
            if (check_name(r, "remove", r->str, true, err) < 0)
                return -1;
            x->rm[x->nrm++] = own(r->str);
        }
    }
    if (parse_values(c->add, "add", &x->add, &x->nadd, err) < 0 ||
        parse_values(c->defaults, "defaults", &x->def, &x->ndef, err) < 0)
        return -1;
    if (c->add_tags.n) {
        x->tags = calloc(c->add_tags.n, sizeof(lsf_str));
        if (!x->tags)
            lsf_die("out of memory");
        for (size_t i = 0; i < c->add_tags.n; i++) {
            if (!*c->add_tags.v[i])
                return lsf_node_error(err, lsf_enrich_at(st->node, "add_tags"),
                                      "add_tags: a tag cannot be empty");
            x->tags[x->ntags++] = own(c->add_tags.v[i]);
        }
    }
    return 0;
}

static void free_values(value *v, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free((char *)v[i].name.ptr);
        if (v[i].v.type == LSF_T_STR)
            free((char *)v[i].v.v.s.ptr);
    }
    free(v);
}

static void fields_destroy(lsf_stage *st)
{
    fields_ctx *x = st->ctx;
    for (size_t i = 0; i < x->nren; i++) {
        free((char *)x->ren[i].from.ptr);
        free((char *)x->ren[i].to.ptr);
    }
    free(x->ren);
    for (size_t i = 0; i < x->nrm; i++)
        free((char *)x->rm[i].ptr);
    free(x->rm);
    free_values(x->add, x->nadd);
    free_values(x->def, x->ndef);
    for (size_t i = 0; i < x->ntags; i++)
        free((char *)x->tags[i].ptr);
    free(x->tags);
}

const lsf_stage_def lsf_stage_fields = {
    .name = "fields",
    .kind = LSF_STAGE_TRANSFORM,
    .help = "Shapes events with static rules: rename, remove, add (static values), defaults, "
            "add_tags.",
    .keys = fields_keys,
    .conf_size = sizeof(fields_conf),
    .ctx_size = sizeof(fields_ctx),
    .init = fields_init,
    .process = fields_process,
    .destroy = fields_destroy,
};
