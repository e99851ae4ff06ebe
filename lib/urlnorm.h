/* urlnorm.h - host and URL normalisation shared by the core and the filtering plugins. */
#ifndef PC_URLNORM_H
#define PC_URLNORM_H

#include <stddef.h>

/*
 * One normalisation for every place that compares hosts or URLs (the core's
 * request targets, CONNECT authorities and TLS SNI; urlcat's and banlist's
 * list entries and lookups), so a trick that changes how a name is written
 * cannot change what it matches.
 *
 * Every function returns 0, or -1 with *why set to a short static reason;
 * -1 means the input is hostile or invalid and the caller refuses it (the
 * core answers 400), never that it should pass unmatched.
 */

#define URLNORM_HOST_MAX 253   /* DNS limit, without the trailing dot */

/* Normalises a host name or address literal of len bytes (no port):
 *   - percent-escapes decoded first, as the WHATWG host parser does
 *     ("%65xample.com" is "example.com");
 *   - ASCII letters lowercased; one trailing dot removed;
 *   - UTF-8 (IDN) converted to A-labels (IDNA 2008 with UTS #46 mapping,
 *     non-transitional, libidn2), so full-width forms and ideographic full
 *     stops map to their plain forms; already-encoded xn-- labels checked;
 *   - every numeric IPv4 form (dotted, decimal 2130706433, hex 0x7f.1,
 *     octal 0177.0.0.1, short forms 127.1) written as the dotted quad; a
 *     host whose last label is a number but that is no address is refused;
 *   - IPv6 literals (with or without brackets) written in RFC 5952 form
 *     without brackets; an IPv4-mapped one (::ffff:a.b.c.d) is the IPv4
 *     host and is written as its dotted quad; zone identifiers refused;
 *   - refused: empty, longer than 253 bytes, a label longer than 63, empty
 *     labels ("a..b"), NUL or other control bytes (raw or escaped), invalid
 *     UTF-8, characters not allowed in host names (LDH and '_').
 * out receives a NUL-terminated string (outlen >= URLNORM_HOST_MAX + 1).
 * Thread-safe; no allocation unless the name is international. */
int urlnorm_host(const char *in, size_t len, char *out, size_t outlen,
                 const char **why);

/* 1 when the normalised host is an IPv4 or IPv6 address literal. */
int urlnorm_host_is_ip(const char *host);

/* Normalises a path with its query (what follows the authority; "" or a
 * string starting with '/' or '?'):
 *   - percent-escapes of unreserved characters (A-Z a-z 0-9 - . _ ~)
 *     decoded, other escapes kept with upper-case hex; raw bytes above
 *     0x7e and spaces escaped, so a raw and an escaped spelling are equal;
 *   - "//" runs collapsed to "/", dot-segments removed (RFC 3986 5.2.4), in
 *     the path only (the query is left as is apart from the escapes); this
 *     runs after the decoding, so "/%2e%2e/" is removed like "/../";
 *   - a fragment ("#...") dropped; an empty path becomes "/";
 *   - refused: NUL, control bytes, an escaped NUL, and bad escapes ("%zz",
 *     "%u0041") in the path. In the query a '%' that starts no escape is
 *     kept as a literal '%' (browsers send "?q=100%" as typed).
 * Letter case is kept. out receives a NUL-terminated string; returns -1
 * ("too long") when it does not fit in outlen. */
int urlnorm_path(const char *in, size_t len, char *out, size_t outlen,
                 const char **why);

#endif
