/* plugin_host.c - the host function table plugins call (pc_host_t). */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "client.h"
#include "control.h"
#include "hooks.h"
#include "intercept.h"
#include "log.h"
#include "plugin_host.h"
#include "server.h"
#include "txn.h"

#define TXN(x) ((txn_t *)(void *)(x))
#define CONN(x) ((client_t *)(void *)(x))

/* ---- logging ------------------------------------------------------------ */

static void host_vlog(pc_plugin_t *self, uint64_t id, int level, const char *fmt,
                      va_list ap)
{
    char msg[2048];

    if (level < PC_LOG_EMERG || level > PC_LOG_DEBUG)
        level = PC_LOG_ERR;
    if (!log_enabled((enum conf_log_level)level))
        return;
    vsnprintf(msg, sizeof(msg), fmt, ap);
    log_write((enum conf_log_level)level, id, "%s: %s", self ? self->name : "?", msg);
}

static void host_log(pc_plugin_t *self, int level, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    host_vlog(self, 0, level, fmt, ap);
    va_end(ap);
}

static void host_log_txn(pc_plugin_t *self, pc_txn_t *txn, int level,
                         const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    host_vlog(self, txn ? TXN(txn)->c->id : 0, level, fmt, ap);
    va_end(ap);
}

/* ---- the plugin --------------------------------------------------------- */

static const char *host_plugin_name(pc_plugin_t *self)
{
    return self->name;
}

static void host_plugin_set_data(pc_plugin_t *self, void *data)
{
    self->data = data;
}

static void *host_plugin_data(pc_plugin_t *self)
{
    return self->data;
}

/* ---- configuration ------------------------------------------------------ */

static char *host_conf_path(const pc_directive_args_t *args, const char *arg)
{
    conf_node_t n;

    memset(&n, 0, sizeof(n));
    n.file = args->file;
    n.line = args->line;
    return conf_path_resolve(&n, arg);
}

static int host_conf_apply(pc_plugin_t *self, void *obj,
                           const pc_conf_node_t *block,
                           const pc_directive_t *table, char *err, size_t errlen)
{
    char where[160];

    snprintf(where, sizeof(where), "a block of plugin '%s'", self->name);
    return plugin_apply_block(self, obj, (const conf_node_t *)block, table, where,
                              err, errlen);
}

/* ---- hooks -------------------------------------------------------------- */

static int hook_check(pc_plugin_t *self, pc_hook_t hook)
{
    if (!self->in_init) {
        log_error(0, "%s: hooks can only be registered from init()", self->name);
        return -1;
    }
    if ((int)hook < 0 || hook >= PC_HOOK_COUNT_) {
        log_error(0, "%s: no hook number %d", self->name, (int)hook);
        return -1;
    }
    if (self->txn_hooks[hook] || self->conn_hooks[hook]) {
        log_error(0, "%s: hook %d registered twice", self->name, (int)hook);
        return -1;
    }
    return 0;
}

static int host_hook_txn(pc_plugin_t *self, pc_hook_t hook, pc_txn_hook_fn fn)
{
    if (hook_check(self, hook) < 0 || fn == NULL || hook == PC_HOOK_ACCEPT ||
        hook == PC_HOOK_CONN_CLOSE)
        return -1;
    self->txn_hooks[hook] = fn;
    return 0;
}

static int host_hook_conn(pc_plugin_t *self, pc_hook_t hook, pc_conn_hook_fn fn)
{
    if (hook_check(self, hook) < 0 || fn == NULL ||
        (hook != PC_HOOK_ACCEPT && hook != PC_HOOK_CONN_CLOSE))
        return -1;
    self->conn_hooks[hook] = fn;
    return 0;
}

/* ---- transactions ------------------------------------------------------- */

static uint64_t host_txn_id(pc_txn_t *txn)
{
    return TXN(txn)->serial;
}

static uint64_t host_txn_conn_id(pc_txn_t *txn)
{
    return TXN(txn)->c->id;
}

static pc_conn_t *host_txn_conn(pc_txn_t *txn)
{
    return (pc_conn_t *)(void *)TXN(txn)->c;
}

static const char *host_txn_method(pc_txn_t *txn)
{
    return TXN(txn)->method_name;
}

static const char *host_txn_url(pc_txn_t *txn)
{
    txn_t *t = TXN(txn);

    if (t->url_text == NULL)
        txn_build_url(t);
    return t->url_text ? t->url_text : "";
}

static const char *host_txn_scheme(pc_txn_t *txn)
{
    return TXN(txn)->url.scheme == URL_HTTPS ? "https" : "http";
}

static const char *host_txn_host(pc_txn_t *txn)
{
    return TXN(txn)->url.host;
}

static int host_txn_port(pc_txn_t *txn)
{
    return TXN(txn)->url.port;
}

static const char *host_txn_path(pc_txn_t *txn)
{
    txn_t *t = TXN(txn);

    if (t->method == HTTP_CONNECT)
        return "";
    if (t->path_text == NULL)
        txn_build_path(t);
    return t->path_text ? t->path_text : "/";
}

static const char *host_txn_sni(pc_txn_t *txn)
{
    txn_t *t = TXN(txn);

    /* A request inside an intercepted tunnel has the tunnel's SNI. */
    if (t->sni == NULL && t->c->tlsc != NULL)
        return t->c->tlsc->sni;
    return t->sni;
}

/* Only while a tunnel's fate is open: its CONNECT and TLS_SNI hooks. */
static int host_txn_intercept(pc_txn_t *txn, int on)
{
    txn_t *t = TXN(txn);

    if (t->method != HTTP_CONNECT || t->c->tlsc != NULL || t->ended ||
        (t->hs.hook != PC_HOOK_CONNECT && t->hs.hook != PC_HOOK_TLS_SNI) ||
        t->hs.done == NULL)
        return -1;
    t->intercept_vote = on ? 1 : 0;
    return 0;
}

static const struct sockaddr *host_txn_client_addr(pc_txn_t *txn)
{
    return (const struct sockaddr *)&TXN(txn)->c->peer_ss;
}

static const char *host_txn_client(pc_txn_t *txn)
{
    return TXN(txn)->c->addr_text;
}

static http_msg_t *msg_of(txn_t *t, int dir)
{
    if (dir == PC_REQUEST)
        return &t->req;
    if (dir == PC_RESPONSE && t->status > 0)
        return &t->resp;
    return NULL;
}

static const char *host_txn_header(pc_txn_t *txn, int dir, const char *name,
                                   size_t *len)
{
    http_msg_t *m = msg_of(TXN(txn), dir);
    size_t dummy;

    if (m == NULL)
        return NULL;
    return http_msg_get(m, name, len ? len : &dummy);
}

static int host_txn_header_next(pc_txn_t *txn, int dir, int i, const char **name,
                                size_t *nlen, const char **value, size_t *vlen)
{
    http_msg_t *m = msg_of(TXN(txn), dir);

    if (m == NULL || i < 0)
        return -1;
    for (; (unsigned)i < m->nfields; i++) {
        const http_field_t *f = &m->fields[i];
        if (f->deleted)
            continue;
        *name = http_field_name(m, f);
        *nlen = f->name_len;
        *value = http_field_value(m, f, vlen);
        return i + 1;
    }
    return -1;
}

static int host_txn_set_header(pc_txn_t *txn, int dir, const char *name,
                               const char *value)
{
    http_msg_t *m = msg_of(TXN(txn), dir);

    if (m == NULL || name == NULL)
        return -1;
    http_msg_remove(m, name);
    if (value == NULL)
        return 0;
    return http_msg_add(m, name, value, strlen(value));
}

static int host_txn_add_header(pc_txn_t *txn, int dir, const char *name,
                               const char *value)
{
    http_msg_t *m = msg_of(TXN(txn), dir);

    if (m == NULL || name == NULL || value == NULL)
        return -1;
    return http_msg_add(m, name, value, strlen(value));
}

static int host_txn_status(pc_txn_t *txn)
{
    return TXN(txn)->status;
}

static void host_txn_block(pc_plugin_t *self, pc_txn_t *txn, int status,
                           const char *reason, const char *category)
{
    txn_t *t = TXN(txn);

    /* Only details: the verdict decides whether there is a block
     * (hooks_block()), so details followed by PC_CONTINUE block nothing. */
    if (t->blocked)
        return;
    t->block.plugin = self->name;
    t->block.status = status >= 400 && status <= 599 ? status : 403;
    free(t->block.reason);
    t->block.reason = reason ? strdup(reason) : NULL;
    free(t->block.category);
    t->block.category = category ? strdup(category) : NULL;
}

/* Sets name to value in the note list *list (txn_note, conn_note). */
/* One allocation per note: the node, then name and value behind it. */
static txn_note_t *note_new(const char *name, const char *value)
{
    size_t nl = strlen(name) + 1, vl = strlen(value) + 1;
    txn_note_t *n = malloc(sizeof(*n) + nl + vl);

    if (n == NULL)
        return NULL;
    n->next = NULL;
    n->name = (char *)(n + 1);
    n->value = n->name + nl;
    memcpy(n->name, name, nl);
    memcpy(n->value, value, vl);
    return n;
}

/* Sets name to value in the note list *list (txn_note, conn_note). */
static void note_set(txn_note_t **list, const char *name, const char *value)
{
    txn_note_t **pp, *n;

    if (name == NULL || value == NULL)
        return;
    for (pp = list; *pp; pp = &(*pp)->next) {
        if (strcmp((*pp)->name, name) == 0) {
            if (strcmp((*pp)->value, value) == 0)
                return;
            n = note_new(name, value);
            if (n == NULL)
                return;
            n->next = (*pp)->next;
            free(*pp);
            *pp = n;
            return;
        }
    }
    /* Appended, so the log keeps the order notes were made in. */
    *pp = note_new(name, value);
}

static void host_txn_note(pc_txn_t *txn, const char *name, const char *value)
{
    note_set(&TXN(txn)->notes, name, value);
}

void plugin_notes_copy(txn_note_t **dst, const txn_note_t *src)
{
    for (; src; src = src->next)
        note_set(dst, src->name, src->value);
}

void plugin_notes_free(txn_note_t *n)
{
    while (n) {
        txn_note_t *next = n->next;
        free(n);  /* name and value live in the same block */
        n = next;
    }
}

static const char *host_txn_get_note(pc_txn_t *txn, const char *name)
{
    for (txn_note_t *n = TXN(txn)->notes; n; n = n->next)
        if (strcmp(n->name, name) == 0)
            return n->value;
    return NULL;
}

static pc_defer_t *host_txn_defer(pc_plugin_t *self, pc_txn_t *txn,
                                  uint64_t timeout_ms, int fallback,
                                  void (*cancel)(void *), void *arg)
{
    return hooks_defer(self, TXN(txn), timeout_ms, fallback, cancel, arg);
}

static int slots_reserve(txn_t *t, unsigned slot)
{
    void **s;
    void (**d)(void *);
    unsigned n;

    if (slot < t->nslots)
        return 0;
    n = slot + 1 > plugin_slot_count() ? slot + 1 : plugin_slot_count();
    s = realloc(t->slots, n * sizeof(*s));
    if (s == NULL)
        return -1;
    t->slots = s;
    d = realloc(t->slot_dtors, n * sizeof(*d));
    if (d == NULL)
        return -1;
    t->slot_dtors = d;
    for (unsigned i = t->nslots; i < n; i++) {
        t->slots[i] = NULL;
        t->slot_dtors[i] = NULL;
    }
    t->nslots = n;
    return 0;
}

static void host_txn_slot_set(pc_plugin_t *self, pc_txn_t *txn, void *value,
                              void (*dtor)(void *))
{
    txn_t *t = TXN(txn);

    if (slots_reserve(t, self->slot) < 0) {
        if (value && dtor)
            dtor(value);
        return;
    }
    if (t->slots[self->slot] && t->slot_dtors[self->slot] &&
        t->slots[self->slot] != value)
        t->slot_dtors[self->slot](t->slots[self->slot]);
    t->slots[self->slot] = value;
    t->slot_dtors[self->slot] = dtor;
}

static void *host_txn_slot_get(pc_plugin_t *self, pc_txn_t *txn)
{
    txn_t *t = TXN(txn);

    return self->slot < t->nslots ? t->slots[self->slot] : NULL;
}

static int host_txn_body_want(pc_plugin_t *self, pc_txn_t *txn, int dir,
                              int mode, uint64_t max, int on_oversize)
{
    return txn_body_want(TXN(txn), self, dir, mode, max, on_oversize);
}

static int host_txn_body_data(pc_txn_t *txn, int dir, const void **p, size_t *len)
{
    return txn_body_data(TXN(txn), dir, p, len);
}

static int host_txn_body_fd(pc_txn_t *txn, int dir)
{
    return txn_body_fd(TXN(txn), dir);
}

static uint64_t host_txn_body_size(pc_txn_t *txn, int dir)
{
    return txn_body_size(TXN(txn), dir);
}

/* ---- connections -------------------------------------------------------- */

static uint64_t host_conn_id(pc_conn_t *conn)
{
    return CONN(conn)->id;
}

static const struct sockaddr *host_conn_client_addr(pc_conn_t *conn)
{
    return (const struct sockaddr *)&CONN(conn)->peer_ss;
}

static const char *host_conn_client(pc_conn_t *conn)
{
    return CONN(conn)->addr_text;
}

static void host_conn_block(pc_plugin_t *self, pc_conn_t *conn, int status,
                            const char *reason, const char *category)
{
    client_t *c = CONN(conn);

    c->block_plugin = self->name;
    c->block_status = status >= 400 && status <= 599 ? status : 403;
    free(c->block_reason);
    c->block_reason = reason ? strdup(reason) : NULL;
    free(c->block_category);
    c->block_category = category ? strdup(category) : NULL;
}

static void host_conn_note(pc_conn_t *conn, const char *name, const char *value)
{
    note_set(&CONN(conn)->notes, name, value);
}

/* ---- services and events ------------------------------------------------ */

static int host_service_register(pc_plugin_t *self, const char *name,
                                 uint32_t version, const void *iface)
{
    return plugin_service_register(self, name, version, iface);
}

static const void *host_service_acquire(pc_plugin_t *self, const char *name,
                                        uint32_t min_version)
{
    return plugin_service_acquire(self, name, min_version);
}

static void host_service_release(pc_plugin_t *self, const char *name)
{
    plugin_service_release(self, name);
}

static int host_event_subscribe(pc_plugin_t *self, const char *topic,
                                pc_event_fn fn, void *arg)
{
    return plugin_event_subscribe(self, topic, fn, arg);
}

static void host_event_publish(pc_plugin_t *self, const pc_event_t *ev)
{
    plugin_event_publish(self, ev);
}

/* ---- loops -------------------------------------------------------------- */

static struct pc_loop main_pcloop;
static _Thread_local int on_main_thread;

void plugin_host_set_main(void *uv_main_loop)
{
    main_pcloop.uv = uv_main_loop;
    main_pcloop.w = NULL;
    on_main_thread = 1;
}

static pc_loop_t *host_loop_current(void)
{
    worker_t *w = worker_current();

    if (w)
        return &w->pcloop;
    return on_main_thread ? &main_pcloop : NULL;
}

static pc_loop_t *host_loop_main(void)
{
    return &main_pcloop;
}

static void *host_loop_uv(pc_loop_t *loop)
{
    return loop ? loop->uv : NULL;
}

typedef struct post_arg {
    void (*fn)(void *);
    void *arg;
} post_arg_t;

static void post_run(worker_t *w, void *arg)
{
    post_arg_t *pa = arg;

    (void)w;
    pa->fn(pa->arg);
    free(pa);
}

static int host_loop_post(pc_loop_t *loop, void (*fn)(void *), void *arg)
{
    worker_msg_t *m;
    post_arg_t *pa;

    if (loop == NULL || fn == NULL)
        return -1;
    if (loop->w == NULL)
        return mainq_post(fn, arg);
    m = calloc(1, sizeof(*m));
    pa = malloc(sizeof(*pa));
    if (m == NULL || pa == NULL) {
        free(m);
        free(pa);
        return -1;
    }
    pa->fn = fn;
    pa->arg = arg;
    m->kind = WMSG_FUNC;
    m->fn = post_run;
    m->arg = pa;
    m->free_arg = free;
    /* -1 when the worker is gone: m and its wrapper are freed, fn will
     * not run. */
    return worker_post(loop->w, m);
}

typedef struct work_req {
    uv_work_t req;
    void (*work)(void *);
    void (*done)(void *);
    void *arg;
} work_req_t;

static void on_work(uv_work_t *req)
{
    work_req_t *w = (work_req_t *)req;

    w->work(w->arg);
}

static void on_work_done(uv_work_t *req, int status)
{
    work_req_t *w = (work_req_t *)req;

    (void)status;
    if (w->done)
        w->done(w->arg);
    free(w);
}

static int host_work_queue(pc_loop_t *loop, void (*work)(void *),
                           void (*done)(void *), void *arg)
{
    work_req_t *w;

    if (loop == NULL || loop != host_loop_current() || work == NULL)
        return -1;
    w = calloc(1, sizeof(*w));
    if (w == NULL)
        return -1;
    w->work = work;
    w->done = done;
    w->arg = arg;
    if (uv_queue_work(loop->uv, &w->req, on_work, on_work_done) < 0) {
        free(w);
        return -1;
    }
    return 0;
}

/* ---- metrics ------------------------------------------------------------ */

static int host_ctl_register(pc_plugin_t *self, const char *name,
                             const char *usage, pc_ctl_fn fn)
{
    if (!self->in_init) {
        log_error(0, "%s: control commands can only be registered from init()",
                  self->name);
        return -1;
    }
    return control_register(self, name, usage, fn);
}

static const struct sockaddr *host_txn_upstream_addr(pc_txn_t *txn)
{
    txn_t *t = TXN(txn);

    if (!t->has_upstream_addr)
        return NULL;
    netaddr_to_sockaddr(&t->upstream_addr, t->url.port, &t->upstream_ss);
    return (const struct sockaddr *)&t->upstream_ss;
}

static int64_t host_txn_body_length(pc_txn_t *txn, int dir)
{
    txn_t *t = TXN(txn);

    if (dir == PC_REQUEST)
        return t->req_body == BODY_LENGTH ? (int64_t)t->req_clen
                                          : t->req_body == BODY_NONE ? 0 : -1;
    if (dir == PC_RESPONSE && t->status > 0)
        return t->mode == RESP_NONE ? 0 : t->resp_length;
    return -1;
}

static int host_metric_add(pc_plugin_t *self, const char *name, int64_t delta)
{
    return plugin_metric(self->name, name, delta, 0);
}

static int host_metric_set(pc_plugin_t *self, const char *name, int64_t value)
{
    return plugin_metric(self->name, name, value, 1);
}

const pc_host_t plugin_host_table = {
    .abi_major = PC_ABI_MAJOR,
    .abi_minor = PC_ABI_MINOR,
    .size = sizeof(pc_host_t),
    .log = host_log,
    .log_txn = host_log_txn,
    .plugin_name = host_plugin_name,
    .plugin_set_data = host_plugin_set_data,
    .plugin_data = host_plugin_data,
    .conf_path = host_conf_path,
    .conf_apply = host_conf_apply,
    .parse_size = conf_parse_size,
    .parse_duration = conf_parse_duration,
    .parse_flag = conf_parse_flag,
    .hook_txn = host_hook_txn,
    .hook_conn = host_hook_conn,
    .txn_id = host_txn_id,
    .txn_conn_id = host_txn_conn_id,
    .txn_conn = host_txn_conn,
    .txn_method = host_txn_method,
    .txn_url = host_txn_url,
    .txn_scheme = host_txn_scheme,
    .txn_host = host_txn_host,
    .txn_port = host_txn_port,
    .txn_path = host_txn_path,
    .txn_sni = host_txn_sni,
    .txn_client_addr = host_txn_client_addr,
    .txn_client = host_txn_client,
    .txn_header = host_txn_header,
    .txn_header_next = host_txn_header_next,
    .txn_set_header = host_txn_set_header,
    .txn_add_header = host_txn_add_header,
    .txn_status = host_txn_status,
    .txn_block = host_txn_block,
    .txn_note = host_txn_note,
    .txn_get_note = host_txn_get_note,
    .txn_defer = host_txn_defer,
    .defer_resume = hooks_resume,
    .defer_resume_threadsafe = hooks_resume_threadsafe,
    .txn_slot_set = host_txn_slot_set,
    .txn_slot_get = host_txn_slot_get,
    .txn_body_want = host_txn_body_want,
    .txn_body_data = host_txn_body_data,
    .txn_body_fd = host_txn_body_fd,
    .txn_body_size = host_txn_body_size,
    .conn_id = host_conn_id,
    .conn_client_addr = host_conn_client_addr,
    .conn_client = host_conn_client,
    .conn_block = host_conn_block,
    .service_register = host_service_register,
    .service_acquire = host_service_acquire,
    .service_release = host_service_release,
    .event_subscribe = host_event_subscribe,
    .event_publish = host_event_publish,
    .loop_current = host_loop_current,
    .loop_main = host_loop_main,
    .loop_uv = host_loop_uv,
    .loop_post = host_loop_post,
    .work_queue = host_work_queue,
    .metric_add = host_metric_add,
    .metric_set = host_metric_set,
    .ctl_register = host_ctl_register,
    .ctl_reply = control_reply,
    .txn_upstream_addr = host_txn_upstream_addr,
    .txn_body_length = host_txn_body_length,
    .conn_note = host_conn_note,
    .txn_intercept = host_txn_intercept,
};
