/* tls_legacy_key.c - copies a key into OpenSSL's legacy form, fast to put in certificates. */

/* The legacy EC_KEY/RSA calls below are deprecated in OpenSSL 3.0; this
 * file is where they are confined. */
#define OPENSSL_SUPPRESS_DEPRECATED 1

#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/opensslconf.h>
#include <openssl/rsa.h>

#include "tls_x509.h"

/*
 * Why: X509_set_pubkey() with a provider key (what EVP_EC_gen() and the PEM
 * readers make) runs OpenSSL 3.0's encoder and then its decoder, about
 * 0.4 ms of CPU per call, eight times what signing the certificate costs.
 * For a legacy key it calls the key type's own encoder (about 12 us) and
 * keeps the key as the certificate's public key. OpenSSL 3.0 still signs
 * with legacy keys and shares them between threads (it exports them to
 * the provider once, under the key's lock). Where the legacy API is
 * compiled out, the key is returned as it is: slower, still correct.
 */
EVP_PKEY *tls_x509_legacy_key(EVP_PKEY *pkey)
{
    EVP_PKEY *out = NULL;

#ifndef OPENSSL_NO_DEPRECATED_3_0
    if (EVP_PKEY_is_a(pkey, "EC")) {
        EC_KEY *ec = EVP_PKEY_get1_EC_KEY(pkey);
        out = EVP_PKEY_new();
        if (ec == NULL || out == NULL || EVP_PKEY_assign_EC_KEY(out, ec) != 1) {
            EC_KEY_free(ec);
            EVP_PKEY_free(out);
            return NULL;
        }
        return out;
    }
    if (EVP_PKEY_is_a(pkey, "RSA")) {
        RSA *rsa = EVP_PKEY_get1_RSA(pkey);
        out = EVP_PKEY_new();
        if (rsa == NULL || out == NULL || EVP_PKEY_assign_RSA(out, rsa) != 1) {
            RSA_free(rsa);
            EVP_PKEY_free(out);
            return NULL;
        }
        return out;
    }
#endif
    if (EVP_PKEY_up_ref(pkey) != 1)
        return NULL;
    out = pkey;
    return out;
}
