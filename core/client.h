/* client.h - one client connection: reading and parsing requests, keep-alive, timeouts. */
#ifndef PC_CLIENT_H
#define PC_CLIENT_H

#include <llhttp.h>
#include <stdint.h>
#include <uv.h>

#include "iobuf.h"
#include "list.h"
#include "netaddr.h"
#include "worker.h"

struct txn;
struct tunnel;
struct tls_io;
struct client_tls;

enum client_state {
    CL_WAIT,      /* between requests (keep-alive) or before the first */
    CL_REQUEST,   /* request head in progress */
    CL_TXN,       /* a transaction owns the connection */
    CL_PEEK,      /* CONNECT answered: reading the ClientHello, deciding,
                   * TLS handshakes of an interception (intercept.c) */
    CL_TUNNEL,    /* CONNECT tunnel spliced */
    CL_LINGER,    /* response sent, draining input before closing */
    CL_CLOSED,
};

/* Why the request parser stopped. */
enum client_pause { PAUSE_NONE, PAUSE_HEADERS, PAUSE_COMPLETE };

typedef struct client {
    uv_tcp_t tcp;            /* first: a refused connection frees via it */
    uv_timer_t timer;
    list_t link;             /* worker->clients */
    list_t idle_link;        /* worker->idle_clients while CL_WAIT */
    worker_t *w;
    uint64_t id;
    netaddr_t addr;
    struct sockaddr_storage peer_ss;
    uint16_t port;
    char addr_text[NETADDR_STRLEN];
    netaddr_t local;
    uint16_t local_port;
    int allowed;             /* from allow_clients */
    int counted;             /* holds a slot in the per-client count */
    int accepted;            /* ACCEPT hooks ran; CONN_CLOSE will */

    llhttp_t parser;
    enum client_pause pause; /* set by a parser callback */
    int parse_paused;        /* the transaction has not released the parser */
    int in_parse;            /* client_parse() is on the stack */
    iobuf_t *in;             /* unparsed input is [in_off, in_len) */
    size_t in_off, in_len;
    outq_t out;

    enum client_state state;
    struct txn *txn;
    struct tunnel *tunnel;
    unsigned nrequests;
    int reading;             /* uv_read_start is active */
    int flow_stopped;        /* reading stopped: the upstream is slow */
    int closing;
    int handles;             /* open libuv handles; freed when 0 */
    int bad_status;          /* 414/431 chosen by a parser callback */
    int value_eol;           /* a header value's line ended, its field did not */
    int version_at_end;      /* the request line's version ran to the end of
                              * the input: the bare-LF check waits for the
                              * next byte (client_parse) */
    const char *block_plugin;  /* blocked at ACCEPT by this plugin */
    int block_status;
    char *block_reason;
    char *block_category;
    struct accesslog_note *notes;  /* conn_note(): each transaction starts with them */
    uint64_t deadline;       /* header or linger deadline (uv_now ms) */
    size_t deadline_bytes;   /* bytes discarded while lingering */
    uint64_t last_activity;  /* last read or write progress */

    /* An intercepted CONNECT turns the connection into HTTP over TLS:
     * reads are decrypted before the parser, c->out encrypts. */
    struct tls_io *tls;      /* the session with the client, or NULL */
    struct client_tls *tlsc; /* what the tunnel was (intercept.h) */
    int in_pump;             /* client_tls_pump() is on the stack */

    /* A splice relay (splice.h) reading this socket: read notifications
     * go to it, and libuv reads nothing. */
    struct splice_dir *splice_rx;
} client_t;

/* Takes over fd, a connection the worker's listener accepted (worker.c).
 * Never fails loudly: on error the connection is closed and logged. */
void client_accept(worker_t *w, int fd);

/* The transaction released the parser: parse the request body or the next
 * pipelined request. */
void client_resume_parse(client_t *c);
/* The transaction finished; keep the connection for the next request when
 * keepalive is set, or close it gracefully after the queued writes. */
void client_txn_done(client_t *c, int keepalive);
/* Closes now (reset semantics are libuv's: queued writes are cancelled). */
void client_close(client_t *c);
/* Stops/starts reading for flow control. */
void client_flow_stop(client_t *c);
void client_flow_start(client_t *c);
/* Re-arms the timer after the state changed. */
void client_timer_update(client_t *c);
/* Worker is draining: close if idle. */
void client_drain(client_t *c);
/* The CONNECT of c was intercepted: from now on the connection carries
 * HTTP requests inside the TLS session io (owned by c from now on). */
void client_tls_begin(client_t *c, struct tls_io *io, struct client_tls *tlsc);

#endif
