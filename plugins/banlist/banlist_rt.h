/* banlist_rt.h - the banlist plugin's configuration object and run-time state (host-facing files). */
#ifndef BL_BANLIST_RT_H
#define BL_BANLIST_RT_H

#include <portcullis/plugin.h>
#include <uv.h>

#include "banlist.h"

/* The host table (PC_PLUGIN_HOST_DEFINE is in banlist.c). */
#define host pc_plugin_host_

/* The list directives, in the order of bl_conf_t's files[]. */
enum bl_list {
    BL_BAN_CLIENTS,
    BL_BAN_SITES,
    BL_BAN_URLS,
    BL_BAN_UA,
    BL_BAN_EXT,
    BL_BAN_MIME,
    BL_EXC_CLIENTS,
    BL_EXC_SITES,
    BL_EXC_URLS,
    BL_EXC_EXT,
    BL_EXC_MIME,
    BL_NLISTS
};

/* One configuration: the directives, then the lists conf_finish() built.
 * Read-only after conf_finish() and shared by every worker; freed by
 * conf_free() when no transaction uses it any more. */
typedef struct bl_conf {
    char **files[BL_NLISTS];      /* list files per directive (malloc()ed) */
    int nfiles[BL_NLISTS];
    int list_errors;              /* 0 fail, 1 skip bad lines */
    int exception_verdict;        /* 0 continue, 1 allow */
    char *state;                  /* state FILE, or NULL */
    char **hook_argv;             /* hook_command PROGRAM ARGS..., NULL-terminated */
    int hook_argc;
    uint64_t hook_timeout_ms;
    long max_bans;
    bl_rule_t *rules;             /* auto_ban */
    int nrules;

    /* Built by conf_finish(). */
    netaddr_set_t *ban_clients, *exc_clients;
    bl_sites_t *ban_sites, *exc_sites;
    bl_relist_t *ban_urls, *exc_urls, *ban_ua;
    bl_strset_t *ban_ext, *exc_ext, *ban_mime, *exc_mime;
} bl_conf_t;

/* conf.c */
extern const pc_directive_t bl_directives[];
void *bl_conf_create(pc_plugin_t *self);
int bl_conf_finish(pc_plugin_t *self, void *conf, char *err, size_t errlen);
void bl_conf_free(pc_plugin_t *self, void *conf);
/* The directive name of a list ("ban_sites"). */
const char *bl_list_name(enum bl_list l);

/* ---- run time (main thread unless said otherwise) ------------------------ */

/* What changed, for the log, the hook command and its arguments. */
enum bl_action { BL_ACT_BAN, BL_ACT_UNBAN, BL_ACT_EXPIRE, BL_ACT_RESTORE };

/* banlist.c: the plugin's run-time state. */
typedef struct bl_rt {
    pc_plugin_t *self;
    bl_conf_t *conf;              /* the configuration in force */
    bl_dyn_t dyn;                 /* read by the workers */
    int dyn_ready;
    uv_timer_t expiry;            /* the next ban's end */
    uv_timer_t sweep;             /* forgets stale auto_ban counts */
    int timers;                   /* timers initialised */
    int draining;
    /* State file writes: one at a time on the worker pool. */
    char *state_path;             /* where the bans are written */
    int writing, dirty;
    /* auto_ban counters, one per rule of the configuration in force. */
    bl_counter_t **counters;
    int ncounters;
    char **topics;                /* topics subscribed to */
    int ntopics;
} bl_rt_t;

extern bl_rt_t bl_rt;

/* Adds ban (its kind/target/until/reason/source filled) to the dynamic
 * bans, logs it, writes the state file, runs the hook command. Returns 0,
 * or -1 with a message (an exception covers the target, too many bans). */
int bl_rt_ban(bl_ban_t *ban, char *err, size_t errlen);
/* Removes the ban of kind and target. Returns 0, or -1 when there is none. */
int bl_rt_unban(enum bl_kind kind, const char *target, const char *by);
/* 1 when an exception list of the configuration in force covers the
 * client address or the site (an admin's ban of it is refused). */
int bl_rt_excepted(const bl_ban_t *ban);

/* hookcmd.c: the hook command (main thread). */
/* Queues a run of conf's hook_command for a change of ban; runs one at a
 * time, in order. No-op without hook_command. */
void bl_hook_run(const bl_conf_t *conf, enum bl_action action, const bl_ban_t *ban,
                 int64_t now_ms);
/* Stopping: drops queued runs (logged); the one running finishes or
 * times out. */
void bl_hook_drain(void);
const char *bl_action_name(enum bl_action action);

/* ctl.c: registers ban, unban, bans, bancheck. Returns 0 or -1. */
int bl_ctl_register(pc_plugin_t *self);

#endif
