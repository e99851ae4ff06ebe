/* txn.h - one HTTP transaction: request checks, forwarding, response relay, logging. */
#ifndef PC_TXN_H
#define PC_TXN_H

#include <stdint.h>
#include <sys/time.h>

#include <portcullis/plugin.h>

#include "accesslog.h"
#include "client.h"
#include "conf.h"
#include "dns.h"
#include "http_msg.h"
#include "upstream.h"
#include "url.h"

enum txn_body { BODY_NONE, BODY_LENGTH, BODY_CHUNKED };

/* enum txn_resp_mode: http_msg.h (http_resp_mode() chooses it). */

enum txn_resp_state { RS_WAIT, RS_BODY, RS_DONE };

typedef void (*txn_hooks_done_fn)(struct txn *t, int verdict);

/* Where a hook chain stands (hooks.c). */
typedef struct txn_hooks {
    pc_hook_t hook;
    int next;                  /* next plugin of the set to call */
    int running;               /* a plugin's hook function is on the stack */
    txn_hooks_done_fn done;    /* continuation; NULL when no chain runs */
    pc_plugin_t *current;      /* the plugin called last */
    uint64_t defer_id;         /* pending token, or 0 */
    int fallback;
    uv_timer_t *timer;         /* the token's deadline */
    void (*cancel)(void *arg);
    void *cancel_arg;
    int resolved;              /* resumed while its hook still ran */
    int resolved_verdict;
} txn_hooks_t;

/* A name/value note for the log and block page. */
typedef struct accesslog_note txn_note_t;

/* Why a transaction was blocked. */
typedef struct txn_block {
    const char *plugin;        /* the blocking plugin's name (static) */
    int status;
    char *reason;
    char *category;
} txn_block_t;

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
    int tun_starting;          /* tunnel_splice_with() is on the stack */

    /* splice relays (splice.h): [0] client to upstream (tunnels), [1]
     * upstream to client (tunnels, Content-Length bodies) */
    struct splice_dir *spl[2];
    int spl_failed;            /* no relay could start: copy from now on */

    /* plugins */
    uint64_t serial;           /* process-unique id (pc txn_id) */
    txn_hooks_t hs;
    void **slots;              /* per plugin (pc_plugin_t.slot) */
    void (**slot_dtors)(void *);
    unsigned nslots;
    txn_note_t *notes;
    txn_block_t block;
    int blocked;
    char *sni;
    int end_hooks_done;
    netaddr_t upstream_addr;   /* the address being tried (UPSTREAM_ADDR) */
    struct sockaddr_storage upstream_ss;  /* the same for plugins */
    int has_upstream_addr;
    struct body_state *body[2];  /* per direction, when plugins asked */
    int inspect;               /* response pieces go through txn_body.c */
    int holding;               /* the response is held for plugins */
    int req_inspect;           /* request pieces go through txn_body.c */
    int req_held;              /* the request body was held; send it */
    int body_error;            /* a body piece was refused (parser stop) */
    int resp_hooks_pending;    /* RESPONSE_HEADERS chain not finished */
    int in_resp_head;
    unsigned char resp_vmajor, resp_vminor;
    int resp_chunked;          /* the upstream framed the body chunked */
    char resp_clen[32];        /* Content-Length as received */
    int64_t resp_length;       /* its value, or -1 */
    int resp_eof_framed;       /* no length: the body ends with the connection */
    struct intercept *icp;     /* CONNECT: the ClientHello peek and the TLS
                                * set-up of an interception (intercept.c) */
    int intercept_vote;        /* txn_intercept(): -1 none, 0 splice, 1 intercept */
    char *url_text;            /* normalised URL for plugins (txn_url) */
    char *path_text;           /* path and query, NUL-terminated */
    unsigned refs;             /* txn_hold/txn_release; freed at 0 */

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
/* A connect failed: logs it and tries the next address, or answers with an
 * error page (which may end and free t). */
void txn_connect_failed(txn_t *t, int status);
void txn_upstream_data(txn_t *t, iobuf_t *b, const char *p, size_t len);
void txn_upstream_eof(txn_t *t, int status);
void txn_upstream_timeout(txn_t *t);
void txn_upstream_drained(txn_t *t);
/* The TLS handshake with the upstream ended: status 0 verified, -1 failed
 * (t->up->tls_fail says why). */
void txn_upstream_tls_done(txn_t *t, int status);

/* Resolves the target host and connects to the first usable address; ends
 * in txn_upstream_connected() or an error page. */
void txn_resolve(txn_t *t);
/* Strips hop-by-hop fields and rebuilds Host before forwarding. */
void txn_rewrite_request(txn_t *t);

/* Stops t's splice relays (t->spl): the sockets go back to libuv's reads;
 * a pipe still holding bytes is closed with them. */
void txn_splice_stop(txn_t *t);

/* Keeps t alive across calls that may end it; txn_release frees it at the
 * last reference. */
txn_t *txn_hold(txn_t *t);
void txn_release(txn_t *t);
/* Logs, runs TXN_END, hands the client back (keep-alive when allowed). */
void txn_done(txn_t *t, int keepalive);
/* Blocked: the block page (or an aborted transfer once bytes went out). */
void txn_respond_block(txn_t *t);
/* The bookkeeping of a block without the page (the error log line, the
 * txn.blocked event, the counters): for blocks that cannot show a page,
 * such as a refused TLS tunnel. txn_respond_block() does it itself. */
void txn_block_record(txn_t *t);
const char *txn_get_note(const txn_t *t, const char *name);
void txn_note(txn_t *t, const char *name, const char *value);
/* The request (and its held body, if any) may go upstream now. */
void txn_request_ready(txn_t *t);
/* Writes the response head; length is the Content-Length for
 * RESP_RAW/RESP_LENGTH, or -1 for chunked. Returns 0 or -1 (ended). */
int txn_send_response_head(txn_t *t, int64_t length);
void txn_upstream_resume(txn_t *t);
void txn_upstream_flow(txn_t *t);

/* Builds url_text (and path_text when missing; an existing one is kept,
 * since plugins may hold it) from the parsed target. */
void txn_build_url(txn_t *t);
/* Builds path_text alone, when missing (txn_path needs no URL). */
void txn_build_path(txn_t *t);

/* Bodies for plugins (txn_body.c): the SDK's txn_body_* calls. */
int txn_body_want(txn_t *t, pc_plugin_t *p, int dir, int mode, uint64_t max,
                  int on_oversize);
int txn_body_data(txn_t *t, int dir, const void **p, size_t *len);
int txn_body_fd(txn_t *t, int dir);
uint64_t txn_body_size(txn_t *t, int dir);
int txn_body_wanted_by(txn_t *t, int dir, const pc_plugin_t *p);
int txn_body_held(txn_t *t, int dir);
int txn_body_spool_busy(txn_t *t);
int txn_body_response_begin(txn_t *t);
int txn_body_response_piece(txn_t *t, iobuf_t *b, const char *p, size_t len);
void txn_body_response_end(txn_t *t);
void txn_body_request_hold_start(txn_t *t);
int txn_body_request_piece(txn_t *t, iobuf_t *b, const char *p, size_t len);
void txn_body_request_end(txn_t *t);
void txn_body_request_send(txn_t *t);
void txn_body_drained(txn_t *t);
/* The transaction ended: held bodies go (spool files closed when idle). */
void txn_body_release(txn_t *t);

/* Answers with a page made by the proxy (status, type, body; extra header
 * lines "Name: value\r\n" or NULL) and ends the transaction. */
void txn_respond_page(txn_t *t, int status, const char *ctype,
                      const char *extra, const char *body, size_t len);

/* Sends a page made by the proxy (error page) and ends the transaction.
 * code is the Squid result code for the log. */
void txn_respond_error(txn_t *t, int status, const char *code,
                       const char *errname, const char *detail);

#endif
