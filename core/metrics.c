/* metrics.c - the list of named counters (see metrics.h).
 * Threads: creation is serialised by a mutex; values are relaxed atomics.
 */
#include "metrics.h"

#include <inttypes.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"

static lsf_counter *counters;
static pthread_mutex_t counters_lock = PTHREAD_MUTEX_INITIALIZER;

lsf_counter *lsf_counter_new(const char *stage, const char *what)
{
    char name[sizeof(((lsf_counter *)0)->name)];
    snprintf(name, sizeof(name), "%s.%s", stage, what);
    pthread_mutex_lock(&counters_lock);
    lsf_counter **tail = &counters;
    for (lsf_counter *c = counters; c; c = c->next) {
        if (strcmp(c->name, name) == 0) {
            pthread_mutex_unlock(&counters_lock);
            return c;
        }
        tail = &c->next;
    }
    lsf_counter *c = calloc(1, sizeof(*c));
    if (!c)
        lsf_die("out of memory (counter)");
    memcpy(c->name, name, sizeof(name));
    *tail = c;
    pthread_mutex_unlock(&counters_lock);
    return c;
}

void lsf_metrics_print(FILE *f, int all)
{
    pthread_mutex_lock(&counters_lock);
    for (lsf_counter *c = counters; c; c = c->next) {
        uint64_t v = lsf_counter_get(c);
        if (v || all)
            fprintf(f, "%s %" PRIu64 "\n", c->name, v);
    }
    pthread_mutex_unlock(&counters_lock);
}

void lsf_metrics_free(void)
{
    pthread_mutex_lock(&counters_lock);
    while (counters) {
        lsf_counter *n = counters->next;
        free(counters);
        counters = n;
    }
    pthread_mutex_unlock(&counters_lock);
}
