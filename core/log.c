/* log.c - self-log to stderr: "2026-01-02T03:04:05Z logsift[pid] LEVEL: msg".
 * Threads: each message is formatted into a local buffer and written with one
 * write(2), so lines from different threads never interleave.
 */
#include "log.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

int lsf_log_threshold = LSF_LOG_INFO;

static const char *const level_names[] = {"error", "warn", "info", "debug"};

int lsf_log_level_parse(const char *name)
{
    for (int i = 0; i < 4; i++)
        if (strcmp(name, level_names[i]) == 0)
            return i;
    return -1;
}

static void vlog(const char *level, const char *fmt, va_list ap)
{
    char buf[2048];
    time_t now = time(NULL);
    struct tm tm;
    gmtime_r(&now, &tm);
    int n = (int)strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%SZ", &tm);
    n += snprintf(buf + n, sizeof(buf) - (size_t)n, " logsift[%d] %s: ", (int)getpid(), level);
    int m = vsnprintf(buf + n, sizeof(buf) - (size_t)n - 1, fmt, ap);
    if (m < 0)
        m = 0;
    n += m;
    if (n > (int)sizeof(buf) - 2)
        n = (int)sizeof(buf) - 2;
    buf[n++] = '\n';
    ssize_t w = write(2, buf, (size_t)n);
    (void)w;
}

void lsf_log(int level, const char *fmt, ...)
{
    if (level > lsf_log_threshold)
        return;
    va_list ap;
    va_start(ap, fmt);
    vlog(level_names[level], fmt, ap);
    va_end(ap);
}

void lsf_die(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vlog("fatal", fmt, ap);
    va_end(ap);
    abort();
}
