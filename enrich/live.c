/* live.c - versioned data behind hazard slots, with a file watcher thread
 * (see live.h).
 *
 * The one design choice to know: retiring an old version is the reloader's
 * job, not the workers'. After the swap (seq_cst exchange) the reloader
 * scans every worker's hazard slot and sleeps briefly while one still
 * names the old version; a worker that loaded the old pointer but published
 * its hazard too late sees the new pointer on its re-check and retries. So
 * the hot path is two seq_cst stores and a load per batch, and a reload
 * costs the reloader at most one batch's time of waiting.
 *
 * Threads: enter/exit on workers; the watcher thread (started lazily) does
 * the polling and reloads; load_lock serialises reloads from the watcher and
 * from lsf_live_reload_now; state_lock guards the watcher's flags.
 */
#include "enrich/live.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "core/log.h"
#include "core/metrics.h"

typedef struct slot {
    _Atomic(void *) p;
    char pad[64 - sizeof(void *)]; /* one cache line per worker */
} slot;

struct lsf_live {
    _Atomic(void *) cur;
    slot *hazard;
    int nworkers;
    _Atomic uint64_t generation;
    lsf_live_ops ops;
    char *name;
    char **paths;
    size_t npaths;
    int64_t interval_ms;
    uint64_t fingerprint; /* of the files behind the current version (load_lock) */

    pthread_mutex_t load_lock;  /* one reload at a time */
    pthread_mutex_t state_lock; /* the fields below */
    pthread_cond_t cond;
    atomic_bool started;     /* the watcher was started (or tried) */
    bool running, stop;      /* the watcher thread exists / must end */
    int pokes;
    pthread_t thread;

    lsf_counter *c_reloads, *c_errors;
};

static uint64_t mix(uint64_t h, const void *p, size_t n)
{
    const unsigned char *c = p;
    for (size_t i = 0; i < n; i++) {
        h ^= c[i];
        h *= 1099511628211ull;
    }
    return h;
}

/* Identity of the files: a replaced (renamed over), rewritten, touched or
 * removed file changes it. */
static uint64_t fingerprint(const lsf_live *l)
{
    uint64_t h = 14695981039346656037ull;
    for (size_t i = 0; i < l->npaths; i++) {
        struct stat sb;
        if (stat(l->paths[i], &sb) < 0) {
            int e = errno;
            h = mix(h, &e, sizeof(e));
            continue;
        }
        h = mix(h, &sb.st_dev, sizeof(sb.st_dev));
        h = mix(h, &sb.st_ino, sizeof(sb.st_ino));
        h = mix(h, &sb.st_size, sizeof(sb.st_size));
        h = mix(h, &sb.st_mtim, sizeof(sb.st_mtim));
        h = mix(h, &sb.st_ctim, sizeof(sb.st_ctim));
    }
    return h;
}

static void sleep_us(long us)
{
    struct timespec ts = {us / 1000000, (us % 1000000) * 1000};
    nanosleep(&ts, NULL);
}

/* Publishes `v` and frees the version it replaces once unused. */
static void publish(lsf_live *l, void *v, uint64_t gen)
{
    void *old = atomic_exchange(&l->cur, v);
    atomic_store(&l->generation, gen);
    for (int w = 0; w < l->nworkers; w++)
        while (atomic_load(&l->hazard[w].p) == old)
            sleep_us(100);
    l->ops.free(l->ops.arg, old);
}

/* Loads a new version and publishes it; caller holds load_lock. */
static int reload_locked(lsf_live *l, lsf_errbuf *err)
{
    uint64_t fp = fingerprint(l); /* before: a change during the load is seen later */
    uint64_t gen = atomic_load(&l->generation) + 1;
    void *v = l->ops.load(l->ops.arg, gen, err);
    l->fingerprint = fp; /* a failed version is not retried until the files change */
    if (!v) {
        lsf_counter_add(l->c_errors, 1);
        return -1;
    }
    publish(l, v, gen);
    lsf_counter_add(l->c_reloads, 1);
    return 0;
}

int lsf_live_reload_now(lsf_live *l, lsf_errbuf *err)
{
    pthread_mutex_lock(&l->load_lock);
    int rc = reload_locked(l, err);
    pthread_mutex_unlock(&l->load_lock);
    return rc;
}

static void reload_logged(lsf_live *l, const char *why)
{
    lsf_errbuf err = {{0}};
    pthread_mutex_lock(&l->load_lock);
    if (reload_locked(l, &err) < 0)
        lsf_err("%s: reload (%s) failed, the loaded data stays in use: %s", l->name, why, err.msg);
    else
        lsf_info("%s: reloaded (%s), generation %llu", l->name, why,
                 (unsigned long long)atomic_load(&l->generation));
    pthread_mutex_unlock(&l->load_lock);
}

static void *watch_main(void *arg)
{
    lsf_live *l = arg;
    uint64_t pending = 0; /* a changed fingerprint waiting to settle */
    bool have_pending = false;
    pthread_mutex_lock(&l->state_lock);
    while (!l->stop) {
        if (!l->pokes) {
            if (l->interval_ms > 0) {
                struct timespec ts;
                clock_gettime(CLOCK_MONOTONIC, &ts);
                int64_t ns = ts.tv_nsec + (l->interval_ms % 1000) * 1000000;
                ts.tv_sec += l->interval_ms / 1000 + ns / 1000000000;
                ts.tv_nsec = ns % 1000000000;
                pthread_cond_timedwait(&l->cond, &l->state_lock, &ts);
            } else {
                pthread_cond_wait(&l->cond, &l->state_lock);
            }
        }
        if (l->stop)
            break;
        bool poked = l->pokes > 0;
        l->pokes = 0;
        pthread_mutex_unlock(&l->state_lock);
        if (poked) {
            have_pending = false;
            reload_logged(l, "SIGHUP");
        } else if (l->interval_ms > 0) {
            uint64_t fp = fingerprint(l);
            pthread_mutex_lock(&l->load_lock); /* l->fingerprint is the loader's */
            bool same = fp == l->fingerprint;
            pthread_mutex_unlock(&l->load_lock);
            if (same) {
                have_pending = false;
            } else if (have_pending && fp == pending) {
                have_pending = false;
                reload_logged(l, "file changed");
            } else {
                pending = fp;
                have_pending = true;
            }
        }
        pthread_mutex_lock(&l->state_lock);
    }
    pthread_mutex_unlock(&l->state_lock);
    return NULL;
}

static void start_watcher(lsf_live *l)
{
    pthread_mutex_lock(&l->state_lock);
    if (!atomic_load(&l->started) && !l->stop) {
        int rc = pthread_create(&l->thread, NULL, watch_main, l);
        if (rc)
            lsf_err("%s: cannot start the reload thread (%s); files will not be reloaded",
                    l->name, strerror(rc));
        l->running = rc == 0;
        atomic_store(&l->started, true);
    }
    pthread_mutex_unlock(&l->state_lock);
}

lsf_live *lsf_live_new(const char *name, int nworkers, const char *const *paths, size_t npaths,
                       int64_t interval_ms, const lsf_live_ops *ops, lsf_errbuf *err)
{
    lsf_live *l = calloc(1, sizeof(*l));
    if (!l)
        lsf_die("out of memory");
    l->nworkers = nworkers > 0 ? nworkers : 1;
    l->hazard = aligned_alloc(64, (size_t)l->nworkers * sizeof(slot));
    l->name = strdup(name);
    l->paths = calloc(npaths ? npaths : 1, sizeof(char *));
    if (!l->hazard || !l->name || !l->paths)
        lsf_die("out of memory");
    for (int w = 0; w < l->nworkers; w++)
        atomic_init(&l->hazard[w].p, NULL);
    for (size_t i = 0; i < npaths; i++)
        if (!(l->paths[i] = strdup(paths[i])))
            lsf_die("out of memory");
    l->npaths = npaths;
    l->interval_ms = interval_ms;
    l->ops = *ops;
    pthread_mutex_init(&l->load_lock, NULL);
    pthread_mutex_init(&l->state_lock, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&l->cond, &ca);
    pthread_condattr_destroy(&ca);
    l->c_reloads = lsf_counter_new(name, "reloads");
    l->c_errors = lsf_counter_new(name, "reload_errors");
    l->fingerprint = fingerprint(l);
    void *v = ops->load(ops->arg, 1, err);
    if (!v) {
        lsf_live_free(l);
        return NULL;
    }
    atomic_store(&l->cur, v);
    atomic_store(&l->generation, 1);
    return l;
}

void lsf_live_free(lsf_live *l)
{
    if (!l)
        return;
    pthread_mutex_lock(&l->state_lock);
    bool joined = l->running;
    l->stop = true;
    pthread_cond_signal(&l->cond);
    pthread_mutex_unlock(&l->state_lock);
    if (joined)
        pthread_join(l->thread, NULL);
    void *v = atomic_load(&l->cur);
    if (v)
        l->ops.free(l->ops.arg, v);
    for (size_t i = 0; i < l->npaths; i++)
        free(l->paths[i]);
    free(l->paths);
    free(l->hazard);
    free(l->name);
    pthread_mutex_destroy(&l->load_lock);
    pthread_mutex_destroy(&l->state_lock);
    pthread_cond_destroy(&l->cond);
    free(l);
}

void *lsf_live_enter(lsf_live *l, int worker)
{
    if (!atomic_load_explicit(&l->started, memory_order_relaxed))
        start_watcher(l);
    slot *s = &l->hazard[worker];
    void *v;
    do {
        v = atomic_load(&l->cur);
        atomic_store(&s->p, v);
    } while (atomic_load(&l->cur) != v);
    return v;
}

void lsf_live_exit(lsf_live *l, int worker)
{
    atomic_store(&l->hazard[worker].p, NULL);
}

void lsf_live_poke(lsf_live *l)
{
    start_watcher(l);
    pthread_mutex_lock(&l->state_lock);
    l->pokes++;
    pthread_cond_signal(&l->cond);
    pthread_mutex_unlock(&l->state_lock);
}

uint64_t lsf_live_generation(lsf_live *l)
{
    return atomic_load(&l->generation);
}
