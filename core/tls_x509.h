/* tls_x509.h - certificate building blocks shared by the CA and the leaf minter. */
#ifndef PC_TLS_X509_H
#define PC_TLS_X509_H

#include <time.h>

#include <openssl/x509.h>

/*
 * Every extension is built from its ASN.1 structure (BASIC_CONSTRAINTS,
 * ASN1_BIT_STRING, GENERAL_NAME...), never from a configuration string that
 * OpenSSL would parse: a host name with a ',' or a NUL cannot smuggle a
 * second value in. All functions are thread-safe (they touch only their
 * arguments) and return 0, or -1 when OpenSSL failed (out of memory).
 */

/* Key usage bits (RFC 5280 section 4.2.1.3), for tls_x509_key_usage(). */
#define TLS_KU_DIGITAL_SIGNATURE (1u << 0)
#define TLS_KU_KEY_ENCIPHERMENT (1u << 2)
#define TLS_KU_KEY_CERT_SIGN (1u << 5)
#define TLS_KU_CRL_SIGN (1u << 6)

/* A random positive serial of 127 bits (CA/Browser Forum: at least 64 bits
 * of CSPRNG output), always 16 bytes long in DER. */
int tls_x509_random_serial(X509 *x);

/* basicConstraints, critical: cA and, when pathlen >= 0, pathLenConstraint. */
int tls_x509_basic_constraints(X509 *x, int ca, int pathlen);

/* keyUsage, critical, with the TLS_KU_* bits. */
int tls_x509_key_usage(X509 *x, unsigned bits);

/* extKeyUsage serverAuth (not critical). */
int tls_x509_eku_server_auth(X509 *x);

/* subjectKeyIdentifier / authorityKeyIdentifier (keyIdentifier only). */
int tls_x509_subject_key_id(X509 *x, const ASN1_OCTET_STRING *id);
int tls_x509_authority_key_id(X509 *x, const ASN1_OCTET_STRING *id);

/* The key identifier of RFC 5280 section 4.2.1.2 method (1): SHA-1 of the
 * subjectPublicKey bits. Returns a new string (ASN1_OCTET_STRING_free), or
 * NULL. */
ASN1_OCTET_STRING *tls_x509_key_id(EVP_PKEY *pkey);

/* Returns a key equal to pkey in OpenSSL's legacy form (a new reference:
 * EVP_PKEY_free), or pkey itself with one more reference where that form
 * is compiled out; NULL when out of memory. OpenSSL 3.0 sets a legacy key
 * into a certificate some 30 times faster (core/tls_legacy_key.c says
 * why); the CA keeps its leaf key this way. */
EVP_PKEY *tls_x509_legacy_key(EVP_PKEY *pkey);

/* Converts an ASN1_TIME to seconds since the epoch. Returns 0 or -1. */
int tls_x509_time(const ASN1_TIME *t, time_t *out);

/* Formats an ASN1_TIME as "2026-11-27 00:00:00 UTC" into buf. Returns buf. */
char *tls_x509_time_str(const ASN1_TIME *t, char *buf, size_t len);

/* The last OpenSSL error as text (or fallback when the queue is empty),
 * clearing this thread's queue. Returns buf. */
const char *tls_x509_error(char *buf, size_t len, const char *fallback);

#endif
