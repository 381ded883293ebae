/* rules.h - rule packs: load, compile, match, test (the API other modules use).
 *
 * A rule set is every pack of a list of files and directories, validated,
 * compiled (PCRE2 JIT, Hyperscan prefilter) and ready to classify events.
 * The format is documented in docs/rule-packs.md; rules/rules_int.h holds the
 * structures.
 *
 * The one design choice to know: a rule set is immutable once compiled and
 * reference counted. A reload builds a new set beside the running one and
 * swaps a pointer; a batch takes one reference for its whole run, and every
 * string a rule writes onto an event is copied into the batch arena, so an old
 * set can be freed as soon as the last batch that used it has left the stage.
 *
 * Threads: loading, compiling and testing run on one thread (main or reload);
 * lsf_ruleset_apply runs on any worker thread at once, each with its own
 * `worker` index (per-worker match data, scratch and counters).
 */
#ifndef LSF_RULES_H
#define LSF_RULES_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "core/config.h"
#include "core/event.h"

typedef struct lsf_ruleset lsf_ruleset;

/* How a rule set is compiled and run. */
typedef struct lsf_rules_opts {
    int nworkers;          /* per-worker state slots (>= 1) */
    uint32_t match_limit;  /* PCRE2 match limit per regex run (0: default) */
    uint32_t depth_limit;  /* PCRE2 depth limit (0: default) */
    bool no_prefilter;     /* try every rule (debugging; tests compare both) */
    bool keep_dropped;     /* `drop: true` tags "_drop" instead of dropping */
    bool quiet;            /* no warnings on stderr (nested quantifiers, prefilter) */
    bool time_every;       /* time every evaluation, not one in 8 (logsift test --stats) */
} lsf_rules_opts;

#define LSF_RULES_DEFAULT_MATCH_LIMIT 200000u
#define LSF_RULES_DEFAULT_DEPTH_LIMIT 10000u

/* Loads every pack named by `paths` (files, or directories whose *.yaml and
 * *.yml files load in name order), validates and compiles them. Returns the
 * set with one reference, or NULL with err set to "file:line:col: message". */
lsf_ruleset *lsf_ruleset_load(const char *const *paths, size_t npaths, const lsf_rules_opts *opts,
                              lsf_errbuf *err);
/* Reference counting; the last unref frees the set. Any thread. */
lsf_ruleset *lsf_ruleset_ref(lsf_ruleset *rs);
void lsf_ruleset_unref(lsf_ruleset *rs);

/* Classifies one event: the winning rule's id, captures, severity, tags and
 * set fields are written onto ev (strings copied into b's arena), or the
 * event is flagged LSF_EV_DROPPED. Returns the winning rule's index, or -1
 * when no rule matched. `worker` is in [0, opts.nworkers). */
int lsf_ruleset_apply(lsf_ruleset *rs, lsf_batch *b, lsf_event *ev, int worker);

/* Hands over (and zeroes) worker `worker`'s count of regex runs that hit a
 * limit and of captures that were not of their declared type, for the
 * stage's totals. Call from that worker. */
void lsf_ruleset_take_counts(lsf_ruleset *rs, int worker, uint64_t *limit_events,
                             uint64_t *type_errors);

/* Counts of a rule set, summed over workers. */
typedef struct lsf_rule_stats {
    const char *id, *pack;
    uint64_t evals;      /* times the rule's regexes ran (a candidate) */
    uint64_t matches;    /* times it won */
    uint64_t limit_hits; /* PCRE2 match/depth/JIT-stack limit reached */
    uint64_t ns;         /* time spent evaluating it */
} lsf_rule_stats;

size_t lsf_ruleset_nrules(const lsf_ruleset *rs);
size_t lsf_ruleset_npacks(const lsf_ruleset *rs);
/* Rules the prefilter cannot serve (always tried when their `when` holds). */
size_t lsf_ruleset_nalways(const lsf_ruleset *rs);
const char *lsf_ruleset_rule_id(const lsf_ruleset *rs, size_t i);
void lsf_ruleset_stats(const lsf_ruleset *rs, size_t i, lsf_rule_stats *out);
void lsf_ruleset_stats_reset(lsf_ruleset *rs);
/* Prints a table of every rule's counts (header included). */
void lsf_ruleset_print_stats(const lsf_ruleset *rs, FILE *f);

/* A reference to the running set of a `rules` stage (for metrics and
 * tests), or NULL before init; the caller unrefs it. Any thread. */
struct lsf_stage;
lsf_ruleset *lsf_rules_stage_current(struct lsf_stage *st);

/* ---- `when` conditions for other stages (rule.c, match.c) ------------------ */

/* A `when:` map compiled with exactly the rule syntax and semantics
 * (docs/rule-packs.md), for stages that select events the way rules do
 * (detections). Immutable once compiled: match from any thread. */
typedef struct lsf_when lsf_when;
/* Compiles `when` (a map node); NULL with err set to file:line:col. An
 * empty map matches every event. The caller frees with lsf_when_free. */
lsf_when *lsf_when_compile(const lsf_node *when, lsf_errbuf *err);
void lsf_when_free(lsf_when *w);
/* True when every condition holds on ev. */
bool lsf_when_match(const lsf_when *w, const lsf_event *ev);

/* ---- inline tests (rules/packtest.c) -------------------------------------- */

typedef struct lsf_rules_test_result {
    unsigned tests, passed, failed;
    unsigned ambiguous;   /* lines two rules of equal priority matched */
    unsigned untested;    /* rules without a positive test */
    unsigned engine;      /* prefilter disagreed with trying every rule */
    char first_error[512];/* "file:line:col: ..." of the first failure */
} lsf_rules_test_result;

/* Runs every pack's tests with worker slot 0 (the set must not be serving
 * events). Failures, with a field-by-field diff, go to `report` (NULL: none).
 * Returns 0 when every test passed and the prefilter agreed, -1 otherwise;
 * ambiguities and untested rules are warnings (failures with `strict`). */
int lsf_ruleset_run_tests(lsf_ruleset *rs, FILE *report, bool strict, lsf_rules_test_result *res);

/* ---- CLI (rules/cli.c) ------------------------------------------------------ */

/* `logsift test [--stats] [--strict] [PACK_OR_DIR ...]`; returns the exit code. */
int lsf_rules_cmd_test(int argc, char **argv);
/* Writes the `transforms:` line of a config that runs the packs of `dir` for
 * `logsift parse -r DIR` (dropped lines are shown, tagged "_drop").
 * Returns 0, or -1 when it does not fit in n bytes. */
int lsf_rules_parse_transform(const char *dir, char *buf, size_t n);

#endif
