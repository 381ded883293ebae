/* fuzz_parse.c - libFuzzer target: every parser (auto-detection and each
 * fixed format) followed by the JSON writer, whose output must be valid. */
#include <stdint.h>
#include <stdlib.h>

#include "parsers/parse.h"
#include "sinks/json_out.h"
#include "fuzz_json_ok.h"

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
        if (!fuzz_json_ok(out.buf, out.len))
            abort(); /* the writer produced invalid JSON */
    }
    return 0;
}
