/* kinds.c - the detection types on one key's state: threshold, score,
 * distinct, value and sequence.
 *
 * The one design choice to know: every windowed type keeps a ring of
 * `buckets + 1` time buckets of window / buckets each, indexed by event time,
 * so a window of 60 s with 10 buckets counts the events of the last 60 to
 * 66 s: never fewer than the window (an attack is not missed at a bucket
 * edge), at most one bucket more, in fixed memory and independent of the
 * order events arrive in within the window. Distinct values are kept exactly
 * (value hash and bucket) up to LSF_DET_EXACT_DISTINCT, which covers any
 * count up to that; a larger count switches the key to one HyperLogLog per
 * bucket (anomaly/hll.c), merged on demand, so memory stays fixed whatever
 * the number of values. A sequence keeps its current step, the time it
 * started and the times of the first step's last `count` events.
 *
 * After a firing the caller resets the key: the next alert needs a fresh
 * set of events (a burst of 20 failures against a count of 10 fires once,
 * then counts toward a second, suppressed firing).
 *
 * Threads: under the key's shard lock.
 */
#include <malloc.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/log.h"
#include "detect/detect.h"

typedef struct win {
    int64_t head; /* bucket index of the newest bucket; INT64_MIN when empty */
} win;

typedef struct vslot {
    double sum, max, min;
    uint64_t n;
} vslot;

typedef struct dval {
    uint64_t h;  /* value hash */
    int64_t bi;  /* newest bucket it was seen in */
} dval;

typedef struct distinct_st {
    int64_t head;
    uint8_t hll; /* ext holds nb HyperLogLogs instead of exact values */
} distinct_st;

typedef struct seq_st {
    int64_t start_ns; /* first event of the sequence in progress */
    int64_t step_ns;  /* when the last completed step completed */
    uint32_t s, n;    /* step being filled (0: none started), its events */
    uint32_t rn, rhead; /* first-step times held, next ring slot */
    int64_t ring[];   /* the first step's last `count` event times */
} seq_st;

static uint32_t nbuckets(const lsf_detdef *d)
{
    return d->buckets + 1;
}

static int64_t bucket_ns(const lsf_detdef *d)
{
    return d->window_ns / d->buckets;
}

size_t lsf_kind_state_bytes(const lsf_detdef *d)
{
    switch (d->type) {
    case LSF_DET_THRESHOLD:
    case LSF_DET_SCORE:
        return sizeof(win) + nbuckets(d) * sizeof(uint32_t);
    case LSF_DET_VALUE:
        return sizeof(win) + nbuckets(d) * sizeof(vslot);
    case LSF_DET_DISTINCT:
        return sizeof(distinct_st);
    default:
        return sizeof(seq_st) + d->steps[0].count * sizeof(int64_t);
    }
}

static size_t usable(const void *p)
{
    return p ? malloc_usable_size((void *)p) : 0;
}

/* Moves the window's head to bucket bi, clearing the buckets it skips.
 * Returns the ring slot of bi, or -1 when bi is older than the window. */
static int advance(int64_t *head, void *ring, size_t slot_bytes, uint32_t nb, int64_t bi)
{
    if (*head == INT64_MIN || bi - *head >= (int64_t)nb) {
        memset(ring, 0, slot_bytes * nb);
        *head = bi;
    } else if (bi > *head) {
        for (int64_t k = *head + 1; k <= bi; k++)
            memset((char *)ring + (size_t)(k % nb) * slot_bytes, 0, slot_bytes);
        *head = bi;
    } else if (bi <= *head - (int64_t)nb) {
        return -1;
    }
    return (int)(bi % nb);
}

/* ---- threshold and score ------------------------------------------------- */

static void apply_count(lsf_detrun *r, lsf_dentry *e, int64_t t, lsf_dfire *out)
{
    const lsf_detdef *d = &r->def;
    win *w = (win *)e->state;
    uint32_t *cnt = (uint32_t *)(w + 1), nb = nbuckets(d);
    int slot = advance(&w->head, cnt, sizeof(uint32_t), nb, t / bucket_ns(d));
    if (slot < 0)
        return;
    uint64_t sum = 0;
    for (uint32_t i = 0; i < nb; i++)
        sum += cnt[i];
    out->fresh = sum == 0;
    if (cnt[slot] < UINT32_MAX)
        cnt[slot]++;
    sum++;
    out->observed = (double)sum;
    out->exemplar = (double)sum + d->exemplars >= d->limit;
    out->fired = (double)sum >= d->limit;
}

/* ---- value --------------------------------------------------------------- */

static bool compare(int cmp, double x, double limit)
{
    switch (cmp) {
    case LSF_CMP_GT:
        return x > limit;
    case LSF_CMP_GE:
        return x >= limit;
    case LSF_CMP_LT:
        return x < limit;
    default:
        return x <= limit;
    }
}

static void apply_value(lsf_detrun *r, lsf_dentry *e, double x, int64_t t, lsf_dfire *out)
{
    const lsf_detdef *d = &r->def;
    win *w = (win *)e->state;
    vslot *vs = (vslot *)(w + 1);
    uint32_t nb = nbuckets(d);
    int slot = advance(&w->head, vs, sizeof(vslot), nb, t / bucket_ns(d));
    if (slot < 0)
        return;
    vslot *v = &vs[slot];
    if (!v->n) {
        v->max = v->min = x;
    } else {
        v->max = x > v->max ? x : v->max;
        v->min = x < v->min ? x : v->min;
    }
    v->sum += x;
    v->n++;
    vslot all = {0, -INFINITY, INFINITY, 0};
    for (uint32_t i = 0; i < nb; i++) {
        if (!vs[i].n)
            continue;
        all.sum += vs[i].sum;
        all.n += vs[i].n;
        all.max = vs[i].max > all.max ? vs[i].max : all.max;
        all.min = vs[i].min < all.min ? vs[i].min : all.min;
    }
    out->fresh = all.n == 1;
    double agg = d->agg == LSF_AGG_SUM   ? all.sum
                 : d->agg == LSF_AGG_AVG ? all.sum / (double)all.n
                 : d->agg == LSF_AGG_MAX ? all.max
                                         : all.min;
    out->observed = agg;
    out->exemplar = true;
    out->fired = all.n >= d->min_count && compare(d->cmp, agg, d->limit);
}

/* ---- distinct ------------------------------------------------------------ */

static void to_hll(lsf_detrun *r, lsf_dshard *s, lsf_dentry *e)
{
    const lsf_detdef *d = &r->def;
    distinct_st *st = (distinct_st *)e->state;
    uint32_t nb = nbuckets(d);
    lsf_hll *panes = calloc(nb, sizeof(lsf_hll));
    if (!panes)
        lsf_die("out of memory (distinct counter)");
    int64_t bytes = (int64_t)usable(panes);
    for (uint32_t i = 0; i < nb; i++) {
        lsf_hll_init(&panes[i], d->hll_p);
        bytes += (int64_t)usable(panes[i].reg);
    }
    dval *dv = e->ext;
    for (uint32_t i = 0; i < e->ext_n; i++)
        lsf_hll_add(&panes[dv[i].bi % nb], dv[i].h);
    lsf_kind_free_ext(r, s, e);
    e->ext = panes;
    st->hll = 1;
    lsf_dkey_account(r, s, bytes);
}

static double hll_estimate(const lsf_detrun *r, const lsf_dentry *e, lsf_hll *scratch)
{
    const lsf_hll *panes = e->ext;
    uint32_t nb = nbuckets(&r->def);
    if (!scratch->reg || scratch->p != r->def.hll_p) {
        lsf_hll_free(scratch);
        lsf_hll_init(scratch, r->def.hll_p);
    }
    lsf_hll_clear(scratch);
    for (uint32_t i = 0; i < nb; i++)
        lsf_hll_merge(scratch, &panes[i]);
    return round(lsf_hll_count(scratch));
}

static void apply_distinct(lsf_detrun *r, lsf_dshard *s, lsf_dentry *e, uint64_t vh, int64_t t,
                           lsf_hll *scratch, lsf_dfire *out)
{
    const lsf_detdef *d = &r->def;
    distinct_st *st = (distinct_st *)e->state;
    uint32_t nb = nbuckets(d);
    int64_t bi = t / bucket_ns(d);
    if (st->head != INT64_MIN && bi <= st->head - (int64_t)nb)
        return; /* older than the window */
    if (st->hll) {
        lsf_hll *panes = e->ext;
        if (bi - st->head >= (int64_t)nb) {
            for (uint32_t i = 0; i < nb; i++)
                lsf_hll_clear(&panes[i]);
        } else {
            for (int64_t k = st->head + 1; k <= bi; k++)
                lsf_hll_clear(&panes[k % nb]);
        }
        if (bi > st->head)
            st->head = bi;
        lsf_hll_add(&panes[bi % nb], vh);
        out->observed = hll_estimate(r, e, scratch);
        out->fresh = false;
    } else {
        if (st->head == INT64_MIN || bi > st->head)
            st->head = bi;
        /* drop values that left the window, then find or add this one */
        dval *dv = e->ext;
        uint32_t k = 0;
        bool seen = false;
        for (uint32_t i = 0; i < e->ext_n; i++) {
            if (dv[i].bi <= st->head - (int64_t)nb)
                continue;
            if (dv[i].h == vh) {
                seen = true;
                dv[i].bi = bi > dv[i].bi ? bi : dv[i].bi;
            }
            dv[k++] = dv[i];
        }
        e->ext_n = k;
        out->fresh = k == 0;
        if (!seen) {
            uint32_t exact_max = d->limit <= LSF_DET_EXACT_DISTINCT ? (uint32_t)d->limit
                                                                    : LSF_DET_EXACT_DISTINCT;
            if (e->ext_n == exact_max && (double)exact_max < d->limit) {
                to_hll(r, s, e);
                apply_distinct(r, s, e, vh, t, scratch, out);
                return;
            }
            if (e->ext_n == e->ext_cap) {
                uint32_t ncap = e->ext_cap ? e->ext_cap * 2 : 4;
                if (ncap > exact_max)
                    ncap = exact_max;
                int64_t before = (int64_t)usable(e->ext);
                dv = realloc(e->ext, ncap * sizeof(dval));
                if (!dv)
                    lsf_die("out of memory (distinct values)");
                e->ext = dv;
                e->ext_cap = ncap;
                lsf_dkey_account(r, s, (int64_t)usable(dv) - before);
            }
            dv[e->ext_n++] = (dval){vh, bi};
        }
        out->observed = e->ext_n;
    }
    out->exemplar = out->observed + d->exemplars >= d->limit;
    out->fired = out->observed >= d->limit;
}

/* ---- sequence ------------------------------------------------------------ */

static void seq_clear(const lsf_detdef *d, lsf_dshard *s, lsf_dentry *e)
{
    seq_st *q = (seq_st *)e->state;
    memset(q, 0, sizeof(*q) + d->steps[0].count * sizeof(int64_t));
    if (e->heap_idx != UINT32_MAX || e->deadline_ns)
        lsf_dtimer_set(s, e, 0);
}

/* The first step completed (again) at t: the sequence starts (or restarts
 * its clock at the oldest of the first step's events). */
static void seq_first_done(const lsf_detdef *d, lsf_dshard *s, lsf_dentry *e, int64_t oldest,
                           int64_t t)
{
    seq_st *q = (seq_st *)e->state;
    q->s = 1;
    q->n = 0;
    q->start_ns = oldest;
    q->step_ns = t;
    if (d->steps[1].absent)
        lsf_dtimer_set(s, e, t + d->window_ns);
}

static void apply_sequence(lsf_detrun *r, lsf_dshard *s, lsf_dentry *e, uint32_t mask, int64_t t,
                           lsf_dfire *out)
{
    const lsf_detdef *d = &r->def;
    seq_st *q = (seq_st *)e->state;
    uint32_t c0 = d->steps[0].count;
    out->exemplar = true;
    out->fresh = q->s == 0 && q->rn == 0;
    if (q->s > 0 && !d->steps[q->s].absent && t - q->start_ns > d->window_ns) {
        q->s = 0; /* too late for the sequence in progress; the ring still counts */
        q->n = 0;
    }
    bool consumed = false;
    if (q->s > 0 && (mask & (1u << q->s))) {
        const lsf_det_step *st = &d->steps[q->s];
        if (st->absent) {
            seq_clear(d, s, e); /* it did happen: no alert; may start anew below */
        } else {
            consumed = true;
            if (++q->n >= st->count) {
                q->s++;
                q->n = 0;
                q->step_ns = t;
                if (q->s == d->nsteps) {
                    out->fired = true;
                    out->observed = d->nsteps;
                    return;
                }
                if (d->steps[q->s].absent)
                    lsf_dtimer_set(s, e, t + d->window_ns);
            }
        }
    }
    if (consumed || !(mask & 1u))
        return;
    q->ring[q->rhead] = t;
    q->rhead = (q->rhead + 1) % c0;
    if (q->rn < c0)
        q->rn++;
    if (q->rn < c0)
        return;
    int64_t oldest = q->ring[q->rhead]; /* the slot written next is the oldest */
    if (t - oldest <= d->window_ns && q->s <= 1)
        seq_first_done(d, s, e, oldest, t);
    out->observed = q->s;
}

/* ---- the entry points ------------------------------------------------------- */

void lsf_kind_apply(lsf_detrun *r, lsf_dshard *s, lsf_dentry *e, const lsf_dmatch *m,
                    int64_t t_ns, lsf_hll *scratch, lsf_dfire *out)
{
    memset(out, 0, sizeof(*out));
    out->at_ns = t_ns;
    switch (r->def.type) {
    case LSF_DET_THRESHOLD:
    case LSF_DET_SCORE:
        apply_count(r, e, t_ns, out);
        break;
    case LSF_DET_VALUE:
        apply_value(r, e, m->value, t_ns, out);
        break;
    case LSF_DET_DISTINCT:
        apply_distinct(r, s, e, m->vhash, t_ns, scratch, out);
        break;
    default:
        apply_sequence(r, s, e, m->steps, t_ns, out);
    }
}

void lsf_kind_timeout(lsf_detrun *r, lsf_dshard *s, lsf_dentry *e, lsf_dfire *out)
{
    memset(out, 0, sizeof(*out));
    out->fired = true;
    out->at_ns = e->deadline_ns;
    out->observed = r->def.nsteps - 1;
    lsf_dtimer_set(s, e, 0);
}

bool lsf_kind_idle(const lsf_detrun *r, const lsf_dentry *e, int64_t wm_ns)
{
    const lsf_detdef *d = &r->def;
    if (d->type != LSF_DET_SEQUENCE)
        return e->last_ns < wm_ns - d->window_ns - bucket_ns(d);
    const seq_st *q = (const seq_st *)e->state;
    if (q->s > 0)
        return false;
    return q->rn == 0 || e->last_ns < wm_ns - d->window_ns;
}

void lsf_kind_reset(lsf_detrun *r, lsf_dshard *s, lsf_dentry *e)
{
    const lsf_detdef *d = &r->def;
    switch (d->type) {
    case LSF_DET_SEQUENCE:
        seq_clear(d, s, e);
        return;
    case LSF_DET_DISTINCT:
        lsf_kind_free_ext(r, s, e);
        break;
    default:
        break;
    }
    memset(e->state, 0, lsf_kind_state_bytes(d));
    ((win *)e->state)->head = INT64_MIN; /* distinct_st starts with its head too */
}

void lsf_kind_free_ext(lsf_detrun *r, lsf_dshard *s, lsf_dentry *e)
{
    if (!e->ext)
        return;
    int64_t bytes = (int64_t)usable(e->ext);
    distinct_st *st = (distinct_st *)e->state;
    if (r->def.type == LSF_DET_DISTINCT && st->hll) {
        lsf_hll *panes = e->ext;
        for (uint32_t i = 0; i < nbuckets(&r->def); i++) {
            bytes += (int64_t)usable(panes[i].reg);
            lsf_hll_free(&panes[i]);
        }
        st->hll = 0;
    }
    free(e->ext);
    e->ext = NULL;
    e->ext_n = e->ext_cap = 0;
    lsf_dkey_account(r, s, -bytes);
}

/* ---- snapshots of the variable part ------------------------------------------ */

void lsf_kind_save(const lsf_detrun *r, const lsf_dentry *e, lsf_wbuf *w)
{
    if (r->def.type != LSF_DET_DISTINCT)
        return;
    const distinct_st *st = (const distinct_st *)e->state;
    if (st->hll) {
        const lsf_hll *panes = e->ext;
        for (uint32_t i = 0; i < nbuckets(&r->def); i++)
            lsf_hll_save(&panes[i], w);
        return;
    }
    lsf_wbuf_u32(w, e->ext_n);
    lsf_wbuf_put(w, e->ext, e->ext_n * sizeof(dval));
}

int lsf_kind_load(lsf_detrun *r, lsf_dshard *s, lsf_dentry *e, lsf_rbuf *rb)
{
    if (r->def.type != LSF_DET_DISTINCT)
        return 0;
    distinct_st *st = (distinct_st *)e->state;
    e->ext = NULL;
    e->ext_n = e->ext_cap = 0;
    if (st->hll) {
        st->hll = 0;
        to_hll(r, s, e); /* empty panes of this precision, then their contents */
        lsf_hll *panes = e->ext;
        for (uint32_t i = 0; i < nbuckets(&r->def); i++)
            if (lsf_hll_load(&panes[i], rb) < 0 || panes[i].p != r->def.hll_p)
                return -1;
        return 0;
    }
    uint32_t exact_max = r->def.limit <= LSF_DET_EXACT_DISTINCT ? (uint32_t)r->def.limit
                                                                : LSF_DET_EXACT_DISTINCT;
    uint32_t n = lsf_rbuf_u32_max(rb, exact_max);
    const void *p = lsf_rbuf_view(rb, (size_t)n * sizeof(dval));
    if (rb->bad)
        return -1;
    if (!n)
        return 0;
    e->ext = malloc(n * sizeof(dval));
    if (!e->ext)
        lsf_die("out of memory");
    memcpy(e->ext, p, n * sizeof(dval));
    e->ext_n = e->ext_cap = n;
    lsf_dkey_account(r, s, (int64_t)usable(e->ext));
    return 0;
}
