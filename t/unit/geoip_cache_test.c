/* geoip_cache_test.c - unit tests for plugins/geoip/geoip_cache.c (per-thread answers, keys, invalidation). */
#include <pthread.h>
#include <string.h>

#include "geoip_cache.h"
#include "tap.h"

static geoip_cache_key_t key(uint64_t conf, unsigned g0, unsigned g1, const char *ip)
{
    geoip_cache_key_t k;

    memset(&k, 0, sizeof(k));
    k.conf_id = conf;
    k.gen[0] = g0;
    k.gen[1] = g1;
    netaddr_parse(ip, &k.addr);
    return k;
}

static geoip_answer_t answer(const char *cc, uint32_t asn)
{
    geoip_answer_t a;

    memset(&a, 0, sizeof(a));
    strcpy(a.cc, cc);
    a.asn = asn;
    return a;
}

static void *other_thread(void *arg)
{
    geoip_cache_key_t k = key(1, 0, 0, "192.0.2.1");
    geoip_answer_t a;

    *(int *)arg = geoip_cache_get(&k, &a);
    return NULL;
}

int main(void)
{
    geoip_cache_key_t k = key(1, 0, 0, "192.0.2.1"), k2;
    geoip_answer_t a = answer("DE", 3320), got;
    pthread_t t;
    int hit = -1, misses = 0;

    ok(!geoip_cache_get(&k, &got), "empty cache: miss");
    geoip_cache_put(&k, &a);
    memset(&got, 0x55, sizeof(got));
    ok(geoip_cache_get(&k, &got), "hit after put");
    is_str(got.cc, "DE", "country");
    is_int(got.asn, 3320, "AS number");
    is_str(got.org, "", "no organisation from the cache");

    k2 = key(2, 0, 0, "192.0.2.1");
    ok(!geoip_cache_get(&k2, &got), "another configuration: miss");
    k2 = key(1, 1, 0, "192.0.2.1");
    ok(!geoip_cache_get(&k2, &got), "country database swapped: miss");
    k2 = key(1, 0, 1, "192.0.2.1");
    ok(!geoip_cache_get(&k2, &got), "ASN database swapped: miss");
    k2 = key(1, 0, 0, "192.0.2.2");
    ok(!geoip_cache_get(&k2, &got), "another address: miss");
    k2 = key(1, 0, 0, "::ffff:192.0.2.1");
    ok(geoip_cache_get(&k2, &got), "the IPv4-mapped form is the same address");
    k2 = key(1, 0, 0, "2001:db8::c000:201");
    ok(!geoip_cache_get(&k2, &got), "an IPv6 address with the same low bytes: miss");
    k2 = key(0, 0, 0, "192.0.2.1");
    ok(!geoip_cache_get(&k2, &got), "conf id 0 never hits");

    pthread_create(&t, NULL, other_thread, &hit);
    pthread_join(t, NULL);
    is_int(hit, 0, "another thread has its own cache");

    /* Many addresses: each lookup answers its own address or misses,
     * never another address's answer. */
    for (int i = 0; i < 4 * GEOIP_CACHE_SIZE; i++) {
        char ip[32];
        snprintf(ip, sizeof(ip), "10.0.%d.%d", i / 256, i % 256);
        k2 = key(1, 0, 0, ip);
        a = answer(i % 2 ? "FR" : "NL", (uint32_t)i + 1);
        geoip_cache_put(&k2, &a);
    }
    for (int i = 0; i < 4 * GEOIP_CACHE_SIZE; i++) {
        char ip[32];
        snprintf(ip, sizeof(ip), "10.0.%d.%d", i / 256, i % 256);
        k2 = key(1, 0, 0, ip);
        if (!geoip_cache_get(&k2, &got))
            misses++;
        else if (got.asn != (uint32_t)i + 1 || strcmp(got.cc, i % 2 ? "FR" : "NL") != 0)
            break;
        if (i == 4 * GEOIP_CACHE_SIZE - 1)
            ok(1, "no address got another's answer (%d of %d evicted)", misses,
               4 * GEOIP_CACHE_SIZE);
    }
    ok(misses >= 3 * GEOIP_CACHE_SIZE, "bounded: at most %d entries kept", GEOIP_CACHE_SIZE);
    return done_testing();
}
