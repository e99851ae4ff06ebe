/* tls_session.h - the per-worker cache of TLS sessions to origins, so a new verified upstream connection resumes instead of a full handshake. */
#ifndef PC_TLS_SESSION_H
#define PC_TLS_SESSION_H

#include <stddef.h>

#include <openssl/ssl.h>

/*
 * An intercepted tunnel needs a new TLS connection to its origin, and a
 * full handshake costs the proxy most of a tunnel's CPU (the origin's
 * certificate decoded and verified, a signature checked). Origins hand out
 * sessions (TLS 1.3 tickets, RFC 8446 section 4.6.1; TLS 1.2 session ids
 * or tickets); resuming one skips all of that.
 *
 * Safety: a session is only stored from a handshake whose chain and name
 * were verified (a failed verification ends the handshake before any
 * session exists), and only taken for the same key: the name verified, the
 * SNI sent and the port. A resumed session carries the verified result of
 * the handshake that made it. The cache is emptied when the configuration
 * (and so the trust store) changes.
 *
 * One cache per worker, used on its loop thread only. TLS 1.3 tickets are
 * used once while there are others (RFC 8446 appendix C.4: each resumed
 * connection brings fresh ones); the last one of an origin is used again
 * until a fresh one arrives, so a burst of new tunnels does not fall back
 * to full handshakes. That links connections only for the origin, and they
 * all come from the proxy anyway.
 */

typedef struct tls_sess_cache tls_sess_cache_t;

/* A cache for at most max_keys origins (0: 1024). NULL when out of memory. */
tls_sess_cache_t *tls_sess_cache_new(size_t max_keys);
/* Frees the cache and its sessions. NULL is a no-op. */
void tls_sess_cache_free(tls_sess_cache_t *c);
/* Drops every session (the trust store may have changed). */
void tls_sess_cache_clear(tls_sess_cache_t *c);

/* Writes the key of an origin into buf. */
void tls_sess_key(char *buf, size_t len, const char *verify_name, const char *sni,
                  unsigned port);
/* Takes the newest session stored for key (the caller owns a reference:
 * SSL_set_session(), then SSL_SESSION_free()), or NULL. The last one of a
 * key stays in the cache as well. */
SSL_SESSION *tls_sess_take(tls_sess_cache_t *c, const char *key);
/* Stores sess under key, taking over the caller's reference; the oldest
 * sessions of the key, or the least recently used key, make room. */
void tls_sess_put(tls_sess_cache_t *c, const char *key, SSL_SESSION *sess);

#endif
