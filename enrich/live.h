/* live.h - data loaded from files that workers read while it is replaced:
 * the GeoIP databases, CIDR tables and lookup tables of the enrichment
 * stages.
 *
 * Design: the current version is one pointer. A worker announces the
 * version it reads in its own hazard slot for the length of a batch
 * (lsf_live_enter/exit: two atomic stores, no lock, no shared counter). A
 * reload builds the new version beside the old one on the stage's watcher
 * thread, swaps the pointer, and frees the old version only once no hazard
 * slot holds it - so workers never wait and never see freed memory.
 *
 * The watcher thread polls the files' identity (inode, size, mtime, ctime)
 * every `interval`; a change that holds for one more poll (so a file still
 * being written is not read half-way) triggers a reload. SIGHUP (the
 * stage's reopen) reloads at once. A failed reload keeps the running
 * version and is logged and counted ("<stage>.reload_errors").
 *
 * Threads: new/free on the main thread; enter/exit from worker `worker`
 * only (0 <= worker < nworkers), never nested; poke from any thread.
 */
#ifndef LSF_ENRICH_LIVE_H
#define LSF_ENRICH_LIVE_H

#include <stddef.h>
#include <stdint.h>

#include "core/config.h"

typedef struct lsf_live lsf_live;

typedef struct lsf_live_ops {
    /* Builds a version from the files; NULL with err set. Runs on the main
     * thread (first load) or the watcher thread (reloads), never twice at
     * once for one lsf_live. `generation` numbers versions from 1. */
    void *(*load)(void *arg, uint64_t generation, lsf_errbuf *err);
    /* Frees a version no worker uses any more. */
    void (*free)(void *arg, void *version);
    void *arg;
} lsf_live_ops;

/* Loads the first version (NULL with err set, nothing started). The
 * watcher thread starts lazily, at the first enter or poke, so a
 * configuration check only loads. interval_ms 0: no polling, reload only
 * on poke. `paths` are copied. */
lsf_live *lsf_live_new(const char *name, int nworkers, const char *const *paths, size_t npaths,
                       int64_t interval_ms, const lsf_live_ops *ops, lsf_errbuf *err);
/* Stops the watcher (a reload in progress finishes) and frees the current
 * version. No worker may be inside enter/exit. NULL is a no-op. */
void lsf_live_free(lsf_live *l);

/* The current version, protected from being freed until lsf_live_exit. */
void *lsf_live_enter(lsf_live *l, int worker);
void lsf_live_exit(lsf_live *l, int worker);

/* Asks for a reload now (SIGHUP), whether or not the files changed. */
void lsf_live_poke(lsf_live *l);
/* Generation of the current version (1 after the first load). */
uint64_t lsf_live_generation(lsf_live *l);

/* Reloads on the calling thread and waits until the old version is freed
 * (for tests and tools; the stages reload on the watcher thread). Returns
 * 0 or -1 with err set (the running version stays). */
int lsf_live_reload_now(lsf_live *l, lsf_errbuf *err);

#endif
