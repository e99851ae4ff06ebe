/* mint.h - leaf certificates under the local CA, their SSL_CTXs, and the per-loop cache. */
#ifndef PC_MINT_H
#define PC_MINT_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <uv.h>

#include "ca.h"

/* ---- minting (core/mint.c) --------------------------------------------- */

/* The longest leaf validity: 397 days, the CA/Browser Forum limit for
 * server certificates since 2020 (Apple and Chromium enforce it even for
 * locally trusted roots in some versions). */
#define TLS_MINT_MAX_DAYS 397

/* The longest host name accepted (the text of a DNS name). */
#define TLS_MINT_HOST_MAX 253

/* Normalises host for minting and cache keys: a DNS name is lowercased and
 * loses one trailing dot; it must have 1..253 bytes in labels of 1..63
 * letters, digits, '-' and '_' ('*' is refused: no wildcard leaf is ever
 * made), and a last label that is not all digits ("127.1" is refused).
 * An IPv4 literal, or an IPv6 one with or without brackets, becomes
 * its canonical text and *is_ip is set. Writes the result to norm (at least
 * TLS_MINT_HOST_MAX + 1 bytes, INET6_ADDRSTRLEN fits). Returns 0, or -1
 * with a message. Thread-safe. */
int tls_mint_host(const char *host, char *norm, size_t normlen, int *is_ip, char *err,
                  size_t errlen);

/* Mints a leaf certificate for host (a DNS name or an IP literal, see
 * tls_mint_host()) under ca, with the CA's leaf key. Thread-safe: the CA is
 * only read. The leaf has
 *   - a random positive 127-bit serial;
 *   - subject CN = host (truncated to 64 bytes, ub-common-name), issuer =
 *     the CA's subject;
 *   - subjectAltName: one GENERAL_NAME, GEN_DNS with the name or GEN_IPADD
 *     with the 4 or 16 address bytes (never parsed from a formatted
 *     string). Only the requested host: the upstream's other names are not
 *     copied, so a forged leaf is never valid for more than the client
 *     asked for, and the cache key (the host) describes the leaf exactly;
 *   - extKeyUsage serverAuth; keyUsage (critical) digitalSignature, plus
 *     keyEncipherment for an RSA key; basicConstraints (critical) CA:FALSE;
 *     authorityKeyIdentifier = the CA's key id; subjectKeyIdentifier;
 *   - notBefore = now - 1 hour (clock skew), but not before the CA's
 *     notBefore; notAfter = the earliest of now + 397 days, the CA's
 *     notAfter and, when upstream is given, the upstream certificate's
 *     notAfter (the client never sees a certificate that outlives the real
 *     one; upstream is otherwise not used);
 *   - a SHA-256 signature by the CA.
 * Returns the leaf (X509_free), or NULL with a message in err (a bad host,
 * an empty validity window, OpenSSL out of memory). */
X509 *tls_mint_leaf(const tls_ca_t *ca, const char *host, const X509 *upstream, char *err,
                    size_t errlen);

/* Builds the server-side SSL_CTX that presents leaf (with the CA's leaf key
 * and the CA certificate as its chain) to an intercepted client:
 *   - TLS 1.2 and 1.3 only; TLS 1.3 with OpenSSL's default suites, TLS 1.2
 *     with ECDHE + AES-GCM or ChaCha20-Poly1305 only (ECDSA or RSA by the
 *     key); groups X25519, P-256, P-384; no renegotiation, no compression;
 *   - ALPN: selects "http/1.1" when the client offers it, otherwise no ALPN
 *     at all (never "h2": the data path speaks HTTP/1.1 to the client);
 *   - no server-side session cache (each entry would grow its own):
 *     resumption works through stateless session tickets.
 * Thread-safe. Returns the SSL_CTX (SSL_CTX_free; it holds its own
 * references to leaf and the keys), or NULL with a message. */
SSL_CTX *tls_mint_ctx(const tls_ca_t *ca, X509 *leaf, char *err, size_t errlen);

/* ---- the cache (core/mint_cache.c) ------------------------------------- */

/*
 * One cache per event loop (per worker); it is not thread-safe and all its
 * functions and callbacks run on that loop's thread. It maps host + CA
 * fingerprint to a ready SSL_CTX, most recently used first; past
 * max_entries the least recently used entry is dropped (connections still
 * using its SSL_CTX keep it alive through OpenSSL's reference count).
 *
 * A miss mints on libuv's thread pool (uv_queue_work): leaf and SSL_CTX are
 * both built there, nothing blocks the loop. Requests for a key that is
 * being minted wait for that mint (coalesced); each waiter gets its own
 * callback. An entry whose leaf expires within a day is minted again; so
 * is one whose leaf outlives the upstream certificate given with a request.
 * A waiter that joined a mint in flight gets that mint's result, whatever
 * upstream it passed.
 */

typedef struct mint_cache mint_cache_t;
typedef struct mint_req mint_req_t;

/* Delivers a mint: ctx is a new reference that the callee owns (SSL_new()
 * takes its own; SSL_CTX_free() this one), or NULL with err (valid during
 * the call only). Runs on the loop thread. */
typedef void (*mint_cb)(void *arg, SSL_CTX *ctx, const char *err);

typedef struct mint_cache_stats {
    uint64_t hits;       /* answered from the cache */
    uint64_t misses;     /* not in the cache (coalesced ones included) */
    uint64_t coalesced;  /* misses that joined a mint in flight */
    uint64_t mints;      /* mints completed with a certificate */
    uint64_t errors;     /* mints that failed */
    uint64_t evictions;  /* entries dropped for room (not by purge or age) */
    uint64_t cancelled;  /* waiters cancelled */
    size_t entries;      /* entries now */
    size_t pending;      /* mints in flight now */
} mint_cache_stats_t;

/* Makes a cache on loop holding at most max_entries SSL_CTXs (0: 1024).
 * Returns NULL when out of memory. */
mint_cache_t *mint_cache_new(uv_loop_t *loop, size_t max_entries);

/* Gets the SSL_CTX for host under ca (see tls_mint_leaf() for host and
 * upstream; upstream may be NULL, and the cache takes its own reference).
 * Returns
 *    1  a hit: *ctx is a new reference (SSL_CTX_free), cb is not called;
 *    0  a mint is under way: cb(arg, ...) will be called once, later, from
 *       the loop, unless mint_req_cancel(*req) is called first. *req stays
 *       valid until the callback starts or the cancel;
 *   -1  host is invalid or out of memory: message in err, cb not called. */
int mint_cache_get(mint_cache_t *c, tls_ca_t *ca, const char *host, const X509 *upstream,
                   SSL_CTX **ctx, mint_cb cb, void *arg, mint_req_t **req, char *err,
                   size_t errlen);

/* Withdraws a waiting request: its callback is never called; req is freed.
 * The mint itself goes on (other waiters, and the cache, still want it). */
void mint_req_cancel(mint_req_t *req);

/* After a CA change: drops every entry whose fingerprint is not keep's
 * (keep NULL drops all). Mints in flight for another CA still deliver to
 * their waiters but are not cached. */
void mint_cache_purge(mint_cache_t *c, const tls_ca_t *keep);

void mint_cache_get_stats(const mint_cache_t *c, mint_cache_stats_t *out);

/* Frees the cache: entries are dropped and waiters are withdrawn (no
 * callback is called after this, even from inside a callback). Mints
 * still running on the pool finish first; the memory goes with the last
 * of them, so the loop must run until then (uv_run() returns when it has:
 * their requests keep it alive). NULL is a no-op. */
void mint_cache_free(mint_cache_t *c);

#endif
