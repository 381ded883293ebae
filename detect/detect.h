/* detect.h - detections: when a stream of classified events is worth an
 * alert. The structures shared by the files of detect/:
 *   def.c        reads detection definitions (packs' `detections:`, config)
 *   engine.c     the detector: matching, event time, ordered per-shard state
 *   keys.c       per-key state: hash tables, LRU, memory budget, timers
 *   kinds.c      the detection types (threshold, distinct, value, sequence,
 *                score) on one key's state
 *   alert.c      alerts: suppression, rate limit, severity, alert events
 *   snapshot.c   state to disk and back
 *   packtest.c   a detection's inline tests
 *   detections.c the `detections` transform stage (config, reload, snapshots)
 *   tail.c       `logsift tail`; replay.c: `logsift run --replay FILE`
 * docs/detections.md is the user's view.
 *
 * The one design choice to know: matching runs in parallel on every worker,
 * but state changes are applied per shard of group keys in batch submission
 * order (a ticket per shard, like ordered delivery), and every window runs on
 * event time with a watermark computed in that order. So the alerts depend
 * only on the sequence of events, not on batch boundaries, worker count or
 * timing: a replay of a file gives the alerts live ingestion gave.
 *
 * Threads: definitions and sets are immutable once built (any thread reads
 * them); a shard's state is touched only under its ticket lock; counters are
 * atomics.
 */
#ifndef LSF_DETECT_H
#define LSF_DETECT_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "anomaly/sbuf.h"
#include "anomaly/stats.h"
#include "core/config.h"
#include "core/event.h"
#include "core/metrics.h"
#include "rules/rules.h"

#define NS_PER_MS 1000000LL
#define NS_PER_S 1000000000LL

/* ---- definitions (def.c) ------------------------------------------------- */

enum lsf_det_type {
    LSF_DET_THRESHOLD = 0, /* >= count matching events in window */
    LSF_DET_DISTINCT,      /* >= count distinct values of field in window */
    LSF_DET_VALUE,         /* agg(field) over window compared with a limit */
    LSF_DET_SEQUENCE,      /* ordered steps within a time, optional absent last step */
    LSF_DET_SCORE,         /* >= count events with anomaly.score >= min in window */
};
enum lsf_det_agg { LSF_AGG_SUM = 0, LSF_AGG_AVG, LSF_AGG_MAX, LSF_AGG_MIN };
enum lsf_det_cmp { LSF_CMP_GT = 0, LSF_CMP_GE, LSF_CMP_LT, LSF_CMP_LE };
enum lsf_det_esc { LSF_ESC_COUNT = 0, LSF_ESC_OBSERVED, LSF_ESC_SCORE };

#define LSF_DET_MAX_STEPS 8
#define LSF_DET_MAX_STEP_COUNT 1000
#define LSF_DET_MAX_EXEMPLARS 16
#define LSF_DET_MAX_GROUP 8
#define LSF_DET_EXACT_DISTINCT 64 /* distinct values kept exactly before HLL */

typedef struct lsf_det_step {
    lsf_when *when;
    uint32_t count; /* events this step needs (absent: 1) */
    bool absent;    /* fires when this step does NOT happen within the time */
} lsf_det_step;

typedef struct lsf_det_escalate {
    uint8_t what; /* enum lsf_det_esc */
    double at;    /* raise when the measure is >= at */
    int severity; /* 1..5 */
} lsf_det_escalate;

struct lsf_fieldref; /* rules/rules_int.h: a field name resolved once */

typedef struct lsf_detdef {
    char *id, *name, *description;
    char *origin;          /* "sshd" (pack name) or "config" */
    uint8_t type;          /* enum lsf_det_type */
    lsf_when *when;        /* NULL: every event */
    char **group_by;
    uint32_t ngroup;
    char *field;           /* distinct / value field */
    struct lsf_fieldref *refs; /* group_by[0..ngroup), then field: how to read them */
    uint8_t agg, cmp;      /* value */
    double limit;          /* count (threshold, distinct, score) or value limit */
    double score_min;      /* score */
    uint32_t min_count;    /* value: events in the window before it can fire */
    int64_t window_ns;     /* sequence: `within` */
    uint32_t buckets;      /* window resolution: window / buckets */
    lsf_det_step *steps;
    uint32_t nsteps;
    bool has_absent;
    int severity;          /* 1..5 */
    char **tags;
    uint32_t ntags;
    lsf_det_escalate *esc;
    uint32_t nesc;
    int64_t suppress_ns;
    uint32_t rate_n;       /* at most rate_n alerts per rate_ns (0: no limit) */
    int64_t rate_ns;
    uint32_t exemplars, exemplar_bytes;
    uint64_t max_keys, max_bytes;
    uint8_t hll_p;
    uint64_t fingerprint;  /* of the definition as written plus the defaults it took */
} lsf_detdef;

/* Settings a definition takes when it does not name its own (stage keys). */
typedef struct lsf_det_defaults {
    int64_t suppress_ns;
    uint32_t rate_n;
    int64_t rate_ns;
    uint32_t exemplars, exemplar_bytes;
    uint64_t max_keys, max_bytes;
    uint32_t buckets;
    int severity;
} lsf_det_defaults;

/* Reads one definition (a map node) into *d; `origin` names its pack or
 * "config". Returns 0, or -1 with err at the offending node (d is then
 * partly filled: free it with lsf_detdef_free). */
int lsf_detdef_parse(lsf_detdef *d, const lsf_node *node, const char *origin,
                     const lsf_det_defaults *dflt, lsf_errbuf *err);
void lsf_detdef_free(lsf_detdef *d);
const char *lsf_det_type_name(int type);
/* Formats a duration as "90s", "10m", "1h30m", "250ms" into buf (>= 32). */
const char *lsf_det_duration(int64_t ns, char *buf, size_t n);
/* Parses "20/1m" (alerts per period) into n and ns; -1 when invalid. */
int lsf_det_parse_rate(const char *s, uint32_t *n, int64_t *ns);

/* Runs the inline `tests:` of the definition at `node` (packtest.c): its
 * events through the parser, the rules of `rs` (may be NULL) and a fresh
 * detector; adds the number run to *ntests. Returns 0, or -1 with err at the
 * failing test ("detection X, test N: ..."). */
int lsf_det_run_tests(const lsf_node *node, const char *origin, const lsf_det_defaults *dflt,
                      lsf_ruleset *rs, unsigned *ntests, lsf_errbuf *err);

/* ---- per-key state (keys.c, kinds.c) ----------------------------------- */

typedef struct lsf_dentry lsf_dentry;
struct lsf_dentry {
    lsf_dentry *hnext;           /* hash chain */
    lsf_dentry *lprev, *lnext;   /* LRU list, most recent first */
    uint64_t hash;
    int64_t first_ns, last_ns;   /* matching events of this episode */
    int64_t quiet_until_ns;      /* suppressed until then (event time) */
    int64_t deadline_ns;         /* absent step: fires at this event time; 0 none */
    uint64_t n;                  /* matching events this episode */
    uint32_t suppressed;         /* firings that did not alert since the last alert */
    uint32_t heap_idx;           /* slot in the shard's timer heap, UINT32_MAX when none */
    float max_score;             /* highest anomaly.score this episode, -1 none */
    uint16_t keylen;
    uint8_t nex, exhead;         /* exemplars held, next slot of the ring */
    char **ex;                   /* exemplar ring (lazily), each string malloc'd */
    void *ext;                   /* distinct: exact values or HLL panes (lazily) */
    uint32_t ext_n, ext_cap;
    unsigned char state[];       /* the type's fixed state, then the key bytes */
};

/* One shard of one detection's keys. */
typedef struct lsf_dshard {
    lsf_dentry **tab;
    uint32_t tab_size;           /* power of two, 0 before the first key */
    uint64_t nkeys, bytes;
    lsf_dentry *lru_head, *lru_tail;
    lsf_dentry **heap;           /* timers (absent steps) by deadline */
    uint32_t nheap, cap_heap;
    int64_t shifted_ns;          /* restore: downtime added to deadlines (once) */
} lsf_dshard;

/* The running state of one definition: its keys and its counters. A reload
 * keeps it (same pointer) for a definition whose fingerprint is unchanged.
 * Reference counted: sets and pending alerts hold it. */
typedef struct lsf_detrun {
    _Atomic int refs;
    lsf_detdef def;
    uint32_t nshards;
    lsf_dshard *shards;
    uint64_t max_keys_shard, max_bytes_shard;
    size_t state_bytes;          /* fixed state per key (kinds.c) */
    pthread_mutex_t rate_lock;   /* the rate limit below */
    double tokens;
    int64_t rate_last_ns;
    uint64_t rate_dropped;       /* alerts dropped by the rate limit since the last alert */
    lsf_counter *c_alerts, *c_suppressed, *c_rate_limited, *c_evicted, *c_expired, *c_keys,
        *c_bytes, *c_matched;
} lsf_detrun;

/* Creates the state for a definition (takes ownership of *def's contents;
 * *def is zeroed). Counters are named "<stage>.<id>.<what>". */
lsf_detrun *lsf_detrun_new(lsf_detdef *def, uint32_t nshards, const char *stage);
lsf_detrun *lsf_detrun_ref(lsf_detrun *r);
void lsf_detrun_unref(lsf_detrun *r);
/* Bytes one key of this detection costs before exemplars and distinct
 * values (entry, fixed state, a key of `keylen` bytes, its hash slot). */
size_t lsf_detrun_key_cost(const lsf_detrun *r, size_t keylen);

/* Finds the key in shard s, or creates it (evicting least recently used
 * keys to stay within the budgets). Moves it to the front of the LRU. */
lsf_dentry *lsf_dkey_get(lsf_detrun *r, lsf_dshard *s, uint64_t hash, const char *key,
                         uint32_t keylen, int64_t now_ns);
static inline const char *lsf_dkey_bytes(const lsf_detrun *r, const lsf_dentry *e)
{
    return (const char *)e->state + r->state_bytes;
}
/* Frees one key (unlinks it from the table, LRU and timer heap). */
void lsf_dkey_free(lsf_detrun *r, lsf_dshard *s, lsf_dentry *e);
/* Adds n bytes (negative: releases) to the shard's and the counter's total. */
void lsf_dkey_account(lsf_detrun *r, lsf_dshard *s, int64_t n);
/* Frees up to `max` idle keys from the LRU tail (nothing left to detect). */
void lsf_dkey_expire(lsf_detrun *r, lsf_dshard *s, int64_t wm_ns, int max);
/* Timer heap: schedules (deadline_ns > 0) or cancels (0) e's timer. */
void lsf_dtimer_set(lsf_dshard *s, lsf_dentry *e, int64_t deadline_ns);
/* The key whose timer is due first if its deadline is <= wm, else NULL. */
lsf_dentry *lsf_dtimer_due(lsf_dshard *s, int64_t wm_ns);
/* Keeps exemplar text (truncated to the definition's exemplar_bytes). */
void lsf_dkey_exemplar(lsf_detrun *r, lsf_dshard *s, lsf_dentry *e, lsf_str text);
/* Drops exemplars, distinct values and window contents: a new episode. */
void lsf_dkey_reset(lsf_detrun *r, lsf_dshard *s, lsf_dentry *e);
void lsf_dshard_free(lsf_detrun *r, lsf_dshard *s);

/* What phase 1 extracted from one event for one detection. */
typedef struct lsf_dmatch {
    uint32_t ev;      /* event index in the batch */
    uint16_t run;     /* detection index in the set */
    uint16_t shard;
    uint32_t steps;   /* sequence: bit i = step i's condition holds */
    uint32_t koff, klen; /* key bytes in the worker's key buffer */
    uint64_t khash;
    uint64_t vhash;   /* distinct: hash of the value */
    double value;     /* value: the number */
    float score;      /* anomaly.score, -1 when absent */
} lsf_dmatch;

/* Outcome of applying one event to a key (kinds.c). */
typedef struct lsf_dfire {
    bool fired;
    bool fresh;        /* the key's window was empty before this event: a new episode */
    bool exemplar;     /* keep this event as an exemplar (near or at firing) */
    double observed;   /* count, distinct estimate, aggregate or steps done */
    int64_t at_ns;     /* event time of the firing */
} lsf_dfire;

/* Fixed state bytes per key for a definition. */
size_t lsf_kind_state_bytes(const lsf_detdef *d);
/* Applies a match at effective time t_ns; *out says whether it fired (the
 * key's episode is then over: the caller builds the alert, then resets). */
void lsf_kind_apply(lsf_detrun *r, lsf_dshard *s, lsf_dentry *e, const lsf_dmatch *m,
                    int64_t t_ns, lsf_hll *scratch, lsf_dfire *out);
/* An absent step's deadline passed: fills *out (always fires). */
void lsf_kind_timeout(lsf_detrun *r, lsf_dshard *s, lsf_dentry *e, lsf_dfire *out);
/* True when the key holds nothing a later event could complete. */
bool lsf_kind_idle(const lsf_detrun *r, const lsf_dentry *e, int64_t wm_ns);
/* Clears the window / sequence state. */
void lsf_kind_reset(lsf_detrun *r, lsf_dshard *s, lsf_dentry *e);
/* The variable part of a key's state for snapshots (distinct values). */
void lsf_kind_save(const lsf_detrun *r, const lsf_dentry *e, lsf_wbuf *w);
int lsf_kind_load(lsf_detrun *r, lsf_dshard *s, lsf_dentry *e, lsf_rbuf *rb);
void lsf_kind_free_ext(lsf_detrun *r, lsf_dshard *s, lsf_dentry *e);

/* ---- alerts (alert.c) ----------------------------------------------------- */

typedef struct lsf_alert lsf_alert;
struct lsf_alert {
    lsf_alert *next;
    lsf_detrun *run;      /* holds a reference: the definition's strings */
    char *key;            /* the group key bytes (length-prefixed values) */
    uint32_t keylen;
    int severity;
    char raised_by[48];   /* "count >= 100" when an escalation raised it, else "" */
    uint64_t count;
    double observed;
    int64_t time_ns, first_ns, last_ns;
    uint32_t suppressed;
    uint64_t rate_limited;
    float max_score;
    char **exemplars;
    uint32_t nex;
};

/* Decides what a firing becomes: an alert (returned, owned by the caller),
 * or nothing when the key is suppressed (counted on the key). Resets the
 * key's episode either way. Call under the shard's lock. */
lsf_alert *lsf_alert_fire(lsf_detrun *r, lsf_dshard *s, lsf_dentry *e, const lsf_dfire *f);
/* The detection's rate limit (event time): true when the alert may go out
 * (it then carries the count of alerts dropped before it); false when it is
 * dropped (counted). Call for the alerts of each batch in batch order. */
bool lsf_alert_admit(lsf_alert *a);
/* Appends the alert as an event of b (strings copied into b's arena; the
 * batch grows past its cap when it must). */
void lsf_alert_emit(const lsf_alert *a, lsf_batch *b, int64_t now_ns);
void lsf_alert_free(lsf_alert *a);
/* The alert's one-line summary ("20 events >= 10 in 60s for source.ip=..."). */
size_t lsf_alert_summary(const lsf_alert *a, char *buf, size_t n);
/* Walks the values of a key: *pos starts at 0; false at the end. */
bool lsf_key_next(const char *key, uint32_t keylen, uint32_t *pos, lsf_str *val);

/* ---- the detector (engine.c) ------------------------------------------- */

typedef struct lsf_detgate lsf_detgate;

/* A set of detections: immutable, reference counted, swapped on reload. */
typedef struct lsf_detset {
    _Atomic int refs;
    lsf_detrun **runs;
    uint32_t n;
    bool any_absent;
    lsf_detgate *gate;     /* built by lsf_detector_set; freed with the set */
} lsf_detset;

/* ---- gates (gate.c): the detections an event can match ------------------- */

/* Reads a gate off each detection's `when` (eq / in / prefix on a field)
 * and indexes them by field value. Never NULL; free with lsf_detgate_free. */
lsf_detgate *lsf_detgate_build(const lsf_detset *set);
void lsf_detgate_free(lsf_detgate *g);
/* Words of the bitset lsf_detgate_select fills (64 detections a word). */
uint32_t lsf_detgate_words(const lsf_detgate *g);
/* Sets bit ri of `bits` for every detection ri whose `when` may hold on ev
 * (a superset: the `when` still decides), clears the others. */
void lsf_detgate_select(const lsf_detgate *g, const lsf_event *ev, uint64_t *bits);

lsf_detset *lsf_detset_ref(lsf_detset *s);
void lsf_detset_unref(lsf_detset *s);

typedef struct lsf_detector_opts {
    uint32_t nshards;
    int nworkers;
    int64_t lateness_ns;   /* events up to this much older than the watermark count as on time */
    int64_t max_future_ns; /* event times further ahead of their arrival are not believed */
    const char *name;      /* stage name, for counters and logs */
} lsf_detector_opts;

typedef struct lsf_detector lsf_detector;

lsf_detector *lsf_detector_new(const lsf_detector_opts *o);
void lsf_detector_free(lsf_detector *d);
/* Installs a new set (takes the caller's reference); the old one is dropped
 * once no batch uses it. */
void lsf_detector_set(lsf_detector *d, lsf_detset *set);
/* A reference to the current set (caller unrefs). */
lsf_detset *lsf_detector_current(lsf_detector *d);
/* Runs every detection over b: matching on this worker, then the state of
 * each shard in the order of b->seq (batches must be presented with
 * consecutive seq numbers starting at 0, each exactly once). Alerts are
 * appended to b, after its events, in order of event time. */
void lsf_detector_process(lsf_detector *d, lsf_batch *b, int worker);
/* Snapshot support: locks/unlocks shard k of every detection. */
void lsf_detector_lock_shard(lsf_detector *d, uint32_t k);
void lsf_detector_unlock_shard(lsf_detector *d, uint32_t k);
int64_t lsf_detector_watermark(lsf_detector *d);
/* After a restore: the watermark the snapshot was taken at; the gap until
 * the first event after restart is added to absent-step deadlines (the time
 * logsift was down is not silence). */
void lsf_detector_restored(lsf_detector *d, int64_t wm_ns);
uint32_t lsf_detector_nshards(const lsf_detector *d);
/* The hash of a group key and the shard it belongs to (stable across runs:
 * snapshots re-shard by it when the shard count changes). */
uint64_t lsf_det_key_hash(const char *key, uint32_t len);
uint32_t lsf_det_key_shard(uint64_t hash, uint32_t nshards);

/* ---- snapshots (snapshot.c) --------------------------------------------- */

/* Writes the state of every detection of d's current set to `path`
 * (atomically: temp file, fsync, rename). Returns 0 or -errno. */
int lsf_det_snapshot_save(lsf_detector *d, const char *path, uint64_t *keys_out);
/* Loads `path` into the detections of d's current set whose id and
 * fingerprint match. A missing file is not an error (0, nothing loaded); a
 * corrupt or foreign one is reported in err and ignored (-1). */
int lsf_det_snapshot_load(lsf_detector *d, const char *path, uint64_t *keys_out,
                          uint32_t *dropped_defs, lsf_errbuf *err);

/* ---- commands ------------------------------------------------------------ */

/* `logsift tail [FILE] [--brokers B --topic T] ...`; returns the exit code. */
int lsf_tail_cmd(int argc, char **argv);
/* True when `logsift run` was given --replay. */
bool lsf_replay_requested(int argc, char **argv);
/* `logsift run [-c FILE] --replay FILE [--format F]`: the config (or
 * `default_config`, YAML text) with its inputs replaced by the file; returns
 * the exit code. */
int lsf_replay_cmd(int argc, char **argv, const char *default_config);
/* The commands' signals: on_stop for SIGINT and SIGTERM, SIGPIPE ignored. */
void lsf_det_cli_signals(void (*on_stop)(int));
/* Set by replay: detections neither restore nor save snapshots. */
extern atomic_bool lsf_detect_replay_mode;

#endif
