/* ruleset.c - builds a rule set from pack files: loads the packs, checks
 * their patterns, compiles the rules (rule.c), sorts them into evaluation
 * order, checks ids are unique, builds the prefilter and the per-worker
 * state; reference counting and per-rule counters.
 *
 * The one design choice to know: rules are sorted once into evaluation
 * order (priority descending, then load order), so a rule's index is its
 * rank and matching simply tries candidates in ascending index order.
 *
 * Threads: one thread builds a set; once returned, it is read-only except for
 * the per-worker slots; the reference count is atomic.
 */
#include <stdlib.h>
#include <string.h>

#include "core/log.h"
#include "rules/rules_int.h"

static void *xcalloc(size_t n, size_t size)
{
    void *p = calloc(n ? n : 1, size);
    if (!p)
        lsf_die("out of memory");
    return p;
}

/* ---- the set --------------------------------------------------------------------- */

static void workers_init(lsf_ruleset *rs)
{
    rs->nworkers = rs->opts.nworkers > 0 ? rs->opts.nworkers : 1;
    rs->workers = xcalloc((size_t)rs->nworkers, sizeof(lsf_rules_worker));
    for (int i = 0; i < rs->nworkers; i++) {
        lsf_rules_worker *w = &rs->workers[i];
        w->md = pcre2_match_data_create(rs->max_groups + 1, NULL);
        w->mctx = pcre2_match_context_create(NULL);
        w->jit_stack = pcre2_jit_stack_create(32 * 1024, 512 * 1024, NULL);
        if (!w->md || !w->mctx || !w->jit_stack)
            lsf_die("out of memory (PCRE2 match state)");
        pcre2_set_match_limit(w->mctx, rs->opts.match_limit);
        pcre2_set_depth_limit(w->mctx, rs->opts.depth_limit);
        pcre2_jit_stack_assign(w->mctx, NULL, w->jit_stack);
        w->cand = xcalloc(rs->nrules, sizeof(uint32_t));
        w->litcnt = xcalloc(rs->nrules, 1);
        w->touched = xcalloc(rs->nrules, sizeof(uint32_t));
        w->numbuf = xcalloc(rs->max_rx ? rs->max_rx : 1, sizeof(*w->numbuf));
        w->counts = xcalloc(rs->nrules, sizeof(lsf_rule_counts));
        w->tick = 0x9E3779B97F4A7C15ull ^ (uint64_t)(i + 1) * 0xBF58476D1CE4E5B9ull;
        if (lsf_prefilter_scratch(rs, &w->scratch) < 0)
            lsf_die("out of memory (Hyperscan scratch)");
    }
}

static void ruleset_free(lsf_ruleset *rs)
{
    for (int i = 0; rs->workers && i < rs->nworkers; i++) {
        lsf_rules_worker *w = &rs->workers[i];
        pcre2_match_data_free(w->md);
        pcre2_match_context_free(w->mctx);
        pcre2_jit_stack_free(w->jit_stack);
        lsf_prefilter_scratch_free(w->scratch);
        free(w->cand);
        free(w->litcnt);
        free(w->touched);
        free(w->numbuf);
        free(w->counts);
        free(w->pending);
    }
    free(rs->workers);
    lsf_prefilter_free(rs);
    for (size_t i = 0; i < rs->nrules; i++)
        lsf_rule_free(&rs->rules[i]);
    free(rs->rules);
    for (size_t i = 0; i < rs->npacks; i++)
        lsf_pack_deinit(&rs->packs[i]);
    free(rs->packs);
    free(rs);
}

lsf_ruleset *lsf_ruleset_ref(lsf_ruleset *rs)
{
    atomic_fetch_add_explicit(&rs->refs, 1, memory_order_relaxed);
    return rs;
}

void lsf_ruleset_unref(lsf_ruleset *rs)
{
    if (rs && atomic_fetch_sub_explicit(&rs->refs, 1, memory_order_acq_rel) == 1)
        ruleset_free(rs);
}

static int cmp_rank(const void *a, const void *b)
{
    const lsf_rule *x = a, *y = b;
    if (x->priority != y->priority)
        return x->priority > y->priority ? -1 : 1;
    return x->load_order < y->load_order ? -1 : x->load_order > y->load_order;
}

static int cmp_id(const void *a, const void *b)
{
    const lsf_rule *x = *(lsf_rule *const *)a, *y = *(lsf_rule *const *)b;
    int c = strcmp(x->id, y->id);
    return c ? c : (x->load_order < y->load_order ? -1 : 1);
}

/* Checks every pack pattern on its own, so a broken unused one is found. */
static int check_patterns(lsf_ruleset *rs, lsf_errbuf *err)
{
    for (size_t i = 0; i < rs->npacks; i++) {
        lsf_pack *pk = &rs->packs[i];
        for (uint32_t k = 0; k < pk->npatterns; k++) {
            const lsf_pattern *pt = &pk->patterns[k];
            lsf_sbuf ex = {0}, rn = {0};
            lsf_posmap exmap = {0}, rnmap = {0};
            lsf_group_name *names = NULL;
            uint32_t nn = 0;
            int rc = lsf_pattern_expand(pt->body, pk, rs->packs, rs->npacks, &ex, &exmap,
                                        pt->node, err);
            if (rc == 0)
                rc = lsf_pattern_rename_groups(ex.p ? ex.p : "", &rn, &rnmap, &names, &nn,
                                               pt->node, err);
            if (rc == 0) {
                int ecode;
                PCRE2_SIZE eoff;
                pcre2_code *c = pcre2_compile((PCRE2_SPTR)rn.p, PCRE2_ZERO_TERMINATED, 0, &ecode,
                                              &eoff, NULL);
                if (!c) {
                    char id[160];
                    snprintf(id, sizeof(id), "pattern %s", pt->name);
                    lsf_regex_error(err, pt->node, id, ecode, eoff, pt->body, &exmap, &rnmap);
                    rc = -1;
                }
                pcre2_code_free(c);
            }
            lsf_sbuf_free(&ex);
            lsf_sbuf_free(&rn);
            lsf_posmap_free(&exmap);
            lsf_posmap_free(&rnmap);
            lsf_group_names_free(names, nn);
            if (rc < 0)
                return -1;
        }
    }
    return 0;
}

static int load_packs(lsf_ruleset *rs, const char *const *paths, size_t npaths, lsf_errbuf *err)
{
    char **files;
    size_t nfiles;
    if (lsf_pack_list_files(paths, npaths, &files, &nfiles, err) < 0)
        return -1;
    int rc = 0;
    rs->packs = xcalloc(nfiles, sizeof(lsf_pack));
    for (size_t i = 0; i < nfiles && rc == 0; i++) {
        rc = lsf_pack_load(files[i], &rs->packs[rs->npacks], err);
        rs->npacks++;
        for (size_t k = 0; rc == 0 && k + 1 < rs->npacks; k++)
            if (strcmp(rs->packs[k].name, rs->packs[rs->npacks - 1].name) == 0)
                rc = lsf_node_error(err, lsf_node_get(rs->packs[rs->npacks - 1].root, "pack"),
                                    "pack '%s' is also defined in %s", rs->packs[k].name,
                                    rs->packs[k].path);
    }
    for (size_t i = 0; i < nfiles; i++)
        free(files[i]);
    free(files);
    return rc;
}

lsf_ruleset *lsf_ruleset_load(const char *const *paths, size_t npaths, const lsf_rules_opts *opts,
                              lsf_errbuf *err)
{
    lsf_ruleset *rs = xcalloc(1, sizeof(*rs));
    atomic_init(&rs->refs, 1);
    rs->opts = *opts;
    if (!rs->opts.match_limit)
        rs->opts.match_limit = LSF_RULES_DEFAULT_MATCH_LIMIT;
    if (!rs->opts.depth_limit)
        rs->opts.depth_limit = LSF_RULES_DEFAULT_DEPTH_LIMIT;
    lsf_rule **byid = NULL;
    if (load_packs(rs, paths, npaths, err) < 0 || check_patterns(rs, err) < 0)
        goto fail;
    size_t total = 0;
    for (size_t i = 0; i < rs->npacks; i++)
        total += rs->packs[i].rules ? rs->packs[i].rules->nchild : 0;
    rs->rules = xcalloc(total, sizeof(lsf_rule));
    for (size_t i = 0; i < rs->npacks; i++) {
        if (!rs->packs[i].rules)
            continue;
        for (const lsf_node *n = rs->packs[i].rules->child; n; n = n->next) {
            lsf_rule *r = &rs->rules[rs->nrules++];
            r->load_order = (uint32_t)rs->nrules - 1;
            if (lsf_rule_compile(rs, r, n, &rs->packs[i], err) < 0)
                goto fail;
        }
    }
    qsort(rs->rules, rs->nrules, sizeof(lsf_rule), cmp_rank);
    byid = xcalloc(rs->nrules, sizeof(lsf_rule *));
    for (size_t i = 0; i < rs->nrules; i++) {
        byid[i] = &rs->rules[i];
        uint32_t caps = 0;
        for (uint32_t k = 0; k < rs->rules[i].nrx; k++)
            caps += rs->rules[i].rx[k].ncaps;
        if (caps > rs->max_caps)
            rs->max_caps = caps;
        if (rs->rules[i].nrx > rs->max_rx)
            rs->max_rx = rs->rules[i].nrx;
    }
    qsort(byid, rs->nrules, sizeof(lsf_rule *), cmp_id);
    for (size_t i = 1; i < rs->nrules; i++) {
        if (strcmp(byid[i]->id, byid[i - 1]->id) == 0) {
            const lsf_node *at = lsf_node_get(byid[i]->node, "id");
            lsf_node_error(err, at, "duplicate rule id '%s' (first in %s at line %d)",
                           byid[i]->id, byid[i - 1]->pack->path,
                           lsf_node_get(byid[i - 1]->node, "id")->line);
            goto fail;
        }
    }
    free(byid);
    byid = NULL;
    if (lsf_prefilter_build(rs, err) < 0)
        goto fail;
    workers_init(rs);
    return rs;
fail:
    free(byid);
    ruleset_free(rs);
    return NULL;
}

/* ---- counts ----------------------------------------------------------------------- */

size_t lsf_ruleset_nrules(const lsf_ruleset *rs) { return rs->nrules; }
size_t lsf_ruleset_npacks(const lsf_ruleset *rs) { return rs->npacks; }
size_t lsf_ruleset_nalways(const lsf_ruleset *rs) { return rs->nalways_total; }
const char *lsf_ruleset_rule_id(const lsf_ruleset *rs, size_t i) { return rs->rules[i].id; }

#define LOAD(x) atomic_load_explicit(&(x), memory_order_relaxed)

void lsf_ruleset_stats(const lsf_ruleset *rs, size_t i, lsf_rule_stats *out)
{
    memset(out, 0, sizeof(*out));
    out->id = rs->rules[i].id;
    out->pack = rs->rules[i].pack->name;
    for (int w = 0; w < rs->nworkers; w++) {
        lsf_rule_counts *c = &rs->workers[w].counts[i];
        out->evals += LOAD(c->evals);
        out->matches += LOAD(c->matches);
        out->limit_hits += LOAD(c->limit_hits);
        out->ns += LOAD(c->ns);
    }
}

void lsf_ruleset_stats_reset(lsf_ruleset *rs)
{
    for (int w = 0; w < rs->nworkers; w++)
        for (size_t i = 0; i < rs->nrules; i++) {
            lsf_rule_counts *c = &rs->workers[w].counts[i];
            atomic_store_explicit(&c->evals, 0, memory_order_relaxed);
            atomic_store_explicit(&c->matches, 0, memory_order_relaxed);
            atomic_store_explicit(&c->limit_hits, 0, memory_order_relaxed);
            atomic_store_explicit(&c->ns, 0, memory_order_relaxed);
        }
}

void lsf_ruleset_print_stats(const lsf_ruleset *rs, FILE *f)
{
    fprintf(f, "%-44s %10s %10s %8s %12s %10s\n", "rule", "evaluated", "matched", "limits",
            "time_us", "ns/eval");
    uint64_t te = 0, tm = 0, tl = 0, tn = 0;
    for (size_t i = 0; i < rs->nrules; i++) {
        lsf_rule_stats s;
        lsf_ruleset_stats(rs, i, &s);
        fprintf(f, "%-44s %10llu %10llu %8llu %12.1f %10.0f\n", s.id,
                (unsigned long long)s.evals, (unsigned long long)s.matches,
                (unsigned long long)s.limit_hits, (double)s.ns / 1000.0,
                s.evals ? (double)s.ns / (double)s.evals : 0.0);
        te += s.evals;
        tm += s.matches;
        tl += s.limit_hits;
        tn += s.ns;
    }
    fprintf(f, "%-44s %10llu %10llu %8llu %12.1f\n", "total", (unsigned long long)te,
            (unsigned long long)tm, (unsigned long long)tl, (double)tn / 1000.0);
}
