/* hash.h - the 64-bit hash anomaly/ uses for keys, values and templates.
 *
 * Design: stable across runs and machines of the same byte order (template
 * ids and snapshot keys depend on it), fast on short strings: eight bytes at
 * a time through a multiply-xorshift mixer (the finaliser of SplitMix64,
 * Steele, Lea & Flood, "Fast splittable pseudorandom number generators",
 * OOPSLA 2014). Not a cryptographic hash: keys come from logs an attacker
 * may shape, so tables that key on it bound their probe length and memory
 * instead of trusting the distribution.
 * Threads: pure functions.
 */
#ifndef LSF_ANOMALY_HASH_H
#define LSF_ANOMALY_HASH_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

static inline uint64_t lsf_mix64(uint64_t x)
{
    x ^= x >> 30;
    x *= 0xbf58476d1ce4e5b9ULL;
    x ^= x >> 27;
    x *= 0x94d049bb133111ebULL;
    x ^= x >> 31;
    return x;
}

/* The bytes of p[0..n), n < 8, as a little-endian word padded with zeros,
 * read with fixed-size loads (a variable-length memcpy is a library call). */
static inline uint64_t lsf_hash_tail(const unsigned char *p, size_t n)
{
    if (n >= 4) {
        uint32_t lo, hi;
        memcpy(&lo, p, 4);
        memcpy(&hi, p + n - 4, 4); /* overlaps lo: the shared bytes agree */
        return (uint64_t)lo | (uint64_t)hi << (8 * (n - 4));
    }
    if (n == 0)
        return 0;
    return (uint64_t)p[0] | (uint64_t)p[n / 2] << (8 * (n / 2)) | (uint64_t)p[n - 1] << (8 * (n - 1));
}

static inline uint64_t lsf_hash64(const void *data, size_t n, uint64_t seed)
{
    const unsigned char *p = data;
    uint64_t h = seed ^ (0x9e3779b97f4a7c15ULL * (n + 1));
    const int whole = n >= 8; /* at least one full word was read */
    while (n >= 8) {
        uint64_t v;
        memcpy(&v, p, 8);
        h = lsf_mix64(h ^ v) + 0x9e3779b97f4a7c15ULL;
        p += 8;
        n -= 8;
    }
    uint64_t v = 0;
    if (whole && n) { /* the last 8 bytes of the input, shifted down to the n left */
        memcpy(&v, p + n - 8, 8);
        v >>= 8 * (8 - n);
    } else
        v = lsf_hash_tail(p, n);
    return lsf_mix64(h ^ v ^ ((uint64_t)n << 56));
}

#endif
