/* mmdb_walk.c - reads the values of many paths from one MaxMind DB record
 * in a single pass over its data (see mmdb_walk.h).
 *
 * The one design choice to know: libmaxminddb's MMDB_aget_value walks the
 * record from its top once per path, decoding every key it passes; with a
 * dozen paths per lookup that was ~10 us per address. Here the wanted paths
 * form a small trie and the record is walked once: keys not in the trie are
 * skipped by their encoded sizes, never decoded. libmaxminddb still owns the
 * file (MMDB_open) and the search tree (MMDB_lookup_sockaddr); this file
 * only reads the data section, with every offset checked against its size,
 * so a corrupt file yields "absent", never a read out of bounds.
 *
 * Data section format (MaxMind DB spec 2.0): a control byte holds the type
 * (3 bits; 0 = extended, type 7 + next byte) and a size (5 bits; 29-31 mean
 * 1-3 more size bytes). Pointers (type 1) carry a 1-4 byte offset into the
 * data section instead of a size and never point at pointers.
 *
 * Threads: a compiled path set is read-only after building; walks only
 * read the memory-mapped file.
 */
#include "enrich/mmdb_walk.h"

#include <stdlib.h>
#include <string.h>

#include "core/log.h"

#define MAX_DEPTH 32
#define BAD UINT32_MAX

typedef struct pnode {
    char *key;
    uint32_t klen;
    int64_t index;    /* key as an array index, -1 when not a number */
    int child, next;  /* first child, next sibling (-1: none) */
    int term;         /* term ending here, -1: none */
} pnode;

struct lsf_mmdb_paths {
    pnode *n; /* n[0] is the root */
    int nn;
    int nterms;
};

lsf_mmdb_paths *lsf_mmdb_paths_new(void)
{
    lsf_mmdb_paths *p = calloc(1, sizeof(*p));
    if (!p || !(p->n = calloc(1, sizeof(pnode))))
        lsf_die("out of memory");
    p->n[0] = (pnode){NULL, 0, -1, -1, -1, -1};
    p->nn = 1;
    return p;
}

void lsf_mmdb_paths_free(lsf_mmdb_paths *p)
{
    if (!p)
        return;
    for (int i = 0; i < p->nn; i++)
        free(p->n[i].key);
    free(p->n);
    free(p);
}

int lsf_mmdb_paths_count(const lsf_mmdb_paths *p) { return p->nterms; }

static int64_t as_index(const char *s)
{
    if (!*s || strlen(s) > 9)
        return -1;
    int64_t v = 0;
    for (; *s; s++) {
        if (*s < '0' || *s > '9')
            return -1;
        v = v * 10 + (*s - '0');
    }
    return v;
}

static int child_of(lsf_mmdb_paths *p, int parent, const char *key)
{
    for (int c = p->n[parent].child; c >= 0; c = p->n[c].next)
        if (strcmp(p->n[c].key, key) == 0)
            return c;
    pnode *nn = realloc(p->n, (size_t)(p->nn + 1) * sizeof(pnode));
    if (!nn)
        lsf_die("out of memory");
    p->n = nn;
    pnode *c = &p->n[p->nn];
    c->key = strdup(key);
    if (!c->key)
        lsf_die("out of memory");
    c->klen = (uint32_t)strlen(key);
    c->index = as_index(key);
    c->child = -1;
    c->term = -1;
    /* append, so siblings keep the order paths were added in */
    c->next = -1;
    int *link = &p->n[parent].child;
    while (*link >= 0)
        link = &p->n[*link].next;
    *link = p->nn;
    return p->nn++;
}

int lsf_mmdb_paths_add(lsf_mmdb_paths *p, const char *const *path)
{
    int at = 0;
    for (size_t i = 0; path[i]; i++)
        at = child_of(p, at, path[i]);
    if (at == 0)
        return -1;
    if (p->n[at].term < 0)
        p->n[at].term = p->nterms++;
    return p->n[at].term;
}

/* ---- decoding ----------------------------------------------------------- */

typedef struct dec {
    const uint8_t *b;
    uint32_t size;
} dec;

typedef struct ctl {
    int type;
    uint32_t size; /* pointer: the target offset */
    uint32_t pos;  /* offset after the control and size bytes */
} ctl;

static uint32_t be(const dec *d, uint32_t off, uint32_t n)
{
    uint32_t v = 0;
    for (uint32_t i = 0; i < n; i++)
        v = v << 8 | d->b[off + i];
    return v;
}

/* Reads the control at `off` without following pointers; -1 when it runs
 * past the data section. */
static int read_ctl(const dec *d, uint32_t off, ctl *c)
{
    if (off >= d->size)
        return -1;
    uint8_t b = d->b[off++];
    c->type = b >> 5;
    if (c->type == 1) { /* pointer */
        uint32_t ss = (b >> 3) & 3, vvv = b & 7, n = ss + 1;
        if (d->size - off < n)
            return -1;
        static const uint32_t bias[4] = {0, 2048, 526336, 0};
        uint32_t v = be(d, off, n);
        c->size = (ss == 3 ? v : (vvv << (8 * n)) | v) + bias[ss];
        c->pos = off + n;
        return 0;
    }
    if (c->type == 0) { /* extended */
        if (off >= d->size)
            return -1;
        c->type = 7 + d->b[off++];
    }
    uint32_t size = b & 0x1f;
    if (size >= 29) {
        uint32_t n = size - 28;
        if (d->size - off < n)
            return -1;
        static const uint32_t base[4] = {0, 29, 285, 65821};
        size = base[n] + be(d, off, n);
        off += n;
    }
    c->size = size;
    c->pos = off;
    return 0;
}

/* Reads the control at `off`, following a pointer (*was_ptr says so: the
 * value as stored at `off` then ends right after the pointer bytes). */
static int resolve(const dec *d, uint32_t off, ctl *c, bool *was_ptr)
{
    if (read_ctl(d, off, c) < 0)
        return -1;
    *was_ptr = c->type == 1;
    if (!*was_ptr)
        return 0;
    if (read_ctl(d, c->size, c) < 0 || c->type == 1)
        return -1;
    return 0;
}

/* Offset after the value at `off` (pointers are not followed); BAD on
 * corrupt data. */
static uint32_t skip(const dec *d, uint32_t off, int depth)
{
    ctl c;
    if (depth > MAX_DEPTH || read_ctl(d, off, &c) < 0)
        return BAD;
    switch (c.type) {
    case 1: return c.pos;                /* pointer */
    case 14: return c.pos;               /* boolean: the value is the size */
    case 7: case 11: {                   /* map, array */
        uint64_t items = c.type == 7 ? 2ull * c.size : c.size;
        uint32_t p = c.pos;
        for (uint64_t i = 0; i < items && p != BAD; i++)
            p = skip(d, p, depth + 1);
        return p;
    }
    default:
        if (d->size - c.pos < c.size)
            return BAD;
        return c.pos + c.size;
    }
}

static int find_key(const lsf_mmdb_paths *p, int parent, const uint8_t *key, uint32_t len)
{
    for (int c = p->n[parent].child; c >= 0; c = p->n[c].next)
        if (p->n[c].klen == len && memcmp(p->n[c].key, key, len) == 0)
            return c;
    return -1;
}

static int find_index(const lsf_mmdb_paths *p, int parent, uint32_t i)
{
    for (int c = p->n[parent].child; c >= 0; c = p->n[c].next)
        if (p->n[c].index == (int64_t)i)
            return c;
    return -1;
}

static int walk(const dec *d, const lsf_mmdb_paths *p, int node, uint32_t off, uint32_t *term_off,
                int depth);

/* Records and/or descends into the value at `off` for trie node `node`. */
static int visit(const dec *d, const lsf_mmdb_paths *p, int node, uint32_t off, uint32_t *term_off,
                 int depth)
{
    if (p->n[node].term >= 0)
        term_off[p->n[node].term] = off;
    if (p->n[node].child >= 0)
        return walk(d, p, node, off, term_off, depth + 1);
    return 0;
}

static int walk(const dec *d, const lsf_mmdb_paths *p, int node, uint32_t off, uint32_t *term_off,
                int depth)
{
    ctl c;
    bool ptr;
    if (depth > MAX_DEPTH || resolve(d, off, &c, &ptr) < 0)
        return -1;
    uint32_t pos = c.pos;
    if (c.type == 7) {
        for (uint32_t i = 0; i < c.size; i++) {
            ctl k;
            bool key_ptr;
            if (resolve(d, pos, &k, &key_ptr) < 0 || k.type != 2 || d->size - k.pos < k.size)
                return -1;
            uint32_t vpos = key_ptr ? skip(d, pos, depth) : k.pos + k.size;
            int child = find_key(p, node, d->b + k.pos, k.size);
            if (child >= 0 && visit(d, p, child, vpos, term_off, depth) < 0)
                return -1;
            if ((pos = skip(d, vpos, depth)) == BAD)
                return -1;
        }
    } else if (c.type == 11) {
        for (uint32_t i = 0; i < c.size; i++) {
            int child = find_index(p, node, i);
            if (child >= 0 && visit(d, p, child, pos, term_off, depth) < 0)
                return -1;
            if ((pos = skip(d, pos, depth)) == BAD)
                return -1;
        }
    }
    return 0; /* a scalar where a map was expected: nothing below it */
}

int lsf_mmdb_walk(const MMDB_s *db, uint32_t offset, const lsf_mmdb_paths *p, uint32_t *term_off)
{
    for (int i = 0; i < p->nterms; i++)
        term_off[i] = LSF_MMDB_ABSENT;
    dec d = {db->data_section, db->data_section_size};
    return walk(&d, p, 0, offset, term_off, 0);
}

bool lsf_mmdb_value(const MMDB_s *db, uint32_t off, MMDB_entry_data_s *v)
{
    dec d = {db->data_section, db->data_section_size};
    ctl c;
    bool ptr;
    memset(v, 0, sizeof(*v));
    if (off == LSF_MMDB_ABSENT || resolve(&d, off, &c, &ptr) < 0)
        return false;
    v->type = (uint32_t)c.type;
    v->offset = off;
    if (c.type == 14) {
        v->boolean = c.size != 0;
        return v->has_data = true;
    }
    if (c.type == 7 || c.type == 11) { /* containers: type only */
        v->data_size = c.size;
        return v->has_data = true;
    }
    if (d.size - c.pos < c.size)
        return false;
    const uint8_t *b = d.b + c.pos;
    uint64_t u = 0;
    switch (c.type) {
    case 2:
        v->utf8_string = (const char *)b;
        v->data_size = c.size;
        break;
    case 3: { /* double */
        if (c.size != 8)
            return false;
        for (int i = 0; i < 8; i++)
            u = u << 8 | b[i];
        memcpy(&v->double_value, &u, 8);
        break;
    }
    case 15: { /* float */
        if (c.size != 4)
            return false;
        uint32_t w = (uint32_t)b[0] << 24 | (uint32_t)b[1] << 16 | (uint32_t)b[2] << 8 | b[3];
        memcpy(&v->float_value, &w, 4);
        break;
    }
    case 5: case 6: case 8: case 9: /* uint16, uint32, int32, uint64 */
        if (c.size > (c.type == 5 ? 2u : c.type == 9 ? 8u : 4u))
            return false;
        for (uint32_t i = 0; i < c.size; i++)
            u = u << 8 | b[i];
        if (c.type == 5)
            v->uint16 = (uint16_t)u;
        else if (c.type == 6)
            v->uint32 = (uint32_t)u;
        else if (c.type == 8)
            v->int32 = (int32_t)(uint32_t)u;
        else
            v->uint64 = u;
        break;
    default: /* bytes, uint128: no field value; report the type only */
        v->data_size = c.size;
        break;
    }
    return v->has_data = true;
}
