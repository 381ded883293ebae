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
 * vectors and answers nearest-neighbour queries by brute force with early
 * abandoning (stop summing a candidate once it exceeds the best so far). The
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
#include <stdlib.h>

#include "anomaly/stats.h"
#include "core/log.h"

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

double lsf_novelty_nn(const lsf_novelty *nv, const float *f)
{
    const unsigned d = nv->dims;
    float best = INFINITY;
    const float *v = nv->mem;
    for (uint32_t i = 0; i < nv->n; i++, v += d) {
        float s = 0;
        unsigned k = 0;
        /* two dimensions at a time, abandoning once past the best */
        for (; k + 1 < d; k += 2) {
            float e0 = f[k] - v[k], e1 = f[k + 1] - v[k + 1];
            s += e0 * e0 + e1 * e1;
            if (s >= best)
                break;
        }
        if (k + 1 < d)
            continue;
        if (k < d) {
            float e = f[k] - v[k];
            s += e * e;
        }
        if (s < best)
            best = s;
    }
    return isinf(best) ? INFINITY : sqrt((double)best);
}

void lsf_novelty_add(lsf_novelty *nv, const float *f)
{
    if (nv->n < nv->cap) {
        if (nv->n == nv->alloc) {
            uint32_t na = nv->alloc ? nv->alloc * 2 : 16;
            if (na > nv->cap)
                na = nv->cap;
            float *m = realloc(nv->mem, (size_t)na * nv->dims * sizeof(float));
            if (!m)
                lsf_die("out of memory (novelty memory of %u vectors)", na);
            nv->mem = m;
            nv->alloc = na;
        }
        memcpy(nv->mem + (size_t)nv->n * nv->dims, f, nv->dims * sizeof(float));
        nv->n++;
        return;
    }
    memcpy(nv->mem + (size_t)nv->head * nv->dims, f, nv->dims * sizeof(float));
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
    lsf_wbuf_put(w, nv->mem, (size_t)nv->n * nv->dims * sizeof(float));
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
    if (n) {
        nv->mem = malloc((size_t)n * dims * sizeof(float));
        if (!nv->mem)
            lsf_die("out of memory (novelty memory of %u vectors)", n);
        memcpy(nv->mem, src, (size_t)n * dims * sizeof(float));
        for (size_t i = 0; i < (size_t)n * dims; i++)
            if (!isfinite(nv->mem[i])) {
                lsf_novelty_free(nv);
                r->bad = true;
                return -1;
            }
    }
    nv->alloc = nv->n = n;
    nv->head = head;
    return 0;
}
