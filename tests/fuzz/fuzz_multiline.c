/* fuzz_multiline.c - libFuzzer target: the multiline joiner in both modes on
 * arbitrary lines (the input split at '\n'); every event must be within
 * max_bytes, and the bytes of all events (without the joining newlines) must
 * be exactly the bytes of the lines unless an event was truncated. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/config.h"
#include "ingest/multiline.h"

typedef struct tally {
    size_t bytes, events;
    bool truncated;
} tally;

static void on_event(void *arg, const char *rec, size_t len, int truncated, uint64_t tag)
{
    tally *t = arg;
    (void)tag;
    if (len > 200)
        abort();
    for (size_t i = 0; i < len; i++)
        t->bytes += rec[i] != '\n';
    t->events++;
    t->truncated |= truncated != 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static lsf_ml_conf conf[2];
    static bool ready;
    if (!ready) {
        lsf_errbuf err;
        lsf_node *n = lsf_yaml_load_string("f", "{mode: start, start_pattern: '^\\\\d', max_lines: 5}", &err);
        lsf_node *m = lsf_yaml_load_string("f", "{mode: indent, continue_pattern: '^x'}", &err);
        if (!n || !m || lsf_ml_conf_bind(&conf[0], n, 200, &err) < 0 ||
            lsf_ml_conf_bind(&conf[1], m, 200, &err) < 0)
            abort();
        lsf_node_free(n);
        lsf_node_free(m);
        ready = true;
    }
    for (int c = 0; c < 2; c++) {
        lsf_ml ml;
        tally t = {0, 0, false};
        size_t want = 0;
        lsf_ml_init(&ml, &conf[c]);
        const char *p = (const char *)data, *end = p + size;
        while (p < end) {
            const char *nl = memchr(p, '\n', (size_t)(end - p));
            size_t n = (size_t)((nl ? nl : end) - p);
            want += n;
            lsf_ml_line(&ml, p, n, 0, (uint64_t)(p - (const char *)data), 0, on_event, &t);
            p += n + (nl ? 1 : 0);
        }
        lsf_ml_tick(&ml, 1, on_event, &t);
        lsf_ml_flush(&ml, on_event, &t);
        if (!t.truncated && t.bytes != want)
            abort(); /* a line was lost or invented */
        lsf_ml_deinit(&ml);
    }
    return 0;
}
