/* write_all.h - write a whole buffer to a descriptor (see write_all.c). */
#ifndef LSF_WRITE_ALL_H
#define LSF_WRITE_ALL_H

#include <stddef.h>

/* Writes all n bytes, retrying on EINTR and waiting while the descriptor
 * would block. Returns 0, or the errno value of the failed write. */
int lsf_write_all(int fd, const char *p, size_t n);

#endif
