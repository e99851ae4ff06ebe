/* iobuf.c - reference-counted I/O buffers and queued writes with flow control. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "iobuf.h"
#include "tls_io.h"

void iobuf_pool_init(iobuf_pool_t *pool, unsigned max_free)
{
    pool->free = NULL;
    pool->nfree = 0;
    pool->max_free = max_free;
}

void iobuf_pool_drain(iobuf_pool_t *pool)
{
    while (pool->free) {
        iobuf_t *b = pool->free;
        pool->free = b->next;
        free(b);
    }
    pool->nfree = 0;
}

iobuf_t *iobuf_new(iobuf_pool_t *pool)
{
    iobuf_t *b = pool->free;

    if (b) {
        pool->free = b->next;
        pool->nfree--;
    } else {
        b = malloc(sizeof(*b) + IOBUF_SIZE);
        if (b == NULL)
            return NULL;
        b->cap = IOBUF_SIZE;
        b->pool = pool;
    }
    b->refs = 1;
    b->next = NULL;
    return b;
}

iobuf_t *iobuf_ref(iobuf_t *b)
{
    b->refs++;
    return b;
}

void iobuf_unref(iobuf_t *b)
{
    if (b == NULL || --b->refs > 0)
        return;
    if (b->pool->nfree < b->pool->max_free) {
        b->next = b->pool->free;
        b->pool->free = b;
        b->pool->nfree++;
        return;
    }
    free(b);
}

/* One uv_write of the pieces the kernel did not take at once. */
typedef struct outq_req {
    uv_write_t req;
    outq_t *q;
    size_t len;
    int n;
    outq_piece_t pieces[];
} outq_req_t;

void outq_init(outq_t *q, uv_stream_t *stream, outq_cb on_write, void *data)
{
    memset(q, 0, sizeof(*q));
    q->stream = stream;
    q->on_write = on_write;
    q->data = data;
}

static void pieces_release(outq_piece_t *pc, int n)
{
    for (int i = 0; i < n; i++) {
        iobuf_unref(pc[i].ref);
        free(pc[i].owned);
        pc[i].ref = NULL;
        pc[i].owned = NULL;
    }
}

/* libuv calls this for every write, also with UV_ECANCELED when the stream is
 * closed first; the stream's owner frees the queue only in its close
 * callback, which runs after these. */
static void outq_done(uv_write_t *req, int status)
{
    outq_req_t *r = (outq_req_t *)req;
    outq_t *q = r->q;

    q->pending -= r->len;
    if (status == 0)
        q->written += r->len;
    pieces_release(r->pieces, r->n);
    free(r);
    if (q->on_write)
        q->on_write(q, status);
}

/* Writes n pieces: as much as the kernel takes now, the rest queued. The
 * pieces' references move to the queued request (or are released).
 * Returns 0 or a negative UV error. */
static int outq_send(outq_t *q, outq_piece_t *pc, int n)
{
    uv_buf_t bufs[OUTQ_CORK_MAX + 3];
    size_t total = 0, sent = 0;
    int first = 0, rc;
    outq_req_t *r;

    for (int i = 0; i < n; i++) {
        bufs[i] = pc[i].buf;
        total += pc[i].buf.len;
    }
    if (total == 0) {
        pieces_release(pc, n);
        return 0;
    }
    rc = uv_try_write(q->stream, bufs, (unsigned)n);
    if (rc > 0) {
        sent = (size_t)rc;
        q->written += sent;
    } else if (rc != UV_EAGAIN && rc != UV_ENOSYS) {
        pieces_release(pc, n);
        return rc;
    }
    if (sent == total) {
        pieces_release(pc, n);
        return 0;
    }
    /* Skip what went out; the first partial piece keeps its tail. */
    while (first < n && sent >= bufs[first].len) {
        sent -= bufs[first].len;
        first++;
    }
    bufs[first].base += sent;
    bufs[first].len -= (unsigned)sent;
    r = malloc(sizeof(*r) + (size_t)(n - first) * sizeof(outq_piece_t));
    if (r == NULL) {
        pieces_release(pc, n);
        return UV_ENOMEM;
    }
    r->q = q;
    r->n = n - first;
    r->len = 0;
    for (int i = first; i < n; i++) {
        r->pieces[i - first] = pc[i];
        r->pieces[i - first].buf = bufs[i];
        r->len += bufs[i].len;
    }
    pieces_release(pc, first);
    rc = uv_write(&r->req, q->stream, bufs + first, (unsigned)(n - first), outq_done);
    if (rc < 0) {
        pieces_release(r->pieces, r->n);
        free(r);
        return rc;
    }
    q->pending += r->len;
    return 0;
}

/* Adds pieces to the cork, flushing first when they would not fit. */
static int outq_add(outq_t *q, outq_piece_t *pc, int n)
{
    if (!q->corked)
        return outq_send(q, pc, n);
    if (q->ncork + n > OUTQ_CORK_MAX) {
        int rc = outq_uncork(q);
        q->corked = 1;
        if (rc < 0) {
            pieces_release(pc, n);
            return rc;
        }
    }
    for (int i = 0; i < n; i++)
        q->cork[q->ncork++] = pc[i];
    return 0;
}

int outq_tls_flush(outq_t *q, tls_io_t *io)
{
    outq_piece_t pc;
    size_t n = tls_io_pending(io);

    if (n == 0)
        return 0;
    if (uv_is_closing((uv_handle_t *)q->stream))
        return UV_ECANCELED;
    memset(&pc, 0, sizeof(pc));
    pc.owned = malloc(n);
    if (pc.owned == NULL)
        return UV_ENOMEM;
    n = tls_io_take(io, pc.owned, n);
    pc.buf = uv_buf_init(pc.owned, (unsigned)n);
    /* Straight to outq_send (the kernel first), never into the cork: the
     * cork of a TLS queue is the session itself. */
    return outq_send(q, &pc, 1);
}

/* Encrypts len bytes; sends the ciphertext unless corked. */
static int outq_tls_put(outq_t *q, const void *p, size_t len)
{
    if (tls_io_write(q->tls, p, len) < 0)
        return UV_EPROTO;
    if (q->corked)
        return 0;
    return outq_tls_flush(q, q->tls);
}

int outq_copy(outq_t *q, const void *p, size_t len)
{
    outq_piece_t pc;

    if (len == 0)
        return 0;
    if (q->tls)
        return outq_tls_put(q, p, len);
    memset(&pc, 0, sizeof(pc));
    if (!q->corked && q->pending == 0) {
        /* Straight to the kernel; copy only what it leaves. */
        uv_buf_t b = uv_buf_init((char *)p, (unsigned)len);
        int rc = uv_try_write(q->stream, &b, 1);
        if (rc == (int)len) {
            q->written += len;
            return 0;
        }
        if (rc < 0 && rc != UV_EAGAIN && rc != UV_ENOSYS)
            return rc;
        if (rc > 0) {
            q->written += (size_t)rc;
            p = (const char *)p + rc;
            len -= (size_t)rc;
        }
    }
    pc.owned = malloc(len);
    if (pc.owned == NULL)
        return UV_ENOMEM;
    memcpy(pc.owned, p, len);
    pc.buf = uv_buf_init(pc.owned, (unsigned)len);
    return outq_add(q, &pc, 1);
}

int outq_slice(outq_t *q, iobuf_t *b, const char *p, size_t len, int chunk)
{
    outq_piece_t pc[3];
    int n = 0;

    if (len == 0)
        return 0;
    if (q->tls) {
        char hdr[24];
        int hl, rc = 0, corked = q->corked;
        /* One flush for the three parts of a chunk. */
        q->corked = 1;
        if (chunk) {
            hl = snprintf(hdr, sizeof(hdr), "%zx\r\n", len);
            rc = outq_tls_put(q, hdr, (size_t)hl);
        }
        if (rc == 0)
            rc = outq_tls_put(q, p, len);
        if (rc == 0 && chunk)
            rc = outq_tls_put(q, "\r\n", 2);
        q->corked = corked;
        if (rc == 0 && !corked)
            rc = outq_tls_flush(q, q->tls);
        return rc;
    }
    memset(pc, 0, sizeof(pc));
    if (chunk) {
        char hdr[24];
        int hl = snprintf(hdr, sizeof(hdr), "%zx\r\n", len);
        pc[n].owned = malloc((size_t)hl);
        if (pc[n].owned == NULL)
            return UV_ENOMEM;
        memcpy(pc[n].owned, hdr, (size_t)hl);
        pc[n].buf = uv_buf_init(pc[n].owned, (unsigned)hl);
        n++;
    }
    pc[n].ref = iobuf_ref(b);
    pc[n].buf = uv_buf_init((char *)p, (unsigned)len);
    n++;
    if (chunk)
        pc[n++].buf = uv_buf_init((char *)"\r\n", 2);
    return outq_add(q, pc, n);
}

void outq_cork(outq_t *q)
{
    q->corked = 1;
}

int outq_uncork(outq_t *q)
{
    int n = q->ncork;

    q->corked = 0;
    q->ncork = 0;
    if (q->tls && n == 0)
        return outq_tls_flush(q, q->tls);
    if (n == 0)
        return 0;
    if (uv_is_closing((uv_handle_t *)q->stream)) {
        pieces_release(q->cork, n);
        return UV_ECANCELED;
    }
    {
        int rc = outq_send(q, q->cork, n);
        if (rc == 0 && q->tls)
            rc = outq_tls_flush(q, q->tls);
        return rc;
    }
}

void outq_discard(outq_t *q)
{
    pieces_release(q->cork, q->ncork);
    q->ncork = 0;
    q->corked = 0;
}
