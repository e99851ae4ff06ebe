/* conf.c - the banlist's directives, and building its lists when a configuration is loaded. */
#include <errno.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "banlist_rt.h"
#include "urlnorm.h"

/*
 *     plugin banlist {
 *         ban_clients          lists/clients          # IPs, CIDRs, ranges
 *         ban_sites            lists/sites            # domains, IPs, CIDRs
 *         ban_urls             lists/urls             # PCRE2, one per line
 *         ban_useragents       lists/useragents       # PCRE2
 *         ban_extensions       lists/extensions       # exe (no dot)
 *         ban_mimetypes        lists/mimetypes        # application/x-msdownload
 *         exception_clients    lists/trusted-clients
 *         exception_sites      lists/trusted-sites
 *         exception_urls       lists/trusted-urls
 *         exception_extensions lists/allowed-extensions
 *         exception_mimetypes  lists/allowed-mimetypes
 *         exception_verdict    continue               # or allow
 *         list_errors          fail                   # or skip
 *         state                ../var/lib/banlist.state
 *         max_bans             100000
 *         hook_command         /usr/local/sbin/ban-hook --quiet
 *         hook_timeout         10s
 *         auto_ban             av.infected 1 1h "infected download"
 *         auto_ban             txn.blocked 20/5m 1h
 *     }
 *
 * Every list directive takes one or more files and may repeat. The
 * directives only record file names; conf_finish() reads the files on
 * the main thread, so `portcullis -t` and a reload report a bad line as
 * "FILE:LINE: message" and a reload with a bad list changes nothing.
 */

static const char *const list_names[BL_NLISTS] = {
    "ban_clients",       "ban_sites",         "ban_urls",
    "ban_useragents",    "ban_extensions",    "ban_mimetypes",
    "exception_clients", "exception_sites",   "exception_urls",
    "exception_extensions", "exception_mimetypes",
};

/* The list each list directive fills (the directive row's data). */
static const int list_ids[BL_NLISTS] = {
    BL_BAN_CLIENTS, BL_BAN_SITES,   BL_BAN_URLS,   BL_BAN_UA,
    BL_BAN_EXT,     BL_BAN_MIME,    BL_EXC_CLIENTS, BL_EXC_SITES,
    BL_EXC_URLS,    BL_EXC_EXT,     BL_EXC_MIME,
};

static const char *const verdict_names[] = {"continue", "allow", NULL};
static const char *const list_error_names[] = {"fail", "skip", NULL};
static const pc_int_range_t max_bans_range = {1, 10000000};

const char *bl_list_name(enum bl_list l)
{
    return l < BL_NLISTS ? list_names[l] : "?";
}

/* ban_* / exception_* FILE...: the files, resolved against the config. */
static int set_list(pc_plugin_t *self, void *obj, const pc_directive_args_t *a,
                    char *err, size_t errlen)
{
    bl_conf_t *conf = obj;
    int l = *(const int *)a->directive->data;
    char **v;

    (void)self;
    v = realloc(conf->files[l], (size_t)(conf->nfiles[l] + a->argc) * sizeof(*v));
    if (v == NULL)
        goto oom;
    conf->files[l] = v;
    for (int i = 0; i < a->argc; i++) {
        char *path = host->conf_path(a, a->argv[i]);
        if (path == NULL)
            goto oom;
        v[conf->nfiles[l]++] = path;
    }
    return 0;
oom:
    snprintf(err, errlen, "out of memory");
    return -1;
}

/* hook_command PROGRAM [ARGS...]: PROGRAM relative to the config file. */
static int set_hook_command(pc_plugin_t *self, void *obj,
                            const pc_directive_args_t *a, char *err, size_t errlen)
{
    bl_conf_t *conf = obj;

    (void)self;
    conf->hook_argv = calloc((size_t)a->argc + 1, sizeof(char *));
    if (conf->hook_argv == NULL)
        goto oom;
    conf->hook_argv[0] = strchr(a->argv[0], '/') ? host->conf_path(a, a->argv[0])
                                                 : strdup(a->argv[0]);
    if (conf->hook_argv[0] == NULL)
        goto oom;
    conf->hook_argc = 1;
    for (int i = 1; i < a->argc; i++) {
        conf->hook_argv[i] = strdup(a->argv[i]);
        if (conf->hook_argv[i] == NULL)
            goto oom;
        conf->hook_argc++;
    }
    return 0;
oom:
    snprintf(err, errlen, "out of memory");
    return -1;
}

static int set_hook_timeout(pc_plugin_t *self, void *obj,
                            const pc_directive_args_t *a, char *err, size_t errlen)
{
    const bl_conf_t *conf = obj;

    (void)self;
    if (conf->hook_timeout_ms < 100 || conf->hook_timeout_ms > 3600000) {
        snprintf(err, errlen, "'%s' is out of range (100ms..1h)", a->argv[0]);
        return -1;
    }
    return 0;
}

static int set_auto_ban(pc_plugin_t *self, void *obj, const pc_directive_args_t *a,
                        char *err, size_t errlen)
{
    bl_conf_t *conf = obj;
    bl_rule_t *v;

    (void)self;
    v = realloc(conf->rules, (size_t)(conf->nrules + 1) * sizeof(*v));
    if (v == NULL) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    conf->rules = v;
    if (bl_rule_parse(&v[conf->nrules], a->argc, a->argv, host->parse_duration, err,
                      errlen) < 0)
        return -1;
    conf->nrules++;
    return 0;
}

#define LIST(i) \
    {list_names[i], 1, PC_ARGS_ANY, PC_DIR_REPEAT, PC_DIR_CUSTOM, 0, &list_ids[i], set_list}

const pc_directive_t bl_directives[] = {
    LIST(BL_BAN_CLIENTS),
    LIST(BL_BAN_SITES),
    LIST(BL_BAN_URLS),
    LIST(BL_BAN_UA),
    LIST(BL_BAN_EXT),
    LIST(BL_BAN_MIME),
    LIST(BL_EXC_CLIENTS),
    LIST(BL_EXC_SITES),
    LIST(BL_EXC_URLS),
    LIST(BL_EXC_EXT),
    LIST(BL_EXC_MIME),
    {"exception_verdict", 1, 1, 0, PC_DIR_ENUM, offsetof(bl_conf_t, exception_verdict),
     verdict_names, NULL},
    {"list_errors", 1, 1, 0, PC_DIR_ENUM, offsetof(bl_conf_t, list_errors),
     list_error_names, NULL},
    {"state", 1, 1, 0, PC_DIR_PATH, offsetof(bl_conf_t, state), NULL, NULL},
    {"max_bans", 1, 1, 0, PC_DIR_INT, offsetof(bl_conf_t, max_bans), &max_bans_range,
     NULL},
    {"hook_command", 1, PC_ARGS_ANY, 0, PC_DIR_CUSTOM, 0, NULL, set_hook_command},
    {"hook_timeout", 1, 1, 0, PC_DIR_DURATION, offsetof(bl_conf_t, hook_timeout_ms),
     NULL, set_hook_timeout},
    {"auto_ban", 3, PC_ARGS_ANY, PC_DIR_REPEAT, PC_DIR_CUSTOM, 0, NULL, set_auto_ban},
    PC_DIRECTIVE_END,
};

void *bl_conf_create(pc_plugin_t *self)
{
    bl_conf_t *conf = calloc(1, sizeof(*conf));

    (void)self;
    if (conf == NULL)
        return NULL;
    conf->hook_timeout_ms = 10000;
    conf->max_bans = 100000;
    return conf;
}

/* ---- loading the lists ---------------------------------------------------- */

/* What an entry callback needs. */
typedef struct loader {
    bl_conf_t *conf;
    enum bl_list list;
    const char *file;
    pc_plugin_t *self;
    long warned;
} loader_t;

static void warn_line(void *arg, const char *msg)
{
    loader_t *ld = arg;

    /* A downloaded list with thousands of odd lines must not flood the
     * log: the first few are shown, the rest counted. */
    if (ld->warned++ < 10)
        host->log(ld->self, PC_LOG_WARN, "%s", msg);
}

static int add_entry(void *arg, char *text, long line, char *err, size_t errlen)
{
    loader_t *ld = arg;
    bl_conf_t *c = ld->conf;
    char buf[URLNORM_HOST_MAX + 1], where[600];

    switch (ld->list) {
    case BL_BAN_CLIENTS:
        return netaddr_set_add_text(c->ban_clients, text, err, errlen);
    case BL_EXC_CLIENTS:
        return netaddr_set_add_text(c->exc_clients, text, err, errlen);
    case BL_BAN_SITES:
        return bl_sites_add(c->ban_sites, text, err, errlen);
    case BL_EXC_SITES:
        return bl_sites_add(c->exc_sites, text, err, errlen);
    case BL_BAN_URLS:
    case BL_EXC_URLS:
    case BL_BAN_UA:
        snprintf(where, sizeof(where), "%s:%ld", ld->file, line);
        return bl_relist_add(ld->list == BL_BAN_URLS  ? c->ban_urls
                             : ld->list == BL_EXC_URLS ? c->exc_urls
                                                       : c->ban_ua,
                             text, where, err, errlen);
    case BL_BAN_EXT:
    case BL_EXC_EXT:
        if (bl_ext_normalise(text, buf, sizeof(buf), err, errlen) < 0)
            return -1;
        break;
    case BL_BAN_MIME:
    case BL_EXC_MIME:
        if (bl_mime_normalise(text, buf, sizeof(buf), err, errlen) < 0)
            return -1;
        break;
    default:
        snprintf(err, errlen, "unknown list");
        return -1;
    }
    if (bl_strset_add(ld->list == BL_BAN_EXT    ? c->ban_ext
                      : ld->list == BL_EXC_EXT  ? c->exc_ext
                      : ld->list == BL_BAN_MIME ? c->ban_mime
                                                : c->exc_mime,
                      buf, strlen(buf)) < 0) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    return 0;
}

static int alloc_lists(bl_conf_t *c)
{
    c->ban_clients = netaddr_set_new();
    c->exc_clients = netaddr_set_new();
    c->ban_sites = bl_sites_new();
    c->exc_sites = bl_sites_new();
    c->ban_urls = bl_relist_new();
    c->exc_urls = bl_relist_new();
    c->ban_ua = bl_relist_new();
    c->ban_ext = bl_strset_new();
    c->exc_ext = bl_strset_new();
    c->ban_mime = bl_strset_new();
    c->exc_mime = bl_strset_new();
    return c->ban_clients && c->exc_clients && c->ban_sites && c->exc_sites &&
                   c->ban_urls && c->exc_urls && c->ban_ua && c->ban_ext &&
                   c->exc_ext && c->ban_mime && c->exc_mime
               ? 0
               : -1;
}

static int finish_lists(bl_conf_t *c, char *err, size_t errlen)
{
    if (netaddr_set_finish(c->ban_clients) < 0 || netaddr_set_finish(c->exc_clients) < 0 ||
        bl_sites_finish(c->ban_sites) < 0 || bl_sites_finish(c->exc_sites) < 0 ||
        bl_strset_finish(c->ban_ext) < 0 || bl_strset_finish(c->exc_ext) < 0 ||
        bl_strset_finish(c->ban_mime) < 0 || bl_strset_finish(c->exc_mime) < 0) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    if (bl_relist_finish(c->ban_urls, err, errlen) < 0 ||
        bl_relist_finish(c->exc_urls, err, errlen) < 0 ||
        bl_relist_finish(c->ban_ua, err, errlen) < 0)
        return -1;
    return 0;
}

/* Checks what can be checked now of hook_command and state, so -t finds
 * a typo instead of the first ban. */
static int check_paths(const bl_conf_t *c, char *err, size_t errlen)
{
    if (c->hook_argv && strchr(c->hook_argv[0], '/') &&
        access(c->hook_argv[0], X_OK) < 0) {
        snprintf(err, errlen, "hook_command '%s': %s", c->hook_argv[0],
                 errno == EACCES ? "not executable" : strerror(errno));
        return -1;
    }
    if (c->state) {
        char *copy = strdup(c->state);
        struct stat st;
        int rc = -1;
        if (copy == NULL) {
            snprintf(err, errlen, "out of memory");
            return -1;
        }
        if (stat(dirname(copy), &st) < 0 || !S_ISDIR(st.st_mode))
            snprintf(err, errlen, "state '%s': the directory %s does not exist",
                     c->state, copy);
        else
            rc = 0;
        free(copy);
        return rc;
    }
    return 0;
}

int bl_conf_finish(pc_plugin_t *self, void *obj, char *err, size_t errlen)
{
    bl_conf_t *c = obj;
    /* Regex lists keep '#' inside patterns; only whole-line comments. */
    static const enum bl_comment comments[BL_NLISTS] = {
        [BL_BAN_URLS] = BL_COMMENT_LINE, [BL_EXC_URLS] = BL_COMMENT_LINE,
        [BL_BAN_UA] = BL_COMMENT_LINE,
    };

    if (alloc_lists(c) < 0) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    for (int l = 0; l < BL_NLISTS; l++) {
        long total = 0;
        for (int i = 0; i < c->nfiles[l]; i++) {
            loader_t ld = {c, (enum bl_list)l, c->files[l][i], self, 0};
            char msg[1024];
            long n = bl_list_read(c->files[l][i], comments[l], add_entry, &ld,
                                  c->list_errors, warn_line, &ld, msg, sizeof(msg));
            if (n < 0) {
                snprintf(err, errlen, "%s %s", list_names[l], msg);
                return -1;
            }
            if (ld.warned > 10)
                host->log(self, PC_LOG_WARN, "%s: %ld more bad lines skipped",
                          c->files[l][i], ld.warned - 10);
            total += n;
        }
        if (c->nfiles[l])
            host->log(self, PC_LOG_INFO, "%s: %ld entries from %d file%s", list_names[l],
                      total, c->nfiles[l], c->nfiles[l] == 1 ? "" : "s");
    }
    if (finish_lists(c, err, errlen) < 0)
        return -1;
    return check_paths(c, err, errlen);
}

void bl_conf_free(pc_plugin_t *self, void *obj)
{
    bl_conf_t *c = obj;

    (void)self;
    if (c == NULL)
        return;
    for (int l = 0; l < BL_NLISTS; l++) {
        for (int i = 0; i < c->nfiles[l]; i++)
            free(c->files[l][i]);
        free(c->files[l]);
    }
    free(c->state);
    for (int i = 0; i < c->hook_argc; i++)
        free(c->hook_argv[i]);
    free(c->hook_argv);
    for (int i = 0; i < c->nrules; i++)
        bl_rule_clear(&c->rules[i]);
    free(c->rules);
    netaddr_set_free(c->ban_clients);
    netaddr_set_free(c->exc_clients);
    bl_sites_free(c->ban_sites);
    bl_sites_free(c->exc_sites);
    bl_relist_free(c->ban_urls);
    bl_relist_free(c->exc_urls);
    bl_relist_free(c->ban_ua);
    bl_strset_free(c->ban_ext);
    bl_strset_free(c->exc_ext);
    bl_strset_free(c->ban_mime);
    bl_strset_free(c->exc_mime);
    free(c);
}
