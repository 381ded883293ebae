/* rules_bench.c - throughput of the rules engine as rule sets grow.
 *
 * Generates one realistic input (syslog lines of sshd, sudo, cron, UFW,
 * nginx, postfix, systemd, and "service" daemons of many names) and rule
 * packs of 10, 100 and 1,000 rules, then classifies the same input with
 * each set and prints lines/s. The 10 rules are the base set a small site
 * would run; the larger sets add rules generated from realistic templates
 * (program-pinned and generic, literal heads, typed captures) in two
 * flavours: made of words the traffic never uses, so the engine must rule
 * every one of them out (the pure cost of a bigger set), or drawn from the
 * same grammar as the traffic, so more lines find a specific rule (and the
 * engine does more extraction work). The shipped packs run on the same
 * input too, and the matching 1,000-rule set once more without the
 * prefilter, to show what the prefilter buys.
 *
 * The design choice to know: parsing is done outside the timed region (each
 * batch is re-parsed before its timed classification), so the figures are
 * the rules stage alone, one worker thread; "end to end" adds parsing.
 *
 * Times are the benchmark thread's CPU time and each set's best round; the
 * rounds interleave the sets, so a busy machine slows them alike.
 *
 * Usage: rules_bench [-n LINES] [-r ROUNDS] [-k] [-o FILE]
 *   -k keeps the generated packs, -o writes the input lines to FILE
 * Exit status: 0 when 1,000 rules that match nothing more keep >= 50% of the
 * 10-rule throughput (the cost of a bigger set itself; the matching flavour
 * adds extraction work for the extra lines it classifies and is reported).
 * Threads: single-threaded (the engine scales per worker; see engine.c).
 */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "core/log.h"
#include "parsers/parse.h"
#include "rules/rules.h"

#define BATCH 256

static unsigned long long rnd_state = 88172645463325252ull;
static unsigned rnd(unsigned n)
{
    rnd_state ^= rnd_state << 13;
    rnd_state ^= rnd_state >> 7;
    rnd_state ^= rnd_state << 17;
    return (unsigned)(rnd_state % n);
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* ---- the grammar of the traffic and of the generated rules ----------------- */

static const char *const users[] = {"root", "alice", "bob", "deploy", "admin", "oracle", "git",
                                    "www-data", "test", "ubuntu"};
static const char *const svcs[] = {
    "billingd", "authd", "gatewayd", "indexer", "mailq", "storaged", "schedd", "cached",
    "metricsd", "ldapsync", "backupd", "vpnd", "dnsmasq", "ntpd", "rsyncd", "smbd",
    "slapd", "squid", "named", "dhcpd", "radiusd", "openvpn", "keepalived", "consul",
    "nomad", "vault", "etcd", "kubelet", "containerd", "redis-server", "mysqld", "postgres",
    "mongod", "rabbitmq", "kafka", "zookeeper", "elasticsearch", "logstash", "grafana",
    "prometheus", "alertmanager", "haproxy", "varnishd", "memcached", "php-fpm", "gunicorn",
    "uwsgi", "puma", "sidekiq", "celery"};
#define NSVCS (sizeof(svcs) / sizeof(svcs[0]))
static const char *const verbs[] = {"created", "deleted", "updated", "rejected", "expired",
                                    "locked", "unlocked", "started", "stopped", "failed"};
static const char *const objects[] = {"session", "token", "lease", "job", "volume", "snapshot",
                                      "certificate", "policy", "queue", "replica", "account",
                                      "key", "tunnel", "route", "mount", "quota", "bucket",
                                      "index", "shard", "worker"};
#define NVERBS 10
#define NOBJECTS 20
static const char *const reasons[] = {"disconnected by user", "Bye Bye", "Closed due to user request.",
                                      "Normal Shutdown, Thank you for playing",
                                      "com.jcraft.jsch.JSchException: Auth fail",
                                      "No more user authentication methods available.",
                                      "Unable to authenticate", "Session closed",
                                      "Client disconnecting normally", "Too many authentication failures"};
#define NREASONS 10
static const char *const subpaths[] = {"", "/list", "/search", "/export", "/v2"};
#define NSUBPATHS 5

static void ip(char *b, size_t n) { snprintf(b, n, "%u.%u.%u.%u", 192 + rnd(20), rnd(256), rnd(256), 1 + rnd(254)); }

/* One line; about 60% from the fixed daemons, 40% service events. */
static int make_line(char *out, size_t n)
{
    char a[32], d[32];
    ip(a, sizeof(a));
    ip(d, sizeof(d));
    const char *u = users[rnd(10)];
    const char *hdr = "<38>Mar  3 10:00:01 host%u";
    char h[64];
    snprintf(h, sizeof(h), hdr, rnd(50));
    switch (rnd(20)) {
    case 0:
    case 1:
        return snprintf(out, n, "%s sshd[%u]: Failed password for %s%s from %s port %u ssh2", h,
                        1000 + rnd(9000), rnd(3) ? "" : "invalid user ", u, a, 1024 + rnd(60000));
    case 2:
        return snprintf(out, n, "%s sshd[%u]: Accepted publickey for %s from %s port %u ssh2: "
                        "ED25519 SHA256:3bq1XbVuSdI0fMQvXbQxXWz0Kz3u2p7xR5b4g5u1m8E",
                        h, 1000 + rnd(9000), u, a, 1024 + rnd(60000));
    case 3:
        return snprintf(out, n, "%s sshd[%u]: Received disconnect from %s port %u:%u: %s", h,
                        1000 + rnd(9000), a, 1024 + rnd(60000), 1 + rnd(14), reasons[rnd(NREASONS)]);
    case 4:
        return snprintf(out, n, "%s sudo[%u]:    %s : TTY=pts/%u ; PWD=/home/%s ; USER=root ; "
                        "COMMAND=/usr/bin/systemctl restart %s", h, 1000 + rnd(9000), u, rnd(9),
                        u, svcs[rnd(NSVCS)]);
    case 5:
        return snprintf(out, n, "%s CRON[%u]: (%s) CMD (/usr/local/bin/%s --quiet)", h,
                        1000 + rnd(9000), u, svcs[rnd(NSVCS)]);
    case 6:
    case 7:
        return snprintf(out, n, "<4>Mar  3 10:00:01 fw%u kernel: [%u.%06u] [UFW BLOCK] IN=eth0 "
                        "OUT= MAC=00:16:3e:aa:bb:cc:00:16:3e:dd:ee:ff:08:00 SRC=%s DST=%s LEN=60 "
                        "TOS=0x00 PREC=0x00 TTL=52 ID=%u DF PROTO=TCP SPT=%u DPT=%u WINDOW=29200 "
                        "RES=0x00 SYN URGP=0", rnd(4), rnd(99999), rnd(999999), a, d, rnd(65535),
                        1024 + rnd(60000), rnd(3) ? 22 : 3389);
    case 8:
    case 9:
    case 10: {
        static const char *const paths[] = {"/", "/index.html", "/login", "/static/app.js",
                                            "/wp-login.php", "/.env"};
        static const int codes[] = {200, 200, 200, 304, 404, 500, 502, 401};
        char path[64];
        if (rnd(2))
            snprintf(path, sizeof(path), "%s", paths[rnd(6)]);
        else
            snprintf(path, sizeof(path), "/%s%s", objects[rnd(NOBJECTS)], subpaths[rnd(NSUBPATHS)]);
        return snprintf(out, n, "<190>Mar  3 10:00:01 web%u nginx: %s - - [03/Mar/2024:10:00:01 "
                        "+0000] \"GET %s HTTP/1.1\" %d %u \"-\" \"Mozilla/5.0 (X11; Linux x86_64)\"",
                        rnd(8), a, path, codes[rnd(8)], rnd(20000));
    }
    case 11:
        return snprintf(out, n, "<22>Mar  3 10:00:01 mx%u postfix/smtpd[%u]: NOQUEUE: reject: RCPT "
                        "from unknown[%s]: 554 5.7.1 <%s@example.org>: Relay access denied; "
                        "from=<x@example.net> to=<%s@example.org> proto=ESMTP helo=<spam>",
                        rnd(3), 1000 + rnd(9000), a, u, u);
    case 12:
        return snprintf(out, n, "<30>Mar  3 10:00:01 %s systemd[1]: %s.service: Deactivated "
                        "successfully.", h + 20, svcs[rnd(NSVCS)]);
    default: /* service events: "<svc>[pid]: <verb> <object> id=N user=U from IP" */
        return snprintf(out, n, "<30>Mar  3 10:00:01 app%u %s[%u]: %s %s id=%u user=%s from %s "
                        "took %ums", rnd(20), svcs[rnd(NSVCS)], 100 + rnd(30000),
                        verbs[rnd(NVERBS)], objects[rnd(NOBJECTS)], rnd(1000000), u, a, rnd(5000));
    }
}

/* The 10 base rules. */
static const char base_rules[] =
    "  - id: base.ssh_failed\n"
    "    when: {process.name: sshd}\n"
    "    match: '^Failed (?<ssh.method>\\S+) for (?:invalid user )?%{USER:user.name} from %{IP:source.ip} port %{INT:source.port:int}'\n"
    "    severity: medium\n"
    "    tags: [authentication, attack.t1110]\n"
    "  - id: base.ssh_accepted\n"
    "    when: {process.name: sshd}\n"
    "    match: '^Accepted (?<ssh.method>\\S+) for %{USER:user.name} from %{IP:source.ip} port %{INT:source.port:int}'\n"
    "  - id: base.sudo\n"
    "    when: {process.name: sudo}\n"
    "    match: '^\\s*(?<user.name>\\S+) : TTY=(?<process.tty>\\S+) ; PWD=(?<process.working_directory>.*?) ; USER=(?<user.effective.name>\\S+) ; COMMAND=(?<process.command_line>.*)$'\n"
    "  - id: base.cron\n"
    "    when: {process.name: [CRON, crond]}\n"
    "    match: '^\\((?<user.name>[^)]+)\\) CMD \\((?<process.command_line>.*)\\)$'\n"
    "  - id: base.ufw_block\n"
    "    when: {process.name: kernel}\n"
    "    match: '\\[UFW BLOCK\\] IN=(?<observer.ingress.interface.name>\\S*) .*?SRC=%{IP:source.ip} DST=%{IP:destination.ip} .*?PROTO=(?<network.transport>\\w+)(?: SPT=%{INT:source.port:int} DPT=%{INT:destination.port:int})?'\n"
    "  - id: base.web_error\n"
    "    when: {process.name: nginx}\n"
    "    match: '^%{IP:source.ip} \\S+ \\S+ \\[[^\\]]+\\] \"(?<http.request.method>[A-Z]+) (?<url.original>\\S+) [^\"]*\" (?<http.response.status_code:int>5\\d\\d) '\n"
    "  - id: base.web_probe\n"
    "    when: {process.name: nginx}\n"
    "    priority: 5\n"
    "    match: '\"[A-Z]+ /(?:wp-login\\.php|\\.env|phpmyadmin)'\n"
    "  - id: base.relay_denied\n"
    "    when: {process.name: postfix/smtpd}\n"
    "    match: '^NOQUEUE: reject: RCPT from (?<source.domain>[^\\[]+)\\[%{IP:source.ip}\\]: \\d{3} [\\d.]+ <[^>]*>: Relay access denied'\n"
    "  - id: base.unit_done\n"
    "    when: {process.name: systemd}\n"
    "    match: '^(?<systemd.unit>\\S+\\.service): Deactivated successfully'\n"
    "  - id: base.generic_failure\n"
    "    match: '\\b(?:failed|FAILED) (?<object>\\w+) id=%{INT:object.id:int}'\n";

/* Words the traffic never uses: rules made of them must be ruled out. */
static const char *const verbs_x[] = {"migrated", "throttled", "rebalanced", "quarantined",
                                      "promoted", "demoted", "archived", "restored", "revoked",
                                      "renewed"};
static const char *const objects_x[] = {"partition", "segment", "tenant", "namespace", "pool",
                                        "zone", "cluster", "node", "endpoint", "gateway",
                                        "listener", "channel", "stream", "topic", "ledger",
                                        "vault", "cohort", "region", "fleet", "ring"};
static const char *const reasons_x[] = {"Protocol error", "Connection lost", "Host key mismatch",
                                        "Illegal packet", "Service not available",
                                        "MAC error", "Compression error", "Key exchange failed",
                                        "Too many connections", "Idle timeout"};

/* Writes DIR/bench<N>[x]/bench.yaml: the base rules and N-10 generated ones;
 * with `ruled_out` the generated ones use words the traffic never has (so
 * they match no line and the engine must rule them all out). */
static int write_pack(const char *dir, int nrules, bool ruled_out)
{
    const char *const *vb = ruled_out ? verbs_x : verbs, *const *ob = ruled_out ? objects_x : objects;
    const char *const *rb = ruled_out ? reasons_x : reasons;
    char path[512];
    snprintf(path, sizeof(path), "%s/bench%d%s", dir, nrules, ruled_out ? "x" : "");
    if (mkdir(path, 0755) < 0)
        return -1;
    snprintf(path, sizeof(path), "%s/bench%d%s/bench.yaml", dir, nrules, ruled_out ? "x" : "");
    FILE *f = fopen(path, "w");
    if (!f)
        return -1;
    fprintf(f, "pack: bench\nrules:\n%s", base_rules);
    /* templates: program-pinned service events (most), generic ones, and
     * sshd/nginx variants, in a fixed pseudo-random order */
    unsigned long long saved = rnd_state;
    rnd_state = 0x243F6A8885A308D3ull;
    char (*seen)[320] = calloc((size_t)nrules, sizeof(*seen)); /* no two rules alike */
    for (int i = 10; i < nrules; i++) {
        char rule[320];
        int tries = 0;
        do {
            const char *verb = vb[rnd(NVERBS)], *obj = ob[rnd(NOBJECTS)];
            switch (rnd(10)) {
            case 0: /* generic: a verb-object event from any program */
                snprintf(rule, sizeof(rule),
                         "    match: '^%s %s id=%%{INT:event.id:int} user=%%{USER:user.name} from "
                         "%%{IP:source.ip}(?: took %%{INT:event.duration_ms:int}ms)?'\n", verb, obj);
                break;
            case 1: /* sshd: one disconnect code and reason */
                snprintf(rule, sizeof(rule),
                         "    when: {process.name: sshd}\n"
                         "    match: '^Received disconnect from %%{IP:source.ip} port "
                         "%%{INT:source.port:int}:%d: %s'\n", 1 + (int)rnd(14), rb[rnd(NREASONS)]);
                break;
            case 2: /* web: a status for one path */
                snprintf(rule, sizeof(rule),
                         "    when: {process.name: nginx}\n"
                         "    match: '\"GET /%s%s(?:\\?\\S*)? HTTP/1\\.1\" "
                         "(?<http.response.status_code:int>%d) '\n",
                         obj, subpaths[rnd(NSUBPATHS)], (int[]){200, 304, 404, 401, 500, 502}[rnd(6)]);
                break;
            default: /* program-pinned service event */
                snprintf(rule, sizeof(rule),
                         "    when: {process.name: %s}\n"
                         "    match: '^%s %s id=%%{INT:event.id:int} user=%%{USER:user.name} from "
                         "%%{IP:source.ip} took %%{INT:event.duration_ms:int}ms$'\n",
                         svcs[rnd(NSVCS)], verb, obj);
            }
            bool dup = false;
            for (int k = 10; k < i && !dup; k++)
                dup = strcmp(seen[k], rule) == 0;
            if (!dup)
                break;
        } while (++tries < 100);
        memcpy(seen[i], rule, sizeof(rule));
        fprintf(f, "  - id: bench.gen%04d\n%s    severity: %s\n", i, rule,
                rnd(2) ? "low" : "info");
    }
    free(seen);
    rnd_state = saved;
    fclose(f);
    return 0;
}

/* Thread CPU time: other processes on the machine do not inflate it. */
static double cpu_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

typedef struct bset {
    const char *name;
    char path[512];
    bool no_prefilter;
    lsf_ruleset *rs;
    double load_ms;
    double best_rules_s, best_total_s; /* the best round */
    size_t matched;
} bset;

static int load_set(bset *s)
{
    lsf_rules_opts o = {.nworkers = 1, .quiet = true, .no_prefilter = s->no_prefilter};
    lsf_errbuf err = {{0}};
    const char *p = s->path;
    double t0 = now_s();
    s->rs = lsf_ruleset_load(&p, 1, &o, &err);
    s->load_ms = (now_s() - t0) * 1000;
    if (!s->rs)
        fprintf(stderr, "%s\n", err.msg);
    return s->rs ? 0 : -1;
}

/* One pass of every line through a set: parse (untimed part), classify. */
static void one_round(bset *s, lsf_batch *b, char **lines, size_t nlines, size_t limit)
{
    lsf_parse_opts po = {.tz_mode = LSF_TZ_UTC};
    double rules_s = 0, parse_s = 0;
    size_t matched = 0;
    if (limit && limit < nlines)
        nlines = limit;
    for (size_t i = 0; i < nlines; i += BATCH) {
        lsf_batch_reset(b);
        size_t end = i + BATCH < nlines ? i + BATCH : nlines;
        double t0 = cpu_s();
        for (size_t k = i; k < end; k++) {
            lsf_event *ev = lsf_batch_push_record(b, lines[k], strlen(lines[k]), 1);
            lsf_parse_event(b, ev, &po);
        }
        double t1 = cpu_s();
        for (uint32_t k = 0; k < b->n; k++)
            matched += lsf_ruleset_apply(s->rs, b, &b->events[k], 0) >= 0;
        double t2 = cpu_s();
        parse_s += t1 - t0;
        rules_s += t2 - t1;
    }
    double per_line = rules_s / (double)nlines, total = (rules_s + parse_s) / (double)nlines;
    if (!s->best_rules_s || per_line < s->best_rules_s)
        s->best_rules_s = per_line;
    if (!s->best_total_s || total < s->best_total_s)
        s->best_total_s = total;
    s->matched = matched * 1000 / nlines; /* per mille */
}

static void report(const bset *s)
{
    printf("%-28s %5zu rules %11.0f lines/s %11.0f lines/s %6.1f%% %8.0f ms\n", s->name,
           lsf_ruleset_nrules(s->rs), 1.0 / s->best_rules_s, 1.0 / s->best_total_s,
           (double)s->matched / 10.0, s->load_ms);
    if (getenv("RULES_BENCH_STATS")) { /* where the time goes, per rule */
        uint64_t evals = 0, ns = 0, lines = 0;
        for (size_t i = 0; i < lsf_ruleset_nrules(s->rs); i++) {
            lsf_rule_stats st;
            lsf_ruleset_stats(s->rs, i, &st);
            evals += st.evals;
            ns += st.ns;
            lines += st.matches;
        }
        printf("    %llu regex evaluations, %.1f ms of regex time (sampled)\n",
               (unsigned long long)evals, (double)ns / 1e6);
    }
}

int main(int argc, char **argv)
{
    size_t nlines = 200000;
    int rounds = 5, opt;
    bool keep = false;
    const char *dump = NULL;
    while ((opt = getopt(argc, argv, "n:r:ko:")) != -1) {
        if (opt == 'n')
            nlines = (size_t)strtoul(optarg, NULL, 10);
        else if (opt == 'r')
            rounds = atoi(optarg);
        else if (opt == 'k')
            keep = true;
        else if (opt == 'o')
            dump = optarg;
        else {
            fprintf(stderr, "usage: rules_bench [-n LINES] [-r ROUNDS] [-k] [-o LINES_FILE]\n");
            return 2;
        }
    }
    lsf_log_threshold = LSF_LOG_ERROR;
    char dir[] = "/tmp/lsf-rules-bench-XXXXXX";
    if (!mkdtemp(dir) || write_pack(dir, 10, false) < 0 || write_pack(dir, 100, true) < 0 ||
        write_pack(dir, 1000, true) < 0 || write_pack(dir, 100, false) < 0 ||
        write_pack(dir, 1000, false) < 0) {
        perror("rules_bench: writing packs");
        return 1;
    }
    char **lines = malloc(nlines * sizeof(char *));
    size_t bytes = 0;
    for (size_t i = 0; i < nlines; i++) {
        char buf[1024];
        int n = make_line(buf, sizeof(buf));
        lines[i] = strndup(buf, (size_t)n);
        bytes += (size_t)n;
    }
    if (dump) { /* the input, for running it through `logsift parse -r` */
        FILE *f = fopen(dump, "w");
        for (size_t i = 0; f && i < nlines; i++)
            fprintf(f, "%s\n", lines[i]);
        if (!f || fclose(f) != 0)
            perror(dump);
    }
    printf("input: %zu lines (%.1f MB), best of %d rounds, one thread, CPU time\n", nlines,
           (double)bytes / 1e6, rounds);
    printf("%-28s %11s %19s %19s %7s %11s\n", "rule set", "", "rules stage", "parse+rules",
           "matched", "compile");
    bset sets[8];
    int nsets = 0;
    memset(sets, 0, sizeof(sets));
    static const char *const dirs[] = {"bench10", "bench100x", "bench1000x", "bench100",
                                       "bench1000"};
    static const char *const names[] = {"base, 10 rules", "+90 ruled out", "+990 ruled out",
                                        "+90 matching", "+990 matching"};
    const char *only = getenv("RULES_BENCH_ONLY"); /* profiling: one set (a dir name) */
    for (int k = 0; k < 5; k++) {
        if (only && strcmp(only, dirs[k]) != 0)
            continue;
        sets[nsets].name = names[k];
        snprintf(sets[nsets].path, sizeof(sets[nsets].path), "%s/%s", dir, dirs[k]);
        nsets++;
    }
    if (!only) {
        sets[nsets].name = "+990 matching, no prefilter";
        snprintf(sets[nsets].path, sizeof(sets[nsets].path), "%s/bench1000", dir);
        sets[nsets++].no_prefilter = true;
        if (access("rules/packs", R_OK) == 0) {
            sets[nsets].name = "shipped rules/packs";
            snprintf(sets[nsets].path, sizeof(sets[nsets].path), "rules/packs");
            nsets++;
        }
    }
    for (int k = 0; k < nsets; k++)
        if (load_set(&sets[k]) < 0)
            return 1;
    lsf_batch *b = lsf_batch_new(BATCH);
    /* rounds interleave the sets, so drifting machine load hits all alike;
     * the slow no-prefilter run sees a tenth of the lines */
    for (int r = 0; r < rounds; r++)
        for (int k = 0; k < nsets; k++)
            one_round(&sets[k], b, lines, nlines, sets[k].no_prefilter ? nlines / 10 : 0);
    for (int k = 0; k < nsets; k++)
        report(&sets[k]);
    lsf_batch_free(b);
    int rc = 0;
    if (!only) {
        double x100 = sets[0].best_rules_s / sets[1].best_rules_s;
        double x1000 = sets[0].best_rules_s / sets[2].best_rules_s;
        double m100 = sets[0].best_rules_s / sets[3].best_rules_s;
        double m1000 = sets[0].best_rules_s / sets[4].best_rules_s;
        printf("throughput kept against 10 rules: 100 rules %.0f%% / 1,000 rules %.0f%% when the "
               "extra rules match nothing; %.0f%% / %.0f%% when they classify more lines; goal "
               ">= 50%% at 1,000\n", 100 * x100, 100 * x1000, 100 * m100, 100 * m1000);
        rc = x1000 >= 0.5 ? 0 : 3; /* the scaling cost proper: same lines matched */
    }
    for (int k = 0; k < nsets; k++)
        lsf_ruleset_unref(sets[k].rs);
    if (!keep) {
        char cmd[128];
        snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
        if (system(cmd) != 0)
            fprintf(stderr, "rules_bench: could not remove %s\n", dir);
    } else {
        printf("packs kept in %s\n", dir);
    }
    for (size_t i = 0; i < nlines; i++)
        free(lines[i]);
    free(lines);
    return rc;
}
