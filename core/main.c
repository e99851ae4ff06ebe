/* main.c - command line, configuration check, and the daemon's start. */
#include "config.h"

#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <uv.h>

#include "conf.h"
#include "log.h"
#include "server.h"

#ifndef SYSCONFDIR
#define SYSCONFDIR "/etc"
#endif
#define DEFAULT_CONF SYSCONFDIR "/portcullis/portcullis.conf"

static void usage(FILE *out)
{
    fprintf(out,
            "usage: portcullis [-t] [-c FILE]\n"
            "  -c FILE   configuration file (default " DEFAULT_CONF ")\n"
            "  -t        check the configuration and exit (0 if it is valid)\n"
            "  -v        print the version and exit\n"
            "  -h        this help\n"
            "Runs in the foreground. Signals: HUP reloads, TERM/INT stop "
            "gracefully, USR1 reopens logs.\n");
}

/* Checks the configuration: exit 0, or "FILE:LINE: message" and exit 1. */
static int check_config(const char *path)
{
    char err[1024];
    conf_t *conf = conf_load(path, err, sizeof(err));

    if (conf == NULL) {
        fprintf(stderr, "%s\n", err);
        return 1;
    }
    conf_unref(conf);
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

int main(int argc, char **argv)
{
    const char *conf_path = DEFAULT_CONF;
    int test = 0, opt, rc;
    char err[1024];
    uv_loop_t *loop;
    server_t srv;

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
        return 1;
    }
    rc = server_run(&srv);
    uv_loop_close(loop);
    return rc;
}
