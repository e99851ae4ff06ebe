/* geoip_domains.c - the domain exception list of the geoip plugin, matched at label boundaries. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "geoip_domains.h"
#include "netaddr.h"

#define DOMAIN_MAX 253
#define LABEL_MAX 63

/* Lowercases entry into out (DOMAIN_MAX + 1 bytes) without "*." / "." in
 * front or a dot behind. Returns 0, or -1 when it is not a host name or an
 * IP literal. */
static int normalise(const char *entry, char *out)
{
    const char *p = entry;
    size_t len, label = 0;
    netaddr_t ip;

    if (strncmp(p, "*.", 2) == 0)
        p += 2;
    else if (*p == '.')
        p++;
    len = strlen(p);
    if (len > 0 && p[len - 1] == '.')
        len--;
    if (len == 0 || len > DOMAIN_MAX)
        return -1;
    for (size_t i = 0; i < len; i++)
        out[i] = (char)(p[i] >= 'A' && p[i] <= 'Z' ? p[i] + 32 : p[i]);
    out[len] = '\0';
    if (netaddr_parse(out, &ip) == 0)
        return 0;
    for (size_t i = 0; i < len; i++) {
        char c = out[i];
        if (c == '.') {
            if (label == 0)
                return -1;
            label = 0;
            continue;
        }
        if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
              c == '_'))
            return -1;
        if (++label > LABEL_MAX)
            return -1;
    }
    return 0;
}

int geoip_domains_add(geoip_domains_t *d, const char *entry, char *err,
                      size_t errlen)
{
    char name[DOMAIN_MAX + 1];
    char *copy;

    if (normalise(entry, name) < 0) {
        snprintf(err, errlen, "invalid domain '%s'", entry);
        return -1;
    }
    if (d->n == d->cap) {
        size_t cap = d->cap ? d->cap * 2 : 16;
        char **v = realloc(d->v, cap * sizeof(*v));
        if (v == NULL)
            goto oom;
        d->v = v;
        d->cap = cap;
    }
    copy = strdup(name);
    if (copy == NULL)
        goto oom;
    d->v[d->n++] = copy;
    return 0;
oom:
    snprintf(err, errlen, "out of memory");
    return -1;
}

int geoip_domains_load(geoip_domains_t *d, const char *path, char *err,
                       size_t errlen)
{
    FILE *f = fopen(path, "r");
    char *line = NULL, *save, *tok;
    size_t cap = 0;
    int lineno = 0, rc = -1;
    char msg[300];

    if (f == NULL) {
        snprintf(err, errlen, "cannot open %s: %s", path, strerror(errno));
        return -1;
    }
    while (getline(&line, &cap, f) >= 0) {
        char *hash = strchr(line, '#');
        lineno++;
        if (hash)
            *hash = '\0';
        for (tok = strtok_r(line, " \t\r\n", &save); tok;
             tok = strtok_r(NULL, " \t\r\n", &save)) {
            if (geoip_domains_add(d, tok, msg, sizeof(msg)) < 0) {
                snprintf(err, errlen, "%s:%d: %s", path, lineno, msg);
                goto fail;
            }
        }
    }
    if (ferror(f)) {
        snprintf(err, errlen, "cannot read %s: %s", path, strerror(errno));
        goto fail;
    }
    rc = 0;
fail:
    free(line);
    fclose(f);
    return rc;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

void geoip_domains_finish(geoip_domains_t *d)
{
    size_t j = 0;

    if (d->n > 1)
        qsort(d->v, d->n, sizeof(*d->v), cmp_str);
    for (size_t i = 0; i < d->n; i++) {
        if (j > 0 && strcmp(d->v[j - 1], d->v[i]) == 0)
            free(d->v[i]);
        else
            d->v[j++] = d->v[i];
    }
    d->n = j;
}

static int has(const geoip_domains_t *d, const char *name)
{
    size_t lo = 0, hi = d->n;

    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = strcmp(name, d->v[mid]);
        if (c == 0)
            return 1;
        if (c > 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return 0;
}

int geoip_domains_match(const geoip_domains_t *d, const char *host)
{
    netaddr_t ip;

    if (d->n == 0 || host == NULL || *host == '\0')
        return 0;
    if (has(d, host))
        return 1;
    /* An IP literal has no parent domains ("0.2" must not match 127.0.0.2),
     * and an IP entry is no parent domain (192.0.2.7 of x.192.0.2.7). */
    if (strchr(host, ':') || netaddr_parse(host, &ip) == 0)
        return 0;
    /* Each parent at a label boundary; a host has at most 127 labels. */
    for (const char *p = strchr(host, '.'); p; p = strchr(p + 1, '.'))
        if (p[1] != '\0' && has(d, p + 1) && netaddr_parse(p + 1, &ip) < 0)
            return 1;
    return 0;
}

void geoip_domains_free(geoip_domains_t *d)
{
    for (size_t i = 0; i < d->n; i++)
        free(d->v[i]);
    free(d->v);
    memset(d, 0, sizeof(*d));
}
