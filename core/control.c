/* control.c - the control socket behind `portcullis ctl`: reload, stats and plugin commands. */
#include "config.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "control.h"
#include "control_args.h"
#include "http_msg.h"
#include "log.h"
#include "plugin_host.h"
#include "server.h"

/*
 * Protocol (one command per connection, text lines):
 *   client:  NAME ARG "ARG WITH SPACES"\n
 *   server:  zero or more answer lines, then "OK" or "ERR message", close.
 * Only the daemon's own user and root may use it: the socket is created
 * mode 0600 and the peer's credentials (SO_PEERCRED) are checked as well,
 * since a socket's mode is not honoured everywhere.
 */

#define CTL_LINE_MAX 4096
#define CTL_ARGS_MAX 64

typedef struct ctl_cmd {
    struct ctl_cmd *next;
    char *name;
    char *usage;
    pc_plugin_t *p;
    pc_ctl_fn fn;
} ctl_cmd_t;

struct pc_ctl {
    uv_pipe_t pipe;
    char line[CTL_LINE_MAX + 1];
    size_t len;
    int done;                 /* answered; closing */
    int shut;                 /* our side is shut down (answer sent) */
    int eof;                  /* the client's side ended, or reading stopped */
    size_t drained;           /* bytes discarded after the answer */
    strbuf_t out;
    uv_write_t wreq;
    uv_shutdown_t sreq;
};

static uv_pipe_t ctl_server;
static int ctl_listening;
static char *ctl_path;
static server_t *ctl_srv;
static ctl_cmd_t *ctl_cmds;

void control_reply(pc_ctl_t *ctl, const char *fmt, ...)
{
    char line[2048];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(line, sizeof(line), fmt, ap);
    va_end(ap);
    /* One line per call: an embedded newline would fake a status line. */
    for (char *p = line; *p; p++)
        if (*p == '\n' || *p == '\r')
            *p = ' ';
    strbuf_adds(&ctl->out, line);
    strbuf_add(&ctl->out, "\n", 1);
}

int control_register(pc_plugin_t *p, const char *name, const char *usage,
                     pc_ctl_fn fn)
{
    static const char *const builtin[] = {"help", "version", "stats", "reload",
                                          "reopen", NULL};
    ctl_cmd_t *c;

    if (name == NULL || fn == NULL)
        return -1;
    for (int i = 0; builtin[i]; i++)
        if (strcmp(builtin[i], name) == 0)
            return -1;
    for (c = ctl_cmds; c; c = c->next)
        if (strcmp(c->name, name) == 0)
            return -1;
    c = calloc(1, sizeof(*c));
    if (c == NULL || (c->name = strdup(name)) == NULL ||
        (c->usage = strdup(usage ? usage : name)) == NULL) {
        if (c)
            free(c->name);
        free(c);
        return -1;
    }
    c->p = p;
    c->fn = fn;
    c->next = ctl_cmds;
    ctl_cmds = c;
    return 0;
}

/* ---- built-in commands -------------------------------------------------- */

static void stat_line(const char *name, int64_t value, void *arg)
{
    control_reply(arg, "%s %lld", name, (long long)value);
}

static int cmd_stats(pc_ctl_t *ctl)
{
    worker_stats_t sum;

    server_stats(ctl_srv, &sum);
    control_reply(ctl, "uptime_seconds %llu", (unsigned long long)server_uptime(ctl_srv));
    control_reply(ctl, "workers %d", ctl_srv->nworkers);
    control_reply(ctl, "connections_open %ld", (long)atomic_load(&ctl_srv->nconns));
    control_reply(ctl, "connections_total %llu", (unsigned long long)sum.connections);
    control_reply(ctl, "connections_refused %llu", (unsigned long long)sum.refused);
    control_reply(ctl, "requests_total %llu", (unsigned long long)sum.requests);
    control_reply(ctl, "requests_denied %llu", (unsigned long long)sum.denied);
    control_reply(ctl, "requests_errors %llu", (unsigned long long)sum.errors);
    control_reply(ctl, "tunnels_total %llu", (unsigned long long)sum.tunnels);
    control_reply(ctl, "bytes_in %llu", (unsigned long long)sum.bytes_in);
    control_reply(ctl, "bytes_out %llu", (unsigned long long)sum.bytes_out);
    control_reply(ctl, "upstream_connections_new %llu", (unsigned long long)sum.upstream_new);
    control_reply(ctl, "upstream_connections_reused %llu",
                  (unsigned long long)sum.upstream_reused);
    plugin_metrics_each(stat_line, ctl);
    return 0;
}

static int cmd_help(pc_ctl_t *ctl)
{
    control_reply(ctl, "help                 this list");
    control_reply(ctl, "version              the running version");
    control_reply(ctl, "stats                counters (name value)");
    control_reply(ctl, "reload               reload the configuration (like SIGHUP)");
    control_reply(ctl, "reopen               reopen the log files (like SIGUSR1)");
    for (ctl_cmd_t *c = ctl_cmds; c; c = c->next)
        control_reply(ctl, "%-20s (%s) %s", c->name, c->p ? c->p->name : "core", c->usage);
    return 0;
}

/* ---- connections -------------------------------------------------------- */

static void on_ctl_close(uv_handle_t *h)
{
    pc_ctl_t *ctl = h->data;

    strbuf_free(&ctl->out);
    free(ctl);
}

/* Closing while the client's bytes sit unread would reset the connection
 * (ECONNRESET) and could destroy the answer before the client read it; so
 * after the answer the rest of the input is read and dropped until the
 * client closes (the client reads the answer to its end, then closes). */
#define CTL_DRAIN_MAX (1024 * 1024)

static void on_ctl_shutdown(uv_shutdown_t *req, int status)
{
    pc_ctl_t *ctl = req->data;

    ctl->shut = 1;
    if (status < 0 || ctl->eof)
        uv_close((uv_handle_t *)&ctl->pipe, on_ctl_close);
}

static void on_ctl_written(uv_write_t *req, int status)
{
    pc_ctl_t *ctl = req->data;

    if (status < 0 ||
        uv_shutdown(&ctl->sreq, (uv_stream_t *)&ctl->pipe, on_ctl_shutdown) < 0)
        uv_close((uv_handle_t *)&ctl->pipe, on_ctl_close);
}

/* Sends what was replied plus the status line, then closes. */
static void ctl_finish(pc_ctl_t *ctl, int ok, const char *err)
{
    uv_buf_t b;

    ctl->done = 1;
    if (ok)
        strbuf_adds(&ctl->out, "OK\n");
    else
        strbuf_addf(&ctl->out, "ERR %s\n", err ? err : "failed");
    if (ctl->out.failed) {
        uv_close((uv_handle_t *)&ctl->pipe, on_ctl_close);
        return;
    }
    b = uv_buf_init(ctl->out.p, (unsigned)ctl->out.len);
    ctl->wreq.data = ctl;
    ctl->sreq.data = ctl;
    if (uv_write(&ctl->wreq, (uv_stream_t *)&ctl->pipe, &b, 1, on_ctl_written) < 0)
        uv_close((uv_handle_t *)&ctl->pipe, on_ctl_close);
}

static void ctl_run(pc_ctl_t *ctl)
{
    char *argv[CTL_ARGS_MAX + 1];
    const char *why = NULL;
    int argc;

    for (size_t i = 0; i < ctl->len; i++) {
        unsigned char ch = (unsigned char)ctl->line[i];
        if (ch < 0x20 && ch != '\t') {
            ctl_finish(ctl, 0, "control character in the command");
            return;
        }
    }
    argc = control_split_args(ctl->line, argv, CTL_ARGS_MAX, &why);
    if (argc < 0) {
        ctl_finish(ctl, 0, why);
        return;
    }
    if (argc == 0) {
        ctl_finish(ctl, 0, "empty command (try: help)");
        return;
    }
    argv[argc] = NULL;
    log_info(0, "control: %s", argv[0]);
    if (strcmp(argv[0], "help") == 0) {
        ctl_finish(ctl, cmd_help(ctl) == 0, NULL);
    } else if (strcmp(argv[0], "version") == 0) {
        control_reply(ctl, "portcullis " PACKAGE_VERSION);
        ctl_finish(ctl, 1, NULL);
    } else if (strcmp(argv[0], "stats") == 0) {
        ctl_finish(ctl, cmd_stats(ctl) == 0, NULL);
    } else if (strcmp(argv[0], "reload") == 0) {
        char err[1024] = "";
        int rc = server_reload_msg(ctl_srv, err, sizeof(err));
        ctl_finish(ctl, rc == 0, err);
    } else if (strcmp(argv[0], "reopen") == 0) {
        server_reopen_logs(ctl_srv);
        ctl_finish(ctl, 1, NULL);
    } else {
        ctl_cmd_t *c;
        for (c = ctl_cmds; c; c = c->next)
            if (strcmp(c->name, argv[0]) == 0)
                break;
        if (c == NULL) {
            char msg[160];
            snprintf(msg, sizeof(msg), "unknown command '%.64s' (try: help)", argv[0]);
            ctl_finish(ctl, 0, msg);
            return;
        }
        if (c->fn(c->p, ctl, argc, (const char *const *)argv) == 0) {
            ctl_finish(ctl, 1, NULL);
        } else {
            /* The handler's last line is the message. */
            char msg[512] = "failed";
            if (ctl->out.len) {
                char *end = ctl->out.p + ctl->out.len - 1;  /* its newline */
                char *start = end;
                while (start > ctl->out.p && start[-1] != '\n')
                    start--;
                snprintf(msg, sizeof(msg), "%.*s", (int)(end - start), start);
                ctl->out.len = (size_t)(start - ctl->out.p);
            }
            ctl_finish(ctl, 0, msg);
        }
    }
}

static void on_ctl_alloc(uv_handle_t *h, size_t hint, uv_buf_t *buf)
{
    pc_ctl_t *ctl = h->data;

    (void)hint;
    if (ctl->done)
        ctl->len = 0;  /* draining: the buffer is scratch */
    *buf = uv_buf_init(ctl->line + ctl->len, (unsigned)(CTL_LINE_MAX + 1 - ctl->len));
}

static void on_ctl_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
    pc_ctl_t *ctl = s->data;
    char *nl;

    (void)buf;
    if (ctl->done) {
        if (nread > 0)
            ctl->drained += (size_t)nread;
        if (nread < 0 || ctl->drained > CTL_DRAIN_MAX) {
            ctl->eof = 1;
            uv_read_stop(s);
            if (ctl->shut)
                uv_close((uv_handle_t *)&ctl->pipe, on_ctl_close);
        }
        return;
    }
    if (nread < 0) {
        if (nread == UV_EOF && ctl->len > 0) {
            ctl->eof = 1;
            uv_read_stop(s);
            ctl_finish(ctl, 0, "incomplete command (no newline)");
        } else
            uv_close((uv_handle_t *)&ctl->pipe, on_ctl_close);
        return;
    }
    ctl->len += (size_t)nread;
    nl = memchr(ctl->line, '\n', ctl->len);
    if (nl) {
        *nl = '\0';
        ctl->len = (size_t)(nl - ctl->line);
        if (ctl->len && ctl->line[ctl->len - 1] == '\r')
            ctl->line[--ctl->len] = '\0';
        ctl_run(ctl);
    } else if (ctl->len > CTL_LINE_MAX) {
        ctl_finish(ctl, 0, "command line too long");
    }
}

static void on_ctl_connection(uv_stream_t *server, int status)
{
    pc_ctl_t *ctl;
    struct ucred cred;
    socklen_t len = sizeof(cred);
    uv_os_fd_t fd;

    if (status < 0)
        return;
    ctl = calloc(1, sizeof(*ctl));
    if (ctl == NULL)
        return;
    strbuf_init(&ctl->out);
    uv_pipe_init(server->loop, &ctl->pipe, 0);
    ctl->pipe.data = ctl;
    if (uv_accept(server, (uv_stream_t *)&ctl->pipe) < 0) {
        uv_close((uv_handle_t *)&ctl->pipe, on_ctl_close);
        return;
    }
    if (uv_fileno((uv_handle_t *)&ctl->pipe, &fd) < 0 ||
        getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) < 0 ||
        (cred.uid != 0 && cred.uid != geteuid())) {
        log_warn(0, "control: refused a connection from uid %d",
                 len == sizeof(cred) ? (int)cred.uid : -1);
        uv_read_start((uv_stream_t *)&ctl->pipe, on_ctl_alloc, on_ctl_read);
        ctl_finish(ctl, 0, "permission denied");
        return;
    }
    uv_read_start((uv_stream_t *)&ctl->pipe, on_ctl_alloc, on_ctl_read);
}

int control_start(server_t *srv, const char *path, char *err, size_t errlen)
{
    struct sockaddr_un sun;
    mode_t old;
    int rc, fd;

    ctl_srv = srv;
    if (path == NULL)
        return 0;
    if (strlen(path) >= sizeof(sun.sun_path)) {
        snprintf(err, errlen, "control_socket '%s': path too long", path);
        return -1;
    }
    /* A live socket means another daemon; a dead one is left over. */
    fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd >= 0) {
        memset(&sun, 0, sizeof(sun));
        sun.sun_family = AF_UNIX;
        snprintf(sun.sun_path, sizeof(sun.sun_path), "%s", path);
        rc = connect(fd, (struct sockaddr *)&sun, sizeof(sun));
        close(fd);
        if (rc == 0) {
            snprintf(err, errlen, "control_socket '%s' is in use by another process", path);
            return -1;
        }
        unlink(path);
    }
    uv_pipe_init(srv->loop, &ctl_server, 0);
    old = umask(0177);
    rc = uv_pipe_bind(&ctl_server, path);
    umask(old);
    if (rc == 0)
        rc = uv_listen((uv_stream_t *)&ctl_server, 16, on_ctl_connection);
    if (rc < 0) {
        snprintf(err, errlen, "control_socket '%s': %s", path, uv_strerror(rc));
        uv_close((uv_handle_t *)&ctl_server, NULL);
        return -1;
    }
    chmod(path, 0600);
    ctl_path = strdup(path);
    ctl_listening = 1;
    return 0;
}

void control_stop(void)
{
    if (ctl_listening) {
        uv_close((uv_handle_t *)&ctl_server, NULL);
        ctl_listening = 0;
        if (ctl_path)
            unlink(ctl_path);
    }
    free(ctl_path);
    ctl_path = NULL;
}

void control_free(void)
{
    while (ctl_cmds) {
        ctl_cmd_t *c = ctl_cmds;
        ctl_cmds = c->next;
        free(c->name);
        free(c->usage);
        free(c);
    }
}

/* ---- the client: portcullis ctl ----------------------------------------- */

/* Adds arg to the command line, quoted when it needs to be. */
static void add_arg(strbuf_t *s, const char *arg)
{
    int quote = *arg == '\0' || strpbrk(arg, " \t\"\\") != NULL;

    if (s->len)
        strbuf_add(s, " ", 1);
    if (!quote) {
        strbuf_adds(s, arg);
        return;
    }
    strbuf_add(s, "\"", 1);
    for (; *arg; arg++) {
        if (*arg == '"' || *arg == '\\')
            strbuf_add(s, "\\", 1);
        strbuf_add(s, arg, 1);
    }
    strbuf_add(s, "\"", 1);
}

int control_client(const char *path, int argc, char **argv)
{
    struct sockaddr_un sun;
    strbuf_t cmd, reply;
    char buf[4096];
    ssize_t n;
    int fd, rc = 1;

    if (strlen(path) >= sizeof(sun.sun_path)) {
        fprintf(stderr, "portcullis ctl: socket path too long: %s\n", path);
        return 2;
    }
    strbuf_init(&cmd);
    for (int i = 0; i < argc; i++)
        add_arg(&cmd, argv[i]);
    strbuf_add(&cmd, "\n", 1);
    fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    memset(&sun, 0, sizeof(sun));
    sun.sun_family = AF_UNIX;
    snprintf(sun.sun_path, sizeof(sun.sun_path), "%s", path);
    if (fd < 0 || connect(fd, (struct sockaddr *)&sun, sizeof(sun)) < 0) {
        fprintf(stderr, "portcullis ctl: cannot connect to %s: %s (is the "
                "daemon running, with control_socket set?)\n", path, strerror(errno));
        if (fd >= 0)
            close(fd);
        strbuf_free(&cmd);
        return 2;
    }
    if (write(fd, cmd.p, cmd.len) != (ssize_t)cmd.len) {
        fprintf(stderr, "portcullis ctl: write: %s\n", strerror(errno));
        close(fd);
        strbuf_free(&cmd);
        return 2;
    }
    strbuf_free(&cmd);
    strbuf_init(&reply);
    while ((n = read(fd, buf, sizeof(buf))) > 0)
        strbuf_add(&reply, buf, (size_t)n);
    close(fd);
    if (reply.len == 0) {
        fprintf(stderr, "portcullis ctl: no answer\n");
        strbuf_free(&reply);
        return 2;
    }
    /* Answer lines to stdout; the status line decides the exit code. */
    {
        char *end = reply.p + reply.len;
        char *last;
        if (end > reply.p && end[-1] == '\n')
            end--;
        *end = '\0';
        last = strrchr(reply.p, '\n');
        last = last ? last + 1 : reply.p;
        fwrite(reply.p, 1, (size_t)(last - reply.p), stdout);
        if (strcmp(last, "OK") == 0) {
            rc = 0;
        } else if (strncmp(last, "ERR ", 4) == 0) {
            fprintf(stderr, "portcullis ctl: %s\n", last + 4);
        } else {
            fprintf(stderr, "portcullis ctl: unexpected answer: %s\n", last);
        }
    }
    strbuf_free(&reply);
    return rc;
}
