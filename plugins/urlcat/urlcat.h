/* urlcat.h - what the files of the urlcat plugin share: the host table, hooks and the list watcher. */
#ifndef URLCAT_URLCAT_H
#define URLCAT_URLCAT_H

#include <portcullis/plugin.h>

#include "conf.h"

/* The host function table (defined in urlcat.c). */
#define host pc_plugin_host_

/* What one lookup found, for the verdict, the notes and `ctl urlcat`. */
typedef struct uc_outcome {
    int blocked;              /* a blocked category matched */
    int exception;            /* an exception matched */
    int log_only;
    int limits;               /* expression matches cut by the match limit */
    char category[128];       /* the blocked one, or "" */
    char title[256];          /* its UT1 title, or "" */
    char exception_list[256]; /* which exception, or "" */
    char matched[256];        /* every category, comma-separated */
} uc_outcome_t;

/* The policy for a client address (0: the default policy). */
int uc_policy_for(const uc_conf_t *c, const netaddr_t *client);
/* Judges host (normalised) and npath (urlnorm_path output, or NULL for a
 * tunnel) under policy pol with the lists in force; writes the URL the
 * expressions saw into url. Returns 0, or -1 when out of memory. Any
 * thread; takes the lists' read lock. */
int uc_classify(uc_conf_t *c, int pol, const char *h, const char *scheme, int port,
                const char *npath, char *url, size_t urllen, uc_outcome_t *r);

/* Hooks (runtime.c): each runs on a worker thread and never blocks. */
int uc_hook_request(pc_plugin_t *self, pc_txn_t *txn, void *conf);
int uc_hook_connect(pc_plugin_t *self, pc_txn_t *txn, void *conf);
int uc_hook_sni(pc_plugin_t *self, pc_txn_t *txn, void *conf);

/* The list watcher (watch.c), on the main loop. */
int uc_watch_start(pc_plugin_t *self, uc_conf_t *conf, char *err, size_t errlen);
void uc_watch_set(uc_conf_t *conf);   /* a reload committed a new configuration */
void uc_watch_stop(void);             /* drain and shutdown */
uc_conf_t *uc_watch_conf(void);       /* the configuration in force, or NULL */

/* `portcullis ctl urlcat ...` (ctl.c), on the main loop. */
int uc_ctl(pc_plugin_t *self, pc_ctl_t *ctl, int argc, const char *const *argv);

#endif
