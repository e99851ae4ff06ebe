/* geoip_rules.h - country and AS number sets and the allow/block decision of the geoip plugin. */
#ifndef PC_GEOIP_RULES_H
#define PC_GEOIP_RULES_H

#include <stddef.h>
#include <stdint.h>

/* A set of ISO 3166 alpha-2 codes: one bit for each of the 26 x 26 pairs,
 * so membership costs two subtractions and a shift. */
typedef struct geoip_ccset {
    uint8_t bits[(26 * 26 + 7) / 8];
    int n;                      /* codes added (duplicates counted once) */
} geoip_ccset_t;

/* Parses a country code ("DE", "de"): two ASCII letters. Writes the
 * uppercase form into out[3] and returns 0, or returns -1 with
 * "invalid country code 'X' (use ISO 3166 alpha-2 codes such as DE)". */
int geoip_cc_parse(const char *s, char out[3], char *err, size_t errlen);
/* Adds an already parsed (uppercase) code. */
void geoip_ccset_add(geoip_ccset_t *set, const char cc[3]);
/* 1 when cc (two uppercase letters) is in the set; 0 for anything else. */
int geoip_ccset_has(const geoip_ccset_t *set, const char *cc);

/* A sorted set of AS numbers. */
typedef struct geoip_asnset {
    uint32_t *v;
    size_t n, cap;
    int sorted;
} geoip_asnset_t;

/* Parses "3320" or "AS3320" (any case): 1..4294967295. Returns 0, or -1
 * with "invalid AS number 'X' (use a number such as 3320 or AS3320)". */
int geoip_asn_parse(const char *s, uint32_t *out, char *err, size_t errlen);
/* Returns 0, or -1 when out of memory. */
int geoip_asnset_add(geoip_asnset_t *set, uint32_t asn);
/* Sorts and removes duplicates; call before geoip_asnset_has(). */
void geoip_asnset_finish(geoip_asnset_t *set);
int geoip_asnset_has(const geoip_asnset_t *set, uint32_t asn);
void geoip_asnset_free(geoip_asnset_t *set);

/* One side's rules (destinations, or clients). */
typedef struct geoip_rules {
    geoip_ccset_t allow_cc, block_cc;
    geoip_asnset_t allow_asn, block_asn;
    int unknown_block;          /* `unknown block` */
} geoip_rules_t;

/* What the rules decided for one address. */
enum geoip_verdict {
    GEOIP_PASS = 0,
    GEOIP_BLOCKED_COUNTRY,      /* its country is in block_countries */
    GEOIP_BLOCKED_ASN,          /* its AS number is in block_asns */
    GEOIP_NOT_ALLOWED,          /* allow lists given, and it matches none */
    GEOIP_BLOCKED_UNKNOWN,      /* no country and no AS number, unknown block */
};

/*
 * Judges an address from what the databases said: cc is its country ("" when
 * unknown), asn its AS number (0 when unknown). In order:
 *   1. a country in block_countries or an AS number in block_asns blocks;
 *   2. an address with neither a country nor an AS number is "unknown":
 *      the unknown rule decides;
 *   3. when allow_countries or allow_asns is given, the address passes only
 *      if its country or its AS number is in one of them;
 *   4. otherwise it passes.
 */
enum geoip_verdict geoip_rules_judge(const geoip_rules_t *r, const char *cc,
                                     uint32_t asn);
/* 1 when the rules have something to decide (any list, or unknown block). */
int geoip_rules_active(const geoip_rules_t *r);
/* 1 when a rule needs a country (an AS number). */
int geoip_rules_need_country(const geoip_rules_t *r);
int geoip_rules_need_asn(const geoip_rules_t *r);

/* The sentence for the block page and the X-Portcullis-Block header, e.g.
 * "destination country RU is blocked", "destination AS64500 (Example Ltd)
 * is blocked", "client country CN is not allowed", "destination 10.0.0.1
 * is not in the GeoIP database". who is "destination" or "client", addr
 * the address text, org the AS organisation or NULL. Returns buf. */
char *geoip_reason(enum geoip_verdict v, const char *who, const char *addr,
                   const char *cc, uint32_t asn, const char *org, char *buf,
                   size_t len);

void geoip_rules_free(geoip_rules_t *r);

#endif
