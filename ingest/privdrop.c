/* privdrop.c - switching to an unprivileged user after start-up (see
 * privdrop.h).
 *
 * Design: group first (it needs privileges), then supplementary groups,
 * then the user; setuid(0) must fail afterwards, or logsift refuses to run.
 * Threads: main thread, before inputs start.
 */
#include "privdrop.h"

#include <errno.h>
#include <grp.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/log.h"

static bool numeric(const char *s, long *v)
{
    char *end;
    errno = 0;
    *v = strtol(s, &end, 10);
    return *s && !*end && !errno && *v >= 0;
}

/* Resolves a user; *name gets the canonical name (for initgroups), or NULL
 * for a number without an entry. */
static int find_user(const char *user, uid_t *uid, gid_t *gid, char *name, size_t cap)
{
    long v;
    struct passwd *pw = numeric(user, &v) ? getpwuid((uid_t)v) : getpwnam(user);
    if (pw) {
        *uid = pw->pw_uid;
        *gid = pw->pw_gid;
        snprintf(name, cap, "%s", pw->pw_name);
        return 0;
    }
    if (numeric(user, &v)) {
        *uid = (uid_t)v;
        *gid = (gid_t)v;
        name[0] = '\0';
        return 0;
    }
    return -1;
}

static int find_group(const char *group, gid_t *gid)
{
    long v;
    struct group *gr = numeric(group, &v) ? getgrgid((gid_t)v) : getgrnam(group);
    if (gr) {
        *gid = gr->gr_gid;
        return 0;
    }
    if (numeric(group, &v)) {
        *gid = (gid_t)v;
        return 0;
    }
    return -1;
}

int lsf_privdrop_check(const lsf_node *root, const char *user, const char *group, lsf_errbuf *err)
{
    uid_t uid;
    gid_t gid;
    char name[256];
    if (user && find_user(user, &uid, &gid, name, sizeof(name)) < 0)
        return lsf_node_error(err, lsf_node_get(root, "user"), "user: no such user '%s'", user);
    if (group && find_group(group, &gid) < 0)
        return lsf_node_error(err, lsf_node_get(root, "group"), "group: no such group '%s'", group);
    return 0;
}

int lsf_privdrop(const char *user, const char *group, lsf_errbuf *err)
{
    if (!user && !group)
        return 0;
    uid_t uid = geteuid();
    gid_t gid = getegid();
    char name[256] = "";
    if (user && find_user(user, &uid, &gid, name, sizeof(name)) < 0) {
        snprintf(err->msg, sizeof(err->msg), "user: no such user '%s'", user);
        return -1;
    }
    if (group && find_group(group, &gid) < 0) {
        snprintf(err->msg, sizeof(err->msg), "group: no such group '%s'", group);
        return -1;
    }
    if (geteuid() != 0) {
        if (uid == geteuid() && gid == getegid())
            return 0; /* already who we should be */
        snprintf(err->msg, sizeof(err->msg),
                 "user/group: switching to uid %ld gid %ld needs root (running as uid %ld)",
                 (long)uid, (long)gid, (long)geteuid());
        return -1;
    }
    int rc = name[0] && user ? initgroups(name, gid) : setgroups(1, &gid);
    if (rc < 0 || setgid(gid) < 0 || (user && setuid(uid) < 0)) {
        snprintf(err->msg, sizeof(err->msg), "cannot switch to uid %ld gid %ld: %s", (long)uid,
                 (long)gid, strerror(errno));
        return -1;
    }
    if (user && uid != 0 && setuid(0) == 0) {
        snprintf(err->msg, sizeof(err->msg), "privileges could be regained after switching to uid %ld",
                 (long)uid);
        return -1;
    }
    lsf_info("privileges dropped: running as uid %ld gid %ld", (long)getuid(), (long)getgid());
    return 0;
}
