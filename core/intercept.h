/* intercept.h - HTTPS on CONNECT: the ClientHello peek, SNI policy, and TLS interception with minted certificates. */
#ifndef PC_INTERCEPT_H
#define PC_INTERCEPT_H

#include "iobuf.h"
#include "url.h"

struct txn;
struct client;

/*
 * After "200 Connection established" the CONNECT transaction reads the
 * client's first bytes (the client is in CL_PEEK) and decides, in this
 * order (docs/https.md, "How interception works"):
 *
 *   1. not TLS: refused on connect_require_tls ports, else spliced (also
 *      when the client says nothing within tls_peek_timeout, or the server
 *      speaks first: server-first protocols);
 *   2. the SNI and the CONNECT host disagree (domain fronting):
 *      sni_mismatch block (the default) blocks;
 *   3. PC_HOOK_TLS_SNI: plugins see both names and may block or defer;
 *   4. intercept or splice (tls_intercept_decide());
 *   5. interception: a verified TLS handshake with the origin, then a leaf
 *      from the mint cache, then the handshake with the client, fed with
 *      the ClientHello that was peeked. The client connection then carries
 *      HTTP requests inside TLS (client_tls_begin()).
 *
 * A block after the 200 shows the block page over TLS when the client may
 * be intercepted (a leaf is minted for the page alone; no upstream content
 * ever goes through it), else ends the tunnel with a TLS alert.
 */

/* What an intercepted connection serves. */
enum client_tls_mode {
    CTLS_PASS,        /* requests go to the origin, through the hooks */
    CTLS_BLOCK,       /* the tunnel was blocked: every request gets the page */
    CTLS_CERT_ERROR,  /* the origin's certificate failed: every request gets
                       * 502 ERR_UPSTREAM_CERT */
};

/* Kept by the client connection (c->tlsc) for the requests inside. */
typedef struct client_tls {
    enum client_tls_mode mode;
    url_t url;                 /* https, the tunnel's host (the SNI, else the
                                * CONNECT host) and the CONNECT port */
    char *sni;                 /* the client's SNI, or NULL */
    const char *block_plugin;  /* CTLS_BLOCK: who blocked (a static name) */
    int block_status;
    char *block_reason;
    char *block_category;
    char *error;               /* CTLS_CERT_ERROR: what failed */
} client_tls_t;

/* tunnel.c: the CONNECT was answered with 200; read the ClientHello. */
void intercept_peek_start(struct txn *t);
/* tunnel.c: the CONNECT hooks let it pass. Returns 0 when the tunnel can do
 * without a new upstream connection (a client that may be intercepted, a
 * port that requires TLS, and a verified idle connection to the site in
 * the pool: the site is reachable) and the 200 was sent; -1 when the
 * caller connects as usual. */
int intercept_pool_shortcut(struct txn *t);
/* tunnel.c: a connection made after the 200 (the shortcut's site turned
 * out to need one) is up. */
void intercept_connected(struct txn *t);
/* tunnel.c: a CONNECT hook blocked. Returns 0 when the block will be shown
 * inside an interception (the 200 was sent), -1 when the caller answers
 * the CONNECT with the block page as usual. */
int intercept_block_connect(struct txn *t);
/* client.c, while CL_PEEK: new bytes in c->in, an end, the deadline. */
void intercept_client_data(struct txn *t);
void intercept_client_eof(struct txn *t, int status);
void intercept_timeout(struct txn *t);
/* tunnel.c, while CL_PEEK: the server sent bytes first / closed. */
void intercept_upstream_data(struct txn *t, iobuf_t *b, const char *p, size_t len);
void intercept_upstream_eof(struct txn *t, int status);
/* txn.c: the upstream handshake of the CONNECT ended (0 ok, -1 failed). */
void intercept_upstream_done(struct txn *t, int status);
/* txn.c: the CONNECT transaction ends; cancels what is in flight. */
void intercept_txn_end(struct txn *t);

/* txn.c, for each request inside an intercepted connection: makes
 * t->target the absolute https URL, checking that the request is for the
 * tunnel's site (RFC 9110 7.4: a Host naming another site gets 421 unless
 * sni_mismatch allow). Returns 0 to go on, or -1 when the request was
 * answered (refused, blocked, a certificate error page). */
int intercept_request_target(struct txn *t);

/* Frees what a client connection kept. NULL is a no-op. */
void intercept_client_free(client_tls_t *ct);

#endif
