/* tls_testlib.h - TLS unit test helpers: temp dirs, keys, certificates, commands. */
#ifndef PC_TLS_TESTLIB_H
#define PC_TLS_TESTLIB_H

#include <ftw.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include "tap.h"

/* Makes a fresh directory under $TMPDIR (or /tmp); exits on failure. */
static char *tl_tmpdir(const char *tag)
{
    const char *base = getenv("TMPDIR");
    char *d = malloc(PATH_MAX);

    if (d == NULL)
        exit(1);
    snprintf(d, PATH_MAX, "%s/pc-%s.XXXXXX", base && *base ? base : "/tmp", tag);
    if (mkdtemp(d) == NULL) {
        diag("mkdtemp %s failed", d);
        exit(1);
    }
    return d;
}

static int tl_rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path);
}

static void tl_rm_rf(const char *dir)
{
    nftw(dir, tl_rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

/* "ec" (P-256), "ec384", "rsa" (2048), "rsa1024", "ed25519". */
static EVP_PKEY *tl_key(const char *kind)
{
    if (strcmp(kind, "ec") == 0)
        return EVP_EC_gen("P-256");
    if (strcmp(kind, "ec384") == 0)
        return EVP_EC_gen("P-384");
    if (strcmp(kind, "rsa") == 0)
        return EVP_RSA_gen(2048);
    if (strcmp(kind, "rsa1024") == 0)
        return EVP_RSA_gen(1024);
    if (strcmp(kind, "ed25519") == 0)
        return EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
    return NULL;
}

static void tl_ext(X509 *x, X509 *issuer, int nid, const char *value)
{
    X509V3_CTX ctx;
    X509_EXTENSION *ext;

    X509V3_set_ctx(&ctx, issuer ? issuer : x, x, NULL, NULL, 0);
    ext = X509V3_EXT_conf_nid(NULL, &ctx, nid, value);
    if (ext == NULL || X509_add_ext(x, ext, -1) != 1) {
        diag("test bug: extension %d '%s'", nid, value);
        exit(1);
    }
    X509_EXTENSION_free(ext);
}

/* A certificate for key, signed by signer (NULL: self-signed) and named
 * by issuer (NULL: itself). Validity from now + nb to now + na seconds.
 * bc, ku, eku: extension values in openssl.cnf syntax, or NULL for none.
 * The test's own construction, deliberately not core/tls_x509.c's. */
static X509 *tl_cert(EVP_PKEY *key, EVP_PKEY *signer, X509 *issuer, const char *cn, long nb,
                     long na, const char *bc, const char *ku, const char *eku)
{
    X509 *x = X509_new();
    X509_NAME *name = X509_get_subject_name(x);

    X509_set_version(x, X509_VERSION_3);
    ASN1_INTEGER_set(X509_get_serialNumber(x), (long)(random() & 0x7fffffff) + 1);
    X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, (const unsigned char *)cn, -1, -1, 0);
    X509_set_issuer_name(x, issuer ? X509_get_subject_name(issuer) : name);
    X509_gmtime_adj(X509_getm_notBefore(x), nb);
    X509_gmtime_adj(X509_getm_notAfter(x), na);
    X509_set_pubkey(x, key);
    if (bc)
        tl_ext(x, issuer, NID_basic_constraints, bc);
    if (ku)
        tl_ext(x, issuer, NID_key_usage, ku);
    if (eku)
        tl_ext(x, issuer, NID_ext_key_usage, eku);
    tl_ext(x, issuer, NID_subject_key_identifier, "hash");
    signer = signer ? signer : key;
    if (X509_sign(x, signer, EVP_PKEY_is_a(signer, "ED25519") ? NULL : EVP_sha256()) <= 0) {
        diag("test bug: cannot sign %s", cn);
        exit(1);
    }
    return x;
}

static void tl_write_cert(const char *path, X509 *x)
{
    FILE *f = fopen(path, "w");

    if (f == NULL || PEM_write_X509(f, x) != 1) {
        diag("cannot write %s", path);
        exit(1);
    }
    fclose(f);
}

/* Writes key unencrypted (or with passphrase "secret" when encrypt). */
static void tl_write_key(const char *path, EVP_PKEY *key, mode_t mode, int encrypt)
{
    FILE *f;

    unlink(path);
    f = fopen(path, "w");
    if (f == NULL ||
        PEM_write_PrivateKey(f, key, encrypt ? EVP_aes_128_cbc() : NULL,
                             encrypt ? (unsigned char *)"secret" : NULL, encrypt ? 6 : 0,
                             NULL, NULL) != 1) {
        diag("cannot write %s", path);
        exit(1);
    }
    fclose(f);
    chmod(path, mode);
}

/* A CA directory DIR/NAME with ca.crt from cert and ca.key from key. */
static char *tl_ca_dir(const char *dir, const char *name, X509 *cert, EVP_PKEY *key)
{
    char *d = malloc(PATH_MAX), p[PATH_MAX + 16];

    snprintf(d, PATH_MAX, "%s/%s", dir, name);
    mkdir(d, 0755);
    snprintf(p, sizeof(p), "%s/ca.crt", d);
    tl_write_cert(p, cert);
    snprintf(p, sizeof(p), "%s/ca.key", d);
    tl_write_key(p, key, 0600, 0);
    return d;
}

/* Runs a shell command; its stdout and stderr go to out. Returns the exit
 * status (or -1). */
static int tl_run(const char *cmd, char *out, size_t outlen)
{
    char full[3 * PATH_MAX + 64];
    FILE *p;
    size_t n = 0;
    int st;

    snprintf(full, sizeof(full), "%s 2>&1", cmd);
    p = popen(full, "r");
    if (p == NULL)
        return -1;
    if (outlen > 0) {
        n = fread(out, 1, outlen - 1, p);
        out[n] = '\0';
    }
    st = pclose(p);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

#endif
