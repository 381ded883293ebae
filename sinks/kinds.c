/* kinds.c - filters a batch's output lines by event.kind (see kinds.h).
 * Design: the JSON is never re-serialised; lines of the wanted events are
 * copied from the batch's shared output, which is cheap for the usual use
 * (a few alerts out of a batch of events).
 * Threads: pure functions.
 */
#include <stdlib.h>
#include <string.h>

#include "core/log.h"
#include "sinks/json_out.h"
#include "sinks/kinds.h"

int lsf_kinds_check(const lsf_strlist *kinds, const lsf_node *at, lsf_errbuf *err)
{
    for (size_t i = 0; i < kinds->n; i++) {
        const char *k = kinds->v[i];
        bool ok = k[0] != 0;
        for (const char *p = k; *p && ok; p++)
            ok = (*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') || *p == '_' || *p == '-';
        if (!ok)
            return lsf_node_error(err, at, "kinds: '%s' is not an event.kind (alert, event, "
                                  "pipeline_error, ...)", k);
    }
    return 0;
}

static bool wanted(const lsf_strlist *kinds, const lsf_event *ev)
{
    const lsf_field *f = lsf_event_find(ev, LSF_STR_LIT("event.kind"));
    lsf_str kind = f && f->type == LSF_T_STR ? f->v.s : LSF_STR_LIT("event");
    for (size_t i = 0; i < kinds->n; i++)
        if (lsf_str_eq_cstr(kind, kinds->v[i]))
            return true;
    return false;
}

const lsf_outbuf *lsf_kinds_filter(const lsf_strlist *kinds, const lsf_batch *b,
                                   const lsf_outbuf *out, lsf_outbuf *scratch)
{
    if (!kinds->n)
        return out;
    lsf_outbuf_reset(scratch);
    if (scratch->cap_lines < out->nlines + 1) {
        /* lsf_outbuf_append grows the bytes; the offsets are ours to size */
        uint32_t *nl = realloc(scratch->line_off, (out->nlines + 1) * sizeof(uint32_t));
        if (!nl)
            lsf_die("out of memory (line offsets)");
        scratch->line_off = nl;
        scratch->cap_lines = out->nlines + 1;
    }
    scratch->line_off[0] = 0;
    uint32_t line = 0;
    for (uint32_t i = 0; i < b->n && line < out->nlines; i++) {
        const lsf_event *ev = &b->events[i];
        if (ev->flags & LSF_EV_DROPPED)
            continue;
        if (wanted(kinds, ev)) {
            uint32_t s = out->line_off[line], e = out->line_off[line + 1];
            lsf_outbuf_append(scratch, out->buf + s, e - s);
            scratch->line_off[++scratch->nlines] = (uint32_t)scratch->len;
        }
        line++;
    }
    return scratch;
}
