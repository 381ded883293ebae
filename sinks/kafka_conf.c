/* kafka_conf.c - broker lists, librdkafka configuration with validated
 * pass-through properties, topic templates and logging, shared by the
 * Kafka sink and the Kafka input (see kafka_conf.h).
 *
 * Design: pass-through keys are applied after logsift's own properties and
 * each is checked by librdkafka itself (rd_kafka_conf_set), so what logsift
 * accepts is exactly what the linked librdkafka accepts.
 * Threads: main thread, except lsf_kafka_tpl_render (any thread) and the
 * log callback (librdkafka's threads).
 */
#include "kafka_conf.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/ioloop.h"
#include "core/log.h"
#include "ingest/listen.h"

/* ---- brokers ------------------------------------------------------------ */

/* Position of the i-th item of key `name`, or the key / stage node. */
static const lsf_node *item_node(const lsf_stage *st, const char *name, size_t i)
{
    const lsf_node *n = lsf_key_node(st, name);
    if (n && n->kind == LSF_NODE_SEQ) {
        const lsf_node *c = n->child;
        for (size_t k = 0; c && k < i; k++)
            c = c->next;
        if (c)
            return c;
    }
    return n;
}

static const char *broker_problem(const char *b)
{
    const char *s = strstr(b, "://");
    if (s)
        b = s + 3;
    const char *colon;
    if (*b == '[') {
        const char *close = strchr(b, ']');
        if (!close || close == b + 1 || close[1] != ':')
            return "want [IPv6-address]:port";
        colon = close + 1;
    } else {
        colon = strrchr(b, ':');
        if (!colon)
            return "want host:port (e.g. kafka1:9092)";
        if (colon == b)
            return "the host is missing";
        if (strchr(b, ':') != colon)
            return "write an IPv6 address as [address]:port";
    }
    const char *p = colon + 1;
    long port = 0;
    if (!*p)
        return "the port is missing";
    for (; *p; p++) {
        if (*p < '0' || *p > '9')
            return "the port must be a number";
        port = port * 10 + (*p - '0');
        if (port > 65535)
            break;
    }
    if (port < 1 || port > 65535)
        return "the port must be 1-65535";
    for (const char *q = b; q < colon; q++)
        if (*q == ',' || *q == ' ' || *q == '\t')
            return "one broker per list item (no commas or spaces)";
    return NULL;
}

int lsf_kafka_brokers(const lsf_stage *st, const lsf_strlist *brokers, char *out, size_t cap,
                      lsf_errbuf *err)
{
    size_t len = 0;
    out[0] = 0;
    if (brokers->n == 0)
        return lsf_node_error(err, lsf_key_node(st, "brokers"), "brokers: the list is empty");
    for (size_t i = 0; i < brokers->n; i++) {
        const char *why = broker_problem(brokers->v[i]);
        if (why)
            return lsf_node_error(err, item_node(st, "brokers", i), "brokers: '%s': %s",
                                  brokers->v[i], why);
        int n = snprintf(out + len, cap - len, "%s%s", i ? "," : "", brokers->v[i]);
        if (n < 0 || (size_t)n >= cap - len)
            return lsf_node_error(err, lsf_key_node(st, "brokers"),
                                  "brokers: the list is too long");
        len += (size_t)n;
    }
    return 0;
}

/* ---- librdkafka configuration ------------------------------------------ */

static int set_prop(rd_kafka_conf_t *conf, const char *name, const char *value, const lsf_node *at,
                    const char *const *reserved, lsf_errbuf *err)
{
    for (const char *const *r = reserved; r && *r; r++) {
        size_t n = strcspn(*r, "=");
        if (!at || strlen(name) != n || strncmp(name, *r, n) != 0)
            continue;
        const char *what = *r + n + 1;
        if (*what == '!')
            return lsf_node_error(err, at, "kafka: '%s' cannot be set here: %s", name, what + 1);
        return lsf_node_error(err, at, "kafka: '%s' is set by this stage's '%s' key; set it there",
                              name, what);
    }
    char why[512];
    rd_kafka_conf_res_t res = rd_kafka_conf_set(conf, name, value, why, sizeof(why));
    if (res == RD_KAFKA_CONF_OK)
        return 0;
    if (!at) /* one of logsift's own properties: a programming error */
        return lsf_node_error(err, NULL, "librdkafka rejected %s=%s: %s", name, value, why);
    if (res == RD_KAFKA_CONF_UNKNOWN)
        return lsf_node_error(err, at,
                              "kafka: unknown librdkafka property '%s' (librdkafka %s; see its "
                              "CONFIGURATION.md)",
                              name, rd_kafka_version_str());
    return lsf_node_error(err, at, "kafka: %s: %s", name, why);
}

/* Applies a map of properties; nested maps extend the prefix. */
static int set_map(rd_kafka_conf_t *conf, const lsf_node *map, const char *prefix,
                   const char *const *reserved, lsf_errbuf *err)
{
    for (const lsf_node *c = map->child; c; c = c->next) {
        char name[512];
        snprintf(name, sizeof(name), "%s%s%s", prefix, *prefix ? "." : "", c->key);
        lsf_node at = *c;
        at.line = c->key_line;
        at.col = c->key_col;
        if (c->kind == LSF_NODE_MAP) {
            if (set_map(conf, c, name, reserved, err) < 0)
                return -1;
        } else if (c->kind == LSF_NODE_SEQ) {
            /* librdkafka lists are comma-separated strings. */
            char list[2048];
            size_t len = 0;
            for (const lsf_node *v = c->child; v; v = v->next) {
                if (v->kind != LSF_NODE_SCALAR)
                    return lsf_node_error(err, v, "kafka: %s: expected a list of strings", name);
                size_t vl = strlen(v->str);
                if (len + vl + 2 > sizeof(list))
                    return lsf_node_error(err, c, "kafka: %s: the list is too long", name);
                if (len)
                    list[len++] = ',';
                memcpy(list + len, v->str, vl);
                len += vl;
            }
            list[len] = 0;
            if (set_prop(conf, name, list, &at, reserved, err) < 0)
                return -1;
        } else if (set_prop(conf, name, c->str, &at, reserved, err) < 0) {
            return -1;
        }
    }
    return 0;
}

rd_kafka_conf_t *lsf_kafka_conf_new(const lsf_stage *st, const char *const (*props)[2],
                                    const char *const *reserved, lsf_errbuf *err)
{
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    for (const char *const(*p)[2] = props; p && (*p)[0]; p++)
        if (set_prop(conf, (*p)[0], (*p)[1], NULL, NULL, err) < 0)
            goto fail;
    const lsf_node *map = st->node ? lsf_node_get(st->node, "kafka") : NULL;
    if (map) {
        if (map->kind != LSF_NODE_MAP) {
            lsf_node_error(err, map,
                           "kafka: expected a map of librdkafka properties (e.g. "
                           "{security.protocol: SASL_SSL})");
            goto fail;
        }
        if (set_map(conf, map, "", reserved, err) < 0)
            goto fail;
    }
    return conf;
fail:
    rd_kafka_conf_destroy(conf);
    return NULL;
}

static void log_cb(const rd_kafka_t *rk, int level, const char *fac, const char *buf)
{
    (void)level;
    lsf_debug("%s: %s: %s", rd_kafka_name(rk), fac, buf);
}

rd_kafka_t *lsf_kafka_new(const lsf_stage *st, rd_kafka_type_t type, rd_kafka_conf_t *conf,
                          void *opaque, void (*on_error)(rd_kafka_t *, int, const char *, void *),
                          lsf_errbuf *err)
{
    rd_kafka_conf_set_opaque(conf, opaque);
    rd_kafka_conf_set_error_cb(conf, on_error);
    rd_kafka_conf_set_log_cb(conf, log_cb);
    char why[512];
    rd_kafka_t *rk = rd_kafka_new(type, conf, why, sizeof(why));
    if (!rk) {
        rd_kafka_conf_destroy(conf);
        lsf_node_error(err, st->node, "%s: cannot create the Kafka %s: %s", st->name,
                       type == RD_KAFKA_PRODUCER ? "producer" : "consumer", why);
    }
    return rk;
}

void lsf_kafka_warn_throttled(_Atomic int64_t *last_ns, const char *stage, const char *fmt, ...)
{
    int64_t now = lsf_now_mono_ns(), last = atomic_load(last_ns);
    if (last && now - last < 30 * 1000000000LL)
        return;
    atomic_store(last_ns, now);
    char buf[768];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof(buf), fmt, ap);
    va_end(ap);
    lsf_warn("%s: %s", stage, buf);
}

/* ---- topic templates ------------------------------------------------------ */

static bool topic_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
           c == '_' || c == '-';
}

int lsf_kafka_tpl_compile(lsf_kafka_tpl *t, const char *text, const lsf_node *at, const char *key,
                          lsf_errbuf *err)
{
    memset(t, 0, sizeof(*t));
    t->text = strdup(text ? text : "");
    if (!t->text)
        lsf_die("out of memory");
    size_t n = strlen(t->text);
    if (n == 0)
        return lsf_node_error(err, at, "%s: the topic must not be empty", key);
    t->parts = calloc(n + 1, sizeof(*t->parts));
    if (!t->parts)
        lsf_die("out of memory");
    size_t lit_len = 0;
    for (const char *p = t->text; *p;) {
        if (*p == '{') {
            const char *close = strchr(p, '}');
            if (!close)
                return lsf_node_error(err, at, "%s: '{' without a closing '}' in '%s'", key, text);
            if (close == p + 1)
                return lsf_node_error(err, at, "%s: empty field name '{}' in '%s'", key, text);
            if (memchr(p + 1, '{', (size_t)(close - p - 1)))
                return lsf_node_error(err, at, "%s: nested '{' in '%s'", key, text);
            t->parts[t->nparts++].field = lsf_str_make(p + 1, (size_t)(close - p - 1));
            p = close + 1;
            continue;
        }
        if (*p == '}')
            return lsf_node_error(err, at, "%s: '}' without an opening '{' in '%s'", key, text);
        if (!topic_char(*p))
            return lsf_node_error(err, at,
                                  "%s: '%c' is not allowed in a Kafka topic name (only letters, "
                                  "digits, '.', '_' and '-')",
                                  key, *p);
        const char *start = p;
        while (*p && *p != '{' && *p != '}' && topic_char(*p))
            p++;
        t->parts[t->nparts++].lit = lsf_str_make(start, (size_t)(p - start));
        lit_len += (size_t)(p - start);
    }
    if (lit_len > LSF_KAFKA_TOPIC_MAX)
        return lsf_node_error(err, at, "%s: longer than %d characters", key, LSF_KAFKA_TOPIC_MAX);
    t->is_static = t->nparts == 1 && t->parts[0].field.ptr == NULL;
    if (t->is_static && (strcmp(t->text, ".") == 0 || strcmp(t->text, "..") == 0))
        return lsf_node_error(err, at, "%s: '%s' is not a valid topic name", key, t->text);
    return 0;
}

void lsf_kafka_tpl_free(lsf_kafka_tpl *t)
{
    free(t->parts);
    free(t->text);
    memset(t, 0, sizeof(*t));
}

size_t lsf_kafka_tpl_render(const lsf_kafka_tpl *t, const lsf_event *ev, const char *missing,
                            char *buf, bool *had_missing)
{
    size_t len = 0;
    char scratch[64];
    for (int i = 0; i < t->nparts && len < LSF_KAFKA_TOPIC_MAX; i++) {
        const lsf_kafka_tpl_part *pt = &t->parts[i];
        lsf_str v = pt->lit;
        if (pt->field.ptr) {
            if (!lsf_event_get_str(ev, pt->field, scratch, &v) || v.len == 0) {
                v = lsf_str_make(missing, strlen(missing));
                *had_missing = true;
            }
        }
        for (uint32_t k = 0; k < v.len && len < LSF_KAFKA_TOPIC_MAX; k++)
            buf[len++] = topic_char(v.ptr[k]) ? v.ptr[k] : '_';
    }
    buf[len] = 0;
    return len;
}
