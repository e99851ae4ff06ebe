/* iobuf.c - reference-counted I/O buffers and queued writes with flow control. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "iobuf.h"

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

/* One uv_write: either an owned copy (data[]) or a referenced slice. */
typedef struct outq_req {
    uv_write_t req;
    outq_t *q;
    size_t len;
    iobuf_t *ref;
    char chunk_hdr[24];
    char data[];
} outq_req_t;

void outq_init(outq_t *q, uv_stream_t *stream, outq_cb on_write, void *data)
{
    q->stream = stream;
    q->pending = 0;
    q->written = 0;
    q->on_write = on_write;
    q->data = data;
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
    if (r->ref)
        iobuf_unref(r->ref);
    free(r);
    if (q->on_write)
        q->on_write(q, status);
}

int outq_copy(outq_t *q, const void *p, size_t len)
{
    outq_req_t *r;
    uv_buf_t buf;
    int rc;

    if (len == 0)
        return 0;
    r = malloc(sizeof(*r) + len);
    if (r == NULL)
        return UV_ENOMEM;
    memcpy(r->data, p, len);
    r->q = q;
    r->len = len;
    r->ref = NULL;
    buf = uv_buf_init(r->data, (unsigned)len);
    rc = uv_write(&r->req, q->stream, &buf, 1, outq_done);
    if (rc < 0) {
        free(r);
        return rc;
    }
    q->pending += len;
    return 0;
}

int outq_slice(outq_t *q, iobuf_t *b, const char *p, size_t len, int chunk)
{
    outq_req_t *r;
    uv_buf_t bufs[3];
    unsigned n = 0;
    size_t total = len;
    int rc;

    if (len == 0)
        return 0;
    r = malloc(sizeof(*r));
    if (r == NULL)
        return UV_ENOMEM;
    if (chunk) {
        int hl = snprintf(r->chunk_hdr, sizeof(r->chunk_hdr), "%zx\r\n", len);
        bufs[n++] = uv_buf_init(r->chunk_hdr, (unsigned)hl);
        total += (size_t)hl + 2;
    }
    bufs[n++] = uv_buf_init((char *)p, (unsigned)len);
    if (chunk)
        bufs[n++] = uv_buf_init((char *)"\r\n", 2);
    r->q = q;
    r->len = total;
    r->ref = iobuf_ref(b);
    rc = uv_write(&r->req, q->stream, bufs, n, outq_done);
    if (rc < 0) {
        iobuf_unref(b);
        free(r);
        return rc;
    }
    q->pending += total;
    return 0;
}
