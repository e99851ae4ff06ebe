/* geoip_domains_test.c - unit tests for plugins/geoip/geoip_domains.c (exception list, label-boundary matching). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "geoip_domains.h"
#include "tap.h"

static void test_add(void)
{
    geoip_domains_t d;
    char err[300];

    memset(&d, 0, sizeof(d));
    is_int(geoip_domains_add(&d, "Example.COM", err, sizeof(err)), 0, "mixed case accepted");
    is_int(geoip_domains_add(&d, "*.bank.example", err, sizeof(err)), 0, "*. form accepted");
    is_int(geoip_domains_add(&d, ".shop.example.", err, sizeof(err)), 0,
           "leading and trailing dots accepted");
    is_int(geoip_domains_add(&d, "192.0.2.7", err, sizeof(err)), 0, "IPv4 literal accepted");
    is_int(geoip_domains_add(&d, "2001:db8::1", err, sizeof(err)), 0, "IPv6 literal accepted");
    is_int(geoip_domains_add(&d, "under_score.example", err, sizeof(err)), 0,
           "underscore accepted (seen in real names)");
    is_int(geoip_domains_add(&d, "a..b", err, sizeof(err)), -1, "empty label refused");
    is_str(err, "invalid domain 'a..b'", "message");
    is_int(geoip_domains_add(&d, "a b", err, sizeof(err)), -1, "blank refused");
    is_int(geoip_domains_add(&d, "http://x.example/", err, sizeof(err)), -1, "URL refused");
    is_int(geoip_domains_add(&d, "", err, sizeof(err)), -1, "empty refused");
    is_int(geoip_domains_add(&d, ".", err, sizeof(err)), -1, "root alone refused");
    {
        char label[70];
        memset(label, 'a', 64);
        strcpy(label + 64, ".com");
        is_int(geoip_domains_add(&d, label, err, sizeof(err)), -1, "64-byte label refused");
    }
    geoip_domains_add(&d, "example.com", err, sizeof(err));
    geoip_domains_finish(&d);
    is_int((int)d.n, 6, "duplicates removed after finish");

    ok(geoip_domains_match(&d, "example.com"), "exact name");
    ok(geoip_domains_match(&d, "www.example.com"), "subdomain");
    ok(geoip_domains_match(&d, "a.b.c.example.com"), "deep subdomain");
    ok(!geoip_domains_match(&d, "badexample.com"), "no match inside a label");
    ok(!geoip_domains_match(&d, "example.com.evil.test"), "no match as a prefix");
    ok(!geoip_domains_match(&d, "com"), "parent of an entry does not match");
    ok(geoip_domains_match(&d, "bank.example"), "*.bank.example matches bank.example itself");
    ok(geoip_domains_match(&d, "online.bank.example"), "and its subdomains");
    ok(geoip_domains_match(&d, "www.shop.example"), ".shop.example. normalised");
    ok(geoip_domains_match(&d, "192.0.2.7"), "IP literal: exact");
    ok(!geoip_domains_match(&d, "10.192.0.2.7"), "IP entries do not match as suffixes");
    ok(geoip_domains_match(&d, "2001:db8::1"), "IPv6 literal: exact");
    ok(!geoip_domains_match(&d, ""), "empty host");
    ok(!geoip_domains_match(&d, NULL), "NULL host");
    geoip_domains_free(&d);

    memset(&d, 0, sizeof(d));
    geoip_domains_add(&d, "0.0.2", err, sizeof(err));
    geoip_domains_finish(&d);
    ok(!geoip_domains_match(&d, "127.0.0.2"), "an IP literal host matches only exactly");
    geoip_domains_free(&d);

    memset(&d, 0, sizeof(d));
    geoip_domains_finish(&d);
    ok(!geoip_domains_match(&d, "example.com"), "empty list matches nothing");
    geoip_domains_free(&d);
}

static void test_load(void)
{
    char dir[] = "/tmp/geoip_domains_test.XXXXXX", path[300], err[600];
    geoip_domains_t d;
    FILE *f;

    if (mkdtemp(dir) == NULL) {
        ok(0, "mkdtemp");
        return;
    }
    snprintf(path, sizeof(path), "%s/except.txt", dir);
    f = fopen(path, "w");
    fputs("# banks\nbank.example   # our bank\n\n  pay.example other.example\r\n", f);
    fclose(f);
    memset(&d, 0, sizeof(d));
    is_int(geoip_domains_load(&d, path, err, sizeof(err)), 0, "file loads");
    geoip_domains_finish(&d);
    is_int((int)d.n, 3, "three entries (comments, blanks, CRLF)");
    ok(geoip_domains_match(&d, "www.pay.example"), "entry from a line with two");
    ok(geoip_domains_match(&d, "other.example"), "entry before CRLF");
    geoip_domains_free(&d);

    f = fopen(path, "w");
    fputs("good.example\n\nbad..example\n", f);
    fclose(f);
    memset(&d, 0, sizeof(d));
    is_int(geoip_domains_load(&d, path, err, sizeof(err)), -1, "bad line refused");
    {
        char want[400];
        snprintf(want, sizeof(want), "%s:3: invalid domain 'bad..example'", path);
        is_str(err, want, "message has the file and line");
    }
    geoip_domains_free(&d);

    unlink(path);
    memset(&d, 0, sizeof(d));
    is_int(geoip_domains_load(&d, path, err, sizeof(err)), -1, "missing file refused");
    {
        char want[400];
        snprintf(want, sizeof(want), "cannot open %s: No such file or directory", path);
        is_str(err, want, "message names the file and the reason");
    }
    geoip_domains_free(&d);
    rmdir(dir);
}

int main(void)
{
    test_add();
    test_load();
    return done_testing();
}
