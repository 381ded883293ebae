/* ipaddr.h - IP address parsing and special-purpose ranges, for the
 * enrichment stages (geoip, cidr).
 *
 * Design: every address is held in one 16-byte IPv6 form; IPv4 addresses
 * (and IPv4-mapped IPv6 ones, ::ffff:a.b.c.d) are stored mapped and flagged
 * v4, so one comparison and one hash cover both families.
 * Threads: pure functions.
 */
#ifndef LSF_ENRICH_IPADDR_H
#define LSF_ENRICH_IPADDR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct lsf_ip {
    uint8_t b[16]; /* network order; IPv4 as ::ffff:a.b.c.d */
    bool v4;
} lsf_ip;

/* Parses a textual address: dotted IPv4 ("192.0.2.1", no leading zeros),
 * any IPv6 form, optionally with a zone ("fe80::1%eth0", ignored), in
 * brackets ("[2001:db8::1]") and with a port after it ("192.0.2.1:443",
 * "[2001:db8::1]:443"). Surrounding blanks are not accepted. Returns 0, or
 * -1 when `s` is not an address. */
int lsf_ip_parse(const char *s, size_t n, lsf_ip *out);

/* Formats an address (IPv4 dotted, IPv6 per RFC 5952) into buf (>= 46
 * bytes); returns its length. */
size_t lsf_ip_format(const lsf_ip *ip, char *buf);

/* Special-purpose ranges (IANA registries, RFC 6890 and successors). */
enum lsf_ip_scope {
    LSF_SCOPE_GLOBAL = 0,    /* anything else: looked up */
    LSF_SCOPE_UNSPECIFIED,   /* 0.0.0.0/8 ("this network"), :: */
    LSF_SCOPE_LOOPBACK,      /* 127/8, ::1 */
    LSF_SCOPE_PRIVATE,       /* 10/8, 172.16/12, 192.168/16, fc00::/7 (unique local) */
    LSF_SCOPE_CGNAT,         /* 100.64/10 (shared address space, RFC 6598) */
    LSF_SCOPE_LINK_LOCAL,    /* 169.254/16, fe80::/10 */
    LSF_SCOPE_DOCUMENTATION, /* 192.0.2/24, 198.51.100/24, 203.0.113/24, 2001:db8::/32, 3fff::/20 */
    LSF_SCOPE_BENCHMARKING,  /* 198.18/15, 2001:2::/48 */
    LSF_SCOPE_MULTICAST,     /* 224/4, ff00::/8 */
    LSF_SCOPE_BROADCAST,     /* 255.255.255.255 */
    LSF_SCOPE_RESERVED,      /* 192.0.0/24, 240/4, 100::/64 (discard) */
    LSF_SCOPE_COUNT
};

/* The scope of an address (LSF_SCOPE_GLOBAL for ordinary ones). */
enum lsf_ip_scope lsf_ip_scope(const lsf_ip *ip);
/* "private", "loopback", ... (static strings); "global" for LSF_SCOPE_GLOBAL. */
const char *lsf_ip_scope_name(enum lsf_ip_scope s);

/* A well-mixed 64-bit hash of the address. */
static inline uint64_t lsf_ip_hash(const lsf_ip *ip)
{
    uint64_t a, b;
    __builtin_memcpy(&a, ip->b, 8);
    __builtin_memcpy(&b, ip->b + 8, 8);
    uint64_t h = (a ^ 0x9e3779b97f4a7c15ull) * 0xff51afd7ed558ccdull;
    h ^= b + (h >> 29);
    h *= 0xc4ceb9fe1a85ec53ull;
    return h ^ (h >> 32);
}

static inline bool lsf_ip_eq(const lsf_ip *x, const lsf_ip *y)
{
    return __builtin_memcmp(x->b, y->b, 16) == 0;
}

#endif
