/* write_all.c - writing a whole buffer to a file descriptor, the one piece
 * of I/O the stdout and file sinks share.
 * Design: a non-blocking descriptor (a stdout inherited from a shell pipe
 * may be one) is waited on with poll, so a slow reader slows logsift down
 * (backpressure) instead of failing the batch.
 * Threads: any; no shared state.
 */
#include "write_all.h"

#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <unistd.h>

int lsf_write_all(int fd, const char *p, size_t n)
{
    while (n) {
        ssize_t w = write(fd, p, n > SSIZE_MAX ? SSIZE_MAX : n);
        if (w > 0) {
            p += w;
            n -= (size_t)w;
        } else if (w < 0 && errno == EINTR) {
            continue;
        } else if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            struct pollfd pfd = {.fd = fd, .events = POLLOUT};
            poll(&pfd, 1, -1);
        } else {
            return w < 0 ? errno : EIO;
        }
    }
    return 0;
}
