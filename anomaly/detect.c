/* detect.c - the four detector kinds, each on one key's state.
 *
 *   rate          events per interval per key, scored by the series model
 *                 (model.c) when an interval closes; silent keys are closed
 *                 by the stage's sweep, so a source that goes quiet scores
 *                 as a run of zeros
 *   numeric       a numeric field per key: its mean (max, min, sum) per
 *                 interval scored by the model, or with interval 0 every
 *                 value
 *   new_value     a value never seen for the key after its learning period,
 *                 scored by the Good-Turing probability of a new value
 *   rare_template the message's template (template.c) per source: a template
 *                 new to the source, or one it rarely logs
 * Every kind ends in a tail probability p and a score of 1 - p
 * (lsf_score_of_p), so scores compare across detectors.
 *
 * The one design choice to know: intervals are event time. An interval
 * [k * interval, (k + 1) * interval) stays open for `lateness` (so events
 * that arrive a little out of order still count) and closes when the key's
 * own events - or the stage's watermark, for silent keys - have moved past
 * it. A replay of an old file therefore closes and scores intervals exactly
 * as the live stream did.
 *
 * Threads: every function works on one entry whose shard the caller holds.
 */
#include <inttypes.h>
#include <math.h>
#include <stdio.h>

#include "anomaly/anomaly.h"
#include "anomaly/hash.h"

#define RATE_GAP_MAX 10000       /* empty intervals fed at most after a silence */
#define CMS_AGE_TOTAL (1ULL << 28) /* halve the sketch past this many adds */

const char *lsf_anom_reason_name(int reason)
{
    static const char *const names[] = {"none",      "spike",        "shape",        "season",
                                        "quiet",     "new_value",    "new_template", "rare_template"};
    return reason >= 0 && reason <= LSF_REASON_RARE_TEMPLATE ? names[reason] : "none";
}

const char *lsf_anom_type_name(int type)
{
    static const char *const names[] = {"rate", "numeric", "new_value", "rare_template"};
    return type >= 0 && type <= LSF_ANOM_RARE_TEMPLATE ? names[type] : "?";
}

void lsf_anom_entry_init(const lsf_anom_det *d, lsf_anom_entry *e)
{
    switch (d->def.type) {
    case LSF_ANOM_RATE:
    case LSF_ANOM_NUMERIC:
        e->u.series.m = lsf_anom_cold(d, e->rec);
        lsf_model_init(e->u.series.m, &d->def.model);
        e->u.series.started = false;
        break;
    case LSF_ANOM_NEW_VALUE:
        lsf_firstseen_init_in(&e->u.values, d->def.max_values, &d->grp->mem);
        break;
    case LSF_ANOM_RARE_TEMPLATE:
        lsf_firstseen_init_in(&e->u.tpl.seen, d->def.max_values, &d->grp->mem);
        lsf_topk_init_in(&e->u.tpl.top, LSF_ANOM_TOPK, e->u.tpl.heap);
        e->u.tpl.n = 0;
        break;
    }
}

void lsf_anom_entry_free(const lsf_anom_det *d, lsf_anom_entry *e)
{
    switch (d->def.type) {
    case LSF_ANOM_RATE:
    case LSF_ANOM_NUMERIC:
        lsf_model_free(e->u.series.m);
        break;
    case LSF_ANOM_NEW_VALUE:
        lsf_firstseen_free(&e->u.values);
        break;
    case LSF_ANOM_RARE_TEMPLATE:
        lsf_firstseen_free(&e->u.tpl.seen);
        lsf_topk_free(&e->u.tpl.top);
        break;
    }
}

size_t lsf_anom_entry_bytes(const lsf_anom_det *d, const lsf_anom_entry *e)
{
    switch (d->def.type) {
    case LSF_ANOM_RATE:
    case LSF_ANOM_NUMERIC:
        return lsf_model_bytes(e->u.series.m) - sizeof(lsf_model);
    case LSF_ANOM_NEW_VALUE:
        return lsf_firstseen_bytes(&e->u.values);
    case LSF_ANOM_RARE_TEMPLATE:
        return lsf_firstseen_bytes(&e->u.tpl.seen) + lsf_topk_bytes(&e->u.tpl.top);
    }
    return 0;
}

void lsf_anom_entry_save(const lsf_anom_det *d, const lsf_anom_entry *e, lsf_wbuf *w)
{
    lsf_wbuf_u64(w, (uint64_t)e->last_ns);
    switch (d->def.type) {
    case LSF_ANOM_RATE:
    case LSF_ANOM_NUMERIC:
        lsf_wbuf_u8(w, e->u.series.started);
        lsf_wbuf_u64(w, (uint64_t)e->u.series.newest);
        lsf_wbuf_u64(w, (uint64_t)e->u.series.closed);
        /* every slot of the format, those past rate_open empty */
        lsf_wbuf_put(w, e->u.series.acc, d->def.rate_open * sizeof(lsf_anom_acc));
        for (uint32_t i = d->def.rate_open; i < LSF_ANOM_RATE_OPEN; i++)
            lsf_wbuf_put(w, &(lsf_anom_acc){0}, sizeof(lsf_anom_acc));
        lsf_model_save(e->u.series.m, w);
        break;
    case LSF_ANOM_NEW_VALUE:
        lsf_firstseen_save(&e->u.values, w);
        break;
    case LSF_ANOM_RARE_TEMPLATE:
        lsf_wbuf_u64(w, e->u.tpl.n);
        lsf_firstseen_save(&e->u.tpl.seen, w);
        lsf_topk_save(&e->u.tpl.top, w);
        break;
    }
}

int lsf_anom_entry_load(const lsf_anom_det *d, lsf_anom_entry *e, lsf_rbuf *r)
{
    int rc = 0;
    e->last_ns = (int64_t)lsf_rbuf_u64(r);
    switch (d->def.type) {
    case LSF_ANOM_RATE:
    case LSF_ANOM_NUMERIC: {
        uint8_t started = lsf_rbuf_u8(r);
        e->u.series.started = started == 1;
        e->u.series.newest = (int64_t)lsf_rbuf_u64(r);
        e->u.series.closed = (int64_t)lsf_rbuf_u64(r);
        lsf_rbuf_get(r, e->u.series.acc, d->def.rate_open * sizeof(lsf_anom_acc));
        lsf_rbuf_view(r, (LSF_ANOM_RATE_OPEN - d->def.rate_open) * sizeof(lsf_anom_acc));
        if (started > 1 || e->u.series.closed > e->u.series.newest)
            r->bad = true;
        for (uint32_t i = 0; i < d->def.rate_open; i++)
            if (!isfinite(e->u.series.acc[i].sum))
                r->bad = true;
        rc = lsf_model_load(e->u.series.m, &d->def.model, r);
        break;
    }
    case LSF_ANOM_NEW_VALUE:
        rc = lsf_firstseen_load(&e->u.values, r);
        break;
    case LSF_ANOM_RARE_TEMPLATE:
        e->u.tpl.n = lsf_rbuf_u64(r);
        rc = lsf_firstseen_load(&e->u.tpl.seen, r);
        rc |= lsf_topk_load(&e->u.tpl.top, r);
        break;
    }
    return rc || r->bad ? -1 : 0;
}

/* ---- model-based kinds --------------------------------------------------- */

/* An empty result (cheaper than clearing the whole struct on every event). */
static inline void res_clear(lsf_anom_result *res)
{
    res->score = 0;
    res->p = 1;
    res->reason = LSF_REASON_NONE;
    res->numeric = false;
    res->expected = res->observed = res->deviation = 0;
    res->observed_str = LSF_STR_NULL;
    res->expected_str[0] = 0;
    res->template_id = 0;
    res->template_slot = 0;
    res->at_ns = 0;
}

static void from_model(const lsf_model_result *mr, double x, lsf_anom_result *res)
{
    res->score = mr->score;
    res->p = mr->p;
    res->numeric = true;
    res->expected = mr->expected;
    res->observed = x;
    res->deviation = mr->deviation;
    res->reason = mr->measure == LSF_MEASURE_SPIKE    ? LSF_REASON_SPIKE
                  : mr->measure == LSF_MEASURE_SHAPE  ? LSF_REASON_SHAPE
                  : mr->measure == LSF_MEASURE_SEASON ? LSF_REASON_SEASON
                                                      : LSF_REASON_NONE;
}

void lsf_anom_series_value(lsf_anom_det *d, lsf_anom_entry *e, double x, int64_t time_ns,
                           lsf_anom_result *res)
{
    lsf_model_result mr;
    res_clear(res);
    res->at_ns = time_ns;
    e->last_ns = time_ns;
    if (lsf_model_update(e->u.series.m, &d->def.model, x, time_ns, &mr) == 0)
        from_model(&mr, x, res);
}

static int64_t floor_div(int64_t a, int64_t b)
{
    int64_t q = a / b;
    return (a % b != 0 && (a < 0) != (b < 0)) ? q - 1 : q;
}

/* The observation an interval makes: its count (rate) or the aggregate of
 * its values (numeric; false when it has none). */
static bool observation(const lsf_anom_det *d, const lsf_anom_acc *a, double *x)
{
    if (d->def.type == LSF_ANOM_RATE) {
        *x = a->n;
        return true;
    }
    if (!a->n)
        return false;
    switch (d->def.agg) {
    case LSF_ANOM_AGG_MAX:
        *x = a->max;
        break;
    case LSF_ANOM_AGG_MIN:
        *x = a->min;
        break;
    case LSF_ANOM_AGG_SUM:
        *x = a->sum;
        break;
    default:
        *x = a->sum / a->n;
        break;
    }
    return true;
}

/* Feeds one closed interval; keeps the strongest result in res. */
static bool feed(lsf_anom_det *d, lsf_anom_entry *e, int64_t idx, const lsf_anom_acc *a,
                 lsf_anom_result *res)
{
    lsf_model_result mr;
    double x;
    if (!observation(d, a, &x) ||
        lsf_model_update(e->u.series.m, &d->def.model, x, idx * d->def.interval_ns, &mr) < 0)
        return false;
    if (mr.score > res->score || res->reason == LSF_REASON_NONE) {
        from_model(&mr, x, res);
        res->at_ns = (idx + 1) * d->def.interval_ns;
    }
    return true;
}

/* Closes the open intervals up to `limit` (then empty ones for gaps). */
static bool close_upto(lsf_anom_det *d, lsf_anom_entry *e, int64_t limit, lsf_anom_result *res)
{
    uint32_t R = d->def.rate_open;
    bool any = false;
    int64_t i = e->u.series.closed + 1;
    for (; i <= limit && i <= e->u.series.newest; i++) {
        lsf_anom_acc *a = &e->u.series.acc[(uint64_t)i % R];
        any |= feed(d, e, i, a, res);
        memset(a, 0, sizeof(*a));
    }
    if (i <= limit && d->def.type == LSF_ANOM_RATE) {
        static const lsf_anom_acc empty = {0, 0, 0, 0};
        if (limit - i >= RATE_GAP_MAX)
            i = limit - RATE_GAP_MAX + 1; /* a long silence: its last intervals suffice */
        for (; i <= limit; i++)
            any |= feed(d, e, i, &empty, res);
    }
    if (limit > e->u.series.closed)
        e->u.series.closed = limit;
    if (e->u.series.newest < e->u.series.closed)
        e->u.series.newest = e->u.series.closed;
    return any;
}

bool lsf_anom_series_event(lsf_anom_det *d, lsf_anom_entry *e, int64_t time_ns, double x,
                           lsf_anom_result *res)
{
    res_clear(res);
    uint32_t R = d->def.rate_open;
    int64_t b = floor_div(time_ns, d->def.interval_ns);
    if (!e->u.series.started) {
        e->u.series.started = true;
        e->u.series.newest = b;
        e->u.series.closed = b - 1;
        memset(e->u.series.acc, 0, R * sizeof(lsf_anom_acc));
    }
    if (b <= e->u.series.closed) {
        lsf_counter_add(d->c_late, 1);
        return false;
    }
    if (time_ns > e->last_ns)
        e->last_ns = time_ns;
    bool scored = false;
    if (b > e->u.series.newest) {
        /* close what falls out of the open range, then open up to b */
        scored = close_upto(d, e, b - R, res);
        for (int64_t i = e->u.series.newest + 1; i <= b; i++)
            if (i > b - (int64_t)R)
                memset(&e->u.series.acc[(uint64_t)i % R], 0, sizeof(lsf_anom_acc));
        e->u.series.newest = b;
    }
    lsf_anom_acc *a = &e->u.series.acc[(uint64_t)b % R];
    if (a->n < UINT32_MAX) {
        float v = (float)x;
        if (!a->n || v < a->min)
            a->min = v;
        if (!a->n || v > a->max)
            a->max = v;
        a->n++;
        a->sum += x;
    }
    return scored;
}

bool lsf_anom_series_sweep(lsf_anom_det *d, lsf_anom_entry *e, int64_t wm_ns, lsf_anom_result *res)
{
    res_clear(res);
    if (!e->u.series.started)
        return false;
    int64_t limit = floor_div(wm_ns, d->def.interval_ns) - d->def.rate_open;
    if (limit <= e->u.series.closed || e->u.series.newest > limit)
        return false; /* the key is still active: its own events close intervals */
    bool scored = close_upto(d, e, limit, res);
    e->u.series.swept |= scored; /* the caller walks the LRU: no re-accounting now */
    if (scored && d->def.type == LSF_ANOM_RATE && res->observed == 0 && res->expected > 0)
        res->reason = LSF_REASON_QUIET;
    return scored;
}

/* ---- first-seen kinds ---------------------------------------------------- */

void lsf_anom_new_value(lsf_anom_det *d, lsf_anom_entry *e, uint64_t vhash, lsf_str value,
                        int64_t time_ns, lsf_anom_result *res)
{
    res_clear(res);
    res->at_ns = time_ns;
    e->last_ns = time_ns;
    double p_new;
    enum lsf_seen s = lsf_firstseen_add(&e->u.values, vhash, time_ns, d->def.learning_ns, &p_new);
    if (s != LSF_SEEN_NEW)
        return;
    res->p = p_new;
    res->score = lsf_score_of_p(p_new);
    res->reason = LSF_REASON_NEW_VALUE;
    res->observed_str = value;
}

/* Halves every counter of the shard's sketch and every source's total, so
 * the sketch tracks recent frequencies and its error stays relative to them. */
static void age(lsf_anom_shard *s)
{
    size_t n = (size_t)s->cms.width * s->cms.depth;
    for (size_t i = 0; i < n; i++)
        s->cms.cnt[i] >>= 1;
    s->cms.total >>= 1;
    for (lsf_anom_entry *e = s->lru.next; e != &s->lru; e = e->next)
        e->u.tpl.n >>= 1;
}

void lsf_anom_rare_template(lsf_anom_det *d, lsf_anom_shard *s, lsf_anom_entry *e,
                            const lsf_template_match *tm, int64_t time_ns, lsf_anom_result *res)
{
    res_clear(res);
    res->at_ns = time_ns;
    res->template_id = tm->id;
    res->template_slot = tm->slot;
    e->last_ns = time_ns;
    uint64_t pair = lsf_anom_pair_hash(e->rec->hash, tm->id);
    uint64_t n = e->u.tpl.n;
    double p_new = 1;
    enum lsf_seen seen;
    uint64_t c; /* occurrences before this one (an overestimate) */
    const lsf_topk_entry *top = lsf_topk_find(&e->u.tpl.top, tm->id);
    if (top && top->count - top->err >= 2) {
        /* one of the source's most frequent templates: known, counted by the
         * top-k, so neither the set nor the sketch is touched (most events) */
        c = top->count;
        e->u.tpl.seen.obs++;
        seen = LSF_SEEN_KNOWN;
    } else {
        seen = lsf_firstseen_add(&e->u.tpl.seen, tm->id, time_ns, d->def.learning_ns, &p_new);
        uint32_t before;
        lsf_cms_add(&s->cms, pair, 1, &before);
        c = top && top->count > before ? top->count : before;
    }
    lsf_topk_entry out;
    if (lsf_topk_add(&e->u.tpl.top, tm->id, 1, &out) && out.count > out.err) {
        /* a template leaving the top-k takes its count into the sketch (some
         * of it may be there already: the sketch only ever overestimates) */
        uint64_t k = out.count - out.err;
        lsf_cms_add(&s->cms, lsf_anom_pair_hash(e->rec->hash, out.id),
                    k > UINT32_MAX ? UINT32_MAX : (uint32_t)k, NULL);
    }
    e->u.tpl.n++;
    if (s->cms.total >= CMS_AGE_TOTAL)
        age(s);

    bool learning = time_ns < e->u.tpl.seen.start_ns + d->def.learning_ns;
    if (seen == LSF_SEEN_NEW) {
        res->p = p_new;
        res->reason = LSF_REASON_NEW_TEMPLATE;
    } else if (seen == LSF_SEEN_KNOWN && !learning && n > 0) {
        /* union bound: the templates at most this frequent hold at most
         * m * (c + 1) / (n + 1) of the source's events */
        double p = (double)e->u.tpl.seen.n * (c + 1.0) / ((double)n + 1.0);
        res->p = p < 1 ? p : 1;
        res->reason = LSF_REASON_RARE_TEMPLATE;
    } else
        return;
    res->score = lsf_score_of_p(res->p);
    res->numeric = true;
    res->observed = c;
    res->deviation = NAN; /* no spread to measure against */
    res->expected = n ? (double)n / (e->u.tpl.seen.n ? e->u.tpl.seen.n : 1) : 0;
}

void lsf_anom_explain(const lsf_anom_det *d, const lsf_anom_entry *e, lsf_anom_result *res)
{
    if (d->def.type == LSF_ANOM_NEW_VALUE && res->reason == LSF_REASON_NEW_VALUE) {
        snprintf(res->expected_str, sizeof(res->expected_str),
                 "one of %u known values after %" PRIu64 " observations", e->u.values.n - 1,
                 e->u.values.obs - 1);
    } else if (d->def.type == LSF_ANOM_RARE_TEMPLATE && res->reason != LSF_REASON_NONE) {
        lsf_topk_entry tops[LSF_ANOM_TOPK];
        uint32_t k = lsf_topk_list(&e->u.tpl.top, tops, LSF_ANOM_TOPK);
        size_t o = (size_t)snprintf(res->expected_str, sizeof(res->expected_str),
                                    "usual templates:");
        for (uint32_t i = 0; i < k && o < sizeof(res->expected_str); i++)
            o += (size_t)snprintf(res->expected_str + o, sizeof(res->expected_str) - o,
                                  "%s %016" PRIx64 " (%.0f%%)", i ? "," : "", tops[i].id,
                                  100.0 * (double)tops[i].count / (double)e->u.tpl.n);
    }
}
