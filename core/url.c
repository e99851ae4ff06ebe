/* url.c - request targets: absolute-form URLs and CONNECT authorities. */
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "url.h"
#include "urlnorm.h"

/* Parses host[:port] in [s, end); fills host, ip, port. The host goes
 * through lib/urlnorm, the one normalisation plugins and lists use too, so
 * the core connects to, logs and filters the same name: lowercase, no
 * trailing dot, IDN as A-labels, every numeric IPv4 form as the dotted
 * quad; hostile hosts (NUL, controls, invalid UTF-8, overlong) are refused
 * and the client gets 400. */
static int parse_hostport(const char *s, const char *end, url_t *u,
                          int port_required, const char **why)
{
    const char *hend, *colon = NULL;

    if (s == end) {
        *why = "empty host";
        return -1;
    }
    if (*s == '[') {
        const char *rb = memchr(s, ']', (size_t)(end - s));
        if (rb == NULL) {
            *why = "unterminated IPv6 literal";
            return -1;
        }
        hend = rb + 1;
        if (hend < end) {
            if (*hend != ':') {
                *why = "junk after IPv6 literal";
                return -1;
            }
            colon = hend;
        }
    } else {
        colon = memchr(s, ':', (size_t)(end - s));
        hend = colon ? colon : end;
    }
    if (urlnorm_host(s, (size_t)(hend - s), u->host, sizeof(u->host), why) < 0)
        return -1;
    if (urlnorm_host_is_ip(u->host)) {
        if (netaddr_parse(u->host, &u->ip) < 0) {
            *why = "invalid numeric host";
            return -1;
        }
        u->host_is_ip = 1;
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
