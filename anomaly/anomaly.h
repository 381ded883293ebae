/* anomaly.h - anomaly scoring: detectors, their sharded per-key state, and
 * the entry points the stage, the CLI and the snapshots share.
 *
 *   score.c   the `anomaly` transform stage (config, batches, fields)
 *   detect.c  the four detector kinds on one key's state
 *   keys.c    sharded key records, one per key shared by the detectors with
 *             the same `by`; LRU and memory budget per detector
 *   slab.c    the records' memory (huge-page chunks)
 *   state.c   snapshots to disk and back
 *   cli.c     `logsift score` and `logsift templates`
 * The statistics are in stats.h, the series model in model.h, the template
 * miner in template.h; docs/anomaly.md is the user's view.
 *
 * The one design choice to know: a detector's keys are spread over shards
 * by key hash, and every batch visits the shards in order holding shard k's
 * ticket (a mutex, a condition variable and the next batch sequence number),
 * so each key has one owner at a time and sees its events in input order,
 * whatever the number of workers: a replay scores like live ingestion did.
 *
 * Threads: definitions are immutable after init; shard k of every detector
 * and key group is touched only under ticket k; counters are atomics; the
 * template miner and each group's slab have their own locks.
 */
#ifndef LSF_ANOMALY_H
#define LSF_ANOMALY_H

#include "core/turn.h"
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "anomaly/hash.h"
#include "anomaly/model.h"
#include "anomaly/sbuf.h"
#include "anomaly/stats.h"
#include "anomaly/template.h"
#include "core/config.h"
#include "core/event.h"
#include "core/metrics.h"

enum lsf_anom_type { LSF_ANOM_RATE = 0, LSF_ANOM_NUMERIC, LSF_ANOM_NEW_VALUE, LSF_ANOM_RARE_TEMPLATE };

/* Why an observation scored. */
enum lsf_anom_reason {
    LSF_REASON_NONE = 0,
    LSF_REASON_SPIKE,        /* model: far from the recent median */
    LSF_REASON_SHAPE,        /* model: a window shape not seen before */
    LSF_REASON_SEASON,       /* model: far from this hour's usual value */
    LSF_REASON_QUIET,        /* rate: a source stopped sending */
    LSF_REASON_NEW_VALUE,    /* new_value: first time for this key */
    LSF_REASON_NEW_TEMPLATE, /* rare_template: a template new to this source */
    LSF_REASON_RARE_TEMPLATE /* rare_template: a template this source rarely logs */
};
const char *lsf_anom_reason_name(int reason);
const char *lsf_anom_type_name(int type);

#define LSF_ANOM_MAX_BY 8
#define LSF_ANOM_MAX_KEY 512   /* bytes of a key kept (longer keys are cut, hashed whole) */
#define LSF_ANOM_RATE_OPEN 8   /* most intervals open for late events */
#define LSF_ANOM_TOPK 8        /* rare_template: a source's most frequent templates kept */

struct lsf_fieldref;

typedef struct lsf_anom_where {
    char *field, *value;
} lsf_anom_where;

/* One detector's settings (bound from its config map). */
typedef struct lsf_anom_def {
    char *name;
    int type;             /* enum lsf_anom_type */
    lsf_strlist by;       /* key fields */
    char *field;          /* numeric, new_value, rare_template */
    lsf_anom_where *where;
    size_t nwhere;
    int64_t interval_ns;  /* rate, numeric (0: numeric scores every value) */
    int64_t lateness_ns;  /* rate, numeric: how long an interval stays open for late events */
    int agg;              /* numeric: enum lsf_anom_agg of an interval's values */
    int64_t learning_ns;  /* new_value, rare_template */
    uint32_t max_values;  /* new_value, rare_template: values/templates kept per key */
    uint64_t max_keys;
    uint64_t max_memory;  /* bytes */
    uint32_t sketch_width; /* rare_template: count-min width per shard */
    lsf_model_conf model; /* rate, numeric */
    uint32_t rate_open;   /* intervals kept open: 1 + ceil(lateness / interval) */
} lsf_anom_def;

/* What one observation produced. */
typedef struct lsf_anom_result {
    double score;         /* 0..1 */
    double p;             /* tail probability behind the score */
    int reason;           /* enum lsf_anom_reason */
    bool numeric;         /* expected/observed are numbers (else strings) */
    double expected, observed, deviation;
    lsf_str observed_str; /* new_value: the value (points into the event or key) */
    char expected_str[160];
    uint64_t template_id; /* rare_template */
    uint32_t template_slot;
    int64_t at_ns;        /* the interval end (rate) or the event time */
} lsf_anom_result;

/* ---- keys.c ------------------------------------------------------------- */

/* One open interval: events and their values. */
typedef struct lsf_anom_acc {
    uint32_t n;
    float min, max;
    double sum;
} lsf_anom_acc;

enum lsf_anom_agg { LSF_ANOM_AGG_MEAN = 0, LSF_ANOM_AGG_MAX, LSF_ANOM_AGG_MIN, LSF_ANOM_AGG_SUM };

typedef struct lsf_anom_entry lsf_anom_entry;
typedef struct lsf_anom_rec lsf_anom_rec;

/* One detector's state for one key: a part of the key's record (below).
 * Only what an event reads is here; a series' model, touched once an
 * interval, lives in the record's cold tail (lsf_anom_cold), so the parts of
 * all the group's detectors share a few cache lines. The key's hash and
 * text are the record's (e->rec). */
struct lsf_anom_entry {
    lsf_anom_rec *rec;              /* the key's record, which holds this part */
    lsf_anom_entry *prev, *next;    /* LRU: shard.lru.next is the most recent */
    uint32_t bytes;                 /* what this entry accounts for */
    uint32_t stamp;                 /* shard clock (low bits) when last moved to the LRU front */
    int64_t last_ns;                /* event time of its last observation */
    union {
        struct {
            int64_t newest;        /* newest open interval index */
            int64_t closed;        /* last interval fed to the model */
            bool started;
            bool swept;            /* the sweep fed the model: bytes to re-account */
            lsf_model *m;          /* in the record's cold tail; touched once per interval */
            /* open intervals, by index % rate_open: the part ends after the
             * detector's rate_open of them (lsf_anom_part_size) */
            lsf_anom_acc acc[LSF_ANOM_RATE_OPEN];
        } series;                  /* rate, numeric */
        lsf_firstseen values;
        struct {
            lsf_firstseen seen;    /* templates of this source */
            lsf_topk top;          /* its most frequent templates, in heap below */
            uint64_t n;            /* its events */
            lsf_topk_entry heap[LSF_ANOM_TOPK];
        } tpl;
    } u;
};

/* One key of a key group (the detectors with the same `by`): found with one
 * hash lookup for all of them, its parts side by side in one allocation, so
 * an event costs one bucket and one record miss instead of one of each per
 * detector. A part is live while its detector keeps the key (each detector
 * still has its own LRU, budget and evictions); the record goes with its
 * last live part. */
struct lsf_anom_rec {
    uint64_t hash;
    uint32_t key_len;
    uint32_t live;                  /* bit i: part i is live */
    char *key;                      /* after the cold tail, NUL-terminated */
    /* then one part per detector of the group, each only as long as its
     * detector needs (lsf_anom_part_size), at the group's part_off[slot];
     * then the cold tail, each detector's at cold_off[slot] past the parts */
};

/* A slot of a key table: the key's hash beside its record, so a lookup reads
 * the table alone until it holds the right record (records are misses). */
typedef struct lsf_anom_slot {
    uint64_t hash;
    lsf_anom_rec *rec; /* NULL: empty */
} lsf_anom_slot;

/* A key group's table of records, one per shard (used under that shard's
 * ticket): open addressing with linear probing, at most half full. */
typedef struct lsf_anom_keytab {
    lsf_anom_slot *slot;
    uint32_t nslots, n;
} lsf_anom_keytab;

#define LSF_ANOM_MAX_GROUP 32 /* detectors sharing one record (more start a new group) */

/* slab.c: where a group's records live (size classes, huge-page chunks). */
typedef struct lsf_anom_slab {
    pthread_mutex_t m;
    char *cur;          /* the chunk being cut */
    size_t left;
    void **free;        /* per size class: freed records, linked through their first word */
    size_t nclass;
    struct {
        char *p;
        size_t len;
    } *chunks;
    size_t nchunks, capchunks;
} lsf_anom_slab;

void lsf_anom_slab_init(lsf_anom_slab *s);
/* Unmaps every chunk (every record allocated from s goes with it). */
void lsf_anom_slab_free(lsf_anom_slab *s);
/* n bytes, 64-byte aligned; never NULL (out of memory aborts). */
void *lsf_anom_slab_alloc(lsf_anom_slab *s, size_t n);
/* Gives back p, allocated with the same n. */
void lsf_anom_slab_put(lsf_anom_slab *s, void *p, size_t n);

typedef struct lsf_anom_group {
    uint32_t nparts;
    uint32_t part_off[LSF_ANOM_MAX_GROUP]; /* where part i starts in a record */
    uint32_t parts_bytes;                  /* all parts together */
    uint32_t cold_off[LSF_ANOM_MAX_GROUP]; /* where part i's cold state starts, past the parts */
    uint32_t cold_bytes;                   /* all cold state together */
    uint32_t nshards;
    lsf_anom_keytab *shard;
    lsf_anom_slab slab;
    lsf_mem mem; /* the slab, for the parts' first-seen sets */
} lsf_anom_group;

typedef struct lsf_anom_shard {
    uint32_t nbuckets;   /* buckets charged to the budget: a table of its own keys' size */
    uint32_t n;          /* live entries */
    lsf_anom_entry lru;  /* sentinel of the LRU ring */
    size_t bytes;
    uint64_t clock;      /* counts moves to the LRU front */
    lsf_cms cms;         /* rare_template: (source, template) counts */
    int64_t swept_ns;    /* rate: watermark of the last quiet sweep */
} lsf_anom_shard;

typedef struct lsf_anom_det {
    lsf_anom_def def;
    lsf_anom_shard *shard;
    uint32_t nshards;
    size_t shard_budget;    /* max_memory / nshards */
    uint64_t shard_keys;    /* max_keys / nshards (>= 1) */
    lsf_miner *miner;       /* rare_template */
    uint16_t field_id;
    /* the field names resolved once (rules/rules_int.h): by[0..by.n), then
     * where[0..nwhere), then field (when set) */
    struct lsf_fieldref *refs;
    lsf_anom_group *grp;    /* its key group: detectors with the same by-fields share records */
    uint32_t grp_slot;      /* its part in them */
    bool grp_owner;         /* frees grp */
    lsf_counter *c_scored, *c_alerts, *c_keys, *c_evicted, *c_skipped, *c_bad_value, *c_late,
        *c_quiet, *c_bytes;
} lsf_anom_det;

/* Shard tables. */
void lsf_anom_shards_init(lsf_anom_det *d, uint32_t nshards);
void lsf_anom_shards_free(lsf_anom_det *d);
/* Puts detector d into the key group of `leader` (a detector with the same
 * `by`), or into a new group of its own that d owns when leader is NULL or
 * its group is full. Once per detector, before any key is created. */
void lsf_anom_group_join(lsf_anom_det *d, lsf_anom_det *leader);
/* Frees d's group if d owns it (after every detector's shards are freed). */
void lsf_anom_group_free(lsf_anom_det *d);
/* Bytes of detector d's part: the common fields and its own member of the
 * union (a series' only up to its rate_open intervals), so a record wastes
 * no room on what its detectors do not keep. */
size_t lsf_anom_part_size(const lsf_anom_det *d);
/* Bytes of d's state in the record's cold tail (a series' model). */
size_t lsf_anom_cold_size(const lsf_anom_det *d);
/* Detector d's part of record r. */
static inline lsf_anom_entry *lsf_anom_part(const lsf_anom_det *d, const lsf_anom_rec *r)
{
    return (lsf_anom_entry *)((char *)r + d->grp->part_off[d->grp_slot]);
}
/* Detector d's cold state in record r. */
static inline void *lsf_anom_cold(const lsf_anom_det *d, const lsf_anom_rec *r)
{
    return (char *)r + sizeof(lsf_anom_rec) + d->grp->parts_bytes + d->grp->cold_off[d->grp_slot];
}
/* The record of hash in group g's shard k, or NULL. */
static inline lsf_anom_rec *lsf_anom_group_find(const lsf_anom_group *g, uint32_t k, uint64_t hash)
{
    const lsf_anom_keytab *t = &g->shard[k];
    uint32_t mask = t->nslots - 1;
    for (uint32_t i = (uint32_t)hash & mask;; i = (i + 1) & mask) {
        const lsf_anom_slot *s = &t->slot[i];
        if (!s->rec || s->hash == hash)
            return s->rec;
    }
}
/* The record of hash in d's group's shard k, or NULL. */
static inline lsf_anom_rec *lsf_anom_rec_find(const lsf_anom_det *d, uint32_t k, uint64_t hash)
{
    return lsf_anom_group_find(d->grp, k, hash);
}
/* Whether entry e is among the last eighth of its shard's moves to the LRU
 * front: such a busy key is not moved again (no writes to its neighbours). */
static inline bool lsf_anom_lru_recent(const lsf_anom_shard *s, const lsf_anom_entry *e)
{
    return (uint32_t)s->clock - e->stamp < s->n / 8 + 1;
}
/* Finds the entry of key (hash, text) in shard s, creating it (evicting
 * least-recently-used entries over the budget) when absent. Moves it to the
 * front of the LRU. *created tells which. Never NULL. */
lsf_anom_entry *lsf_anom_entry_get(lsf_anom_det *d, lsf_anom_shard *s, uint64_t hash,
                                   const char *key, uint32_t key_len, bool *created);
/* lsf_anom_entry_get when the caller has already looked the key's record up
 * in d's group: r is that record, or NULL when there is none. */
lsf_anom_entry *lsf_anom_entry_at(lsf_anom_det *d, lsf_anom_shard *s, lsf_anom_rec *r,
                                  uint64_t hash, const char *key, uint32_t key_len, bool *created);
/* After an update changed what entry e holds: re-accounts its bytes and
 * evicts other entries while the shard is over budget. */
void lsf_anom_entry_touched(lsf_anom_det *d, lsf_anom_shard *s, lsf_anom_entry *e);
/* Removes and frees every entry of a shard. */
void lsf_anom_shard_clear(lsf_anom_det *d, lsf_anom_shard *s);

/* ---- detect.c ----------------------------------------------------------- */

void lsf_anom_entry_init(const lsf_anom_det *d, lsf_anom_entry *e);
void lsf_anom_entry_free(const lsf_anom_det *d, lsf_anom_entry *e);
size_t lsf_anom_entry_bytes(const lsf_anom_det *d, const lsf_anom_entry *e);
void lsf_anom_entry_save(const lsf_anom_det *d, const lsf_anom_entry *e, lsf_wbuf *w);
int lsf_anom_entry_load(const lsf_anom_det *d, lsf_anom_entry *e, lsf_rbuf *r);

/* rate, numeric with an interval: adds one event (and, numeric, its value
 * x) at time_ns to its interval; intervals that fall out of the open range
 * are fed to the model (rate: the count, zeros for empty ones; numeric: the
 * aggregate, empty ones skipped). Returns true when one closed (res holds
 * the strongest). */
bool lsf_anom_series_event(lsf_anom_det *d, lsf_anom_entry *e, int64_t time_ns, double x,
                           lsf_anom_result *res);
/* rate, numeric: closes the intervals of a key that has been silent while
 * the watermark moved to wm_ns. Returns true when one scored (res holds the
 * strongest; LSF_REASON_QUIET for a rate that dropped to zero). */
bool lsf_anom_series_sweep(lsf_anom_det *d, lsf_anom_entry *e, int64_t wm_ns, lsf_anom_result *res);
/* rate, numeric: one observation straight to the model (numeric with
 * interval 0, and logsift score, where a row is an observation). */
void lsf_anom_series_value(lsf_anom_det *d, lsf_anom_entry *e, double x, int64_t time_ns,
                           lsf_anom_result *res);
void lsf_anom_new_value(lsf_anom_det *d, lsf_anom_entry *e, uint64_t vhash, lsf_str value,
                        int64_t time_ns, lsf_anom_result *res);
void lsf_anom_rare_template(lsf_anom_det *d, lsf_anom_shard *s, lsf_anom_entry *e,
                            const lsf_template_match *tm, int64_t time_ns, lsf_anom_result *res);
/* rare_template: the sketch's item for (source key hash, template id). */
static inline uint64_t lsf_anom_pair_hash(uint64_t key_hash, uint64_t template_id)
{
    return lsf_mix64(key_hash ^ template_id);
}

/* Fills res->expected_str (the usual values or templates) for a result that
 * will be shown; kept out of the per-event path. */
void lsf_anom_explain(const lsf_anom_det *d, const lsf_anom_entry *e, lsf_anom_result *res);

/* ---- the detector set (score.c) ------------------------------------------ */

typedef lsf_turn lsf_anom_ticket; /* core/turn.h */

typedef struct lsf_anom {
    lsf_anom_det *det;
    size_t ndet;
    uint32_t nshards;
    double cutoff;        /* anomaly.alert at or above */
    double annotate;      /* anomaly.* fields at or above */
    lsf_anom_ticket *tk;
    int64_t watermark_ns; /* latest event time, advanced under ticket 0 */
    int64_t max_future_ns;
    const char *name;
} lsf_anom;

/* Parses the `detectors:` list into a set (keys bound, validated). Returns 0
 * or -1 with err at the offending node. */
int lsf_anom_parse(lsf_anom *a, const lsf_node *list, uint32_t nshards, const char *stage_name,
                   lsf_errbuf *err);
/* Builds one detector of a type with default settings (logsift score). */
int lsf_anom_default(lsf_anom *a, int type, const char *name, lsf_errbuf *err);
void lsf_anom_free(lsf_anom *a);
/* Finds a detector by name, or NULL. */
lsf_anom_det *lsf_anom_find(lsf_anom *a, const char *name);

/* Key of an event for detector d: the by-fields' values joined by 0x1f into
 * buf (at most cap bytes kept). Returns the full length, or -1 when a field
 * is missing. */
int lsf_anom_key(const lsf_anom_det *d, const lsf_event *ev, char *buf, size_t cap,
                 uint64_t *hash);
uint32_t lsf_anom_shard_of(const lsf_anom *a, uint64_t hash);

/* ---- state.c ------------------------------------------------------------ */

/* Writes every detector's state to path (a temporary file renamed over it,
 * with a version and a checksum). Takes each shard's ticket lock in turn.
 * 0, or -1 with errno-style message in err. */
int lsf_anom_snapshot_save(lsf_anom *a, const char *path, lsf_errbuf *err);
/* Restores state saved by lsf_anom_snapshot_save. A missing file is 0 (a
 * first start). A corrupt or foreign file is reported in err, ignored
 * (state stays empty) and returns -1; a detector whose name or settings
 * changed since the snapshot starts empty (reported at info level). */
int lsf_anom_snapshot_load(lsf_anom *a, const char *path, lsf_errbuf *err);

/* ---- cli.c -------------------------------------------------------------- */

int lsf_anomaly_cmd_score(int argc, char **argv);
int lsf_anomaly_cmd_templates(int argc, char **argv);

#endif
