/* netaddr_test.c - unit tests for lib/netaddr.c: parsing, formatting, sets, ADDR:PORT. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/un.h>

#include "netaddr.h"
#include "tap.h"

static netaddr_t A(const char *s)
{
    netaddr_t a;
    if (netaddr_parse(s, &a) < 0) {
        diag("test bug: cannot parse '%s'", s);
        memset(&a, 0, sizeof(a));
        a.family = -1;
    }
    return a;
}

static const char *fmt(const char *s)
{
    static char buf[NETADDR_STRLEN];
    netaddr_t a = A(s);
    return netaddr_format(&a, buf, sizeof(buf));
}

static void test_parse(void)
{
    static const char *good[] = {
        "10.0.0.1", "0.0.0.0", "255.255.255.255", "::", "::1", "fe80::1",
        "2001:db8::1", "2001:DB8:0:0:0:0:0:1", "::ffff:10.0.0.1", "64:ff9b::1.2.3.4",
    };
    static const char *bad[] = {
        "", "1", "127.1", "0x7f.0.0.1", "0x7f000001", "010.0.0.1", "0177.0.0.1",
        "256.0.0.1", "1.2.3.4.5", "1.2.3", " 1.2.3.4", "1.2.3.4 ", "1.2.3.-1",
        "[::1]", "fe80::1%eth0", "::g", ":::", "1::2::3", "localhost", "1.2.3.4/8",
        "2130706433",
    };
    netaddr_t a, b;
    size_t i;

    for (i = 0; i < sizeof(good) / sizeof(good[0]); i++)
        ok(netaddr_parse(good[i], &a) == 0, "parse accepts '%s'", good[i]);
    for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        ok(netaddr_parse(bad[i], &a) == -1, "parse rejects '%s'", bad[i]);

    ok(netaddr_parse("10.1.2.3", &a) == 0 && a.family == AF_INET && a.a[0] == 10 &&
           a.a[1] == 1 && a.a[2] == 2 && a.a[3] == 3,
       "IPv4 bytes in network order");
    ok(netaddr_parse("::ffff:10.1.2.3", &b) == 0 && b.family == AF_INET,
       "IPv4-mapped IPv6 is stored as AF_INET");
    ok(netaddr_equal(&a, &b), "10.1.2.3 equals ::ffff:10.1.2.3");
    ok(netaddr_parse("::ffff:a01:203", &b) == 0 && netaddr_equal(&a, &b),
       "hex form of the mapped address equals too");
    ok(netaddr_parse("::10.1.2.3", &b) == 0 && b.family == AF_INET6 && !netaddr_equal(&a, &b),
       "IPv4-compatible ::10.1.2.3 stays IPv6");
    ok(!netaddr_equal(&(netaddr_t){0}, &a), "different families are not equal");
    a = A("2001:db8::1");
    b = A("2001:db8::2");
    ok(!netaddr_equal(&a, &b), "2001:db8::1 != 2001:db8::2");
    b = A("2001:0db8:0000:0000:0000:0000:0000:0001");
    ok(netaddr_equal(&a, &b), "long and short IPv6 forms are equal");
}

static void test_format(void)
{
    char small[4];
    netaddr_t a = A("2001:db8::1");

    is_str(fmt("10.0.0.1"), "10.0.0.1", "format IPv4");
    is_str(fmt("2001:0DB8:0000:0000:0000:0000:0000:0001"), "2001:db8::1", "format IPv6 canonical");
    is_str(fmt("::ffff:192.168.1.1"), "192.168.1.1", "format mapped as IPv4");
    is_str(fmt("::"), "::", "format ::");
    is_str(netaddr_format(&a, small, sizeof(small)), "", "format into a short buffer gives ''");
}

static void test_sockaddr(void)
{
    struct sockaddr_in sin;
    struct sockaddr_in6 sin6;
    struct sockaddr_un sun;
    struct sockaddr_storage ss;
    netaddr_t a;
    socklen_t len;

    memset(&sin, 0, sizeof(sin));
    sin.sin_family = AF_INET;
    inet_pton(AF_INET, "192.0.2.7", &sin.sin_addr);
    ok(netaddr_from_sockaddr(&a, (struct sockaddr *)&sin) == 0 && a.family == AF_INET &&
           netaddr_equal(&a, &(netaddr_t){AF_INET, {192, 0, 2, 7}}),
       "from sockaddr_in");

    memset(&sin6, 0, sizeof(sin6));
    sin6.sin6_family = AF_INET6;
    inet_pton(AF_INET6, "::ffff:192.0.2.7", &sin6.sin6_addr);
    ok(netaddr_from_sockaddr(&a, (struct sockaddr *)&sin6) == 0 && a.family == AF_INET &&
           netaddr_equal(&a, &(netaddr_t){AF_INET, {192, 0, 2, 7}}),
       "from mapped sockaddr_in6 gives AF_INET");

    inet_pton(AF_INET6, "2001:db8::7", &sin6.sin6_addr);
    ok(netaddr_from_sockaddr(&a, (struct sockaddr *)&sin6) == 0 && a.family == AF_INET6 &&
           netaddr_equal(&a, &(netaddr_t){0}) == 0 && a.a[15] == 7,
       "from sockaddr_in6");

    memset(&sun, 0, sizeof(sun));
    sun.sun_family = AF_UNIX;
    is_int(netaddr_from_sockaddr(&a, (struct sockaddr *)&sun), -1, "AF_UNIX is refused");

    a = A("192.0.2.9");
    len = netaddr_to_sockaddr(&a, 8080, &ss);
    is_int(len, sizeof(struct sockaddr_in), "to_sockaddr IPv4 length");
    ok(ss.ss_family == AF_INET && ((struct sockaddr_in *)&ss)->sin_port == htons(8080) &&
           memcmp(&((struct sockaddr_in *)&ss)->sin_addr, a.a, 4) == 0,
       "to_sockaddr IPv4 address and port");
    a = A("2001:db8::9");
    len = netaddr_to_sockaddr(&a, 443, &ss);
    is_int(len, sizeof(struct sockaddr_in6), "to_sockaddr IPv6 length");
    ok(ss.ss_family == AF_INET6 && ((struct sockaddr_in6 *)&ss)->sin6_port == htons(443) &&
           memcmp(&((struct sockaddr_in6 *)&ss)->sin6_addr, a.a, 16) == 0,
       "to_sockaddr IPv6 address and port");
}

static void test_loopback(void)
{
    static const char *yes[] = {"127.0.0.1", "127.255.255.254", "0.0.0.0", "0.1.2.3",
                                "::1", "::", "::ffff:127.0.0.1"};
    static const char *no[] = {"128.0.0.1", "126.255.255.255", "1.0.0.0", "10.0.0.1",
                               "::2", "fe80::1", "::1:0", "1::1", "2001:db8::1"};
    size_t i;

    for (i = 0; i < sizeof(yes) / sizeof(yes[0]); i++) {
        netaddr_t a = A(yes[i]);
        ok(netaddr_is_loopback(&a), "%s is this host", yes[i]);
    }
    for (i = 0; i < sizeof(no) / sizeof(no[0]); i++) {
        netaddr_t a = A(no[i]);
        ok(!netaddr_is_loopback(&a), "%s is not this host", no[i]);
    }
}

static void test_port(void)
{
    static const char *bad[] = {"", "0", "65536", "99999", "100000", "-1", "+1",
                                "03128", "80a", "0x50", " 80", "1 "};
    uint16_t p = 0;
    size_t i;

    ok(netaddr_parse_port("1", &p) == 0 && p == 1, "port 1");
    ok(netaddr_parse_port("65535", &p) == 0 && p == 65535, "port 65535");
    ok(netaddr_parse_port("3128", &p) == 0 && p == 3128, "port 3128");
    for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        is_int(netaddr_parse_port(bad[i], &p), -1, "port '%s' refused", bad[i]);
}

/* ---- sets ---------------------------------------------------------------- */

static int in(const netaddr_set_t *s, const char *addr)
{
    netaddr_t a = A(addr);
    return netaddr_set_contains(s, &a);
}

static void set_err_is(const char *text, const char *expected)
{
    netaddr_set_t *s = netaddr_set_new();
    char err[256] = "";

    is_int(netaddr_set_add_text(s, text, err, sizeof(err)), -1, "set refuses '%s'", text);
    is_str(err, expected, "message for '%s'", text);
    is_int(netaddr_set_count(s), 0, "nothing added for '%s'", text);
    netaddr_set_free(s);
}

static void test_set_text(void)
{
    netaddr_set_t *s = netaddr_set_new();
    char err[256];
    int rc = 0;

    rc |= netaddr_set_add_text(s, "10.0.0.0/8", err, sizeof(err));
    rc |= netaddr_set_add_text(s, "192.168.1.77/24", err, sizeof(err));  /* host bits */
    rc |= netaddr_set_add_text(s, "172.16.0.5-172.16.0.50", err, sizeof(err));
    rc |= netaddr_set_add_text(s, "203.0.113.9", err, sizeof(err));
    rc |= netaddr_set_add_text(s, "2001:db8::/32", err, sizeof(err));
    rc |= netaddr_set_add_text(s, "fe80::1-fe80::ff", err, sizeof(err));
    rc |= netaddr_set_add_text(s, "::1", err, sizeof(err));
    is_int(rc, 0, "set accepts CIDRs, ranges and addresses");
    is_int(netaddr_set_count(s), 7, "count is entries added");
    is_int(netaddr_set_finish(s), 0, "finish");
    is_int(netaddr_set_count(s), 7, "count unchanged by merging");

    ok(in(s, "10.0.0.0") && in(s, "10.255.255.255") && in(s, "10.1.2.3"), "10/8 inside");
    ok(!in(s, "9.255.255.255") && !in(s, "11.0.0.0"), "10/8 edges outside");
    ok(in(s, "192.168.1.0") && in(s, "192.168.1.255") && !in(s, "192.168.2.0") &&
           !in(s, "192.168.0.255"),
       "host bits of 192.168.1.77/24 are masked");
    ok(in(s, "172.16.0.5") && in(s, "172.16.0.50") && !in(s, "172.16.0.4") &&
           !in(s, "172.16.0.51"),
       "range ends are inclusive");
    ok(in(s, "203.0.113.9") && !in(s, "203.0.113.8") && !in(s, "203.0.113.10"),
       "single address");
    ok(in(s, "2001:db8::") && in(s, "2001:db8:ffff:ffff:ffff:ffff:ffff:ffff") &&
           !in(s, "2001:db9::") && !in(s, "2001:db7:ffff:ffff:ffff:ffff:ffff:ffff"),
       "IPv6 CIDR");
    ok(in(s, "fe80::1") && in(s, "fe80::ff") && !in(s, "fe80::100") && !in(s, "fe80::"),
       "IPv6 range");
    ok(in(s, "::1") && !in(s, "::2") && !in(s, "::"), "::1");
    ok(in(s, "::ffff:10.9.8.7") && in(s, "::ffff:172.16.0.6"),
       "IPv4-mapped lookups match IPv4 entries");
    ok(!in(s, "::a09:807"), "IPv4-compatible ::10.9.8.7 does not match 10/8");
    netaddr_set_free(s);

    set_err_is("", "invalid address ''");
    set_err_is("10.0.0", "invalid address '10.0.0'");
    set_err_is("10.0.0.0/33", "invalid prefix length in '10.0.0.0/33'");
    set_err_is("10.0.0.0/", "invalid prefix length in '10.0.0.0/'");
    set_err_is("10.0.0.0/08", "invalid prefix length in '10.0.0.0/08'");
    set_err_is("10.0.0.0/+8", "invalid prefix length in '10.0.0.0/+8'");
    set_err_is("10.0.0.0/8/8", "invalid prefix length in '10.0.0.0/8/8'");
    set_err_is("::/129", "invalid prefix length in '::/129'");
    set_err_is("::/1000", "invalid prefix length in '::/1000'");
    set_err_is("localhost", "invalid address 'localhost'");
    set_err_is("010.0.0.0/8", "invalid address '010.0.0.0'");
    set_err_is("10.0.0.9-10.0.0.1", "invalid range '10.0.0.9-10.0.0.1': start is after end");
    set_err_is("10.0.0.1-::1", "invalid range '10.0.0.1-::1': mixes IPv4 and IPv6");
    set_err_is("10.0.0.1-", "invalid address ''");
    set_err_is("-10.0.0.1", "invalid address ''");
    set_err_is("10.0.0.1-10.0.0.2-10.0.0.3", "invalid address '10.0.0.2-10.0.0.3'");
    set_err_is("10.0.0.0/8-10.0.0.1", "invalid address '10.0.0.0/8'");
}

static void test_set_mapped_and_edges(void)
{
    netaddr_set_t *s = netaddr_set_new();
    netaddr_set_t *t = netaddr_set_new();
    netaddr_t lo, hi;
    char err[128];

    /* ::/0 is everything, IPv4 included. */
    netaddr_set_add_text(s, "::/0", err, sizeof(err));
    netaddr_set_finish(s);
    ok(in(s, "1.2.3.4") && in(s, "::") && in(s, "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"),
       "::/0 holds IPv4 and all of IPv6");
    netaddr_set_free(s);

    s = netaddr_set_new();
    netaddr_set_add_text(s, "0.0.0.0/0", err, sizeof(err));
    netaddr_set_finish(s);
    ok(in(s, "0.0.0.0") && in(s, "255.255.255.255") && !in(s, "::1") &&
           !in(s, "::fffe:ffff:ffff") && !in(s, "::1:0:0:0"),
       "0.0.0.0/0 is exactly ::ffff:0:0/96");
    netaddr_set_free(s);

    netaddr_set_add_text(t, "::ffff:0:0/96", err, sizeof(err));
    netaddr_set_finish(t);
    ok(in(t, "8.8.8.8") && !in(t, "::"), "::ffff:0:0/96 written as IPv6 holds all IPv4");
    netaddr_set_free(t);

    s = netaddr_set_new();
    netaddr_set_add_text(s, "::ffff:10.0.0.0/104", err, sizeof(err));
    netaddr_set_finish(s);
    ok(in(s, "10.0.0.0") && in(s, "10.255.255.255") && !in(s, "11.0.0.0"),
       "::ffff:10.0.0.0/104 equals 10.0.0.0/8");
    netaddr_set_free(s);

    s = netaddr_set_new();
    netaddr_set_add_text(s, "::ffff:10.0.0.1-::ffff:10.0.0.3", err, sizeof(err));
    netaddr_set_add_text(s, "::ffff:10.0.0.9-10.0.0.10", err, sizeof(err));
    netaddr_set_finish(s);
    ok(in(s, "10.0.0.2") && in(s, "10.0.0.10") && !in(s, "10.0.0.4"),
       "mapped ranges and mixed mapped/IPv4 ends");
    netaddr_set_free(s);

    /* The top of the space: ranges that end at all-ones must merge without
     * wrapping around. */
    s = netaddr_set_new();
    netaddr_set_add_text(s, "ffff::/16", err, sizeof(err));
    netaddr_set_add_text(s, "ffff:ffff::/32", err, sizeof(err));
    netaddr_set_add_text(s, "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", err, sizeof(err));
    netaddr_set_add_text(s, "::", err, sizeof(err));
    netaddr_set_finish(s);
    ok(in(s, "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff") && in(s, "ffff::") && in(s, "::") &&
           !in(s, "fffe:ffff:ffff:ffff:ffff:ffff:ffff:ffff") && !in(s, "::1"),
       "ranges at both ends of the space");
    netaddr_set_free(s);

    /* Adjacent ranges merge; a gap of one address stays a gap. */
    s = netaddr_set_new();
    netaddr_set_add_text(s, "10.0.0.0-10.0.0.9", err, sizeof(err));
    netaddr_set_add_text(s, "10.0.0.10-10.0.0.19", err, sizeof(err));
    netaddr_set_add_text(s, "10.0.0.21-10.0.0.30", err, sizeof(err));
    netaddr_set_add_text(s, "10.0.0.0/30", err, sizeof(err));      /* inside */
    netaddr_set_add_text(s, "10.0.0.5-10.0.0.25", err, sizeof(err)); /* overlaps two */
    netaddr_set_add_text(s, "10.0.0.40-10.0.0.41", err, sizeof(err));
    netaddr_set_finish(s);
    ok(in(s, "10.0.0.0") && in(s, "10.0.0.20") && in(s, "10.0.0.30") && !in(s, "10.0.0.31") &&
           !in(s, "10.0.0.39") && in(s, "10.0.0.40") && in(s, "10.0.0.41") &&
           !in(s, "10.0.0.42"),
       "overlapping, nested and adjacent ranges merge");
    netaddr_set_free(s);

    /* A set used before finish still answers right. */
    s = netaddr_set_new();
    netaddr_set_add_text(s, "10.0.0.0/8", err, sizeof(err));
    netaddr_set_finish(s);
    netaddr_set_add_text(s, "192.168.0.0/16", err, sizeof(err));
    ok(in(s, "192.168.3.4") && in(s, "10.0.0.1") && !in(s, "172.16.0.1"),
       "unfinished set is searched linearly");
    netaddr_set_finish(s);
    ok(in(s, "192.168.3.4") && in(s, "10.0.0.1") && !in(s, "172.16.0.1"),
       "finished again after more adds");
    netaddr_set_free(s);

    s = netaddr_set_new();
    netaddr_set_finish(s);
    ok(!in(s, "0.0.0.0") && !in(s, "::"), "empty set contains nothing");
    lo = A("10.0.0.9");
    hi = A("10.0.0.1");
    is_int(netaddr_set_add_range(s, &lo, &hi), -1, "add_range refuses lo > hi");
    is_int(netaddr_set_add_range(s, &hi, &lo), 0, "add_range lo <= hi");
    netaddr_set_finish(s);
    ok(in(s, "10.0.0.5") && !in(s, "10.0.0.10"), "add_range works");
    is_int(netaddr_set_count(s), 1, "count after add_range");
    netaddr_set_free(s);
    netaddr_set_free(NULL);
    ok(1, "netaddr_set_free(NULL) is a no-op");
}

/* ---- 100,000 random entries against a brute-force check ------------------ */

typedef struct {
    uint8_t lo[16], hi[16];  /* in the mapped 128-bit space, big endian */
} bf_range_t;

static uint64_t rng_state;

static uint64_t rnd(void)
{
    /* xorshift64*: reproducible from the printed seed. */
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    return rng_state * 2685821657736338717ull;
}

static void v4key(uint32_t v, uint8_t k[16])
{
    memset(k, 0, 10);
    k[10] = k[11] = 0xff;
    k[12] = (uint8_t)(v >> 24);
    k[13] = (uint8_t)(v >> 16);
    k[14] = (uint8_t)(v >> 8);
    k[15] = (uint8_t)v;
}

static void v4text(uint32_t v, char *buf)
{
    sprintf(buf, "%u.%u.%u.%u", v >> 24, (v >> 16) & 255, (v >> 8) & 255, v & 255);
}

/* A random v6 address inside 2001:db8::/32 whose low 64 bits vary little,
 * so ranges overlap and queries hit. */
static void v6rand(uint8_t k[16])
{
    uint64_t r = rnd();
    memset(k, 0, 16);
    k[0] = 0x20;
    k[1] = 0x01;
    k[2] = 0x0d;
    k[3] = 0xb8;
    k[7] = (uint8_t)(r & 3);
    k[13] = (uint8_t)(r >> 8);
    k[14] = (uint8_t)(r >> 16);
    k[15] = (uint8_t)(r >> 24);
}

static void key_add(uint8_t k[16], int delta)
{
    int i;
    if (delta > 0) {
        for (i = 15; i >= 0 && ++k[i] == 0; i--)
            ;
    } else {
        for (i = 15; i >= 0 && k[i]-- == 0; i--)
            ;
    }
}

static int bf_contains(const bf_range_t *r, size_t n, const uint8_t k[16])
{
    size_t i;
    for (i = 0; i < n; i++)
        if (memcmp(r[i].lo, k, 16) <= 0 && memcmp(k, r[i].hi, 16) <= 0)
            return 1;
    return 0;
}

static netaddr_t key_addr(const uint8_t k[16])
{
    static const uint8_t mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    netaddr_t a;
    memset(&a, 0, sizeof(a));
    if (memcmp(k, mapped, 12) == 0) {
        a.family = AF_INET;
        memcpy(a.a, k + 12, 4);
    } else {
        a.family = AF_INET6;
        memcpy(a.a, k, 16);
    }
    return a;
}

static void test_set_random(void)
{
    enum { N = 100000, Q = 3000 };
    bf_range_t *r = calloc(N, sizeof(*r));
    netaddr_set_t *s = netaddr_set_new();
    char text[128], t2[64], err[128];
    size_t i;
    int bad_add = 0, mismatches = 0, hits = 0, q;
    uint64_t seed = getenv("NETADDR_SEED") ? strtoull(getenv("NETADDR_SEED"), NULL, 0)
                                           : 0x9e3779b97f4a7c15ull;

    rng_state = seed;
    diag("seed 0x%llx (set NETADDR_SEED to replay)", (unsigned long long)seed);
    for (i = 0; i < N; i++) {
        uint64_t kind = rnd() % 4;
        if (kind == 0) {
            /* IPv4 CIDR within 10.0.0.0/8, host bits possibly set. */
            uint32_t base = 0x0a000000u | (uint32_t)(rnd() & 0xffffff);
            unsigned bits = 23 + (unsigned)(rnd() % 10);
            uint32_t mask = bits == 0 ? 0 : ~0u << (32 - bits);
            v4key(base & mask, r[i].lo);
            v4key((base & mask) | ~mask, r[i].hi);
            v4text(base, t2);
            sprintf(text, "%s/%u", t2, bits);
        } else if (kind == 1) {
            uint32_t a = 0x0a000000u | (uint32_t)(rnd() & 0xffffff);
            uint32_t b = a + (uint32_t)(rnd() % 300);
            if (b > 0x0affffffu)
                b = 0x0affffffu;
            v4key(a, r[i].lo);
            v4key(b, r[i].hi);
            v4text(a, text);
            v4text(b, t2);
            strcat(text, "-");
            strcat(text, t2);
        } else if (kind == 2) {
            /* IPv6 CIDR /104../128 in the dense part of 2001:db8::/32. */
            uint8_t k[16];
            unsigned bits = 104 + (unsigned)(rnd() % 25), b;
            v6rand(k);
            inet_ntop(AF_INET6, k, t2, sizeof(t2));
            sprintf(text, "%s/%u", t2, bits);
            for (b = 0; b < 128; b++) {
                int byte = (int)(b / 8), bit = 7 - (int)(b % 8);
                int set = (k[byte] >> bit) & 1;
                if (b >= bits)
                    set = 0;
                r[i].lo[byte] = (uint8_t)((r[i].lo[byte] & ~(1 << bit)) | (set << bit));
                r[i].hi[byte] = (uint8_t)((r[i].hi[byte] & ~(1 << bit)) |
                                          ((b >= bits ? 1 : set) << bit));
            }
        } else {
            uint8_t a[16], b[16];
            v6rand(a);
            memcpy(b, a, 16);
            b[15] = (uint8_t)(b[15] + (uint8_t)(rnd() % 50));
            if (memcmp(b, a, 16) < 0)
                memcpy(b, a, 16);
            memcpy(r[i].lo, a, 16);
            memcpy(r[i].hi, b, 16);
            inet_ntop(AF_INET6, a, text, sizeof(text));
            inet_ntop(AF_INET6, b, t2, sizeof(t2));
            strcat(text, "-");
            strcat(text, t2);
        }
        if (netaddr_set_add_text(s, text, err, sizeof(err)) < 0) {
            if (bad_add++ < 5)
                diag("add '%s': %s", text, err);
        }
    }
    is_int(bad_add, 0, "100,000 random entries added");
    is_int(netaddr_set_count(s), N, "count 100,000");
    is_int(netaddr_set_finish(s), 0, "finish 100,000");

    for (q = 0; q < Q; q++) {
        uint8_t k[16];
        netaddr_t a;
        int want, got;
        uint64_t how = rnd() % 6;
        if (how == 0) {
            v4key(0x0a000000u | (uint32_t)(rnd() & 0xffffff), k);
        } else if (how == 1) {
            v6rand(k);
        } else {
            /* An edge of a random entry, or one beyond it. */
            const bf_range_t *e = &r[rnd() % N];
            memcpy(k, how < 4 ? e->lo : e->hi, 16);
            if (how == 2)
                key_add(k, -1);
            if (how == 5)
                key_add(k, 1);
        }
        a = key_addr(k);
        want = bf_contains(r, N, k);
        got = netaddr_set_contains(s, &a);
        hits += want;
        if (want != got && mismatches++ < 5) {
            char b[NETADDR_STRLEN];
            diag("%s: want %d got %d", netaddr_format(&a, b, sizeof(b)), want, got);
        }
        /* The same IPv4 address asked as ::ffff:a.b.c.d must agree. */
        if (a.family == AF_INET) {
            char b[NETADDR_STRLEN + 8], c[NETADDR_STRLEN];
            netaddr_t m;
            sprintf(b, "::ffff:%s", netaddr_format(&a, c, sizeof(c)));
            if (netaddr_parse(b, &m) < 0 || netaddr_set_contains(s, &m) != want)
                if (mismatches++ < 5)
                    diag("mapped %s disagrees", b);
        }
    }
    is_int(mismatches, 0, "%d lookups agree with brute force", Q);
    ok(hits > Q / 4 && hits < Q, "queries both hit (%d) and miss", hits);
    netaddr_set_free(s);
    free(r);
}

/* ---- ADDR:PORT ----------------------------------------------------------- */

static void hp_ok(const char *s, int family, const char *addr, unsigned port, const char *text)
{
    netaddr_port_t hp;
    char err[128] = "";
    netaddr_t a;
    char buf[NETADDR_STRLEN];
    unsigned got_port;

    if (!ok(netaddr_parse_hostport(s, &hp, err, sizeof(err)) == 0, "hostport '%s'", s)) {
        diag("  %s", err);
        return;
    }
    netaddr_from_sockaddr(&a, (struct sockaddr *)&hp.ss);
    got_port = family == AF_INET ? ntohs(((struct sockaddr_in *)&hp.ss)->sin_port)
                                 : ntohs(((struct sockaddr_in6 *)&hp.ss)->sin6_port);
    ok(hp.ss.ss_family == family &&
           hp.len == (family == AF_INET ? sizeof(struct sockaddr_in)
                                        : sizeof(struct sockaddr_in6)),
       "'%s' family and length", s);
    is_str(netaddr_format(&a, buf, sizeof(buf)), addr, "'%s' address", s);
    is_int(got_port, port, "'%s' port", s);
    is_str(hp.text, text, "'%s' text", s);
}

static void hp_bad(const char *s, const char *msg)
{
    netaddr_port_t hp;
    char err[128] = "";

    is_int(netaddr_parse_hostport(s, &hp, err, sizeof(err)), -1, "hostport refuses '%s'", s);
    is_str(err, msg, "message for '%s'", s);
}

static void test_hostport(void)
{
    hp_ok("127.0.0.1:3128", AF_INET, "127.0.0.1", 3128, "127.0.0.1:3128");
    hp_ok("[::1]:3128", AF_INET6, "::1", 3128, "[::1]:3128");
    hp_ok("*:3128", AF_INET6, "::", 3128, "*:3128");
    hp_ok("3128", AF_INET6, "::", 3128, "*:3128");
    hp_ok("1", AF_INET6, "::", 1, "*:1");
    hp_ok("0.0.0.0:65535", AF_INET, "0.0.0.0", 65535, "0.0.0.0:65535");
    hp_ok("[::]:80", AF_INET6, "::", 80, "[::]:80");
    hp_ok("[2001:DB8:0::1]:8080", AF_INET6, "2001:db8::1", 8080, "[2001:db8::1]:8080");
    hp_ok("[::ffff:10.0.0.1]:80", AF_INET, "10.0.0.1", 80, "10.0.0.1:80");
    hp_ok("[ffff:ffff:ffff:ffff:ffff:ffff:255.255.255.255]:65535", AF_INET6,
          "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", 65535,
          "[ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff]:65535");

    hp_bad("127.0.0.1:0", "invalid port '0'");
    hp_bad("0", "invalid port '0'");
    hp_bad("65536", "invalid port '65536'");
    hp_bad("*:65536", "invalid port '65536'");
    hp_bad("*:http", "invalid port 'http'");
    hp_bad("1.2.3.4:+80", "invalid port '+80'");
    hp_bad("1.2.3.4:080", "invalid port '080'");
    hp_bad("127.0.0.1", "missing port in '127.0.0.1'");
    hp_bad("127.0.0.1:", "missing port in '127.0.0.1:'");
    hp_bad("localhost", "missing port in 'localhost'");
    hp_bad("*", "missing port in '*'");
    hp_bad("[::1]", "missing port in '[::1]'");
    hp_bad("[::1]:", "missing port in '[::1]:'");
    hp_bad("localhost:3128", "invalid address 'localhost'");
    hp_bad("127.1:3128", "invalid address '127.1'");
    hp_bad(":3128", "invalid address ''");
    hp_bad("::1:3128", "IPv6 address needs brackets in '::1:3128'");
    hp_bad("[::1:3128", "missing ']' in '[::1:3128'");
    hp_bad("[127.0.0.1]:80", "invalid address '127.0.0.1'");
    hp_bad("[fe80::1%eth0]:80", "invalid address 'fe80::1%eth0'");
    hp_bad("[::1]x80", "invalid listen address '[::1]x80'");
    hp_bad("", "invalid listen address ''");
}

int main(void)
{
    test_parse();
    test_format();
    test_sockaddr();
    test_loopback();
    test_port();
    test_set_text();
    test_set_mapped_and_edges();
    test_set_random();
    test_hostport();
    return done_testing();
}
