/* server.c - the process: listeners, workers, signals, reload and graceful stop. */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <netinet/in.h>
#include <pwd.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include "control.h"
#include "localaddr.h"
#include "log.h"
#include "notify.h"
#include "plugin_host.h"
#include "server.h"
#include "tls_policy.h"

struct srv_client_slot {
    srv_client_slot_t *next;
    netaddr_t addr;
    long count;
};

/* ---- sockets ------------------------------------------------------------ */

int server_bind(const netaddr_port_t *addr, int flags, char *err, size_t errlen)
{
    int fd, on = 1, off = 0, e;
    int family = addr->ss.ss_family;

    fd = socket(family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0) {
        e = errno;
        snprintf(err, errlen, "listen %s: socket: %s", addr->text, strerror(e));
        return -e;
    }
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof(on));
    if ((flags & SRV_BIND_REUSEPORT) &&
        setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &on, sizeof(on)) < 0) {
        e = errno;
        snprintf(err, errlen, "listen %s: SO_REUSEPORT: %s", addr->text, strerror(e));
        close(fd);
        return -e;
    }
    if (family == AF_INET6) {
        /* "[::]:3128" and "*:3128" take IPv4 too; a specific IPv6 address
         * only itself. */
        const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)&addr->ss;
        int any = IN6_IS_ADDR_UNSPECIFIED(&s6->sin6_addr);
        setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, any ? &off : &on, sizeof(on));
    }
    if (bind(fd, (const struct sockaddr *)&addr->ss, addr->len) < 0 ||
        (!(flags & SRV_BIND_PROBE) && listen(fd, 4096) < 0)) {
        e = errno;
        snprintf(err, errlen, "listen %s: %s", addr->text, strerror(e));
        close(fd);
        return -e;
    }
    return fd;
}

/*
 * Binds the sockets of one listen address, one per worker, into fds.
 * Returns 0, or -1 with err set and nothing left open.
 *
 * Several workers get a SO_REUSEPORT group: one socket each, and the
 * kernel spreads new connections over them by a hash of the addresses and
 * ports, so each loop accepts only its own share and no loop is woken for
 * a connection another one takes. (A single socket shared by every loop
 * wakes all of them for each connection, and the first awake takes the
 * whole burst: bench/README.md has the numbers.)
 *
 * Linux lets a socket join a reuseport group only when its process has the
 * effective uid of the group's first socket: root's at start (the daemon
 * binds before dropping privileges), the "user" one for an address added
 * by a reload. Another process of that uid could join the group and get a
 * share of the connections; one that is already listening is caught here:
 * the address is first bound without SO_REUSEPORT, which fails with
 * EADDRINUSE when anything listens on it, exactly as a single socket
 * would. The window between that probe and the group's first bind is the
 * only one left.
 */
static int listener_bind(srv_listener_t *l, int nworkers, char *err, size_t errlen)
{
    int fd, k;

    if (nworkers == 1) {
        fd = server_bind(&l->addr, 0, err, errlen);
        if (fd < 0)
            return -1;
        l->fds[0] = fd;
        return 0;
    }
    fd = server_bind(&l->addr, SRV_BIND_PROBE, err, errlen);
    if (fd < 0)
        return -1;
    close(fd);
    for (k = 0; k < nworkers; k++) {
        fd = server_bind(&l->addr, SRV_BIND_REUSEPORT, err, errlen);
        if (fd < 0)
            goto fail;
        l->fds[k] = fd;
    }
    return 0;
fail:
    for (k = 0; k < nworkers; k++) {
        if (l->fds[k] >= 0)
            close(l->fds[k]);
        l->fds[k] = -1;
    }
    return -1;
}

static void listeners_free(srv_listener_t *l, int n, int close_fds, int nworkers)
{
    for (int i = 0; l && i < n; i++) {
        if (close_fds)
            for (int k = 0; k < nworkers; k++)
                if (l[i].fds[k] >= 0)
                    close(l[i].fds[k]);
        free(l[i].fds);
    }
    free(l);
}

/* Builds the listener table for conf, reusing sockets of old (same address)
 * and binding the rest. Returns the table or NULL with err set (new sockets
 * closed again). */
static srv_listener_t *listeners_build(const conf_t *conf, srv_listener_t *old,
                                       int nold, int nworkers, char *err,
                                       size_t errlen)
{
    srv_listener_t *l = calloc((size_t)conf->nlisten, sizeof(*l));
    int i;

    if (l == NULL) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    for (i = 0; i < conf->nlisten; i++) {
        l[i].addr = conf->listen[i];
        l[i].fds = malloc((size_t)nworkers * sizeof(int));
        if (l[i].fds == NULL)
            goto fail;
        for (int k = 0; k < nworkers; k++)
            l[i].fds[k] = -1;
    }
    for (i = 0; i < conf->nlisten; i++) {
        int reused = 0;
        for (int j = 0; j < nold && !reused; j++) {
            if (old[j].addr.len == l[i].addr.len &&
                memcmp(&old[j].addr.ss, &l[i].addr.ss, l[i].addr.len) == 0) {
                memcpy(l[i].fds, old[j].fds, (size_t)nworkers * sizeof(int));
                l[i].reused = 1;
                reused = 1;
            }
        }
        if (reused)
            continue;
        if (listener_bind(&l[i], nworkers, err, errlen) < 0)
            goto fail;
    }
    return l;
fail:
    for (int k = 0; k < conf->nlisten; k++) {
        if (l[k].fds && !l[k].reused)
            for (int m = 0; m < nworkers; m++)
                if (l[k].fds[m] >= 0)
                    close(l[k].fds[m]);
    }
    listeners_free(l, conf->nlisten, 0, nworkers);
    return NULL;
}

/* ---- client accounting -------------------------------------------------- */

/* Set once at start, read-only afterwards: deferral tokens name workers. */
static server_t *the_server;

worker_t *server_worker(int id)
{
    server_t *srv = the_server;

    if (srv == NULL || id < 1 || id > srv->nworkers || srv->workers == NULL)
        return NULL;
    return &srv->workers[id - 1];
}

uint64_t server_next_conn_id(server_t *srv)
{
    return atomic_fetch_add(&srv->next_conn_id, 1) + 1;
}

uint64_t server_next_txn_serial(server_t *srv)
{
    return atomic_fetch_add(&srv->next_txn_serial, 1) + 1;
}

static unsigned addr_hash(const netaddr_t *a)
{
    uint32_t h = 2166136261u;
    int n = a->family == AF_INET ? 4 : 16;

    for (int i = 0; i < n; i++) {
        h ^= a->a[i];
        h *= 16777619u;
    }
    return h;
}

srv_limit_t server_client_acquire(server_t *srv, const netaddr_t *addr,
                                  const conf_t *conf)
{
    srv_client_slot_t *s;
    unsigned b;

    if (atomic_fetch_add(&srv->nconns, 1) >= conf->max_connections) {
        atomic_fetch_sub(&srv->nconns, 1);
        return SRV_LIMIT_TOTAL;
    }
    b = addr_hash(addr) % srv->nclient_buckets;
    pthread_mutex_lock(&srv->clients_lock);
    for (s = srv->client_buckets[b]; s; s = s->next)
        if (netaddr_equal(&s->addr, addr))
            break;
    if (s == NULL) {
        s = calloc(1, sizeof(*s));
        if (s == NULL) {
            pthread_mutex_unlock(&srv->clients_lock);
            atomic_fetch_sub(&srv->nconns, 1);
            return SRV_LIMIT_TOTAL;
        }
        s->addr = *addr;
        s->next = srv->client_buckets[b];
        srv->client_buckets[b] = s;
    }
    if (s->count >= conf->max_connections_per_client) {
        pthread_mutex_unlock(&srv->clients_lock);
        atomic_fetch_sub(&srv->nconns, 1);
        return SRV_LIMIT_CLIENT;
    }
    s->count++;
    pthread_mutex_unlock(&srv->clients_lock);
    return SRV_LIMIT_OK;
}

void server_client_release(server_t *srv, const netaddr_t *addr)
{
    unsigned b = addr_hash(addr) % srv->nclient_buckets;
    srv_client_slot_t **pp;

    pthread_mutex_lock(&srv->clients_lock);
    for (pp = &srv->client_buckets[b]; *pp; pp = &(*pp)->next) {
        srv_client_slot_t *s = *pp;
        if (netaddr_equal(&s->addr, addr)) {
            if (--s->count <= 0) {
                *pp = s->next;
                free(s);
            }
            break;
        }
    }
    pthread_mutex_unlock(&srv->clients_lock);
    atomic_fetch_sub(&srv->nconns, 1);
}

void server_log_refusal(server_t *srv, const char *client, const char *limit)
{
    uint64_t now = uv_hrtime() / 1000000, last = atomic_load(&srv->last_refusal_log);

    if (now - last < 1000)
        return;
    if (!atomic_compare_exchange_strong(&srv->last_refusal_log, &last, now))
        return;
    log_warn(0, "connection from %s refused: %s reached (further refusals "
             "this second are not logged)", client, limit);
}

/* ---- start, reload, stop ------------------------------------------------ */

/* "workers 0" is one per CPU the process may run on: the CPUs of its
 * affinity mask (taskset, a systemd CPUAffinity=, a cpuset), else those
 * online. */
static int resolve_workers(const conf_t *conf)
{
    long n = conf->workers;
    cpu_set_t set;

    if (n <= 0) {
        CPU_ZERO(&set);
        if (sched_getaffinity(0, sizeof(set), &set) == 0)
            n = CPU_COUNT(&set);
        if (n <= 0)
            n = sysconf(_SC_NPROCESSORS_ONLN);
        if (n < 1)
            n = 1;
        if (n > 256)
            n = 256;
    }
    return (int)n;
}

/* Raises the soft limit on open files to the hard one: the daemon waits
 * with epoll, so no descriptor number is too large for it, and every
 * connection costs one (two with its upstream). A limit still too low for
 * max_connections is said once; connections beyond it are refused with a
 * 503 (worker.c, accept_shed). */
static void raise_nofile(const conf_t *conf)
{
    struct rlimit rl;
    unsigned long long need = (unsigned long long)conf->max_connections * 2 + 64;

    if (getrlimit(RLIMIT_NOFILE, &rl) < 0)
        return;
    if (rl.rlim_cur < rl.rlim_max) {
        struct rlimit want = {rl.rlim_max, rl.rlim_max};
        if (setrlimit(RLIMIT_NOFILE, &want) == 0)
            rl = want;
    }
    if (rl.rlim_cur != RLIM_INFINITY && rl.rlim_cur < need)
        log_warn(0, "the open file limit (RLIMIT_NOFILE) is %llu, and max_connections "
                 "%ld may need %llu descriptors (a client and an upstream connection "
                 "each): connections beyond the limit are refused with 503; raise it "
                 "(LimitNOFILE= in the systemd unit, ulimit -n)",
                 (unsigned long long)rl.rlim_cur, conf->max_connections, need);
}

static int write_pid_file(const char *path, char *err, size_t errlen)
{
    char buf[32];
    int fd, n;

    fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) {
        snprintf(err, errlen, "cannot write pid file '%s': %s", path, strerror(errno));
        return -1;
    }
    n = snprintf(buf, sizeof(buf), "%d\n", (int)getpid());
    if (write(fd, buf, (size_t)n) != n) {
        snprintf(err, errlen, "cannot write pid file '%s': %s", path, strerror(errno));
        close(fd);
        return -1;
    }
    close(fd);
    return 0;
}

/* The log files were opened, and maybe created, as root; they go to the
 * user the daemon becomes, so that SIGUSR1 and SIGHUP can open them again
 * (as Squid does for its effective user). */
static void chown_logs(const conf_t *conf, uid_t uid, gid_t gid)
{
    if (strcmp(conf->error_log, "stderr") != 0 && chown(conf->error_log, uid, gid) < 0)
        log_warn(0, "cannot give the error log '%s' to user '%s': %s",
                 conf->error_log, conf->user, strerror(errno));
    for (int i = 0; i < conf->naccess_logs; i++)
        if (chown(conf->access_logs[i].path, uid, gid) < 0)
            log_warn(0, "cannot give the access log '%s' to user '%s': %s",
                     conf->access_logs[i].path, conf->user, strerror(errno));
    /* The pid file and the control socket too: the daemon empties and
     * removes them at exit. */
    if (conf->pid_file && chown(conf->pid_file, uid, gid) < 0)
        log_warn(0, "cannot give the pid file '%s' to user '%s': %s",
                 conf->pid_file, conf->user, strerror(errno));
    if (conf->control_socket && chown(conf->control_socket, uid, gid) < 0 &&
        errno != ENOENT)
        log_warn(0, "cannot give the control socket '%s' to user '%s': %s",
                 conf->control_socket, conf->user, strerror(errno));
}

/* At exit. Without write access to its directory (privileges dropped, the
 * directory not handed over) the file is at least emptied, so no stale pid
 * points at another process. */
static void remove_pid_file(const char *path)
{
    int fd;

    if (unlink(path) == 0 || errno == ENOENT)
        return;
    fd = open(path, O_WRONLY | O_TRUNC | O_CLOEXEC);
    if (fd >= 0)
        close(fd);
}

static int drop_privileges(const conf_t *conf, char *err, size_t errlen)
{
    struct passwd *pw;
    gid_t gid;

    if (conf->user == NULL)
        return 0;
    if (geteuid() != 0) {
        log_notice(0, "not running as root: 'user %s' ignored", conf->user);
        return 0;
    }
    pw = getpwnam(conf->user);
    if (pw == NULL) {
        snprintf(err, errlen, "user '%s' does not exist", conf->user);
        return -1;
    }
    gid = pw->pw_gid;
    if (conf->group) {
        struct group *gr = getgrnam(conf->group);
        if (gr == NULL) {
            snprintf(err, errlen, "group '%s' does not exist", conf->group);
            return -1;
        }
        gid = gr->gr_gid;
    }
    chown_logs(conf, pw->pw_uid, gid);
    if (initgroups(pw->pw_name, gid) < 0 || setgid(gid) < 0 ||
        setuid(pw->pw_uid) < 0) {
        snprintf(err, errlen, "cannot switch to user '%s': %s", conf->user,
                 strerror(errno));
        return -1;
    }
    return 0;
}

static void on_signal(uv_signal_t *h, int signum);

static void on_worker_exit(uv_async_t *async)
{
    server_t *srv = async->data;

    if (atomic_load(&srv->workers_running) > 0)
        return;
    uv_close((uv_handle_t *)&srv->sig_hup, NULL);
    uv_close((uv_handle_t *)&srv->sig_term, NULL);
    uv_close((uv_handle_t *)&srv->sig_int, NULL);
    uv_close((uv_handle_t *)&srv->sig_usr1, NULL);
    uv_close((uv_handle_t *)&srv->worker_exit, NULL);
    /* Events still queued are delivered now; then the queue closes. */
    plugin_events_stop();
    control_stop();
}

/* Reads the block page template named by block_page. */
static int load_block_page(conf_t *conf, char *err, size_t errlen)
{
    const conf_node_t *at = NULL;
    char *text;
    long n;
    FILE *f;

    if (conf->block_page == NULL)
        return 0;
    for (const conf_node_t *c = conf_tree_root(conf->tree)->child; c; c = c->next)
        if (strcmp(c->name, "block_page") == 0)
            at = c;
    f = fopen(conf->block_page, "r");
    if (f == NULL) {
        snprintf(err, errlen, "%s:%d: block_page: cannot read '%s': %s",
                 at ? at->file : conf->path, at ? at->line : 0, conf->block_page,
                 strerror(errno));
        return -1;
    }
    text = malloc(256 * 1024 + 1);
    n = text ? (long)fread(text, 1, 256 * 1024, f) : -1;
    if (n < 0 || ferror(f) || !feof(f)) {
        snprintf(err, errlen, "%s:%d: block_page: '%s' is unreadable or larger "
                 "than 256k", at ? at->file : conf->path, at ? at->line : 0,
                 conf->block_page);
        free(text);
        fclose(f);
        return -1;
    }
    fclose(f);
    text[n] = '\0';
    conf->block_page_text = text;
    return 0;
}

conf_t *server_load_conf(const char *path, char *err, size_t errlen)
{
    conf_t *conf = conf_load(path, err, errlen);

    if (conf == NULL)
        return NULL;
    if (load_block_page(conf, err, errlen) < 0 ||
        tls_snap_attach(conf, err, errlen) < 0 ||
        plugin_set_build(conf, err, errlen) < 0) {
        conf_unref(conf);
        return NULL;
    }
    conf->own_addrs = localaddr_scan(err, errlen);
    if (conf->own_addrs == NULL) {
        conf_unref(conf);
        return NULL;
    }
    return conf;
}

int server_start(server_t *srv, uv_loop_t *loop, const char *conf_path,
                 char *err, size_t errlen)
{
    conf_t *conf;
    char lerr[512];

    memset(srv, 0, sizeof(*srv));
    the_server = srv;
    srv->loop = loop;
    srv->conf_path = strdup(conf_path);
    pthread_mutex_init(&srv->clients_lock, NULL);
    srv->nclient_buckets = 4096;
    srv->client_buckets = calloc(srv->nclient_buckets, sizeof(*srv->client_buckets));
    if (srv->conf_path == NULL || srv->client_buckets == NULL) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    conf = server_load_conf(conf_path, err, errlen);
    if (conf == NULL)
        return -1;
    srv->conf = conf;
    srv->nworkers = resolve_workers(conf);

    srv->alog_files = accesslog_files_open(conf, err, errlen);
    if (srv->alog_files == NULL)
        return -1;
    /* Signals are caught from before the first socket is bound: one that
     * arrives while starting waits for the loop instead of killing the
     * process halfway (libuv records it and delivers it from uv_run). */
    uv_signal_init(loop, &srv->sig_hup);
    uv_signal_init(loop, &srv->sig_term);
    uv_signal_init(loop, &srv->sig_int);
    uv_signal_init(loop, &srv->sig_usr1);
    srv->sig_hup.data = srv->sig_term.data = srv->sig_int.data = srv->sig_usr1.data = srv;
    uv_signal_start(&srv->sig_hup, on_signal, SIGHUP);
    uv_signal_start(&srv->sig_term, on_signal, SIGTERM);
    uv_signal_start(&srv->sig_int, on_signal, SIGINT);
    uv_signal_start(&srv->sig_usr1, on_signal, SIGUSR1);
    srv->listeners = listeners_build(conf, NULL, 0, srv->nworkers, err, errlen);
    if (srv->listeners == NULL)
        return -1;
    srv->nlisteners = conf->nlisten;
    if (log_open(conf->error_log, conf->error_log_level, err, errlen) < 0)
        return -1;
    raise_nofile(conf);
    if (conf->pid_file) {
        if (write_pid_file(conf->pid_file, err, errlen) < 0)
            return -1;
        srv->pid_written = 1;
    }
    if (drop_privileges(conf, err, errlen) < 0)
        return -1;
    /* Plugins start after the privilege drop, like the workers: nothing
     * of theirs runs as root. */
    plugin_host_set_main(loop);
    if (plugin_events_start(loop) < 0) {
        snprintf(err, errlen, "cannot start the event queue");
        return -1;
    }
    if (control_start(srv, conf->control_socket, err, errlen) < 0)
        return -1;
    if (plugin_set_commit(conf, err, errlen) < 0)
        return -1;
    srv->started = uv_hrtime();

    uv_async_init(loop, &srv->worker_exit, on_worker_exit);
    srv->worker_exit.data = srv;
    srv->workers = calloc((size_t)srv->nworkers, sizeof(*srv->workers));
    if (srv->workers == NULL) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    for (int i = 0; i < srv->nworkers; i++) {
        int *fds = malloc((size_t)(srv->nlisteners ? srv->nlisteners : 1) * sizeof(int));
        int rc;
        if (fds == NULL) {
            snprintf(err, errlen, "out of memory");
            return -1;
        }
        for (int k = 0; k < srv->nlisteners; k++)
            fds[k] = srv->listeners[k].fds[i];
        rc = worker_init(&srv->workers[i], srv, i + 1, conf, fds, srv->nlisteners);
        free(fds);
        if (rc < 0 || worker_start(&srv->workers[i]) < 0) {
            snprintf(err, errlen, "cannot start worker %d", i + 1);
            return -1;
        }
    }


    lerr[0] = '\0';
    for (int i = 0; i < srv->nlisteners; i++) {
        size_t l = strlen(lerr);
        snprintf(lerr + l, sizeof(lerr) - l, "%s%s", i ? " " : "",
                 srv->listeners[i].addr.text);
    }
    {
        char ready[64];
        snprintf(ready, sizeof(ready), "READY=1\nMAINPID=%d", (int)getpid());
        notify_send(ready);
    }
    log_notice(0, "portcullis " PACKAGE_VERSION " started (pid %d, %d worker%s), "
               "listening on %s", (int)getpid(), srv->nworkers,
               srv->nworkers == 1 ? "" : "s", lerr);
    return 0;
}

int server_reload(server_t *srv)
{
    char err[1024];

    return server_reload_msg(srv, err, sizeof(err));
}

void server_reopen_logs(server_t *srv)
{
    log_notice(0, "reopening log files");
    if (log_reopen() < 0)
        log_error(0, "cannot reopen the error log: %s", strerror(errno));
    accesslog_files_reopen(srv->alog_files);
}

void server_stats(server_t *srv, worker_stats_t *sum)
{
    memset(sum, 0, sizeof(*sum));
    for (int i = 0; i < srv->nworkers; i++) {
        worker_stats_t *w = &srv->workers[i].stats;
        sum->connections += atomic_load_explicit(&w->connections, memory_order_relaxed);
        sum->refused += atomic_load_explicit(&w->refused, memory_order_relaxed);
        sum->requests += atomic_load_explicit(&w->requests, memory_order_relaxed);
        sum->denied += atomic_load_explicit(&w->denied, memory_order_relaxed);
        sum->errors += atomic_load_explicit(&w->errors, memory_order_relaxed);
        sum->tunnels += atomic_load_explicit(&w->tunnels, memory_order_relaxed);
        sum->bytes_in += atomic_load_explicit(&w->bytes_in, memory_order_relaxed);
        sum->bytes_out += atomic_load_explicit(&w->bytes_out, memory_order_relaxed);
        sum->upstream_new += atomic_load_explicit(&w->upstream_new, memory_order_relaxed);
        sum->upstream_reused +=
            atomic_load_explicit(&w->upstream_reused, memory_order_relaxed);
    }
}

uint64_t server_uptime(const server_t *srv)
{
    return (uv_hrtime() - srv->started) / 1000000000u;
}

static int reload_conf(server_t *srv, char *err, size_t errlen);

int server_reload_msg(server_t *srv, char *err, size_t errlen)
{
    int rc;

    if (srv->stopping)
        return -1;
    notify_send("RELOADING=1");
    rc = reload_conf(srv, err, errlen);
    /* Serving again, with the new configuration or the old one. */
    notify_send("READY=1");
    return rc;
}

static int reload_conf(server_t *srv, char *err, size_t errlen)
{
    conf_t *conf;
    accesslog_files_t *alog;
    srv_listener_t *l;
    int fd;

    if (srv->stopping)
        return -1;
    log_notice(0, "reloading configuration from %s", srv->conf_path);
    conf = server_load_conf(srv->conf_path, err, errlen);
    if (conf == NULL) {
        log_error(0, "reload failed, keeping the running configuration: %s", err);
        return -1;
    }
    if (resolve_workers(conf) != srv->nworkers)
        log_warn(0, "'workers' changed: takes effect after a restart");
    alog = accesslog_files_open(conf, err, errlen);
    if (alog == NULL) {
        log_error(0, "reload failed, keeping the running configuration: %s", err);
        conf_unref(conf);
        return -1;
    }
    if (strcmp(conf->error_log, "stderr") != 0) {
        fd = open(conf->error_log, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640);
        if (fd < 0) {
            snprintf(err, errlen, "cannot open error log '%s': %s", conf->error_log,
                     strerror(errno));
            log_error(0, "reload failed, keeping the running configuration: %s", err);
            accesslog_files_unref(alog);
            conf_unref(conf);
            return -1;
        }
        close(fd);
    }
    l = listeners_build(conf, srv->listeners, srv->nlisteners, srv->nworkers,
                        err, errlen);
    if (l == NULL) {
        log_error(0, "reload failed, keeping the running configuration: %s", err);
        accesslog_files_unref(alog);
        conf_unref(conf);
        return -1;
    }

    /* New plugins start here; if one cannot, nothing else has changed. */
    if (plugin_set_commit(conf, err, errlen) < 0) {
        log_error(0, "reload failed, keeping the running configuration: %s", err);
        for (int k = 0; k < conf->nlisten; k++)
            if (!l[k].reused)
                for (int m = 0; m < srv->nworkers; m++)
                    close(l[k].fds[m]);
        listeners_free(l, conf->nlisten, 0, srv->nworkers);
        accesslog_files_unref(alog);
        conf_unref(conf);
        return -1;
    }

    /* Commit: nothing below can fail in a way that needs undoing. */
    {
        char lerr[512];
        if (log_open(conf->error_log, conf->error_log_level, lerr, sizeof(lerr)) < 0)
            log_error(0, "%s", lerr);
    }
    for (int i = 0; i < srv->nworkers; i++) {
        worker_msg_t *m = calloc(1, sizeof(*m));
        if (m == NULL) {
            log_crit(0, "out of memory handing the new configuration to worker %d", i + 1);
            continue;
        }
        m->kind = WMSG_CONF;
        m->conf = conf_ref(conf);
        m->alog_files = accesslog_files_ref(alog);
        m->nfds = conf->nlisten;
        m->fds = malloc((size_t)(m->nfds ? m->nfds : 1) * sizeof(int));
        if (m->fds)
            for (int k = 0; k < m->nfds; k++)
                m->fds[k] = l[k].fds[i];
        worker_post(&srv->workers[i], m);
    }
    /* Sockets of dropped addresses are closed by the workers. */
    listeners_free(srv->listeners, srv->nlisteners, 0, srv->nworkers);
    srv->listeners = l;
    srv->nlisteners = conf->nlisten;
    accesslog_files_unref(srv->alog_files);
    srv->alog_files = alog;
    conf_unref(srv->conf);
    srv->conf = conf;
    log_notice(0, "configuration reloaded from %s", srv->conf_path);
    return 0;
}

void server_stop(server_t *srv)
{
    int force = srv->stopping;

    srv->stopping = 1;
    notify_send("STOPPING=1");
    if (!force)
        plugins_drain();
    if (force)
        log_notice(0, "second stop signal: closing every connection now");
    else
        log_notice(0, "stopping: no new connections; finishing those in flight "
                   "(drain_timeout %llu ms)", (unsigned long long)srv->conf->drain_timeout);
    for (int i = 0; i < srv->nworkers; i++) {
        worker_msg_t *m = calloc(1, sizeof(*m));
        if (m == NULL)
            continue;
        m->kind = force ? WMSG_FORCE_STOP : WMSG_STOP;
        worker_post(&srv->workers[i], m);
    }
}

static void on_signal(uv_signal_t *h, int signum)
{
    server_t *srv = h->data;

    switch (signum) {
    case SIGHUP:
        server_reload(srv);
        break;
    case SIGTERM:
    case SIGINT:
        server_stop(srv);
        break;
    case SIGUSR1:
        server_reopen_logs(srv);
        break;
    }
}

static void close_if_open(uv_handle_t *h)
{
    if (h->loop && !uv_is_closing(h))
        uv_close(h, NULL);
}

void server_abandon(server_t *srv)
{
    /* Only what server_start can have made before failing; workers are
     * started last and a failure there is not cleaned up (the process
     * exits at once). */
    if (srv->nworkers && srv->workers && atomic_load(&srv->workers_running) > 0)
        return;
    close_if_open((uv_handle_t *)&srv->sig_hup);
    close_if_open((uv_handle_t *)&srv->sig_term);
    close_if_open((uv_handle_t *)&srv->sig_int);
    close_if_open((uv_handle_t *)&srv->sig_usr1);
    close_if_open((uv_handle_t *)&srv->worker_exit);
    plugin_events_stop();
    control_stop();
    uv_run(srv->loop, UV_RUN_NOWAIT);
    if (srv->pid_written && srv->conf && srv->conf->pid_file)
        remove_pid_file(srv->conf->pid_file);
    listeners_free(srv->listeners, srv->nlisteners, 1, srv->nworkers);
    accesslog_files_unref(srv->alog_files);
    conf_unref(srv->conf);
    srv->conf = NULL;
    plugins_shutdown();
    free(srv->workers);
    control_free();
    plugin_events_free();
    plugin_metrics_free();
    free(srv->client_buckets);
    free(srv->conf_path);
}

int server_run(server_t *srv)
{
    uv_run(srv->loop, UV_RUN_DEFAULT);
    for (int i = 0; i < srv->nworkers; i++)
        worker_join(&srv->workers[i]);
    log_notice(0, "stopped");
    if (srv->pid_written && srv->conf->pid_file)
        remove_pid_file(srv->conf->pid_file);
    listeners_free(srv->listeners, srv->nlisteners, 0, srv->nworkers);
    accesslog_files_unref(srv->alog_files);
    /* The last configuration goes first (plugins free their objects),
     * then the plugins themselves. Until their shutdown() returned, a
     * plugin thread may still resume a token (defer_resume_threadsafe):
     * the workers it names stay allocated, their queues closed, so that
     * is a no-op. */
    conf_unref(srv->conf);
    srv->conf = NULL;
    plugins_shutdown();
    for (int i = 0; i < srv->nworkers; i++)
        worker_free(&srv->workers[i]);
    free(srv->workers);
    srv->workers = NULL;
    srv->nworkers = 0;
    control_free();
    plugin_events_free();
    plugin_metrics_free();
    for (unsigned i = 0; i < srv->nclient_buckets; i++) {
        while (srv->client_buckets[i]) {
            srv_client_slot_t *s = srv->client_buckets[i];
            srv->client_buckets[i] = s->next;
            free(s);
        }
    }
    free(srv->client_buckets);
    free(srv->conf_path);
    pthread_mutex_destroy(&srv->clients_lock);
    return 0;
}
