/* test_gates.c - the shortcuts that keep rules and detections from trying
 * what cannot match, and that they never change a result:
 *  - lsf_pattern_any_literals: a literal of each branch of a required
 *    alternation (and none for optional ones, lookarounds, (?x), branches
 *    without a literal), caseless when (?i) appears;
 *  - rules served by such literals: classified exactly as when every rule
 *    is tried, and the database holds no full expression for them; rules
 *    whose required literal is common, sharpened by such literals (not by
 *    month-like enumerations), counted once whatever number occur;
 *  - always-tried rules gated by a field their `when` requires (and not by
 *    an `exists: false` condition);
 *  - a winner's fields: each name once, whether new or already on the
 *    event (commit's name summary never appends a name that is there);
 *  - reserved names (rule.id) read as dynamic fields, still not writable;
 *  - detection gates (detect/gate.c): eq / in / prefix on rule.id, a
 *    sequence gated by its steps, ungated detections, and the bits against
 *    each detection's `when` over many events.
 * Threads: single-threaded.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "core/log.h"
#include "detect/detect.h"
#include "parsers/parse.h"
#include "rules/rules_int.h"
#include "tmpdir.h"

static int pack_seq;

static int setup(void **state)
{
    (void)state;
    lsf_log_threshold = LSF_LOG_ERROR;
    return tmpdir_make("gates");
}


static lsf_ruleset *load(const char *text, bool no_prefilter)
{
    char dir[128], path[192];
    snprintf(dir, sizeof(dir), "%s/set%d", tmpdir, pack_seq++);
    assert_int_equal(mkdir(dir, 0700), 0);
    snprintf(path, sizeof(path), "%s/p.yaml", dir);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
    lsf_rules_opts o = {.nworkers = 1, .quiet = true, .no_prefilter = no_prefilter};
    lsf_errbuf err = {{0}};
    const char *d = dir;
    lsf_ruleset *rs = lsf_ruleset_load(&d, 1, &o, &err);
    if (!rs)
        fail_msg("load: %s", err.msg);
    return rs;
}

static lsf_event *parse(lsf_batch *b, const char *line)
{
    lsf_batch_reset(b);
    lsf_event *ev = lsf_batch_push_record(b, line, strlen(line), 1709460000000000000LL);
    lsf_parse_opts po = {.tz_mode = LSF_TZ_UTC, .body_json = true};
    lsf_parse_event(b, ev, &po);
    return ev;
}

static const char *classify(lsf_ruleset *rs, lsf_batch *b, const char *line)
{
    int r = lsf_ruleset_apply(rs, b, parse(b, line), 0);
    return r >= 0 ? lsf_ruleset_rule_id(rs, (size_t)r) : NULL;
}

/* Each line classifies as its expected rule id (NULL: none) by ruleset a,
 * and b agrees with a on every line. */
static void expect_classes(lsf_ruleset *a, lsf_batch *ba, lsf_ruleset *b, lsf_batch *bb,
                           const char *const (*lines)[2], size_t n)
{
    for (size_t i = 0; i < n; i++) {
        const char *ga = classify(a, ba, lines[i][0]), *gb = classify(b, bb, lines[i][0]);
        if ((ga == NULL) != (lines[i][1] == NULL) || (ga && strcmp(ga, lines[i][1]) != 0))
            fail_msg("'%s': got %s, want %s", lines[i][0], ga ? ga : "none",
                     lines[i][1] ? lines[i][1] : "none");
        assert_true((ga == NULL) == (gb == NULL) && (!ga || strcmp(ga, gb) == 0));
    }
}

static const lsf_rule *rule_by_id(const lsf_ruleset *rs, const char *id)
{
    for (size_t i = 0; i < rs->nrules; i++)
        if (strcmp(rs->rules[i].id, id) == 0)
            return &rs->rules[i];
    fail_msg("no rule %s", id);
    return NULL;
}

/* ---- any-of literals ------------------------------------------------------------- */

/* The literals, sorted and joined by '|', or "-" when there are none. */
static const char *any_lits(const char *re, bool *caseless)
{
    static char out[512];
    lsf_litset s;
    if (lsf_pattern_any_literals(re, 3, &s) < 0)
        return "-";
    for (size_t i = 0; i < s.n; i++)
        for (size_t k = i + 1; k < s.n; k++)
            if (strcmp(s.v[k], s.v[i]) < 0) {
                char *t = s.v[i];
                s.v[i] = s.v[k];
                s.v[k] = t;
            }
    out[0] = 0;
    for (size_t i = 0; i < s.n; i++)
        snprintf(out + strlen(out), sizeof(out) - strlen(out), "%s%s", i ? "|" : "", s.v[i]);
    if (caseless)
        *caseless = s.caseless;
    lsf_litset_free(&s);
    return out;
}

static void test_any_literals(void **state)
{
    (void)state;
    bool ci = true;
    assert_string_equal(any_lits("^\\[(?<l>x|y)\\] (?:upstream timed out|connect\\(\\) failed|"
                                 "no (?:live|dead) upstreams)[^,]*",
                                 &ci),
                        " upstreams|connect() failed|upstream timed out");
    assert_false(ci);
    /* the top level alternates */
    assert_string_equal(any_lits("^fatal: .*|^panic: (.*)$", NULL), "fatal: |panic: ");
    /* the alternation whose shortest literal is longest wins */
    assert_string_equal(any_lits("(?:ab1|cde) (?:error|warning) x", NULL), "error|warning");
    /* inside a named group taken once, and an atomic one */
    assert_string_equal(any_lits("^(?<a>pre (?>one two|three four)+)", NULL),
                        "one two|three four");
    /* (?i) anywhere: caseless */
    assert_string_equal(any_lits("(?i)x(?:alpha|beta)", &ci), "alpha|beta");
    assert_true(ci);
    /* nothing usable */
    assert_string_equal(any_lits("^(?:alpha|beta)?x", NULL), "-");      /* optional */
    assert_string_equal(any_lits("^(?:alpha|beta)*x", NULL), "-");      /* optional */
    assert_string_equal(any_lits("^(?=alpha|beta)x", NULL), "-");       /* lookahead */
    assert_string_equal(any_lits("^(?:alpha|[0-9]+)x", NULL), "-");     /* a branch without */
    assert_string_equal(any_lits("^(?:alpha|be)x", NULL), "-");         /* too short */
    assert_string_equal(any_lits("(?x) (?:alpha|beta)", NULL), "-");    /* extended */
    assert_string_equal(any_lits("(*UTF)(?:alpha|beta)", NULL), "-");   /* verbs */
    assert_string_equal(any_lits("(?|(alpha)|(beta))", NULL), "-");     /* branch reset */
    /* an escaped paren opens no group: the top level alternates */
    assert_string_equal(any_lits("\\(?:alpha|beta\\)", NULL), ":alpha|beta)");
    assert_string_equal(any_lits("[(](?:alpha|beta)x", NULL), "alpha|beta");
    assert_string_equal(any_lits("plain text", NULL), "-");
    /* a branch without a literal stands on the alternation it requires */
    assert_string_equal(any_lits("^x (?:(?i:/(?:wp-login\\.php|\\.env))|/etc/passwd)", &ci),
                        ".env|/etc/passwd|wp-login.php");
    assert_true(ci);
    assert_string_equal(any_lits("^x (?:/(?:wp|[0-9]+)|/etc/passwd)", NULL), "-");
}

/* Rules whose required literal many rules share are sharpened by an
 * alternation of longer words, not by one of short ones (month names). */
static void test_sharpened_rules(void **state)
{
    (void)state;
    lsf_sbuf p = {0};
    lsf_sbuf_adds(&p, "pack: s\nrules:\n");
    for (int i = 0; i < 9; i++)
        lsf_sbuf_addf(&p, "  - id: s.r%d\n    match: '^GET \\S+ (?<n%d>\\d+)$'\n", i, i);
    lsf_sbuf_adds(&p, "  - id: s.probe\n    priority: 5\n"
                      "    match: '^GET \\S*(?:/admin|/login)\\S* \\d+$'\n"
                      "  - id: s.month\n    priority: 5\n"
                      "    match: '^GET \\S+ (?:Jan|Feb) \\d+$'\n");
    lsf_ruleset *a = load(p.p, false), *b = load(p.p, true);
    lsf_sbuf_free(&p);
    const lsf_rule *probe = rule_by_id(a, "s.probe"), *month = rule_by_id(a, "s.month");
    assert_int_equal(probe->nlits, 1);
    assert_int_equal(probe->nany, 2);
    assert_int_equal(month->nany, 0);
    static const char *const lines[][2] = {
        {"GET /index 200", "s.r0"},     {"GET /admin/x 403", "s.probe"},
        {"GET /a/login 200", "s.probe"}, {"GET /x Feb 200", "s.month"},
        {"GET /adm 200", "s.r0"},       {"POST /admin 200", NULL},
    };
    lsf_batch *ba = lsf_batch_new(2), *bb = lsf_batch_new(2);
    expect_classes(a, ba, b, bb, lines, sizeof(lines) / sizeof(lines[0]));
    /* the probe rule is no candidate of a line without its words, and is
     * one, once, with two of them */
    uint32_t out[16];
    lsf_ruleset_matches(a, parse(ba, "GET /index 200"), 0, false, out, 16);
    uint32_t pi = (uint32_t)(probe - a->rules), seen = 0;
    for (uint32_t k = 0; k < a->workers[0].ncand; k++)
        seen += a->workers[0].cand[k] == pi;
    assert_int_equal(seen, 0);
    lsf_ruleset_matches(a, parse(ba, "GET /admin/login 200"), 0, false, out, 16);
    for (uint32_t k = 0; k < a->workers[0].ncand; k++)
        seen += a->workers[0].cand[k] == pi;
    assert_int_equal(seen, 1);
    lsf_batch_free(ba);
    lsf_batch_free(bb);
    lsf_ruleset_unref(a);
    lsf_ruleset_unref(b);
}

static const char any_pack[] =
    "pack: a\n"
    "rules:\n"
    "  - id: a.upstream\n"
    "    match: '^\\[(?<log.level>error|warn)\\] (?<error.message>(?:upstream timed out|"
    "connect\\(\\) failed|no live upstreams)[^,]*)'\n"
    "  - id: a.fatal\n"
    "    match: '^(?<log.level>fatal|panic): (?<error.message>.*)$'\n"
    "  - id: a.case\n"
    "    match: '(?i)^(?:disk full|disk failed)$'\n"
    "  - id: a.other\n"
    "    priority: -1\n"
    "    match: '^\\[(?<log.level>error|crit)\\] (?<error.message>.*)$'\n";

static void test_any_literal_rules(void **state)
{
    (void)state;
    lsf_ruleset *a = load(any_pack, false), *b = load(any_pack, true);
    /* every rule is served by literals: no full expression in the database */
    assert_int_equal(a->generic.nexprs, a->generic.nlits);
    assert_int_equal(rule_by_id(a, "a.upstream")->nlits, 0);
    assert_int_equal(rule_by_id(a, "a.upstream")->nany, 3);
    assert_int_equal(rule_by_id(a, "a.case")->nany, 2);
    assert_true(rule_by_id(a, "a.case")->any_caseless);
    static const char *const lines[][2] = {
        {"[error] upstream timed out (110) while reading", "a.upstream"},
        {"[warn] connect() failed (111)", "a.upstream"},
        {"[error] no live upstreams while connecting", "a.upstream"},
        {"[error] something else", "a.other"},
        {"[crit] upstream timed out", "a.other"},
        {"[info] upstream timed out", NULL},
        {"fatal: bind failed", "a.fatal"},
        {"panic: out of memory", "a.fatal"},
        {"fatal bind failed", NULL},
        {"DISK FULL", "a.case"},
        {"Disk Failed", "a.case"},
        {"disk fine", NULL},
    };
    lsf_batch *ba = lsf_batch_new(2), *bb = lsf_batch_new(2);
    expect_classes(a, ba, b, bb, lines, sizeof(lines) / sizeof(lines[0]));
    lsf_batch_free(ba);
    lsf_batch_free(bb);
    lsf_ruleset_unref(a);
    lsf_ruleset_unref(b);
}

/* ---- always-tried rules gated by a field ----------------------------------------- */

static const char gate_pack[] =
    "pack: g\n"
    "rules:\n"
    "  - id: g.error\n"
    "    when: {log.level: [error, ERROR]}\n"
    "  - id: g.entry\n"
    "    priority: -10\n"
    "    when: {log.level: {exists: true}}\n"
    "  - id: g.nolevel\n"
    "    priority: -20\n"
    "    when: {log.level: {exists: false}, kind: {exists: true}}\n"
    "  - id: g.absent_only\n"
    "    priority: -30\n"
    "    when: {other: {exists: false}}\n";

static void test_always_gate(void **state)
{
    (void)state;
    lsf_ruleset *rs = load(gate_pack, false);
    const lsf_rgroup *g = &rs->generic;
    assert_int_equal(g->nalways, 4);
    /* the gates: log.level, log.level, kind (not the exists:false), none */
    for (uint32_t k = 0; k < g->nalways; k++) {
        const lsf_rule *r = &rs->rules[g->always[k]];
        int32_t c = g->always_gate[k];
        if (strcmp(r->id, "g.absent_only") == 0) {
            assert_int_equal(c, -1);
            continue;
        }
        assert_true(c >= 0);
        const char *want = strcmp(r->id, "g.nolevel") == 0 ? "kind" : "log.level";
        assert_true(lsf_str_eq_cstr(r->conds[c].field.name, want));
    }
    lsf_batch *b = lsf_batch_new(2);
    assert_string_equal(classify(rs, b, "{\"level\":\"error\",\"message\":\"x\"}"), "g.error");
    assert_string_equal(classify(rs, b, "{\"level\":\"info\",\"message\":\"x\"}"), "g.entry");
    assert_string_equal(classify(rs, b, "{\"kind\":\"k\",\"message\":\"x\"}"), "g.nolevel");
    assert_string_equal(classify(rs, b, "{\"message\":\"x\"}"), "g.absent_only");
    assert_string_equal(classify(rs, b, "plain line"), "g.absent_only");
    assert_null(classify(rs, b, "{\"other\":1,\"message\":\"x\"}"));
    /* the candidates of a line without log.level or kind: only g.absent_only */
    uint32_t out[8];
    lsf_event *ev = parse(b, "{\"other\":1,\"message\":\"x\"}");
    assert_int_equal(lsf_ruleset_matches(rs, ev, 0, false, out, 8), 0);
    ev = parse(b, "{\"message\":\"x\"}");
    assert_int_equal(lsf_ruleset_matches(rs, ev, 0, false, out, 8), 1);
    assert_int_equal(rs->workers[0].ncand, 1);
    lsf_batch_free(b);
    lsf_ruleset_unref(rs);
}

/* ---- writing the winner: new names appended, present ones replaced ------------------ */

static unsigned count_named(const lsf_event *ev, const char *name)
{
    unsigned n = 0;
    for (uint16_t i = 0; i < ev->nfields; i++)
        n += lsf_str_eq_cstr(ev->fields[i].name, name);
    return n;
}

static void test_commit_fields(void **state)
{
    (void)state;
    lsf_ruleset *rs = load("pack: w\nrules:\n"
                           "  - id: w.r\n"
                           "    match: '^(?<user.name>\\w+) (?<n:int>\\d+) (?<fresh>\\w+)'\n"
                           "    severity: low\n"
                           "    set: {lvl: a, other: b}\n"
                           "    copy: {copied: [lvl0, user.name], copied2: [nope, user.name]}\n",
                           false);
    lsf_batch *b = lsf_batch_new(2);
    /* every field the rule writes, some already on the event (from JSON) */
    lsf_event *ev = parse(b, "{\"message\":\"bob 42 new\",\"user.name\":\"alice\",\"n\":\"x\","
                             "\"lvl\":\"z\",\"lvl0\":\"c\",\"copied\":1,\"rule.id\":\"old\"}");
    assert_int_equal(count_named(ev, "user.name"), 1);
    assert_true(lsf_ruleset_apply(rs, b, ev, 0) >= 0);
    static const char *const names[] = {"user.name", "n", "fresh", "lvl", "other", "copied",
                                        "rule.id", "rule.ruleset", "event.severity",
                                        "rule.severity", "lvl0", "copied2"};
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
        if (count_named(ev, names[i]) != 1)
            fail_msg("%s appears %u times", names[i], count_named(ev, names[i]));
    char scratch[48];
    lsf_str v;
    assert_true(lsf_event_get_str(ev, LSF_STR_LIT("user.name"), scratch, &v) && lsf_str_eq_cstr(v, "bob"));
    assert_true(lsf_event_get_str(ev, LSF_STR_LIT("n"), scratch, &v) && lsf_str_eq_cstr(v, "42"));
    assert_true(lsf_event_get_str(ev, LSF_STR_LIT("lvl"), scratch, &v) && lsf_str_eq_cstr(v, "a"));
    assert_true(lsf_event_get_str(ev, LSF_STR_LIT("copied"), scratch, &v) && lsf_str_eq_cstr(v, "c"));
    /* copies run before captures: the event's own user.name, past an absent source */
    assert_true(lsf_event_get_str(ev, LSF_STR_LIT("copied2"), scratch, &v) &&
                lsf_str_eq_cstr(v, "alice"));
    assert_true(lsf_event_get_str(ev, LSF_STR_LIT("rule.id"), scratch, &v) && lsf_str_eq_cstr(v, "w.r"));
    lsf_batch_free(b);
    lsf_ruleset_unref(rs);
}

/* ---- reserved names ----------------------------------------------------------------- */

static void test_reserved_fields(void **state)
{
    (void)state;
    assert_int_equal(lsf_fieldref_make("rule.id").fx, LSF_FX_RESERVED);
    assert_int_equal(lsf_fieldref_make("event.severity").fx, LSF_FX_RESERVED);
    assert_int_equal(lsf_fieldref_make("log.syslog.priority").fx, LSF_FX_READONLY);
    assert_int_equal(lsf_fieldref_make("event.original").fx, LSF_FX_READONLY);
    assert_int_equal(lsf_fieldref_make("user.name").fx, LSF_FX_DYNAMIC);
    lsf_batch *b = lsf_batch_new(2);
    lsf_event *ev = parse(b, "<13>1 2024-03-03T10:00:00Z h app - - - hi");
    lsf_event_set_str(b, ev, LSF_STR_LIT("rule.id"), LSF_STR_LIT("x.y"));
    lsf_event_set_int(b, ev, LSF_STR_LIT("event.severity"), 3);
    char scratch[48];
    lsf_str v;
    lsf_fieldref id = lsf_fieldref_make("rule.id"), sev = lsf_fieldref_make("event.severity");
    lsf_fieldref pri = lsf_fieldref_make("log.syslog.priority");
    assert_true(lsf_fieldref_get(ev, &id, scratch, &v) && lsf_str_eq_cstr(v, "x.y"));
    assert_true(lsf_fieldref_get(ev, &sev, scratch, &v) && lsf_str_eq_cstr(v, "3"));
    assert_true(lsf_fieldref_get(ev, &pri, scratch, &v) && lsf_str_eq_cstr(v, "13"));
    lsf_batch_free(b);
    /* still not writable */
    char dir[128], path[192];
    snprintf(dir, sizeof(dir), "%s/ro%d", tmpdir, pack_seq++);
    assert_int_equal(mkdir(dir, 0700), 0);
    snprintf(path, sizeof(path), "%s/p.yaml", dir);
    FILE *f = fopen(path, "w");
    fputs("pack: r\nrules:\n  - id: r.x\n    match: 'x'\n    set: {rule.id: y}\n", f);
    fclose(f);
    lsf_rules_opts o = {.nworkers = 1, .quiet = true};
    lsf_errbuf err = {{0}};
    const char *d = dir;
    assert_null(lsf_ruleset_load(&d, 1, &o, &err));
    assert_non_null(strstr(err.msg, "set by logsift itself"));
}

/* ---- detection gates ---------------------------------------------------------------- */

static const char det_yaml[] =
    "- {id: d.in, when: {rule.id: [s.fail, s.bad]}, group_by: [host.name], threshold: {count: 9, window: 1m}}\n"
    "- {id: d.pfx, when: {rule.id: {prefix: fw.}, port: {exists: true}}, group_by: [host.name], "
    "threshold: {count: 9, window: 1m}}\n"
    "- {id: d.any, group_by: [host.name], threshold: {count: 9, window: 1m}}\n"
    "- id: d.seq\n"
    "  group_by: [host.name]\n"
    "  sequence: {within: 10m, steps: [{when: {rule.id: s.fail}}, {when: {rule.id: [s.ok, s.fail]}}]}\n"
    "- {id: d.num, when: {status: {ge: 400}}, group_by: [host.name], threshold: {count: 9, window: 1m}}\n"
    "- {id: d.eq2, when: {status: {ge: 0}, rule.id: s.ok}, group_by: [host.name], threshold: {count: 9, window: 1m}}\n"
    "- id: d.seq_mixed\n"
    "  group_by: [host.name]\n"
    "  sequence: {within: 10m, steps: [{when: {rule.id: s.fail}}, {when: {status: 200}}]}\n";

static lsf_detset *det_set(const char *yaml)
{
    lsf_errbuf err = {{0}};
    lsf_node *root = lsf_yaml_load_string("<test>", yaml, &err);
    if (!root)
        fail_msg("%s", err.msg);
    lsf_detset *set = calloc(1, sizeof(*set));
    set->runs = calloc(root->nchild, sizeof(lsf_detrun *));
    atomic_init(&set->refs, 1);
    lsf_det_defaults d = {.suppress_ns = 1, .rate_n = 100, .rate_ns = NS_PER_S, .exemplars = 1,
                          .exemplar_bytes = 64, .max_keys = 100, .max_bytes = 1 << 20,
                          .buckets = 10, .severity = 3};
    for (const lsf_node *n = root->child; n; n = n->next) {
        lsf_detdef def;
        if (lsf_detdef_parse(&def, n, "test", &d, &err) < 0)
            fail_msg("%s", err.msg);
        set->runs[set->n++] = lsf_detrun_new(&def, 1, "test");
    }
    lsf_node_free(root);
    return set;
}

/* Whether detection ri's `when` (or one of its steps) can hold on ev. */
static bool det_can_match(const lsf_detdef *d, const lsf_event *ev)
{
    if (d->when)
        return lsf_when_match(d->when, ev);
    if (d->type != LSF_DET_SEQUENCE)
        return true;
    for (uint32_t s = 0; s < d->nsteps; s++)
        if (lsf_when_match(d->steps[s].when, ev))
            return true;
    return false;
}

static void test_detection_gate(void **state)
{
    (void)state;
    lsf_detset *set = det_set(det_yaml);
    lsf_detgate *g = lsf_detgate_build(set);
    assert_int_equal(lsf_detgate_words(g), 1);
    static const char *const ids[] = {NULL, "s.fail", "s.bad", "s.ok", "fw.drop", "fw", "s.failx", "x"};
    static const int status[] = {-1, 200, 404};
    /* which detections each rule.id lets through (without port / status):
     * d.any always; d.num and d.seq_mixed have no eq/in/prefix gate on
     * rule.id for every step, so they are ungated or gated by status */
    lsf_batch *b = lsf_batch_new(4);
    int checked = 0;
    for (size_t i = 0; i < sizeof(ids) / sizeof(ids[0]); i++)
        for (size_t k = 0; k < 3; k++)
            for (int port = 0; port < 2; port++) {
                lsf_batch_reset(b);
                lsf_event *ev = lsf_batch_push(b);
                ev->host = LSF_STR_LIT("h");
                if (ids[i])
                    lsf_event_set_str(b, ev, LSF_STR_LIT("rule.id"),
                                      lsf_str_make(ids[i], strlen(ids[i])));
                if (status[k] >= 0)
                    lsf_event_set_int(b, ev, LSF_STR_LIT("status"), status[k]);
                if (port)
                    lsf_event_set_int(b, ev, LSF_STR_LIT("port"), 22);
                uint64_t bits = 0;
                lsf_detgate_select(g, ev, &bits);
                for (uint32_t ri = 0; ri < set->n; ri++) {
                    bool can = det_can_match(&set->runs[ri]->def, ev);
                    bool let = (bits >> ri) & 1;
                    if (can && !let)
                        fail_msg("%s blocked for rule.id=%s status=%d port=%d",
                                 set->runs[ri]->def.id, ids[i] ? ids[i] : "-", status[k], port);
                    checked++;
                }
                /* the gate is sharp where it can be: d.in and d.seq only for
                 * their ids, d.pfx only for fw.*, d.eq2 only for s.ok */
                bool fail_or_bad = ids[i] && (!strcmp(ids[i], "s.fail") || !strcmp(ids[i], "s.bad"));
                assert_int_equal((bits >> 0) & 1, fail_or_bad);
                assert_int_equal((bits >> 1) & 1, ids[i] && !strncmp(ids[i], "fw.", 3));
                assert_int_equal((bits >> 2) & 1, 1);
                assert_int_equal((bits >> 3) & 1,
                                 ids[i] && (!strcmp(ids[i], "s.fail") || !strcmp(ids[i], "s.ok")));
                assert_int_equal((bits >> 4) & 1, 1); /* `ge` is no gate */
                assert_int_equal((bits >> 5) & 1, ids[i] && !strcmp(ids[i], "s.ok"));
                assert_int_equal((bits >> 6) & 1, 1); /* steps gated by different fields */
            }
    assert_int_equal(checked, 8 * 3 * 2 * 7);
    lsf_batch_free(b);
    lsf_detgate_free(g);
    lsf_detset_unref(set);
}

/* A field gated by prefixes alone (no equality values to index). */
static void test_detection_gate_prefix_only(void **state)
{
    (void)state;
    lsf_detset *set = det_set("- {id: p, when: {rule.id: {prefix: fw.}}, group_by: [host.name], "
                              "threshold: {count: 9, window: 1m}}\n");
    lsf_detgate *g = lsf_detgate_build(set);
    lsf_batch *b = lsf_batch_new(2);
    lsf_event *ev = lsf_batch_push(b);
    uint64_t bits = 1;
    lsf_detgate_select(g, ev, &bits);
    assert_int_equal(bits, 0);
    lsf_event_set_str(b, ev, LSF_STR_LIT("rule.id"), LSF_STR_LIT("fw.x"));
    lsf_detgate_select(g, ev, &bits);
    assert_int_equal(bits, 1);
    lsf_batch_free(b);
    lsf_detgate_free(g);
    lsf_detset_unref(set);
}

/* More detections than a word: bits land in the right word. */
static void test_detection_gate_words(void **state)
{
    (void)state;
    lsf_sbuf y = {0};
    for (int i = 0; i < 150; i++)
        lsf_sbuf_addf(&y, "- {id: w%d, when: {rule.id: r%d}, group_by: [host.name], "
                          "threshold: {count: 9, window: 1m}}\n", i, i % 75);
    lsf_detset *set = det_set(y.p);
    lsf_sbuf_free(&y);
    lsf_detgate *g = lsf_detgate_build(set);
    assert_int_equal(lsf_detgate_words(g), 3);
    lsf_batch *b = lsf_batch_new(2);
    lsf_event *ev = lsf_batch_push(b);
    lsf_event_set_str(b, ev, LSF_STR_LIT("rule.id"), LSF_STR_LIT("r70"));
    uint64_t bits[3];
    lsf_detgate_select(g, ev, bits);
    assert_int_equal(bits[0], 0);
    assert_int_equal(bits[1], 1ull << (70 - 64));
    assert_int_equal(bits[2], 1ull << (145 - 128));
    lsf_batch_free(b);
    lsf_detgate_free(g);
    lsf_detset_unref(set);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_any_literals),     cmocka_unit_test(test_any_literal_rules),
        cmocka_unit_test(test_sharpened_rules),  cmocka_unit_test(test_commit_fields),
        cmocka_unit_test(test_always_gate),      cmocka_unit_test(test_reserved_fields),
        cmocka_unit_test(test_detection_gate),   cmocka_unit_test(test_detection_gate_words),
        cmocka_unit_test(test_detection_gate_prefix_only),
    };
    return cmocka_run_group_tests(tests, setup, tmpdir_remove);
}
