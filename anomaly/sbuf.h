/* sbuf.h - growable write buffer and bounds-checked reader for snapshots.
 *
 * Every statistic saves itself with lsf_wbuf_* calls and loads with
 * lsf_rbuf_* calls; a reader that runs past its end or meets an impossible
 * value sets `bad` and returns zeros from then on, so a load function reads
 * straight through and checks the flag once at the end. Values are written
 * in host byte order (a snapshot is for the machine that wrote it; the header
 * in state.c records the byte order and refuses a foreign one).
 * Threads: a buffer belongs to one thread.
 */
#ifndef LSF_SBUF_H
#define LSF_SBUF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

typedef struct lsf_wbuf {
    unsigned char *p;
    size_t len, cap;
} lsf_wbuf;

typedef struct lsf_rbuf {
    const unsigned char *p;
    size_t len, off;
    bool bad;
} lsf_rbuf;

/* Appends n bytes (grows; out of memory aborts). */
void lsf_wbuf_put(lsf_wbuf *w, const void *src, size_t n);
void lsf_wbuf_free(lsf_wbuf *w);
static inline void lsf_wbuf_u8(lsf_wbuf *w, uint8_t v) { lsf_wbuf_put(w, &v, 1); }
static inline void lsf_wbuf_u32(lsf_wbuf *w, uint32_t v) { lsf_wbuf_put(w, &v, 4); }
static inline void lsf_wbuf_u64(lsf_wbuf *w, uint64_t v) { lsf_wbuf_put(w, &v, 8); }
static inline void lsf_wbuf_f64(lsf_wbuf *w, double v) { lsf_wbuf_put(w, &v, 8); }

/* Copies n bytes out, or zeroes dst and sets bad when fewer remain. */
void lsf_rbuf_get(lsf_rbuf *r, void *dst, size_t n);
/* Points at n bytes in place (NULL and bad when fewer remain). */
const void *lsf_rbuf_view(lsf_rbuf *r, size_t n);
static inline uint8_t lsf_rbuf_u8(lsf_rbuf *r)
{
    uint8_t v;
    lsf_rbuf_get(r, &v, 1);
    return v;
}
static inline uint32_t lsf_rbuf_u32(lsf_rbuf *r)
{
    uint32_t v;
    lsf_rbuf_get(r, &v, 4);
    return v;
}
static inline uint64_t lsf_rbuf_u64(lsf_rbuf *r)
{
    uint64_t v;
    lsf_rbuf_get(r, &v, 8);
    return v;
}
/* A double that must be finite (NaN/inf mark the snapshot bad). */
double lsf_rbuf_f64(lsf_rbuf *r);
/* A u32 that must be <= max (else bad, returns 0). */
uint32_t lsf_rbuf_u32_max(lsf_rbuf *r, uint32_t max);

#endif
