/* ca_test.c - unit tests for core/ca.c (create, load, refuse, share) and core/tls_conf.c. */
#include <dirent.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/x509v3.h>

#include "ca.h"
#include "conf.h"
#include "tls_conf.h"
#include "tls_testlib.h"

static char *tmp;

static const char *P(const char *rel)
{
    static char bufs[8][PATH_MAX + 64];
    static int k;
    char *b = bufs[k++ % 8];

    snprintf(b, sizeof(bufs[0]), "%s/%s", tmp, rel);
    return b;
}

static mode_t mode_of(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 ? st.st_mode & 07777 : (mode_t)-1;
}

static int count_files(const char *dir)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    int n = 0;

    if (d == NULL)
        return -1;
    while ((e = readdir(d)) != NULL)
        if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0)
            n++;
    closedir(d);
    return n;
}

static X509 *read_cert(const char *path)
{
    FILE *f = fopen(path, "r");
    X509 *x = f ? PEM_read_X509(f, NULL, NULL, NULL) : NULL;

    if (f)
        fclose(f);
    return x;
}

static int ext_critical(X509 *x, int nid)
{
    int i = X509_get_ext_by_NID(x, nid, -1);
    return i < 0 ? -1 : X509_EXTENSION_get_critical(X509_get_ext(x, i));
}

static int key_is_p256(EVP_PKEY *k)
{
    char group[64] = "";
    return EVP_PKEY_is_a(k, "EC") &&
           EVP_PKEY_get_utf8_string_param(k, OSSL_PKEY_PARAM_GROUP_NAME, group, sizeof(group),
                                          NULL) == 1 &&
           strcmp(group, "prime256v1") == 0;
}

/* Loading dir must fail with a message containing want. */
static void load_refused(const char *dir, const char *want, const char *name)
{
    char err[1024] = "";
    tls_ca_t *ca = tls_ca_load(dir, err, sizeof(err));

    ok(ca == NULL, "%s: refused", name);
    if (!ok(strstr(err, want) != NULL, "%s: says '%s'", name, want))
        diag("  got: %s", err);
    tls_ca_unref(ca);
}

/* ---- creating -------------------------------------------------------------- */

/* is err a sentence about the existing CA? */
static void like_ok_impl(const char *err)
{
    if (!ok(strstr(err, "already exists") != NULL && strstr(err, "--force") != NULL,
            "existing CA: says it exists and names --force"))
        diag("  got: %s", err);
}


/* The properties tls_ca_create() promises, read back from ca.crt. */
static void check_created_cert(const char *dir, int rsa, const char *what)
{
    char path[PATH_MAX + 16], out[4096], cmd[PATH_MAX * 3];
    X509 *x;
    BIGNUM *bn;
    BASIC_CONSTRAINTS *bc;
    ASN1_BIT_STRING *ku;
    const ASN1_OCTET_STRING *ski;
    int crit = 0;
    time_t nb, na, now = time(NULL);
    struct tm tm;

    snprintf(path, sizeof(path), "%s/ca.crt", dir);
    x = read_cert(path);
    if (!ok(x != NULL, "%s: ca.crt is a PEM certificate", what))
        return;
    is_int(X509_get_version(x), X509_VERSION_3, "%s: version 3", what);
    bn = ASN1_INTEGER_to_BN(X509_get0_serialNumber(x), NULL);
    ok(bn != NULL && !BN_is_negative(bn) && BN_num_bits(bn) >= 64,
       "%s: serial positive with >= 64 bits (%d)", what, bn ? BN_num_bits(bn) : 0);
    BN_free(bn);
    ok(X509_NAME_cmp(X509_get_subject_name(x), X509_get_issuer_name(x)) == 0,
       "%s: self-issued", what);
    ok(X509_verify(x, X509_get0_pubkey(x)) == 1, "%s: self-signed signature verifies", what);
    is_int(X509_get_signature_nid(x), rsa ? NID_sha256WithRSAEncryption : NID_ecdsa_with_SHA256,
           "%s: signed with SHA-256", what);
    bc = X509_get_ext_d2i(x, NID_basic_constraints, &crit, NULL);
    ok(bc != NULL && bc->ca && bc->pathlen != NULL && ASN1_INTEGER_get(bc->pathlen) == 0 &&
           crit == 1,
       "%s: basicConstraints critical CA:TRUE pathlen:0", what);
    BASIC_CONSTRAINTS_free(bc);
    ku = X509_get_ext_d2i(x, NID_key_usage, &crit, NULL);
    ok(ku != NULL && crit == 1 && ASN1_BIT_STRING_get_bit(ku, 5) &&
           ASN1_BIT_STRING_get_bit(ku, 6) && !ASN1_BIT_STRING_get_bit(ku, 0) &&
           !ASN1_BIT_STRING_get_bit(ku, 2),
       "%s: keyUsage critical keyCertSign + cRLSign only", what);
    ASN1_BIT_STRING_free(ku);
    ski = X509_get0_subject_key_id(x);
    ok(ski != NULL && ASN1_STRING_length(ski) == 20, "%s: subjectKeyIdentifier (SHA-1)", what);
    is_int(ext_critical(x, NID_subject_key_identifier), 0, "%s: SKI not critical", what);
    ok(X509_get0_authority_key_id(x) != NULL &&
           ASN1_OCTET_STRING_cmp(X509_get0_authority_key_id(x), ski) == 0,
       "%s: authorityKeyIdentifier = SKI", what);
    ASN1_TIME_to_tm(X509_get0_notBefore(x), &tm);
    nb = timegm(&tm);
    ASN1_TIME_to_tm(X509_get0_notAfter(x), &tm);
    na = timegm(&tm);
    ok(nb <= now - 3590 && nb >= now - 3700, "%s: valid from an hour ago", what);
    ok(na >= now + 3650L * 86400 - 100 && na <= now + 3650L * 86400 + 100,
       "%s: valid for 3650 days", what);
    ok(X509_check_ca(x) >= 1, "%s: OpenSSL sees a CA", what);
    is_int(EVP_PKEY_is_a(X509_get0_pubkey(x), rsa ? "RSA" : "EC"), 1, "%s: %s key", what,
           rsa ? "RSA" : "EC");
    if (rsa)
        is_int(EVP_PKEY_get_bits(X509_get0_pubkey(x)), 2048, "%s: RSA 2048", what);
    else
        ok(key_is_p256(X509_get0_pubkey(x)), "%s: ECDSA P-256", what);
    /* and the openssl command agrees that it is a self-signed CA */
    snprintf(cmd, sizeof(cmd), "openssl verify -x509_strict -CAfile '%s' '%s'", path, path);
    is_int(tl_run(cmd, out, sizeof(out)), 0, "%s: openssl verify -x509_strict accepts it", what);
    X509_free(x);
}

static void test_create(void)
{
    char err[1024] = "", path[PATH_MAX], fp1[65];
    tls_ca_opts_t o;
    tls_ca_t *ca;
    mode_t old;
    X509 *x;

    /* umask 0 and 077 must not change the modes */
    old = umask(0);
    is_int(tls_ca_create(P("ec"), NULL, err, sizeof(err)), 0, "create ECDSA CA (umask 0)");
    umask(077);
    memset(&o, 0, sizeof(o));
    o.rsa = 1;
    is_int(tls_ca_create(P("rsa"), &o, err, sizeof(err)), 0, "create RSA CA (umask 077)");
    umask(old);
    is_int(mode_of(P("ec/ca.key")), 0600, "ECDSA: ca.key mode 0600 despite umask 0");
    is_int(mode_of(P("ec/ca.crt")), 0644, "ECDSA: ca.crt mode 0644");
    is_int(mode_of(P("rsa/ca.key")), 0600, "RSA: ca.key mode 0600");
    is_int(mode_of(P("rsa/ca.crt")), 0644, "RSA: ca.crt mode 0644 despite umask 077");
    is_int(mode_of(P("ec")), 0755, "the directory is created 0755");
    is_int(count_files(P("ec")), 2, "no temporary file left behind");
    check_created_cert(P("ec"), 0, "ECDSA CA");
    check_created_cert(P("rsa"), 1, "RSA CA");

    ca = tls_ca_load(P("ec"), err, sizeof(err));
    if (!ok(ca != NULL, "ECDSA CA loads"))
        diag("  %s", err);
    if (ca != NULL) {
        char host[256] = "", want[300];
        gethostname(host, sizeof(host) - 1);
        snprintf(want, sizeof(want), "CN=Portcullis local CA (%.42s),O=Portcullis", host);
        is_str(tls_ca_subject(ca), want, "default subject names the host");
        is_str(tls_ca_key_type(ca), "ECDSA P-256", "key type ECDSA P-256");
        is_int(tls_ca_is_rsa(ca), 0, "not RSA");
        ok(key_is_p256(tls_ca_leaf_key(ca)), "leaf key ECDSA P-256");
        ok(EVP_PKEY_eq(tls_ca_leaf_key(ca), tls_ca_key(ca)) != 1, "leaf key is not the CA key");
        is_int(strlen(tls_ca_fingerprint(ca)), 64, "fingerprint: 64 hex digits");
        is_int(strspn(tls_ca_fingerprint(ca), "0123456789abcdef"), 64,
               "fingerprint: lowercase hex");
        snprintf(fp1, sizeof(fp1), "%s", tls_ca_fingerprint(ca));
        {
            char cmd[PATH_MAX + 64], out[512], hex[65];
            size_t k = 0;
            snprintf(cmd, sizeof(cmd), "openssl x509 -noout -fingerprint -sha256 -in '%s'",
                     P("ec/ca.crt"));
            tl_run(cmd, out, sizeof(out));
            for (char *s = strchr(out, '='); s && *s && k < 64; s++)
                if ((*s >= '0' && *s <= '9') || (*s >= 'A' && *s <= 'F'))
                    hex[k++] = (char)(*s >= 'A' ? *s - 'A' + 'a' : *s);
            hex[k] = '\0';
            is_str(tls_ca_fingerprint(ca), hex, "fingerprint = openssl x509 -fingerprint -sha256");
        }
        ok(tls_ca_key_id(ca) != NULL && tls_ca_leaf_key_id(ca) != NULL &&
               ASN1_OCTET_STRING_cmp(tls_ca_key_id(ca), tls_ca_leaf_key_id(ca)) != 0,
           "key ids of CA and leaf key differ");
        ok(tls_ca_not_after(ca) - tls_ca_not_before(ca) == 3650L * 86400 + 3600,
           "validity times read");
        is_str(tls_ca_dir(ca), P("ec"), "dir kept");
    }
    tls_ca_unref(ca);
    ca = tls_ca_load(P("rsa"), err, sizeof(err));
    if (!ok(ca != NULL, "RSA CA loads"))
        diag("  %s", err);
    if (ca != NULL) {
        is_str(tls_ca_key_type(ca), "RSA 2048", "key type RSA 2048");
        is_int(tls_ca_is_rsa(ca), 1, "RSA");
        ok(EVP_PKEY_is_a(tls_ca_leaf_key(ca), "RSA") &&
               EVP_PKEY_get_bits(tls_ca_leaf_key(ca)) == 2048,
           "RSA CA: leaf key RSA 2048");
    }
    tls_ca_unref(ca);

    /* a second load makes another leaf key */
    {
        tls_ca_t *a = tls_ca_load(P("ec"), err, sizeof(err));
        tls_ca_t *b = tls_ca_load(P("ec"), err, sizeof(err));
        ok(a && b && EVP_PKEY_eq(tls_ca_leaf_key(a), tls_ca_leaf_key(b)) != 1,
           "each load makes its own leaf key");
        ok(a && b && strcmp(tls_ca_fingerprint(a), tls_ca_fingerprint(b)) == 0,
           "same CA, same fingerprint");
        tls_ca_unref(a);
        tls_ca_unref(b);
    }

    /* never overwrite by accident */
    err[0] = '\0';
    is_int(tls_ca_create(P("ec"), NULL, err, sizeof(err)), -1, "existing CA: refused");
    like_ok_impl(err);
    ca = tls_ca_load(P("ec"), err, sizeof(err));
    ok(ca != NULL && strcmp(tls_ca_fingerprint(ca), fp1) == 0, "existing CA unchanged");
    tls_ca_unref(ca);
    memset(&o, 0, sizeof(o));
    o.force = 1;
    is_int(tls_ca_create(P("ec"), &o, err, sizeof(err)), 0, "--force replaces it");
    ca = tls_ca_load(P("ec"), err, sizeof(err));
    ok(ca != NULL && strcmp(tls_ca_fingerprint(ca), fp1) != 0, "a new CA after --force");
    tls_ca_unref(ca);
    is_int(count_files(P("ec")), 2, "still only ca.crt and ca.key");
    /* only the key left over also counts as an existing CA */
    unlink(P("ec/ca.crt"));
    is_int(tls_ca_create(P("ec"), NULL, err, sizeof(err)), -1, "a lone ca.key: refused too");

    /* options */
    memset(&o, 0, sizeof(o));
    o.cn = "Example Corp proxy CA";
    o.org = "Example Corp";
    o.days = 30;
    is_int(tls_ca_create(P("opts"), &o, err, sizeof(err)), 0, "create with CN, O, days");
    snprintf(path, sizeof(path), "%s", P("opts/ca.crt"));
    x = read_cert(path);
    if (x != NULL) {
        char cn[128] = "", org[128] = "";
        struct tm tm;
        time_t nb, na;
        X509_NAME_get_text_by_NID(X509_get_subject_name(x), NID_commonName, cn, sizeof(cn));
        X509_NAME_get_text_by_NID(X509_get_subject_name(x), NID_organizationName, org,
                                  sizeof(org));
        is_str(cn, "Example Corp proxy CA", "--cn sets CN");
        is_str(org, "Example Corp", "--org sets O");
        ASN1_TIME_to_tm(X509_get0_notBefore(x), &tm);
        nb = timegm(&tm);
        ASN1_TIME_to_tm(X509_get0_notAfter(x), &tm);
        na = timegm(&tm);
        is_int(na - nb, 30L * 86400 + 3600, "--days 30");
        X509_free(x);
    } else {
        ok(0, "options: ca.crt readable");
    }
    memset(&o, 0, sizeof(o));
    o.cn = "0123456789012345678901234567890123456789012345678901234567890123456789";
    is_int(tls_ca_create(P("longcn"), &o, err, sizeof(err)), -1, "CN of 70 characters refused");
    memset(&o, 0, sizeof(o));
    o.days = 36501;
    is_int(tls_ca_create(P("longdays"), &o, err, sizeof(err)), -1, "36501 days refused");
    ok(strstr(err, "out of range") != NULL, "days: says out of range");
    is_int(tls_ca_create(P("no/such/parent"), NULL, err, sizeof(err)), -1,
           "missing parent directory refused");
    ok(strstr(err, "cannot create the directory") != NULL, "missing parent: says why");
}

/* ---- refusing ------------------------------------------------------------- */

static void test_refuse(void)
{
    EVP_PKEY *k1 = tl_key("ec"), *k2 = tl_key("ec"), *weak = tl_key("rsa1024"),
             *ed = tl_key("ed25519"), *p384 = tl_key("ec384");
    const char *ca_ext = "critical,CA:TRUE", *ca_ku = "critical,keyCertSign,cRLSign";
    X509 *good = tl_cert(k1, NULL, NULL, "good", -60, 86400, ca_ext, ca_ku, NULL);
    char err[1024], *d;

    load_refused(P("nonexistent"), "cannot open", "missing directory");
    load_refused(P("nonexistent"), "portcullis ca init", "missing directory: how to fix");

    d = tl_ca_dir(tmp, "modes", good, k1);
    {
        tls_ca_t *ca = tls_ca_load(d, err, sizeof(err));
        if (!ok(ca != NULL, "hand-made CA with a 0600 key loads"))
            diag("  %s", err);
        tls_ca_unref(ca);
    }
    chmod(P("modes/ca.key"), 0640);
    load_refused(d, "accessible by group or others (mode 0640)", "key mode 0640");
    load_refused(d, "chmod 600", "key mode 0640: how to fix");
    chmod(P("modes/ca.key"), 0604);
    load_refused(d, "accessible by group or others (mode 0604)", "key mode 0604");
    chmod(P("modes/ca.key"), 0620);
    load_refused(d, "accessible by group or others", "key mode 0620 (group-writable)");
    chmod(P("modes/ca.key"), 0400);
    {
        tls_ca_t *ca = tls_ca_load(d, err, sizeof(err));
        ok(ca != NULL, "key mode 0400 is fine");
        tls_ca_unref(ca);
    }
    free(d);

    /* the key of another CA */
    d = tl_ca_dir(tmp, "mismatch", good, k2);
    load_refused(d, "do not match", "key of another CA");
    free(d);

    /* not CAs */
    {
        X509 *leaf = tl_cert(k1, NULL, NULL, "leaf", -60, 86400, "critical,CA:FALSE",
                             "critical,digitalSignature", "serverAuth");
        X509 *nobc = tl_cert(k1, NULL, NULL, "nobc", -60, 86400, NULL, ca_ku, NULL);
        X509 *noku = tl_cert(k1, NULL, NULL, "noku", -60, 86400, ca_ext, NULL, NULL);
        X509 *badku = tl_cert(k1, NULL, NULL, "badku", -60, 86400, ca_ext,
                              "critical,digitalSignature,cRLSign", NULL);
        d = tl_ca_dir(tmp, "leaf", leaf, k1);
        load_refused(d, "not a CA certificate (it needs basicConstraints CA:TRUE)",
                     "CA:FALSE certificate");
        free(d);
        d = tl_ca_dir(tmp, "nobc", nobc, k1);
        load_refused(d, "not a CA certificate", "no basicConstraints");
        free(d);
        d = tl_ca_dir(tmp, "noku", noku, k1);
        load_refused(d, "lacks keyCertSign", "no keyUsage");
        free(d);
        d = tl_ca_dir(tmp, "badku", badku, k1);
        load_refused(d, "lacks keyCertSign", "keyUsage without keyCertSign");
        free(d);
        X509_free(leaf);
        X509_free(nobc);
        X509_free(noku);
        X509_free(badku);
    }

    /* dates */
    {
        X509 *expired = tl_cert(k1, NULL, NULL, "old", -20 * 86400, -10 * 86400, ca_ext, ca_ku,
                                NULL);
        X509 *future = tl_cert(k1, NULL, NULL, "new", 86400, 10 * 86400, ca_ext, ca_ku, NULL);
        d = tl_ca_dir(tmp, "expired", expired, k1);
        load_refused(d, "expired on", "expired CA");
        load_refused(d, "portcullis ca init --force", "expired CA: how to fix");
        free(d);
        d = tl_ca_dir(tmp, "future", future, k1);
        load_refused(d, "not valid before", "CA not valid yet");
        free(d);
        X509_free(expired);
        X509_free(future);
    }

    /* keys */
    {
        X509 *w = tl_cert(weak, NULL, NULL, "weak", -60, 86400, ca_ext, ca_ku, NULL);
        X509 *e = tl_cert(ed, NULL, NULL, "ed", -60, 86400, ca_ext, ca_ku, NULL);
        X509 *p = tl_cert(p384, NULL, NULL, "p384", -60, 86400, ca_ext, ca_ku, NULL);
        tls_ca_t *ca;
        d = tl_ca_dir(tmp, "weak", w, weak);
        load_refused(d, "RSA key of 1024 bits is too weak", "RSA-1024 CA");
        free(d);
        if (e != NULL) {
            d = tl_ca_dir(tmp, "ed", e, ed);
            load_refused(d, "not supported", "Ed25519 CA");
            free(d);
        }
        d = tl_ca_dir(tmp, "p384", p, p384);
        ca = tls_ca_load(d, err, sizeof(err));
        ok(ca != NULL && strcmp(tls_ca_key_type(ca), "ECDSA P-384") == 0 &&
               key_is_p256(tls_ca_leaf_key(ca)),
           "P-384 CA accepted, leaf key P-256");
        tls_ca_unref(ca);
        free(d);
        X509_free(w);
        X509_free(e);
        X509_free(p);
    }

    /* files */
    d = tl_ca_dir(tmp, "encrypted", good, k1);
    tl_write_key(P("encrypted/ca.key"), k1, 0600, 1);
    load_refused(d, "encrypted key is not supported", "encrypted key");
    free(d);
    d = tl_ca_dir(tmp, "garbage", good, k1);
    {
        FILE *f = fopen(P("garbage/ca.crt"), "w");
        fputs("not a certificate\n", f);
        fclose(f);
    }
    load_refused(d, "no PEM certificate", "garbage certificate");
    {
        FILE *f = fopen(P("garbage/ca.key"), "w");
        fputs("-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n", f);
        fclose(f);
        chmod(P("garbage/ca.key"), 0600);
        tl_write_cert(P("garbage/ca.crt"), good);
    }
    load_refused(d, "no usable PEM private key", "garbage key");
    free(d);
    d = tl_ca_dir(tmp, "keydir", good, k1);
    unlink(P("keydir/ca.key"));
    mkdir(P("keydir/ca.key"), 0700);
    load_refused(d, "not a regular file", "ca.key is a directory");
    free(d);
    d = tl_ca_dir(tmp, "nocert", good, k1);
    unlink(P("nocert/ca.crt"));
    load_refused(d, "ca.crt: No such file", "ca.crt missing");
    free(d);

    X509_free(good);
    EVP_PKEY_free(k1);
    EVP_PKEY_free(k2);
    EVP_PKEY_free(weak);
    EVP_PKEY_free(ed);
    EVP_PKEY_free(p384);
}

/* ---- sharing -------------------------------------------------------------- */

static tls_ca_t *shared;

static void *ref_thread(void *arg)
{
    (void)arg;
    for (int k = 0; k < 20000; k++) {
        tls_ca_t *r = tls_ca_ref(shared);
        if (strlen(tls_ca_fingerprint(r)) != 64)
            return (void *)1;
        tls_ca_unref(r);
    }
    return NULL;
}

static void test_refs(void)
{
    char err[1024];
    pthread_t th[4];
    int bad = 0;

    shared = tls_ca_load(P("rsa"), err, sizeof(err));
    if (!ok(shared != NULL, "refs: CA loaded"))
        return;
    for (int k = 0; k < 4; k++)
        pthread_create(&th[k], NULL, ref_thread, NULL);
    for (int k = 0; k < 4; k++) {
        void *r;
        pthread_join(th[k], &r);
        bad += r != NULL;
    }
    is_int(bad, 0, "4 threads x 20000 ref/unref pairs");
    tls_ca_unref(shared); /* the last one frees: ASan reports a leak otherwise */
    tls_ca_unref(NULL);
    ok(1, "unref(NULL) is a no-op");
}

/* ---- tls_conf ------------------------------------------------------------- */

static conf_t *conf_from(const char *text, char *err, size_t errlen)
{
    conf_tree_t *t = conf_tree_parse(P("main.conf"), text, strlen(text), err, errlen);
    conf_t *c;

    if (t == NULL)
        return NULL;
    c = conf_core_build(t, P("main.conf"), err, errlen);
    if (c == NULL)
        conf_tree_free(t);
    return c;
}

/* Checks text; want NULL: must pass, else the error must contain want. */
static void check_conf(const char *text, const char *want, const char *name)
{
    char err[2048] = "";
    conf_t *c = conf_from(text, err, sizeof(err));
    tls_ca_t *ca = NULL;
    int rc;

    if (!ok(c != NULL, "%s: parses", name)) {
        diag("  %s", err);
        return;
    }
    rc = tls_conf_check(c, &ca, err, sizeof(err));
    if (want == NULL) {
        if (!ok(rc == 0, "%s: checks out", name))
            diag("  %s", err);
        ok(c->intercept ? ca != NULL : ca == NULL, "%s: the CA handed over only when intercepting",
           name);
    } else {
        ok(rc == -1 && ca == NULL, "%s: refused", name);
        if (!ok(strstr(err, want) != NULL, "%s: says '%s'", name, want))
            diag("  got: %s", err);
    }
    tls_ca_unref(ca);
    conf_unref(c);
}

static void test_conf(void)
{
    char err[1024], text[4096], want[PATH_MAX + 128];
    conf_t *c;
    conf_strlist_t l;
    FILE *f;

    c = conf_from("# empty\n", err, sizeof(err));
    if (ok(c != NULL, "defaults: parse")) {
        is_int(c->intercept, 0, "default: intercept off");
        ok(c->ca_dir != NULL && strlen(c->ca_dir) > 18 &&
               strcmp(c->ca_dir + strlen(c->ca_dir) - 18, "/lib/portcullis/ca") == 0,
           "default: ca_dir LOCALSTATEDIR/lib/portcullis/ca (%s)", c->ca_dir);
        ok(c->upstream_ca_file == NULL && c->no_intercept == NULL, "default: no extra files");
        is_int(tls_conf_check(c, NULL, err, sizeof(err)), 0, "defaults check out");
        conf_unref(c);
    }
    c = conf_from("intercept on\nca_dir ec\nupstream_ca_file x.pem\nno_intercept list\n", err,
                  sizeof(err));
    if (ok(c != NULL, "directives parse")) {
        is_int(c->intercept, 1, "intercept on");
        is_str(c->ca_dir, P("ec"), "ca_dir relative to the config file");
        is_str(c->upstream_ca_file, P("x.pem"), "upstream_ca_file relative to the config");
        is_str(c->no_intercept, P("list"), "no_intercept relative to the config");
        conf_unref(c);
    }
    err[0] = '\0';
    c = conf_from("intercept maybe\n", err, sizeof(err));
    ok(c == NULL && strstr(err, "main.conf:1: intercept:") != NULL, "intercept maybe: refused");
    conf_unref(c);
    c = conf_from("ca_dir a\nca_dir b\n", err, sizeof(err));
    ok(c == NULL && strstr(err, "'ca_dir' is duplicate") != NULL, "ca_dir twice: refused");
    conf_unref(c);

    check_conf("intercept on\nca_dir rsa\n", NULL, "intercept with a good CA");
    check_conf("intercept off\nca_dir nonexistent\n", NULL, "intercept off: CA not read");
    snprintf(want, sizeof(want), "main.conf:2: ca_dir: cannot open %s/ca.key", P("nonexistent"));
    check_conf("intercept on\nca_dir nonexistent\n", want, "intercept with a missing CA");
    check_conf("intercept on\nca_dir expired\n", "main.conf:2: ca_dir:",
               "intercept with an expired CA");
    check_conf("\n\nintercept on\n", "main.conf:3: intercept: cannot open",
               "intercept with the default ca_dir missing");

    /* upstream_ca_file */
    {
        X509 *up = read_cert(P("rsa/ca.crt"));
        tl_write_cert(P("upstream.pem"), up);
        X509_free(up);
    }
    check_conf("upstream_ca_file upstream.pem\n", NULL, "upstream_ca_file with a certificate");
    f = fopen(P("junk.pem"), "w");
    fputs("hello\n", f);
    fclose(f);
    check_conf("upstream_ca_file junk.pem\n", "main.conf:1: upstream_ca_file:",
               "upstream_ca_file without certificates: where");
    check_conf("upstream_ca_file junk.pem\n", "no PEM certificate",
               "upstream_ca_file without certificates: why");
    check_conf("upstream_ca_file missing.pem\n", "cannot open: No such file",
               "upstream_ca_file missing");
    {
        X509_STORE *st = tls_upstream_store_new(P("upstream.pem"), err, sizeof(err));
        ok(st != NULL, "tls_upstream_store_new with an extra file");
        X509_STORE_free(st);
        st = tls_upstream_store_new(NULL, err, sizeof(err));
        ok(st != NULL, "tls_upstream_store_new: system store only");
        X509_STORE_free(st);
    }

    /* no_intercept */
    f = fopen(P("list"), "w");
    fputs("# banks\nBank.Example\n\n*.health.example   # and below\n.updates.example\n"
          "  192.0.2.7\n2001:DB8::1\npinned.example.\n",
          f);
    fclose(f);
    check_conf("no_intercept list\n", NULL, "no_intercept with good entries");
    if (ok(tls_no_intercept_read(P("list"), &l, err, sizeof(err)) == 0, "list read")) {
        const char *exp[] = {"bank.example", "health.example", "updates.example", "192.0.2.7",
                             "2001:db8::1", "pinned.example"};
        is_int(l.n, 6, "six entries");
        for (int k = 0; k < l.n && k < 6; k++)
            is_str(l.v[k], exp[k], "entry %d normalised", k + 1);
        for (int k = 0; k < l.n; k++)
            free(l.v[k]);
        free(l.v);
    }
    f = fopen(P("badlist"), "w");
    fputs("ok.example\n# fine\nbad*.example\n", f);
    fclose(f);
    snprintf(text, sizeof(text), "no_intercept badlist\n");
    snprintf(want, sizeof(want), "main.conf:1: no_intercept: %s:3: 'bad*.example' is not a "
             "domain or IP address", P("badlist"));
    check_conf(text, want, "no_intercept with a bad entry");
    f = fopen(P("twolist"), "w");
    fputs("a.example b.example\n", f);
    fclose(f);
    check_conf("no_intercept twolist\n", "twolist:1: one entry per line",
               "no_intercept with two entries on a line");
    check_conf("no_intercept nolist\n", "cannot open", "no_intercept missing");
}

int main(void)
{
    tmp = tl_tmpdir("ca_test");
    test_create();
    test_refuse();
    test_refs();
    test_conf();
    tl_rm_rf(tmp);
    free(tmp);
    return done_testing();
}
