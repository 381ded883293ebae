/* firstseen.c - values seen for a key, with a learning period.
 *
 * Design essay. "A user logs in from a host they have never used", "a
 * process starts talking to a new port": first-seen detection keeps the set
 * of values observed for a key and flags a value that is not in it. Two
 * things make it usable. First, a learning period: every value is new at the
 * start, so values first seen within learn_ns of the key's first observation
 * (event time, so a replayed file learns exactly as live traffic would) are
 * recorded silently. Second, calibration: a new user on a host that sees a
 * new user every hour is not news, a new user on a host that has seen the
 * same three for a month is. The Good-Turing estimate (Good, "The population
 * frequencies of species and the estimation of population parameters",
 * Biometrika 1953) gives the probability that the next observation is a
 * value never seen before as N1 / N, N1 the number of values seen exactly
 * once and N the number of observations; we use (N1 + 1) / (N + 2) so that
 * a key with no history is never certain either way. The detector turns
 * that probability into its score, the same way tail.c's p-values become
 * scores for the numeric detectors.
 *
 * The set stores 64-bit hashes, not values (8 bytes a value whatever its
 * length; two values collide with probability ~n^2 / 2^65), in an open-
 * addressing table at most half full, grown by doubling up to
 * 2 * max_values slots. The lowest bit of a slot marks "seen more than
 * once", which is all Good-Turing needs. A full set stops remembering new
 * values and says so (LSF_SEEN_FULL): such a key is high-cardinality and a
 * new value on it carries little information anyway.
 *
 * The slots may come from the caller's memory (lsf_firstseen_init_in): the
 * anomaly stage gives its sets the key records' huge-page slab, since one
 * slot is read at random per event across tens of megabytes, and in 4 KiB
 * pages nearly every such read also missed the TLB.
 *
 * Threads: the caller owns each instance.
 */
#include <stdlib.h>

#include "anomaly/hash.h"
#include "anomaly/stats.h"
#include "core/log.h"

void lsf_firstseen_init_in(lsf_firstseen *f, uint32_t max_values, const lsf_mem *mem)
{
    memset(f, 0, sizeof(*f));
    f->max_values = max_values ? max_values : 1;
    f->mem = mem;
}

void lsf_firstseen_init(lsf_firstseen *f, uint32_t max_values)
{
    lsf_firstseen_init_in(f, max_values, NULL);
}

/* cap zeroed slots, from the set's memory. */
static uint64_t *slots_new(const lsf_firstseen *f, uint32_t cap)
{
    size_t n = (size_t)cap * sizeof(uint64_t);
    uint64_t *p = f->mem ? f->mem->alloc(f->mem->ctx, n) : calloc(cap, sizeof(uint64_t));
    if (!p)
        lsf_die("out of memory (first-seen set of %u slots)", cap);
    if (f->mem)
        memset(p, 0, n);
    return p;
}

static void slots_free(const lsf_firstseen *f, uint64_t *p, uint32_t cap)
{
    if (f->mem && p)
        f->mem->release(f->mem->ctx, p, (size_t)cap * sizeof(uint64_t));
    else
        free(p);
}

void lsf_firstseen_free(lsf_firstseen *f)
{
    slots_free(f, f->slot, f->cap);
    f->slot = NULL;
    f->cap = f->n = 0;
}

/* Stored form of a hash: low bit clear (it is the "seen twice" mark), never 0. */
static inline uint64_t keyof(uint64_t hash)
{
    uint64_t k = hash & ~1ULL;
    return k ? k : 2;
}

static uint64_t *lookup(const lsf_firstseen *f, uint64_t k)
{
    uint32_t mask = f->cap - 1;
    for (uint32_t i = (uint32_t)lsf_mix64(k) & mask;; i = (i + 1) & mask) {
        uint64_t *s = &f->slot[i];
        if (!*s || (*s & ~1ULL) == k)
            return s;
    }
}

static void grow(lsf_firstseen *f)
{
    uint32_t ncap = f->cap ? f->cap * 2 : 16;
    uint64_t *old = f->slot;
    uint32_t ocap = f->cap;
    f->slot = slots_new(f, ncap);
    f->cap = ncap;
    for (uint32_t i = 0; i < ocap; i++)
        if (old[i])
            *lookup(f, old[i] & ~1ULL) = old[i];
    slots_free(f, old, ocap);
}

enum lsf_seen lsf_firstseen_add(lsf_firstseen *f, uint64_t hash, int64_t time_ns, int64_t learn_ns,
                                double *p_new)
{
    if (p_new)
        *p_new = (f->singletons + 1.0) / ((double)f->obs + 2.0);
    if (f->obs == 0)
        f->start_ns = time_ns;
    f->obs++;
    uint64_t k = keyof(hash);
    if (f->cap) {
        uint64_t *s = lookup(f, k);
        if (*s) {
            if (!(*s & 1)) {
                *s |= 1;
                f->singletons--;
            }
            return LSF_SEEN_KNOWN;
        }
    }
    bool learning = time_ns < f->start_ns + learn_ns;
    if (f->n >= f->max_values)
        return learning ? LSF_SEEN_LEARNING : LSF_SEEN_FULL;
    if (2 * (f->n + 1) > f->cap)
        grow(f);
    *lookup(f, k) = k;
    f->n++;
    f->singletons++;
    return learning ? LSF_SEEN_LEARNING : LSF_SEEN_NEW;
}

void lsf_firstseen_prefetch(const lsf_firstseen *f, uint64_t hash)
{
    if (f->cap)
        __builtin_prefetch(&f->slot[(uint32_t)lsf_mix64(keyof(hash)) & (f->cap - 1)]);
}

size_t lsf_firstseen_bytes(const lsf_firstseen *f)
{
    return (size_t)f->cap * sizeof(uint64_t);
}

void lsf_firstseen_save(const lsf_firstseen *f, lsf_wbuf *w)
{
    lsf_wbuf_u32(w, f->n);
    lsf_wbuf_u64(w, f->obs);
    lsf_wbuf_u64(w, (uint64_t)f->start_ns);
    for (uint32_t i = 0; i < f->cap; i++)
        if (f->slot[i])
            lsf_wbuf_u64(w, f->slot[i]);
}

int lsf_firstseen_load(lsf_firstseen *f, lsf_rbuf *r)
{
    lsf_firstseen_free(f); /* keeps f->mem */
    f->singletons = 0;
    uint32_t n = lsf_rbuf_u32(r);
    f->obs = lsf_rbuf_u64(r);
    f->start_ns = (int64_t)lsf_rbuf_u64(r);
    if (n > f->max_values || n > f->obs)
        r->bad = true;
    for (uint32_t i = 0; i < n && !r->bad; i++) {
        uint64_t v = lsf_rbuf_u64(r);
        if ((v & ~1ULL) == 0 || r->bad) {
            r->bad = true;
            break;
        }
        if (2 * (f->n + 1) > f->cap)
            grow(f);
        uint64_t *s = lookup(f, v & ~1ULL);
        if (*s) { /* duplicate: not something we wrote */
            r->bad = true;
            break;
        }
        *s = v;
        f->n++;
        f->singletons += !(v & 1);
    }
    if (r->bad) {
        lsf_firstseen_free(f);
        f->obs = 0;
        f->singletons = 0;
        return -1;
    }
    return 0;
}
