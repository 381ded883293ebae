/* anomaly_bench.c - what anomaly scoring costs, in two figures:
 *
 *  1. the template miner: lines/s of lsf_miner_add on one core over the 16
 *     Loghub 2k samples' messages ($LSF_SHARED/datasets/loghub, the Content
 *     column), repeated; a fresh miner per round, so each round includes
 *     learning the templates once (32,000 lines) and then matching.
 *  2. the anomaly stage on the worker path: lines/s of parse -> JSON with
 *     and without the stage, four detectors (rate, numeric, new_value,
 *     rare_template), each keyed by host.name over 100,000 hosts drawn with a
 *     Zipf-like law (a few busy, a long tail), event times advancing 20,000
 *     events per second (-e). The stage is measured in its steady state: a
 *     warm-up pass over as many lines first makes every key known, as in a
 *     pipeline that has been running for a while.
 *
 * The design choice to know: every figure is the benchmark thread's CPU time,
 * best of the rounds, and rounds alternate between the runs with and without
 * the stage, so a busy machine slows both alike. Each round builds the stage
 * anew (cold keys, as a fresh process), and batches carry increasing
 * sequence numbers as the pipeline gives them (the stage takes its shard
 * tickets in that order).
 *
 * With -f FILE the stage's traffic is instead a file of gen.c's syslog lines
 * (--mix app): its first half is the warm-up, its second half is measured,
 * with the detectors on gen.c's field names, so the figure is the in-process
 * twin of benchmarks/stagecost.py --stage anomaly --warm.
 *
 * Usage: anomaly_bench [-n LINES] [-r ROUNDS] [-k KEYS] [-t REPEAT] [-e EVENTS_PER_S]
 *                      [-d DETECTOR] [-f GEN_TRAFFIC]
 * The stage's 70% target is the daemon's, end to end (TCP in, JSON file out:
 * benchmarks/stagecost.py); the share printed here is of the worker path
 * alone, a harder ratio, reported to follow the stage's own cost.
 * Exit status: 0 when the miner reaches 1,000,000 lines/s; 1 otherwise; 2 on
 * a setup error.
 * Threads: single-threaded.
 */
#include <errno.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "anomaly/hash.h"
#include "anomaly/template.h"
#include "core/config.h"
#include "core/log.h"
#include "core/metrics.h"
#include "core/pipeline.h"
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
    fprintf(stderr, "anomaly_bench: %s: %s\n", what, msg);
    exit(2);
}

typedef struct lines {
    char **v;
    size_t *n;
    size_t count, cap;
} lines;

static void push(lines *L, const char *s, size_t n)
{
    if (L->count == L->cap) {
        L->cap = L->cap ? L->cap * 2 : 4096;
        L->v = realloc(L->v, L->cap * sizeof(char *));
        L->n = realloc(L->n, L->cap * sizeof(size_t));
        if (!L->v || !L->n)
            die("input", "out of memory");
    }
    L->v[L->count] = malloc(n + 1);
    if (!L->v[L->count])
        die("input", "out of memory");
    memcpy(L->v[L->count], s, n);
    L->v[L->count][n] = 0;
    L->n[L->count++] = n;
}

/* ---- 1. the template miner -------------------------------------------------- */

/* Reads one RFC 4180 field starting at *p (quotes, doubled quotes) into out. */
static size_t csv_field(const char **p, char *out, size_t cap)
{
    const char *s = *p;
    size_t o = 0;
    if (*s == '"') {
        s++;
        while (*s && !(*s == '"' && s[1] != '"')) {
            if (*s == '"')
                s++;
            if (o + 1 < cap)
                out[o++] = *s;
            s++;
        }
        if (*s == '"')
            s++;
    } else
        while (*s && *s != ',' && *s != '\n' && *s != '\r') {
            if (o + 1 < cap)
                out[o++] = *s;
            s++;
        }
    if (*s == ',')
        s++;
    *p = s;
    out[o] = 0;
    return o;
}

static size_t load_loghub(const char *dir, lines *L)
{
    static const char *const sys[] = {"HDFS",  "Hadoop",    "Spark",     "Zookeeper", "BGL",
                                      "HPC",   "Thunderbird", "Windows", "Linux",     "Android",
                                      "HealthApp", "Apache", "Proxifier", "OpenSSH", "OpenStack",
                                      "Mac"};
    char path[4096], *line = NULL, field[65536];
    size_t cap = 0, systems = 0;
    for (size_t i = 0; i < sizeof(sys) / sizeof(sys[0]); i++) {
        snprintf(path, sizeof(path), "%s/%s/%s_2k.log_structured.csv", dir, sys[i], sys[i]);
        FILE *f = fopen(path, "r");
        if (!f)
            continue;
        systems++;
        int content = -1;
        ssize_t n;
        while ((n = getline(&line, &cap, f)) > 0) {
            const char *p = line;
            for (int col = 0; *p && *p != '\n'; col++) {
                size_t len = csv_field(&p, field, sizeof(field));
                if (content < 0 && strcmp(field, "Content") == 0) {
                    content = col;
                    break;
                }
                if (col == content) {
                    push(L, field, len);
                    break;
                }
            }
        }
        fclose(f);
    }
    free(line);
    return systems;
}

static double miner_round(const lines *L, int repeat, uint64_t *templates)
{
    lsf_miner *m = lsf_miner_new(NULL);
    lsf_template_match tm;
    uint64_t sink = 0;
    double t0 = cpu_s();
    for (int r = 0; r < repeat; r++)
        for (size_t i = 0; i < L->count; i++) {
            lsf_miner_add(m, L->v[i], L->n[i], &tm);
            sink += tm.id;
        }
    double secs = cpu_s() - t0;
    uint64_t created, evicted;
    lsf_miner_stats(m, templates, &created, &evicted);
    lsf_miner_free(m);
    if (sink == 42)
        fprintf(stderr, " ");
    return secs;
}

/* ---- 2. the stage on the worker path ------------------------------------------ */

static uint64_t rng = 0x853c49e6748fea9bULL;
static double unif(void)
{
    rng += 0x9e3779b97f4a7c15ULL;
    return (double)(lsf_mix64(rng) >> 11) / 9007199254740992.0;
}

/* JSON lines: host (Zipf-like over `keys`), service, duration, user, message;
 * event times start at second `t0` and advance `eps` events per second. */
static void make_traffic(lines *L, long n, long keys, long t0, long eps)
{
    static const char *const msgs[] = {
        "GET /api/v1/items/%d 200 in %d ms", "user %s logged in from 10.%d.%d.7",
        "cache miss for key item:%d (%d bytes)", "job %d finished after %d s",
        "connection reset by peer 192.168.%d.%d", "disk usage at %d%% on /dev/sda%d"};
    static const char *const users[] = {"alice", "bob", "carol", "dave", "erin", "frank"};
    char buf[512], msg[200];
    for (long i = 0; i < n; i++) {
        long h = (long)floor(pow((double)keys + 1, unif())) - 1; /* log-uniform: Zipf s = 1 */
        if (h >= keys)
            h = keys - 1;
        int k = (int)(unif() * 6), a = (int)(unif() * 250), b = (int)(unif() * 900);
        if (k == 1)
            snprintf(msg, sizeof(msg), msgs[k], users[a % 6], a, b % 250);
        else
            snprintf(msg, sizeof(msg), msgs[k], a, b);
        long sec = t0 + i / eps;
        int len = snprintf(buf, sizeof(buf),
                           "{\"@timestamp\":\"%ld\",\"host\":{\"name\":\"host%06ld\"},"
                           "\"service\":\"svc%d\",\"duration\":%.1f,\"user\":{\"name\":\"%s\"},"
                           "\"message\":\"%s\"}",
                           sec, h, a % 20, 5 + 50 * unif(), users[(h + b / 300) % 6], msg);
        push(L, buf, (size_t)len);
    }
}

typedef struct run {
    lsf_node *root;
    lsf_pipeline *p;
    lsf_stage *anomaly;
} run;

static const char *only; /* -d: one detector of the four (to see what each costs) */
static bool from_file;   /* -f: gen.c's syslog traffic, whose fields have other names */

/* -f FILE: the first half of the file's lines is the warm-up, the second
 * half the measured pass (gen.c --mix app: its event times continue). */
static void load_traffic(const char *path, lines *warm, lines *tr)
{
    FILE *f = fopen(path, "r");
    if (!f)
        die(path, strerror(errno));
    lines all = {0};
    char *line = NULL;
    size_t cap = 0;
    ssize_t n;
    while ((n = getline(&line, &cap, f)) > 0)
        push(&all, line, (size_t)(line[n - 1] == '\n' ? n - 1 : n));
    free(line);
    fclose(f);
    if (all.count < 2)
        die(path, "fewer than two lines");
    for (size_t i = 0; i < all.count; i++) {
        push(i < all.count / 2 ? warm : tr, all.v[i], all.n[i]);
        free(all.v[i]);
    }
    free(all.v);
    free(all.n);
}

static void run_open(run *r, bool with)
{
    static const char *const dets[] = {
        "      - {name: rate, type: rate, by: [host.name], interval: 1m}\n",
        "      - {name: latency, type: numeric, by: [host.name], field: duration}\n",
        "      - {name: users, type: new_value, by: [host.name], field: user.name}\n",
        "      - {name: messages, type: rare_template, by: [host.name]}\n"};
    static const char *const gen_dets[] = {
        "      - {name: rate, type: rate, by: [host.name], interval: 1m}\n",
        "      - {name: latency, type: numeric, by: [host.name], field: duration_ms}\n",
        "      - {name: users, type: new_value, by: [host.name], field: user_id}\n",
        "      - {name: messages, type: rare_template, by: [host.name]}\n"};
    const char *const *d = from_file ? gen_dets : dets;
    char yaml[2048];
    int k = snprintf(yaml, sizeof(yaml),
                     "workers: 1\nlog_level: warn\ninputs: [{type: stdin, format: json}]\n"
                     "sinks: [{type: stdout}]\ntransforms:\n"
                     "  - type: anomaly\n    snapshot: \"\"\n    detectors:\n");
    for (int i = 0; i < 4; i++)
        if (!only || strstr(d[i], only))
            k += snprintf(yaml + k, sizeof(yaml) - (size_t)k, "%s", d[i]);
    lsf_errbuf err;
    if (!(r->root = lsf_yaml_load_string("bench.yaml", yaml, &err)) ||
        !(r->p = lsf_pipeline_new(r->root, &err)) || lsf_pipeline_check(r->p, &err) < 0)
        die("pipeline", err.msg);
    int n;
    lsf_stage **t = lsf_pipeline_stages(r->p, LSF_STAGE_TRANSFORM, &n);
    r->anomaly = with ? t[0] : NULL;
}

static void run_close(run *r)
{
    lsf_pipeline_free(r->p);
    lsf_node_free(r->root);
}

/* The stage on one batch of the measured pass: its own function, so a
 * profiler can collect the steady state alone (valgrind --tool=callgrind
 * --toggle-collect=measured_batch). */
__attribute__((noinline)) static void measured_batch(run *r, lsf_batch *b)
{
    r->anomaly->def->process(r->anomaly, b, 0);
    __asm__ volatile("" ::: "memory");
}

/* When the lines arrive: now, after their event times (the stage does not
 * believe an event time far ahead of its arrival, and would then score on
 * arrival times that never leave one interval). */
static int64_t arrival_ns;

/* Parse, optionally anomaly, JSON: CPU seconds for every line once. */
static double pass(run *r, const lines *L, lsf_batch *b, lsf_outbuf *o, double *stage_s,
                   uint64_t *seqp, bool measured)
{
    lsf_parse_opts po = {.tz_mode = LSF_TZ_UTC, .body_json = from_file};
    uint64_t seq = *seqp;
    *stage_s = 0;
    double t0 = cpu_s();
    for (size_t i = 0; i < L->count;) {
        lsf_batch_reset(b);
        b->seq = seq++;
        for (; i < L->count && b->n < BATCH; i++) {
            lsf_event *ev = lsf_batch_push_record(b, L->v[i], L->n[i], arrival_ns);
            lsf_parse_event(b, ev, &po);
        }
        if (r->anomaly) {
            double t1 = cpu_s();
            if (measured)
                measured_batch(r, b);
            else
                r->anomaly->def->process(r->anomaly, b, 0);
            *stage_s += cpu_s() - t1;
        }
        lsf_json_write_batch(o, b);
    }
    *seqp = seq;
    return cpu_s() - t0;
}

static uint64_t counter(const char *name, const char *what)
{
    return lsf_counter_get(lsf_counter_new(name, what));
}

int main(int argc, char **argv)
{
    long nlines = 1000000, keys = 100000, eps = 20000;
    int rounds = 3, repeat = 20, opt;
    const char *traffic = NULL;
    while ((opt = getopt(argc, argv, "n:r:k:t:e:d:f:")) != -1) {
        if (opt == 'n')
            nlines = atol(optarg);
        else if (opt == 'r')
            rounds = atoi(optarg);
        else if (opt == 'k')
            keys = atol(optarg);
        else if (opt == 't')
            repeat = atoi(optarg);
        else if (opt == 'e')
            eps = atol(optarg);
        else if (opt == 'd')
            only = optarg;
        else if (opt == 'f')
            traffic = optarg;
        else {
            fprintf(stderr, "usage: anomaly_bench [-n LINES] [-r ROUNDS] [-k KEYS] [-t REPEAT] "
                            "[-e EVENTS_PER_S] [-d DETECTOR] [-f GEN_TRAFFIC]\n");
            return 2;
        }
    }
    if (nlines < 1 || rounds < 1 || keys < 1 || repeat < 1 || eps < 1)
        die("arguments", "must be positive");
    lsf_log_threshold = LSF_LOG_WARN;
    int rc = 0;
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    arrival_ns = (int64_t)now.tv_sec * 1000000000LL + now.tv_nsec;

    /* 1. miner */
    const char *shared = getenv("LSF_SHARED");
    char dir[4096];
    snprintf(dir, sizeof(dir), "%s/datasets/loghub", shared ? shared : "../shared");
    lines lh = {0};
    size_t systems = load_loghub(dir, &lh);
    if (!systems) {
        printf("template miner: SKIPPED, no Loghub samples in %s (set LSF_SHARED)\n", dir);
    } else {
        double best = INFINITY;
        uint64_t templates = 0;
        for (int r = 0; r < rounds; r++) {
            double s = miner_round(&lh, repeat, &templates);
            best = s < best ? s : best;
        }
        double lps = (double)lh.count * repeat / best;
        printf("template miner: %zu systems, %zu messages x %d = %zu lines, %llu templates\n",
               systems, lh.count, repeat, lh.count * (size_t)repeat,
               (unsigned long long)templates);
        printf("  %.0f lines/s on one core (best of %d rounds, %.3f s CPU)  target 1,000,000: %s\n",
               lps, rounds, best, lps >= 1e6 ? "met" : "MISSED");
        if (lps < 1e6)
            rc = 1;
    }

    /* 2. the stage */
    lines warm = {0}, tr = {0};
    from_file = traffic != NULL;
    if (traffic) {
        load_traffic(traffic, &warm, &tr);
        nlines = (long)tr.count;
    } else {
        make_traffic(&warm, nlines, keys, 1700000000, eps);
        make_traffic(&tr, nlines, keys, 1700000000 + nlines / eps + 1, eps);
    }
    lsf_batch *b = lsf_batch_new(BATCH);
    lsf_outbuf o;
    lsf_outbuf_init(&o);
    double best_without = INFINITY, best_with = INFINITY, best_stage = INFINITY;
    uint64_t annotated = 0, new_keys = 0;
    for (int r = 0; r < rounds; r++)
        for (int k = 0; k < 2; k++) {
            bool with = (k + r) % 2 == 1;
            run R;
            run_open(&R, with);
            double stage_s;
            uint64_t seq = 0;
            pass(&R, &warm, b, &o, &stage_s, &seq, false); /* every key known: the steady state */
            double s = pass(&R, &tr, b, &o, &stage_s, &seq, true);
            if (with) {
                best_with = s < best_with ? s : best_with;
                best_stage = stage_s < best_stage ? stage_s : best_stage;
                annotated = counter(R.anomaly->name, "annotated");
                char det[128];
                snprintf(det, sizeof(det), "%s.%s", R.anomaly->name,
                         only && !strstr("type: rate", only) ? only : "rate");
                new_keys = counter(det, "new_keys");
            } else
                best_without = s < best_without ? s : best_without;
            run_close(&R);
        }
    double lw = (double)nlines / best_without, la = (double)nlines / best_with;
    double ratio = la / lw;
    if (traffic)
        printf("anomaly stage: the second %ld lines of %s after the first as warm-up "
               "(%llu keys per detector), %s\n",
               nlines, traffic, (unsigned long long)new_keys / (unsigned long long)rounds,
               only ? only : "4 detectors");
    else
        printf("anomaly stage: %ld JSON lines after %ld of warm-up, %ld hosts (%llu keys per "
               "detector), %s, %ld events per second of event time\n",
               nlines, nlines, keys, (unsigned long long)new_keys / (unsigned long long)rounds,
               only ? only : "4 detectors", eps);
    printf("  parse -> JSON:           %10.0f lines/s\n", lw);
    printf("  parse -> anomaly -> JSON: %9.0f lines/s  (the stage alone: %.0f lines/s, "
           "%.2f us/line; %llu events annotated per pass)\n",
           la, (double)nlines / best_stage, 1e6 * best_stage / (double)nlines,
           (unsigned long long)annotated / (unsigned long long)rounds);
    printf("  kept %.0f%% of the worker path's throughput without it (in process; the 70%% "
           "target is end to end: benchmarks/stagecost.py)\n", 100 * ratio);
    lsf_outbuf_deinit(&o);
    lsf_batch_free(b);
    for (size_t i = 0; i < tr.count; i++)
        free(tr.v[i]);
    for (size_t i = 0; i < warm.count; i++)
        free(warm.v[i]);
    free(warm.v);
    free(warm.n);
    for (size_t i = 0; i < lh.count; i++)
        free(lh.v[i]);
    free(tr.v);
    free(tr.n);
    free(lh.v);
    free(lh.n);
    lsf_metrics_free();
    return rc;
}
