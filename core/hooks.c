/* hooks.c - running plugin hook chains: verdicts, deferral tokens, deadlines. */
#include <stdlib.h>
#include <string.h>

#include "client.h"
#include "hooks.h"
#include "log.h"
#include "plugin_host.h"
#include "server.h"
#include "txn.h"

/*
 * A deferral token is not a pointer to memory: it encodes a 48-bit id that
 * is never reused and the number of the worker whose loop owns the
 * transaction (1..256: `workers` allows 256, so 8 bits are not enough).
 * Resuming looks the id up in that worker's table, so a late or duplicate
 * resume (the transaction ended, the deadline passed) finds nothing and
 * does nothing, and no token memory can be used after free.
 */
#define TOKEN_WORKER_BITS 16

typedef struct defer_entry {
    struct defer_entry *next;
    uint64_t id;
    txn_t *t;
} defer_entry_t;

struct defer_table {
    defer_entry_t *b[256];
    uint64_t next_id;
};

static defer_table_t *table_of(worker_t *w)
{
    if (w->defers == NULL)
        w->defers = calloc(1, sizeof(defer_table_t));
    return w->defers;
}

void hooks_worker_free(worker_t *w)
{
    defer_table_t *tb = w->defers;

    if (tb == NULL)
        return;
    for (int i = 0; i < 256; i++) {
        while (tb->b[i]) {
            defer_entry_t *e = tb->b[i];
            tb->b[i] = e->next;
            free(e);
        }
    }
    free(tb);
    w->defers = NULL;
}

static txn_t *table_take(worker_t *w, uint64_t id)
{
    defer_table_t *tb = w->defers;
    defer_entry_t **pp;

    if (tb == NULL)
        return NULL;
    for (pp = &tb->b[id & 255]; *pp; pp = &(*pp)->next) {
        if ((*pp)->id == id) {
            defer_entry_t *e = *pp;
            txn_t *t = e->t;
            *pp = e->next;
            free(e);
            return t;
        }
    }
    return NULL;
}

static void on_timer_close(uv_handle_t *h)
{
    free(h);
}

/* Forgets the pending token of t (timer and table entry). */
static void defer_clear(txn_t *t)
{
    txn_hooks_t *hs = &t->hs;

    if (hs->defer_id) {
        table_take(t->w, hs->defer_id);
        hs->defer_id = 0;
    }
    if (hs->timer) {
        uv_close((uv_handle_t *)hs->timer, on_timer_close);
        hs->timer = NULL;
    }
    hs->cancel = NULL;
    hs->cancel_arg = NULL;
}

static void chain_run(txn_t *t);

void hooks_block(txn_t *t, const char *plugin, const char *why)
{
    if (t->blocked)
        return;
    if (t->block.plugin == NULL || strcmp(t->block.plugin, plugin) != 0) {
        /* Details another plugin gave before it let the request pass. */
        free(t->block.reason);
        free(t->block.category);
        t->block.reason = t->block.category = NULL;
        t->block.plugin = plugin;
        t->block.status = 403;
    }
    if (t->block.reason == NULL && why)
        t->block.reason = strdup(why);
    t->blocked = 1;
}

static void chain_finish(txn_t *t, int verdict)
{
    txn_hooks_done_fn done = t->hs.done;

    t->hs.done = NULL;
    t->hs.current = NULL;
    if (done)
        done(t, verdict);  /* may free t */
}

/* Applies one plugin's verdict; returns 1 when the chain goes on. */
static int chain_verdict(txn_t *t, pc_plugin_t *p, int verdict)
{
    switch (verdict) {
    case PC_CONTINUE:
        return 1;
    case PC_ALLOW:
        chain_finish(t, PC_ALLOW);
        return 0;
    case PC_BLOCK: {
        char why[160];
        snprintf(why, sizeof(why), "blocked by %s", p ? p->name : "core");
        hooks_block(t, p ? p->name : "core", why);
        chain_finish(t, PC_BLOCK);
        return 0;
    }
    default:
        log_error(t->c->id, "plugin %s returned an invalid verdict %d; ignored",
                  p->name, verdict);
        return 1;
    }
}

static void chain_run(txn_t *t)
{
    txn_hooks_t *hs = &t->hs;
    const plugin_set_t *s = plugin_set_of(t->conf);

    while (hs->next < s->n) {
        const plugin_inst_t *in = &s->v[hs->next++];
        pc_txn_hook_fn fn = in->p->txn_hooks[hs->hook];
        int v;

        if (fn == NULL)
            continue;
        /* Body hooks reach only the plugins that asked for that body. */
        if (hs->hook == PC_HOOK_REQUEST_BODY &&
            !txn_body_wanted_by(t, PC_REQUEST, in->p))
            continue;
        if (hs->hook == PC_HOOK_RESPONSE_BODY &&
            !txn_body_wanted_by(t, PC_RESPONSE, in->p))
            continue;
        hs->current = in->p;
        hs->running = 1;
        hs->resolved = 0;
        v = fn(in->p, (pc_txn_t *)t, in->conf);
        hs->running = 0;
        if (v == PC_DEFER) {
            if (hs->resolved) {
                /* Resumed before its hook returned. */
                hs->resolved = 0;
                v = hs->resolved_verdict;
            } else if (hs->defer_id == 0) {
                log_error(t->c->id, "plugin %s deferred without a token; "
                          "continuing", in->p->name);
                continue;
            } else {
                return;  /* wait for the token */
            }
        } else if (hs->resolved || hs->defer_id) {
            /* It made a token but decided at once: drop the token. */
            hs->resolved = 0;
            log_debug(t->c->id, "plugin %s decided after taking a token", in->p->name);
            defer_clear(t);
        }
        if (!chain_verdict(t, in->p, v))
            return;
    }
    chain_finish(t, PC_CONTINUE);
}

void hooks_run(txn_t *t, pc_hook_t hook, txn_hooks_done_fn done)
{
    const plugin_set_t *s = plugin_set_of(t->conf);

    if (!plugin_set_has(s, hook)) {
        done(t, PC_CONTINUE);
        return;
    }
    t->hs.hook = hook;
    t->hs.next = 0;
    t->hs.done = done;
    t->hs.resolved = 0;
    chain_run(t);
}

int hooks_run_sync(txn_t *t, pc_hook_t hook)
{
    const plugin_set_t *s = plugin_set_of(t->conf);

    if (!plugin_set_has(s, hook))
        return PC_CONTINUE;
    for (int i = 0; i < s->n; i++) {
        pc_txn_hook_fn fn = s->v[i].p->txn_hooks[hook];
        int v;
        if (fn == NULL)
            continue;
        v = fn(s->v[i].p, (pc_txn_t *)t, s->v[i].conf);
        if (v == PC_ALLOW)
            return PC_CONTINUE;
        if (v == PC_BLOCK) {
            hooks_block(t, s->v[i].p->name, "blocked");
            return PC_BLOCK;
        }
        if (v == PC_DEFER) {
            log_error(t->c->id, "plugin %s cannot defer this hook; continuing",
                      s->v[i].p->name);
            defer_clear(t);
        }
    }
    return PC_CONTINUE;
}

void hooks_txn_end(txn_t *t)
{
    const plugin_set_t *s = plugin_set_of(t->conf);

    if (t->end_hooks_done)
        return;
    t->end_hooks_done = 1;
    hooks_cancel(t);
    if (plugin_set_has(s, PC_HOOK_TXN_END)) {
        for (int i = 0; i < s->n; i++) {
            pc_txn_hook_fn fn = s->v[i].p->txn_hooks[PC_HOOK_TXN_END];
            if (fn)
                fn(s->v[i].p, (pc_txn_t *)t, s->v[i].conf);
        }
    }
    /* Slots die after the last hook that could read them. */
    for (unsigned i = 0; i < t->nslots; i++) {
        if (t->slots[i] && t->slot_dtors[i])
            t->slot_dtors[i](t->slots[i]);
        t->slots[i] = NULL;
    }
}

void hooks_cancel(txn_t *t)
{
    txn_hooks_t *hs = &t->hs;
    void (*cancel)(void *) = hs->cancel;
    void *arg = hs->cancel_arg;

    hs->done = NULL;
    if (hs->defer_id == 0)
        return;
    defer_clear(t);
    if (cancel)
        cancel(arg);
}

static void conn_block_clear(client_t *c)
{
    free(c->block_reason);
    free(c->block_category);
    c->block_reason = c->block_category = NULL;
    c->block_plugin = NULL;
}

int hooks_conn(client_t *c, pc_hook_t hook)
{
    const plugin_set_t *s = plugin_set_of(c->w->conf);

    if (!plugin_set_has(s, hook))
        return PC_CONTINUE;
    for (int i = 0; i < s->n; i++) {
        pc_conn_hook_fn fn = s->v[i].p->conn_hooks[hook];
        int v;
        if (fn == NULL)
            continue;
        v = fn(s->v[i].p, (pc_conn_t *)c, s->v[i].conf);
        if (hook != PC_HOOK_ACCEPT)
            continue;
        /* As for transactions, conn_block() gives details and only the
         * verdict blocks, with the details of the plugin that blocked. */
        if (v == PC_BLOCK) {
            if (c->block_plugin != s->v[i].p->name) {
                conn_block_clear(c);
                c->block_plugin = s->v[i].p->name;
                c->block_status = 403;
            }
            return PC_BLOCK;
        }
        conn_block_clear(c);
    }
    return PC_CONTINUE;
}

/* ---- tokens ------------------------------------------------------------- */

static void on_deadline(uv_timer_t *timer)
{
    txn_t *t = timer->data;
    txn_hooks_t *hs = &t->hs;
    pc_plugin_t *p = hs->current;
    int fallback = hs->fallback;

    log_warn(t->c->id, "plugin %s did not decide in time; applying its fallback "
             "verdict (%s)", p ? p->name : "?",
             fallback == PC_BLOCK ? "block" : "continue");
    /* The plugin's work may still finish: cancel it so it stops, then
     * forget the token. */
    {
        void (*cancel)(void *) = hs->cancel;
        void *arg = hs->cancel_arg;
        defer_clear(t);
        if (cancel)
            cancel(arg);
    }
    if (fallback == PC_BLOCK)
        hooks_block(t, p ? p->name : "core", "the check did not finish in time");
    if (chain_verdict(t, p, fallback))
        chain_run(t);
}

pc_defer_t *hooks_defer(pc_plugin_t *p, txn_t *t, uint64_t timeout_ms,
                        int fallback, void (*cancel)(void *), void *arg)
{
    defer_table_t *tb = table_of(t->w);
    txn_hooks_t *hs = &t->hs;
    defer_entry_t *e;
    uint64_t id;

    if (tb == NULL || hs->done == NULL || !hs->running || hs->current != p) {
        if (tb)
            log_error(t->c->id, "plugin %s asked for a token outside its hook",
                      p->name);
        return NULL;
    }
    if (hs->defer_id)
        defer_clear(t);
    e = malloc(sizeof(*e));
    hs->timer = malloc(sizeof(*hs->timer));
    if (e == NULL || hs->timer == NULL) {
        free(e);
        free(hs->timer);
        hs->timer = NULL;
        return NULL;
    }
    id = ++tb->next_id;
    e->id = id;
    e->t = t;
    e->next = tb->b[id & 255];
    tb->b[id & 255] = e;
    hs->defer_id = id;
    hs->fallback = fallback == PC_BLOCK ? PC_BLOCK : PC_CONTINUE;
    hs->cancel = cancel;
    hs->cancel_arg = arg;
    uv_timer_init(&t->w->loop, hs->timer);
    hs->timer->data = t;
    uv_timer_start(hs->timer, on_deadline, timeout_ms ? timeout_ms : t->conf->defer_timeout, 0);
    return (pc_defer_t *)(uintptr_t)((id << TOKEN_WORKER_BITS) | (unsigned)t->w->id);
}

static void resume_txn(txn_t *t, int verdict)
{
    txn_hooks_t *hs = &t->hs;
    pc_plugin_t *p = hs->current;

    hs->defer_id = 0;
    if (hs->timer) {
        uv_close((uv_handle_t *)hs->timer, on_timer_close);
        hs->timer = NULL;
    }
    hs->cancel = NULL;
    hs->cancel_arg = NULL;
    if (verdict == PC_DEFER)
        verdict = PC_CONTINUE;
    if (hs->running) {
        /* Inside the plugin's own hook: chain_run picks it up. */
        hs->resolved = 1;
        hs->resolved_verdict = verdict;
        return;
    }
    if (chain_verdict(t, p, verdict))
        chain_run(t);
}

void hooks_resume(pc_defer_t *token, int verdict)
{
    uintptr_t v = (uintptr_t)token;
    worker_t *w = worker_current();
    txn_t *t;

    if (w == NULL || (int)(v & ((1u << TOKEN_WORKER_BITS) - 1)) != w->id) {
        log_error(0, "defer_resume called off the transaction's thread; "
                  "use defer_resume_threadsafe");
        return;
    }
    t = table_take(w, v >> TOKEN_WORKER_BITS);
    if (t == NULL)
        return;  /* dead token: a no-op */
    resume_txn(t, verdict);
}

typedef struct resume_msg {
    uint64_t id;
    int verdict;
    int status;
    char *reason;
    char *category;
} resume_msg_t;

static void free_resume_msg(void *arg)
{
    resume_msg_t *m = arg;

    free(m->reason);
    free(m->category);
    free(m);
}

static void resume_on_loop(worker_t *w, void *arg)
{
    resume_msg_t *m = arg;
    txn_t *t = table_take(w, m->id);

    if (t) {
        /* The message is consumed here: worker.c frees only unrun ones. */
        if (m->verdict == PC_BLOCK && !t->blocked) {
            /* The details; chain_verdict() marks the block. */
            t->block.plugin = t->hs.current ? t->hs.current->name : "core";
            t->block.status = m->status >= 400 && m->status <= 599 ? m->status : 403;
            free(t->block.reason);
            t->block.reason = m->reason;
            m->reason = NULL;
            free(t->block.category);
            t->block.category = m->category;
            m->category = NULL;
        }
        resume_txn(t, m->verdict);
    }
    free_resume_msg(m);
}

void hooks_resume_threadsafe(pc_defer_t *token, int verdict, int status,
                             const char *reason, const char *category)
{
    uintptr_t v = (uintptr_t)token;
    int wid = (int)(v & ((1u << TOKEN_WORKER_BITS) - 1));
    worker_t *w = server_worker(wid);
    resume_msg_t *m;
    worker_msg_t *msg;

    if (w == NULL)
        return;
    m = calloc(1, sizeof(*m));
    msg = calloc(1, sizeof(*msg));
    if (m == NULL || msg == NULL) {
        free(m);
        free(msg);
        log_crit(0, "out of memory resuming a deferred transaction");
        return;
    }
    m->id = v >> TOKEN_WORKER_BITS;
    m->verdict = verdict;
    m->status = status;
    m->reason = reason ? strdup(reason) : NULL;
    m->category = category ? strdup(category) : NULL;
    msg->kind = WMSG_FUNC;
    msg->fn = resume_on_loop;
    msg->arg = m;
    msg->free_arg = free_resume_msg;
    worker_post(w, msg);
}

