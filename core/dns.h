/* dns.h - asynchronous name lookups with a per-loop cache. */
#ifndef PC_DNS_H
#define PC_DNS_H

#include <stdint.h>
#include <uv.h>

#include "netaddr.h"

/*
 * Lookups run getaddrinfo(3) on libuv's thread pool, never on the loop, so
 * /etc/hosts and nsswitch are honoured like every other program on the
 * server. getaddrinfo does not report record TTLs, so answers are kept for
 * dns_ttl and failures for dns_negative_ttl (Squid's positive_dns_ttl and
 * negative_dns_ttl play the same role). Concurrent lookups of one name share
 * one query. The cache belongs to one loop and is not thread-safe.
 */

typedef struct dns_result {
    unsigned refs;
    int naddrs;
    netaddr_t addrs[];   /* in getaddrinfo's (RFC 6724) order, no duplicates */
} dns_result_t;

typedef struct dns_cache dns_cache_t;
typedef struct dns_query dns_query_t;

/* status is 0 with res set, or a negative UV_EAI_* / UV_E* code with res
 * NULL. res is valid during the call; dns_result_ref() it to keep it. */
typedef void (*dns_cb)(void *arg, int status, dns_result_t *res);

dns_cache_t *dns_cache_new(uv_loop_t *loop, unsigned max_entries);
void dns_cache_set_ttl(dns_cache_t *c, uint64_t ttl_ms, uint64_t negative_ttl_ms);
/* Stops: pending callbacks are dropped and the cache frees itself once the
 * last getaddrinfo request returned. */
void dns_cache_close(dns_cache_t *c);

/* Looks host up. Returns 1 when answered from the cache now (*status and
 * *res set; the caller owns one reference to *res when status is 0), or 0
 * when a query is pending: cb will be called once unless dns_query_cancel()
 * is called first (*q is the handle). Returns a negative UV error when the
 * lookup could not start. */
int dns_lookup(dns_cache_t *c, const char *host, dns_cb cb, void *arg,
               dns_query_t **q, int *status, dns_result_t **res);
void dns_query_cancel(dns_query_t *q);

dns_result_t *dns_result_ref(dns_result_t *r);
void dns_result_unref(dns_result_t *r);

/* Counters for the stats output. */
typedef struct dns_stats {
    uint64_t hits, misses, negative_hits, failures, entries;
} dns_stats_t;
void dns_cache_stats(const dns_cache_t *c, dns_stats_t *out);

#endif
