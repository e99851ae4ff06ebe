/* geoip.c - the geoip plugin: block destinations (and clients) by country and AS number. */
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <portcullis/plugin.h>

#include "geoip_cache.h"
#include "geoip_conf.h"
#include "geoip_watch.h"
#include "netaddr.h"

/*
 * Every address the proxy is about to connect to (PC_HOOK_UPSTREAM_ADDR:
 * plain HTTP, CONNECT, IP-literal URLs, each address of a name in turn) is
 * looked up in the configured MaxMind databases. The country and AS number
 * become notes of the transaction ("country", "asn": the JSON access log
 * prints them) and the rules of geoip_rules.h decide; a block names the
 * country or AS on the block page with the category "geoip". With
 * check_clients on, client addresses are judged the same way when they
 * connect (PC_HOOK_ACCEPT). See plugins/geoip/README.md.
 *
 * Lookups read memory-mapped files and never block, so they run on the
 * worker loops. Opening files happens on the main thread (directives, at
 * start and reload) and on the watcher's own thread (geoip_watch.c).
 */

PC_PLUGIN_HOST_DEFINE;
#define host pc_plugin_host_

#define CATEGORY "geoip"

/* The plugin's run-time state (plugin_data). */
typedef struct geoip_state {
    geoip_watch_t *watch;
    atomic_llong last_error_log;  /* seconds: lookup errors are rate-limited */
} geoip_state_t;

/* The database of slot s for one lookup: borrowed from this thread's cache
 * (no lock, no shared write), or, when that cache could not be allocated, a
 * counted reference left in *ref for the caller to drop. */
static geoip_db_t *db_for(geoip_slot_t *s, geoip_db_t **ref)
{
    geoip_db_t *db = geoip_slot_peek(s);

    *ref = NULL;
    if (db == NULL)
        db = *ref = geoip_slot_get(s);
    return db;
}

/* The key of sa's answer under conf and its current databases; 0 when sa
 * is not an IP address. */
static int cache_key(const geoip_conf_t *conf, const struct sockaddr *sa,
                     geoip_cache_key_t *key)
{
    memset(key, 0, sizeof(*key));
    if (netaddr_from_sockaddr(&key->addr, sa) < 0)
        return 0;
    key->conf_id = conf->id;
    if (conf->country_slot)
        key->gen[0] = atomic_load_explicit(&conf->country_slot->gen, memory_order_acquire);
    if (conf->asn_slot)
        key->gen[1] = atomic_load_explicit(&conf->asn_slot->gen, memory_order_acquire);
    return 1;
}

/* Looks addr up in conf's databases (or this thread's cache of answers).
 * Returns 0, or -1 after logging (at most once a minute) a database read
 * error; out then holds what was found. */
static int lookup(pc_plugin_t *self, const geoip_conf_t *conf,
                  const struct sockaddr *sa, int want_org, geoip_answer_t *out)
{
    geoip_query_t q = conf->query;
    geoip_cache_key_t key;
    int rc = 0, mmdb_error = 0, cacheable;
    const char *failed = NULL;

    memset(out, 0, sizeof(*out));
    cacheable = !want_org && cache_key(conf, sa, &key);
    if (cacheable && geoip_cache_get(&key, out))
        return 0;
    if (conf->country_slot) {
        geoip_db_t *ref, *db = db_for(conf->country_slot, &ref);
        q.want_org = want_org && conf->asn_in_country_db;
        if (geoip_db_lookup(db, sa, &q, out, &mmdb_error) < 0) {
            rc = -1;
            failed = conf->database;
        }
        geoip_db_unref(ref);
    }
    if (conf->asn_slot) {
        geoip_query_t aq = {NULL, &conf->asn_paths, want_org};
        geoip_db_t *ref, *db = db_for(conf->asn_slot, &ref);
        int e = 0;
        if (geoip_db_lookup(db, sa, &aq, out, &e) < 0) {
            rc = -1;
            mmdb_error = e;
            failed = conf->asn_database;
        }
        geoip_db_unref(ref);
    }
    if (rc < 0) {
        geoip_state_t *st = host->plugin_data(self);
        long long now = (long long)time(NULL), last;
        host->metric_add(self, "lookup_errors", 1);
        /* One thread wins the minute's line; the others only count. */
        last = st ? atomic_load(&st->last_error_log) : now;
        if (now - last >= 60 &&
            atomic_compare_exchange_strong(&st->last_error_log, &last, now))
            host->log(self, PC_LOG_ERR, "lookup in %s failed: %s (address treated "
                      "as unknown; logged at most once a minute)", failed,
                      geoip_db_strerror(mmdb_error));
    }
    if (cacheable && rc == 0)
        geoip_cache_put(&key, out);
    return rc;
}

static void addr_text(const struct sockaddr *sa, char *buf, size_t len)
{
    netaddr_t a;

    if (netaddr_from_sockaddr(&a, sa) == 0)
        netaddr_format(&a, buf, len);
    else
        snprintf(buf, len, "?");
}

/* Judges one side; on a block writes the reason into reason. */
static enum geoip_verdict judge(pc_plugin_t *self, const geoip_conf_t *conf,
                                const geoip_rules_t *rules, const char *who,
                                const struct sockaddr *sa, const geoip_answer_t *a,
                                char *reason, size_t len)
{
    enum geoip_verdict v = geoip_rules_judge(rules, a->cc, a->asn);
    geoip_answer_t full;
    char text[NETADDR_STRLEN];

    if (v == GEOIP_PASS)
        return v;
    full = *a;
    /* The organisation only for the page: looked up again, blocks are rare. */
    if (a->asn != 0)
        lookup(self, conf, sa, 1, &full);
    addr_text(sa, text, sizeof(text));
    geoip_reason(v, who, text, full.cc, full.asn, full.org, reason, len);
    return v;
}

/* v in decimal into buf (at least 11 bytes); returns buf. Every request
 * pays for this, and snprintf costs ten times as much. */
static char *u32_text(uint32_t v, char *buf)
{
    char tmp[10];
    int n = 0, i = 0;

    do {
        tmp[n++] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    while (n)
        buf[i++] = tmp[--n];
    buf[i] = '\0';
    return buf;
}

/* PC_HOOK_UPSTREAM_ADDR: a worker thread, before each connect(). */
static int geoip_upstream(pc_plugin_t *self, pc_txn_t *txn, void *obj)
{
    const geoip_conf_t *conf = obj;
    const struct sockaddr *sa = host->txn_upstream_addr(txn);
    geoip_answer_t a;
    char reason[256], asn[16];

    if (sa == NULL)
        return PC_CONTINUE;
    lookup(self, conf, sa, 0, &a);
    /* A note per address tried: the last one is the address connected to. */
    if (a.cc[0])
        host->txn_note(txn, "country", a.cc);
    if (a.asn)
        host->txn_note(txn, "asn", u32_text(a.asn, asn));
    if (!geoip_rules_active(&conf->dst) ||
        judge(self, conf, &conf->dst, "destination", sa, &a, reason,
              sizeof(reason)) == GEOIP_PASS)
        return PC_CONTINUE;
    if (geoip_domains_match(&conf->except, host->txn_host(txn))) {
        host->log_txn(self, txn, PC_LOG_INFO, "%s; allowed: %s is in except_domains",
                      reason, host->txn_host(txn));
        host->metric_add(self, "excepted", 1);
        return PC_CONTINUE;
    }
    host->txn_block(self, txn, 403, reason, CATEGORY);
    host->metric_add(self, "blocked", 1);
    return PC_BLOCK;
}

/* PC_HOOK_ACCEPT: a worker thread, once per client connection. */
static int geoip_accept(pc_plugin_t *self, pc_conn_t *conn, void *obj)
{
    const geoip_conf_t *conf = obj;
    const struct sockaddr *sa;
    geoip_answer_t a;
    char reason[256];

    if (!conf->check_clients)
        return PC_CONTINUE;
    sa = host->conn_client_addr(conn);
    if (sa == NULL)
        return PC_CONTINUE;
    lookup(self, conf, sa, 0, &a);
    if (judge(self, conf, &conf->client, "client", sa, &a, reason, sizeof(reason)) ==
        GEOIP_PASS)
        return PC_CONTINUE;
    host->conn_block(self, conn, 403, reason, CATEGORY);
    host->metric_add(self, "clients_blocked", 1);
    return PC_BLOCK;
}

static void log_databases(pc_plugin_t *self, const geoip_conf_t *conf)
{
    char desc[160], paths[256];
    geoip_slot_t *slots[2] = {conf->country_slot, conf->asn_slot};

    for (int i = 0; i < 2; i++) {
        geoip_db_t *db;
        if (slots[i] == NULL)
            continue;
        db = geoip_slot_get(slots[i]);
        geoip_paths_format(i == 0 ? &conf->country_paths : &conf->asn_paths, paths,
                           sizeof(paths));
        host->log(self, PC_LOG_INFO, "%s %s (%s), read as %s",
                  i == 0 ? "database" : "asn_database", geoip_db_path(db),
                  geoip_db_describe(db, desc, sizeof(desc)), paths);
        geoip_db_unref(db);
    }
}

static int geoip_init(pc_plugin_t *self, void *obj, char *err, size_t errlen)
{
    geoip_conf_t *conf = obj;
    geoip_state_t *st = calloc(1, sizeof(*st));

    if (st == NULL) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    atomic_init(&st->last_error_log, 0);
    if (host->hook_txn(self, PC_HOOK_UPSTREAM_ADDR, geoip_upstream) < 0 ||
        host->hook_conn(self, PC_HOOK_ACCEPT, geoip_accept) < 0) {
        snprintf(err, errlen, "cannot register hooks");
        free(st);
        return -1;
    }
    st->watch = geoip_watch_start(self, conf, err, errlen);
    if (st->watch == NULL) {
        free(st);
        return -1;
    }
    host->plugin_set_data(self, st);
    log_databases(self, conf);
    return 0;
}

static void geoip_reconfigure(pc_plugin_t *self, void *old_conf, void *new_conf)
{
    geoip_state_t *st = host->plugin_data(self);

    (void)old_conf;
    if (st && st->watch)
        geoip_watch_set_conf(st->watch, new_conf);
    log_databases(self, new_conf);
}

/* Stopping: no more database reloads. */
static void geoip_drain(pc_plugin_t *self)
{
    geoip_state_t *st = host->plugin_data(self);

    if (st && st->watch) {
        geoip_watch_stop(st->watch);
        st->watch = NULL;
    }
}

static void geoip_shutdown(pc_plugin_t *self)
{
    geoip_state_t *st = host->plugin_data(self);

    if (st == NULL)
        return;
    geoip_watch_stop(st->watch);
    free(st);
    host->plugin_set_data(self, NULL);
}

static const pc_plugin_desc_t geoip_desc = {
    .abi_major = PC_ABI_MAJOR,
    .abi_minor = PC_ABI_MINOR,
    .size = sizeof(pc_plugin_desc_t),
    .name = "geoip",
    .version = "1.0",
    .description = "blocks destinations and clients by country and AS number "
                   "(MaxMind DB files)",
    .directives = geoip_directives,
    .conf_create = geoip_conf_create,
    .conf_finish = geoip_conf_finish,
    .conf_free = geoip_conf_free,
    .init = geoip_init,
    .reconfigure = geoip_reconfigure,
    .drain = geoip_drain,
    .shutdown = geoip_shutdown,
};

PC_PLUGIN(geoip_desc)
