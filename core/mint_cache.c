/* mint_cache.c - per-loop LRU cache of minted SSL_CTXs; coalesced mints on the pool. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#include "mint.h"
#include "tls_x509.h"

#define DEFAULT_MAX_ENTRIES 1024
#define MAX_BUCKETS (1u << 20)
#define STALE_MARGIN (24 * 3600)  /* re-mint a leaf that expires within a day */

/* An entry: a ready SSL_CTX, in a hash chain and in the LRU list. */
typedef struct mc_entry {
    char *key;                 /* "FINGERPRINT host" */
    uint32_t hash;
    struct mc_entry *hnext;
    struct mc_entry *prev, *next;  /* LRU: head is the most recent */
    SSL_CTX *ctx;              /* one reference */
    time_t not_after;          /* of the leaf */
} mc_entry_t;

typedef struct mint_job mint_job_t;

struct mint_req {
    mint_req_t *next, **pprev;  /* in the job's waiter list */
    mint_job_t *job;
    mint_cb cb;
    void *arg;
};

/* A mint in flight. Its fields up to `waiters` belong to the loop thread;
 * the pool thread reads ca/host/upstream and writes the result fields, and
 * uv_queue_work orders both sides. */
struct mint_job {
    uv_work_t work;
    mint_cache_t *cache;
    tls_ca_t *ca;                /* one reference */
    X509 *upstream;              /* one reference, or NULL */
    char *key;
    const char *host;            /* inside key */
    uint32_t hash;
    mint_job_t *hnext;           /* in the pending table, while attached */
    int attached;                /* 0 after a purge: deliver, do not cache */
    mint_job_t *inext, *iprev;   /* every job not yet finished */
    mint_req_t *waiters;
    /* results, written on the pool thread */
    SSL_CTX *ctx;
    time_t not_after;
    char err[256];
};

struct mint_cache {
    uv_loop_t *loop;
    size_t max_entries;
    uint32_t nbuckets;           /* a power of two */
    mc_entry_t **entries;        /* hash buckets of entries */
    mint_job_t **pending;        /* hash buckets of attached jobs */
    mc_entry_t *lru_head, *lru_tail;
    mint_job_t *jobs;            /* all unfinished jobs, attached or not */
    int closing;
    mint_cache_stats_t st;
};

/* FNV-1a: short keys, no adversary can pick the fingerprint part. */
static uint32_t hash_key(const char *s)
{
    uint32_t h = 2166136261u;

    for (; *s; s++)
        h = (h ^ (uint8_t)*s) * 16777619u;
    return h;
}

mint_cache_t *mint_cache_new(uv_loop_t *loop, size_t max_entries)
{
    mint_cache_t *c = calloc(1, sizeof(*c));
    uint32_t nb = 16;

    if (c == NULL)
        return NULL;
    c->loop = loop;
    c->max_entries = max_entries ? max_entries : DEFAULT_MAX_ENTRIES;
    while (nb < c->max_entries && nb < MAX_BUCKETS)
        nb <<= 1;
    c->nbuckets = nb;
    c->entries = calloc(nb, sizeof(*c->entries));
    c->pending = calloc(nb, sizeof(*c->pending));
    if (c->entries == NULL || c->pending == NULL) {
        free(c->entries);
        free(c->pending);
        free(c);
        return NULL;
    }
    return c;
}

/* ---- entries ------------------------------------------------------------- */

static mc_entry_t *entry_find(mint_cache_t *c, const char *key, uint32_t h)
{
    mc_entry_t *e;

    for (e = c->entries[h & (c->nbuckets - 1)]; e != NULL; e = e->hnext)
        if (e->hash == h && strcmp(e->key, key) == 0)
            return e;
    return NULL;
}

static void lru_unlink(mint_cache_t *c, mc_entry_t *e)
{
    if (e->prev)
        e->prev->next = e->next;
    else
        c->lru_head = e->next;
    if (e->next)
        e->next->prev = e->prev;
    else
        c->lru_tail = e->prev;
    e->prev = e->next = NULL;
}

static void lru_push_front(mint_cache_t *c, mc_entry_t *e)
{
    e->prev = NULL;
    e->next = c->lru_head;
    if (c->lru_head)
        c->lru_head->prev = e;
    c->lru_head = e;
    if (c->lru_tail == NULL)
        c->lru_tail = e;
}

static void entry_drop(mint_cache_t *c, mc_entry_t *e)
{
    mc_entry_t **pp = &c->entries[e->hash & (c->nbuckets - 1)];

    while (*pp != e)
        pp = &(*pp)->hnext;
    *pp = e->hnext;
    lru_unlink(c, e);
    SSL_CTX_free(e->ctx);
    free(e->key);
    free(e);
    c->st.entries--;
}

/* Stores a new reference to ctx under key, replacing an older entry and
 * evicting the least recently used ones past max_entries. Out of memory
 * only means it is not cached. */
static void entry_put(mint_cache_t *c, const char *key, uint32_t h, SSL_CTX *ctx,
                      time_t not_after)
{
    mc_entry_t *e = entry_find(c, key, h);

    if (e != NULL)
        entry_drop(c, e);
    e = calloc(1, sizeof(*e));
    if (e == NULL || (e->key = strdup(key)) == NULL) {
        free(e);
        return;
    }
    e->hash = h;
    SSL_CTX_up_ref(ctx);
    e->ctx = ctx;
    e->not_after = not_after;
    e->hnext = c->entries[h & (c->nbuckets - 1)];
    c->entries[h & (c->nbuckets - 1)] = e;
    lru_push_front(c, e);
    c->st.entries++;
    while (c->st.entries > c->max_entries) {
        entry_drop(c, c->lru_tail);
        c->st.evictions++;
    }
}

/* ---- jobs ---------------------------------------------------------------- */

static mint_job_t *job_find(mint_cache_t *c, const char *key, uint32_t h)
{
    mint_job_t *j;

    for (j = c->pending[h & (c->nbuckets - 1)]; j != NULL; j = j->hnext)
        if (j->hash == h && strcmp(j->key, key) == 0)
            return j;
    return NULL;
}

/* Takes the job out of the pending table: later requests start a new mint
 * and its result is not cached. */
static void job_detach(mint_cache_t *c, mint_job_t *j)
{
    mint_job_t **pp = &c->pending[j->hash & (c->nbuckets - 1)];

    if (!j->attached)
        return;
    while (*pp != j)
        pp = &(*pp)->hnext;
    *pp = j->hnext;
    j->attached = 0;
}

static void job_drop_waiters(mint_job_t *j)
{
    mint_req_t *r;

    while ((r = j->waiters) != NULL) {
        j->waiters = r->next;
        free(r);
    }
}

static void job_free(mint_job_t *j)
{
    SSL_CTX_free(j->ctx);
    tls_ca_unref(j->ca);
    X509_free(j->upstream);
    free(j->key);
    free(j);
}

static void cache_really_free(mint_cache_t *c)
{
    free(c->entries);
    free(c->pending);
    free(c);
}

/* On the pool thread: the slow part, leaf and SSL_CTX. */
static void job_work(uv_work_t *w)
{
    mint_job_t *j = w->data;
    X509 *leaf = tls_mint_leaf(j->ca, j->host, j->upstream, j->err, sizeof(j->err));

    if (leaf != NULL) {
        if (tls_x509_time(X509_get0_notAfter(leaf), &j->not_after) == 0)
            j->ctx = tls_mint_ctx(j->ca, leaf, j->err, sizeof(j->err));
        else
            snprintf(j->err, sizeof(j->err), "minted an invalid notAfter");
        X509_free(leaf);
    }
    /* libuv's pool threads outlive OpenSSL's atexit cleanup and are never
     * stopped in a way OpenSSL notices: free this thread's OpenSSL state
     * (error queue, random generators) now, or every pool thread that
     * minted holds it until the process is gone (LeakSanitizer reports
     * it). Making it again on the next mint costs some microseconds. */
    OPENSSL_thread_stop();
}

/* On the loop thread: cache the result and call the waiters, one at a
 * time, so that a callback may cancel the waiters after it, start other
 * requests, purge, or free the cache. */
static void job_done(uv_work_t *w, int status)
{
    mint_job_t *j = w->data;
    mint_cache_t *c = j->cache;
    mint_req_t *r;

    if (status != 0 && j->ctx == NULL && j->err[0] == '\0')
        snprintf(j->err, sizeof(j->err), "minting was cancelled");
    if (j->ctx != NULL)
        c->st.mints++;
    else
        c->st.errors++;
    if (j->attached) {
        job_detach(c, j);
        if (j->ctx != NULL && !c->closing)
            entry_put(c, j->key, j->hash, j->ctx, j->not_after);
    }
    c->st.pending--;
    while ((r = j->waiters) != NULL) {
        mint_cb cb = r->cb;
        void *arg = r->arg;

        j->waiters = r->next;
        if (r->next)
            r->next->pprev = &j->waiters;
        free(r);
        if (j->ctx != NULL)
            SSL_CTX_up_ref(j->ctx);
        cb(arg, j->ctx, j->ctx != NULL ? NULL : j->err);
    }
    if (j->iprev)
        j->iprev->inext = j->inext;
    else
        c->jobs = j->inext;
    if (j->inext)
        j->inext->iprev = j->iprev;
    job_free(j);
    if (c->closing && c->jobs == NULL)
        cache_really_free(c);
}

/* ---- the API ------------------------------------------------------------- */

static mint_req_t *add_waiter(mint_job_t *j, mint_cb cb, void *arg)
{
    mint_req_t *r = calloc(1, sizeof(*r));

    if (r == NULL)
        return NULL;
    r->job = j;
    r->cb = cb;
    r->arg = arg;
    r->next = j->waiters;
    if (j->waiters)
        j->waiters->pprev = &r->next;
    r->pprev = &j->waiters;
    j->waiters = r;
    return r;
}

int mint_cache_get(mint_cache_t *c, tls_ca_t *ca, const char *host, const X509 *upstream,
                   SSL_CTX **ctx, mint_cb cb, void *arg, mint_req_t **req, char *err,
                   size_t errlen)
{
    char norm[TLS_MINT_HOST_MAX + 1];
    const char *fp = tls_ca_fingerprint(ca);
    size_t klen;
    mc_entry_t *e;
    mint_job_t *j;
    mint_req_t *r;
    uint32_t h;
    int is_ip;
    char *key;

    *ctx = NULL;
    *req = NULL;
    if (tls_mint_host(host, norm, sizeof(norm), &is_ip, err, errlen) < 0)
        return -1;
    klen = strlen(fp) + 1 + strlen(norm) + 1;
    key = malloc(klen);
    if (key == NULL)
        goto nomem;
    snprintf(key, klen, "%s %s", fp, norm);
    h = hash_key(key);

    e = entry_find(c, key, h);
    if (e != NULL) {
        time_t up;
        int fresh = time(NULL) + STALE_MARGIN < e->not_after;
        if (fresh && upstream != NULL &&
            tls_x509_time(X509_get0_notAfter(upstream), &up) == 0 && up < e->not_after)
            fresh = 0;  /* the leaf would outlive the real certificate */
        if (fresh) {
            lru_unlink(c, e);
            lru_push_front(c, e);
            c->st.hits++;
            SSL_CTX_up_ref(e->ctx);
            *ctx = e->ctx;
            free(key);
            return 1;
        }
        entry_drop(c, e);
    }
    c->st.misses++;

    j = job_find(c, key, h);
    if (j != NULL) {
        free(key);
        r = add_waiter(j, cb, arg);
        if (r == NULL)
            goto nomem;
        c->st.coalesced++;
        *req = r;
        return 0;
    }

    j = calloc(1, sizeof(*j));
    if (j == NULL) {
        free(key);
        goto nomem;
    }
    j->cache = c;
    j->key = key;
    j->host = key + strlen(fp) + 1;
    j->hash = h;
    j->work.data = j;
    j->ca = tls_ca_ref(ca);
    if (upstream != NULL) {
        /* Only the reference count changes: the certificate stays as it is. */
        j->upstream = (X509 *)upstream;
        X509_up_ref(j->upstream);
    }
    r = add_waiter(j, cb, arg);
    if (r == NULL || uv_queue_work(c->loop, &j->work, job_work, job_done) != 0) {
        free(r);
        job_free(j);
        goto nomem;
    }
    j->attached = 1;
    j->hnext = c->pending[h & (c->nbuckets - 1)];
    c->pending[h & (c->nbuckets - 1)] = j;
    j->inext = c->jobs;
    if (c->jobs)
        c->jobs->iprev = j;
    c->jobs = j;
    c->st.pending++;
    *req = r;
    return 0;

nomem:
    snprintf(err, errlen, "out of memory");
    return -1;
}

void mint_req_cancel(mint_req_t *req)
{
    mint_cache_t *c;

    if (req == NULL)
        return;
    c = req->job->cache;
    *req->pprev = req->next;
    if (req->next)
        req->next->pprev = req->pprev;
    c->st.cancelled++;
    free(req);
}

void mint_cache_purge(mint_cache_t *c, const tls_ca_t *keep)
{
    const char *fp = keep != NULL ? tls_ca_fingerprint(keep) : NULL;
    size_t fplen = fp != NULL ? strlen(fp) : 0;
    mc_entry_t *e, *next;
    mint_job_t *j;

    for (e = c->lru_head; e != NULL; e = next) {
        next = e->next;
        if (fp == NULL || strncmp(e->key, fp, fplen) != 0 || e->key[fplen] != ' ')
            entry_drop(c, e);
    }
    for (j = c->jobs; j != NULL; j = j->inext)
        if (fp == NULL || strcmp(tls_ca_fingerprint(j->ca), fp) != 0)
            job_detach(c, j);
}

void mint_cache_get_stats(const mint_cache_t *c, mint_cache_stats_t *out)
{
    *out = c->st;
}

void mint_cache_free(mint_cache_t *c)
{
    mint_job_t *j;

    if (c == NULL || c->closing)
        return;
    c->closing = 1;
    while (c->lru_head != NULL)
        entry_drop(c, c->lru_head);
    for (j = c->jobs; j != NULL; j = j->inext) {
        job_drop_waiters(j);
        job_detach(c, j);
        /* Not started yet: libuv calls job_done with UV_ECANCELED soon. */
        uv_cancel((uv_req_t *)&j->work);
    }
    if (c->jobs == NULL)
        cache_really_free(c);
}
