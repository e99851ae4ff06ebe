/* intercept.c - HTTPS on CONNECT: the ClientHello peek, SNI policy, and TLS interception with minted certificates. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "hooks.h"
#include "intercept.h"
#include "log.h"
#include "mint.h"
#include "sni.h"
#include "tls_io.h"
#include "tls_policy.h"
#include "tunnel.h"
#include "txn.h"

/* The set-up of one CONNECT, from the 200 to the interception (or not). */
/* What to do once a connection made after the 200 is up. */
enum after_connect { AFTER_NONE, AFTER_SPLICE, AFTER_HANDSHAKE };

typedef struct intercept {
    sni_info_t hello;
    enum after_connect after;  /* waiting for a connection made late */
    int have_hello;            /* hello holds the client's ClientHello */
    int blocked;               /* the tunnel is blocked: a page or an alert */
    int recorded;              /* the block was logged (txn_block_record) */
    enum client_tls_mode mode;
    char host[URL_HOST_MAX + 1];  /* the tunnel's name: the SNI, else the
                                   * CONNECT host */
    tls_io_t *client;          /* the handshake with the client */
    mint_req_t *mreq;          /* a mint in flight */
    char *error;               /* CTLS_CERT_ERROR: what failed */
} intercept_t;

static void hello_ready(txn_t *t);
static void client_hs_step(txn_t *t);

static intercept_t *icp_get(txn_t *t)
{
    if (t->icp == NULL)
        t->icp = calloc(1, sizeof(intercept_t));
    return t->icp;
}

void intercept_txn_end(txn_t *t)
{
    intercept_t *icp = t->icp;

    t->icp = NULL;
    if (icp == NULL)
        return;
    mint_req_cancel(icp->mreq);
    tls_io_free(icp->client);
    free(icp->error);
    free(icp);
}

void intercept_client_free(client_tls_t *ct)
{
    if (ct == NULL)
        return;
    free(ct->sni);
    free(ct->block_reason);
    free(ct->block_category);
    free(ct->error);
    free(ct);
}

/* Ends a tunnel after the 200 without a session: a TLS alert (alert > 0)
 * for a client that spoke TLS, then the log line (TCP_DENIED/403 for a
 * block, else the code the caller set) and the close. */
/* Logs a block once (the error log line, the event, the counters). */
static void record_block(txn_t *t)
{
    if (t->icp && t->icp->recorded)
        return;
    if (t->icp)
        t->icp->recorded = 1;
    txn_block_record(t);
    t->status = t->block.status;
}

static void refuse(txn_t *t, int alert)
{
    client_t *c = t->c;

    if (alert > 0) {
        unsigned char rec[7];
        tls_alert_record(rec, alert);
        if (outq_copy(&c->out, rec, sizeof(rec)) == 0)
            t->bytes_out += sizeof(rec);
    }
    if (t->blocked)
        record_block(t);
    txn_end(t);
}

/* ---- the peek ------------------------------------------------------------ */

void intercept_peek_start(txn_t *t)
{
    client_t *c = t->c;

    if (icp_get(t) == NULL) {
        txn_abort(t, "out of memory");
        return;
    }
    c->state = CL_PEEK;
    c->deadline = uv_now(&t->w->loop) + t->conf->tls_peek_timeout;
    /* A server that talks first is no TLS server (intercept_upstream_data). */
    if (t->up)
        upstream_read_start(t->up);
    client_flow_start(c);
    client_timer_update(c);
    if (c->in && c->in_off < c->in_len)
        intercept_client_data(t);
}

int intercept_pool_shortcut(txn_t *t)
{
    char key[URL_HOST_MAX + 32];
    const char *why;

    snprintf(key, sizeof(key), "https:%s:%u", t->url.host, t->url.port);
    if (!tls_port_requires_tls(t->conf, t->url.port) || !upool_has(t->w->upool, key) ||
        !tls_intercept_decide(t->conf, &t->c->addr, NULL, t->url.host, t->intercept_vote,
                              &why) ||
        icp_get(t) == NULL)
        return -1;
    t->w->stats.tunnels++;
    if (tunnel_established(t) < 0)
        return 0;
    intercept_peek_start(t);
    return 0;
}

int intercept_block_connect(txn_t *t)
{
    const char *why;
    intercept_t *icp;

    /* Only where TLS is required anyway: elsewhere a client may speak
     * anything, and a plain 403 says more than a 200 and a close. The SNI
     * is not known yet; a no_intercept SNI later ends in an alert. */
    if (!tls_port_requires_tls(t->conf, t->url.port) ||
        !tls_intercept_decide(t->conf, &t->c->addr, NULL, t->url.host, t->intercept_vote,
                              &why))
        return -1;
    icp = icp_get(t);
    if (icp == NULL)
        return -1;
    icp->blocked = 1;
    snprintf(t->hier, sizeof(t->hier), "HIER_NONE/-");
    if (tunnel_established(t) < 0)
        return 0;
    intercept_peek_start(t);
    return 0;
}

/* The client's first bytes are no TLS (or none came): refused where TLS
 * is required or the tunnel is blocked, else spliced as they are. */
static void peek_not_tls(txn_t *t, const char *why)
{
    client_t *c = t->c;

    if (t->icp->blocked || tls_port_requires_tls(t->conf, t->url.port)) {
        log_info(c->id, "CONNECT to %s: %s; closed (connect_require_tls), client: %s",
                 t->target, why, c->addr_text);
        if (!t->blocked)
            hooks_block(t, "core", "no TLS on a port that requires it (connect_require_tls)");
        refuse(t, 0);
        return;
    }
    log_debug(c->id, "CONNECT to %s: %s; spliced", t->target, why);
    txn_note(t, "tls", "none");
    tunnel_splice(t);
}

/* Hands the bytes in c->in to the client handshake. */
static void feed_client(txn_t *t)
{
    client_t *c = t->c;
    intercept_t *icp = t->icp;

    if (c->in && c->in_off < c->in_len) {
        size_t n = c->in_len - c->in_off;
        if (tls_io_feed(icp->client, c->in->data + c->in_off, n) < 0) {
            txn_abort(t, "out of memory");
            return;
        }
        c->in_off = c->in_len;
        t->bytes_in += n;
    }
    client_hs_step(t);
}

void intercept_client_data(txn_t *t)
{
    client_t *c = t->c;
    intercept_t *icp = t->icp;
    const char *why = "not a TLS ClientHello";
    int rc;

    if (icp == NULL || c->in == NULL)
        return;
    if (icp->client) {
        feed_client(t);
        return;
    }
    if (icp->have_hello)
        return;  /* deciding: later bytes wait in c->in */
    rc = sni_parse((const uint8_t *)c->in->data + c->in_off, c->in_len - c->in_off,
                   &icp->hello, &why);
    if (rc == 0)
        return;
    if (rc < 0) {
        char msg[200];
        snprintf(msg, sizeof(msg), "the client sent no TLS ClientHello (%s)", why);
        peek_not_tls(t, msg);
        return;
    }
    icp->have_hello = 1;
    hello_ready(t);
}

void intercept_client_eof(txn_t *t, int status)
{
    log_debug(t->c->id, "client closed the tunnel to %s before it was set up (%s)",
              t->target, uv_strerror(status));
    if (t->blocked)
        record_block(t);
    txn_end(t);
}

void intercept_timeout(txn_t *t)
{
    client_t *c = t->c;
    intercept_t *icp = t->icp;

    if (icp && !icp->have_hello && icp->client == NULL) {
        /* Silence on a port that may carry anything: a protocol where the
         * server speaks first after the client connects. */
        peek_not_tls(t, c->in && c->in_off < c->in_len
                            ? "an incomplete ClientHello within tls_peek_timeout"
                            : "nothing within tls_peek_timeout");
        return;
    }
    log_info(c->id, "TLS set-up of the tunnel to %s timed out, client: %s", t->target,
             c->addr_text);
    txn_end(t);
}

void intercept_upstream_data(txn_t *t, iobuf_t *b, const char *p, size_t len)
{
    intercept_t *icp = t->icp;

    if (icp && !icp->have_hello && !icp->blocked &&
        !tls_port_requires_tls(t->conf, t->url.port)) {
        log_debug(t->c->id, "CONNECT to %s: the server spoke first; spliced", t->target);
        txn_note(t, "tls", "none");
        tunnel_splice_with(t, b, p, len);
        return;
    }
    log_info(t->c->id, "CONNECT to %s: the server sent data before the TLS handshake; "
             "closed, client: %s", t->target, t->c->addr_text);
    txn_end(t);
}

void intercept_upstream_eof(txn_t *t, int status)
{
    upstream_t *up = t->up;

    /* A verified connection (from the pool, or after the handshake) that
     * the site closed while the client handshake runs: the requests will
     * make a new one. */
    if (t->icp && t->icp->mode == CTLS_PASS && up && up->tls && up->tls->done) {
        log_debug(t->c->id, "upstream %s closed its idle connection (%s)", up->addr_text,
                  uv_strerror(status));
        upstream_close(up);
        t->up = NULL;
        return;
    }
    log_info(t->c->id, "upstream of the tunnel to %s closed before it was set up (%s), "
             "client: %s", t->target, uv_strerror(status), t->c->addr_text);
    txn_end(t);
}

/* ---- deciding ------------------------------------------------------------ */

static void block_after_200(txn_t *t);
static void upstream_handshake(txn_t *t);
static void mint(txn_t *t, X509 *upstream);

/* Connects now, for a tunnel that answered 200 without a connection. */
static void connect_late(txn_t *t, enum after_connect after)
{
    t->icp->after = after;
    client_flow_stop(t->c);
    txn_resolve(t);
}

void intercept_connected(txn_t *t)
{
    intercept_t *icp = t->icp;
    enum after_connect after = icp ? icp->after : AFTER_NONE;

    if (icp)
        icp->after = AFTER_NONE;
    if (after == AFTER_SPLICE)
        tunnel_splice(t);
    else if (after == AFTER_HANDSHAKE)
        upstream_handshake(t);
    else
        txn_end(t);
}

/* A verified idle connection to the tunnel's site from the pool, in place
 * of a new handshake: returns 1 when one was taken (t->up), 0 when none,
 * -1 when a plugin blocked its address (t blocked, not ended). */
static int take_pooled(txn_t *t)
{
    intercept_t *icp = t->icp;
    char key[URL_HOST_MAX + 32];
    upstream_t *up;

    snprintf(key, sizeof(key), "https:%s:%u", icp->host, t->url.port);
    up = upool_take(t->w->upool, key);
    if (up == NULL)
        return 0;
    /* Judged like a reused connection of a plain request (txn_route). */
    t->upstream_addr = up->addr;
    t->has_upstream_addr = 1;
    if (hooks_run_sync(t, PC_HOOK_UPSTREAM_ADDR) == PC_BLOCK) {
        upstream_close(up);
        return -1;
    }
    if (t->up)
        upstream_close(t->up);  /* the connection made for the CONNECT */
    t->up = up;
    up->txn = t;
    upstream_timer(up, 0);
    snprintf(t->hier, sizeof(t->hier), "HIER_DIRECT/%s", up->addr_text);
    t->w->stats.upstream_reused++;
    return 1;
}

static void sni_hooks_done(txn_t *t, int verdict)
{
    const char *why;
    int rc;

    if (verdict == PC_BLOCK) {
        block_after_200(t);
        return;
    }
    if (!tls_intercept_decide(t->conf, &t->c->addr, t->sni, t->url.host, t->intercept_vote,
                              &why)) {
        log_debug(t->c->id, "tunnel to %s spliced (%s)", t->icp->host, why);
        txn_note(t, "tls", "spliced");
        if (t->up == NULL)
            connect_late(t, AFTER_SPLICE);
        else
            tunnel_splice(t);
        return;
    }
    /* The site was verified on an idle connection of the pool: no second
     * handshake is needed to know it (and that connection serves the
     * first request). */
    rc = take_pooled(t);
    if (rc < 0) {
        block_after_200(t);
        return;
    }
    if (rc > 0) {
        t->icp->mode = CTLS_PASS;
        mint(t, SSL_get0_peer_certificate(t->up->tls->ssl));
        return;
    }
    if (t->up == NULL)
        connect_late(t, AFTER_HANDSHAKE);
    else
        upstream_handshake(t);
}

static void hello_ready(txn_t *t)
{
    client_t *c = t->c;
    intercept_t *icp = t->icp;
    const char *sni = icp->hello.server_name[0] ? icp->hello.server_name : NULL;

    snprintf(icp->host, sizeof(icp->host), "%s", sni ? sni : t->url.host);
    if (sni) {
        free(t->sni);
        t->sni = strdup(sni);
        txn_note(t, "sni", sni);
    }
    /* The decision may wait for plugins; the set-up has deadlines of its
     * own from here on (defer, connect_timeout, the client handshake). */
    c->deadline = 0;
    client_timer_update(c);
    if (icp->blocked) {
        block_after_200(t);
        return;
    }
    /* Domain fronting: the CONNECT names one site, TLS another (an IP
     * authority or a hello without SNI has nothing to compare). */
    if (sni && !t->url.host_is_ip && strcmp(sni, t->url.host) != 0 &&
        !t->conf->sni_mismatch_allow) {
        char why[URL_HOST_MAX * 2 + 80];
        snprintf(why, sizeof(why), "TLS server name %s differs from the CONNECT host %s",
                 sni, t->url.host);
        log_warn(c->id, "CONNECT to %s from %s: %s (domain fronting); blocked "
                 "(sni_mismatch block)", t->target, c->addr_text, why);
        hooks_block(t, "core", why);
        free(t->block.category);
        t->block.category = strdup("domain-fronting");
        block_after_200(t);
        return;
    }
    /* Nothing moves while plugins decide. */
    client_flow_stop(c);
    if (t->up)
        upstream_read_stop(t->up);
    hooks_run(t, PC_HOOK_TLS_SNI, sni_hooks_done);
}

/* ---- minting and the client handshake ------------------------------------- */

static void established(txn_t *t);

static void client_handshake(txn_t *t, SSL_CTX *ctx)
{
    client_t *c = t->c;
    intercept_t *icp = t->icp;

    icp->client = tls_io_new(ctx, 1);
    if (icp->client == NULL) {
        log_crit(c->id, "out of memory starting TLS with client %s", c->addr_text);
        refuse(t, TLS_ALERT_HANDSHAKE_FAILURE);
        return;
    }
    /* One TLS 1.3 ticket per connection (OpenSSL sends two): each costs an
     * encrypted copy of the session, and a browser resumes with one. */
    SSL_set_num_tickets(icp->client->ssl, 1);
    c->deadline = uv_now(&t->w->loop) + t->conf->tls_peek_timeout;
    client_timer_update(c);
    client_flow_start(c);
    feed_client(t);
}

static void on_minted(void *arg, SSL_CTX *ctx, const char *err)
{
    txn_t *t = arg;

    t->icp->mreq = NULL;
    if (ctx == NULL) {
        log_error(t->c->id, "cannot make a certificate for %s: %s", t->icp->host, err);
        refuse(t, TLS_ALERT_HANDSHAKE_FAILURE);
        return;
    }
    client_handshake(t, ctx);
    SSL_CTX_free(ctx);
}

/* Gets the leaf for the tunnel's name; upstream (the verified origin
 * certificate, or NULL for a page of ours) bounds its notAfter. */
static void mint(txn_t *t, X509 *upstream)
{
    intercept_t *icp = t->icp;
    const tls_snap_t *ts = tls_snap_of(t->conf);
    SSL_CTX *ctx = NULL;
    char err[256];
    int rc;

    rc = mint_cache_get(t->w->mints, ts->ca, icp->host, upstream, &ctx, on_minted, t,
                        &icp->mreq, err, sizeof(err));
    if (rc == 1) {
        client_handshake(t, ctx);
        SSL_CTX_free(ctx);
        return;
    }
    if (rc == 0)
        return;
    log_error(t->c->id, "cannot make a certificate for %s: %s", icp->host, err);
    refuse(t, TLS_ALERT_HANDSHAKE_FAILURE);
}

static void block_after_200(txn_t *t)
{
    intercept_t *icp = t->icp;
    const char *why;

    icp->blocked = 1;
    if (!tls_intercept_decide(t->conf, &t->c->addr, t->sni, t->url.host, t->intercept_vote,
                              &why)) {
        log_info(t->c->id, "tunnel to %s blocked by %s; closed with a TLS alert (not "
                 "intercepted: %s), client: %s", icp->host,
                 t->block.plugin ? t->block.plugin : "core", why, t->c->addr_text);
        refuse(t, icp->have_hello ? TLS_ALERT_ACCESS_DENIED : 0);
        return;
    }
    /* The page is ours: no origin is asked, and nothing of one could ever
     * pass through this session. */
    icp->mode = CTLS_BLOCK;
    record_block(t);
    if (t->up) {
        upstream_close(t->up);
        t->up = NULL;
    }
    mint(t, NULL);
}

static void client_hs_step(txn_t *t)
{
    client_t *c = t->c;
    intercept_t *icp = t->icp;
    char why[200];
    int rc = tls_io_handshake(icp->client);

    if (rc == TLS_IO_ERROR)
        tls_io_error(why, sizeof(why));
    t->bytes_out += tls_io_pending(icp->client);
    if (outq_tls_flush(&c->out, icp->client) < 0) {
        txn_abort(t, "cannot write to the client");
        return;
    }
    if (rc == TLS_IO_WANT)
        return;
    if (rc == TLS_IO_ERROR) {
        /* Typically "tlsv1 alert unknown ca": the client does not trust
         * the local CA (docs/https.md says how to install it). */
        log_info(c->id, "TLS handshake with client %s for %s failed: %s", c->addr_text,
                 icp->host, why);
        txn_note(t, "tls", "client-handshake-failed");
        txn_end(t);
        return;
    }
    established(t);
}

/* The client handshake is done: the connection carries requests now. The
 * CONNECT is logged (TCP_TUNNEL, or TCP_DENIED for a blocked one, with the
 * note tls=intercepted|blocked|upstream-cert-error) and ends. */
static void established(txn_t *t)
{
    client_t *c = t->c;
    intercept_t *icp = t->icp;
    upstream_t *up = t->up;
    client_tls_t *ct = calloc(1, sizeof(*ct));
    static const char *const notes[] = {"intercepted", "blocked", "upstream-cert-error"};

    if (ct == NULL) {
        txn_abort(t, "out of memory");
        return;
    }
    ct->mode = icp->mode;
    ct->url = t->url;
    ct->url.scheme = URL_HTTPS;
    ct->url.path = "";
    ct->url.path_len = 0;
    if (t->sni) {
        snprintf(ct->url.host, sizeof(ct->url.host), "%s", t->sni);
        ct->url.host_is_ip = 0;
        ct->sni = strdup(t->sni);
    }
    if (ct->mode == CTLS_BLOCK) {
        ct->block_plugin = t->block.plugin;
        ct->block_status = t->block.status;
        ct->block_reason = t->block.reason ? strdup(t->block.reason) : NULL;
        ct->block_category = t->block.category ? strdup(t->block.category) : NULL;
    } else if (ct->mode == CTLS_CERT_ERROR) {
        ct->error = icp->error;
        icp->error = NULL;
    }
    client_tls_begin(c, icp->client, ct);
    icp->client = NULL;
    if (up) {
        /* The verified connection serves the first request (and later
         * ones of any client for this site) from the pool, under a key of
         * its own: "https:host:port". Not when the CONNECT went to another
         * name than the TLS one: requests then go where their name says. */
        t->up = NULL;
        if (ct->mode == CTLS_PASS && strcmp(ct->url.host, t->url.host) == 0) {
            snprintf(up->key, sizeof(up->key), "https:%s:%u", ct->url.host, ct->url.port);
            upool_put(t->w->upool, up);
        } else {
            upstream_close(up);
        }
    }
    txn_note(t, "tls", notes[ct->mode]);
    log_debug(c->id, "tunnel to %s intercepted (%s)", ct->url.host, notes[ct->mode]);
    c->deadline = 0;
    t->close_after = 0;
    txn_done(t, 1);
}

/* ---- the origin ---------------------------------------------------------- */

static void upstream_handshake(txn_t *t)
{
    intercept_t *icp = t->icp;
    const tls_snap_t *ts = tls_snap_of(t->conf);
    int is_ip = t->sni == NULL && t->url.host_is_ip;
    tls_io_t *io;

    /* The client's SNI goes upstream as it is; without one, the CONNECT
     * host (RFC 6066 section 3: never an address). The certificate must
     * name what the client will believe it reached: the SNI, else the
     * CONNECT host. */
    io = tls_upstream_session(ts, t->sni ? t->sni : (is_ip ? NULL : t->url.host), icp->host,
                              is_ip, t->url.port, t->w->tls_sessions);
    if (io == NULL) {
        log_crit(t->c->id, "out of memory starting TLS to %s", icp->host);
        refuse(t, TLS_ALERT_HANDSHAKE_FAILURE);
        return;
    }
    upstream_tls_start(t->up, io, t->conf->connect_timeout);
}

void intercept_upstream_done(txn_t *t, int status)
{
    intercept_t *icp = t->icp;
    upstream_t *up = t->up;
    const char *fail = up->tls_fail ? up->tls_fail : "TLS handshake failed";

    if (status == 0) {
        icp->mode = CTLS_PASS;
        mint(t, SSL_get0_peer_certificate(up->tls->ssl));
        return;
    }
    log_error(t->c->id, "upstream %s (%s:%u) failed TLS verification: %s, client: %s",
              icp->host, up->addr_text, up->port, fail, t->c->addr_text);
    txn_note(t, "tls_error", fail);
    if (t->conf->upstream_cert_refuse) {
        t->code = "TCP_MISS";
        t->status = 502;
        refuse(t, TLS_ALERT_HANDSHAKE_FAILURE);
        return;
    }
    /* The client gets our error page under a leaf of ours; the origin is
     * dropped before a byte of it could reach the client. */
    icp->mode = CTLS_CERT_ERROR;
    icp->error = strdup(fail);
    upstream_close(up);
    t->up = NULL;
    mint(t, NULL);
}

/* ---- requests inside ----------------------------------------------------- */

/* 1 when a Host value holds only what an authority may ("host[:port]"). */
static int authority_ok(const char *v, size_t len)
{
    if (len == 0)
        return 0;
    for (size_t i = 0; i < len; i++)
        if (v[i] == '/' || v[i] == '?' || v[i] == '#' || v[i] == '@' || v[i] == '\\' ||
            (unsigned char)v[i] <= ' ' || (unsigned char)v[i] >= 0x7f)
            return 0;
    return 1;
}

int intercept_request_target(txn_t *t)
{
    client_t *c = t->c;
    client_tls_t *ct = c->tlsc;
    const char *why = NULL, *host;
    char auth[URL_HOST_MAX + 16], msg[URL_HOST_MAX * 2 + 160];
    size_t hlen = 0;
    strbuf_t s;
    url_t u;
    /* An answer before the body was read ends the connection. */
    int unread = t->req_body != BODY_NONE && !t->req_done;

    if (t->method == HTTP_CONNECT) {
        t->close_after = 1;
        txn_respond_error(t, 400, "TAG_NONE", "ERR_UNSUP_REQ",
                          "CONNECT inside an intercepted TLS connection.");
        return -1;
    }
    /* RFC 9112 3.2: origin-form takes its authority from Host (the
     * tunnel's when an HTTP/1.0 request has none); absolute-form carries
     * its own and Host is ignored. */
    strbuf_init(&s);
    if (t->target[0] == '/') {
        host = http_msg_get(&t->req, "Host", &hlen);
        strbuf_adds(&s, "https://");
        if (host) {
            if (!authority_ok(host, hlen)) {
                strbuf_free(&s);
                txn_bad_request(c, t, 400, "invalid Host header");
                return -1;
            }
            strbuf_add(&s, host, hlen);
        } else {
            url_format_authority(&ct->url, 0, auth, sizeof(auth));
            strbuf_adds(&s, auth);
        }
        strbuf_add(&s, t->target, t->target_len);
    } else if (t->target_len > 8 && strncasecmp(t->target, "https://", 8) == 0) {
        strbuf_add(&s, t->target, t->target_len);
    } else {
        strbuf_free(&s);
        txn_bad_request(c, t, 400, "request target is not for an https site");
        return -1;
    }
    if (s.failed) {
        strbuf_free(&s);
        t->close_after |= unread;
        txn_respond_error(t, 500, "TAG_NONE", "ERR_INVALID_REQ", "Out of memory.");
        return -1;
    }
    free(t->target);
    t->target = s.p;
    t->target_len = s.len;
    if (url_parse_absolute(t->target, t->target_len, &u, &why) < 0) {
        log_info(c->id, "invalid URL inside the TLS connection of %s: %s", ct->url.host, why);
        t->close_after |= unread;
        txn_respond_error(t, 400, "TAG_NONE", "ERR_INVALID_URL", NULL);
        return -1;
    }
    t->url = u;
    /* RFC 9110 7.4 and 15.5.20: a request for another site than the one
     * the TLS session was made for is misdirected. It is also how domain
     * fronting looks from inside, so sni_mismatch decides. */
    if (strcmp(u.host, ct->url.host) != 0 || u.port != ct->url.port) {
        if (!t->conf->sni_mismatch_allow) {
            snprintf(msg, sizeof(msg), "This secure connection is for %s; it cannot carry a "
                     "request for %s.", ct->url.host, u.host);
            log_warn(c->id, "request for %s inside the TLS connection of %s, client: %s; "
                     "refused with 421 (sni_mismatch block)", u.host, ct->url.host,
                     c->addr_text);
            t->close_after |= unread;
            txn_respond_error(t, 421, "TCP_DENIED", "ERR_MISDIRECTED", msg);
            return -1;
        }
        log_info(c->id, "request for %s inside the TLS connection of %s, client: %s "
                 "(sni_mismatch allow)", u.host, ct->url.host, c->addr_text);
    }
    switch (ct->mode) {
    case CTLS_PASS:
        return 0;
    case CTLS_BLOCK:
        t->blocked = 1;
        t->block.plugin = ct->block_plugin;
        t->block.status = ct->block_status;
        t->block.reason = ct->block_reason ? strdup(ct->block_reason) : NULL;
        t->block.category = ct->block_category ? strdup(ct->block_category) : NULL;
        t->close_after |= unread;
        txn_respond_block(t);
        return -1;
    case CTLS_CERT_ERROR:
        snprintf(msg, sizeof(msg), "The certificate of %s could not be verified: %s.",
                 ct->url.host, ct->error ? ct->error : "TLS handshake failed");
        t->close_after |= unread;
        txn_respond_error(t, 502, "TCP_MISS", "ERR_UPSTREAM_CERT", msg);
        return -1;
    }
    return 0;
}
