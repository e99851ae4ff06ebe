/* tls_conf.c - checks what the TLS directives name: CA, upstream CAs, no-intercept list. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/x509_vfy.h>

#include "mint.h"
#include "tls_conf.h"
#include "tls_x509.h"

#define LIST_LINE_MAX 1024

/* The node of a top-level directive, for its FILE:LINE; NULL when unset. */
static const conf_node_t *find_node(const conf_t *conf, const char *name)
{
    const conf_node_t *n;

    if (conf->tree == NULL)
        return NULL;
    for (n = conf_tree_root(conf->tree)->child; n != NULL; n = n->next)
        if (strcmp(n->name, name) == 0)
            return n;
    return NULL;
}

/* Prefixes err with "FILE:LINE: name: " of the directive (or the main file). */
static void at(const conf_t *conf, const char *name, const char *msg, char *err,
               size_t errlen)
{
    const conf_node_t *n = find_node(conf, name);

    if (n != NULL)
        snprintf(err, errlen, "%s:%d: %s: %s", n->file, n->line, name, msg);
    else
        snprintf(err, errlen, "%s: %s: %s", conf->path, name, msg);
}

static void list_free(conf_strlist_t *l)
{
    for (int k = 0; k < l->n; k++)
        free(l->v[k]);
    free(l->v);
    l->v = NULL;
    l->n = 0;
}

int tls_no_intercept_read(const char *path, conf_strlist_t *out, char *err, size_t errlen)
{
    char line[LIST_LINE_MAX + 2], norm[TLS_MINT_HOST_MAX + 1], why[160];
    FILE *f;
    int lineno = 0, cap = 0, is_ip;

    out->v = NULL;
    out->n = 0;
    f = fopen(path, "re");
    if (f == NULL) {
        snprintf(err, errlen, "%s: cannot open: %s", path, strerror(errno));
        return -1;
    }
    while (fgets(line, sizeof(line), f) != NULL) {
        char *s = line, *e, *hash;
        size_t len = strlen(line);

        lineno++;
        if (len > LIST_LINE_MAX && line[len - 1] != '\n') {
            snprintf(err, errlen, "%s:%d: line too long", path, lineno);
            goto fail;
        }
        hash = strchr(s, '#');
        if (hash != NULL)
            *hash = '\0';
        s += strspn(s, " \t\r\n");
        e = s + strcspn(s, " \t\r\n");
        if (*s == '\0')
            continue;
        if (e[strspn(e, " \t\r\n")] != '\0') {
            snprintf(err, errlen, "%s:%d: one entry per line", path, lineno);
            goto fail;
        }
        *e = '\0';
        if (strncmp(s, "*.", 2) == 0)
            s += 2;
        else if (s[0] == '.')
            s += 1;
        if (tls_mint_host(s, norm, sizeof(norm), &is_ip, why, sizeof(why)) < 0) {
            snprintf(err, errlen, "%s:%d: '%s' is not a domain or IP address", path, lineno,
                     s);
            goto fail;
        }
        if (out->n == cap) {
            int ncap = cap ? cap * 2 : 16;
            char **nv = realloc(out->v, (size_t)ncap * sizeof(*nv));
            if (nv == NULL)
                goto nomem;
            out->v = nv;
            cap = ncap;
        }
        out->v[out->n] = strdup(norm);
        if (out->v[out->n] == NULL)
            goto nomem;
        out->n++;
    }
    if (ferror(f)) {
        snprintf(err, errlen, "%s: cannot read: %s", path, strerror(errno));
        goto fail;
    }
    fclose(f);
    return 0;

nomem:
    snprintf(err, errlen, "%s: out of memory", path);
fail:
    fclose(f);
    list_free(out);
    return -1;
}

X509_STORE *tls_upstream_store_new(const char *extra_file, char *err, size_t errlen)
{
    X509_STORE *st = X509_STORE_new();
    X509_LOOKUP *lu;
    char why[160];
    FILE *f;

    ERR_clear_error();
    if (st == NULL || X509_STORE_set_default_paths(st) != 1) {
        snprintf(err, errlen, "cannot set up the system trust store: %s",
                 tls_x509_error(why, sizeof(why), "out of memory"));
        goto fail;
    }
    if (extra_file != NULL) {
        /* fopen first: OpenSSL's message for a missing file is vague. */
        f = fopen(extra_file, "re");
        if (f == NULL) {
            snprintf(err, errlen, "%s: cannot open: %s", extra_file, strerror(errno));
            goto fail;
        }
        fclose(f);
        lu = X509_STORE_add_lookup(st, X509_LOOKUP_file());
        if (lu == NULL || X509_load_cert_crl_file(lu, extra_file, X509_FILETYPE_PEM) <= 0) {
            snprintf(err, errlen, "%s: no PEM certificate in it (%s)", extra_file,
                     tls_x509_error(why, sizeof(why), "empty"));
            goto fail;
        }
    }
    ERR_clear_error();
    return st;

fail:
    X509_STORE_free(st);
    ERR_clear_error();
    return NULL;
}

int tls_conf_check(const conf_t *conf, tls_ca_t **ca, char *err, size_t errlen)
{
    char msg[1024];
    conf_strlist_t list;
    X509_STORE *st;
    tls_ca_t *loaded = NULL;

    if (ca != NULL)
        *ca = NULL;
    if (conf->upstream_ca_file != NULL) {
        /* Only the extra file is checked here: the system store is
         * whatever the distribution ships. */
        st = tls_upstream_store_new(conf->upstream_ca_file, msg, sizeof(msg));
        if (st == NULL) {
            at(conf, "upstream_ca_file", msg, err, errlen);
            return -1;
        }
        X509_STORE_free(st);
    }
    if (conf->no_intercept != NULL) {
        if (tls_no_intercept_read(conf->no_intercept, &list, msg, sizeof(msg)) < 0) {
            at(conf, "no_intercept", msg, err, errlen);
            return -1;
        }
        list_free(&list);
    }
    if (conf_intercept_wanted(conf)) {  /* globally or in a policy block */
        loaded = tls_ca_load(conf->ca_dir, msg, sizeof(msg));
        if (loaded == NULL) {
            at(conf, find_node(conf, "ca_dir") != NULL ? "ca_dir" : "intercept", msg, err,
               errlen);
            return -1;
        }
        if (ca != NULL)
            *ca = loaded;
        else
            tls_ca_unref(loaded);
    }
    return 0;
}
