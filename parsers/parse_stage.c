/* parse_stage.c - the `parse` stage: runs first on every batch and turns each
 * record into an event with the parser its input asks for (auto-detected per
 * line by default).
 * Design: options are resolved once per input at init, so the per-event cost
 * is one table lookup and the parser itself.
 * Threads: process runs on any worker; it only reads its context.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/log.h"
#include "core/metrics.h"
#include "core/pipeline.h"
#include "parse.h"

typedef struct parse_conf {
    char *timezone;
    bool json_message;
} parse_conf;

typedef struct parse_ctx {
    lsf_parse_opts *by_input; /* options per input index */
    int ninputs;
    lsf_counter *c_failures, *c_by_format[LSF_FMT_RAW + 1];
} parse_ctx;

static const lsf_key parse_keys[] = {
    {"timezone", LSF_K_STR, "local",
     "Zone of timestamps that carry none (RFC 3164): local, UTC, or an offset such as +02:00.",
     offsetof(parse_conf, timezone), NULL, 0, 0, false},
    {"json_message", LSF_K_BOOL, "true",
     "A syslog message that is a JSON object (optionally after @cee:) becomes fields.",
     offsetof(parse_conf, json_message), NULL, 0, 0, false},
    LSF_KEYS_END,
};

/* Parses "local", "UTC"/"Z", or "+hh:mm"/"-hhmm" into opts. */
static int parse_timezone(const char *s, lsf_parse_opts *o)
{
    if (strcasecmp(s, "local") == 0) {
        o->tz_mode = LSF_TZ_LOCAL;
        return 0;
    }
    if (strcasecmp(s, "utc") == 0 || strcmp(s, "Z") == 0) {
        o->tz_mode = LSF_TZ_UTC;
        return 0;
    }
    int h = 0, m = 0;
    char sign = s[0];
    if ((sign == '+' || sign == '-') &&
        (sscanf(s + 1, "%2d:%2d", &h, &m) == 2 || sscanf(s + 1, "%2d%2d", &h, &m) == 2) &&
        h <= 14 && m < 60) {
        o->tz_mode = LSF_TZ_FIXED;
        o->tz_offset_s = (sign == '-' ? -1 : 1) * (h * 3600 + m * 60);
        return 0;
    }
    return -1;
}

static int parse_init(lsf_stage *st, lsf_errbuf *err)
{
    parse_conf *c = st->conf;
    parse_ctx *x = st->ctx;
    lsf_parse_opts base = {0};
    if (parse_timezone(c->timezone, &base) < 0)
        return lsf_node_error(err, lsf_node_get(st->node, "timezone") ? lsf_node_get(st->node, "timezone") : st->node,
                              "timezone: expected local, UTC or an offset such as +02:00, got '%s'",
                              c->timezone);
    base.body_json = c->json_message;
    lsf_pipeline_stages(st->pipeline, LSF_STAGE_INPUT, &x->ninputs);
    x->by_input = calloc((size_t)x->ninputs + 1, sizeof(lsf_parse_opts));
    if (!x->by_input)
        lsf_die("out of memory");
    for (int i = 0; i <= x->ninputs; i++) {
        x->by_input[i] = base;
        x->by_input[i].format = i < x->ninputs ? lsf_pipeline_input_format(st->pipeline, i) : 0;
    }
    static const char *const fmt_names[] = {"none", "rfc5424", "rfc3164", "json", "kv", "cef", "leef", "raw"};
    for (int f = 1; f <= LSF_FMT_RAW; f++)
        x->c_by_format[f] = lsf_counter_new("parse", fmt_names[f]);
    x->c_failures = lsf_counter_new("parse", "failures");
    return 0;
}

static int parse_process(lsf_stage *st, lsf_batch *b, int worker)
{
    (void)worker;
    parse_ctx *x = st->ctx;
    uint64_t by_format[LSF_FMT_RAW + 1] = {0}, failures = 0;
    for (uint32_t i = 0; i < b->n; i++) {
        lsf_event *ev = &b->events[i];
        int in = ev->input < x->ninputs ? ev->input : x->ninputs;
        lsf_parse_event(b, ev, &x->by_input[in]);
        by_format[ev->format <= LSF_FMT_RAW ? ev->format : LSF_FMT_RAW]++;
        failures += (ev->flags & LSF_EV_PARSE_FAILURE) != 0;
    }
    for (int f = 1; f <= LSF_FMT_RAW; f++)
        if (by_format[f])
            lsf_counter_add(x->c_by_format[f], by_format[f]);
    if (failures)
        lsf_counter_add(x->c_failures, failures);
    return LSF_OK;
}

static void parse_destroy(lsf_stage *st)
{
    parse_ctx *x = st->ctx;
    free(x->by_input);
}

const lsf_stage_def lsf_stage_parse = {
    .name = "parse",
    .kind = LSF_STAGE_TRANSFORM,
    .help = "Turns records into events (always first; configured under the top-level 'parse:' key).",
    .keys = parse_keys,
    .conf_size = sizeof(parse_conf),
    .ctx_size = sizeof(parse_ctx),
    .init = parse_init,
    .process = parse_process,
    .destroy = parse_destroy,
};
