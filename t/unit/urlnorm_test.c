/* urlnorm_test.c - unit tests for lib/urlnorm.c: hosts, numeric forms, IDN, paths. */
#include <string.h>

#include "tap.h"
#include "urlnorm.h"

static void host_is(const char *in, const char *exp, const char *name)
{
    char out[URLNORM_HOST_MAX + 1];
    const char *why = NULL;
    int rc = urlnorm_host(in, strlen(in), out, sizeof(out), &why);

    if (rc < 0) {
        ok(0, "%s: '%s' -> '%s'", name, in, exp);
        diag("  refused: %s", why ? why : "(no reason)");
        return;
    }
    is_str(out, exp, "%s: '%s' -> '%s'", name, in, exp);
}

static void host_refused(const char *in, size_t len, const char *exp_why,
                         const char *name)
{
    char out[URLNORM_HOST_MAX + 1];
    const char *why = NULL;
    int rc = urlnorm_host(in, len, out, sizeof(out), &why);

    if (!ok(rc == -1, "%s: refused", name))
        diag("  got '%s'", out);
    else if (exp_why)
        is_str(why, exp_why, "%s: reason", name);
}

static void path_is(const char *in, const char *exp, const char *name)
{
    char out[512];
    const char *why = NULL;
    int rc = urlnorm_path(in, strlen(in), out, sizeof(out), &why);

    if (rc < 0) {
        ok(0, "%s: '%s' -> '%s'", name, in, exp);
        diag("  refused: %s", why ? why : "(no reason)");
        return;
    }
    is_str(out, exp, "%s: '%s' -> '%s'", name, in, exp);
}

static void path_refused(const char *in, size_t len, const char *exp_why,
                         const char *name)
{
    char out[512];
    const char *why = NULL;
    int rc = urlnorm_path(in, len, out, sizeof(out), &why);

    if (!ok(rc == -1, "%s: refused", name))
        diag("  got '%s'", out);
    else if (exp_why)
        is_str(why, exp_why, "%s: reason", name);
}

static void test_hosts(void)
{
    char long_host[300], long_label[80];

    host_is("example.com", "example.com", "plain");
    host_is("EXAMPLE.Com", "example.com", "lowercased");
    host_is("example.com.", "example.com", "trailing dot removed");
    host_refused("example.com..", 13, "empty label in host", "two trailing dots");
    host_is("a_b.example.com", "a_b.example.com", "underscore allowed");
    host_is("%65xample.com", "example.com", "percent-escape decoded");
    host_is("%45XAMPLE.com", "example.com", "escaped upper case lowercased");
    host_refused("ex%zzample.com", 14, "bad percent-escape in host", "bad escape");
    host_refused("ex%00ample.com", 14, "NUL in host", "escaped NUL");
    host_refused("ex\0ample.com", 12, "NUL in host", "raw NUL");
    host_refused("ex\tample.com", 12, "control character in host", "tab");
    host_refused("exa mple.com", 12, "invalid character in host", "space");
    host_refused("a..b", 4, "empty label in host", "empty label");
    host_refused(".example.com", 12, "empty label in host", "leading dot");
    host_refused("", 0, "empty host", "empty");
    host_refused(".", 1, "empty host", "only a dot");
    host_refused("ex/ample.com", 12, "invalid character in host", "slash");
    host_refused("ex%2fample.com", 14, "invalid character in host", "escaped slash");

    memset(long_label, 'a', 64);
    memcpy(long_label + 64, ".com", 5);
    host_refused(long_label, strlen(long_label), "label longer than 63 bytes in host",
                 "64-byte label");
    long_label[1] = '.';
    host_is(long_label, long_label, "63-byte label");
    for (int i = 0; i < 127; i++) {
        long_host[2 * i] = 'a';
        long_host[2 * i + 1] = '.';
    }
    long_host[253] = '\0';  /* 127 labels "a." minus the last dot: 253 bytes */
    host_is(long_host, long_host, "253-byte host");
    long_host[253] = 'b';
    long_host[254] = '\0';
    host_refused(long_host, 254, "host name too long", "254-byte host");
    {
        char huge[2000];
        memset(huge, 'a', sizeof(huge));
        host_refused(huge, sizeof(huge), "host name too long", "2000-byte host");
    }

    /* Numeric IPv4 in every form. */
    host_is("127.0.0.1", "127.0.0.1", "dotted quad");
    host_is("2130706433", "127.0.0.1", "decimal");
    host_is("0x7f000001", "127.0.0.1", "hex");
    host_is("0X7F000001", "127.0.0.1", "hex, upper case");
    host_is("017700000001", "127.0.0.1", "octal");
    host_is("0177.0.0.1", "127.0.0.1", "octal first part");
    host_is("0x7f.1", "127.0.0.1", "hex, two parts");
    host_is("127.1", "127.0.0.1", "short form");
    host_is("127.0.1", "127.0.0.1", "three parts");
    host_is("10.0.0.1.", "10.0.0.1", "trailing dot on an address");
    host_is("0x7f.0x0.0x0.0x1", "127.0.0.1", "all hex");
    host_is("%31%32%37.0.0.1", "127.0.0.1", "escaped digits");
    host_is("0x", "0.0.0.0", "bare 0x is zero (WHATWG)");
    host_refused("256.0.0.1", 9, "invalid numeric host", "part over 255");
    host_refused("1.2.3.4.5", 9, "invalid numeric host", "five parts");
    host_refused("4294967296", 10, "invalid numeric host", "over 32 bits");
    host_refused("08.0.0.1", 8, "invalid numeric host", "8 in octal");
    host_refused("foo.123", 7, "invalid numeric host", "name ending in a number");
    host_is("123.foo", "123.foo", "number not last is a name");
    host_is("0x7f.example", "0x7f.example", "hex-looking label not last");

    /* IPv6. */
    host_is("[::1]", "::1", "bracketed IPv6");
    host_is("::1", "::1", "IPv6 without brackets");
    host_is("[2001:DB8:0:0:0:0:0:1]", "2001:db8::1", "RFC 5952 form");
    host_is("[2001:db8:0000:0:1:0:0:1]", "2001:db8::1:0:0:1", "longest zero run");
    host_is("[::ffff:127.0.0.1]", "127.0.0.1", "IPv4-mapped is the IPv4 host");
    host_is("[::ffff:7f00:1]", "127.0.0.1", "IPv4-mapped in hex");
    host_refused("[fe80::1%25eth0]", 16, "zone identifier in IPv6 literal", "zone");
    host_refused("[::1", 4, "unterminated IPv6 literal", "unterminated");
    host_refused("[1.2.3.4]", 9, "bad IPv6 literal", "IPv4 in brackets");
    host_refused("[::g]", 5, "bad IPv6 literal", "bad hex");

    /* IDN. */
    host_is("b\xc3\xbc" "cher.de", "xn--bcher-kva.de", "U-label to A-label");
    host_is("B\xc3\x9c" "CHER.DE.", "xn--bcher-kva.de", "upper-case U-label, trailing dot");
    host_is("xn--bcher-kva.de", "xn--bcher-kva.de", "A-label kept");
    host_is("XN--BCHER-KVA.de", "xn--bcher-kva.de", "A-label lowercased");
    host_is("\xef\xbd\x85\xef\xbd\x98\xef\xbd\x81\xef\xbd\x8d\xef\xbd\x90\xef\xbd\x8c"
            "\xef\xbd\x85.com", "example.com", "full-width letters");
    host_is("example\xe3\x80\x82" "com", "example.com", "ideographic full stop");
    host_is("\xef\xbc\x91\xef\xbc\x92\xef\xbc\x97\xef\xbc\x8e\xef\xbc\x90\xef\xbc\x8e"
            "\xef\xbc\x90\xef\xbc\x8e\xef\xbc\x91", "127.0.0.1",
            "full-width digits are the IPv4 address");
    host_is("%C3%BC.de", "xn--tda.de", "escaped UTF-8");
    host_refused("xn--bcher-xxx.de", 16, "invalid international host name",
                 "bad A-label");
    host_refused("b\xc3" "cher.de", 7, "invalid UTF-8 in host", "truncated UTF-8");
    host_refused("\xc0\xaf.com", 6, "invalid UTF-8 in host", "overlong UTF-8");
    host_refused("\xed\xa0\x80.com", 7, "invalid UTF-8 in host", "UTF-8 surrogate");
    host_refused("\xf4\x90\x80\x80.com", 8, "invalid UTF-8 in host", "above U+10FFFF");

    ok(urlnorm_host_is_ip("127.0.0.1") == 1, "is_ip: IPv4");
    ok(urlnorm_host_is_ip("::1") == 1, "is_ip: IPv6");
    ok(urlnorm_host_is_ip("example.com") == 0, "is_ip: name");
    ok(urlnorm_host_is_ip("1.2.3") == 0, "is_ip: not a normalised address");

    {
        char small[16];
        const char *why = NULL;
        ok(urlnorm_host("a.com", 5, small, sizeof(small), &why) == -1,
           "a small output buffer is refused");
    }
}

static void test_paths(void)
{
    path_is("", "/", "empty path");
    path_is("/", "/", "root");
    path_is("?q=1", "/?q=1", "query without a path");
    path_is("/a/b/c", "/a/b/c", "plain");
    path_is("/a//b///c", "/a/b/c", "slash runs collapsed");
    path_is("//a", "/a", "leading slash run");
    path_is("/a/./b", "/a/b", "dot segment");
    path_is("/a/b/../c", "/a/c", "dot-dot segment");
    path_is("/a/b/..", "/a/", "trailing dot-dot keeps a slash");
    path_is("/a/.", "/a/", "trailing dot keeps a slash");
    path_is("/../../a", "/a", "dot-dot above the root");
    path_is("/a/", "/a/", "trailing slash kept");
    path_is("/a/b/", "/a/b/", "trailing slash kept, two segments");
    path_is("/a/%2e%2E/b", "/b", "escaped dot-dot removed");
    path_is("/a/%2e/b", "/a/b", "escaped dot removed");
    path_is("/%61%64ult/", "/adult/", "escaped unreserved letters decoded");
    path_is("/%7e%5Fx%2D", "/~_x-", "escaped unreserved marks decoded");
    path_is("/a%2fb", "/a%2Fb", "escaped slash kept, hex upper-cased");
    path_is("/a%20b", "/a%20b", "escaped space kept");
    path_is("/a b", "/a%20b", "raw space escaped");
    path_is("/caf\xc3\xa9", "/caf%C3%A9", "raw UTF-8 escaped");
    path_is("/caf%c3%a9", "/caf%C3%A9", "escaped UTF-8 upper-cased");
    path_is("/A/B", "/A/B", "case kept");
    path_is("/a#frag", "/a", "fragment dropped");
    path_is("/a?b#frag", "/a?b", "fragment after a query dropped");
    path_is("/a?x=/../y//z", "/a?x=/../y//z", "query keeps its slashes and dots");
    path_is("/a?x=%41%2f", "/a?x=A%2F", "query escapes normalised");
    path_is("/a?q=100%", "/a?q=100%", "stray percent in a query kept");
    path_is("/a?q=%zz", "/a?q=%zz", "bad escape in a query kept literally");
    path_is("/a/..?q", "/?q", "dot-dot before a query");
    path_is("/x/%2e%2e%2f", "/x/..%2F", "escaped slash is no separator");

    path_refused("/a%zz", 5, "bad percent-escape in URL", "bad escape in the path");
    path_refused("/%u0061dult", 11, "bad percent-escape in URL", "IIS %u escape");
    path_refused("/a%", 3, "bad percent-escape in URL", "truncated escape");
    path_refused("/a%00b", 6, "escaped NUL in URL", "escaped NUL");
    path_refused("/a?b=%00", 8, "escaped NUL in URL", "escaped NUL in the query");
    path_refused("/a\0b", 4, "NUL in URL", "raw NUL");
    path_refused("/a\nb", 4, "control character in URL", "raw newline");
    path_refused("/a?b\x7f", 5, "control character in URL", "DEL in the query");
    {
        char big[600], out[64];
        const char *why = NULL;
        memset(big, 'a', sizeof(big));
        big[0] = '/';
        ok(urlnorm_path(big, sizeof(big), out, sizeof(out), &why) == -1 &&
               strcmp(why, "too long") == 0,
           "a path longer than the buffer is refused as too long");
        ok(urlnorm_path("/\xff\xff\xff", 4, out, 8, &why) == -1,
           "escaping growth is bounded by the buffer");
    }
}

int main(void)
{
    test_hosts();
    test_paths();
    return done_testing();
}
