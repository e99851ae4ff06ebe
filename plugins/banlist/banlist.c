/* banlist.c - the banlist plugin: life cycle, request-time checks, and changes to the dynamic bans. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "banlist_rt.h"
#include "urlnorm.h"

/*
 * Where each check runs (all on worker threads, none blocking):
 *
 *   ACCEPT            client bans: the connection is marked, every request
 *                     on it gets the block page and a CONNECT is refused
 *   REQUEST_HEADERS   client bans again (a ban made while a keep-alive
 *                     connection is open applies to its next request),
 *                     sites, URL patterns, user agents, the extension of
 *                     the URL path
 *   CONNECT           client bans, sites, URL patterns ("host:port"),
 *                     user agents
 *   TLS_SNI           sites, by the name in the ClientHello
 *   RESPONSE_HEADERS  the Content-Disposition file name and the MIME type
 *
 * Precedence: exception_clients first (nothing of banlist applies to those
 * clients, and they are never banned automatically); then client bans;
 * then exception_sites and exception_urls (which lift every content rule:
 * sites, URLs, user agents, extensions, MIME types); then the bans.
 * exception_extensions and exception_mimetypes lift only the matching
 * extension or type.
 *
 * Changes to the dynamic bans (control commands, auto_ban rules, expiry)
 * run on the main thread: a new snapshot is published for the workers
 * (see bl_dyn_t), the state file is rewritten on the host's worker pool,
 * and the hook command is queued (hookcmd.c).
 */

PC_PLUGIN_HOST_DEFINE;

bl_rt_t bl_rt;

/* The slot value of a transaction that an exception lifted: the response
 * checks skip it. Never freed (no destructor). */
static int exempt_marker;

#define EXPIRY_RECHECK_MS 3600000   /* re-arm at least hourly (clock jumps) */
#define SWEEP_MS 60000

/* The outcome of one check. */
enum { HIT_NONE = 0, HIT_EXEMPT, HIT_BAN };

typedef struct hit {
    char reason[1100];
    const char *category;
    char until[64];       /* "" for a static list */
} hit_t;

static int64_t now_ms(void)
{
    return bl_now_ms();
}

/* Copies what the block page needs of a dynamic ban (the snapshot is
 * released right after, so nothing of it may be kept). */
static void hit_from_ban(hit_t *h, const bl_ban_t *b, const char *category)
{
    snprintf(h->reason, sizeof(h->reason), "%s", b->reason);
    h->category = category;
    if (b->until_ms)
        bl_fmt_time(b->until_ms, h->until, sizeof(h->until));
    else
        snprintf(h->until, sizeof(h->until), "further notice");
}

/* snap is the dynamic bans the request is checked against (one snapshot
 * per request, so its checks agree with each other). */
static int check_client(const bl_conf_t *conf, const bl_snap_t *snap,
                        const netaddr_t *a, int64_t now, hit_t *h)
{
    const bl_ban_t *b;

    if (netaddr_set_count(conf->exc_clients) && netaddr_set_contains(conf->exc_clients, a))
        return HIT_EXEMPT;
    b = bl_snap_client(snap, a, now);
    if (b) {
        hit_from_ban(h, b, "banned client");
        return HIT_BAN;
    }
    if (netaddr_set_count(conf->ban_clients) && netaddr_set_contains(conf->ban_clients, a)) {
        snprintf(h->reason, sizeof(h->reason), "your address is on the ban list");
        h->category = "banned client";
        h->until[0] = '\0';
        return HIT_BAN;
    }
    return HIT_NONE;
}

/* Sites: exceptions, dynamic bans, the static list. host is normalised. */
static int check_site(const bl_conf_t *conf, const bl_snap_t *snap, const char *site,
                      int64_t now, hit_t *h)
{
    const bl_ban_t *b;
    const char *m;

    if (bl_sites_match(conf->exc_sites, site))
        return HIT_EXEMPT;
    b = bl_snap_site(snap, site, now);
    if (b) {
        hit_from_ban(h, b, "banned site");
        return HIT_BAN;
    }
    if ((m = bl_sites_match(conf->ban_sites, site)) != NULL) {
        snprintf(h->reason, sizeof(h->reason), "banned site: %s", m);
        h->category = "banned site";
        h->until[0] = '\0';
        return HIT_BAN;
    }
    return HIT_NONE;
}

/* The URL patterns are matched against: "http://host[:port]/path?query"
 * with the path normalised (urlnorm_path), or "host:port" for CONNECT. */
static void url_subject(pc_txn_t *txn, int is_connect, char *out, size_t len)
{
    const char *url = host->txn_url(txn);
    const char *path, *why, *auth;
    size_t plen;

    if (is_connect) {
        snprintf(out, len, "%s", url);
        return;
    }
    auth = strstr(url, "://");
    path = auth ? strchr(auth + 3, '/') : NULL;
    if (path == NULL) {
        snprintf(out, len, "%s", url);
        return;
    }
    plen = (size_t)(path - url);
    if (plen >= len) {
        snprintf(out, len, "%s", url);
        return;
    }
    memcpy(out, url, plen);
    if (urlnorm_path(path, strlen(path), out + plen, len - plen, &why) < 0)
        snprintf(out, len, "%s", url);
}

static int check_content(pc_plugin_t *self, pc_txn_t *txn, const bl_conf_t *conf,
                         const bl_snap_t *snap, int64_t now, int is_connect, hit_t *h)
{
    char url[8192], name[1024];
    const char *where = NULL, *ext;
    const char *site = host->txn_host(txn);
    int r;

    if (bl_relist_count(conf->exc_urls) || bl_relist_count(conf->ban_urls))
        url_subject(txn, is_connect, url, sizeof(url));
    if (bl_relist_count(conf->exc_urls) &&
        bl_relist_match(conf->exc_urls, url, strlen(url), &where))
        return HIT_EXEMPT;
    r = check_site(conf, snap, site, now, h);
    if (r != HIT_NONE)
        return r;
    if (bl_relist_count(conf->ban_urls) &&
        bl_relist_match(conf->ban_urls, url, strlen(url), &where)) {
        host->log_txn(self, txn, PC_LOG_INFO, "URL %s matches the banned pattern at %s",
                      url, where);
        snprintf(h->reason, sizeof(h->reason), "banned URL");
        h->category = "banned URL";
        return HIT_BAN;
    }
    if (bl_relist_count(conf->ban_ua)) {
        size_t len = 0;
        const char *ua = host->txn_header(txn, PC_REQUEST, "User-Agent", &len);
        if (ua && bl_relist_match(conf->ban_ua, ua, len, &where)) {
            host->log_txn(self, txn, PC_LOG_INFO, "user agent \"%.*s\" matches the "
                          "banned pattern at %s", (int)(len > 200 ? 200 : len), ua, where);
            snprintf(h->reason, sizeof(h->reason), "banned user agent");
            h->category = "banned user agent";
            return HIT_BAN;
        }
    }
    if (!is_connect && bl_strset_count(conf->ban_ext) &&
        bl_path_filename(host->txn_path(txn), name, sizeof(name)) == 0 &&
        (ext = bl_ext_banned(conf->ban_ext, conf->exc_ext, name)) != NULL) {
        snprintf(h->reason, sizeof(h->reason), "banned file type: .%s (%s)", ext, name);
        h->category = "banned file type";
        return HIT_BAN;
    }
    return HIT_NONE;
}

static int block(pc_plugin_t *self, pc_txn_t *txn, const hit_t *h)
{
    host->txn_block(self, txn, 403, h->reason, h->category);
    if (h->until[0])
        host->txn_note(txn, "until", h->until);
    host->metric_add(self, "blocked", 1);
    return PC_BLOCK;
}

static int exempt(pc_plugin_t *self, pc_txn_t *txn, const bl_conf_t *conf)
{
    host->txn_slot_set(self, txn, &exempt_marker, NULL);
    return conf->exception_verdict ? PC_ALLOW : PC_CONTINUE;
}

/* ---- hooks ---------------------------------------------------------------- */

static int on_accept(pc_plugin_t *self, pc_conn_t *conn, void *obj)
{
    const bl_conf_t *conf = obj;
    bl_snap_t *snap;
    netaddr_t a;
    hit_t h;
    int r;

    if (netaddr_from_sockaddr(&a, host->conn_client_addr(conn)) < 0)
        return PC_CONTINUE;
    snap = bl_dyn_get(&bl_rt.dyn);
    r = check_client(conf, snap, &a, bl_now_coarse_ms(), &h);
    bl_snap_unref(snap);
    if (r != HIT_BAN)
        return PC_CONTINUE;
    host->conn_block(self, conn, 403, h.reason, h.category);
    if (h.until[0] && PC_HOST_HAS(host, conn_note))
        host->conn_note(conn, "until", h.until);
    host->metric_add(self, "refused_connections", 1);
    return PC_BLOCK;
}

static int check_request(pc_plugin_t *self, pc_txn_t *txn, const bl_conf_t *conf,
                         int is_connect)
{
    bl_snap_t *snap = bl_dyn_get(&bl_rt.dyn);
    int64_t now = bl_now_coarse_ms();
    netaddr_t a;
    hit_t h;
    int r = HIT_NONE;

    h.until[0] = '\0';  /* only a dynamic ban sets it */
    if (netaddr_from_sockaddr(&a, host->txn_client_addr(txn)) == 0)
        r = check_client(conf, snap, &a, now, &h);
    if (r == HIT_NONE)
        r = check_content(self, txn, conf, snap, now, is_connect, &h);
    bl_snap_unref(snap);
    if (r == HIT_EXEMPT)
        return exempt(self, txn, conf);
    if (r == HIT_BAN)
        return block(self, txn, &h);
    return PC_CONTINUE;
}

static int on_request(pc_plugin_t *self, pc_txn_t *txn, void *obj)
{
    return check_request(self, txn, obj, 0);
}

static int on_connect(pc_plugin_t *self, pc_txn_t *txn, void *obj)
{
    return check_request(self, txn, obj, 1);
}

static int on_sni(pc_plugin_t *self, pc_txn_t *txn, void *obj)
{
    const bl_conf_t *conf = obj;
    const char *sni = host->txn_sni(txn), *why;
    char name[URLNORM_HOST_MAX + 1];
    bl_snap_t *snap;
    hit_t h;
    int r;

    if (sni == NULL || host->txn_slot_get(self, txn) == &exempt_marker)
        return PC_CONTINUE;
    if (urlnorm_host(sni, strlen(sni), name, sizeof(name), &why) < 0)
        return PC_CONTINUE;  /* the core decides about hostile names */
    h.until[0] = '\0';
    snap = bl_dyn_get(&bl_rt.dyn);
    r = check_site(conf, snap, name, bl_now_coarse_ms(), &h);
    bl_snap_unref(snap);
    if (r == HIT_EXEMPT)
        return exempt(self, txn, conf);
    if (r == HIT_BAN)
        return block(self, txn, &h);
    return PC_CONTINUE;
}

static int on_response(pc_plugin_t *self, pc_txn_t *txn, void *obj)
{
    const bl_conf_t *conf = obj;
    char n1[1024], n2[1024], pathname[1024], mime[256], last[256];
    const char *ext, *v, *name = NULL;
    size_t len;
    hit_t h;
    int nn = 0;

    if (host->txn_slot_get(self, txn) == &exempt_marker)
        return PC_CONTINUE;
    if (bl_strset_count(conf->ban_ext) == 0 && bl_strset_count(conf->ban_mime) == 0)
        return PC_CONTINUE;
    n1[0] = n2[0] = '\0';
    v = host->txn_header(txn, PC_RESPONSE, "Content-Disposition", &len);
    if (v)
        nn = bl_disposition_filenames(v, len, n1, n2, sizeof(n1));
    for (int i = 0; i < nn; i++) {
        const char *fn = i == 0 ? n1 : n2;
        if ((ext = bl_ext_banned(conf->ban_ext, conf->exc_ext, fn)) != NULL) {
            snprintf(h.reason, sizeof(h.reason), "banned file type: .%s (%s)", ext, fn);
            h.category = "banned file type";
            h.until[0] = '\0';
            return block(self, txn, &h);
        }
    }
    if (bl_strset_count(conf->ban_mime) == 0)
        return PC_CONTINUE;
    v = host->txn_header(txn, PC_RESPONSE, "Content-Type", &len);
    if (v == NULL || bl_mime_of(v, len, mime, sizeof(mime)) < 0)
        return PC_CONTINUE;
    if (bl_mime_find(conf->ban_mime, mime) == NULL ||
        bl_mime_find(conf->exc_mime, mime) != NULL)
        return PC_CONTINUE;
    /* e2guardian's rule: an excepted extension lets its file through a
     * banned type (.pdf served as application/octet-stream). The name is
     * the one the browser will use. */
    if (nn > 0)
        name = n1;
    else if (bl_path_filename(host->txn_path(txn), pathname, sizeof(pathname)) == 0)
        name = pathname;
    if (name) {
        bl_ext_last(name, last, sizeof(last));
        if (last[0] && bl_strset_find(conf->exc_ext, last, strlen(last)))
            return PC_CONTINUE;
    }
    snprintf(h.reason, sizeof(h.reason), "banned MIME type: %s", mime);
    h.category = "banned MIME type";
    h.until[0] = '\0';
    return block(self, txn, &h);
}

/* ---- the state file ------------------------------------------------------- */

typedef struct state_job {
    bl_snap_t *snap;
    char *path;
    int64_t now;
    int rc;
    char err[600];
} state_job_t;

static void state_work(void *arg)
{
    state_job_t *j = arg;

    j->rc = bl_state_write(j->path, j->snap, j->now, j->err, sizeof(j->err));
}

static void state_schedule(void);

static void state_done(void *arg)
{
    state_job_t *j = arg;

    if (j->rc < 0) {
        host->log(bl_rt.self, PC_LOG_ERR, "state file not written: %s", j->err);
        host->metric_add(bl_rt.self, "state_write_failures", 1);
    }
    bl_snap_unref(j->snap);
    free(j->path);
    free(j);
    bl_rt.writing = 0;
    if (bl_rt.dirty)
        state_schedule();
}

/* Rewrites the state file off the loop; changes during a write are
 * written by one more write after it. */
static void state_schedule(void)
{
    state_job_t *j;

    if (bl_rt.state_path == NULL)
        return;
    if (bl_rt.writing) {
        bl_rt.dirty = 1;
        return;
    }
    j = calloc(1, sizeof(*j));
    if (j == NULL || (j->path = strdup(bl_rt.state_path)) == NULL) {
        free(j);
        bl_rt.dirty = 1;
        host->log(bl_rt.self, PC_LOG_ERR, "out of memory: state file not written");
        return;
    }
    j->snap = bl_dyn_get(&bl_rt.dyn);
    j->now = now_ms();
    bl_rt.dirty = 0;
    bl_rt.writing = 1;
    if (host->work_queue(host->loop_main(), state_work, state_done, j) < 0) {
        bl_rt.writing = 0;
        bl_rt.dirty = 1;
        host->log(bl_rt.self, PC_LOG_ERR, "cannot queue the state file write");
        bl_snap_unref(j->snap);
        free(j->path);
        free(j);
    }
}

/* ---- expiry and changes ---------------------------------------------------- */

static void on_expiry(uv_timer_t *t);

static void arm_expiry(void)
{
    int64_t next, delay;

    if (!bl_rt.timers || bl_rt.draining)
        return;
    /* The main thread is the only writer: it may read cur directly. */
    next = bl_snap_next_expiry(bl_rt.dyn.cur);
    if (next == 0) {
        uv_timer_stop(&bl_rt.expiry);
        return;
    }
    delay = next - now_ms();
    if (delay < 0)
        delay = 0;
    if (delay > EXPIRY_RECHECK_MS)
        delay = EXPIRY_RECHECK_MS;
    uv_timer_start(&bl_rt.expiry, on_expiry, (uint64_t)delay, 0);
}

static void set_count_metric(void)
{
    host->metric_set(bl_rt.self, "bans", (int64_t)bl_snap_count(bl_rt.dyn.cur));
}

static void on_expiry(uv_timer_t *t)
{
    bl_ban_t **gone = NULL;
    int64_t now = now_ms();
    long n;

    (void)t;
    n = bl_dyn_expire(&bl_rt.dyn, now, &gone);
    if (n < 0)
        host->log(bl_rt.self, PC_LOG_ERR, "out of memory removing ended bans");
    for (long i = 0; i < n; i++) {
        host->log(bl_rt.self, PC_LOG_NOTICE, "ban on %s %s ended (%s)",
                  bl_kind_name(gone[i]->kind), gone[i]->target, gone[i]->reason);
        bl_hook_run(bl_rt.conf, BL_ACT_EXPIRE, gone[i], now);
        bl_ban_unref(gone[i]);
    }
    free(gone);
    if (n > 0) {
        host->metric_add(bl_rt.self, "bans_expired", n);
        set_count_metric();
        state_schedule();
    }
    arm_expiry();
}

int bl_rt_excepted(const bl_ban_t *ban)
{
    const bl_conf_t *conf = bl_rt.conf;

    if (ban->kind == BL_CLIENT)
        return netaddr_set_contains(conf->exc_clients, &ban->net);
    return bl_sites_match(conf->exc_sites, ban->target) != NULL;
}

int bl_rt_ban(bl_ban_t *ban, char *err, size_t errlen)
{
    bl_ban_t *old = NULL;
    char until[64], dur[32];
    int64_t now = now_ms();

    if (bl_rt_excepted(ban)) {
        snprintf(err, errlen, "%s %s is in %s: not banned", bl_kind_name(ban->kind),
                 ban->target, ban->kind == BL_CLIENT ? "exception_clients"
                                                     : "exception_sites");
        return -1;
    }
    if (bl_dyn_add(&bl_rt.dyn, ban, &old, err, errlen) < 0)
        return -1;
    if (ban->until_ms)
        host->log(bl_rt.self, PC_LOG_NOTICE, "%s %s %s for %s, until %s, by %s: %s",
                  old ? "renewed the ban on" : "banned", bl_kind_name(ban->kind),
                  ban->target, bl_fmt_duration(ban->until_ms - now, dur, sizeof(dur)),
                  bl_fmt_time(ban->until_ms, until, sizeof(until)), ban->source,
                  ban->reason);
    else
        host->log(bl_rt.self, PC_LOG_NOTICE, "%s %s %s for ever, by %s: %s",
                  old ? "renewed the ban on" : "banned", bl_kind_name(ban->kind),
                  ban->target, ban->source, ban->reason);
    bl_ban_unref(old);
    if (ban->kind == BL_CLIENT && ban->prefix == 128) {
        /* Counting starts afresh after this ban. */
        for (int i = 0; i < bl_rt.ncounters; i++)
            if (bl_rt.counters[i])
                bl_counter_forget(bl_rt.counters[i], &ban->net);
    }
    host->metric_add(bl_rt.self, "bans_added", 1);
    set_count_metric();
    state_schedule();
    bl_hook_run(bl_rt.conf, BL_ACT_BAN, ban, now);
    arm_expiry();
    return 0;
}

int bl_rt_unban(enum bl_kind kind, const char *target, const char *by)
{
    bl_ban_t *old = NULL;

    if (bl_dyn_remove(&bl_rt.dyn, kind, target, &old) < 0)
        return -1;
    host->log(bl_rt.self, PC_LOG_NOTICE, "unbanned %s %s, by %s (was: %s)",
              bl_kind_name(kind), target, by, old->reason);
    host->metric_add(bl_rt.self, "bans_removed", 1);
    set_count_metric();
    state_schedule();
    bl_hook_run(bl_rt.conf, BL_ACT_UNBAN, old, now_ms());
    bl_ban_unref(old);
    arm_expiry();
    return 0;
}

/* ---- auto_ban ------------------------------------------------------------- */

static void on_event(pc_plugin_t *self, const pc_event_t *ev, void *arg);

/* Makes the counters match conf's rules, keeping the counts of rules that
 * did not change, and subscribes to new topics. */
static void apply_rules(const bl_conf_t *conf)
{
    bl_counter_t **nc = calloc((size_t)conf->nrules + 1, sizeof(*nc));

    if (nc == NULL) {
        host->log(bl_rt.self, PC_LOG_ERR, "out of memory: auto_ban rules not changed");
        return;
    }
    for (int i = 0; i < conf->nrules; i++) {
        for (int k = 0; k < bl_rt.ncounters; k++) {
            if (bl_rt.counters[k] &&
                strcmp(bl_counter_rule_text(bl_rt.counters[k]), conf->rules[i].text) == 0) {
                nc[i] = bl_rt.counters[k];
                bl_rt.counters[k] = NULL;
                break;
            }
        }
        if (nc[i] == NULL)
            nc[i] = bl_counter_new(&conf->rules[i]);
        if (nc[i] == NULL)
            host->log(bl_rt.self, PC_LOG_ERR, "out of memory: auto_ban %s is off",
                      conf->rules[i].text);
    }
    for (int k = 0; k < bl_rt.ncounters; k++)
        bl_counter_free(bl_rt.counters[k]);
    free(bl_rt.counters);
    bl_rt.counters = nc;
    bl_rt.ncounters = conf->nrules;

    for (int i = 0; i < conf->nrules; i++) {
        const char *topic = conf->rules[i].topic;
        int have = 0;
        char **t;
        for (int k = 0; k < bl_rt.ntopics; k++)
            have |= strcmp(bl_rt.topics[k], topic) == 0;
        if (have)
            continue;
        if (host->event_subscribe(bl_rt.self, topic, on_event, NULL) < 0) {
            host->log(bl_rt.self, PC_LOG_ERR, "cannot subscribe to %s: auto_ban %s "
                      "needs a restart", topic, conf->rules[i].text);
            continue;
        }
        t = realloc(bl_rt.topics, (size_t)(bl_rt.ntopics + 1) * sizeof(*t));
        if (t == NULL || (t[bl_rt.ntopics] = strdup(topic)) == NULL) {
            if (t)
                bl_rt.topics = t;
            continue;
        }
        bl_rt.topics = t;
        bl_rt.ntopics++;
    }
}

static void on_event(pc_plugin_t *self, const pc_event_t *ev, void *arg)
{
    const bl_conf_t *conf = bl_rt.conf;
    netaddr_t addr;
    bl_snap_t *snap;
    int banned;
    int64_t now = now_ms();

    (void)arg;
    if (ev->client == NULL || netaddr_parse(ev->client, &addr) < 0)
        return;
    /* Our own blocks do not count: a banned client trying again would
     * renew its ban for ever. */
    if (strcmp(ev->topic, "txn.blocked") == 0 && ev->plugin &&
        strcmp(ev->plugin, host->plugin_name(self)) == 0)
        return;
    if (netaddr_set_contains(conf->exc_clients, &addr))
        return;
    snap = bl_dyn_get(&bl_rt.dyn);
    banned = bl_snap_client(snap, &addr, now) != NULL;
    bl_snap_unref(snap);
    if (banned)
        return;
    for (int i = 0; i < conf->nrules && i < bl_rt.ncounters; i++) {
        const bl_rule_t *r = &conf->rules[i];
        char reason[600], err[512], wdur[32], target[NETADDR_STRLEN];
        bl_ban_t *ban;
        int fired;

        if (bl_rt.counters[i] == NULL || strcmp(r->topic, ev->topic) != 0 ||
            (r->from && (ev->plugin == NULL || strcmp(r->from, ev->plugin) != 0)))
            continue;
        fired = bl_counter_hit(bl_rt.counters[i], &addr, now);
        if (fired <= 0)
            continue;
        if (r->reason)
            snprintf(reason, sizeof(reason), "%s", r->reason);
        else if (r->count > 1)
            snprintf(reason, sizeof(reason), "automatic: %ld %s within %s%s%.200s%s",
                     r->count, r->topic, bl_fmt_duration((int64_t)r->window_ms, wdur,
                                                         sizeof(wdur)),
                     ev->detail ? " (last: " : "", ev->detail ? ev->detail : "",
                     ev->detail ? ")" : "");
        else
            snprintf(reason, sizeof(reason), "automatic: %s%s%.200s%s", r->topic,
                     ev->detail ? " (" : "", ev->detail ? ev->detail : "",
                     ev->detail ? ")" : "");
        netaddr_format(&addr, target, sizeof(target));
        ban = bl_ban_parse_target(target, err, sizeof(err));
        if (ban == NULL)
            return;
        ban->created_ms = now;
        ban->until_ms = r->duration_ms ? now + (int64_t)r->duration_ms : 0;
        snprintf(err, sizeof(err), "auto:%s", r->topic);
        if (bl_ban_set_text(ban, reason, err) < 0 ||
            bl_rt_ban(ban, err, sizeof(err)) < 0)
            host->log(self, PC_LOG_ERR, "auto_ban %s: %s not banned: %s", r->text,
                      target, err);
        else
            host->metric_add(self, "auto_bans", 1);
        bl_ban_unref(ban);
        return;  /* one ban per event */
    }
}

static void on_sweep(uv_timer_t *t)
{
    int64_t now = now_ms();

    (void)t;
    for (int i = 0; i < bl_rt.ncounters; i++)
        if (bl_rt.counters[i])
            bl_counter_sweep(bl_rt.counters[i], now);
}

/* ---- life cycle ----------------------------------------------------------- */

static void warn_state(void *arg, const char *msg)
{
    (void)arg;
    host->log(bl_rt.self, PC_LOG_ERR, "%s", msg);
}

/* Reads the state file at start and restores its bans. */
static int load_state(const bl_conf_t *conf, char *err, size_t errlen)
{
    bl_ban_t **bans = NULL;
    size_t n = 0;
    int64_t now = now_ms();

    if (conf->state == NULL) {
        host->log(bl_rt.self, PC_LOG_NOTICE, "no state file: dynamic bans last until "
                  "the daemon stops");
        return 0;
    }
    bl_rt.state_path = strdup(conf->state);
    if (bl_rt.state_path == NULL) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    if (bl_state_read(conf->state, now, &bans, &n, warn_state, NULL, err, errlen) < 0)
        return -1;
    if (bl_dyn_replace_all(&bl_rt.dyn, bans, n) < 0) {
        for (size_t i = 0; i < n; i++)
            bl_ban_unref(bans[i]);
        free(bans);
        snprintf(err, errlen, "out of memory restoring the bans of %s", conf->state);
        return -1;
    }
    host->log(bl_rt.self, PC_LOG_NOTICE, "%zu ban%s restored from %s",
              bl_snap_count(bl_rt.dyn.cur), bl_snap_count(bl_rt.dyn.cur) == 1 ? "" : "s",
              conf->state);
    for (size_t i = 0; i < bl_snap_count(bl_rt.dyn.cur); i++)
        bl_hook_run(conf, BL_ACT_RESTORE, bl_snap_at(bl_rt.dyn.cur, i), now);
    for (size_t i = 0; i < n; i++)
        bl_ban_unref(bans[i]);
    free(bans);
    set_count_metric();
    return 0;
}

static int bl_init(pc_plugin_t *self, void *obj, char *err, size_t errlen)
{
    bl_conf_t *conf = obj;
    uv_loop_t *loop = host->loop_uv(host->loop_main());

    bl_rt.self = self;
    bl_rt.conf = conf;
    if (bl_dyn_init(&bl_rt.dyn, (size_t)conf->max_bans) < 0) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    bl_rt.dyn_ready = 1;
    if (host->hook_conn(self, PC_HOOK_ACCEPT, on_accept) < 0 ||
        host->hook_txn(self, PC_HOOK_REQUEST_HEADERS, on_request) < 0 ||
        host->hook_txn(self, PC_HOOK_CONNECT, on_connect) < 0 ||
        host->hook_txn(self, PC_HOOK_TLS_SNI, on_sni) < 0 ||
        host->hook_txn(self, PC_HOOK_RESPONSE_HEADERS, on_response) < 0) {
        snprintf(err, errlen, "cannot register hooks");
        return -1;
    }
    if (bl_ctl_register(self) < 0) {
        snprintf(err, errlen, "cannot register the control commands ban, unban, bans, "
                 "bancheck (taken by another plugin?)");
        return -1;
    }
    uv_timer_init(loop, &bl_rt.expiry);
    uv_timer_init(loop, &bl_rt.sweep);
    /* Our timers never keep the daemon from stopping. */
    uv_unref((uv_handle_t *)&bl_rt.expiry);
    uv_unref((uv_handle_t *)&bl_rt.sweep);
    bl_rt.timers = 1;
    uv_timer_start(&bl_rt.sweep, on_sweep, SWEEP_MS, SWEEP_MS);
    apply_rules(conf);
    if (load_state(conf, err, errlen) < 0)
        return -1;
    arm_expiry();
    return 0;
}

static void bl_reconfigure(pc_plugin_t *self, void *old_conf, void *new_conf)
{
    bl_conf_t *conf = new_conf;

    (void)old_conf;
    bl_rt.conf = conf;
    bl_rt.dyn.max = (size_t)conf->max_bans;
    apply_rules(conf);
    if ((conf->state == NULL) != (bl_rt.state_path == NULL) ||
        (conf->state && strcmp(conf->state, bl_rt.state_path) != 0)) {
        free(bl_rt.state_path);
        bl_rt.state_path = conf->state ? strdup(conf->state) : NULL;
        if (bl_rt.state_path)
            host->log(self, PC_LOG_NOTICE, "state file is now %s", bl_rt.state_path);
        else
            host->log(self, PC_LOG_WARN, "no state file any more: dynamic bans last "
                      "until the daemon stops");
        state_schedule();
    }
}

static void bl_drain(pc_plugin_t *self)
{
    (void)self;
    bl_rt.draining = 1;
    if (bl_rt.timers) {
        uv_close((uv_handle_t *)&bl_rt.expiry, NULL);
        uv_close((uv_handle_t *)&bl_rt.sweep, NULL);
        bl_rt.timers = 0;
    }
    bl_hook_drain();
}

static void bl_shutdown(pc_plugin_t *self)
{
    (void)self;
    /* The loop has ended, so no write is running; one more if a change
     * came after the last one was queued. */
    if (bl_rt.dirty && bl_rt.state_path && bl_rt.dyn_ready) {
        char err[600];
        if (bl_state_write(bl_rt.state_path, bl_rt.dyn.cur, now_ms(), err, sizeof(err)) < 0)
            host->log(bl_rt.self, PC_LOG_ERR, "state file not written: %s", err);
    }
    for (int i = 0; i < bl_rt.ncounters; i++)
        bl_counter_free(bl_rt.counters[i]);
    free(bl_rt.counters);
    for (int i = 0; i < bl_rt.ntopics; i++)
        free(bl_rt.topics[i]);
    free(bl_rt.topics);
    free(bl_rt.state_path);
    if (bl_rt.dyn_ready)
        bl_dyn_destroy(&bl_rt.dyn);
    memset(&bl_rt, 0, sizeof(bl_rt));
}

static const pc_plugin_desc_t banlist_desc = {
    .abi_major = PC_ABI_MAJOR,
    .abi_minor = PC_ABI_MINOR,
    .size = sizeof(pc_plugin_desc_t),
    .name = "banlist",
    .version = "1.0",
    .description = "static and dynamic bans of clients, sites, URLs, user agents, "
                   "file types; automatic bans from events",
    .directives = bl_directives,
    .conf_create = bl_conf_create,
    .conf_finish = bl_conf_finish,
    .conf_free = bl_conf_free,
    .init = bl_init,
    .reconfigure = bl_reconfigure,
    .drain = bl_drain,
    .shutdown = bl_shutdown,
};

PC_PLUGIN(banlist_desc)
