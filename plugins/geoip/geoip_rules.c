/* geoip_rules.c - country and AS number sets and the allow/block decision of the geoip plugin. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "geoip_rules.h"

static int is_alpha(char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z');
}

static char upper(char c)
{
    return (char)(c >= 'a' && c <= 'z' ? c - 32 : c);
}

int geoip_cc_parse(const char *s, char out[3], char *err, size_t errlen)
{
    if (s == NULL || !is_alpha(s[0]) || !is_alpha(s[1]) || s[2] != '\0') {
        snprintf(err, errlen,
                 "invalid country code '%s' (use ISO 3166 alpha-2 codes such as DE)",
                 s ? s : "");
        return -1;
    }
    out[0] = upper(s[0]);
    out[1] = upper(s[1]);
    out[2] = '\0';
    return 0;
}

/* The bit of a code, or -1 when it is not two uppercase letters. */
static int cc_index(const char *cc)
{
    if (cc == NULL || cc[0] < 'A' || cc[0] > 'Z' || cc[1] < 'A' || cc[1] > 'Z' ||
        cc[2] != '\0')
        return -1;
    return (cc[0] - 'A') * 26 + (cc[1] - 'A');
}

void geoip_ccset_add(geoip_ccset_t *set, const char cc[3])
{
    int i = cc_index(cc);

    if (i < 0 || (set->bits[i >> 3] & (1u << (i & 7))))
        return;
    set->bits[i >> 3] |= (uint8_t)(1u << (i & 7));
    set->n++;
}

int geoip_ccset_has(const geoip_ccset_t *set, const char *cc)
{
    int i = cc_index(cc);

    return i >= 0 && (set->bits[i >> 3] & (1u << (i & 7))) != 0;
}

int geoip_asn_parse(const char *s, uint32_t *out, char *err, size_t errlen)
{
    const char *p = s;
    unsigned long long v = 0;

    if (p == NULL)
        goto fail;
    if ((p[0] == 'A' || p[0] == 'a') && (p[1] == 'S' || p[1] == 's'))
        p += 2;
    /* Plain decimal, no sign, no leading zero; at most 10 digits. */
    if (*p < '1' || *p > '9' || strlen(p) > 10)
        goto fail;
    for (; *p; p++) {
        if (*p < '0' || *p > '9')
            goto fail;
        v = v * 10 + (unsigned)(*p - '0');
    }
    if (v > 4294967295ull)
        goto fail;
    *out = (uint32_t)v;
    return 0;
fail:
    snprintf(err, errlen, "invalid AS number '%s' (use a number such as 3320 or AS3320)",
             s ? s : "");
    return -1;
}

int geoip_asnset_add(geoip_asnset_t *set, uint32_t asn)
{
    if (set->n == set->cap) {
        size_t cap = set->cap ? set->cap * 2 : 16;
        uint32_t *v = realloc(set->v, cap * sizeof(*v));
        if (v == NULL)
            return -1;
        set->v = v;
        set->cap = cap;
    }
    set->v[set->n++] = asn;
    set->sorted = 0;
    return 0;
}

static int cmp_u32(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;

    return x < y ? -1 : x > y;
}

void geoip_asnset_finish(geoip_asnset_t *set)
{
    size_t j = 0;

    if (set->n > 1)
        qsort(set->v, set->n, sizeof(*set->v), cmp_u32);
    for (size_t i = 0; i < set->n; i++)
        if (j == 0 || set->v[j - 1] != set->v[i])
            set->v[j++] = set->v[i];
    set->n = j;
    set->sorted = 1;
}

int geoip_asnset_has(const geoip_asnset_t *set, uint32_t asn)
{
    size_t lo = 0, hi = set->n;

    if (!set->sorted) {
        for (size_t i = 0; i < set->n; i++)
            if (set->v[i] == asn)
                return 1;
        return 0;
    }
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (set->v[mid] == asn)
            return 1;
        if (set->v[mid] < asn)
            lo = mid + 1;
        else
            hi = mid;
    }
    return 0;
}

void geoip_asnset_free(geoip_asnset_t *set)
{
    free(set->v);
    memset(set, 0, sizeof(*set));
}

int geoip_rules_need_country(const geoip_rules_t *r)
{
    return r->allow_cc.n > 0 || r->block_cc.n > 0;
}

int geoip_rules_need_asn(const geoip_rules_t *r)
{
    return r->allow_asn.n > 0 || r->block_asn.n > 0;
}

int geoip_rules_active(const geoip_rules_t *r)
{
    return geoip_rules_need_country(r) || geoip_rules_need_asn(r) ||
           r->unknown_block;
}

enum geoip_verdict geoip_rules_judge(const geoip_rules_t *r, const char *cc,
                                     uint32_t asn)
{
    int has_cc = cc != NULL && cc[0] != '\0';

    if (has_cc && geoip_ccset_has(&r->block_cc, cc))
        return GEOIP_BLOCKED_COUNTRY;
    if (asn != 0 && geoip_asnset_has(&r->block_asn, asn))
        return GEOIP_BLOCKED_ASN;
    if (!has_cc && asn == 0)
        return r->unknown_block ? GEOIP_BLOCKED_UNKNOWN : GEOIP_PASS;
    if (r->allow_cc.n == 0 && r->allow_asn.n == 0)
        return GEOIP_PASS;
    if (has_cc && geoip_ccset_has(&r->allow_cc, cc))
        return GEOIP_PASS;
    if (asn != 0 && geoip_asnset_has(&r->allow_asn, asn))
        return GEOIP_PASS;
    return GEOIP_NOT_ALLOWED;
}

char *geoip_reason(enum geoip_verdict v, const char *who, const char *addr,
                   const char *cc, uint32_t asn, const char *org, char *buf,
                   size_t len)
{
    char as[96] = "";
    int has_cc = cc != NULL && cc[0] != '\0';

    if (asn != 0) {
        if (org && *org)
            snprintf(as, sizeof(as), "AS%u (%.60s)", (unsigned)asn, org);
        else
            snprintf(as, sizeof(as), "AS%u", (unsigned)asn);
    }
    switch (v) {
    case GEOIP_BLOCKED_COUNTRY:
        snprintf(buf, len, "%s country %s is blocked", who, cc);
        break;
    case GEOIP_BLOCKED_ASN:
        snprintf(buf, len, "%s %s is blocked", who, as);
        break;
    case GEOIP_NOT_ALLOWED:
        if (has_cc && asn != 0)
            snprintf(buf, len, "%s country %s, %s is not allowed", who, cc, as);
        else if (has_cc)
            snprintf(buf, len, "%s country %s is not allowed", who, cc);
        else
            snprintf(buf, len, "%s %s is not allowed", who, as);
        break;
    case GEOIP_BLOCKED_UNKNOWN:
        snprintf(buf, len, "%s %s is not in the GeoIP database", who,
                 addr ? addr : "address");
        break;
    default:
        snprintf(buf, len, "%s is allowed", who);
        break;
    }
    return buf;
}

void geoip_rules_free(geoip_rules_t *r)
{
    geoip_asnset_free(&r->allow_asn);
    geoip_asnset_free(&r->block_asn);
}
