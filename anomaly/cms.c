/* cms.c - count-min sketch with conservative update.
 *
 * Design essay. The count-min sketch (Cormode & Muthukrishnan, "An improved
 * data stream summary: the count-min sketch and its applications", J.
 * Algorithms 2005) keeps d rows of w counters; an item adds to one counter
 * per row, chosen by a per-row hash, and its estimate is the minimum over
 * its d counters. Collisions only ever add, so the estimate never
 * undercounts, and with w = ceil(e / eps) and d = ceil(ln(1 / delta)) it
 * overcounts by more than eps * N (N = total of all adds) with probability
 * at most delta, whatever the stream. Memory is fixed up front: counting
 * (source, template) pairs for every source costs the same whether there are
 * ten sources or a million.
 *
 * Conservative update (Estan & Varghese, "New directions in traffic
 * measurement and accounting", SIGCOMM 2002) raises each of the item's
 * counters only up to (old estimate + n), never past it; the estimate keeps
 * its guarantees and the overcount of rare items (what a "rare template"
 * detector asks about) drops several-fold on skewed streams. The d row
 * positions come from one 64-bit hash split in two halves, h1 + i * h2
 * (Kirsch & Mitzenmacher, "Less hashing, same performance", ESA 2006).
 * Counters saturate at 2^32 - 1.
 *
 * Threads: the caller owns each instance.
 */
#include <math.h>
#include <stdlib.h>

#include "anomaly/stats.h"
#include "core/log.h"

#define MAX_DEPTH 16 /* rows: delta down to e^-16 */

void lsf_cms_init(lsf_cms *c, double eps, double delta)
{
    if (!(eps > 0) || eps > 1)
        eps = 0.001;
    if (!(delta > 0) || delta >= 1)
        delta = 0.01;
    double w = ceil(exp(1) / eps), d = ceil(log(1 / delta));
    c->width = (uint32_t)(w < 16 ? 16 : w > (1u << 28) ? (1u << 28) : w);
    c->depth = (uint32_t)(d < 1 ? 1 : d > MAX_DEPTH ? MAX_DEPTH : d);
    c->wmul = UINT64_MAX / c->width + 1;
    c->total = 0;
    c->cnt = calloc((size_t)c->width * c->depth, sizeof(uint32_t));
    if (!c->cnt)
        lsf_die("out of memory (count-min sketch %ux%u)", c->width, c->depth);
}

void lsf_cms_free(lsf_cms *c)
{
    free(c->cnt);
    c->cnt = NULL;
}

/* Row `row`'s counter of an item: (h1 + row * h2) mod width, the remainder
 * taken by multiplication (Lemire, Kaser & Kurz, "Faster remainder by
 * direct computation", 2019: exact for 32-bit operands), as a division per
 * row was most of the cost of an update. */
static inline uint32_t pos(const lsf_cms *c, uint64_t hash, uint32_t row)
{
    uint32_t h1 = (uint32_t)hash, h2 = (uint32_t)(hash >> 32) | 1u;
    uint64_t frac = c->wmul * (uint32_t)(h1 + row * h2);
    return (uint32_t)(((unsigned __int128)frac * c->width) >> 64) + row * c->width;
}

/* The item's counter in every row, into at[], and the least of them (its
 * estimate). */
static inline uint32_t counters(const lsf_cms *c, uint64_t hash, uint32_t at[MAX_DEPTH])
{
    uint32_t m = UINT32_MAX;
    for (uint32_t r = 0; r < c->depth; r++) {
        at[r] = pos(c, hash, r);
        if (c->cnt[at[r]] < m)
            m = c->cnt[at[r]];
    }
    return m;
}

uint32_t lsf_cms_estimate(const lsf_cms *c, uint64_t hash)
{
    uint32_t at[MAX_DEPTH];
    return counters(c, hash, at);
}

void lsf_cms_prefetch(const lsf_cms *c, uint64_t hash)
{
    for (uint32_t r = 0; r < c->depth; r++)
        __builtin_prefetch(&c->cnt[pos(c, hash, r)], 1);
}

uint32_t lsf_cms_add(lsf_cms *c, uint64_t hash, uint32_t n, uint32_t *before)
{
    uint32_t at[MAX_DEPTH]; /* found once for the estimate and the update */
    uint32_t est = counters(c, hash, at);
    if (before)
        *before = est;
    uint64_t target = (uint64_t)est + n;
    if (target > UINT32_MAX)
        target = UINT32_MAX;
    for (uint32_t r = 0; r < c->depth; r++)
        if (c->cnt[at[r]] < target)
            c->cnt[at[r]] = (uint32_t)target;
    c->total += n;
    return (uint32_t)target;
}

size_t lsf_cms_bytes(const lsf_cms *c)
{
    return (size_t)c->width * c->depth * sizeof(uint32_t);
}

void lsf_cms_save(const lsf_cms *c, lsf_wbuf *w)
{
    lsf_wbuf_u32(w, c->width);
    lsf_wbuf_u32(w, c->depth);
    lsf_wbuf_u64(w, c->total);
    lsf_wbuf_put(w, c->cnt, lsf_cms_bytes(c));
}

int lsf_cms_load(lsf_cms *c, lsf_rbuf *r)
{
    uint32_t w = lsf_rbuf_u32(r), d = lsf_rbuf_u32(r);
    uint64_t total = lsf_rbuf_u64(r);
    const void *src = (w == c->width && d == c->depth) ? lsf_rbuf_view(r, lsf_cms_bytes(c)) : NULL;
    if (!src || r->bad) {
        r->bad = true;
        return -1;
    }
    memcpy(c->cnt, src, lsf_cms_bytes(c));
    c->total = total;
    return 0;
}
