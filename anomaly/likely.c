/* likely.c - anomaly likelihood: is the recent level of a raw anomaly score
 * unusual for this series?
 *
 * Design essay. A raw anomaly score (here 1 - p of the series model's
 * measures) says how unusual one observation is. Numenta's "anomaly
 * likelihood" (Ahmad, Lavin, Purdy & Agha, "Unsupervised real-time anomaly
 * detection for streaming data", Neurocomputing 2017, section 4.2) asks a
 * second question: is the *recent* raw score unusual for this series? It
 * averages the raw scores over a short window (10 observations in the
 * paper), models the long-run distribution of that average as a normal
 * fitted over a long window, and reports the normal's upper tail at the
 * current average. A series that is noisy all the time has a high long-run
 * average, so one more unusual point does not stand out; a quiet series that
 * starts producing unusual points does. This is what gives HTM its low
 * false-positive profile on the Numenta benchmark.
 *
 * Here the short window is a ring of `short_len` floats (at most
 * LSF_LIKELY_MAX_SHORT) and the long-run fit is an EWMA mean and variance
 * of the short-term averages (ewma.c) with a half-life in observations,
 * instead of the paper's exact window of 8,640 values: the same estimate in
 * 40 bytes instead of 34 KiB per key (on NAB, long horizons of 512 to
 * 8,640 observations scored within about 2 points of each other). The
 * probability for an observation uses the fit made before it (no look-
 * ahead). The spread has a floor (`LSF_LIKELY_MIN_SD`) so that a series
 * whose raw score never moved does not turn the first wobble into an
 * astronomically small probability. Memory: 4 * short_len + ~48 bytes; an
 * update is O(short_len) (the short sum is recomputed, so no drift).
 *
 * How the series model uses it (model.c): as a gate, not as the score. The
 * calibrated tail ranks stay the score; a report-level observation whose
 * short-term raw average is not above its long-run average (likelihood
 * p >= 0.5) reports half its evidence, like the cooldown. Used as the score
 * itself (as HTM does), the normal fit lost the calibration across series
 * and scored far lower on NAB (docs/anomaly.md).
 *
 * Threads: the caller owns each instance.
 */
#include <math.h>

#include "anomaly/stats.h"

#define LSF_LIKELY_MIN_SD 0.05

void lsf_likely_init(lsf_likely *l, uint32_t short_len, double long_half_life)
{
    memset(l, 0, sizeof(*l));
    if (short_len < 1)
        short_len = 1;
    if (short_len > LSF_LIKELY_MAX_SHORT)
        short_len = LSF_LIKELY_MAX_SHORT;
    l->k = (uint8_t)short_len;
    lsf_ewma_init(&l->fit, long_half_life);
}

/* Mean of the short ring. */
static double short_mean(const lsf_likely *l)
{
    double s = 0;
    for (uint32_t i = 0; i < l->n; i++)
        s += l->ring[i];
    return l->n ? s / l->n : 0;
}

double lsf_likely_add(lsf_likely *l, double raw, uint64_t warmup)
{
    if (!isfinite(raw))
        return 1;
    if (l->n < l->k)
        l->ring[l->n++] = (float)raw;
    else {
        l->ring[l->head] = (float)raw;
        l->head = (uint8_t)((l->head + 1) % l->k);
    }
    if (l->n < l->k)
        return 1;
    double m = short_mean(l);
    double p = 1;
    if (l->fit.n >= warmup && l->fit.n > 0) {
        double sd = lsf_ewma_sd(&l->fit);
        if (sd < LSF_LIKELY_MIN_SD)
            sd = LSF_LIKELY_MIN_SD;
        p = 0.5 * erfc((m - l->fit.mean) / sd / M_SQRT2);
    }
    lsf_ewma_add(&l->fit, m);
    return p;
}

bool lsf_likely_ready(const lsf_likely *l, uint64_t warmup)
{
    return l->n == l->k && l->fit.n >= warmup && l->fit.n > 0;
}

void lsf_likely_save(const lsf_likely *l, lsf_wbuf *w)
{
    lsf_wbuf_u8(w, l->k);
    lsf_wbuf_u8(w, l->n);
    lsf_wbuf_u8(w, l->head);
    lsf_wbuf_put(w, l->ring, sizeof(float) * l->n);
    lsf_wbuf_put(w, &l->fit, sizeof(l->fit));
}

int lsf_likely_load(lsf_likely *l, lsf_rbuf *r)
{
    uint8_t k = lsf_rbuf_u8(r), n = lsf_rbuf_u8(r), head = lsf_rbuf_u8(r);
    double alpha = l->fit.alpha;
    if (k != l->k || n > k || (n < k ? head != 0 : head >= k))
        r->bad = true;
    if (!r->bad) {
        lsf_rbuf_get(r, l->ring, sizeof(float) * n);
        lsf_rbuf_get(r, &l->fit, sizeof(l->fit));
    }
    for (uint32_t i = 0; i < n && !r->bad; i++)
        if (!isfinite(l->ring[i]))
            r->bad = true;
    if (!r->bad && (l->fit.alpha != alpha || !isfinite(l->fit.mean) || !(l->fit.var >= 0)))
        r->bad = true;
    if (r->bad) {
        uint32_t kk = l->k;
        memset(l, 0, sizeof(*l));
        l->k = (uint8_t)kk;
        l->fit.alpha = alpha;
        return -1;
    }
    l->n = n;
    l->head = head;
    return 0;
}
