/* keys.c - the per-key state of a detection: one hash table per shard, a
 * least-recently-used list, a memory budget, exemplars and a timer heap.
 *
 * The one design choice to know: memory is accounted with what the
 * allocator really hands out (malloc_usable_size of every block a key owns,
 * plus its hash slot), and each shard enforces 1/nshards of the detection's
 * max_keys and max_memory, so the total stays under the configured budget
 * whatever the keys look like; when a new key would exceed it, the least
 * recently used keys are evicted first (counted in <stage>.<id>.evicted).
 * Keys with nothing left to detect are freed from the LRU tail as the
 * watermark passes them (counted in .expired).
 *
 * A key is one block: the entry, the type's fixed state (kinds.c), then the
 * key bytes; exemplars and distinct values are separate, lazily allocated
 * blocks. lsf_detrun_key_cost is the per-key figure docs/detections.md
 * quotes.
 *
 * Threads: every function here runs under the ticket lock of the shard it is
 * given (engine.c); counters are atomics.
 */
#include <malloc.h>
#include <stdlib.h>
#include <string.h>

#include "core/log.h"
#include "detect/detect.h"

#define MIN_TABLE 64u

static size_t usable(const void *p)
{
    return p ? malloc_usable_size((void *)p) : 0;
}

/* Adds a signed delta to a counter used as a gauge (two's complement). */
static void gauge_add(lsf_counter *c, int64_t n)
{
    lsf_counter_add(c, (uint64_t)n);
}

void lsf_dkey_account(lsf_detrun *r, lsf_dshard *s, int64_t n)
{
    s->bytes += (uint64_t)n;
    gauge_add(r->c_bytes, n);
}

lsf_detrun *lsf_detrun_new(lsf_detdef *def, uint32_t nshards, const char *stage)
{
    lsf_detrun *r = calloc(1, sizeof(*r));
    if (!r)
        lsf_die("out of memory");
    atomic_init(&r->refs, 1);
    r->def = *def;
    memset(def, 0, sizeof(*def));
    r->nshards = nshards;
    r->shards = calloc(nshards, sizeof(lsf_dshard));
    if (!r->shards)
        lsf_die("out of memory");
    r->max_keys_shard = (r->def.max_keys + nshards - 1) / nshards;
    r->max_bytes_shard = r->def.max_bytes / nshards;
    r->state_bytes = (lsf_kind_state_bytes(&r->def) + 7u) & ~(size_t)7u;
    pthread_mutex_init(&r->rate_lock, NULL);
    r->tokens = r->def.rate_n;
    r->rate_last_ns = INT64_MIN;
    char what[160];
#define COUNTER(field, name)                                                                     \
    snprintf(what, sizeof(what), "%s.%s", r->def.id, name);                                      \
    r->field = lsf_counter_new(stage, what)
    COUNTER(c_alerts, "alerts");
    COUNTER(c_suppressed, "suppressed");
    COUNTER(c_rate_limited, "rate_limited");
    COUNTER(c_evicted, "evicted");
    COUNTER(c_expired, "expired");
    COUNTER(c_keys, "keys");
    COUNTER(c_bytes, "bytes");
    COUNTER(c_matched, "matched");
#undef COUNTER
    return r;
}

lsf_detrun *lsf_detrun_ref(lsf_detrun *r)
{
    atomic_fetch_add_explicit(&r->refs, 1, memory_order_relaxed);
    return r;
}

void lsf_detrun_unref(lsf_detrun *r)
{
    if (!r || atomic_fetch_sub_explicit(&r->refs, 1, memory_order_acq_rel) != 1)
        return;
    for (uint32_t i = 0; i < r->nshards; i++)
        lsf_dshard_free(r, &r->shards[i]);
    free(r->shards);
    pthread_mutex_destroy(&r->rate_lock);
    lsf_detdef_free(&r->def);
    free(r);
}

size_t lsf_detrun_key_cost(const lsf_detrun *r, size_t keylen)
{
    void *p = calloc(1, sizeof(lsf_dentry) + r->state_bytes + keylen);
    if (!p)
        lsf_die("out of memory");
    size_t n = usable(p) + sizeof(lsf_dentry *);
    free(p);
    return n;
}

/* ---- LRU ---------------------------------------------------------------- */

static void lru_unlink(lsf_dshard *s, lsf_dentry *e)
{
    if (e->lprev)
        e->lprev->lnext = e->lnext;
    else
        s->lru_head = e->lnext;
    if (e->lnext)
        e->lnext->lprev = e->lprev;
    else
        s->lru_tail = e->lprev;
    e->lprev = e->lnext = NULL;
}

static void lru_front(lsf_dshard *s, lsf_dentry *e)
{
    e->lnext = s->lru_head;
    e->lprev = NULL;
    if (s->lru_head)
        s->lru_head->lprev = e;
    s->lru_head = e;
    if (!s->lru_tail)
        s->lru_tail = e;
}

/* ---- timers: a binary min-heap of entries by deadline --------------------- */

static void heap_place(lsf_dshard *s, uint32_t i, lsf_dentry *e)
{
    s->heap[i] = e;
    e->heap_idx = i;
}

static void heap_up(lsf_dshard *s, uint32_t i)
{
    lsf_dentry *e = s->heap[i];
    while (i > 0) {
        uint32_t p = (i - 1) / 2;
        if (s->heap[p]->deadline_ns <= e->deadline_ns)
            break;
        heap_place(s, i, s->heap[p]);
        i = p;
    }
    heap_place(s, i, e);
}

static void heap_down(lsf_dshard *s, uint32_t i)
{
    lsf_dentry *e = s->heap[i];
    for (;;) {
        uint32_t c = 2 * i + 1;
        if (c >= s->nheap)
            break;
        if (c + 1 < s->nheap && s->heap[c + 1]->deadline_ns < s->heap[c]->deadline_ns)
            c++;
        if (s->heap[c]->deadline_ns >= e->deadline_ns)
            break;
        heap_place(s, i, s->heap[c]);
        i = c;
    }
    heap_place(s, i, e);
}

static void heap_remove(lsf_dshard *s, lsf_dentry *e)
{
    uint32_t i = e->heap_idx;
    e->heap_idx = UINT32_MAX;
    lsf_dentry *last = s->heap[--s->nheap];
    if (i == s->nheap)
        return;
    heap_place(s, i, last);
    heap_up(s, i);
    heap_down(s, last->heap_idx);
}

void lsf_dtimer_set(lsf_dshard *s, lsf_dentry *e, int64_t deadline_ns)
{
    if (e->heap_idx != UINT32_MAX)
        heap_remove(s, e);
    e->deadline_ns = deadline_ns;
    if (!deadline_ns)
        return;
    if (s->nheap == s->cap_heap) {
        uint32_t ncap = s->cap_heap ? s->cap_heap * 2 : 16;
        lsf_dentry **nh = realloc(s->heap, ncap * sizeof(*nh));
        if (!nh)
            lsf_die("out of memory (timer heap)");
        s->heap = nh;
        s->cap_heap = ncap;
    }
    heap_place(s, s->nheap++, e);
    heap_up(s, e->heap_idx);
}

lsf_dentry *lsf_dtimer_due(lsf_dshard *s, int64_t wm_ns)
{
    if (!s->nheap || s->heap[0]->deadline_ns > wm_ns)
        return NULL;
    return s->heap[0];
}

/* ---- the table ------------------------------------------------------------ */

static void table_grow(lsf_detrun *r, lsf_dshard *s)
{
    uint32_t nsize = s->tab_size ? s->tab_size * 2 : MIN_TABLE;
    lsf_dentry **nt = calloc(nsize, sizeof(*nt));
    if (!nt)
        lsf_die("out of memory (detection table of %u slots)", nsize);
    for (uint32_t i = 0; i < s->tab_size; i++) {
        lsf_dentry *e = s->tab[i];
        while (e) {
            lsf_dentry *next = e->hnext;
            uint32_t k = (uint32_t)(e->hash & (nsize - 1));
            e->hnext = nt[k];
            nt[k] = e;
            e = next;
        }
    }
    lsf_dkey_account(r, s, (int64_t)usable(nt) - (int64_t)usable(s->tab));
    free(s->tab);
    s->tab = nt;
    s->tab_size = nsize;
}

static void free_exemplars(lsf_detrun *r, lsf_dshard *s, lsf_dentry *e)
{
    if (!e->ex)
        return;
    int64_t freed = (int64_t)usable(e->ex);
    for (uint32_t i = 0; i < r->def.exemplars; i++) {
        freed += (int64_t)usable(e->ex[i]);
        free(e->ex[i]);
    }
    free(e->ex);
    e->ex = NULL;
    e->nex = e->exhead = 0;
    lsf_dkey_account(r, s, -freed);
}

void lsf_dkey_free(lsf_detrun *r, lsf_dshard *s, lsf_dentry *e)
{
    lsf_dentry **pp = &s->tab[e->hash & (s->tab_size - 1)];
    while (*pp != e)
        pp = &(*pp)->hnext;
    *pp = e->hnext;
    lru_unlink(s, e);
    if (e->heap_idx != UINT32_MAX)
        heap_remove(s, e);
    free_exemplars(r, s, e);
    lsf_kind_free_ext(r, s, e);
    lsf_dkey_account(r, s, -(int64_t)usable(e));
    free(e);
    s->nkeys--;
    gauge_add(r->c_keys, -1);
}

static bool over_budget(const lsf_detrun *r, const lsf_dshard *s)
{
    return s->nkeys > r->max_keys_shard || s->bytes > r->max_bytes_shard;
}

lsf_dentry *lsf_dkey_get(lsf_detrun *r, lsf_dshard *s, uint64_t hash, const char *key,
                         uint32_t keylen, int64_t now_ns)
{
    if (s->tab_size) {
        for (lsf_dentry *e = s->tab[hash & (s->tab_size - 1)]; e; e = e->hnext) {
            if (e->hash == hash && e->keylen == keylen &&
                memcmp(lsf_dkey_bytes(r, e), key, keylen) == 0) {
                if (s->lru_head != e) {
                    lru_unlink(s, e);
                    lru_front(s, e);
                }
                return e;
            }
        }
    }
    if (s->nkeys >= s->tab_size)
        table_grow(r, s);
    lsf_dentry *e = calloc(1, sizeof(lsf_dentry) + r->state_bytes + keylen);
    if (!e)
        lsf_die("out of memory (detection key)");
    e->hash = hash;
    e->keylen = (uint16_t)keylen;
    e->heap_idx = UINT32_MAX;
    e->max_score = -1;
    e->first_ns = e->last_ns = now_ns;
    memcpy((char *)e->state + r->state_bytes, key, keylen);
    lsf_kind_reset(r, s, e);
    uint32_t k = (uint32_t)(hash & (s->tab_size - 1));
    e->hnext = s->tab[k];
    s->tab[k] = e;
    lru_front(s, e);
    s->nkeys++;
    gauge_add(r->c_keys, 1);
    lsf_dkey_account(r, s, (int64_t)usable(e));
    /* stay within the budget: least recently used first, never the new key */
    while (over_budget(r, s) && s->lru_tail && s->lru_tail != e) {
        lsf_dkey_free(r, s, s->lru_tail);
        lsf_counter_add(r->c_evicted, 1);
    }
    return e;
}

void lsf_dkey_expire(lsf_detrun *r, lsf_dshard *s, int64_t wm_ns, int max)
{
    for (int i = 0; i < max && s->lru_tail; i++) {
        lsf_dentry *e = s->lru_tail;
        /* a suppressed count waits for the key's next alert: keep it */
        if (!lsf_kind_idle(r, e, wm_ns) || e->quiet_until_ns > wm_ns || e->deadline_ns ||
            e->suppressed)
            return;
        lsf_dkey_free(r, s, e);
        lsf_counter_add(r->c_expired, 1);
    }
}

void lsf_dkey_exemplar(lsf_detrun *r, lsf_dshard *s, lsf_dentry *e, lsf_str text)
{
    uint32_t k = r->def.exemplars;
    if (!k || !text.len)
        return;
    if (!e->ex) {
        e->ex = calloc(k, sizeof(char *));
        if (!e->ex)
            lsf_die("out of memory");
        lsf_dkey_account(r, s, (int64_t)usable(e->ex));
    }
    uint32_t len = text.len < r->def.exemplar_bytes ? text.len : r->def.exemplar_bytes;
    char *slot = e->ex[e->exhead];
    int64_t delta = -(int64_t)usable(slot);
    slot = realloc(slot, len + 1);
    if (!slot)
        lsf_die("out of memory (exemplar)");
    memcpy(slot, text.ptr, len);
    slot[len] = 0;
    e->ex[e->exhead] = slot;
    delta += (int64_t)usable(slot);
    lsf_dkey_account(r, s, delta);
    e->exhead = (uint8_t)((e->exhead + 1) % k);
    if (e->nex < k)
        e->nex++;
}

void lsf_dkey_reset(lsf_detrun *r, lsf_dshard *s, lsf_dentry *e)
{
    free_exemplars(r, s, e);
    lsf_kind_reset(r, s, e);
    e->n = 0;
    e->max_score = -1;
}

void lsf_dshard_free(lsf_detrun *r, lsf_dshard *s)
{
    while (s->lru_head)
        lsf_dkey_free(r, s, s->lru_head);
    lsf_dkey_account(r, s, -(int64_t)usable(s->tab));
    free(s->tab);
    free(s->heap);
    memset(s, 0, sizeof(*s));
}
