/* fuzz_parse.c - libFuzzer target: every parser (auto-detection and each
 * fixed format) followed by the JSON writer, whose output must be valid. */
#include <jansson.h>
#include <stdint.h>
#include <stdlib.h>

#include "parsers/parse.h"
#include "sinks/json_out.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static lsf_batch *b;
    static lsf_outbuf out;
    if (!b) {
        b = lsf_batch_new(8);
        lsf_outbuf_init(&out);
    }
    for (int fmt = LSF_FMT_NONE; fmt < LSF_FMT_RAW; fmt++) {
        lsf_parse_opts opts = {.format = fmt, .tz_mode = LSF_TZ_UTC, .body_json = true};
        lsf_batch_reset(b);
        lsf_event *ev = lsf_batch_push_record(b, (const char *)data, size, 1700000000000000000LL);
        lsf_parse_event(b, ev, &opts);
        lsf_json_write_batch(&out, b);
        json_error_t err;
        json_t *j = json_loadb(out.buf, out.len, JSON_DISABLE_EOF_CHECK | JSON_ALLOW_NUL | JSON_DECODE_INT_AS_REAL,
                           &err);
        if (!j)
            abort(); /* the writer produced invalid JSON (integers beyond 64 bits are
                      * valid JSON: they are read as reals) */
        json_decref(j);
    }
    return 0;
}
