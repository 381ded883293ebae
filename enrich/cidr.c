/* cidr.c - the `cidr` transform: looks IP fields up in a table of networks
 * (CSV or YAML; IPv4 and IPv6; longest prefix wins) and writes the matching
 * network's values as fields, e.g. source.ip 10.20.1.7 ->
 * source.network.zone: dmz, source.asset.owner: web-team.
 *
 * The one design choice to know: a blank value inherits from the next less
 * specific network that contains the match, so a table can say "10/8 is
 * internal, owned by IT" once and override only the zone of 10.20/16. That
 * is resolved when the table loads; a lookup is one binary search
 * (cidr_index.c) plus a copy of the row's packed strings into the batch.
 * The table is reloaded when its file changes (or on SIGHUP) and swapped
 * in without pausing workers (live.c); a table with an error keeps the
 * running one and logs file:line:col.
 *
 * Threads: init/reopen/destroy on the main thread; process on any worker;
 * reloads on the stage's watcher thread.
 */
#include <stdlib.h>
#include <string.h>

#include "core/log.h"
#include "core/metrics.h"
#include "core/stage.h"
#include "enrich/cidr_index.h"
#include "enrich/csv.h"
#include "enrich/enrich.h"
#include "enrich/live.h"
#include "enrich/table.h"
#include "rules/reload.h"

typedef struct cidr_conf {
    char *path;
    int format; /* 0 auto, 1 csv, 2 yaml */
    lsf_strlist fields;
    char *target;
    int64_t check_interval_ms;
} cidr_conf;

/* One loaded version of the table. */
typedef struct cidr_ver {
    lsf_table t;
    lsf_cidr_index *ix;
    lsf_str *names; /* nfields * t.ncols output names */
} cidr_ver;

typedef struct cidr_ctx {
    lsf_live *live; /* first: see lsf_enrich_reopen */
    const char *name;
    const cidr_conf *conf;
    size_t nfields;
    lsf_enrich_field *field;
    char **target; /* per field */
    lsf_counter *c_matched, *c_unmatched, *c_invalid;
} cidr_ctx;

static const lsf_key cidr_keys[] = {
    {"path", LSF_K_STR, NULL,
     "Table of networks: CSV (first column the network, a header naming the other columns) or "
     "YAML (a list of {network: ..., column: value}).",
     offsetof(cidr_conf, path), NULL, 0, 0, true},
    {"format", LSF_K_ENUM, "auto", "Table format; auto: YAML for .yaml/.yml, else CSV.",
     offsetof(cidr_conf, format), "auto|csv|yaml", 0, 0, false},
    {"fields", LSF_K_STRLIST, NULL,
     "IP fields to look up (default: source.ip, destination.ip, client.ip).",
     offsetof(cidr_conf, fields), NULL, 0, 0, false},
    {"target", LSF_K_STR, "{prefix}",
     "Where the columns go: {prefix} is the IP field's prefix (source.ip -> source), so column "
     "network.zone becomes source.network.zone; \"\" writes the column names as they are.",
     offsetof(cidr_conf, target), NULL, 0, 0, false},
    {"check_interval", LSF_K_DURATION, "2s",
     "How often to check whether the table file changed (then it is reloaded); 0: only on "
     "SIGHUP.",
     offsetof(cidr_conf, check_interval_ms), NULL, 0, 86400000, false},
    LSF_KEYS_END,
};

/* ---- loading ------------------------------------------------------------ */

/* Rows while loading: owned strings, and values after inheritance (which
 * may point at a parent's strings). */
typedef struct raw {
    char **own;
    const char **val;
    size_t n;
} raw;

typedef struct loader {
    lsf_table t;
    raw *rows;
    size_t nrows, cap;
    lsf_cidr_net *nets;
    size_t nnets, capnets;
} loader;

static raw *new_row(loader *L)
{
    if (L->nrows == L->cap) {
        L->cap = L->cap ? L->cap * 2 : 64;
        L->rows = realloc(L->rows, L->cap * sizeof(raw));
        if (!L->rows)
            lsf_die("out of memory");
    }
    raw *r = &L->rows[L->nrows++];
    memset(r, 0, sizeof(*r));
    return r;
}

/* Makes room for n columns (new ones absent). */
static void grow(raw *r, size_t n)
{
    if (n <= r->n)
        return;
    r->own = realloc(r->own, n * sizeof(char *));
    r->val = realloc(r->val, n * sizeof(char *));
    if (!r->own || !r->val)
        lsf_die("out of memory");
    for (size_t i = r->n; i < n; i++)
        r->own[i] = NULL, r->val[i] = NULL;
    r->n = n;
}

static void set_val(raw *r, size_t col, const char *v)
{
    grow(r, col + 1);
    free(r->own[col]);
    r->own[col] = strdup(v);
    if (!r->own[col])
        lsf_die("out of memory");
    r->val[col] = r->own[col];
}

static void add_net(loader *L, const lsf_cidr_net *net)
{
    if (L->nnets == L->capnets) {
        L->capnets = L->capnets ? L->capnets * 2 : 64;
        L->nets = realloc(L->nets, L->capnets * sizeof(lsf_cidr_net));
        if (!L->nets)
            lsf_die("out of memory");
    }
    L->nets[L->nnets++] = *net;
}

static void loader_free(loader *L)
{
    for (size_t i = 0; i < L->nrows; i++) {
        for (size_t c = 0; c < L->rows[i].n; c++)
            free(L->rows[i].own[c]);
        free(L->rows[i].own);
        free(L->rows[i].val);
    }
    free(L->rows);
    free(L->nets);
    lsf_table_free(&L->t);
}

static void inherit(void *arg, uint32_t row, uint32_t parent)
{
    loader *L = arg;
    raw *r = &L->rows[row], *p = &L->rows[parent];
    for (size_t c = 0; c < p->n; c++) /* rows are all table-wide by now */
        if (p->val[c] && (!r->val[c] || !*r->val[c]))
            r->val[c] = p->val[c];
}

static int net_from(loader *L, const char *text, uint32_t row, int line, int col, const char *path,
                    lsf_errbuf *err)
{
    lsf_cidr_net net;
    char why[200];
    if (lsf_cidr_parse(text, &net, why, sizeof(why)) < 0) {
        snprintf(err->msg, sizeof(err->msg), "%s:%d:%d: %s", path, line, col, why);
        return -1;
    }
    net.row = row;
    net.line = line;
    net.col = col;
    add_net(L, &net);
    return 0;
}

static int load_csv(loader *L, const char *path, lsf_errbuf *err)
{
    lsf_csv c;
    if (lsf_csv_open(&c, path, err) < 0)
        return -1;
    int rc = lsf_csv_next(&c, err);
    if (rc <= 0) {
        if (rc == 0)
            snprintf(err->msg, sizeof(err->msg), "%s: empty table (expected a header line such "
                     "as: network,network.zone,asset.owner)", path);
        goto fail;
    }
    size_t ncols = c.n - 1;
    for (size_t i = 1; i < c.n; i++) {
        if (!lsf_enrich_name_ok(c.field[i])) {
            lsf_csv_error(&c, i, err, "column name '%s' is not a field name", c.field[i]);
            goto fail;
        }
        if (lsf_table_column(&L->t, c.field[i]) != i - 1) {
            lsf_csv_error(&c, i, err, "column '%s' appears twice", c.field[i]);
            goto fail;
        }
    }
    while ((rc = lsf_csv_next(&c, err)) > 0) {
        if (c.n - 1 > ncols) {
            lsf_csv_error(&c, ncols + 1, err, "more values than the header has columns (%zu)",
                          ncols + 1);
            goto fail;
        }
        uint32_t row = (uint32_t)L->nrows;
        raw *r = new_row(L);
        for (size_t i = 1; i < c.n; i++)
            set_val(r, i - 1, c.field[i]);
        if (net_from(L, c.field[0], row, c.field_line[0], c.field_col[0], path, err) < 0)
            goto fail;
    }
    if (rc < 0)
        goto fail;
    lsf_csv_close(&c);
    return 0;
fail:
    lsf_csv_close(&c);
    return -1;
}

static int load_yaml_item(loader *L, const lsf_node *item, const char *path, lsf_errbuf *err)
{
    if (item->kind != LSF_NODE_MAP)
        return lsf_node_error(err, item, "expected a map such as {network: 10.0.0.0/8, "
                                         "network.zone: internal}");
    const lsf_node *nets = lsf_node_get(item, "network");
    if (!nets)
        return lsf_node_error(err, item, "this entry has no 'network'");
    uint32_t row = (uint32_t)L->nrows;
    raw *r = new_row(L);
    for (const lsf_node *c = item->child; c; c = c->next) {
        if (c == nets)
            continue;
        lsf_node at = *c;
        at.line = c->key_line;
        at.col = c->key_col;
        if (!lsf_enrich_name_ok(c->key))
            return lsf_node_error(err, &at, "'%s' is not a field name", c->key);
        if (c->kind != LSF_NODE_SCALAR)
            return lsf_node_error(err, c, "%s: expected a single value", c->key);
        set_val(r, lsf_table_column(&L->t, c->key), c->str);
    }
    const lsf_node *single = nets->kind == LSF_NODE_SCALAR ? nets : NULL;
    if (!single && (nets->kind != LSF_NODE_SEQ || !nets->nchild))
        return lsf_node_error(err, nets, "network: expected a network or a list of them");
    for (const lsf_node *n = single ? single : nets->child; n; n = single ? NULL : n->next) {
        if (n->kind != LSF_NODE_SCALAR)
            return lsf_node_error(err, n, "network: expected a network such as 10.0.0.0/8");
        if (net_from(L, n->str, row, n->line, n->col, path, err) < 0)
            return -1;
    }
    return 0;
}

static int load_yaml(loader *L, const char *path, lsf_errbuf *err)
{
    lsf_rules_load_lock(); /* the YAML loader's file-name table is process-wide */
    lsf_node *root = lsf_yaml_load_file(path, err);
    lsf_rules_load_unlock();
    if (!root)
        return -1;
    int rc = 0;
    const lsf_node *list = root->kind == LSF_NODE_MAP ? lsf_node_get(root, "networks") : root;
    if (!list || list->kind != LSF_NODE_SEQ) {
        rc = lsf_node_error(err, list ? list : root,
                            "expected a list of networks (or a map with a 'networks' list)");
    } else {
        for (const lsf_node *item = list->child; item && rc == 0; item = item->next)
            rc = load_yaml_item(L, item, path, err);
    }
    lsf_node_free(root);
    return rc;
}

static void ver_free(void *arg, void *v)
{
    (void)arg;
    cidr_ver *cv = v;
    if (!cv)
        return;
    lsf_table_free(&cv->t);
    lsf_cidr_index_free(cv->ix);
    free(cv->names);
    free(cv);
}

static void *ver_load(void *arg, uint64_t generation, lsf_errbuf *err)
{
    cidr_ctx *x = arg;
    const cidr_conf *c = x->conf;
    (void)generation;
    loader L = {0};
    bool yaml = c->format == 2 || (c->format == 0 && lsf_table_is_yaml(c->path));
    if ((yaml ? load_yaml(&L, c->path, err) : load_csv(&L, c->path, err)) < 0) {
        loader_free(&L);
        return NULL;
    }
    for (size_t i = 0; i < L.nrows; i++) /* every row as wide as the table */
        grow(&L.rows[i], L.t.ncols);
    cidr_ver *v = calloc(1, sizeof(*v));
    if (!v)
        lsf_die("out of memory");
    v->ix = lsf_cidr_index_build(L.nets, L.nnets, c->path, inherit, &L, err);
    if (!v->ix) {
        loader_free(&L);
        free(v);
        return NULL;
    }
    for (size_t i = 0; i < L.nrows; i++)
        lsf_table_add_row(&L.t, L.rows[i].val);
    v->t = L.t;
    L.t = (lsf_table){0};
    v->names = calloc(x->nfields * (v->t.ncols ? v->t.ncols : 1), sizeof(lsf_str));
    if (!v->names)
        lsf_die("out of memory");
    for (size_t f = 0; f < x->nfields; f++) {
        lsf_str *n = lsf_table_names(&v->t, x->target[f]);
        memcpy(v->names + f * v->t.ncols, n, v->t.ncols * sizeof(lsf_str));
        free(n);
    }
    lsf_info("%s: %s: %zu networks, %zu columns, %zu ranges", x->name, c->path, L.nnets,
             v->t.ncols, lsf_cidr_index_ranges(v->ix));
    loader_free(&L);
    return v;
}

/* ---- the stage ---------------------------------------------------------- */

static int cidr_process(lsf_stage *st, lsf_batch *b, int worker)
{
    cidr_ctx *x = st->ctx;
    const cidr_ver *v = lsf_live_enter(x->live, worker);
    uint64_t matched = 0, unmatched = 0, invalid = 0;
    char scratch[32];
    for (uint32_t i = 0; i < b->n; i++) {
        lsf_event *ev = &b->events[i];
        if (ev->flags & LSF_EV_DROPPED)
            continue;
        for (size_t fi = 0; fi < x->nfields; fi++) {
            lsf_str s;
            lsf_ip ip;
            if (!lsf_enrich_get(ev, &x->field[fi], scratch, &s) || s.len == 0 ||
                (s.len == 1 && s.ptr[0] == '-'))
                continue;
            if (lsf_ip_parse(s.ptr, s.len, &ip) < 0) {
                invalid++;
                continue;
            }
            int64_t row = lsf_cidr_index_find(v->ix, &ip);
            if (row < 0) {
                unmatched++;
                continue;
            }
            matched++;
            lsf_row_apply(b, ev, &v->t.row[row], v->names + fi * v->t.ncols);
        }
    }
    lsf_live_exit(x->live, worker);
    if (matched)
        lsf_counter_add(x->c_matched, matched);
    if (unmatched)
        lsf_counter_add(x->c_unmatched, unmatched);
    if (invalid)
        lsf_counter_add(x->c_invalid, invalid);
    return LSF_OK;
}

static int cidr_init(lsf_stage *st, lsf_errbuf *err)
{
    cidr_ctx *x = st->ctx;
    cidr_conf *c = st->conf;
    x->name = st->name;
    x->conf = c;
    if (lsf_enrich_ip_fields(st, &c->fields, &x->field, &x->nfields, err) < 0)
        return -1;
    x->target = calloc(x->nfields, sizeof(char *));
    if (!x->target)
        lsf_die("out of memory");
    for (size_t i = 0; i < x->nfields; i++) {
        x->target[i] = lsf_table_target(c->target, x->field[i].name.ptr);
        if (*x->target[i] && !lsf_enrich_name_ok(x->target[i]))
            return lsf_node_error(err, lsf_enrich_at(st->node, "target"),
                                  "target: '%s' is not a field name", x->target[i]);
    }
    x->c_matched = lsf_counter_new(st->name, "matched");
    x->c_unmatched = lsf_counter_new(st->name, "unmatched");
    x->c_invalid = lsf_counter_new(st->name, "invalid");
    lsf_live_ops ops = {ver_load, ver_free, x};
    const char *paths[] = {c->path};
    x->live = lsf_enrich_live_open(st, paths, 1, c->check_interval_ms, &ops, "path", err);
    return x->live ? 0 : -1;
}

static void cidr_destroy(lsf_stage *st)
{
    cidr_ctx *x = st->ctx;
    lsf_live_free(x->live);
    for (size_t i = 0; x->target && i < x->nfields; i++)
        free(x->target[i]);
    lsf_enrich_fields_free(x->field, x->nfields);
    free(x->target);
}

const lsf_stage_def lsf_stage_cidr = {
    .name = "cidr",
    .kind = LSF_STAGE_TRANSFORM,
    .help = "Adds fields from a table of networks (CSV/YAML, IPv4 and IPv6, longest prefix "
            "wins) for IP fields, e.g. network zone, asset owner; reloads it when it changes.",
    .keys = cidr_keys,
    .conf_size = sizeof(cidr_conf),
    .ctx_size = sizeof(cidr_ctx),
    .init = cidr_init,
    .process = cidr_process,
    .reopen = lsf_enrich_reopen,
    .destroy = cidr_destroy,
};
