/* metrics.h - named counters every stage keeps (received, dropped, ...).
 *
 * Design: a counter is a relaxed atomic in a linked list created at start-up;
 * the hot path does one atomic add, nothing else. The list is printed on
 * shutdown and by the metrics endpoint.
 * Threads: lsf_counter_new on the main thread; add/get from any thread.
 */
#ifndef LSF_METRICS_H
#define LSF_METRICS_H

#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>

typedef struct lsf_counter {
    _Atomic uint64_t value;
    char name[96]; /* "<stage name>.<counter>", e.g. "syslog_tcp#0.truncated" */
    struct lsf_counter *next;
} lsf_counter;

/* Creates (or returns the existing) counter "<stage>.<what>". Never NULL. */
lsf_counter *lsf_counter_new(const char *stage, const char *what);
static inline void lsf_counter_add(lsf_counter *c, uint64_t n)
{
    atomic_fetch_add_explicit(&c->value, n, memory_order_relaxed);
}
static inline uint64_t lsf_counter_get(const lsf_counter *c)
{
    return atomic_load_explicit(&c->value, memory_order_relaxed);
}
/* Prints "name value" lines for every non-zero counter (all with `all`). */
void lsf_metrics_print(FILE *f, int all);
/* Frees every counter (at exit). */
void lsf_metrics_free(void);

#endif
