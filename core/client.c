/* client.c - one client connection: reading and parsing requests, keep-alive, timeouts. */
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "client.h"
#include "hooks.h"
#include "intercept.h"
#include "log.h"
#include "plugin_host.h"
#include "server.h"
#include "splice.h"
#include "tls_io.h"
#include "tunnel.h"
#include "txn.h"

/* How long a closing connection keeps reading (and discarding) so that the
 * kernel does not answer unread input with a reset that destroys the
 * response in flight (nginx's lingering close). */
#define LINGER_MS 5000
#define LINGER_MAX_BYTES (1024 * 1024)

static int on_req_begin(llhttp_t *p);
static int on_req_url(llhttp_t *p, const char *at, size_t len);
static int on_req_version(llhttp_t *p, const char *at, size_t len);
static int on_req_header_field(llhttp_t *p, const char *at, size_t len);
static int on_req_header_value(llhttp_t *p, const char *at, size_t len);
static int on_req_header_value_complete(llhttp_t *p);
static int on_req_headers_complete(llhttp_t *p);
static int on_req_message_complete(llhttp_t *p);
static int on_req_body(llhttp_t *p, const char *at, size_t len);

static llhttp_settings_t req_settings;
static pthread_once_t req_settings_once = PTHREAD_ONCE_INIT;

static void req_settings_init(void)
{
    llhttp_settings_init(&req_settings);
    req_settings.on_message_begin = on_req_begin;
    req_settings.on_url = on_req_url;
    req_settings.on_version = on_req_version;
    req_settings.on_header_field = on_req_header_field;
    req_settings.on_header_value = on_req_header_value;
    req_settings.on_header_value_complete = on_req_header_value_complete;
    req_settings.on_headers_complete = on_req_headers_complete;
    req_settings.on_message_complete = on_req_message_complete;
    req_settings.on_body = on_req_body;
}

static void client_parse(client_t *c);
static void client_input(client_t *c);
static void client_update_reading(client_t *c);
static void client_linger(client_t *c);

/* ---- lifetime ----------------------------------------------------------- */

static void on_client_close(uv_handle_t *h)
{
    client_t *c = h->data;
    worker_t *w = c->w;

    if (--c->handles > 0)
        return;
    iobuf_unref(c->in);
    tls_io_free(c->tls);
    intercept_client_free(c->tlsc);
    free(c->block_reason);
    free(c->block_category);
    plugin_notes_free(c->notes);
    free(c);
    worker_client_gone(w);
}

void client_close(client_t *c)
{
    if (c->closing)
        return;
    c->closing = 1;
    c->state = CL_CLOSED;
    if (c->txn) {
        txn_t *t = c->txn;
        txn_abort(t, "client connection closed");
    }
    if (c->accepted)
        hooks_conn(c, PC_HOOK_CONN_CLOSE);
    list_remove(&c->link);
    list_remove(&c->idle_link);
    c->w->nclients--;
    if (c->counted)
        server_client_release(c->w->srv, &c->addr);
    uv_close((uv_handle_t *)&c->timer, on_client_close);
    uv_close((uv_handle_t *)&c->tcp, on_client_close);
}

/* ---- timeouts ----------------------------------------------------------- */

/* Makes the close of c a reset (SO_LINGER 0), for a client that stopped
 * reading: what the kernel still holds for it is dropped at once, instead
 * of an orphaned socket trying to push it out for minutes (a slow-read
 * attack's hold on memory; nginx's reset_timedout_connection). */
static void client_reset_on_close(client_t *c)
{
    struct linger lg = {1, 0};
    uv_os_fd_t fd;

    if (uv_fileno((uv_handle_t *)&c->tcp, &fd) == 0)
        setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
}

static void on_client_timer(uv_timer_t *timer);

/* When the connection's current deadline falls, or 0 for none. */
static uint64_t client_due(client_t *c)
{
    conf_t *conf = c->w->conf;
    txn_t *t = c->txn;

    switch (c->state) {
    case CL_WAIT:
        if (c->nrequests == 0)
            return c->deadline;
        return c->last_activity + conf->client_idle_timeout;
    case CL_REQUEST:
        return c->deadline;
    case CL_TXN:
        if (c->out.pending > 0 || (t && splice_dir_blocked(t->spl[1])))
            return c->last_activity + t->conf->send_timeout;
        if (t && t->body_streaming && !t->req_done && !c->flow_stopped)
            return c->last_activity + t->conf->read_timeout;
        return 0;
    case CL_PEEK:
        return c->deadline;
    case CL_TUNNEL:
        return c->last_activity + (t ? t->conf : conf)->tunnel_idle_timeout;
    case CL_LINGER:
        return c->deadline;
    case CL_CLOSED:
        return 0;
    }
    return 0;
}

void client_timer_update(client_t *c)
{
    uint64_t due, now;

    if (c->closing)
        return;
    due = client_due(c);
    if (due == 0) {
        uv_timer_stop(&c->timer);
        return;
    }
    now = uv_now(&c->w->loop);
    uv_timer_start(&c->timer, on_client_timer, due > now ? due - now : 1, 0);
}

static void on_client_timer(uv_timer_t *timer)
{
    client_t *c = timer->data;
    uint64_t due = client_due(c), now = uv_now(&c->w->loop);
    txn_t *t = c->txn;

    if (due == 0)
        return;
    if (due > now) {
        /* Activity moved the deadline since the timer was set. */
        uv_timer_start(&c->timer, on_client_timer, due - now, 0);
        return;
    }
    switch (c->state) {
    case CL_WAIT:
        log_debug(c->id, "closing idle client connection");
        client_close(c);
        return;
    case CL_REQUEST:
        log_info(c->id, "client %s timed out sending the request head",
                 c->addr_text);
        if (t) {
            t->close_after = 1;
            t->client_keepalive = 0;
            txn_respond_error(t, 408, "TAG_NONE", "ERR_LIFETIME_EXP", NULL);
        } else {
            client_close(c);
        }
        return;
    case CL_TXN:
        if (c->out.pending > 0 || (t && splice_dir_blocked(t->spl[1]))) {
            log_info(c->id, "client %s timed out reading the response",
                     c->addr_text);
            client_reset_on_close(c);
        } else
            log_info(c->id, "client %s timed out sending the request body",
                     c->addr_text);
        if (t)
            txn_abort(t, NULL);
        client_close(c);
        return;
    case CL_PEEK:
        if (t)
            intercept_timeout(t);
        else
            client_close(c);
        return;
    case CL_TUNNEL:
        if (t)
            tunnel_timeout(t);
        else
            client_close(c);
        return;
    case CL_LINGER:
    case CL_CLOSED:
        client_close(c);
        return;
    }
}

/* ---- output ------------------------------------------------------------- */

static void on_client_write(outq_t *q, int status)
{
    client_t *c = q->data;

    if (c->closing)
        return;
    if (status < 0) {
        log_debug(c->id, "write to client failed: %s", uv_strerror(status));
        client_close(c);
        return;
    }
    c->last_activity = uv_now(&c->w->loop);
    if (c->txn && q->pending < OUTQ_LOW)
        txn_client_drained(c->txn);
}

/* ---- input -------------------------------------------------------------- */

/* Makes room at the end of c->in for more input. Returns the free space
 * and its start in *p, or 0 when the buffer is full of input nobody took
 * yet (or memory ran out). */
static size_t client_in_room(client_t *c, char **p)
{
    size_t unparsed;

    if (c->in && c->in_off == c->in_len && c->in->refs == 1)
        c->in_off = c->in_len = 0;
    if (c->in && c->in->cap - c->in_len < 2048) {
        unparsed = c->in_len - c->in_off;
        if (unparsed == 0) {
            iobuf_unref(c->in);
            c->in = NULL;
            c->in_off = c->in_len = 0;
        } else if (c->in_off > 0) {
            /* Move the unparsed tail to a fresh buffer; the old one may
             * still be referenced by writes in flight. */
            iobuf_t *nb = iobuf_new(&c->w->bufs);
            if (nb == NULL)
                return 0;
            memcpy(nb->data, c->in->data + c->in_off, unparsed);
            iobuf_unref(c->in);
            c->in = nb;
            c->in_off = 0;
            c->in_len = unparsed;
        } else {
            /* A full buffer of unparsed input: no room until it is used. */
            return 0;
        }
    }
    if (c->in == NULL) {
        c->in = iobuf_new(&c->w->bufs);
        c->in_off = c->in_len = 0;
        if (c->in == NULL)
            return 0;
    }
    *p = c->in->data + c->in_len;
    return c->in->cap - c->in_len;
}

static void on_client_alloc(uv_handle_t *h, size_t hint, uv_buf_t *buf)
{
    client_t *c = h->data;
    char *p = NULL;
    size_t n;

    (void)hint;
    if (c->splice_rx) {
        /* No buffer: libuv reports readability (UV_ENOBUFS) without
         * reading, and the relay splices from the socket. */
        *buf = uv_buf_init(NULL, 0);
        return;
    }
    if (c->tls) {
        /* Ciphertext goes into the session at once: one buffer serves
         * every TLS connection of the worker. */
        *buf = uv_buf_init(c->w->tls_scratch, IOBUF_SIZE);
        return;
    }
    n = client_in_room(c, &p);
    *buf = uv_buf_init(n ? p : NULL, (unsigned)n);
}

static void client_on_eof(client_t *c, int status)
{
    switch (c->state) {
    case CL_PEEK:
        if (c->txn) {
            intercept_client_eof(c->txn, status);
            return;
        }
        client_close(c);
        return;
    case CL_TUNNEL:
        tunnel_client_eof(c->txn, status);
        return;
    case CL_TXN:
        if (c->txn) {
            txn_t *t = c->txn;
            txn_abort(t, status == UV_EOF ? "client closed the connection"
                                          : uv_strerror(status));
        }
        client_close(c);
        return;
    case CL_REQUEST:
        if (c->txn)
            log_info(c->id, "client %s closed the connection in the middle of a "
                     "request head", c->addr_text);
        client_close(c);
        return;
    default:
        client_close(c);
        return;
    }
}

/* Decrypts what the session holds into c->in and parses it, as long as
 * there is room: input nobody can take yet stays inside the session (its
 * ciphertext was read already, so client_input() comes back for it). */
static void client_tls_pump(client_t *c)
{
    char why[160];
    int rc = TLS_IO_WANT;

    if (c->in_pump)
        return;
    c->in_pump = 1;
    while (!c->closing && c->state != CL_LINGER && tls_io_has_input(c->tls)) {
        char *p = NULL;
        size_t room = client_in_room(c, &p), n;

        if (room == 0)
            break;
        rc = tls_io_read(c->tls, p, room, &n);
        if (rc != TLS_IO_OK)
            break;
        c->in_len += n;
        client_parse(c);
    }
    c->in_pump = 0;
    if (c->closing)
        return;
    if (rc == TLS_IO_EOF) {
        client_on_eof(c, UV_EOF);
        return;
    }
    if (rc == TLS_IO_ERROR) {
        log_info(c->id, "TLS error on the connection from %s: %s", c->addr_text,
                 tls_io_error(why, sizeof(why)));
        client_on_eof(c, UV_EPROTO);
        return;
    }
    if (c->state == CL_WAIT && c->in && c->in_off == c->in_len) {
        iobuf_unref(c->in);
        c->in = NULL;
        c->in_off = c->in_len = 0;
    }
    /* Records the session wrote on its own (a KeyUpdate answer). */
    if (!c->out.corked && tls_io_pending(c->tls) > 0 && outq_tls_flush(&c->out, c->tls) < 0)
        client_close(c);
}

/* Parses what is buffered, then what the TLS session holds. */
static void client_input(client_t *c)
{
    client_parse(c);
    if (c->tls && !c->closing)
        client_tls_pump(c);
}

static void on_client_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
    client_t *c = s->data;

    if (c->closing)
        return;
    if (nread == UV_ENOBUFS && c->splice_rx) {
        splice_readable(c->splice_rx);
        return;
    }
    if (nread == UV_ENOBUFS) {
        c->reading = 0;
        uv_read_stop(s);
        return;
    }
    if (nread < 0) {
        client_on_eof(c, (int)nread);
        return;
    }
    if (nread == 0)
        return;
    c->last_activity = uv_now(&c->w->loop);
    if (c->tls && c->state != CL_LINGER) {
        if (tls_io_feed(c->tls, buf->base, (size_t)nread) < 0) {
            client_close(c);
            return;
        }
        client_tls_pump(c);
        client_update_reading(c);
        return;
    }
    if (c->state == CL_LINGER) {
        if (!c->tls)
            c->in_off = c->in_len = 0;  /* discarded */
        c->deadline_bytes += (size_t)nread;
        if (c->deadline_bytes > LINGER_MAX_BYTES)
            client_close(c);
        return;
    }
    c->in_len += (size_t)nread;
    if (c->state == CL_PEEK) {
        if (c->txn)
            intercept_client_data(c->txn);
        client_update_reading(c);
        return;
    }
    if (c->state == CL_TUNNEL) {
        iobuf_t *b = iobuf_ref(c->in);
        const char *p = c->in->data + c->in_off;
        size_t n = c->in_len - c->in_off;
        c->in_off = c->in_len;
        tunnel_client_data(c->txn, b, p, n);
        iobuf_unref(b);
        return;
    }
    client_parse(c);
    client_update_reading(c);
}

static void client_update_reading(client_t *c)
{
    int want;

    if (c->closing)
        return;
    if (c->state == CL_LINGER)
        want = 1;
    else if (c->flow_stopped)
        want = 0;
    else if (c->in && c->in_off == 0 && c->in_len == c->in->cap)
        want = 0;  /* buffer full of input the transaction has not taken */
    else
        want = 1;
    if (want && !c->reading) {
        if (uv_read_start((uv_stream_t *)&c->tcp, on_client_alloc, on_client_read) == 0)
            c->reading = 1;
    } else if (!want && c->reading) {
        uv_read_stop((uv_stream_t *)&c->tcp);
        c->reading = 0;
    }
}

void client_flow_stop(client_t *c)
{
    c->flow_stopped = 1;
    client_update_reading(c);
}

void client_flow_start(client_t *c)
{
    c->flow_stopped = 0;
    client_update_reading(c);
}

/* ---- request parsing ---------------------------------------------------- */

static int on_req_begin(llhttp_t *p)
{
    client_t *c = p->data;

    if (c->txn == NULL) {
        c->txn = txn_new(c);
        if (c->txn == NULL) {
            llhttp_set_error_reason(p, "out of memory");
            return HPE_USER;
        }
    }
    if (c->state == CL_WAIT) {
        list_remove(&c->idle_link);
        c->state = CL_REQUEST;
        /* The head must be complete within client_header_timeout of its
         * first byte, however slowly it trickles in (slowloris). */
        c->deadline = uv_now(&c->w->loop) + c->w->conf->client_header_timeout;
        client_timer_update(c);
    }
    return 0;
}

/* 1 when the span [at, at+len) ended inside the bytes being parsed, so
 * at[len] is the byte that ended it; 0 when it ran to their end and may go
 * on in the next read. */
static int span_ended(const client_t *c, const char *at, size_t len)
{
    return at + len < c->in->data + c->in_len;
}

static int on_req_url(llhttp_t *p, const char *at, size_t len)
{
    client_t *c = p->data;
    txn_t *t = c->txn;
    size_t max = t->conf->max_header_size;
    char *n;

    if (t->target_len + len > max) {
        llhttp_set_error_reason(p, "URI too long");
        c->bad_status = 414;
        return HPE_USER;
    }
    n = realloc(t->target, t->target_len + len + 1);
    if (n == NULL) {
        llhttp_set_error_reason(p, "out of memory");
        return HPE_USER;
    }
    memcpy(n + t->target_len, at, len);
    t->target = n;
    t->target_len += len;
    t->target[t->target_len] = '\0';
    /* A line end right after the target is an HTTP/0.9 request; llhttp
     * would wait for one more byte that such a client never sends. */
    if (span_ended(c, at, len) && (at[len] == '\r' || at[len] == '\n')) {
        llhttp_set_error_reason(p, "HTTP/0.9 request");
        return HPE_USER;
    }
    return 0;
}

/* RFC 9112 2.2: llhttp takes a bare LF after the request line (not after
 * header lines); a proxy must not read lines differently from the server
 * behind it, so the request is refused. A CONNECT head goes to no server,
 * so there the MAY of 2.2 applies (testssl.sh sends "CONNECT h:p
 * HTTP/1.0\n\n"). */
static int on_req_version(llhttp_t *p, const char *at, size_t len)
{
    client_t *c = p->data;

    if (!span_ended(c, at, len)) {
        /* The version has a fixed length, so llhttp ends it without the
         * empty piece that tells the byte after a target or a value: when
         * it ran to the end of a read, client_parse looks at the first
         * byte of the next one (TCP may cut the line anywhere). */
        c->version_at_end = 1;
    } else if (at[len] == '\n' && p->method != HTTP_CONNECT) {
        llhttp_set_error_reason(p, "bare LF after the request line");
        return HPE_USER;
    }
    return 0;
}

static int on_req_header_field(llhttp_t *p, const char *at, size_t len)
{
    client_t *c = p->data;

    if (c->state != CL_REQUEST)
        return 0;  /* trailer fields travel raw with the body */
    if (http_msg_name_piece(&c->txn->req, at, len) < 0) {
        llhttp_set_error_reason(p, "request header section too large");
        c->bad_status = 431;
        return HPE_USER;
    }
    return 0;
}

/* llhttp ends a value's span at its CR and joins a folded next line
 * (obs-fold) to it without a word; a piece that comes after the line ended
 * but before the field did is such a fold. RFC 9112 5.2 lets a proxy
 * reject it, which keeps a folded field from meaning two things. */
static int on_req_header_value(llhttp_t *p, const char *at, size_t len)
{
    client_t *c = p->data;

    if (c->state != CL_REQUEST)
        return 0;
    if (c->value_eol) {
        llhttp_set_error_reason(p, "obs-fold (a header line folded onto the next)");
        return HPE_USER;
    }
    if (http_msg_value_piece(&c->txn->req, at, len) < 0) {
        llhttp_set_error_reason(p, "request header section too large");
        c->bad_status = 431;
        return HPE_USER;
    }
    if (span_ended(c, at, len))
        c->value_eol = 1;
    return 0;
}

static int on_req_header_value_complete(llhttp_t *p)
{
    client_t *c = p->data;

    c->value_eol = 0;
    return 0;
}

static int on_req_headers_complete(llhttp_t *p)
{
    client_t *c = p->data;
    txn_t *t = c->txn;

    /* The proxy never switches protocols on a plain request (Upgrade is
     * hop-by-hop and dropped); only CONNECT leaves HTTP. */
    if (p->method != HTTP_CONNECT)
        p->upgrade = 0;
    if (p->flags & F_CHUNKED) {
        t->req_body = BODY_CHUNKED;
    } else if ((p->flags & F_CONTENT_LENGTH) && p->content_length > 0) {
        t->req_body = BODY_LENGTH;
        t->req_clen = p->content_length;
    } else {
        /* No body: the message completes at once; decide there. */
        return 0;
    }
    c->pause = PAUSE_HEADERS;
    return HPE_PAUSED;
}

/* Decoded request body pieces, for plugins that asked (the raw bytes are
 * forwarded by client_parse). */
static int on_req_body(llhttp_t *p, const char *at, size_t len)
{
    client_t *c = p->data;
    txn_t *t = c->txn;

    if (t == NULL || !t->req_inspect)
        return 0;
    if (txn_body_request_piece(t, c->in, at, len) < 0) {
        t->body_error = 1;
        llhttp_set_error_reason(p, "body check");
        return HPE_USER;
    }
    return 0;
}

static int on_req_message_complete(llhttp_t *p)
{
    client_t *c = p->data;

    c->pause = PAUSE_COMPLETE;
    return HPE_PAUSED;
}

/* Refuses the request being parsed: status, and "reason (ename)" for the
 * log. */
static void bad_head(client_t *c, int status, const char *reason, const char *ename)
{
    char why[160];

    snprintf(why, sizeof(why), "%s (%s)", reason, ename);
    c->state = CL_TXN;
    c->parse_paused = 1;
    txn_bad_request(c, c->txn, status, why);
}

/* Hands parsed input to the transaction. The parser stops at each request's
 * head (until the transaction has an upstream for the body) and at its end
 * (until the response is done), so pipelined requests wait their turn in
 * the input buffer and are answered in order. */
static void client_parse(client_t *c)
{
    if (c->in_parse)
        return;
    c->in_parse = 1;
    while (!c->parse_paused && !c->closing && c->state != CL_TUNNEL &&
           c->state != CL_PEEK && c->state != CL_LINGER && c->in &&
           c->in_off < c->in_len) {
        const char *p = c->in->data + c->in_off;
        size_t n = c->in_len - c->in_off, used;
        enum llhttp_errno err;
        iobuf_t *b = c->in;

        c->pause = PAUSE_NONE;
        if (c->version_at_end) {
            /* on_req_version's check, on the byte after the version. */
            c->version_at_end = 0;
            if (*p == '\n' && c->parser.method != HTTP_CONNECT) {
                bad_head(c, 400, "bare LF after the request line", "HPE_USER");
                break;
            }
        }
        err = llhttp_execute(&c->parser, p, n);
        used = err == HPE_OK ? n : (size_t)(llhttp_get_error_pos(&c->parser) - p);
        c->in_off += used;
        if (c->txn && c->txn->body_streaming && used > 0) {
            iobuf_ref(b);
            txn_request_body(c->txn, b, p, used);
            iobuf_unref(b);
        }
        if (err == HPE_OK)
            continue;
        if (err == HPE_PAUSED) {
            llhttp_resume(&c->parser);
            if (c->pause == PAUSE_HEADERS) {
                c->parse_paused = 1;
                c->state = CL_TXN;
                txn_request_head(c->txn, 0);
            } else if (c->pause == PAUSE_COMPLETE) {
                c->parse_paused = 1;
                if (c->state == CL_REQUEST) {
                    c->state = CL_TXN;
                    txn_request_head(c->txn, 1);
                } else if (c->txn) {
                    txn_request_complete(c->txn);
                }
            }
            continue;
        }
        if (err == HPE_PAUSED_UPGRADE) {
            c->parse_paused = 1;
            continue;
        }
        if (err == HPE_USER && c->txn && c->txn->body_error) {
            /* A plugin refused the upload while it streamed in. */
            txn_t *t = c->txn;
            t->close_after = 1;
            c->parse_paused = 1;
            if (t->blocked)
                txn_respond_block(t);
            else
                txn_respond_error(t, 500, "TCP_MISS", "ERR_SPOOL",
                                  "The proxy could not store the upload for checking.");
            break;
        }
        bad_head(c, c->bad_status ? c->bad_status : 400,
                 llhttp_get_error_reason(&c->parser), llhttp_errno_name(err));
        break;
    }
    c->in_parse = 0;
    if (!c->closing && c->state == CL_WAIT && c->in && c->in_off == c->in_len) {
        /* Idle connections hold no buffer. */
        iobuf_unref(c->in);
        c->in = NULL;
        c->in_off = c->in_len = 0;
    }
}

void client_resume_parse(client_t *c)
{
    if (c->closing)
        return;
    c->parse_paused = 0;
    client_input(c);
    client_update_reading(c);
    client_timer_update(c);
}

/* ---- transaction end ---------------------------------------------------- */

static void on_linger_shutdown(uv_shutdown_t *req, int status)
{
    client_t *c = req->data;

    free(req);
    if (c->closing)
        return;
    if (status < 0)
        client_close(c);
}

static void client_linger(client_t *c)
{
    uv_shutdown_t *req;

    c->state = CL_LINGER;
    c->deadline = uv_now(&c->w->loop) + LINGER_MS;
    c->deadline_bytes = 0;
    c->flow_stopped = 0;
    req = malloc(sizeof(*req));
    if (req == NULL) {
        client_close(c);
        return;
    }
    req->data = c;
    /* Corked bytes must reach libuv before the shutdown request does. */
    if (c->out.corked) {
        outq_uncork(&c->out);
        outq_cork(&c->out);
    }
    /* TLS: close_notify (RFC 8446 section 6.1) ends the session before the
     * FIN, so the client can tell the end from a truncation. */
    if (c->tls) {
        tls_io_close(c->tls);
        if (outq_tls_flush(&c->out, c->tls) < 0) {
            free(req);
            client_close(c);
            return;
        }
    }
    /* FIN goes out after the queued response; we keep reading until the
     * client closes too or the linger time is up. */
    if (uv_shutdown(req, (uv_stream_t *)&c->tcp, on_linger_shutdown) < 0) {
        free(req);
        client_close(c);
        return;
    }
    client_update_reading(c);
    client_timer_update(c);
}

void client_txn_done(client_t *c, int keepalive)
{
    if (c->closing)
        return;
    c->txn = NULL;
    if (!keepalive || c->w->draining) {
        client_linger(c);
        return;
    }
    c->state = CL_WAIT;
    c->parse_paused = 0;
    c->last_activity = uv_now(&c->w->loop);
    list_insert_tail(&c->w->idle_clients, &c->idle_link);
    client_timer_update(c);
    /* A pipelined request may already wait in the buffer. */
    client_input(c);
    client_update_reading(c);
}

void client_tls_begin(client_t *c, tls_io_t *io, struct client_tls *tlsc)
{
    c->tls = io;
    c->tlsc = tlsc;
    c->out.tls = io;
    /* The parser stopped at the CONNECT (an upgrade); the requests inside
     * the session start a new stream. */
    llhttp_init(&c->parser, HTTP_REQUEST, &req_settings);
    c->parser.data = c;
    c->version_at_end = 0;
}

void client_drain(client_t *c)
{
    if (c->state == CL_WAIT && (c->in == NULL || c->in_off == c->in_len))
        client_close(c);
}

/* ---- accepting ---------------------------------------------------------- */

/* Over a limit: a short plain answer, then close. Written with try_write:
 * nothing is queued for a connection we refuse. */
static void refuse(uv_tcp_t *tcp, const char *why)
{
    static const char resp[] =
        "HTTP/1.1 503 Service Unavailable\r\n"
        "Content-Type: text/plain\r\n"
        "Content-Length: 38\r\n"
        "Connection: close\r\n"
        "\r\n"
        "Too many connections; try again soon.\n";
    uv_buf_t b = uv_buf_init((char *)resp, sizeof(resp) - 1);

    (void)why;
    uv_try_write((uv_stream_t *)tcp, &b, 1);
}

static void on_refused_close(uv_handle_t *h)
{
    free(h);
}

void client_accept(worker_t *w, int fd)
{
    struct sockaddr_storage ss;
    int len = sizeof(ss);
    client_t *c;
    const char *limit = NULL;
    srv_limit_t lim;

    pthread_once(&req_settings_once, req_settings_init);
    c = calloc(1, sizeof(*c));
    if (c == NULL) {
        log_crit(0, "out of memory accepting a connection");
        close(fd);
        return;
    }
    if (uv_tcp_init(&w->loop, &c->tcp) < 0) {
        free(c);
        close(fd);
        return;
    }
    c->tcp.data = c;
    if (uv_tcp_open(&c->tcp, fd) < 0) {
        close(fd);
        uv_close((uv_handle_t *)&c->tcp, on_refused_close);
        return;
    }
    c->w = w;
    c->id = server_next_conn_id(w->srv);
    w->stats.connections++;
    if (uv_tcp_getpeername(&c->tcp, (struct sockaddr *)&ss, &len) == 0) {
        c->peer_ss = ss;
        netaddr_from_sockaddr(&c->addr, (struct sockaddr *)&ss);
        c->port = ntohs(((struct sockaddr_in *)&ss)->sin_port);
    }
    netaddr_format(&c->addr, c->addr_text, sizeof(c->addr_text));
    len = sizeof(ss);
    if (uv_tcp_getsockname(&c->tcp, (struct sockaddr *)&ss, &len) == 0) {
        netaddr_from_sockaddr(&c->local, (struct sockaddr *)&ss);
        c->local_port = ntohs(((struct sockaddr_in *)&ss)->sin_port);
    }

    lim = server_client_acquire(w->srv, &c->addr, w->conf);
    if (lim != SRV_LIMIT_OK) {
        limit = lim == SRV_LIMIT_TOTAL ? "max_connections" : "max_connections_per_client";
        w->stats.refused++;
        server_log_refusal(w->srv, c->addr_text, limit);
        refuse(&c->tcp, limit);
        uv_close((uv_handle_t *)&c->tcp, on_refused_close);
        return;
    }
    c->counted = 1;
    c->allowed = netaddr_set_contains(w->conf->allow_clients, &c->addr);

    uv_timer_init(&w->loop, &c->timer);
    c->timer.data = c;
    c->handles = 2;
    uv_tcp_nodelay(&c->tcp, 1);
    llhttp_init(&c->parser, HTTP_REQUEST, &req_settings);
    c->parser.data = c;
    outq_init(&c->out, (uv_stream_t *)&c->tcp, on_client_write, c);
    c->state = CL_WAIT;
    c->last_activity = uv_now(&w->loop);
    c->deadline = c->last_activity + w->conf->client_header_timeout;
    list_insert_tail(&w->clients, &c->link);
    list_insert_tail(&w->idle_clients, &c->idle_link);
    w->nclients++;
    log_debug(c->id, "accepted connection from %s:%u", c->addr_text, c->port);
    c->accepted = 1;
    if (c->allowed)
        hooks_conn(c, PC_HOOK_ACCEPT);
    client_timer_update(c);
    client_update_reading(c);
}
