/* packtest.c - runs the inline `tests:` of every pack of a rule set: each
 * line is parsed exactly as the pipeline parses it (parsers/parse.h, format
 * auto-detected, timezone UTC), classified by the whole set, and compared
 * field by field with `expect`.
 *
 * The one design choice to know: every test line is also run against every
 * rule without the prefilter. That gives two checks for free: lines that two
 * rules of equal priority match (the winner then depends on file order), and
 * any disagreement between the prefilter and trying every rule (an engine
 * bug, always a failure).
 *
 * Expected values: an unquoted number must be a number field (int or float)
 * of that value, an unquoted true/false a boolean; anything else (a quoted
 * "42" included) is compared with the field's text; a list compares
 * with the JSON array a `set:` list produces, or, for `tags`, must all be
 * present; null (or ~) means the field must be absent.
 *
 * Threads: uses worker slot 0 of the set, which must not be serving events.
 */
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/log.h"
#include "parsers/parse.h"
#include "rules/rules_int.h"

typedef struct tctx {
    lsf_ruleset *rs;
    FILE *out;
    lsf_rules_test_result *res;
    bool failed_this; /* header of the current test printed */
    char *covered;    /* per rule: a test expects it */
} tctx;

static void first_error(tctx *x, const lsf_node *at, const char *fmt, const char *a,
                        const char *b)
{
    if (x->res->first_error[0])
        return;
    char msg[400];
    snprintf(msg, sizeof(msg), fmt, a, b);
    snprintf(x->res->first_error, sizeof(x->res->first_error), "%s:%d:%d: %s", at->file,
             at->line, at->col, msg);
}

/* Prints the "FAIL file:line:col" header of a test once. */
static void fail_header(tctx *x, const lsf_pack *pk, const lsf_pack_test *t)
{
    if (x->failed_this)
        return;
    x->failed_this = true;
    if (!x->out)
        return;
    fprintf(x->out, "FAIL %s:%d:%d (pack %s)\n     line: %s\n", t->node->file, t->node->line,
            t->node->col, pk->name, t->line);
    fprintf(x->out, "     %-30s %-32s %s\n", "field", "expected", "got");
}

static void diff_row(tctx *x, const char *field, const char *want, const char *got)
{
    if (x->out)
        fprintf(x->out, "     %-30s %-32s %s\n", field, want, got);
}

/* Text of the field as the test sees it, with its type in words. */
static bool actual(const lsf_event *ev, const char *name, char *buf, size_t n, int *type)
{
    lsf_str nm = lsf_str_make(name, strlen(name));
    const lsf_field *f = lsf_event_find(ev, nm);
    char scratch[48];
    lsf_str v;
    *type = LSF_T_STR;
    if (f && f->type != LSF_T_NULL) {
        *type = f->type;
        switch (f->type) {
        case LSF_T_INT:
            snprintf(buf, n, "%" PRId64, f->v.i);
            return true;
        case LSF_T_FLOAT:
            snprintf(buf, n, "%.17g", f->v.f);
            return true;
        case LSF_T_BOOL:
            snprintf(buf, n, "%s", f->v.b ? "true" : "false");
            return true;
        default:
            snprintf(buf, n, "%.*s", (int)f->v.s.len, f->v.s.ptr);
            return true;
        }
    }
    if (!lsf_event_get_str(ev, nm, scratch, &v))
        return false;
    snprintf(buf, n, "%.*s", (int)v.len, v.ptr ? v.ptr : "");
    return true;
}

static const char *type_word(int t)
{
    switch (t) {
    case LSF_T_INT:
        return "int";
    case LSF_T_FLOAT:
        return "float";
    case LSF_T_BOOL:
        return "bool";
    case LSF_T_JSON:
        return "list";
    default:
        return "string";
    }
}

static bool has_tag(const lsf_event *ev, const char *tag)
{
    if (strcmp(tag, "_parse_failure") == 0)
        return ev->flags & LSF_EV_PARSE_FAILURE;
    if (strcmp(tag, "_truncated") == 0)
        return ev->flags & LSF_EV_TRUNCATED;
    for (uint16_t i = 0; i < ev->ntags; i++)
        if (lsf_str_eq_cstr(ev->tags[i], tag))
            return true;
    return false;
}

static void json_list(const lsf_node *seq, char *buf, size_t n)
{
    size_t len = 0;
    len += (size_t)snprintf(buf + len, n - len, "[");
    for (const lsf_node *v = seq->child; v && len < n; v = v->next)
        len += (size_t)snprintf(buf + len, n - len, "%s\"%s\"", v == seq->child ? "" : ",",
                                v->str ? v->str : "");
    if (len < n)
        snprintf(buf + len, n - len, "]");
}

static bool num_text(const char *s, double *v)
{
    char *end;
    errno = 0;
    *v = strtod(s, &end);
    return s[0] && !*end && !errno && isfinite(*v);
}

/* Compares one expected field; prints a diff row and returns false on a
 * mismatch. */
static bool check_field(tctx *x, const lsf_pack *pk, const lsf_pack_test *t, const lsf_event *ev,
                        const lsf_node *e)
{
    char got[512], want[512], gotd[560], wantd[560];
    int gtype;
    bool has = actual(ev, e->key, got, sizeof(got), &gtype);
    if (strcmp(e->key, "tags") == 0) {
        bool ok = true;
        const lsf_node *one = e->kind == LSF_NODE_SCALAR ? e : NULL;
        for (const lsf_node *v = one ? one : e->child; v; v = one ? NULL : v->next)
            if (v->str && !has_tag(ev, v->str)) {
                fail_header(x, pk, t);
                snprintf(wantd, sizeof(wantd), "contains %s", v->str);
                diff_row(x, "tags", wantd, "(missing)");
                ok = false;
            }
        return ok;
    }
    if (e->kind == LSF_NODE_SCALAR && !e->quoted &&
        (strcmp(e->str, "null") == 0 || strcmp(e->str, "~") == 0 || !e->str[0])) {
        if (!has)
            return true;
        fail_header(x, pk, t);
        snprintf(gotd, sizeof(gotd), "%s (%s)", got, type_word(gtype));
        diff_row(x, e->key, "(absent)", gotd);
        return false;
    }
    int wtype = LSF_T_STR;
    double wn = 0, gn = 0;
    if (e->kind == LSF_NODE_SEQ) {
        json_list(e, want, sizeof(want));
        wtype = LSF_T_JSON;
    } else if (e->kind == LSF_NODE_SCALAR) {
        snprintf(want, sizeof(want), "%s", e->str);
        if (!e->quoted && num_text(e->str, &wn))
            wtype = strpbrk(e->str, ".eE") ? LSF_T_FLOAT : LSF_T_INT;
        else if (!e->quoted && (strcmp(e->str, "true") == 0 || strcmp(e->str, "false") == 0))
            wtype = LSF_T_BOOL;
    } else {
        fail_header(x, pk, t);
        diff_row(x, e->key, "(a map: not comparable)", "");
        return false;
    }
    bool ok = has;
    if (ok) {
        bool dynamic = lsf_event_find(ev, lsf_str_make(e->key, strlen(e->key))) != NULL;
        if (wtype == LSF_T_INT || wtype == LSF_T_FLOAT)
            ok = num_text(got, &gn) && gn == wn &&
                 (!dynamic || gtype == LSF_T_INT || gtype == LSF_T_FLOAT);
        else if (wtype == LSF_T_BOOL)
            ok = strcmp(got, want) == 0 && (!dynamic || gtype == LSF_T_BOOL);
        else if (wtype == LSF_T_JSON)
            ok = strcmp(got, want) == 0;
        else /* quoted or plain text: compared as text, whatever the type */
            ok = strcmp(got, want) == 0;
    }
    if (ok)
        return true;
    fail_header(x, pk, t);
    snprintf(wantd, sizeof(wantd), "%s (%s)", want, type_word(wtype));
    if (has)
        snprintf(gotd, sizeof(gotd), "%s (%s)", got, type_word(gtype));
    else
        snprintf(gotd, sizeof(gotd), "(absent)");
    diff_row(x, e->key, wantd, gotd);
    return false;
}

static int find_rule(const lsf_ruleset *rs, const char *id)
{
    for (size_t i = 0; i < rs->nrules; i++)
        if (strcmp(rs->rules[i].id, id) == 0)
            return (int)i;
    return -1;
}

static void run_one(tctx *x, lsf_batch *b, const lsf_pack *pk, const lsf_pack_test *t,
                    uint32_t *all, uint32_t *pf)
{
    lsf_ruleset *rs = x->rs;
    x->failed_this = false;
    x->res->tests++;
    lsf_batch_reset(b);
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    lsf_event *ev = lsf_batch_push_record(b, t->line, strlen(t->line),
                                          (int64_t)now.tv_sec * 1000000000 + now.tv_nsec);
    lsf_parse_opts po = {.format = t->format, .tz_mode = LSF_TZ_UTC, .body_json = true};
    lsf_parse_event(b, ev, &po);

    size_t nall = lsf_ruleset_matches(rs, ev, 0, true, all, rs->nrules);
    size_t npf = lsf_ruleset_matches(rs, ev, 0, false, pf, rs->nrules);
    bool engine_ok = nall == npf && (nall == 0 || memcmp(all, pf, nall * sizeof(uint32_t)) == 0);
    if (!engine_ok) {
        x->res->engine++;
        fail_header(x, pk, t);
        diff_row(x, "(engine)", nall ? rs->rules[all[0]].id : "(no rule)",
                 npf ? rs->rules[pf[0]].id : "(no rule)");
        if (x->out)
            fprintf(x->out, "     the prefilter disagrees with trying every rule (%zu vs %zu "
                    "matches): please report this pattern\n", npf, nall);
        first_error(x, t->node, "the prefilter disagrees with trying every rule%s%s", "", "");
    }
    if (nall >= 2 && rs->rules[all[0]].priority == rs->rules[all[1]].priority) {
        x->res->ambiguous++;
        if (x->out)
            fprintf(x->out, "WARN %s:%d:%d: rules %s and %s (priority %d) both match; %s wins "
                    "by load order; give one a higher priority\n", t->node->file, t->node->line,
                    t->node->col, rs->rules[all[0]].id, rs->rules[all[1]].id,
                    rs->rules[all[0]].priority, rs->rules[all[0]].id);
    }

    int won = lsf_ruleset_apply(rs, b, ev, 0);
    bool ok = engine_ok;
    if (t->expect_none) {
        if (won >= 0) {
            fail_header(x, pk, t);
            diff_row(x, "rule.id", "(no rule)", rs->rules[won].id);
            first_error(x, t->node, "test expects no rule to match, but %s matched",
                        rs->rules[won].id, "");
            ok = false;
        }
    } else {
        const lsf_node *idn = lsf_node_get(t->expect, "rule.id");
        if (idn && idn->kind == LSF_NODE_SCALAR) {
            int ri = find_rule(rs, idn->str);
            if (ri >= 0)
                x->covered[ri] = 1;
        }
        for (const lsf_node *e = t->expect->child; e; e = e->next) {
            if (!check_field(x, pk, t, ev, e)) {
                if (ok && strcmp(e->key, "rule.id") == 0) {
                    first_error(x, t->node, "test expects rule %s, but %s", e->str ? e->str : "?",
                                won >= 0 ? rs->rules[won].id : "no rule matched");
                } else if (ok) {
                    char got[200];
                    int gt;
                    if (!actual(ev, e->key, got, sizeof(got), &gt))
                        snprintf(got, sizeof(got), "(absent)");
                    first_error(x, t->node, "test failed: field %s: got %s", e->key, got);
                }
                ok = false;
            }
        }
    }
    if (t->dropped >= 0) {
        bool dropped = (ev->flags & LSF_EV_DROPPED) || has_tag(ev, "_drop");
        if (dropped != (bool)t->dropped) {
            fail_header(x, pk, t);
            diff_row(x, "(dropped)", t->dropped ? "true" : "false", dropped ? "true" : "false");
            first_error(x, t->node, "test failed: dropped is %s", dropped ? "true" : "false", "");
            ok = false;
        }
    }
    if (ok) {
        x->res->passed++;
    } else {
        x->res->failed++;
        if (!x->res->first_error[0])
            first_error(x, t->node, "test failed%s%s", "", "");
    }
}

int lsf_ruleset_run_tests(lsf_ruleset *rs, FILE *report, bool strict, lsf_rules_test_result *res)
{
    memset(res, 0, sizeof(*res));
    tctx x = {.rs = rs, .out = report, .res = res};
    x.covered = calloc(rs->nrules ? rs->nrules : 1, 1);
    uint32_t *all = calloc(rs->nrules ? rs->nrules : 1, sizeof(uint32_t));
    uint32_t *pf = calloc(rs->nrules ? rs->nrules : 1, sizeof(uint32_t));
    if (!x.covered || !all || !pf)
        lsf_die("out of memory");
    lsf_batch *b = lsf_batch_new(1);
    for (size_t p = 0; p < rs->npacks; p++)
        for (uint32_t i = 0; i < rs->packs[p].ntests; i++)
            run_one(&x, b, &rs->packs[p], &rs->packs[p].tests[i], all, pf);
    for (size_t i = 0; i < rs->nrules; i++) {
        if (x.covered[i])
            continue;
        res->untested++;
        const lsf_node *at = lsf_node_get(rs->rules[i].node, "id");
        if (report)
            fprintf(report, "WARN %s:%d:%d: rule %s has no test that expects it\n", at->file,
                    at->line, at->col, rs->rules[i].id);
    }
    lsf_batch_free(b);
    free(all);
    free(pf);
    free(x.covered);
    bool bad = res->failed || res->engine || (strict && (res->ambiguous || res->untested));
    if (bad && !res->first_error[0])
        snprintf(res->first_error, sizeof(res->first_error),
                 "%u ambiguous test lines, %u rules without a test (strict)", res->ambiguous,
                 res->untested);
    return bad ? -1 : 0;
}
