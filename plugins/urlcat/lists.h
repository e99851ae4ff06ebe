/* lists.h - loading urlcat's list files (UT1/squidGuard trees, e2guardian-style lists) into a snapshot. */
#ifndef URLCAT_LISTS_H
#define URLCAT_LISTS_H

#include <stdint.h>
#include <time.h>

#include "conf.h"
#include "db.h"

/* A file or directory the lists were read from, as it was then. */
typedef struct uc_filestat {
    char *path;
    int64_t mtime_ns;
    int64_t size;
    uint64_t ino;
    int exists;
} uc_filestat_t;

/*
 * The lists of one load: the database and, per policy of the
 * configuration, the categories that block and those that are exceptions,
 * resolved against this database (category numbers differ between
 * loads). Immutable; shared by every worker thread.
 */
struct uc_lists {
    ucdb_t *db;
    int npol;
    ucset_t *block;       /* per policy */
    ucset_t *allow;       /* per policy: exception lists and categories */
    ucset_t *want;        /* block | allow: what a lookup must decide */
    ucset_t internal;     /* exception lists (not shown as categories) */
    uc_filestat_t *files; /* everything read, for the watcher */
    int nfiles;
    uint64_t sig;         /* signature of files at load time */
    double load_s;        /* wall time of the load */
    size_t skipped;       /* bad lines skipped (list_errors warn) */
};

/* Receives one warning (a bad line skipped under list_errors warn). */
typedef void (*uc_warn_fn)(void *arg, const char *msg);

/* Loads every list of conf and resolves its policies. Returns the lists,
 * or NULL with "FILE:LINE: message" in err (a bad list line, a missing
 * file, an unknown category in block). The caller frees the result with
 * uc_lists_free(). Blocking: never call it on a traffic loop. */
uc_lists_t *uc_lists_load(const uc_conf_t *conf, uc_warn_fn warn, void *arg,
                          char *err, size_t errlen);
void uc_lists_free(uc_lists_t *l);

/* The signature of l's files as they are now (stat()s each: blocking). */
uint64_t uc_lists_stat_sig(const uc_lists_t *l);

/* One line for the log: time, counts, categories and memory. */
void uc_lists_summary(const uc_lists_t *l, char *buf, size_t len);

#endif
