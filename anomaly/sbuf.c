/* sbuf.c - snapshot write buffer and bounds-checked reader (see sbuf.h).
 * Design: the reader never fails loudly; it latches `bad` and yields zeros.
 * Threads: a buffer belongs to one thread.
 */
#include <math.h>
#include <stdlib.h>

#include "anomaly/sbuf.h"
#include "core/log.h"

void lsf_wbuf_put(lsf_wbuf *w, const void *src, size_t n)
{
    if (w->len + n > w->cap) {
        size_t cap = w->cap ? w->cap : 4096;
        while (cap < w->len + n)
            cap *= 2;
        unsigned char *p = realloc(w->p, cap);
        if (!p)
            lsf_die("out of memory (snapshot buffer of %zu bytes)", cap);
        w->p = p;
        w->cap = cap;
    }
    if (n)
        memcpy(w->p + w->len, src, n);
    w->len += n;
}

void lsf_wbuf_free(lsf_wbuf *w)
{
    free(w->p);
    w->p = NULL;
    w->len = w->cap = 0;
}

void lsf_rbuf_get(lsf_rbuf *r, void *dst, size_t n)
{
    if (r->bad || r->len - r->off < n) {
        r->bad = true;
        memset(dst, 0, n);
        return;
    }
    memcpy(dst, r->p + r->off, n);
    r->off += n;
}

const void *lsf_rbuf_view(lsf_rbuf *r, size_t n)
{
    if (r->bad || r->len - r->off < n) {
        r->bad = true;
        return NULL;
    }
    const void *p = r->p + r->off;
    r->off += n;
    return p;
}

double lsf_rbuf_f64(lsf_rbuf *r)
{
    double v;
    lsf_rbuf_get(r, &v, 8);
    if (!isfinite(v)) {
        r->bad = true;
        return 0;
    }
    return v;
}

uint32_t lsf_rbuf_u32_max(lsf_rbuf *r, uint32_t max)
{
    uint32_t v = lsf_rbuf_u32(r);
    if (v > max) {
        r->bad = true;
        return 0;
    }
    return v;
}
