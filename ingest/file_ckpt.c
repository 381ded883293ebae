/* file_ckpt.c - the file input's checkpoints: fingerprints, the ack tracker
 * that advances each file's delivered offset, and the checkpoint file
 * (see file_tail.h for what the offsets mean).
 *
 * Design: acks may come back out of order (a Kafka sink retains them until
 * its delivery reports), so submitted batches wait in a ring in submission
 * order and the head is applied only once it is acknowledged: a file's
 * acked_off never passes a batch that is still out. The checkpoint file is
 * text, one line per file, replaced atomically (temporary file, fsync,
 * rename, directory fsync) so a crash leaves the old or the new one whole.
 * Threads: lsf_ftrack_submit and the checkpoint functions on the tailer
 * thread; acks arrive on worker or sink threads and take the lock.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/log.h"
#include "ingest/file_tail.h"

#define CKPT_MAGIC "logsift-file-checkpoints 1"

typedef struct pend {
    tfile *f;
    off_t end;
    bool done, ok;
} pend;

struct lsf_ftrack {
    pthread_mutex_t lock;
    pend *ring;
    size_t cap, head, n;   /* ring[head..head+n) in submission order */
    uint64_t head_token;   /* token of ring[head] */
    bool closed, dirty;
    lsf_counter *c_ack_failed;
};

lsf_ftrack *lsf_ftrack_new(lsf_counter *ack_failed)
{
    lsf_ftrack *t = calloc(1, sizeof(*t));
    if (!t)
        lsf_die("out of memory");
    pthread_mutex_init(&t->lock, NULL);
    t->c_ack_failed = ack_failed;
    return t;
}

static void ftrack_free(lsf_ftrack *t)
{
    pthread_mutex_destroy(&t->lock);
    free(t->ring);
    free(t);
}

static void on_ack(void *arg, uint64_t token, bool ok)
{
    lsf_ftrack *t = arg;
    pthread_mutex_lock(&t->lock);
    pend *p = &t->ring[(t->head + (size_t)(token - t->head_token)) % t->cap];
    p->done = true;
    p->ok = ok;
    while (t->n && t->ring[t->head].done) {
        pend *h = &t->ring[t->head];
        if (!t->closed) {
            tfile *f = h->f;
            if (!h->ok && !f->ack_failed) {
                f->ack_failed = true;
                lsf_counter_add(t->c_ack_failed, 1);
                lsf_warn("file %s: a sink did not take some events; its checkpoint stays at "
                         "offset %lld until the next start", f->path, (long long)f->acked_off);
            }
            if (!f->ack_failed && h->end > f->acked_off) {
                f->acked_off = h->end;
                t->dirty = true;
            }
            f->pending--;
        }
        t->head = (t->head + 1) % t->cap;
        t->head_token++;
        t->n--;
    }
    bool gone = t->closed && t->n == 0;
    pthread_mutex_unlock(&t->lock);
    if (gone)
        ftrack_free(t);
}

void lsf_ftrack_submit(lsf_ftrack *t, lsf_batch *b, tfile *f, off_t end)
{
    pthread_mutex_lock(&t->lock);
    if (t->n == t->cap) {
        size_t ncap = t->cap ? t->cap * 2 : 64;
        pend *nr = malloc(ncap * sizeof(*nr));
        if (!nr)
            lsf_die("out of memory");
        for (size_t i = 0; i < t->n; i++)
            nr[i] = t->ring[(t->head + i) % t->cap];
        free(t->ring);
        t->ring = nr;
        t->cap = ncap;
        t->head = 0;
    }
    uint64_t token = t->head_token + t->n;
    t->ring[(t->head + t->n) % t->cap] = (pend){f, end, false, false};
    t->n++;
    f->pending++;
    pthread_mutex_unlock(&t->lock);
    b->ack = lsf_ack_new(on_ack, t, token);
}

void lsf_ftrack_lock(lsf_ftrack *t) { pthread_mutex_lock(&t->lock); }
void lsf_ftrack_unlock(lsf_ftrack *t) { pthread_mutex_unlock(&t->lock); }

bool lsf_ftrack_take_dirty(lsf_ftrack *t)
{
    pthread_mutex_lock(&t->lock);
    bool d = t->dirty;
    t->dirty = false;
    pthread_mutex_unlock(&t->lock);
    return d;
}

void lsf_ftrack_close(lsf_ftrack *t)
{
    pthread_mutex_lock(&t->lock);
    t->closed = true;
    bool gone = t->n == 0;
    pthread_mutex_unlock(&t->lock);
    if (gone)
        ftrack_free(t);
}

/* ---- fingerprints -------------------------------------------------------- */

static uint64_t fnv1a(const unsigned char *p, size_t n)
{
    uint64_t h = 1469598103934665603ULL;
    for (size_t i = 0; i < n; i++) {
        h ^= p[i];
        h *= 1099511628211ULL;
    }
    return h;
}

/* Reads exactly n bytes at offset 0. */
static int read_head(int fd, unsigned char *buf, size_t n)
{
    size_t got = 0;
    while (got < n) {
        ssize_t r = pread(fd, buf + got, n - got, (off_t)got);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            return -1;
        got += (size_t)r;
    }
    return 0;
}

int lsf_fp_compute(int fd, off_t size, lsf_fp *out)
{
    unsigned char buf[LSF_FP_BYTES];
    size_t n = size < (off_t)LSF_FP_BYTES ? (size_t)(size > 0 ? size : 0) : LSF_FP_BYTES;
    out->len = 0;
    out->hash = 0;
    if (n && read_head(fd, buf, n) < 0)
        return -1;
    out->len = (uint32_t)n;
    out->hash = n ? fnv1a(buf, n) : 0;
    return 0;
}

bool lsf_fp_matches(int fd, const lsf_fp *fp)
{
    unsigned char buf[LSF_FP_BYTES];
    if (fp->len == 0 || fp->len > LSF_FP_BYTES || read_head(fd, buf, fp->len) < 0)
        return false;
    return fnv1a(buf, fp->len) == fp->hash;
}

/* ---- the checkpoint file --------------------------------------------------- */

void lsf_ckpt_free(lsf_ckpt *v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(v[i].path);
    free(v);
}

int lsf_ckpt_load(const char *path, lsf_ckpt **out, size_t *n, char *err, size_t errlen)
{
    *out = NULL;
    *n = 0;
    FILE *fp = fopen(path, "re");
    if (!fp) {
        if (errno == ENOENT)
            return 0;
        snprintf(err, errlen, "cannot read checkpoints %s: %s", path, strerror(errno));
        return -1;
    }
    char *line = NULL;
    size_t cap = 0, nv = 0, capv = 0;
    lsf_ckpt *v = NULL;
    ssize_t len;
    int lineno = 0;
    while ((len = getline(&line, &cap, fp)) >= 0) {
        lineno++;
        if (len && line[len - 1] == '\n')
            line[--len] = '\0';
        if (lineno == 1 && strcmp(line, CKPT_MAGIC) == 0)
            continue;
        unsigned long long dev, ino, hash;
        unsigned int fplen;
        long long acked, sub;
        int pos = 0;
        if (sscanf(line, "%llu %llu %u %llx %lld %lld %n", &dev, &ino, &fplen, &hash, &acked, &sub,
                   &pos) != 6 || pos == 0 || fplen > LSF_FP_BYTES || acked < 0 || sub < acked) {
            lsf_warn("%s:%d: not a checkpoint line, ignored", path, lineno);
            continue;
        }
        if (nv == capv) {
            capv = capv ? capv * 2 : 16;
            lsf_ckpt *nvv = realloc(v, capv * sizeof(*v));
            if (!nvv)
                lsf_die("out of memory");
            v = nvv;
        }
        v[nv] = (lsf_ckpt){(dev_t)dev, (ino_t)ino, {fplen, hash}, (off_t)acked, (off_t)sub,
                           strdup(line + pos), false};
        if (!v[nv].path)
            lsf_die("out of memory");
        nv++;
    }
    free(line);
    fclose(fp);
    *out = v;
    *n = nv;
    return 0;
}

static void put_line(FILE *fp, dev_t dev, ino_t ino, const lsf_fp *f, off_t acked, off_t sub,
                     const char *path)
{
    if (sub < acked)
        sub = acked;
    /* The path is informational plus the directory to search for a renamed
     * file after a restart; a name with a newline is not written. */
    fprintf(fp, "%llu %llu %u %016" PRIx64 " %lld %lld %s\n", (unsigned long long)dev,
            (unsigned long long)ino, f->len, f->hash, (long long)acked, (long long)sub,
            strchr(path, '\n') ? "-" : path);
}

int lsf_ckpt_save(const char *path, lsf_ftrack *t, tfile *files, const lsf_ckpt *keep, size_t nkeep,
                  bool sync)
{
    char tmp[4096];
    int n = snprintf(tmp, sizeof(tmp), "%s.tmp", path);
    if (n < 0 || (size_t)n >= sizeof(tmp))
        return -ENAMETOOLONG;
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0)
        return -errno;
    FILE *fp = fdopen(fd, "w");
    if (!fp) {
        int e = errno;
        close(fd);
        unlink(tmp);
        return -e;
    }
    fprintf(fp, "%s\n", CKPT_MAGIC);
    lsf_ftrack_lock(t);
    for (tfile *f = files; f; f = f->next) {
        if (f->retired || (f->finished && f->pending == 0))
            continue;
        put_line(fp, f->dev, f->ino, &f->fp, f->acked_off, f->persisted_sub, f->path);
    }
    lsf_ftrack_unlock(t);
    for (size_t i = 0; i < nkeep; i++)
        if (!keep[i].claimed)
            put_line(fp, keep[i].dev, keep[i].ino, &keep[i].fp, keep[i].acked, keep[i].submitted,
                     keep[i].path);
    int rc = 0;
    if (fflush(fp) != 0 || (sync && fdatasync(fileno(fp)) < 0))
        rc = -errno;
    if (fclose(fp) != 0 && rc == 0)
        rc = -errno;
    if (rc == 0 && rename(tmp, path) < 0)
        rc = -errno;
    if (rc < 0) {
        unlink(tmp);
        return rc;
    }
    if (!sync)
        return 0;
    char dirbuf[4096];
    snprintf(dirbuf, sizeof(dirbuf), "%s", path);
    int dfd = open(dirname(dirbuf), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd >= 0) {
        fsync(dfd);
        close(dfd);
    }
    return 0;
}
