/* log.h - the error log: levels, connection ids, reopen on SIGUSR1. */
#ifndef PC_LOG_H
#define PC_LOG_H

#include <stddef.h>
#include <stdint.h>

#include "conf.h"

/*
 * Lines look like nginx's, so admins and tests can grep them:
 *   2026/11/26 23:40:00 [error] 1234#0: *42 upstream timed out
 * "1234#0" is the pid and the worker (0 is the main thread, 1.. workers);
 * "*42" is the client connection id, left out when there is none. Bytes
 * below 0x20 and 0x7f in messages are written as \xNN, so client-supplied
 * text cannot forge log lines.
 *
 * Any thread may log: a line is one write(2) on an O_APPEND descriptor. The
 * descriptor number never changes; reopening dup2()s the new file onto it.
 */

/* Sends lines to stderr at level info until log_open() is called. */
void log_init(void);
/* Opens PATH ("stderr" for standard error) for the error log. Returns 0, or
 * -1 with a message in err. */
int log_open(const char *path, enum conf_log_level level, char *err,
             size_t errlen);
/* Reopens the file after rotation. Returns 0 or -1 (the old file is kept). */
int log_reopen(void);
void log_set_level(enum conf_log_level level);
int log_enabled(enum conf_log_level level);
/* The worker number printed after the pid, per thread. */
void log_set_worker(int id);
const char *log_level_name(enum conf_log_level level);
/* Also copy lines to stderr (used while starting in the foreground). */
void log_set_stderr_copy(int on);

void log_write(enum conf_log_level level, uint64_t conn_id, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#define log_emerg(id, ...) log_write(CONF_LOG_EMERG, (id), __VA_ARGS__)
#define log_alert(id, ...) log_write(CONF_LOG_ALERT, (id), __VA_ARGS__)
#define log_crit(id, ...) log_write(CONF_LOG_CRIT, (id), __VA_ARGS__)
#define log_error(id, ...) log_write(CONF_LOG_ERR, (id), __VA_ARGS__)
#define log_warn(id, ...) log_write(CONF_LOG_WARN, (id), __VA_ARGS__)
#define log_notice(id, ...) log_write(CONF_LOG_NOTICE, (id), __VA_ARGS__)
#define log_info(id, ...) log_write(CONF_LOG_INFO, (id), __VA_ARGS__)
#define log_debug(id, ...)                                   \
    do {                                                     \
        if (log_enabled(CONF_LOG_DEBUG))                     \
            log_write(CONF_LOG_DEBUG, (id), __VA_ARGS__);    \
    } while (0)

#endif
