/* main.c - command line, configuration check, and the daemon's start. */
#include "config.h"

#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <uv.h>

#include "ca_cmd.h"
#include "conf.h"
#include "control.h"
#include "log.h"
#include "plugin_host.h"
#include "server.h"

#ifndef SYSCONFDIR
#define SYSCONFDIR "/etc"
#endif
#define DEFAULT_CONF SYSCONFDIR "/portcullis/portcullis.conf"

static void usage(FILE *out)
{
    fprintf(out,
            "usage: portcullis [-t] [-c FILE]\n"
            "       portcullis ctl [-c FILE | -s SOCKET] COMMAND [ARGS...]\n"
            CA_CMD_USAGE
            "  -c FILE   configuration file (default " DEFAULT_CONF ")\n"
            "  -t        check the configuration and exit (0 if it is valid)\n"
            "  -v        print the version and exit\n"
            "  -h        this help\n"
            "ctl sends COMMAND to the running daemon's control_socket (found in\n"
            "the configuration, or given with -s); `portcullis ctl help` lists\n"
            "the commands. ca creates (init) or shows the local CA of TLS\n"
            "interception (docs/https.md).\n"
            "Runs in the foreground. Signals: HUP reloads, TERM/INT stop "
            "gracefully, USR1 reopens logs.\n");
}

/* Checks the configuration: exit 0, or "FILE:LINE: message" and exit 1. */
static int check_config(const char *path)
{
    char err[1024];
    conf_t *conf = server_load_conf(path, err, sizeof(err));

    if (conf == NULL) {
        fprintf(stderr, "%s\n", err);
        return 1;
    }
    conf_unref(conf);
    plugins_shutdown();
    fprintf(stderr, "portcullis: configuration file %s test is successful\n", path);
    return 0;
}

/* A proxy holds two descriptors per request; ask for as many as allowed. */
static void raise_fd_limit(void)
{
    struct rlimit rl;

    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
}

/* portcullis ctl [-c FILE | -s SOCKET] COMMAND [ARGS...] */
static int ctl_main(int argc, char **argv)
{
    const char *conf_path = DEFAULT_CONF, *sock = NULL;
    char err[1024];
    int i = 1, rc;

    while (i < argc && argv[i][0] == '-') {
        if (strcmp(argv[i], "-c") == 0 && i + 1 < argc) {
            conf_path = argv[i + 1];
            i += 2;
        } else if (strcmp(argv[i], "-s") == 0 && i + 1 < argc) {
            sock = argv[i + 1];
            i += 2;
        } else if (strcmp(argv[i], "--") == 0) {
            i++;
            break;
        } else {
            usage(stderr);
            return 2;
        }
    }
    if (i >= argc) {
        usage(stderr);
        return 2;
    }
    if (sock == NULL) {
        conf_t *conf = conf_load(conf_path, err, sizeof(err));
        if (conf == NULL) {
            fprintf(stderr, "%s\n", err);
            return 2;
        }
        if (conf->control_socket == NULL) {
            fprintf(stderr, "portcullis ctl: %s sets no control_socket\n", conf_path);
            conf_unref(conf);
            return 2;
        }
        rc = control_client(conf->control_socket, argc - i, argv + i);
        conf_unref(conf);
        return rc;
    }
    return control_client(sock, argc - i, argv + i);
}

int main(int argc, char **argv)
{
    const char *conf_path = DEFAULT_CONF;
    int test = 0, opt, rc;
    char err[1024];
    uv_loop_t *loop;
    server_t srv;

    if (argc > 1 && strcmp(argv[1], "ctl") == 0) {
        log_init();
        return ctl_main(argc - 1, argv + 1);
    }
    if (argc > 1 && strcmp(argv[1], "ca") == 0)
        return ca_cmd_main(argc - 1, argv + 1, DEFAULT_CONF);
    while ((opt = getopt(argc, argv, "c:thv")) != -1) {
        switch (opt) {
        case 'c':
            conf_path = optarg;
            break;
        case 't':
            test = 1;
            break;
        case 'v':
            printf("portcullis " PACKAGE_VERSION "\n");
            return 0;
        case 'h':
            usage(stdout);
            return 0;
        default:
            usage(stderr);
            return 2;
        }
    }
    if (optind < argc) {
        usage(stderr);
        return 2;
    }
    log_init();
    if (test)
        return check_config(conf_path);

    signal(SIGPIPE, SIG_IGN);
    raise_fd_limit();
    /* getaddrinfo and file writes share libuv's pool; a few slow DNS
     * servers must not starve the log writes. */
    setenv("UV_THREADPOOL_SIZE", "16", 0);
    loop = uv_default_loop();
    if (server_start(&srv, loop, conf_path, err, sizeof(err)) < 0) {
        fprintf(stderr, "portcullis: %s\n", err);
        log_emerg(0, "cannot start: %s", err);
        server_abandon(&srv);
        uv_loop_close(loop);
        return 1;
    }
    rc = server_run(&srv);
    uv_loop_close(loop);
    return rc;
}
