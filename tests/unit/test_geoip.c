/* test_geoip.c - unit tests of the `geoip` transform and what it stands on:
 * address parsing and special-purpose ranges (enrich/ipaddr.c), the live
 * data swap (enrich/live.c), and lookups in MaxMind's test databases and
 * in databases of other schemas (tests/fixtures/geoip, see its README).
 *
 * Covers: every accepted address form and many rejected ones; the edges
 * of each special range; City/Country/ASN fields with exact values; the
 * flat ip-location-db schema in IPv4-only and IPv6 trees; custom mappings
 * with every value type; invalid, special and absent values counted; the
 * cache (hits, eviction, off) giving the same results; strings surviving a
 * database swap; and swaps while worker threads run (run under ASan by
 * `make asan`: a use-after-free of a retired database fails there).
 * Threads: the swap tests run worker threads against the main thread.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "enrich/geoip.h"
#include "enrich/ipaddr.h"
#include "enrich/live.h"
#include "enrich_test.h"

#define FX "fixtures/geoip/"

/* ---- addresses ------------------------------------------------------------ */

static void test_ip_parse(void **state)
{
    (void)state;
    static const struct {
        const char *in, *norm; /* norm NULL: must be rejected */
        bool v4;
    } cases[] = {
        {"192.0.2.1", "192.0.2.1", true},
        {"0.0.0.0", "0.0.0.0", true},
        {"255.255.255.255", "255.255.255.255", true},
        {"192.0.2.1:443", "192.0.2.1", true},
        {"2001:db8::1", "2001:db8::1", false},
        {"2001:DB8:0:0:0:0:0:1", "2001:db8::1", false},
        {"[2001:db8::1]", "2001:db8::1", false},
        {"[2001:db8::1]:8080", "2001:db8::1", false},
        {"fe80::1%eth0", "fe80::1", false},
        {"::ffff:192.0.2.7", "192.0.2.7", true},
        {"::1", "::1", false},
        {"::", "::", false},
        {"", NULL, false},
        {"1.2.3", NULL, false},
        {"1.2.3.4.5", NULL, false},
        {"256.1.1.1", NULL, false},
        {"01.2.3.4", NULL, false},
        {"1.2.3.4 ", NULL, false},
        {" 1.2.3.4", NULL, false},
        {"1.2.3.4:", NULL, false},
        {"1.2.3.4:x", NULL, false},
        {"1.2.3.4:123456", NULL, false},
        {"[2001:db8::1", NULL, false},
        {"[2001:db8::1]x", NULL, false},
        {"2001:db8:::1", NULL, false},
        {"fe80::1%", NULL, false},
        {"example.com", NULL, false},
        {"-", NULL, false},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        lsf_ip ip;
        int rc = lsf_ip_parse(cases[i].in, strlen(cases[i].in), &ip);
        if (!cases[i].norm) {
            if (rc == 0)
                fail_msg("'%s' was accepted", cases[i].in);
            continue;
        }
        if (rc < 0)
            fail_msg("'%s' was rejected", cases[i].in);
        char buf[64];
        lsf_ip_format(&ip, buf);
        if (strcmp(buf, cases[i].norm) != 0 || ip.v4 != cases[i].v4)
            fail_msg("'%s' -> '%s' (v4 %d), want '%s' (v4 %d)", cases[i].in, buf, ip.v4,
                     cases[i].norm, cases[i].v4);
    }
}

static void test_ip_scope(void **state)
{
    (void)state;
    static const struct {
        const char *ip, *scope;
    } cases[] = {
        {"8.8.8.8", "global"},          {"0.0.0.0", "unspecified"},
        {"0.255.255.255", "unspecified"}, {"1.0.0.0", "global"},
        {"9.255.255.255", "global"},     {"10.0.0.0", "private"},
        {"10.255.255.255", "private"},   {"11.0.0.0", "global"},
        {"100.63.255.255", "global"},    {"100.64.0.0", "cgnat"},
        {"100.127.255.255", "cgnat"},    {"100.128.0.0", "global"},
        {"127.0.0.1", "loopback"},       {"169.254.10.1", "link_local"},
        {"169.255.0.1", "global"},       {"172.15.255.255", "global"},
        {"172.16.0.0", "private"},       {"172.31.255.255", "private"},
        {"172.32.0.0", "global"},        {"192.0.0.8", "reserved"},
        {"192.0.2.200", "documentation"}, {"192.0.3.1", "global"},
        {"192.167.255.255", "global"},   {"192.168.1.1", "private"},
        {"198.17.255.255", "global"},    {"198.18.0.1", "benchmarking"},
        {"198.19.255.255", "benchmarking"}, {"198.20.0.0", "global"},
        {"198.51.100.7", "documentation"}, {"203.0.113.9", "documentation"},
        {"203.0.114.1", "global"},       {"223.255.255.255", "global"},
        {"224.0.0.1", "multicast"},      {"239.255.255.255", "multicast"},
        {"240.0.0.1", "reserved"},       {"255.255.255.254", "reserved"},
        {"255.255.255.255", "broadcast"}, {"::", "unspecified"},
        {"::1", "loopback"},             {"::2", "global"},
        {"::ffff:10.1.2.3", "private"},  {"100::1", "reserved"},
        {"2001:2::1", "benchmarking"},   {"2001:db8::1", "documentation"},
        {"2001:db9::1", "global"},       {"2001:218::1", "global"},
        {"3fff:0fff::1", "documentation"}, {"3fff:1000::1", "global"},
        {"fc00::1", "private"},          {"fdff:ffff::1", "private"},
        {"fe00::1", "global"},           {"fe80::1", "link_local"},
        {"febf::1", "link_local"},       {"fec0::1", "global"},
        {"ff02::1", "multicast"},        {"2a00:1450::1", "global"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        lsf_ip ip;
        if (lsf_ip_parse(cases[i].ip, strlen(cases[i].ip), &ip) < 0)
            fail_msg("'%s' was rejected", cases[i].ip);
        const char *got = lsf_ip_scope_name(lsf_ip_scope(&ip));
        if (strcmp(got, cases[i].scope) != 0)
            fail_msg("%s: scope %s, want %s", cases[i].ip, got, cases[i].scope);
    }
}

/* ---- lookups ---------------------------------------------------------------- */

static void test_city_asn(void **state)
{
    (void)state;
    tstage t;
    ts_open_ok(&t, 1,
               "  - type: geoip\n"
               "    databases: [" FX "GeoIP2-City-Test.mmdb, " FX "GeoLite2-ASN-Test.mmdb]\n");
    lsf_batch *b = lsf_batch_new(16);
    lsf_event *e0 = ev_with(b, "source.ip", "81.2.69.160", "destination.ip", "1.128.0.0", NULL);
    lsf_event *e1 = ev_with(b, "client.ip", "89.160.20.112", NULL);
    lsf_event *e2 = ev_with(b, "source.ip", "[2001:218::1]:443", "destination.ip", "12.81.96.1",
                            NULL);
    lsf_event *e3 = ev_with(b, "source.ip", "8.8.8.8", NULL);
    assert_int_equal(ts_run(&t, b, 0), LSF_OK);

    assert_field(e0, "source.geo.continent_code", "EU");
    assert_no_field(e0, "source.geo.continent_name"); /* not a default property */
    assert_field(e0, "source.geo.country_iso_code", "GB");
    assert_field(e0, "source.geo.country_name", "United Kingdom");
    assert_no_field(e0, "source.geo.region_iso_code");
    assert_field(e0, "source.geo.region_name", "England");
    assert_field(e0, "source.geo.city_name", "London");
    assert_field(e0, "source.geo.location", "{\"lat\":51.5142,\"lon\":-0.0931}");
    assert_int_equal(ftype(e0, "source.geo.location"), LSF_T_JSON);
    assert_field(e0, "source.geo.timezone", "Europe/London");
    assert_no_field(e0, "source.as.number");
    assert_field(e0, "destination.as.number", "1221");
    assert_int_equal(ftype(e0, "destination.as.number"), LSF_T_INT);
    assert_field(e0, "destination.as.organization.name", "Telstra Pty Ltd");
    assert_no_field(e0, "destination.geo.country_iso_code");

    assert_field(e1, "client.geo.city_name", "Linköping");
    assert_field(e1, "client.as.number", "29518");
    assert_field(e1, "client.as.organization.name", "Bredband2 AB");

    assert_field(e2, "source.geo.country_iso_code", "JP");
    assert_no_field(e2, "source.geo.city_name");
    assert_field(e2, "destination.as.number", "7018");
    assert_no_field(e2, "destination.as.organization.name");

    assert_int_equal(e3->nfields, 1); /* not in any database: nothing added */
    assert_int_equal(ts_counter(&t, "lookups"), 6);
    assert_int_equal(ts_counter(&t, "found"), 5);
    lsf_batch_free(b);
    ts_close(&t);
}

static int count_named(const lsf_event *ev, const char *name)
{
    int n = 0;
    for (uint16_t i = 0; i < ev->nfields; i++)
        n += lsf_str_eq_cstr(ev->fields[i].name, name);
    return n;
}

/* Results replace fields of the same names (never duplicate them), also
 * when two IP fields share a prefix; a well-known field can hold the IP. */
static void test_replace_and_shared_prefix(void **state)
{
    (void)state;
    tstage t;
    ts_open_ok(&t, 1,
               "  - type: geoip\n"
               "    databases: [" FX "GeoIP2-City-Test.mmdb]\n"
               "    fields: [source.ip, source.address, log.source.address]\n");
    lsf_batch *b = lsf_batch_new(4);
    lsf_event *e0 = ev_with(b, "source.ip", "81.2.69.160", "source.geo.city_name", "stale",
                            "source.port", "22", NULL);
    lsf_event *e1 = ev_with(b, "source.ip", "81.2.69.160", "source.address", "89.160.20.112", NULL);
    lsf_event *e2 = lsf_batch_push(b);
    e2->source_addr = LSF_STR_LIT("89.160.20.112:514");
    ts_run(&t, b, 0);
    assert_field(e0, "source.geo.city_name", "London");
    assert_int_equal(count_named(e0, "source.geo.city_name"), 1);
    assert_field(e0, "source.port", "22");
    /* both write source.geo.*: the later field's values win, once each */
    assert_field(e1, "source.geo.city_name", "Linköping");
    assert_int_equal(count_named(e1, "source.geo.city_name"), 1);
    assert_int_equal(count_named(e1, "source.geo.country_iso_code"), 1);
    assert_field(e2, "log.source.geo.country_iso_code", "SE");
    lsf_batch_free(b);
    ts_close(&t);
}

static void test_properties(void **state)
{
    (void)state;
    tstage t;
    ts_open_ok(&t, 1,
               "  - type: geoip\n"
               "    databases: [" FX "GeoIP2-City-Test.mmdb, " FX "GeoLite2-ASN-Test.mmdb]\n"
               "    properties: [geo.continent_name, geo.region_iso_code, geo.postal_code, "
               "as.number]\n");
    lsf_batch *b = lsf_batch_new(4);
    lsf_event *e0 = ev_with(b, "source.ip", "81.2.69.160", NULL);
    lsf_event *e1 = ev_with(b, "source.ip", "89.160.20.112", NULL);
    ts_run(&t, b, 0);
    assert_field(e0, "source.geo.continent_name", "Europe");
    assert_field(e0, "source.geo.region_iso_code", "GB-ENG");
    assert_no_field(e0, "source.geo.city_name");
    assert_no_field(e0, "source.geo.country_iso_code");
    assert_field(e1, "source.geo.region_iso_code", "SE-E");
    assert_field(e1, "source.as.number", "29518");
    assert_no_field(e1, "source.as.organization.name");
    assert_int_equal(e0->nfields, 3);
    lsf_batch_free(b);
    ts_close(&t);
}

/* GeoLite2 City (the free edition's schema) answers like GeoIP2 City, and the
 * two files differ where their README says they do. */
static void test_geolite2_city(void **state)
{
    (void)state;
    tstage t, t2;
    ts_open_ok(&t, 1, "  - type: geoip\n    databases: [" FX "GeoLite2-City-Test.mmdb]\n");
    ts_open_ok(&t2, 1, "  - type: geoip\n    databases: [" FX "GeoIP2-City-Test.mmdb]\n");
    lsf_batch *b = lsf_batch_new(4), *b2 = lsf_batch_new(4);
    lsf_event *e0 = ev_with(b, "source.ip", "2.125.160.216", "destination.ip", "214.78.120.5", NULL);
    lsf_event *e1 = ev_with(b2, "destination.ip", "214.78.120.5", NULL);
    ts_run(&t, b, 0);
    ts_run(&t2, b2, 0);
    assert_field(e0, "source.geo.city_name", "Boxford");
    assert_field(e0, "source.geo.country_iso_code", "GB");
    assert_no_field(e0, "destination.geo.country_iso_code");
    assert_field(e1, "destination.geo.city_name", "San Diego");
    lsf_batch_free(b);
    lsf_batch_free(b2);
    ts_close(&t);
    ts_close(&t2);
}

static void test_country_and_language(void **state)
{
    (void)state;
    tstage t;
    ts_open_ok(&t, 1,
               "  - type: geoip\n"
               "    databases: " FX "GeoIP2-Country-Test.mmdb\n"
               "    fields: [ip, observer.ip]\n"
               "    language: zh-CN\n");
    lsf_batch *b = lsf_batch_new(4);
    lsf_event *e = ev_with(b, "ip", "81.2.69.160", "observer.ip", "2001:218::1", NULL);
    ts_run(&t, b, 0);
    assert_field(e, "geo.country_iso_code", "GB"); /* no prefix: fields at the top */
    assert_field(e, "geo.country_name", "英国");
    assert_no_field(e, "geo.city_name");
    assert_field(e, "observer.geo.country_iso_code", "JP");
    assert_field(e, "observer.geo.country_name", "日本");
    lsf_batch_free(b);
    ts_close(&t);
}

static void test_flat_schema(void **state)
{
    (void)state;
    tstage t;
    ts_open_ok(&t, 1,
               "  - type: geoip\n"
               "    databases: [" FX "flat-city-ipv4.mmdb, " FX "flat-city-ipv6.mmdb]\n"
               "    properties: [geo.country_iso_code, geo.region_name, geo.city_name, "
               "geo.postal_code, geo.location, geo.timezone, geo.continent_code]\n");
    lsf_batch *b = lsf_batch_new(4);
    lsf_event *e0 = ev_with(b, "source.ip", "81.2.69.1", "destination.ip", "2a02:ff00::77", NULL);
    lsf_event *e1 = ev_with(b, "source.ip", "175.16.199.3", NULL);
    ts_run(&t, b, 0);
    assert_field(e0, "source.geo.country_iso_code", "GB");
    assert_field(e0, "source.geo.region_name", "Testshire");
    assert_field(e0, "source.geo.city_name", "Testville");
    assert_field(e0, "source.geo.postal_code", "T1 2AB"); /* asked for */
    /* 32-bit floats come out as their shortest decimals */
    assert_field(e0, "source.geo.location", "{\"lat\":51.5142,\"lon\":-0.0931}");
    assert_field(e0, "source.geo.timezone", "Europe/London");
    assert_no_field(e0, "source.geo.continent_code");
    assert_field(e0, "destination.geo.city_name", "Sixton");
    assert_field(e0, "destination.geo.location", "{\"lat\":50.1169,\"lon\":8.6837}");
    /* empty strings in the record are not written */
    assert_field(e1, "source.geo.country_iso_code", "CN");
    assert_no_field(e1, "source.geo.city_name");
    assert_no_field(e1, "source.geo.postal_code");
    assert_field(e1, "source.geo.location", "{\"lat\":43.88,\"lon\":125.3228}");
    lsf_batch_free(b);
    ts_close(&t);
}

static void test_custom_mapping(void **state)
{
    (void)state;
    tstage t;
    ts_open_ok(&t, 1,
               "  - type: geoip\n"
               "    databases: [" FX "custom.mmdb]\n"
               "    fields: [source.ip]\n"
               "    mapping:\n"
               "      geo.country_iso_code: cc\n"
               "      owner.team: owner.team\n"
               "      owner.code: owner.codes.1\n"
               "      as.number: asn\n"
               "      x.score: score\n"
               "      x.weight: weight\n"
               "      x.anycast: anycast\n"
               "      x.small: small\n"
               "      x.neg: neg\n"
               "      x.huge: huge\n"
               "      x.object: owner\n"
               "      x.missing: [nope, also.nope]\n"
               "      geo.city_name: [city.names.en, cc]\n");
    lsf_batch *b = lsf_batch_new(4);
    lsf_event *e0 = ev_with(b, "source.ip", "5.6.7.8", NULL);
    lsf_event *e1 = ev_with(b, "source.ip", "5.6.7.200", NULL);
    ts_run(&t, b, 0);
    assert_field(e0, "source.geo.country_iso_code", "NL");
    assert_field(e0, "source.owner.team", "netops");
    assert_field(e0, "source.owner.code", "x2");
    assert_field(e0, "source.as.number", "64500");
    assert_int_equal(ftype(e0, "source.x.score"), LSF_T_FLOAT);
    assert_field(e0, "source.x.score", "0.25");
    assert_field(e0, "source.x.weight", "1.5");
    assert_int_equal(ftype(e0, "source.x.anycast"), LSF_T_BOOL);
    assert_field(e0, "source.x.anycast", "true");
    assert_field(e0, "source.x.small", "7");
    assert_field(e0, "source.x.neg", "-5");
    assert_no_field(e0, "source.x.huge");   /* > INT64_MAX */
    assert_no_field(e0, "source.x.object"); /* a map is not a value */
    assert_no_field(e0, "source.x.missing");
    assert_field(e0, "source.geo.city_name", "NL"); /* second path of the list */
    assert_no_field(e0, "source.geo.continent_code"); /* the built-in mapping is replaced */
    assert_field(e1, "source.geo.country_iso_code", "BE"); /* the more specific network */
    assert_no_field(e1, "source.owner.team");
    lsf_batch_free(b);
    ts_close(&t);
}

static void test_special_invalid_absent(void **state)
{
    (void)state;
    tstage t;
    ts_open_ok(&t, 1,
               "  - type: geoip\n"
               "    databases: [" FX "GeoIP2-City-Test.mmdb]\n");
    lsf_batch *b = lsf_batch_new(8);
    lsf_event *e0 = ev_with(b, "source.ip", "10.1.2.3", "destination.ip", "fe80::1%eth0",
                            "client.ip", "203.0.113.9", NULL);
    lsf_event *e1 = ev_with(b, "source.ip", "not-an-ip", "destination.ip", "-", "client.ip", "",
                            NULL);
    lsf_event *e2 = ev_with(b, "message.ip", "81.2.69.160", NULL);
    lsf_event *e3 = ev_with(b, "source.ip", "100.64.1.1", NULL);
    e3->flags |= LSF_EV_DROPPED; /* dropped events are left alone */
    ts_run(&t, b, 0);
    assert_field(e0, "source.ip_scope", "private");
    assert_field(e0, "destination.ip_scope", "link_local");
    assert_field(e0, "client.ip_scope", "documentation");
    assert_no_field(e0, "source.geo.country_iso_code");
    assert_int_equal(e1->nfields, 3);
    assert_int_equal(e2->nfields, 1);
    assert_no_field(e3, "source.ip_scope");
    assert_int_equal(ts_counter(&t, "special"), 3);
    assert_int_equal(ts_counter(&t, "invalid"), 1);
    assert_int_equal(ts_counter(&t, "lookups"), 0);
    lsf_batch_free(b);
    ts_close(&t);

    ts_open_ok(&t, 1,
               "  - type: geoip\n"
               "    databases: [" FX "GeoIP2-City-Test.mmdb]\n"
               "    ip_scope: false\n");
    b = lsf_batch_new(2);
    e0 = ev_with(b, "source.ip", "10.1.2.3", NULL);
    ts_run(&t, b, 0);
    assert_int_equal(e0->nfields, 1);
    lsf_batch_free(b);
    ts_close(&t);
}

/* The same addresses through a cache of `size` entries give the same fields. */
static void run_addresses(const char *cache_size, char out[][128], size_t n, uint64_t *hits)
{
    char yaml[512];
    snprintf(yaml, sizeof(yaml),
             "  - type: geoip\n"
             "    databases: [" FX "GeoIP2-City-Test.mmdb, " FX "GeoLite2-ASN-Test.mmdb]\n"
             "    cache_size: %s\n",
             cache_size);
    static const char *const pool[] = {"81.2.69.160", "216.160.83.56", "89.160.20.112",
                                       "175.16.199.0", "2.125.160.216", "67.43.156.0",
                                       "202.196.224.0", "2001:218::1", "1.128.0.0", "18.1.2.3",
                                       "8.8.8.8", "12.81.92.1"};
    tstage t;
    ts_open_ok(&t, 1, yaml);
    for (size_t i = 0; i < n;) {
        lsf_batch *b = lsf_batch_new(64);
        size_t first = i;
        for (; i < n && b->n < b->cap; i++)
            ev_with(b, "source.ip", pool[(i * 7 + i / 13) % 12], NULL);
        ts_run(&t, b, 0);
        for (size_t k = first; k < i; k++) {
            const lsf_event *ev = &b->events[k - first];
            snprintf(out[k], 128, "%s|%s|%s", fval(ev, "source.geo.city_name") ?: "-",
                     fval(ev, "source.geo.country_iso_code") ?: "-",
                     fval(ev, "source.as.number") ?: "-");
        }
        lsf_batch_free(b);
    }
    *hits = ts_counter(&t, "cache_hits");
    ts_close(&t);
}

static void test_cache(void **state)
{
    (void)state;
    enum { N = 600 };
    static char none[N][128], small[N][128], big[N][128];
    uint64_t h0, h1, h2;
    run_addresses("0", none, N, &h0);
    run_addresses("4", small, N, &h1); /* one set of 4: constant eviction */
    run_addresses("1000", big, N, &h2);
    for (int i = 0; i < N; i++) {
        assert_string_equal(small[i], none[i]);
        assert_string_equal(big[i], none[i]);
    }
    assert_string_equal(none[0], "London|GB|-");
    assert_int_equal(h0, 0);
    assert_true(h1 < h2);
    assert_int_equal(h2, N - 12); /* one miss per distinct address */
}

/* Addresses of one network share a database record: the record cache
 * decodes it once and the others copy it, with the same fields as without
 * any cache. */
static void test_record_cache(void **state)
{
    (void)state;
    static const char *const addrs[] = {"81.2.69.160", "81.2.69.161", "81.2.69.190",
                                        "216.160.83.56", "216.160.83.57", "1.128.0.0",
                                        "1.128.0.1", "81.2.69.142", "8.8.8.8"};
    enum { N = sizeof(addrs) / sizeof(addrs[0]) };
    static const char *const outs[] = {"source.geo.city_name", "source.geo.location",
                                       "source.geo.timezone", "source.as.number",
                                       "source.as.organization.name"};
    char want[N][256], got[N][256];
    for (int cached = 0; cached < 2; cached++) {
        tstage t;
        ts_open_ok(&t, 1,
                   cached ? "  - type: geoip\n"
                            "    databases: [" FX "GeoIP2-City-Test.mmdb, " FX
                            "GeoLite2-ASN-Test.mmdb]\n"
                          : "  - type: geoip\n"
                            "    databases: [" FX "GeoIP2-City-Test.mmdb, " FX
                            "GeoLite2-ASN-Test.mmdb]\n"
                            "    cache_size: 0\n");
        lsf_batch *b = lsf_batch_new(N);
        for (int i = 0; i < N; i++)
            ev_with(b, "source.ip", addrs[i], NULL);
        assert_int_equal(ts_run(&t, b, 0), LSF_OK);
        for (int i = 0; i < N; i++) {
            char *o = cached ? got[i] : want[i];
            size_t n = 0;
            for (size_t k = 0; k < sizeof(outs) / sizeof(outs[0]); k++)
                n += (size_t)snprintf(o + n, 256 - n, "%s|", fval(&b->events[i], outs[k]) ?: "-");
        }
        if (cached) {
            /* .161 and .190 share .160's record, .57 .56's, 1.128.0.1 1.128.0.0's */
            assert_int_equal(ts_counter(&t, "record_cache_hits"), 4);
            assert_int_equal(ts_counter(&t, "cache_hits"), 0);
        } else {
            assert_int_equal(ts_counter(&t, "record_cache_hits"), 0);
        }
        lsf_batch_free(b);
        ts_close(&t);
    }
    for (int i = 0; i < N; i++)
        assert_string_equal(got[i], want[i]);
    assert_string_equal(got[1], "London|{\"lat\":51.5142,\"lon\":-0.0931}|Europe/London|-|-|");
    assert_string_equal(got[6], "-|-|-|1221|Telstra Pty Ltd|");
}

/* The batch tree walk (lsf_geo_locate_many: records read by hand, 24- and
 * 28-bit files, IPv4 in IPv6 trees, IPv6 in IPv4 files) finds the records
 * libmaxminddb finds, for addresses near the fixtures' networks and random
 * ones, in batches of every size. */
static void test_locate_many(void **state)
{
    (void)state;
    static const char *const sets[][3] = {
        {FX "GeoIP2-City-Test.mmdb", FX "GeoLite2-ASN-Test.mmdb", NULL},
        {FX "flat-city-ipv4.mmdb", FX "flat-city-ipv6.mmdb", FX "GeoIP2-Country-Test.mmdb"},
        {FX "custom.mmdb", FX "swap-a.mmdb", NULL},
    };
    static const char *const near[] = {"81.2.69.160", "216.160.83.56", "89.160.20.112",
                                       "175.16.199.0", "2.125.160.216", "67.43.156.0",
                                       "202.196.224.0", "2001:218::1", "1.128.0.0",
                                       "12.81.92.1", "2001:480::1", "::ffff:81.2.69.160",
                                       "2a02:d280::1", "1.0.0.1", "2c0f:ff40::1"};
    enum { N = 6000 };
    lsf_ip *ips = calloc(N, sizeof(lsf_ip));
    const lsf_ip **pp = calloc(N, sizeof(*pp));
    uint32_t *many = calloc((size_t)N * 3, sizeof(uint32_t)), one[3];
    uint64_t r = 88172645463325252ull;
    for (int k = 0; k < N; k++) {
        r ^= r << 13, r ^= r >> 7, r ^= r << 17;
        lsf_ip *ip = &ips[k];
        const char *a = near[k % (sizeof(near) / sizeof(near[0]))];
        assert_int_equal(lsf_ip_parse(a, strlen(a), ip), 0);
        if (k % 3 == 1) { /* a neighbour: low bits changed */
            ip->b[15] ^= (uint8_t)r;
            ip->b[14] ^= (uint8_t)(r >> 8) & 0x0f;
        } else if (k % 3 == 2) { /* anywhere */
            memcpy(ip->b + (ip->v4 ? 12 : 0), &r, ip->v4 ? 4 : 8);
        }
        pp[k] = ip;
    }
    size_t found = 0;
    for (size_t s = 0; s < sizeof(sets) / sizeof(sets[0]); s++) {
        size_t n = sets[s][2] ? 3 : 2;
        lsf_errbuf err;
        lsf_geo_dbs *d = lsf_geo_dbs_open(sets[s], n, 1, &err);
        if (!d)
            fail_msg("%s", err.msg);
        for (size_t k = 0, chunk; k < N; k += chunk) {
            chunk = 1 + (k * 7) % 45;
            if (k + chunk > N)
                chunk = N - k;
            lsf_geo_locate_many(d, pp + k, chunk, many + k * n);
        }
        for (size_t k = 0; k < N; k++) {
            lsf_geo_locate(d, pp[k], one);
            for (size_t i = 0; i < n; i++) {
                if (one[i] != many[k * n + i])
                    fail_msg("%s, address %zu: libmaxminddb %u, batch walk %u", sets[s][i], k,
                             one[i], many[k * n + i]);
                found += one[i] != LSF_GEO_NO_RECORD;
            }
        }
        lsf_geo_dbs_close(d);
    }
    print_message("%zu records found\n", found);
    assert_true(found > N / 4); /* the near addresses: the walks reach records */
    free(ips);
    free(pp);
    free(many);
}

static void test_config_errors(void **state)
{
    (void)state;
    const char *e = ts_error("  - type: geoip\n    databases: [" FX "none.mmdb]\n");
    assert_non_null(strstr(e, "t.yaml:7:16: "));
    assert_non_null(strstr(e, "none.mmdb: cannot open the MaxMind DB"));
    e = ts_error("  - type: geoip\n    databases: [" FX "README.md]\n");
    assert_non_null(strstr(e, "README.md: cannot open the MaxMind DB"));
    e = ts_error("  - type: geoip\n    databases: []\n");
    assert_non_null(strstr(e, "name at least one"));
    e = ts_error("  - type: geoip\n    databases: [" FX "custom.mmdb]\n    fields: [\"a..b\"]\n");
    assert_non_null(strstr(e, "'a..b' is not a field name"));
    e = ts_error("  - type: geoip\n    databases: [" FX "custom.mmdb]\n    properties: [geo.x]\n");
    assert_non_null(strstr(e, "t.yaml:8:17: properties: 'geo.x' is not a built-in output (known: "
                              "geo.continent_code, geo.continent_name, geo.country_iso_code"));
    e = ts_error("  - type: geoip\n    databases: [" FX "custom.mmdb]\n    properties: [as.number]\n"
                 "    mapping: {a: b}\n");
    assert_non_null(strstr(e, "properties: not with mapping"));
    e = ts_error("  - type: geoip\n    databases: [" FX "custom.mmdb]\n    mapping: [cc]\n");
    assert_non_null(strstr(e, "t.yaml:8:14: mapping: expected a map"));
    e = ts_error("  - type: geoip\n    databases: [" FX "custom.mmdb]\n"
                 "    mapping: {geo.x: {a: b}}\n");
    assert_non_null(strstr(e, "geo.x: expected a record path"));
    e = ts_error("  - type: geoip\n    databases: [" FX "custom.mmdb]\n"
                 "    mapping: {\"geo..x\": cc}\n");
    assert_non_null(strstr(e, "'geo..x' is not a field name"));
}

/* ---- swaps ---------------------------------------------------------------- */

static void copy_file(const char *from, const char *to)
{
    char tmp[256];
    snprintf(tmp, sizeof(tmp), "%s.tmp", to);
    FILE *in = fopen(from, "rb"), *out = fopen(tmp, "wb");
    assert_non_null(in);
    assert_non_null(out);
    char buf[8192];
    size_t n;
    while ((n = fread(buf, 1, sizeof(buf), in)) > 0)
        assert_int_equal(fwrite(buf, 1, n, out), n);
    fclose(in);
    assert_int_equal(fclose(out), 0);
    assert_int_equal(rename(tmp, to), 0); /* atomic replace, as geoipupdate does */
}

static void sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

static bool wait_counter(tstage *t, const char *what, uint64_t want, int timeout_ms)
{
    for (int waited = 0; waited < timeout_ms; waited += 5) {
        if (ts_counter(t, what) >= want)
            return true;
        sleep_ms(5);
    }
    return false;
}

static void test_strings_outlive_swap(void **state)
{
    (void)state;
    char dir[] = "/tmp/lsf-geoip-XXXXXX", path[300], yaml[600];
    assert_non_null(mkdtemp(dir));
    snprintf(path, sizeof(path), "%s/db.mmdb", dir);
    copy_file(FX "swap-a.mmdb", path);
    snprintf(yaml, sizeof(yaml), "  - type: geoip\n    databases: [%s]\n    check_interval: 0\n",
             path);
    tstage t;
    ts_open_ok(&t, 1, yaml);
    lsf_batch *b = lsf_batch_new(4);
    lsf_event *e = ev_with(b, "source.ip", "11.3.0.1", NULL);
    ts_run(&t, b, 0);
    copy_file(FX "swap-b.mmdb", path);
    t.st->def->reopen(t.st); /* SIGHUP */
    assert_true(wait_counter(&t, "reloads", 1, 5000));
    /* the old database is closed and unmapped; the event's strings are the batch's */
    assert_field(e, "source.geo.city_name", "Alpha");
    lsf_batch *b2 = lsf_batch_new(4);
    lsf_event *e2 = ev_with(b2, "source.ip", "11.3.0.1", NULL);
    ts_run(&t, b2, 0);
    assert_field(e2, "source.geo.city_name", "Bravo"); /* and the cache was dropped */
    /* a broken file keeps the running database (replaced, never rewritten in
     * place: the running database is mapped from the old file) */
    copy_file(FX "README.md", path);
    t.st->def->reopen(t.st);
    assert_true(wait_counter(&t, "reload_errors", 1, 5000));
    lsf_batch_reset(b2);
    e2 = ev_with(b2, "source.ip", "11.4.0.1", NULL);
    ts_run(&t, b2, 0);
    assert_field(e2, "source.geo.city_name", "Bravo");
    lsf_batch_free(b);
    lsf_batch_free(b2);
    ts_close(&t);
    unlink(path);
    rmdir(dir);
}

typedef struct swap_worker {
    tstage *t;
    int index;
    atomic_bool *stop;
    atomic_int *final_seen; /* set by the main thread: after this, all must be Bravo */
    uint64_t batches, bad;
    char bad_city[64];
} swap_worker;

static void *swap_worker_main(void *arg)
{
    swap_worker *w = arg;
    lsf_batch *b = lsf_batch_new(64);
    while (!atomic_load(w->stop)) {
        lsf_batch_reset(b);
        int final = atomic_load(w->final_seen);
        for (int i = 0; i < 64; i++) {
            char ip[32];
            snprintf(ip, sizeof(ip), "11.%d.%d.%d", i % 16, (int)(w->batches % 256), i);
            ev_with(b, "source.ip", ip, NULL);
        }
        ts_run(w->t, b, w->index);
        for (uint32_t i = 0; i < b->n; i++) {
            const char *c = fval(&b->events[i], "source.geo.city_name");
            bool ok = c && (strcmp(c, "Bravo") == 0 || (!final && strcmp(c, "Alpha") == 0));
            if (!ok && !w->bad++)
                snprintf(w->bad_city, sizeof(w->bad_city), "%s", c ? c : "(none)");
        }
        w->batches++;
    }
    lsf_batch_free(b);
    return NULL;
}

/* Workers look addresses up without pause while the database file is
 * replaced again and again: every event gets a complete answer from one
 * database or the other, never a torn or freed one. Half the swaps are
 * found by the file check, half come from SIGHUP. */
static void test_swap_under_load(void **state)
{
    (void)state;
    enum { WORKERS = 4, SWAPS = 24 };
    char dir[] = "/tmp/lsf-geoip-XXXXXX", path[300], yaml[600];
    assert_non_null(mkdtemp(dir));
    snprintf(path, sizeof(path), "%s/db.mmdb", dir);
    copy_file(FX "swap-a.mmdb", path);
    snprintf(yaml, sizeof(yaml),
             "  - type: geoip\n    databases: [%s]\n    check_interval: 10ms\n    cache_size: 64\n",
             path);
    tstage t;
    ts_open_ok(&t, WORKERS, yaml);
    atomic_bool stop = false;
    atomic_int final_seen = 0;
    swap_worker w[WORKERS];
    pthread_t th[WORKERS];
    for (int i = 0; i < WORKERS; i++) {
        w[i] = (swap_worker){&t, i, &stop, &final_seen, 0, 0, ""};
        assert_int_equal(pthread_create(&th[i], NULL, swap_worker_main, &w[i]), 0);
    }
    for (int s = 1; s <= SWAPS; s++) {
        sleep_ms(5);
        copy_file(s % 2 ? FX "swap-b.mmdb" : FX "swap-a.mmdb", path);
        if (s % 2 == 0)
            t.st->def->reopen(t.st);
        /* file checks need the change to hold for one more check */
        if (!wait_counter(&t, "reloads", (uint64_t)s, 5000))
            fail_msg("swap %d: no reload after 5s", s);
    }
    /* SWAPS is even: the file holds swap-a now; make the last one b */
    copy_file(FX "swap-b.mmdb", path);
    t.st->def->reopen(t.st);
    assert_true(wait_counter(&t, "reloads", SWAPS + 1, 5000));
    atomic_store(&final_seen, 1);
    uint64_t before[WORKERS];
    for (int i = 0; i < WORKERS; i++)
        before[i] = w[i].batches;
    for (int i = 0; i < WORKERS; i++) /* every worker does a few batches after the last swap */
        for (int waited = 0; w[i].batches < before[i] + 3 && waited < 5000; waited += 5)
            sleep_ms(5);
    atomic_store(&stop, true);
    uint64_t total = 0;
    for (int i = 0; i < WORKERS; i++) {
        pthread_join(th[i], NULL);
        if (w[i].bad)
            fail_msg("worker %d: %llu bad events (first: city %s)", i,
                     (unsigned long long)w[i].bad, w[i].bad_city);
        total += w[i].batches;
    }
    print_message("%llu batches looked up across %d swaps\n", (unsigned long long)total, SWAPS + 1);
    assert_true(total > WORKERS * 3);
    ts_close(&t);
    unlink(path);
    rmdir(dir);
}

/* The live swap alone: versions are poisoned when freed, so a reader that
 * still held one would see it (and ASan reports the use after free). */
typedef struct ver {
    uint64_t magic, gen;
} ver;

static void *ver_load(void *arg, uint64_t gen, lsf_errbuf *err)
{
    (void)arg;
    (void)err;
    ver *v = malloc(sizeof(*v));
    v->magic = 0x600dda7a;
    v->gen = gen;
    return v;
}

static void ver_free(void *arg, void *p)
{
    (void)arg;
    ((ver *)p)->magic = 0xdead;
    free(p);
}

typedef struct live_reader {
    lsf_live *l;
    int index;
    atomic_bool *stop;
    _Atomic uint64_t reads;
    uint64_t bad, max_gen;
} live_reader;

static void *live_reader_main(void *arg)
{
    live_reader *r = arg;
    while (!atomic_load(r->stop)) {
        ver *v = lsf_live_enter(r->l, r->index);
        for (int i = 0; i < 50; i++)
            if (((volatile ver *)v)->magic != 0x600dda7a)
                r->bad++;
        if (v->gen < r->max_gen) /* versions only move forward */
            r->bad++;
        r->max_gen = v->gen;
        lsf_live_exit(r->l, r->index);
        r->reads++;
    }
    return NULL;
}

static void test_live_swap(void **state)
{
    (void)state;
    enum { READERS = 3, SWAPS = 2000 };
    lsf_live_ops ops = {ver_load, ver_free, NULL};
    lsf_errbuf err;
    const char *paths[] = {"/nonexistent"};
    lsf_live *l = lsf_live_new("live-test", READERS, paths, 1, 0, &ops, &err);
    assert_non_null(l);
    atomic_bool stop = false;
    live_reader r[READERS];
    pthread_t th[READERS];
    for (int i = 0; i < READERS; i++) {
        r[i] = (live_reader){l, i, &stop, 0, 0, 0};
        atomic_init(&r[i].reads, 0);
        pthread_create(&th[i], NULL, live_reader_main, &r[i]);
    }
    for (int i = 0; i < READERS; i++) /* every reader is running before the swaps */
        while (atomic_load(&r[i].reads) == 0)
            sleep_ms(1);
    for (int s = 0; s < SWAPS; s++)
        assert_int_equal(lsf_live_reload_now(l, &err), 0);
    atomic_store(&stop, true);
    for (int i = 0; i < READERS; i++) {
        pthread_join(th[i], NULL);
        assert_int_equal(r[i].bad, 0);
    }
    assert_int_equal(lsf_live_generation(l), SWAPS + 1);
    lsf_live_free(l);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ip_parse),
        cmocka_unit_test(test_ip_scope),
        cmocka_unit_test(test_city_asn),
        cmocka_unit_test(test_replace_and_shared_prefix),
        cmocka_unit_test(test_properties),
        cmocka_unit_test(test_geolite2_city),
        cmocka_unit_test(test_country_and_language),
        cmocka_unit_test(test_flat_schema),
        cmocka_unit_test(test_custom_mapping),
        cmocka_unit_test(test_special_invalid_absent),
        cmocka_unit_test(test_cache),
        cmocka_unit_test(test_record_cache),
        cmocka_unit_test(test_locate_many),
        cmocka_unit_test(test_config_errors),
        cmocka_unit_test(test_strings_outlive_swap),
        cmocka_unit_test(test_swap_under_load),
        cmocka_unit_test(test_live_swap),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
