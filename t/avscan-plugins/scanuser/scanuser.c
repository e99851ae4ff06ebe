/* scanuser.c - a test plugin using the `scanner` service the way the mail and share scanners will: a buffer, a file descriptor, a cancel. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <portcullis/plugin.h>

/*
 * For t/avscan-service.t. It acquires "scanner" (version 1) and, per
 * request, scans what a request header names before the request goes on:
 *
 *   X-Scan-Mem: TEXT     scan_mem() of the bytes of TEXT
 *   X-Scan-File: PATH    open(PATH) on the host's worker pool, scan_fd(),
 *                        close at once (the provider dup()s it)
 *   X-Scan-Cancel: PATH  scan_fd() of PATH, then cancel() at once
 *   X-Scan-Deadline: MS  the deadline passed to the scanner (default 0)
 *
 * With `event_file PATH` it also appends each "av.infected" event it
 * hears to PATH: "av.infected client=C subject=URL detail=NAME value=N".
 *
 * The response gets X-Scan-Result: "clean N", "infected NAME",
 * "error MESSAGE" or "cancelled", and X-Scanner: describe(). A callback
 * that arrives for a cancelled scan is logged at [alert] (the tests fail
 * on any alert), and "late callbacks: N" is on every response as
 * X-Scan-Late.
 */

PC_PLUGIN_HOST_DEFINE;
#define host pc_plugin_host_

typedef struct su_conf {
    char *event_file;
} su_conf_t;

static const pc_scanner_t *scanner;
static char *event_path;
static int late;  /* callbacks after a cancel; loop threads only, one worker */

typedef struct su {
    pc_plugin_t *self;
    pc_txn_t *txn;
    pc_defer_t *token;
    pc_scan_t *scan;
    pc_loop_t *loop;
    char path[512];
    int fd;
    int cancel;
    uint64_t deadline;
    char result[300];
} su_t;

static void su_free(void *arg)
{
    su_t *s = arg;

    if (s->scan)
        scanner->cancel(s->scan);
    free(s);
}

static void on_result(void *arg, const pc_scan_result_t *r)
{
    su_t *s = arg;

    if (s->cancel) {
        late++;
        host->log(s->self, PC_LOG_ALERT, "callback after cancel");
        return;
    }
    s->scan = NULL;
    if (r->status == PC_SCAN_CLEAN)
        snprintf(s->result, sizeof(s->result), "clean %llu",
                 (unsigned long long)r->scanned_bytes);
    else if (r->status == PC_SCAN_INFECTED)
        snprintf(s->result, sizeof(s->result), "infected %s", r->virus ? r->virus : "(unnamed)");
    else
        snprintf(s->result, sizeof(s->result), "error %s", r->error ? r->error : "?");
    host->log_txn(s->self, s->txn, PC_LOG_INFO, "scan result: %s", s->result);
    host->defer_resume(s->token, PC_CONTINUE);
}

static void on_defer_cancel(void *arg)
{
    su_t *s = arg;

    if (s->scan) {
        scanner->cancel(s->scan);
        s->scan = NULL;
    }
}

/* On the host's worker pool: opening a file may block. */
static void open_work(void *arg)
{
    su_t *s = arg;

    s->fd = open(s->path, O_RDONLY | O_CLOEXEC);
}

/* Back on the transaction's loop. */
static void open_done(void *arg)
{
    su_t *s = arg;
    pc_scan_meta_t meta = {sizeof(meta), NULL, NULL, PC_SCAN_SHARE, NULL, 0};
    const char *err = NULL;

    if (s->fd < 0) {
        snprintf(s->result, sizeof(s->result), "error cannot open %.200s", s->path);
        host->defer_resume(s->token, PC_CONTINUE);
        return;
    }
    meta.filename = s->path;
    s->scan = scanner->scan_fd(s->fd, &meta, s->deadline, on_result, NULL, s, &err);
    close(s->fd);  /* the provider has its own copy */
    s->fd = -1;
    if (s->scan == NULL) {
        snprintf(s->result, sizeof(s->result), "error %s", err ? err : "?");
        host->defer_resume(s->token, PC_CONTINUE);
        return;
    }
    if (s->cancel) {
        scanner->cancel(s->scan);
        s->scan = NULL;
        snprintf(s->result, sizeof(s->result), "cancelled");
        host->defer_resume(s->token, PC_CONTINUE);
    }
}

static int request_headers(pc_plugin_t *self, pc_txn_t *txn, void *conf)
{
    size_t len;
    const char *mem = host->txn_header(txn, PC_REQUEST, "X-Scan-Mem", &len);
    const char *file, *cancel, *dl;
    size_t flen, clen, dlen;
    su_t *s;

    (void)conf;
    file = host->txn_header(txn, PC_REQUEST, "X-Scan-File", &flen);
    cancel = host->txn_header(txn, PC_REQUEST, "X-Scan-Cancel", &clen);
    if (mem == NULL && file == NULL && cancel == NULL)
        return PC_CONTINUE;
    s = calloc(1, sizeof(*s));
    if (s == NULL)
        return PC_CONTINUE;
    s->self = self;
    s->txn = txn;
    s->fd = -1;
    dl = host->txn_header(txn, PC_REQUEST, "X-Scan-Deadline", &dlen);
    if (dl)
        s->deadline = strtoull(dl, NULL, 10);
    host->txn_slot_set(self, txn, s, su_free);
    s->token = host->txn_defer(self, txn, 0, PC_CONTINUE, on_defer_cancel, s);
    if (s->token == NULL)
        return PC_CONTINUE;
    if (mem) {
        const char *err = NULL;
        pc_scan_meta_t meta = {sizeof(meta), "header.txt", "text/plain", PC_SCAN_MAIL,
                               host->txn_client(txn), 0};
        s->scan = scanner->scan_mem(mem, len, &meta, s->deadline, on_result, NULL, s, &err);
        if (s->scan == NULL) {
            snprintf(s->result, sizeof(s->result), "error %s", err ? err : "?");
            return PC_CONTINUE;
        }
        return PC_DEFER;
    }
    if (cancel) {
        s->cancel = 1;
        file = cancel;
        flen = clen;
    }
    snprintf(s->path, sizeof(s->path), "%.*s", (int)flen, file);
    s->loop = host->loop_current();
    if (host->work_queue(s->loop, open_work, open_done, s) < 0) {
        snprintf(s->result, sizeof(s->result), "error cannot queue the open");
        return PC_CONTINUE;
    }
    return PC_DEFER;
}

static int response_headers(pc_plugin_t *self, pc_txn_t *txn, void *conf)
{
    su_t *s = host->txn_slot_get(self, txn);
    char n[32];

    (void)conf;
    snprintf(n, sizeof(n), "%d", late);
    host->txn_set_header(txn, PC_RESPONSE, "X-Scan-Late", n);
    host->txn_set_header(txn, PC_RESPONSE, "X-Scanner", scanner->describe());
    if (s && s->result[0])
        host->txn_set_header(txn, PC_RESPONSE, "X-Scan-Result", s->result);
    return PC_CONTINUE;
}

/* Main thread; one line per event. */
static void on_event(pc_plugin_t *self, const pc_event_t *ev, void *arg)
{
    FILE *f;

    (void)self;
    (void)arg;
    if (event_path == NULL || (f = fopen(event_path, "a")) == NULL)
        return;
    fprintf(f, "%s client=%s subject=%s detail=%s value=%lld plugin=%s\n", ev->topic,
            ev->client ? ev->client : "-", ev->subject ? ev->subject : "-",
            ev->detail ? ev->detail : "-", (long long)ev->value, ev->plugin ? ev->plugin : "-");
    fclose(f);
}

static int su_init(pc_plugin_t *self, void *obj, char *err, size_t errlen)
{
    su_conf_t *conf = obj;

    if (conf->event_file) {
        event_path = strdup(conf->event_file);
        if (event_path == NULL || host->event_subscribe(self, "av.infected", on_event, NULL) < 0) {
            snprintf(err, errlen, "cannot subscribe to av.infected");
            return -1;
        }
    }
    scanner = host->service_acquire(self, PC_SCANNER_SERVICE, PC_SCANNER_VERSION);
    if (scanner == NULL || scanner->size < sizeof(pc_scanner_t)) {
        snprintf(err, errlen, "no scanner service");
        return -1;
    }
    if (host->hook_txn(self, PC_HOOK_REQUEST_HEADERS, request_headers) < 0 ||
        host->hook_txn(self, PC_HOOK_RESPONSE_HEADERS, response_headers) < 0) {
        snprintf(err, errlen, "cannot register hooks");
        return -1;
    }
    return 0;
}

static void su_shutdown(pc_plugin_t *self)
{
    host->service_release(self, PC_SCANNER_SERVICE);
    free(event_path);
    event_path = NULL;
}

static void *su_conf_create(pc_plugin_t *self)
{
    (void)self;
    return calloc(1, sizeof(su_conf_t));
}

static void su_conf_free(pc_plugin_t *self, void *obj)
{
    su_conf_t *conf = obj;

    (void)self;
    free(conf->event_file);
    free(conf);
}

static const pc_directive_t su_directives[] = {
    {"event_file", 1, 1, 0, PC_DIR_PATH, offsetof(su_conf_t, event_file), NULL, NULL},
    PC_DIRECTIVE_END,
};
static const pc_service_ref_t su_requires[] = {{PC_SCANNER_SERVICE, PC_SCANNER_VERSION}, {NULL, 0}};

static const pc_plugin_desc_t su_desc = {
    .abi_major = PC_ABI_MAJOR,
    .abi_minor = PC_ABI_MINOR,
    .size = sizeof(pc_plugin_desc_t),
    .name = "scanuser",
    .version = "1.0",
    .description = "test user of the scanner service",
    .requires = su_requires,
    .directives = su_directives,
    .conf_create = su_conf_create,
    .conf_free = su_conf_free,
    .init = su_init,
    .shutdown = su_shutdown,
};

PC_PLUGIN(su_desc)
