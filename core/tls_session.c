/* tls_session.c - the per-worker cache of TLS sessions to origins, so a new verified upstream connection resumes instead of a full handshake. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "tls_session.h"

#define PER_KEY 8        /* sessions kept per origin (tickets come in pairs) */
#define DEFAULT_KEYS 1024

typedef struct sess_entry {
    struct sess_entry *hnext;
    struct sess_entry *prev, *next;   /* LRU: head is the most recent */
    uint32_t hash;
    int n;
    SSL_SESSION *s[PER_KEY];          /* oldest first */
    char key[];
} sess_entry_t;

struct tls_sess_cache {
    sess_entry_t **buckets;
    uint32_t nbuckets;                /* a power of two */
    size_t max_keys, nkeys;
    sess_entry_t *head, *tail;
};

static uint32_t hash_str(const char *s)
{
    uint32_t h = 2166136261u;

    for (; *s; s++)
        h = (h ^ (uint8_t)*s) * 16777619u;
    return h;
}

tls_sess_cache_t *tls_sess_cache_new(size_t max_keys)
{
    tls_sess_cache_t *c = calloc(1, sizeof(*c));

    if (c == NULL)
        return NULL;
    c->max_keys = max_keys ? max_keys : DEFAULT_KEYS;
    c->nbuckets = 64;
    while (c->nbuckets < c->max_keys)
        c->nbuckets <<= 1;
    c->buckets = calloc(c->nbuckets, sizeof(*c->buckets));
    if (c->buckets == NULL) {
        free(c);
        return NULL;
    }
    return c;
}

static void lru_unlink(tls_sess_cache_t *c, sess_entry_t *e)
{
    if (e->prev)
        e->prev->next = e->next;
    else
        c->head = e->next;
    if (e->next)
        e->next->prev = e->prev;
    else
        c->tail = e->prev;
    e->prev = e->next = NULL;
}

static void lru_front(tls_sess_cache_t *c, sess_entry_t *e)
{
    e->next = c->head;
    if (c->head)
        c->head->prev = e;
    c->head = e;
    if (c->tail == NULL)
        c->tail = e;
}

static void entry_drop(tls_sess_cache_t *c, sess_entry_t *e)
{
    sess_entry_t **pp = &c->buckets[e->hash & (c->nbuckets - 1)];

    while (*pp != e)
        pp = &(*pp)->hnext;
    *pp = e->hnext;
    lru_unlink(c, e);
    for (int i = 0; i < e->n; i++)
        SSL_SESSION_free(e->s[i]);
    free(e);
    c->nkeys--;
}

void tls_sess_cache_clear(tls_sess_cache_t *c)
{
    while (c->head)
        entry_drop(c, c->head);
}

void tls_sess_cache_free(tls_sess_cache_t *c)
{
    if (c == NULL)
        return;
    tls_sess_cache_clear(c);
    free(c->buckets);
    free(c);
}

void tls_sess_key(char *buf, size_t len, const char *verify_name, const char *sni,
                  unsigned port)
{
    snprintf(buf, len, "%s|%s|%u", verify_name, sni ? sni : "", port);
}

static sess_entry_t *find(tls_sess_cache_t *c, const char *key, uint32_t h)
{
    for (sess_entry_t *e = c->buckets[h & (c->nbuckets - 1)]; e; e = e->hnext)
        if (e->hash == h && strcmp(e->key, key) == 0)
            return e;
    return NULL;
}

SSL_SESSION *tls_sess_take(tls_sess_cache_t *c, const char *key)
{
    uint32_t h = hash_str(key);
    sess_entry_t *e = find(c, key, h);
    time_t now = time(NULL);

    while (e && e->n > 0) {
        SSL_SESSION *s = e->s[e->n - 1];
        /* An expired one would only cost a full handshake; skip it. */
        if ((time_t)SSL_SESSION_get_time(s) + (time_t)SSL_SESSION_get_timeout(s) <= now) {
            e->n--;
            SSL_SESSION_free(s);
            continue;
        }
        /* The last one stays for the next connection too: tickets of a
         * burst of new tunnels arrive after their handshakes, and one more
         * full handshake per tunnel would be the price of single use. The
         * ticket links nothing the origin does not know anyway: every
         * connection comes from the proxy. */
        if (e->n == 1) {
            SSL_SESSION_up_ref(s);
            return s;
        }
        e->n--;
        return s;
    }
    if (e)
        entry_drop(c, e);
    return NULL;
}

void tls_sess_put(tls_sess_cache_t *c, const char *key, SSL_SESSION *sess)
{
    uint32_t h = hash_str(key);
    sess_entry_t *e = find(c, key, h);
    size_t klen = strlen(key);

    if (e == NULL) {
        e = calloc(1, sizeof(*e) + klen + 1);
        if (e == NULL) {
            SSL_SESSION_free(sess);
            return;
        }
        memcpy(e->key, key, klen + 1);
        e->hash = h;
        e->hnext = c->buckets[h & (c->nbuckets - 1)];
        c->buckets[h & (c->nbuckets - 1)] = e;
        c->nkeys++;
        while (c->nkeys > c->max_keys && c->tail && c->tail != e)
            entry_drop(c, c->tail);
    } else {
        lru_unlink(c, e);
    }
    lru_front(c, e);
    if (e->n == PER_KEY) {
        SSL_SESSION_free(e->s[0]);
        memmove(e->s, e->s + 1, (PER_KEY - 1) * sizeof(e->s[0]));
        e->n--;
    }
    e->s[e->n++] = sess;
}
