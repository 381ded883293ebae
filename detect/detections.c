/* detections.c - the `detections` transform: turns classified events into
 * alerts with the detections of rule packs (their `detections:` lists) and of
 * its own config (docs/detections.md).
 *
 * The one design choice to know: the stage owns one detector (engine.c) for
 * its whole life, and what a reload replaces is only the set of definitions:
 * a definition whose id and fingerprint are unchanged keeps its state object
 * (same pointer, same keys and windows), a new or changed one starts empty,
 * and a removed one is freed once the last batch using it is done. State is
 * saved to a snapshot every snapshot_interval and when logsift stops, and
 * restored at start (a damaged snapshot is reported and ignored).
 *
 * Threads: init/reopen/destroy on the main thread; process on any worker;
 * reloads on the pack watcher's thread (rules/reload.c); snapshots on the
 * stage's own thread. The watcher and the snapshot thread start with the
 * first batch, so `logsift check` (init only) starts no thread and writes
 * nothing.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/log.h"
#include "core/pipeline.h"
#include "core/stage.h"
#include "detect/detect.h"
#include "rules/reload.h"
#include "rules/rules_int.h"

atomic_bool lsf_detect_replay_mode;

typedef struct det_conf {
    lsf_strlist packs;
    const lsf_node *detections;
    lsf_strlist disable;
    int64_t shards;
    int64_t lateness_ms, max_future_ms;
    int64_t suppress_ms;
    char *rate_limit;
    int64_t exemplars, exemplar_bytes;
    int64_t max_keys, max_memory;
    int64_t buckets;
    int severity;
    char *state_file;
    int64_t snapshot_interval_ms;
    bool restore;
    bool watch;
    int64_t reload_debounce_ms;
    bool test_on_load;
} det_conf;

typedef struct det_ctx {
    const det_conf *conf;
    const char *name;
    lsf_det_defaults dflt;
    lsf_detector *det;
    char *state_path;
    bool ran;                 /* some batch was processed: save at the end */
    pthread_mutex_t lock;     /* threads' start, reload */
    bool lock_ready;
    atomic_bool started;
    lsf_rules_watcher *watcher;
    uint64_t fingerprint;
    pthread_t snap_thread;
    bool snap_running;
    pthread_mutex_t snap_lock;
    pthread_cond_t snap_cond;
    bool snap_stop;
    lsf_counter *c_reloads, *c_reload_errors, *c_snapshots, *c_snapshot_errors, *c_detections;
} det_ctx;

static const lsf_key det_keys[] = {
    {"packs", LSF_K_STRLIST, NULL,
     "Rule-pack files or directories whose `detections:` lists to run (usually the rules "
     "stage's packs).",
     offsetof(det_conf, packs), NULL, 0, 0, false},
    {"detections", LSF_K_NODE, NULL, "Detections of this config: a list, as in a pack.",
     offsetof(det_conf, detections), NULL, 0, 0, false},
    {"disable", LSF_K_STRLIST, NULL, "Ids of pack detections not to run.",
     offsetof(det_conf, disable), NULL, 0, 0, false},
    {"shards", LSF_K_INT, "16",
     "Group keys are spread over this many shards, each with its own lock and order.",
     offsetof(det_conf, shards), NULL, 1, 1024, false},
    {"lateness", LSF_K_DURATION, "30s",
     "Events up to this far behind the newest event time count at their own time; older ones "
     "count as this late.",
     offsetof(det_conf, lateness_ms), NULL, 0, 86400000, false},
    {"max_future", LSF_K_DURATION, "5m",
     "An event time further ahead of the event's arrival is not believed (arrival time is used).",
     offsetof(det_conf, max_future_ms), NULL, 0, 86400000, false},
    {"suppress", LSF_K_DURATION, "10m",
     "Default: after an alert, further firings of the same detection and key within this time "
     "are counted, not alerted.",
     offsetof(det_conf, suppress_ms), NULL, 0, 0, false},
    {"rate_limit", LSF_K_STR, "100/1m",
     "Default: at most this many alerts per detection per period (event time), or off.",
     offsetof(det_conf, rate_limit), NULL, 0, 0, false},
    {"exemplars", LSF_K_INT, "3", "Default: raw events an alert carries (0-16).",
     offsetof(det_conf, exemplars), NULL, 0, LSF_DET_MAX_EXEMPLARS, false},
    {"exemplar_bytes", LSF_K_SIZE, "1KiB", "Longer exemplars are cut to this size.",
     offsetof(det_conf, exemplar_bytes), NULL, 16, 65536, false},
    {"max_keys", LSF_K_INT, "100000",
     "Default: group keys a detection keeps; beyond, the least recently used are evicted.",
     offsetof(det_conf, max_keys), NULL, 1, 1000000000, false},
    {"max_memory", LSF_K_SIZE, "64MiB",
     "Default: memory a detection's keys may use; beyond, the least recently used are evicted.",
     offsetof(det_conf, max_memory), NULL, 65536, 1LL << 40, false},
    {"buckets", LSF_K_INT, "10",
     "Default: time buckets per window (a window counts up to one bucket more than its length).",
     offsetof(det_conf, buckets), NULL, 1, 600, false},
    {"severity", LSF_K_ENUM, "medium", "Default severity of an alert.",
     offsetof(det_conf, severity), "info|low|medium|high|critical", 0, 0, false},
    {"state_file", LSF_K_STR, "",
     "Snapshot file; empty: <state_dir>/<stage name>.snapshot.",
     offsetof(det_conf, state_file), NULL, 0, 0, false},
    {"snapshot_interval", LSF_K_DURATION, "60s",
     "Save state this often (and when logsift stops); 0: only when it stops.",
     offsetof(det_conf, snapshot_interval_ms), NULL, 0, 0, false},
    {"restore", LSF_K_BOOL, "true", "Restore the snapshot at start.",
     offsetof(det_conf, restore), NULL, 0, 0, false},
    {"watch", LSF_K_BOOL, "true",
     "Reload when a pack file changes (inotify); SIGHUP always reloads.",
     offsetof(det_conf, watch), NULL, 0, 0, false},
    {"reload_debounce", LSF_K_DURATION, "300ms",
     "After a pack file changes, wait this long without further changes before reloading.",
     offsetof(det_conf, reload_debounce_ms), NULL, 0, 60000, false},
    {"test_on_load", LSF_K_BOOL, "true",
     "Run the detections' inline tests (through the packs' rules) at start and before a "
     "reload; a failure keeps the running detections.",
     offsetof(det_conf, test_on_load), NULL, 0, 0, false},
    LSF_KEYS_END,
};

static const lsf_node *key_node(const lsf_stage *st, const char *key)
{
    const lsf_node *n = lsf_node_get(st->node, key);
    return n ? n : st->node;
}

/* ---- building a set ------------------------------------------------------------ */

typedef struct defs {
    lsf_detdef *v;
    const lsf_node **node;
    uint32_t n, cap;
} defs;

static void defs_free(defs *ds)
{
    for (uint32_t i = 0; i < ds->n; i++)
        lsf_detdef_free(&ds->v[i]);
    free(ds->v);
    free(ds->node);
}

static bool disabled(const det_conf *c, const char *id)
{
    for (size_t i = 0; i < c->disable.n; i++)
        if (strcmp(c->disable.v[i], id) == 0)
            return true;
    return false;
}

/* Reads the definitions of a `detections:` list into ds. */
static int add_list(det_ctx *x, defs *ds, const lsf_node *seq, const char *origin, lsf_errbuf *err)
{
    if (seq->kind != LSF_NODE_SEQ)
        return lsf_node_error(err, seq, "'detections' must be a list of detections");
    for (const lsf_node *n = seq->child; n; n = n->next) {
        const lsf_node *en = n->kind == LSF_NODE_MAP ? lsf_node_get(n, "enabled") : NULL;
        bool on = true;
        if (en && (en->kind != LSF_NODE_SCALAR || lsf_parse_bool(en->str, &on) < 0))
            return lsf_node_error(err, en, "'enabled' must be true or false");
        if (ds->n == ds->cap) {
            ds->cap = ds->cap ? ds->cap * 2 : 16;
            ds->v = realloc(ds->v, ds->cap * sizeof(*ds->v));
            ds->node = realloc(ds->node, ds->cap * sizeof(*ds->node));
            if (!ds->v || !ds->node)
                lsf_die("out of memory");
        }
        lsf_detdef *d = &ds->v[ds->n];
        int rc = lsf_detdef_parse(d, n, origin, &x->dflt, err);
        if (rc < 0 || !on || disabled(x->conf, d->id)) {
            lsf_detdef_free(d);
            if (rc < 0)
                return -1;
            continue;
        }
        for (uint32_t i = 0; i < ds->n; i++)
            if (strcmp(ds->v[i].id, d->id) == 0) {
                const lsf_node *prev = ds->node[i];
                lsf_node_error(err, lsf_node_get(n, "id"), "detection id '%s' is already "
                               "defined at %s:%d:%d", d->id, prev->file, prev->line, prev->col);
                lsf_detdef_free(d);
                return -1;
            }
        ds->node[ds->n++] = n;
    }
    return 0;
}

/* Runs the inline tests of every definition, through the packs' rules. */
static int run_tests(det_ctx *x, defs *ds, lsf_errbuf *err)
{
    bool any = false;
    for (uint32_t i = 0; i < ds->n; i++)
        any |= lsf_node_get(ds->node[i], "tests") != NULL;
    if (!any)
        return 0;
    lsf_ruleset *rs = NULL;
    if (x->conf->packs.n) {
        lsf_rules_opts o = {.nworkers = 1, .quiet = true};
        lsf_rules_load_lock();
        rs = lsf_ruleset_load((const char *const *)x->conf->packs.v, x->conf->packs.n, &o, err);
        lsf_rules_load_unlock();
        if (!rs)
            return -1;
    }
    unsigned n = 0;
    int rc = 0;
    for (uint32_t i = 0; i < ds->n && rc == 0; i++)
        rc = lsf_det_run_tests(ds->node[i], ds->v[i].origin, &x->dflt, rs, &n, err);
    lsf_ruleset_unref(rs);
    if (rc == 0)
        lsf_info("%s: %u detection tests passed", x->name, n);
    return rc;
}

/* Loads the packs' and the config's definitions into a new set; runs of
 * `old` whose id and fingerprint match are kept as they are. */
static lsf_detset *build_set(det_ctx *x, lsf_detset *old, lsf_errbuf *err)
{
    const det_conf *c = x->conf;
    defs ds = {0};
    char **files = NULL;
    size_t nfiles = 0;
    lsf_pack *packs = NULL;
    lsf_detset *set = NULL;
    if (c->packs.n &&
        lsf_pack_list_files((const char *const *)c->packs.v, c->packs.n, &files, &nfiles, err) < 0)
        goto fail;
    packs = calloc(nfiles ? nfiles : 1, sizeof(lsf_pack));
    if (!packs)
        lsf_die("out of memory");
    for (size_t i = 0; i < nfiles; i++) {
        if (lsf_pack_load(files[i], &packs[i], err) < 0)
            goto fail;
        if (packs[i].detections && add_list(x, &ds, packs[i].detections, packs[i].name, err) < 0)
            goto fail;
    }
    if (c->detections && add_list(x, &ds, c->detections, "config", err) < 0)
        goto fail;
    if (c->test_on_load && run_tests(x, &ds, err) < 0)
        goto fail;
    set = calloc(1, sizeof(*set));
    if (!set || !(set->runs = calloc(ds.n ? ds.n : 1, sizeof(lsf_detrun *))))
        lsf_die("out of memory");
    atomic_init(&set->refs, 1);
    uint32_t nshards = lsf_detector_nshards(x->det);
    for (uint32_t i = 0; i < ds.n; i++) {
        lsf_detrun *keep = NULL;
        for (uint32_t k = 0; old && k < old->n && !keep; k++)
            if (strcmp(old->runs[k]->def.id, ds.v[i].id) == 0 &&
                old->runs[k]->def.fingerprint == ds.v[i].fingerprint)
                keep = lsf_detrun_ref(old->runs[k]);
        if (keep)
            lsf_detdef_free(&ds.v[i]);
        set->runs[set->n] = keep ? keep : lsf_detrun_new(&ds.v[i], nshards, x->name);
        set->any_absent |= set->runs[set->n]->def.has_absent;
        set->n++;
    }
    ds.n = 0; /* moved into the set */
fail:
    for (size_t i = 0; i < nfiles; i++) {
        lsf_pack_deinit(&packs[i]);
        free(files[i]);
    }
    free(packs);
    free(files);
    defs_free(&ds);
    return set;
}

static void announce(det_ctx *x, const lsf_detset *set, const char *what)
{
    unsigned by_type[LSF_DET_SCORE + 1] = {0};
    for (uint32_t i = 0; i < set->n; i++)
        by_type[set->runs[i]->def.type]++;
    atomic_store_explicit(&x->c_detections->value, set->n, memory_order_relaxed);
    lsf_info("%s: %s %u detections (%u threshold, %u distinct, %u value, %u sequence, %u score)",
             x->name, what, set->n, by_type[0], by_type[1], by_type[2], by_type[3], by_type[4]);
}

static void reload(void *arg)
{
    det_ctx *x = arg;
    lsf_errbuf err = {{0}};
    pthread_mutex_lock(&x->lock);
    lsf_detset *old = lsf_detector_current(x->det);
    lsf_detset *set = build_set(x, old, &err);
    if (set) {
        uint32_t kept = 0;
        for (uint32_t i = 0; i < set->n; i++)
            for (uint32_t k = 0; old && k < old->n; k++)
                kept += set->runs[i] == old->runs[k];
        lsf_detector_set(x->det, set);
        lsf_counter_add(x->c_reloads, 1);
        announce(x, set, "reloaded");
        lsf_info("%s: %u unchanged detections keep their state", x->name, kept);
    } else {
        lsf_counter_add(x->c_reload_errors, 1);
        lsf_err("%s: reload failed, the running detections stay in force: %s", x->name, err.msg);
    }
    pthread_mutex_unlock(&x->lock);
    lsf_detset_unref(old);
}

/* ---- snapshots ----------------------------------------------------------------- */

static bool snapshots_on(const det_ctx *x)
{
    return x->state_path && !atomic_load(&lsf_detect_replay_mode);
}

static void save(det_ctx *x, const char *why)
{
    uint64_t keys = 0;
    int rc = lsf_det_snapshot_save(x->det, x->state_path, &keys);
    if (rc < 0) {
        lsf_counter_add(x->c_snapshot_errors, 1);
        lsf_err("%s: cannot save the state to %s: %s", x->name, x->state_path, strerror(-rc));
        return;
    }
    lsf_counter_add(x->c_snapshots, 1);
    lsf_debug("%s: saved %llu keys to %s (%s)", x->name, (unsigned long long)keys, x->state_path,
              why);
}

static void *snap_main(void *arg)
{
    det_ctx *x = arg;
    pthread_mutex_lock(&x->snap_lock);
    while (!x->snap_stop) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        int64_t ms = x->conf->snapshot_interval_ms;
        ts.tv_sec += ms / 1000;
        ts.tv_nsec += (ms % 1000) * 1000000L;
        if (ts.tv_nsec >= 1000000000L) {
            ts.tv_sec++;
            ts.tv_nsec -= 1000000000L;
        }
        int rc = 0;
        while (!x->snap_stop && rc != ETIMEDOUT)
            rc = pthread_cond_timedwait(&x->snap_cond, &x->snap_lock, &ts);
        if (x->snap_stop)
            break;
        pthread_mutex_unlock(&x->snap_lock);
        save(x, "periodic");
        pthread_mutex_lock(&x->snap_lock);
    }
    pthread_mutex_unlock(&x->snap_lock);
    return NULL;
}

static void restore(det_ctx *x)
{
    uint64_t keys;
    uint32_t dropped;
    lsf_errbuf err = {{0}};
    if (lsf_det_snapshot_load(x->det, x->state_path, &keys, &dropped, &err) < 0) {
        lsf_counter_add(x->c_snapshot_errors, 1);
        lsf_err("%s: snapshot ignored, detections start empty: %s", x->name, err.msg);
        return;
    }
    if (keys || dropped)
        lsf_info("%s: restored %llu keys from %s%s", x->name, (unsigned long long)keys,
                 x->state_path, dropped ? " (state of changed or removed detections dropped)" : "");
}

/* ---- the stage ------------------------------------------------------------------ */

/* Starts the reload and snapshot threads once; `poked`: the reload thread
 * starts with a reload request. Returns true when this call started them. */
static bool start_threads(det_ctx *x, bool poked)
{
    if (atomic_load_explicit(&x->started, memory_order_acquire))
        return false;
    bool started = false;
    pthread_mutex_lock(&x->lock);
    if (!atomic_load_explicit(&x->started, memory_order_relaxed)) {
        x->ran = true;
        started = true;
        if (x->conf->packs.n)
            x->watcher = lsf_rules_watcher_start((const char *const *)x->conf->packs.v,
                                                 x->conf->packs.n, x->conf->watch,
                                                 x->conf->reload_debounce_ms, x->fingerprint,
                                                 poked, reload, x);
        if (snapshots_on(x) && x->conf->snapshot_interval_ms > 0) {
            x->snap_running = pthread_create(&x->snap_thread, NULL, snap_main, x) == 0;
            if (!x->snap_running)
                lsf_err("%s: cannot start the snapshot thread; state is saved at exit only",
                        x->name);
        }
        atomic_store_explicit(&x->started, true, memory_order_release);
    }
    pthread_mutex_unlock(&x->lock);
    return started;
}

static int det_init(lsf_stage *st, lsf_errbuf *err)
{
    det_ctx *x = st->ctx;
    const det_conf *c = st->conf;
    x->conf = c;
    x->name = st->name;
    x->dflt = (lsf_det_defaults){
        .suppress_ns = c->suppress_ms * NS_PER_MS,
        .exemplars = (uint32_t)c->exemplars,
        .exemplar_bytes = (uint32_t)c->exemplar_bytes,
        .max_keys = (uint64_t)c->max_keys,
        .max_bytes = (uint64_t)c->max_memory,
        .buckets = (uint32_t)c->buckets,
        .severity = c->severity + 1,
    };
    if (strcmp(c->rate_limit, "off") != 0 &&
        lsf_det_parse_rate(c->rate_limit, &x->dflt.rate_n, &x->dflt.rate_ns) < 0)
        return lsf_node_error(err, key_node(st, "rate_limit"), "rate_limit: alerts per period "
                              "such as 100/1m, or off; got '%s'", c->rate_limit);
    if (!c->packs.n && !c->detections)
        return lsf_node_error(err, st->node, "detections: name 'packs' (rule packs with "
                              "detections) or 'detections' (a list), or both");
    pthread_mutex_init(&x->lock, NULL);
    pthread_mutex_init(&x->snap_lock, NULL);
    pthread_cond_init(&x->snap_cond, NULL);
    x->lock_ready = true;
    x->c_reloads = lsf_counter_new(st->name, "reloads");
    x->c_reload_errors = lsf_counter_new(st->name, "reload_errors");
    x->c_snapshots = lsf_counter_new(st->name, "snapshots");
    x->c_snapshot_errors = lsf_counter_new(st->name, "snapshot_errors");
    x->c_detections = lsf_counter_new(st->name, "detections");
    lsf_detector_opts o = {
        .nshards = (uint32_t)c->shards,
        .nworkers = st->pipeline ? lsf_pipeline_nworkers(st->pipeline) : 1,
        .lateness_ns = c->lateness_ms * NS_PER_MS,
        .max_future_ns = c->max_future_ms * NS_PER_MS,
        .name = st->name,
    };
    x->det = lsf_detector_new(&o);
    if (c->packs.n)
        x->fingerprint = lsf_rules_fingerprint((const char *const *)c->packs.v, c->packs.n);
    lsf_detset *set = build_set(x, NULL, err);
    if (!set)
        return -1;
    lsf_detector_set(x->det, set);
    announce(x, set, "loaded");
    if (c->state_file[0]) {
        x->state_path = strdup(c->state_file);
    } else {
        const char *dir = st->pipeline ? lsf_pipeline_settings(st->pipeline)->state_dir : ".";
        char name[128];
        snprintf(name, sizeof(name), "%s", st->name);
        for (char *p = name; *p; p++)
            if (*p == '/' || *p == ' ')
                *p = '_';
        if (asprintf(&x->state_path, "%s/%s.snapshot", dir && *dir ? dir : ".", name) < 0)
            x->state_path = NULL;
    }
    if (!x->state_path)
        lsf_die("out of memory");
    if (c->restore && snapshots_on(x))
        restore(x);
    return 0;
}

static int det_process(lsf_stage *st, lsf_batch *b, int worker)
{
    det_ctx *x = st->ctx;
    start_threads(x, false);
    lsf_detector_process(x->det, b, worker);
    return LSF_OK;
}

static void det_reopen(lsf_stage *st)
{
    det_ctx *x = st->ctx;
    if (!x->det || !x->conf->packs.n)
        return;
    /* threads started here take the request with them (see rules_reopen) */
    if (!start_threads(x, true) && x->watcher)
        lsf_rules_watcher_poke(x->watcher);
}

static void det_destroy(lsf_stage *st)
{
    det_ctx *x = st->ctx;
    lsf_rules_watcher_stop(x->watcher);
    x->watcher = NULL;
    if (x->snap_running) {
        pthread_mutex_lock(&x->snap_lock);
        x->snap_stop = true;
        pthread_cond_signal(&x->snap_cond);
        pthread_mutex_unlock(&x->snap_lock);
        pthread_join(x->snap_thread, NULL);
    }
    if (x->ran && snapshots_on(x))
        save(x, "shutdown");
    lsf_detector_free(x->det);
    x->det = NULL;
    free(x->state_path);
    if (x->lock_ready) {
        pthread_mutex_destroy(&x->lock);
        pthread_mutex_destroy(&x->snap_lock);
        pthread_cond_destroy(&x->snap_cond);
    }
}

const lsf_stage_def lsf_stage_detections = {
    .name = "detections",
    .kind = LSF_STAGE_TRANSFORM,
    .help = "Alerts from thresholds, distinct counts, value aggregates, sequences and anomaly "
            "scores over event-time windows, per group key (docs/detections.md).",
    .keys = det_keys,
    .conf_size = sizeof(det_conf),
    .ctx_size = sizeof(det_ctx),
    .init = det_init,
    .process = det_process,
    .reopen = det_reopen,
    .destroy = det_destroy,
};
