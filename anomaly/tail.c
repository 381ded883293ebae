/* tail.c - calibrated tail probabilities from block maxima.
 *
 * Design essay. A raw anomaly measure (a distance, a deviation) means
 * nothing across series: 5 is huge for one CPU gauge and noise for a packet
 * counter. Turning every measure into the probability of seeing a value at
 * least as large, under the series' own recent behaviour, makes scores
 * comparable across keys and detectors. That is the idea behind Numenta's
 * "anomaly likelihood" (Ahmad et al., "Unsupervised real-time anomaly
 * detection for streaming data", Neurocomputing 2017) and behind conformal
 * anomaly detection (Laxhammar & Falkman, "Inductive conformal anomaly
 * detection for sequential detection of anomalous sub-trajectories", Annals
 * of Mathematics and AI 2015): the p-value of a new measure is its rank
 * among past measures, (#{past >= a} + 1) / (n + 1), which is valid without
 * any assumption on the distribution.
 *
 * An exact rank needs the whole history. We only care about the upper tail
 * (is this among the largest of the last N?), and Gumbel's block-maxima view
 * of extremes gives a bounded summary: split the last N = B * m observations
 * into B blocks of m and keep each block's maximum. If c of the B maxima are
 * >= a, P(block max >= a) is about q = (c + 1) / (B + 1), and since a block
 * maximum is below a only when all m values are, the tail probability of one
 * observation is p = 1 - (1 - q)^(1/m). A new maximum of the horizon gets
 * p ~ 1 / (B m), the conformal rank's value. Block maxima only describe the
 * tail: once more than half the blocks reached a (p above ~1 / m) the
 * estimate rises linearly to 1, where every block reached it - a value of
 * the bulk is never called rare, and p-values stay conservative there. The window forgets (blocks roll off), which matters:
 * measured on NAB, ranking against the last ~1,000 observations beat
 * ranking against everything seen by a wide margin (docs/anomaly.md),
 * because after a real change of regime the old extremes stop masking new
 * ones. Memory: B + 1 floats; an update is O(1), a query O(B).
 *
 * Threads: the caller owns each instance.
 */
#include <math.h>

#include "anomaly/stats.h"

void lsf_tailrank_init(lsf_tailrank *t, uint32_t block)
{
    memset(t, 0, sizeof(*t));
    t->block = block ? block : 1;
}

double lsf_tailrank_p(const lsf_tailrank *t, double a)
{
    uint32_t blocks = t->nb + (t->cur_n > 0);
    if (!blocks)
        return 1;
    uint32_t c = t->cur_n && t->cur >= a;
    for (uint32_t i = 0; i < t->nb; i++)
        c += t->bmax[i] >= a;
    /* P(block maximum >= a) = 1 - F(a)^m, so the tail of one observation
     * is 1 - (1 - q)^(1/m), q estimated as (c + 1) / (blocks + 1) */
    double q = (c + 1.0) / (blocks + 1.0);
    if (q >= 1)
        return 1;
    if (q <= 0.5)
        return -expm1(log1p(-q) / t->block);
    /* beyond the tail the maxima say little: rise linearly to 1 (conservative) */
    double half = -expm1(log1p(-0.5) / t->block);
    return half + (q - 0.5) / 0.5 * (1 - half);
}

double lsf_tailrank_max(const lsf_tailrank *t)
{
    double mx = t->cur_n ? t->cur : 0;
    for (uint32_t i = 0; i < t->nb; i++)
        mx = t->bmax[i] > mx ? t->bmax[i] : mx;
    return mx;
}

void lsf_tailrank_add(lsf_tailrank *t, double a)
{
    if (isnan(a))
        return;
    if (!t->cur_n || a > t->cur)
        t->cur = (float)a;
    t->cur_n++;
    t->n++;
    if (t->cur_n >= t->block) {
        t->bmax[t->head] = t->cur;
        t->head = (t->head + 1) % LSF_TAIL_BLOCKS;
        if (t->nb < LSF_TAIL_BLOCKS)
            t->nb++;
        t->cur_n = 0;
    }
}

void lsf_tailrank_save(const lsf_tailrank *t, lsf_wbuf *w)
{
    lsf_wbuf_put(w, t, sizeof(*t));
}

int lsf_tailrank_load(lsf_tailrank *t, lsf_rbuf *r)
{
    uint32_t block = t->block;
    lsf_rbuf_get(r, t, sizeof(*t));
    if (t->block != block || t->nb > LSF_TAIL_BLOCKS || t->head >= LSF_TAIL_BLOCKS ||
        t->cur_n >= t->block)
        r->bad = true;
    for (uint32_t i = 0; i < LSF_TAIL_BLOCKS && !r->bad; i++)
        if (isnan(t->bmax[i]))
            r->bad = true;
    if (r->bad) {
        lsf_tailrank_init(t, block);
        return -1;
    }
    return 0;
}
