/* geoip_db.c - MaxMind DB files for the geoip plugin: open, look up, share and swap. */
#include <arpa/inet.h>
#include <errno.h>
#include <maxminddb.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "geoip_db.h"
#include "netaddr.h"

struct geoip_db {
    MMDB_s mmdb;
    atomic_uint refs;
    char *path;
    geoip_ident_t ident;
    /* The path group that answered last, per kind: tried first next time.
     * Relaxed atomics: a stale value only changes the order of tries. */
    atomic_int hint[2];
};

/* ---- paths ----------------------------------------------------------------- */

static const char *const k_country[] = {"country", "iso_code", NULL};
static const char *const k_registered[] = {"registered_country", "iso_code", NULL};
static const char *const k_country_code[] = {"country_code", NULL};
static const char *const k_asn[] = {"autonomous_system_number", NULL};
static const char *const k_asn_short[] = {"asn", NULL};
static const char *const k_org[] = {"autonomous_system_organization", NULL};
static const char *const k_org_short[] = {"as_name", NULL};

static void path_set(geoip_path_t *p, const char *const *keys, int group)
{
    int i;

    for (i = 0; keys[i] && i < GEOIP_PATH_KEYS; i++)
        p->keys[i] = keys[i];
    p->keys[i] = NULL;
    p->group = group;
}

static void paths_clear_storage(geoip_paths_t *paths)
{
    for (int i = 0; i < paths->nstorage; i++)
        free(paths->storage[i]);
    paths->nstorage = 0;
}

void geoip_paths_auto(geoip_paths_t *paths, enum geoip_paths_kind kind)
{
    paths_clear_storage(paths);
    memset(paths, 0, sizeof(*paths));
    paths->is_auto = 1;
    if (kind == GEOIP_COUNTRY) {
        path_set(&paths->v[0], k_country, 0);
        path_set(&paths->v[1], k_registered, 0);
        path_set(&paths->v[2], k_country_code, 1);
        paths->n = 3;
    } else {
        path_set(&paths->v[0], k_asn, 0);
        path_set(&paths->v[1], k_asn_short, 1);
        paths->n = 2;
    }
    paths->ngroups = 2;
}

int geoip_paths_add(geoip_paths_t *paths, int nkeys, const char *const *keys,
                    char *err, size_t errlen)
{
    geoip_path_t *p;

    if (paths->is_auto) {
        paths_clear_storage(paths);
        memset(paths, 0, sizeof(*paths));
    }
    if (nkeys < 1 || nkeys > GEOIP_PATH_KEYS) {
        snprintf(err, errlen, "too many keys in a path (at most %d)", GEOIP_PATH_KEYS);
        return -1;
    }
    if (paths->n >= GEOIP_PATHS_MAX) {
        snprintf(err, errlen, "too many paths (at most %d)", GEOIP_PATHS_MAX);
        return -1;
    }
    p = &paths->v[paths->n];
    for (int i = 0; i < nkeys; i++) {
        char *k;
        if (keys[i][0] == '\0') {
            snprintf(err, errlen, "empty key in a path");
            return -1;
        }
        k = strdup(keys[i]);
        if (k == NULL) {
            snprintf(err, errlen, "out of memory");
            return -1;
        }
        paths->storage[paths->nstorage++] = k;
        p->keys[i] = k;
    }
    p->keys[nkeys] = NULL;
    p->group = 0;
    paths->n++;
    paths->ngroups = 1;
    return 0;
}

char *geoip_paths_format(const geoip_paths_t *paths, char *buf, size_t len)
{
    size_t used = 0;

    buf[0] = '\0';
    for (int i = 0; i < paths->n && used < len; i++) {
        const char *sep = i == 0 ? ""
                          : paths->v[i].group != paths->v[i - 1].group ? " | "
                                                                        : ", ";
        used += (size_t)snprintf(buf + used, len - used, "%s", sep);
        for (int k = 0; paths->v[i].keys[k] && used < len; k++)
            used += (size_t)snprintf(buf + used, len - used, "%s%s", k ? "." : "",
                                     paths->v[i].keys[k]);
    }
    return buf;
}

void geoip_paths_free(geoip_paths_t *paths)
{
    paths_clear_storage(paths);
    memset(paths, 0, sizeof(*paths));
}

/* ---- files ----------------------------------------------------------------- */

int geoip_ident_of(const char *path, geoip_ident_t *out)
{
    struct stat st;

    if (stat(path, &st) < 0)
        return -1;
    memset(out, 0, sizeof(*out));
    out->dev = st.st_dev;
    out->ino = st.st_ino;
    out->size = st.st_size;
    out->mtime_ns = (int64_t)st.st_mtim.tv_sec * 1000000000 + st.st_mtim.tv_nsec;
    return 0;
}

int geoip_ident_equal(const geoip_ident_t *a, const geoip_ident_t *b)
{
    return a->dev == b->dev && a->ino == b->ino && a->size == b->size &&
           a->mtime_ns == b->mtime_ns;
}

const char *geoip_db_strerror(int mmdb_error)
{
    return MMDB_strerror(mmdb_error);
}

/* Decodes the whole record of each of a few well-known addresses, so that a
 * file with good metadata but a damaged tree or data section is refused at
 * open time instead of failing lookups later. Returns 0 or an MMDB error. */
static int db_probe(MMDB_s *mmdb)
{
    static const char *const probes[] = {
        "1.1.1.1", "8.8.8.8", "127.0.0.1", "193.0.6.139", "::1",
        "2001:4860:4860::8888", "2a00:1450:4001::1",
    };

    for (size_t i = 0; i < sizeof(probes) / sizeof(probes[0]); i++) {
        int gai_error = 0, mmdb_error = MMDB_SUCCESS;
        MMDB_lookup_result_s r;
        MMDB_entry_data_list_s *list = NULL;

        if (mmdb->metadata.ip_version == 4 && strchr(probes[i], ':'))
            continue;
        r = MMDB_lookup_string(mmdb, probes[i], &gai_error, &mmdb_error);
        if (gai_error != 0)
            continue;
        if (mmdb_error != MMDB_SUCCESS)
            return mmdb_error;
        if (!r.found_entry)
            continue;
        mmdb_error = MMDB_get_entry_data_list(&r.entry, &list);
        MMDB_free_entry_data_list(list);
        if (mmdb_error != MMDB_SUCCESS)
            return mmdb_error;
    }
    return MMDB_SUCCESS;
}

int geoip_db_open(const char *path, geoip_db_t **out, char *err, size_t errlen)
{
    geoip_db_t *db = calloc(1, sizeof(*db));
    int status, opened = 0;

    *out = NULL;
    if (db == NULL || (db->path = strdup(path)) == NULL) {
        snprintf(err, errlen, "out of memory");
        goto fail;
    }
    /* The identity is taken before the open: if the file is replaced in
     * between, the watcher sees a new identity next time and loads again. */
    if (geoip_ident_of(path, &db->ident) < 0) {
        snprintf(err, errlen, "cannot open %s: %s", path, strerror(errno));
        goto fail;
    }
    status = MMDB_open(path, MMDB_MODE_MMAP, &db->mmdb);
    if (status != MMDB_SUCCESS) {
        if (status == MMDB_IO_ERROR || status == MMDB_FILE_OPEN_ERROR)
            snprintf(err, errlen, "cannot open %s: %s (%s)", path,
                     MMDB_strerror(status), strerror(errno));
        else
            snprintf(err, errlen, "cannot open %s: %s", path, MMDB_strerror(status));
        goto fail;
    }
    opened = 1;
    status = db_probe(&db->mmdb);
    if (status != MMDB_SUCCESS) {
        snprintf(err, errlen, "%s is corrupt: %s", path, MMDB_strerror(status));
        goto fail;
    }
    atomic_init(&db->refs, 1);
    atomic_init(&db->hint[0], 0);
    atomic_init(&db->hint[1], 0);
    *out = db;
    return 0;
fail:
    if (db) {
        if (opened)
            MMDB_close(&db->mmdb);
        free(db->path);
        free(db);
    }
    return -1;
}

geoip_db_t *geoip_db_ref(geoip_db_t *db)
{
    if (db)
        atomic_fetch_add_explicit(&db->refs, 1, memory_order_relaxed);
    return db;
}

void geoip_db_unref(geoip_db_t *db)
{
    if (db == NULL || atomic_fetch_sub_explicit(&db->refs, 1, memory_order_acq_rel) != 1)
        return;
    MMDB_close(&db->mmdb);
    free(db->path);
    free(db);
}

const geoip_ident_t *geoip_db_ident(const geoip_db_t *db)
{
    return &db->ident;
}

const char *geoip_db_path(const geoip_db_t *db)
{
    return db->path;
}

char *geoip_db_describe(const geoip_db_t *db, char *buf, size_t len)
{
    time_t t = (time_t)db->mmdb.metadata.build_epoch;
    struct tm tm;
    char date[32] = "?";

    if (gmtime_r(&t, &tm))
        strftime(date, sizeof(date), "%Y-%m-%d", &tm);
    snprintf(buf, len, "%s, IPv%d, built %s",
             db->mmdb.metadata.database_type ? db->mmdb.metadata.database_type : "?",
             (int)db->mmdb.metadata.ip_version, date);
    return buf;
}

/* ---- lookups --------------------------------------------------------------- */

/* Outcome of reading one path: 1 found, 0 absent, -1 database error. */
static int read_path(MMDB_entry_s *entry, const geoip_path_t *p,
                     MMDB_entry_data_s *data, int *mmdb_error)
{
    int status = MMDB_aget_value(entry, data, p->keys);

    if (status == MMDB_SUCCESS)
        return data->has_data ? 1 : 0;
    /* The path does not fit this record's shape: simply absent. */
    if (status == MMDB_LOOKUP_PATH_DOES_NOT_MATCH_DATA_ERROR ||
        status == MMDB_INVALID_LOOKUP_PATH_ERROR)
        return 0;
    *mmdb_error = status;
    return -1;
}

static int take_country(const MMDB_entry_data_s *d, char cc[3])
{
    if (d->type != MMDB_DATA_TYPE_UTF8_STRING || d->data_size != 2)
        return 0;
    for (int i = 0; i < 2; i++) {
        char c = d->utf8_string[i];
        if (c >= 'a' && c <= 'z')
            c = (char)(c - 32);
        if (c < 'A' || c > 'Z')
            return 0;
        cc[i] = c;
    }
    cc[2] = '\0';
    return 1;
}

static int take_asn(const MMDB_entry_data_s *d, uint32_t *asn)
{
    uint64_t v = 0;

    switch (d->type) {
    case MMDB_DATA_TYPE_UINT16:
        v = d->uint16;
        break;
    case MMDB_DATA_TYPE_UINT32:
        v = d->uint32;
        break;
    case MMDB_DATA_TYPE_UINT64:
        v = d->uint64;
        break;
    case MMDB_DATA_TYPE_INT32:
        v = d->int32 > 0 ? (uint64_t)d->int32 : 0;
        break;
    case MMDB_DATA_TYPE_UTF8_STRING: {
        /* "AS15169" or "15169". */
        const char *s = d->utf8_string;
        uint32_t n = d->data_size, i = 0;
        if (n >= 2 && (s[0] == 'A' || s[0] == 'a') && (s[1] == 'S' || s[1] == 's'))
            i = 2;
        if (i == n || n - i > 10)
            return 0;
        for (; i < n; i++) {
            if (s[i] < '0' || s[i] > '9')
                return 0;
            v = v * 10 + (uint64_t)(s[i] - '0');
        }
        break;
    }
    default:
        return 0;
    }
    if (v == 0 || v > 4294967295ull)
        return 0;
    *asn = (uint32_t)v;
    return 1;
}

/* Tries the groups of paths, the hinted one first. Returns 1 when a value
 * was taken, 0 when none, -1 on a database error. */
static int read_field(geoip_db_t *db, MMDB_entry_s *entry,
                      const geoip_paths_t *paths, int kind, geoip_answer_t *out,
                      int *mmdb_error)
{
    int first = atomic_load_explicit(&db->hint[kind], memory_order_relaxed);

    if (first < 0 || first >= paths->ngroups)
        first = 0;
    for (int g = 0; g < paths->ngroups; g++) {
        int group = (first + g) % paths->ngroups;
        for (int i = 0; i < paths->n; i++) {
            MMDB_entry_data_s data;
            int r, took;
            if (paths->v[i].group != group)
                continue;
            r = read_path(entry, &paths->v[i], &data, mmdb_error);
            if (r < 0)
                return -1;
            if (r == 0)
                continue;
            took = kind == GEOIP_COUNTRY ? take_country(&data, out->cc)
                                         : take_asn(&data, &out->asn);
            if (!took)
                continue;
            if (group != first)
                atomic_store_explicit(&db->hint[kind], group, memory_order_relaxed);
            return 1;
        }
    }
    return 0;
}

static void read_org(MMDB_entry_s *entry, geoip_answer_t *out)
{
    const char *const *paths[] = {k_org, k_org_short};

    for (size_t i = 0; i < 2; i++) {
        MMDB_entry_data_s d;
        if (MMDB_aget_value(entry, &d, paths[i]) == MMDB_SUCCESS && d.has_data &&
            d.type == MMDB_DATA_TYPE_UTF8_STRING) {
            size_t n = d.data_size < sizeof(out->org) - 1 ? d.data_size
                                                          : sizeof(out->org) - 1;
            memcpy(out->org, d.utf8_string, n);
            out->org[n] = '\0';
            return;
        }
    }
}

int geoip_db_lookup(geoip_db_t *db, const struct sockaddr *sa,
                    const geoip_query_t *q, geoip_answer_t *out, int *mmdb_error)
{
    struct sockaddr_storage ss;
    netaddr_t a;
    MMDB_lookup_result_s r;
    int status = MMDB_SUCCESS;

    *mmdb_error = MMDB_SUCCESS;
    /* netaddr keeps ::ffff:a.b.c.d as AF_INET: look the IPv4 address up. */
    if (netaddr_from_sockaddr(&a, sa) < 0)
        return 0;
    netaddr_to_sockaddr(&a, 0, &ss);
    r = MMDB_lookup_sockaddr(&db->mmdb, (const struct sockaddr *)&ss, &status);
    if (status == MMDB_IPV6_LOOKUP_IN_IPV4_DATABASE_ERROR)
        return 0;
    if (status != MMDB_SUCCESS) {
        *mmdb_error = status;
        return -1;
    }
    if (!r.found_entry)
        return 0;
    if (q->cc_paths && read_field(db, &r.entry, q->cc_paths, GEOIP_COUNTRY, out,
                                  mmdb_error) < 0)
        return -1;
    if (q->asn_paths && read_field(db, &r.entry, q->asn_paths, GEOIP_ASN, out,
                                   mmdb_error) < 0)
        return -1;
    if (q->want_org)
        read_org(&r.entry, out);
    return 0;
}

/* ---- slots ----------------------------------------------------------------- */

static atomic_uint_fast64_t next_slot_id = 1;

geoip_slot_t *geoip_slot_new(const char *path, const char *directive,
                             geoip_db_t *db)
{
    geoip_slot_t *s = calloc(1, sizeof(*s));

    if (s == NULL || (s->path = strdup(path)) == NULL ||
        pthread_mutex_init(&s->lock, NULL) != 0) {
        if (s)
            free(s->path);
        free(s);
        geoip_db_unref(db);
        return NULL;
    }
    s->db = db;
    s->directive = directive;
    s->id = atomic_fetch_add(&next_slot_id, 1);
    atomic_init(&s->gen, 0);
    atomic_init(&s->refs, 1);
    return s;
}

geoip_slot_t *geoip_slot_ref(geoip_slot_t *s)
{
    if (s)
        atomic_fetch_add_explicit(&s->refs, 1, memory_order_relaxed);
    return s;
}

void geoip_slot_unref(geoip_slot_t *s)
{
    if (s == NULL || atomic_fetch_sub_explicit(&s->refs, 1, memory_order_acq_rel) != 1)
        return;
    geoip_db_unref(s->db);
    pthread_mutex_destroy(&s->lock);
    free(s->path);
    free(s);
}

geoip_db_t *geoip_slot_get(geoip_slot_t *s)
{
    geoip_db_t *db;

    /* The reference is taken under the lock, so geoip_slot_set() cannot
     * drop the last one between reading the pointer and counting it. */
    pthread_mutex_lock(&s->lock);
    db = geoip_db_ref(s->db);
    pthread_mutex_unlock(&s->lock);
    return db;
}

void geoip_slot_set(geoip_slot_t *s, geoip_db_t *db)
{
    geoip_db_t *old;

    pthread_mutex_lock(&s->lock);
    old = s->db;
    s->db = db;
    atomic_fetch_add_explicit(&s->gen, 1, memory_order_release);
    pthread_mutex_unlock(&s->lock);
    geoip_db_unref(old);
}

/* ---- the per-thread cache of geoip_slot_peek() ------------------------------ */

#define SLOT_CACHE 4    /* direct-mapped by slot id: country + ASN, two configs */

typedef struct slot_cache {
    struct {
        uint64_t id;            /* 0: empty */
        unsigned gen;
        geoip_db_t *db;         /* a reference of this thread's */
    } e[SLOT_CACHE];
} slot_cache_t;

static pthread_key_t cache_key;
static pthread_once_t cache_once = PTHREAD_ONCE_INIT;
static int cache_ready;
static _Thread_local slot_cache_t *cache;

/* At thread exit: drop this thread's references. */
static void cache_free(void *arg)
{
    slot_cache_t *c = arg;

    for (int i = 0; i < SLOT_CACHE; i++)
        geoip_db_unref(c->e[i].db);
    free(c);
    cache = NULL;
}

static void cache_init(void)
{
    cache_ready = pthread_key_create(&cache_key, cache_free) == 0;
}

geoip_db_t *geoip_slot_peek(geoip_slot_t *s)
{
    slot_cache_t *c = cache;
    unsigned gen;
    geoip_db_t *old;
    int i;

    if (c == NULL) {
        pthread_once(&cache_once, cache_init);
        if (!cache_ready || (c = calloc(1, sizeof(*c))) == NULL)
            return NULL;
        if (pthread_setspecific(cache_key, c) != 0) {
            free(c);
            return NULL;
        }
        cache = c;
    }
    i = (int)(s->id % SLOT_CACHE);
    gen = atomic_load_explicit(&s->gen, memory_order_acquire);
    if (c->e[i].id == s->id && c->e[i].gen == gen)
        return c->e[i].db;
    /* First use on this thread, or the slot changed: the database and its
     * generation are read together under the lock. */
    old = c->e[i].db;
    pthread_mutex_lock(&s->lock);
    c->e[i].db = geoip_db_ref(s->db);
    c->e[i].gen = atomic_load_explicit(&s->gen, memory_order_relaxed);
    pthread_mutex_unlock(&s->lock);
    c->e[i].id = s->id;
    geoip_db_unref(old);
    return c->e[i].db;
}
