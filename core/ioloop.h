/* ioloop.h - the I/O thread: one epoll loop shared by every network input.
 *
 * Design: inputs register file descriptors with a callback; after each round
 * of ready events (and at least every tick interval) the loop calls each
 * registered tick function, which is where inputs submit partially filled
 * batches and expire idle connections. Under load batches fill up; when
 * idle, a record waits at most one round before it is handed to workers.
 * Threads: all callbacks run on the I/O thread; lsf_io_add/del may only be
 * called from that thread or before lsf_io_start.
 */
#ifndef LSF_IOLOOP_H
#define LSF_IOLOOP_H

#include <stdint.h>

typedef struct lsf_io lsf_io;

/* `events` are EPOLLIN/EPOLLOUT/EPOLLERR/EPOLLHUP bits. */
typedef void (*lsf_io_cb)(void *arg, uint32_t events);
typedef void (*lsf_io_tick_cb)(void *arg, int64_t now_ns);

lsf_io *lsf_io_new(void);
void lsf_io_free(lsf_io *io);
/* Registers fd (level-triggered). Returns 0 or -errno. */
int lsf_io_add(lsf_io *io, int fd, uint32_t events, lsf_io_cb cb, void *arg);
int lsf_io_mod(lsf_io *io, int fd, uint32_t events, lsf_io_cb cb, void *arg);
void lsf_io_del(lsf_io *io, int fd);
/* Registers a function called after every round and every tick_ms. */
void lsf_io_add_tick(lsf_io *io, lsf_io_tick_cb cb, void *arg);
/* Starts the I/O thread. */
int lsf_io_start(lsf_io *io);
/* Asks the loop to finish its current round and stop; joins the thread. */
void lsf_io_stop(lsf_io *io);
/* Monotonic and wall clocks in ns. */
int64_t lsf_now_mono_ns(void);
int64_t lsf_now_real_ns(void);

#endif
