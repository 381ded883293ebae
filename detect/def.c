/* def.c - reads one detection definition from a pack's `detections:` list or
 * the stage's `detections:` key, with every error at its file:line:column.
 *
 * The one design choice to know: a definition names its type by the one
 * type key it holds (threshold, distinct, value, sequence, score), and
 * selects events with the rules' own `when` syntax (lsf_when_compile), so a
 * detection reads like the rules it builds on. Its fingerprint hashes the
 * definition as written (keys and values, not positions) together with the
 * stage defaults it took, so a reload or a restart keeps state only for
 * definitions that did not change.
 *
 * Threads: called by the thread that builds a detection set.
 */
#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "anomaly/hash.h"
#include "core/log.h"
#include "detect/detect.h"
#include "rules/rules_int.h"

static const char *const type_keys[] = {"threshold", "distinct", "value", "sequence", "score", NULL};

static const char *const known_keys[] = {
    "id", "name", "description", "when", "group_by", "threshold", "distinct", "value",
    "sequence", "score", "severity", "tags", "suppress", "rate_limit", "exemplars",
    "exemplar_bytes", "escalate", "max_keys", "max_memory", "buckets", "enabled", "precision",
    "tests", NULL};

const char *lsf_det_type_name(int type)
{
    return type >= 0 && type <= LSF_DET_SCORE ? type_keys[type] : "?";
}

static char *xstrdup(const char *s)
{
    char *d = strdup(s ? s : "");
    if (!d)
        lsf_die("out of memory");
    return d;
}

static void *xcalloc(size_t n, size_t size)
{
    void *p = calloc(n ? n : 1, size);
    if (!p)
        lsf_die("out of memory");
    return p;
}

const char *lsf_det_duration(int64_t ns, char *buf, size_t n)
{
    int64_t ms = ns / NS_PER_MS;
    if (ms % 1000) {
        snprintf(buf, n, "%lldms", (long long)ms);
        return buf;
    }
    int64_t s = ms / 1000;
    size_t len = 0;
    buf[0] = 0;
    if (s >= 3600) {
        len += (size_t)snprintf(buf + len, n - len, "%lldh", (long long)(s / 3600));
        s %= 3600;
    }
    if (s >= 60 && len < n) {
        len += (size_t)snprintf(buf + len, n - len, "%lldm", (long long)(s / 60));
        s %= 60;
    }
    if ((s || !len) && len < n)
        snprintf(buf + len, n - len, "%llds", (long long)s);
    return buf;
}

int lsf_det_parse_rate(const char *s, uint32_t *n, int64_t *ns)
{
    const char *slash = strchr(s, '/');
    if (!slash || slash == s)
        return -1;
    char num[32];
    size_t len = (size_t)(slash - s);
    if (len >= sizeof(num))
        return -1;
    memcpy(num, s, len);
    num[len] = 0;
    int64_t v, ms;
    if (lsf_parse_int(num, &v) < 0 || v < 1 || v > 1000000)
        return -1;
    const char *per = slash + 1;
    char unit[40];
    /* "20/m" reads as "20/1m" */
    if (*per && !isdigit((unsigned char)*per)) {
        snprintf(unit, sizeof(unit), "1%s", per);
        per = unit;
    }
    if (lsf_parse_duration_ms(per, &ms) < 0 || ms < 1)
        return -1;
    *n = (uint32_t)v;
    *ns = ms * NS_PER_MS;
    return 0;
}

/* ---- scalar readers (each returns 0 or -1 with err at the node) ---------- */

static int scalar(const lsf_node *v, const char *what, lsf_errbuf *err)
{
    if (v->kind != LSF_NODE_SCALAR || !v->str)
        return lsf_node_error(err, v, "'%s' must be a single value", what);
    return 0;
}

static int get_duration(const lsf_node *v, const char *what, int64_t *ns, lsf_errbuf *err)
{
    int64_t ms;
    if (scalar(v, what, err) < 0)
        return -1;
    if (lsf_parse_duration_ms(v->str, &ms) < 0 || ms < 1 || ms > 366LL * 86400 * 1000)
        return lsf_node_error(err, v, "'%s' must be a duration such as 500ms, 60s, 10m or 1h "
                              "(at most a year), got '%s'", what, v->str);
    *ns = ms * NS_PER_MS;
    return 0;
}

static int get_uint(const lsf_node *v, const char *what, int64_t min, int64_t max, uint64_t *out,
                    lsf_errbuf *err)
{
    int64_t x;
    if (scalar(v, what, err) < 0)
        return -1;
    if (lsf_parse_int(v->str, &x) < 0 || x < min || x > max)
        return lsf_node_error(err, v, "'%s' must be a whole number from %lld to %lld, got '%s'",
                              what, (long long)min, (long long)max, v->str);
    *out = (uint64_t)x;
    return 0;
}

static int get_double(const lsf_node *v, const char *what, double *out, lsf_errbuf *err)
{
    char *end = NULL;
    if (scalar(v, what, err) < 0)
        return -1;
    errno = 0;
    *out = strtod(v->str, &end);
    if (!v->str[0] || *end || errno || !isfinite(*out))
        return lsf_node_error(err, v, "'%s' must be a number, got '%s'", what, v->str);
    return 0;
}

static int get_severity(const lsf_node *v, int *out, lsf_errbuf *err)
{
    if (scalar(v, "severity", err) < 0)
        return -1;
    if ((*out = lsf_severity_level_parse(v->str)) < 0)
        return lsf_node_error(err, v, "'severity' is info, low, medium, high or critical (or "
                              "1-5), got '%s'", v->str);
    return 0;
}

static bool valid_id(const char *s)
{
    if (!s[0] || s[0] == '.' || s[strlen(s) - 1] == '.' || strstr(s, ".."))
        return false;
    for (const char *p = s; *p; p++)
        if (!(isalnum((unsigned char)*p) || *p == '_' || *p == '.' || *p == '-'))
            return false;
    return true;
}

/* A list of strings (a scalar counts as a list of one). */
static int get_strlist(const lsf_node *v, const char *what, char ***out, uint32_t *n,
                       uint32_t max, lsf_errbuf *err)
{
    const lsf_node *one = v->kind == LSF_NODE_SCALAR ? v : NULL;
    if (v->kind == LSF_NODE_MAP)
        return lsf_node_error(err, v, "'%s' must be a list of names", what);
    size_t cnt = one ? 1 : v->nchild;
    if (cnt > max)
        return lsf_node_error(err, v, "'%s' takes at most %u names", what, max);
    *out = xcalloc(cnt, sizeof(char *));
    for (const lsf_node *e = one ? one : v->child; e; e = one ? NULL : e->next) {
        if (e->kind != LSF_NODE_SCALAR || !e->str || !e->str[0])
            return lsf_node_error(err, e, "'%s' entries must be non-empty names", what);
        (*out)[(*n)++] = xstrdup(e->str);
    }
    return 0;
}

/* Checks that `map` holds only keys of `allowed` (NULL-terminated). */
static int only_keys(const lsf_node *map, const char *what, const char *const *allowed,
                     const char *list, lsf_errbuf *err)
{
    if (map->kind != LSF_NODE_MAP)
        return lsf_node_error(err, map, "'%s' must be a map (%s)", what, list);
    for (const lsf_node *e = map->child; e; e = e->next) {
        bool ok = false;
        for (int i = 0; allowed[i]; i++)
            ok |= strcmp(allowed[i], e->key) == 0;
        if (!ok) {
            lsf_node at = {.file = e->file, .line = e->key_line, .col = e->key_col};
            return lsf_node_error(err, &at, "unknown key '%s' in '%s' (%s)", e->key, what, list);
        }
    }
    return 0;
}

static int need(const lsf_node *map, const char *key, const char *what, const lsf_node **out,
                lsf_errbuf *err)
{
    *out = lsf_node_get(map, key);
    if (!*out)
        return lsf_node_error(err, map, "%s needs '%s'", what, key);
    return 0;
}

/* ---- the type keys ------------------------------------------------------- */

/* threshold: {count, window}; score: a number, or {min, count, window}. */
static int parse_counted(lsf_detdef *d, const lsf_node *v, const char *what, lsf_errbuf *err)
{
    static const char *const tkeys[] = {"count", "window", NULL};
    static const char *const skeys[] = {"min", "count", "window", NULL};
    const lsf_node *c;
    uint64_t n = 1;
    if (d->type == LSF_DET_SCORE && v->kind == LSF_NODE_SCALAR) {
        if (get_double(v, what, &d->score_min, err) < 0)
            return -1;
        d->limit = 1;
        d->window_ns = 60 * NS_PER_S;
        goto range;
    }
    if (only_keys(v, what, d->type == LSF_DET_SCORE ? skeys : tkeys,
                  d->type == LSF_DET_SCORE ? "min, count, window" : "count, window", err) < 0)
        return -1;
    if (d->type == LSF_DET_SCORE) {
        if (need(v, "min", "'score'", &c, err) < 0 || get_double(c, "min", &d->score_min, err) < 0)
            return -1;
        d->window_ns = 60 * NS_PER_S;
        if ((c = lsf_node_get(v, "count")) && get_uint(c, "count", 1, 100000000, &n, err) < 0)
            return -1;
        if ((c = lsf_node_get(v, "window")) && get_duration(c, "window", &d->window_ns, err) < 0)
            return -1;
    } else {
        if (need(v, "count", d->type == LSF_DET_SCORE ? "'score'" : "'threshold'", &c, err) < 0 || get_uint(c, "count", 1, 100000000, &n, err) < 0)
            return -1;
        if (need(v, "window", "'threshold'", &c, err) < 0 ||
            get_duration(c, "window", &d->window_ns, err) < 0)
            return -1;
    }
    d->limit = (double)n;
range:
    if (d->type == LSF_DET_SCORE && (d->score_min < 0 || d->score_min > 1))
        return lsf_node_error(err, v, "'score' cut-off must be within 0..1 (anomaly.score is)");
    return 0;
}

static int parse_distinct(lsf_detdef *d, const lsf_node *v, lsf_errbuf *err)
{
    static const char *const keys[] = {"field", "count", "window", NULL};
    const lsf_node *c;
    uint64_t n;
    if (only_keys(v, "distinct", keys, "field, count, window", err) < 0 ||
        need(v, "field", "'distinct'", &c, err) < 0 || scalar(c, "field", err) < 0)
        return -1;
    d->field = xstrdup(c->str);
    if (need(v, "count", "'distinct'", &c, err) < 0 ||
        get_uint(c, "count", 2, 100000000, &n, err) < 0)
        return -1;
    d->limit = (double)n;
    return need(v, "window", "'distinct'", &c, err) < 0 ? -1
                                                     : get_duration(c, "window", &d->window_ns, err);
}

static int parse_value(lsf_detdef *d, const lsf_node *v, lsf_errbuf *err)
{
    static const char *const keys[] = {"field", "agg", "gt", "ge", "lt", "le", "window",
                                       "min_count", NULL};
    static const char *const aggs[] = {"sum", "avg", "max", "min", NULL};
    static const char *const cmps[] = {"gt", "ge", "lt", "le", NULL};
    const lsf_node *c;
    if (only_keys(v, "value", keys, "field, agg, gt|ge|lt|le, window, min_count", err) < 0 ||
        need(v, "field", "'value'", &c, err) < 0 || scalar(c, "field", err) < 0)
        return -1;
    d->field = xstrdup(c->str);
    d->agg = LSF_AGG_SUM;
    if ((c = lsf_node_get(v, "agg"))) {
        int found = -1;
        for (int i = 0; aggs[i] && c->kind == LSF_NODE_SCALAR; i++)
            if (strcmp(aggs[i], c->str) == 0)
                found = i;
        if (found < 0)
            return lsf_node_error(err, c, "'agg' is sum, avg, max or min");
        d->agg = (uint8_t)found;
    }
    int ncmp = 0;
    for (int i = 0; cmps[i]; i++) {
        if (!(c = lsf_node_get(v, cmps[i])))
            continue;
        if (get_double(c, cmps[i], &d->limit, err) < 0)
            return -1;
        d->cmp = (uint8_t)i;
        ncmp++;
    }
    if (ncmp != 1)
        return lsf_node_error(err, v, "'value' needs exactly one comparison: gt, ge, lt or le");
    uint64_t mc = 1;
    if ((c = lsf_node_get(v, "min_count")) && get_uint(c, "min_count", 1, 100000000, &mc, err) < 0)
        return -1;
    d->min_count = (uint32_t)mc;
    return need(v, "window", "'value'", &c, err) < 0 ? -1
                                                  : get_duration(c, "window", &d->window_ns, err);
}

static int parse_sequence(lsf_detdef *d, const lsf_node *v, lsf_errbuf *err)
{
    static const char *const keys[] = {"within", "steps", NULL};
    static const char *const skeys[] = {"when", "count", "absent", NULL};
    const lsf_node *c, *steps;
    if (only_keys(v, "sequence", keys, "within, steps", err) < 0 ||
        need(v, "within", "'sequence'", &c, err) < 0 ||
        get_duration(c, "within", &d->window_ns, err) < 0 ||
        need(v, "steps", "'sequence'", &steps, err) < 0)
        return -1;
    if (steps->kind != LSF_NODE_SEQ || steps->nchild < 2 || steps->nchild > LSF_DET_MAX_STEPS)
        return lsf_node_error(err, steps, "'steps' must be a list of 2 to %d steps",
                              LSF_DET_MAX_STEPS);
    d->steps = xcalloc(steps->nchild, sizeof(lsf_det_step));
    for (const lsf_node *s = steps->child; s; s = s->next) {
        lsf_det_step *st = &d->steps[d->nsteps++];
        st->count = 1;
        if (only_keys(s, "steps", skeys, "when, count, absent", err) < 0 ||
            need(s, "when", "each step", &c, err) < 0)
            return -1;
        if (!(st->when = lsf_when_compile(c, err)))
            return -1;
        uint64_t n = 1;
        if ((c = lsf_node_get(s, "count")) &&
            get_uint(c, "count", 1, LSF_DET_MAX_STEP_COUNT, &n, err) < 0)
            return -1;
        st->count = (uint32_t)n;
        if ((c = lsf_node_get(s, "absent"))) {
            if (c->kind != LSF_NODE_SCALAR || lsf_parse_bool(c->str, &st->absent) < 0)
                return lsf_node_error(err, c, "'absent' must be true or false");
            if (st->absent && (s->next || d->nsteps == 1))
                return lsf_node_error(err, c, "only the last step (not the first) can be absent");
            if (st->absent && st->count != 1)
                return lsf_node_error(err, c, "an absent step cannot have a count");
            d->has_absent |= st->absent;
        }
    }
    d->limit = d->nsteps;
    return 0;
}

static int parse_escalate(lsf_detdef *d, const lsf_node *v, lsf_errbuf *err)
{
    static const char *const keys[] = {"count", "observed", "score", "severity", NULL};
    if (v->kind != LSF_NODE_SEQ)
        return lsf_node_error(err, v, "'escalate' must be a list of {count|observed|score: N, "
                              "severity: S}");
    d->esc = xcalloc(v->nchild, sizeof(lsf_det_escalate));
    for (const lsf_node *e = v->child; e; e = e->next) {
        lsf_det_escalate *x = &d->esc[d->nesc++];
        const lsf_node *c;
        if (only_keys(e, "escalate", keys, "count, observed, score, severity", err) < 0 ||
            need(e, "severity", "each escalation", &c, err) < 0 ||
            get_severity(c, &x->severity, err) < 0)
            return -1;
        int found = 0;
        for (int w = LSF_ESC_COUNT; w <= LSF_ESC_SCORE; w++) {
            if (!(c = lsf_node_get(e, keys[w])))
                continue;
            if (get_double(c, keys[w], &x->at, err) < 0)
                return -1;
            x->what = (uint8_t)w;
            found++;
        }
        if (found != 1)
            return lsf_node_error(err, e, "each escalation names one of count, observed or score");
    }
    return 0;
}

/* ---- fingerprint ----------------------------------------------------------- */

static uint64_t hash_node(const lsf_node *n, uint64_t h)
{
    for (; n; n = n->next) {
        h = lsf_hash64(&n->kind, sizeof(n->kind), h);
        if (n->key)
            h = lsf_hash64(n->key, strlen(n->key) + 1, h);
        if (n->str)
            h = lsf_hash64(n->str, strlen(n->str) + 1, h);
        h = hash_node(n->child, h ^ 0x5bd1e995u);
    }
    return h;
}

static uint64_t fingerprint(const lsf_detdef *d, const lsf_node *node)
{
    uint64_t h = hash_node(node->child, 0x6c736664u); /* "lsfd" */
    uint64_t v[] = {(uint64_t)d->suppress_ns, d->rate_n, (uint64_t)d->rate_ns, d->exemplars,
                    d->exemplar_bytes, d->max_keys, d->max_bytes, d->buckets,
                    (uint64_t)d->severity, d->hll_p};
    h = lsf_hash64(v, sizeof(v), h);
    return lsf_hash64(d->origin, strlen(d->origin), h);
}

/* ---- a definition ------------------------------------------------------------ */

int lsf_detdef_parse(lsf_detdef *d, const lsf_node *node, const char *origin,
                     const lsf_det_defaults *dflt, lsf_errbuf *err)
{
    memset(d, 0, sizeof(*d));
    d->origin = xstrdup(origin);
    if (node->kind != LSF_NODE_MAP)
        return lsf_node_error(err, node, "each detection must be a map with an 'id'");
    for (const lsf_node *e = node->child; e; e = e->next) {
        bool ok = false;
        for (int i = 0; known_keys[i]; i++)
            ok |= strcmp(known_keys[i], e->key) == 0;
        if (!ok) {
            lsf_node at = {.file = e->file, .line = e->key_line, .col = e->key_col};
            return lsf_node_error(err, &at, "unknown detection key '%s' (id, name, description, "
                                  "when, group_by, threshold|distinct|value|sequence|score, "
                                  "severity, tags, suppress, rate_limit, exemplars, escalate, "
                                  "max_keys, max_memory, buckets, enabled, tests)", e->key);
        }
    }
    const lsf_node *v = lsf_node_get(node, "id");
    if (!v)
        return lsf_node_error(err, node, "detection has no 'id'");
    if (v->kind != LSF_NODE_SCALAR || !valid_id(v->str))
        return lsf_node_error(err, v, "detection id '%s' must be dotted words such as "
                              "ssh.bruteforce", v->str ? v->str : "");
    d->id = xstrdup(v->str);
    if ((v = lsf_node_get(node, "name")) && scalar(v, "name", err) < 0)
        return -1;
    d->name = xstrdup(v ? v->str : d->id);
    if ((v = lsf_node_get(node, "description")) && scalar(v, "description", err) < 0)
        return -1;
    d->description = v ? xstrdup(v->str) : NULL;

    /* defaults, then the definition's own settings */
    d->severity = dflt->severity;
    d->suppress_ns = dflt->suppress_ns;
    d->rate_n = dflt->rate_n;
    d->rate_ns = dflt->rate_ns;
    d->exemplars = dflt->exemplars;
    d->exemplar_bytes = dflt->exemplar_bytes;
    d->max_keys = dflt->max_keys;
    d->max_bytes = dflt->max_bytes;
    d->buckets = dflt->buckets;
    d->hll_p = 10;
    d->min_count = 1;

    int ntypes = 0;
    for (int t = 0; type_keys[t]; t++) {
        if (!(v = lsf_node_get(node, type_keys[t])))
            continue;
        if (ntypes++) {
            lsf_node at = {.file = v->file, .line = v->key_line, .col = v->key_col};
            return lsf_node_error(err, &at, "detection %s has more than one type key (one of "
                                  "threshold, distinct, value, sequence, score)", d->id);
        }
        d->type = (uint8_t)t;
        int rc;
        switch (t) {
        case LSF_DET_THRESHOLD:
        case LSF_DET_SCORE:
            rc = parse_counted(d, v, type_keys[t], err);
            break;
        case LSF_DET_DISTINCT:
            rc = parse_distinct(d, v, err);
            break;
        case LSF_DET_VALUE:
            rc = parse_value(d, v, err);
            break;
        default:
            rc = parse_sequence(d, v, err);
        }
        if (rc < 0)
            return -1;
    }
    if (!ntypes)
        return lsf_node_error(err, node, "detection %s needs a type: threshold, distinct, value, "
                              "sequence or score", d->id);
    if ((v = lsf_node_get(node, "when")) && !(d->when = lsf_when_compile(v, err)))
        return -1;
    if ((v = lsf_node_get(node, "group_by")) &&
        get_strlist(v, "group_by", &d->group_by, &d->ngroup, LSF_DET_MAX_GROUP, err) < 0)
        return -1;
    if ((v = lsf_node_get(node, "severity")) && get_severity(v, &d->severity, err) < 0)
        return -1;
    if ((v = lsf_node_get(node, "tags")) && get_strlist(v, "tags", &d->tags, &d->ntags, 64, err) < 0)
        return -1;
    if ((v = lsf_node_get(node, "suppress"))) {
        if (v->kind == LSF_NODE_SCALAR && (strcmp(v->str, "0") == 0 || strcmp(v->str, "off") == 0))
            d->suppress_ns = 0;
        else if (get_duration(v, "suppress", &d->suppress_ns, err) < 0)
            return -1;
    }
    if ((v = lsf_node_get(node, "rate_limit"))) {
        if (scalar(v, "rate_limit", err) < 0)
            return -1;
        if (strcmp(v->str, "off") == 0 || strcmp(v->str, "0") == 0)
            d->rate_n = 0;
        else if (lsf_det_parse_rate(v->str, &d->rate_n, &d->rate_ns) < 0)
            return lsf_node_error(err, v, "'rate_limit' is alerts per period such as 20/1m, or "
                                  "off; got '%s'", v->str);
    }
    uint64_t u;
    if ((v = lsf_node_get(node, "exemplars"))) {
        if (get_uint(v, "exemplars", 0, LSF_DET_MAX_EXEMPLARS, &u, err) < 0)
            return -1;
        d->exemplars = (uint32_t)u;
    }
    if ((v = lsf_node_get(node, "exemplar_bytes"))) {
        int64_t sz;
        if (scalar(v, "exemplar_bytes", err) < 0 || lsf_parse_size(v->str, &sz) < 0 || sz < 16 ||
            sz > 65536)
            return lsf_node_error(err, v, "'exemplar_bytes' must be a size from 16 to 64KiB");
        d->exemplar_bytes = (uint32_t)sz;
    }
    if ((v = lsf_node_get(node, "escalate")) && parse_escalate(d, v, err) < 0)
        return -1;
    if ((v = lsf_node_get(node, "max_keys"))) {
        if (get_uint(v, "max_keys", 1, 1000000000, &d->max_keys, err) < 0)
            return -1;
    }
    if ((v = lsf_node_get(node, "max_memory"))) {
        int64_t sz;
        if (scalar(v, "max_memory", err) < 0 || lsf_parse_size(v->str, &sz) < 0 || sz < 65536)
            return lsf_node_error(err, v, "'max_memory' must be a size of at least 64KiB, such as "
                                  "16MiB");
        d->max_bytes = (uint64_t)sz;
    }
    if ((v = lsf_node_get(node, "buckets"))) {
        if (get_uint(v, "buckets", 1, 600, &u, err) < 0)
            return -1;
        d->buckets = (uint32_t)u;
    }
    if ((v = lsf_node_get(node, "precision"))) {
        if (get_uint(v, "precision", 4, 16, &u, err) < 0)
            return -1;
        d->hll_p = (uint8_t)u;
    }
    d->refs = xcalloc(d->ngroup + 1, sizeof(lsf_fieldref));
    for (uint32_t i = 0; i < d->ngroup; i++)
        d->refs[i] = lsf_fieldref_make(d->group_by[i]);
    if (d->field)
        d->refs[d->ngroup] = lsf_fieldref_make(d->field);
    if (d->type != LSF_DET_SEQUENCE && d->window_ns / d->buckets < NS_PER_MS)
        return lsf_node_error(err, node, "detection %s: window / buckets is under a millisecond",
                              d->id);
    d->fingerprint = fingerprint(d, node);
    return 0;
}

void lsf_detdef_free(lsf_detdef *d)
{
    free(d->id);
    free(d->name);
    free(d->description);
    free(d->origin);
    lsf_when_free(d->when);
    for (uint32_t i = 0; i < d->ngroup; i++)
        free(d->group_by[i]);
    free(d->group_by);
    free(d->field);
    free(d->refs);
    for (uint32_t i = 0; i < d->nsteps; i++)
        lsf_when_free(d->steps[i].when);
    free(d->steps);
    for (uint32_t i = 0; i < d->ntags; i++)
        free(d->tags[i]);
    free(d->tags);
    free(d->esc);
    memset(d, 0, sizeof(*d));
}
