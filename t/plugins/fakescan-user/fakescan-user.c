/* fakescan-user.c - a test user of the "scanner" service: holds and scans bodies. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <portcullis/plugin.h>

/*
 * What avscan will do, against whatever provides "scanner":
 *
 *     plugin fakescan-user {
 *         max            10M        # hold at most this much
 *         on_oversize    open       # or closed
 *         on_error       open       # a failed scan passes, or (closed) blocks
 *         scan_deadline  5s         # the scanner's time budget
 *         scan_uploads   on         # request bodies too
 *     }
 *
 * Responses (and uploads) are held; the BODY hook submits the body, from
 * memory or from the spool file, and defers; the scan's callback resumes.
 * An infected body is blocked with the virus name in the reason and an
 * "av.infected" event.
 */

PC_PLUGIN_HOST_DEFINE;
#define host pc_plugin_host_

typedef struct fu_conf {
    uint64_t max;
    int on_oversize;         /* PC_FAIL_OPEN / PC_FAIL_CLOSED */
    int on_error;
    uint64_t deadline_ms;
    int scan_uploads;
} fu_conf_t;

static const pc_scanner_t *scanner;

/* One scan in flight; freed by its callback or by the cancel. */
typedef struct fu_scan {
    pc_plugin_t *self;
    pc_txn_t *txn;
    pc_defer_t *token;
    pc_scan_t *scan;
    int dir;
    int on_error;
    const char *how;          /* "mem" or "fd" */
} fu_scan_t;

static const char *const fail_modes[] = {"open", "closed", NULL};

static const pc_directive_t fu_directives[] = {
    {"max", 1, 1, 0, PC_DIR_SIZE, offsetof(fu_conf_t, max), NULL, NULL},
    {"on_oversize", 1, 1, 0, PC_DIR_ENUM, offsetof(fu_conf_t, on_oversize), fail_modes, NULL},
    {"on_error", 1, 1, 0, PC_DIR_ENUM, offsetof(fu_conf_t, on_error), fail_modes, NULL},
    {"scan_deadline", 1, 1, 0, PC_DIR_DURATION, offsetof(fu_conf_t, deadline_ms), NULL, NULL},
    {"scan_uploads", 1, 1, 0, PC_DIR_FLAG, offsetof(fu_conf_t, scan_uploads), NULL, NULL},
    PC_DIRECTIVE_END,
};

static void *fu_conf_create(pc_plugin_t *self)
{
    fu_conf_t *c = calloc(1, sizeof(*c));

    if (c)
        c->deadline_ms = 10000;
    return c;
}

static void fu_conf_free(pc_plugin_t *self, void *obj)
{
    free(obj);
}

/* The scanner's answer, on the transaction's loop. The token is alive
 * here: had it died (abort, deadline), the cancel below would have
 * cancelled the scan and this would not run. */
static void on_scanned(void *arg, const pc_scan_result_t *r)
{
    fu_scan_t *fs = arg;
    pc_txn_t *txn = fs->txn;
    int verdict = PC_CONTINUE;
    char reason[256];

    switch (r->status) {
    case PC_SCAN_CLEAN:
        host->txn_note(txn, "av", "clean");
        host->log_txn(fs->self, txn, PC_LOG_INFO, "clean (%s, %llu bytes): %s",
                      fs->how, (unsigned long long)r->scanned_bytes, host->txn_url(txn));
        break;
    case PC_SCAN_INFECTED: {
        pc_event_t ev;
        snprintf(reason, sizeof(reason), "virus found: %s",
                 r->virus ? r->virus : "(unnamed)");
        host->txn_note(txn, "av", "infected");
        host->log_txn(fs->self, txn, PC_LOG_WARN, "infected (%s): %s in %s", fs->how,
                      r->virus ? r->virus : "(unnamed)", host->txn_url(txn));
        host->txn_block(fs->self, txn, 403, reason, "malware");
        memset(&ev, 0, sizeof(ev));
        ev.topic = "av.infected";
        ev.client = host->txn_client(txn);
        ev.subject = host->txn_url(txn);
        ev.detail = r->virus;
        ev.value = (int64_t)r->scanned_bytes;
        host->event_publish(fs->self, &ev);
        verdict = PC_BLOCK;
        break;
    }
    default:
        host->txn_note(txn, "av", "error");
        host->log_txn(fs->self, txn, PC_LOG_WARN, "scan failed (%s): %s", fs->how,
                      r->error ? r->error : "?");
        if (fs->on_error == PC_FAIL_CLOSED) {
            snprintf(reason, sizeof(reason), "the download could not be checked: %s",
                     r->error ? r->error : "scan error");
            host->txn_block(fs->self, txn, 403, reason, "scan-error");
            verdict = PC_BLOCK;
        }
        break;
    }
    /* Resuming may end and free the transaction: nothing of it after. */
    {
        pc_defer_t *token = fs->token;
        free(fs);
        host->defer_resume(token, verdict);
    }
}

/* A long scan is still running (the engine's keep-alive). */
static void on_tick(void *arg, uint64_t elapsed_ms)
{
    fu_scan_t *fs = arg;

    host->log_txn(fs->self, fs->txn, PC_LOG_INFO, "still scanning (%llu ms)",
                  (unsigned long long)elapsed_ms);
}

/* The host gave up on the deferral (client gone, deadline): stop the scan. */
static void on_cancel(void *arg)
{
    fu_scan_t *fs = arg;

    host->log(fs->self, PC_LOG_INFO, "scan cancelled");
    scanner->cancel(fs->scan);
    free(fs);
}

static int want_body(pc_plugin_t *self, pc_txn_t *txn, const fu_conf_t *conf, int dir)
{
    if (host->txn_body_want(self, txn, dir, PC_BODY_HOLD, conf->max,
                            conf->on_oversize) < 0)
        return PC_CONTINUE;  /* no body */
    return PC_CONTINUE;
}

static int fu_request_headers(pc_plugin_t *self, pc_txn_t *txn, void *obj)
{
    const fu_conf_t *conf = obj;

    if (!conf->scan_uploads)
        return PC_CONTINUE;
    return want_body(self, txn, conf, PC_REQUEST);
}

static int fu_response_headers(pc_plugin_t *self, pc_txn_t *txn, void *obj)
{
    return want_body(self, txn, obj, PC_RESPONSE);
}

static int scan_body(pc_plugin_t *self, pc_txn_t *txn, const fu_conf_t *conf, int dir)
{
    pc_scan_meta_t meta;
    const void *p;
    size_t len;
    const char *err = NULL;
    int flags = host->txn_body_data(txn, dir, &p, &len);
    fu_scan_t *fs;

    if (flags & PC_BODY_OVERSIZE)
        return PC_CONTINUE;  /* the host applied on_oversize already */
    fs = calloc(1, sizeof(*fs));
    if (fs == NULL)
        return PC_CONTINUE;
    fs->self = self;
    fs->txn = txn;
    fs->dir = dir;
    fs->on_error = conf->on_error;
    memset(&meta, 0, sizeof(meta));
    meta.size = sizeof(meta);
    meta.origin = PC_SCAN_HTTP;
    meta.client = host->txn_client(txn);
    /* Defer first: the scan's callback may only come after we returned,
     * but it needs the token. */
    fs->token = host->txn_defer(self, txn, conf->deadline_ms + 5000, PC_BLOCK,
                                on_cancel, fs);
    if (fs->token == NULL) {
        free(fs);
        return PC_CONTINUE;
    }
    if (p != NULL) {
        fs->how = "mem";
        fs->scan = scanner->scan_mem(p, len, &meta, conf->deadline_ms, on_scanned,
                                     on_tick, fs, &err);
    } else {
        fs->how = "fd";
        fs->scan = scanner->scan_fd(host->txn_body_fd(txn, dir), &meta,
                                    conf->deadline_ms, on_scanned, on_tick, fs, &err);
    }
    if (fs->scan == NULL) {
        host->log_txn(self, txn, PC_LOG_ERR, "cannot submit the scan: %s",
                      err ? err : "?");
        free(fs);
        /* Deciding at once drops the token (no cancel callback). */
        return conf->on_error == PC_FAIL_CLOSED ? PC_BLOCK : PC_CONTINUE;
    }
    return PC_DEFER;
}

static int fu_request_body(pc_plugin_t *self, pc_txn_t *txn, void *obj)
{
    return scan_body(self, txn, obj, PC_REQUEST);
}

static int fu_response_body(pc_plugin_t *self, pc_txn_t *txn, void *obj)
{
    return scan_body(self, txn, obj, PC_RESPONSE);
}

static int fu_init(pc_plugin_t *self, void *conf, char *err, size_t errlen)
{
    scanner = host->service_acquire(self, PC_SCANNER_SERVICE, PC_SCANNER_VERSION);
    if (scanner == NULL) {
        snprintf(err, errlen, "no scanner service");
        return -1;
    }
    if (host->hook_txn(self, PC_HOOK_REQUEST_HEADERS, fu_request_headers) < 0 ||
        host->hook_txn(self, PC_HOOK_RESPONSE_HEADERS, fu_response_headers) < 0 ||
        host->hook_txn(self, PC_HOOK_REQUEST_BODY, fu_request_body) < 0 ||
        host->hook_txn(self, PC_HOOK_RESPONSE_BODY, fu_response_body) < 0) {
        snprintf(err, errlen, "cannot register hooks");
        return -1;
    }
    host->log(self, PC_LOG_INFO, "using %s", scanner->describe());
    return 0;
}

static void fu_shutdown(pc_plugin_t *self)
{
    if (scanner) {
        /* Users stop before their providers: the scanner still answers. */
        host->log(self, PC_LOG_INFO, "releasing %s", scanner->describe());
        host->service_release(self, PC_SCANNER_SERVICE);
    }
    scanner = NULL;
}

static const pc_service_ref_t fu_requires[] = {
    {PC_SCANNER_SERVICE, PC_SCANNER_VERSION},
    {NULL, 0},
};

static const pc_plugin_desc_t fu_desc = {
    .abi_major = PC_ABI_MAJOR,
    .abi_minor = PC_ABI_MINOR,
    .size = sizeof(pc_plugin_desc_t),
    .name = "fakescan-user",
    .version = "1.0",
    .description = "scans held bodies with the scanner service",
    .requires = fu_requires,
    .directives = fu_directives,
    .conf_create = fu_conf_create,
    .conf_free = fu_conf_free,
    .init = fu_init,
    .shutdown = fu_shutdown,
};

PC_PLUGIN(fu_desc)
