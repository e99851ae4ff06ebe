/* plugin_host.h - the host side of the plugin SDK: loaded plugins, plugin sets, hooks. */
#ifndef PC_PLUGIN_HOST_H
#define PC_PLUGIN_HOST_H

#include <portcullis/plugin.h>
#include <stdint.h>

#include "conf.h"

struct txn;
struct client;

/* A loaded plugin. Loaded once per process (the first configuration that
 * names it) and kept until exit; which configuration uses it is a matter of
 * the snapshot's plugin set. */
struct pc_plugin {
    struct pc_plugin *next;       /* registry, load order */
    char *name;
    char *path;
    void *dl;
    const pc_plugin_desc_t *desc;
    void *data;                   /* plugin_set_data() */
    int inited;
    int in_init;                  /* hooks may be registered */
    unsigned slot;                /* index of its per-transaction slot */
    unsigned init_seq;            /* order of init(): 1, 2...; 0 if none */
    void *conf;                   /* the configuration object in force */
    conf_t *conf_snap;            /* a reference on the snapshot holding
                                     conf, so it outlives a failed reload
                                     or the plugin's removal from the
                                     configuration; dropped on the next
                                     commit that includes it, or at exit */
    pc_txn_hook_fn txn_hooks[PC_HOOK_COUNT_];
    pc_conn_hook_fn conn_hooks[PC_HOOK_COUNT_];
};

/* One plugin in one configuration snapshot. */
typedef struct plugin_inst {
    pc_plugin_t *p;
    void *conf;
    const char *file;             /* where its block is */
    int line;
} plugin_inst_t;

/* The plugins of one snapshot, in configuration order (hook order), plus
 * the order to initialise them in (providers before users). */
typedef struct plugin_set {
    int n;
    plugin_inst_t *v;
    int *init_order;
    unsigned hook_mask;           /* bit per pc_hook_t some plugin has */
} plugin_set_t;

/* The host's function table. */
extern const pc_host_t plugin_host_table;

/* Notes of a connection (conn_note) given to each of its transactions:
 * appends copies of src's notes to *dst. plugin_notes_free frees a list. */
struct accesslog_note;
void plugin_notes_copy(struct accesslog_note **dst, const struct accesslog_note *src);
void plugin_notes_free(struct accesslog_note *notes);

/* Loads the plugins conf names (if not loaded yet), builds their
 * configuration objects from their blocks and checks services. Attaches
 * the set to conf. Main thread. Returns 0, or -1 with "FILE:LINE: message"
 * in err (nothing is attached then; plugins loaded stay loaded). */
int plugin_set_build(conf_t *conf, char *err, size_t errlen);

/* Puts conf's plugin set into force: init() for plugins not yet
 * initialised (providers first), reconfigure() for the others. Returns 0,
 * or -1 with a message when an init() failed (at start: do not start; at
 * reload: the reload fails and nothing else has changed). */
int plugin_set_commit(conf_t *conf, char *err, size_t errlen);

/* Stopping: drain() every initialised plugin, later shutdown(); both in
 * the reverse order of init(), so users stop before their providers.
 * plugins_shutdown() first drops the configuration objects the plugins
 * still hold (conf_free runs before shutdown, as the SDK says). */
void plugins_drain(void);
void plugins_shutdown(void);

/* The set of a snapshot (never NULL: an empty set when no plugins). */
const plugin_set_t *plugin_set_of(const conf_t *conf);
/* 1 when some plugin of the snapshot has hook h. */
static inline int plugin_set_has(const plugin_set_t *s, pc_hook_t h)
{
    return (s->hook_mask >> h) & 1u;
}

/* Number of slots a transaction needs (one per loaded plugin). */
unsigned plugin_slot_count(void);

/* Applies a directive table to the directives from first on (a plugin
 * block or a nested block). where names it in messages. Returns 0, or -1
 * with "FILE:LINE: message" in err. */
int plugin_apply_block(pc_plugin_t *p, void *obj, const conf_node_t *first,
                       const pc_directive_t *table, const char *where,
                       char *err, size_t errlen);

/* The main loop as a pc_loop_t; call once on the main thread. */
void plugin_host_set_main(void *uv_main_loop);

/* Services and events (plugin_svc.c). */
int plugin_service_register(pc_plugin_t *p, const char *name, uint32_t version,
                            const void *iface);
const void *plugin_service_acquire(pc_plugin_t *p, const char *name,
                                   uint32_t min_version);
void plugin_service_release(pc_plugin_t *p, const char *name);
int plugin_event_subscribe(pc_plugin_t *p, const char *topic, pc_event_fn fn,
                           void *arg);
void plugin_event_publish(pc_plugin_t *p, const pc_event_t *ev);
/* Starts event delivery on the main loop (uv_loop_t *). */
int plugin_events_start(void *uv_main_loop);
/* Closes the main queue, running what is still queued. */
void plugin_events_stop(void);
void plugin_events_free(void);
/* Runs fn(arg) on the main loop; any thread. Returns 0 or -1. */
int mainq_post(void (*fn)(void *arg), void *arg);

/* Plugin metrics: "<plugin>_<name>" counters (set or add). */
int plugin_metric(const char *plugin, const char *name, int64_t v, int set);
void plugin_metrics_each(void (*fn)(const char *name, int64_t value, void *arg),
                         void *arg);
void plugin_metrics_free(void);

#endif
