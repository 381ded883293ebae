/* hll.c - HyperLogLog distinct counting.
 *
 * Design essay. HyperLogLog (Flajolet, Fusy, Gandouet & Meunier, "HyperLogLog:
 * the analysis of a near-optimal cardinality estimation algorithm", AofA
 * 2007) counts distinct items in m = 2^p small registers: each item's hash
 * picks a register with its first p bits and offers the position of the
 * first 1 bit among the remaining 64 - p bits; the register keeps the
 * largest offer. Many distinct items make long runs of leading zeros likely,
 * so the registers' harmonic mean of 2^-value estimates the cardinality with
 * a standard error of about 1.04 / sqrt(m) (1.6 % at p = 12, 4 KiB). Two
 * sketches of the same precision merge by taking register-wise maxima, and
 * adding an item twice changes nothing, which is what makes the sketch fit
 * for distinct counts per key and per interval.
 *
 * The original estimator is biased for small cardinalities and needs linear
 * counting below 2.5 m; HLL++ (Heule, Nunkesser & Hall, EDBT 2013) patches
 * the transition with empirically measured bias tables. We use Ertl's
 * "improved raw estimator" instead ("New cardinality estimation algorithms
 * for HyperLogLog sketches", 2017), which treats the register histogram with
 * the exact expectations of the empty (0) and saturated (64 - p + 1)
 * registers, is nearly unbiased from 0 to far beyond 2^64 / m, and needs no
 * tables. Registers are bytes (simple and fast; a 6-bit packing would save a
 * quarter of the memory).
 *
 * Threads: the caller owns each instance.
 */
#include <math.h>
#include <stdlib.h>

#include "anomaly/stats.h"
#include "core/log.h"

void lsf_hll_init(lsf_hll *h, int p)
{
    if (p < 4)
        p = 4;
    if (p > 18)
        p = 18;
    h->p = (uint8_t)p;
    h->reg = calloc((size_t)1 << p, 1);
    if (!h->reg)
        lsf_die("out of memory (HyperLogLog of precision %d)", p);
}

void lsf_hll_free(lsf_hll *h)
{
    free(h->reg);
    h->reg = NULL;
}

void lsf_hll_clear(lsf_hll *h)
{
    memset(h->reg, 0, (size_t)1 << h->p);
}

void lsf_hll_add(lsf_hll *h, uint64_t hash)
{
    unsigned q = 64u - h->p;
    uint64_t idx = hash >> q;
    uint64_t w = hash << h->p; /* the remaining q bits, left-aligned */
    unsigned rho = w ? (unsigned)__builtin_clzll(w) + 1 : q + 1;
    if (rho > q + 1)
        rho = q + 1;
    if (h->reg[idx] < rho)
        h->reg[idx] = (uint8_t)rho;
}

/* sigma(x) = x + sum_{k>=1} x^(2^k) 2^(k-1) */
static double sigma(double x)
{
    if (x == 1)
        return INFINITY;
    double y = 1, z = x, zp;
    do {
        x *= x;
        zp = z;
        z += x * y;
        y += y;
    } while (z != zp);
    return z;
}

/* tau(x) = (1 - x - sum_{k>=1} (1 - x^(2^-k))^2 2^-k) / 3 */
static double tau(double x)
{
    if (x == 0 || x == 1)
        return 0;
    double y = 1, z = 1 - x, zp;
    do {
        x = sqrt(x);
        zp = z;
        y *= 0.5;
        z -= (1 - x) * (1 - x) * y;
    } while (z != zp);
    return z / 3;
}

double lsf_hll_count(const lsf_hll *h)
{
    unsigned q = 64u - h->p;
    double m = (double)((size_t)1 << h->p);
    uint32_t c[66] = {0};
    for (size_t i = 0; i < ((size_t)1 << h->p); i++)
        c[h->reg[i]]++;
    double z = m * tau(1 - c[q + 1] / m);
    for (unsigned k = q; k >= 1; k--)
        z = 0.5 * (z + c[k]);
    z += m * sigma(c[0] / m);
    if (isinf(z))
        return 0;
    return m * m / (2 * log(2)) / z;
}

int lsf_hll_merge(lsf_hll *dst, const lsf_hll *src)
{
    if (dst->p != src->p)
        return -1;
    for (size_t i = 0; i < ((size_t)1 << dst->p); i++)
        if (dst->reg[i] < src->reg[i])
            dst->reg[i] = src->reg[i];
    return 0;
}

size_t lsf_hll_bytes(const lsf_hll *h)
{
    return h->reg ? (size_t)1 << h->p : 0;
}

void lsf_hll_save(const lsf_hll *h, lsf_wbuf *w)
{
    lsf_wbuf_u8(w, h->p);
    lsf_wbuf_put(w, h->reg, (size_t)1 << h->p);
}

int lsf_hll_load(lsf_hll *h, lsf_rbuf *r)
{
    uint8_t p = lsf_rbuf_u8(r);
    const uint8_t *src = p == h->p ? lsf_rbuf_view(r, (size_t)1 << p) : NULL;
    if (!src)
        r->bad = true;
    for (size_t i = 0; !r->bad && i < ((size_t)1 << p); i++)
        if (src[i] > 64 - p + 1)
            r->bad = true;
    if (r->bad) {
        lsf_hll_clear(h);
        return -1;
    }
    memcpy(h->reg, src, (size_t)1 << p);
    return 0;
}
