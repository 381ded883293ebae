/* file_scan.c - the `file` input's view of the file system: expanding the
 * patterns, telling new files from renamed, rotated, copied and truncated
 * ones, and matching files to the checkpoints of an earlier run (see
 * file.c for the input, file_tail.h for identities and offsets).
 *
 * The one design choice to know: a file that went away from under its name
 * is read to its end before the new file under that name is opened, and a
 * truncated file whose old first bytes sit in a copy in the same directory
 * continues its stream from the copy, so no rotation style loses the lines
 * written just before it.
 * Threads: the tailer thread only.
 */
#include <dirent.h>
#include <fcntl.h>
#include <fnmatch.h>
#include <glob.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/ioloop.h"
#include "core/log.h"
#include "ingest/file_tail.h"

static tfile *tfile_new(file_ctx *x, const char *path, int fd, const struct stat *sb)
{
    tfile *f = calloc(1, sizeof(*f));
    if (!f || !(f->path = strdup(path)))
        lsf_die("out of memory");
    f->fd = fd;
    f->dev = sb->st_dev;
    f->ino = sb->st_ino;
    lsf_fp_compute(fd, sb->st_size, &f->fp);
    f->last_data_ns = lsf_now_mono_ns();
    if (x->ml.enabled) {
        lsf_ml_init(&f->ml, &x->ml);
        f->has_ml = true;
    }
    f->next = x->files;
    x->files = f;
    lsf_counter_add(x->c_opened, 1);
    return f;
}

void lsf_ftail_file_free(tfile *f)
{
    if (f->fd >= 0)
        close(f->fd);
    if (f->has_ml)
        lsf_ml_deinit(&f->ml);
    free(f->tail);
    free(f->path);
    free(f);
}

static void start_at(tfile *f, off_t off)
{
    f->read_off = off;
    f->acked_off = off; /* nothing of f is in flight yet */
    f->persisted_sub = off > f->replay_until ? off : f->replay_until;
    lseek(f->fd, off, SEEK_SET);
}

static tfile *find_inode(file_ctx *x, dev_t dev, ino_t ino)
{
    for (tfile *f = x->files; f; f = f->next)
        if (!f->retired && !f->finished && f->dev == dev && f->ino == ino)
            return f;
    return NULL;
}

/* Looks in the directory of `path` for a regular file that is not tracked
 * and either is inode dev/ino (renamed) or, with ino 0, starts with the bytes
 * of fp and holds more than `min_size` bytes (a copy). Returns an open fd
 * with *sb filled, or -1. */
static int search_dir(file_ctx *x, const char *path, dev_t dev, ino_t ino, const lsf_fp *fp,
                      off_t min_size, struct stat *sb, char *found, size_t foundcap)
{
    char dbuf[4096];
    snprintf(dbuf, sizeof(dbuf), "%s", path);
    const char *dir = dirname(dbuf);
    DIR *d = opendir(dir);
    if (!d)
        return -1;
    struct dirent *de;
    int fd = -1;
    while (fd < 0 && (de = readdir(d))) {
        char full[4096];
        if (de->d_name[0] == '.' && (!de->d_name[1] || (de->d_name[1] == '.' && !de->d_name[2])))
            continue;
        if (snprintf(full, sizeof(full), "%s/%s", dir, de->d_name) >= (int)sizeof(full))
            continue;
        if (stat(full, sb) < 0 || !S_ISREG(sb->st_mode) || find_inode(x, sb->st_dev, sb->st_ino))
            continue;
        if (ino ? (sb->st_dev != dev || sb->st_ino != ino) : sb->st_size <= min_size)
            continue;
        int cfd = open(full, O_RDONLY | O_CLOEXEC);
        if (cfd < 0)
            continue;
        if (lsf_fp_matches(cfd, fp)) {
            fd = cfd;
            snprintf(found, foundcap, "%s", full);
        } else {
            close(cfd);
        }
    }
    closedir(d);
    return fd;
}

/* A checkpoint whose file is no longer under its name: finds it renamed in
 * the same directory, or a copy of it (copytruncate while logsift was
 * down), and reads the rest of it. Returns true when found. */
static bool recover(file_ctx *x, const lsf_ckpt *c, ino_t exclude_ino)
{
    struct stat sb;
    char found[4096];
    int fd = -1;
    if (!exclude_ino)
        fd = search_dir(x, c->path, c->dev, c->ino, &c->fp, 0, &sb, found, sizeof(found));
    if (fd < 0)
        fd = search_dir(x, c->path, 0, 0, &c->fp, c->acked, &sb, found, sizeof(found));
    if (fd < 0 || sb.st_size < c->acked) {
        if (fd >= 0)
            close(fd);
        return false;
    }
    tfile *f = tfile_new(x, found, fd, &sb);
    f->rotated = true;
    f->replay_until = c->submitted;
    start_at(f, c->acked);
    lsf_info("%s: %s was rotated while logsift was down; reading the rest of it from %s at "
             "offset %lld",
             x->st->name, c->path, found, (long long)c->acked);
    return true;
}

static lsf_ckpt *find_ckpt(file_ctx *x, dev_t dev, ino_t ino)
{
    for (size_t i = 0; i < x->nloaded; i++)
        if (!x->loaded[i].claimed && x->loaded[i].dev == dev && x->loaded[i].ino == ino)
            return &x->loaded[i];
    return NULL;
}

/* True when fd starts with the full fingerprint of a file being read: a
 * copy (copytruncate's, before the truncation is seen, or a plain cp) that
 * holds nothing the original does not. */
static bool copy_of_tracked(file_ctx *x, int fd)
{
    for (tfile *f = x->files; f; f = f->next)
        if (!f->retired && !f->finished && f->fp.len == LSF_FP_BYTES && lsf_fp_matches(fd, &f->fp))
            return true;
    return false;
}

static void open_new(file_ctx *x, const char *path)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    struct stat sb;
    if (fd < 0 || fstat(fd, &sb) < 0 || !S_ISREG(sb.st_mode) ||
        (x->first_scan_done && copy_of_tracked(x, fd))) {
        if (fd >= 0)
            close(fd);
        return;
    }
    tfile *f = tfile_new(x, path, fd, &sb);
    lsf_ckpt *c = find_ckpt(x, sb.st_dev, sb.st_ino);
    if (c) {
        c->claimed = true;
        if (c->acked <= sb.st_size && (c->fp.len == 0 || lsf_fp_matches(fd, &c->fp))) {
            f->replay_until = c->submitted;
            start_at(f, c->acked);
            if (c->submitted > c->acked)
                lsf_info("%s: resuming %s at offset %lld (up to offset %lld may be delivered "
                         "again)",
                         x->st->name, path, (long long)c->acked, (long long)c->submitted);
            return;
        }
        /* Same inode, other content: truncated or replaced while down. */
        if (!recover(x, c, sb.st_ino))
            lsf_warn("%s: %s changed while logsift was down and no copy of its old content "
                     "was found",
                     x->st->name, path);
        start_at(f, 0);
        return;
    }
    bool at_startup = !x->first_scan_done;
    start_at(f, at_startup && x->conf->read_from == FROM_END ? sb.st_size : 0);
    if (x->first_scan_done)
        lsf_info("%s: new file %s", x->st->name, path);
}

/* An exclude pattern matches the whole path ('*' crossing '/') or, when it
 * holds no '/', the file name ('*.gz'). */
static bool excluded(file_ctx *x, const char *path)
{
    const char *base = strrchr(path, '/');
    base = base ? base + 1 : path;
    for (size_t i = 0; i < x->conf->exclude.n; i++) {
        const char *pat = x->conf->exclude.v[i];
        if (fnmatch(pat, path, 0) == 0 || (!strchr(pat, '/') && fnmatch(pat, base, 0) == 0))
            return true;
    }
    return false;
}

/* f went away under its name: read what is there now, then watch it for
 * rotate_wait. */
static void mark_rotated(file_ctx *x, tfile *f)
{
    f->rotated = true;
    f->last_data_ns = lsf_now_mono_ns();
    lsf_counter_add(x->c_rotated, 1);
    lsf_info("%s: %s was rotated or deleted; reading it to its end", x->st->name, f->path);
    lsf_ftail_drain(x, f);
}

/* Truncation: f shrank below what was read, or its first bytes changed. */
static void truncated(file_ctx *x, tfile *f)
{
    struct stat sb;
    char found[4096];
    int cfd = search_dir(x, f->path, 0, 0, &f->fp, f->read_off - 1, &sb, found, sizeof(found));
    int old_fd = f->fd;
    struct stat osb;
    fstat(old_fd, &osb);
    if (cfd >= 0) {
        /* copytruncate: the copy continues f's stream where it was read. */
        lsf_counter_add(x->c_copies, 1);
        lsf_info("%s: %s was copied to %s and truncated; reading the rest from the copy",
                 x->st->name, f->path, found);
        f->fd = cfd;
        f->dev = sb.st_dev;
        f->ino = sb.st_ino;
        lseek(cfd, f->read_off, SEEK_SET);
        char *orig = f->path;
        f->path = strdup(found);
        if (!f->path)
            lsf_die("out of memory");
        f->rotated = true;
        f->last_data_ns = lsf_now_mono_ns();
        lsf_ftail_drain(x, f);
        tfile *g = tfile_new(x, orig, old_fd, &osb);
        start_at(g, 0);
        free(orig);
        return;
    }
    lsf_counter_add(x->c_truncations, 1);
    lsf_info("%s: %s was truncated; reading it again from its start", x->st->name, f->path);
    if (f->tail_len)
        x->in.fst.incomplete++;
    f->tail_len = 0;
    f->skipping = false;
    lsf_ftail_flush_ml(x, f);
    f->fd = -1;
    f->retired = true;
    tfile *g = tfile_new(x, f->path, old_fd, &osb);
    start_at(g, 0);
}

/* Checks an open file for truncation and completes its fingerprint. */
static void check_file(file_ctx *x, tfile *f)
{
    struct stat sb;
    if (f->fd < 0 || fstat(f->fd, &sb) < 0)
        return;
    if (sb.st_size < f->read_off || (f->fp.len && sb.st_size >= (off_t)f->fp.len &&
                                      !lsf_fp_matches(f->fd, &f->fp))) {
        truncated(x, f);
        return;
    }
    if (f->fp.len < LSF_FP_BYTES && sb.st_size > (off_t)f->fp.len)
        lsf_fp_compute(f->fd, sb.st_size, &f->fp);
}

typedef struct match {
    char *path;
    struct stat sb;
} match;

static int cmp_match(const void *a, const void *b)
{
    return strcmp(((const match *)a)->path, ((const match *)b)->path);
}

void lsf_ftail_scan(file_ctx *x)
{
    match *m = NULL;
    size_t nm = 0, cap = 0;
    for (size_t i = 0; i < x->conf->path.n; i++) {
        glob_t g;
        if (glob(x->conf->path.v[i], GLOB_NOSORT, NULL, &g) != 0)
            continue;
        for (size_t j = 0; j < g.gl_pathc; j++) {
            struct stat sb;
            const char *p = g.gl_pathv[j];
            if (excluded(x, p) || stat(p, &sb) < 0 || !S_ISREG(sb.st_mode))
                continue;
            if (nm == cap) {
                cap = cap ? cap * 2 : 16;
                m = realloc(m, cap * sizeof(*m));
                if (!m)
                    lsf_die("out of memory");
            }
            m[nm].path = strdup(p);
            m[nm++].sb = sb;
        }
        globfree(&g);
    }
    if (nm)
        qsort(m, nm, sizeof(*m), cmp_match);
    for (tfile *f = x->files; f; f = f->next)
        f->live = false;
    for (size_t i = 0; i < nm; i++) {
        tfile *f = find_inode(x, m[i].sb.st_dev, m[i].sb.st_ino);
        if (!f)
            continue;
        f->live = true;
        f->rotated = false;
        if (strcmp(f->path, m[i].path) != 0) {
            free(f->path);
            f->path = m[i].path;
            m[i].path = NULL;
            f->path_cache.gen = 0;
        }
    }
    /* Files gone from under their names are read to their end, and
     * truncated files switch to their copies, before the new files under
     * those names are opened. */
    for (tfile *f = x->files; f; f = f->next)
        if (!f->live && !f->rotated && !f->retired && !f->finished)
            mark_rotated(x, f);
    for (tfile *f = x->files; f; f = f->next)
        if (!f->retired && !f->finished)
            check_file(x, f);
    for (size_t i = 0; i < nm; i++) {
        if (m[i].path && !find_inode(x, m[i].sb.st_dev, m[i].sb.st_ino) && !lsf_ftail_stopping(x))
            open_new(x, m[i].path);
        free(m[i].path);
    }
    free(m);
    if (!x->first_scan_done) {
        x->first_scan_done = true;
        for (size_t i = 0; i < x->nloaded; i++) {
            lsf_ckpt *c = &x->loaded[i];
            if (c->claimed)
                continue;
            c->claimed = true;
            if (!recover(x, c, 0) && c->acked < c->submitted) {
                lsf_counter_add(x->c_lost, 1);
                lsf_warn("%s: %s (checkpoint at offset %lld) is gone", x->st->name, c->path,
                         (long long)c->acked);
            }
        }
    }
}

