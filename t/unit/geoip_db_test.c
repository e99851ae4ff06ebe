/* geoip_db_test.c - unit tests for plugins/geoip/geoip_db.c (layouts, IPv4/IPv6/mapped lookups, broken files, swaps under load). */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "geoip_db.h"
#include "tap.h"

static char dir[] = "/tmp/geoip_db_test.XXXXXX";
static char mkdb[512];

/* Writes a database with t/geoip/mkdb.pl (options opts, then NETWORK=VALUE
 * args); returns its path (static), or NULL. */
static const char *make_db(const char *name, const char *opts, const char *args)
{
    static char path[8][300];
    static int next;
    char cmd[2048];
    char *p = path[next++ % 8];

    snprintf(p, 300, "%s/%s", dir, name);
    snprintf(cmd, sizeof(cmd), "perl '%s' %s '%s' %s", mkdb, opts, p, args);
    if (system(cmd) != 0) {
        diag("command failed: %s", cmd);
        return NULL;
    }
    return p;
}

static void sa4(struct sockaddr_storage *ss, const char *ip)
{
    struct sockaddr_in *s = (struct sockaddr_in *)ss;

    memset(ss, 0, sizeof(*ss));
    s->sin_family = AF_INET;
    inet_pton(AF_INET, ip, &s->sin_addr);
}

static void sa6(struct sockaddr_storage *ss, const char *ip)
{
    struct sockaddr_in6 *s = (struct sockaddr_in6 *)ss;

    memset(ss, 0, sizeof(*ss));
    s->sin6_family = AF_INET6;
    inet_pton(AF_INET6, ip, &s->sin6_addr);
}

static void sa_any(struct sockaddr_storage *ss, const char *ip)
{
    if (strchr(ip, ':'))
        sa6(ss, ip);
    else
        sa4(ss, ip);
}

/* The country of ip in db read through paths ("" when none). */
static const char *country(geoip_db_t *db, const geoip_paths_t *paths, const char *ip)
{
    static geoip_answer_t a;
    struct sockaddr_storage ss;
    geoip_query_t q = {paths, NULL, 0};
    int e;

    memset(&a, 0, sizeof(a));
    sa_any(&ss, ip);
    if (geoip_db_lookup(db, (struct sockaddr *)&ss, &q, &a, &e) < 0)
        return "ERROR";
    return a.cc;
}

static void test_geoip2(void)
{
    geoip_paths_t autop, reg;
    const char *path = make_db("g2.mmdb", "",
                               "127.0.0.2/32=DE 127.0.0.4/32=/CN 127.0.0.5/32=DE/AT "
                               "::1/128=JP 2001:db8::/32=FR");
    geoip_db_t *db;
    char err[512], buf[256];
    const char *const keys[] = {"registered_country", "iso_code"};

    if (!ok(path != NULL, "GeoLite2-layout database written"))
        return;
    is_int(geoip_db_open(path, &db, err, sizeof(err)), 0, "opens");
    if (db == NULL) {
        diag("%s", err);
        return;
    }
    ok(strstr(geoip_db_describe(db, buf, sizeof(buf)), "GeoLite2-Country, IPv6, built ") == buf,
       "describe: %s", buf);
    memset(&autop, 0, sizeof(autop));
    geoip_paths_auto(&autop, GEOIP_COUNTRY);
    is_str(geoip_paths_format(&autop, buf, sizeof(buf)),
           "country.iso_code, registered_country.iso_code | country_code", "auto paths");
    is_str(country(db, &autop, "127.0.0.2"), "DE", "IPv4");
    is_str(country(db, &autop, "::ffff:127.0.0.2"), "DE", "IPv4-mapped");
    is_str(country(db, &autop, "::1"), "JP", "IPv6 ::1");
    is_str(country(db, &autop, "2001:db8:1::5"), "FR", "IPv6 network");
    is_str(country(db, &autop, "127.0.0.4"), "CN", "registered_country when no country");
    is_str(country(db, &autop, "127.0.0.5"), "DE", "country wins over registered_country");
    is_str(country(db, &autop, "127.0.0.9"), "", "absent address: empty, no error");
    is_str(country(db, &autop, "192.0.2.1"), "", "absent IPv4: empty");

    memset(&reg, 0, sizeof(reg));
    geoip_paths_auto(&reg, GEOIP_COUNTRY);
    is_int(geoip_paths_add(&reg, 2, keys, err, sizeof(err)), 0, "explicit path");
    is_str(geoip_paths_format(&reg, buf, sizeof(buf)), "registered_country.iso_code",
           "explicit path replaces auto");
    is_str(country(db, &reg, "127.0.0.5"), "AT", "explicit path read");
    geoip_paths_free(&reg);
    geoip_paths_free(&autop);
    geoip_db_unref(db);
}

static void test_iploc(void)
{
    geoip_paths_t autop, g2;
    const char *path = make_db("iploc.mmdb", "--layout iploc",
                               "127.0.0.3/32=RU ::1/128=JP 127.0.0.6/32=de 127.0.0.7/32=XYZ");
    const char *const keys[] = {"country", "iso_code"};
    geoip_db_t *db;
    char err[512];

    if (!ok(path != NULL, "ip-location-db-layout database written"))
        return;
    is_int(geoip_db_open(path, &db, err, sizeof(err)), 0, "opens");
    if (db == NULL)
        return;
    memset(&autop, 0, sizeof(autop));
    geoip_paths_auto(&autop, GEOIP_COUNTRY);
    is_str(country(db, &autop, "127.0.0.3"), "RU", "country_code found by auto");
    is_str(country(db, &autop, "127.0.0.3"), "RU", "again (hinted group first)");
    is_str(country(db, &autop, "::ffff:127.0.0.3"), "RU",
           "IPv4-mapped found although the database has no IPv4 aliasing");
    is_str(country(db, &autop, "::1"), "JP", "IPv6");
    is_str(country(db, &autop, "127.0.0.6"), "DE", "lowercase value uppercased");
    is_str(country(db, &autop, "127.0.0.7"), "", "a value that is not a code is ignored");
    memset(&g2, 0, sizeof(g2));
    geoip_paths_auto(&g2, GEOIP_COUNTRY);
    geoip_paths_add(&g2, 2, keys, err, sizeof(err));
    is_str(country(db, &g2, "127.0.0.3"), "", "a GeoLite2 path finds nothing here");
    geoip_paths_free(&g2);
    geoip_paths_free(&autop);
    geoip_db_unref(db);
}

static void test_asn(void)
{
    geoip_paths_t asnp;
    char cmd[2048], err[512], path[300];
    geoip_db_t *db;
    geoip_answer_t a;
    struct sockaddr_storage ss;
    geoip_query_t q = {NULL, NULL, 1};
    int e;

    snprintf(path, sizeof(path), "%s/asn.mmdb", dir);
    snprintf(cmd, sizeof(cmd), "perl '%s' --layout asn '%s' '127.0.0.2/32=64500:Example Org' "
             "::1/128=4200000000", mkdb, path);
    if (!ok(system(cmd) == 0, "ASN database written"))
        return;
    is_int(geoip_db_open(path, &db, err, sizeof(err)), 0, "opens");
    if (db == NULL)
        return;
    memset(&asnp, 0, sizeof(asnp));
    geoip_paths_auto(&asnp, GEOIP_ASN);
    q.asn_paths = &asnp;
    memset(&a, 0, sizeof(a));
    sa4(&ss, "127.0.0.2");
    is_int(geoip_db_lookup(db, (struct sockaddr *)&ss, &q, &a, &e), 0, "lookup");
    is_int(a.asn, 64500, "AS number");
    is_str(a.org, "Example Org", "organisation");
    memset(&a, 0, sizeof(a));
    sa6(&ss, "::1");
    geoip_db_lookup(db, (struct sockaddr *)&ss, &q, &a, &e);
    is_int(a.asn, 4200000000u, "32-bit AS number over IPv6");
    memset(&a, 0, sizeof(a));
    sa4(&ss, "127.0.0.3");
    geoip_db_lookup(db, (struct sockaddr *)&ss, &q, &a, &e);
    is_int(a.asn, 0, "absent: 0");
    geoip_paths_free(&asnp);
    geoip_db_unref(db);
}

static void test_ipv4_only(void)
{
    geoip_paths_t autop;
    char cmd[2048], err[512], path[300];
    geoip_db_t *db;

    snprintf(path, sizeof(path), "%s/v4.mmdb", dir);
    snprintf(cmd, sizeof(cmd), "perl '%s' --layout iploc --ip-version 4 '%s' 127.0.0.2/32=DE",
             mkdb, path);
    if (!ok(system(cmd) == 0, "IPv4-only database written"))
        return;
    is_int(geoip_db_open(path, &db, err, sizeof(err)), 0, "opens");
    if (db == NULL)
        return;
    memset(&autop, 0, sizeof(autop));
    geoip_paths_auto(&autop, GEOIP_COUNTRY);
    is_str(country(db, &autop, "127.0.0.2"), "DE", "IPv4 in an IPv4 database");
    is_str(country(db, &autop, "::ffff:127.0.0.2"), "DE", "mapped in an IPv4 database");
    is_str(country(db, &autop, "::1"), "", "IPv6 in an IPv4 database: unknown, no error");
    geoip_paths_free(&autop);
    geoip_db_unref(db);
}

static void write_bytes(const char *path, const void *p, size_t n)
{
    FILE *f = fopen(path, "wb");

    if (f) {
        fwrite(p, 1, n, f);
        fclose(f);
    }
}

static void test_broken(void)
{
    char path[300], want[600], err[512], good[300], cmd[1024];
    geoip_db_t *db = NULL;
    static char junk[4096];
    FILE *f;

    snprintf(path, sizeof(path), "%s/missing.mmdb", dir);
    is_int(geoip_db_open(path, &db, err, sizeof(err)), -1, "missing file refused");
    snprintf(want, sizeof(want), "cannot open %s: No such file or directory", path);
    is_str(err, want, "message");
    ok(db == NULL, "no handle");

    snprintf(path, sizeof(path), "%s/junk.mmdb", dir);
    for (size_t i = 0; i < sizeof(junk); i++)
        junk[i] = (char)(i * 7 + 3);
    write_bytes(path, junk, sizeof(junk));
    is_int(geoip_db_open(path, &db, err, sizeof(err)), -1, "junk refused");
    snprintf(want, sizeof(want), "cannot open %s: The MaxMind DB file contains "
             "invalid metadata", path);
    is_str(err, want, "message");

    snprintf(path, sizeof(path), "%s/empty.mmdb", dir);
    write_bytes(path, "", 0);
    is_int(geoip_db_open(path, &db, err, sizeof(err)), -1, "empty file refused");
    ok(strstr(err, "cannot open ") == err, "message: %s", err);

    /* A good file with its search tree overwritten: the metadata at the end
     * is intact, so only the probe lookups can tell. */
    snprintf(good, sizeof(good), "%s/tree.mmdb", dir);
    snprintf(cmd, sizeof(cmd), "perl '%s' --random 2000 '%s' 127.0.0.0/8=DE ::1/128=JP",
             mkdb, good);
    if (system(cmd) == 0 && (f = fopen(good, "r+b")) != NULL) {
        static char ff[20000];
        memset(ff, 0xff, sizeof(ff));
        fwrite(ff, 1, sizeof(ff), f);
        fclose(f);
        is_int(geoip_db_open(good, &db, err, sizeof(err)), -1, "damaged search tree refused");
        snprintf(want, sizeof(want), "%s is corrupt: ", good);
        ok(strncmp(err, want, strlen(want)) == 0, "message: %s", err);
    } else {
        ok(0, "damaged database written");
        ok(0, "(skipped)");
    }
}

/* A file whose tree and metadata are sound but whose records are garbage
 * opens (the probe addresses are not in it), and a lookup that finds a
 * record reports the error instead of inventing a value. */
static void test_bad_records(void)
{
    char path[300], cmd[2048], err[512];
    geoip_db_t *db;
    geoip_paths_t autop;
    geoip_answer_t a;
    struct sockaddr_storage ss;
    geoip_query_t q = {NULL, NULL, 0};
    int e = 0;

    snprintf(path, sizeof(path), "%s/bad-records.mmdb", dir);
    snprintf(cmd, sizeof(cmd), "perl '%s' --corrupt-data '%s' 127.0.0.2/32=DE", mkdb, path);
    if (!ok(system(cmd) == 0, "database with a garbage data section written"))
        return;
    is_int(geoip_db_open(path, &db, err, sizeof(err)), 0, "it opens");
    if (db == NULL)
        return;
    memset(&autop, 0, sizeof(autop));
    geoip_paths_auto(&autop, GEOIP_COUNTRY);
    q.cc_paths = &autop;
    memset(&a, 0, sizeof(a));
    sa4(&ss, "127.0.0.2");
    is_int(geoip_db_lookup(db, (struct sockaddr *)&ss, &q, &a, &e), -1,
           "a lookup that reaches a garbage record fails");
    is_str(geoip_db_strerror(e), "The MaxMind DB file's data section contains bad data "
           "(unknown data type or corrupt data)", "with libmaxminddb's reason");
    is_str(a.cc, "", "and no country");
    sa4(&ss, "127.0.0.3");
    is_int(geoip_db_lookup(db, (struct sockaddr *)&ss, &q, &a, &e), 0,
           "an address without a record still answers (absent)");
    geoip_paths_free(&autop);
    geoip_db_unref(db);
}

static void test_ident(void)
{
    char a[300], b[300], cmd[2048];
    geoip_ident_t i1, i2, i3;

    snprintf(a, sizeof(a), "%s/id.mmdb", dir);
    snprintf(b, sizeof(b), "%s/id2.mmdb", dir);
    snprintf(cmd, sizeof(cmd), "perl '%s' '%s' 127.0.0.2/32=DE && perl '%s' '%s' 127.0.0.2/32=RU",
             mkdb, a, mkdb, b);
    if (!ok(system(cmd) == 0, "two versions written"))
        return;
    is_int(geoip_ident_of(a, &i1), 0, "stat");
    geoip_ident_of(a, &i2);
    ok(geoip_ident_equal(&i1, &i2), "same file, same identity");
    rename(b, a);
    geoip_ident_of(a, &i3);
    ok(!geoip_ident_equal(&i1, &i3), "renamed over: new identity");
    ok(geoip_ident_of(b, &i3) < 0, "gone file: -1");
}

/* ---- swaps under load ------------------------------------------------------ */

#define READERS 4
#define LOOKUPS 100000
#define SWAPS 400

typedef struct reader {
    pthread_t t;
    int peek;                   /* geoip_slot_peek, not get/unref */
    geoip_slot_t *slot;
    const geoip_paths_t *paths;
    long de, ru, bad;
} reader_t;

static void *reader_main(void *arg)
{
    reader_t *r = arg;
    struct sockaddr_storage ss;
    geoip_query_t q = {r->paths, NULL, 0};

    sa4(&ss, "127.0.0.2");
    for (int i = 0; i < LOOKUPS; i++) {
        geoip_answer_t a;
        int e;
        geoip_db_t *db = r->peek ? geoip_slot_peek(r->slot) : geoip_slot_get(r->slot);
        memset(&a, 0, sizeof(a));
        if (geoip_db_lookup(db, (struct sockaddr *)&ss, &q, &a, &e) < 0)
            r->bad++;
        else if (strcmp(a.cc, "DE") == 0)
            r->de++;
        else if (strcmp(a.cc, "RU") == 0)
            r->ru++;
        else
            r->bad++;
        if (!r->peek)
            geoip_db_unref(db);
    }
    return NULL;
}

/* Readers look up through the slot (peek: the per-thread cache; else
 * counted references) while this thread swaps databases in. */
static void test_swap(int peek)
{
    const char *how = peek ? "peek" : "get";
    char a[300], b[300], cmd[2048], err[512];
    geoip_db_t *db;
    geoip_slot_t *slot;
    geoip_paths_t autop;
    reader_t r[READERS];
    long de = 0, ru = 0, bad = 0;
    int swaps = 0;

    snprintf(a, sizeof(a), "%s/swap-de.mmdb", dir);
    snprintf(b, sizeof(b), "%s/swap-ru.mmdb", dir);
    snprintf(cmd, sizeof(cmd), "perl '%s' '%s' 127.0.0.0/8=DE && perl '%s' --layout iploc '%s' "
             "127.0.0.0/8=RU", mkdb, a, mkdb, b);
    if (!ok(system(cmd) == 0, "two databases written (two layouts)"))
        return;
    if (geoip_db_open(a, &db, err, sizeof(err)) < 0 ||
        (slot = geoip_slot_new(a, "database", db)) == NULL) {
        ok(0, "slot: %s", err);
        return;
    }
    memset(&autop, 0, sizeof(autop));
    geoip_paths_auto(&autop, GEOIP_COUNTRY);
    memset(r, 0, sizeof(r));
    for (int i = 0; i < READERS; i++) {
        r[i].slot = slot;
        r[i].peek = peek;
        r[i].paths = &autop;
        pthread_create(&r[i].t, NULL, reader_main, &r[i]);
    }
    /* Each swap opens a fresh file and drops the old one, so a reader still
     * inside an old database would touch unmapped memory (ASan or SIGSEGV). */
    for (int i = 0; i < SWAPS; i++) {
        if (geoip_db_open(i % 2 ? a : b, &db, err, sizeof(err)) < 0)
            break;
        geoip_slot_set(slot, db);
        swaps++;
        usleep(100);
    }
    for (int i = 0; i < READERS; i++) {
        pthread_join(r[i].t, NULL);
        de += r[i].de;
        ru += r[i].ru;
        bad += r[i].bad;
    }
    is_int(swaps, SWAPS, "%s: every swap opened its file", how);
    is_int(de + ru, READERS * LOOKUPS, "%s: every lookup answered DE or RU", how);
    is_int(bad, 0, "%s: no failed or torn lookup", how);
    ok(de > 0 && ru > 0, "%s: both databases were seen (DE %ld, RU %ld)", how, de, ru);
    {
        db = geoip_slot_get(slot);
        is_str(country(db, &autop, "127.0.0.2"), (SWAPS - 1) % 2 ? "DE" : "RU",
               "%s: the last database swapped in is current", how);
        geoip_db_unref(db);
    }
    geoip_slot_unref(slot);
    geoip_paths_free(&autop);
}

/* The per-thread cache follows swaps at once on the same thread. */
static void test_peek(void)
{
    char a[300], b[300], cmd[2048], err[512];
    geoip_db_t *db, *p1, *p2;
    geoip_slot_t *slot, *other;
    geoip_paths_t autop;

    snprintf(a, sizeof(a), "%s/peek-de.mmdb", dir);
    snprintf(b, sizeof(b), "%s/peek-ru.mmdb", dir);
    snprintf(cmd, sizeof(cmd), "perl '%s' '%s' 127.0.0.0/8=DE && perl '%s' '%s' 127.0.0.0/8=RU",
             mkdb, a, mkdb, b);
    if (!ok(system(cmd) == 0, "peek: databases written"))
        return;
    geoip_db_open(a, &db, err, sizeof(err));
    slot = geoip_slot_new(a, "database", db);
    geoip_db_open(b, &db, err, sizeof(err));
    other = geoip_slot_new(b, "database", db);
    memset(&autop, 0, sizeof(autop));
    geoip_paths_auto(&autop, GEOIP_COUNTRY);
    p1 = geoip_slot_peek(slot);
    p2 = geoip_slot_peek(slot);
    ok(p1 != NULL && p1 == p2, "peek: the same database twice without a swap");
    is_str(country(p1, &autop, "127.0.0.2"), "DE", "peek: first database");
    is_str(country(geoip_slot_peek(other), &autop, "127.0.0.2"), "RU", "peek: another slot");
    geoip_db_open(b, &db, err, sizeof(err));
    geoip_slot_set(slot, db);
    is_str(country(geoip_slot_peek(slot), &autop, "127.0.0.2"), "RU",
           "peek: a swap is seen by the next peek on the same thread");
    /* The slots go; this thread's cache still holds references, dropped
     * when the entries are reused or the thread exits. */
    geoip_slot_unref(slot);
    geoip_slot_unref(other);
    geoip_paths_free(&autop);
}

int main(void)
{
    const char *top = getenv("TOP_SRCDIR");
    char cmd[700];

    snprintf(mkdb, sizeof(mkdb), "%s/t/geoip/mkdb.pl", top ? top : ".");
    snprintf(cmd, sizeof(cmd), "perl -MMaxMind::DB::Writer::Tree -e 1 2>/dev/null");
    if (access(mkdb, R_OK) != 0 || system(cmd) != 0) {
        printf("1..0 # SKIP needs %s and libmaxmind-db-writer-perl\n", mkdb);
        return 0;
    }
    if (mkdtemp(dir) == NULL) {
        printf("1..0 # SKIP cannot make a temporary directory\n");
        return 0;
    }
    test_geoip2();
    test_iploc();
    test_asn();
    test_ipv4_only();
    test_broken();
    test_bad_records();
    test_ident();
    test_swap(0);
    test_swap(1);
    test_peek();
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    if (system(cmd) != 0)
        diag("could not remove %s", dir);
    return done_testing();
}
