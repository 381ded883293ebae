/* kwatch.c - when did a Kafka topic receive its last expected record?
 *
 *   kwatch BROKERS TOPIC PARTITIONS EXPECTED STATE_FILE
 *
 * Queries the end offsets of partitions 0..PARTITIONS-1 of TOPIC every 5 ms
 * over one connection, and each time their sum changes rewrites STATE_FILE
 * with one line:
 *   count=N at_ns=T
 * where T is CLOCK_REALTIME at the middle of the query that first saw N (the
 * clock blast.c stamps its start with). It exits 0 once N >= EXPECTED, after
 * a last write; on SIGTERM or SIGINT it exits 0 as it stands.
 *
 * Why it exists: scenario 5 used to run `kcat -Q` every 200 ms (20 ms past
 * 90%), so a system finishing in 0.7 s could be stamped up to ~200 ms late,
 * and every query was a process start competing for the 2 cores. One
 * long-lived client polling often is both precise (+-5 ms) and cheap.
 * Exits 1 when the broker cannot be reached within 10 s, 2 on bad usage.
 */
#include <errno.h>
#include <librdkafka/rdkafka.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static volatile sig_atomic_t stop;

static void on_signal(int sig)
{
    (void)sig;
    stop = 1;
}

static int64_t realtime_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

/* Writes "count=N at_ns=T" to path through a temporary file, so a reader
 * never sees half a line. */
static void publish(const char *path, int64_t count, int64_t at_ns)
{
    char tmp[4096];
    snprintf(tmp, sizeof(tmp), "%s.tmp", path);
    FILE *f = fopen(tmp, "w");
    if (!f)
        return;
    fprintf(f, "count=%lld at_ns=%lld\n", (long long)count, (long long)at_ns);
    if (fclose(f) == 0)
        rename(tmp, path);
}

int main(int argc, char **argv)
{
    if (argc != 6) {
        fprintf(stderr, "usage: kwatch BROKERS TOPIC PARTITIONS EXPECTED STATE_FILE\n");
        return 2;
    }
    const char *brokers = argv[1], *topic = argv[2], *state = argv[5];
    int partitions = atoi(argv[3]);
    long long expected = atoll(argv[4]);
    if (partitions < 1 || expected < 1) {
        fprintf(stderr, "kwatch: PARTITIONS and EXPECTED must be positive\n");
        return 2;
    }
    signal(SIGTERM, on_signal);
    signal(SIGINT, on_signal);
    char why[512];
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    if (rd_kafka_conf_set(conf, "bootstrap.servers", brokers, why, sizeof(why)) != RD_KAFKA_CONF_OK ||
        rd_kafka_conf_set(conf, "log_level", "3", why, sizeof(why)) != RD_KAFKA_CONF_OK) {
        fprintf(stderr, "kwatch: %s\n", why);
        return 2;
    }
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, why, sizeof(why));
    if (!rk) {
        fprintf(stderr, "kwatch: %s\n", why);
        return 1;
    }
    int64_t last = -1, reachable_by = realtime_ns() + 10000000000LL;
    int rc = 0;
    while (!stop) {
        int64_t t0 = realtime_ns(), total = 0;
        bool ok = true;
        for (int p = 0; p < partitions && ok; p++) {
            int64_t lo, hi;
            rd_kafka_resp_err_t e = rd_kafka_query_watermark_offsets(rk, topic, p, &lo, &hi, 1000);
            if (e == RD_KAFKA_RESP_ERR_NO_ERROR)
                total += hi > 0 ? hi : 0;
            else
                ok = false;
        }
        int64_t t1 = realtime_ns();
        if (!ok) {
            if (last < 0 && t1 > reachable_by) {
                fprintf(stderr, "kwatch: %s: no answer from %s\n", topic, brokers);
                rc = 1;
                break;
            }
        } else if (total != last) {
            last = total;
            publish(state, total, (t0 + t1) / 2);
            if (total >= expected)
                break;
        }
        struct timespec pause = {0, 5000000};
        nanosleep(&pause, NULL);
    }
    rd_kafka_destroy(rk);
    return rc;
}
