/* urlcat.c - the urlcat plugin's descriptor and life cycle: URL-category blocking with UT1/squidGuard and e2guardian lists. */
#include <stdio.h>

#include "lists.h"
#include "urlcat.h"

/*
 * The files of the plugin, one job each:
 *   conf.c     directives, defaults, validation, the first load
 *   lists.c    reading list files (UT1 trees, e2guardian lists) into a
 *              snapshot with FILE:LINE errors
 *   db.c       the category database: hashes, address sets, expressions
 *   runtime.c  the hooks: normalise, look up, decide, note
 *   exprset.c  expressions: PCRE2 behind a literal prefilter
 *   watch.c    polling list files and swapping rebuilt lists
 *   ctl.c      `portcullis ctl urlcat`
 * README.md is the admin's manual; docs/lists.md the list formats.
 */

PC_PLUGIN_HOST_DEFINE;

static int uc_init(pc_plugin_t *self, void *conf, char *err, size_t errlen)
{
    uc_conf_t *c = conf;
    char summary[512];

    /* conf_finish() logged the load before the error log was open: say it
     * again where the admin reads it. */
    uc_lists_summary(c->cur, summary, sizeof(summary));
    host->log(self, PC_LOG_NOTICE, "%s", summary);
    if (host->hook_txn(self, PC_HOOK_REQUEST_HEADERS, uc_hook_request) < 0 ||
        host->hook_txn(self, PC_HOOK_CONNECT, uc_hook_connect) < 0 ||
        host->hook_txn(self, PC_HOOK_TLS_SNI, uc_hook_sni) < 0) {
        snprintf(err, errlen, "cannot register hooks");
        return -1;
    }
    if (host->ctl_register(self, "urlcat",
                           "urlcat lists | urlcat check URL [CLIENT]: the lists in "
                           "force; the categories of URL and the verdict", uc_ctl) < 0) {
        snprintf(err, errlen, "cannot register the control command");
        return -1;
    }
    return uc_watch_start(self, conf, err, errlen);
}

static void uc_reconfigure(pc_plugin_t *self, void *old_conf, void *new_conf)
{
    (void)self;
    (void)old_conf;
    uc_watch_set(new_conf);
}

static void uc_drain(pc_plugin_t *self)
{
    (void)self;
    uc_watch_stop();
}

static void uc_shutdown(pc_plugin_t *self)
{
    (void)self;
    uc_watch_stop();
}

static const pc_plugin_desc_t urlcat_desc = {
    .abi_major = PC_ABI_MAJOR,
    .abi_minor = PC_ABI_MINOR,
    .size = sizeof(pc_plugin_desc_t),
    .name = "urlcat",
    .version = "1.0",
    .description = "blocks URL categories from UT1/squidGuard and e2guardian lists",
    .directives = uc_directives,
    .conf_create = uc_conf_create,
    .conf_finish = uc_conf_finish,
    .conf_free = uc_conf_free,
    .init = uc_init,
    .reconfigure = uc_reconfigure,
    .drain = uc_drain,
    .shutdown = uc_shutdown,
};

PC_PLUGIN(urlcat_desc)
