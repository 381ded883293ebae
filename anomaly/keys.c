/* keys.c - a detector's per-key entries: sharded hash tables with an LRU
 * and a memory budget.
 *
 * The one design choice to know: memory is bounded per detector and split
 * evenly over its shards (max_memory / shards, max_keys / shards), and each
 * shard evicts its least recently used keys when a new key or a growing
 * model would exceed its share. Keys hash uniformly, so per-shard budgets
 * add up to the detector's without a shared counter on the hot path.
 * Evictions are counted (<stage>.<detector>.evicted); an evicted key starts
 * over (learning again) if it comes back.
 *
 * Detectors with the same `by` share their keys' records (anomaly.h): one
 * hash table per key group and shard, each record holding one part (entry)
 * per detector of the group, so one lookup finds a key for all of them.
 * LRU order, budgets and evictions stay per detector: an evicted part is
 * freed of its state and marked dead, and the record goes with its last
 * live part.
 *
 * Parts hold only what an event touches and are as long as their detector
 * needs (lsf_anom_part_size: 120 bytes for a rate or numeric with two open
 * intervals, 88 for new_value, 320 for rare_template with its top 8); a series' model
 * (560 bytes, read once an interval) sits in the record's cold tail after
 * all parts. So an event of the four kinds reads 11 adjacent cache lines of
 * its key's record rather than ~15 spread over 2 KB and a separate heap.
 *
 * Cost per key, charged to each detector: its part (+ the key text) plus
 * what it keeps (model.c, firstseen.c, topk.c report their bytes), plus 8
 * bytes a bucket of a table of its own keys' size (the group's real table,
 * 16-byte slots at most half full, is shared by its detectors). The dead
 * parts of a record that another detector still keeps are charged to no
 * one; records, and the first-seen sets of their parts, come from the
 * group's slab (slab.c).
 *
 * Threads: shard s of a detector is used only by the holder of the stage's
 * ticket s (score.c) or by a single-threaded caller (logsift score).
 */
#include <stddef.h>
#include <stdlib.h>

#include "anomaly/anomaly.h"
#include "core/log.h"

static void *xcalloc(size_t n, size_t sz)
{
    void *p = calloc(n ? n : 1, sz);
    if (!p)
        lsf_die("out of memory (anomaly keys)");
    return p;
}

void lsf_anom_shards_init(lsf_anom_det *d, uint32_t nshards)
{
    d->nshards = nshards ? nshards : 1;
    d->shard = xcalloc(d->nshards, sizeof(lsf_anom_shard));
    d->shard_budget = d->def.max_memory / d->nshards;
    d->shard_keys = d->def.max_keys / d->nshards;
    if (d->shard_keys < 1)
        d->shard_keys = 1;
    for (uint32_t i = 0; i < d->nshards; i++) {
        lsf_anom_shard *s = &d->shard[i];
        s->nbuckets = 64;
        s->lru.next = s->lru.prev = &s->lru;
        s->bytes = s->nbuckets * sizeof(lsf_anom_rec *);
        if (d->def.type == LSF_ANOM_RARE_TEMPLATE) {
            uint32_t w = d->def.sketch_width;
            lsf_cms_init(&s->cms, 2.718281828 / (w ? w : 1), 0.02);
            s->bytes += lsf_cms_bytes(&s->cms);
        }
    }
}

size_t lsf_anom_part_size(const lsf_anom_det *d)
{
    const lsf_anom_entry *e = NULL;
    size_t n;
    switch (d->def.type) {
    case LSF_ANOM_NEW_VALUE:
        n = offsetof(lsf_anom_entry, u) + sizeof(e->u.values);
        break;
    case LSF_ANOM_RARE_TEMPLATE:
        n = offsetof(lsf_anom_entry, u) + sizeof(e->u.tpl);
        break;
    default:
        n = offsetof(lsf_anom_entry, u.series.acc) + d->def.rate_open * sizeof(lsf_anom_acc);
        break;
    }
    size_t a = _Alignof(lsf_anom_entry);
    return (n + a - 1) / a * a; /* the next part starts aligned */
}

size_t lsf_anom_cold_size(const lsf_anom_det *d)
{
    return d->def.type == LSF_ANOM_RATE || d->def.type == LSF_ANOM_NUMERIC ? sizeof(lsf_model) : 0;
}
_Static_assert(sizeof(lsf_anom_rec) % _Alignof(lsf_anom_entry) == 0,
               "the first part starts aligned after the record header");
_Static_assert(sizeof(lsf_model) % _Alignof(lsf_anom_entry) == 0,
               "cold states stay aligned one after another");

/* Appends d's part and cold state to its group's record layout. */
static void add_part(lsf_anom_det *d)
{
    lsf_anom_group *g = d->grp;
    g->part_off[d->grp_slot] = (uint32_t)(sizeof(lsf_anom_rec) + g->parts_bytes);
    g->parts_bytes += (uint32_t)lsf_anom_part_size(d);
    g->cold_off[d->grp_slot] = g->cold_bytes;
    g->cold_bytes += (uint32_t)lsf_anom_cold_size(d);
}

static void *slab_alloc(void *slab, size_t n)
{
    return lsf_anom_slab_alloc(slab, n);
}

static void slab_put(void *slab, void *p, size_t n)
{
    lsf_anom_slab_put(slab, p, n);
}

void lsf_anom_group_join(lsf_anom_det *d, lsf_anom_det *leader)
{
    if (leader && leader->grp->nparts < LSF_ANOM_MAX_GROUP) {
        d->grp = leader->grp;
        d->grp_slot = d->grp->nparts++;
        d->grp_owner = false;
        add_part(d);
        return;
    }
    lsf_anom_group *g = xcalloc(1, sizeof(*g));
    lsf_anom_slab_init(&g->slab);
    g->mem = (lsf_mem){slab_alloc, slab_put, &g->slab};
    g->nparts = 1;
    g->nshards = d->nshards;
    g->shard = xcalloc(g->nshards, sizeof(lsf_anom_keytab));
    for (uint32_t i = 0; i < g->nshards; i++) {
        g->shard[i].nslots = 64;
        g->shard[i].slot = xcalloc(64, sizeof(lsf_anom_slot));
    }
    d->grp = g;
    d->grp_slot = 0;
    d->grp_owner = true;
    add_part(d);
}

void lsf_anom_group_free(lsf_anom_det *d)
{
    if (!d->grp_owner || !d->grp)
        return;
    for (uint32_t i = 0; i < d->grp->nshards; i++)
        free(d->grp->shard[i].slot);
    lsf_anom_slab_free(&d->grp->slab);
    free(d->grp->shard);
    free(d->grp);
    d->grp = NULL;
}

static uint32_t shard_index(const lsf_anom_det *d, const lsf_anom_shard *s)
{
    return (uint32_t)(s - d->shard);
}

static size_t rec_size(const lsf_anom_group *g, uint32_t key_len)
{
    return sizeof(lsf_anom_rec) + g->parts_bytes + g->cold_bytes + key_len + 1;
}

/* What entry e of detector d accounts for: its part, its cold state, the
 * key text and what its statistics hold on the heap. */
static size_t entry_size(const lsf_anom_det *d, const lsf_anom_entry *e)
{
    return lsf_anom_part_size(d) + lsf_anom_cold_size(d) + e->rec->key_len + 1 +
           lsf_anom_entry_bytes(d, e);
}

/* Empties slot i of t, moving later slots of its probe run back so that
 * every key stays reachable from its home slot (no tombstones). */
static void slot_remove(lsf_anom_keytab *t, uint32_t i)
{
    uint32_t mask = t->nslots - 1;
    for (uint32_t j = (i + 1) & mask; t->slot[j].rec; j = (j + 1) & mask) {
        uint32_t home = (uint32_t)t->slot[j].hash & mask;
        if (((j - home) & mask) >= ((j - i) & mask)) { /* the hole is on j's probe path */
            t->slot[i] = t->slot[j];
            i = j;
        }
    }
    t->slot[i] = (lsf_anom_slot){0, NULL};
}

/* Takes record r out of its table and frees it (its parts are all dead). */
static void rec_free(lsf_anom_group *g, lsf_anom_keytab *t, lsf_anom_rec *r)
{
    uint32_t mask = t->nslots - 1;
    for (uint32_t i = (uint32_t)r->hash & mask; t->slot[i].rec; i = (i + 1) & mask)
        if (t->slot[i].rec == r) {
            slot_remove(t, i);
            break;
        }
    t->n--;
    lsf_anom_slab_put(&g->slab, r, rec_size(g, r->key_len));
}

/* Unlinks entry e from its detector's LRU, frees its state and marks its
 * part dead (freeing the record with its last live part). */
static void destroy(lsf_anom_det *d, lsf_anom_shard *s, lsf_anom_entry *e)
{
    e->prev->next = e->next;
    e->next->prev = e->prev;
    s->n--;
    s->bytes -= e->bytes;
    lsf_anom_entry_free(d, e);
    lsf_anom_rec *r = e->rec;
    r->live &= ~(1u << d->grp_slot);
    if (!r->live)
        rec_free(d->grp, &d->grp->shard[shard_index(d, s)], r);
}

void lsf_anom_shard_clear(lsf_anom_det *d, lsf_anom_shard *s)
{
    while (s->lru.next != &s->lru)
        destroy(d, s, s->lru.next);
}

void lsf_anom_shards_free(lsf_anom_det *d)
{
    if (!d->shard)
        return;
    for (uint32_t i = 0; i < d->nshards; i++) {
        lsf_anom_shard *s = &d->shard[i];
        lsf_anom_shard_clear(d, s);
        if (s->cms.cnt)
            lsf_cms_free(&s->cms);
    }
    free(d->shard);
    d->shard = NULL;
}

/* Puts record r (absent from t) in the first free slot of its probe run. */
static void slot_put(lsf_anom_slot *slot, uint32_t nslots, lsf_anom_rec *r)
{
    uint32_t mask = nslots - 1, i = (uint32_t)r->hash & mask;
    while (slot[i].rec)
        i = (i + 1) & mask;
    slot[i] = (lsf_anom_slot){r->hash, r};
}

static void grow(lsf_anom_keytab *t)
{
    uint32_t ns = t->nslots * 2;
    lsf_anom_slot *slot = xcalloc(ns, sizeof(*slot));
    for (uint32_t i = 0; i < t->nslots; i++)
        if (t->slot[i].rec)
            slot_put(slot, ns, t->slot[i].rec);
    free(t->slot);
    t->slot = slot;
    t->nslots = ns;
}

/* Evicts least-recently-used entries other than `keep` while over budget. */
static void enforce(lsf_anom_det *d, lsf_anom_shard *s, const lsf_anom_entry *keep)
{
    uint64_t evicted = 0;
    while ((s->bytes > d->shard_budget || s->n > d->shard_keys) && s->lru.prev != &s->lru) {
        lsf_anom_entry *victim = s->lru.prev;
        if (victim == keep) {
            if (victim->prev == &s->lru)
                break; /* the only entry: it stays even over budget */
            victim = victim->prev;
        }
        destroy(d, s, victim);
        evicted++;
    }
    if (evicted && d->c_evicted)
        lsf_counter_add(d->c_evicted, evicted);
}

/* A new record for key (hash, text) in table t, every part dead. */
static lsf_anom_rec *rec_new(lsf_anom_det *d, lsf_anom_keytab *t, uint64_t hash, const char *key,
                             uint32_t key_len)
{
    lsf_anom_rec *r = lsf_anom_slab_alloc(&d->grp->slab, rec_size(d->grp, key_len));
    r->hash = hash;
    r->key_len = key_len;
    r->live = 0;
    r->key = (char *)(r + 1) + d->grp->parts_bytes + d->grp->cold_bytes;
    memcpy(r->key, key, key_len);
    r->key[key_len] = 0;
    if (2 * (t->n + 1) > t->nslots) /* at most half full: short probe runs */
        grow(t);
    slot_put(t->slot, t->nslots, r);
    t->n++;
    return r;
}

lsf_anom_entry *lsf_anom_entry_get(lsf_anom_det *d, lsf_anom_shard *s, uint64_t hash,
                                   const char *key, uint32_t key_len, bool *created)
{
    return lsf_anom_entry_at(d, s, lsf_anom_rec_find(d, shard_index(d, s), hash), hash, key,
                             key_len, created);
}

lsf_anom_entry *lsf_anom_entry_at(lsf_anom_det *d, lsf_anom_shard *s, lsf_anom_rec *r,
                                  uint64_t hash, const char *key, uint32_t key_len, bool *created)
{
    if (key_len > LSF_ANOM_MAX_KEY)
        key_len = LSF_ANOM_MAX_KEY;
    uint32_t k = shard_index(d, s);
    if (r && (r->live >> d->grp_slot & 1)) {
        lsf_anom_entry *e = lsf_anom_part(d, r);
        *created = false;
        if (lsf_anom_lru_recent(s, e)) /* else it moves to the LRU front */
            return e;
        e->stamp = (uint32_t)++s->clock;
        e->prev->next = e->next;
        e->next->prev = e->prev;
        e->next = s->lru.next;
        e->prev = &s->lru;
        s->lru.next->prev = e;
        s->lru.next = e;
        return e;
    }
    if (!r)
        r = rec_new(d, &d->grp->shard[k], hash, key, key_len);
    lsf_anom_entry *e = lsf_anom_part(d, r);
    memset(e, 0, lsf_anom_part_size(d));
    e->rec = r;
    r->live |= 1u << d->grp_slot;
    lsf_anom_entry_init(d, e);
    e->stamp = (uint32_t)++s->clock;
    if (s->n + 1 > s->nbuckets) {
        s->bytes += s->nbuckets * sizeof(lsf_anom_rec *);
        s->nbuckets *= 2;
    }
    e->next = s->lru.next;
    e->prev = &s->lru;
    s->lru.next->prev = e;
    s->lru.next = e;
    s->n++;
    e->bytes = (uint32_t)entry_size(d, e);
    s->bytes += e->bytes;
    if (d->c_keys)
        lsf_counter_add(d->c_keys, 1);
    enforce(d, s, e);
    *created = true;
    return e;
}

void lsf_anom_entry_touched(lsf_anom_det *d, lsf_anom_shard *s, lsf_anom_entry *e)
{
    size_t now = entry_size(d, e);
    if (now == e->bytes)
        return;
    s->bytes += now - e->bytes; /* unsigned wrap-around adds a negative delta correctly */
    e->bytes = (uint32_t)now;
    enforce(d, s, e);
}
