/* accesslog.c - the access log: Squid native and JSON lines, buffered per worker. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "accesslog.h"
#include "http_msg.h"
#include "log.h"

/* Beyond this much unwritten log data (a stalled disk), lines are dropped
 * and counted rather than growing memory without bound. */
#define ALOG_MAX_PENDING (8u * 1024 * 1024)

typedef struct alog_file {
    char *path;
    int fd;
    enum conf_log_format format;
} alog_file_t;

struct accesslog_files {
    atomic_uint refs;
    int n;
    alog_file_t *f;
};

typedef struct alog_out {
    struct accesslog *a;
    const alog_file_t *file;
    strbuf_t pending;       /* lines not yet handed to a write */
    char *inflight;         /* the buffer of the write in progress */
    size_t inflight_len;
    uv_fs_t req;
    int busy;
    uint64_t dropped;
} alog_out_t;

struct accesslog {
    uv_loop_t *loop;
    accesslog_files_t *files;
    int n;
    alog_out_t *outs;
    int closing;
    int nbusy;
};

accesslog_files_t *accesslog_files_open(const conf_t *conf, char *err,
                                        size_t errlen)
{
    accesslog_files_t *f = calloc(1, sizeof(*f));
    int i;

    if (f == NULL)
        goto oom;
    atomic_init(&f->refs, 1);
    f->n = conf->naccess_logs;
    f->f = calloc((size_t)(f->n ? f->n : 1), sizeof(*f->f));
    if (f->f == NULL)
        goto oom;
    for (i = 0; i < f->n; i++)
        f->f[i].fd = -1;
    for (i = 0; i < f->n; i++) {
        alog_file_t *lf = &f->f[i];
        lf->format = conf->access_logs[i].format;
        lf->path = strdup(conf->access_logs[i].path);
        if (lf->path == NULL)
            goto oom;
        lf->fd = open(lf->path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640);
        if (lf->fd < 0) {
            snprintf(err, errlen, "cannot open access log '%s': %s", lf->path,
                     strerror(errno));
            accesslog_files_unref(f);
            return NULL;
        }
    }
    return f;
oom:
    snprintf(err, errlen, "out of memory opening access logs");
    accesslog_files_unref(f);
    return NULL;
}

int accesslog_files_reopen(accesslog_files_t *f)
{
    int rc = 0;

    for (int i = 0; i < f->n; i++) {
        int fd = open(f->f[i].path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC,
                      0640);
        if (fd < 0) {
            log_error(0, "cannot reopen access log '%s': %s", f->f[i].path,
                      strerror(errno));
            rc = -1;
            continue;
        }
        /* Same descriptor number, new file: writes in flight are safe. */
        if (dup2(fd, f->f[i].fd) < 0) {
            log_error(0, "cannot reopen access log '%s': %s", f->f[i].path,
                      strerror(errno));
            rc = -1;
        }
        close(fd);
    }
    return rc;
}

accesslog_files_t *accesslog_files_ref(accesslog_files_t *f)
{
    atomic_fetch_add(&f->refs, 1);
    return f;
}

void accesslog_files_unref(accesslog_files_t *f)
{
    if (f == NULL || atomic_fetch_sub(&f->refs, 1) != 1)
        return;
    for (int i = 0; f->f && i < f->n; i++) {
        if (f->f[i].fd >= 0)
            close(f->f[i].fd);
        free(f->f[i].path);
    }
    free(f->f);
    free(f);
}

accesslog_t *accesslog_new(uv_loop_t *loop, accesslog_files_t *files)
{
    accesslog_t *a = calloc(1, sizeof(*a));

    if (a == NULL)
        return NULL;
    a->loop = loop;
    a->files = accesslog_files_ref(files);
    a->n = files->n;
    a->outs = calloc((size_t)(a->n ? a->n : 1), sizeof(*a->outs));
    if (a->outs == NULL) {
        accesslog_files_unref(a->files);
        free(a);
        return NULL;
    }
    for (int i = 0; i < a->n; i++) {
        a->outs[i].a = a;
        a->outs[i].file = &files->f[i];
        strbuf_init(&a->outs[i].pending);
    }
    return a;
}

static void accesslog_free_if_done(accesslog_t *a)
{
    if (!a->closing || a->nbusy > 0)
        return;
    for (int i = 0; i < a->n; i++)
        strbuf_free(&a->outs[i].pending);
    free(a->outs);
    accesslog_files_unref(a->files);
    free(a);
}

static void out_flush(alog_out_t *o);

static void on_written(uv_fs_t *req)
{
    alog_out_t *o = req->data;
    accesslog_t *a = o->a;

    if (req->result < 0)
        log_error(0, "access log '%s': write failed: %s", o->file->path,
                  uv_strerror((int)req->result));
    uv_fs_req_cleanup(req);
    free(o->inflight);
    o->inflight = NULL;
    o->busy = 0;
    a->nbusy--;
    if (o->pending.len)
        out_flush(o);
    accesslog_free_if_done(a);
}

static void out_flush(alog_out_t *o)
{
    uv_buf_t b;
    int rc;

    if (o->busy || o->pending.len == 0)
        return;
    /* Hand the whole pending buffer to the write; start a fresh one. */
    o->inflight = o->pending.p;
    o->inflight_len = o->pending.len;
    strbuf_init(&o->pending);
    b = uv_buf_init(o->inflight, (unsigned)o->inflight_len);
    o->req.data = o;
    rc = uv_fs_write(o->a->loop, &o->req, o->file->fd, &b, 1, -1, on_written);
    if (rc < 0) {
        log_error(0, "access log '%s': write failed: %s", o->file->path,
                  uv_strerror(rc));
        free(o->inflight);
        o->inflight = NULL;
        return;
    }
    o->busy = 1;
    o->a->nbusy++;
}

/* The media type without parameters or spaces, so the field stays one
 * token for positional parsers. */
static void mime_token(const char *mime, char *out, size_t len)
{
    size_t n = 0;

    if (mime == NULL || *mime == '\0') {
        snprintf(out, len, "-");
        return;
    }
    for (; *mime && *mime != ';' && n + 1 < len; mime++)
        if (*mime > ' ' && *mime < 0x7f)
            out[n++] = *mime;
    out[n] = '\0';
    if (n == 0)
        snprintf(out, len, "-");
}

/* A log field never holds a space or control byte: squid-format parsers
 * split on spaces. A '%' stays as it is, as in Squid (which escapes only
 * unescaped unsafe bytes): a URL is logged as the client sent it, so
 * "/a%7E" is not turned into "/a%257E" for the log analysers. */
static void add_token(strbuf_t *s, const char *v)
{
    static const char hex[] = "0123456789ABCDEF";

    if (v == NULL || *v == '\0') {
        strbuf_add(s, "-", 1);
        return;
    }
    for (; *v; v++) {
        unsigned char ch = (unsigned char)*v;
        if (ch <= ' ' || ch >= 0x7f) {
            char e[3] = {'%', hex[ch >> 4], hex[ch & 15]};
            strbuf_add(s, e, 3);
        } else {
            strbuf_add(s, (const char *)v, 1);
        }
    }
}

static void format_squid(strbuf_t *s, const accesslog_rec_t *r)
{
    char mime[128];

    mime_token(r->mime, mime, sizeof(mime));
    /* "%lu.%03u %6lu " and " %s/%03d %lu ", without printf. */
    strbuf_add_u64(s, r->end_ms / 1000, 0, '0');
    strbuf_add(s, ".", 1);
    strbuf_add_u64(s, r->end_ms % 1000, 3, '0');
    strbuf_add(s, " ", 1);
    strbuf_add_u64(s, r->elapsed_ms, 6, ' ');
    strbuf_add(s, " ", 1);
    add_token(s, r->client);
    strbuf_add(s, " ", 1);
    strbuf_adds(s, r->code);
    strbuf_add(s, "/", 1);
    strbuf_add_u64(s, r->status > 0 ? (uint64_t)r->status : 0, 3, '0');
    strbuf_add(s, " ", 1);
    strbuf_add_u64(s, r->bytes, 0, '0');
    strbuf_add(s, " ", 1);
    add_token(s, r->method);
    strbuf_add(s, " ", 1);
    add_token(s, r->url);
    strbuf_add(s, " ", 1);
    add_token(s, r->user);
    strbuf_add(s, " ", 1);
    add_token(s, r->hier);
    strbuf_add(s, " ", 1);
    add_token(s, mime);
    strbuf_add(s, "\n", 1);
}

static void json_str(strbuf_t *s, const char *v)
{
    static const char hex[] = "0123456789abcdef";

    if (v == NULL) {
        strbuf_adds(s, "null");
        return;
    }
    strbuf_add(s, "\"", 1);
    for (; *v; v++) {
        unsigned char ch = (unsigned char)*v;
        if (ch == '"' || ch == '\\') {
            char e[2] = {'\\', (char)ch};
            strbuf_add(s, e, 2);
        } else if (ch < 0x20 || ch >= 0x7f) {
            /* Bytes, not characters: keeps the line valid JSON whatever a
             * client sent. */
            char e[6] = {'\\', 'u', '0', '0', hex[ch >> 4], hex[ch & 15]};
            strbuf_add(s, e, 6);
        } else {
            strbuf_add(s, (const char *)v, 1);
        }
    }
    strbuf_add(s, "\"", 1);
}

static void format_json(strbuf_t *s, const accesslog_rec_t *r)
{
    strbuf_addf(s, "{\"time\":%" PRIu64 ".%03u,\"elapsed_ms\":%" PRIu64
                   ",\"conn\":%" PRIu64 ",\"client\":",
                r->end_ms / 1000, (unsigned)(r->end_ms % 1000), r->elapsed_ms,
                r->conn_id);
    json_str(s, r->client);
    strbuf_adds(s, ",\"code\":");
    json_str(s, r->code);
    strbuf_addf(s, ",\"status\":%d,\"bytes\":%" PRIu64 ",\"bytes_in\":%" PRIu64
                   ",\"method\":",
                r->status, r->bytes, r->bytes_in);
    json_str(s, r->method);
    strbuf_adds(s, ",\"url\":");
    json_str(s, r->url);
    strbuf_adds(s, ",\"user\":");
    json_str(s, r->user);
    strbuf_adds(s, ",\"hier\":");
    json_str(s, r->hier);
    strbuf_adds(s, ",\"mime\":");
    json_str(s, r->mime && *r->mime ? r->mime : NULL);
    if (r->block_plugin) {
        strbuf_adds(s, ",\"block_plugin\":");
        json_str(s, r->block_plugin);
        strbuf_adds(s, ",\"block_reason\":");
        json_str(s, r->block_reason);
    }
    if (r->category) {
        strbuf_adds(s, ",\"category\":");
        json_str(s, r->category);
    }
    if (r->notes) {
        strbuf_adds(s, ",\"notes\":{");
        for (const accesslog_note_t *n = r->notes; n; n = n->next) {
            json_str(s, n->name);
            strbuf_add(s, ":", 1);
            json_str(s, n->value);
            if (n->next)
                strbuf_add(s, ",", 1);
        }
        strbuf_add(s, "}", 1);
    }
    strbuf_adds(s, "}\n");
}

void accesslog_write(accesslog_t *a, const accesslog_rec_t *rec)
{
    for (int i = 0; i < a->n; i++) {
        alog_out_t *o = &a->outs[i];

        if (o->pending.len > ALOG_MAX_PENDING) {
            if (o->dropped++ == 0)
                log_error(0, "access log '%s' is not keeping up; dropping lines",
                          o->file->path);
            continue;
        }
        if (o->file->format == CONF_LOG_JSON)
            format_json(&o->pending, rec);
        else
            format_squid(&o->pending, rec);
        out_flush(o);
    }
}

void accesslog_close(accesslog_t *a)
{
    if (a == NULL)
        return;
    a->closing = 1;
    for (int i = 0; i < a->n; i++)
        out_flush(&a->outs[i]);
    accesslog_free_if_done(a);
}
