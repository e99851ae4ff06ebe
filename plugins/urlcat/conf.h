/* conf.h - urlcat's configuration object: list sources, policies, options, and the live lists. */
#ifndef URLCAT_CONF_H
#define URLCAT_CONF_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>

#include <portcullis/plugin.h>

#include "db.h"
#include "netaddr.h"

/* Where a list comes from. */
enum uc_src_kind {
    UC_SRC_TREE,        /* lists DIR: a squidGuard/UT1 tree */
    UC_SRC_DOMAINS,     /* domain_list FILE [CATEGORY] */
    UC_SRC_URLS,        /* url_list FILE [CATEGORY] */
    UC_SRC_EXPRESSIONS, /* expression_list FILE [CATEGORY] */
    UC_SRC_ALLOW,       /* allow FILE: an exception list */
};

typedef struct uc_source {
    enum uc_src_kind kind;
    char *path;          /* resolved against the config file */
    char *category;      /* given in the directive, or NULL */
    char *file;          /* where the directive is */
    int line;
} uc_source_t;

/* A category name as written in a directive, with its place for errors. */
typedef struct uc_name {
    char *name;          /* lowercased */
    char *file;
    int line;
} uc_name_t;

typedef struct uc_policy {
    char *name;          /* "default" for the top level */
    char *file;
    int line;
    netaddr_set_t *clients;   /* NULL: the default policy */
    uc_name_t *block;
    int nblock;
    uc_name_t *allow_cat;     /* allow_category */
    int nallow_cat;
    int *allow_src;           /* indexes of its allow FILE sources */
    int nallow_src;
    int log_only;             /* -1: as the top level says */
} uc_policy_t;

typedef struct uc_lists uc_lists_t;

/*
 * One configuration. The directives fill it on the main thread; after
 * conf_finish() it is read-only, except for `cur`, the lists in force,
 * which the list watcher replaces when files change: readers take the
 * read lock for the length of one lookup, the watcher the write lock for
 * the pointer swap. It is reference-counted because a list rebuild on the
 * work pool may outlive the host's use of it (conf_free drops the host's
 * reference).
 */
typedef struct uc_conf {
    atomic_int refs;
    uc_source_t *src;
    int nsrc;
    uc_policy_t *pol;    /* pol[0]: the top level; then policy blocks */
    int npol;
    int log_only;        /* log_only (top level) */
    int caseless;        /* expressions_caseless, default on */
    uint64_t poll_ms;    /* poll_interval, default 60 s; 0: off */
    int list_errors;     /* UC_ERRORS_FAIL or UC_ERRORS_WARN */

    pthread_rwlock_t lock;
    int lock_ready;
    uc_lists_t *cur;     /* under lock */

    /* List watcher state (main thread and its one work job). */
    uint64_t pending_sig;     /* a change seen once, waiting to settle */
    uint64_t failed_sig;      /* a change that did not load */
    int busy;                 /* a work job is in flight */
} uc_conf_t;

enum { UC_ERRORS_FAIL = 0, UC_ERRORS_WARN = 1 };

/* The directive table of `plugin urlcat { }`. */
extern const pc_directive_t uc_directives[];

void *uc_conf_create(pc_plugin_t *self);
int uc_conf_finish(pc_plugin_t *self, void *conf, char *err, size_t errlen);
void uc_conf_free(pc_plugin_t *self, void *conf);

uc_conf_t *uc_conf_ref(uc_conf_t *c);
/* Drops a reference; the last one frees the configuration and its lists
 * (handed to the main loop when dropped on a worker thread, so a worker
 * never spends time freeing millions of entries). */
void uc_conf_unref(uc_conf_t *c);

#endif
