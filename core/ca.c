/* ca.c - creates and loads the local CA and its leaf key: immutable, shared, refcounted. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <openssl/bio.h>
#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include "ca.h"
#include "tls_x509.h"

#define CA_FILE_MAX (1024 * 1024)  /* a PEM file larger than this is not ours */
#define CA_DEFAULT_DAYS 3650
#define CA_MAX_DAYS 36500

struct tls_ca {
    atomic_uint refs;
    char *dir;
    X509 *cert;
    EVP_PKEY *key;
    EVP_PKEY *leaf_key;
    X509_NAME *name;              /* subject, encoded once: read-only from now on */
    ASN1_OCTET_STRING *keyid;     /* the CA's key identifier */
    ASN1_OCTET_STRING *leaf_keyid;
    time_t not_before, not_after;
    int rsa;
    char fingerprint[65];
    char subject[512];
    char key_type[32];
};

/* ---- reading files ------------------------------------------------------- */

/* Reads DIR/NAME into a memory BIO. When secret, the file must not be
 * accessible by group or others; the mode is checked on the descriptor that
 * is read, so a rename in between cannot fool the check. Returns the BIO
 * (BIO_free) or NULL with a message. */
static BIO *read_file(const char *path, int secret, char *err, size_t errlen)
{
    struct stat st;
    BIO *bio = NULL;
    char *buf = NULL;
    ssize_t n;
    size_t have = 0;
    int fd;

    fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
    if (fd < 0) {
        snprintf(err, errlen, "cannot open %s: %s%s", path, strerror(errno),
                 errno == ENOENT ? " (create a CA with: portcullis ca init)" : "");
        return NULL;
    }
    if (fstat(fd, &st) < 0) {
        snprintf(err, errlen, "cannot stat %s: %s", path, strerror(errno));
        goto fail;
    }
    if (!S_ISREG(st.st_mode)) {
        snprintf(err, errlen, "%s is not a regular file", path);
        goto fail;
    }
    if (secret && (st.st_mode & 077) != 0) {
        snprintf(err, errlen,
                 "%s is accessible by group or others (mode %04o): the CA key "
                 "must stay private; chmod 600 %s",
                 path, (unsigned)(st.st_mode & 07777), path);
        goto fail;
    }
    if (st.st_size > CA_FILE_MAX) {
        snprintf(err, errlen, "%s is too large for a PEM file", path);
        goto fail;
    }
    buf = malloc((size_t)st.st_size + 1);
    if (buf == NULL) {
        snprintf(err, errlen, "out of memory");
        goto fail;
    }
    while (have < (size_t)st.st_size &&
           (n = read(fd, buf + have, (size_t)st.st_size - have)) != 0) {
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            snprintf(err, errlen, "cannot read %s: %s", path, strerror(errno));
            goto fail;
        }
        have += (size_t)n;
    }
    bio = BIO_new(BIO_s_mem());
    if (bio == NULL || BIO_write(bio, buf, (int)have) != (int)have) {
        BIO_free(bio);
        bio = NULL;
        snprintf(err, errlen, "out of memory");
    }

fail:
    if (buf != NULL) {
        OPENSSL_cleanse(buf, have);  /* it may hold the key */
        free(buf);
    }
    close(fd);
    return bio;
}

/* An encrypted key would make OpenSSL prompt on the terminal: refuse. */
static int no_passphrase(char *buf, int size, int rwflag, void *u)
{
    return -1;
}

/* ---- what kind of key -------------------------------------------------- */

/* Describes pkey into buf; returns 1 RSA, 0 EC, -1 unsupported (message). */
static int key_kind(EVP_PKEY *pkey, char *buf, size_t len, char *err, size_t errlen)
{
    char group[64];

    if (EVP_PKEY_is_a(pkey, "RSA")) {
        int bits = EVP_PKEY_get_bits(pkey);
        snprintf(buf, len, "RSA %d", bits);
        if (bits < 2048) {
            snprintf(err, errlen, "an RSA key of %d bits is too weak (at least 2048)", bits);
            return -1;
        }
        return 1;
    }
    if (EVP_PKEY_is_a(pkey, "EC") &&
        EVP_PKEY_get_utf8_string_param(pkey, OSSL_PKEY_PARAM_GROUP_NAME, group,
                                       sizeof(group), NULL) == 1) {
        if (strcmp(group, "prime256v1") == 0 || strcmp(group, "P-256") == 0) {
            snprintf(buf, len, "ECDSA P-256");
            return 0;
        }
        if (strcmp(group, "secp384r1") == 0 || strcmp(group, "P-384") == 0) {
            snprintf(buf, len, "ECDSA P-384");
            return 0;
        }
        if (strcmp(group, "secp521r1") == 0 || strcmp(group, "P-521") == 0) {
            snprintf(buf, len, "ECDSA P-521");
            return 0;
        }
        snprintf(err, errlen, "an ECDSA key on curve %s is not accepted by browsers "
                 "(use P-256, P-384 or P-521)", group);
        return -1;
    }
    snprintf(err, errlen, "a %s key is not supported (use ECDSA P-256 or RSA)",
             EVP_PKEY_get0_type_name(pkey) ? EVP_PKEY_get0_type_name(pkey) : "unknown");
    return -1;
}

/* ---- loading ----------------------------------------------------------- */

static void ca_free(tls_ca_t *ca)
{
    if (ca == NULL)
        return;
    X509_free(ca->cert);
    EVP_PKEY_free(ca->key);
    EVP_PKEY_free(ca->leaf_key);
    X509_NAME_free(ca->name);
    ASN1_OCTET_STRING_free(ca->keyid);
    ASN1_OCTET_STRING_free(ca->leaf_keyid);
    free(ca->dir);
    free(ca);
}

/* Checks that cert can issue certificates: basicConstraints CA:TRUE and a
 * keyUsage that includes keyCertSign (RFC 5280 sections 4.2.1.9, 4.2.1.3). */
static int check_is_ca(X509 *cert, const char *path, char *err, size_t errlen)
{
    uint32_t flags = X509_get_extension_flags(cert);

    if (flags & EXFLAG_INVALID) {
        snprintf(err, errlen, "%s has malformed extensions", path);
        return -1;
    }
    if (!(flags & EXFLAG_BCONS) || !(flags & EXFLAG_CA)) {
        snprintf(err, errlen, "%s is not a CA certificate (it needs basicConstraints "
                 "CA:TRUE)", path);
        return -1;
    }
    if (!(flags & EXFLAG_KUSAGE) || !(X509_get_key_usage(cert) & KU_KEY_CERT_SIGN)) {
        snprintf(err, errlen, "%s is not a CA certificate (its keyUsage lacks "
                 "keyCertSign)", path);
        return -1;
    }
    return 0;
}

static int check_dates(tls_ca_t *ca, const char *path, char *err, size_t errlen)
{
    const ASN1_TIME *nb = X509_get0_notBefore(ca->cert), *na = X509_get0_notAfter(ca->cert);
    char when[64];
    time_t now = time(NULL);

    if (tls_x509_time(nb, &ca->not_before) < 0 || tls_x509_time(na, &ca->not_after) < 0) {
        snprintf(err, errlen, "%s has an invalid validity period", path);
        return -1;
    }
    if (ca->not_after <= now) {
        snprintf(err, errlen, "%s expired on %s: create a new CA (portcullis ca init "
                 "--force) and install it in the clients", path,
                 tls_x509_time_str(na, when, sizeof(when)));
        return -1;
    }
    if (ca->not_before > now) {
        snprintf(err, errlen, "%s is not valid before %s (is the clock right?)", path,
                 tls_x509_time_str(nb, when, sizeof(when)));
        return -1;
    }
    return 0;
}

/* Fills the derived fields: fingerprint, subject text, encoded name, key ids. */
static int derive(tls_ca_t *ca, char *err, size_t errlen)
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0;
    const ASN1_OCTET_STRING *ski;
    BIO *mem = NULL;
    int n;

    if (X509_digest(ca->cert, EVP_sha256(), md, &mdlen) != 1 || mdlen != 32)
        goto nomem;
    for (unsigned k = 0; k < mdlen; k++)
        snprintf(ca->fingerprint + 2 * k, 3, "%02x", md[k]);
    mem = BIO_new(BIO_s_mem());
    if (mem == NULL ||
        X509_NAME_print_ex(mem, X509_get_subject_name(ca->cert), 0, XN_FLAG_RFC2253) < 0)
        goto nomem;
    n = BIO_read(mem, ca->subject, sizeof(ca->subject) - 1);
    ca->subject[n > 0 ? n : 0] = '\0';
    /* A name that is copied into leaves from several threads must not be
     * re-encoded lazily by one of them: encode it once here. */
    ca->name = X509_NAME_dup(X509_get_subject_name(ca->cert));
    if (ca->name == NULL || i2d_X509_NAME(ca->name, NULL) <= 0)
        goto nomem;
    ski = X509_get0_subject_key_id(ca->cert);
    ca->keyid = ski != NULL ? ASN1_OCTET_STRING_dup(ski) : tls_x509_key_id(ca->key);
    ca->leaf_keyid = tls_x509_key_id(ca->leaf_key);
    if (ca->keyid == NULL || ca->leaf_keyid == NULL)
        goto nomem;
    BIO_free(mem);
    return 0;

nomem:
    BIO_free(mem);
    tls_x509_error(err, errlen, "out of memory");
    return -1;
}

tls_ca_t *tls_ca_load(const char *dir, char *err, size_t errlen)
{
    char crt_path[PATH_MAX], key_path[PATH_MAX], why[256];
    BIO *crt_bio = NULL, *key_bio = NULL;
    EVP_PKEY *fresh;
    tls_ca_t *ca;

    ERR_clear_error();
    ca = calloc(1, sizeof(*ca));
    if (ca == NULL || (ca->dir = strdup(dir)) == NULL) {
        snprintf(err, errlen, "out of memory");
        goto fail;
    }
    atomic_init(&ca->refs, 1);
    if ((size_t)snprintf(crt_path, sizeof(crt_path), "%s/%s", dir, TLS_CA_CERT_FILE) >=
            sizeof(crt_path) ||
        (size_t)snprintf(key_path, sizeof(key_path), "%s/%s", dir, TLS_CA_KEY_FILE) >=
            sizeof(key_path)) {
        snprintf(err, errlen, "%s: path too long", dir);
        goto fail;
    }
    key_bio = read_file(key_path, 1, err, errlen);
    if (key_bio == NULL)
        goto fail;
    crt_bio = read_file(crt_path, 0, err, errlen);
    if (crt_bio == NULL)
        goto fail;
    ca->cert = PEM_read_bio_X509(crt_bio, NULL, no_passphrase, NULL);
    if (ca->cert == NULL) {
        snprintf(err, errlen, "%s: no PEM certificate in it (%s)", crt_path,
                 tls_x509_error(why, sizeof(why), "unreadable"));
        goto fail;
    }
    ca->key = PEM_read_bio_PrivateKey(key_bio, NULL, no_passphrase, NULL);
    if (ca->key == NULL) {
        snprintf(err, errlen, "%s: no usable PEM private key in it (%s); an encrypted "
                 "key is not supported", key_path,
                 tls_x509_error(why, sizeof(why), "unreadable"));
        goto fail;
    }
    if (check_is_ca(ca->cert, crt_path, err, errlen) < 0)
        goto fail;
    if (EVP_PKEY_eq(X509_get0_pubkey(ca->cert), ca->key) != 1) {
        snprintf(err, errlen, "%s does not belong to %s (the key and the certificate "
                 "do not match)", key_path, crt_path);
        ERR_clear_error();
        goto fail;
    }
    if (check_dates(ca, crt_path, err, errlen) < 0)
        goto fail;
    ca->rsa = key_kind(ca->key, ca->key_type, sizeof(ca->key_type), why, sizeof(why));
    if (ca->rsa < 0) {
        snprintf(err, errlen, "%s: %s", key_path, why);
        goto fail;
    }
    fresh = ca->rsa ? EVP_RSA_gen(2048) : EVP_EC_gen("P-256");
    ca->leaf_key = fresh != NULL ? tls_x509_legacy_key(fresh) : NULL;
    EVP_PKEY_free(fresh);
    if (ca->leaf_key == NULL) {
        snprintf(err, errlen, "cannot make the leaf key: %s",
                 tls_x509_error(why, sizeof(why), "out of memory"));
        goto fail;
    }
    if (derive(ca, err, errlen) < 0)
        goto fail;
    BIO_free(crt_bio);
    BIO_free(key_bio);
    return ca;

fail:
    BIO_free(crt_bio);
    BIO_free(key_bio);
    ca_free(ca);
    ERR_clear_error();
    return NULL;
}

tls_ca_t *tls_ca_ref(tls_ca_t *ca)
{
    /* The caller already holds a reference: no ordering needed. */
    atomic_fetch_add_explicit(&ca->refs, 1, memory_order_relaxed);
    return ca;
}

void tls_ca_unref(tls_ca_t *ca)
{
    if (ca == NULL)
        return;
    /* acq_rel: every thread's last use happens before the free. */
    if (atomic_fetch_sub_explicit(&ca->refs, 1, memory_order_acq_rel) == 1)
        ca_free(ca);
}

X509 *tls_ca_cert(const tls_ca_t *ca) { return ca->cert; }
EVP_PKEY *tls_ca_key(const tls_ca_t *ca) { return ca->key; }
EVP_PKEY *tls_ca_leaf_key(const tls_ca_t *ca) { return ca->leaf_key; }
const X509_NAME *tls_ca_name(const tls_ca_t *ca) { return ca->name; }
const ASN1_OCTET_STRING *tls_ca_key_id(const tls_ca_t *ca) { return ca->keyid; }
const ASN1_OCTET_STRING *tls_ca_leaf_key_id(const tls_ca_t *ca) { return ca->leaf_keyid; }
int tls_ca_is_rsa(const tls_ca_t *ca) { return ca->rsa; }
time_t tls_ca_not_before(const tls_ca_t *ca) { return ca->not_before; }
time_t tls_ca_not_after(const tls_ca_t *ca) { return ca->not_after; }
const char *tls_ca_dir(const tls_ca_t *ca) { return ca->dir; }
const char *tls_ca_fingerprint(const tls_ca_t *ca) { return ca->fingerprint; }
const char *tls_ca_subject(const tls_ca_t *ca) { return ca->subject; }
const char *tls_ca_key_type(const tls_ca_t *ca) { return ca->key_type; }

/* ---- creating ---------------------------------------------------------- */

/* Adds NAME=value to a subject; value is UTF-8. */
static int name_add(X509_NAME *name, int nid, const char *value)
{
    return X509_NAME_add_entry_by_NID(name, nid, MBSTRING_UTF8, (const unsigned char *)value,
                                      -1, -1, 0) == 1 ? 0 : -1;
}

/* The self-signed CA certificate for key. */
static X509 *make_ca_cert(EVP_PKEY *key, const char *cn, const char *org, int days)
{
    X509 *x = X509_new();
    X509_NAME *name = NULL;
    ASN1_OCTET_STRING *keyid = NULL;

    if (x == NULL || X509_set_version(x, X509_VERSION_3) != 1 ||
        tls_x509_random_serial(x) < 0)
        goto fail;
    name = X509_NAME_new();
    /* X.500 order, most significant first: O, then CN. */
    if (name == NULL || (org[0] != '\0' && name_add(name, NID_organizationName, org) < 0) ||
        name_add(name, NID_commonName, cn) < 0 ||
        X509_set_subject_name(x, name) != 1 || X509_set_issuer_name(x, name) != 1)
        goto fail;
    /* An hour back, like the leaves: a client whose clock is a little
     * behind still accepts what was just made. */
    if (X509_gmtime_adj(X509_getm_notBefore(x), -3600) == NULL ||
        X509_time_adj_ex(X509_getm_notAfter(x), days, 0, NULL) == NULL)
        goto fail;
    if (X509_set_pubkey(x, key) != 1)
        goto fail;
    keyid = tls_x509_key_id(key);
    /* RFC 5280 section 4.2.1.9: a CA; pathlen 0 since it only ever signs
     * leaves. Section 4.2.1.3: keyCertSign, and cRLSign for completeness. */
    if (keyid == NULL || tls_x509_basic_constraints(x, 1, 0) < 0 ||
        tls_x509_key_usage(x, TLS_KU_KEY_CERT_SIGN | TLS_KU_CRL_SIGN) < 0 ||
        tls_x509_subject_key_id(x, keyid) < 0 || tls_x509_authority_key_id(x, keyid) < 0)
        goto fail;
    if (X509_sign(x, key, EVP_sha256()) <= 0)
        goto fail;
    X509_NAME_free(name);
    ASN1_OCTET_STRING_free(keyid);
    return x;

fail:
    X509_NAME_free(name);
    ASN1_OCTET_STRING_free(keyid);
    X509_free(x);
    return NULL;
}

/* Writes a PEM object to a temporary file in dir with mode, fsynced. Its
 * name is left in tmp for the rename. Returns 0 or -1 (message). */
static int write_temp(const char *dir, const char *base, mode_t mode, EVP_PKEY *key,
                      X509 *cert, char *tmp, size_t tmplen, char *err, size_t errlen)
{
    BIO *bio = NULL;
    int fd = -1, rc = -1;

    if ((size_t)snprintf(tmp, tmplen, "%s/.%s.XXXXXX", dir, base) >= tmplen) {
        snprintf(err, errlen, "%s: path too long", dir);
        tmp[0] = '\0';
        return -1;
    }
    fd = mkstemp(tmp);  /* created 0600: the key is never readable by others */
    if (fd < 0) {
        snprintf(err, errlen, "cannot create a file in %s: %s", dir, strerror(errno));
        tmp[0] = '\0';
        return -1;
    }
    if (fchmod(fd, mode) < 0) {
        snprintf(err, errlen, "cannot chmod %s: %s", tmp, strerror(errno));
        goto fail;
    }
    bio = BIO_new_fd(fd, BIO_NOCLOSE);
    if (bio == NULL ||
        (key != NULL && PEM_write_bio_PrivateKey(bio, key, NULL, NULL, 0, NULL, NULL) != 1) ||
        (cert != NULL && PEM_write_bio_X509(bio, cert) != 1) || BIO_flush(bio) != 1) {
        snprintf(err, errlen, "cannot write %s: %s", tmp, strerror(errno));
        goto fail;
    }
    if (fsync(fd) < 0) {
        snprintf(err, errlen, "cannot write %s: %s", tmp, strerror(errno));
        goto fail;
    }
    rc = 0;

fail:
    BIO_free(bio);
    if (close(fd) < 0 && rc == 0) {
        snprintf(err, errlen, "cannot write %s: %s", tmp, strerror(errno));
        rc = -1;
    }
    return rc;
}

/* Makes dir when it is missing (mode 0755); its parent must exist. */
static int make_dir(const char *dir, char *err, size_t errlen)
{
    struct stat st;

    if (stat(dir, &st) == 0) {
        if (S_ISDIR(st.st_mode))
            return 0;
        snprintf(err, errlen, "%s is not a directory", dir);
        return -1;
    }
    if (errno != ENOENT || mkdir(dir, 0755) < 0) {
        snprintf(err, errlen, "cannot create the directory %s: %s", dir, strerror(errno));
        return -1;
    }
    return 0;
}

int tls_ca_create(const char *dir, const tls_ca_opts_t *opts, char *err, size_t errlen)
{
    static const tls_ca_opts_t defaults;
    char crt_path[PATH_MAX], key_path[PATH_MAX], tmp_key[PATH_MAX], tmp_crt[PATH_MAX];
    char host[256], cn_buf[128], why[256];
    const char *cn, *org;
    EVP_PKEY *key = NULL;
    X509 *cert = NULL;
    struct stat st;
    int days, rc = -1, dfd;

    tmp_key[0] = tmp_crt[0] = '\0';
    ERR_clear_error();
    if (opts == NULL)
        opts = &defaults;
    days = opts->days ? opts->days : CA_DEFAULT_DAYS;
    if (days < 1 || days > CA_MAX_DAYS) {
        snprintf(err, errlen, "validity of %d days is out of range (1..%d)", days,
                 CA_MAX_DAYS);
        return -1;
    }
    if (opts->cn != NULL) {
        cn = opts->cn;
    } else {
        if (gethostname(host, sizeof(host)) < 0 || host[0] == '\0')
            snprintf(host, sizeof(host), "localhost");
        host[sizeof(host) - 1] = '\0';
        /* ub-common-name is 64 (RFC 5280 appendix A): the host name gets
         * what the fixed text leaves. */
        snprintf(cn_buf, sizeof(cn_buf), "Portcullis local CA (%.42s)", host);
        cn = cn_buf;
    }
    org = opts->org != NULL ? opts->org : "Portcullis";
    if (cn[0] == '\0' || strlen(cn) > 64 || strlen(org) > 64) {
        snprintf(err, errlen, "the common name must have 1 to 64 characters and the "
                 "organization at most 64");
        return -1;
    }
    if ((size_t)snprintf(crt_path, sizeof(crt_path), "%s/%s", dir, TLS_CA_CERT_FILE) >=
            sizeof(crt_path) ||
        (size_t)snprintf(key_path, sizeof(key_path), "%s/%s", dir, TLS_CA_KEY_FILE) >=
            sizeof(key_path)) {
        snprintf(err, errlen, "%s: path too long", dir);
        return -1;
    }
    if (make_dir(dir, err, errlen) < 0)
        return -1;
    if (!opts->force && (lstat(key_path, &st) == 0 || lstat(crt_path, &st) == 0)) {
        snprintf(err, errlen, "a CA already exists in %s; --force replaces it (every "
                 "client must then trust the new ca.crt)", dir);
        return -1;
    }

    key = opts->rsa ? EVP_RSA_gen(2048) : EVP_EC_gen("P-256");
    if (key == NULL || (cert = make_ca_cert(key, cn, org, days)) == NULL) {
        snprintf(err, errlen, "cannot make the CA: %s",
                 tls_x509_error(why, sizeof(why), "out of memory"));
        goto fail;
    }
    if (write_temp(dir, TLS_CA_KEY_FILE, 0600, key, NULL, tmp_key, sizeof(tmp_key), err,
                   errlen) < 0 ||
        write_temp(dir, TLS_CA_CERT_FILE, 0644, NULL, cert, tmp_crt, sizeof(tmp_crt), err,
                   errlen) < 0)
        goto fail;
    /* The key first: a crash between the renames leaves a new key with an
     * old certificate, which tls_ca_load() reports as a mismatch, never a
     * certificate without its key. */
    if (rename(tmp_key, key_path) < 0) {
        snprintf(err, errlen, "cannot rename %s to %s: %s", tmp_key, key_path,
                 strerror(errno));
        goto fail;
    }
    tmp_key[0] = '\0';
    if (rename(tmp_crt, crt_path) < 0) {
        snprintf(err, errlen, "cannot rename %s to %s: %s", tmp_crt, crt_path,
                 strerror(errno));
        goto fail;
    }
    tmp_crt[0] = '\0';
    dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd >= 0) {
        (void)fsync(dfd);  /* the renames reach the disk too */
        close(dfd);
    }
    rc = 0;

fail:
    if (tmp_key[0] != '\0')
        unlink(tmp_key);
    if (tmp_crt[0] != '\0')
        unlink(tmp_crt);
    EVP_PKEY_free(key);
    X509_free(cert);
    ERR_clear_error();
    return rc;
}
