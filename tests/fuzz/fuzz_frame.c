/* fuzz_frame.c - libFuzzer target: the framer in every mode, fed in one go
 * and in uneven chunks, must emit the same records and never exceed its
 * bounds. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "ingest/frame.h"

typedef struct sink {
    uint64_t n, bytes;
    uint32_t hash;
} sink;

static void on_record(void *arg, const char *rec, size_t len, int truncated)
{
    sink *s = arg;
    (void)truncated;
    s->n++;
    s->bytes += len;
    for (size_t i = 0; i < len; i++)
        s->hash = s->hash * 31 + (uint8_t)rec[i];
}

/* Feeds data through a buffer of `cap` bytes in reads of at most `chunk`. */
static sink run(const uint8_t *data, size_t size, enum lsf_framing mode, size_t chunk)
{
    sink s = {0, 0, 7};
    lsf_frame_stats st = {0};
    lsf_framer f;
    lsf_frame_init(&f, mode, 64, &st);
    size_t cap = lsf_frame_buf_min(&f) + chunk;
    char *buf = malloc(cap);
    size_t have = 0, pos = 0;
    while (pos < size) {
        size_t n = size - pos < chunk ? size - pos : chunk;
        if (have + n > cap)
            abort();
        memcpy(buf + have, data + pos, n);
        have += n;
        pos += n;
        size_t used = lsf_frame_feed(&f, buf, have, on_record, &s);
        if (have - used >= lsf_frame_buf_min(&f))
            abort();
        memmove(buf, buf + used, have - used);
        have -= used;
    }
    lsf_frame_finish(&f, buf, have, on_record, &s);
    free(buf);
    return s;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    for (int mode = LSF_FRAMING_AUTO; mode <= LSF_FRAMING_OCTET; mode++) {
        sink whole = run(data, size, mode, size ? size : 1);
        sink bytes = run(data, size, mode, 1);
        sink odd = run(data, size, mode, 7);
        if (whole.n != bytes.n || whole.hash != bytes.hash || whole.n != odd.n ||
            whole.hash != odd.hash)
            abort(); /* chunking changed the records */
    }
    return 0;
}
