/* tls_io.h - one TLS session over memory BIOs: the caller moves the ciphertext, so libuv keeps owning the socket. */
#ifndef PC_TLS_IO_H
#define PC_TLS_IO_H

#include <stddef.h>

#include <openssl/ssl.h>

/*
 * A client or upstream connection that speaks TLS keeps reading and writing
 * its socket through libuv as before; only the bytes change. What the
 * socket delivers is fed in with tls_io_feed() and comes out as plaintext
 * from tls_io_read(); plaintext given to tls_io_write() (or produced by a
 * handshake step, an alert, a close_notify) waits in the write BIO until
 * the owner takes it with tls_io_take() and queues it on the socket (the
 * output queue does this: iobuf.h, outq_t.tls). Nothing here blocks or
 * touches a socket; one tls_io_t belongs to one loop thread.
 */

typedef struct tls_io {
    SSL *ssl;
    BIO *rbio;       /* ciphertext received, for OpenSSL to read */
    BIO *wbio;       /* ciphertext OpenSSL wrote, for the owner to send */
    int done;        /* the handshake completed */
    int eof;         /* the peer sent close_notify */
    int failed;      /* a fatal error: the session is unusable */
    struct tls_sess_cache *sess_cache;  /* client sessions: where the origin's
                                         * tickets go (tls_session.h), or NULL */
    char *sess_key;  /* their key there (malloc()ed) */
} tls_io_t;

/* Results of tls_io_handshake() and tls_io_read(). */
enum {
    TLS_IO_OK = 1,      /* done / *n bytes of plaintext */
    TLS_IO_WANT = 0,    /* needs more ciphertext from the peer */
    TLS_IO_EOF = -2,    /* the peer closed the session (close_notify) */
    TLS_IO_ERROR = -1,  /* failed; tls_io_error() says why */
};

/* A session of ctx, as the server (server 1: accepts a handshake) or the
 * client. Returns it, or NULL when out of memory. The caller sets what the
 * session needs (SNI, verification) on io->ssl before the first step. */
tls_io_t *tls_io_new(SSL_CTX *ctx, int server);
/* Frees the session (no close_notify: see tls_io_close). NULL is a no-op. */
void tls_io_free(tls_io_t *io);

/* Hands ciphertext from the peer over (copied). Returns 0 or -1. */
int tls_io_feed(tls_io_t *io, const void *p, size_t len);
/* Runs the handshake as far as the ciphertext fed so far allows. Returns
 * TLS_IO_OK when it is complete, TLS_IO_WANT, or TLS_IO_ERROR. Either way
 * there may be output to send (tls_io_pending). */
int tls_io_handshake(tls_io_t *io);
/* Decrypts up to cap bytes into buf. Returns TLS_IO_OK with *n > 0,
 * TLS_IO_WANT (everything fed has been used: a post-handshake message such
 * as a session ticket may have been consumed), TLS_IO_EOF or TLS_IO_ERROR. */
int tls_io_read(tls_io_t *io, void *buf, size_t cap, size_t *n);
/* 1 when plaintext or unread ciphertext is buffered inside: reading it
 * needs no new bytes from the socket. */
int tls_io_has_input(const tls_io_t *io);
/* Encrypts len bytes of plaintext (after the handshake). Returns 0 or -1. */
int tls_io_write(tls_io_t *io, const void *p, size_t len);
/* Queues a close_notify alert (once; no-op before the handshake). */
void tls_io_close(tls_io_t *io);

/* Bytes of ciphertext waiting to be sent. */
size_t tls_io_pending(const tls_io_t *io);
/* Moves up to cap bytes of the waiting ciphertext into buf; returns how
 * many. */
size_t tls_io_take(tls_io_t *io, void *buf, size_t cap);

/* Why the session failed: the first OpenSSL error of this thread's queue,
 * or a generic phrase; clears the queue. Returns buf. */
const char *tls_io_error(char *buf, size_t len);

/* Writes a fatal TLS alert record (RFC 8446 section 6) with description
 * desc (40 handshake_failure, 49 access_denied, ...) into out[7]; for a
 * peer that gets no session at all (a refused ClientHello). */
void tls_alert_record(unsigned char out[7], int desc);

#define TLS_ALERT_HANDSHAKE_FAILURE 40
#define TLS_ALERT_ACCESS_DENIED 49

#endif
