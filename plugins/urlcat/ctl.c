/* ctl.c - `portcullis ctl urlcat`: which categories a URL is in, what a client would get, and the lists in force. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lists.h"
#include "urlcat.h"
#include "urlnorm.h"

/*
 *   portcullis ctl urlcat lists
 *       the lists in force (the load summary)
 *   portcullis ctl urlcat check URL [CLIENT]
 *       the normalised URL, the policy CLIENT falls in (default: the
 *       default policy), every category, and the verdict
 *
 * URL is "http://host[:port]/path", "https://...", or "host[:port]" for a
 * tunnel. It runs on the main loop and judges exactly as a request would
 * be judged, with the same lists.
 */

/* Splits url into scheme, host, port and path (NULL for a tunnel).
 * Returns 0 or -1 with *why. */
static int split_url(const char *url, char *scheme, size_t slen, const char **hs,
                     size_t *hl, int *port, const char **path, const char **why)
{
    const char *s = url, *aend, *colon;

    snprintf(scheme, slen, "https");
    *port = 443;
    *path = NULL;
    if (strncasecmp(s, "http://", 7) == 0) {
        snprintf(scheme, slen, "http");
        *port = 80;
        s += 7;
    } else if (strncasecmp(s, "https://", 8) == 0) {
        s += 8;
    }
    aend = s + strcspn(s, "/?#");
    if (s != url)
        *path = aend;
    if (*s == '[') {
        const char *rb = memchr(s, ']', (size_t)(aend - s));
        colon = rb && rb + 1 < aend && rb[1] == ':' ? rb + 1 : NULL;
    } else {
        colon = memchr(s, ':', (size_t)(aend - s));
    }
    if (colon) {
        char *end;
        long p = strtol(colon + 1, &end, 10);
        if (end != aend || p < 1 || p > 65535) {
            *why = "invalid port";
            return -1;
        }
        *port = (int)p;
    }
    *hs = s;
    *hl = (size_t)((colon ? colon : aend) - s);
    return 0;
}

static int ctl_check(pc_ctl_t *ctl, uc_conf_t *c, const char *url, const char *client)
{
    char scheme[8], h[URLNORM_HOST_MAX + 1], *np = NULL, *full = NULL;
    const char *hs, *path, *why;
    size_t hl, cap;
    int port, pol = 0, rc = -1;
    uc_outcome_t r;

    if (client) {
        netaddr_t a;
        if (netaddr_parse(client, &a) < 0) {
            host->ctl_reply(ctl, "invalid client address '%s'", client);
            return -1;
        }
        pol = uc_policy_for(c, &a);
    }
    if (split_url(url, scheme, sizeof(scheme), &hs, &hl, &port, &path, &why) < 0 ||
        urlnorm_host(hs, hl, h, sizeof(h), &why) < 0) {
        host->ctl_reply(ctl, "refused (400): %s", why);
        return -1;
    }
    cap = 3 * (path ? strlen(path) : 0) + 2;
    np = malloc(cap);
    full = malloc(cap + URLNORM_HOST_MAX + 32);
    if (np == NULL || full == NULL) {
        host->ctl_reply(ctl, "out of memory");
        goto fail;
    }
    if (path && urlnorm_path(path, strlen(path), np, cap, &why) < 0) {
        host->ctl_reply(ctl, "refused (400): %s", why);
        goto fail;
    }
    if (uc_classify(c, pol, h, scheme, port, path ? np : NULL, full,
                    cap + URLNORM_HOST_MAX + 32, &r) < 0) {
        host->ctl_reply(ctl, "out of memory");
        goto fail;
    }
    host->ctl_reply(ctl, "url: %s%s", full, path ? "" : " (a tunnel)");
    host->ctl_reply(ctl, "policy: %s", c->pol[pol].name);
    host->ctl_reply(ctl, "categories: %s", r.matched[0] ? r.matched : "none");
    if (r.blocked && r.exception)
        host->ctl_reply(ctl, "verdict: allowed by the exception %s (over %s)",
                        r.exception_list, r.category);
    else if (r.blocked && r.log_only)
        host->ctl_reply(ctl, "verdict: logged only (would block: %s)", r.category);
    else if (r.blocked)
        host->ctl_reply(ctl, "verdict: blocked (%s)", r.category);
    else
        host->ctl_reply(ctl, "verdict: not blocked");
    rc = 0;
fail:
    free(np);
    free(full);
    return rc;
}

int uc_ctl(pc_plugin_t *self, pc_ctl_t *ctl, int argc, const char *const *argv)
{
    uc_conf_t *c = uc_watch_conf();

    (void)self;
    if (c == NULL) {
        host->ctl_reply(ctl, "urlcat is not running");
        return -1;
    }
    if (argc == 2 && strcmp(argv[1], "lists") == 0) {
        char summary[512];
        pthread_rwlock_rdlock(&c->lock);
        uc_lists_summary(c->cur, summary, sizeof(summary));
        pthread_rwlock_unlock(&c->lock);
        host->ctl_reply(ctl, "%s", summary);
        return 0;
    }
    if ((argc == 3 || argc == 4) && strcmp(argv[1], "check") == 0)
        return ctl_check(ctl, c, argv[2], argc == 4 ? argv[3] : NULL);
    host->ctl_reply(ctl, "usage: urlcat lists | urlcat check URL [CLIENT]");
    return -1;
}
