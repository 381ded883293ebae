/* geoip.c - the `geoip` transform: looks the IP fields of every event up in
 * MaxMind DB files and writes ECS geo and AS fields beside them
 * (source.ip -> source.geo.country_iso_code, source.as.number, ...).
 *
 * The one design choice to know: each worker keeps its own cache of recent
 * results, keyed by the address and valid for one database generation:
 * 8-way sets (LRU within a set) whose tags sit in two cache lines, so a hit
 * costs a hash, a tag compare, a 16-byte key compare and one copy of the
 * result's strings into the batch arena; only misses walk the database.
 * Behind it a second cache, of decoded results by record (the offsets the
 * search trees lead to), serves a miss whose record was decoded for another
 * address of the same network or city: the tree walk stays, the decoding
 * (most of a miss) goes; and the misses of a batch walk their search trees
 * together, a level of each in turn, so their memory stalls overlap
 * (lsf_geo_locate_many). A batch is handled in three passes (collect the
 * addresses, probe the tags, write the fields) so the cache memory for all
 * its addresses is fetched at once rather than one miss after another. The
 * databases are memory-mapped once and shared read-only; a reload (file
 * changed on disk, or SIGHUP) opens the new files beside the old ones and
 * swaps them in without stopping the workers (enrich/live.c).
 *
 * Addresses in special-purpose ranges (private, loopback, link-local,
 * documentation, CGNAT, multicast, ...) are never looked up: the stage
 * writes <prefix>.ip_scope (e.g. "private") instead. Values that are not
 * addresses are counted ("<stage>.invalid") and left alone; "" and "-" count
 * as absent.
 *
 * Threads: init/reopen/destroy on the main thread; process on any worker,
 * with per-worker state indexed by `worker`.
 */
#include <stdlib.h>
#include <string.h>

#include "core/log.h"
#include "core/metrics.h"
#include "core/pipeline.h"
#include "core/stage.h"
#include "enrich/enrich.h"
#include "enrich/geoip.h"
#include "enrich/live.h"

#define WAYS 8
#define RECORD_KEY_DBS 4 /* the record cache serves up to this many databases */

typedef struct geoip_conf {
    lsf_strlist databases;
    lsf_strlist fields;
    lsf_strlist properties;
    const lsf_node *mapping;
    char *language;
    int64_t cache_size;
    int64_t check_interval_ms;
    bool ip_scope;
} geoip_conf;

/* One cached result: the address, then items and string bytes. */
typedef struct cblob {
    uint8_t key[16];
    uint32_t nitems, slen, cap;
    _Alignas(8) unsigned char data[]; /* nitems lsf_geo_item, then slen bytes */
} cblob;

/* A set of WAYS results in two cache lines: a hash tag per way (0: empty)
 * to compare without touching the results, and a use stamp for LRU. */
typedef struct cset {
    uint32_t tag[WAYS];
    uint32_t stamp[WAYS];
    cblob *blob[WAYS];
} cset;

/* An address of the batch being processed. */
typedef struct pending {
    lsf_ip ip;
    uint64_t h;      /* lsf_ip_hash */
    uint32_t ev, fi; /* event index, IP field index */
    int way;         /* the cache way whose tag matched, -1: none */
    bool taken;      /* an output name of fi is already on the event */
    bool located;    /* off holds the record offsets (lsf_geo_locate_many) */
    uint32_t off[RECORD_KEY_DBS];
} pending;

typedef struct wstate {
    cset *sets;
    uint32_t nsets;   /* power of two, 0: no cache */
    cset *rsets;      /* the record cache: decoded results by record offsets */
    uint32_t nrsets;  /* power of two, 0: none */
    uint32_t clock;
    uint64_t generation;
    lsf_geo_result res;
    lsf_str *val;   /* per IP field: its value in the event being processed */
    char (*text)[32]; /* per IP field: the text of a value that is not a string */
    uint8_t *state; /* per IP field: F_* flags for that event */
    pending *pend;    /* the batch's addresses */
    const lsf_ip **miss_ip; /* pcap: the addresses that missed the cache's tags */
    uint32_t *miss_off;     /* pcap * RECORD_KEY_DBS: their record offsets */
    size_t npend, pcap;
    uint64_t hits, misses, found, invalid, special, record_hits;
} wstate;

enum { F_HAVE = 1, F_TAKEN = 2 }; /* the field is there / an output name is taken */

typedef struct geoip_ctx {
    lsf_live *live; /* first: see lsf_enrich_reopen */
    lsf_geo_map *map;
    size_t nfields;
    lsf_enrich_field *field; /* the IP fields */
    lsf_str *prefix;         /* per field: "<prefix>." ("" when there is none) */
    lsf_str *scope_name;     /* per field: <prefix>.ip_scope */
    lsf_str *out_name;       /* nfields * nout: <prefix>.<output> */
    size_t nout;
    bool shared_prefix; /* two IP fields write under one prefix: no fast path */
    int nworkers;
    wstate **ws;
    char **databases;
    lsf_counter *c_lookups, *c_hits, *c_found, *c_invalid, *c_special, *c_record_hits;
} geoip_ctx;

static const lsf_key geoip_keys[] = {
    {"databases", LSF_K_STRLIST, NULL,
     "MaxMind DB files (.mmdb: City, Country, ASN, or any schema with `mapping`); each address "
     "is looked up in all, and the first value found for a field wins.",
     offsetof(geoip_conf, databases), NULL, 0, 0, true},
    {"fields", LSF_K_STRLIST, NULL,
     "IP fields to look up (default: source.ip, destination.ip, client.ip); results go beside "
     "each, under the field's prefix (source.ip -> source.geo.*, source.as.*).",
     offsetof(geoip_conf, fields), NULL, 0, 0, false},
    {"properties", LSF_K_STRLIST, NULL,
     "Outputs of the built-in mapping to write (default: geo.continent_code, "
     "geo.country_iso_code, geo.country_name, geo.region_name, geo.city_name, geo.location, "
     "geo.timezone, as.number, as.organization.name; also geo.continent_name, "
     "geo.region_iso_code, geo.postal_code).",
     offsetof(geoip_conf, properties), NULL, 0, 0, false},
    {"mapping", LSF_K_NODE, NULL,
     "Output field (relative to the prefix) -> record path, for databases in other schemas, "
     "e.g. {geo.country_iso_code: country_code}; replaces the built-in mapping.",
     offsetof(geoip_conf, mapping), NULL, 0, 0, false},
    {"language", LSF_K_STR, "en", "Language of the names (city, country, ...) in MaxMind databases.",
     offsetof(geoip_conf, language), NULL, 0, 0, false},
    {"cache_size", LSF_K_INT, "65536",
     "Results cached per worker thread (rounded up to a power of two); 0 turns the cache off.",
     offsetof(geoip_conf, cache_size), NULL, 0, 1 << 24, false},
    {"check_interval", LSF_K_DURATION, "2s",
     "How often to check whether a database file changed (then it is reopened); 0: only on "
     "SIGHUP.",
     offsetof(geoip_conf, check_interval_ms), NULL, 0, 86400000, false},
    {"ip_scope", LSF_K_BOOL, "true",
     "Write <prefix>.ip_scope (private, loopback, link_local, documentation, cgnat, multicast, "
     "...) for addresses in special-purpose ranges, which are never looked up.",
     offsetof(geoip_conf, ip_scope), NULL, 0, 0, false},
    LSF_KEYS_END,
};

/* ---- live data: the set of databases ------------------------------------ */

static void *dbs_load(void *arg, uint64_t generation, lsf_errbuf *err)
{
    geoip_ctx *x = arg;
    size_t n = 0;
    while (x->databases[n])
        n++;
    return lsf_geo_dbs_open((const char *const *)x->databases, n, generation, err);
}

static void dbs_free(void *arg, void *v)
{
    (void)arg;
    lsf_geo_dbs_close(v);
}

/* ---- per-worker cache --------------------------------------------------- */

static inline bool key_eq(const uint8_t *a, const uint8_t *b)
{
    uint64_t a0, a1, b0, b1;
    memcpy(&a0, a, 8);
    memcpy(&a1, a + 8, 8);
    memcpy(&b0, b, 8);
    memcpy(&b1, b + 8, 8);
    return ((a0 ^ b0) | (a1 ^ b1)) == 0;
}

static inline uint32_t tag_of(uint64_t h) { return (uint32_t)(h >> 32) | 1; }

static uint32_t tick(wstate *w) { return ++w->clock ? w->clock : (w->clock = 1); }

/* The entry of `key` in the cache of nsets sets, or NULL. */
static cblob *cache_find(wstate *w, cset *sets, uint32_t nsets, const uint8_t *key, uint64_t h)
{
    cset *set = &sets[h & (nsets - 1)];
    uint32_t tag = tag_of(h);
    for (int i = 0; i < WAYS; i++)
        if (set->tag[i] == tag && key_eq(set->blob[i]->key, key)) {
            set->stamp[i] = tick(w);
            return set->blob[i];
        }
    return NULL;
}

/* Stores a result (n items, then slen string bytes) under `key`, in place
 * of the least recently used entry of its set; returns the entry. */
static cblob *cache_store(wstate *w, cset *sets, uint32_t nsets, const uint8_t *key, uint64_t h,
                          const lsf_geo_item *item, uint32_t n, const char *str, uint32_t slen)
{
    cset *set = &sets[h & (nsets - 1)];
    int v = 0;
    for (int i = 0; i < WAYS; i++) {
        if (!set->tag[i]) {
            v = i;
            break;
        }
        /* the oldest by wrapping distance from the clock */
        if ((uint32_t)(w->clock - set->stamp[i]) > (uint32_t)(w->clock - set->stamp[v]))
            v = i;
    }
    size_t items = n * sizeof(lsf_geo_item), need = items + slen;
    cblob *e = set->blob[v];
    if (!e || need > e->cap) {
        e = realloc(e, sizeof(cblob) + need);
        if (!e)
            lsf_die("out of memory (geoip cache)");
        e->cap = (uint32_t)need;
        set->blob[v] = e;
    }
    memcpy(e->key, key, 16);
    e->nitems = n;
    e->slen = slen;
    if (items)
        memcpy(e->data, item, items);
    if (slen)
        memcpy(e->data + items, str, slen);
    set->tag[v] = tag_of(h);
    set->stamp[v] = tick(w);
    return e;
}

static void cache_clear(wstate *w, uint64_t generation)
{
    for (uint32_t i = 0; i < w->nsets; i++)
        memset(w->sets[i].tag, 0, sizeof(w->sets[i].tag));
    for (uint32_t i = 0; i < w->nrsets; i++)
        memset(w->rsets[i].tag, 0, sizeof(w->rsets[i].tag));
    w->generation = generation;
}

static inline const lsf_geo_item *blob_items(const cblob *e)
{
    return (const lsf_geo_item *)(const void *)e->data;
}

static inline const char *blob_str(const cblob *e)
{
    return (const char *)e->data + e->nitems * sizeof(lsf_geo_item);
}

/* The record cache's key: the record offsets, one per database. */
static uint64_t record_key(const uint32_t *off, size_t n, uint8_t key[16])
{
    uint32_t k[4] = {LSF_GEO_NO_RECORD, LSF_GEO_NO_RECORD, LSF_GEO_NO_RECORD, LSF_GEO_NO_RECORD};
    memcpy(k, off, n * sizeof(uint32_t));
    memcpy(key, k, 16);
    uint64_t a = ((uint64_t)k[0] << 32 | k[1]) * 0x9E3779B97F4A7C15ull;
    uint64_t b = ((uint64_t)k[2] << 32 | k[3]) * 0xC2B2AE3D27D4EB4Full;
    uint64_t h = a ^ (b >> 29) ^ (b << 35);
    return h ^ (h >> 31);
}

/* A miss of the address cache: the search trees, then the record cache (a
 * city's networks share one record), then decoding. Fills the address
 * cache; returns its entry. */
static cblob *lookup_miss(const geoip_ctx *x, const lsf_geo_dbs *dbs, wstate *w, const pending *p)
{
    if (!w->nrsets || dbs->n > RECORD_KEY_DBS) {
        lsf_geo_resolve(dbs, x->map, &p->ip, &w->res);
        return cache_store(w, w->sets, w->nsets, p->ip.b, p->h, w->res.item, w->res.n,
                           w->res.str, w->res.slen);
    }
    uint32_t off[RECORD_KEY_DBS];
    const uint32_t *o = p->off;
    uint8_t key[16];
    if (!p->located) {
        lsf_geo_locate(dbs, &p->ip, off);
        o = off;
    }
    size_t any = 0;
    for (size_t i = 0; i < dbs->n; i++)
        any += o[i] != LSF_GEO_NO_RECORD;
    if (!any)
        return cache_store(w, w->sets, w->nsets, p->ip.b, p->h, NULL, 0, NULL, 0);
    uint64_t h = record_key(o, dbs->n, key);
    cblob *r = cache_find(w, w->rsets, w->nrsets, key, h);
    if (r) {
        w->record_hits++;
    } else {
        lsf_geo_decode(dbs, x->map, o, &w->res);
        r = cache_store(w, w->rsets, w->nrsets, key, h, w->res.item, w->res.n, w->res.str,
                        w->res.slen);
    }
    return cache_store(w, w->sets, w->nsets, p->ip.b, p->h, blob_items(r), r->nitems,
                       blob_str(r), r->slen);
}

/* ---- writing fields ----------------------------------------------------- */

/* true when `name` is one of the outputs of IP field fi */
static bool is_output(const geoip_ctx *x, size_t fi, lsf_str name)
{
    const lsf_str *names = &x->out_name[fi * x->nout];
    for (size_t o = 0; o < x->nout; o++)
        if (lsf_str_eq(name, names[o]))
            return true;
    return false;
}

/* One pass over the event's dynamic fields finds the values of the IP fields
 * and notes, per IP field, whether one of its output names is already there
 * (then results are written with lsf_event_set, which replaces; else they
 * are appended without a search per field). Well-known IP fields are read
 * with lsf_event_get_str. */
static void scan_event(const geoip_ctx *x, wstate *w, const lsf_event *ev)
{
    memset(w->state, 0, x->nfields);
    for (uint16_t k = 0; k < ev->nfields; k++) {
        const lsf_field *f = &ev->fields[k];
        for (size_t fi = 0; fi < x->nfields; fi++) {
            const lsf_enrich_field *ip = &x->field[fi];
            lsf_str pre = x->prefix[fi];
            if (lsf_str_eq(f->name, ip->name)) {
                if (f->type == LSF_T_STR) {
                    w->val[fi] = f->v.s;
                    w->state[fi] |= F_HAVE;
                } else if (lsf_event_get_str(ev, ip->name, w->text[fi], &w->val[fi])) {
                    w->state[fi] |= F_HAVE; /* a number: its text, which will not parse */
                }
            } else if (f->name.len > pre.len && (!pre.len || f->name.ptr[pre.len - 1] == '.') &&
                       memcmp(f->name.ptr, pre.ptr, pre.len) == 0 && is_output(x, fi, f->name)) {
                w->state[fi] |= F_TAKEN;
            }
        }
    }
    for (size_t fi = 0; fi < x->nfields; fi++)
        if (x->field[fi].fixed && lsf_event_get_str(ev, x->field[fi].name, w->text[fi], &w->val[fi]))
            w->state[fi] |= F_HAVE;
}

static void apply(const geoip_ctx *x, bool taken, lsf_batch *b, lsf_event *ev, size_t fi,
                  const lsf_geo_item *items, uint32_t n, const char *str, uint32_t slen)
{
    const char *s = slen ? lsf_arena_memdup(&b->arena, str, slen) : NULL;
    const lsf_str *names = &x->out_name[fi * x->nout];
    /* usually none of the names is there yet: append without a search per field */
    bool fast = !taken && !x->shared_prefix && lsf_enrich_reserve(b, ev, (uint16_t)n);
    for (uint32_t i = 0; i < n; i++) {
        const lsf_geo_item *it = &items[i];
        lsf_field *f;
        if (fast) {
            f = &ev->fields[ev->nfields++];
            f->name = names[it->out];
            f->id = 0;
        } else {
            f = lsf_event_set(b, ev, names[it->out], 0);
        }
        f->type = it->type;
        switch (it->type) {
        case LSF_T_STR:
        case LSF_T_JSON: f->v.s = lsf_str_make(s + it->v.off, it->len); break;
        case LSF_T_INT: f->v.i = it->v.i; break;
        case LSF_T_FLOAT: f->v.f = it->v.f; break;
        default: f->v.b = it->v.b; break;
        }
    }
}

static void apply_blob(const geoip_ctx *x, wstate *w, bool taken, lsf_batch *b, lsf_event *ev,
                       size_t fi, const cblob *e)
{
    if (!e->nitems)
        return;
    w->found++;
    apply(x, taken, b, ev, fi, blob_items(e), e->nitems, blob_str(e), e->slen);
}

/* Looks an address up (cache, then databases) and writes its fields. */
static void enrich_one(const geoip_ctx *x, const lsf_geo_dbs *dbs, wstate *w, lsf_batch *b,
                       lsf_event *ev, const pending *p)
{
    if (!w->nsets) {
        w->misses++;
        if (lsf_geo_resolve(dbs, x->map, &p->ip, &w->res)) {
            w->found++;
            apply(x, p->taken, b, ev, p->fi, w->res.item, w->res.n, w->res.str, w->res.slen);
        }
        return;
    }
    cblob *e = cache_find(w, w->sets, w->nsets, p->ip.b, p->h);
    if (e) {
        w->hits++;
    } else {
        w->misses++;
        e = lookup_miss(x, dbs, w, p);
    }
    apply_blob(x, w, p->taken, b, ev, p->fi, e);
}

/* The addresses whose tags missed in the probe pass: their search trees
 * walked together (lsf_geo_locate_many), for the record cache. */
static void locate_misses(const lsf_geo_dbs *dbs, wstate *w)
{
    if (!w->nrsets || dbs->n > RECORD_KEY_DBS)
        return;
    size_t n = 0;
    for (size_t k = 0; k < w->npend; k++) {
        w->pend[k].located = false;
        if (w->pend[k].way < 0)
            w->miss_ip[n++] = &w->pend[k].ip;
    }
    if (!n)
        return;
    lsf_geo_locate_many(dbs, w->miss_ip, n, w->miss_off);
    for (size_t k = 0, j = 0; k < w->npend; k++) {
        pending *p = &w->pend[k];
        if (p->way >= 0)
            continue;
        memcpy(p->off, w->miss_off + j * dbs->n, dbs->n * sizeof(uint32_t));
        p->located = true;
        j++;
    }
}

/* Pass 1: the addresses of the batch, each with its cache set prefetched.
 * Special-purpose addresses get their ip_scope here; invalid ones are
 * counted. */
static void collect(const geoip_ctx *x, const geoip_conf *c, wstate *w, lsf_batch *b)
{
    w->npend = 0;
    for (uint32_t i = 0; i < b->n; i++) {
        lsf_event *ev = &b->events[i];
        if (ev->flags & LSF_EV_DROPPED)
            continue;
        scan_event(x, w, ev);
        for (size_t fi = 0; fi < x->nfields; fi++) {
            lsf_str v = w->val[fi];
            if (!(w->state[fi] & F_HAVE) || v.len == 0 || (v.len == 1 && v.ptr[0] == '-'))
                continue;
            pending *p = &w->pend[w->npend];
            if (lsf_ip_parse(v.ptr, v.len, &p->ip) < 0) {
                w->invalid++;
                continue;
            }
            enum lsf_ip_scope scope = lsf_ip_scope(&p->ip);
            if (scope != LSF_SCOPE_GLOBAL) {
                w->special++;
                if (c->ip_scope)
                    lsf_event_set_str(b, ev, x->scope_name[fi],
                                      lsf_enrich_str(lsf_ip_scope_name(scope)));
                continue;
            }
            p->ev = i;
            p->fi = (uint32_t)fi;
            p->taken = (w->state[fi] & F_TAKEN) != 0;
            p->h = lsf_ip_hash(&p->ip);
            if (w->nsets)
                __builtin_prefetch(&w->sets[p->h & (w->nsets - 1)]);
            w->npend++;
        }
    }
}

static int geoip_process(lsf_stage *st, lsf_batch *b, int worker)
{
    geoip_ctx *x = st->ctx;
    const geoip_conf *c = st->conf;
    wstate *w = x->ws[worker];
    const lsf_geo_dbs *dbs = lsf_live_enter(x->live, worker);
    if (w->generation != dbs->generation)
        cache_clear(w, dbs->generation);
    uint64_t hits = w->hits, misses = w->misses, found = w->found, invalid = w->invalid,
             special = w->special, record_hits = w->record_hits;
    size_t need = (size_t)b->n * x->nfields;
    if (need > w->pcap) {
        free(w->pend);
        free(w->miss_ip);
        free(w->miss_off);
        if (!(w->pend = malloc(need * sizeof(pending))) ||
            !(w->miss_ip = malloc(need * sizeof(*w->miss_ip))) ||
            !(w->miss_off = malloc(need * RECORD_KEY_DBS * sizeof(uint32_t))))
            lsf_die("out of memory");
        w->pcap = need;
    }
    /* Three passes, so the cache's memory is fetched for the whole batch at
     * once instead of one miss after another: collect (prefetch the sets),
     * probe the tags (prefetch the results), then write. */
    collect(x, c, w, b);
    for (size_t k = 0; w->nsets && k < w->npend; k++) {
        pending *p = &w->pend[k];
        cset *set = &w->sets[p->h & (w->nsets - 1)];
        uint32_t tag = tag_of(p->h);
        p->way = -1;
        for (int i = 0; i < WAYS; i++)
            if (set->tag[i] == tag) {
                p->way = i;
                /* a result is ~4-6 lines: key and items, then strings */
                const char *e = (const char *)set->blob[i];
                __builtin_prefetch(e);
                __builtin_prefetch(e + 64);
                __builtin_prefetch(e + 128);
                __builtin_prefetch(e + 192);
                __builtin_prefetch(e + 256);
                break;
            }
    }
    locate_misses(dbs, w);
    for (size_t k = 0; k < w->npend; k++) {
        const pending *p = &w->pend[k];
        lsf_event *ev = &b->events[p->ev];
        if (w->nsets && p->way >= 0) {
            /* still the same result? (a store of this batch may have reused the way) */
            cset *set = &w->sets[p->h & (w->nsets - 1)];
            cblob *e = set->blob[p->way];
            if (set->tag[p->way] == tag_of(p->h) && key_eq(e->key, p->ip.b)) {
                set->stamp[p->way] = tick(w);
                w->hits++;
                apply_blob(x, w, p->taken, b, ev, p->fi, e);
                continue;
            }
        }
        enrich_one(x, dbs, w, b, ev, p);
    }
    lsf_live_exit(x->live, worker);
    if (w->hits + w->misses > hits + misses)
        lsf_counter_add(x->c_lookups, (w->hits + w->misses) - (hits + misses));
    if (w->hits > hits)
        lsf_counter_add(x->c_hits, w->hits - hits);
    if (w->found > found)
        lsf_counter_add(x->c_found, w->found - found);
    if (w->invalid > invalid)
        lsf_counter_add(x->c_invalid, w->invalid - invalid);
    if (w->special > special)
        lsf_counter_add(x->c_special, w->special - special);
    if (w->record_hits > record_hits)
        lsf_counter_add(x->c_record_hits, w->record_hits - record_hits);
    return LSF_OK;
}

/* ---- set-up ------------------------------------------------------------- */

static uint32_t sets_for(int64_t entries)
{
    if (entries <= 0)
        return 0;
    uint32_t sets = 1;
    while ((int64_t)sets * WAYS < entries)
        sets <<= 1;
    return sets;
}

static int geoip_init(lsf_stage *st, lsf_errbuf *err)
{
    geoip_ctx *x = st->ctx;
    geoip_conf *c = st->conf;
    if (c->databases.n == 0)
        return lsf_node_error(err, lsf_enrich_at(st->node, "databases"),
                              "databases: name at least one .mmdb file");
    if (c->mapping) {
        if (c->properties.n)
            return lsf_node_error(err, lsf_enrich_at(st->node, "properties"),
                                  "properties: not with mapping (the mapping names its outputs)");
        x->map = lsf_geo_map_parse(c->mapping, err);
        if (!x->map)
            return -1;
    } else {
        x->map = lsf_geo_map_builtin(c->language,
                                     c->properties.n ? (const char *const *)c->properties.v : NULL,
                                     c->properties.n, err);
        if (!x->map)
            return lsf_enrich_load_error(err, lsf_enrich_at(st->node, "properties"), "");
    }
    x->nout = lsf_geo_map_nout(x->map);
    if (lsf_enrich_ip_fields(st, &c->fields, &x->field, &x->nfields, err) < 0)
        return -1;
    x->prefix = calloc(x->nfields, sizeof(lsf_str));
    x->scope_name = calloc(x->nfields, sizeof(lsf_str));
    x->out_name = calloc(x->nfields * (x->nout ? x->nout : 1), sizeof(lsf_str));
    if (!x->prefix || !x->scope_name || !x->out_name)
        lsf_die("out of memory");
    for (size_t i = 0; i < x->nfields; i++) {
        char *prefix = lsf_enrich_prefix(x->field[i].name.ptr);
        x->prefix[i] = lsf_enrich_str(lsf_enrich_join(prefix, ""));
        x->scope_name[i] = lsf_enrich_str(lsf_enrich_join(prefix, "ip_scope"));
        for (size_t o = 0; o < x->nout; o++)
            x->out_name[i * x->nout + o] =
                lsf_enrich_str(lsf_enrich_join(prefix, lsf_geo_map_out(x->map, o)));
        for (size_t k = 0; k < i; k++)
            x->shared_prefix |= strcmp(x->prefix[k].ptr, x->prefix[i].ptr) == 0;
        free(prefix);
    }
    x->databases = calloc(c->databases.n + 1, sizeof(char *));
    if (!x->databases)
        lsf_die("out of memory");
    for (size_t i = 0; i < c->databases.n; i++)
        x->databases[i] = c->databases.v[i];
    x->nworkers = lsf_pipeline_nworkers(st->pipeline);
    lsf_live_ops ops = {dbs_load, dbs_free, x};
    x->live = lsf_enrich_live_open(st, (const char *const *)x->databases, c->databases.n,
                                   c->check_interval_ms, &ops, "databases", err);
    if (!x->live)
        return -1;
    x->ws = calloc((size_t)x->nworkers, sizeof(wstate *));
    if (!x->ws)
        lsf_die("out of memory");
    uint32_t nsets = sets_for(c->cache_size);
    uint32_t nrsets = nsets ? sets_for(c->cache_size / 4 > WAYS ? c->cache_size / 4 : WAYS) : 0;
    for (int i = 0; i < x->nworkers; i++) {
        x->ws[i] = calloc(1, sizeof(wstate));
        if (!x->ws[i])
            lsf_die("out of memory");
        x->ws[i]->nsets = nsets;
        x->ws[i]->val = calloc(x->nfields, sizeof(lsf_str));
        x->ws[i]->state = calloc(x->nfields, 1);
        x->ws[i]->text = calloc(x->nfields, 32);
        if (!x->ws[i]->val || !x->ws[i]->state || !x->ws[i]->text)
            lsf_die("out of memory");
        if (nsets && !(x->ws[i]->sets = aligned_alloc(64, (size_t)nsets * sizeof(cset))))
            lsf_die("out of memory (geoip cache of %u entries)", nsets * WAYS);
        if (nsets)
            memset(x->ws[i]->sets, 0, (size_t)nsets * sizeof(cset));
        x->ws[i]->nrsets = nrsets;
        if (nrsets && !(x->ws[i]->rsets = aligned_alloc(64, (size_t)nrsets * sizeof(cset))))
            lsf_die("out of memory (geoip record cache of %u entries)", nrsets * WAYS);
        if (nrsets)
            memset(x->ws[i]->rsets, 0, (size_t)nrsets * sizeof(cset));
    }
    x->c_lookups = lsf_counter_new(st->name, "lookups");
    x->c_hits = lsf_counter_new(st->name, "cache_hits");
    x->c_found = lsf_counter_new(st->name, "found");
    x->c_invalid = lsf_counter_new(st->name, "invalid");
    x->c_special = lsf_counter_new(st->name, "special");
    x->c_record_hits = lsf_counter_new(st->name, "record_cache_hits");
    lsf_info("%s: %zu database(s), %zu field(s), cache %u entries per worker", st->name,
             c->databases.n, x->nfields, nsets * WAYS);
    return 0;
}

static void geoip_destroy(lsf_stage *st)
{
    geoip_ctx *x = st->ctx;
    lsf_live_free(x->live);
    for (int i = 0; x->ws && i < x->nworkers; i++) {
        wstate *w = x->ws[i];
        for (uint32_t k = 0; k < w->nsets; k++)
            for (int way = 0; way < WAYS; way++)
                free(w->sets[k].blob[way]);
        for (uint32_t k = 0; k < w->nrsets; k++)
            for (int way = 0; way < WAYS; way++)
                free(w->rsets[k].blob[way]);
        free(w->sets);
        free(w->rsets);
        free(w->val);
        free(w->state);
        free(w->text);
        free(w->pend);
        free(w->miss_ip);
        free(w->miss_off);
        free(w);
    }
    free(x->ws);
    for (size_t i = 0; x->prefix && i < x->nfields; i++) {
        free((char *)x->prefix[i].ptr);
        free((char *)x->scope_name[i].ptr);
        for (size_t o = 0; o < x->nout; o++)
            free((char *)x->out_name[i * x->nout + o].ptr);
    }
    lsf_enrich_fields_free(x->field, x->nfields);
    free(x->prefix);
    free(x->scope_name);
    free(x->out_name);
    free(x->databases);
    lsf_geo_map_free(x->map);
}

const lsf_stage_def lsf_stage_geoip = {
    .name = "geoip",
    .kind = LSF_STAGE_TRANSFORM,
    .help = "Adds GeoIP and AS fields (ECS <prefix>.geo.*, <prefix>.as.*) for IP fields from "
            "MaxMind DB files; reloads them when they change.",
    .keys = geoip_keys,
    .conf_size = sizeof(geoip_conf),
    .ctx_size = sizeof(geoip_ctx),
    .init = geoip_init,
    .process = geoip_process,
    .reopen = lsf_enrich_reopen,
    .destroy = geoip_destroy,
};
