/* state.c - anomaly state snapshots: every detector's keys, models, sets,
 * sketches and templates to one file and back.
 *
 * Format (version 3: the series model keeps its last report's index),
 * host byte order, refused on a machine of the other:
 *   "LSFANOMS" | u32 version | u32 0x01020304 | u64 body length | u64 body hash
 *   body: u32 detectors, then per detector:
 *     u32 name length, name | u8 type | u64 settings fingerprint |
 *     u64 section length | section
 *   section: [rare_template: u64 miner length, miner] | u32 shards |
 *     per shard: u64 swept_ns | [rare_template: u8 used, sketch if used] |
 *     u32 entries |
 *     per entry: u64 key hash | u32 key length | key | entry state (detect.c)
 *
 * The one design choice to know: the file is checked whole (length and a
 * 64-bit hash of the body) before anything is restored, and it is written
 * to a temporary file that is fsync'ed and renamed over the old one, so a
 * crash mid-write leaves the previous snapshot. A corrupt, truncated or
 * foreign file is reported and ignored: logsift starts with empty state
 * rather than refusing to start or trusting half a file. A detector whose
 * type or settings changed (the fingerprint) starts empty; one that was
 * renamed or removed is dropped; a changed shard count re-shards the keys
 * (rare_template sketches then restart).
 *
 * Threads: save takes each shard's ticket lock in turn (a consistent view of
 * each shard, not a global cut); load runs before processing starts.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "anomaly/anomaly.h"
#include "anomaly/hash.h"
#include "core/log.h"

#define SNAP_MAGIC "LSFANOMS"
#define SNAP_VERSION 3u
#define SNAP_ORDER 0x01020304u
#define SNAP_HASH_SEED 0x736e617073686f74ULL
#define SNAP_MAX_BYTES (64ULL << 30)

static uint64_t fingerprint(const lsf_anom_det *d)
{
    const lsf_anom_def *f = &d->def;
    uint64_t h = lsf_mix64((uint64_t)f->type + 1);
    int64_t nums[] = {f->interval_ns, f->lateness_ns, f->learning_ns, f->max_values,
                      f->sketch_width, f->rate_open, f->agg};
    h = lsf_hash64(nums, sizeof(nums), h);
    if (f->type == LSF_ANOM_RATE || f->type == LSF_ANOM_NUMERIC) {
        const lsf_model_conf *m = &f->model;
        uint64_t mc[] = {m->window, m->embed_len, m->embed_dims, m->history, m->tail_block,
                         m->cooldown, m->learn, (uint64_t)m->season};
        h = lsf_hash64(mc, sizeof(mc), h);
    }
    for (size_t i = 0; i < f->by.n; i++)
        h = lsf_hash64(f->by.v[i], strlen(f->by.v[i]) + 1, h);
    if (f->field)
        h = lsf_hash64(f->field, strlen(f->field), h ^ 1);
    return h ? h : 1;
}

static void lock_shard(lsf_anom *a, uint32_t k)
{
    if (a->tk)
        pthread_mutex_lock(&a->tk[k].m);
}

static void unlock_shard(lsf_anom *a, uint32_t k)
{
    if (a->tk)
        pthread_mutex_unlock(&a->tk[k].m);
}

static void save_detector(lsf_anom *a, lsf_anom_det *d, lsf_wbuf *w)
{
    if (d->def.type == LSF_ANOM_RARE_TEMPLATE) {
        lsf_wbuf mb = {0};
        lsf_miner_save(d->miner, &mb);
        lsf_wbuf_u64(w, mb.len);
        lsf_wbuf_put(w, mb.p, mb.len);
        lsf_wbuf_free(&mb);
    }
    lsf_wbuf_u32(w, d->nshards);
    for (uint32_t k = 0; k < d->nshards; k++) {
        lsf_anom_shard *s = &d->shard[k];
        lock_shard(a, k);
        lsf_wbuf_u64(w, (uint64_t)s->swept_ns);
        if (d->def.type == LSF_ANOM_RARE_TEMPLATE) {
            lsf_wbuf_u8(w, s->cms.total ? 1 : 0); /* an unused sketch is not written */
            if (s->cms.total)
                lsf_cms_save(&s->cms, w);
        }
        lsf_wbuf_u32(w, s->n);
        /* oldest first, so a restore rebuilds the same LRU order */
        for (lsf_anom_entry *e = s->lru.prev; e != &s->lru; e = e->prev) {
            lsf_wbuf_u64(w, e->rec->hash);
            lsf_wbuf_u32(w, e->rec->key_len);
            lsf_wbuf_put(w, e->rec->key, e->rec->key_len);
            lsf_anom_entry_save(d, e, w);
        }
        unlock_shard(a, k);
    }
}

static int write_all(int fd, const void *p, size_t n)
{
    const char *c = p;
    while (n) {
        ssize_t k = write(fd, c, n);
        if (k < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        c += k;
        n -= (size_t)k;
    }
    return 0;
}

int lsf_anom_snapshot_save(lsf_anom *a, const char *path, lsf_errbuf *err)
{
    lsf_wbuf body = {0};
    lsf_wbuf_u32(&body, (uint32_t)a->ndet);
    for (size_t i = 0; i < a->ndet; i++) {
        lsf_anom_det *d = &a->det[i];
        lsf_wbuf sec = {0};
        save_detector(a, d, &sec);
        uint32_t nl = (uint32_t)strlen(d->def.name);
        lsf_wbuf_u32(&body, nl);
        lsf_wbuf_put(&body, d->def.name, nl);
        lsf_wbuf_u8(&body, (uint8_t)d->def.type);
        lsf_wbuf_u64(&body, fingerprint(d));
        lsf_wbuf_u64(&body, sec.len);
        lsf_wbuf_put(&body, sec.p, sec.len);
        lsf_wbuf_free(&sec);
        if (d->c_bytes)
            atomic_store_explicit(&d->c_bytes->value, body.len, memory_order_relaxed);
    }
    lsf_wbuf head = {0};
    lsf_wbuf_put(&head, SNAP_MAGIC, 8);
    lsf_wbuf_u32(&head, SNAP_VERSION);
    lsf_wbuf_u32(&head, SNAP_ORDER);
    lsf_wbuf_u64(&head, body.len);
    lsf_wbuf_u64(&head, lsf_hash64(body.p, body.len, SNAP_HASH_SEED));

    size_t tl = strlen(path) + 8;
    char *tmp = malloc(tl);
    if (!tmp)
        lsf_die("out of memory");
    snprintf(tmp, tl, "%s.tmp", path);
    int rc = -1;
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) {
        snprintf(err->msg, sizeof(err->msg), "anomaly snapshot %s: %s", tmp, strerror(errno));
        goto fail;
    }
    if (write_all(fd, head.p, head.len) < 0 || write_all(fd, body.p, body.len) < 0 ||
        fsync(fd) < 0) {
        snprintf(err->msg, sizeof(err->msg), "anomaly snapshot %s: %s", tmp, strerror(errno));
        close(fd);
        unlink(tmp);
        goto fail;
    }
    close(fd);
    if (rename(tmp, path) < 0) {
        snprintf(err->msg, sizeof(err->msg), "anomaly snapshot %s: %s", path, strerror(errno));
        unlink(tmp);
        goto fail;
    }
    rc = 0;
fail:
    free(tmp);
    lsf_wbuf_free(&head);
    lsf_wbuf_free(&body);
    return rc;
}

/* ---- load -------------------------------------------------------------------- */

static void clear_all(lsf_anom *a)
{
    for (size_t i = 0; i < a->ndet; i++) {
        lsf_anom_det *d = &a->det[i];
        for (uint32_t k = 0; k < d->nshards; k++) {
            lsf_anom_shard_clear(d, &d->shard[k]);
            d->shard[k].swept_ns = 0;
            if (d->shard[k].cms.cnt) {
                memset(d->shard[k].cms.cnt, 0, lsf_cms_bytes(&d->shard[k].cms));
                d->shard[k].cms.total = 0;
            }
        }
        if (d->miner) {
            lsf_rbuf empty = {NULL, 0, 0, false};
            lsf_miner_load(d->miner, &empty); /* empties it */
        }
    }
}

static int load_detector(lsf_anom *a, lsf_anom_det *d, lsf_rbuf *r)
{
    if (d->def.type == LSF_ANOM_RARE_TEMPLATE) {
        uint64_t ml = lsf_rbuf_u64(r);
        const void *mp = ml <= r->len ? lsf_rbuf_view(r, ml) : NULL;
        lsf_rbuf mr = {mp, ml, 0, mp == NULL};
        if (!mp || lsf_miner_load(d->miner, &mr) < 0)
            return -1;
    }
    uint32_t nshards = lsf_rbuf_u32_max(r, 1u << 20);
    bool same_shards = nshards == d->nshards;
    for (uint32_t k = 0; k < nshards && !r->bad; k++) {
        int64_t swept = (int64_t)lsf_rbuf_u64(r);
        if (same_shards)
            d->shard[k].swept_ns = swept;
        uint8_t has_sketch = d->def.type == LSF_ANOM_RARE_TEMPLATE ? lsf_rbuf_u8(r) : 0;
        if (has_sketch > 1)
            return -1;
        if (has_sketch) {
            if (same_shards) {
                if (lsf_cms_load(&d->shard[k].cms, r) < 0)
                    return -1;
            } else { /* another shard count: skip the sketch, counts restart */
                uint32_t w = lsf_rbuf_u32(r), dep = lsf_rbuf_u32(r);
                (void)lsf_rbuf_u64(r);
                if (!lsf_rbuf_view(r, (size_t)w * dep * sizeof(uint32_t)))
                    return -1;
            }
        }
        uint32_t n = lsf_rbuf_u32(r);
        for (uint32_t j = 0; j < n && !r->bad; j++) {
            uint64_t hash = lsf_rbuf_u64(r);
            uint32_t kl = lsf_rbuf_u32_max(r, LSF_ANOM_MAX_KEY);
            const char *key = lsf_rbuf_view(r, kl);
            if (!key)
                return -1;
            lsf_anom_shard *s = &d->shard[lsf_anom_shard_of(a, hash) % d->nshards];
            bool created;
            lsf_anom_entry *e = lsf_anom_entry_get(d, s, hash, key, kl, &created);
            if (!created || lsf_anom_entry_load(d, e, r) < 0)
                return -1;
            lsf_anom_entry_touched(d, s, e);
        }
    }
    return r->bad ? -1 : 0;
}

static int corrupt(lsf_errbuf *err, const char *path, const char *why)
{
    snprintf(err->msg, sizeof(err->msg),
             "anomaly snapshot %s is unusable (%s); ignored, starting with empty state", path, why);
    return -1;
}

int lsf_anom_snapshot_load(lsf_anom *a, const char *path, lsf_errbuf *err)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        if (errno == ENOENT)
            return 0;
        snprintf(err->msg, sizeof(err->msg), "anomaly snapshot %s: %s; starting with empty state",
                 path, strerror(errno));
        return -1;
    }
    unsigned char head[32];
    char *body = NULL;
    int rc = -1;
    if (fread(head, 1, sizeof(head), f) != sizeof(head)) {
        rc = corrupt(err, path, "shorter than its header");
        goto out;
    }
    uint32_t version, order;
    uint64_t len, sum;
    memcpy(&version, head + 8, 4);
    memcpy(&order, head + 12, 4);
    memcpy(&len, head + 16, 8);
    memcpy(&sum, head + 24, 8);
    if (memcmp(head, SNAP_MAGIC, 8) != 0) {
        rc = corrupt(err, path, "not an anomaly snapshot");
        goto out;
    }
    if (order != SNAP_ORDER) {
        rc = corrupt(err, path, "written on a machine of the other byte order");
        goto out;
    }
    if (version != SNAP_VERSION) {
        char why[64];
        snprintf(why, sizeof(why), "version %u, this logsift reads %u", version, SNAP_VERSION);
        rc = corrupt(err, path, why);
        goto out;
    }
    if (len > SNAP_MAX_BYTES || !(body = malloc(len ? len : 1))) {
        rc = corrupt(err, path, "implausible length");
        goto out;
    }
    if (fread(body, 1, len, f) != len || fgetc(f) != EOF) {
        rc = corrupt(err, path, "length does not match its header (truncated?)");
        goto out;
    }
    if (lsf_hash64(body, len, SNAP_HASH_SEED) != sum) {
        rc = corrupt(err, path, "checksum mismatch");
        goto out;
    }
    lsf_rbuf r = {(const unsigned char *)body, len, 0, false};
    uint32_t ndet = lsf_rbuf_u32_max(&r, 1u << 16);
    for (uint32_t i = 0; i < ndet && !r.bad; i++) {
        uint32_t nl = lsf_rbuf_u32_max(&r, 4096);
        const char *name = lsf_rbuf_view(&r, nl);
        uint8_t type = lsf_rbuf_u8(&r);
        uint64_t fp = lsf_rbuf_u64(&r), sl = lsf_rbuf_u64(&r);
        const void *sec = sl <= r.len - r.off ? lsf_rbuf_view(&r, sl) : NULL;
        if (!name || !sec) {
            r.bad = true;
            break;
        }
        char nm[4097];
        memcpy(nm, name, nl);
        nm[nl] = 0;
        lsf_anom_det *d = lsf_anom_find(a, nm);
        if (!d) {
            lsf_info("anomaly snapshot %s: detector '%s' is no longer configured; its state is "
                     "dropped", path, nm);
            continue;
        }
        if (d->def.type != type || fingerprint(d) != fp) {
            lsf_info("anomaly snapshot %s: detector '%s' changed its settings; it starts empty",
                     path, nm);
            continue;
        }
        lsf_rbuf sr = {sec, sl, 0, false};
        if (load_detector(a, d, &sr) < 0 || sr.off != sr.len) {
            r.bad = true;
            break;
        }
    }
    if (r.bad || r.off != r.len) {
        clear_all(a);
        rc = corrupt(err, path, "malformed contents");
        goto out;
    }
    rc = 0;
out:
    free(body);
    fclose(f);
    return rc;
}
