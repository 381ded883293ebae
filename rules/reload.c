/* reload.c - the reload thread of a rules stage: watches the pack files
 * with inotify, takes SIGHUP requests, waits for changes to settle
 * (debounce), then calls the stage's reload function.
 *
 * The one design choice to know: directories are watched, never files.
 * Editors save by writing a new file and renaming it over the old one, and
 * configuration managers swap whole directories (Kubernetes ConfigMaps
 * rename a "..data" symlink); a watch on the file itself would be lost at the
 * first save. A change to any *.yaml / *.yml (or ".."-prefixed entry) of a
 * watched directory, or to a file named in the configuration, counts.
 *
 * A fingerprint (names, sizes, mtimes, inodes) taken before the first load,
 * compared when the watches are set up, catches changes made before the
 * thread (which starts lazily) ran.
 *
 * Threads: one thread per watcher; poke/stop from any thread. Loads of rule
 * sets from all watchers are serialised by one lock (the YAML loader keeps a
 * process-wide table of file names).
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "core/log.h"
#include "rules/reload.h"
#include "rules/rules_int.h"

struct lsf_rules_watcher {
    pthread_t thread;
    int efd;               /* eventfd: pokes and stop */
    int ifd;               /* inotify, -1 when not watching */
    atomic_bool stop;
    atomic_int pokes;
    int64_t debounce_ms;
    bool poked_at_start;   /* a reload was asked for before the thread ran */
    bool changed_at_start; /* the files differed at start from the running set's */
    char **paths;
    size_t npaths;
    int *wd;               /* watch descriptor per path */
    bool *is_dir;
    void (*reload)(void *);
    void *arg;
};

static pthread_mutex_t load_lock = PTHREAD_MUTEX_INITIALIZER;

void lsf_rules_load_lock(void) { pthread_mutex_lock(&load_lock); }
void lsf_rules_load_unlock(void) { pthread_mutex_unlock(&load_lock); }

static uint64_t mix(uint64_t h, const void *p, size_t n)
{
    const unsigned char *c = p;
    for (size_t i = 0; i < n; i++) {
        h ^= c[i];
        h *= 1099511628211ull;
    }
    return h;
}

uint64_t lsf_rules_fingerprint(const char *const *paths, size_t npaths)
{
    uint64_t h = 14695981039346656037ull;
    char **files;
    size_t n;
    lsf_errbuf err;
    if (lsf_pack_list_files(paths, npaths, &files, &n, &err) < 0)
        return mix(h, err.msg, strlen(err.msg));
    for (size_t i = 0; i < n; i++) {
        struct stat sb;
        h = mix(h, files[i], strlen(files[i]) + 1);
        if (stat(files[i], &sb) == 0) {
            h = mix(h, &sb.st_size, sizeof(sb.st_size));
            h = mix(h, &sb.st_mtim, sizeof(sb.st_mtim));
            h = mix(h, &sb.st_ino, sizeof(sb.st_ino));
        }
        free(files[i]);
    }
    free(files);
    return h;
}

static int64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static const char *base_name(const char *p)
{
    const char *s = strrchr(p, '/');
    return s ? s + 1 : p;
}

/* Adds the watches; a path that is a file is watched through its directory. */
static void add_watches(lsf_rules_watcher *w)
{
    const uint32_t mask = IN_CLOSE_WRITE | IN_MOVED_TO | IN_MOVED_FROM | IN_DELETE | IN_CREATE |
                          IN_ATTRIB | IN_ONLYDIR;
    for (size_t i = 0; i < w->npaths; i++) {
        struct stat sb;
        w->is_dir[i] = stat(w->paths[i], &sb) == 0 && S_ISDIR(sb.st_mode);
        char dir[PATH_MAX];
        if (w->is_dir[i]) {
            snprintf(dir, sizeof(dir), "%s", w->paths[i]);
        } else {
            const char *slash = strrchr(w->paths[i], '/');
            if (slash)
                snprintf(dir, sizeof(dir), "%.*s", (int)(slash - w->paths[i] + (slash == w->paths[i])),
                         w->paths[i]);
            else
                snprintf(dir, sizeof(dir), ".");
        }
        w->wd[i] = inotify_add_watch(w->ifd, dir, mask);
        if (w->wd[i] < 0)
            lsf_warn("rules: cannot watch %s for changes (%s); reload with SIGHUP", dir,
                     strerror(errno));
    }
}

static bool relevant(const lsf_rules_watcher *w, const struct inotify_event *ev)
{
    if (ev->mask & IN_Q_OVERFLOW)
        return true;
    if (!ev->len)
        return false;
    const char *name = ev->name;
    size_t n = strlen(name);
    bool pack = name[0] != '.' && ((n > 5 && strcmp(name + n - 5, ".yaml") == 0) ||
                                   (n > 4 && strcmp(name + n - 4, ".yml") == 0));
    bool k8s = strncmp(name, "..", 2) == 0;
    for (size_t i = 0; i < w->npaths; i++) {
        if (w->wd[i] != ev->wd)
            continue;
        if (w->is_dir[i] ? (pack || k8s) : strcmp(name, base_name(w->paths[i])) == 0)
            return true;
    }
    return false;
}

static void *watch_main(void *arg)
{
    lsf_rules_watcher *w = arg;
    bool pending = w->changed_at_start || w->poked_at_start;
    int64_t due = mono_ms();
    if (w->changed_at_start)
        lsf_info("rules: pack files changed since they were loaded; reloading");
    char buf[16384] __attribute__((aligned(__alignof__(struct inotify_event))));
    while (!atomic_load(&w->stop)) {
        struct pollfd pfd[2] = {{.fd = w->efd, .events = POLLIN}, {.fd = w->ifd, .events = POLLIN}};
        int timeout = -1;
        if (pending) {
            int64_t left = due - mono_ms();
            timeout = left > 0 ? (int)left : 0;
        }
        int rc = poll(pfd, w->ifd >= 0 ? 2 : 1, timeout);
        if (rc < 0 && errno != EINTR)
            break;
        if (pfd[0].revents & POLLIN) {
            uint64_t v;
            ssize_t r = read(w->efd, &v, sizeof(v));
            (void)r;
            if (atomic_load(&w->stop))
                break;
            if (atomic_exchange(&w->pokes, 0) > 0 && !pending) {
                pending = true;
                due = mono_ms(); /* SIGHUP: now */
            }
        }
        if (w->ifd >= 0 && (pfd[1].revents & POLLIN)) {
            ssize_t len;
            while ((len = read(w->ifd, buf, sizeof(buf))) > 0) {
                for (char *p = buf; p < buf + len;) {
                    const struct inotify_event *ev = (const struct inotify_event *)p;
                    if (relevant(w, ev)) {
                        pending = true;
                        due = mono_ms() + w->debounce_ms; /* wait for the writes to settle */
                    }
                    p += sizeof(struct inotify_event) + ev->len;
                }
            }
        }
        if (pending && mono_ms() >= due) {
            pending = false;
            w->reload(w->arg);
        }
    }
    return NULL;
}

lsf_rules_watcher *lsf_rules_watcher_start(const char *const *paths, size_t npaths, bool inotify,
                                           int64_t debounce_ms, uint64_t fingerprint, bool poked,
                                           void (*reload)(void *), void *arg)
{
    lsf_rules_watcher *w = calloc(1, sizeof(*w));
    if (!w)
        lsf_die("out of memory");
    w->debounce_ms = debounce_ms;
    w->poked_at_start = poked;
    w->reload = reload;
    w->arg = arg;
    w->ifd = -1;
    w->paths = calloc(npaths ? npaths : 1, sizeof(char *));
    w->wd = calloc(npaths ? npaths : 1, sizeof(int));
    w->is_dir = calloc(npaths ? npaths : 1, sizeof(bool));
    if (!w->paths || !w->wd || !w->is_dir)
        lsf_die("out of memory");
    w->npaths = npaths;
    for (size_t i = 0; i < npaths; i++) {
        w->wd[i] = -1;
        if (!(w->paths[i] = strdup(paths[i])))
            lsf_die("out of memory");
    }
    w->efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (w->efd < 0) {
        lsf_err("rules: eventfd: %s; pack reloads are off", strerror(errno));
        goto fail;
    }
    if (inotify) {
        w->ifd = inotify_init1(IN_CLOEXEC | IN_NONBLOCK);
        if (w->ifd < 0)
            lsf_warn("rules: inotify: %s; pack files are not watched (reload with SIGHUP)",
                     strerror(errno));
        else
            add_watches(w);
    }
    /* Compared here, not in the thread: from now on the watches (or a poke)
     * report changes, so a change is seen once, whenever the thread runs. */
    w->changed_at_start = lsf_rules_fingerprint((const char *const *)w->paths, w->npaths) != fingerprint;
    int rc = pthread_create(&w->thread, NULL, watch_main, w);
    if (rc) {
        lsf_err("rules: cannot start the reload thread: %s", strerror(rc));
        goto fail;
    }
    return w;
fail:
    if (w->efd >= 0)
        close(w->efd);
    if (w->ifd >= 0)
        close(w->ifd);
    for (size_t i = 0; i < npaths; i++)
        free(w->paths[i]);
    free(w->paths);
    free(w->wd);
    free(w->is_dir);
    free(w);
    return NULL;
}

void lsf_rules_watcher_poke(lsf_rules_watcher *w)
{
    uint64_t one = 1;
    atomic_fetch_add(&w->pokes, 1);
    ssize_t r = write(w->efd, &one, sizeof(one));
    (void)r;
}

void lsf_rules_watcher_stop(lsf_rules_watcher *w)
{
    if (!w)
        return;
    uint64_t one = 1;
    atomic_store(&w->stop, true);
    ssize_t r = write(w->efd, &one, sizeof(one));
    (void)r;
    pthread_join(w->thread, NULL);
    close(w->efd);
    if (w->ifd >= 0)
        close(w->ifd);
    for (size_t i = 0; i < w->npaths; i++)
        free(w->paths[i]);
    free(w->paths);
    free(w->wd);
    free(w->is_dir);
    free(w);
}
