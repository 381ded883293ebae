/* pack.c - reads rule-pack files: the top-level structure, pattern
 * definitions and inline tests. Rules themselves are validated where they
 * are compiled (ruleset.c), so each check lives next to the code that needs it.
 *
 * The one design choice to know: the pack keeps its YAML tree (lsf_node) for
 * its whole life; rules, patterns and tests point at nodes instead of copying,
 * so every later error - a regex that does not compile, a failing test - can
 * still say file:line:column.
 *
 * Threads: called by whoever loads a rule set (main or reload thread).
 */
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "core/log.h"
#include "rules/rules_int.h"

/* An error at the position of a map entry's key. */
static int key_error(lsf_errbuf *err, const lsf_node *entry, const char *fmt, const char *a,
                     const char *b)
{
    lsf_node at = {.file = entry->file, .line = entry->key_line, .col = entry->key_col};
    return lsf_node_error(err, &at, fmt, a, b);
}

static bool valid_pack_name(const char *s)
{
    if (!s[0] || !(islower((unsigned char)s[0]) || isdigit((unsigned char)s[0])))
        return false;
    for (const char *p = s; *p; p++)
        if (!(islower((unsigned char)*p) || isdigit((unsigned char)*p) || *p == '_' || *p == '-'))
            return false;
    return true;
}

static bool valid_pattern_name(const char *s)
{
    if (!(isalpha((unsigned char)s[0]) || s[0] == '_'))
        return false;
    for (const char *p = s; *p; p++)
        if (!(isalnum((unsigned char)*p) || *p == '_'))
            return false;
    return true;
}

static char *xstrdup(const char *s)
{
    char *d = strdup(s ? s : "");
    if (!d)
        lsf_die("out of memory");
    return d;
}

const lsf_pattern *lsf_pack_pattern(const lsf_pack *pk, const char *name, size_t len)
{
    for (uint32_t i = 0; i < pk->npatterns; i++)
        if (strlen(pk->patterns[i].name) == len && memcmp(pk->patterns[i].name, name, len) == 0)
            return &pk->patterns[i];
    return NULL;
}

static int load_patterns(lsf_pack *pk, const lsf_node *map, lsf_errbuf *err)
{
    if (map->kind != LSF_NODE_MAP)
        return lsf_node_error(err, map, "'patterns' must be a map of NAME: regex");
    pk->patterns = calloc(map->nchild ? map->nchild : 1, sizeof(lsf_pattern));
    if (!pk->patterns)
        lsf_die("out of memory");
    for (const lsf_node *e = map->child; e; e = e->next) {
        if (!valid_pattern_name(e->key))
            return key_error(err, e, "bad pattern name '%s' (letters, digits and _, not "
                             "starting with a digit)%s", e->key, "");
        if (e->kind != LSF_NODE_SCALAR || !e->str || !e->str[0])
            return lsf_node_error(err, e, "pattern %s must be a non-empty regex string", e->key);
        lsf_pattern *pt = &pk->patterns[pk->npatterns++];
        pt->name = e->key;
        pt->body = e->str;
        pt->node = e;
    }
    return 0;
}

static int parse_format(const char *s)
{
    static const char *const names[] = {"auto", "rfc5424", "rfc3164", "json", "kv", "raw"};
    for (int i = 0; i < 6; i++)
        if (strcmp(s, names[i]) == 0)
            return i;
    return -1;
}

static int load_test(lsf_pack_test *t, const lsf_node *n, lsf_errbuf *err)
{
    if (n->kind != LSF_NODE_MAP)
        return lsf_node_error(err, n, "each test must be a map with 'line' and 'expect'");
    t->node = n;
    t->dropped = -1;
    for (const lsf_node *e = n->child; e; e = e->next) {
        if (strcmp(e->key, "line") == 0) {
            if (e->kind != LSF_NODE_SCALAR || !e->str)
                return lsf_node_error(err, e, "'line' must be a string");
            t->line = e->str;
        } else if (strcmp(e->key, "expect") == 0) {
            if (e->kind == LSF_NODE_SCALAR && e->str && strcmp(e->str, "none") == 0) {
                t->expect_none = true;
            } else if (e->kind == LSF_NODE_MAP) {
                t->expect = e;
            } else {
                return lsf_node_error(err, e, "'expect' must be a map of field: value, or "
                                      "'none' for a line no rule may match");
            }
        } else if (strcmp(e->key, "dropped") == 0) {
            bool b;
            if (e->kind != LSF_NODE_SCALAR || lsf_parse_bool(e->str, &b) < 0)
                return lsf_node_error(err, e, "'dropped' must be true or false");
            t->dropped = b;
        } else if (strcmp(e->key, "format") == 0) {
            if (e->kind != LSF_NODE_SCALAR || (t->format = parse_format(e->str)) < 0)
                return lsf_node_error(err, e, "'format' must be one of auto, rfc5424, rfc3164, "
                                      "json, kv, raw");
        } else if (strcmp(e->key, "name") == 0 || strcmp(e->key, "description") == 0) {
            if (e->kind != LSF_NODE_SCALAR)
                return lsf_node_error(err, e, "'%s' must be a string", e->key);
        } else {
            return key_error(err, e, "unknown test key '%s' (line, expect, dropped, format, "
                             "name)%s", e->key, "");
        }
    }
    if (!t->line)
        return lsf_node_error(err, n, "test has no 'line'");
    if (!t->expect && !t->expect_none)
        return lsf_node_error(err, n, "test has no 'expect' (a map, or 'none')");
    return 0;
}

static int load_tests(lsf_pack *pk, const lsf_node *seq, lsf_errbuf *err)
{
    if (seq->kind != LSF_NODE_SEQ)
        return lsf_node_error(err, seq, "'tests' must be a list");
    pk->tests = calloc(seq->nchild ? seq->nchild : 1, sizeof(lsf_pack_test));
    if (!pk->tests)
        lsf_die("out of memory");
    for (const lsf_node *n = seq->child; n; n = n->next)
        if (load_test(&pk->tests[pk->ntests++], n, err) < 0)
            return -1;
    return 0;
}

/* Detections belong to another stage; here they only need to be well
 * formed enough that their ids can be reported. */
static int check_detections(const lsf_node *seq, lsf_errbuf *err)
{
    if (seq->kind != LSF_NODE_SEQ)
        return lsf_node_error(err, seq, "'detections' must be a list");
    for (const lsf_node *n = seq->child; n; n = n->next) {
        const lsf_node *id = n->kind == LSF_NODE_MAP ? lsf_node_get(n, "id") : NULL;
        if (!id || id->kind != LSF_NODE_SCALAR)
            return lsf_node_error(err, n, "each detection must be a map with an 'id'");
    }
    return 0;
}

int lsf_pack_load(const char *path, lsf_pack *pk, lsf_errbuf *err)
{
    memset(pk, 0, sizeof(*pk));
    pk->path = xstrdup(path);
    pk->root = lsf_yaml_load_file(path, err);
    if (!pk->root)
        return -1;
    const lsf_node *root = pk->root;
    if (root->kind != LSF_NODE_MAP || !root->child)
        return lsf_node_error(err, root, "a rule pack must be a map with 'pack' and 'rules'");
    for (const lsf_node *e = root->child; e; e = e->next) {
        if (strcmp(e->key, "pack") == 0) {
            if (e->kind != LSF_NODE_SCALAR || !valid_pack_name(e->str))
                return lsf_node_error(err, e, "'pack' must be a name of lower-case letters, "
                                      "digits, _ and -");
            pk->name = xstrdup(e->str);
        } else if (strcmp(e->key, "version") == 0 || strcmp(e->key, "description") == 0) {
            if (e->kind != LSF_NODE_SCALAR)
                return lsf_node_error(err, e, "'%s' must be a string", e->key);
            if (e->key[0] == 'v')
                pk->version = xstrdup(e->str);
            else
                pk->description = xstrdup(e->str);
        } else if (strcmp(e->key, "patterns") == 0) {
            if (load_patterns(pk, e, err) < 0)
                return -1;
        } else if (strcmp(e->key, "rules") == 0) {
            if (e->kind != LSF_NODE_SEQ)
                return lsf_node_error(err, e, "'rules' must be a list of rules");
            pk->rules = e;
        } else if (strcmp(e->key, "tests") == 0) {
            if (load_tests(pk, e, err) < 0)
                return -1;
        } else if (strcmp(e->key, "detections") == 0) {
            if (check_detections(e, err) < 0)
                return -1;
            pk->detections = e;
        } else {
            return key_error(err, e, "unknown key '%s' (pack, version, description, patterns, "
                             "rules, tests, detections)%s", e->key, "");
        }
    }
    if (!pk->name)
        return lsf_node_error(err, root, "the pack has no 'pack:' name");
    return 0;
}

void lsf_pack_deinit(lsf_pack *pk)
{
    free(pk->path);
    free(pk->name);
    free(pk->version);
    free(pk->description);
    free(pk->patterns);
    free(pk->tests);
    lsf_node_free(pk->root);
    memset(pk, 0, sizeof(*pk));
}

/* ---- which files ---------------------------------------------------------------- */

static bool is_pack_file(const char *name)
{
    size_t n = strlen(name);
    if (name[0] == '.')
        return false;
    return (n > 5 && strcmp(name + n - 5, ".yaml") == 0) ||
           (n > 4 && strcmp(name + n - 4, ".yml") == 0);
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static void push(char ***v, size_t *n, char *s)
{
    char **nv = realloc(*v, (*n + 1) * sizeof(char *));
    if (!nv)
        lsf_die("out of memory");
    nv[(*n)++] = s;
    *v = nv;
}

int lsf_pack_list_files(const char *const *paths, size_t npaths, char ***files, size_t *nfiles,
                        lsf_errbuf *err)
{
    *files = NULL;
    *nfiles = 0;
    for (size_t i = 0; i < npaths; i++) {
        struct stat sb;
        if (stat(paths[i], &sb) < 0) {
            snprintf(err->msg, sizeof(err->msg), "%s: %s", paths[i], strerror(errno));
            goto fail;
        }
        if (!S_ISDIR(sb.st_mode)) {
            push(files, nfiles, xstrdup(paths[i]));
            continue;
        }
        DIR *d = opendir(paths[i]);
        if (!d) {
            snprintf(err->msg, sizeof(err->msg), "%s: %s", paths[i], strerror(errno));
            goto fail;
        }
        size_t first = *nfiles;
        struct dirent *de;
        while ((de = readdir(d)) != NULL) {
            if (!is_pack_file(de->d_name))
                continue;
            size_t len = strlen(paths[i]) + strlen(de->d_name) + 2;
            char *full = malloc(len);
            if (!full)
                lsf_die("out of memory");
            const char *sep = paths[i][strlen(paths[i]) - 1] == '/' ? "" : "/";
            snprintf(full, len, "%s%s%s", paths[i], sep, de->d_name);
            push(files, nfiles, full);
        }
        closedir(d);
        qsort(*files + first, *nfiles - first, sizeof(char *), cmp_str);
    }
    return 0;
fail:
    for (size_t i = 0; i < *nfiles; i++)
        free((*files)[i]);
    free(*files);
    *files = NULL;
    *nfiles = 0;
    return -1;
}
