/* event.h - the event, the batch, and interned field names.
 *
 * OWNERSHIP, stated once:
 *  - A batch owns its arena; every byte an event of the batch points at (raw
 *    record, parsed slices, dynamic fields, tags) lives in that arena or in
 *    memory that outlives the batch (string literals, interned names).
 *  - Stages never free event fields. Resetting the batch frees everything.
 *  - Anything that must outlive a batch (baselines, keys, state) is copied
 *    into the stage's own memory.
 *  - A function that takes ownership of a pointer says so in its name.
 *
 * Strings are {ptr, len} slices, not NUL-terminated. Well-known syslog fields
 * are struct members for speed; everything else is a dynamic field named by
 * its dotted ECS path ("source.ip", "user.name").
 *
 * Threads: a batch is used by one thread at a time. The field-name table may
 * be read from any thread; interning new names takes a lock.
 */
#ifndef LSF_EVENT_H
#define LSF_EVENT_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "arena.h"

typedef struct lsf_str {
    const char *ptr;
    uint32_t len;
} lsf_str;

#define LSF_STR_NULL ((lsf_str){NULL, 0})
#define LSF_STR_LIT(s) ((lsf_str){(s), (uint32_t)(sizeof(s) - 1)})

static inline lsf_str lsf_str_make(const char *p, size_t n)
{
    return (lsf_str){p, (uint32_t)n};
}
/* Whether p and q (n bytes each, w <= n <= 2w) agree: their first and last
 * w bytes, two overlapping loads a side. w is a constant where it is used. */
static inline __attribute__((always_inline)) bool lsf_ends_eq(const char *p, const char *q,
                                                              uint32_t n, size_t w)
{
    uint64_t x0 = 0, y0 = 0, x1 = 0, y1 = 0;
    memcpy(&x0, p, w);
    memcpy(&y0, q, w);
    memcpy(&x1, p + n - w, w);
    memcpy(&y1, q + n - w, w);
    return ((x0 ^ y0) | (x1 ^ y1)) == 0;
}
/* Field names are short and compared often (finding a field, merging JSON
 * members): up to 16 bytes they are decided without a memcmp call. */
static inline bool lsf_str_eq(lsf_str a, lsf_str b)
{
    if (a.len != b.len)
        return false;
    const char *p = a.ptr, *q = b.ptr;
    uint32_t n = a.len;
    if (n >= 8 && n <= 16)
        return lsf_ends_eq(p, q, n, 8);
    if (n >= 4 && n < 8)
        return lsf_ends_eq(p, q, n, 4);
    if (n < 4) /* 0 to 3 bytes: the first, middle and last cover them */
        return n == 0 || (p[0] == q[0] && p[n / 2] == q[n / 2] && p[n - 1] == q[n - 1]);
    return memcmp(p, q, n) == 0;
}
/* Always inlined: with a literal `s` the strlen folds to a constant (the
 * out-of-line copy cost a strlen call per comparison on hot paths). */
static inline __attribute__((always_inline)) bool lsf_str_eq_cstr(lsf_str a, const char *s)
{
    size_t n = strlen(s);
    return a.len == n && memcmp(a.ptr, s, n) == 0;
}

/* Type of a field value. */
enum lsf_type {
    LSF_T_NULL = 0,
    LSF_T_STR,   /* v.s, written as a JSON string */
    LSF_T_INT,   /* v.i */
    LSF_T_FLOAT, /* v.f */
    LSF_T_BOOL,  /* v.b */
    LSF_T_JSON,  /* v.s holds valid JSON text (array, object), written verbatim */
};

typedef struct lsf_field {
    lsf_str name;  /* dotted path, e.g. "source.ip" */
    uint16_t id;   /* interned id, 0 when the name was not interned */
    uint8_t type;  /* enum lsf_type */
    union {
        lsf_str s;
        int64_t i;
        double f;
        bool b;
    } v;
} lsf_field;

/* Which parser produced the event. */
enum lsf_format {
    LSF_FMT_NONE = 0, /* not parsed yet */
    LSF_FMT_RFC5424,
    LSF_FMT_RFC3164,
    LSF_FMT_JSON,
    LSF_FMT_KV,
    LSF_FMT_CEF,  /* ArcSight CEF, alone or in a syslog message */
    LSF_FMT_LEEF, /* QRadar LEEF, alone or in a syslog message */
    LSF_FMT_RAW,  /* nothing understood it; always last */
};

/* Event flags; each is written to `tags` as shown. */
enum {
    LSF_EV_PARSE_FAILURE = 1u << 0, /* "_parse_failure" */
    LSF_EV_TRUNCATED = 1u << 1,     /* "_truncated": longer than max size */
    LSF_EV_DROPPED = 1u << 2,       /* a stage dropped it; sinks skip it */
    LSF_EV_TIME_GUESSED = 1u << 3,  /* no timestamp in the line: received time */
};

typedef struct lsf_event {
    int64_t time_ns;     /* @timestamp, ns since the epoch, UTC */
    int64_t ingested_ns; /* event.ingested: when logsift received it */
    lsf_str raw;         /* the record exactly as framed */
    lsf_str message;     /* message */
    lsf_str host;        /* host.name / log.syslog.hostname */
    lsf_str app;         /* process.name / log.syslog.appname */
    lsf_str procid;      /* log.syslog.procid (process.pid when numeric) */
    lsf_str msgid;       /* log.syslog.msgid */
    lsf_str sd;          /* RFC 5424 STRUCTURED-DATA text, validated */
    lsf_str source_addr; /* sender "ip:port" for network inputs */
    int16_t pri;         /* syslog PRI, -1 when absent */
    uint8_t version;     /* RFC 5424 VERSION, 0 when absent */
    uint8_t format;      /* enum lsf_format */
    uint16_t input;      /* index of the input that received it */
    uint16_t flags;      /* LSF_EV_* */
    uint16_t nfields, capfields;
    uint16_t ntags, captags;
    lsf_field *fields;
    lsf_str *tags;
} lsf_event;

/* A delivery acknowledgement: lets an input learn when every sink has
 * durably taken the events of one of its batches (delivered, or spooled to
 * disk), to advance a file checkpoint, commit a Kafka offset or answer a
 * RELP client. It outlives the batch's memory: the pipeline holds one
 * reference until all sinks returned, and a sink that delivers
 * asynchronously (Kafka) retains one per message until its delivery report.
 * When the last reference goes, fn(arg, token, ok) runs on that thread; ok
 * is false when some sink gave up on an event (it was counted and logged).
 * Threads: retain/release from any thread. */
typedef struct lsf_ack lsf_ack;
struct lsf_ack {
    _Atomic int refs;
    _Atomic int failed;
    void (*fn)(void *arg, uint64_t token, bool ok);
    void *arg;
    uint64_t token;
};

/* Creates an ack holding one reference (the batch's). Never NULL. */
lsf_ack *lsf_ack_new(void (*fn)(void *arg, uint64_t token, bool ok), void *arg, uint64_t token);
void lsf_ack_retain(lsf_ack *a);
/* Marks the ack as failed (some event was not durably taken). */
void lsf_ack_fail(lsf_ack *a);
/* Drops one reference; the last one runs fn and frees the ack. NULL is a
 * no-op. */
void lsf_ack_release(lsf_ack *a);

typedef struct lsf_batch lsf_batch;
struct lsf_batch {
    lsf_arena arena;    /* owns every byte the events point at */
    lsf_event *events;  /* capacity `cap`, `n` in use */
    uint32_t n, cap;
    uint64_t seq;       /* order of submission, set by the pipeline */
    uint64_t bytes;     /* raw bytes of all records */
    lsf_batch *next;    /* free-list / queue link */
    lsf_ack *ack;       /* set by inputs that need to know of delivery, or NULL */
    uint32_t room;      /* events allocated: cap + spare slots for lsf_batch_push_extra */
};

/* Spare event slots a batch starts with beyond `cap`: inputs fill a batch
 * to cap, and a transform that adds events of its own (detections' alerts)
 * appends them with lsf_batch_push_extra. */
#define LSF_BATCH_EXTRA 32

lsf_batch *lsf_batch_new(uint32_t cap);
void lsf_batch_free(lsf_batch *b);
/* Drops every event and every byte of the arena. */
void lsf_batch_reset(lsf_batch *b);
/* Appends a zeroed event (pri -1) and returns it; NULL when the batch is full. */
lsf_event *lsf_batch_push(lsf_batch *b);
/* Appends a zeroed event (pri -1) even when the batch holds `cap` events,
 * for transforms that add events to a batch (alerts): it takes a spare slot,
 * and when none is left the event array grows (and keeps that size), which
 * moves the events: pointers to events of b taken before the call are
 * invalid after it. Never NULL. */
lsf_event *lsf_batch_push_extra(lsf_batch *b);
/* Appends an event holding a copy of `len` bytes as its raw record and
 * message. NULL when the batch is full. */
lsf_event *lsf_batch_push_record(lsf_batch *b, const char *rec, size_t len, int64_t now_ns);

/* ---- dynamic fields ---------------------------------------------------- */

/* Adds a field; the name and value slices must live as long as the batch
 * (arena, record, or static). Replaces an existing field of the same name:
 * an event's field names are unique, and whatever adds or renames fields
 * keeps them so (lsf_event_find_at relies on it). */
lsf_field *lsf_event_set(lsf_batch *b, lsf_event *ev, lsf_str name, uint16_t id);
/* The same for a name the caller knows ev does not have (no search). */
lsf_field *lsf_event_append(lsf_batch *b, lsf_event *ev, lsf_str name, uint16_t id);
void lsf_event_set_str(lsf_batch *b, lsf_event *ev, lsf_str name, lsf_str v);
void lsf_event_set_int(lsf_batch *b, lsf_event *ev, lsf_str name, int64_t v);
void lsf_event_set_float(lsf_batch *b, lsf_event *ev, lsf_str name, double v);
void lsf_event_set_bool(lsf_batch *b, lsf_event *ev, lsf_str name, bool v);
/* Finds a dynamic field by name; NULL when absent. */
lsf_field *lsf_event_find(const lsf_event *ev, lsf_str name);
/* lsf_event_find, looking first at index *at, where the caller found the
 * name last time (updated when found elsewhere). Names being unique, the
 * answer is the same; a caller that sees events of one shape (a source's
 * parser lays its fields out alike) skips the scan. */
static inline lsf_field *lsf_event_find_at(const lsf_event *ev, lsf_str name, uint16_t *at)
{
    if (*at < ev->nfields && lsf_str_eq(ev->fields[*at].name, name))
        return &ev->fields[*at];
    lsf_field *f = lsf_event_find(ev, name);
    if (f)
        *at = (uint16_t)(f - ev->fields);
    return f;
}
/* Adds a tag unless present; the slice must live as long as the batch. */
void lsf_event_add_tag(lsf_batch *b, lsf_event *ev, lsf_str tag);
/* Reads any field, well-known (message, host.name, process.name, ...) or
 * dynamic, as a string view. Numbers are formatted into `scratch` (>= 32
 * bytes). Returns false when the event has no such field. */
bool lsf_event_get_str(const lsf_event *ev, lsf_str name, char *scratch, lsf_str *out);
/* A dynamic field's value as text (numbers formatted into `scratch`, >= 32
 * bytes); false for a null. */
bool lsf_field_text(const lsf_field *f, char *scratch, lsf_str *out);

/* ---- field-name interning --------------------------------------------- */

/* Returns the id of `name` (>= 1), interning it if new. Thread-safe. */
uint16_t lsf_field_intern(const char *name, size_t len);
/* Returns the NUL-terminated name of an interned id. */
const char *lsf_field_name(uint16_t id);

/* ---- syslog names ----------------------------------------------------- */
const char *lsf_facility_name(int code); /* "kern" ... "local7"; NULL if out of range */
const char *lsf_severity_name(int code); /* "emerg" ... "debug" */

#endif
