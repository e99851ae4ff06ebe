/* log.c - the error log: levels, connection ids, reopen on SIGUSR1. */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "log.h"

static atomic_int log_level = CONF_LOG_INFO;
static atomic_int log_fd = 2;
static atomic_int log_copy_stderr;
static char log_path[4096];
static pthread_mutex_t log_path_lock = PTHREAD_MUTEX_INITIALIZER;
static _Thread_local int log_worker;

static const char *const level_names[] = {
    "emerg", "alert", "crit", "error", "warn", "notice", "info", "debug",
};

const char *log_level_name(enum conf_log_level level)
{
    if ((unsigned)level >= sizeof(level_names) / sizeof(level_names[0]))
        return "?";
    return level_names[level];
}

void log_init(void)
{
    atomic_store(&log_fd, 2);
    atomic_store(&log_level, CONF_LOG_INFO);
}

void log_set_level(enum conf_log_level level)
{
    atomic_store(&log_level, (int)level);
}

int log_enabled(enum conf_log_level level)
{
    return (int)level <= atomic_load(&log_level);
}

void log_set_worker(int id)
{
    log_worker = id;
}

void log_set_stderr_copy(int on)
{
    atomic_store(&log_copy_stderr, on);
}

static int open_log_file(const char *path)
{
    return open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640);
}

int log_open(const char *path, enum conf_log_level level, char *err,
             size_t errlen)
{
    int fd, cur;

    pthread_mutex_lock(&log_path_lock);
    if (strcmp(path, "stderr") == 0) {
        cur = atomic_load(&log_fd);
        if (cur != 2) {
            atomic_store(&log_fd, 2);
            close(cur);
        }
        log_path[0] = '\0';
        goto done;
    }
    fd = open_log_file(path);
    if (fd < 0) {
        snprintf(err, errlen, "cannot open error log '%s': %s", path,
                 strerror(errno));
        pthread_mutex_unlock(&log_path_lock);
        return -1;
    }
    cur = atomic_load(&log_fd);
    if (cur == 2) {
        atomic_store(&log_fd, fd);
    } else {
        /* Keep the descriptor number: threads may be writing to it. */
        if (dup2(fd, cur) < 0) {
            snprintf(err, errlen, "cannot switch error log to '%s': %s", path,
                     strerror(errno));
            close(fd);
            pthread_mutex_unlock(&log_path_lock);
            return -1;
        }
        close(fd);
    }
    snprintf(log_path, sizeof(log_path), "%s", path);
done:
    atomic_store(&log_level, (int)level);
    pthread_mutex_unlock(&log_path_lock);
    return 0;
}

int log_reopen(void)
{
    int fd, rc = 0;

    pthread_mutex_lock(&log_path_lock);
    if (log_path[0] == '\0')
        goto out;
    fd = open_log_file(log_path);
    if (fd < 0) {
        rc = -1;
        goto out;
    }
    if (dup2(fd, atomic_load(&log_fd)) < 0)
        rc = -1;
    close(fd);
out:
    pthread_mutex_unlock(&log_path_lock);
    return rc;
}

/* Copies src into dst, escaping control bytes; returns the new length. */
static size_t append_escaped(char *dst, size_t pos, size_t cap, const char *src)
{
    static const char hex[] = "0123456789abcdef";

    for (; *src && pos + 5 < cap; src++) {
        unsigned char ch = (unsigned char)*src;
        if (ch < 0x20 || ch == 0x7f) {
            dst[pos++] = '\\';
            dst[pos++] = 'x';
            dst[pos++] = hex[ch >> 4];
            dst[pos++] = hex[ch & 15];
        } else {
            dst[pos++] = (char)ch;
        }
    }
    return pos;
}

void log_write(enum conf_log_level level, uint64_t conn_id, const char *fmt, ...)
{
    char msg[2048], line[8192];
    struct timespec ts;
    struct tm tm;
    size_t pos;
    va_list ap;
    int fd;

    if (!log_enabled(level))
        return;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);

    clock_gettime(CLOCK_REALTIME, &ts);
    localtime_r(&ts.tv_sec, &tm);
    pos = strftime(line, sizeof(line), "%Y/%m/%d %H:%M:%S", &tm);
    pos += (size_t)snprintf(line + pos, sizeof(line) - pos, " [%s] %d#%d: ",
                            log_level_name(level), (int)getpid(), log_worker);
    if (conn_id)
        pos += (size_t)snprintf(line + pos, sizeof(line) - pos, "*%llu ",
                                (unsigned long long)conn_id);
    pos = append_escaped(line, pos, sizeof(line) - 1, msg);
    line[pos++] = '\n';

    fd = atomic_load(&log_fd);
    if (write(fd, line, pos) < 0) {
        /* Nowhere left to report it; the line is lost. */
    }
    if (fd != 2 && atomic_load(&log_copy_stderr)) {
        if (write(2, line, pos) < 0) {
        }
    }
}
