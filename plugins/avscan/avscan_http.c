/* avscan_http.c - download and upload scanning: which bodies are held, the deferred scan, the verdict. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "avscan.h"

#define host pc_plugin_host_

/*
 * A body to check is held by the host (PC_BODY_HOLD: memory, then a spool
 * file; the client gets nothing, or a slow trickle that never includes the
 * end) until the BODY hook's verdict. The hook defers the transaction and
 * submits the body to our own scan pool; the result comes back on the
 * transaction's loop and resumes it: continue, or a block page naming the
 * virus. Everything the hooks do is non-blocking.
 *
 * The state of a transaction's scan lives in its slot (av_txn_t). The
 * scan handle is cancelled by whichever comes first of: the deferral being
 * cancelled (client gone, host deadline), or the slot being destroyed.
 */

typedef struct av_txn {
    pc_plugin_t *self;
    pc_txn_t *txn;
    const avscan_conf_t *conf;
    pc_defer_t *token;
    pc_scan_t *scan;
    int dir;                 /* of the scan in flight */
    /* the response */
    char filename[256];
    char mime[128];
    int risky;
    int coding;
    /* the request */
    char boundary[80];
    int req_coding;
} av_txn_t;

static void av_txn_free(void *arg)
{
    av_txn_t *st = arg;

    /* After TXN_END, on the transaction's thread: a scan still in flight
     * (it cannot be; the deferral's cancel came first) must never call
     * back into freed state. */
    if (st->scan)
        avscan_pool_cancel(st->scan);
    free(st);
}

static av_txn_t *state_of(pc_plugin_t *self, pc_txn_t *txn, const avscan_conf_t *conf)
{
    av_txn_t *st = host->txn_slot_get(self, txn);

    if (st)
        return st;
    st = calloc(1, sizeof(*st));
    if (st == NULL)
        return NULL;
    st->self = self;
    st->txn = txn;
    st->conf = conf;
    host->txn_slot_set(self, txn, st, av_txn_free);
    /* slot_set frees st on failure. */
    return host->txn_slot_get(self, txn);
}

/* A header value as a NUL-terminated copy in buf, or NULL. */
static const char *header(pc_txn_t *txn, int dir, const char *name, char *buf,
                          size_t buflen)
{
    size_t len;
    const char *v = host->txn_header(txn, dir, name, &len);

    if (v == NULL)
        return NULL;
    if (len >= buflen)
        len = buflen - 1;
    memcpy(buf, v, len);
    buf[len] = '\0';
    return buf;
}

/* ---- verdicts ------------------------------------------------------------ */

static const char *what(int dir)
{
    return dir == PC_REQUEST ? "upload" : "download";
}

/* Blocks with reason (and category) and counts it. */
static int block(av_txn_t *st, pc_txn_t *txn, const char *reason, const char *category)
{
    host->txn_block(st->self, txn, 403, reason, category);
    host->metric_add(st->self, "blocked", 1);
    return PC_BLOCK;
}

/* A body too large to scan: the rule for its kind decides. */
static int oversize(pc_plugin_t *self, pc_txn_t *txn, const avscan_conf_t *conf,
                    int dir, int risky, uint64_t size, const char *why)
{
    int rule = risky ? conf->on_oversize_risky : conf->on_oversize;
    char lim[32], reason[256];

    avscan_format_size(conf->max_size, lim, sizeof(lim));
    host->metric_add(self, "oversize", 1);
    if (rule == AVSCAN_BLOCK) {
        snprintf(reason, sizeof(reason), "the %s is %s than the %s that can be "
                 "checked for viruses", what(dir), why, lim);
        host->log_txn(self, txn, PC_LOG_NOTICE, "%s (%" PRIu64 " bytes, %s): blocked "
                      "by %s", reason, size, host->txn_url(txn),
                      risky ? "on_oversize_risky" : "on_oversize");
        host->txn_block(self, txn, 403, reason, "unchecked");
        host->metric_add(self, "blocked", 1);
        return PC_BLOCK;
    }
    host->log_txn(self, txn, PC_LOG_INFO, "%s of %" PRIu64 " bytes is %s than max_size "
                  "%s: passed unchecked (on_oversize allow): %s", what(dir), size, why,
                  lim, host->txn_url(txn));
    host->txn_note(txn, "avscan", "unchecked: too large");
    return PC_CONTINUE;
}

/* The scanner failed (error, timeout, queue full): on_error decides. */
static int scan_failed(av_txn_t *st, pc_txn_t *txn, int dir, const char *error)
{
    char reason[300];

    host->metric_add(st->self, "errors", 1);
    if (st->conf->on_error == AVSCAN_BLOCK) {
        host->log_txn(st->self, txn, PC_LOG_WARN, "%s not checked (%s): blocked by "
                      "on_error: %s", what(dir), error, host->txn_url(txn));
        snprintf(reason, sizeof(reason), "the %s could not be checked for viruses: %s",
                 what(dir), error);
        return block(st, txn, reason, "unchecked");
    }
    host->log_txn(st->self, txn, PC_LOG_WARN, "%s not checked (%s): passed by "
                  "on_error allow: %s", what(dir), error, host->txn_url(txn));
    host->txn_note(txn, "avscan", "unchecked: scan failed");
    return PC_CONTINUE;
}

static int infected(av_txn_t *st, pc_txn_t *txn, int dir, const avscan_result_t *r)
{
    const char *name = r->r.virus ? r->r.virus : "unnamed";
    char reason[400];
    pc_event_t ev;

    /* The name is what the user and the help desk will search for. */
    if (dir == PC_REQUEST)
        snprintf(reason, sizeof(reason), "virus found in upload%s%s: %s",
                 r->part ? " " : "", r->part ? r->part : "", name);
    else
        snprintf(reason, sizeof(reason), "virus found: %s", name);
    host->log_txn(st->self, txn, PC_LOG_WARN, "%s: %s, client %s, %" PRIu64 " bytes "
                  "scanned in %" PRIu64 " ms", reason, host->txn_url(txn),
                  host->txn_client(txn), r->r.scanned_bytes, r->r.elapsed_ms);
    host->txn_note(txn, "avscan", "infected");
    host->txn_note(txn, "virus", name);
    host->metric_add(st->self, "infected", 1);
    memset(&ev, 0, sizeof(ev));
    ev.topic = "av.infected";
    ev.client = host->txn_client(txn);
    ev.subject = host->txn_url(txn);
    ev.detail = name;
    ev.value = dir;
    host->event_publish(st->self, &ev);
    return block(st, txn, reason, "virus");
}

static int verdict_of(av_txn_t *st, int dir, const avscan_result_t *r)
{
    pc_txn_t *txn = st->txn;

    switch (r->r.status) {
    case PC_SCAN_INFECTED:
        return infected(st, txn, dir, r);
    case PC_SCAN_CLEAN:
        host->metric_add(st->self, "clean", 1);
        host->txn_note(txn, "avscan", (r->flags & AVSCAN_RES_LIMITS)
                       ? "clean (scan limits reached)" : "clean");
        host->log_txn(st->self, txn, PC_LOG_DEBUG, "%s clean: %" PRIu64 " bytes in %"
                      PRIu64 " ms%s", what(dir), r->r.scanned_bytes, r->r.elapsed_ms,
                      (r->flags & AVSCAN_RES_LIMITS) ? " (limits reached, on_limits allow)" : "");
        return PC_CONTINUE;
    default:
        if (r->flags & AVSCAN_RES_OVERSIZE)
            return oversize(st->self, txn, st->conf, dir,
                            dir == PC_RESPONSE && st->risky, st->conf->max_size + 1,
                            "larger once decoded");
        return scan_failed(st, txn, dir, r->r.error ? r->r.error : "scan error");
    }
}

/* ---- the deferred scan ---------------------------------------------------- */

/* The scan's result, on the transaction's loop. */
static void on_scan_done(void *arg, const pc_scan_result_t *result)
{
    av_txn_t *st = arg;
    pc_defer_t *token = st->token;
    int v;

    st->scan = NULL;
    st->token = NULL;
    v = verdict_of(st, st->dir, (const avscan_result_t *)(const void *)result);
    host->defer_resume(token, v == PC_BLOCK ? PC_BLOCK : PC_CONTINUE);
}

/* The transaction went away (or the host's deadline passed) first. */
static void on_defer_cancel(void *arg)
{
    av_txn_t *st = arg;

    st->token = NULL;
    if (st->scan) {
        avscan_pool_cancel(st->scan);
        st->scan = NULL;
    }
}

/* The BODY hook of a held body: scan it, defer until the result. */
static int scan_body(pc_plugin_t *self, pc_txn_t *txn, const avscan_conf_t *conf, int dir)
{
    av_txn_t *st = host->txn_slot_get(self, txn);
    const void *p = NULL;
    size_t len = 0;
    int flags, fd;
    avscan_req_t req;
    pc_scan_meta_t meta;
    const char *err = NULL;
    char url_name[256];

    flags = host->txn_body_data(txn, dir, &p, &len);
    if (flags & PC_BODY_OVERSIZE) {
        /* Past max_size under a fail-open rule: the host passes the rest
         * on unchecked (and has logged it); fail-closed never gets here. */
        char lim[32];
        avscan_format_size(conf->max_size, lim, sizeof(lim));
        host->log_txn(self, txn, PC_LOG_INFO, "%s larger than max_size %s: passed "
                      "unchecked (on_oversize allow): %s", what(dir), lim, host->txn_url(txn));
        host->txn_note(txn, "avscan", "unchecked: too large");
        host->metric_add(self, "oversize", 1);
        return PC_CONTINUE;
    }
    if (st == NULL) {
        st = state_of(self, txn, conf);
        if (st == NULL)
            return scan_failed(&(av_txn_t){.self = self, .conf = conf}, txn, dir,
                               "out of memory");
    }
    fd = host->txn_body_fd(txn, dir);
    memset(&req, 0, sizeof(req));
    memset(&meta, 0, sizeof(meta));
    meta.size = sizeof(meta);
    meta.origin = PC_SCAN_HTTP;
    meta.client = host->txn_client(txn);
    if (dir == PC_RESPONSE) {
        meta.filename = st->filename[0] ? st->filename : NULL;
        meta.mime_type = st->mime[0] ? st->mime : NULL;
        req.coding = st->coding;
    } else {
        if (avscan_path_filename(host->txn_path(txn), url_name, sizeof(url_name)) == 0)
            meta.filename = url_name;
        req.coding = st->req_coding;
        req.boundary = st->boundary[0] ? st->boundary : NULL;
    }
    req.fd = fd;
    /* The host's spool file is complete and nobody writes it any more. */
    req.fd_immutable = 1;
    if (fd < 0) {
        req.mem = p;
        req.len = len;
    }
    req.decode_limit = conf->max_size;
    req.meta = &meta;
    req.deadline_ms = conf->eng.scan_timeout;
    req.cb = on_scan_done;
    req.arg = st;
    /* The host's deadline is a backstop: the pool answers at its own
     * deadline, a moment earlier, with a precise error. */
    st->token = host->txn_defer(self, txn, conf->eng.scan_timeout + 5000,
                                conf->on_error == AVSCAN_BLOCK ? PC_BLOCK : PC_CONTINUE,
                                on_defer_cancel, st);
    if (st->token == NULL)
        return scan_failed(st, txn, dir, "cannot defer the transaction");
    st->dir = dir;
    st->scan = avscan_pool_submit(&req, &err);
    if (st->scan == NULL) {
        /* Returning a verdict drops the token we took. */
        st->token = NULL;
        return scan_failed(st, txn, dir, err ? err : "cannot submit the scan");
    }
    host->metric_add(self, "scans", 1);
    return PC_DEFER;
}

/* ---- requests ------------------------------------------------------------ */

/* 1 when a request for path would not be scanned (a skipped, non-risky
 * extension): its Range can stay. */
static int path_skipped(const avscan_conf_t *conf, const char *path)
{
    char name[256];

    if (avscan_path_filename(path, name, sizeof(name)) < 0)
        return 0;
    return avscan_ext_match(&conf->skip_extension, name) &&
           !avscan_ext_match(&conf->risky_extension, name);
}

static int want_upload(pc_plugin_t *self, pc_txn_t *txn, const avscan_conf_t *conf)
{
    char buf[512];
    const char *v;
    av_txn_t *st;
    int coding = AVSCAN_CODING_NONE;

    /* The length is the host's business (framing fields are not shown to
     * plugins): past max_size, its on_oversize handling applies. */
    if (host->txn_body_want(self, txn, PC_REQUEST, PC_BODY_HOLD, conf->max_size,
                            conf->on_oversize == AVSCAN_BLOCK ? PC_FAIL_CLOSED
                                                              : PC_FAIL_OPEN) < 0)
        return PC_CONTINUE;  /* no body */
    v = header(txn, PC_REQUEST, "Content-Encoding", buf, sizeof(buf));
    if (v)
        coding = avscan_content_coding(v, strlen(v));
    if (coding == AVSCAN_CODING_UNKNOWN) {
        av_txn_t tmp = {.self = self, .conf = conf};
        return scan_failed(&tmp, txn, PC_REQUEST, "its content coding cannot be decoded");
    }
    st = state_of(self, txn, conf);
    if (st == NULL)
        return PC_CONTINUE;
    st->req_coding = coding;
    v = header(txn, PC_REQUEST, "Content-Type", buf, sizeof(buf));
    if (v == NULL ||
        avscan_multipart_boundary(v, strlen(v), st->boundary, sizeof(st->boundary)) < 0)
        st->boundary[0] = '\0';
    return PC_CONTINUE;
}

int avscan_http_request_headers(pc_plugin_t *self, pc_txn_t *txn, void *obj)
{
    const avscan_conf_t *conf = obj;
    char ae[1024];
    size_t len;
    const char *v;

    /* Ranges: a file fetched piece by piece is never whole in one place,
     * so no piece can be judged. Asking for the whole object instead is
     * always allowed (RFC 9110 14.2: a server MAY ignore Range). */
    if (host->txn_header(txn, PC_REQUEST, "Range", &len) &&
        conf->range_requests == AVSCAN_RANGE_STRIP &&
        !path_skipped(conf, host->txn_path(txn))) {
        host->txn_set_header(txn, PC_REQUEST, "Range", NULL);
        host->txn_set_header(txn, PC_REQUEST, "If-Range", NULL);
        host->txn_note(txn, "range", "stripped for scanning");
        host->metric_add(self, "ranges_stripped", 1);
    }
    /* Offer the origin only the codings we can decode for scanning. */
    v = host->txn_header(txn, PC_REQUEST, "Accept-Encoding", &len);
    if (v && avscan_accept_encoding(v, len, ae, sizeof(ae)) == 1)
        host->txn_set_header(txn, PC_REQUEST, "Accept-Encoding", ae);
    if (conf->scan_uploads)
        return want_upload(self, txn, conf);
    return PC_CONTINUE;
}

int avscan_http_request_body(pc_plugin_t *self, pc_txn_t *txn, void *conf)
{
    return scan_body(self, txn, conf, PC_REQUEST);
}

/* ---- responses ------------------------------------------------------------ */

int avscan_http_response_headers(pc_plugin_t *self, pc_txn_t *txn, void *obj)
{
    const avscan_conf_t *conf = obj;
    int status = host->txn_status(txn), risky, coding = AVSCAN_CODING_NONE;
    char mime[128] = "", filename[256] = "", buf[1024];
    const char *v;
    av_txn_t *st;

    if (strcmp(host->txn_method(txn), "HEAD") == 0 || status < 200 || status == 204 ||
        status == 304)
        return PC_CONTINUE;  /* no body */
    v = header(txn, PC_RESPONSE, "Content-Type", buf, sizeof(buf));
    if (v == NULL || avscan_mime_type(v, strlen(v), mime, sizeof(mime)) < 0)
        mime[0] = '\0';
    /* The name the browser will save it under. */
    v = header(txn, PC_RESPONSE, "Content-Disposition", buf, sizeof(buf));
    if (v == NULL || avscan_disposition_filename(v, strlen(v), filename, sizeof(filename)) < 0)
        if (avscan_path_filename(host->txn_path(txn), filename, sizeof(filename)) < 0)
            filename[0] = '\0';
    risky = avscan_mime_match(&conf->risky_mime, mime) ||
            avscan_ext_match(&conf->risky_extension, filename);
    if (!risky && (avscan_mime_match(&conf->skip_mime, mime) ||
                   avscan_ext_match(&conf->skip_extension, filename))) {
        host->txn_note(txn, "avscan", "skipped");
        host->metric_add(self, "skipped", 1);
        return PC_CONTINUE;
    }
    if (status == 206) {
        /* A piece of something we scan: it cannot be judged alone. With
         * range_requests strip the origin was asked for the whole object,
         * so this is a server that answered a Range we did not forward
         * (or range_requests refuse). */
        av_txn_t tmp = {.self = self, .conf = conf};
        host->log_txn(self, txn, PC_LOG_INFO, "partial response (206) refused: %s",
                      host->txn_url(txn));
        return block(&tmp, txn, "a partial download cannot be checked for viruses; "
                     "download the whole file", "unchecked");
    }
    v = header(txn, PC_RESPONSE, "Content-Encoding", buf, sizeof(buf));
    if (v)
        coding = avscan_content_coding(v, strlen(v));
    if (coding == AVSCAN_CODING_UNKNOWN) {
        av_txn_t tmp = {.self = self, .conf = conf};
        char why[160];
        snprintf(why, sizeof(why), "its content coding '%.60s' cannot be decoded", v);
        return scan_failed(&tmp, txn, PC_RESPONSE, why);
    }
    /* A body larger than max_size is held up to max_size, then the rule
     * for its kind applies (the host's on_oversize handling): fail-closed
     * still shows a block page, since nothing was sent yet. */
    if (host->txn_body_want(self, txn, PC_RESPONSE, PC_BODY_HOLD, conf->max_size,
                            (risky ? conf->on_oversize_risky : conf->on_oversize) == AVSCAN_BLOCK
                                ? PC_FAIL_CLOSED : PC_FAIL_OPEN) < 0)
        return PC_CONTINUE;
    st = state_of(self, txn, conf);
    if (st == NULL)
        return PC_CONTINUE;  /* the BODY hook retries and fails per on_error */
    snprintf(st->mime, sizeof(st->mime), "%s", mime);
    snprintf(st->filename, sizeof(st->filename), "%s", filename);
    st->risky = risky;
    st->coding = coding;
    return PC_CONTINUE;
}

int avscan_http_response_body(pc_plugin_t *self, pc_txn_t *txn, void *conf)
{
    return scan_body(self, txn, conf, PC_RESPONSE);
}
