/* geoip_db.c - MaxMind DB files for the `geoip` stage: opening a set of
 * databases, the mapping from record paths to output fields, and turning a
 * record into a result (see geoip.h).
 *
 * The one design choice to know: a mapping is a list of entries (output,
 * record path) tried in order, and the first value found for an output
 * wins, across entries and across databases. So one built-in list serves
 * MaxMind's nested schemas (country.iso_code) and flat ones such as
 * ip-location-db's (country_code): a path that does not exist in a record,
 * or leads to a value of another kind (a map where a string was expected),
 * simply yields nothing and the next entry is tried.
 *
 * Threads: open/close on the thread that loads; resolve on any worker
 * (libmaxminddb lookups only read the shared mapping).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <math.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>

#include "core/event.h"
#include "core/log.h"
#include "enrich/enrich.h"
#include "enrich/geoip.h"
#include "enrich/mmdb_walk.h"

#define MAX_TERMS 256

enum { K_VALUE, K_LOCATION, K_REGION_ISO };

typedef struct entry {
    uint16_t out;
    uint8_t kind;
    int16_t term, term2; /* paths in `paths`; term2: K_LOCATION longitude,
                            K_REGION_ISO the subdivision code */
} entry;

struct lsf_geo_map {
    char **out;
    size_t nout;
    entry *e;
    size_t ne;
    lsf_mmdb_paths *paths;
};

/* '*' in a path stands for the configured language. */
static const struct {
    const char *out, *path, *path2;
    int kind;
} builtin[] = {
    {"geo.continent_code", "continent.code", NULL, K_VALUE},
    {"geo.continent_name", "continent.names.*", NULL, K_VALUE},
    {"geo.country_iso_code", "country.iso_code", NULL, K_VALUE},
    {"geo.country_iso_code", "country_code", NULL, K_VALUE},
    {"geo.country_name", "country.names.*", NULL, K_VALUE},
    {"geo.region_iso_code", "country.iso_code", "subdivisions.0.iso_code", K_REGION_ISO},
    {"geo.region_name", "subdivisions.0.names.*", NULL, K_VALUE},
    {"geo.region_name", "state1", NULL, K_VALUE},
    {"geo.city_name", "city.names.*", NULL, K_VALUE},
    {"geo.city_name", "city", NULL, K_VALUE},
    {"geo.postal_code", "postal.code", NULL, K_VALUE},
    {"geo.postal_code", "postcode", NULL, K_VALUE},
    {"geo.location", "location.latitude", "location.longitude", K_LOCATION},
    {"geo.location", "latitude", "longitude", K_LOCATION},
    {"geo.timezone", "location.time_zone", NULL, K_VALUE},
    {"geo.timezone", "timezone", NULL, K_VALUE},
    {"as.number", "autonomous_system_number", NULL, K_VALUE},
    {"as.organization.name", "autonomous_system_organization", NULL, K_VALUE},
};

static char *xstrdup(const char *s)
{
    char *d = strdup(s);
    if (!d)
        lsf_die("out of memory");
    return d;
}

/* Splits "a.b.*" at dots into a NULL-terminated array, '*' -> language. */
static char **split_path(const char *path, const char *language)
{
    size_t n = 1;
    for (const char *p = path; *p; p++)
        n += *p == '.';
    char **v = calloc(n + 1, sizeof(char *));
    if (!v)
        lsf_die("out of memory");
    const char *p = path;
    for (size_t i = 0; i < n; i++) {
        const char *dot = strchr(p, '.');
        size_t len = dot ? (size_t)(dot - p) : strlen(p);
        if (len == 1 && *p == '*' && language) {
            v[i] = xstrdup(language);
        } else {
            v[i] = malloc(len + 1);
            if (!v[i])
                lsf_die("out of memory");
            memcpy(v[i], p, len);
            v[i][len] = 0;
        }
        p = dot ? dot + 1 : p + len;
    }
    return v;
}

static void free_path(char **v)
{
    for (size_t i = 0; v && v[i]; i++)
        free(v[i]);
    free(v);
}

/* Index of output `name`, added if new; -1 when the map is full. */
static int out_index(lsf_geo_map *m, const char *name)
{
    for (size_t i = 0; i < m->nout; i++)
        if (strcmp(m->out[i], name) == 0)
            return (int)i;
    if (m->nout == LSF_GEO_MAX_OUT)
        return -1;
    char **no = realloc(m->out, (m->nout + 1) * sizeof(char *));
    if (!no)
        lsf_die("out of memory");
    m->out = no;
    m->out[m->nout] = xstrdup(name);
    return (int)m->nout++;
}

static int add_path(lsf_geo_map *m, const char *path, const char *language)
{
    if (!path)
        return -1;
    char **v = split_path(path, language);
    int t = lsf_mmdb_paths_add(m->paths, (const char *const *)v);
    free_path(v);
    return t;
}

/* Adds an entry; -1 when the mapping has too many paths. */
static int add_entry(lsf_geo_map *m, int out, int kind, const char *path, const char *path2,
                     const char *language)
{
    if (lsf_mmdb_paths_count(m->paths) + 2 > MAX_TERMS)
        return -1;
    entry *ne = realloc(m->e, (m->ne + 1) * sizeof(entry));
    if (!ne)
        lsf_die("out of memory");
    m->e = ne;
    m->e[m->ne++] = (entry){(uint16_t)out, (uint8_t)kind, (int16_t)add_path(m, path, language),
                            (int16_t)add_path(m, path2, language)};
    return 0;
}

static lsf_geo_map *map_new(void)
{
    lsf_geo_map *m = calloc(1, sizeof(*m));
    if (!m)
        lsf_die("out of memory");
    m->paths = lsf_mmdb_paths_new();
    return m;
}

const char *const lsf_geo_default_properties[] = {
    "geo.continent_code", "geo.country_iso_code", "geo.country_name", "geo.region_name",
    "geo.city_name",      "geo.location",         "geo.timezone",     "as.number",
    "as.organization.name", NULL};

static bool listed(const char *const *v, size_t n, const char *name)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(v[i], name) == 0)
            return true;
    return false;
}

lsf_geo_map *lsf_geo_map_builtin(const char *language, const char *const *props, size_t nprops,
                                 lsf_errbuf *err)
{
    size_t nb = sizeof(builtin) / sizeof(builtin[0]);
    if (!props) {
        props = lsf_geo_default_properties;
        for (nprops = 0; props[nprops]; nprops++)
            ;
    }
    for (size_t i = 0; i < nprops; i++) {
        bool known = false;
        for (size_t k = 0; k < nb && !known; k++)
            known = strcmp(builtin[k].out, props[i]) == 0;
        if (!known) {
            char all[512] = "";
            for (size_t k = 0; k < nb; k++)
                if (k == 0 || strcmp(builtin[k].out, builtin[k - 1].out) != 0)
                    snprintf(all + strlen(all), sizeof(all) - strlen(all), "%s%s", k ? ", " : "",
                             builtin[k].out);
            snprintf(err->msg, sizeof(err->msg), "properties: '%s' is not a built-in output "
                     "(known: %s)", props[i], all);
            return NULL;
        }
    }
    lsf_geo_map *m = map_new();
    for (size_t i = 0; i < nb; i++)
        if (listed(props, nprops, builtin[i].out))
            add_entry(m, out_index(m, builtin[i].out), builtin[i].kind, builtin[i].path,
                      builtin[i].path2, language);
    return m;
}

static bool path_ok(const char *p)
{
    return lsf_enrich_name_ok(p);
}

lsf_geo_map *lsf_geo_map_parse(const lsf_node *mapping, lsf_errbuf *err)
{
    if (mapping->kind != LSF_NODE_MAP || mapping->nchild == 0) {
        lsf_node_error(err, mapping, "mapping: expected a map of output field -> record path, "
                                     "e.g. {geo.country_iso_code: country_code}");
        return NULL;
    }
    lsf_geo_map *m = map_new();
    for (const lsf_node *c = mapping->child; c; c = c->next) {
        lsf_node at = *c;
        at.line = c->key_line;
        at.col = c->key_col;
        if (!lsf_enrich_name_ok(c->key)) {
            lsf_node_error(err, &at, "mapping: '%s' is not a field name", c->key);
            goto fail;
        }
        int out = out_index(m, c->key);
        if (out < 0) {
            lsf_node_error(err, &at, "mapping: more than %d output fields", LSF_GEO_MAX_OUT);
            goto fail;
        }
        const lsf_node *single = c->kind == LSF_NODE_SCALAR ? c : NULL;
        if (!single && (c->kind != LSF_NODE_SEQ || c->nchild == 0)) {
            lsf_node_error(err, c, "mapping: %s: expected a record path such as country.iso_code "
                                   "or a list of them", c->key);
            goto fail;
        }
        for (const lsf_node *p = single ? single : c->child; p; p = single ? NULL : p->next) {
            if (p->kind != LSF_NODE_SCALAR || !path_ok(p->str)) {
                lsf_node_error(err, p, "mapping: %s: expected a record path such as "
                                       "country.names.en", c->key);
                goto fail;
            }
            if (add_entry(m, out, K_VALUE, p->str, NULL, NULL) < 0) {
                lsf_node_error(err, p, "mapping: more than %d record paths", MAX_TERMS - 2);
                goto fail;
            }
        }
    }
    return m;
fail:
    lsf_geo_map_free(m);
    return NULL;
}

void lsf_geo_map_free(lsf_geo_map *m)
{
    if (!m)
        return;
    for (size_t i = 0; i < m->nout; i++)
        free(m->out[i]);
    lsf_mmdb_paths_free(m->paths);
    free(m->out);
    free(m->e);
    free(m);
}

size_t lsf_geo_map_nout(const lsf_geo_map *m) { return m->nout; }
const char *lsf_geo_map_out(const lsf_geo_map *m, size_t i) { return m->out[i]; }

/* ---- databases ---------------------------------------------------------- */

/* ---- search trees, walked by hand for lsf_geo_locate_many -------------- */

/* The two records of node `node` (24-, 28- or 32-bit records, big-endian;
 * a 28-bit node keeps the top nibbles of both in its middle byte). */
static inline uint32_t tree_record(const MMDB_s *db, uint32_t node, unsigned bit)
{
    const uint8_t *p = db->file_content;
    switch (db->metadata.record_size) {
    case 24:
        p += (size_t)node * 6 + (bit ? 3 : 0);
        return (uint32_t)p[0] << 16 | (uint32_t)p[1] << 8 | p[2];
    case 28:
        p += (size_t)node * 7;
        if (bit)
            return ((uint32_t)p[3] & 0x0F) << 24 | (uint32_t)p[4] << 16 |
                   (uint32_t)p[5] << 8 | p[6];
        return ((uint32_t)p[3] & 0xF0) << 20 | (uint32_t)p[0] << 16 | (uint32_t)p[1] << 8 | p[2];
    default: /* 32 */
        p += (size_t)node * 8 + (bit ? 4 : 0);
        return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
    }
}

static inline const void *tree_node_ptr(const MMDB_s *db, uint32_t node)
{
    return db->file_content + (size_t)node * (db->metadata.record_size / 4);
}

/* Where IPv4 addresses start in an IPv6 tree: 96 zero bits down (or the
 * record those bits end at); 0 in an IPv4 tree. */
static uint32_t v4_start(const MMDB_s *db)
{
    uint32_t node = 0;
    if (db->metadata.ip_version != 6)
        return 0;
    for (int i = 0; i < 96 && node < db->metadata.node_count; i++)
        node = tree_record(db, node, 0);
    return node;
}

/* The data-section offset a walk ended at, or LSF_GEO_NO_RECORD. */
static inline uint32_t tree_result(const MMDB_s *db, uint32_t node)
{
    uint32_t nc = db->metadata.node_count;
    if (node <= nc) /* nc: "no data"; below: a walk that ran out of bits (corrupt) */
        return LSF_GEO_NO_RECORD;
    /* as libmaxminddb: past the data section is a corrupt tree; the data
     * section starts 16 bytes after the tree */
    if ((uint64_t)node >= (uint64_t)nc + db->data_section_size || node - nc < 16)
        return LSF_GEO_NO_RECORD;
    return node - nc - 16;
}

#define WALK_BATCH 32 /* walks in flight at once */

void lsf_geo_locate_many(const lsf_geo_dbs *d, const lsf_ip *const *ips, size_t n, uint32_t *off)
{
    uint32_t node[WALK_BATCH];
    uint16_t done[WALK_BATCH], bits[WALK_BATCH];
    const uint8_t *addr[WALK_BATCH];
    for (size_t i = 0; i < d->n; i++) {
        const MMDB_s *db = &d->db[i];
        uint32_t nc = db->metadata.node_count;
        for (size_t k0 = 0; k0 < n; k0 += WALK_BATCH) {
            size_t m = n - k0 < WALK_BATCH ? n - k0 : WALK_BATCH, active = 0;
            for (size_t j = 0; j < m; j++) {
                const lsf_ip *ip = ips[k0 + j];
                done[j] = 0;
                if (ip->v4) {
                    node[j] = d->v4start[i];
                    addr[j] = ip->b + 12;
                    bits[j] = 32;
                } else if (db->metadata.ip_version == 6) {
                    node[j] = 0;
                    addr[j] = ip->b;
                    bits[j] = 128;
                } else { /* IPv6 in an IPv4 file */
                    node[j] = nc;
                    bits[j] = 0;
                }
                if (node[j] < nc) {
                    __builtin_prefetch(tree_node_ptr(db, node[j]));
                    active++;
                }
            }
            for (unsigned depth = 0; active; depth++) {
                for (size_t j = 0; j < m; j++) {
                    if (node[j] >= nc || done[j] == bits[j])
                        continue;
                    unsigned b = (addr[j][depth >> 3] >> (7 - (depth & 7))) & 1;
                    node[j] = tree_record(db, node[j], b);
                    done[j]++;
                    if (node[j] < nc && done[j] < bits[j])
                        __builtin_prefetch(tree_node_ptr(db, node[j]));
                    else
                        active--;
                }
            }
            for (size_t j = 0; j < m; j++)
                off[(k0 + j) * d->n + i] = tree_result(db, node[j]);
        }
    }
}

lsf_geo_dbs *lsf_geo_dbs_open(const char *const *paths, size_t n, uint64_t generation,
                              lsf_errbuf *err)
{
    lsf_geo_dbs *d = calloc(1, sizeof(*d) + n * sizeof(MMDB_s));
    if (!d || !(d->v4start = calloc(n ? n : 1, sizeof(uint32_t))))
        lsf_die("out of memory");
    d->generation = generation;
    for (size_t i = 0; i < n; i++) {
        errno = 0;
        int rc = MMDB_open(paths[i], MMDB_MODE_MMAP, &d->db[i]);
        if (rc != MMDB_SUCCESS) {
            int e = errno;
            snprintf(err->msg, sizeof(err->msg), "%s: cannot open the MaxMind DB: %s%s%s",
                     paths[i], MMDB_strerror(rc), rc == MMDB_IO_ERROR && e ? ": " : "",
                     rc == MMDB_IO_ERROR && e ? strerror(e) : "");
            lsf_geo_dbs_close(d);
            return NULL;
        }
        d->n = i + 1;
#ifdef MADV_POPULATE_READ
        /* Map every page now, on the loading thread, so workers do not take a
         * page fault on each part of the tree they reach first. The pages are
         * the page cache's, shared; nothing is copied. Best effort. */
        uintptr_t start = (uintptr_t)d->db[i].file_content & ~(uintptr_t)4095;
        size_t len = (size_t)d->db[i].file_size + ((uintptr_t)d->db[i].file_content - start);
        (void)madvise((void *)start, len, MADV_POPULATE_READ);
#endif
        const MMDB_metadata_s *md = &d->db[i].metadata;
        d->v4start[i] = v4_start(&d->db[i]);
        time_t built = (time_t)md->build_epoch;
        struct tm tm;
        char day[16] = "?";
        if (gmtime_r(&built, &tm))
            strftime(day, sizeof(day), "%Y-%m-%d", &tm);
        lsf_debug("geoip: %s: %s, IPv%u tree, %u nodes, built %s", paths[i],
                  md->database_type ? md->database_type : "?", md->ip_version, md->node_count,
                  day);
    }
    return d;
}

void lsf_geo_dbs_close(lsf_geo_dbs *d)
{
    if (!d)
        return;
    for (size_t i = 0; i < d->n; i++)
        MMDB_close(&d->db[i]);
    free(d->v4start);
    free(d);
}

/* ---- decoding ----------------------------------------------------------- */

/* Shortest decimal text of a coordinate that reads back as the same value:
 * as a 32-bit float when `single` (so 37.751 stays 37.751, not
 * 37.750999450683594), else as a double. Coordinates carry few decimals,
 * so integer formatting of v * 10^k for the smallest exact k is tried
 * first (correctly rounded division makes the check exact); snprintf is
 * the fallback. Returns the length, 0 for NaN/Inf. */
static size_t fmt_coord(double v, bool single, char *buf, size_t cap)
{
    if (!isfinite(v) || !buf || cap < 32)
        return 0;
    double scale = 1;
    for (int k = 0; k <= 7; k++, scale *= 10) {
        double r = nearbyint(v * scale);
        if (fabs(r) > 9e15)
            break;
        double back = r / scale;
        if (single ? (float)back != (float)v : back != v)
            continue;
        uint64_t a = (uint64_t)fabs(r), p10 = (uint64_t)scale;
        char tmp[48];
        int n = 0;
        for (int d = 0; d < k; d++, a /= 10) /* fraction, last digit first */
            tmp[n++] = (char)('0' + a % 10);
        if (k)
            tmp[n++] = '.';
        a = (uint64_t)fabs(r) / p10;
        do
            tmp[n++] = (char)('0' + a % 10);
        while ((a /= 10));
        size_t len = 0;
        if (r < 0)
            buf[len++] = '-';
        while (n && len < cap)
            buf[len++] = tmp[--n];
        return len;
    }
    for (int prec = single ? 6 : 15; prec <= (single ? 9 : 17); prec++) {
        snprintf(buf, cap, "%.*g", prec, v);
        double back = strtod(buf, NULL);
        if (single ? (float)back == (float)v : back == v)
            break;
    }
    return strlen(buf);
}

/* A 32-bit float as the double its shortest decimal text reads as. */
static double widen(float f)
{
    char buf[40];
    size_t n = fmt_coord(f, true, buf, sizeof(buf) - 1);
    buf[n] = 0;
    return strtod(buf, NULL);
}

static bool value(const MMDB_s *db, const uint32_t *toff, int term, MMDB_entry_data_s *v)
{
    return term >= 0 && lsf_mmdb_value(db, toff[term], v);
}

static size_t coord(const MMDB_s *db, const uint32_t *toff, int term, char *buf, size_t cap)
{
    MMDB_entry_data_s v;
    if (!value(db, toff, term, &v))
        return 0;
    if (v.type == MMDB_DATA_TYPE_DOUBLE)
        return fmt_coord(v.double_value, false, buf, cap);
    if (v.type == MMDB_DATA_TYPE_FLOAT)
        return fmt_coord(v.float_value, true, buf, cap);
    return 0;
}

static bool put_str(lsf_geo_result *r, int out, uint8_t type, const char *s, size_t len)
{
    if (len == 0 || len > LSF_GEO_MAX_STR - r->slen || r->n == LSF_GEO_MAX_OUT)
        return false;
    memcpy(r->str + r->slen, s, len);
    lsf_geo_item *it = &r->item[r->n++];
    it->out = (uint16_t)out;
    it->type = type;
    it->len = (uint32_t)len;
    it->v.off = r->slen;
    r->slen += (uint32_t)len;
    return true;
}

static bool put_value(lsf_geo_result *r, int out, const MMDB_entry_data_s *d)
{
    lsf_geo_item it = {.out = (uint16_t)out};
    switch (d->type) {
    case MMDB_DATA_TYPE_UTF8_STRING:
        return put_str(r, out, LSF_T_STR, d->utf8_string, d->data_size);
    case MMDB_DATA_TYPE_UINT16: it.type = LSF_T_INT; it.v.i = d->uint16; break;
    case MMDB_DATA_TYPE_UINT32: it.type = LSF_T_INT; it.v.i = d->uint32; break;
    case MMDB_DATA_TYPE_INT32: it.type = LSF_T_INT; it.v.i = d->int32; break;
    case MMDB_DATA_TYPE_UINT64:
        if (d->uint64 > INT64_MAX)
            return false;
        it.type = LSF_T_INT;
        it.v.i = (int64_t)d->uint64;
        break;
    case MMDB_DATA_TYPE_DOUBLE:
        if (!isfinite(d->double_value))
            return false;
        it.type = LSF_T_FLOAT;
        it.v.f = d->double_value;
        break;
    case MMDB_DATA_TYPE_FLOAT:
        if (!isfinite(d->float_value))
            return false;
        it.type = LSF_T_FLOAT;
        it.v.f = widen(d->float_value);
        break;
    case MMDB_DATA_TYPE_BOOLEAN: it.type = LSF_T_BOOL; it.v.b = d->boolean; break;
    default: return false; /* maps, arrays, bytes, uint128: not a field value */
    }
    if (r->n == LSF_GEO_MAX_OUT)
        return false;
    r->item[r->n++] = it;
    return true;
}

static bool decode(const MMDB_s *db, const uint32_t *toff, const entry *e, lsf_geo_result *r)
{
    MMDB_entry_data_s d, d2;
    switch (e->kind) {
    case K_VALUE:
        return value(db, toff, e->term, &d) && put_value(r, e->out, &d);
    case K_LOCATION: { /* ECS geo_point: {"lat":..,"lon":..}, formatted once per lookup */
        char json[96] = "{\"lat\":";
        size_t n = 7, k;
        if (!(k = coord(db, toff, e->term, json + n, 32)))
            return false;
        n += k;
        memcpy(json + n, ",\"lon\":", 7);
        n += 7;
        if (!(k = coord(db, toff, e->term2, json + n, 32)))
            return false;
        n += k;
        json[n++] = '}';
        return put_str(r, e->out, LSF_T_JSON, json, n);
    }
    case K_REGION_ISO: { /* ECS: "GB-ENG" from country GB and subdivision ENG */
        char buf[64];
        if (!value(db, toff, e->term, &d) || !value(db, toff, e->term2, &d2) ||
            d.type != MMDB_DATA_TYPE_UTF8_STRING || d2.type != MMDB_DATA_TYPE_UTF8_STRING ||
            !d.data_size || !d2.data_size || d.data_size + d2.data_size + 1 > sizeof(buf))
            return false;
        memcpy(buf, d.utf8_string, d.data_size);
        buf[d.data_size] = '-';
        memcpy(buf + d.data_size + 1, d2.utf8_string, d2.data_size);
        return put_str(r, e->out, LSF_T_STR, buf, d.data_size + 1 + d2.data_size);
    }
    }
    return false;
}

size_t lsf_geo_locate(const lsf_geo_dbs *d, const lsf_ip *ip, uint32_t *off)
{
    struct sockaddr_in sin = {.sin_family = AF_INET};
    struct sockaddr_in6 sin6 = {.sin6_family = AF_INET6};
    const struct sockaddr *sa;
    if (ip->v4) {
        memcpy(&sin.sin_addr, ip->b + 12, 4);
        sa = (const struct sockaddr *)&sin;
    } else {
        memcpy(&sin6.sin6_addr, ip->b, 16);
        sa = (const struct sockaddr *)&sin6;
    }
    size_t found = 0;
    for (size_t i = 0; i < d->n; i++) {
        int mmdb_err = 0;
        MMDB_lookup_result_s res = MMDB_lookup_sockaddr(&d->db[i], sa, &mmdb_err);
        /* not found, or e.g. IPv6 in an IPv4-only file */
        off[i] = LSF_GEO_NO_RECORD;
        if (mmdb_err == MMDB_SUCCESS && res.found_entry && res.entry.offset != LSF_GEO_NO_RECORD) {
            off[i] = res.entry.offset;
            found++;
        }
    }
    return found;
}

uint32_t lsf_geo_decode(const lsf_geo_dbs *d, const lsf_geo_map *m, const uint32_t *off,
                        lsf_geo_result *r)
{
    r->n = r->slen = 0;
    uint64_t have = 0; /* outputs already filled */
    uint32_t toff[MAX_TERMS];
    for (size_t i = 0; i < d->n; i++) {
        if (off[i] == LSF_GEO_NO_RECORD)
            continue;
        /* a corrupt record still yields the values found before the damage */
        lsf_mmdb_walk(&d->db[i], off[i], m->paths, toff);
        for (size_t k = 0; k < m->ne; k++) {
            const entry *e = &m->e[k];
            if (have & (1ull << e->out))
                continue;
            if (decode(&d->db[i], toff, e, r))
                have |= 1ull << e->out;
        }
    }
    return r->n;
}

uint32_t lsf_geo_resolve(const lsf_geo_dbs *d, const lsf_geo_map *m, const lsf_ip *ip,
                         lsf_geo_result *r)
{
    uint32_t stack_off[8];
    uint32_t *off = d->n <= 8 ? stack_off : malloc(d->n * sizeof(uint32_t));
    if (!off)
        lsf_die("out of memory");
    if (lsf_geo_locate(d, ip, off))
        lsf_geo_decode(d, m, off, r);
    else
        r->n = r->slen = 0;
    if (off != stack_off)
        free(off);
    return r->n;
}
