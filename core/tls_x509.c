/* tls_x509.c - extensions, serials, key ids and times, built from structures. */
#include <stdio.h>
#include <string.h>

#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <openssl/x509v3.h>

#include "tls_x509.h"

int tls_x509_random_serial(X509 *x)
{
    unsigned char b[16];
    ASN1_INTEGER *sn = NULL;
    BIGNUM *bn = NULL;
    int rc = -1;

    if (RAND_bytes(b, sizeof(b)) != 1)
        goto fail;
    /* Top bit clear: positive without a leading 0x00; next bit set: the
     * DER length is always 16, so no serial is shorter than the others. */
    b[0] = (unsigned char)((b[0] & 0x7f) | 0x40);
    bn = BN_bin2bn(b, sizeof(b), NULL);
    if (bn == NULL || (sn = BN_to_ASN1_INTEGER(bn, NULL)) == NULL)
        goto fail;
    if (X509_set_serialNumber(x, sn) != 1)
        goto fail;
    rc = 0;

fail:
    ASN1_INTEGER_free(sn);
    BN_free(bn);
    return rc;
}

int tls_x509_basic_constraints(X509 *x, int ca, int pathlen)
{
    BASIC_CONSTRAINTS *bc = BASIC_CONSTRAINTS_new();
    int rc = -1;

    if (bc == NULL)
        goto fail;
    bc->ca = ca ? 0xff : 0;
    if (pathlen >= 0) {
        bc->pathlen = ASN1_INTEGER_new();
        if (bc->pathlen == NULL || ASN1_INTEGER_set(bc->pathlen, pathlen) != 1)
            goto fail;
    }
    if (X509_add1_ext_i2d(x, NID_basic_constraints, bc, 1, X509V3_ADD_REPLACE) != 1)
        goto fail;
    rc = 0;

fail:
    BASIC_CONSTRAINTS_free(bc);
    return rc;
}

int tls_x509_key_usage(X509 *x, unsigned bits)
{
    ASN1_BIT_STRING *ku = ASN1_BIT_STRING_new();
    int rc = -1;

    if (ku == NULL)
        goto fail;
    for (int k = 0; k < 9; k++)
        if ((bits & (1u << k)) && ASN1_BIT_STRING_set_bit(ku, k, 1) != 1)
            goto fail;
    if (X509_add1_ext_i2d(x, NID_key_usage, ku, 1, X509V3_ADD_REPLACE) != 1)
        goto fail;
    rc = 0;

fail:
    ASN1_BIT_STRING_free(ku);
    return rc;
}

int tls_x509_eku_server_auth(X509 *x)
{
    EXTENDED_KEY_USAGE *eku = sk_ASN1_OBJECT_new_null();
    ASN1_OBJECT *o = OBJ_nid2obj(NID_server_auth);
    int rc = -1;

    if (eku == NULL || o == NULL || sk_ASN1_OBJECT_push(eku, o) <= 0)
        goto fail;
    /* OBJ_nid2obj returns a static object: the stack must not free it. */
    if (X509_add1_ext_i2d(x, NID_ext_key_usage, eku, 0, X509V3_ADD_REPLACE) != 1)
        goto fail;
    rc = 0;

fail:
    sk_ASN1_OBJECT_free(eku);
    return rc;
}

int tls_x509_subject_key_id(X509 *x, const ASN1_OCTET_STRING *id)
{
    return X509_add1_ext_i2d(x, NID_subject_key_identifier, (void *)id, 0,
                         X509V3_ADD_REPLACE) == 1 ? 0 : -1;
}

int tls_x509_authority_key_id(X509 *x, const ASN1_OCTET_STRING *id)
{
    AUTHORITY_KEYID *akid = AUTHORITY_KEYID_new();
    int rc = -1;

    if (akid == NULL || (akid->keyid = ASN1_OCTET_STRING_dup(id)) == NULL)
        goto fail;
    if (X509_add1_ext_i2d(x, NID_authority_key_identifier, akid, 0, X509V3_ADD_REPLACE) != 1)
        goto fail;
    rc = 0;

fail:
    AUTHORITY_KEYID_free(akid);
    return rc;
}

ASN1_OCTET_STRING *tls_x509_key_id(EVP_PKEY *pkey)
{
    X509_PUBKEY *pub = NULL;
    const unsigned char *bits;
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int mdlen;
    ASN1_OCTET_STRING *id = NULL;
    int nbits;

    if (X509_PUBKEY_set(&pub, pkey) != 1 ||
        X509_PUBKEY_get0_param(NULL, &bits, &nbits, NULL, pub) != 1 ||
        EVP_Digest(bits, (size_t)nbits, md, &mdlen, EVP_sha1(), NULL) != 1)
        goto fail;
    id = ASN1_OCTET_STRING_new();
    if (id != NULL && ASN1_OCTET_STRING_set(id, md, (int)mdlen) != 1) {
        ASN1_OCTET_STRING_free(id);
        id = NULL;
    }

fail:
    X509_PUBKEY_free(pub);
    return id;
}

int tls_x509_time(const ASN1_TIME *t, time_t *out)
{
    struct tm tm;

    if (t == NULL || ASN1_TIME_to_tm(t, &tm) != 1)
        return -1;
    *out = timegm(&tm);
    return 0;
}

char *tls_x509_time_str(const ASN1_TIME *t, char *buf, size_t len)
{
    struct tm tm;

    if (t == NULL || ASN1_TIME_to_tm(t, &tm) != 1 ||
        strftime(buf, len, "%Y-%m-%d %H:%M:%S UTC", &tm) == 0)
        snprintf(buf, len, "(invalid time)");
    return buf;
}

const char *tls_x509_error(char *buf, size_t len, const char *fallback)
{
    unsigned long e = ERR_get_error();
    const char *reason;

    if (e == 0) {
        snprintf(buf, len, "%s", fallback);
    } else {
        reason = ERR_reason_error_string(e);
        if (reason != NULL)
            snprintf(buf, len, "%s", reason);
        else
            ERR_error_string_n(e, buf, len);
    }
    ERR_clear_error();
    return buf;
}
