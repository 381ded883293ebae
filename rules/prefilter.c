/* prefilter.c - picks the few rules worth confirming for a line.
 *
 * Rules are grouped by the process.name values their `when` pins, plus a
 * group for rules that require no process.name; every group also holds the
 * generic rules (no process.name condition), which alone make the generic
 * group. A line scans one group: its process.name's, the no-name group, or
 * the generic group when no rule names its process - one Hyperscan call a
 * line rather than two. Each group is one Hyperscan database (block mode,
 * one scratch per worker) holding, per rule:
 *   - the one or two rarest literals every match of its message regex must
 *     contain (rules/analyze.c): the rule is a candidate when all of them
 *     occur in the line. Literal matching is Hyperscan's fastest path, so the
 *     scan costs about the same for 10 or 1,000 rules;
 *   - and/or literals of which every match contains one (the branches of a
 *     required alternation, analyze.c), for a rule without a required
 *     literal or whose required ones many rules share: one of them must
 *     occur too (ANY_LIT entries, counted once per scan: LIT_ANY_SEEN);
 *   - or, when no literal can be read off the regex, the regex itself in
 *     HS_FLAG_PREFILTER mode (with the library's stand-ins for heavy macros).
 *
 * The one design choice to know: all are necessary conditions - a rule
 * whose regex matches always passes its prefilter - so the prefilter never
 * changes a result, only how many rules PCRE2 confirms. A regex with no
 * literal that Hyperscan cannot take even in prefilter mode (\K, \R,
 * subroutine calls, one that matches the empty string) makes its rule a
 * candidate for every line of its group: slower, never wrong.
 *
 * Threads: built once; scans run on any worker with that worker's scratch
 * and counters.
 */
#include <hs/hs.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/log.h"
#include "rules/rules_int.h"

#define HS_FULL (HS_FLAG_PREFILTER | HS_FLAG_SINGLEMATCH)
#define MIN_LITERAL 3 /* shorter literals select too little to be worth it */
#define SECOND_LITERAL_MAX_SHARE 8 /* rules that may share a rule's second literal */
/* an alternation of short words beside required literals is most often an
 * enumeration every line has (month names): it sharpens nothing */
#define SHARPEN_MIN_LITERAL 4
#define ANY_LIT 0x80000000u /* an item / expr_rules entry: one of the rule's any-literals */
#define LIT_ANY_SEEN 0x80 /* litcnt: an any-literal of the rule was seen */

static uint32_t hash_str(const char *p, size_t n)
{
    uint32_t h = 2166136261u;
    for (size_t i = 0; i < n; i++) {
        h ^= (unsigned char)p[i];
        h *= 16777619u;
    }
    return h;
}

static int cmp_u32(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return x < y ? -1 : x > y;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static void warn_at(const lsf_ruleset *rs, const lsf_rule *r, const char *fmt, const char *why)
{
    if (rs->opts.quiet)
        return;
    const lsf_node *at = r->rx[r->msg_rx].node;
    char msg[512];
    snprintf(msg, sizeof(msg), fmt, why);
    lsf_warn("%s:%d:%d: rule %s %s", at->file, at->line, at->col, r->id, msg);
}

/* Whether the full-regex fallback can serve rule r (no literals). */
static bool full_usable(lsf_ruleset *rs, lsf_rule *r)
{
    hs_expr_info_t *info = NULL;
    hs_compile_error_t *cerr = NULL;
    if (hs_expression_info(r->rx[r->msg_rx].prefilter, HS_FULL, &info, &cerr) != HS_SUCCESS) {
        r->no_prefilter_why = "Hyperscan cannot compile it";
        warn_at(rs, r, "is tried on every line of its group: Hyperscan: %s",
                cerr ? cerr->message : "error");
        hs_free_compile_error(cerr);
        return false;
    }
    bool empty = info->min_width == 0;
    free(info);
    if (empty) {
        r->no_prefilter_why = "its regex can match an empty string";
        warn_at(rs, r, "%s: the regex can match an empty string, so no prefilter serves it; it "
                "is tried on every line of its group", "");
        return false;
    }
    return true;
}

/* Literals of which every match contains one (the branches of a required
 * alternation), for a rule without a required literal - so its group's
 * database stays made of literals, Hyperscan's fastest kind, rather than
 * taking the regex itself - or whose required literals many rules share
 * (nginx.access.probe's '] "' is in every access line; one of its probe
 * paths is not). */
static void any_literals(lsf_rule *r)
{
    lsf_litset any;
    if (lsf_pattern_any_literals(r->rx[r->msg_rx].expanded, MIN_LITERAL, &any) < 0)
        return;
    size_t shortest = SIZE_MAX;
    for (size_t k = 0; k < any.n; k++)
        if (strlen(any.v[k]) < shortest)
            shortest = strlen(any.v[k]);
    if (r->nlits && shortest < SHARPEN_MIN_LITERAL) {
        lsf_litset_free(&any);
        return;
    }
    for (size_t k = 0; k < any.n; k++) {
        r->lits[r->nlits + r->nany++] = any.v[k];
        any.v[k] = NULL;
    }
    r->any_caseless = any.caseless;
    lsf_litset_free(&any);
}

/* Reads the literals of every message regex and picks, per rule, the one
 * that the fewest rules share (longer first on ties), and a second one when
 * few rules share it. */
static void choose_literals(lsf_ruleset *rs, bool platform_ok)
{
    lsf_litset *sets = calloc(rs->nrules ? rs->nrules : 1, sizeof(lsf_litset));
    char **all = NULL;
    size_t nall = 0;
    if (!sets)
        lsf_die("out of memory");
    for (size_t i = 0; i < rs->nrules; i++) {
        lsf_rule *r = &rs->rules[i];
        r->prefiltered = false;
        if (rs->opts.no_prefilter) {
            r->no_prefilter_why = "prefilter disabled";
            continue;
        }
        if (!platform_ok) {
            r->no_prefilter_why = "Hyperscan does not support this CPU";
            continue;
        }
        if (r->msg_rx < 0) {
            r->no_prefilter_why = "no regex on the message";
            continue;
        }
        r->prefiltered = true;
        if (lsf_pattern_literals(r->rx[r->msg_rx].expanded, &sets[i]) < 0)
            continue;
        size_t keep = 0;
        for (size_t k = 0; k < sets[i].n; k++) {
            if (strlen(sets[i].v[k]) >= MIN_LITERAL)
                sets[i].v[keep++] = sets[i].v[k];
            else
                free(sets[i].v[k]);
        }
        sets[i].n = keep;
        all = realloc(all, (nall + keep + 1) * sizeof(char *));
        if (!all)
            lsf_die("out of memory");
        for (size_t k = 0; k < keep; k++)
            all[nall++] = sets[i].v[k];
    }
    if (nall)
        qsort(all, nall, sizeof(char *), cmp_str);
    for (size_t i = 0; i < rs->nrules; i++) {
        lsf_rule *r = &rs->rules[i];
        uint32_t best[2] = {UINT32_MAX, UINT32_MAX};
        int pick[2] = {-1, -1};
        for (size_t k = 0; k < sets[i].n; k++) {
            const char *lit = sets[i].v[k];
            char **lo = bsearch(&lit, all, nall, sizeof(char *), cmp_str);
            while (lo > all && strcmp(lo[-1], lit) == 0)
                lo--;
            uint32_t freq = 0;
            while (lo + freq < all + nall && strcmp(lo[freq], lit) == 0)
                freq++;
            /* rarer is better; among equals, longer (fewer chance hits) */
            uint32_t score = freq * 256u + (uint32_t)(255 - (strlen(lit) > 255 ? 255 : strlen(lit)));
            if (score < best[0]) {
                best[1] = best[0], pick[1] = pick[0];
                best[0] = score, pick[0] = (int)k;
            } else if (score < best[1]) {
                best[1] = score, pick[1] = (int)k;
            }
        }
        /* a second literal sharpens the test, but a common one costs more
         * bookkeeping on every line that has it than it saves */
        if (pick[1] >= 0 && best[1] / 256u > SECOND_LITERAL_MAX_SHARE)
            pick[1] = -1;
        if (!(r->lits = calloc(LSF_MAX_LITERALS + 2, sizeof(char *)))) /* 2 required + any */
            lsf_die("out of memory");
        for (int k = 0; k < 2; k++) {
            if (pick[k] < 0)
                continue;
            if (!(r->lits[r->nlits] = strdup(sets[i].v[pick[k]])))
                lsf_die("out of memory");
            r->nlits++;
        }
        r->lits_caseless = sets[i].caseless;
        if (r->prefiltered && (!r->nlits || best[0] / 256u > SECOND_LITERAL_MAX_SHARE))
            any_literals(r);
        if (r->prefiltered && !r->nlits && !r->nany)
            r->prefiltered = full_usable(rs, r);
    }
    for (size_t i = 0; i < rs->nrules; i++)
        lsf_litset_free(&sets[i]);
    free(sets);
    free(all);
}

/* Appends the literal as a Hyperscan expression (every byte escaped). */
static char *literal_expr(const char *lit)
{
    size_t n = strlen(lit);
    char *e = malloc(n * 4 + 1);
    if (!e)
        lsf_die("out of memory");
    for (size_t i = 0; i < n; i++)
        snprintf(e + i * 4, 5, "\\x%02x", (unsigned char)lit[i]);
    return e;
}

typedef struct item {
    const char *key; /* literal (with a case flag prefix) or full expression */
    uint32_t rule;
} item;

static int cmp_item(const void *a, const void *b)
{
    const item *x = a, *y = b;
    int c = strcmp(x->key, y->key);
    return c ? c : (x->rule < y->rule ? -1 : x->rule > y->rule);
}

static void group_free(lsf_rgroup *g)
{
    free(g->always);
    free(g->always_gate);
    free(g->expr_off);
    free(g->expr_rules);
    hs_free_database(g->db);
    memset(g, 0, sizeof(*g));
}

/* A condition of rule r that fails when its field is absent (any but
 * `exists: false`), other than the one its process.name group stands for:
 * a line without that field cannot match r, which one lookup shows for all
 * the always-tried rules gated by the same field (app_json's six rules need
 * log.level). -1 when r has none. */
static int32_t gate_cond(const lsf_rule *r)
{
    for (uint32_t k = 0; k < r->nconds; k++)
        if ((int)k != r->app_cond &&
            !(r->conds[k].op == LSF_OP_EXISTS && !r->conds[k].exists))
            return (int32_t)k;
    return -1;
}

/* Builds group g from the rule indices idx[0..n) (ascending). Hyperscan
 * ids [0, nlits) are literals (a rule counts its literals found), ids
 * [nlits, nexprs) full expressions (a hit makes the rule a candidate); id k
 * concerns rules expr_rules[expr_off[k] .. expr_off[k+1]). */
static void group_build(lsf_ruleset *rs, lsf_rgroup *g, const uint32_t *idx, size_t n,
                        const char *what)
{
    size_t cap = 1;
    for (size_t i = 0; i < n; i++) /* a key per literal, or one for the regex */
        cap += (size_t)rs->rules[idx[i]].nlits + rs->rules[idx[i]].nany + 1;
    item *it = calloc(cap, sizeof(item));
    char **keys = calloc(cap, sizeof(char *));
    g->always = calloc(n ? n : 1, sizeof(uint32_t));
    if (!it || !keys || !g->always)
        lsf_die("out of memory");
    g->nrules = (uint32_t)n;
    size_t ni = 0, nkeys = 0;
    for (size_t i = 0; i < n; i++) {
        lsf_rule *r = &rs->rules[idx[i]];
        if (!r->prefiltered) {
            g->always[g->nalways++] = idx[i];
            continue;
        }
        for (uint32_t k = 0; k < (uint32_t)r->nlits + r->nany; k++) { /* "L" + case + literal */
            bool any = k >= r->nlits;
            size_t len = strlen(r->lits[k]);
            char *key = malloc(len + 3);
            if (!key)
                lsf_die("out of memory");
            key[0] = 'L';
            key[1] = (any ? r->any_caseless : r->lits_caseless) ? 'i' : 's';
            memcpy(key + 2, r->lits[k], len + 1);
            keys[nkeys++] = key;
            it[ni++] = (item){key, idx[i] | (any ? ANY_LIT : 0)};
        }
        if (!r->nlits && !r->nany) { /* "R" + the regex: sorts after every literal */
            size_t len = strlen(r->rx[r->msg_rx].prefilter);
            char *key = malloc(len + 2);
            if (!key)
                lsf_die("out of memory");
            key[0] = 'R';
            memcpy(key + 1, r->rx[r->msg_rx].prefilter, len + 1);
            keys[nkeys++] = key;
            it[ni++] = (item){key, idx[i]};
        }
    }
    qsort(it, ni, sizeof(item), cmp_item);
    const char **exprs = calloc(ni + 1, sizeof(char *));
    char **owned = calloc(ni + 1, sizeof(char *));
    unsigned *flags = calloc(ni + 1, sizeof(unsigned)), *ids = calloc(ni + 1, sizeof(unsigned));
    g->expr_off = calloc(ni + 2, sizeof(uint32_t));
    g->expr_rules = calloc(ni + 1, sizeof(uint32_t));
    if (!exprs || !owned || !flags || !ids || !g->expr_off || !g->expr_rules)
        lsf_die("out of memory");
    for (;;) {
        size_t ne = 0;
        g->nlits = 0;
        g->nexpr_rules = 0;
        for (size_t i = 0; i < ni; i++) {
            if (!it[i].key)
                continue;
            if (!ne || strcmp(owned[ne - 1], it[i].key) != 0) { /* a new distinct key */
                g->expr_off[ne] = g->nexpr_rules;
                owned[ne] = (char *)it[i].key;
                if (it[i].key[0] == 'L') {
                    free((char *)exprs[ne]);
                    exprs[ne] = literal_expr(it[i].key + 2);
                    flags[ne] = HS_FLAG_SINGLEMATCH | (it[i].key[1] == 'i' ? HS_FLAG_CASELESS : 0);
                    g->nlits++;
                } else {
                    free((char *)exprs[ne]);
                    exprs[ne] = strdup(it[i].key + 1);
                    if (!exprs[ne])
                        lsf_die("out of memory");
                    flags[ne] = HS_FULL;
                }
                ids[ne] = (unsigned)ne;
                ne++;
            }
            g->expr_rules[g->nexpr_rules++] = it[i].rule;
        }
        g->expr_off[ne] = g->nexpr_rules;
        g->nexprs = (uint32_t)ne;
        if (ne == 0)
            break;
        hs_compile_error_t *cerr = NULL;
        if (hs_compile_multi(exprs, flags, ids, (unsigned)ne, HS_MODE_BLOCK, NULL, &g->db, &cerr) ==
            HS_SUCCESS)
            break;
        /* take the rules of the failing expression (or all) out, and retry */
        int bad = cerr ? cerr->expression : -1;
        for (size_t i = 0; i < ni; i++) {
            if (!it[i].key || (bad >= 0 && strcmp(it[i].key, owned[bad]) != 0))
                continue;
            lsf_rule *r = &rs->rules[it[i].rule & ~ANY_LIT];
            if (r->prefiltered && bad >= 0 && !rs->opts.quiet)
                lsf_warn("rules: rule %s is tried on every line of its group: Hyperscan: %s",
                         r->id, cerr->message);
            r->prefiltered = false;
            r->no_prefilter_why = "Hyperscan cannot compile it";
        }
        for (size_t i = 0; i < ni; i++) /* every item of a rule now out goes */
            if (it[i].key && !rs->rules[it[i].rule & ~ANY_LIT].prefiltered)
                it[i].key = NULL;
        if (bad < 0)
            lsf_warn("rules: Hyperscan cannot build the %s database (%s); its rules are tried on "
                     "every line", what, cerr ? cerr->message : "error");
        hs_free_compile_error(cerr);
        g->db = NULL;
    }
    for (size_t i = 0; i < n; i++) { /* rules dropped from the database */
        lsf_rule *r = &rs->rules[idx[i]];
        bool listed = false;
        for (uint32_t k = 0; k < g->nalways && !listed; k++)
            listed = g->always[k] == idx[i];
        if (!r->prefiltered && !listed)
            g->always[g->nalways++] = idx[i];
    }
    qsort(g->always, g->nalways, sizeof(uint32_t), cmp_u32);
    g->always_gate = calloc(g->nalways ? g->nalways : 1, sizeof(int32_t));
    if (!g->always_gate)
        lsf_die("out of memory");
    for (uint32_t k = 0; k < g->nalways; k++)
        g->always_gate[k] = gate_cond(&rs->rules[g->always[k]]);
    for (size_t i = 0; i < ni + 1; i++)
        free((char *)exprs[i]);
    for (size_t i = 0; i < nkeys; i++)
        free(keys[i]);
    free(exprs);
    free(owned);
    free(flags);
    free(ids);
    free(keys);
    free(it);
    if (g->db && hs_alloc_scratch(g->db, &rs->scratch_proto) != HS_SUCCESS)
        lsf_die("out of memory (Hyperscan scratch)");
}

/* A rule every group holds: no process.name condition. */
static bool is_generic(const lsf_rule *r)
{
    return !r->napps && !r->app_absent;
}

static int find_app(char **names, size_t n, const char *s)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(names[i], s) == 0)
            return (int)i;
    return -1;
}

int lsf_prefilter_build(lsf_ruleset *rs, lsf_errbuf *err)
{
    (void)err;
    bool platform_ok = hs_valid_platform() == HS_SUCCESS;
    if (!platform_ok && !rs->opts.no_prefilter && !rs->opts.quiet)
        lsf_warn("rules: this CPU lacks SSSE3; Hyperscan is off and every rule is tried");
    size_t nrules = rs->nrules;
    choose_literals(rs, platform_ok);

    /* distinct process.name values */
    size_t cap = 0;
    for (size_t i = 0; i < nrules; i++)
        cap += rs->rules[i].napps;
    rs->app_names = calloc(cap ? cap : 1, sizeof(char *));
    if (!rs->app_names)
        lsf_die("out of memory");
    for (size_t i = 0; i < nrules; i++)
        for (uint32_t k = 0; k < rs->rules[i].napps; k++)
            if (find_app(rs->app_names, rs->napps, rs->rules[i].apps[k]) < 0)
                rs->app_names[rs->napps++] = rs->rules[i].apps[k];
    rs->app_lens = calloc(rs->napps ? rs->napps : 1, sizeof(uint32_t));
    if (!rs->app_lens)
        lsf_die("out of memory");
    for (size_t a = 0; a < rs->napps; a++)
        rs->app_lens[a] = (uint32_t)strlen(rs->app_names[a]);

    /* members of each group, ascending rule index */
    uint32_t *idx = calloc(nrules ? nrules : 1, sizeof(uint32_t));
    rs->apps = calloc(rs->napps ? rs->napps : 1, sizeof(lsf_rgroup));
    if (!idx || !rs->apps)
        lsf_die("out of memory");
    size_t n = 0;
    for (size_t i = 0; i < nrules; i++)
        if (is_generic(&rs->rules[i]))
            idx[n++] = (uint32_t)i;
    group_build(rs, &rs->generic, idx, n, "generic");
    n = 0;
    for (size_t i = 0; i < nrules; i++)
        if (rs->rules[i].app_absent || is_generic(&rs->rules[i]))
            idx[n++] = (uint32_t)i;
    group_build(rs, &rs->noapp, idx, n, "no process.name");
    for (size_t a = 0; a < rs->napps; a++) {
        n = 0;
        for (size_t i = 0; i < nrules; i++) {
            bool member = is_generic(&rs->rules[i]);
            for (uint32_t k = 0; k < rs->rules[i].napps && !member; k++)
                member = strcmp(rs->rules[i].apps[k], rs->app_names[a]) == 0;
            if (member)
                idx[n++] = (uint32_t)i;
        }
        char what[128];
        snprintf(what, sizeof(what), "process.name '%s'", rs->app_names[a]);
        group_build(rs, &rs->apps[a], idx, n, what);
    }
    free(idx);

    rs->lit_need = calloc(nrules ? nrules : 1, 1);
    if (!rs->lit_need)
        lsf_die("out of memory");
    for (size_t i = 0; i < nrules; i++) {
        rs->nalways_total += !rs->rules[i].prefiltered;
        rs->lit_need[i] = (uint8_t)(rs->rules[i].nlits + (rs->rules[i].nany ? 1 : 0));
    }

    /* process.name -> group: open addressing, load <= 1/2 */
    uint32_t size = 8;
    while (size < rs->napps * 2)
        size *= 2;
    rs->app_hash = calloc(size, sizeof(uint32_t));
    if (!rs->app_hash)
        lsf_die("out of memory");
    rs->app_hash_mask = size - 1;
    for (size_t a = 0; a < rs->napps; a++) {
        uint32_t h = hash_str(rs->app_names[a], strlen(rs->app_names[a])) & rs->app_hash_mask;
        while (rs->app_hash[h])
            h = (h + 1) & rs->app_hash_mask;
        rs->app_hash[h] = (uint32_t)a + 1;
    }
    return 0;
}

void lsf_prefilter_free(lsf_ruleset *rs)
{
    group_free(&rs->generic);
    group_free(&rs->noapp);
    for (size_t a = 0; rs->apps && a < rs->napps; a++)
        group_free(&rs->apps[a]);
    free(rs->apps);
    free(rs->app_names); /* the strings belong to the rules' conditions */
    free(rs->app_lens);
    free(rs->lit_need);
    free(rs->app_hash);
    hs_free_scratch(rs->scratch_proto);
    rs->apps = NULL;
    rs->app_names = NULL;
    rs->app_lens = NULL;
    rs->lit_need = NULL;
    rs->app_hash = NULL;
    rs->scratch_proto = NULL;
}

int lsf_prefilter_scratch(lsf_ruleset *rs, hs_scratch_t **out)
{
    *out = NULL;
    if (!rs->scratch_proto)
        return 0;
    return hs_clone_scratch(rs->scratch_proto, out) == HS_SUCCESS ? 0 : -1;
}

void lsf_prefilter_scratch_free(hs_scratch_t *s) { hs_free_scratch(s); }

const lsf_rgroup *lsf_prefilter_app_group(const lsf_ruleset *rs, lsf_str app)
{
    if (!app.ptr)
        return &rs->noapp;
    if (!rs->napps)
        return NULL;
    uint32_t h = hash_str(app.ptr, app.len) & rs->app_hash_mask;
    for (uint32_t slot; (slot = rs->app_hash[h]) != 0; h = (h + 1) & rs->app_hash_mask) {
        if (rs->app_lens[slot - 1] == app.len &&
            memcmp(rs->app_names[slot - 1], app.ptr, app.len) == 0)
            return &rs->apps[slot - 1];
    }
    return NULL;
}

typedef struct scan_ctx {
    const lsf_ruleset *rs;
    lsf_rules_worker *w;
    const lsf_rgroup *g;
} scan_ctx;

static int on_hit(unsigned id, unsigned long long from, unsigned long long to, unsigned flags,
                  void *ctx)
{
    (void)from, (void)to, (void)flags;
    scan_ctx *c = ctx;
    const lsf_rgroup *g = c->g;
    lsf_rules_worker *w = c->w;
    for (uint32_t k = g->expr_off[id]; k < g->expr_off[id + 1]; k++) {
        uint32_t r = g->expr_rules[k] & ~ANY_LIT;
        if (id >= g->nlits) { /* a full expression */
            w->cand[w->ncand++] = r;
            continue;
        }
        /* literals: all of the rule's required ones must be seen, and one
         * of its any-literals, which counts once */
        uint8_t n = w->litcnt[r];
        if (g->expr_rules[k] & ANY_LIT) {
            if (n & LIT_ANY_SEEN)
                continue;
            n |= LIT_ANY_SEEN;
        }
        if ((n & ~LIT_ANY_SEEN) == 0)
            w->touched[w->ntouched++] = r;
        n++;
        w->litcnt[r] = n;
        if ((n & ~LIT_ANY_SEEN) == c->rs->lit_need[r])
            w->cand[w->ncand++] = r;
    }
    return 0;
}

void lsf_prefilter_scan(const lsf_ruleset *rs, const lsf_rgroup *g, lsf_rules_worker *w,
                        const char *p, size_t n)
{
    if (!g->db)
        return;
    scan_ctx c = {rs, w, g};
    hs_scan(g->db, p ? p : "", (unsigned)n, 0, w->scratch, on_hit, &c);
    for (uint32_t i = 0; i < w->ntouched; i++)
        w->litcnt[w->touched[i]] = 0;
    w->ntouched = 0;
}
