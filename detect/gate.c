/* gate.c - which detections an event can match, without trying every `when`.
 *
 * Each detection gets a gate read off its `when` (for a sequence without
 * one, off all of its steps): one condition every match must satisfy, of a
 * kind a single read of the field decides for many detections at once - an
 * equality (eq / in), looked up in a hash of the values, or a prefix. Per
 * event, each gated field (in practice rule.id) is read once, and only the
 * detections its value lets through, plus the ungated ones, are tried.
 *
 * The one design choice to know: a gate is a necessary condition, tested
 * with exactly the comparison the condition itself makes, and what passes is
 * then tried in full, in set order. So the gate changes which `when`s run,
 * never a result or the order of matches.
 *
 * Threads: built by lsf_detector_set before the set is published, then only
 * read (lsf_detgate_select on any worker).
 */
#include <stdlib.h>
#include <string.h>

#include "anomaly/hash.h"
#include "core/log.h"
#include "detect/detect.h"
#include "rules/rules_int.h"

typedef struct gfield {
    lsf_fieldref ref;
    /* equality values: value k lets dets[off[k] .. off[k+1]) through */
    const char **vals;
    uint32_t *lens, *off, *dets, nvals, ndets, cap;
    uint32_t *slots; /* open addressing over the values: k + 1, 0 = empty */
    uint32_t mask;
    /* prefixes: pfx[k] lets pfx_det[k] through */
    const char **pfx;
    uint32_t *pfx_len, *pfx_det, npfx, cap_pfx;
} gfield;

struct lsf_detgate {
    gfield *f;
    uint32_t nf;
    uint32_t words;  /* bitset size, 64 detections a word */
    uint64_t *always;/* detections without a gate */
};

static void *xrealloc(void *p, size_t n)
{
    p = realloc(p, n ? n : 1);
    if (!p)
        lsf_die("out of memory (detections)");
    return p;
}

static uint32_t hash_str(const char *p, size_t n)
{
    return (uint32_t)lsf_hash64(p, n, 0x67617465ull);
}

/* The condition of w that serves as a gate: the first eq / in, else the
 * first prefix; NULL when none. */
static const lsf_cond *gate_cond(const lsf_when *w, bool eq_only)
{
    for (uint32_t i = 0; w && i < w->n; i++)
        if (w->conds[i].op == LSF_OP_EQ || w->conds[i].op == LSF_OP_IN)
            return &w->conds[i];
    for (uint32_t i = 0; !eq_only && w && i < w->n; i++)
        if (w->conds[i].op == LSF_OP_PREFIX)
            return &w->conds[i];
    return NULL;
}

static bool same_field(const lsf_fieldref *a, const lsf_fieldref *b)
{
    return a->fx == b->fx && lsf_str_eq(a->name, b->name);
}

static gfield *field_of(lsf_detgate *g, const lsf_fieldref *ref)
{
    for (uint32_t i = 0; i < g->nf; i++)
        if (same_field(&g->f[i].ref, ref))
            return &g->f[i];
    g->f = xrealloc(g->f, (g->nf + 1) * sizeof(gfield));
    gfield *f = &g->f[g->nf++];
    memset(f, 0, sizeof(*f));
    f->ref = *ref;
    return f;
}

typedef struct pair {
    const char *s;
    uint32_t len, det;
} pair;

static int cmp_pair(const void *a, const void *b)
{
    const pair *x = a, *y = b;
    if (x->len != y->len)
        return x->len < y->len ? -1 : 1;
    int c = memcmp(x->s, y->s, x->len);
    return c ? c : (x->det < y->det ? -1 : x->det > y->det);
}

/* Equality values of every gate on field f, then its hash. */
static void build_values(gfield *f, pair *p, size_t n)
{
    if (n) /* a field with prefix gates only has none */
        qsort(p, n, sizeof(pair), cmp_pair);
    f->vals = xrealloc(NULL, n * sizeof(char *));
    f->lens = xrealloc(NULL, n * sizeof(uint32_t));
    f->off = xrealloc(NULL, (n + 1) * sizeof(uint32_t));
    f->dets = xrealloc(NULL, n * sizeof(uint32_t));
    for (size_t i = 0; i < n; i++) {
        bool same_val = i && p[i].len == p[i - 1].len && memcmp(p[i].s, p[i - 1].s, p[i].len) == 0;
        if (same_val && p[i].det == p[i - 1].det)
            continue; /* a value listed twice by one detection */
        if (!same_val) {
            f->off[f->nvals] = f->ndets;
            f->vals[f->nvals] = p[i].s;
            f->lens[f->nvals++] = p[i].len;
        }
        f->dets[f->ndets++] = p[i].det;
    }
    f->off[f->nvals] = f->ndets;
    uint32_t size = 8;
    while (size < f->nvals * 2)
        size *= 2;
    f->slots = xrealloc(NULL, size * sizeof(uint32_t));
    memset(f->slots, 0, size * sizeof(uint32_t));
    f->mask = size - 1;
    for (uint32_t k = 0; k < f->nvals; k++) {
        uint32_t h = hash_str(f->vals[k], f->lens[k]) & f->mask;
        while (f->slots[h])
            h = (h + 1) & f->mask;
        f->slots[h] = k + 1;
    }
}

lsf_detgate *lsf_detgate_build(const lsf_detset *set)
{
    lsf_detgate *g = xrealloc(NULL, sizeof(*g));
    memset(g, 0, sizeof(*g));
    g->words = (set->n + 63) / 64;
    g->always = xrealloc(NULL, (g->words ? g->words : 1) * sizeof(uint64_t));
    memset(g->always, 0, (g->words ? g->words : 1) * sizeof(uint64_t));
    pair **vals = NULL; /* per field of g->f, its equality values */
    size_t *nvals = NULL;
    for (uint32_t ri = 0; ri < set->n; ri++) {
        const lsf_detdef *d = &set->runs[ri]->def;
        /* the conditions that gate ri: one of its `when`, or one per step
         * of a sequence without a `when`, all eq / in on the same field */
        const lsf_cond *c[64];
        uint32_t nc = 0;
        if (d->when) {
            if ((c[0] = gate_cond(d->when, false)))
                nc = 1;
        } else if (d->type == LSF_DET_SEQUENCE && d->nsteps <= 64) {
            for (uint32_t s = 0; s < d->nsteps; s++) {
                const lsf_cond *sc = gate_cond(d->steps[s].when, true);
                if (!sc || (nc && !same_field(&sc->field, &c[0]->field))) {
                    nc = 0;
                    break;
                }
                c[nc++] = sc;
            }
        }
        if (!nc) {
            g->always[ri / 64] |= 1ull << (ri % 64);
            continue;
        }
        uint32_t before = g->nf;
        gfield *f = field_of(g, &c[0]->field);
        uint32_t fi = (uint32_t)(f - g->f);
        if (g->nf != before) {
            vals = xrealloc(vals, g->nf * sizeof(pair *));
            nvals = xrealloc(nvals, g->nf * sizeof(size_t));
            vals[fi] = NULL;
            nvals[fi] = 0;
        }
        for (uint32_t k = 0; k < nc; k++) {
            for (uint32_t s = 0; s < c[k]->nstrs; s++) {
                if (c[k]->op == LSF_OP_PREFIX) {
                    f->pfx = xrealloc(f->pfx, (f->npfx + 1) * sizeof(char *));
                    f->pfx_len = xrealloc(f->pfx_len, (f->npfx + 1) * sizeof(uint32_t));
                    f->pfx_det = xrealloc(f->pfx_det, (f->npfx + 1) * sizeof(uint32_t));
                    f->pfx[f->npfx] = c[k]->strs[s];
                    f->pfx_len[f->npfx] = c[k]->lens[s];
                    f->pfx_det[f->npfx++] = ri;
                    continue;
                }
                vals[fi] = xrealloc(vals[fi], (nvals[fi] + 1) * sizeof(pair));
                vals[fi][nvals[fi]++] = (pair){c[k]->strs[s], c[k]->lens[s], ri};
            }
        }
    }
    for (uint32_t i = 0; i < g->nf; i++) {
        build_values(&g->f[i], vals[i], nvals[i]);
        free(vals[i]);
    }
    free(vals);
    free(nvals);
    return g;
}

void lsf_detgate_free(lsf_detgate *g)
{
    if (!g)
        return;
    for (uint32_t i = 0; i < g->nf; i++) {
        gfield *f = &g->f[i];
        free(f->vals);
        free(f->lens);
        free(f->off);
        free(f->dets);
        free(f->slots);
        free(f->pfx);
        free(f->pfx_len);
        free(f->pfx_det);
    }
    free(g->f);
    free(g->always);
    free(g);
}

uint32_t lsf_detgate_words(const lsf_detgate *g)
{
    return g->words;
}

void lsf_detgate_select(const lsf_detgate *g, const lsf_event *ev, uint64_t *bits)
{
    memcpy(bits, g->always, g->words * sizeof(uint64_t));
    for (uint32_t i = 0; i < g->nf; i++) {
        const gfield *f = &g->f[i];
        char scratch[48];
        lsf_str v;
        if (!lsf_fieldref_get(ev, &f->ref, scratch, &v))
            continue; /* eq, in and prefix all need the field */
        if (f->nvals) {
            uint32_t h = hash_str(v.ptr, v.len) & f->mask;
            for (uint32_t slot; (slot = f->slots[h]) != 0; h = (h + 1) & f->mask) {
                uint32_t k = slot - 1;
                if (f->lens[k] != v.len || (v.len && memcmp(f->vals[k], v.ptr, v.len) != 0))
                    continue;
                for (uint32_t j = f->off[k]; j < f->off[k + 1]; j++)
                    bits[f->dets[j] / 64] |= 1ull << (f->dets[j] % 64);
                break;
            }
        }
        for (uint32_t k = 0; k < f->npfx; k++)
            if (f->pfx_len[k] <= v.len &&
                (!f->pfx_len[k] || memcmp(f->pfx[k], v.ptr, f->pfx_len[k]) == 0))
                bits[f->pfx_det[k] / 64] |= 1ull << (f->pfx_det[k] % 64);
    }
}
