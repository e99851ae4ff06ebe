/* avscan.c - the avscan plugin: ClamAV scanning of downloads and uploads, and the shared `scanner` service. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <uv.h>

#include "avscan.h"

PC_PLUGIN_HOST_DEFINE;
#define host pc_plugin_host_

/*
 * Life cycle. conf_finish (avscan_conf.c) compiles an engine when the
 * database settings changed; init and reconfigure put it in force and
 * give the pool the configuration's settings; a timer on the main loop
 * asks the background thread to check the database directory every
 * check_interval; drain stops the timer; shutdown stops the pool (running
 * scans finish), drops the engine and stops the background thread.
 *
 * See README.md in this directory for what an admin sees.
 */

static pc_plugin_t *plugin_self;
static uv_timer_t check_timer;
static int timer_on;
static uint64_t timer_interval;

pc_plugin_t *avscan_self(void)
{
    return plugin_self;
}

void avscan_settings_from_conf(const avscan_conf_t *c, avscan_pool_settings_t *s)
{
    memset(s, 0, sizeof(*s));
    s->threads = avscan_conf_threads(c);
    s->queue_size = c->queue_size;
    s->scan_timeout = c->eng.scan_timeout;
    s->tick_interval = 1000;
    s->heuristic_alerts = c->heuristic_alerts;
    s->block_encrypted = c->block_encrypted;
    s->block_macros = c->block_macros;
    s->detect_pua = c->eng.detect_pua;
    s->on_limits = c->on_limits;
    s->temp_dir = c->eng.temp_dir;
    s->max_file_size = c->eng.max_file_size;
    s->max_parts = c->eng.max_files;
}

static void *pool_loop_current(void)
{
    return host->loop_current();
}

static int pool_loop_post(void *loop, void (*fn)(void *), void *arg)
{
    return host->loop_post(loop, fn, arg);
}

static void pool_log(int level, const char *fmt, ...)
{
    char msg[1024];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    host->log(plugin_self, level, "%s", msg);
}

static const avscan_pool_ops_t pool_ops = {pool_loop_current, pool_loop_post, pool_log};

/* ---- database checks ------------------------------------------------------ */

static void on_check_timer(uv_timer_t *t)
{
    (void)t;
    /* -1: the previous check (a long compile) is still running. */
    avscan_bg_check(0);
}

static void timer_set(uint64_t interval)
{
    if (!timer_on || interval == timer_interval)
        return;
    timer_interval = interval;
    if (interval == 0)
        uv_timer_stop(&check_timer);
    else
        uv_timer_start(&check_timer, on_check_timer, interval, interval);
}

/* ---- the engine in force -------------------------------------------------- */

static void commit_conf(pc_plugin_t *self, avscan_conf_t *c, const char *why)
{
    avscan_pool_settings_t s;
    avscan_engine_t *e = c->engine;

    if (e) {
        /* The configuration only carried it here: the global reference
         * keeps it from now on, so a later database reload can free it. */
        c->engine = NULL;
        avscan_engine_log_loaded(self, e, why);
        host->metric_set(self, "signatures", avscan_engine_signatures(e));
        host->metric_set(self, "load_ms", (int64_t)avscan_engine_load_ms(e));
        avscan_engine_commit(e);
    }
    avscan_settings_from_conf(c, &s);
    avscan_pool_configure(&s);
    timer_set(c->check_interval);
}

/* ---- `portcullis ctl avscan [status|reload]` ------------------------------ */

static int ctl_avscan(pc_plugin_t *self, pc_ctl_t *ctl, int argc, const char *const *argv)
{
    avscan_engine_t *e;
    avscan_pool_stats_t st;
    uint64_t reloads, failures;
    int64_t last;

    (void)self;
    if (argc > 2) {
        host->ctl_reply(ctl, "usage: avscan [status|reload]");
        return -1;
    }
    if (argc == 2 && strcmp(argv[1], "reload") == 0) {
        if (avscan_bg_check(1) < 0) {
            host->ctl_reply(ctl, "a signature reload is already running");
            return -1;
        }
        host->ctl_reply(ctl, "signature reload started (see the error log)");
        return 0;
    }
    if (argc == 2 && strcmp(argv[1], "status") != 0) {
        host->ctl_reply(ctl, "unknown avscan command '%s' (status, reload)", argv[1]);
        return -1;
    }
    e = avscan_engine_current();
    avscan_pool_stats(&st);
    avscan_bg_stats(&reloads, &failures, &last);
    if (e) {
        host->ctl_reply(ctl, "engine: %s", avscan_engine_describe(e));
        host->ctl_reply(ctl, "signatures: %u (loaded in %llu ms)%s",
                        avscan_engine_signatures(e),
                        (unsigned long long)avscan_engine_load_ms(e),
                        avscan_engine_test_only(e) ? " TEST SIGNATURES ONLY" : "");
    } else {
        host->ctl_reply(ctl, "engine: none loaded");
    }
    host->ctl_reply(ctl, "threads: %d, running: %ld, queued: %ld", st.threads,
                    st.running, st.queued);
    host->ctl_reply(ctl, "scans: %llu, clean: %llu, infected: %llu, errors: %llu, "
                    "timeouts: %llu, rejected (queue full): %llu",
                    (unsigned long long)st.scans, (unsigned long long)st.clean,
                    (unsigned long long)st.infected, (unsigned long long)st.errors,
                    (unsigned long long)st.timeouts, (unsigned long long)st.rejected);
    if (last) {
        char when[64];
        time_t t = (time_t)last;
        struct tm tm;
        strftime(when, sizeof(when), "%Y/%m/%d %H:%M:%S", localtime_r(&t, &tm));
        host->ctl_reply(ctl, "reloads: %llu (last %s), failed: %llu",
                        (unsigned long long)reloads, when, (unsigned long long)failures);
    } else {
        host->ctl_reply(ctl, "reloads: %llu, failed: %llu", (unsigned long long)reloads,
                        (unsigned long long)failures);
    }
    avscan_engine_unref(e);
    return 0;
}

/* ---- life cycle ------------------------------------------------------------- */

static void *avscan_create(pc_plugin_t *self)
{
    char err[256];

    plugin_self = self;
    /* libclamav's messages go to our log from the first load on. */
    if (avscan_engine_global_init(err, sizeof(err)) < 0)
        host->log(self, PC_LOG_ERR, "%s", err);
    return avscan_conf_create(self);
}

static int avscan_init(pc_plugin_t *self, void *obj, char *err, size_t errlen)
{
    avscan_conf_t *c = obj;
    avscan_pool_settings_t s;

    if (avscan_bg_start(self, err, errlen) < 0)
        goto fail;
    avscan_settings_from_conf(c, &s);
    if (avscan_pool_start(&pool_ops, &s, err, errlen) < 0)
        goto fail;
    if (host->hook_txn(self, PC_HOOK_REQUEST_HEADERS, avscan_http_request_headers) < 0 ||
        host->hook_txn(self, PC_HOOK_REQUEST_BODY, avscan_http_request_body) < 0 ||
        host->hook_txn(self, PC_HOOK_RESPONSE_HEADERS, avscan_http_response_headers) < 0 ||
        host->hook_txn(self, PC_HOOK_RESPONSE_BODY, avscan_http_response_body) < 0) {
        snprintf(err, errlen, "cannot register the hooks");
        goto fail;
    }
    if (host->service_register(self, PC_SCANNER_SERVICE, PC_SCANNER_VERSION,
                               &avscan_scanner) < 0) {
        snprintf(err, errlen, "cannot register the scanner service");
        goto fail;
    }
    if (host->ctl_register(self, "avscan", "avscan [status|reload]: the ClamAV engine, "
                           "scan counters; reload the signatures now", ctl_avscan) < 0)
        host->log(self, PC_LOG_WARN, "the control command 'avscan' is taken; "
                  "`portcullis ctl avscan` will not reach this plugin");
    uv_timer_init(host->loop_uv(host->loop_main()), &check_timer);
    timer_on = 1;
    timer_interval = 0;
    commit_conf(self, c, "signatures loaded");
    return 0;
fail:
    /* Both stop what was started, and nothing else. */
    avscan_pool_stop();
    avscan_bg_stop();
    return -1;
}

static void avscan_reconfigure(pc_plugin_t *self, void *old_conf, void *new_conf)
{
    (void)old_conf;
    commit_conf(self, new_conf, "configuration reloaded, new engine in force");
}

static void avscan_drain(pc_plugin_t *self)
{
    (void)self;
    /* The main loop ends when its handles are gone. */
    if (timer_on) {
        timer_on = 0;
        uv_close((uv_handle_t *)&check_timer, NULL);
    }
}

static void avscan_shutdown(pc_plugin_t *self)
{
    (void)self;
    avscan_drain(self);
    avscan_pool_stop();
    avscan_engine_commit(NULL);
    avscan_bg_stop();
}

static const pc_service_ref_t avscan_provides[] = {
    {PC_SCANNER_SERVICE, PC_SCANNER_VERSION},
    {NULL, 0},
};

static const pc_plugin_desc_t avscan_desc = {
    .abi_major = PC_ABI_MAJOR,
    .abi_minor = PC_ABI_MINOR,
    .size = sizeof(pc_plugin_desc_t),
    .name = "avscan",
    .version = "1.0",
    .description = "ClamAV scanning of downloads and uploads; provides the scanner service",
    .provides = avscan_provides,
    .directives = avscan_directives,
    .conf_create = avscan_create,
    .conf_finish = avscan_conf_finish,
    .conf_free = avscan_conf_free,
    .init = avscan_init,
    .reconfigure = avscan_reconfigure,
    .drain = avscan_drain,
    .shutdown = avscan_shutdown,
};

PC_PLUGIN(avscan_desc)
