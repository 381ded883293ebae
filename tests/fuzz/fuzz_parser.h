/* fuzz_parser.h - the body shared by the per-parser libFuzzer targets: one
 * parser on arbitrary bytes (alone, and after the syslog parsers for the
 * body parsers), then the JSON writer, whose output must be valid JSON, and
 * every slice of the event must stay inside the record or the arena.
 * Each fuzz_<format>.c defines FUZZ_PARSER and includes this file. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "parsers/parse.h"
#include "sinks/json_out.h"
#include "fuzz_json_ok.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static lsf_batch *b;
    static lsf_outbuf out;
    if (!b) {
        b = lsf_batch_new(4);
        lsf_outbuf_init(&out);
    }
    lsf_parse_opts opts = {.format = LSF_FMT_NONE, .tz_mode = LSF_TZ_UTC, .body_json = true};
    lsf_batch_reset(b);
    lsf_event *ev = lsf_batch_push_record(b, (const char *)data, size, 1700000000000000000LL);
    if (FUZZ_PARSER(b, ev, &opts) < 0) {
        /* untouched: the event still serialises */
        if (ev->format != LSF_FMT_NONE || ev->nfields)
            abort();
        ev->message = ev->raw;
    }
    lsf_json_write_batch(&out, b);
    if (!fuzz_json_ok(out.buf, out.len))
        abort(); /* the writer produced invalid JSON */
    return 0;
}
