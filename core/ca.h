/* ca.h - the local CA of TLS interception: creating it, loading it, sharing it between threads. */
#ifndef PC_CA_H
#define PC_CA_H

#include <stddef.h>
#include <time.h>

#include <openssl/evp.h>
#include <openssl/x509.h>

/*
 * A CA lives in a directory (the ca_dir directive) as two PEM files:
 *
 *   ca.crt   the certificate, mode 0644: what clients must trust
 *   ca.key   its private key, unencrypted PKCS#8, mode 0600: whoever reads
 *            it can impersonate any web site to every client that trusts
 *            ca.crt
 *
 * tls_ca_create() writes them (`portcullis ca init`); tls_ca_load() reads
 * them into a tls_ca_t: immutable, reference counted with C11 atomics, and
 * shared by every worker thread. A load also makes the one key pair that
 * every leaf certificate minted under this CA uses (the "one leaf
 * key made at start-up"): ECDSA P-256, or RSA-2048 when the CA key is RSA
 * so that an RSA-only client stays served. A reload that loads the CA again
 * makes a new leaf key and has a new tls_ca_t; the mint cache tells them
 * apart by the CA's fingerprint.
 */

#define TLS_CA_CERT_FILE "ca.crt"
#define TLS_CA_KEY_FILE "ca.key"

typedef struct tls_ca tls_ca_t;

/* Loads DIR/ca.crt and DIR/ca.key. Refused, with a message naming the file
 * and what to do, in err: a missing or unreadable file; a key file that
 * group or others may access (it must be 0600 or stricter); an encrypted
 * key (the daemon starts unattended); a key that does not match the
 * certificate; a certificate that is not a CA (it needs basicConstraints
 * CA:TRUE and a keyUsage with keyCertSign); one that has expired or is not
 * valid yet; a key other than RSA >= 2048 bits or ECDSA on P-256, P-384 or
 * P-521 (what browsers accept). Takes some milliseconds for an ECDSA CA and
 * up to a few hundred for an RSA one (the leaf key is made here): call it
 * off the loop thread. Returns the CA with one reference, or NULL. */
tls_ca_t *tls_ca_load(const char *dir, char *err, size_t errlen);

/* Takes one more reference; returns ca. Thread-safe. */
tls_ca_t *tls_ca_ref(tls_ca_t *ca);

/* Drops a reference; the last one frees the CA. Thread-safe; NULL is a
 * no-op. Leaves and SSL_CTXs made from the CA hold their own OpenSSL
 * references to the objects they need and outlive it safely. */
void tls_ca_unref(tls_ca_t *ca);

/* What the getters return is owned by the CA, valid while the caller holds
 * a reference, and must not be modified (OpenSSL 3 allows concurrent
 * read-only use, signing included, from any number of threads). */
X509 *tls_ca_cert(const tls_ca_t *ca);
EVP_PKEY *tls_ca_key(const tls_ca_t *ca);
EVP_PKEY *tls_ca_leaf_key(const tls_ca_t *ca);    /* shared by all leaves */
const X509_NAME *tls_ca_name(const tls_ca_t *ca); /* the subject, pre-encoded */
const ASN1_OCTET_STRING *tls_ca_key_id(const tls_ca_t *ca);      /* leaves' AKI */
const ASN1_OCTET_STRING *tls_ca_leaf_key_id(const tls_ca_t *ca); /* leaves' SKI */
int tls_ca_is_rsa(const tls_ca_t *ca);           /* 1: RSA CA and RSA leaf key */
time_t tls_ca_not_before(const tls_ca_t *ca);
time_t tls_ca_not_after(const tls_ca_t *ca);
const char *tls_ca_dir(const tls_ca_t *ca);
/* SHA-256 of the DER certificate: 64 lowercase hex digits. */
const char *tls_ca_fingerprint(const tls_ca_t *ca);
/* The subject in RFC 2253 form, e.g. "CN=Portcullis local CA (gw),O=Portcullis". */
const char *tls_ca_subject(const tls_ca_t *ca);
/* "ECDSA P-256", "RSA 2048"... */
const char *tls_ca_key_type(const tls_ca_t *ca);

/* Options of tls_ca_create(); zero (or a NULL pointer) means the default. */
typedef struct tls_ca_opts {
    int rsa;          /* 1: RSA-2048 instead of ECDSA P-256 */
    const char *cn;   /* commonName; default "Portcullis local CA (HOSTNAME)" */
    const char *org;  /* organizationName; default "Portcullis" */
    int days;         /* validity in days, 1..36500; default 3650 */
    int force;        /* 1: replace an existing CA */
} tls_ca_opts_t;

/* Writes a new CA into DIR (created with mode 0755 when missing; its parent
 * must exist): self-signed, version 3, a random 127-bit serial, valid from
 * one hour ago for opts->days, basicConstraints critical CA:TRUE
 * pathlen:0, keyUsage critical keyCertSign + cRLSign, subject and authority
 * key identifiers, signed with SHA-256. ca.key is written mode 0600 and
 * ca.crt mode 0644, each to a temporary file in DIR that is fsynced and
 * renamed over the final name, so a crash never leaves half a key. Refuses
 * when DIR/ca.key or DIR/ca.crt exists, unless opts->force. Returns 0, or
 * -1 with a message in err. */
int tls_ca_create(const char *dir, const tls_ca_opts_t *opts, char *err, size_t errlen);

#endif
