/* kafka_broker.c - a Kafka test broker for logsift's tests and benchmarks.
 *
 *   kafka_broker [--brokers N] [--topic NAME[:PARTITIONS]]... [--rtt MS]
 *                [--bootstrap-file F] [--control-file F]
 *
 * Runs librdkafka's mock cluster (rdkafka_mock.h): N brokers (default 1)
 * speaking the real Kafka protocol on 127.0.0.1 (producer, idempotent
 * producer, consumer groups with offset commits, metadata; topics that are
 * not created with --topic are created on first use with 4 partitions). It
 * prints "bootstrap=HOST:PORT,..." on stdout and writes the list, followed by
 * a newline, atomically to --bootstrap-file. Messages live in memory until it
 * exits.
 *
 * Taking brokers away during a test:
 *   SIGUSR1  every broker goes down (connections are closed, new ones refused)
 *   SIGUSR2  every broker comes back
 *   control file: write commands to F (one per line); within 50 ms the broker
 *   runs them and renames F to F.done:
 *     down ID|all      up ID|all      rtt ID|all MS      topic NAME PARTITIONS
 *     produce_error ERROR [N]  the next N (default 1) produce requests fail with
 *                              ERROR (a broker error name, e.g.
 *                              TOPIC_AUTHORIZATION_FAILED)
 * SIGTERM or SIGINT ends it (exit 0). Every state change is logged to stderr.
 *
 * Design: the mock cluster runs on its own librdkafka thread; the main thread
 * only waits for signals (sigtimedwait, every signal blocked before any
 * thread starts) and polls the control file.
 * Threads: main thread plus librdkafka's.
 */
#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>

static void usage(void)
{
    fprintf(stderr, "usage: kafka_broker [--brokers N] [--topic NAME[:PARTITIONS]]... [--rtt MS]\n"
                    "                    [--bootstrap-file F] [--control-file F]\n");
    exit(2);
}

static void say(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void say(const char *fmt, ...)
{
    char buf[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof(buf), fmt, ap);
    va_end(ap);
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    fprintf(stderr, "kafka_broker %ld.%03ld: %s\n", (long)ts.tv_sec, ts.tv_nsec / 1000000, buf);
}

static int create_topic(rd_kafka_mock_cluster_t *mc, const char *name, int parts, int brokers)
{
    int rf = brokers < 3 ? brokers : 3;
    rd_kafka_resp_err_t e = rd_kafka_mock_topic_create(mc, name, parts, rf);
    if (e) {
        say("topic %s: %s", name, rd_kafka_err2str(e));
        return -1;
    }
    say("topic %s: %d partitions", name, parts);
    return 0;
}

/* "all" or a broker id; -2 when neither. */
static int broker_id(const char *s)
{
    if (strcmp(s, "all") == 0 || strcmp(s, "-1") == 0)
        return -1;
    char *end;
    long v = strtol(s, &end, 10);
    return (*s && !*end && v >= 0 && v < 1000) ? (int)v : -2;
}

static void set_state(rd_kafka_mock_cluster_t *mc, int id, int up)
{
    rd_kafka_resp_err_t e =
        up ? rd_kafka_mock_broker_set_up(mc, id) : rd_kafka_mock_broker_set_down(mc, id);
    if (e)
        say("broker %d %s: %s", id, up ? "up" : "down", rd_kafka_err2str(e));
    else if (id < 0)
        say("all brokers %s", up ? "up" : "down");
    else
        say("broker %d %s", id, up ? "up" : "down");
}

/* A broker error code by its name ("TOPIC_AUTHORIZATION_FAILED"); -1 if none. */
static int err_code(const char *name)
{
    const struct rd_kafka_err_desc *d;
    size_t n;
    rd_kafka_get_err_descs(&d, &n);
    for (size_t i = 0; i < n; i++)
        if (d[i].name && strcmp(d[i].name, name) == 0)
            return d[i].code;
    return -1;
}

/* Runs the commands in the control file, then renames it to F.done. */
static void run_control(rd_kafka_mock_cluster_t *mc, const char *path, int brokers)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return;
    char line[512];
    while (fgets(line, sizeof(line), f)) {
        char cmd[32] = "", a[256] = "", b[64] = "";
        int n = sscanf(line, "%31s %255s %63s", cmd, a, b);
        if (n <= 0)
            continue;
        int id = n >= 2 ? broker_id(a) : -2;
        if ((strcmp(cmd, "down") == 0 || strcmp(cmd, "up") == 0) && id >= -1) {
            set_state(mc, id, cmd[0] == 'u');
        } else if (strcmp(cmd, "rtt") == 0 && id >= -1 && n == 3) {
            rd_kafka_mock_broker_set_rtt(mc, id, atoi(b));
            say("broker %s rtt %s ms", a, b);
        } else if (strcmp(cmd, "topic") == 0 && n == 3 && atoi(b) > 0) {
            create_topic(mc, a, atoi(b), brokers);
        } else if (strcmp(cmd, "produce_error") == 0 && n >= 2 && err_code(a) != -1) {
            size_t cnt = n == 3 && atoi(b) > 0 ? (size_t)atoi(b) : 1;
            rd_kafka_resp_err_t errs[64];
            if (cnt > 64)
                cnt = 64;
            for (size_t i = 0; i < cnt; i++)
                errs[i] = (rd_kafka_resp_err_t)err_code(a);
            rd_kafka_mock_push_request_errors_array(mc, 0 /* ApiKey Produce */, cnt, errs);
            say("the next %zu produce request(s) fail with %s", cnt, a);
        } else {
            say("control: cannot understand '%.*s'", (int)strcspn(line, "\n"), line);
        }
    }
    fclose(f);
    char done[4096];
    snprintf(done, sizeof(done), "%s.done", path);
    if (rename(path, done) < 0)
        say("control: rename %s: %s", path, strerror(errno));
}

static int write_file_atomic(const char *path, const char *text)
{
    char tmp[4096];
    snprintf(tmp, sizeof(tmp), "%s.tmp", path);
    FILE *f = fopen(tmp, "w");
    if (!f)
        return -1;
    fprintf(f, "%s\n", text);
    if (fclose(f) != 0)
        return -1;
    return rename(tmp, path);
}

int main(int argc, char **argv)
{
    int nbrokers = 1, rtt = 0;
    const char *bootstrap_file = NULL, *control = NULL;
    char *topics[64];
    int ntopics = 0;
    static const struct option longopts[] = {{"brokers", required_argument, NULL, 'b'},
                                             {"topic", required_argument, NULL, 't'},
                                             {"rtt", required_argument, NULL, 'r'},
                                             {"bootstrap-file", required_argument, NULL, 'f'},
                                             {"control-file", required_argument, NULL, 'c'},
                                             {NULL, 0, NULL, 0}};
    int opt;
    while ((opt = getopt_long(argc, argv, "b:t:r:f:c:", longopts, NULL)) != -1) {
        switch (opt) {
        case 'b':
            nbrokers = atoi(optarg);
            break;
        case 't':
            if (ntopics == 64)
                usage();
            topics[ntopics++] = optarg;
            break;
        case 'r':
            rtt = atoi(optarg);
            break;
        case 'f':
            bootstrap_file = optarg;
            break;
        case 'c':
            control = optarg;
            break;
        default:
            usage();
        }
    }
    if (nbrokers < 1 || nbrokers > 16 || optind != argc)
        usage();

    /* Block the signals we wait for before librdkafka starts its threads. */
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGUSR1);
    sigaddset(&set, SIGUSR2);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGHUP);
    pthread_sigmask(SIG_BLOCK, &set, NULL);

    char errstr[512];
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    rd_kafka_conf_set(conf, "log_level", "3", errstr, sizeof(errstr));
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof(errstr));
    if (!rk) {
        fprintf(stderr, "kafka_broker: %s\n", errstr);
        return 1;
    }
    rd_kafka_mock_cluster_t *mc = rd_kafka_mock_cluster_new(rk, nbrokers);
    if (!mc) {
        fprintf(stderr, "kafka_broker: cannot create the mock cluster\n");
        rd_kafka_destroy(rk);
        return 1;
    }
    int rc = 0;
    for (int i = 0; i < ntopics; i++) {
        char name[256];
        snprintf(name, sizeof(name), "%s", topics[i]);
        char *colon = strrchr(name, ':');
        int parts = 1;
        if (colon) {
            *colon = 0;
            parts = atoi(colon + 1);
        }
        if (parts < 1 || create_topic(mc, name, parts, nbrokers) < 0) {
            rc = 1;
            goto out;
        }
    }
    if (rtt > 0)
        rd_kafka_mock_broker_set_rtt(mc, -1, rtt);
    const char *boot = rd_kafka_mock_cluster_bootstraps(mc);
    printf("bootstrap=%s\n", boot);
    fflush(stdout);
    if (bootstrap_file && write_file_atomic(bootstrap_file, boot) < 0) {
        fprintf(stderr, "kafka_broker: cannot write %s: %s\n", bootstrap_file, strerror(errno));
        rc = 1;
        goto out;
    }
    say("%d broker(s) at %s", nbrokers, boot);

    for (;;) {
        struct timespec tick = {0, 50 * 1000000L};
        int sig = sigtimedwait(&set, NULL, &tick);
        if (sig == SIGUSR1)
            set_state(mc, -1, 0);
        else if (sig == SIGUSR2)
            set_state(mc, -1, 1);
        else if (sig == SIGTERM || sig == SIGINT)
            break;
        if (control)
            run_control(mc, control, nbrokers);
    }
    say("exiting");
out:
    rd_kafka_mock_cluster_destroy(mc);
    rd_kafka_destroy(rk);
    return rc;
}
