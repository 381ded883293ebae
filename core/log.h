/* log.h - logsift's own log, to stderr, with levels.
 * Threads: safe from any thread (one fprintf per message).
 */
#ifndef LSF_LOG_H
#define LSF_LOG_H

enum lsf_log_level { LSF_LOG_ERROR, LSF_LOG_WARN, LSF_LOG_INFO, LSF_LOG_DEBUG };

extern int lsf_log_threshold;

/* Parses "error", "warn", "info", "debug"; returns the level or -1. */
int lsf_log_level_parse(const char *name);
void lsf_log(int level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Prints "logsift: fatal: ..." and aborts; used for out of memory. */
void lsf_die(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));

#define lsf_err(...) lsf_log(LSF_LOG_ERROR, __VA_ARGS__)
#define lsf_warn(...) lsf_log(LSF_LOG_WARN, __VA_ARGS__)
#define lsf_info(...) lsf_log(LSF_LOG_INFO, __VA_ARGS__)
#define lsf_debug(...)                                  \
    do {                                                \
        if (lsf_log_threshold >= LSF_LOG_DEBUG)         \
            lsf_log(LSF_LOG_DEBUG, __VA_ARGS__);        \
    } while (0)

#endif
