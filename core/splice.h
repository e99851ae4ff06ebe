/* splice.h - zero-copy relay of one direction between two sockets with splice(2). */
#ifndef PC_SPLICE_H
#define PC_SPLICE_H

#include <stdint.h>
#include <uv.h>

#include "worker.h"

/*
 * Bytes move socket -> pipe -> socket inside the kernel, never through a
 * user-space buffer. The relay owns neither socket: the owner (tunnel.c,
 * txn.c) guarantees that while it runs nothing else reads the source or
 * writes the destination (no uv_write pending on it, outq empty), routes
 * the source's read notifications here (its alloc callback hands libuv an
 * empty buffer, so libuv calls read_cb with UV_ENOBUFS without reading:
 * splice_readable()), and lets the relay start and stop those
 * notifications through ops->read_ctl.
 *
 * Writability of the destination comes from a uv_poll_t on a dup() of its
 * descriptor: libuv keys its watchers by descriptor number, so the dup
 * registers apart from the stream's own watcher. It is armed only while
 * bytes wait in the pipe.
 */

typedef struct splice_dir splice_dir_t;

typedef struct splice_ops {
    /* Turn read notifications of the source on (1) or off (0). */
    void (*read_ctl)(splice_dir_t *d, int on);
    /* Progress: n bytes came from the source (dir 0) or reached the
     * destination (dir 1). Must not end the relay. */
    void (*progress)(splice_dir_t *d, int dir, size_t n);
    /* The relay stopped moving bytes, with the pipe empty: status 0 when
     * the limit was reached, UV_EOF when the source ended first, or a
     * negative UV error (of the destination when d->failed_dst is set).
     * The callee may free d (splice_dir_free). */
    void (*done)(splice_dir_t *d, int status);
} splice_ops_t;

struct splice_dir {
    worker_t *w;
    int src_fd, dst_fd;
    int pipe[2];              /* -1 until the first splice */
    size_t cap;               /* pipe capacity */
    size_t held;              /* bytes in the pipe */
    uint64_t left;            /* bytes still to take from the source */
    int pipe_full;            /* the last splice into the pipe found no room */
    int src_eof;              /* the source said EOF */
    int moved;                /* bytes reached the destination */
    int failed_dst;           /* done() with an error of the destination */
    int reading;              /* read notifications on (read_ctl), -1 unknown */
    int ended;                /* done() was called */
    int in_pump;
    int dup_fd;               /* dup of dst_fd until wpoll owns it, or -1 */
    struct splice_wpoll *wpoll;  /* writability of that dup, or NULL */
    int wpoll_on;
    const splice_ops_t *ops;
    void *data;
};

/* 1 when splice relays may be tried on this worker (not found unsupported). */
int splice_usable(worker_t *w);

/* Starts relaying at most limit bytes (UINT64_MAX: until EOF) from src to
 * dst. Returns a relay (freed with splice_dir_free) or NULL when no pipe
 * can be had: the caller copies as before. The first splice may still
 * find the sockets unsupported: then done() comes with UV_ENOSYS and no
 * byte moved, and the caller falls back to copying. */
splice_dir_t *splice_dir_start(worker_t *w, uv_tcp_t *src, uv_tcp_t *dst, uint64_t limit,
                               const splice_ops_t *ops, void *data);
/* The source is readable (its read_cb got UV_ENOBUFS). */
void splice_readable(splice_dir_t *d);
/* 1 while bytes wait for the destination to take them. */
int splice_dir_blocked(const splice_dir_t *d);
/* Stops the relay: the poll handle closed (reading is left as it is), the pipe
 * back to the worker's pool when empty or closed with what it holds (the
 * connection is going away then). Safe with NULL. */
void splice_dir_free(splice_dir_t *d);
/* Closes the worker's pooled pipes (worker shutdown). */
void splice_worker_free(worker_t *w);

#endif
