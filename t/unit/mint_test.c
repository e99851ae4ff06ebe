/* mint_test.c - unit tests for core/mint.c (leaves, handshakes) and core/mint_cache.c. */
#include <arpa/inet.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <uv.h>

#include "ca.h"
#include "mint.h"
#include "tls_testlib.h"

#define DAY 86400L

/* isnt_int(got, unexpected, name): the value must differ. */
#define isnt_int(got, exp, ...) ok((long long)(got) != (long long)(exp), __VA_ARGS__)

static char *tmp;
static tls_ca_t *ec_ca, *rsa_ca;

static const char *P(const char *rel)
{
    static char bufs[8][PATH_MAX + 64];
    static int k;
    char *b = bufs[k++ % 8];

    snprintf(b, sizeof(bufs[0]), "%s/%s", tmp, rel);
    return b;
}

static time_t t_of(const ASN1_TIME *t)
{
    struct tm tm;
    return ASN1_TIME_to_tm(t, &tm) == 1 ? timegm(&tm) : 0;
}

static tls_ca_t *load(const char *dir)
{
    char err[1024];
    tls_ca_t *ca = tls_ca_load(dir, err, sizeof(err));

    if (ca == NULL)
        diag("cannot load %s: %s", dir, err);
    return ca;
}

/* ---- leaf properties ------------------------------------------------------- */

/* Checks every property tls_mint_leaf() promises. norm is the expected
 * SAN/CN text, ip the address bytes (alen 4/16) or alen 0 for DNS. */
static void check_leaf(X509 *x, tls_ca_t *ca, const char *what, const char *norm,
                       const unsigned char *ip, int alen, time_t want_na)
{
    time_t now = time(NULL), nb, na;
    BIGNUM *bn;
    GENERAL_NAMES *san;
    BASIC_CONSTRAINTS *bc;
    ASN1_BIT_STRING *ku;
    EXTENDED_KEY_USAGE *eku;
    AUTHORITY_KEYID *akid;
    char cn[128] = "";
    int crit = -1, rsa = tls_ca_is_rsa(ca);

    is_int(X509_get_version(x), X509_VERSION_3, "%s: version 3", what);
    bn = ASN1_INTEGER_to_BN(X509_get0_serialNumber(x), NULL);
    ok(bn != NULL && !BN_is_negative(bn) && BN_num_bits(bn) >= 64,
       "%s: serial positive, >= 64 bits", what);
    BN_free(bn);
    X509_NAME_get_text_by_NID(X509_get_subject_name(x), NID_commonName, cn, sizeof(cn));
    {
        char want[65];
        snprintf(want, sizeof(want), "%.64s", norm);
        is_str(cn, want, "%s: subject CN (at most 64 bytes)", what);
    }
    ok(X509_NAME_cmp(X509_get_issuer_name(x), X509_get_subject_name(tls_ca_cert(ca))) == 0,
       "%s: issuer is the CA", what);

    san = X509_get_ext_d2i(x, NID_subject_alt_name, &crit, NULL);
    ok(san != NULL && sk_GENERAL_NAME_num(san) == 1 && crit == 0,
       "%s: one subjectAltName, not critical", what);
    if (san != NULL && sk_GENERAL_NAME_num(san) == 1) {
        GENERAL_NAME *g = sk_GENERAL_NAME_value(san, 0);
        if (alen == 0) {
            ok(g->type == GEN_DNS && ASN1_STRING_length(g->d.dNSName) == (int)strlen(norm) &&
                   memcmp(ASN1_STRING_get0_data(g->d.dNSName), norm, strlen(norm)) == 0,
               "%s: SAN is DNS:%s", what, norm);
        } else {
            ok(g->type == GEN_IPADD && ASN1_STRING_length(g->d.iPAddress) == alen &&
                   memcmp(ASN1_STRING_get0_data(g->d.iPAddress), ip, (size_t)alen) == 0,
               "%s: SAN is the %d address bytes of %s", what, alen, norm);
        }
    }
    GENERAL_NAMES_free(san);

    bc = X509_get_ext_d2i(x, NID_basic_constraints, &crit, NULL);
    ok(bc != NULL && !bc->ca && crit == 1, "%s: basicConstraints critical CA:FALSE", what);
    BASIC_CONSTRAINTS_free(bc);
    ku = X509_get_ext_d2i(x, NID_key_usage, &crit, NULL);
    ok(ku != NULL && crit == 1 && ASN1_BIT_STRING_get_bit(ku, 0) &&
           ASN1_BIT_STRING_get_bit(ku, 2) == rsa && !ASN1_BIT_STRING_get_bit(ku, 5) &&
           !ASN1_BIT_STRING_get_bit(ku, 6),
       "%s: keyUsage critical digitalSignature%s", what, rsa ? " + keyEncipherment" : " only");
    ASN1_BIT_STRING_free(ku);
    eku = X509_get_ext_d2i(x, NID_ext_key_usage, &crit, NULL);
    ok(eku != NULL && sk_ASN1_OBJECT_num(eku) == 1 &&
           OBJ_obj2nid(sk_ASN1_OBJECT_value(eku, 0)) == NID_server_auth && crit == 0,
       "%s: extKeyUsage serverAuth only", what);
    sk_ASN1_OBJECT_pop_free(eku, ASN1_OBJECT_free);
    akid = X509_get_ext_d2i(x, NID_authority_key_identifier, &crit, NULL);
    ok(akid != NULL && akid->keyid != NULL &&
           ASN1_OCTET_STRING_cmp(akid->keyid, X509_get0_subject_key_id(tls_ca_cert(ca))) == 0,
       "%s: authorityKeyIdentifier = the CA's subjectKeyIdentifier", what);
    AUTHORITY_KEYID_free(akid);
    {
        unsigned char md[20];
        unsigned int mdlen = 0;
        const ASN1_OCTET_STRING *ski = X509_get0_subject_key_id(x);
        X509_pubkey_digest(x, EVP_sha1(), md, &mdlen);
        ok(ski != NULL && ASN1_STRING_length(ski) == 20 &&
               memcmp(ASN1_STRING_get0_data(ski), md, 20) == 0,
           "%s: subjectKeyIdentifier = SHA-1 of its public key", what);
    }
    ok(EVP_PKEY_eq(X509_get0_pubkey(x), tls_ca_leaf_key(ca)) == 1, "%s: the CA's leaf key",
       what);
    is_int(X509_get_signature_nid(x), rsa ? NID_sha256WithRSAEncryption : NID_ecdsa_with_SHA256,
           "%s: SHA-256 signature", what);
    is_int(X509_verify(x, X509_get0_pubkey(tls_ca_cert(ca))), 1, "%s: signed by the CA", what);
    nb = t_of(X509_get0_notBefore(x));
    na = t_of(X509_get0_notAfter(x));
    ok(nb >= now - 3600 - 5 && nb <= now - 3600 + 5, "%s: notBefore = now - 1h", what);
    ok(na >= want_na - 5 && na <= want_na + 5, "%s: notAfter as expected (%+ld s)", what,
       (long)(na - want_na));
    ok(X509_check_purpose(x, X509_PURPOSE_SSL_SERVER, 0) == 1, "%s: OpenSSL: SSL server purpose",
       what);
}

/* openssl verify -purpose sslserver with -verify_hostname or -verify_ip.
 * Returns the exit status; out gets the output. */
static int verify_cmd(const char *cafile, X509 *leaf, const char *opt, const char *name,
                      char *out, size_t outlen)
{
    char cmd[3 * PATH_MAX];

    tl_write_cert(P("leaf.pem"), leaf);
    snprintf(cmd, sizeof(cmd),
             "openssl verify -x509_strict -purpose sslserver %s '%s' -CAfile '%s' '%s'", opt,
             name, cafile, P("leaf.pem"));
    return tl_run(cmd, out, outlen);
}

static void test_leaf(tls_ca_t *ca, const char *cadir, const char *kind)
{
    struct {
        const char *host, *norm;
        int family;
    } hosts[] = {
        {"www.example.com", "www.example.com", 0},
        {"Sub.Example.ORG.", "sub.example.org", 0},
        {"localhost", "localhost", 0},
        {"a-very-long-label-that-goes-on-and-on.and-another-long-label-too.example.com",
         "a-very-long-label-that-goes-on-and-on.and-another-long-label-too.example.com", 0},
        {"192.0.2.10", "192.0.2.10", AF_INET},
        {"2001:db8::5", "2001:db8::5", AF_INET6},
        {"[2001:DB8:0:0::6]", "2001:db8::6", AF_INET6},
        {"::ffff:192.0.2.1", "::ffff:192.0.2.1", AF_INET6},
    };
    char err[512], what[160], out[4096], cafile[PATH_MAX + 16];
    time_t now = time(NULL);

    snprintf(cafile, sizeof(cafile), "%s/ca.crt", cadir);
    for (size_t k = 0; k < sizeof(hosts) / sizeof(hosts[0]); k++) {
        unsigned char ip[16];
        int alen = 0;
        X509 *x;

        snprintf(what, sizeof(what), "%s leaf %s", kind, hosts[k].host);
        if (hosts[k].family != 0) {
            inet_pton(hosts[k].family, hosts[k].norm, ip);
            alen = hosts[k].family == AF_INET ? 4 : 16;
        }
        x = tls_mint_leaf(ca, hosts[k].host, NULL, err, sizeof(err));
        if (!ok(x != NULL, "%s: minted", what)) {
            diag("  %s", err);
            continue;
        }
        check_leaf(x, ca, what, hosts[k].norm, ip, alen, now + 397 * DAY);
        if (alen == 0) {
            ok(X509_check_host(x, hosts[k].norm, 0, 0, NULL) == 1, "%s: X509_check_host", what);
            is_int(verify_cmd(cafile, x, "-verify_hostname", hosts[k].norm, out, sizeof(out)),
                   0, "%s: openssl verify -purpose sslserver -verify_hostname", what);
        } else {
            ok(X509_check_ip(x, ip, (size_t)alen, 0) == 1, "%s: X509_check_ip", what);
            is_int(verify_cmd(cafile, x, "-verify_ip", hosts[k].norm, out, sizeof(out)), 0,
                   "%s: openssl verify -purpose sslserver -verify_ip", what);
        }
        if (strstr(out, ": OK") == NULL)
            diag("  %s", out);
        /* the same check can fail: another name, another address */
        if (alen == 0) {
            isnt_int(verify_cmd(cafile, x, "-verify_hostname", "evil.example.net", out,
                                sizeof(out)),
                     0, "%s: openssl verify refuses another host name", what);
            ok(X509_check_host(x, "evil.example.net", 0, 0, NULL) != 1,
               "%s: X509_check_host refuses another name", what);
        } else {
            isnt_int(verify_cmd(cafile, x, "-verify_ip", alen == 4 ? "192.0.2.99" : "2001:db8::99",
                                out, sizeof(out)),
                     0, "%s: openssl verify refuses another address", what);
        }
        X509_free(x);
    }
}

static void test_leaf_rules(void)
{
    char err[512], out[4096];
    X509 *a, *b, *x;
    time_t now = time(NULL);
    static const char *bad[] = {"", "*.example.com", "a b.example", "exa_mple..com", ".example",
                                "host:443", "127.1", "10.0.0.300", "example.com/x",
                                "caf\xc3\xa9.example", "[192.0.2.1]", "[::1"};
    char longname[300];

    a = tls_mint_leaf(ec_ca, "same.example", NULL, err, sizeof(err));
    b = tls_mint_leaf(ec_ca, "same.example", NULL, err, sizeof(err));
    ok(a && b && ASN1_INTEGER_cmp(X509_get0_serialNumber(a), X509_get0_serialNumber(b)) != 0,
       "two mints, two serials");
    ok(a && b && EVP_PKEY_eq(X509_get0_pubkey(a), X509_get0_pubkey(b)) == 1,
       "two mints, one leaf key");
    X509_free(a);
    X509_free(b);

    for (size_t k = 0; k < sizeof(bad) / sizeof(bad[0]); k++) {
        err[0] = '\0';
        x = tls_mint_leaf(ec_ca, bad[k], NULL, err, sizeof(err));
        ok(x == NULL && strstr(err, "is not a host name or IP address") != NULL,
           "host '%s' refused", bad[k]);
        X509_free(x);
    }
    memset(longname, 'a', sizeof(longname));
    for (int k = 60; k < 254; k += 61)
        longname[k] = '.';
    longname[253] = '\0';
    x = tls_mint_leaf(ec_ca, longname, NULL, err, sizeof(err));
    ok(x != NULL, "a 253-byte name is minted");
    if (x != NULL) {
        char cn[128] = "";
        X509_NAME_get_text_by_NID(X509_get_subject_name(x), NID_commonName, cn, sizeof(cn));
        is_int(strlen(cn), 64, "253-byte name: CN cut to 64");
        ok(X509_check_host(x, longname, 0, 0, NULL) == 1, "253-byte name: the SAN has it whole");
        X509_free(x);
    }
    longname[253] = 'a';
    longname[254] = '\0';
    x = tls_mint_leaf(ec_ca, longname, NULL, err, sizeof(err));
    ok(x == NULL, "a 254-byte name is refused");

    /* validity: the CA's, the upstream's */
    {
        EVP_PKEY *k = tl_key("ec");
        X509 *short_ca = tl_cert(k, NULL, NULL, "short CA", -600, 30 * DAY, "critical,CA:TRUE",
                                 "critical,keyCertSign", NULL);
        char *d = tl_ca_dir(tmp, "short", short_ca, k);
        tls_ca_t *ca = load(d);
        if (ca != NULL) {
            x = tls_mint_leaf(ca, "short.example", NULL, err, sizeof(err));
            ok(x != NULL, "leaf under a CA of 30 days");
            if (x != NULL) {
                is_int(t_of(X509_get0_notAfter(x)), t_of(X509_get0_notAfter(short_ca)),
                       "leaf notAfter = the CA's notAfter");
                is_int(t_of(X509_get0_notBefore(x)), t_of(X509_get0_notBefore(short_ca)),
                       "leaf notBefore = the CA's notBefore when that is later than now - 1h");
                is_int(verify_cmd(P("short/ca.crt"), x, "-verify_hostname", "short.example", out,
                                  sizeof(out)),
                       0, "leaf under the 30-day CA verifies");
            }
            X509_free(x);
        }
        tls_ca_unref(ca);
        free(d);
        X509_free(short_ca);
        EVP_PKEY_free(k);
    }
    {
        EVP_PKEY *k = tl_key("ec");
        X509 *up = tl_cert(k, NULL, NULL, "upstream", -10 * DAY, 5 * DAY, NULL, NULL, NULL);
        X509 *old = tl_cert(k, NULL, NULL, "upstream", -10 * DAY, -DAY, NULL, NULL, NULL);
        x = tls_mint_leaf(ec_ca, "up.example", up, err, sizeof(err));
        ok(x != NULL && t_of(X509_get0_notAfter(x)) == t_of(X509_get0_notAfter(up)),
           "leaf notAfter = the upstream's when earlier");
        if (x != NULL)
            check_leaf(x, ec_ca, "leaf with upstream", "up.example", NULL, 0, now + 5 * DAY);
        X509_free(x);
        err[0] = '\0';
        x = tls_mint_leaf(ec_ca, "up.example", old, err, sizeof(err));
        ok(x == NULL && strstr(err, "upstream certificate has expired") != NULL,
           "an expired upstream: no leaf (%s)", err);
        X509_free(x);
        X509_free(up);
        X509_free(old);
        EVP_PKEY_free(k);
    }
}

/* Many threads minting under one CA. */
#define NTHREADS 4
#define PER_THREAD 100

static X509 *minted[NTHREADS * PER_THREAD];

static void *mint_thread(void *arg)
{
    int base = (int)(intptr_t)arg;
    char err[256], host[64];

    for (int k = 0; k < PER_THREAD; k++) {
        snprintf(host, sizeof(host), "t%d-%d.example", base, k);
        minted[base * PER_THREAD + k] = tls_mint_leaf(ec_ca, host, NULL, err, sizeof(err));
    }
    return NULL;
}

static int cmp_serial(const void *a, const void *b)
{
    return ASN1_INTEGER_cmp(X509_get0_serialNumber(*(X509 *const *)a),
                            X509_get0_serialNumber(*(X509 *const *)b));
}

static void test_threads(void)
{
    pthread_t th[NTHREADS];
    int bad = 0, dup = 0;

    for (int k = 0; k < NTHREADS; k++)
        pthread_create(&th[k], NULL, mint_thread, (void *)(intptr_t)k);
    for (int k = 0; k < NTHREADS; k++)
        pthread_join(th[k], NULL);
    for (int k = 0; k < NTHREADS * PER_THREAD; k++)
        if (minted[k] == NULL || X509_verify(minted[k], X509_get0_pubkey(tls_ca_cert(ec_ca))) != 1)
            bad++;
    is_int(bad, 0, "%d threads minted %d leaves, all signed by the CA", NTHREADS,
           NTHREADS * PER_THREAD);
    if (bad == 0) {
        qsort(minted, NTHREADS * PER_THREAD, sizeof(X509 *), cmp_serial);
        for (int k = 1; k < NTHREADS * PER_THREAD; k++)
            dup += cmp_serial(&minted[k - 1], &minted[k]) == 0;
        is_int(dup, 0, "all serials distinct");
    }
    for (int k = 0; k < NTHREADS * PER_THREAD; k++)
        X509_free(minted[k]);
}

/* ---- handshakes through the minted SSL_CTX --------------------------------- */

/* Moves bytes between the two memory BIO pairs until both sides are done
 * or stuck. Returns 1 when both handshakes completed. */
static int handshake(SSL *cli, SSL *srv)
{
    int cdone = 0, sdone = 0;

    for (int round = 0; round < 100 && !(cdone && sdone); round++) {
        int r;
        if (!cdone) {
            r = SSL_do_handshake(cli);
            if (r == 1)
                cdone = 1;
            else if (SSL_get_error(cli, r) != SSL_ERROR_WANT_READ)
                return 0;
        }
        if (!sdone) {
            r = SSL_do_handshake(srv);
            if (r == 1)
                sdone = 1;
            else if (SSL_get_error(srv, r) != SSL_ERROR_WANT_READ)
                return 0;
        }
    }
    return cdone && sdone;
}

struct hs_opts {
    const char *host;     /* verify this name (NULL: none) */
    const char *cafile;   /* trust this CA */
    const unsigned char *alpn;
    unsigned alpn_len;
    int max_version;      /* 0: any */
    int legacy;           /* willing to speak TLS 1.0/1.1 (security level 0) */
    const char *ciphers;  /* TLS 1.2 list, NULL: default */
};

struct hs_result {
    int ok;
    long verify;
    int version;
    char alpn[32];
    X509 *peer;
};

static void do_handshake(SSL_CTX *sctx, const struct hs_opts *o, struct hs_result *res)
{
    SSL_CTX *cctx = SSL_CTX_new(TLS_client_method());
    SSL *cli, *srv;
    BIO *cb, *sb;
    const unsigned char *sel = NULL;
    unsigned sellen = 0;

    memset(res, 0, sizeof(*res));
    SSL_CTX_load_verify_locations(cctx, o->cafile, NULL);
    SSL_CTX_set_verify(cctx, SSL_VERIFY_PEER, NULL);
    if (o->legacy) {
        SSL_CTX_set_security_level(cctx, 0);
        SSL_CTX_set_min_proto_version(cctx, TLS1_VERSION);
        SSL_CTX_set_cipher_list(cctx, "DEFAULT:@SECLEVEL=0");
    }
    if (o->max_version)
        SSL_CTX_set_max_proto_version(cctx, o->max_version);
    if (o->ciphers) {
        SSL_CTX_set_max_proto_version(cctx, TLS1_2_VERSION);
        SSL_CTX_set_cipher_list(cctx, o->ciphers);
    }
    cli = SSL_new(cctx);
    srv = SSL_new(sctx);
    BIO_new_bio_pair(&cb, 0, &sb, 0);
    SSL_set_bio(cli, cb, cb);
    SSL_set_bio(srv, sb, sb);
    SSL_set_connect_state(cli);
    SSL_set_accept_state(srv);
    if (o->host) {
        SSL_set_tlsext_host_name(cli, o->host);
        SSL_set1_host(cli, o->host);
    }
    if (o->alpn)
        SSL_set_alpn_protos(cli, o->alpn, o->alpn_len);
    res->ok = handshake(cli, srv);
    res->verify = SSL_get_verify_result(cli);
    res->version = SSL_version(cli);
    SSL_get0_alpn_selected(cli, &sel, &sellen);
    snprintf(res->alpn, sizeof(res->alpn), "%.*s", (int)sellen, sel ? (const char *)sel : "");
    res->peer = SSL_get1_peer_certificate(cli);
    SSL_free(cli);
    SSL_free(srv);
    SSL_CTX_free(cctx);
    ERR_clear_error();
}

static void test_ctx(tls_ca_t *ca, const char *cadir, const char *kind)
{
    char err[512], cafile[PATH_MAX + 16];
    X509 *leaf = tls_mint_leaf(ca, "shop.example", NULL, err, sizeof(err));
    SSL_CTX *ctx = leaf ? tls_mint_ctx(ca, leaf, err, sizeof(err)) : NULL;
    static const unsigned char both[] = "\x02h2\x08http/1.1", h2[] = "\x02h2";
    struct hs_opts o;
    struct hs_result r;

    snprintf(cafile, sizeof(cafile), "%s/ca.crt", cadir);
    if (!ok(ctx != NULL, "%s: SSL_CTX built", kind)) {
        diag("  %s", err);
        X509_free(leaf);
        return;
    }
    memset(&o, 0, sizeof(o));
    o.host = "shop.example";
    o.cafile = cafile;
    o.alpn = both;
    o.alpn_len = sizeof(both) - 1;
    do_handshake(ctx, &o, &r);
    ok(r.ok, "%s: handshake with a client trusting the CA", kind);
    is_int(r.verify, X509_V_OK, "%s: the client verified chain and host name", kind);
    is_int(r.version, TLS1_3_VERSION, "%s: TLS 1.3", kind);
    is_str(r.alpn, "http/1.1", "%s: ALPN h2,http/1.1 -> http/1.1", kind);
    ok(r.peer != NULL && X509_cmp(r.peer, leaf) == 0, "%s: the client got the leaf", kind);
    X509_free(r.peer);

    o.alpn = h2;
    o.alpn_len = sizeof(h2) - 1;
    do_handshake(ctx, &o, &r);
    ok(r.ok, "%s: client offering only h2 still connects", kind);
    is_str(r.alpn, "", "%s: ALPN h2 only -> no protocol selected", kind);
    X509_free(r.peer);

    o.alpn = NULL;
    o.host = "other.example";
    do_handshake(ctx, &o, &r);
    ok(!r.ok && r.verify == X509_V_ERR_HOSTNAME_MISMATCH,
       "%s: a client expecting another host refuses the leaf", kind);
    X509_free(r.peer);

    o.host = "shop.example";
    o.max_version = TLS1_1_VERSION;
    o.legacy = 1;
    do_handshake(ctx, &o, &r);
    ok(!r.ok, "%s: a TLS 1.1 client is refused", kind);
    X509_free(r.peer);
    {
        /* the control: that client does connect to a server allowing 1.1 */
        SSL_CTX *old = tls_mint_ctx(ca, leaf, err, sizeof(err));
        SSL_CTX_set_security_level(old, 0);
        SSL_CTX_set_min_proto_version(old, TLS1_VERSION);
        SSL_CTX_set_cipher_list(old, "DEFAULT:@SECLEVEL=0");
        do_handshake(old, &o, &r);
        ok(r.ok && r.version == TLS1_1_VERSION,
           "%s: (control: the same client speaks TLS 1.1 to a server that allows it)", kind);
        X509_free(r.peer);
        SSL_CTX_free(old);
    }
    o.legacy = 0;
    o.max_version = TLS1_2_VERSION;
    do_handshake(ctx, &o, &r);
    ok(r.ok && r.version == TLS1_2_VERSION, "%s: a TLS 1.2 client is served", kind);
    X509_free(r.peer);
    o.max_version = 0;
    o.ciphers = "AES128-GCM-SHA256:AES256-SHA:ECDHE-ECDSA-AES128-SHA:ECDHE-RSA-AES128-SHA";
    do_handshake(ctx, &o, &r);
    ok(!r.ok, "%s: TLS 1.2 with only non-ECDHE or CBC suites is refused", kind);
    X509_free(r.peer);
    o.ciphers = tls_ca_is_rsa(ca) ? "ECDHE-RSA-CHACHA20-POLY1305" : "ECDHE-ECDSA-CHACHA20-POLY1305";
    do_handshake(ctx, &o, &r);
    ok(r.ok, "%s: TLS 1.2 with ChaCha20-Poly1305 is served", kind);
    X509_free(r.peer);

    SSL_CTX_free(ctx);
    X509_free(leaf);
}

/* ---- the cache ------------------------------------------------------------- */

static uv_loop_t loop;

struct waiter {
    int calls;
    SSL_CTX *ctx;
    char err[256];
    mint_req_t *req;
    mint_cache_t *cache;      /* for the callbacks that act on the cache */
    struct waiter *cancel;    /* cancel this one from the callback */
    int free_cache;           /* free the cache from the callback */
};

static void on_mint(void *arg, SSL_CTX *ctx, const char *err)
{
    struct waiter *w = arg;

    w->calls++;
    w->ctx = ctx;
    snprintf(w->err, sizeof(w->err), "%s", err ? err : "");
    w->req = NULL;
    if (w->cancel != NULL && w->cancel->req != NULL) {
        mint_req_cancel(w->cancel->req);
        w->cancel->req = NULL;
    }
    if (w->free_cache)
        mint_cache_free(w->cache);
}

static void waiter_done(struct waiter *w)
{
    SSL_CTX_free(w->ctx);
    memset(w, 0, sizeof(*w));
}

/* get + note the result. Returns mint_cache_get's value. */
static int get(mint_cache_t *c, tls_ca_t *ca, const char *host, const X509 *up,
               struct waiter *w, SSL_CTX **hit)
{
    char err[256];
    mint_req_t *req = NULL;
    int rc = mint_cache_get(c, ca, host, up, hit, on_mint, w, &req, err, sizeof(err));

    if (w != NULL)
        w->req = req;
    if (rc < 0)
        diag("  get %s: %s", host, err);
    return rc;
}

static mint_cache_stats_t stats(mint_cache_t *c)
{
    mint_cache_stats_t s;
    mint_cache_get_stats(c, &s);
    return s;
}

static void test_cache_basic(void)
{
    mint_cache_t *c = mint_cache_new(&loop, 8);
    struct waiter w[5];
    SSL_CTX *hit = NULL;
    char err[256];
    mint_req_t *req;
    int rc;

    memset(w, 0, sizeof(w));
    is_int(get(c, ec_ca, "www.example.com", NULL, &w[0], &hit), 0, "miss: a mint starts");
    ok(hit == NULL && w[0].req != NULL, "miss: no context yet, a request handle");
    is_int(w[0].calls, 0, "miss: the callback waits for the loop");
    uv_run(&loop, UV_RUN_DEFAULT);
    is_int(w[0].calls, 1, "miss: the callback ran once");
    ok(w[0].ctx != NULL && w[0].err[0] == '\0', "miss: it brought a context");
    is_int(stats(c).mints, 1, "one mint");

    is_int(get(c, ec_ca, "www.example.com", NULL, &w[1], &hit), 1, "second get: a hit");
    ok(hit == w[0].ctx, "hit: the same context");
    is_int(w[1].calls, 0, "hit: no callback");
    SSL_CTX_free(hit);
    is_int(get(c, ec_ca, "WWW.Example.COM.", NULL, &w[1], &hit), 1,
           "the name is normalised for the key: a hit");
    SSL_CTX_free(hit);
    is_int(get(c, rsa_ca, "www.example.com", NULL, &w[1], &hit), 0,
           "another CA (fingerprint): a miss");
    uv_run(&loop, UV_RUN_DEFAULT);
    ok(w[1].ctx != NULL && w[1].ctx != w[0].ctx, "another CA: its own context");
    {
        /* the context of the RSA CA serves an RSA leaf */
        struct hs_opts o;
        struct hs_result r;
        char cafile[PATH_MAX + 16];
        snprintf(cafile, sizeof(cafile), "%s", P("rsa/ca.crt"));
        memset(&o, 0, sizeof(o));
        o.host = "www.example.com";
        o.cafile = cafile;
        do_handshake(w[1].ctx, &o, &r);
        ok(r.ok && r.verify == X509_V_OK && r.peer != NULL &&
               EVP_PKEY_is_a(X509_get0_pubkey(r.peer), "RSA"),
           "a context from the cache serves a verified handshake");
        X509_free(r.peer);
    }
    waiter_done(&w[0]);
    waiter_done(&w[1]);

    /* coalescing: five requests, one mint */
    for (int k = 0; k < 5; k++)
        is_int(get(c, ec_ca, "burst.example", NULL, &w[k], &hit), 0, "burst request %d waits", k);
    is_int(stats(c).pending, 1, "burst: one mint in flight");
    uv_run(&loop, UV_RUN_DEFAULT);
    is_int(stats(c).mints, 3, "burst: one more mint, not five");
    is_int(stats(c).coalesced, 4, "burst: four coalesced");
    {
        int all = 1;
        for (int k = 0; k < 5; k++)
            all &= w[k].calls == 1 && w[k].ctx == w[0].ctx && w[k].ctx != NULL;
        ok(all, "burst: every waiter called once with the same context");
    }
    for (int k = 0; k < 5; k++)
        waiter_done(&w[k]);

    /* bad host: synchronous error */
    req = (mint_req_t *)1;
    rc = mint_cache_get(c, ec_ca, "bad host", NULL, &hit, on_mint, &w[0], &req, err, sizeof(err));
    ok(rc == -1 && req == NULL && hit == NULL && strstr(err, "not a host name") != NULL,
       "an invalid host: -1 at once");
    uv_run(&loop, UV_RUN_DEFAULT);
    is_int(w[0].calls, 0, "an invalid host: no callback");

    /* an asynchronous error (expired upstream): delivered, not cached */
    {
        EVP_PKEY *k = tl_key("ec");
        X509 *old = tl_cert(k, NULL, NULL, "old", -10 * DAY, -DAY, NULL, NULL, NULL);
        uint64_t errors = stats(c).errors;
        is_int(get(c, ec_ca, "expired.example", old, &w[0], &hit), 0, "expired upstream: waits");
        X509_free(old); /* the cache holds its own reference */
        uv_run(&loop, UV_RUN_DEFAULT);
        ok(w[0].calls == 1 && w[0].ctx == NULL && strstr(w[0].err, "expired") != NULL,
           "expired upstream: the callback brings the error");
        is_int(stats(c).errors, errors + 1, "expired upstream: counted as an error");
        is_int(get(c, ec_ca, "expired.example", NULL, &w[1], &hit), 0,
               "expired upstream: nothing cached");
        uv_run(&loop, UV_RUN_DEFAULT);
        ok(w[1].ctx != NULL, "without the upstream the mint succeeds");
        waiter_done(&w[0]);
        waiter_done(&w[1]);
        EVP_PKEY_free(k);
    }

    /* an upstream that expires before the cached leaf: minted again */
    {
        EVP_PKEY *k = tl_key("ec");
        X509 *up = tl_cert(k, NULL, NULL, "up", -DAY, 10 * DAY, NULL, NULL, NULL);
        uint64_t mints = stats(c).mints;
        is_int(get(c, ec_ca, "www.example.com", up, &w[0], &hit), 0,
               "upstream expiring before the cached leaf: a miss");
        uv_run(&loop, UV_RUN_DEFAULT);
        is_int(stats(c).mints, mints + 1, "upstream expiring earlier: minted again");
        is_int(get(c, ec_ca, "www.example.com", up, &w[1], &hit), 1,
               "the same upstream again: a hit on the new leaf");
        ok(hit == w[0].ctx, "the new leaf replaced the old one");
        SSL_CTX_free(hit);
        is_int(get(c, ec_ca, "www.example.com", NULL, &w[1], &hit), 1,
               "without upstream: a hit on the new leaf too");
        SSL_CTX_free(hit);
        waiter_done(&w[0]);
        X509_free(up);
        EVP_PKEY_free(k);
    }
    mint_cache_free(c);
    uv_run(&loop, UV_RUN_DEFAULT);
}

static void test_cache_lru(void)
{
    mint_cache_t *c = mint_cache_new(&loop, 3);
    struct waiter w;
    SSL_CTX *hit;
    const char *names[] = {"a.example", "b.example", "c.example"};

    memset(&w, 0, sizeof(w));
    for (int k = 0; k < 3; k++) {
        get(c, ec_ca, names[k], NULL, &w, &hit);
        uv_run(&loop, UV_RUN_DEFAULT);
        waiter_done(&w);
    }
    is_int(stats(c).entries, 3, "LRU: three entries");
    is_int(get(c, ec_ca, "a.example", NULL, &w, &hit), 1, "LRU: a touched");
    SSL_CTX_free(hit);
    get(c, ec_ca, "d.example", NULL, &w, &hit);
    uv_run(&loop, UV_RUN_DEFAULT);
    waiter_done(&w);
    is_int(stats(c).entries, 3, "LRU: still three entries after d");
    is_int(stats(c).evictions, 1, "LRU: one eviction");
    is_int(get(c, ec_ca, "a.example", NULL, &w, &hit), 1, "LRU: a (recently used) kept");
    SSL_CTX_free(hit);
    is_int(get(c, ec_ca, "c.example", NULL, &w, &hit), 1, "LRU: c kept");
    SSL_CTX_free(hit);
    is_int(get(c, ec_ca, "d.example", NULL, &w, &hit), 1, "LRU: d kept");
    SSL_CTX_free(hit);
    is_int(get(c, ec_ca, "b.example", NULL, &w, &hit), 0, "LRU: b (least recent) evicted");
    uv_run(&loop, UV_RUN_DEFAULT);
    /* an evicted context stays usable by whoever holds it */
    ok(w.ctx != NULL, "LRU: b minted again");
    waiter_done(&w);
    is_int(stats(c).mints, 5, "LRU: five mints in all");
    mint_cache_free(c);
    uv_run(&loop, UV_RUN_DEFAULT);

    {
        /* a context held by a caller outlives its eviction */
        mint_cache_t *c1 = mint_cache_new(&loop, 1);
        struct waiter x;
        SSL_CTX *held;
        memset(&x, 0, sizeof(x));
        get(c1, ec_ca, "held.example", NULL, &x, &hit);
        uv_run(&loop, UV_RUN_DEFAULT);
        held = x.ctx;
        x.ctx = NULL;
        get(c1, ec_ca, "other.example", NULL, &x, &hit);
        uv_run(&loop, UV_RUN_DEFAULT);
        waiter_done(&x);
        is_int(stats(c1).evictions, 1, "max 1: the first entry evicted");
        {
            SSL *s = SSL_new(held);
            ok(s != NULL, "an evicted context still makes connections");
            SSL_free(s);
        }
        SSL_CTX_free(held);
        mint_cache_free(c1);
        uv_run(&loop, UV_RUN_DEFAULT);
    }
}

static void test_cache_purge_cancel(void)
{
    mint_cache_t *c = mint_cache_new(&loop, 16);
    struct waiter w[3];
    SSL_CTX *hit;

    memset(w, 0, sizeof(w));
    get(c, ec_ca, "p1.example", NULL, &w[0], &hit);
    get(c, rsa_ca, "p2.example", NULL, &w[1], &hit);
    uv_run(&loop, UV_RUN_DEFAULT);
    waiter_done(&w[0]);
    waiter_done(&w[1]);
    is_int(stats(c).entries, 2, "purge: an entry per CA");
    mint_cache_purge(c, rsa_ca);
    is_int(stats(c).entries, 1, "purge keeping the RSA CA: one left");
    is_int(get(c, rsa_ca, "p2.example", NULL, &w[0], &hit), 1, "purge: the RSA CA's entry kept");
    SSL_CTX_free(hit);
    is_int(get(c, ec_ca, "p1.example", NULL, &w[0], &hit), 0, "purge: the other CA's entry gone");
    uv_run(&loop, UV_RUN_DEFAULT);
    waiter_done(&w[0]);

    /* a mint in flight for the old CA: delivered, not cached */
    mint_cache_purge(c, NULL);
    is_int(stats(c).entries, 0, "purge(NULL): empty");
    get(c, ec_ca, "inflight.example", NULL, &w[0], &hit);
    mint_cache_purge(c, rsa_ca);
    uv_run(&loop, UV_RUN_DEFAULT);
    ok(w[0].calls == 1 && w[0].ctx != NULL, "purged in flight: the waiter still gets its context");
    is_int(stats(c).entries, 0, "purged in flight: not cached");
    waiter_done(&w[0]);
    /* ...and a request after the purge starts its own mint */
    get(c, ec_ca, "inflight2.example", NULL, &w[0], &hit);
    mint_cache_purge(c, rsa_ca);
    is_int(get(c, ec_ca, "inflight2.example", NULL, &w[1], &hit), 0,
           "after a purge: a new request for the same host");
    is_int(stats(c).pending, 2, "after a purge: a second mint, not joined to the purged one");
    uv_run(&loop, UV_RUN_DEFAULT);
    ok(w[0].ctx && w[1].ctx && w[0].ctx != w[1].ctx, "both delivered, separately");
    is_int(stats(c).entries, 1, "only the new one cached");
    waiter_done(&w[0]);
    waiter_done(&w[1]);

    /* cancel */
    get(c, ec_ca, "cancel.example", NULL, &w[0], &hit);
    get(c, ec_ca, "cancel.example", NULL, &w[1], &hit);
    mint_req_cancel(w[1].req);
    w[1].req = NULL;
    uv_run(&loop, UV_RUN_DEFAULT);
    is_int(w[0].calls, 1, "cancel: the other waiter is called");
    is_int(w[1].calls, 0, "cancel: the cancelled waiter is not");
    is_int(stats(c).cancelled, 1, "cancel: counted");
    is_int(get(c, ec_ca, "cancel.example", NULL, &w[2], &hit), 1,
           "cancel: the mint is still cached");
    SSL_CTX_free(hit);
    waiter_done(&w[0]);
    waiter_done(&w[1]);
    get(c, ec_ca, "nobody.example", NULL, &w[0], &hit);
    mint_req_cancel(w[0].req);
    uv_run(&loop, UV_RUN_DEFAULT);
    is_int(w[0].calls, 0, "all waiters cancelled: no callback");
    is_int(get(c, ec_ca, "nobody.example", NULL, &w[0], &hit), 1, "...but the leaf is cached");
    SSL_CTX_free(hit);
    memset(w, 0, sizeof(w));

    /* a callback cancels a later waiter */
    get(c, ec_ca, "chain.example", NULL, &w[0], &hit);
    get(c, ec_ca, "chain.example", NULL, &w[1], &hit);
    get(c, ec_ca, "chain.example", NULL, &w[2], &hit);
    /* waiters are called newest first or oldest first: cancel the others
     * from whichever comes first */
    w[0].cancel = &w[1];
    w[1].cancel = &w[2];
    w[2].cancel = &w[1];
    uv_run(&loop, UV_RUN_DEFAULT);
    is_int(w[0].calls + w[1].calls + w[2].calls, 2,
           "a callback that cancels another waiter: that one is not called");
    for (int k = 0; k < 3; k++)
        waiter_done(&w[k]);
    mint_cache_free(c);
    uv_run(&loop, UV_RUN_DEFAULT);
}

static void test_cache_free(void)
{
    mint_cache_t *c = mint_cache_new(&loop, 16);
    struct waiter w[3];
    SSL_CTX *hit;

    memset(w, 0, sizeof(w));
    get(c, ec_ca, "f1.example", NULL, &w[0], &hit);
    get(c, rsa_ca, "f2.example", NULL, &w[1], &hit);
    mint_cache_free(c);
    uv_run(&loop, UV_RUN_DEFAULT);
    ok(w[0].calls == 0 && w[1].calls == 0, "free with mints in flight: no callback");
    is_int(uv_loop_alive(&loop), 0, "free with mints in flight: the loop ends");

    /* freed from inside a callback: the other waiters are not called */
    c = mint_cache_new(&loop, 16);
    for (int k = 0; k < 3; k++) {
        get(c, ec_ca, "f3.example", NULL, &w[k], &hit);
        w[k].cache = c;
        w[k].free_cache = 1;
    }
    uv_run(&loop, UV_RUN_DEFAULT);
    is_int(w[0].calls + w[1].calls + w[2].calls, 1,
           "freed from a callback: no callback after that");
    for (int k = 0; k < 3; k++)
        waiter_done(&w[k]);
    mint_cache_free(NULL);
    ok(1, "mint_cache_free(NULL) is a no-op");
}

int main(void)
{
    char err[1024];
    tls_ca_opts_t o;

    signal(SIGPIPE, SIG_IGN);
    tmp = tl_tmpdir("mint_test");
    memset(&o, 0, sizeof(o));
    if (tls_ca_create(P("ec"), &o, err, sizeof(err)) < 0)
        diag("%s", err);
    o.rsa = 1;
    if (tls_ca_create(P("rsa"), &o, err, sizeof(err)) < 0)
        diag("%s", err);
    ec_ca = load(P("ec"));
    rsa_ca = load(P("rsa"));
    if (!ok(ec_ca != NULL && rsa_ca != NULL, "test CAs created and loaded"))
        return done_testing();
    uv_loop_init(&loop);

    test_leaf(ec_ca, P("ec"), "ECDSA");
    test_leaf(rsa_ca, P("rsa"), "RSA");
    test_leaf_rules();
    test_threads();
    test_ctx(ec_ca, P("ec"), "ECDSA ctx");
    test_ctx(rsa_ca, P("rsa"), "RSA ctx");
    test_cache_basic();
    test_cache_lru();
    test_cache_purge_cancel();
    test_cache_free();

    is_int(uv_loop_close(&loop), 0, "the loop closes: nothing left behind");
    tls_ca_unref(ec_ca);
    tls_ca_unref(rsa_ca);
    tl_rm_rf(tmp);
    free(tmp);
    return done_testing();
}
