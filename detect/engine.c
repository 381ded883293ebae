/* engine.c - the detector: runs a set of detections over batches.
 *
 * The one design choice to know: a batch goes through two phases.
 *  1. Matching, on the batch's worker, in parallel with other batches: every
 *     event is tested against the `when` (the rules' compiled conditions) of
 *     each detection its gate lets through (gate.c: one read of rule.id
 *     rules out the detections of other rules), and for each match the group key, its hash and shard, the
 *     distinct value or number are extracted into the worker's scratch.
 *  2. State, per shard of group keys, each shard taking batches strictly in
 *     submission order (a ticket per shard: a mutex, a condition variable
 *     and the next sequence number). Shard 0 also advances the event-time
 *     watermark, event by event. So a key sees its events in input order, and
 *     while batch n updates shard 3, batch n+1 can already update shard 0.
 * The order of events per key and the watermark are then functions of the
 * input alone, which is what makes a replay give the alerts live ingestion
 * gave, whatever the batching and the number of workers.
 *
 * Event time: an event's time is its @timestamp (its arrival time when it
 * has none); a time more than max_future ahead of its arrival is not
 * believed (arrival time is used, counted in .clock_ahead). The watermark is
 * the latest time seen; an event more than `lateness` behind it counts as if
 * it happened `lateness` before the watermark (counted in .late), so a host
 * with a slow clock still counts, and absent steps time out when the
 * watermark passes their deadline.
 *
 * Threads: process on any worker (its own scratch); the ticket of shard k
 * guards shard k of every detection; the set pointer has its own lock.
 */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/turn.h"
#include "anomaly/hash.h"
#include "core/log.h"
#include "detect/detect.h"
#include "rules/rules_int.h"

#define KEY_VALUE_MAX 1024 /* bytes of one group_by value kept in a key */
#define KEY_SEED 0x64657465637421ULL

typedef lsf_turn ticket; /* core/turn.h */

typedef struct dwork {
    lsf_dmatch *m, *sorted;
    size_t nm, capm, cap_sorted;
    uint32_t *shard_off;
    char *keys;
    size_t klen, kcap;
    int64_t *t, *wm;
    uint32_t capt;
    lsf_hll hll;              /* distinct: merge scratch */
    uint64_t *gate_bits;      /* the current event's candidate detections */
    uint32_t cap_gate;
    lsf_alert **alerts;
    size_t nalerts, cap_alerts;
    int64_t wm_end;           /* the watermark after this batch */
    int64_t shift_ns;         /* this batch ends a restore's downtime: shift timers */
} dwork;

struct lsf_detector {
    lsf_detector_opts o;
    pthread_mutex_t set_lock;
    lsf_detset *set;
    ticket *tk;
    ticket emit;              /* rate limits and emission, in batch order */
    /* under tk[0] */
    int64_t wm;
    bool wm_set;
    bool restored;
    int64_t restored_wm;
    _Atomic int64_t wm_pub;   /* the watermark, for snapshots */
    dwork *w;
    lsf_counter *c_late, *c_ahead, *c_no_group, *c_no_value, *c_alerts;
};

static void *xrealloc(void *p, size_t n)
{
    p = realloc(p, n ? n : 1);
    if (!p)
        lsf_die("out of memory (detections)");
    return p;
}

static int64_t wall_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * NS_PER_S + ts.tv_nsec;
}

/* ---- sets ------------------------------------------------------------------ */

lsf_detset *lsf_detset_ref(lsf_detset *s)
{
    atomic_fetch_add_explicit(&s->refs, 1, memory_order_relaxed);
    return s;
}

void lsf_detset_unref(lsf_detset *s)
{
    if (!s || atomic_fetch_sub_explicit(&s->refs, 1, memory_order_acq_rel) != 1)
        return;
    for (uint32_t i = 0; i < s->n; i++)
        lsf_detrun_unref(s->runs[i]);
    lsf_detgate_free(s->gate);
    free(s->runs);
    free(s);
}

/* ---- the detector ----------------------------------------------------------- */

lsf_detector *lsf_detector_new(const lsf_detector_opts *o)
{
    lsf_detector *d = calloc(1, sizeof(*d));
    if (!d)
        lsf_die("out of memory");
    d->o = *o;
    if (d->o.nshards < 1)
        d->o.nshards = 1;
    if (d->o.nworkers < 1)
        d->o.nworkers = 1;
    pthread_mutex_init(&d->set_lock, NULL);
    d->tk = calloc(d->o.nshards, sizeof(ticket));
    d->w = calloc((size_t)d->o.nworkers, sizeof(dwork));
    if (!d->tk || !d->w)
        lsf_die("out of memory");
    for (uint32_t k = 0; k < d->o.nshards; k++) {
        lsf_turn_init(&d->tk[k]);
    }
    lsf_turn_init(&d->emit);
    for (int i = 0; i < d->o.nworkers; i++)
        d->w[i].shard_off = xrealloc(NULL, (d->o.nshards + 1) * sizeof(uint32_t));
    const char *n = o->name ? o->name : "detections";
    d->c_late = lsf_counter_new(n, "late");
    d->c_ahead = lsf_counter_new(n, "clock_ahead");
    d->c_no_group = lsf_counter_new(n, "missing_group_field");
    d->c_no_value = lsf_counter_new(n, "missing_value_field");
    d->c_alerts = lsf_counter_new(n, "alerts");
    atomic_init(&d->wm_pub, 0);
    return d;
}

void lsf_detector_free(lsf_detector *d)
{
    if (!d)
        return;
    lsf_detset_unref(d->set);
    for (uint32_t k = 0; k < d->o.nshards; k++) {
        lsf_turn_deinit(&d->tk[k]);
    }
    lsf_turn_deinit(&d->emit);
    for (int i = 0; i < d->o.nworkers; i++) {
        dwork *w = &d->w[i];
        free(w->m);
        free(w->sorted);
        free(w->shard_off);
        free(w->keys);
        free(w->t);
        free(w->wm);
        free(w->gate_bits);
        lsf_hll_free(&w->hll);
        free(w->alerts);
    }
    free(d->w);
    free(d->tk);
    pthread_mutex_destroy(&d->set_lock);
    free(d);
}

void lsf_detector_set(lsf_detector *d, lsf_detset *set)
{
    if (set && !set->gate)
        set->gate = lsf_detgate_build(set); /* before anyone else can see it */
    pthread_mutex_lock(&d->set_lock);
    lsf_detset *old = d->set;
    d->set = set;
    pthread_mutex_unlock(&d->set_lock);
    lsf_detset_unref(old);
}

lsf_detset *lsf_detector_current(lsf_detector *d)
{
    pthread_mutex_lock(&d->set_lock);
    lsf_detset *s = d->set ? lsf_detset_ref(d->set) : NULL;
    pthread_mutex_unlock(&d->set_lock);
    return s;
}

uint32_t lsf_detector_nshards(const lsf_detector *d)
{
    return d->o.nshards;
}

void lsf_detector_lock_shard(lsf_detector *d, uint32_t k)
{
    pthread_mutex_lock(&d->tk[k].m);
}

void lsf_detector_unlock_shard(lsf_detector *d, uint32_t k)
{
    pthread_mutex_unlock(&d->tk[k].m);
}

int64_t lsf_detector_watermark(lsf_detector *d)
{
    return atomic_load_explicit(&d->wm_pub, memory_order_relaxed);
}

void lsf_detector_restored(lsf_detector *d, int64_t wm_ns)
{
    d->restored = true;
    d->restored_wm = wm_ns;
    d->wm = wm_ns;
    d->wm_set = wm_ns != 0;
    atomic_store_explicit(&d->wm_pub, wm_ns, memory_order_relaxed);
}

/* ---- phase 1: matching -------------------------------------------------------- */

/* One pass over the event's fields: is it an alert, and its anomaly.score. */
static bool scan_event(const lsf_event *ev, double *score)
{
    *score = -1;
    for (uint16_t i = 0; i < ev->nfields; i++) {
        const lsf_field *f = &ev->fields[i];
        if (f->type == LSF_T_STR && lsf_str_eq(f->name, LSF_STR_LIT("event.kind")) &&
            lsf_str_eq_cstr(f->v.s, "alert"))
            return true;
        if ((f->type == LSF_T_FLOAT || f->type == LSF_T_INT) &&
            lsf_str_eq(f->name, LSF_STR_LIT("anomaly.score")))
            *score = f->type == LSF_T_FLOAT ? f->v.f : (double)f->v.i;
    }
    return false;
}

static bool number_of(const lsf_event *ev, const lsf_fieldref *ref, double *out)
{
    if (ref->fx == LSF_FX_DYNAMIC) {
        const lsf_field *f = lsf_event_find(ev, ref->name);
        if (f && f->type == LSF_T_INT) {
            *out = (double)f->v.i;
            return true;
        }
        if (f && f->type == LSF_T_FLOAT) {
            *out = f->v.f;
            return true;
        }
    }
    char scratch[48], buf[64], *end;
    lsf_str v;
    if (!lsf_fieldref_get(ev, ref, scratch, &v) || !v.len || v.len >= sizeof(buf))
        return false;
    memcpy(buf, v.ptr, v.len);
    buf[v.len] = 0;
    *out = strtod(buf, &end);
    return *end == 0 && *out == *out;
}

uint64_t lsf_det_key_hash(const char *key, uint32_t len)
{
    return lsf_hash64(key, len, KEY_SEED);
}

uint32_t lsf_det_key_shard(uint64_t hash, uint32_t nshards)
{
    return (uint32_t)((hash >> 32) % nshards);
}

static void key_put(dwork *w, const void *p, size_t n)
{
    if (w->klen + n > w->kcap) {
        w->kcap = (w->klen + n) * 2 + 256;
        w->keys = xrealloc(w->keys, w->kcap);
    }
    memcpy(w->keys + w->klen, p, n);
    w->klen += n;
}

/* Builds the group key of ev for r into w->keys; false when a group_by field
 * is missing. */
static bool group_key(const lsf_detdef *d, const lsf_event *ev, dwork *w, uint32_t *off,
                      uint32_t *len)
{
    size_t start = w->klen;
    for (uint32_t g = 0; g < d->ngroup; g++) {
        char scratch[48];
        lsf_str v;
        if (!lsf_fieldref_get(ev, &d->refs[g], scratch, &v)) {
            w->klen = start;
            return false;
        }
        uint16_t n = (uint16_t)(v.len < KEY_VALUE_MAX ? v.len : KEY_VALUE_MAX);
        key_put(w, &n, 2);
        key_put(w, v.ptr, n);
    }
    *off = (uint32_t)start;
    *len = (uint32_t)(w->klen - start);
    return true;
}

/* Tries detection ri on event i; a match goes into w->m. */
static void match_one(lsf_detector *d, const lsf_detset *set, dwork *w, const lsf_event *ev,
                      uint32_t i, uint32_t ri, double score, uint64_t *no_group,
                      uint64_t *no_value)
{
    const lsf_detdef *def = &set->runs[ri]->def;
    if (def->when && !lsf_when_match(def->when, ev))
        return;
    lsf_dmatch m = {.ev = i, .run = (uint16_t)ri, .score = (float)score};
    if (def->type == LSF_DET_SEQUENCE) {
        for (uint32_t s = 0; s < def->nsteps; s++)
            if (lsf_when_match(def->steps[s].when, ev))
                m.steps |= 1u << s;
        if (!m.steps)
            return;
    } else if (def->type == LSF_DET_SCORE && score < def->score_min) {
        return;
    } else if (def->type == LSF_DET_DISTINCT) {
        char scratch[48];
        lsf_str v;
        if (!lsf_fieldref_get(ev, &def->refs[def->ngroup], scratch, &v)) {
            (*no_value)++;
            return;
        }
        m.vhash = lsf_hash64(v.ptr, v.len, KEY_SEED);
    } else if (def->type == LSF_DET_VALUE &&
               !number_of(ev, &def->refs[def->ngroup], &m.value)) {
        (*no_value)++;
        return;
    }
    if (!group_key(def, ev, w, &m.koff, &m.klen)) {
        (*no_group)++;
        return;
    }
    m.khash = lsf_det_key_hash(w->keys + m.koff, m.klen);
    m.shard = (uint16_t)lsf_det_key_shard(m.khash, d->o.nshards);
    if (w->nm == w->capm) {
        w->capm = w->capm ? w->capm * 2 : 256;
        w->m = xrealloc(w->m, w->capm * sizeof(lsf_dmatch));
    }
    w->m[w->nm++] = m;
}

/* Tries the detections the set's gate lets through, in set order. */
static void match_event(lsf_detector *d, const lsf_detset *set, dwork *w, const lsf_event *ev,
                        uint32_t i, double score, uint64_t *no_group, uint64_t *no_value)
{
    uint32_t words = lsf_detgate_words(set->gate);
    if (words > w->cap_gate) {
        w->cap_gate = words;
        w->gate_bits = xrealloc(w->gate_bits, words * sizeof(uint64_t));
    }
    lsf_detgate_select(set->gate, ev, w->gate_bits);
    for (uint32_t k = 0; k < words; k++)
        for (uint64_t bits = w->gate_bits[k]; bits; bits &= bits - 1)
            match_one(d, set, w, ev, i, k * 64 + (uint32_t)__builtin_ctzll(bits), score,
                      no_group, no_value);
}

/* Matches every event of b, then sorts the matches by shard (stably, so
 * each shard's matches stay in event order). */
static void phase_match(lsf_detector *d, const lsf_detset *set, dwork *w, const lsf_batch *b)
{
    w->nm = 0;
    w->klen = 0;
    if (!w->keys) { /* never NULL: an empty key (no group_by) still points somewhere */
        w->kcap = 256;
        w->keys = xrealloc(NULL, w->kcap);
    }
    uint64_t no_group = 0, no_value = 0;
    for (uint32_t i = 0; i < b->n && set->n; i++) {
        const lsf_event *ev = &b->events[i];
        double score;
        if ((ev->flags & LSF_EV_DROPPED) || scan_event(ev, &score))
            continue;
        match_event(d, set, w, ev, i, score, &no_group, &no_value);
    }
    if (no_group)
        lsf_counter_add(d->c_no_group, no_group);
    if (no_value)
        lsf_counter_add(d->c_no_value, no_value);
    uint32_t ns = d->o.nshards;
    memset(w->shard_off, 0, (ns + 1) * sizeof(uint32_t));
    for (size_t i = 0; i < w->nm; i++)
        w->shard_off[w->m[i].shard + 1]++;
    for (uint32_t k = 0; k < ns; k++)
        w->shard_off[k + 1] += w->shard_off[k];
    if (w->nm > w->cap_sorted) {
        w->cap_sorted = w->capm;
        w->sorted = xrealloc(w->sorted, w->cap_sorted * sizeof(lsf_dmatch));
    }
    uint32_t *fill = w->shard_off; /* advance a copy: restore below */
    for (size_t i = 0; i < w->nm; i++)
        w->sorted[fill[w->m[i].shard]++] = w->m[i];
    for (uint32_t k = ns; k > 0; k--)
        w->shard_off[k] = w->shard_off[k - 1];
    w->shard_off[0] = 0;
}

/* ---- phase 2: state, in batch order per shard ----------------------------------- */

/* Shard 0's turn: every event's effective time and the watermark after it. */
static void event_times(lsf_detector *d, dwork *w, const lsf_batch *b)
{
    if (b->n > w->capt) {
        w->capt = b->n * 2;
        w->t = xrealloc(w->t, w->capt * sizeof(int64_t));
        w->wm = xrealloc(w->wm, w->capt * sizeof(int64_t));
    }
    uint64_t late = 0, ahead = 0;
    for (uint32_t i = 0; i < b->n; i++) {
        const lsf_event *ev = &b->events[i];
        int64_t t = ev->time_ns ? ev->time_ns : ev->ingested_ns;
        if ((ev->flags & LSF_EV_DROPPED) || t == 0) {
            w->t[i] = w->wm[i] = d->wm;
            continue;
        }
        if (ev->ingested_ns && t > ev->ingested_ns + d->o.max_future_ns) {
            t = ev->ingested_ns;
            ahead++;
        }
        if (d->restored) { /* first event after a restore: the downtime is not silence */
            d->restored = false;
            w->shift_ns = t > d->restored_wm ? t - d->restored_wm : 0;
        }
        if (!d->wm_set || t > d->wm) {
            d->wm = t;
            d->wm_set = true;
        }
        if (t < d->wm - d->o.lateness_ns) {
            t = d->wm - d->o.lateness_ns;
            late++;
        }
        w->t[i] = t;
        w->wm[i] = d->wm;
    }
    w->wm_end = d->wm;
    atomic_store_explicit(&d->wm_pub, d->wm, memory_order_relaxed);
    if (late)
        lsf_counter_add(d->c_late, late);
    if (ahead)
        lsf_counter_add(d->c_ahead, ahead);
}

static void keep_alert(dwork *w, lsf_alert *a)
{
    if (!a)
        return;
    if (w->nalerts == w->cap_alerts) {
        w->cap_alerts = w->cap_alerts ? w->cap_alerts * 2 : 16;
        w->alerts = xrealloc(w->alerts, w->cap_alerts * sizeof(*w->alerts));
    }
    w->alerts[w->nalerts++] = a;
}

static void fire_due(lsf_detrun *r, lsf_dshard *s, int64_t wm, dwork *w)
{
    lsf_dentry *e;
    while ((e = lsf_dtimer_due(s, wm))) {
        lsf_dfire f;
        lsf_kind_timeout(r, s, e, &f);
        keep_alert(w, lsf_alert_fire(r, s, e, &f));
    }
}

static void apply_match(lsf_detrun *r, lsf_dshard *s, const lsf_dmatch *m, const lsf_batch *b,
                        dwork *w)
{
    int64_t t = w->t[m->ev];
    if (r->def.has_absent)
        fire_due(r, s, w->wm[m->ev], w);
    lsf_counter_add(r->c_matched, 1);
    lsf_dentry *e = lsf_dkey_get(r, s, m->khash, w->keys + m->koff, m->klen, t);
    lsf_dfire f;
    lsf_kind_apply(r, s, e, m, t, &w->hll, &f);
    if (f.fresh) {
        e->first_ns = t;
        e->n = 0;
        e->max_score = -1;
    }
    e->n++;
    if (t > e->last_ns)
        e->last_ns = t;
    if (m->score > e->max_score)
        e->max_score = m->score;
    if (f.exemplar) {
        const lsf_event *ev = &b->events[m->ev];
        lsf_dkey_exemplar(r, s, e, ev->raw.len ? ev->raw : ev->message);
    }
    if (f.fired)
        keep_alert(w, lsf_alert_fire(r, s, e, &f));
}

static void phase_state(lsf_detector *d, const lsf_detset *set, dwork *w, const lsf_batch *b)
{
    for (uint32_t k = 0; k < d->o.nshards; k++) {
        ticket *tk = &d->tk[k];
        lsf_turn_wait(tk, b->seq);
        if (k == 0) {
            w->shift_ns = 0;
            event_times(d, w, b);
        }
        int64_t wm_end = w->wm_end; /* d->wm may already be a later batch's */
        if (w->shift_ns) {
            for (uint32_t ri = 0; ri < set->n; ri++) {
                lsf_dshard *s = &set->runs[ri]->shards[k];
                for (uint32_t h = 0; h < s->nheap; h++)
                    s->heap[h]->deadline_ns += w->shift_ns; /* same order: still a heap */
            }
        }
        for (uint32_t i = w->shard_off[k]; i < w->shard_off[k + 1]; i++) {
            const lsf_dmatch *m = &w->sorted[i];
            lsf_detrun *r = set->runs[m->run];
            apply_match(r, &r->shards[k], m, b, w);
        }
        for (uint32_t ri = 0; ri < set->n; ri++) {
            lsf_detrun *r = set->runs[ri];
            if (r->def.has_absent && b->n)
                fire_due(r, &r->shards[k], wm_end, w);
            lsf_dkey_expire(r, &r->shards[k], wm_end, 2);
        }
        lsf_turn_done(tk);
    }
}

static int cmp_alert(const void *pa, const void *pb)
{
    const lsf_alert *a = *(lsf_alert *const *)pa, *b = *(lsf_alert *const *)pb;
    if (a->time_ns != b->time_ns)
        return a->time_ns < b->time_ns ? -1 : 1;
    int c = strcmp(a->run->def.id, b->run->def.id);
    if (c)
        return c;
    uint32_t n = a->keylen < b->keylen ? a->keylen : b->keylen;
    c = memcmp(a->key, b->key, n);
    return c ? c : (int)a->keylen - (int)b->keylen;
}

/* The emit ticket's turn: rate limits, then the alerts onto the batch. */
static void emit_alerts(lsf_detector *d, dwork *w, lsf_batch *b)
{
    lsf_turn_wait(&d->emit, b->seq);
    if (w->nalerts) {
        qsort(w->alerts, w->nalerts, sizeof(*w->alerts), cmp_alert);
        int64_t now = wall_ns();
        uint64_t n = 0;
        for (size_t i = 0; i < w->nalerts; i++) {
            if (lsf_alert_admit(w->alerts[i])) {
                lsf_alert_emit(w->alerts[i], b, now);
                n++;
            }
            lsf_alert_free(w->alerts[i]);
        }
        lsf_counter_add(d->c_alerts, n);
        w->nalerts = 0;
    }
    lsf_turn_done(&d->emit);
}

void lsf_detector_process(lsf_detector *d, lsf_batch *b, int worker)
{
    static const lsf_detset none = {0};
    dwork *w = &d->w[worker];
    lsf_detset *set = lsf_detector_current(d);
    /* without a set, the batch still takes its turn everywhere */
    const lsf_detset *use = set ? set : &none;
    phase_match(d, use, w, b);
    phase_state(d, use, w, b);
    emit_alerts(d, w, b);
    lsf_detset_unref(set);
}
