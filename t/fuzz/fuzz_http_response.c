/* fuzz_http_response.c - fuzz target: upstream response heads through llhttp and the header store, as core/txn.c handles them. */
#include <stdint.h>
#include <string.h>

#include <llhttp.h>

#include "errpage.h"
#include "fuzz.h"
#include "http_common.h"
#include "http_msg.h"

/*
 * The response callbacks of core/txn.c (on_resp_*) are static and work on
 * a transaction with its client and upstream connections, so this file
 * copies their logic (the same llhttp settings, no body for 1xx, 204, 304
 * and HEAD, a pause after the head and after the message) and the head
 * writing of txn_relay_interim() and txn_send_response_head(). The
 * decisions themselves are the proxy's own functions: http_resp_mode()
 * chooses the framing (or refuses the coding), http_msg_has_empty_name()
 * and http_msg_strip_hop_by_hop() judge and clean the fields. When the
 * copied parts change in txn.c, this copy must follow.
 *
 * Input: one byte picks the request (GET or HEAD, from an HTTP/1.0 or 1.1
 * client) and max_header_size; the rest is what the upstream sends.
 *
 * Invariants (see http_common.h): the transcript of decisions does not
 * depend on how the bytes are cut into reads; the head the proxy sends the
 * client parses back with llhttp to the fields it meant, with no field that
 * is hop-by-hop or named by Connection, no CR/LF/NUL in a value, names
 * that are tokens, and exactly one framing.
 */

enum rs { RS_WAIT, RS_BODY, RS_DONE };
enum upause { UPAUSE_NONE, UPAUSE_HEADERS, UPAUSE_COMPLETE };

typedef struct sim {
    llhttp_t parser;
    int method;              /* of the request */
    int vminor;              /* the client's HTTP/1.x */
    http_msg_t resp;
    enum rs rs;
    enum upause pause;
    enum txn_resp_mode mode;
    int stop;
    strbuf_t log;
} sim_t;

/* ---- core/txn.c's callbacks ----------------------------------------------- */

static int on_resp_begin(llhttp_t *p)
{
    sim_t *t = p->data;

    http_msg_reset(&t->resp);
    return 0;
}

static int on_resp_header_field(llhttp_t *p, const char *at, size_t len)
{
    sim_t *t = p->data;

    if (t->rs != RS_WAIT)
        return 0;
    if (http_msg_name_piece(&t->resp, at, len) < 0) {
        llhttp_set_error_reason(p, "response header section too large");
        return HPE_USER;
    }
    return 0;
}

static int on_resp_header_value(llhttp_t *p, const char *at, size_t len)
{
    sim_t *t = p->data;

    if (t->rs != RS_WAIT)
        return 0;
    if (http_msg_value_piece(&t->resp, at, len) < 0) {
        llhttp_set_error_reason(p, "response header section too large");
        return HPE_USER;
    }
    return 0;
}

static int on_resp_headers_complete(llhttp_t *p)
{
    sim_t *t = p->data;
    int status = p->status_code;

    if (status < 200 || status == 204 || status == 304 || t->method == HTTP_HEAD)
        p->flags |= F_SKIPBODY;
    p->upgrade = 0;
    t->pause = UPAUSE_HEADERS;
    return HPE_PAUSED;
}

static int on_resp_message_complete(llhttp_t *p)
{
    sim_t *t = p->data;

    t->pause = UPAUSE_COMPLETE;
    return HPE_PAUSED;
}

/* ---- core/txn.c: the head ----------------------------------------------------- */

static void log_fields(sim_t *t)
{
    for (unsigned i = 0; i < t->resp.nfields; i++) {
        const http_field_t *f = &t->resp.fields[i];
        strbuf_adds(&t->log, "  field ");
        note_bytes(&t->log, http_field_name(&t->resp, f), f->name_len);
        strbuf_adds(&t->log, ": ");
        note_bytes(&t->log, t->resp.store + f->value_off, f->value_len);
        strbuf_add(&t->log, "\n", 1);
    }
}

/* The head as the client gets it: status line, the stripped fields, then
 * the proxy's own (framing, Via, Connection); parsed back and checked. */
static void send_head(sim_t *t, int status, const strbuf_t *toks, int interim,
                      const char *framing, int close_after)
{
    strbuf_t s;
    unsigned after = 0;

    check_stripped(&t->resp, toks);
    strbuf_init(&s);
    strbuf_adds(&s, "HTTP/1.1 ");
    strbuf_add_u64(&s, (uint64_t)status, 3, '0');
    strbuf_add(&s, " ", 1);
    strbuf_adds(&s, http_status_text(status));
    strbuf_add(&s, "\r\n", 2);
    strbuf_add_fields(&s, &t->resp);
    if (framing) {
        strbuf_adds(&s, framing);
        after++;
    }
    if (!interim) {
        strbuf_adds(&s, "Via: 1.1 proxy.test (portcullis/0)\r\n");
        after++;
        if (close_after) {
            strbuf_adds(&s, "Connection: close\r\n");
            after++;
        } else if (t->vminor == 0) {
            strbuf_adds(&s, "Connection: keep-alive\r\n");
            after++;
        }
    }
    strbuf_adds(&s, "\r\n");
    FUZZ_CHECK(!s.failed, "out of memory");
    check_reparse(HTTP_RESPONSE, s.p, s.len, &t->resp, NULL, 0, 0, after);
    strbuf_adds(&t->log, "send ");
    note_bytes(&t->log, s.p, s.len);
    strbuf_add(&t->log, "\n", 1);
    strbuf_free(&s);
}

/* txn_response_head, from its checks to the head it sends (no plugins).
 * Returns 0 to go on parsing, -1 when the transaction ended. */
static int response_head(sim_t *t)
{
    llhttp_t *p = &t->parser;
    int status = p->status_code;
    const char *v;
    size_t vlen;
    char clen[32] = "", framing[64] = "";
    int64_t length = -1;
    int chunked = (p->flags & F_CHUNKED) != 0, close_after = 0, mode;
    strbuf_t toks;

    note(&t->log, "head %d %d.%d flags=0x%x", status, p->http_major, p->http_minor,
         (unsigned)p->flags);
    log_fields(t);
    strbuf_init(&toks);
    connection_tokens(&t->resp, &toks);
    if (status == 101) {
        note(&t->log, "respond 502 switched protocols");
        strbuf_free(&toks);
        return -1;
    }
    if (http_msg_has_empty_name(&t->resp)) {
        note(&t->log, "respond 502 header field without a name");
        strbuf_free(&toks);
        return -1;
    }
    if (status < 200) {
        /* txn_relay_interim */
        if (t->vminor != 0) {
            http_msg_strip_hop_by_hop(&t->resp);
            send_head(t, status, &toks, 1, NULL, 0);
        }
        strbuf_free(&toks);
        return 0;
    }
    v = http_msg_get(&t->resp, "Content-Length", &vlen);
    if (v && vlen < sizeof(clen))
        snprintf(clen, sizeof(clen), "%.*s", (int)vlen, v);
    mode = http_resp_mode(&t->resp, (p->flags & F_SKIPBODY) != 0, chunked,
                          (p->flags & F_TRANSFER_ENCODING) != 0,
                          (p->flags & F_CONTENT_LENGTH) != 0, t->vminor);
    if (mode < 0) {
        note(&t->log, "respond 502 unsupported Transfer-Encoding");
        strbuf_free(&toks);
        return -1;
    }
    t->mode = (enum txn_resp_mode)mode;
    if (t->mode == RESP_RAW && !chunked && (p->flags & F_CONTENT_LENGTH))
        length = (int64_t)p->content_length;
    if (t->mode == RESP_DECODED || t->mode == RESP_EOF)
        close_after = 1;
    http_msg_strip_hop_by_hop(&t->resp);

    /* txn_send_response_head, with len as response_hooks_done gives it */
    if (t->mode == RESP_RAW && chunked)
        length = -1;
    switch (t->mode) {
    case RESP_NONE:
        if (clen[0])
            snprintf(framing, sizeof(framing), "Content-Length: %s\r\n", clen);
        else if (chunked && t->vminor >= 1 && t->method == HTTP_HEAD)
            snprintf(framing, sizeof(framing), "Transfer-Encoding: chunked\r\n");
        break;
    case RESP_RAW:
        if (length >= 0)
            snprintf(framing, sizeof(framing), "Content-Length: %lld\r\n", (long long)length);
        else
            snprintf(framing, sizeof(framing), "Transfer-Encoding: chunked\r\n");
        break;
    case RESP_CHUNK:
        snprintf(framing, sizeof(framing), "Transfer-Encoding: chunked\r\n");
        break;
    case RESP_DECODED:
    case RESP_EOF:
    case RESP_LENGTH:  /* chosen only by plugins: not here */
        break;
    }
    if (framing[0] && strncmp(framing, "Content-Length: ", 16) == 0) {
        /* What the client reads as the length must be a length. */
        const char *d = framing + 16;
        size_t nd = strspn(d, "0123456789");
        FUZZ_CHECK(nd > 0 && strcmp(d + nd, "\r\n") == 0, "the client gets %s", framing);
    }
    send_head(t, status, &toks, 0, framing[0] ? framing : NULL, close_after);
    strbuf_free(&toks);
    t->rs = RS_BODY;
    return 0;
}

/* ---- txn_parse_response over a feed --------------------------------------- */

static llhttp_settings_t resp_settings;

static void run(const uint8_t *data, size_t size, int method, int vminor, size_t max,
                enum feed how, strbuf_t *log)
{
    sim_t *t = calloc(1, sizeof(*t));
    size_t *cuts = malloc((size + 1) * sizeof(*cuts)), ncuts, off = 0;

    if (t == NULL || cuts == NULL)
        abort();
    ncuts = feed_cuts(how, data, size, cuts);
    t->method = method;
    t->vminor = vminor;
    http_msg_init(&t->resp, max);
    strbuf_init(&t->log);
    llhttp_init(&t->parser, HTTP_RESPONSE, &resp_settings);
    t->parser.data = t;
    for (size_t k = 0; k < ncuts && !t->stop; k++) {
        const char *base = (const char *)data;
        /* The proxy runs the parser until it wants more bytes, also with
         * none left after a pause (a bodiless message ends in that call). */
        for (;;) {
            const char *p = base + off;
            size_t n = cuts[k] - off, used;
            enum llhttp_errno err;

            t->pause = UPAUSE_NONE;
            err = llhttp_execute(&t->parser, p, n);
            used = err == HPE_OK ? n : (size_t)(llhttp_get_error_pos(&t->parser) - p);
            FUZZ_CHECK(used <= n, "llhttp used %zu of %zu bytes", used, n);
            off += used;
            if (err == HPE_OK)
                break;
            if (err == HPE_PAUSED) {
                llhttp_resume(&t->parser);
                if (t->pause == UPAUSE_HEADERS) {
                    if (response_head(t) < 0) {
                        t->stop = 1;
                        break;
                    }
                    continue;
                }
                if (t->pause == UPAUSE_COMPLETE) {
                    if (t->parser.status_code < 200)
                        continue;
                    note(&t->log, "complete keepalive=%d",
                         llhttp_should_keep_alive(&t->parser));
                    t->rs = RS_DONE;
                    t->stop = 1;
                    break;
                }
                continue;
            }
            note(&t->log, "respond 502 invalid response");
            t->stop = 1;
            break;
        }
    }
    if (!t->stop) {
        /* The upstream closed: the end of a close-delimited body. */
        if (t->rs == RS_BODY && llhttp_message_needs_eof(&t->parser)) {
            enum llhttp_errno err = llhttp_finish(&t->parser);
            note(&t->log, "eof %s", err == HPE_OK || err == HPE_PAUSED ? "complete" : "error");
        } else {
            note(&t->log, "eof rs=%d", (int)t->rs);
        }
    }
    FUZZ_CHECK(!t->log.failed, "out of memory");
    *log = t->log;
    http_msg_free(&t->resp);
    free(cuts);
    free(t);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    llhttp_settings_init(&resp_settings);
    resp_settings.on_message_begin = on_resp_begin;
    resp_settings.on_header_field = on_resp_header_field;
    resp_settings.on_header_value = on_resp_header_value;
    resp_settings.on_headers_complete = on_resp_headers_complete;
    resp_settings.on_message_complete = on_resp_message_complete;
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_in_t in = {data, size};
    unsigned b = fuzz_byte(&in);
    int method = (b & 1) ? HTTP_HEAD : HTTP_GET, vminor = (b >> 1) & 1;
    size_t max = 256u << ((b >> 2) % 7);
    strbuf_t logs[FEED_N];

    if (in.n > 16384)
        return 0;
    for (int f = 0; f < FEED_N; f++)
        run(in.p, in.n, method, vminor, max, (enum feed)f, &logs[f]);
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
