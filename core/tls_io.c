/* tls_io.c - one TLS session over memory BIOs: the caller moves the ciphertext, so libuv keeps owning the socket. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>

#include "tls_io.h"

tls_io_t *tls_io_new(SSL_CTX *ctx, int server)
{
    tls_io_t *io = calloc(1, sizeof(*io));

    if (io == NULL)
        return NULL;
    io->ssl = SSL_new(ctx);
    io->rbio = BIO_new(BIO_s_mem());
    io->wbio = BIO_new(BIO_s_mem());
    if (io->ssl == NULL || io->rbio == NULL || io->wbio == NULL)
        goto fail;
    /* An empty memory BIO reads as "retry", not as end of file. */
    BIO_set_mem_eof_return(io->rbio, -1);
    BIO_set_mem_eof_return(io->wbio, -1);
    SSL_set_bio(io->ssl, io->rbio, io->wbio);  /* the SSL owns both now */
    SSL_set_app_data(io->ssl, io);
    if (server)
        SSL_set_accept_state(io->ssl);
    else
        SSL_set_connect_state(io->ssl);
    return io;

fail:
    SSL_free(io->ssl);
    if (io->ssl == NULL) {
        BIO_free(io->rbio);
        BIO_free(io->wbio);
    }
    free(io);
    return NULL;
}

void tls_io_free(tls_io_t *io)
{
    if (io == NULL)
        return;
    /* SSL_free() of a session that was not shut down marks it "not
     * resumable" (OpenSSL's ssl_clear_bad_session), which would spoil a
     * ticket the session cache keeps as well: a connection that merely
     * ends is no bad session. One that failed keeps that mark. */
    if (io->done && !io->failed) {
        SSL_set_quiet_shutdown(io->ssl, 1);
        SSL_shutdown(io->ssl);
        ERR_clear_error();
    }
    SSL_free(io->ssl);
    free(io->sess_key);
    free(io);
}

int tls_io_feed(tls_io_t *io, const void *p, size_t len)
{
    if (len == 0)
        return 0;
    if (len > (size_t)INT32_MAX || BIO_write(io->rbio, p, (int)len) != (int)len)
        return -1;
    return 0;
}

int tls_io_handshake(tls_io_t *io)
{
    int rc;

    if (io->done)
        return TLS_IO_OK;
    if (io->failed)
        return TLS_IO_ERROR;
    ERR_clear_error();
    rc = SSL_do_handshake(io->ssl);
    if (rc == 1) {
        io->done = 1;
        return TLS_IO_OK;
    }
    switch (SSL_get_error(io->ssl, rc)) {
    case SSL_ERROR_WANT_READ:
    case SSL_ERROR_WANT_WRITE:
        return TLS_IO_WANT;
    default:
        io->failed = 1;
        return TLS_IO_ERROR;
    }
}

int tls_io_read(tls_io_t *io, void *buf, size_t cap, size_t *n)
{
    int rc;

    *n = 0;
    if (io->failed)
        return TLS_IO_ERROR;
    if (io->eof)
        return TLS_IO_EOF;
    ERR_clear_error();
    rc = SSL_read_ex(io->ssl, buf, cap, n);
    if (rc == 1)
        return TLS_IO_OK;
    switch (SSL_get_error(io->ssl, rc)) {
    case SSL_ERROR_WANT_READ:
    case SSL_ERROR_WANT_WRITE:
        return TLS_IO_WANT;
    case SSL_ERROR_ZERO_RETURN:
        io->eof = 1;
        return TLS_IO_EOF;
    default:
        io->failed = 1;
        return TLS_IO_ERROR;
    }
}

int tls_io_has_input(const tls_io_t *io)
{
    return SSL_pending(io->ssl) > 0 || BIO_ctrl_pending(io->rbio) > 0;
}

int tls_io_write(tls_io_t *io, const void *p, size_t len)
{
    size_t done = 0;

    if (io->failed || !io->done)
        return -1;
    if (len == 0)
        return 0;
    ERR_clear_error();
    /* A memory BIO takes everything: one call writes len bytes in records
     * of at most 16 KiB. */
    if (SSL_write_ex(io->ssl, p, len, &done) != 1 || done != len) {
        io->failed = 1;
        return -1;
    }
    return 0;
}

void tls_io_close(tls_io_t *io)
{
    if (!io->done || io->failed)
        return;
    if (SSL_get_shutdown(io->ssl) & SSL_SENT_SHUTDOWN)
        return;
    ERR_clear_error();
    SSL_shutdown(io->ssl);
    ERR_clear_error();
}

size_t tls_io_pending(const tls_io_t *io)
{
    return BIO_ctrl_pending(io->wbio);
}

size_t tls_io_take(tls_io_t *io, void *buf, size_t cap)
{
    int n;

    if (cap > (size_t)INT32_MAX)
        cap = (size_t)INT32_MAX;
    n = BIO_read(io->wbio, buf, (int)cap);
    return n > 0 ? (size_t)n : 0;
}

const char *tls_io_error(char *buf, size_t len)
{
    unsigned long e = ERR_peek_error();

    if (e == 0) {
        snprintf(buf, len, "TLS protocol error");
    } else {
        const char *reason = ERR_reason_error_string(e);
        if (reason != NULL)
            snprintf(buf, len, "%s", reason);
        else
            ERR_error_string_n(e, buf, len);
    }
    ERR_clear_error();
    return buf;
}

void tls_alert_record(unsigned char out[7], int desc)
{
    /* ContentType alert(21), legacy_record_version 0x0303 (RFC 8446
     * section 5.1), length 2, AlertLevel fatal(2), the description. */
    out[0] = 21;
    out[1] = 3;
    out[2] = 3;
    out[3] = 0;
    out[4] = 2;
    out[5] = 2;
    out[6] = (unsigned char)desc;
}
