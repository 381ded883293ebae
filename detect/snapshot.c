/* snapshot.c - detection state to disk and back.
 *
 * File format (host byte order; version 1):
 *   header  "LSFDETS\0", u32 version, u32 0x01020304 (byte order),
 *           u64 payload length, u64 lsf_hash64 of the payload
 *   payload i64 watermark, i64 wall time written, u32 detections, then per
 *           detection: id, u64 fingerprint, u8 type, u32 fixed state bytes,
 *           rate limiter (f64 tokens, i64 last, u64 dropped), u64 keys, and
 *           per key (least recently used first): key bytes, first/last seen,
 *           quiet-until, deadline, events, suppressed, max score, the fixed
 *           state, exemplars, and the type's variable part (kinds.c).
 *
 * The one design choice to know: a snapshot is taken one shard at a time
 * (each shard's lock is held only while its keys are copied), so processing
 * never stops for a whole snapshot; keys are re-sharded by their hash on
 * load, so the shard count may change between runs. Only detections whose id
 * and fingerprint match the running definitions are restored. A file with a
 * bad header, version, byte order, length or checksum is reported and
 * ignored: detections then start empty, they never stop logsift.
 *
 * Threads: save from the snapshot thread or the main thread at shutdown; load
 * on the main thread before any batch.
 */
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "anomaly/hash.h"
#include "core/log.h"
#include "detect/detect.h"
#include "sinks/write_all.h"

#define MAGIC "LSFDETS"
#define VERSION 1u
#define BYTE_ORDER_MARK 0x01020304u
#define HEADER_BYTES 32
#define CHECK_SEED 0x736e6170ULL

static void save_key(const lsf_detrun *r, const lsf_dentry *e, lsf_wbuf *w)
{
    lsf_wbuf_u32(w, e->keylen);
    lsf_wbuf_put(w, lsf_dkey_bytes(r, e), e->keylen);
    lsf_wbuf_u64(w, (uint64_t)e->first_ns);
    lsf_wbuf_u64(w, (uint64_t)e->last_ns);
    lsf_wbuf_u64(w, (uint64_t)e->quiet_until_ns);
    lsf_wbuf_u64(w, (uint64_t)e->deadline_ns);
    lsf_wbuf_u64(w, e->n);
    lsf_wbuf_u32(w, e->suppressed);
    lsf_wbuf_f64(w, e->max_score);
    lsf_wbuf_put(w, e->state, r->state_bytes);
    lsf_wbuf_u8(w, e->nex);
    uint32_t k = r->def.exemplars, first = e->nex < k ? 0 : e->exhead;
    for (uint32_t i = 0; i < e->nex; i++) {
        const char *x = e->ex[(first + i) % k];
        uint32_t len = (uint32_t)strlen(x);
        lsf_wbuf_u32(w, len);
        lsf_wbuf_put(w, x, len);
    }
    lsf_kind_save(r, e, w);
}

static int write_file(const char *path, const lsf_wbuf *hdr, const lsf_wbuf *body)
{
    char tmp[4096];
    if (snprintf(tmp, sizeof(tmp), "%s.tmp", path) >= (int)sizeof(tmp))
        return -ENAMETOOLONG;
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0)
        return -errno;
    int e = lsf_write_all(fd, (const char *)hdr->p, hdr->len);
    if (!e)
        e = lsf_write_all(fd, (const char *)body->p, body->len);
    if (!e && fsync(fd) < 0)
        e = errno;
    close(fd);
    if (!e && rename(tmp, path) < 0)
        e = errno;
    if (e) {
        unlink(tmp);
        return -e;
    }
    char dir[4096];
    snprintf(dir, sizeof(dir), "%s", path);
    int dfd = open(dirname(dir), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd >= 0) {
        fsync(dfd);
        close(dfd);
    }
    return 0;
}

int lsf_det_snapshot_save(lsf_detector *d, const char *path, uint64_t *keys_out)
{
    lsf_detset *set = lsf_detector_current(d);
    uint32_t n = set ? set->n : 0, ns = lsf_detector_nshards(d);
    lsf_wbuf *keys = calloc(n ? n : 1, sizeof(lsf_wbuf));
    uint64_t *counts = calloc(n ? n : 1, sizeof(uint64_t)), total = 0;
    if (!keys || !counts)
        lsf_die("out of memory");
    for (uint32_t k = 0; k < ns; k++) {
        lsf_detector_lock_shard(d, k);
        for (uint32_t i = 0; i < n; i++) {
            const lsf_detrun *r = set->runs[i];
            for (const lsf_dentry *e = r->shards[k].lru_tail; e; e = e->lprev) {
                save_key(r, e, &keys[i]);
                counts[i]++;
            }
        }
        lsf_detector_unlock_shard(d, k);
    }
    lsf_wbuf body = {0}, hdr = {0};
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    lsf_wbuf_u64(&body, (uint64_t)lsf_detector_watermark(d));
    lsf_wbuf_u64(&body, (uint64_t)now.tv_sec * 1000000000ULL + (uint64_t)now.tv_nsec);
    lsf_wbuf_u32(&body, n);
    for (uint32_t i = 0; i < n; i++) {
        lsf_detrun *r = set->runs[i];
        uint32_t idlen = (uint32_t)strlen(r->def.id);
        lsf_wbuf_u32(&body, idlen);
        lsf_wbuf_put(&body, r->def.id, idlen);
        lsf_wbuf_u64(&body, r->def.fingerprint);
        lsf_wbuf_u8(&body, r->def.type);
        lsf_wbuf_u32(&body, (uint32_t)r->state_bytes);
        pthread_mutex_lock(&r->rate_lock);
        lsf_wbuf_f64(&body, r->tokens);
        lsf_wbuf_u64(&body, (uint64_t)r->rate_last_ns);
        lsf_wbuf_u64(&body, r->rate_dropped);
        pthread_mutex_unlock(&r->rate_lock);
        lsf_wbuf_u64(&body, counts[i]);
        lsf_wbuf_put(&body, keys[i].p, keys[i].len);
        total += counts[i];
        lsf_wbuf_free(&keys[i]);
    }
    free(keys);
    free(counts);
    lsf_detset_unref(set);
    lsf_wbuf_put(&hdr, MAGIC, 8);
    lsf_wbuf_u32(&hdr, VERSION);
    lsf_wbuf_u32(&hdr, BYTE_ORDER_MARK);
    lsf_wbuf_u64(&hdr, body.len);
    lsf_wbuf_u64(&hdr, lsf_hash64(body.p, body.len, CHECK_SEED));
    int rc = write_file(path, &hdr, &body);
    lsf_wbuf_free(&body);
    lsf_wbuf_free(&hdr);
    if (keys_out)
        *keys_out = total;
    return rc;
}

/* ---- loading ------------------------------------------------------------------ */

static lsf_detrun *find_run(lsf_detset *set, const char *id, uint32_t idlen, uint64_t fp,
                            uint8_t type, uint32_t state_bytes)
{
    for (uint32_t i = 0; set && i < set->n; i++) {
        lsf_detrun *r = set->runs[i];
        if (strlen(r->def.id) == idlen && memcmp(r->def.id, id, idlen) == 0 &&
            r->def.fingerprint == fp && r->def.type == type && r->state_bytes == state_bytes)
            return r;
    }
    return NULL;
}

/* Reads one key; into r when r is not NULL (else it is skipped). */
static int load_key(lsf_detector *d, lsf_detrun *r, lsf_rbuf *rb, uint32_t state_bytes)
{
    uint32_t keylen = lsf_rbuf_u32_max(rb, 65535);
    const char *key = lsf_rbuf_view(rb, keylen);
    int64_t first = (int64_t)lsf_rbuf_u64(rb), last = (int64_t)lsf_rbuf_u64(rb);
    int64_t quiet = (int64_t)lsf_rbuf_u64(rb), deadline = (int64_t)lsf_rbuf_u64(rb);
    uint64_t n = lsf_rbuf_u64(rb);
    uint32_t suppressed = lsf_rbuf_u32(rb);
    double score = lsf_rbuf_f64(rb);
    const void *state = lsf_rbuf_view(rb, state_bytes);
    uint32_t nex = lsf_rbuf_u8(rb);
    if (rb->bad || nex > LSF_DET_MAX_EXEMPLARS)
        return -1;
    lsf_dentry *e = NULL;
    lsf_dshard *s = NULL;
    if (r) {
        uint64_t h = lsf_det_key_hash(key, keylen);
        s = &r->shards[lsf_det_key_shard(h, r->nshards)];
        e = lsf_dkey_get(r, s, h, key, keylen, last);
        memcpy(e->state, state, state_bytes);
        e->first_ns = first;
        e->last_ns = last;
        e->quiet_until_ns = quiet;
        e->n = n;
        e->suppressed = suppressed;
        e->max_score = (float)score;
    }
    for (uint32_t i = 0; i < nex; i++) {
        uint32_t len = lsf_rbuf_u32_max(rb, 65536);
        const char *x = lsf_rbuf_view(rb, len);
        if (rb->bad)
            return -1;
        if (e)
            lsf_dkey_exemplar(r, s, e, lsf_str_make(x, len));
    }
    if (!e)
        return 0;
    if (lsf_kind_load(r, s, e, rb) < 0)
        return -1;
    if (deadline)
        lsf_dtimer_set(s, e, deadline);
    (void)d;
    return 0;
}

static void clear_all(lsf_detset *set)
{
    for (uint32_t i = 0; set && i < set->n; i++)
        for (uint32_t k = 0; k < set->runs[i]->nshards; k++)
            lsf_dshard_free(set->runs[i], &set->runs[i]->shards[k]);
}

static char *read_all(const char *path, size_t *len, int *err)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        *err = errno;
        return NULL;
    }
    struct stat st;
    char *buf = NULL;
    if (fstat(fd, &st) == 0 && (buf = malloc((size_t)st.st_size + 1))) {
        size_t got = 0;
        while (got < (size_t)st.st_size) {
            ssize_t r = read(fd, buf + got, (size_t)st.st_size - got);
            if (r < 0 && errno == EINTR)
                continue;
            if (r <= 0)
                break;
            got += (size_t)r;
        }
        *len = got;
    }
    *err = buf ? 0 : errno ? errno : ENOMEM;
    close(fd);
    return buf;
}

int lsf_det_snapshot_load(lsf_detector *d, const char *path, uint64_t *keys_out,
                          uint32_t *dropped_defs, lsf_errbuf *err)
{
    *keys_out = 0;
    *dropped_defs = 0;
    size_t len = 0;
    int e;
    char *buf = read_all(path, &len, &e);
    if (!buf) {
        if (e == ENOENT)
            return 0;
        snprintf(err->msg, sizeof(err->msg), "%s: cannot read: %s", path, strerror(e));
        return -1;
    }
    lsf_rbuf h = {(const unsigned char *)buf, len, 0, false};
    const char *magic = lsf_rbuf_view(&h, 8);
    uint32_t version = lsf_rbuf_u32(&h), bom = lsf_rbuf_u32(&h);
    uint64_t plen = lsf_rbuf_u64(&h), sum = lsf_rbuf_u64(&h);
    const char *why = NULL;
    if (h.bad || memcmp(magic, MAGIC, 8) != 0)
        why = "not a detections snapshot";
    else if (bom != BYTE_ORDER_MARK)
        why = "written on a machine of another byte order";
    else if (version != VERSION)
        why = "of an unknown version";
    else if (plen != len - HEADER_BYTES)
        why = "truncated or with trailing bytes";
    else if (lsf_hash64(buf + HEADER_BYTES, plen, CHECK_SEED) != sum)
        why = "corrupt (checksum mismatch)";
    if (why) {
        snprintf(err->msg, sizeof(err->msg), "%s: %s", path, why);
        free(buf);
        return -1;
    }
    lsf_rbuf rb = {(const unsigned char *)buf + HEADER_BYTES, plen, 0, false};
    int64_t wm = (int64_t)lsf_rbuf_u64(&rb);
    lsf_rbuf_u64(&rb); /* wall time written: for people reading dumps */
    uint32_t ndefs = lsf_rbuf_u32_max(&rb, 1u << 20);
    lsf_detset *set = lsf_detector_current(d);
    uint64_t loaded = 0;
    for (uint32_t i = 0; i < ndefs && !rb.bad; i++) {
        uint32_t idlen = lsf_rbuf_u32_max(&rb, 4096);
        const char *id = lsf_rbuf_view(&rb, idlen);
        uint64_t fp = lsf_rbuf_u64(&rb);
        uint8_t type = lsf_rbuf_u8(&rb);
        uint32_t sb = lsf_rbuf_u32_max(&rb, 1u << 20);
        double tokens = lsf_rbuf_f64(&rb);
        int64_t rate_last = (int64_t)lsf_rbuf_u64(&rb);
        uint64_t rate_dropped = lsf_rbuf_u64(&rb);
        uint64_t nkeys = lsf_rbuf_u64(&rb);
        if (rb.bad)
            break;
        lsf_detrun *r = find_run(set, id, idlen, fp, type, sb);
        if (!r)
            (*dropped_defs)++;
        else {
            r->tokens = tokens;
            r->rate_last_ns = rate_last;
            r->rate_dropped = rate_dropped;
        }
        for (uint64_t k = 0; k < nkeys && !rb.bad; k++)
            if (load_key(d, r, &rb, sb) < 0)
                rb.bad = true;
        if (r)
            loaded += nkeys;
    }
    if (rb.bad || rb.off != rb.len) {
        clear_all(set);
        lsf_detset_unref(set);
        free(buf);
        snprintf(err->msg, sizeof(err->msg), "%s: malformed contents", path);
        return -1;
    }
    lsf_detset_unref(set);
    free(buf);
    lsf_detector_restored(d, wm);
    *keys_out = loaded;
    return 0;
}
