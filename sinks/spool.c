/* spool.c - the disk spool (see spool.h for the format and the contract).
 *
 * Design: appends go to a write buffer flushed with one write(2) per batch;
 * reads go through a read buffer filled with pread(2) in 1 MiB chunks, so
 * replaying a segment costs a few system calls per MiB. Corruption is found
 * by the same reader everywhere: the scan at open (which counts the records
 * left) and the replay share read_rec(), and a region is counted once
 * however often it is read past (`counted` is a high-water mark).
 * Threads: none of its own; the owner serialises calls.
 */
#include "spool.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "core/log.h"
#include "write_all.h"

#define MAGIC 0x72734cf5u
#define SEG_MAGIC "LSFSPOOL"
#define SEG_VERSION 1u
#define HDR 16u     /* segment header */
#define REC_HDR 12u /* magic, length, crc */
#define BODY_HDR 8u /* flags, 0, topic length, key length */
#define NO_KEY 0xffffffffu
#define READ_CHUNK (1u << 20)
#define WBUF_FLUSH (1u << 20)
#define CURSOR_SAVE_NS (200 * 1000000LL)

typedef struct seg {
    uint64_t seq, size; /* size: bytes flushed to the file, header included */
} seg;

struct lsf_spool {
    lsf_spool_opts o;
    char *dir;
    int lock_fd, dir_fd;
    seg *segs;
    size_t nsegs, capsegs;
    int wfd; /* the active segment, open for appends; -1: none yet */
    char *wbuf;
    size_t wlen, wcap;
    bool dirty; /* written since the last sync */
    uint64_t next_seq;
    lsf_spool_pos head;
    lsf_spool_pos counted; /* corruption before this was counted already */
    uint64_t records, total_bytes, corrupt, torn;
    bool cursor_dirty;
    int64_t cursor_saved_ns;
    /* reading */
    int rfd;
    uint64_t rfd_seq;
    char *rbuf;
    size_t rcap, rlen;
    uint64_t rbuf_seq, rbuf_off;
};

/* ---- CRC32C ------------------------------------------------------------ */

static uint32_t crc_table[8][256];
static pthread_once_t crc_once = PTHREAD_ONCE_INIT;

static void crc_init(void)
{
    for (uint32_t i = 0; i < 256; i++) {
        uint32_t c = i;
        for (int k = 0; k < 8; k++)
            c = (c >> 1) ^ (0x82f63b78u & (0u - (c & 1u)));
        crc_table[0][i] = c;
    }
    for (uint32_t i = 0; i < 256; i++)
        for (int t = 1; t < 8; t++)
            crc_table[t][i] = (crc_table[t - 1][i] >> 8) ^ crc_table[0][crc_table[t - 1][i] & 0xff];
}

#if defined(__x86_64__)
__attribute__((target("sse4.2"))) static uint32_t crc_hw(uint32_t crc, const unsigned char *p,
                                                         size_t n)
{
    uint64_t c = crc;
    for (; n >= 8; n -= 8, p += 8) {
        uint64_t v;
        memcpy(&v, p, 8);
        c = __builtin_ia32_crc32di(c, v);
    }
    uint32_t c32 = (uint32_t)c;
    for (; n; n--, p++)
        c32 = __builtin_ia32_crc32qi(c32, *p);
    return c32;
}
#endif

uint32_t lsf_crc32c_sw(uint32_t crc, const void *buf, size_t len)
{
    const unsigned char *p = buf;
    crc = ~crc;
    pthread_once(&crc_once, crc_init);
    for (; len >= 8; len -= 8, p += 8) {
        uint32_t lo = crc ^ ((uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
                             (uint32_t)p[3] << 24);
        crc = crc_table[7][lo & 0xff] ^ crc_table[6][(lo >> 8) & 0xff] ^
              crc_table[5][(lo >> 16) & 0xff] ^ crc_table[4][lo >> 24] ^ crc_table[3][p[4]] ^
              crc_table[2][p[5]] ^ crc_table[1][p[6]] ^ crc_table[0][p[7]];
    }
    for (; len; len--, p++)
        crc = (crc >> 8) ^ crc_table[0][(crc ^ *p) & 0xff];
    return ~crc;
}

uint32_t lsf_crc32c(uint32_t crc, const void *buf, size_t len)
{
#if defined(__x86_64__)
    static int hw = -1;
    if (hw < 0)
        hw = __builtin_cpu_supports("sse4.2") ? 1 : 0;
    if (hw)
        return ~crc_hw(~crc, buf, len);
#endif
    return lsf_crc32c_sw(crc, buf, len);
}

/* ---- little helpers -------------------------------------------------------- */

static uint32_t get32(const char *p)
{
    const unsigned char *u = (const unsigned char *)p;
    return (uint32_t)u[0] | (uint32_t)u[1] << 8 | (uint32_t)u[2] << 16 | (uint32_t)u[3] << 24;
}

static uint64_t get64(const char *p)
{
    return (uint64_t)get32(p) | (uint64_t)get32(p + 4) << 32;
}

static void put32(char *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (char)(v >> (8 * i));
}

static void put64(char *p, uint64_t v)
{
    put32(p, (uint32_t)v);
    put32(p + 4, (uint32_t)(v >> 32));
}

static int64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static int pos_cmp(lsf_spool_pos a, lsf_spool_pos b)
{
    if (a.seg != b.seg)
        return a.seg < b.seg ? -1 : 1;
    return a.off < b.off ? -1 : a.off > b.off;
}

static void seg_path(const lsf_spool *s, uint64_t seq, char *buf, size_t cap)
{
    snprintf(buf, cap, "%s/seg-%020" PRIu64 ".spool", s->dir, seq);
}

static void grow(char **buf, size_t *cap, size_t need)
{
    if (need <= *cap)
        return;
    size_t n = *cap ? *cap : 4096;
    while (n < need)
        n *= 2;
    char *nb = realloc(*buf, n);
    if (!nb)
        lsf_die("out of memory (spool buffer of %zu bytes)", n);
    *buf = nb;
    *cap = n;
}

/* Index of the first segment whose seq is >= seq (nsegs when none). */
static size_t seg_index(const lsf_spool *s, uint64_t seq)
{
    size_t i = 0;
    while (i < s->nsegs && s->segs[i].seq < seq)
        i++;
    return i;
}

/* ---- reading ----------------------------------------------------------------- */

/* Makes [off, off+len) of segment i readable in rbuf; returns a pointer to
 * it, or NULL with errno set (EIO for a short read). */
static const char *fetch(lsf_spool *s, size_t i, uint64_t off, size_t len)
{
    const seg *sg = &s->segs[i];
    if (s->rlen && s->rbuf_seq == sg->seq && off >= s->rbuf_off &&
        off + len <= s->rbuf_off + s->rlen)
        return s->rbuf + (off - s->rbuf_off);
    if (s->rfd < 0 || s->rfd_seq != sg->seq) {
        if (s->rfd >= 0)
            close(s->rfd);
        char path[4096];
        seg_path(s, sg->seq, path, sizeof(path));
        s->rfd = open(path, O_RDONLY | O_CLOEXEC);
        if (s->rfd < 0)
            return NULL;
        s->rfd_seq = sg->seq;
    }
    size_t want = len > READ_CHUNK ? len : READ_CHUNK;
    if (off + want > sg->size)
        want = (size_t)(sg->size - off);
    if (want < len) {
        errno = EIO;
        return NULL;
    }
    grow(&s->rbuf, &s->rcap, want);
    size_t got = 0;
    while (got < want) {
        ssize_t n = pread(s->rfd, s->rbuf + got, want - got, (off_t)(off + got));
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            s->rlen = 0;
            if (n == 0)
                errno = EIO;
            return NULL;
        }
        got += (size_t)n;
    }
    s->rbuf_seq = sg->seq;
    s->rbuf_off = off;
    s->rlen = got;
    return s->rbuf;
}

/* The offset of the next magic in segment i at or after `from`, or the
 * segment's size when there is none. */
static uint64_t find_magic(lsf_spool *s, size_t i, uint64_t from)
{
    const uint64_t size = s->segs[i].size;
    while (from + 4 <= size) {
        size_t n = (size_t)(size - from < READ_CHUNK ? size - from : READ_CHUNK);
        const char *p = fetch(s, i, from, n);
        if (!p)
            return size;
        for (size_t k = 0; k + 4 <= n; k++)
            if ((unsigned char)p[k] == 0xf5 && get32(p + k) == MAGIC)
                return from + k;
        from += n - 3;
        if (n < READ_CHUNK)
            break;
    }
    return size;
}

static void count_bad(lsf_spool *s, uint64_t seq, uint64_t off, uint64_t *counter)
{
    lsf_spool_pos p = {seq, off};
    if (pos_cmp(p, s->counted) >= 0) {
        (*counter)++;
        s->counted = (lsf_spool_pos){seq, off + 1};
    }
}

/* Parses the record at off of segment i. Returns its total length, 0 when
 * it is not a valid record (bad magic, length, checksum or layout), -1 when
 * it claims to run past the end of the segment, or -2 on a read error. */
static int64_t parse_rec(lsf_spool *s, size_t i, uint64_t off, lsf_spool_rec *rec)
{
    const uint64_t size = s->segs[i].size;
    if (size - off < REC_HDR)
        return -1;
    const char *h = fetch(s, i, off, REC_HDR);
    if (!h)
        return -2;
    uint32_t magic = get32(h), len = get32(h + 4), crc = get32(h + 8);
    if (magic != MAGIC || len < BODY_HDR || len > LSF_SPOOL_MAX_RECORD)
        return 0;
    if (size - off - REC_HDR < len)
        return -1;
    const char *r = fetch(s, i, off, REC_HDR + len);
    if (!r)
        return -2;
    const char *b = r + REC_HDR;
    if (lsf_crc32c(lsf_crc32c(0, r + 4, 4), b, len) != crc)
        return 0;
    uint32_t tlen = (uint32_t)(unsigned char)b[2] | (uint32_t)(unsigned char)b[3] << 8;
    uint32_t klen = get32(b + 4);
    uint64_t need = (uint64_t)BODY_HDR + tlen + (klen == NO_KEY ? 0 : klen);
    if (need > len)
        return 0;
    rec->flags = (uint8_t)b[0];
    rec->topic = lsf_str_make(b + BODY_HDR, tlen);
    rec->has_key = klen != NO_KEY;
    rec->key = rec->has_key ? lsf_str_make(b + BODY_HDR + tlen, klen) : LSF_STR_NULL;
    rec->value = lsf_str_make(b + need, len - need);
    return (int64_t)(REC_HDR + len);
}

int lsf_spool_read(lsf_spool *s, lsf_spool_pos *pos, lsf_spool_rec *rec, lsf_spool_pos *start)
{
    for (;;) {
        size_t i = seg_index(s, pos->seg);
        if (i == s->nsegs)
            return 0;
        if (s->segs[i].seq != pos->seg || pos->off < HDR)
            *pos = (lsf_spool_pos){s->segs[i].seq, HDR};
        if (pos->off >= s->segs[i].size) {
            if (i + 1 == s->nsegs)
                return 0;
            *pos = (lsf_spool_pos){s->segs[i + 1].seq, HDR};
            continue;
        }
        int64_t n = parse_rec(s, i, pos->off, rec);
        if (n > 0) {
            if (start)
                *start = *pos;
            pos->off += (uint64_t)n;
            return 1;
        }
        if (n == -2)
            return -errno;
        /* Not a record here: skip to the next magic. A region that began
         * with a plausible header and runs to the end of the segment is a
         * torn write, anything else corruption. */
        uint64_t next = find_magic(s, i, pos->off + 1);
        if (next >= s->segs[i].size && n == -1)
            count_bad(s, pos->seg, pos->off, &s->torn);
        else
            count_bad(s, pos->seg, pos->off, &s->corrupt);
        if (next < s->segs[i].size)
            pos->off = next;
        else if (i + 1 < s->nsegs)
            *pos = (lsf_spool_pos){s->segs[i + 1].seq, HDR};
        else {
            pos->off = s->segs[i].size;
            return 0;
        }
    }
}

/* ---- writing ------------------------------------------------------------------ */

static int sync_dir(lsf_spool *s)
{
    return (s->o.fsync != LSF_SPOOL_FSYNC_NEVER && fsync(s->dir_fd) < 0) ? -errno : 0;
}

/* Closes the active segment (syncing it unless `never`). */
static int close_active(lsf_spool *s)
{
    int rc = 0;
    if (s->wfd < 0)
        return 0;
    if (s->dirty && s->o.fsync != LSF_SPOOL_FSYNC_NEVER && fdatasync(s->wfd) < 0)
        rc = -errno;
    close(s->wfd);
    s->wfd = -1;
    s->dirty = false;
    return rc;
}

/* Appends {seq, size} to the segment list (the caller keeps it sorted). */
static void add_segment(lsf_spool *s, uint64_t seq, uint64_t size)
{
    if (s->nsegs == s->capsegs) {
        size_t n = s->capsegs ? s->capsegs * 2 : 16;
        seg *ns = realloc(s->segs, n * sizeof(*ns));
        if (!ns)
            lsf_die("out of memory (spool segments)");
        s->segs = ns;
        s->capsegs = n;
    }
    s->segs[s->nsegs++] = (seg){seq, size};
    s->total_bytes += size;
}

/* Starts a new active segment. */
static int new_segment(lsf_spool *s)
{
    int rc = close_active(s);
    if (rc < 0)
        return rc;
    char path[4096];
    uint64_t seq = s->next_seq++;
    seg_path(s, seq, path, sizeof(path));
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_APPEND | O_CLOEXEC, 0640);
    if (fd < 0)
        return -errno;
    char hdr[HDR];
    memcpy(hdr, SEG_MAGIC, 8);
    put32(hdr + 8, SEG_VERSION);
    put32(hdr + 12, 0);
    int e = lsf_write_all(fd, hdr, HDR);
    if (!e && s->o.fsync != LSF_SPOOL_FSYNC_NEVER && fdatasync(fd) < 0)
        e = errno;
    if (e) {
        close(fd);
        unlink(path);
        return -e;
    }
    add_segment(s, seq, HDR);
    s->wfd = fd;
    return sync_dir(s);
}

int lsf_spool_flush(lsf_spool *s)
{
    if (!s->wlen)
        return 0;
    seg *sg = &s->segs[s->nsegs - 1];
    int e = lsf_write_all(s->wfd, s->wbuf, s->wlen);
    if (e) {
        /* Cut a partial write so the next attempt starts at a record. */
        if (ftruncate(s->wfd, (off_t)sg->size) < 0)
            lsf_warn("spool: cannot truncate %s after a failed write: %s", s->dir, strerror(errno));
        return -e;
    }
    sg->size += s->wlen;
    s->total_bytes += s->wlen;
    s->wlen = 0;
    s->dirty = true;
    if (s->o.fsync == LSF_SPOOL_FSYNC_BATCH)
        return lsf_spool_sync(s);
    return 0;
}

int lsf_spool_sync(lsf_spool *s)
{
    if (s->wfd < 0 || !s->dirty)
        return 0;
    if (fdatasync(s->wfd) < 0)
        return -errno;
    s->dirty = false;
    return 0;
}

int lsf_spool_append(lsf_spool *s, const lsf_spool_rec *r, bool force)
{
    if (s->o.readonly)
        return -EROFS;
    uint64_t body =
        (uint64_t)BODY_HDR + r->topic.len + (r->has_key ? r->key.len : 0) + r->value.len;
    if (body > LSF_SPOOL_MAX_RECORD || r->topic.len > 0xffff)
        return -E2BIG;
    size_t reclen = REC_HDR + (size_t)body;
    if (!force && s->total_bytes + s->wlen + reclen > s->o.max_bytes)
        return -ENOSPC;
    int rc;
    if (s->wfd < 0 && (rc = new_segment(s)) < 0)
        return rc;
    const seg *sg = &s->segs[s->nsegs - 1];
    if (sg->size + s->wlen + reclen > s->o.segment_bytes && sg->size + s->wlen > HDR) {
        if ((rc = lsf_spool_flush(s)) < 0 || (rc = new_segment(s)) < 0)
            return rc;
    }
    grow(&s->wbuf, &s->wcap, s->wlen + reclen);
    char *p = s->wbuf + s->wlen;
    put32(p, MAGIC);
    put32(p + 4, (uint32_t)body);
    char *b = p + REC_HDR;
    b[0] = (char)r->flags;
    b[1] = 0;
    b[2] = (char)(r->topic.len & 0xff);
    b[3] = (char)(r->topic.len >> 8);
    put32(b + 4, r->has_key ? r->key.len : NO_KEY);
    char *q = b + BODY_HDR;
    if (r->topic.len)
        memcpy(q, r->topic.ptr, r->topic.len);
    q += r->topic.len;
    if (r->has_key && r->key.len) {
        memcpy(q, r->key.ptr, r->key.len);
        q += r->key.len;
    }
    if (r->value.len)
        memcpy(q, r->value.ptr, r->value.len);
    put32(p + 8, lsf_crc32c(lsf_crc32c(0, p + 4, 4), b, (size_t)body));
    s->wlen += reclen;
    s->records++;
    if (s->wlen >= WBUF_FLUSH)
        lsf_spool_flush(s); /* an error surfaces at the owner's next flush */
    return 0;
}

/* ---- cursor and commit ------------------------------------------------------- */

static int save_cursor(lsf_spool *s)
{
    char path[4096], tmp[4096], buf[24];
    snprintf(path, sizeof(path), "%s/cursor", s->dir);
    snprintf(tmp, sizeof(tmp), "%s/cursor.tmp", s->dir);
    put64(buf, s->head.seg);
    put64(buf + 8, s->head.off);
    put32(buf + 16, MAGIC);
    put32(buf + 20, lsf_crc32c(0, buf, 20));
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0640);
    if (fd < 0)
        return -errno;
    int e = lsf_write_all(fd, buf, sizeof(buf));
    close(fd);
    if (e || rename(tmp, path) < 0) {
        e = e ? e : errno;
        unlink(tmp);
        return -e;
    }
    s->cursor_dirty = false;
    s->cursor_saved_ns = now_ns();
    return 0;
}

static bool load_cursor(lsf_spool *s, lsf_spool_pos *pos)
{
    char path[4096], buf[24];
    snprintf(path, sizeof(path), "%s/cursor", s->dir);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return false;
    ssize_t n = read(fd, buf, sizeof(buf));
    close(fd);
    if (n != (ssize_t)sizeof(buf) || get32(buf + 16) != MAGIC ||
        get32(buf + 20) != lsf_crc32c(0, buf, 20))
        return false;
    pos->seg = get64(buf);
    pos->off = get64(buf + 8);
    return true;
}

static void remove_segment(lsf_spool *s, size_t i)
{
    char path[4096];
    seg_path(s, s->segs[i].seq, path, sizeof(path));
    if (unlink(path) < 0 && errno != ENOENT)
        lsf_warn("spool: cannot remove %s: %s", path, strerror(errno));
    if (s->rfd >= 0 && s->rfd_seq == s->segs[i].seq) {
        close(s->rfd);
        s->rfd = -1;
        s->rlen = 0;
    }
    s->total_bytes -= s->segs[i].size;
    memmove(&s->segs[i], &s->segs[i + 1], (s->nsegs - i - 1) * sizeof(seg));
    s->nsegs--;
}

/* True when no record bytes lie at or after pos (nothing buffered either). */
static bool at_end(const lsf_spool *s, lsf_spool_pos pos)
{
    if (s->wlen)
        return false;
    for (size_t k = 0; k < s->nsegs; k++) {
        const seg *sg = &s->segs[k];
        if (sg->seq < pos.seg)
            continue;
        uint64_t from = (sg->seq == pos.seg && pos.off > HDR) ? pos.off : HDR;
        if (sg->size > from)
            return false;
    }
    return true;
}

bool lsf_spool_empty(const lsf_spool *s)
{
    return at_end(s, s->head);
}

int lsf_spool_commit(lsf_spool *s, lsf_spool_pos pos, uint64_t nrecords)
{
    if (s->o.readonly)
        return -EROFS;
    if (pos_cmp(pos, s->head) > 0) {
        s->head = pos;
        s->cursor_dirty = true;
    }
    s->records = nrecords > s->records ? 0 : s->records - nrecords;
    if (at_end(s, s->head)) {
        /* Delivered everything: start afresh with no files. */
        close_active(s);
        while (s->nsegs)
            remove_segment(s, 0);
        char path[4096];
        snprintf(path, sizeof(path), "%s/cursor", s->dir);
        unlink(path);
        s->records = 0;
        s->head = (lsf_spool_pos){s->next_seq, HDR};
        s->cursor_dirty = false;
        return sync_dir(s);
    }
    bool removed = false;
    while (s->nsegs > 1 && s->segs[0].seq < s->head.seg) {
        remove_segment(s, 0);
        removed = true;
    }
    if (s->cursor_dirty && (removed || now_ns() - s->cursor_saved_ns >= CURSOR_SAVE_NS))
        return save_cursor(s);
    return 0;
}

lsf_spool_pos lsf_spool_head(const lsf_spool *s)
{
    return s->head;
}

void lsf_spool_get_stats(const lsf_spool *s, lsf_spool_stats *st)
{
    st->records = s->records;
    st->bytes = s->total_bytes + s->wlen;
    st->segments = s->nsegs;
    st->corrupt = s->corrupt;
    st->torn = s->torn;
}

/* ---- open and close ----------------------------------------------------------- */

static int cmp_seg(const void *a, const void *b)
{
    const seg *x = a, *y = b;
    return x->seq < y->seq ? -1 : x->seq > y->seq;
}

/* Finds the segment files; a file whose header is wrong counts as corrupt
 * and is left alone (renamed aside when writable, so it is not read again). */
static int list_segments(lsf_spool *s, char *err, size_t errlen)
{
    DIR *d = opendir(s->dir);
    if (!d) {
        snprintf(err, errlen, "cannot read spool directory %s: %s", s->dir, strerror(errno));
        return -1;
    }
    struct dirent *e;
    while ((e = readdir(d))) {
        uint64_t seq;
        char tail[16];
        if (sscanf(e->d_name, "seg-%20" SCNu64 ".%15s", &seq, tail) != 2 ||
            strcmp(tail, "spool") != 0)
            continue;
        char path[4096];
        seg_path(s, seq, path, sizeof(path));
        struct stat sb;
        int fd = open(path, O_RDONLY | O_CLOEXEC);
        char hdr[HDR];
        bool ok = fd >= 0 && fstat(fd, &sb) == 0 && pread(fd, hdr, HDR, 0) == (ssize_t)HDR &&
                  memcmp(hdr, SEG_MAGIC, 8) == 0 && get32(hdr + 8) == SEG_VERSION;
        if (fd >= 0)
            close(fd);
        if (!ok) {
            s->corrupt++;
            if (!s->o.readonly) {
                char aside[4200];
                snprintf(aside, sizeof(aside), "%s.bad", path);
                rename(path, aside);
            }
            lsf_warn("spool: %s is not a spool segment (bad header); skipped", path);
            continue;
        }
        add_segment(s, seq, (uint64_t)sb.st_size);
        if (seq >= s->next_seq)
            s->next_seq = seq + 1;
    }
    closedir(d);
    if (s->nsegs > 1)
        qsort(s->segs, s->nsegs, sizeof(seg), cmp_seg);
    return 0;
}

static int mkdirs(const char *dir)
{
    char buf[4096];
    snprintf(buf, sizeof(buf), "%s", dir);
    for (char *p = buf + 1; *p; p++) {
        if (*p != '/')
            continue;
        *p = 0;
        if (mkdir(buf, 0750) < 0 && errno != EEXIST)
            return -1;
        *p = '/';
    }
    return (mkdir(buf, 0750) < 0 && errno != EEXIST) ? -1 : 0;
}

int lsf_spool_open(lsf_spool **out, const lsf_spool_opts *o, char *err, size_t errlen)
{
    *out = NULL;
    lsf_spool *s = calloc(1, sizeof(*s));
    if (!s)
        lsf_die("out of memory");
    s->o = *o;
    s->dir = strdup(o->dir);
    if (!s->dir)
        lsf_die("out of memory");
    s->o.dir = s->dir;
    s->lock_fd = s->dir_fd = s->wfd = s->rfd = -1;
    s->next_seq = 1;
    if (!o->readonly && mkdirs(s->dir) < 0) {
        snprintf(err, errlen, "cannot create spool directory %s: %s", s->dir, strerror(errno));
        goto fail;
    }
    s->dir_fd = open(s->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (s->dir_fd < 0) {
        snprintf(err, errlen, "cannot open spool directory %s: %s", s->dir, strerror(errno));
        goto fail;
    }
    if (!o->readonly) {
        char path[4096];
        snprintf(path, sizeof(path), "%s/lock", s->dir);
        s->lock_fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0640);
        if (s->lock_fd < 0) {
            snprintf(err, errlen, "cannot create %s: %s", path, strerror(errno));
            goto fail;
        }
        if (flock(s->lock_fd, LOCK_EX | LOCK_NB) < 0) {
            snprintf(err, errlen, "spool directory %s is in use by another process (%s is locked)",
                     s->dir, path);
            goto fail;
        }
    }
    if (list_segments(s, err, errlen) < 0)
        goto fail;
    lsf_spool_pos cur;
    if (s->nsegs == 0)
        s->head = (lsf_spool_pos){s->next_seq, HDR};
    else if (load_cursor(s, &cur) && seg_index(s, cur.seg) < s->nsegs &&
             s->segs[seg_index(s, cur.seg)].seq == cur.seg && cur.off >= HDR)
        s->head = cur;
    else
        s->head = (lsf_spool_pos){s->segs[0].seq, HDR};
    if (!o->readonly)
        while (s->nsegs && s->segs[0].seq < s->head.seg)
            remove_segment(s, 0);
    /* Count what is left, checking every record. */
    lsf_spool_pos p = s->head;
    lsf_spool_rec rec;
    int rc;
    while ((rc = lsf_spool_read(s, &p, &rec, NULL)) > 0)
        s->records++;
    if (rc < 0) {
        snprintf(err, errlen, "cannot read spool %s: %s", s->dir, strerror(-rc));
        goto fail;
    }
    if (!o->readonly && s->nsegs && s->records == 0) {
        /* Nothing deliverable left (all delivered, or only damage). */
        lsf_spool_commit(s, p, 0);
    }
    *out = s;
    return 0;
fail:
    lsf_spool_close(s);
    return -1;
}

void lsf_spool_close(lsf_spool *s)
{
    if (!s)
        return;
    if (!s->o.readonly) {
        int rc = lsf_spool_flush(s);
        if (rc < 0)
            lsf_err("spool %s: %zu bytes could not be written at close: %s", s->dir, s->wlen,
                    strerror(-rc));
        close_active(s);
        if (s->cursor_dirty && s->nsegs)
            save_cursor(s);
    }
    if (s->rfd >= 0)
        close(s->rfd);
    if (s->dir_fd >= 0)
        close(s->dir_fd);
    if (s->lock_fd >= 0)
        close(s->lock_fd); /* releases the flock */
    free(s->segs);
    free(s->wbuf);
    free(s->rbuf);
    free(s->dir);
    free(s);
}

/* ---- logsift spool DIR ---------------------------------------------------------- */

static void print_str(lsf_str s)
{
    for (uint32_t i = 0; i < s.len; i++) {
        unsigned char c = (unsigned char)s.ptr[i];
        if (c < 0x20 || c == 0x7f)
            printf("\\x%02x", c);
        else
            putchar(c);
    }
}

int lsf_spool_cmd(int argc, char **argv)
{
    bool dump = false;
    const char *dir = NULL;
    bool bad = false;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--dump") == 0)
            dump = true;
        else if (!dir && argv[i][0] != '-')
            dir = argv[i];
        else
            bad = true;
    }
    if (!dir || bad) {
        fprintf(stderr, "usage: logsift spool DIR [--dump]\n"
                        "  prints what a Kafka sink's spool directory holds (maybe_sent: records\n"
                        "  that may have reached Kafka already, so may arrive twice); --dump\n"
                        "  prints every record left (topic, key, message) one per line\n");
        return 2;
    }
    lsf_spool_opts o = {.dir = dir,
                        .max_bytes = UINT64_MAX,
                        .segment_bytes = UINT64_MAX,
                        .fsync = LSF_SPOOL_FSYNC_NEVER,
                        .readonly = true};
    char err[512];
    lsf_spool *s;
    if (lsf_spool_open(&s, &o, err, sizeof(err)) < 0) {
        fprintf(stderr, "logsift: %s\n", err);
        return 1;
    }
    lsf_spool_stats st;
    lsf_spool_get_stats(s, &st);
    uint64_t maybe = 0;
    lsf_spool_pos p = s->head;
    lsf_spool_rec r;
    while (lsf_spool_read(s, &p, &r, NULL) > 0)
        maybe += (r.flags & LSF_SPOOL_F_MAYBE_SENT) != 0;
    printf("records %" PRIu64 "\nmaybe_sent %" PRIu64 "\nbytes %" PRIu64 "\nsegments %" PRIu64
           "\ncorrupt %" PRIu64 "\ntorn %" PRIu64 "\n",
           st.records, maybe, st.bytes, st.segments, st.corrupt, st.torn);
    if (dump) {
        p = s->head;
        while (lsf_spool_read(s, &p, &r, NULL) > 0) {
            print_str(r.topic);
            putchar('\t');
            if (r.has_key)
                print_str(r.key);
            else
                putchar('-');
            putchar('\t');
            print_str(r.value);
            putchar('\n');
        }
    }
    lsf_spool_close(s);
    return 0;
}
