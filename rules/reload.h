/* reload.h - the reload thread of a rules stage (see reload.c).
 * Threads: start/stop from the main thread (or lazily from a worker, under
 * the stage's lock); poke from any thread; `reload` runs on the watcher's
 * own thread.
 */
#ifndef LSF_RULES_RELOAD_H
#define LSF_RULES_RELOAD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct lsf_rules_watcher lsf_rules_watcher;

/* A digest of the pack files behind `paths` (names, sizes, mtimes, inodes). */
uint64_t lsf_rules_fingerprint(const char *const *paths, size_t npaths);

/* Starts a thread that calls reload(arg) after a poke, or, with `inotify`,
 * `debounce_ms` after the last change to a pack file; `fingerprint` is the
 * digest taken before the running set was loaded (a difference at start
 * triggers a reload, as does `poked`: one reload for both). Returns NULL
 * (logged) if the thread cannot start. */
lsf_rules_watcher *lsf_rules_watcher_start(const char *const *paths, size_t npaths, bool inotify,
                                           int64_t debounce_ms, uint64_t fingerprint, bool poked,
                                           void (*reload)(void *), void *arg);
/* Asks for a reload now (SIGHUP). Safe from any thread and from a signal
 * handler: one atomic add and one write(2). */
void lsf_rules_watcher_poke(lsf_rules_watcher *w);
/* Stops and joins the thread (a reload in progress finishes first). */
void lsf_rules_watcher_stop(lsf_rules_watcher *w);

/* Serialises rule-set loads across stages and threads. */
void lsf_rules_load_lock(void);
void lsf_rules_load_unlock(void);

#endif
