/* arena.h - bump allocator that owns every byte a batch points at.
 *
 * Design: memory comes in chunks that are kept across resets, so a steady
 * stream of batches allocates nothing after warm-up. Oversized chunks (from a
 * 1 MB line, say) are released on reset so one odd message does not pin
 * memory for ever.
 * Threads: an arena belongs to one batch and is used by one thread at a time.
 */
#ifndef LSF_ARENA_H
#define LSF_ARENA_H

#include <stddef.h>
#include <stdint.h>

typedef struct lsf_arena_chunk lsf_arena_chunk;

typedef struct lsf_arena {
    lsf_arena_chunk *head;  /* chunk being filled */
    lsf_arena_chunk *first; /* first chunk, kept across resets */
    char *cur, *end;
    size_t chunk_bytes;     /* default chunk size */
    size_t used_bytes;      /* total handed out since the last reset */
} lsf_arena;

void lsf_arena_init(lsf_arena *a, size_t chunk_bytes);
void lsf_arena_deinit(lsf_arena *a);
/* Forget every allocation; keeps standard-size chunks for reuse. */
void lsf_arena_reset(lsf_arena *a);
/* Slow path of lsf_arena_alloc: opens a new chunk. Aborts on out of memory. */
void *lsf_arena_alloc_slow(lsf_arena *a, size_t n);

/* Returns n bytes aligned to 8, never NULL (out of memory aborts). */
static inline void *lsf_arena_alloc(lsf_arena *a, size_t n)
{
    size_t need = (n + 7u) & ~(size_t)7u;
    if ((size_t)(a->end - a->cur) >= need && a->cur) {
        void *p = a->cur;
        a->cur += need;
        a->used_bytes += need;
        return p;
    }
    return lsf_arena_alloc_slow(a, need);
}

/* Copies n bytes into the arena; the copy is not NUL-terminated. */
char *lsf_arena_memdup(lsf_arena *a, const void *src, size_t n);

#endif
