/* netaddr.c - IP addresses, CIDR/range sets and ADDR:PORT parsing (see netaddr.h). */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "netaddr.h"

/* A point of the 128-bit space: IPv6 as is, IPv4 at ::ffff:a.b.c.d. Two
 * 64-bit halves instead of unsigned __int128 so 32-bit Debian ports build. */
typedef struct netkey {
    uint64_t hi, lo;
} netkey_t;

typedef struct range {
    netkey_t lo, hi;
} range_t;

struct netaddr_set {
    range_t *ranges;
    size_t nranges;
    size_t cap;
    size_t added;  /* entries added, before merging */
    int finished;  /* ranges sorted and merged since the last add */
};

static const uint8_t v4mapped_prefix[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};

static void set_err(char *err, size_t errlen, const char *fmt, const char *arg)
{
    if (err != NULL && errlen > 0)
        snprintf(err, errlen, fmt, arg);
}

int netaddr_from_sockaddr(netaddr_t *out, const struct sockaddr *sa)
{
    memset(out, 0, sizeof(*out));
    if (sa->sa_family == AF_INET) {
        const struct sockaddr_in *sin = (const struct sockaddr_in *)sa;
        out->family = AF_INET;
        memcpy(out->a, &sin->sin_addr, 4);
        return 0;
    }
    if (sa->sa_family == AF_INET6) {
        const struct sockaddr_in6 *sin6 = (const struct sockaddr_in6 *)sa;
        const uint8_t *b = sin6->sin6_addr.s6_addr;
        if (memcmp(b, v4mapped_prefix, 12) == 0) {
            out->family = AF_INET;
            memcpy(out->a, b + 12, 4);
        } else {
            out->family = AF_INET6;
            memcpy(out->a, b, 16);
        }
        return 0;
    }
    return -1;
}

socklen_t netaddr_to_sockaddr(const netaddr_t *addr, uint16_t port,
                              struct sockaddr_storage *ss)
{
    memset(ss, 0, sizeof(*ss));
    if (addr->family == AF_INET) {
        struct sockaddr_in *sin = (struct sockaddr_in *)ss;
        sin->sin_family = AF_INET;
        sin->sin_port = htons(port);
        memcpy(&sin->sin_addr, addr->a, 4);
        return sizeof(*sin);
    }
    struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)ss;
    sin6->sin6_family = AF_INET6;
    sin6->sin6_port = htons(port);
    memcpy(sin6->sin6_addr.s6_addr, addr->a, 16);
    return sizeof(*sin6);
}

/* inet_pton() is already the strict parser the config wants: for AF_INET
 * glibc takes exactly four decimal parts of 0..255 without leading zeros, so
 * "1", "0x7f.1" and "010.0.0.1" fail (those legacy forms belong to the URL
 * normaliser, RFC 3986 section 7.4); for AF_INET6 it takes RFC 4291 text
 * without brackets or a zone. */
int netaddr_parse(const char *s, netaddr_t *out)
{
    uint8_t b[16];

    memset(out, 0, sizeof(*out));
    if (strchr(s, ':') == NULL) {
        if (inet_pton(AF_INET, s, b) != 1)
            return -1;
        out->family = AF_INET;
        memcpy(out->a, b, 4);
        return 0;
    }
    if (inet_pton(AF_INET6, s, b) != 1)
        return -1;
    if (memcmp(b, v4mapped_prefix, 12) == 0) {
        out->family = AF_INET;
        memcpy(out->a, b + 12, 4);
    } else {
        out->family = AF_INET6;
        memcpy(out->a, b, 16);
    }
    return 0;
}

char *netaddr_format(const netaddr_t *addr, char *buf, size_t len)
{
    int af = addr->family == AF_INET ? AF_INET : AF_INET6;

    if (len == 0)
        return buf;
    if (inet_ntop(af, addr->a, buf, (socklen_t)len) == NULL)
        buf[0] = '\0';
    return buf;
}

int netaddr_equal(const netaddr_t *a, const netaddr_t *b)
{
    if (a->family != b->family)
        return 0;
    return memcmp(a->a, b->a, a->family == AF_INET ? 4 : 16) == 0;
}

int netaddr_is_loopback(const netaddr_t *addr)
{
    static const uint8_t zero[16];

    if (addr->family == AF_INET)
        return addr->a[0] == 127 || addr->a[0] == 0;
    if (memcmp(addr->a, zero, 15) != 0)
        return 0;
    return addr->a[15] == 0 || addr->a[15] == 1;
}

int netaddr_parse_port(const char *s, uint16_t *out)
{
    unsigned long v = 0;
    size_t i;

    if (s[0] == '\0' || s[0] == '0')
        return -1;
    for (i = 0; s[i] != '\0'; i++) {
        if (s[i] < '0' || s[i] > '9' || i >= 5)
            return -1;
        v = v * 10 + (unsigned long)(s[i] - '0');
    }
    if (v > 65535)
        return -1;
    *out = (uint16_t)v;
    return 0;
}

/* ---- keys ---------------------------------------------------------------- */

static netkey_t key_of(const netaddr_t *addr)
{
    uint8_t b[16];
    netkey_t k = {0, 0};
    int i;

    if (addr->family == AF_INET) {
        memcpy(b, v4mapped_prefix, 12);
        memcpy(b + 12, addr->a, 4);
    } else {
        memcpy(b, addr->a, 16);
    }
    for (i = 0; i < 8; i++)
        k.hi = (k.hi << 8) | b[i];
    for (i = 8; i < 16; i++)
        k.lo = (k.lo << 8) | b[i];
    return k;
}

static int key_cmp(netkey_t a, netkey_t b)
{
    if (a.hi != b.hi)
        return a.hi < b.hi ? -1 : 1;
    if (a.lo != b.lo)
        return a.lo < b.lo ? -1 : 1;
    return 0;
}

static int key_is_max(netkey_t k)
{
    return k.hi == UINT64_MAX && k.lo == UINT64_MAX;
}

static netkey_t key_next(netkey_t k)
{
    k.lo++;
    if (k.lo == 0)
        k.hi++;
    return k;
}

/* The mask with the top `bits` bits of 128 set. */
static netkey_t key_mask(unsigned bits)
{
    netkey_t m;

    if (bits == 0) {
        m.hi = 0;
        m.lo = 0;
    } else if (bits < 64) {
        m.hi = ~(uint64_t)0 << (64 - bits);
        m.lo = 0;
    } else if (bits == 64) {
        m.hi = UINT64_MAX;
        m.lo = 0;
    } else if (bits < 128) {
        m.hi = UINT64_MAX;
        m.lo = ~(uint64_t)0 << (128 - bits);
    } else {
        m.hi = UINT64_MAX;
        m.lo = UINT64_MAX;
    }
    return m;
}

/* ---- sets ---------------------------------------------------------------- */

netaddr_set_t *netaddr_set_new(void)
{
    return calloc(1, sizeof(netaddr_set_t));
}

static int set_push(netaddr_set_t *set, netkey_t lo, netkey_t hi)
{
    if (set->nranges == set->cap) {
        size_t ncap = set->cap ? set->cap * 2 : 16;
        range_t *n;
        if (ncap > SIZE_MAX / sizeof(range_t))
            goto fail;
        n = realloc(set->ranges, ncap * sizeof(range_t));
        if (n == NULL)
            goto fail;
        set->ranges = n;
        set->cap = ncap;
    }
    set->ranges[set->nranges].lo = lo;
    set->ranges[set->nranges].hi = hi;
    set->nranges++;
    set->added++;
    set->finished = 0;
    return 0;

fail:
    return -1;
}

int netaddr_set_add_range(netaddr_set_t *set, const netaddr_t *lo,
                          const netaddr_t *hi)
{
    netkey_t klo = key_of(lo), khi = key_of(hi);

    if (key_cmp(klo, khi) > 0)
        return -1;
    return set_push(set, klo, khi);
}

/* Parses a prefix length: plain decimal, no leading zeros, at most max. */
static int parse_prefix(const char *s, unsigned max, unsigned *out)
{
    unsigned v = 0;
    size_t i;

    if (s[0] == '\0' || (s[0] == '0' && s[1] != '\0'))
        return -1;
    for (i = 0; s[i] != '\0'; i++) {
        if (s[i] < '0' || s[i] > '9' || i >= 3)
            return -1;
        v = v * 10 + (unsigned)(s[i] - '0');
    }
    if (v > max)
        return -1;
    *out = v;
    return 0;
}

int netaddr_set_add_text(netaddr_set_t *set, const char *text, char *err,
                         size_t errlen)
{
    char buf[128];
    char *slash, *dash;
    netaddr_t a, b;
    size_t len = strlen(text);

    if (len >= sizeof(buf)) {
        set_err(err, errlen, "invalid address '%.60s...'", text);
        goto fail;
    }
    memcpy(buf, text, len + 1);

    dash = strchr(buf, '-');
    if (dash != NULL) {
        *dash = '\0';
        if (netaddr_parse(buf, &a) < 0) {
            set_err(err, errlen, "invalid address '%s'", buf);
            goto fail;
        }
        if (netaddr_parse(dash + 1, &b) < 0) {
            set_err(err, errlen, "invalid address '%s'", dash + 1);
            goto fail;
        }
        if (a.family != b.family) {
            set_err(err, errlen, "invalid range '%s': mixes IPv4 and IPv6", text);
            goto fail;
        }
        if (key_cmp(key_of(&a), key_of(&b)) > 0) {
            set_err(err, errlen, "invalid range '%s': start is after end", text);
            goto fail;
        }
        if (netaddr_set_add_range(set, &a, &b) < 0) {
            set_err(err, errlen, "out of memory adding '%s'", text);
            goto fail;
        }
        return 0;
    }

    slash = strchr(buf, '/');
    if (slash != NULL)
        *slash = '\0';
    if (netaddr_parse(buf, &a) < 0) {
        set_err(err, errlen, "invalid address '%s'", buf);
        goto fail;
    }
    if (slash == NULL) {
        if (netaddr_set_add_range(set, &a, &a) < 0) {
            set_err(err, errlen, "out of memory adding '%s'", text);
            goto fail;
        }
        return 0;
    }

    /* The prefix counts bits of the address as written: "/8" after an IPv4
     * address is "/104" in the mapped space; "::ffff:0:0/96" written in IPv6
     * form counts in the 128-bit space directly. */
    {
        int written_v4 = strchr(buf, ':') == NULL;
        unsigned bits;
        netkey_t k, m, lo, hi;

        if (parse_prefix(slash + 1, written_v4 ? 32 : 128, &bits) < 0) {
            set_err(err, errlen, "invalid prefix length in '%s'", text);
            goto fail;
        }
        if (written_v4)
            bits += 96;
        k = key_of(&a);
        m = key_mask(bits);
        lo.hi = k.hi & m.hi;
        lo.lo = k.lo & m.lo;
        hi.hi = lo.hi | ~m.hi;
        hi.lo = lo.lo | ~m.lo;
        if (set_push(set, lo, hi) < 0) {
            set_err(err, errlen, "out of memory adding '%s'", text);
            goto fail;
        }
    }
    return 0;

fail:
    return -1;
}

static int range_cmp(const void *pa, const void *pb)
{
    const range_t *a = pa, *b = pb;
    return key_cmp(a->lo, b->lo);
}

int netaddr_set_finish(netaddr_set_t *set)
{
    size_t i, out = 0;

    if (set->nranges == 0) {
        set->finished = 1;
        return 0;
    }
    qsort(set->ranges, set->nranges, sizeof(range_t), range_cmp);
    for (i = 1; i < set->nranges; i++) {
        range_t *cur = &set->ranges[out];
        const range_t *r = &set->ranges[i];
        /* Merge overlapping and adjacent ranges: r starts at or before the
         * address after cur's end. */
        if (key_is_max(cur->hi) || key_cmp(r->lo, key_next(cur->hi)) <= 0) {
            if (key_cmp(r->hi, cur->hi) > 0)
                cur->hi = r->hi;
        } else {
            set->ranges[++out] = *r;
        }
    }
    set->nranges = out + 1;
    if (set->nranges < set->cap) {
        range_t *n = realloc(set->ranges, set->nranges * sizeof(range_t));
        if (n != NULL) {
            set->ranges = n;
            set->cap = set->nranges;
        }
    }
    set->finished = 1;
    return 0;
}

int netaddr_set_contains(const netaddr_set_t *set, const netaddr_t *addr)
{
    netkey_t k = key_of(addr);
    size_t lo = 0, hi = set->nranges;

    if (!set->finished) {
        size_t i;
        for (i = 0; i < set->nranges; i++)
            if (key_cmp(set->ranges[i].lo, k) <= 0 &&
                key_cmp(k, set->ranges[i].hi) <= 0)
                return 1;
        return 0;
    }
    /* Find the last range whose start is <= k. */
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (key_cmp(set->ranges[mid].lo, k) <= 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    if (lo == 0)
        return 0;
    return key_cmp(k, set->ranges[lo - 1].hi) <= 0;
}

size_t netaddr_set_count(const netaddr_set_t *set)
{
    return set->added;
}

void netaddr_set_free(netaddr_set_t *set)
{
    if (set == NULL)
        return;
    free(set->ranges);
    free(set);
}

/* ---- ADDR:PORT ----------------------------------------------------------- */

int netaddr_parse_hostport(const char *s, netaddr_port_t *out, char *err,
                           size_t errlen)
{
    char host[NETADDR_STRLEN + 1];
    char abuf[NETADDR_STRLEN];
    const char *port_s, *colon;
    size_t hlen;
    uint16_t port;
    netaddr_t addr;
    int wildcard = 0;

    memset(out, 0, sizeof(*out));
    if (s[0] == '\0') {
        set_err(err, errlen, "invalid listen address '%s'", s);
        goto fail;
    }

    if (strspn(s, "0123456789") == strlen(s)) {
        /* "3128": a port alone. */
        wildcard = 1;
        port_s = s;
    } else if (s[0] == '[') {
        const char *end = strchr(s, ']');
        if (end == NULL) {
            set_err(err, errlen, "missing ']' in '%s'", s);
            goto fail;
        }
        hlen = (size_t)(end - s - 1);
        if (hlen >= sizeof(host)) {
            set_err(err, errlen, "invalid address in '%s'", s);
            goto fail;
        }
        memcpy(host, s + 1, hlen);
        host[hlen] = '\0';
        if (end[1] == '\0') {
            set_err(err, errlen, "missing port in '%s'", s);
            goto fail;
        }
        if (end[1] != ':') {
            set_err(err, errlen, "invalid listen address '%s'", s);
            goto fail;
        }
        port_s = end + 2;
        if (strchr(host, ':') == NULL || netaddr_parse(host, &addr) < 0) {
            set_err(err, errlen, "invalid address '%s'", host);
            goto fail;
        }
    } else {
        colon = strrchr(s, ':');
        if (colon == NULL) {
            set_err(err, errlen, "missing port in '%s'", s);
            goto fail;
        }
        if (memchr(s, ':', (size_t)(colon - s)) != NULL) {
            set_err(err, errlen, "IPv6 address needs brackets in '%s'", s);
            goto fail;
        }
        hlen = (size_t)(colon - s);
        if (hlen >= sizeof(host)) {
            set_err(err, errlen, "invalid address in '%s'", s);
            goto fail;
        }
        memcpy(host, s, hlen);
        host[hlen] = '\0';
        port_s = colon + 1;
        if (strcmp(host, "*") == 0) {
            wildcard = 1;
        } else if (netaddr_parse(host, &addr) < 0) {
            set_err(err, errlen, "invalid address '%s'", host);
            goto fail;
        }
    }

    if (port_s[0] == '\0') {
        set_err(err, errlen, "missing port in '%s'", s);
        goto fail;
    }
    if (netaddr_parse_port(port_s, &port) < 0) {
        set_err(err, errlen, "invalid port '%s'", port_s);
        goto fail;
    }

    if (wildcard) {
        memset(&addr, 0, sizeof(addr));
        addr.family = AF_INET6;
        out->len = netaddr_to_sockaddr(&addr, port, &out->ss);
        snprintf(out->text, sizeof(out->text), "*:%u", (unsigned)port);
        return 0;
    }
    out->len = netaddr_to_sockaddr(&addr, port, &out->ss);
    netaddr_format(&addr, abuf, sizeof(abuf));
    if (addr.family == AF_INET)
        snprintf(out->text, sizeof(out->text), "%s:%u", abuf, (unsigned)port);
    else
        snprintf(out->text, sizeof(out->text), "[%s]:%u", abuf, (unsigned)port);
    return 0;

fail:
    return -1;
}
