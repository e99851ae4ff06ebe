/* ctl.c - the banlist's control commands: ban, unban, bans, bancheck (portcullis ctl). */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "banlist_rt.h"
#include "urlnorm.h"

/*
 *   portcullis ctl ban TARGET DURATION|forever [REASON...]
 *   portcullis ctl unban TARGET
 *   portcullis ctl bans [clients|sites]
 *   portcullis ctl bancheck TARGET
 *
 * TARGET is an IP address or CIDR (a client) or a host name (a site);
 * "client:" or "site:" in front says which when it matters ("site:
 * 203.0.113.7" bans requests to that address). Commands run on the main
 * loop; a change is in force for the next request on every worker.
 */

#define REASON_MAX 512
#define DEFAULT_REASON "banned by an administrator"

/* Fails the command with a message (the last reply line is the error). */
static int fail(pc_ctl_t *ctl, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int fail(pc_ctl_t *ctl, const char *fmt, ...)
{
    char msg[600];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    host->ctl_reply(ctl, "%s", msg);
    return -1;
}

static int cmd_ban(pc_plugin_t *self, pc_ctl_t *ctl, int argc, const char *const *argv)
{
    char err[512], reason[REASON_MAX + 1], dur[32], until[64];
    uint64_t ms = 0;
    size_t len = 0;
    bl_ban_t *ban;
    int64_t now = bl_now_ms();

    (void)self;
    if (argc < 3)
        return fail(ctl, "usage: ban TARGET DURATION|forever [REASON...]");
    if (strcmp(argv[2], "forever") != 0) {
        if (host->parse_duration(argv[2], &ms, err, sizeof(err)) < 0)
            return fail(ctl, "%s (or forever)", err);
        if (ms < 1000)
            return fail(ctl, "duration '%s' is shorter than 1s", argv[2]);
        if (ms > 100ull * 365 * 86400000)
            return fail(ctl, "duration '%s' is longer than 100 years (use forever)",
                        argv[2]);
    }
    reason[0] = '\0';
    for (int i = 3; i < argc; i++) {
        size_t n = strlen(argv[i]);
        if (len + n + (i > 3) > REASON_MAX)
            return fail(ctl, "reason too long (at most %d bytes)", REASON_MAX);
        if (i > 3)
            reason[len++] = ' ';
        memcpy(reason + len, argv[i], n + 1);
        len += n;
    }
    ban = bl_ban_parse_target(argv[1], err, sizeof(err));
    if (ban == NULL)
        return fail(ctl, "%s", err);
    ban->created_ms = now;
    ban->until_ms = ms ? now + (int64_t)ms : 0;
    if (bl_ban_set_text(ban, reason[0] ? reason : DEFAULT_REASON, "ctl") < 0) {
        bl_ban_unref(ban);
        return fail(ctl, "out of memory");
    }
    if (bl_rt_ban(ban, err, sizeof(err)) < 0) {
        bl_ban_unref(ban);
        return fail(ctl, "%s", err);
    }
    if (ban->until_ms)
        host->ctl_reply(ctl, "banned %s %s for %s, until %s: %s", bl_kind_name(ban->kind),
                        ban->target, bl_fmt_duration((int64_t)ms, dur, sizeof(dur)),
                        bl_fmt_time(ban->until_ms, until, sizeof(until)), ban->reason);
    else
        host->ctl_reply(ctl, "banned %s %s for ever: %s", bl_kind_name(ban->kind),
                        ban->target, ban->reason);
    bl_ban_unref(ban);
    return 0;
}

/* A ban of snap covering what target names, other than target itself. */
static const bl_ban_t *covering(const bl_snap_t *snap, const bl_ban_t *target,
                                int64_t now)
{
    if (target->kind == BL_CLIENT)
        return bl_snap_client(snap, &target->net, now);
    return bl_snap_site(snap, target->target, now);
}

static int cmd_unban(pc_plugin_t *self, pc_ctl_t *ctl, int argc, const char *const *argv)
{
    char err[512];
    bl_ban_t *t;
    bl_snap_t *snap;
    const bl_ban_t *cover;
    int rc;

    (void)self;
    if (argc != 2)
        return fail(ctl, "usage: unban TARGET");
    t = bl_ban_parse_target(argv[1], err, sizeof(err));
    if (t == NULL)
        return fail(ctl, "%s", err);
    if (bl_rt_unban(t->kind, t->target, "ctl") == 0) {
        host->ctl_reply(ctl, "unbanned %s %s", bl_kind_name(t->kind), t->target);
        bl_ban_unref(t);
        return 0;
    }
    snap = bl_dyn_get(&bl_rt.dyn);
    cover = covering(snap, t, bl_now_ms());
    if (cover)
        rc = fail(ctl, "no ban on %s %s itself; it is covered by the ban on %s (unban %s)",
                  bl_kind_name(t->kind), t->target, cover->target, cover->target);
    else
        rc = fail(ctl, "no ban on %s %s", bl_kind_name(t->kind), t->target);
    bl_snap_unref(snap);
    bl_ban_unref(t);
    return rc;
}

static int cmd_bans(pc_plugin_t *self, pc_ctl_t *ctl, int argc, const char *const *argv)
{
    bl_snap_t *snap;
    int64_t now = bl_now_ms();
    int want = -1;
    size_t shown = 0;

    (void)self;
    if (argc > 2)
        return fail(ctl, "usage: bans [clients|sites]");
    if (argc == 2) {
        if (strcmp(argv[1], "clients") == 0)
            want = BL_CLIENT;
        else if (strcmp(argv[1], "sites") == 0)
            want = BL_SITE;
        else
            return fail(ctl, "usage: bans [clients|sites]");
    }
    snap = bl_dyn_get(&bl_rt.dyn);
    for (size_t i = 0; i < bl_snap_count(snap); i++) {
        const bl_ban_t *b = bl_snap_at(snap, i);
        char left[32], until[64];
        if (want >= 0 && (int)b->kind != want)
            continue;
        if (b->until_ms && b->until_ms <= now)
            continue;  /* ended; the timer removes it */
        if (shown == 0)
            host->ctl_reply(ctl, "%-6s %-32s %-9s %-23s %-18s %s", "KIND", "TARGET",
                            "LEFT", "UNTIL", "SOURCE", "REASON");
        if (b->until_ms) {
            bl_fmt_duration(b->until_ms - now, left, sizeof(left));
            bl_fmt_time(b->until_ms, until, sizeof(until));
        } else {
            snprintf(left, sizeof(left), "forever");
            snprintf(until, sizeof(until), "-");
        }
        host->ctl_reply(ctl, "%-6s %-32s %-9s %-23s %-18s %s", bl_kind_name(b->kind),
                        b->target, left, until, b->source, b->reason);
        shown++;
    }
    bl_snap_unref(snap);
    host->ctl_reply(ctl, "%zu ban%s", shown, shown == 1 ? "" : "s");
    return 0;
}

/* What would happen to a client or a site now, and why. */
static int cmd_bancheck(pc_plugin_t *self, pc_ctl_t *ctl, int argc,
                        const char *const *argv)
{
    const bl_conf_t *conf = bl_rt.conf;
    char err[512], until[64];
    bl_ban_t *t;
    bl_snap_t *snap;
    const bl_ban_t *b;
    const char *hit;
    int64_t now = bl_now_ms();

    (void)self;
    if (argc != 2)
        return fail(ctl, "usage: bancheck TARGET");
    t = bl_ban_parse_target(argv[1], err, sizeof(err));
    if (t == NULL)
        return fail(ctl, "%s", err);
    snap = bl_dyn_get(&bl_rt.dyn);
    b = covering(snap, t, now);
    if (t->kind == BL_CLIENT) {
        if (netaddr_set_contains(conf->exc_clients, &t->net))
            host->ctl_reply(ctl, "client %s: allowed (exception_clients)", t->target);
        else if (b)
            host->ctl_reply(ctl, "client %s: banned by the ban on %s until %s: %s",
                            t->target, b->target,
                            b->until_ms ? bl_fmt_time(b->until_ms, until, sizeof(until))
                                        : "further notice",
                            b->reason);
        else if (netaddr_set_contains(conf->ban_clients, &t->net))
            host->ctl_reply(ctl, "client %s: banned (ban_clients)", t->target);
        else
            host->ctl_reply(ctl, "client %s: not banned", t->target);
    } else {
        if ((hit = bl_sites_match(conf->exc_sites, t->target)) != NULL)
            host->ctl_reply(ctl, "site %s: allowed (exception_sites: %s)", t->target, hit);
        else if (b)
            host->ctl_reply(ctl, "site %s: banned by the ban on %s until %s: %s",
                            t->target, b->target,
                            b->until_ms ? bl_fmt_time(b->until_ms, until, sizeof(until))
                                        : "further notice",
                            b->reason);
        else if ((hit = bl_sites_match(conf->ban_sites, t->target)) != NULL)
            host->ctl_reply(ctl, "site %s: banned (ban_sites: %s)", t->target, hit);
        else
            host->ctl_reply(ctl, "site %s: not banned", t->target);
    }
    bl_snap_unref(snap);
    bl_ban_unref(t);
    return 0;
}

int bl_ctl_register(pc_plugin_t *self)
{
    if (host->ctl_register(self, "ban", "ban TARGET DURATION|forever [REASON...]: ban a "
                           "client (IP, CIDR) or a site", cmd_ban) < 0 ||
        host->ctl_register(self, "unban", "unban TARGET: lift a ban", cmd_unban) < 0 ||
        host->ctl_register(self, "bans", "bans [clients|sites]: the bans in force, "
                           "with time left and reason", cmd_bans) < 0 ||
        host->ctl_register(self, "bancheck", "bancheck TARGET: is a client or site "
                           "banned, and by what", cmd_bancheck) < 0)
        return -1;
    return 0;
}
