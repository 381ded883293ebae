/* score.c - the `anomaly` transform: scores events with the configured
 * detectors and writes anomaly.score and its reasons onto them.
 *
 * The one design choice to know: a batch goes through two phases.
 *  1. On the batch's worker, in parallel with other batches: each event is
 *     matched against each detector's `where`; per key group (detectors with
 *     the same by-fields) its key, key hash and shard are extracted once, and
 *     each detector's number or value with them (one observation), and
 *     rare_template lines are mined (template.c has its own lock).
 *  2. Per shard, in batch submission order (ticket k: a mutex, a condition
 *     variable and the next sequence number): the key's record is found or
 *     created, each detector's part updated, and the result written onto the
 *     event. Shard 0 also
 *     advances the event-time watermark, and each shard sweeps its silent
 *     rate keys when the watermark crosses an interval.
 * So every key has one owner at a time and sees its events in input order,
 * whatever the number of workers, and a replay scores as live ingestion did.
 * While batch n works on shard 5, batch n + 1 can already work on shard 0.
 *
 * Hand-off to detections: an event whose score reaches `cutoff` gets
 * anomaly.alert: true (and is counted); the detections stage turns scores
 * into alerts (its `score` detections read anomaly.score). An event scored
 * by several detectors carries the fields of the highest score, and
 * anomaly.detectors lists them all.
 *
 * Threads: init/destroy on the main thread; process on any worker, with its
 * own scratch (indexed by worker); snapshots are written by whichever worker
 * finds one due (one at a time) and at shutdown.
 */
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "anomaly/anomaly.h"
#include "anomaly/hash.h"
#include "core/log.h"
#include "core/pipeline.h"
#include "core/stage.h"
#include "rules/rules_int.h"

typedef struct anom_conf {
    const lsf_node *detectors;
    char *cutoff, *annotate;
    int64_t shards;
    char *snapshot;
    int64_t snapshot_interval_ms;
    int64_t max_future_ms;
} anom_conf;

/* One (event, key group) observation extracted in phase 1: the key once for
 * every detector of the group that takes the event, and each one's input. */
typedef struct obs {
    uint32_t ev, grp, shard;
    uint32_t key_off, key_len; /* key text in the worker's key buffer */
    uint32_t in_off, nin;      /* its inputs: wscratch.in[in_off .. in_off + nin) */
    uint64_t hash;
    int64_t t;
} obs;

/* What one detector takes from the event. */
typedef struct input {
    uint32_t det;
    uint32_t val_off, val_len; /* new_value: the value text in the worker's key buffer */
    uint32_t tslot;            /* rare_template: the template's slot */
    uint64_t vhash;            /* the value's hash, or the template id */
    double x;                  /* numeric: the number */
} input;

/* Detectors that share a key (keys.c): one observation per event for all. */
typedef struct key_group {
    lsf_anom_group *grp;
    uint32_t ndet;
    uint32_t det[LSF_ANOM_MAX_GROUP]; /* in configuration order */
} key_group;

typedef struct wscratch {
    obs *o;
    uint32_t *order;     /* observation indices grouped by shard, batch order kept */
    size_t n, cap;
    input *in;
    size_t nin, incap;
    uint32_t *shard_off; /* nshards + 1 */
    char *buf;
    size_t blen, bcap;
    double *best;        /* per event: the score whose fields it carries */
    uint64_t *hits;      /* per event: detectors (first 64) that reached `annotate` */
    size_t best_cap;
    lsf_miner_memo **memo; /* per detector: rare_template's lines this worker mined */
    uint16_t *at;          /* per detector: where its field was in this worker's last event */
} wscratch;

typedef struct anom_ctx {
    lsf_anom a;
    bool parsed;
    key_group *groups;
    uint32_t ngroups;
    wscratch *w;
    int nworkers;
    char *snap_path;
    int64_t snap_interval_ns;
    _Atomic int64_t next_snap_ns;
    atomic_flag snapping;
    lsf_counter *c_events, *c_annotated, *c_alerts, *c_snapshots, *c_snapshot_errors;
} anom_ctx;

static const lsf_key anom_keys[] = {
    {"detectors", LSF_K_NODE, NULL,
     "The detectors: a list of {name, type: rate|numeric|new_value|rare_template, by, field, "
     "...}; see docs/anomaly.md.",
     offsetof(anom_conf, detectors), NULL, 0, 0, true},
    {"cutoff", LSF_K_STR, "0.995",
     "Score (0..1) at which an event gets anomaly.alert: true and counts as an alert.",
     offsetof(anom_conf, cutoff), NULL, 0, 0, false},
    {"annotate", LSF_K_STR, "0.99",
     "Score (0..1) from which anomaly.* fields are written (0: every scored event).",
     offsetof(anom_conf, annotate), NULL, 0, 0, false},
    {"shards", LSF_K_INT, "32", "Key shards (each with its own lock and memory share).",
     offsetof(anom_conf, shards), NULL, 1, 4096, false},
    {"snapshot", LSF_K_STR, "anomaly.snapshot",
     "State file, relative to state_dir; restored at start, written periodically and at stop "
     "(\"\": no snapshots).",
     offsetof(anom_conf, snapshot), NULL, 0, 0, false},
    {"snapshot_interval", LSF_K_DURATION, "5m", "How often the state file is rewritten.",
     offsetof(anom_conf, snapshot_interval_ms), NULL, 1000, 30LL * 86400 * 1000, false},
    {"max_future", LSF_K_DURATION, "10m",
     "An event time further ahead of its arrival is not believed (arrival time is used).",
     offsetof(anom_conf, max_future_ms), NULL, 0, 0, false},
    LSF_KEYS_END,
};

static void *xrealloc(void *p, size_t n)
{
    void *q = realloc(p, n ? n : 1);
    if (!q)
        lsf_die("out of memory (anomaly stage)");
    return q;
}

static int64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

/* A score setting (0..1) of the stage; an error at its position otherwise. */
static int parse_score(const lsf_stage *st, const char *key, const char *s, double *out,
                       lsf_errbuf *err)
{
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || end == s || *end || !(v >= 0 && v <= 1))
        return lsf_node_error(err, lsf_node_get(st->node, key) ? lsf_node_get(st->node, key)
                                                                : st->node,
                              "%s: expected a score between 0 and 1, got '%s'", key, s);
    *out = v;
    return 0;
}

/* ---- phase 1: extraction ------------------------------------------------------ */

static uint32_t buf_put(wscratch *w, const char *p, size_t n)
{
    if (w->blen + n > w->bcap) {
        w->bcap = (w->blen + n) * 2 + 4096;
        w->buf = xrealloc(w->buf, w->bcap);
    }
    memcpy(w->buf + w->blen, p, n);
    uint32_t off = (uint32_t)w->blen;
    w->blen += n;
    return off;
}

/* The detector's `field`, resolved at start. */
static const lsf_fieldref *field_ref(const lsf_anom_det *d)
{
    return &d->refs[d->def.by.n + d->def.nwhere];
}

static bool where_holds(const lsf_anom_det *d, const lsf_event *ev)
{
    for (size_t i = 0; i < d->def.nwhere; i++) {
        char scratch[32];
        lsf_str v;
        if (!lsf_fieldref_get(ev, &d->refs[d->def.by.n + i], scratch, &v) ||
            !lsf_str_eq_cstr(v, d->def.where[i].value))
            return false;
    }
    return true;
}

/* The numeric value of d's field; false when absent, *bad when not a number.
 * at: where the field was in the worker's last event (lsf_event_find_at). */
static bool number_of(const lsf_anom_det *d, const lsf_event *ev, uint16_t *at, double *x,
                      bool *bad)
{
    const lsf_fieldref *ref = field_ref(d);
    const lsf_field *f = lsf_event_find_at(ev, ref->name, at);
    *bad = false;
    if (f && f->type == LSF_T_INT) {
        *x = (double)f->v.i;
        return true;
    }
    if (f && f->type == LSF_T_FLOAT) {
        *x = f->v.f;
        *bad = !isfinite(*x);
        return !*bad;
    }
    char scratch[32], tmp[64];
    lsf_str v;
    if (!lsf_fieldref_get_at(ev, ref, scratch, &v, at))
        return false;
    if (v.len == 0 || v.len >= sizeof(tmp)) {
        *bad = true;
        return false;
    }
    memcpy(tmp, v.ptr, v.len);
    tmp[v.len] = 0;
    char *end;
    *x = strtod(tmp, &end);
    if (*end || !isfinite(*x)) {
        *bad = true;
        return false;
    }
    return true;
}

static int64_t event_time(const lsf_anom *a, const lsf_event *ev)
{
    int64_t t = ev->time_ns;
    if (ev->ingested_ns && (t == 0 || t > ev->ingested_ns + a->max_future_ns))
        t = ev->ingested_ns;
    return t;
}

/* Detector d's input from the event; false when the event lacks it
 * (counted). rare_template lines are mined here. */
static bool input_of(lsf_anom_det *d, wscratch *w, const lsf_event *ev, input *in)
{
    in->val_off = in->val_len = in->tslot = 0;
    in->vhash = 0;
    in->x = 0;
    if (d->def.type == LSF_ANOM_NUMERIC) {
        bool bad = false;
        if (!number_of(d, ev, &w->at[in->det], &in->x, &bad)) {
            lsf_counter_add(bad ? d->c_bad_value : d->c_skipped, 1);
            return false;
        }
    } else if (d->def.type != LSF_ANOM_RATE) {
        char scratch[32];
        lsf_str v;
        if (!lsf_fieldref_get_at(ev, field_ref(d), scratch, &v, &w->at[in->det])) {
            lsf_counter_add(d->c_skipped, 1);
            return false;
        }
        if (d->def.type == LSF_ANOM_NEW_VALUE) {
            in->vhash = lsf_hash64(v.ptr, v.len, 0x76616c7565ULL);
            in->val_len = v.len < LSF_ANOM_MAX_KEY ? (uint32_t)v.len : LSF_ANOM_MAX_KEY;
            in->val_off = buf_put(w, v.ptr, in->val_len);
        } else {
            lsf_template_match tm;
            lsf_miner_memo_add(w->memo[in->det], v.ptr, v.len, &tm);
            in->vhash = tm.id;
            in->tslot = tm.slot;
        }
    }
    return true;
}

/* The key of group g for the event, written straight into the worker's key
 * buffer; false when a by-field is missing. */
static bool key_into(anom_ctx *x, wscratch *w, const key_group *g, const lsf_event *ev, obs *o)
{
    if (w->blen + LSF_ANOM_MAX_KEY > w->bcap) {
        w->bcap = (w->blen + LSF_ANOM_MAX_KEY) * 2 + 4096;
        w->buf = xrealloc(w->buf, w->bcap);
    }
    int klen = lsf_anom_key(&x->a.det[g->det[0]], ev, w->buf + w->blen, LSF_ANOM_MAX_KEY,
                            &o->hash);
    if (klen < 0)
        return false;
    o->key_off = (uint32_t)w->blen;
    o->key_len = klen < LSF_ANOM_MAX_KEY ? (uint32_t)klen : LSF_ANOM_MAX_KEY;
    w->blen += o->key_len;
    o->shard = lsf_anom_shard_of(&x->a, o->hash);
    return true;
}

/* Event i's observations: one per key group that has a detector taking it. */
static void extract(anom_ctx *x, wscratch *w, lsf_batch *b, uint32_t i)
{
    lsf_anom *a = &x->a;
    const lsf_event *ev = &b->events[i];
    int64_t t = event_time(a, ev);
    for (uint32_t gi = 0; gi < x->ngroups; gi++) {
        const key_group *g = &x->groups[gi];
        obs o = {.ev = i, .grp = gi, .in_off = (uint32_t)w->nin, .t = t};
        int keyed = 0; /* 1: key built, -1: a by-field is missing */
        for (uint32_t j = 0; j < g->ndet; j++) {
            lsf_anom_det *d = &a->det[g->det[j]];
            if (d->def.nwhere && !where_holds(d, ev))
                continue;
            if (!keyed)
                keyed = key_into(x, w, g, ev, &o) ? 1 : -1;
            if (keyed < 0) {
                lsf_counter_add(d->c_skipped, 1);
                continue;
            }
            if (w->nin == w->incap) {
                w->incap = w->incap ? w->incap * 2 : 1024;
                w->in = xrealloc(w->in, w->incap * sizeof(input));
            }
            input *in = &w->in[w->nin];
            in->det = g->det[j];
            if (input_of(d, w, ev, in)) {
                w->nin++;
                o.nin++;
            }
        }
        if (!o.nin)
            continue;
        if (w->n == w->cap) {
            w->cap = w->cap ? w->cap * 2 : 1024;
            w->o = xrealloc(w->o, w->cap * sizeof(obs));
            w->order = xrealloc(w->order, w->cap * sizeof(uint32_t));
        }
        w->o[w->n++] = o;
    }
}

/* Orders the observations by shard (stable: events stay in batch order). */
static void group_by_shard(const lsf_anom *a, wscratch *w)
{
    uint32_t ns = a->nshards;
    memset(w->shard_off, 0, (ns + 1) * sizeof(uint32_t));
    for (size_t i = 0; i < w->n; i++)
        w->shard_off[w->o[i].shard + 1]++;
    for (uint32_t k = 0; k < ns; k++)
        w->shard_off[k + 1] += w->shard_off[k];
    uint32_t *fill = w->shard_off; /* advanced while filling, restored below */
    for (size_t i = 0; i < w->n; i++)
        w->order[fill[w->o[i].shard]++] = (uint32_t)i;
    for (uint32_t k = ns; k > 0; k--)
        w->shard_off[k] = w->shard_off[k - 1];
    w->shard_off[0] = 0;
}

/* ---- results onto events ---------------------------------------------------------- */

static lsf_str arena_str(lsf_batch *b, const char *s, size_t n)
{
    return lsf_str_make(lsf_arena_memdup(&b->arena, s, n), n);
}

static lsf_str key_text(lsf_batch *b, const char *key, uint32_t len)
{
    char *c = lsf_arena_memdup(&b->arena, key, len);
    for (uint32_t i = 0; i < len; i++)
        if (c[i] == 0x1f)
            c[i] = '|';
    return lsf_str_make(c, len);
}

static void grow_best(wscratch *w, uint32_t n)
{
    if (n > w->best_cap) {
        size_t old = w->best_cap;
        w->best_cap = n * 2;
        w->best = xrealloc(w->best, w->best_cap * sizeof(double));
        w->hits = xrealloc(w->hits, w->best_cap * sizeof(uint64_t));
        for (size_t i = old; i < w->best_cap; i++) {
            w->best[i] = -1;
            w->hits[i] = 0;
        }
    }
}

/* Events several detectors scored list them all in anomaly.detectors. */
static void list_detectors(anom_ctx *x, wscratch *w, lsf_batch *b)
{
    for (uint32_t i = 0; i < b->n; i++) {
        uint64_t h = w->hits[i];
        if (!h || !(h & (h - 1)))
            continue;
        char buf[1024];
        size_t o = 0;
        buf[o++] = '[';
        for (uint32_t d = 0; d < x->a.ndet && d < 64; d++) {
            if (!(h >> d & 1))
                continue;
            const char *name = x->a.det[d].def.name;
            size_t n = strlen(name);
            if (o + n + 4 >= sizeof(buf))
                break;
            if (o > 1)
                buf[o++] = ',';
            buf[o++] = '"';
            for (size_t k = 0; k < n; k++) /* names are plain: drop what JSON would escape */
                if (name[k] != '"' && name[k] != '\\' && (unsigned char)name[k] >= 0x20)
                    buf[o++] = name[k];
            buf[o++] = '"';
        }
        buf[o++] = ']';
        lsf_field *f = lsf_event_set(b, &b->events[i], LSF_STR_LIT("anomaly.detectors"), 0);
        f->type = LSF_T_JSON;
        f->v.s = arena_str(b, buf, o);
        w->hits[i] = 0;
    }
}

/* Writes res onto event i unless it already carries a higher score. */
static void annotate(anom_ctx *x, wscratch *w, lsf_batch *b, uint32_t i, lsf_anom_det *d,
                     const lsf_anom_entry *e, lsf_anom_result *res)
{
    const char *key = e->rec->key;
    uint32_t key_len = e->rec->key_len;
    if (res->score < x->a.annotate || (x->a.annotate == 0 && res->reason == LSF_REASON_NONE))
        return;
    bool alert = res->score >= x->a.cutoff;
    lsf_counter_add(d->c_scored, 1);
    if (alert)
        lsf_counter_add(d->c_alerts, 1);
    grow_best(w, b->n);
    if ((size_t)(d - x->a.det) < 64)
        w->hits[i] |= 1ULL << (d - x->a.det);
    if (res->score <= w->best[i] && w->best[i] >= 0)
        return;
    if (w->best[i] < 0)
        lsf_counter_add(x->c_annotated, 1);
    if (alert && !(w->best[i] >= x->a.cutoff))
        lsf_counter_add(x->c_alerts, 1);
    w->best[i] = res->score;
    lsf_anom_explain(d, e, res);
    lsf_event *ev = &b->events[i];
    const char *dn = d->def.name, *tn = lsf_anom_type_name(d->def.type),
               *rn = lsf_anom_reason_name(res->reason);
    lsf_event_set_float(b, ev, LSF_STR_LIT("anomaly.score"), res->score);
    lsf_event_set_str(b, ev, LSF_STR_LIT("anomaly.detector"), arena_str(b, dn, strlen(dn)));
    lsf_event_set_str(b, ev, LSF_STR_LIT("anomaly.type"), arena_str(b, tn, strlen(tn)));
    lsf_event_set_str(b, ev, LSF_STR_LIT("anomaly.reason"), arena_str(b, rn, strlen(rn)));
    lsf_event_set_str(b, ev, LSF_STR_LIT("anomaly.key"), key_text(b, key, key_len));
    if (res->numeric) {
        lsf_event_set_float(b, ev, LSF_STR_LIT("anomaly.expected"), res->expected);
        lsf_event_set_float(b, ev, LSF_STR_LIT("anomaly.observed"), res->observed);
        if (isfinite(res->deviation))
            lsf_event_set_float(b, ev, LSF_STR_LIT("anomaly.deviation"), res->deviation);
    } else {
        lsf_event_set_str(b, ev, LSF_STR_LIT("anomaly.observed"),
                          arena_str(b, res->observed_str.ptr, res->observed_str.len));
    }
    if (res->expected_str[0])
        lsf_event_set_str(b, ev, res->numeric ? LSF_STR_LIT("anomaly.usual")
                                              : LSF_STR_LIT("anomaly.expected"),
                          arena_str(b, res->expected_str, strlen(res->expected_str)));
    if (d->def.type == LSF_ANOM_RARE_TEMPLATE) {
        char text[1024];
        int n = snprintf(text, sizeof(text), "%016" PRIx64, res->template_id);
        lsf_event_set_str(b, ev, LSF_STR_LIT("anomaly.template.id"), arena_str(b, text, (size_t)n));
        n = lsf_miner_text(d->miner, res->template_slot, res->template_id, text, sizeof(text));
        if (n >= 0)
            lsf_event_set_str(b, ev, LSF_STR_LIT("anomaly.template.text"),
                              arena_str(b, text, (size_t)n));
    }
    lsf_event_set_bool(b, ev, LSF_STR_LIT("anomaly.alert"), alert);
}

/* An interval closed by the sweep (its key fell silent) scored: an event of
 * its own says so, carrying the key's fields. */
static void interval_event(anom_ctx *x, wscratch *w, lsf_batch *b, lsf_anom_det *d,
                           const lsf_anom_entry *e, lsf_anom_result *res)
{
    if (res->score < x->a.annotate)
        return;
    lsf_event *ev = lsf_batch_push_extra(b);
    uint32_t i = b->n - 1;
    ev->time_ns = res->at_ns;
    ev->ingested_ns = now_ns();
    char msg[LSF_ANOM_MAX_KEY + 256];
    int64_t secs = d->def.interval_ns / 1000000000LL;
    const char *key = e->rec->key;
    int key_len = (int)e->rec->key_len;
    int n = res->reason == LSF_REASON_QUIET
                ? snprintf(msg, sizeof(msg), "%s: no events for %.*s in %" PRId64
                           "s, about %.6g expected", d->def.name, key_len, key, secs,
                           res->expected)
                : snprintf(msg, sizeof(msg), "%s: %.*s was %.6g over %" PRId64
                           "s, about %.6g expected", d->def.name, key_len, key,
                           res->observed, secs, res->expected);
    if (n >= (int)sizeof(msg))
        n = (int)sizeof(msg) - 1;
    for (int k = 0; k < n; k++)
        if (msg[k] == 0x1f)
            msg[k] = '|';
    ev->message = arena_str(b, msg, (size_t)n);
    /* the key's fields, so the event groups with the source's own */
    const char *p = key, *end = key + key_len;
    for (size_t f = 0; f < d->def.by.n && p <= end; f++) {
        const char *q = memchr(p, 0x1f, (size_t)(end - p));
        size_t len = q ? (size_t)(q - p) : (size_t)(end - p);
        lsf_str v = arena_str(b, p, len);
        const char *name = d->def.by.v[f];
        if (strcmp(name, "host.name") == 0 || strcmp(name, "log.syslog.hostname") == 0)
            ev->host = v;
        else if (strcmp(name, "process.name") == 0 || strcmp(name, "log.syslog.appname") == 0)
            ev->app = v;
        else if (strcmp(name, "message") != 0)
            lsf_event_set_str(b, ev, arena_str(b, name, strlen(name)), v);
        p += len + 1;
    }
    if (res->reason == LSF_REASON_QUIET)
        lsf_counter_add(d->c_quiet, 1);
    grow_best(w, b->n);
    w->best[i] = -1;
    w->hits[i] = 0;
    annotate(x, w, b, i, d, e, res);
}

/* ---- phase 2: state, per shard in batch order -------------------------------------- */

#define PIPE 3 /* shards between a table-slot prefetch and the updates (anom_process) */

static void prefetch_slot(anom_ctx *x, wscratch *w, const obs *o)
{
    const lsf_anom_keytab *t = &x->groups[o->grp].grp->shard[o->shard];
    __builtin_prefetch(&t->slot[o->hash & (t->nslots - 1)]);
    for (uint32_t j = 0; j < o->nin; j++) {
        const input *in = &w->in[o->in_off + j];
        const lsf_anom_det *d = &x->a.det[in->det];
        if (d->def.type == LSF_ANOM_RARE_TEMPLATE) /* the (source, template) counters */
            lsf_cms_prefetch(&d->shard[o->shard].cms, lsf_anom_pair_hash(o->hash, in->vhash));
    }
}

/* Reads the word at p and drops it: its cache line starts loading now. */
static inline void touch(const void *p)
{
    uint32_t v = *(const uint32_t *)p;
    __asm__ volatile("" : : "r"(v)); /* keeps the load */
}

/* The key's record, found from its table slot (asked for a step before, and
 * holding the hash, so no other key's record is read): its header and
 * every part, the lines an update reads (records are 64-byte aligned; the
 * cold tail is not asked for).
 * These lines are loaded, not prefetched: with 100,000 keys most records
 * also miss the TLB, and such prefetches were mostly dropped (the next
 * step then stalled on the record anyway), while loads of different
 * records issued one after another overlap. Measured on anomaly_bench -f:
 * 0.77-0.90 -> 0.71-0.77 us a line (8 alternating runs each). */
static void load_record(anom_ctx *x, const obs *o)
{
    const lsf_anom_group *g = x->groups[o->grp].grp;
    const char *r = (const char *)lsf_anom_group_find(g, o->shard, o->hash);
    if (!r)
        return;
    for (size_t at = 0; at < sizeof(lsf_anom_rec) + g->parts_bytes; at += 64)
        touch(r + at);
}

/* The detector state each update will touch, once the record is in cache:
 * its value or template set, and the LRU neighbours a move to the front
 * will write. */
static void prefetch_state(anom_ctx *x, wscratch *w, const obs *o)
{
    const lsf_anom_rec *r = lsf_anom_group_find(x->groups[o->grp].grp, o->shard, o->hash);
    if (!r)
        return;
    for (uint32_t j = 0; j < o->nin; j++) {
        const input *in = &w->in[o->in_off + j];
        const lsf_anom_det *d = &x->a.det[in->det];
        if (!(r->live >> d->grp_slot & 1))
            continue;
        const lsf_anom_entry *e = lsf_anom_part(d, r);
        const lsf_anom_shard *s = &d->shard[o->shard];
        if (!lsf_anom_lru_recent(s, e)) {
            __builtin_prefetch(e->prev, 1);
            __builtin_prefetch(e->next, 1);
        }
        if (d->def.type == LSF_ANOM_NEW_VALUE)
            lsf_firstseen_prefetch(&e->u.values, in->vhash);
        else if (d->def.type == LSF_ANOM_RARE_TEMPLATE)
            lsf_firstseen_prefetch(&e->u.tpl.seen, in->vhash);
    }
}

/* One detector's update of the key's entry e with its input; true when
 * what the entry holds on the heap may have changed (it is re-accounted). */
static bool update(lsf_anom_det *d, lsf_anom_shard *s, lsf_anom_entry *e, const wscratch *w,
                   const input *in, int64_t t, lsf_anom_result *res)
{
    switch (d->def.type) {
    case LSF_ANOM_RATE:
    case LSF_ANOM_NUMERIC:
        if (d->def.interval_ns == 0)
            lsf_anom_series_value(d, e, in->x, t, res);
        else if (!lsf_anom_series_event(d, e, t, in->x, res)) {
            /* no interval closed: the model, and so the entry's bytes, did
             * not change since the last re-accounting unless a sweep fed it
             * (reading its size costs a miss or two) */
            res->reason = LSF_REASON_NONE;
            if (!e->u.series.swept)
                return false;
        }
        e->u.series.swept = false;
        return true;
    case LSF_ANOM_NEW_VALUE: {
        uint32_t cap = e->u.values.cap; /* the set's size is all it holds on the heap */
        lsf_anom_new_value(d, e, in->vhash, lsf_str_make(w->buf + in->val_off, in->val_len), t,
                           res);
        return e->u.values.cap != cap;
    }
    default: {
        uint32_t cap = e->u.tpl.seen.cap; /* the top-k's size is fixed */
        lsf_template_match tm = {.id = in->vhash, .slot = in->tslot};
        lsf_anom_rare_template(d, s, e, &tm, t, res);
        return e->u.tpl.seen.cap != cap;
    }
    }
}

/* Observation o applied: the key's record found once, then each detector's
 * part updated in configuration order. */
static void apply(anom_ctx *x, wscratch *w, lsf_batch *b, const obs *o)
{
    const char *key = w->buf + o->key_off;
    lsf_anom_rec *r = lsf_anom_group_find(x->groups[o->grp].grp, o->shard, o->hash);
    for (uint32_t j = 0; j < o->nin; j++) {
        const input *in = &w->in[o->in_off + j];
        lsf_anom_det *d = &x->a.det[in->det];
        lsf_anom_shard *s = &d->shard[o->shard];
        bool created;
        /* r stays valid: a detector only evicts its own parts, never the one
         * it is updating, so the record keeps a live part */
        lsf_anom_entry *e = lsf_anom_entry_at(d, s, r, o->hash, key, o->key_len, &created);
        r = e->rec;
        lsf_anom_result res;
        if (update(d, s, e, w, in, o->t, &res))
            lsf_anom_entry_touched(d, s, e);
        if (res.reason != LSF_REASON_NONE)
            annotate(x, w, b, o->ev, d, e, &res);
    }
}

static void sweep(anom_ctx *x, wscratch *w, lsf_batch *b, uint32_t k, int64_t wm)
{
    for (size_t di = 0; di < x->a.ndet; di++) {
        lsf_anom_det *d = &x->a.det[di];
        if ((d->def.type != LSF_ANOM_RATE && d->def.type != LSF_ANOM_NUMERIC) ||
            !d->def.interval_ns)
            continue;
        lsf_anom_shard *s = &d->shard[k];
        if (s->swept_ns && wm - s->swept_ns < d->def.interval_ns)
            continue;
        s->swept_ns = wm;
        for (lsf_anom_entry *e = s->lru.next; e != &s->lru; e = e->next) {
            lsf_anom_result res;
            if (lsf_anom_series_sweep(d, e, wm, &res))
                interval_event(x, w, b, d, e, &res);
        }
    }
}

static void maybe_snapshot(anom_ctx *x)
{
    if (!x->snap_path)
        return;
    int64_t now = now_ns(), due = atomic_load_explicit(&x->next_snap_ns, memory_order_relaxed);
    if (now < due || atomic_flag_test_and_set(&x->snapping))
        return;
    atomic_store(&x->next_snap_ns, now + x->snap_interval_ns);
    lsf_errbuf err = {{0}};
    if (lsf_anom_snapshot_save(&x->a, x->snap_path, &err) < 0) {
        lsf_counter_add(x->c_snapshot_errors, 1);
        lsf_err("%s", err.msg);
    } else
        lsf_counter_add(x->c_snapshots, 1);
    atomic_flag_clear(&x->snapping);
}

static int anom_process(lsf_stage *st, lsf_batch *b, int worker)
{
    anom_ctx *x = st->ctx;
    lsf_anom *a = &x->a;
    wscratch *w = &x->w[worker];
    w->n = 0;
    w->nin = 0;
    w->blen = 0;
    int64_t tmax = INT64_MIN;
    uint32_t nev = b->n;
    for (uint32_t i = 0; i < nev; i++) {
        if (b->events[i].flags & LSF_EV_DROPPED)
            continue;
        int64_t t = event_time(a, &b->events[i]);
        if (t > tmax)
            tmax = t;
        extract(x, w, b, i);
    }
    lsf_counter_add(x->c_events, nev);
    group_by_shard(a, w);
    grow_best(w, b->n);
    for (uint32_t i = 0; i < b->n; i++) {
        w->best[i] = -1;
        w->hits[i] = 0;
    }
    /* Keys are cache misses: a shard's table slots, then its records and entries,
     * then the state in them are asked for a step before they are needed, a
     * step being one shard's updates, so the misses overlap with work. The
     * tickets of the shards in flight are held together, taken and passed on
     * in shard order (hand over hand), so no batch waits for one behind it. */
    int64_t wm = 0;
    uint32_t ns = a->nshards;
    for (uint32_t k = 0; k < ns + PIPE; k++) {
        if (k < ns) {
            lsf_turn_wait(&a->tk[k], b->seq);
            if (k == 0) { /* the watermark after this batch: read only here, under ticket 0 */
                if (tmax > a->watermark_ns)
                    a->watermark_ns = tmax;
                wm = a->watermark_ns;
            }
            for (uint32_t j = w->shard_off[k]; j < w->shard_off[k + 1]; j++)
                prefetch_slot(x, w, &w->o[w->order[j]]);
        }
        if (k >= 1 && k - 1 < ns)
            for (uint32_t j = w->shard_off[k - 1]; j < w->shard_off[k]; j++)
                load_record(x, &w->o[w->order[j]]);
        if (k >= 2 && k - 2 < ns)
            for (uint32_t j = w->shard_off[k - 2]; j < w->shard_off[k - 1]; j++)
                prefetch_state(x, w, &w->o[w->order[j]]);
        if (k >= PIPE) {
            uint32_t a_k = k - PIPE;
            for (uint32_t j = w->shard_off[a_k]; j < w->shard_off[a_k + 1]; j++)
                apply(x, w, b, &w->o[w->order[j]]);
            if (wm)
                sweep(x, w, b, a_k, wm);
            lsf_turn_done(&a->tk[a_k]);
        }
    }
    if (a->ndet > 1)
        list_detectors(x, w, b);
    maybe_snapshot(x);
    return LSF_OK;
}

/* ---- init / destroy --------------------------------------------------------------- */

/* The key groups of the detector set, each listing its detectors. */
static void build_groups(anom_ctx *x)
{
    const lsf_anom *a = &x->a;
    x->groups = calloc(a->ndet ? a->ndet : 1, sizeof(key_group));
    if (!x->groups)
        lsf_die("out of memory");
    for (uint32_t i = 0; i < a->ndet; i++) {
        uint32_t gi = 0;
        while (gi < x->ngroups && x->groups[gi].grp != a->det[i].grp)
            gi++;
        if (gi == x->ngroups)
            x->groups[x->ngroups++].grp = a->det[i].grp;
        x->groups[gi].det[x->groups[gi].ndet++] = i; /* at most LSF_ANOM_MAX_GROUP (keys.c) */
    }
}

static int anom_init(lsf_stage *st, lsf_errbuf *err)
{
    anom_ctx *x = st->ctx;
    anom_conf *c = st->conf;
    lsf_anom *a = &x->a;
    a->name = st->name;
    if (parse_score(st, "cutoff", c->cutoff, &a->cutoff, err) < 0 ||
        parse_score(st, "annotate", c->annotate, &a->annotate, err) < 0)
        return -1;
    if (a->annotate > a->cutoff)
        return lsf_node_error(err, lsf_node_get(st->node, "annotate"),
                              "annotate: %g is above cutoff %g; alerts would carry no fields",
                              a->annotate, a->cutoff);
    a->max_future_ns = c->max_future_ms * 1000000LL;
    x->parsed = true;
    if (lsf_anom_parse(a, c->detectors, (uint32_t)c->shards, st->name, err) < 0)
        return -1;
    build_groups(x);
    a->tk = calloc(a->nshards, sizeof(lsf_anom_ticket));
    if (!a->tk)
        lsf_die("out of memory");
    for (uint32_t k = 0; k < a->nshards; k++) {
        lsf_turn_init(&a->tk[k]);
    }
    x->nworkers = lsf_pipeline_nworkers(st->pipeline);
    if (x->nworkers < 1)
        x->nworkers = 1;
    x->w = calloc((size_t)x->nworkers, sizeof(wscratch));
    if (!x->w)
        lsf_die("out of memory");
    for (int i = 0; i < x->nworkers; i++) {
        wscratch *w = &x->w[i];
        w->shard_off = xrealloc(NULL, (a->nshards + 1) * sizeof(uint32_t));
        w->memo = calloc(a->ndet ? a->ndet : 1, sizeof(lsf_miner_memo *));
        w->at = calloc(a->ndet ? a->ndet : 1, sizeof(uint16_t));
        if (!w->memo || !w->at)
            lsf_die("out of memory");
        for (uint32_t d = 0; d < a->ndet; d++)
            if (a->det[d].miner)
                w->memo[d] = lsf_miner_memo_new(a->det[d].miner);
    }
    x->c_events = lsf_counter_new(st->name, "events");
    x->c_annotated = lsf_counter_new(st->name, "annotated");
    x->c_alerts = lsf_counter_new(st->name, "alerts");
    x->c_snapshots = lsf_counter_new(st->name, "snapshots");
    x->c_snapshot_errors = lsf_counter_new(st->name, "snapshot_errors");
    atomic_flag_clear(&x->snapping);
    if (c->snapshot && *c->snapshot) {
        const lsf_pipeline_conf *pc = lsf_pipeline_settings(st->pipeline);
        const char *dir = pc && pc->state_dir ? pc->state_dir : ".";
        size_t n = strlen(dir) + strlen(c->snapshot) + 2;
        x->snap_path = xrealloc(NULL, n);
        if (c->snapshot[0] == '/')
            snprintf(x->snap_path, n, "%s", c->snapshot);
        else
            snprintf(x->snap_path, n, "%s/%s", dir, c->snapshot);
        x->snap_interval_ns = c->snapshot_interval_ms * 1000000LL;
        atomic_store(&x->next_snap_ns, now_ns() + x->snap_interval_ns);
        lsf_errbuf serr = {{0}};
        if (lsf_anom_snapshot_load(a, x->snap_path, &serr) < 0) {
            lsf_counter_add(x->c_snapshot_errors, 1);
            lsf_err("%s", serr.msg);
        }
    }
    return 0;
}

static void anom_destroy(lsf_stage *st)
{
    anom_ctx *x = st->ctx;
    if (x->snap_path && x->a.tk) {
        lsf_errbuf err = {{0}};
        if (lsf_anom_snapshot_save(&x->a, x->snap_path, &err) < 0)
            lsf_err("%s", err.msg);
    }
    if (x->a.tk)
        for (uint32_t k = 0; k < x->a.nshards; k++) {
            lsf_turn_deinit(&x->a.tk[k]);
        }
    free(x->a.tk);
    x->a.tk = NULL;
    for (int i = 0; x->w && i < x->nworkers; i++) /* before the detectors go */
        for (uint32_t d = 0; x->w[i].memo && d < x->a.ndet; d++)
            lsf_miner_memo_free(x->w[i].memo[d]);
    if (x->parsed)
        lsf_anom_free(&x->a);
    for (int i = 0; x->w && i < x->nworkers; i++) {
        free(x->w[i].memo);
        free(x->w[i].at);
        free(x->w[i].o);
        free(x->w[i].order);
        free(x->w[i].in);
        free(x->w[i].shard_off);
        free(x->w[i].buf);
        free(x->w[i].best);
        free(x->w[i].hits);
    }
    free(x->w);
    free(x->groups);
    free(x->snap_path);
}

const lsf_stage_def lsf_stage_anomaly = {
    .name = "anomaly",
    .kind = LSF_STAGE_TRANSFORM,
    .help = "Scores events with streaming detectors (rate, numeric, new_value, rare_template).",
    .keys = anom_keys,
    .conf_size = sizeof(anom_conf),
    .ctx_size = sizeof(anom_ctx),
    .init = anom_init,
    .process = anom_process,
    .destroy = anom_destroy,
};
