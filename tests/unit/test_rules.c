/* test_rules.c - the rule engine end to end: packs written to a temporary
 * directory, loaded and compiled, lines parsed and classified.
 * Covers typed captures, `when` conditions (CIDR, numbers, lists, prefixes,
 * existence), the priority rule, drop, set/copy/tags/ATT&CK fields, ReDoS
 * limits (hit, counted, line kept), load errors with positions, inline tests,
 * and that the prefilter gives exactly the results of trying every rule on
 * a few thousand generated lines.
 * Threads: single-threaded (worker slot 0).
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
#include "parsers/parse.h"
#include "rules/rules_int.h"
#include "tmpdir.h"

static int pack_seq;

static int setup(void **state)
{
    (void)state;
    lsf_log_threshold = LSF_LOG_ERROR; /* expected warnings stay quiet */
    return tmpdir_make("rules");
}


/* Writes each text as a pack file of a fresh directory; returns the dir. */
static const char *write_packs(const char *const *texts, size_t n)
{
    static char dir[128];
    snprintf(dir, sizeof(dir), "%s/set%d", tmpdir, pack_seq++);
    assert_int_equal(mkdir(dir, 0700), 0);
    for (size_t i = 0; i < n; i++) {
        char path[192];
        snprintf(path, sizeof(path), "%s/%02zu.yaml", dir, i);
        FILE *f = fopen(path, "w");
        assert_non_null(f);
        fputs(texts[i], f);
        fclose(f);
    }
    return dir;
}

static lsf_ruleset *load(const char *text, const lsf_rules_opts *o, lsf_errbuf *err)
{
    const char *dir = write_packs(&text, 1);
    lsf_rules_opts def = {.nworkers = 1, .quiet = true};
    return lsf_ruleset_load(&dir, 1, o ? o : &def, err);
}

static lsf_ruleset *load_ok(const char *text)
{
    lsf_errbuf err = {{0}};
    lsf_ruleset *rs = load(text, NULL, &err);
    if (!rs)
        fail_msg("load: %s", err.msg);
    return rs;
}

/* Parses and classifies one line; returns the winning rule's id or NULL. */
static const char *classify(lsf_ruleset *rs, lsf_batch *b, const char *line, lsf_event **out)
{
    lsf_batch_reset(b);
    lsf_event *ev = lsf_batch_push_record(b, line, strlen(line), 1709460000000000000LL);
    lsf_parse_opts po = {.tz_mode = LSF_TZ_UTC, .body_json = true};
    lsf_parse_event(b, ev, &po);
    int r = lsf_ruleset_apply(rs, b, ev, 0);
    if (out)
        *out = ev;
    return r >= 0 ? lsf_ruleset_rule_id(rs, (size_t)r) : NULL;
}

static const lsf_field *field(const lsf_event *ev, const char *name)
{
    return lsf_event_find(ev, lsf_str_make(name, strlen(name)));
}

static void assert_str_field(const lsf_event *ev, const char *name, const char *want)
{
    char scratch[48];
    lsf_str v;
    if (!lsf_event_get_str(ev, lsf_str_make(name, strlen(name)), scratch, &v))
        fail_msg("field %s absent, want '%s'", name, want);
    if (v.len != strlen(want) || memcmp(v.ptr, want, v.len) != 0)
        fail_msg("field %s = '%.*s', want '%s'", name, (int)v.len, v.ptr, want);
}

static bool has_tag(const lsf_event *ev, const char *tag)
{
    for (uint16_t i = 0; i < ev->ntags; i++)
        if (lsf_str_eq_cstr(ev->tags[i], tag))
            return true;
    return false;
}

/* ---- captures ----------------------------------------------------------------- */

static const char typed_pack[] =
    "pack: t\n"
    "rules:\n"
    "  - id: t.typed\n"
    "    match: '^v %{INT:n:int} %{NUMBER:f:float} %{IP:addr:ip} (?<flag:bool>\\w+) "
    "(?<s>\\S*) (?<source.port:int>\\d+)(?: (?<missing>x))?'\n"
    "  - id: t.retype\n"
    "    match: '^w %{WORD:n:int} %{NOTSPACE:a:ip}$'\n"
    "  - id: t.fixed\n"
    "    match: '^host (?<host.name>\\S+) pid %{INT:process.pid:int} (?<message>.*)$'\n"
    "  - id: t.dup\n"
    "    match: '^dup (?:a=(?<k>\\w+)|b=(?<k>\\w+))'\n";

static void test_typed_captures(void **state)
{
    (void)state;
    lsf_ruleset *rs = load_ok(typed_pack);
    lsf_batch *b = lsf_batch_new(4);
    lsf_event *ev;
    assert_string_equal(classify(rs, b, "v -42 1.5e2 2001:db8::1 yes  8080", &ev), "t.typed");
    const lsf_field *f = field(ev, "n");
    assert_non_null(f);
    assert_int_equal(f->type, LSF_T_INT);
    assert_int_equal(f->v.i, -42);
    f = field(ev, "f");
    assert_int_equal(f->type, LSF_T_FLOAT);
    assert_true(f->v.f == 150.0);
    assert_int_equal(field(ev, "addr")->type, LSF_T_STR);
    assert_str_field(ev, "addr", "2001:db8::1");
    assert_int_equal(field(ev, "flag")->type, LSF_T_BOOL);
    assert_true(field(ev, "flag")->v.b);
    assert_int_equal(field(ev, "s")->type, LSF_T_STR); /* empty string match: set, empty */
    assert_int_equal(field(ev, "s")->v.s.len, 0);
    assert_int_equal(field(ev, "source.port")->v.i, 8080);
    assert_null(field(ev, "missing")); /* group not taken: nothing */
    assert_false(has_tag(ev, "_capture_type_error"));

    /* a value that is not of its type: not set, tagged, still matched */
    assert_string_equal(classify(rs, b, "w abc 999.1.1.1", &ev), "t.retype");
    assert_null(field(ev, "n"));
    assert_null(field(ev, "a"));
    assert_true(has_tag(ev, "_capture_type_error"));
    uint64_t limits, types;
    lsf_ruleset_take_counts(rs, 0, &limits, &types);
    assert_int_equal(types, 1);

    /* captures into well-known fields replace them */
    assert_string_equal(classify(rs, b, "host web7 pid 31 the rest", &ev), "t.fixed");
    assert_true(lsf_str_eq_cstr(ev->host, "web7"));
    assert_true(lsf_str_eq_cstr(ev->procid, "31"));
    assert_true(lsf_str_eq_cstr(ev->message, "the rest"));

    /* the same field in two alternatives: the one that took part */
    assert_string_equal(classify(rs, b, "dup b=second", &ev), "t.dup");
    assert_str_field(ev, "k", "second");
    lsf_batch_free(b);
    lsf_ruleset_unref(rs);
}

/* ---- when ----------------------------------------------------------------------- */

static const char when_pack[] =
    "pack: w\n"
    "rules:\n"
    "  - id: w.cidr4\n"
    "    when: {src: {cidr: [10.0.0.0/8, 192.168.0.0/16]}}\n"
    "  - id: w.cidr6\n"
    "    when: {src: {cidr: '2001:db8::/32'}}\n"
    "  - id: w.notcidr\n"
    "    when: {src: {not_cidr: 10.0.0.0/8}}\n"
    "  - id: w.num\n"
    "    when: {n: {ge: 500, lt: 600}}\n"
    "  - id: w.numtext\n"
    "    when: {process.name: app, log.syslog.severity.code: {le: 3}}\n"
    "    match: '^c'\n"
    "  - id: w.list\n"
    "    when: {process.name: [x1, x2, x3]}\n"
    "  - id: w.prefix\n"
    "    when: {process.name: {prefix: [post, exim]}, host.name: {suffix: .example.com}}\n"
    "  - id: w.contains\n"
    "    when: {message: {contains: needle}, process.name: {ne: app}}\n"
    "  - id: w.exists\n"
    "    when: {process.name: {exists: false}, user: {exists: true}}\n"
    "  - id: w.json\n"
    "    when: {client: {cidr: 198.51.100.0/24}, bytes: {gt: 1000}, log.level: [warn, error]}\n"
    "  - id: w.facility\n"
    "    when: {log.syslog.facility.name: authpriv, process.name: {not_in: [app, x1]}}\n";

static void test_when(void **state)
{
    (void)state;
    lsf_ruleset *rs = load_ok(when_pack);
    lsf_batch *b = lsf_batch_new(4);
    static const struct {
        const char *line, *want;
    } rows[] = {
        /* key=value lines: the kv parser makes the fields the conditions test */
        {"src=10.1.2.3 a=1", "w.cidr4"},
        {"src=192.168.7.7 a=1", "w.cidr4"},
        {"src=2001:db8:1::5 a=1", "w.cidr6"},
        {"src=172.16.0.1 a=1", "w.notcidr"},
        {"src=2001:dead::1 a=1", "w.notcidr"},
        {"src=not-an-ip a=1", NULL},
        {"n=500 a=1", "w.num"},
        {"n=599 a=1", "w.num"},
        {"n=600 a=1", NULL},
        {"n=499 a=1", NULL},
        {"n=5.5e2 a=1", "w.num"},
        {"n=x a=1", NULL},
        {"<11>Mar  3 10:00:01 h app: c", "w.numtext"},   /* severity 3 */
        {"<12>Mar  3 10:00:01 h app: c", NULL},          /* severity 4 */
        {"<14>Mar  3 10:00:01 h x2: anything", "w.list"},
        {"<14>Mar  3 10:00:01 h x4: anything", NULL},
        {"<14>Mar  3 10:00:01 mx.example.com postfix/smtpd[1]: q", "w.prefix"},
        {"<14>Mar  3 10:00:01 mx.example.org postfix/smtpd[1]: q", NULL},
        {"<14>Mar  3 10:00:01 h other: a needle here", "w.contains"},
        {"<14>Mar  3 10:00:01 h app: a needle here", NULL},
        {"{\"user\":\"bob\",\"message\":\"hi\"}", "w.exists"},
        {"{\"message\":\"hi\"}", NULL},
        {"<86>Mar  3 10:00:01 h login: q", "w.facility"},
        /* conditions on fields the event has before any rule (JSON members) */
        {"{\"client\":\"198.51.100.7\",\"bytes\":1001,\"level\":\"warn\",\"message\":\"m\"}", "w.json"},
        {"{\"client\":\"198.51.100.7\",\"bytes\":\"2e3\",\"level\":\"error\",\"message\":\"m\"}", "w.json"},
        {"{\"client\":\"198.51.100.7\",\"bytes\":1000,\"level\":\"warn\",\"message\":\"m\"}", NULL},
        {"{\"client\":\"198.51.101.7\",\"bytes\":5000,\"level\":\"warn\",\"message\":\"m\"}", NULL},
        {"{\"client\":\"198.51.100.7\",\"bytes\":5000,\"level\":\"info\",\"message\":\"m\"}", NULL},
        {"<86>Mar  3 10:00:01 h x1: q", "w.list"},
    };
    for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
        const char *got = classify(rs, b, rows[i].line, NULL);
        if ((got == NULL) != (rows[i].want == NULL) || (got && strcmp(got, rows[i].want) != 0))
            fail_msg("'%s': got %s want %s", rows[i].line, got ? got : "(none)",
                     rows[i].want ? rows[i].want : "(none)");
    }
    lsf_batch_free(b);
    lsf_ruleset_unref(rs);
}

/* ---- which rule wins, what it writes ---------------------------------------- */

static void test_priority_and_effects(void **state)
{
    (void)state;
    static const char *const packs[] = {
        "pack: a\n"
        "rules:\n"
        "  - id: a.general\n"
        "    match: 'login'\n"
        "    severity: low\n"
        "  - id: a.shadowed\n"
        "    match: 'login failed'\n"
        "  - id: a.specific\n"
        "    priority: 5\n"
        "    match: 'login failed for (?<user.name>\\w+)'\n"
        "    severity: high\n"
        "    tags: [authentication, attack.t1110.001, attack.t1078]\n"
        "    set: {event.outcome: failure, n: 7, r: 0.5, b: true, q: '42', l: [x, 'y\"z']}\n"
        "    copy: {orig.host: [nothere, host.name], user.copy: user}\n"
        "  - id: a.catch_all\n"
        "    priority: -3\n"
        "    match: '.'\n",
        "pack: b\n"
        "rules:\n"
        "  - id: b.same_priority_later_pack\n"
        "    match: 'login failed'\n"
        "  - id: b.noise\n"
        "    priority: 1\n"
        "    match: '^heartbeat'\n"
        "    drop: true\n",
    };
    const char *dir = write_packs(packs, 2);
    lsf_rules_opts o = {.nworkers = 1, .quiet = true};
    lsf_errbuf err = {{0}};
    lsf_ruleset *rs = lsf_ruleset_load(&dir, 1, &o, &err);
    if (!rs)
        fail_msg("%s", err.msg);
    lsf_batch *b = lsf_batch_new(4);
    lsf_event *ev;
    assert_string_equal(classify(rs, b, "<14>Mar  3 10:00:01 h app: login failed for carol", &ev),
                        "a.specific");
    assert_str_field(ev, "user.name", "carol");
    assert_str_field(ev, "rule.id", "a.specific");
    assert_str_field(ev, "rule.ruleset", "a");
    assert_str_field(ev, "rule.severity", "high");
    assert_int_equal(field(ev, "event.severity")->v.i, 4);
    assert_str_field(ev, "event.outcome", "failure");
    assert_int_equal(field(ev, "n")->type, LSF_T_INT);
    assert_int_equal(field(ev, "r")->type, LSF_T_FLOAT);
    assert_int_equal(field(ev, "b")->type, LSF_T_BOOL);
    assert_int_equal(field(ev, "q")->type, LSF_T_STR);
    assert_int_equal(field(ev, "l")->type, LSF_T_JSON);
    assert_str_field(ev, "l", "[\"x\",\"y\\\"z\"]");
    assert_str_field(ev, "orig.host", "h");
    assert_null(field(ev, "user.copy"));
    assert_true(has_tag(ev, "authentication") && has_tag(ev, "attack.t1110.001"));
    assert_str_field(ev, "threat.framework", "MITRE ATT&CK");
    assert_str_field(ev, "threat.technique.id", "[\"T1110\",\"T1078\"]");
    assert_str_field(ev, "threat.technique.subtechnique.id", "[\"T1110.001\"]");
    /* strings written by the rule live in the batch arena, not in the set */
    lsf_str id = field(ev, "rule.id")->v.s;
    assert_true(id.ptr < rs->rules[0].blob || id.ptr >= rs->rules[0].blob + rs->rules[0].blob_len);

    /* equal priority: the rule loaded first wins (a.general is before
     * a.shadowed, and pack a before pack b) */
    assert_string_equal(classify(rs, b, "<14>Mar  3 10:00:01 h app: login failed", NULL),
                        "a.general");
    assert_string_equal(classify(rs, b, "<14>Mar  3 10:00:01 h app: login ok", NULL),
                        "a.general");
    assert_string_equal(classify(rs, b, "<14>Mar  3 10:00:01 h app: other", NULL), "a.catch_all");

    /* drop */
    assert_string_equal(classify(rs, b, "<14>Mar  3 10:00:01 h app: heartbeat ok", &ev),
                        "b.noise");
    assert_true(ev->flags & LSF_EV_DROPPED);
    lsf_ruleset_unref(rs);
    o.keep_dropped = true;
    rs = lsf_ruleset_load(&dir, 1, &o, &err);
    assert_non_null(rs);
    assert_string_equal(classify(rs, b, "<14>Mar  3 10:00:01 h app: heartbeat ok", &ev),
                        "b.noise");
    assert_false(ev->flags & LSF_EV_DROPPED);
    assert_true(has_tag(ev, "_drop"));

    /* the matches function sees every matching rule in rank order */
    uint32_t all[8];
    classify(rs, b, "<14>Mar  3 10:00:01 h app: login failed for dave", &ev);
    size_t n = lsf_ruleset_matches(rs, ev, 0, true, all, 8);
    assert_int_equal(n, 5);
    assert_string_equal(lsf_ruleset_rule_id(rs, all[0]), "a.specific");
    assert_string_equal(lsf_ruleset_rule_id(rs, all[1]), "a.general");
    lsf_batch_free(b);
    lsf_ruleset_unref(rs);
}

/* ---- runaway regexes -------------------------------------------------------------- */

static void test_redos_limit(void **state)
{
    (void)state;
    /* (\w+\s?)*$ backtracks exponentially on a long word followed by '!';
     * Hyperscan cannot prefilter it (it matches the empty string). */
    static const char pack[] = "pack: r\n"
                               "rules:\n"
                               "  - id: r.evil\n"
                               "    priority: 10\n"
                               "    match: '^(\\w+\\s?)*$'\n"
                               "  - id: r.fallback\n"
                               "    match: '!$'\n";
    lsf_rules_opts o = {.nworkers = 1, .quiet = true, .match_limit = 5000};
    lsf_errbuf err = {{0}};
    lsf_ruleset *rs = load(pack, &o, &err);
    assert_non_null(rs);
    assert_int_equal(lsf_ruleset_nalways(rs), 1);
    lsf_batch *b = lsf_batch_new(4);
    lsf_event *ev;
    char line[128];
    snprintf(line, sizeof(line), "%s", "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa!");
    /* the evil rule gives up at the limit; the line is kept and the next
     * candidate still classifies it */
    assert_string_equal(classify(rs, b, line, &ev), "r.fallback");
    assert_true(has_tag(ev, "_rule_limit"));
    assert_string_equal(classify(rs, b, line, &ev), "r.fallback");
    lsf_rule_stats s;
    lsf_ruleset_stats(rs, 0, &s);
    assert_string_equal(s.id, "r.evil");
    assert_int_equal(s.limit_hits, 2);
    assert_int_equal(s.evals, 2);
    uint64_t limits, types;
    lsf_ruleset_take_counts(rs, 0, &limits, &types);
    assert_int_equal(limits, 2);
    /* a harmless line is matched by the evil rule normally */
    assert_string_equal(classify(rs, b, "just words here", &ev), "r.evil");
    assert_false(has_tag(ev, "_rule_limit"));
    lsf_batch_free(b);
    lsf_ruleset_unref(rs);
}

/* ---- load errors with positions --------------------------------------------------- */

static void test_load_errors(void **state)
{
    (void)state;
    static const struct {
        const char *text, *want; /* want: substring after the file name */
    } rows[] = {
        {"pack: e\nrulez: []\n", ".yaml:2:1: unknown key 'rulez'"},
        {"pack: E!\n", ".yaml:1:7: 'pack' must be a name"},
        {"rules: []\n", ".yaml:1:1: the pack has no 'pack:' name"},
        {"pack: e\nrules:\n  - id: nodots\n    match: x\n", ".yaml:3:9: rule id 'nodots' must be dotted"},
        {"pack: e\nrules:\n  - id: e.a\n    match: x\n  - id: e.a\n    match: y\n",
         ".yaml:5:9: duplicate rule id 'e.a'"},
        {"pack: e\nrules:\n  - id: e.a\n    match: 'ab(c'\n",
         ".yaml:4:12: rule e.a: regex does not compile: missing closing parenthesis at offset 4\n"
         "    pattern: ab(c\n                 ^"},
        {"pack: e\nrules:\n  - id: e.a\n    match: 'x %{NOPE:y}'\n", ".yaml:4:12: unknown pattern %{NOPE}"},
        {"pack: e\nrules:\n  - id: e.a\n    match: '(?<rule.id>x)'\n",
         ".yaml:4:12: field 'rule.id' is set by logsift itself"},
        {"pack: e\nrules:\n  - id: e.a\n    when: {src: {cidr: 10.0.0.0/33}}\n",
         ".yaml:4:24: 'cidr': '10.0.0.0/33' is not an address or network"},
        {"pack: e\nrules:\n  - id: e.a\n    when: {n: {gte: 3}}\n", ".yaml:4:16: unknown condition 'gte'"},
        {"pack: e\nrules:\n  - id: e.a\n", ".yaml:3:5: rule e.a has neither 'when' nor 'match'"},
        {"pack: e\nrules:\n  - id: e.a\n    match: x\n    severity: severe\n",
         ".yaml:5:15: rule e.a: 'severity' is info, low, medium, high or critical"},
        {"pack: e\nrules:\n  - id: e.a\n    match: x\n    colour: red\n", ".yaml:5:5: unknown rule key 'colour'"},
        {"pack: e\npatterns:\n  X: 'a(b'\n", ".yaml:3:6: pattern X: regex does not compile"},
        {"pack: e\ntests:\n  - line: x\n", ".yaml:3:5: test has no 'expect'"},
        {"pack: e\ndetections:\n  - {group_by: [source.ip]}\n",
         ".yaml:3:5: each detection must be a map with an 'id'"},
        {"pack: e\nrules: [\n", ".yaml:3:1: YAML syntax error"},
    };
    for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
        lsf_errbuf err = {{0}};
        lsf_ruleset *rs = load(rows[i].text, NULL, &err);
        if (rs)
            fail_msg("row %zu loaded", i);
        if (!strstr(err.msg, rows[i].want))
            fail_msg("row %zu: error '%s' lacks '%s'", i, err.msg, rows[i].want);
    }
    /* detections are kept, not rejected */
    lsf_ruleset *rs = load_ok("pack: d\nrules:\n  - id: d.a\n    match: x\n"
                              "detections:\n  - id: d.burst\n    when: {rule.id: d.a}\n"
                              "    group_by: [source.ip]\n    threshold: {count: 10, window: 60s}\n");
    assert_non_null(rs->packs[0].detections);
    assert_int_equal(rs->packs[0].detections->nchild, 1);
    lsf_ruleset_unref(rs);
    /* two packs with one name */
    static const char *const two[] = {"pack: same\n", "pack: same\n"};
    const char *dir = write_packs(two, 2);
    lsf_rules_opts o = {.nworkers = 1, .quiet = true};
    lsf_errbuf err = {{0}};
    assert_null(lsf_ruleset_load(&dir, 1, &o, &err));
    assert_non_null(strstr(err.msg, "01.yaml:1:7: pack 'same' is also defined in"));
}

/* ---- inline tests ----------------------------------------------------------------- */

static void test_inline_tests(void **state)
{
    (void)state;
    static const char pack[] =
        "pack: it\n"
        "rules:\n"
        "  - id: it.a\n"
        "    when: {process.name: app}\n"
        "    match: 'port %{INT:source.port:int}'\n"
        "  - id: it.b\n"
        "    when: {process.name: app}\n"
        "    match: 'port'\n"
        "  - id: it.untested\n"
        "    match: zzz\n"
        "tests:\n"
        "  - line: '<14>Mar  3 10:00:01 h app: port 22'\n"
        "    expect: {rule.id: it.a, source.port: 22, host.name: h, rule.severity: null}\n"
        "  - line: '<14>Mar  3 10:00:01 h app: port 22'\n"
        "    expect: {rule.id: it.a, source.port: '22'}\n"
        "  - line: '<14>Mar  3 10:00:01 h app: port 23'\n"
        "    expect: {source.port: 24}\n"
        "  - line: '<14>Mar  3 10:00:01 h app: nothing'\n"
        "    expect: none\n"
        "  - line: '<14>Mar  3 10:00:01 h app: port x'\n"
        "    expect: none\n";
    lsf_ruleset *rs = load_ok(pack);
    lsf_rules_test_result res;
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    assert_int_equal(lsf_ruleset_run_tests(rs, f, false, &res), -1);
    fclose(f);
    assert_int_equal(res.tests, 5);
    assert_int_equal(res.passed, 3);
    assert_int_equal(res.failed, 2);
    assert_int_equal(res.ambiguous, 3); /* it.a and it.b, equal priority, on "port N" */
    assert_int_equal(res.untested, 2);  /* it.b and it.untested */
    assert_non_null(strstr(res.first_error, ".yaml:16:5: test failed: field source.port: got 23"));
    assert_non_null(strstr(buf, "source.port                    24 (int)"));
    assert_non_null(strstr(buf, "(no rule)"));
    assert_non_null(strstr(buf, "rule it.untested has no test"));
    free(buf);
    lsf_ruleset_unref(rs);

    /* equal priorities matching one line are reported */
    rs = load_ok("pack: amb\nrules:\n  - id: amb.x\n    match: foo\n  - id: amb.y\n    match: 'f.o'\n"
                 "tests:\n  - line: foo\n    expect: {rule.id: amb.x}\n"
                 "  - line: fao\n    expect: {rule.id: amb.y}\n");
    assert_int_equal(lsf_ruleset_run_tests(rs, NULL, false, &res), 0);
    assert_int_equal(res.ambiguous, 1);
    assert_int_equal(lsf_ruleset_run_tests(rs, NULL, true, &res), -1); /* strict */
    lsf_ruleset_unref(rs);
}

/* ---- the prefilter changes nothing but speed -------------------------------------- */

static const char *const apps[] = {"sshd", "nginx", "postfix/smtpd", "kernel", "cron", "app"};
static const char *const words[] = {"alpha", "beta", "gamma", "delta", "error", "failed",
                                    "accepted", "timeout", "denied", "session"};

static void test_prefilter_equivalence(void **state)
{
    (void)state;
    /* 300 rules from templates: literal heads, macros, alternations,
     * app-pinned and generic, a few Hyperscan cannot take */
    lsf_sbuf p = {0};
    lsf_sbuf_adds(&p, "pack: gen\nrules:\n");
    unsigned seed = 12345;
    for (int i = 0; i < 300; i++) {
        seed = seed * 1103515245u + 12345u;
        const char *w1 = words[(seed >> 8) % 10], *w2 = words[(seed >> 12) % 10];
        lsf_sbuf_addf(&p, "  - id: gen.r%d\n", i);
        if ((seed >> 16) % 3)
            lsf_sbuf_addf(&p, "    when: {process.name: '%s'}\n", apps[(seed >> 18) % 6]);
        lsf_sbuf_addf(&p, "    priority: %u\n", (seed >> 20) % 3);
        switch (i % 6) {
        case 0:
            lsf_sbuf_addf(&p, "    match: '^%s %s %%{INT:n%d:int}'\n", w1, w2, i % 7);
            break;
        case 1:
            lsf_sbuf_addf(&p, "    match: '%s (?:%s|x%d) from %%{IP:source.ip}'\n", w1, w2, i);
            break;
        case 2:
            lsf_sbuf_addf(&p, "    match: '(?i)%s[- ]%s\\b'\n", w1, w2);
            break;
        case 3:
            lsf_sbuf_addf(&p, "    match: '%s=%%{WORD:k%d} .*%s$'\n", w1, i % 5, w2);
            break;
        case 4:
            lsf_sbuf_addf(&p, "    match: '%s\\K %s'\n", w1, w2); /* Hyperscan: no */
            break;
        default:
            lsf_sbuf_addf(&p, "    match: '^(?:%s|%s) [0-9]{2,4}(?: user (?<user.name>\\S+))?$'\n", w1, w2);
        }
    }
    const char *dir = write_packs((const char *const[]){p.p}, 1);
    lsf_rules_opts with = {.nworkers = 1, .quiet = true};
    lsf_rules_opts without = {.nworkers = 1, .quiet = true, .no_prefilter = true};
    lsf_errbuf err = {{0}};
    lsf_ruleset *a = lsf_ruleset_load(&dir, 1, &with, &err);
    if (!a)
        fail_msg("%s", err.msg);
    lsf_ruleset *b = lsf_ruleset_load(&dir, 1, &without, &err);
    assert_non_null(b);
    assert_true(lsf_ruleset_nalways(a) < 100);
    assert_int_equal(lsf_ruleset_nalways(b), 300);
    lsf_batch *ba = lsf_batch_new(2), *bb = lsf_batch_new(2);
    int matched = 0;
    for (int i = 0; i < 4000; i++) {
        seed = seed * 1103515245u + 12345u;
        char line[256];
        const char *w1 = words[(seed >> 4) % 10], *w2 = words[(seed >> 8) % 10];
        const char *app = apps[(seed >> 12) % 6];
        switch ((seed >> 16) % 6) {
        case 0:
            snprintf(line, sizeof(line), "<14>Mar  3 10:00:01 h %s: %s %s %u", app, w1, w2, seed % 997);
            break;
        case 1:
            snprintf(line, sizeof(line), "<14>Mar  3 10:00:01 h %s: x %s %s from 192.0.2.%u", app, w1,
                     w2, seed % 255);
            break;
        case 2:
            snprintf(line, sizeof(line), "<14>Mar  3 10:00:01 h %s: %c%s-%s!", app,
                     (seed >> 3) & 1 ? 'X' : 'x', w1, w2);
            break;
        case 3:
            snprintf(line, sizeof(line), "<14>Mar  3 10:00:01 h %s: %s=v%u tail %s", app, w1,
                     seed % 50, w2);
            break;
        case 4:
            snprintf(line, sizeof(line), "<14>Mar  3 10:00:01 h %s: %s %u user u%u", app, w1,
                     seed % 9999, seed % 13);
            break;
        default:
            snprintf(line, sizeof(line), "%s %s %s", w1, w2, w1);
        }
        lsf_event *ea, *eb;
        const char *ra = classify(a, ba, line, &ea), *rb = classify(b, bb, line, &eb);
        if ((ra == NULL) != (rb == NULL) || (ra && strcmp(ra, rb) != 0))
            fail_msg("'%s': prefilter %s, every rule %s", line, ra ? ra : "-", rb ? rb : "-");
        if (!ra)
            continue;
        matched++;
        assert_int_equal(ea->nfields, eb->nfields);
        for (uint16_t k = 0; k < ea->nfields; k++) {
            char s1[48], s2[48];
            lsf_str v1, v2;
            assert_true(lsf_event_get_str(ea, ea->fields[k].name, s1, &v1));
            assert_true(lsf_event_get_str(eb, ea->fields[k].name, s2, &v2));
            assert_true(lsf_str_eq(v1, v2));
        }
    }
    assert_true(matched > 1000); /* the lines really exercise the rules */
    lsf_batch_free(ba);
    lsf_batch_free(bb);
    lsf_ruleset_unref(a);
    lsf_ruleset_unref(b);
    lsf_sbuf_free(&p);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_typed_captures),     cmocka_unit_test(test_when),
        cmocka_unit_test(test_priority_and_effects), cmocka_unit_test(test_redos_limit),
        cmocka_unit_test(test_load_errors),        cmocka_unit_test(test_inline_tests),
        cmocka_unit_test(test_prefilter_equivalence),
    };
    return cmocka_run_group_tests(tests, setup, tmpdir_remove);
}
