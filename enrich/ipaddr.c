/* ipaddr.c - IP address parsing and special-purpose ranges (see ipaddr.h).
 *
 * Design: dotted IPv4 - by far the most common input - is parsed by hand
 * (inet_pton needs a NUL-terminated copy and is slower); IPv6 goes through
 * inet_pton. Special ranges: IPv4 by a switch on the first octet (the hot
 * path: one branch for most addresses), IPv6 by a small table scanned in
 * order, more specific entries first.
 * Threads: pure functions and constant tables.
 */
#include "enrich/ipaddr.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <string.h>

static int parse_v4(const char *s, size_t n, uint8_t out[4])
{
    size_t i = 0;
    for (int part = 0; part < 4; part++) {
        if (part) {
            if (i >= n || s[i] != '.')
                return -1;
            i++;
        }
        size_t start = i;
        unsigned v = 0;
        while (i < n && s[i] >= '0' && s[i] <= '9' && i - start < 3)
            v = v * 10 + (unsigned)(s[i++] - '0');
        size_t len = i - start;
        if (len == 0 || v > 255 || (len > 1 && s[start] == '0'))
            return -1;
        out[part] = (uint8_t)v;
    }
    return i == n ? 0 : -1;
}

static void set_v4(lsf_ip *ip, const uint8_t a[4])
{
    memset(ip->b, 0, 10);
    ip->b[10] = ip->b[11] = 0xff;
    memcpy(ip->b + 12, a, 4);
    ip->v4 = true;
}

static bool is_port(const char *s, size_t n)
{
    if (n == 0 || n > 5)
        return false;
    for (size_t i = 0; i < n; i++)
        if (s[i] < '0' || s[i] > '9')
            return false;
    return true;
}

static int parse_v6(const char *s, size_t n, lsf_ip *ip)
{
    const char *pct = memchr(s, '%', n);
    if (pct) {
        if (pct + 1 == s + n) /* an empty zone */
            return -1;
        n = (size_t)(pct - s);
    }
    char buf[64];
    if (n == 0 || n >= sizeof(buf))
        return -1;
    memcpy(buf, s, n);
    buf[n] = 0;
    if (inet_pton(AF_INET6, buf, ip->b) != 1)
        return -1;
    static const uint8_t mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    ip->v4 = memcmp(ip->b, mapped, 12) == 0;
    return 0;
}

int lsf_ip_parse(const char *s, size_t n, lsf_ip *ip)
{
    uint8_t a[4];
    if (n == 0)
        return -1;
    if (s[0] == '[') { /* [v6] or [v6]:port */
        const char *close = memchr(s, ']', n);
        if (!close)
            return -1;
        size_t rest = n - (size_t)(close + 1 - s);
        if (rest && !(close[1] == ':' && is_port(close + 2, rest - 1)))
            return -1;
        return parse_v6(s + 1, (size_t)(close - s - 1), ip);
    }
    const char *colon = memchr(s, ':', n);
    if (!colon) {
        if (parse_v4(s, n, a) < 0)
            return -1;
        set_v4(ip, a);
        return 0;
    }
    /* one colon: IPv4 with a port (IPv6 text always has two or more) */
    if (!memchr(colon + 1, ':', n - (size_t)(colon + 1 - s))) {
        if (!is_port(colon + 1, n - (size_t)(colon + 1 - s)) || parse_v4(s, (size_t)(colon - s), a) < 0)
            return -1;
        set_v4(ip, a);
        return 0;
    }
    return parse_v6(s, n, ip);
}

size_t lsf_ip_format(const lsf_ip *ip, char *buf)
{
    if (ip->v4)
        return (size_t)snprintf(buf, 46, "%u.%u.%u.%u", ip->b[12], ip->b[13], ip->b[14], ip->b[15]);
    if (!inet_ntop(AF_INET6, ip->b, buf, 46))
        buf[0] = 0;
    return strlen(buf);
}

/* ---- special-purpose ranges ---------------------------------------------- */

typedef struct range {
    uint8_t net[16];
    uint8_t len; /* prefix length in bits */
    uint8_t scope;
} range;

/* IPv6 ranges, more specific entries first. (IPv4 is decided by a switch on
 * the first octet in lsf_ip_scope: one branch for most addresses.) */
static const range v6_ranges[] = {
    {{0}, 128, LSF_SCOPE_UNSPECIFIED},
    {{0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1}, 128, LSF_SCOPE_LOOPBACK},
    {{0x01, 0x00}, 64, LSF_SCOPE_RESERVED}, /* 100::/64 discard-only */
    {{0x20, 0x01, 0x00, 0x02, 0x00, 0x00}, 48, LSF_SCOPE_BENCHMARKING},
    {{0x20, 0x01, 0x0d, 0xb8}, 32, LSF_SCOPE_DOCUMENTATION},
    {{0x3f, 0xff, 0x00}, 20, LSF_SCOPE_DOCUMENTATION},
    {{0xfc}, 7, LSF_SCOPE_PRIVATE},
    {{0xfe, 0x80}, 10, LSF_SCOPE_LINK_LOCAL},
    {{0xff}, 8, LSF_SCOPE_MULTICAST},
};

static bool in_range(const uint8_t *a, const range *r)
{
    unsigned full = r->len / 8, rem = r->len % 8;
    for (unsigned i = 0; i < full; i++)
        if (a[i] != r->net[i])
            return false;
    if (!rem)
        return true;
    uint8_t mask = (uint8_t)(0xff << (8 - rem));
    return (a[full] & mask) == r->net[full];
}

static enum lsf_ip_scope scope_v4(const uint8_t *a)
{
    switch (a[0]) {
    case 0: return LSF_SCOPE_UNSPECIFIED;                          /* 0/8 */
    case 10: return LSF_SCOPE_PRIVATE;                             /* 10/8 */
    case 100: return (a[1] & 0xc0) == 64 ? LSF_SCOPE_CGNAT : LSF_SCOPE_GLOBAL; /* 100.64/10 */
    case 127: return LSF_SCOPE_LOOPBACK;                           /* 127/8 */
    case 169: return a[1] == 254 ? LSF_SCOPE_LINK_LOCAL : LSF_SCOPE_GLOBAL;
    case 172: return (a[1] & 0xf0) == 16 ? LSF_SCOPE_PRIVATE : LSF_SCOPE_GLOBAL; /* 172.16/12 */
    case 192:
        if (a[1] == 168)
            return LSF_SCOPE_PRIVATE;
        if (a[1] == 0 && a[2] == 0)
            return LSF_SCOPE_RESERVED;                             /* 192.0.0/24 */
        return a[1] == 0 && a[2] == 2 ? LSF_SCOPE_DOCUMENTATION : LSF_SCOPE_GLOBAL;
    case 198:
        if ((a[1] & 0xfe) == 18)
            return LSF_SCOPE_BENCHMARKING;                         /* 198.18/15 */
        return a[1] == 51 && a[2] == 100 ? LSF_SCOPE_DOCUMENTATION : LSF_SCOPE_GLOBAL;
    case 203: return a[1] == 0 && a[2] == 113 ? LSF_SCOPE_DOCUMENTATION : LSF_SCOPE_GLOBAL;
    case 255:
        if (a[1] == 255 && a[2] == 255 && a[3] == 255)
            return LSF_SCOPE_BROADCAST;
        return LSF_SCOPE_RESERVED;
    default:
        if (a[0] >= 240)
            return LSF_SCOPE_RESERVED;                             /* 240/4 */
        return a[0] >= 224 ? LSF_SCOPE_MULTICAST : LSF_SCOPE_GLOBAL; /* 224/4 */
    }
}

enum lsf_ip_scope lsf_ip_scope(const lsf_ip *ip)
{
    if (ip->v4)
        return scope_v4(ip->b + 12);
    for (size_t i = 0; i < sizeof(v6_ranges) / sizeof(v6_ranges[0]); i++)
        if (in_range(ip->b, &v6_ranges[i]))
            return (enum lsf_ip_scope)v6_ranges[i].scope;
    return LSF_SCOPE_GLOBAL;
}

const char *lsf_ip_scope_name(enum lsf_ip_scope s)
{
    static const char *const names[LSF_SCOPE_COUNT] = {
        "global",    "unspecified",  "loopback",  "private",   "cgnat",   "link_local",
        "documentation", "benchmarking", "multicast", "broadcast", "reserved"};
    return (unsigned)s < LSF_SCOPE_COUNT ? names[s] : "global";
}
