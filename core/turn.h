/* turn.h - taking turns in batch submission order.
 *
 * Design: stages that keep per-key state (detections, anomaly scoring) work
 * on batches in parallel but must apply each shard's updates in the order
 * batches were submitted (b->seq), so results do not depend on how batches
 * were spread over workers. A turn is a mutex, a condition variable and the
 * sequence number whose turn it is; a worker waits for its batch's number,
 * does its work holding the lock, and passes the turn on.
 * Threads: any; every batch's seq must take its turn exactly once.
 */
#ifndef LSF_TURN_H
#define LSF_TURN_H

#include <pthread.h>
#include <stdint.h>

typedef struct lsf_turn {
    pthread_mutex_t m;
    pthread_cond_t c;
    uint64_t next; /* seq of the batch whose turn it is */
    char pad[64];  /* turns sit in arrays: keep them on their own cache lines */
} lsf_turn;

static inline void lsf_turn_init(lsf_turn *t)
{
    pthread_mutex_init(&t->m, NULL);
    pthread_cond_init(&t->c, NULL);
    t->next = 0;
}

static inline void lsf_turn_deinit(lsf_turn *t)
{
    pthread_mutex_destroy(&t->m);
    pthread_cond_destroy(&t->c);
}

/* Waits until it is `seq`'s turn; returns holding the turn's lock. */
static inline void lsf_turn_wait(lsf_turn *t, uint64_t seq)
{
    pthread_mutex_lock(&t->m);
    while (t->next != seq)
        pthread_cond_wait(&t->c, &t->m);
}

/* Passes the turn to the next batch and releases the lock. */
static inline void lsf_turn_done(lsf_turn *t)
{
    t->next++;
    pthread_cond_broadcast(&t->c);
    pthread_mutex_unlock(&t->m);
}

#endif
