/* cidr_index.h - longest-prefix-match index over IPv4 and IPv6 networks,
 * for the `cidr` stage (see cidr_index.c).
 * Threads: built on one thread, then read-only; lookups from any thread.
 */
#ifndef LSF_ENRICH_CIDR_INDEX_H
#define LSF_ENRICH_CIDR_INDEX_H

#include <stddef.h>
#include <stdint.h>

#include "core/config.h"
#include "enrich/ipaddr.h"

typedef struct lsf_cidr_net {
    lsf_ip ip;      /* the network address (host bits zero) */
    uint8_t len;    /* prefix length within its family (0-32 or 0-128) */
    uint32_t row;   /* what a match returns */
    int line, col;  /* where it was written, for errors */
} lsf_cidr_net;

/* Parses "10.0.0.0/8", "2001:db8::/32" or a bare address (a /32 or /128).
 * Returns 0, or -1 with a reason in `why` (e.g. host bits set, with the
 * network that was probably meant). */
int lsf_cidr_parse(const char *s, lsf_cidr_net *net, char *why, size_t cap);
/* Formats a network as "a.b.c.d/n" or "x::/n" into buf (>= 50 bytes). */
void lsf_cidr_format(const lsf_cidr_net *net, char *buf);

typedef struct lsf_cidr_index lsf_cidr_index;

/* Builds the index; sorts `nets` in place. For every network that lies
 * inside another, inherit(arg, row, parent_row) is called with the
 * innermost enclosing one, parents before children. A network listed twice
 * is an error: NULL with err "path:line:col: ...". */
lsf_cidr_index *lsf_cidr_index_build(lsf_cidr_net *nets, size_t n, const char *path,
                                     void (*inherit)(void *arg, uint32_t row, uint32_t parent),
                                     void *arg, lsf_errbuf *err);
/* The row of the longest prefix containing ip, or -1. */
int64_t lsf_cidr_index_find(const lsf_cidr_index *x, const lsf_ip *ip);
/* Number of ranges the networks were flattened into (v4 + v6). */
size_t lsf_cidr_index_ranges(const lsf_cidr_index *x);
void lsf_cidr_index_free(lsf_cidr_index *x);

#endif
