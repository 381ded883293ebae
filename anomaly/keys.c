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
 * Cost per key: the entry (~700 bytes + the key text) plus what its
 * detector keeps (model.c, firstseen.c, topk.c report their bytes), plus
 * 8 bytes of hash bucket.
 *
 * Threads: shard s of a detector is used only by the holder of the stage's
 * ticket s (score.c) or by a single-threaded caller (logsift score).
 */
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
        s->buckets = xcalloc(s->nbuckets, sizeof(*s->buckets));
        s->lru.next = s->lru.prev = &s->lru;
        s->bytes = s->nbuckets * sizeof(*s->buckets);
        if (d->def.type == LSF_ANOM_RARE_TEMPLATE) {
            uint32_t w = d->def.sketch_width;
            lsf_cms_init(&s->cms, 2.718281828 / (w ? w : 1), 0.02);
            s->bytes += lsf_cms_bytes(&s->cms);
        }
    }
}

static void unlink_entry(lsf_anom_shard *s, lsf_anom_entry *e)
{
    e->prev->next = e->next;
    e->next->prev = e->prev;
    lsf_anom_entry **pp = &s->buckets[e->hash & (s->nbuckets - 1)];
    while (*pp && *pp != e)
        pp = &(*pp)->hnext;
    if (*pp)
        *pp = e->hnext;
    s->n--;
}

static void destroy(lsf_anom_det *d, lsf_anom_shard *s, lsf_anom_entry *e)
{
    s->bytes -= e->bytes;
    lsf_anom_entry_free(d, e);
    free(e->key);
    free(e);
}

void lsf_anom_shard_clear(lsf_anom_det *d, lsf_anom_shard *s)
{
    while (s->lru.next != &s->lru) {
        lsf_anom_entry *e = s->lru.next;
        unlink_entry(s, e);
        destroy(d, s, e);
    }
}

void lsf_anom_shards_free(lsf_anom_det *d)
{
    if (!d->shard)
        return;
    for (uint32_t i = 0; i < d->nshards; i++) {
        lsf_anom_shard *s = &d->shard[i];
        lsf_anom_shard_clear(d, s);
        free(s->buckets);
        if (s->cms.cnt)
            lsf_cms_free(&s->cms);
    }
    free(d->shard);
    d->shard = NULL;
}

static void grow(lsf_anom_shard *s)
{
    uint32_t nb = s->nbuckets * 2;
    lsf_anom_entry **b = xcalloc(nb, sizeof(*b));
    for (uint32_t i = 0; i < s->nbuckets; i++)
        for (lsf_anom_entry *e = s->buckets[i], *next; e; e = next) {
            next = e->hnext;
            e->hnext = b[e->hash & (nb - 1)];
            b[e->hash & (nb - 1)] = e;
        }
    free(s->buckets);
    s->bytes += (nb - s->nbuckets) * sizeof(*b);
    s->buckets = b;
    s->nbuckets = nb;
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
        unlink_entry(s, victim);
        destroy(d, s, victim);
        evicted++;
    }
    if (evicted && d->c_evicted)
        lsf_counter_add(d->c_evicted, evicted);
}

lsf_anom_entry *lsf_anom_entry_get(lsf_anom_det *d, lsf_anom_shard *s, uint64_t hash,
                                   const char *key, uint32_t key_len, bool *created)
{
    if (key_len > LSF_ANOM_MAX_KEY)
        key_len = LSF_ANOM_MAX_KEY;
    for (lsf_anom_entry *e = s->buckets[hash & (s->nbuckets - 1)]; e; e = e->hnext)
        if (e->hash == hash) {
            *created = false;
            /* move to the LRU front, unless it is already in the most recent
             * eighth: busy keys then cost no writes to their neighbours */
            if (s->clock - e->stamp < s->n / 8 + 1)
                return e;
            e->stamp = ++s->clock;
            e->prev->next = e->next;
            e->next->prev = e->prev;
            e->next = s->lru.next;
            e->prev = &s->lru;
            s->lru.next->prev = e;
            s->lru.next = e;
            return e;
        }
    lsf_anom_entry *e = xcalloc(1, sizeof(*e));
    e->hash = hash;
    e->key = malloc(key_len + 1);
    if (!e->key)
        lsf_die("out of memory (anomaly keys)");
    memcpy(e->key, key, key_len);
    e->key[key_len] = 0;
    e->key_len = key_len;
    lsf_anom_entry_init(d, e);
    e->stamp = ++s->clock;
    if (s->n + 1 > s->nbuckets)
        grow(s);
    e->hnext = s->buckets[hash & (s->nbuckets - 1)];
    s->buckets[hash & (s->nbuckets - 1)] = e;
    e->next = s->lru.next;
    e->prev = &s->lru;
    s->lru.next->prev = e;
    s->lru.next = e;
    s->n++;
    e->bytes = sizeof(*e) + key_len + 1 + lsf_anom_entry_bytes(d, e);
    s->bytes += e->bytes;
    if (d->c_keys)
        lsf_counter_add(d->c_keys, 1);
    enforce(d, s, e);
    *created = true;
    return e;
}

void lsf_anom_entry_touched(lsf_anom_det *d, lsf_anom_shard *s, lsf_anom_entry *e)
{
    size_t now = sizeof(*e) + e->key_len + 1 + lsf_anom_entry_bytes(d, e);
    if (now == e->bytes)
        return;
    s->bytes += now - e->bytes; /* unsigned wrap-around adds a negative delta correctly */
    e->bytes = now;
    enforce(d, s, e);
}
