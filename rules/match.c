/* match.c - classifies one event: candidates from the prefilter, `when`
 * conditions, PCRE2 confirmation with match/depth limits, then the winner's
 * captures, fields and tags are written onto the event.
 *
 * The one design choice to know: candidates are tried best rank first and
 * the first rule whose conditions and regexes all hold wins; nothing else
 * runs. Captures of a rule being confirmed are held per worker and only
 * written when every regex of the rule matched, so a rule that fails half
 * way leaves no trace on the event.
 *
 * Per-rule time is sampled (one evaluation in 8, chosen at random, scaled
 * up), which keeps the two clock reads off most evaluations.
 *
 * Threads: any worker; all mutable state is in rs->workers[worker].
 */
#include <arpa/inet.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "core/log.h"
#include "rules/rules_int.h"

#define TIME_SAMPLE_MASK 7u /* time one evaluation in 8 */

struct lsf_pending {
    const lsf_capture *cap;
    lsf_str v;
};

/* ---- reading fields ------------------------------------------------------------- */

/* The field's text; a dynamic field is looked for at *at first (at: NULL
 * for a plain search). */
static inline bool fieldref_get(const lsf_event *ev, const lsf_fieldref *f, char *scratch,
                                lsf_str *out, uint16_t *at)
{
    const lsf_str *slot;
    switch (f->fx) {
    case LSF_FX_MESSAGE:
        slot = &ev->message;
        break;
    case LSF_FX_HOST:
        slot = &ev->host;
        break;
    case LSF_FX_APP:
        slot = &ev->app;
        break;
    case LSF_FX_PROCID:
        slot = &ev->procid;
        break;
    case LSF_FX_MSGID:
        slot = &ev->msgid;
        break;
    case LSF_FX_DYNAMIC:
    case LSF_FX_RESERVED: {
        const lsf_field *fd = at ? lsf_event_find_at(ev, f->name, at) : lsf_event_find(ev, f->name);
        return fd && lsf_field_text(fd, scratch, out);
    }
    default:
        return lsf_event_get_str(ev, f->name, scratch, out);
    }
    if (!slot->ptr)
        return false;
    *out = *slot;
    return true;
}

bool lsf_fieldref_get(const lsf_event *ev, const lsf_fieldref *f, char *scratch, lsf_str *out)
{
    return fieldref_get(ev, f, scratch, out, NULL);
}

bool lsf_fieldref_get_at(const lsf_event *ev, const lsf_fieldref *f, char *scratch, lsf_str *out,
                         uint16_t *at)
{
    return fieldref_get(ev, f, scratch, out, at);
}

/* Copies a slice into a NUL-terminated buffer; false when it does not fit. */
static bool cstr(lsf_str v, char *buf, size_t n)
{
    if (v.len >= n)
        return false;
    memcpy(buf, v.ptr, v.len);
    buf[v.len] = 0;
    return true;
}

static bool parse_ip(lsf_str v, uint8_t addr[16], int *family)
{
    char buf[64];
    if (!cstr(v, buf, sizeof(buf)))
        return false;
    char *zone = strchr(buf, '%');
    if (zone)
        *zone = 0;
    if (inet_pton(AF_INET, buf, addr) == 1) {
        *family = 4;
        return true;
    }
    if (inet_pton(AF_INET6, buf, addr) == 1) {
        *family = 6;
        return true;
    }
    return false;
}

static bool in_cidr(const lsf_cidr *c, const uint8_t *addr, int family)
{
    if (c->family != family)
        return false;
    int full = c->bits / 8, rest = c->bits % 8;
    if (memcmp(c->addr, addr, (size_t)full) != 0)
        return false;
    if (!rest)
        return true;
    uint8_t mask = (uint8_t)(0xFFu << (8 - rest));
    return (addr[full] & mask) == c->addr[full];
}

static bool field_number(const lsf_event *ev, const lsf_fieldref *f, lsf_str v, double *out)
{
    if (ev && f->fx == LSF_FX_DYNAMIC) {
        const lsf_field *fd = lsf_event_find(ev, f->name);
        if (fd && fd->type == LSF_T_INT) {
            *out = (double)fd->v.i;
            return true;
        }
        if (fd && fd->type == LSF_T_FLOAT) {
            *out = fd->v.f;
            return true;
        }
    }
    char buf[64], *end;
    if (!cstr(v, buf, sizeof(buf)) || !buf[0])
        return false;
    errno = 0;
    *out = strtod(buf, &end);
    return !*end && !errno && isfinite(*out);
}

/* Tests condition c on value v (has: the field is present). `ev` is the
 * event the value came from, NULL for a value captured by the rule. */
static bool cond_test(const lsf_cond *c, const lsf_event *ev, bool has, lsf_str v)
{
    if (c->op == LSF_OP_EXISTS)
        return has == c->exists;
    if (!has)
        return false;
    switch (c->op) {
    case LSF_OP_EQ:
    case LSF_OP_IN:
    case LSF_OP_NE:
    case LSF_OP_NOT_IN: {
        bool any = false;
        for (uint32_t i = 0; i < c->nstrs && !any; i++)
            any = c->lens[i] == v.len && memcmp(c->strs[i], v.ptr, v.len) == 0;
        return (c->op == LSF_OP_EQ || c->op == LSF_OP_IN) ? any : !any;
    }
    case LSF_OP_PREFIX:
        for (uint32_t i = 0; i < c->nstrs; i++)
            if (c->lens[i] <= v.len && memcmp(c->strs[i], v.ptr, c->lens[i]) == 0)
                return true;
        return false;
    case LSF_OP_SUFFIX:
        for (uint32_t i = 0; i < c->nstrs; i++)
            if (c->lens[i] <= v.len &&
                memcmp(c->strs[i], v.ptr + v.len - c->lens[i], c->lens[i]) == 0)
                return true;
        return false;
    case LSF_OP_CONTAINS:
        for (uint32_t i = 0; i < c->nstrs; i++)
            if (memmem(v.ptr, v.len, c->strs[i], c->lens[i]))
                return true;
        return false;
    case LSF_OP_CIDR:
    case LSF_OP_NOT_CIDR: {
        uint8_t addr[16];
        int family;
        if (!parse_ip(v, addr, &family))
            return false;
        bool any = false;
        for (uint32_t i = 0; i < c->ncidrs && !any; i++)
            any = in_cidr(&c->cidrs[i], addr, family);
        return c->op == LSF_OP_CIDR ? any : !any;
    }
    default: {
        double x;
        if (!field_number(ev, &c->field, v, &x))
            return false;
        switch (c->op) {
        case LSF_OP_GT:
            return x > c->num;
        case LSF_OP_GE:
            return x >= c->num;
        case LSF_OP_LT:
            return x < c->num;
        default:
            return x <= c->num;
        }
    }
    }
}

static bool cond_ok(const lsf_cond *c, const lsf_event *ev)
{
    char scratch[48];
    lsf_str v;
    bool has = lsf_fieldref_get(ev, &c->field, scratch, &v);
    return cond_test(c, ev, has, v);
}

bool lsf_when_match(const lsf_when *w, const lsf_event *ev)
{
    for (uint32_t i = 0; i < w->n; i++)
        if (!cond_ok(&w->conds[i], ev))
            return false;
    return true;
}

/* ---- confirming a candidate ---------------------------------------------------- */

enum { RX_NO = 0, RX_YES = 1, RX_LIMIT = 2 };

static void pending_push(lsf_rules_worker *w, const lsf_capture *cap, lsf_str v)
{
    if (w->npending == w->cap_pending) {
        uint32_t cap2 = w->cap_pending ? w->cap_pending * 2 : 16;
        struct lsf_pending *np = realloc(w->pending, cap2 * sizeof(*np));
        if (!np)
            lsf_die("out of memory");
        w->pending = np;
        w->cap_pending = cap2;
    }
    w->pending[w->npending++] = (struct lsf_pending){cap, v};
}

/* Runs regex k of a rule and queues its captures. A subject that was
 * formatted into scratch (a number) is first copied into b's arena, or,
 * without a batch, into the worker's buffer for regex k. */
static int run_rx(lsf_rules_worker *w, const lsf_rx *rx, uint32_t k, const lsf_event *ev,
                  lsf_batch *b)
{
    char scratch[48];
    lsf_str s;
    if (!lsf_fieldref_get(ev, &rx->field, scratch, &s))
        return RX_NO;
    const char *subject = s.ptr ? s.ptr : "";
    int rc = rx->jit ? pcre2_jit_match(rx->code, (PCRE2_SPTR)subject, s.len, 0, 0, w->md, w->mctx)
                     : pcre2_match(rx->code, (PCRE2_SPTR)subject, s.len, 0, 0, w->md, w->mctx);
    if (rc < 0) {
        if (rc == PCRE2_ERROR_MATCHLIMIT || rc == PCRE2_ERROR_DEPTHLIMIT ||
            rc == PCRE2_ERROR_HEAPLIMIT || rc == PCRE2_ERROR_JIT_STACKLIMIT)
            return RX_LIMIT;
        return RX_NO;
    }
    if (!rx->ncaps)
        return RX_YES;
    if (s.ptr == scratch)
        subject = b ? lsf_arena_memdup(&b->arena, scratch, s.len)
                    : memcpy(w->numbuf[k], scratch, s.len);
    PCRE2_SIZE *ov = pcre2_get_ovector_pointer(w->md);
    uint32_t nov = pcre2_get_ovector_count(w->md);
    for (uint32_t i = 0; i < rx->ncaps; i++) {
        uint32_t g = rx->caps[i].group;
        if (g >= nov || ov[2 * g] == PCRE2_UNSET)
            continue;
        /* the first group of a name that took part wins */
        bool seen = false;
        for (uint32_t k = 0; rx->caps[i].shared && k < w->npending && !seen; k++)
            seen = lsf_str_eq(w->pending[k].cap->field.name, rx->caps[i].field.name);
        if (!seen)
            pending_push(w, &rx->caps[i],
                         lsf_str_make(subject + ov[2 * g], ov[2 * g + 1] - ov[2 * g]));
    }
    return RX_YES;
}

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

#define BUMP(x, n)                                                                                 \
    atomic_store_explicit(&(x), atomic_load_explicit(&(x), memory_order_relaxed) + (n),            \
                          memory_order_relaxed)

static void report_limit(const lsf_rule *r, const lsf_rules_worker *w, uint64_t hits)
{
    (void)w;
    if ((hits & (hits - 1)) == 0) /* 1, 2, 4, 8 ... per worker */
        lsf_warn("rules: rule %s hit the PCRE2 match/depth limit (%llu times on this worker); "
                 "such lines are kept, unclassified by this rule",
                 r->id, (unsigned long long)hits);
}

/* Conditions then regexes of rule i; RX_YES leaves its captures pending. */
static int try_rule(lsf_ruleset *rs, lsf_rules_worker *w, uint32_t i, const lsf_event *ev,
                    lsf_batch *b, bool count, bool indexed)
{
    const lsf_rule *r = &rs->rules[i];
    for (uint32_t k = 0; k < r->nconds; k++) {
        if (indexed && (int)k == r->app_cond)
            continue; /* the line came through this rule's process.name group */
        if (!cond_ok(&r->conds[k], ev))
            return RX_NO;
    }
    w->npending = 0;
    if (!r->nrx)
        return RX_YES;
    lsf_rule_counts *c = &w->counts[i];
    w->tick ^= w->tick << 13; /* xorshift64: which evaluations are timed */
    w->tick ^= w->tick >> 7;
    w->tick ^= w->tick << 17;
    uint64_t scale = rs->opts.time_every ? 1 : TIME_SAMPLE_MASK + 1;
    bool timed = rs->opts.time_every || (w->tick & TIME_SAMPLE_MASK) == 0;
    uint64_t t0 = timed ? now_ns() : 0;
    int rc = RX_YES;
    for (uint32_t k = 0; k < r->nrx && rc == RX_YES; k++)
        rc = run_rx(w, &r->rx[k], k, ev, b);
    if (!count)
        return rc;
    if (timed)
        BUMP(c->ns, (now_ns() - t0) * scale);
    BUMP(c->evals, 1);
    if (rc == RX_LIMIT) {
        uint64_t hits = atomic_load_explicit(&c->limit_hits, memory_order_relaxed) + 1;
        atomic_store_explicit(&c->limit_hits, hits, memory_order_relaxed);
        w->limit_events++;
        report_limit(r, w, hits);
    }
    return rc;
}

static void insertion_sort(uint32_t *v, uint32_t n)
{
    for (uint32_t i = 1; i < n; i++) {
        uint32_t x = v[i], j = i;
        while (j && v[j - 1] > x) {
            v[j] = v[j - 1];
            j--;
        }
        v[j] = x;
    }
}

static int cmp_u32(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return x < y ? -1 : x > y;
}

/* Adds the group's always-tried rules to w->cand, but those whose gate
 * field (rules_int.h, always_gate) the event lacks; consecutive rules gated
 * by the same field share one lookup. */
static void add_always(const lsf_ruleset *rs, const lsf_rgroup *g, lsf_rules_worker *w,
                       const lsf_event *ev)
{
    const lsf_fieldref *last = NULL;
    bool has = false;
    for (uint32_t i = 0; i < g->nalways; i++) {
        uint32_t r = g->always[i];
        if (g->always_gate[i] >= 0) {
            const lsf_fieldref *f = &rs->rules[r].conds[g->always_gate[i]].field;
            if (!last || f->fx != last->fx || !lsf_str_eq(f->name, last->name)) {
                char scratch[48];
                lsf_str v;
                has = lsf_fieldref_get(ev, f, scratch, &v);
                last = f;
            }
            if (!has)
                continue;
        }
        w->cand[w->ncand++] = r;
    }
}

/* Fills w->cand with the line's candidates in rank order. */
static void candidates(lsf_ruleset *rs, lsf_rules_worker *w, const lsf_event *ev, bool all_rules)
{
    w->ncand = 0;
    if (all_rules) {
        for (uint32_t i = 0; i < rs->nrules; i++)
            w->cand[w->ncand++] = i;
        return;
    }
    const lsf_rgroup *app = lsf_prefilter_app_group(rs, ev->app);
    const char *m = ev->message.ptr;
    size_t n = m ? ev->message.len : 0;
    const lsf_rgroup *g = app ? app : &rs->generic; /* app groups hold the generic rules */
    add_always(rs, g, w, ev);
    lsf_prefilter_scan(rs, g, w, m, n);
    if (w->ncand < 48)
        insertion_sort(w->cand, w->ncand);
    else
        qsort(w->cand, w->ncand, sizeof(uint32_t), cmp_u32);
}

size_t lsf_ruleset_matches(lsf_ruleset *rs, const lsf_event *ev, int worker, bool all_rules,
                           uint32_t *out, size_t max)
{
    lsf_rules_worker *w = &rs->workers[worker];
    candidates(rs, w, ev, all_rules);
    size_t n = 0;
    for (uint32_t k = 0; k < w->ncand && n < max; k++)
        if (try_rule(rs, w, w->cand[k], ev, NULL, false, !all_rules) == RX_YES)
            out[n++] = w->cand[k];
    return n;
}

/* ---- writing the winner ----------------------------------------------------------
 * A winner writes some ten fields, and lsf_event_set searches the event's
 * fields for each. `names` summarises the names the event holds (one bit of
 * 64 per name, from its length and end bytes), taken once by commit() and
 * kept up to date by field_for(): a name whose bit is clear is new, and is
 * appended without a search. */

static uint64_t name_bit(lsf_str n)
{
    unsigned h = n.len ? n.len * 7u + (unsigned char)n.ptr[0] * 3u +
                             (unsigned char)n.ptr[n.len - 1]
                       : 0;
    return 1ull << (h & 63);
}

static uint64_t names_of(const lsf_event *ev)
{
    uint64_t m = 0;
    for (uint16_t i = 0; i < ev->nfields; i++)
        m |= name_bit(ev->fields[i].name);
    return m;
}

/* lsf_event_set, without the search when `names` shows the name is new. */
static lsf_field *field_for(lsf_batch *b, lsf_event *ev, lsf_str name, uint64_t *names)
{
    uint64_t bit = name_bit(name);
    if (*names & bit)
        return lsf_event_set(b, ev, name, 0);
    *names |= bit;
    return lsf_event_append(b, ev, name, 0);
}

static void put_field_str(lsf_batch *b, lsf_event *ev, lsf_str name, lsf_str v,
                          uint64_t *names)
{
    lsf_field *f = field_for(b, ev, name, names);
    f->type = LSF_T_STR;
    f->v.s = v;
}

static void put_str(lsf_batch *b, lsf_event *ev, const lsf_fieldref *f, lsf_str v,
                    uint64_t *names)
{
    switch (f->fx) {
    case LSF_FX_MESSAGE:
        ev->message = v;
        return;
    case LSF_FX_HOST:
        ev->host = v;
        return;
    case LSF_FX_APP:
        ev->app = v;
        return;
    case LSF_FX_PROCID:
        ev->procid = v;
        return;
    case LSF_FX_MSGID:
        ev->msgid = v;
        return;
    default:
        put_field_str(b, ev, f->name, v, names);
    }
}

static bool parse_bool_text(lsf_str v, bool *out)
{
    static const char *const yes[] = {"true", "yes", "on", "1"}, *const no[] = {"false", "no",
                                                                                 "off", "0"};
    char buf[8];
    if (!cstr(v, buf, sizeof(buf)))
        return false;
    for (int i = 0; i < 4; i++) {
        if (strcasecmp(buf, yes[i]) == 0)
            return *out = true, true;
        if (strcasecmp(buf, no[i]) == 0)
            return *out = false, true;
    }
    return false;
}

/* A decimal integer with an optional sign that fits an int64 (what
 * strtoll accepts, without its locale and whitespace handling). */
static bool parse_int64(lsf_str v, int64_t *out)
{
    size_t i = 0;
    bool neg = false;
    if (v.len && (v.ptr[0] == '-' || v.ptr[0] == '+'))
        neg = v.ptr[i++] == '-';
    if (i == v.len || v.len - i > 19)
        return false;
    uint64_t x = 0;
    for (; i < v.len; i++) {
        unsigned d = (unsigned char)v.ptr[i] - '0';
        if (d > 9)
            return false;
        x = x * 10 + d;
    }
    if (x > (uint64_t)INT64_MAX + neg)
        return false;
    *out = neg ? (int64_t)(0 - x) : (int64_t)x;
    return true;
}

/* Writes one capture with its type; false on a value that is not of it. */
static bool put_capture(lsf_batch *b, lsf_event *ev, const lsf_capture *c, lsf_str v,
                        uint64_t *names)
{
    char buf[64], *end;
    switch (c->type) {
    case LSF_CAP_STRING:
        put_str(b, ev, &c->field, v, names);
        return true;
    case LSF_CAP_IP: {
        uint8_t addr[16];
        int fam;
        if (!v.len)
            return true;
        if (!parse_ip(v, addr, &fam))
            return false;
        put_str(b, ev, &c->field, v, names);
        return true;
    }
    case LSF_CAP_BOOL: {
        bool x;
        if (!v.len)
            return true;
        if (!parse_bool_text(v, &x))
            return false;
        if (c->field.fx != LSF_FX_DYNAMIC) {
            put_str(b, ev, &c->field, v, names);
            return true;
        }
        lsf_field *fd = field_for(b, ev, c->field.name, names);
        fd->type = LSF_T_BOOL;
        fd->v.b = x;
        return true;
    }
    default:
        break;
    }
    if (!v.len)
        return true;
    lsf_field *fd;
    if (c->type == LSF_CAP_INT) {
        int64_t x;
        if (!parse_int64(v, &x))
            return false;
        if (c->field.fx != LSF_FX_DYNAMIC) {
            put_str(b, ev, &c->field, v, names);
            return true;
        }
        fd = field_for(b, ev, c->field.name, names);
        fd->type = LSF_T_INT;
        fd->v.i = x;
        return true;
    }
    if (!cstr(v, buf, sizeof(buf)))
        return false;
    errno = 0;
    double x = strtod(buf, &end);
    if (*end || errno || !isfinite(x))
        return false;
    if (c->field.fx != LSF_FX_DYNAMIC) {
        put_str(b, ev, &c->field, v, names);
        return true;
    }
    fd = field_for(b, ev, c->field.name, names);
    fd->type = LSF_T_FLOAT;
    fd->v.f = x;
    return true;
}

static void apply_copy(lsf_batch *b, lsf_event *ev, const lsf_copyfield *c, uint64_t *names)
{
    for (uint32_t i = 0; i < c->nsrc; i++) {
        const lsf_fieldref *src = &c->src[i];
        if (src->fx == LSF_FX_DYNAMIC && !(*names & name_bit(src->name)))
            continue; /* not on the event: no search (app_json tries ~40 names) */
        if (src->fx == LSF_FX_DYNAMIC && c->dst.fx == LSF_FX_DYNAMIC) {
            const lsf_field *f = lsf_event_find(ev, src->name);
            if (!f || f->type == LSF_T_NULL)
                continue;
            lsf_field v = *f;
            lsf_field *d = field_for(b, ev, c->dst.name, names);
            d->type = v.type;
            d->v = v.v;
            return;
        }
        char scratch[48];
        lsf_str v;
        if (!lsf_fieldref_get(ev, src, scratch, &v))
            continue;
        if (v.ptr == scratch)
            v.ptr = lsf_arena_memdup(&b->arena, scratch, v.len);
        put_str(b, ev, &c->dst, v, names);
        return;
    }
}

static void commit(lsf_ruleset *rs, lsf_rules_worker *w, const lsf_rule *r, lsf_batch *b,
                   lsf_event *ev)
{
    const char *blob = lsf_arena_memdup(&b->arena, r->blob, r->blob_len);
    uint64_t names = names_of(ev);
    for (uint32_t i = 0; i < r->ncopy; i++)
        apply_copy(b, ev, &r->copy[i], &names);
    bool type_error = false;
    for (uint32_t i = 0; i < w->npending; i++)
        if (!put_capture(b, ev, w->pending[i].cap, w->pending[i].v, &names))
            type_error = true;
    if (type_error) {
        w->type_errors++;
        lsf_event_add_tag(b, ev, LSF_STR_LIT("_capture_type_error"));
    }
    for (uint32_t i = 0; i < r->nset; i++) {
        const lsf_setfield *s = &r->set[i];
        if (s->field.fx != LSF_FX_DYNAMIC) {
            put_str(b, ev, &s->field, lsf_str_make(blob + s->off, s->len), &names);
            continue;
        }
        lsf_field *f = field_for(b, ev, s->field.name, &names);
        f->type = s->type;
        switch (s->type) {
        case LSF_T_INT:
            f->v.i = s->i;
            break;
        case LSF_T_FLOAT:
            f->v.f = s->f;
            break;
        case LSF_T_BOOL:
            f->v.b = s->b;
            break;
        default:
            f->v.s = lsf_str_make(blob + s->off, s->len);
        }
    }
    put_field_str(b, ev, LSF_STR_LIT("rule.id"), lsf_str_make(blob, r->id_len), &names);
    put_field_str(b, ev, LSF_STR_LIT("rule.ruleset"),
                  lsf_str_make(blob + r->pack_off, r->pack_len), &names);
    if (r->severity) {
        lsf_field *f = field_for(b, ev, LSF_STR_LIT("event.severity"), &names);
        f->type = LSF_T_INT;
        f->v.i = r->severity;
        put_field_str(b, ev, LSF_STR_LIT("rule.severity"),
                      lsf_str_make(blob + r->sev_off, r->sev_len), &names);
    }
    for (uint32_t i = 0; i < r->ntags; i++)
        lsf_event_add_tag(b, ev, lsf_str_make(blob + r->tag_off[i], r->tag_len[i]));
    if (r->drop) {
        if (rs->opts.keep_dropped)
            lsf_event_add_tag(b, ev, LSF_STR_LIT("_drop"));
        else
            ev->flags |= LSF_EV_DROPPED;
    }
}

int lsf_ruleset_apply(lsf_ruleset *rs, lsf_batch *b, lsf_event *ev, int worker)
{
    lsf_rules_worker *w = &rs->workers[worker];
    candidates(rs, w, ev, false);
    uint64_t limits = w->limit_events;
    int won = -1;
    for (uint32_t k = 0; k < w->ncand; k++) {
        uint32_t i = w->cand[k];
        if (try_rule(rs, w, i, ev, b, true, true) != RX_YES)
            continue;
        const lsf_rule *r = &rs->rules[i];
        BUMP(w->counts[i].matches, 1);
        commit(rs, w, r, b, ev);
        won = (int)i;
        break;
    }
    if (w->limit_events != limits)
        lsf_event_add_tag(b, ev, LSF_STR_LIT("_rule_limit"));
    return won;
}

void lsf_ruleset_take_counts(lsf_ruleset *rs, int worker, uint64_t *limit_events,
                             uint64_t *type_errors)
{
    lsf_rules_worker *w = &rs->workers[worker];
    *limit_events = w->limit_events;
    *type_errors = w->type_errors;
    w->limit_events = w->type_errors = 0;
}
