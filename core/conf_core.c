/* conf_core.c - the core directive table; builds, shares and frees conf_t snapshots. */
#include <netinet/in.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "conf.h"

#ifndef PLUGINDIR
#define PLUGINDIR "/usr/local/lib/portcullis/plugins"
#endif
#ifndef LOCALSTATEDIR
#define LOCALSTATEDIR "/usr/local/var"
#endif
#define DEFAULT_CA_DIR LOCALSTATEDIR "/lib/portcullis/ca"

#define CONF_MULTI 0x1  /* may appear more than once */
#define CONF_BLOCK 0x2  /* needs a '{ ... }' block */
#define CONF_FULLERR 0x4  /* the setter writes a whole "FILE:LINE: message" */

#define KB 1024ull
#define MB (1024ull * 1024ull)
#define SEC 1000ull
#define MIN (60ull * SEC)

struct build;
typedef struct conf_directive conf_directive_t;

/* A setter applies one node to the snapshot. Returns 0, or -1 with a
 * message (no FILE:LINE, no directive name) in err. */
typedef int (*conf_set_fn)(conf_t *conf, struct build *b, const conf_node_t *n,
                           const conf_directive_t *d, char *err, size_t errlen);

struct conf_directive {
    const char *name;
    int min_args;
    int max_args;  /* -1: no limit */
    unsigned flags;
    conf_set_fn set;
    size_t offset;  /* of the field in conf_t */
    uint64_t lo;    /* bounds of numbers, sizes (bytes), durations (ms) */
    uint64_t hi;
};

/* What the build remembers between directives, freed when it ends. */
struct build {
    const conf_node_t **first;      /* per table entry: first occurrence */
    const conf_node_t **listen_at;  /* node of each conf->listen entry */
    int listen_cap;
    const conf_node_t **log_at;     /* node of each conf->access_logs entry */
    int log_cap;
    const conf_node_t *log_off;     /* "access_log off" */
    const conf_node_t **plugins;    /* plugin blocks, for duplicate names */
    int nplugins, plugins_cap;
    int ports_cap;
    int ports_given;                /* connect_ports replaced the default */
    int tls_ports_cap;
    int tls_ports_given;            /* connect_require_tls replaced the default */
};

/* Makes room for one more element in arr (n used, *cap allocated).
 * Returns the array to use from now on, or NULL with arr and *cap unchanged
 * (arr still owned by the caller). */
static void *grow(void *arr, int n, int *cap, size_t elem)
{
    void *p;
    int ncap;

    if (n < *cap)
        return arr;
    ncap = *cap ? *cap * 2 : 4;
    p = realloc(arr, (size_t)ncap * elem);
    if (p == NULL)
        return NULL;
    *cap = ncap;
    return p;
}

static void fmt_size(uint64_t v, char *buf, size_t len)
{
    if (v >= MB && v % MB == 0)
        snprintf(buf, len, "%lluM", (unsigned long long)(v / MB));
    else if (v >= KB && v % KB == 0)
        snprintf(buf, len, "%lluk", (unsigned long long)(v / KB));
    else
        snprintf(buf, len, "%llu", (unsigned long long)v);
}

static int at_least_one_char(const char *s, char *err, size_t errlen)
{
    if (s[0] != '\0')
        return 0;
    snprintf(err, errlen, "empty argument");
    return -1;
}

/* ---- generic setters ----------------------------------------------------- */

static int set_flag(conf_t *conf, struct build *b, const conf_node_t *n,
                    const conf_directive_t *d, char *err, size_t errlen)
{
    return conf_parse_flag(n->argv[0], (int *)((char *)conf + d->offset), err, errlen);
}

static int set_int(conf_t *conf, struct build *b, const conf_node_t *n,
                   const conf_directive_t *d, char *err, size_t errlen)
{
    return conf_parse_int(n->argv[0], (long)d->lo, (long)d->hi,
                          (long *)((char *)conf + d->offset), err, errlen);
}

static int set_size(conf_t *conf, struct build *b, const conf_node_t *n,
                    const conf_directive_t *d, char *err, size_t errlen)
{
    char lo[32], hi[32];
    uint64_t v;

    if (conf_parse_size(n->argv[0], &v, err, errlen) < 0)
        return -1;
    if (v < d->lo || v > d->hi) {
        fmt_size(d->lo, lo, sizeof(lo));
        fmt_size(d->hi, hi, sizeof(hi));
        snprintf(err, errlen, "'%s' is out of range (%s..%s)", n->argv[0], lo, hi);
        return -1;
    }
    *(uint64_t *)((char *)conf + d->offset) = v;
    return 0;
}

static int set_duration(conf_t *conf, struct build *b, const conf_node_t *n,
                        const conf_directive_t *d, char *err, size_t errlen)
{
    uint64_t v;

    if (conf_parse_duration(n->argv[0], &v, err, errlen) < 0)
        return -1;
    if (v < d->lo) {
        snprintf(err, errlen, "'%s' is too short (at least %llums)", n->argv[0],
                 (unsigned long long)d->lo);
        return -1;
    }
    *(uint64_t *)((char *)conf + d->offset) = v;
    return 0;
}

/* A path relative to the file holding the directive. */
static int set_path(conf_t *conf, struct build *b, const conf_node_t *n,
                    const conf_directive_t *d, char *err, size_t errlen)
{
    char **field = (char **)((char *)conf + d->offset);
    char *p;

    if (at_least_one_char(n->argv[0], err, errlen) < 0)
        return -1;
    p = conf_path_resolve(n, n->argv[0]);
    if (p == NULL) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    free(*field);
    *field = p;
    return 0;
}

/* ---- the core's own setters ---------------------------------------------- */

static uint16_t ss_port(const struct sockaddr_storage *ss)
{
    if (ss->ss_family == AF_INET)
        return ntohs(((const struct sockaddr_in *)ss)->sin_port);
    return ntohs(((const struct sockaddr_in6 *)ss)->sin6_port);
}

/* 1 when a and b are the same socket address, 2 when binding both would
 * fail because one is a wildcard covering the other ([::] is dual stack),
 * else 0. */
static int listen_clash(const netaddr_port_t *a, const netaddr_port_t *b)
{
    netaddr_t x, y;
    static const uint8_t zero[16];
    int xany, yany;

    if (ss_port(&a->ss) != ss_port(&b->ss))
        return 0;
    if (netaddr_from_sockaddr(&x, (const struct sockaddr *)&a->ss) < 0 ||
        netaddr_from_sockaddr(&y, (const struct sockaddr *)&b->ss) < 0)
        return 0;
    if (netaddr_equal(&x, &y))
        return 1;
    xany = memcmp(x.a, zero, x.family == AF_INET ? 4 : 16) == 0;
    yany = memcmp(y.a, zero, y.family == AF_INET ? 4 : 16) == 0;
    if ((xany && x.family == AF_INET6) || (yany && y.family == AF_INET6))
        return 2;
    if (x.family == y.family && (xany || yany))
        return 2;
    return 0;
}

static int set_listen(conf_t *conf, struct build *b, const conf_node_t *n,
                      const conf_directive_t *d, char *err, size_t errlen)
{
    int k, j;

    for (k = 0; k < n->argc; k++) {
        netaddr_port_t lp, *nl;
        const conf_node_t **na;
        int cap = b->listen_cap;

        if (netaddr_parse_hostport(n->argv[k], &lp, err, errlen) < 0)
            return -1;
        for (j = 0; j < conf->nlisten; j++) {
            const conf_node_t *o = b->listen_at[j];
            int c = listen_clash(&lp, &conf->listen[j]);
            if (c == 1) {
                snprintf(err, errlen, "'%s' is duplicate (first at %s:%d)",
                         lp.text, o->file, o->line);
                return -1;
            }
            if (c == 2) {
                snprintf(err, errlen, "'%s' overlaps '%s' (%s:%d)", lp.text,
                         conf->listen[j].text, o->file, o->line);
                return -1;
            }
        }
        /* Both arrays grow in step: listen_cap is the capacity of both. */
        nl = grow(conf->listen, conf->nlisten, &cap, sizeof(*nl));
        if (nl == NULL)
            goto nomem;
        conf->listen = nl;
        na = grow(b->listen_at, conf->nlisten, &b->listen_cap, sizeof(*na));
        if (na == NULL)
            goto nomem;
        b->listen_at = na;
        conf->listen[conf->nlisten] = lp;
        b->listen_at[conf->nlisten] = n;
        conf->nlisten++;
    }
    return 0;

nomem:
    snprintf(err, errlen, "out of memory");
    return -1;
}

static int set_allow_clients(conf_t *conf, struct build *b, const conf_node_t *n,
                             const conf_directive_t *d, char *err, size_t errlen)
{
    int k;

    if (conf->allow_clients == NULL) {
        conf->allow_clients = netaddr_set_new();
        if (conf->allow_clients == NULL) {
            snprintf(err, errlen, "out of memory");
            return -1;
        }
    }
    for (k = 0; k < n->argc; k++)
        if (netaddr_set_add_text(conf->allow_clients, n->argv[k], err, errlen) < 0)
            return -1;
    return 0;
}

/* 1 when h[0..n) is the HOST of a PAC "PROXY HOST:PORT": a name of
 * letters, digits and '-' in dot-separated labels, or an IPv6 address in
 * brackets. */
static int proxy_host_ok(const char *h, size_t n)
{
    if (n >= 2 && h[0] == '[' && h[n - 1] == ']') {
        char a[NETADDR_STRLEN];
        netaddr_t addr;
        if (n - 2 >= sizeof(a))
            return 0;
        memcpy(a, h + 1, n - 2);
        a[n - 2] = '\0';
        return strchr(a, ':') != NULL && netaddr_parse(a, &addr) == 0;
    }
    for (size_t i = 0; i < n; i++) {
        char c = h[i];
        if (c == '.') {
            if (i == 0 || h[i - 1] == '.' || i + 1 == n)
                return 0;
        } else if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
                     (c >= '0' && c <= '9') || c == '-')) {
            return 0;
        }
    }
    return n > 0;
}

/* Appends every argument to the conf_strlist_t at d->offset, after
 * checking it with the kind in d->lo: 0 any word, 1 CIDR, 2 domain, 3
 * HOST:PORT. */
static int set_strlist(conf_t *conf, struct build *b, const conf_node_t *n,
                       const conf_directive_t *d, char *err, size_t errlen)
{
    conf_strlist_t *l = (conf_strlist_t *)((char *)conf + d->offset);
    char **nv;

    (void)b;
    for (int k = 0; k < n->argc; k++) {
        const char *s = n->argv[k];
        if (d->lo == 1) {
            netaddr_set_t *tmp = netaddr_set_new();
            int rc = tmp ? netaddr_set_add_text(tmp, s, err, errlen) : -1;
            netaddr_set_free(tmp);
            if (rc < 0)
                return -1;
        } else if (d->lo == 2) {
            for (const char *p = s; *p; p++) {
                if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
                      (*p >= '0' && *p <= '9') || *p == '-' || *p == '.' || *p == '_')) {
                    snprintf(err, errlen, "invalid domain '%s'", s);
                    return -1;
                }
            }
        } else if (d->lo == 3) {
            const char *colon = strrchr(s, ':');
            uint16_t port;
            if (colon == NULL || colon == s || netaddr_parse_port(colon + 1, &port) < 0 ||
                !proxy_host_ok(s, (size_t)(colon - s))) {
                snprintf(err, errlen, "'%s' is not HOST:PORT", s);
                return -1;
            }
        }
        nv = realloc(l->v, (size_t)(l->n + 1) * sizeof(*nv));
        if (nv == NULL || (nv[l->n] = strdup(s)) == NULL) {
            if (nv)
                l->v = nv;
            snprintf(err, errlen, "out of memory");
            return -1;
        }
        l->v = nv;
        l->n++;
    }
    if (d->offset == offsetof(conf_t, pac_bypass_networks))
        conf->pac_bypass_networks_given = 1;
    return 0;
}

static void strlist_free(conf_strlist_t *l)
{
    for (int k = 0; k < l->n; k++)
        free(l->v[k]);
    free(l->v);
}

/* Parses "443" or "1000-2000". Returns 0, or -1 with a message. */
static int parse_port_range(const char *s, conf_port_range_t *r, char *err, size_t errlen)
{
    const char *dash = strchr(s, '-');
    char lo[8];
    size_t l;

    if (dash == NULL) {
        if (netaddr_parse_port(s, &r->lo) < 0) {
            snprintf(err, errlen, "invalid port '%s'", s);
            return -1;
        }
        r->hi = r->lo;
        return 0;
    }
    l = (size_t)(dash - s);
    if (l >= sizeof(lo))
        goto bad_range;
    memcpy(lo, s, l);
    lo[l] = '\0';
    if (netaddr_parse_port(lo, &r->lo) < 0 || netaddr_parse_port(dash + 1, &r->hi) < 0 ||
        r->lo > r->hi)
        goto bad_range;
    return 0;

bad_range:
    snprintf(err, errlen, "invalid port range '%s'", s);
    return -1;
}

/* Appends the port ranges of n to *v (n used, *cap allocated). */
static int add_port_ranges(const conf_node_t *n, conf_port_range_t **v, int *nv, int *cap,
                           char *err, size_t errlen)
{
    for (int k = 0; k < n->argc; k++) {
        conf_port_range_t r, *np;

        if (parse_port_range(n->argv[k], &r, err, errlen) < 0)
            return -1;
        np = grow(*v, *nv, cap, sizeof(*np));
        if (np == NULL) {
            snprintf(err, errlen, "out of memory");
            return -1;
        }
        *v = np;
        (*v)[(*nv)++] = r;
    }
    return 0;
}

static int set_connect_ports(conf_t *conf, struct build *b, const conf_node_t *n,
                             const conf_directive_t *d, char *err, size_t errlen)
{
    if (!b->ports_given) {
        conf->nconnect_ports = 0;  /* the first one replaces the default 443 */
        b->ports_given = 1;
    }
    return add_port_ranges(n, &conf->connect_ports, &conf->nconnect_ports, &b->ports_cap,
                           err, errlen);
}

/* connect_require_tls PORTS... | off: CONNECTs to these ports must carry
 * TLS (the first line replaces the default 443; "off" empties the list). */
static int set_require_tls(conf_t *conf, struct build *b, const conf_node_t *n,
                           const conf_directive_t *d, char *err, size_t errlen)
{
    if (!b->tls_ports_given) {
        conf->nrequire_tls_ports = 0;
        b->tls_ports_given = 1;
    }
    if (strcmp(n->argv[0], "off") == 0) {
        if (n->argc > 1 || conf->nrequire_tls_ports > 0) {
            snprintf(err, errlen, "'off' cannot be combined with ports");
            return -1;
        }
        return 0;
    }
    return add_port_ranges(n, &conf->require_tls_ports, &conf->nrequire_tls_ports,
                           &b->tls_ports_cap, err, errlen);
}

/* A word of a fixed set into the int at d->offset: d->lo is the index of
 * the first word of words[] to accept, d->hi the count; the value stored is
 * the word's position (0, 1...). */
static const char *const enum_words[] = {"block", "allow", "page", "refuse"};

static int set_enum(conf_t *conf, struct build *b, const conf_node_t *n,
                    const conf_directive_t *d, char *err, size_t errlen)
{
    (void)b;
    for (uint64_t k = 0; k < d->hi; k++) {
        if (strcmp(n->argv[0], enum_words[d->lo + k]) == 0) {
            *(int *)((char *)conf + d->offset) = (int)k;
            return 0;
        }
    }
    snprintf(err, errlen, "invalid value '%s' (use %s or %s)", n->argv[0],
             enum_words[d->lo], enum_words[d->lo + 1]);
    return -1;
}

/* policy NAME { clients CIDR...; intercept on|off }. Errors name the line
 * of the directive inside the block (CONF_FULLERR). */
static int set_policy(conf_t *conf, struct build *b, const conf_node_t *n,
                      const conf_directive_t *d, char *err, size_t errlen)
{
    conf_policy_t *pv, *p;
    const conf_node_t *c;
    int cap = conf->npolicies;
    char msg[400];

    (void)b;
    (void)d;
    for (int k = 0; k < conf->npolicies; k++) {
        if (strcmp(conf->policies[k].name, n->argv[0]) == 0) {
            snprintf(err, errlen, "%s:%d: policy: '%s' is duplicate (first at %s:%d)",
                     n->file, n->line, n->argv[0], conf->policies[k].file,
                     conf->policies[k].line);
            return -1;
        }
    }
    pv = grow(conf->policies, conf->npolicies, &cap, sizeof(*pv));
    if (pv == NULL)
        goto nomem;
    conf->policies = pv;
    p = &conf->policies[conf->npolicies];
    memset(p, 0, sizeof(*p));
    p->intercept = -1;
    p->file = n->file;
    p->line = n->line;
    p->name = strdup(n->argv[0]);
    p->clients = netaddr_set_new();
    conf->npolicies++;  /* counted now, so conf_free frees what was made */
    if (p->name == NULL || p->clients == NULL)
        goto nomem;
    for (c = n->child; c != NULL; c = c->next) {
        msg[0] = '\0';
        if (c->has_block) {
            snprintf(msg, sizeof(msg), "'%s' takes no block", c->name);
        } else if (strcmp(c->name, "clients") == 0) {
            if (c->argc < 1)
                snprintf(msg, sizeof(msg), "'clients' takes at least 1 argument");
            for (int k = 0; k < c->argc && msg[0] == '\0'; k++)
                if (netaddr_set_add_text(p->clients, c->argv[k], msg, sizeof(msg)) < 0 &&
                    msg[0] == '\0')
                    snprintf(msg, sizeof(msg), "invalid address '%s'", c->argv[k]);
        } else if (strcmp(c->name, "intercept") == 0) {
            if (c->argc != 1)
                snprintf(msg, sizeof(msg), "'intercept' takes 1 argument");
            else if (p->intercept != -1)
                snprintf(msg, sizeof(msg), "'intercept' is duplicate");
            else
                conf_parse_flag(c->argv[0], &p->intercept, msg, sizeof(msg));
        } else {
            snprintf(msg, sizeof(msg), "unknown directive '%s' in a policy block (use "
                     "clients, intercept)", c->name);
        }
        if (msg[0] != '\0') {
            snprintf(err, errlen, "%s:%d: policy %s: %s", c->file, c->line, p->name, msg);
            return -1;
        }
    }
    if (netaddr_set_count(p->clients) == 0) {
        snprintf(err, errlen, "%s:%d: policy %s: no 'clients' in the block", n->file,
                 n->line, p->name);
        return -1;
    }
    if (netaddr_set_finish(p->clients) < 0)
        goto nomem;
    return 0;

nomem:
    snprintf(err, errlen, "%s:%d: policy: out of memory", n->file, n->line);
    return -1;
}

int conf_intercept_wanted(const conf_t *conf)
{
    if (conf->intercept)
        return 1;
    for (int k = 0; k < conf->npolicies; k++)
        if (conf->policies[k].intercept == 1)
            return 1;
    return 0;
}

const conf_policy_t *conf_policy_for(const conf_t *conf, const netaddr_t *addr)
{
    for (int k = 0; k < conf->npolicies; k++)
        if (netaddr_set_contains(conf->policies[k].clients, addr))
            return &conf->policies[k];
    return NULL;
}

static int set_access_log(conf_t *conf, struct build *b, const conf_node_t *n,
                          const conf_directive_t *d, char *err, size_t errlen)
{
    conf_access_log_t al;
    int j;

    if (strcmp(n->argv[0], "off") == 0) {
        if (n->argc > 1) {
            snprintf(err, errlen, "'off' takes no format");
            return -1;
        }
        if (conf->naccess_logs > 0) {
            snprintf(err, errlen, "'off' conflicts with access_log at %s:%d",
                     b->log_at[0]->file, b->log_at[0]->line);
            return -1;
        }
        b->log_off = n;
        return 0;
    }
    if (b->log_off != NULL) {
        snprintf(err, errlen, "conflicts with 'access_log off' at %s:%d",
                 b->log_off->file, b->log_off->line);
        return -1;
    }
    if (at_least_one_char(n->argv[0], err, errlen) < 0)
        return -1;
    al.format = CONF_LOG_SQUID;
    if (n->argc > 1) {
        if (strcmp(n->argv[1], "squid") == 0) {
            al.format = CONF_LOG_SQUID;
        } else if (strcmp(n->argv[1], "json") == 0) {
            al.format = CONF_LOG_JSON;
        } else {
            snprintf(err, errlen, "invalid format '%s' (use squid or json)", n->argv[1]);
            return -1;
        }
    }
    al.path = conf_path_resolve(n, n->argv[0]);
    if (al.path == NULL)
        goto nomem;
    for (j = 0; j < conf->naccess_logs; j++) {
        if (strcmp(conf->access_logs[j].path, al.path) == 0) {
            snprintf(err, errlen, "'%s' is duplicate (first at %s:%d)", al.path,
                     b->log_at[j]->file, b->log_at[j]->line);
            free(al.path);
            return -1;
        }
    }
    {
        /* Both arrays grow in step: log_cap is the capacity of both. */
        int cap = b->log_cap;
        conf_access_log_t *nl = grow(conf->access_logs, conf->naccess_logs, &cap, sizeof(*nl));
        const conf_node_t **na;
        if (nl == NULL) {
            free(al.path);
            goto nomem;
        }
        conf->access_logs = nl;
        na = grow(b->log_at, conf->naccess_logs, &b->log_cap, sizeof(*na));
        if (na == NULL) {
            free(al.path);
            goto nomem;
        }
        b->log_at = na;
    }
    conf->access_logs[conf->naccess_logs] = al;
    b->log_at[conf->naccess_logs] = n;
    conf->naccess_logs++;
    return 0;

nomem:
    snprintf(err, errlen, "out of memory");
    return -1;
}

static int set_error_log(conf_t *conf, struct build *b, const conf_node_t *n,
                         const conf_directive_t *d, char *err, size_t errlen)
{
    static const char *const levels[] = {
        [CONF_LOG_EMERG] = "emerg", [CONF_LOG_ALERT] = "alert",
        [CONF_LOG_CRIT] = "crit",   [CONF_LOG_ERR] = "error",
        [CONF_LOG_WARN] = "warn",   [CONF_LOG_NOTICE] = "notice",
        [CONF_LOG_INFO] = "info",   [CONF_LOG_DEBUG] = "debug",
    };
    char *path;
    size_t k;

    if (at_least_one_char(n->argv[0], err, errlen) < 0)
        return -1;
    if (n->argc > 1) {
        for (k = 0; k < sizeof(levels) / sizeof(levels[0]); k++)
            if (strcmp(n->argv[1], levels[k]) == 0)
                break;
        if (k == sizeof(levels) / sizeof(levels[0])) {
            snprintf(err, errlen,
                     "invalid level '%s' (use debug, info, notice, warn, error, "
                     "crit, alert or emerg)", n->argv[1]);
            return -1;
        }
        conf->error_log_level = (enum conf_log_level)k;
    }
    if (strcmp(n->argv[0], "stderr") == 0)
        path = strdup("stderr");
    else
        path = conf_path_resolve(n, n->argv[0]);
    if (path == NULL) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    free(conf->error_log);
    conf->error_log = path;
    return 0;
}

static int set_user(conf_t *conf, struct build *b, const conf_node_t *n,
                    const conf_directive_t *d, char *err, size_t errlen)
{
    if (at_least_one_char(n->argv[0], err, errlen) < 0 ||
        (n->argc > 1 && at_least_one_char(n->argv[1], err, errlen) < 0))
        return -1;
    conf->user = strdup(n->argv[0]);
    if (conf->user == NULL)
        goto nomem;
    if (n->argc > 1) {
        conf->group = strdup(n->argv[1]);
        if (conf->group == NULL)
            goto nomem;
    }
    return 0;

nomem:
    snprintf(err, errlen, "out of memory");
    return -1;
}

/* The name goes into Via (RFC 9110 section 7.6.3) as a received-by token:
 * letters, digits, '.', '-' and '_' keep it a plain host name. */
static int hostname_ok(const char *s)
{
    size_t len = strlen(s);

    return len > 0 && len <= 255 &&
           strspn(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
                     "0123456789.-_") == len;
}

static int set_visible_hostname(conf_t *conf, struct build *b, const conf_node_t *n,
                                const conf_directive_t *d, char *err, size_t errlen)
{
    if (!hostname_ok(n->argv[0])) {
        snprintf(err, errlen, "invalid host name '%s'", n->argv[0]);
        return -1;
    }
    free(conf->visible_hostname);
    conf->visible_hostname = strdup(n->argv[0]);
    if (conf->visible_hostname == NULL) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    return 0;
}

static int set_forwarded_for(conf_t *conf, struct build *b, const conf_node_t *n,
                             const conf_directive_t *d, char *err, size_t errlen)
{
    const char *s = n->argv[0];

    if (strcmp(s, "on") == 0)
        conf->forwarded_for = CONF_XFF_ON;
    else if (strcmp(s, "off") == 0)
        conf->forwarded_for = CONF_XFF_OFF;
    else if (strcmp(s, "delete") == 0)
        conf->forwarded_for = CONF_XFF_DELETE;
    else {
        snprintf(err, errlen, "invalid value '%s' (use on, off or delete)", s);
        return -1;
    }
    return 0;
}

/* The block itself belongs to the plugin loader; the name becomes a file
 * name (plugin_dir/NAME.so), so it is kept to [A-Za-z0-9_-]. */
static int set_plugin(conf_t *conf, struct build *b, const conf_node_t *n,
                      const conf_directive_t *d, char *err, size_t errlen)
{
    const char *name = n->argv[0];
    const conf_node_t **np;
    size_t len = strlen(name);
    int k;

    if (len == 0 || len > 64 || name[0] == '-' ||
        strspn(name, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
                     "0123456789_-") != len) {
        snprintf(err, errlen, "invalid plugin name '%s'", name);
        return -1;
    }
    for (k = 0; k < b->nplugins; k++) {
        if (strcmp(b->plugins[k]->argv[0], name) == 0) {
            snprintf(err, errlen, "'%s' is duplicate (first at %s:%d)", name,
                     b->plugins[k]->file, b->plugins[k]->line);
            return -1;
        }
    }
    np = grow(b->plugins, b->nplugins, &b->plugins_cap, sizeof(*np));
    if (np == NULL) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    b->plugins = np;
    b->plugins[b->nplugins++] = n;
    return 0;
}

/* ---- the table ----------------------------------------------------------- */

#define OFF(f) offsetof(conf_t, f)
#define DURATION(name, lo) {#name, 1, 1, 0, set_duration, OFF(name), lo, UINT64_MAX}
#define INT(name, lo, hi) {#name, 1, 1, 0, set_int, OFF(name), lo, hi}

static const conf_directive_t directives[] = {
    {"listen", 1, -1, CONF_MULTI, set_listen, 0, 0, 0},
    {"allow_clients", 1, -1, CONF_MULTI, set_allow_clients, 0, 0, 0},
    {"connect_ports", 1, -1, CONF_MULTI, set_connect_ports, 0, 0, 0},
    {"allow_local_upstreams", 1, 1, 0, set_flag, OFF(allow_local_upstreams), 0, 0},
    {"splice", 1, 1, 0, set_flag, OFF(splice), 0, 0},
    {"access_log", 1, 2, CONF_MULTI, set_access_log, 0, 0, 0},
    {"error_log", 1, 2, 0, set_error_log, 0, 0, 0},
    {"plugin_dir", 1, 1, 0, set_path, OFF(plugin_dir), 0, 0},
    {"control_socket", 1, 1, 0, set_path, OFF(control_socket), 0, 0},
    {"block_page", 1, 1, 0, set_path, OFF(block_page), 0, 0},
    {"user", 1, 2, 0, set_user, 0, 0, 0},
    {"pid_file", 1, 1, 0, set_path, OFF(pid_file), 0, 0},
    {"visible_hostname", 1, 1, 0, set_visible_hostname, 0, 0, 0},
    {"forwarded_for", 1, 1, 0, set_forwarded_for, 0, 0, 0},
    /* A zero timeout would fire at once; the DNS TTLs and the drain may be
     * zero (no caching, stop at once). */
    DURATION(connect_timeout, 1),
    DURATION(client_header_timeout, 1),
    DURATION(client_idle_timeout, 1),
    DURATION(read_timeout, 1),
    DURATION(send_timeout, 1),
    DURATION(tunnel_idle_timeout, 1),
    DURATION(upstream_idle_timeout, 1),
    DURATION(drain_timeout, 0),
    DURATION(dns_ttl, 0),
    DURATION(dns_negative_ttl, 0),
    INT(max_connections, 1, 1000000),
    INT(max_connections_per_client, 1, 1000000),
    {"max_header_size", 1, 1, 0, set_size, OFF(max_header_size), 1 * KB, 1 * MB},
    INT(upstream_pool_size, 0, 100000),
    INT(upstream_pool_per_host, 0, 10000),
    INT(workers, 0, 256),
    {"pac_proxy", 1, -1, CONF_MULTI, set_strlist, OFF(pac_proxy), 3, 0},
    {"pac_bypass_networks", 1, -1, CONF_MULTI, set_strlist, OFF(pac_bypass_networks), 1, 0},
    {"pac_bypass_domains", 1, -1, CONF_MULTI, set_strlist, OFF(pac_bypass_domains), 2, 0},
    {"pac_direct_fallback", 1, 1, 0, set_flag, OFF(pac_direct_fallback), 0, 0},
    {"body_memory_limit", 1, 1, 0, set_size, OFF(body_memory_limit), 0, 1024 * MB},
    {"spool_dir", 1, 1, 0, set_path, OFF(spool_dir), 0, 0},
    {"spool_max", 1, 1, 0, set_size, OFF(spool_max), 1 * KB, 1024ull * 1024 * MB},
    DURATION(hold_trickle_after, 0),
    DURATION(hold_trickle_interval, 1),
    {"hold_trickle_bytes", 1, 1, 0, set_size, OFF(hold_trickle_bytes), 1, 1 * MB},
    {"hold_trickle_keep", 1, 1, 0, set_size, OFF(hold_trickle_keep), 1, 1024 * MB},
    DURATION(defer_timeout, 1),
    {"intercept", 1, 1, 0, set_flag, OFF(intercept), 0, 0},
    {"ca_dir", 1, 1, 0, set_path, OFF(ca_dir), 0, 0},
    {"upstream_ca_file", 1, 1, 0, set_path, OFF(upstream_ca_file), 0, 0},
    {"no_intercept", 1, 1, 0, set_path, OFF(no_intercept), 0, 0},
    {"policy", 1, 1, CONF_MULTI | CONF_BLOCK | CONF_FULLERR, set_policy, 0, 0, 0},
    DURATION(tls_peek_timeout, 1),
    {"sni_mismatch", 1, 1, 0, set_enum, OFF(sni_mismatch_allow), 0, 2},
    {"connect_require_tls", 1, -1, CONF_MULTI, set_require_tls, 0, 0, 0},
    {"upstream_cert_error", 1, 1, 0, set_enum, OFF(upstream_cert_refuse), 2, 2},
    {"plugin", 1, 1, CONF_MULTI | CONF_BLOCK, set_plugin, 0, 0, 0},
};

#define NDIRECTIVES (sizeof(directives) / sizeof(directives[0]))

/* ---- building ------------------------------------------------------------ */

static void conf_free(conf_t *conf)
{
    int k;

    if (conf == NULL)
        return;
    if (conf->plugins_free)
        conf->plugins_free(conf->plugins);
    free(conf->block_page_text);
    free(conf->path);
    free(conf->listen);
    netaddr_set_free(conf->allow_clients);
    netaddr_set_free(conf->own_addrs);
    free(conf->connect_ports);
    for (k = 0; k < conf->naccess_logs; k++)
        free(conf->access_logs[k].path);
    free(conf->access_logs);
    free(conf->error_log);
    strlist_free(&conf->pac_proxy);
    strlist_free(&conf->pac_bypass_networks);
    strlist_free(&conf->pac_bypass_domains);
    free(conf->plugin_dir);
    free(conf->control_socket);
    free(conf->spool_dir);
    free(conf->block_page);
    free(conf->user);
    free(conf->group);
    free(conf->pid_file);
    free(conf->visible_hostname);
    free(conf->ca_dir);
    free(conf->upstream_ca_file);
    free(conf->no_intercept);
    for (k = 0; k < conf->npolicies; k++) {
        free(conf->policies[k].name);
        netaddr_set_free(conf->policies[k].clients);
    }
    free(conf->policies);
    free(conf->require_tls_ports);
    if (conf->tls_free)
        conf->tls_free(conf->tls);
    free(conf);
}

static int set_defaults(conf_t *conf)
{
    atomic_init(&conf->refs, 1);
    conf->connect_ports = malloc(sizeof(*conf->connect_ports));
    conf->error_log = strdup("stderr");
    conf->plugin_dir = strdup(PLUGINDIR);
    conf->spool_dir = strdup("/var/tmp");
    conf->ca_dir = strdup(DEFAULT_CA_DIR);
    conf->require_tls_ports = malloc(sizeof(*conf->require_tls_ports));
    if (conf->connect_ports == NULL || conf->error_log == NULL ||
        conf->plugin_dir == NULL || conf->spool_dir == NULL || conf->ca_dir == NULL ||
        conf->require_tls_ports == NULL)
        return -1;
    conf->require_tls_ports[0].lo = 443;
    conf->require_tls_ports[0].hi = 443;
    conf->nrequire_tls_ports = 1;
    conf->tls_peek_timeout = 10 * SEC;
    conf->connect_ports[0].lo = 443;
    conf->connect_ports[0].hi = 443;
    conf->nconnect_ports = 1;
    conf->allow_local_upstreams = 0;
    conf->splice = 1;
    conf->error_log_level = CONF_LOG_INFO;
    conf->forwarded_for = CONF_XFF_OFF;
    conf->connect_timeout = 30 * SEC;
    conf->client_header_timeout = 30 * SEC;
    conf->client_idle_timeout = 2 * MIN;
    conf->read_timeout = 5 * MIN;
    conf->send_timeout = 1 * MIN;
    conf->tunnel_idle_timeout = 15 * MIN;
    conf->upstream_idle_timeout = 1 * MIN;
    conf->drain_timeout = 30 * SEC;
    conf->dns_ttl = 5 * MIN;
    conf->dns_negative_ttl = 30 * SEC;
    conf->max_connections = 4096;
    conf->max_connections_per_client = 256;
    conf->max_header_size = 64 * KB;
    conf->upstream_pool_size = 1024;
    conf->upstream_pool_per_host = 128;
    conf->workers = 0;  /* one per CPU */
    conf->body_memory_limit = 1 * MB;
    conf->spool_max = 1024 * MB;
    conf->hold_trickle_after = 10 * SEC;
    conf->hold_trickle_interval = 5 * SEC;
    conf->hold_trickle_bytes = 1 * KB;
    conf->hold_trickle_keep = 64 * KB;
    conf->defer_timeout = 1 * MIN;
    return 0;
}

/* The defaults that depend on what was (not) given. */
static int set_late_defaults(conf_t *conf, char *err, size_t errlen)
{
    if (conf->nlisten == 0) {
        conf->listen = malloc(sizeof(*conf->listen));
        if (conf->listen == NULL)
            goto nomem;
        if (netaddr_parse_hostport("127.0.0.1:3128", &conf->listen[0], err, errlen) < 0)
            goto fail;
        conf->nlisten = 1;
    }
    if (conf->allow_clients == NULL) {
        conf->allow_clients = netaddr_set_new();
        if (conf->allow_clients == NULL)
            goto nomem;
        if (netaddr_set_add_text(conf->allow_clients, "127.0.0.0/8", err, errlen) < 0 ||
            netaddr_set_add_text(conf->allow_clients, "::1", err, errlen) < 0)
            goto fail;
    }
    if (netaddr_set_finish(conf->allow_clients) < 0)
        goto nomem;
    if (conf->visible_hostname == NULL) {
        char host[256];
        if (gethostname(host, sizeof(host)) < 0)
            host[0] = '\0';
        host[sizeof(host) - 1] = '\0';
        conf->visible_hostname = strdup(hostname_ok(host) ? host : "localhost");
        if (conf->visible_hostname == NULL)
            goto nomem;
    }
    return 0;

nomem:
    snprintf(err, errlen, "out of memory");
fail:
    return -1;
}

static void arity_error(const conf_node_t *n, const conf_directive_t *d, char *err,
                        size_t errlen)
{
    const char *s = d->min_args == 1 ? "" : "s";
    const char *t = d->max_args == 1 ? "" : "s";

    if (d->max_args < 0)
        snprintf(err, errlen, "%s:%d: '%s' takes at least %d argument%s", n->file,
                 n->line, d->name, d->min_args, s);
    else if (d->min_args == d->max_args && d->min_args == 0)
        snprintf(err, errlen, "%s:%d: '%s' takes no arguments", n->file, n->line, d->name);
    else if (d->min_args == d->max_args)
        snprintf(err, errlen, "%s:%d: '%s' takes %d argument%s", n->file, n->line,
                 d->name, d->min_args, s);
    else if (d->max_args == d->min_args + 1)
        snprintf(err, errlen, "%s:%d: '%s' takes %d or %d argument%s", n->file, n->line,
                 d->name, d->min_args, d->max_args, t);
    else
        snprintf(err, errlen, "%s:%d: '%s' takes %d to %d argument%s", n->file,
                 n->line, d->name, d->min_args, d->max_args, t);
}

/* Applies one top-level node. Returns 0, or -1 with "FILE:LINE: message". */
static int apply(conf_t *conf, struct build *b, const conf_node_t *n, char *err,
                 size_t errlen)
{
    const conf_directive_t *d = NULL;
    char msg[512];
    size_t k;

    for (k = 0; k < NDIRECTIVES; k++) {
        if (strcmp(directives[k].name, n->name) == 0) {
            d = &directives[k];
            break;
        }
    }
    if (d == NULL) {
        snprintf(err, errlen, "%s:%d: unknown directive '%s'", n->file, n->line, n->name);
        return -1;
    }
    if (n->argc < d->min_args || (d->max_args >= 0 && n->argc > d->max_args)) {
        arity_error(n, d, err, errlen);
        return -1;
    }
    if (n->has_block && !(d->flags & CONF_BLOCK)) {
        snprintf(err, errlen, "%s:%d: '%s' takes no block", n->file, n->line, d->name);
        return -1;
    }
    if (!n->has_block && (d->flags & CONF_BLOCK)) {
        snprintf(err, errlen, "%s:%d: '%s' needs a block", n->file, n->line, d->name);
        return -1;
    }
    if (!(d->flags & CONF_MULTI) && b->first[k] != NULL) {
        snprintf(err, errlen, "%s:%d: '%s' is duplicate (first at %s:%d)", n->file,
                 n->line, d->name, b->first[k]->file, b->first[k]->line);
        return -1;
    }
    if (b->first[k] == NULL)
        b->first[k] = n;
    msg[0] = '\0';
    if (d->set(conf, b, n, d, msg, sizeof(msg)) < 0) {
        if (d->flags & CONF_FULLERR)
            snprintf(err, errlen, "%s", msg);
        else
            snprintf(err, errlen, "%s:%d: %s: %s", n->file, n->line, d->name, msg);
        return -1;
    }
    return 0;
}

conf_t *conf_core_build(conf_tree_t *tree, const char *path, char *err,
                        size_t errlen)
{
    const conf_node_t *root = conf_tree_root(tree);
    const conf_node_t *n;
    struct build b;
    conf_t *conf;

    memset(&b, 0, sizeof(b));
    conf = calloc(1, sizeof(*conf));
    b.first = calloc(NDIRECTIVES, sizeof(*b.first));
    if (conf == NULL || b.first == NULL || set_defaults(conf) < 0)
        goto nomem;
    b.ports_cap = 1;
    b.tls_ports_cap = 1;
    conf->path = strdup(path != NULL ? path : root->file);
    if (conf->path == NULL)
        goto nomem;

    for (n = root->child; n != NULL; n = n->next)
        if (apply(conf, &b, n, err, errlen) < 0)
            goto fail;
    if (set_late_defaults(conf, err, errlen) < 0)
        goto fail;

    conf->tree = tree;
    free(b.first);
    free(b.listen_at);
    free(b.log_at);
    free(b.plugins);
    return conf;

nomem:
    snprintf(err, errlen, "%s: out of memory", path != NULL ? path : root->file);
fail:
    /* Messages quote words, and a quoted word may hold "\n": the message
     * stays one line (-t output, the error log). */
    for (char *e = err; errlen > 0 && *e; e++)
        if ((unsigned char)*e < 0x20 || *e == 0x7f)
            *e = '?';
    free(b.first);
    free(b.listen_at);
    free(b.log_at);
    free(b.plugins);
    conf_free(conf);
    return NULL;
}

conf_t *conf_load(const char *path, char *err, size_t errlen)
{
    conf_tree_t *tree = conf_tree_load(path, err, errlen);
    conf_t *conf;

    if (tree == NULL)
        return NULL;
    conf = conf_core_build(tree, path, err, errlen);
    if (conf == NULL)
        conf_tree_free(tree);
    return conf;
}

conf_t *conf_ref(conf_t *conf)
{
    /* Taking a reference needs no ordering: the caller already holds one. */
    atomic_fetch_add_explicit(&conf->refs, 1, memory_order_relaxed);
    return conf;
}

void conf_unref(conf_t *conf)
{
    if (conf == NULL)
        return;
    /* acq_rel: every thread's last reads happen before the free. */
    if (atomic_fetch_sub_explicit(&conf->refs, 1, memory_order_acq_rel) != 1)
        return;
    conf_tree_free(conf->tree);
    conf_free(conf);
}
