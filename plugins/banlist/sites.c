/* sites.c - site lists: a domain matches itself and every name under it; addresses and CIDRs match IP hosts. */
#include <stdio.h>
#include <string.h>
#include <stdlib.h>

#include "banlist.h"
#include "urlnorm.h"

/*
 * The e2guardian and squidGuard reading of a site list: "example.com"
 * covers www.example.com and a.b.example.com too ("." and "*." prefixes
 * are accepted and mean the same, as squid's ".example.com" does). A
 * lookup tries the host, then each parent domain: a handful of hash
 * probes whatever the size of the list. Addresses are kept in a CIDR set
 * and match only hosts written as addresses; a name is never resolved.
 */

struct bl_sites {
    bl_strset_t *names;
    netaddr_set_t *addrs;
    /* Bit n set when some name has n labels (n < 128): a lookup probes
     * only the suffixes of a host that have an entry's label count, most
     * often one or two probes instead of one per label. */
    uint64_t label_counts[2];
};

static int label_count(const char *name)
{
    int n = 1;

    for (; *name; name++)
        n += *name == '.';
    return n;
}

bl_sites_t *bl_sites_new(void)
{
    bl_sites_t *s = calloc(1, sizeof(*s));

    if (s == NULL)
        return NULL;
    s->names = bl_strset_new();
    s->addrs = netaddr_set_new();
    if (s->names == NULL || s->addrs == NULL) {
        bl_sites_free(s);
        return NULL;
    }
    return s;
}

int bl_site_normalise(const char *entry, char *out, size_t outlen, char *err,
                      size_t errlen)
{
    const char *why = NULL;
    const char *p = entry;

    if (strstr(p, "://") != NULL || strchr(p, '/') != NULL) {
        snprintf(err, errlen, "'%.200s' is not a site (a host name or address; "
                 "URLs go in ban_urls)", entry);
        return -1;
    }
    if (p[0] == '*' && p[1] == '.')
        p += 2;
    else if (p[0] == '.')
        p += 1;
    if (p[0] != '[' && strchr(p, ':') != NULL && strchr(p, ':') == strrchr(p, ':')) {
        snprintf(err, errlen, "'%.200s': a site has no port", entry);
        return -1;
    }
    if (urlnorm_host(p, strlen(p), out, outlen, &why) < 0) {
        snprintf(err, errlen, "invalid site '%.200s': %s", entry, why);
        return -1;
    }
    return 0;
}

int bl_is_cidr(const char *text)
{
    const char *slash = strchr(text, '/');
    char addr[NETADDR_STRLEN + 2];
    netaddr_t a;
    size_t n;

    if (slash == NULL)
        return 0;
    n = (size_t)(slash - text);
    if (n >= 2 && text[0] == '[' && text[n - 1] == ']') {
        text++;
        n -= 2;
    }
    if (n == 0 || n >= sizeof(addr))
        return 0;
    memcpy(addr, text, n);
    addr[n] = '\0';
    return netaddr_parse(addr, &a) == 0;
}

int bl_sites_add(bl_sites_t *s, const char *entry, char *err, size_t errlen)
{
    char host[URLNORM_HOST_MAX + 1];

    if (bl_is_cidr(entry)) {
        /* A CIDR: netaddr's strict syntax and messages. */
        return netaddr_set_add_text(s->addrs, entry, err, errlen);
    }
    if (bl_site_normalise(entry, host, sizeof(host), err, errlen) < 0)
        return -1;
    if (urlnorm_host_is_ip(host))
        return netaddr_set_add_text(s->addrs, host, err, errlen);
    if (bl_strset_add(s->names, host, strlen(host)) < 0) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    {
        int n = label_count(host);   /* at most 127 in 253 bytes */
        s->label_counts[n / 64] |= 1ull << (n % 64);
    }
    return 0;
}

int bl_sites_finish(bl_sites_t *s)
{
    if (bl_strset_finish(s->names) < 0 || netaddr_set_finish(s->addrs) < 0)
        return -1;
    return 0;
}

int bl_host_is_ip(const char *host, size_t len)
{
    size_t i = len;

    /* urlnorm_host() makes every name whose last label is a number an
     * IPv4 address, and only IPv6 literals have a ':'. A name may still
     * end in a digit ("server1", "web2.lan"): the whole last label counts. */
    if (len == 0)
        return 0;
    if (memchr(host, ':', len) != NULL)
        return 1;
    while (i > 0 && host[i - 1] >= '0' && host[i - 1] <= '9')
        i--;
    return i < len && (i == 0 || host[i - 1] == '.');
}

const char *bl_sites_match(const bl_sites_t *s, const char *host)
{
    size_t len;
    int labels;

    if (s == NULL || host == NULL || *host == '\0' ||
        (bl_strset_count(s->names) == 0 && netaddr_set_count(s->addrs) == 0))
        return NULL;
    len = strlen(host);
    if (bl_host_is_ip(host, len)) {
        netaddr_t a;
        if (netaddr_set_count(s->addrs) == 0 || netaddr_parse(host, &a) < 0)
            return NULL;
        return netaddr_set_contains(s->addrs, &a) ? host : NULL;
    }
    if (bl_strset_count(s->names) == 0)
        return NULL;
    labels = label_count(host);
    /* host, then each parent: "a.b.c" -> "b.c" -> "c". At most 127 labels
     * in 253 bytes, so the loop is bounded. */
    for (const char *p = host; p && labels > 0; labels--) {
        if (labels < 128 && (s->label_counts[labels / 64] >> (labels % 64)) & 1) {
            const char *hit = bl_strset_find(s->names, p, len - (size_t)(p - host));
            if (hit)
                return hit;
        }
        p = strchr(p, '.');
        if (p)
            p++;
    }
    return NULL;
}

size_t bl_sites_count(const bl_sites_t *s)
{
    return s ? bl_strset_count(s->names) + netaddr_set_count(s->addrs) : 0;
}

void bl_sites_free(bl_sites_t *s)
{
    if (s == NULL)
        return;
    bl_strset_free(s->names);
    netaddr_set_free(s->addrs);
    free(s);
}
