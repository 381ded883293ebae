/* novelty.c - how far the current shape of a series is from anything seen.
 *
 * Design essay. Many incidents are not one wild value but a pattern the
 * series has never shown: a plateau at an unusual level, a sawtooth where
 * there was noise, a daily peak that does not come. Distance-based novelty
 * detection catches these without a model of what "normal" looks like: embed
 * the recent window as a vector and measure its distance to the nearest
 * vector of the past (Ramaswamy et al., "Efficient algorithms for mining
 * outliers from large data sets", SIGMOD 2000; Yeh et al.'s matrix profile,
 * ICDM 2016, where the distance of a subsequence to its nearest neighbour is
 * a "discord" score; Burnaev & Ishimtsev's KNN-CAD and Hampton's ARTime on
 * the Numenta benchmark apply the same idea online). Large nearest-neighbour
 * distance = novel shape.
 *
 * Here the caller embeds a window as a few piecewise aggregate means (PAA;
 * Keogh et al., "Dimensionality reduction for fast similarity search in large
 * time series databases", KAIS 2001) and this file keeps a ring of past
 * vectors and answers nearest-neighbour queries by brute force, eight vectors
 * at a time with vector arithmetic (stored dimension-major in blocks of 8),
 * abandoning a block half-way when all eight are already farther than the
 * best so far. The
 * caller inserts a window only once it no longer overlaps the query window,
 * so a shape is never its own neighbour ("trivial matches" in the matrix
 * profile literature). The ring forgets the oldest vectors; the memory is
 * cap * dims floats (2,048 * 8 * 4 = 64 KiB at the model's defaults), grown
 * by doubling so a key with little history holds little. The distance is
 * left in the series' units; tail.c ranks it against the series' own recent
 * distances, which is scale-free.
 *
 * Threads: the caller owns each instance.
 */
#include <math.h>
#include <stdbool.h>
#include <stdlib.h>

#include "anomaly/stats.h"
#include "core/log.h"

/* Vectors are stored in blocks of LANES, dimension-major inside a block
 * (block b, dimension d, lane l at mem[(b * dims + d) * LANES + l]), so one
 * pass over a block computes LANES distances with vector arithmetic; unused
 * lanes hold a far-away value so they never win. */
#define LANES 8
#define FAR 1e18f

typedef float vlanes __attribute__((vector_size(LANES * sizeof(float))));

void lsf_novelty_init(lsf_novelty *nv, uint8_t dims, uint32_t cap)
{
    memset(nv, 0, sizeof(*nv));
    nv->dims = dims > LSF_NOVELTY_MAX_DIMS ? LSF_NOVELTY_MAX_DIMS : dims ? dims : 1;
    nv->cap = cap ? cap : 1;
}

void lsf_novelty_free(lsf_novelty *nv)
{
    free(nv->mem);
    nv->mem = NULL;
    nv->alloc = nv->n = nv->head = 0;
}

static float *slot_ptr(const lsf_novelty *nv, uint32_t i, unsigned d)
{
    return nv->mem + ((size_t)(i / LANES) * nv->dims + d) * LANES + i % LANES;
}

typedef int32_t vmask __attribute__((vector_size(LANES * sizeof(int32_t))));

/* True when some lane of acc is below best (no lane extraction). By pointer:
 * a 32-byte vector passed by value has a different ABI with and without AVX,
 * which clang (make fuzz) rejects. */
static inline bool any_below(const vlanes *acc, const vlanes *best)
{
    vmask m = *acc < *best;
    uint64_t w[LANES / 2];
    memcpy(w, &m, sizeof(w));
    uint64_t o = 0;
    for (unsigned i = 0; i < LANES / 2; i++)
        o |= w[i];
    return o != 0;
}

/* acc += squared differences of q and a block's vectors, dimensions [from, to). */
static inline void add_squares(vlanes *acc, const vlanes *q, const float *base, unsigned from,
                               unsigned to)
{
    for (unsigned d = from; d < to; d++) {
        vlanes v;
        memcpy(&v, base + d * LANES, sizeof(v));
        vlanes e = q[d] - v;
        *acc += e * e;
    }
}

/* Built twice where the compiler can (AVX2 and baseline), picked at load. */
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
__attribute__((target_clones("avx2", "default")))
#endif
double lsf_novelty_nn(const lsf_novelty *nv, const float *f)
{
    const unsigned dims = nv->dims;
    float best = INFINITY;
    vlanes bestv;
    for (unsigned l = 0; l < LANES; l++)
        bestv[l] = INFINITY;
    uint32_t blocks = (nv->n + LANES - 1) / LANES;
    vlanes q[LSF_NOVELTY_MAX_DIMS];
    for (unsigned d = 0; d < dims; d++)
        for (unsigned l = 0; l < LANES; l++)
            q[d][l] = f[d];
    const unsigned half = dims / 2;
    for (uint32_t b = 0; b < blocks; b++) {
        const float *base = nv->mem + (size_t)b * dims * LANES;
        vlanes acc = {0};
        add_squares(&acc, q, base, 0, half);
        /* abandon the block when every lane is already past the best */
        if (!any_below(&acc, &bestv))
            continue;
        add_squares(&acc, q, base, half, dims);
        if (!any_below(&acc, &bestv))
            continue;
        for (unsigned l = 0; l < LANES; l++)
            best = acc[l] < best ? acc[l] : best;
        for (unsigned l = 0; l < LANES; l++)
            bestv[l] = best;
    }
    return isinf(best) ? INFINITY : sqrt((double)best);
}

static void put(lsf_novelty *nv, uint32_t i, const float *f)
{
    for (unsigned d = 0; d < nv->dims; d++)
        *slot_ptr(nv, i, d) = f[d];
}

void lsf_novelty_add(lsf_novelty *nv, const float *f)
{
    if (nv->n < nv->cap) {
        if (nv->n == nv->alloc) {
            uint32_t na = nv->alloc ? nv->alloc * 2 : 16;
            if (na > nv->cap)
                na = nv->cap;
            na = (na + LANES - 1) / LANES * LANES;
            size_t floats = (size_t)na * nv->dims;
            float *m = realloc(nv->mem, floats * sizeof(float));
            if (!m)
                lsf_die("out of memory (novelty memory of %u vectors)", na);
            for (size_t k = (size_t)nv->alloc * nv->dims; k < floats; k++)
                m[k] = FAR;
            nv->mem = m;
            nv->alloc = na;
        }
        put(nv, nv->n++, f);
        return;
    }
    put(nv, nv->head, f);
    nv->head = (nv->head + 1) % nv->cap;
}

size_t lsf_novelty_bytes(const lsf_novelty *nv)
{
    return (size_t)nv->alloc * nv->dims * sizeof(float);
}

void lsf_novelty_save(const lsf_novelty *nv, lsf_wbuf *w)
{
    lsf_wbuf_u8(w, nv->dims);
    lsf_wbuf_u32(w, nv->cap);
    lsf_wbuf_u32(w, nv->n);
    lsf_wbuf_u32(w, nv->head);
    for (uint32_t i = 0; i < nv->n; i++)
        for (unsigned d = 0; d < nv->dims; d++)
            lsf_wbuf_put(w, slot_ptr(nv, i, d), sizeof(float));
}

int lsf_novelty_load(lsf_novelty *nv, lsf_rbuf *r)
{
    lsf_novelty_free(nv);
    uint8_t dims = lsf_rbuf_u8(r);
    uint32_t cap = lsf_rbuf_u32(r), n = lsf_rbuf_u32(r), head = lsf_rbuf_u32(r);
    if (dims != nv->dims || cap != nv->cap || n > cap || (n < cap ? head != 0 : head >= cap))
        r->bad = true;
    const float *src = r->bad ? NULL : lsf_rbuf_view(r, (size_t)n * dims * sizeof(float));
    if (!src || r->bad) {
        r->bad = true;
        return -1;
    }
    float f[LSF_NOVELTY_MAX_DIMS];
    for (uint32_t i = 0; i < n; i++) {
        memcpy(f, src + (size_t)i * dims, dims * sizeof(float));
        for (unsigned d = 0; d < dims; d++)
            if (!isfinite(f[d])) {
                lsf_novelty_free(nv);
                r->bad = true;
                return -1;
            }
        lsf_novelty_add(nv, f);
    }
    nv->head = head;
    return 0;
}
