/* txn.c - one HTTP transaction: request checks, forwarding, response relay, logging. */
#include "config.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/time.h>

#include "accesslog.h"
#include "errpage.h"
#include "hooks.h"
#include "intercept.h"
#include "internal.h"
#include "localaddr.h"
#include "log.h"
#include "plugin_host.h"
#include "server.h"
#include "splice.h"
#include "tls_io.h"
#include "tls_policy.h"
#include "tunnel.h"
#include "txn.h"

static int on_resp_begin(llhttp_t *p);
static int on_resp_header_field(llhttp_t *p, const char *at, size_t len);
static int on_resp_header_value(llhttp_t *p, const char *at, size_t len);
static int on_resp_headers_complete(llhttp_t *p);
static int on_resp_body(llhttp_t *p, const char *at, size_t len);
static int on_resp_message_complete(llhttp_t *p);

static void txn_resp_splice_try(txn_t *t);
static void txn_response_complete(txn_t *t, int extra);

static llhttp_settings_t resp_settings;
static pthread_once_t resp_settings_once = PTHREAD_ONCE_INIT;

static void resp_settings_init(void)
{
    llhttp_settings_init(&resp_settings);
    resp_settings.on_message_begin = on_resp_begin;
    resp_settings.on_header_field = on_resp_header_field;
    resp_settings.on_header_value = on_resp_header_value;
    resp_settings.on_headers_complete = on_resp_headers_complete;
    resp_settings.on_body = on_resp_body;
    resp_settings.on_message_complete = on_resp_message_complete;
}

txn_t *txn_new(client_t *c)
{
    txn_t *t = calloc(1, sizeof(*t));

    if (t == NULL)
        return NULL;
    t->c = c;
    t->w = c->w;
    t->conf = conf_ref(c->w->conf);
    t->start = uv_now(&c->w->loop);
    http_msg_init(&t->req, t->conf->max_header_size);
    http_msg_init(&t->resp, t->conf->max_header_size);
    t->code = "NONE";
    t->refs = 1;
    t->intercept_vote = -1;
    t->serial = server_next_txn_serial(c->w->srv);
    snprintf(t->hier, sizeof(t->hier), "HIER_NONE/-");
    plugin_notes_copy(&t->notes, c->notes);
    return t;
}

txn_t *txn_hold(txn_t *t)
{
    t->refs++;
    return t;
}

/* Frees the transaction once nothing on the stack uses it any more. */
void txn_release(txn_t *t)
{
    if (t && --t->refs == 0)
        txn_free(t);
}

void txn_build_path(txn_t *t)
{
    size_t n = t->url.path_len;
    int slash = n == 0 || t->url.path[0] == '?';
    char *p;

    if (t->path_text || t->method == HTTP_CONNECT)
        return;
    p = malloc(n + slash + 1);
    if (p == NULL)
        return;
    if (slash)
        p[0] = '/';
    memcpy(p + slash, t->url.path, n);
    p[n + slash] = '\0';
    t->path_text = p;
}

void txn_build_url(txn_t *t)
{
    char auth[URL_HOST_MAX + 16];
    const char *scheme = t->url.scheme == URL_HTTPS ? "https://" : "http://";
    size_t sl, al, pl;
    char *u;

    free(t->url_text);
    t->url_text = NULL;
    if (t->method == HTTP_CONNECT) {
        url_format_authority(&t->url, 1, auth, sizeof(auth));
        t->url_text = strdup(auth);
        return;
    }
    /* An existing path_text is kept: a plugin may hold it (txn_path, then
     * txn_url in the same hook). Plain copies, no printf: plugins ask for
     * the URL of every request. */
    txn_build_path(t);
    if (t->path_text == NULL)
        return;
    al = url_format_authority(&t->url, 0, auth, sizeof(auth));
    sl = strlen(scheme);
    pl = strlen(t->path_text);
    u = malloc(sl + al + pl + 1);
    if (u == NULL)
        return;
    memcpy(u, scheme, sl);
    memcpy(u + sl, auth, al);
    memcpy(u + sl + al, t->path_text, pl + 1);
    t->url_text = u;
}

void txn_free(txn_t *t)
{
    if (t == NULL)
        return;
    free(t->url_text);
    free(t->path_text);
    free(t->sni);
    free(t->block.reason);
    free(t->block.category);
    plugin_notes_free(t->notes);
    t->notes = NULL;
    free(t->slots);
    free(t->slot_dtors);
    dns_query_cancel(t->dnsq);
    dns_result_unref(t->addrs);
    http_msg_free(&t->req);
    http_msg_free(&t->resp);
    free(t->target);
    conf_unref(t->conf);
    free(t);
}

/* ---- logging and ending ------------------------------------------------- */

static void txn_log(txn_t *t)
{
    accesslog_rec_t r;
    struct timeval tv;
    char url[8192];
    const char *code = t->code;
    char codebuf[64];

    gettimeofday(&tv, NULL);
    memset(&r, 0, sizeof(r));
    r.end_ms = (uint64_t)tv.tv_sec * 1000 + (uint64_t)tv.tv_usec / 1000;
    r.elapsed_ms = uv_now(&t->w->loop) - t->start;
    r.client = t->c->addr_text;
    if (t->aborted && strstr(code, "_ABORTED") == NULL) {
        snprintf(codebuf, sizeof(codebuf), "%s_ABORTED", code);
        code = codebuf;
    }
    r.code = code;
    r.status = t->status;
    r.bytes = t->bytes_out;
    r.bytes_in = t->bytes_in;
    r.method = t->method_name[0] ? t->method_name : "NONE";
    if (t->target) {
        /* Squid logs CONNECT as host:port and others as the URL received. */
        snprintf(url, sizeof(url), "%s", t->target);
        r.url = url;
    } else {
        r.url = "error:invalid-request";
    }
    r.user = "-";
    r.hier = t->hier;
    r.mime = t->mime[0] ? t->mime : NULL;
    r.conn_id = t->c->id;
    if (t->blocked) {
        r.block_plugin = t->block.plugin;
        r.block_reason = t->block.reason;
        r.category = t->block.category;
    }
    r.notes = t->notes;
    accesslog_write(t->w->alog, &r);
}

/* Logs, releases the upstream and hands the client back. */
static void txn_finish(txn_t *t, int keepalive)
{
    client_t *c = t->c;

    if (t->ended)
        return;
    t->ended = 1;
    txn_splice_stop(t);
    if (t->icp)
        intercept_txn_end(t);
    if (t->up) {
        upstream_close(t->up);
        t->up = NULL;
    }
    if (t->status >= 400 && strcmp(t->code, "TCP_DENIED") != 0)
        t->w->stats.errors++;
    t->w->stats.bytes_out += t->bytes_out;
    t->w->stats.bytes_in += t->bytes_in;
    /* Plugins see the end before the log line, so their notes make it in;
     * held bodies stay readable until then. */
    hooks_txn_end(t);
    txn_body_release(t);
    txn_log(t);
    if (c->txn == t)
        c->txn = NULL;
    client_txn_done(c, keepalive && !t->aborted && !t->close_after);
    txn_release(t);
}

void txn_splice_stop(txn_t *t)
{
    for (int i = 0; i < 2; i++) {
        splice_dir_t *d = t->spl[i];
        if (d == NULL)
            continue;
        t->spl[i] = NULL;
        if (t->c->splice_rx == d)
            t->c->splice_rx = NULL;
        if (t->up && t->up->splice_rx == d)
            t->up->splice_rx = NULL;
        splice_dir_free(d);
    }
}

void txn_done(txn_t *t, int keepalive)
{
    txn_finish(t, keepalive);
}

void txn_note(txn_t *t, const char *name, const char *value)
{
    plugin_host_table.txn_note((pc_txn_t *)(void *)t, name, value);
}

void txn_end(txn_t *t)
{
    t->close_after = 1;
    txn_finish(t, 0);
}

void txn_abort(txn_t *t, const char *why)
{
    if (t->ended)
        return;
    t->aborted = 1;
    if (why)
        log_info(t->c->id, "transaction aborted: %s, client: %s, request: \"%s %s\"",
                 why, t->c->addr_text, t->method_name,
                 t->target ? t->target : "");
    txn_finish(t, 0);
}

/* ---- pages made by the proxy -------------------------------------------- */

static const char *error_message(const char *errname)
{
    static const struct {
        const char *name, *text;
    } msgs[] = {
        {"ERR_ACCESS_DENIED", "Your address is not allowed to use this proxy."},
        {"ERR_INVALID_REQ", "The request could not be understood by the proxy."},
        {"ERR_INVALID_URL", "The requested URL is not valid."},
        {"ERR_TOO_BIG", "The request header section is too large."},
        {"ERR_URI_TOO_LONG", "The requested URL is too long."},
        {"ERR_UNSUP_REQ", "The proxy does not support this kind of request."},
        {"ERR_UNSUP_HTTPVERSION", "The proxy does not support this HTTP version."},
        {"ERR_DNS_FAIL", "The proxy could not find the address of the server."},
        {"ERR_CONNECT_FAIL", "The proxy could not connect to the server."},
        {"ERR_CONNECT_TIMEOUT", "The server did not accept a connection in time."},
        {"ERR_READ_TIMEOUT", "The server did not answer in time."},
        {"ERR_READ_ERROR", "The connection to the server broke."},
        {"ERR_ZERO_SIZE_OBJECT", "The server closed the connection without an answer."},
        {"ERR_INVALID_RESP", "The server sent a response the proxy cannot pass on."},
        {"ERR_CONNECT_PORT", "Tunnels are not allowed to this port."},
        {"ERR_LOCAL_UPSTREAM", "The destination is on the proxy server itself, which is not allowed."},
        {"ERR_FORWARDING_LOOP", "The request came back to this proxy: a forwarding loop."},
        {"ERR_EXPECTATION", "The proxy cannot meet the request's expectation."},
        {"ERR_LIFETIME_EXP", "The request took too long and was cancelled."},
        {"ERR_NOT_FOUND", "There is no such page on this proxy."},
        {"ERR_SHUTTING_DOWN", "The proxy is shutting down."},
        {"ERR_UPSTREAM_CERT", "The server's certificate is not valid, so the proxy "
                              "cannot make a secure connection to it."},
        {"ERR_MISDIRECTED", "The request names another site than the secure "
                            "connection it came on."},
    };
    for (size_t i = 0; i < sizeof(msgs) / sizeof(msgs[0]); i++)
        if (strcmp(msgs[i].name, errname) == 0)
            return msgs[i].text;
    return "The request failed.";
}

/* Queues a complete response made by the proxy. extra holds extra header
 * lines ("Name: value\r\n"), or NULL. */
static void txn_send_page(txn_t *t, int status, const char *ctype,
                          const char *extra, const char *body, size_t blen,
                          int keepalive)
{
    strbuf_t s;

    strbuf_init(&s);
    strbuf_addf(&s, "HTTP/1.1 %d %s\r\nServer: portcullis\r\n", status,
                http_status_text(status));
    strbuf_addf(&s, "Content-Type: %s\r\nContent-Length: %zu\r\n", ctype, blen);
    if (extra == NULL || strstr(extra, "Cache-Control:") == NULL)
        strbuf_adds(&s, "Cache-Control: no-store\r\n");
    if (extra)
        strbuf_adds(&s, extra);
    if (!keepalive)
        strbuf_adds(&s, "Connection: close\r\n");
    else if (t->vminor == 0)
        strbuf_adds(&s, "Connection: keep-alive\r\n");
    strbuf_adds(&s, "\r\n");
    if (t->method != HTTP_HEAD)
        strbuf_add(&s, body, blen);
    if (!s.failed && outq_copy(&t->c->out, s.p, s.len) == 0)
        t->bytes_out += s.len;
    strbuf_free(&s);
    t->head_sent = 1;
    t->status = status;
    /* Logged as the type of what the client got, as Squid does. */
    snprintf(t->mime, sizeof(t->mime), "%s", ctype);
}

void txn_respond_page(txn_t *t, int status, const char *ctype,
                      const char *extra, const char *body, size_t len)
{
    int keep;

    if (t->ended)
        return;
    if (t->code == NULL || strcmp(t->code, "NONE") == 0)
        t->code = "TCP_MISS";
    keep = t->client_keepalive && t->req_done && !t->w->draining;
    txn_send_page(t, status, ctype, extra, body, len, keep);
    txn_finish(t, keep);
}

void txn_respond_error(txn_t *t, int status, const char *code,
                       const char *errname, const char *detail)
{
    errpage_vars_t v;
    char extra[128];
    char *page;
    size_t plen = 0;
    int keep;

    if (t->ended)
        return;
    t->code = code;
    if (t->head_sent) {
        /* Too late for a page: the client must see a broken transfer. */
        log_error(t->c->id, "%s after the response started (%s), client: %s",
                  errname, detail ? detail : "", t->c->addr_text);
        txn_abort(t, NULL);
        return;
    }
    t->status = status;
    memset(&v, 0, sizeof(v));
    v.status = status;
    v.message = detail ? detail : error_message(errname);
    v.error = errname;
    v.url = t->target ? t->target : "";
    v.client = t->c->addr_text;
    v.proxy = t->conf->visible_hostname;
    page = errpage_render(errpage_default_template, &v, &plen);
    snprintf(extra, sizeof(extra), "X-Portcullis-Error: %s\r\n", errname);
    /* Keep the connection only when the whole request has been read and the
     * error says nothing bad about the connection itself. */
    keep = t->client_keepalive && t->req_done && !t->close_after && status != 400 &&
           status != 408 && status != 414 && status != 431 && !t->w->draining;
    txn_send_page(t, status, "text/html; charset=utf-8", extra,
                  page ? page : "", page ? plen : 0, keep);
    free(page);
    txn_finish(t, keep);
}

/* X-Portcullis-Block carries the reason on one line, without anything a
 * client could mistake for another header. */
static void header_safe(char *dst, size_t len, const char *src)
{
    size_t n = 0;

    for (; src && *src && n + 1 < len; src++)
        dst[n++] = (*src >= 0x20 && *src != 0x7f) ? *src : ' ';
    dst[n] = '\0';
}

void txn_block_record(txn_t *t)
{
    pc_event_t ev;

    hooks_block(t, "core", NULL);
    t->code = "TCP_DENIED";
    t->w->stats.denied++;
    if (t->url_text == NULL)
        txn_build_url(t);
    log_info(t->c->id, "blocked by %s: %s, client: %s, url: %s", t->block.plugin,
             t->block.reason ? t->block.reason : "-", t->c->addr_text,
             t->url_text ? t->url_text : (t->target ? t->target : ""));
    memset(&ev, 0, sizeof(ev));
    ev.topic = "txn.blocked";
    ev.client = t->c->addr_text;
    ev.subject = t->url_text ? t->url_text : t->target;
    ev.detail = t->block.reason;
    ev.plugin = t->block.plugin;
    plugin_event_publish(NULL, &ev);
}

void txn_respond_block(txn_t *t)
{
    errpage_vars_t v;
    char extra[640], reason[400];
    const char *tmpl = t->conf->block_page_text ? t->conf->block_page_text
                                                : errpage_block_template;
    char *page;
    size_t plen = 0;
    int keep;

    if (t->ended)
        return;
    txn_block_record(t);
    if (t->head_sent) {
        /* Too late for a page (trickled download): break the transfer. */
        txn_abort(t, "blocked after the response started");
        return;
    }
    memset(&v, 0, sizeof(v));
    v.status = t->block.status;
    v.title = "Blocked";
    v.message = "Access to this page is blocked by the network's policy.";
    v.error = "ERR_BLOCKED";
    v.url = t->url_text ? t->url_text : (t->target ? t->target : "");
    v.client = t->c->addr_text;
    v.proxy = t->conf->visible_hostname;
    v.plugin = t->block.plugin;
    v.reason = t->block.reason ? t->block.reason : "blocked";
    v.category = t->block.category;
    v.until = txn_get_note(t, "until");
    page = errpage_render(tmpl, &v, &plen);
    header_safe(reason, sizeof(reason), v.reason);
    snprintf(extra, sizeof(extra), "X-Portcullis-Block: %s; %s\r\n",
             t->block.plugin, reason);
    keep = t->client_keepalive && t->req_done && !t->w->draining &&
           t->method != HTTP_CONNECT && !t->close_after;
    if (t->up) {
        upstream_close(t->up);
        t->up = NULL;
    }
    txn_send_page(t, t->block.status, "text/html; charset=utf-8", extra,
                  page ? page : "", page ? plen : 0, keep);
    free(page);
    txn_finish(t, keep);
}

const char *txn_get_note(const txn_t *t, const char *name)
{
    for (const txn_note_t *n = t->notes; n; n = n->next)
        if (strcmp(n->name, name) == 0)
            return n->value;
    return NULL;
}

void txn_bad_request(client_t *c, txn_t *t, int status, const char *why)
{
    const char *errname = status == 431   ? "ERR_TOO_BIG"
                          : status == 414 ? "ERR_URI_TOO_LONG"
                                          : "ERR_INVALID_REQ";

    if (t == NULL) {
        t = txn_new(c);
        if (t == NULL) {
            client_close(c);
            return;
        }
        c->txn = t;
    }
    log_info(c->id, "bad request from %s: %s", c->addr_text, why);
    t->close_after = 1;
    t->client_keepalive = 0;
    /* parser.method is 0 (DELETE) until a method was read; the target
     * comes after it, so a target means the method is real. */
    if (t->method_name[0] == '\0' && t->target && c->parser.method <= HTTP_SOURCE)
        snprintf(t->method_name, sizeof(t->method_name), "%s",
                 llhttp_method_name((llhttp_method_t)c->parser.method));
    txn_respond_error(t, status, "TAG_NONE", errname, NULL);
}

/* ---- request ------------------------------------------------------------ */

static int method_is_idempotent(int m)
{
    return m == HTTP_GET || m == HTTP_HEAD || m == HTTP_OPTIONS ||
           m == HTTP_TRACE || m == HTTP_PUT || m == HTTP_DELETE;
}

/* A Via from this very proxy means the request looped back to us. */
static int via_loops(const txn_t *t)
{
    char token[300];

    snprintf(token, sizeof(token), "%s (portcullis/", t->conf->visible_hostname);
    for (int i = http_msg_find(&t->req, "Via", 0); i >= 0;
         i = http_msg_find(&t->req, "Via", i + 1)) {
        size_t vlen;
        const char *v = http_field_value(&t->req, &t->req.fields[i], &vlen);
        if (memmem(v, vlen, token, strlen(token)))
            return 1;
    }
    return 0;
}

static void txn_route(txn_t *t, int use_pool);
static void request_hooks_done(txn_t *t, int verdict);

void txn_request_head(txn_t *t, int done)
{
    client_t *c = t->c;
    llhttp_t *p = &c->parser;
    const char *why = NULL;

    t->req_done = done;
    t->method = llhttp_get_method(p);
    snprintf(t->method_name, sizeof(t->method_name), "%s",
             llhttp_method_name((llhttp_method_t)t->method));
    t->vmajor = llhttp_get_http_major(p);
    t->vminor = llhttp_get_http_minor(p);
    t->client_keepalive = llhttp_should_keep_alive(p);
    t->w->stats.requests++;
    c->nrequests++;
    if (t->target == NULL) {
        txn_bad_request(c, t, 400, "no request target");
        return;
    }

    /* Checked per request against this transaction's snapshot, so a
     * reload that drops a network applies to kept-alive connections too. */
    c->allowed = netaddr_set_contains(t->conf->allow_clients, &c->addr);
    if (!c->allowed) {
        log_warn(c->id, "access denied: client %s is not in allow_clients",
                 c->addr_text);
        t->w->stats.denied++;
        t->close_after = 1;
        txn_respond_error(t, 403, "TCP_DENIED", "ERR_ACCESS_DENIED", NULL);
        return;
    }
    if (c->block_plugin) {
        /* A plugin refused the connection at ACCEPT. */
        t->blocked = 1;
        t->block.plugin = c->block_plugin;
        t->block.status = c->block_status;
        t->block.reason = c->block_reason ? strdup(c->block_reason) : NULL;
        t->block.category = c->block_category ? strdup(c->block_category) : NULL;
        /* Closed after the page: the next request comes on a new
         * connection and meets ACCEPT again, so a lifted block (an unban)
         * takes effect at once rather than when the connection idles out. */
        t->close_after = 1;
        /* Nothing is parsed yet: the page and the log show the target. */
        if (t->url_text == NULL)
            t->url_text = strndup(t->target, t->target_len);
        txn_respond_block(t);
        return;
    }
    switch (http_req_check(&t->req, t->vmajor, t->vminor, t->req_body == BODY_CHUNKED, &why)) {
    case HTTP_REQ_OK:
        break;
    case HTTP_REQ_BAD:
        txn_bad_request(c, t, 400, why);
        return;
    case HTTP_REQ_VERSION:
        t->close_after = 1;
        txn_respond_error(t, 505, "TAG_NONE", "ERR_UNSUP_HTTPVERSION", NULL);
        return;
    case HTTP_REQ_CODING:
        log_info(c->id, "unsupported transfer coding in a request from %s",
                 c->addr_text);
        t->close_after = 1;
        txn_respond_error(t, 501, "TAG_NONE", "ERR_UNSUP_REQ", NULL);
        return;
    case HTTP_REQ_EXPECT:
        t->close_after = t->req_body != BODY_NONE;
        txn_respond_error(t, 417, "TAG_NONE", "ERR_EXPECTATION", NULL);
        return;
    }

    if (c->tlsc != NULL) {
        /* Inside an intercepted tunnel: the target becomes the https URL
         * (or the request is answered here: a block, a certificate error,
         * a misdirected request). */
        if (intercept_request_target(t) < 0)
            return;
    } else if (t->method == HTTP_CONNECT) {
        if (url_parse_authority(t->target, t->target_len, &t->url, &why) < 0) {
            txn_bad_request(c, t, 400, why);
            return;
        }
        tunnel_start(t);
        return;
    }
    if (t->target[0] == '/' || t->target[0] == '*') {
        t->internal = 1;
        internal_request(t);
        return;
    }
    if (url_parse_absolute(t->target, t->target_len, &t->url, &why) < 0) {
        if (strcmp(why, "unsupported URL scheme") == 0) {
            t->close_after = t->req_body != BODY_NONE;
            txn_respond_error(t, 400, "TAG_NONE", "ERR_UNSUP_REQ", why);
        } else {
            log_info(c->id, "invalid URL from %s: %s", c->addr_text, why);
            t->close_after = t->req_body != BODY_NONE;
            txn_respond_error(t, 400, "TAG_NONE", "ERR_INVALID_URL", NULL);
        }
        return;
    }
    if (t->url.scheme == URL_HTTPS && c->tlsc == NULL) {
        t->close_after = t->req_body != BODY_NONE;
        txn_respond_error(t, 501, "TAG_NONE", "ERR_UNSUP_REQ",
                          "Requests for https:// URLs must use CONNECT.");
        return;
    }
    if (via_loops(t)) {
        log_error(c->id, "forwarding loop detected for \"%s\"", t->target);
        t->close_after = t->req_body != BODY_NONE;
        txn_respond_error(t, 508, "TCP_DENIED", "ERR_FORWARDING_LOOP", NULL);
        return;
    }
    txn_rewrite_request(t);
    hooks_run(t, PC_HOOK_REQUEST_HEADERS, request_hooks_done);
}

static void request_hooks_done(txn_t *t, int verdict)
{
    if (verdict == PC_BLOCK) {
        t->close_after = t->req_body != BODY_NONE && !t->req_done;
        txn_respond_block(t);
        return;
    }
    if (t->body[PC_REQUEST])
        t->req_inspect = 1;  /* plugins see the upload's pieces */
    if (txn_body_held(t, PC_REQUEST)) {
        /* Upload checks first: read the whole body before any upstream. */
        txn_body_request_hold_start(t);
        return;
    }
    txn_route(t, 1);
}

void txn_request_ready(txn_t *t)
{
    txn_route(t, 1);
}

/* ---- upstream selection ------------------------------------------------- */

static void txn_try_next(txn_t *t);

static void set_hier(txn_t *t, const char *addr)
{
    snprintf(t->hier, sizeof(t->hier), "HIER_DIRECT/%s", addr);
}

/* TLS connections have keys of their own: "https:host:port" is a
 * connection whose certificate was verified for host. */
static void pool_key(const txn_t *t, char *key, size_t len)
{
    snprintf(key, len, "%s%s:%u", t->url.scheme == URL_HTTPS ? "https:" : "", t->url.host,
             t->url.port);
}

static void on_dns(void *arg, int status, dns_result_t *res)
{
    txn_t *t = arg;

    t->dnsq = NULL;
    if (status < 0) {
        char msg[512];
        log_error(t->c->id, "cannot resolve \"%s\": %s, client: %s",
                  t->url.host, uv_strerror(status), t->c->addr_text);
        snprintf(msg, sizeof(msg),
                 "The proxy could not find the address of %s (%s).",
                 t->url.host, uv_strerror(status));
        txn_respond_error(t, 502, "TCP_MISS", "ERR_DNS_FAIL", msg);
        return;
    }
    t->addrs = dns_result_ref(res);
    t->addr_i = 0;
    txn_try_next(t);
}

void txn_resolve(txn_t *t)
{
    dns_result_t *res = NULL;
    int status = 0, rc;

    if (t->url.host_is_ip) {
        t->addrs = malloc(sizeof(*t->addrs) + sizeof(netaddr_t));
        if (t->addrs == NULL) {
            txn_respond_error(t, 500, "TCP_MISS", "ERR_CONNECT_FAIL", "Out of memory.");
            return;
        }
        t->addrs->refs = 1;
        t->addrs->naddrs = 1;
        t->addrs->addrs[0] = t->url.ip;
        t->addr_i = 0;
        txn_try_next(t);
        return;
    }
    rc = dns_lookup(t->w->dns, t->url.host, on_dns, t, &t->dnsq, &status, &res);
    if (rc == 1) {
        on_dns(t, status, res);
        dns_result_unref(res);
    } else if (rc < 0) {
        on_dns(t, rc, NULL);
    }
}

static void txn_send_request(txn_t *t);

static void txn_route(txn_t *t, int use_pool)
{
    char key[300];

    pool_key(t, key, sizeof(key));
    if (use_pool) {
        upstream_t *up = upool_take(t->w->upool, key);
        if (up) {
            /* A reused connection's address is judged again, like a new
             * one's: the configuration or a plugin's data (a GeoIP
             * database) may have changed since it was opened, and each
             * transaction gets its own notes. A blocked one is closed. */
            t->upstream_addr = up->addr;
            t->has_upstream_addr = 1;
            if (hooks_run_sync(t, PC_HOOK_UPSTREAM_ADDR) == PC_BLOCK) {
                upstream_close(up);
                t->close_after = t->req_body != BODY_NONE && !t->req_done;
                txn_respond_block(t);
                return;
            }
            t->up = up;
            up->txn = t;
            set_hier(t, up->addr_text);
            t->w->stats.upstream_reused++;
            txn_send_request(t);
            return;
        }
    }
    txn_resolve(t);
}

static void txn_try_next(txn_t *t)
{
    char key[300];
    int err = 0;

    pool_key(t, key, sizeof(key));
    while (t->addrs && t->addr_i < t->addrs->naddrs) {
        const netaddr_t *a = &t->addrs->addrs[t->addr_i++];
        char text[NETADDR_STRLEN];

        netaddr_format(a, text, sizeof(text));
        if (!t->conf->allow_local_upstreams &&
            localaddr_is_local(t->conf, a)) {
            log_warn(t->c->id, "refused upstream %s for \"%s\": address is local "
                     "(allow_local_upstreams is off), client: %s",
                     text, t->url.host, t->c->addr_text);
            t->local_refused++;
            continue;
        }
        /* Plugins judge each address actually tried (e.g. its country). */
        t->upstream_addr = *a;
        t->has_upstream_addr = 1;
        if (hooks_run_sync(t, PC_HOOK_UPSTREAM_ADDR) == PC_BLOCK) {
            t->close_after = t->req_body != BODY_NONE && !t->req_done;
            txn_respond_block(t);
            return;
        }
        t->up = upstream_connect(t->w, a, t->url.port, key, t, &err);
        if (t->up) {
            set_hier(t, text);
            return;
        }
        t->last_err = err;
        log_error(t->c->id, "connect() to %s:%u failed: %s", text, t->url.port,
                  uv_strerror(err));
    }
    if (t->local_refused && t->last_err == 0) {
        t->close_after |= t->req_body != BODY_NONE && !t->req_done;
        txn_respond_error(t, 403, "TCP_DENIED", "ERR_LOCAL_UPSTREAM", NULL);
        return;
    }
    t->close_after |= t->req_body != BODY_NONE && !t->req_done;
    if (t->last_err == UV_ETIMEDOUT)
        txn_respond_error(t, 504, "TCP_MISS", "ERR_CONNECT_TIMEOUT", NULL);
    else {
        char msg[512];
        snprintf(msg, sizeof(msg), "The proxy could not connect to %s: %s.",
                 t->url.host, uv_strerror(t->last_err ? t->last_err : UV_ECONNREFUSED));
        txn_respond_error(t, 502, "TCP_MISS", "ERR_CONNECT_FAIL", msg);
    }
}

void txn_connect_failed(txn_t *t, int status)
{
    upstream_t *up = t->up;

    log_error(t->c->id, "connect() to %s:%u failed: %s while connecting to upstream, "
              "client: %s, request: \"%s %s\"",
              up->addr_text, up->port, uv_strerror(status), t->c->addr_text,
              t->method_name, t->target);
    t->last_err = status;
    upstream_close(up);
    t->up = NULL;
    txn_try_next(t);
}

void txn_upstream_connected(txn_t *t, int status)
{
    if (t->method == HTTP_CONNECT) {
        tunnel_connected(t, status);
        return;
    }
    if (status < 0) {
        txn_connect_failed(t, status);
        return;
    }
    if (t->url.scheme == URL_HTTPS) {
        /* Intercepted HTTPS: verified TLS before anything is sent. */
        const tls_snap_t *ts = tls_snap_of(t->conf);
        tls_io_t *io = ts && ts->upstream_ctx
                           ? tls_upstream_session(ts, t->url.host_is_ip ? NULL : t->url.host,
                                                  t->url.host, t->url.host_is_ip, t->url.port,
                                                  t->w->tls_sessions)
                           : NULL;
        if (io == NULL) {
            t->close_after |= t->req_body != BODY_NONE && !t->req_done;
            txn_respond_error(t, 502, "TCP_MISS", "ERR_CONNECT_FAIL",
                              "The proxy cannot make TLS connections now.");
            return;
        }
        upstream_tls_start(t->up, io, t->conf->connect_timeout);
        return;
    }
    t->w->stats.upstream_new++;
    txn_send_request(t);
}

void txn_upstream_tls_done(txn_t *t, int status)
{
    upstream_t *up = t->up;
    char msg[600];

    if (t->method == HTTP_CONNECT) {
        intercept_upstream_done(t, status);
        return;
    }
    if (status < 0) {
        log_error(t->c->id, "TLS to upstream %s (%s:%u) failed: %s, client: %s, "
                  "request: \"%s %s\"", t->url.host, up->addr_text, up->port,
                  up->tls_fail ? up->tls_fail : "?", t->c->addr_text, t->method_name,
                  t->target);
        snprintf(msg, sizeof(msg), "The certificate of %s could not be verified: %s.",
                 t->url.host, up->tls_fail ? up->tls_fail : "TLS handshake failed");
        t->close_after |= t->req_body != BODY_NONE && !t->req_done;
        txn_respond_error(t, 502, "TCP_MISS", "ERR_UPSTREAM_CERT", msg);
        return;
    }
    t->w->stats.upstream_new++;
    txn_send_request(t);
}

/* "Via: 1.1 host (portcullis/VERSION)" for a message of version maj.min
 * (RFC 9110 7.6.3). */
static void txn_add_via(strbuf_t *s, unsigned maj, unsigned min, const char *host)
{
    char v[4] = {(char)('0' + maj % 10), '.', (char)('0' + min % 10), ' '};

    strbuf_adds(s, "Via: ");
    strbuf_add(s, v, 4);
    strbuf_adds(s, host);
    strbuf_adds(s, " (portcullis/" PACKAGE_VERSION ")\r\n");
}

/* Writes the request head upstream and lets the body follow. */
static void txn_send_request(txn_t *t)
{
    upstream_t *up = t->up;
    client_t *c = t->c;
    strbuf_t s;
    char auth[URL_HOST_MAX + 16];

    pthread_once(&resp_settings_once, resp_settings_init);
    up->txn = t;
    up->requests++;
    llhttp_init(&up->parser, HTTP_RESPONSE, &resp_settings);
    up->parser.data = up;
    http_msg_reset(&t->resp);
    t->rs = RS_WAIT;

    strbuf_init(&s);
    strbuf_adds(&s, t->method_name);
    strbuf_add(&s, " ", 1);
    if (t->url.path_len == 0 || t->url.path[0] == '?')
        strbuf_add(&s, "/", 1);
    strbuf_add(&s, t->url.path, t->url.path_len);
    strbuf_adds(&s, " HTTP/1.1\r\n");
    url_format_authority(&t->url, 0, auth, sizeof(auth));
    strbuf_adds(&s, "Host: ");
    strbuf_adds(&s, auth);
    strbuf_add(&s, "\r\n", 2);
    strbuf_add_fields(&s, &t->req);
    if (t->req_body == BODY_LENGTH)
    {
        strbuf_adds(&s, "Content-Length: ");
        strbuf_add_u64(&s, t->req_clen, 0, '0');
        strbuf_add(&s, "\r\n", 2);
    }
    else if (t->req_body == BODY_CHUNKED)
        strbuf_adds(&s, "Transfer-Encoding: chunked\r\n");
    txn_add_via(&s, t->vmajor, t->vminor, t->conf->visible_hostname);
    if (t->conf->forwarded_for == CONF_XFF_ON)
        strbuf_addf(&s, "X-Forwarded-For: %s\r\n", c->addr_text);
    strbuf_adds(&s, "\r\n");
    if (s.failed || outq_copy(&up->out, s.p, s.len) < 0) {
        strbuf_free(&s);
        txn_respond_error(t, 500, "TCP_MISS", "ERR_CONNECT_FAIL", "Out of memory.");
        return;
    }
    strbuf_free(&s);
    upstream_read_start(up);
    up->last_activity = uv_now(&t->w->loop);
    upstream_timer(up, t->conf->read_timeout);
    if (t->req_held) {
        txn_body_request_send(t);
    } else if (t->req_body != BODY_NONE && !t->req_done) {
        t->body_streaming = 1;
        client_resume_parse(c);
    }
}

/* Prepares the request fields for forwarding: hop-by-hop fields go, Host is
 * rebuilt from the URL (RFC 9112 3.2.2), X-Forwarded-For per config. */
void txn_rewrite_request(txn_t *t)
{
    http_msg_strip_hop_by_hop(&t->req);
    http_msg_remove(&t->req, "Host");
    if (t->conf->forwarded_for == CONF_XFF_DELETE)
        http_msg_remove(&t->req, "X-Forwarded-For");
}

void txn_request_body(txn_t *t, iobuf_t *b, const char *p, size_t len)
{
    upstream_t *up = t->up;

    t->bytes_in += len;
    if (txn_body_held(t, PC_REQUEST))
        return;  /* kept by txn_body.c until the plugins decide */
    if (up == NULL || up->state == UP_CLOSED)
        return;
    if (outq_slice(&up->out, b, p, len, 0) < 0) {
        txn_respond_error(t, 502, "TCP_MISS", "ERR_READ_ERROR", NULL);
        return;
    }
    if (up->out.pending > OUTQ_HIGH)
        client_flow_stop(t->c);
}

void txn_request_complete(txn_t *t)
{
    t->req_done = 1;
    t->body_streaming = 0;
    client_timer_update(t->c);
    if (t->req_inspect) {
        /* Plugins hear the end of the upload; a held one goes upstream
         * only after their verdict (txn_body.c routes it). */
        int held = txn_body_held(t, PC_REQUEST), ended;
        txn_hold(t);
        txn_body_request_end(t);
        ended = t->ended;
        txn_release(t);
        if (ended || held)
            return;
    }
    /* The response may have ended first (an early answer such as 413). */
    if (t->rs == RS_DONE)
        txn_finish(t, 1);
}

void txn_upstream_drained(txn_t *t)
{
    if (t->method == HTTP_CONNECT) {
        tunnel_upstream_drained(t);
        return;
    }
    if (t->c->flow_stopped && !txn_body_spool_busy(t))
        client_flow_start(t->c);
    txn_body_drained(t);
}

void txn_client_drained(txn_t *t)
{
    if (t->method == HTTP_CONNECT) {
        tunnel_client_drained(t);
        return;
    }
    if (t->up && t->up->flow_stopped && !t->resp_hooks_pending &&
        !txn_body_spool_busy(t) && t->spl[1] == NULL) {
        t->up->flow_stopped = 0;
        upstream_read_start(t->up);
    }
    txn_hold(t);
    txn_body_drained(t);
    if (!t->ended && t->c->out.pending == 0)
        txn_resp_splice_try(t);
    txn_release(t);
}

/* ---- response ----------------------------------------------------------- */

static void txn_parse_response(txn_t *t, iobuf_t *b, const char *p, size_t len);
static void txn_upstream_stash(txn_t *t, iobuf_t *b, const char *p, size_t len);

static txn_t *parser_txn(llhttp_t *p)
{
    upstream_t *up = p->data;
    return up->txn;
}

static int on_resp_begin(llhttp_t *p)
{
    txn_t *t = parser_txn(p);

    http_msg_reset(&t->resp);
    return 0;
}

static int on_resp_header_field(llhttp_t *p, const char *at, size_t len)
{
    txn_t *t = parser_txn(p);

    if (t->rs != RS_WAIT)
        return 0;  /* trailer fields: passed through raw or dropped */
    if (http_msg_name_piece(&t->resp, at, len) < 0) {
        llhttp_set_error_reason(p, "response header section too large");
        return HPE_USER;
    }
    return 0;
}

static int on_resp_header_value(llhttp_t *p, const char *at, size_t len)
{
    txn_t *t = parser_txn(p);

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
    txn_t *t = parser_txn(p);
    upstream_t *up = p->data;
    int status = p->status_code;

    /* RFC 9110 6.4.1: these never have a body, whatever the fields say;
     * llhttp only knows about HEAD if told. */
    if (status < 200 || status == 204 || status == 304 || t->method == HTTP_HEAD)
        p->flags |= F_SKIPBODY;
    p->upgrade = 0;
    up->pause = UPAUSE_HEADERS;
    return HPE_PAUSED;
}

static int on_resp_body(llhttp_t *p, const char *at, size_t len)
{
    upstream_t *up = p->data;
    txn_t *t = up->txn;
    client_t *c = t->c;
    int rc = 0;

    if (t->inspect) {
        /* Plugins see the piece; it is held or forwarded by txn_body.c. */
        if (txn_body_response_piece(t, up->in, at, len) < 0) {
            t->body_error = 1;
            llhttp_set_error_reason(p, "body check");
            return HPE_USER;
        }
        return 0;
    }
    if (t->mode == RESP_CHUNK)
        rc = outq_slice(&c->out, up->in, at, len, 1);
    else if (t->mode == RESP_DECODED || t->mode == RESP_EOF)
        rc = outq_slice(&c->out, up->in, at, len, 0);
    else
        return 0;
    if (rc < 0) {
        llhttp_set_error_reason(p, "client write failed");
        return HPE_USER;
    }
    t->bytes_out += len;
    if (t->mode == RESP_CHUNK) {
        char hdr[24];
        t->bytes_out += (uint64_t)snprintf(hdr, sizeof(hdr), "%zx\r\n", len) + 2;
    }
    return 0;
}

static int on_resp_message_complete(llhttp_t *p)
{
    upstream_t *up = p->data;

    up->pause = UPAUSE_COMPLETE;
    return HPE_PAUSED;
}

/* Sends an interim (1xx) response on to an HTTP/1.1 client. */
static void txn_relay_interim(txn_t *t, int status)
{
    strbuf_t s;

    if (t->vminor == 0 || status == 101)
        return;
    strbuf_init(&s);
    strbuf_addf(&s, "HTTP/1.1 %d %s\r\n", status, http_status_text(status));
    http_msg_strip_hop_by_hop(&t->resp);
    strbuf_add_fields(&s, &t->resp);
    strbuf_adds(&s, "\r\n");
    if (!s.failed && outq_copy(&t->c->out, s.p, s.len) == 0)
        t->bytes_out += s.len;
    strbuf_free(&s);
}

/* Queues the response head to the client (framing per t->mode). Returns 0
 * or -1 when the transaction ended. */
int txn_send_response_head(txn_t *t, int64_t length)
{
    upstream_t *up = t->up;
    client_t *c = t->c;
    strbuf_t s;

    strbuf_init(&s);
    strbuf_adds(&s, "HTTP/1.1 ");
    strbuf_add_u64(&s, (uint64_t)t->status, 3, '0');
    strbuf_add(&s, " ", 1);
    strbuf_adds(&s, http_status_text(t->status));
    strbuf_add(&s, "\r\n", 2);
    strbuf_add_fields(&s, &t->resp);
    switch (t->mode) {
    case RESP_NONE:
        /* HEAD and 304 keep the length they describe. */
        if (t->resp_clen[0])
            strbuf_addf(&s, "Content-Length: %s\r\n", t->resp_clen);
        else if (t->resp_chunked && t->vminor >= 1 && t->method == HTTP_HEAD)
            strbuf_adds(&s, "Transfer-Encoding: chunked\r\n");
        break;
    case RESP_RAW:
    case RESP_LENGTH:
        if (length >= 0)
        {
            strbuf_adds(&s, "Content-Length: ");
            strbuf_add_u64(&s, (uint64_t)length, 0, '0');
            strbuf_add(&s, "\r\n", 2);
        }
        else
            strbuf_adds(&s, "Transfer-Encoding: chunked\r\n");
        break;
    case RESP_CHUNK:
        strbuf_adds(&s, "Transfer-Encoding: chunked\r\n");
        break;
    case RESP_DECODED:
    case RESP_EOF:
        break;
    }
    txn_add_via(&s, t->resp_vmajor, t->resp_vminor, t->conf->visible_hostname);
    if (t->close_after)
        strbuf_adds(&s, "Connection: close\r\n");
    else if (t->vminor == 0)
        strbuf_adds(&s, "Connection: keep-alive\r\n");
    strbuf_adds(&s, "\r\n");
    if (s.failed || outq_copy(&c->out, s.p, s.len) < 0) {
        strbuf_free(&s);
        txn_abort(t, "cannot write the response head to the client");
        return -1;
    }
    (void)up;
    t->bytes_out += s.len;
    strbuf_free(&s);
    t->head_sent = 1;
    client_timer_update(c);
    return 0;
}

static void response_hooks_done(txn_t *t, int verdict);

/* Returns 0 to go on parsing, 1 when parsing must wait for plugins, or -1
 * when the transaction ended. */
static int txn_response_head(txn_t *t)
{
    upstream_t *up = t->up;
    llhttp_t *p = &up->parser;
    int status = p->status_code;
    client_t *c = t->c;
    const char *v;
    size_t vlen;
    int mode;

    if (status == 101) {
        log_error(c->id, "upstream %s switched protocols without being asked",
                  up->addr_text);
        txn_respond_error(t, 502, "TCP_MISS", "ERR_INVALID_RESP", NULL);
        return -1;
    }
    if (http_msg_has_empty_name(&t->resp)) {
        /* The fields are passed on: one a client could misread is not. */
        log_error(c->id, "upstream %s sent a header field without a name",
                  up->addr_text);
        txn_respond_error(t, 502, "TCP_MISS", "ERR_INVALID_RESP", NULL);
        return -1;
    }
    if (status < 200) {
        txn_relay_interim(t, status);
        return 0;
    }
    t->status = status;
    t->resp_vmajor = p->http_major;
    t->resp_vminor = p->http_minor;
    t->resp_chunked = (p->flags & F_CHUNKED) != 0;
    v = http_msg_get(&t->resp, "Content-Type", &vlen);
    if (v)
        snprintf(t->mime, sizeof(t->mime), "%.*s", (int)vlen, v);
    v = http_msg_get(&t->resp, "Content-Length", &vlen);
    if (v && vlen < sizeof(t->resp_clen))
        snprintf(t->resp_clen, sizeof(t->resp_clen), "%.*s", (int)vlen, v);

    mode = http_resp_mode(&t->resp, (p->flags & F_SKIPBODY) != 0, (p->flags & F_CHUNKED) != 0,
                          (p->flags & F_TRANSFER_ENCODING) != 0,
                          (p->flags & F_CONTENT_LENGTH) != 0, t->vminor);
    if (mode < 0) {
        log_error(c->id, "upstream %s sent an unsupported Transfer-Encoding",
                  up->addr_text);
        txn_respond_error(t, 502, "TCP_MISS", "ERR_INVALID_RESP", NULL);
        return -1;
    }
    t->mode = (enum txn_resp_mode)mode;
    /* Close-delimited: the upstream connection ends with the body. */
    t->resp_eof_framed = t->mode == RESP_CHUNK || t->mode == RESP_EOF;
    t->resp_length = t->mode == RESP_RAW && !(p->flags & F_CHUNKED) &&
                             (p->flags & F_CONTENT_LENGTH)
                         ? (int64_t)p->content_length
                         : -1;
    /* A response that starts before the request body was read ends the
     * connection (see txn_response_complete); say so in its head. */
    if (t->mode == RESP_DECODED || t->mode == RESP_EOF || !t->client_keepalive ||
        !t->req_done || t->w->draining)
        t->close_after = 1;
    http_msg_strip_hop_by_hop(&t->resp);
    t->code = "TCP_MISS";

    t->resp_hooks_pending = 1;
    t->in_resp_head = 1;
    hooks_run(t, PC_HOOK_RESPONSE_HEADERS, response_hooks_done);
    t->in_resp_head = 0;
    if (t->ended)
        return -1;
    return t->resp_hooks_pending ? 1 : 0;
}

static void response_hooks_done(txn_t *t, int verdict)
{
    int inline_call = t->in_resp_head;

    t->resp_hooks_pending = 0;
    if (verdict == PC_BLOCK) {
        txn_respond_block(t);
        return;
    }
    t->rs = RS_BODY;
    if (txn_body_response_begin(t) < 0)
        return;
    if (!t->holding) {
        int64_t len = t->mode == RESP_RAW && t->resp_chunked ? -1 : t->resp_length;
        if (txn_send_response_head(t, len) < 0)
            return;
    }
    if (!inline_call)
        txn_upstream_resume(t);
}

/* The response ended cleanly; extra is 1 when bytes followed it. */
static void txn_response_complete(txn_t *t, int extra)
{
    upstream_t *up = t->up;
    int reuse;

    if (t->mode == RESP_CHUNK && !t->inspect) {
        if (outq_copy(&t->c->out, "0\r\n\r\n", 5) == 0)
            t->bytes_out += 5;
    }
    t->rs = RS_DONE;
    reuse = !extra && t->req_done && llhttp_should_keep_alive(&up->parser) &&
            !t->resp_eof_framed;
    t->up = NULL;
    if (reuse)
        upool_put(t->w->upool, up);
    else
        upstream_close(up);
    if (!t->req_done) {
        /* The client is still sending a body the server did not wait for;
         * finish it by closing (RFC 9112 9.6). */
        t->close_after = 1;
    }
    if (t->inspect) {
        /* Plugins have the last word (and held bytes go out) first. */
        txn_body_response_end(t);
        return;
    }
    txn_finish(t, 1);
}

void txn_upstream_data(txn_t *t, iobuf_t *b, const char *p, size_t len)
{
    if (t->method == HTTP_CONNECT) {
        tunnel_upstream_data(t, b, p, len);
        return;
    }
    client_t *c = t->c;

    /* The response head and the body bytes of this read leave together. */
    outq_cork(&c->out);
    txn_hold(t);
    txn_parse_response(t, b, p, len);
    if (outq_uncork(&c->out) < 0 && !c->closing)
        client_close(c);
    else if (!t->ended)
        txn_resp_splice_try(t);
    txn_release(t);
}

/* ---- the body by splice(2) ---------------------------------------------- */

static void resp_read_ctl(splice_dir_t *d, int on)
{
    txn_t *t = d->data;

    if (on) {
        t->up->flow_stopped = 0;
        upstream_read_start(t->up);
    } else {
        /* Waiting on the client now: its send_timeout rules, not the
         * upstream's read_timeout (as with txn_upstream_flow). */
        t->up->flow_stopped = 1;
        upstream_read_stop(t->up);
        client_timer_update(t->c);
    }
}

static void resp_progress(splice_dir_t *d, int dir, size_t n)
{
    txn_t *t = d->data;
    uint64_t now = uv_now(&t->w->loop);

    if (dir == 0) {
        t->up->last_activity = now;
    } else {
        t->bytes_out += n;
        t->c->last_activity = now;
    }
}

static void resp_done(splice_dir_t *d, int status)
{
    txn_t *t = d->data;
    upstream_t *up = t->up;
    int client_side = d->failed_dst;

    txn_splice_stop(t);
    if (status == 0) {
        /* Exactly the Content-Length went through and nothing past it was
         * taken: the connection may serve the next request. The parser
         * saw none of these bytes; it is set up anew for that request. */
        txn_response_complete(t, 0);
        return;
    }
    if (status == UV_ENOSYS) {
        /* Refused before a byte moved: the parser's count still holds,
         * so copying takes over where the relay stood. */
        t->spl_failed = 1;
        up->flow_stopped = 0;
        upstream_read_start(up);
        return;
    }
    if (status == UV_EOF) {
        /* Short body: logged and broken off like a copied one. */
        txn_upstream_eof(t, UV_EOF);
        return;
    }
    if (client_side) {
        /* As a failed write of the copying path (on_client_write). */
        log_debug(t->c->id, "write to client failed: %s", uv_strerror(status));
        client_close(t->c);
        return;
    }
    txn_upstream_eof(t, status);
}

static const splice_ops_t resp_splice_ops = {resp_read_ctl, resp_progress, resp_done};

/*
 * Hands the rest of a Content-Length body to a splice relay when nothing
 * else needs to see or change its bytes: no plugin asked for the response
 * body (t->body[PC_RESPONSE], which every streamer and holder creates),
 * no TLS on either side, the raw framing passes through, and everything
 * before it (head, bytes read with it) has left the output queue.
 * Exactly the bytes still due are spliced, so a connection that ends
 * cleanly can go back to the pool with nothing of the next response
 * consumed.
 */
static void txn_resp_splice_try(txn_t *t)
{
    client_t *c = t->c;
    upstream_t *up = t->up;
    splice_dir_t *d;

    if (t->spl[1] || t->spl_failed || t->ended || !t->conf->splice || !splice_usable(t->w) ||
        t->method == HTTP_CONNECT || up == NULL || up->state != UP_ACTIVE ||
        t->rs != RS_BODY || t->mode != RESP_RAW || t->resp_chunked || t->resp_length <= 0 ||
        t->inspect || t->holding || t->body[PC_RESPONSE] || t->resp_hooks_pending ||
        up->tls || c->tls || c->tlsc || up->pending || c->closing ||
        llhttp_get_errno(&up->parser) != HPE_OK || up->parser.content_length == 0 ||
        c->out.pending || c->out.corked || c->tcp.write_queue_size)
        return;
    d = splice_dir_start(t->w, &up->tcp, &c->tcp, up->parser.content_length,
                         &resp_splice_ops, t);
    if (d == NULL) {
        t->spl_failed = 1;
        return;
    }
    t->spl[1] = d;
    up->splice_rx = d;
    txn_hold(t);
    splice_readable(d);
    txn_release(t);
}

/* Feeds response bytes to the parser and acts on what it finds. */
static void txn_parse_response(txn_t *t, iobuf_t *b, const char *p, size_t len)
{
    upstream_t *up = t->up;

    /* Body pieces are sliced from up->in, which owns a reference: bytes
     * kept while plugins decided (up->pending) become it; a call with no
     * bytes (b NULL) leaves it alone. */
    if (b && b != up->in) {
        iobuf_ref(b);
        iobuf_unref(up->in);
        up->in = b;
    }
    /* Runs until the parser wants more bytes (HPE_OK). After a pause it
     * runs again even with no bytes left: a message without a body (HEAD,
     * 204, 304, Content-Length: 0) ends only in that next call. */
    for (;;) {
        enum llhttp_errno err;
        size_t used;
        int rc;

        up->pause = UPAUSE_NONE;
        err = llhttp_execute(&up->parser, p, len);
        used = err == HPE_OK ? len : (size_t)(llhttp_get_error_pos(&up->parser) - p);
        if (t->ended)
            return;  /* a plugin ended it from a body piece */
        if (t->rs == RS_BODY && t->mode == RESP_RAW && !t->inspect && used > 0) {
            if (outq_slice(&t->c->out, b, p, used, 0) < 0) {
                txn_abort(t, "client write failed");
                return;
            }
            t->bytes_out += used;
        }
        p += used;
        len -= used;
        if (err == HPE_OK)
            break;
        if (err == HPE_PAUSED) {
            llhttp_resume(&up->parser);
            if (up->pause == UPAUSE_HEADERS) {
                rc = txn_response_head(t);
                if (rc < 0)
                    return;
                if (rc > 0) {
                    /* Plugins are deciding: keep the rest for later. */
                    txn_upstream_stash(t, b, p, len);
                    return;
                }
                continue;
            }
            if (up->pause == UPAUSE_COMPLETE) {
                if (up->parser.status_code < 200)
                    continue;  /* an interim response ended; the real one follows */
                txn_response_complete(t, len > 0);
                return;
            }
            continue;
        }
        if (err == HPE_USER && t->body_error) {
            /* A plugin blocked (or a held body passed a fail-closed max):
             * a page while the head is still held, else a broken transfer. */
            if (t->blocked)
                txn_respond_block(t);
            else
                txn_abort(t, "a body check failed");
            return;
        }
        log_error(t->c->id, "invalid response from upstream %s: %s (%s)",
                  up->addr_text, llhttp_errno_name(err),
                  llhttp_get_error_reason(&up->parser));
        txn_respond_error(t, 502, "TCP_MISS", "ERR_INVALID_RESP", NULL);
        return;
    }
    txn_upstream_flow(t);
}

/* Stops reading the upstream while the client (or the spool) is behind. */
void txn_upstream_flow(txn_t *t)
{
    upstream_t *up = t->up;

    if (up == NULL)
        return;
    if (t->c->out.pending > OUTQ_HIGH || txn_body_spool_busy(t)) {
        up->flow_stopped = 1;
        upstream_read_stop(up);
        /* Bytes the kernel took at once never armed the client's
         * send_timeout; now that output waits on the client, it must. */
        client_timer_update(t->c);
    }
}

/* Keeps unparsed response bytes while plugins decide about the head. */
static void txn_upstream_stash(txn_t *t, iobuf_t *b, const char *p, size_t len)
{
    upstream_t *up = t->up;

    upstream_read_stop(up);
    up->flow_stopped = 1;
    iobuf_unref(up->pending);
    up->pending = NULL;
    if (len == 0)
        return;
    up->pending = iobuf_ref(b);
    up->pending_off = (size_t)(p - b->data);
    up->pending_len = len;
}

/* Plugins decided: parse what was kept, then read on. */
void txn_upstream_resume(txn_t *t)
{
    upstream_t *up = t->up;

    if (up == NULL || t->ended)
        return;
    txn_hold(t);
    if (up->pending) {
        iobuf_t *b = up->pending;
        up->pending = NULL;
        txn_parse_response(t, b, b->data + up->pending_off, up->pending_len);
        iobuf_unref(b);
    } else if (up->parser.status_code >= 200) {
        /* A bodiless message ends only in the next parser call. */
        txn_parse_response(t, NULL, "", 0);
    }
    if (!t->ended && t->up && !txn_body_spool_busy(t) &&
        t->c->out.pending <= OUTQ_HIGH) {
        t->up->flow_stopped = 0;
        upstream_read_start(t->up);
    }
    if (!t->ended)
        txn_resp_splice_try(t);
    txn_release(t);
}

void txn_upstream_eof(txn_t *t, int status)
{
    upstream_t *up = t->up;

    if (t->method == HTTP_CONNECT) {
        tunnel_upstream_eof(t, status);
        return;
    }
    if (t->rs == RS_WAIT) {
        /* A kept-alive connection the server closed just as we reused it:
         * nothing was answered, so a request without a body can safely go
         * again on a new connection (RFC 9112 9.3.1). */
        if (up->reused && !up->got_bytes && !t->retried &&
            t->req_body == BODY_NONE && method_is_idempotent(t->method)) {
            log_info(t->c->id, "kept-alive upstream %s closed (%s); retrying",
                     up->addr_text, uv_strerror(status));
            t->retried = 1;
            upstream_close(up);
            t->up = NULL;
            txn_route(t, 0);
            return;
        }
        log_error(t->c->id, "upstream %s closed the connection before answering (%s), "
                  "client: %s, request: \"%s %s\"",
                  up->addr_text, uv_strerror(status), t->c->addr_text,
                  t->method_name, t->target);
        t->close_after |= !t->req_done;
        txn_respond_error(t, 502, "TCP_MISS",
                          up->got_bytes ? "ERR_READ_ERROR" : "ERR_ZERO_SIZE_OBJECT",
                          NULL);
        return;
    }
    if (t->rs == RS_BODY && status == UV_EOF &&
        llhttp_message_needs_eof(&up->parser)) {
        enum llhttp_errno err;
        up->pause = UPAUSE_NONE;
        err = llhttp_finish(&up->parser);
        if ((err == HPE_OK || err == HPE_PAUSED) && up->pause == UPAUSE_COMPLETE) {
            txn_response_complete(t, 0);
            return;
        }
    }
    log_error(t->c->id, "upstream %s closed the connection in the middle of the "
              "response (%s), client: %s, request: \"%s %s\"",
              up->addr_text, uv_strerror(status), t->c->addr_text,
              t->method_name, t->target);
    /* The client sees a short body or a missing last chunk, never a
     * complete-looking response. */
    txn_abort(t, NULL);
}

void txn_upstream_timeout(txn_t *t)
{
    if (t->method == HTTP_CONNECT) {
        tunnel_timeout(t);
        return;
    }
    log_error(t->c->id, "upstream %s timed out (%" PRIu64 " ms without data), "
              "client: %s, request: \"%s %s\"",
              t->up->addr_text, t->conf->read_timeout, t->c->addr_text,
              t->method_name, t->target);
    t->close_after |= !t->req_done;
    txn_respond_error(t, 504, "TCP_MISS", "ERR_READ_TIMEOUT", NULL);
}
