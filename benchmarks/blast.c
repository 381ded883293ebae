/* blast.c - send a prepared file of lines over loopback TCP as fast as possible.
 *
 *   blast HOST:PORT FILE [--conns N]
 *
 * Maps FILE, splits it at line boundaries into N equal parts (default 1) and
 * sends each part over its own TCP connection with large write()s, then
 * half-closes and waits for the server to close (or 2 s), so nothing is cut
 * off by an early reset. The bytes go out unchanged: FILE must already be
 * newline-framed.
 *
 * Prints one line to stdout:
 *   start_ns=N end_ns=N bytes=N lines=N
 * start_ns is CLOCK_REALTIME just before the first byte is written, end_ns
 * after the last; both use the clock that stamps file modification times, so
 * a harness can take "last line written" from the output file's mtime.
 * Exits 1 on any connect or send error, 2 on bad usage.
 *
 * Unlike tests/tools/sendlines (which re-frames every line and can pace), this
 * copies nothing: the kernel reads straight from the mapped file, so the
 * sender costs as little CPU as possible on a 2-core machine.
 */
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define CHUNK (1u << 20)
#define MAX_CONNS 64

typedef struct part {
    const char *p;
    size_t len;
    int fd;
    int err;
    pthread_t th;
} part;

static int64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static int dial(const char *spec)
{
    char host[256];
    const char *colon = strrchr(spec, ':');
    if (!colon || (size_t)(colon - spec) >= sizeof host)
        return -1;
    memcpy(host, spec, (size_t)(colon - spec));
    host[colon - spec] = 0;
    char *h = host;
    if (h[0] == '[') {
        h++;
        h[strlen(h) - 1] = 0;
    }
    struct addrinfo hints = {.ai_socktype = SOCK_STREAM}, *ai;
    if (getaddrinfo(h, colon + 1, &hints, &ai) != 0)
        return -1;
    int fd = socket(ai->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd >= 0 && connect(fd, ai->ai_addr, ai->ai_addrlen) != 0) {
        close(fd);
        fd = -1;
    }
    freeaddrinfo(ai);
    if (fd >= 0) {
        int sz = 4 << 20;
        setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &sz, sizeof sz);
    }
    return fd;
}

static void *send_part(void *arg)
{
    part *pt = arg;
    size_t off = 0;
    while (off < pt->len) {
        size_t n = pt->len - off < CHUNK ? pt->len - off : CHUNK;
        ssize_t w = write(pt->fd, pt->p + off, n);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            pt->err = errno;
            return NULL;
        }
        off += (size_t)w;
    }
    shutdown(pt->fd, SHUT_WR);
    return NULL;
}

int main(int argc, char **argv)
{
    if (argc < 3) {
        fprintf(stderr, "usage: blast HOST:PORT FILE [--conns N]\n");
        return 2;
    }
    int conns = 1;
    for (int i = 3; i < argc; i++) {
        if (strcmp(argv[i], "--conns") == 0 && i + 1 < argc)
            conns = atoi(argv[++i]);
        else {
            fprintf(stderr, "blast: unknown option %s\n", argv[i]);
            return 2;
        }
    }
    if (conns < 1 || conns > MAX_CONNS) {
        fprintf(stderr, "blast: --conns must be 1..%d\n", MAX_CONNS);
        return 2;
    }
    int in = open(argv[2], O_RDONLY | O_CLOEXEC);
    struct stat st;
    if (in < 0 || fstat(in, &st) != 0 || st.st_size == 0) {
        fprintf(stderr, "blast: %s: %s\n", argv[2], in < 0 ? strerror(errno) : "empty");
        return 1;
    }
    size_t size = (size_t)st.st_size;
    const char *map = mmap(NULL, size, PROT_READ, MAP_PRIVATE | MAP_POPULATE, in, 0);
    if (map == MAP_FAILED) {
        perror("blast: mmap");
        return 1;
    }
    size_t lines = 0;
    for (const char *p = map, *end = map + size; (p = memchr(p, '\n', (size_t)(end - p))); p++)
        lines++;

    /* Split at line boundaries; connect every part before the clock starts. */
    part parts[MAX_CONNS];
    size_t start = 0;
    for (int i = 0; i < conns; i++) {
        size_t stop = i == conns - 1 ? size : size / (size_t)conns * (size_t)(i + 1);
        if (stop < start)
            stop = start;
        while (stop < size && map[stop - 1] != '\n')
            stop++;
        parts[i] = (part){.p = map + start, .len = stop - start, .fd = dial(argv[1])};
        if (parts[i].fd < 0) {
            fprintf(stderr, "blast: cannot connect to %s\n", argv[1]);
            return 1;
        }
        start = stop;
    }
    int64_t t0 = now_ns();
    for (int i = 0; i < conns; i++)
        pthread_create(&parts[i].th, NULL, send_part, &parts[i]);
    int rc = 0;
    for (int i = 0; i < conns; i++) {
        pthread_join(parts[i].th, NULL);
        if (parts[i].err) {
            fprintf(stderr, "blast: send: %s\n", strerror(parts[i].err));
            rc = 1;
        }
    }
    int64_t t1 = now_ns();
    /* Wait for each server to close its side (it has read everything). */
    for (int i = 0; i < conns; i++) {
        struct pollfd pfd = {.fd = parts[i].fd, .events = POLLIN};
        char buf[256];
        while (poll(&pfd, 1, 2000) > 0 && read(parts[i].fd, buf, sizeof buf) > 0) {
        }
        close(parts[i].fd);
    }
    printf("start_ns=%lld end_ns=%lld bytes=%zu lines=%zu\n", (long long)t0, (long long)t1, size,
           lines);
    return rc;
}
