/* ioloop.c - the epoll I/O thread (see ioloop.h).
 *
 * Design: level-triggered epoll with one registration record per fd; a
 * 100 ms wait bound drives the tick callbacks (idle timeouts, partial batch
 * flushes) and lets lsf_io_stop take effect promptly. An eventfd wakes the
 * loop for stop requests.
 * Threads: everything but lsf_io_stop runs on the I/O thread once started.
 */
#include "ioloop.h"

#include <errno.h>
#include <stdbool.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include "log.h"

#define TICK_MS 100
#define MAX_EVENTS 128

typedef struct reg {
    int fd;
    lsf_io_cb cb;
    void *arg;
    struct reg *next;
} reg;

typedef struct tick {
    lsf_io_tick_cb cb;
    void *arg;
    struct tick *next;
} tick;

struct lsf_io {
    int epfd, wakefd;
    pthread_t thread;
    bool started;
    atomic_bool stop;
    reg *regs;   /* registrations (few: listeners and connections) */
    reg *dead;   /* removed during a round; freed after it */
    tick *ticks;
};

int64_t lsf_now_mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

int64_t lsf_now_real_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

lsf_io *lsf_io_new(void)
{
    lsf_io *io = calloc(1, sizeof(*io));
    if (!io)
        lsf_die("out of memory");
    io->epfd = epoll_create1(EPOLL_CLOEXEC);
    io->wakefd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (io->epfd < 0 || io->wakefd < 0)
        lsf_die("epoll/eventfd: %s", strerror(errno));
    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = NULL};
    epoll_ctl(io->epfd, EPOLL_CTL_ADD, io->wakefd, &ev);
    return io;
}

static void free_regs(reg *r)
{
    while (r) {
        reg *n = r->next;
        free(r);
        r = n;
    }
}

void lsf_io_free(lsf_io *io)
{
    if (!io)
        return;
    free_regs(io->regs);
    free_regs(io->dead);
    while (io->ticks) {
        tick *n = io->ticks->next;
        free(io->ticks);
        io->ticks = n;
    }
    close(io->epfd);
    close(io->wakefd);
    free(io);
}

int lsf_io_add(lsf_io *io, int fd, uint32_t events, lsf_io_cb cb, void *arg)
{
    reg *r = calloc(1, sizeof(*r));
    if (!r)
        lsf_die("out of memory");
    r->fd = fd;
    r->cb = cb;
    r->arg = arg;
    struct epoll_event ev = {.events = events, .data.ptr = r};
    if (epoll_ctl(io->epfd, EPOLL_CTL_ADD, fd, &ev) < 0) {
        int e = errno;
        free(r);
        return -e;
    }
    r->next = io->regs;
    io->regs = r;
    return 0;
}

static reg *find_reg(lsf_io *io, int fd, reg ***link)
{
    for (reg **pp = &io->regs; *pp; pp = &(*pp)->next)
        if ((*pp)->fd == fd) {
            if (link)
                *link = pp;
            return *pp;
        }
    return NULL;
}

int lsf_io_mod(lsf_io *io, int fd, uint32_t events, lsf_io_cb cb, void *arg)
{
    reg *r = find_reg(io, fd, NULL);
    if (!r)
        return -ENOENT;
    r->cb = cb;
    r->arg = arg;
    struct epoll_event ev = {.events = events, .data.ptr = r};
    return epoll_ctl(io->epfd, EPOLL_CTL_MOD, fd, &ev) < 0 ? -errno : 0;
}

void lsf_io_del(lsf_io *io, int fd)
{
    reg **link;
    reg *r = find_reg(io, fd, &link);
    if (!r)
        return;
    epoll_ctl(io->epfd, EPOLL_CTL_DEL, fd, NULL);
    *link = r->next;
    /* Events for r may still be pending in this round: keep it, inert. */
    r->cb = NULL;
    r->next = io->dead;
    io->dead = r;
}

void lsf_io_add_tick(lsf_io *io, lsf_io_tick_cb cb, void *arg)
{
    tick *t = calloc(1, sizeof(*t));
    if (!t)
        lsf_die("out of memory");
    t->cb = cb;
    t->arg = arg;
    t->next = io->ticks;
    io->ticks = t;
}

static void *io_thread(void *arg)
{
    lsf_io *io = arg;
    struct epoll_event evs[MAX_EVENTS];
    while (!atomic_load(&io->stop)) {
        int n = epoll_wait(io->epfd, evs, MAX_EVENTS, TICK_MS);
        if (n < 0 && errno != EINTR)
            lsf_die("epoll_wait: %s", strerror(errno));
        for (int i = 0; i < n; i++) {
            reg *r = evs[i].data.ptr;
            if (!r) { /* wake-up */
                uint64_t v;
                ssize_t rd = read(io->wakefd, &v, sizeof(v));
                (void)rd;
                continue;
            }
            if (r->cb)
                r->cb(r->arg, evs[i].events);
        }
        free_regs(io->dead);
        io->dead = NULL;
        int64_t now = lsf_now_mono_ns();
        for (tick *t = io->ticks; t; t = t->next)
            t->cb(t->arg, now);
    }
    return NULL;
}

int lsf_io_start(lsf_io *io)
{
    int rc = pthread_create(&io->thread, NULL, io_thread, io);
    if (rc)
        return -rc;
    io->started = true;
    return 0;
}

void lsf_io_stop(lsf_io *io)
{
    if (!io->started)
        return;
    atomic_store(&io->stop, true);
    uint64_t one = 1;
    ssize_t w = write(io->wakefd, &one, sizeof(one));
    (void)w;
    pthread_join(io->thread, NULL);
    io->started = false;
}
