/* server.h - the process: listeners, workers, signals, reload and graceful stop. */
#ifndef PC_SERVER_H
#define PC_SERVER_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <uv.h>

#include "accesslog.h"
#include "conf.h"
#include "netaddr.h"
#include "worker.h"

/* One listen address and the descriptor each worker accepts on: a socket
 * of its own in a SO_REUSEPORT group (server.c, listener_bind). */
typedef struct srv_listener {
    netaddr_port_t addr;
    int *fds;                  /* one per worker; owned by the workers */
    int reused;                /* kept from the previous configuration */
} srv_listener_t;

typedef struct srv_client_slot srv_client_slot_t;

typedef enum srv_limit { SRV_LIMIT_OK, SRV_LIMIT_TOTAL, SRV_LIMIT_CLIENT } srv_limit_t;

/*
 * The main thread runs its own small loop for signals and control; it never
 * carries traffic, so it may do blocking work such as parsing a new
 * configuration. The data path lives in the workers.
 */
typedef struct server {
    uv_loop_t *loop;
    char *conf_path;
    conf_t *conf;               /* the configuration in force */
    accesslog_files_t *alog_files;
    srv_listener_t *listeners;
    int nlisteners;
    worker_t *workers;
    int nworkers;
    uv_signal_t sig_hup, sig_term, sig_int, sig_usr1;
    uv_async_t worker_exit;     /* a worker finished draining */
    atomic_int workers_running;
    int stopping;
    int force;                  /* second stop signal: drop everything */
    int pid_written;
    uint64_t started;           /* uv_hrtime() at start, ns */

    atomic_uint_fast64_t next_conn_id;
    atomic_uint_fast64_t next_txn_serial;
    atomic_long nconns;
    pthread_mutex_t clients_lock;   /* per-client connection counts */
    srv_client_slot_t **client_buckets;
    unsigned nclient_buckets;
    atomic_uint_fast64_t last_refusal_log;  /* ms; rate-limits refusal lines */
} server_t;

/* Loads the configuration, opens logs, binds, drops privileges and starts
 * the workers. Returns 0, or -1 with "FILE:LINE: message" or another
 * message in err. */
int server_start(server_t *srv, uv_loop_t *loop, const char *conf_path,
                 char *err, size_t errlen);
/* Frees what a failed server_start() left (so a refused start reports no
 * leaks). */
void server_abandon(server_t *srv);
/* Runs until stopped; returns the exit status. */
int server_run(server_t *srv);

/* Loads a configuration completely: directives, block page, plugin
 * configurations, own addresses. Returns NULL with "FILE:LINE: message". */
conf_t *server_load_conf(const char *path, char *err, size_t errlen);

/* SIGHUP: reload all-or-nothing. Returns 0 or -1 (the old config stays). */
int server_reload(server_t *srv);
/* The same, with the reason for a failure in err. */
int server_reload_msg(server_t *srv, char *err, size_t errlen);
void server_reopen_logs(server_t *srv);
/* The workers' counters summed (main thread). */
void server_stats(server_t *srv, worker_stats_t *sum);
uint64_t server_uptime(const server_t *srv);
/* SIGTERM/SIGINT: stop accepting, finish in-flight work within
 * drain_timeout, then exit. */
void server_stop(server_t *srv);

uint64_t server_next_conn_id(server_t *srv);
uint64_t server_next_txn_serial(server_t *srv);
/* Worker number id (1..), or NULL. Any thread. */
worker_t *server_worker(int id);
/* Counts a new client connection against max_connections and
 * max_connections_per_client. Thread-safe. */
srv_limit_t server_client_acquire(server_t *srv, const netaddr_t *addr,
                                  const conf_t *conf);
void server_client_release(server_t *srv, const netaddr_t *addr);
/* Logs a refused connection, at most once a second. */
void server_log_refusal(server_t *srv, const char *client, const char *limit);

/* server_bind() flags: join a SO_REUSEPORT group; bind only, no listen()
 * (to find out whether anything holds the address). */
#define SRV_BIND_REUSEPORT 1
#define SRV_BIND_PROBE 2

/* Binds one listening socket; returns the fd or a negative errno with err
 * set. */
int server_bind(const netaddr_port_t *addr, int flags, char *err, size_t errlen);

#endif
