/* limits.h - per-listener limits shared by the network inputs: allow-lists
 * of source networks and a message rate limit per source address.
 *
 * Design: an allow-list is a short array of CIDR prefixes checked in order
 * (listeners allow a handful of networks, not thousands). The rate limit is
 * a token bucket per source IP address (the port is ignored) in a fixed
 * open-addressing table: `rate` messages per second, bursts of `burst`;
 * when a probe finds no slot for an address the least recently used slot
 * of its probe window is taken over, so memory stays fixed whatever the
 * number of senders. Streams (TCP) are paused until the bucket
 * refills, so nothing is lost; datagrams over the limit are dropped. Each
 * input counts every time a limit acts.
 * Threads: an lsf_allow is read-only after parsing; an lsf_rate belongs to
 * one thread (the I/O thread).
 */
#ifndef LSF_LIMITS_H
#define LSF_LIMITS_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>

#include "core/config.h"

typedef struct lsf_cidr {
    uint8_t family; /* AF_INET or AF_INET6 */
    uint8_t bits;
    uint8_t addr[16];
} lsf_cidr;

typedef struct lsf_allow {
    lsf_cidr *v;
    size_t n; /* 0: everyone is allowed */
} lsf_allow;

/* Parses "10.0.0.0/8", "192.0.2.7", "2001:db8::/32" entries of `list`.
 * Returns 0, or -1 with err set at `at` (the key's node). */
int lsf_allow_parse(lsf_allow *a, const lsf_strlist *list, const lsf_node *at, lsf_errbuf *err);
void lsf_allow_free(lsf_allow *a);
/* True when the list is empty or sa's address is in one of its networks
 * (an IPv4-mapped IPv6 address is matched as IPv4). */
bool lsf_allow_match(const lsf_allow *a, const struct sockaddr *sa);

typedef struct lsf_rate lsf_rate;

/* `per_sec` messages per second per address, bursts up to `burst`
 * (>= 1). Never NULL. */
lsf_rate *lsf_rate_new(double per_sec, double burst);
void lsf_rate_free(lsf_rate *r);
/* Takes n tokens for sa's address. Returns 0 when they were there, else
 * how many ns until the bucket is back to zero (the tokens are taken
 * anyway: a stream that already read the messages keeps them and waits). */
int64_t lsf_rate_take(lsf_rate *r, const struct sockaddr *sa, double n, int64_t now_ns);
/* True when sa may send one more datagram now (takes a token if so). */
bool lsf_rate_allow_one(lsf_rate *r, const struct sockaddr *sa, int64_t now_ns);

#endif
