/* dgram.h - datagram reception shared by `syslog_udp` and `unix_dgram`
 * (implemented in syslog_udp.c): one datagram is one record, read with
 * recvmmsg on the I/O thread, kernel drops counted (see syslog_udp.c).
 *
 * Design: the input owns the socket's creation and its settings; lsf_dgram
 * owns everything after (buffers, the I/O loop registration, counters,
 * stop and destroy). A network input may set `allow` and `rate` after
 * setup; datagrams they refuse are dropped and counted.
 * Threads: setup/stop/destroy on the main thread (stop after the I/O thread
 * was joined); reception on the I/O thread.
 */
#ifndef LSF_DGRAM_H
#define LSF_DGRAM_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/uio.h>

#include "core/ioloop.h"
#include "core/metrics.h"
#include "core/stage.h"
#include "ingest/limits.h"
#include "ingest/listen.h"

#define LSF_DGRAM_VLEN 32    /* datagrams per recvmmsg */
#define LSF_DGRAM_ROUNDS 8   /* recvmmsg calls per readiness event, for fairness */
#define LSF_DGRAM_MAX 65536  /* no UDP payload is larger */

typedef struct lsf_dgram {
    lsf_stage *st;
    bool inited, started;
    int fd;
    int family; /* of the bound socket */
    lsf_io *io;
    lsf_ingest in;
    size_t max_bytes, slot;
    char *bufs; /* LSF_DGRAM_VLEN slots of `slot` bytes */
    struct mmsghdr msgs[LSF_DGRAM_VLEN];
    struct iovec iov[LSF_DGRAM_VLEN];
    struct sockaddr_storage names[LSF_DGRAM_VLEN];
    char ctrl[LSF_DGRAM_VLEN][CMSG_SPACE(sizeof(uint32_t)) + 16] __attribute__((aligned(8)));
    uint32_t drops_seen; /* last cumulative drop count of the socket */
    int64_t drops_polled_ns, mono_ns;
    /* last sender, formatted once and copied once per batch */
    struct sockaddr_storage last_peer;
    socklen_t last_peer_len;
    char last_addr[LSF_ADDR_STRLEN];
    size_t last_addr_len;
    lsf_addr_cache addr_cache;
    const lsf_allow *allow; /* NULL: everyone */
    lsf_rate *rate;         /* NULL: no limit; owned by the input */
    uint64_t not_allowed, rate_dropped; /* not yet published */
    lsf_counter *c_dropped, *c_errors, *c_not_allowed, *c_rate_limited;
} lsf_dgram;

/* Takes over the bound datagram socket fd (closed by stop/destroy). */
void lsf_dgram_setup(lsf_dgram *d, lsf_stage *st, int fd, int64_t receive_buffer,
                     int64_t max_message_size);
/* Registers with the I/O loop; `what` names the socket in the log. */
int lsf_dgram_start(lsf_dgram *d, const char *what);
/* Reads what is queued (bounded), submits, closes the socket. */
void lsf_dgram_stop(lsf_dgram *d);
void lsf_dgram_destroy(lsf_dgram *d);

#endif
