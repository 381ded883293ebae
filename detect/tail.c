/* tail.c - `logsift tail`: follows alerts for a person at a terminal, from
 * an alerts file (like tail -F) or a Kafka alerts topic.
 *
 *   logsift tail [FILE] [--brokers B --topic T] [--from-beginning] [--json]
 *                [--severity S] [--id ID] [--where FIELD=VALUE]... [--max N]
 *
 * The one design choice to know: both sources yield JSON lines and go
 * through one path (parse, filter, print), so a file and a topic look the
 * same; lines that are not alerts (event.kind other than alert/signal) are
 * skipped, which lets `tail` follow a mixed events file too. The file is
 * polled (every 200 ms) rather than watched, which works the same on every
 * filesystem and follows renames (logrotate: the new file is read from its
 * start once the old one stops growing) and truncation.
 *
 * Threads: the main thread only; librdkafka runs its own.
 */
#include <errno.h>
#include <fcntl.h>
#include <fnmatch.h>
#include <getopt.h>
#include <jansson.h>
#include <librdkafka/rdkafka.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "detect/detect.h"
#include "rules/rules_int.h"

#define MAX_WHERE 16

typedef struct tail_opts {
    const char *file, *brokers, *topic;
    bool from_beginning, json, color;
    int min_severity;
    const char *id;
    const char *where_field[MAX_WHERE], *where_value[MAX_WHERE];
    int nwhere;
    long max;
    long shown;
} tail_opts;

static volatile sig_atomic_t stop_tail;

static void on_signal(int sig)
{
    (void)sig;
    stop_tail = 1;
}

static void usage(FILE *f)
{
    fprintf(f, "usage: logsift tail [FILE] [--brokers HOST:PORT,... --topic TOPIC]\n"
               "                    [--from-beginning] [--json] [--severity LEVEL] [--id ID]\n"
               "                    [--where FIELD=VALUE]... [--max N]\n"
               "Follows alerts: from FILE (default alerts.jsonl) like tail -F, or from a Kafka\n"
               "topic (from its end unless --from-beginning). One line per alert, coloured by\n"
               "severity on a terminal; --json prints the alerts as they are.\n"
               "  --severity LEVEL   only alerts at least this severe (info, low, medium, high,\n"
               "                     critical)\n"
               "  --id ID            only this detection (shell pattern: 'ssh.*')\n"
               "  --where F=V        only alerts whose field F (dotted, e.g. source.ip) is V\n"
               "  --max N            exit after N alerts\n");
}

/* ---- reading an alert ------------------------------------------------------- */

/* A dotted path in a JSON object: nested objects ("source" -> "ip") or a
 * literal dotted key (alert.group's {"source.ip": ...}), tried both ways. */
static json_t *path_get(json_t *obj, const char *path)
{
    if (!json_is_object(obj))
        return NULL;
    json_t *v = json_object_get(obj, path);
    if (v)
        return v;
    const char *dot = strchr(path, '.');
    while (dot) {
        char head[256];
        size_t n = (size_t)(dot - path);
        if (n < sizeof(head)) {
            memcpy(head, path, n);
            head[n] = 0;
            json_t *sub = json_object_get(obj, head);
            if (sub && (v = path_get(sub, dot + 1)))
                return v;
        }
        dot = strchr(dot + 1, '.');
    }
    return NULL;
}

static const char *path_str(json_t *obj, const char *path)
{
    json_t *v = path_get(obj, path);
    return json_is_string(v) ? json_string_value(v) : NULL;
}

/* The value as text for --where (numbers and booleans as JSON writes them). */
static bool value_is(json_t *v, const char *want)
{
    if (!v)
        return false;
    if (json_is_string(v))
        return strcmp(json_string_value(v), want) == 0;
    if (json_is_object(v) || json_is_array(v))
        return false;
    char *s = json_dumps(v, JSON_ENCODE_ANY);
    bool eq = s && strcmp(s, want) == 0;
    free(s);
    return eq;
}

static int severity_of(json_t *a)
{
    json_t *v = path_get(a, "event.severity");
    if (json_is_integer(v))
        return (int)json_integer_value(v);
    const char *s = path_str(a, "rule.severity");
    return s ? lsf_severity_level_parse(s) : 0;
}

static bool wanted(const tail_opts *o, json_t *a)
{
    const char *kind = path_str(a, "event.kind");
    if (!kind || (strcmp(kind, "alert") != 0 && strcmp(kind, "signal") != 0))
        return false;
    if (o->min_severity && severity_of(a) < o->min_severity)
        return false;
    if (o->id) {
        const char *id = path_str(a, "rule.id");
        if (!id || fnmatch(o->id, id, 0) != 0)
            return false;
    }
    for (int i = 0; i < o->nwhere; i++) {
        json_t *v = path_get(a, o->where_field[i]);
        if (!v) /* a group_by field: look in alert.group too */
            v = json_object_get(path_get(a, "alert.group"), o->where_field[i]);
        if (!value_is(v, o->where_value[i]))
            return false;
    }
    return true;
}

static const char *sev_color(int sev)
{
    switch (sev) {
    case 5:
        return "\033[1;31m";
    case 4:
        return "\033[31m";
    case 3:
        return "\033[33m";
    case 2:
        return "\033[36m";
    default:
        return "\033[2m";
    }
}

/* "2026-03-03 10:00:09Z  HIGH      ssh.bruteforce  source.ip=203.0.113.9  count=20
 *  +3 suppressed  SSH brute force: 10 events (>= 10) in 1m ..." */
static void print_human(const tail_opts *o, json_t *a)
{
    const char *ts = path_str(a, "@timestamp");
    char when[32] = "-";
    if (ts && strlen(ts) >= 19)
        snprintf(when, sizeof(when), "%.10s %.8sZ", ts, ts + 11);
    int sev = severity_of(a);
    const char *sname = lsf_severity_level_name(sev);
    char upper[16] = "?";
    for (size_t i = 0; sname && i < sizeof(upper) - 1; i++) {
        upper[i] = (char)(sname[i] >= 'a' && sname[i] <= 'z' ? sname[i] - 32 : sname[i]);
        upper[i + 1] = 0;
        if (!sname[i])
            break;
    }
    const char *id = path_str(a, "rule.id");
    const char *key = path_str(a, "alert.key");
    const char *msg = path_str(a, "message");
    const char *name = path_str(a, "rule.name");
    json_t *cnt = path_get(a, "alert.count"), *sup = path_get(a, "alert.suppressed");
    /* the message without the "name: " the alert puts in front */
    if (msg && name && strncmp(msg, name, strlen(name)) == 0 && msg[strlen(name)] == ':')
        msg += strlen(name) + 2;
    printf("%s  %s%-8s%s  %s  %s", when, o->color ? sev_color(sev) : "", upper,
           o->color ? "\033[0m" : "", id ? id : "?", key ? key : "");
    if (json_is_integer(cnt))
        printf("  count=%lld", (long long)json_integer_value(cnt));
    if (json_is_integer(sup) && json_integer_value(sup) > 0)
        printf("  +%lld suppressed", (long long)json_integer_value(sup));
    if (name || msg)
        printf("  %s%s%s", name ? name : "", name && msg ? ": " : "", msg ? msg : "");
    putchar('\n');
}

/* One JSON line: filtered, printed. Returns false once --max is reached. */
static bool handle_line(tail_opts *o, const char *line, size_t len)
{
    while (len && (line[len - 1] == '\n' || line[len - 1] == '\r'))
        len--;
    if (!len)
        return true;
    json_error_t jerr;
    json_t *a = json_loadb(line, len, 0, &jerr);
    if (!a)
        return true; /* not JSON: not an alert */
    if (wanted(o, a)) {
        if (o->json)
            printf("%.*s\n", (int)len, line);
        else
            print_human(o, a);
        fflush(stdout);
        o->shown++;
    }
    json_decref(a);
    return !(o->max && o->shown >= o->max);
}

/* ---- from a file --------------------------------------------------------------- */

static void sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

typedef struct follower {
    FILE *f;
    ino_t ino;
    dev_t dev;
    char *line;
    size_t cap;
    size_t partial;   /* bytes of an unfinished last line held in `line` */
} follower;

static bool open_file(follower *fw, const char *path, bool at_end)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return false;
    struct stat st;
    if (fstat(fileno(f), &st) < 0) {
        fclose(f);
        return false;
    }
    if (at_end)
        fseeko(f, 0, SEEK_END);
    if (fw->f)
        fclose(fw->f);
    fw->f = f;
    fw->ino = st.st_ino;
    fw->dev = st.st_dev;
    fw->partial = 0;
    return true;
}

/* Reads every complete line available; false once --max is reached. */
static bool drain(tail_opts *o, follower *fw)
{
    for (;;) {
        int c = fgetc(fw->f);
        if (c == EOF) {
            clearerr(fw->f);
            return true;
        }
        if (fw->partial + 2 > fw->cap) {
            fw->cap = fw->cap ? fw->cap * 2 : 4096;
            fw->line = realloc(fw->line, fw->cap);
            if (!fw->line) {
                fprintf(stderr, "logsift tail: out of memory\n");
                exit(1);
            }
        }
        fw->line[fw->partial++] = (char)c;
        if (c == '\n') {
            size_t n = fw->partial;
            fw->partial = 0;
            if (!handle_line(o, fw->line, n))
                return false;
        }
    }
}

static int tail_file(tail_opts *o)
{
    follower fw = {0};
    bool opened = open_file(&fw, o->file, !o->from_beginning);
    if (!opened)
        fprintf(stderr, "logsift tail: waiting for %s to appear\n", o->file);
    else
        fprintf(stderr, "logsift tail: following %s from its %s\n", o->file,
                o->from_beginning ? "beginning" : "end");
    while (!stop_tail) {
        if (fw.f && !drain(o, &fw))
            break;
        sleep_ms(200);
        struct stat st;
        if (stat(o->file, &st) < 0)
            continue; /* gone for now (rotation in progress) */
        if (!fw.f) {
            open_file(&fw, o->file, false); /* appeared after we started: all of it */
            continue;
        }
        if (st.st_ino != fw.ino || st.st_dev != fw.dev) {
            if (!drain(o, &fw)) /* the rest of the old file first */
                break;
            open_file(&fw, o->file, false);
        } else if (st.st_size < ftello(fw.f)) {
            fseeko(fw.f, 0, SEEK_SET); /* truncated */
            fw.partial = 0;
        }
    }
    if (fw.f)
        fclose(fw.f);
    free(fw.line);
    return 0;
}

/* ---- from Kafka ---------------------------------------------------------------- */

static int tail_kafka(tail_opts *o)
{
    char errstr[512];
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    if (rd_kafka_conf_set(conf, "bootstrap.servers", o->brokers, errstr, sizeof(errstr)) ||
        rd_kafka_conf_set(conf, "enable.auto.commit", "false", errstr, sizeof(errstr)) ||
        rd_kafka_conf_set(conf, "group.id", "logsift-tail", errstr, sizeof(errstr)) ||
        rd_kafka_conf_set(conf, "log_level", "3", errstr, sizeof(errstr))) {
        fprintf(stderr, "logsift tail: %s\n", errstr);
        rd_kafka_conf_destroy(conf);
        return 2;
    }
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, errstr, sizeof(errstr));
    if (!rk) {
        fprintf(stderr, "logsift tail: %s\n", errstr);
        return 1;
    }
    rd_kafka_poll_set_consumer(rk);
    /* every partition of the topic, from its end (or beginning); no group
     * membership, nothing committed: tail only reads */
    const rd_kafka_metadata_t *md = NULL;
    rd_kafka_topic_t *rkt = rd_kafka_topic_new(rk, o->topic, NULL);
    rd_kafka_resp_err_t e = RD_KAFKA_RESP_ERR__TIMED_OUT;
    for (int i = 0; i < 30 && !stop_tail; i++) {
        e = rd_kafka_metadata(rk, 0, rkt, &md, 1000);
        if (!e && md->topic_cnt == 1 && !md->topics[0].err && md->topics[0].partition_cnt > 0)
            break;
        if (!e)
            rd_kafka_metadata_destroy(md);
        md = NULL;
        if (!e)
            e = RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART;
        sleep_ms(200);
    }
    rd_kafka_topic_destroy(rkt);
    int rc = 0;
    if (!md) {
        fprintf(stderr, "logsift tail: topic %s on %s: %s\n", o->topic, o->brokers,
                rd_kafka_err2str(e));
        rd_kafka_destroy(rk);
        return stop_tail ? 0 : 1;
    }
    /* "the end" is each partition's end when tail starts (asked now, not
     * left to the first fetch), so nothing produced after this line is missed */
    rd_kafka_topic_partition_list_t *parts = rd_kafka_topic_partition_list_new(4);
    int nparts = md->topics[0].partition_cnt;
    for (int p = 0; p < nparts && !rc; p++) {
        int32_t id = md->topics[0].partitions[p].id;
        int64_t lo = 0, hi = 0;
        if (!o->from_beginning &&
            (e = rd_kafka_query_watermark_offsets(rk, o->topic, id, &lo, &hi, 10000))) {
            fprintf(stderr, "logsift tail: end of %s [%d]: %s\n", o->topic, id, rd_kafka_err2str(e));
            rc = 1;
        }
        rd_kafka_topic_partition_list_add(parts, o->topic, id)->offset =
            o->from_beginning ? RD_KAFKA_OFFSET_BEGINNING : hi;
    }
    rd_kafka_metadata_destroy(md);
    if (!rc && (e = rd_kafka_assign(rk, parts))) {
        fprintf(stderr, "logsift tail: cannot read %s: %s\n", o->topic, rd_kafka_err2str(e));
        rc = 1;
    }
    if (!rc)
        fprintf(stderr, "logsift tail: following %s on %s (%d partitions) from its %s\n",
                o->topic, o->brokers, nparts, o->from_beginning ? "beginning" : "end");
    rd_kafka_topic_partition_list_destroy(parts);
    while (!rc && !stop_tail) {
        rd_kafka_message_t *m = rd_kafka_consumer_poll(rk, 200);
        if (!m)
            continue;
        bool go = true;
        if (!m->err)
            go = handle_line(o, m->payload, m->len);
        else if (m->err != RD_KAFKA_RESP_ERR__PARTITION_EOF)
            fprintf(stderr, "logsift tail: %s\n", rd_kafka_message_errstr(m));
        rd_kafka_message_destroy(m);
        if (!go)
            break;
    }
    rd_kafka_consumer_close(rk);
    rd_kafka_destroy(rk);
    return rc;
}

/* ---- the command ---------------------------------------------------------------- */

int lsf_tail_cmd(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"brokers", required_argument, NULL, 'b'},  {"topic", required_argument, NULL, 't'},
        {"from-beginning", no_argument, NULL, 'B'}, {"json", no_argument, NULL, 'j'},
        {"severity", required_argument, NULL, 's'}, {"id", required_argument, NULL, 'i'},
        {"where", required_argument, NULL, 'w'},    {"max", required_argument, NULL, 'n'},
        {"help", no_argument, NULL, 'h'},           {NULL, 0, NULL, 0}};
    tail_opts o = {0};
    const char *color = NULL;
    int opt;
    optind = 1;
    while ((opt = getopt_long(argc, argv, "b:t:Bjs:i:w:n:h", longopts, NULL)) != -1) {
        switch (opt) {
        case 'b':
            o.brokers = optarg;
            break;
        case 't':
            o.topic = optarg;
            break;
        case 'B':
            o.from_beginning = true;
            break;
        case 'j':
            o.json = true;
            break;
        case 's':
            if ((o.min_severity = lsf_severity_level_parse(optarg)) < 0) {
                fprintf(stderr, "logsift tail: --severity: info, low, medium, high or critical\n");
                return 2;
            }
            break;
        case 'i':
            o.id = optarg;
            break;
        case 'w': {
            const char *eq = strchr(optarg, '=');
            if (!eq || eq == optarg || o.nwhere == MAX_WHERE) {
                fprintf(stderr, "logsift tail: --where FIELD=VALUE (at most %d)\n", MAX_WHERE);
                return 2;
            }
            *(char *)eq = 0;
            o.where_field[o.nwhere] = optarg;
            o.where_value[o.nwhere++] = eq + 1;
            break;
        }
        case 'n':
            o.max = atol(optarg);
            break;
        case 'h':
            usage(stdout);
            return 0;
        default:
            usage(stderr);
            return 2;
        }
    }
    if (optind < argc)
        o.file = argv[optind++];
    if (optind < argc || (o.brokers && o.file) || (!o.brokers != !o.topic)) {
        usage(stderr);
        return 2;
    }
    if (!o.brokers && !o.file)
        o.file = "alerts.jsonl";
    color = getenv("NO_COLOR");
    o.color = isatty(STDOUT_FILENO) && !(color && *color) && !o.json;
    lsf_det_cli_signals(on_signal);
    return o.brokers ? tail_kafka(&o) : tail_file(&o);
}
