/* limits.c - allow-lists of source networks and per-address token buckets
 * (see limits.h).
 *
 * Design: addresses are reduced to 16 bytes (IPv4 as IPv4-mapped IPv6) so
 * one hash and one comparison serve both families.
 * Threads: lsf_allow read-only after parsing; lsf_rate single-threaded.
 */
#include "limits.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/log.h"

/* ---- allow-lists ------------------------------------------------------------- */

int lsf_allow_parse(lsf_allow *a, const lsf_strlist *list, const lsf_node *at, lsf_errbuf *err)
{
    memset(a, 0, sizeof(*a));
    if (!list || list->n == 0)
        return 0;
    a->v = calloc(list->n, sizeof(*a->v));
    if (!a->v)
        lsf_die("out of memory");
    for (size_t i = 0; i < list->n; i++) {
        char buf[128];
        const char *s = list->v[i];
        lsf_cidr *c = &a->v[i];
        snprintf(buf, sizeof(buf), "%s", s);
        char *slash = strchr(buf, '/');
        if (slash)
            *slash = '\0';
        int maxbits;
        if (inet_pton(AF_INET, buf, c->addr) == 1) {
            c->family = AF_INET;
            maxbits = 32;
        } else if (inet_pton(AF_INET6, buf, c->addr) == 1) {
            c->family = AF_INET6;
            maxbits = 128;
        } else {
            return lsf_node_error(err, at, "'%s' is not a network (want 10.0.0.0/8 or 2001:db8::/32)", s);
        }
        long bits = maxbits;
        if (slash) {
            char *end;
            bits = strtol(slash + 1, &end, 10);
            if (!slash[1] || *end || bits < 0 || bits > maxbits)
                return lsf_node_error(err, at, "'%s': prefix length must be 0 to %d", s, maxbits);
        }
        c->bits = (uint8_t)bits;
        a->n++;
    }
    return 0;
}

void lsf_allow_free(lsf_allow *a)
{
    free(a->v);
    memset(a, 0, sizeof(*a));
}

static bool prefix_eq(const uint8_t *x, const uint8_t *y, int bits)
{
    int whole = bits / 8, rest = bits % 8;
    if (memcmp(x, y, (size_t)whole) != 0)
        return false;
    if (!rest)
        return true;
    uint8_t mask = (uint8_t)(0xFF << (8 - rest));
    return (x[whole] & mask) == (y[whole] & mask);
}

bool lsf_allow_match(const lsf_allow *a, const struct sockaddr *sa)
{
    if (a->n == 0)
        return true;
    const uint8_t *v4 = NULL, *v6 = NULL;
    if (sa->sa_family == AF_INET) {
        v4 = (const uint8_t *)&((const struct sockaddr_in *)sa)->sin_addr;
    } else if (sa->sa_family == AF_INET6) {
        const struct in6_addr *in6 = &((const struct sockaddr_in6 *)sa)->sin6_addr;
        v6 = in6->s6_addr;
        if (IN6_IS_ADDR_V4MAPPED(in6))
            v4 = in6->s6_addr + 12;
    }
    for (size_t i = 0; i < a->n; i++) {
        const lsf_cidr *c = &a->v[i];
        if (c->family == AF_INET && v4 && prefix_eq(v4, c->addr, c->bits))
            return true;
        if (c->family == AF_INET6 && v6 && prefix_eq(v6, c->addr, c->bits))
            return true;
    }
    return false;
}

/* ---- rate limits --------------------------------------------------------------- */

#define RATE_SLOTS 4096u /* power of two */
#define RATE_PROBE 8u

typedef struct bucket {
    uint8_t addr[16];
    double tokens;
    int64_t last_ns; /* 0: free */
} bucket;

struct lsf_rate {
    double per_ns, burst;
    bucket slots[RATE_SLOTS];
};

lsf_rate *lsf_rate_new(double per_sec, double burst)
{
    lsf_rate *r = calloc(1, sizeof(*r));
    if (!r)
        lsf_die("out of memory");
    r->per_ns = per_sec / 1e9;
    r->burst = burst < 1 ? 1 : burst;
    return r;
}

void lsf_rate_free(lsf_rate *r)
{
    free(r);
}

static void key_of(const struct sockaddr *sa, uint8_t out[16])
{
    memset(out, 0, 16);
    if (sa->sa_family == AF_INET) {
        out[10] = out[11] = 0xFF;
        memcpy(out + 12, &((const struct sockaddr_in *)sa)->sin_addr, 4);
    } else if (sa->sa_family == AF_INET6) {
        memcpy(out, &((const struct sockaddr_in6 *)sa)->sin6_addr, 16);
    }
}

static bucket *find(lsf_rate *r, const struct sockaddr *sa, int64_t now)
{
    uint8_t k[16];
    key_of(sa, k);
    uint64_t h = 1469598103934665603ULL;
    for (int i = 0; i < 16; i++)
        h = (h ^ k[i]) * 1099511628211ULL;
    bucket *victim = NULL;
    for (unsigned i = 0; i < RATE_PROBE; i++) {
        bucket *b = &r->slots[(h + i) & (RATE_SLOTS - 1)];
        if (b->last_ns && memcmp(b->addr, k, 16) == 0)
            return b;
        if (!victim || b->last_ns < victim->last_ns)
            victim = b;
    }
    /* free, idle, or the least recently used of the window */
    (void)now;
    memcpy(victim->addr, k, 16);
    victim->tokens = r->burst;
    victim->last_ns = 0;
    return victim;
}

static bucket *refill(lsf_rate *r, const struct sockaddr *sa, int64_t now)
{
    bucket *b = find(r, sa, now);
    if (b->last_ns) {
        b->tokens += (double)(now - b->last_ns) * r->per_ns;
        if (b->tokens > r->burst)
            b->tokens = r->burst;
    }
    b->last_ns = now ? now : 1;
    return b;
}

int64_t lsf_rate_take(lsf_rate *r, const struct sockaddr *sa, double n, int64_t now_ns)
{
    bucket *b = refill(r, sa, now_ns);
    b->tokens -= n;
    if (b->tokens >= 0)
        return 0;
    return (int64_t)(-b->tokens / r->per_ns) + 1;
}

bool lsf_rate_allow_one(lsf_rate *r, const struct sockaddr *sa, int64_t now_ns)
{
    bucket *b = refill(r, sa, now_ns);
    if (b->tokens < 1)
        return false;
    b->tokens -= 1;
    return true;
}
