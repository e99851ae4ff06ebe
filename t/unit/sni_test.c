/* sni_test.c - unit tests for core/sni.c: real hellos, fragments, byte feeds, malformed. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sni.h"
#include "tap.h"

#ifndef FIXTURES_DIR
#define FIXTURES_DIR "t/unit/fixtures"
#endif

/* ---- a byte builder for synthetic hellos -------------------------------- */

typedef struct buf {
    uint8_t b[3 * SNI_PEEK_MAX];
    size_t n;
} buf_t;

static void put8(buf_t *b, unsigned v)
{
    b->b[b->n++] = (uint8_t)v;
}

static void put16(buf_t *b, unsigned v)
{
    put8(b, v >> 8);
    put8(b, v & 0xff);
}

static void putn(buf_t *b, const void *p, size_t n)
{
    memcpy(b->b + b->n, p, n);
    b->n += n;
}

static void puts_(buf_t *b, const char *s)
{
    putn(b, s, strlen(s));
}

/* Opens a vector with a lenbytes length; vec_end() fills it in. */
static size_t vec_begin(buf_t *b, int lenbytes)
{
    size_t at = b->n;
    b->n += (size_t)lenbytes;
    return at;
}

static void vec_end(buf_t *b, size_t at, int lenbytes)
{
    size_t len = b->n - at - (size_t)lenbytes;
    for (int k = lenbytes - 1; k >= 0; k--) {
        b->b[at + (size_t)k] = (uint8_t)(len & 0xff);
        len >>= 8;
    }
}

/* One extension: type, then the payload the caller writes between. */
static size_t ext_begin(buf_t *b, unsigned type)
{
    put16(b, type);
    return vec_begin(b, 2);
}

/* A server_name extension with one host_name. */
static void ext_sni(buf_t *b, const char *name, size_t len)
{
    size_t e = ext_begin(b, 0), l = vec_begin(b, 2), nm;
    put8(b, 0);
    nm = vec_begin(b, 2);
    putn(b, name, len);
    vec_end(b, nm, 2);
    vec_end(b, l, 2);
    vec_end(b, e, 2);
}

/* A handshake message: ClientHello with the given extension bytes
 * (ext == NULL: no extensions block at all). sid, suites and comp allow
 * malformed variants. */
static void hs_hello(buf_t *hs, const uint8_t *ext, size_t extlen, int no_ext,
                     size_t sidlen, size_t suiteslen, size_t complen)
{
    size_t body, v;
    uint8_t zero[64] = {0};

    hs->n = 0;
    put8(hs, 1);
    body = vec_begin(hs, 3);
    put16(hs, 0x0303);
    putn(hs, zero, 32); /* random */
    v = vec_begin(hs, 1);
    putn(hs, zero, sidlen);
    vec_end(hs, v, 1);
    v = vec_begin(hs, 2);
    for (size_t k = 0; k < suiteslen; k++)
        put8(hs, k % 2 ? 0x01 : 0x13); /* 0x1301 ... */
    vec_end(hs, v, 2);
    v = vec_begin(hs, 1);
    putn(hs, zero, complen);
    vec_end(hs, v, 1);
    if (!no_ext) {
        v = vec_begin(hs, 2);
        putn(hs, ext, extlen);
        vec_end(hs, v, 2);
    }
    vec_end(hs, body, 3);
}

/* Wraps a handshake message into records: cuts[] are the record sizes
 * (the last one takes the rest); ncuts 0 means one record. */
static void records(buf_t *out, const buf_t *hs, const size_t *cuts, int ncuts)
{
    size_t pos = 0;

    out->n = 0;
    for (int k = 0; k <= ncuts && pos < hs->n; k++) {
        size_t len = k < ncuts ? cuts[k] : hs->n - pos;
        put8(out, 22);
        put16(out, 0x0301);
        put16(out, (unsigned)len);
        putn(out, hs->b + pos, len);
        pos += len;
    }
}

/* A one-record hello from extension bytes. */
static void hello(buf_t *out, const buf_t *ext)
{
    static buf_t hs;
    hs_hello(&hs, ext->b, ext->n, 0, 32, 4, 1);
    records(out, &hs, NULL, 0);
}

static int parse(const buf_t *b, sni_info_t *info, const char **why)
{
    return sni_parse(b->b, b->n, info, why);
}

/* ---- fixtures ----------------------------------------------------------- */

static size_t load_hex(const char *name, uint8_t *out, size_t cap)
{
    char path[512];
    FILE *f;
    int c, hi = -1;
    size_t n = 0;

    snprintf(path, sizeof(path), "%s/sni/%s.hex", FIXTURES_DIR, name);
    f = fopen(path, "r");
    if (f == NULL) {
        diag("cannot open %s", path);
        return 0;
    }
    while ((c = fgetc(f)) != EOF) {
        int v;
        if (c >= '0' && c <= '9')
            v = c - '0';
        else if (c >= 'a' && c <= 'f')
            v = c - 'a' + 10;
        else
            continue;
        if (hi < 0) {
            hi = v;
        } else if (n < cap) {
            out[n++] = (uint8_t)(hi << 4 | v);
            hi = -1;
        }
    }
    fclose(f);
    return n;
}

struct fixture {
    const char *file;
    const char *name;
    int h2, http11, tls13;
    uint16_t max_version;
};

static const struct fixture fixtures[] = {
    {"openssl-tls13-alpn", "www.example.com", 1, 1, 1, 0x0304},
    {"openssl-tls12", "intranet.example.lan", 0, 0, 0, 0x0303},
    {"openssl-nosni", "", 0, 0, 1, 0x0304},
    {"curl", "curl.example.org", 1, 1, 1, 0x0304},
    {"chromium", "www.chromium-test.example", 1, 1, 1, 0x0304},
};

static uint8_t fx[SNI_PEEK_MAX];

/* Every prefix of p is "need more", the whole is a hello of len bytes. */
static int feed_byte_by_byte(const uint8_t *p, size_t len, size_t *bad_at)
{
    sni_info_t info;
    for (size_t k = 0; k < len; k++) {
        if (sni_parse(p, k, &info, NULL) != 0) {
            *bad_at = k;
            return 0;
        }
    }
    return sni_parse(p, len, &info, NULL) == 1 && info.consumed == len;
}

static void test_fixtures(void)
{
    for (size_t k = 0; k < sizeof(fixtures) / sizeof(fixtures[0]); k++) {
        const struct fixture *x = &fixtures[k];
        size_t n = load_hex(x->file, fx, sizeof(fx)), bad_at = 0;
        sni_info_t info;
        const char *why = NULL;
        int rc;

        if (!ok(n > 100, "%s: fixture loaded (%zu bytes)", x->file, n))
            continue;
        rc = sni_parse(fx, n, &info, &why);
        is_int(rc, 1, "%s: a complete ClientHello", x->file);
        if (rc != 1) {
            diag("  why: %s", why ? why : "(null)");
            continue;
        }
        is_str(info.server_name, x->name, "%s: server_name", x->file);
        is_int(info.ip_literal, 0, "%s: no IP literal", x->file);
        is_int(info.alpn_h2, x->h2, "%s: ALPN h2 offered or not", x->file);
        is_int(info.alpn_http11, x->http11, "%s: ALPN http/1.1 offered or not", x->file);
        is_int(!!(info.versions & SNI_V_TLS13), x->tls13, "%s: TLS 1.3 offered or not",
               x->file);
        is_int(info.max_version, x->max_version, "%s: highest version", x->file);
        is_int(info.legacy_version, 0x0303, "%s: legacy_version 1.2", x->file);
        is_int(info.consumed, n, "%s: consumed the whole hello", x->file);
        ok(feed_byte_by_byte(fx, n, &bad_at), "%s: byte by byte: 0 until complete (%zu)",
           x->file, bad_at);
    }
}

/* A real hello re-cut into several records parses the same. */
static void test_fragmented(void)
{
    static buf_t hs, rec;
    size_t n = load_hex("chromium", fx, sizeof(fx)), bad_at = 0;
    sni_info_t info;
    const char *why = NULL;
    static const size_t cut1[] = {1}, cut2[] = {2, 1}, cut3[] = {3, 300, 1000},
                        cut4[] = {1, 1, 1, 1};

    if (!ok(n > 5, "chromium fixture for fragmentation"))
        return;
    /* the fixture is one record: its payload is the handshake message */
    hs.n = n - 5;
    memcpy(hs.b, fx + 5, hs.n);

    records(&rec, &hs, cut1, 1);
    is_int(parse(&rec, &info, &why), 1, "2 records, cut inside the handshake header");
    is_str(info.server_name, "www.chromium-test.example", "2 records: server_name");
    is_int(info.consumed, rec.n, "2 records: consumed both");
    ok(feed_byte_by_byte(rec.b, rec.n, &bad_at), "2 records byte by byte (%zu)", bad_at);

    records(&rec, &hs, cut2, 2);
    is_int(parse(&rec, &info, &why), 1, "3 records");
    is_int(info.consumed, rec.n, "3 records: consumed all");

    records(&rec, &hs, cut3, 3);
    is_int(parse(&rec, &info, &why), 1, "4 records (the limit)");
    is_str(info.server_name, "www.chromium-test.example", "4 records: server_name");
    ok(feed_byte_by_byte(rec.b, rec.n, &bad_at), "4 records byte by byte (%zu)", bad_at);

    records(&rec, &hs, cut4, 4);
    is_int(parse(&rec, &info, &why), -1, "5 records: refused");
    is_str(why, "ClientHello spread over too many records", "5 records: why");

    /* What follows the hello (0-RTT data, a next record) is not consumed. */
    records(&rec, &hs, cut1, 1);
    {
        size_t hello_len = rec.n;
        static const uint8_t app[] = {23, 3, 3, 0, 2, 'h', 'i'};
        putn(&rec, app, sizeof(app));
        is_int(parse(&rec, &info, &why), 1, "hello followed by another record");
        is_int(info.consumed, hello_len, "consumed stops at the hello");
    }
    /* A record of another type between two fragments. */
    records(&rec, &hs, cut1, 1);
    {
        static buf_t mixed;
        mixed.n = 0;
        putn(&mixed, rec.b, 6); /* the first record: 5 + 1 bytes */
        put8(&mixed, 21);
        put16(&mixed, 0x0303);
        put16(&mixed, 2);
        put16(&mixed, 0x0228);
        is_int(parse(&mixed, &info, &why), -1, "alert record inside the hello: refused");
        is_str(why, "record of another type inside the ClientHello", "alert inside: why");
    }
}

/* ---- synthetic hellos: what is accepted ---------------------------------- */

static void test_names(void)
{
    static buf_t ext, rec;
    sni_info_t info;
    const char *why;
    char name[300];
    struct {
        const char *in, *out;
    } good[] = {
        {"WWW.Example.COM", "www.example.com"},
        {"example.com.", "example.com"},
        {"a", "a"},
        {"xn--bcher-kva.example", "xn--bcher-kva.example"},
        {"_dmarc.example.com", "_dmarc.example.com"},
        {"a-b.c-d", "a-b.c-d"},
        {"1.2.3.example", "1.2.3.example"},
        {"123.com", "123.com"},
    };
    struct {
        const char *in;
        const char *why;
    } bad[] = {
        {".", "empty server name"},
        {"a..b", "empty label in server name"},
        {".a", "empty label in server name"},
        {"a b", "invalid character in server name"},
        {"a/b", "invalid character in server name"},
        {"a\xc3\xa9.example", "invalid character in server name"},
        {"exa*mple.com", "invalid character in server name"},
        {"*.example.com", "invalid character in server name"},
        {"host:443", "invalid character in server name"},
        {"1.2.3.256", "numeric top-level label in server name"},
        {"example.123", "numeric top-level label in server name"},
        {"example.com..", "empty label in server name"},
    };
    struct {
        const char *in;
    } ips[] = {{"192.0.2.1"}, {"127.1"}, {"0x7f000001"}, {"2001:db8::1"}, {"[2001:db8::1]"},
               {"::ffff:192.0.2.1"}, {"192.0.2.1."}};

    for (size_t k = 0; k < sizeof(good) / sizeof(good[0]); k++) {
        ext.n = 0;
        ext_sni(&ext, good[k].in, strlen(good[k].in));
        hello(&rec, &ext);
        is_int(parse(&rec, &info, &why), 1, "name '%s' accepted", good[k].in);
        is_str(info.server_name, good[k].out, "name '%s' normalised", good[k].in);
    }
    for (size_t k = 0; k < sizeof(bad) / sizeof(bad[0]); k++) {
        ext.n = 0;
        ext_sni(&ext, bad[k].in, strlen(bad[k].in));
        hello(&rec, &ext);
        why = NULL;
        is_int(parse(&rec, &info, &why), -1, "name '%s' refused", bad[k].in);
        is_str(why, bad[k].why, "name '%s': why", bad[k].in);
    }
    /* a NUL inside the name (the classic certificate-name trick) */
    ext.n = 0;
    ext_sni(&ext, "good.example\0.evil.example", 25);
    hello(&rec, &ext);
    is_int(parse(&rec, &info, &why), -1, "name with a NUL byte refused");
    for (size_t k = 0; k < sizeof(ips) / sizeof(ips[0]); k++) {
        ext.n = 0;
        ext_sni(&ext, ips[k].in, strlen(ips[k].in));
        hello(&rec, &ext);
        is_int(parse(&rec, &info, &why), 1, "IP literal '%s': parsed", ips[k].in);
        ok(info.ip_literal == 1 && info.server_name[0] == '\0',
           "IP literal '%s': flagged, no server_name", ips[k].in);
    }

    /* lengths: 253 is the longest DNS name, 63 the longest label */
    for (int k = 0; k < 253; k++)
        name[k] = (k % 50 == 49) ? '.' : 'a';
    name[253] = '.';
    ext.n = 0;
    ext_sni(&ext, name, 253);
    hello(&rec, &ext);
    is_int(parse(&rec, &info, &why), 1, "253-byte name accepted");
    is_int(strlen(info.server_name), 253, "253-byte name kept whole");
    ext.n = 0;
    ext_sni(&ext, name, 254); /* with the trailing dot */
    hello(&rec, &ext);
    is_int(parse(&rec, &info, &why), 1, "253-byte name plus root dot accepted");
    name[253] = 'a';
    ext.n = 0;
    ext_sni(&ext, name, 254);
    hello(&rec, &ext);
    is_int(parse(&rec, &info, &why), -1, "254-byte name refused");
    is_str(why, "server name too long", "254-byte name: why");
    memset(name, 'b', 63);
    strcpy(name + 63, ".example");
    ext.n = 0;
    ext_sni(&ext, name, strlen(name));
    hello(&rec, &ext);
    is_int(parse(&rec, &info, &why), 1, "63-byte label accepted");
    memset(name, 'b', 64);
    strcpy(name + 64, ".example");
    ext.n = 0;
    ext_sni(&ext, name, strlen(name));
    hello(&rec, &ext);
    is_int(parse(&rec, &info, &why), -1, "64-byte label refused");
    is_str(why, "label longer than 63 bytes in server name", "64-byte label: why");
    ext.n = 0;
    ext_sni(&ext, name, 0);
    hello(&rec, &ext);
    is_int(parse(&rec, &info, &why), -1, "empty host_name refused");
}

static void test_name_lists(void)
{
    static buf_t ext, rec;
    sni_info_t info;
    const char *why;
    size_t e, l, nm;

    /* two host_names: the first counts */
    ext.n = 0;
    e = ext_begin(&ext, 0);
    l = vec_begin(&ext, 2);
    put8(&ext, 0);
    nm = vec_begin(&ext, 2);
    puts_(&ext, "first.example");
    vec_end(&ext, nm, 2);
    put8(&ext, 0);
    nm = vec_begin(&ext, 2);
    puts_(&ext, "second.example");
    vec_end(&ext, nm, 2);
    vec_end(&ext, l, 2);
    vec_end(&ext, e, 2);
    hello(&rec, &ext);
    is_int(parse(&rec, &info, &why), 1, "two host_names: parsed");
    is_str(info.server_name, "first.example", "two host_names: the first is used");

    /* another name type first, then a host_name */
    ext.n = 0;
    e = ext_begin(&ext, 0);
    l = vec_begin(&ext, 2);
    put8(&ext, 7);
    nm = vec_begin(&ext, 2);
    puts_(&ext, "opaque");
    vec_end(&ext, nm, 2);
    put8(&ext, 0);
    nm = vec_begin(&ext, 2);
    puts_(&ext, "real.example");
    vec_end(&ext, nm, 2);
    vec_end(&ext, l, 2);
    vec_end(&ext, e, 2);
    hello(&rec, &ext);
    is_int(parse(&rec, &info, &why), 1, "unknown name type before a host_name: parsed");
    is_str(info.server_name, "real.example", "unknown name type skipped");

    /* only another name type */
    ext.n = 0;
    e = ext_begin(&ext, 0);
    l = vec_begin(&ext, 2);
    put8(&ext, 7);
    nm = vec_begin(&ext, 2);
    puts_(&ext, "opaque");
    vec_end(&ext, nm, 2);
    vec_end(&ext, l, 2);
    vec_end(&ext, e, 2);
    hello(&rec, &ext);
    is_int(parse(&rec, &info, &why), -1, "only an unknown name type: refused");
    is_str(why, "server_name extension without a host_name", "only unknown type: why");

    /* an empty server_name extension (the server's form) */
    ext.n = 0;
    e = ext_begin(&ext, 0);
    vec_end(&ext, e, 2);
    hello(&rec, &ext);
    is_int(parse(&rec, &info, &why), -1, "empty server_name extension refused");
    is_str(why, "malformed server_name extension", "empty server_name: why");

    /* an empty list */
    ext.n = 0;
    e = ext_begin(&ext, 0);
    l = vec_begin(&ext, 2);
    vec_end(&ext, l, 2);
    vec_end(&ext, e, 2);
    hello(&rec, &ext);
    is_int(parse(&rec, &info, &why), -1, "empty server_name list refused");

    /* list length larger than the extension */
    ext.n = 0;
    e = ext_begin(&ext, 0);
    put16(&ext, 40);
    put8(&ext, 0);
    put16(&ext, 3);
    puts_(&ext, "a.b");
    vec_end(&ext, e, 2);
    hello(&rec, &ext);
    is_int(parse(&rec, &info, &why), -1, "server_name list overruns its extension");

    /* bytes after the list inside the extension */
    ext.n = 0;
    e = ext_begin(&ext, 0);
    l = vec_begin(&ext, 2);
    put8(&ext, 0);
    put16(&ext, 3);
    puts_(&ext, "a.b");
    vec_end(&ext, l, 2);
    put8(&ext, 0);
    vec_end(&ext, e, 2);
    hello(&rec, &ext);
    is_int(parse(&rec, &info, &why), -1, "bytes after the server_name list refused");

    /* a host_name longer than the list */
    ext.n = 0;
    e = ext_begin(&ext, 0);
    l = vec_begin(&ext, 2);
    put8(&ext, 0);
    put16(&ext, 30);
    puts_(&ext, "a.b");
    vec_end(&ext, l, 2);
    vec_end(&ext, e, 2);
    hello(&rec, &ext);
    is_int(parse(&rec, &info, &why), -1, "host_name overruns the list");
}

static void test_extensions(void)
{
    static buf_t ext, rec, hs;
    sni_info_t info;
    const char *why;
    size_t e, l, p;

    /* duplicate extensions: the same type twice */
    ext.n = 0;
    ext_sni(&ext, "a.example", 9);
    ext_sni(&ext, "b.example", 9);
    hello(&rec, &ext);
    is_int(parse(&rec, &info, &why), -1, "two server_name extensions refused");
    is_str(why, "duplicate extension", "duplicate server_name: why");
    ext.n = 0;
    e = ext_begin(&ext, 0xff01);
    put8(&ext, 0);
    vec_end(&ext, e, 2);
    ext_sni(&ext, "a.example", 9);
    e = ext_begin(&ext, 0xff01);
    put8(&ext, 0);
    vec_end(&ext, e, 2);
    hello(&rec, &ext);
    is_int(parse(&rec, &info, &why), -1, "unknown extension twice refused");
    /* two different GREASE values are two different extensions */
    ext.n = 0;
    e = ext_begin(&ext, 0x0a0a);
    vec_end(&ext, e, 2);
    ext_sni(&ext, "a.example", 9);
    e = ext_begin(&ext, 0x3a3a);
    put8(&ext, 0);
    vec_end(&ext, e, 2);
    hello(&rec, &ext);
    is_int(parse(&rec, &info, &why), 1, "two GREASE extensions accepted");

    /* ALPN */
    ext.n = 0;
    e = ext_begin(&ext, 16);
    l = vec_begin(&ext, 2);
    p = vec_begin(&ext, 1);
    puts_(&ext, "h2");
    vec_end(&ext, p, 1);
    vec_end(&ext, l, 2);
    vec_end(&ext, e, 2);
    hello(&rec, &ext);
    is_int(parse(&rec, &info, &why), 1, "ALPN h2 only: parsed");
    ok(info.alpn && info.alpn_h2 && !info.alpn_http11, "ALPN h2 only: flags");
    ext.n = 0;
    e = ext_begin(&ext, 16);
    l = vec_begin(&ext, 2);
    p = vec_begin(&ext, 1);
    puts_(&ext, "http/1.1");
    vec_end(&ext, p, 1);
    p = vec_begin(&ext, 1);
    puts_(&ext, "spdy/3");
    vec_end(&ext, p, 1);
    vec_end(&ext, l, 2);
    vec_end(&ext, e, 2);
    hello(&rec, &ext);
    is_int(parse(&rec, &info, &why), 1, "ALPN http/1.1 + unknown: parsed");
    ok(info.alpn && !info.alpn_h2 && info.alpn_http11, "ALPN http/1.1 + unknown: flags");
    ext.n = 0;
    e = ext_begin(&ext, 16);
    l = vec_begin(&ext, 2);
    vec_end(&ext, l, 2);
    vec_end(&ext, e, 2);
    hello(&rec, &ext);
    is_int(parse(&rec, &info, &why), -1, "empty ALPN list refused");
    is_str(why, "malformed ALPN extension", "empty ALPN list: why");
    ext.n = 0;
    e = ext_begin(&ext, 16);
    l = vec_begin(&ext, 2);
    put8(&ext, 0);
    p = vec_begin(&ext, 1);
    puts_(&ext, "h2");
    vec_end(&ext, p, 1);
    vec_end(&ext, l, 2);
    vec_end(&ext, e, 2);
    hello(&rec, &ext);
    is_int(parse(&rec, &info, &why), -1, "empty ALPN protocol name refused");
    ext.n = 0;
    e = ext_begin(&ext, 16);
    l = vec_begin(&ext, 2);
    put8(&ext, 20);
    puts_(&ext, "h2");
    vec_end(&ext, l, 2);
    vec_end(&ext, e, 2);
    hello(&rec, &ext);
    is_int(parse(&rec, &info, &why), -1, "ALPN name overrunning its list refused");

    /* supported_versions */
    ext.n = 0;
    e = ext_begin(&ext, 43);
    l = vec_begin(&ext, 1);
    put16(&ext, 0x7a7a);
    put16(&ext, 0x0304);
    put16(&ext, 0x0303);
    vec_end(&ext, l, 1);
    vec_end(&ext, e, 2);
    hello(&rec, &ext);
    is_int(parse(&rec, &info, &why), 1, "supported_versions with GREASE: parsed");
    is_int(info.versions, SNI_V_TLS12 | SNI_V_TLS13, "supported_versions: 1.2 and 1.3");
    is_int(info.max_version, 0x0304, "supported_versions: max 1.3");
    ok(info.has_supported_versions, "supported_versions: present");
    ext.n = 0;
    e = ext_begin(&ext, 43);
    l = vec_begin(&ext, 1);
    put16(&ext, 0x2a2a);
    vec_end(&ext, l, 1);
    vec_end(&ext, e, 2);
    hello(&rec, &ext);
    is_int(parse(&rec, &info, &why), 1, "supported_versions with GREASE only: parsed");
    is_int(info.max_version, 0, "GREASE only: no known version");
    ext.n = 0;
    e = ext_begin(&ext, 43);
    l = vec_begin(&ext, 1);
    put16(&ext, 0x0304);
    put8(&ext, 3);
    vec_end(&ext, l, 1);
    vec_end(&ext, e, 2);
    hello(&rec, &ext);
    is_int(parse(&rec, &info, &why), -1, "supported_versions of odd length refused");
    ext.n = 0;
    e = ext_begin(&ext, 43);
    l = vec_begin(&ext, 1);
    vec_end(&ext, l, 1);
    vec_end(&ext, e, 2);
    hello(&rec, &ext);
    is_int(parse(&rec, &info, &why), -1, "empty supported_versions refused");
    ext.n = 0;
    hello(&rec, &ext);
    is_int(parse(&rec, &info, &why), 1, "no supported_versions: parsed");
    ok(!info.has_supported_versions && info.max_version == 0x0303,
       "no supported_versions: max is legacy_version");

    /* the extensions block */
    ext.n = 0;
    ext_sni(&ext, "a.example", 9);
    put8(&ext, 0); /* a stray byte: not a whole extension header */
    hello(&rec, &ext);
    is_int(parse(&rec, &info, &why), -1, "stray byte in the extensions refused");
    is_str(why, "malformed extensions", "stray byte: why");
    ext.n = 0;
    e = ext_begin(&ext, 0xff01);
    put8(&ext, 0);
    vec_end(&ext, e, 2);
    ext.b[3] = 50; /* extension length beyond the block */
    hello(&rec, &ext);
    is_int(parse(&rec, &info, &why), -1, "extension overrunning the block refused");
    hs_hello(&hs, NULL, 0, 1, 32, 4, 1);
    records(&rec, &hs, NULL, 0);
    is_int(parse(&rec, &info, &why), 1, "hello without extensions: parsed");
    is_str(info.server_name, "", "hello without extensions: no server_name");
    hs_hello(&hs, NULL, 0, 1, 32, 4, 1);
    hs.b[3]++; /* one stray byte after compression methods */
    put8(&hs, 0);
    records(&rec, &hs, NULL, 0);
    is_int(parse(&rec, &info, &why), -1, "one byte where extensions start refused");
    ext.n = 0;
    ext_sni(&ext, "a.example", 9);
    hs_hello(&hs, ext.b, ext.n, 0, 32, 4, 1);
    hs.b[3]++; /* a byte after the extensions block */
    put8(&hs, 0);
    records(&rec, &hs, NULL, 0);
    is_int(parse(&rec, &info, &why), -1, "bytes after the extensions refused");
}

static void test_malformed(void)
{
    static buf_t ext, rec, hs;
    static const uint8_t http[] = "GET / HTTP/1.1\r\nHost: a\r\n\r\n";
    static const uint8_t sslv2[] = {0x80, 0x2e, 0x01, 0x00, 0x02, 0x00, 0x15};
    sni_info_t info;
    const char *why;

    why = NULL;
    is_int(sni_parse(http, 1, &info, &why), -1, "HTTP: refused at the first byte");
    is_str(why, "not a TLS handshake record", "HTTP: why");
    is_int(sni_parse(http, sizeof(http) - 1, &info, &why), -1, "HTTP request refused");
    is_int(sni_parse(sslv2, sizeof(sslv2), &info, &why), -1, "SSLv2 hello refused");
    is_str(why, "SSLv2-compatible ClientHello", "SSLv2: why");
    is_int(sni_parse(sslv2, 1, &info, &why), -1, "SSLv2 hello: refused at the first byte");
    is_int(sni_parse(http, 0, &info, &why), 0, "no bytes yet: need more");
    {
        static const uint8_t alert[] = {21, 3, 1, 0, 2, 2, 40};
        is_int(sni_parse(alert, sizeof(alert), &info, &why), -1, "alert record refused");
        static const uint8_t bad_ver[] = {22, 2, 0, 0, 4};
        is_int(sni_parse(bad_ver, 2, &info, &why), -1,
               "record version 2.x refused at the second byte");
        is_str(why, "unknown TLS record version", "record version: why");
        static const uint8_t empty[] = {22, 3, 1, 0, 0};
        is_int(sni_parse(empty, sizeof(empty), &info, &why), -1, "empty record refused");
        static const uint8_t huge[] = {22, 3, 1, 0x40, 0x01};
        is_int(sni_parse(huge, sizeof(huge), &info, &why), -1, "record of 16385 refused");
        is_str(why, "TLS record too long", "record too long: why");
        static const uint8_t shello[] = {22, 3, 3, 0, 4, 2, 0, 0, 0};
        is_int(sni_parse(shello, sizeof(shello), &info, &why), -1, "ServerHello refused");
        is_str(why, "first handshake message is not a ClientHello", "ServerHello: why");
        static const uint8_t toolong[] = {22, 3, 1, 0, 4, 1, 0, 0x40, 0x01};
        is_int(sni_parse(toolong, sizeof(toolong), &info, &why), -1,
               "hello announcing 16385 bytes refused at once");
        is_str(why, "ClientHello too long", "hello too long: why");
    }

    /* bytes after the hello inside its last record */
    ext.n = 0;
    ext_sni(&ext, "a.example", 9);
    hs_hello(&hs, ext.b, ext.n, 0, 32, 4, 1);
    put8(&hs, 22); /* an extra handshake byte in the record */
    records(&rec, &hs, NULL, 0);
    is_int(parse(&rec, &info, &why), -1, "data after the hello in its record refused");
    is_str(why, "more data after the ClientHello in its record", "trailing data: why");
    /* ... noticed from the record header alone */
    is_int(sni_parse(rec.b, 12, &info, &why), -1, "trailing data noticed before it arrives");

    /* session id, cipher suites, compression */
    hs_hello(&hs, ext.b, ext.n, 0, 33, 4, 1);
    records(&rec, &hs, NULL, 0);
    is_int(parse(&rec, &info, &why), -1, "session id of 33 bytes refused");
    is_str(why, "malformed session id", "session id: why");
    hs_hello(&hs, ext.b, ext.n, 0, 32, 3, 1);
    records(&rec, &hs, NULL, 0);
    is_int(parse(&rec, &info, &why), -1, "odd cipher suites refused");
    is_str(why, "malformed cipher suites", "cipher suites: why");
    hs_hello(&hs, ext.b, ext.n, 0, 32, 0, 1);
    records(&rec, &hs, NULL, 0);
    is_int(parse(&rec, &info, &why), -1, "no cipher suites refused");
    hs_hello(&hs, ext.b, ext.n, 0, 32, 4, 0);
    records(&rec, &hs, NULL, 0);
    is_int(parse(&rec, &info, &why), -1, "no compression methods refused");
    is_str(why, "malformed compression methods", "compression: why");
    /* truncated: the handshake length says 20 bytes */
    {
        static const uint8_t trunc[] = {22, 3, 1, 0, 24, 1, 0, 0, 20, 3, 3, 0, 0, 0, 0, 0,
                                        0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0};
        is_int(sni_parse(trunc, sizeof(trunc), &info, &why), -1, "truncated hello refused");
        is_str(why, "truncated ClientHello", "truncated: why");
    }
}

/* The bound: a hello of exactly SNI_MAX_HELLO bytes is accepted; the byte
 * count while "need more" stays below SNI_PEEK_MAX. */
static void test_bounds(void)
{
    static buf_t ext, hs, rec;
    static uint8_t pad[SNI_MAX_HELLO];
    sni_info_t info;
    const char *why;
    size_t e, base, cuts[3];

    ext.n = 0;
    ext_sni(&ext, "big.example", 11);
    hs_hello(&hs, ext.b, ext.n, 0, 32, 4, 1);
    base = hs.n;
    /* a padding extension (RFC 7685) bringing the message to 16384 bytes */
    e = ext_begin(&ext, 21);
    putn(&ext, pad, SNI_MAX_HELLO - base - 4);
    vec_end(&ext, e, 2);
    hs_hello(&hs, ext.b, ext.n, 0, 32, 4, 1);
    is_int(hs.n, SNI_MAX_HELLO, "test hello is SNI_MAX_HELLO bytes");
    cuts[0] = 5000;
    cuts[1] = 5000;
    cuts[2] = 5000;
    records(&rec, &hs, cuts, 3);
    is_int(parse(&rec, &info, &why), 1, "largest hello, 4 records: parsed");
    is_str(info.server_name, "big.example", "largest hello: server_name");
    is_int(rec.n, SNI_PEEK_MAX, "largest hello is SNI_PEEK_MAX bytes on the wire");
    is_int(sni_parse(rec.b, rec.n - 1, &info, &why), 0, "largest hello minus a byte: need more");

    e = ext.n - (SNI_MAX_HELLO - base - 4) - 2;
    put8(&ext, 0);
    vec_end(&ext, e, 2);
    hs_hello(&hs, ext.b, ext.n, 0, 32, 4, 1);
    records(&rec, &hs, cuts, 3);
    is_int(parse(&rec, &info, &why), -1, "hello of SNI_MAX_HELLO + 1 refused");
    is_int(sni_parse(rec.b, 9, &info, &why), -1, "... from its first 9 bytes");
}

/* Mutations of real hellos: never a crash (ASan build), only -1/0/1, and a
 * success always yields a sane name and consumed. */
static void test_mutations(void)
{
    static const char *files[] = {"openssl-tls13-alpn", "chromium", "curl"};
    unsigned seed = 12345;
    int bad = 0, results[3] = {0, 0, 0};

    for (size_t f = 0; f < 3; f++) {
        static uint8_t orig[SNI_PEEK_MAX], m[SNI_PEEK_MAX];
        size_t n = load_hex(files[f], orig, sizeof(orig));
        for (int it = 0; it < 20000 && n > 0; it++) {
            sni_info_t info;
            const char *why = NULL;
            size_t len = n;
            int rc, flips;

            memcpy(m, orig, n);
            seed = seed * 1103515245u + 12345u;
            flips = 1 + (int)((seed >> 16) % 4);
            for (int k = 0; k < flips; k++) {
                seed = seed * 1103515245u + 12345u;
                m[(seed >> 8) % n] = (uint8_t)(seed >> 3);
            }
            if (it % 7 == 0)
                len = (seed >> 4) % (n + 1);
            rc = sni_parse(m, len, &info, &why);
            if (rc < -1 || rc > 1 || (rc == -1 && why == NULL))
                bad++;
            if (rc == 1 && (info.consumed > len || strlen(info.server_name) > 253 ||
                            strpbrk(info.server_name, "ABCDEFGHIJKLMNOPQRSTUVWXYZ /") != NULL))
                bad++;
            results[rc + 1]++;
        }
    }
    is_int(bad, 0, "60000 mutated hellos: only sane results");
    diag("mutations: %d refused, %d need more, %d parsed", results[0], results[1],
         results[2]);
}

int main(void)
{
    test_fixtures();
    test_fragmented();
    test_names();
    test_name_lists();
    test_extensions();
    test_malformed();
    test_bounds();
    test_mutations();
    return done_testing();
}
