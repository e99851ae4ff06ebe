/* tls_policy.h - the TLS state of a configuration snapshot (CA, upstream client context, no-intercept set) and the interception decision. */
#ifndef PC_TLS_POLICY_H
#define PC_TLS_POLICY_H

#include <stddef.h>
#include <stdint.h>

#include <openssl/ssl.h>

#include "ca.h"
#include "conf.h"
#include "netaddr.h"
#include "tls_io.h"

/*
 * Built once per configuration load on the main thread (server_load_conf),
 * so `portcullis -t`, start and reload all check the same things, and a
 * reload that cannot load the CA changes nothing. Immutable afterwards and
 * shared by every worker through the snapshot (conf->tls); each worker's
 * mint cache purges leaves of a CA whose fingerprint is no longer the
 * snapshot's.
 */
typedef struct tls_snap {
    tls_ca_t *ca;              /* NULL when no client may be intercepted */
    SSL_CTX *upstream_ctx;     /* TLS to origins: TLS 1.2+, ALPN http/1.1,
                                * verification against the system store and
                                * upstream_ca_file (NULL without a CA) */
    char **no_intercept;       /* normalised entries, sorted (bsearch) */
    size_t nno_intercept;
} tls_snap_t;

/* Checks the TLS directives (tls_conf_check: the CA when intercept is on
 * anywhere, upstream_ca_file, no_intercept) and attaches the snapshot's TLS
 * state to conf (conf->tls, freed with conf). Returns 0, or -1 with
 * "FILE:LINE: message" in err. */
int tls_snap_attach(conf_t *conf, char *err, size_t errlen);

/* The TLS state of conf; never NULL after tls_snap_attach(). */
static inline const tls_snap_t *tls_snap_of(const conf_t *conf)
{
    return (const tls_snap_t *)conf->tls;
}

/* 1 when host (normalised) is a no_intercept entry or under one: the match
 * is on label boundaries, so "bank.example" covers "www.bank.example" but
 * not "notbank.example". */
int tls_no_intercept_has(const tls_snap_t *s, const char *host);

/* 1 when CONNECTs to port must carry TLS (connect_require_tls). */
int tls_port_requires_tls(const conf_t *conf, uint16_t port);

/* Decides whether to intercept a tunnel of client to host (the SNI, or the
 * CONNECT host when sni is NULL): no CA means no; a no_intercept entry
 * (for the SNI or the CONNECT host) means no, whatever else says; then a
 * plugin's txn_intercept() vote (0 or 1; -1 for none); then the client's
 * policy; then the global intercept. Returns 1 or 0; *why names what
 * decided. */
int tls_intercept_decide(const conf_t *conf, const netaddr_t *client, const char *sni,
                         const char *connect_host, int vote, const char **why);

/* A client session to an origin on port: SNI sni (NULL: none), and the
 * chain verified for verify_name (a DNS name, or an IP literal when
 * is_ip). With sessions (the worker's cache, or NULL) it resumes a session
 * of an earlier verified handshake with the same name, SNI and port when
 * there is one, and keeps the tickets the origin sends. Returns the
 * session, or NULL when out of memory. */
struct tls_sess_cache;
tls_io_t *tls_upstream_session(const tls_snap_t *s, const char *sni,
                               const char *verify_name, int is_ip, unsigned port,
                               struct tls_sess_cache *sessions);

/* Why an upstream handshake failed, for the error page and the error log:
 * the certificate verification error ("certificate has expired",
 * "hostname mismatch", ...) when there was one, else the TLS error. Call
 * right after the failure (it reads this thread's OpenSSL error queue).
 * Returns buf. */
const char *tls_upstream_failure(tls_io_t *io, char *buf, size_t len);

#endif
