/* tls_policy.c - the TLS state of a configuration snapshot (CA, upstream client context, no-intercept set) and the interception decision. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/x509v3.h>

#include "tls_conf.h"
#include "tls_policy.h"
#include "tls_session.h"
#include "tls_x509.h"

static void snap_free(void *p)
{
    tls_snap_t *s = p;

    if (s == NULL)
        return;
    tls_ca_unref(s->ca);
    SSL_CTX_free(s->upstream_ctx);
    for (size_t k = 0; k < s->nno_intercept; k++)
        free(s->no_intercept[k]);
    free(s->no_intercept);
    free(s);
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* A session (or TLS 1.3 ticket) from a verified origin handshake: into the
 * worker's cache under the connection's key (tls_session.h). Returns 1
 * when the cache took the reference. */
static int on_new_session(SSL *ssl, SSL_SESSION *sess)
{
    tls_io_t *io = SSL_get_app_data(ssl);

    if (io == NULL || io->sess_cache == NULL || io->sess_key == NULL ||
        SSL_get_verify_result(ssl) != X509_V_OK)
        return 0;
    tls_sess_put(io->sess_cache, io->sess_key, sess);
    return 1;
}

/* The context for TLS to origins. RFC 9325 (BCP 195): TLS 1.2 at least;
 * the chain and the name are always verified (SSL_VERIFY_PEER, and the
 * name per session); ALPN offers http/1.1 only, since that is what the
 * proxy speaks upstream. */
static SSL_CTX *upstream_ctx_new(const conf_t *conf, char *err, size_t errlen)
{
    static const unsigned char alpn[] = "\x08http/1.1";
    char msg[512], why[160];
    X509_STORE *st;
    SSL_CTX *ctx;

    st = tls_upstream_store_new(conf->upstream_ca_file, msg, sizeof(msg));
    if (st == NULL) {
        snprintf(err, errlen, "%s: upstream_ca_file: %s", conf->path, msg);
        return NULL;
    }
    ERR_clear_error();
    ctx = SSL_CTX_new(TLS_client_method());
    if (ctx == NULL)
        goto ossl_fail;
    SSL_CTX_set_cert_store(ctx, st);  /* the context owns the store now */
    st = NULL;
    if (SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION) != 1 ||
        SSL_CTX_set_alpn_protos(ctx, alpn, sizeof(alpn) - 1) != 0)
        goto ossl_fail;
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
    SSL_CTX_set_options(ctx, SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION);
    /* Sessions go to the workers' caches, never to OpenSSL's own (shared,
     * locked) one. */
    SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_CLIENT | SSL_SESS_CACHE_NO_INTERNAL_STORE);
    SSL_CTX_sess_set_new_cb(ctx, on_new_session);
    return ctx;

ossl_fail:
    snprintf(err, errlen, "%s: cannot set up TLS to origins: %s", conf->path,
             tls_x509_error(why, sizeof(why), "out of memory"));
    X509_STORE_free(st);
    SSL_CTX_free(ctx);
    return NULL;
}

int tls_snap_attach(conf_t *conf, char *err, size_t errlen)
{
    tls_snap_t *s = calloc(1, sizeof(*s));
    conf_strlist_t list = {NULL, 0};
    char msg[1024];

    if (s == NULL) {
        snprintf(err, errlen, "%s: out of memory", conf->path);
        return -1;
    }
    if (tls_conf_check(conf, &s->ca, err, errlen) < 0)
        goto fail;
    if (conf->no_intercept != NULL) {
        if (tls_no_intercept_read(conf->no_intercept, &list, msg, sizeof(msg)) < 0) {
            snprintf(err, errlen, "%s", msg);  /* checked just before: unlikely */
            goto fail;
        }
        s->no_intercept = list.v;
        s->nno_intercept = (size_t)list.n;
        qsort(s->no_intercept, s->nno_intercept, sizeof(char *), cmp_str);
    }
    if (s->ca != NULL) {
        s->upstream_ctx = upstream_ctx_new(conf, err, errlen);
        if (s->upstream_ctx == NULL)
            goto fail;
    }
    conf->tls = s;
    conf->tls_free = snap_free;
    return 0;

fail:
    snap_free(s);
    return -1;
}

static int has_exact(const tls_snap_t *s, const char *name)
{
    return bsearch(&name, s->no_intercept, s->nno_intercept, sizeof(char *), cmp_str) != NULL;
}

int tls_no_intercept_has(const tls_snap_t *s, const char *host)
{
    const char *p = host;

    if (s == NULL || s->nno_intercept == 0 || host == NULL || host[0] == '\0')
        return 0;
    if (has_exact(s, host))
        return 1;
    /* Parent domains, one label at a time. An address literal has no
     * parent an entry could name (entries never end in a number). */
    while ((p = strchr(p, '.')) != NULL) {
        p++;
        if (*p != '\0' && has_exact(s, p))
            return 1;
    }
    return 0;
}

int tls_port_requires_tls(const conf_t *conf, uint16_t port)
{
    for (int i = 0; i < conf->nrequire_tls_ports; i++)
        if (port >= conf->require_tls_ports[i].lo && port <= conf->require_tls_ports[i].hi)
            return 1;
    return 0;
}

int tls_intercept_decide(const conf_t *conf, const netaddr_t *client, const char *sni,
                         const char *connect_host, int vote, const char **why)
{
    const tls_snap_t *s = tls_snap_of(conf);
    const conf_policy_t *pol;

    if (s == NULL || s->ca == NULL) {
        *why = "no CA loaded (intercept is off everywhere)";
        return 0;
    }
    if (tls_no_intercept_has(s, sni) || tls_no_intercept_has(s, connect_host)) {
        *why = "no_intercept list";
        return 0;
    }
    if (vote >= 0) {
        *why = "a plugin's choice";
        return vote ? 1 : 0;
    }
    pol = conf_policy_for(conf, client);
    if (pol != NULL && pol->intercept >= 0) {
        *why = "the client's policy";
        return pol->intercept;
    }
    *why = "the intercept directive";
    return conf->intercept ? 1 : 0;
}

tls_io_t *tls_upstream_session(const tls_snap_t *s, const char *sni,
                               const char *verify_name, int is_ip, unsigned port,
                               tls_sess_cache_t *sessions)
{
    tls_io_t *io = tls_io_new(s->upstream_ctx, 0);
    X509_VERIFY_PARAM *param;
    char key[2 * 256 + 16];

    if (io == NULL)
        return NULL;
    if (sessions != NULL) {
        SSL_SESSION *sess;
        tls_sess_key(key, sizeof(key), verify_name, sni, port);
        io->sess_key = strdup(key);
        io->sess_cache = sessions;
        sess = io->sess_key ? tls_sess_take(sessions, key) : NULL;
        if (sess != NULL) {
            SSL_set_session(io->ssl, sess);
            SSL_SESSION_free(sess);
        }
    }
    param = SSL_get0_param(io->ssl);
    /* RFC 6125: the name the client asked for must be in the certificate;
     * no partial wildcards ("w*.example.com"). */
    X509_VERIFY_PARAM_set_hostflags(param, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
    if ((sni != NULL && SSL_set_tlsext_host_name(io->ssl, sni) != 1) ||
        (is_ip ? X509_VERIFY_PARAM_set1_ip_asc(param, verify_name)
               : X509_VERIFY_PARAM_set1_host(param, verify_name, 0)) != 1) {
        tls_io_free(io);
        ERR_clear_error();
        return NULL;
    }
    return io;
}

const char *tls_upstream_failure(tls_io_t *io, char *buf, size_t len)
{
    long v = SSL_get_verify_result(io->ssl);
    char why[200];

    if (v != X509_V_OK) {
        snprintf(buf, len, "%s", X509_verify_cert_error_string(v));
        ERR_clear_error();
        return buf;
    }
    snprintf(buf, len, "TLS handshake failed: %s", tls_io_error(why, sizeof(why)));
    return buf;
}
