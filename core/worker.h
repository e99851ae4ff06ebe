/* worker.h - one event loop and everything it owns: listeners, connections, caches. */
#ifndef PC_WORKER_H
#define PC_WORKER_H

#include <pthread.h>
#include <stdint.h>
#include <uv.h>

#include "conf.h"
#include "dns.h"
#include "iobuf.h"
#include "list.h"

struct server;
struct accesslog;
struct upool;

/* A loop as plugins see it (pc_loop_t): the main loop has w NULL. */
struct pc_loop {
    uv_loop_t *uv;
    struct worker *w;
};

/* Counters kept by one worker; summed for the stats output. */
/* Written by the worker only, read by the main thread for `ctl stats`:
 * atomics keep that read well-defined. */
typedef struct worker_stats {
    _Atomic uint64_t connections;      /* accepted */
    _Atomic uint64_t refused;          /* over a limit or not allowed */
    _Atomic uint64_t requests;
    _Atomic uint64_t denied;
    _Atomic uint64_t errors;           /* 4xx/5xx made by the proxy */
    _Atomic uint64_t tunnels;
    _Atomic uint64_t bytes_in, bytes_out;
    _Atomic uint64_t upstream_new, upstream_reused;
} worker_stats_t;

/*
 * A worker runs one libuv loop on its own thread. Everything on the data
 * path lives here (no process-global mutable state): connections, the DNS
 * cache, the idle upstream pool, buffers, the access-log buffers. The main
 * thread talks to it only through worker_post() (a locked queue and a
 * uv_async), e.g. to hand over a new configuration snapshot or to stop.
 */
typedef struct worker {
    int id;                     /* 1.. */
    struct server *srv;
    uv_loop_t loop;
    struct pc_loop pcloop;
    pthread_t thread;
    uv_async_t async;
    pthread_mutex_t mq_lock;
    struct worker_msg *mq_head, *mq_tail;
    int mq_closed;              /* the async handle is closed */

    conf_t *conf;               /* current snapshot; transactions take refs */
    struct worker_listener *listeners;  /* list of bound sockets */
    uv_timer_t accept_timer;    /* ends a pause in accepting (worker.c) */
    int accept_paused;          /* out of descriptors: not accepting now */
    int reserve_fd;             /* given up to refuse connections cleanly
                                 * when out of descriptors, or -1 */
    int draining;               /* stop requested: finish in-flight work */
    int shut;                   /* every handle is closing */
    uv_timer_t drain_timer;

    list_t clients;             /* client_t, all */
    list_t idle_clients;        /* client_t waiting for their next request */
    unsigned nclients;
    dns_cache_t *dns;
    struct upool *upool;
    iobuf_pool_t bufs;
    struct accesslog *alog;
    struct defer_table *defers;  /* deferral tokens (hooks.c) */
    struct mint_cache *mints;   /* leaf certificates minted for interception */
    struct tls_sess_cache *tls_sessions;  /* resumable sessions to origins */
    char *tls_scratch;          /* IOBUF_SIZE: where TLS connections read
                                 * ciphertext before it goes into OpenSSL */
    worker_stats_t stats;
    /* Empty pipes for splice relays (splice.c), and whether splice(2)
     * turned out unusable here (then every relay copies). */
    struct {
        int fd[2];
        size_t cap;
    } splice_pipes[16];
    int nsplice_pipes;
    int splice_broken;
} worker_t;

enum worker_msg_kind { WMSG_CONF, WMSG_STOP, WMSG_FORCE_STOP, WMSG_FUNC };

typedef struct worker_msg {
    struct worker_msg *next;
    enum worker_msg_kind kind;
    conf_t *conf;                /* WMSG_CONF: reference passed over */
    int *fds;                    /* WMSG_CONF: the listener fds to have */
    int nfds;
    struct accesslog_files *alog_files;  /* WMSG_CONF: reference passed over */
    void (*fn)(worker_t *w, void *arg);  /* WMSG_FUNC */
    void *arg;
    void (*free_arg)(void *arg); /* WMSG_FUNC: frees arg if fn never runs */
} worker_msg_t;

/* Creates the worker's loop and state; fds are bound listening sockets it
 * takes over. Returns 0 or -1. */
int worker_init(worker_t *w, struct server *srv, int id, conf_t *conf,
                const int *fds, int nfds);
int worker_start(worker_t *w);
/* Queues msg (owned by the worker afterwards). Thread-safe. Returns 0, or
 * -1 when the worker has closed its queue (msg was freed, unrun). */
int worker_post(worker_t *w, worker_msg_t *msg);
/* Waits for the worker's thread to end. Its queue stays usable (messages
 * posted now are dropped) until worker_free(). */
void worker_join(worker_t *w);
void worker_free(worker_t *w);

/* The worker running on the calling thread, or NULL on the main thread. */
worker_t *worker_current(void);
/* Called by a client connection when it is gone, so a draining worker can
 * tell when it is done. */
void worker_client_gone(worker_t *w);

#endif
