/* upstream.h - connections to origin servers and the per-worker idle pool. */
#ifndef PC_UPSTREAM_H
#define PC_UPSTREAM_H

#include <llhttp.h>
#include <stdint.h>
#include <uv.h>

#include "iobuf.h"
#include "list.h"
#include "netaddr.h"
#include "worker.h"

struct txn;
struct tls_io;

enum upstream_state { UP_CONNECTING, UP_ACTIVE, UP_IDLE, UP_CLOSED };
enum upstream_pause { UPAUSE_NONE, UPAUSE_HEADERS, UPAUSE_COMPLETE };

typedef struct upstream {
    uv_tcp_t tcp;
    uv_timer_t timer;
    uv_connect_t connect_req;
    worker_t *w;
    struct txn *txn;          /* the owner while active */
    enum upstream_state state;
    netaddr_t addr;
    uint16_t port;
    char key[300];            /* pool key: "host:port" */
    char addr_text[NETADDR_STRLEN];
    llhttp_t parser;
    enum upstream_pause pause;
    iobuf_t *in;              /* the buffer being parsed (for slices) */
    iobuf_t *pending;         /* unparsed bytes held while paused */
    size_t pending_off, pending_len;
    outq_t out;
    int reading;
    int flow_stopped;
    int reused;               /* taken from the idle pool */
    int got_bytes;            /* any response byte arrived */
    int handles;
    uint64_t last_activity;
    uint64_t idle_since;
    unsigned requests;        /* served on this connection */
    list_t pool_link;         /* idle: per-key list */
    list_t lru_link;          /* idle: worker-wide LRU */

    /* TLS to the origin (intercepted HTTPS): reads are decrypted before
     * the response parser, up->out encrypts once the handshake is done. */
    struct tls_io *tls;       /* owned; freed with the connection */
    int tls_hs;               /* the handshake is running */
    uv_timer_t tls_timer;     /* decrypts buffered input after a pause */
    int tls_timer_on;         /* tls_timer is initialised */
    char *tls_fail;           /* why the handshake failed (malloc()ed) */

    /* A splice relay (splice.h) reading this socket: read notifications
     * go to it, and libuv reads nothing. */
    struct splice_dir *splice_rx;
} upstream_t;

typedef struct upool upool_t;

upool_t *upool_new(worker_t *w);
/* Closes every idle connection and frees the pool. */
void upool_free(upool_t *p);
/* Takes an idle connection for key, or NULL. */
upstream_t *upool_take(upool_t *p, const char *key);
/* Offers a connection whose response ended cleanly; closes it when the pool
 * is full or disabled. */
void upool_put(upool_t *p, upstream_t *up);
unsigned upool_count(const upool_t *p);
/* 1 when an idle connection for key is in the pool (nothing is taken). */
int upool_has(upool_t *p, const char *key);

/* Creates an upstream and starts connecting to addr:port. Returns NULL on
 * error with *err set to a UV error. */
upstream_t *upstream_connect(worker_t *w, const netaddr_t *addr, uint16_t port,
                             const char *key, struct txn *txn, int *err);
/* Closes; safe in any state; memory goes in the close callback. */
void upstream_close(upstream_t *up);
void upstream_read_start(upstream_t *up);
void upstream_read_stop(upstream_t *up);
void upstream_timer(upstream_t *up, uint64_t ms);

/* Starts a TLS client handshake on the connected upstream with session io
 * (tls_policy.h: tls_upstream_session(); the upstream owns it from now
 * on). It ends in txn_upstream_tls_done(up->txn, 0) with the chain and
 * name verified, or with -1 and the reason in up->tls_fail (a verification
 * error, a TLS failure, a close, or no answer within timeout_ms); that
 * call may come before this function returns. */
void upstream_tls_start(upstream_t *up, struct tls_io *io, uint64_t timeout_ms);

#endif
