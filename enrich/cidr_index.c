/* cidr_index.c - longest-prefix match by binary search over flattened
 * ranges (see cidr_index.h).
 *
 * The one design choice to know: networks nest or are disjoint, so the
 * address space cuts into ranges each owned by exactly one innermost
 * network (or none). Sorting networks by start (outer before inner) and
 * sweeping with a stack of open networks yields those ranges as a sorted
 * array of start addresses; a lookup is then one binary search for the last
 * start <= address - about 17 steps for 50,000 networks, no pointer
 * chasing, and IPv4 keys are 4 bytes so the array stays cache-friendly.
 * Parent links fall out of the same sweep (the stack top when a network is
 * pushed), which is how blank values inherit from enclosing networks.
 *
 * Threads: build on one thread; find is read-only.
 */
#include "enrich/cidr_index.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/log.h"

typedef unsigned __int128 u128;

struct lsf_cidr_index {
    uint32_t *s4; /* range starts, s4[0] == 0 */
    int32_t *r4;  /* row per range, -1: none */
    size_t n4;
    u128 *s6;
    int32_t *r6;
    size_t n6;
};

static u128 key_of(const lsf_ip *ip)
{
    u128 k = 0;
    for (int i = ip->v4 ? 12 : 0; i < 16; i++)
        k = k << 8 | ip->b[i];
    return k;
}

static u128 host_mask(int bits, int len) /* ones in the host part */
{
    int host = bits - len;
    return host >= 128 ? ~(u128)0 : (((u128)1 << host) - 1);
}

int lsf_cidr_parse(const char *s, lsf_cidr_net *net, char *why, size_t cap)
{
    const char *slash = strchr(s, '/');
    size_t alen = slash ? (size_t)(slash - s) : strlen(s);
    memset(net, 0, sizeof(*net));
    if (memchr(s, '[', alen) || memchr(s, '%', alen) ||
        lsf_ip_parse(s, alen, &net->ip) < 0 ||
        (net->ip.v4 && memchr(s, ':', alen) && strncasecmp(s, "::ffff:", 7) != 0)) {
        snprintf(why, cap, "'%s' is not a network (write 10.0.0.0/8 or 2001:db8::/32)", s);
        return -1;
    }
    bool mapped_text = net->ip.v4 && memchr(s, ':', alen);
    int bits = net->ip.v4 ? 32 : 128, len = bits;
    if (slash) {
        const char *p = slash + 1;
        len = 0;
        if (!*p || strlen(p) > 3)
            len = -1;
        for (; *p && len >= 0; p++)
            len = (*p >= '0' && *p <= '9') ? len * 10 + (*p - '0') : -1;
        if (mapped_text && len >= 96)
            len -= 96;
        if (len < 0 || len > bits) {
            snprintf(why, cap, "'%s': the prefix length must be 0-%d", s, bits);
            return -1;
        }
    }
    net->len = (uint8_t)len;
    u128 k = key_of(&net->ip);
    if (k & host_mask(bits, len)) {
        lsf_cidr_net fixed = *net;
        u128 m = k & ~host_mask(bits, len);
        for (int i = 15; i >= (net->ip.v4 ? 12 : 0); i--, m >>= 8)
            fixed.ip.b[i] = (uint8_t)m;
        char buf[64];
        lsf_cidr_format(&fixed, buf);
        snprintf(why, cap, "'%s' has host bits set; did you mean %s?", s, buf);
        return -1;
    }
    return 0;
}

void lsf_cidr_format(const lsf_cidr_net *net, char *buf)
{
    size_t n = lsf_ip_format(&net->ip, buf);
    snprintf(buf + n, 50 - n, "/%u", net->len);
}

static int cmp_net(const void *a, const void *b)
{
    const lsf_cidr_net *x = a, *y = b;
    if (x->ip.v4 != y->ip.v4)
        return x->ip.v4 ? -1 : 1;
    int c = memcmp(x->ip.b, y->ip.b, 16);
    if (c)
        return c;
    if (x->len != y->len)
        return x->len < y->len ? -1 : 1; /* outer first */
    return x->line < y->line ? -1 : x->line > y->line;
}

typedef struct ranges {
    u128 *s;
    int32_t *r;
    size_t n, cap;
} ranges;

static void emit(ranges *o, u128 pos, int32_t row)
{
    if (o->n && o->s[o->n - 1] == pos) {
        o->r[o->n - 1] = row;
        if (o->n > 1 && o->r[o->n - 2] == row) /* merged back into the previous range */
            o->n--;
        return;
    }
    if (o->n && o->r[o->n - 1] == row)
        return;
    if (o->n == o->cap) {
        o->cap = o->cap ? o->cap * 2 : 64;
        o->s = realloc(o->s, o->cap * sizeof(u128));
        o->r = realloc(o->r, o->cap * sizeof(int32_t));
        if (!o->s || !o->r)
            lsf_die("out of memory");
    }
    o->s[o->n] = pos;
    o->r[o->n++] = row;
}

typedef struct open_net {
    u128 end;
    int32_t row;
} open_net;

/* Sweeps the sorted networks of one family into ranges. */
static void sweep(const lsf_cidr_net *nets, size_t n, int bits, ranges *o,
                  void (*inherit)(void *, uint32_t, uint32_t), void *arg)
{
    u128 max = bits == 128 ? ~(u128)0 : (((u128)1 << bits) - 1);
    open_net *stack = malloc((n + 1) * sizeof(open_net));
    if (!stack)
        lsf_die("out of memory");
    size_t sp = 0;
    emit(o, 0, -1);
    for (size_t i = 0; i <= n; i++) {
        u128 start = i < n ? key_of(&nets[i].ip) : 0;
        /* close the networks that end before this one starts (all, at the end) */
        while (sp && (i == n || stack[sp - 1].end < start)) {
            open_net t = stack[--sp];
            if (t.end != max)
                emit(o, t.end + 1, sp ? stack[sp - 1].row : -1);
        }
        if (i == n)
            break;
        if (sp && inherit)
            inherit(arg, nets[i].row, (uint32_t)stack[sp - 1].row);
        emit(o, start, (int32_t)nets[i].row);
        stack[sp++] = (open_net){start | host_mask(bits, nets[i].len), (int32_t)nets[i].row};
    }
    free(stack);
}

lsf_cidr_index *lsf_cidr_index_build(lsf_cidr_net *nets, size_t n, const char *path,
                                     void (*inherit)(void *arg, uint32_t row, uint32_t parent),
                                     void *arg, lsf_errbuf *err)
{
    qsort(nets, n, sizeof(*nets), cmp_net);
    for (size_t i = 1; i < n; i++)
        if (nets[i].ip.v4 == nets[i - 1].ip.v4 && nets[i].len == nets[i - 1].len &&
            memcmp(nets[i].ip.b, nets[i - 1].ip.b, 16) == 0) {
            char buf[64];
            lsf_cidr_format(&nets[i], buf);
            snprintf(err->msg, sizeof(err->msg), "%s:%d:%d: network %s is listed twice (first at "
                     "line %d)", path, nets[i].line, nets[i].col, buf, nets[i - 1].line);
            return NULL;
        }
    size_t n4 = 0;
    while (n4 < n && nets[n4].ip.v4)
        n4++;
    lsf_cidr_index *x = calloc(1, sizeof(*x));
    if (!x)
        lsf_die("out of memory");
    ranges o4 = {0}, o6 = {0};
    sweep(nets, n4, 32, &o4, inherit, arg);
    sweep(nets + n4, n - n4, 128, &o6, inherit, arg);
    x->s4 = malloc(o4.n * sizeof(uint32_t));
    if (!x->s4)
        lsf_die("out of memory");
    for (size_t i = 0; i < o4.n; i++)
        x->s4[i] = (uint32_t)o4.s[i];
    x->r4 = o4.r;
    x->n4 = o4.n;
    free(o4.s);
    x->s6 = o6.s;
    x->r6 = o6.r;
    x->n6 = o6.n;
    return x;
}

int64_t lsf_cidr_index_find(const lsf_cidr_index *x, const lsf_ip *ip)
{
    size_t lo = 0, n;
    if (ip->v4) {
        uint32_t k = (uint32_t)ip->b[12] << 24 | (uint32_t)ip->b[13] << 16 |
                     (uint32_t)ip->b[14] << 8 | ip->b[15];
        const uint32_t *s = x->s4;
        for (n = x->n4; n > 1; n -= n / 2)
            if (s[lo + n / 2] <= k)
                lo += n / 2;
        return x->r4[lo];
    }
    u128 k = key_of(ip);
    const u128 *s = x->s6;
    for (n = x->n6; n > 1; n -= n / 2)
        if (s[lo + n / 2] <= k)
            lo += n / 2;
    return x->r6[lo];
}

size_t lsf_cidr_index_ranges(const lsf_cidr_index *x) { return x->n4 + x->n6; }

void lsf_cidr_index_free(lsf_cidr_index *x)
{
    if (!x)
        return;
    free(x->s4);
    free(x->r4);
    free(x->s6);
    free(x->r6);
    free(x);
}
