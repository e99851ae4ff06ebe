/* geoip_watch.h - the geoip plugin's database change watcher: poll, reopen, swap. */
#ifndef PC_GEOIP_WATCH_H
#define PC_GEOIP_WATCH_H

#include <portcullis/plugin.h>

#include "geoip_conf.h"

/*
 * A thread of the plugin's own (database opens may block; no loop thread
 * ever waits for them) that looks at the database files of the committed
 * configuration every poll_interval. When a file's identity (device,
 * inode, size, mtime) differs from the loaded one, it opens and checks the
 * new file, then swaps it into the configuration's slot: lookups already
 * running finish on the old mapping, the next ones see the new file. A
 * file that is missing or does not open is logged once (per version) as an
 * error and the loaded database keeps serving.
 */
typedef struct geoip_watch geoip_watch_t;

/* Starts watching conf's databases. Returns NULL with a message in err. */
geoip_watch_t *geoip_watch_start(pc_plugin_t *self, geoip_conf_t *conf, char *err,
                                 size_t errlen);
/* Watches conf from now on (after a reload); the main thread. */
void geoip_watch_set_conf(geoip_watch_t *w, geoip_conf_t *conf);
/* Stops the thread, waits for it and frees w. */
void geoip_watch_stop(geoip_watch_t *w);

#endif
