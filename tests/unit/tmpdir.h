/* tmpdir.h - a scratch directory for a unit-test program: made by the group
 * setup, removed with its contents by the group teardown. Under $TMPDIR when
 * set, else /tmp. Include in one test program's .c file only.
 */
#ifndef LSF_TEST_TMPDIR_H
#define LSF_TEST_TMPDIR_H

#include <stdio.h>
#include <stdlib.h>

static char tmpdir[96]; /* short: tests build paths below it in fixed buffers */

/* Creates tmpdir as <base>/lsf-<tag>-XXXXXX; 0 or -1 (cmocka setup style). */
static inline int tmpdir_make(const char *tag)
{
    const char *base = getenv("TMPDIR");
    snprintf(tmpdir, sizeof(tmpdir), "%s/lsf-%s-XXXXXX", base && *base ? base : "/tmp", tag);
    return mkdtemp(tmpdir) ? 0 : -1;
}

/* Group teardown: removes tmpdir and everything in it. */
static inline int tmpdir_remove(void **state)
{
    (void)state;
    char cmd[512];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
    return system(cmd) == 0 ? 0 : -1;
}

#endif
