/* alert.c - what a firing becomes: suppression per key, a rate limit per
 * detection, severity escalation, and the alert event itself.
 *
 * The one design choice to know: an alert is an ordinary event appended to
 * the batch that fired it, with `event.kind: alert` (which sinks route on:
 * the Kafka sink's alerts topic, a file sink's `kinds: [alert]`), ECS names
 * where ECS has them (rule.*, event.severity, event.start/end, tags, the
 * group_by fields themselves) and the rest under `alert.*`. Everything the
 * event points at is copied into the batch arena, so an alert never
 * references detection state that a reload may free.
 *
 * Suppression and rate limiting run on event time, like the windows: a
 * firing within `suppress` of the key's last alert is counted on the key
 * (alert.suppressed of its next alert) and the key starts a new episode. The
 * rate limit is applied afterwards, to the alerts of each batch in batch
 * order (then time, id, key): an alert over the detection's `rate_limit` is
 * dropped and counted on the detection (alert.rate_limited of its next
 * alert), while its key behaves as if it had alerted (it is quiet for
 * `suppress`), so key state never depends on which shard fired first.
 *
 * Threads: lsf_alert_fire under the key's shard lock; admit in batch order
 * (the engine's emit ticket; the limiter's lock serves snapshots); emit on
 * the batch's worker.
 */
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "anomaly/hash.h"
#include "core/log.h"
#include "detect/detect.h"
#include "rules/rules_int.h"
#include "sinks/json_out.h"

static const char *const cmp_text[] = {">", ">=", "<", "<="};
static const char *const agg_text[] = {"sum", "avg", "max", "min"};
static const char *const esc_text[] = {"count", "observed", "score"};

bool lsf_key_next(const char *key, uint32_t keylen, uint32_t *pos, lsf_str *val)
{
    if (*pos + 2 > keylen)
        return false;
    uint16_t n;
    memcpy(&n, key + *pos, 2);
    if (*pos + 2u + n > keylen)
        return false;
    *val = lsf_str_make(key + *pos + 2, n);
    *pos += 2u + n;
    return true;
}

bool lsf_alert_admit(lsf_alert *a)
{
    lsf_detrun *r = a->run;
    const lsf_detdef *d = &r->def;
    int64_t t = a->time_ns;
    pthread_mutex_lock(&r->rate_lock);
    bool ok = true;
    if (d->rate_n) {
        if (r->rate_last_ns == INT64_MIN) {
            r->tokens = d->rate_n;
            r->rate_last_ns = t;
        } else if (t > r->rate_last_ns) {
            r->tokens += (double)(t - r->rate_last_ns) / (double)d->rate_ns * d->rate_n;
            if (r->tokens > d->rate_n)
                r->tokens = d->rate_n;
            r->rate_last_ns = t;
        }
        ok = r->tokens >= 1;
    }
    if (ok) {
        r->tokens -= d->rate_n ? 1 : 0;
        a->rate_limited = r->rate_dropped;
        r->rate_dropped = 0;
    } else {
        r->rate_dropped++;
        lsf_counter_add(r->c_rate_limited, 1);
    }
    pthread_mutex_unlock(&r->rate_lock);
    if (ok)
        lsf_counter_add(r->c_alerts, 1);
    return ok;
}

static void escalate(const lsf_detdef *d, lsf_alert *a)
{
    a->severity = d->severity;
    for (uint32_t i = 0; i < d->nesc; i++) {
        const lsf_det_escalate *x = &d->esc[i];
        double m = x->what == LSF_ESC_COUNT      ? (double)a->count
                   : x->what == LSF_ESC_OBSERVED ? a->observed
                                                 : a->max_score;
        if (m >= x->at && x->severity > a->severity) {
            a->severity = x->severity;
            snprintf(a->raised_by, sizeof(a->raised_by), "%s >= %g", esc_text[x->what], x->at);
        }
    }
}

static char *xmemdup(const void *p, size_t n)
{
    char *d = malloc(n + 1);
    if (!d)
        lsf_die("out of memory");
    memcpy(d, p, n);
    d[n] = 0;
    return d;
}

lsf_alert *lsf_alert_fire(lsf_detrun *r, lsf_dshard *s, lsf_dentry *e, const lsf_dfire *f)
{
    const lsf_detdef *d = &r->def;
    int64_t t = f->at_ns;
    lsf_alert *a = NULL;
    if (d->suppress_ns && t < e->quiet_until_ns) {
        e->suppressed++;
        lsf_counter_add(r->c_suppressed, 1);
    } else {
        a = calloc(1, sizeof(*a));
        if (!a)
            lsf_die("out of memory (alert)");
        a->run = lsf_detrun_ref(r);
        a->keylen = e->keylen;
        a->key = xmemdup(lsf_dkey_bytes(r, e), e->keylen);
        a->count = e->n;
        a->observed = f->observed;
        a->time_ns = t;
        a->first_ns = e->first_ns;
        a->last_ns = e->last_ns > t ? t : e->last_ns;
        if (a->first_ns > a->last_ns)
            a->first_ns = a->last_ns;
        a->suppressed = e->suppressed;
        a->max_score = e->max_score;
        if (e->nex) {
            a->exemplars = calloc(e->nex, sizeof(char *));
            if (!a->exemplars)
                lsf_die("out of memory");
            uint32_t k = d->exemplars, first = e->nex < k ? 0 : e->exhead;
            for (uint32_t i = 0; i < e->nex; i++) {
                const char *x = e->ex[(first + i) % k];
                a->exemplars[a->nex++] = xmemdup(x, strlen(x));
            }
        }
        escalate(d, a);
        e->suppressed = 0;
        e->quiet_until_ns = t + d->suppress_ns;
    }
    lsf_dkey_reset(r, s, e);
    return a;
}

void lsf_alert_free(lsf_alert *a)
{
    if (!a)
        return;
    for (uint32_t i = 0; i < a->nex; i++)
        free(a->exemplars[i]);
    free(a->exemplars);
    free(a->key);
    lsf_detrun_unref(a->run);
    free(a);
}

/* ---- text ----------------------------------------------------------------- */

/* "source.ip=203.0.113.9, user.name=root", or "all events" without group_by. */
static size_t key_text(const lsf_alert *a, char *buf, size_t n)
{
    const lsf_detdef *d = &a->run->def;
    size_t len = 0;
    uint32_t pos = 0;
    lsf_str v;
    buf[0] = 0;
    for (uint32_t i = 0; i < d->ngroup && lsf_key_next(a->key, a->keylen, &pos, &v); i++) {
        int w = snprintf(buf + len, n - len, "%s%s=%.*s", i ? ", " : "", d->group_by[i],
                         (int)v.len, v.ptr);
        if (w < 0 || (size_t)w >= n - len)
            return n - 1;
        len += (size_t)w;
    }
    if (!d->ngroup)
        len = (size_t)snprintf(buf, n, "all events");
    return len;
}

static const char *num(double x, char *buf, size_t n)
{
    if (x == floor(x) && fabs(x) < 1e15)
        snprintf(buf, n, "%.0f", x);
    else
        snprintf(buf, n, "%.6g", x);
    return buf;
}

size_t lsf_alert_summary(const lsf_alert *a, char *buf, size_t n)
{
    const lsf_detdef *d = &a->run->def;
    char key[512], win[32], o[32], l[32];
    key_text(a, key, sizeof(key));
    lsf_det_duration(d->window_ns, win, sizeof(win));
    num(a->observed, o, sizeof(o));
    num(d->limit, l, sizeof(l));
    int w;
    switch (d->type) {
    case LSF_DET_THRESHOLD:
        w = snprintf(buf, n, "%s events (>= %s) in %s for %s", o, l, win, key);
        break;
    case LSF_DET_SCORE:
        w = snprintf(buf, n, "%s events with anomaly.score >= %g (>= %s) in %s for %s", o,
                     d->score_min, l, win, key);
        break;
    case LSF_DET_DISTINCT:
        w = snprintf(buf, n, "%s distinct %s (>= %s) in %s for %s", o, d->field, l, win, key);
        break;
    case LSF_DET_VALUE:
        w = snprintf(buf, n, "%s(%s) = %s (%s %s) in %s for %s", agg_text[d->agg], d->field, o,
                     cmp_text[d->cmp], l, win, key);
        break;
    default:
        if (d->has_absent)
            w = snprintf(buf, n, "no step %u within %s after step %u for %s", d->nsteps, win,
                         d->nsteps - 1, key);
        else
            w = snprintf(buf, n, "%u steps in order within %s for %s", d->nsteps, win, key);
    }
    size_t len = w < 0 ? 0 : (size_t)w >= n ? n - 1 : (size_t)w;
    if (a->suppressed && len < n)
        len += (size_t)snprintf(buf + len, n - len, " (+%u suppressed)", a->suppressed);
    return len >= n ? n - 1 : len;
}

/* ---- the alert event ------------------------------------------------------------ */

static lsf_str arena_str(lsf_batch *b, const char *p, size_t n)
{
    return lsf_str_make(lsf_arena_memdup(&b->arena, p, n), n);
}

static lsf_str arena_cstr(lsf_batch *b, const char *s)
{
    return arena_str(b, s, strlen(s));
}

static void set_time(lsf_batch *b, lsf_event *ev, const char *name, int64_t ns)
{
    char buf[40];
    size_t n = lsf_format_rfc3339_utc(ns, buf);
    lsf_event_set_str(b, ev, lsf_str_make(name, strlen(name)), arena_str(b, buf, n));
}

static void set_num(lsf_batch *b, lsf_event *ev, const char *name, double x)
{
    lsf_str nm = lsf_str_make(name, strlen(name));
    if (x == floor(x) && fabs(x) < 9e15)
        lsf_event_set_int(b, ev, nm, (int64_t)x);
    else
        lsf_event_set_float(b, ev, nm, x);
}

/* A group_by value onto the alert under its own name, where the event can
 * carry it (host.name and process.name are event members; other fixed
 * names stay in alert.group only). */
static void set_group_field(lsf_batch *b, lsf_event *ev, const char *name, lsf_str v)
{
    lsf_str val = arena_str(b, v.ptr, v.len);
    if (strcmp(name, "host.name") == 0)
        ev->host = val;
    else if (strcmp(name, "process.name") == 0)
        ev->app = val;
    else if (lsf_fieldref_make(name).fx == LSF_FX_DYNAMIC)
        lsf_event_set_str(b, ev, arena_cstr(b, name), val); /* the name outlives a reload */
}

static lsf_str json_take(lsf_batch *b, lsf_outbuf *o)
{
    lsf_str s = arena_str(b, o->buf, o->len);
    lsf_outbuf_reset(o);
    return s;
}

void lsf_alert_emit(const lsf_alert *a, lsf_batch *b, int64_t now_ns)
{
    const lsf_detdef *d = &a->run->def;
    lsf_event *ev = lsf_batch_push(b);
    if (!ev)
        ev = lsf_batch_push_extra(b);
    ev->time_ns = a->time_ns;
    ev->ingested_ns = now_ns;
    char sum[1024], text[1400];
    lsf_alert_summary(a, sum, sizeof(sum));
    int tn = snprintf(text, sizeof(text), "%s: %s", d->name, sum);
    ev->message = ev->raw = arena_str(b, text, tn < 0 ? 0 : (size_t)tn >= sizeof(text) ? sizeof(text) - 1 : (size_t)tn);

    lsf_event_set_str(b, ev, LSF_STR_LIT("event.kind"), LSF_STR_LIT("alert"));
    lsf_event_set_int(b, ev, LSF_STR_LIT("event.severity"), a->severity);
    set_time(b, ev, "event.start", a->first_ns);
    set_time(b, ev, "event.end", a->last_ns);
    lsf_event_set_str(b, ev, LSF_STR_LIT("rule.id"), arena_cstr(b, d->id));
    lsf_event_set_str(b, ev, LSF_STR_LIT("rule.name"), arena_cstr(b, d->name));
    lsf_event_set_str(b, ev, LSF_STR_LIT("rule.ruleset"), arena_cstr(b, d->origin));
    if (d->description)
        lsf_event_set_str(b, ev, LSF_STR_LIT("rule.description"), arena_cstr(b, d->description));
    const char *sev = lsf_severity_level_name(a->severity);
    lsf_event_set_str(b, ev, LSF_STR_LIT("rule.severity"), lsf_str_make(sev, strlen(sev)));
    for (uint32_t i = 0; i < d->ntags; i++)
        lsf_event_add_tag(b, ev, arena_cstr(b, d->tags[i]));

    lsf_outbuf o;
    lsf_outbuf_init(&o);
    /* the group: its own fields, alert.key as text, alert.group as an object */
    uint32_t pos = 0;
    lsf_str v;
    lsf_outbuf_append(&o, "{", 1);
    for (uint32_t i = 0; i < d->ngroup && lsf_key_next(a->key, a->keylen, &pos, &v); i++) {
        set_group_field(b, ev, d->group_by[i], v);
        if (i)
            lsf_outbuf_append(&o, ",", 1);
        lsf_json_write_string(&o, d->group_by[i], strlen(d->group_by[i]));
        lsf_outbuf_append(&o, ":", 1);
        lsf_json_write_string(&o, v.ptr, v.len);
    }
    lsf_outbuf_append(&o, "}", 1);
    lsf_field *f = lsf_event_set(b, ev, LSF_STR_LIT("alert.group"), 0);
    f->type = LSF_T_JSON;
    f->v.s = json_take(b, &o);
    char key[512];
    size_t kn = key_text(a, key, sizeof(key));
    lsf_event_set_str(b, ev, LSF_STR_LIT("alert.key"), arena_str(b, key, kn));
    char id[24];
    uint64_t h = lsf_hash64(d->id, strlen(d->id), (uint64_t)a->time_ns);
    h = lsf_hash64(a->key, a->keylen, h);
    snprintf(id, sizeof(id), "%016" PRIx64, h);
    lsf_event_set_str(b, ev, LSF_STR_LIT("alert.id"), arena_str(b, id, 16));

    const char *type = lsf_det_type_name(d->type);
    lsf_event_set_str(b, ev, LSF_STR_LIT("alert.type"), lsf_str_make(type, strlen(type)));
    lsf_event_set_int(b, ev, LSF_STR_LIT("alert.count"), (int64_t)a->count);
    set_num(b, ev, "alert.observed", a->observed);
    set_num(b, ev, "alert.threshold", d->limit);
    const char *cmp = d->type == LSF_DET_VALUE ? cmp_text[d->cmp] : ">=";
    lsf_event_set_str(b, ev, LSF_STR_LIT("alert.comparison"), lsf_str_make(cmp, strlen(cmp)));
    char win[32];
    lsf_det_duration(d->window_ns, win, sizeof(win));
    lsf_event_set_str(b, ev, LSF_STR_LIT("alert.window"), arena_cstr(b, win));
    set_time(b, ev, "alert.first_seen", a->first_ns);
    set_time(b, ev, "alert.last_seen", a->last_ns);
    lsf_event_set_int(b, ev, LSF_STR_LIT("alert.suppressed"), a->suppressed);
    if (a->rate_limited)
        lsf_event_set_int(b, ev, LSF_STR_LIT("alert.rate_limited"), (int64_t)a->rate_limited);
    if (d->field)
        lsf_event_set_str(b, ev, LSF_STR_LIT("alert.field"), arena_cstr(b, d->field));
    if (d->type == LSF_DET_VALUE)
        lsf_event_set_str(b, ev, LSF_STR_LIT("alert.agg"), lsf_str_make(agg_text[d->agg], 3));
    if (d->type == LSF_DET_SCORE)
        set_num(b, ev, "alert.score_min", d->score_min);
    if (a->max_score >= 0)
        lsf_event_set_float(b, ev, LSF_STR_LIT("alert.score"), round(a->max_score * 1e4) / 1e4);
    if (a->raised_by[0])
        lsf_event_set_str(b, ev, LSF_STR_LIT("alert.severity_raised_by"),
                          arena_cstr(b, a->raised_by));
    if (a->nex) {
        lsf_outbuf_append(&o, "[", 1);
        for (uint32_t i = 0; i < a->nex; i++) {
            if (i)
                lsf_outbuf_append(&o, ",", 1);
            lsf_json_write_string(&o, a->exemplars[i], strlen(a->exemplars[i]));
        }
        lsf_outbuf_append(&o, "]", 1);
        f = lsf_event_set(b, ev, LSF_STR_LIT("alert.exemplars"), 0);
        f->type = LSF_T_JSON;
        f->v.s = json_take(b, &o);
    }
    lsf_outbuf_deinit(&o);
}
