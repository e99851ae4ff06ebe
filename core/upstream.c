/* upstream.c - connections to origin servers and the per-worker idle pool. */
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "splice.h"
#include "tls_io.h"
#include "tls_policy.h"
#include "txn.h"
#include "upstream.h"

/* Idle connections by key (host:port), plus one LRU over all of them so the
 * pool stays within upstream_pool_size. */
typedef struct upool_bucket {
    struct upool_bucket *next;
    char *key;
    list_t conns;            /* upstream_t.pool_link, most recent last */
    unsigned n;
} upool_bucket_t;

struct upool {
    worker_t *w;
    upool_bucket_t **buckets;
    unsigned nbuckets;
    list_t lru;              /* upstream_t.lru_link, oldest first */
    unsigned n;
};

static void on_up_close(uv_handle_t *h)
{
    upstream_t *up = h->data;

    if (--up->handles > 0)
        return;
    iobuf_unref(up->pending);
    iobuf_unref(up->in);
    tls_io_free(up->tls);
    free(up->tls_fail);
    free(up);
}

static void upstream_unpool(upstream_t *up);

void upstream_close(upstream_t *up)
{
    if (up == NULL || up->state == UP_CLOSED)
        return;
    if (up->state == UP_IDLE)
        upstream_unpool(up);
    up->state = UP_CLOSED;
    up->txn = NULL;
    if (up->tls_timer_on)
        uv_close((uv_handle_t *)&up->tls_timer, on_up_close);
    uv_close((uv_handle_t *)&up->timer, on_up_close);
    uv_close((uv_handle_t *)&up->tcp, on_up_close);
}

static void on_up_timer(uv_timer_t *timer);
static void up_tls_done(upstream_t *up, int ok, const char *why);

static void up_set_timer(upstream_t *up, uint64_t ms)
{
    uv_timer_start(&up->timer, on_up_timer, ms, 0);
}

void upstream_timer(upstream_t *up, uint64_t ms)
{
    if (up->state == UP_CLOSED)
        return;
    if (ms == 0)
        uv_timer_stop(&up->timer);
    else
        up_set_timer(up, ms);
}

static void on_up_timer(uv_timer_t *timer)
{
    upstream_t *up = timer->data;
    conf_t *conf = up->w->conf;
    uint64_t now = uv_now(&up->w->loop);

    if (up->tls_hs) {
        up_tls_done(up, 0, "the server did not complete the TLS handshake in time");
        return;
    }
    switch (up->state) {
    case UP_CONNECTING:
        txn_upstream_connected(up->txn, UV_ETIMEDOUT);
        return;
    case UP_IDLE:
        upstream_close(up);
        return;
    case UP_ACTIVE: {
        txn_t *t = up->txn;
        uint64_t limit = t ? t->conf->read_timeout : conf->read_timeout;
        /* Silence counts only while we are reading: a connection stopped
         * for flow control waits on the client, whose send_timeout rules;
         * so does one that, before any answer, wrote all of a request body
         * still coming from the client, whose read_timeout rules. */
        int waits = up->flow_stopped ||
                    (t && !t->req_done && t->rs == RS_WAIT && up->out.pending == 0);
        if (waits || now - up->last_activity < limit) {
            uint64_t left = waits ? limit : limit - (now - up->last_activity);
            up_set_timer(up, left ? left : 1);
            return;
        }
        if (t)
            txn_upstream_timeout(t);
        else
            upstream_close(up);
        return;
    }
    case UP_CLOSED:
        return;
    }
}

static void on_up_write(outq_t *q, int status)
{
    upstream_t *up = q->data;

    if (up->state == UP_CLOSED)
        return;
    if (status < 0) {
        if (up->txn)
            txn_upstream_eof(up->txn, status);
        else
            upstream_close(up);
        return;
    }
    up->last_activity = uv_now(&up->w->loop);
    if (up->txn && q->pending < OUTQ_LOW)
        txn_upstream_drained(up->txn);
}

static void on_up_alloc(uv_handle_t *h, size_t hint, uv_buf_t *buf)
{
    upstream_t *up = h->data;

    (void)hint;
    if (up->splice_rx) {
        /* Readability only: the relay splices (see client.c). */
        *buf = uv_buf_init(NULL, 0);
        return;
    }
    if (up->tls) {
        /* Ciphertext goes into the session at once (see client.c). */
        *buf = uv_buf_init(up->w->tls_scratch, IOBUF_SIZE);
        return;
    }
    if (up->in == NULL || up->in->refs > 1) {
        /* The previous buffer is still being written to the client. */
        iobuf_unref(up->in);
        up->in = iobuf_new(&up->w->bufs);
        if (up->in == NULL) {
            *buf = uv_buf_init(NULL, 0);
            return;
        }
    }
    *buf = uv_buf_init(up->in->data, (unsigned)up->in->cap);
}

/* Decrypts what the session holds and hands it to the transaction, as a
 * plain read would; stops while the transaction keeps unparsed bytes
 * aside (up->pending: plugins decide about the response head), since
 * upstream_read_start() comes back then. */
static void up_tls_pump(upstream_t *up)
{
    char why[160];

    for (;;) {
        txn_t *t = up->txn;
        iobuf_t *b;
        size_t n;
        int rc;

        if (up->state == UP_CLOSED || up->tls_hs)
            return;
        if (t == NULL || up->state != UP_ACTIVE) {
            /* Idle: a session ticket (TLS 1.3) is fine and used up here;
             * data, a close_notify or an error end the connection. */
            char tmp[512];
            rc = tls_io_read(up->tls, tmp, sizeof(tmp), &n);
            if (rc == TLS_IO_WANT)
                break;
            upstream_close(up);
            return;
        }
        if (up->pending)
            return;
        if (up->in == NULL || up->in->refs > 1) {
            iobuf_unref(up->in);
            up->in = iobuf_new(&up->w->bufs);
            if (up->in == NULL) {
                txn_upstream_eof(t, UV_ENOMEM);
                return;
            }
        }
        b = up->in;
        rc = tls_io_read(up->tls, b->data, b->cap, &n);
        if (rc == TLS_IO_WANT)
            break;
        if (rc == TLS_IO_EOF) {
            txn_upstream_eof(t, UV_EOF);
            return;
        }
        if (rc == TLS_IO_ERROR) {
            log_info(t->c->id, "TLS error from upstream %s: %s", up->addr_text,
                     tls_io_error(why, sizeof(why)));
            txn_upstream_eof(t, UV_EPROTO);
            return;
        }
        up->got_bytes = 1;
        iobuf_ref(b);
        txn_upstream_data(t, b, b->data, n);
        iobuf_unref(b);
    }
    if (up->state != UP_CLOSED && tls_io_pending(up->tls) > 0 &&
        outq_tls_flush(&up->out, up->tls) < 0)
        upstream_close(up);
}

static void on_up_tls_timer(uv_timer_t *timer)
{
    up_tls_pump(timer->data);
}

static void up_tls_done(upstream_t *up, int ok, const char *why)
{
    txn_t *t = up->txn;

    up->tls_hs = 0;
    uv_timer_stop(&up->timer);
    if (ok) {
        up->out.tls = up->tls;
        if (t)
            log_debug(t->c->id, "TLS to upstream %s:%u: %s, %s", up->addr_text, up->port,
                      SSL_get_version(up->tls->ssl),
                      SSL_session_reused(up->tls->ssl) ? "resumed" : "full handshake");
    } else {
        free(up->tls_fail);
        up->tls_fail = strdup(why ? why : "TLS handshake failed");
    }
    if (t)
        txn_upstream_tls_done(t, ok ? 0 : -1);
    else
        upstream_close(up);
}

/* One step of the handshake with what was fed so far. */
static void up_tls_step(upstream_t *up)
{
    char why[256];
    int rc = tls_io_handshake(up->tls);

    if (rc == TLS_IO_ERROR) {
        tls_upstream_failure(up->tls, why, sizeof(why));
        /* The alert OpenSSL made still goes out, for the server's logs. */
        outq_tls_flush(&up->out, up->tls);
        up_tls_done(up, 0, why);
        return;
    }
    if (outq_tls_flush(&up->out, up->tls) < 0) {
        up_tls_done(up, 0, "cannot write to the server");
        return;
    }
    if (rc == TLS_IO_OK)
        up_tls_done(up, 1, NULL);
}

void upstream_tls_start(upstream_t *up, tls_io_t *io, uint64_t timeout_ms)
{
    up->tls = io;
    up->tls_hs = 1;
    if (!up->tls_timer_on) {
        uv_timer_init(&up->w->loop, &up->tls_timer);
        up->tls_timer.data = up;
        up->tls_timer_on = 1;
        up->handles++;
    }
    up->last_activity = uv_now(&up->w->loop);
    up_set_timer(up, timeout_ms);
    upstream_read_start(up);
    up_tls_step(up);
}

static void on_up_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
    upstream_t *up = s->data;
    txn_t *t = up->txn;
    iobuf_t *b = up->in;

    if (nread == 0)
        return;
    if (nread == UV_ENOBUFS && up->splice_rx) {
        splice_readable(up->splice_rx);
        return;
    }
    if (up->tls) {
        if (nread < 0) {
            if (up->tls_hs)
                up_tls_done(up, 0, "the server closed the connection during the TLS "
                                   "handshake");
            else if (t)
                txn_upstream_eof(t, (int)nread);
            else
                upstream_close(up);
            return;
        }
        up->last_activity = uv_now(&up->w->loop);
        if (tls_io_feed(up->tls, buf->base, (size_t)nread) < 0) {
            if (up->tls_hs)
                up_tls_done(up, 0, "out of memory");
            else if (t)
                txn_upstream_eof(t, UV_ENOMEM);
            else
                upstream_close(up);
            return;
        }
        if (up->tls_hs) {
            up_tls_step(up);
            if (up->tls_hs)
                return;
        }
        up_tls_pump(up);
        return;
    }
    if (nread < 0) {
        if (t)
            txn_upstream_eof(t, (int)nread);
        else
            upstream_close(up);
        return;
    }
    if (t == NULL || up->state != UP_ACTIVE) {
        /* An idle connection must stay silent; anything else means the
         * server is closing it or misbehaving. */
        upstream_close(up);
        return;
    }
    up->last_activity = uv_now(&up->w->loop);
    up->got_bytes = 1;
    /* Keep the buffer alive for the whole call even if the transaction
     * ends inside it and the connection goes away. */
    iobuf_ref(b);
    txn_upstream_data(t, b, b->data, (size_t)nread);
    iobuf_unref(b);
}

void upstream_read_start(upstream_t *up)
{
    if (up->state == UP_CLOSED)
        return;
    /* Input decrypted ahead and kept in the session: no socket read will
     * bring it, so it is handed over from the loop, soon. */
    if (up->tls && !up->tls_hs && up->tls_timer_on && tls_io_has_input(up->tls))
        uv_timer_start(&up->tls_timer, on_up_tls_timer, 0, 0);
    if (up->reading)
        return;
    if (uv_read_start((uv_stream_t *)&up->tcp, on_up_alloc, on_up_read) == 0)
        up->reading = 1;
}

void upstream_read_stop(upstream_t *up)
{
    if (up->state == UP_CLOSED || !up->reading)
        return;
    uv_read_stop((uv_stream_t *)&up->tcp);
    up->reading = 0;
}

static void on_connect(uv_connect_t *req, int status)
{
    upstream_t *up = req->data;

    if (up->state != UP_CONNECTING)
        return;  /* closed meanwhile (status is UV_ECANCELED) */
    uv_timer_stop(&up->timer);
    if (status == 0) {
        up->state = UP_ACTIVE;
        up->last_activity = uv_now(&up->w->loop);
        uv_tcp_nodelay(&up->tcp, 1);
    }
    txn_upstream_connected(up->txn, status);
}

upstream_t *upstream_connect(worker_t *w, const netaddr_t *addr, uint16_t port,
                             const char *key, txn_t *txn, int *err)
{
    struct sockaddr_storage ss;
    upstream_t *up;
    int rc;

    up = calloc(1, sizeof(*up));
    if (up == NULL) {
        *err = UV_ENOMEM;
        return NULL;
    }
    up->w = w;
    up->txn = txn;
    up->addr = *addr;
    up->port = port;
    snprintf(up->key, sizeof(up->key), "%s", key);
    netaddr_format(addr, up->addr_text, sizeof(up->addr_text));
    list_init(&up->pool_link);
    list_init(&up->lru_link);
    rc = uv_tcp_init(&w->loop, &up->tcp);
    if (rc < 0) {
        free(up);
        *err = rc;
        return NULL;
    }
    up->tcp.data = up;
    up->handles = 1;
    uv_timer_init(&w->loop, &up->timer);
    up->timer.data = up;
    up->handles++;
    up->connect_req.data = up;
    up->state = UP_CONNECTING;
    outq_init(&up->out, (uv_stream_t *)&up->tcp, on_up_write, up);
    netaddr_to_sockaddr(addr, port, &ss);
    rc = uv_tcp_connect(&up->connect_req, &up->tcp, (struct sockaddr *)&ss,
                        on_connect);
    if (rc < 0) {
        *err = rc;
        upstream_close(up);
        return NULL;
    }
    up_set_timer(up, txn->conf->connect_timeout);
    return up;
}

/* ---- the idle pool ------------------------------------------------------ */

static uint32_t key_hash(const char *s)
{
    uint32_t h = 2166136261u;

    for (; *s; s++) {
        h ^= (unsigned char)*s;
        h *= 16777619u;
    }
    return h;
}

upool_t *upool_new(worker_t *w)
{
    upool_t *p = calloc(1, sizeof(*p));

    if (p == NULL)
        return NULL;
    p->nbuckets = 256;
    p->buckets = calloc(p->nbuckets, sizeof(*p->buckets));
    if (p->buckets == NULL) {
        free(p);
        return NULL;
    }
    p->w = w;
    list_init(&p->lru);
    return p;
}

static upool_bucket_t *bucket_find(upool_t *p, const char *key, int create)
{
    unsigned i = key_hash(key) % p->nbuckets;
    upool_bucket_t *b;

    for (b = p->buckets[i]; b; b = b->next)
        if (strcmp(b->key, key) == 0)
            return b;
    if (!create)
        return NULL;
    b = calloc(1, sizeof(*b));
    if (b == NULL)
        return NULL;
    b->key = strdup(key);
    if (b->key == NULL) {
        free(b);
        return NULL;
    }
    list_init(&b->conns);
    b->next = p->buckets[i];
    p->buckets[i] = b;
    return b;
}

static void bucket_drop_if_empty(upool_t *p, upool_bucket_t *b)
{
    upool_bucket_t **pp;

    if (b->n > 0)
        return;
    for (pp = &p->buckets[key_hash(b->key) % p->nbuckets]; *pp; pp = &(*pp)->next) {
        if (*pp == b) {
            *pp = b->next;
            break;
        }
    }
    free(b->key);
    free(b);
}

static void upstream_unpool(upstream_t *up)
{
    upool_t *p = up->w->upool;
    upool_bucket_t *b = bucket_find(p, up->key, 0);

    list_remove(&up->pool_link);
    list_remove(&up->lru_link);
    p->n--;
    if (b) {
        b->n--;
        bucket_drop_if_empty(p, b);
    }
}

upstream_t *upool_take(upool_t *p, const char *key)
{
    upool_bucket_t *b = bucket_find(p, key, 0);
    upstream_t *up;

    if (b == NULL || list_empty(&b->conns))
        return NULL;
    /* The most recently used connection is the least likely to have been
     * closed by the server. */
    up = LIST_ENTRY(b->conns.prev, upstream_t, pool_link);
    upstream_unpool(up);
    up->state = UP_ACTIVE;
    up->reused = 1;
    up->got_bytes = 0;
    /* Reading stays on (no epoll change per request) and the caller
     * re-arms the timer when it sends. */
    return up;
}

void upool_put(upool_t *p, upstream_t *up)
{
    conf_t *conf = p->w->conf;
    upool_bucket_t *b;

    if (up->state != UP_ACTIVE || up->pending || p->w->draining ||
        conf->upstream_pool_size == 0 || conf->upstream_pool_per_host == 0) {
        upstream_close(up);
        return;
    }
    b = bucket_find(p, up->key, 1);
    if (b == NULL) {
        upstream_close(up);
        return;
    }
    if (b->n >= (unsigned)conf->upstream_pool_per_host) {
        upstream_t *old = LIST_ENTRY(b->conns.next, upstream_t, pool_link);
        upstream_close(old);
        b = bucket_find(p, up->key, 1);
        if (b == NULL) {
            upstream_close(up);
            return;
        }
    }
    while (p->n >= (unsigned)conf->upstream_pool_size && !list_empty(&p->lru)) {
        upstream_t *old = LIST_ENTRY(p->lru.next, upstream_t, lru_link);
        upstream_close(old);
        b = bucket_find(p, up->key, 1);
        if (b == NULL) {
            upstream_close(up);
            return;
        }
    }
    up->txn = NULL;
    up->state = UP_IDLE;
    up->idle_since = uv_now(&p->w->loop);
    up->flow_stopped = 0;
    /* An idle connection holds no buffer (slices may still be in flight to
     * a client; they keep their own reference). */
    iobuf_unref(up->in);
    up->in = NULL;
    list_insert_tail(&b->conns, &up->pool_link);
    list_insert_tail(&p->lru, &up->lru_link);
    b->n++;
    p->n++;
    /* Read while idle so a close by the server is noticed at once. */
    upstream_read_start(up);
    up_set_timer(up, conf->upstream_idle_timeout);
}

int upool_has(upool_t *p, const char *key)
{
    upool_bucket_t *b = bucket_find(p, key, 0);

    return b != NULL && !list_empty(&b->conns);
}

unsigned upool_count(const upool_t *p)
{
    return p->n;
}

void upool_free(upool_t *p)
{
    while (!list_empty(&p->lru)) {
        upstream_t *up = LIST_ENTRY(p->lru.next, upstream_t, lru_link);
        upstream_close(up);
    }
    free(p->buckets);
    free(p);
}
