/* geoip_conf.c - the geoip plugin's configuration object and directive table. */
#include <stdatomic.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "geoip_conf.h"

#define host pc_plugin_host_

static const char *const allow_block[] = {"allow", "block", NULL};

/* The field a list row stores into: its offset in the table. */
static void *field(void *conf, const pc_directive_args_t *a)
{
    return (char *)conf + a->directive->offset;
}

/* database FILE / asn_database FILE: the typed PC_DIR_PATH row stored the
 * resolved path; this opens it now, so a missing or broken file is reported
 * at this directive's FILE:LINE by `portcullis -t` and by a reload. */
static int set_database(pc_plugin_t *self, void *obj, const pc_directive_args_t *a,
                        char *err, size_t errlen)
{
    geoip_conf_t *conf = obj;
    int is_asn = strcmp(a->name, "asn_database") == 0;
    const char *path = is_asn ? conf->asn_database : conf->database;
    geoip_slot_t **slot = is_asn ? &conf->asn_slot : &conf->country_slot;
    geoip_db_t *db;

    (void)self;
    if (geoip_db_open(path, &db, err, errlen) < 0)
        return -1;
    *slot = geoip_slot_new(path, is_asn ? "asn_database" : "database", db);
    if (*slot == NULL) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    return 0;
}

/* block_countries CC... (and the allow / client variants). */
static int set_countries(pc_plugin_t *self, void *obj, const pc_directive_args_t *a,
                         char *err, size_t errlen)
{
    geoip_ccset_t *set = field(obj, a);

    (void)self;
    for (int i = 0; i < a->argc; i++) {
        char cc[3];
        if (geoip_cc_parse(a->argv[i], cc, err, errlen) < 0)
            return -1;
        geoip_ccset_add(set, cc);
    }
    return 0;
}

/* block_asns N... (and the allow / client variants). */
static int set_asns(pc_plugin_t *self, void *obj, const pc_directive_args_t *a,
                    char *err, size_t errlen)
{
    geoip_asnset_t *set = field(obj, a);

    (void)self;
    for (int i = 0; i < a->argc; i++) {
        uint32_t asn;
        if (geoip_asn_parse(a->argv[i], &asn, err, errlen) < 0)
            return -1;
        if (geoip_asnset_add(set, asn) < 0) {
            snprintf(err, errlen, "out of memory");
            return -1;
        }
    }
    return 0;
}

static int set_except_domains(pc_plugin_t *self, void *obj,
                              const pc_directive_args_t *a, char *err, size_t errlen)
{
    geoip_conf_t *conf = obj;

    (void)self;
    for (int i = 0; i < a->argc; i++)
        if (geoip_domains_add(&conf->except, a->argv[i], err, errlen) < 0)
            return -1;
    return 0;
}

/* except_domains_file FILE...: read now, so an error names the file and
 * its line; read again on every reload. */
static int set_except_file(pc_plugin_t *self, void *obj, const pc_directive_args_t *a,
                           char *err, size_t errlen)
{
    geoip_conf_t *conf = obj;

    (void)self;
    for (int i = 0; i < a->argc; i++) {
        char *path = host->conf_path(a, a->argv[i]);
        int rc;
        if (path == NULL) {
            snprintf(err, errlen, "out of memory");
            return -1;
        }
        rc = geoip_domains_load(&conf->except, path, err, errlen);
        free(path);
        if (rc < 0)
            return -1;
    }
    return 0;
}

/* Splits the arguments of a path line at blanks and dots into malloc()ed
 * keys. Returns the number of keys, or -1 with a message. */
static int path_keys(const pc_directive_args_t *a, char **keys, char *err,
                     size_t errlen)
{
    int n = 0;

    for (int i = 0; i < a->argc; i++) {
        const char *p = a->argv[i];
        for (;;) {
            size_t len = strcspn(p, ".");
            if (len == 0) {
                snprintf(err, errlen, "empty key in '%s'", a->argv[i]);
                goto fail;
            }
            if (n == GEOIP_PATH_KEYS) {
                snprintf(err, errlen, "too many keys in a path (at most %d)",
                         GEOIP_PATH_KEYS);
                goto fail;
            }
            keys[n] = strndup(p, len);
            if (keys[n] == NULL) {
                snprintf(err, errlen, "out of memory");
                goto fail;
            }
            n++;
            if (p[len] == '\0')
                break;
            p += len + 1;
        }
    }
    return n;
fail:
    while (n > 0)
        free(keys[--n]);
    return -1;
}

/* country_path KEY... / asn_path KEY...: one path per line, tried in the
 * order written; "a.b" is the same as "a b"; `auto` alone keeps the
 * default layouts. */
static int set_path(pc_plugin_t *self, void *obj, const pc_directive_args_t *a,
                    char *err, size_t errlen)
{
    geoip_paths_t *paths = field(obj, a);
    enum geoip_paths_kind kind = strcmp(a->name, "asn_path") == 0 ? GEOIP_ASN
                                                                  : GEOIP_COUNTRY;
    int is_auto = a->argc == 1 && strcmp(a->argv[0], "auto") == 0;
    char *keys[GEOIP_PATH_KEYS] = {NULL};
    int n, rc;

    (void)self;
    if (paths->auto_given || (is_auto && !paths->is_auto)) {
        snprintf(err, errlen, "%s auto cannot be combined with other %s lines",
                 a->name, a->name);
        return -1;
    }
    if (is_auto) {
        geoip_paths_auto(paths, kind);
        paths->auto_given = 1;
        return 0;
    }
    n = path_keys(a, keys, err, errlen);
    if (n < 0)
        return -1;
    rc = geoip_paths_add(paths, n, (const char *const *)keys, err, errlen);
    while (n > 0)
        free(keys[--n]);
    return rc;
}

#define OFF(f) offsetof(geoip_conf_t, f)
#define LIST 1, PC_ARGS_ANY, PC_DIR_REPEAT, PC_DIR_CUSTOM

const pc_directive_t geoip_directives[] = {
    {"database", 1, 1, 0, PC_DIR_PATH, OFF(database), NULL, set_database},
    {"asn_database", 1, 1, 0, PC_DIR_PATH, OFF(asn_database), NULL, set_database},
    {"block_countries", LIST, OFF(dst.block_cc), NULL, set_countries},
    {"allow_countries", LIST, OFF(dst.allow_cc), NULL, set_countries},
    {"block_asns", LIST, OFF(dst.block_asn), NULL, set_asns},
    {"allow_asns", LIST, OFF(dst.allow_asn), NULL, set_asns},
    {"unknown", 1, 1, 0, PC_DIR_ENUM, OFF(unknown), allow_block, NULL},
    {"except_domains", LIST, 0, NULL, set_except_domains},
    {"except_domains_file", LIST, 0, NULL, set_except_file},
    {"country_path", LIST, OFF(country_paths), NULL, set_path},
    {"asn_path", LIST, OFF(asn_paths), NULL, set_path},
    {"check_clients", 1, 1, 0, PC_DIR_FLAG, OFF(check_clients), NULL, NULL},
    {"block_client_countries", LIST, OFF(client.block_cc), NULL, set_countries},
    {"allow_client_countries", LIST, OFF(client.allow_cc), NULL, set_countries},
    {"block_client_asns", LIST, OFF(client.block_asn), NULL, set_asns},
    {"allow_client_asns", LIST, OFF(client.allow_asn), NULL, set_asns},
    {"unknown_clients", 1, 1, 0, PC_DIR_ENUM, OFF(unknown_clients), allow_block, NULL},
    {"poll_interval", 1, 1, 0, PC_DIR_DURATION, OFF(poll_interval_ms), NULL, NULL},
    PC_DIRECTIVE_END,
};

void *geoip_conf_create(pc_plugin_t *self)
{
    static atomic_uint_fast64_t next_id = 1;
    geoip_conf_t *conf = calloc(1, sizeof(*conf));

    (void)self;
    if (conf == NULL)
        return NULL;
    conf->id = atomic_fetch_add(&next_id, 1);
    geoip_paths_auto(&conf->country_paths, GEOIP_COUNTRY);
    geoip_paths_auto(&conf->asn_paths, GEOIP_ASN);
    conf->poll_interval_ms = 60000;
    return conf;
}

/* A code in both lists of one side: the admin's intent is unclear. */
static int check_overlap(const geoip_rules_t *r, const char *side, char *err,
                         size_t errlen)
{
    for (int i = 0; i < 26 * 26; i++) {
        char cc[3] = {(char)('A' + i / 26), (char)('A' + i % 26), '\0'};
        if (geoip_ccset_has(&r->allow_cc, cc) && geoip_ccset_has(&r->block_cc, cc)) {
            snprintf(err, errlen, "country %s is in both allow_%scountries and "
                     "block_%scountries", cc, side, side);
            return -1;
        }
    }
    for (size_t i = 0; i < r->allow_asn.n; i++) {
        if (geoip_asnset_has(&r->block_asn, r->allow_asn.v[i])) {
            snprintf(err, errlen, "AS%u is in both allow_%sasns and block_%sasns",
                     (unsigned)r->allow_asn.v[i], side, side);
            return -1;
        }
    }
    return 0;
}

static int has_client_lists(const geoip_conf_t *conf)
{
    return geoip_rules_need_country(&conf->client) ||
           geoip_rules_need_asn(&conf->client);
}

int geoip_conf_finish(pc_plugin_t *self, void *obj, char *err, size_t errlen)
{
    geoip_conf_t *conf = obj;
    int need_cc, need_asn;

    geoip_asnset_finish(&conf->dst.allow_asn);
    geoip_asnset_finish(&conf->dst.block_asn);
    geoip_asnset_finish(&conf->client.allow_asn);
    geoip_asnset_finish(&conf->client.block_asn);
    geoip_domains_finish(&conf->except);
    conf->dst.unknown_block = conf->unknown == 1;
    conf->client.unknown_block = conf->unknown_clients == 1;

    if (conf->database == NULL && conf->asn_database == NULL) {
        snprintf(err, errlen, "no database: give database FILE (countries) "
                 "and/or asn_database FILE (AS numbers)");
        return -1;
    }
    if (check_overlap(&conf->dst, "", err, errlen) < 0 ||
        check_overlap(&conf->client, "client_", err, errlen) < 0)
        return -1;
    if (!conf->check_clients && (has_client_lists(conf) || conf->client.unknown_block)) {
        snprintf(err, errlen, "client rules (*_client_* lists, unknown_clients) "
                 "need check_clients on");
        return -1;
    }
    if (conf->check_clients && !geoip_rules_active(&conf->client)) {
        snprintf(err, errlen, "check_clients on needs a client rule: "
                 "allow_client_countries, block_client_countries, "
                 "allow_client_asns, block_client_asns or unknown_clients block");
        return -1;
    }
    need_cc = geoip_rules_need_country(&conf->dst) ||
              (conf->check_clients && geoip_rules_need_country(&conf->client));
    need_asn = geoip_rules_need_asn(&conf->dst) ||
               (conf->check_clients && geoip_rules_need_asn(&conf->client));
    if (need_cc && conf->database == NULL) {
        snprintf(err, errlen, "country rules need a country database: add "
                 "database FILE");
        return -1;
    }
    /* Without asn_database, AS numbers come from `database` when a rule
     * needs them or asn_path says where they are (GeoIP2-ISP, ipinfo and
     * other combined databases carry both). */
    conf->asn_in_country_db = conf->asn_database == NULL &&
                              (need_asn || !conf->asn_paths.is_auto);
    conf->query.cc_paths = &conf->country_paths;
    conf->query.asn_paths = conf->asn_in_country_db ? &conf->asn_paths : NULL;
    if (need_asn && conf->asn_in_country_db && self) {
        host->log(self, PC_LOG_WARN,
                  "ASN rules without asn_database: AS numbers are read from %s, "
                  "which finds none unless that database carries them "
                  "(autonomous_system_number)", conf->database);
    }
    return 0;
}

void geoip_conf_free(pc_plugin_t *self, void *obj)
{
    geoip_conf_t *conf = obj;

    (void)self;
    if (conf == NULL)
        return;
    geoip_slot_unref(conf->country_slot);
    geoip_slot_unref(conf->asn_slot);
    free(conf->database);
    free(conf->asn_database);
    geoip_paths_free(&conf->country_paths);
    geoip_paths_free(&conf->asn_paths);
    geoip_rules_free(&conf->dst);
    geoip_rules_free(&conf->client);
    geoip_domains_free(&conf->except);
    free(conf);
}
