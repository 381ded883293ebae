/* config.c - YAML (libyaml) into lsf_node trees, and key binding.
 *
 * Design: the libyaml document API gives every node its start mark; we copy
 * the document into our own small tree (strings NUL-terminated, positions
 * 1-based) and drop the libyaml document, so stages can keep nodes for later
 * error messages. Anchors and aliases are resolved by libyaml.
 * Threads: loading may run on any thread (rule reloads); binding runs on
 * the thread that builds the stage.
 */
#include "config.h"

#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

#include "log.h"

int lsf_node_error(lsf_errbuf *err, const lsf_node *at, const char *fmt, ...)
{
    if (!err)
        return -1;
    int n = 0;
    if (at && at->file)
        n = snprintf(err->msg, sizeof(err->msg), "%s:%d:%d: ", at->file, at->line, at->col);
    if (n < 0 || n >= (int)sizeof(err->msg))
        n = 0;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err->msg + n, sizeof(err->msg) - (size_t)n, fmt, ap);
    va_end(ap);
    return -1;
}

static char *xstrdup(const char *s)
{
    char *d = strdup(s ? s : "");
    if (!d)
        lsf_die("out of memory");
    return d;
}

static lsf_node *node_new(enum lsf_node_kind kind, const char *file, yaml_mark_t mark)
{
    lsf_node *n = calloc(1, sizeof(*n));
    if (!n)
        lsf_die("out of memory");
    n->kind = kind;
    n->file = file;
    n->line = (int)mark.line + 1;
    n->col = (int)mark.column + 1;
    return n;
}

static void append_child(lsf_node *parent, lsf_node *child, lsf_node **tail)
{
    if (*tail)
        (*tail)->next = child;
    else
        parent->child = child;
    *tail = child;
    parent->nchild++;
}

/* Converts libyaml node `yn` (depth-limited against alias bombs). */
static lsf_node *convert(yaml_document_t *doc, yaml_node_t *yn, const char *file, int depth,
                         lsf_errbuf *err)
{
    if (depth > 64) {
        lsf_node tmp = {.file = file, .line = (int)yn->start_mark.line + 1,
                        .col = (int)yn->start_mark.column + 1};
        lsf_node_error(err, &tmp, "configuration nested too deeply");
        return NULL;
    }
    switch (yn->type) {
    case YAML_SCALAR_NODE: {
        lsf_node *n = node_new(LSF_NODE_SCALAR, file, yn->start_mark);
        n->str = malloc(yn->data.scalar.length + 1);
        if (!n->str)
            lsf_die("out of memory");
        memcpy(n->str, yn->data.scalar.value, yn->data.scalar.length);
        n->str[yn->data.scalar.length] = 0;
        n->quoted = yn->data.scalar.style == YAML_SINGLE_QUOTED_SCALAR_STYLE ||
                    yn->data.scalar.style == YAML_DOUBLE_QUOTED_SCALAR_STYLE;
        return n;
    }
    case YAML_SEQUENCE_NODE: {
        lsf_node *n = node_new(LSF_NODE_SEQ, file, yn->start_mark), *tail = NULL;
        for (yaml_node_item_t *it = yn->data.sequence.items.start; it < yn->data.sequence.items.top;
             it++) {
            lsf_node *c = convert(doc, yaml_document_get_node(doc, *it), file, depth + 1, err);
            if (!c) {
                lsf_node_free(n);
                return NULL;
            }
            append_child(n, c, &tail);
        }
        return n;
    }
    case YAML_MAPPING_NODE: {
        lsf_node *n = node_new(LSF_NODE_MAP, file, yn->start_mark), *tail = NULL;
        for (yaml_node_pair_t *p = yn->data.mapping.pairs.start; p < yn->data.mapping.pairs.top;
             p++) {
            yaml_node_t *k = yaml_document_get_node(doc, p->key);
            yaml_node_t *v = yaml_document_get_node(doc, p->value);
            if (!k || k->type != YAML_SCALAR_NODE) {
                lsf_node tmp = {.file = file, .line = k ? (int)k->start_mark.line + 1 : 0,
                                .col = k ? (int)k->start_mark.column + 1 : 0};
                lsf_node_error(err, &tmp, "mapping keys must be plain strings");
                lsf_node_free(n);
                return NULL;
            }
            for (lsf_node *prev = n->child; prev; prev = prev->next) {
                if (strcmp(prev->key, (const char *)k->data.scalar.value) == 0) {
                    lsf_node tmp = {.file = file, .line = (int)k->start_mark.line + 1,
                                    .col = (int)k->start_mark.column + 1};
                    lsf_node_error(err, &tmp, "duplicate key '%s' (first at line %d)",
                                   prev->key, prev->key_line);
                    lsf_node_free(n);
                    return NULL;
                }
            }
            lsf_node *c = convert(doc, v, file, depth + 1, err);
            if (!c) {
                lsf_node_free(n);
                return NULL;
            }
            c->key = xstrdup((const char *)k->data.scalar.value);
            c->key_line = (int)k->start_mark.line + 1;
            c->key_col = (int)k->start_mark.column + 1;
            append_child(n, c, &tail);
        }
        return n;
    }
    default:
        return node_new(LSF_NODE_SCALAR, file, yn->start_mark);
    }
}

void lsf_node_free(lsf_node *n)
{
    while (n) {
        lsf_node *next = n->next;
        lsf_node_free(n->child);
        free(n->str);
        free(n->key);
        free(n);
        n = next;
    }
}

/* File names are kept in a static list so nodes can point at them for as
 * long as the process runs (configs and packs are few). Rule reloads load
 * YAML off the main thread, hence the lock. */
static const char *intern_file_name(const char *name)
{
    static struct fname {
        struct fname *next;
        char name[];
    } *names;
    static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
    pthread_mutex_lock(&lock);
    struct fname *f = names;
    while (f && strcmp(f->name, name) != 0)
        f = f->next;
    if (!f) {
        f = malloc(sizeof(*f) + strlen(name) + 1);
        if (!f)
            lsf_die("out of memory");
        strcpy(f->name, name);
        f->next = names;
        names = f;
    }
    pthread_mutex_unlock(&lock);
    return f->name;
}

static lsf_node *load(yaml_parser_t *parser, const char *name, lsf_errbuf *err)
{
    const char *file = intern_file_name(name);
    yaml_document_t doc;
    if (!yaml_parser_load(parser, &doc)) {
        lsf_node at = {.file = file, .line = (int)parser->problem_mark.line + 1,
                       .col = (int)parser->problem_mark.column + 1};
        lsf_node_error(err, &at, "YAML syntax error: %s%s%s",
                       parser->problem ? parser->problem : "unknown problem",
                       parser->context ? " " : "", parser->context ? parser->context : "");
        return NULL;
    }
    yaml_node_t *root = yaml_document_get_root_node(&doc);
    lsf_node *n;
    if (!root) { /* empty file: an empty map */
        yaml_mark_t m = {0, 0, 0};
        n = node_new(LSF_NODE_MAP, file, m);
    } else {
        n = convert(&doc, root, file, 0, err);
    }
    yaml_document_delete(&doc);
    return n;
}

lsf_node *lsf_yaml_load_file(const char *path, lsf_errbuf *err)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        snprintf(err->msg, sizeof(err->msg), "%s: cannot open: %s", path, strerror(errno));
        return NULL;
    }
    yaml_parser_t parser;
    yaml_parser_initialize(&parser);
    yaml_parser_set_input_file(&parser, f);
    lsf_node *n = load(&parser, path, err);
    yaml_parser_delete(&parser);
    fclose(f);
    return n;
}

lsf_node *lsf_yaml_load_string(const char *name, const char *text, lsf_errbuf *err)
{
    yaml_parser_t parser;
    yaml_parser_initialize(&parser);
    yaml_parser_set_input_string(&parser, (const unsigned char *)text, strlen(text));
    lsf_node *n = load(&parser, name, err);
    yaml_parser_delete(&parser);
    return n;
}

const lsf_node *lsf_node_get(const lsf_node *map, const char *key)
{
    if (!map || map->kind != LSF_NODE_MAP)
        return NULL;
    for (const lsf_node *c = map->child; c; c = c->next)
        if (strcmp(c->key, key) == 0)
            return c;
    return NULL;
}

/* ---- scalar converters -------------------------------------------------- */

int lsf_parse_int(const char *s, int64_t *out)
{
    if (!s || !*s)
        return -1;
    errno = 0;
    char *end;
    long long v = strtoll(s, &end, 0);
    if (errno || *end)
        return -1;
    *out = v;
    return 0;
}

int lsf_parse_bool(const char *s, bool *out)
{
    static const char *const yes[] = {"true", "yes", "on", "1"};
    static const char *const no[] = {"false", "no", "off", "0"};
    for (int i = 0; i < 4; i++) {
        if (strcasecmp(s, yes[i]) == 0) {
            *out = true;
            return 0;
        }
        if (strcasecmp(s, no[i]) == 0) {
            *out = false;
            return 0;
        }
    }
    return -1;
}

/* Parses "<number><unit>" where the unit is looked up in `units`. */
static int parse_with_units(const char *s, const char *const *names, const int64_t *mult,
                            int64_t *out)
{
    if (!s)
        return -1;
    while (isspace((unsigned char)*s))
        s++;
    errno = 0;
    char *end;
    double v = strtod(s, &end);
    if (errno || end == s || v < 0)
        return -1;
    while (isspace((unsigned char)*end))
        end++;
    for (int i = 0; names[i]; i++) {
        if (strcasecmp(end, names[i]) == 0) {
            double r = v * (double)mult[i];
            if (r > 9.2e18)
                return -1;
            *out = (int64_t)r;
            return 0;
        }
    }
    return -1;
}

int lsf_parse_size(const char *s, int64_t *out)
{
    static const char *const names[] = {"", "b", "k", "kb", "kib", "m", "mb", "mib",
                                        "g", "gb", "gib", NULL};
    static const int64_t mult[] = {1, 1, 1024, 1000, 1024, 1048576, 1000000, 1048576,
                                   1073741824, 1000000000, 1073741824};
    return parse_with_units(s, names, mult, out);
}

int lsf_parse_duration_ms(const char *s, int64_t *out)
{
    static const char *const names[] = {"ms", "s", "m", "min", "h", "d", NULL};
    static const int64_t mult[] = {1, 1000, 60000, 60000, 3600000, 86400000};
    /* A bare number is seconds. */
    int64_t secs;
    if (lsf_parse_int(s, &secs) == 0 && secs >= 0) {
        *out = secs * 1000;
        return 0;
    }
    return parse_with_units(s, names, mult, out);
}

/* ---- binding ------------------------------------------------------------ */

const char *lsf_key_type_name(enum lsf_key_type t)
{
    switch (t) {
    case LSF_K_STR: return "string";
    case LSF_K_INT: return "int";
    case LSF_K_BOOL: return "bool";
    case LSF_K_SIZE: return "size";
    case LSF_K_DURATION: return "duration";
    case LSF_K_ENUM: return "enum";
    case LSF_K_STRLIST: return "list";
    case LSF_K_NODE: return "map";
    }
    return "?";
}

static int enum_index(const char *choices, const char *s)
{
    int i = 0;
    const char *p = choices;
    size_t n = strlen(s);
    while (*p) {
        const char *bar = strchr(p, '|');
        size_t len = bar ? (size_t)(bar - p) : strlen(p);
        if (len == n && strncmp(p, s, n) == 0)
            return i;
        i++;
        if (!bar)
            break;
        p = bar + 1;
    }
    return -1;
}

static void strlist_free(lsf_strlist *l)
{
    for (size_t i = 0; i < l->n; i++)
        free(l->v[i]);
    free(l->v);
    l->v = NULL;
    l->n = 0;
}

/* Stores the text value `s` (from node `at`, or a default when at is NULL)
 * into the conf slot for `k`. */
static int set_value(void *conf, const lsf_key *k, const char *s, const lsf_node *at,
                     lsf_errbuf *err)
{
    char *slot = (char *)conf + k->offset;
    int64_t v = 0;
    switch (k->type) {
    case LSF_K_STR:
        free(*(char **)slot);
        *(char **)slot = xstrdup(s);
        return 0;
    case LSF_K_BOOL:
        if (lsf_parse_bool(s, (bool *)slot) < 0)
            return lsf_node_error(err, at, "%s: expected true or false, got '%s'", k->name, s);
        return 0;
    case LSF_K_ENUM: {
        int i = enum_index(k->choices, s);
        if (i < 0)
            return lsf_node_error(err, at, "%s: expected one of %s, got '%s'", k->name,
                                  k->choices, s);
        *(int *)slot = i;
        return 0;
    }
    case LSF_K_INT:
        if (lsf_parse_int(s, &v) < 0)
            return lsf_node_error(err, at, "%s: expected an integer, got '%s'", k->name, s);
        break;
    case LSF_K_SIZE:
        if (lsf_parse_size(s, &v) < 0)
            return lsf_node_error(err, at, "%s: expected a size such as 65536 or 64KiB, got '%s'",
                                  k->name, s);
        break;
    case LSF_K_DURATION:
        if (lsf_parse_duration_ms(s, &v) < 0)
            return lsf_node_error(err, at, "%s: expected a duration such as 500ms, 10s or 5m, got '%s'",
                                  k->name, s);
        break;
    case LSF_K_STRLIST: {
        lsf_strlist *l = (lsf_strlist *)slot;
        strlist_free(l);
        l->v = malloc(sizeof(char *));
        if (!l->v)
            lsf_die("out of memory");
        l->v[0] = xstrdup(s);
        l->n = 1;
        return 0;
    }
    case LSF_K_NODE:
        return 0;
    }
    if ((k->min || k->max) && (v < k->min || v > k->max))
        return lsf_node_error(err, at, "%s: %" PRId64 " is out of range [%" PRId64 ", %" PRId64 "]",
                              k->name, v, k->min, k->max);
    *(int64_t *)slot = v;
    return 0;
}

static int set_node(void *conf, const lsf_key *k, const lsf_node *v, lsf_errbuf *err)
{
    char *slot = (char *)conf + k->offset;
    if (k->type == LSF_K_NODE) {
        *(const lsf_node **)slot = v;
        return 0;
    }
    if (k->type == LSF_K_STRLIST && v->kind == LSF_NODE_SEQ) {
        lsf_strlist *l = (lsf_strlist *)slot;
        strlist_free(l);
        l->v = calloc(v->nchild ? v->nchild : 1, sizeof(char *));
        if (!l->v)
            lsf_die("out of memory");
        for (const lsf_node *c = v->child; c; c = c->next) {
            if (c->kind != LSF_NODE_SCALAR)
                return lsf_node_error(err, c, "%s: expected a list of strings", k->name);
            l->v[l->n++] = xstrdup(c->str);
        }
        return 0;
    }
    if (v->kind != LSF_NODE_SCALAR)
        return lsf_node_error(err, v, "%s: expected a %s, got a %s", k->name,
                              lsf_key_type_name(k->type), v->kind == LSF_NODE_MAP ? "map" : "list");
    return set_value(conf, k, v->str, v, err);
}

/* Edit distance, for "did you mean" hints on misspelt keys. */
static int distance(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);
    if (la > 40 || lb > 40)
        return 99;
    int d[41][41];
    for (size_t i = 0; i <= la; i++)
        d[i][0] = (int)i;
    for (size_t j = 0; j <= lb; j++)
        d[0][j] = (int)j;
    for (size_t i = 1; i <= la; i++)
        for (size_t j = 1; j <= lb; j++) {
            int c = d[i - 1][j - 1] + (a[i - 1] != b[j - 1]);
            if (d[i - 1][j] + 1 < c)
                c = d[i - 1][j] + 1;
            if (d[i][j - 1] + 1 < c)
                c = d[i][j - 1] + 1;
            d[i][j] = c;
        }
    return d[la][lb];
}

int lsf_conf_bind(void *conf, const lsf_key *keys, const lsf_node *map, const char *const *ignore,
                  lsf_errbuf *err)
{
    for (const lsf_key *k = keys; k->name; k++)
        if (k->def && set_value(conf, k, k->def, NULL, err) < 0)
            return -1; /* a bad built-in default is a programming error */
    if (!map)
        goto check_required;
    if (map->kind != LSF_NODE_MAP)
        return lsf_node_error(err, map, "expected a map of settings");
    for (const lsf_node *c = map->child; c; c = c->next) {
        bool skip = false;
        for (const char *const *ig = ignore; ig && *ig; ig++)
            if (strcmp(*ig, c->key) == 0)
                skip = true;
        if (skip)
            continue;
        const lsf_key *k = keys;
        while (k->name && strcmp(k->name, c->key) != 0)
            k++;
        if (!k->name) {
            lsf_node at = *c;
            at.line = c->key_line;
            at.col = c->key_col;
            const char *best = NULL;
            int bestd = 3;
            for (const lsf_key *o = keys; o->name; o++) {
                int d = distance(o->name, c->key);
                if (d < bestd) {
                    bestd = d;
                    best = o->name;
                }
            }
            for (const char *const *ig = ignore; ig && *ig; ig++) {
                int d = distance(*ig, c->key);
                if (d < bestd) {
                    bestd = d;
                    best = *ig;
                }
            }
            if (best)
                return lsf_node_error(err, &at, "unknown key '%s' (did you mean '%s'?)", c->key,
                                      best);
            return lsf_node_error(err, &at, "unknown key '%s'", c->key);
        }
        if (set_node(conf, k, c, err) < 0)
            return -1;
    }
check_required:
    for (const lsf_key *k = keys; k->name; k++) {
        if (!k->required)
            continue;
        if (!lsf_node_get(map, k->name))
            return lsf_node_error(err, map, "missing required key '%s'", k->name);
    }
    return 0;
}

void lsf_conf_free(void *conf, const lsf_key *keys)
{
    if (!conf)
        return;
    for (const lsf_key *k = keys; k->name; k++) {
        char *slot = (char *)conf + k->offset;
        if (k->type == LSF_K_STR) {
            free(*(char **)slot);
            *(char **)slot = NULL;
        } else if (k->type == LSF_K_STRLIST) {
            strlist_free((lsf_strlist *)slot);
        }
    }
}

void lsf_keys_print(const lsf_key *keys, const char *indent)
{
    for (const lsf_key *k = keys; k->name; k++) {
        char type[128];
        if (k->type == LSF_K_ENUM)
            snprintf(type, sizeof(type), "%s", k->choices);
        else
            snprintf(type, sizeof(type), "%s", lsf_key_type_name(k->type));
        printf("%s%-18s %-28s %s", indent, k->name, type,
               k->required ? "(required)" : "");
        if (!k->required)
            printf("default: %s", k->def ? (*k->def ? k->def : "\"\"") : "none");
        printf("\n%s    %s\n", indent, k->help);
    }
}
