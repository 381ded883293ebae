/* geoip.h - internals of the `geoip` stage shared by its files:
 * geoip_db.c (databases, the mapping from record paths to fields, decoding)
 * and geoip.c (the stage: per-worker caches, writing fields).
 *
 * A lookup produces a result: a list of items (output index, type, value)
 * and the bytes of its strings in one buffer, so a cached result is copied
 * into a batch with a single memcpy.
 * Threads: a map is read-only after init; a database set is read-only and
 * shared by all workers; results are per worker.
 */
#ifndef LSF_ENRICH_GEOIP_H
#define LSF_ENRICH_GEOIP_H

#include <maxminddb.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/config.h"
#include "enrich/ipaddr.h"

#define LSF_GEO_MAX_OUT 64     /* outputs of one mapping */
#define LSF_GEO_MAX_STR 2048   /* string bytes of one result; longer values are skipped */

typedef struct lsf_geo_item {
    uint16_t out;  /* index into the map's outputs */
    uint8_t type;  /* enum lsf_type: STR, INT, FLOAT, BOOL, JSON */
    uint32_t len;  /* STR/JSON: bytes at v.off in the result's strings */
    union {
        uint32_t off;
        int64_t i;
        double f;
        bool b;
    } v;
} lsf_geo_item;

typedef struct lsf_geo_result {
    uint32_t n, slen;
    lsf_geo_item item[LSF_GEO_MAX_OUT];
    char str[LSF_GEO_MAX_STR];
} lsf_geo_result;

/* ---- mapping: record paths -> output fields (relative to the prefix) ---- */

typedef struct lsf_geo_map lsf_geo_map;

/* The built-in mapping: the MaxMind GeoIP2/GeoLite2 City, Country, ASN
 * (and ISP/Enterprise) schemas, and the flat ip-location-db schema
 * (country_code, state1, city, latitude, ...), names in `language`,
 * limited to the outputs in props (NULL: lsf_geo_default_properties).
 * NULL with err set for an unknown property. */
lsf_geo_map *lsf_geo_map_builtin(const char *language, const char *const *props, size_t nprops,
                                 lsf_errbuf *err);
/* The outputs written by default (NULL-terminated): the ECS geo and as
 * fields; geo.continent_name, geo.region_iso_code and geo.postal_code are
 * there on request. */
extern const char *const lsf_geo_default_properties[];
/* A mapping from config: a map of output name -> data path ("country_code",
 * "country.names.en", "subdivisions.0.iso_code") or a list of paths tried in
 * order. NULL with err set (position of the bad entry). */
lsf_geo_map *lsf_geo_map_parse(const lsf_node *mapping, lsf_errbuf *err);
void lsf_geo_map_free(lsf_geo_map *m);
size_t lsf_geo_map_nout(const lsf_geo_map *m);
/* Output `i`'s name relative to the prefix ("geo.city_name"). */
const char *lsf_geo_map_out(const lsf_geo_map *m, size_t i);

/* ---- a set of databases (one version of the live data) ------------------ */

typedef struct lsf_geo_dbs {
    uint64_t generation;
    size_t n;
    uint32_t *v4start; /* per database: the node IPv4 addresses start from */
    MMDB_s db[];
} lsf_geo_dbs;

/* Opens every file (memory-mapped, MMDB_MODE_MMAP). NULL with err set. */
lsf_geo_dbs *lsf_geo_dbs_open(const char *const *paths, size_t n, uint64_t generation,
                              lsf_errbuf *err);
void lsf_geo_dbs_close(lsf_geo_dbs *d);

/* Looks `ip` up in every database in order and fills `r` (the first value
 * found for an output wins). Returns the number of items (0: not found in
 * any database). lsf_geo_locate + lsf_geo_decode. */
uint32_t lsf_geo_resolve(const lsf_geo_dbs *d, const lsf_geo_map *m, const lsf_ip *ip,
                         lsf_geo_result *r);

#define LSF_GEO_NO_RECORD UINT32_MAX
/* The first half of a lookup, the search trees: sets off[i] (d->n entries)
 * to the data-section offset of ip's record in database i, or
 * LSF_GEO_NO_RECORD. Returns the number of databases that have a record.
 * Many addresses share a record (a city's networks), so a caller can cache
 * decoded results by these offsets. */
size_t lsf_geo_locate(const lsf_geo_dbs *d, const lsf_ip *ip, uint32_t *off);
/* lsf_geo_locate for n addresses at once: off[k * d->n + i] for ips[k] in
 * database i. The walks advance a level each in turn, the next node of
 * each prefetched, so their cache misses overlap instead of adding up (a
 * walk is ~30 dependent reads in a file of tens of MB). Same results as
 * lsf_geo_locate. */
void lsf_geo_locate_many(const lsf_geo_dbs *d, const lsf_ip *const *ips, size_t n, uint32_t *off);
/* The second half: decodes the records at off (as set by lsf_geo_locate)
 * into r, as lsf_geo_resolve does. Returns the number of items. */
uint32_t lsf_geo_decode(const lsf_geo_dbs *d, const lsf_geo_map *m, const uint32_t *off,
                        lsf_geo_result *r);

#endif
