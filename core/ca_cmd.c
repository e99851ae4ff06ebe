/* ca_cmd.c - `portcullis ca init` and `portcullis ca show`: the admin's side of the local CA. */
#include <errno.h>
#include <grp.h>
#include <limits.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/x509.h>

#include "ca.h"
#include "ca_cmd.h"
#include "conf.h"
#include "tls_x509.h"

static void usage(FILE *out)
{
    fprintf(out,
            "usage: portcullis ca init [-d DIR | -c FILE] [--rsa] [--cn NAME] [--org NAME]\n"
            "                          [--days N] [--force]\n"
            "       portcullis ca show [-d DIR | -c FILE]\n"
            "  -d DIR       the CA directory (ca.crt, ca.key)\n"
            "  -c FILE      read ca_dir from this configuration (the default)\n"
            "  --rsa        an RSA-2048 key instead of ECDSA P-256\n"
            "  --cn NAME    common name (default: Portcullis local CA (HOSTNAME))\n"
            "  --org NAME   organization (default: Portcullis)\n"
            "  --days N     validity in days (default 3650)\n"
            "  --force      replace an existing CA (clients must trust the new one)\n"
            "docs/https.md explains how to install ca.crt in browsers and systems.\n");
}

/* Prints the SHA-256 fingerprint the way browsers show it: AB:CD:... */
static void print_fingerprint(const char *hex)
{
    printf("fingerprint:  SHA-256 ");
    for (size_t k = 0; hex[k] != '\0' && hex[k + 1] != '\0'; k += 2)
        printf("%s%c%c", k ? ":" : "", hex[k] >= 'a' ? hex[k] - 'a' + 'A' : hex[k],
               hex[k + 1] >= 'a' ? hex[k + 1] - 'a' + 'A' : hex[k + 1]);
    printf("\n");
}

static int show(const char *dir)
{
    char err[1024], from[64], to[64];
    tls_ca_t *ca = tls_ca_load(dir, err, sizeof(err));
    X509 *cert;

    if (ca == NULL) {
        fprintf(stderr, "portcullis ca: %s\n", err);
        return 1;
    }
    cert = tls_ca_cert(ca);
    printf("directory:    %s\n", dir);
    printf("certificate:  %s/%s (install it in the clients)\n", dir, TLS_CA_CERT_FILE);
    printf("subject:      %s\n", tls_ca_subject(ca));
    printf("key:          %s\n", tls_ca_key_type(ca));
    print_fingerprint(tls_ca_fingerprint(ca));
    printf("valid:        %s to %s\n",
           tls_x509_time_str(X509_get0_notBefore(cert), from, sizeof(from)),
           tls_x509_time_str(X509_get0_notAfter(cert), to, sizeof(to)));
    tls_ca_unref(ca);
    return 0;
}

/* The daemon drops root for conf->user after binding, and a reload reads
 * the CA again as that user: root's new key must become readable by it
 * (still mode 0600). Returns 0 or -1 (message printed). */
static int give_to_user(const conf_t *conf, const char *dir)
{
    char path[PATH_MAX];
    struct passwd *pw;
    struct group *gr;
    gid_t gid;

    if (conf == NULL || conf->user == NULL || geteuid() != 0)
        return 0;
    pw = getpwnam(conf->user);
    if (pw == NULL) {
        fprintf(stderr, "portcullis ca: user '%s' of the configuration does not exist; "
                "ca.key stays root's\n", conf->user);
        return -1;
    }
    gid = pw->pw_gid;
    if (conf->group != NULL) {
        gr = getgrnam(conf->group);
        if (gr == NULL) {
            fprintf(stderr, "portcullis ca: group '%s' does not exist\n", conf->group);
            return -1;
        }
        gid = gr->gr_gid;
    }
    snprintf(path, sizeof(path), "%s/%s", dir, TLS_CA_KEY_FILE);
    if (chown(path, pw->pw_uid, gid) < 0) {
        fprintf(stderr, "portcullis ca: cannot chown %s: %s\n", path, strerror(errno));
        return -1;
    }
    printf("  %s belongs to '%s', the daemon's user (from the configuration)\n", path,
           conf->user);
    return 0;
}

/* Parses a day count: 1..36500. */
static int parse_days(const char *s, int *days)
{
    char *end;
    long v;

    errno = 0;
    v = strtol(s, &end, 10);
    if (errno != 0 || end == s || *end != '\0' || v < 1 || v > 36500)
        return -1;
    *days = (int)v;
    return 0;
}

int ca_cmd_main(int argc, char **argv, const char *default_conf)
{
    const char *dir = NULL, *conf_path = NULL, *verb;
    char err[1024];
    tls_ca_opts_t opts;
    conf_t *conf = NULL;
    int i, rc, init;

    memset(&opts, 0, sizeof(opts));
    if (argc < 2 || strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0) {
        usage(argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    verb = argv[1];
    init = strcmp(verb, "init") == 0;
    if (!init && strcmp(verb, "show") != 0) {
        fprintf(stderr, "portcullis ca: unknown command '%s'\n", verb);
        usage(stderr);
        return 2;
    }
    for (i = 2; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        int takes = strcmp(a, "-d") == 0 || strcmp(a, "-c") == 0 ||
                    (init && (strcmp(a, "--cn") == 0 || strcmp(a, "--org") == 0 ||
                              strcmp(a, "--days") == 0));

        if (takes && v == NULL) {
            fprintf(stderr, "portcullis ca: %s needs a value\n", a);
            return 2;
        }
        if (strcmp(a, "-d") == 0)
            dir = v;
        else if (strcmp(a, "-c") == 0)
            conf_path = v;
        else if (init && strcmp(a, "--cn") == 0)
            opts.cn = v;
        else if (init && strcmp(a, "--org") == 0)
            opts.org = v;
        else if (init && strcmp(a, "--days") == 0) {
            if (parse_days(v, &opts.days) < 0) {
                fprintf(stderr, "portcullis ca: --days takes 1 to 36500, not '%s'\n", v);
                return 2;
            }
        } else if (init && strcmp(a, "--rsa") == 0) {
            opts.rsa = 1;
            continue;
        } else if (init && strcmp(a, "--force") == 0) {
            opts.force = 1;
            continue;
        } else {
            fprintf(stderr, "portcullis ca %s: unknown option '%s'\n", verb, a);
            usage(stderr);
            return 2;
        }
        i++;
    }
    if (dir != NULL && conf_path != NULL) {
        fprintf(stderr, "portcullis ca: -d and -c exclude each other\n");
        return 2;
    }
    if (dir == NULL) {
        conf = conf_load(conf_path != NULL ? conf_path : default_conf, err, sizeof(err));
        if (conf == NULL) {
            fprintf(stderr, "portcullis ca: %s\n(name the CA directory with -d DIR)\n", err);
            return 1;
        }
        dir = conf->ca_dir;
    }
    if (init) {
        rc = tls_ca_create(dir, &opts, err, sizeof(err));
        if (rc < 0) {
            fprintf(stderr, "portcullis ca: %s\n", err);
            conf_unref(conf);
            return 1;
        }
        printf("created a new CA in %s:\n  %s/%s  the certificate: install it in the "
               "clients (docs/https.md)\n  %s/%s  its key, mode 0600: keep it private, "
               "never copy it to a client\n",
               dir, dir, TLS_CA_CERT_FILE, dir, TLS_CA_KEY_FILE);
        if (give_to_user(conf, dir) < 0) {
            conf_unref(conf);
            return 1;
        }
    }
    rc = show(dir);
    conf_unref(conf);
    return rc;
}
