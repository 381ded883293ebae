/* kafka_conf.h - what the Kafka sink and the Kafka input share: broker
 * lists, librdkafka configuration with `kafka:` pass-through properties
 * validated at start-up, topic templates, and logging.
 *
 * Design: every librdkafka property goes through rd_kafka_conf_set once, at
 * start-up, so an unknown or invalid property stops logsift with the
 * file:line:column of the offending key instead of surfacing later.
 * Properties that a stage sets from its own keys (brokers, acks, ...) may
 * not be passed through: there is one place to set each.
 * Threads: build on the main thread; templates render on any thread
 * (read-only after compile).
 */
#ifndef LSF_KAFKA_CONF_H
#define LSF_KAFKA_CONF_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stddef.h>

#include <librdkafka/rdkafka.h>

#include "core/config.h"
#include "core/event.h"
#include "core/stage.h"

/* Kafka topic names: at most 249 of [A-Za-z0-9._-]. */
#define LSF_KAFKA_TOPIC_MAX 249

/* Checks `brokers` ("host:port", "[v6]:port", optionally "proto://..."),
 * reporting the position of a bad entry; fills out with "a,b,c".
 * Returns 0 or -1 with err set. */
int lsf_kafka_brokers(const lsf_stage *st, const lsf_strlist *brokers, char *out, size_t cap,
                      lsf_errbuf *err);

/* A new librdkafka configuration holding `props` ({name, value} pairs that
 * logsift derives from its own keys, ending with {NULL, NULL}), then the `kafka:`
 * map of the stage (nested maps are joined with dots: {ssl: {ca:
 * {location: X}}} is ssl.ca.location). `reserved` (NULL-terminated) names
 * properties that may not be passed through, each with the logsift key that
 * sets it ("acks=acks") or, after '!', why it cannot be set at all
 * ("enable.auto.commit=!logsift commits ..."). Returns NULL with err set at
 * the offending key. */
rd_kafka_conf_t *lsf_kafka_conf_new(const lsf_stage *st, const char *const (*props)[2],
                                    const char *const *reserved, lsf_errbuf *err);

/* Creates the client from conf (taken over, also on failure): `opaque` for
 * every callback, `on_error` as the error callback, and librdkafka's own log
 * lines sent to logsift's log at debug level (what operators need to see,
 * brokers down or fatal errors, the stages log from on_error). Returns NULL
 * with err set at the stage. */
rd_kafka_t *lsf_kafka_new(const lsf_stage *st, rd_kafka_type_t type, rd_kafka_conf_t *conf,
                          void *opaque, void (*on_error)(rd_kafka_t *, int, const char *, void *),
                          lsf_errbuf *err);

/* Logs "<stage>: message" at warn level unless this was done less than 30 s
 * ago (per *last_ns, a monotonic time in ns shared by the caller's
 * messages); keeps a broker outage from flooding the log. Any thread. */
void lsf_kafka_warn_throttled(_Atomic int64_t *last_ns, const char *stage, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* ---- topic templates: "logs-{host.name}" ---- */

typedef struct lsf_kafka_tpl_part {
    lsf_str lit;   /* literal text (when field.ptr is NULL) */
    lsf_str field; /* field name */
} lsf_kafka_tpl_part;

typedef struct lsf_kafka_tpl {
    char *text;                /* the template as written (owned) */
    lsf_kafka_tpl_part *parts; /* slices of text */
    int nparts;
    bool is_static; /* no fields: `text` is the topic */
} lsf_kafka_tpl;

/* Compiles `text`; `at` and `key` place errors (unbalanced braces, an empty
 * field name, characters Kafka does not allow in topic names). */
int lsf_kafka_tpl_compile(lsf_kafka_tpl *t, const char *text, const lsf_node *at, const char *key,
                          lsf_errbuf *err);
void lsf_kafka_tpl_free(lsf_kafka_tpl *t);
/* Renders the topic of `ev` into buf (>= LSF_KAFKA_TOPIC_MAX + 1 bytes,
 * NUL-terminated); returns its length. A field the event lacks (or that is
 * empty) renders as `missing` and sets *had_missing; characters Kafka does
 * not allow become '_'; the name is cut at LSF_KAFKA_TOPIC_MAX. */
size_t lsf_kafka_tpl_render(const lsf_kafka_tpl *t, const lsf_event *ev, const char *missing,
                            char *buf, bool *had_missing);

#endif
