/* banlist_dyn_test.c - unit tests for the banlist's dynamic bans, state file, auto_ban rules and time formats. */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "banlist.h"
#include "confval.h"
#include "tap.h"

static char tmpdir[] = "/tmp/banlist_dyn_test.XXXXXX";

static netaddr_t A(const char *s)
{
    netaddr_t a;

    memset(&a, 0, sizeof(a));
    if (netaddr_parse(s, &a) < 0)
        diag("test bug: cannot parse %s", s);
    return a;
}

static bl_ban_t *mk(const char *target, int64_t until, const char *reason)
{
    char err[256];
    bl_ban_t *b = bl_ban_parse_target(target, err, sizeof(err));

    if (b == NULL) {
        diag("test bug: %s: %s", target, err);
        exit(1);
    }
    b->created_ms = 1000;
    b->until_ms = until;
    bl_ban_set_text(b, reason, "test");
    return b;
}

static void test_targets(void)
{
    static const struct {
        const char *in, *target;
        int kind;
    } good[] = {
        {"10.0.0.5", "10.0.0.5", BL_CLIENT},
        {"10.1.2.3/8", "10.0.0.0/8", BL_CLIENT},
        {"10.0.0.0/32", "10.0.0.0", BL_CLIENT},
        {"::ffff:10.0.0.7", "10.0.0.7", BL_CLIENT},
        {"2001:DB8::1", "2001:db8::1", BL_CLIENT},
        {"[2001:db8::1]", "2001:db8::1", BL_CLIENT},
        {"2001:db8::/32", "2001:db8::/32", BL_CLIENT},
        {"127.1", "127.0.0.1", BL_CLIENT},
        {"Example.COM.", "example.com", BL_SITE},
        {"*.example.net", "example.net", BL_SITE},
        {"site:203.0.113.7", "203.0.113.7", BL_SITE},
        {"client:10.0.0.9", "10.0.0.9", BL_CLIENT},
    };
    static const struct {
        const char *in, *msg;
    } bad[] = {
        {"", "empty target"},
        {"10.0.0.0/33", "invalid prefix length"},
        {"10.0.0.0/08", "invalid prefix length"},
        {"client:example.com", "invalid client address"},
        {"http://example.com/", "is not a site"},
        {"a..b", "empty label"},
        {"bad name", "invalid site"},
        {"site:", "empty target"},
    };
    char err[256];

    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
        bl_ban_t *b = bl_ban_parse_target(good[i].in, err, sizeof(err));
        const char *want = good[i].target;
        ok(b && strcmp(b->target, want) == 0 && (int)b->kind == good[i].kind,
           "target '%s' is %s %s (%s)", good[i].in, good[i].kind ? "site" : "client",
           want, b ? b->target : err);
        bl_ban_unref(b);
    }
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        bl_ban_t *b = bl_ban_parse_target(bad[i].in, err, sizeof(err));
        ok(b == NULL && strstr(err, bad[i].msg) != NULL, "target '%s' refused (%s)",
           bad[i].in, b ? "accepted" : err);
        bl_ban_unref(b);
    }
    {
        bl_ban_t *b = mk("10.0.0.1", 0, "bad\nreason\twith controls");
        is_str(b->reason, "bad reason with controls", "reason: control bytes made spaces");
        bl_ban_set_text(b, "x", "two words");
        is_str(b->source, "two_words", "source: one word");
        bl_ban_unref(b);
    }
}

static void test_table(void)
{
    bl_dyn_t d;
    bl_ban_t *b, *old;
    bl_snap_t *s;
    netaddr_t a;
    char err[256];
    const bl_ban_t *hit;
    bl_ban_t **gone;

    ok(bl_dyn_init(&d, 5) == 0, "dyn: init");
    b = mk("10.0.0.0/8", 0, "wide");
    bl_dyn_add(&d, b, &old, err, sizeof(err));
    bl_ban_unref(b);
    b = mk("10.1.0.0/16", 5000, "narrow");
    bl_dyn_add(&d, b, &old, err, sizeof(err));
    bl_ban_unref(b);
    b = mk("example.com", 0, "site");
    bl_dyn_add(&d, b, &old, err, sizeof(err));
    bl_ban_unref(b);
    b = mk("2001:db8::/48", 0, "v6");
    bl_dyn_add(&d, b, &old, err, sizeof(err));
    bl_ban_unref(b);

    s = bl_dyn_get(&d);
    is_int(bl_snap_count(s), 4, "dyn: four bans");
    a = A("10.1.2.3");
    hit = bl_snap_client(s, &a, 2000);
    ok(hit && strcmp(hit->reason, "narrow") == 0, "dyn: the most specific ban answers");
    hit = bl_snap_client(s, &a, 6000);
    ok(hit && strcmp(hit->reason, "wide") == 0, "dyn: an ended ban no longer answers");
    a = A("::ffff:10.200.0.1");
    ok(bl_snap_client(s, &a, 0) != NULL, "dyn: IPv4-mapped client");
    a = A("11.0.0.1");
    ok(bl_snap_client(s, &a, 0) == NULL, "dyn: another client");
    a = A("2001:db8:0:ffff::1");
    ok(bl_snap_client(s, &a, 0) != NULL, "dyn: IPv6 client in the CIDR");
    a = A("2001:db8:1::1");
    ok(bl_snap_client(s, &a, 0) == NULL, "dyn: IPv6 client outside");
    ok(bl_snap_site(s, "www.example.com", 0) != NULL, "dyn: subdomain of a banned site");
    ok(bl_snap_site(s, "notexample.com", 0) == NULL, "dyn: not a subdomain");
    is_int(bl_snap_next_expiry(s), 5000, "dyn: next expiry");
    ok(bl_snap_find(s, BL_CLIENT, "10.1.0.0/16") != NULL, "dyn: find by target");
    is_str(bl_snap_at(s, 0)->target, "10.0.0.0/8", "dyn: listed in order");

    /* Replacing keeps the count; the old snapshot stays valid. */
    b = mk("10.0.0.0/8", 9000, "renewed");
    ok(bl_dyn_add(&d, b, &old, err, sizeof(err)) == 0 && old != NULL,
       "dyn: same target replaces");
    is_str(old->reason, "wide", "dyn: the replaced ban is returned");
    bl_ban_unref(old);
    bl_ban_unref(b);
    a = A("10.9.9.9");
    hit = bl_snap_client(s, &a, 0);
    ok(hit && strcmp(hit->reason, "wide") == 0, "dyn: a reader's snapshot is unchanged");
    bl_snap_unref(s);
    s = bl_dyn_get(&d);
    hit = bl_snap_client(s, &a, 0);
    ok(hit && strcmp(hit->reason, "renewed") == 0, "dyn: a new reader sees the change");
    bl_snap_unref(s);

    b = mk("10.0.0.1", 0, "five");
    ok(bl_dyn_add(&d, b, &old, err, sizeof(err)) == 0, "dyn: fifth ban");
    bl_ban_unref(b);
    b = mk("10.0.0.2", 0, "six");
    ok(bl_dyn_add(&d, b, &old, err, sizeof(err)) < 0 && strstr(err, "max_bans 5"),
       "dyn: max_bans enforced (%s)", err);
    bl_ban_unref(b);

    ok(bl_dyn_remove(&d, BL_SITE, "example.com", &old) == 0 && old, "dyn: remove");
    bl_ban_unref(old);
    ok(bl_dyn_remove(&d, BL_SITE, "example.com", &old) < 0, "dyn: remove twice fails");

    is_int(bl_dyn_expire(&d, 5000, &gone), 1, "dyn: one ban ended at 5000");
    is_str(gone[0]->target, "10.1.0.0/16", "dyn: the ended ban");
    bl_ban_unref(gone[0]);
    free(gone);
    is_int(bl_dyn_expire(&d, 5000, &gone), 0, "dyn: nothing more to expire");
    s = bl_dyn_get(&d);
    is_int(bl_snap_count(s), 3, "dyn: three left");
    bl_snap_unref(s);
    bl_dyn_destroy(&d);
}

/* Readers look up while the writer changes the table: run under the
 * sanitizer build, a use-after-free or a torn snapshot shows. */
typedef struct race {
    bl_dyn_t *d;
    atomic_int *stop;
    long lookups, bad;    /* this reader's own counts */
} race_t;

static void *reader(void *arg)
{
    race_t *r = arg;
    netaddr_t a = A("192.0.2.1");

    while (!atomic_load(r->stop)) {
        bl_snap_t *s = bl_dyn_get(r->d);
        const bl_ban_t *b = bl_snap_client(s, &a, 0);
        /* The permanent /24 ban is in every snapshot. */
        if (b == NULL || strcmp(b->reason, "always") != 0)
            r->bad++;
        bl_snap_unref(s);
        r->lookups++;
    }
    return NULL;
}

static void test_race(void)
{
    bl_dyn_t d;
    atomic_int stop = 0;
    race_t r[2] = {{&d, &stop, 0, 0}, {&d, &stop, 0, 0}};
    pthread_t th[2];
    char err[256], t[64];
    bl_ban_t *b, *old;

    bl_dyn_init(&d, 100000);
    b = mk("192.0.2.0/24", 0, "always");
    bl_dyn_add(&d, b, &old, err, sizeof(err));
    bl_ban_unref(b);
    pthread_create(&th[0], NULL, reader, &r[0]);
    pthread_create(&th[1], NULL, reader, &r[1]);
    for (int i = 0; i < 3000; i++) {
        snprintf(t, sizeof(t), "198.51.%d.%d", (i / 250) % 250, i % 250);
        b = mk(t, 0, "churn");
        bl_dyn_add(&d, b, &old, err, sizeof(err));
        bl_ban_unref(b);
        bl_ban_unref(old);
        if (i % 3 == 0) {
            bl_dyn_remove(&d, BL_CLIENT, t, &old);
            bl_ban_unref(old);
        }
    }
    atomic_store(&stop, 1);
    pthread_join(th[0], NULL);
    pthread_join(th[1], NULL);
    ok(r[0].lookups > 0 && r[1].lookups > 0 && r[0].bad + r[1].bad == 0,
       "dyn: %ld concurrent lookups during 4000 changes, none wrong",
       r[0].lookups + r[1].lookups);
    bl_dyn_destroy(&d);
}

static int warned;

static void warn_cb(void *arg, const char *msg)
{
    (void)arg;
    warned++;
    diag("warning: %s", msg);
}

static void test_state(void)
{
    bl_dyn_t d;
    bl_ban_t *b, *old, **bans;
    bl_snap_t *s;
    size_t n;
    char path[512], tmp[600], err[600];
    struct stat st;
    int64_t now = 1767225600000;  /* 2026-01-01 */
    FILE *f;

    snprintf(path, sizeof(path), "%s/state", tmpdir);
    err[0] = '\0';
    bl_dyn_init(&d, 100);
    b = mk("10.0.0.5", now + 3600000, "crypto-locker");
    b->created_ms = now;
    bl_dyn_add(&d, b, &old, err, sizeof(err));
    bl_ban_unref(b);
    b = mk("bad.example", 0, "phishing, reported by Bob");
    b->created_ms = now;
    bl_dyn_add(&d, b, &old, err, sizeof(err));
    bl_ban_unref(b);
    b = mk("10.0.0.6", now - 1, "already over");
    bl_dyn_add(&d, b, &old, err, sizeof(err));
    bl_ban_unref(b);
    s = bl_dyn_get(&d);
    ok(bl_state_write(path, s, now, err, sizeof(err)) == 0, "state: written%s%s",
       err[0] ? ": " : "", err);
    bl_snap_unref(s);
    snprintf(tmp, sizeof(tmp), "%s.tmp", path);
    ok(access(tmp, F_OK) < 0, "state: no temporary file left");
    ok(stat(path, &st) == 0 && (st.st_mode & 0777) == 0640, "state: mode 0640");

    ok(bl_state_read(path, now, &bans, &n, warn_cb, NULL, err, sizeof(err)) == 0,
       "state: read back");
    is_int(n, 2, "state: the ended ban was not written");
    ok(n == 2 && strcmp(bans[0]->target, "10.0.0.5") == 0 &&
           bans[0]->until_ms == now + 3600000 && bans[0]->created_ms == now &&
           strcmp(bans[0]->reason, "crypto-locker") == 0 &&
           strcmp(bans[0]->source, "test") == 0,
       "state: a timed client ban round-trips");
    ok(n == 2 && bans[1]->kind == BL_SITE && bans[1]->until_ms == 0 &&
           strcmp(bans[1]->reason, "phishing, reported by Bob") == 0,
       "state: a permanent site ban with spaces in the reason round-trips");
    for (size_t i = 0; i < n; i++)
        bl_ban_unref(bans[i]);
    free(bans);

    ok(bl_state_read(path, now + 3600000, &bans, &n, warn_cb, NULL, err, sizeof(err)) == 0 &&
           n == 1,
       "state: a ban that ended while stopped is dropped");
    for (size_t i = 0; i < n; i++)
        bl_ban_unref(bans[i]);
    free(bans);

    f = fopen(path, "a");
    fputs("client 10.0.0.77 forever\n", f);
    fputs("martian 1.2.3.4 forever 2026-01-01T00:00:00.000Z ctl x\n", f);
    fputs("client 1.2.3.4 yesterday 2026-01-01T00:00:00.000Z ctl x\n", f);
    fputs("client 10.0.0.8 forever 2026-01-01T00:00:00.000Z ctl\n", f);
    fclose(f);
    warned = 0;
    ok(bl_state_read(path, now, &bans, &n, warn_cb, NULL, err, sizeof(err)) == 0,
       "state: a damaged file still reads");
    is_int(warned, 3, "state: three bad lines reported");
    is_int(n, 3, "state: the good lines are kept (an empty reason is fine)");
    for (size_t i = 0; i < n; i++)
        bl_ban_unref(bans[i]);
    free(bans);

    snprintf(tmp, sizeof(tmp), "%s/missing", tmpdir);
    ok(bl_state_read(tmp, now, &bans, &n, warn_cb, NULL, err, sizeof(err)) == 0 && n == 0,
       "state: a missing file is no bans");
    snprintf(tmp, sizeof(tmp), "%s/nodir/state", tmpdir);
    s = bl_dyn_get(&d);
    ok(bl_state_write(tmp, s, now, err, sizeof(err)) < 0 && strstr(err, "cannot create"),
       "state: an unwritable place is an error (%s)", err);
    bl_snap_unref(s);
    bl_dyn_destroy(&d);
}

static void test_rules(void)
{
    bl_rule_t r;
    char err[256];
    const char *a1[] = {"av.infected", "1", "1h", "infected", "download"};
    const char *a2[] = {"txn.blocked", "20/5m", "forever", "from=urlcat"};
    static const struct {
        const char *argv[4];
        const char *msg;
    } bad[] = {
        {{"Bad Topic", "1", "1h"}, "invalid event name"},
        {{"x", "0", "1h"}, "invalid count"},
        {{"x", "20", "1h"}, "needs a window"},
        {{"x", "2/0", "1h"}, "must be longer than 0"},
        {{"x", "2/5q", "1h"}, "window: invalid duration"},
        {{"x", "1", "soon"}, "invalid duration"},
        {{"x", "1", "500ms"}, "shorter than 1s"},
        {{"x", "10001/1m", "1h"}, "invalid count"},
        {{"x", "1", "1h", "from="}, "needs a plugin name"},
    };

    ok(bl_rule_parse(&r, 5, a1, conf_parse_duration, err, sizeof(err)) == 0,
       "rule: av.infected 1 1h REASON");
    ok(r.count == 1 && r.window_ms == 0 && r.duration_ms == 3600000 && r.from == NULL &&
           strcmp(r.reason, "infected download") == 0 &&
           strcmp(r.text, "av.infected 1 1h infected download") == 0,
       "rule: fields");
    bl_rule_clear(&r);
    ok(bl_rule_parse(&r, 4, a2, conf_parse_duration, err, sizeof(err)) == 0,
       "rule: txn.blocked 20/5m forever from=urlcat");
    ok(r.count == 20 && r.window_ms == 300000 && r.duration_ms == 0 &&
           strcmp(r.from, "urlcat") == 0 && r.reason == NULL,
       "rule: fields with a window");
    bl_rule_clear(&r);
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        int argc = bad[i].argv[3] ? 4 : 3;
        ok(bl_rule_parse(&r, argc, bad[i].argv, conf_parse_duration, err, sizeof(err)) < 0 &&
               strstr(err, bad[i].msg) != NULL,
           "rule: '%s %s %s' refused (%s)", bad[i].argv[0], bad[i].argv[1],
           bad[i].argv[2], err);
    }
}

static void test_counter(void)
{
    bl_rule_t r;
    const char *argv[] = {"txn.blocked", "3/10s", "1h"};
    char err[256];
    bl_counter_t *c;
    netaddr_t a = A("10.0.0.1"), b = A("10.0.0.2");

    bl_rule_parse(&r, 3, argv, conf_parse_duration, err, sizeof(err));
    c = bl_counter_new(&r);
    is_int(bl_counter_hit(c, &a, 0), 0, "counter: 1st event");
    is_int(bl_counter_hit(c, &a, 1000), 0, "counter: 2nd event");
    is_int(bl_counter_hit(c, &b, 1500), 0, "counter: another client counts apart");
    is_int(bl_counter_hit(c, &a, 2000), 1, "counter: 3rd within 10s fires");
    is_int(bl_counter_clients(c), 1, "counter: the banned client is forgotten");
    is_int(bl_counter_hit(c, &a, 3000), 0, "counter: counting starts afresh");
    is_int(bl_counter_hit(c, &a, 14000), 0, "counter: old events fall out");
    is_int(bl_counter_hit(c, &a, 20000), 0, "counter: two within the window");
    is_int(bl_counter_hit(c, &a, 23000), 1, "counter: sliding window fires");
    bl_counter_sweep(c, 100000);
    is_int(bl_counter_clients(c), 0, "counter: sweep forgets stale clients");
    for (int i = 0; i < BL_COUNTER_MAX_CLIENTS + 100; i++) {
        netaddr_t x;
        memset(&x, 0, sizeof(x));
        x.family = AF_INET6;
        x.a[0] = 0x20;
        x.a[12] = (uint8_t)(i >> 24);
        x.a[13] = (uint8_t)(i >> 16);
        x.a[14] = (uint8_t)(i >> 8);
        x.a[15] = (uint8_t)i;
        bl_counter_hit(c, &x, 200000 + i);
    }
    ok(bl_counter_clients(c) <= BL_COUNTER_MAX_CLIENTS, "counter: bounded (%zu clients)",
       bl_counter_clients(c));
    bl_counter_free(c);
    bl_rule_clear(&r);
}

static void test_time(void)
{
    char buf[64];
    int64_t ms;

    is_str(bl_fmt_duration(3600000, buf, sizeof(buf)), "1h", "duration 1h");
    is_str(bl_fmt_duration(5400000, buf, sizeof(buf)), "1h30m", "duration 1h30m");
    is_str(bl_fmt_duration(90061000, buf, sizeof(buf)), "1d1h", "duration 1d1h");
    is_str(bl_fmt_duration(1500, buf, sizeof(buf)), "2s", "duration rounds up");
    is_str(bl_fmt_duration(0, buf, sizeof(buf)), "0s", "duration 0s");
    is_str(bl_fmt_duration(3601000, buf, sizeof(buf)), "1h", "duration: two units at most");
    is_str(bl_fmt_time(1767225600000, buf, sizeof(buf)), "2026-01-01 00:00:00 UTC",
           "time for people");
    is_str(bl_fmt_iso(1767225600250, buf, sizeof(buf)), "2026-01-01T00:00:00.250Z",
           "time for the state file");
    ok(bl_parse_iso("2026-01-01T00:00:00.250Z", &ms) == 0 && ms == 1767225600250,
       "iso parsed back");
    ok(bl_parse_iso("2026-01-01T00:00:00Z", &ms) == 0 && ms == 1767225600000,
       "iso without milliseconds");
    ok(bl_parse_iso("2026-01-01 00:00:00", &ms) < 0, "iso: other forms refused");
    ok(bl_parse_iso("2026-01-01T00:00:00.25Z", &ms) < 0, "iso: two digits refused");
}

int main(void)
{
    char cmd[600];

    if (mkdtemp(tmpdir) == NULL) {
        perror("mkdtemp");
        return 1;
    }
    test_targets();
    test_table();
    test_race();
    test_state();
    test_rules();
    test_counter();
    test_time();
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
    if (system(cmd) != 0)
        diag("could not remove %s", tmpdir);
    return done_testing();
}
