/* prefilter.c - picks the few rules worth confirming for a line: rules are
 * grouped by the process.name values their `when` pins (plus one generic
 * group), and each group's message regexes go into one Hyperscan database
 * compiled in prefilter mode.
 *
 * The one design choice to know: Hyperscan's HS_FLAG_PREFILTER answers "this
 * regex may match" with no false negatives, so a line costs one scan of the
 * generic database and one of its process.name group, whatever the number of
 * rules; PCRE2 then confirms only the hits. A regex Hyperscan cannot take
 * even in prefilter mode (\K, \R, subroutine calls, empty matches...) makes
 * its rule a candidate for every line of its group - slower, never wrong.
 *
 * Threads: built once; hs_scan runs on any worker with that worker's scratch.
 */
#include <hs/hs.h>
#include <stdlib.h>
#include <string.h>

#include "core/log.h"
#include "rules/rules_int.h"

#define HS_FLAGS (HS_FLAG_PREFILTER | HS_FLAG_SINGLEMATCH)

static uint32_t hash_str(const char *p, size_t n)
{
    uint32_t h = 2166136261u;
    for (size_t i = 0; i < n; i++) {
        h ^= (unsigned char)p[i];
        h *= 16777619u;
    }
    return h;
}

/* Whether Hyperscan can serve rule r; sets r->no_prefilter_why if not. */
static bool usable(lsf_ruleset *rs, lsf_rule *r, bool platform_ok)
{
    if (rs->opts.no_prefilter) {
        r->no_prefilter_why = "prefilter disabled";
        return false;
    }
    if (!platform_ok) {
        r->no_prefilter_why = "Hyperscan does not support this CPU";
        return false;
    }
    if (r->msg_rx < 0) {
        r->no_prefilter_why = "no regex on the message";
        return false;
    }
    hs_expr_info_t *info = NULL;
    hs_compile_error_t *cerr = NULL;
    if (hs_expression_info(r->rx[r->msg_rx].expanded, HS_FLAGS, &info, &cerr) != HS_SUCCESS) {
        r->no_prefilter_why = "Hyperscan cannot compile it";
        if (!rs->opts.quiet) {
            const lsf_node *at = r->rx[r->msg_rx].node;
            lsf_warn("%s:%d:%d: rule %s is tried on every line of its group: Hyperscan: %s",
                     at->file, at->line, at->col, r->id, cerr ? cerr->message : "error");
        }
        hs_free_compile_error(cerr);
        return false;
    }
    bool empty = info->min_width == 0;
    free(info);
    if (empty) {
        r->no_prefilter_why = "its regex can match an empty string";
        if (!rs->opts.quiet) {
            const lsf_node *at = r->rx[r->msg_rx].node;
            lsf_warn("%s:%d:%d: rule %s: the regex can match an empty string, so no prefilter "
                     "serves it; it is tried on every line of its group", at->file, at->line,
                     at->col, r->id);
        }
        return false;
    }
    return true;
}

static void group_free(lsf_rgroup *g)
{
    free(g->always);
    hs_free_database(g->db);
    memset(g, 0, sizeof(*g));
}

/* Builds group g from the rule indices idx[0..n) (ascending). */
static int group_build(lsf_ruleset *rs, lsf_rgroup *g, uint32_t *idx, size_t n, const char *what)
{
    const char **exprs = calloc(n ? n : 1, sizeof(char *));
    unsigned *flags = calloc(n ? n : 1, sizeof(unsigned));
    unsigned *ids = calloc(n ? n : 1, sizeof(unsigned));
    g->always = calloc(n ? n : 1, sizeof(uint32_t));
    if (!exprs || !flags || !ids || !g->always)
        lsf_die("out of memory");
    g->nrules = (uint32_t)n;
    bool *skip = calloc(n ? n : 1, sizeof(bool));
    if (!skip)
        lsf_die("out of memory");
    for (size_t i = 0; i < n; i++)
        skip[i] = !rs->rules[idx[i]].prefiltered;
    for (;;) {
        size_t m = 0;
        for (size_t i = 0; i < n; i++) {
            if (skip[i])
                continue;
            lsf_rule *r = &rs->rules[idx[i]];
            exprs[m] = r->rx[r->msg_rx].expanded;
            flags[m] = HS_FLAGS;
            ids[m] = idx[i];
            m++;
        }
        if (m == 0)
            break;
        hs_compile_error_t *cerr = NULL;
        if (hs_compile_multi(exprs, flags, ids, (unsigned)m, HS_MODE_BLOCK, NULL, &g->db, &cerr) ==
            HS_SUCCESS)
            break;
        int bad = cerr ? cerr->expression : -1;
        if (bad < 0) { /* the database as a whole failed: no prefilter for the group */
            lsf_warn("rules: Hyperscan cannot build the %s database (%s); its %zu rules are "
                     "tried on every line", what, cerr ? cerr->message : "error", m);
            hs_free_compile_error(cerr);
            for (size_t i = 0; i < n; i++)
                skip[i] = true;
            g->db = NULL;
            break;
        }
        for (size_t i = 0; i < n; i++)
            if (idx[i] == ids[bad]) {
                skip[i] = true;
                lsf_rule *r = &rs->rules[idx[i]];
                r->prefiltered = false;
                r->no_prefilter_why = "Hyperscan cannot compile it";
                if (!rs->opts.quiet)
                    lsf_warn("rules: rule %s is tried on every line of its group: Hyperscan: %s",
                             r->id, cerr->message);
            }
        hs_free_compile_error(cerr);
        g->db = NULL;
    }
    for (size_t i = 0; i < n; i++)
        if (skip[i])
            g->always[g->nalways++] = idx[i];
    free(skip);
    free(exprs);
    free(flags);
    free(ids);
    if (g->db && hs_alloc_scratch(g->db, &rs->scratch_proto) != HS_SUCCESS)
        lsf_die("out of memory (Hyperscan scratch)");
    return 0;
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
    for (size_t i = 0; i < nrules; i++)
        rs->rules[i].prefiltered = usable(rs, &rs->rules[i], platform_ok);

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

    /* members of each group, ascending rule index */
    uint32_t *idx = calloc(nrules ? nrules : 1, sizeof(uint32_t));
    rs->apps = calloc(rs->napps ? rs->napps : 1, sizeof(lsf_rgroup));
    if (!idx || !rs->apps)
        lsf_die("out of memory");
    size_t n = 0;
    for (size_t i = 0; i < nrules; i++)
        if (!rs->rules[i].napps)
            idx[n++] = (uint32_t)i;
    group_build(rs, &rs->generic, idx, n, "generic");
    for (size_t a = 0; a < rs->napps; a++) {
        n = 0;
        for (size_t i = 0; i < nrules; i++)
            for (uint32_t k = 0; k < rs->rules[i].napps; k++)
                if (strcmp(rs->rules[i].apps[k], rs->app_names[a]) == 0) {
                    idx[n++] = (uint32_t)i;
                    break;
                }
        char what[128];
        snprintf(what, sizeof(what), "process.name '%s'", rs->app_names[a]);
        group_build(rs, &rs->apps[a], idx, n, what);
    }
    free(idx);

    for (size_t i = 0; i < nrules; i++)
        rs->nalways_total += !rs->rules[i].prefiltered;

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
    for (size_t a = 0; rs->apps && a < rs->napps; a++)
        group_free(&rs->apps[a]);
    free(rs->apps);
    free(rs->app_names); /* the strings belong to the rules' conditions */
    free(rs->app_hash);
    hs_free_scratch(rs->scratch_proto);
    rs->apps = NULL;
    rs->app_names = NULL;
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
    if (!rs->napps || !app.ptr)
        return NULL;
    uint32_t h = hash_str(app.ptr, app.len) & rs->app_hash_mask;
    for (uint32_t slot; (slot = rs->app_hash[h]) != 0; h = (h + 1) & rs->app_hash_mask) {
        const char *name = rs->app_names[slot - 1];
        if (strlen(name) == app.len && memcmp(name, app.ptr, app.len) == 0)
            return &rs->apps[slot - 1];
    }
    return NULL;
}

static int on_hit(unsigned id, unsigned long long from, unsigned long long to, unsigned flags,
                  void *ctx)
{
    (void)from, (void)to, (void)flags;
    lsf_rules_worker *w = ctx;
    w->cand[w->ncand++] = id;
    return 0;
}

void lsf_prefilter_scan(const lsf_ruleset *rs, const lsf_rgroup *g, lsf_rules_worker *w,
                        const char *p, size_t n)
{
    (void)rs;
    for (uint32_t i = 0; i < g->nalways; i++)
        w->cand[w->ncand++] = g->always[i];
    if (g->db)
        hs_scan(g->db, p ? p : "", (unsigned)n, 0, w->scratch, on_hit, w);
}
