/* rules_int.h - the structures behind rules.h, shared by the rules/ files.
 *
 * Life of a rule set: pack.c reads each file into an lsf_pack (patterns,
 * rule definitions with their YAML nodes, tests); ruleset.c expands pattern
 * macros (library.c), compiles regexes and conditions, sorts the rules into
 * evaluation order and builds the prefilter (prefilter.c); match.c runs it.
 *
 * The one design choice to know: rules are stored in evaluation order
 * (priority descending, then load order), so a rule's index is its rank and
 * "the best candidate" is simply the smallest index that matches.
 *
 * Threads: everything here is written once while compiling and then only
 * read, except the per-worker slots (lsf_rules_worker), each used by one
 * thread at a time.
 */
#ifndef LSF_RULES_INT_H
#define LSF_RULES_INT_H

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>
#include <stdatomic.h>

#include "rules/rules.h"

typedef struct hs_database hs_database_t;
typedef struct hs_scratch hs_scratch_t;

/* ---- small growable string (library.c) ------------------------------------- */
typedef struct lsf_sbuf {
    char *p;
    size_t len, cap;
} lsf_sbuf;
void lsf_sbuf_add(lsf_sbuf *s, const char *p, size_t n);
void lsf_sbuf_adds(lsf_sbuf *s, const char *str);
void lsf_sbuf_addf(lsf_sbuf *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void lsf_sbuf_free(lsf_sbuf *s);
/* Returns the NUL-terminated text and hands it to the caller. */
char *lsf_sbuf_take(lsf_sbuf *s);

/* ---- fields ------------------------------------------------------------------ */

/* Where a field name lives on an event. */
enum lsf_fx {
    LSF_FX_DYNAMIC = 0, /* a dynamic field */
    LSF_FX_MESSAGE,     /* ev->message */
    LSF_FX_HOST,        /* ev->host: host.name, log.syslog.hostname */
    LSF_FX_APP,         /* ev->app: process.name, log.syslog.appname */
    LSF_FX_PROCID,      /* ev->procid: process.pid, log.syslog.procid */
    LSF_FX_MSGID,       /* ev->msgid: log.syslog.msgid */
    LSF_FX_READONLY,    /* other well-known names: readable, not writable */
    LSF_FX_RESERVED,    /* a name the engine writes as a dynamic field (rule.id,
                         * event.severity ...): read as one, not writable */
};

typedef struct lsf_fieldref {
    uint8_t fx;  /* enum lsf_fx */
    lsf_str name; /* interned (lives for ever) */
} lsf_fieldref;

/* Resolves a dotted field name; names are interned. */
lsf_fieldref lsf_fieldref_make(const char *name);
/* Reads a field as text (numbers formatted into scratch, >= 32 bytes). */
bool lsf_fieldref_get(const lsf_event *ev, const lsf_fieldref *f, char *scratch, lsf_str *out);
/* The same, a dynamic field looked for at *at first (lsf_event_find_at). */
bool lsf_fieldref_get_at(const lsf_event *ev, const lsf_fieldref *f, char *scratch, lsf_str *out,
                         uint16_t *at);
/* Names a rule may not write (set by parsers or by the engine itself). */
bool lsf_field_reserved(const char *name);

/* ---- captures and regexes -------------------------------------------------- */

enum lsf_cap_type { LSF_CAP_STRING, LSF_CAP_INT, LSF_CAP_FLOAT, LSF_CAP_IP, LSF_CAP_BOOL };
/* "string", "int", ... -> type, or -1. */
int lsf_cap_type_parse(const char *s, size_t n);

typedef struct lsf_capture {
    uint32_t group;        /* PCRE2 group number */
    lsf_fieldref field;    /* where the value goes */
    uint8_t type;          /* enum lsf_cap_type */
    bool shared;           /* another group of the rule writes the same field */
} lsf_capture;

/* A named group as the pattern writer wrote it, before compilation. */
typedef struct lsf_group_name {
    char *field; /* dotted field name */
    int type;    /* enum lsf_cap_type */
} lsf_group_name;

typedef struct lsf_rx {
    lsf_fieldref field;    /* what it runs on (message by default) */
    const lsf_node *node;  /* the pattern in the pack, for errors */
    char *expanded;        /* after %{} expansion and group renaming */
    char *prefilter;       /* the same with the library's prefilter stand-ins (Hyperscan) */
    pcre2_code *code;
    lsf_capture *caps;
    uint32_t ncaps;
    bool jit;
} lsf_rx;

/* ---- conditions ------------------------------------------------------------ */

enum lsf_cond_op {
    LSF_OP_EQ, LSF_OP_NE, LSF_OP_IN, LSF_OP_NOT_IN, LSF_OP_PREFIX, LSF_OP_SUFFIX,
    LSF_OP_CONTAINS, LSF_OP_CIDR, LSF_OP_NOT_CIDR, LSF_OP_GT, LSF_OP_GE, LSF_OP_LT, LSF_OP_LE,
    LSF_OP_EXISTS,
};

typedef struct lsf_cidr {
    uint8_t family; /* 4 or 6 */
    uint8_t bits;
    uint8_t addr[16];
} lsf_cidr;

typedef struct lsf_cond {
    lsf_fieldref field;
    uint8_t op;      /* enum lsf_cond_op */
    bool exists;     /* LSF_OP_EXISTS: true = must exist, false = must not */
    double num;      /* comparisons */
    char **strs;     /* eq/ne/in/not_in/prefix/suffix/contains values */
    uint32_t *lens;
    uint32_t nstrs;
    lsf_cidr *cidrs;
    uint32_t ncidrs;
} lsf_cond;

/* A compiled `when:` map on its own (rules.h): every condition must hold. */
struct lsf_when {
    lsf_cond *conds;
    uint32_t n;
};

/* ---- rules ------------------------------------------------------------------ */

/* A static field from `set:` or a copy from `copy:`. */
typedef struct lsf_setfield {
    lsf_fieldref field;
    uint8_t type;      /* enum lsf_type (STR, INT, FLOAT, BOOL, JSON) */
    uint32_t off, len; /* string value: slice of the rule's blob */
    int64_t i;
    double f;
    bool b;
} lsf_setfield;

typedef struct lsf_copyfield {
    lsf_fieldref dst;
    lsf_fieldref *src; /* the first present source wins */
    uint32_t nsrc;
} lsf_copyfield;

typedef struct lsf_pack lsf_pack;

typedef struct lsf_rule {
    /* hot: what matching reads, first (one or two cache lines) */
    lsf_cond *conds;        /* `when:`, on the event as it is before the rule */
    lsf_rx *rx;             /* `match:` regexes, all must match */
    uint32_t nconds;
    uint32_t nrx;
    int app_cond;           /* the condition the index stands for (skipped), or -1 */
    int msg_rx;             /* index of the regex on `message` (prefilter), or -1 */
    /* what a match writes */
    lsf_setfield *set;
    lsf_copyfield *copy;
    uint32_t nset, ncopy;
    uint32_t ntags;
    int severity;           /* 0 = none, 1..5 */
    bool drop;
    /* every string the rule writes, copied once per matched event:
     * id, pack name, severity name, tags, set strings, threat ids */
    char *blob;
    uint32_t blob_len;
    uint32_t id_len, pack_off, pack_len, sev_off, sev_len;
    uint32_t *tag_off, *tag_len;
    /* cold: identity, loading, reporting */
    char *id;
    lsf_pack *pack;
    const lsf_node *node;   /* the rule's map in its pack */
    int priority;
    uint32_t load_order;
    char **tags;
    /* app values of a `when` on process.name (eq / in): the index keys */
    char **apps;
    uint32_t napps;
    bool app_absent;        /* `process.name: {exists: false}` */
    /* prefilter: lits[0, nlits) every match contains (all must occur), and
     * lits[nlits, nlits + nany) of which every match contains one (one must
     * occur); with neither, the regex itself goes to Hyperscan */
    char **lits;
    uint8_t nlits, nany;
    bool lits_caseless, any_caseless;
    bool prefiltered;       /* served by a Hyperscan database */
    const char *no_prefilter_why;
} lsf_rule;

typedef struct lsf_pattern {
    char *name;
    char *body;
    const lsf_node *node;
} lsf_pattern;

typedef struct lsf_pack_test {
    const lsf_node *node;   /* the test's map */
    const char *line;
    const lsf_node *expect; /* map, or NULL with expect_none */
    bool expect_none;
    int dropped;            /* -1: not asserted, 0/1: asserted */
    int format;             /* enum lsf_format; 0 = auto */
} lsf_pack_test;

struct lsf_pack {
    char *path;
    char *name;
    char *version;
    char *description;
    lsf_node *root;         /* owned: every node pointer above points into it */
    lsf_pattern *patterns;
    uint32_t npatterns;
    lsf_pack_test *tests;
    uint32_t ntests;
    const lsf_node *rules;      /* the `rules:` sequence */
    const lsf_node *detections; /* kept for the detections stage, not used here */
};

/* pack.c: reads one pack file; checks structure, names, ids' syntax. */
int lsf_pack_load(const char *path, lsf_pack *pk, lsf_errbuf *err);
void lsf_pack_deinit(lsf_pack *pk);
/* Lists the pack files of `paths` (directories expand to their *.yaml and
 * *.yml files, sorted); returns 0 or -1 with err set. */
int lsf_pack_list_files(const char *const *paths, size_t npaths, char ***files, size_t *nfiles,
                        lsf_errbuf *err);
const lsf_pattern *lsf_pack_pattern(const lsf_pack *pk, const char *name, size_t len);

/* ---- library.c ---------------------------------------------------------------- */

/* Where each byte of a rewritten pattern came from in the text it was made
 * from, so errors can point into the pattern as written. */
typedef struct lsf_posmap {
    uint32_t *v;
    size_t n, cap;
} lsf_posmap;
void lsf_posmap_free(lsf_posmap *m);

/* Expands %{NAME[:field[:type]]} macros of `src` (a pattern of pack `pk`,
 * which may be NULL for the standard library) into `out`, resolving
 * unqualified names in `pk` then the standard library, and `other.NAME` in
 * pack `other` of `packs`. `map` (may be NULL) receives, per output byte, its
 * offset in src (a macro's whole expansion maps to its "%{"). Errors go to
 * err at node `at`. */
int lsf_pattern_expand(const char *src, const lsf_pack *pk, const lsf_pack *packs, size_t npacks,
                       lsf_sbuf *out, lsf_posmap *map, const lsf_node *at, lsf_errbuf *err);
/* The same with the library's prefilter stand-ins (supersets of the heavy
 * patterns such as IP, HOSTNAME, URI), for the Hyperscan databases. */
int lsf_pattern_expand_prefilter(const char *src, const lsf_pack *pk, const lsf_pack *packs,
                                 size_t npacks, lsf_sbuf *out, lsf_errbuf *err);
/* Renames every named group of `src` to "_gN" (N = its position) and
 * rewrites named back-references; the names as written (field[:type]) are
 * returned in *names (caller frees with lsf_group_names_free); `map` as for
 * lsf_pattern_expand. */
int lsf_pattern_rename_groups(const char *src, lsf_sbuf *out, lsf_posmap *map,
                              lsf_group_name **names, uint32_t *nnames, const lsf_node *at,
                              lsf_errbuf *err);
void lsf_group_names_free(lsf_group_name *names, uint32_t n);
/* Tokenising helpers shared by the pattern readers: the length of the
 * escape at p ("\x", "\x{...}", "\p{..}"), of the class at p ('['), and of a
 * token copied through unchanged (an escape, \Q..\E, a class, a (?#...)
 * comment; 0 when p starts none). */
size_t lsf_re_escape_len(const char *p);
size_t lsf_re_class_len(const char *p);
size_t lsf_re_opaque_len(const char *p);

/* ---- analyze.c ------------------------------------------------------------------- */

#define LSF_MAX_LITERALS 32
/* Literals every match of a regex contains. */
typedef struct lsf_litset {
    char *v[LSF_MAX_LITERALS];
    size_t n;
    bool caseless; /* the regex folds case somewhere: compare caselessly */
} lsf_litset;
/* Fills out with the literals (distinct, in order) that every match of `re`
 * must contain; returns 0, or -1 (out empty) when the regex uses a construct
 * the reader does not model. */
int lsf_pattern_literals(const char *re, lsf_litset *out);
void lsf_litset_free(lsf_litset *s);
/* Fills out with literals (distinct, each at least min_len bytes) of which
 * every match of `re` contains one: a literal of each branch of an
 * alternation every match goes through. Returns 0, or -1 (out empty) when
 * there is no such alternation or the regex uses a construct the reader does
 * not model. */
int lsf_pattern_any_literals(const char *re, size_t min_len, lsf_litset *out);
/* Finds a quantified group that holds an unbounded quantifier with nothing
 * to separate its iterations, e.g. (a+)+ or (\w+\s?)*, which can backtrack
 * exponentially. Returns the offset of the group, or -1. */
long lsf_pattern_nested_quantifier(const char *src);
/* The body of a standard-library pattern, or NULL; the second gives the
 * prefilter stand-in where one exists. */
const char *lsf_stdlib_pattern(const char *name, size_t len);
const char *lsf_stdlib_prefilter_pattern(const char *name, size_t len);
/* Every standard-library name, NULL-terminated (for docs and tests). */
extern const char *const lsf_stdlib_names[];

/* ---- the compiled set -------------------------------------------------------- */

/* Counters of one rule on one worker: written by that worker only (relaxed
 * load + store, no locked instruction), read by anyone. */
typedef struct lsf_rule_counts {
    _Atomic uint64_t evals, matches, limit_hits, ns;
} lsf_rule_counts;

/* One prefilter group: the rules a line of one process.name value (or of
 * any value, for the generic group) can match. */
typedef struct lsf_rgroup {
    uint32_t *always;   /* rule indices tried without prefilter, ascending */
    int32_t *always_gate; /* per always rule: a condition needing its field, or -1 */
    uint32_t nalways;
    uint32_t nrules;    /* rules in the group (always + prefiltered) */
    hs_database_t *db;  /* NULL when no rule of the group is prefiltered */
    /* Hyperscan id k concerns rules expr_rules[expr_off[k] .. expr_off[k+1]);
     * ids below nlits are literals, the others full expressions; an entry
     * with bit 31 set (prefilter.c ANY_LIT) is one of the rule's any-literals */
    uint32_t *expr_off, *expr_rules;
    uint32_t nexprs, nexpr_rules, nlits;
} lsf_rgroup;

typedef struct lsf_rules_worker {
    pcre2_match_data *md;
    pcre2_match_context *mctx;
    pcre2_jit_stack *jit_stack;
    hs_scratch_t *scratch;
    uint32_t *cand;         /* candidate rule indices of the current line */
    uint32_t ncand;
    uint8_t *litcnt;        /* per rule: its literals seen in this scan, and
                             * LIT_ANY_SEEN once one of its any-literals was */
    uint32_t *touched;      /* rules whose litcnt is not 0 */
    uint32_t ntouched;
    lsf_rule_counts *counts;/* one per rule */
    struct lsf_pending *pending; /* captures of the rule being confirmed */
    uint32_t npending, cap_pending;
    char (*numbuf)[48];     /* per regex of a rule: a number subject, without a batch */
    uint64_t tick;          /* xorshift state: which evaluations are timed */
    uint64_t limit_events;  /* regex runs that hit a limit, since last taken */
    uint64_t type_errors;   /* captures not of their declared type, likewise */
} lsf_rules_worker;

struct lsf_ruleset {
    _Atomic int refs;
    lsf_rules_opts opts;
    lsf_pack *packs;
    size_t npacks;
    lsf_rule *rules;        /* evaluation order */
    size_t nrules;
    lsf_rgroup generic;     /* rules without a process.name condition */
    lsf_rgroup noapp;       /* rules for lines without a process.name, and generic */
    lsf_rgroup *apps;       /* one per process.name value: its rules, and generic */
    char **app_names;
    uint32_t *app_lens;
    size_t napps;
    uint32_t *app_hash;     /* open addressing: app index + 1, 0 = empty */
    uint8_t *lit_need;      /* per rule: literals that must occur (its nlits) */
    uint32_t app_hash_mask;
    size_t nalways_total;   /* rules no prefilter serves (distinct) */
    hs_scratch_t *scratch_proto; /* cloned for each worker */
    uint32_t max_groups;    /* largest capture-group count of any regex */
    uint32_t max_caps;      /* most captures of any rule */
    uint32_t max_rx;        /* most regexes of any rule */
    lsf_rules_worker *workers;
    int nworkers;
};

/* rule.c */
/* Formats a PCRE2 compile error of `src` (as written) with a caret at the
 * offset `off` of the compiled text, mapped back through the two maps. */
int lsf_regex_error(lsf_errbuf *err, const lsf_node *at, const char *what, int code, size_t off,
                    const char *src, const lsf_posmap *exmap, const lsf_posmap *rnmap);
int lsf_rule_compile(lsf_ruleset *rs, lsf_rule *r, const lsf_node *node, lsf_pack *pk,
                     lsf_errbuf *err);
void lsf_rule_free(lsf_rule *r);

/* prefilter.c: builds rs->generic / rs->apps databases from the rules. */
int lsf_prefilter_build(lsf_ruleset *rs, lsf_errbuf *err);
void lsf_prefilter_free(lsf_ruleset *rs);
/* Scratch for one worker (after build); NULL when no database exists. */
int lsf_prefilter_scratch(lsf_ruleset *rs, hs_scratch_t **out);
void lsf_prefilter_scratch_free(hs_scratch_t *s);
/* Adds the group's prefiltered candidates for text p[0..n) to w->cand (the
 * caller adds g->always, see always_gate). */
void lsf_prefilter_scan(const lsf_ruleset *rs, const lsf_rgroup *g, lsf_rules_worker *w,
                        const char *p, size_t n);
/* The prefilter group of a process.name value: the no-name group for an
 * absent one, NULL when no rule names the value. */
const lsf_rgroup *lsf_prefilter_app_group(const lsf_ruleset *rs, lsf_str app);

/* match.c */
/* Every rule whose conditions and regexes match ev, in evaluation order,
 * without touching ev; with `all_rules` the prefilter is skipped. Returns the
 * count (at most max). */
size_t lsf_ruleset_matches(lsf_ruleset *rs, const lsf_event *ev, int worker, bool all_rules,
                           uint32_t *out, size_t max);
const char *lsf_severity_level_name(int sev);
int lsf_severity_level_parse(const char *s);

#endif
