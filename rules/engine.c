/* engine.c - the `rules` transform: classifies every event of a batch with
 * the running rule set, and swaps in a new set when the packs change.
 *
 * The one design choice to know: a batch takes one reference to the set
 * that is current when the batch starts and uses only that set until it
 * ends; a reload publishes a new set under a short lock, and the old set is
 * freed by whichever batch releases it last. So no event is classified by a
 * half-loaded set, dropped, or processed twice during a reload, and workers
 * never wait for a reload (only for the pointer swap).
 *
 * A reload loads, compiles and tests the new set beside the running one, on
 * the stage's own reload thread (rules/reload.c); any error keeps the
 * running set and is logged as file:line:column: message.
 *
 * Threads: init/reopen/destroy on the main thread; process on any worker;
 * reloads on the reload thread, which starts lazily (first batch or SIGHUP)
 * so that init - what `logsift check` runs - only loads and compiles.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "core/log.h"
#include "core/metrics.h"
#include "core/pipeline.h"
#include "core/stage.h"
#include "rules/reload.h"
#include "rules/rules.h"

typedef struct rules_conf {
    lsf_strlist packs;
    bool watch;
    int64_t reload_debounce_ms;
    bool test_on_load;
    bool prefilter;
    int64_t match_limit;
    int64_t depth_limit;
    bool apply_drop;
} rules_conf;

typedef struct rules_ctx {
    pthread_mutex_t lock; /* guards current and the watcher's start */
    bool lock_ready;
    lsf_ruleset *current;
    lsf_rules_opts opts;
    atomic_bool watcher_started;
    lsf_rules_watcher *watcher;
    uint64_t fingerprint;
    uint64_t generation;
    const rules_conf *conf;
    const char *name;
    lsf_counter *c_matched, *c_unmatched, *c_dropped, *c_limit, *c_type, *c_reloads,
        *c_reload_errors, *c_rules;
} rules_ctx;

static const lsf_key rules_keys[] = {
    {"packs", LSF_K_STRLIST, NULL,
     "Rule-pack files or directories (their *.yaml and *.yml files load in name order).",
     offsetof(rules_conf, packs), NULL, 0, 0, true},
    {"watch", LSF_K_BOOL, "true", "Reload when a pack file changes (inotify); SIGHUP always reloads.",
     offsetof(rules_conf, watch), NULL, 0, 0, false},
    {"reload_debounce", LSF_K_DURATION, "300ms",
     "After a pack file changes, wait this long without further changes before reloading.",
     offsetof(rules_conf, reload_debounce_ms), NULL, 0, 60000, false},
    {"test_on_load", LSF_K_BOOL, "true",
     "Run the packs' inline tests at start and before a reload; a failure keeps the old rules.",
     offsetof(rules_conf, test_on_load), NULL, 0, 0, false},
    {"prefilter", LSF_K_BOOL, "true",
     "Use the Hyperscan prefilter; false tries every rule on every line (for debugging).",
     offsetof(rules_conf, prefilter), NULL, 0, 0, false},
    {"match_limit", LSF_K_INT, "200000",
     "PCRE2 match limit per regex run; a rule that reaches it is counted and skipped for the line.",
     offsetof(rules_conf, match_limit), NULL, 10, 1000000000, false},
    {"depth_limit", LSF_K_INT, "10000", "PCRE2 depth (backtracking) limit per regex run.",
     offsetof(rules_conf, depth_limit), NULL, 10, 1000000000, false},
    {"apply_drop", LSF_K_BOOL, "true",
     "Discard events a `drop: true` rule matches; false only tags them _drop.",
     offsetof(rules_conf, apply_drop), NULL, 0, 0, false},
    LSF_KEYS_END,
};

/* Loads, compiles and (optionally) tests a set; NULL with err set. */
static lsf_ruleset *build(rules_ctx *x, lsf_errbuf *err)
{
    const rules_conf *c = x->conf;
    lsf_rules_load_lock();
    lsf_ruleset *rs = lsf_ruleset_load((const char *const *)c->packs.v, c->packs.n, &x->opts, err);
    lsf_rules_load_unlock();
    if (!rs)
        return NULL;
    if (c->test_on_load) {
        lsf_rules_test_result res;
        if (lsf_ruleset_run_tests(rs, NULL, false, &res) < 0) {
            snprintf(err->msg, sizeof(err->msg),
                     "%s (%u of %u pack tests fail; run 'logsift test' on the packs for every "
                     "failure with a diff)",
                     res.first_error, res.failed + res.engine, res.tests);
            lsf_ruleset_unref(rs);
            return NULL;
        }
        lsf_ruleset_stats_reset(rs);
    }
    return rs;
}

static void announce(rules_ctx *x, const lsf_ruleset *rs, const char *what)
{
    atomic_store_explicit(&x->c_rules->value, lsf_ruleset_nrules(rs), memory_order_relaxed);
    lsf_info("%s: %s %zu packs, %zu rules (%zu tried without prefilter), generation %llu",
             x->name, what, lsf_ruleset_npacks(rs), lsf_ruleset_nrules(rs),
             lsf_ruleset_nalways(rs), (unsigned long long)x->generation);
}

static void reload(void *arg)
{
    rules_ctx *x = arg;
    uint64_t fp = lsf_rules_fingerprint((const char *const *)x->conf->packs.v, x->conf->packs.n);
    lsf_errbuf err = {{0}};
    lsf_ruleset *rs = build(x, &err);
    if (!rs) {
        lsf_counter_add(x->c_reload_errors, 1);
        lsf_err("%s: reload failed, the running rules stay in force: %s", x->name, err.msg);
        return;
    }
    pthread_mutex_lock(&x->lock);
    lsf_ruleset *old = x->current;
    x->current = rs;
    x->fingerprint = fp;
    x->generation++;
    pthread_mutex_unlock(&x->lock);
    lsf_ruleset_unref(old); /* freed now, or by the last batch still using it */
    lsf_counter_add(x->c_reloads, 1);
    announce(x, rs, "reloaded");
}

/* Starts the reload thread once; `poked`: it starts with a reload request
 * (a SIGHUP that came before it ran). Returns true when this call started it. */
static bool start_watcher(rules_ctx *x, bool poked)
{
    if (atomic_load_explicit(&x->watcher_started, memory_order_acquire))
        return false;
    bool started = false;
    pthread_mutex_lock(&x->lock);
    if (!atomic_load_explicit(&x->watcher_started, memory_order_relaxed)) {
        x->watcher = lsf_rules_watcher_start((const char *const *)x->conf->packs.v,
                                             x->conf->packs.n, x->conf->watch,
                                             x->conf->reload_debounce_ms, x->fingerprint, poked,
                                             reload, x);
        atomic_store_explicit(&x->watcher_started, true, memory_order_release);
        started = true;
    }
    pthread_mutex_unlock(&x->lock);
    return started;
}

static int rules_init(lsf_stage *st, lsf_errbuf *err)
{
    rules_ctx *x = st->ctx;
    rules_conf *c = st->conf;
    x->conf = c;
    x->name = st->name;
    if (c->packs.n == 0)
        return lsf_node_error(err, lsf_node_get(st->node, "packs"), "packs: name at least one "
                              "pack file or directory");
    pthread_mutex_init(&x->lock, NULL);
    x->lock_ready = true;
    x->opts.nworkers = lsf_pipeline_nworkers(st->pipeline);
    x->opts.match_limit = (uint32_t)c->match_limit;
    x->opts.depth_limit = (uint32_t)c->depth_limit;
    x->opts.no_prefilter = !c->prefilter;
    x->opts.keep_dropped = !c->apply_drop;
    x->c_matched = lsf_counter_new(st->name, "matched");
    x->c_unmatched = lsf_counter_new(st->name, "unmatched");
    x->c_dropped = lsf_counter_new(st->name, "dropped");
    x->c_limit = lsf_counter_new(st->name, "limit_hits");
    x->c_type = lsf_counter_new(st->name, "capture_type_errors");
    x->c_reloads = lsf_counter_new(st->name, "reloads");
    x->c_reload_errors = lsf_counter_new(st->name, "reload_errors");
    x->c_rules = lsf_counter_new(st->name, "rules");
    /* fingerprint first: a change during the load is then seen as a change */
    x->fingerprint = lsf_rules_fingerprint((const char *const *)c->packs.v, c->packs.n);
    x->current = build(x, err);
    if (!x->current)
        return -1;
    announce(x, x->current, "loaded");
    return 0;
}

static int rules_process(lsf_stage *st, lsf_batch *b, int worker)
{
    rules_ctx *x = st->ctx;
    start_watcher(x, false);
    pthread_mutex_lock(&x->lock);
    lsf_ruleset *rs = lsf_ruleset_ref(x->current);
    pthread_mutex_unlock(&x->lock);
    uint64_t matched = 0, unmatched = 0, dropped = 0, limits, types;
    for (uint32_t i = 0; i < b->n; i++) {
        lsf_event *ev = &b->events[i];
        if (ev->flags & LSF_EV_DROPPED)
            continue;
        if (lsf_ruleset_apply(rs, b, ev, worker) >= 0)
            matched++;
        else
            unmatched++;
        dropped += (ev->flags & LSF_EV_DROPPED) != 0;
    }
    lsf_ruleset_take_counts(rs, worker, &limits, &types);
    lsf_ruleset_unref(rs);
    if (matched)
        lsf_counter_add(x->c_matched, matched);
    if (unmatched)
        lsf_counter_add(x->c_unmatched, unmatched);
    if (dropped)
        lsf_counter_add(x->c_dropped, dropped);
    if (limits)
        lsf_counter_add(x->c_limit, limits);
    if (types)
        lsf_counter_add(x->c_type, types);
    return LSF_OK;
}

static void rules_reopen(lsf_stage *st)
{
    rules_ctx *x = st->ctx;
    if (!x->current)
        return;
    /* a watcher started here takes the request with it: a poke after its
     * start could land after its first reload and ask for a second one */
    if (!start_watcher(x, true) && x->watcher)
        lsf_rules_watcher_poke(x->watcher);
}

static void rules_destroy(lsf_stage *st)
{
    rules_ctx *x = st->ctx;
    lsf_rules_watcher_stop(x->watcher);
    x->watcher = NULL;
    lsf_ruleset_unref(x->current);
    x->current = NULL;
    if (x->lock_ready)
        pthread_mutex_destroy(&x->lock);
}

lsf_ruleset *lsf_rules_stage_current(lsf_stage *st)
{
    rules_ctx *x = st->ctx;
    pthread_mutex_lock(&x->lock);
    lsf_ruleset *rs = x->current ? lsf_ruleset_ref(x->current) : NULL;
    pthread_mutex_unlock(&x->lock);
    return rs;
}

const lsf_stage_def lsf_stage_rules = {
    .name = "rules",
    .kind = LSF_STAGE_TRANSFORM,
    .help = "Classifies events with rule packs (PCRE2 rules, Hyperscan prefilter, hot reload).",
    .keys = rules_keys,
    .conf_size = sizeof(rules_conf),
    .ctx_size = sizeof(rules_ctx),
    .init = rules_init,
    .process = rules_process,
    .reopen = rules_reopen,
    .destroy = rules_destroy,
};
