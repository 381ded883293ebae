/* arena.c - chunked bump allocator (see arena.h). Single-threaded per arena. */
#include "arena.h"

#include <stdlib.h>
#include <string.h>

#include "log.h"

struct lsf_arena_chunk {
    lsf_arena_chunk *next;
    size_t size; /* usable bytes after the header */
    char data[];
};

static lsf_arena_chunk *chunk_new(size_t size)
{
    lsf_arena_chunk *c = malloc(sizeof(*c) + size);
    if (!c)
        lsf_die("out of memory (arena chunk of %zu bytes)", size);
    c->next = NULL;
    c->size = size;
    return c;
}

void lsf_arena_init(lsf_arena *a, size_t chunk_bytes)
{
    memset(a, 0, sizeof(*a));
    a->chunk_bytes = chunk_bytes ? chunk_bytes : 64 * 1024;
}

void lsf_arena_deinit(lsf_arena *a)
{
    lsf_arena_chunk *c = a->first;
    while (c) {
        lsf_arena_chunk *n = c->next;
        free(c);
        c = n;
    }
    memset(a, 0, sizeof(*a));
}

void lsf_arena_reset(lsf_arena *a)
{
    /* Keep the chain of standard chunks, drop oversized ones. */
    lsf_arena_chunk **pp = &a->first;
    while (*pp) {
        lsf_arena_chunk *c = *pp;
        if (c->size > a->chunk_bytes) {
            *pp = c->next;
            free(c);
        } else {
            pp = &c->next;
        }
    }
    a->head = a->first;
    a->cur = a->head ? a->head->data : NULL;
    a->end = a->head ? a->head->data + a->head->size : NULL;
    a->used_bytes = 0;
}

void *lsf_arena_alloc_slow(lsf_arena *a, size_t need)
{
    /* Try the next kept chunk before allocating a new one. */
    while (a->head && a->head->next) {
        a->head = a->head->next;
        a->cur = a->head->data;
        a->end = a->head->data + a->head->size;
        if ((size_t)(a->end - a->cur) >= need) {
            void *p = a->cur;
            a->cur += need;
            a->used_bytes += need;
            return p;
        }
    }
    size_t size = need > a->chunk_bytes ? need : a->chunk_bytes;
    lsf_arena_chunk *c = chunk_new(size);
    if (a->head) {
        c->next = a->head->next;
        a->head->next = c;
    } else {
        a->first = c;
    }
    a->head = c;
    a->cur = c->data + need;
    a->end = c->data + c->size;
    a->used_bytes += need;
    return c->data;
}

char *lsf_arena_memdup(lsf_arena *a, const void *src, size_t n)
{
    char *p = lsf_arena_alloc(a, n ? n : 1);
    if (n)
        memcpy(p, src, n);
    return p;
}
