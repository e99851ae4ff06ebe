/* geoip_cache.h - a per-thread cache of the geoip plugin's lookup answers. */
#ifndef PC_GEOIP_CACHE_H
#define PC_GEOIP_CACHE_H

#include <stdint.h>

#include "geoip_db.h"
#include "netaddr.h"

/*
 * A proxy sends most of its requests to a few addresses (CDNs, the sites of
 * the day, pooled connections). Each worker thread remembers the answers of
 * its last lookups, so a repeated address costs a hash and a compare
 * instead of two tree walks. An answer is only valid for the configuration
 * and the database versions it came from: the key holds the configuration's
 * id (unique, never reused) and the generation of each database slot, so a
 * reload or a database swap makes every older entry a miss. Direct-mapped,
 * GEOIP_CACHE_SIZE entries a thread, nothing to free (plain thread-local
 * data).
 */
#define GEOIP_CACHE_SIZE 256

typedef struct geoip_cache_key {
    uint64_t conf_id;
    unsigned gen[2];    /* country and ASN slot generations (0 if none) */
    netaddr_t addr;     /* IPv4-mapped addresses stored as IPv4 */
} geoip_cache_key_t;

/* 1 and *out filled (country and AS number; no organisation) on a hit,
 * 0 on a miss. */
int geoip_cache_get(const geoip_cache_key_t *key, geoip_answer_t *out);
/* Remembers answer for key on this thread (replacing what shared its
 * entry). */
void geoip_cache_put(const geoip_cache_key_t *key, const geoip_answer_t *answer);

#endif
