/* fuzz_http_request.c - fuzz target: client request heads through llhttp and the header store, as core/client.c and core/txn.c handle them. */
#include <stdint.h>
#include <string.h>

#include <llhttp.h>

#include "fuzz.h"
#include "http_common.h"
#include "http_msg.h"
#include "url.h"

/*
 * The request callbacks of core/client.c (on_req_*) are static and work on
 * a client_t with its worker, timers and transaction, so they are not
 * called from here: this file copies their parsing logic exactly (the same
 * llhttp settings; the 414 target limit, the HTTP/0.9 and bare-LF checks
 * that look at the byte after a span; obs-fold refused through value_eol;
 * the pause after the head and after each message) and the head writing
 * of txn_rewrite_request(). The head checks of txn_request_head() are the
 * proxy's own http_req_check(), called here as there. When the copied
 * parts change, this copy must follow.
 *
 * Input: one byte picks max_header_size (256 bytes to 16 KiB, so the 414
 * and 431 paths are reached), the rest is what a client sends: one or
 * more pipelined requests.
 *
 * Invariants (see http_common.h): the transcript of decisions does not
 * depend on how the bytes are cut into reads; the head the proxy forwards
 * parses back with llhttp to the target and fields it meant, with no field
 * that is hop-by-hop or named by Connection, no CR/LF/NUL in a value, and
 * names that are tokens.
 */

#define MAX_REQUESTS 8

enum cstate { CL_WAIT, CL_REQUEST, CL_TXN };
enum pause { PAUSE_NONE, PAUSE_HEADERS, PAUSE_COMPLETE };
enum body { BODY_NONE, BODY_LENGTH, BODY_CHUNKED };

typedef struct sim {
    llhttp_t parser;
    size_t max;              /* max_header_size */
    const char *in_end;      /* end of the bytes received: span_ended() */
    enum cstate state;
    int value_eol;
    int version_at_end;
    int bad_status;
    enum pause pause;
    int have_txn;
    /* the transaction */
    char *target;
    size_t target_len;
    http_msg_t req;
    enum body req_body;
    uint64_t req_clen;
    int keepalive;
    int close_after;
    int nreq;
    int stop;                /* the connection is done (error, close, tunnel) */
    strbuf_t log;            /* the transcript */
} sim_t;

static int span_ended(const sim_t *c, const char *at, size_t len)
{
    return at + len < c->in_end;
}

static void txn_new(sim_t *c)
{
    c->have_txn = 1;
    free(c->target);
    c->target = NULL;
    c->target_len = 0;
    http_msg_reset(&c->req);
    c->req_body = BODY_NONE;
    c->req_clen = 0;
    c->close_after = 0;
    c->bad_status = 0;
}

/* ---- core/client.c's callbacks -------------------------------------------- */

static int on_req_begin(llhttp_t *p)
{
    sim_t *c = p->data;

    if (!c->have_txn)
        txn_new(c);
    if (c->state == CL_WAIT)
        c->state = CL_REQUEST;
    return 0;
}

static int on_req_url(llhttp_t *p, const char *at, size_t len)
{
    sim_t *c = p->data;
    char *n;

    if (c->target_len + len > c->max) {
        llhttp_set_error_reason(p, "URI too long");
        c->bad_status = 414;
        return HPE_USER;
    }
    n = realloc(c->target, c->target_len + len + 1);
    if (n == NULL)
        abort();
    memcpy(n + c->target_len, at, len);
    c->target = n;
    c->target_len += len;
    c->target[c->target_len] = '\0';
    if (span_ended(c, at, len) && (at[len] == '\r' || at[len] == '\n')) {
        llhttp_set_error_reason(p, "HTTP/0.9 request");
        return HPE_USER;
    }
    return 0;
}

static int on_req_version(llhttp_t *p, const char *at, size_t len)
{
    sim_t *c = p->data;

    if (!span_ended(c, at, len)) {
        c->version_at_end = 1;
    } else if (at[len] == '\n' && p->method != HTTP_CONNECT) {
        llhttp_set_error_reason(p, "bare LF after the request line");
        return HPE_USER;
    }
    return 0;
}

static int on_req_header_field(llhttp_t *p, const char *at, size_t len)
{
    sim_t *c = p->data;

    if (c->state != CL_REQUEST)
        return 0;
    if (http_msg_name_piece(&c->req, at, len) < 0) {
        llhttp_set_error_reason(p, "request header section too large");
        c->bad_status = 431;
        return HPE_USER;
    }
    return 0;
}

static int on_req_header_value(llhttp_t *p, const char *at, size_t len)
{
    sim_t *c = p->data;

    if (c->state != CL_REQUEST)
        return 0;
    if (c->value_eol) {
        llhttp_set_error_reason(p, "obs-fold (a header line folded onto the next)");
        return HPE_USER;
    }
    if (http_msg_value_piece(&c->req, at, len) < 0) {
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
    sim_t *c = p->data;

    c->value_eol = 0;
    return 0;
}

static int on_req_headers_complete(llhttp_t *p)
{
    sim_t *c = p->data;

    if (p->method != HTTP_CONNECT)
        p->upgrade = 0;
    if (p->flags & F_CHUNKED) {
        c->req_body = BODY_CHUNKED;
    } else if ((p->flags & F_CONTENT_LENGTH) && p->content_length > 0) {
        c->req_body = BODY_LENGTH;
        c->req_clen = p->content_length;
    } else {
        return 0;
    }
    c->pause = PAUSE_HEADERS;
    return HPE_PAUSED;
}

static int on_req_message_complete(llhttp_t *p)
{
    sim_t *c = p->data;

    c->pause = PAUSE_COMPLETE;
    return HPE_PAUSED;
}

/* ---- core/txn.c: the head checks and the rewrite ------------------------- */

/* An answer from the proxy itself; close_after as txn_request_head sets it. */
static void respond(sim_t *c, int status, const char *why, int close_after)
{
    note(&c->log, "respond %d %s", status, why);
    if (close_after)
        c->stop = 1;
    c->close_after = close_after;
}

/* What the proxy writes upstream (txn_send_request), checked by parsing it
 * back. */
static void forward(sim_t *c, const url_t *u, int method, int vmajor, int vminor)
{
    strbuf_t s, toks;
    char auth[URL_HOST_MAX + 16];
    size_t plen;
    unsigned after = 1;  /* Via */

    strbuf_init(&toks);
    connection_tokens(&c->req, &toks);
    /* txn_rewrite_request (forwarded_for off) */
    http_msg_strip_hop_by_hop(&c->req);
    http_msg_remove(&c->req, "Host");
    check_stripped(&c->req, &toks);
    FUZZ_CHECK(http_msg_find(&c->req, "Host", 0) < 0, "Host forwarded as received");

    strbuf_init(&s);
    strbuf_adds(&s, llhttp_method_name((llhttp_method_t)method));
    strbuf_add(&s, " ", 1);
    plen = s.len;
    if (u->path_len == 0 || u->path[0] == '?')
        strbuf_add(&s, "/", 1);
    strbuf_add(&s, u->path, u->path_len);
    plen = s.len - plen;
    strbuf_adds(&s, " HTTP/1.1\r\n");
    url_format_authority(u, 0, auth, sizeof(auth));
    strbuf_adds(&s, "Host: ");
    strbuf_adds(&s, auth);
    strbuf_add(&s, "\r\n", 2);
    strbuf_add_fields(&s, &c->req);
    if (c->req_body == BODY_LENGTH) {
        strbuf_adds(&s, "Content-Length: ");
        strbuf_add_u64(&s, c->req_clen, 0, '0');
        strbuf_add(&s, "\r\n", 2);
        after++;
    } else if (c->req_body == BODY_CHUNKED) {
        strbuf_adds(&s, "Transfer-Encoding: chunked\r\n");
        after++;
    }
    strbuf_addf(&s, "Via: %u.%u proxy.test (portcullis/0)\r\n", vmajor % 10, vminor % 10);
    strbuf_adds(&s, "\r\n");
    FUZZ_CHECK(!s.failed, "out of memory");
    check_reparse(HTTP_REQUEST, s.p, s.len, &c->req, s.p + strlen(llhttp_method_name(
                                                                (llhttp_method_t)method)) + 1,
                  plen, 1, after);
    strbuf_adds(&c->log, "forward ");
    note_bytes(&c->log, s.p, s.len);
    strbuf_add(&c->log, "\n", 1);
    strbuf_free(&s);
    strbuf_free(&toks);
}

/* txn_request_head: http_req_check() (the same function) and what follows
 * it, as far as it concerns the head (access control, plugin blocks, hooks
 * and routing are left out). */
static void request_head(sim_t *c, int done)
{
    llhttp_t *p = &c->parser;
    int method = llhttp_get_method(p);
    int vmajor = llhttp_get_http_major(p), vminor = llhttp_get_http_minor(p);
    const char *why = NULL;
    url_t u;

    c->keepalive = llhttp_should_keep_alive(p);
    c->nreq++;
    strbuf_adds(&c->log, "head ");
    strbuf_adds(&c->log, llhttp_method_name((llhttp_method_t)method));
    strbuf_add(&c->log, " ", 1);
    if (c->target)
        note_bytes(&c->log, c->target, c->target_len);
    note(&c->log, " %d.%d done=%d keepalive=%d body=%d", vmajor, vminor, done, c->keepalive,
         (int)c->req_body);
    for (unsigned i = 0; i < c->req.nfields; i++) {
        const http_field_t *f = &c->req.fields[i];
        strbuf_adds(&c->log, "  field ");
        note_bytes(&c->log, http_field_name(&c->req, f), f->name_len);
        strbuf_adds(&c->log, ": ");
        note_bytes(&c->log, c->req.store + f->value_off, f->value_len);
        strbuf_add(&c->log, "\n", 1);
    }

    if (c->target == NULL) {
        respond(c, 400, "no request target", 1);
        return;
    }
    switch (http_req_check(&c->req, vmajor, vminor, c->req_body == BODY_CHUNKED, &why)) {
    case HTTP_REQ_OK:
        break;
    case HTTP_REQ_BAD:
        respond(c, 400, why, 1);
        return;
    case HTTP_REQ_VERSION:
        respond(c, 505, "version", 1);
        return;
    case HTTP_REQ_CODING:
        respond(c, 501, "unsupported transfer coding", 1);
        return;
    case HTTP_REQ_EXPECT:
        respond(c, 417, "expectation", c->req_body != BODY_NONE);
        return;
    }
    if (method == HTTP_CONNECT) {
        if (url_parse_authority(c->target, c->target_len, &u, &why) < 0) {
            respond(c, 400, why, 1);
            return;
        }
        note(&c->log, "tunnel %s:%u", u.host, u.port);
        c->stop = 1;
        return;
    }
    if (c->target[0] == '/' || c->target[0] == '*') {
        respond(c, 200, "internal", 0);
        return;
    }
    if (url_parse_absolute(c->target, c->target_len, &u, &why) < 0) {
        respond(c, 400, why, c->req_body != BODY_NONE);
        return;
    }
    if (u.scheme == URL_HTTPS) {
        respond(c, 501, "https without CONNECT", c->req_body != BODY_NONE);
        return;
    }
    forward(c, &u, method, vmajor, vminor);
}

/* The end of a transaction: client_txn_done, then the next request. */
static void txn_done(sim_t *c)
{
    note(&c->log, "end keepalive=%d close=%d", c->keepalive, c->close_after);
    if (!c->keepalive || c->close_after || c->nreq >= MAX_REQUESTS)
        c->stop = 1;
    c->have_txn = 0;
    c->state = CL_WAIT;
}

/* ---- client_parse over a feed ---------------------------------------------- */

static llhttp_settings_t req_settings;

static void run(const uint8_t *data, size_t size, size_t max, enum feed how, strbuf_t *log)
{
    sim_t *c = calloc(1, sizeof(*c));
    size_t *cuts = malloc((size + 1) * sizeof(*cuts)), ncuts, off = 0;

    if (c == NULL || cuts == NULL)
        abort();
    ncuts = feed_cuts(how, data, size, cuts);
    c->max = max;
    http_msg_init(&c->req, max);
    strbuf_init(&c->log);
    llhttp_init(&c->parser, HTTP_REQUEST, &req_settings);
    c->parser.data = c;
    for (size_t k = 0; k < ncuts && !c->stop; k++) {
        const char *base = (const char *)data;
        c->in_end = base + cuts[k];
        while (!c->stop && off < cuts[k]) {
            const char *p = base + off;
            size_t n = cuts[k] - off, used;
            enum llhttp_errno err;

            c->pause = PAUSE_NONE;
            if (c->version_at_end) {
                c->version_at_end = 0;
                if (*p == '\n' && c->parser.method != HTTP_CONNECT) {
                    note(&c->log, "error");
                    c->stop = 1;
                    break;
                }
            }
            err = llhttp_execute(&c->parser, p, n);
            used = err == HPE_OK ? n : (size_t)(llhttp_get_error_pos(&c->parser) - p);
            FUZZ_CHECK(used <= n, "llhttp used %zu of %zu bytes", used, n);
            off += used;
            if (err == HPE_OK)
                continue;
            if (err == HPE_PAUSED) {
                llhttp_resume(&c->parser);
                if (c->pause == PAUSE_HEADERS) {
                    c->state = CL_TXN;
                    request_head(c, 0);
                } else if (c->pause == PAUSE_COMPLETE) {
                    if (c->state == CL_REQUEST) {
                        c->state = CL_TXN;
                        request_head(c, 1);
                    }
                    if (!c->stop)
                        txn_done(c);
                }
                continue;
            }
            if (err == HPE_PAUSED_UPGRADE) {
                note(&c->log, "upgrade");
                c->stop = 1;
                break;
            }
            /* Which check refuses first may depend on the reads: llhttp's
             * syntax checks or ours, a size limit (414, 431: llhttp hands
             * out a span at the end of each read, but only at its end when
             * it is all there) or a syntax error (400). That the request
             * is refused must not. */
            note(&c->log, "error");
            c->stop = 1;
        }
    }
    if (!c->stop)
        note(&c->log, "waiting state=%d", (int)c->state);
    FUZZ_CHECK(!c->log.failed, "out of memory");
    *log = c->log;
    free(c->target);
    http_msg_free(&c->req);
    free(cuts);
    free(c);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
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
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_in_t in = {data, size};
    size_t max = 256u << (fuzz_byte(&in) % 7);  /* 256 B .. 16 KiB */
    strbuf_t logs[FEED_N];

    if (in.n > 16384)
        return 0;
    for (int f = 0; f < FEED_N; f++)
        run(in.p, in.n, max, (enum feed)f, &logs[f]);
    for (int f = 1; f < FEED_N; f++) {
        if (logs[f].len != logs[0].len || memcmp(logs[f].p, logs[0].p, logs[0].len) != 0) {
            fprintf(stderr, "---- all at once:\n%.*s---- %s:\n%.*s----\n", (int)logs[0].len,
                    logs[0].p ? logs[0].p : "", f == FEED_BYTES ? "byte by byte" : "in pieces",
                    (int)logs[f].len, logs[f].p ? logs[f].p : "");
            FUZZ_FAIL("the proxy decides differently when the bytes come in pieces");
        }
    }
    for (int f = 0; f < FEED_N; f++)
        strbuf_free(&logs[f]);
    return 0;
}
