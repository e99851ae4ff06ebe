/* worker.c - one event loop and everything it owns: listeners, connections, caches. */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "accesslog.h"
#include "client.h"
#include "hooks.h"
#include "log.h"
#include "mint.h"
#include "server.h"
#include "splice.h"
#include "tls_policy.h"
#include "tls_session.h"
#include "upstream.h"
#include "worker.h"

/* A listening socket of this worker (its own member of the address's
 * SO_REUSEPORT group, server.c). The worker accepts on it itself rather
 * than through uv_listen(): libuv retries accept() at once when it fails
 * with EMFILE and its reserve descriptor is gone (which other threads of
 * the process can take from it), spinning the loop until a descriptor
 * frees up, and no descriptor of that loop ever does. */
typedef struct worker_listener {
    uv_poll_t poll;
    struct worker_listener *next;
    worker_t *w;
    int fd;
    int closing;
} worker_listener_t;

/* Connections taken per readiness event: a burst of new connections
 * cannot keep the loop from the ones it has. */
#define ACCEPT_BATCH 64
/* How long a worker stops accepting when it is out of descriptors (or of
 * memory), so that the connections it has can finish and free some. */
#define ACCEPT_PAUSE_MS 100

static _Thread_local worker_t *current_worker;

worker_t *worker_current(void)
{
    return current_worker;
}

static void on_listener_close(uv_handle_t *h)
{
    worker_listener_t *l = h->data;

    close(l->fd);
    free(l);
}

static void listener_close(worker_listener_t *l)
{
    l->closing = 1;
    uv_close((uv_handle_t *)&l->poll, on_listener_close);
}

static void on_accept_ready(uv_poll_t *poll, int status, int events);

static void listeners_poll(worker_t *w, int on)
{
    for (worker_listener_t *l = w->listeners; l; l = l->next) {
        if (on)
            uv_poll_start(&l->poll, UV_READABLE, on_accept_ready);
        else
            uv_poll_stop(&l->poll);
    }
}

static void on_accept_timer(uv_timer_t *timer)
{
    worker_t *w = timer->data;

    w->accept_paused = 0;
    if (w->reserve_fd < 0)
        w->reserve_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
    if (!w->draining)
        listeners_poll(w, 1);
}

/* Out of descriptors: the reserve one, given up for a moment, lets the
 * worker take the connections waiting in its queue and refuse them with a
 * short 503 and a close (rather than leave them hanging); then it stops
 * accepting for ACCEPT_PAUSE_MS. Another thread may take the freed
 * descriptor first: then nothing is refused now, and the pause still
 * bounds how often this runs. */
static void accept_shed(worker_listener_t *l, int err)
{
    static const char resp[] =
        "HTTP/1.1 503 Service Unavailable\r\n"
        "Content-Type: text/plain\r\n"
        "Content-Length: 38\r\n"
        "Connection: close\r\n"
        "\r\n"
        "Too many connections; try again soon.\n";
    worker_t *w = l->w;
    char buf[4096];
    int n = 0;

    if ((err == EMFILE || err == ENFILE) && w->reserve_fd >= 0) {
        close(w->reserve_fd);
        w->reserve_fd = -1;
        while (n < ACCEPT_BATCH) {
            int fd = accept4(l->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
            if (fd < 0)
                break;
            /* What the client sent is read first: unread input would turn
             * the close into a reset that destroys the answer. */
            (void)!recv(fd, buf, sizeof(buf), 0);
            (void)!send(fd, resp, sizeof(resp) - 1, MSG_NOSIGNAL);
            close(fd);
            n++;
        }
        w->reserve_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
    }
    w->stats.refused += (uint64_t)n;
    server_log_refusal(w->srv, "-", err == EMFILE || err == ENFILE
                                        ? "the open file limit (RLIMIT_NOFILE)"
                                        : strerror(err));
    w->accept_paused = 1;
    listeners_poll(w, 0);
    uv_timer_start(&w->accept_timer, on_accept_timer, ACCEPT_PAUSE_MS, 0);
}

static void on_accept_ready(uv_poll_t *poll, int status, int events)
{
    worker_listener_t *l = poll->data;
    worker_t *w = l->w;

    (void)events;
    if (status < 0 || l->closing || w->draining)
        return;
    for (int i = 0; i < ACCEPT_BATCH && !l->closing && !w->accept_paused; i++) {
        int fd = accept4(l->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd >= 0) {
            client_accept(w, fd);
            continue;
        }
        switch (errno) {
        case EAGAIN:
#if EAGAIN != EWOULDBLOCK
        case EWOULDBLOCK:
#endif
            return;
        case EINTR:
        case ECONNABORTED:
        case EPROTO:
        case EPERM:        /* a firewall rule refused it */
            continue;
        case EMFILE:
        case ENFILE:
        case ENOBUFS:
        case ENOMEM:
            accept_shed(l, errno);
            return;
        default:
            log_error(0, "accept() on a listening socket failed: %s", strerror(errno));
            return;
        }
    }
}

/* Makes the worker's listeners match fds: keeps those it has, opens new
 * ones, closes the ones no longer wanted. Returns 0 or -1. */
static int worker_set_listeners(worker_t *w, const int *fds, int nfds)
{
    worker_listener_t **pp = &w->listeners;
    int rc = 0;

    while (*pp) {
        worker_listener_t *l = *pp;
        int keep = 0;
        for (int i = 0; i < nfds && !keep; i++)
            keep = fds[i] == l->fd;
        if (!keep) {
            *pp = l->next;
            listener_close(l);
        } else {
            pp = &l->next;
        }
    }
    for (int i = 0; i < nfds; i++) {
        worker_listener_t *l;
        int have = 0;
        for (l = w->listeners; l && !have; l = l->next)
            have = l->fd == fds[i];
        if (have)
            continue;
        l = calloc(1, sizeof(*l));
        if (l == NULL) {
            rc = -1;
            continue;
        }
        l->w = w;
        l->fd = fds[i];
        if (uv_poll_init_socket(&w->loop, &l->poll, fds[i]) < 0) {
            log_error(0, "cannot listen on descriptor %d", fds[i]);
            close(fds[i]);
            free(l);
            rc = -1;
            continue;
        }
        l->poll.data = l;
        if (!w->accept_paused)
            uv_poll_start(&l->poll, UV_READABLE, on_accept_ready);
        l->next = w->listeners;
        w->listeners = l;
    }
    return rc;
}

static void worker_shutdown(worker_t *w)
{
    if (w->shut)
        return;
    w->shut = 1;
    while (w->listeners) {
        worker_listener_t *l = w->listeners;
        w->listeners = l->next;
        listener_close(l);
    }
    upool_free(w->upool);
    w->upool = NULL;
    dns_cache_close(w->dns);
    w->dns = NULL;
    accesslog_close(w->alog);
    w->alog = NULL;
    /* Mints still running on the pool keep the loop alive until done. */
    mint_cache_free(w->mints);
    w->mints = NULL;
    uv_close((uv_handle_t *)&w->drain_timer, NULL);
    uv_close((uv_handle_t *)&w->accept_timer, NULL);
    if (w->reserve_fd >= 0)
        close(w->reserve_fd);
    w->reserve_fd = -1;
    /* Under the queue lock, so worker_post() never signals a closed
     * handle; later messages are dropped. */
    pthread_mutex_lock(&w->mq_lock);
    w->mq_closed = 1;
    uv_close((uv_handle_t *)&w->async, NULL);
    pthread_mutex_unlock(&w->mq_lock);
}

void worker_client_gone(worker_t *w)
{
    if (w->draining && w->nclients == 0 && list_empty(&w->clients))
        worker_shutdown(w);
}

static void on_drain_timer(uv_timer_t *timer)
{
    worker_t *w = timer->data;
    unsigned n = w->nclients;

    if (n)
        log_notice(0, "drain timeout: closing %u connections still open", n);
    while (!list_empty(&w->clients)) {
        client_t *c = LIST_ENTRY(w->clients.next, client_t, link);
        client_close(c);
    }
    worker_client_gone(w);
}

static void worker_begin_drain(worker_t *w, int force)
{
    list_t *n, *next;

    if (!w->draining) {
        w->draining = 1;
        while (w->listeners) {
            worker_listener_t *l = w->listeners;
            w->listeners = l->next;
            listener_close(l);
        }
        /* Idle pooled upstreams are of no more use. */
        if (w->upool) {
            upool_free(w->upool);
            w->upool = upool_new(w);
        }
        uv_timer_start(&w->drain_timer, on_drain_timer,
                       force ? 1 : w->conf->drain_timeout, 0);
    } else if (force) {
        uv_timer_start(&w->drain_timer, on_drain_timer, 1, 0);
    }
    for (n = w->clients.next; n != &w->clients; n = next) {
        next = n->next;
        client_drain(LIST_ENTRY(n, client_t, link));
    }
    worker_client_gone(w);
}

static void worker_apply_conf(worker_t *w, worker_msg_t *m)
{
    const tls_snap_t *ts_old = tls_snap_of(w->conf), *ts_new = tls_snap_of(m->conf);
    const tls_ca_t *ca_old = ts_old ? ts_old->ca : NULL, *ca_new = ts_new ? ts_new->ca : NULL;

    /* A new CA (another fingerprint) or none: leaves of the old one are of
     * no more use. Connections keep the SSL_CTX they hold. */
    if (w->mints && ca_old &&
        (ca_new == NULL || strcmp(tls_ca_fingerprint(ca_old), tls_ca_fingerprint(ca_new)) != 0))
        mint_cache_purge(w->mints, ca_new);
    /* Sessions were verified against the old trust store. */
    tls_sess_cache_clear(w->tls_sessions);
    conf_unref(w->conf);
    w->conf = m->conf;
    m->conf = NULL;
    if (w->dns)
        dns_cache_set_ttl(w->dns, w->conf->dns_ttl, w->conf->dns_negative_ttl);
    if (m->alog_files) {
        accesslog_t *old = w->alog;
        w->alog = accesslog_new(&w->loop, m->alog_files);
        if (w->alog == NULL) {
            log_crit(0, "out of memory switching access logs; keeping the old ones");
            w->alog = old;
        } else {
            accesslog_close(old);
        }
        accesslog_files_unref(m->alog_files);
        m->alog_files = NULL;
    }
    if (!w->draining && m->fds)
        worker_set_listeners(w, m->fds, m->nfds);
}

static void on_async(uv_async_t *async)
{
    worker_t *w = async->data;
    worker_msg_t *m;

    pthread_mutex_lock(&w->mq_lock);
    m = w->mq_head;
    w->mq_head = w->mq_tail = NULL;
    pthread_mutex_unlock(&w->mq_lock);
    while (m) {
        worker_msg_t *next = m->next;
        switch (m->kind) {
        case WMSG_CONF:
            worker_apply_conf(w, m);
            break;
        case WMSG_STOP:
            worker_begin_drain(w, 0);
            break;
        case WMSG_FORCE_STOP:
            worker_begin_drain(w, 1);
            break;
        case WMSG_FUNC:
            m->fn(w, m->arg);
            break;
        }
        if (m->conf)
            conf_unref(m->conf);
        if (m->alog_files)
            accesslog_files_unref(m->alog_files);
        free(m->fds);
        free(m);
        m = next;
    }
}

int worker_post(worker_t *w, worker_msg_t *msg)
{
    msg->next = NULL;
    pthread_mutex_lock(&w->mq_lock);
    if (w->mq_closed) {
        pthread_mutex_unlock(&w->mq_lock);
        if (msg->kind == WMSG_FUNC && msg->free_arg)
            msg->free_arg(msg->arg);
        if (msg->conf)
            conf_unref(msg->conf);
        if (msg->alog_files)
            accesslog_files_unref(msg->alog_files);
        free(msg->fds);
        free(msg);
        return -1;
    }
    if (w->mq_tail)
        w->mq_tail->next = msg;
    else
        w->mq_head = msg;
    w->mq_tail = msg;
    uv_async_send(&w->async);
    pthread_mutex_unlock(&w->mq_lock);
    return 0;
}

int worker_init(worker_t *w, server_t *srv, int id, conf_t *conf,
                const int *fds, int nfds)
{
    memset(w, 0, sizeof(*w));
    w->id = id;
    w->srv = srv;
    if (uv_loop_init(&w->loop) < 0)
        return -1;
    w->loop.data = w;
    w->pcloop.uv = &w->loop;
    w->pcloop.w = w;
    pthread_mutex_init(&w->mq_lock, NULL);
    uv_async_init(&w->loop, &w->async, on_async);
    w->async.data = w;
    uv_timer_init(&w->loop, &w->drain_timer);
    w->drain_timer.data = w;
    uv_timer_init(&w->loop, &w->accept_timer);
    w->accept_timer.data = w;
    w->reserve_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
    w->conf = conf_ref(conf);
    list_init(&w->clients);
    list_init(&w->idle_clients);
    iobuf_pool_init(&w->bufs, 128);
    w->dns = dns_cache_new(&w->loop, 4096);
    w->upool = upool_new(w);
    w->alog = accesslog_new(&w->loop, srv->alog_files);
    w->mints = mint_cache_new(&w->loop, 0);
    w->tls_sessions = tls_sess_cache_new(0);
    w->tls_scratch = malloc(IOBUF_SIZE);
    if (w->dns == NULL || w->upool == NULL || w->alog == NULL || w->mints == NULL ||
        w->tls_sessions == NULL || w->tls_scratch == NULL)
        return -1;
    dns_cache_set_ttl(w->dns, conf->dns_ttl, conf->dns_negative_ttl);
    return worker_set_listeners(w, fds, nfds);
}

static void *worker_main(void *arg)
{
    worker_t *w = arg;

    current_worker = w;
    log_set_worker(w->id);
    uv_run(&w->loop, UV_RUN_DEFAULT);
    /* Everything is closed; run once more for close callbacks. */
    uv_run(&w->loop, UV_RUN_NOWAIT);
    if (uv_loop_close(&w->loop) < 0)
        log_alert(0, "worker %d exited with handles still open", w->id);
    /* Messages that came after the queue closed are dropped with it. */
    while (w->mq_head) {
        worker_msg_t *m = w->mq_head;
        w->mq_head = m->next;
        if (m->kind == WMSG_FUNC && m->free_arg)
            m->free_arg(m->arg);
        conf_unref(m->conf);
        if (m->alog_files)
            accesslog_files_unref(m->alog_files);
        free(m->fds);
        free(m);
    }
    hooks_worker_free(w);
    iobuf_pool_drain(&w->bufs);
    splice_worker_free(w);
    free(w->tls_scratch);
    w->tls_scratch = NULL;
    tls_sess_cache_free(w->tls_sessions);
    w->tls_sessions = NULL;
    conf_unref(w->conf);
    w->conf = NULL;
    atomic_fetch_sub(&w->srv->workers_running, 1);
    uv_async_send(&w->srv->worker_exit);
    return NULL;
}

int worker_start(worker_t *w)
{
    atomic_fetch_add(&w->srv->workers_running, 1);
    if (pthread_create(&w->thread, NULL, worker_main, w) != 0) {
        atomic_fetch_sub(&w->srv->workers_running, 1);
        return -1;
    }
    return 0;
}

void worker_join(worker_t *w)
{
    pthread_join(w->thread, NULL);
}

void worker_free(worker_t *w)
{
    pthread_mutex_destroy(&w->mq_lock);
}
