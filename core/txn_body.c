/* txn_body.c - bodies for plugins: streamed pieces, held bodies in memory or a spool file. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "hooks.h"
#include "log.h"
#include "plugin_host.h"
#include "txn.h"

/*
 * A held body lives in memory up to body_memory_limit, then in an unlinked
 * file (O_TMPFILE) in spool_dir. Spool writes go through libuv's pool
 * (uv_fs_write) and reference the read buffers they copy from, so nothing
 * is copied twice and the loop never waits on the disk; while writes are
 * behind, the side producing the body stops reading (flow control).
 *
 * Releasing a held body reads it back the same way: one read at a time,
 * written on to the client (or upstream) with the usual output queue
 * limits.
 */

#define SPOOL_BUSY_BYTES (1024 * 1024)

typedef struct body_want {
    pc_plugin_t *p;
    int mode;
    uint64_t max;
    int on_oversize;
} body_want_t;

typedef struct spool_write {
    uv_fs_t req;
    struct body_state *bd;
    iobuf_t *ref;       /* the buffer the bytes come from, or NULL */
    char *own;          /* or an owned copy */
    size_t len;
} spool_write_t;

struct body_state {
    txn_t *t;
    int dir;
    body_want_t *wants;
    int nwants;
    int hold;                 /* some plugin holds */
    int stream;               /* some plugin streams */
    uint64_t max;             /* the smallest holder max */
    int fail_closed;          /* some holder fails closed */
    int oversize;             /* passed max under fail-open: passing on */
    uint64_t size;            /* decoded bytes seen */

    /* store */
    char *mem;
    size_t mem_len, mem_cap;
    uv_file fd;               /* -1 until the spool file is open */
    int opening;
    uv_fs_t open_req;
    uint64_t file_len;        /* bytes queued to the file */
    uint64_t file_done;       /* bytes written */
    size_t writes_pending;
    int spool_error;

    /* the piece the stream hooks look at */
    const void *piece;
    size_t piece_len;
    int piece_flags;

    /* release */
    int complete;             /* the whole body has arrived */
    int verdict_done;         /* holders decided (or oversize) */
    int releasing;
    uint64_t release_off;     /* bytes of the store sent on */
    uint64_t release_limit;   /* trickle: do not send beyond this */
    int reading;              /* a spool read is in flight */
    uv_fs_t read_req;
    iobuf_t *read_buf;
    uv_timer_t *trickle;      /* trickle timer (response holds) */
    int trickling;
    int closing;              /* the transaction ended: free when idle */
    int end_pending;          /* the end arrived while spool writes ran */
};

static void on_handle_free(uv_handle_t *h)
{
    free(h);
}

static void body_maybe_free(struct body_state *bd);
static void release_pump(struct body_state *bd);

static struct body_state *body_of(txn_t *t, int dir, int create)
{
    struct body_state *bd = t->body[dir];

    if (bd || !create)
        return bd;
    bd = calloc(1, sizeof(*bd));
    if (bd == NULL)
        return NULL;
    bd->t = t;
    bd->dir = dir;
    bd->fd = -1;
    t->body[dir] = bd;
    return bd;
}

static int want_of(const struct body_state *bd, const pc_plugin_t *p)
{
    for (int i = 0; bd && i < bd->nwants; i++)
        if (bd->wants[i].p == p)
            return bd->wants[i].mode;
    return 0;
}

int txn_body_wanted_by(txn_t *t, int dir, const pc_plugin_t *p)
{
    return want_of(t->body[dir], p);
}

int txn_body_held(txn_t *t, int dir)
{
    return t->body[dir] && t->body[dir]->hold;
}

int txn_body_want(txn_t *t, pc_plugin_t *p, int dir, int mode, uint64_t max,
                  int on_oversize)
{
    struct body_state *bd;
    body_want_t *nw;

    if (dir != PC_REQUEST && dir != PC_RESPONSE)
        return -1;
    if (mode != PC_BODY_STREAM && mode != PC_BODY_HOLD)
        return -1;
    if (t->hs.done == NULL ||
        t->hs.hook != (dir == PC_REQUEST ? PC_HOOK_REQUEST_HEADERS
                                         : PC_HOOK_RESPONSE_HEADERS))
        return -1;  /* only from the matching head hook */
    if (dir == PC_REQUEST && t->req_body == BODY_NONE)
        return -1;
    if (dir == PC_RESPONSE && t->mode == RESP_NONE)
        return -1;
    bd = body_of(t, dir, 1);
    if (bd == NULL)
        return -1;
    for (int i = 0; i < bd->nwants; i++) {
        if (bd->wants[i].p == p) {
            /* Asked twice: the stronger mode wins. */
            if (mode == PC_BODY_HOLD)
                bd->wants[i].mode = PC_BODY_HOLD;
            goto account;
        }
    }
    nw = realloc(bd->wants, (size_t)(bd->nwants + 1) * sizeof(*nw));
    if (nw == NULL)
        return -1;
    bd->wants = nw;
    bd->wants[bd->nwants].p = p;
    bd->wants[bd->nwants].mode = mode;
    bd->wants[bd->nwants].max = max;
    bd->wants[bd->nwants].on_oversize = on_oversize;
    bd->nwants++;
account:
    if (mode == PC_BODY_HOLD) {
        uint64_t m = max && max < t->conf->spool_max ? max : t->conf->spool_max;
        bd->hold = 1;
        if (bd->max == 0 || m < bd->max)
            bd->max = m;
        if (on_oversize == PC_FAIL_CLOSED)
            bd->fail_closed = 1;
    } else {
        bd->stream = 1;
    }
    return 0;
}

int txn_body_data(txn_t *t, int dir, const void **p, size_t *len)
{
    struct body_state *bd = t->body[dir];
    int mode;

    *p = NULL;
    *len = 0;
    if (bd == NULL)
        return 0;
    mode = want_of(bd, t->hs.current);
    if (mode == PC_BODY_HOLD && !bd->oversize) {
        /* The whole body, when it is in memory. */
        if (bd->fd < 0) {
            *p = bd->mem ? bd->mem : "";
            *len = bd->mem_len;
        }
        return (bd->complete ? PC_BODY_LAST : 0) | (bd->oversize ? PC_BODY_OVERSIZE : 0);
    }
    *p = bd->piece ? bd->piece : "";
    *len = bd->piece_len;
    return bd->piece_flags;
}

int txn_body_fd(txn_t *t, int dir)
{
    struct body_state *bd = t->body[dir];

    return bd && !bd->opening ? bd->fd : -1;
}

uint64_t txn_body_size(txn_t *t, int dir)
{
    struct body_state *bd = t->body[dir];

    return bd ? bd->size : 0;
}

int txn_body_spool_busy(txn_t *t)
{
    for (int dir = 0; dir < 2; dir++) {
        struct body_state *bd = t->body[dir];
        if (bd && (bd->opening ||
                   (bd->file_len - bd->file_done) > SPOOL_BUSY_BYTES))
            return 1;
    }
    return 0;
}

/* ---- the spool ---------------------------------------------------------- */

static void spool_after_write(struct body_state *bd);

static void on_spool_write(uv_fs_t *req)
{
    spool_write_t *w = (spool_write_t *)req;
    struct body_state *bd = w->bd;

    if (req->result < 0 || (size_t)req->result != w->len) {
        if (!bd->spool_error)
            log_error(bd->t ? bd->t->c->id : 0, "spool write failed: %s",
                      req->result < 0 ? uv_strerror((int)req->result) : "short write");
        bd->spool_error = 1;
    } else {
        bd->file_done += w->len;
    }
    uv_fs_req_cleanup(req);
    iobuf_unref(w->ref);
    free(w->own);
    free(w);
    bd->writes_pending--;
    spool_after_write(bd);
}

/* Queues len bytes at p (inside ref, or copied when ref is NULL) to the
 * end of the spool file. */
static int spool_append(struct body_state *bd, iobuf_t *ref, const char *p,
                        size_t len)
{
    spool_write_t *w;
    uv_buf_t b;

    if (len == 0)
        return 0;
    w = calloc(1, sizeof(*w));
    if (w == NULL)
        return -1;
    w->bd = bd;
    w->len = len;
    if (ref) {
        w->ref = iobuf_ref(ref);
        b = uv_buf_init((char *)p, (unsigned)len);
    } else {
        w->own = malloc(len);
        if (w->own == NULL) {
            free(w);
            return -1;
        }
        memcpy(w->own, p, len);
        b = uv_buf_init(w->own, (unsigned)len);
    }
    if (uv_fs_write(&bd->t->w->loop, &w->req, bd->fd, &b, 1,
                    (int64_t)bd->file_len, on_spool_write) < 0) {
        iobuf_unref(w->ref);
        free(w->own);
        free(w);
        return -1;
    }
    bd->file_len += len;
    bd->writes_pending++;
    return 0;
}

static void on_spool_open(uv_fs_t *req)
{
    struct body_state *bd = req->data;
    int fd = (int)req->result;

    uv_fs_req_cleanup(req);
    bd->opening = 0;
    if (bd->closing || bd->t == NULL) {
        if (fd >= 0) {
            uv_fs_t cl;
            uv_fs_close(NULL, &cl, fd, NULL);
            uv_fs_req_cleanup(&cl);
        }
        body_maybe_free(bd);
        return;
    }
    if (fd < 0) {
        log_error(bd->t->c->id, "cannot open a spool file in %s: %s",
                  bd->t->conf->spool_dir, uv_strerror(fd));
        bd->spool_error = 1;
        spool_after_write(bd);
        return;
    }
    bd->fd = fd;
    /* What piled up in memory meanwhile goes first. */
    if (bd->mem_len && spool_append(bd, NULL, bd->mem, bd->mem_len) < 0)
        bd->spool_error = 1;
    free(bd->mem);
    bd->mem = NULL;
    bd->mem_len = bd->mem_cap = 0;
    spool_after_write(bd);
}

static int spool_open(struct body_state *bd)
{
    bd->opening = 1;
    bd->open_req.data = bd;
    if (uv_fs_open(&bd->t->w->loop, &bd->open_req, bd->t->conf->spool_dir,
                   O_TMPFILE | O_RDWR | O_CLOEXEC, 0600, on_spool_open) < 0) {
        bd->opening = 0;
        return -1;
    }
    return 0;
}

static int mem_append(struct body_state *bd, const char *p, size_t len)
{
    if (bd->mem_len + len > bd->mem_cap) {
        size_t cap = bd->mem_cap ? bd->mem_cap : 16384;
        char *n;
        while (cap < bd->mem_len + len)
            cap *= 2;
        n = realloc(bd->mem, cap);
        if (n == NULL)
            return -1;
        bd->mem = n;
        bd->mem_cap = cap;
    }
    memcpy(bd->mem + bd->mem_len, p, len);
    bd->mem_len += len;
    return 0;
}

/* Stores a piece of a held body. Returns 0 or -1. */
static int store_piece(struct body_state *bd, iobuf_t *b, const char *p, size_t len)
{
    txn_t *t = bd->t;

    if (bd->fd >= 0)
        return spool_append(bd, b, p, len);
    if (!bd->opening && bd->mem_len + len <= t->conf->body_memory_limit)
        return mem_append(bd, p, len);
    if (!bd->opening && spool_open(bd) < 0)
        return -1;
    /* Until the file is open, memory takes it (flow control stops the
     * sender meanwhile, see txn_body_spool_busy). */
    return mem_append(bd, p, len);
}

static uint64_t stored_len(const struct body_state *bd)
{
    return bd->fd >= 0 ? bd->file_done : bd->mem_len;
}

/* ---- stream hooks ------------------------------------------------------- */

/* Calls every streamer's BODY hook with the current piece; returns
 * PC_CONTINUE or PC_BLOCK. Streams cannot defer. */
static int stream_hooks(struct body_state *bd)
{
    txn_t *t = bd->t;
    const plugin_set_t *s = plugin_set_of(t->conf);
    pc_hook_t hook = bd->dir == PC_REQUEST ? PC_HOOK_REQUEST_BODY : PC_HOOK_RESPONSE_BODY;
    pc_plugin_t *saved = t->hs.current;

    for (int i = 0; i < s->n; i++) {
        pc_txn_hook_fn fn = s->v[i].p->txn_hooks[hook];
        int v;
        if (fn == NULL || want_of(bd, s->v[i].p) != PC_BODY_STREAM)
            continue;
        t->hs.current = s->v[i].p;
        v = fn(s->v[i].p, (pc_txn_t *)t, s->v[i].conf);
        if (v == PC_BLOCK) {
            hooks_block(t, s->v[i].p->name, "blocked while streaming");
            t->hs.current = saved;
            return PC_BLOCK;
        }
        if (v == PC_DEFER)
            log_error(t->c->id, "plugin %s cannot defer a streamed body piece; "
                      "continuing", s->v[i].p->name);
    }
    t->hs.current = saved;
    return PC_CONTINUE;
}

/* ---- oversize ----------------------------------------------------------- */

/* The held body passed max. Returns 0 to go on (fail-open: passing on
 * unchecked) or -1 (fail-closed: blocked; t->block set). */
static int handle_oversize(struct body_state *bd)
{
    txn_t *t = bd->t;
    const plugin_set_t *s = plugin_set_of(t->conf);
    pc_hook_t hook = bd->dir == PC_REQUEST ? PC_HOOK_REQUEST_BODY : PC_HOOK_RESPONSE_BODY;
    char reason[160];

    if (bd->fail_closed) {
        const char *who = "core";
        for (int i = 0; i < bd->nwants; i++)
            if (bd->wants[i].mode == PC_BODY_HOLD && bd->wants[i].on_oversize == PC_FAIL_CLOSED)
                who = bd->wants[i].p->name;
        snprintf(reason, sizeof(reason), "the %s is larger than the %" PRIu64
                 " bytes that can be checked",
                 bd->dir == PC_REQUEST ? "upload" : "download", bd->max);
        log_warn(t->c->id, "%s (fail-closed by %s)", reason, who);
        if (!t->blocked) {
            t->block.plugin = NULL;  /* our reason, not a plugin's details */
            hooks_block(t, who, reason);
        }
        return -1;
    }
    log_warn(t->c->id, "the %s is larger than %" PRIu64 " bytes: passed on "
             "unchecked (on_oversize allows it)",
             bd->dir == PC_REQUEST ? "upload" : "download", bd->max);
    txn_note(t, "unchecked", "oversize");
    bd->oversize = 1;
    bd->piece = NULL;
    bd->piece_len = 0;
    bd->piece_flags = PC_BODY_OVERSIZE;
    for (int i = 0; i < s->n; i++) {
        pc_txn_hook_fn fn = s->v[i].p->txn_hooks[hook];
        pc_plugin_t *saved = t->hs.current;
        if (fn == NULL || want_of(bd, s->v[i].p) != PC_BODY_HOLD)
            continue;
        t->hs.current = s->v[i].p;
        fn(s->v[i].p, (pc_txn_t *)t, s->v[i].conf);  /* told; verdict moot */
        t->hs.current = saved;
    }
    return 0;
}

/* ---- response side ------------------------------------------------------ */

static void on_trickle(uv_timer_t *timer);

int txn_body_response_begin(txn_t *t)
{
    struct body_state *bd = t->body[PC_RESPONSE];

    if (bd == NULL || bd->nwants == 0)
        return 0;
    t->inspect = 1;
    /* Pieces are the decoded body, so the output frames them itself. */
    if (t->mode == RESP_RAW)
        t->mode = t->resp_length >= 0 ? RESP_LENGTH : RESP_CHUNK;
    if (bd->hold) {
        t->holding = 1;
        if (t->conf->hold_trickle_after) {
            bd->trickle = malloc(sizeof(*bd->trickle));
            if (bd->trickle) {
                uv_timer_init(&t->w->loop, bd->trickle);
                bd->trickle->data = bd;
                uv_timer_start(bd->trickle, on_trickle, t->conf->hold_trickle_after,
                               t->conf->hold_trickle_interval);
            }
        }
    }
    return 0;
}

/* Forwards a piece to the client in the output framing. */
static int forward_piece(txn_t *t, iobuf_t *b, const char *p, size_t len)
{
    int chunk = t->mode == RESP_CHUNK;

    if (len == 0)
        return 0;
    if (b) {
        if (outq_slice(&t->c->out, b, p, len, chunk) < 0)
            return -1;
    } else {
        if (chunk) {
            char hdr[24];
            int n = snprintf(hdr, sizeof(hdr), "%zx\r\n", len);
            if (outq_copy(&t->c->out, hdr, (size_t)n) < 0 ||
                outq_copy(&t->c->out, p, len) < 0 ||
                outq_copy(&t->c->out, "\r\n", 2) < 0)
                return -1;
            t->bytes_out += (uint64_t)n + 2;
        } else if (outq_copy(&t->c->out, p, len) < 0) {
            return -1;
        }
    }
    t->bytes_out += len;
    if (chunk && b) {
        char hdr[24];
        t->bytes_out += (uint64_t)snprintf(hdr, sizeof(hdr), "%zx\r\n", len) + 2;
    }
    return 0;
}

int txn_body_response_piece(txn_t *t, iobuf_t *b, const char *p, size_t len)
{
    struct body_state *bd = t->body[PC_RESPONSE];

    bd->size += len;
    if (bd->stream) {
        bd->piece = p;
        bd->piece_len = len;
        bd->piece_flags = 0;
        if (stream_hooks(bd) == PC_BLOCK)
            return -1;
    }
    if (!bd->hold || bd->verdict_done) {
        if (bd->releasing || stored_len(bd) > bd->release_off ||
            bd->file_len > bd->file_done) {
            /* Earlier bytes are still being released: keep the order. */
            return store_piece(bd, b, p, len);
        }
        return forward_piece(t, b, p, len);
    }
    if (bd->size > bd->max) {
        if (handle_oversize(bd) < 0)
            return -1;
        bd->verdict_done = 1;
        if (store_piece(bd, b, p, len) < 0)
            return -1;
        if (!t->head_sent &&
            txn_send_response_head(t, t->mode == RESP_LENGTH ? t->resp_length : -1) < 0)
            return -1;
        bd->release_limit = UINT64_MAX;
        release_pump(bd);
        return 0;
    }
    if (store_piece(bd, b, p, len) < 0) {
        bd->spool_error = 1;
        return -1;
    }
    return 0;
}

static void hold_verdict(txn_t *t, int verdict);

void txn_body_response_end(txn_t *t)
{
    struct body_state *bd = t->body[PC_RESPONSE];

    bd->complete = 1;
    if (bd->spool_error) {
        txn_respond_error(t, 500, "TCP_MISS", "ERR_SPOOL",
                          "The proxy could not store the download for checking.");
        return;
    }
    if (bd->file_len > bd->file_done || bd->opening) {
        /* The last spool writes finish first: checkers read the file. */
        bd->end_pending = 1;
        return;
    }
    bd->piece = NULL;
    bd->piece_len = 0;
    bd->piece_flags = PC_BODY_LAST;
    if (!bd->hold || bd->verdict_done) {
        /* Streamers hear the end; then the rest goes out. */
        if (bd->stream && stream_hooks(bd) == PC_BLOCK) {
            txn_respond_block(t);
            return;
        }
        bd->release_limit = UINT64_MAX;
        bd->verdict_done = 1;
        release_pump(bd);
        return;
    }
    txn_hold(t);
    hooks_run(t, PC_HOOK_RESPONSE_BODY, hold_verdict);
    txn_release(t);
}

static void hold_verdict(txn_t *t, int verdict)
{
    struct body_state *bd = t->body[PC_RESPONSE];

    if (verdict == PC_BLOCK) {
        txn_respond_block(t);
        return;
    }
    bd->verdict_done = 1;
    if (bd->trickle) {
        uv_close((uv_handle_t *)bd->trickle, on_handle_free);
        bd->trickle = NULL;
    }
    if (!t->head_sent) {
        /* The whole body is known now: say its length. */
        if (t->mode == RESP_CHUNK)
            t->mode = RESP_LENGTH;
        if (txn_send_response_head(t, (t->mode == RESP_LENGTH) ? (int64_t)bd->size : -1) < 0)
            return;
    }
    bd->release_limit = UINT64_MAX;
    release_pump(bd);
}

/* Trickling: a little of the held body every interval, never the last
 * hold_trickle_keep bytes, so a waiting browser stays patient but cannot
 * get a complete file before the verdict. */
static void on_trickle(uv_timer_t *timer)
{
    struct body_state *bd = timer->data;
    txn_t *t = bd->t;
    uint64_t total, limit;

    if (t == NULL || bd->verdict_done || t->ended)
        return;
    if (!bd->trickling) {
        bd->trickling = 1;
        log_info(t->c->id, "holding the download for checking: trickling to keep "
                 "the client waiting");
        if (txn_send_response_head(t, t->mode == RESP_LENGTH ? t->resp_length : -1) < 0)
            return;
    }
    total = t->mode == RESP_LENGTH && t->resp_length >= 0 ? (uint64_t)t->resp_length
                                                          : bd->size;
    limit = bd->release_off + t->conf->hold_trickle_bytes;
    if (total <= t->conf->hold_trickle_keep)
        return;
    if (limit > total - t->conf->hold_trickle_keep)
        limit = total - t->conf->hold_trickle_keep;
    if (limit > stored_len(bd))
        limit = stored_len(bd);
    if (limit > bd->release_off) {
        bd->release_limit = limit;
        release_pump(bd);
    }
}

/* ---- releasing ---------------------------------------------------------- */

static void release_done(struct body_state *bd);

static void on_release_read(uv_fs_t *req)
{
    struct body_state *bd = req->data;
    txn_t *t = bd->t;
    ssize_t n = req->result;
    iobuf_t *b = bd->read_buf;

    uv_fs_req_cleanup(req);
    bd->reading = 0;
    bd->read_buf = NULL;
    if (bd->closing || t == NULL) {
        iobuf_unref(b);
        body_maybe_free(bd);
        return;
    }
    if (n <= 0) {
        iobuf_unref(b);
        log_error(t->c->id, "spool read failed: %s", n < 0 ? uv_strerror((int)n) : "end of file");
        txn_abort(t, "cannot read the held body back");
        return;
    }
    bd->release_off += (uint64_t)n;
    if (bd->dir == PC_RESPONSE) {
        if (forward_piece(t, b, b->data, (size_t)n) < 0) {
            iobuf_unref(b);
            txn_abort(t, "client write failed");
            return;
        }
    } else if (t->up) {
        if (outq_slice(&t->up->out, b, b->data, (size_t)n, 0) < 0) {
            iobuf_unref(b);
            txn_abort(t, "upstream write failed");
            return;
        }
    }
    iobuf_unref(b);
    release_pump(bd);
}

static outq_t *release_queue(struct body_state *bd)
{
    txn_t *t = bd->t;

    if (bd->dir == PC_RESPONSE)
        return &t->c->out;
    return t->up ? &t->up->out : NULL;
}

/* Sends held bytes on, up to release_limit, as fast as the receiver takes
 * them. Ends the transaction side when everything went. */
static void release_pump(struct body_state *bd)
{
    txn_t *t = bd->t;
    outq_t *q = release_queue(bd);
    uint64_t avail, upto;

    if (t == NULL || q == NULL || bd->reading)
        return;
    bd->releasing = 1;
    if (bd->fd < 0) {
        /* In memory: one copy out, then direct forwarding. */
        upto = bd->mem_len < bd->release_limit ? bd->mem_len : bd->release_limit;
        if (upto > bd->release_off) {
            int rc;
            if (bd->dir == PC_RESPONSE)
                rc = forward_piece(t, NULL, bd->mem + bd->release_off,
                                   (size_t)(upto - bd->release_off));
            else
                rc = outq_copy(q, bd->mem + bd->release_off,
                               (size_t)(upto - bd->release_off));
            if (rc < 0) {
                txn_abort(t, "write failed");
                return;
            }
            bd->release_off = upto;
        }
        if (bd->release_off == bd->mem_len && bd->verdict_done)
            release_done(bd);
        return;
    }
    avail = bd->file_done < bd->release_limit ? bd->file_done : bd->release_limit;
    if (bd->release_off >= avail) {
        if (bd->verdict_done && bd->release_off == bd->file_len &&
            bd->file_len == bd->file_done)
            release_done(bd);
        return;
    }
    if (q->pending > OUTQ_HIGH)
        return;  /* resumed by txn_body_drained */
    bd->read_buf = iobuf_new(&t->w->bufs);
    if (bd->read_buf == NULL) {
        txn_abort(t, "out of memory");
        return;
    }
    {
        size_t want = avail - bd->release_off < bd->read_buf->cap
                          ? (size_t)(avail - bd->release_off)
                          : bd->read_buf->cap;
        uv_buf_t ub = uv_buf_init(bd->read_buf->data, (unsigned)want);
        bd->read_req.data = bd;
        if (uv_fs_read(&t->w->loop, &bd->read_req, bd->fd, &ub, 1,
                       (int64_t)bd->release_off, on_release_read) < 0) {
            iobuf_unref(bd->read_buf);
            bd->read_buf = NULL;
            txn_abort(t, "cannot read the held body back");
            return;
        }
        bd->reading = 1;
    }
}

/* Everything held went out: the direction is done. */
static void release_done(struct body_state *bd)
{
    txn_t *t = bd->t;

    bd->releasing = 0;
    if (bd->dir == PC_RESPONSE) {
        if (!bd->complete)
            return;  /* oversize pass-through: more pieces will come */
        if (t->mode == RESP_CHUNK) {
            if (outq_copy(&t->c->out, "0\r\n\r\n", 5) == 0)
                t->bytes_out += 5;
        }
        txn_done(t, 1);
    }
    /* A held request body is out; the response follows as usual. */
}

void txn_body_drained(txn_t *t)
{
    for (int dir = 0; dir < 2; dir++) {
        struct body_state *bd = t->body[dir];
        if (bd && bd->releasing && !bd->reading)
            release_pump(bd);
    }
}

static void spool_after_write(struct body_state *bd)
{
    txn_t *t = bd->t;

    if (t == NULL || bd->closing) {
        body_maybe_free(bd);
        return;
    }
    if (bd->spool_error && bd->end_pending) {
        bd->end_pending = 0;
        if (bd->dir == PC_RESPONSE)
            txn_body_response_end(t);
        else
            txn_body_request_end(t);
        return;
    }
    if (bd->end_pending && bd->file_len == bd->file_done && !bd->opening) {
        bd->end_pending = 0;
        if (bd->dir == PC_RESPONSE)
            txn_body_response_end(t);
        else
            txn_body_request_end(t);
        return;
    }
    if (bd->releasing)
        release_pump(bd);
    /* The producer may read again. */
    if (!txn_body_spool_busy(t)) {
        if (bd->dir == PC_RESPONSE && t->up && t->up->flow_stopped &&
            t->c->out.pending <= OUTQ_HIGH && !t->resp_hooks_pending) {
            t->up->flow_stopped = 0;
            upstream_read_start(t->up);
        } else if (bd->dir == PC_REQUEST && t->c->flow_stopped) {
            client_flow_start(t->c);
        }
    }
}

/* ---- request side ------------------------------------------------------- */

static void request_verdict(txn_t *t, int verdict);

void txn_body_request_hold_start(txn_t *t)
{
    client_t *c = t->c;
    size_t elen;
    const char *expect = http_msg_get(&t->req, "Expect", &elen);

    t->req_inspect = 1;
    if (expect) {
        /* We take the body ourselves before any upstream hears of it, so
         * the client's wait for 100 (RFC 9110 10.1.1) is ours to end. */
        static const char cont[] = "HTTP/1.1 100 Continue\r\n\r\n";
        http_msg_remove(&t->req, "Expect");
        if (!t->req_done && t->vminor >= 1 && outq_copy(&c->out, cont, sizeof(cont) - 1) == 0)
            t->bytes_out += sizeof(cont) - 1;
    }
    t->body_streaming = 1;
    if (t->req_done) {
        txn_body_request_end(t);
        return;
    }
    client_resume_parse(c);
}

int txn_body_request_piece(txn_t *t, iobuf_t *b, const char *p, size_t len)
{
    struct body_state *bd = t->body[PC_REQUEST];

    if (bd == NULL)
        return 0;
    bd->size += len;
    if (bd->stream) {
        bd->piece = p;
        bd->piece_len = len;
        bd->piece_flags = 0;
        if (stream_hooks(bd) == PC_BLOCK)
            return -1;
    }
    if (!bd->hold)
        return 0;  /* streamed only: the raw bytes go upstream as usual */
    if (bd->size > bd->max && !bd->oversize) {
        if (handle_oversize(bd) < 0)
            return -1;
    }
    if (store_piece(bd, b, p, len) < 0) {
        bd->spool_error = 1;
        return -1;
    }
    if (txn_body_spool_busy(t))
        client_flow_stop(t->c);
    return 0;
}

void txn_body_request_end(txn_t *t)
{
    struct body_state *bd = t->body[PC_REQUEST];

    if (bd == NULL)
        return;
    bd->complete = 1;
    if (bd->spool_error) {
        t->close_after = 1;
        txn_respond_error(t, 500, "TCP_MISS", "ERR_SPOOL",
                          "The proxy could not store the upload for checking.");
        return;
    }
    if (bd->file_len > bd->file_done || bd->opening) {
        bd->end_pending = 1;
        return;
    }
    bd->piece = NULL;
    bd->piece_len = 0;
    bd->piece_flags = PC_BODY_LAST;
    if (!bd->hold) {
        if (bd->stream && stream_hooks(bd) == PC_BLOCK)
            txn_respond_block(t);
        return;
    }
    txn_hold(t);
    hooks_run(t, PC_HOOK_REQUEST_BODY, request_verdict);
    txn_release(t);
}

static void request_verdict(txn_t *t, int verdict)
{
    if (verdict == PC_BLOCK) {
        txn_respond_block(t);
        return;
    }
    t->body[PC_REQUEST]->verdict_done = 1;
    /* The checked body goes upstream with a length (it was decoded). */
    t->req_body = BODY_LENGTH;
    t->req_clen = t->body[PC_REQUEST]->size;
    t->req_held = 1;
    txn_request_ready(t);
}

void txn_body_request_send(txn_t *t)
{
    struct body_state *bd = t->body[PC_REQUEST];

    bd->release_limit = UINT64_MAX;
    release_pump(bd);
}

/* ---- end of a transaction ----------------------------------------------- */

static void body_maybe_free(struct body_state *bd)
{
    if (!bd->closing || bd->opening || bd->reading || bd->writes_pending)
        return;
    if (bd->fd >= 0) {
        uv_fs_t cl;
        /* Closing an unlinked file only drops it: no disk wait worth a
         * round trip through the pool. */
        uv_fs_close(NULL, &cl, bd->fd, NULL);
        uv_fs_req_cleanup(&cl);
        bd->fd = -1;
    }
    free(bd->mem);
    free(bd->wants);
    free(bd);
}

void txn_body_release(txn_t *t)
{
    for (int dir = 0; dir < 2; dir++) {
        struct body_state *bd = t->body[dir];
        if (bd == NULL)
            continue;
        t->body[dir] = NULL;
        bd->t = NULL;
        bd->closing = 1;
        if (bd->trickle) {
            uv_close((uv_handle_t *)bd->trickle, on_handle_free);
            bd->trickle = NULL;
        }
        body_maybe_free(bd);
    }
}
