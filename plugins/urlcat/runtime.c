/* runtime.c - urlcat's hooks: normalise the request, pick the policy, look up, decide, note. */
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "lists.h"
#include "urlcat.h"
#include "urlnorm.h"

/*
 * Every hook builds one query from what the request names (host, and for
 * plain requests the path) normalised by lib/urlnorm exactly as the list
 * entries were, so a spelling trick changes nothing; then one lookup
 * under the read lock gives every category the request is in. The verdict:
 *
 *   an exception list or allow_category of the policy matches  -> continue
 *                                                   (noted "exception")
 *   a blocked category matches, log_only on  -> continue, noted "log-only"
 *   a blocked category matches               -> 403 block page with it
 *   anything else                            -> continue
 *
 * The category goes to the block page (txn_block) and to the access log
 * (the "category" note, also for categories that do not block).
 */

/* Paths up to this size are normalised on the stack. */
#define STACK_PATH 4096

int uc_policy_for(const uc_conf_t *c, const netaddr_t *client)
{
    for (int i = 1; client && i < c->npol; i++)
        if (netaddr_set_contains(c->pol[i].clients, client))
            return i;
    return 0;
}

static int pick_policy(const uc_conf_t *c, pc_txn_t *txn)
{
    netaddr_t a;

    if (c->npol > 1 && netaddr_from_sockaddr(&a, host->txn_client_addr(txn)) == 0)
        return uc_policy_for(c, &a);
    return 0;
}

/* Copies the names of the categories in s (not the internal exception
 * lists) into buf, comma-separated. */
static void join_names(const uc_lists_t *l, const ucset_t *s, char *buf, size_t len)
{
    size_t o = 0;

    buf[0] = '\0';
    for (int c = 0; c < ucdb_ncategories(l->db) && o + 1 < len; c++) {
        if (!ucset_has(s, c) || ucset_has(&l->internal, c))
            continue;
        o += (size_t)snprintf(buf + o, len - o, "%s%s", o ? "," : "",
                              ucdb_name(l->db, c));
    }
    if (o >= len)
        buf[len - 1] = '\0';
}

static void lookup(uc_conf_t *c, int pol, const ucdb_query_t *q, uc_outcome_t *r)
{
    const uc_lists_t *l;
    ucset_t hit;
    int blk, exc;

    memset(r, 0, sizeof(*r));
    pthread_rwlock_rdlock(&c->lock);
    l = c->cur;
    r->limits = ucdb_lookup(l->db, q, &l->want[pol], &hit);
    if (ucset_empty(&hit)) {
        pthread_rwlock_unlock(&c->lock);
        return;
    }
    blk = ucset_first_common(&hit, &l->block[pol]);
    exc = ucset_first_common(&hit, &l->allow[pol]);
    join_names(l, &hit, r->matched, sizeof(r->matched));
    if (blk >= 0) {
        const char *t = ucdb_title(l->db, blk);
        r->blocked = 1;
        snprintf(r->category, sizeof(r->category), "%s", ucdb_name(l->db, blk));
        snprintf(r->title, sizeof(r->title), "%s", t ? t : "");
    }
    if (exc >= 0) {
        const char *n = ucdb_name(l->db, exc);
        r->exception = 1;
        snprintf(r->exception_list, sizeof(r->exception_list), "%s",
                 strncmp(n, "allow:", 6) == 0 ? n + 6 : n);
    }
    pthread_rwlock_unlock(&c->lock);
    r->log_only = c->pol[pol].log_only;
}

/* Logs that an expression hit PCRE2's match limit, at most once a minute. */
static void warn_limits(pc_plugin_t *self, pc_txn_t *txn, const char *url)
{
    static atomic_llong last;
    long long now = (long long)time(NULL), prev = atomic_load(&last);

    host->metric_add(self, "expression_limits", 1);
    if (now - prev >= 60 && atomic_compare_exchange_strong(&last, &prev, now))
        host->log_txn(self, txn, PC_LOG_WARN,
                      "an expression hit the match limit on %s; counted as a "
                      "match (simplify the pattern)", url);
}

static int verdict(pc_plugin_t *self, pc_txn_t *txn, const uc_outcome_t *r,
                   const char *url)
{
    char reason[512];

    if (r->limits)
        warn_limits(self, txn, url);
    if (r->matched[0])
        host->txn_note(txn, "category", r->blocked ? r->category : r->matched);
    if (!r->blocked)
        return PC_CONTINUE;
    if (r->exception) {
        host->txn_note(txn, "urlcat", "exception");
        host->txn_note(txn, "urlcat_exception", r->exception_list);
        host->metric_add(self, "exceptions", 1);
        return PC_CONTINUE;
    }
    if (r->log_only) {
        host->txn_note(txn, "urlcat", "log-only");
        host->metric_add(self, "log_only", 1);
        host->log_txn(self, txn, PC_LOG_INFO,
                      "log_only: would block %s (category %s) for %s", url,
                      r->category, host->txn_client(txn));
        return PC_CONTINUE;
    }
    if (r->title[0])
        snprintf(reason, sizeof(reason), "URL category %s (%s)", r->category, r->title);
    else
        snprintf(reason, sizeof(reason), "URL category %s", r->category);
    host->txn_block(self, txn, 403, reason, r->category);
    host->txn_note(txn, "urlcat", "blocked");
    host->metric_add(self, "blocked", 1);
    return PC_BLOCK;
}

/* Refuses a request whose URL cannot be normalised: it cannot be matched,
 * so it must not pass. */
static int refuse(pc_plugin_t *self, pc_txn_t *txn, const char *what, const char *why)
{
    char reason[256];

    snprintf(reason, sizeof(reason), "malformed %s: %s", what, why);
    host->txn_block(self, txn, 400, reason, NULL);
    host->txn_note(txn, "urlcat", "malformed");
    host->metric_add(self, "malformed", 1);
    return PC_BLOCK;
}

/* Writes "scheme://host[:port]" (IPv6 in brackets, default ports left out)
 * followed by path into out. Returns the length. */
static size_t make_url(char *out, size_t len, const char *scheme, const char *h,
                       int is_ip, int port, const char *path)
{
    int v6 = is_ip && strchr(h, ':') != NULL;
    int def = (strcmp(scheme, "http") == 0 && port == 80) ||
              (strcmp(scheme, "https") == 0 && port == 443);
    char portbuf[16] = "";
    int n;

    if (!def && port > 0)
        snprintf(portbuf, sizeof(portbuf), ":%d", port);
    n = snprintf(out, len, "%s://%s%s%s%s%s", scheme, v6 ? "[" : "", h, v6 ? "]" : "",
                 portbuf, path);
    if (n < 0)
        return 0;
    return (size_t)n < len ? (size_t)n : len - 1;
}

int uc_classify(uc_conf_t *c, int pol, const char *h, const char *scheme, int port,
                const char *npath, char *url, size_t urllen, uc_outcome_t *r)
{
    char key_stack[STACK_PATH + URLNORM_HOST_MAX + 8], *key = key_stack;
    size_t klen = (npath ? strlen(npath) : 1) + URLNORM_HOST_MAX + 8;
    ucdb_query_t q;
    int n;

    if (klen > sizeof(key_stack) && (key = malloc(klen)) == NULL)
        return -1;
    if (key == key_stack)
        klen = sizeof(key_stack);
    memset(&q, 0, sizeof(q));
    q.hostname = h;
    q.host_is_ip = urlnorm_host_is_ip(h);
    if (q.host_is_ip && netaddr_parse(h, &q.ip) < 0)
        q.host_is_ip = 0;
    /* A tunnel has no path: its key is the site root, which an entry
     * "example.com/" (the whole site) matches. */
    n = ucdb_url_key(h, npath ? npath : "/", key, klen);
    q.url_key = n >= 0 ? key : NULL;
    q.url_key_len = n >= 0 ? (size_t)n : 0;
    q.url_len = make_url(url, urllen, scheme, h, q.host_is_ip, port, npath ? npath : "/");
    q.url = url;
    lookup(c, pol, &q, r);
    if (key != key_stack)
        free(key);
    return 0;
}

/* Looks up host (normalised) and path (normalised, or NULL for tunnels)
 * and applies the verdict. */
static int check(pc_plugin_t *self, pc_txn_t *txn, uc_conf_t *c, const char *h,
                 const char *scheme, int port, const char *npath)
{
    char url_stack[STACK_PATH + URLNORM_HOST_MAX + 32], *url = url_stack;
    size_t ulen = (npath ? strlen(npath) : 1) + URLNORM_HOST_MAX + 32;
    uc_outcome_t r;
    int rc;

    if (ulen > sizeof(url_stack) && (url = malloc(ulen)) == NULL)
        return refuse(self, txn, "URL", "out of memory");
    if (url == url_stack)
        ulen = sizeof(url_stack);
    if (uc_classify(c, pick_policy(c, txn), h, scheme, port, npath, url, ulen, &r) < 0)
        rc = refuse(self, txn, "URL", "out of memory");
    else
        rc = verdict(self, txn, &r, url);
    if (url != url_stack)
        free(url);
    return rc;
}

int uc_hook_request(pc_plugin_t *self, pc_txn_t *txn, void *conf)
{
    const char *path = host->txn_path(txn), *why;
    size_t len = strlen(path), cap = 3 * len + 2;
    char stack[STACK_PATH], *np = cap <= sizeof(stack) ? stack : malloc(cap);
    int rc;

    if (np == NULL)
        return refuse(self, txn, "URL", "out of memory");
    if (urlnorm_path(path, len, np, cap, &why) < 0)
        rc = refuse(self, txn, "URL", why);
    else
        rc = check(self, txn, conf, host->txn_host(txn), host->txn_scheme(txn),
                   host->txn_port(txn), np);
    if (np != stack)
        free(np);
    return rc;
}

int uc_hook_connect(pc_plugin_t *self, pc_txn_t *txn, void *conf)
{
    /* The core normalised the CONNECT authority with urlnorm_host. */
    return check(self, txn, conf, host->txn_host(txn), "https", host->txn_port(txn),
                 NULL);
}

int uc_hook_sni(pc_plugin_t *self, pc_txn_t *txn, void *conf)
{
    const char *sni = host->txn_sni(txn), *why;
    char h[URLNORM_HOST_MAX + 1];

    if (sni == NULL || sni[0] == '\0')
        return PC_CONTINUE;
    /* The ClientHello names the real target; it may differ from the
     * CONNECT host, so it is checked on its own, normalised the same way. */
    if (urlnorm_host(sni, strlen(sni), h, sizeof(h), &why) < 0)
        return refuse(self, txn, "TLS server name", why);
    return check(self, txn, conf, h, "https", host->txn_port(txn), NULL);
}
