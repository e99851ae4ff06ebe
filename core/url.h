/* url.h - request targets: absolute-form URLs and CONNECT authorities. */
#ifndef PC_URL_H
#define PC_URL_H

#include <stddef.h>
#include <stdint.h>

#include "netaddr.h"

#define URL_HOST_MAX 253

enum url_scheme { URL_HTTP, URL_HTTPS };

/* A parsed request target. host is normalised by urlnorm_host() (lowercase,
 * no trailing dot, IDN as A-labels, numeric IPv4 forms as the dotted quad,
 * IPv6 without brackets); path includes the query and is at least "/". */
typedef struct url {
    enum url_scheme scheme;
    char host[URL_HOST_MAX + 1];
    uint16_t port;
    int port_given;     /* the target named a port */
    int host_is_ip;     /* host is an address literal (ip holds it) */
    netaddr_t ip;
    const char *path;   /* points into the parsed string */
    size_t path_len;
} url_t;

/* Parses "http://host[:port][/path][?query][#fragment]" (RFC 9112 3.2.2).
 * User info is refused (RFC 9110 4.2.4), the fragment is dropped. Returns 0,
 * or -1 with a short reason in *why. */
int url_parse_absolute(const char *s, size_t len, url_t *u, const char **why);

/* Parses the authority-form target of CONNECT, "host:port" (RFC 9112 3.2.3);
 * the port is required. Returns 0 or -1 with *why. */
int url_parse_authority(const char *s, size_t len, url_t *u, const char **why);

/* Writes "host" or "host:port" (IPv6 in brackets) as used in Host and logs;
 * the port is added when it is not the scheme's default or always_port is
 * set. Returns the length written. */
size_t url_format_authority(const url_t *u, int always_port, char *buf,
                            size_t len);

#endif
