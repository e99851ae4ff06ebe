/* mint.c - mints leaf certificates under the local CA and builds the SSL_CTX that serves one. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "mint.h"
#include "tls_x509.h"

#define HOUR 3600
#define DAY (24 * HOUR)

/* Mozilla's "intermediate" TLS 1.2 suites less the DHE ones: forward
 * secret, AEAD only. */
#define TLS12_CIPHERS                                                          \
    "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:"               \
    "ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:"               \
    "ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305"

static int dns_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           c == '-' || c == '_';
}

int tls_mint_host(const char *host, char *norm, size_t normlen, int *is_ip, char *err,
                  size_t errlen)
{
    char tmp[TLS_MINT_HOST_MAX + 2];
    unsigned char addr[16];
    size_t n = strlen(host), label = 0;
    int digits = 1;

    *is_ip = 0;
    if (n > 2 && host[0] == '[' && host[n - 1] == ']') {
        if (n - 2 >= sizeof(tmp))
            goto bad;
        memcpy(tmp, host + 1, n - 2);
        tmp[n - 2] = '\0';
        if (inet_pton(AF_INET6, tmp, addr) != 1)
            goto bad;
        *is_ip = 1;
        return inet_ntop(AF_INET6, addr, norm, (socklen_t)normlen) ? 0 : -1;
    }
    if (inet_pton(AF_INET6, host, addr) == 1) {
        *is_ip = 1;
        return inet_ntop(AF_INET6, addr, norm, (socklen_t)normlen) ? 0 : -1;
    }
    if (inet_pton(AF_INET, host, addr) == 1) {
        *is_ip = 1;
        return inet_ntop(AF_INET, addr, norm, (socklen_t)normlen) ? 0 : -1;
    }
    if (n > 0 && host[n - 1] == '.')
        n--;
    if (n == 0 || n > TLS_MINT_HOST_MAX || n >= normlen)
        goto bad;
    for (size_t k = 0; k < n; k++) {
        char c = host[k];
        if (c == '.') {
            if (label == 0)
                goto bad;
            label = 0;
            digits = 1;
        } else if (!dns_char(c) || ++label > 63) {
            goto bad;
        } else if (c < '0' || c > '9') {
            digits = 0;
        }
        norm[k] = (char)(c >= 'A' && c <= 'Z' ? c + ('a' - 'A') : c);
    }
    /* "127.1" or "10.1.2.300": what resolvers read as IPv4, or nothing. */
    if (label == 0 || digits)
        goto bad;
    norm[n] = '\0';
    return 0;

bad:
    snprintf(err, errlen, "'%.80s' is not a host name or IP address", host);
    return -1;
}

/* subjectAltName with exactly one name: the host (RFC 5280 section
 * 4.2.1.6; for an IP the octets of the address). */
static int add_san(X509 *x, const char *host, int is_ip)
{
    GENERAL_NAMES *gens = sk_GENERAL_NAME_new_null();
    GENERAL_NAME *gen = GENERAL_NAME_new();
    unsigned char addr[16];
    int rc = -1, alen = 0;

    if (gens == NULL || gen == NULL)
        goto fail;
    if (is_ip) {
        ASN1_OCTET_STRING *ip = ASN1_OCTET_STRING_new();
        if (inet_pton(AF_INET, host, addr) == 1)
            alen = 4;
        else if (inet_pton(AF_INET6, host, addr) == 1)
            alen = 16;
        if (ip == NULL || alen == 0 || ASN1_OCTET_STRING_set(ip, addr, alen) != 1) {
            ASN1_OCTET_STRING_free(ip);
            goto fail;
        }
        GENERAL_NAME_set0_value(gen, GEN_IPADD, ip);
    } else {
        ASN1_IA5STRING *dns = ASN1_IA5STRING_new();
        if (dns == NULL || ASN1_STRING_set(dns, host, (int)strlen(host)) != 1) {
            ASN1_IA5STRING_free(dns);
            goto fail;
        }
        GENERAL_NAME_set0_value(gen, GEN_DNS, dns);
    }
    if (sk_GENERAL_NAME_push(gens, gen) <= 0)
        goto fail;
    gen = NULL;  /* the stack owns it */
    if (X509_add1_ext_i2d(x, NID_subject_alt_name, gens, 0, X509V3_ADD_REPLACE) != 1)
        goto fail;
    rc = 0;

fail:
    GENERAL_NAME_free(gen);
    GENERAL_NAMES_free(gens);
    return rc;
}

/* Subject CN = host, cut to ub-common-name (64). The SAN is what clients
 * check; the CN is for people reading the certificate. */
static int set_subject(X509 *x, const char *host)
{
    X509_NAME *name = X509_get_subject_name(x);
    size_t n = strlen(host);

    return X509_NAME_add_entry_by_NID(name, NID_commonName, MBSTRING_ASC,
                                      (const unsigned char *)host, n > 64 ? 64 : (int)n,
                                      -1, 0) == 1 ? 0 : -1;
}

X509 *tls_mint_leaf(const tls_ca_t *ca, const char *host, const X509 *upstream, char *err,
                    size_t errlen)
{
    char norm[TLS_MINT_HOST_MAX + 1], why[160];
    time_t now = time(NULL), nb, na, up = 0;
    EVP_PKEY *leaf_key = tls_ca_leaf_key(ca);
    X509 *x = NULL;
    int is_ip;

    if (tls_mint_host(host, norm, sizeof(norm), &is_ip, err, errlen) < 0)
        return NULL;
    nb = now - HOUR;
    if (nb < tls_ca_not_before(ca))
        nb = tls_ca_not_before(ca);
    na = now + (time_t)TLS_MINT_MAX_DAYS * DAY;
    if (na > tls_ca_not_after(ca))
        na = tls_ca_not_after(ca);
    if (upstream != NULL) {
        if (tls_x509_time(X509_get0_notAfter(upstream), &up) < 0) {
            snprintf(err, errlen, "the upstream certificate has an invalid notAfter");
            return NULL;
        }
        if (na > up)
            na = up;
    }
    if (na <= now || na <= nb) {
        snprintf(err, errlen, "no validity period left for a leaf for %s (the %s "
                 "certificate has expired)", norm, na == up && upstream ? "upstream" : "CA");
        return NULL;
    }

    x = X509_new();
    if (x == NULL || X509_set_version(x, X509_VERSION_3) != 1 ||
        tls_x509_random_serial(x) < 0 ||
        X509_set_issuer_name(x, tls_ca_name(ca)) != 1 || set_subject(x, norm) < 0 ||
        ASN1_TIME_set(X509_getm_notBefore(x), nb) == NULL ||
        ASN1_TIME_set(X509_getm_notAfter(x), na) == NULL ||
        X509_set_pubkey(x, leaf_key) != 1 || add_san(x, norm, is_ip) < 0 ||
        tls_x509_basic_constraints(x, 0, -1) < 0 ||
        tls_x509_key_usage(x, TLS_KU_DIGITAL_SIGNATURE |
                                  (tls_ca_is_rsa(ca) ? TLS_KU_KEY_ENCIPHERMENT : 0)) < 0 ||
        tls_x509_eku_server_auth(x) < 0 ||
        tls_x509_subject_key_id(x, tls_ca_leaf_key_id(ca)) < 0 ||
        tls_x509_authority_key_id(x, tls_ca_key_id(ca)) < 0 ||
        X509_sign(x, tls_ca_key(ca), EVP_sha256()) <= 0) {
        snprintf(err, errlen, "cannot mint a certificate for %s: %s", norm,
                 tls_x509_error(why, sizeof(why), "out of memory"));
        X509_free(x);
        return NULL;
    }
    return x;
}

/* RFC 7301 section 3.2: the server picks; it picks http/1.1 or nothing. */
static int alpn_select(SSL *ssl, const unsigned char **out, unsigned char *outlen,
                       const unsigned char *in, unsigned int inlen, void *arg)
{
    static const unsigned char ours[] = "\x08http/1.1";
    unsigned char *sel;

    if (SSL_select_next_proto(&sel, outlen, ours, sizeof(ours) - 1, in, inlen) !=
        OPENSSL_NPN_NEGOTIATED)
        return SSL_TLSEXT_ERR_NOACK;
    *out = sel;
    return SSL_TLSEXT_ERR_OK;
}

SSL_CTX *tls_mint_ctx(const tls_ca_t *ca, X509 *leaf, char *err, size_t errlen)
{
    SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
    char why[160];

    if (ctx == NULL || SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION) != 1 ||
        SSL_CTX_set_cipher_list(ctx, TLS12_CIPHERS) != 1 ||
        SSL_CTX_set1_groups_list(ctx, "X25519:P-256:P-384") != 1 ||
        SSL_CTX_use_certificate(ctx, leaf) != 1 ||
        SSL_CTX_use_PrivateKey(ctx, tls_ca_leaf_key(ca)) != 1 ||
        SSL_CTX_add1_chain_cert(ctx, tls_ca_cert(ca)) != 1 ||
        SSL_CTX_check_private_key(ctx) != 1) {
        snprintf(err, errlen, "cannot set up TLS for a minted certificate: %s",
                 tls_x509_error(why, sizeof(why), "out of memory"));
        SSL_CTX_free(ctx);
        return NULL;
    }
    SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_NO_COMPRESSION);
    SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
    SSL_CTX_set_alpn_select_cb(ctx, alpn_select, NULL);
    return ctx;
}
