/* netaddr.h - IP addresses, CIDR/range sets and ADDR:PORT parsing, shared by core and plugins. */
#ifndef PC_NETADDR_H
#define PC_NETADDR_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

/* An IPv4 or IPv6 address. IPv4-mapped IPv6 addresses (::ffff:a.b.c.d) are
 * always stored as AF_INET, so 10.0.0.1 and ::ffff:10.0.0.1 compare equal. */
typedef struct netaddr {
    int family;      /* AF_INET or AF_INET6 */
    uint8_t a[16];   /* network byte order; 4 bytes used for AF_INET */
} netaddr_t;

/* Longest text netaddr_format() writes, with the NUL. */
#define NETADDR_STRLEN 46

/* Returns 0, or -1 when the sockaddr is neither AF_INET nor AF_INET6. */
int netaddr_from_sockaddr(netaddr_t *out, const struct sockaddr *sa);
/* Fills ss with addr and port; returns the sockaddr length. */
socklen_t netaddr_to_sockaddr(const netaddr_t *addr, uint16_t port,
                              struct sockaddr_storage *ss);
/* Strict dotted-quad IPv4 or RFC 4291 IPv6 text (no brackets, no zone).
 * Returns 0 or -1. */
int netaddr_parse(const char *s, netaddr_t *out);
/* Writes the canonical text form; returns buf. */
char *netaddr_format(const netaddr_t *addr, char *buf, size_t len);
int netaddr_equal(const netaddr_t *a, const netaddr_t *b);
/* A port in plain decimal, 1..65535, no sign, no leading zeros. Returns 0
 * or -1. */
int netaddr_parse_port(const char *s, uint16_t *out);
/* 127.0.0.0/8, ::1, 0.0.0.0/8 and :: (the "this host" addresses). */
int netaddr_is_loopback(const netaddr_t *addr);

/* A set of addresses built from CIDRs ("10.0.0.0/8", "::1", "fe80::/10"),
 * single addresses and ranges ("10.0.0.5-10.0.0.50"). Lookups are a binary
 * search over merged, sorted ranges, so 100,000 entries cost O(log n). The
 * set is built with add calls, then frozen with netaddr_set_finish(); it is
 * read-only and thread-safe afterwards.
 *
 * IPv4 lives inside the IPv6 space at ::ffff:0:0/96, so one sorted array
 * serves both families: "::/0" contains every IPv4 address too, and
 * "::ffff:10.0.0.0/104" is the same entry as "10.0.0.0/8".
 *
 * Text entries are strict: the address parts follow netaddr_parse(); a prefix
 * length is plain decimal without leading zeros (0..32 after an IPv4 address,
 * 0..128 after an IPv6 one); a range "A-B" needs both ends of the same family
 * and A <= B. A CIDR with host bits set ("10.1.2.3/8") is accepted and
 * masked to its network ("10.0.0.0/8"), as squid does: the admin's intent is
 * unambiguous and refusing it helps nobody. Messages (no FILE:LINE):
 *   "invalid address 'x'"
 *   "invalid prefix length in '10.0.0.0/33'"
 *   "invalid range 'A-B': start is after end"
 *   "invalid range 'A-B': mixes IPv4 and IPv6" */
typedef struct netaddr_set netaddr_set_t;

netaddr_set_t *netaddr_set_new(void);
/* Parses one entry (CIDR, address or range) and adds it. Returns 0, or -1 with
 * a message in err. */
int netaddr_set_add_text(netaddr_set_t *set, const char *text, char *err,
                         size_t errlen);
int netaddr_set_add_range(netaddr_set_t *set, const netaddr_t *lo,
                          const netaddr_t *hi);
/* Sorts and merges; must be called before netaddr_set_contains(). Returns 0 or
 * -1 on allocation failure. */
int netaddr_set_finish(netaddr_set_t *set);
/* Returns 1 when addr is in the set, else 0. An unfinished set (adds after
 * the last finish) is searched linearly: correct, but slow and not
 * thread-safe; finish it first. */
int netaddr_set_contains(const netaddr_set_t *set, const netaddr_t *addr);
size_t netaddr_set_count(const netaddr_set_t *set);  /* entries added */
void netaddr_set_free(netaddr_set_t *set);

/* A listen address: "127.0.0.1:3128", "[::1]:3128", "*:3128" (all IPv4 and
 * IPv6), "3128" (same as "*:3128"). The wildcard forms give the IPv6
 * unspecified address [::] and text "*:PORT"; the listener turns
 * IPV6_V6ONLY off so one socket serves both families. Addresses are numeric
 * only (netaddr_parse rules); an IPv6 address needs brackets. */
typedef struct netaddr_port {
    struct sockaddr_storage ss;
    socklen_t len;
    char text[NETADDR_STRLEN + 8];  /* as written back in logs: "[::1]:3128" */
} netaddr_port_t;

/* Returns 0, or -1 with a message in err: "invalid port '0'", "missing port
 * in '10.0.0.1'", "invalid address 'localhost'", "IPv6 address needs
 * brackets in '::1:3128'", "invalid listen address ''". */
int netaddr_parse_hostport(const char *s, netaddr_port_t *out, char *err,
                           size_t errlen);

#endif
