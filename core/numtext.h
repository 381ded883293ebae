/* numtext.h - integers as decimal text, without printf.
 *
 * Design: events carry numbers as int64 and several hot paths need them as
 * text (the JSON writer; rule conditions and anomaly keys reading an integer
 * field as a string). snprintf("%lld") costs ~600 instructions a call in
 * glibc; writing two digits at a time from a table costs ~30.
 * Threads: any (the tables are constant).
 */
#ifndef LSF_NUMTEXT_H
#define LSF_NUMTEXT_H

#include <stdint.h>
#include <string.h>

extern const char lsf_digits2[200];      /* "00" "01" ... "99" */
extern const uint64_t lsf_pow10_u64[20]; /* 10^0 .. 10^19 */

/* Writes v's digits at d (at most 20 bytes, no NUL); returns the new end. */
static inline char *lsf_u64_text(char *d, uint64_t v)
{
    unsigned n = 1;
    while (n < 20 && v >= lsf_pow10_u64[n])
        n++;
    char *e = d + n, *p = e;
    while (v >= 100) {
        p -= 2;
        memcpy(p, lsf_digits2 + 2 * (v % 100), 2);
        v /= 100;
    }
    if (v >= 10) {
        p -= 2;
        memcpy(p, lsf_digits2 + 2 * v, 2);
    } else {
        *--p = (char)('0' + v);
    }
    return e;
}

/* Writes v with its sign at d (at most 20 bytes, no NUL); returns the new end. */
static inline char *lsf_i64_text(char *d, int64_t v)
{
    if (v < 0) {
        *d++ = '-';
        return lsf_u64_text(d, (uint64_t)0 - (uint64_t)v);
    }
    return lsf_u64_text(d, (uint64_t)v);
}

#endif
