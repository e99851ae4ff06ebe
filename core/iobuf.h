/* iobuf.h - reference-counted I/O buffers and queued writes with flow control. */
#ifndef PC_IOBUF_H
#define PC_IOBUF_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

/* Size of one read buffer. Large bodies move in reads of this size and are
 * written on without copying, so it is also the unit of forwarding. */
#define IOBUF_SIZE (64 * 1024)

typedef struct iobuf_pool iobuf_pool_t;

/* A buffer that reads land in. Writes that forward a slice of it take a
 * reference, so it is reused or freed only after the last write completed. */
typedef struct iobuf {
    unsigned refs;
    iobuf_pool_t *pool;  /* per-loop free list it returns to */
    struct iobuf *next;  /* free list link */
    size_t cap;
    char data[];
} iobuf_t;

/* A per-loop free list of iobufs (not thread-safe: one per worker). */
struct iobuf_pool {
    iobuf_t *free;
    unsigned nfree;
    unsigned max_free;
};

void iobuf_pool_init(iobuf_pool_t *pool, unsigned max_free);
void iobuf_pool_drain(iobuf_pool_t *pool);
/* Returns a buffer with one reference, or NULL when out of memory. */
iobuf_t *iobuf_new(iobuf_pool_t *pool);
iobuf_t *iobuf_ref(iobuf_t *b);
void iobuf_unref(iobuf_t *b);

/*
 * An output queue on one stream. Writes may be plain copies (headers, error
 * pages) or slices of iobufs (forwarded bodies). `pending` counts bytes
 * handed to libuv and not yet written; the owner compares it with
 * OUTQ_HIGH/OUTQ_LOW to stop and restart reading the other side.
 */
#define OUTQ_HIGH (512 * 1024)
#define OUTQ_LOW (128 * 1024)

typedef struct outq outq_t;
/* Called after each completed queued write with the status (0 or a UV
 * error). Bytes the kernel took at once never reach the queue. */
typedef void (*outq_cb)(outq_t *q, int status);

#define OUTQ_CORK_MAX 16

/* One buffer of a corked batch: a slice of an iobuf (ref) or owned memory. */
typedef struct outq_piece {
    uv_buf_t buf;
    iobuf_t *ref;
    char *owned;
} outq_piece_t;

struct tls_io;

struct outq {
    uv_stream_t *stream;
    struct tls_io *tls;  /* when set, everything queued is encrypted first
                          * (pending and written then count ciphertext) */
    size_t pending;      /* bytes queued in libuv */
    uint64_t written;    /* bytes the kernel accepted */
    outq_cb on_write;    /* may be NULL */
    void *data;
    int corked;          /* collecting pieces for one writev */
    int ncork;
    outq_piece_t cork[OUTQ_CORK_MAX];
};

void outq_init(outq_t *q, uv_stream_t *stream, outq_cb on_write, void *data);
/* Queues a copy of len bytes. Returns 0 or a negative UV error. */
int outq_copy(outq_t *q, const void *p, size_t len);
/* Queues the slice [p, p+len) of buffer b without copying; b is referenced
 * until the write completes. With chunk set, the slice goes out as one
 * HTTP/1.1 chunk (size line, data, CRLF). Returns 0 or a negative UV error. */
int outq_slice(outq_t *q, iobuf_t *b, const char *p, size_t len, int chunk);

/*
 * Writes go straight to the kernel when nothing is queued (uv_try_write:
 * no request, no allocation, no poll change); only what the kernel does not
 * take waits in libuv. Between outq_cork() and outq_uncork() pieces are
 * collected and leave in one writev, so a response head and the first body
 * bytes cost one system call. outq_uncork returns 0 or a negative UV error.
 */
void outq_cork(outq_t *q);
int outq_uncork(outq_t *q);
/* Drops corked pieces without writing (the stream is closing). */
void outq_discard(outq_t *q);

/*
 * TLS: once q->tls is set (the owner sets it after the handshake, and
 * clears it never), outq_copy() and outq_slice() encrypt the bytes (a copy
 * through OpenSSL, so a slice keeps no reference) and write the ciphertext;
 * between cork and uncork the ciphertext collects in the session and
 * leaves in one write. outq_tls_flush() writes what the session produced
 * on its own (handshake messages, alerts, close_notify); it works before
 * q->tls is set too. Returns 0 or a negative UV error.
 */
int outq_tls_flush(outq_t *q, struct tls_io *io);

#endif
