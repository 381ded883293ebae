/* spool.h - a disk spool: append-only segment files of checksummed records,
 * read back in order and deleted once delivered.
 *
 * Design: records are appended to the newest segment file of a directory
 * (`seg-<20 digits>.spool`; a new one when it reaches the segment size and
 * at every open, so a segment is never appended to after a restart). Each
 * record carries a magic, its length and a CRC32C; a reader that meets a
 * record whose checksum does not match skips forward to the next magic and
 * counts the corrupt region instead of stopping. Readers take positions
 * {segment, offset}; lsf_spool_commit(pos) says everything before pos was
 * delivered: older segments are deleted, and the position is saved in
 * `cursor` (throttled, and at close) so a restart resumes there. When all
 * records are committed the spool removes every segment. A `lock` file
 * (flock) keeps a second process out of a spool in use.
 *
 * Record layout (little-endian):
 *   u32 magic 0x72734cf5 (bytes f5 4c 73 72: 0xf5 never occurs in UTF-8)
 *   u32 body length   u32 CRC32C of (length bytes + body)
 *   body: u8 flags, u8 0, u16 topic length, u32 key length (0xffffffff: no key),
 *         topic, key, value
 * Segment header: "LSFSPOOL" u32 version (1) u32 0.
 *
 * Durability (fsync policy): `batch` fdatasyncs in lsf_spool_flush, so a
 * flushed record survives power loss; `interval` leaves syncing to the owner
 * calling lsf_spool_sync periodically; `never` relies on the page cache
 * (survives a crash of the process, not of the machine). New segment files
 * and their directory entry are synced unless the policy is `never`.
 *
 * Threads: not thread-safe; the owner serialises every call.
 */
#ifndef LSF_SPOOL_H
#define LSF_SPOOL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/event.h"

/* Order matches LSF_SPOOL_FSYNC_CHOICES (a config enum). */
enum lsf_spool_fsync { LSF_SPOOL_FSYNC_INTERVAL, LSF_SPOOL_FSYNC_BATCH, LSF_SPOOL_FSYNC_NEVER };
#define LSF_SPOOL_FSYNC_CHOICES "interval|batch|never"

/* Largest record body accepted (and believed when resynchronising). */
#define LSF_SPOOL_MAX_RECORD (64u << 20)

typedef struct lsf_spool lsf_spool;

typedef struct lsf_spool_opts {
    const char *dir;        /* created (mode 0750) when missing */
    uint64_t max_bytes;     /* cap on all segment files; appends past it fail */
    uint64_t segment_bytes; /* a segment is closed once it holds this much */
    int fsync;              /* enum lsf_spool_fsync */
    bool readonly;          /* inspect only: no lock, no writes, no deletes */
} lsf_spool_opts;

enum { LSF_SPOOL_F_MAYBE_SENT = 1 }; /* may have reached the broker already */

typedef struct lsf_spool_rec {
    lsf_str topic, key, value;
    bool has_key;
    uint8_t flags; /* LSF_SPOOL_F_* */
} lsf_spool_rec;

typedef struct lsf_spool_pos {
    uint64_t seg, off;
} lsf_spool_pos;

typedef struct lsf_spool_stats {
    uint64_t records;  /* records not yet committed */
    uint64_t bytes;    /* bytes of every segment file (and unflushed ones) */
    uint64_t segments; /* segment files */
    uint64_t corrupt;  /* corrupt regions skipped (checksum, magic, header) */
    uint64_t torn;     /* incomplete records at the end of a segment */
} lsf_spool_stats;

/* Opens (creating) the spool in o->dir, deletes segments before the saved
 * cursor, and counts the records left (checking every checksum). Returns 0,
 * or -1 with a reason in err (e.g. another process holds the lock). */
int lsf_spool_open(lsf_spool **out, const lsf_spool_opts *o, char *err, size_t errlen);
/* Flushes, syncs (unless `never`), saves the cursor, and frees. NULL is a
 * no-op. */
void lsf_spool_close(lsf_spool *s);

/* Buffers one record for the active segment (written by lsf_spool_flush, or
 * sooner when the buffer grows past 1 MiB; a failure of that early write
 * keeps the records buffered and is reported by the next lsf_spool_flush).
 * `force` ignores the size cap. Returns 0; -ENOSPC when the cap would be
 * exceeded; -E2BIG for a record above LSF_SPOOL_MAX_RECORD; -EROFS on a
 * read-only spool; -errno when a new segment file cannot be started. */
int lsf_spool_append(lsf_spool *s, const lsf_spool_rec *r, bool force);
/* Writes what is buffered (fdatasync with the `batch` policy). 0 or -errno. */
int lsf_spool_flush(lsf_spool *s);
/* fdatasync of the active segment when anything was written since the last
 * sync. 0 or -errno. */
int lsf_spool_sync(lsf_spool *s);

/* The first record not committed. */
lsf_spool_pos lsf_spool_head(const lsf_spool *s);
/* Reads the next record at or after *pos among flushed data, skipping (and
 * counting) corrupt regions. On 1, *rec holds slices valid until the next
 * read, *start (may be NULL) the record's own position and *pos the
 * position after it. 0 at the end of flushed data; -errno on a read error. */
int lsf_spool_read(lsf_spool *s, lsf_spool_pos *pos, lsf_spool_rec *rec, lsf_spool_pos *start);
/* Everything before pos (`nrecords` records) is delivered: deletes segments
 * wholly before pos and saves the cursor (at most every 200 ms; always at
 * close). When nothing is left, every segment file is removed. 0 or -errno. */
int lsf_spool_commit(lsf_spool *s, lsf_spool_pos pos, uint64_t nrecords);
/* True when every appended record has been committed. */
bool lsf_spool_empty(const lsf_spool *s);
void lsf_spool_get_stats(const lsf_spool *s, lsf_spool_stats *st);

/* CRC32C (Castagnoli) of buf, continuing from crc (0 to start): the SSE4.2
 * instruction where the CPU has it, else lsf_crc32c_sw (slicing-by-8). */
uint32_t lsf_crc32c(uint32_t crc, const void *buf, size_t len);
uint32_t lsf_crc32c_sw(uint32_t crc, const void *buf, size_t len);

/* `logsift spool DIR [--dump]`: prints what a spool holds. Returns the exit
 * status. */
int lsf_spool_cmd(int argc, char **argv);

#endif
