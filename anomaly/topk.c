/* topk.c - space-saving heavy hitters.
 *
 * Design essay. Space-saving (Metwally, Agrawal & El Abbadi, "Efficient
 * computation of frequent and top-k elements in data streams", ICDT 2005)
 * monitors k items with a counter each. A monitored item's counter is
 * incremented; an unmonitored item replaces the item with the smallest
 * counter and inherits that counter (+1), remembering the inherited part as
 * its error. Every item whose true frequency exceeds N / k is guaranteed to
 * be monitored, each counter overestimates by at most its recorded error
 * (and by at most N / k), and on skewed (Zipf-like) streams - which log
 * sources, templates and client addresses all are - the top entries are the
 * true top items with small errors. Berinde et al. ("Space-optimal heavy
 * hitters with strong error bounds", PODS 2009) show the bound is tight for
 * counter-based summaries.
 *
 * The "stream summary" of the paper is a linked structure of buckets; we use
 * a binary min-heap on the counts (O(log k) per update, the minimum at the
 * root) plus an open-addressing index from item id to heap slot, which is
 * simpler and cache-friendly for the k of a few dozen to a few thousand we
 * need; up to 8 entries a linear scan beats any index and there is none.
 * Memory: k * 24 bytes of entries plus, past 8, 2k-4k slots of index.
 *
 * Threads: the caller owns each instance.
 */
#include <stdlib.h>

#include "anomaly/hash.h"
#include "anomaly/stats.h"
#include "core/log.h"

#define SMALL_K 8 /* up to this many entries: linear search, no index */

void lsf_topk_init_in(lsf_topk *t, uint32_t k, lsf_topk_entry *heap)
{
    memset(t, 0, sizeof(*t));
    t->k = k ? k : 1;
    t->heap = heap;
    t->heap_given = true;
    memset(heap, 0, t->k * sizeof(*heap));
    if (t->k > SMALL_K) {
        t->index_cap = 8;
        while (t->index_cap < 2 * t->k)
            t->index_cap *= 2;
        t->index = calloc(t->index_cap, sizeof(*t->index));
        if (!t->index)
            lsf_die("out of memory (top-%u summary)", k);
    }
}

void lsf_topk_init(lsf_topk *t, uint32_t k)
{
    lsf_topk_entry *heap = calloc(k ? k : 1, sizeof(*heap));
    if (!heap)
        lsf_die("out of memory (top-%u summary)", k);
    lsf_topk_init_in(t, k, heap);
    t->heap_given = false; /* ours to free */
}

void lsf_topk_free(lsf_topk *t)
{
    if (!t->heap_given)
        free(t->heap);
    free(t->index);
    t->heap = NULL;
    t->index = NULL;
    t->n = 0;
}

static uint32_t home(const lsf_topk *t, uint64_t id)
{
    return (uint32_t)lsf_mix64(id) & (t->index_cap - 1);
}

/* Heap slot of id, or -1 (small summaries: a scan). */
static int64_t slot_small(const lsf_topk *t, uint64_t id)
{
    for (uint32_t s = 0; s < t->n; s++)
        if (t->heap[s].id == id)
            return s;
    return -1;
}

/* Index position holding id, or -1. */
static int64_t find(const lsf_topk *t, uint64_t id)
{
    if (!t->index)
        return -1;
    for (uint32_t i = home(t, id), probes = 0; probes < t->index_cap;
         i = (i + 1) & (t->index_cap - 1), probes++) {
        uint32_t s = t->index[i];
        if (!s)
            return -1;
        if (t->heap[s - 1].id == id)
            return i;
    }
    return -1;
}

/* Inserts id -> slot; returns the index position used (0 without an index). */
static uint32_t index_put(lsf_topk *t, uint64_t id, uint32_t slot)
{
    if (!t->index)
        return 0;
    uint32_t i = home(t, id);
    while (t->index[i])
        i = (i + 1) & (t->index_cap - 1);
    t->index[i] = slot + 1;
    return i;
}

/* Removes index position i, shifting later entries of the run back. */
static void index_del(lsf_topk *t, uint32_t i)
{
    uint32_t mask = t->index_cap - 1, j = i;
    t->index[i] = 0;
    for (;;) {
        j = (j + 1) & mask;
        if (!t->index[j])
            return;
        uint32_t h = home(t, t->heap[t->index[j] - 1].id);
        /* move j to i unless its home lies cyclically in (i, j] */
        bool stays = i <= j ? (h > i && h <= j) : (h > i || h <= j);
        if (!stays) {
            t->index[i] = t->index[j];
            t->index[j] = 0;
            i = j;
        }
    }
}

/* heap[dst] = heap[src], keeping the moved item's index entry right. */
static void move(lsf_topk *t, uint32_t dst, uint32_t src)
{
    int64_t i = find(t, t->heap[src].id);
    t->heap[dst] = t->heap[src];
    if (i >= 0)
        t->index[i] = dst + 1;
}

/* The entry at slot s (index position ipos) moves down to its place. */
static void sift_down(lsf_topk *t, uint32_t s, uint32_t ipos)
{
    lsf_topk_entry e = t->heap[s];
    for (;;) {
        uint32_t c = 2 * s + 1;
        if (c >= t->n)
            break;
        if (c + 1 < t->n && t->heap[c + 1].count < t->heap[c].count)
            c++;
        if (t->heap[c].count >= e.count)
            break;
        move(t, s, c);
        s = c;
    }
    t->heap[s] = e;
    if (t->index)
        t->index[ipos] = s + 1;
}

static void sift_up(lsf_topk *t, uint32_t s, uint32_t ipos)
{
    lsf_topk_entry e = t->heap[s];
    while (s > 0) {
        uint32_t p = (s - 1) / 2;
        if (t->heap[p].count <= e.count)
            break;
        move(t, s, p);
        s = p;
    }
    t->heap[s] = e;
    if (t->index)
        t->index[ipos] = s + 1;
}

bool lsf_topk_add(lsf_topk *t, uint64_t id, uint64_t n, lsf_topk_entry *evicted)
{
    if (!t->index) {
        int64_t s = slot_small(t, id);
        if (s >= 0) {
            t->heap[s].count += n;
            sift_down(t, (uint32_t)s, 0);
            return false;
        }
    } else {
        int64_t i = find(t, id);
        if (i >= 0) {
            uint32_t s = t->index[i] - 1;
            t->heap[s].count += n;
            sift_down(t, s, (uint32_t)i);
            return false;
        }
    }
    if (t->n < t->k) {
        uint32_t s = t->n++;
        t->heap[s] = (lsf_topk_entry){id, n, 0};
        sift_up(t, s, index_put(t, id, s));
        return false;
    }
    /* replace the minimum (the root), inheriting its count as error */
    int64_t old = find(t, t->heap[0].id);
    if (old >= 0)
        index_del(t, (uint32_t)old);
    if (evicted)
        *evicted = t->heap[0];
    uint64_t min = t->heap[0].count;
    t->heap[0] = (lsf_topk_entry){id, min + n, min};
    sift_down(t, 0, index_put(t, id, 0));
    return true;
}

static int by_count_desc(const void *a, const void *b)
{
    const lsf_topk_entry *x = a, *y = b;
    return x->count < y->count ? 1 : x->count > y->count ? -1 : (x->id > y->id) - (x->id < y->id);
}

uint32_t lsf_topk_list(const lsf_topk *t, lsf_topk_entry *out, uint32_t max)
{
    lsf_topk_entry small[SMALL_K];
    lsf_topk_entry *tmp = t->n <= SMALL_K ? small : malloc(t->n * sizeof(*tmp));
    if (!tmp)
        lsf_die("out of memory (top-k list)");
    memcpy(tmp, t->heap, t->n * sizeof(*tmp));
    qsort(tmp, t->n, sizeof(*tmp), by_count_desc);
    uint32_t m = t->n < max ? t->n : max;
    memcpy(out, tmp, m * sizeof(*tmp));
    if (tmp != small)
        free(tmp);
    return m;
}

const lsf_topk_entry *lsf_topk_find(const lsf_topk *t, uint64_t id)
{
    if (!t->index) {
        int64_t s = slot_small(t, id);
        return s >= 0 ? &t->heap[s] : NULL;
    }
    int64_t i = find(t, id);
    return i >= 0 ? &t->heap[t->index[i] - 1] : NULL;
}

uint64_t lsf_topk_count(const lsf_topk *t, uint64_t id)
{
    const lsf_topk_entry *e = lsf_topk_find(t, id);
    return e ? e->count : 0;
}

size_t lsf_topk_bytes(const lsf_topk *t)
{
    return (t->heap_given ? 0 : t->k * sizeof(*t->heap)) +
           (size_t)t->index_cap * sizeof(*t->index);
}

void lsf_topk_save(const lsf_topk *t, lsf_wbuf *w)
{
    lsf_wbuf_u32(w, t->k);
    lsf_wbuf_u32(w, t->n);
    lsf_wbuf_put(w, t->heap, t->n * sizeof(*t->heap));
}

int lsf_topk_load(lsf_topk *t, lsf_rbuf *r)
{
    uint32_t k = lsf_rbuf_u32(r), n = lsf_rbuf_u32(r);
    if (k != t->k || n > k)
        r->bad = true;
    const lsf_topk_entry *src = r->bad ? NULL : lsf_rbuf_view(r, n * sizeof(*src));
    if (t->index)
        memset(t->index, 0, t->index_cap * sizeof(*t->index));
    t->n = 0;
    if (!src) {
        r->bad = true;
        return -1;
    }
    for (uint32_t i = 0; i < n; i++) {
        lsf_topk_entry e;
        memcpy(&e, &src[i], sizeof(e));
        if (e.err > e.count || lsf_topk_find(t, e.id)) {
            if (t->index)
                memset(t->index, 0, t->index_cap * sizeof(*t->index));
            t->n = 0;
            r->bad = true;
            return -1;
        }
        t->heap[t->n] = e;
        uint32_t ipos = index_put(t, e.id, t->n);
        t->n++;
        sift_up(t, t->n - 1, ipos);
    }
    return 0;
}
