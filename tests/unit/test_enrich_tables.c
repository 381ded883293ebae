/* test_enrich_tables.c - unit tests of the table-driven enrichment stages
 * and their parts: the CSV reader (enrich/csv.c), the longest-prefix index
 * (enrich/cidr_index.c, checked against a brute-force search on random
 * nested networks), the `cidr` stage (CSV and YAML tables, inheritance,
 * targets, errors with positions, reloads) and the `lookup` stage.
 *
 * test_cidr_speed prints the lookup cost over 50,000 networks (no timing
 * assertion: machines differ).
 * Threads: single-threaded; reloads happen on the stages' watcher threads.
 */
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "enrich/cidr_index.h"
#include "enrich/csv.h"
#include "enrich_test.h"
#include "tmpdir.h"


static const char *write_file(const char *name, const char *text)
{
    static char path[4][256];
    static int k;
    char *p = path[k++ & 3], tmp[300];
    snprintf(p, 256, "%s/%s", tmpdir, name);
    snprintf(tmp, sizeof(tmp), "%s.tmp", p);
    FILE *f = fopen(tmp, "w");
    assert_non_null(f);
    fputs(text, f);
    assert_int_equal(fclose(f), 0);
    assert_int_equal(rename(tmp, p), 0);
    return p;
}

static int setup(void **state)
{
    (void)state;
    return tmpdir_make("tables");
}


static void sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

static bool wait_counter(tstage *t, const char *what, uint64_t want)
{
    for (int waited = 0; waited < 5000; waited += 5) {
        if (ts_counter(t, what) >= want)
            return true;
        sleep_ms(5);
    }
    return false;
}

/* ---- CSV ------------------------------------------------------------------ */

static void test_csv(void **state)
{
    (void)state;
    const char *p = write_file("a.csv", "\xef\xbb\xbf"
                                        "# a comment\n"
                                        "a, b ,c\r\n"
                                        "\n"
                                        "\"x,1\",\"say \"\"hi\"\"\" , \"two\nlines\"\n"
                                        "  lone\n"
                                        ",,\n"
                                        "last,no newline");
    lsf_csv c;
    lsf_errbuf err;
    assert_int_equal(lsf_csv_open(&c, p, &err), 0);
    assert_int_equal(lsf_csv_next(&c, &err), 1);
    assert_int_equal(c.n, 3);
    assert_string_equal(c.field[0], "a");
    assert_string_equal(c.field[1], "b");
    assert_string_equal(c.field[2], "c");
    assert_int_equal(c.field_line[0], 2);
    assert_int_equal(lsf_csv_next(&c, &err), 1);
    assert_int_equal(c.n, 3);
    assert_string_equal(c.field[0], "x,1");
    assert_string_equal(c.field[1], "say \"hi\"");
    assert_string_equal(c.field[2], "two\nlines");
    assert_int_equal(c.field_len[2], 9);
    assert_int_equal(c.field_line[0], 4);
    assert_int_equal(lsf_csv_next(&c, &err), 1);
    assert_int_equal(c.n, 1);
    assert_string_equal(c.field[0], "lone");
    assert_int_equal(c.field_line[0], 6);
    assert_int_equal(c.field_col[0], 3);
    assert_int_equal(lsf_csv_next(&c, &err), 1);
    assert_int_equal(c.n, 3);
    assert_string_equal(c.field[2], "");
    assert_int_equal(lsf_csv_next(&c, &err), 1);
    assert_string_equal(c.field[1], "no newline");
    assert_int_equal(lsf_csv_next(&c, &err), 0);
    lsf_csv_close(&c);

    p = write_file("b.csv", "a,b\n1,\"open\n");
    assert_int_equal(lsf_csv_open(&c, p, &err), 0);
    assert_int_equal(lsf_csv_next(&c, &err), 1);
    assert_int_equal(lsf_csv_next(&c, &err), -1);
    assert_non_null(strstr(err.msg, "b.csv:2:3: quote not closed"));
    lsf_csv_close(&c);
    p = write_file("c.csv", "\"a\"b,c\n");
    assert_int_equal(lsf_csv_open(&c, p, &err), 0);
    assert_int_equal(lsf_csv_next(&c, &err), -1);
    assert_non_null(strstr(err.msg, "c.csv:1:4: text after a closing quote"));
    lsf_csv_close(&c);
    assert_int_equal(lsf_csv_open(&c, "/nonexistent/x.csv", &err), -1);
    assert_non_null(strstr(err.msg, "cannot open"));
}

/* ---- the prefix index ---------------------------------------------------- */

static uint64_t rng = 88172645463325252ull;
static uint64_t next_rand(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return rng;
}

static bool in_net(const lsf_ip *ip, const lsf_cidr_net *n)
{
    if (ip->v4 != n->ip.v4)
        return false;
    int base = ip->v4 ? 12 : 0, bits = n->len;
    for (int i = 0; i < 16 - base && bits > 0; i++, bits -= 8) {
        uint8_t mask = bits >= 8 ? 0xff : (uint8_t)(0xff << (8 - bits));
        if ((ip->b[base + i] & mask) != n->ip.b[base + i])
            return false;
    }
    return true;
}

/* A random network: often inside an earlier one, so nesting is deep. */
static void random_net(lsf_cidr_net *nets, size_t have, bool v4, lsf_cidr_net *out)
{
    memset(out, 0, sizeof(*out));
    int bits = v4 ? 32 : 128, base = v4 ? 12 : 0;
    if (have && next_rand() % 3) {
        const lsf_cidr_net *p = &nets[next_rand() % have];
        if (p->ip.v4 == v4 && p->len < bits) {
            *out = *p;
            out->len = (uint8_t)(p->len + 1 + next_rand() % (unsigned)(bits - p->len));
            for (int i = base; i < 16; i++) /* random host bits below the parent */
                out->ip.b[i] |= (uint8_t)next_rand() & (uint8_t)(i - base < p->len / 8 ? 0 : 0xff);
        }
    }
    if (!out->len) {
        out->len = (uint8_t)(1 + next_rand() % (unsigned)bits);
        for (int i = base; i < 16; i++)
            out->ip.b[i] = (uint8_t)next_rand();
        out->ip.v4 = v4;
        if (v4)
            out->ip.b[10] = out->ip.b[11] = 0xff;
    }
    /* keep the parent's bits, clear host bits */
    for (int i = base, left = out->len; i < 16; i++, left -= 8)
        out->ip.b[i] &= left >= 8 ? 0xff : left > 0 ? (uint8_t)(0xff << (8 - left)) : 0;
}

static int64_t brute(const lsf_cidr_net *nets, size_t n, const lsf_ip *ip)
{
    int64_t best = -1;
    int best_len = -1;
    for (size_t i = 0; i < n; i++)
        if (nets[i].len > best_len && in_net(ip, &nets[i])) {
            best = nets[i].row;
            best_len = nets[i].len;
        }
    return best;
}

static void test_index_vs_brute_force(void **state)
{
    (void)state;
    for (int round = 0; round < 40; round++) {
        size_t n = 1 + next_rand() % 120;
        lsf_cidr_net *nets = calloc(n, sizeof(*nets)), *orig = calloc(n, sizeof(*nets));
        size_t k = 0;
        while (k < n) {
            random_net(nets, k, next_rand() % 2, &nets[k]);
            bool dup = false;
            for (size_t j = 0; j < k; j++)
                dup |= nets[j].ip.v4 == nets[k].ip.v4 && nets[j].len == nets[k].len &&
                       memcmp(nets[j].ip.b, nets[k].ip.b, 16) == 0;
            if (dup)
                continue;
            nets[k].row = (uint32_t)k;
            nets[k].line = (int)k + 1;
            k++;
        }
        memcpy(orig, nets, n * sizeof(*nets));
        lsf_errbuf err;
        lsf_cidr_index *x = lsf_cidr_index_build(nets, n, "t", NULL, NULL, &err);
        assert_non_null(x);
        /* probe each network's first and last address and their neighbours, and random ones */
        for (size_t i = 0; i < n * 6 + 200; i++) {
            lsf_ip ip = orig[i % n].ip;
            int base = ip.v4 ? 12 : 0;
            switch (i / n) {
            case 0: break;
            case 1: case 2: /* last address (+1) */
                for (int b = base, left = orig[i % n].len; b < 16; b++, left -= 8)
                    ip.b[b] |= left >= 8 ? 0 : left > 0 ? (uint8_t)(0xff >> left) : 0xff;
                if (i / n == 2)
                    for (int b = 15; b >= base && ++ip.b[b] == 0; b--)
                        ;
                break;
            case 3: /* first address - 1 */
                for (int b = 15; b >= base && ip.b[b]-- == 0; b--)
                    ;
                break;
            default:
                for (int b = base; b < 16; b++)
                    ip.b[b] = (uint8_t)next_rand();
            }
            int64_t want = brute(orig, n, &ip), got = lsf_cidr_index_find(x, &ip);
            if (want != got) {
                char buf[64];
                lsf_ip_format(&ip, buf);
                fail_msg("round %d: %s -> row %lld, want %lld", round, buf, (long long)got,
                         (long long)want);
            }
        }
        lsf_cidr_index_free(x);
        free(nets);
        free(orig);
    }
}

static void test_cidr_parse(void **state)
{
    (void)state;
    lsf_cidr_net n;
    char why[200], buf[64];
    static const struct {
        const char *in, *out;
    } ok[] = {{"10.0.0.0/8", "10.0.0.0/8"},     {"192.0.2.7", "192.0.2.7/32"},
              {"0.0.0.0/0", "0.0.0.0/0"},       {"2001:db8::/32", "2001:db8::/32"},
              {"::/0", "::/0"},                 {"::ffff:10.0.0.0/104", "10.0.0.0/8"},
              {"2001:DB8:1::/48", "2001:db8:1::/48"}};
    for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
        if (lsf_cidr_parse(ok[i].in, &n, why, sizeof(why)) < 0)
            fail_msg("%s: %s", ok[i].in, why);
        lsf_cidr_format(&n, buf);
        assert_string_equal(buf, ok[i].out);
    }
    static const struct {
        const char *in, *why;
    } bad[] = {{"10.1.2.3/8", "host bits set; did you mean 10.0.0.0/8?"},
               {"2001:db8::1/32", "did you mean 2001:db8::/32?"},
               {"10.0.0.0/33", "prefix length must be 0-32"},
               {"10.0.0.0/", "prefix length"},
               {"10.0.0.0/8x", "prefix length"},
               {"2001:db8::/129", "0-128"},
               {"10.0.0.0:80/8", "not a network"},
               {"[2001:db8::]/32", "not a network"},
               {"example.com/8", "not a network"},
               {"", "not a network"}};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        if (lsf_cidr_parse(bad[i].in, &n, why, sizeof(why)) == 0)
            fail_msg("'%s' was accepted", bad[i].in);
        if (!strstr(why, bad[i].why))
            fail_msg("'%s': '%s' does not say '%s'", bad[i].in, why, bad[i].why);
    }
}

static int cmp_net_key(const void *a, const void *b)
{
    const lsf_cidr_net *x = a, *y = b;
    int c = memcmp(x->ip.b, y->ip.b, 16);
    return c ? c : (int)x->len - (int)y->len;
}

static void test_cidr_speed(void **state)
{
    (void)state;
    enum { N = 50000, PROBES = 2000000 };
    lsf_cidr_net *nets = calloc(N, sizeof(*nets));
    for (size_t k = 0; k < N; k++) { /* /16 - /28 IPv4 networks, nested where they overlap */
        lsf_cidr_net *n = &nets[k];
        n->ip.v4 = true;
        n->ip.b[10] = n->ip.b[11] = 0xff;
        uint32_t a = (uint32_t)next_rand();
        n->len = (uint8_t)(16 + next_rand() % 13);
        a &= ~0u << (32 - n->len);
        for (int i = 0; i < 4; i++)
            n->ip.b[12 + i] = (uint8_t)(a >> (24 - 8 * i));
    }
    qsort(nets, N, sizeof(*nets), cmp_net_key);
    size_t n = 0;
    for (size_t k = 0; k < N; k++) /* drop repeats, number the rest */
        if (!n || cmp_net_key(&nets[n - 1], &nets[k]) != 0) {
            nets[n] = nets[k];
            nets[n].row = (uint32_t)n;
            n++;
        }
    lsf_errbuf err;
    lsf_cidr_index *x = lsf_cidr_index_build(nets, n, "t", NULL, NULL, &err);
    assert_non_null(x);
    lsf_ip *probe = calloc(4096, sizeof(lsf_ip));
    for (int i = 0; i < 4096; i++) {
        probe[i].v4 = true;
        probe[i].b[10] = probe[i].b[11] = 0xff;
        uint32_t a = (uint32_t)next_rand();
        memcpy(probe[i].b + 12, &a, 4);
    }
    struct timespec t0, t1;
    int64_t sum = 0;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (int i = 0; i < PROBES; i++)
        sum += lsf_cidr_index_find(x, &probe[i & 4095]);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double ns = ((double)(t1.tv_sec - t0.tv_sec) * 1e9 + (double)(t1.tv_nsec - t0.tv_nsec)) / PROBES;
    print_message("cidr: %zu networks, %zu ranges: %.1f ns per IPv4 lookup (checksum %lld)\n", n,
                  lsf_cidr_index_ranges(x), ns, (long long)sum);
    lsf_cidr_index_free(x);
    free(probe);
    free(nets);
}

/* ---- the cidr stage ------------------------------------------------------ */

static void test_cidr_stage_csv(void **state)
{
    (void)state;
    const char *p = write_file("nets.csv",
                               "network,network.zone,asset.owner,environment\n"
                               "10.0.0.0/8,internal,it\n"
                               "10.20.0.0/16,dmz,,prod\n"
                               "10.20.5.0/24,,\"web team, blue\",\n"
                               "2001:db8::/32,lab,research,test\n");
    char yaml[512];
    snprintf(yaml, sizeof(yaml), "  - type: cidr\n    path: %s\n", p);
    tstage t;
    ts_open_ok(&t, 1, yaml);
    lsf_batch *b = lsf_batch_new(8);
    lsf_event *e0 = ev_with(b, "source.ip", "10.20.5.7", "destination.ip", "10.1.1.1", NULL);
    lsf_event *e1 = ev_with(b, "client.ip", "[2001:db8::5]:80", "source.ip", "8.8.8.8", NULL);
    lsf_event *e2 = ev_with(b, "source.ip", "::ffff:10.20.9.9", "destination.ip", "bad", NULL);
    ts_run(&t, b, 0);
    assert_field(e0, "source.network.zone", "dmz");            /* from 10.20.0.0/16 */
    assert_field(e0, "source.asset.owner", "web team, blue");  /* its own */
    assert_field(e0, "source.environment", "prod");            /* from 10.20.0.0/16 */
    assert_field(e0, "destination.network.zone", "internal");
    assert_field(e0, "destination.asset.owner", "it");
    assert_no_field(e0, "destination.environment");
    assert_field(e1, "client.network.zone", "lab");
    assert_no_field(e1, "source.network.zone");
    assert_field(e2, "source.asset.owner", "it");
    assert_field(e2, "source.environment", "prod");
    assert_int_equal(ts_counter(&t, "matched"), 4);
    assert_int_equal(ts_counter(&t, "unmatched"), 1);
    assert_int_equal(ts_counter(&t, "invalid"), 1);
    lsf_batch_free(b);
    ts_close(&t);

    /* target: a fixed prefix, or the names as they are */
    snprintf(yaml, sizeof(yaml),
             "  - type: cidr\n    path: %s\n    fields: [source.ip]\n    target: \"{prefix}.net\"\n",
             p);
    ts_open_ok(&t, 1, yaml);
    b = lsf_batch_new(2);
    e0 = ev_with(b, "source.ip", "10.20.5.7", NULL);
    ts_run(&t, b, 0);
    assert_field(e0, "source.net.network.zone", "dmz");
    lsf_batch_free(b);
    ts_close(&t);
    snprintf(yaml, sizeof(yaml),
             "  - type: cidr\n    path: %s\n    fields: [host.ip]\n    target: \"\"\n", p);
    ts_open_ok(&t, 1, yaml);
    b = lsf_batch_new(2);
    e0 = ev_with(b, "host.ip", "10.20.5.7", NULL);
    ts_run(&t, b, 0);
    assert_field(e0, "network.zone", "dmz");
    assert_field(e0, "asset.owner", "web team, blue");
    lsf_batch_free(b);
    ts_close(&t);
}

static void test_cidr_stage_yaml(void **state)
{
    (void)state;
    const char *p = write_file("nets.yaml",
                               "networks:\n"
                               "  - network: [10.0.0.0/8, 172.16.0.0/12]\n"
                               "    network.zone: internal\n"
                               "    vlan: 10\n"
                               "  - network: 172.16.9.0/24\n"
                               "    network.zone: printers\n"
                               "  - {network: \"::/0\", network.zone: internet6}\n");
    char yaml[512];
    snprintf(yaml, sizeof(yaml), "  - type: cidr\n    path: %s\n", p);
    tstage t;
    ts_open_ok(&t, 1, yaml);
    lsf_batch *b = lsf_batch_new(4);
    lsf_event *e0 = ev_with(b, "source.ip", "172.16.9.1", "destination.ip", "172.31.0.1", NULL);
    lsf_event *e1 = ev_with(b, "source.ip", "2a00::1", "destination.ip", "11.0.0.1", NULL);
    ts_run(&t, b, 0);
    assert_field(e0, "source.network.zone", "printers");
    assert_field(e0, "source.vlan", "10"); /* inherited; table values are strings */
    assert_int_equal(ftype(e0, "source.vlan"), LSF_T_STR);
    assert_field(e0, "destination.network.zone", "internal");
    assert_field(e1, "source.network.zone", "internet6");
    assert_no_field(e1, "destination.network.zone");
    lsf_batch_free(b);
    ts_close(&t);
}

static void test_cidr_errors(void **state)
{
    (void)state;
    static const struct {
        const char *name, *text, *want;
    } cases[] = {
        {"e1.csv", "network,zone\n10.0.0.0/8,a\n10.0.0.0/8,b\n",
         "e1.csv:3:1: network 10.0.0.0/8 is listed twice (first at line 2)"},
        {"e2.csv", "network,zone\n10.1.0.0/8,a\n", "e2.csv:2:1: '10.1.0.0/8' has host bits set"},
        {"e3.csv", "network,zone\n10.0.0.0/8,a,b\n", "e3.csv:2:14: more values than the header"},
        {"e4.csv", "network,bad name\n", "e4.csv:1:9: column name 'bad name' is not a field"},
        {"e5.csv", "network,a,a\n", "e5.csv:1:11: column 'a' appears twice"},
        {"e6.csv", "", "e6.csv: empty table"},
        {"e7.yaml", "- network: 10.0.0.0/8\n  zone: [a, b]\n", "e7.yaml:2:9: zone: expected a single"},
        {"e8.yaml", "- zone: a\n", "e8.yaml:1:3: this entry has no 'network'"},
        {"e9.yaml", "networks: {a: b}\n", "e9.yaml:1:11: expected a list of networks"},
        {"e10.yaml", "- network: [10.0.0.0/8, nope]\n", "e10.yaml:1:25: 'nope' is not a network"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        const char *p = write_file(cases[i].name, cases[i].text);
        char yaml[512];
        snprintf(yaml, sizeof(yaml), "  - type: cidr\n    path: %s\n", p);
        const char *e = ts_error(yaml);
        if (!strstr(e, cases[i].want))
            fail_msg("%s: '%s' does not say '%s'", cases[i].name, e, cases[i].want);
    }
    const char *e = ts_error("  - type: cidr\n    path: /nonexistent.csv\n");
    assert_non_null(strstr(e, "t.yaml:7:11: /nonexistent.csv: cannot open"));
    e = ts_error("  - type: cidr\n    path: x.csv\n    target: \"a..{prefix}\"\n");
    assert_non_null(strstr(e, "target: 'a..source' is not a field name"));
}

static void test_cidr_reload(void **state)
{
    (void)state;
    const char *p = write_file("r.csv", "network,zone\n10.0.0.0/8,one\n");
    char yaml[512];
    snprintf(yaml, sizeof(yaml), "  - type: cidr\n    path: %s\n    check_interval: 20ms\n", p);
    tstage t;
    ts_open_ok(&t, 1, yaml);
    lsf_batch *b = lsf_batch_new(2);
    lsf_event *e = ev_with(b, "source.ip", "10.1.1.1", NULL);
    ts_run(&t, b, 0); /* starts the watcher */
    assert_field(e, "source.zone", "one");
    write_file("r.csv", "network,zone,owner\n10.0.0.0/8,two,ops\n");
    assert_true(wait_counter(&t, "reloads", 1));
    lsf_batch_reset(b);
    e = ev_with(b, "source.ip", "10.1.1.1", NULL);
    ts_run(&t, b, 0);
    assert_field(e, "source.zone", "two");
    assert_field(e, "source.owner", "ops"); /* a new column */
    write_file("r.csv", "network,zone\n10.0.0.0/88,three\n"); /* broken: kept */
    assert_true(wait_counter(&t, "reload_errors", 1));
    write_file("r.csv", "network,zone\n10.0.0.0/8,four\n");
    t.st->def->reopen(t.st); /* SIGHUP or the file check, whichever comes first */
    assert_true(wait_counter(&t, "reloads", 2));
    lsf_batch_reset(b);
    e = ev_with(b, "source.ip", "10.1.1.1", NULL);
    ts_run(&t, b, 0);
    assert_field(e, "source.zone", "four");
    lsf_batch_free(b);
    ts_close(&t);
}

/* ---- the lookup stage ---------------------------------------------------- */

static void test_lookup(void **state)
{
    (void)state;
    const char *p = write_file("users.csv",
                               "user.name,user.department,user.manager\n"
                               "alice,finance,carol\n"
                               "Bob,\"R&D, labs\"\n"
                               "\"\",nobody\n");
    char yaml[512];
    snprintf(yaml, sizeof(yaml), "  - type: lookup\n    path: %s\n", p);
    tstage t;
    ts_open_ok(&t, 1, yaml);
    lsf_batch *b = lsf_batch_new(8);
    lsf_event *e0 = ev_with(b, "user.name", "alice", NULL);
    lsf_event *e1 = ev_with(b, "user.name", "bob", NULL); /* case matters by default */
    lsf_event *e2 = ev_with(b, "user.name", "Bob", NULL);
    lsf_event *e3 = ev_with(b, "other", "x", NULL);
    ts_run(&t, b, 0);
    assert_field(e0, "user.department", "finance");
    assert_field(e0, "user.manager", "carol");
    assert_no_field(e1, "user.department");
    assert_field(e2, "user.department", "R&D, labs");
    assert_no_field(e2, "user.manager");
    assert_int_equal(e3->nfields, 1);
    assert_int_equal(ts_counter(&t, "matched"), 2);
    assert_int_equal(ts_counter(&t, "unmatched"), 1);
    lsf_batch_free(b);
    ts_close(&t);

    /* another field (a well-known one), ignore_case, a target prefix */
    p = write_file("hosts.csv", "host,service,tier\nWEB1,shop,front\ndb1,orders,back\n");
    snprintf(yaml, sizeof(yaml),
             "  - type: lookup\n    path: %s\n    field: host.name\n    ignore_case: true\n"
             "    target: service\n",
             p);
    ts_open_ok(&t, 1, yaml);
    b = lsf_batch_new(4);
    e0 = lsf_batch_push(b);
    e0->host = LSF_STR_LIT("web1");
    e1 = lsf_batch_push(b);
    e1->host = LSF_STR_LIT("DB1");
    ts_run(&t, b, 0);
    assert_field(e0, "service.service", "shop");
    assert_field(e0, "service.tier", "front");
    assert_field(e1, "service.service", "orders");
    lsf_batch_free(b);
    ts_close(&t);
}

static void test_lookup_many_and_reload(void **state)
{
    (void)state;
    enum { N = 5000 };
    size_t cap = N * 40 + 64, len = 0;
    char *text = malloc(cap);
    len += (size_t)snprintf(text + len, cap - len, "k,v\n");
    for (int i = 0; i < N; i++)
        len += (size_t)snprintf(text + len, cap - len, "key%d,val%d\n", i, i * 3);
    const char *p = write_file("many.csv", text);
    char yaml[512];
    snprintf(yaml, sizeof(yaml), "  - type: lookup\n    path: %s\n    check_interval: 0\n", p);
    tstage t;
    ts_open_ok(&t, 1, yaml);
    lsf_batch *b = lsf_batch_new(256);
    for (int i = 0; i < N; i += 250) {
        lsf_batch_reset(b);
        for (int j = i; j < i + 250; j++) {
            char k[32];
            snprintf(k, sizeof(k), "key%d", j);
            ev_with(b, "k", k, NULL);
        }
        ts_run(&t, b, 0);
        for (int j = 0; j < 250; j++) {
            char want[32];
            snprintf(want, sizeof(want), "val%d", (i + j) * 3);
            assert_field(&b->events[j], "v", want);
        }
    }
    write_file("many.csv", "k,v\nkey1,changed\nkey1,twice\n"); /* duplicate: kept old */
    t.st->def->reopen(t.st);
    assert_true(wait_counter(&t, "reload_errors", 1));
    write_file("many.csv", "k,v\nkey1,changed\n");
    t.st->def->reopen(t.st);
    assert_true(wait_counter(&t, "reloads", 1));
    lsf_batch_reset(b);
    lsf_event *e0 = ev_with(b, "k", "key1", NULL), *e1 = ev_with(b, "k", "key2", NULL);
    ts_run(&t, b, 0);
    assert_field(e0, "v", "changed");
    assert_no_field(e1, "v");
    lsf_batch_free(b);
    ts_close(&t);
    free(text);
}

static void test_lookup_errors(void **state)
{
    (void)state;
    static const struct {
        const char *name, *text, *want;
    } cases[] = {
        {"l1.csv", "user.name,dept\nalice,a\nalice,b\n",
         "l1.csv:3:1: key 'alice' is listed twice (first at line 2)"},
        {"l2.csv", "user.name\nalice\n", "l2.csv:1:1: the header needs a key column and"},
        {"l3.csv", "user.name,dept\nalice,a,b\n", "l3.csv:2:9: more values than the header"},
        {"l4.csv", "user name,dept\n", "l4.csv:1:1: column name 'user name' is not"},
        {"l5.csv", "", "l5.csv: empty table"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        const char *p = write_file(cases[i].name, cases[i].text);
        char yaml[512];
        snprintf(yaml, sizeof(yaml), "  - type: lookup\n    path: %s\n", p);
        const char *e = ts_error(yaml);
        if (!strstr(e, cases[i].want))
            fail_msg("%s: '%s' does not say '%s'", cases[i].name, e, cases[i].want);
    }
    const char *e = ts_error("  - type: lookup\n    path: x.csv\n    field: \"a b\"\n");
    assert_non_null(strstr(e, "field: 'a b' is not a field name"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_csv),
        cmocka_unit_test(test_index_vs_brute_force),
        cmocka_unit_test(test_cidr_parse),
        cmocka_unit_test(test_cidr_speed),
        cmocka_unit_test(test_cidr_stage_csv),
        cmocka_unit_test(test_cidr_stage_yaml),
        cmocka_unit_test(test_cidr_errors),
        cmocka_unit_test(test_cidr_reload),
        cmocka_unit_test(test_lookup),
        cmocka_unit_test(test_lookup_many_and_reload),
        cmocka_unit_test(test_lookup_errors),
    };
    return cmocka_run_group_tests(tests, setup, tmpdir_remove);
}
