/* slab.c - memory for a key group's records (keys.c): size classes of 64
 * bytes carved from large chunks, freed records kept on per-class lists.
 *
 * The one design choice to know: chunks from 2 MiB up are 2 MiB-aligned and
 * advised as transparent huge pages. Records are read at random, one or two
 * per event, across hundreds of megabytes; with 4 KiB pages nearly every one
 * is also a TLB miss (and, in a virtual machine, a two-level page walk), and
 * prefetches that miss the TLB may be dropped. Chunks grow from 256 KiB by
 * doubling (to 64 MiB), so a stage with few keys holds little memory.
 * Memory goes back to the system only when the group is freed; the keys'
 * budgets (keys.c) count records as before, whatever the chunks hold.
 * Under AddressSanitizer free records are poisoned.
 *
 * Threads: any; one mutex per slab (records are created and freed only when
 * keys come and go, not per event).
 */
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "anomaly/anomaly.h"
#include "core/log.h"

#if defined(__SANITIZE_ADDRESS__)
#include <sanitizer/asan_interface.h>
#define POISON(p, n) ASAN_POISON_MEMORY_REGION(p, n)
#define UNPOISON(p, n) ASAN_UNPOISON_MEMORY_REGION(p, n)
#else
#define POISON(p, n) ((void)(p), (void)(n))
#define UNPOISON(p, n) ((void)(p), (void)(n))
#endif

#define CLASS 64
#define FIRST_CHUNK (256u << 10)
#define HUGE_PAGE (2u << 20)
#define MAX_CHUNK (64u << 20)

void lsf_anom_slab_init(lsf_anom_slab *s)
{
    memset(s, 0, sizeof(*s));
    pthread_mutex_init(&s->m, NULL);
}

void lsf_anom_slab_free(lsf_anom_slab *s)
{
    for (size_t i = 0; i < s->nchunks; i++) {
        UNPOISON(s->chunks[i].p, s->chunks[i].len);
        munmap(s->chunks[i].p, s->chunks[i].len);
    }
    free(s->chunks);
    free(s->free);
    pthread_mutex_destroy(&s->m);
    memset(s, 0, sizeof(*s));
}

/* A new chunk of at least `need` bytes becomes the one records are cut from. */
static void new_chunk(lsf_anom_slab *s, size_t need)
{
    size_t len = s->nchunks ? s->chunks[s->nchunks - 1].len * 2 : FIRST_CHUNK;
    if (len > MAX_CHUNK)
        len = MAX_CHUNK;
    while (len < need)
        len *= 2;
    size_t map = len >= HUGE_PAGE ? len + HUGE_PAGE : len;
    char *p = mmap(NULL, map, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED)
        lsf_die("out of memory (anomaly keys)");
    if (len >= HUGE_PAGE) { /* keep the 2 MiB-aligned part */
        char *a = (char *)(((uintptr_t)p + HUGE_PAGE - 1) & ~(uintptr_t)(HUGE_PAGE - 1));
        if (a > p)
            munmap(p, (size_t)(a - p));
        if (a + len < p + map)
            munmap(a + len, (size_t)(p + map - (a + len)));
        p = a;
#ifdef MADV_HUGEPAGE
        madvise(p, len, MADV_HUGEPAGE); /* a hint: without huge pages it works as well */
#endif
    }
    if (s->nchunks == s->capchunks) {
        s->capchunks = s->capchunks ? s->capchunks * 2 : 8;
        s->chunks = realloc(s->chunks, s->capchunks * sizeof(*s->chunks));
        if (!s->chunks)
            lsf_die("out of memory (anomaly keys)");
    }
    s->chunks[s->nchunks].p = p;
    s->chunks[s->nchunks].len = len;
    s->nchunks++;
    POISON(p, len);
    s->cur = p;
    s->left = len;
}

void *lsf_anom_slab_alloc(lsf_anom_slab *s, size_t n)
{
    size_t c = (n + CLASS - 1) / CLASS, sz = c * CLASS;
    pthread_mutex_lock(&s->m);
    if (c >= s->nclass) {
        size_t nc = c + 1 > s->nclass * 2 ? c + 1 : s->nclass * 2;
        s->free = realloc(s->free, nc * sizeof(void *));
        if (!s->free)
            lsf_die("out of memory (anomaly keys)");
        memset(s->free + s->nclass, 0, (nc - s->nclass) * sizeof(void *));
        s->nclass = nc;
    }
    void *p = s->free[c];
    if (p) {
        UNPOISON(p, sz);
        memcpy(&s->free[c], p, sizeof(void *));
    } else {
        if (s->left < sz)
            new_chunk(s, sz);
        p = s->cur;
        s->cur += sz;
        s->left -= sz;
        UNPOISON(p, sz);
    }
    pthread_mutex_unlock(&s->m);
    return p;
}

void lsf_anom_slab_put(lsf_anom_slab *s, void *p, size_t n)
{
    size_t c = (n + CLASS - 1) / CLASS;
    pthread_mutex_lock(&s->m);
    memcpy(p, &s->free[c], sizeof(void *));
    s->free[c] = p;
    POISON((char *)p + sizeof(void *), c * CLASS - sizeof(void *));
    pthread_mutex_unlock(&s->m);
}
