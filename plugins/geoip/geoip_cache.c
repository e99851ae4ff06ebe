/* geoip_cache.c - a per-thread cache of the geoip plugin's lookup answers. */
#include <string.h>

#include "geoip_cache.h"

typedef struct entry {
    geoip_cache_key_t key;  /* conf_id 0: empty (ids start at 1) */
    char cc[3];
    uint32_t asn;
} entry_t;

static _Thread_local entry_t cache[GEOIP_CACHE_SIZE];

/* FNV-1a over the address bytes that count. */
static unsigned slot_of(const netaddr_t *a)
{
    uint32_t h = 2166136261u;
    int n = a->family == AF_INET ? 4 : 16;

    for (int i = 0; i < n; i++) {
        h ^= a->a[i];
        h *= 16777619u;
    }
    return (h ^ (h >> 16)) % GEOIP_CACHE_SIZE;
}

static int key_equal(const geoip_cache_key_t *x, const geoip_cache_key_t *y)
{
    int n = x->addr.family == AF_INET ? 4 : 16;

    return x->conf_id == y->conf_id && x->gen[0] == y->gen[0] &&
           x->gen[1] == y->gen[1] && x->addr.family == y->addr.family &&
           memcmp(x->addr.a, y->addr.a, (size_t)n) == 0;
}

int geoip_cache_get(const geoip_cache_key_t *key, geoip_answer_t *out)
{
    const entry_t *e = &cache[slot_of(&key->addr)];

    if (key->conf_id == 0 || !key_equal(&e->key, key))
        return 0;
    memcpy(out->cc, e->cc, sizeof(out->cc));
    out->asn = e->asn;
    out->org[0] = '\0';
    return 1;
}

void geoip_cache_put(const geoip_cache_key_t *key, const geoip_answer_t *answer)
{
    entry_t *e = &cache[slot_of(&key->addr)];

    e->key = *key;
    memcpy(e->cc, answer->cc, sizeof(e->cc));
    e->asn = answer->asn;
}
