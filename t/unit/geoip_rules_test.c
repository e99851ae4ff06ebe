/* geoip_rules_test.c - unit tests for plugins/geoip/geoip_rules.c (country/ASN sets, the decision, reasons). */
#include <string.h>

#include "geoip_rules.h"
#include "tap.h"

static void test_cc_parse(void)
{
    char cc[3], err[200];

    is_int(geoip_cc_parse("de", cc, err, sizeof(err)), 0, "de parses");
    is_str(cc, "DE", "lowercase is uppercased");
    is_int(geoip_cc_parse("RU", cc, err, sizeof(err)), 0, "RU parses");
    is_int(geoip_cc_parse("RUS", cc, err, sizeof(err)), -1, "three letters refused");
    is_str(err, "invalid country code 'RUS' (use ISO 3166 alpha-2 codes such as DE)",
           "message names the code and the format");
    is_int(geoip_cc_parse("D", cc, err, sizeof(err)), -1, "one letter refused");
    is_int(geoip_cc_parse("D1", cc, err, sizeof(err)), -1, "digit refused");
    is_int(geoip_cc_parse("", cc, err, sizeof(err)), -1, "empty refused");
    is_int(geoip_cc_parse("\xc3\x9c", cc, err, sizeof(err)), -1, "non-ASCII refused");
}

static void test_ccset(void)
{
    geoip_ccset_t s;

    memset(&s, 0, sizeof(s));
    geoip_ccset_add(&s, "RU");
    geoip_ccset_add(&s, "RU");
    geoip_ccset_add(&s, "AA");
    geoip_ccset_add(&s, "ZZ");
    is_int(s.n, 3, "duplicates counted once");
    ok(geoip_ccset_has(&s, "RU"), "RU in set");
    ok(geoip_ccset_has(&s, "AA") && geoip_ccset_has(&s, "ZZ"), "both ends of the range");
    ok(!geoip_ccset_has(&s, "RS"), "neighbour not in set");
    ok(!geoip_ccset_has(&s, "ru"), "lowercase never matches (codes are uppercased first)");
    ok(!geoip_ccset_has(&s, ""), "empty never matches");
    ok(!geoip_ccset_has(&s, NULL), "NULL never matches");
    ok(!geoip_ccset_has(&s, "RUS"), "longer string never matches");
}

static void test_asn(void)
{
    geoip_asnset_t s;
    uint32_t v = 0;
    char err[200];

    is_int(geoip_asn_parse("3320", &v, err, sizeof(err)), 0, "3320 parses");
    is_int(v, 3320, "value");
    is_int(geoip_asn_parse("AS15169", &v, err, sizeof(err)), 0, "AS15169 parses");
    is_int(v, 15169, "AS prefix dropped");
    is_int(geoip_asn_parse("as64500", &v, err, sizeof(err)), 0, "lowercase as parses");
    is_int(geoip_asn_parse("4294967295", &v, err, sizeof(err)), 0, "largest 32-bit");
    is_int(v, 4294967295u, "value kept");
    is_int(geoip_asn_parse("4294967296", &v, err, sizeof(err)), -1, "2^32 refused");
    is_int(geoip_asn_parse("0", &v, err, sizeof(err)), -1, "AS0 refused");
    is_int(geoip_asn_parse("0123", &v, err, sizeof(err)), -1, "leading zero refused");
    is_int(geoip_asn_parse("-5", &v, err, sizeof(err)), -1, "sign refused");
    is_int(geoip_asn_parse("AS", &v, err, sizeof(err)), -1, "bare AS refused");
    is_int(geoip_asn_parse("12a", &v, err, sizeof(err)), -1, "trailing junk refused");
    is_str(err, "invalid AS number '12a' (use a number such as 3320 or AS3320)",
           "message");

    memset(&s, 0, sizeof(s));
    for (uint32_t i = 1000; i > 0; i--)
        geoip_asnset_add(&s, i * 7);
    geoip_asnset_add(&s, 7);
    geoip_asnset_finish(&s);
    is_int(s.n, 1000, "sorted and deduplicated");
    ok(geoip_asnset_has(&s, 7) && geoip_asnset_has(&s, 7000) && geoip_asnset_has(&s, 3500),
       "members found (first, last, middle)");
    ok(!geoip_asnset_has(&s, 8) && !geoip_asnset_has(&s, 0) && !geoip_asnset_has(&s, 7007),
       "non-members not found");
    geoip_asnset_free(&s);
}

static geoip_rules_t rules(const char *block_cc, const char *allow_cc,
                           const uint32_t *block_asn, const uint32_t *allow_asn,
                           int unknown_block)
{
    geoip_rules_t r;
    char cc[3];

    memset(&r, 0, sizeof(r));
    for (const char *p = block_cc; p && *p; p += 2) {
        cc[0] = p[0], cc[1] = p[1], cc[2] = 0;
        geoip_ccset_add(&r.block_cc, cc);
    }
    for (const char *p = allow_cc; p && *p; p += 2) {
        cc[0] = p[0], cc[1] = p[1], cc[2] = 0;
        geoip_ccset_add(&r.allow_cc, cc);
    }
    for (; block_asn && *block_asn; block_asn++)
        geoip_asnset_add(&r.block_asn, *block_asn);
    for (; allow_asn && *allow_asn; allow_asn++)
        geoip_asnset_add(&r.allow_asn, *allow_asn);
    geoip_asnset_finish(&r.block_asn);
    geoip_asnset_finish(&r.allow_asn);
    r.unknown_block = unknown_block;
    return r;
}

static void test_judge(void)
{
    const uint32_t bad_as[] = {64500, 0}, good_as[] = {15169, 0};
    geoip_rules_t r;

    /* Deny-list mode. */
    r = rules("RUCN", NULL, bad_as, NULL, 0);
    is_int(geoip_rules_judge(&r, "RU", 0), GEOIP_BLOCKED_COUNTRY, "blocked country");
    is_int(geoip_rules_judge(&r, "CN", 3320), GEOIP_BLOCKED_COUNTRY, "blocked country with ASN");
    is_int(geoip_rules_judge(&r, "DE", 0), GEOIP_PASS, "other country passes");
    is_int(geoip_rules_judge(&r, "DE", 64500), GEOIP_BLOCKED_ASN, "blocked ASN in an allowed country");
    is_int(geoip_rules_judge(&r, "", 64500), GEOIP_BLOCKED_ASN, "blocked ASN without a country");
    is_int(geoip_rules_judge(&r, "", 0), GEOIP_PASS, "unknown passes (unknown allow)");
    is_int(geoip_rules_judge(&r, NULL, 0), GEOIP_PASS, "NULL country is unknown");
    ok(geoip_rules_active(&r), "active");
    geoip_rules_free(&r);

    r = rules("RU", NULL, NULL, NULL, 1);
    is_int(geoip_rules_judge(&r, "", 0), GEOIP_BLOCKED_UNKNOWN, "unknown block");
    is_int(geoip_rules_judge(&r, "", 3320), GEOIP_PASS, "an ASN alone is not unknown");
    geoip_rules_free(&r);

    /* Allow-list mode: every other country is blocked. */
    r = rules(NULL, "DEFR", NULL, NULL, 0);
    is_int(geoip_rules_judge(&r, "DE", 0), GEOIP_PASS, "allowed country");
    is_int(geoip_rules_judge(&r, "RU", 0), GEOIP_NOT_ALLOWED, "other country not allowed");
    is_int(geoip_rules_judge(&r, "", 3320), GEOIP_NOT_ALLOWED, "ASN only, country lists: not allowed");
    is_int(geoip_rules_judge(&r, "", 0), GEOIP_PASS, "unknown follows the unknown rule (allow)");
    geoip_rules_free(&r);

    r = rules(NULL, "DE", NULL, NULL, 1);
    is_int(geoip_rules_judge(&r, "", 0), GEOIP_BLOCKED_UNKNOWN, "allow-list with unknown block");
    geoip_rules_free(&r);

    /* Allow lists are a union; deny lists win over them. */
    r = rules("CN", "DE", bad_as, good_as, 0);
    is_int(geoip_rules_judge(&r, "US", 15169), GEOIP_PASS, "allowed ASN in a non-allowed country");
    is_int(geoip_rules_judge(&r, "DE", 64500), GEOIP_BLOCKED_ASN, "blocked ASN beats an allowed country");
    is_int(geoip_rules_judge(&r, "CN", 15169), GEOIP_BLOCKED_COUNTRY, "blocked country beats an allowed ASN");
    is_int(geoip_rules_judge(&r, "US", 3320), GEOIP_NOT_ALLOWED, "neither list");
    geoip_rules_free(&r);

    r = rules(NULL, NULL, NULL, NULL, 0);
    ok(!geoip_rules_active(&r), "no rule: inactive (notes only)");
    is_int(geoip_rules_judge(&r, "RU", 64500), GEOIP_PASS, "no rule passes");
    geoip_rules_free(&r);
}

static void test_reason(void)
{
    char buf[256];

    is_str(geoip_reason(GEOIP_BLOCKED_COUNTRY, "destination", "192.0.2.1", "RU", 0, NULL,
                        buf, sizeof(buf)),
           "destination country RU is blocked", "country reason");
    is_str(geoip_reason(GEOIP_BLOCKED_ASN, "destination", "192.0.2.1", "DE", 64500,
                        "Example Hosting", buf, sizeof(buf)),
           "destination AS64500 (Example Hosting) is blocked", "ASN reason with organisation");
    is_str(geoip_reason(GEOIP_BLOCKED_ASN, "destination", "192.0.2.1", "", 64500, "",
                        buf, sizeof(buf)),
           "destination AS64500 is blocked", "ASN reason without organisation");
    is_str(geoip_reason(GEOIP_NOT_ALLOWED, "client", "192.0.2.1", "CN", 0, NULL, buf,
                        sizeof(buf)),
           "client country CN is not allowed", "not allowed, country");
    is_str(geoip_reason(GEOIP_NOT_ALLOWED, "destination", "192.0.2.1", "US", 3320, NULL,
                        buf, sizeof(buf)),
           "destination country US, AS3320 is not allowed", "not allowed, both");
    is_str(geoip_reason(GEOIP_BLOCKED_UNKNOWN, "destination", "10.1.2.3", "", 0, NULL,
                        buf, sizeof(buf)),
           "destination 10.1.2.3 is not in the GeoIP database", "unknown reason");
}

int main(void)
{
    test_cc_parse();
    test_ccset();
    test_asn();
    test_judge();
    test_reason();
    return done_testing();
}
