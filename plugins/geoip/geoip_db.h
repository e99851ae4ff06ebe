/* geoip_db.h - MaxMind DB files for the geoip plugin: open, look up, share and swap. */
#ifndef PC_GEOIP_DB_H
#define PC_GEOIP_DB_H

#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/types.h>

/*
 * A geoip_db_t is one opened (memory-mapped) MaxMind DB file. It is
 * read-only after geoip_db_open(), so any number of threads may look up in
 * it at once; it is reference-counted and unmapped when the last reference
 * goes.
 *
 * A geoip_slot_t is where the plugin finds the current database of one
 * configured path; the change watcher puts a new database in with
 * geoip_slot_set(). A reader always sees a whole database, old or new, and
 * an old one is unmapped only after its last reader let go. Readers on the
 * hot path use geoip_slot_peek(): each thread keeps its own reference to
 * the database it saw last and a generation number, so a lookup costs one
 * atomic load of the slot's generation and no lock and no shared write
 * (workers on several cores do not contend); only after a swap does a
 * thread take the lock once to fetch the new database. Other readers take
 * a counted reference with geoip_slot_get().
 *
 * Lookup paths. A path is a list of map keys (or array indexes) from the
 * top of a record: {"country", "iso_code"}. A geoip_paths_t holds the paths
 * to try in order, in groups: the first group that gives a value wins. The
 * default groups ("auto") read every layout Portcullis documents:
 *
 *   country: [country.iso_code, registered_country.iso_code]  GeoLite2/GeoIP2
 *            [country_code]                                   ip-location-db
 *   asn:     [autonomous_system_number]    GeoLite2-ASN, ip-location-db asn
 *            [asn]                         ipinfo ("AS15169" strings too)
 *
 * Inside a group, order is meaning (registered_country only when there is
 * no country); between groups, a database remembers which group answered
 * last and tries it first, so an auto lookup costs one path, not three.
 */

#define GEOIP_PATH_KEYS 8       /* keys in one path */
#define GEOIP_PATHS_MAX 8       /* paths in one list */

typedef struct geoip_path {
    const char *keys[GEOIP_PATH_KEYS + 1];  /* NULL-terminated */
    int group;
} geoip_path_t;

typedef struct geoip_paths {
    geoip_path_t v[GEOIP_PATHS_MAX];
    int n;
    int ngroups;
    int is_auto;
    int auto_given;             /* `..._path auto` was written */
    char *storage[GEOIP_PATHS_MAX * GEOIP_PATH_KEYS];  /* keys we own */
    int nstorage;
} geoip_paths_t;

enum geoip_paths_kind { GEOIP_COUNTRY = 0, GEOIP_ASN = 1 };

/* Sets paths to the auto groups of kind. */
void geoip_paths_auto(geoip_paths_t *paths, enum geoip_paths_kind kind);
/* Appends one explicit path (a group of its own is not made: explicit paths
 * form one group, tried in order). The first explicit path clears the auto
 * ones. Returns 0, or -1 with a message ("too many keys in a path (at most
 * 8)", "too many paths (at most 8)", "empty key in a path"). */
int geoip_paths_add(geoip_paths_t *paths, int nkeys, const char *const *keys,
                    char *err, size_t errlen);
/* "country.iso_code, registered_country.iso_code | country_code" into buf. */
char *geoip_paths_format(const geoip_paths_t *paths, char *buf, size_t len);
void geoip_paths_free(geoip_paths_t *paths);

/* What identifies a file version: a change of any field means a new file. */
typedef struct geoip_ident {
    dev_t dev;
    ino_t ino;
    off_t size;
    int64_t mtime_ns;
} geoip_ident_t;

/* Returns 0, or -1 with errno set (stat failed). */
int geoip_ident_of(const char *path, geoip_ident_t *out);
int geoip_ident_equal(const geoip_ident_t *a, const geoip_ident_t *b);

typedef struct geoip_db geoip_db_t;

/* Opens and checks path (blocking: the main thread or a thread of our own,
 * never a worker loop). Returns 0 with *out holding one reference, or -1
 * with a message in err: "cannot open PATH: No such file or directory",
 * "cannot open PATH: The MaxMind DB file contains invalid metadata", "PATH
 * is corrupt: ...". */
int geoip_db_open(const char *path, geoip_db_t **out, char *err, size_t errlen);
geoip_db_t *geoip_db_ref(geoip_db_t *db);
/* Drops a reference; the last one unmaps the file. Any thread. */
void geoip_db_unref(geoip_db_t *db);
const geoip_ident_t *geoip_db_ident(const geoip_db_t *db);
const char *geoip_db_path(const geoip_db_t *db);
/* "GeoLite2-Country, IPv6, built 2026-11-20" into buf. */
char *geoip_db_describe(const geoip_db_t *db, char *buf, size_t len);

/* What a lookup found. */
typedef struct geoip_answer {
    char cc[3];          /* uppercase country code, "" when none */
    uint32_t asn;        /* AS number, 0 when none */
    char org[64];        /* AS organisation, "" when none or not asked */
} geoip_answer_t;

/* Which fields to read. NULL paths skip the field. */
typedef struct geoip_query {
    const geoip_paths_t *cc_paths;
    const geoip_paths_t *asn_paths;
    int want_org;
} geoip_query_t;

/* Looks sa up (AF_INET or AF_INET6; an IPv4-mapped IPv6 address is looked
 * up as the IPv4 address, since databases without IPv4 aliasing, such as
 * ip-location-db's, hold nothing under ::ffff:0:0/96). Fills the fields out
 * has (others are left alone). Returns 0 (found or not: an absent address
 * leaves the fields empty), or -1 when the database could not be read
 * (*mmdb_error is the libmaxminddb code; geoip_db_strerror() names it). */
int geoip_db_lookup(geoip_db_t *db, const struct sockaddr *sa,
                    const geoip_query_t *q, geoip_answer_t *out,
                    int *mmdb_error);
const char *geoip_db_strerror(int mmdb_error);

/* ---- slots ---------------------------------------------------------------- */

typedef struct geoip_slot {
    pthread_mutex_t lock;
    geoip_db_t *db;              /* the current database; under lock */
    uint64_t id;                 /* unique in the process, never reused */
    atomic_uint gen;             /* bumped by every geoip_slot_set() */
    char *path;
    const char *directive;       /* "database" or "asn_database", for logs */
    atomic_uint refs;
    /* Touched only by the change watcher (one thread). */
    geoip_ident_t failed;        /* a version that did not open */
    int has_failed;
    int missing;                 /* the file was gone at the last poll */
} geoip_slot_t;

/* A slot for path holding db (the slot takes the caller's reference to db);
 * directive (a static string) names it in log lines. Returns NULL when out
 * of memory (db is then unreferenced). */
geoip_slot_t *geoip_slot_new(const char *path, const char *directive,
                             geoip_db_t *db);
geoip_slot_t *geoip_slot_ref(geoip_slot_t *s);
void geoip_slot_unref(geoip_slot_t *s);
/* The current database with a new reference: geoip_db_unref() it. */
geoip_db_t *geoip_slot_get(geoip_slot_t *s);
/* The current database, borrowed from this thread's cache: valid until this
 * thread's next geoip_slot_peek() (of any slot), so look up and be done; do
 * not unref it. The cache holds a reference per slot it has seen and
 * drops it when the slot changes, when another slot takes its place, or
 * when the thread exits. NULL only when out of memory (use
 * geoip_slot_get() then). */
geoip_db_t *geoip_slot_peek(geoip_slot_t *s);
/* Puts db in (taking the caller's reference) and drops the slot's reference
 * to the old one. */
void geoip_slot_set(geoip_slot_t *s, geoip_db_t *db);

#endif
