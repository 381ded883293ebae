/* file_tail.h - internal to the `file` input: the followed files, their
 * checkpoints and the delivery acknowledgements that advance them.
 * file.c reads and follows, file_scan.c finds and tells files apart,
 * file_ckpt.c persists checkpoints and tracks acks.
 *
 * A file is known by its device and inode while it is open, and by a
 * fingerprint (a hash of its first bytes, up to LSF_FP_BYTES) across
 * restarts and copies: the same inode with other first bytes is a new file
 * (inode reuse, truncate-and-rewrite); another inode with the same first
 * bytes is a copy (copytruncate).
 *
 * Offsets: read_off is what was read from the file; a batch submitted for
 * a file carries the end offset of its last record; acked_off is the
 * highest such offset below which every batch was acknowledged by every
 * sink (acks may return out of order: they are applied in submission
 * order). A checkpoint stores acked_off (where a restart resumes) and
 * submitted (read_off when the file's records were last handed to the
 * pipeline, persisted before they are): records between the two are
 * re-read after a crash and counted as `replayed`, the only duplicates.
 * Threads: the tailer thread owns every tfile field except those marked
 * (lock), which the ack callbacks update under lsf_ftrack.lock.
 */
#ifndef LSF_FILE_TAIL_H
#define LSF_FILE_TAIL_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "core/metrics.h"
#include "core/pipeline.h"
#include "ingest/listen.h"
#include "ingest/multiline.h"

#define LSF_FP_BYTES 256u

typedef struct lsf_fp {
    uint32_t len;  /* bytes hashed: min(file size, LSF_FP_BYTES); 0: no identity yet */
    uint64_t hash; /* FNV-1a 64 */
} lsf_fp;

typedef struct tfile tfile;
struct tfile {
    dev_t dev;
    ino_t ino;
    lsf_fp fp;
    char *path;           /* the name it was last seen under */
    int fd;               /* -1 once finished */
    off_t read_off;       /* next byte to read */
    off_t replay_until;   /* records ending at or before this were delivered before a restart */
    off_t persisted_sub;  /* `submitted` in the last checkpoint written */
    off_t acked_off;      /* (lock) highest contiguously delivered record end */
    int pending;          /* (lock) batches in flight */
    bool ack_failed;      /* (lock) a sink gave up on a batch: acked_off stays */
    bool live;            /* matched a pattern in the last scan */
    bool rotated;         /* renamed away, deleted or a copy: read to its end, then finish */
    bool finished;        /* read completely and closed; forgotten once its acks are in */
    bool retired;         /* truncated away: not read, not checkpointed; freed when acked */
    int64_t last_data_ns; /* monotonic time of the last bytes read (or of the rotation) */
    /* line reader: a partial line (or the head of an over-long one) */
    char *tail;
    size_t tail_len, tail_cap;
    bool skipping;        /* tail holds a truncated head; bytes up to '\n' are skipped */
    bool has_ml;
    lsf_ml ml;
    lsf_addr_cache path_cache;
    tfile *next;
};

/* A checkpoint as loaded at start-up, until a file claims it. */
typedef struct lsf_ckpt {
    dev_t dev;
    ino_t ino;
    lsf_fp fp;
    off_t acked, submitted;
    char *path;
    bool claimed;
} lsf_ckpt;

/* Acks of submitted batches, applied to their files in submission order. */
typedef struct lsf_ftrack lsf_ftrack;

/* Creates a tracker. Never NULL. */
lsf_ftrack *lsf_ftrack_new(lsf_counter *ack_failed);
/* Registers a batch of records of `f` ending at `end` and attaches its ack
 * to b. Tailer thread. */
void lsf_ftrack_submit(lsf_ftrack *t, lsf_batch *b, tfile *f, off_t end);
/* The lock that guards the (lock) fields of every tfile. */
void lsf_ftrack_lock(lsf_ftrack *t);
void lsf_ftrack_unlock(lsf_ftrack *t);
/* True (and clears it) when some acked_off moved since the last call. */
bool lsf_ftrack_take_dirty(lsf_ftrack *t);
/* The input is going away: acks still out are dropped when they return,
 * and the tracker frees itself with the last one. */
void lsf_ftrack_close(lsf_ftrack *t);

/* Fingerprint of the first min(size, LSF_FP_BYTES) bytes of fd. */
int lsf_fp_compute(int fd, off_t size, lsf_fp *out);
/* True when fd's first fp->len bytes hash to fp->hash (fp->len > 0). */
bool lsf_fp_matches(int fd, const lsf_fp *fp);

/* Loads checkpoints from `path`. A missing file is no checkpoints (0);
 * -1 with a message in err when the file exists but cannot be read. The
 * caller frees with lsf_ckpt_free. Lines that do not parse are skipped and
 * logged. */
int lsf_ckpt_load(const char *path, lsf_ckpt **out, size_t *n, char *err, size_t errlen);
void lsf_ckpt_free(lsf_ckpt *v, size_t n);
/* Writes the checkpoint of every file of the list that is neither retired
 * nor finished with every ack in (under the tracker lock), plus the
 * unclaimed loaded ones, to `path` atomically (a temporary file renamed
 * into place; with `sync` also fsync of the file and the directory).
 * Returns 0 or -errno. */
int lsf_ckpt_save(const char *path, lsf_ftrack *t, tfile *files, const lsf_ckpt *keep, size_t nkeep,
                  bool sync);

/* ---- the input (file.c) and its file-system side (file_scan.c) ---------- */

enum { FROM_BEGINNING, FROM_END };
enum { ENC_UTF8, ENC_LATIN1 };

typedef struct file_conf {
    lsf_input_conf common;
    lsf_strlist path;
    lsf_strlist exclude;
    bool follow;
    int read_from;
    int encoding;
    int64_t max_message_size;
    int64_t poll_ms;
    int64_t rotate_wait_ms;
    int64_t ckpt_interval_ms;
    char *checkpoint_file;
    const lsf_node *multiline;
} file_conf;

typedef struct file_ctx {
    lsf_stage *st;
    const file_conf *conf;
    bool inited, running, first_scan_done;
    int efd; /* written by stop */
    atomic_bool stop;
    pthread_t thread;
    lsf_ingest in;
    lsf_ftrack *track;
    tfile *files;
    tfile *cur;      /* file of the records in the batch being filled */
    off_t cur_end;   /* end offset of its last record */
    char *rbuf, *conv;
    size_t conv_cap;
    char *ckpt_path; /* NULL: no checkpoints */
    lsf_ckpt *loaded;
    size_t nloaded;
    int64_t ckpt_due_ns;
    uint16_t path_id;
    lsf_ml_conf ml;
    lsf_counter *c_opened, *c_rotated, *c_truncations, *c_copies, *c_replayed, *c_ack_failed,
        *c_lost, *c_ckpt_errors;
} file_ctx;

/* True once stop was asked. */
bool lsf_ftail_stopping(file_ctx *x);
/* Reads f up to its current end (file.c). */
void lsf_ftail_drain(file_ctx *x, tfile *f);
/* Emits f's pending multiline event (file.c). */
void lsf_ftail_flush_ml(file_ctx *x, tfile *f);
/* Expands the patterns: tracks new files (resuming from checkpoints),
 * reads rotated ones to their end, follows truncations (file_scan.c). */
void lsf_ftail_scan(file_ctx *x);
/* Closes and frees a file (file_scan.c). */
void lsf_ftail_file_free(tfile *f);

#endif
