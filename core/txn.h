/* txn.h - one HTTP transaction: request checks, forwarding, response relay, logging. */
#ifndef PC_TXN_H
#define PC_TXN_H

#include <stdint.h>
#include <sys/time.h>

#include "client.h"
#include "conf.h"
#include "dns.h"
#include "http_msg.h"
#include "upstream.h"
#include "url.h"

enum txn_body { BODY_NONE, BODY_LENGTH, BODY_CHUNKED };

/* How the response body travels to the client. */
enum txn_resp_mode {
    RESP_NONE,     /* no body (HEAD, 1xx, 204, 304) */
    RESP_RAW,      /* bytes as received: Content-Length or chunked to HTTP/1.1 */
    RESP_CHUNK,    /* close-delimited from upstream, re-chunked to HTTP/1.1 */
    RESP_DECODED,  /* chunked from upstream, decoded for HTTP/1.0, close after */
    RESP_EOF,      /* close-delimited to an HTTP/1.0 client, close after */
};

enum txn_resp_state { RS_WAIT, RS_BODY, RS_DONE };

typedef struct txn {
    client_t *c;
    worker_t *w;
    conf_t *conf;              /* the snapshot this transaction started with */
    uint64_t start;            /* uv_now() at the first request byte */

    /* request */
    char *target;              /* request target as received (NUL-terminated) */
    size_t target_len;
    http_msg_t req;
    url_t url;
    int method;                /* llhttp_method_t */
    char method_name[24];
    unsigned char vmajor, vminor;
    enum txn_body req_body;
    uint64_t req_clen;
    int req_done;              /* request message fully parsed */
    int body_streaming;        /* request body goes upstream as parsed */
    int client_keepalive;      /* the client allows keep-alive */
    int internal;              /* origin-form: for the proxy itself */

    /* upstream */
    dns_query_t *dnsq;
    dns_result_t *addrs;
    int addr_i;
    int local_refused;         /* addresses refused as local */
    int last_err;              /* last connect/IO error (UV code) */
    int retried;
    upstream_t *up;
    char hier[NETADDR_STRLEN + 16];

    /* response */
    http_msg_t resp;
    int status;
    enum txn_resp_state rs;
    enum txn_resp_mode mode;
    int head_sent;             /* response head queued to the client */
    int close_after;           /* close the client after this response */
    uint64_t bytes_out;        /* bytes queued to the client */
    uint64_t bytes_in;         /* request bytes read from the client */
    char mime[128];

    /* CONNECT tunnel */
    int tun_client_eof;
    int tun_upstream_eof;

    /* log */
    const char *code;          /* Squid result code: TCP_MISS, TCP_DENIED... */
    int aborted;
    int ended;
} txn_t;

/* Starts a transaction for the request whose head the client just parsed.
 * done is 1 when the request has no body and is complete. */
txn_t *txn_new(client_t *c);
void txn_request_head(txn_t *t, int done);
/* The request message ended (all body bytes parsed). */
void txn_request_complete(txn_t *t);
/* Raw request body bytes [p, p+len) of buffer b were parsed. */
void txn_request_body(txn_t *t, iobuf_t *b, const char *p, size_t len);
/* Ends the transaction normally and closes the client connection (a
 * finished tunnel). */
void txn_end(txn_t *t);
/* The client went away or the connection failed: end everything now. */
void txn_abort(txn_t *t, const char *why);
/* The request could not be parsed: 400/431/414 and close. */
void txn_bad_request(client_t *c, txn_t *t, int status, const char *why);
/* Client flow control: its output queue drained below the low mark. */
void txn_client_drained(txn_t *t);
/* Frees a transaction that never started (parser error before the head). */
void txn_free(txn_t *t);

/* Upstream events, called by upstream.c. */
void txn_upstream_connected(txn_t *t, int status);
void txn_upstream_data(txn_t *t, iobuf_t *b, const char *p, size_t len);
void txn_upstream_eof(txn_t *t, int status);
void txn_upstream_timeout(txn_t *t);
void txn_upstream_drained(txn_t *t);

/* Resolves the target host and connects to the first usable address; ends
 * in txn_upstream_connected() or an error page. */
void txn_resolve(txn_t *t);
/* Strips hop-by-hop fields and rebuilds Host before forwarding. */
void txn_rewrite_request(txn_t *t);

/* Sends a page made by the proxy (error page) and ends the transaction.
 * code is the Squid result code for the log. */
void txn_respond_error(txn_t *t, int status, const char *code,
                       const char *errname, const char *detail);

#endif
