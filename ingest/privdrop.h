/* privdrop.h - `user:` / `group:`: logsift binds its ports and opens its
 * files as the user it was started as (root, for port 514 or /dev/log),
 * then runs as an unprivileged user.
 *
 * Design: names are checked when the configuration is read (so `logsift
 * check` reports an unknown user at its file:line:col) and the switch
 * happens once, after every stage's init and before any input starts, so
 * no record is read with privileges. Files opened later (new files a file
 * input finds, checkpoints, a sink reopened on SIGHUP, TLS files reloaded)
 * are opened as the new user and must be accessible to it.
 * Threads: main thread; setgid/setuid apply to every thread (glibc).
 */
#ifndef LSF_PRIVDROP_H
#define LSF_PRIVDROP_H

#include "core/config.h"

/* Checks that `user` and `group` (names or numbers, either may be NULL)
 * exist; errors point at their keys in `root`. Returns 0 or -1. */
int lsf_privdrop_check(const lsf_node *root, const char *user, const char *group, lsf_errbuf *err);
/* Switches to `group` (default: the user's primary group), the user's
 * supplementary groups, then `user`, and checks that root cannot be
 * regained. Nothing to do when both are NULL. Returns 0 or -1 with err. */
int lsf_privdrop(const char *user, const char *group, lsf_errbuf *err);

#endif
