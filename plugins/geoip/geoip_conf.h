/* geoip_conf.h - the geoip plugin's configuration object and directive table. */
#ifndef PC_GEOIP_CONF_H
#define PC_GEOIP_CONF_H

#include <stdint.h>

#include <portcullis/plugin.h>

#include "geoip_db.h"
#include "geoip_domains.h"
#include "geoip_rules.h"

/* One configuration of `plugin geoip { }`: built by the directives and
 * geoip_conf_finish() on the main thread, read-only afterwards and shared by
 * every worker thread. The databases in it are slots, so the change watcher
 * can swap a new file in without touching the rest. */
typedef struct geoip_conf {
    uint64_t id;                 /* unique in the process (lookup cache keys) */
    char *database;              /* database FILE (absolute) */
    char *asn_database;          /* asn_database FILE */
    geoip_slot_t *country_slot;  /* opened by the database directive */
    geoip_slot_t *asn_slot;      /* opened by asn_database */
    geoip_paths_t country_paths; /* country_path (auto by default) */
    geoip_paths_t asn_paths;     /* asn_path (auto by default) */

    geoip_rules_t dst;           /* block_/allow_countries, _asns, unknown */
    geoip_rules_t client;        /* the *_client_* lists, unknown_clients */
    int unknown;                 /* index into "allow", "block" */
    int unknown_clients;
    int check_clients;           /* check_clients on|off */
    geoip_domains_t except;      /* except_domains, except_domains_file */
    uint64_t poll_interval_ms;   /* poll_interval; 0 turns polling off */

    /* Worked out by geoip_conf_finish(). */
    int asn_in_country_db;       /* ASN lookups go to `database` */
    geoip_query_t query;         /* what each lookup reads */
} geoip_conf_t;

extern const pc_directive_t geoip_directives[];

/* The descriptor's conf_create, conf_finish and conf_free. */
void *geoip_conf_create(pc_plugin_t *self);
int geoip_conf_finish(pc_plugin_t *self, void *conf, char *err, size_t errlen);
void geoip_conf_free(pc_plugin_t *self, void *conf);

#endif
