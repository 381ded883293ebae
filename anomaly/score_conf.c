/* score_conf.c - the `detectors:` list of the anomaly stage: keys, checks,
 * and the detector set they build; also event keys (by-fields).
 *
 * The one design choice to know: every detector kind shares one key table
 * (so `logsift help anomaly` can print it and typos get a did-you-mean),
 * and a key that does not apply to the detector's type is an error at its
 * position rather than silently ignored.
 *
 * Threads: parsing on the main thread; lsf_anom_key on any worker.
 */
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "anomaly/anomaly.h"
#include "anomaly/hash.h"
#include "core/log.h"
#include "rules/rules_int.h"

#define KEY_SEED 0x616e6f6d616c7921ULL

typedef struct det_conf {
    char *name;
    int type;
    lsf_strlist by;
    char *field;
    const lsf_node *where;
    int64_t interval_ms, lateness_ms, learning_ms;
    int agg;
    int64_t max_values, max_keys, max_memory, sketch_width;
    int season;
    int64_t window, shape_length, shape_dims, history, calibration, cooldown, learn;
} det_conf;

/* Which types a key applies to: bit (1 << type); 0xf = all. */
#define T_RATE (1u << LSF_ANOM_RATE)
#define T_NUM (1u << LSF_ANOM_NUMERIC)
#define T_NEW (1u << LSF_ANOM_NEW_VALUE)
#define T_TPL (1u << LSF_ANOM_RARE_TEMPLATE)
#define T_MODEL (T_RATE | T_NUM)

static const struct {
    const char *key;
    unsigned types;
} applies[] = {
    {"field", T_NUM | T_NEW | T_TPL}, {"interval", T_MODEL},      {"lateness", T_MODEL},
    {"aggregate", T_NUM},
    {"learning", T_NEW | T_TPL},      {"max_values", T_NEW | T_TPL}, {"sketch_width", T_TPL},
    {"seasonality", T_MODEL},         {"window", T_MODEL},        {"shape_length", T_MODEL},
    {"shape_dims", T_MODEL},          {"history", T_MODEL},       {"calibration", T_MODEL},
    {"cooldown", T_MODEL},            {"learn", T_MODEL},
};

static const lsf_key lsf_anom_det_keys[] = {
    {"name", LSF_K_STR, NULL, "Detector name: in anomaly.detector, counters and snapshots.",
     offsetof(det_conf, name), NULL, 0, 0, true},
    {"type", LSF_K_ENUM, NULL, "rate | numeric | new_value | rare_template.",
     offsetof(det_conf, type), "rate|numeric|new_value|rare_template", 0, 0, true},
    {"by", LSF_K_STRLIST, NULL, "Fields whose values form the key (none: one key for all events).",
     offsetof(det_conf, by), NULL, 0, 0, false},
    {"field", LSF_K_STR, NULL,
     "numeric: the number; new_value: the value; rare_template: the text (default message).",
     offsetof(det_conf, field), NULL, 0, 0, false},
    {"where", LSF_K_NODE, NULL, "Only events whose fields equal these values: {field: value}.",
     offsetof(det_conf, where), NULL, 0, 0, false},
    {"interval", LSF_K_DURATION, "1m",
     "rate, numeric: the interval an observation covers (event time); numeric 0: every value.",
     offsetof(det_conf, interval_ms), NULL, 0, 366LL * 86400 * 1000, false},
    {"lateness", LSF_K_DURATION, "10s",
     "rate, numeric: how long an interval waits for late events.",
     offsetof(det_conf, lateness_ms), NULL, 0, 366LL * 86400 * 1000, false},
    {"aggregate", LSF_K_ENUM, "mean", "numeric: what an interval's values become.",
     offsetof(det_conf, agg), "mean|max|min|sum", 0, 0, false},
    {"learning", LSF_K_DURATION, "1d",
     "new_value, rare_template: per key, values first seen this soon after its first event are "
     "learned, not scored.",
     offsetof(det_conf, learning_ms), NULL, 0, 3650LL * 86400 * 1000, false},
    {"max_values", LSF_K_INT, "1024", "new_value, rare_template: values/templates kept per key.",
     offsetof(det_conf, max_values), NULL, 1, 1 << 24, false},
    {"max_keys", LSF_K_INT, "100000", "Keys kept; the least recently used go first (counted).",
     offsetof(det_conf, max_keys), NULL, 1, 1LL << 40, false},
    {"max_memory", LSF_K_SIZE, "256MiB",
     "Memory for this detector's keys; the least recently used go first (counted).",
     offsetof(det_conf, max_memory), NULL, 4096, 1LL << 50, false},
    {"sketch_width", LSF_K_INT, "16384",
     "rare_template: count-min counters per row per shard (error ~ 2.7 / width of the shard's "
     "events).",
     offsetof(det_conf, sketch_width), NULL, 64, 1 << 26, false},
    {"seasonality", LSF_K_ENUM, "none",
     "rate, numeric: add an hour-of-day or hour-of-week baseline to the model.",
     offsetof(det_conf, season), "none|daily|weekly", 0, 0, false},
    {"window", LSF_K_INT, "128", "rate, numeric: values in the robust baseline (median/MAD).",
     offsetof(det_conf, window), NULL, 2, 65536, false},
    {"shape_length", LSF_K_INT, "16", "rate, numeric: values in one shape window.",
     offsetof(det_conf, shape_length), NULL, 1, 4096, false},
    {"shape_dims", LSF_K_INT, "8", "rate, numeric: means a shape window is reduced to.",
     offsetof(det_conf, shape_dims), NULL, 1, LSF_NOVELTY_MAX_DIMS, false},
    {"history", LSF_K_INT, "2048", "rate, numeric: past shapes kept per key (4 * shape_dims bytes each).",
     offsetof(det_conf, history), NULL, 1, 1 << 20, false},
    {"calibration", LSF_K_INT, "1024",
     "rate, numeric: observations a measure is ranked against (a multiple of 16).",
     offsetof(det_conf, calibration), NULL, 16, 1 << 24, false},
    {"cooldown", LSF_K_INT, "100",
     "rate, numeric: observations after a peak during which weaker evidence is halved.",
     offsetof(det_conf, cooldown), NULL, 0, 1 << 24, false},
    {"learn", LSF_K_INT, "150", "rate, numeric: observations per key before scores start.",
     offsetof(det_conf, learn), NULL, 0, 1LL << 40, false},
    LSF_KEYS_END,
};

static void def_free(lsf_anom_def *d)
{
    free(d->name);
    free(d->field);
    for (size_t i = 0; i < d->by.n; i++)
        free(d->by.v[i]);
    free(d->by.v);
    for (size_t i = 0; i < d->nwhere; i++) {
        free(d->where[i].field);
        free(d->where[i].value);
    }
    free(d->where);
    memset(d, 0, sizeof(*d));
}

static char *xstrdup(const char *s)
{
    char *c = strdup(s ? s : "");
    if (!c)
        lsf_die("out of memory");
    return c;
}

static int check_applies(const lsf_node *map, int type, lsf_errbuf *err)
{
    for (const lsf_node *c = map ? map->child : NULL; c; c = c->next)
        for (size_t i = 0; i < sizeof(applies) / sizeof(applies[0]); i++)
            if (strcmp(applies[i].key, c->key) == 0 && !(applies[i].types & (1u << type))) {
                lsf_node at = *c;
                at.line = c->key_line;
                at.col = c->key_col;
                return lsf_node_error(err, &at, "'%s' does not apply to a %s detector", c->key,
                                      lsf_anom_type_name(type));
            }
    return 0;
}

/* Moves a bound det_conf into a definition; 0 or -1 with err at `at`. */
static int build_def(lsf_anom_def *d, det_conf *c, const lsf_node *at, lsf_errbuf *err)
{
    memset(d, 0, sizeof(*d));
    d->name = c->name;
    c->name = NULL;
    d->type = c->type;
    d->by = c->by;
    c->by = (lsf_strlist){NULL, 0};
    if (d->by.n > LSF_ANOM_MAX_BY)
        return lsf_node_error(err, lsf_node_get(at, "by"), "by: at most %d fields",
                              LSF_ANOM_MAX_BY);
    if (c->field)
        d->field = c->field;
    else if (d->type == LSF_ANOM_RARE_TEMPLATE)
        d->field = xstrdup("message");
    else if (d->type != LSF_ANOM_RATE)
        return lsf_node_error(err, at, "a %s detector needs 'field'", lsf_anom_type_name(d->type));
    c->field = NULL;
    if (c->where) {
        if (c->where->kind != LSF_NODE_MAP)
            return lsf_node_error(err, c->where, "where: expected a map of field: value");
        d->where = calloc(c->where->nchild ? c->where->nchild : 1, sizeof(lsf_anom_where));
        if (!d->where)
            lsf_die("out of memory");
        for (const lsf_node *w = c->where->child; w; w = w->next) {
            if (w->kind != LSF_NODE_SCALAR)
                return lsf_node_error(err, w, "where: '%s' must be a single value", w->key);
            d->where[d->nwhere].field = xstrdup(w->key);
            d->where[d->nwhere].value = xstrdup(w->str);
            d->nwhere++;
        }
    }
    d->interval_ns = c->interval_ms * 1000000LL;
    d->lateness_ns = c->lateness_ms * 1000000LL;
    d->learning_ns = c->learning_ms * 1000000LL;
    d->agg = c->agg;
    if (d->type == LSF_ANOM_RATE && d->interval_ns == 0)
        return lsf_node_error(err, lsf_node_get(at, "interval"),
                              "interval: a rate needs an interval longer than 0");
    int64_t open = d->interval_ns ? 1 + (d->lateness_ns + d->interval_ns - 1) / d->interval_ns : 1;
    if (open > LSF_ANOM_RATE_OPEN)
        return lsf_node_error(err, lsf_node_get(at, "lateness"),
                              "lateness: at most %d intervals (here %" PRId64 ")",
                              LSF_ANOM_RATE_OPEN - 1, open - 1);
    d->rate_open = (uint32_t)open;
    d->max_values = (uint32_t)c->max_values;
    d->max_keys = (uint64_t)c->max_keys;
    d->max_memory = (uint64_t)c->max_memory;
    d->sketch_width = (uint32_t)c->sketch_width;
    lsf_model_conf *m = &d->model;
    lsf_model_conf_default(m);
    m->window = (uint32_t)c->window;
    m->embed_len = (uint32_t)c->shape_length;
    m->embed_dims = (uint32_t)c->shape_dims;
    m->history = (uint32_t)c->history;
    if (c->calibration % LSF_TAIL_BLOCKS)
        return lsf_node_error(err, lsf_node_get(at, "calibration"),
                              "calibration: must be a multiple of %d", LSF_TAIL_BLOCKS);
    m->tail_block = (uint32_t)(c->calibration / LSF_TAIL_BLOCKS);
    m->cooldown = (uint32_t)c->cooldown;
    m->learn = c->learn > UINT32_MAX ? UINT32_MAX : (uint32_t)c->learn;
    m->season = c->season == 1 ? LSF_SEASON_DAILY : c->season == 2 ? LSF_SEASON_WEEKLY : 0;
    char msg[200];
    if ((d->type == LSF_ANOM_RATE || d->type == LSF_ANOM_NUMERIC) &&
        lsf_model_conf_check(m, msg, sizeof(msg)) < 0)
        return lsf_node_error(err, at, "%s", msg);
    return 0;
}

static void det_counters(lsf_anom_det *d, const char *stage)
{
    char prefix[96];
    snprintf(prefix, sizeof(prefix), "%s.%s", stage, d->def.name);
    d->c_scored = lsf_counter_new(prefix, "scored");
    d->c_alerts = lsf_counter_new(prefix, "alerts");
    d->c_keys = lsf_counter_new(prefix, "new_keys");
    d->c_evicted = lsf_counter_new(prefix, "evicted");
    d->c_skipped = lsf_counter_new(prefix, "missing_fields");
    d->c_bad_value = lsf_counter_new(prefix, "bad_values");
    d->c_late = lsf_counter_new(prefix, "late");
    d->c_quiet = lsf_counter_new(prefix, "quiet_alerts");
    d->c_bytes = lsf_counter_new(prefix, "snapshot_bytes");
}

static void det_start(lsf_anom_det *d, uint32_t nshards, const char *stage)
{
    if (d->def.type == LSF_ANOM_RARE_TEMPLATE) {
        lsf_miner_opts o;
        lsf_miner_opts_default(&o);
        d->miner = lsf_miner_new(&o);
    }
    if (d->def.field)
        d->field_id = lsf_field_intern(d->def.field, strlen(d->def.field));
    d->refs = calloc(d->def.by.n + d->def.nwhere + 1, sizeof(lsf_fieldref));
    if (!d->refs)
        lsf_die("out of memory");
    for (size_t i = 0; i < d->def.by.n; i++)
        d->refs[i] = lsf_fieldref_make(d->def.by.v[i]);
    for (size_t i = 0; i < d->def.nwhere; i++)
        d->refs[d->def.by.n + i] = lsf_fieldref_make(d->def.where[i].field);
    if (d->def.field)
        d->refs[d->def.by.n + d->def.nwhere] = lsf_fieldref_make(d->def.field);
    lsf_anom_shards_init(d, nshards);
    det_counters(d, stage);
}

static bool same_by(const lsf_strlist *x, const lsf_strlist *y)
{
    if (x->n != y->n)
        return false;
    for (size_t i = 0; i < x->n; i++)
        if (strcmp(x->v[i], y->v[i]) != 0)
            return false;
    return true;
}

int lsf_anom_parse(lsf_anom *a, const lsf_node *list, uint32_t nshards, const char *stage_name,
                   lsf_errbuf *err)
{
    a->nshards = nshards ? nshards : 1;
    if (!list || list->kind != LSF_NODE_SEQ || list->nchild == 0)
        return lsf_node_error(err, list, "detectors: expected a list of detectors "
                                         "(see docs/anomaly.md)");
    a->det = calloc(list->nchild, sizeof(lsf_anom_det));
    if (!a->det)
        lsf_die("out of memory");
    for (const lsf_node *n = list->child; n; n = n->next) {
        det_conf c;
        memset(&c, 0, sizeof(c));
        int rc = lsf_conf_bind(&c, lsf_anom_det_keys, n, NULL, err);
        if (rc == 0)
            rc = check_applies(n, c.type, err);
        lsf_anom_det *d = &a->det[a->ndet];
        if (rc == 0) {
            a->ndet++;
            rc = build_def(&d->def, &c, n, err);
        }
        lsf_conf_free(&c, lsf_anom_det_keys);
        if (rc < 0)
            return -1;
        for (size_t i = 0; i + 1 < a->ndet; i++)
            if (strcmp(a->det[i].def.name, d->def.name) == 0)
                return lsf_node_error(err, lsf_node_get(n, "name"),
                                      "name: another detector is already called '%s'",
                                      d->def.name);
    }
    for (size_t i = 0; i < a->ndet; i++) {
        det_start(&a->det[i], a->nshards, stage_name);
        lsf_anom_det *leader = NULL;
        for (size_t j = 0; j < i; j++)
            if (same_by(&a->det[i].def.by, &a->det[j].def.by)) {
                leader = &a->det[j];
                break;
            }
        lsf_anom_group_join(&a->det[i], leader);
    }
    return 0;
}

int lsf_anom_default(lsf_anom *a, int type, const char *name, lsf_errbuf *err)
{
    char yaml[256];
    snprintf(yaml, sizeof(yaml), "[{name: \"%s\", type: %s%s}]", name, lsf_anom_type_name(type),
             type == LSF_ANOM_RATE ? "" : type == LSF_ANOM_RARE_TEMPLATE ? ", field: message"
                                                                         : ", field: value");
    lsf_node *root = lsf_yaml_load_string("<defaults>", yaml, err);
    if (!root)
        return -1;
    int rc = lsf_anom_parse(a, root, 1, name, err);
    lsf_node_free(root);
    return rc;
}

void lsf_anom_free(lsf_anom *a)
{
    for (size_t i = 0; i < a->ndet; i++)
        lsf_anom_shards_free(&a->det[i]); /* frees the records with their last parts */
    for (size_t i = 0; i < a->ndet; i++) {
        lsf_anom_group_free(&a->det[i]);
        free(a->det[i].refs);
        lsf_miner_free(a->det[i].miner);
        def_free(&a->det[i].def);
    }
    free(a->det);
    a->det = NULL;
    a->ndet = 0;
}

lsf_anom_det *lsf_anom_find(lsf_anom *a, const char *name)
{
    for (size_t i = 0; i < a->ndet; i++)
        if (strcmp(a->det[i].def.name, name) == 0)
            return &a->det[i];
    return NULL;
}

int lsf_anom_key(const lsf_anom_det *d, const lsf_event *ev, char *buf, size_t cap,
                 uint64_t *hash)
{
    uint64_t h = KEY_SEED;
    size_t o = 0;
    for (size_t i = 0; i < d->def.by.n; i++) {
        char scratch[32];
        lsf_str v;
        if (!lsf_fieldref_get(ev, &d->refs[i], scratch, &v))
            return -1;
        if (i && o < cap)
            buf[o] = 0x1f;
        o += i > 0;
        if (o < cap)
            memcpy(buf + o, v.ptr, v.len <= cap - o ? v.len : cap - o);
        o += v.len;
        h = lsf_hash64(v.ptr, v.len, h + i);
    }
    *hash = lsf_mix64(h);
    return (int)(o < INT32_MAX ? o : INT32_MAX);
}

uint32_t lsf_anom_shard_of(const lsf_anom *a, uint64_t hash)
{
    return (uint32_t)((hash >> 32) % a->nshards);
}
