/* tls_conf.h - checks of the TLS interception directives (CA, upstream CAs, no-intercept). */
#ifndef PC_TLS_CONF_H
#define PC_TLS_CONF_H

#include <stddef.h>

#include <openssl/x509_vfy.h>

#include "ca.h"
#include "conf.h"

/*
 * conf_core.c only parses intercept, ca_dir, upstream_ca_file and
 * no_intercept; this checks what they name, at -t, start and reload, with
 * "FILE:LINE: directive: message" errors:
 *   - intercept on (globally or in a policy block): the CA in ca_dir loads
 *     (tls_ca_load() and its rules); with intercept off everywhere the CA
 *     is not needed and not read;
 *   - upstream_ca_file: holds at least one PEM certificate;
 *   - no_intercept: every line is a domain or an IP address (the format
 *     below).
 *
 * The no_intercept file: one entry per line; '#' starts a comment; blank
 * lines are skipped. An entry is a domain, which covers the domain and every
 * name under it ("example.com" covers "www.example.com"), or an IPv4/IPv6
 * address. A leading "*." or "." is accepted and means the same. Case does
 * not matter; entries are normalised as tls_mint_host() does.
 */

/* Checks conf. Returns 0, or -1 with the message in err. When ca is not
 * NULL and intercept is on, *ca gets the loaded CA (a reference for the
 * caller: tls_ca_unref), so that it is not loaded twice; else *ca = NULL. */
int tls_conf_check(const conf_t *conf, tls_ca_t **ca, char *err, size_t errlen);

/* Reads a no_intercept file into out (normalised entries, in file order;
 * the caller frees them with free() and out->v with free()). Returns 0, or
 * -1 with "FILE:LINE: message" or "FILE: message" in err and out empty. */
int tls_no_intercept_read(const char *path, conf_strlist_t *out, char *err, size_t errlen);

/* The trust store for upstream certificates: the system's (OpenSSL's
 * default paths: /etc/ssl/certs on Debian) plus the certificates of
 * extra_file when it is not NULL. Returns the store (X509_STORE_free), or
 * NULL with a message. */
X509_STORE *tls_upstream_store_new(const char *extra_file, char *err, size_t errlen);

#endif
