/* config.h - YAML configuration as a small tree with source positions, and
 * binding of a stage's declared keys onto its conf struct.
 *
 * Design: libyaml's document is converted once into lsf_node trees that carry
 * file:line:column, so every later error (unknown key, wrong type, a port
 * that cannot be bound) points at the exact place in the file.
 * Threads: loading and binding happen on the main thread before start.
 */
#ifndef LSF_CONFIG_H
#define LSF_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum lsf_node_kind { LSF_NODE_SCALAR, LSF_NODE_SEQ, LSF_NODE_MAP };

typedef struct lsf_node lsf_node;
struct lsf_node {
    enum lsf_node_kind kind;
    char *str;          /* scalar text (NUL-terminated), NULL for collections */
    char *key;          /* children of a map: the key naming this value */
    const char *file;   /* file name for messages (shared, owned by the root) */
    int line, col;      /* 1-based position of the value */
    int key_line, key_col; /* map entries: position of the key */
    bool quoted;        /* scalar was quoted (so "yes" stays a string) */
    lsf_node *child;    /* first child (seq items, map entries) */
    lsf_node *next;     /* next sibling */
    size_t nchild;
};

typedef struct lsf_errbuf {
    char msg[1024];
} lsf_errbuf;

/* Formats "file:line:col: message" into err and returns -1. */
int lsf_node_error(lsf_errbuf *err, const lsf_node *at, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Loads a YAML file (or, with `text`, a YAML string named `name`). Returns
 * the root node (caller frees with lsf_node_free) or NULL with err set. */
lsf_node *lsf_yaml_load_file(const char *path, lsf_errbuf *err);
lsf_node *lsf_yaml_load_string(const char *name, const char *text, lsf_errbuf *err);
void lsf_node_free(lsf_node *n);

/* Map lookup: returns the value node of `key`, or NULL. */
const lsf_node *lsf_node_get(const lsf_node *map, const char *key);

/* ---- declared keys ----------------------------------------------------- */

enum lsf_key_type {
    LSF_K_STR,      /* char *, owned by the conf (freed by lsf_conf_free) */
    LSF_K_INT,      /* int64_t, within [min, max] */
    LSF_K_BOOL,     /* bool */
    LSF_K_SIZE,     /* int64_t bytes; accepts 512, 64KiB, 1MiB, 2GB */
    LSF_K_DURATION, /* int64_t milliseconds; accepts 500ms, 10s, 5m, 1h */
    LSF_K_ENUM,     /* int index into `choices` ("a|b|c") */
    LSF_K_STRLIST,  /* lsf_strlist; a scalar counts as a list of one */
    LSF_K_NODE,     /* const lsf_node *: the raw value, parsed by the stage */
};

typedef struct lsf_strlist {
    char **v;
    size_t n;
} lsf_strlist;

typedef struct lsf_key {
    const char *name;
    enum lsf_key_type type;
    const char *def;     /* default as text (NULL: no default / required) */
    const char *help;    /* one sentence for `logsift help STAGE` */
    size_t offset;       /* offset of the value in the stage's conf struct */
    const char *choices; /* LSF_K_ENUM: "auto|rfc5424|rfc3164" */
    int64_t min, max;    /* LSF_K_INT/SIZE/DURATION bounds (0,0: unbounded) */
    bool required;
} lsf_key;

#define LSF_KEYS_END {NULL, 0, NULL, NULL, 0, NULL, 0, 0, false}

/* Fills `conf` from the map node `map` using `keys`: defaults first, then
 * the given values. Keys named in `ignore` (NULL-terminated, may be NULL) are
 * accepted without binding. Unknown keys, wrong types and missing required
 * keys are errors with position. `map` may be NULL (all defaults). */
int lsf_conf_bind(void *conf, const lsf_key *keys, const lsf_node *map, const char *const *ignore,
                  lsf_errbuf *err);
/* Frees strings and lists that lsf_conf_bind allocated in `conf`. */
void lsf_conf_free(void *conf, const lsf_key *keys);
/* Prints the keys as a table for `logsift help`. */
void lsf_keys_print(const lsf_key *keys, const char *indent);
const char *lsf_key_type_name(enum lsf_key_type t);

/* Scalar converters shared with stages that parse LSF_K_NODE values.
 * Each returns 0 or -1. */
int lsf_parse_size(const char *s, int64_t *out);
int lsf_parse_duration_ms(const char *s, int64_t *out);
int lsf_parse_bool(const char *s, bool *out);
int lsf_parse_int(const char *s, int64_t *out);

#endif
