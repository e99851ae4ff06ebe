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
#include "internal.h"
#include "localaddr.h"
#include "log.h"
#include "server.h"
#include "tunnel.h"
#include "txn.h"

static int on_resp_begin(llhttp_t *p);
static int on_resp_header_field(llhttp_t *p, const char *at, size_t len);
static int on_resp_header_value(llhttp_t *p, const char *at, size_t len);
static int on_resp_headers_complete(llhttp_t *p);
static int on_resp_body(llhttp_t *p, const char *at, size_t len);
static int on_resp_message_complete(llhttp_t *p);

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
    snprintf(t->hier, sizeof(t->hier), "HIER_NONE/-");
    return t;
}

void txn_free(txn_t *t)
{
    if (t == NULL)
        return;
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
    accesslog_write(t->w->alog, &r);
}

/* Logs, releases the upstream and hands the client back. */
static void txn_finish(txn_t *t, int keepalive)
{
    client_t *c = t->c;

    if (t->ended)
        return;
    t->ended = 1;
    if (t->up) {
        upstream_close(t->up);
        t->up = NULL;
    }
    if (t->status >= 400 && strcmp(t->code, "TCP_DENIED") != 0)
        t->w->stats.errors++;
    t->w->stats.bytes_out += t->bytes_out;
    t->w->stats.bytes_in += t->bytes_in;
    txn_log(t);
    if (c->txn == t)
        c->txn = NULL;
    client_txn_done(c, keepalive && !t->aborted && !t->close_after);
    txn_free(t);
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
    keep = t->client_keepalive && t->req_done && status != 400 &&
           status != 408 && status != 414 && status != 431 && !t->w->draining;
    txn_send_page(t, status, "text/html; charset=utf-8", extra,
                  page ? page : "", page ? plen : 0, keep);
    free(page);
    txn_finish(t, keep);
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
    if (t->method_name[0] == '\0' && c->parser.method <= HTTP_SOURCE)
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

void txn_request_head(txn_t *t, int done)
{
    client_t *c = t->c;
    llhttp_t *p = &c->parser;
    const char *why = NULL;
    size_t elen;
    const char *expect;

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

    if (!c->allowed) {
        log_warn(c->id, "access denied: client %s is not in allow_clients",
                 c->addr_text);
        t->w->stats.denied++;
        t->close_after = 1;
        txn_respond_error(t, 403, "TCP_DENIED", "ERR_ACCESS_DENIED", NULL);
        return;
    }
    if (t->vmajor != 1) {
        if (t->vmajor > 1) {
            t->close_after = 1;
            txn_respond_error(t, 505, "TAG_NONE", "ERR_UNSUP_HTTPVERSION", NULL);
        } else {
            txn_bad_request(c, t, 400, "HTTP/0.9 request");
        }
        return;
    }
    /* RFC 9112 5.2: a proxy must reject obs-fold or replace it; control
     * bytes in a value have no legitimate use either. */
    if (http_msg_has_ctl(&t->req)) {
        txn_bad_request(c, t, 400, "line folding or control character in a header");
        return;
    }
    /* RFC 9112 3.2: exactly one Host in HTTP/1.1. */
    {
        unsigned hosts = http_msg_count(&t->req, "Host");
        if (hosts > 1 || (hosts == 0 && t->vminor >= 1)) {
            txn_bad_request(c, t, 400, hosts ? "more than one Host header"
                                             : "missing Host header");
            return;
        }
    }
    /* RFC 9112 6.1: Transfer-Encoding in an HTTP/1.0 request means the
     * framing cannot be trusted. */
    if (t->vminor == 0 && t->req_body == BODY_CHUNKED) {
        txn_bad_request(c, t, 400, "Transfer-Encoding in an HTTP/1.0 request");
        return;
    }
    expect = http_msg_get(&t->req, "Expect", &elen);
    if (expect) {
        if (elen != 12 || strncasecmp(expect, "100-continue", 12) != 0) {
            t->close_after = t->req_body != BODY_NONE;
            txn_respond_error(t, 417, "TAG_NONE", "ERR_EXPECTATION", NULL);
            return;
        }
    }

    if (t->method == HTTP_CONNECT) {
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
    if (t->url.scheme == URL_HTTPS) {
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
    txn_route(t, 1);
}

/* ---- upstream selection ------------------------------------------------- */

static void txn_try_next(txn_t *t);

static void set_hier(txn_t *t, const char *addr)
{
    snprintf(t->hier, sizeof(t->hier), "HIER_DIRECT/%s", addr);
}

static void pool_key(const txn_t *t, char *key, size_t len)
{
    snprintf(key, len, "%s:%u", t->url.host, t->url.port);
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
        t->close_after = t->req_body != BODY_NONE && !t->req_done;
        txn_respond_error(t, 403, "TCP_DENIED", "ERR_LOCAL_UPSTREAM", NULL);
        return;
    }
    t->close_after = t->req_body != BODY_NONE && !t->req_done;
    if (t->last_err == UV_ETIMEDOUT)
        txn_respond_error(t, 504, "TCP_MISS", "ERR_CONNECT_TIMEOUT", NULL);
    else {
        char msg[512];
        snprintf(msg, sizeof(msg), "The proxy could not connect to %s: %s.",
                 t->url.host, uv_strerror(t->last_err ? t->last_err : UV_ECONNREFUSED));
        txn_respond_error(t, 502, "TCP_MISS", "ERR_CONNECT_FAIL", msg);
    }
}

void txn_upstream_connected(txn_t *t, int status)
{
    if (t->method == HTTP_CONNECT) {
        tunnel_connected(t, status);
        return;
    }
    if (status < 0) {
        upstream_t *up = t->up;
        log_error(t->c->id, "connect() to %s:%u failed: %s while connecting to upstream, "
                  "client: %s, request: \"%s %s\"",
                  up->addr_text, up->port, uv_strerror(status), t->c->addr_text,
                  t->method_name, t->target);
        t->last_err = status;
        upstream_close(up);
        t->up = NULL;
        txn_try_next(t);
        return;
    }
    t->w->stats.upstream_new++;
    txn_send_request(t);
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
    strbuf_addf(&s, "Host: %s\r\n", auth);
    strbuf_add_fields(&s, &t->req);
    if (t->req_body == BODY_LENGTH)
        strbuf_addf(&s, "Content-Length: %" PRIu64 "\r\n", t->req_clen);
    else if (t->req_body == BODY_CHUNKED)
        strbuf_adds(&s, "Transfer-Encoding: chunked\r\n");
    strbuf_addf(&s, "Via: %u.%u %s (portcullis/" PACKAGE_VERSION ")\r\n",
                t->vmajor, t->vminor, t->conf->visible_hostname);
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
    if (t->req_body != BODY_NONE && !t->req_done) {
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
    if (t->c->flow_stopped)
        client_flow_start(t->c);
}

void txn_client_drained(txn_t *t)
{
    if (t->method == HTTP_CONNECT) {
        tunnel_client_drained(t);
        return;
    }
    if (t->up && t->up->flow_stopped) {
        t->up->flow_stopped = 0;
        upstream_read_start(t->up);
    }
}

/* ---- response ----------------------------------------------------------- */

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

    if (t->mode == RESP_CHUNK)
        rc = outq_slice(&c->out, up->in, at, len, 1);
    else if (t->mode == RESP_DECODED)
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

/* Returns 0 to go on parsing, or -1 when the transaction ended. */
static int txn_response_head(txn_t *t)
{
    upstream_t *up = t->up;
    llhttp_t *p = &up->parser;
    int status = p->status_code;
    client_t *c = t->c;
    const char *v;
    size_t vlen;
    char clen[32] = "";
    strbuf_t s;

    if (status == 101) {
        log_error(c->id, "upstream %s switched protocols without being asked",
                  up->addr_text);
        txn_respond_error(t, 502, "TCP_MISS", "ERR_INVALID_RESP", NULL);
        return -1;
    }
    if (status < 200) {
        txn_relay_interim(t, status);
        return 0;
    }
    t->status = status;
    v = http_msg_get(&t->resp, "Content-Type", &vlen);
    if (v)
        snprintf(t->mime, sizeof(t->mime), "%.*s", (int)vlen, v);
    v = http_msg_get(&t->resp, "Content-Length", &vlen);
    if (v && vlen < sizeof(clen))
        snprintf(clen, sizeof(clen), "%.*s", (int)vlen, v);

    if (p->flags & F_SKIPBODY) {
        t->mode = RESP_NONE;
    } else if (p->flags & F_CHUNKED) {
        t->mode = t->vminor >= 1 ? RESP_RAW : RESP_DECODED;
    } else if (p->flags & F_TRANSFER_ENCODING) {
        /* A transfer coding other than chunked (RFC 9112 6.3): nothing a
         * client could decode after we drop the field. */
        log_error(c->id, "upstream %s sent an unsupported Transfer-Encoding",
                  up->addr_text);
        txn_respond_error(t, 502, "TCP_MISS", "ERR_INVALID_RESP", NULL);
        return -1;
    } else if (p->flags & F_CONTENT_LENGTH) {
        t->mode = RESP_RAW;
    } else {
        t->mode = t->vminor >= 1 ? RESP_CHUNK : RESP_EOF;
    }
    if (t->mode == RESP_DECODED || t->mode == RESP_EOF || !t->client_keepalive ||
        t->w->draining)
        t->close_after = 1;

    http_msg_strip_hop_by_hop(&t->resp);
    strbuf_init(&s);
    strbuf_addf(&s, "HTTP/1.1 %d %s\r\n", status, http_status_text(status));
    strbuf_add_fields(&s, &t->resp);
    switch (t->mode) {
    case RESP_NONE:
        /* HEAD and 304 keep the length they describe. */
        if (clen[0])
            strbuf_addf(&s, "Content-Length: %s\r\n", clen);
        else if ((p->flags & F_CHUNKED) && t->vminor >= 1 && t->method == HTTP_HEAD)
            strbuf_adds(&s, "Transfer-Encoding: chunked\r\n");
        break;
    case RESP_RAW:
        if (p->flags & F_CHUNKED)
            strbuf_adds(&s, "Transfer-Encoding: chunked\r\n");
        else
            strbuf_addf(&s, "Content-Length: %" PRIu64 "\r\n", p->content_length);
        break;
    case RESP_CHUNK:
        strbuf_adds(&s, "Transfer-Encoding: chunked\r\n");
        break;
    case RESP_DECODED:
    case RESP_EOF:
        break;
    }
    strbuf_addf(&s, "Via: %u.%u %s (portcullis/" PACKAGE_VERSION ")\r\n",
                p->http_major, p->http_minor, t->conf->visible_hostname);
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
    t->bytes_out += s.len;
    strbuf_free(&s);
    t->head_sent = 1;
    t->rs = RS_BODY;
    t->code = "TCP_MISS";
    client_timer_update(c);
    return 0;
}

/* The response ended cleanly; extra is 1 when bytes followed it. */
static void txn_response_complete(txn_t *t, int extra)
{
    upstream_t *up = t->up;
    int reuse;

    if (t->mode == RESP_CHUNK) {
        if (outq_copy(&t->c->out, "0\r\n\r\n", 5) == 0)
            t->bytes_out += 5;
    }
    t->rs = RS_DONE;
    reuse = !extra && t->req_done && llhttp_should_keep_alive(&up->parser) &&
            t->mode != RESP_CHUNK && t->mode != RESP_EOF;
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
    txn_finish(t, 1);
}

void txn_upstream_data(txn_t *t, iobuf_t *b, const char *p, size_t len)
{
    upstream_t *up = t->up;

    if (t->method == HTTP_CONNECT) {
        tunnel_upstream_data(t, b, p, len);
        return;
    }
    up->in = b;
    while (len > 0) {
        enum llhttp_errno err;
        size_t used;

        up->pause = UPAUSE_NONE;
        err = llhttp_execute(&up->parser, p, len);
        used = err == HPE_OK ? len : (size_t)(llhttp_get_error_pos(&up->parser) - p);
        if (t->rs == RS_BODY && t->mode == RESP_RAW && used > 0) {
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
                if (txn_response_head(t) < 0)
                    return;
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
        log_error(t->c->id, "invalid response from upstream %s: %s (%s)",
                  up->addr_text, llhttp_errno_name(err),
                  llhttp_get_error_reason(&up->parser));
        txn_respond_error(t, 502, "TCP_MISS", "ERR_INVALID_RESP", NULL);
        return;
    }
    if (t->c->out.pending > OUTQ_HIGH) {
        up->flow_stopped = 1;
        upstream_read_stop(up);
    }
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
        t->close_after = !t->req_done;
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
    t->close_after = !t->req_done;
    txn_respond_error(t, 504, "TCP_MISS", "ERR_READ_TIMEOUT", NULL);
}
