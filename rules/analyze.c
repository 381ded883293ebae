/* analyze.c - what can be learnt from a regex without running it: the
 * literals every match must contain (for the prefilter) and nested
 * quantifiers that can backtrack catastrophically (for `logsift check`).
 *
 * The one design choice to know: both are conservative readings of PCRE2
 * syntax. A literal is reported only when it lies on the path every match
 * takes (not inside an alternation, an optional group, a lookaround); any
 * construct the reader does not model makes it report nothing, and the
 * caller then falls back to the full regex - slower, never wrong.
 *
 * Threads: pure functions.
 */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include "core/log.h"
#include "rules/rules_int.h"

/* ---- nested-quantifier lint ---------------------------------------------------
 * A group repeated without bound whose body holds an unbounded repeat and
 * nothing else that must match in each iteration (every other item is
 * optional), or holds ".*" / ".+", lets the engine split one run of input
 * between the two repeats in exponentially many ways: (a+)+, (\w+\s?)*,
 * (.*,)+ . Possessive quantifiers and atomic groups are exempt. A heuristic:
 * it misses overlaps hidden in alternations and may flag a safe pattern. */

typedef struct lint_group {
    long start;          /* offset of '(' */
    bool atomic;
    bool has_unbounded;  /* an unbounded repeat in the current branch or a nested group */
    bool has_required;   /* an item matched exactly at least once, not the repeat */
    bool has_dot_repeat; /* .* or .+ */
    bool risky;          /* a finished branch was risky */
} lint_group;

/* Reads the quantifier at p; returns its length, *unbounded and *optional. */
static size_t quantifier(const char *p, bool *unbounded, bool *optional, bool *possessive)
{
    size_t n = 0;
    *unbounded = *optional = *possessive = false;
    if (*p == '*') {
        *unbounded = *optional = true;
        n = 1;
    } else if (*p == '+') {
        *unbounded = true;
        n = 1;
    } else if (*p == '?') {
        *optional = true;
        n = 1;
    } else if (*p == '{') {
        const char *q = p + 1;
        long lo = 0;
        bool digits = false;
        while (isdigit((unsigned char)*q)) {
            lo = lo * 10 + (*q - '0');
            q++;
            digits = true;
        }
        if (!digits) {
            /* "{,n}" and spaced forms: literal text before PCRE2 10.43, a
             * repeat from it on; read as an optional repeat either way, which
             * is the safe reading for both readers of this file */
            const char *e = q;
            while (*e == ',' || *e == ' ' || isdigit((unsigned char)*e))
                e++;
            if (*e != '}' || e == q || !strchr(q, ','))
                return 0;
            *optional = true;
            n = (size_t)(e - p) + 1;
            goto suffix;
        }
        if (*q == '}') {
            n = (size_t)(q - p) + 1;
        } else if (*q == ',') {
            q++;
            bool hi = false;
            while (isdigit((unsigned char)*q)) {
                q++;
                hi = true;
            }
            if (*q != '}')
                return 0;
            *unbounded = !hi;
            n = (size_t)(q - p) + 1;
        } else {
            return 0;
        }
        *optional = lo == 0;
    } else {
        return 0;
    }
suffix:
    if (p[n] == '+')
        *possessive = true;
    if (p[n] == '+' || p[n] == '?')
        n++;
    return n;
}

static bool branch_risky(const lint_group *g)
{
    return g->has_dot_repeat || (g->has_unbounded && !g->has_required);
}

long lsf_pattern_nested_quantifier(const char *src)
{
    lint_group st[64];
    int depth = 0;
    st[0] = (lint_group){.start = -1};
    const char *p = src;
    while (*p) {
        /* one item: a group open/close, or an atom followed by a quantifier */
        if (*p == '(' && !(p[1] == '?' && p[2] == '#')) {
            if (depth == 63)
                return -1;
            bool atomic = p[1] == '?' && p[2] == '>';
            st[++depth] = (lint_group){.start = p - src, .atomic = atomic};
            p++;
            if (*p == '?') { /* skip what says which kind of group it is */
                p++;
                if (strchr("=!>|", *p) && *p) {
                    p++;
                } else if (*p == '<' && (p[1] == '=' || p[1] == '!')) {
                    p += 2;
                } else if (*p == '<' || *p == '\'' || (*p == 'P' && p[1] == '<')) {
                    const char *e = strpbrk(p + 1 + (*p == 'P'), ">'");
                    p = e ? e + 1 : p + 1;
                } else { /* options: (?i) (?i: (?-s: */
                    while (*p && (isalpha((unsigned char)*p) || *p == '-' || *p == '^'))
                        p++;
                    if (*p == ':')
                        p++;
                }
            }
            continue;
        }
        if (*p == '|') {
            if (branch_risky(&st[depth]))
                st[depth].risky = true;
            st[depth].has_unbounded = st[depth].has_required = st[depth].has_dot_repeat = false;
            p++;
            continue;
        }
        bool is_close = *p == ')' && depth > 0;
        bool dot = *p == '.';
        size_t alen = is_close ? 1 : lsf_re_opaque_len(p);
        if (!alen)
            alen = 1;
        const char *q = p + alen;
        bool unb, opt, poss;
        size_t qlen = quantifier(q, &unb, &opt, &poss);
        if (is_close) {
            lint_group g = st[depth--];
            bool risky = g.risky || branch_risky(&g);
            if (qlen && unb && !poss && !g.atomic && risky)
                return g.start;
            lint_group *parent = &st[depth];
            /* the closed group is one item of its parent */
            if (g.has_unbounded || g.risky || (qlen && unb))
                parent->has_unbounded = true;
            if (qlen && unb && !poss && g.has_dot_repeat)
                parent->has_dot_repeat = true;
            if (!(qlen && (opt || unb)) && !(g.has_unbounded && !g.has_required))
                parent->has_required = true;
        } else if (qlen) {
            if (unb && !poss) {
                st[depth].has_unbounded = true;
                if (dot)
                    st[depth].has_dot_repeat = true;
            }
            if (!opt && !unb)
                st[depth].has_required = true;
        } else if (*p != '^' && *p != '$') {
            st[depth].has_required = true;
        }
        p = q + qlen;
    }
    return -1;
}

/* ---- required literals ----------------------------------------------------------
 * A small recursive reader: a branch is a sequence of atoms; a literal run
 * grows with each plain character that is required exactly where it stands
 * and is cut by anything else (a class, an optional atom, a group edge). */

typedef struct lit_reader {
    const char *p;
    lsf_litset *out;
    lsf_sbuf cur;   /* the literal run being built */
    bool fail;      /* a construct we do not model: report nothing */
} lit_reader;

static void lit_cut(lit_reader *r, bool keep)
{
    if (keep && r->cur.len >= 1 && r->out->n < LSF_MAX_LITERALS)
        r->out->v[r->out->n++] = strndup(r->cur.p, r->cur.len);
    r->cur.len = 0;
}

static void lit_alt(lit_reader *r, bool required);

/* Reads a quantifier at r->p, if any; returns whether the atom is optional. */
static bool lit_quant(lit_reader *r, bool *repeated)
{
    bool unb, opt, poss;
    size_t q = quantifier(r->p, &unb, &opt, &poss);
    r->p += q;
    *repeated = q && !opt;
    return q && opt;
}

/* Finds the ')' closing the group whose body starts at p, and whether the
 * body alternates at its top level; -1 when unterminated. */
static int group_scan(const char *p, const char **close, bool *alternates)
{
    int depth = 0;
    *alternates = false;
    for (const char *q = p; *q;) {
        size_t o = lsf_re_opaque_len(q);
        if (o) {
            q += o;
            continue;
        }
        if (*q == '(') {
            depth++;
        } else if (*q == ')') {
            if (depth-- == 0) {
                *close = q;
                return 0;
            }
        } else if (*q == '|' && depth == 0) {
            *alternates = true;
        }
        q++;
    }
    return -1;
}

static void lit_branch(lit_reader *r, bool required);

/* A group at r->p ('('); literals inside are required if `required` and the
 * group is neither optional nor a lookaround nor alternated. */
static void lit_group(lit_reader *r, bool required)
{
    const char *p = r->p + 1;
    bool look = false;
    if (p[0] == '?' && p[1] == '#') { /* a comment: nothing at all */
        const char *e = strchr(p, ')');
        r->p = e ? e + 1 : p + strlen(p);
        return;
    }
    if (*p == '?') {
        p++;
        if (*p == ':' || *p == '>') {
            p++;
        } else if (*p == '=' || *p == '!') {
            look = true;
            p++;
        } else if (*p == '<' && (p[1] == '=' || p[1] == '!')) {
            look = true;
            p += 2;
        } else if (*p == '<' || *p == '\'' || (*p == 'P' && p[1] == '<')) {
            const char *e = strpbrk(p + 1 + (*p == 'P'), ">'");
            if (!e) {
                r->fail = true;
                return;
            }
            p = e + 1;
        } else { /* option letters: (?i) (?i: (?-s: ... */
            bool caseless = false;
            const char *q = p;
            while (*q && (isalpha((unsigned char)*q) || *q == '-' || *q == '^')) {
                if (*q == 'x' || *q == 'n')
                    r->fail = true; /* extended syntax / no-auto-capture: not modelled */
                caseless |= *q == 'i';
                q++;
            }
            if (r->fail || (*q != ')' && *q != ':')) {
                r->fail = true;
                return;
            }
            r->out->caseless |= caseless;
            if (*q == ')') { /* option setting, no body */
                r->p = q + 1;
                return;
            }
            p = q + 1;
        }
    } else if (*p == '*') {
        r->fail = true; /* (*VERB) */
        return;
    }
    /* a group taken exactly once, without alternatives, is transparent: its
     * text continues the literal around it ("id=(?<n>42) ok" has "id=42 ok") */
    const char *close;
    bool alternates;
    bool unb, opt, poss;
    if (!look && group_scan(p, &close, &alternates) == 0 && !alternates &&
        !quantifier(close + 1, &unb, &opt, &poss)) {
        r->p = p;
        lit_branch(r, required);
        if (r->fail || r->p != close) {
            r->fail = true;
            return;
        }
        r->p = close + 1;
        return;
    }
    lit_cut(r, required);
    size_t before = r->out->n;
    r->p = p;
    lit_alt(r, required && !look);
    if (r->fail || *r->p != ')') {
        r->fail = true;
        return;
    }
    r->p++;
    bool repeated;
    if (lit_quant(r, &repeated)) { /* optional group: what it required is not */
        while (r->out->n > before)
            free(r->out->v[--r->out->n]);
    }
}

/* A branch: atoms up to '|' or ')' or the end. */
static void lit_branch(lit_reader *r, bool required)
{
    while (*r->p && *r->p != '|' && *r->p != ')' && !r->fail) {
        const char *p = r->p;
        bool repeated;
        if (*p == '(') {
            lit_group(r, required);
            continue;
        }
        if (*p == '^' || *p == '$') {
            r->p++;
            continue;
        }
        if (*p == '[' || *p == '.') {
            lit_cut(r, required);
            r->p += *p == '[' ? lsf_re_class_len(p) : 1;
            lit_quant(r, &repeated);
            continue;
        }
        if (*p == '*' || *p == '+' || *p == '?' || (*p == '{' && isdigit((unsigned char)p[1]))) {
            r->fail = true; /* a quantifier with nothing before it */
            return;
        }
        char c;
        if (*p == '\\') {
            if (p[1] == 'Q') { /* \Q...\E: every character literal */
                const char *e = strstr(p + 2, "\\E");
                const char *end = e ? e : p + strlen(p);
                for (const char *q = p + 2; q < end; q++)
                    lsf_sbuf_add(&r->cur, q, 1);
                r->p = e ? e + 2 : end;
                if (quantifier(r->p, &(bool){0}, &(bool){0}, &(bool){0})) {
                    lit_cut(r, false); /* the last character is quantified: keep it simple */
                    lit_quant(r, &repeated);
                }
                continue;
            }
            if (strchr("bBAzZGK", p[1]) && p[1]) { /* zero width */
                r->p += 2;
                continue;
            }
            if (isalnum((unsigned char)p[1]) || !p[1]) { /* classes, refs, \x.. \t ...: cut */
                lit_cut(r, required);
                r->p += lsf_re_escape_len(p);
                lit_quant(r, &repeated);
                continue;
            }
            c = p[1]; /* an escaped punctuation character stands for itself */
            r->p += 2;
        } else {
            c = *p;
            r->p++;
        }
        if (lit_quant(r, &repeated)) { /* optional: not required, and it cuts */
            lit_cut(r, required);
            continue;
        }
        lsf_sbuf_add(&r->cur, &c, 1);
        if (repeated) /* required once, but what follows is not adjacent */
            lit_cut(r, required);
    }
}

/* The first '|' of the level starting at s: before e, or (e NULL) before
 * the ')' that closes the level or the end; NULL when the level does not
 * alternate. */
static const char *top_bar(const char *s, const char *e)
{
    int depth = 0;
    for (const char *q = s; e ? q < e : *q != 0;) {
        size_t o = lsf_re_opaque_len(q);
        if (o) {
            q += o;
            continue;
        }
        if (*q == '(')
            depth++;
        else if (*q == ')' && depth-- == 0)
            return NULL;
        else if (*q == '|' && depth == 0)
            return q;
        q++;
    }
    return NULL;
}

static void lit_alt(lit_reader *r, bool required)
{
    /* does this level alternate? then nothing in it is required */
    bool alternates = top_bar(r->p, NULL) != NULL;
    do {
        if (*r->p == '|')
            r->p++;
        lit_branch(r, required && !alternates);
        lit_cut(r, required && !alternates);
    } while (*r->p == '|' && !r->fail);
}

void lsf_litset_free(lsf_litset *s)
{
    for (size_t i = 0; i < s->n; i++)
        free(s->v[i]);
    memset(s, 0, sizeof(*s));
}

int lsf_pattern_literals(const char *re, lsf_litset *out)
{
    memset(out, 0, sizeof(*out));
    lit_reader r = {.p = re, .out = out};
    lit_alt(&r, true);
    lsf_sbuf_free(&r.cur);
    if (r.fail || *r.p) {
        lsf_litset_free(out);
        return -1;
    }
    /* keep distinct ones */
    size_t n = 0;
    for (size_t i = 0; i < out->n; i++) {
        bool dup = false;
        for (size_t k = 0; k < n && !dup; k++)
            dup = strcmp(out->v[k], out->v[i]) == 0;
        if (dup)
            free(out->v[i]);
        else
            out->v[n++] = out->v[i];
    }
    out->n = n;
    return 0;
}

/* ---- literals of which every match contains one ------------------------------------
 * For a regex without a required literal long enough to select anything, a
 * required alternation often has one in each branch: nginx's
 * "(?:upstream timed out|connect\(\) failed|...)", ASA's "(?:Inbound ...|Deny
 * inbound ...)". Every match goes through one branch, so it contains that
 * branch's literal. The reader walks the sequence every match takes
 * (entering groups taken at least once, skipping optional groups and
 * lookarounds) and keeps the alternation whose shortest branch literal is the
 * longest; a branch without a literal of its own may stand on an alternation
 * it requires in turn. */

typedef struct any_reader {
    size_t min_len;
    lsf_litset best;
    size_t best_score; /* length of best's shortest literal; 0: none yet */
    bool caseless;
} any_reader;

static void any_walk(any_reader *a, const char *s, const char *e);

/* Moves *lit into set unless there already; false when the set is full. */
static bool any_add(lsf_litset *set, char **lit)
{
    for (size_t k = 0; k < set->n; k++)
        if (strcmp(set->v[k], *lit) == 0)
            return true;
    if (set->n == LSF_MAX_LITERALS)
        return false;
    set->v[set->n++] = *lit;
    *lit = NULL;
    return true;
}

/* The alternation [s, e): the longest literal of each branch, if every
 * branch has one of at least min_len bytes. */
static void any_consider(any_reader *a, const char *s, const char *e)
{
    lsf_litset set = {0};
    size_t score = SIZE_MAX;
    bool ok = true;
    for (const char *b = s; ok && b <= e;) {
        const char *bar = top_bar(b, e);
        if (!bar)
            bar = e;
        char *branch = strndup(b, (size_t)(bar - b));
        lsf_litset lits;
        if (!branch)
            lsf_die("out of memory");
        ok = lsf_pattern_literals(branch, &lits) == 0;
        free(branch);
        size_t pick = SIZE_MAX, plen = 0;
        for (size_t k = 0; ok && k < lits.n; k++) {
            size_t n = strlen(lits.v[k]);
            if (n >= a->min_len && n > plen)
                pick = k, plen = n;
        }
        if (ok && pick == SIZE_MAX) {
            /* no literal of its own: one of a nested alternation's will do
             * ("/(?:wp-login\.php|\.env)") */
            any_reader sub = {.min_len = a->min_len};
            char *inner = strndup(b, (size_t)(bar - b));
            if (!inner)
                lsf_die("out of memory");
            any_walk(&sub, inner, inner + strlen(inner));
            free(inner);
            ok = sub.best_score > 0;
            for (size_t k = 0; ok && k < sub.best.n; k++)
                ok = any_add(&set, &sub.best.v[k]);
            if (ok && sub.best_score < score)
                score = sub.best_score;
            a->caseless |= sub.caseless;
            lsf_litset_free(&sub.best);
        } else if (ok) {
            a->caseless |= lits.caseless;
            ok = any_add(&set, &lits.v[pick]);
            if (plen < score)
                score = plen;
        }
        lsf_litset_free(&lits);
        b = bar + 1;
    }
    if (ok && score > a->best_score) {
        lsf_litset_free(&a->best);
        a->best = set;
        a->best_score = score;
    } else {
        lsf_litset_free(&set);
    }
}

/* The sequence [s, e), which every match takes. */
static void any_walk(any_reader *a, const char *s, const char *e)
{
    if (top_bar(s, e)) {
        any_consider(a, s, e);
        return;
    }
    for (const char *q = s; q < e;) {
        size_t o = lsf_re_opaque_len(q);
        if (o) {
            q += o;
            continue;
        }
        if (*q != '(') {
            q++;
            continue;
        }
        const char *body = q + 1, *close;
        bool enter = true, alternates, unb, opt, poss;
        if (*body == '?') { /* plain, atomic, named and option groups are entered */
            const char *p = body + 1;
            const char *f = p;
            while (isalpha((unsigned char)*f) || *f == '-' || *f == '^')
                f++; /* (?i: ... ): any_options has made the literals caseless */
            if (*p == ':' || *p == '>')
                body = p + 1;
            else if ((*p == '<' && p[1] != '=' && p[1] != '!') || *p == '\'' ||
                     (*p == 'P' && p[1] == '<')) {
                const char *n = strpbrk(p + 1, ">'");
                enter = n != NULL;
                body = n ? n + 1 : body;
            } else if (f > p && *f == ':')
                body = f + 1;
            else
                enter = false;
        } else if (*body == '*') {
            enter = false;
        }
        if (group_scan(body, &close, &alternates) < 0 || close > e)
            return; /* unbalanced: give up on the rest */
        q = close + 1;
        q += quantifier(q, &unb, &opt, &poss);
        if (enter && !opt)
            any_walk(a, body, close);
    }
}

/* Option settings and verbs anywhere in re: (?x) and (?n) change what the
 * text means, (*VERB) is not modelled; (?i) makes every literal caseless. */
static bool any_options(const char *re, bool *caseless)
{
    for (const char *q = re; *q;) {
        size_t o = lsf_re_opaque_len(q);
        if (o) {
            q += o;
            continue;
        }
        if (q[0] == '(' && q[1] == '*')
            return false;
        if (q[0] == '(' && q[1] == '?') {
            for (const char *p = q + 2; isalpha((unsigned char)*p) || *p == '-' || *p == '^'; p++) {
                if (*p == 'x' || *p == 'n')
                    return false;
                *caseless |= *p == 'i';
            }
        }
        q++;
    }
    return true;
}

int lsf_pattern_any_literals(const char *re, size_t min_len, lsf_litset *out)
{
    memset(out, 0, sizeof(*out));
    any_reader a = {.min_len = min_len ? min_len : 1};
    if (!any_options(re, &a.caseless))
        return -1;
    any_walk(&a, re, re + strlen(re));
    if (!a.best_score)
        return -1;
    *out = a.best;
    out->caseless = a.caseless;
    return 0;
}
