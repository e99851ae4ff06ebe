/* geoip_domains.h - the domain exception list of the geoip plugin, matched at label boundaries. */
#ifndef PC_GEOIP_DOMAINS_H
#define PC_GEOIP_DOMAINS_H

#include <stddef.h>

/*
 * An entry "example.com" matches the host "example.com" and every name
 * under it ("www.example.com", "a.b.example.com"), never "badexample.com":
 * matching is at label boundaries. "*.example.com" and ".example.com" are
 * read as "example.com". An IP literal entry ("192.0.2.7", "2001:db8::1")
 * matches that exact host only. Entries are lowercased; a trailing dot is
 * dropped.
 *
 * Build with add calls, then geoip_domains_finish(); read-only and
 * thread-safe afterwards. A lookup is one binary search per label of the
 * host (at most 127), so a list of 100,000 domains costs no more than one
 * of ten.
 */
typedef struct geoip_domains {
    char **v;
    size_t n, cap;
} geoip_domains_t;

/* Adds one entry. Returns 0, or -1 with "invalid domain 'X'" (or "out of
 * memory") in err. */
int geoip_domains_add(geoip_domains_t *d, const char *entry, char *err,
                      size_t errlen);
/* Adds every entry of a file: one a line (or several separated by blanks),
 * '#' starts a comment. Returns 0, or -1 with "PATH:LINE: invalid domain
 * 'X'" or "cannot open PATH: reason" in err. */
int geoip_domains_load(geoip_domains_t *d, const char *path, char *err,
                       size_t errlen);
/* Sorts and removes duplicates. */
void geoip_domains_finish(geoip_domains_t *d);
/* 1 when host (lowercase, no trailing dot, as txn_host gives it) is an
 * entry or under one. */
int geoip_domains_match(const geoip_domains_t *d, const char *host);
void geoip_domains_free(geoip_domains_t *d);

#endif
