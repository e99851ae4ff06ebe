/* tunnel.c - CONNECT: checks, connecting, and the spliced byte tunnel. */
#include <stdlib.h>

#include "hooks.h"
#include "intercept.h"
#include "log.h"
#include "splice.h"
#include "tunnel.h"
#include "txn.h"

static int port_allowed(const conf_t *conf, uint16_t port)
{
    for (int i = 0; i < conf->nconnect_ports; i++)
        if (port >= conf->connect_ports[i].lo && port <= conf->connect_ports[i].hi)
            return 1;
    return 0;
}

static void connect_hooks_done(txn_t *t, int verdict);

void tunnel_start(txn_t *t)
{
    /* Whatever the answer, the connection ends with this request: bytes
     * behind a CONNECT belong to the tunnel the client expected (a TLS
     * ClientHello), never to a next HTTP request. */
    t->close_after = 1;
    if (!port_allowed(t->conf, t->url.port)) {
        log_warn(t->c->id, "CONNECT to %s denied: port %u is not in connect_ports, "
                 "client: %s", t->target, t->url.port, t->c->addr_text);
        t->w->stats.denied++;
        txn_respond_error(t, 403, "TCP_DENIED", "ERR_CONNECT_PORT", NULL);
        return;
    }
    hooks_run(t, PC_HOOK_CONNECT, connect_hooks_done);
}

static void connect_hooks_done(txn_t *t, int verdict)
{
    if (verdict == PC_BLOCK) {
        /* A client that may be intercepted sees the block page inside
         * TLS, as a browser shows nothing of a refused CONNECT. */
        if (intercept_block_connect(t) == 0)
            return;
        txn_respond_block(t);
        return;
    }
    /* A verified idle connection to the site: no new one before the 200. */
    if (intercept_pool_shortcut(t) == 0)
        return;
    txn_resolve(t);
}

int tunnel_established(txn_t *t)
{
    static const char established[] = "HTTP/1.1 200 Connection established\r\n\r\n";
    client_t *c = t->c;

    if (outq_copy(&c->out, established, sizeof(established) - 1) < 0) {
        txn_abort(t, "cannot write to the client");
        return -1;
    }
    t->bytes_out += sizeof(established) - 1;
    t->status = 200;
    t->code = "TCP_TUNNEL";
    t->head_sent = 1;
    c->last_activity = uv_now(&t->w->loop);
    return 0;
}

void tunnel_connected(txn_t *t, int status)
{
    if (status < 0) {
        /* Same path as a plain request: try the next address or fail
         * (t may be gone afterwards). */
        txn_connect_failed(t, status);
        return;
    }
    t->w->stats.upstream_new++;
    if (t->c->state == CL_PEEK) {
        /* Connected after the 200 (intercept_pool_shortcut). */
        upstream_timer(t->up, 0);
        intercept_connected(t);
        return;
    }
    t->w->stats.tunnels++;
    upstream_timer(t->up, 0);
    if (tunnel_established(t) < 0)
        return;
    /* Nothing is forwarded before the client's first bytes were seen:
     * the ClientHello decides (intercept.c). */
    intercept_peek_start(t);
}

static void tunnel_zc_try(txn_t *t);

void tunnel_splice(txn_t *t)
{
    tunnel_splice_with(t, NULL, NULL, 0);
}

void tunnel_splice_with(txn_t *t, iobuf_t *ub, const char *up_p, size_t up_len)
{
    client_t *c = t->c;
    upstream_t *up = t->up;

    /* No relay may start before the first bytes of both sides are queued,
     * or spliced bytes would overtake them. */
    t->tun_starting = 1;
    c->state = CL_TUNNEL;
    c->last_activity = uv_now(&t->w->loop);
    /* What the client sent so far (the ClientHello, typically) goes
     * first, unchanged. */
    if (c->in && c->in_off < c->in_len) {
        iobuf_t *b = iobuf_ref(c->in);
        const char *p = c->in->data + c->in_off;
        size_t n = c->in_len - c->in_off;
        c->in_off = c->in_len;
        tunnel_client_data(t, b, p, n);
        iobuf_unref(b);
        if (t->ended)
            return;
    }
    if (ub) {
        tunnel_upstream_data(t, ub, up_p, up_len);
        if (t->ended || c->state != CL_TUNNEL)
            return;
    }
    t->tun_starting = 0;
    upstream_read_start(up);
    client_flow_start(c);
    client_timer_update(c);
    tunnel_zc_try(t);
}

/* ---- the splice relays -------------------------------------------------- */

static void tun_read_ctl(splice_dir_t *d, int on)
{
    txn_t *t = d->data;

    if (d == t->spl[0]) {
        if (on)
            client_flow_start(t->c);
        else
            client_flow_stop(t->c);
    } else if (on) {
        t->up->flow_stopped = 0;
        upstream_read_start(t->up);
    } else {
        t->up->flow_stopped = 1;
        upstream_read_stop(t->up);
    }
}

static void tun_progress(splice_dir_t *d, int dir, size_t n)
{
    txn_t *t = d->data;

    /* Any movement keeps the tunnel from idling out, as with copies; the
     * client's timer finds the new deadline when it fires. */
    t->c->last_activity = uv_now(&t->w->loop);
    if (d == t->spl[0] && dir == 0)
        t->bytes_in += n;
    else if (d == t->spl[1] && dir == 1)
        t->bytes_out += n;
}

static void tunnel_close(txn_t *t, const char *why);

static void tun_done(splice_dir_t *d, int status)
{
    txn_t *t = d->data;
    int from_client = d == t->spl[0];
    splice_dir_t *other = t->spl[from_client ? 1 : 0];

    if (status == UV_ENOSYS && other->held == 0) {
        /* splice(2) refused these sockets before a byte moved: copy as
         * before, for this tunnel and (splice_usable) the worker. */
        txn_splice_stop(t);
        t->spl_failed = 1;
        upstream_read_start(t->up);
        client_flow_start(t->c);
        return;
    }
    if (status == UV_EOF) {
        /* The pipe is empty: the half-close goes on to the other side. */
        if (from_client)
            tunnel_client_eof(t, UV_EOF);
        else
            tunnel_upstream_eof(t, UV_EOF);
        return;
    }
    tunnel_close(t, uv_strerror(status));
}

static const splice_ops_t tun_splice_ops = {tun_read_ctl, tun_progress, tun_done};

/* Switches the tunnel to splice relays once nothing waits in an output
 * queue (so no byte overtakes another) and no side has ended yet. */
static void tunnel_zc_try(txn_t *t)
{
    client_t *c = t->c;
    upstream_t *up = t->up;
    worker_t *w = t->w;

    if (t->spl[0] || t->spl_failed || t->tun_starting || t->ended || !t->conf->splice ||
        !splice_usable(w) || up == NULL || c->state != CL_TUNNEL || c->closing ||
        c->tls || up->tls || t->tun_client_eof || t->tun_upstream_eof ||
        c->out.pending || up->out.pending || c->out.corked || up->out.corked ||
        c->tcp.write_queue_size || up->tcp.write_queue_size ||
        (c->in && c->in_off < c->in_len))
        return;
    t->spl[0] = splice_dir_start(w, &c->tcp, &up->tcp, UINT64_MAX, &tun_splice_ops, t);
    t->spl[1] = splice_dir_start(w, &up->tcp, &c->tcp, UINT64_MAX, &tun_splice_ops, t);
    if (t->spl[0] == NULL || t->spl[1] == NULL) {
        txn_splice_stop(t);
        t->spl_failed = 1;
        return;
    }
    c->splice_rx = t->spl[0];
    up->splice_rx = t->spl[1];
    txn_hold(t);
    splice_readable(t->spl[0]);
    if (!t->ended && t->spl[1])
        splice_readable(t->spl[1]);
    txn_release(t);
}

/* A tunnel that was established ends as TCP_TUNNEL whatever closed it: TLS
 * peers often end with a reset, which is no error of the client's. */
static void tunnel_close(txn_t *t, const char *why)
{
    if (why)
        log_info(t->c->id, "tunnel to %s closed: %s", t->target, why);
    txn_end(t);
}

/* Ends the tunnel once both sides said EOF and everything was written. */
static void tunnel_maybe_finish(txn_t *t)
{
    if (t->tun_client_eof && t->tun_upstream_eof && t->c->out.pending == 0 &&
        (t->up == NULL || t->up->out.pending == 0))
        txn_end(t);
}

void tunnel_client_data(txn_t *t, iobuf_t *b, const char *p, size_t len)
{
    upstream_t *up = t->up;

    t->bytes_in += len;
    t->c->last_activity = uv_now(&t->w->loop);
    if (up == NULL || outq_slice(&up->out, b, p, len, 0) < 0) {
        tunnel_close(t, "write to upstream failed");
        return;
    }
    if (up->out.pending > OUTQ_HIGH)
        client_flow_stop(t->c);
}

void tunnel_upstream_data(txn_t *t, iobuf_t *b, const char *p, size_t len)
{
    client_t *c = t->c;
    upstream_t *up = t->up;

    if (c->state == CL_PEEK) {
        intercept_upstream_data(t, b, p, len);
        return;
    }
    c->last_activity = uv_now(&t->w->loop);
    if (outq_slice(&c->out, b, p, len, 0) < 0) {
        tunnel_close(t, "write to client failed");
        return;
    }
    t->bytes_out += len;
    if (c->out.pending > OUTQ_HIGH) {
        up->flow_stopped = 1;
        upstream_read_stop(up);
    }
}

static void on_shutdown(uv_shutdown_t *req, int status)
{
    (void)status;
    free(req);
}

/* Half-close: pass the EOF on after the queued bytes (RFC 9110 9.3.6). */
static int shutdown_stream(uv_stream_t *s)
{
    uv_shutdown_t *req = malloc(sizeof(*req));

    if (req == NULL)
        return -1;
    if (uv_shutdown(req, s, on_shutdown) < 0) {
        free(req);
        return -1;
    }
    return 0;
}

void tunnel_client_eof(txn_t *t, int status)
{
    client_t *c = t->c;

    if (status != UV_EOF) {
        tunnel_close(t, uv_strerror(status));
        return;
    }
    t->tun_client_eof = 1;
    if (c->reading) {
        uv_read_stop((uv_stream_t *)&c->tcp);
        c->reading = 0;
    }
    c->flow_stopped = 1;
    if (t->up == NULL || shutdown_stream((uv_stream_t *)&t->up->tcp) < 0) {
        tunnel_close(t, "cannot half-close the upstream");
        return;
    }
    tunnel_maybe_finish(t);
}

void tunnel_upstream_eof(txn_t *t, int status)
{
    if (t->c->state == CL_PEEK) {
        intercept_upstream_eof(t, status);
        return;
    }
    if (status != UV_EOF) {
        tunnel_close(t, uv_strerror(status));
        return;
    }
    t->tun_upstream_eof = 1;
    upstream_read_stop(t->up);
    t->up->flow_stopped = 1;
    if (shutdown_stream((uv_stream_t *)&t->c->tcp) < 0) {
        tunnel_close(t, "cannot half-close the client");
        return;
    }
    tunnel_maybe_finish(t);
}

void tunnel_client_drained(txn_t *t)
{
    if (t->up && t->up->flow_stopped && !t->tun_upstream_eof) {
        t->up->flow_stopped = 0;
        upstream_read_start(t->up);
    }
    txn_hold(t);
    tunnel_maybe_finish(t);
    if (!t->ended)
        tunnel_zc_try(t);
    txn_release(t);
}

void tunnel_upstream_drained(txn_t *t)
{
    if (t->c->flow_stopped && !t->tun_client_eof)
        client_flow_start(t->c);
    txn_hold(t);
    tunnel_maybe_finish(t);
    if (!t->ended)
        tunnel_zc_try(t);
    txn_release(t);
}

void tunnel_timeout(txn_t *t)
{
    if (t->c->state == CL_PEEK) {
        intercept_timeout(t);
        return;
    }
    log_info(t->c->id, "tunnel to %s idle for %llu ms, closing", t->target,
             (unsigned long long)t->conf->tunnel_idle_timeout);
    tunnel_close(t, NULL);
}
