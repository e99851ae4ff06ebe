/* dns.c - asynchronous name lookups with a per-loop cache. */
#include <netdb.h>
#include <stdlib.h>
#include <string.h>

#include "dns.h"

typedef struct dns_entry dns_entry_t;

struct dns_query {
    dns_query_t *next;
    dns_entry_t *entry;
    dns_cb cb;
    void *arg;
};

struct dns_entry {
    dns_entry_t *hnext;        /* hash chain */
    dns_cache_t *cache;
    char *host;
    uint64_t expires;          /* uv_now() ms; 0 while pending */
    int status;
    dns_result_t *res;
    uv_getaddrinfo_t *req;     /* pending query, or NULL */
    dns_query_t *waiters;
};

struct dns_cache {
    uv_loop_t *loop;
    dns_entry_t **buckets;
    unsigned nbuckets;
    unsigned nentries, max_entries;
    unsigned npending;
    uint64_t ttl, neg_ttl;
    int closing;
    dns_stats_t stats;
};

static uint32_t hash_str(const char *s)
{
    uint32_t h = 2166136261u;  /* FNV-1a */

    for (; *s; s++) {
        h ^= (unsigned char)*s;
        h *= 16777619u;
    }
    return h;
}

dns_cache_t *dns_cache_new(uv_loop_t *loop, unsigned max_entries)
{
    dns_cache_t *c = calloc(1, sizeof(*c));

    if (c == NULL)
        return NULL;
    c->nbuckets = 1024;
    c->buckets = calloc(c->nbuckets, sizeof(*c->buckets));
    if (c->buckets == NULL) {
        free(c);
        return NULL;
    }
    c->loop = loop;
    c->max_entries = max_entries ? max_entries : 4096;
    c->ttl = 300000;
    c->neg_ttl = 30000;
    return c;
}

void dns_cache_set_ttl(dns_cache_t *c, uint64_t ttl_ms, uint64_t negative_ttl_ms)
{
    c->ttl = ttl_ms;
    c->neg_ttl = negative_ttl_ms;
}

dns_result_t *dns_result_ref(dns_result_t *r)
{
    r->refs++;
    return r;
}

void dns_result_unref(dns_result_t *r)
{
    if (r && --r->refs == 0)
        free(r);
}

static void entry_free(dns_entry_t *e)
{
    dns_result_unref(e->res);
    free(e->host);
    free(e);
}

static void entry_unlink(dns_cache_t *c, dns_entry_t *e)
{
    dns_entry_t **pp = &c->buckets[hash_str(e->host) % c->nbuckets];

    for (; *pp; pp = &(*pp)->hnext) {
        if (*pp == e) {
            *pp = e->hnext;
            c->nentries--;
            return;
        }
    }
}

static void cache_free_if_done(dns_cache_t *c)
{
    if (c->closing && c->npending == 0) {
        free(c->buckets);
        free(c);
    }
}

void dns_cache_close(dns_cache_t *c)
{
    c->closing = 1;
    for (unsigned i = 0; i < c->nbuckets; i++) {
        dns_entry_t *e = c->buckets[i], *next;
        for (; e; e = next) {
            next = e->hnext;
            while (e->waiters) {
                dns_query_t *q = e->waiters;
                e->waiters = q->next;
                free(q);
            }
            if (e->req) {
                /* Freed by the getaddrinfo callback. */
                uv_cancel((uv_req_t *)e->req);
                e->hnext = NULL;
                continue;
            }
            entry_free(e);
        }
        c->buckets[i] = NULL;
    }
    c->nentries = 0;
    cache_free_if_done(c);
}

/* Drops expired entries; when still full, drops answered entries until
 * there is room (oldest buckets first: good enough for a bounded cache). */
static void cache_make_room(dns_cache_t *c)
{
    uint64_t now = uv_now(c->loop);

    if (c->nentries < c->max_entries)
        return;
    for (int pass = 0; pass < 2 && c->nentries >= c->max_entries; pass++) {
        for (unsigned i = 0; i < c->nbuckets; i++) {
            dns_entry_t **pp = &c->buckets[i];
            while (*pp) {
                dns_entry_t *e = *pp;
                if (e->req == NULL && (pass == 1 || e->expires <= now)) {
                    *pp = e->hnext;
                    c->nentries--;
                    entry_free(e);
                    if (pass == 1 && c->nentries < c->max_entries * 3 / 4)
                        return;
                } else {
                    pp = &e->hnext;
                }
            }
        }
    }
}

static dns_result_t *result_from_addrinfo(const struct addrinfo *ai)
{
    int n = 0, k = 0;
    dns_result_t *r;

    for (const struct addrinfo *p = ai; p; p = p->ai_next)
        n++;
    r = malloc(sizeof(*r) + (size_t)(n ? n : 1) * sizeof(netaddr_t));
    if (r == NULL)
        return NULL;
    r->refs = 1;
    for (const struct addrinfo *p = ai; p; p = p->ai_next) {
        netaddr_t a;
        int dup = 0;
        if (netaddr_from_sockaddr(&a, p->ai_addr) < 0)
            continue;
        for (int i = 0; i < k && !dup; i++)
            dup = netaddr_equal(&r->addrs[i], &a);
        if (!dup)
            r->addrs[k++] = a;
    }
    r->naddrs = k;
    return r;
}

static void on_getaddrinfo(uv_getaddrinfo_t *req, int status,
                           struct addrinfo *ai)
{
    dns_entry_t *e = req->data;
    dns_cache_t *c = e->cache;
    dns_query_t *q;

    c->npending--;
    e->req = NULL;
    free(req);
    if (c->closing) {
        if (ai)
            uv_freeaddrinfo(ai);
        entry_free(e);
        cache_free_if_done(c);
        return;
    }
    if (status == 0) {
        e->res = result_from_addrinfo(ai);
        if (e->res == NULL)
            status = UV_ENOMEM;
        else if (e->res->naddrs == 0) {
            dns_result_unref(e->res);
            e->res = NULL;
            status = UV_EAI_NODATA;
        }
    }
    if (ai)
        uv_freeaddrinfo(ai);
    e->status = status;
    if (status < 0)
        c->stats.failures++;
    e->expires = uv_now(c->loop) + (status == 0 ? c->ttl : c->neg_ttl);
    if (e->expires == 0)
        e->expires = 1;

    /* Each waiter is detached before its callback, which may cancel or
     * start other lookups. */
    while ((q = e->waiters) != NULL) {
        e->waiters = q->next;
        q->cb(q->arg, e->status, e->res);
        free(q);
    }
}

int dns_lookup(dns_cache_t *c, const char *host, dns_cb cb, void *arg,
               dns_query_t **qout, int *status, dns_result_t **res)
{
    uint32_t b = hash_str(host) % c->nbuckets;
    uint64_t now = uv_now(c->loop);
    struct addrinfo hints;
    dns_entry_t *e;
    dns_query_t *q;
    int rc;

    for (e = c->buckets[b]; e; e = e->hnext)
        if (strcmp(e->host, host) == 0)
            break;
    if (e && e->req == NULL && e->expires > now) {
        *status = e->status;
        *res = e->res ? dns_result_ref(e->res) : NULL;
        if (e->status == 0)
            c->stats.hits++;
        else
            c->stats.negative_hits++;
        return 1;
    }
    if (e && e->req == NULL) {
        /* Expired: look it up again. */
        entry_unlink(c, e);
        entry_free(e);
        e = NULL;
    }

    q = calloc(1, sizeof(*q));
    if (q == NULL)
        return UV_ENOMEM;
    q->cb = cb;
    q->arg = arg;

    if (e == NULL) {
        cache_make_room(c);
        e = calloc(1, sizeof(*e));
        if (e == NULL)
            goto fail;
        e->host = strdup(host);
        e->req = malloc(sizeof(*e->req));
        if (e->host == NULL || e->req == NULL) {
            free(e->req);
            free(e->host);
            free(e);
            goto fail;
        }
        e->cache = c;
        e->req->data = e;
        memset(&hints, 0, sizeof(hints));
        hints.ai_family = AF_UNSPEC;
        hints.ai_socktype = SOCK_STREAM;
        rc = uv_getaddrinfo(c->loop, e->req, on_getaddrinfo, host, NULL, &hints);
        if (rc < 0) {
            free(e->req);
            free(e->host);
            free(e);
            free(q);
            return rc;
        }
        c->npending++;
        c->stats.misses++;
        e->hnext = c->buckets[b];
        c->buckets[b] = e;
        c->nentries++;
    }
    q->entry = e;
    q->next = e->waiters;
    e->waiters = q;
    *qout = q;
    return 0;
fail:
    free(q);
    return UV_ENOMEM;
}

void dns_query_cancel(dns_query_t *q)
{
    dns_query_t **pp;

    if (q == NULL)
        return;
    for (pp = &q->entry->waiters; *pp; pp = &(*pp)->next) {
        if (*pp == q) {
            *pp = q->next;
            free(q);
            return;
        }
    }
}

void dns_cache_stats(const dns_cache_t *c, dns_stats_t *out)
{
    *out = c->stats;
    out->entries = c->nentries;
}
