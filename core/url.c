/* url.c - request targets: absolute-form URLs and CONNECT authorities. */
#include <arpa/inet.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "url.h"

static int is_host_char(unsigned char c)
{
    /* LDH plus '_', which real DNS names carry (RFC 2181 11). */
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
           (c >= '0' && c <= '9') || c == '-' || c == '.' || c == '_';
}

/* 1 when the last label of the (lowercased) host is all digits or 0x-hex. */
static int host_ends_in_number(const char *h, size_t len)
{
    const char *last = h;
    size_t n;

    for (size_t i = 0; i < len; i++)
        if (h[i] == '.')
            last = h + i + 1;
    n = len - (size_t)(last - h);
    if (n == 0)
        return 0;
    if (n >= 2 && last[0] == '0' && last[1] == 'x') {
        for (size_t i = 2; i < n; i++)
            if (!((last[i] >= '0' && last[i] <= '9') ||
                  (last[i] >= 'a' && last[i] <= 'f')))
                return 0;
        return 1;
    }
    for (size_t i = 0; i < n; i++)
        if (last[i] < '0' || last[i] > '9')
            return 0;
    return 1;
}

/* Parses host[:port] in [s, end); fills host, ip, port. */
static int parse_hostport(const char *s, const char *end, url_t *u,
                          int port_required, const char **why)
{
    const char *h, *hend, *colon = NULL;
    size_t hlen;

    if (s == end) {
        *why = "empty host";
        return -1;
    }
    if (*s == '[') {
        const char *rb = memchr(s, ']', (size_t)(end - s));
        char tmp[64];
        if (rb == NULL) {
            *why = "unterminated IPv6 literal";
            return -1;
        }
        h = s + 1;
        hend = rb;
        hlen = (size_t)(hend - h);
        if (hlen == 0 || hlen >= sizeof(tmp)) {
            *why = "bad IPv6 literal";
            return -1;
        }
        memcpy(tmp, h, hlen);
        tmp[hlen] = '\0';
        if (strchr(tmp, '%') || netaddr_parse(tmp, &u->ip) < 0 ||
            strchr(tmp, ':') == NULL) {
            *why = "bad IPv6 literal";
            return -1;
        }
        u->host_is_ip = 1;
        netaddr_format(&u->ip, u->host, sizeof(u->host));
        if (rb + 1 < end) {
            if (rb[1] != ':') {
                *why = "junk after IPv6 literal";
                return -1;
            }
            colon = rb + 1;
        }
    } else {
        colon = memchr(s, ':', (size_t)(end - s));
        hend = colon ? colon : end;
        hlen = (size_t)(hend - s);
        if (hlen > 0 && s[hlen - 1] == '.')
            hlen--;  /* "example.com." is "example.com" */
        if (hlen == 0) {
            *why = "empty host";
            return -1;
        }
        if (hlen > URL_HOST_MAX) {
            *why = "host name too long";
            return -1;
        }
        for (size_t i = 0; i < hlen; i++) {
            if (!is_host_char((unsigned char)s[i])) {
                *why = "invalid character in host";
                return -1;
            }
            u->host[i] = (char)((s[i] >= 'A' && s[i] <= 'Z') ? s[i] + 32 : s[i]);
        }
        u->host[hlen] = '\0';
        if (host_ends_in_number(u->host, hlen)) {
            /* Every numeric form inet_aton accepts (1.2.3.4, 0x7f.1,
             * 2130706433, 017700000001) names an IPv4 address; treat it as
             * that address so filters and logs see the real target. A host
             * whose last label is a number but is no address is invalid
             * (the WHATWG URL standard's "ends in a number" rule). */
            struct in_addr in;
            if (inet_aton(u->host, &in) == 0) {
                *why = "invalid numeric host";
                return -1;
            }
            u->ip.family = AF_INET;
            memset(u->ip.a, 0, sizeof(u->ip.a));
            memcpy(u->ip.a, &in, 4);
            u->host_is_ip = 1;
            netaddr_format(&u->ip, u->host, sizeof(u->host));
        }
    }

    if (colon) {
        unsigned long port = 0;
        const char *p = colon + 1;
        if (p == end) {
            if (port_required) {
                *why = "missing port";
                return -1;
            }
        } else {
            for (; p < end; p++) {
                if (*p < '0' || *p > '9' || port > 65535) {
                    *why = "invalid port";
                    return -1;
                }
                port = port * 10 + (unsigned long)(*p - '0');
            }
            if (port == 0 || port > 65535) {
                *why = "invalid port";
                return -1;
            }
            u->port = (uint16_t)port;
            u->port_given = 1;
        }
    } else if (port_required) {
        *why = "missing port";
        return -1;
    }
    return 0;
}

int url_parse_absolute(const char *s, size_t len, url_t *u, const char **why)
{
    const char *end = s + len, *auth, *aend, *p;

    memset(u, 0, sizeof(*u));
    if (len > 7 && strncasecmp(s, "http://", 7) == 0) {
        u->scheme = URL_HTTP;
        u->port = 80;
        auth = s + 7;
    } else if (len > 8 && strncasecmp(s, "https://", 8) == 0) {
        u->scheme = URL_HTTPS;
        u->port = 443;
        auth = s + 8;
    } else {
        *why = "unsupported URL scheme";
        return -1;
    }
    for (aend = auth; aend < end && *aend != '/' && *aend != '?' && *aend != '#';
         aend++) {
        if (*aend == '@') {
            *why = "user information in URL";
            return -1;
        }
    }
    if (parse_hostport(auth, aend, u, 0, why) < 0)
        return -1;
    p = memchr(aend, '#', (size_t)(end - aend));
    if (p)
        end = p;
    if (aend == end || *aend == '?') {
        /* "http://host" and "http://host?q" have the path "/" (RFC 9112
         * 3.2.1); the caller adds it when writing the request line. */
        u->path = aend;
        u->path_len = (size_t)(end - aend);
    } else {
        u->path = aend;
        u->path_len = (size_t)(end - aend);
    }
    return 0;
}

int url_parse_authority(const char *s, size_t len, url_t *u, const char **why)
{
    memset(u, 0, sizeof(*u));
    u->scheme = URL_HTTPS;
    if (memchr(s, '@', len) || memchr(s, '/', len)) {
        *why = "CONNECT target is not host:port";
        return -1;
    }
    if (parse_hostport(s, s + len, u, 1, why) < 0)
        return -1;
    u->path = "";
    u->path_len = 0;
    return 0;
}

size_t url_format_authority(const url_t *u, int always_port, char *buf,
                            size_t len)
{
    int v6 = u->host_is_ip && u->ip.family == AF_INET6;
    int def = (u->scheme == URL_HTTP && u->port == 80) ||
              (u->scheme == URL_HTTPS && u->port == 443);
    int n;

    if (always_port || !def)
        n = snprintf(buf, len, "%s%s%s:%u", v6 ? "[" : "", u->host,
                     v6 ? "]" : "", u->port);
    else
        n = snprintf(buf, len, "%s%s%s", v6 ? "[" : "", u->host, v6 ? "]" : "");
    if (n < 0)
        return 0;
    return (size_t)n < len ? (size_t)n : len - 1;
}
