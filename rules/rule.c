/* rule.c - validates and compiles one rule of a pack: field names, `when`
 * conditions, `match` regexes with typed captures, severity, tags, `set`,
 * `copy` and `drop`.
 *
 * The one design choice to know: everything a rule writes onto an event as a
 * string (id, pack, severity name, tags, set values, ATT&CK ids) is packed
 * into one blob per rule, so a match copies it into the batch arena with a
 * single allocation; the event then never points into the rule set, which
 * is what lets a reload free an old set at any time.
 *
 * Threads: called by the thread building a rule set.
 */
#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/log.h"
#include "rules/rules_int.h"

#define PRIORITY_MAX 1000000

static void *xcalloc(size_t n, size_t size)
{
    void *p = calloc(n ? n : 1, size);
    if (!p)
        lsf_die("out of memory");
    return p;
}

static char *xstrdup(const char *s)
{
    char *d = strdup(s);
    if (!d)
        lsf_die("out of memory");
    return d;
}

/* ---- field names ---------------------------------------------------------------- */

static const char *const reserved[] = {
    "@timestamp", "event.ingested", "event.original", "tags", "rule.id", "rule.ruleset",
    "rule.severity", "event.severity", "log.syslog.priority", "log.syslog.facility.code",
    "log.syslog.facility.name", "log.syslog.severity.code", "log.syslog.severity.name",
    "log.syslog.version", "log.syslog.structured_data", "log.source.address", NULL};

bool lsf_field_reserved(const char *name)
{
    for (int i = 0; reserved[i]; i++)
        if (strcmp(reserved[i], name) == 0)
            return true;
    return false;
}

/* A reserved name that lsf_event_get_str does not map onto an event member
 * (or the PRI), i.e. one it reads as a dynamic field: rule.id is read by
 * every detection's `when`, so it skips get_str's chain of comparisons. */
static bool held_as_field(const char *name)
{
    static const char *const members[] = {
        "event.original", "log.source.address", "log.syslog.priority",
        "log.syslog.facility.code", "log.syslog.facility.name", "log.syslog.severity.code",
        "log.syslog.severity.name", NULL};
    for (int i = 0; members[i]; i++)
        if (strcmp(members[i], name) == 0)
            return false;
    return true;
}

lsf_fieldref lsf_fieldref_make(const char *name)
{
    static const struct {
        const char *name;
        uint8_t fx;
    } fixed[] = {{"message", LSF_FX_MESSAGE},       {"host.name", LSF_FX_HOST},
                 {"log.syslog.hostname", LSF_FX_HOST}, {"process.name", LSF_FX_APP},
                 {"log.syslog.appname", LSF_FX_APP}, {"process.pid", LSF_FX_PROCID},
                 {"log.syslog.procid", LSF_FX_PROCID}, {"log.syslog.msgid", LSF_FX_MSGID}};
    lsf_fieldref f = {.fx = LSF_FX_DYNAMIC};
    uint16_t id = lsf_field_intern(name, strlen(name));
    const char *interned = lsf_field_name(id);
    f.name = lsf_str_make(interned, strlen(interned));
    for (size_t i = 0; i < sizeof(fixed) / sizeof(fixed[0]); i++)
        if (strcmp(fixed[i].name, name) == 0)
            f.fx = fixed[i].fx;
    if (f.fx == LSF_FX_DYNAMIC && lsf_field_reserved(name))
        f.fx = held_as_field(name) ? LSF_FX_RESERVED : LSF_FX_READONLY;
    return f;
}

static bool valid_field_name(const char *s)
{
    if (!s[0] || s[0] == '.' || s[strlen(s) - 1] == '.' || strstr(s, ".."))
        return false;
    for (const char *p = s; *p; p++)
        if (!(isalnum((unsigned char)*p) || *p == '_' || *p == '.' || *p == '@' || *p == '-'))
            return false;
    return true;
}

/* A field a rule writes (capture, set, copy destination). */
static int writable_field(const char *name, const lsf_node *at, lsf_fieldref *out,
                          lsf_errbuf *err)
{
    if (!valid_field_name(name))
        return lsf_node_error(err, at, "bad field name '%s'", name);
    *out = lsf_fieldref_make(name);
    if (out->fx == LSF_FX_READONLY || out->fx == LSF_FX_RESERVED)
        return lsf_node_error(err, at, "field '%s' is set by logsift itself; a rule cannot "
                              "write it", name);
    return 0;
}

/* A field a rule reads: any name an input can produce (JSON keys may hold
 * '/' or ':'), so only empty names and control characters are refused. */
static int readable_field(const char *name, const lsf_node *at, lsf_fieldref *out,
                          lsf_errbuf *err)
{
    bool ok = name[0] != 0;
    for (const unsigned char *p = (const unsigned char *)name; *p && ok; p++)
        ok = *p > 0x20 && *p != 0x7f;
    if (!ok)
        return lsf_node_error(err, at, "bad field name '%s'", name);
    *out = lsf_fieldref_make(name);
    return 0;
}

/* ---- severity --------------------------------------------------------------------- */

static const char *const sev_names[] = {NULL, "info", "low", "medium", "high", "critical"};

const char *lsf_severity_level_name(int sev)
{
    return sev >= 1 && sev <= 5 ? sev_names[sev] : NULL;
}

int lsf_severity_level_parse(const char *s)
{
    for (int i = 1; i <= 5; i++)
        if (strcmp(s, sev_names[i]) == 0)
            return i;
    if (strcmp(s, "informational") == 0)
        return 1;
    if (s[0] >= '1' && s[0] <= '5' && !s[1])
        return s[0] - '0';
    return -1;
}

/* ---- conditions ----------------------------------------------------------------- */

static int parse_cidr(const char *s, lsf_cidr *c)
{
    char buf[64];
    const char *slash = strchr(s, '/');
    size_t n = slash ? (size_t)(slash - s) : strlen(s);
    if (n >= sizeof(buf))
        return -1;
    memcpy(buf, s, n);
    buf[n] = 0;
    memset(c, 0, sizeof(*c));
    if (inet_pton(AF_INET, buf, c->addr) == 1)
        c->family = 4;
    else if (inet_pton(AF_INET6, buf, c->addr) == 1)
        c->family = 6;
    else
        return -1;
    int max = c->family == 4 ? 32 : 128;
    int bits = max;
    if (slash) {
        char *end;
        long v = strtol(slash + 1, &end, 10);
        if (!slash[1] || *end || v < 0 || v > max)
            return -1;
        bits = (int)v;
    }
    c->bits = (uint8_t)bits;
    /* clear host bits so matching is a plain prefix compare */
    for (int i = bits; i < max; i++)
        c->addr[i / 8] &= (uint8_t)~(0x80u >> (i % 8));
    return 0;
}

/* Collects the scalar values of a scalar-or-list node into c->strs. */
static int cond_strings(lsf_cond *c, const lsf_node *v, const char *op, lsf_errbuf *err)
{
    const lsf_node *one = v->kind == LSF_NODE_SCALAR ? v : NULL;
    size_t n = one ? 1 : v->nchild;
    if (v->kind == LSF_NODE_MAP)
        return lsf_node_error(err, v, "'%s' takes a value or a list of values", op);
    if (n == 0)
        return lsf_node_error(err, v, "'%s' needs at least one value", op);
    c->strs = xcalloc(n, sizeof(char *));
    c->lens = xcalloc(n, sizeof(uint32_t));
    for (const lsf_node *e = one ? one : v->child; e; e = one ? NULL : e->next) {
        if (e->kind != LSF_NODE_SCALAR || !e->str)
            return lsf_node_error(err, e, "'%s' values must be plain strings or numbers", op);
        c->strs[c->nstrs] = xstrdup(e->str);
        c->lens[c->nstrs++] = (uint32_t)strlen(e->str);
    }
    return 0;
}

static int cond_cidrs(lsf_cond *c, const lsf_node *v, const char *op, lsf_errbuf *err)
{
    const lsf_node *one = v->kind == LSF_NODE_SCALAR ? v : NULL;
    size_t n = one ? 1 : v->nchild;
    if (v->kind == LSF_NODE_MAP || n == 0)
        return lsf_node_error(err, v, "'%s' takes a network (10.0.0.0/8) or a list of them", op);
    c->cidrs = xcalloc(n, sizeof(lsf_cidr));
    for (const lsf_node *e = one ? one : v->child; e; e = one ? NULL : e->next) {
        if (e->kind != LSF_NODE_SCALAR || parse_cidr(e->str, &c->cidrs[c->ncidrs]) < 0)
            return lsf_node_error(err, e, "'%s': '%s' is not an address or network such as "
                                  "10.0.0.0/8 or 2001:db8::/32", op, e->str ? e->str : "");
        c->ncidrs++;
    }
    return 0;
}

static const struct {
    const char *name;
    uint8_t op;
} ops[] = {{"eq", LSF_OP_EQ},         {"ne", LSF_OP_NE},       {"in", LSF_OP_IN},
           {"not_in", LSF_OP_NOT_IN}, {"prefix", LSF_OP_PREFIX}, {"suffix", LSF_OP_SUFFIX},
           {"contains", LSF_OP_CONTAINS}, {"cidr", LSF_OP_CIDR}, {"not_cidr", LSF_OP_NOT_CIDR},
           {"gt", LSF_OP_GT},         {"ge", LSF_OP_GE},       {"lt", LSF_OP_LT},
           {"le", LSF_OP_LE},         {"exists", LSF_OP_EXISTS}};

/* One operator of a condition map: {prefix: x}, {ge: 400}, ... */
static int cond_op(lsf_cond *c, const lsf_node *e, lsf_errbuf *err)
{
    int op = -1;
    for (size_t i = 0; i < sizeof(ops) / sizeof(ops[0]); i++)
        if (strcmp(ops[i].name, e->key) == 0)
            op = ops[i].op;
    if (op < 0) {
        lsf_node at = {.file = e->file, .line = e->key_line, .col = e->key_col};
        return lsf_node_error(err, &at, "unknown condition '%s' (eq, ne, in, not_in, prefix, "
                              "suffix, contains, cidr, not_cidr, gt, ge, lt, le, exists)", e->key);
    }
    c->op = (uint8_t)op;
    switch (op) {
    case LSF_OP_EQ:
    case LSF_OP_NE:
        if (e->kind != LSF_NODE_SCALAR)
            return lsf_node_error(err, e, "'%s' takes one value", e->key);
        return cond_strings(c, e, e->key, err);
    case LSF_OP_CIDR:
    case LSF_OP_NOT_CIDR:
        return cond_cidrs(c, e, e->key, err);
    case LSF_OP_GT:
    case LSF_OP_GE:
    case LSF_OP_LT:
    case LSF_OP_LE: {
        char *end = NULL;
        errno = 0;
        if (e->kind == LSF_NODE_SCALAR && e->str && e->str[0])
            c->num = strtod(e->str, &end);
        if (!end || *end || errno || !isfinite(c->num))
            return lsf_node_error(err, e, "'%s' takes a number", e->key);
        return 0;
    }
    case LSF_OP_EXISTS:
        if (e->kind != LSF_NODE_SCALAR || lsf_parse_bool(e->str, &c->exists) < 0)
            return lsf_node_error(err, e, "'exists' takes true or false");
        return 0;
    default:
        return cond_strings(c, e, e->key, err);
    }
}

/* Compiles a `when:` map into *out (n conditions); on error the conditions
 * compiled so far stay in *out for the caller to free. */
static int compile_conds(lsf_cond **out, uint32_t *nout, const lsf_node *when, lsf_errbuf *err)
{
    if (when->kind != LSF_NODE_MAP)
        return lsf_node_error(err, when, "'when' must be a map of field: condition");
    size_t n = 0;
    for (const lsf_node *f = when->child; f; f = f->next)
        n += f->kind == LSF_NODE_MAP ? (f->nchild ? f->nchild : 1) : 1;
    lsf_cond *conds = *out = xcalloc(n, sizeof(lsf_cond));
    for (const lsf_node *f = when->child; f; f = f->next) {
        lsf_node keyat = {.file = f->file, .line = f->key_line, .col = f->key_col};
        lsf_fieldref ref;
        if (readable_field(f->key, &keyat, &ref, err) < 0)
            return -1;
        if (f->kind == LSF_NODE_MAP) {
            if (!f->child)
                return lsf_node_error(err, f, "empty condition for '%s'", f->key);
            for (const lsf_node *e = f->child; e; e = e->next) {
                lsf_cond *c = &conds[(*nout)++];
                c->field = ref;
                if (cond_op(c, e, err) < 0)
                    return -1;
            }
            continue;
        }
        lsf_cond *c = &conds[(*nout)++];
        c->field = ref;
        c->op = f->kind == LSF_NODE_SEQ ? LSF_OP_IN : LSF_OP_EQ;
        if (cond_strings(c, f, f->key, err) < 0)
            return -1;
    }
    return 0;
}

static int compile_when(lsf_rule *r, const lsf_node *when, lsf_errbuf *err)
{
    return compile_conds(&r->conds, &r->nconds, when, err);
}

static void free_conds(lsf_cond *conds, uint32_t n)
{
    for (uint32_t i = 0; i < n; i++) {
        for (uint32_t k = 0; k < conds[i].nstrs; k++)
            free(conds[i].strs[k]);
        free(conds[i].strs);
        free(conds[i].lens);
        free(conds[i].cidrs);
    }
    free(conds);
}

lsf_when *lsf_when_compile(const lsf_node *when, lsf_errbuf *err)
{
    lsf_when *w = xcalloc(1, sizeof(*w));
    if (compile_conds(&w->conds, &w->n, when, err) < 0) {
        lsf_when_free(w);
        return NULL;
    }
    return w;
}

void lsf_when_free(lsf_when *w)
{
    if (!w)
        return;
    free_conds(w->conds, w->n);
    free(w);
}

/* Flags captures whose field another group of the rule also writes (only
 * those need the "first that took part wins" check at match time). */
static void mark_shared_captures(lsf_rule *r)
{
    for (uint32_t a = 0; a < r->nrx; a++)
        for (uint32_t i = 0; i < r->rx[a].ncaps; i++)
            for (uint32_t b = 0; b < r->nrx; b++)
                for (uint32_t k = 0; k < r->rx[b].ncaps; k++)
                    if ((a != b || i != k) &&
                        lsf_str_eq(r->rx[a].caps[i].field.name, r->rx[b].caps[k].field.name))
                        r->rx[a].caps[i].shared = true;
}

/* Indexes the rule by its first eq/in condition on process.name, or by
 * `process.name: {exists: false}`. */
static void index_rule(lsf_rule *r)
{
    r->app_cond = -1;
    for (uint32_t i = 0; i < r->nconds; i++) {
        lsf_cond *c = &r->conds[i];
        if (c->field.fx == LSF_FX_APP && c->op == LSF_OP_EXISTS && !c->exists) {
            r->app_absent = true;
            break;
        }
        if (c->field.fx == LSF_FX_APP && (c->op == LSF_OP_EQ || c->op == LSF_OP_IN)) {
            r->apps = c->strs;
            r->napps = c->nstrs;
            r->app_cond = (int)i;
            break;
        }
    }
}

/* ---- regexes ------------------------------------------------------------------- */

/* Formats a PCRE2 compile error with the pattern as written and a caret at
 * the offset, mapped back through expansion and renaming. */
int lsf_regex_error(lsf_errbuf *err, const lsf_node *at, const char *rule_id, int code,
                    size_t off, const char *src, const lsf_posmap *exmap, const lsf_posmap *rnmap)
{
    char msg[256];
    pcre2_get_error_message(code, (PCRE2_UCHAR *)msg, sizeof(msg));
    size_t len = strlen(src);
    /* renamed -> expanded -> as written; an offset past the end stays there */
    size_t soff = off < rnmap->n ? rnmap->v[off] : exmap->n;
    soff = soff < exmap->n ? exmap->v[soff] : len;
    if (soff > len)
        soff = len;
    bool in_macro = src[soff] == '%' && src[soff + 1] == '{';
    size_t from = soff > 50 ? soff - 50 : 0, to = soff + 50 < len ? soff + 50 : len;
    return lsf_node_error(err, at,
                          "%s: regex does not compile: %s at offset %zu%s\n"
                          "    pattern: %s%.*s%s\n"
                          "             %*s^",
                          rule_id, msg, soff, in_macro ? " (inside this macro's expansion)" : "",
                          from ? "..." : "", (int)(to - from), src + from, to < len ? "..." : "",
                          (int)(soff - from + (from ? 3 : 0)), "");
}

static int compile_rx(lsf_ruleset *rs, lsf_rule *r, lsf_rx *rx, const char *src,
                      const lsf_node *at, lsf_pack *pk, lsf_errbuf *err)
{
    lsf_sbuf ex = {0}, renamed = {0};
    lsf_posmap exmap = {0}, rnmap = {0};
    lsf_group_name *names = NULL;
    uint32_t nnames = 0;
    int rc = -1;
    rx->node = at;
    if (lsf_pattern_expand(src, pk, rs->packs, rs->npacks, &ex, &exmap, at, err) < 0 ||
        lsf_pattern_rename_groups(ex.p ? ex.p : "", &renamed, &rnmap, &names, &nnames, at, err) < 0)
        goto out;
    rx->expanded = lsf_sbuf_take(&renamed);
    int ecode;
    PCRE2_SIZE eoff;
    rx->code = pcre2_compile((PCRE2_SPTR)rx->expanded, PCRE2_ZERO_TERMINATED, 0, &ecode, &eoff,
                             NULL);
    if (!rx->code) {
        char what[200];
        snprintf(what, sizeof(what), "rule %s", r->id);
        lsf_regex_error(err, at, what, ecode, eoff, src, &exmap, &rnmap);
        goto out;
    }
    rx->jit = pcre2_jit_compile(rx->code, PCRE2_JIT_COMPLETE) == 0;
    uint32_t ngroups = 0;
    pcre2_pattern_info(rx->code, PCRE2_INFO_CAPTURECOUNT, &ngroups);
    if (ngroups > rs->max_groups)
        rs->max_groups = ngroups;
    rx->caps = xcalloc(nnames, sizeof(lsf_capture));
    for (uint32_t i = 0; i < nnames; i++) {
        char gname[16];
        snprintf(gname, sizeof(gname), "_g%u", i);
        int num = pcre2_substring_number_from_name(rx->code, (PCRE2_SPTR)gname);
        if (num <= 0) {
            lsf_node_error(err, at, "rule %s: capture '%s' was lost in compilation", r->id,
                           names[i].field);
            goto out;
        }
        lsf_capture *c = &rx->caps[rx->ncaps++];
        c->group = (uint32_t)num;
        c->type = (uint8_t)names[i].type;
        if (writable_field(names[i].field, at, &c->field, err) < 0)
            goto out;
    }
    lsf_sbuf pf = {0}, pfr = {0};
    lsf_group_name *pfn = NULL;
    uint32_t npfn = 0;
    if (lsf_pattern_expand_prefilter(src, pk, rs->packs, rs->npacks, &pf, err) == 0 &&
        lsf_pattern_rename_groups(pf.p ? pf.p : "", &pfr, NULL, &pfn, &npfn, at, err) == 0)
        rx->prefilter = lsf_sbuf_take(&pfr);
    lsf_sbuf_free(&pf);
    lsf_sbuf_free(&pfr);
    lsf_group_names_free(pfn, npfn);
    if (!rx->prefilter) /* cannot happen after the real expansion worked; be safe */
        rx->prefilter = strdup(rx->expanded);
    if (!rx->prefilter)
        lsf_die("out of memory");
    long nq = lsf_pattern_nested_quantifier(rx->expanded);
    if (nq >= 0 && !rs->opts.quiet)
        lsf_warn("%s:%d:%d: rule %s: nested quantifier at offset %ld of '%s' can backtrack "
                 "catastrophically (make the inner repeat possessive, e.g. \\w++, or the group "
                 "atomic)", at->file, at->line, at->col, r->id, nq, rx->expanded);
    rc = 0;
out:
    lsf_sbuf_free(&ex);
    lsf_sbuf_free(&renamed);
    lsf_posmap_free(&exmap);
    lsf_posmap_free(&rnmap);
    lsf_group_names_free(names, nnames);
    return rc;
}

static int compile_match(lsf_ruleset *rs, lsf_rule *r, const lsf_node *m, lsf_pack *pk,
                         lsf_errbuf *err)
{
    r->msg_rx = -1;
    if (m->kind == LSF_NODE_SCALAR) {
        if (!m->str || !m->str[0])
            return lsf_node_error(err, m, "rule %s: empty 'match'", r->id);
        r->rx = xcalloc(1, sizeof(lsf_rx));
        r->nrx = 1;
        r->rx[0].field = lsf_fieldref_make("message");
        r->msg_rx = 0;
        return compile_rx(rs, r, &r->rx[0], m->str, m, pk, err);
    }
    if (m->kind != LSF_NODE_MAP || !m->child)
        return lsf_node_error(err, m, "rule %s: 'match' is a regex (on the message) or a map of "
                              "field: regex", r->id);
    r->rx = xcalloc(m->nchild, sizeof(lsf_rx));
    for (const lsf_node *e = m->child; e; e = e->next) {
        lsf_node keyat = {.file = e->file, .line = e->key_line, .col = e->key_col};
        lsf_rx *rx = &r->rx[r->nrx++];
        if (readable_field(e->key, &keyat, &rx->field, err) < 0)
            return -1;
        if (e->kind != LSF_NODE_SCALAR || !e->str || !e->str[0])
            return lsf_node_error(err, e, "rule %s: the regex for '%s' must be a non-empty "
                                  "string", r->id, e->key);
        if (rx->field.fx == LSF_FX_MESSAGE && r->msg_rx < 0)
            r->msg_rx = (int)(r->nrx - 1);
        if (compile_rx(rs, r, rx, e->str, e, pk, err) < 0)
            return -1;
    }
    return 0;
}

/* ---- set, copy, tags ----------------------------------------------------------- */

static bool is_int_text(const char *s, int64_t *v)
{
    char *end;
    errno = 0;
    long long x = strtoll(s, &end, 10);
    if (!s[0] || *end || errno)
        return false;
    *v = x;
    return true;
}

static bool is_float_text(const char *s, double *v)
{
    char *end;
    errno = 0;
    double x = strtod(s, &end);
    if (!s[0] || *end || errno || !isfinite(x) || !strpbrk(s, ".eE"))
        return false;
    *v = x;
    return true;
}

/* Appends s to the blob as a JSON string (quoted, escaped). */
static void json_string(lsf_sbuf *b, const char *s)
{
    lsf_sbuf_adds(b, "\"");
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (*p == '"' || *p == '\\')
            lsf_sbuf_addf(b, "\\%c", *p);
        else if (*p < 0x20)
            lsf_sbuf_addf(b, "\\u%04x", *p);
        else
            lsf_sbuf_add(b, (const char *)p, 1);
    }
    lsf_sbuf_adds(b, "\"");
}

/* Adds a blob string and returns its offset. */
static uint32_t blob_put(lsf_sbuf *b, const char *s, size_t n)
{
    uint32_t off = (uint32_t)b->len;
    lsf_sbuf_add(b, s, n);
    return off;
}

static int compile_set(lsf_rule *r, const lsf_node *set, lsf_sbuf *blob, size_t extra,
                       lsf_errbuf *err)
{
    if (set && set->kind != LSF_NODE_MAP)
        return lsf_node_error(err, set, "rule %s: 'set' must be a map of field: value", r->id);
    r->set = xcalloc((set ? set->nchild : 0) + extra, sizeof(lsf_setfield));
    for (const lsf_node *e = set ? set->child : NULL; e; e = e->next) {
        lsf_node keyat = {.file = e->file, .line = e->key_line, .col = e->key_col};
        lsf_setfield *s = &r->set[r->nset++];
        if (writable_field(e->key, &keyat, &s->field, err) < 0)
            return -1;
        bool fixed = s->field.fx != LSF_FX_DYNAMIC;
        if (e->kind == LSF_NODE_SEQ) {
            if (fixed)
                return lsf_node_error(err, e, "'%s' takes one value", e->key);
            lsf_sbuf js = {0};
            lsf_sbuf_adds(&js, "[");
            for (const lsf_node *v = e->child; v; v = v->next) {
                if (v->kind != LSF_NODE_SCALAR || !v->str) {
                    lsf_sbuf_free(&js);
                    return lsf_node_error(err, v, "list values of 'set' must be strings");
                }
                if (v != e->child)
                    lsf_sbuf_adds(&js, ",");
                json_string(&js, v->str);
            }
            lsf_sbuf_adds(&js, "]");
            s->type = LSF_T_JSON;
            s->len = (uint32_t)js.len;
            s->off = blob_put(blob, js.p, js.len);
            lsf_sbuf_free(&js);
            continue;
        }
        if (e->kind != LSF_NODE_SCALAR || !e->str)
            return lsf_node_error(err, e, "'set' values must be strings, numbers, booleans or "
                                  "lists of strings");
        const char *v = e->str;
        if (!e->quoted && !fixed && is_int_text(v, &s->i)) {
            s->type = LSF_T_INT;
        } else if (!e->quoted && !fixed && is_float_text(v, &s->f)) {
            s->type = LSF_T_FLOAT;
        } else if (!e->quoted && !fixed && (strcmp(v, "true") == 0 || strcmp(v, "false") == 0)) {
            s->type = LSF_T_BOOL;
            s->b = v[0] == 't';
        } else {
            s->type = LSF_T_STR;
            s->len = (uint32_t)strlen(v);
            s->off = blob_put(blob, v, s->len);
        }
    }
    return 0;
}

static int compile_copy(lsf_rule *r, const lsf_node *copy, lsf_errbuf *err)
{
    if (copy->kind != LSF_NODE_MAP)
        return lsf_node_error(err, copy, "rule %s: 'copy' must be a map of target: source "
                              "(or a list of sources, the first present wins)", r->id);
    r->copy = xcalloc(copy->nchild, sizeof(lsf_copyfield));
    for (const lsf_node *e = copy->child; e; e = e->next) {
        lsf_node keyat = {.file = e->file, .line = e->key_line, .col = e->key_col};
        lsf_copyfield *c = &r->copy[r->ncopy++];
        if (writable_field(e->key, &keyat, &c->dst, err) < 0)
            return -1;
        const lsf_node *one = e->kind == LSF_NODE_SCALAR ? e : NULL;
        if (e->kind == LSF_NODE_MAP || (!one && !e->nchild))
            return lsf_node_error(err, e, "copy: the source is a field name or a list of them");
        c->src = xcalloc(one ? 1 : e->nchild, sizeof(lsf_fieldref));
        for (const lsf_node *v = one ? one : e->child; v; v = one ? NULL : v->next) {
            if (v->kind != LSF_NODE_SCALAR || readable_field(v->str, v, &c->src[c->nsrc], err) < 0)
                return v->kind != LSF_NODE_SCALAR
                           ? lsf_node_error(err, v, "copy: sources are field names")
                           : -1;
            c->nsrc++;
        }
    }
    return 0;
}

/* attack.t1110 / attack.t1110.001 -> "T1110" / "T1110.001"; 0 if not one. */
static size_t attack_id(const char *tag, char *out, size_t n)
{
    if (strncmp(tag, "attack.t", 8) != 0)
        return 0;
    const char *p = tag + 8;
    size_t d = 0;
    while (isdigit((unsigned char)p[d]))
        d++;
    if (d != 4 || (p[4] && !(p[4] == '.' && isdigit((unsigned char)p[5]) &&
                             isdigit((unsigned char)p[6]) && isdigit((unsigned char)p[7]) &&
                             !p[8])))
        return 0;
    return (size_t)snprintf(out, n, "T%s", p);
}

static int compile_tags(lsf_rule *r, const lsf_node *tags, lsf_errbuf *err)
{
    const lsf_node *one = tags->kind == LSF_NODE_SCALAR ? tags : NULL;
    if (tags->kind == LSF_NODE_MAP)
        return lsf_node_error(err, tags, "rule %s: 'tags' must be a list of strings", r->id);
    r->tags = xcalloc(one ? 1 : tags->nchild, sizeof(char *));
    for (const lsf_node *t = one ? one : tags->child; t; t = one ? NULL : t->next) {
        if (t->kind != LSF_NODE_SCALAR || !t->str || !t->str[0] || strpbrk(t->str, " \t\r\n"))
            return lsf_node_error(err, t, "rule %s: a tag is a non-empty word", r->id);
        r->tags[r->ntags++] = xstrdup(t->str);
    }
    return 0;
}

/* MITRE ATT&CK technique tags become threat.* fields (unless set by hand). */
static void attack_fields(lsf_rule *r, lsf_sbuf *blob)
{
    lsf_sbuf tech = {0}, sub = {0};
    char id[32];
    for (uint32_t i = 0; i < r->ntags; i++) {
        size_t n = attack_id(r->tags[i], id, sizeof(id));
        if (!n)
            continue;
        if (n > 5) {
            lsf_sbuf_adds(&sub, sub.len ? "," : "[");
            json_string(&sub, id);
            id[5] = 0;
        }
        if (!tech.p || !strstr(tech.p, id)) {
            lsf_sbuf_adds(&tech, tech.len ? "," : "[");
            json_string(&tech, id);
        }
    }
    struct {
        const char *name;
        lsf_sbuf *v;
        uint8_t type;
    } add[] = {{"threat.framework", NULL, LSF_T_STR},
               {"threat.technique.id", &tech, LSF_T_JSON},
               {"threat.technique.subtechnique.id", &sub, LSF_T_JSON}};
    for (size_t k = 0; tech.len && k < 3; k++) {
        if (add[k].v && !add[k].v->len)
            continue;
        bool present = false;
        for (uint32_t i = 0; i < r->nset; i++)
            present |= strcmp(r->set[i].field.name.ptr, add[k].name) == 0;
        if (present)
            continue;
        lsf_setfield *s = &r->set[r->nset++];
        s->field = lsf_fieldref_make(add[k].name);
        s->type = add[k].type;
        if (add[k].v) {
            lsf_sbuf_adds(add[k].v, "]");
            s->len = (uint32_t)add[k].v->len;
            s->off = blob_put(blob, add[k].v->p, add[k].v->len);
        } else {
            s->len = (uint32_t)strlen("MITRE ATT&CK");
            s->off = blob_put(blob, "MITRE ATT&CK", s->len);
        }
    }
    lsf_sbuf_free(&tech);
    lsf_sbuf_free(&sub);
}

/* ---- one rule ------------------------------------------------------------------- */

static bool valid_rule_id(const char *s)
{
    bool dot = false;
    if (!valid_field_name(s) || strchr(s, '@'))
        return false;
    for (const char *p = s; *p; p++)
        dot |= *p == '.';
    return dot;
}

static const char *const rule_keys[] = {"id", "description", "priority", "when", "match",
                                        "severity", "tags", "set", "copy", "drop", NULL};

int lsf_rule_compile(lsf_ruleset *rs, lsf_rule *r, const lsf_node *node, lsf_pack *pk,
                     lsf_errbuf *err)
{
    r->node = node;
    r->pack = pk;
    r->msg_rx = -1;
    if (node->kind != LSF_NODE_MAP)
        return lsf_node_error(err, node, "each rule must be a map with an 'id'");
    for (const lsf_node *e = node->child; e; e = e->next) {
        bool known = false;
        for (int i = 0; rule_keys[i]; i++)
            known |= strcmp(rule_keys[i], e->key) == 0;
        if (!known) {
            lsf_node at = {.file = e->file, .line = e->key_line, .col = e->key_col};
            return lsf_node_error(err, &at, "unknown rule key '%s' (id, description, priority, "
                                  "when, match, severity, tags, set, copy, drop)", e->key);
        }
    }
    const lsf_node *id = lsf_node_get(node, "id");
    if (!id)
        return lsf_node_error(err, node, "rule has no 'id'");
    if (id->kind != LSF_NODE_SCALAR || !valid_rule_id(id->str))
        return lsf_node_error(err, id, "rule id '%s' must be dotted words such as "
                              "sshd.auth.failed", id->str ? id->str : "");
    r->id = xstrdup(id->str);

    const lsf_node *v;
    if ((v = lsf_node_get(node, "description")) && v->kind != LSF_NODE_SCALAR)
        return lsf_node_error(err, v, "rule %s: 'description' must be a string", r->id);
    if ((v = lsf_node_get(node, "priority"))) {
        int64_t p;
        if (v->kind != LSF_NODE_SCALAR || lsf_parse_int(v->str, &p) < 0 || p < -PRIORITY_MAX ||
            p > PRIORITY_MAX)
            return lsf_node_error(err, v, "rule %s: 'priority' must be an integer in [-%d, %d]",
                                  r->id, PRIORITY_MAX, PRIORITY_MAX);
        r->priority = (int)p;
    }
    if ((v = lsf_node_get(node, "when")) && compile_when(r, v, err) < 0)
        return -1;
    if ((v = lsf_node_get(node, "match")) && compile_match(rs, r, v, pk, err) < 0)
        return -1;
    if (!r->nconds && !r->nrx)
        return lsf_node_error(err, node, "rule %s has neither 'when' nor 'match'; it would "
                              "match every line", r->id);
    index_rule(r);
    mark_shared_captures(r);
    if ((v = lsf_node_get(node, "severity"))) {
        if (v->kind != LSF_NODE_SCALAR || (r->severity = lsf_severity_level_parse(v->str)) < 0)
            return lsf_node_error(err, v, "rule %s: 'severity' is info, low, medium, high or "
                                  "critical (or 1-5)", r->id);
    }
    if ((v = lsf_node_get(node, "tags")) && compile_tags(r, v, err) < 0)
        return -1;
    if ((v = lsf_node_get(node, "drop"))) {
        if (v->kind != LSF_NODE_SCALAR || lsf_parse_bool(v->str, &r->drop) < 0)
            return lsf_node_error(err, v, "rule %s: 'drop' must be true or false", r->id);
    }
    if ((v = lsf_node_get(node, "copy")) && compile_copy(r, v, err) < 0)
        return -1;

    lsf_sbuf blob = {0};
    r->id_len = (uint32_t)strlen(r->id);
    blob_put(&blob, r->id, r->id_len);
    r->pack_len = (uint32_t)strlen(pk->name);
    r->pack_off = blob_put(&blob, pk->name, r->pack_len);
    if (r->severity) {
        const char *sn = lsf_severity_level_name(r->severity);
        r->sev_len = (uint32_t)strlen(sn);
        r->sev_off = blob_put(&blob, sn, r->sev_len);
    }
    r->tag_off = xcalloc(r->ntags, sizeof(uint32_t));
    r->tag_len = xcalloc(r->ntags, sizeof(uint32_t));
    for (uint32_t i = 0; i < r->ntags; i++) {
        r->tag_len[i] = (uint32_t)strlen(r->tags[i]);
        r->tag_off[i] = blob_put(&blob, r->tags[i], r->tag_len[i]);
    }
    int rc = compile_set(r, lsf_node_get(node, "set"), &blob, 3, err);
    if (rc == 0)
        attack_fields(r, &blob);
    r->blob_len = (uint32_t)blob.len;
    r->blob = lsf_sbuf_take(&blob);
    return rc;
}

void lsf_rule_free(lsf_rule *r)
{
    free(r->id);
    free_conds(r->conds, r->nconds);
    for (uint32_t i = 0; i < r->nrx; i++) {
        pcre2_code_free(r->rx[i].code);
        free(r->rx[i].expanded);
        free(r->rx[i].prefilter);
        free(r->rx[i].caps);
    }
    free(r->rx);
    for (uint32_t i = 0; i < r->ntags; i++)
        free(r->tags[i]);
    free(r->tags);
    free(r->set);
    for (uint32_t i = 0; i < r->ncopy; i++)
        free(r->copy[i].src);
    free(r->copy);
    free(r->blob);
    for (uint32_t k = 0; k < (uint32_t)r->nlits + r->nany; k++)
        free(r->lits[k]);
    free(r->lits);
    free(r->tag_off);
    free(r->tag_len);
}

