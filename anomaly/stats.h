/* stats.h - the streaming statistics anomaly scoring is built from.
 *
 * One statistic per file, each opening with a short design essay:
 *   ewma.c      exponentially weighted mean and variance (z-scores)
 *   seasonal.c  hour-of-day / hour-of-week baselines (EWMA per bucket)
 *   robust.c    sliding-window median and MAD (exact, sorted window)
 *   tail.c      tail rank of a measure from block maxima (calibration)
 *   novelty.c   nearest-neighbour distance of a window shape to history
 *   likely.c    anomaly likelihood: short-term raw score vs its long-run fit
 *   vigil.c     vigilance: a bar that rises with each report and decays
 *   hll.c       HyperLogLog distinct counts
 *   cms.c       count-min sketch (conservative update)
 *   topk.c      space-saving heavy hitters
 *   firstseen.c first-seen values with a learning period
 * Every structure is plain data owned by its caller: _init sets it up
 * (allocating lazily where it says so), _free releases it, _bytes reports
 * the heap it holds (for the per-detector memory budget), _save/_load write
 * and read it for snapshots (load returns -1 on a malformed or mismatched
 * buffer, leaving the structure valid and empty).
 * Threads: none of these lock; the caller owns each instance (the anomaly
 * stage keeps them inside per-key entries guarded by their shard's lock).
 */
#ifndef LSF_ANOMALY_STATS_H
#define LSF_ANOMALY_STATS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "anomaly/sbuf.h"

/* ---- ewma.c ------------------------------------------------------------- */

typedef struct lsf_ewma {
    double mean, var; /* weighted mean and (biased) weighted variance */
    double alpha;     /* weight of a new observation once warmed up */
    uint64_t n;       /* observations seen */
} lsf_ewma;

/* half_life in observations (> 0): an observation's weight halves after
 * that many newer ones. Until 1/n < alpha the mean is the plain average. */
void lsf_ewma_init(lsf_ewma *e, double half_life);
void lsf_ewma_add(lsf_ewma *e, double x);
/* The update itself, for callers that keep mean and variance elsewhere (the
 * seasonal buckets): n is the count including x. */
void lsf_ewma_step(double *mean, double *var, uint64_t n, double alpha, double x);
/* (x - mean) / sd, or 0 before `warmup` observations or with zero spread. */
double lsf_ewma_z(const lsf_ewma *e, double x, uint64_t warmup);
double lsf_ewma_sd(const lsf_ewma *e);

/* ---- seasonal.c --------------------------------------------------------- */

enum lsf_season { LSF_SEASON_NONE = 0, LSF_SEASON_DAILY = 24, LSF_SEASON_WEEKLY = 168 };

typedef struct lsf_season_bucket {
    float mean, var;
    uint32_t n;
} lsf_season_bucket;

typedef struct lsf_seasonal {
    lsf_season_bucket *b; /* `period` buckets, allocated on first add */
    uint16_t period;      /* enum lsf_season */
    float alpha;          /* per-bucket EWMA weight */
} lsf_seasonal;

/* half_life in observations of one bucket (e.g. 4: the last four Mondays
 * 10:00 weigh most). Buckets are UTC hours. */
void lsf_seasonal_init(lsf_seasonal *s, enum lsf_season period, double half_life);
void lsf_seasonal_free(lsf_seasonal *s);
/* Bucket of an event time (ns since the epoch, UTC). */
int lsf_seasonal_bucket(const lsf_seasonal *s, int64_t time_ns);
void lsf_seasonal_add(lsf_seasonal *s, int64_t time_ns, double x);
/* Expected value and spread for time_ns; false until the bucket has
 * `min_n` observations. */
bool lsf_seasonal_expect(const lsf_seasonal *s, int64_t time_ns, uint32_t min_n, double *mean,
                         double *sd);
size_t lsf_seasonal_bytes(const lsf_seasonal *s);
void lsf_seasonal_save(const lsf_seasonal *s, lsf_wbuf *w);
int lsf_seasonal_load(lsf_seasonal *s, lsf_rbuf *r);

/* ---- robust.c ----------------------------------------------------------- */

typedef struct lsf_slwin {
    float *ring;   /* last `cap` values in arrival order (head = oldest when full) */
    float *sorted; /* the same values, ascending */
    uint32_t cap, n, head;
} lsf_slwin;

/* cap >= 1; arrays are allocated on the first add. */
void lsf_slwin_init(lsf_slwin *w, uint32_t cap);
void lsf_slwin_free(lsf_slwin *w);
void lsf_slwin_add(lsf_slwin *w, double x);
/* Median of the window (0 when empty). O(1). */
double lsf_slwin_median(const lsf_slwin *w);
/* Median absolute deviation from the median, unscaled (multiply by 1.4826
 * for a normal sd). O(n) with a merge walk over the sorted window. */
double lsf_slwin_mad(const lsf_slwin *w);
/* The k-th most recent value (0 = newest); k < n. */
double lsf_slwin_recent(const lsf_slwin *w, uint32_t k);
size_t lsf_slwin_bytes(const lsf_slwin *w);
void lsf_slwin_save(const lsf_slwin *w, lsf_wbuf *wb);
int lsf_slwin_load(lsf_slwin *w, lsf_rbuf *r);

/* ---- tail.c ------------------------------------------------------------- */

#define LSF_TAIL_BLOCKS 16

typedef struct lsf_tailrank {
    float bmax[LSF_TAIL_BLOCKS]; /* maxima of the last full blocks (ring) */
    float cur;                   /* maximum of the block being filled */
    uint32_t block;              /* observations per block */
    uint32_t cur_n;              /* observations in the current block */
    uint32_t nb, head;           /* full blocks held, next slot */
    uint64_t n;                  /* observations seen */
} lsf_tailrank;

/* Ranks against the last LSF_TAIL_BLOCKS * block observations. */
void lsf_tailrank_init(lsf_tailrank *t, uint32_t block);
/* Upper-tail probability of `a` among the recent observations, from the
 * number of block maxima >= a (see tail.c). 1 when empty or when every
 * block reached a. */
double lsf_tailrank_p(const lsf_tailrank *t, double a);
/* The largest value of the horizon (0 when empty). */
double lsf_tailrank_max(const lsf_tailrank *t);
void lsf_tailrank_add(lsf_tailrank *t, double a);
void lsf_tailrank_save(const lsf_tailrank *t, lsf_wbuf *w);
int lsf_tailrank_load(lsf_tailrank *t, lsf_rbuf *r);

/* ---- novelty.c ---------------------------------------------------------- */

#define LSF_NOVELTY_MAX_DIMS 16

typedef struct lsf_novelty {
    float *mem;      /* up to `cap` vectors of `dims` floats (ring) */
    uint32_t cap;    /* most vectors kept */
    uint32_t alloc;  /* vectors allocated (grows by doubling to cap) */
    uint32_t n, head;
    uint8_t dims;
} lsf_novelty;

void lsf_novelty_init(lsf_novelty *nv, uint8_t dims, uint32_t cap);
void lsf_novelty_free(lsf_novelty *nv);
/* Euclidean distance from f to its nearest stored vector; INFINITY when
 * nothing is stored. */
double lsf_novelty_nn(const lsf_novelty *nv, const float *f);
/* Stores f, replacing the oldest vector when full. */
void lsf_novelty_add(lsf_novelty *nv, const float *f);
size_t lsf_novelty_bytes(const lsf_novelty *nv);
void lsf_novelty_save(const lsf_novelty *nv, lsf_wbuf *w);
int lsf_novelty_load(lsf_novelty *nv, lsf_rbuf *r);

/* ---- likely.c ----------------------------------------------------------- */

#define LSF_LIKELY_MAX_SHORT 24

typedef struct lsf_likely {
    float ring[LSF_LIKELY_MAX_SHORT]; /* the last k raw scores */
    lsf_ewma fit;                     /* long-run mean and variance of the short means */
    uint8_t k, n, head;               /* short length, held, next slot when full */
} lsf_likely;

/* short_len raw scores are averaged (1..LSF_LIKELY_MAX_SHORT); the long-run
 * fit has a half-life of long_half_life observations. */
void lsf_likely_init(lsf_likely *l, uint32_t short_len, double long_half_life);
/* Adds a raw score and returns the upper-tail probability of the short-term
 * mean (including it) under the normal fitted to the earlier short means:
 * the anomaly likelihood is 1 minus it. 1 until the ring is full and the
 * fit has `warmup` short means. Non-finite raw scores are ignored. */
double lsf_likely_add(lsf_likely *l, double raw, uint64_t warmup);
/* Whether the next add can return a probability below 1. */
bool lsf_likely_ready(const lsf_likely *l, uint64_t warmup);
void lsf_likely_save(const lsf_likely *l, lsf_wbuf *w);
int lsf_likely_load(lsf_likely *l, lsf_rbuf *r);

/* ---- vigil.c ------------------------------------------------------------ */

typedef struct lsf_vigil {
    float bar; /* raw measure at the last report, decayed */
} lsf_vigil;

/* The per-observation decay for a half-life in observations (0: none kept). */
double lsf_vigil_factor(double half_life);
void lsf_vigil_decay(lsf_vigil *v, double factor);
/* Whether a raw measure a clears the bar. */
bool lsf_vigil_passes(const lsf_vigil *v, double a);
/* A report of size a: the bar becomes a if that is higher. */
void lsf_vigil_raise(lsf_vigil *v, double a);

/* ---- hll.c -------------------------------------------------------------- */

typedef struct lsf_hll {
    uint8_t *reg; /* 2^p registers, allocated by init */
    uint8_t p;    /* precision, 4..18: standard error about 1.04 / sqrt(2^p) */
} lsf_hll;

void lsf_hll_init(lsf_hll *h, int p);
void lsf_hll_free(lsf_hll *h);
void lsf_hll_add(lsf_hll *h, uint64_t hash);
double lsf_hll_count(const lsf_hll *h);
void lsf_hll_clear(lsf_hll *h);
/* dst |= src; both of the same precision (else -1). */
int lsf_hll_merge(lsf_hll *dst, const lsf_hll *src);
size_t lsf_hll_bytes(const lsf_hll *h);
void lsf_hll_save(const lsf_hll *h, lsf_wbuf *w);
int lsf_hll_load(lsf_hll *h, lsf_rbuf *r);

/* ---- cms.c -------------------------------------------------------------- */

typedef struct lsf_cms {
    uint32_t *cnt;        /* depth rows of width counters */
    uint32_t width, depth;
    uint64_t total;       /* sum of every add */
    uint64_t wmul;        /* 2^64 / width rounded up: a remainder without a division */
} lsf_cms;

/* Sized for an overestimate of at most eps * total with probability
 * 1 - delta: width = ceil(e / eps), depth = ceil(ln(1 / delta)). */
void lsf_cms_init(lsf_cms *c, double eps, double delta);
void lsf_cms_free(lsf_cms *c);
/* Conservative update: raises only the counters that are below the new
 * estimate. Returns the new estimate of the item; *before (unless NULL) is
 * its estimate before the add, as lsf_cms_estimate would have said. */
uint32_t lsf_cms_add(lsf_cms *c, uint64_t hash, uint32_t n, uint32_t *before);
uint32_t lsf_cms_estimate(const lsf_cms *c, uint64_t hash);
/* Asks for the counters of an item ahead of an estimate or add. */
void lsf_cms_prefetch(const lsf_cms *c, uint64_t hash);
size_t lsf_cms_bytes(const lsf_cms *c);
void lsf_cms_save(const lsf_cms *c, lsf_wbuf *w);
int lsf_cms_load(lsf_cms *c, lsf_rbuf *r);

/* ---- topk.c ------------------------------------------------------------- */

typedef struct lsf_topk_entry {
    uint64_t id;
    uint64_t count; /* upper bound of the true count */
    uint64_t err;   /* count - err is a lower bound */
} lsf_topk_entry;

typedef struct lsf_topk {
    lsf_topk_entry *heap; /* min-heap by count, k entries */
    uint32_t *index;      /* open addressing: id -> heap slot + 1 (0 empty); NULL for k <= 8 */
    uint32_t k, n, index_cap;
    bool heap_given;      /* heap is the caller's (lsf_topk_init_in): not freed, not counted */
} lsf_topk;

void lsf_topk_init(lsf_topk *t, uint32_t k);
/* lsf_topk_init with the heap in the caller's memory, k entries of it, so
 * it can sit next to the caller's other state (the anomaly stage keeps a
 * source's top templates inside the key's record). */
void lsf_topk_init_in(lsf_topk *t, uint32_t k, lsf_topk_entry *heap);
void lsf_topk_free(lsf_topk *t);
/* Counts n more of id. When id takes the place of the least counted item,
 * that item is copied to *evicted (may be NULL) and true returned. */
bool lsf_topk_add(lsf_topk *t, uint64_t id, uint64_t n, lsf_topk_entry *evicted);
/* The monitored entry of id, or NULL. */
const lsf_topk_entry *lsf_topk_find(const lsf_topk *t, uint64_t id);
/* Copies up to max entries, largest count first; returns how many. */
uint32_t lsf_topk_list(const lsf_topk *t, lsf_topk_entry *out, uint32_t max);
/* Estimated count of id (0 when not monitored). */
uint64_t lsf_topk_count(const lsf_topk *t, uint64_t id);
size_t lsf_topk_bytes(const lsf_topk *t);
void lsf_topk_save(const lsf_topk *t, lsf_wbuf *w);
int lsf_topk_load(lsf_topk *t, lsf_rbuf *r);

/* ---- firstseen.c -------------------------------------------------------- */

enum lsf_seen {
    LSF_SEEN_KNOWN = 0,    /* seen before */
    LSF_SEEN_LEARNING = 1, /* new, but the learning period has not ended */
    LSF_SEEN_NEW = 2,      /* new after the learning period */
    LSF_SEEN_FULL = 3,     /* new, but the set is full: not remembered */
};

/* Memory a statistic's arrays may come from instead of malloc: alloc never
 * returns NULL; release gets back the size it was given. */
typedef struct lsf_mem {
    void *(*alloc)(void *ctx, size_t n);
    void (*release)(void *ctx, void *p, size_t n);
    void *ctx;
} lsf_mem;

typedef struct lsf_firstseen {
    uint64_t *slot;       /* open addressing of value hashes (0 = empty) */
    const lsf_mem *mem;   /* where slot comes from (NULL: malloc) */
    uint32_t cap;         /* slots (power of two), grows to max_values * 2 */
    uint32_t n;           /* distinct values held */
    uint32_t max_values;
    uint32_t singletons;  /* values seen exactly once (needs the count bit) */
    uint64_t obs;         /* observations */
    int64_t start_ns;     /* event time of the first observation */
} lsf_firstseen;

void lsf_firstseen_init(lsf_firstseen *f, uint32_t max_values);
/* The same, its slots from mem (the anomaly stage: huge-page slabs). */
void lsf_firstseen_init_in(lsf_firstseen *f, uint32_t max_values, const lsf_mem *mem);
void lsf_firstseen_free(lsf_firstseen *f);
/* Records one observation of value `hash` at event time `time_ns`. Values
 * first seen before start + learn_ns are learned silently. *p_new (may be
 * NULL) receives the probability that the next observation is a value never
 * seen, estimated before this one (Good-Turing: (singletons + 1) / (obs +
 * 2)). */
enum lsf_seen lsf_firstseen_add(lsf_firstseen *f, uint64_t hash, int64_t time_ns, int64_t learn_ns,
                                double *p_new);
/* Asks the CPU for the slot of `hash` ahead of an add (a hint, no effect). */
void lsf_firstseen_prefetch(const lsf_firstseen *f, uint64_t hash);
size_t lsf_firstseen_bytes(const lsf_firstseen *f);
void lsf_firstseen_save(const lsf_firstseen *f, lsf_wbuf *w);
int lsf_firstseen_load(lsf_firstseen *f, lsf_rbuf *r);

#endif
