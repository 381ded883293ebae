/* template.c - online log-template mining.
 *
 * Design essay. Logs are printf output: a fixed text with variables filled
 * in. Recovering the fixed text ("template") of each line turns a stream of
 * unique strings into a small alphabet of events whose counts, rarity and
 * novelty can be tracked - which is what the rare_template detector does.
 * Drain (He, Zhu, Zheng & Lyu, "Drain: an online log parsing approach with
 * fixed depth tree", ICWS 2017) made this practical online: route a line
 * through a tree keyed by its token count and its first tokens, then compare
 * it only with the few templates in that leaf, join the most similar one if
 * similar enough (turning the differing positions into <*>) or start a new
 * one. Zhu et al. ("Tools and benchmarks for automated log parsing", ICSE
 * 2019) found it the most accurate and fastest of 13 parsers on Loghub, at
 * a published grouping accuracy of 0.865 averaged over 16 systems - with a
 * hand-written masking regex per system.
 *
 * We keep Drain's shape (a fixed-depth tree: token count, then the first two
 * tokens, variables routed to a shared branch) and change two things so that
 * one configuration serves every source:
 *  - Generic masking (mask.c) decides from the token itself whether it is a
 *    variable: digits, paths, hex, key=value values, timestamps, user names.
 *  - A strict merge: a line may join a template only if no position holds
 *    two different constants; positions where one side is a variable are
 *    free. Drain instead joins when at least half the positions agree, which
 *    merges "VM Started" with "VM Paused" and "initialization" with
 *    "finalization" - separate events in the ground truth of most systems.
 *    The cost is that alphabetic variables are not learned (the masking must
 *    know them), which is why the user-name rule exists. Among candidates
 *    without conflict the most similar wins (ties: the more general).
 * Measured with ../shared/tools/loghub/grouping_accuracy.py (docs/
 * anomaly.md has the per-system table) the average grouping accuracy is
 * 0.917 (0.912 on the corrected ground truth), against Drain's 0.865.
 *
 * Ids: a template's id is a hash of the masked text of the line that created
 * it, so ids survive restarts: a snapshot restores them exactly, and even
 * without one a template born from the same masked line gets the same id.
 * Memory is bounded by max_templates; when full, the least recently used
 * sixteenth is evicted in one pass (counted), which keeps eviction cheap
 * when a source floods the miner with unparseable lines.
 *
 * Exact repeats: structured logs often carry a constant message ("order
 * placed") with the variables in other fields, so the same line comes back
 * again and again. A worker's memo (lsf_miner_memo) remembers the answer for
 * a line it mined; it is reused only while the miner's version - bumped by
 * every change to templates or leaves - is the one it was found under, so
 * it is exactly the answer mining would give, for a hash, a compare and
 * two atomic counters instead of masking, the tree and the read lock.
 *
 * Threads: matching a line against existing templates takes the read side
 * of a read-write lock (counts and recency are atomics), so workers mine in
 * parallel; creating or generalising a template retakes the write side and
 * repeats the search (another worker may have done it meanwhile). A memo
 * belongs to one thread; its hits take no lock.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "anomaly/hash.h"
#include "anomaly/template.h"
#include "core/log.h"

typedef struct part {
    uint32_t sep_off, sep_len, tok_off, tok_len; /* into cluster.text */
} part;

typedef struct cluster {
    uint64_t id;
    uint64_t *h;      /* ntok token hashes, 0 = variable */
    part *parts;      /* ntok */
    char *text;       /* separators and tokens of the creating line */
    uint32_t ntok, trail_off, trail_len;
    uint64_t k0, k1;  /* leaf key (with ntok) */
    _Atomic uint64_t count;
    _Atomic uint64_t last_use;
    bool live;
} cluster;

typedef struct leaf {
    uint32_t ntok;
    uint64_t k0, k1;
    uint32_t *cl;     /* cluster slots */
    uint32_t n, cap;
    bool used;
} leaf;

struct lsf_miner {
    pthread_rwlock_t lock;
    lsf_miner_opts opts;
    cluster *cl;      /* max_templates slots, allocated once: a slot never moves (memo
                       * hits update its counters without the lock) */
    uint32_t ncl, capcl; /* slots used; slots accounted (grows by doubling) */
    uint32_t *free_slots;
    uint32_t nfree;
    uint32_t live;
    leaf *leaves;     /* open addressing */
    uint32_t leaf_cap, nleaves;
    _Atomic uint64_t clock;
    uint64_t created, evicted;
    _Atomic uint64_t version; /* bumped (holding the write lock) before any change to
                               * templates or leaves */
};

void lsf_miner_opts_default(lsf_miner_opts *o)
{
    o->max_templates = 20000;
    o->min_similarity = 0.1;
}

static void *xcalloc(size_t n, size_t sz)
{
    void *p = calloc(n ? n : 1, sz);
    if (!p)
        lsf_die("out of memory (template miner)");
    return p;
}

lsf_miner *lsf_miner_new(const lsf_miner_opts *o)
{
    lsf_miner *m = xcalloc(1, sizeof(*m));
    if (o)
        m->opts = *o;
    else
        lsf_miner_opts_default(&m->opts);
    if (m->opts.max_templates < 1)
        m->opts.max_templates = 1;
    pthread_rwlock_init(&m->lock, NULL);
    m->cl = xcalloc(m->opts.max_templates, sizeof(cluster));
    m->version = 1; /* a memo's empty lines hold 0 */
    m->leaf_cap = 64;
    m->leaves = xcalloc(m->leaf_cap, sizeof(leaf));
    return m;
}

/* An empty slot for a new template. The counters are stored as atomics: a
 * memo hit of the slot's previous template may still be adding to them. */
static void cluster_reset(cluster *c)
{
    c->id = 0;
    c->h = NULL;
    c->parts = NULL;
    c->text = NULL;
    c->ntok = c->trail_off = c->trail_len = 0;
    c->k0 = c->k1 = 0;
    c->live = false;
    atomic_store_explicit(&c->count, 0, memory_order_relaxed);
    atomic_store_explicit(&c->last_use, 0, memory_order_relaxed);
}

static void cluster_release(cluster *c)
{
    free(c->h);
    free(c->parts);
    free(c->text);
    c->h = NULL;
    c->parts = NULL;
    c->text = NULL;
    c->live = false;
}

static void clear(lsf_miner *m)
{
    for (uint32_t i = 0; i < m->ncl; i++)
        if (m->cl[i].live)
            cluster_release(&m->cl[i]);
    for (uint32_t i = 0; i < m->leaf_cap; i++)
        free(m->leaves[i].cl);
    memset(m->leaves, 0, m->leaf_cap * sizeof(leaf));
    m->nleaves = 0;
    m->ncl = m->nfree = m->live = 0;
}

void lsf_miner_free(lsf_miner *m)
{
    if (!m)
        return;
    clear(m);
    free(m->leaves);
    free(m->cl);
    free(m->free_slots);
    pthread_rwlock_destroy(&m->lock);
    free(m);
}

/* ---- leaves ------------------------------------------------------------ */

static uint64_t leaf_hash(uint32_t ntok, uint64_t k0, uint64_t k1)
{
    return lsf_mix64(k0 ^ lsf_mix64(k1 + ntok));
}

static leaf *leaf_find(const lsf_miner *m, uint32_t ntok, uint64_t k0, uint64_t k1)
{
    uint32_t mask = m->leaf_cap - 1;
    for (uint32_t i = (uint32_t)leaf_hash(ntok, k0, k1) & mask;; i = (i + 1) & mask) {
        leaf *l = &m->leaves[i];
        if (!l->used)
            return NULL;
        if (l->ntok == ntok && l->k0 == k0 && l->k1 == k1)
            return l;
    }
}

static leaf *leaf_slot(leaf *tab, uint32_t cap, uint32_t ntok, uint64_t k0, uint64_t k1)
{
    uint32_t mask = cap - 1;
    for (uint32_t i = (uint32_t)leaf_hash(ntok, k0, k1) & mask;; i = (i + 1) & mask) {
        leaf *l = &tab[i];
        if (!l->used || (l->ntok == ntok && l->k0 == k0 && l->k1 == k1))
            return l;
    }
}

static leaf *leaf_get(lsf_miner *m, uint32_t ntok, uint64_t k0, uint64_t k1)
{
    leaf *l = leaf_find(m, ntok, k0, k1);
    if (l)
        return l;
    if (2 * (m->nleaves + 1) > m->leaf_cap) {
        uint32_t ncap = m->leaf_cap * 2;
        leaf *nt = xcalloc(ncap, sizeof(leaf));
        for (uint32_t i = 0; i < m->leaf_cap; i++)
            if (m->leaves[i].used)
                *leaf_slot(nt, ncap, m->leaves[i].ntok, m->leaves[i].k0, m->leaves[i].k1) =
                    m->leaves[i];
        free(m->leaves);
        m->leaves = nt;
        m->leaf_cap = ncap;
    }
    l = leaf_slot(m->leaves, m->leaf_cap, ntok, k0, k1);
    *l = (leaf){.ntok = ntok, .k0 = k0, .k1 = k1, .used = true};
    m->nleaves++;
    return l;
}

static void leaf_add(leaf *l, uint32_t slot)
{
    if (l->n == l->cap) {
        l->cap = l->cap ? l->cap * 2 : 4;
        l->cl = realloc(l->cl, l->cap * sizeof(uint32_t));
        if (!l->cl)
            lsf_die("out of memory (template miner)");
    }
    l->cl[l->n++] = slot;
}

static void leaf_remove(leaf *l, uint32_t slot)
{
    for (uint32_t i = 0; i < l->n; i++)
        if (l->cl[i] == slot) {
            l->cl[i] = l->cl[--l->n];
            return;
        }
}

static void key_of(const lsf_masked *mk, uint64_t *k0, uint64_t *k1)
{
    *k0 = mk->tok[0].h;
    *k1 = mk->n > 1 ? mk->tok[1].h : 0;
}

/* ---- matching ---------------------------------------------------------- */

/* The best template of the leaf for the line: no two different constants at
 * one position, highest share of agreeing positions (>= min_similarity),
 * ties to the more general. -1 when none. */
static int64_t best_match(const lsf_miner *m, const leaf *l, const lsf_masked *mk)
{
    int64_t best = -1;
    double best_sim = -1;
    uint32_t best_vars = 0;
    for (uint32_t i = 0; i < l->n; i++) {
        const cluster *c = &m->cl[l->cl[i]];
        uint32_t same = 0, vars = 0, k;
        for (k = 0; k < mk->n; k++) {
            uint64_t a = c->h[k], b = mk->tok[k].h;
            if (a == b)
                same++;
            else if (a && b)
                break; /* two different constants */
            vars += a == 0;
        }
        if (k < mk->n)
            continue;
        double sim = (double)same / mk->n;
        if (sim > best_sim || (sim == best_sim && vars > best_vars)) {
            best = l->cl[i];
            best_sim = sim;
            best_vars = vars;
        }
    }
    return best_sim >= m->opts.min_similarity ? best : -1;
}

static bool needs_generalising(const cluster *c, const lsf_masked *mk)
{
    for (uint32_t k = 0; k < mk->n; k++)
        if (c->h[k] && !mk->tok[k].h)
            return true;
    return false;
}

/* A line matched c: its count and recency (the eviction order). */
static void count_use(lsf_miner *m, cluster *c, lsf_template_match *out)
{
    out->count = atomic_fetch_add_explicit(&c->count, 1, memory_order_relaxed) + 1;
    atomic_store_explicit(&c->last_use,
                          atomic_fetch_add_explicit(&m->clock, 1, memory_order_relaxed),
                          memory_order_relaxed);
}

static void fill_match(lsf_miner *m, cluster *c, uint32_t slot, lsf_template_match *out)
{
    out->id = c->id;
    out->slot = slot;
    count_use(m, c, out);
}

/* ---- creation and eviction --------------------------------------------- */

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return (x > y) - (x < y);
}

static void evict_some(lsf_miner *m)
{
    uint32_t k = m->opts.max_templates / 16;
    if (k < 1)
        k = 1;
    uint64_t *uses = xcalloc(m->live, sizeof(uint64_t));
    uint32_t n = 0;
    for (uint32_t i = 0; i < m->ncl; i++)
        if (m->cl[i].live)
            uses[n++] = atomic_load_explicit(&m->cl[i].last_use, memory_order_relaxed);
    qsort(uses, n, sizeof(uint64_t), cmp_u64);
    uint64_t cut = uses[k - 1 < n ? k - 1 : n - 1];
    free(uses);
    uint32_t gone = 0;
    for (uint32_t i = 0; i < m->ncl && gone < k; i++) {
        cluster *c = &m->cl[i];
        if (!c->live || atomic_load_explicit(&c->last_use, memory_order_relaxed) > cut)
            continue;
        leaf *l = leaf_find(m, c->ntok, c->k0, c->k1);
        if (l)
            leaf_remove(l, i);
        cluster_release(c);
        m->free_slots[m->nfree++] = i;
        m->live--;
        m->evicted++;
        gone++;
    }
}

static uint32_t new_slot(lsf_miner *m)
{
    if (m->live >= m->opts.max_templates)
        evict_some(m);
    if (m->nfree)
        return m->free_slots[--m->nfree];
    if (m->ncl == m->capcl) {
        uint32_t ncap = m->capcl ? m->capcl * 2 : 64;
        if (ncap > m->opts.max_templates)
            ncap = m->opts.max_templates;
        uint32_t *nfs = realloc(m->free_slots, ncap * sizeof(uint32_t));
        if (!nfs)
            lsf_die("out of memory (template miner)");
        m->free_slots = nfs;
        m->capcl = ncap;
    }
    return m->ncl++;
}

/* Copies the line's separators and tokens into a new cluster and returns
 * the masked text's hash (the id). */
static uint64_t build(cluster *c, const char *line, const lsf_masked *mk, size_t len)
{
    size_t bytes = len - mk->trail_off;
    for (uint32_t k = 0; k < mk->n; k++)
        bytes += mk->tok[k].sep_len + mk->tok[k].len;
    c->text = malloc(bytes + 1);
    c->parts = malloc(mk->n * sizeof(part));
    c->h = malloc(mk->n * sizeof(uint64_t));
    if (!c->text || !c->parts || !c->h)
        lsf_die("out of memory (template miner)");
    uint32_t o = 0;
    uint64_t id = 0x74656d706c617465ULL;
    for (uint32_t k = 0; k < mk->n; k++) {
        const lsf_mtok *t = &mk->tok[k];
        c->h[k] = t->h;
        c->parts[k] = (part){o, t->sep_len, o + t->sep_len, t->len};
        memcpy(c->text + o, line + t->sep_off, t->sep_len);
        memcpy(c->text + o + t->sep_len, line + t->off, t->len);
        id = lsf_hash64(line + t->sep_off, t->sep_len, id);
        id = t->h ? lsf_mix64(id ^ t->h) : lsf_hash64("<*>", 3, id);
        o += t->sep_len + t->len;
    }
    c->trail_off = o;
    c->trail_len = (uint32_t)(len - mk->trail_off);
    memcpy(c->text + o, line + mk->trail_off, c->trail_len);
    c->text[o + c->trail_len] = 0;
    c->ntok = mk->n;
    id = lsf_hash64(line + mk->trail_off, c->trail_len, id);
    return id ? id : 1;
}

/* The line's template; true when found on the read side without a change,
 * with the version it was found under (a memo may keep such an answer). */
static bool mine(lsf_miner *m, const char *line, size_t len, lsf_template_match *out,
                 uint64_t *version)
{
    lsf_masked mk;
    lsf_mask_line(line, len, &mk);
    if (len > UINT32_MAX / 2)
        len = UINT32_MAX / 2;
    uint64_t k0, k1;
    key_of(&mk, &k0, &k1);
    memset(out, 0, sizeof(*out));

    pthread_rwlock_rdlock(&m->lock);
    leaf *l = leaf_find(m, mk.n, k0, k1);
    int64_t b = l ? best_match(m, l, &mk) : -1;
    if (b >= 0 && !needs_generalising(&m->cl[b], &mk)) {
        fill_match(m, &m->cl[b], (uint32_t)b, out);
        *version = atomic_load_explicit(&m->version, memory_order_relaxed);
        pthread_rwlock_unlock(&m->lock);
        return true;
    }
    pthread_rwlock_unlock(&m->lock);

    pthread_rwlock_wrlock(&m->lock);
    atomic_fetch_add_explicit(&m->version, 1, memory_order_relaxed);
    l = leaf_get(m, mk.n, k0, k1);
    b = best_match(m, l, &mk);
    if (b >= 0) {
        cluster *c = &m->cl[b];
        for (uint32_t k = 0; k < mk.n; k++)
            if (c->h[k] && !mk.tok[k].h) {
                c->h[k] = 0;
                out->generalised = true;
            }
        fill_match(m, c, (uint32_t)b, out);
    } else {
        uint32_t slot = new_slot(m);
        l = leaf_get(m, mk.n, k0, k1); /* eviction never frees leaves, but be safe */
        cluster *c = &m->cl[slot];
        cluster_reset(c);
        c->id = build(c, line, &mk, len);
        c->k0 = k0;
        c->k1 = k1;
        c->live = true;
        leaf_add(l, slot);
        m->live++;
        m->created++;
        out->created = true;
        fill_match(m, c, slot, out);
    }
    pthread_rwlock_unlock(&m->lock);
    return false;
}

void lsf_miner_add(lsf_miner *m, const char *line, size_t len, lsf_template_match *out)
{
    uint64_t version;
    mine(m, line, len, out, &version);
}

/* ---- a worker's memo of exact lines -------------------------------------- */

#define MEMO_LINES 256 /* direct-mapped by the line's hash: 32 KiB */
#define MEMO_TEXT 96   /* longer lines are not remembered (they rarely repeat) */

typedef struct memo_line {
    uint64_t hash, version; /* version 0: empty */
    uint64_t id;            /* the template's id */
    uint32_t slot, len;     /* the template's slot; the line's length */
    char text[MEMO_TEXT];
} memo_line;

struct lsf_miner_memo {
    lsf_miner *m;
    uint64_t hits;
    memo_line line[MEMO_LINES];
};

lsf_miner_memo *lsf_miner_memo_new(lsf_miner *m)
{
    lsf_miner_memo *mm = xcalloc(1, sizeof(*mm));
    mm->m = m;
    return mm;
}

void lsf_miner_memo_free(lsf_miner_memo *mm)
{
    free(mm);
}

uint64_t lsf_miner_memo_hits(const lsf_miner_memo *mm)
{
    return mm->hits;
}

void lsf_miner_memo_add(lsf_miner_memo *mm, const char *line, size_t len, lsf_template_match *out)
{
    lsf_miner *m = mm->m;
    if (len > MEMO_TEXT) {
        lsf_miner_add(m, line, len, out);
        return;
    }
    uint64_t h = lsf_hash64(line, len, 0x6d656d6fULL);
    memo_line *e = &mm->line[h & (MEMO_LINES - 1)];
    if (e->hash == h && e->len == len && memcmp(e->text, line, len) == 0 &&
        e->version == atomic_load_explicit(&m->version, memory_order_relaxed)) {
        /* No template changed: mining would say the same. Without the lock:
         * the answer is the memo's own, and the slot's counters are atomics
         * in an array that is never reallocated. Should a writer evict and
         * reuse the slot right after the version was read, one count and
         * recency mark land on the slot's new template: a line's worth of
         * statistics. */
        memset(out, 0, sizeof(*out));
        out->id = e->id;
        out->slot = e->slot;
        count_use(m, &m->cl[e->slot], out);
        mm->hits++;
        return;
    }
    uint64_t version;
    if (mine(m, line, len, out, &version)) {
        e->hash = h;
        e->version = version;
        e->id = out->id;
        e->slot = out->slot;
        e->len = (uint32_t)len;
        memcpy(e->text, line, len);
    }
}

/* ---- text, stats, snapshots -------------------------------------------- */

static int render(const cluster *c, char *buf, size_t cap)
{
    size_t o = 0;
#define PUT(p, n)                                                                                  \
    do {                                                                                           \
        size_t n_ = (n);                                                                           \
        if (o < cap) {                                                                             \
            size_t k_ = o + n_ < cap ? n_ : cap - o;                                               \
            memcpy(buf + o, (p), k_);                                                              \
        }                                                                                          \
        o += n_;                                                                                   \
    } while (0)
    for (uint32_t k = 0; k < c->ntok; k++) {
        PUT(c->text + c->parts[k].sep_off, c->parts[k].sep_len);
        if (c->h[k])
            PUT(c->text + c->parts[k].tok_off, c->parts[k].tok_len);
        else
            PUT("<*>", 3);
    }
    PUT(c->text + c->trail_off, c->trail_len);
#undef PUT
    if (cap)
        buf[o < cap ? o : cap - 1] = 0;
    return (int)(o < (size_t)INT32_MAX ? o : INT32_MAX);
}

int lsf_miner_text(lsf_miner *m, uint32_t slot, uint64_t id, char *buf, size_t cap)
{
    pthread_rwlock_rdlock(&m->lock);
    int rc = -1;
    if (slot < m->ncl && m->cl[slot].live && m->cl[slot].id == id)
        rc = render(&m->cl[slot], buf, cap);
    pthread_rwlock_unlock(&m->lock);
    if (rc > 0 && (size_t)rc >= cap)
        rc = cap ? (int)cap - 1 : 0;
    return rc;
}

void lsf_miner_stats(lsf_miner *m, uint64_t *held, uint64_t *created, uint64_t *evicted)
{
    pthread_rwlock_rdlock(&m->lock);
    *held = m->live;
    *created = m->created;
    *evicted = m->evicted;
    pthread_rwlock_unlock(&m->lock);
}

size_t lsf_miner_bytes(lsf_miner *m)
{
    pthread_rwlock_rdlock(&m->lock);
    size_t b = sizeof(*m) + m->capcl * (sizeof(cluster) + sizeof(uint32_t)) +
               m->leaf_cap * sizeof(leaf);
    for (uint32_t i = 0; i < m->ncl; i++) {
        const cluster *c = &m->cl[i];
        if (c->live)
            b += c->ntok * (sizeof(uint64_t) + sizeof(part)) + c->trail_off + c->trail_len + 1;
    }
    for (uint32_t i = 0; i < m->leaf_cap; i++)
        b += m->leaves[i].cap * sizeof(uint32_t);
    pthread_rwlock_unlock(&m->lock);
    return b;
}

#define MINER_MAGIC 0x4d4e5231u /* "MNR1" */

void lsf_miner_save(lsf_miner *m, lsf_wbuf *w)
{
    pthread_rwlock_rdlock(&m->lock);
    lsf_wbuf_u32(w, MINER_MAGIC);
    lsf_wbuf_u32(w, m->live);
    lsf_wbuf_u64(w, atomic_load(&m->clock));
    for (uint32_t i = 0; i < m->ncl; i++) {
        const cluster *c = &m->cl[i];
        if (!c->live)
            continue;
        uint32_t text_len = c->trail_off + c->trail_len;
        lsf_wbuf_u64(w, c->id);
        lsf_wbuf_u64(w, atomic_load(&c->count));
        lsf_wbuf_u64(w, atomic_load(&c->last_use));
        lsf_wbuf_u64(w, c->k0);
        lsf_wbuf_u64(w, c->k1);
        lsf_wbuf_u32(w, c->ntok);
        lsf_wbuf_u32(w, c->trail_off);
        lsf_wbuf_u32(w, c->trail_len);
        lsf_wbuf_put(w, c->h, c->ntok * sizeof(uint64_t));
        lsf_wbuf_put(w, c->parts, c->ntok * sizeof(part));
        lsf_wbuf_put(w, c->text, text_len);
    }
    pthread_rwlock_unlock(&m->lock);
}

/* Every part must lie inside the text, in order. */
static bool parts_valid(const part *p, uint32_t n, uint32_t trail_off)
{
    uint32_t o = 0;
    for (uint32_t k = 0; k < n; k++) {
        if (p[k].sep_off != o || p[k].tok_off != o + p[k].sep_len ||
            (uint64_t)p[k].tok_off + p[k].tok_len > trail_off)
            return false;
        o = p[k].tok_off + p[k].tok_len;
    }
    return o == trail_off;
}

int lsf_miner_load(lsf_miner *m, lsf_rbuf *r)
{
    pthread_rwlock_wrlock(&m->lock);
    atomic_fetch_add_explicit(&m->version, 1, memory_order_relaxed);
    clear(m);
    uint32_t magic = lsf_rbuf_u32(r);
    uint32_t n = lsf_rbuf_u32(r);
    uint64_t clock = lsf_rbuf_u64(r);
    if (magic != MINER_MAGIC || n > m->opts.max_templates)
        r->bad = true;
    for (uint32_t i = 0; i < n && !r->bad; i++) {
        uint64_t id = lsf_rbuf_u64(r), count = lsf_rbuf_u64(r), last = lsf_rbuf_u64(r);
        uint64_t k0 = lsf_rbuf_u64(r), k1 = lsf_rbuf_u64(r);
        uint32_t ntok = lsf_rbuf_u32_max(r, LSF_MASK_MAX_TOKENS);
        uint32_t trail_off = lsf_rbuf_u32(r), trail_len = lsf_rbuf_u32(r);
        const void *h = lsf_rbuf_view(r, ntok * sizeof(uint64_t));
        const void *parts = lsf_rbuf_view(r, ntok * sizeof(part));
        uint64_t text_len = (uint64_t)trail_off + trail_len;
        const char *text = text_len < (1u << 30) ? lsf_rbuf_view(r, text_len) : NULL;
        if (r->bad || !h || !parts || !text || ntok == 0) {
            r->bad = true;
            break;
        }
        uint32_t slot = new_slot(m);
        cluster *c = &m->cl[slot];
        cluster_reset(c);
        c->h = xcalloc(ntok, sizeof(uint64_t));
        c->parts = xcalloc(ntok, sizeof(part));
        c->text = xcalloc(text_len + 1, 1);
        memcpy(c->h, h, ntok * sizeof(uint64_t));
        memcpy(c->parts, parts, ntok * sizeof(part));
        memcpy(c->text, text, text_len);
        c->id = id;
        c->ntok = ntok;
        c->trail_off = trail_off;
        c->trail_len = trail_len;
        c->k0 = k0;
        c->k1 = k1;
        atomic_store(&c->count, count);
        atomic_store(&c->last_use, last);
        c->live = true;
        m->live++;
        if (!parts_valid(c->parts, ntok, trail_off) || (c->h[0] && k0 != c->h[0]) ||
            id == 0) {
            r->bad = true;
            break;
        }
        leaf_add(leaf_get(m, ntok, k0, k1), slot);
    }
    if (r->bad) {
        clear(m);
        pthread_rwlock_unlock(&m->lock);
        return -1;
    }
    atomic_store(&m->clock, clock);
    pthread_rwlock_unlock(&m->lock);
    return 0;
}
