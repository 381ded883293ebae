/* model.c - one key's series model: two (or three) measures, each turned
 * into a calibrated tail probability, combined, and de-duplicated.
 *
 * Design essay. For each new value x of a key:
 *  1. spike: a = |x - median of the previous `window` values| (robust.c).
 *     Catches single wild values and the first values of a level shift.
 *  2. shape: the last `embed_len` values, reduced to `embed_dims` piecewise
 *     means, and the Euclidean distance to the nearest shape of the past
 *     `history` windows that do not overlap it (novelty.c). Catches patterns
 *     the series has never shown: a new plateau, a changed rhythm, a missing
 *     daily peak, a burst of noise.
 *  3. season (optional): |x - this UTC hour's EWMA| / its spread
 *     (seasonal.c), for rate series with a strong daily or weekly cycle.
 * Each measure is ranked against that measure's own last
 * LSF_TAIL_BLOCKS * tail_block values (tail.c), which yields a p-value that
 * is valid without distributional assumptions and means the same thing for a
 * CPU gauge and a byte counter; a measure within 1% of a value of the
 * horizon ties with it (a gauge pinned at 100% makes "new maxima" by
 * rounding). The measures are combined by the minimum
 * p-value times their number (Bonferroni), the score is 1 - p. Then three
 * rules decide whether report-level evidence (p <= 0.01) counts in full,
 * each judging the ranked evidence alone (not what another rule did; on NAB
 * that scored higher); each one it fails halves the evidence (-log10 p),
 * i.e. the score becomes 1 - sqrt(p):
 *  - the likelihood gate (likely.c): the raw score 1 - (smallest p),
 *    averaged over the last 20 observations, must be above its long-run
 *    average - a record on a series whose raw scores are not up, or are up
 *    all the time, is not an incident. A measure beyond twice its horizon's
 *    maximum is exempt: a wild value always counts.
 *  - vigilance (vigil.c): the measure's raw size must exceed that of its
 *    last report, a bar halving every horizon; after an alert, only worse
 *    alerts again soon.
 *  - cooldown: the evidence must exceed the strongest of the previous
 *    `cooldown` observations. One incident then raises one peak, at its
 *    start, instead of a plateau of equal alerts; stronger evidence still
 *    gets through at once.
 * A second tier: when the cooldown is the only rule an observation fails
 * and the key has made no report for at least `cooldown` observations, the
 * peak it failed against was itself never reported (the gate or the bar
 * held it back), so nothing is being repeated: the observation reports
 * with p2 = p_rec (1 + 2^(-q/H)), p_rec the p of a record of the horizon
 * (times the measures), q the observations since the key's last report
 * (at most H, the calibration horizon). That is a record's p with a
 * Bonferroni factor for this second look that fades from 2 to 1.5 as the
 * key stays quiet: always below a full report of a record (the first
 * tier), above everything else, and the longer the quiet the higher. This
 * is how the third-highest value of a horizon, in an incident whose
 * strongest point the gate or the bar suppressed, still reports; NAB's
 * threshold per profile then decides whether the tier counts (on NAB it
 * adds 2-3 windows; docs/anomaly.md).
 * Most reports sit at the same p (a new maximum of the horizon), so which
 * of them count in full is what these rules decide; on NAB, with the tie
 * rule, they halve the false positives (docs/anomaly.md). The first
 * `learn` observations score 0.
 *
 * Everything counts observations, not seconds, so the same settings serve a
 * 5-minute gauge and a per-second rate; event time is used only for the
 * seasonal buckets. Memory per key, allocated as history accumulates: the
 * window (8 bytes a value), the shapes (4 * embed_dims bytes each) and 560
 * bytes of fixed state (152 of them the gate's ring and fit, the bars and
 * the last report's index):
 * 1 KiB + 64 KiB at the defaults (window 128, history 2,048 shapes of 8).
 * Time per observation: a binary search and memmove in the window, and one
 * nearest-neighbour scan over the history (8 shapes at a time, ~2 us at
 * 2,048 shapes with AVX2); the MAD behind the deviation is
 * computed only for p < 0.5.
 *
 * Why this and not a Gaussian z-score: on the 24 NAB series in
 * ../shared/datasets/nab (docs/anomaly.md has the table) an EWMA z-score
 * with the same calibration and cooldown scores far lower; the shape measure
 * contributes most, the spike measure adds the sudden jumps, and ranking
 * against a bounded recent horizon (tail.c) rather than all history matters
 * most of all. A seasonal measure lowered the NAB score (more chances for
 * false alarms on series without a cycle), so it is off by default and
 * offered for rate series that do have one. The defaults are one setting
 * for every series; nothing is tuned per file.
 *
 * Threads: the caller owns each model (see model.h).
 */
#include <math.h>
#include <stdio.h>

#include "anomaly/model.h"

void lsf_model_conf_default(lsf_model_conf *c)
{
    c->window = 128;
    c->embed_len = 16;
    c->embed_dims = 8;
    c->history = 2048;
    c->tail_block = 64;
    c->cooldown = 100;
    c->learn = 150;
    c->season = LSF_SEASON_NONE;
    c->season_half_life = 4;
}

int lsf_model_conf_check(const lsf_model_conf *c, char *msg, size_t msglen)
{
    if (c->embed_dims < 1 || c->embed_dims > LSF_NOVELTY_MAX_DIMS)
        snprintf(msg, msglen, "shape dimensions must be 1..%d", LSF_NOVELTY_MAX_DIMS);
    else if (c->embed_len < c->embed_dims || c->embed_len % c->embed_dims)
        snprintf(msg, msglen, "shape length %u must be a multiple of its %u dimensions",
                 c->embed_len, c->embed_dims);
    else if (c->window < 2 * c->embed_len || c->window > 65536)
        snprintf(msg, msglen, "window must be 2..65536 values and at least twice the shape length");
    else if (c->history < 1 || c->history > (1u << 20))
        snprintf(msg, msglen, "history must be 1..1048576 shapes");
    else if (c->tail_block < 1 || c->cooldown > (1u << 24) || c->embed_len > 4096)
        snprintf(msg, msglen, "tail block, cooldown or shape length out of range");
    else
        return 0;
    return -1;
}

const char *lsf_model_measure_name(int m)
{
    switch (m) {
    case LSF_MEASURE_SPIKE:
        return "spike";
    case LSF_MEASURE_SHAPE:
        return "shape";
    case LSF_MEASURE_SEASON:
        return "season";
    default:
        return "none";
    }
}

double lsf_score_of_p(double p)
{
    if (!(p < 1))
        return 0;
    if (!(p > 0))
        return 1;
    return 1 - p;
}

/* The calibration horizon in observations (tail.c). */
static double horizon(const lsf_model_conf *c)
{
    return (double)LSF_TAIL_BLOCKS * c->tail_block;
}

/* The window also supplies the shapes: two shape lengths of values. */
static uint32_t ring_cap(const lsf_model_conf *c)
{
    return c->window;
}

/* A measure within 1% of a value of the horizon ties with it: a gauge
 * pinned at its ceiling (CPU at 100%) makes "new maxima" by rounding. */
#define TIE 1.01
/* Report-level evidence: the gate and the vigilance bar apply from here
 * (p <= 0.01); below it scores are left as ranked. */
#define REPORT_P 0.01
/* The likelihood gate: raw scores averaged over the last 20 observations,
 * against their long-run fit over about the calibration horizon. */
#define LIK_SHORT 20
#define LIK_WARMUP 100
/* A measure beyond this multiple of its horizon's largest value is not
 * gated: a wild value is reported whatever came before it. */
#define GATE_EXEMPT 2.0

/* The second tier's p: a record's p (p_rec) times a Bonferroni factor for
 * the second look, 1 + 2^(-quiet / horizon) with quiet capped at the
 * horizon: 2 right after the cooldown, 1.5 for a key quiet a horizon. */
static double second_tier_p(double p_rec, double quiet, double h)
{
    double p = p_rec * (1 + exp2(-fmin(quiet, h) / h));
    return p < 1 ? p : 1;
}

/* a / the largest value of the horizon (infinite over an all-zero one). */
static double excess(const lsf_tailrank *t, double a)
{
    double mx = lsf_tailrank_max(t);
    return mx > 0 ? a / mx : a > 0 ? INFINITY : 0;
}

void lsf_model_init(lsf_model *m, const lsf_model_conf *c)
{
    memset(m, 0, sizeof(*m));
    lsf_slwin_init(&m->win, ring_cap(c));
    lsf_novelty_init(&m->shapes, (uint8_t)c->embed_dims, c->history);
    lsf_tailrank_init(&m->t_spike, c->tail_block);
    lsf_tailrank_init(&m->t_shape, c->tail_block);
    lsf_tailrank_init(&m->t_season, c->tail_block);
    lsf_seasonal_init(&m->season, (enum lsf_season)c->season, c->season_half_life);
    lsf_likely_init(&m->lik, LIK_SHORT, horizon(c));
}

void lsf_model_free(lsf_model *m)
{
    lsf_slwin_free(&m->win);
    lsf_novelty_free(&m->shapes);
    lsf_seasonal_free(&m->season);
}

/* Piecewise means of the embed_len values ending `ago` observations back. */
static void shape_of(const lsf_model *m, const lsf_model_conf *c, uint32_t ago, float *f)
{
    uint32_t seg = c->embed_len / c->embed_dims;
    for (uint32_t d = 0; d < c->embed_dims; d++) {
        double s = 0;
        /* dimension 0 is the oldest segment */
        for (uint32_t k = 0; k < seg; k++)
            s += lsf_slwin_recent(&m->win, ago + (c->embed_dims - 1 - d) * seg + k);
        f[d] = (float)(s / seg);
    }
}

/* Cooldown bookkeeping: the largest evidence of the last ~cooldown
 * observations, kept as maxima of four quarters. */
static double recent_peak(const lsf_model *m)
{
    double mx = m->sup_n ? m->sup_cur : 0;
    for (int i = 0; i < 4; i++)
        if (m->sup_max[i] > mx)
            mx = m->sup_max[i];
    return mx;
}

static void note_evidence(lsf_model *m, const lsf_model_conf *c, double s)
{
    if (!c->cooldown)
        return;
    uint32_t quarter = (c->cooldown + 3) / 4;
    if (!m->sup_n || s > m->sup_cur)
        m->sup_cur = (float)s;
    if (++m->sup_n >= quarter) {
        m->sup_max[m->sup_head] = m->sup_cur;
        m->sup_head = (m->sup_head + 1) % 4;
        m->sup_n = 0;
        m->sup_cur = 0;
    }
}

int lsf_model_update(lsf_model *m, const lsf_model_conf *c, double x, int64_t time_ns,
                     lsf_model_result *out)
{
    memset(out, 0, sizeof(*out));
    out->p = 1;
    if (!isfinite(x))
        return -1;
    uint64_t t = m->n++;
    bool scoring = t >= c->learn;
    out->learning = !scoring;
    double p_spike = 1, p_shape = 1, p_season = 1;
    double a_spike = 0, a_shape = 0; /* raw measures, for the vigilance bars */
    double over_spike = 0, over_shape = 0; /* measure / the horizon's maximum */

    /* 1. spike, against the window before x */
    double med = lsf_slwin_median(&m->win);
    out->expected = m->win.n ? med : x;
    out->deviation = NAN; /* computed below, for scores worth explaining */
    if (t >= c->window) {
        double a = a_spike = fabs(x - med);
        if (scoring)
            p_spike = lsf_tailrank_p(&m->t_spike, a / TIE);
        over_spike = excess(&m->t_spike, a);
        lsf_tailrank_add(&m->t_spike, a);
    }
    lsf_slwin_add(&m->win, x);

    /* 2. shape of the window ending at x, against non-overlapping history */
    if (t + 1 >= c->embed_len) {
        float f[LSF_NOVELTY_MAX_DIMS];
        shape_of(m, c, 0, f);
        if (m->shapes.n) {
            double a = a_shape = lsf_novelty_nn(&m->shapes, f);
            if (scoring)
                p_shape = lsf_tailrank_p(&m->t_shape, a / TIE);
            over_shape = excess(&m->t_shape, a);
            lsf_tailrank_add(&m->t_shape, a);
        }
        /* the window that ended embed_len ago no longer overlaps: store it */
        if (t + 1 >= 2 * (uint64_t)c->embed_len) {
            shape_of(m, c, c->embed_len, f);
            lsf_novelty_add(&m->shapes, f);
        }
    }

    /* 3. seasonal baseline */
    int nmeasures = 2;
    if (c->season) {
        nmeasures = 3;
        double mean, sd;
        if (lsf_seasonal_expect(&m->season, time_ns, 3, &mean, &sd)) {
            double a = fabs(x - mean) / (sd > 0 ? sd : 1e-9 + fabs(mean) * 1e-6);
            if (scoring)
                p_season = lsf_tailrank_p(&m->t_season, a / TIE);
            lsf_tailrank_add(&m->t_season, a);
            if (p_season < p_spike && p_season < p_shape)
                out->expected = mean;
        }
        lsf_seasonal_add(&m->season, time_ns, x);
    }

    double p = p_spike;
    out->measure = LSF_MEASURE_SPIKE;
    if (p_shape < p) {
        p = p_shape;
        out->measure = LSF_MEASURE_SHAPE;
    }
    if (p_season < p) {
        p = p_season;
        out->measure = LSF_MEASURE_SEASON;
    }
    if (p >= 1)
        out->measure = LSF_MEASURE_NONE;
    double raw = 1 - p; /* the raw anomaly score: 1 - the smallest measure's p */
    p *= nmeasures;
    if (p > 1)
        p = 1;
    out->p = p;

    /* Three rules decide whether report-level evidence counts in full, each
     * on the ranked evidence alone; each one it fails halves the evidence. */
    double s0 = -log10(p), s = s0;
    bool report = scoring && p <= REPORT_P;
    int failed = 0;

    /* 4. the likelihood gate: the recent raw scores are above their
     * long-run level (a wild value is exempt) */
    if (t >= c->window) {
        double pl = lsf_likely_add(&m->lik, raw, LIK_WARMUP);
        double over = over_spike > over_shape ? over_spike : over_shape;
        failed += report && pl >= 0.5 && over < GATE_EXEMPT;
    }

    /* 5. vigilance: the measure's raw size exceeds that of its last report
     * (the bar decays over the horizon) */
    double decay = lsf_vigil_factor(horizon(c));
    lsf_vigil_decay(&m->vig[0], decay);
    lsf_vigil_decay(&m->vig[1], decay);
    lsf_vigil *v = NULL;
    double a = 0;
    if (report && (out->measure == LSF_MEASURE_SPIKE || out->measure == LSF_MEASURE_SHAPE)) {
        bool spike = out->measure == LSF_MEASURE_SPIKE;
        v = &m->vig[spike ? 0 : 1];
        a = spike ? a_spike : a_shape;
        failed += !lsf_vigil_passes(v, a);
    }

    /* 6. cooldown: stronger than the strongest of the last `cooldown` */
    double peak = recent_peak(m);
    note_evidence(m, c, s0);
    bool cooling = c->cooldown && s0 > 0 && s0 <= peak;
    failed += cooling;

    /* 7. the second tier: only the cooldown failed, and the key has not
     * reported within it (the peak was never reported) */
    double quiet = (double)(t - m->last_report);
    if (report && cooling && failed == 1 && quiet >= c->cooldown) {
        const lsf_tailrank *tr = out->measure == LSF_MEASURE_SPIKE   ? &m->t_spike
                                 : out->measure == LSF_MEASURE_SHAPE ? &m->t_shape
                                                                     : &m->t_season;
        double p_rec = nmeasures * lsf_tailrank_p(tr, HUGE_VAL);
        s = -log10(second_tier_p(p_rec, quiet, horizon(c)));
        out->second_tier = true;
        failed = 0;
    }

    if (v && !failed)
        lsf_vigil_raise(v, a); /* a report: raise the bar */
    if (report && !failed)
        m->last_report = t;
    if (failed) {
        out->suppressed = true;
        s = ldexp(s0, -failed);
    }
    out->score = scoring ? lsf_score_of_p(pow(10, -s)) : 0;
    if (out->p < 0.5 && m->win.n > 1) {
        /* the robust z-score; the MAD of the window now holding x (one value
         * moves a MAD little), only for scores that will be shown */
        double mad = 1.4826 * lsf_slwin_mad(&m->win);
        out->deviation = mad > 0 ? (x - med) / mad : 0;
    }
    return 0;
}

size_t lsf_model_bytes(const lsf_model *m)
{
    return sizeof(*m) + lsf_slwin_bytes(&m->win) + lsf_novelty_bytes(&m->shapes) +
           lsf_seasonal_bytes(&m->season);
}

size_t lsf_model_max_bytes(const lsf_model_conf *c)
{
    size_t season = c->season ? (size_t)c->season * sizeof(lsf_season_bucket) : 0;
    return sizeof(lsf_model) + 2 * (size_t)ring_cap(c) * sizeof(float) +
           (size_t)c->history * c->embed_dims * sizeof(float) + season;
}

void lsf_model_save(const lsf_model *m, lsf_wbuf *w)
{
    lsf_wbuf_u64(w, m->n);
    lsf_slwin_save(&m->win, w);
    lsf_novelty_save(&m->shapes, w);
    lsf_tailrank_save(&m->t_spike, w);
    lsf_tailrank_save(&m->t_shape, w);
    lsf_tailrank_save(&m->t_season, w);
    lsf_seasonal_save(&m->season, w);
    lsf_likely_save(&m->lik, w);
    lsf_wbuf_put(w, m->vig, sizeof(m->vig));
    lsf_wbuf_put(w, m->sup_max, sizeof(m->sup_max));
    lsf_wbuf_put(w, &m->sup_cur, sizeof(m->sup_cur));
    lsf_wbuf_u32(w, m->sup_n);
    lsf_wbuf_u32(w, m->sup_head);
    lsf_wbuf_u64(w, m->last_report);
}

int lsf_model_load(lsf_model *m, const lsf_model_conf *c, lsf_rbuf *r)
{
    lsf_model_free(m);
    lsf_model_init(m, c);
    m->n = lsf_rbuf_u64(r);
    int rc = 0;
    rc |= lsf_slwin_load(&m->win, r);
    rc |= lsf_novelty_load(&m->shapes, r);
    rc |= lsf_tailrank_load(&m->t_spike, r);
    rc |= lsf_tailrank_load(&m->t_shape, r);
    rc |= lsf_tailrank_load(&m->t_season, r);
    rc |= lsf_seasonal_load(&m->season, r);
    rc |= lsf_likely_load(&m->lik, r);
    lsf_rbuf_get(r, m->vig, sizeof(m->vig));
    for (int i = 0; i < 2; i++)
        if (!(m->vig[i].bar >= 0) || !isfinite(m->vig[i].bar))
            r->bad = true;
    lsf_rbuf_get(r, m->sup_max, sizeof(m->sup_max));
    lsf_rbuf_get(r, &m->sup_cur, sizeof(m->sup_cur));
    m->sup_n = lsf_rbuf_u32(r);
    m->sup_head = lsf_rbuf_u32(r);
    m->last_report = lsf_rbuf_u64(r);
    if (m->sup_head >= 4 || !isfinite(m->sup_cur) || m->last_report > m->n)
        r->bad = true;
    for (int i = 0; i < 4; i++)
        if (!isfinite(m->sup_max[i]))
            r->bad = true;
    if (rc || r->bad) {
        r->bad = true;
        lsf_model_free(m);
        lsf_model_init(m, c);
        return -1;
    }
    return 0;
}
